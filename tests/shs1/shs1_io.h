/* Shared by the shs1-test adapters: hex arguments and exact reads/writes on stdin/stdout. */
#ifndef PULL_SHS1_IO_H
#define PULL_SHS1_IO_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "proto/shs.h"

/* Parses exactly 2*n hex digits into out; returns 0 or -1. */
static inline int
shs1_hex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n)
        return -1;
    for (size_t i = 0; i < 2 * n; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0)
            return -1;
        if (i % 2 == 0)
            out[i / 2] = (uint8_t)(v << 4);
        else
            out[i / 2] |= (uint8_t)v;
    }
    return 0;
}

/* Reads exactly n bytes from stdin; -1 on EOF or error. */
static inline int
shs1_read(uint8_t *p, size_t n)
{
    size_t off = 0;

    while (off < n) {
        ssize_t r = read(0, p + off, n - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        off += (size_t)r;
    }
    return 0;
}

/* Writes exactly n bytes to stdout; -1 on error. */
static inline int
shs1_write(const uint8_t *p, size_t n)
{
    size_t off = 0;

    while (off < n) {
        ssize_t w = write(1, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    return 0;
}

/* Runs a handshake over stdin/stdout until done: sends what the state machine queues,
 * reads exactly the size it expects. Returns 0 when done, -1 on any failure (nothing more
 * is written then). */
static inline int
shs1_drive(struct shs *s, const size_t *in_sizes, size_t n_in)
{
    uint8_t buf[SHS_OUT_MAX];
    size_t n, used, k = 0;
    int rc = SHS_AGAIN;

    for (;;) {
        while ((n = shs_next_out(s, buf)) > 0)
            if (shs1_write(buf, n) != 0)
                return -1;
        if (rc == SHS_DONE)
            return 0;
        if (k == n_in || shs1_read(buf, in_sizes[k]) != 0)
            return -1;
        rc = shs_feed(s, buf, in_sizes[k], &used);
        if (rc < 0 || used != in_sizes[k])
            return -1;
        k++;
    }
}

/* Writes the outcome the suite expects: enc key, enc nonce, dec key, dec nonce. */
static inline int
shs1_write_outcome(const struct shs_session *sess)
{
    uint8_t out[32 + 24 + 32 + 24];

    memcpy(out, sess->enc_key, 32);
    memcpy(out + 32, sess->enc_nonce, 24);
    memcpy(out + 56, sess->dec_key, 32);
    memcpy(out + 88, sess->dec_nonce, 24);
    return shs1_write(out, sizeof(out));
}

#endif
