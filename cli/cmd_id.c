/* pull id: this node's id and the addresses others can dial. */
#include <stdio.h>

#include "cli/cli.h"
#include "lib/mp.h"

static int
human(struct pull_rd *res, void *ctx)
{
    char id[128], addr[512];
    struct pull_rd v;
    uint32_t n = 0;
    (void)ctx;

    printf("id       %s\n", mv_cstr(res, "id", id, sizeof(id)));
    if (!mv_value(res, "addresses", &v) || mp_read_array(&v, &n) != 0 || n == 0) {
        printf("address  (none: pulld is not listening)\n");
        return EXIT_OK;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *s;
        uint32_t len;
        if (mp_read_str(&v, UINT32_MAX, &s, &len) != 0)
            break;
        fmt_clean(addr, sizeof(addr), s, len, false);
        printf("address  %s\n", addr);
    }
    return EXIT_OK;
}

int
cmd_id(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS};

    while (cli_getopt(argc, argv, opts) != -1)
        ;
    if (optind < argc)
        return cli_usage("unexpected argument '%s'", argv[optind]);
    return cli_run("id", NULL, NULL, human);
}
