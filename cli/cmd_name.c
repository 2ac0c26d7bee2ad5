/* pull name AUTHOR ALIAS | pull name --remove AUTHOR | pull names: my petnames, the
 * private names I give people (never published). The control commands are "name.set",
 * "name.remove" and "names" (proto/ctl.h). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mp.h"

struct name_args {
    char author[CLI_REF_MAX + 1];
    const char *petname;
};

enum { OPT_REMOVE = CLI_OPT_USER };

static void
pack(msgpack_packer *pk, void *ctx)
{
    const struct name_args *a = ctx;
    struct mp_open m;

    mp_open_map(&m, pk);
    mp_kv_str(&m, "author", a->author);
    if (a->petname != NULL)
        mp_kv_str(&m, "petname", a->petname);
    mp_close(&m);
}

static int
human(struct pull_rd *res, void *ctx)
{
    char pet[256], key[16], theirs[256];
    (void)ctx;

    if (mp_peek(res) != MP_MAP)
        return cli_error("pulld sent a result that is not a map");
    mv_cstr(res, "petname", pet, sizeof(pet));
    rec_short(res, "author", key);
    mv_cstr(res, "author_name", theirs, sizeof(theirs));
    if (mv_bool(res, "removed", false))
        printf("%s is no longer your name for %s\n", pet, key);
    else if (theirs[0] != '\0')
        printf("%s is your name for %s (who calls themselves %s)\n", pet, key, theirs);
    else
        printf("%s is your name for %s\n", pet, key);
    return EXIT_OK;
}

int
cmd_name(int argc, char **argv)
{
    static const struct option opts[] = {{"remove", no_argument, NULL, OPT_REMOVE},
                                         CLI_COMMON_OPTIONS};
    struct name_args a;
    bool remove = false;
    int opt, rc;

    memset(&a, 0, sizeof(a));
    while ((opt = cli_getopt(argc, argv, opts)) != -1) {
        if (opt == OPT_REMOVE)
            remove = true;
    }
    if (remove) {
        if (argc - optind != 1)
            return cli_usage("name --remove needs one AUTHOR");
    } else if (argc - optind != 2) {
        return cli_usage("name needs AUTHOR and ALIAS (or --remove AUTHOR)");
    }
    if ((rc = cli_parse_ref(argv[optind], a.author, "author")) != 0)
        return rc;
    if (!remove) {
        a.petname = argv[optind + 1];
        if (strlen(a.petname) > CLI_REF_MAX)
            return cli_usage("a petname is at most %d bytes", CLI_REF_MAX);
    }
    return cli_run(remove ? "name.remove" : "name.set", pack, &a, human);
}

static int
human_list(struct pull_rd *res, void *ctx)
{
    static const char *const head[] = {"PETNAME", "KEY", "THEIR NAME"};
    struct fmt_table t;
    struct pull_wb w;
    uint32_t n;
    int rc;
    (void)ctx;

    if (mp_read_array(res, &n) != 0)
        return cli_error("pulld sent a result that is not a list");
    if (n == 0) {
        printf("no petnames (give one with: pull name AUTHOR ALIAS)\n");
        return EXIT_OK;
    }
    if (fmt_table_init(&t, 3, head) != 0)
        return cli_error("out of memory");
    t.color[1] = "33";
    for (uint32_t i = 0; i < n; i++) {
        struct pull_rd e = *res;
        char pet[256], key[16], theirs[256];
        const char *row[3] = {pet, key, theirs};
        if (ctl_value_check(res, 2) != 0)
            break;
        mv_cstr(&e, "petname", pet, sizeof(pet));
        rec_short(&e, "author", key);
        mv_cstr(&e, "author_name", theirs, sizeof(theirs));
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
cmd_names(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS};

    while (cli_getopt(argc, argv, opts) != -1)
        ;
    if (optind < argc)
        return cli_usage("names takes no arguments");
    return cli_run("names", NULL, NULL, human_list);
}
