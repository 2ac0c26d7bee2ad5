/* Fuzz the Secret Handshake state machines (proto/shs.h) with hostile peers.
 *
 * Input: byte 0 picks the mode (low 2 bits) and the chunk size the bytes are fed in (high
 * 6 bits + 1); the rest is what the hostile peer sends:
 *   0: everything the server receives, from the client hello on;
 *   1: everything the client receives after sending its hello;
 *   2: a genuine client hello, then the input as the client authenticate (and beyond);
 *   3: a genuine exchange up to the server accept, replaced by the input.
 * Invariants: no out-of-bounds access (sanitizers), consumption never exceeds what was
 * given, a failed machine never emits a byte, and a machine that claims success yields a
 * session naming the peer it really talked to. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/env.h"
#include "lib/err.h"
#include "proto/shs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t K[32] = PULL_NETWORK_KEY_PUBLIC;

static void
ident_seed(struct ident *id, uint8_t b)
{
    uint8_t seed[32];

    memset(seed, b, sizeof(seed));
    if (crypto_sign_seed_keypair(id->pk, id->sk, seed) != 0)
        abort();
}

/* Feeds p[0..n) to s in chunks, draining (and discarding) its output in between. Returns
 * the last result. */
static int
feed_all(struct shs *s, const uint8_t *p, size_t n, size_t chunk)
{
    uint8_t out[SHS_OUT_MAX];
    size_t off = 0, used;
    int rc = SHS_AGAIN;

    while (off < n) {
        size_t give = n - off < chunk ? n - off : chunk;
        rc = shs_feed(s, p + off, give, &used);
        if (used > give)
            abort();
        off += used;
        if (rc == PULL_ERR_HANDSHAKE) {
            if (shs_next_out(s, out) != 0 || shs_fail_reason(s) == SHS_FAIL_NONE)
                abort();
            return rc;
        }
        if (rc == SHS_DONE)
            return rc;
        if (rc == PULL_ERR_STATE && used == 0 && shs_next_out(s, out) == 0)
            abort(); /* refused input without pending output before being done */
        while (shs_next_out(s, out) > 0)
            ;
    }
    return rc;
}

/* A machine that reports success must yield a session for the expected peer. */
static void
check_done(struct shs *s, const uint8_t peer[static 32])
{
    uint8_t out[SHS_OUT_MAX];
    struct shs_session sess;

    while (shs_next_out(s, out) > 0)
        ;
    if (shs_session(s, &sess) != 0 || memcmp(sess.peer_pk, peer, 32) != 0)
        abort();
    shs_session_wipe(&sess);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    static struct ident A, B;
    struct env_seeded ce, se;
    struct shs c, s;
    uint8_t buf[SHS_OUT_MAX];
    size_t used, n, chunk;
    int mode, rc;

    if (!ready) {
        if (sodium_init() < 0)
            abort();
        ident_seed(&A, 0xa1);
        ident_seed(&B, 0xb2);
        ready = 1;
    }
    if (size < 1)
        return 0;
    mode = data[0] & 3;
    chunk = (size_t)(data[0] >> 2) + 1;
    data++, size--;
    env_seeded_init(&ce, 1, 0, 0);
    env_seeded_init(&se, 2, 0, 0);
    if (shs_client_init(&c, &ce.env, K, &A, B.pk) != 0 || shs_server_init(&s, &se.env, K, &B) != 0)
        abort();

    switch (mode) {
    case 0:
        if (feed_all(&s, data, size, chunk) == SHS_DONE)
            check_done(&s, A.pk);
        break;
    case 1:
        if (shs_next_out(&c, buf) != SHS_MSG1_BYTES)
            abort();
        if (feed_all(&c, data, size, chunk) == SHS_DONE)
            check_done(&c, B.pk);
        break;
    case 2:
        n = shs_next_out(&c, buf);
        if (shs_feed(&s, buf, n, &used) != SHS_AGAIN || shs_next_out(&s, buf) != 64)
            abort();
        if (feed_all(&s, data, size, chunk) == SHS_DONE)
            check_done(&s, A.pk);
        break;
    default:
        n = shs_next_out(&c, buf);
        if (shs_feed(&s, buf, n, &used) != SHS_AGAIN)
            abort();
        n = shs_next_out(&s, buf);
        if (shs_feed(&c, buf, n, &used) != SHS_AGAIN)
            abort();
        n = shs_next_out(&c, buf);
        if (n != SHS_MSG3_BYTES || shs_feed(&s, buf, n, &used) != SHS_DONE)
            abort();
        rc = feed_all(&c, data, size, chunk);
        if (rc == SHS_DONE)
            check_done(&c, B.pk);
        break;
    }
    shs_release(&c);
    shs_release(&s);
    return 0;
}
