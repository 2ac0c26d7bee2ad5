#include "lib/record.h"

#include <sodium.h>
#include <string.h>

#include "lib/err.h"
#include "lib/fold.h"
#include "lib/mp.h"

/* The last field of an attestation: bin 8 header (c4 40) and the 64-byte cosig. */
#define COSIG_TAIL (2 + 64)

static const char *const kind_names[] = {
    [RECORD_OFFER] = "offer",
    [RECORD_NEED] = "need",
    [RECORD_PROFILE] = "profile",
    [RECORD_WITHDRAWN] = "withdrawn",
    [RECORD_ATTESTATION] = "attestation",
};

const char *
record_kind_name(unsigned kind)
{
    if (kind < RECORD_OFFER || kind > RECORD_ATTESTATION)
        return NULL;
    return kind_names[kind];
}

int
record_kind_parse(const char *name, uint8_t *kind)
{
    *kind = 0;
    if (name == NULL)
        return PULL_ERR_KIND;
    for (unsigned k = RECORD_OFFER; k <= RECORD_ATTESTATION; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *kind = (uint8_t)k;
            return 0;
        }
    }
    return PULL_ERR_KIND;
}

void
record_init(struct record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->version = RECORD_VERSION;
}

/* ---- field rules ---- */

/* check_fields flags */
#define CHECK_COSIG_PENDING 1u /* an attestation being encoded for its peer to sign */
#define CHECK_UTF8_DONE 2u     /* strings came through mp_read_str, which validated UTF-8 */
#define CHECK_RULE1_ONLY 4u    /* the character rules of version 1 only (record_decode) */

/* Whether any of the 8 bytes in w is below 0x20, 0x7f or 0xc2: the bytes that may start a
 * control character. Exact as an existence test (bit tricks for "has less than" and "has
 * zero byte"), so a clean word, the common case, is passed over at once. */
static bool
word_may_control(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t x7f = w ^ (ones * 0x7f), xc2 = w ^ (ones * 0xc2);

    return (((w - ones * 0x20) & ~w) | ((x7f - ones) & ~x7f) | ((xc2 - ones) & ~xc2)) & highs;
}

/* Refuses C0 controls (except \n and \t where multiline), DEL and C1 controls (U+0080..
 * U+009F, encoded c2 80..c2 9f) in valid UTF-8 text. This runs over every byte of every
 * record received, so it looks at 8 bytes at a time. */
static int
check_controls(const char *s, size_t n, bool multiline)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;

    while (i < n) {
        size_t end = n - i >= 8 ? i + 8 : n;
        if (end - i == 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (!word_may_control(w)) {
                i = end;
                continue;
            }
        }
        for (; i < end; i++) {
            uint8_t c = p[i];
            if (c < 0x20) {
                if (!multiline || (c != '\n' && c != '\t'))
                    return PULL_ERR_CONTROL;
            } else if (c == 0x7f) {
                return PULL_ERR_CONTROL;
            } else if (c == 0xc2 && i + 1 < n && p[i + 1] <= 0x9f) {
                return PULL_ERR_CONTROL;
            }
        }
    }
    return 0;
}

static int check_hidden(const char *s, size_t n);

/* Checks a NUL-terminated string field of at most max bytes: err if too long (or not
 * terminated inside its array of max + 1), then UTF-8 and control characters. */
static int
check_text(const char *s, size_t max, size_t min, int err, bool multiline, unsigned flags,
           size_t *lenp)
{
    size_t n = strnlen(s, max + 1);
    int rc;

    *lenp = n;
    if (n > max || n < min)
        return err;
    if (!(flags & CHECK_UTF8_DONE) && !utf8_valid(s, n))
        return PULL_ERR_UTF8;
    if ((rc = check_controls(s, n, multiline)) != 0 || (flags & CHECK_RULE1_ONLY))
        return rc;
    return check_hidden(s, n);
}

/* Decodes one code point of valid UTF-8 at p[*i] and advances *i. */
static uint32_t
utf8_next(const uint8_t *p, size_t *i)
{
    uint8_t c = p[*i];
    uint32_t cp;
    size_t k;

    if (c < 0x80) {
        (*i)++;
        return c;
    }
    k = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
    cp = c & (0x3f >> k);
    for (size_t j = 1; j <= k; j++)
        cp = (cp << 6) | (p[*i + j] & 0x3f);
    *i += k + 1;
    return cp;
}

bool
record_cp_hidden(uint32_t cp)
{
    if (cp < 0xad)
        return false; /* the common case: ASCII and most of Latin-1 */
    if (cp < 0x2000)
        return cp == 0xad || cp == 0x34f || cp == 0x61c || cp == 0x115f || cp == 0x1160 ||
               cp == 0x17b4 || cp == 0x17b5 || (cp >= 0x180b && cp <= 0x180f);
    if (cp < 0x2070)
        return (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) || cp >= 0x2060;
    if (cp < 0x10000)
        return cp == 0x3164 || cp == 0xfeff || cp == 0xffa0 || (cp >= 0xfff0 && cp <= 0xfffb) ||
               cp >= 0xfffe;
    return (cp >= 0x1bca0 && cp <= 0x1bca3) || (cp >= 0x1d173 && cp <= 0x1d17a) ||
           (cp >= 0xe0000 && cp <= 0xe0fff && !(cp >= 0xe0100 && cp <= 0xe01ef));
}

/* Text rule 2: no hidden code point (record_cp_hidden) in s[0..n), valid UTF-8. Each of
 * them is encoded with a lead byte 0xc2 or above: ASCII runs are passed over 8 bytes at a
 * time. */
static int
check_hidden(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;

    while (i < n) {
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & 0x8080808080808080ull) == 0) {
                i += 8;
                continue;
            }
        }
        if (record_cp_hidden(utf8_next(p, &i)))
            return PULL_ERR_INVISIBLE;
    }
    return 0;
}

/* Non-ASCII code points refused in tags: those that are certainly not letters and would
 * let two tags look alike - C1 controls and Latin-1 punctuation, the multiplication and
 * division signs, general punctuation (spaces, zero-width characters, bidi controls), the
 * ideographic space, variation selectors, the BOM and specials - and (rule 2) every hidden
 * code point, combining diacritics (e + U+0301 would pass for é), fullwidth and halfwidth
 * forms and mathematical letters (they pass for ASCII letters). */
static bool
tag_cp_refused(uint32_t cp, bool rule2)
{
    if ((cp >= 0x80 && cp <= 0xbf) || cp == 0xd7 || cp == 0xf7 || (cp >= 0x2000 && cp <= 0x206f) ||
        cp == 0x3000 || (cp >= 0xfe00 && cp <= 0xfe0f) || cp == 0xfeff ||
        (cp >= 0xfff0 && cp <= 0xffff))
        return true;
    return rule2 && (record_cp_hidden(cp) || (cp >= 0x300 && cp <= 0x36f) ||
                     (cp >= 0xff00 && cp <= 0xffef) || (cp >= 0x1d400 && cp <= 0x1d7ff) ||
                     (cp >= 0xe0100 && cp <= 0xe01ef));
}

/* Greek and Cyrillic letters, whose look-alikes of Latin letters make a tag that mixes
 * them with ASCII letters pass for another ("bіke" with a Ukrainian і). */
static bool
cp_greek_cyrillic(uint32_t cp)
{
    return (cp >= 0x370 && cp <= 0x52f) || (cp >= 0x1c80 && cp <= 0x1c8f) ||
           (cp >= 0x1f00 && cp <= 0x1fff) || (cp >= 0x2de0 && cp <= 0x2dff) ||
           (cp >= 0xa640 && cp <= 0xa69f);
}

static int
check_tag(const char *s, unsigned flags, size_t *lenp)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t n = strnlen(s, RECORD_TAG_MAX + 1), i = 0;
    bool rule2 = !(flags & CHECK_RULE1_ONLY), latin = false, greek_cyrillic = false;

    *lenp = n;
    if (n == 0 || n > RECORD_TAG_MAX)
        return PULL_ERR_TAG;
    if (!(flags & CHECK_UTF8_DONE) && !utf8_valid(s, n))
        return PULL_ERR_UTF8;
    while (i < n) {
        uint32_t cp = utf8_next(p, &i);
        if (cp < 0x80) {
            if (!((cp >= 'a' && cp <= 'z') || (cp >= '0' && cp <= '9') || cp == '-' || cp == '_' ||
                  cp == '.' || cp == '+'))
                return PULL_ERR_TAG;
            latin = latin || (cp >= 'a' && cp <= 'z');
        } else if (tag_cp_refused(cp, rule2)) {
            return rule2 && record_cp_hidden(cp) ? PULL_ERR_INVISIBLE : PULL_ERR_TAG;
        } else {
            greek_cyrillic = greek_cyrillic || cp_greek_cyrillic(cp);
        }
    }
    return rule2 && latin && greek_cyrillic ? PULL_ERR_TAG : 0;
}

static bool
geohash_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'b' && c <= 'h') || c == 'j' || c == 'k' || c == 'm' ||
           c == 'n' || (c >= 'p' && c <= 'z');
}

static size_t
uint_size(uint64_t v)
{
    return v < 0x80 ? 1 : v <= 0xff ? 2 : v <= 0xffff ? 3 : v <= 0xffffffffu ? 5 : 9;
}

static size_t
str_size(size_t n)
{
    return n + (n < 32 ? 1 : n <= 0xff ? 2 : n <= 0xffff ? 3 : 5);
}

static size_t
bin_size(size_t n)
{
    return n + (n <= 0xff ? 2 : n <= 0xffff ? 3 : 5);
}

size_t
record_encoded_size(const struct record *rec)
{
    size_t n = 1; /* fixarray of 15 */
    unsigned ntags = rec->ntags <= RECORD_TAGS_MAX ? rec->ntags : RECORD_TAGS_MAX;

    n += uint_size(rec->version) + uint_size(rec->kind);
    n += bin_size(32) + bin_size(RECORD_SLOT_BYTES);
    n += uint_size(rec->seq) + uint_size(rec->created) + uint_size(rec->expires);
    n += str_size(strnlen(rec->title, sizeof(rec->title)));
    n += str_size(strnlen(rec->body, sizeof(rec->body)));
    n += ntags < 16 ? 1 : 3;
    for (unsigned i = 0; i < ntags; i++)
        n += str_size(strnlen(rec->tags[i], sizeof(rec->tags[i])));
    n += str_size(strnlen(rec->location, sizeof(rec->location)));
    n += str_size(strnlen(rec->terms, sizeof(rec->terms)));
    n += bin_size(rec->has_link ? 32 : 0) + bin_size(rec->has_peer ? 32 : 0);
    n += bin_size(rec->has_cosig ? 64 : 0);
    return n;
}

/* The field rules, with CHECK_* flags. */
static int
check_fields(const struct record *rec, unsigned flags)
{
    size_t n;
    int rc;

    if (rec->version != RECORD_VERSION)
        return PULL_ERR_VERSION;
    if (rec->kind < RECORD_OFFER || rec->kind > RECORD_ATTESTATION)
        return PULL_ERR_KIND;
    /* A withdrawal carries neither title nor body; every other kind has a title. */
    if ((rc = check_text(rec->title, RECORD_TITLE_MAX, 1, PULL_ERR_TITLE, false, flags, &n)) != 0 &&
        !(rec->kind == RECORD_WITHDRAWN && n == 0))
        return rc;
    if (rec->kind == RECORD_WITHDRAWN && n != 0)
        return PULL_ERR_TITLE;
    if ((rc = check_text(rec->body, RECORD_BODY_MAX, 0, PULL_ERR_BODY, true, flags, &n)) != 0)
        return rc;
    if (rec->kind == RECORD_WITHDRAWN && n != 0)
        return PULL_ERR_BODY;
    if (rec->ntags > RECORD_TAGS_MAX)
        return PULL_ERR_TAGS;
    for (unsigned i = 0; i < rec->ntags; i++) {
        if ((rc = check_tag(rec->tags[i], flags, &n)) != 0)
            return rc;
        for (unsigned j = 0; j < i; j++) {
            if (rec->tags[i][0] == rec->tags[j][0] && strcmp(rec->tags[i], rec->tags[j]) == 0)
                return PULL_ERR_TAG_DUP;
        }
    }
    n = strnlen(rec->location, sizeof(rec->location));
    if (n > RECORD_LOCATION_MAX)
        return PULL_ERR_LOCATION;
    for (size_t i = 0; i < n; i++) {
        if (!geohash_char(rec->location[i]))
            return PULL_ERR_LOCATION;
    }
    if ((rc = check_text(rec->terms, RECORD_TERMS_MAX, 0, PULL_ERR_FIELD, true, flags, &n)) != 0)
        return rc;
    if (rec->expires <= rec->created || rec->expires - rec->created > RECORD_TTL_MAX)
        return PULL_ERR_EXPIRY;
    if (rec->kind == RECORD_ATTESTATION) {
        if (!rec->has_link || !rec->has_peer || (!rec->has_cosig && !(flags & CHECK_COSIG_PENDING)))
            return PULL_ERR_ATTEST;
        if (sodium_memcmp(rec->peer, rec->author, 32) == 0)
            return PULL_ERR_ATTEST;
    } else if (rec->has_link || rec->has_peer || rec->has_cosig) {
        return PULL_ERR_ATTEST;
    }
    if (record_encoded_size(rec) > RECORD_MAX)
        return PULL_ERR_TOO_BIG;
    return 0;
}

/* Text rule 2 alone, for a record that passed check_fields with CHECK_RULE1_ONLY. */
static int
check_rule2(const struct record *rec)
{
    size_t n;
    int rc;

    if ((rc = check_hidden(rec->title, strnlen(rec->title, sizeof(rec->title)))) != 0 ||
        (rc = check_hidden(rec->body, strnlen(rec->body, sizeof(rec->body)))) != 0 ||
        (rc = check_hidden(rec->terms, strnlen(rec->terms, sizeof(rec->terms)))) != 0)
        return rc;
    for (unsigned i = 0; i < rec->ntags && i < RECORD_TAGS_MAX; i++) {
        if ((rc = check_tag(rec->tags[i], CHECK_UTF8_DONE, &n)) != 0)
            return rc;
    }
    return 0;
}

int
record_check_fields(const struct record *rec)
{
    return check_fields(rec, 0);
}

int
record_fold_tags(struct record *rec)
{
    char tags[RECORD_TAGS_MAX][RECORD_TAG_MAX + 1];
    unsigned n = 0, ntags = rec->ntags < RECORD_TAGS_MAX ? rec->ntags : RECORD_TAGS_MAX;

    for (unsigned i = 0; i < ntags; i++) {
        bool dup = false;
        if (fold_string(rec->tags[i], tags[n], sizeof(tags[n])) <= 0)
            return PULL_ERR_TAG;
        for (unsigned j = 0; j < n && !dup; j++)
            dup = strcmp(tags[j], tags[n]) == 0;
        if (!dup)
            n++;
    }
    memset(rec->tags, 0, sizeof(rec->tags));
    memcpy(rec->tags, tags, n * sizeof(tags[0]));
    rec->ntags = (uint8_t)n;
    return 0;
}

int
record_check_time(const struct record *rec, uint64_t now_s)
{
    if (rec->expires <= rec->created || rec->expires - rec->created > RECORD_TTL_MAX)
        return PULL_ERR_EXPIRY;
    if (rec->created > now_s && rec->created - now_s > RECORD_SKEW_MAX)
        return PULL_ERR_CLOCK_SKEW;
    if (rec->expires <= now_s)
        return PULL_ERR_EXPIRED;
    return 0;
}

/* ---- encoding ---- */

/* Packs the 15 fields in order; empty_cosig packs an empty cosig whatever rec holds. */
static void
pack_record(msgpack_packer *pk, const struct record *rec, bool empty_cosig)
{
    msgpack_pack_array(pk, RECORD_FIELDS);
    msgpack_pack_uint64(pk, rec->version);
    msgpack_pack_uint64(pk, rec->kind);
    mp_pack_bin(pk, rec->author, 32);
    mp_pack_bin(pk, rec->slot, RECORD_SLOT_BYTES);
    msgpack_pack_uint64(pk, rec->seq);
    msgpack_pack_uint64(pk, rec->created);
    msgpack_pack_uint64(pk, rec->expires);
    mp_pack_cstr(pk, rec->title);
    mp_pack_cstr(pk, rec->body);
    msgpack_pack_array(pk, rec->ntags);
    for (unsigned i = 0; i < rec->ntags; i++)
        mp_pack_cstr(pk, rec->tags[i]);
    mp_pack_cstr(pk, rec->location);
    mp_pack_cstr(pk, rec->terms);
    mp_pack_bin(pk, rec->link, rec->has_link ? 32 : 0);
    mp_pack_bin(pk, rec->peer, rec->has_peer ? 32 : 0);
    mp_pack_bin(pk, rec->cosig, rec->has_cosig && !empty_cosig ? 64 : 0);
}

static int
encode(const struct record *rec, struct pull_wb *out, bool empty_cosig)
{
    msgpack_packer pk;
    size_t start = out->len;
    int rc;

    if ((rc = check_fields(rec, empty_cosig ? CHECK_COSIG_PENDING : 0)) != 0)
        return rc;
    if ((rc = wb_error(out)) != 0)
        return rc;
    mp_packer_init(&pk, out);
    pack_record(&pk, rec, empty_cosig);
    if ((rc = wb_error(out)) != 0) {
        out->len = start;
        return rc;
    }
    if (out->len - start > RECORD_MAX) { /* check_fields makes this unreachable */
        out->len = start;
        return PULL_ERR_TOO_BIG;
    }
    return 0;
}

int
record_encode(const struct record *rec, struct pull_wb *out)
{
    return encode(rec, out, false);
}

/* ---- decoding ---- */

/* A msgpack-c writer that compares what would be written with the input instead of
 * writing it, so decode can prove "re-encoding gives the same bytes" without allocating. */
struct cmp_writer {
    const uint8_t *p;
    size_t n;
    size_t off;
    bool differs;
};

static int
cmp_write(void *data, const char *buf, size_t len)
{
    struct cmp_writer *w = data;

    if (w->differs || len > w->n - w->off || memcmp(w->p + w->off, buf, len) != 0) {
        w->differs = true;
        return -1;
    }
    w->off += len;
    return 0;
}

/* Reads a str of at most max bytes into dst (max + 1 bytes) as a C string. Longer strings
 * fail with err; NUL bytes, which the C string could not carry, with PULL_ERR_CONTROL. The
 * other field rules are left to check_fields. */
static int
read_text(struct pull_rd *r, char *dst, uint32_t max, int err)
{
    const char *s;
    uint32_t len;
    int rc;

    if ((rc = mp_read_str(r, UINT32_MAX, &s, &len)) != 0)
        return rc;
    if (len > max)
        return err;
    if (len > 0 && memchr(s, 0, len) != NULL)
        return PULL_ERR_CONTROL;
    if (len > 0)
        memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

/* Reads a bin that is either empty or exactly n bytes. */
static int
read_opt_bin(struct pull_rd *r, uint8_t *dst, uint32_t n, bool *has)
{
    const uint8_t *b;
    uint32_t len;
    int rc;

    *has = false;
    if ((rc = mp_read_bin(r, n, &b, &len)) != 0)
        return rc;
    if (len == 0)
        return 0;
    if (len != n)
        return PULL_ERR_FIELD;
    memcpy(dst, b, n);
    *has = true;
    return 0;
}

int
record_decode(const uint8_t *p, size_t n, struct record *rec)
{
    struct pull_rd r;
    struct cmp_writer cw;
    msgpack_packer pk;
    uint32_t count, len;
    uint64_t v;
    int rc;

    memset(rec, 0, sizeof(*rec));
    if (n > RECORD_MAX)
        return PULL_ERR_TOO_BIG;
    rd_init(&r, p, n);
    if ((rc = mp_read_array(&r, &count)) != 0)
        goto out;
    /* The version comes first so that a record of a newer format is named as such even if
     * it has a different number of fields. */
    if ((rc = mp_read_uint(&r, &v)) != 0)
        goto out;
    if (v != RECORD_VERSION) {
        rc = PULL_ERR_VERSION;
        goto out;
    }
    rec->version = (uint8_t)v;
    if (count != RECORD_FIELDS) {
        rc = PULL_ERR_FIELD;
        goto out;
    }
    if ((rc = mp_read_uint(&r, &v)) != 0)
        goto out;
    if (v < RECORD_OFFER || v > RECORD_ATTESTATION) {
        rc = PULL_ERR_KIND;
        goto out;
    }
    rec->kind = (uint8_t)v;
    if ((rc = mp_read_bin_exact(&r, rec->author, 32)) != 0 ||
        (rc = mp_read_bin_exact(&r, rec->slot, RECORD_SLOT_BYTES)) != 0 ||
        (rc = mp_read_uint(&r, &rec->seq)) != 0 || (rc = mp_read_uint(&r, &rec->created)) != 0 ||
        (rc = mp_read_uint(&r, &rec->expires)) != 0 ||
        (rc = read_text(&r, rec->title, RECORD_TITLE_MAX, PULL_ERR_TITLE)) != 0 ||
        (rc = read_text(&r, rec->body, RECORD_BODY_MAX, PULL_ERR_BODY)) != 0)
        goto out;
    if ((rc = mp_read_array(&r, &count)) != 0)
        goto out;
    if (count > RECORD_TAGS_MAX) {
        rc = PULL_ERR_TAGS;
        goto out;
    }
    rec->ntags = (uint8_t)count;
    for (uint32_t i = 0; i < count; i++) {
        const char *s;
        if ((rc = mp_read_str(&r, UINT32_MAX, &s, &len)) != 0)
            goto out;
        if (len == 0 || len > RECORD_TAG_MAX) {
            rc = PULL_ERR_TAG;
            goto out;
        }
        if (memchr(s, 0, len) != NULL) {
            rc = PULL_ERR_CONTROL;
            goto out;
        }
        memcpy(rec->tags[i], s, len);
        rec->tags[i][len] = '\0';
    }
    if ((rc = read_text(&r, rec->location, RECORD_LOCATION_MAX, PULL_ERR_LOCATION)) != 0 ||
        (rc = read_text(&r, rec->terms, RECORD_TERMS_MAX, PULL_ERR_FIELD)) != 0 ||
        (rc = read_opt_bin(&r, rec->link, 32, &rec->has_link)) != 0 ||
        (rc = read_opt_bin(&r, rec->peer, 32, &rec->has_peer)) != 0 ||
        (rc = read_opt_bin(&r, rec->cosig, 64, &rec->has_cosig)) != 0)
        goto out;
    if (rd_left(&r) != 0) {
        rc = PULL_ERR_TRAILING;
        goto out;
    }
    if ((rc = check_fields(rec, CHECK_UTF8_DONE | CHECK_RULE1_ONLY)) != 0)
        goto out;
    /* Belt and braces: lib/mp.h already accepts only canonical forms, so this holds by
     * construction; checking it costs little and keeps "one record, one encoding" true
     * even if a reader is loosened one day. */
    cw = (struct cmp_writer){.p = p, .n = n};
    msgpack_packer_init(&pk, &cw, cmp_write);
    pack_record(&pk, rec, false);
    if (cw.differs || cw.off != n)
        rc = PULL_ERR_NONCANONICAL;
out:
    if (rc != 0)
        memset(rec, 0, sizeof(*rec));
    return rc;
}

/* ---- envelopes ---- */

int
envelope_parse(const uint8_t *p, size_t n, struct envelope *env)
{
    struct pull_rd r;
    const uint8_t *b;
    uint32_t len;
    int rc;

    memset(env, 0, sizeof(*env));
    if (n > RECORD_ENVELOPE_MAX)
        return PULL_ERR_TOO_BIG;
    rd_init(&r, p, n);
    if ((rc = mp_read_array_n(&r, 2)) != 0)
        goto out;
    if ((rc = mp_read_bin(&r, RECORD_ENVELOPE_MAX, &b, &len)) != 0)
        goto out;
    if (len > RECORD_MAX) {
        rc = PULL_ERR_TOO_BIG;
        goto out;
    }
    env->rec = b;
    env->rec_len = len;
    if ((rc = mp_read_bin(&r, IDENT_SIG_BYTES, &b, &len)) != 0)
        goto out;
    if (len != IDENT_SIG_BYTES) {
        rc = PULL_ERR_FIELD;
        goto out;
    }
    env->sig = b;
    if (rd_left(&r) != 0) {
        rc = PULL_ERR_TRAILING;
        goto out;
    }
    if (crypto_generichash(env->id, RECORD_ID_BYTES, p, n, NULL, 0) != 0) {
        rc = PULL_ERR_CRYPTO;
        goto out;
    }
    env->bytes = p;
    env->len = n;
out:
    if (rc != 0)
        memset(env, 0, sizeof(*env));
    return rc;
}

int
envelope_peek(const uint8_t *p, size_t n, uint64_t *kind, uint64_t *created, uint64_t *expires)
{
    struct envelope e;
    struct pull_rd r;
    uint32_t count, bl;
    uint64_t v, k, c, x;
    const uint8_t *b;
    int rc;

    if ((rc = envelope_parse(p, n, &e)) != 0)
        return rc;
    rd_init(&r, e.rec, e.rec_len);
    /* version, kind, author, slot, seq, created, expires: the record's first 7 fields */
    if ((rc = mp_read_array(&r, &count)) != 0 || (rc = mp_read_uint(&r, &v)) != 0 ||
        (rc = mp_read_uint(&r, &k)) != 0 || (rc = mp_read_bin(&r, 32, &b, &bl)) != 0 ||
        (rc = mp_read_bin(&r, RECORD_SLOT_BYTES, &b, &bl)) != 0 ||
        (rc = mp_read_uint(&r, &v)) != 0 || (rc = mp_read_uint(&r, &c)) != 0 ||
        (rc = mp_read_uint(&r, &x)) != 0)
        return rc;
    if (kind != NULL)
        *kind = k;
    if (created != NULL)
        *created = c;
    if (expires != NULL)
        *expires = x;
    return 0;
}

/* Verifies an attestation's cosig over the received record bytes with an empty cosig. The
 * record is canonical and cosig is its last field, so that encoding is the received bytes
 * with the final `c4 40 <64 bytes>` replaced by `c4 00`: no re-encoding needed. */
static int
verify_cosig(const uint8_t *rec_bytes, size_t len, const struct record *rec)
{
    uint8_t buf[RECORD_MAX];
    size_t head;

    if (!rec->has_cosig || !rec->has_peer || len < COSIG_TAIL + 1)
        return PULL_ERR_ATTEST;
    head = len - COSIG_TAIL;
    if (rec_bytes[head] != 0xc4 || rec_bytes[head + 1] != 64)
        return PULL_ERR_ATTEST; /* unreachable for a decoded canonical attestation */
    memcpy(buf, rec_bytes, head);
    buf[head] = 0xc4;
    buf[head + 1] = 0x00;
    return ident_verify(rec->peer, RECORD_ATTEST_DOMAIN, buf, head + 2, rec->cosig);
}

int
envelope_open(const uint8_t *p, size_t n, uint64_t now_s, struct envelope *env, struct record *rec)
{
    int rc;

    /* record_decode clears rec first; out: clears it on every failure. */
    if ((rc = envelope_parse(p, n, env)) != 0 ||
        (rc = record_decode(env->rec, env->rec_len, rec)) != 0 || (rc = check_rule2(rec)) != 0 ||
        (rc = record_check_time(rec, now_s)) != 0)
        goto out;
    if ((rc = ident_verify(rec->author, RECORD_DOMAIN, env->rec, env->rec_len, env->sig)) != 0)
        goto out;
    if (rec->kind == RECORD_ATTESTATION && (rc = verify_cosig(env->rec, env->rec_len, rec)) != 0)
        goto out;
out:
    if (rc != 0) {
        memset(env, 0, sizeof(*env));
        memset(rec, 0, sizeof(*rec));
    }
    return rc;
}

/* ---- signing ---- */

int
record_sign(const struct record *rec, const struct ident *id, struct pull_wb *out,
            uint8_t id_out[RECORD_ID_BYTES])
{
    struct pull_wb body, unsigned_att;
    msgpack_packer pk;
    uint8_t sig[IDENT_SIG_BYTES];
    size_t start = out->len;
    int rc;

    wb_init_env(&body, out->env, RECORD_MAX);
    wb_init_env(&unsigned_att, out->env, RECORD_MAX);
    if (id_out != NULL)
        memset(id_out, 0, RECORD_ID_BYTES);
    if (sodium_memcmp(rec->author, id->pk, 32) != 0) {
        rc = PULL_ERR_INVAL;
        goto out;
    }
    if ((rc = record_encode(rec, &body)) != 0)
        goto out;
    /* Refuse to publish an attestation whose cosig its peer did not make. */
    if (rec->kind == RECORD_ATTESTATION) {
        if ((rc = encode(rec, &unsigned_att, true)) != 0)
            goto out;
        if ((rc = ident_verify(rec->peer, RECORD_ATTEST_DOMAIN, unsigned_att.p, unsigned_att.len,
                               rec->cosig)) != 0)
            goto out;
    }
    if ((rc = ident_sign(id, RECORD_DOMAIN, body.p, body.len, sig)) != 0)
        goto out;
    if ((rc = wb_error(out)) != 0)
        goto out;
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 2);
    mp_pack_bin(&pk, body.p, body.len);
    mp_pack_bin(&pk, sig, sizeof(sig));
    if ((rc = wb_error(out)) != 0)
        goto out;
    if (out->len - start > RECORD_ENVELOPE_MAX) { /* unreachable: 4096 + 70 < 4200 */
        rc = PULL_ERR_TOO_BIG;
        goto out;
    }
    if (id_out != NULL && crypto_generichash(id_out, RECORD_ID_BYTES, out->p + start,
                                             out->len - start, NULL, 0) != 0) {
        rc = PULL_ERR_CRYPTO;
        goto out;
    }
out:
    if (rc != 0) {
        out->len = start;
        if (id_out != NULL)
            memset(id_out, 0, RECORD_ID_BYTES);
    }
    wb_release(&body);
    wb_release(&unsigned_att);
    return rc;
}

int
record_cosign(const struct pull_env *env, struct record *rec, const struct ident *peer_id)
{
    struct pull_wb w;
    uint8_t sig[IDENT_SIG_BYTES];
    int rc;

    wb_init_env(&w, env, RECORD_MAX);
    if (rec->kind != RECORD_ATTESTATION || !rec->has_peer ||
        sodium_memcmp(rec->peer, peer_id->pk, 32) != 0) {
        rc = PULL_ERR_INVAL;
        goto out;
    }
    if ((rc = encode(rec, &w, true)) != 0)
        goto out;
    if ((rc = ident_sign(peer_id, RECORD_ATTEST_DOMAIN, w.p, w.len, sig)) != 0)
        goto out;
    memcpy(rec->cosig, sig, sizeof(sig));
    rec->has_cosig = true;
out:
    wb_release(&w);
    return rc;
}

bool
record_replaces(uint64_t a_seq, const uint8_t a_id[RECORD_ID_BYTES], uint64_t b_seq,
                const uint8_t b_id[RECORD_ID_BYTES])
{
    if (a_seq != b_seq)
        return a_seq > b_seq;
    return memcmp(a_id, b_id, RECORD_ID_BYTES) < 0;
}

int
record_admit(uint8_t kind, uint64_t seq, const uint8_t id[RECORD_ID_BYTES],
             const struct record_prior *prior, uint32_t live, uint32_t tombs,
             uint32_t max_per_author)
{
    bool new_live = kind != RECORD_WITHDRAWN;

    if (prior != NULL && prior->exists) {
        if (!record_replaces(seq, id, prior->seq, prior->id))
            return PULL_ERR_STALE;
        if (prior->counted) {
            if (prior->live)
                live -= live > 0;
            else
                tombs -= tombs > 0;
        }
    }
    if (new_live ? live >= max_per_author : tombs >= max_per_author)
        return PULL_ERR_QUOTA;
    return 0;
}
