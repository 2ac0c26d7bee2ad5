/* Tests of lib/keymap.h: put, replace, get, delete, growth and shrinking against a plain
 * array model, with keys that share their first bytes, and iteration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/keymap.h"

#define N 3000

static void
key(unsigned i, uint8_t out[32])
{
    memset(out, 0xab, 32); /* keys that differ only in their last bytes */
    be32enc(out + 28, i);
}

static int
sum_values(void *ctx, const uint8_t k[32], uint32_t v)
{
    (void)k;
    *(uint64_t *)ctx += v;
    return 0;
}

static int
stop_at_first(void *ctx, const uint8_t k[32], uint32_t v)
{
    (void)k;
    (void)v;
    ++*(unsigned *)ctx;
    return 7;
}

static void
test_model(void **state)
{
    static const uint8_t seed[16] = {42};
    static int64_t model[N]; /* -1: absent */
    struct keymap *m = NULL;
    uint32_t r = 99, v;
    uint64_t sum = 0, want = 0;
    unsigned calls = 0;
    (void)state;

    assert_int_equal(keymap_new(seed, &m), 0);
    for (unsigned i = 0; i < N; i++)
        model[i] = -1;
    for (unsigned step = 0; step < 40000; step++) {
        uint8_t k[32];
        unsigned i;
        r = r * 1103515245u + 12345u;
        i = (r >> 8) % N;
        key(i, k);
        switch ((r >> 4) % 4) {
        case 0:
        case 1:
            assert_int_equal(keymap_put(m, k, step), 0);
            model[i] = step;
            break;
        case 2:
            assert_int_equal(keymap_del(m, k), model[i] >= 0);
            model[i] = -1;
            break;
        default:
            assert_int_equal(keymap_get(m, k, &v), model[i] >= 0);
            if (model[i] >= 0)
                assert_int_equal(v, model[i]);
            break;
        }
    }
    for (unsigned i = 0; i < N; i++) {
        uint8_t k[32];
        key(i, k);
        assert_int_equal(keymap_get(m, k, NULL), model[i] >= 0);
        if (model[i] >= 0)
            want += (uint64_t)model[i];
    }
    assert_int_equal(keymap_each(m, sum_values, &sum), 0);
    assert_int_equal(sum, want);
    if (keymap_count(m) > 0) {
        assert_int_equal(keymap_each(m, stop_at_first, &calls), 7);
        assert_int_equal(calls, 1);
    }
    /* emptied, it shrinks and still works */
    for (unsigned i = 0; i < N; i++) {
        uint8_t k[32];
        key(i, k);
        (void)keymap_del(m, k);
    }
    assert_int_equal(keymap_count(m), 0);
    {
        uint8_t k[32];
        key(5, k);
        assert_int_equal(keymap_put(m, k, 5), 0);
        assert_true(keymap_get(m, k, &v));
        assert_int_equal(v, 5);
    }
    keymap_free(m);
    keymap_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_model)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
