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

enum { OPT_USES = CLI_OPT_USER, OPT_EXPIRES, OPT_NO_RESTART };

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
pack_join(msgpack_packer *pk, const char *code)
{
    struct mp_open m;

    mp_open_map(&m, pk);
    mp_kv_str(&m, "code", code);
    mp_close(&m);
}

/* network_of asks a pulld (quietly) which network it is on; false if it does not answer. */
static bool
network_of(char *out, size_t n)
{
    struct client c;
    struct ctl_reply rep;
    struct mp_open m;
    struct pull_rd r;
    bool ok = false;

    if (client_init(&c, cli.data_dir) != 0)
        return false;
    if (client_connect(&c) == 0) {
        mp_open_map(&m, client_begin(&c, "status"));
        mp_close(&m);
        if (client_send(&c) == 0 && client_recv(&c, &rep) == 0 && rep.err == 0) {
            rd_init(&r, rep.result, rep.result_len);
            if (mp_peek(&r) == MP_MAP) {
                mv_cstr(&r, "network", out, n);
                ok = true;
            }
        }
    }
    client_close(&c);
    return ok;
}

/* restart asks pulld to start again on the new key and waits (up to RESTART_WAIT_MS) until
 * it answers on network net. Returns 0 or the exit code (after printing why). */
#define RESTART_WAIT_MS 20000
static int
restart(const char *net)
{
    struct client c;
    struct ctl_reply rep;
    struct mp_open m;
    char now[32];
    int rc;

    if ((rc = cli_connect(&c)) != 0)
        return rc;
    mp_open_map(&m, client_begin(&c, "restart"));
    mp_close(&m);
    rc = cli_call(&c, &rep);
    client_close(&c);
    if (rc != 0)
        return rc;
    for (int waited = 0; waited < RESTART_WAIT_MS; waited += 100) {
        usleep(100 * 1000);
        if (network_of(now, sizeof(now)) && strcmp(now, net) == 0)
            return 0;
    }
    return cli_error("pulld did not come back on network %s within %d s: see its log", net,
                     RESTART_WAIT_MS / 1000);
}

int
cmd_join(int argc, char **argv)
{
    static const struct option opts[] = {{"no-restart", no_argument, NULL, OPT_NO_RESTART},
                                         CLI_COMMON_OPTIONS};
    char inviter[64], addr[320], net[32], dir[512];
    struct client c;
    struct ctl_reply rep;
    struct pull_rd r;
    struct invite inv;
    enum invite_bad bad;
    bool no_restart = false, must_restart;
    int opt, rc;

    while ((opt = cli_getopt(argc, argv, opts)) != -1) {
        if (opt == OPT_NO_RESTART)
            no_restart = true;
    }
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

    if ((rc = cli_connect(&c)) != 0)
        return rc;
    pack_join(client_begin(&c, "join"), argv[optind]);
    rc = cli_call(&c, &rep);
    /* the request held the code: wipe it now that it was sent */
    if (c.out.p != NULL)
        sodium_memzero(c.out.p, c.out.cap);
    if (rc != 0)
        goto out;
    rd_init(&r, rep.result, rep.result_len);
    if (mp_peek(&r) != MP_MAP) {
        rc = cli_error("pulld sent a result that is not a map");
        goto out;
    }
    mv_cstr(&r, "inviter", inviter, sizeof(inviter));
    mv_cstr(&r, "address", addr, sizeof(addr));
    mv_cstr(&r, "network", net, sizeof(net));
    mv_cstr(&r, "config", dir, sizeof(dir));
    must_restart = mv_bool(&r, "restart", false);
    if (cli.json) {
        /* the reply as it is ("restart": true means pulld had to restart, or must) */
        if ((rc = cli_print_json(rep.result, rep.result_len)) != 0)
            goto out;
    }
    client_close(&c);
    if (must_restart && !no_restart) {
        if ((rc = restart(net)) != 0)
            return rc;
        if (!cli.json)
            printf("joined network %s through %.8s at %s; pulld restarted on it and connects "
                   "(the network key and the inviter are in %s/config)\n",
                   net, inviter, addr, dir);
    } else if (!cli.json && must_restart) {
        printf("joined network %s through %.8s at %s; restart pulld to use it (the network key "
               "and the inviter are in %s/config)\n",
               net, inviter, addr, dir);
    } else if (!cli.json) {
        printf("joined network %s through %.8s at %s; connecting\n", net, inviter, addr);
    }
    return EXIT_OK;
out:
    client_close(&c);
    return rc;
}
