/* bundle: import/export stream of envelopes (format in bundle.h). */
#include "lib/bundle.h"

#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"

int
bundle_writer_init(struct bundle_writer *w, FILE *f)
{
    memset(w, 0, sizeof(*w));
    w->f = f;
    if (f == NULL)
        return w->err = PULL_ERR_INVAL;
    if (fwrite(BUNDLE_MAGIC, 1, BUNDLE_MAGIC_LEN, f) != BUNDLE_MAGIC_LEN)
        w->err = PULL_ERR_IO;
    return w->err;
}

int
bundle_write(struct bundle_writer *w, const uint8_t *env, size_t len)
{
    uint8_t hdr[4];

    if (w->err != 0)
        return w->err;
    if (env == NULL || len == 0)
        return PULL_ERR_INVAL; /* the caller's mistake; the bundle stays intact */
    if (len > RECORD_ENVELOPE_MAX)
        return PULL_ERR_TOO_BIG;
    be32enc(hdr, (uint32_t)len);
    if (fwrite(hdr, 1, 4, w->f) != 4 || fwrite(env, 1, len, w->f) != len)
        return w->err = PULL_ERR_IO;
    w->count++;
    return 0;
}

int
bundle_writer_finish(struct bundle_writer *w)
{
    if (w->err == 0 && w->f != NULL && fflush(w->f) != 0)
        w->err = PULL_ERR_IO;
    return w->err;
}

void
bundle_reader_init_file(struct bundle_reader *r, FILE *f)
{
    r->f = f;
    r->mem = NULL;
    r->mem_len = r->mem_off = 0;
    r->count = 0;
    r->err = f == NULL ? PULL_ERR_INVAL : 0;
    r->started = 0;
}

void
bundle_reader_init_mem(struct bundle_reader *r, const uint8_t *p, size_t n)
{
    r->f = NULL;
    r->mem = p;
    r->mem_len = p == NULL ? 0 : n;
    r->mem_off = 0;
    r->count = 0;
    r->err = 0;
    r->started = 0;
}

/* Reads exactly n bytes (n <= sizeof(r->buf)) into r->buf (file) or points *out into
 * memory. Returns 0, 1 at a clean end (no byte available and at_boundary), or an error. */
static int
reader_take(struct bundle_reader *r, size_t n, const uint8_t **out, int at_boundary)
{
    if (r->f == NULL) {
        size_t left = r->mem_len - r->mem_off;
        if (left == 0 && at_boundary)
            return 1;
        if (n > left)
            return PULL_ERR_TRUNCATED;
        *out = r->mem + r->mem_off;
        r->mem_off += n;
        return 0;
    } else {
        size_t got = fread(r->buf, 1, n, r->f);
        if (got == n) {
            *out = r->buf;
            return 0;
        }
        if (ferror(r->f))
            return PULL_ERR_IO;
        if (got == 0 && at_boundary)
            return 1;
        return PULL_ERR_TRUNCATED;
    }
}

int
bundle_next(struct bundle_reader *r, const uint8_t **env, size_t *len)
{
    const uint8_t *p = NULL;
    uint32_t n;
    int rc;

    *env = NULL;
    *len = 0;
    if (r->err != 0)
        return r->err;
    if (!r->started) {
        if ((rc = reader_take(r, BUNDLE_MAGIC_LEN, &p, 0)) != 0)
            goto fail;
        if (memcmp(p, BUNDLE_MAGIC, BUNDLE_MAGIC_LEN) != 0) {
            rc = memcmp(p, BUNDLE_MAGIC, BUNDLE_MAGIC_LEN - 1) == 0 ? PULL_ERR_VERSION
                                                                    : PULL_ERR_MALFORMED;
            goto fail;
        }
        r->started = 1;
    }
    rc = reader_take(r, 4, &p, 1);
    if (rc == 1)
        return 0; /* clean end; stays at the end */
    if (rc != 0)
        goto fail;
    n = be32dec(p);
    if (n == 0) {
        rc = PULL_ERR_MALFORMED;
        goto fail;
    }
    if (n > RECORD_ENVELOPE_MAX) {
        rc = PULL_ERR_TOO_BIG; /* refused before reading (or allocating) anything */
        goto fail;
    }
    if ((rc = reader_take(r, n, &p, 0)) != 0)
        goto fail;
    *env = p;
    *len = n;
    r->count++;
    return 1;
fail:
    r->err = rc;
    return rc;
}
