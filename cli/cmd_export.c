/* pull export FILE [--all]: write signed records to a bundle (lib/bundle.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/bundle.h"
#include "lib/err.h"
#include "lib/mp.h"

enum { OPT_ALL = CLI_OPT_USER };

/* The total export --all will send (the live records, as status counts them), for the
 * progress line; 0 if unknown. */
static uint64_t
export_total(struct client *c, bool all)
{
    struct ctl_reply rep;
    struct mp_open m;
    struct pull_rd r;

    if (!all || cli.json || isatty(STDERR_FILENO) != 1)
        return 0;
    mp_open_map(&m, client_begin(c, "status"));
    mp_close(&m);
    if (client_send(c) != 0 || client_recv(c, &rep) != 0 || rep.err != 0)
        return 0;
    rd_init(&r, rep.result, rep.result_len);
    return mv_uint(&r, "records", 0);
}

/* Writes the envelopes of one reply; returns 0 or an exit code. */
static int
write_chunk(struct bundle_writer *bw, const struct ctl_reply *rep, uint64_t *count)
{
    struct pull_rd res, arr;
    uint32_t n;

    rd_init(&res, rep->result, rep->result_len);
    if (!mv_value(&res, "envelopes", &arr))
        return 0;
    if (mp_read_array(&arr, &n) != 0)
        return cli_error("pulld sent a malformed export chunk");
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *env;
        uint32_t len;
        int rc;
        if (mp_read_bin(&arr, RECORD_ENVELOPE_MAX, &env, &len) != 0)
            return cli_error("pulld sent a malformed envelope in the export");
        if ((rc = bundle_write(bw, env, len)) != 0)
            return cli_error("writing the bundle: %s",
                             rc == PULL_ERR_IO ? strerror(errno) : pull_strerror(rc));
        (*count)++;
    }
    return 0;
}

int
cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {{"all", no_argument, NULL, OPT_ALL}, CLI_COMMON_OPTIONS};
    struct client c;
    struct ctl_reply rep;
    struct bundle_writer bw;
    struct cli_progress pr;
    msgpack_packer *pk;
    struct mp_open m;
    FILE *f = NULL;
    char tmp[4096];
    const char *path;
    bool all = false, to_stdout, stopped, done = false;
    uint64_t count = 0, total;
    int opt, rc;

    while ((opt = cli_getopt(argc, argv, opts)) != -1) {
        if (opt == OPT_ALL)
            all = true;
    }
    if (argc - optind != 1)
        return cli_usage("export needs one FILE (- for standard output)");
    memset(&pr, 0, sizeof(pr));
    path = argv[optind];
    to_stdout = strcmp(path, "-") == 0;
    tmp[0] = '\0';
    if (to_stdout && isatty(STDOUT_FILENO) == 1)
        return cli_usage("a bundle is binary: not written to a terminal (redirect it: pull "
                         "export - > FILE, or give a FILE)");

    if ((rc = cli_connect(&c)) != 0)
        goto out;
    /* Write to FILE.partial and rename at the end, so a failed export leaves no bundle
     * that looks whole. */
    if (to_stdout) {
        f = stdout;
    } else {
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.partial", path) >= sizeof(tmp)) {
            rc = cli_error("%s: path too long", path);
            goto out;
        }
        if ((f = fopen(tmp, "wbx")) == NULL) {
            rc = cli_error("cannot create %s: %s", tmp, strerror(errno));
            tmp[0] = '\0';
            goto out;
        }
    }
    if (bundle_writer_init(&bw, f) != 0) {
        rc = cli_error("cannot write %s: %s", to_stdout ? "standard output" : tmp, strerror(errno));
        goto out;
    }
    cli_progress_init(&pr, "exporting", export_total(&c, all));
    pk = client_begin(&c, "export");
    mp_open_map(&m, pk);
    mp_kv_bool(&m, "all", all);
    mp_close(&m);
    if ((rc = cli_call(&c, &rep)) != 0)
        goto out;
    for (;;) {
        if ((rc = write_chunk(&bw, &rep, &count)) != 0)
            goto out;
        cli_progress_update(&pr, count, count);
        if (!rep.more)
            break;
        if ((rc = cli_recv_more(&c, &rep, &stopped)) != 0)
            goto out;
        if (stopped) {
            rc = cli_error("interrupted");
            goto out;
        }
    }
    {
        struct pull_rd res;
        rd_init(&res, rep.result, rep.result_len);
        total = mv_uint(&res, "records", count);
    }
    if (total != count) {
        rc = cli_error("pulld announced %llu records but sent %llu", (unsigned long long)total,
                       (unsigned long long)count);
        goto out;
    }
    if ((rc = bundle_writer_finish(&bw)) != 0 || (!to_stdout && fsync(fileno(f)) != 0)) {
        rc = cli_error("writing %s: %s", to_stdout ? "standard output" : tmp, strerror(errno));
        goto out;
    }
    if (!to_stdout) {
        if (fclose(f) != 0) {
            f = NULL;
            rc = cli_error("writing %s: %s", tmp, strerror(errno));
            goto out;
        }
        f = NULL;
        if (rename(tmp, path) != 0) {
            rc = cli_error("cannot rename %s to %s: %s", tmp, path, strerror(errno));
            goto out;
        }
        tmp[0] = '\0';
    }
    done = true;
    cli_progress_end(&pr);
    if (cli.json) {
        /* With FILE -, stdout holds the bundle: the summary goes to stderr. */
        fprintf(to_stdout ? stderr : stdout, "{\"records\":%llu}\n", (unsigned long long)count);
    } else {
        fprintf(to_stdout ? stderr : stdout, "exported %llu record%s to %s\n",
                (unsigned long long)count, count == 1 ? "" : "s",
                to_stdout ? "standard output" : path);
    }
    rc = EXIT_OK;
out:
    if (rc != EXIT_OK)
        cli_progress_end(&pr);
    if (f != NULL && f != stdout)
        fclose(f);
    if (!done && tmp[0] != '\0')
        unlink(tmp);
    client_close(&c);
    return rc;
}
