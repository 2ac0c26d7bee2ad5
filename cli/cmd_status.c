/* pull status: a summary of the node in at most 11 lines; --verbose: every counter and
 * limit (--json always prints everything). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mp.h"

enum { OPT_VERBOSE = CLI_OPT_USER };

#define STATUS_WARNINGS_SHOWN 2

static void
line(const char *label, const char *value)
{
    if (cli.color)
        printf("\033[2m%-9s\033[0m %s\n", label, value);
    else
        printf("%-9s %s\n", label, value);
}

static int
verbose(struct pull_rd *res, void *ctx)
{
    static const char *const first[] = {"id",    "name",    "version", "uptime_s",
                                        "peers", "records", "network", "data_dir"};
    (void)ctx;

    kv_print(res, first, sizeof(first) / sizeof(first[0]));
    return EXIT_OK;
}

static int
summary(struct pull_rd *res, void *ctx)
{
    char buf[512], a[128], b[128], up[64];
    struct pull_rd v, lan, nat;
    uint32_t nw = 0;
    (void)ctx;

    mv_cstr(res, "id", a, sizeof(a));
    mv_cstr(res, "name", b, sizeof(b));
    if (b[0] != '\0')
        snprintf(buf, sizeof(buf), "%s (%s)", a, b);
    else
        snprintf(buf, sizeof(buf), "%s", a);
    line("node", buf);
    fmt_duration(up, sizeof(up), mv_uint(res, "uptime_s", 0));
    mv_cstr(res, "version", a, sizeof(a));
    if (a[0] != '\0')
        snprintf(buf, sizeof(buf), "%s (pulld %s)", up, a);
    else
        snprintf(buf, sizeof(buf), "%s", up);
    line("uptime", buf);
    snprintf(buf, sizeof(buf), "%llu connected, %llu known",
             (unsigned long long)mv_uint(res, "peers", 0),
             (unsigned long long)mv_uint(res, "known_peers", 0));
    line("peers", buf);
    if (mv_value(res, "mine", &v)) {
        uint64_t o = mv_uint(&v, "offers", 0), nd = mv_uint(&v, "needs", 0);
        snprintf(buf, sizeof(buf), "%llu live; mine: %llu offer%s, %llu need%s",
                 (unsigned long long)mv_uint(res, "records", 0), (unsigned long long)o,
                 o == 1 ? "" : "s", (unsigned long long)nd, nd == 1 ? "" : "s");
    } else {
        snprintf(buf, sizeof(buf), "%llu live", (unsigned long long)mv_uint(res, "records", 0));
    }
    line("records", buf);
    snprintf(buf, sizeof(buf), "%llu open", (unsigned long long)mv_uint(res, "dyads_open", 0));
    line("dyads", buf);
    line("network", mv_cstr(res, "network", buf, sizeof(buf)));
    if (!mv_bool(res, "lan_enabled", true))
        snprintf(buf, sizeof(buf), "off");
    else if (!mv_value(res, "lan", &lan) || !mv_bool(&lan, "running", false))
        snprintf(buf, sizeof(buf), "not running (see pull doctor)");
    else if (mv_uint(&lan, "rx_others", 0) > 0)
        snprintf(buf, sizeof(buf), "on, hearing other nodes (%llu learned)",
                 (unsigned long long)mv_uint(&lan, "learned", 0));
    else
        snprintf(buf, sizeof(buf), "on, no other node heard yet");
    line("lan", buf);
    /* The listen line says who can dial it: with the NAT line of its own, a node alone
     * with two warnings went over the ten lines of the summary. */
    mv_cstr(res, "listen", a, sizeof(a));
    if (!mv_value(res, "nat", &nat)) {
        line("listen", a);
    } else {
        char mode[16], method[16], ext[64], err[160], reach[16];
        bool open = strcmp(mv_cstr(&nat, "reach", reach, sizeof(reach)), "open") == 0;
        mv_cstr(&nat, "mode", mode, sizeof(mode));
        mv_cstr(&nat, "method", method, sizeof(method));
        mv_cstr(&nat, "external", ext, sizeof(ext));
        mv_cstr(&nat, "error", err, sizeof(err));
        if (method[0] != '\0')
            snprintf(buf, sizeof(buf), "%s; %s: %s:%llu mapped (lease %llu s), peers can dial in",
                     a, method, ext, (unsigned long long)mv_uint(&nat, "mapped_port", 0),
                     (unsigned long long)mv_uint(&nat, "lease_s", 0));
        else if (mv_bool(&nat, "busy", false))
            snprintf(buf, sizeof(buf), "%s; nat %s: asking the router...", a, mode);
        else
            snprintf(buf, sizeof(buf), "%s; nat %s%s%s, %s", a, mode, err[0] != '\0' ? ", " : "",
                     err, open ? "peers can dial in" : "only local peers can dial in");
        line("listen", buf);
    }
    if (mv_value(res, "warnings", &v) && mp_read_array(&v, &nw) == 0) {
        for (uint32_t i = 0; i < nw && i < STATUS_WARNINGS_SHOWN; i++) {
            const char *s;
            uint32_t n;
            if (mp_read_str(&v, CTL_MSG_MAX, &s, &n) != 0)
                break;
            fmt_clean(a, sizeof(a), s, n, false);
            if (i + 1 == STATUS_WARNINGS_SHOWN && nw > STATUS_WARNINGS_SHOWN)
                snprintf(buf, sizeof(buf), "%u more (pull doctor says what to do)", nw - i);
            else
                snprintf(buf, sizeof(buf), "%s (pull doctor)", a);
            line("warning", buf);
        }
    }
    return EXIT_OK;
}

int
cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {{"verbose", no_argument, NULL, OPT_VERBOSE},
                                         CLI_COMMON_OPTIONS};
    bool all = false;
    int c;

    while ((c = cli_getopt(argc, argv, opts)) != -1) {
        if (c == OPT_VERBOSE)
            all = true;
    }
    if (optind < argc)
        return cli_usage("unexpected argument '%s'", argv[optind]);
    return cli_run("status", NULL, NULL, all ? verbose : summary);
}
