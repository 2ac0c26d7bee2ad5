/* Tests of sealed mail (proto/mail.h): seal/open, compatibility with crypto_box_seal,
 * wrong recipients, every byte tampered or cut, expiry, hostile encodings, the two wire
 * messages, and the relay policy (quotas, dedupe, sweep). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/env.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/mp.h"
#include "proto/mail.h"
#include "proto/msg.h"

#define NOW 1800000000ull
#define DAY 86400ull

static struct ident alice, bob, carol;
static struct env_seeded env;

static int
setup(void **state)
{
    uint8_t seed[32];

    (void)state;
    assert_true(sodium_init() >= 0);
    memset(seed, 0x11, 32);
    assert_int_equal(ident_from_seed(&alice, seed), 0);
    memset(seed, 0x22, 32);
    assert_int_equal(ident_from_seed(&bob, seed), 0);
    memset(seed, 0x33, 32);
    assert_int_equal(ident_from_seed(&carol, seed), 0);
    env_seeded_init(&env, 42, 0, NOW);
    return 0;
}

static const uint8_t hello[] = "a signed dyad message would be here";

/* alice -> bob, expiring in 3 days. */
static void
seal_hello(struct pull_wb *w, uint8_t id[32])
{
    wb_reset(w);
    assert_int_equal(
        mail_seal(&env.env, &alice, bob.pk, hello, sizeof(hello), NOW + 3 * DAY, w, id), 0);
}

/* An item with chosen fields, signed by signer over its bytes before the sig. */
static void
forge_item(struct pull_wb *w, unsigned version, const uint8_t rcpt[32], const uint8_t snd[32],
           uint64_t expires, const uint8_t *sealed, size_t slen, const struct ident *signer,
           size_t siglen, bool trailing)
{
    msgpack_packer pk;
    uint8_t sig[64];

    wb_reset(w);
    mp_packer_init(&pk, w);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint64(&pk, version);
    mp_pack_bin(&pk, rcpt, 32);
    mp_pack_bin(&pk, snd, 32);
    msgpack_pack_uint64(&pk, expires);
    mp_pack_bin(&pk, sealed, slen);
    assert_int_equal(ident_sign(signer, MAIL_DOMAIN, w->p, w->len, sig), 0);
    mp_pack_bin(&pk, sig, siglen);
    if (trailing)
        msgpack_pack_nil(&pk);
    assert_int_equal(wb_error(w), 0);
}

static void
test_seal_open(void **state)
{
    struct pull_wb w, w2;
    struct mail_item m;
    uint8_t id[32], id2[32], out[MAIL_PLAIN_MAX];
    uint8_t xpk[32], xsk[32];
    size_t n;

    (void)state;
    wb_init(&w, 0);
    wb_init(&w2, 0);
    seal_hello(&w, id);
    assert_true(w.len <= MAIL_ITEM_MAX);
    assert_int_equal(mail_parse(w.p, w.len, &m), 0);
    assert_memory_equal(m.id, id, 32);
    assert_memory_equal(m.recipient, bob.pk, 32);
    assert_memory_equal(m.sender, alice.pk, 32);
    assert_int_equal(m.expires, NOW + 3 * DAY);
    assert_int_equal(m.sealed_len, sizeof(hello) + MAIL_SEAL_OVERHEAD);
    assert_int_equal(mail_verify(&m, NOW), 0);
    /* the content is not in the clear */
    assert_null(memmem(w.p, w.len, hello, 8));
    assert_int_equal(mail_open(&m, &bob, out, sizeof(out), &n), 0);
    assert_int_equal(n, sizeof(hello));
    assert_memory_equal(out, hello, n);
    /* it is libsodium's sealed-box format: crypto_box_seal_open with converted keys */
    assert_int_equal(crypto_sign_ed25519_pk_to_curve25519(xpk, bob.pk), 0);
    assert_int_equal(crypto_sign_ed25519_sk_to_curve25519(xsk, bob.sk), 0);
    assert_int_equal(crypto_box_seal_open(out, m.sealed, m.sealed_len, xpk, xsk), 0);
    assert_memory_equal(out, hello, sizeof(hello));
    /* ...and a box sealed by libsodium itself opens through mail_open */
    {
        uint8_t sealed[sizeof(hello) + MAIL_SEAL_OVERHEAD];
        assert_int_equal(crypto_box_seal(sealed, hello, sizeof(hello), xpk), 0);
        forge_item(&w2, 1, bob.pk, alice.pk, NOW + DAY, sealed, sizeof(sealed), &alice, 64, false);
        assert_int_equal(mail_parse(w2.p, w2.len, &m), 0);
        assert_int_equal(mail_verify(&m, NOW), 0);
        assert_int_equal(mail_open(&m, &bob, out, sizeof(out), &n), 0);
        assert_memory_equal(out, hello, sizeof(hello));
    }
    sodium_memzero(xsk, sizeof(xsk));
    /* output too small */
    assert_int_equal(mail_parse(w.p, w.len, &m), 0);
    assert_int_equal(mail_open(&m, &bob, out, sizeof(hello) - 1, &n), PULL_ERR_TOO_BIG);
    /* the env decides the ephemeral key: same seed, same bytes; next draw, other bytes */
    {
        struct env_seeded e1, e2;
        env_seeded_init(&e1, 7, 0, NOW);
        env_seeded_init(&e2, 7, 0, NOW);
        wb_reset(&w);
        wb_reset(&w2);
        assert_int_equal(mail_seal(&e1.env, &alice, bob.pk, hello, 5, NOW + DAY, &w, id), 0);
        assert_int_equal(mail_seal(&e2.env, &alice, bob.pk, hello, 5, NOW + DAY, &w2, id2), 0);
        assert_int_equal(w.len, w2.len);
        assert_memory_equal(w.p, w2.p, w.len);
        assert_memory_equal(id, id2, 32);
        wb_reset(&w2);
        assert_int_equal(mail_seal(&e1.env, &alice, bob.pk, hello, 5, NOW + DAY, &w2, id2), 0);
        assert_memory_not_equal(id, id2, 32);
    }
    wb_release(&w);
    wb_release(&w2);
}

static void
test_wrong_recipient(void **state)
{
    struct pull_wb w, w2;
    struct mail_item m;
    uint8_t out[256];
    size_t n = 99;

    (void)state;
    wb_init(&w, 0);
    wb_init(&w2, 0);
    seal_hello(&w, NULL);
    assert_int_equal(mail_parse(w.p, w.len, &m), 0);
    /* carol is not the recipient */
    assert_int_equal(mail_open(&m, &carol, out, sizeof(out), &n), PULL_ERR_PERM);
    assert_int_equal(n, 0);
    /* the sender can't open its own mail either */
    assert_int_equal(mail_open(&m, &alice, out, sizeof(out), &n), PULL_ERR_PERM);
    /* bob's sealed bytes readdressed to carol (and properly signed): carol can't open */
    forge_item(&w2, 1, carol.pk, alice.pk, NOW + DAY, m.sealed, m.sealed_len, &alice, 64, false);
    assert_int_equal(mail_parse(w2.p, w2.len, &m), 0);
    assert_int_equal(mail_verify(&m, NOW), 0);
    assert_int_equal(mail_open(&m, &carol, out, sizeof(out), &n), PULL_ERR_CRYPTO);
    wb_release(&w);
    wb_release(&w2);
}

/* Every byte flipped: never both parsed and verified; and bob never opens altered
 * sealed bytes. */
static void
test_tampered(void **state)
{
    struct pull_wb w;
    struct mail_item m;
    uint8_t buf[MAIL_ITEM_MAX], out[256];
    size_t n, s0, s1, parsed = 0;

    (void)state;
    wb_init(&w, 0);
    seal_hello(&w, NULL);
    assert_int_equal(mail_parse(w.p, w.len, &m), 0);
    s0 = (size_t)(m.sealed - w.p);
    s1 = s0 + m.sealed_len;
    for (size_t i = 0; i < w.len; i++) {
        for (int mask = 1; mask < 256; mask <<= 1) {
            memcpy(buf, w.p, w.len);
            buf[i] ^= (uint8_t)mask;
            if (mail_parse(buf, w.len, &m) != 0)
                continue;
            parsed++;
            /* no flip survives the sender's signature */
            assert_int_not_equal(mail_verify(&m, NOW), 0);
            /* and none inside the sealed bytes survives the box's authenticator */
            if (i >= s0 && i < s1)
                assert_int_not_equal(mail_open(&m, &bob, out, sizeof(out), &n), 0);
        }
    }
    assert_true(parsed > 8 * (s1 - s0)); /* the sealed flips all parsed and were checked */
    {
        /* specifically: a flipped sealed byte doesn't open, a flipped sig byte is BAD_SIG */
        memcpy(buf, w.p, w.len);
        assert_int_equal(mail_parse(buf, w.len, &m), 0);
        buf[m.sealed - buf + 40] ^= 1;
        assert_int_equal(mail_verify(&m, NOW), PULL_ERR_BAD_SIG);
        assert_int_equal(mail_open(&m, &bob, out, sizeof(out), &n), PULL_ERR_CRYPTO);
        memcpy(buf, w.p, w.len);
        buf[w.len - 1] ^= 1;
        assert_int_equal(mail_parse(buf, w.len, &m), 0);
        assert_int_equal(mail_verify(&m, NOW), PULL_ERR_BAD_SIG);
    }
    /* truncated at every byte */
    for (size_t k = 0; k < w.len; k++) {
        uint8_t *cut = malloc(k + 1);
        memcpy(cut, w.p, k);
        assert_int_not_equal(mail_parse(cut, k, &m), 0);
        free(cut);
    }
    wb_release(&w);
}

static void
test_expiry_and_hostile(void **state)
{
    struct pull_wb w;
    struct mail_item m;
    uint8_t sealed[100], small_order[32] = {1};

    (void)state;
    wb_init(&w, 0);
    memset(sealed, 0x5a, sizeof(sealed));
#define ITEM(ver, r, s, exp, slen, signer, siglen, trail)                                          \
    forge_item(&w, ver, r, s, exp, sealed, slen, signer, siglen, trail)
    ITEM(1, bob.pk, alice.pk, NOW + DAY, sizeof(sealed), &alice, 64, false);
    assert_int_equal(mail_parse(w.p, w.len, &m), 0);
    assert_int_equal(mail_verify(&m, NOW), 0);
    assert_int_equal(mail_verify(&m, NOW + DAY), PULL_ERR_EXPIRED);
    assert_int_equal(mail_verify(&m, NOW + DAY - 1), 0);
    ITEM(1, bob.pk, alice.pk, NOW + MAIL_TTL_MAX + MAIL_SKEW_MAX, sizeof(sealed), &alice, 64,
         false);
    assert_int_equal(mail_parse(w.p, w.len, &m), 0);
    assert_int_equal(mail_verify(&m, NOW), 0);
    ITEM(1, bob.pk, alice.pk, NOW + MAIL_TTL_MAX + MAIL_SKEW_MAX + 1, sizeof(sealed), &alice, 64,
         false);
    assert_int_equal(mail_parse(w.p, w.len, &m), 0);
    assert_int_equal(mail_verify(&m, NOW), PULL_ERR_EXPIRY);
    /* signed by someone else than the sender */
    ITEM(1, bob.pk, alice.pk, NOW + DAY, sizeof(sealed), &carol, 64, false);
    assert_int_equal(mail_parse(w.p, w.len, &m), 0);
    assert_int_equal(mail_verify(&m, NOW), PULL_ERR_BAD_SIG);
    /* structure */
    ITEM(2, bob.pk, alice.pk, NOW + DAY, sizeof(sealed), &alice, 64, false);
    assert_int_equal(mail_parse(w.p, w.len, &m), PULL_ERR_VERSION);
    ITEM(1, alice.pk, alice.pk, NOW + DAY, sizeof(sealed), &alice, 64, false);
    assert_int_equal(mail_parse(w.p, w.len, &m), PULL_ERR_FIELD);
    ITEM(1, bob.pk, alice.pk, NOW + DAY, MAIL_SEAL_OVERHEAD, &alice, 64, false);
    assert_int_equal(mail_parse(w.p, w.len, &m), PULL_ERR_FIELD);
    ITEM(1, bob.pk, alice.pk, NOW + DAY, MAIL_SEAL_OVERHEAD + 1, &alice, 64, false);
    assert_int_equal(mail_parse(w.p, w.len, &m), 0);
    ITEM(1, bob.pk, alice.pk, NOW + DAY, sizeof(sealed), &alice, 63, false);
    assert_int_equal(mail_parse(w.p, w.len, &m), PULL_ERR_FIELD);
    ITEM(1, bob.pk, alice.pk, NOW + DAY, sizeof(sealed), &alice, 64, true);
    assert_int_not_equal(mail_parse(w.p, w.len, &m), 0);
    ITEM(1, bob.pk, alice.pk, (1ull << 40) + 1, sizeof(sealed), &alice, 64, false);
    assert_int_equal(mail_parse(w.p, w.len, &m), PULL_ERR_FIELD);
#undef ITEM
    {
        uint8_t *big = calloc(1, MAIL_ITEM_MAX + 1);
        assert_int_equal(mail_parse(big, MAIL_ITEM_MAX + 1, &m), PULL_ERR_TOO_BIG);
        free(big);
    }
    assert_int_equal(mail_verify(&(struct mail_item){0}, NOW), PULL_ERR_INVAL);

    /* sealing arguments */
    {
        uint8_t *plain = calloc(1, MAIL_PLAIN_MAX + 1);
        uint8_t out[16];
        size_t n;
        wb_reset(&w);
        assert_int_equal(
            mail_seal(&env.env, &alice, bob.pk, plain, MAIL_PLAIN_MAX, NOW + DAY, &w, NULL), 0);
        assert_true(w.len <= MAIL_ITEM_MAX);
        assert_int_equal(mail_parse(w.p, w.len, &m), 0);
        assert_int_equal(m.sealed_len, MAIL_SEALED_MAX);
        assert_int_equal(mail_open(&m, &bob, out, sizeof(out), &n), PULL_ERR_TOO_BIG);
        wb_reset(&w);
        assert_int_equal(
            mail_seal(&env.env, &alice, bob.pk, plain, MAIL_PLAIN_MAX + 1, NOW + DAY, &w, NULL),
            PULL_ERR_INVAL);
        assert_int_equal(mail_seal(&env.env, &alice, bob.pk, plain, 0, NOW + DAY, &w, NULL),
                         PULL_ERR_INVAL);
        assert_int_equal(mail_seal(&env.env, &alice, alice.pk, plain, 1, NOW + DAY, &w, NULL),
                         PULL_ERR_INVAL);
        assert_int_equal(mail_seal(&env.env, &alice, small_order, plain, 1, NOW + DAY, &w, NULL),
                         PULL_ERR_BAD_KEY);
        assert_int_equal(w.len, 0);
        free(plain);
    }
    wb_release(&w);
}

static void
test_wire(void **state)
{
    struct pull_wb a, b, c, msg;
    struct mail_ref refs[4], got[4];
    size_t count;
    uint8_t have[3][32], want[2][32], h2[4][32], w2[4][32];
    size_t nh, nw;
    uint32_t type;

    (void)state;
    wb_init(&a, 0);
    wb_init(&b, 0);
    wb_init(&c, 0);
    wb_init(&msg, 0);
    seal_hello(&a, have[0]);
    seal_hello(&b, have[1]);
    seal_hello(&c, have[2]);
    refs[0] = (struct mail_ref){a.p, a.len};
    refs[1] = (struct mail_ref){b.p, b.len};
    refs[2] = (struct mail_ref){c.p, c.len};
    assert_int_equal(mail_msg_encode(refs, 3, &msg), 0);
    assert_int_equal(msg_peek_type(msg.p, msg.len, &type), 0);
    assert_int_equal(type, MSG_MAIL);
    assert_int_equal(mail_msg_decode(msg.p, msg.len, got, 4, &count), 0);
    assert_int_equal(count, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(got[i].len, refs[i].len);
        assert_memory_equal(got[i].p, refs[i].p, refs[i].len);
    }
    assert_int_equal(mail_msg_decode(msg.p, msg.len, got, 2, &count), PULL_ERR_TOO_BIG);
    for (size_t k = 0; k < msg.len; k++) {
        uint8_t *cut = malloc(k + 1);
        memcpy(cut, msg.p, k);
        assert_int_not_equal(mail_msg_decode(cut, k, got, 4, &count), 0);
        free(cut);
    }
    /* empty list is fine; too much for one message is refused */
    wb_reset(&msg);
    assert_int_equal(mail_msg_encode(refs, 0, &msg), 0);
    assert_int_equal(mail_msg_decode(msg.p, msg.len, got, 4, &count), 0);
    assert_int_equal(count, 0);
    {
        struct mail_ref many[9];
        uint8_t *big = calloc(1, MAIL_ITEM_MAX);
        for (size_t i = 0; i < 9; i++)
            many[i] = (struct mail_ref){big, MAIL_ITEM_MAX};
        wb_reset(&msg);
        assert_int_equal(mail_msg_encode(many, 7, &msg), 0);
        assert_true(msg.len <= MSG_MAX);
        wb_reset(&msg);
        assert_int_equal(mail_msg_encode(many, 8, &msg), PULL_ERR_TOO_BIG);
        assert_int_equal(msg.len, 0);
        many[0].len = MAIL_ITEM_MAX + 1;
        assert_int_equal(mail_msg_encode(many, 1, &msg), PULL_ERR_INVAL);
        free(big);
    }
    /* IHAVE */
    memset(want, 0xee, sizeof(want));
    wb_reset(&msg);
    assert_int_equal(
        mail_ihave_encode((const uint8_t(*)[32])have, 3, (const uint8_t(*)[32])want, 2, &msg), 0);
    assert_int_equal(msg_peek_type(msg.p, msg.len, &type), 0);
    assert_int_equal(type, MSG_MAIL_IHAVE);
    assert_int_equal(mail_ihave_decode(msg.p, msg.len, h2, 4, &nh, w2, 4, &nw), 0);
    assert_int_equal(nh, 3);
    assert_int_equal(nw, 2);
    assert_memory_equal(h2, have, sizeof(have));
    assert_memory_equal(w2, want, sizeof(want));
    assert_int_equal(mail_ihave_decode(msg.p, msg.len, h2, 2, &nh, w2, 4, &nw), PULL_ERR_TOO_BIG);
    assert_int_equal(mail_ihave_decode(msg.p, msg.len, h2, 4, &nh, w2, 1, &nw), PULL_ERR_TOO_BIG);
    assert_int_equal(nh, 0);
    for (size_t k = 0; k < msg.len; k++) {
        uint8_t *cut = malloc(k + 1);
        memcpy(cut, msg.p, k);
        assert_int_not_equal(mail_ihave_decode(cut, k, h2, 4, &nh, w2, 4, &nw), 0);
        free(cut);
    }
    /* the wrong message type for each decoder */
    assert_int_equal(mail_msg_decode(msg.p, msg.len, got, 4, &count), PULL_ERR_PROTOCOL);
    {
        static const uint8_t mail_as_ihave[] = {0x93, 40, 0x90, 0x90};
        static const uint8_t short_ihave[] = {0x92, 41, 0x90};
        static const uint8_t id31[] = {0x93, 41, 0x91, 0xc4, 31};
        static const uint8_t trailing[] = {0x93, 41, 0x90, 0x90, 0xc0};
        static const uint8_t extra_ihave[] = {
            0x95, 41, 0x90, 0x91, 0xc4, 0x20, [37] = 0x00, 0xa1, 'x', 0x92, 0x01, 0xc0};
        static const uint8_t extra_mail[] = {0x93, 40, 0x90, 0x81, 0x01, 0x02};
        static const uint8_t extra_bad[] = {0x93, 40, 0x90, 0xc1};
        static const uint8_t empty_item[] = {0x92, 40, 0x91, 0xc4, 0x00};
        assert_int_equal(
            mail_ihave_decode(mail_as_ihave, sizeof(mail_as_ihave), h2, 4, &nh, w2, 4, &nw),
            PULL_ERR_PROTOCOL);
        assert_int_equal(
            mail_ihave_decode(short_ihave, sizeof(short_ihave), h2, 4, &nh, w2, 4, &nw),
            PULL_ERR_MALFORMED);
        assert_int_not_equal(mail_ihave_decode(id31, sizeof(id31), h2, 4, &nh, w2, 4, &nw), 0);
        assert_int_equal(mail_ihave_decode(trailing, sizeof(trailing), h2, 4, &nh, w2, 4, &nw),
                         PULL_ERR_TRAILING);
        assert_int_equal(mail_msg_decode(empty_item, sizeof(empty_item), got, 4, &count),
                         PULL_ERR_FIELD);
        /* fields appended by a later version are skipped (PROTOCOL.md section 6) */
        assert_int_equal(
            mail_ihave_decode(extra_ihave, sizeof(extra_ihave), h2, 4, &nh, w2, 4, &nw), 0);
        assert_int_equal(nh, 0);
        assert_int_equal(nw, 1);
        assert_int_equal(mail_msg_decode(extra_mail, sizeof(extra_mail), got, 4, &count), 0);
        assert_int_equal(count, 0);
        assert_int_not_equal(mail_msg_decode(extra_bad, sizeof(extra_bad), got, 4, &count), 0);
    }
    {
        static uint8_t ids[MAIL_IHAVE_MAX + 1][32];
        wb_reset(&msg);
        assert_int_equal(
            mail_ihave_encode((const uint8_t(*)[32])ids, MAIL_IHAVE_MAX, NULL, 0, &msg), 0);
        assert_true(msg.len <= MSG_MAX);
        wb_reset(&msg);
        assert_int_equal(
            mail_ihave_encode((const uint8_t(*)[32])ids, MAIL_IHAVE_MAX + 1, NULL, 0, &msg),
            PULL_ERR_TOO_BIG);
    }
    wb_release(&a);
    wb_release(&b);
    wb_release(&c);
    wb_release(&msg);
}

static void
test_quota(void **state)
{
    struct mail_quota q;
    struct mail_usage s = {0, 0}, t = {0, 0};
    struct mail_index *ix = NULL;
    struct pull_wb w;
    uint8_t id[32], first[32];
    const uint8_t *p, *pid, *prc;
    size_t n;

    (void)state;
    mail_quota_default(&q);
    assert_int_equal(q.sender_items, 64);
    assert_int_equal(q.sender_bytes, 256 * 1024);
    /* pure policy at its edges */
    assert_int_equal(mail_admit(&q, &s, &t, 1000), 0);
    s.items = 63;
    assert_int_equal(mail_admit(&q, &s, &t, 1000), 0);
    s.items = 64;
    assert_int_equal(mail_admit(&q, &s, &t, 1000), PULL_ERR_QUOTA);
    s.items = 0;
    s.bytes = 256 * 1024 - 1000;
    assert_int_equal(mail_admit(&q, &s, &t, 1000), 0);
    assert_int_equal(mail_admit(&q, &s, &t, 1001), PULL_ERR_QUOTA);
    s.bytes = UINT64_MAX;
    assert_int_equal(mail_admit(&q, &s, &t, 1), PULL_ERR_QUOTA);
    s.bytes = 0;
    t.items = q.total_items;
    assert_int_equal(mail_admit(&q, &s, &t, 1), PULL_ERR_QUOTA);
    t.items = 0;
    t.bytes = q.total_bytes;
    assert_int_equal(mail_admit(&q, &s, &t, 1), PULL_ERR_QUOTA);
    assert_int_equal(mail_admit(&q, &s, &t, SIZE_MAX), PULL_ERR_QUOTA);

    /* the in-memory index: 64 items from alice, the 65th refused; bob still welcome */
    wb_init(&w, 0);
    assert_int_equal(mail_index_new(NULL, &q, &ix), 0);
    for (int i = 0; i < 64; i++) {
        seal_hello(&w, NULL);
        assert_int_equal(mail_index_add(ix, w.p, w.len, NOW, id), 0);
        if (i == 0)
            memcpy(first, id, 32);
        assert_int_equal(mail_index_add(ix, w.p, w.len, NOW, id), PULL_ERR_DUPLICATE);
    }
    seal_hello(&w, NULL);
    assert_int_equal(mail_index_add(ix, w.p, w.len, NOW, id), PULL_ERR_QUOTA);
    assert_false(mail_index_has(ix, id));
    wb_reset(&w);
    assert_int_equal(mail_seal(&env.env, &bob, alice.pk, hello, 3, NOW + DAY, &w, id), 0);
    assert_int_equal(mail_index_add(ix, w.p, w.len, NOW, NULL), 0);
    assert_int_equal(mail_index_count(ix), 65);
    {
        struct mail_usage u, all;
        mail_index_usage(ix, alice.pk, &u);
        assert_int_equal(u.items, 64);
        mail_index_usage(ix, NULL, &all);
        assert_int_equal(all.items, 65);
        assert_true(all.bytes > u.bytes);
    }
    /* refused: expired, bad signature, garbage */
    wb_reset(&w);
    assert_int_equal(mail_seal(&env.env, &carol, alice.pk, hello, 3, NOW + DAY, &w, id), 0);
    assert_int_equal(mail_index_add(ix, w.p, w.len, NOW + DAY, NULL), PULL_ERR_EXPIRED);
    w.p[w.len - 1] ^= 1;
    assert_int_equal(mail_index_add(ix, w.p, w.len, NOW, NULL), PULL_ERR_BAD_SIG);
    assert_int_not_equal(mail_index_add(ix, w.p, 10, NOW, NULL), 0);
    /* get, at, remove: removing one of alice's frees room for one more */
    assert_int_equal(mail_index_get(ix, first, &p, &n), 0);
    assert_int_equal(mail_index_at(ix, 0, &p, &n, &pid, &prc), 0);
    assert_memory_equal(pid, first, 32);
    assert_memory_equal(prc, bob.pk, 32);
    assert_int_equal(mail_index_at(ix, 65, &p, &n, &pid, &prc), PULL_ERR_NOT_FOUND);
    assert_int_equal(mail_index_remove(ix, first), 0);
    assert_int_equal(mail_index_remove(ix, first), PULL_ERR_NOT_FOUND);
    assert_int_equal(mail_index_get(ix, first, &p, &n), PULL_ERR_NOT_FOUND);
    seal_hello(&w, NULL);
    assert_int_equal(mail_index_add(ix, w.p, w.len, NOW, NULL), 0);
    /* sweep: alice's (3 days) go, bob's (1 day) went first */
    assert_int_equal(mail_index_sweep(ix, NOW + DAY - 1), 0);
    assert_int_equal(mail_index_sweep(ix, NOW + DAY), 1);
    assert_int_equal(mail_index_sweep(ix, NOW + 3 * DAY), 64);
    assert_int_equal(mail_index_count(ix), 0);
    {
        struct mail_usage all;
        mail_index_usage(ix, NULL, &all);
        assert_int_equal(all.items, 0);
        assert_int_equal(all.bytes, 0);
    }
    mail_index_free(ix);
    ix = NULL;

    /* a byte quota smaller than the item count quota */
    q.sender_bytes = 3 * w.len;
    assert_int_equal(mail_index_new(NULL, &q, &ix), 0);
    for (int i = 0; i < 3; i++) {
        seal_hello(&w, NULL);
        assert_int_equal(mail_index_add(ix, w.p, w.len, NOW, NULL), 0);
    }
    seal_hello(&w, NULL);
    assert_int_equal(mail_index_add(ix, w.p, w.len, NOW, NULL), PULL_ERR_QUOTA);
    mail_index_free(ix);
    mail_index_free(NULL);
    wb_release(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_open), cmocka_unit_test(test_wrong_recipient),
        cmocka_unit_test(test_tampered),  cmocka_unit_test(test_expiry_and_hostile),
        cmocka_unit_test(test_wire),      cmocka_unit_test(test_quota),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
