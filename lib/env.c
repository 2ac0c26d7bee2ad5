#include "lib/env.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"

static uint64_t
seeded_now_ms(void *ctx)
{
    return ((struct env_seeded *)ctx)->now_ms;
}

static uint64_t
seeded_wall_s(void *ctx)
{
    return ((struct env_seeded *)ctx)->wall_s;
}

static void
seeded_random(void *ctx, void *buf, size_t n)
{
    struct env_seeded *e = ctx;
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];

    be64enc(nonce, e->counter++);
    memset(buf, 0, n);
    crypto_stream_chacha20_xor(buf, buf, n, nonce, e->key);
}

void
env_seeded_init(struct env_seeded *e, uint64_t seed, uint64_t now_ms, uint64_t wall_s)
{
    memset(e, 0, sizeof(*e));
    be64enc(e->key, seed);
    e->now_ms = now_ms;
    e->wall_s = wall_s;
    e->env.now_ms = seeded_now_ms;
    e->env.wall_s = seeded_wall_s;
    e->env.random = seeded_random;
    e->env.ctx = e;
}

uint64_t
env_u64(const struct pull_env *env)
{
    uint8_t b[8];

    env_random(env, b, sizeof(b));
    return be64dec(b);
}

uint32_t
env_uniform(const struct pull_env *env, uint32_t upper)
{
    uint32_t min, v;
    uint8_t b[4];

    if (upper < 2)
        return 0;
    min = (uint32_t)(-upper) % upper; /* reject the biased low range */
    do {
        env_random(env, b, sizeof(b));
        v = be32dec(b);
    } while (v < min);
    return v % upper;
}

void *
env_alloc(const struct pull_env *env, size_t n)
{
    (void)env;
    return malloc(n != 0 ? n : 1);
}

void *
env_calloc(const struct pull_env *env, size_t count, size_t size)
{
    (void)env;
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    return calloc(count != 0 ? count : 1, size != 0 ? size : 1);
}

void *
env_realloc(const struct pull_env *env, void *p, size_t n)
{
    (void)env;
    return realloc(p, n != 0 ? n : 1);
}

void
env_free(const struct pull_env *env, void *p)
{
    (void)env;
    free(p);
}
