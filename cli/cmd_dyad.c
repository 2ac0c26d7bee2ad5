/* pull dyad propose|accept|decline|done|ack|cancel|list|show: exchanges between two people.
 * The control commands are "dyad.<verb>" (proto/ctl.h); a pulld that doesn't serve them
 * yet answers UNKNOWN_CMD, which cli_call reports. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mp.h"

struct dyad_args {
    const char *verb;
    const char *key; /* "record" for propose, else "id" */
    char id[53];
    const char *message;
};

enum { OPT_MESSAGE = CLI_OPT_USER };

static void
pack(msgpack_packer *pk, void *ctx)
{
    const struct dyad_args *a = ctx;

    struct mp_open m;

    mp_open_map(&m, pk);
    if (a->id[0] != '\0')
        mp_kv_str(&m, a->key, a->id);
    if (a->message != NULL)
        mp_kv_str(&m, "message", a->message);
    mp_close(&m);
}

static int
show_one(struct pull_rd *res, void *ctx)
{
    static const char *const first[] = {"id",       "state",     "record",
                                        "proposer", "responder", "updated"};
    (void)ctx;

    if (mp_peek(res) != MP_MAP)
        return cli_error("pulld sent a dyad that is not a map");
    kv_print(res, first, sizeof(first) / sizeof(first[0]));
    return EXIT_OK;
}

static int
show_list(struct pull_rd *res, void *ctx)
{
    static const char *const head[] = {"ID", "STATE", "RECORD", "PROPOSER", "RESPONDER", "UPDATED"};
    struct fmt_table t;
    struct pull_wb w;
    uint32_t n;
    int rc;
    int64_t now = cli_now();
    (void)ctx;

    if (mp_read_array(res, &n) != 0)
        return cli_error("pulld sent a dyad list that is not a list");
    if (n == 0) {
        printf("no dyads (propose one with: pull dyad propose RECORD_ID)\n");
        return EXIT_OK;
    }
    if (fmt_table_init(&t, 6, head) != 0)
        return cli_error("out of memory");
    t.color[0] = "33";
    for (uint32_t i = 0; i < n; i++) {
        struct pull_rd d = *res;
        char id[16], state[64], rec[16], from[16], to[16], upd[64];
        const char *row[6] = {id, state, rec, from, to, upd};

        if (ctl_value_check(res, 2) != 0)
            break;
        rec_short(&d, "id", id);
        mv_cstr(&d, "state", state, sizeof(state));
        rec_short(&d, "record", rec);
        rec_short(&d, "proposer", from);
        rec_short(&d, "responder", to);
        fmt_reltime(upd, sizeof(upd), (int64_t)mv_uint(&d, "updated", 0), now);
        fmt_table_add(&t, row);
    }
    wb_init(&w, 0);
    rc = fmt_table_render(&t, &w, cli.width, -1, cli.color);
    rc = rc == 0 ? cli_write(&w) : cli_error("out of memory");
    wb_release(&w);
    fmt_table_free(&t);
    return rc;
}

int
cmd_dyad(int argc, char **argv)
{
    static const char *const verbs[] = {"propose", "accept", "decline", "done",
                                        "ack",     "cancel", "list",    "show"};
    static const struct option opts[] = {{"message", required_argument, NULL, OPT_MESSAGE},
                                         CLI_COMMON_OPTIONS};
    struct dyad_args a;
    char cmd[32];
    bool known = false, takes_id, takes_message;
    int opt, rc;

    memset(&a, 0, sizeof(a));
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            cli_print_usage(cli.current);
            return EXIT_OK;
        }
        return cli_usage("dyad needs a verb: propose, accept, decline, done, ack, cancel, list "
                         "or show");
    }
    a.verb = argv[1];
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        known = known || strcmp(verbs[i], a.verb) == 0;
    if (!known) {
        const char *close = fmt_closest(a.verb, verbs, sizeof(verbs) / sizeof(verbs[0]));
        if (close != NULL)
            return cli_usage("unknown verb 'dyad %s'; did you mean 'dyad %s'?", a.verb, close);
        return cli_usage("unknown verb 'dyad %s'", a.verb);
    }
    argc--, argv++;
    takes_id = strcmp(a.verb, "list") != 0;
    takes_message = takes_id && strcmp(a.verb, "show") != 0;
    a.key = strcmp(a.verb, "propose") == 0 ? "record" : "id";
    while ((opt = cli_getopt(argc, argv, opts)) != -1) {
        if (opt == OPT_MESSAGE) {
            if (!takes_message)
                return cli_usage("dyad %s takes no --message", a.verb);
            a.message = optarg;
        }
    }
    if (argc - optind != (takes_id ? 1 : 0))
        return cli_usage(takes_id ? "dyad %s needs one ID" : "dyad %s takes no arguments", a.verb);
    if (takes_id &&
        (rc = cli_parse_id(argv[optind], a.id,
                           strcmp(a.key, "record") == 0 ? "record id" : "dyad id")) != 0)
        return rc;
    if (takes_id)
        cli_lookup(strcmp(a.key, "record") == 0 ? "records" : "dyads", a.id);
    snprintf(cmd, sizeof(cmd), "dyad.%s", a.verb);
    return cli_run(cmd, pack, &a, strcmp(a.verb, "list") == 0 ? show_list : show_one);
}
