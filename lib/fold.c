#include "lib/fold.h"

#include <string.h>
#include <utf8proc.h>

/* Code points decomposed at once: the input read is at most 4 * cap bytes, and one code
 * point decomposes into at most 18 (U+FDFA); longer inputs are cut until they fit. */
#define FOLD_BUF 512

/* Decodes one code point of s[i..n): returns it and its length in *k, or -1 (with *k = 1)
 * for an invalid byte. */
static int32_t
decode(const uint8_t *s, size_t i, size_t n, size_t *k)
{
    utf8proc_int32_t cp;
    utf8proc_ssize_t r = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);

    if (r <= 0) {
        *k = 1;
        return -1;
    }
    *k = (size_t)r;
    return cp;
}

bool
fold_is_word(uint32_t cp)
{
    if (cp < 0x80)
        return (uint8_t)((cp | 0x20) - 'a') < 26 || (uint8_t)(cp - '0') < 10;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return true;
    default:
        return false;
    }
}

static inline bool
ascii_word(uint8_t c)
{
    return (uint8_t)((c | 0x20) - 'a') < 26 || (uint8_t)(c - '0') < 10;
}

const char *
fold_next(const char *s, size_t n, size_t *off, size_t *len)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = *off, start, k;

    for (;;) {
        if (i >= n) {
            *off = n;
            return NULL;
        }
        if (p[i] < 0x80) {
            if (ascii_word(p[i]))
                break;
            i++;
            continue;
        }
        int32_t cp = decode(p, i, n, &k);
        if (cp >= 0 && fold_is_word((uint32_t)cp))
            break;
        i += k;
    }
    start = i;
    while (i < n) {
        if (p[i] < 0x80) {
            if (!ascii_word(p[i]))
                break;
            i++;
            continue;
        }
        int32_t cp = decode(p, i, n, &k);
        if (cp < 0 || !fold_is_word((uint32_t)cp))
            break;
        i += k;
    }
    *off = i;
    *len = i - start;
    return s + start;
}

/* Whether the mark after base letter `base` is an accent to strip (Latin and Greek). */
static inline bool
strip_after(int32_t base)
{
    return base < 0x400 || (base >= 0x1e00 && base <= 0x1fff);
}

/* The spelling without the accent of letters that have no decomposition; NULL if none. */
static const char *
plain_of(int32_t cp)
{
    switch (cp) {
    case 0x153: /* œ */
        return "oe";
    case 0xe6: /* æ */
        return "ae";
    case 0xf8: /* ø */
        return "o";
    case 0x142: /* ł */
        return "l";
    case 0x111: /* đ */
        return "d";
    case 0x131: /* ı */
        return "i";
    default:
        return NULL;
    }
}

/* Cuts s[0..n) to at most max bytes at a character boundary. */
static size_t
cut_utf8(const uint8_t *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && (s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

/* Folds s[0..n) into out (cap - 1 bytes at most, NUL-terminated). Returns the length, and
 * sets *cut if the result did not fit entirely. */
static size_t
fold_bytes(const uint8_t *s, size_t n, char *out, size_t cap, bool *cut)
{
    utf8proc_int32_t buf[FOLD_BUF], tmp[FOLD_BUF];
    utf8proc_ssize_t m = -1, k = 0;
    size_t o = 0, in = cut_utf8(s, n, 4 * cap);
    int32_t base = 0;
    bool ascii = true;

    *cut = false;
    for (size_t i = 0; i < n && ascii; i++)
        ascii = s[i] < 0x80;
    if (ascii) {
        size_t l = n < cap - 1 ? n : cap - 1;
        for (size_t i = 0; i < l; i++)
            out[i] = (char)((uint8_t)(s[i] - 'A') < 26 ? s[i] | 0x20 : s[i]);
        out[l] = '\0';
        *cut = l < n;
        return l;
    }
    *cut = in < n;
    while (in > 0) {
        m = utf8proc_decompose_custom(s, (utf8proc_ssize_t)in, buf, FOLD_BUF,
                                      UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_DECOMPOSE |
                                          UTF8PROC_IGNORE | UTF8PROC_STABLE,
                                      NULL, NULL);
        if (m >= 0 && m <= FOLD_BUF)
            break;
        if (m < 0) { /* invalid UTF-8: keep the valid part before it */
            size_t v = 0, l;
            while (v < in && decode(s, v, in, &l) >= 0)
                v += l;
            in = v == in ? 0 : v;
        } else {
            in = cut_utf8(s, in, in / 2);
        }
        *cut = true;
        m = -1;
    }
    if (m <= 0) {
        out[0] = '\0';
        return 0;
    }
    for (utf8proc_ssize_t i = 0; i < m && k < FOLD_BUF - 2; i++) {
        int32_t cp = buf[i];
        int cat = utf8proc_category(cp);
        const char *plain;
        if (cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_ME) {
            if (strip_after(base))
                continue;
        } else {
            base = cp;
        }
        if ((plain = plain_of(cp)) != NULL) {
            while (*plain != '\0')
                tmp[k++] = (uint8_t)*plain++;
            continue;
        }
        tmp[k++] = cp;
    }
    k = utf8proc_normalize_utf32(tmp, k, UTF8PROC_COMPOSE | UTF8PROC_STABLE);
    for (utf8proc_ssize_t i = 0; i < k; i++) {
        utf8proc_uint8_t enc[4];
        utf8proc_ssize_t l = utf8proc_encode_char(tmp[i], enc);
        if (o + (size_t)l > cap - 1) {
            *cut = true;
            break;
        }
        memcpy(out + o, enc, (size_t)l);
        o += (size_t)l;
    }
    out[o] = '\0';
    return o;
}

size_t
fold_token(const char *tok, size_t n, char *out, size_t cap)
{
    bool cut;

    return fold_bytes((const uint8_t *)tok, n, out, cap, &cut);
}

long
fold_string(const char *s, char *out, size_t cap)
{
    bool cut;
    size_t n = fold_bytes((const uint8_t *)s, strlen(s), out, cap, &cut);

    return cut ? -1 : (long)n;
}

size_t
fold_chars(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t c = 0;

    for (size_t i = 0; i < n; i++)
        c += (p[i] & 0xc0) != 0x80;
    return c;
}

size_t
fold_cps(const char *s, size_t n, uint32_t *cps, size_t max)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, c = 0, k;

    while (i < n && c < max) {
        int32_t cp = decode(p, i, n, &k);
        cps[c++] = cp < 0 ? 0xfffd : (uint32_t)cp;
        i += k;
    }
    return c;
}
