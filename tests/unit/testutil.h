/* Helpers shared by the unit tests (linked into every tests/unit/test_*.c). */
#ifndef PULL_TESTUTIL_H
#define PULL_TESTUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/env.h"

/* tu_hex decodes a hex string (spaces allowed) into out; returns the byte count. */
size_t tu_hex(const char *hex, uint8_t *out, size_t max);

/* tu_tmpdir creates a fresh temporary directory and returns its path (static buffer per
 * call index: copy it if you need several). tu_rmrf removes a tree. */
char *tu_tmpdir(void);
void tu_rmrf(const char *path);

/*
 * An env whose allocator fails on demand, for allocation-failure tests. It takes its
 * clock, randomness and memory from an inner env (NULL: the C library's memory; the clock
 * and randomness then must not be used), counts every allocation request (a new block or a
 * resize) and every block still live, and refuses request number fail_at (1-based; 0:
 * never) and, with fail_after, every request after it too. Give &f->env to the code under
 * test; change fail_at, fail_after and inner at any time.
 */
struct tu_failing_env {
    struct pull_env env;
    const struct pull_env *inner;
    uint64_t fail_at;
    bool fail_after;
    uint64_t allocs; /* requests so far, refused ones included */
    uint64_t failed; /* requests refused */
    int64_t live;    /* blocks allocated and not yet freed */
};

/* tu_failing_init sets f up to pass everything to inner and fail nothing. */
void tu_failing_init(struct tu_failing_env *f, const struct pull_env *inner);

/* tu_failing_arm makes the n-th request from now fail (n >= 1), and every one after it if
 * after is set; n == 0 disarms. */
void tu_failing_arm(struct tu_failing_env *f, uint64_t n, bool after);

#endif
