/* Unit tests for proto/recon: the cached set, the message codec and whole sessions between
 * two engines in one process (messages passed as bytes, a fake clock). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/env.h"
#include "lib/err.h"
#include "proto/msg.h"
#include "proto/recon.h"
#include "testutil.h"

/* ------------------------------------------------------------------ helpers */

typedef uint8_t rid_t[RIBLT_ID_LEN];

struct ids {
    rid_t *v;
    size_t n, cap;
};

static void
ids_add(struct ids *s, const uint8_t *id)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = realloc(s->v, s->cap * sizeof(rid_t));
        assert_non_null(s->v);
    }
    memcpy(s->v[s->n++], id, RIBLT_ID_LEN);
}

static int
cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, RIBLT_ID_LEN);
}

static void
ids_sort(struct ids *s)
{
    if (s->n > 1)
        qsort(s->v, s->n, sizeof(rid_t), cmp_id);
}

static int
ids_each(void *ctx, recon_visit_fn visit, void *vctx)
{
    struct ids *s = ctx;
    int rc;

    for (size_t i = 0; i < s->n; i++)
        if ((rc = visit(vctx, s->v[i])) != 0)
            return rc;
    return 0;
}

struct wire {
    uint8_t *msg[4096];
    size_t len[4096];
    size_t n;
};

/* One side of a session: its set, its engine and what came out of it. */
struct peer {
    struct env_seeded env;
    struct recon_set *set;
    struct ids have;
    struct recon *eng;
    struct ids want, push;
    int done[2], failed[2], err[2];
    bool retry_salted[2];
    char reason[2][300];
    struct recon_stats stats[2];
    struct wire out;
    unsigned sent_types[40];
};

static void
peer_init(struct peer *p, uint64_t seed, uint32_t cache, uint32_t max_symbols, bool iterator)
{
    struct recon_set_cfg scfg = {cache, 0, NULL};
    struct recon_cfg cfg;

    memset(p, 0, sizeof(*p));
    env_seeded_init(&p->env, seed, 1000, 0);
    assert_int_equal(recon_set_new(&scfg, &p->set), 0);
    memset(&cfg, 0, sizeof(cfg));
    cfg.env = &p->env.env;
    cfg.set = p->set;
    cfg.each = iterator ? ids_each : NULL;
    cfg.each_ctx = &p->have;
    cfg.max_symbols = max_symbols;
    assert_int_equal(recon_new(&cfg, &p->eng), 0);
}

static void
peer_add(struct peer *p, const uint8_t *id)
{
    ids_add(&p->have, id);
    assert_int_equal(recon_set_add(p->set, id), 0);
}

static void
peer_remove_at(struct peer *p, size_t i)
{
    assert_int_equal(recon_set_remove(p->set, p->have.v[i]), 0);
    memcpy(p->have.v[i], p->have.v[--p->have.n], RIBLT_ID_LEN);
}

static void
peer_release(struct peer *p)
{
    recon_free(p->eng);
    recon_set_free(p->set);
    free(p->have.v);
    free(p->want.v);
    free(p->push.v);
    for (size_t i = 0; i < p->out.n; i++)
        free(p->out.msg[i]);
}

/* Drains one event from p; returns 0 when there was none. */
static int
peer_poll1(struct peer *p, uint64_t now)
{
    struct recon_event ev;

    if (recon_poll(p->eng, now, &ev) == 0)
        return 0;
    switch (ev.type) {
    case RECON_EV_SEND: {
        uint32_t type;
        assert_true(ev.len > 0 && ev.len <= MSG_MAX);
        assert_int_equal(msg_peek_type(ev.msg, ev.len, &type), 0);
        assert_true(type >= MSG_RECON_REQ && type <= MSG_RECON_ERR);
        p->sent_types[type]++;
        assert_true(p->out.n < 4096);
        p->out.msg[p->out.n] = malloc(ev.len);
        assert_non_null(p->out.msg[p->out.n]);
        memcpy(p->out.msg[p->out.n], ev.msg, ev.len);
        p->out.len[p->out.n++] = ev.len;
        break;
    }
    case RECON_EV_WANT:
    case RECON_EV_PUSH:
        assert_true(ev.n_ids > 0);
        for (size_t i = 0; i < ev.n_ids; i++) {
            if (i > 0)
                assert_true(memcmp(ev.ids[i - 1], ev.ids[i], RIBLT_ID_LEN) < 0);
            ids_add(ev.type == RECON_EV_WANT ? &p->want : &p->push, ev.ids[i]);
        }
        break;
    case RECON_EV_DONE:
        p->done[ev.role]++;
        p->stats[ev.role] = ev.stats;
        break;
    case RECON_EV_FAILED:
        assert_true(ev.err < 0);
        assert_non_null(ev.reason);
        p->failed[ev.role]++;
        p->err[ev.role] = ev.err;
        p->retry_salted[ev.role] = ev.retry_salted;
        p->stats[ev.role] = ev.stats;
        snprintf(p->reason[ev.role], sizeof(p->reason[0]), "%s", ev.reason);
        break;
    }
    return 1;
}

static void
peer_drain(struct peer *p, uint64_t now)
{
    while (peer_poll1(p, now))
        ;
}

/* Hands every queued message of `from` to `to`, except those `drop` selects (by global
 * index `*seq`). Returns how many were delivered or dropped. */
static size_t
deliver(struct peer *from, struct peer *to, uint64_t now, long drop, long *seq)
{
    size_t n = from->out.n;

    for (size_t i = 0; i < n; i++) {
        if (*seq != drop)
            (void)recon_on_msg(to->eng, now, from->out.msg[i], from->out.len[i]);
        (*seq)++;
        free(from->out.msg[i]);
    }
    from->out.n = 0;
    return n;
}

/* Runs the exchange until both sides are quiet. Each side's full output is delivered
 * before the other side answers (a whole round is in flight before the reply). */
static void
pump_drop(struct peer *a, struct peer *b, uint64_t now, long drop)
{
    long seq = 0;

    for (;;) {
        size_t moved = 0;
        peer_drain(a, now);
        moved += deliver(a, b, now, drop, &seq);
        peer_drain(b, now);
        moved += deliver(b, a, now, drop, &seq);
        if (moved == 0)
            break;
    }
    peer_drain(a, now);
    peer_drain(b, now);
}

static void
pump(struct peer *a, struct peer *b, uint64_t now)
{
    pump_drop(a, b, now, -1);
}

/* Makes a and b share `common` ids, plus na only in a and nb only in b. The expected
 * differences are returned sorted. */
static void
make_sets(struct peer *a, struct peer *b, size_t common, size_t na, size_t nb, struct ids *only_a,
          struct ids *only_b)
{
    struct env_seeded e;
    uint8_t id[RIBLT_ID_LEN];

    env_seeded_init(&e, 1000 + common + 7 * na + 13 * nb, 0, 0);
    memset(only_a, 0, sizeof(*only_a));
    memset(only_b, 0, sizeof(*only_b));
    for (size_t i = 0; i < common + na + nb; i++) {
        env_random(&e.env, id, sizeof(id));
        if (i < common + na)
            peer_add(a, id);
        if (i < common || i >= common + na)
            peer_add(b, id);
        if (i >= common && i < common + na)
            ids_add(only_a, id);
        if (i >= common + na)
            ids_add(only_b, id);
    }
    ids_sort(only_a);
    ids_sort(only_b);
}

static void
assert_ids_equal(struct ids *got, const struct ids *want)
{
    ids_sort(got);
    assert_int_equal(got->n, want->n);
    if (want->n)
        assert_memory_equal(got->v, want->v, want->n * sizeof(rid_t));
}

/* After a session: a must end up with b's ids and b with a's, whoever decoded. */
static void
check_result(struct peer *a, struct peer *b, const struct ids *only_a, const struct ids *only_b)
{
    struct ids to_a = {0}, to_b = {0};

    for (size_t i = 0; i < a->want.n; i++)
        ids_add(&to_a, a->want.v[i]);
    for (size_t i = 0; i < b->push.n; i++)
        ids_add(&to_a, b->push.v[i]);
    for (size_t i = 0; i < a->push.n; i++)
        ids_add(&to_b, a->push.v[i]);
    for (size_t i = 0; i < b->want.n; i++)
        ids_add(&to_b, b->want.v[i]);
    assert_ids_equal(&to_a, only_b);
    assert_ids_equal(&to_b, only_a);
    free(to_a.v);
    free(to_b.v);
}

/* A full session between fresh peers; returns the initiator's stats. */
static struct recon_stats
run_session(size_t common, size_t na, size_t nb, uint32_t cache, unsigned flags, bool iterator)
{
    struct peer a, b;
    struct ids only_a, only_b;
    struct recon_stats st;

    peer_init(&a, 1, cache, 0, iterator);
    peer_init(&b, 2, cache, 0, iterator);
    make_sets(&a, &b, common, na, nb, &only_a, &only_b);
    assert_int_equal(recon_start(a.eng, 1000, flags), 0);
    assert_true(recon_active(a.eng, RECON_INITIATOR));
    pump(&a, &b, 1000);
    if (a.done[RECON_INITIATOR] != 1)
        fprintf(stderr, "d=%zu+%zu: a failed %d (%s), b failed %d (%s)\n", na, nb,
                a.failed[RECON_INITIATOR], a.reason[RECON_INITIATOR], b.failed[RECON_RESPONDER],
                b.reason[RECON_RESPONDER]);
    assert_int_equal(a.done[RECON_INITIATOR], 1);
    assert_int_equal(b.done[RECON_RESPONDER], 1);
    assert_int_equal(a.failed[0] + a.failed[1] + b.failed[0] + b.failed[1], 0);
    assert_false(recon_active(a.eng, RECON_INITIATOR));
    assert_false(recon_active(b.eng, RECON_RESPONDER));
    assert_int_equal(recon_next_deadline(a.eng), UINT64_MAX);
    check_result(&a, &b, &only_a, &only_b);
    st = a.stats[RECON_INITIATOR];
    /* Round trips are exactly the REQ and MOREs on the wire; bytes agree on both sides. */
    assert_int_equal(st.round_trips, a.sent_types[MSG_RECON_REQ] + a.sent_types[MSG_RECON_MORE]);
    assert_int_equal(b.stats[RECON_RESPONDER].round_trips, st.round_trips);
    assert_true(st.bytes_sent == b.stats[RECON_RESPONDER].bytes_recv);
    assert_true(st.bytes_recv == b.stats[RECON_RESPONDER].bytes_sent);
    free(only_a.v);
    free(only_b.v);
    peer_release(&a);
    peer_release(&b);
    return st;
}

/* ------------------------------------------------------------------ the set */

static void
check_cache_matches(struct recon_set *set, const struct ids *have, uint32_t k)
{
    struct riblt_sym *dense = calloc(k, sizeof(*dense)), s;
    struct riblt_acc acc = {dense, 0, k, NULL, RIBLT_EST_N};

    assert_non_null(dense);
    for (size_t i = 0; i < have->n; i++)
        riblt_acc_apply(&acc, have->v[i], riblt_hash(riblt_default_key, have->v[i]), 1);
    for (uint32_t i = 0; i < k; i++) {
        assert_int_equal(recon_set_symbol(set, i, &s), 0);
        assert_memory_equal(s.sum, dense[i].sum, RIBLT_ID_LEN);
        assert_true(s.hash == dense[i].hash);
        assert_true(s.count == dense[i].count);
    }
    assert_int_equal(recon_set_symbol(set, recon_set_cache_symbols(set), &s), PULL_ERR_INVAL);
    assert_int_equal(recon_set_size(set), have->n);
    free(dense);
}

static void
test_set_incremental(void **state)
{
    struct peer p;
    struct env_seeded e;
    uint8_t id[RIBLT_ID_LEN];

    (void)state;
    peer_init(&p, 1, 300, 0, true);
    env_seeded_init(&e, 9, 0, 0);
    for (int i = 0; i < 3000; i++) {
        env_random(&e.env, id, sizeof(id));
        peer_add(&p, id);
    }
    for (int i = 0; i < 1000; i++)
        peer_remove_at(&p, env_uniform(&e.env, (uint32_t)p.have.n));
    for (int i = 0; i < 500; i++) {
        env_random(&e.env, id, sizeof(id));
        peer_add(&p, id);
    }
    assert_int_equal(recon_set_cache_symbols(p.set), 300);
    check_cache_matches(p.set, &p.have, 300);
    /* The estimator samples (mostly beyond a cache of 16) match too: a set built from
     * scratch with the same ids is "equal" in one message each way, which needs symbol 0
     * and all 69 fingerprints to agree. */
    {
        struct peer q, r;
        peer_init(&q, 5, 16, 0, true);
        peer_init(&r, 6, 16, 0, true);
        for (int i = 0; i < 3000; i++) {
            env_random(&e.env, id, sizeof(id));
            peer_add(&q, id);
        }
        for (int i = 0; i < 1200; i++)
            peer_remove_at(&q, env_uniform(&e.env, (uint32_t)q.have.n));
        for (size_t i = q.have.n; i-- > 0;)
            peer_add(&r, q.have.v[i]); /* another order, no removals */
        assert_int_equal(recon_start(q.eng, 1000, 0), 0);
        pump(&q, &r, 1000);
        assert_int_equal(q.done[RECON_INITIATOR], 1);
        assert_int_equal(q.stats[RECON_INITIATOR].symbols, 0);
        assert_int_equal(q.stats[RECON_INITIATOR].msgs_recv, 1);
        assert_int_equal(q.want.n + q.push.n + r.want.n + r.push.n, 0);
        peer_release(&q);
        peer_release(&r);
    }
    /* Removing everything brings every symbol back to zero. */
    while (p.have.n > 0)
        peer_remove_at(&p, p.have.n - 1);
    check_cache_matches(p.set, &p.have, 300);
    peer_release(&p);
}

static void
test_set_add_all(void **state)
{
    struct ids src = {0};
    struct recon_set *s;
    struct env_seeded e;
    uint8_t id[RIBLT_ID_LEN];

    (void)state;
    env_seeded_init(&e, 10, 0, 0);
    for (int i = 0; i < 700; i++) {
        env_random(&e.env, id, sizeof(id));
        ids_add(&src, id);
    }
    assert_int_equal(recon_set_new(NULL, &s), 0);
    assert_int_equal(recon_set_cache_symbols(s), RECON_CACHE_DEFAULT);
    assert_int_equal(recon_set_add_all(s, ids_each, &src), 0);
    check_cache_matches(s, &src, 64);
    recon_set_free(s);
    recon_set_free(NULL);
    {
        struct recon_set_cfg bad = {RECON_MAX_CREDIT + 1, 0, NULL};
        assert_int_equal(recon_set_new(&bad, &s), PULL_ERR_INVAL);
        assert_null(s);
    }
    free(src.v);
}

/* ------------------------------------------------------------------ sessions */

static void
test_session_equal(void **state)
{
    struct recon_stats st;

    (void)state;
    st = run_session(1000, 0, 0, 256, 0, true);
    assert_int_equal(st.round_trips, 1);
    assert_int_equal(st.msgs_sent, 1);
    assert_int_equal(st.msgs_recv, 1);
    assert_int_equal(st.symbols, 0);
    assert_true(st.bytes_sent + st.bytes_recv < 120);
    /* Both empty. */
    st = run_session(0, 0, 0, 256, 0, true);
    assert_int_equal(st.round_trips, 1);
    assert_int_equal(st.msgs_sent + st.msgs_recv, 2);
}

static void
test_session_one(void **state)
{
    struct recon_stats st;

    (void)state;
    /* The responder decodes symbol 0 from REQ: done in one round trip, ~100 bytes. */
    st = run_session(1000, 1, 0, 256, 0, true);
    assert_int_equal(st.round_trips, 1);
    assert_int_equal(st.peer_want, 1);
    assert_true(st.bytes_sent + st.bytes_recv < 130);
    st = run_session(1000, 0, 1, 256, 0, true);
    assert_int_equal(st.round_trips, 1);
    assert_int_equal(st.peer_push, 1);
}

static void
test_session_sizes(void **state)
{
    static const size_t cases[][2] = {{2, 0},   {0, 2},   {1, 1},     {5, 5},   {10, 0},
                                      {50, 50}, {0, 100}, {500, 500}, {1000, 0}};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct recon_stats st = run_session(2000, cases[i][0], cases[i][1], 4096, 0, true);
        size_t d = cases[i][0] + cases[i][1];
        assert_true(st.round_trips >= 1 && st.round_trips <= 4);
        assert_int_equal(st.n_want, cases[i][1]);
        assert_int_equal(st.n_push, cases[i][0]);
        assert_int_equal(st.passes, 0); /* everything came from the cache */
        if (d >= 100)
            assert_true((st.bytes_sent + st.bytes_recv) / d < 130);
    }
}

static void
test_session_beyond_cache(void **state)
{
    struct recon_stats st;

    (void)state;
    /* A cache of 16 symbols: the rest comes from passes over the iterator. */
    st = run_session(1500, 150, 150, 16, 0, true);
    assert_true(st.passes >= 1);
    /* No cache at all (symbol 0 only). */
    st = run_session(500, 40, 20, 0, 0, true);
    assert_true(st.passes >= 1);
}

static void
test_session_salted(void **state)
{
    struct recon_stats st;

    (void)state;
    st = run_session(1000, 30, 30, 4096, RECON_SALTED, true);
    assert_true(st.passes >= 1); /* salted symbols are never cached */
    st = run_session(1000, 0, 0, 4096, RECON_SALTED, true);
    assert_int_equal(st.round_trips, 1);
    st = run_session(1000, 1, 0, 4096, RECON_SALTED, true);
    assert_int_equal(st.round_trips, 1);
}

static void
test_session_no_iterator(void **state)
{
    struct peer a, b;
    struct ids only_a, only_b;

    (void)state;
    peer_init(&a, 1, 16, 0, false);
    peer_init(&b, 2, 16, 0, false);
    make_sets(&a, &b, 500, 100, 100, &only_a, &only_b);
    assert_int_equal(recon_start(a.eng, 1000, 0), 0);
    pump(&a, &b, 1000);
    assert_int_equal(b.failed[RECON_RESPONDER], 1);
    assert_int_equal(b.err[RECON_RESPONDER], PULL_ERR_UNSUPPORTED);
    assert_int_equal(a.failed[RECON_INITIATOR], 1);
    assert_int_equal(a.err[RECON_INITIATOR], PULL_ERR_UNSUPPORTED);
    assert_non_null(strstr(a.reason[RECON_INITIATOR], "peer:"));
    /* A salted start needs a pass: refused up front, no session, no event. */
    assert_int_equal(recon_start(a.eng, 1000, RECON_SALTED), PULL_ERR_UNSUPPORTED);
    assert_false(recon_active(a.eng, RECON_INITIATOR));
    free(only_a.v);
    free(only_b.v);
    peer_release(&a);
    peer_release(&b);
}

static void
test_refuse_salted(void **state)
{
    struct peer a, b;
    struct ids only_a, only_b;
    struct recon_cfg cfg;
    struct recon *eng;

    (void)state;
    peer_init(&a, 1, 64, 0, true);
    peer_init(&b, 2, 64, 0, true);
    memset(&cfg, 0, sizeof(cfg));
    cfg.env = &b.env.env;
    cfg.set = b.set;
    cfg.each = ids_each;
    cfg.each_ctx = &b.have;
    cfg.refuse_salted = true;
    assert_int_equal(recon_new(&cfg, &eng), 0);
    recon_free(b.eng);
    b.eng = eng;
    make_sets(&a, &b, 100, 5, 5, &only_a, &only_b);
    assert_int_equal(recon_start(a.eng, 1000, RECON_SALTED), 0);
    pump(&a, &b, 1000);
    assert_int_equal(a.failed[RECON_INITIATOR], 1);
    assert_int_equal(a.err[RECON_INITIATOR], PULL_ERR_UNSUPPORTED);
    assert_int_equal(b.failed[RECON_RESPONDER] + b.done[RECON_RESPONDER], 0);
    free(only_a.v);
    free(only_b.v);
    peer_release(&a);
    peer_release(&b);
}

/* Changes to either set while a session runs do not disturb it: each side answers from
 * its snapshot (cache + journal, and the iterator + journal beyond the cache). */
static void
test_session_snapshot(void **state)
{
    for (int variant = 0; variant < 2; variant++) {
        struct peer a, b;
        struct ids only_a, only_b;
        struct env_seeded e;
        uint8_t id[RIBLT_ID_LEN];
        uint32_t cache = variant == 0 ? 4096 : 8;

        (void)state;
        peer_init(&a, 1, cache, 0, true);
        peer_init(&b, 2, cache, 0, true);
        make_sets(&a, &b, 800, 60, 40, &only_a, &only_b);
        assert_int_equal(recon_start(a.eng, 1000, 0), 0);
        peer_drain(&a, 1000);
        {
            long seq = 0;
            deliver(&a, &b, 1000, -1, &seq); /* REQ: b takes its snapshot now */
        }
        env_seeded_init(&e, 77, 0, 0);
        for (int i = 0; i < 30; i++) {
            env_random(&e.env, id, sizeof(id));
            peer_add(&a, id);
            env_random(&e.env, id, sizeof(id));
            peer_add(&b, id);
        }
        for (int i = 0; i < 10; i++) {
            peer_remove_at(&a, 0);
            peer_remove_at(&b, 0);
        }
        pump(&a, &b, 1000);
        assert_int_equal(a.done[RECON_INITIATOR], 1);
        check_result(&a, &b, &only_a, &only_b);
        if (variant == 1)
            assert_true(a.stats[RECON_INITIATOR].passes >= 1);
        free(only_a.v);
        free(only_b.v);
        peer_release(&a);
        peer_release(&b);
    }
}

/* A tiny journal overflows while the session runs: the session fails with AGAIN. */
static void
test_session_journal_overflow(void **state)
{
    struct peer a, b;
    struct ids only_a, only_b;
    struct recon_set_cfg scfg = {64, 4, NULL};
    struct env_seeded e;
    uint8_t id[RIBLT_ID_LEN];

    (void)state;
    peer_init(&a, 1, 64, 0, true);
    peer_init(&b, 2, 64, 0, true);
    recon_set_free(a.set);
    assert_int_equal(recon_set_new(&scfg, &a.set), 0);
    {
        struct recon_cfg cfg;
        memset(&cfg, 0, sizeof(cfg));
        cfg.env = &a.env.env;
        cfg.set = a.set;
        cfg.each = ids_each;
        cfg.each_ctx = &a.have;
        recon_free(a.eng);
        assert_int_equal(recon_new(&cfg, &a.eng), 0);
    }
    make_sets(&a, &b, 300, 20, 20, &only_a, &only_b);
    assert_int_equal(recon_start(a.eng, 1000, 0), 0);
    env_seeded_init(&e, 78, 0, 0);
    for (int i = 0; i < 10; i++) {
        env_random(&e.env, id, sizeof(id));
        peer_add(&a, id);
    }
    pump(&a, &b, 1000);
    assert_int_equal(a.failed[RECON_INITIATOR], 1);
    assert_int_equal(a.err[RECON_INITIATOR], PULL_ERR_AGAIN);
    assert_int_equal(b.failed[RECON_RESPONDER], 1);
    free(only_a.v);
    free(only_b.v);
    peer_release(&a);
    peer_release(&b);
}

/* Messages one at a time, each side polling one event between deliveries. */
static void
test_session_chunked(void **state)
{
    struct peer a, b;
    struct ids only_a, only_b;

    (void)state;
    peer_init(&a, 1, 8192, 0, true);
    peer_init(&b, 2, 8192, 0, true);
    make_sets(&a, &b, 3000, 1200, 1000, &only_a, &only_b); /* rounds span several messages */
    assert_int_equal(recon_start(a.eng, 1000, 0), 0);
    for (int guard = 0; guard < 100000; guard++) {
        int moved = peer_poll1(&a, 1000) + peer_poll1(&b, 1000);
        for (size_t i = 0; i < a.out.n; i++)
            (void)recon_on_msg(b.eng, 1000, a.out.msg[i], a.out.len[i]), free(a.out.msg[i]);
        moved += (int)a.out.n;
        a.out.n = 0;
        if (b.out.n > 0) {
            /* b's messages go one per turn */
            (void)recon_on_msg(a.eng, 1000, b.out.msg[0], b.out.len[0]);
            free(b.out.msg[0]);
            memmove(b.out.msg, b.out.msg + 1, (b.out.n - 1) * sizeof(b.out.msg[0]));
            memmove(b.out.len, b.out.len + 1, (b.out.n - 1) * sizeof(b.out.len[0]));
            b.out.n--;
            moved++;
        }
        if (moved == 0)
            break;
    }
    assert_int_equal(a.done[RECON_INITIATOR], 1);
    assert_int_equal(b.done[RECON_RESPONDER], 1);
    assert_true(b.stats[RECON_RESPONDER].msgs_sent >= 2);
    check_result(&a, &b, &only_a, &only_b);
    free(only_a.v);
    free(only_b.v);
    peer_release(&a);
    peer_release(&b);
}

/* Lost messages: the session fails by timeout (or at once on a gap), both sides learn. */
static void
test_session_lossy(void **state)
{
    (void)state;
    for (long drop = 0; drop < 4; drop++) {
        struct peer a, b;
        struct ids only_a, only_b;
        uint64_t dl;

        peer_init(&a, 1, 8192, 0, true);
        peer_init(&b, 2, 8192, 0, true);
        /* ~2,500 symbols in round 1: two SYMBOLS messages (seq 1 and 2). */
        make_sets(&a, &b, 1000, 1000, 1000, &only_a, &only_b);
        assert_int_equal(recon_start(a.eng, 1000, 0), 0);
        pump_drop(&a, &b, 1000, drop);
        if (a.done[RECON_INITIATOR] == 1) {
            /* Dropping a late message can be harmless (e.g. DONE's echo); the result holds. */
            check_result(&a, &b, &only_a, &only_b);
        } else if (a.failed[RECON_INITIATOR] == 0) {
            /* Still waiting: only time will tell. */
            dl = recon_next_deadline(a.eng);
            assert_true(dl != UINT64_MAX && dl > 1000);
            recon_on_timeout(a.eng, dl - 1);
            peer_drain(&a, dl - 1);
            assert_int_equal(a.failed[RECON_INITIATOR], 0);
            recon_on_timeout(a.eng, dl);
            pump(&a, &b, dl);
            assert_int_equal(a.failed[RECON_INITIATOR], 1);
            assert_int_equal(a.err[RECON_INITIATOR], PULL_ERR_TIMEOUT);
        } else {
            /* A gap in the symbol stream is a protocol error right away. */
            assert_int_equal(a.err[RECON_INITIATOR], PULL_ERR_PROTOCOL);
        }
        /* Whatever happened, b's session ended too (DONE, ERR from a, or its own timer). */
        if (recon_active(b.eng, RECON_RESPONDER)) {
            dl = recon_next_deadline(b.eng);
            recon_on_timeout(b.eng, dl);
            peer_drain(&b, dl);
            assert_int_equal(b.err[RECON_RESPONDER], PULL_ERR_TIMEOUT);
        }
        assert_true(b.done[RECON_RESPONDER] + b.failed[RECON_RESPONDER] <= 1);
        assert_false(recon_active(b.eng, RECON_RESPONDER));
        free(only_a.v);
        free(only_b.v);
        peer_release(&a);
        peer_release(&b);
    }
}

static void
test_session_cap(void **state)
{
    struct peer a, b;
    struct ids only_a, only_b;

    (void)state;
    peer_init(&a, 1, 4096, 64, true); /* at most 64 symbols: d = 500 cannot decode */
    peer_init(&b, 2, 4096, 0, true);
    make_sets(&a, &b, 500, 250, 250, &only_a, &only_b);
    assert_int_equal(recon_start(a.eng, 1000, 0), 0);
    pump(&a, &b, 1000);
    assert_int_equal(a.failed[RECON_INITIATOR], 1);
    assert_int_equal(a.err[RECON_INITIATOR], PULL_ERR_QUOTA);
    assert_true(a.stats[RECON_INITIATOR].symbols <= 64);
    assert_int_equal(b.failed[RECON_RESPONDER], 1);
    assert_int_equal(b.err[RECON_RESPONDER], PULL_ERR_QUOTA);
    assert_non_null(strstr(b.reason[RECON_RESPONDER], "symbol cap"));
    free(only_a.v);
    free(only_b.v);
    peer_release(&a);
    peer_release(&b);

    /* The responder's own cap: it serves what it may, then refuses more. */
    peer_init(&a, 1, 4096, 0, true);
    peer_init(&b, 2, 4096, 100, true);
    make_sets(&a, &b, 500, 250, 250, &only_a, &only_b);
    assert_int_equal(recon_start(a.eng, 1000, 0), 0);
    pump(&a, &b, 1000);
    assert_int_equal(a.failed[RECON_INITIATOR], 1);
    assert_int_equal(a.err[RECON_INITIATOR], PULL_ERR_QUOTA);
    assert_int_equal(b.failed[RECON_RESPONDER], 1);
    free(only_a.v);
    free(only_b.v);
    peer_release(&a);
    peer_release(&b);
}

/* Both peers start at once: two independent sessions on the same engines. */
static void
test_session_both_ways(void **state)
{
    struct peer a, b;
    struct ids only_a, only_b;

    (void)state;
    peer_init(&a, 1, 4096, 0, true);
    peer_init(&b, 2, 4096, 0, true);
    make_sets(&a, &b, 1000, 30, 20, &only_a, &only_b);
    assert_int_equal(recon_start(a.eng, 1000, 0), 0);
    assert_int_equal(recon_start(b.eng, 1000, 0), 0);
    assert_int_equal(recon_start(b.eng, 1000, 0), PULL_ERR_STATE);
    pump(&a, &b, 1000);
    assert_int_equal(a.done[RECON_INITIATOR] + a.done[RECON_RESPONDER], 2);
    assert_int_equal(b.done[RECON_INITIATOR] + b.done[RECON_RESPONDER], 2);
    assert_ids_equal(&a.want, &only_b);
    assert_ids_equal(&b.want, &only_a);
    free(only_a.v);
    free(only_b.v);
    peer_release(&a);
    peer_release(&b);
}

/* A second REQ replaces the responder's running session. */
static void
test_session_superseded(void **state)
{
    struct peer a, b;
    struct ids only_a, only_b;
    long seq = 0;

    (void)state;
    peer_init(&a, 1, 4096, 0, true);
    peer_init(&b, 2, 4096, 0, true);
    make_sets(&a, &b, 500, 40, 40, &only_a, &only_b);
    assert_int_equal(recon_start(a.eng, 1000, 0), 0);
    peer_drain(&a, 1000);
    assert_int_equal(a.out.n, 1);
    (void)recon_on_msg(b.eng, 1000, a.out.msg[0], a.out.len[0]); /* same REQ twice */
    deliver(&a, &b, 1000, -1, &seq);
    peer_drain(&b, 1000);
    assert_int_equal(b.failed[RECON_RESPONDER], 1);
    assert_int_equal(b.err[RECON_RESPONDER], PULL_ERR_AGAIN);
    pump(&a, &b, 1000); /* a sees both rounds' symbols: the second copy is a gap */
    assert_int_equal(a.done[RECON_INITIATOR] + a.failed[RECON_INITIATOR], 1);
    free(only_a.v);
    free(only_b.v);
    peer_release(&a);
    peer_release(&b);
}

static void
test_session_timeout_hard(void **state)
{
    struct peer a;

    (void)state;
    peer_init(&a, 1, 64, 0, true);
    assert_int_equal(recon_start(a.eng, 1000, 0), 0);
    assert_int_equal(recon_next_deadline(a.eng), 1000 + RECON_IDLE_TIMEOUT_DEFAULT);
    recon_on_timeout(a.eng, 999); /* early: nothing */
    peer_drain(&a, 999);
    assert_int_equal(a.failed[RECON_INITIATOR], 0);
    recon_on_timeout(a.eng, 1000 + RECON_SESSION_TIMEOUT_DEFAULT);
    peer_drain(&a, 1000 + RECON_SESSION_TIMEOUT_DEFAULT);
    assert_int_equal(a.failed[RECON_INITIATOR], 1);
    assert_int_equal(a.err[RECON_INITIATOR], PULL_ERR_TIMEOUT);
    assert_int_equal(a.sent_types[MSG_RECON_ERR], 1);
    assert_int_equal(recon_next_deadline(a.eng), UINT64_MAX);
    {
        struct recon_stats st;
        assert_int_equal(recon_stats_get(a.eng, RECON_INITIATOR, &st), PULL_ERR_NOT_FOUND);
    }
    peer_release(&a);
}

/* A hostile responder plays a crafted difference: two ids with the same hash (so the same
 * index sequence) on its side. Nothing ever peels; the initiator notices the stopping set
 * at the end of the round and asks for a salted retry instead of growing to the cap. */
static void
test_session_stopping_set(void **state)
{
    enum { M = 300 };
    struct peer a;
    struct env_seeded e;
    struct riblt_sym *sym = calloc(M, sizeof(*sym));
    struct riblt_acc acc = {sym, 0, M, NULL, RIBLT_EST_N};
    uint8_t x[RIBLT_ID_LEN], y[RIBLT_ID_LEN], wire[M * RIBLT_SYM_WIRE];
    struct recon_stats st;
    struct recon_msg m;
    struct pull_wb w;
    struct riblt_map map;
    uint64_t h = 0;
    uint32_t idx, hits;

    (void)state;
    assert_non_null(sym);
    peer_init(&a, 1, 4096, 0, true);
    env_seeded_init(&e, 31, 0, 0);
    for (int i = 0; i < 500; i++) {
        uint8_t id[RIBLT_ID_LEN];
        env_random(&e.env, id, sizeof(id));
        peer_add(&a, id);
    }
    /* A's own symbols, plus the colliding pair at every index of h's sequence. */
    for (size_t i = 0; i < a.have.n; i++)
        riblt_acc_apply(&acc, a.have.v[i], riblt_hash(riblt_default_key, a.have.v[i]), 1);
    do {
        h = env_u64(&e.env);
        riblt_map_init(&map, h);
        for (hits = 0, idx = 0; idx < M; idx = riblt_map_next(&map))
            hits++;
    } while (hits < 10);
    memset(x, 0x11, sizeof(x));
    memset(y, 0x22, sizeof(y));
    riblt_map_init(&map, h);
    for (idx = 0; idx < M; idx = riblt_map_next(&map)) {
        riblt_sym_apply(&sym[idx], x, h, 1);
        riblt_sym_apply(&sym[idx], y, h, 1);
    }
    for (int i = 0; i < M; i++)
        riblt_sym_encode(&sym[i], wire + i * RIBLT_SYM_WIRE);
    assert_int_equal(recon_start(a.eng, 1000, 0), 0);
    peer_drain(&a, 1000);
    assert_int_equal(recon_stats_get(a.eng, RECON_INITIATOR, &st), 0);
    memset(&m, 0, sizeof(m));
    m.type = MSG_RECON_SYMBOLS;
    m.sid = st.sid;
    m.start = 0;
    m.end = M;
    m.syms = wire;
    m.n_syms = M;
    wb_init(&w, MSG_MAX);
    assert_int_equal(recon_msg_encode(&m, &w), 0);
    assert_int_equal(recon_on_msg(a.eng, 1000, w.p, w.len), 0);
    peer_drain(&a, 1000);
    assert_int_equal(a.failed[RECON_INITIATOR], 1);
    assert_int_equal(a.err[RECON_INITIATOR], PULL_ERR_AGAIN);
    assert_true(a.retry_salted[RECON_INITIATOR]);
    assert_non_null(strstr(a.reason[RECON_INITIATOR], "stopping set"));
    assert_int_equal(a.sent_types[MSG_RECON_MORE], 0);
    wb_release(&w);
    free(sym);
    peer_release(&a);
}

/* ------------------------------------------------------------------ messages */

/* Real messages of every type, captured from a session. */
struct capture {
    uint8_t *msg[5];
    size_t len[5];
};

static void
capture_messages(struct capture *c)
{
    struct peer a, b;
    struct ids only_a, only_b;
    long seq = 0;

    memset(c, 0, sizeof(*c));
    peer_init(&a, 1, 4096, 0, true);
    peer_init(&b, 2, 4096, 0, true);
    make_sets(&a, &b, 200, 30, 30, &only_a, &only_b);
    assert_int_equal(recon_start(a.eng, 1000, 0), 0);
    for (int round = 0; round < 50; round++) {
        struct peer *p[2] = {&a, &b};
        peer_drain(&a, 1000);
        peer_drain(&b, 1000);
        for (int s = 0; s < 2; s++) {
            for (size_t i = 0; i < p[s]->out.n; i++) {
                uint32_t type;
                assert_int_equal(msg_peek_type(p[s]->out.msg[i], p[s]->out.len[i], &type), 0);
                if (c->msg[type - MSG_RECON_REQ] == NULL) {
                    c->msg[type - MSG_RECON_REQ] = malloc(p[s]->out.len[i]);
                    memcpy(c->msg[type - MSG_RECON_REQ], p[s]->out.msg[i], p[s]->out.len[i]);
                    c->len[type - MSG_RECON_REQ] = p[s]->out.len[i];
                }
            }
        }
        if (deliver(&a, &b, 1000, -1, &seq) + deliver(&b, &a, 1000, -1, &seq) == 0)
            break;
    }
    free(only_a.v);
    free(only_b.v);
    peer_release(&a);
    peer_release(&b);
    /* ERR: build one (sessions above ended well). */
    {
        struct recon_msg m;
        struct pull_wb w;
        memset(&m, 0, sizeof(m));
        m.type = MSG_RECON_ERR;
        m.sid = 77;
        m.from = RECON_RESPONDER;
        m.code = 37;
        m.reason = "symbol cap reached";
        m.reason_len = (uint32_t)strlen(m.reason);
        wb_init(&w, MSG_MAX);
        assert_int_equal(recon_msg_encode(&m, &w), 0);
        c->msg[4] = wb_steal(&w, &c->len[4]);
    }
    /* MORE: a session with a too-small first round always has one; build it otherwise. */
    if (c->msg[2] == NULL) {
        struct recon_msg m;
        struct pull_wb w;
        memset(&m, 0, sizeof(m));
        m.type = MSG_RECON_MORE;
        m.sid = 77;
        m.total = 300;
        wb_init(&w, MSG_MAX);
        assert_int_equal(recon_msg_encode(&m, &w), 0);
        c->msg[2] = wb_steal(&w, &c->len[2]);
    }
    for (int i = 0; i < 5; i++)
        assert_non_null(c->msg[i]);
}

static void
test_msg_roundtrip(void **state)
{
    struct capture c;

    (void)state;
    capture_messages(&c);
    for (int i = 0; i < 5; i++) {
        struct recon_msg m;
        struct pull_wb w;
        assert_int_equal(recon_msg_decode(c.msg[i], c.len[i], &m), 0);
        assert_int_equal(m.type, MSG_RECON_REQ + i);
        assert_int_equal(m.extra, 0);
        wb_init(&w, MSG_MAX);
        assert_int_equal(recon_msg_encode(&m, &w), 0);
        assert_int_equal(w.len, c.len[i]);
        assert_memory_equal(w.p, c.msg[i], c.len[i]);
        wb_release(&w);
        free(c.msg[i]);
    }
}

static void
test_msg_truncated(void **state)
{
    struct capture c;
    struct peer a;

    (void)state;
    capture_messages(&c);
    peer_init(&a, 1, 64, 0, true);
    for (int i = 0; i < 5; i++) {
        for (size_t n = 0; n < c.len[i]; n++) {
            struct recon_msg m;
            assert_true(recon_msg_decode(c.msg[i], n, &m) < 0);
            assert_true(recon_on_msg(a.eng, 1000, c.msg[i], n) < 0);
            peer_drain(&a, 1000);
        }
        /* One byte too many. */
        {
            uint8_t *p = malloc(c.len[i] + 1);
            struct recon_msg m;
            memcpy(p, c.msg[i], c.len[i]);
            p[c.len[i]] = 0xc0;
            assert_int_equal(recon_msg_decode(p, c.len[i] + 1, &m), PULL_ERR_TRAILING);
            free(p);
        }
        free(c.msg[i]);
    }
    peer_release(&a);
}

static void
check_bad(const char *hex, int want)
{
    uint8_t buf[512];
    size_t n = tu_hex(hex, buf, sizeof(buf));
    struct recon_msg m;
    int rc = recon_msg_decode(buf, n, &m);

    if (want != 0)
        assert_int_equal(rc, want);
    else
        assert_true(rc < 0);
}

static void
test_msg_hostile(void **state)
{
    uint8_t big[MSG_MAX + 1];
    struct recon_msg m;

    (void)state;
    memset(big, 0, sizeof(big));
    assert_int_equal(recon_msg_decode(big, sizeof(big), &m), PULL_ERR_TOO_BIG);
    check_bad("", PULL_ERR_TRUNCATED);
    check_bad("dd ffffffff 1e 01", PULL_ERR_TRUNCATED);   /* huge array count */
    check_bad("dc 0003 20 01 05", PULL_ERR_NONCANONICAL); /* array16 for 3 elements */
    check_bad("93 1d 01 05", PULL_ERR_FIELD);             /* type 29 */
    check_bad("93 23 01 05", PULL_ERR_FIELD);             /* type 35 */
    check_bad("93 cc20 01 05", PULL_ERR_NONCANONICAL);    /* type as uint8 */
    check_bad("93 20 00 05", PULL_ERR_FIELD);             /* sid 0 */
    check_bad("93 20 01 00", PULL_ERR_FIELD);             /* MORE total 0 */
    check_bad("93 20 01 ce01000001", PULL_ERR_FIELD);     /* MORE total > 2^24 */
    check_bad("92 20 01", PULL_ERR_MALFORMED);            /* MORE without total */
    check_bad("91 20", PULL_ERR_MALFORMED);
    check_bad("93 20 01 a105", PULL_ERR_FIELD);     /* str for uint */
    check_bad("95 21 01 02 01 01", PULL_ERR_FIELD); /* DONE: from=2 */
    /* SYMBOLS: bin not a multiple of 42, start >= end, too many symbols for the round. */
    check_bad("96 1f 01 00 05 c401ff 00", PULL_ERR_FIELD);
    check_bad("96 1f 01 05 05 c42a"
              "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
              " 00",
              PULL_ERR_FIELD);
    check_bad("96 1f 01 04 05 c454"
              "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
              "000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
              " 00",
              PULL_ERR_FIELD);
    check_bad("96 1f 01 00 05 c400 00", PULL_ERR_FIELD); /* no symbols */
    /* ERR with invalid UTF-8, and with code 0. */
    check_bad("95 22 01 01 05 a2c328", PULL_ERR_UTF8);
    check_bad("95 22 01 01 00 a0", PULL_ERR_FIELD);
    /* DONE with one extra field (a newer version) is fine, and the extra is counted. */
    {
        uint8_t buf[16];
        size_t n = tu_hex("96 21 05 01 02 03 c0", buf, sizeof(buf));
        assert_int_equal(recon_msg_decode(buf, n, &m), 0);
        assert_int_equal(m.extra, 1);
        assert_int_equal(m.you_lack, 2);
        assert_int_equal(m.i_lack, 3);
    }
    /* Encoder refuses out-of-range fields. */
    {
        struct pull_wb w;
        wb_init(&w, MSG_MAX);
        memset(&m, 0, sizeof(m));
        m.type = MSG_RECON_MORE;
        assert_int_equal(recon_msg_encode(&m, &w), PULL_ERR_INVAL); /* sid 0 */
        m.sid = 1;
        assert_int_equal(recon_msg_encode(&m, &w), PULL_ERR_INVAL); /* total 0 */
        m.type = 29;
        assert_int_equal(recon_msg_encode(&m, &w), PULL_ERR_INVAL);
        wb_release(&w);
    }
}

/* Hostile messages in the middle of a running session fail it, with an ERR to the peer. */
static void
test_msg_hostile_in_session(void **state)
{
    struct peer a, b;
    struct ids only_a, only_b;
    struct recon_stats st;
    struct recon_msg m;
    struct pull_wb w;
    uint8_t sym[RIBLT_SYM_WIRE * 2];
    uint32_t sid;

    (void)state;
    peer_init(&a, 1, 4096, 0, true);
    peer_init(&b, 2, 4096, 0, true);
    make_sets(&a, &b, 300, 20, 20, &only_a, &only_b);
    assert_int_equal(recon_start(a.eng, 1000, 0), 0);
    assert_int_equal(recon_stats_get(a.eng, RECON_INITIATOR, &st), 0);
    sid = st.sid;
    /* SYMBOLS starting at the wrong index. */
    memset(sym, 0, sizeof(sym));
    memset(&m, 0, sizeof(m));
    m.type = MSG_RECON_SYMBOLS;
    m.sid = sid;
    m.start = 5;
    m.end = 10;
    m.syms = sym;
    m.n_syms = 2;
    wb_init(&w, MSG_MAX);
    assert_int_equal(recon_msg_encode(&m, &w), 0);
    /* For another session id: ignored. */
    {
        struct recon_msg o = m;
        struct pull_wb w2;
        o.sid = sid + 1;
        wb_init(&w2, MSG_MAX);
        assert_int_equal(recon_msg_encode(&o, &w2), 0);
        assert_int_equal(recon_on_msg(a.eng, 1000, w2.p, w2.len), 0);
        wb_release(&w2);
        assert_true(recon_active(a.eng, RECON_INITIATOR));
    }
    assert_int_equal(recon_on_msg(a.eng, 1000, w.p, w.len), PULL_ERR_PROTOCOL);
    peer_drain(&a, 1000);
    assert_int_equal(a.failed[RECON_INITIATOR], 1);
    assert_int_equal(a.err[RECON_INITIATOR], PULL_ERR_PROTOCOL);
    assert_int_equal(a.sent_types[MSG_RECON_ERR], 1);
    wb_release(&w);
    /* A truncated SYMBOLS for a live session also fails it. */
    assert_int_equal(recon_start(a.eng, 1000, 0), 0);
    assert_int_equal(recon_stats_get(a.eng, RECON_INITIATOR, &st), 0);
    m.sid = st.sid;
    m.start = 0;
    wb_init(&w, MSG_MAX);
    assert_int_equal(recon_msg_encode(&m, &w), 0);
    assert_true(recon_on_msg(a.eng, 1000, w.p, w.len - 3) < 0);
    peer_drain(&a, 1000);
    assert_int_equal(a.failed[RECON_INITIATOR], 2);
    wb_release(&w);
    /* A malformed REQ gets an ERR back at once. */
    {
        uint8_t req[8];
        size_t n = tu_hex("96 1e 09 c0 00 c0 c0", req, sizeof(req));
        size_t before = b.sent_types[MSG_RECON_ERR];
        assert_true(recon_on_msg(b.eng, 1000, req, n) < 0);
        peer_drain(&b, 1000);
        assert_int_equal(b.sent_types[MSG_RECON_ERR], before + 1);
        assert_false(recon_active(b.eng, RECON_RESPONDER));
    }
    /* ERR from the peer ends the session with its reason, sanitised. */
    assert_int_equal(recon_start(a.eng, 1000, 0), 0);
    assert_int_equal(recon_stats_get(a.eng, RECON_INITIATOR, &st), 0);
    memset(&m, 0, sizeof(m));
    m.type = MSG_RECON_ERR;
    m.sid = st.sid;
    m.from = RECON_RESPONDER;
    m.code = 9999; /* unknown code: reported as a protocol error */
    m.reason = "bad\nthing";
    m.reason_len = 9;
    wb_init(&w, MSG_MAX);
    assert_int_equal(recon_msg_encode(&m, &w), 0);
    assert_int_equal(recon_on_msg(a.eng, 1000, w.p, w.len), 0);
    peer_drain(&a, 1000);
    assert_int_equal(a.failed[RECON_INITIATOR], 3);
    assert_int_equal(a.err[RECON_INITIATOR], PULL_ERR_PROTOCOL);
    assert_string_equal(a.reason[RECON_INITIATOR], "peer: bad?thing");
    wb_release(&w);
    free(only_a.v);
    free(only_b.v);
    peer_release(&a);
    peer_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_incremental),
        cmocka_unit_test(test_set_add_all),
        cmocka_unit_test(test_session_equal),
        cmocka_unit_test(test_session_one),
        cmocka_unit_test(test_session_sizes),
        cmocka_unit_test(test_session_beyond_cache),
        cmocka_unit_test(test_session_salted),
        cmocka_unit_test(test_session_no_iterator),
        cmocka_unit_test(test_refuse_salted),
        cmocka_unit_test(test_session_snapshot),
        cmocka_unit_test(test_session_journal_overflow),
        cmocka_unit_test(test_session_chunked),
        cmocka_unit_test(test_session_lossy),
        cmocka_unit_test(test_session_cap),
        cmocka_unit_test(test_session_both_ways),
        cmocka_unit_test(test_session_superseded),
        cmocka_unit_test(test_session_timeout_hard),
        cmocka_unit_test(test_session_stopping_set),
        cmocka_unit_test(test_msg_roundtrip),
        cmocka_unit_test(test_msg_truncated),
        cmocka_unit_test(test_msg_hostile),
        cmocka_unit_test(test_msg_hostile_in_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
