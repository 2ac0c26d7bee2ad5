/*
 * Tests of the gossip engine (proto/gossip.h) without the simulator: a few engines wired
 * by a tiny synchronous router in this file, hostile and malformed messages, scores and
 * bans, bounded queues.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "lib/err.h"
#include "lib/mp.h"
#include "proto/gossip.h"
#include "proto/msg.h"
#include "testutil.h"

/* ------------------------------------------------------------------ a tiny network */

#define TN_MAX 8
#define TREC_MAX 64

struct tnode {
    struct gossip *g;
    struct env_seeded env;
    uint8_t key[32];
    char addr[32];
    uint8_t ids[TREC_MAX][32]; /* the store */
    uint8_t *env_bytes[TREC_MAX];
    size_t env_len[TREC_MAX];
    int nrec;
    int offers, news, dups, invalids;
    bool flush; /* report flushes (a reading peer) */
    bool defer; /* offers answer PENDING: the verdict comes later (test_pending) */
    uint8_t pend_id[4][32];
    int npend;
    bool up[TN_MAX];
};

struct tmsg {
    int from, to;
    uint8_t *data;
    size_t len;
    struct tmsg *next;
};

static struct tnode tn[TN_MAX];
static int ntn;
static struct tmsg *q_head, *q_tail;
static uint64_t tnow;
static int sends_by_type[64];
static int connects[TN_MAX][TN_MAX]; /* CONNECT actions of i toward j */
static bool (*invalid_rule)(const uint8_t *env, size_t len);

static int
tn_index(const uint8_t key[32])
{
    for (int i = 0; i < ntn; i++) {
        if (memcmp(tn[i].key, key, 32) == 0)
            return i;
    }
    return -1;
}

static int
store_find(struct tnode *n, const uint8_t id[32])
{
    for (int i = 0; i < n->nrec; i++) {
        if (memcmp(n->ids[i], id, 32) == 0)
            return i;
    }
    return -1;
}

static void
store_put(struct tnode *n, const uint8_t *env, size_t len, const uint8_t id[32])
{
    assert_true(n->nrec < TREC_MAX);
    memcpy(n->ids[n->nrec], id, 32);
    n->env_bytes[n->nrec] = malloc(len);
    assert_non_null(n->env_bytes[n->nrec]);
    memcpy(n->env_bytes[n->nrec], env, len);
    n->env_len[n->nrec] = len;
    n->nrec++;
}

static enum gossip_verdict
t_offer(void *ctx, const uint8_t *env, size_t len, const uint8_t id[32], const uint8_t from[32])
{
    struct tnode *n = ctx;

    (void)from;
    n->offers++;
    if (invalid_rule != NULL && invalid_rule(env, len)) {
        n->invalids++;
        return GOSSIP_INVALID;
    }
    if (store_find(n, id) >= 0) {
        n->dups++;
        return GOSSIP_DUPLICATE;
    }
    store_put(n, env, len, id);
    if (n->defer) { /* verified elsewhere: has() is true from now on */
        assert_true(n->npend < 4);
        memcpy(n->pend_id[n->npend++], id, 32);
        return GOSSIP_PENDING;
    }
    n->news++;
    return GOSSIP_NEW;
}

static bool
t_has(void *ctx, const uint8_t id[32])
{
    return store_find(ctx, id) >= 0;
}

static int
t_fetch(void *ctx, const uint8_t id[32], uint8_t *buf, size_t cap, size_t *len)
{
    struct tnode *n = ctx;
    int i = store_find(n, id);

    *len = 0;
    if (i < 0 || n->env_len[i] > cap)
        return PULL_ERR_NOT_FOUND;
    memcpy(buf, n->env_bytes[i], n->env_len[i]);
    *len = n->env_len[i];
    return 0;
}

static void
tn_config(struct gossip_config *c)
{
    gossip_config_default(c);
    c->offer = t_offer;
    c->has = t_has;
    c->fetch = t_fetch;
}

static int
tn_add_cfg(const struct gossip_config *base)
{
    int i = ntn++;
    struct tnode *n = &tn[i];
    struct gossip_config c = *base;

    memset(n, 0, sizeof(*n));
    env_seeded_init(&n->env, 100 + (uint64_t)i, 0, 0);
    memset(n->key, 0, 32);
    n->key[0] = (uint8_t)(i + 1);
    n->key[31] = 0xaa;
    snprintf(n->addr, sizeof(n->addr), "node%d.test:7450", i);
    n->flush = true;
    c.ctx = n;
    assert_int_equal(gossip_new(&n->env.env, n->key, n->addr, &c, &n->g), 0);
    return i;
}

static int
tn_add(void)
{
    struct gossip_config c;

    tn_config(&c);
    return tn_add_cfg(&c);
}

static void
q_push(int from, int to, uint8_t *data, size_t len)
{
    struct tmsg *m = calloc(1, sizeof(*m));

    assert_non_null(m);
    m->from = from;
    m->to = to;
    m->data = data;
    m->len = len;
    if (q_tail != NULL)
        q_tail->next = m;
    else
        q_head = m;
    q_tail = m;
}

/* drain executes node i's actions: connections are instantaneous, messages queued. */
static void
drain(int i)
{
    struct gossip_action a;

    while (gossip_poll_action(tn[i].g, &a)) {
        int j = tn_index(a.peer);
        switch (a.type) {
        case GOSSIP_ACT_SEND: {
            uint32_t type = 0;
            (void)msg_peek_type(a.data, a.len, &type);
            if (type < 64)
                sends_by_type[type]++;
            if (j >= 0 && tn[i].up[j]) {
                q_push(i, j, a.data, a.len);
                a.data = NULL;
            }
            break;
        }
        case GOSSIP_ACT_CONNECT:
            if (j >= 0)
                connects[i][j]++;
            if (j < 0 || tn[j].g == NULL) {
                gossip_on_disconnected(tn[i].g, a.peer, tnow);
            } else if (!tn[i].up[j]) {
                tn[i].up[j] = tn[j].up[i] = true;
                gossip_on_connected(tn[i].g, tn[j].key, tn[j].addr, false, tnow);
                gossip_on_connected(tn[j].g, tn[i].key, tn[i].addr, true, tnow);
                drain(j);
            }
            break;
        case GOSSIP_ACT_DISCONNECT:
            /* The close reaches the peer after what was sent before it. */
            if (j >= 0 && tn[i].up[j])
                q_push(i, j, NULL, 0);
            break;
        case GOSSIP_ACT_DELIVER:
            break;
        }
        gossip_action_release(&a);
    }
}

/* run delivers queued messages until none is left. */
static void
run(void)
{
    for (int i = 0; i < ntn; i++)
        drain(i);
    while (q_head != NULL) {
        struct tmsg *m = q_head;
        q_head = m->next;
        if (q_head == NULL)
            q_tail = NULL;
        if (m->data == NULL) {
            if (tn[m->to].up[m->from]) {
                tn[m->to].up[m->from] = tn[m->from].up[m->to] = false;
                gossip_on_disconnected(tn[m->to].g, tn[m->from].key, tnow);
                drain(m->to);
            }
        } else if (tn[m->to].up[m->from]) {
            (void)gossip_on_message(tn[m->to].g, tn[m->from].key, m->data, m->len, tnow);
            drain(m->to);
            if (tn[m->to].flush) { /* a peer that reads: the sender's bytes are flushed */
                gossip_on_flushed(tn[m->from].g, tn[m->to].key, m->len, tnow);
                drain(m->from);
            }
        }
        free(m->data);
        free(m);
    }
}

/* advance moves the clock, firing timers in order. */
static void
advance(uint64_t ms)
{
    uint64_t end = tnow + ms;

    run();
    for (;;) {
        uint64_t next = UINT64_MAX;
        for (int i = 0; i < ntn; i++) {
            uint64_t d = gossip_next_deadline(tn[i].g);
            if (d < next)
                next = d;
        }
        if (next > end)
            break;
        if (next > tnow)
            tnow = next;
        for (int i = 0; i < ntn; i++) {
            if (gossip_next_deadline(tn[i].g) <= tnow) {
                gossip_on_timeout(tn[i].g, tnow);
                drain(i);
            }
        }
        run();
    }
    tnow = end;
    run();
}

static int
setup(void **state)
{
    (void)state;
    ntn = 0;
    tnow = 1000;
    q_head = q_tail = NULL;
    invalid_rule = NULL;
    memset(sends_by_type, 0, sizeof(sends_by_type));
    memset(connects, 0, sizeof(connects));
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    while (q_head != NULL) {
        struct tmsg *m = q_head;
        q_head = m->next;
        free(m->data);
        free(m);
    }
    q_tail = NULL;
    for (int i = 0; i < ntn; i++) {
        gossip_free(tn[i].g);
        for (int k = 0; k < tn[i].nrec; k++)
            free(tn[i].env_bytes[k]);
    }
    ntn = 0;
    return 0;
}

static int
publish(int i, uint8_t tag, size_t len)
{
    uint8_t env[GOSSIP_ENVELOPE_MAX], id[32];

    memset(env, tag, len);
    env[0] = 0x92;
    crypto_generichash(id, 32, env, len, NULL, 0);
    store_put(&tn[i], env, len, id);
    return gossip_publish(tn[i].g, env, len, id, tnow);
}

static const struct gossip_peer_info *
peer_info(int i, int j)
{
    static struct gossip_peer_info pi;

    for (size_t k = 0; k < gossip_peer_count(tn[i].g); k++) {
        assert_int_equal(gossip_peer_at(tn[i].g, k, &pi), 0);
        if (memcmp(pi.key, tn[j].key, 32) == 0)
            return &pi;
    }
    return NULL;
}

/* ------------------------------------------------------------------ message builders */

struct mb {
    struct pull_wb w;
    msgpack_packer pk;
};

static void
mb_begin(struct mb *m, uint32_t type, uint32_t nfields)
{
    wb_init(&m->w, 0);
    mp_packer_init(&m->pk, &m->w);
    msgpack_pack_array(&m->pk, nfields + 1);
    msgpack_pack_uint32(&m->pk, type);
}

/* deliver hands m's bytes to node `to` as if from `from`; returns the engine's result. */
static int
deliver(int from, int to, struct mb *m)
{
    int rc;

    assert_int_equal(wb_error(&m->w), 0);
    rc = gossip_on_message(tn[to].g, tn[from].key, m->w.p, m->w.len, tnow);
    wb_release(&m->w);
    drain(to);
    return rc;
}

static int
deliver_raw(int from, int to, const uint8_t *p, size_t n)
{
    int rc = gossip_on_message(tn[to].g, tn[from].key, p, n, tnow);

    drain(to);
    return rc;
}

/* connect_raw connects `from` to `to` without sending anything. */
static void
connect_raw(int from, int to)
{
    tn[from].up[to] = tn[to].up[from] = true;
    gossip_on_connected(tn[to].g, tn[from].key, tn[from].addr, true, tnow);
    drain(to);
}

/* make_active: `from` joins `to` by hand (JOIN), so `to` holds from in its active view. */
static void
make_active(int from, int to)
{
    struct mb m;

    connect_raw(from, to);
    mb_begin(&m, MSG_JOIN, 1);
    mp_pack_cstr(&m.pk, tn[from].addr);
    assert_int_equal(deliver(from, to, &m), 0);
    assert_true(gossip_is_active(tn[to].g, tn[from].key));
}

/* ------------------------------------------------------------------ tests */

/* dial_in: node `from` dials `to`, which sees it come from `seen` (what the host reports for
 * an inbound connection: the observed IP with the port the HELLO says it can be dialed at,
 * 0 for a node that accepts only local connections seen from a public address). `from` is
 * a fresh node, so it sends JOIN. */
static void
dial_in(int from, int to, const char *seen)
{
    tn[from].up[to] = tn[to].up[from] = true;
    gossip_on_connected(tn[to].g, tn[from].key, seen, true, tnow);
    gossip_on_connected(tn[from].g, tn[to].key, tn[to].addr, false, tnow);
    run();
}

/* A node behind a NAT without a mapping (its HELLO said reach local, seen from a public
 * address: port 0) takes an active place with the peer it dialed and gets records there,
 * but that peer never dials it, starts no walk for it, keeps it out of its passive view
 * when it leaves and hands it on in no shuffle. A dialable node in the same place is. */
static void
test_undialable_peer(void **state)
{
    const struct gossip_peer_info *pi;
    struct mb m;
    int a, c, nat, open;
    int walks;

    (void)state;
    a = tn_add();
    c = tn_add();
    nat = tn_add();
    open = tn_add();
    make_active(c, a); /* a has another active peer: a JOIN would start a walk there */
    gossip_on_connected(tn[c].g, tn[a].key, tn[a].addr, false, tnow);
    run();
    walks = sends_by_type[MSG_FORWARD_JOIN];
    dial_in(nat, a, "203.0.113.7:0");
    assert_true(gossip_is_active(tn[a].g, tn[nat].key));
    assert_true(gossip_is_active(tn[nat].g, tn[a].key));
    pi = peer_info(a, nat);
    assert_non_null(pi);
    assert_string_equal(pi->addr, ""); /* whatever its JOIN said */
    assert_int_equal(sends_by_type[MSG_FORWARD_JOIN], walks);
    /* records reach it through the connection it made */
    assert_int_equal(publish(a, 1, 100), 0);
    advance(1000);
    assert_int_equal(tn[nat].news, 1);
    /* the dialable one: its address is the observed host with the port its JOIN names */
    dial_in(open, a, "198.51.100.9:7450");
    pi = peer_info(a, open);
    assert_non_null(pi);
    assert_string_equal(pi->addr, "198.51.100.9:7450");
    assert_true(sends_by_type[MSG_FORWARD_JOIN] > walks);
    /* both leave a's active view asking to be kept as passive peers */
    for (int k = 0; k < 2; k++) {
        int who = k == 0 ? nat : open;
        mb_begin(&m, MSG_DISCONNECT, 1);
        msgpack_pack_uint32(&m.pk, GOSSIP_BYE_VIEW);
        assert_int_equal(deliver(who, a, &m), 0);
        tn[who].up[a] = tn[a].up[who] = false;
        gossip_on_disconnected(tn[who].g, tn[a].key, tnow);
        drain(who);
    }
    assert_null(peer_info(a, nat)); /* forgotten: nothing to dial */
    pi = peer_info(a, open);
    assert_non_null(pi); /* kept (and already being dialed back: a's view is short) */
    assert_true(pi->state == GOSSIP_PEER_PASSIVE || pi->state == GOSSIP_PEER_CONNECTING);
    /* a refills its view from the dialable node, never from the undialable one */
    advance(120000);
    assert_true(connects[a][open] > 0);
    assert_int_equal(connects[a][nat], 0); /* (nat may dial a again: that is its choice) */
}

static void
test_config(void **state)
{
    struct gossip_config c;
    struct env_seeded e;
    struct gossip *g = NULL;
    uint8_t key[32] = {1};

    (void)state;
    env_seeded_init(&e, 1, 0, 0);
    gossip_free(NULL);
    gossip_config_default(&c);
    assert_int_equal(gossip_new(&e.env, key, "a:1", &c, &g), PULL_ERR_INVAL); /* callbacks */
    tn_config(&c);
    assert_int_equal(gossip_new(&e.env, key, "", &c, &g), PULL_ERR_INVAL);
    assert_int_equal(gossip_new(&e.env, key, "has space:1", &c, &g), PULL_ERR_INVAL);
    c.active_size = 1;
    assert_int_equal(gossip_new(&e.env, key, "a:1", &c, &g), PULL_ERR_INVAL);
    c.active_size = 17;
    assert_int_equal(gossip_new(&e.env, key, "a:1", &c, &g), PULL_ERR_INVAL);
    tn_config(&c);
    c.prwl = c.arwl + 1;
    assert_int_equal(gossip_new(&e.env, key, "a:1", &c, &g), PULL_ERR_INVAL);
    tn_config(&c);
    c.shuffle_active = 10;
    c.shuffle_passive = 10;
    assert_int_equal(gossip_new(&e.env, key, "a:1", &c, &g), PULL_ERR_INVAL);
    assert_null(g);
    tn_config(&c);
    assert_int_equal(gossip_new(&e.env, key, "a:1", &c, &g), 0);
    assert_int_equal(gossip_active_count(g), 0);
    assert_true(gossip_next_deadline(g) != UINT64_MAX); /* maintenance */
    assert_true(gossip_handles(MSG_JOIN) && gossip_handles(MSG_WANT));
    assert_false(gossip_handles(MSG_HELLO) || gossip_handles(MSG_RECON_REQ) || gossip_handles(17));
    assert_int_equal(gossip_add_known(g, key, "x:1", 0), PULL_ERR_INVAL); /* own key */
    gossip_free(g);
}

static void
test_join_two(void **state)
{
    int a, b;

    (void)state;
    a = tn_add();
    b = tn_add();
    assert_int_equal(gossip_add_known(tn[b].g, tn[a].key, tn[a].addr, tnow), 0);
    run();
    assert_true(gossip_is_active(tn[a].g, tn[b].key));
    assert_true(gossip_is_active(tn[b].g, tn[a].key));
    assert_int_equal(sends_by_type[MSG_JOIN], 1);
    assert_int_equal(sends_by_type[MSG_NEIGHBOR_REPLY], 1);
    /* a dials b where the host saw it, at the port it advertises */
    assert_string_equal(peer_info(a, b)->addr, tn[b].addr);
    assert_int_equal(peer_info(a, b)->state, GOSSIP_PEER_ACTIVE);
    assert_true(peer_info(a, b)->eager);
}

/* Builds a triangle a-b-c (everyone active with everyone) through joins. */
static void
triangle(int *a, int *b, int *c)
{
    *a = tn_add();
    *b = tn_add();
    *c = tn_add();
    assert_int_equal(gossip_add_known(tn[*b].g, tn[*a].key, tn[*a].addr, tnow), 0);
    run();
    assert_int_equal(gossip_add_known(tn[*c].g, tn[*a].key, tn[*a].addr, tnow), 0);
    run();
    advance(5000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gossip_active_count(tn[i].g), 2);
}

static void
test_spread_and_prune(void **state)
{
    int a, b, c;

    (void)state;
    triangle(&a, &b, &c);
    assert_int_equal(publish(a, 1, 300), 0);
    run();
    assert_int_equal(tn[b].news, 1);
    assert_int_equal(tn[c].news, 1);
    /* b and c pushed to each other too: both saw a duplicate and pruned. */
    assert_int_equal(tn[b].dups + tn[c].dups, 2);
    assert_true(sends_by_type[MSG_PRUNE] >= 1);
    assert_false(peer_info(b, c)->eager);
    assert_false(peer_info(c, b)->eager);
    assert_true(peer_info(b, a)->eager);
    /* The tree is a-b, a-c now: the next record costs no duplicate. */
    tn[b].dups = tn[c].dups = 0;
    assert_int_equal(publish(a, 2, 300), 0);
    advance(1000);
    assert_int_equal(tn[b].news + tn[c].news, 4);
    assert_int_equal(tn[b].dups + tn[c].dups, 0);
    /* b announced it lazily to c (IHAVE) and c, having it, asked nothing. */
    assert_true(sends_by_type[MSG_IHAVE] >= 2);
    assert_int_equal(sends_by_type[MSG_GRAFT], 0);
    /* Publishing from b: goes b->a eagerly, a->c eagerly: no duplicates, no graft. */
    assert_int_equal(publish(b, 3, 300), 0);
    advance(1000);
    assert_int_equal(tn[c].nrec, 3);
    assert_int_equal(tn[a].nrec, 3);
    assert_int_equal(tn[a].dups + tn[b].dups + tn[c].dups, 0);
}

/* A host that verifies elsewhere: nothing is passed on before the verdict, a NEW verdict
 * passes it on along the tree, an INVALID one blames the sender. */
static void
test_pending(void **state)
{
    int a, b, c, i;
    int32_t before;

    (void)state;
    a = tn_add();
    b = tn_add();
    c = tn_add();
    assert_int_equal(gossip_add_known(tn[b].g, tn[a].key, tn[a].addr, tnow), 0);
    run();
    assert_int_equal(gossip_add_known(tn[c].g, tn[b].key, tn[b].addr, tnow), 0);
    run();
    assert_true(gossip_is_active(tn[b].g, tn[c].key));
    if (tn[a].up[c]) { /* c's JOIN walk linked a and c too: cut that link (a line: a - b - c) */
        tn[a].up[c] = tn[c].up[a] = false;
        gossip_on_disconnected(tn[a].g, tn[c].key, tnow);
        gossip_on_disconnected(tn[c].g, tn[a].key, tnow);
        drain(a);
        drain(c);
    }
    assert_false(gossip_is_active(tn[a].g, tn[c].key));
    tn[b].defer = true;
    assert_int_equal(publish(a, 1, 300), 0);
    advance(2000);
    assert_int_equal(tn[b].npend, 1);
    assert_int_equal(tn[c].nrec, 0); /* not passed on before the verdict */
    i = store_find(&tn[b], tn[b].pend_id[0]);
    gossip_verdict(tn[b].g, tn[b].env_bytes[i], tn[b].env_len[i], tn[b].pend_id[0], GOSSIP_NEW,
                   tnow);
    drain(b);
    advance(1000);
    assert_int_equal(tn[c].nrec, 1);
    assert_true(peer_info(c, b)->eager); /* it came along the tree */
    /* an invalid one counts against its sender, and is never passed on */
    before = peer_info(b, a)->score;
    assert_int_equal(publish(a, 2, 300), 0);
    advance(2000);
    assert_int_equal(tn[b].npend, 2);
    i = store_find(&tn[b], tn[b].pend_id[1]);
    gossip_verdict(tn[b].g, tn[b].env_bytes[i], tn[b].env_len[i], tn[b].pend_id[1], GOSSIP_INVALID,
                   tnow);
    drain(b);
    advance(1000);
    assert_true(peer_info(b, a)->score < before);
    assert_int_equal(tn[c].nrec, 1);
    /* a verdict for an id nobody offered is ignored */
    gossip_verdict(tn[b].g, tn[b].env_bytes[i], tn[b].env_len[i], tn[b].pend_id[1], GOSSIP_NEW,
                   tnow);
    drain(b);
    tn[b].defer = false;
}

static void
test_graft_repairs(void **state)
{
    int a, b, c;
    uint8_t env[100], id[32];
    struct mb m;

    (void)state;
    triangle(&a, &b, &c);
    assert_int_equal(publish(a, 1, 300), 0);
    advance(1000);
    /* Tree: a-b, a-c eager; b-c lazy. Now b gets a record that only it has and
     * announces it to c lazily; a never sees it (we hand it to b directly). */
    memset(env, 7, sizeof(env));
    crypto_generichash(id, 32, env, sizeof(env), NULL, 0);
    store_put(&tn[b], env, sizeof(env), id);
    mb_begin(&m, MSG_IHAVE, 2);
    msgpack_pack_array(&m.pk, 1);
    mp_pack_bin(&m.pk, id, 32);
    mp_pack_bin(&m.pk, "\x01", 1); /* hops */
    assert_int_equal(deliver(b, c, &m), 0);
    assert_int_equal(store_find(&tn[c], id), -1);
    /* Not yet: the graft timer has not fired. */
    advance(100);
    assert_int_equal(store_find(&tn[c], id), -1);
    advance(1000);
    assert_true(store_find(&tn[c], id) >= 0);
    assert_int_equal(sends_by_type[MSG_GRAFT], 1);
    /* The graft made the b-c link eager on both ends. */
    assert_true(peer_info(c, b)->eager);
    assert_true(peer_info(b, c)->eager);
}

static void
test_failover(void **state)
{
    struct gossip_config cfg;
    int a, b, c;

    (void)state;
    tn_config(&cfg);
    cfg.active_size = 2;
    a = tn_add_cfg(&cfg);
    b = tn_add_cfg(&cfg);
    c = tn_add_cfg(&cfg);
    /* a knows b and c; with an active view of 2... make a full with b only then fail b. */
    assert_int_equal(gossip_add_known(tn[a].g, tn[b].key, tn[b].addr, tnow), 0);
    run();
    assert_true(gossip_is_active(tn[a].g, tn[b].key));
    assert_int_equal(gossip_add_known(tn[a].g, tn[c].key, tn[c].addr, tnow), 0);
    advance(5000); /* a fills its view: c joins it */
    assert_true(gossip_is_active(tn[a].g, tn[c].key));
    /* b dies: a hears the connection drop and stays connected to c; b is forgotten. */
    tn[a].up[b] = tn[b].up[a] = false;
    gossip_on_disconnected(tn[a].g, tn[b].key, tnow);
    drain(a);
    assert_false(gossip_is_active(tn[a].g, tn[b].key));
    assert_null(peer_info(a, b));
    /* c leaves politely: a keeps nothing of c either (leaving), and has no one left. */
    gossip_leave(tn[c].g, tnow);
    drain(c);
    run();
    assert_int_equal(gossip_active_count(tn[a].g), 0);
    assert_int_equal(gossip_active_count(tn[c].g), 0);
}

static void
test_failover_promotes_passive(void **state)
{
    int a, others[5];

    (void)state;
    a = tn_add();
    for (int k = 0; k < 5; k++)
        others[k] = tn_add();
    /* a knows all five, connects (JOIN) to one, then fills its view with the others. */
    for (int k = 0; k < 5; k++)
        assert_int_equal(gossip_add_known(tn[a].g, tn[others[k]].key, tn[others[k]].addr, tnow), 0);
    advance(10000);
    assert_int_equal(gossip_active_count(tn[a].g), 5);
    /* Kill one: its connection drops; a stays with 4 and has nobody passive left. */
    tn[a].up[others[0]] = tn[others[0]].up[a] = false;
    gossip_on_disconnected(tn[a].g, tn[others[0]].key, tnow);
    drain(a);
    assert_int_equal(gossip_active_count(tn[a].g), 4);
    /* A new passive peer shows up: a promotes it at the next maintenance. */
    int z = tn_add();
    assert_int_equal(gossip_add_known(tn[a].g, tn[z].key, tn[z].addr, tnow), 0);
    advance(35000);
    assert_true(gossip_is_active(tn[a].g, tn[z].key));
}

static void
test_shuffle(void **state)
{
    int a, b, c, d;
    struct mb m;
    uint8_t k[32];

    (void)state;
    triangle(&a, &b, &c);
    d = tn_add();
    /* A SHUFFLE reaching b with ttl 0 is answered and its entries land in b's passive
     * view (d is not connected to anyone). */
    mb_begin(&m, MSG_SHUFFLE, 3);
    msgpack_pack_uint64(&m.pk, 77);
    msgpack_pack_uint32(&m.pk, 0);
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_array(&m.pk, 2);
    mp_pack_bin(&m.pk, tn[a].key, 32);
    mp_pack_cstr(&m.pk, tn[a].addr);
    msgpack_pack_array(&m.pk, 2);
    mp_pack_bin(&m.pk, tn[d].key, 32);
    mp_pack_cstr(&m.pk, tn[d].addr);
    sends_by_type[MSG_SHUFFLE_REPLY] = 0;
    assert_int_equal(deliver(a, b, &m), 0);
    assert_int_equal(sends_by_type[MSG_SHUFFLE_REPLY], 1);
    /* b knows d now (and, with only two active peers, dials it at once) */
    assert_non_null(peer_info(b, d));
    /* Our own key in a shuffle is never kept. */
    memcpy(k, tn[b].key, 32);
    mb_begin(&m, MSG_SHUFFLE, 3);
    msgpack_pack_uint64(&m.pk, 78);
    msgpack_pack_uint32(&m.pk, 0);
    msgpack_pack_array(&m.pk, 2);
    msgpack_pack_array(&m.pk, 2);
    mp_pack_bin(&m.pk, tn[a].key, 32);
    mp_pack_cstr(&m.pk, tn[a].addr);
    msgpack_pack_array(&m.pk, 2);
    mp_pack_bin(&m.pk, k, 32);
    mp_pack_cstr(&m.pk, "evil:1");
    assert_int_equal(deliver(a, b, &m), 0);
    assert_null(peer_info(b, b));
    /* Periodic shuffles happen and their replies come back. */
    sends_by_type[MSG_SHUFFLE] = sends_by_type[MSG_SHUFFLE_REPLY] = 0;
    advance(60000);
    assert_true(sends_by_type[MSG_SHUFFLE] >= 3);
    assert_true(sends_by_type[MSG_SHUFFLE_REPLY] >= 3);
}

/* Valid encodings of every message type (from a peer that is active at the receiver). */
static size_t
sample_message(int which, int from, uint8_t *out, size_t cap)
{
    struct mb m;
    uint8_t id[32];
    size_t n;

    memset(id, 0x33, 32);
    switch (which) {
    case 0:
        mb_begin(&m, MSG_JOIN, 1);
        mp_pack_cstr(&m.pk, tn[from].addr);
        break;
    case 1:
        mb_begin(&m, MSG_FORWARD_JOIN, 3);
        mp_pack_bin(&m.pk, id, 32);
        mp_pack_cstr(&m.pk, "joiner.test:1");
        msgpack_pack_uint32(&m.pk, 3);
        break;
    case 2:
        mb_begin(&m, MSG_NEIGHBOR, 2);
        mp_pack_cstr(&m.pk, tn[from].addr);
        msgpack_pack_true(&m.pk);
        break;
    case 3:
        mb_begin(&m, MSG_NEIGHBOR_REPLY, 1);
        msgpack_pack_true(&m.pk);
        break;
    case 4:
        mb_begin(&m, MSG_SHUFFLE, 3);
        msgpack_pack_uint64(&m.pk, 5);
        msgpack_pack_uint32(&m.pk, 0);
        msgpack_pack_array(&m.pk, 1);
        msgpack_pack_array(&m.pk, 2);
        mp_pack_bin(&m.pk, id, 32);
        mp_pack_cstr(&m.pk, "x.test:2");
        break;
    case 5:
        mb_begin(&m, MSG_SHUFFLE_REPLY, 2);
        msgpack_pack_uint64(&m.pk, 5);
        msgpack_pack_array(&m.pk, 0);
        break;
    case 6:
        mb_begin(&m, MSG_RECORDS, 3);
        msgpack_pack_uint32(&m.pk, 0);
        msgpack_pack_uint32(&m.pk, 4); /* hops */
        msgpack_pack_array(&m.pk, 1);
        mp_pack_bin(&m.pk, "\x92\x01\x02", 3);
        break;
    case 7:
        mb_begin(&m, MSG_IHAVE, 2);
        msgpack_pack_array(&m.pk, 1);
        mp_pack_bin(&m.pk, id, 32);
        mp_pack_bin(&m.pk, "\x03", 1);
        break;
    case 8:
        mb_begin(&m, MSG_GRAFT, 1);
        msgpack_pack_array(&m.pk, 1);
        mp_pack_bin(&m.pk, id, 32);
        break;
    case 9:
        mb_begin(&m, MSG_PRUNE, 0);
        break;
    case 10:
        mb_begin(&m, MSG_WANT, 1);
        msgpack_pack_array(&m.pk, 1);
        mp_pack_bin(&m.pk, id, 32);
        break;
    default:
        mb_begin(&m, MSG_DISCONNECT, 1);
        msgpack_pack_uint32(&m.pk, 0);
        break;
    }
    assert_int_equal(wb_error(&m.w), 0);
    n = m.w.len;
    assert_true(n <= cap);
    memcpy(out, m.w.p, n);
    wb_release(&m.w);
    return n;
}

static void
test_truncated_everywhere(void **state)
{
    struct gossip_config cfg;
    uint8_t buf[512];
    int a, b;

    (void)state;
    tn_config(&cfg);
    cfg.score_malformed = 0; /* count the failures without banning */
    a = tn_add_cfg(&cfg);
    b = tn_add_cfg(&cfg);
    make_active(b, a);
    for (int which = 0; which <= 11; which++) {
        size_t n = sample_message(which, b, buf, sizeof(buf));
        struct gossip_stats st0, st1;
        gossip_get_stats(tn[a].g, &st0);
        for (size_t cut = 0; cut < n; cut++) {
            int rc = deliver_raw(b, a, buf, cut);
            assert_true(rc == PULL_ERR_TRUNCATED || rc == PULL_ERR_MALFORMED ||
                        rc == PULL_ERR_FIELD);
        }
        gossip_get_stats(tn[a].g, &st1);
        assert_int_equal(st1.malformed - st0.malformed, n);
        /* One byte too many is refused as well. */
        buf[n] = 0xc0;
        assert_int_equal(deliver_raw(b, a, buf, n + 1), PULL_ERR_TRAILING);
        if (which == 11)
            break; /* DISCONNECT would close the link */
        /* The whole message is accepted (or harmlessly ignored). */
        assert_int_equal(deliver_raw(b, a, buf, n), 0);
        if (!gossip_is_active(tn[a].g, tn[b].key))
            make_active(b, a);
    }
}

static void
test_hostile_fields(void **state)
{
    struct gossip_config cfg;
    uint8_t id[32] = {0};
    char longaddr[300];
    struct mb m;
    int a, b;
    uint8_t raw[64];
    size_t n;

    (void)state;
    tn_config(&cfg);
    cfg.score_malformed = 0;
    a = tn_add_cfg(&cfg);
    b = tn_add_cfg(&cfg);
    make_active(b, a);

    /* wrong type for the address */
    mb_begin(&m, MSG_JOIN, 1);
    msgpack_pack_uint32(&m.pk, 5);
    assert_int_equal(deliver(b, a, &m), PULL_ERR_FIELD);
    /* address with a space, empty, too long */
    mb_begin(&m, MSG_NEIGHBOR, 2);
    mp_pack_cstr(&m.pk, "evil host:1");
    msgpack_pack_true(&m.pk);
    assert_int_equal(deliver(b, a, &m), PULL_ERR_FIELD);
    mb_begin(&m, MSG_NEIGHBOR, 2);
    mp_pack_cstr(&m.pk, "");
    msgpack_pack_true(&m.pk);
    assert_int_equal(deliver(b, a, &m), PULL_ERR_FIELD);
    memset(longaddr, 'a', sizeof(longaddr));
    longaddr[256] = '\0';
    mb_begin(&m, MSG_JOIN, 1);
    mp_pack_cstr(&m.pk, longaddr);
    assert_int_equal(deliver(b, a, &m), PULL_ERR_FIELD);
    /* a key of 31 bytes */
    mb_begin(&m, MSG_FORWARD_JOIN, 3);
    mp_pack_bin(&m.pk, id, 31);
    mp_pack_cstr(&m.pk, "x:1");
    msgpack_pack_uint32(&m.pk, 1);
    assert_int_equal(deliver(b, a, &m), PULL_ERR_FIELD);
    /* ttl out of range */
    mb_begin(&m, MSG_FORWARD_JOIN, 3);
    mp_pack_bin(&m.pk, id, 32);
    mp_pack_cstr(&m.pk, "x:1");
    msgpack_pack_uint32(&m.pk, 1000);
    assert_int_equal(deliver(b, a, &m), PULL_ERR_FIELD);
    /* too few fields */
    mb_begin(&m, MSG_FORWARD_JOIN, 2);
    mp_pack_bin(&m.pk, id, 32);
    mp_pack_cstr(&m.pk, "x:1");
    assert_int_equal(deliver(b, a, &m), PULL_ERR_MALFORMED);
    /* too many ids: 513 */
    {
        uint8_t hops[GOSSIP_IDS_MAX + 1] = {0};
        mb_begin(&m, MSG_IHAVE, 2);
        msgpack_pack_array(&m.pk, GOSSIP_IDS_MAX + 1);
        for (int i = 0; i < GOSSIP_IDS_MAX + 1; i++)
            mp_pack_bin(&m.pk, id, 32);
        mp_pack_bin(&m.pk, hops, sizeof(hops));
        assert_int_equal(deliver(b, a, &m), PULL_ERR_TOO_BIG);
    }
    /* IHAVE hops must match the ids one for one */
    mb_begin(&m, MSG_IHAVE, 2);
    msgpack_pack_array(&m.pk, 2);
    mp_pack_bin(&m.pk, id, 32);
    mp_pack_bin(&m.pk, id, 32);
    mp_pack_bin(&m.pk, "\x01", 1);
    assert_int_equal(deliver(b, a, &m), PULL_ERR_FIELD);
    mb_begin(&m, MSG_IHAVE, 2);
    msgpack_pack_array(&m.pk, 1);
    mp_pack_bin(&m.pk, id, 32);
    msgpack_pack_uint32(&m.pk, 1);
    assert_int_equal(deliver(b, a, &m), PULL_ERR_FIELD);
    /* RECORDS hops over 255 */
    mb_begin(&m, MSG_RECORDS, 3);
    msgpack_pack_uint32(&m.pk, 0);
    msgpack_pack_uint32(&m.pk, 256);
    msgpack_pack_array(&m.pk, 0);
    assert_int_equal(deliver(b, a, &m), PULL_ERR_FIELD);
    /* too many peers in a shuffle: 17 */
    mb_begin(&m, MSG_SHUFFLE_REPLY, 2);
    msgpack_pack_uint64(&m.pk, 1);
    msgpack_pack_array(&m.pk, GOSSIP_SHUFFLE_MAX + 1);
    for (int i = 0; i < GOSSIP_SHUFFLE_MAX + 1; i++) {
        msgpack_pack_array(&m.pk, 2);
        mp_pack_bin(&m.pk, id, 32);
        mp_pack_cstr(&m.pk, "x:1");
    }
    assert_int_equal(deliver(b, a, &m), PULL_ERR_TOO_BIG);
    /* a SHUFFLE without its origin entry */
    mb_begin(&m, MSG_SHUFFLE, 3);
    msgpack_pack_uint64(&m.pk, 1);
    msgpack_pack_uint32(&m.pk, 1);
    msgpack_pack_array(&m.pk, 0);
    assert_int_equal(deliver(b, a, &m), PULL_ERR_FIELD);
    /* an envelope over the limit, and an empty one */
    {
        uint8_t *big = calloc(1, GOSSIP_ENVELOPE_MAX + 1);
        assert_non_null(big);
        mb_begin(&m, MSG_RECORDS, 3);
        msgpack_pack_uint32(&m.pk, 0);
        msgpack_pack_uint32(&m.pk, 4); /* hops */
        msgpack_pack_array(&m.pk, 1);
        mp_pack_bin(&m.pk, big, GOSSIP_ENVELOPE_MAX + 1);
        assert_int_equal(deliver(b, a, &m), PULL_ERR_FIELD);
        free(big);
    }
    mb_begin(&m, MSG_RECORDS, 3);
    msgpack_pack_uint32(&m.pk, 0);
    msgpack_pack_uint32(&m.pk, 4); /* hops */
    msgpack_pack_array(&m.pk, 1);
    mp_pack_bin(&m.pk, "", 0);
    assert_int_equal(deliver(b, a, &m), PULL_ERR_FIELD);
    /* huge counts promised by 5 bytes: array32 of 2^31 ids, bin32 of 2^31 bytes */
    n = tu_hex("93 15 dd 80 00 00 00", raw, sizeof(raw));
    assert_int_equal(deliver_raw(b, a, raw, n), PULL_ERR_TRUNCATED);
    n = tu_hex("92 15 dd 80 00 00 00", raw, sizeof(raw)); /* and a field short */
    assert_int_equal(deliver_raw(b, a, raw, n), PULL_ERR_MALFORMED);
    n = tu_hex("94 14 00 00 91 c6 80 00 00 00", raw, sizeof(raw));
    assert_int_equal(deliver_raw(b, a, raw, n), PULL_ERR_TRUNCATED);
    /* non-canonical integers: type 21 as uint8 */
    n = tu_hex("92 cc 15 90", raw, sizeof(raw));
    assert_int_equal(deliver_raw(b, a, raw, n), PULL_ERR_NONCANONICAL);
    /* not an array, empty array, type not an integer */
    n = tu_hex("15", raw, sizeof(raw));
    assert_int_equal(deliver_raw(b, a, raw, n), PULL_ERR_FIELD);
    n = tu_hex("90", raw, sizeof(raw));
    assert_int_equal(deliver_raw(b, a, raw, n), PULL_ERR_MALFORMED);
    n = tu_hex("91 a1 41", raw, sizeof(raw));
    assert_int_equal(deliver_raw(b, a, raw, n), PULL_ERR_FIELD);
    /* unknown types are ignored without blame; extra trailing fields are accepted */
    n = tu_hex("92 11 c0", raw, sizeof(raw)); /* type 17 */
    assert_int_equal(deliver_raw(b, a, raw, n), PULL_ERR_UNSUPPORTED);
    n = tu_hex("93 17 c0 92 01 02", raw, sizeof(raw)); /* PRUNE with two extra fields */
    assert_int_equal(deliver_raw(b, a, raw, n), 0);
    assert_true(gossip_is_active(tn[a].g, tn[b].key));
}

static bool
invalid_all(const uint8_t *env, size_t len)
{
    (void)env;
    (void)len;
    return true;
}

static void
test_invalid_records_ban(void **state)
{
    struct mb m;
    int a, b, c;
    int rounds = 0;

    (void)state;
    triangle(&a, &b, &c);
    invalid_rule = invalid_all;
    /* b sends garbage records to a until a bans it. */
    while (gossip_is_active(tn[a].g, tn[b].key) && rounds < 100) {
        uint8_t env[50];
        memset(env, rounds, sizeof(env));
        mb_begin(&m, MSG_RECORDS, 3);
        msgpack_pack_uint32(&m.pk, 0);
        msgpack_pack_uint32(&m.pk, 4); /* hops */
        msgpack_pack_array(&m.pk, 1);
        mp_pack_bin(&m.pk, env, sizeof(env));
        assert_int_equal(deliver(b, a, &m), 0);
        rounds++;
    }
    /* score_invalid 25, ban at -100 */
    assert_int_equal(rounds, 4);
    run();
    assert_false(tn[a].up[b]);
    assert_int_equal(peer_info(a, b)->state, GOSSIP_PEER_BANNED);
    /* refused while banned: as a known peer and as a connection */
    assert_int_equal(gossip_add_known(tn[a].g, tn[b].key, tn[b].addr, tnow), PULL_ERR_PERM);
    gossip_on_connected(tn[a].g, tn[b].key, "x:1", true, tnow);
    {
        struct gossip_action act;
        assert_true(gossip_poll_action(tn[a].g, &act));
        assert_int_equal(act.type, GOSSIP_ACT_DISCONNECT);
        assert_memory_equal(act.peer, tn[b].key, 32);
        gossip_action_release(&act);
        while (gossip_poll_action(tn[a].g, &act))
            gossip_action_release(&act);
    }
    /* c was not affected; records still flow a <-> c */
    invalid_rule = NULL;
    assert_true(gossip_is_active(tn[a].g, tn[c].key));
    assert_int_equal(publish(c, 9, 100), 0);
    advance(1000);
    assert_int_equal(tn[a].news, 1);
    /* the ban ends after ban_ms */
    advance(600000 + 2000);
    assert_int_equal(gossip_add_known(tn[a].g, tn[b].key, tn[b].addr, tnow), 0);
}

static void
test_malformed_ban(void **state)
{
    int a, b;
    uint8_t junk[3] = {0x93, 0x15, 0xff};
    int rounds = 0;

    (void)state;
    a = tn_add();
    b = tn_add();
    make_active(b, a);
    while (peer_info(a, b)->state != GOSSIP_PEER_BANNED && rounds < 100) {
        assert_true(deliver_raw(b, a, junk, sizeof(junk)) < 0);
        rounds++;
    }
    assert_int_equal(rounds, 4);
    assert_int_equal(peer_info(a, b)->state, GOSSIP_PEER_BANNED);
}

static void
test_stuck_peer_dropped(void **state)
{
    struct gossip_config cfg;
    int a, b, c;

    (void)state;
    tn_config(&cfg);
    cfg.peer_backlog_max = 64 * 1024;
    a = tn_add_cfg(&cfg);
    b = tn_add_cfg(&cfg);
    c = tn_add_cfg(&cfg);
    assert_int_equal(gossip_add_known(tn[b].g, tn[a].key, tn[a].addr, tnow), 0);
    assert_int_equal(gossip_add_known(tn[c].g, tn[a].key, tn[a].addr, tnow), 0);
    run();
    advance(5000);
    assert_true(gossip_is_active(tn[a].g, tn[b].key));
    assert_true(gossip_is_active(tn[a].g, tn[c].key));
    /* b stops reading: a's bytes to b are never flushed. */
    tn[b].flush = false;
    for (int i = 0; i < 40; i++) {
        assert_int_equal(publish(a, (uint8_t)(i + 1), 4000), 0);
        run();
    }
    /* past half of 64 KiB a's pushes to b wait; c got everything */
    assert_true(gossip_is_active(tn[a].g, tn[b].key));
    assert_int_equal(tn[c].nrec, 40);
    /* b flushed nothing for stuck_ms (a maintenance pass sees it): dropped */
    advance(cfg.stuck_ms + 2 * cfg.maint_ms);
    assert_int_equal(publish(a, 41, 4000), 0);
    run();
    assert_false(gossip_is_active(tn[a].g, tn[b].key));
    assert_true(gossip_is_active(tn[a].g, tn[c].key));
    assert_int_equal(tn[c].nrec, 41);
    {
        struct gossip_stats st;
        gossip_get_stats(tn[a].g, &st);
        assert_int_equal(st.peers_dropped_backlog, 1);
    }
}

/* A burst of records published while a peer reads slowly does not drop it: past half of
 * its backlog limit the pushes wait in its queue (defer_max) and go out as it reads. */
static void
test_burst_waits_for_reader(void **state)
{
    struct gossip_config cfg;
    struct gossip_stats st;
    const struct gossip_peer_info *pi;
    int a, b;

    (void)state;
    tn_config(&cfg);
    cfg.peer_backlog_max = 64 * 1024;
    a = tn_add_cfg(&cfg);
    b = tn_add_cfg(&cfg);
    assert_int_equal(gossip_add_known(tn[b].g, tn[a].key, tn[a].addr, tnow), 0);
    run();
    advance(5000);
    assert_true(gossip_is_active(tn[a].g, tn[b].key));
    /* 60 records of 4000 bytes in one burst (240 KB, almost four times the limit) */
    tn[b].flush = false;
    for (int i = 0; i < 60; i++)
        assert_int_equal(publish(a, (uint8_t)(i + 1), 4000), 0);
    run();
    assert_true(gossip_is_active(tn[a].g, tn[b].key));
    pi = peer_info(a, b);
    assert_non_null(pi);
    assert_true(pi->backlog <= 32 * 1024);
    assert_true(tn[b].nrec < 60);
    /* b reads, a bit at a time: the rest follows, nothing dropped, nothing twice */
    tn[b].flush = true;
    for (int k = 0; k < 400 && tn[b].nrec < 60; k++) {
        pi = peer_info(a, b);
        assert_non_null(pi);
        gossip_on_flushed(tn[a].g, tn[b].key, pi->backlog, tnow);
        drain(a);
        run();
        advance(10);
    }
    assert_int_equal(tn[b].nrec, 60);
    assert_true(gossip_is_active(tn[a].g, tn[b].key));
    gossip_get_stats(tn[a].g, &st);
    assert_int_equal(st.peers_dropped_backlog, 0);
    assert_true(st.eager_deferred > 0);
}

static void
test_want_served_within_backlog(void **state)
{
    struct gossip_config cfg;
    uint8_t ids[40][32];
    int a, b;
    struct gossip_peer_info pi;

    (void)state;
    tn_config(&cfg);
    cfg.peer_backlog_max = 32 * 1024;
    a = tn_add_cfg(&cfg);
    b = tn_add_cfg(&cfg);
    for (int i = 0; i < 40; i++) {
        assert_int_equal(publish(a, (uint8_t)(i + 1), 4000), 0);
        memcpy(ids[i], tn[a].ids[i], 32);
    }
    assert_int_equal(gossip_add_known(tn[b].g, tn[a].key, tn[a].addr, tnow), 0);
    run();
    assert_true(gossip_is_active(tn[a].g, tn[b].key));
    /* b asks for 40 records of 4000 bytes (160 KB) at once and stops reading: a sends
     * only up to half its backlog limit, then the rest as b reads. */
    tn[b].flush = false;
    assert_int_equal(gossip_want(tn[b].g, tn[a].key, (const uint8_t(*)[32])ids, 40, tnow), 0);
    run();
    assert_int_equal(gossip_peer_at(tn[a].g, 0, &pi), 0);
    assert_true(pi.backlog <= 16 * 1024);
    assert_true(tn[b].nrec < 40);
    /* Now b reads: flushes trickle back and the rest is served. */
    tn[b].flush = true;
    gossip_on_flushed(tn[a].g, tn[b].key, pi.backlog, tnow);
    drain(a);
    run();
    assert_int_equal(tn[b].nrec, 40);
    assert_true(gossip_is_active(tn[a].g, tn[b].key));
    /* WANT answers do not graft or prune anything. */
    assert_int_equal(sends_by_type[MSG_PRUNE], 0);
    /* bad arguments */
    assert_int_equal(gossip_want(tn[b].g, tn[a].key, (const uint8_t(*)[32])ids, 0, tnow),
                     PULL_ERR_INVAL);
    assert_int_equal(gossip_want(tn[b].g, tn[b].key, (const uint8_t(*)[32])ids, 1, tnow),
                     PULL_ERR_NOT_FOUND);
}

static void
test_queues_bounded(void **state)
{
    struct gossip_config cfg;
    uint8_t id[32];
    struct mb m;
    int a, b, c;
    struct gossip_stats st;

    (void)state;
    tn_config(&cfg);
    cfg.missing_max = 100;
    cfg.serve_max = 10;
    cfg.active_size = 8; /* room for all seven announcers */
    a = tn_add_cfg(&cfg);
    b = tn_add_cfg(&cfg);
    c = tn_add_cfg(&cfg);
    make_active(b, a);
    make_active(c, a);
    for (int k = 3; k < 8; k++) {
        tn_add_cfg(&cfg);
        make_active(k, a);
    }
    /* Peers 1..7 each announce 3 x 512 made-up ids: each may create at most
     * missing_max / 4 + 1 = 26 entries, and all together at most missing_max = 100. */
    for (int from = 1; from < 8; from++) {
        for (int r = 0; r < 3; r++) {
            uint8_t hops[GOSSIP_IDS_MAX] = {0};
            mb_begin(&m, MSG_IHAVE, 2);
            msgpack_pack_array(&m.pk, GOSSIP_IDS_MAX);
            for (int i = 0; i < GOSSIP_IDS_MAX; i++) {
                memset(id, 0, 32);
                id[0] = (uint8_t)r;
                id[1] = (uint8_t)(i >> 8);
                id[2] = (uint8_t)i;
                id[3] = (uint8_t)from;
                mp_pack_bin(&m.pk, id, 32);
            }
            mp_pack_bin(&m.pk, hops, sizeof(hops));
            assert_int_equal(deliver(from, a, &m), 0);
        }
        if (from == 1) {
            advance(2000);
            gossip_get_stats(tn[a].g, &st);
            assert_int_equal(st.grafts, 26);
        }
    }
    advance(2000);
    gossip_get_stats(tn[a].g, &st);
    assert_int_equal(st.grafts, 26 + 100);
    /* a GRAFT of 512 ids from c: at most serve_max are queued (none are stored here). */
    mb_begin(&m, MSG_GRAFT, 1);
    msgpack_pack_array(&m.pk, GOSSIP_IDS_MAX);
    for (int i = 0; i < GOSSIP_IDS_MAX; i++)
        mp_pack_bin(&m.pk, id, 32);
    assert_int_equal(deliver(c, a, &m), 0);
    assert_true(peer_info(a, c)->eager);
}

static void
test_inbound_limit(void **state)
{
    struct gossip_config cfg;
    int a, k;
    struct gossip_action act;
    int refused = 0;

    (void)state;
    tn_config(&cfg);
    cfg.max_pending = 3;
    a = tn_add_cfg(&cfg);
    for (k = 0; k < 6; k++)
        tn_add();
    for (k = 1; k <= 6; k++)
        gossip_on_connected(tn[a].g, tn[k].key, "1.1.1.1:1", true, tnow);
    while (gossip_poll_action(tn[a].g, &act)) {
        refused += act.type == GOSSIP_ACT_DISCONNECT;
        gossip_action_release(&act);
    }
    assert_int_equal(refused, 3);
    /* silent inbound connections time out */
    advance(cfg.connect_timeout_ms + 2000);
    assert_int_equal(gossip_peer_count(tn[a].g), 0);
}

static void
test_reconnect_gets_recent(void **state)
{
    int a, b, c;

    (void)state;
    triangle(&a, &b, &c);
    /* c is cut off; a publishes; c comes back and learns the id from the IHAVE that a new
     * neighbour sends right away, then grafts it. */
    tn[a].up[c] = tn[c].up[a] = false;
    tn[b].up[c] = tn[c].up[b] = false;
    gossip_on_disconnected(tn[a].g, tn[c].key, tnow);
    gossip_on_disconnected(tn[b].g, tn[c].key, tnow);
    gossip_on_disconnected(tn[c].g, tn[a].key, tnow);
    gossip_on_disconnected(tn[c].g, tn[b].key, tnow);
    for (int i = 0; i < 3; i++)
        drain(i);
    assert_int_equal(publish(a, 5, 200), 0);
    run();
    assert_int_equal(tn[c].nrec, 0);
    assert_int_equal(gossip_add_known(tn[c].g, tn[a].key, tn[a].addr, tnow), 0);
    advance(3000);
    assert_int_equal(tn[c].nrec, 1);
}

/* last_hops returns the hops field of the last RECORDS message from node i to j queued in
 * the router, or -1. */
static int
queued_records_hops(int from, int to)
{
    int hops = -1;

    for (struct tmsg *m = q_head; m != NULL; m = m->next) {
        struct pull_rd r;
        uint32_t n;
        uint64_t type, flags, h;
        if (m->from != from || m->to != to || m->data == NULL)
            continue;
        rd_init(&r, m->data, m->len);
        if (mp_read_array(&r, &n) == 0 && mp_read_uint(&r, &type) == 0 && type == MSG_RECORDS &&
            mp_read_uint(&r, &flags) == 0 && mp_read_uint(&r, &h) == 0)
            hops = (int)h;
    }
    return hops;
}

static void
test_hops_counted(void **state)
{
    int a, b, c;

    (void)state;
    /* A line a - b - c (b joins a, c joins b; views of 2 keep it a line). */
    {
        struct gossip_config cfg;
        tn_config(&cfg);
        cfg.active_size = 2;
        cfg.rotate_ms = 0;
        a = tn_add_cfg(&cfg);
        b = tn_add_cfg(&cfg);
        c = tn_add_cfg(&cfg);
    }
    assert_int_equal(gossip_add_known(tn[b].g, tn[a].key, tn[a].addr, tnow), 0);
    run();
    assert_int_equal(gossip_add_known(tn[c].g, tn[b].key, tn[b].addr, tnow), 0);
    run();
    assert_true(gossip_is_active(tn[b].g, tn[c].key));
    assert_int_equal(publish(a, 1, 100), 0);
    drain(a);
    assert_int_equal(queued_records_hops(a, b), 0); /* the origin sends 0 */
    /* deliver a's push to b only, then look at b's push to c */
    {
        struct tmsg *m = q_head;
        assert_non_null(m);
        q_head = m->next;
        if (q_head == NULL)
            q_tail = NULL;
        assert_int_equal(gossip_on_message(tn[m->to].g, tn[m->from].key, m->data, m->len, tnow), 0);
        drain(m->to);
        free(m->data);
        free(m);
    }
    assert_int_equal(queued_records_hops(b, c), 1);
    run();
    assert_int_equal(tn[c].news, 1);
}

static void
test_eviction_gap(void **state)
{
    struct gossip_config cfg;
    struct mb m;
    int a, k;

    (void)state;
    tn_config(&cfg);
    cfg.active_size = 2;
    cfg.rotate_ms = 0;
    a = tn_add_cfg(&cfg);
    for (k = 1; k <= 4; k++)
        tn_add_cfg(&cfg);
    make_active(1, a);
    make_active(2, a);
    assert_int_equal(gossip_active_count(tn[a].g), 2);
    /* A high-priority NEIGHBOR while full: accepted, someone is dropped. */
    connect_raw(3, a);
    mb_begin(&m, MSG_NEIGHBOR, 2);
    mp_pack_cstr(&m.pk, tn[3].addr);
    msgpack_pack_true(&m.pk);
    assert_int_equal(deliver(3, a, &m), 0);
    assert_true(gossip_is_active(tn[a].g, tn[3].key));
    assert_int_equal(gossip_active_count(tn[a].g), 2);
    /* A second one within evict_gap_ms: refused like a low-priority one. */
    connect_raw(4, a);
    mb_begin(&m, MSG_NEIGHBOR, 2);
    mp_pack_cstr(&m.pk, tn[4].addr);
    msgpack_pack_true(&m.pk);
    assert_int_equal(deliver(4, a, &m), 0);
    assert_false(gossip_is_active(tn[a].g, tn[4].key));
    /* After the gap it is accepted again. */
    tnow += cfg.evict_gap_ms;
    mb_begin(&m, MSG_NEIGHBOR, 2);
    mp_pack_cstr(&m.pk, tn[4].addr);
    msgpack_pack_true(&m.pk);
    assert_int_equal(deliver(4, a, &m), 0);
    assert_true(gossip_is_active(tn[a].g, tn[4].key));
}

static void
test_rotation(void **state)
{
    struct gossip_config cfg;
    int a, k, changed = 0;
    uint8_t before[2][32];
    bool ever[6] = {false};

    (void)state;
    tn_config(&cfg);
    cfg.active_size = 2;
    cfg.rotate_young_ms = 10000;
    cfg.rotate_ms = 40000;
    a = tn_add_cfg(&cfg);
    for (k = 1; k <= 5; k++) {
        tn_add_cfg(&cfg);
        assert_int_equal(gossip_add_known(tn[a].g, tn[k].key, tn[k].addr, tnow), 0);
    }
    advance(5000);
    assert_int_equal(gossip_active_count(tn[a].g), 2);
    for (k = 0; k < 2; k++) {
        struct gossip_peer_info pi;
        assert_int_equal(gossip_peer_at(tn[a].g, (size_t)k, &pi), 0);
        memcpy(before[k], pi.key, 32);
    }
    /* a's view is full; rotation still brings in passive peers from time to time. */
    sends_by_type[MSG_NEIGHBOR] = 0;
    for (int step = 0; step < 24; step++) {
        advance(5000);
        for (k = 1; k <= 5; k++) {
            bool act = gossip_is_active(tn[a].g, tn[k].key);
            bool was =
                memcmp(tn[k].key, before[0], 32) == 0 || memcmp(tn[k].key, before[1], 32) == 0;
            if (act && !was)
                ever[k] = true;
        }
    }
    for (k = 1; k <= 5; k++)
        changed += ever[k];
    assert_true(sends_by_type[MSG_NEIGHBOR] >= 2);
    assert_true(changed >= 2);
    assert_true(gossip_active_count(tn[a].g) <= 2);
}

static void
test_tree_links(void **state)
{
    struct gossip_config cfg;
    int a, k;
    size_t eager = 0, lazy = 0;

    (void)state;
    tn_config(&cfg);
    cfg.rotate_ms = 0;
    a = tn_add_cfg(&cfg);
    for (k = 1; k <= 4; k++)
        tn_add_cfg(&cfg);
    /* a joins 1; once a record went through a, the links a opens later start lazy. */
    assert_int_equal(gossip_add_known(tn[a].g, tn[1].key, tn[1].addr, tnow), 0);
    run();
    assert_true(gossip_is_active(tn[a].g, tn[1].key));
    assert_int_equal(publish(1, 7, 100), 0);
    run();
    assert_int_equal(tn[a].news, 1);
    /* (2, 3 and 4 hold the record too, or they would graft it from a: eager again) */
    for (k = 2; k <= 4; k++)
        store_put(&tn[k], tn[1].env_bytes[0], tn[1].env_len[0], tn[1].ids[0]);
    for (k = 2; k <= 4; k++)
        assert_int_equal(gossip_add_known(tn[a].g, tn[k].key, tn[k].addr, tnow), 0);
    sends_by_type[MSG_PRUNE] = 0;
    advance(5000);
    assert_int_equal(gossip_active_count(tn[a].g), 4);
    for (k = 1; k <= 4; k++) {
        const struct gossip_peer_info *pi = peer_info(a, k);
        assert_non_null(pi);
        if (pi->eager)
            eager++;
        else
            lazy++;
    }
    assert_int_equal(eager, 1); /* the JOIN link, the tree edge */
    assert_int_equal(lazy, 3);
    assert_true(sends_by_type[MSG_PRUNE] >= 3);
    /* The tree edge goes: a grafts every lazy link at once (GRAFT without ids). */
    sends_by_type[MSG_GRAFT] = 0;
    tn[a].up[1] = tn[1].up[a] = false;
    gossip_on_disconnected(tn[a].g, tn[1].key, tnow);
    drain(a);
    assert_int_equal(sends_by_type[MSG_GRAFT], 3);
    for (k = 2; k <= 4; k++)
        assert_true(peer_info(a, k)->eager);
    run();
    for (k = 2; k <= 4; k++)
        assert_true(peer_info(k, a)->eager);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_two, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spread_and_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graft_repairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failover_promotes_passive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shuffle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_records_ban, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_ban, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stuck_peer_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_want_served_within_backlog, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst_waits_for_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queues_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbound_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_gets_recent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hops_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eviction_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tree_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undialable_peer, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
