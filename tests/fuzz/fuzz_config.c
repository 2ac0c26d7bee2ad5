/* Fuzz config_load_buf: any text must either apply or be refused with a one-line
 * "name:line: reason", never crash, and leave every limit within its bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config c;
    char err[256];
    int rc;

    config_defaults(&c);
    err[0] = '\0';
    rc = config_load_buf(&c, (const char *)data, size, "fuzz", err, sizeof(err));
    if (rc != 0) {
        if (err[0] == '\0' || strchr(err, '\n') != NULL)
            abort();
        return 0;
    }
    if (c.limits.max_conns == 0 || c.limits.max_handshakes == 0 ||
        c.n_bootstrap > CONFIG_BOOTSTRAP_MAX || memchr(c.listen, '\0', sizeof(c.listen)) == NULL)
        abort();
    for (size_t i = 0; i < config_limit_count(); i++) {
        const char *name;
        uint64_t v;
        if (config_limit_at(&c, i, &name, &v) != 0)
            abort();
    }
    return 0;
}
