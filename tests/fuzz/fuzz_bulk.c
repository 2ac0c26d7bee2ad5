/* Fuzz the RECON_BULK decoder (proto/msg.h), plus round trips: whatever decodes must
 * re-encode to a message that decodes to the same sid and ids, and, when the input has no
 * extra fields, to the input byte for byte (canonical). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct msg_bulk b, b2;
    struct pull_wb w;
    uint32_t type;

    if (msg_bulk_decode(data, size, &b) != 0)
        return 0;
    if (msg_peek_type(data, size, &type) != 0 || type != MSG_RECON_BULK ||
        msg_type_name(type) == NULL)
        abort();
    if (b.sid == 0 || b.n > MSG_BULK_MAX || (b.n > 0 && b.ids == NULL))
        abort();
    for (uint32_t i = 1; i < b.n; i++)
        if (memcmp(b.ids[i - 1], b.ids[i], 32) >= 0)
            abort();
    if (b.n > 0 && ((const uint8_t *)b.ids < data || (const uint8_t *)(b.ids + b.n) > data + size))
        abort(); /* the ids point into the input */
    wb_init(&w, MSG_MAX);
    if (msg_bulk_encode(&b, &w) != 0 || msg_bulk_decode(w.p, w.len, &b2) != 0 || b2.sid != b.sid ||
        b2.n != b.n || (b.n > 0 && memcmp(b.ids, b2.ids, b.n * 32) != 0))
        abort();
    if (w.len > size || (w.len == size && memcmp(w.p, data, size) != 0))
        abort();
    wb_release(&w);
    return 0;
}
