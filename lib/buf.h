/*
 * buf: bounded byte reader and growable byte writer.
 *
 * The reader (struct pull_rd) is the only way pull looks at bytes that came from outside:
 * every read checks `n > remaining` before touching memory, never computes `off + n`, and
 * fails with PULL_ERR_TRUNCATED instead of reading past the end. It does not allocate.
 *
 * The writer (struct pull_wb) grows on the heap up to a caller-chosen maximum, through the
 * allocator of an env (wb_init_env) or the C library's (wb_init). Errors are sticky: after
 * a failed append every further append is a no-op and wb_error() reports the first error,
 * so a sequence of appends can be checked once at the end; a failed growth leaves the
 * bytes already written in place (PULL_ERR_NOMEM).
 */
#ifndef PULL_BUF_H
#define PULL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pull_env;

struct pull_rd {
    const uint8_t *p;
    size_t len;
    size_t off;
};

/* rd_init points r at len bytes of p; the bytes must outlive every read from r. */
void rd_init(struct pull_rd *r, const void *p, size_t len);

/* rd_left returns how many bytes remain unread. */
size_t rd_left(const struct pull_rd *r);

/* rd_bytes returns in *out a pointer to the next n bytes (inside the input) and advances.
 * Returns PULL_ERR_TRUNCATED if fewer than n remain (r is then unchanged). */
int rd_bytes(struct pull_rd *r, size_t n, const uint8_t **out);

/* rd_copy copies the next n bytes into out and advances. */
int rd_copy(struct pull_rd *r, void *out, size_t n);

int rd_u8(struct pull_rd *r, uint8_t *v);
int rd_u16be(struct pull_rd *r, uint16_t *v);
int rd_u32be(struct pull_rd *r, uint32_t *v);
int rd_u64be(struct pull_rd *r, uint64_t *v);

struct pull_wb {
    uint8_t *p;
    size_t len;
    size_t cap;
    size_t max; /* appends that would exceed max fail with PULL_ERR_TOO_BIG */
    int err;
    const struct pull_env *env; /* allocator of p; NULL: the C library's */
};

/* wb_init prepares an empty writer that may grow up to max bytes (0 means 1 GiB), with
 * the C library's allocator. */
void wb_init(struct pull_wb *w, size_t max);

/* wb_init_env is wb_init with memory from env's allocator (lib/env.h; NULL: the C
 * library's). env must outlive the writer's buffer, stolen or not. */
void wb_init_env(struct pull_wb *w, const struct pull_env *env, size_t max);

/* wb_release frees the writer's memory; the writer may be reused (same max and env), or
 * set up again with wb_init. */
void wb_release(struct pull_wb *w);

/* wb_reset empties the writer and clears its error, keeping its memory. */
void wb_reset(struct pull_wb *w);

/* wb_put appends n bytes. Returns 0, PULL_ERR_TOO_BIG or PULL_ERR_NOMEM (and stays failed). */
int wb_put(struct pull_wb *w, const void *p, size_t n);
int wb_u8(struct pull_wb *w, uint8_t v);
int wb_u16be(struct pull_wb *w, uint16_t v);
int wb_u32be(struct pull_wb *w, uint32_t v);
int wb_u64be(struct pull_wb *w, uint64_t v);

/* wb_reserve makes room for n more bytes and returns a pointer to them (the caller fills
 * them and calls wb_commit with how many it used), or NULL with the error recorded. */
uint8_t *wb_reserve(struct pull_wb *w, size_t n);
void wb_commit(struct pull_wb *w, size_t n);

/* wb_error returns the first error of any append since init/reset, or 0. */
int wb_error(const struct pull_wb *w);

/* wb_steal hands the buffer to the caller and empties w. The caller frees it with
 * env_free(w->env, p): free() for a writer from wb_init. */
uint8_t *wb_steal(struct pull_wb *w, size_t *len);

/* utf8_valid reports whether p[0..n) is well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF). NUL bytes are valid UTF-8; callers that forbid them check. */
bool utf8_valid(const void *p, size_t n);

/* be64enc/be64dec and friends: big-endian integers to and from memory. */
void be16enc(void *p, uint16_t v);
void be32enc(void *p, uint32_t v);
void be64enc(void *p, uint64_t v);
uint16_t be16dec(const void *p);
uint32_t be32dec(const void *p);
uint64_t be64dec(const void *p);

#endif
