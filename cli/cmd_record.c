/* pull offer|need add|list|renew|withdraw|edit: my own records. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/fold.h"
#include "lib/mp.h"
#include "lib/record.h"

/* What the flags of add/edit/renew collected. */
struct rec_args {
    const char *kind;
    const char *verb;
    char id[53];
    char *title; /* joined operands (add) or --title (edit) */
    const char *body, *location, *terms;
    char tags[RECORD_TAGS_MAX][RECORD_TAG_MAX + 1];
    unsigned ntags;
    /* edit: --add-tag and --remove-tag amend the tags instead of replacing them */
    const char *add_tags[RECORD_TAGS_MAX], *remove_tags[RECORD_TAGS_MAX];
    unsigned nadd, nremove;
    bool has_expires;
    uint64_t expires_s;
    bool expired; /* list --expired */
};

enum {
    OPT_BODY = CLI_OPT_USER,
    OPT_TAG,
    OPT_EXPIRES,
    OPT_LOCATION,
    OPT_TERMS,
    OPT_TITLE,
    OPT_ADD_TAG,
    OPT_REMOVE_TAG,
    OPT_EXPIRED
};

/* pack_strs packs an array arg of n strings. */
static void
pack_strs(struct mp_open *m, const char *key, const char *const *v, unsigned n)
{
    struct mp_open list;

    mp_key(m, key);
    mp_open_array(&list, m->pk);
    for (unsigned i = 0; i < n; i++)
        mp_pack_cstr(mp_item(&list), v[i]);
    mp_close(&list);
}

static void
pack(msgpack_packer *pk, void *ctx)
{
    const struct rec_args *a = ctx;
    struct mp_open m, tags;

    mp_open_map(&m, pk);
    mp_kv_str(&m, "kind", a->kind);
    if (a->id[0] != '\0')
        mp_kv_str(&m, "id", a->id);
    if (a->title != NULL)
        mp_kv_str(&m, "title", a->title);
    if (a->body != NULL)
        mp_kv_str(&m, "body", a->body);
    if (a->location != NULL)
        mp_kv_str(&m, "location", a->location);
    if (a->terms != NULL)
        mp_kv_str(&m, "terms", a->terms);
    if (a->ntags > 0) {
        mp_key(&m, "tags");
        mp_open_array(&tags, m.pk);
        for (unsigned i = 0; i < a->ntags; i++)
            mp_pack_cstr(mp_item(&tags), a->tags[i]);
        mp_close(&tags);
    }
    if (a->nadd > 0)
        pack_strs(&m, "add_tags", a->add_tags, a->nadd);
    if (a->nremove > 0)
        pack_strs(&m, "remove_tags", a->remove_tags, a->nremove);
    if (a->has_expires)
        mp_kv_uint(&m, "expires_s", a->expires_s);
    if (a->expired)
        mp_kv_bool(&m, "expired", true);
    mp_close(&m);
}

/* blank: nothing but white space. */
static bool
blank(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    }
    return true;
}

/* Adds a tag, folded the way search folds words (lib/fold.h: "CAFÉ" is "cafe"); a tag that
 * folds like one given before is the same tag. */
static int
add_tag(struct rec_args *a, const char *tag)
{
    char t[RECORD_TAG_MAX + 1];
    size_t n;
    long fl;

    if (tag[0] == '#')
        tag++; /* "#rust" is how people write tags */
    n = strlen(tag);
    if (n == 0)
        return cli_usage("a tag can't be empty");
    if (n > 4 * RECORD_TAG_MAX || (fl = fold_string(tag, t, sizeof(t))) < 0)
        return cli_usage("tag '%s' is %zu characters (%zu bytes); a tag is at most %d bytes "
                         "(%d letters a-z, fewer accented ones)",
                         tag, fold_chars(tag, n), n, RECORD_TAG_MAX, RECORD_TAG_MAX);
    if (fl == 0)
        return cli_usage("tag '%s' has nothing left once folded", tag);
    for (unsigned i = 0; i < a->ntags; i++) {
        if (strcmp(a->tags[i], t) == 0)
            return 0;
    }
    if (a->ntags >= RECORD_TAGS_MAX)
        return cli_usage("at most %d tags", RECORD_TAGS_MAX);
    memcpy(a->tags[a->ntags++], t, (size_t)fl + 1);
    return 0;
}

/* Refuses text over max bytes (the wire's limit), saying it in characters as well: how
 * long the text is and how many of its characters fit. */
static int
check_size(const char *what, const char *s, size_t max)
{
    size_t n, fit;

    if (s == NULL || (n = strlen(s)) <= max)
        return 0;
    fit = max;
    while (fit > 0 && ((uint8_t)s[fit] & 0xc0) == 0x80)
        fit--;
    return cli_usage("the %s is %zu characters (%zu bytes); at most %zu bytes, here the first "
                     "%zu characters",
                     what, fold_chars(s, n), n, max, fold_chars(s, fit));
}

static int
check_sizes(const struct rec_args *a)
{
    int rc;

    if (a->title != NULL && blank(a->title))
        return cli_usage("the title is empty%s: say what you %s",
                         a->title[0] != '\0' ? " (only spaces)" : "", a->kind);
    if ((rc = check_size("title", a->title, RECORD_TITLE_MAX)) != 0 ||
        (rc = check_size("body", a->body, RECORD_BODY_MAX)) != 0 ||
        (rc = check_size("terms text", a->terms, RECORD_TERMS_MAX)) != 0)
        return rc;
    return 0;
}

/* Parses the options of add/edit/renew into a; returns 0 or an exit code. */
static int
parse_flags(int argc, char **argv, struct rec_args *a, bool content, bool title)
{
    static const struct option content_opts[] = {
        {"body", required_argument, NULL, OPT_BODY},
        {"tag", required_argument, NULL, OPT_TAG},
        {"expires", required_argument, NULL, OPT_EXPIRES},
        {"location", required_argument, NULL, OPT_LOCATION},
        {"terms", required_argument, NULL, OPT_TERMS},
        {"title", required_argument, NULL, OPT_TITLE},
        {"add-tag", required_argument, NULL, OPT_ADD_TAG},
        {"remove-tag", required_argument, NULL, OPT_REMOVE_TAG},
        CLI_COMMON_OPTIONS};
    static const struct option expires_opts[] = {{"expires", required_argument, NULL, OPT_EXPIRES},
                                                 CLI_COMMON_OPTIONS};
    int c, rc;

    while ((c = cli_getopt(argc, argv, content ? content_opts : expires_opts)) != -1) {
        switch (c) {
        case OPT_BODY:
            a->body = optarg;
            break;
        case OPT_TAG:
            if ((rc = add_tag(a, optarg)) != 0)
                return rc;
            break;
        case OPT_EXPIRES:
            if ((rc = cli_parse_expires(optarg, &a->expires_s)) != 0)
                return rc;
            a->has_expires = true;
            break;
        case OPT_LOCATION:
            a->location = optarg;
            break;
        case OPT_TERMS:
            a->terms = optarg;
            break;
        case OPT_TITLE:
            if (!title)
                return cli_usage("--title is for edit; the title of add is its argument");
            a->title = optarg;
            break;
        case OPT_ADD_TAG:
        case OPT_REMOVE_TAG:
            if (!title)
                return cli_usage("--%s is for edit (add takes --tag)",
                                 c == OPT_ADD_TAG ? "add-tag" : "remove-tag");
            if ((c == OPT_ADD_TAG ? a->nadd : a->nremove) >= RECORD_TAGS_MAX)
                return cli_usage("at most %d tags", RECORD_TAGS_MAX);
            if (optarg[0] == '\0' || (optarg[0] == '#' && optarg[1] == '\0'))
                return cli_usage("a tag can't be empty");
            if (c == OPT_ADD_TAG)
                a->add_tags[a->nadd++] = optarg[0] == '#' ? optarg + 1 : optarg;
            else
                a->remove_tags[a->nremove++] = optarg[0] == '#' ? optarg + 1 : optarg;
            break;
        }
    }
    return 0;
}

static int
show_added(struct pull_rd *res, void *ctx)
{
    const struct rec_args *a = ctx;
    char id[16], title[512], exp[64], tags[512];
    bool edit = strcmp(a->verb, "add") != 0;

    fmt_reltime(exp, sizeof(exp), (int64_t)mv_uint(res, "expires", 0), cli_now());
    printf("%s %s %s: %s (expires %s)\n", edit ? "edited" : "published", a->kind,
           rec_short(res, "id", id), mv_cstr(res, "title", title, sizeof(title)), exp);
    rec_tags(res, tags, sizeof(tags));
    if (edit && a->ntags > 0)
        printf("tags replaced: now %s (--add-tag and --remove-tag change some instead)\n", tags);
    else if (edit && (a->nadd > 0 || a->nremove > 0))
        printf("tags now: %s\n", tags[0] != '\0' ? tags : "none");
    return EXIT_OK;
}

static int
show_renewed(struct pull_rd *res, void *ctx)
{
    const struct rec_args *a = ctx;
    char id[16], exp[64];

    fmt_reltime(exp, sizeof(exp), (int64_t)mv_uint(res, "expires", 0), cli_now());
    printf("renewed %s %s: expires %s (new id %s)\n", a->kind, a->id, exp,
           rec_short(res, "id", id));
    return EXIT_OK;
}

static int
show_withdrawn(struct pull_rd *res, void *ctx)
{
    const struct rec_args *a = ctx;
    (void)res;

    printf("withdrew %s %s\n", a->kind, a->id);
    return EXIT_OK;
}

static int
show_list(struct pull_rd *res, void *ctx)
{
    const struct rec_args *a = ctx;
    char empty[160];

    if (a->expired) {
        snprintf(empty, sizeof(empty), "no expired %ss of yours", a->kind);
        return rec_print_list(res, "itge", empty);
    }
    snprintf(empty, sizeof(empty),
             "no live %ss (publish one with: pull %s add TITLE; expired ones: pull %s list "
             "--expired)",
             a->kind, a->kind, a->kind);
    return rec_print_list(res, "itge", empty);
}

/* Joins argv[from..to) with spaces into a new string. */
static char *
join(char **argv, int from, int to)
{
    size_t n = 1;
    char *s;

    for (int i = from; i < to; i++)
        n += strlen(argv[i]) + 1;
    if ((s = malloc(n)) == NULL)
        return NULL;
    s[0] = '\0';
    for (int i = from; i < to; i++) {
        if (i > from)
            strcat(s, " ");
        strcat(s, argv[i]);
    }
    return s;
}

/* Each verb, argv[0] being the verb. */
static int
verb_add(int argc, char **argv, struct rec_args *a)
{
    int rc;

    if ((rc = parse_flags(argc, argv, a, true, false)) != 0)
        return rc;
    if (optind >= argc)
        return cli_usage("%s add needs a TITLE", a->kind);
    if ((a->title = join(argv, optind, argc)) == NULL)
        return cli_error("out of memory");
    if ((rc = check_sizes(a)) == 0)
        rc = cli_run("record.add", pack, a, show_added);
    free(a->title);
    a->title = NULL;
    return rc;
}

static int
verb_with_id(int argc, char **argv, struct rec_args *a, const char *cmd, bool content,
             int (*human)(struct pull_rd *, void *))
{
    int rc;

    if ((rc = parse_flags(argc, argv, a, content, true)) != 0)
        return rc;
    if (argc - optind != 1)
        return cli_usage("%s %s needs one ID", a->kind, a->verb);
    if ((rc = cli_parse_id(argv[optind], a->id, "record id")) != 0 || (rc = check_sizes(a)) != 0)
        return rc;
    cli_lookup("mine", a->id);
    return cli_run(cmd, pack, a, human);
}

static int
verb_list(int argc, char **argv, struct rec_args *a)
{
    static const struct option opts[] = {{"expired", no_argument, NULL, OPT_EXPIRED},
                                         CLI_COMMON_OPTIONS};
    int c;

    while ((c = cli_getopt(argc, argv, opts)) != -1) {
        if (c == OPT_EXPIRED)
            a->expired = true;
    }
    if (optind < argc)
        return cli_usage("unexpected argument '%s'", argv[optind]);
    return cli_run("record.list", pack, a, show_list);
}

static int
run(const char *kind, int argc, char **argv)
{
    static const char *const verbs[] = {"add", "list", "renew", "withdraw", "edit"};
    struct rec_args a;
    const char *close;

    memset(&a, 0, sizeof(a));
    a.kind = kind;
    /* Options before the verb (pull offer --json list) are global ones only. */
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            cli_print_usage(cli.current);
            return EXIT_OK;
        }
        return cli_usage("%s needs a verb: add, list, renew, withdraw or edit", kind);
    }
    a.verb = argv[1];
    argc--, argv++;
    if (strcmp(a.verb, "add") == 0)
        return verb_add(argc, argv, &a);
    if (strcmp(a.verb, "list") == 0)
        return verb_list(argc, argv, &a);
    if (strcmp(a.verb, "renew") == 0)
        return verb_with_id(argc, argv, &a, "record.renew", false, show_renewed);
    if (strcmp(a.verb, "withdraw") == 0) {
        static const struct option opts[] = {CLI_COMMON_OPTIONS};
        while (cli_getopt(argc, argv, opts) != -1)
            ;
        if (argc - optind != 1)
            return cli_usage("%s withdraw needs one ID", kind);
        if (cli_parse_id(argv[optind], a.id, "record id") != 0)
            return EXIT_USAGE;
        cli_lookup("mine", a.id);
        return cli_run("record.withdraw", pack, &a, show_withdrawn);
    }
    if (strcmp(a.verb, "edit") == 0)
        return verb_with_id(argc, argv, &a, "record.edit", true, show_added);
    close = fmt_closest(a.verb, verbs, sizeof(verbs) / sizeof(verbs[0]));
    if (close != NULL)
        return cli_usage("unknown verb '%s %s'; did you mean '%s %s'?", kind, a.verb, kind, close);
    return cli_usage("unknown verb '%s %s'", kind, a.verb);
}

int
cmd_offer(int argc, char **argv)
{
    return run("offer", argc, argv);
}

int
cmd_need(int argc, char **argv)
{
    return run("need", argc, argv);
}
