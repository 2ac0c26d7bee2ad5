/* pull invite [--uses N] [--expires SPAN] | pull join CODE: invitations to this node's
 * network, and joining another's. The control commands are "invite" and "join"
 * (proto/ctl.h); the code's format is lib/invite.h. A code holds secrets: it is printed
 * once, on stdout, and never in an error message. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/err.h"
#include "lib/invite.h"
#include "lib/mp.h"

#define INVITE_EXPIRES_MAX (90u * 86400u)

enum { OPT_USES = CLI_OPT_USER, OPT_EXPIRES };

struct invite_args {
    uint64_t uses, expires_s;
};

static void
pack_invite(msgpack_packer *pk, void *ctx)
{
    const struct invite_args *a = ctx;
    struct mp_open m;

    mp_open_map(&m, pk);
    mp_kv_uint(&m, "uses", a->uses);
    mp_kv_uint(&m, "expires_s", a->expires_s);
    mp_close(&m);
}

static int
human_invite(struct pull_rd *res, void *ctx)
{
    char code[INVITE_TEXT_MAX + 1], when[96];
    uint64_t uses = mv_uint(res, "uses", 1);
    (void)ctx;

    if (mp_peek(res) != MP_MAP)
        return cli_error("pulld sent a result that is not a map");
    mv_cstr(res, "code", code, sizeof(code));
    printf("%s\n", code);
    sodium_memzero(code, sizeof(code));
    /* what it is good for, for a person at a terminal only: stdout stays the one line */
    if (isatty(STDERR_FILENO) == 1) {
        fmt_when(when, sizeof(when), (int64_t)mv_uint(res, "expires", 0), cli_now());
        fprintf(stderr, "(%llu join%s until %s; on the new node: pull join CODE%s)\n",
                (unsigned long long)uses, uses == 1 ? "" : "s", when,
                mv_bool(res, "private", false) ? "; it holds this private network's key" : "");
    }
    return EXIT_OK;
}

int
cmd_invite(int argc, char **argv)
{
    static const struct option opts[] = {{"uses", required_argument, NULL, OPT_USES},
                                         {"expires", required_argument, NULL, OPT_EXPIRES},
                                         CLI_COMMON_OPTIONS};
    struct invite_args a = {.uses = 1, .expires_s = 7u * 86400u};
    char *end;
    int opt, rc;

    while ((opt = cli_getopt(argc, argv, opts)) != -1) {
        if (opt == OPT_USES) {
            unsigned long v;
            if (optarg[0] < '1' || optarg[0] > '9' || strlen(optarg) > 4 ||
                (v = strtoul(optarg, &end, 10)) < 1 || v > 1000 || *end != '\0')
                return cli_usage("--uses wants a number of joins from 1 to 1000");
            a.uses = v;
        } else if (opt == OPT_EXPIRES) {
            rc = fmt_parse_duration(optarg, INVITE_EXPIRES_MAX, &a.expires_s);
            if (rc == PULL_ERR_TOO_BIG)
                return cli_usage("--expires: an invite lives at most 90d");
            if (rc != 0)
                return cli_usage("--expires wants a number and a unit (s, min, h, d, w) like "
                                 "7d, 12h, 30min");
        }
    }
    if (optind < argc)
        return cli_usage("unexpected argument (invite takes only --uses and --expires)");
    return cli_run("invite", pack_invite, &a, human_invite);
}

static void
pack_join(msgpack_packer *pk, void *ctx)
{
    struct mp_open m;

    mp_open_map(&m, pk);
    mp_kv_str(&m, "code", ctx);
    mp_close(&m);
}

static int
human_join(struct pull_rd *res, void *ctx)
{
    char inviter[64], addr[320], net[32], dir[512];
    (void)ctx;

    if (mp_peek(res) != MP_MAP)
        return cli_error("pulld sent a result that is not a map");
    mv_cstr(res, "inviter", inviter, sizeof(inviter));
    mv_cstr(res, "address", addr, sizeof(addr));
    mv_cstr(res, "network", net, sizeof(net));
    mv_cstr(res, "config", dir, sizeof(dir));
    if (mv_bool(res, "restart", false))
        printf("joined network %s through %.8s at %s; restart pulld to use it (the network key "
               "and the inviter are in %s/config)\n",
               net, inviter, addr, dir);
    else
        printf("joined network %s through %.8s at %s; connecting\n", net, inviter, addr);
    return EXIT_OK;
}

int
cmd_join(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS};
    struct invite inv;
    enum invite_bad bad;
    int rc;

    while (cli_getopt(argc, argv, opts) != -1)
        ;
    if (argc - optind != 1)
        return cli_usage(argc - optind == 0 ? "join needs the code `pull invite` printed"
                                            : "join takes one code (quote it if it has spaces)");
    if (sodium_init() < 0)
        return cli_error("libsodium failed to initialize");
    /* a typo is caught here, before pulld dials anything (and with pulld stopped too) */
    rc = invite_decode(argv[optind], &inv, &bad);
    invite_wipe(&inv);
    if (rc != 0)
        return cli_usage("%s", invite_bad_str(bad));
    return cli_run("join", pack_join, argv[optind], human_join);
}
