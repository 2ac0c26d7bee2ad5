#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

size_t
tu_hex(const char *hex, uint8_t *out, size_t max)
{
    size_t n = 0;
    int hi = -1;

    for (const char *p = hex; *p != '\0'; p++) {
        int v;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            v = *p - 'A' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else {
            if (n < max)
                out[n] = (uint8_t)(hi << 4 | v);
            n++;
            hi = -1;
        }
    }
    return n;
}

char *
tu_tmpdir(void)
{
    char tmpl[] = "/tmp/pull-test-XXXXXX";
    char *d = mkdtemp(tmpl);

    if (d == NULL) {
        perror("mkdtemp");
        abort();
    }
    return strdup(d);
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

void
tu_rmrf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t
failing_now_ms(void *ctx)
{
    return env_now_ms(((struct tu_failing_env *)ctx)->inner);
}

static uint64_t
failing_wall_s(void *ctx)
{
    return env_wall_s(((struct tu_failing_env *)ctx)->inner);
}

static void
failing_random(void *ctx, void *buf, size_t n)
{
    env_random(((struct tu_failing_env *)ctx)->inner, buf, n);
}

static void *
failing_realloc(void *ctx, void *p, size_t n)
{
    struct tu_failing_env *f = ctx;
    void *q;

    f->allocs++;
    if (f->fail_at != 0 && (f->allocs == f->fail_at || (f->fail_after && f->allocs > f->fail_at))) {
        f->failed++;
        return NULL;
    }
    if ((q = env_realloc(f->inner, p, n)) != NULL && p == NULL)
        f->live++;
    return q;
}

static void
failing_free(void *ctx, void *p)
{
    struct tu_failing_env *f = ctx;

    f->live--;
    env_free(f->inner, p);
}

void
tu_failing_init(struct tu_failing_env *f, const struct pull_env *inner)
{
    memset(f, 0, sizeof(*f));
    f->inner = inner;
    f->env.now_ms = failing_now_ms;
    f->env.wall_s = failing_wall_s;
    f->env.random = failing_random;
    f->env.mem_realloc = failing_realloc;
    f->env.mem_free = failing_free;
    f->env.ctx = f;
}

void
tu_failing_arm(struct tu_failing_env *f, uint64_t n, bool after)
{
    f->fail_at = n == 0 ? 0 : f->allocs + n;
    f->fail_after = after;
}
