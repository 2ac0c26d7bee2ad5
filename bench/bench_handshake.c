/*
 * pull-bench handshake [SECONDS]: complete Secret Handshakes per second, both roles in one
 * process on one core (client and server state machines of proto/shs exchanging their four
 * messages in memory), next to the limit measured on the same run: the same public-key
 * operations called directly (3 X25519 per side plus the ephemeral key, 2 Ed25519->X25519
 * conversions, one signature and one verification per side).
 *
 *   BENCH handshake.rate              handshakes/s (both roles: one = one client + one server)
 *   BENCH handshake.raw_crypto_rate   the primitives alone, same count per handshake
 *   BENCH handshake.ratio_to_crypto   rate / raw_crypto_rate
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "lib/env.h"
#include "proto/shs.h"

int bench_handshake(int argc, char **argv);

static const uint8_t K[32] = PULL_NETWORK_KEY_PUBLIC;

static int
one_handshake(const struct pull_env *env, const struct ident *A, const struct ident *B)
{
    struct shs c, s;
    struct shs_session cs, ss;
    uint8_t buf[SHS_OUT_MAX];
    size_t n, used;
    int ok;

    ok = shs_client_init(&c, env, K, A, B->pk) == 0 && shs_server_init(&s, env, K, B) == 0;
    ok = ok && (n = shs_next_out(&c, buf)) == 64 && shs_feed(&s, buf, n, &used) == SHS_AGAIN;
    ok = ok && (n = shs_next_out(&s, buf)) == 64 && shs_feed(&c, buf, n, &used) == SHS_AGAIN;
    ok = ok && (n = shs_next_out(&c, buf)) == 112 && shs_feed(&s, buf, n, &used) == SHS_DONE;
    ok = ok && (n = shs_next_out(&s, buf)) == 80 && shs_feed(&c, buf, n, &used) == SHS_DONE;
    ok = ok && shs_session(&c, &cs) == 0 && shs_session(&s, &ss) == 0 &&
         sodium_memcmp(cs.enc_key, ss.dec_key, 32) == 0;
    shs_release(&c);
    shs_release(&s);
    shs_session_wipe(&cs);
    shs_session_wipe(&ss);
    return ok ? 0 : -1;
}

/* The public-key work of one handshake (both sides), without the protocol around it. */
static int
raw_crypto(const struct ident *A, const struct ident *B)
{
    uint8_t a_sk[32], a[32], b_sk[32], b[32], x[32], y[32], out[32], sig[64], msg[160];
    int bad = 0;

    randombytes_buf(a_sk, 32);
    randombytes_buf(b_sk, 32);
    memset(msg, 7, sizeof(msg));
    bad |= crypto_scalarmult_base(a, a_sk);
    bad |= crypto_scalarmult_base(b, b_sk);
    /* client: ab, aB (with B converted), Ab (with its own sk converted) */
    bad |= crypto_scalarmult(out, a_sk, b);
    bad |= crypto_sign_ed25519_pk_to_curve25519(x, B->pk);
    bad |= crypto_scalarmult(out, a_sk, x);
    bad |= crypto_sign_ed25519_sk_to_curve25519(y, A->sk);
    bad |= crypto_scalarmult(out, y, b);
    bad |= crypto_sign_detached(sig, NULL, msg, 96, A->sk);
    /* server: ab, aB (own sk converted), Ab (A converted) */
    bad |= crypto_scalarmult(out, b_sk, a);
    bad |= crypto_sign_ed25519_sk_to_curve25519(y, B->sk);
    bad |= crypto_scalarmult(out, y, a);
    bad |= crypto_sign_verify_detached(sig, msg, 96, A->pk);
    bad |= crypto_sign_ed25519_pk_to_curve25519(x, A->pk);
    bad |= crypto_scalarmult(out, b_sk, x);
    bad |= crypto_sign_detached(sig, NULL, msg, 160, B->sk);
    /* client verifies the accept */
    bad |= crypto_sign_verify_detached(sig, msg, 160, B->pk);
    return bad != 0 ? -1 : 0;
}

/* Batches of BATCH handshakes alternate with batches of the raw primitives; each rate comes
 * from its fastest batch (the machine is shared: interleaving exposes both to the same
 * load, the fastest batch is the least disturbed). */
#define BATCH 20

int
bench_handshake(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 2.0;
    struct ident A, B;
    double best[2] = {1e9, 1e9}, sum[2] = {0, 0}, t0, t;
    long batches = 0;

    if (seconds <= 0) {
        fprintf(stderr, "usage: pull-bench handshake [SECONDS]\n");
        return 1;
    }
    crypto_sign_keypair(A.pk, A.sk);
    crypto_sign_keypair(B.pk, B.sk);
    t0 = bench_now();
    do {
        t = bench_now();
        for (int i = 0; i < BATCH; i++)
            if (one_handshake(env_system(), &A, &B) != 0) {
                fprintf(stderr, "pull-bench handshake: handshake failed\n");
                return 1;
            }
        t = bench_now() - t;
        sum[0] += t;
        best[0] = t < best[0] ? t : best[0];
        t = bench_now();
        for (int i = 0; i < BATCH; i++)
            if (raw_crypto(&A, &B) != 0) {
                fprintf(stderr, "pull-bench handshake: libsodium failed\n");
                return 1;
            }
        t = bench_now() - t;
        sum[1] += t;
        best[1] = t < best[1] ? t : best[1];
        batches++;
    } while (bench_now() - t0 < seconds);
    sodium_memzero(&A, sizeof(A));
    sodium_memzero(&B, sizeof(B));
    printf("Secret Handshake, client and server in one process, one core: %ld batches of %d, "
           "fastest batch (mean: %.0f hs/s)\n",
           batches, BATCH, batches * BATCH / sum[0]);
    bench_report("handshake.rate", BATCH / best[0], "hs/s");
    bench_report("handshake.raw_crypto_rate", BATCH / best[1], "hs/s");
    bench_report("handshake.ratio_to_crypto", best[1] / best[0], "x");
    return 0;
}
