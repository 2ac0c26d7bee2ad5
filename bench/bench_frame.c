/*
 * pull-bench frame [MIB]: throughput of 16 KiB frames through proto/frame (seal, then the
 * incremental decoder) against raw libsodium secretstream push + pull of the same 16 KiB
 * messages, measured on the same run, one core. Throughput counts plaintext bytes that went
 * through both encryption and decryption.
 *
 *   BENCH frame.raw_secretstream_mibs   crypto_secretstream_xchacha20poly1305_push + pull
 *   BENCH frame.mibs                    frame_seal + frame_dec_feed
 *   BENCH frame.ratio_to_secretstream   frame.mibs / frame.raw_secretstream_mibs (>= 0.8)
 *   BENCH frame.split_mibs              the same frames fed to the decoder in 1500-byte pieces
 *                                       (TCP segments: the decoder buffers each frame once)
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "lib/env.h"
#include "proto/frame.h"

int bench_frame(int argc, char **argv);

#define FRAME_SIZE (16 * 1024)

static volatile uint8_t sink; /* keeps the compiler from dropping the decrypted bytes */

struct raw_ctx {
    crypto_secretstream_xchacha20poly1305_state tx, rx;
};

struct frame_ctx {
    struct env_seeded env;
    struct frame_enc enc;
    struct frame_dec dec;
};

/* Raw secretstream: push each message into c, pull it back into m. */
static double
run_raw(struct raw_ctx *x, const uint8_t *msg, uint8_t *c, uint8_t *m, long frames)
{
    unsigned long long clen, mlen;
    unsigned char tag;
    double t0 = bench_now();

    for (long i = 0; i < frames; i++) {
        if (crypto_secretstream_xchacha20poly1305_push(
                &x->tx, c, &clen, msg, FRAME_SIZE, NULL, 0,
                crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) != 0 ||
            crypto_secretstream_xchacha20poly1305_pull(&x->rx, m, &mlen, &tag, c, clen, NULL, 0) !=
                0)
            return -1;
        sink ^= m[i % FRAME_SIZE];
    }
    return bench_now() - t0;
}

/* proto/frame: seal each message into c, feed c to the decoder (in pieces of `piece`). */
static double
run_frame(struct frame_ctx *x, const uint8_t *msg, uint8_t *c, long frames, size_t piece)
{
    struct frame_msg out;
    size_t used;
    double t0 = bench_now();

    for (long i = 0; i < frames; i++) {
        size_t n = FRAME_SIZE + FRAME_OVERHEAD, off = 0;
        int got = 0;
        if (frame_seal(&x->enc, msg, FRAME_SIZE, false, c) != 0)
            return -1;
        while (off < n) {
            size_t give = n - off < piece ? n - off : piece;
            int rc = frame_dec_feed(&x->dec, c + off, give, &used, &out);
            if (rc < 0)
                return -1;
            got += rc == FRAME_MSG;
            off += used;
        }
        if (got != 1 || out.len != FRAME_SIZE)
            return -1;
        sink ^= out.p[i % FRAME_SIZE];
    }
    return bench_now() - t0;
}

static int
frame_ctx_init(struct frame_ctx *x, const uint8_t *key)
{
    uint8_t hdr[FRAME_HEADER_BYTES];
    struct frame_msg out;
    size_t used;

    env_seeded_init(&x->env, 1, 0, 0);
    memset(&x->dec, 0, sizeof(x->dec));
    if (frame_enc_init(&x->enc, &x->env.env, key, hdr) != 0 ||
        frame_dec_init(&x->dec, &x->env.env, key) != 0 ||
        frame_dec_feed(&x->dec, hdr, sizeof(hdr), &used, &out) != FRAME_AGAIN)
        return -1;
    return 0;
}

static void
frame_ctx_release(struct frame_ctx *x)
{
    frame_enc_release(&x->enc);
    frame_dec_release(&x->dec);
}

/* Batches of BATCH frames (1 MiB) alternate between the three variants; each variant's
 * throughput is taken from its fastest batch. The machine is shared with other work: fine
 * interleaving exposes all variants to the same load, and the fastest batch is the one
 * least disturbed by it. */
#define BATCH 64

int
bench_frame(int argc, char **argv)
{
    long mib = argc > 1 ? atol(argv[1]) : 256;
    long batches = mib * (1024 * 1024 / FRAME_SIZE) / BATCH;
    uint8_t key[32], hdr[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
    uint8_t *msg = NULL, *c = NULL, *m = NULL;
    double best[3] = {1e9, 1e9, 1e9}, sum[3] = {0, 0, 0};
    const double batch_mib = (double)BATCH * FRAME_SIZE / (1024.0 * 1024.0);
    struct raw_ctx raw;
    struct frame_ctx fx, sx;
    int status = 1;

    memset(&fx, 0, sizeof(fx));
    memset(&sx, 0, sizeof(sx));
    if (batches <= 0) {
        fprintf(stderr, "usage: pull-bench frame [MIB per variant]\n");
        return 1;
    }
    msg = malloc(FRAME_SIZE);
    c = malloc(FRAME_SIZE + FRAME_OVERHEAD);
    m = malloc(FRAME_SIZE);
    if (msg == NULL || c == NULL || m == NULL)
        goto out;
    randombytes_buf(key, sizeof(key));
    randombytes_buf(msg, FRAME_SIZE);
    if (crypto_secretstream_xchacha20poly1305_init_push(&raw.tx, hdr, key) != 0 ||
        crypto_secretstream_xchacha20poly1305_init_pull(&raw.rx, hdr, key) != 0 ||
        frame_ctx_init(&fx, key) != 0 || frame_ctx_init(&sx, key) != 0)
        goto out;
    for (long b = 0; b < batches; b++) {
        double t[3];
        t[0] = run_raw(&raw, msg, c, m, BATCH);
        t[1] = run_frame(&fx, msg, c, BATCH, SIZE_MAX);
        t[2] = run_frame(&sx, msg, c, BATCH, 1500);
        for (int i = 0; i < 3; i++) {
            if (t[i] <= 0) {
                fprintf(stderr, "pull-bench frame: encryption round trip failed\n");
                goto out;
            }
            sum[i] += t[i];
            if (t[i] < best[i])
                best[i] = t[i];
        }
    }
    printf("16 KiB frames, encrypt + decrypt, one core: %ld MiB per variant in 1 MiB batches, "
           "interleaved; fastest batch (mean over all batches: raw %.0f, frame %.0f MiB/s)\n",
           mib, batches * batch_mib / sum[0], batches * batch_mib / sum[1]);
    bench_report("frame.raw_secretstream_mibs", batch_mib / best[0], "MiB/s");
    bench_report("frame.mibs", batch_mib / best[1], "MiB/s");
    bench_report("frame.ratio_to_secretstream", best[0] / best[1], "x");
    bench_report("frame.split_mibs", batch_mib / best[2], "MiB/s");
    status = 0;
out:
    sodium_memzero(key, sizeof(key));
    sodium_memzero(&raw, sizeof(raw));
    frame_ctx_release(&fx);
    frame_ctx_release(&sx);
    free(msg);
    free(c);
    free(m);
    return status;
}
