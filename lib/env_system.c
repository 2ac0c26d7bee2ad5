/* env_system: the real clocks and libsodium's randombytes. It lives in pullcore, out of
 * reach of proto/, whose engines only see the env they are given (lib/CMakeLists.txt). */
#include "lib/env.h"

#include <sodium.h>
#include <time.h>

static uint64_t
sys_now_ms(void *ctx)
{
    struct timespec ts;

    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t
sys_wall_s(void *ctx)
{
    (void)ctx;
    return (uint64_t)time(NULL);
}

static void
sys_random(void *ctx, void *buf, size_t n)
{
    (void)ctx;
    randombytes_buf(buf, n);
}

static const struct pull_env system_env = {
    .now_ms = sys_now_ms,
    .wall_s = sys_wall_s,
    .random = sys_random,
    .ctx = NULL,
};

const struct pull_env *
env_system(void)
{
    return &system_env;
}
