/* pull peers: connected and known peers, and why the ones not connected are not. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mp.h"

/* when writes a time column: "now" for connected peers, "3 min ago", "in 8 s", or "-". */
static void
when(char *out, size_t n, const struct pull_rd *p, const char *key)
{
    uint64_t t = mv_uint(p, key, 0);

    if (t == 0)
        snprintf(out, n, "-");
    else
        fmt_reltime(out, n, (int64_t)t, cli_now());
}

static int
human(struct pull_rd *res, void *ctx)
{
    static const char *const head[] = {"ID", "WHO", "ADDRESS", "STATE", "DIR", "LAST SEEN", "NEXT TRY"};
    struct pull_rd list;
    struct fmt_table t;
    struct pull_wb w;
    uint32_t n, failing = 0;
    int rc;
    (void)ctx;

    if (mp_read_array(res, &n) != 0)
        return cli_error("pulld sent a peer list that is not a list");
    if (n == 0) {
        printf("no peers (add one with: pull connect ID@HOST:PORT)\n");
        return EXIT_OK;
    }
    if (fmt_table_init(&t, 7, head) != 0)
        return cli_error("out of memory");
    t.color[0] = "33";
    list = *res;
    for (uint32_t i = 0; i < n; i++) {
        struct pull_rd p = *res;
        char id[16], who[256], addr[256], state[64], seen[48], next[48];
        const char *row[7] = {id, who, addr, state, "", seen, next};

        if (ctl_value_check(res, 2) != 0)
            break;
        rec_short(&p, "id", id);
        mv_cstr(&p, "author_label", who, sizeof(who));
        if (strcmp(who, id) == 0 || who[0] == '\0')
            snprintf(who, sizeof(who), "-"); /* no name: the id says it */
        mv_cstr(&p, "address", addr, sizeof(addr));
        mv_cstr(&p, "state", state, sizeof(state));
        if (mv_bool(&p, "bootstrap", false))
            snprintf(state + strlen(state), sizeof(state) - strlen(state), " (bootstrap)");
        if (mv_bool(&p, "connected", false))
            row[4] = mv_bool(&p, "inbound", false) ? "in" : "out";
        if (mv_bool(&p, "connected", false))
            snprintf(seen, sizeof(seen), "now");
        else
            when(seen, sizeof(seen), &p, "last_seen");
        if (mv_bool(&p, "connected", false))
            next[0] = '\0';
        else
            when(next, sizeof(next), &p, "next_retry");
        failing += mv_str(&p, "last_error").n > 0 && !mv_bool(&p, "connected", false);
        fmt_table_add(&t, row);
    }
    wb_init(&w, 0);
    rc = fmt_table_render(&t, &w, cli.width, 2, cli.color);
    rc = rc == 0 ? cli_write(&w) : cli_error("out of memory");
    wb_release(&w);
    fmt_table_free(&t);
    if (rc != 0 || failing == 0)
        return rc;
    /* the reasons, one line each: too long for a column */
    printf("\nlast errors:\n");
    for (uint32_t i = 0; i < n; i++) {
        struct pull_rd p = list;
        char id[16], err[512], ago[48];

        if (ctl_value_check(&list, 2) != 0)
            break;
        if (mv_str(&p, "last_error").n == 0 || mv_bool(&p, "connected", false))
            continue;
        rec_short(&p, "id", id);
        mv_cstr(&p, "last_error", err, sizeof(err));
        when(ago, sizeof(ago), &p, "last_error_at");
        printf("  %s  %s (%s, %llu failed dial%s)\n", id, err, ago,
               (unsigned long long)mv_uint(&p, "failed_dials", 1),
               mv_uint(&p, "failed_dials", 1) == 1 ? "" : "s");
    }
    return EXIT_OK;
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
