/* Unit tests for proto/riblt: the index sequence, symbols, estimator and peeling decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/env.h"
#include "lib/err.h"
#include "proto/riblt.h"
#include "testutil.h"

static int
cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, RIBLT_ID_LEN);
}

static void
test_isqrt(void **state)
{
    struct env_seeded e;

    (void)state;
    assert_int_equal(riblt_isqrt(0), 0);
    assert_int_equal(riblt_isqrt(1), 1);
    assert_int_equal(riblt_isqrt(3), 1);
    assert_int_equal(riblt_isqrt(4), 2);
    assert_int_equal(riblt_isqrt(UINT64_MAX), 0xffffffffu);
    assert_int_equal(riblt_isqrt(0xfffffffe00000001ull), 0xffffffffu); /* (2^32-1)^2 */
    assert_int_equal(riblt_isqrt(0xfffffffe00000000ull), 0xfffffffeu);
    env_seeded_init(&e, 1, 0, 0);
    for (int i = 0; i < 100000; i++) {
        uint64_t n = env_u64(&e.env) >> (i % 64), x = riblt_isqrt(n);
        assert_true(x * x <= n);
        assert_true(x == 0xffffffffu || (x + 1) * (x + 1) > n);
    }
}

/* Known answers pin the hash and the index sequence: they are part of the wire protocol
 * (also written in proto/PROTOCOL.md). */
static void
test_known_answers(void **state)
{
    static const uint32_t want[] = {0,  1,   2,   3,   4,   9,   22,  61,
                                    87, 105, 121, 126, 259, 261, 484, 974};
    uint8_t id[RIBLT_ID_LEN], zero_key[RIBLT_KEY_LEN] = {0};
    struct riblt_map m;

    (void)state;
    for (int i = 0; i < RIBLT_ID_LEN; i++)
        id[i] = (uint8_t)i;
    assert_true(riblt_hash(riblt_default_key, id) == 0x6fff4f80ebbd71e1ull);
    assert_true(riblt_hash(zero_key, id) == 0xab631e00063006f5ull);
    riblt_map_init(&m, riblt_hash(riblt_default_key, id));
    assert_int_equal(m.idx, 0);
    for (size_t k = 1; k < sizeof(want) / sizeof(want[0]); k++)
        assert_int_equal(riblt_map_next(&m), want[k]);
    assert_int_equal(riblt_est_index(0), 8);
    assert_int_equal(riblt_est_index(1), 9);
    assert_int_equal(riblt_est_index(7), 27);
    assert_int_equal(riblt_est_index(RIBLT_EST_N - 1), 1u << 20);
    assert_int_equal(riblt_est_index(RIBLT_EST_N), RIBLT_IDX_END);
}

static void
test_map_density(void **state)
{
    enum { IDS = 20000, TOP = 4096 };
    static unsigned hits[TOP];
    struct env_seeded e;
    const uint32_t probe[] = {1, 2, 5, 10, 50, 200, 1000};

    (void)state;
    memset(hits, 0, sizeof(hits));
    env_seeded_init(&e, 2, 0, 0);
    for (int k = 0; k < IDS; k++) {
        struct riblt_map m;
        uint32_t prev, idx;
        riblt_map_init(&m, env_u64(&e.env));
        idx = m.idx;
        assert_int_equal(idx, 0);
        while (idx < TOP) {
            hits[idx]++;
            prev = idx;
            idx = riblt_map_next(&m);
            assert_true(idx > prev); /* strictly increasing */
        }
    }
    assert_int_equal(hits[0], IDS);
    for (size_t i = 0; i < sizeof(probe) / sizeof(probe[0]); i++) {
        /* Average over a window around the probe: within 15% of 1/(1+i/2). */
        uint32_t lo = probe[i], hi = probe[i] + probe[i] / 4 + 1;
        double got = 0, model = 0;
        for (uint32_t j = lo; j < hi; j++) {
            got += hits[j] / (double)IDS;
            model += riblt_density(j);
        }
        assert_true(got > 0.85 * model && got < 1.15 * model);
    }
}

static void
test_map_end(void **state)
{
    struct riblt_map m = {12345, RIBLT_IDX_LIMIT - 1};

    (void)state;
    assert_int_equal(riblt_map_next(&m), RIBLT_IDX_END);
    assert_int_equal(riblt_map_next(&m), RIBLT_IDX_END);
}

static void
test_sym_wire(void **state)
{
    struct riblt_sym s, t;
    uint8_t w[RIBLT_SYM_WIRE];

    (void)state;
    memset(&s, 0, sizeof(s));
    for (int i = 0; i < RIBLT_ID_LEN; i++)
        s.sum[i] = (uint8_t)(i * 7);
    s.hash = 0x0102030405060708ull;
    s.count = 70000; /* travels as 70000 mod 65536 */
    riblt_sym_encode(&s, w);
    assert_int_equal(w[32], 0x01);
    assert_int_equal(w[39], 0x08);
    riblt_sym_decode(w, &t);
    assert_int_equal(t.count, 70000 - 65536);
    assert_true(riblt_sym_equal16(&s, &t));
    s.count = -1;
    riblt_sym_encode(&s, w);
    assert_int_equal(w[40], 0xff);
    assert_int_equal(w[41], 0xff);
    riblt_sym_decode(w, &t);
    assert_true(riblt_sym_equal16(&s, &t));
    t.hash ^= 1;
    assert_false(riblt_sym_equal16(&s, &t));
}

static void
test_est_layout(void **state)
{
    struct riblt_sym est[RIBLT_EST_N];
    uint8_t a[RIBLT_EST_BYTES], b[RIBLT_EST_BYTES];

    (void)state;
    for (unsigned j = 1; j < RIBLT_EST_N; j++)
        assert_true(riblt_est_index(j) > riblt_est_index(j - 1));
    assert_int_equal(riblt_est_first(0), 0);
    assert_int_equal(riblt_est_first(9), 1);
    assert_int_equal(riblt_est_first(10), 2);
    assert_int_equal(riblt_est_first((1u << 20) + 1), RIBLT_EST_N);
    memset(est, 0, sizeof(est));
    for (unsigned j = 0; j < RIBLT_EST_N; j++)
        est[j].hash = (uint64_t)(j % 16) << 60;
    riblt_est_pack(est, a);
    for (unsigned j = 0; j < RIBLT_EST_N; j++)
        assert_int_equal(riblt_est_nibble(a, j), j % 16);
    assert_int_equal(a[RIBLT_EST_BYTES - 1] & 0x0f, 0);
    memcpy(b, a, sizeof(a));
    assert_int_equal(riblt_est_equal(a, b), RIBLT_EST_N);
    b[0] ^= 0x10;
    assert_int_equal(riblt_est_equal(a, b), RIBLT_EST_N - 1);
    /* More equal samples means a smaller difference. */
    for (unsigned k = 6; k < RIBLT_EST_N; k++)
        assert_true(riblt_estimate(k) <= riblt_estimate(k - 1));
    assert_int_equal(riblt_estimate(RIBLT_EST_N), 1);
    assert_int_equal(riblt_estimate(0), 1u << 22);
}

/* Random ids from a seeded env. */
static void
rand_ids(struct env_seeded *e, uint8_t (*ids)[RIBLT_ID_LEN], size_t n)
{
    env_random(&e->env, ids, n * RIBLT_ID_LEN);
}

/* The estimator lands within a factor of 4 of d nearly always (it only sizes round 1). */
static void
test_estimator_accuracy(void **state)
{
    static const uint32_t ds[] = {3, 30, 300, 3000};
    struct env_seeded e;
    uint8_t(*ids)[RIBLT_ID_LEN] = malloc(3000 * RIBLT_ID_LEN);

    (void)state;
    assert_non_null(ids);
    env_seeded_init(&e, 3, 0, 0);
    for (size_t di = 0; di < sizeof(ds) / sizeof(ds[0]); di++) {
        int good = 0;
        for (int t = 0; t < 20; t++) {
            struct riblt_sym ea[RIBLT_EST_N], eb[RIBLT_EST_N];
            struct riblt_acc aa = {NULL, 0, 0, ea, 0}, ab = {NULL, 0, 0, eb, 0};
            uint8_t pa[RIBLT_EST_BYTES], pb[RIBLT_EST_BYTES];
            uint32_t est;
            memset(ea, 0, sizeof(ea));
            memset(eb, 0, sizeof(eb));
            rand_ids(&e, ids, ds[di]);
            for (uint32_t k = 0; k < ds[di]; k++)
                riblt_acc_apply((k & 1) ? &aa : &ab, ids[k], riblt_hash(riblt_default_key, ids[k]),
                                1);
            riblt_est_pack(ea, pa);
            riblt_est_pack(eb, pb);
            est = riblt_estimate(riblt_est_equal(pa, pb));
            good += est * 4 >= ds[di] && est <= 4 * ds[di];
        }
        assert_true(good >= 18);
    }
    free(ids);
}

/*
 * Builds A = common + only_a, B = common + only_b as coded symbols [0, m) and decodes A's
 * symbols against B's (B is "local"). Returns the number of symbols needed, or 0.
 */
static uint32_t
decode_case(struct env_seeded *e, size_t common, size_t na, size_t nb, uint32_t m, bool check)
{
    size_t total = common + na + nb;
    uint8_t(*ids)[RIBLT_ID_LEN] = malloc((total ? total : 1) * RIBLT_ID_LEN);
    struct riblt_sym *sa = calloc(m, sizeof(*sa)), *sb = calloc(m, sizeof(*sb));
    struct riblt_acc aa = {sa, 0, m, NULL, RIBLT_EST_N}, ab = {sb, 0, m, NULL, RIBLT_EST_N};
    const uint8_t(*rem)[RIBLT_ID_LEN], (*loc)[RIBLT_ID_LEN];
    size_t n_rem, n_loc;
    struct riblt_dec *d;
    uint32_t used = 0;

    assert_non_null(ids);
    assert_non_null(sa);
    assert_non_null(sb);
    rand_ids(e, ids, total);
    for (size_t k = 0; k < total; k++) {
        uint64_t h = riblt_hash(riblt_default_key, ids[k]);
        if (k < common + na)
            riblt_acc_apply(&aa, ids[k], h, 1);
        if (k < common || k >= common + na)
            riblt_acc_apply(&ab, ids[k], h, 1);
    }
    assert_int_equal(riblt_dec_new(NULL, riblt_default_key, m, &d), 0);
    for (uint32_t i = 0; i < m; i++)
        assert_int_equal(riblt_dec_set_local(d, i, &sb[i]), 0);
    for (uint32_t i = 0; i < m; i++) {
        uint8_t w[RIBLT_SYM_WIRE];
        riblt_sym_encode(&sa[i], w);
        assert_int_equal(riblt_dec_add_remote(d, w), 0);
        assert_int_equal(riblt_dec_peel(d), 0);
        if (riblt_dec_done(d)) {
            used = i + 1;
            break;
        }
    }
    if (used != 0 && check) {
        assert_int_equal(riblt_dec_result(d, &rem, &n_rem, &loc, &n_loc), 0);
        assert_int_equal(n_rem, na);
        assert_int_equal(n_loc, nb);
        qsort(ids + common, na, RIBLT_ID_LEN, cmp_id);
        qsort(ids + common + na, nb, RIBLT_ID_LEN, cmp_id);
        if (na)
            assert_memory_equal(rem, ids + common, na * RIBLT_ID_LEN);
        if (nb)
            assert_memory_equal(loc, ids + common + na, nb * RIBLT_ID_LEN);
    }
    riblt_dec_free(d);
    free(ids);
    free(sa);
    free(sb);
    return used;
}

static void
test_peel(void **state)
{
    struct env_seeded e;

    (void)state;
    env_seeded_init(&e, 4, 0, 0);
    /* d = 0: symbol 0 already matches. */
    assert_int_equal(decode_case(&e, 500, 0, 0, 64, true), 1);
    /* d = 1, on either side: symbol 0 is pure. */
    assert_int_equal(decode_case(&e, 500, 1, 0, 64, true), 1);
    assert_int_equal(decode_case(&e, 500, 0, 1, 64, true), 1);
    for (int t = 0; t < 20; t++) {
        assert_int_not_equal(decode_case(&e, 300, 1, 1, 256, true), 0);
        assert_int_not_equal(decode_case(&e, 300, 2, 0, 256, true), 0);
        assert_int_not_equal(decode_case(&e, 300, 5, 5, 512, true), 0);
    }
    /* d = 1000, both sides, and one-sided: ~1.4 symbols per id. */
    {
        uint32_t used = decode_case(&e, 2000, 500, 500, 3000, true);
        assert_true(used > 1000 && used < 1800);
        used = decode_case(&e, 100, 1000, 0, 3000, true);
        assert_true(used > 1000 && used < 1800);
    }
    /* Too few symbols: not done, and no false "done". */
    assert_int_equal(decode_case(&e, 100, 300, 300, 200, false), 0);
}

static void
test_dec_limits(void **state)
{
    struct riblt_dec *d;
    uint8_t w[RIBLT_SYM_WIRE];
    struct riblt_sym s;

    (void)state;
    assert_int_equal(riblt_dec_new(NULL, riblt_default_key, 4, &d), 0);
    memset(&s, 0, sizeof(s));
    memset(w, 0, sizeof(w));
    assert_int_equal(riblt_dec_set_local(d, 4, &s), PULL_ERR_INVAL);
    for (int i = 0; i < 4; i++)
        assert_int_equal(riblt_dec_add_remote(d, w), 0);
    assert_int_equal(riblt_dec_add_remote(d, w), PULL_ERR_QUOTA);
    assert_int_equal(riblt_dec_set_local(d, 1, &s), PULL_ERR_INVAL); /* already received */
    assert_int_equal(riblt_dec_peel(d), 0);
    assert_true(riblt_dec_done(d));
    riblt_dec_free(d);
    riblt_dec_free(NULL);
}

/* A hostile encoder that makes every symbol look pure cannot make the decoder loop or
 * decode unboundedly many ids. */
static void
test_dec_garbage(void **state)
{
    struct env_seeded e;
    struct riblt_dec *d;
    int rc = 0;

    (void)state;
    env_seeded_init(&e, 5, 0, 0);
    assert_int_equal(riblt_dec_new(NULL, riblt_default_key, 2000, &d), 0);
    for (int i = 0; i < 2000 && rc == 0; i++) {
        struct riblt_sym s;
        uint8_t w[RIBLT_SYM_WIRE];
        memset(&s, 0, sizeof(s));
        env_random(&e.env, s.sum, RIBLT_ID_LEN);
        s.hash = riblt_hash(riblt_default_key, s.sum);
        s.count = (i & 1) ? 1 : -1;
        riblt_sym_encode(&s, w);
        assert_int_equal(riblt_dec_add_remote(d, w), 0);
        rc = riblt_dec_peel(d);
        assert_true(rc == 0 || rc == PULL_ERR_PROTOCOL);
    }
    assert_true(riblt_dec_decoded(d) <= (size_t)riblt_dec_received(d) + 16);
    riblt_dec_free(d);
}

/* Two ids with the same hash share their index sequence: they never peel, and the
 * decoder says so (riblt_dec_stuck) instead of asking for symbols forever. */
static void
test_dec_stuck(void **state)
{
    uint8_t x[RIBLT_ID_LEN], y[RIBLT_ID_LEN];
    struct riblt_sym *sym = calloc(300, sizeof(*sym));
    struct riblt_dec *d;
    struct riblt_map m;
    uint64_t h = 0x1234567890abcdefull;
    uint32_t idx = 0;

    (void)state;
    assert_non_null(sym);
    memset(x, 0x11, sizeof(x));
    memset(y, 0x22, sizeof(y));
    riblt_map_init(&m, h);
    while (idx < 300) {
        riblt_sym_apply(&sym[idx], x, h, 1);
        riblt_sym_apply(&sym[idx], y, h, 1);
        idx = riblt_map_next(&m);
    }
    assert_int_equal(riblt_dec_new(NULL, riblt_default_key, 300, &d), 0);
    for (int i = 0; i < 300; i++) {
        uint8_t w[RIBLT_SYM_WIRE];
        riblt_sym_encode(&sym[i], w);
        assert_int_equal(riblt_dec_add_remote(d, w), 0);
    }
    assert_int_equal(riblt_dec_peel(d), 0);
    assert_false(riblt_dec_done(d));
    assert_true(riblt_dec_stuck(d, 8));
    riblt_dec_free(d);
    free(sym);
}

/* riblt_dec_estimate from raw emptiness: close to d once enough symbols arrived. */
static void
test_dec_estimate(void **state)
{
    enum { D = 2000, M = 1500 };
    struct env_seeded e;
    uint8_t(*ids)[RIBLT_ID_LEN] = malloc(D * RIBLT_ID_LEN);
    struct riblt_sym *s = calloc(M, sizeof(*s));
    struct riblt_acc a = {s, 0, M, NULL, RIBLT_EST_N};
    struct riblt_dec *d;
    double est;

    (void)state;
    assert_non_null(ids);
    assert_non_null(s);
    env_seeded_init(&e, 6, 0, 0);
    rand_ids(&e, ids, D);
    for (int k = 0; k < D; k++)
        riblt_acc_apply(&a, ids[k], riblt_hash(riblt_default_key, ids[k]), (k & 1) ? 1 : -1);
    assert_int_equal(riblt_dec_new(NULL, riblt_default_key, M, &d), 0);
    assert_true(riblt_dec_estimate(d) < 0);
    for (int i = 0; i < M; i++) {
        uint8_t w[RIBLT_SYM_WIRE];
        riblt_sym_encode(&s[i], w);
        assert_int_equal(riblt_dec_add_remote(d, w), 0);
    }
    assert_int_equal(riblt_dec_peel(d), 0);
    assert_false(riblt_dec_done(d));
    est = riblt_dec_estimate(d);
    assert_true(est > 0.8 * D && est < 1.6 * D);
    riblt_dec_free(d);
    free(ids);
    free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_isqrt),
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_map_density),
        cmocka_unit_test(test_map_end),
        cmocka_unit_test(test_sym_wire),
        cmocka_unit_test(test_est_layout),
        cmocka_unit_test(test_estimator_accuracy),
        cmocka_unit_test(test_peel),
        cmocka_unit_test(test_dec_limits),
        cmocka_unit_test(test_dec_garbage),
        cmocka_unit_test(test_dec_stuck),
        cmocka_unit_test(test_dec_estimate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
