/* pull profile set [--name N] [--about T] [--tag T]... [--location G] | profile show [AUTHOR]:
 * who I say I am (a profile record that gossips like any other), and who others say they
 * are. The control commands are "profile.set" and "profile.show" (proto/ctl.h). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/fold.h"
#include "lib/mp.h"
#include "lib/record.h"

struct profile_args {
    const char *name, *about, *location;
    const char *tags[RECORD_TAGS_MAX];
    unsigned ntags;
    char author[CLI_REF_MAX + 1];
};

enum { OPT_NAME = CLI_OPT_USER, OPT_ABOUT, OPT_TAG, OPT_LOCATION };

static void
pack(msgpack_packer *pk, void *ctx)
{
    const struct profile_args *a = ctx;
    struct mp_open m, tags;

    mp_open_map(&m, pk);
    if (a->name != NULL)
        mp_kv_str(&m, "name", a->name);
    if (a->about != NULL)
        mp_kv_str(&m, "about", a->about);
    if (a->location != NULL)
        mp_kv_str(&m, "location", a->location);
    if (a->ntags > 0) {
        mp_key(&m, "tags");
        mp_open_array(&tags, m.pk);
        for (unsigned i = 0; i < a->ntags; i++)
            mp_pack_cstr(mp_item(&tags), a->tags[i]);
        mp_close(&tags);
    }
    if (a->author[0] != '\0')
        mp_kv_str(&m, "author", a->author);
    mp_close(&m);
}

/* A profile for a person: who, then what they say. */
static int
human(struct pull_rd *res, void *ctx)
{
    char who[256], buf[1024];
    struct sv about;
    (void)ctx;

    if (mp_peek(res) != MP_MAP)
        return cli_error("pulld sent a profile that is not a map");
    person_of(res, "author", "author", who, sizeof(who));
    if (cli.color)
        printf("\033[1m%s\033[0m%s\n", who, mv_bool(res, "mine", false) ? " (you)" : "");
    else
        printf("%s%s\n", who, mv_bool(res, "mine", false) ? " (you)" : "");
    printf("%-9s %s\n", "name", mv_cstr(res, "title", buf, sizeof(buf)));
    if (mv_has(res, "petname"))
        printf("%-9s %s\n", "petname", mv_cstr(res, "petname", buf, sizeof(buf)));
    about = mv_str(res, "body");
    if (about.n > 0) {
        char clean[4 * 1000 + 1];
        fmt_clean(clean, sizeof(clean), about.p, about.n, true);
        printf("%-9s %s\n", "about", clean);
    }
    if (rec_tags(res, buf, sizeof(buf))[0] != '\0')
        printf("%-9s %s\n", "tags", buf);
    if (mv_cstr(res, "location", buf, sizeof(buf))[0] != '\0')
        printf("%-9s %s\n", "location", buf);
    printf("%-9s %s\n", "key", mv_cstr(res, "author", buf, sizeof(buf)));
    if (mv_has(res, "author_dyads_completed")) {
        uint64_t done = mv_uint(res, "author_dyads_completed", 0),
                 peers = mv_uint(res, "author_dyads_counterparts", 0);
        if (done == 0)
            printf("%-9s no completed dyads yet\n", "dyads");
        else
            printf("%-9s %llu completed with %llu %s\n", "dyads", (unsigned long long)done,
                   (unsigned long long)peers, peers == 1 ? "person" : "people");
    }
    printf("%-9s %s\n", "updated", rec_when(res, "created", buf, sizeof(buf)));
    return EXIT_OK;
}

int
cmd_profile(int argc, char **argv)
{
    static const struct option opts[] = {{"name", required_argument, NULL, OPT_NAME},
                                         {"about", required_argument, NULL, OPT_ABOUT},
                                         {"tag", required_argument, NULL, OPT_TAG},
                                         {"location", required_argument, NULL, OPT_LOCATION},
                                         CLI_COMMON_OPTIONS};
    static const char *const verbs[] = {"set", "show"};
    struct profile_args a;
    bool set;
    int opt, rc;

    memset(&a, 0, sizeof(a));
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            cli_print_usage(cli.current);
            return EXIT_OK;
        }
        return cli_usage("profile needs a verb: set or show");
    }
    if (strcmp(argv[1], "set") != 0 && strcmp(argv[1], "show") != 0) {
        const char *close = fmt_closest(argv[1], verbs, 2);
        if (close != NULL)
            return cli_usage("unknown verb 'profile %s'; did you mean 'profile %s'?", argv[1],
                             close);
        return cli_usage("unknown verb 'profile %s'", argv[1]);
    }
    set = strcmp(argv[1], "set") == 0;
    argc--, argv++;
    while ((opt = cli_getopt(argc, argv, opts)) != -1) {
        if (!set)
            return cli_usage("profile show takes no options but --json");
        switch (opt) {
        case OPT_NAME:
            a.name = optarg;
            break;
        case OPT_ABOUT:
            a.about = optarg;
            break;
        case OPT_LOCATION:
            a.location = optarg;
            break;
        case OPT_TAG:
            if (a.ntags >= RECORD_TAGS_MAX)
                return cli_usage("at most %d tags", RECORD_TAGS_MAX);
            a.tags[a.ntags++] = optarg[0] == '#' ? optarg + 1 : optarg;
            break;
        }
    }
    if (set) {
        if (optind < argc)
            return cli_usage("profile set takes options only (--name, --about, --tag, "
                             "--location)");
        if (a.name != NULL && strlen(a.name) > 64)
            return cli_usage("a name is at most 64 bytes (here %zu characters, %zu bytes)",
                             fold_chars(a.name, strlen(a.name)), strlen(a.name));
        if (a.name == NULL && a.about == NULL && a.ntags == 0 && a.location == NULL)
            return cli_usage("profile set needs something to set: --name, --about, --tag or "
                             "--location");
        return cli_run("profile.set", pack, &a, human);
    }
    if (argc - optind > 1)
        return cli_usage("profile show takes at most one AUTHOR");
    if (argc - optind == 1 && (rc = cli_parse_ref(argv[optind], a.author, "author")) != 0)
        return rc;
    return cli_run("profile.show", pack, &a, human);
}
