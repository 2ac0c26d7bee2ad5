/* pull dyad propose|accept|decline|done|ack|cancel|list|show: exchanges between two people.
 * The control commands are "dyad.<verb>" (proto/ctl.h); a pulld that doesn't serve them
 * yet answers UNKNOWN_CMD, which cli_call reports. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/mp.h"

struct dyad_args {
    const char *verb;
    const char *key; /* "record" for propose, else "id" */
    char id[CLI_REF_MAX + 1];
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

/* The verb a person knows for a message kind. */
static const char *
step_word(const char *kind)
{
    return strcmp(kind, "note") == 0 ? "message" : kind;
}

/* Prints the conversation of a dyad map: one line per message, oldest first - when, who,
 * the step, and the text (lines of it indented under the first). */
static void
print_thread(const struct pull_rd *d)
{
    struct pull_rd v;
    uint32_t n = 0;

    if (!mv_value(d, "messages", &v) || mp_read_array(&v, &n) != 0 || n == 0)
        return;
    printf("\nconversation\n");
    for (uint32_t i = 0; i < n; i++) {
        struct pull_rd m = v;
        char when[64], who[256], kind[32], text[4 * 500 + 1];
        struct sv t;
        time_t tt;
        struct tm tm;

        if (ctl_value_check(&v, 2) != 0)
            break;
        tt = (time_t)mv_uint(&m, "at", mv_uint(&m, "created", 0));
        if (localtime_r(&tt, &tm) == NULL ||
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm) == 0)
            snprintf(when, sizeof(when), "?");
        mv_cstr(&m, "author_label", who, sizeof(who));
        if (who[0] == '\0')
            snprintf(who, sizeof(who), "%s",
                     strcmp(mv_str(&m, "from").p, "me") == 0 ? "you" : "peer");
        mv_cstr(&m, "step", kind, sizeof(kind));
        if (kind[0] == '\0')
            mv_cstr(&m, "kind", kind, sizeof(kind));
        t = mv_str(&m, "text");
        if (t.n == 0)
            t = mv_str(&m, "note");
        fmt_clean(text, sizeof(text), t.p, t.n, true);
        if (cli.color)
            printf("  \033[2m%s\033[0m  %-16s \033[36m%-8s\033[0m", when, who, step_word(kind));
        else
            printf("  %s  %-16s %-8s", when, who, step_word(kind));
        if (text[0] != '\0') {
            /* later lines of a message under its first */
            for (char *line = text, *nl; line != NULL; line = nl) {
                nl = strchr(line, '\n');
                if (nl != NULL)
                    *nl++ = '\0';
                if (line == text)
                    printf(" %s\n", line);
                else
                    printf("  %-16s %-16s %-8s %s\n", "", "", "", line);
            }
        } else {
            printf("\n");
        }
    }
}

static int
show_one(struct pull_rd *res, void *ctx)
{
    char id[16], state[64], who[256], role[32], rec[16], live[16], title[512], kind[32], buf[512];
    (void)ctx;

    if (mp_peek(res) != MP_MAP)
        return cli_error("pulld sent a dyad that is not a map");
    rec_short(res, "id", id);
    mv_cstr(res, "state", state, sizeof(state));
    mv_cstr(res, "counterpart_full", who, sizeof(who));
    if (who[0] == '\0')
        rec_short(res, "counterpart", who);
    mv_cstr(res, "role", role, sizeof(role));
    if (cli.color)
        printf("\033[1mdyad\033[0m \033[33m%s\033[0m  %s\n", id, state);
    else
        printf("dyad %s  %s\n", id, state);
    printf("%-9s %s (you %s)\n", "with", who,
           strcmp(role, "proposer") == 0 ? "proposed" : "were proposed to");
    rec_short(res, "record", rec);
    rec_short(res, "record_live", live);
    mv_cstr(res, "record_title", title, sizeof(title));
    mv_cstr(res, "record_kind", kind, sizeof(kind));
    if (title[0] != '\0')
        printf("%-9s %s \"%s\" (%s)\n", "record", rec, title, kind);
    else
        printf("%-9s %s (not held here any more)\n", "record", rec);
    if (live[0] != '\0' && strcmp(live, rec) != 0)
        printf("%-9s superseded by %s (a renewed or edited version: same handle)\n", "", live);
    printf("%-9s %s\n", "next", mv_cstr(res, "next", buf, sizeof(buf)));
    if (mv_has(res, "expires"))
        printf("%-9s %s\n", "deadline", rec_when(res, "expires", buf, sizeof(buf)));
    printf("%-9s %s\n", "updated", rec_when(res, "updated", buf, sizeof(buf)));
    print_thread(res);
    return EXIT_OK;
}

static int
show_list(struct pull_rd *res, void *ctx)
{
    static const char *const head[] = {"ID", "RECORD", "WITH", "ROLE", "STATE", "NEXT"};
    struct fmt_table t;
    struct pull_wb w;
    uint32_t n;
    int rc;
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
        char id[16], title[512], who[256], role[32], state[64], next[256];
        const char *row[6] = {id, title, who, role, state, next};

        if (ctl_value_check(res, 2) != 0)
            break;
        rec_short(&d, "id", id);
        mv_cstr(&d, "record_title", title, sizeof(title));
        if (title[0] == '\0')
            rec_short(&d, "record", title);
        mv_cstr(&d, "counterpart_full", who, sizeof(who));
        if (who[0] == '\0')
            rec_short(&d, "counterpart", who);
        mv_cstr(&d, "role", role, sizeof(role));
        mv_cstr(&d, "state", state, sizeof(state));
        mv_cstr(&d, "next", next, sizeof(next));
        fmt_table_add(&t, row);
    }
    wb_init(&w, 0);
    rc = fmt_table_render(&t, &w, cli.width, 1, cli.color);
    rc = rc == 0 ? cli_write(&w) : cli_error("out of memory");
    wb_release(&w);
    fmt_table_free(&t);
    return rc;
}

int
cmd_dyad(int argc, char **argv)
{
    static const char *const verbs[] = {"propose", "accept",  "decline", "done", "ack",
                                        "cancel",  "message", "list",    "show"};
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
        return cli_usage("dyad needs a verb: propose, accept, decline, done, ack, cancel, "
                         "message, list or show");
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
    if (strcmp(a.verb, "message") == 0 && (a.message == NULL || a.message[0] == '\0'))
        return cli_usage("dyad message needs --message TEXT");
    if (takes_id &&
        (rc = cli_parse_ref(argv[optind], a.id,
                            strcmp(a.key, "record") == 0 ? "record id" : "dyad id")) != 0)
        return rc;
    if (takes_id)
        cli_lookup(strcmp(a.key, "record") == 0 ? "records" : "dyads", a.id);
    snprintf(cmd, sizeof(cmd), "dyad.%s", a.verb);
    return cli_run(cmd, pack, &a, strcmp(a.verb, "list") == 0 ? show_list : show_one);
}
