#include "lib/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/mp.h"
#include "lib/record.h"

/* Length of the valid UTF-8 sequence at p[0..n), or 0 if it is not one. Same rules as
 * utf8_valid: shortest form only, no surrogates, nothing above U+10FFFF. */
static size_t
utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint32_t cp, min;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Appends the code point of the valid UTF-8 sequence p[0..len) as \uXXXX (a surrogate
 * pair above U+FFFF) if it is a C1 control or hidden (record_cp_hidden: bidi controls,
 * invisible characters, U+2028/U+2029), and returns true; else false. */
static bool
escaped_cp(const uint8_t *p, size_t len, struct pull_wb *out)
{
    uint32_t cp = p[0] & (0x7f >> len);
    char e[16];

    for (size_t k = 1; k < len; k++)
        cp = (cp << 6) | (p[k] & 0x3f);
    if (cp > 0x9f && !record_cp_hidden(cp))
        return false;
    if (cp > 0xffff)
        snprintf(e, sizeof(e), "\\u%04x\\u%04x", 0xd800 + ((cp - 0x10000) >> 10),
                 0xdc00 + ((cp - 0x10000) & 0x3ff));
    else
        snprintf(e, sizeof(e), "\\u%04x", (unsigned)cp);
    wb_put(out, e, strlen(e));
    return true;
}

int
json_str(struct pull_wb *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, run;

    wb_u8(out, '"');
    while (i < n) {
        /* Copy the longest run of bytes that need no escaping at once. */
        run = i;
        while (run < n && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            wb_put(out, p + i, run - i);
            i = run;
            continue;
        }
        uint8_t c = p[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            wb_put(out, e, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            switch (c) {
            case '\n':
                wb_put(out, "\\n", 2);
                break;
            case '\r':
                wb_put(out, "\\r", 2);
                break;
            case '\t':
                wb_put(out, "\\t", 2);
                break;
            case '\b':
                wb_put(out, "\\b", 2);
                break;
            case '\f':
                wb_put(out, "\\f", 2);
                break;
            default:
                wb_put(out, e, 6);
            }
            i++;
        } else {
            size_t len = utf8_seq(p + i, n - i);
            if (len == 0) {
                wb_put(out, "\\ufffd", 6);
                i++;
            } else if (escaped_cp(p + i, len, out)) {
                i += len;
            } else {
                wb_put(out, p + i, len);
                i += len;
            }
        }
    }
    wb_u8(out, '"');
    return wb_error(out);
}

static int put_fmt(struct pull_wb *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
put_fmt(struct pull_wb *out, const char *fmt, ...)
{
    char b[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(b, sizeof(b), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(b))
        return PULL_ERR_INVAL;
    return wb_put(out, b, (size_t)n);
}

static int
read_float(struct pull_rd *r, double *d)
{
    const uint8_t *p;
    uint8_t tag;
    int rc;

    if ((rc = rd_u8(r, &tag)) != 0)
        return rc;
    if (tag == 0xca) {
        float f;
        uint32_t u;
        if ((rc = rd_bytes(r, 4, &p)) != 0)
            return rc;
        u = be32dec(p);
        memcpy(&f, &u, sizeof(f));
        *d = f;
    } else {
        uint64_t u;
        if ((rc = rd_bytes(r, 8, &p)) != 0)
            return rc;
        u = be64dec(p);
        memcpy(d, &u, sizeof(*d));
    }
    return 0;
}

static int
convert(struct pull_rd *r, struct pull_wb *out, unsigned depth)
{
    static const char hex[] = "0123456789abcdef";
    const char *s;
    const uint8_t *b;
    uint32_t n;
    uint64_t u;
    int64_t i;
    bool v;
    double d;
    int rc;

    if (depth > JSON_MAX_DEPTH)
        return PULL_ERR_DEPTH;
    switch (mp_peek(r)) {
    case MP_NIL:
        if ((rc = mp_read_nil(r)) != 0)
            return rc;
        return wb_put(out, "null", 4);
    case MP_BOOL:
        if ((rc = mp_read_bool(r, &v)) != 0)
            return rc;
        return v ? wb_put(out, "true", 4) : wb_put(out, "false", 5);
    case MP_UINT:
        if ((rc = mp_read_uint(r, &u)) != 0)
            return rc;
        return put_fmt(out, "%" PRIu64, u);
    case MP_NINT:
        if ((rc = mp_read_int(r, &i)) != 0)
            return rc;
        return put_fmt(out, "%" PRId64, i);
    case MP_FLOAT:
        if ((rc = read_float(r, &d)) != 0)
            return rc;
        if (!isfinite(d))
            return wb_put(out, "null", 4);
        return put_fmt(out, "%.17g", d);
    case MP_STR:
        if ((rc = mp_read_str(r, UINT32_MAX, &s, &n)) != 0)
            return rc;
        return json_str(out, s, n);
    case MP_BIN: {
        uint8_t *dst;
        if ((rc = mp_read_bin(r, UINT32_MAX, &b, &n)) != 0)
            return rc;
        if ((dst = wb_reserve(out, 2 * (size_t)n + 2)) == NULL) /* n < 2^32: no overflow */
            return wb_error(out) != 0 ? wb_error(out) : PULL_ERR_TOO_BIG;
        dst[0] = '"';
        for (uint32_t k = 0; k < n; k++) {
            dst[1 + 2 * k] = (uint8_t)hex[b[k] >> 4];
            dst[2 + 2 * k] = (uint8_t)hex[b[k] & 15];
        }
        dst[2 * (size_t)n + 1] = '"';
        wb_commit(out, 2 * (size_t)n + 2);
        return 0;
    }
    case MP_ARRAY:
        if ((rc = mp_read_array(r, &n)) != 0)
            return rc;
        wb_u8(out, '[');
        for (uint32_t k = 0; k < n; k++) {
            if (k > 0)
                wb_u8(out, ',');
            if ((rc = convert(r, out, depth + 1)) != 0)
                return rc;
        }
        wb_u8(out, ']');
        return wb_error(out);
    case MP_MAP:
        if ((rc = mp_read_map(r, &n)) != 0)
            return rc;
        wb_u8(out, '{');
        for (uint32_t k = 0; k < n; k++) {
            uint32_t kn;
            if (k > 0)
                wb_u8(out, ',');
            if (mp_peek(r) == MP_STR) {
                if ((rc = mp_read_str(r, UINT32_MAX, &s, &kn)) != 0 ||
                    (rc = json_str(out, s, kn)) != 0)
                    return rc;
            } else if (mp_peek(r) == MP_UINT) {
                if ((rc = mp_read_uint(r, &u)) != 0 ||
                    (rc = put_fmt(out, "\"%" PRIu64 "\"", u)) != 0)
                    return rc;
            } else {
                return rd_left(r) == 0 ? PULL_ERR_TRUNCATED : PULL_ERR_FIELD;
            }
            wb_u8(out, ':');
            if ((rc = convert(r, out, depth + 1)) != 0)
                return rc;
        }
        wb_u8(out, '}');
        return wb_error(out);
    case MP_EXT:
        return PULL_ERR_FIELD;
    case MP_INVALID:
        break;
    }
    return rd_left(r) == 0 ? PULL_ERR_TRUNCATED : PULL_ERR_MALFORMED;
}

int
json_from_mp(struct pull_rd *r, struct pull_wb *out)
{
    struct pull_rd save = *r;
    int rc;

    if ((rc = convert(r, out, 1)) != 0)
        *r = save;
    return rc;
}
