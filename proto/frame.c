/* Encrypted frames over secretstream (see frame.h and proto/PROTOCOL.md). */
#include "proto/frame.h"

#include <string.h>

#include "lib/err.h"

_Static_assert(FRAME_HEADER_BYTES == crypto_secretstream_xchacha20poly1305_HEADERBYTES,
               "header size");
_Static_assert(FRAME_ABYTES == crypto_secretstream_xchacha20poly1305_ABYTES, "tag size");
_Static_assert(FRAME_KEY_BYTES == crypto_secretstream_xchacha20poly1305_KEYBYTES, "key size");

enum { PH_HEADER = 0, PH_FRAMES, PH_CLOSED };

static int
kdf(const uint8_t key[static 32], const uint8_t nonce[static SHS_NONCE_BYTES],
    uint8_t out[static FRAME_KEY_BYTES])
{
    crypto_generichash_state h;
    int rc = 0;

    if (crypto_generichash_init(&h, key, 32, FRAME_KEY_BYTES) != 0 ||
        crypto_generichash_update(&h, (const uint8_t *)FRAME_KDF_DOMAIN,
                                  sizeof(FRAME_KDF_DOMAIN) - 1) != 0 ||
        crypto_generichash_update(&h, nonce, SHS_NONCE_BYTES) != 0 ||
        crypto_generichash_final(&h, out, FRAME_KEY_BYTES) != 0)
        rc = PULL_ERR_CRYPTO;
    sodium_memzero(&h, sizeof(h));
    return rc;
}

int
frame_keys(const struct shs_session *sess, uint8_t tx[static FRAME_KEY_BYTES],
           uint8_t rx[static FRAME_KEY_BYTES])
{
    int rc;

    if ((rc = kdf(sess->enc_key, sess->enc_nonce, tx)) != 0 ||
        (rc = kdf(sess->dec_key, sess->dec_nonce, rx)) != 0) {
        sodium_memzero(tx, FRAME_KEY_BYTES);
        sodium_memzero(rx, FRAME_KEY_BYTES);
    }
    return rc;
}

int
frame_enc_init(struct frame_enc *e, const struct pull_env *env,
               const uint8_t key[static FRAME_KEY_BYTES], uint8_t header[static FRAME_HEADER_BYTES])
{
    memset(e, 0, sizeof(*e));
    /* crypto_secretstream_xchacha20poly1305_init_push would draw the header from libsodium's
     * RNG; proto/ takes randomness only from env. init_push is exactly "random header, then
     * the same state setup as init_pull(header)" (same state type, same derivation:
     * HChaCha20 subkey from the first 16 header bytes, counter 1, inonce from the last 8),
     * so initialising with init_pull on an env-drawn header yields the push state. The
     * round trip through a genuine init_pull is checked in tests/unit/test_frame.c. */
    env_random(env, header, FRAME_HEADER_BYTES);
    if (crypto_secretstream_xchacha20poly1305_init_pull(&e->st, header, key) != 0) {
        sodium_memzero(e, sizeof(*e));
        return PULL_ERR_CRYPTO;
    }
    e->ready = true;
    return 0;
}

int
frame_seal(struct frame_enc *e, const uint8_t *msg, size_t n, bool final, uint8_t *out)
{
    unsigned long long clen;
    uint8_t tag = final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                        : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;

    if (n == 0)
        return PULL_ERR_INVAL;
    if (n > FRAME_PLAIN_MAX)
        return PULL_ERR_TOO_BIG;
    if (!e->ready || e->final)
        return PULL_ERR_STATE;
    be32enc(out, (uint32_t)(n + FRAME_ABYTES));
    if (crypto_secretstream_xchacha20poly1305_push(&e->st, out + FRAME_LEN_BYTES, &clen, msg, n,
                                                   out, FRAME_LEN_BYTES, tag) != 0 ||
        clen != n + FRAME_ABYTES) {
        frame_enc_release(e);
        return PULL_ERR_CRYPTO;
    }
    if (final)
        e->final = true;
    if (++e->frames % FRAME_REKEY_EVERY == 0)
        crypto_secretstream_xchacha20poly1305_rekey(&e->st);
    return 0;
}

int
frame_write(struct frame_enc *e, const uint8_t *msg, size_t n, bool final, struct pull_wb *w)
{
    uint8_t *out;
    int rc;

    if (n == 0)
        return PULL_ERR_INVAL;
    if (n > FRAME_PLAIN_MAX)
        return PULL_ERR_TOO_BIG;
    if ((out = wb_reserve(w, n + FRAME_OVERHEAD)) == NULL)
        return wb_error(w);
    if ((rc = frame_seal(e, msg, n, final, out)) != 0)
        return rc;
    wb_commit(w, n + FRAME_OVERHEAD);
    return 0;
}

void
frame_enc_release(struct frame_enc *e)
{
    sodium_memzero(e, sizeof(*e));
}

int
frame_dec_init(struct frame_dec *d, const struct pull_env *env,
               const uint8_t key[static FRAME_KEY_BYTES])
{
    memset(d, 0, sizeof(*d));
    d->env = env;
    d->cbuf = env_alloc(env, FRAME_LEN_BYTES + FRAME_CIPHER_MAX);
    d->pbuf = env_alloc(env, FRAME_PLAIN_MAX);
    if (d->cbuf == NULL || d->pbuf == NULL) {
        frame_dec_release(d);
        return PULL_ERR_NOMEM;
    }
    memcpy(d->key, key, FRAME_KEY_BYTES);
    d->phase = PH_HEADER;
    return 0;
}

static int
dec_fail(struct frame_dec *d, int err)
{
    sodium_memzero(&d->st, sizeof(d->st));
    sodium_memzero(d->key, sizeof(d->key));
    d->err = err;
    return err;
}

/* Checks a frame's length field before anything more of the frame is kept. */
static int
check_len(uint32_t clen)
{
    if (clen > FRAME_CIPHER_MAX)
        return PULL_ERR_TOO_BIG;
    if (clen < FRAME_CIPHER_MIN)
        return PULL_ERR_MALFORMED;
    return 0;
}

/* Decrypts one whole frame (4 length bytes then the ciphertext, at f) into pbuf. */
static int
open_frame(struct frame_dec *d, const uint8_t *f, size_t clen, struct frame_msg *msg)
{
    unsigned long long mlen;
    unsigned char tag;

    if (crypto_secretstream_xchacha20poly1305_pull(
            &d->st, d->pbuf, &mlen, &tag, f + FRAME_LEN_BYTES, clen, f, FRAME_LEN_BYTES) != 0)
        return dec_fail(d, PULL_ERR_CRYPTO);
    if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE &&
        tag != crypto_secretstream_xchacha20poly1305_TAG_FINAL)
        return dec_fail(d, PULL_ERR_PROTOCOL); /* a REKEY or PUSH tag: not ours */
    msg->p = d->pbuf;
    msg->len = (size_t)mlen;
    msg->final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    if (msg->final) {
        d->phase = PH_CLOSED;
        sodium_memzero(&d->st, sizeof(d->st));
    } else if (++d->frames % FRAME_REKEY_EVERY == 0) {
        crypto_secretstream_xchacha20poly1305_rekey(&d->st);
    }
    d->have = d->need = 0;
    return FRAME_MSG;
}

int
frame_dec_feed(struct frame_dec *d, const uint8_t *p, size_t n, size_t *used, struct frame_msg *msg)
{
    size_t take;
    int rc;

    *used = 0;
    memset(msg, 0, sizeof(*msg));
    if (d->err != 0)
        return d->err;
    if (d->pbuf == NULL)
        return PULL_ERR_STATE;
    while (*used < n) {
        const uint8_t *q = p + *used;
        size_t left = n - *used;

        if (d->phase == PH_CLOSED)
            return dec_fail(d, PULL_ERR_STATE);
        if (d->phase == PH_HEADER) {
            take = FRAME_HEADER_BYTES - d->have;
            take = take < left ? take : left;
            memcpy(d->cbuf + d->have, q, take);
            d->have += take;
            *used += take;
            if (d->have < FRAME_HEADER_BYTES)
                return FRAME_AGAIN;
            if (crypto_secretstream_xchacha20poly1305_init_pull(&d->st, d->cbuf, d->key) != 0)
                return dec_fail(d, PULL_ERR_CRYPTO);
            sodium_memzero(d->key, sizeof(d->key));
            d->have = 0;
            d->phase = PH_FRAMES;
            continue;
        }
        /* Fast path: a whole frame at the start of the input, decrypted in place. */
        if (d->have == 0 && left >= FRAME_LEN_BYTES) {
            uint32_t clen = be32dec(q);
            if ((rc = check_len(clen)) != 0)
                return dec_fail(d, rc);
            if (left - FRAME_LEN_BYTES >= clen) {
                *used += FRAME_LEN_BYTES + clen;
                return open_frame(d, q, clen, msg);
            }
        }
        /* Slow path: collect the length, check it, then collect the ciphertext. */
        if (d->have < FRAME_LEN_BYTES) {
            take = FRAME_LEN_BYTES - d->have;
            take = take < left ? take : left;
            memcpy(d->cbuf + d->have, q, take);
            d->have += take;
            *used += take;
            if (d->have < FRAME_LEN_BYTES)
                return FRAME_AGAIN;
            uint32_t clen = be32dec(d->cbuf);
            if ((rc = check_len(clen)) != 0)
                return dec_fail(d, rc);
            d->need = FRAME_LEN_BYTES + clen;
            continue;
        }
        take = d->need - d->have;
        take = take < left ? take : left;
        memcpy(d->cbuf + d->have, q, take);
        d->have += take;
        *used += take;
        if (d->have == d->need)
            return open_frame(d, d->cbuf, d->need - FRAME_LEN_BYTES, msg);
    }
    return FRAME_AGAIN;
}

int
frame_dec_eof(const struct frame_dec *d)
{
    if (d->err != 0)
        return d->err;
    if (d->phase == PH_CLOSED)
        return 0;
    if (d->have != 0)
        return PULL_ERR_TRUNCATED;
    return PULL_ERR_CLOSED;
}

void
frame_dec_release(struct frame_dec *d)
{
    if (d->cbuf != NULL) {
        sodium_memzero(d->cbuf, FRAME_LEN_BYTES + FRAME_CIPHER_MAX);
        env_free(d->env, d->cbuf);
    }
    if (d->pbuf != NULL) {
        sodium_memzero(d->pbuf, FRAME_PLAIN_MAX);
        env_free(d->env, d->pbuf);
    }
    sodium_memzero(d, sizeof(*d));
}
