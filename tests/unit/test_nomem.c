/*
 * Allocation-failure injection over the protocol engines together (proto/gossip.h,
 * recon.h, dyad.h, mail.h), driven directly in one process.
 *
 * The scenario: three nodes A, B, C; B dials A and C. A and C start with records of their
 * own; the dialers reconcile on connect (recon), A publishes two more (gossip); A proposes a
 * dyad against an offer of B, and the two carry it to completion with sealed mail items
 * sent over their connection and through C's relay index; both then publish their
 * attestation. At the end every node must hold every record (reconciling again as long as
 * needed), both dyads must be completed, and once everything is freed no block may be left.
 *
 * Every engine takes its memory from one tu_failing_env. The test runs the scenario with
 * allocation 1, 2, 3, ... failing in turn, until a run goes through without reaching the
 * failing allocation; then again with every allocation failing from the n-th until the
 * end of that step of the scenario (an outage). In every run:
 *   - a call that fails because of the injected failure returns PULL_ERR_NOMEM (or 0 when the
 *     engine absorbs the loss: a message not sent), never another error, and no call
 *     returns PULL_ERR_NOMEM without an injected failure; a recon session reports its end
 *     with a FAILED event;
 *   - the host retries what failed, as pulld would: resends undelivered dyad mail,
 *     reconciles again, and the scenario then completes with the same final state;
 *   - no leak: the env counts live blocks (LSan checks the rest in the sanitizer build).
 *
 * A second scenario runs the same way through three proto/syncer engines (the engine pulld
 * ships, gossip + recon + mail inside): B dials A and C from its bootstrap lines and the
 * dialer reconciles, A publishes two local records, A posts a mail item for C that B
 * relays. Besides the rules above: a SEND goes only to a connection the host holds, no
 * peer is ever dropped or blamed (frames_bad) for our own shortage, and the network
 * converges (records everywhere, the item in C's inbox) with the engines' own retries and
 * the host's (a post that failed is posted again; when nothing moves for a while, the host
 * closes its connections and the engines rejoin, as after a restart).
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
#include "proto/dyad.h"
#include "proto/gossip.h"
#include "proto/mail.h"
#include "proto/msg.h"
#include "proto/recon.h"
#include "proto/syncer.h"
#include "testutil.h"

#define NN 3
#define NA 0
#define NB 1
#define NC 2
#define REC_MAX 32
#define REC_LEN 120
#define NOW_S 1800000000ull
#define DAY 86400ull

/* Records: 0..3 A's own, 4..6 C's own, 7..8 published by A, then two attestations. */
#define REC_A_OWN 4
#define REC_C_OWN 3
#define REC_PUB 2
#define REC_FIXED (REC_A_OWN + REC_C_OWN + REC_PUB)
#define REC_ALL (REC_FIXED + 2)

enum qkind {
    Q_DATA,  /* a message */
    Q_CLOSE, /* the sender closed its side of the connection */
    Q_DIAL,  /* the sender's engine asked to connect (after what it sent before) */
};

struct qmsg {
    enum qkind kind;
    int from, to;
    uint8_t *p;
    size_t len;
    struct qmsg *next;
};

struct node {
    struct ident id;
    char addr[32];
    struct gossip *g;
    struct recon_set *set;
    struct recon *rc[NN];
    bool up[NN];             /* my side of a connection to each node is open */
    bool known[NN];          /* the host's peer table: peers it was ever connected to */
    struct mail_index *mail; /* relayed items, and my own received ones once processed */
    struct dyad *dyad;
    uint8_t ids[REC_MAX][32]; /* the store: test memory, not the engines' */
    uint8_t *env[REC_MAX];
    size_t env_len[REC_MAX];
    int nrec;
};

struct run_stats {
    uint64_t nomem_returned; /* calls that returned PULL_ERR_NOMEM */
    uint64_t recon_failed;   /* FAILED events */
    uint64_t resent;         /* dyad mail sent again */
};

static struct tu_failing_env fe;
static struct env_seeded base;
static struct node nodes[NN];
static struct qmsg *q_head, *q_tail;
static uint64_t now_ms;
static struct dyad_timeouts touts;
static uint8_t offer_id[32]; /* B's offer the dyad is about */
static uint8_t fixed_env[REC_FIXED][REC_LEN];
static uint8_t fixed_id[REC_FIXED][32];
static struct run_stats st;
static bool outage; /* fail_after mode: stop failing at the end of the current step */

static uint64_t
now_s(void)
{
    return NOW_S + now_ms / 1000;
}

/* The rules every call into the engines obeys; returns rc. */
static int
chk(int rc, uint64_t failed_before, const char *what, int line)
{
    bool injected = fe.failed > failed_before;

    if (rc == PULL_ERR_NOMEM) {
        st.nomem_returned++;
        if (!injected)
            fail_msg("line %d: %s: PULL_ERR_NOMEM without an allocation failure", line, what);
    } else if (injected && rc != 0) {
        fail_msg("line %d: %s: an allocation failure reported as %s", line, what, pull_errname(rc));
    }
    return rc;
}

#define T(expr) chk((expr), fe.failed, #expr, __LINE__)

/* Step boundary: an outage ends here. */
static void
step_end(void)
{
    if (outage && fe.failed > 0)
        tu_failing_arm(&fe, 0, false);
}

static int
node_of(const uint8_t key[32])
{
    for (int i = 0; i < NN; i++)
        if (memcmp(nodes[i].id.pk, key, 32) == 0)
            return i;
    return -1;
}

/* ------------------------------------------------------------------ the store */

static int
store_find(const struct node *n, const uint8_t id[32])
{
    for (int i = 0; i < n->nrec; i++)
        if (memcmp(n->ids[i], id, 32) == 0)
            return i;
    return -1;
}

/* Stores a record and adds it to the recon set, both or neither. Returns 0, or
 * PULL_ERR_NOMEM when the set could not take it (the journal of a running session). */
static int
store_put(struct node *n, const uint8_t *env, size_t len, const uint8_t id[32])
{
    int rc;

    assert_true(n->nrec < REC_MAX);
    if ((rc = T(recon_set_add(n->set, id))) != 0)
        return rc;
    memcpy(n->ids[n->nrec], id, 32);
    n->env[n->nrec] = malloc(len);
    assert_non_null(n->env[n->nrec]);
    memcpy(n->env[n->nrec], env, len);
    n->env_len[n->nrec] = len;
    n->nrec++;
    return 0;
}

/* A local store write: retried until the set takes it. */
static void
store_put_local(struct node *n, const uint8_t *env, size_t len, const uint8_t id[32])
{
    while (store_put(n, env, len, id) != 0)
        step_end(); /* later, with memory back */
}

static enum gossip_verdict
cb_offer(void *ctx, const uint8_t *env, size_t len, const uint8_t id[32], const uint8_t from[32])
{
    struct node *n = ctx;

    (void)from;
    if (store_find(n, id) >= 0)
        return GOSSIP_DUPLICATE;
    /* Not stored (out of memory): no blame; reconciliation brings it again. */
    return store_put(n, env, len, id) == 0 ? GOSSIP_NEW : GOSSIP_DUPLICATE;
}

static bool
cb_has(void *ctx, const uint8_t id[32])
{
    return store_find(ctx, id) >= 0;
}

static int
cb_fetch(void *ctx, const uint8_t id[32], uint8_t *buf, size_t cap, size_t *len)
{
    struct node *n = ctx;
    int i = store_find(n, id);

    *len = 0;
    if (i < 0 || n->env_len[i] > cap)
        return PULL_ERR_NOT_FOUND;
    memcpy(buf, n->env[i], n->env_len[i]);
    *len = n->env_len[i];
    return 0;
}

static int
cb_each(void *ctx, recon_visit_fn visit, void *vctx)
{
    struct node *n = ctx;
    int rc;

    for (int i = 0; i < n->nrec; i++)
        if ((rc = visit(vctx, n->ids[i])) != 0)
            return rc;
    return 0;
}

/* ------------------------------------------------------------------ the network */

static void
q_push(enum qkind kind, int from, int to, const uint8_t *p, size_t len)
{
    struct qmsg *m = calloc(1, sizeof(*m));

    assert_non_null(m);
    m->kind = kind;
    m->from = from;
    m->to = to;
    if (p != NULL) {
        m->p = malloc(len);
        assert_non_null(m->p);
        memcpy(m->p, p, len);
        m->len = len;
    }
    if (q_tail != NULL)
        q_tail->next = m;
    else
        q_head = m;
    q_tail = m;
}

static void drain_gossip(int i);

/* The recon engine of i's connection to j, made when missing (it may fail: then later). */
static struct recon *
recon_of(int i, int j)
{
    struct recon_cfg cfg;

    if (nodes[i].rc[j] == NULL && nodes[i].up[j]) {
        memset(&cfg, 0, sizeof(cfg));
        cfg.env = &fe.env;
        cfg.set = nodes[i].set;
        cfg.each = cb_each;
        cfg.each_ctx = &nodes[i];
        (void)T(recon_new(&cfg, &nodes[i].rc[j]));
    }
    return nodes[i].rc[j];
}

static void
drain_recon(int i, int j)
{
    struct recon *r = nodes[i].rc[j];
    struct recon_event ev;

    if (r == NULL)
        return;
    for (;;) {
        uint64_t f0 = fe.failed;
        if (recon_poll(r, now_ms, &ev) != 1)
            break;
        (void)f0;
        switch (ev.type) {
        case RECON_EV_SEND:
            q_push(Q_DATA, i, j, ev.msg, ev.len);
            break;
        case RECON_EV_WANT:
            for (size_t off = 0; off < ev.n_ids; off += GOSSIP_IDS_MAX) {
                size_t k = ev.n_ids - off < GOSSIP_IDS_MAX ? ev.n_ids - off : GOSSIP_IDS_MAX;
                (void)T(gossip_want(nodes[i].g, nodes[j].id.pk, ev.ids + off, k, now_ms));
            }
            break;
        case RECON_EV_PUSH: {
            int rc = gossip_push(nodes[i].g, nodes[j].id.pk, ev.ids, ev.n_ids, now_ms);
            assert_true(rc >= 0 || rc == PULL_ERR_NOT_FOUND);
            break;
        }
        case RECON_EV_DONE:
            break;
        case RECON_EV_FAILED:
            st.recon_failed++;
            /* Ours, the peer's (told with RECON_ERR), a message that was never sent, or
             * the peer started again after its session failed. */
            if (ev.err != PULL_ERR_NOMEM && ev.err != PULL_ERR_TIMEOUT && ev.err != PULL_ERR_AGAIN)
                fail_msg("recon session failed: %s (%s)", pull_errname(ev.err), ev.reason);
            break;
        }
    }
    drain_gossip(i);
}

/* i closes its side of the connection to j. */
static void
side_close(int i, int j)
{
    nodes[i].up[j] = false;
    recon_free(nodes[i].rc[j]);
    nodes[i].rc[j] = NULL;
}

/* i dials j: connections are instantaneous. */
static void
conn_up(int i, int j, bool report_dialer)
{
    nodes[i].up[j] = nodes[j].up[i] = true;
    nodes[i].known[j] = nodes[j].known[i] = true;
    if (report_dialer)
        gossip_on_connected(nodes[i].g, nodes[j].id.pk, nodes[j].addr, false, now_ms);
    gossip_on_connected(nodes[j].g, nodes[i].id.pk, "10.9.9.9:1", true, now_ms);
    drain_gossip(i);
    drain_gossip(j);
    /* The dialer reconciles on connect. */
    if (nodes[i].up[j] && recon_of(i, j) != NULL && recon_of(j, i) != NULL) {
        (void)T(recon_start(nodes[i].rc[j], now_ms, 0));
        drain_recon(i, j);
    }
}

static void
drain_gossip(int i)
{
    struct gossip_action a;

    while (gossip_poll_action(nodes[i].g, &a)) {
        int j = node_of(a.peer);
        switch (a.type) {
        case GOSSIP_ACT_SEND:
            if (j >= 0 && nodes[i].up[j])
                q_push(Q_DATA, i, j, a.data, a.len);
            break;
        case GOSSIP_ACT_CONNECT:
            if (j < 0)
                gossip_on_disconnected(nodes[i].g, a.peer, now_ms);
            else
                q_push(Q_DIAL, i, j, NULL, 0);
            break;
        case GOSSIP_ACT_DISCONNECT:
            if (j >= 0 && nodes[i].up[j]) {
                side_close(i, j);
                q_push(Q_CLOSE, i, j, NULL, 0);
            }
            break;
        case GOSSIP_ACT_DELIVER:
            break;
        }
        gossip_action_release(&a);
    }
}

static void on_mail(int j, int i, const uint8_t *p, size_t len);

static void
deliver_all(void)
{
    while (q_head != NULL) {
        struct qmsg *m = q_head;
        uint32_t type = 0;
        int i = m->from, j = m->to;

        q_head = m->next;
        if (q_head == NULL)
            q_tail = NULL;
        if (m->kind == Q_CLOSE) {
            if (nodes[j].up[i]) {
                side_close(j, i);
                gossip_on_disconnected(nodes[j].g, nodes[i].id.pk, now_ms);
                drain_gossip(j);
            }
        } else if (m->kind == Q_DIAL) {
            if (!nodes[i].up[j] && !nodes[j].up[i]) {
                conn_up(i, j, true);
            } else if (nodes[i].up[j] && nodes[j].up[i]) {
                /* Connected already (j dialed i): that connection is the outcome. */
                gossip_on_connected(nodes[i].g, nodes[j].id.pk, nodes[j].addr, false, now_ms);
                drain_gossip(i);
            } else {
                gossip_on_disconnected(nodes[i].g, nodes[j].id.pk, now_ms);
                drain_gossip(i);
            }
        } else if (nodes[j].up[i] && msg_peek_type(m->p, m->len, &type) == 0) {
            if (gossip_handles(type)) {
                (void)T(gossip_on_message(nodes[j].g, nodes[i].id.pk, m->p, m->len, now_ms));
                drain_gossip(j);
            } else if (type >= MSG_RECON_REQ && type <= MSG_RECON_ERR) {
                if (recon_of(j, i) != NULL) {
                    (void)T(recon_on_msg(nodes[j].rc[i], now_ms, m->p, m->len));
                    drain_recon(j, i);
                }
            } else if (type == MSG_MAIL) {
                on_mail(j, i, m->p, m->len);
            } else {
                fail_msg("unexpected message type %u", type);
            }
        }
        free(m->p);
        free(m);
    }
}

/* A node left without peers is given its known peers again, as pulld does from its peer
 * table (HyParView forgets a peer whose connection failed). */
static void
refeed(void)
{
    for (int i = 0; i < NN; i++) {
        if (gossip_active_count(nodes[i].g) > 0)
            continue;
        for (int j = 0; j < NN; j++)
            if (nodes[i].known[j] && !nodes[i].up[j])
                (void)T(gossip_add_known(nodes[i].g, nodes[j].id.pk, nodes[j].addr, now_ms));
        drain_gossip(i);
    }
}

/* Once the network is quiet, the engines and the host agree on the connections: every
 * peer an engine counts as connected has a connection, and every connection is known to
 * the engines at both ends (an engine that drops one says so with DISCONNECT). */
static void
check_views(void)
{
    for (int i = 0; i < NN; i++) {
        bool conn[NN] = {false};
        size_t n = gossip_peer_count(nodes[i].g);
        for (size_t k = 0; k < n; k++) {
            struct gossip_peer_info pi;
            int j;
            assert_int_equal(gossip_peer_at(nodes[i].g, k, &pi), 0);
            if (pi.state != GOSSIP_PEER_PENDING && pi.state != GOSSIP_PEER_ACTIVE)
                continue;
            j = node_of(pi.key);
            assert_true(j >= 0);
            if (!nodes[i].up[j])
                fail_msg("node %d counts %d as connected (state %d) without a connection", i, j,
                         pi.state);
            conn[j] = true;
        }
        for (int j = 0; j < NN; j++) {
            if (nodes[i].up[j] && !conn[j])
                fail_msg("node %d has a connection to %d that its engine doesn't know", i, j);
            if (nodes[i].up[j] != nodes[j].up[i])
                fail_msg("the connection %d-%d is open on one side only", i, j);
        }
    }
}

/* Runs the network and the timers for ms of simulated time. */
static void
advance(uint64_t ms)
{
    uint64_t end = now_ms + ms;

    for (;;) {
        uint64_t next = UINT64_MAX;

        deliver_all();
        for (int i = 0; i < NN; i++) {
            uint64_t d = gossip_next_deadline(nodes[i].g);
            next = d < next ? d : next;
            for (int j = 0; j < NN; j++) {
                if (nodes[i].rc[j] != NULL) {
                    d = recon_next_deadline(nodes[i].rc[j]);
                    next = d < next ? d : next;
                }
            }
        }
        if (next > end)
            break;
        if (next > now_ms)
            now_ms = next;
        base.now_ms = now_ms;
        for (int i = 0; i < NN; i++) {
            if (gossip_next_deadline(nodes[i].g) <= now_ms) {
                gossip_on_timeout(nodes[i].g, now_ms);
                drain_gossip(i);
            }
            for (int j = 0; j < NN; j++) {
                if (nodes[i].rc[j] != NULL && recon_next_deadline(nodes[i].rc[j]) <= now_ms) {
                    recon_on_timeout(nodes[i].rc[j], now_ms);
                    drain_recon(i, j);
                }
            }
        }
    }
    now_ms = end;
    base.now_ms = now_ms;
    check_views();
    step_end();
}

/* ------------------------------------------------------------------ mail and dyads */

/* Sends one MSG_MAIL carrying item from i to j, if they are connected. */
static void
send_mail_msg(int i, int j, const uint8_t *item, size_t len)
{
    struct mail_ref ref = {item, len};
    struct pull_wb w;
    int rc;

    if (!nodes[i].up[j])
        return;
    wb_init_env(&w, &fe.env, MSG_MAX);
    rc = T(mail_msg_encode(&ref, 1, &w));
    if (rc == 0)
        q_push(Q_DATA, i, j, w.p, w.len);
    wb_release(&w);
}

/* Node j's mail index holds items for others: it forwards them to connected recipients. */
static void
relay_flush(int j)
{
    size_t n = mail_index_count(nodes[j].mail);

    for (size_t k = 0; k < n; k++) {
        const uint8_t *p, *id, *rcpt;
        size_t len;
        int to;
        assert_int_equal(mail_index_at(nodes[j].mail, k, &p, &len, &id, &rcpt), 0);
        if ((to = node_of(rcpt)) >= 0 && to != j)
            send_mail_msg(j, to, p, len);
    }
}

static void
on_mail(int j, int i, const uint8_t *p, size_t len)
{
    struct mail_ref refs[4];
    size_t count = 0;

    (void)i;
    assert_int_equal(mail_msg_decode(p, len, refs, 4, &count), 0);
    for (size_t k = 0; k < count; k++) {
        struct mail_item m;
        uint8_t plain[DYAD_MSG_MAX];
        size_t n;
        int rc;

        assert_int_equal(mail_parse(refs[k].p, refs[k].len, &m), 0);
        if (memcmp(m.recipient, nodes[j].id.pk, 32) != 0) {
            rc = T(mail_index_add(nodes[j].mail, refs[k].p, refs[k].len, now_s(), NULL));
            assert_true(rc == 0 || rc == PULL_ERR_DUPLICATE || rc == PULL_ERR_NOMEM);
            continue;
        }
        if (mail_index_has(nodes[j].mail, m.id))
            continue; /* processed before */
        assert_int_equal(mail_verify(&m, now_s()), 0);
        assert_int_equal(mail_open(&m, &nodes[j].id, plain, sizeof(plain), &n), 0);
        if (nodes[j].dyad == NULL)
            rc = T(dyad_from_propose(&fe.env, plain, n, now_s(), &touts, &nodes[j].dyad));
        else
            rc = T(dyad_apply(nodes[j].dyad, plain, n, now_s()));
        if (rc == PULL_ERR_NOMEM)
            continue; /* not processed: the sender sends it again */
        if (rc != 0 && rc != PULL_ERR_DUPLICATE)
            fail_msg("dyad message refused: %s", pull_errname(rc));
        /* Processed: remember the item (if that fails, a copy is refused as a replay). */
        (void)T(mail_index_add(nodes[j].mail, refs[k].p, refs[k].len, now_s(), NULL));
    }
}

/* Carries dyad message bytes from i to j as a sealed item, straight and through the third
 * node's relay index, until j's dyad has applied as many messages as i's. */
static void
dyad_carry(int i, int j, const uint8_t *msg, size_t len)
{
    int relay = NN - i - j;
    struct pull_wb item;
    int rc;

    wb_init_env(&item, &fe.env, MAIL_ITEM_MAX);
    while ((rc = T(mail_seal(&fe.env, &nodes[i].id, nodes[j].id.pk, msg, len, now_s() + DAY, &item,
                             NULL))) == PULL_ERR_NOMEM) {
        wb_reset(&item);
        step_end();
    }
    assert_int_equal(rc, 0);
    rc = T(mail_index_add(nodes[relay].mail, item.p, item.len, now_s(), NULL));
    assert_true(rc == 0 || rc == PULL_ERR_NOMEM);
    for (int tries = 0;; tries++) {
        if (tries >= 20)
            fail_msg("dyad mail %d -> %d not delivered: up %d/%d, counts %zu/%zu", i, j,
                     nodes[i].up[j], nodes[relay].up[j], dyad_msg_count(nodes[i].dyad),
                     nodes[j].dyad ? dyad_msg_count(nodes[j].dyad) : 0);
        if (tries > 0)
            st.resent++;
        send_mail_msg(i, j, item.p, item.len);
        relay_flush(relay);
        advance(500);
        if (nodes[j].dyad != NULL && dyad_msg_count(nodes[j].dyad) == dyad_msg_count(nodes[i].dyad))
            break;
        if (!nodes[i].up[j] && !nodes[relay].up[j]) {
            refeed();
            advance(5000); /* wait for gossip to reconnect */
        }
    }
    wb_release(&item);
}

/* i acts on its dyad (retrying what ran out of memory) and carries the message to j. */
static void
dyad_step(int i, int j, enum dyad_kind kind, bool attest)
{
    struct pull_wb w;
    int rc;

    wb_init_env(&w, &fe.env, DYAD_MSG_MAX);
    while ((rc = T(dyad_act(nodes[i].dyad, &nodes[i].id, kind, NULL, 0, attest, now_s(), &w))) ==
           PULL_ERR_NOMEM) {
        wb_reset(&w); /* its error is sticky */
        step_end();
    }
    assert_int_equal(rc, 0);
    step_end();
    dyad_carry(i, j, w.p, w.len);
    wb_release(&w);
}

/* i publishes its attestation of the completed dyad. */
static void
attest(int i)
{
    struct pull_wb w;
    uint8_t id[32];
    int rc;

    wb_init_env(&w, &fe.env, RECORD_ENVELOPE_MAX);
    while ((rc = T(dyad_attestation(nodes[i].dyad, &nodes[i].id, &w, id))) == PULL_ERR_NOMEM) {
        wb_reset(&w);
        step_end();
    }
    assert_int_equal(rc, 0);
    store_put_local(&nodes[i], w.p, w.len, id);
    (void)T(gossip_publish(nodes[i].g, w.p, w.len, id, now_ms));
    drain_gossip(i);
    wb_release(&w);
    step_end();
}

/* ------------------------------------------------------------------ the scenario */

static void
node_init(int i)
{
    struct gossip_config c;
    struct recon_set_cfg scfg = {.cache_symbols = 64, .journal_max = 0, .env = &fe.env};
    struct mail_quota q;
    uint8_t seed[32];
    struct node *n = &nodes[i];
    int rc;

    memset(n, 0, sizeof(*n));
    memset(seed, 0x40 + i, sizeof(seed));
    assert_int_equal(ident_from_seed(&n->id, seed), 0);
    snprintf(n->addr, sizeof(n->addr), "node%d.test:7450", i);
    gossip_config_default(&c);
    c.passive_size = 8;
    c.missing_max = 64;
    c.recent_max = 16;
    c.offer = cb_offer;
    c.has = cb_has;
    c.fetch = cb_fetch;
    c.ctx = n;
    while ((rc = T(gossip_new(&fe.env, n->id.pk, n->addr, &c, &n->g))) == PULL_ERR_NOMEM)
        step_end();
    assert_int_equal(rc, 0);
    while ((rc = T(recon_set_new(&scfg, &n->set))) == PULL_ERR_NOMEM)
        step_end();
    assert_int_equal(rc, 0);
    mail_quota_default(&q);
    while ((rc = T(mail_index_new(&fe.env, &q, &n->mail))) == PULL_ERR_NOMEM)
        step_end();
    assert_int_equal(rc, 0);
    step_end();
}

static void
node_free(int i)
{
    struct node *n = &nodes[i];

    for (int j = 0; j < NN; j++)
        recon_free(n->rc[j]);
    gossip_free(n->g);
    recon_set_free(n->set);
    mail_index_free(n->mail);
    dyad_free(n->dyad);
    for (int k = 0; k < n->nrec; k++)
        free(n->env[k]);
    memset(n, 0, sizeof(*n));
}

static bool
converged(void)
{
    for (int i = 0; i < NN; i++)
        if (nodes[i].nrec != REC_ALL)
            return false;
    return true;
}

/* One whole run with the failure armed at allocation fail_at (0: none). */
static void
scenario(uint64_t fail_at, bool after)
{
    struct pull_wb w;
    int rc;

    memset(&st, 0, sizeof(st));
    now_ms = 1000;
    env_seeded_init(&base, 0x6e6f6d656dull, now_ms, NOW_S);
    tu_failing_init(&fe, &base.env);
    outage = after;
    tu_failing_arm(&fe, fail_at, after);

    for (int i = 0; i < NN; i++)
        node_init(i);
    for (int k = 0; k < REC_A_OWN; k++)
        store_put_local(&nodes[NA], fixed_env[k], REC_LEN, fixed_id[k]);
    for (int k = REC_A_OWN; k < REC_A_OWN + REC_C_OWN; k++)
        store_put_local(&nodes[NC], fixed_env[k], REC_LEN, fixed_id[k]);

    /* B dials A and C (bootstrap lines), and the dialer reconciles. */
    while ((rc = T(gossip_add_known(nodes[NB].g, nodes[NA].id.pk, nodes[NA].addr, now_ms))) ==
           PULL_ERR_NOMEM)
        step_end();
    assert_int_equal(rc, 0);
    while ((rc = T(gossip_add_known(nodes[NB].g, nodes[NC].id.pk, nodes[NC].addr, now_ms))) ==
           PULL_ERR_NOMEM)
        step_end();
    assert_int_equal(rc, 0);
    drain_gossip(NB);
    advance(3000);

    /* A publishes, while B reconciles with A: the sets change under running sessions. */
    if (nodes[NB].up[NA] && nodes[NB].rc[NA] != NULL && nodes[NA].rc[NB] != NULL &&
        !recon_active(nodes[NB].rc[NA], RECON_INITIATOR)) {
        (void)T(recon_start(nodes[NB].rc[NA], now_ms, 0));
        drain_recon(NB, NA);
    }
    for (int k = REC_A_OWN + REC_C_OWN; k < REC_FIXED; k++) {
        store_put_local(&nodes[NA], fixed_env[k], REC_LEN, fixed_id[k]);
        (void)T(gossip_publish(nodes[NA].g, fixed_env[k], REC_LEN, fixed_id[k], now_ms));
        drain_gossip(NA);
        advance(200);
    }
    advance(2000);

    /* The dyad: A proposes against B's offer; accept, done, two acknowledgements. */
    wb_init_env(&w, &fe.env, DYAD_MSG_MAX);
    while ((rc = T(dyad_propose(&fe.env, &nodes[NA].id, offer_id, nodes[NB].id.pk, "a drill?", 8,
                                now_s(), &touts, &nodes[NA].dyad, &w))) == PULL_ERR_NOMEM) {
        wb_reset(&w);
        step_end();
    }
    assert_int_equal(rc, 0);
    assert_int_equal(w.len > 0, 1);
    step_end();
    dyad_carry(NA, NB, w.p, w.len);
    wb_release(&w);
    dyad_step(NB, NA, DYAD_ACCEPT, false);
    dyad_step(NA, NB, DYAD_DONE, false);
    dyad_step(NB, NA, DYAD_ACK, true);
    dyad_step(NA, NB, DYAD_ACK, true);
    assert_int_equal(dyad_state(nodes[NA].dyad), DYAD_ST_COMPLETED);
    assert_int_equal(dyad_state(nodes[NB].dyad), DYAD_ST_COMPLETED);
    attest(NA);
    attest(NB);
    advance(2000);

    /* Anti-entropy until every node holds every record. */
    for (int round = 0; !converged(); round++) {
        if (round >= 40) {
            for (int i = 0; i < NN; i++)
                print_message("node %d: %d records, %zu active\n", i, nodes[i].nrec,
                              gossip_active_count(nodes[i].g));
            fail_msg("no convergence (fail_at %llu%s)", (unsigned long long)fail_at,
                     after ? " and after" : "");
        }
        for (int i = 0; i < NN; i++) {
            for (int j = 0; j < NN; j++) {
                if (i == j || !nodes[i].up[j] || recon_of(i, j) == NULL || recon_of(j, i) == NULL ||
                    recon_active(nodes[i].rc[j], RECON_INITIATOR))
                    continue;
                (void)T(recon_start(nodes[i].rc[j], now_ms, 0));
                drain_recon(i, j);
            }
        }
        refeed();
        advance(3000);
    }
    for (int i = 0; i < NN; i++)
        for (int k = 0; k < REC_FIXED; k++)
            assert_true(store_find(&nodes[i], fixed_id[k]) >= 0);

    while (q_head != NULL) {
        struct qmsg *m = q_head;
        q_head = m->next;
        free(m->p);
        free(m);
    }
    q_tail = NULL;
    for (int i = 0; i < NN; i++)
        node_free(i);
    if (fe.live != 0)
        fail_msg("%lld blocks leaked (fail_at %llu%s)", (long long)fe.live,
                 (unsigned long long)fail_at, after ? " and after" : "");
}

static void
test_nomem_walk(void **state)
{
    uint64_t total, n, reported = 0, resent = 0;

    (void)state;
    scenario(0, false);
    assert_int_equal(fe.failed, 0);
    assert_int_equal(st.nomem_returned, 0);
    total = fe.allocs;
    for (n = 1;; n++) {
        scenario(n, false);
        if (fe.failed == 0)
            break; /* the run ended before allocation n */
        reported += st.nomem_returned > 0 || st.recon_failed > 0;
        resent += st.resent > 0;
    }
    print_message("nomem: %llu allocations in a clean run; allocations 1..%llu failed in "
                  "turn: %llu reported NOMEM (call or FAILED event), %llu needed dyad mail "
                  "sent again, the rest absorbed\n",
                  (unsigned long long)total, (unsigned long long)(n - 1),
                  (unsigned long long)reported, (unsigned long long)resent);
    assert_true(n > total / 2);
}

static void
test_nomem_outage(void **state)
{
    uint64_t total, n, runs = 0;

    (void)state;
    scenario(0, false);
    total = fe.allocs;
    /* Every allocation fails from the n-th to the end of that step of the scenario. */
    for (n = 1; n <= total; n++) {
        scenario(n, true);
        runs++;
    }
    print_message("nomem: %llu outages, one starting at each of %llu allocations\n",
                  (unsigned long long)runs, (unsigned long long)total);
}

/* ================================================================== through proto/syncer */

#define SY_N 3
#define SY_RECS REC_FIXED /* 0..3 A's, 4..6 C's, 7..8 A's local ones */

struct sy_node {
    struct ident id;
    char addr[32];
    struct syncer *e;
    bool have[SY_RECS];
    bool up[SY_N];
    uint64_t mails;
};

struct sy_msg {
    enum qkind kind;
    int from, to;
    uint8_t *p;
    size_t len;
    bool counted;
    struct sy_msg *next;
};

static struct sy_node sy[SY_N];
static struct sy_msg *sy_head, *sy_tail;
static uint8_t sy_item[MAIL_ITEM_MAX]; /* A's item for C */
static size_t sy_item_len;
static uint8_t sy_item_id[MAIL_ID_BYTES];
static uint64_t sy_cycles; /* times the host closed everything to get things moving */

static int
sy_of(const uint8_t key[32])
{
    for (int i = 0; i < SY_N; i++)
        if (memcmp(sy[i].id.pk, key, 32) == 0)
            return i;
    return -1;
}

static int
sy_rec(const uint8_t id[32])
{
    for (int k = 0; k < SY_RECS; k++)
        if (memcmp(fixed_id[k], id, 32) == 0)
            return k;
    return -1;
}

static void sy_stored(int i, int k, bool local);

static enum gossip_verdict
sy_offer(void *ctx, const uint8_t *env, size_t len, const uint8_t id[32], const uint8_t from[32])
{
    struct sy_node *n = ctx;
    int k = sy_rec(id);

    (void)from;
    if (k < 0 || len != REC_LEN || memcmp(env, fixed_env[k], REC_LEN) != 0)
        return GOSSIP_INVALID;
    if (n->have[k])
        return GOSSIP_DUPLICATE;
    sy_stored((int)(n - sy), k, false); /* a commit from inside offer() */
    return GOSSIP_NEW;
}

static bool
sy_has(void *ctx, const uint8_t id[32])
{
    struct sy_node *n = ctx;
    int k = sy_rec(id);

    return k >= 0 && n->have[k];
}

static int
sy_fetch(void *ctx, const uint8_t id[32], uint8_t *buf, size_t cap, size_t *len)
{
    struct sy_node *n = ctx;
    int k = sy_rec(id);

    *len = 0;
    if (k < 0 || !n->have[k] || cap < REC_LEN)
        return PULL_ERR_NOT_FOUND;
    memcpy(buf, fixed_env[k], REC_LEN);
    *len = REC_LEN;
    return 0;
}

static int
sy_each_id(void *ctx, recon_visit_fn visit, void *vctx)
{
    struct sy_node *n = ctx;
    int rc;

    for (int k = 0; k < SY_RECS; k++)
        if (n->have[k] && (rc = visit(vctx, fixed_id[k])) != 0)
            return rc;
    return 0;
}

static int
sy_each_key(void *ctx, uint64_t since,
            int (*visit)(void *vctx, uint64_t created, const uint8_t id[32]), void *vctx)
{
    struct sy_node *n = ctx;
    int rc;

    for (uint64_t k = since; k < SY_RECS; k++)
        if (n->have[k] && (rc = visit(vctx, k, fixed_id[k])) != 0)
            return rc;
    return 0;
}

static void
sy_stored(int i, int k, bool local)
{
    sy[i].have[k] = true;
    if (sy[i].e != NULL)
        syncer_on_stored(sy[i].e, fixed_id[k], NULL, fixed_env[k], REC_LEN, local);
}

static void
sy_push(enum qkind kind, int from, int to, uint8_t *p, size_t len, bool counted)
{
    struct sy_msg *m = calloc(1, sizeof(*m));

    assert_non_null(m);
    m->kind = kind;
    m->from = from;
    m->to = to;
    m->p = p; /* taken */
    m->len = len;
    m->counted = counted;
    if (sy_tail != NULL)
        sy_tail->next = m;
    else
        sy_head = m;
    sy_tail = m;
}

/* sy_after executes node i's actions; every SEND must go to a connection the host holds. */
static void
sy_after(int i)
{
    struct syncer_action a;

    while (syncer_poll_action(sy[i].e, &a)) {
        int j = sy_of(a.peer);
        switch (a.type) {
        case SYNCER_ACT_SEND:
            if (j < 0 || !sy[i].up[j])
                fail_msg("node %d: a SEND to a connection the host does not hold", i);
            {
                uint8_t *copy = malloc(a.len); /* test memory: the action's goes back to fe */
                assert_non_null(copy);
                memcpy(copy, a.data, a.len);
                sy_push(Q_DATA, i, j, copy, a.len, a.counted);
            }
            break;
        case SYNCER_ACT_CONNECT:
            if (j < 0)
                fail_msg("node %d: a CONNECT to an unknown key", i);
            sy_push(Q_DIAL, i, j, NULL, 0, false);
            break;
        case SYNCER_ACT_DISCONNECT:
            if (j >= 0 && sy[i].up[j]) {
                sy[i].up[j] = false;
                sy_push(Q_CLOSE, i, j, NULL, 0, false);
            }
            break;
        case SYNCER_ACT_MAIL:
            sy[i].mails++;
            break;
        case SYNCER_ACT_PUT:
        case SYNCER_ACT_DEL:
            break;
        }
        syncer_action_release(&a);
    }
}

static void
sy_connect(int i, int j)
{
    sy[i].up[j] = sy[j].up[i] = true;
    syncer_on_connected(sy[i].e, sy[j].id.pk, false, sy[j].addr, MSG_FEAT_RECON | MSG_FEAT_MAIL,
                        now_ms);
    sy_after(i);
    if (sy[j].up[i]) { /* i may have refused it at once */
        syncer_on_connected(sy[j].e, sy[i].id.pk, true, sy[i].addr, MSG_FEAT_RECON | MSG_FEAT_MAIL,
                            now_ms);
        sy_after(j);
    }
}

static void
sy_deliver_all(void)
{
    while (sy_head != NULL) {
        struct sy_msg *m = sy_head;
        int i = m->from, j = m->to;

        sy_head = m->next;
        if (sy_head == NULL)
            sy_tail = NULL;
        if (m->kind == Q_CLOSE) {
            if (sy[j].up[i]) {
                sy[j].up[i] = false;
                syncer_on_disconnected(sy[j].e, sy[i].id.pk, now_ms);
                sy_after(j);
            }
        } else if (m->kind == Q_DIAL) {
            if (!sy[i].up[j] && !sy[j].up[i]) {
                sy_connect(i, j);
            } else if (sy[i].up[j] && sy[j].up[i]) {
                syncer_on_connected(sy[i].e, sy[j].id.pk, false, sy[j].addr,
                                    MSG_FEAT_RECON | MSG_FEAT_MAIL, now_ms);
                sy_after(i);
            } else {
                syncer_on_disconnected(sy[i].e, sy[j].id.pk, now_ms);
                sy_after(i);
            }
        } else {
            if (sy[j].up[i] && sy[i].up[j]) {
                int rc = T(syncer_on_message(sy[j].e, sy[i].id.pk, m->p, m->len, now_ms));
                if (rc != 0 && rc != PULL_ERR_NOMEM)
                    fail_msg("node %d: a message from a correct peer refused: %s", j,
                             pull_errname(rc));
                sy_after(j);
            }
            if (sy[i].up[j]) {
                syncer_on_flushed(sy[i].e, sy[j].id.pk, m->len, m->counted, now_ms);
                sy_after(i);
            }
        }
        free(m->p);
        free(m);
    }
}

static void
sy_advance(uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += 100) {
        now_ms += 100;
        base.now_ms = now_ms;
        base.wall_s = NOW_S + now_ms / 1000;
        sy_deliver_all();
        for (int i = 0; i < SY_N; i++) {
            if (syncer_next_deadline(sy[i].e) <= now_ms) {
                syncer_on_timeout(sy[i].e, now_ms);
                sy_after(i);
            }
        }
        sy_deliver_all();
        step_end();
    }
}

static bool
sy_converged(void)
{
    for (int i = 0; i < SY_N; i++)
        for (int k = 0; k < SY_RECS; k++)
            if (!sy[i].have[k])
                return false;
    return syncer_mail_has(sy[NC].e, sy_item_id);
}

static void
sy_scenario(uint64_t fail_at, bool after)
{
    struct syncer_config cfg;
    int rc;

    now_ms = 1000;
    env_seeded_init(&base, 0x73796e63ull, now_ms, NOW_S);
    tu_failing_init(&fe, &base.env);
    memset(&st, 0, sizeof(st));
    sy_cycles = 0;
    outage = after;
    tu_failing_arm(&fe, fail_at, after);
    syncer_config_default(&cfg);
    cfg.sync_interval_ms = 5000;
    cfg.recon_cache_symbols = 64;
    for (int i = 0; i < SY_N; i++) {
        struct syncer_host h = {.offer = sy_offer,
                                .has = sy_has,
                                .fetch = sy_fetch,
                                .each_id = sy_each_id,
                                .each_key = sy_each_key,
                                .ctx = &sy[i]};
        memset(sy[i].have, 0, sizeof(sy[i].have));
        memset(sy[i].up, 0, sizeof(sy[i].up));
        sy[i].mails = 0;
        for (int k = 0; k < SY_RECS - REC_PUB; k++)
            sy[i].have[k] = (i == NA && k < REC_A_OWN) || (i == NC && k >= REC_A_OWN);
        while ((rc = T(syncer_new(&fe.env, sy[i].id.pk, sy[i].addr, &cfg, &h, &sy[i].e))) ==
               PULL_ERR_NOMEM)
            step_end();
        assert_int_equal(rc, 0);
        sy_after(i);
    }
    /* B dials A and C from its bootstrap lines */
    for (int j = 0; j < SY_N; j += 2) {
        while ((rc = T(syncer_add_bootstrap(sy[NB].e, sy[j].id.pk, sy[j].addr, now_ms))) ==
               PULL_ERR_NOMEM)
            step_end();
        assert_int_equal(rc, 0);
        sy_after(NB);
    }
    syncer_start(sy[NB].e, now_ms);
    sy_after(NB);
    step_end();
    sy_advance(5000);
    /* A stores two records of its own: published */
    for (int k = REC_A_OWN + REC_C_OWN; k < SY_RECS; k++) {
        sy_stored(NA, k, true);
        syncer_on_timeout(sy[NA].e, now_ms);
        sy_after(NA);
        step_end();
    }
    sy_advance(2000);
    /* A posts an item for C, whom it may not be connected to: B carries it */
    while ((rc = T(syncer_mail_post(sy[NA].e, sy_item, sy_item_len, now_ms))) == PULL_ERR_NOMEM)
        step_end();
    if (rc != 0 && rc != PULL_ERR_DUPLICATE)
        fail_msg("post: %s", pull_errname(rc));
    sy_after(NA);
    step_end();
    for (int round = 0; !sy_converged(); round++) {
        if (round >= 60)
            fail_msg("syncer: no convergence (fail_at %llu%s)", (unsigned long long)fail_at,
                     after ? " and after" : "");
        if (round > 0 && round % 10 == 0) {
            /* nothing moved for a while: the host closes everything, as a restart would */
            sy_cycles++;
            for (int i = 0; i < SY_N; i++)
                for (int j = 0; j < SY_N; j++)
                    if (sy[i].up[j]) {
                        sy[i].up[j] = false;
                        syncer_on_disconnected(sy[i].e, sy[j].id.pk, now_ms);
                        sy_after(i);
                    }
        }
        sy_advance(3000);
    }
    for (int i = 0; i < SY_N; i++) {
        struct syncer_stats ss;
        syncer_get_stats(sy[i].e, &ss);
        if (ss.peers_dropped != 0 || ss.frames_bad != 0)
            fail_msg("node %d: %llu peers dropped, %llu bad frames for our own shortage "
                     "(fail_at %llu%s)",
                     i, (unsigned long long)ss.peers_dropped, (unsigned long long)ss.frames_bad,
                     (unsigned long long)fail_at, after ? " and after" : "");
    }
    while (sy_head != NULL) {
        struct sy_msg *m = sy_head;
        sy_head = m->next;
        free(m->p);
        free(m);
    }
    sy_tail = NULL;
    for (int i = 0; i < SY_N; i++) {
        syncer_free(sy[i].e);
        sy[i].e = NULL;
    }
    if (fe.live != 0)
        fail_msg("syncer: %lld blocks leaked (fail_at %llu%s)", (long long)fe.live,
                 (unsigned long long)fail_at, after ? " and after" : "");
}

static void
test_nomem_syncer_walk(void **state)
{
    uint64_t total, n, reported = 0, cycles = 0;

    (void)state;
    sy_scenario(0, false);
    assert_int_equal(fe.failed, 0);
    assert_int_equal(st.nomem_returned, 0);
    assert_int_equal(sy_cycles, 0);
    total = fe.allocs;
    for (n = 1;; n++) {
        sy_scenario(n, false);
        if (fe.failed == 0)
            break;
        reported += st.nomem_returned > 0;
        cycles += sy_cycles > 0;
    }
    print_message("nomem syncer: %llu allocations in a clean run; allocations 1..%llu failed "
                  "in turn: %llu reported NOMEM, %llu needed the host to reconnect, the rest "
                  "absorbed\n",
                  (unsigned long long)total, (unsigned long long)(n - 1),
                  (unsigned long long)reported, (unsigned long long)cycles);
    assert_true(n > total / 2);
}

static void
test_nomem_syncer_outage(void **state)
{
    uint64_t total, n, cycles = 0;

    (void)state;
    sy_scenario(0, false);
    total = fe.allocs;
    for (n = 1; n <= total; n++) {
        sy_scenario(n, true);
        cycles += sy_cycles > 0;
    }
    print_message("nomem syncer: %llu outages, %llu needed the host to reconnect\n",
                  (unsigned long long)total, (unsigned long long)cycles);
}

static int
setup(void **state)
{
    (void)state;
    assert_true(sodium_init() >= 0);
    dyad_timeouts_default(&touts);
    memset(offer_id, 0x0f, sizeof(offer_id));
    for (int k = 0; k < REC_FIXED; k++) {
        for (int b = 0; b < REC_LEN; b++)
            fixed_env[k][b] = (uint8_t)(k * 31 + b);
        crypto_generichash(fixed_id[k], 32, fixed_env[k], REC_LEN, NULL, 0);
    }
    for (int i = 0; i < SY_N; i++) {
        uint8_t seed[32];
        memset(seed, 0x51 + i, sizeof(seed));
        assert_int_equal(ident_from_seed(&sy[i].id, seed), 0);
        snprintf(sy[i].addr, sizeof(sy[i].addr), "10.0.1.%d:7450", i + 1);
    }
    {
        struct env_seeded env;
        struct pull_wb w;
        static const uint8_t plain[] = "a dyad message for C";
        env_seeded_init(&env, 5, 0, NOW_S);
        wb_init(&w, MAIL_ITEM_MAX);
        assert_int_equal(mail_seal(&env.env, &sy[NA].id, sy[NC].id.pk, plain, sizeof(plain),
                                   NOW_S + 7 * DAY, &w, sy_item_id),
                         0);
        memcpy(sy_item, w.p, w.len);
        sy_item_len = w.len;
        wb_release(&w);
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nomem_walk),
        cmocka_unit_test(test_nomem_outage),
        cmocka_unit_test(test_nomem_syncer_walk),
        cmocka_unit_test(test_nomem_syncer_outage),
    };

    if (argc > 1) /* a test name pattern (cmocka's filter) */
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, NULL);
}
