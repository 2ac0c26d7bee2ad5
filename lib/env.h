/*
 * env: the clock and randomness that code in lib/ and proto/ is given instead of calling
 * time() or randombytes directly. pulld passes env_system(); tests and the simulator pass
 * a deterministic env (env_seeded) so runs repeat exactly.
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

/* Allocation. Code in proto/ and lib/ decoders allocates through these, so tests can make
 * any allocation fail; env may be NULL (the system allocator). env_calloc checks
 * count * size for overflow. */
void *env_alloc(const struct pull_env *env, size_t n);
void *env_calloc(const struct pull_env *env, size_t count, size_t size);
void *env_realloc(const struct pull_env *env, void *p, size_t n);
void env_free(const struct pull_env *env, void *p);

/* env_uniform returns a uniformly distributed integer in [0, upper) (0 if upper is 0). */
uint32_t env_uniform(const struct pull_env *env, uint32_t upper);

/* env_u64 returns 64 random bits. */
uint64_t env_u64(const struct pull_env *env);

#endif
