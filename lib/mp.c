#include "lib/mp.h"

#include <string.h>

#include "lib/err.h"

enum mp_type
mp_peek(const struct pull_rd *r)
{
    uint8_t c;

    if (rd_left(r) == 0)
        return MP_INVALID;
    c = r->p[r->off];
    if (c <= 0x7f || c == 0xcc || c == 0xcd || c == 0xce || c == 0xcf)
        return MP_UINT;
    if (c >= 0xe0 || c == 0xd0 || c == 0xd1 || c == 0xd2 || c == 0xd3)
        return MP_NINT;
    if ((c & 0xf0) == 0x80 || c == 0xde || c == 0xdf)
        return MP_MAP;
    if ((c & 0xf0) == 0x90 || c == 0xdc || c == 0xdd)
        return MP_ARRAY;
    if ((c & 0xe0) == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb)
        return MP_STR;
    switch (c) {
    case 0xc0:
        return MP_NIL;
    case 0xc2:
    case 0xc3:
        return MP_BOOL;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return MP_BIN;
    case 0xca:
    case 0xcb:
        return MP_FLOAT;
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        return MP_EXT;
    }
    return MP_INVALID;
}

int
mp_read_nil(struct pull_rd *r)
{
    if (rd_left(r) == 0)
        return PULL_ERR_TRUNCATED;
    if (r->p[r->off] != 0xc0)
        return PULL_ERR_FIELD;
    r->off++;
    return 0;
}

int
mp_read_bool(struct pull_rd *r, bool *v)
{
    *v = false;
    if (rd_left(r) == 0)
        return PULL_ERR_TRUNCATED;
    if (r->p[r->off] != 0xc2 && r->p[r->off] != 0xc3)
        return PULL_ERR_FIELD;
    *v = r->p[r->off] == 0xc3;
    r->off++;
    return 0;
}

/* Reads a big-endian unsigned of `width` bytes following a one-byte tag. */
static int
read_be(struct pull_rd *r, size_t width, uint64_t *v)
{
    const uint8_t *p;
    int rc;

    *v = 0;
    if ((rc = rd_bytes(r, width, &p)) != 0)
        return rc;
    for (size_t i = 0; i < width; i++)
        *v = (*v << 8) | p[i];
    return 0;
}

int
mp_read_uint(struct pull_rd *r, uint64_t *v)
{
    struct pull_rd save = *r;
    uint8_t c;
    uint64_t min;
    size_t width;
    int rc;

    *v = 0;
    if ((rc = rd_u8(r, &c)) != 0)
        return rc;
    if (c <= 0x7f) {
        *v = c;
        return 0;
    }
    switch (c) {
    case 0xcc:
        width = 1, min = 0x80;
        break;
    case 0xcd:
        width = 2, min = 0x100;
        break;
    case 0xce:
        width = 4, min = 0x10000;
        break;
    case 0xcf:
        width = 8, min = 0x100000000ull;
        break;
    default:
        *r = save;
        return PULL_ERR_FIELD;
    }
    if ((rc = read_be(r, width, v)) != 0) {
        *r = save;
        return rc;
    }
    if (*v < min) {
        *r = save;
        *v = 0;
        return PULL_ERR_NONCANONICAL;
    }
    return 0;
}

int
mp_read_uint_max(struct pull_rd *r, uint64_t max, uint64_t *v)
{
    struct pull_rd save = *r;
    int rc;

    if ((rc = mp_read_uint(r, v)) != 0)
        return rc;
    if (*v > max) {
        *r = save;
        *v = 0;
        return PULL_ERR_FIELD;
    }
    return 0;
}

int
mp_read_int(struct pull_rd *r, int64_t *v)
{
    struct pull_rd save = *r;
    uint64_t u;
    uint8_t c;
    int64_t min;
    size_t width;
    int rc;

    *v = 0;
    if (mp_peek(r) == MP_UINT) {
        if ((rc = mp_read_uint(r, &u)) != 0)
            return rc;
        if (u > INT64_MAX) {
            *r = save;
            return PULL_ERR_FIELD;
        }
        *v = (int64_t)u;
        return 0;
    }
    if ((rc = rd_u8(r, &c)) != 0)
        return rc;
    if (c >= 0xe0) {
        *v = (int8_t)c;
        return 0;
    }
    switch (c) {
    case 0xd0:
        width = 1, min = -32; /* values >= -32 must use negative fixint */
        break;
    case 0xd1:
        width = 2, min = INT8_MIN;
        break;
    case 0xd2:
        width = 4, min = INT16_MIN;
        break;
    case 0xd3:
        width = 8, min = INT32_MIN;
        break;
    default:
        *r = save;
        return PULL_ERR_FIELD;
    }
    if ((rc = read_be(r, width, &u)) != 0) {
        *r = save;
        return rc;
    }
    /* Sign-extend from width bytes. */
    if (width < 8 && (u & ((uint64_t)1 << (width * 8 - 1))))
        u |= ~(uint64_t)0 << (width * 8);
    *v = (int64_t)u;
    if (*v >= 0 || *v >= min) {
        /* Non-negative values must be uints; small negatives must use the shorter forms. */
        *r = save;
        *v = 0;
        return PULL_ERR_NONCANONICAL;
    }
    return 0;
}

/* Reads a str/bin/array/map length after its tag, checking canonical size. */
static int
read_len(struct pull_rd *r, size_t width, uint64_t min, uint32_t *n)
{
    uint64_t v;
    int rc;

    if ((rc = read_be(r, width, &v)) != 0)
        return rc;
    if (v < min)
        return PULL_ERR_NONCANONICAL;
    *n = (uint32_t)v;
    return 0;
}

static int
read_container(struct pull_rd *r, bool map, uint32_t *n)
{
    struct pull_rd save = *r;
    uint8_t c;
    int rc;

    *n = 0;
    if ((rc = rd_u8(r, &c)) != 0)
        return rc;
    if (!map && (c & 0xf0) == 0x90) {
        *n = c & 0x0f;
    } else if (map && (c & 0xf0) == 0x80) {
        *n = c & 0x0f;
    } else if (c == (map ? 0xde : 0xdc)) {
        rc = read_len(r, 2, 16, n);
    } else if (c == (map ? 0xdf : 0xdd)) {
        rc = read_len(r, 4, 0x10000, n);
    } else {
        rc = PULL_ERR_FIELD;
    }
    if (rc == 0) {
        /* Each array element takes >= 1 byte, each map entry >= 2: a header can't promise
         * more elements than bytes remain. Divide, never multiply. */
        size_t per = map ? 2 : 1;
        if (*n > rd_left(r) / per)
            rc = PULL_ERR_TRUNCATED;
    }
    if (rc != 0) {
        *r = save;
        *n = 0;
    }
    return rc;
}

int
mp_read_array(struct pull_rd *r, uint32_t *n)
{
    return read_container(r, false, n);
}

int
mp_read_map(struct pull_rd *r, uint32_t *n)
{
    return read_container(r, true, n);
}

int
mp_read_array_n(struct pull_rd *r, uint32_t want)
{
    struct pull_rd save = *r;
    uint32_t n;
    int rc;

    if ((rc = mp_read_array(r, &n)) != 0)
        return rc;
    if (n != want) {
        *r = save;
        return PULL_ERR_FIELD;
    }
    return 0;
}

/* Reads a str (is_str) or bin header and body. */
static int
read_blob(struct pull_rd *r, bool is_str, uint32_t max, const uint8_t **out, uint32_t *len)
{
    struct pull_rd save = *r;
    uint8_t c;
    uint32_t n = 0;
    int rc;

    *out = NULL;
    *len = 0;
    if ((rc = rd_u8(r, &c)) != 0)
        return rc;
    if (is_str && (c & 0xe0) == 0xa0) {
        n = c & 0x1f;
    } else if (c == (is_str ? 0xd9 : 0xc4)) {
        rc = read_len(r, 1, is_str ? 32 : 0, &n);
    } else if (c == (is_str ? 0xda : 0xc5)) {
        rc = read_len(r, 2, 0x100, &n);
    } else if (c == (is_str ? 0xdb : 0xc6)) {
        rc = read_len(r, 4, 0x10000, &n);
    } else {
        rc = PULL_ERR_FIELD;
    }
    if (rc == 0 && n > rd_left(r))
        rc = PULL_ERR_TRUNCATED;
    if (rc == 0 && n > max)
        rc = PULL_ERR_FIELD;
    if (rc == 0)
        rc = rd_bytes(r, n, out);
    if (rc == 0 && is_str && !utf8_valid(*out, n))
        rc = PULL_ERR_UTF8;
    if (rc != 0) {
        *r = save;
        *out = NULL;
        return rc;
    }
    *len = n;
    return 0;
}

int
mp_read_str(struct pull_rd *r, uint32_t max, const char **s, uint32_t *len)
{
    const uint8_t *p;
    int rc;

    rc = read_blob(r, true, max, &p, len);
    *s = (const char *)p;
    return rc;
}

int
mp_read_bin(struct pull_rd *r, uint32_t max, const uint8_t **b, uint32_t *len)
{
    return read_blob(r, false, max, b, len);
}

int
mp_read_bin_exact(struct pull_rd *r, void *out, uint32_t n)
{
    struct pull_rd save = *r;
    const uint8_t *p;
    uint32_t len;
    int rc;

    if ((rc = read_blob(r, false, n, &p, &len)) != 0)
        return rc;
    if (len != n) {
        *r = save;
        return PULL_ERR_FIELD;
    }
    memcpy(out, p, n);
    return 0;
}

static int
skip_depth(struct pull_rd *r, int depth)
{
    const uint8_t *p;
    uint32_t n;
    uint64_t u;
    int64_t i;
    bool b;
    int rc;

    if (depth > MP_MAX_DEPTH)
        return PULL_ERR_DEPTH;
    switch (mp_peek(r)) {
    case MP_NIL:
        return mp_read_nil(r);
    case MP_BOOL:
        return mp_read_bool(r, &b);
    case MP_UINT:
        return mp_read_uint(r, &u);
    case MP_NINT:
        return mp_read_int(r, &i);
    case MP_STR:
        return read_blob(r, true, UINT32_MAX, &p, &n);
    case MP_BIN:
        return read_blob(r, false, UINT32_MAX, &p, &n);
    case MP_ARRAY:
    case MP_MAP: {
        bool map = mp_peek(r) == MP_MAP;
        uint64_t count;

        if ((rc = read_container(r, map, &n)) != 0)
            return rc;
        count = map ? 2 * (uint64_t)n : n; /* n was checked against the bytes left */
        for (uint64_t k = 0; k < count; k++) {
            if ((rc = skip_depth(r, depth + 1)) != 0)
                return rc;
        }
        return 0;
    }
    case MP_FLOAT:
    case MP_EXT:
    case MP_INVALID:
        break;
    }
    return rd_left(r) == 0 ? PULL_ERR_TRUNCATED : PULL_ERR_MALFORMED;
}

int
mp_skip(struct pull_rd *r)
{
    struct pull_rd save = *r;
    int rc;

    if ((rc = skip_depth(r, 0)) != 0)
        *r = save;
    return rc;
}

static int
wb_msgpack_write(void *data, const char *buf, size_t len)
{
    return wb_put(data, buf, len) == 0 ? 0 : -1;
}

void
mp_packer_init(msgpack_packer *pk, struct pull_wb *w)
{
    msgpack_packer_init(pk, w, wb_msgpack_write);
}

void
mp_pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    if (n > 0)
        msgpack_pack_bin_body(pk, p, n);
}

void
mp_pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    if (n > 0)
        msgpack_pack_str_body(pk, s, n);
}

void
mp_pack_cstr(msgpack_packer *pk, const char *s)
{
    mp_pack_str(pk, s, strlen(s));
}

void
mp_pack_bool(msgpack_packer *pk, bool v)
{
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

/* ---- Deferred counts ---------------------------------------------------------------- */

#define MP_OPEN_HEADER 5 /* 0xdf/0xdd + u32: the longest map/array header */

static void
open_container(struct mp_open *o, msgpack_packer *pk, bool map)
{
    static const uint8_t room[MP_OPEN_HEADER];

    o->pk = pk;
    o->w = pk->data;
    o->off = o->w->len;
    o->n = 0;
    o->map = map;
    wb_put(o->w, room, sizeof(room));
}

void
mp_open_map(struct mp_open *o, msgpack_packer *pk)
{
    open_container(o, pk, true);
}

void
mp_open_array(struct mp_open *o, msgpack_packer *pk)
{
    open_container(o, pk, false);
}

msgpack_packer *
mp_key(struct mp_open *o, const char *key)
{
    o->n++;
    mp_pack_cstr(o->pk, key);
    return o->pk;
}

msgpack_packer *
mp_item(struct mp_open *o)
{
    o->n++;
    return o->pk;
}

void
mp_items(struct mp_open *o, uint32_t n)
{
    o->n += n;
}

void
mp_close(struct mp_open *o)
{
    struct pull_wb *w = o->w;
    uint8_t hdr[MP_OPEN_HEADER];
    size_t hl, body;

    if (wb_error(w) != 0 || w->len < o->off + MP_OPEN_HEADER)
        return;
    if (o->n <= 15) {
        hdr[0] = (uint8_t)((o->map ? 0x80 : 0x90) | o->n);
        hl = 1;
    } else if (o->n <= 0xffff) {
        hdr[0] = o->map ? 0xde : 0xdc;
        hdr[1] = (uint8_t)(o->n >> 8);
        hdr[2] = (uint8_t)o->n;
        hl = 3;
    } else {
        hdr[0] = o->map ? 0xdf : 0xdd;
        be32enc(hdr + 1, o->n);
        hl = 5;
    }
    body = w->len - o->off - MP_OPEN_HEADER;
    if (hl < MP_OPEN_HEADER && body > 0)
        memmove(w->p + o->off + hl, w->p + o->off + MP_OPEN_HEADER, body);
    memcpy(w->p + o->off, hdr, hl);
    w->len -= MP_OPEN_HEADER - hl;
}

void
mp_kv_str(struct mp_open *o, const char *key, const char *v)
{
    mp_pack_cstr(mp_key(o, key), v);
}

void
mp_kv_uint(struct mp_open *o, const char *key, uint64_t v)
{
    msgpack_pack_uint64(mp_key(o, key), v);
}

void
mp_kv_int(struct mp_open *o, const char *key, int64_t v)
{
    msgpack_pack_int64(mp_key(o, key), v);
}

void
mp_kv_bool(struct mp_open *o, const char *key, bool v)
{
    mp_pack_bool(mp_key(o, key), v);
}
