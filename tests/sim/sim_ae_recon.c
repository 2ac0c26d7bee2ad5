/* sim_ae_recon: proto/recon as the simulator's anti-entropy module (see sim.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/env.h"
#include "lib/err.h"
#include "proto/recon.h"
#include "tests/sim/sim.h"

#define TICK_MS 1000

struct rconn {
    uint32_t peer;
    struct recon *r;
};

struct rnode {
    struct sim *s;
    uint32_t node;
    struct sim_recon *ctx;
    struct env_seeded env;
    struct recon_set *set;
    struct rconn *conns;
    uint32_t nconns, cap;
    uint32_t ticks, phase;
};

static int
each_id(void *ctx, recon_visit_fn visit, void *vctx)
{
    struct rnode *rn = ctx;
    uint32_t total = sim_records(rn->s);

    for (uint32_t r = 0; r < total; r++) {
        const uint8_t *env, *id;
        size_t len;
        int rc;
        if (!sim_has(rn->s, rn->node, r))
            continue;
        sim_record(rn->s, r, &env, &len, &id);
        if ((rc = visit(vctx, id)) != 0)
            return rc;
    }
    return 0;
}

static void *
rn_new(struct sim *s, uint32_t node, void *ctx)
{
    struct rnode *rn = calloc(1, sizeof(*rn));
    struct recon_set_cfg scfg = {.cache_symbols = 1024, .journal_max = 0};

    if (rn == NULL)
        abort();
    rn->s = s;
    rn->node = node;
    rn->ctx = ctx;
    env_seeded_init(&rn->env, 0x7265636f6eull ^ ((uint64_t)node << 20) ^ sim_now(s), 0, 0);
    if (recon_set_new(&scfg, &rn->set) != 0 || recon_set_add_all(rn->set, each_id, rn) != 0)
        abort();
    rn->phase = node;
    return rn;
}

static void
rn_free(void *state)
{
    struct rnode *rn = state;

    for (uint32_t i = 0; i < rn->nconns; i++)
        recon_free(rn->conns[i].r);
    free(rn->conns);
    recon_set_free(rn->set);
    free(rn);
}

static struct rconn *
rn_find(struct rnode *rn, uint32_t peer)
{
    for (uint32_t i = 0; i < rn->nconns; i++) {
        if (rn->conns[i].peer == peer)
            return &rn->conns[i];
    }
    return NULL;
}

static void
rn_drain(struct rnode *rn, struct rconn *c)
{
    struct gossip *g = sim_gossip(rn->s, rn->node);
    struct recon_event ev;
    uint64_t now = sim_now(rn->s);

    while (recon_poll(c->r, now, &ev) == 1) {
        switch (ev.type) {
        case RECON_EV_SEND:
            rn->ctx->bytes += ev.len;
            rn->ctx->msgs++;
            (void)sim_send(rn->s, rn->node, c->peer, ev.msg, ev.len);
            break;
        case RECON_EV_WANT:
            rn->ctx->want_ids += ev.n_ids;
            for (size_t off = 0; g != NULL && off < ev.n_ids; off += GOSSIP_IDS_MAX) {
                size_t k = ev.n_ids - off < GOSSIP_IDS_MAX ? ev.n_ids - off : GOSSIP_IDS_MAX;
                (void)gossip_want(g, sim_key(rn->s, c->peer), ev.ids + off, k, now);
            }
            sim_after(rn->s, rn->node);
            break;
        case RECON_EV_PUSH:
            rn->ctx->push_ids += ev.n_ids;
            if (g != NULL && ev.n_ids > 0)
                (void)gossip_push(g, sim_key(rn->s, c->peer), ev.ids, ev.n_ids, now);
            sim_after(rn->s, rn->node);
            break;
        case RECON_EV_DONE:
            if (ev.role == RECON_INITIATOR)
                rn->ctx->sessions++;
            break;
        case RECON_EV_FAILED:
            rn->ctx->failed++;
            break;
        }
    }
}

static void
rn_connected(struct sim *s, uint32_t node, uint32_t peer, bool inbound, void *state)
{
    struct rnode *rn = state;
    struct recon_cfg cfg;
    struct rconn *c;

    (void)s;
    if ((c = rn_find(rn, peer)) == NULL) {
        if (rn->nconns == rn->cap) {
            uint32_t cap = rn->cap ? rn->cap * 2 : 8;
            struct rconn *n = realloc(rn->conns, cap * sizeof(*n));
            if (n == NULL)
                abort();
            rn->conns = n;
            rn->cap = cap;
        }
        c = &rn->conns[rn->nconns++];
        memset(&cfg, 0, sizeof(cfg));
        cfg.env = &rn->env.env;
        cfg.set = rn->set;
        cfg.each = each_id;
        cfg.each_ctx = rn;
        c->peer = peer;
        if (recon_new(&cfg, &c->r) != 0)
            abort();
    }
    (void)node;
    /* Only the dialer starts on connect: one session is enough. */
    if (!inbound && recon_start(c->r, sim_now(rn->s), 0) == 0)
        rn_drain(rn, c);
}

static void
rn_disconnected(struct sim *s, uint32_t node, uint32_t peer, void *state)
{
    struct rnode *rn = state;
    struct rconn *c = rn_find(rn, peer);

    (void)s, (void)node;
    if (c == NULL)
        return;
    recon_free(c->r);
    *c = rn->conns[--rn->nconns];
}

static void
rn_message(struct sim *s, uint32_t node, uint32_t peer, const uint8_t *msg, size_t len, void *state)
{
    struct rnode *rn = state;
    struct rconn *c = rn_find(rn, peer);

    (void)s, (void)node;
    if (c == NULL)
        return;
    (void)recon_on_msg(c->r, sim_now(rn->s), msg, len);
    rn_drain(rn, c);
}

static void
rn_stored(struct sim *s, uint32_t node, const uint8_t *id, void *state)
{
    struct rnode *rn = state;

    (void)s, (void)node;
    if (recon_set_add(rn->set, id) != 0)
        abort();
}

static void
rn_tick(struct sim *s, uint32_t node, void *state)
{
    struct rnode *rn = state;
    uint64_t now = sim_now(s);
    struct gossip *g = sim_gossip(s, node);
    uint32_t every = rn->ctx->period_ms / TICK_MS;

    for (uint32_t i = 0; i < rn->nconns; i++) {
        if (recon_next_deadline(rn->conns[i].r) <= now) {
            recon_on_timeout(rn->conns[i].r, now);
            rn_drain(rn, &rn->conns[i]);
        }
    }
    rn->ticks++;
    if (every == 0 || g == NULL || (rn->ticks + rn->phase) % every != 0)
        return;
    /* Reconcile with one random active peer. */
    {
        size_t nact = gossip_active_count(g);
        struct gossip_peer_info pi;
        struct rconn *c;
        int peer;

        if (nact == 0 || gossip_peer_at(g, env_uniform(&rn->env.env, (uint32_t)nact), &pi) != 0)
            return;
        if ((peer = sim_node_of(s, pi.key)) < 0 || (c = rn_find(rn, (uint32_t)peer)) == NULL ||
            recon_active(c->r, RECON_INITIATOR))
            return;
        if (recon_start(c->r, now, 0) == 0)
            rn_drain(rn, c);
    }
}

void
sim_ae_recon(struct sim_ae_ops *ops, struct sim_recon *r)
{
    memset(ops, 0, sizeof(*ops));
    ops->node_new = rn_new;
    ops->node_free = rn_free;
    ops->on_connected = rn_connected;
    ops->on_disconnected = rn_disconnected;
    ops->on_message = rn_message;
    ops->on_stored = rn_stored;
    ops->on_tick = rn_tick;
    ops->tick_ms = TICK_MS;
    ops->ctx = r;
}
