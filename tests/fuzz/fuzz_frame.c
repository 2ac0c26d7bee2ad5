/* Fuzz the frame decoder (proto/frame.h) with a fixed key.
 *
 * Input: byte 0 picks the mode (low 2 bits) and the chunk size (the other bits):
 *   0: the input is the whole received stream, header included;
 *   1: a genuine header, then the input as the frames;
 *   2, 3: structured: the input describes messages ([u16 length, top bit = final] then the
 *      bytes), which a real encoder turns into a stream; then one byte of it may be altered
 *      (u16 position, u8 xor mask from the start of the input). Unaltered, every message
 *      must come out exactly; altered, the decoder must fail or see a cut, and must never
 *      hand out a message that differs from the one sent.
 * Invariants everywhere: consumption never exceeds the input, messages are 1..64 KiB. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "lib/err.h"
#include "proto/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSGS 64

static const uint8_t key[FRAME_KEY_BYTES] = {
    0x70, 0x75, 0x6c, 0x6c, 0x2f, 0x66, 0x75, 0x7a, 0x7a, 0x2f, 0x66, 0x72, 0x61, 0x6d, 0x65, 0x00,
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10};

struct sent {
    const uint8_t *p[MAX_MSGS];
    size_t len[MAX_MSGS];
    size_t n;
};

/* Feeds the stream in chunks; checks delivered messages against `want` when given. Returns
 * the decoder error, else frame_dec_eof(). */
static int
run(const uint8_t *p, size_t n, size_t chunk, const struct sent *want)
{
    struct frame_dec d;
    size_t off = 0, got = 0;
    int rc = 0;

    if (frame_dec_init(&d, NULL, key) != 0)
        abort();
    while (off < n && rc >= 0) {
        size_t give = n - off < chunk ? n - off : chunk, pos = 0;
        while (pos < give) {
            struct frame_msg m;
            size_t used;
            rc = frame_dec_feed(&d, p + off + pos, give - pos, &used, &m);
            if (used > give - pos)
                abort();
            pos += used;
            if (rc < 0)
                break;
            if (rc == FRAME_MSG) {
                if (m.len < 1 || m.len > FRAME_PLAIN_MAX)
                    abort();
                if (want != NULL && (got >= want->n || m.len != want->len[got] ||
                                     memcmp(m.p, want->p[got], m.len) != 0))
                    abort();
                got++;
            } else if (pos != give) {
                abort();
            }
        }
        off += give;
    }
    if (rc >= 0)
        rc = frame_dec_eof(&d);
    if (rc == 0 && want != NULL && got != want->n)
        abort();
    frame_dec_release(&d);
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    struct env_seeded env;
    struct frame_enc e;
    struct pull_wb w;
    uint8_t hdr[FRAME_HEADER_BYTES];
    size_t chunk;
    int mode;

    if (!ready) {
        if (sodium_init() < 0)
            abort();
        ready = 1;
    }
    if (size < 1)
        return 0;
    mode = data[0] & 3;
    chunk = (size_t)(data[0] >> 2) * 97 + 1;
    data++, size--;
    env_seeded_init(&env, 7, 0, 0);
    if (frame_enc_init(&e, &env.env, key, hdr) != 0)
        abort();
    wb_init(&w, 0);

    if (mode == 0) {
        run(data, size, chunk, NULL);
    } else if (mode == 1) {
        wb_put(&w, hdr, sizeof(hdr));
        wb_put(&w, data, size);
        if (wb_error(&w) != 0)
            abort();
        run(w.p, w.len, chunk, NULL);
    } else {
        struct pull_rd r;
        struct sent sent = {.n = 0};
        uint16_t pos = 0, len;
        uint8_t mask = 0;
        bool final = false;
        int rc;

        rd_init(&r, data, size);
        if (rd_u16be(&r, &pos) != 0 || rd_u8(&r, &mask) != 0)
            goto out;
        wb_put(&w, hdr, sizeof(hdr));
        while (!final && sent.n < MAX_MSGS && rd_u16be(&r, &len) == 0) {
            const uint8_t *m;
            size_t n = len & 0x7fff;
            bool fin = (len & 0x8000) != 0;
            if (n == 0)
                n = 1;
            if (n > rd_left(&r))
                n = rd_left(&r);
            if (n == 0 || rd_bytes(&r, n, &m) != 0)
                break;
            if (frame_write(&e, m, n, fin, &w) != 0)
                abort();
            final = fin;
            sent.p[sent.n] = m;
            sent.len[sent.n++] = n;
        }
        if (wb_error(&w) != 0)
            abort();
        if (mask != 0)
            w.p[pos % w.len] ^= mask;
        rc = run(w.p, w.len, chunk, &sent);
        if (mask == 0 && rc != (final ? 0 : PULL_ERR_CLOSED))
            abort();
        if (mask != 0 && rc == 0)
            abort();
    }
out:
    frame_enc_release(&e);
    wb_release(&w);
    return 0;
}
