/* pull connect ID@HOST:PORT: dial a peer now. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mp.h"

static void
pack(msgpack_packer *pk, void *ctx)
{
    struct mp_open m;

    mp_open_map(&m, pk);
    mp_kv_str(&m, "address", ctx);
    mp_close(&m);
}

static int
human(struct pull_rd *res, void *ctx)
{
    const char *addr = ctx, *at = strchr(addr, '@');
    char used[320];

    mv_cstr(res, "address", used, sizeof(used));
    if (used[0] == '\0')
        snprintf(used, sizeof(used), "%s", at + 1);
    if (!mv_bool(res, "already", false))
        printf("connected to %.8s at %s\n", addr, used);
    else if (strcmp(used, at + 1) == 0)
        printf("already connected to %.8s at %s\n", addr, used);
    else
        printf("already connected to %.8s at %s (so %s was not dialed)\n", addr, used, at + 1);
    return EXIT_OK;
}

/* Checks ID@HOST:PORT loosely: a 52-character id, a host, a numeric port. pulld parses it
 * for real. */
static bool
address_ok(const char *a)
{
    const char *at = strchr(a, '@'), *colon;
    char id[53], norm[53];
    long port;
    char *end;

    if (at == NULL || at - a != IDENT_TEXT_LEN)
        return false;
    memcpy(id, a, IDENT_TEXT_LEN);
    id[IDENT_TEXT_LEN] = '\0';
    /* fmt_id_prefix clears its output first: never give it its own input */
    if (fmt_id_prefix(id, norm) != 0)
        return false;
    if ((colon = strrchr(at, ':')) == NULL || colon == at + 1)
        return false;
    port = strtol(colon + 1, &end, 10);
    return *end == '\0' && colon[1] != '\0' && port > 0 && port < 65536;
}

int
cmd_connect(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS};
    char addr[512];

    while (cli_getopt(argc, argv, opts) != -1)
        ;
    if (argc - optind != 1)
        return cli_usage(argc - optind == 0 ? "connect needs an address ID@HOST:PORT"
                                            : "connect takes one address");
    if (!address_ok(argv[optind])) {
        fmt_clean(addr, sizeof(addr), argv[optind], strlen(argv[optind]), false);
        return cli_usage("'%s' is not an address: want ID@HOST:PORT (ID: the 52-character "
                         "id shown by `pull id` on that node)",
                         addr);
    }
    snprintf(addr, sizeof(addr), "%s", argv[optind]);
    for (char *p = addr; *p != '@'; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    return cli_run("connect", pack, addr, human);
}
