/* Fuzz record_decode: it must never read out of bounds, and whatever it accepts must pass
 * the field rules and re-encode to exactly the input bytes (one record, one encoding).
 * Text rule 2 is an admission rule (lib/record.h): a decoded record that breaks it (one
 * stored before it) is refused by record_check_fields and record_encode with INVISIBLE or
 * TAG, and by nothing else. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct record rec;
    struct pull_wb w;

    int rc;

    if (record_decode(data, size, &rec) != 0)
        return 0;
    if (size > RECORD_MAX || record_encoded_size(&rec) != size)
        abort();
    if ((rc = record_check_fields(&rec)) == PULL_ERR_INVISIBLE || rc == PULL_ERR_TAG)
        return 0;
    if (rc != 0)
        abort();
    wb_init(&w, RECORD_MAX);
    if (record_encode(&rec, &w) != 0 || w.len != size || memcmp(w.p, data, size) != 0)
        abort();
    wb_release(&w);
    return 0;
}
