/* pull doctor: checks of the node, one line each with what to do; exit 0 if all pass. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/mp.h"

/* print_check prints one check for a person: status, name, detail, and what to do. */
static void
print_check(const struct pull_rd *c)
{
    char check[32], status[16], detail[CTL_MSG_MAX + 1], hint[CTL_MSG_MAX + 1];
    const char *label, *sgr;

    mv_cstr(c, "check", check, sizeof(check));
    mv_cstr(c, "status", status, sizeof(status));
    mv_cstr(c, "detail", detail, sizeof(detail));
    mv_cstr(c, "hint", hint, sizeof(hint));
    if (strcmp(status, "fail") == 0)
        label = "FAIL", sgr = "1;31";
    else if (strcmp(status, "warn") == 0)
        label = "warn", sgr = "33";
    else
        label = "ok", sgr = "32";
    if (cli.color)
        printf("\033[%sm%-4s\033[0m  %-9s  %s", sgr, label, check, detail);
    else
        printf("%-4s  %-9s  %s", label, check, detail);
    if (hint[0] != '\0')
        printf(" -- fix: %s", hint);
    printf("\n");
    fflush(stdout);
}

/* not_running: the first check failed, the others can't run. */
static int
not_running(const struct client *c, int rc)
{
    char detail[2 * PATH_MAX + 64], hint[2 * PATH_MAX + 64];
    struct pull_wb w;

    if (rc == PULL_ERR_NOT_RUNNING) {
        snprintf(detail, sizeof(detail), "pulld is not running on %s", c->dir);
        snprintf(hint, sizeof(hint), "start it: pulld --data-dir %s (is %s a node's directory?)",
                 c->dir, c->dir);
    } else {
        snprintf(detail, sizeof(detail), "cannot reach pulld on %s: %s", c->sock,
                 rc == PULL_ERR_PERM ? "permission denied" : strerror(c->sys_errno));
        snprintf(hint, sizeof(hint), "run pull as the user that runs pulld");
    }
    if (cli.json) {
        wb_init(&w, 0);
        wb_put(&w, "[{\"check\":\"pulld\",\"ok\":false,\"status\":\"fail\",\"detail\":", 55);
        json_str(&w, detail, strlen(detail));
        wb_put(&w, ",\"hint\":", 8);
        json_str(&w, hint, strlen(hint));
        wb_put(&w, "}]\n", 3);
        rc = wb_error(&w) == 0 ? cli_write(&w) : cli_error("out of memory");
        wb_release(&w);
        return rc != 0 ? rc : EXIT_FAIL;
    }
    if (cli.color)
        printf("\033[1;31mFAIL\033[0m  %-9s  %s -- fix: %s\n", "pulld", detail, hint);
    else
        printf("FAIL  %-9s  %s -- fix: %s\n", "pulld", detail, hint);
    return EXIT_FAIL;
}

int
cmd_doctor(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS};
    struct ctl_reply rep;
    struct pull_wb all;
    struct client c;
    struct mp_open m;
    uint64_t failed = 0, warnings = 0, checks = 0;
    bool stopped, first = true;
    int rc;

    while (cli_getopt(argc, argv, opts) != -1)
        ;
    if (optind < argc)
        return cli_usage("unexpected argument '%s'", argv[optind]);
    if ((rc = client_init(&c, cli.data_dir)) != 0) {
        client_close(&c);
        return cli_error("no data directory: set --data-dir, $PULL_HOME or $HOME");
    }
    wb_init(&all, 0);
    if ((rc = client_connect(&c)) != 0) {
        rc = not_running(&c, rc);
        goto out;
    }
    c.timeout_ms = 120000; /* the checks end within the handshake timeout, and a little */
    mp_open_map(&m, client_begin(&c, "doctor"));
    mp_close(&m);
    if ((rc = cli_call(&c, &rep)) != 0)
        goto out;
    if (cli.json)
        wb_u8(&all, '[');
    for (;;) {
        struct pull_rd res;

        rd_init(&res, rep.result, rep.result_len);
        if (rep.more) {
            if (cli.json) {
                if (!first)
                    wb_u8(&all, ',');
                first = false;
                if ((rc = json_from_mp(&res, &all)) != 0) {
                    rc = cli_error("pulld sent a check that is not JSON-ready");
                    goto out;
                }
            } else {
                print_check(&res);
            }
        } else {
            checks = mv_uint(&res, "checks", 0);
            failed = mv_uint(&res, "failed", 0);
            warnings = mv_uint(&res, "warnings", 0);
            break;
        }
        if ((rc = cli_recv_more(&c, &rep, &stopped)) != 0)
            goto out;
        if (stopped) {
            rc = EXIT_FAIL;
            goto out;
        }
    }
    if (cli.json) {
        wb_put(&all, "]\n", 2);
        if ((rc = wb_error(&all)) != 0 || (rc = cli_write(&all)) != 0) {
            rc = rc < 0 ? cli_error("out of memory") : rc;
            goto out;
        }
    } else if (failed == 0) {
        printf("all %llu checks passed%s\n", (unsigned long long)checks,
               warnings > 0 ? " (see the warnings)" : "");
    } else {
        printf("%llu of %llu checks failed\n", (unsigned long long)failed,
               (unsigned long long)checks);
    }
    rc = failed == 0 ? EXIT_OK : EXIT_FAIL;
out:
    wb_release(&all);
    client_close(&c);
    return rc;
}
