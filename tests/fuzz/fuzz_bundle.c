/* Fuzz the bundle reader (lib/bundle.h). Properties:
 *   - the memory reader never reads out of bounds and returns envelopes inside the input,
 *     of length 1..RECORD_ENVELOPE_MAX, in order and without gaps;
 *   - the FILE* reader returns exactly the same sequence and the same final result;
 *   - writing the envelopes read back with the writer reproduces the consumed input. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/bundle.h"
#include "lib/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct bundle_reader mr, *fr = NULL;
    struct bundle_writer w;
    FILE *ff = NULL, *out = NULL;
    char *outbuf = NULL;
    size_t outlen = 0, expect_off = BUNDLE_MAGIC_LEN;
    int mrc, frc;

    fr = malloc(sizeof(*fr));
    if (fr == NULL)
        return 0;
    bundle_reader_init_mem(&mr, data, size);
    if (size > 0 && (ff = fmemopen((void *)(uintptr_t)data, size, "rb")) != NULL)
        bundle_reader_init_file(fr, ff);
    out = open_memstream(&outbuf, &outlen);
    if (out == NULL || bundle_writer_init(&w, out) != 0)
        abort();

    for (;;) {
        const uint8_t *me, *fe;
        size_t ml, fl;
        mrc = bundle_next(&mr, &me, &ml);
        if (ff != NULL) {
            frc = bundle_next(fr, &fe, &fl);
            if (frc != mrc)
                abort();
            if (mrc == 1 && (fl != ml || memcmp(fe, me, ml) != 0))
                abort();
        }
        if (mrc != 1)
            break;
        if (ml == 0 || ml > RECORD_ENVELOPE_MAX)
            abort();
        /* the envelope sits right after its length, inside the input */
        if (me < data + 4 || (size_t)(me - data) != expect_off + 4 ||
            ml > size - (size_t)(me - data))
            abort();
        expect_off += 4 + ml;
        if (bundle_write(&w, me, ml) != 0)
            abort();
    }
    if (mrc != 0 && mrc != PULL_ERR_MALFORMED && mrc != PULL_ERR_VERSION &&
        mrc != PULL_ERR_TOO_BIG && mrc != PULL_ERR_TRUNCATED)
        abort();
    /* errors are sticky, the end stays the end */
    {
        const uint8_t *e;
        size_t l;
        if (bundle_next(&mr, &e, &l) != mrc)
            abort();
    }
    if (bundle_writer_finish(&w) != 0 || fclose(out) != 0)
        abort();
    out = NULL;
    /* the rewritten bundle is the consumed part of the input */
    if (mr.count > 0 || mrc == 0) {
        if (outlen != expect_off || memcmp(outbuf, data, outlen) != 0)
            abort();
    }
    if (mrc == 0 && expect_off != size)
        abort();
    free(outbuf);
    if (ff != NULL)
        fclose(ff);
    free(fr);
    return 0;
}
