/*
 * env: the clock, randomness and memory that code in lib/ and proto/ is given instead of
 * calling time(), randombytes or malloc directly. pulld passes env_system(); tests and the
 * simulator pass a deterministic env (env_seeded) so runs repeat exactly, and the
 * allocation-failure tests wrap one in an env that fails chosen allocations
 * (tests/unit/testutil.h, struct tu_failing_env).
 *
 * Memory. Every heap block of proto/ and of lib/'s writers and decoders is taken with
 * env_alloc / env_calloc / env_realloc and given back with env_free, through the same env:
 * a block must be freed through the env that allocated it (code that keeps blocks keeps
 * the env pointer with them). A NULL env means the C library's allocator, for callers that
 * have no env. The allocator hooks of an env may be NULL too (env_system, env_seeded, and
 * any env built without them): the C library again. Allocation never returns NULL for a
 * zero size (it asks for one byte), so NULL always means "out of memory" and the caller
 * returns PULL_ERR_NOMEM.
 */
#ifndef PULL_ENV_H
#define PULL_ENV_H

#include <stddef.h>
#include <stdint.h>

struct pull_env {
    /* Monotonic milliseconds. */
    uint64_t (*now_ms)(void *ctx);
    /* Wall clock, unix seconds (record created/expires). */
    uint64_t (*wall_s)(void *ctx);
    /* Fill buf with n random bytes (cryptographically strong in env_system()). */
    void (*random)(void *ctx, void *buf, size_t n);
    void *ctx;
    /* Memory, or both NULL for the C library's. mem_realloc has realloc's contract with
     * n > 0: p NULL allocates n bytes, else resizes p to n bytes keeping its contents;
     * NULL on failure (p is then untouched). mem_free releases a block (never NULL). */
    void *(*mem_realloc)(void *ctx, void *p, size_t n);
    void (*mem_free)(void *ctx, void *p);
};

/* env_system returns the real clock and libsodium's randombytes. sodium_init() must have
 * succeeded before it is used. It is in pullcore (lib/env_system.c), not pullbase: proto/
 * can't reach the real clock except through the env it is given. */
const struct pull_env *env_system(void);

/* A deterministic env: a ChaCha20-based stream from a 64-bit seed and a manual clock. */
struct env_seeded {
    struct pull_env env;
    uint64_t now_ms;
    uint64_t wall_s;
    uint8_t key[32];
    uint64_t counter;
};

/* env_seeded_init fills e so that e->env draws from seed, with the clock at now_ms and
 * wall_s (advance them by assigning the fields). */
void env_seeded_init(struct env_seeded *e, uint64_t seed, uint64_t now_ms, uint64_t wall_s);

static inline uint64_t
env_now_ms(const struct pull_env *env)
{
    return env->now_ms(env->ctx);
}

static inline uint64_t
env_wall_s(const struct pull_env *env)
{
    return env->wall_s(env->ctx);
}

static inline void
env_random(const struct pull_env *env, void *buf, size_t n)
{
    env->random(env->ctx, buf, n);
}

/* env_alloc returns n bytes of uninitialised memory from e's allocator (e NULL: the C
 * library's), or NULL if there is none. The caller frees it with env_free(e, ...). */
void *env_alloc(const struct pull_env *e, size_t n);

/* env_calloc returns count * size zeroed bytes, or NULL if there is no memory or the
 * product overflows size_t. */
void *env_calloc(const struct pull_env *e, size_t count, size_t size);

/* env_realloc resizes a block of e's (p NULL: allocates) to n bytes. Returns the new block,
 * or NULL with p still valid and unchanged, as realloc(3). */
void *env_realloc(const struct pull_env *e, void *p, size_t n);

/* env_free frees a block that e allocated; env_free(e, NULL) does nothing. */
void env_free(const struct pull_env *e, void *p);

/* env_uniform returns a uniformly distributed integer in [0, upper) (0 if upper is 0). */
uint32_t env_uniform(const struct pull_env *env, uint32_t upper);

/* env_u64 returns 64 random bits. */
uint64_t env_u64(const struct pull_env *env);

#endif
