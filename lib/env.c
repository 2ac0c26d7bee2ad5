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
env_realloc(const struct pull_env *e, void *p, size_t n)
{
    if (n == 0)
        n = 1; /* NULL must only ever mean "no memory" */
    if (e == NULL || e->mem_realloc == NULL)
        return realloc(p, n);
    return e->mem_realloc(e->ctx, p, n);
}

void *
env_alloc(const struct pull_env *e, size_t n)
{
    return env_realloc(e, NULL, n);
}

void *
env_calloc(const struct pull_env *e, size_t count, size_t size)
{
    void *p;

    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    if ((p = env_alloc(e, count * size)) != NULL)
        memset(p, 0, count * size);
    return p;
}

void
env_free(const struct pull_env *e, void *p)
{
    if (p == NULL)
        return;
    if (e == NULL || e->mem_free == NULL)
        free(p);
    else
        e->mem_free(e->ctx, p);
}
