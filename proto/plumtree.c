/*
 * plumtree: dissemination of records over the active view, after Leitão, Pereira and
 * Rodrigues, "Epidemic Broadcast Trees" (SRDS 2007).
 *
 * Every active peer is either eager (records are pushed to it in full) or lazy (it only
 * gets ids, in IHAVE messages batched for ihave_delay_ms). New links start eager (but see
 * pt_opened_link: once the tree exists, links opened to refill or rotate start lazy). When a
 * push brings nothing new (every envelope a duplicate), the receiver answers PRUNE and both
 * ends make the link lazy: cycles of the eager graph die out and what remains is a
 * spanning tree. When an id announced by IHAVE has not arrived graft_timeout_ms later, the
 * node sends GRAFT to an announcer (then to the next one every graft_retry_ms): the
 * announcer answers with the envelopes and both make the link eager again, which repairs
 * the tree after failures. A node that receives something new from a peer makes that link
 * eager too (the sender already treats it as eager).
 *
 * Differences from the paper: records travel in batches (RECORDS carries up to
 * GOSSIP_RECORDS_MAX envelopes; a batch prunes only if all of it was duplicate); ids are
 * BLAKE2b-256 of the envelope, computed here; a new active link receives at once an IHAVE
 * of the ids received in the last recent_ms, so a node that reconnects after losing its
 * tree parent catches up without waiting for anti-entropy; WANT fetches ids without
 * touching the tree; answers to GRAFT and WANT are served from a bounded per-peer queue as
 * the peer's backlog allows; a node that loses an eager link grafts all its lazy links at
 * once (pt_on_eager_lost) instead of waiting for the next IHAVE and a GRAFT timeout.
 *
 * RECORDS and IHAVE carry the sender's distance in hops from each record's origin.
 * Version 1 only reports it; it is on the wire so that a later version can use the
 * paper's tree optimisation (section 3.8: swap an eager parent for a lazy announcer with
 * a shorter path) without a new protocol version. Tried in the simulator, that
 * optimisation brought nothing here: with many publishers one shared tree cannot be short
 * for all of them, and what keeps it short is not letting membership changes reshape it
 * (pt_opened_link).
 */
#include <sodium.h>
#include <string.h>

#include "lib/err.h"
#include "lib/mp.h"
#include "proto/gossip_int.h"
#include "proto/msg.h"

#define REC_HEADER 8 /* fixarray(4) + type + flags + hops (<= 2) + array16 header */
#define BIN_HEADER 3 /* an envelope's bin8/bin16 header, at most */

/* ---------------------------------------------------------------- missing ids */

static uint32_t
miss_home(const struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES])
{
    uint8_t h[crypto_shorthash_BYTES];

    crypto_shorthash(h, id, GOSSIP_ID_BYTES, g->hkey);
    return ((uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24) &
           g->miss_mask;
}

/* miss_slot_find returns the index slot holding id, or -1. */
static int64_t
miss_slot_find(const struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES])
{
    uint32_t s = miss_home(g, id);

    while (g->miss_slot[s] != 0) {
        if (memcmp(g->miss[g->miss_slot[s] - 1].id, id, GOSSIP_ID_BYTES) == 0)
            return s;
        s = (s + 1) & g->miss_mask;
    }
    return -1;
}

static struct gmiss *
miss_find(struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES])
{
    int64_t s = miss_slot_find(g, id);

    return s < 0 ? NULL : &g->miss[g->miss_slot[s] - 1];
}

static struct gmiss *
miss_insert(struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES], uint64_t deadline)
{
    uint32_t s = miss_home(g, id);
    struct gmiss *e;

    if (g->nmiss >= g->cfg.missing_max)
        return NULL;
    while (g->miss_slot[s] != 0)
        s = (s + 1) & g->miss_mask;
    e = &g->miss[g->nmiss];
    memset(e, 0, sizeof(*e));
    memcpy(e->id, id, GOSSIP_ID_BYTES);
    e->deadline = deadline;
    g->miss_slot[s] = ++g->nmiss;
    if (deadline < g->miss_min)
        g->miss_min = deadline;
    return e;
}

/* miss_remove_at removes entry idx: backward-shift deletion in the index, then the last
 * entry of the dense array moves into the hole. */
static void
miss_remove_at(struct gossip *g, uint32_t idx)
{
    uint32_t mask = g->miss_mask, last = g->nmiss - 1, s, j;
    int64_t found = miss_slot_find(g, g->miss[idx].id);

    if (found < 0)
        return; /* cannot happen: every entry is indexed */
    {
        struct gpeer *c = gs_conn_find(g, g->miss[idx].creator);
        if (c != NULL && c->nmiss > 0)
            c->nmiss--;
    }
    s = (uint32_t)found;
    g->miss_slot[s] = 0;
    for (j = (s + 1) & mask; g->miss_slot[j] != 0; j = (j + 1) & mask) {
        uint32_t k = miss_home(g, g->miss[g->miss_slot[j] - 1].id);
        /* Move j's entry back into the hole unless its home lies cyclically in (s, j]. */
        bool stays = s <= j ? (s < k && k <= j) : (s < k || k <= j);
        if (!stays) {
            g->miss_slot[s] = g->miss_slot[j];
            g->miss_slot[j] = 0;
            s = j;
        }
    }
    if (idx != last) {
        int64_t ls = miss_slot_find(g, g->miss[last].id);
        g->miss[idx] = g->miss[last];
        if (ls >= 0)
            g->miss_slot[ls] = idx + 1;
    }
    g->nmiss--;
}

static void
miss_forget(struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES])
{
    struct gmiss *e = miss_find(g, id);

    if (e != NULL)
        miss_remove_at(g, (uint32_t)(e - g->miss));
}

/* ---------------------------------------------------------------- records awaiting a verdict
 * The same dense array + open-addressing index as the missing ids, keyed by record id. */

static uint32_t
pend_home(const struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES])
{
    uint8_t h[crypto_shorthash_BYTES];

    crypto_shorthash(h, id, GOSSIP_ID_BYTES, g->hkey);
    return ((uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24) &
           g->pend_mask;
}

static int64_t
pend_slot_find(const struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES])
{
    uint32_t s = pend_home(g, id);

    while (g->pend_slot[s] != 0) {
        if (memcmp(g->pend[g->pend_slot[s] - 1].id, id, GOSSIP_ID_BYTES) == 0)
            return s;
        s = (s + 1) & g->pend_mask;
    }
    return -1;
}

static bool
pend_add(struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES], const uint8_t from[GOSSIP_KEY_BYTES],
         uint8_t hops, bool tree)
{
    uint32_t s = pend_home(g, id);
    struct gpend *e;

    if (g->pend ==
        NULL) { /* the first record verified elsewhere: hosts that never do pay nothing */
        uint32_t cap = 16;
        while (cap < 2 * g->cfg.pending_max)
            cap *= 2;
        g->pend = env_calloc(g->env, g->cfg.pending_max ? g->cfg.pending_max : 1, sizeof(*g->pend));
        g->pend_slot = env_calloc(g->env, cap, sizeof(*g->pend_slot));
        g->pend_mask = cap - 1;
        if (g->pend == NULL || g->pend_slot == NULL) {
            env_free(g->env, g->pend);
            env_free(g->env, g->pend_slot);
            g->pend = NULL;
            g->pend_slot = NULL;
            return false;
        }
    }
    if (g->npend >= g->cfg.pending_max || pend_slot_find(g, id) >= 0)
        return false;
    while (g->pend_slot[s] != 0)
        s = (s + 1) & g->pend_mask;
    e = &g->pend[g->npend];
    memcpy(e->id, id, GOSSIP_ID_BYTES);
    memcpy(e->from, from, GOSSIP_KEY_BYTES);
    e->hops = hops;
    e->tree = tree;
    g->pend_slot[s] = ++g->npend;
    return true;
}

/* pend_take copies out and removes the entry of id; false if there is none. */
static bool
pend_take(struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES], struct gpend *out)
{
    uint32_t mask = g->pend_mask, idx, last = g->npend - 1, s, j;
    int64_t found = g->pend != NULL ? pend_slot_find(g, id) : -1;

    if (found < 0)
        return false;
    s = (uint32_t)found;
    idx = g->pend_slot[s] - 1;
    *out = g->pend[idx];
    g->pend_slot[s] = 0;
    for (j = (s + 1) & mask; g->pend_slot[j] != 0; j = (j + 1) & mask) {
        uint32_t k = pend_home(g, g->pend[g->pend_slot[j] - 1].id);
        bool stays = s <= j ? (s < k && k <= j) : (s < k || k <= j);
        if (!stays) {
            g->pend_slot[s] = g->pend_slot[j];
            g->pend_slot[j] = 0;
            s = j;
        }
    }
    if (idx != last) {
        int64_t ls = pend_slot_find(g, g->pend[last].id);
        g->pend[idx] = g->pend[last];
        if (ls >= 0)
            g->pend_slot[ls] = idx + 1;
    }
    g->npend--;
    return true;
}

/* ---------------------------------------------------------------- recent and rejected */

/* A record had by anti-entropy is announced only if the tree has not brought it this long
 * after it came: its tree copy, if any, is what this node passes on. */
#define UNTOLD_WAIT(g) (2u * (uint64_t)(g)->cfg.graft_timeout_ms)

static void
recent_add(struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES], uint64_t now_ms, uint8_t hops,
           bool tree)
{
    struct grecent *r;

    if (g->cfg.recent_max == 0)
        return;
    if (g->nrecent == g->cfg.recent_max) {
        r = &g->recent[g->recent_head];
        g->recent_head = (g->recent_head + 1) % g->cfg.recent_max;
    } else {
        r = &g->recent[(g->recent_head + g->nrecent) % g->cfg.recent_max];
        g->nrecent++;
    }
    memcpy(r->id, id, GOSSIP_ID_BYTES);
    r->at = now_ms;
    r->hops = hops;
    r->tree = tree;
    r->told = tree;
    if (!tree && g->untold_at == 0)
        g->untold_at = now_ms + UNTOLD_WAIT(g);
}

static struct grecent *
recent_find(struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES])
{
    for (uint32_t i = 0; i < g->nrecent; i++) {
        struct grecent *r = &g->recent[(g->recent_head + i) % g->cfg.recent_max];
        if (memcmp(r->id, id, GOSSIP_ID_BYTES) == 0)
            return r;
    }
    return NULL;
}

static void
rejected_add(struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES])
{
    memcpy(g->rejected[g->rej_head], id, GOSSIP_ID_BYTES);
    g->rej_head = (g->rej_head + 1) % GS_REJECTED_MAX;
    if (g->nrej < GS_REJECTED_MAX)
        g->nrej++;
}

static bool
rejected_has(const struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES])
{
    for (uint32_t i = 0; i < g->nrej; i++) {
        if (memcmp(g->rejected[i], id, GOSSIP_ID_BYTES) == 0)
            return true;
    }
    return false;
}

/* ---------------------------------------------------------------- messages out */

static void
records_encode(struct gossip *g, struct pull_wb *w, uint32_t flags, uint8_t hops,
               const uint8_t *const *env, const uint32_t *len, uint32_t n)
{
    msgpack_packer pk;

    gs_msg_begin(g, w, &pk, MSG_RECORDS, 3);
    msgpack_pack_uint32(&pk, flags);
    msgpack_pack_uint32(&pk, hops);
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++)
        mp_pack_bin(&pk, env[i], len[i]);
}

/* send_ids sends ids as one or more messages of `type` (IHAVE, GRAFT, WANT); hops (IHAVE
 * only) holds our distance from each id's origin. n == 0 sends one empty message. */
static void
send_ids(struct gossip *g, struct gpeer *p, uint32_t type, const uint8_t (*ids)[GOSSIP_ID_BYTES],
         const uint8_t *hops, size_t n)
{
    size_t off = 0;

    do {
        size_t k = n - off < GOSSIP_IDS_MAX ? n - off : GOSSIP_IDS_MAX;
        struct pull_wb w;
        msgpack_packer pk;

        gs_msg_begin(g, &w, &pk, type, type == MSG_IHAVE ? 2 : 1);
        msgpack_pack_array(&pk, (uint32_t)k);
        for (size_t i = 0; i < k; i++)
            mp_pack_bin(&pk, ids[off + i], GOSSIP_ID_BYTES);
        if (type == MSG_IHAVE)
            mp_pack_bin(&pk, hops + off, k);
        (void)gs_send(g, p, &w);
        wb_release(&w);
        off += k;
    } while (off < n);
}

static void
send_prune(struct gossip *g, struct gpeer *p)
{
    struct pull_wb w;
    msgpack_packer pk;

    gs_msg_begin(g, &w, &pk, MSG_PRUNE, 0);
    (void)gs_send(g, p, &w);
    wb_release(&w);
    g->st.prunes++;
}

/* What broadcast does: the tree's rule (push to eager peers, announce to lazy ones), or
 * only one half of it. */
enum bc_mode {
    BC_TREE = 0,  /* a record new to us, from the tree or published here */
    BC_LAZY = 1,  /* announce to every active peer, push to none: a record had by anti-entropy
                     that the tree did not bring within UNTOLD_WAIT (pushed or announced at
                     once, it would reach nodes up the tree before their parents do, and the
                     tree would prune itself, or graft, wherever anti-entropy raced it) */
    BC_EAGER = 2, /* push to the eager peers only: the tree's first copy of a record we had
                     by anti-entropy and announced already */
};

/* backlog_high says whether pushing len more bytes to eager peer q would take its backlog
 * past half of peer_backlog_max. A burst of records published here (a commit of thousands
 * of imported ones) must not make a peer that reads at its own pace look stuck (dropped
 * and avoided): past that point its pushes wait in its serve queue and go out as its
 * backlog allows (up to defer_max ids), the rest is announced (IHAVE). */
static bool
backlog_high(const struct gossip *g, const struct gpeer *q, size_t len)
{
    return g->cfg.peer_backlog_max != 0 && q->backlog + len > g->cfg.peer_backlog_max / 2;
}

/* broadcast pushes n envelopes to every eager peer except `from` and queues their ids for
 * every lazy one, as mode says; an eager peer whose backlog is high gets them later. */
static void
broadcast(struct gossip *g, const struct gpeer *from, const uint8_t *const *env,
          const uint32_t *len, const uint8_t (*ids)[GOSSIP_ID_BYTES], uint32_t n, uint8_t hops,
          enum bc_mode mode, uint64_t now_ms)
{
    struct pull_wb msg, w;
    bool lazy = false;
    uint32_t k0;

    wb_init_env(&msg, g->env, MSG_MAX);
    if (mode != BC_LAZY)
        records_encode(g, &msg, GOSSIP_REC_PUSH, hops, env, len, n);
    if (wb_error(&msg) != 0) {
        /* Out of memory: the lazy links and the GRAFT timers of the others recover. */
        wb_release(&msg);
        return;
    }
    for (uint32_t i = 0; i < g->nconns; i++) {
        struct gpeer *q = g->conns[i];
        if (q == from || q->state != GOSSIP_PEER_ACTIVE || q->doomed)
            continue;
        if (q->eager && mode != BC_LAZY && !backlog_high(g, q, msg.len)) {
            wb_init_env(&w, g->env, MSG_MAX);
            wb_put(&w, msg.p, msg.len);
            (void)gs_send(g, q, &w);
            wb_release(&w);
            continue;
        }
        if (mode == BC_EAGER && !q->eager)
            continue;
        k0 = 0;
        if (q->eager && mode != BC_LAZY) {
            /* its backlog is high: the records wait in its serve queue (pushed as the
             * backlog allows, as GRAFT and WANT answers are), past defer_max announced */
            while (k0 < n &&
                   gs_idq_push(g->env, &q->serve, ids[k0], GOSSIP_REC_PUSH, g->cfg.defer_max) == 0)
                k0++;
            g->st.eager_deferred += k0;
            if (k0 == n)
                continue;
        }
        for (uint32_t k = k0; k < n; k++) {
            if (gs_idq_push(g->env, &q->lazy, ids[k], hops, g->cfg.lazy_max) != 0)
                g->st.lazy_dropped++;
            lazy = true;
        }
    }
    wb_release(&msg);
    if (lazy && g->ihave_at == 0)
        g->ihave_at = now_ms + g->cfg.ihave_delay_ms;
}

/* ---------------------------------------------------------------- messages in */

static void
on_records(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms)
{
    const uint8_t *fresh[GOSSIP_RECORDS_MAX], *late[GOSSIP_RECORDS_MAX];
    uint32_t fresh_len[GOSSIP_RECORDS_MAX], late_len[GOSSIP_RECORDS_MAX];
    uint8_t ids[GOSSIP_RECORDS_MAX][GOSSIP_ID_BYTES], late_ids[GOSSIP_RECORDS_MAX][GOSSIP_ID_BYTES];
    uint32_t k = 0, nlate = 0, npending = 0;
    uint8_t hops = m->hops >= 255 ? 255 : (uint8_t)(m->hops + 1);
    bool tree = m->code == GOSSIP_REC_PUSH || m->code == GOSSIP_REC_GRAFT;
    bool dup = false; /* a copy that the tree carried in vain: a reason to prune */

    for (uint32_t i = 0; i < m->nenv; i++) {
        enum gossip_verdict v;
        struct grecent *r;

        crypto_generichash(ids[k], GOSSIP_ID_BYTES, m->env[i], m->env_len[i], NULL, 0);
        if (rejected_has(g, ids[k])) {
            v = GOSSIP_INVALID;
        } else if (g->npend >= g->cfg.pending_max && !g->cfg.has(g->cfg.ctx, ids[k])) {
            g->st.pending_dropped++; /* verification is behind: reconciliation will bring it */
            continue;
        } else {
            v = g->cfg.offer(g->cfg.ctx, m->env[i], m->env_len[i], ids[k], p->key);
        }
        switch (v) {
        case GOSSIP_NEW:
            g->st.records_new++;
            g->seen_record = true;
            p->score += g->cfg.score_new;
            if (p->score > g->cfg.score_max)
                p->score = g->cfg.score_max;
            miss_forget(g, ids[k]);
            recent_add(g, ids[k], now_ms, hops, tree);
            gs_emit_deliver(g, ids[k]);
            fresh[k] = m->env[i];
            fresh_len[k] = m->env_len[i];
            k++;
            break;
        case GOSSIP_PENDING:
            /* the host verifies it elsewhere: gossip_verdict picks it up from here */
            miss_forget(g, ids[k]);
            if (pend_add(g, ids[k], p->key, hops, tree))
                npending++;
            break;
        case GOSSIP_DUPLICATE:
            g->st.records_dup++;
            miss_forget(g, ids[k]);
            /* Anti-entropy (a WANT, a reconciliation push) may bring a record just before
             * the tree does: the tree's first copy after it is not redundant - it is the
             * one this node forwards along the tree. */
            if (tree && (r = recent_find(g, ids[k])) != NULL && !r->tree) {
                r->tree = true;
                r->hops = hops;
                if (r->told) { /* announced already: push on only */
                    late[nlate] = m->env[i];
                    late_len[nlate] = m->env_len[i];
                    memcpy(late_ids[nlate++], ids[k], GOSSIP_ID_BYTES);
                } else { /* as if it had come by the tree first */
                    r->told = true;
                    fresh[k] = m->env[i];
                    fresh_len[k] = m->env_len[i];
                    k++;
                }
            } else {
                dup = true;
            }
            break;
        default:
            g->st.records_invalid++;
            rejected_add(g, ids[k]);
            gs_penalize(g, p, g->cfg.score_invalid);
            break;
        }
    }
    if (p->state == GOSSIP_PEER_ACTIVE && !p->doomed) {
        if ((k > 0 || nlate > 0 || npending > 0) && tree) {
            p->eager = true;
        } else if (k == 0 && npending == 0 && dup && m->code == GOSSIP_REC_PUSH) {
            /* Nothing new on this link: leave the tree here (both ends go lazy). */
            p->eager = false;
            send_prune(g, p);
        }
    }
    if (k > 0 && tree)
        broadcast(g, p, fresh, fresh_len, (const uint8_t(*)[GOSSIP_ID_BYTES])ids, k, hops, BC_TREE,
                  now_ms);
    if (nlate > 0)
        broadcast(g, p, late, late_len, (const uint8_t(*)[GOSSIP_ID_BYTES])late_ids, nlate, hops,
                  BC_EAGER, now_ms);
}

static void
on_ihave(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms)
{
    for (uint32_t i = 0; i < m->nids; i++) {
        const uint8_t *id = m->ids[i];
        struct gmiss *e;

        if (rejected_has(g, id))
            continue;
        if ((e = miss_find(g, id)) != NULL) {
            bool known = false;
            for (uint32_t a = 0; a < e->nann; a++)
                known = known || gs_key_eq(e->ann[a], p->key);
            if (!known && e->nann < GS_ANN_MAX)
                memcpy(e->ann[e->nann++], p->key, GOSSIP_KEY_BYTES);
            continue;
        }
        if (g->cfg.has(g->cfg.ctx, id))
            continue;
        /* One peer may not fill the table with ids it made up. */
        if (p->nmiss >= g->cfg.missing_max / 4 + 1 ||
            (e = miss_insert(g, id, now_ms + g->cfg.graft_timeout_ms)) == NULL)
            continue; /* too many missing ids: anti-entropy will catch up */
        memcpy(e->creator, p->key, GOSSIP_KEY_BYTES);
        memcpy(e->ann[0], p->key, GOSSIP_KEY_BYTES);
        e->nann = 1;
        p->nmiss++;
    }
}

static void
queue_serve(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint8_t tag, uint64_t now_ms)
{
    for (uint32_t i = 0; i < m->nids; i++) {
        if (gs_idq_push(g->env, &p->serve, m->ids[i], tag, g->cfg.serve_max) != 0)
            break; /* more than we promised to hold: the rest is dropped, not buffered */
    }
    pt_serve(g, p, now_ms);
}

void
pt_handle(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms)
{
    bool active = p->state == GOSSIP_PEER_ACTIVE;

    switch (m->type) {
    case MSG_RECORDS:
        on_records(g, p, m, now_ms);
        return;
    case MSG_IHAVE:
        if (active) {
            on_ihave(g, p, m, now_ms);
            return;
        }
        break;
    case MSG_GRAFT:
        if (active) {
            p->eager = true;
            queue_serve(g, p, m, GOSSIP_REC_GRAFT, now_ms);
            return;
        }
        break;
    case MSG_PRUNE:
        if (active) {
            p->eager = false;
            return;
        }
        break;
    case MSG_WANT:
        queue_serve(g, p, m, GOSSIP_REC_WANT, now_ms);
        return;
    }
    g->st.ignored++;
}

/* ---------------------------------------------------------------- serving requests */

void
pt_serve(struct gossip *g, struct gpeer *p, uint64_t now_ms)
{
    const uint8_t *env[GOSSIP_RECORDS_MAX];
    uint32_t len[GOSSIP_RECORDS_MAX];
    size_t limit = g->cfg.peer_backlog_max ? g->cfg.peer_backlog_max / 2 : SIZE_MAX;

    (void)now_ms;
    while (p->serve.n > 0 && !p->doomed && p->state != GOSSIP_PEER_CONNECTING) {
        uint8_t tag = p->serve.tag[0], hops = 0;
        uint32_t n = 0, used = REC_HEADER, off = 0, consumed = 0;
        bool blocked = false;
        struct pull_wb w;

        while (consumed < p->serve.n && n < GOSSIP_RECORDS_MAX && p->serve.tag[consumed] == tag) {
            size_t elen = 0;
            if (g->cfg.fetch(g->cfg.ctx, p->serve.id[consumed], g->envbuf, GOSSIP_ENVELOPE_MAX,
                             &elen) != 0 ||
                elen == 0 || elen > GOSSIP_ENVELOPE_MAX) {
                consumed++; /* not stored (any more): nothing to send */
                continue;
            }
            if (used + elen + BIN_HEADER > MSG_MAX)
                break;
            if (p->backlog + used + elen + BIN_HEADER > limit) {
                blocked = true; /* wait for gossip_on_flushed */
                break;
            }
            if (hops < 255) {
                /* Our distance from the origin if we know it (GRAFT answers are tree
                 * edges; the others are not: 255, unknown). */
                const struct grecent *r = tag == GOSSIP_REC_GRAFT || tag == GOSSIP_REC_PUSH
                                              ? recent_find(g, p->serve.id[consumed])
                                              : NULL;
                hops = r == NULL ? 255 : r->hops > hops ? r->hops : hops;
            }
            memcpy(g->batch + off, g->envbuf, elen);
            env[n] = g->batch + off;
            len[n] = (uint32_t)elen;
            off += (uint32_t)elen;
            used += (uint32_t)elen + BIN_HEADER;
            n++;
            consumed++;
        }
        gs_idq_pop(&p->serve, consumed);
        if (n > 0) {
            wb_init_env(&w, g->env, MSG_MAX);
            records_encode(g, &w, tag, hops, env, len, n);
            (void)gs_send(g, p, &w);
            wb_release(&w);
        }
        if (blocked || consumed == 0)
            break;
    }
}

/* ---------------------------------------------------------------- local operations */

void
pt_on_active(struct gossip *g, struct gpeer *p, uint64_t now_ms)
{
    uint8_t(*ids)[GOSSIP_ID_BYTES], *hops;
    uint32_t n = 0;

    if (g->nrecent == 0)
        return;
    ids = env_calloc(g->env, g->nrecent, GOSSIP_ID_BYTES);
    hops = env_alloc(g->env, g->nrecent);
    if (ids == NULL || hops == NULL)
        goto out; /* an optimisation only */
    for (uint32_t i = 0; i < g->nrecent; i++) {
        const struct grecent *r = &g->recent[(g->recent_head + i) % g->cfg.recent_max];
        if (r->at + g->cfg.recent_ms > now_ms) {
            memcpy(ids[n], r->id, GOSSIP_ID_BYTES);
            hops[n++] = r->hops;
        }
    }
    if (n > 0)
        send_ids(g, p, MSG_IHAVE, (const uint8_t(*)[GOSSIP_ID_BYTES])ids, hops, n);
out:
    env_free(g->env, ids);
    env_free(g->env, hops);
}

void
pt_opened_link(struct gossip *g, struct gpeer *p)
{
    /* Before any record went through, every link is eager: the first record floods and its
     * first arrivals draw a shortest-path tree. Afterwards a link we open to refill or
     * rotate our view is not needed by the tree (a lost tree edge is repaired through the
     * lazy links, below): eager, it would race the tree and prune whichever path is
     * slower for this one record, and the tree would drift away from short paths. It
     * starts lazy at both ends; a GRAFT makes it eager if it ever proves useful. */
    if (!g->seen_record || !p->eager)
        return;
    for (uint32_t i = 0; i < g->nconns; i++) {
        const struct gpeer *q = g->conns[i];
        if (q != p && q->state == GOSSIP_PEER_ACTIVE && !q->doomed && q->eager) {
            p->eager = false;
            send_prune(g, p);
            return;
        }
    }
}

void
pt_on_eager_lost(struct gossip *g, uint64_t now_ms)
{
    (void)now_ms;
    /* A tree edge is gone: the tree is cut in two and the next records would reach the
     * other part only after an IHAVE and a GRAFT timeout. Graft every lazy link at once
     * instead: the next record arrives first by the fastest of them, and the duplicates
     * on the others prune them again, so the cut heals at the best point (a random link
     * would often hang the subtree far from everything) for a few duplicates. */
    for (uint32_t i = 0; i < g->nconns; i++) {
        struct gpeer *q = g->conns[i];
        if (q->state == GOSSIP_PEER_ACTIVE && !q->doomed && !q->eager) {
            q->eager = true;
            send_ids(g, q, MSG_GRAFT, NULL, NULL, 0);
        }
    }
}

int
pt_publish(struct gossip *g, const uint8_t *env, size_t len, const uint8_t id[GOSSIP_ID_BYTES],
           uint64_t now_ms)
{
    const uint8_t *e[1] = {env};
    uint32_t l[1] = {(uint32_t)len};

    g->seen_record = true;
    miss_forget(g, id);
    recent_add(g, id, now_ms, 0, true);
    broadcast(g, NULL, e, l, (const uint8_t(*)[GOSSIP_ID_BYTES])id, 1, 0, BC_TREE, now_ms);
    return 0;
}

void
pt_verdict(struct gossip *g, const uint8_t *env, size_t len, const uint8_t id[GOSSIP_ID_BYTES],
           enum gossip_verdict v, uint64_t now_ms)
{
    struct gpend e;
    struct gpeer *p;
    const uint8_t *envs[1] = {env};
    uint32_t lens[1] = {(uint32_t)len};

    if (!pend_take(g, id, &e)) {
        if (v == GOSSIP_NEW)
            recent_add(g, id, now_ms, 255, false); /* announced later, if the tree doesn't */
        return;
    }
    p = gs_conn_find(g, e.from);
    if (p != NULL && (p->state == GOSSIP_PEER_CONNECTING || p->doomed))
        p = NULL;
    switch (v) {
    case GOSSIP_NEW:
        g->st.records_new++;
        g->seen_record = true;
        if (p != NULL) {
            p->score += g->cfg.score_new;
            if (p->score > g->cfg.score_max)
                p->score = g->cfg.score_max;
        }
        recent_add(g, id, now_ms, e.hops, e.tree && p != NULL);
        gs_emit_deliver(g, id);
        if (e.tree && p != NULL)
            broadcast(g, p, envs, lens, (const uint8_t(*)[GOSSIP_ID_BYTES])id, 1, e.hops, BC_TREE,
                      now_ms);
        break;
    case GOSSIP_DUPLICATE:
    case GOSSIP_PENDING:
        g->st.records_dup++;
        break;
    default:
        g->st.records_invalid++;
        rejected_add(g, id);
        if (p != NULL)
            gs_penalize(g, p, g->cfg.score_invalid);
        break;
    }
}

int
pt_want(struct gossip *g, struct gpeer *p, const uint8_t (*ids)[GOSSIP_ID_BYTES], size_t n)
{
    send_ids(g, p, MSG_WANT, ids, NULL, n);
    g->st.wants++;
    return 0;
}

int
pt_push(struct gossip *g, struct gpeer *p, const uint8_t (*ids)[GOSSIP_ID_BYTES], size_t n,
        uint64_t now_ms)
{
    size_t k = 0;

    while (k < n && gs_idq_push(g->env, &p->serve, ids[k], GOSSIP_REC_RECON, g->cfg.serve_max) == 0)
        k++;
    pt_serve(g, p, now_ms);
    return (int)k;
}

/* ---------------------------------------------------------------- timers */

static void
flush_ihave(struct gossip *g)
{
    for (uint32_t i = 0; i < g->nconns; i++) {
        struct gpeer *q = g->conns[i];
        if (q->lazy.n == 0)
            continue;
        if (q->state == GOSSIP_PEER_ACTIVE && !q->doomed)
            send_ids(g, q, MSG_IHAVE, (const uint8_t(*)[GOSSIP_ID_BYTES])q->lazy.id, q->lazy.tag,
                     q->lazy.n);
        q->lazy.n = 0;
    }
}

static void
graft_missing(struct gossip *g, uint64_t now_ms)
{
    uint64_t next = UINT64_MAX;

    for (uint32_t i = 0; i < g->nmiss;) {
        struct gmiss *e = &g->miss[i];
        struct gpeer *q = NULL;

        if (e->deadline > now_ms) {
            if (e->deadline < next)
                next = e->deadline;
            i++;
            continue;
        }
        if (!g->cfg.has(g->cfg.ctx, e->id)) {
            while (q == NULL && e->nann > 0) {
                q = gs_conn_find(g, e->ann[0]);
                if (q != NULL && (q->state != GOSSIP_PEER_ACTIVE || q->doomed))
                    q = NULL;
                memmove(e->ann[0], e->ann[1], (size_t)(e->nann - 1) * GOSSIP_KEY_BYTES);
                e->nann--;
            }
        }
        if (q == NULL || gs_idq_push(g->env, &q->graft, e->id, 0, g->cfg.missing_max) != 0) {
            miss_remove_at(g, i); /* entry i now holds another one: look at it next */
            continue;
        }
        e->deadline = now_ms + g->cfg.graft_retry_ms;
        if (e->deadline < next)
            next = e->deadline;
        i++;
    }
    g->miss_min = next;
    for (uint32_t i = 0; i < g->nconns; i++) {
        struct gpeer *q = g->conns[i];
        if (q->graft.n == 0)
            continue;
        q->eager = true;
        send_ids(g, q, MSG_GRAFT, (const uint8_t(*)[GOSSIP_ID_BYTES])q->graft.id, NULL, q->graft.n);
        g->st.grafts += q->graft.n;
        q->graft.n = 0;
    }
}

/* tell_untold announces the records had by anti-entropy that the tree did not bring in
 * time, and finds when the next one is due. */
static void
tell_untold(struct gossip *g, uint64_t now_ms)
{
    uint8_t ids[64][GOSSIP_ID_BYTES];
    uint8_t hops = 0;
    uint32_t n = 0;

    g->untold_at = 0;
    for (uint32_t i = 0; i < g->nrecent; i++) {
        struct grecent *r = &g->recent[(g->recent_head + i) % g->cfg.recent_max];
        uint64_t due = r->at + UNTOLD_WAIT(g);
        if (r->told)
            continue;
        if (due > now_ms || n == 64) {
            if (g->untold_at == 0 || due < g->untold_at)
                g->untold_at = due > now_ms ? due : now_ms;
            continue;
        }
        r->told = true;
        hops = r->hops > hops ? r->hops : hops;
        memcpy(ids[n++], r->id, GOSSIP_ID_BYTES);
    }
    if (n > 0)
        broadcast(g, NULL, NULL, NULL, (const uint8_t(*)[GOSSIP_ID_BYTES])ids, n, hops, BC_LAZY,
                  now_ms);
}

void
pt_timers(struct gossip *g, uint64_t now_ms)
{
    if (g->untold_at != 0 && now_ms >= g->untold_at)
        tell_untold(g, now_ms);
    if (g->ihave_at != 0 && now_ms >= g->ihave_at) {
        g->ihave_at = 0;
        flush_ihave(g);
    }
    if (now_ms >= g->miss_min)
        graft_missing(g, now_ms);
}

uint64_t
pt_next_deadline(const struct gossip *g)
{
    uint64_t d = g->miss_min;

    if (g->ihave_at != 0 && g->ihave_at < d)
        d = g->ihave_at;
    if (g->untold_at != 0 && g->untold_at < d)
        d = g->untold_at;
    return d;
}

int
pt_init(struct gossip *g)
{
    uint32_t cap = 16;

    while (cap < 2 * g->cfg.missing_max)
        cap *= 2;
    g->miss = env_calloc(g->env, g->cfg.missing_max, sizeof(*g->miss));
    g->miss_slot = env_calloc(g->env, cap, sizeof(*g->miss_slot));
    g->miss_mask = cap - 1;
    g->miss_min = UINT64_MAX;

    if (g->cfg.recent_max > 0)
        g->recent = env_calloc(g->env, g->cfg.recent_max, sizeof(*g->recent));
    if (g->miss == NULL || g->miss_slot == NULL || (g->cfg.recent_max > 0 && g->recent == NULL))
        return PULL_ERR_NOMEM;
    return 0;
}

void
pt_release(struct gossip *g)
{
    env_free(g->env, g->miss);
    env_free(g->env, g->miss_slot);
    env_free(g->env, g->pend);
    env_free(g->env, g->pend_slot);
    env_free(g->env, g->recent);
}
