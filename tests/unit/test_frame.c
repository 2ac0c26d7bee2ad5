/* Tests of the encrypted frames (proto/frame.h): key derivation, round trips of many sizes
 * and chunkings, and every fatal case: tampered, truncated, reordered, replayed, oversized,
 * empty, unknown tag, bytes after the goodbye; rekeying across many frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "lib/err.h"
#include "proto/frame.h"
#include "proto/shs.h"
#include "testutil.h"

static uint8_t key_a[32], key_b[32];

/* A sender and a receiver of one direction, with the sent bytes in w. */
struct link {
    struct env_seeded env;
    struct frame_enc enc;
    struct frame_dec dec;
    struct pull_wb w;
};

static void
link_init(struct link *l, const uint8_t *txkey, const uint8_t *rxkey)
{
    uint8_t hdr[FRAME_HEADER_BYTES];

    env_seeded_init(&l->env, 9, 0, 0);
    assert_int_equal(frame_enc_init(&l->enc, &l->env.env, txkey, hdr), 0);
    assert_int_equal(frame_dec_init(&l->dec, NULL, rxkey), 0);
    wb_init(&l->w, 0);
    assert_int_equal(wb_put(&l->w, hdr, sizeof(hdr)), 0);
}

static void
link_release(struct link *l)
{
    frame_enc_release(&l->enc);
    frame_dec_release(&l->dec);
    wb_release(&l->w);
}

/* Feeds p[0..n) in chunks of `chunk`; every decoded message is appended to got (if not
 * NULL) and counted. Returns the first error, else 0. */
static int
feed(struct frame_dec *d, const uint8_t *p, size_t n, size_t chunk, struct pull_wb *got,
     size_t *count, bool *final)
{
    size_t off = 0;

    while (off < n) {
        size_t give = n - off < chunk ? n - off : chunk, pos = 0;
        while (pos < give) {
            struct frame_msg m;
            size_t used;
            int rc = frame_dec_feed(d, p + off + pos, give - pos, &used, &m);
            if (rc < 0)
                return rc;
            assert_true(used <= give - pos);
            pos += used;
            if (rc == FRAME_MSG) {
                assert_true(m.len >= 1 && m.len <= FRAME_PLAIN_MAX);
                if (got != NULL)
                    assert_int_equal(wb_put(got, m.p, m.len), 0);
                if (count != NULL)
                    (*count)++;
                if (final != NULL)
                    *final = m.final;
            } else {
                assert_int_equal(pos, give);
            }
        }
        off += give;
    }
    return 0;
}

static void
fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((i * 131u + seed * 7u) >> 3);
}

static void
test_kdf(void **state)
{
    struct shs_session s;
    uint8_t tx[32], rx[32], want[32];

    (void)state;
    memset(&s, 0, sizeof(s));
    memset(s.enc_key, 1, 32);
    memset(s.enc_nonce, 2, 24);
    memset(s.dec_key, 3, 32);
    memset(s.dec_nonce, 4, 24);
    assert_int_equal(frame_keys(&s, tx, rx), 0);
    /* BLAKE2b-256(key = 01*32, "pull/frame/v1" || 02*24), computed with Python hashlib */
    tu_hex("d6f9bebac7c30602be57158d88b324b9456ff1ff5b60081c94072c0b0b62b462", want, 32);
    assert_memory_equal(tx, want, 32);
    assert_memory_not_equal(tx, rx, 32);
}

/* Keys from a real handshake: each side's tx is the other's rx. */
static void
test_keys_from_handshake(void **state)
{
    static const uint8_t K[32] = PULL_NETWORK_KEY_PUBLIC;
    struct env_seeded ce, se;
    struct ident A, B;
    uint8_t seed[32], buf[SHS_OUT_MAX], ctx[32], crx[32], stx[32], srx[32];
    struct shs c, s;
    struct shs_session cs, ss;
    size_t n, used;

    (void)state;
    memset(seed, 5, 32);
    crypto_sign_seed_keypair(A.pk, A.sk, seed);
    memset(seed, 6, 32);
    crypto_sign_seed_keypair(B.pk, B.sk, seed);
    env_seeded_init(&ce, 1, 0, 0);
    env_seeded_init(&se, 2, 0, 0);
    assert_int_equal(shs_client_init(&c, &ce.env, K, &A, B.pk), 0);
    assert_int_equal(shs_server_init(&s, &se.env, K, &B), 0);
    n = shs_next_out(&c, buf);
    assert_int_equal(shs_feed(&s, buf, n, &used), SHS_AGAIN);
    n = shs_next_out(&s, buf);
    assert_int_equal(shs_feed(&c, buf, n, &used), SHS_AGAIN);
    n = shs_next_out(&c, buf);
    assert_int_equal(shs_feed(&s, buf, n, &used), SHS_DONE);
    n = shs_next_out(&s, buf);
    assert_int_equal(shs_feed(&c, buf, n, &used), SHS_DONE);
    assert_int_equal(shs_session(&c, &cs), 0);
    assert_int_equal(shs_session(&s, &ss), 0);
    assert_int_equal(frame_keys(&cs, ctx, crx), 0);
    assert_int_equal(frame_keys(&ss, stx, srx), 0);
    assert_memory_equal(ctx, srx, 32);
    assert_memory_equal(crx, stx, 32);
    assert_memory_not_equal(ctx, crx, 32);

    /* and a message goes through in each direction */
    struct link l1, l2;
    struct pull_wb got;
    uint8_t msg[] = "hello";
    link_init(&l1, ctx, srx);
    link_init(&l2, stx, crx);
    assert_int_equal(frame_write(&l1.enc, msg, 5, false, &l1.w), 0);
    assert_int_equal(frame_write(&l2.enc, msg, 5, false, &l2.w), 0);
    wb_init(&got, 0);
    assert_int_equal(feed(&l1.dec, l1.w.p, l1.w.len, 1000, &got, NULL, NULL), 0);
    assert_int_equal(feed(&l2.dec, l2.w.p, l2.w.len, 1000, &got, NULL, NULL), 0);
    assert_int_equal(got.len, 10);
    assert_memory_equal(got.p, "hellohello", 10);
    /* the wrong direction's key can't read it */
    struct link l3;
    link_init(&l3, ctx, crx);
    assert_int_equal(frame_write(&l3.enc, msg, 5, false, &l3.w), 0);
    assert_int_equal(feed(&l3.dec, l3.w.p, l3.w.len, 1000, NULL, NULL, NULL), PULL_ERR_CRYPTO);
    wb_release(&got);
    link_release(&l1);
    link_release(&l2);
    link_release(&l3);
    shs_session_wipe(&cs);
    shs_session_wipe(&ss);
}

static void
test_round_trip_sizes(void **state)
{
    static const size_t sizes[] = {1,    2,    16,    17,    18,    100,   1000, 4095,
                                   4096, 4097, 16384, 32768, 65000, 65535, 65536};
    static const size_t chunks[] = {1, 3, 4, 5, 21, 4096, 70000, SIZE_MAX};
    struct link l;
    struct pull_wb sent, got;
    uint8_t *msg = malloc(FRAME_PLAIN_MAX);
    size_t count;
    bool final = false;

    (void)state;
    assert_non_null(msg);
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        link_init(&l, key_a, key_a);
        wb_init(&sent, 0);
        wb_init(&got, 0);
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            if (chunks[c] == 1 && sizes[i] > 5000)
                continue; /* byte-by-byte only for the small ones: keep the test fast */
            fill(msg, sizes[i], (uint32_t)i);
            assert_int_equal(frame_write(&l.enc, msg, sizes[i], false, &l.w), 0);
            assert_int_equal(wb_put(&sent, msg, sizes[i]), 0);
        }
        assert_int_equal(frame_write(&l.enc, (const uint8_t *)"bye", 3, true, &l.w), 0);
        assert_int_equal(wb_put(&sent, "bye", 3), 0);
        count = 0;
        assert_int_equal(feed(&l.dec, l.w.p, l.w.len, chunks[c], &got, &count, &final), 0);
        assert_true(final);
        assert_int_equal(got.len, sent.len);
        assert_memory_equal(got.p, sent.p, sent.len);
        assert_int_equal(frame_dec_eof(&l.dec), 0);
        /* wire size: header + per frame 4 + 17 */
        assert_int_equal(l.w.len, FRAME_HEADER_BYTES + sent.len + count * FRAME_OVERHEAD);
        wb_release(&sent);
        wb_release(&got);
        link_release(&l);
    }
    free(msg);
}

/* Builds header + 3 frames ("one", "two", "three") and returns the byte offsets of the
 * frames in off[0..3] (off[3] = end). */
static void
three_frames(struct link *l, size_t off[4])
{
    static const char *const words[3] = {"one", "two", "three"};

    link_init(l, key_a, key_a);
    for (int i = 0; i < 3; i++) {
        off[i] = l->w.len;
        assert_int_equal(
            frame_write(&l->enc, (const uint8_t *)words[i], strlen(words[i]), false, &l->w), 0);
    }
    off[3] = l->w.len;
}

static void
test_tampered(void **state)
{
    struct link l;
    size_t off[4];

    (void)state;
    three_frames(&l, off);
    for (size_t pos = 0; pos < off[3]; pos++) {
        for (int bit = 0; bit < 8; bit += 7) {
            struct frame_dec d;
            struct pull_wb got;
            uint8_t *copy = malloc(off[3]);
            size_t count = 0;
            int rc;

            memcpy(copy, l.w.p, off[3]);
            copy[pos] ^= (uint8_t)(1u << bit);
            assert_int_equal(frame_dec_init(&d, NULL, key_a), 0);
            wb_init(&got, 0);
            int frc = feed(&d, copy, off[3], 7, &got, &count, NULL);
            /* Frames before the altered one decode; the altered one never does. A length
             * made larger only waits for bytes that never come: a cut at EOF. */
            rc = frc != 0 ? frc : frame_dec_eof(&d);
            assert_true(rc < 0);
            assert_true(rc == PULL_ERR_CRYPTO || rc == PULL_ERR_TRUNCATED ||
                        rc == PULL_ERR_TOO_BIG || rc == PULL_ERR_MALFORMED);
            size_t intact = 0;
            while (intact < 3 && off[intact + 1] <= pos)
                intact++;
            assert_int_equal(count, pos < FRAME_HEADER_BYTES ? 0 : intact);
            /* decoder errors are sticky */
            if (frc != 0) {
                struct frame_msg m;
                size_t used;
                assert_int_equal(frame_dec_feed(&d, copy, off[3], &used, &m), frc);
                assert_int_equal(used, 0);
                assert_int_equal(frame_dec_eof(&d), frc);
            }
            frame_dec_release(&d);
            wb_release(&got);
            free(copy);
        }
    }
    link_release(&l);
}

static void
test_truncated(void **state)
{
    struct link l;
    size_t off[4], count;
    struct frame_dec d;

    (void)state;
    three_frames(&l, off);
    /* every cut point: EOF mid-header or mid-frame is TRUNCATED, between frames CLOSED */
    for (size_t cut = 0; cut <= off[3]; cut++) {
        int want;
        assert_int_equal(frame_dec_init(&d, NULL, key_a), 0);
        count = 0;
        assert_int_equal(feed(&d, l.w.p, cut, 2, NULL, &count, NULL), 0);
        if (cut == 0 || cut == off[0] || cut == off[1] || cut == off[2] || cut == off[3])
            want = PULL_ERR_CLOSED;
        else
            want = PULL_ERR_TRUNCATED;
        assert_int_equal(frame_dec_eof(&d), want);
        frame_dec_release(&d);
    }
    /* a frame cut short but followed by the next one: authentication fails */
    struct pull_wb w;
    wb_init(&w, 0);
    wb_put(&w, l.w.p, off[1] - 1);
    wb_put(&w, l.w.p + off[1], off[3] - off[1]);
    assert_int_equal(frame_dec_init(&d, NULL, key_a), 0);
    count = 0;
    assert_int_equal(feed(&d, w.p, w.len, 1000, NULL, &count, NULL), PULL_ERR_CRYPTO);
    assert_int_equal(count, 0);
    frame_dec_release(&d);
    wb_release(&w);
    link_release(&l);
}

static void
test_reordered_replayed(void **state)
{
    struct link l;
    size_t off[4], count;
    struct frame_dec d;
    struct pull_wb w;

    (void)state;
    three_frames(&l, off);
    /* reordered: header, frame 2, frame 1 */
    wb_init(&w, 0);
    wb_put(&w, l.w.p, off[0]);
    wb_put(&w, l.w.p + off[1], off[2] - off[1]);
    wb_put(&w, l.w.p + off[0], off[1] - off[0]);
    assert_int_equal(frame_dec_init(&d, NULL, key_a), 0);
    count = 0;
    assert_int_equal(feed(&d, w.p, w.len, SIZE_MAX, NULL, &count, NULL), PULL_ERR_CRYPTO);
    assert_int_equal(count, 0);
    frame_dec_release(&d);
    wb_release(&w);

    /* replayed: header, frame 1, frame 1 */
    wb_init(&w, 0);
    wb_put(&w, l.w.p, off[1]);
    wb_put(&w, l.w.p + off[0], off[1] - off[0]);
    assert_int_equal(frame_dec_init(&d, NULL, key_a), 0);
    count = 0;
    assert_int_equal(feed(&d, w.p, w.len, SIZE_MAX, NULL, &count, NULL), PULL_ERR_CRYPTO);
    assert_int_equal(count, 1);
    frame_dec_release(&d);
    wb_release(&w);

    /* dropped: header, frame 1, frame 3 */
    wb_init(&w, 0);
    wb_put(&w, l.w.p, off[1]);
    wb_put(&w, l.w.p + off[2], off[3] - off[2]);
    assert_int_equal(frame_dec_init(&d, NULL, key_a), 0);
    count = 0;
    assert_int_equal(feed(&d, w.p, w.len, SIZE_MAX, NULL, &count, NULL), PULL_ERR_CRYPTO);
    assert_int_equal(count, 1);
    frame_dec_release(&d);
    wb_release(&w);

    /* replayed header: a stream restarted inside the connection */
    wb_init(&w, 0);
    wb_put(&w, l.w.p, off[1]);
    wb_put(&w, l.w.p, off[1]);
    assert_int_equal(frame_dec_init(&d, NULL, key_a), 0);
    count = 0;
    assert_true(feed(&d, w.p, w.len, SIZE_MAX, NULL, &count, NULL) < 0);
    assert_int_equal(count, 1);
    frame_dec_release(&d);
    wb_release(&w);
    link_release(&l);
}

static void
test_length_limits(void **state)
{
    static const struct {
        uint32_t len;
        int rc;
    } cases[] = {
        {0, PULL_ERR_MALFORMED},
        {1, PULL_ERR_MALFORMED},
        {FRAME_ABYTES, PULL_ERR_MALFORMED}, /* empty plaintext */
        {FRAME_CIPHER_MAX + 1, PULL_ERR_TOO_BIG},
        {0x00100000, PULL_ERR_TOO_BIG},
        {0xffffffffu, PULL_ERR_TOO_BIG},
    };
    struct link l;
    uint8_t four[4];
    size_t used;
    struct frame_msg m;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (int split = 0; split < 2; split++) {
            link_init(&l, key_a, key_a);
            assert_int_equal(feed(&l.dec, l.w.p, l.w.len, 100, NULL, NULL, NULL), 0);
            be32enc(four, cases[i].len);
            /* refused from the 4 length bytes alone, whether they come together or not */
            if (split) {
                assert_int_equal(frame_dec_feed(&l.dec, four, 3, &used, &m), FRAME_AGAIN);
                assert_int_equal(frame_dec_feed(&l.dec, four + 3, 1, &used, &m), cases[i].rc);
            } else {
                assert_int_equal(frame_dec_feed(&l.dec, four, 4, &used, &m), cases[i].rc);
            }
            assert_int_equal(frame_dec_eof(&l.dec), cases[i].rc);
            link_release(&l);
        }
    }
    /* the largest legal length is accepted and waits for its bytes */
    link_init(&l, key_a, key_a);
    assert_int_equal(feed(&l.dec, l.w.p, l.w.len, 100, NULL, NULL, NULL), 0);
    be32enc(four, FRAME_CIPHER_MAX);
    assert_int_equal(frame_dec_feed(&l.dec, four, 4, &used, &m), FRAME_AGAIN);
    assert_int_equal(frame_dec_eof(&l.dec), PULL_ERR_TRUNCATED);

    /* the encoder refuses what the decoder would refuse */
    uint8_t *big = calloc(1, FRAME_PLAIN_MAX + 1);
    uint8_t *out = malloc(FRAME_PLAIN_MAX + 1 + FRAME_OVERHEAD);
    assert_non_null(big);
    assert_non_null(out);
    assert_int_equal(frame_seal(&l.enc, big, 0, false, out), PULL_ERR_INVAL);
    assert_int_equal(frame_seal(&l.enc, big, FRAME_PLAIN_MAX + 1, false, out), PULL_ERR_TOO_BIG);
    assert_int_equal(frame_write(&l.enc, big, FRAME_PLAIN_MAX + 1, false, &l.w), PULL_ERR_TOO_BIG);
    assert_int_equal(frame_seal(&l.enc, big, FRAME_PLAIN_MAX, false, out), 0);
    assert_int_equal(be32dec(out), FRAME_CIPHER_MAX);
    free(big);
    free(out);
    link_release(&l);
}

static void
test_after_final(void **state)
{
    struct link l;
    struct pull_wb got;
    size_t count = 0, end;
    bool final = false;
    uint8_t out[64];

    (void)state;
    link_init(&l, key_a, key_a);
    assert_int_equal(frame_write(&l.enc, (const uint8_t *)"a", 1, false, &l.w), 0);
    assert_int_equal(frame_write(&l.enc, (const uint8_t *)"bye", 3, true, &l.w), 0);
    end = l.w.len;
    /* nothing more can be sent */
    assert_int_equal(frame_seal(&l.enc, (const uint8_t *)"x", 1, false, out), PULL_ERR_STATE);
    assert_int_equal(frame_write(&l.enc, (const uint8_t *)"x", 1, true, &l.w), PULL_ERR_STATE);
    assert_int_equal(l.w.len, end);
    wb_init(&got, 0);
    assert_int_equal(feed(&l.dec, l.w.p, l.w.len, 5, &got, &count, &final), 0);
    assert_int_equal(count, 2);
    assert_true(final);
    assert_int_equal(frame_dec_eof(&l.dec), 0);
    /* any byte after the goodbye is fatal */
    assert_int_equal(feed(&l.dec, (const uint8_t *)"z", 1, 1, NULL, NULL, NULL), PULL_ERR_STATE);
    assert_int_equal(frame_dec_eof(&l.dec), PULL_ERR_STATE);
    wb_release(&got);
    link_release(&l);

    /* a frame after the goodbye in the same chunk: the goodbye is delivered, then fatal */
    struct frame_enc e2;
    struct env_seeded env;
    uint8_t hdr[FRAME_HEADER_BYTES];
    struct frame_dec d;
    struct pull_wb w;
    wb_init(&w, 0);
    env_seeded_init(&env, 1, 0, 0);
    assert_int_equal(frame_enc_init(&e2, &env.env, key_a, hdr), 0);
    wb_put(&w, hdr, sizeof(hdr));
    assert_int_equal(frame_write(&e2, (const uint8_t *)"bye", 3, true, &w), 0);
    e2.final = false; /* white-box: a sender that keeps going */
    assert_int_equal(frame_write(&e2, (const uint8_t *)"more", 4, false, &w), 0);
    assert_int_equal(frame_dec_init(&d, NULL, key_a), 0);
    count = 0;
    assert_int_equal(feed(&d, w.p, w.len, SIZE_MAX, NULL, &count, NULL), PULL_ERR_STATE);
    assert_int_equal(count, 1);
    frame_dec_release(&d);
    frame_enc_release(&e2);
    wb_release(&w);
}

/* Frames with tags we never send (REKEY, PUSH), made with raw libsodium, are refused. */
static void
test_foreign_tags(void **state)
{
    static const uint8_t tags[] = {crypto_secretstream_xchacha20poly1305_TAG_REKEY,
                                   crypto_secretstream_xchacha20poly1305_TAG_PUSH};
    (void)state;
    for (size_t i = 0; i < sizeof(tags); i++) {
        crypto_secretstream_xchacha20poly1305_state st;
        uint8_t buf[FRAME_HEADER_BYTES + 4 + 3 + FRAME_ABYTES];
        struct frame_dec d;
        size_t count = 0;

        assert_int_equal(crypto_secretstream_xchacha20poly1305_init_push(&st, buf, key_a), 0);
        be32enc(buf + FRAME_HEADER_BYTES, 3 + FRAME_ABYTES);
        assert_int_equal(crypto_secretstream_xchacha20poly1305_push(
                             &st, buf + FRAME_HEADER_BYTES + 4, NULL, (const uint8_t *)"abc", 3,
                             buf + FRAME_HEADER_BYTES, 4, tags[i]),
                         0);
        assert_int_equal(frame_dec_init(&d, NULL, key_a), 0);
        assert_int_equal(feed(&d, buf, sizeof(buf), SIZE_MAX, NULL, &count, NULL),
                         PULL_ERR_PROTOCOL);
        assert_int_equal(count, 0);
        frame_dec_release(&d);
    }
}

/* Our frames are exactly raw secretstream pushes with the length as additional data, and
 * the stream rekeys after every FRAME_REKEY_EVERY frames: compare with a raw stream from
 * the same header that doesn't rekey. Then run many frames through the decoder. */
static void
test_rekey(void **state)
{
    const size_t nframes = 3 * FRAME_REKEY_EVERY + 10;
    crypto_secretstream_xchacha20poly1305_state raw;
    struct link l;
    struct pull_wb got;
    uint8_t msg[8], out[8 + FRAME_OVERHEAD], rawc[8 + FRAME_ABYTES];
    size_t count = 0;

    (void)state;
    link_init(&l, key_b, key_b);
    assert_int_equal(crypto_secretstream_xchacha20poly1305_init_pull(&raw, l.w.p, key_b), 0);
    for (size_t i = 0; i < nframes; i++) {
        be64enc(msg, i);
        assert_int_equal(frame_seal(&l.enc, msg, sizeof(msg), false, out), 0);
        assert_int_equal(wb_put(&l.w, out, sizeof(out)), 0);
        uint8_t ad[4];
        be32enc(ad, (uint32_t)sizeof(rawc));
        assert_int_equal(crypto_secretstream_xchacha20poly1305_push(
                             &raw, rawc, NULL, msg, sizeof(msg), ad, 4,
                             crypto_secretstream_xchacha20poly1305_TAG_MESSAGE),
                         0);
        assert_memory_equal(out, ad, 4);
        if (i < FRAME_REKEY_EVERY)
            assert_memory_equal(out + 4, rawc, sizeof(rawc));
        else if (i == FRAME_REKEY_EVERY)
            assert_memory_not_equal(out + 4, rawc, sizeof(rawc)); /* rekeyed */
    }
    wb_init(&got, 0);
    assert_int_equal(feed(&l.dec, l.w.p, l.w.len, 4093, &got, &count, NULL), 0);
    assert_int_equal(count, nframes);
    for (size_t i = 0; i < nframes; i++)
        assert_int_equal(be64dec(got.p + 8 * i), i);
    assert_int_equal(frame_dec_eof(&l.dec), PULL_ERR_CLOSED);
    wb_release(&got);
    link_release(&l);
}

static void
test_misuse(void **state)
{
    struct frame_enc e;
    struct frame_dec d;
    struct frame_msg m;
    uint8_t out[64];
    size_t used;

    (void)state;
    memset(&e, 0, sizeof(e));
    assert_int_equal(frame_seal(&e, (const uint8_t *)"x", 1, false, out), PULL_ERR_STATE);
    memset(&d, 0, sizeof(d));
    assert_int_equal(frame_dec_feed(&d, out, 1, &used, &m), PULL_ERR_STATE);
    frame_dec_release(&d); /* safe on a zeroed struct */
    frame_dec_release(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kdf),
        cmocka_unit_test(test_keys_from_handshake),
        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_tampered),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_reordered_replayed),
        cmocka_unit_test(test_length_limits),
        cmocka_unit_test(test_after_final),
        cmocka_unit_test(test_foreign_tags),
        cmocka_unit_test(test_rekey),
        cmocka_unit_test(test_misuse),
    };
    if (sodium_init() < 0)
        return 1;
    memset(key_a, 0xa5, sizeof(key_a));
    memset(key_b, 0x5b, sizeof(key_b));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
