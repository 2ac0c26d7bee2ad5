/* Tests of the personal trust graph (lib/trust.h): distances from me, the self-attesting
 * clique that gains nothing, evidence counted once, removals, shortest paths in a stable
 * order, independent paths, the hop limit, and the incremental distances against a
 * breadth-first search from scratch over random graphs with additions and removals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/trust.h"

static const uint8_t seed[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* Key i: 32 bytes whose first byte orders them (key 0 is me). */
static void
key(unsigned i, uint8_t out[32])
{
    memset(out, 0, 32);
    out[0] = (uint8_t)(i >> 8);
    out[1] = (uint8_t)i;
    out[31] = 0x5a;
}

static void
evid(unsigned i, uint8_t out[32])
{
    memset(out, 0xee, 32);
    be32enc(out, i);
}

static void
dyad_of(unsigned i, uint8_t out[TRUST_DYAD_BYTES])
{
    memset(out, 0xdd, TRUST_DYAD_BYTES);
    be32enc(out, i);
}

/* add evidence e (dyad d) between people a and b */
static int
add(struct trust *t, unsigned e, unsigned a, unsigned b, unsigned d)
{
    uint8_t id[32], ka[32], kb[32], dy[TRUST_DYAD_BYTES];

    evid(e, id);
    key(a, ka);
    key(b, kb);
    dyad_of(d, dy);
    return trust_add(t, id, ka, kb, dy);
}

static int
rm(struct trust *t, unsigned e)
{
    uint8_t id[32];

    evid(e, id);
    return trust_remove(t, id);
}

static unsigned
dist(struct trust *t, unsigned i)
{
    uint8_t k[32];

    key(i, k);
    return trust_distance(t, k);
}

static struct trust *
graph(void)
{
    struct trust *t = NULL;
    uint8_t me[32];

    key(0, me);
    assert_int_equal(trust_new(me, seed, &t), 0);
    return t;
}

static void
test_distances(void **state)
{
    struct trust *t = graph();
    uint8_t k[32];
    (void)state;

    assert_int_equal(dist(t, 0), 0);
    assert_int_equal(dist(t, 1), TRUST_NONE); /* unknown */
    /* me - A - B - C */
    assert_int_equal(add(t, 1, 0, 1, 1), 1);
    assert_int_equal(add(t, 2, 1, 2, 2), 1);
    assert_int_equal(add(t, 3, 3, 2, 3), 1);
    assert_int_equal(dist(t, 1), 1);
    assert_int_equal(dist(t, 2), 2);
    assert_int_equal(dist(t, 3), 3);
    /* a self-attesting pair (two keys of one person): no path from me, however many
     * attestations they make of each other */
    for (unsigned e = 10; e < 20; e++)
        assert_int_equal(add(t, e, 50, 51, e), 1);
    assert_int_equal(dist(t, 50), TRUST_NONE);
    assert_int_equal(dist(t, 51), TRUST_NONE);
    /* ... until someone I reach deals with one of them: then they are that far */
    assert_int_equal(add(t, 30, 3, 50, 30), 1);
    assert_int_equal(dist(t, 50), 4);
    assert_int_equal(dist(t, 51), 5);
    /* a shortcut shortens everything behind it */
    assert_int_equal(add(t, 31, 0, 3, 31), 1);
    assert_int_equal(dist(t, 3), 1);
    assert_int_equal(dist(t, 50), 2);
    assert_int_equal(dist(t, 51), 3);
    key(51, k);
    assert_int_equal(trust_distance8(t, be64dec(k)), 3);
    assert_int_equal(trust_distance8(t, 0x123456789abcdefull), TRUST_NONE);
    /* a == b is no evidence */
    assert_int_equal(add(t, 40, 7, 7, 40), PULL_ERR_INVAL);
    trust_free(t);
}

static void
test_evidence(void **state)
{
    struct trust *t = graph();
    uint8_t a[32], b[32], id[32];
    struct trust_stats st;
    (void)state;

    key(1, a);
    key(2, b);
    assert_int_equal(add(t, 1, 0, 1, 1), 1);
    assert_int_equal(add(t, 1, 0, 1, 1), 0); /* the same attestation twice */
    evid(1, id);
    assert_true(trust_has(t, id));
    /* both sides' attestations of one dyad: one dyad */
    assert_int_equal(add(t, 2, 1, 0, 1), 1);
    key(0, b);
    assert_int_equal(trust_dyads(t, a, b), 1);
    /* another dyad between them */
    assert_int_equal(add(t, 3, 0, 1, 7), 1);
    assert_int_equal(trust_dyads(t, a, b), 2);
    trust_get_stats(t, &st);
    assert_int_equal(st.edges, 1);
    assert_int_equal(st.evidence, 3);
    assert_int_equal(st.reachable, 1);
    /* the edge lasts as long as one piece of evidence does */
    assert_int_equal(rm(t, 1), 1);
    assert_int_equal(rm(t, 1), 0);
    assert_int_equal(dist(t, 1), 1);
    assert_int_equal(rm(t, 3), 1);
    assert_int_equal(dist(t, 1), 1);
    assert_int_equal(rm(t, 2), 1);
    assert_int_equal(dist(t, 1), TRUST_NONE);
    trust_get_stats(t, &st);
    assert_int_equal(st.edges, 0);
    assert_int_equal(st.evidence, 0);
    assert_int_equal(st.reachable, 0);
    assert_true(st.recomputes >= 1);
    /* evidence can come back */
    assert_int_equal(add(t, 1, 0, 1, 1), 1);
    assert_int_equal(dist(t, 1), 1);
    trust_free(t);
}

static void
test_removal_lengthens(void **state)
{
    struct trust *t = graph();
    (void)state;

    /* me - 1 - 2 - 3 and me - 4 - 5 - 6 - 3 */
    add(t, 1, 0, 1, 1);
    add(t, 2, 1, 2, 2);
    add(t, 3, 2, 3, 3);
    add(t, 4, 0, 4, 4);
    add(t, 5, 4, 5, 5);
    add(t, 6, 5, 6, 6);
    add(t, 7, 6, 3, 7);
    assert_int_equal(dist(t, 3), 3);
    assert_int_equal(rm(t, 2), 1); /* 1 - 2 goes: 3 is now reached the long way */
    assert_int_equal(dist(t, 2), 5);
    assert_int_equal(dist(t, 3), 4);
    assert_int_equal(rm(t, 4), 1);
    assert_int_equal(dist(t, 3), TRUST_NONE);
    assert_int_equal(dist(t, 1), 1);
    trust_free(t);
}

static void
test_hops_max(void **state)
{
    struct trust *t = graph();
    (void)state;

    for (unsigned i = 0; i < TRUST_HOPS_MAX + 2; i++)
        assert_int_equal(add(t, i + 1, i, i + 1, i + 1), 1);
    assert_int_equal(dist(t, TRUST_HOPS_MAX), TRUST_HOPS_MAX);
    assert_int_equal(dist(t, TRUST_HOPS_MAX + 1), TRUST_NONE);
    trust_free(t);
}

static void
test_paths(void **state)
{
    struct trust *t = graph();
    uint8_t paths[8 * TRUST_HOPS_MAX][32], k[32], want[32];
    unsigned n;
    (void)state;

    /* a diamond: me - 2 - 9, me - 1 - 9 (added in that order), and 9 - 10 */
    add(t, 1, 0, 2, 1);
    add(t, 2, 2, 9, 2);
    add(t, 3, 0, 1, 3);
    add(t, 4, 1, 9, 4);
    add(t, 5, 9, 10, 5);
    key(10, k);
    assert_int_equal(trust_paths(t, k, paths, 8), 2);
    /* in key order: via 1 first */
    key(1, want);
    assert_memory_equal(paths[0], want, 32);
    key(9, want);
    assert_memory_equal(paths[1], want, 32);
    assert_memory_equal(paths[2], k, 32);
    key(2, want);
    assert_memory_equal(paths[TRUST_HOPS_MAX], want, 32);
    assert_memory_equal(paths[TRUST_HOPS_MAX + 2], k, 32);
    assert_int_equal(trust_paths(t, k, paths, 1), 1); /* at most max */
    /* two ways to 9 that share nobody; everything to 10 goes through 9 */
    key(9, k);
    assert_int_equal(trust_independent(t, k, &n), 0);
    assert_int_equal(n, 2);
    key(10, k);
    assert_int_equal(trust_independent(t, k, &n), 0);
    assert_int_equal(n, 1);
    /* a longer way to 10 that avoids 9 (me-3-4-10): now 2, as me-1-9-10 and me-2-9-10
     * both need 9 */
    add(t, 6, 0, 3, 6);
    add(t, 7, 3, 4, 7);
    add(t, 8, 4, 10, 8);
    assert_int_equal(trust_independent(t, k, &n), 0);
    assert_int_equal(n, 2);
    /* nobody for the unreachable and for me */
    key(77, k);
    assert_int_equal(trust_paths(t, k, paths, 8), 0);
    assert_int_equal(trust_independent(t, k, &n), 0);
    assert_int_equal(n, 0);
    key(0, k);
    assert_int_equal(trust_paths(t, k, paths, 8), 0);
    trust_free(t);
}

static int
count_neighbor(void *ctx, const uint8_t other[32], unsigned dyads)
{
    unsigned *sum = ctx;

    (void)other;
    *sum += dyads;
    return 0;
}

static void
test_neighbors(void **state)
{
    struct trust *t = graph();
    uint8_t k[32];
    unsigned sum = 0;
    (void)state;

    add(t, 1, 5, 6, 1);
    add(t, 2, 6, 5, 1); /* the other side's attestation of the same dyad */
    add(t, 3, 5, 7, 2);
    add(t, 4, 5, 6, 3);
    key(5, k);
    trust_neighbors(t, k, count_neighbor, &sum);
    assert_int_equal(sum, 3); /* 2 dyads with 6, 1 with 7 */
    trust_free(t);
}

/* Random graphs: after every change, every distance equals a BFS from scratch. */
#define RN 60
#define RE 90

static void
bfs(bool adj[RN][RN], unsigned d[RN])
{
    unsigned q[RN], h = 0, tl = 0;

    for (unsigned i = 0; i < RN; i++)
        d[i] = TRUST_NONE;
    d[0] = 0;
    q[tl++] = 0;
    while (h < tl) {
        unsigned v = q[h++];
        if (d[v] >= TRUST_HOPS_MAX)
            continue;
        for (unsigned u = 0; u < RN; u++) {
            if (adj[v][u] && d[u] == TRUST_NONE) {
                d[u] = d[v] + 1;
                q[tl++] = u;
            }
        }
    }
}

static void
test_random_incremental(void **state)
{
    static unsigned cnt[RN][RN];
    struct trust *t = graph();
    struct {
        unsigned a, b;
        bool live;
    } ev[RE];
    bool adj[RN][RN];
    unsigned ref[RN];
    uint32_t r = 12345;
    (void)state;

    memset(cnt, 0, sizeof(cnt));
    memset(ev, 0, sizeof(ev));
    for (unsigned step = 0; step < 3000; step++) {
        unsigned e;
        r = r * 1103515245u + 12345u;
        e = (r >> 8) % RE;
        if (!ev[e].live) {
            unsigned a, b;
            r = r * 1103515245u + 12345u;
            a = (r >> 8) % RN;
            r = r * 1103515245u + 12345u;
            b = (r >> 8) % RN;
            if (a == b)
                continue;
            assert_int_equal(add(t, e, a, b, e), 1);
            ev[e].a = a;
            ev[e].b = b;
            ev[e].live = true;
            cnt[a][b]++;
            cnt[b][a]++;
        } else if ((r >> 4) % 3 == 0) { /* removals rarer than additions */
            assert_int_equal(rm(t, e), 1);
            ev[e].live = false;
            cnt[ev[e].a][ev[e].b]--;
            cnt[ev[e].b][ev[e].a]--;
        } else {
            continue;
        }
        for (unsigned i = 0; i < RN; i++)
            for (unsigned j = 0; j < RN; j++)
                adj[i][j] = cnt[i][j] > 0;
        bfs(adj, ref);
        for (unsigned i = 0; i < RN; i++)
            assert_int_equal(dist(t, i), ref[i]);
    }
    trust_free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distances),
        cmocka_unit_test(test_evidence),
        cmocka_unit_test(test_removal_lengthens),
        cmocka_unit_test(test_hops_max),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_neighbors),
        cmocka_unit_test(test_random_incremental),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
