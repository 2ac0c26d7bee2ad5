/* Fuzz the bounded MessagePack walker: skipping any input must never read out of bounds,
 * and whatever it accepts must be consumed exactly. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/buf.h"
#include "lib/mp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pull_rd r;

    rd_init(&r, data, size);
    while (rd_left(&r) > 0) {
        size_t before = r.off;
        if (mp_skip(&r) != 0) {
            if (r.off != before)
                abort(); /* a failed read must not move the reader */
            break;
        }
        if (r.off <= before || r.off > size)
            abort();
    }
    return 0;
}
