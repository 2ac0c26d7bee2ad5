#include "lib/buf.h"

#include <string.h>

#include "lib/env.h"
#include "lib/err.h"

void
rd_init(struct pull_rd *r, const void *p, size_t len)
{
    r->p = p;
    r->len = p != NULL ? len : 0;
    r->off = 0;
}

size_t
rd_left(const struct pull_rd *r)
{
    return r->len - r->off;
}

int
rd_bytes(struct pull_rd *r, size_t n, const uint8_t **out)
{
    *out = NULL;
    if (n > rd_left(r))
        return PULL_ERR_TRUNCATED;
    *out = r->p + r->off;
    r->off += n;
    return 0;
}

int
rd_copy(struct pull_rd *r, void *out, size_t n)
{
    const uint8_t *p;
    int rc;

    if ((rc = rd_bytes(r, n, &p)) != 0)
        return rc;
    if (n > 0)
        memcpy(out, p, n);
    return 0;
}

int
rd_u8(struct pull_rd *r, uint8_t *v)
{
    const uint8_t *p;
    int rc;

    *v = 0;
    if ((rc = rd_bytes(r, 1, &p)) != 0)
        return rc;
    *v = p[0];
    return 0;
}

int
rd_u16be(struct pull_rd *r, uint16_t *v)
{
    const uint8_t *p;
    int rc;

    *v = 0;
    if ((rc = rd_bytes(r, 2, &p)) != 0)
        return rc;
    *v = be16dec(p);
    return 0;
}

int
rd_u32be(struct pull_rd *r, uint32_t *v)
{
    const uint8_t *p;
    int rc;

    *v = 0;
    if ((rc = rd_bytes(r, 4, &p)) != 0)
        return rc;
    *v = be32dec(p);
    return 0;
}

int
rd_u64be(struct pull_rd *r, uint64_t *v)
{
    const uint8_t *p;
    int rc;

    *v = 0;
    if ((rc = rd_bytes(r, 8, &p)) != 0)
        return rc;
    *v = be64dec(p);
    return 0;
}

#define WB_DEFAULT_MAX ((size_t)1 << 30)

void
wb_init_env(struct pull_wb *w, const struct pull_env *env, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->max = max != 0 ? max : WB_DEFAULT_MAX;
    w->env = env;
}

void
wb_init(struct pull_wb *w, size_t max)
{
    wb_init_env(w, NULL, max);
}

void
wb_release(struct pull_wb *w)
{
    env_free(w->env, w->p);
    w->p = NULL;
    w->len = w->cap = 0;
    w->err = 0;
}

void
wb_reset(struct pull_wb *w)
{
    w->len = 0;
    w->err = 0;
}

uint8_t *
wb_reserve(struct pull_wb *w, size_t n)
{
    size_t need, ncap;
    uint8_t *np;

    if (w->err != 0)
        return NULL;
    if (n > w->max - w->len) {
        w->err = PULL_ERR_TOO_BIG;
        return NULL;
    }
    need = w->len + n;
    if (need > w->cap) {
        ncap = w->cap < 256 ? 256 : w->cap;
        while (ncap < need)
            ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
        if (ncap > w->max)
            ncap = w->max;
        if ((np = env_realloc(w->env, w->p, ncap)) == NULL) {
            w->err = PULL_ERR_NOMEM;
            return NULL;
        }
        w->p = np;
        w->cap = ncap;
    }
    return w->p + w->len;
}

void
wb_commit(struct pull_wb *w, size_t n)
{
    if (w->err == 0 && n <= w->cap - w->len)
        w->len += n;
}

int
wb_put(struct pull_wb *w, const void *p, size_t n)
{
    uint8_t *d;

    if (n == 0)
        return w->err;
    if ((d = wb_reserve(w, n)) == NULL)
        return w->err;
    memcpy(d, p, n);
    w->len += n;
    return 0;
}

int
wb_u8(struct pull_wb *w, uint8_t v)
{
    return wb_put(w, &v, 1);
}

int
wb_u16be(struct pull_wb *w, uint16_t v)
{
    uint8_t b[2];

    be16enc(b, v);
    return wb_put(w, b, sizeof(b));
}

int
wb_u32be(struct pull_wb *w, uint32_t v)
{
    uint8_t b[4];

    be32enc(b, v);
    return wb_put(w, b, sizeof(b));
}

int
wb_u64be(struct pull_wb *w, uint64_t v)
{
    uint8_t b[8];

    be64enc(b, v);
    return wb_put(w, b, sizeof(b));
}

int
wb_error(const struct pull_wb *w)
{
    return w->err;
}

uint8_t *
wb_steal(struct pull_wb *w, size_t *len)
{
    uint8_t *p = w->p;

    *len = w->len;
    w->p = NULL;
    w->len = w->cap = 0;
    return p;
}

bool
utf8_valid(const void *vp, size_t n)
{
    const uint8_t *p = vp;
    size_t i = 0;

    while (i < n) {
        uint8_t c = p[i];
        size_t k;
        uint32_t cp, min;

        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return false;
        }
        if (k > n - i - 1)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + j] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

void
be16enc(void *vp, uint16_t v)
{
    uint8_t *p = vp;

    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void
be32enc(void *vp, uint32_t v)
{
    uint8_t *p = vp;

    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void
be64enc(void *vp, uint64_t v)
{
    uint8_t *p = vp;

    be32enc(p, (uint32_t)(v >> 32));
    be32enc(p + 4, (uint32_t)v);
}

uint16_t
be16dec(const void *vp)
{
    const uint8_t *p = vp;

    return (uint16_t)((p[0] << 8) | p[1]);
}

uint32_t
be32dec(const void *vp)
{
    const uint8_t *p = vp;

    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

uint64_t
be64dec(const void *vp)
{
    const uint8_t *p = vp;

    return ((uint64_t)be32dec(p) << 32) | be32dec(p + 4);
}
