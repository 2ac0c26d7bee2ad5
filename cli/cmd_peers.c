/* pull peers: connected and known peers. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mp.h"

static int
human(struct pull_rd *res, void *ctx)
{
    static const char *const head[] = {"ID", "WHO", "ADDRESS", "STATE", "DIR", "SCORE"};
    struct fmt_table t;
    struct pull_wb w;
    uint32_t n;
    int rc;
    (void)ctx;

    if (mp_read_array(res, &n) != 0)
        return cli_error("pulld sent a peer list that is not a list");
    if (n == 0) {
        printf("no peers (add one with: pull connect ID@HOST:PORT)\n");
        return EXIT_OK;
    }
    if (fmt_table_init(&t, 6, head) != 0)
        return cli_error("out of memory");
    t.color[0] = "33";
    for (uint32_t i = 0; i < n; i++) {
        struct pull_rd p = *res;
        char id[16], who[256], addr[256], state[64], score[32];
        const char *row[6] = {id, who, addr, state, "", score};

        if (ctl_value_check(res, 2) != 0)
            break;
        rec_short(&p, "id", id);
        mv_cstr(&p, "author_label", who, sizeof(who));
        if (strcmp(who, id) == 0 || who[0] == '\0')
            snprintf(who, sizeof(who), "-"); /* no name: the id says it */
        mv_cstr(&p, "address", addr, sizeof(addr));
        mv_cstr(&p, "state", state, sizeof(state));
        if (mv_has(&p, "inbound"))
            row[4] = mv_bool(&p, "inbound", false) ? "in" : "out";
        if (mv_has(&p, "score"))
            snprintf(score, sizeof(score), "%lld", (long long)mv_int(&p, "score", 0));
        else
            score[0] = '\0';
        fmt_table_add(&t, row);
    }
    wb_init(&w, 0);
    rc = fmt_table_render(&t, &w, cli.width, 2, cli.color);
    rc = rc == 0 ? cli_write(&w) : cli_error("out of memory");
    wb_release(&w);
    fmt_table_free(&t);
    return rc;
}

int
cmd_peers(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS};

    while (cli_getopt(argc, argv, opts) != -1)
        ;
    if (optind < argc)
        return cli_usage("unexpected argument '%s'", argv[optind]);
    return cli_run("peers", NULL, NULL, human);
}
