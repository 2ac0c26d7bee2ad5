/* Tests of records and envelopes (lib/record.h): round trips of every kind, every limit at
 * its bound and one past it, and hostile bytes: truncations, bit flips, non-canonical and
 * huge headers, trailing bytes, bad UTF-8, forged signatures and cosignatures. Hostile
 * records are correctly signed by their author, so the rule under test is what refuses
 * them, not the signature. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/ident.h"
#include "lib/mp.h"
#include "lib/record.h"
#include "testutil.h"

#define NOW 1800000000ull

static struct ident alice, bob, carol;

/* A valid record of each kind by alice. An attestation's peer is bob, who cosigns it. */
static void
mk(struct record *r, uint8_t kind)
{
    record_init(r);
    r->kind = kind;
    memcpy(r->author, alice.pk, 32);
    memset(r->slot, 0x51, sizeof(r->slot));
    r->seq = 1;
    r->created = NOW - 60;
    r->expires = r->created + RECORD_TTL_DEFAULT;
    if (kind != RECORD_WITHDRAWN) {
        strcpy(r->title, "bike repair in exchange for bread");
        strcpy(r->body, "I fix brakes, gears and flats.\n\tBring the bike on Saturdays.");
    }
    r->ntags = 3;
    strcpy(r->tags[0], "bikes");
    strcpy(r->tags[1], "repair");
    strcpy(r->tags[2], "fahrrad-\xc3\xbc");
    strcpy(r->location, "u09tvw");
    strcpy(r->terms, "a loaf of bread");
    if (kind == RECORD_ATTESTATION) {
        r->has_link = true;
        memset(r->link, 0xab, 32);
        r->has_peer = true;
        memcpy(r->peer, bob.pk, 32);
        assert_int_equal(record_cosign(NULL, r, &bob), 0);
    }
}

/* Wraps record bytes in an envelope signed by id over domain || bytes. */
static void
seal_bytes(const uint8_t *p, size_t n, const struct ident *id, const char *domain,
           struct pull_wb *env)
{
    msgpack_packer pk;
    uint8_t sig[64];

    assert_int_equal(ident_sign(id, domain, p, n, sig), 0);
    wb_reset(env);
    mp_packer_init(&pk, env);
    msgpack_pack_array(&pk, 2);
    mp_pack_bin(&pk, p, n);
    mp_pack_bin(&pk, sig, 64);
    assert_int_equal(wb_error(env), 0);
}

/* Opens an envelope and, if it opens, checks the decoded record re-encodes to its bytes. */
static int
open_env(const struct pull_wb *env, struct record *rec)
{
    struct envelope e;
    struct record tmp;
    int rc = envelope_open(env->p, env->len, NOW, &e, rec != NULL ? rec : &tmp);

    if (rc == 0) {
        struct pull_wb w;
        uint8_t id[32];
        wb_init(&w, 0);
        assert_int_equal(record_encode(rec != NULL ? rec : &tmp, &w), 0);
        assert_int_equal(w.len, e.rec_len);
        assert_memory_equal(w.p, e.rec, w.len);
        wb_release(&w);
        assert_int_equal(crypto_generichash(id, 32, env->p, env->len, NULL, 0), 0);
        assert_memory_equal(id, e.id, 32);
        assert_ptr_equal(e.bytes, env->p);
        assert_int_equal(e.len, env->len);
    }
    return rc;
}

/* ---- a raw packer for hostile records ---- */

struct str {
    const char *p;
    size_t n;
    bool set;
};
#define S(lit) ((struct str){(lit), sizeof(lit) - 1, true})

struct over {
    int nfields;         /* 0: 15 */
    int64_t version;     /* -1: from the base record */
    int64_t kind;        /* -1: from the base record */
    size_t author_len;   /* 0: 32 */
    size_t slot_len;     /* 0: 16 */
    const char *seq_hex; /* the raw encoding of seq */
    struct str title, body, location, terms;
    bool set_tags;
    uint32_t ntags;
    struct str tags[20];
    const char *tags_hex;              /* raw bytes in place of the whole tags array */
    int link_len, peer_len, cosig_len; /* 0: from base; -1: empty */
    const char *tail_hex;              /* appended after the last field */
};

static struct over
ov(void)
{
    struct over o;

    memset(&o, 0, sizeof(o));
    o.version = -1;
    o.kind = -1;
    return o;
}

static void
pack_str(msgpack_packer *pk, struct str s, const char *base)
{
    if (s.set)
        mp_pack_str(pk, s.p, s.n);
    else
        mp_pack_cstr(pk, base);
}

static void
put_hex(struct pull_wb *w, const char *hex)
{
    uint8_t b[64];
    size_t n = tu_hex(hex, b, sizeof(b));

    assert_true(n <= sizeof(b));
    wb_put(w, b, n);
}

static void
pack_opt_bin(msgpack_packer *pk, int len_over, const uint8_t *p, bool has, size_t full)
{
    size_t n = len_over == 0 ? (has ? full : 0) : len_over < 0 ? 0 : (size_t)len_over;
    uint8_t buf[128] = {0};

    memcpy(buf, p, full);
    mp_pack_bin(pk, buf, n);
}

/* Packs base with the overrides of o. */
static void
raw_encode(const struct record *b, const struct over *o, struct pull_wb *w)
{
    msgpack_packer pk;
    uint8_t zeros[64] = {0};

    wb_reset(w);
    mp_packer_init(&pk, w);
    msgpack_pack_array(&pk, o->nfields ? (uint32_t)o->nfields : RECORD_FIELDS);
    msgpack_pack_uint64(&pk, o->version >= 0 ? (uint64_t)o->version : b->version);
    msgpack_pack_uint64(&pk, o->kind >= 0 ? (uint64_t)o->kind : b->kind);
    if (o->author_len) {
        memcpy(zeros, b->author, 32);
        mp_pack_bin(&pk, zeros, o->author_len);
    } else {
        mp_pack_bin(&pk, b->author, 32);
    }
    mp_pack_bin(&pk, b->slot, o->slot_len ? o->slot_len : RECORD_SLOT_BYTES);
    if (o->seq_hex)
        put_hex(w, o->seq_hex);
    else
        msgpack_pack_uint64(&pk, b->seq);
    msgpack_pack_uint64(&pk, b->created);
    msgpack_pack_uint64(&pk, b->expires);
    pack_str(&pk, o->title, b->title);
    pack_str(&pk, o->body, b->body);
    if (o->tags_hex) {
        put_hex(w, o->tags_hex);
    } else if (o->set_tags) {
        msgpack_pack_array(&pk, o->ntags);
        for (uint32_t i = 0; i < o->ntags; i++)
            mp_pack_str(&pk, o->tags[i].p, o->tags[i].n);
    } else {
        msgpack_pack_array(&pk, b->ntags);
        for (unsigned i = 0; i < b->ntags; i++)
            mp_pack_cstr(&pk, b->tags[i]);
    }
    pack_str(&pk, o->location, b->location);
    pack_str(&pk, o->terms, b->terms);
    pack_opt_bin(&pk, o->link_len, b->link, b->has_link, 32);
    pack_opt_bin(&pk, o->peer_len, b->peer, b->has_peer, 32);
    pack_opt_bin(&pk, o->cosig_len, b->cosig, b->has_cosig, 64);
    if (o->tail_hex)
        put_hex(w, o->tail_hex);
    assert_int_equal(wb_error(w), 0);
}

/* Encodes base+o, signs it properly as alice, opens the envelope; also checks that
 * record_decode agrees on the bytes alone (for errors that don't involve time or
 * signatures). Returns envelope_open's code. */
static int
try_raw(const struct record *base, const struct over *o)
{
    struct pull_wb w, env;
    struct record rec;
    int rc, drc;

    wb_init(&w, 0);
    wb_init(&env, 0);
    raw_encode(base, o, &w);
    drc = record_decode(w.p, w.len, &rec);
    seal_bytes(w.p, w.len, &alice, RECORD_DOMAIN, &env);
    rc = open_env(&env, NULL);
    if (drc != 0)
        assert_int_equal(drc, rc);
    wb_release(&w);
    wb_release(&env);
    return rc;
}

static int
try_over(uint8_t kind, const struct over *o)
{
    struct record b;

    mk(&b, kind);
    return try_raw(&b, o);
}

/* Signs a record struct with record_sign as alice and opens it. */
static int
try_rec(const struct record *r)
{
    struct pull_wb env;
    int rc;

    wb_init(&env, 0);
    rc = record_sign(r, &alice, &env, NULL);
    if (rc == 0)
        rc = open_env(&env, NULL);
    wb_release(&env);
    return rc;
}

/* Like try_rec but bypasses record_sign's checks: encodes with the raw packer. */
static int
try_rec_raw(const struct record *r)
{
    struct over o = ov();
    return try_raw(r, &o);
}

static char *
filled(size_t n, char c)
{
    static char buf[8192];

    assert_true(n < sizeof(buf));
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* ---- tests ---- */

static void
test_kind_names(void **state)
{
    uint8_t k;
    (void)state;

    for (unsigned i = RECORD_OFFER; i <= RECORD_ATTESTATION; i++) {
        assert_non_null(record_kind_name(i));
        assert_int_equal(record_kind_parse(record_kind_name(i), &k), 0);
        assert_int_equal(k, i);
    }
    assert_string_equal(record_kind_name(RECORD_OFFER), "offer");
    assert_string_equal(record_kind_name(RECORD_NEED), "need");
    assert_string_equal(record_kind_name(RECORD_PROFILE), "profile");
    assert_string_equal(record_kind_name(RECORD_WITHDRAWN), "withdrawn");
    assert_string_equal(record_kind_name(RECORD_ATTESTATION), "attestation");
    assert_null(record_kind_name(0));
    assert_null(record_kind_name(6));
    assert_null(record_kind_name(256 + 1));
    assert_int_equal(record_kind_parse("Offer", &k), PULL_ERR_KIND);
    assert_int_equal(record_kind_parse("offers", &k), PULL_ERR_KIND);
    assert_int_equal(record_kind_parse("", &k), PULL_ERR_KIND);
    assert_int_equal(record_kind_parse(NULL, &k), PULL_ERR_KIND);
}

static void
test_round_trip_every_kind(void **state)
{
    (void)state;

    for (uint8_t kind = RECORD_OFFER; kind <= RECORD_ATTESTATION; kind++) {
        struct record r, back, again;
        struct pull_wb env, enc;
        struct envelope e;
        uint8_t id[32];

        mk(&r, kind);
        assert_int_equal(record_check_fields(&r), 0);
        assert_int_equal(record_check_time(&r, NOW), 0);
        wb_init(&env, 0);
        wb_init(&enc, 0);
        assert_int_equal(record_sign(&r, &alice, &env, id), 0);
        assert_true(env.len <= RECORD_ENVELOPE_MAX);
        assert_int_equal(envelope_open(env.p, env.len, NOW, &e, &back), 0);
        assert_memory_equal(&r, &back, sizeof(r)); /* both zeroed before being filled */
        assert_memory_equal(e.id, id, 32);
        assert_int_equal(record_encode(&back, &enc), 0);
        assert_int_equal(enc.len, e.rec_len);
        assert_int_equal(enc.len, record_encoded_size(&r));
        assert_memory_equal(enc.p, e.rec, enc.len);
        assert_int_equal(record_decode(e.rec, e.rec_len, &again), 0);
        assert_memory_equal(&r, &again, sizeof(r));
        assert_int_equal(ident_verify(alice.pk, RECORD_DOMAIN, e.rec, e.rec_len, e.sig), 0);
        /* envelope_peek reads the head fields without decoding the rest */
        {
            uint64_t pk_kind = 0, pk_created = 0, pk_expires = 0;
            assert_int_equal(envelope_peek(env.p, env.len, &pk_kind, &pk_created, &pk_expires),
                             0);
            assert_int_equal(pk_kind, kind);
            assert_int_equal(pk_created, r.created);
            assert_int_equal(pk_expires, r.expires);
            assert_int_equal(envelope_peek(env.p, env.len, NULL, NULL, NULL), 0);
            for (size_t cut = 0; cut < env.len; cut++)
                assert_true(envelope_peek(env.p, cut, NULL, &pk_created, NULL) < 0);
        }
        /* signing is deterministic: the same record has the same id */
        wb_reset(&env);
        assert_int_equal(record_sign(&r, &alice, &env, id), 0);
        assert_memory_equal(e.id, id, 32);
        wb_release(&env);
        wb_release(&enc);
    }
}

static void
test_round_trip_at_limits(void **state)
{
    struct record r;
    struct pull_wb env;
    struct envelope e;
    struct record back;
    (void)state;

    /* every field at its maximum except body, which is cut to stay within RECORD_MAX */
    mk(&r, RECORD_ATTESTATION);
    strcpy(r.title, filled(RECORD_TITLE_MAX - 2, 'T'));
    strcat(r.title, "\xc3\xa9"); /* 120 bytes ending in a two-byte character */
    strcpy(r.terms, filled(RECORD_TERMS_MAX, 't'));
    r.ntags = RECORD_TAGS_MAX;
    for (int i = 0; i < RECORD_TAGS_MAX; i++) {
        strcpy(r.tags[i], filled(RECORD_TAG_MAX, 'a'));
        r.tags[i][0] = (char)('a' + i);
    }
    strcpy(r.location, "0123456789bc");
    r.seq = UINT64_MAX;
    r.created = UINT64_MAX - RECORD_TTL_MAX;
    r.expires = UINT64_MAX;
    /* RECORD_MAX minus everything but the body's bytes: the largest body that fits */
    r.body[0] = '\0';
    size_t room = RECORD_MAX - record_encoded_size(&r) - 2; /* str16 header instead of fixstr */
    assert_true(room < RECORD_BODY_MAX);
    strcpy(r.body, filled(room, 'b'));
    assert_int_equal(record_cosign(NULL, &r, &bob), 0);
    assert_int_equal(record_encoded_size(&r), RECORD_MAX);
    wb_init(&env, 0);
    assert_int_equal(record_sign(&r, &alice, &env, NULL), 0);
    assert_int_equal(envelope_open(env.p, env.len, UINT64_MAX - 10, &e, &back), 0);
    assert_int_equal(e.rec_len, RECORD_MAX);
    assert_memory_equal(&r, &back, sizeof(r));
    /* one byte more is too big */
    strcat(r.body, "b");
    assert_int_equal(record_check_fields(&r), PULL_ERR_TOO_BIG);
    wb_reset(&env);
    assert_int_equal(record_encode(&r, &env), PULL_ERR_TOO_BIG);
    assert_int_equal(env.len, 0);
    assert_int_equal(record_sign(&r, &alice, &env, NULL), PULL_ERR_TOO_BIG);
    assert_int_equal(env.len, 0);
    /* decode refuses it on size alone, before looking inside */
    {
        struct over o = ov();
        o.body = (struct str){r.body, strlen(r.body), true};
        struct record base = r;
        base.body[0] = '\0';
        assert_int_equal(try_raw(&base, &o), PULL_ERR_TOO_BIG);
    }
    wb_release(&env);

    /* title 120 and body 3000 together fit */
    mk(&r, RECORD_OFFER);
    strcpy(r.title, filled(RECORD_TITLE_MAX, 'x'));
    strcpy(r.body, filled(RECORD_BODY_MAX, 'y'));
    assert_int_equal(try_rec(&r), 0);
}

static void
test_limits(void **state)
{
    struct record r;
    struct over o;
    (void)state;

    /* title: 1..120, and 121 refused */
    mk(&r, RECORD_OFFER);
    strcpy(r.title, filled(120, 'x'));
    assert_int_equal(try_rec(&r), 0);
    o = ov();
    o.title = (struct str){filled(121, 'x'), 121, true};
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_TITLE);
    o.title = S("x");
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);
    o.title = S("");
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_TITLE);
    memset(r.title, 'x', sizeof(r.title)); /* unterminated in the struct */
    assert_int_equal(record_check_fields(&r), PULL_ERR_TITLE);

    /* body: 0..3000 */
    mk(&r, RECORD_NEED);
    strcpy(r.body, filled(3000, 'y'));
    assert_int_equal(try_rec(&r), 0);
    r.body[0] = '\0';
    assert_int_equal(try_rec(&r), 0);
    o = ov();
    o.body = (struct str){filled(3001, 'y'), 3001, true};
    assert_int_equal(try_over(RECORD_NEED, &o), PULL_ERR_BODY);

    /* tags: 16 accepted, 17 refused; a tag of 32 bytes accepted, 33 refused */
    mk(&r, RECORD_OFFER);
    r.ntags = 16;
    for (int i = 0; i < 16; i++)
        snprintf(r.tags[i], sizeof(r.tags[i]), "tag%d", i);
    assert_int_equal(try_rec(&r), 0);
    r.ntags = 17;
    assert_int_equal(record_check_fields(&r), PULL_ERR_TAGS);
    o = ov();
    o.set_tags = true;
    o.ntags = 17;
    static char names[17][8];
    for (int i = 0; i < 17; i++) {
        snprintf(names[i], sizeof(names[i]), "tag%d", i);
        o.tags[i] = (struct str){names[i], strlen(names[i]), true};
    }
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_TAGS);
    o.ntags = 16;
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);
    o.ntags = 0;
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);
    mk(&r, RECORD_OFFER);
    strcpy(r.tags[0], filled(32, 'k'));
    assert_int_equal(try_rec(&r), 0);
    o = ov();
    o.set_tags = true;
    o.ntags = 1;
    o.tags[0] = (struct str){filled(33, 'k'), 33, true};
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_TAG);
    o.tags[0] = (struct str){filled(32, 'k'), 32, true};
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);
    o.tags[0] = S("");
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_TAG);
    memset(r.tags[1], 'k', sizeof(r.tags[1])); /* unterminated in the struct */
    assert_int_equal(record_check_fields(&r), PULL_ERR_TAG);

    /* location: 12 accepted, 13 refused */
    mk(&r, RECORD_OFFER);
    strcpy(r.location, "u09tvwu09tvw");
    assert_int_equal(try_rec(&r), 0);
    o = ov();
    o.location = S("u09tvwu09tvwu");
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_LOCATION);
    o.location = S("");
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);

    /* terms: 500 accepted, 501 refused */
    mk(&r, RECORD_OFFER);
    strcpy(r.terms, filled(500, 'z'));
    assert_int_equal(try_rec(&r), 0);
    o = ov();
    o.terms = (struct str){filled(501, 'z'), 501, true};
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_FIELD);
}

static void
test_time_limits(void **state)
{
    struct record r;
    (void)state;

    /* expiry: exactly 90 days accepted, one second more refused; must follow created */
    mk(&r, RECORD_OFFER);
    r.expires = r.created + RECORD_TTL_MAX;
    assert_int_equal(try_rec(&r), 0);
    r.expires++;
    assert_int_equal(record_check_time(&r, NOW), PULL_ERR_EXPIRY);
    assert_int_equal(record_check_fields(&r), PULL_ERR_EXPIRY);
    assert_int_equal(try_rec_raw(&r), PULL_ERR_EXPIRY);
    r.expires = r.created;
    assert_int_equal(try_rec_raw(&r), PULL_ERR_EXPIRY);
    r.expires = r.created - 1;
    assert_int_equal(try_rec_raw(&r), PULL_ERR_EXPIRY);
    r.created = UINT64_MAX;
    r.expires = 0;
    assert_int_equal(record_check_time(&r, NOW), PULL_ERR_EXPIRY);

    /* created at most 600 s in our future */
    mk(&r, RECORD_OFFER);
    r.created = NOW + RECORD_SKEW_MAX;
    r.expires = r.created + 3600;
    assert_int_equal(try_rec(&r), 0);
    r.created++;
    r.expires++;
    assert_int_equal(record_check_time(&r, NOW), PULL_ERR_CLOCK_SKEW);
    assert_int_equal(try_rec(&r), PULL_ERR_CLOCK_SKEW);
    r.created = UINT64_MAX - 10;
    r.expires = UINT64_MAX;
    assert_int_equal(record_check_time(&r, NOW), PULL_ERR_CLOCK_SKEW);

    /* expired when now reaches expires */
    mk(&r, RECORD_OFFER);
    r.created = NOW - 1000;
    r.expires = NOW + 1;
    assert_int_equal(try_rec(&r), 0);
    r.expires = NOW;
    assert_int_equal(record_check_time(&r, NOW), PULL_ERR_EXPIRED);
    assert_int_equal(try_rec(&r), PULL_ERR_EXPIRED);
    r.created = 0;
    r.expires = 1;
    assert_int_equal(try_rec(&r), PULL_ERR_EXPIRED);
    assert_int_equal(record_check_time(&r, 0), 0);
}

/* Every error code a record or an envelope can be refused with is produced by some input. */
static void
test_every_error_code(void **state)
{
    static const int codes[] = {
        PULL_ERR_VERSION,    PULL_ERR_KIND,    PULL_ERR_TITLE,     PULL_ERR_BODY,
        PULL_ERR_TAGS,       PULL_ERR_TAG,     PULL_ERR_TAG_DUP,   PULL_ERR_EXPIRY,
        PULL_ERR_CLOCK_SKEW, PULL_ERR_EXPIRED, PULL_ERR_BAD_SIG,   PULL_ERR_FIELD,
        PULL_ERR_LOCATION,   PULL_ERR_UTF8,    PULL_ERR_CONTROL,   PULL_ERR_NONCANONICAL,
        PULL_ERR_TRAILING,   PULL_ERR_TOO_BIG, PULL_ERR_TRUNCATED, PULL_ERR_ATTEST,
        PULL_ERR_INVISIBLE,
    };
    int got[sizeof(codes) / sizeof(codes[0])];
    struct record r;
    struct over o;
    struct pull_wb w, env;
    int n = 0;
    (void)state;

    wb_init(&w, 0);
    wb_init(&env, 0);
#define GOT(expr) got[n++] = (expr)
    o = ov(), o.version = 2;
    GOT(try_over(RECORD_OFFER, &o));
    o = ov(), o.kind = 6;
    GOT(try_over(RECORD_OFFER, &o));
    o = ov(), o.title = S("");
    GOT(try_over(RECORD_OFFER, &o));
    o = ov(), o.body = S("gone");
    GOT(try_over(RECORD_WITHDRAWN, &o));
    o = ov(), o.set_tags = true, o.ntags = 17;
    for (int i = 0; i < 17; i++)
        o.tags[i] = S("t");
    GOT(try_over(RECORD_OFFER, &o));
    o = ov(), o.set_tags = true, o.ntags = 1, o.tags[0] = S("Rust");
    GOT(try_over(RECORD_OFFER, &o));
    o = ov(), o.set_tags = true, o.ntags = 2, o.tags[0] = S("rust"), o.tags[1] = S("rust");
    GOT(try_over(RECORD_OFFER, &o));
    mk(&r, RECORD_OFFER), r.expires = r.created + RECORD_TTL_MAX + 1;
    GOT(try_rec_raw(&r));
    mk(&r, RECORD_OFFER), r.created = NOW + 601, r.expires = NOW + 7200;
    GOT(try_rec_raw(&r));
    mk(&r, RECORD_OFFER), r.created = NOW - 7200, r.expires = NOW - 1;
    GOT(try_rec_raw(&r));
    mk(&r, RECORD_OFFER);
    record_encode(&r, &w);
    seal_bytes(w.p, w.len, &bob, RECORD_DOMAIN, &env); /* signed by someone else */
    GOT(open_env(&env, NULL));
    o = ov(), o.author_len = 31;
    GOT(try_over(RECORD_OFFER, &o));
    o = ov(), o.location = S("u09a");
    GOT(try_over(RECORD_OFFER, &o));
    o = ov(), o.title = S("caf\xc3");
    GOT(try_over(RECORD_OFFER, &o));
    o = ov(), o.title = S("bell\a");
    GOT(try_over(RECORD_OFFER, &o));
    o = ov(), o.seq_hex = "cd 00 01";
    GOT(try_over(RECORD_OFFER, &o));
    o = ov(), o.tail_hex = "c0";
    GOT(try_over(RECORD_OFFER, &o));
    {
        static uint8_t big[RECORD_ENVELOPE_MAX + 1];
        struct envelope e;
        struct record tmp;
        GOT(envelope_open(big, sizeof(big), NOW, &e, &tmp));
        GOT(envelope_open(env.p, env.len - 1, NOW, &e, &tmp));
    }
    mk(&r, RECORD_ATTESTATION), r.has_cosig = false;
    GOT(try_rec_raw(&r));
    o = ov(), o.title = S("free bike \xe2\x80\xae"); /* RLO */
    GOT(try_over(RECORD_OFFER, &o));
#undef GOT
    assert_int_equal(n, (int)(sizeof(codes) / sizeof(codes[0])));
    for (int i = 0; i < n; i++) {
        if (got[i] != codes[i])
            fail_msg("case %d: got %s, want %s", i, pull_errname(got[i]), pull_errname(codes[i]));
        for (int j = 0; j < i; j++)
            assert_int_not_equal(codes[i], codes[j]);
    }
    wb_release(&w);
    wb_release(&env);
}

static void
test_truncated_everywhere(void **state)
{
    (void)state;

    for (uint8_t kind = RECORD_OFFER; kind <= RECORD_ATTESTATION; kind++) {
        struct record r, back;
        struct pull_wb env;
        struct envelope e;

        mk(&r, kind);
        wb_init(&env, 0);
        assert_int_equal(record_sign(&r, &alice, &env, NULL), 0);
        assert_int_equal(envelope_open(env.p, env.len, NOW, &e, &back), 0);
        for (size_t len = 0; len < env.len; len++) {
            /* a copy of exactly len bytes, so ASan sees any read past the end */
            uint8_t *cut = malloc(len > 0 ? len : 1);
            memcpy(cut, env.p, len);
            assert_int_equal(envelope_parse(cut, len, &e), PULL_ERR_TRUNCATED);
            assert_int_equal(envelope_open(cut, len, NOW, &e, &back), PULL_ERR_TRUNCATED);
            assert_null(e.rec);
            free(cut);
        }
        assert_int_equal(envelope_parse(env.p, env.len, &e), 0);
        for (size_t len = 0; len < e.rec_len; len++) {
            uint8_t *cut = malloc(len > 0 ? len : 1);
            memcpy(cut, e.rec, len);
            assert_int_equal(record_decode(cut, len, &back), PULL_ERR_TRUNCATED);
            free(cut);
        }
        wb_release(&env);
    }
}

static void
test_bit_flips(void **state)
{
    struct record r, back;
    struct pull_wb env;
    struct envelope e;
    int bad_sig = 0;
    (void)state;

    mk(&r, RECORD_ATTESTATION);
    wb_init(&env, 0);
    assert_int_equal(record_sign(&r, &alice, &env, NULL), 0);
    assert_int_equal(envelope_parse(env.p, env.len, &e), 0);
    size_t rec_off = (size_t)(e.rec - env.p), sig_off = (size_t)(e.sig - env.p);
    for (size_t bit = 0; bit < env.len * 8; bit++) {
        int rc;
        env.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        rc = envelope_open(env.p, env.len, NOW, &e, &back);
        env.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_not_equal(rc, 0);
        if (bit / 8 >= sig_off)
            assert_int_equal(rc, PULL_ERR_BAD_SIG); /* every bit of the signature */
        /* the bytes of the author (rec[5..37)) and the slot (rec[39..55)): any flip there
         * decodes fine and only the signature can catch it */
        size_t at = bit / 8 - rec_off;
        if (bit / 8 >= rec_off && ((at >= 5 && at < 37) || (at >= 39 && at < 55)))
            assert_int_equal(rc, PULL_ERR_BAD_SIG);
        bad_sig += rc == PULL_ERR_BAD_SIG;
    }
    assert_true(bad_sig > 64 * 8 + 48 * 8);
    assert_int_equal(envelope_open(env.p, env.len, NOW, &e, &back), 0);
    wb_release(&env);
}

static void
test_wrong_domain(void **state)
{
    struct record r;
    struct pull_wb w, env;
    (void)state;

    mk(&r, RECORD_OFFER);
    wb_init(&w, 0);
    wb_init(&env, 0);
    assert_int_equal(record_encode(&r, &w), 0);
    seal_bytes(w.p, w.len, &alice, RECORD_DOMAIN, &env);
    assert_int_equal(open_env(&env, NULL), 0);
    const char *wrong[] = {RECORD_ATTEST_DOMAIN, "", "pull/record/v2", "pull/record/v1 "};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        seal_bytes(w.p, w.len, &alice, wrong[i], &env);
        assert_int_equal(open_env(&env, NULL), PULL_ERR_BAD_SIG);
    }
    /* signed by the right key for a record claiming another author */
    seal_bytes(w.p, w.len, &carol, RECORD_DOMAIN, &env);
    assert_int_equal(open_env(&env, NULL), PULL_ERR_BAD_SIG);
    wb_release(&w);
    wb_release(&env);
}

static void
test_noncanonical(void **state)
{
    struct over o;
    struct record r, back;
    struct pull_wb w, env;
    struct envelope e;
    (void)state;

    /* integers in longer forms than needed */
    const char *seqs[] = {"cc 01",
                          "cd 00 01",
                          "ce 00 00 00 01",
                          "cf 00 00 00 00 00 00 00 01",
                          "cd 00 ff",
                          "ce 00 00 ff ff",
                          "cf 00 00 00 00 ff ff ff ff"};
    for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
        o = ov();
        o.seq_hex = seqs[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_NONCANONICAL);
    }
    o = ov();
    o.seq_hex = "cc 80"; /* the shortest form of 128 is fine */
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);
    /* negative, float, nil or bool seq */
    const char *wrong_types[] = {"ff", "d0 80", "ca 3f 80 00 00", "c0", "c3", "a1 31"};
    for (size_t i = 0; i < sizeof(wrong_types) / sizeof(wrong_types[0]); i++) {
        o = ov();
        o.seq_hex = wrong_types[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_FIELD);
    }
    /* longer headers: tags as array16, a tag as str8 */
    o = ov();
    o.tags_hex = "dc 00 01 a3 61 62 63";
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_NONCANONICAL);
    o.tags_hex = "91 d9 03 61 62 63";
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_NONCANONICAL);
    o.tags_hex = "91 a3 61 62 63";
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);
    o.tags_hex = "91 c4 03 61 62 63"; /* bin, not str */
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_FIELD);
    o.tags_hex = "81 a1 61 a1 62"; /* a map */
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_FIELD);

    /* the whole record with an array16 header, and bin16 for the author */
    mk(&r, RECORD_OFFER);
    wb_init(&w, 0);
    wb_init(&env, 0);
    assert_int_equal(record_encode(&r, &w), 0);
    {
        uint8_t buf[RECORD_MAX + 8];
        assert_int_equal(w.p[0], 0x9f);
        buf[0] = 0xdc, buf[1] = 0, buf[2] = 15;
        memcpy(buf + 3, w.p + 1, w.len - 1);
        assert_int_equal(record_decode(buf, w.len + 2, &back), PULL_ERR_NONCANONICAL);
        seal_bytes(buf, w.len + 2, &alice, RECORD_DOMAIN, &env);
        assert_int_equal(open_env(&env, NULL), PULL_ERR_NONCANONICAL);

        assert_int_equal(w.p[3], 0xc4); /* 9f 01 01 c4 20 <author> */
        memcpy(buf, w.p, 3);
        buf[3] = 0xc5, buf[4] = 0, buf[5] = 32;
        memcpy(buf + 6, w.p + 5, w.len - 5);
        assert_int_equal(record_decode(buf, w.len + 1, &back), PULL_ERR_NONCANONICAL);
    }

    /* the envelope: a small record in bin16 instead of bin8 */
    mk(&r, RECORD_WITHDRAWN);
    r.ntags = 0;
    r.location[0] = r.terms[0] = '\0';
    wb_reset(&w);
    assert_int_equal(record_encode(&r, &w), 0);
    assert_true(w.len < 256);
    seal_bytes(w.p, w.len, &alice, RECORD_DOMAIN, &env);
    assert_int_equal(open_env(&env, NULL), 0);
    {
        uint8_t buf[512];
        assert_int_equal(env.p[0], 0x92);
        assert_int_equal(env.p[1], 0xc4);
        buf[0] = 0x92, buf[1] = 0xc5, buf[2] = 0, buf[3] = env.p[2];
        memcpy(buf + 4, env.p + 3, env.len - 3);
        assert_int_equal(envelope_open(buf, env.len + 1, NOW, &e, &back), PULL_ERR_NONCANONICAL);
        /* array16 header for the envelope */
        buf[0] = 0xdc, buf[1] = 0, buf[2] = 2;
        memcpy(buf + 3, env.p + 1, env.len - 1);
        assert_int_equal(envelope_open(buf, env.len + 2, NOW, &e, &back), PULL_ERR_NONCANONICAL);
    }
    wb_release(&w);
    wb_release(&env);
}

static void
test_trailing_and_shape(void **state)
{
    struct record r, back;
    struct pull_wb w, env;
    struct envelope e;
    struct over o;
    uint8_t buf[RECORD_ENVELOPE_MAX + 16];
    (void)state;

    mk(&r, RECORD_PROFILE);
    wb_init(&w, 0);
    wb_init(&env, 0);
    assert_int_equal(record_encode(&r, &w), 0);
    /* after the record */
    memcpy(buf, w.p, w.len);
    buf[w.len] = 0;
    assert_int_equal(record_decode(buf, w.len + 1, &back), PULL_ERR_TRAILING);
    o = ov();
    o.tail_hex = "00";
    assert_int_equal(try_over(RECORD_PROFILE, &o), PULL_ERR_TRAILING);
    /* after the envelope */
    seal_bytes(w.p, w.len, &alice, RECORD_DOMAIN, &env);
    memcpy(buf, env.p, env.len);
    buf[env.len] = 0xc0;
    assert_int_equal(envelope_parse(buf, env.len + 1, &e), PULL_ERR_TRAILING);
    assert_int_equal(envelope_open(buf, env.len + 1, NOW, &e, &back), PULL_ERR_TRAILING);
    /* a 16th field, or 14 */
    o = ov();
    o.nfields = 16;
    o.tail_hex = "c0";
    assert_int_equal(try_over(RECORD_PROFILE, &o), PULL_ERR_FIELD);
    o.nfields = 14;
    o.tail_hex = NULL;
    assert_int_equal(try_over(RECORD_PROFILE, &o), PULL_ERR_FIELD);
    /* a newer version with another shape is named as a version problem */
    o.nfields = 3;
    o.version = 2;
    assert_int_equal(try_over(RECORD_PROFILE, &o), PULL_ERR_VERSION);
    o = ov();
    o.version = 0;
    assert_int_equal(try_over(RECORD_PROFILE, &o), PULL_ERR_VERSION);
    /* envelopes of the wrong shape */
    const char *shapes[] = {"91 c4 00", "93 c4 00 c4 00 c0", "82 c4 00 c4 00", "c0", "90"};
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        size_t n = tu_hex(shapes[i], buf, sizeof(buf));
        int rc = envelope_open(buf, n, NOW, &e, &back);
        assert_true(rc == PULL_ERR_FIELD || rc == PULL_ERR_TRUNCATED);
    }
    /* a signature of 63 or 65 bytes */
    {
        msgpack_packer pk;
        uint8_t sig[65] = {0};
        for (size_t len = 63; len <= 65; len += 2) {
            wb_reset(&env);
            mp_packer_init(&pk, &env);
            msgpack_pack_array(&pk, 2);
            mp_pack_bin(&pk, w.p, w.len);
            mp_pack_bin(&pk, sig, len);
            assert_int_equal(envelope_open(env.p, env.len, NOW, &e, &back), PULL_ERR_FIELD);
        }
        /* record bytes as str instead of bin */
        wb_reset(&env);
        mp_packer_init(&pk, &env);
        msgpack_pack_array(&pk, 2);
        mp_pack_str(&pk, (const char *)w.p, w.len);
        mp_pack_bin(&pk, sig, 64);
        assert_int_equal(envelope_open(env.p, env.len, NOW, &e, &back), PULL_ERR_FIELD);
        /* an empty record */
        wb_reset(&env);
        mp_packer_init(&pk, &env);
        msgpack_pack_array(&pk, 2);
        mp_pack_bin(&pk, w.p, 0);
        mp_pack_bin(&pk, sig, 64);
        assert_int_equal(envelope_parse(env.p, env.len, &e), 0);
        assert_int_equal(envelope_open(env.p, env.len, NOW, &e, &back), PULL_ERR_TRUNCATED);
    }
    /* a record bin over RECORD_MAX inside an envelope under RECORD_ENVELOPE_MAX */
    {
        static uint8_t big[RECORD_MAX + 1];
        msgpack_packer pk;
        uint8_t sig[64] = {0};
        wb_reset(&env);
        mp_packer_init(&pk, &env);
        msgpack_pack_array(&pk, 2);
        mp_pack_bin(&pk, big, sizeof(big));
        mp_pack_bin(&pk, sig, 64);
        assert_true(env.len <= RECORD_ENVELOPE_MAX);
        assert_int_equal(envelope_parse(env.p, env.len, &e), PULL_ERR_TOO_BIG);
        assert_int_equal(record_decode(big, sizeof(big), &back), PULL_ERR_TOO_BIG);
    }
    wb_release(&w);
    wb_release(&env);
}

static void
test_huge_headers(void **state)
{
    struct record back;
    struct envelope e;
    struct over o;
    uint8_t buf[64];
    size_t n;
    (void)state;

    const char *env_hostile[] = {
        "dd ff ff ff ff",          /* array32 of 4 billion */
        "df 0f ff ff ff",          /* map32 */
        "dc ff ff",                /* array16 */
        "92 c6 ff ff ff ff",       /* bin32 of 4 GiB */
        "92 c6 00 01 00 00 00",    /* bin32 of 64 KiB in 1 byte */
        "92 c5 ff ff 00",          /* bin16 */
        "92 c4 ff 00",             /* bin8 */
        "92 c4 00 c6 ff ff ff ff", /* a huge signature */
        "92 db ff ff ff ff",       /* str32 */
    };
    for (size_t i = 0; i < sizeof(env_hostile) / sizeof(env_hostile[0]); i++) {
        n = tu_hex(env_hostile[i], buf, sizeof(buf));
        int rc = envelope_open(buf, n, NOW, &e, &back);
        assert_true(rc == PULL_ERR_TRUNCATED || rc == PULL_ERR_FIELD);
        rc = record_decode(buf, n, &back);
        assert_true(rc == PULL_ERR_TRUNCATED || rc == PULL_ERR_FIELD);
    }
    n = tu_hex("dd ff ff ff ff", buf, sizeof(buf));
    assert_int_equal(envelope_parse(buf, n, &e), PULL_ERR_TRUNCATED);
    assert_int_equal(record_decode(buf, n, &back), PULL_ERR_TRUNCATED);
    n = tu_hex("df 0f ff ff ff", buf, sizeof(buf));
    assert_int_equal(envelope_parse(buf, n, &e), PULL_ERR_FIELD);
    assert_int_equal(record_decode(buf, n, &back), PULL_ERR_FIELD);
    /* inside a record */
    o = ov();
    o.tags_hex = "dd ff ff ff ff";
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_TRUNCATED);
    o.tags_hex = "dc ff ff";
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_TRUNCATED);
    o.tags_hex = "91 db ff ff ff ff";
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_TRUNCATED);
    o.tags_hex = "df 0f ff ff ff";
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_FIELD);
    o = ov();
    o.seq_hex = "dd ff ff ff ff";
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_FIELD);
}

static void
test_utf8_and_controls(void **state)
{
    struct over o;
    struct record r;
    (void)state;

    const struct str bad_utf8[] = {
        S("\xc0\xaf"),         /* overlong '/' */
        S("\xc1\xbf"),         /* overlong */
        S("\xe0\x80\xaf"),     /* overlong, 3 bytes */
        S("\xf0\x80\x80\xaf"), /* overlong, 4 bytes */
        S("\xed\xa0\x80"),     /* surrogate U+D800 */
        S("\xf4\x90\x80\x80"), /* above U+10FFFF */
        S("\x80"),             /* lone continuation */
        S("ok\xe2\x82"),       /* cut short */
        S("\xff"),
        S("\xfe\xfe"),
    };
    for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
        o = ov();
        o.title = bad_utf8[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_UTF8);
        o = ov();
        o.body = bad_utf8[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_UTF8);
        o = ov();
        o.terms = bad_utf8[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_UTF8);
        o = ov();
        o.set_tags = true, o.ntags = 1, o.tags[0] = bad_utf8[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_UTF8);
    }
    o = ov();
    o.title = S("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\xb2 \xef\xbf\xbd");
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);

    /* control characters: none in titles, only \n and \t in body and terms */
    const struct str controls[] = {S("a\x00"
                                     "b"),
                                   S("a\rb"),
                                   S("\x1b[31m"),
                                   S("a\x7f"),
                                   S("a\xc2\x85"),
                                   S("\xc2\x9f"),
                                   S("a\x01")};
    for (size_t i = 0; i < sizeof(controls) / sizeof(controls[0]); i++) {
        o = ov();
        o.title = controls[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_CONTROL);
        o = ov();
        o.body = controls[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_CONTROL);
        o = ov();
        o.terms = controls[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_CONTROL);
        o = ov();
        o.location = controls[i];
        assert_int_not_equal(try_over(RECORD_OFFER, &o), 0);
        o = ov();
        o.set_tags = true, o.ntags = 1, o.tags[0] = controls[i];
        int rc = try_over(RECORD_OFFER, &o);
        assert_true(rc == PULL_ERR_TAG || rc == PULL_ERR_CONTROL);
    }
    o = ov();
    o.title = S("line\nbreak");
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_CONTROL);
    o.title = S("tab\there");
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_CONTROL);
    o = ov();
    o.body = S("line\nbreak\tand tab\n");
    o.terms = S("one\ntwo\tthree");
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);
    o.body = S("\xc2\xa0nbsp is fine in a body");
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);

    /* the same rules on the encoding side */
    mk(&r, RECORD_OFFER);
    strcpy(r.title, "a\rb");
    assert_int_equal(record_check_fields(&r), PULL_ERR_CONTROL);
    strcpy(r.title, "\xc0\xaf");
    assert_int_equal(record_check_fields(&r), PULL_ERR_UTF8);
    mk(&r, RECORD_OFFER);
    strcpy(r.body, "ok\x1b");
    assert_int_equal(record_check_fields(&r), PULL_ERR_CONTROL);
}

/* record_decode's verdict on base+o's bytes alone (a record as it may lie in a store). */
static int
decode_over(uint8_t kind, const struct over *o)
{
    struct record b, rec;
    struct pull_wb w;
    int rc;

    mk(&b, kind);
    wb_init(&w, 0);
    raw_encode(&b, o, &w);
    rc = record_decode(w.p, w.len, &rec);
    wb_release(&w);
    return rc;
}

/* Text rule 2: hidden characters (bidi controls, zero-width and other invisible ones) are
 * refused in title, body, terms and tags when a record is made or taken in, with
 * INVISIBLE; a record stored before the rule still decodes (its readers escape them). */
static void
test_hidden_characters(void **state)
{
    static const struct {
        const char *what, *utf8;
    } hidden[] = {
        {"RLO", "\xe2\x80\xae"},
        {"LRO", "\xe2\x80\xad"},
        {"LRE", "\xe2\x80\xaa"},
        {"PDF", "\xe2\x80\xac"},
        {"LRI", "\xe2\x81\xa6"},
        {"PDI", "\xe2\x81\xa9"},
        {"LRM", "\xe2\x80\x8e"},
        {"RLM", "\xe2\x80\x8f"},
        {"ALM", "\xd8\x9c"},
        {"ZWSP", "\xe2\x80\x8b"},
        {"ZWNJ", "\xe2\x80\x8c"},
        {"ZWJ", "\xe2\x80\x8d"},
        {"WJ", "\xe2\x81\xa0"},
        {"invisible plus", "\xe2\x81\xa4"},
        {"BOM", "\xef\xbb\xbf"},
        {"soft hyphen", "\xc2\xad"},
        {"CGJ", "\xcd\x8f"},
        {"line separator", "\xe2\x80\xa8"},
        {"paragraph separator", "\xe2\x80\xa9"},
        {"Hangul filler", "\xe3\x85\xa4"},
        {"halfwidth Hangul filler", "\xef\xbe\xa0"},
        {"Mongolian FVS1", "\xe1\xa0\x8b"},
        {"interlinear annotation", "\xef\xbf\xb9"},
        {"U+FFFF", "\xef\xbf\xbf"},
        {"tag letter A", "\xf3\xa0\x81\x81"},
        {"shorthand format", "\xf0\x9b\xb2\xa0"},
        {"musical format", "\xf0\x9d\x85\xb3"},
    };
    char buf[64];
    struct record r;
    struct over o;
    (void)state;

    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++) {
        const char *h = hidden[i].utf8;
        struct str t;
        int rc;

        snprintf(buf, sizeof(buf), "free bike%sekib eerf", h);
        t = (struct str){buf, strlen(buf), true};
        o = ov(), o.title = t;
        if ((rc = try_over(RECORD_OFFER, &o)) != PULL_ERR_INVISIBLE)
            fail_msg("%s in a title: %s", hidden[i].what, pull_errname(rc));
        assert_int_equal(decode_over(RECORD_OFFER, &o), 0); /* stored before the rule */
        o = ov(), o.body = t;
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_INVISIBLE);
        assert_int_equal(decode_over(RECORD_OFFER, &o), 0);
        o = ov(), o.terms = t;
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_INVISIBLE);
        snprintf(buf, sizeof(buf), "bike%s", h);
        o = ov(), o.set_tags = true, o.ntags = 1, o.tags[0] = (struct str){buf, strlen(buf), true};
        rc = try_over(RECORD_OFFER, &o);
        if (rc != PULL_ERR_INVISIBLE && rc != PULL_ERR_TAG) /* TAG: rule 1 refused it already */
            fail_msg("%s in a tag: %s", hidden[i].what, pull_errname(rc));
        /* the making side */
        mk(&r, RECORD_OFFER);
        snprintf(r.title, sizeof(r.title), "a%sb", h);
        assert_int_equal(record_check_fields(&r), PULL_ERR_INVISIBLE);
        mk(&r, RECORD_OFFER);
        snprintf(r.body, sizeof(r.body), "a\n%s", h);
        assert_int_equal(record_check_fields(&r), PULL_ERR_INVISIBLE);
    }
    /* every position around the 8-byte ASCII fast path */
    for (size_t len = 1; len <= 40; len++) {
        for (size_t pos = 0; pos + 3 <= len; pos++) {
            mk(&r, RECORD_OFFER);
            memset(r.title, 'x', len);
            r.title[len] = '\0';
            memcpy(r.title + pos, "\xe2\x80\x8b", 3);
            assert_int_equal(record_check_fields(&r), PULL_ERR_INVISIBLE);
        }
    }
    /* what stays: accents, emoji with their presentation selector, non-breaking spaces,
     * scripts that are not Latin */
    o = ov(), o.title = S("caf\xc3\xa9 \xe2\x9d\xa4\xef\xb8\x8f \xf0\x9f\x9a\xb2 a\xc2\xa0"
                          "b c\xe2\x80\xaf"
                          "d");
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);
    o = ov(),
    o.body = S("\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d "
               "\xe4\xbd\xa0\xe5\xa5\xbd");
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);

    /* look-alike tags: Latin mixed with Cyrillic or Greek, combining accents, fullwidth and
     * mathematical letters; one script alone is fine */
    static const struct str lookalike[] = {
        S("b\xd1\x96ke"),                                      /* Ukrainian i */
        S("p\xd0\xb0ypal"),                                    /* Cyrillic a */
        S("\xce\xbfpen"),                                      /* Greek omicron */
        S("cafe\xcc\x81"),                                     /* e + combining acute */
        S("\xef\xbd\x82\xef\xbd\x89\xef\xbd\x8b\xef\xbd\x85"), /* fullwidth bike */
        S("\xf0\x9d\x90\x9b\xf0\x9d\x90\xa2ke"),               /* mathematical bold b, i */
    };
    for (size_t i = 0; i < sizeof(lookalike) / sizeof(lookalike[0]); i++) {
        o = ov(), o.set_tags = true, o.ntags = 1, o.tags[0] = lookalike[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_TAG);
        assert_int_equal(decode_over(RECORD_OFFER, &o), 0);
    }
    o = ov(), o.set_tags = true, o.ntags = 4, o.tags[0] = S("\xd0\xba\xd0\xb8\xd1\x97\xd0\xb2"),
    o.tags[1] = S("caf\xc3\xa9"), o.tags[2] = S("\xce\xb1\xce\xb8\xce\xae\xce\xbd\xce\xb1"),
    o.tags[3] = S("bike-42");
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);
}

/* The control check looks at 8 bytes at a time: a control character at any position, and a
 * C1 character split across two words, must still be found. */
static void
test_controls_every_position(void **state)
{
    static const uint8_t refused[] = {0x00, 0x01, 0x09, 0x0a, 0x0d, 0x1b, 0x1f, 0x7f};
    struct record r;
    struct pull_wb w;
    struct record back;
    (void)state;

    wb_init(&w, 0);
    for (size_t len = 1; len <= 40; len++) {
        for (size_t pos = 0; pos < len; pos++) {
            for (size_t k = 0; k < sizeof(refused); k++) {
                if (refused[k] == 0)
                    continue; /* a NUL ends the C string: checked through decode below */
                mk(&r, RECORD_OFFER);
                memset(r.title, 'x', len);
                r.title[len] = '\0';
                r.title[pos] = (char)refused[k];
                assert_int_equal(record_check_fields(&r), PULL_ERR_CONTROL);
                /* body allows \n and \t only */
                mk(&r, RECORD_OFFER);
                memset(r.body, 'y', len);
                r.body[len] = '\0';
                r.body[pos] = (char)refused[k];
                assert_int_equal(record_check_fields(&r),
                                 refused[k] == '\n' || refused[k] == '\t' ? 0 : PULL_ERR_CONTROL);
            }
            if (pos + 1 < len) {
                mk(&r, RECORD_OFFER);
                memset(r.title, 'x', len);
                r.title[len] = '\0';
                r.title[pos] = (char)0xc2;
                r.title[pos + 1] = (char)0x85; /* NEL, a C1 control */
                assert_int_equal(record_check_fields(&r), PULL_ERR_CONTROL);
                r.title[pos + 1] = (char)0xa9; /* the copyright sign is fine */
                assert_int_equal(record_check_fields(&r), 0);
                /* the decoder agrees on bytes */
                wb_reset(&w);
                assert_int_equal(record_encode(&r, &w), 0);
                assert_int_equal(record_decode(w.p, w.len, &back), 0);
                uint8_t *t = memmem(w.p, w.len, r.title, len);
                assert_non_null(t);
                t[pos + 1] = 0x85;
                assert_int_equal(record_decode(w.p, w.len, &back), PULL_ERR_CONTROL);
                t[pos + 1] = 0xa9;
                t[pos] = 0x00;
                t[pos + 1] = 'x';
                assert_int_equal(record_decode(w.p, w.len, &back), PULL_ERR_CONTROL);
            }
        }
    }
    wb_release(&w);
}

static void
test_tags(void **state)
{
    struct over o;
    struct record r;
    (void)state;

    const struct str good[] = {S("c++"),         S("node.js"),       S("a_b-c+d.e"),
                               S("0"),           S("\xc3\xbc-bahn"), S("\xe6\x97\xa5\xe6\x9c\xac"),
                               S("\xc3\x84rger")};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        o = ov();
        o.set_tags = true, o.ntags = 1, o.tags[0] = good[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), 0);
    }
    const struct str bad[] = {
        S("Rust"),         S("rusT"),          S("rust go"),    S("a/b"),
        S("a,b"),          S("#tag"),          S("a:b"),        S("\xc2\xa0"),
        S("a\xc2\xa0"),    S("a\xe2\x80\x8b"), /* zero-width space */
        S("\xe2\x80\xae"),                     /* right-to-left override */
        S("\xef\xbb\xbf"), S("a\xe3\x80\x80"), S("x\xc3\x97y"), S("\xc2\xab"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = ov();
        o.set_tags = true, o.ntags = 1, o.tags[0] = bad[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_TAG);
    }
    o = ov();
    o.set_tags = true, o.ntags = 3;
    o.tags[0] = S("a"), o.tags[1] = S("b"), o.tags[2] = S("a");
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_TAG_DUP);
    o.tags[2] = S("c");
    assert_int_equal(try_over(RECORD_OFFER, &o), 0);

    mk(&r, RECORD_OFFER);
    strcpy(r.tags[2], "bikes");
    assert_int_equal(record_check_fields(&r), PULL_ERR_TAG_DUP);
    strcpy(r.tags[2], "Bikes");
    assert_int_equal(record_check_fields(&r), PULL_ERR_TAG);
    r.tags[2][0] = '\0';
    assert_int_equal(record_check_fields(&r), PULL_ERR_TAG);
}

static void
test_location(void **state)
{
    struct over o;
    (void)state;

    const struct str good[] = {
        S(""), S("u"), S("u09tvw"), S("0123456789bc"), S("defghjkmnpqr"), S("stuvwxyz")};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        o = ov();
        o.location = good[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), 0);
    }
    const struct str bad[] = {S("a"),    S("i"),    S("l"),    S("o"),
                              S("U09T"), S("u09 "), S("u09-"), S("\xc3\xbc")};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o = ov();
        o.location = bad[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_LOCATION);
    }
}

static void
test_withdrawn_and_kinds(void **state)
{
    struct over o;
    struct record r;
    (void)state;

    o = ov();
    o.title = S("still here");
    assert_int_equal(try_over(RECORD_WITHDRAWN, &o), PULL_ERR_TITLE);
    o = ov();
    o.body = S("x");
    assert_int_equal(try_over(RECORD_WITHDRAWN, &o), PULL_ERR_BODY);
    mk(&r, RECORD_WITHDRAWN);
    strcpy(r.title, "x");
    assert_int_equal(record_check_fields(&r), PULL_ERR_TITLE);
    mk(&r, RECORD_WITHDRAWN);
    strcpy(r.body, "x");
    assert_int_equal(record_check_fields(&r), PULL_ERR_BODY);
    /* every kind but withdrawn needs a title */
    for (uint8_t k = RECORD_OFFER; k <= RECORD_ATTESTATION; k++) {
        if (k == RECORD_WITHDRAWN)
            continue;
        o = ov();
        o.title = S("");
        assert_int_equal(try_over(k, &o), PULL_ERR_TITLE);
    }
    /* kinds out of range */
    const int64_t kinds[] = {0, 6, 7, 127, 128, 65536};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        o = ov();
        o.kind = kinds[i];
        assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_KIND);
    }
    mk(&r, RECORD_OFFER);
    r.kind = 0;
    assert_int_equal(record_check_fields(&r), PULL_ERR_KIND);
    r.kind = RECORD_OFFER;
    r.version = 2;
    assert_int_equal(record_check_fields(&r), PULL_ERR_VERSION);
    /* bins of the wrong size */
    o = ov();
    o.slot_len = 15;
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_FIELD);
    o.slot_len = 17;
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_FIELD);
    o = ov();
    o.author_len = 33;
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_FIELD);
    o = ov();
    o.link_len = 31;
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_FIELD);
    o.link_len = 33;
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_FIELD);
    o = ov();
    o.cosig_len = 63;
    assert_int_equal(try_over(RECORD_ATTESTATION, &o), PULL_ERR_FIELD);
    /* link, peer or cosig on a record that is not an attestation */
    o = ov();
    o.link_len = 32;
    assert_int_equal(try_over(RECORD_OFFER, &o), PULL_ERR_ATTEST);
    o = ov();
    o.peer_len = 32;
    assert_int_equal(try_over(RECORD_NEED, &o), PULL_ERR_ATTEST);
    o = ov();
    o.cosig_len = 64;
    assert_int_equal(try_over(RECORD_PROFILE, &o), PULL_ERR_ATTEST);
    mk(&r, RECORD_OFFER);
    r.has_link = true;
    assert_int_equal(record_check_fields(&r), PULL_ERR_ATTEST);
}

static void
test_attestation(void **state)
{
    struct record r, back;
    struct pull_wb w, env;
    struct over o;
    (void)state;

    wb_init(&w, 0);
    wb_init(&env, 0);
    mk(&r, RECORD_ATTESTATION);
    assert_true(r.has_cosig);
    assert_int_equal(try_rec(&r), 0);

    /* missing cosig, link or peer */
    o = ov();
    o.cosig_len = -1;
    assert_int_equal(try_over(RECORD_ATTESTATION, &o), PULL_ERR_ATTEST);
    o = ov();
    o.link_len = -1;
    assert_int_equal(try_over(RECORD_ATTESTATION, &o), PULL_ERR_ATTEST);
    o = ov();
    o.peer_len = -1;
    assert_int_equal(try_over(RECORD_ATTESTATION, &o), PULL_ERR_ATTEST);
    mk(&r, RECORD_ATTESTATION);
    r.has_cosig = false;
    assert_int_equal(record_check_fields(&r), PULL_ERR_ATTEST);
    assert_int_equal(record_sign(&r, &alice, &env, NULL), PULL_ERR_ATTEST);
    assert_int_equal(env.len, 0);

    /* forged cosigs: random, by the author, by a third party, over another domain, or
     * taken from another attestation */
    for (int forge = 0; forge < 5; forge++) {
        mk(&r, RECORD_ATTESTATION);
        switch (forge) {
        case 0:
            randombytes_buf(r.cosig, 64);
            break;
        case 1:
            memcpy(r.peer, carol.pk, 32); /* the cosig is bob's, the peer now carol */
            break;
        case 2: {
            struct record other;
            mk(&other, RECORD_ATTESTATION);
            other.link[0] ^= 1;
            assert_int_equal(record_cosign(NULL, &other, &bob), 0);
            memcpy(r.cosig, other.cosig, 64);
            break;
        }
        case 3: {
            struct pull_wb u;
            wb_init(&u, 0);
            r.has_cosig = false;
            /* bob's signature over the right bytes, but with the record domain */
            struct over oo = ov();
            oo.cosig_len = -1;
            raw_encode(&r, &oo, &u);
            assert_int_equal(ident_sign(&bob, RECORD_DOMAIN, u.p, u.len, r.cosig), 0);
            r.has_cosig = true;
            wb_release(&u);
            break;
        }
        case 4:
            r.seq++; /* changed after cosigning */
            break;
        }
        assert_int_equal(record_sign(&r, &alice, &env, NULL), PULL_ERR_BAD_SIG);
        assert_int_equal(env.len, 0);
        /* the author signs the envelope anyway: the cosig still fails */
        wb_reset(&w);
        assert_int_equal(record_encode(&r, &w), 0);
        seal_bytes(w.p, w.len, &alice, RECORD_DOMAIN, &env);
        assert_int_equal(open_env(&env, NULL), PULL_ERR_BAD_SIG);
        wb_reset(&env);
    }

    /* a self-attestation */
    mk(&r, RECORD_ATTESTATION);
    memcpy(r.peer, alice.pk, 32);
    assert_int_equal(record_check_fields(&r), PULL_ERR_ATTEST);
    assert_int_equal(record_cosign(NULL, &r, &alice), PULL_ERR_ATTEST);
    assert_int_equal(try_rec_raw(&r), PULL_ERR_ATTEST);

    /* cosign by someone who is not the peer, or of something that is no attestation */
    mk(&r, RECORD_ATTESTATION);
    assert_int_equal(record_cosign(NULL, &r, &carol), PULL_ERR_INVAL);
    mk(&r, RECORD_OFFER);
    assert_int_equal(record_cosign(NULL, &r, &bob), PULL_ERR_INVAL);

    /* the cosig made by record_cosign verifies with the envelope's shortcut, for
     * records of every size class */
    for (size_t len = 0; len < 400; len += 37) {
        mk(&r, RECORD_ATTESTATION);
        strcpy(r.body, filled(len, 'q'));
        assert_int_equal(record_cosign(NULL, &r, &bob), 0);
        wb_reset(&env);
        assert_int_equal(record_sign(&r, &alice, &env, NULL), 0);
        assert_int_equal(open_env(&env, &back), 0);
        assert_memory_equal(back.cosig, r.cosig, 64);
    }
    wb_release(&w);
    wb_release(&env);
}

static void
test_sign_refusals(void **state)
{
    struct record r;
    struct pull_wb env;
    uint8_t id[32];
    (void)state;

    wb_init(&env, 0);
    mk(&r, RECORD_OFFER);
    memset(id, 0xee, sizeof(id));
    assert_int_equal(record_sign(&r, &bob, &env, id), PULL_ERR_INVAL); /* not the author */
    assert_int_equal(env.len, 0);
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(id[i], 0);
    strcpy(r.title, "Bad\x01");
    assert_int_equal(record_sign(&r, &alice, &env, id), PULL_ERR_CONTROL);
    assert_int_equal(env.len, 0);
    /* appending to a writer that already holds data keeps that data */
    wb_put(&env, "xyz", 3);
    mk(&r, RECORD_OFFER);
    assert_int_equal(record_sign(&r, &alice, &env, id), 0);
    {
        struct envelope e;
        struct record back;
        assert_memory_equal(env.p, "xyz", 3);
        assert_int_equal(envelope_open(env.p + 3, env.len - 3, NOW, &e, &back), 0);
        assert_memory_equal(e.id, id, 32);
    }
    r.title[0] = '\0';
    size_t before = env.len;
    assert_int_equal(record_sign(&r, &alice, &env, NULL), PULL_ERR_TITLE);
    assert_int_equal(env.len, before);
    /* a writer too small for the envelope */
    struct pull_wb small;
    wb_init(&small, 100);
    mk(&r, RECORD_OFFER);
    assert_int_equal(record_sign(&r, &alice, &small, id), PULL_ERR_TOO_BIG);
    wb_release(&small);
    wb_release(&env);
}

static void
test_replaces(void **state)
{
    struct record r;
    struct pull_wb env;
    uint8_t id1[32], id2[32], lo[32], hi[32];
    (void)state;

    /* two versions with the same seq but different content have different ids */
    wb_init(&env, 0);
    mk(&r, RECORD_OFFER);
    r.seq = 5;
    assert_int_equal(record_sign(&r, &alice, &env, id1), 0);
    strcpy(r.title, "another title");
    assert_int_equal(record_sign(&r, &alice, &env, id2), 0);
    assert_memory_not_equal(id1, id2, 32);
    if (memcmp(id1, id2, 32) < 0) {
        memcpy(lo, id1, 32), memcpy(hi, id2, 32);
    } else {
        memcpy(lo, id2, 32), memcpy(hi, id1, 32);
    }
    /* the tie: the lower id wins, in either order of arrival */
    assert_true(record_replaces(5, lo, 5, hi));
    assert_false(record_replaces(5, hi, 5, lo));
    assert_false(record_replaces(5, lo, 5, lo)); /* the same record doesn't replace itself */
    /* a higher seq wins whatever the ids */
    assert_true(record_replaces(6, hi, 5, lo));
    assert_false(record_replaces(4, lo, 5, hi));
    assert_true(record_replaces(UINT64_MAX, hi, UINT64_MAX - 1, lo));
    assert_false(record_replaces(0, lo, UINT64_MAX, hi));
    /* ids compare as bytes from the first */
    memset(lo, 0, 32), memset(hi, 0, 32);
    hi[31] = 1;
    assert_true(record_replaces(1, lo, 1, hi));
    lo[0] = 1;
    assert_false(record_replaces(1, lo, 1, hi));
    wb_release(&env);
}

/* Random mutations of valid records: whatever decode accepts must re-encode to the same
 * bytes (the property the fuzzer checks, run here on every build). */
static void
test_mutations(void **state)
{
    struct pull_wb w, again;
    uint8_t buf[RECORD_MAX + 8];
    uint32_t accepted = 0;
    (void)state;

    wb_init(&w, 0);
    wb_init(&again, 0);
    for (uint8_t kind = RECORD_OFFER; kind <= RECORD_ATTESTATION; kind++) {
        struct record r, back;
        mk(&r, kind);
        wb_reset(&w);
        assert_int_equal(record_encode(&r, &w), 0);
        for (int round = 0; round < 4000; round++) {
            size_t n = w.len;
            memcpy(buf, w.p, n);
            int edits = 1 + (int)randombytes_uniform(3);
            for (int k = 0; k < edits; k++) {
                size_t at = randombytes_uniform((uint32_t)n);
                switch (randombytes_uniform(4)) {
                case 0:
                    buf[at] ^= (uint8_t)(1u << randombytes_uniform(8));
                    break;
                case 1:
                    buf[at] = (uint8_t)randombytes_uniform(256);
                    break;
                case 2: /* delete a byte */
                    memmove(buf + at, buf + at + 1, n - at - 1);
                    n--;
                    break;
                case 3: /* insert a byte */
                    if (n < sizeof(buf)) {
                        memmove(buf + at + 1, buf + at, n - at);
                        buf[at] = (uint8_t)randombytes_uniform(256);
                        n++;
                    }
                    break;
                }
            }
            if (record_decode(buf, n, &back) != 0)
                continue;
            /* text rule 2 is for admission: decode lets it pass (fuzz_record.c) */
            if (record_check_fields(&back) == PULL_ERR_INVISIBLE ||
                record_check_fields(&back) == PULL_ERR_TAG)
                continue;
            accepted++;
            wb_reset(&again);
            assert_int_equal(record_encode(&back, &again), 0);
            assert_int_equal(again.len, n);
            assert_memory_equal(again.p, buf, n);
        }
    }
    assert_true(accepted > 0); /* e.g. flips inside the slot or author */
    wb_release(&w);
    wb_release(&again);
}

static int
setup(void **state)
{
    uint8_t seed[32];
    (void)state;

    if (sodium_init() < 0)
        return -1;
    memset(seed, 'a', 32);
    if (ident_from_seed(&alice, seed) != 0)
        return -1;
    memset(seed, 'b', 32);
    if (ident_from_seed(&bob, seed) != 0)
        return -1;
    memset(seed, 'c', 32);
    return ident_from_seed(&carol, seed);
}

static int
teardown(void **state)
{
    (void)state;
    ident_wipe(&alice);
    ident_wipe(&bob);
    ident_wipe(&carol);
    return 0;
}

/* record_admit: staleness against the prior version, then the per-author quota once the
 * prior version is gone (live and tombstones counted apart). */
static void
test_admit(void **state)
{
    uint8_t lo[32], hi[32];
    struct record_prior p;

    (void)state;
    memset(lo, 1, 32);
    memset(hi, 2, 32);
    memset(&p, 0, sizeof(p));
    /* a new slot: only the quota */
    assert_int_equal(record_admit(RECORD_OFFER, 1, lo, &p, 0, 0, 2), 0);
    assert_int_equal(record_admit(RECORD_OFFER, 1, lo, &p, 2, 0, 2), PULL_ERR_QUOTA);
    assert_int_equal(record_admit(RECORD_OFFER, 1, lo, NULL, 1, 5, 2), 0);
    assert_int_equal(record_admit(RECORD_WITHDRAWN, 1, lo, &p, 0, 2, 2), PULL_ERR_QUOTA);
    /* an existing slot: stale unless it replaces */
    p.exists = true;
    p.seq = 5;
    memcpy(p.id, lo, 32);
    p.counted = true;
    p.live = true;
    assert_int_equal(record_admit(RECORD_OFFER, 5, hi, &p, 2, 0, 2), PULL_ERR_STALE);
    assert_int_equal(record_admit(RECORD_OFFER, 4, lo, &p, 0, 0, 2), PULL_ERR_STALE);
    /* a new version of a live record at the quota: the old one leaves, so it fits */
    assert_int_equal(record_admit(RECORD_OFFER, 6, hi, &p, 2, 0, 2), 0);
    /* a withdrawal of it counts against the tombstones */
    assert_int_equal(record_admit(RECORD_WITHDRAWN, 6, hi, &p, 2, 2, 2), PULL_ERR_QUOTA);
    assert_int_equal(record_admit(RECORD_WITHDRAWN, 6, hi, &p, 2, 1, 2), 0);
    /* a prior version of unknown kind is not counted */
    p.counted = false;
    assert_int_equal(record_admit(RECORD_OFFER, 6, hi, &p, 2, 0, 2), PULL_ERR_QUOTA);
}

/* Tags of a record being made are folded like search words; duplicates after folding go;
 * a record with tags that are not folded still decodes (records signed before). */
static void
test_fold_tags(void **state)
{
    struct record r, d;
    struct pull_wb w;
    struct envelope e;
    (void)state;

    mk(&r, RECORD_OFFER);
    r.ntags = 5;
    strcpy(r.tags[0], "caf\xc3\x89");        /* cafÉ */
    strcpy(r.tags[1], "stra\xc3\x9f" "e");     /* straße */
    strcpy(r.tags[2], "cafe");
    strcpy(r.tags[3], "lang-de");
    strcpy(r.tags[4], "\xef\xac\x81ne");      /* ﬁne */
    wb_init(&w, 0);
    assert_int_equal(record_sign(&r, &alice, &w, NULL), 0); /* valid as it is */
    assert_int_equal(envelope_open(w.p, w.len, NOW, &e, &d), 0);
    assert_string_equal(d.tags[0], "caf\xc3\x89");
    wb_release(&w);
    assert_int_equal(record_fold_tags(&r), 0);
    assert_int_equal(r.ntags, 4);
    assert_string_equal(r.tags[0], "cafe");
    assert_string_equal(r.tags[1], "strasse");
    assert_string_equal(r.tags[2], "lang-de");
    assert_string_equal(r.tags[3], "fine");
    assert_int_equal(record_check_fields(&r), 0);
    /* A tag that grows past 32 bytes once folded is refused, the tags left as they were. */
    r.ntags = 2;
    /* 11 x U+0149 (2 bytes) folds into U+02BC n (3 bytes): 22 bytes become 33 */
    strcpy(r.tags[1], "\xc5\x89\xc5\x89\xc5\x89\xc5\x89\xc5\x89\xc5\x89\xc5\x89\xc5\x89"
                      "\xc5\x89\xc5\x89\xc5\x89");
    assert_int_equal(record_check_fields(&r), 0);
    assert_int_equal(record_fold_tags(&r), PULL_ERR_TAG);
    assert_string_equal(r.tags[0], "cafe");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_admit),
        cmocka_unit_test(test_round_trip_every_kind),
        cmocka_unit_test(test_round_trip_at_limits),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_time_limits),
        cmocka_unit_test(test_every_error_code),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_wrong_domain),
        cmocka_unit_test(test_noncanonical),
        cmocka_unit_test(test_trailing_and_shape),
        cmocka_unit_test(test_huge_headers),
        cmocka_unit_test(test_utf8_and_controls),
        cmocka_unit_test(test_controls_every_position),
        cmocka_unit_test(test_hidden_characters),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_location),
        cmocka_unit_test(test_withdrawn_and_kinds),
        cmocka_unit_test(test_attestation),
        cmocka_unit_test(test_sign_refusals),
        cmocka_unit_test(test_replaces),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_fold_tags),
    };

    return cmocka_run_group_tests_name("record", tests, setup, teardown);
}
