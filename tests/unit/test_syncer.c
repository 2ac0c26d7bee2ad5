/*
 * Tests of the protocol engine (proto/syncer.h) without sockets and without the simulator:
 * a few engines wired by a tiny message pump in this file (FIFO per direction, flushes
 * reported once a message is delivered), each with a store of its own, checking the
 * engine's rules one by one: the dialer reconciles on connect; RECON_BULK when holding at
 * most MSG_BULK_MAX records, and the pass pushes exactly what the peer lacks; WANT pacing;
 * the RECON_REQ rate limit; a peer sending garbage is dropped after SYNCER_BAD_MAX errors;
 * known peers (PUT on connect, loading and feeding the most recent, rejoining when alone);
 * mail (push to a connected recipient, relay through a third node, one MAIL action per
 * item, the sweep); a local record is published at the end of the outermost call, also
 * when the store reports it from inside offer().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "proto/mail.h"
#include "proto/msg.h"
#include "proto/recon.h"
#include "proto/syncer.h"
#include "testutil.h"

#define TN_MAX 4
#define T_FEATURES (MSG_FEAT_RECON | MSG_FEAT_MAIL)
#define T_WALL0 1800000000ull
#define T_ENV_LEN 200

/* ------------------------------------------------------------------ records */

#define T_UNIVERSE 8192 /* records 0 .. T_UNIVERSE - 1 exist */

static uint8_t uni_id[T_UNIVERSE][32];
static uint32_t uni_slot[2 * T_UNIVERSE]; /* id -> k + 1, open addressing */

/* Record k: T_ENV_LEN bytes derived from k (an array header, k, a pattern). */
static void
rec_env(uint32_t k, uint8_t env[T_ENV_LEN])
{
    for (size_t b = 0; b < T_ENV_LEN; b++)
        env[b] = (uint8_t)(k * 131u + b * 7u);
    env[0] = 0x92;
    be32enc(env + 1, k);
}

static void
universe_init(void)
{
    for (uint32_t k = 0; k < T_UNIVERSE; k++) {
        uint8_t env[T_ENV_LEN];
        uint32_t h;
        rec_env(k, env);
        crypto_generichash(uni_id[k], 32, env, T_ENV_LEN, NULL, 0);
        for (h = be32dec(uni_id[k]) % (2 * T_UNIVERSE); uni_slot[h] != 0;
             h = (h + 1) % (2 * T_UNIVERSE))
            ;
        uni_slot[h] = k + 1;
    }
}

static int
uni_find(const uint8_t id[32], uint32_t *k)
{
    for (uint32_t h = be32dec(id) % (2 * T_UNIVERSE); uni_slot[h] != 0;
         h = (h + 1) % (2 * T_UNIVERSE)) {
        if (memcmp(uni_id[uni_slot[h] - 1], id, 32) == 0) {
            *k = uni_slot[h] - 1;
            return 0;
        }
    }
    return PULL_ERR_NOT_FOUND;
}

/* ------------------------------------------------------------------ nodes */

struct tnode {
    struct env_seeded env;
    struct ident id;
    char addr[32];
    struct syncer *e;
    struct syncer_config cfg;
    /* the store: which records it holds, and in which order they came (time order) */
    uint8_t have[T_UNIVERSE / 8];
    uint32_t *recs;
    size_t nrec, crec;
    uint64_t offers, news, dups;
    /* what the engine asked of the host */
    uint64_t puts_peers, puts_mail, dels_mail, mails, connects, disconnects;
    uint8_t last_connect[32];
    uint32_t last_bye;
    uint8_t *mail_item; /* the last MAIL action's item */
    size_t mail_len;
    bool up[TN_MAX];
    /* offer() hook: store a local record from inside offer (the re-entrance test) */
    int64_t store_local_on_offer;
};

struct tmsg {
    int from, to;
    uint8_t *data;
    size_t len;
    bool counted;
    struct tmsg *next;
};

static struct tnode tn[TN_MAX];
static int ntn;
static struct tmsg *q_head, *q_tail;
static uint64_t tnow = 1000;
static uint64_t sent_type[TN_MAX][64]; /* messages sent by node, by type */
static uint64_t want_ids_out;          /* ids in WANTs sent by node 0 */
static bool hold_wants;                /* keep node 0's WANTs in the held queue */
static bool hold_takes;                /* ... and its RECON_TAKEs */
static struct tmsg *held_head, *held_tail;

static int
tn_index(const uint8_t key[32])
{
    for (int i = 0; i < ntn; i++)
        if (memcmp(tn[i].id.pk, key, 32) == 0)
            return i;
    return -1;
}

static bool
store_has(const struct tnode *n, uint32_t k)
{
    return k < T_UNIVERSE && (n->have[k / 8] >> (k % 8) & 1);
}

static void
store_add(struct tnode *n, uint32_t k)
{
    assert_true(k < T_UNIVERSE);
    if (store_has(n, k))
        return;
    if (n->nrec == n->crec) {
        n->crec = n->crec ? n->crec * 2 : 64;
        n->recs = realloc(n->recs, n->crec * sizeof(*n->recs));
        assert_non_null(n->recs);
    }
    n->recs[n->nrec++] = k;
    n->have[k / 8] |= (uint8_t)(1u << (k % 8));
}

static void tn_stored(int i, uint32_t k, bool local);

static enum gossip_verdict
cb_offer(void *ctx, const uint8_t *env, size_t len, const uint8_t id[32], const uint8_t from[32])
{
    struct tnode *n = ctx;
    uint8_t want[T_ENV_LEN];
    uint32_t k;

    (void)from;
    n->offers++;
    if (uni_find(id, &k) != 0 || len != T_ENV_LEN)
        return GOSSIP_INVALID;
    rec_env(k, want);
    if (memcmp(want, env, len) != 0)
        return GOSSIP_INVALID;
    if (store_has(n, k)) {
        n->dups++;
        return GOSSIP_DUPLICATE;
    }
    n->news++;
    tn_stored((int)(n - tn), k, false);
    if (n->store_local_on_offer >= 0) {
        /* a commit forced by a full batch: a local record lands from inside offer() */
        uint32_t local = (uint32_t)n->store_local_on_offer;
        n->store_local_on_offer = -1;
        tn_stored((int)(n - tn), local, true);
    }
    return GOSSIP_NEW;
}

static bool
cb_has(void *ctx, const uint8_t id[32])
{
    uint32_t k;

    return uni_find(id, &k) == 0 && store_has(ctx, k);
}

static int
cb_fetch(void *ctx, const uint8_t id[32], uint8_t *buf, size_t cap, size_t *len)
{
    uint32_t k;

    *len = 0;
    if (uni_find(id, &k) != 0 || !store_has(ctx, k) || cap < T_ENV_LEN)
        return PULL_ERR_NOT_FOUND;
    rec_env(k, buf);
    *len = T_ENV_LEN;
    return 0;
}

static int
cb_each_id(void *ctx, recon_visit_fn visit, void *vctx)
{
    struct tnode *n = ctx;
    int rc;

    for (size_t i = 0; i < n->nrec; i++) {
        if ((rc = visit(vctx, uni_id[n->recs[i]])) != 0)
            return rc;
    }
    return 0;
}

/* Time order: the order of arrival in the store (created = position). */
static int
cb_each_key(void *ctx, uint64_t since,
            int (*visit)(void *vctx, uint64_t created, const uint8_t id[32]), void *vctx)
{
    struct tnode *n = ctx;
    int rc;

    for (size_t i = (size_t)since; i < n->nrec; i++) {
        if ((rc = visit(vctx, i, uni_id[n->recs[i]])) != 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ the pump */

static void
q_append(struct tmsg **head, struct tmsg **tail, struct tmsg *m)
{
    m->next = NULL;
    if (*tail != NULL)
        (*tail)->next = m;
    else
        *head = m;
    *tail = m;
}

/* q_pop takes the oldest message off a queue, or NULL. */
static struct tmsg *
q_pop(struct tmsg **head, struct tmsg **tail)
{
    struct tmsg *m = *head;

    if (m != NULL && (*head = m->next) == NULL)
        *tail = NULL;
    return m;
}

static void
clock_set(int i)
{
    tn[i].env.now_ms = tnow;
    tn[i].env.wall_s = T_WALL0 + tnow / 1000;
}

/* after drains node i's actions after a call, as pulld's executor does. */
static void
after(int i)
{
    struct syncer_action a;
    struct tnode *n = &tn[i];

    while (n->e != NULL && syncer_poll_action(n->e, &a)) {
        int j = tn_index(a.peer);
        switch (a.type) {
        case SYNCER_ACT_SEND: {
            uint32_t type = 0;
            struct tmsg *m;
            assert_true(j >= 0);
            /* the engine never sends to a peer it does not hold a connection with */
            assert_true(n->up[j]);
            (void)msg_peek_type(a.data, a.len, &type);
            sent_type[i][type < 64 ? type : 0]++;
            if (i == 0 && type == MSG_WANT)
                want_ids_out += a.len / 34;
            m = calloc(1, sizeof(*m));
            assert_non_null(m);
            m->from = i;
            m->to = j;
            m->data = a.data;
            m->len = a.len;
            m->counted = a.counted;
            a.data = NULL;
            if (i == 0 &&
                ((hold_wants && type == MSG_WANT) || (hold_takes && type == MSG_RECON_TAKE)))
                q_append(&held_head, &held_tail, m);
            else
                q_append(&q_head, &q_tail, m);
            break;
        }
        case SYNCER_ACT_CONNECT:
            n->connects++;
            memcpy(n->last_connect, a.peer, 32);
            break;
        case SYNCER_ACT_DISCONNECT:
            n->disconnects++;
            n->last_bye = a.bye;
            if (j >= 0 && n->up[j]) {
                n->up[j] = false;
                if (tn[j].up[i]) {
                    tn[j].up[i] = false;
                    clock_set(j);
                    syncer_on_disconnected(tn[j].e, n->id.pk, tnow);
                    after(j);
                }
            }
            break;
        case SYNCER_ACT_PUT:
            if (a.table == SYNCER_TABLE_PEERS)
                n->puts_peers++;
            else
                n->puts_mail++;
            break;
        case SYNCER_ACT_DEL:
            if (a.table == SYNCER_TABLE_MAIL)
                n->dels_mail++;
            break;
        case SYNCER_ACT_MAIL:
            n->mails++;
            free(n->mail_item);
            n->mail_item = malloc(a.len);
            assert_non_null(n->mail_item);
            memcpy(n->mail_item, a.data, a.len);
            n->mail_len = a.len;
            break;
        }
        syncer_action_release(&a);
    }
}

static void
tn_stored(int i, uint32_t k, bool local)
{
    uint8_t env[T_ENV_LEN];

    rec_env(k, env);
    store_add(&tn[i], k);
    if (tn[i].e != NULL)
        syncer_on_stored(tn[i].e, uni_id[k], NULL, env, T_ENV_LEN, local);
}

/* deliver_one delivers the oldest queued message; returns false when none is left. */
static bool
deliver_one(void)
{
    struct tmsg *m = q_pop(&q_head, &q_tail);

    if (m == NULL)
        return false;
    if (tn[m->to].up[m->from] && tn[m->from].up[m->to]) {
        clock_set(m->to);
        (void)syncer_on_message(tn[m->to].e, tn[m->from].id.pk, m->data, m->len, tnow);
        after(m->to);
    }
    if (tn[m->from].up[m->to]) {
        clock_set(m->from);
        syncer_on_flushed(tn[m->from].e, tn[m->to].id.pk, m->len, m->counted, tnow);
        after(m->from);
    }
    free(m->data);
    free(m);
    return true;
}

static void
timers(void)
{
    for (int i = 0; i < ntn; i++) {
        if (tn[i].e != NULL && syncer_next_deadline(tn[i].e) <= tnow) {
            clock_set(i);
            syncer_on_timeout(tn[i].e, tnow);
            after(i);
        }
    }
}

/* run delivers everything and advances the clock by step_ms until ms have passed. */
static void
run(uint64_t ms, uint64_t step_ms)
{
    uint64_t end = tnow + ms;

    for (;;) {
        while (deliver_one())
            ;
        timers();
        if (q_head != NULL)
            continue;
        if (tnow >= end)
            break;
        tnow += step_ms;
        timers();
    }
}

static void
tn_connect(int a, int b)
{
    tn[a].up[b] = tn[b].up[a] = true;
    clock_set(a);
    syncer_on_connected(tn[a].e, tn[b].id.pk, false, tn[b].addr, T_FEATURES, tnow);
    after(a);
    clock_set(b);
    syncer_on_connected(tn[b].e, tn[a].id.pk, true, tn[a].addr, T_FEATURES, tnow);
    after(b);
}

static const struct syncer_host host_tmpl = {.offer = cb_offer,
                                             .has = cb_has,
                                             .fetch = cb_fetch,
                                             .each_id = cb_each_id,
                                             .each_key = cb_each_key};

static void
tn_start(int i)
{
    struct syncer_host h = host_tmpl;

    h.ctx = &tn[i];
    clock_set(i);
    assert_int_equal(syncer_new(&tn[i].env.env, tn[i].id.pk, tn[i].addr, &tn[i].cfg, &h, &tn[i].e),
                     0);
    after(i);
}

/* setup_nodes makes n nodes (not started) with default configs. */
static void
setup_nodes(int n)
{
    ntn = n;
    for (int i = 0; i < n; i++) {
        uint8_t seed[32];
        memset(&tn[i], 0, sizeof(tn[i]));
        memset(seed, 0x40 + i, sizeof(seed));
        assert_int_equal(ident_from_seed(&tn[i].id, seed), 0);
        snprintf(tn[i].addr, sizeof(tn[i].addr), "10.0.0.%d:7450", i + 1);
        env_seeded_init(&tn[i].env, 100 + (uint64_t)i, tnow, T_WALL0 + tnow / 1000);
        syncer_config_default(&tn[i].cfg);
        tn[i].store_local_on_offer = -1;
    }
}

static int
teardown_nodes(void **state)
{
    (void)state;
    while (q_head != NULL) {
        struct tmsg *m = q_head;
        q_head = m->next;
        free(m->data);
        free(m);
    }
    while (held_head != NULL) {
        struct tmsg *m = held_head;
        held_head = m->next;
        free(m->data);
        free(m);
    }
    q_tail = held_tail = NULL;
    for (int i = 0; i < ntn; i++) {
        syncer_free(tn[i].e);
        free(tn[i].recs);
        free(tn[i].mail_item);
        memset(&tn[i], 0, sizeof(tn[i]));
    }
    memset(sent_type, 0, sizeof(sent_type));
    want_ids_out = 0;
    hold_wants = false;
    hold_takes = false;
    ntn = 0;
    return 0;
}

static bool
holds_all(int i, uint32_t from, uint32_t to)
{
    for (uint32_t k = from; k < to; k++)
        if (!store_has(&tn[i], k))
            return false;
    return true;
}

/* ------------------------------------------------------------------ reconciliation */

/* The dialer reconciles on connect (no bulk here): both end with the union. */
static void
test_dialer_reconciles(void **state)
{
    (void)state;
    setup_nodes(2);
    for (uint32_t k = 0; k < 80; k++)
        store_add(&tn[0], k);
    for (uint32_t k = 50; k < 150; k++)
        store_add(&tn[1], k);
    for (int i = 0; i < 2; i++) {
        tn[i].cfg.bulk = false;
        tn[i].cfg.sync_interval_ms = 0; /* no periodic session */
        tn_start(i);
    }
    tn_connect(0, 1);
    /* the dialer's REQ is queued by the connect itself; the acceptor starts nothing */
    assert_int_equal(sent_type[0][MSG_RECON_REQ], 1);
    assert_int_equal(sent_type[1][MSG_RECON_REQ], 0);
    run(5000, 100);
    assert_true(holds_all(0, 0, 150));
    assert_true(holds_all(1, 0, 150));
    assert_int_equal(tn[0].dups + tn[1].dups, 0);
    assert_int_equal(syncer_set_size(tn[0].e), 150);
    assert_int_equal(syncer_set_size(tn[1].e), 150);
}

/* A dialer holding at most MSG_BULK_MAX records lists them (RECON_BULK); the peer wants
 * the ones it lacks and pushes exactly the ones the dialer lacks, nothing twice. */
static void
test_bulk_pushes_what_peer_lacks(void **state)
{
    struct syncer_stats st;

    (void)state;
    setup_nodes(2);
    for (uint32_t k = 0; k < 30; k++)
        store_add(&tn[0], k);
    for (uint32_t k = 20; k < 1520; k++)
        store_add(&tn[1], k);
    for (int i = 0; i < 2; i++) {
        tn[i].cfg.sync_interval_ms = 0;
        tn_start(i);
    }
    tn_connect(0, 1);
    assert_int_equal(sent_type[0][MSG_RECON_BULK], 1);
    assert_int_equal(sent_type[0][MSG_RECON_REQ], 0);
    run(10000, 100);
    assert_true(holds_all(0, 0, 1520));
    assert_true(holds_all(1, 0, 1520));
    /* exactly what each lacked: 1490 to the dialer, 20 to the peer */
    assert_int_equal(tn[0].news, 1490);
    assert_int_equal(tn[1].news, 20);
    assert_int_equal(tn[0].dups, 0);
    assert_int_equal(tn[1].dups, 0);
    syncer_get_stats(tn[1].e, &st);
    assert_int_equal(st.recon_failed, 0);
    assert_true(st.recon_sessions >= 1);
}

/* release_held moves the oldest held message back to the queue; false if none is held. */
static bool
release_held(void)
{
    struct tmsg *m = q_pop(&held_head, &held_tail);

    if (m == NULL)
        return false;
    q_append(&q_head, &q_tail, m);
    return true;
}

static size_t
held_count(void)
{
    size_t n = 0;

    for (const struct tmsg *m = held_head; m != NULL; m = m->next)
        n++;
    return n;
}

/* Bulk catch-up keeps SYNCER_BULK_AHEAD chunks announced ahead of their RECON_TAKE, no
 * more: the next chunk's records follow right behind the last one's, and what the server
 * sends stays bounded by what the peer took. A TAKE for a chunk no longer waiting is
 * ignored. */
static void
test_bulk_chunks_ahead(void **state)
{
    struct syncer_stats st;
    uint64_t haves, limited;

    (void)state;
    setup_nodes(2);
    for (uint32_t k = 0; k < 5000; k++)
        store_add(&tn[1], k);
    for (int i = 0; i < 2; i++) {
        tn[i].cfg.sync_interval_ms = 0;
        tn_start(i);
    }
    hold_takes = true;
    tn_connect(0, 1);
    run(300, 50);
    /* two chunks announced, both answered (held), nothing pushed yet */
    assert_int_equal(sent_type[1][MSG_RECON_HAVE], SYNCER_BULK_AHEAD);
    assert_int_equal(held_count(), SYNCER_BULK_AHEAD);
    assert_int_equal(tn[0].news, 0);
    /* one answer lets one more chunk out, and its records come */
    assert_true(release_held());
    while (deliver_one())
        ;
    assert_int_equal(sent_type[1][MSG_RECON_HAVE], SYNCER_BULK_AHEAD + 1);
    assert_int_equal(tn[0].news, SYNCER_BULK_FIRST);
    /* the same answer again (a duplicate of a chunk already taken) changes nothing */
    syncer_get_stats(tn[1].e, &st);
    limited = st.recon_limited;
    {
        struct tmsg *dup = calloc(1, sizeof(*dup));
        assert_non_null(dup);
        *dup = *held_head;
        dup->data = malloc(dup->len);
        assert_non_null(dup->data);
        memcpy(dup->data, held_head->data, dup->len);
        dup->next = NULL;
        assert_true(release_held());
        q_append(&q_head, &q_tail, dup);
    }
    while (deliver_one())
        ;
    syncer_get_stats(tn[1].e, &st);
    assert_int_equal(st.recon_limited, limited + 1);
    assert_int_equal(tn[0].dups, 0);
    /* the rest, one answer at a time: never more than SYNCER_BULK_AHEAD waiting */
    for (int guard = 0; guard < 1000 && !holds_all(0, 0, 5000); guard++) {
        assert_true(held_count() <= SYNCER_BULK_AHEAD);
        haves = sent_type[1][MSG_RECON_HAVE];
        if (!release_held()) {
            tnow += 10;
            timers();
            continue;
        }
        while (deliver_one())
            ;
        assert_true(sent_type[1][MSG_RECON_HAVE] <= haves + 1);
    }
    while (release_held())
        while (deliver_one())
            ;
    run(1000, 100);
    assert_true(holds_all(0, 0, 5000));
    assert_int_equal(tn[0].news, 5000);
    assert_int_equal(tn[0].dups, 0);
    syncer_get_stats(tn[1].e, &st);
    assert_int_equal(st.recon_failed, 0);
}

/* WANT pacing: never more than SYNCER_WANT_INFLIGHT ids asked and not answered. */
static void
test_want_pacing(void **state)
{
    uint64_t answered;

    (void)state;
    setup_nodes(2);
    for (uint32_t k = 0; k < 3000; k++)
        store_add(&tn[1], k);
    store_add(&tn[0], 5000); /* one of its own */
    for (int i = 0; i < 2; i++) {
        tn[i].cfg.bulk = false;
        tn[i].cfg.sync_interval_ms = 0;
        tn_start(i);
    }
    hold_wants = true;
    tn_connect(0, 1);
    run(500, 50); /* the session: node 0 learns that it lacks 3000 ids */
    assert_true(want_ids_out > 0);
    assert_true(want_ids_out <= SYNCER_WANT_INFLIGHT);
    /* the peer answers one WANT at a time: asked - answered stays under the bound */
    while (release_held()) {
        while (deliver_one())
            ;
        answered = tn[0].news;
        assert_true(want_ids_out - answered <= SYNCER_WANT_INFLIGHT);
        if (held_head == NULL) { /* the next ones come after the answers */
            tnow += 10;
            timers();
        }
    }
    assert_int_equal(tn[0].news, 3000);
    assert_int_equal(want_ids_out, 3000);
    assert_int_equal(tn[0].dups, 0);
}

/* A second RECON_REQ within SYNCER_REQ_GAP_MS gets RECON_ERR "too many requests". */
static void
test_req_rate_limit(void **state)
{
    struct syncer_stats st;
    struct recon_msg m;
    struct pull_wb w;
    struct syncer_action a;
    bool err_seen = false;

    (void)state;
    setup_nodes(2);
    for (uint32_t k = 0; k < 10; k++)
        store_add(&tn[0], k);
    for (int i = 0; i < 2; i++) {
        tn[i].cfg.bulk = false;
        tn[i].cfg.sync_interval_ms = 0;
        tn_start(i);
    }
    tn_connect(0, 1);
    run(200, 10); /* the first session, accepted */
    syncer_get_stats(tn[1].e, &st);
    assert_int_equal(st.recon_limited, 0);
    /* a second request from node 0 right away (forged: a new session id) */
    memset(&m, 0, sizeof(m));
    m.type = MSG_RECON_REQ;
    m.sid = 77;
    m.credit = 16;
    wb_init(&w, MSG_MAX);
    assert_int_equal(recon_msg_encode(&m, &w), 0);
    clock_set(1);
    assert_int_equal(syncer_on_message(tn[1].e, tn[0].id.pk, w.p, w.len, tnow), 0);
    wb_release(&w);
    while (syncer_poll_action(tn[1].e, &a)) {
        struct recon_msg r;
        if (a.type == SYNCER_ACT_SEND && recon_msg_decode(a.data, a.len, &r) == 0 &&
            r.type == MSG_RECON_ERR && r.sid == 77) {
            err_seen = true;
            assert_int_equal(r.code, (uint32_t)-PULL_ERR_AGAIN);
            assert_int_equal(r.reason_len, strlen("too many requests"));
            assert_memory_equal(r.reason, "too many requests", r.reason_len);
        }
        syncer_action_release(&a);
    }
    assert_true(err_seen);
    syncer_get_stats(tn[1].e, &st);
    assert_int_equal(st.recon_limited, 1);
    assert_int_equal(st.frames_bad, 0);
    /* after the gap, a request is served again */
    tnow += SYNCER_REQ_GAP_MS;
    m.sid = 78;
    wb_init(&w, MSG_MAX);
    assert_int_equal(recon_msg_encode(&m, &w), 0);
    clock_set(1);
    (void)syncer_on_message(tn[1].e, tn[0].id.pk, w.p, w.len, tnow);
    wb_release(&w);
    after(1);
    syncer_get_stats(tn[1].e, &st);
    assert_int_equal(st.recon_limited, 1);
}

/* A peer sending malformed reconciliation messages is dropped after SYNCER_BAD_MAX. */
static void
test_garbage_recon_dropped(void **state)
{
    static const uint8_t junk[] = {0x93, MSG_RECON_SYMBOLS, 0xc0, 0xc1};
    struct syncer_stats st;

    (void)state;
    setup_nodes(2);
    for (int i = 0; i < 2; i++) {
        tn[i].cfg.sync_interval_ms = 0;
        tn_start(i);
    }
    tn_connect(0, 1);
    run(200, 10);
    for (int k = 0; k < SYNCER_BAD_MAX; k++) {
        clock_set(1);
        assert_true(syncer_on_message(tn[1].e, tn[0].id.pk, junk, sizeof(junk), tnow) < 0);
        after(1);
        assert_int_equal(tn[1].disconnects, 0);
        assert_true(tn[1].up[0]);
    }
    clock_set(1);
    (void)syncer_on_message(tn[1].e, tn[0].id.pk, junk, sizeof(junk), tnow);
    after(1);
    assert_int_equal(tn[1].disconnects, 1);
    assert_int_equal(tn[1].last_bye, MSG_BYE_PROTOCOL);
    assert_false(tn[1].up[0]);
    syncer_get_stats(tn[1].e, &st);
    assert_int_equal(st.peers_dropped, 1);
    assert_int_equal(st.frames_bad, SYNCER_BAD_MAX + 1);
    /* what was still in flight from it is ignored */
    clock_set(1);
    assert_int_equal(syncer_on_message(tn[1].e, tn[0].id.pk, junk, sizeof(junk), tnow), 0);
    after(1);
}

static void
test_malformed_message_dropped(void **state)
{
    static const uint8_t junk[] = {0xc1, 0x00};
    struct syncer_stats st;

    (void)state;
    setup_nodes(2);
    for (int i = 0; i < 2; i++)
        tn_start(i);
    tn_connect(0, 1);
    run(200, 10);
    clock_set(1);
    assert_true(syncer_on_message(tn[1].e, tn[0].id.pk, junk, sizeof(junk), tnow) < 0);
    after(1);
    assert_int_equal(tn[1].disconnects, 1);
    syncer_get_stats(tn[1].e, &st);
    assert_int_equal(st.peers_dropped, 1);
}

/* ------------------------------------------------------------------ known peers */

static void
peer_row(uint8_t *val, size_t *len, uint64_t seen_s, const char *addr)
{
    be64enc(val, seen_s);
    memcpy(val + 8, addr, strlen(addr));
    *len = 8 + strlen(addr);
}

static void
test_known_peers(void **state)
{
    uint8_t val[64];
    size_t len;

    (void)state;
    setup_nodes(4);
    for (int i = 0; i < 4; i++)
        tn_start(i);
    /* a connection is persisted (PUT in the peers table) on both sides */
    tn_connect(1, 2);
    assert_int_equal(tn[1].puts_peers, 1);
    assert_int_equal(tn[2].puts_peers, 1);
    /* node 0 loads rows: node 3 seen an hour ago, node 1 a minute ago, node 2 long ago
     * (older than SYNCER_PEER_MAX_AGE_S: never fed); it joins through the most recent */
    peer_row(val, &len, T_WALL0 - 3600, tn[3].addr);
    syncer_load_peer(tn[0].e, tn[3].id.pk, val, len, 0);
    peer_row(val, &len, T_WALL0 - 60, tn[1].addr);
    syncer_load_peer(tn[0].e, tn[1].id.pk, val, len, 0);
    peer_row(val, &len, T_WALL0 - SYNCER_PEER_MAX_AGE_S - 10, tn[2].addr);
    syncer_load_peer(tn[0].e, tn[2].id.pk, val, len, 0);
    syncer_load_peer(tn[0].e, tn[0].id.pk, val, len, 0); /* itself: ignored */
    syncer_load_peer(tn[0].e, tn[3].id.pk, val, 4, 0);   /* malformed: ignored */
    clock_set(0);
    syncer_start(tn[0].e, tnow);
    after(0);
    assert_int_equal(tn[0].connects, 1);
    assert_memory_equal(tn[0].last_connect, tn[1].id.pk, 32);
    /* every dial fails: alone, the node feeds its known peers again, with a growing gap,
     * and dials again (never the stale one) */
    for (int k = 0; k < 120; k++) {
        uint64_t seen = tn[0].connects;
        assert_true(memcmp(tn[0].last_connect, tn[2].id.pk, 32) != 0);
        clock_set(0);
        syncer_on_disconnected(tn[0].e, tn[0].last_connect, tnow);
        after(0);
        while (tn[0].connects == seen && tnow < 200000) {
            tnow += 250;
            timers();
        }
    }
    assert_true(tn[0].connects >= 10);
    assert_int_equal(syncer_active_count(tn[0].e), 0);
}

/* After a crash the node restarts with a peers table full of one-shot sessions (a stranger
 * connecting with many keys) and one long-lived good peer, seen longer ago: the good peer
 * is ranked first and dialed first, and it is among the rows fed whatever their number. */
static void
test_known_peers_ranked(void **state)
{
    uint8_t val[64], key[32];
    size_t len;
    char addr[32];

    (void)state;
    setup_nodes(2);
    tn_start(0);
    tn_start(1);
    for (int k = 0; k < 3 * SYNCER_PEERS_LOAD_MAX; k++) {
        memset(key, 0, sizeof(key));
        key[0] = 0xee;
        key[1] = (uint8_t)(k >> 8);
        key[2] = (uint8_t)k;
        snprintf(addr, sizeof(addr), "10.9.%d.%d:7450", k / 250, k % 250 + 1);
        peer_row(val, &len, T_WALL0 - 60 - (uint64_t)k, addr); /* recent: the last hour */
        syncer_load_peer(tn[0].e, key, val, len, 1);           /* one session each */
    }
    peer_row(val, &len, T_WALL0 - 7200, tn[1].addr); /* two hours ago, but a regular */
    syncer_load_peer(tn[0].e, tn[1].id.pk, val, len, 14);
    clock_set(0);
    syncer_start(tn[0].e, tnow);
    after(0);
    assert_int_equal(tn[0].connects, 1);
    assert_memory_equal(tn[0].last_connect, tn[1].id.pk, 32);
}

/* ------------------------------------------------------------------ mail */

static void
seal(int from, int to, uint64_t expires, struct pull_wb *item)
{
    static const uint8_t note[] = "a dyad message";

    wb_init(item, MAIL_ITEM_MAX);
    clock_set(from);
    assert_int_equal(mail_seal(&tn[from].env.env, &tn[from].id, tn[to].id.pk, note, sizeof(note),
                               expires, item, NULL),
                     0);
}

static void
test_mail_direct(void **state)
{
    struct pull_wb item;
    struct syncer_stats st;

    (void)state;
    setup_nodes(2);
    for (int i = 0; i < 2; i++)
        tn_start(i);
    tn_connect(0, 1);
    run(200, 10);
    seal(0, 1, T_WALL0 + 86400, &item);
    clock_set(0);
    assert_int_equal(syncer_mail_post(tn[0].e, item.p, item.len, tnow), 0);
    after(0);
    assert_int_equal(tn[0].puts_mail, 1); /* kept in the outbox */
    assert_int_equal(sent_type[0][MSG_MAIL], 1);
    assert_int_equal(syncer_mail_post(tn[0].e, item.p, item.len, tnow), PULL_ERR_DUPLICATE);
    run(200, 10);
    assert_int_equal(tn[1].mails, 1);
    assert_int_equal(tn[1].mail_len, item.len);
    assert_memory_equal(tn[1].mail_item, item.p, item.len);
    assert_int_equal(tn[1].puts_mail, 1); /* kept in the inbox */
    /* the same item again: no second MAIL action */
    {
        struct mail_ref ref = {item.p, item.len};
        struct pull_wb msg;
        wb_init(&msg, MSG_MAX);
        assert_int_equal(mail_msg_encode(&ref, 1, &msg), 0);
        clock_set(1);
        assert_int_equal(syncer_on_message(tn[1].e, tn[0].id.pk, msg.p, msg.len, tnow), 0);
        after(1);
        wb_release(&msg);
    }
    assert_int_equal(tn[1].mails, 1);
    syncer_get_stats(tn[1].e, &st);
    assert_int_equal(st.mail_bad, 0);
    /* a reconnect announces the item (ids only); the recipient has it: nothing more */
    tn[0].up[1] = tn[1].up[0] = false;
    clock_set(0);
    syncer_on_disconnected(tn[0].e, tn[1].id.pk, tnow);
    after(0);
    clock_set(1);
    syncer_on_disconnected(tn[1].e, tn[0].id.pk, tnow);
    after(1);
    sent_type[0][MSG_MAIL] = 0;
    tnow += 2000;
    tn_connect(0, 1);
    run(500, 10);
    assert_true(sent_type[0][MSG_MAIL_IHAVE] >= 1);
    assert_int_equal(sent_type[0][MSG_MAIL], 0);
    assert_int_equal(tn[1].mails, 1);
    wb_release(&item);
}

/* A -> C -> B: A posts for B, which it isn't connected to; C carries it. */
static void
test_mail_relay(void **state)
{
    struct pull_wb item;
    struct syncer_stats st;
    uint8_t id[MAIL_ID_BYTES];
    struct mail_item m;

    (void)state;
    setup_nodes(3);
    for (int i = 0; i < 3; i++) {
        tn[i].cfg.gossip.active_size = 2;
        tn_start(i);
    }
    tn_connect(0, 2);
    tn_connect(2, 1);
    run(300, 10);
    seal(0, 1, T_WALL0 + 86400, &item);
    assert_int_equal(mail_parse(item.p, item.len, &m), 0);
    memcpy(id, m.id, sizeof(id));
    clock_set(0);
    assert_int_equal(syncer_mail_post(tn[0].e, item.p, item.len, tnow), 0);
    after(0);
    assert_int_equal(sent_type[0][MSG_MAIL], 0); /* announced, not pushed */
    assert_int_equal(sent_type[0][MSG_MAIL_IHAVE], 1);
    run(500, 10);
    assert_true(syncer_mail_has(tn[2].e, id));
    syncer_get_stats(tn[2].e, &st);
    assert_int_equal(st.mail_relayed, 1);
    assert_int_equal(tn[2].puts_mail, 1);
    assert_int_equal(tn[2].mails, 0); /* not for C */
    assert_int_equal(tn[1].mails, 1);
    assert_memory_equal(tn[1].mail_item, item.p, item.len);
    /* the sweep: once expired, every holder deletes it (DEL) */
    tnow += 2ull * 86400 * 1000;
    for (int i = 0; i < 3; i++) {
        clock_set(i);
        syncer_on_timeout(tn[i].e, tnow);
        after(i);
    }
    for (int i = 0; i < 3; i++) {
        assert_false(syncer_mail_has(tn[i].e, id));
        assert_int_equal(tn[i].dels_mail, 1);
        syncer_get_stats(tn[i].e, &st);
        assert_int_equal(st.mail_swept, 1);
        assert_int_equal(st.mail_held, 0);
    }
    wb_release(&item);
}

/* ------------------------------------------------------------------ publishing */

/* A local record is published at the end of the outermost call: stored outside a call,
 * at the next one (the deadline is now); stored from inside offer(), by the end of the
 * syncer_on_message that offered. */
static void
test_local_publish(void **state)
{
    bool checked = false;

    (void)state;
    setup_nodes(2);
    for (int i = 0; i < 2; i++) {
        tn[i].cfg.recon = false; /* gossip only: what arrives was published */
        tn[i].cfg.sync_interval_ms = 0;
        tn_start(i);
    }
    tn_connect(0, 1);
    run(3000, 100);
    /* outside any call */
    tn_stored(0, 900, true);
    assert_null(q_head);
    assert_int_equal(syncer_next_deadline(tn[0].e), tnow);
    timers();
    assert_non_null(q_head);
    run(500, 10);
    assert_true(store_has(&tn[1], 900));
    /* from inside offer(): node 1 stores local record 901 while it takes 902 */
    tn[1].store_local_on_offer = 901;
    tn_stored(0, 902, true);
    timers();
    while (q_head != NULL && !checked) {
        bool to1 = q_head->to == 1;
        uint64_t before = sent_type[1][MSG_RECORDS];
        deliver_one();
        if (to1 && tn[1].store_local_on_offer < 0) {
            /* the call that offered 902 sent 901 on before returning */
            assert_true(sent_type[1][MSG_RECORDS] > before);
            checked = true;
        }
    }
    assert_true(checked);
    run(500, 10);
    assert_true(store_has(&tn[0], 901));
    assert_true(store_has(&tn[1], 902));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_dialer_reconciles, teardown_nodes),
        cmocka_unit_test_teardown(test_bulk_pushes_what_peer_lacks, teardown_nodes),
        cmocka_unit_test_teardown(test_bulk_chunks_ahead, teardown_nodes),
        cmocka_unit_test_teardown(test_want_pacing, teardown_nodes),
        cmocka_unit_test_teardown(test_req_rate_limit, teardown_nodes),
        cmocka_unit_test_teardown(test_garbage_recon_dropped, teardown_nodes),
        cmocka_unit_test_teardown(test_malformed_message_dropped, teardown_nodes),
        cmocka_unit_test_teardown(test_known_peers, teardown_nodes),
        cmocka_unit_test_teardown(test_known_peers_ranked, teardown_nodes),
        cmocka_unit_test_teardown(test_mail_direct, teardown_nodes),
        cmocka_unit_test_teardown(test_mail_relay, teardown_nodes),
        cmocka_unit_test_teardown(test_local_publish, teardown_nodes),
    };
    if (sodium_init() < 0)
        return 1;
    universe_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
