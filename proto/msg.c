#include "proto/msg.h"

#include "lib/err.h"
#include "lib/mp.h"

int
msg_peek_type(const uint8_t *p, size_t n, uint32_t *type)
{
    struct pull_rd r;
    uint32_t count;
    uint64_t t;
    int rc;

    *type = 0;
    if (n > MSG_MAX)
        return PULL_ERR_TOO_BIG;
    rd_init(&r, p, n);
    if ((rc = mp_read_array(&r, &count)) != 0)
        return rc;
    if (count < 1)
        return PULL_ERR_MALFORMED;
    if ((rc = mp_read_uint_max(&r, UINT32_MAX, &t)) != 0)
        return rc;
    *type = (uint32_t)t;
    return 0;
}
