/* pull status: a summary of the node. */
#include "cli/cli.h"

static int
human(struct pull_rd *res, void *ctx)
{
    static const char *const first[] = {"id",    "name",    "version", "uptime_s",
                                        "peers", "records", "network", "data_dir"};
    (void)ctx;

    kv_print(res, first, sizeof(first) / sizeof(first[0]));
    return EXIT_OK;
}

int
cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS};

    while (cli_getopt(argc, argv, opts) != -1)
        ;
    if (optind < argc)
        return cli_usage("unexpected argument '%s'", argv[optind]);
    return cli_run("status", NULL, NULL, human);
}
