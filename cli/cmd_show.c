/* pull show ID|AUTHOR: one record in full, or what this node knows of a person: profile,
 * live offers and needs, completed dyads, the trust path from me. */
#include "cli/cli.h"
#include "lib/mp.h"

static void
pack(msgpack_packer *pk, void *ctx)
{
    struct mp_open m;

    mp_open_map(&m, pk);
    mp_kv_str(&m, "id", ctx);
    mp_close(&m);
}

static int
human(struct pull_rd *res, void *ctx)
{
    (void)ctx;
    if (mp_peek(res) != MP_MAP)
        return cli_error("pulld sent a record that is not a map");
    /* a record has an "id"; the author map of `show AUTHOR` has none */
    if (!mv_has(res, "id") && mv_has(res, "author"))
        author_print(res);
    else
        rec_print_full(res);
    return EXIT_OK;
}

int
cmd_show(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS};
    char id[CLI_REF_MAX + 1];
    int rc;

    while (cli_getopt(argc, argv, opts) != -1)
        ;
    if (argc - optind != 1)
        return cli_usage("show needs one record ID or AUTHOR");
    if ((rc = cli_parse_ref(argv[optind], id, "record id or author")) != 0)
        return rc;
    cli_lookup("records", id);
    return cli_run("show", pack, id, human);
}
