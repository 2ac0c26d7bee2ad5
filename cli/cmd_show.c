/* pull show ID: one record in full. */
#include "cli/cli.h"
#include "lib/mp.h"

static void
pack(msgpack_packer *pk, void *ctx)
{
    msgpack_pack_map(pk, 1);
    mp_pack_cstr(pk, "id");
    mp_pack_cstr(pk, ctx);
}

static int
human(struct pull_rd *res, void *ctx)
{
    (void)ctx;
    if (mp_peek(res) != MP_MAP)
        return cli_error("pulld sent a record that is not a map");
    rec_print_full(res);
    return EXIT_OK;
}

int
cmd_show(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS};
    char id[53];
    int rc;

    while (cli_getopt(argc, argv, opts) != -1)
        ;
    if (argc - optind != 1)
        return cli_usage("show needs one record ID");
    if ((rc = cli_parse_id(argv[optind], id, "record id")) != 0)
        return rc;
    return cli_run("show", pack, id, human);
}
