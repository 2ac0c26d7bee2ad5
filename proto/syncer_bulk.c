/*
 * syncer_bulk: the engine's bulk catch-up, RECON_BULK, RECON_HAVE and RECON_TAKE
 * (syncer.h is the manual, PROTOCOL.md section 11): sending our whole list to a peer when
 * this node holds at most MSG_BULK_MAX records, and serving a peer's list from a pass over
 * the store, chunk by chunk, as described below.
 */
#include "proto/syncer_int.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "proto/msg.h"

/* ---------------------------------------------------------------- bulk catch-up
 *
 * A dialer that holds at most MSG_BULK_MAX records sends RECON_BULK with all its ids instead
 * of starting a reconciliation. The receiver copies the list (bounded: 64 KB), wants the
 * listed ids it lacks, and pushes every stored id not in the list: a pass over the store in
 * time order, SYNCER_BULK_CHUNK ids per each_key call, resumed after the last (created, id)
 * visited as the peer's backlog drains (syncer_push_flush). Records stored during the pass reach
 * the peer by gossip; anything else missed, the next periodic reconciliation finds.
 */

bool
syncer_bulk_busy(const struct sconn *c, uint64_t now)
{
    uint64_t last = c->bulk_sent_ms > c->last_rec_ms ? c->bulk_sent_ms : c->last_rec_ms;

    return c->bulk_on || (c->bulk_sent_ms != 0 && now - last < SYNCER_BULK_QUIET_MS);
}

static void
bulk_end(struct syncer *e, struct sconn *c, int err)
{
    char who[9];

    syncer_logf(e, 3, "bulk catch-up %08x of %s %s: %llu id(s) pushed", (unsigned)c->bulk_sid,
                syncer_short(c->key, who), err == 0 ? "done" : pull_strerror(err),
                (unsigned long long)c->bulk_pushed);
    env_free(e->env, c->bulk_ids);
    c->bulk_ids = NULL;
    c->bulk_n = 0;
    c->bulk_on = false;
    env_free(e->env, c->have);
    c->have = NULL;
    memset(c->hc, 0, sizeof(c->hc));
    c->bulk_eof = false;
    if (err == 0)
        e->st.recon_sessions++;
    else
        e->st.recon_failed++;
}

uint64_t
syncer_bulk_deadline(const struct sconn *c)
{
    uint64_t d = UINT64_MAX;

    for (size_t i = 0; i < SYNCER_BULK_AHEAD; i++)
        if (c->hc[i].waiting && c->hc[i].sent_ms + SYNCER_HAVE_STALL_MS < d)
            d = c->hc[i].sent_ms + SYNCER_HAVE_STALL_MS;
    return d;
}

static int
cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

struct bulk_pass {
    struct sconn *c;
    uint8_t (*out)[32];
    size_t n, max;
};

static int
bulk_visit(void *ctx, uint64_t created, const uint8_t id[32])
{
    struct bulk_pass *p = ctx;
    struct sconn *c = p->c;

    if (c->bulk_started && created == c->bulk_created && memcmp(id, c->bulk_last, 32) <= 0)
        return 0; /* visited by an earlier chunk */
    c->bulk_started = true;
    c->bulk_created = created;
    memcpy(c->bulk_last, id, 32);
    if (c->bulk_n > 0 && bsearch(id, c->bulk_ids, c->bulk_n, 32, cmp_id) != NULL)
        return 0;
    memcpy(p->out[p->n++], id, 32);
    return p->n == p->max ? 1 : 0;
}

/* bulk_refill announces the next chunk of ids c's peer lacks (RECON_HAVE) in chunk slot k
 * and keeps it for the peer's RECON_TAKE. At the end of the store the catch-up ends once
 * every chunk announced was taken (at once on a store error). */
static void
bulk_refill(struct syncer *e, struct sconn *c, size_t k, uint64_t now)
{
    struct bulk_pass p = {c, NULL, 0, c->have_max};
    struct msg_have h;
    struct pull_wb w;
    int rc;

    if (c->have == NULL &&
        (c->have = env_alloc(e->env, (size_t)SYNCER_BULK_AHEAD * SYNCER_BULK_CHUNK * 32)) == NULL)
        return; /* the next pump tries again */
    p.out = c->have + k * SYNCER_BULK_CHUNK;
    rc = e->host.each_key(e->host.ctx, c->bulk_started ? c->bulk_created : 0, bulk_visit, &p);
    c->hc[k].n = (uint32_t)p.n;
    if (p.n > 0) {
        memset(&h, 0, sizeof(h));
        h.type = MSG_RECON_HAVE;
        h.sid = c->bulk_sid;
        h.seq = ++c->have_seq;
        h.ids = (const uint8_t *)p.out;
        h.n = (uint32_t)p.n;
        wb_init_env(&w, e->env, MSG_MAX);
        if (msg_have_encode(&h, &w) == 0 && syncer_send(e, c->key, w.p, w.len, false) == 0) {
            c->hc[k].seq = h.seq;
            c->hc[k].waiting = true;
            c->hc[k].sent_ms = now;
        }
        wb_release(&w);
        return;
    }
    if (rc < 0) {
        bulk_end(e, c, rc);
        return;
    }
    c->bulk_eof = true;
    syncer_bulk_pump(e, c, now);
}

/* syncer_bulk_pump announces the next chunk while fewer than SYNCER_BULK_AHEAD wait for
 * their answer and the peer's pushes have mostly gone out; a peer that does not answer a
 * chunk within SYNCER_HAVE_STALL_MS, or takes less than a quarter of one, ends the
 * catch-up (the next reconciliation does the rest): what this node sends stays a small
 * multiple of what the peer asks (PROTOCOL.md 11). */
void
syncer_bulk_pump(struct syncer *e, struct sconn *c, uint64_t now)
{
    size_t waiting = 0, k = SYNCER_BULK_AHEAD;

    if (!c->bulk_on || c->queued >= SYNCER_QUEUE_HIGH)
        return;
    if (now >= syncer_bulk_deadline(c)) {
        bulk_end(e, c, PULL_ERR_TIMEOUT);
        return;
    }
    for (size_t i = 0; i < SYNCER_BULK_AHEAD; i++) {
        if (c->hc[i].waiting)
            waiting++;
        else if (k == SYNCER_BULK_AHEAD)
            k = i;
    }
    if (c->bulk_eof) {
        if (waiting == 0)
            bulk_end(e, c, 0);
        return;
    }
    if (k < SYNCER_BULK_AHEAD && c->push.n < SYNCER_BULK_LOW)
        bulk_refill(e, c, k, now);
}

/* syncer_bulk_on_take: the peer of a catch-up we serve wants these ids of the last chunk. */
void
syncer_bulk_on_take(struct syncer *e, struct sconn *c, const struct msg_have *t, uint64_t now)
{
    uint8_t(*take)[32];
    const uint8_t(*have)[32];
    size_t n = 0, j;
    uint32_t have_n;

    for (j = 0; j < SYNCER_BULK_AHEAD; j++)
        if (c->hc[j].waiting && c->hc[j].seq == t->seq)
            break;
    if (!c->bulk_on || j == SYNCER_BULK_AHEAD || t->sid != c->bulk_sid) {
        e->st.recon_limited++; /* late, or not ours: nothing to do */
        return;
    }
    c->hc[j].waiting = false;
    have = (const uint8_t(*)[32])(c->have + j * SYNCER_BULK_CHUNK);
    have_n = c->hc[j].n;
    if ((take = env_alloc(e->env, (size_t)have_n * 32)) == NULL) {
        bulk_end(e, c, PULL_ERR_NOMEM);
        return;
    }
    for (uint32_t i = 0; i < have_n; i++) {
        for (uint32_t k = 0; k < t->n; k++) {
            if (memcmp(have[i], t->ids + (size_t)k * MSG_TAKE_PREFIX, MSG_TAKE_PREFIX) == 0) {
                memcpy(take[n++], have[i], 32);
                break;
            }
        }
    }
    if (n > 0) {
        syncer_idq_add(e, &c->push, (const uint8_t(*)[32])take, n, SYNCER_PUSH_BACKLOG_MAX);
        c->bulk_pushed += n;
        syncer_push_flush(e, c, now);
    }
    if (n * 2 >= have_n && c->have_max < SYNCER_BULK_CHUNK)
        c->have_max *= 2; /* it takes what it is offered: offer more at once */
    env_free(e->env, take);
    if (n * 4 < have_n)
        bulk_end(e, c, 0); /* it holds most of what we have: reconciliation will do */
    else
        syncer_bulk_pump(e, c, now);
}

struct bulk_list {
    uint8_t (*v)[32];
    uint32_t n;
};

static int
bulk_collect(void *ctx, const uint8_t id[32])
{
    struct bulk_list *l = ctx;

    if (l->n == MSG_BULK_MAX)
        return PULL_ERR_QUOTA; /* the set grew: reconcile instead */
    memcpy(l->v[l->n++], id, 32);
    return 0;
}

/* syncer_bulk_send: if this node holds at most MSG_BULK_MAX records, list them all to c's peer in
 * a RECON_BULK. Returns whether it sent one (otherwise, reconcile). */
bool
syncer_bulk_send(struct syncer *e, struct sconn *c, uint64_t now)
{
    struct msg_bulk b;
    struct bulk_list l = {NULL, 0};
    struct pull_wb w;
    bool sent = false;

    if (!e->cfg.recon || !e->cfg.bulk || !c->recon_ok || recon_set_size(e->set) > MSG_BULK_MAX ||
        syncer_catching_up(e, c, now))
        return false;
    if ((l.v = env_alloc(e->env, MSG_BULK_MAX * 32)) == NULL)
        return false;
    wb_init_env(&w, e->env, MSG_MAX);
    if (e->host.each_id(e->host.ctx, bulk_collect, &l) == 0) {
        if (l.n > 1)
            qsort(l.v, l.n, 32, cmp_id);
        memset(&b, 0, sizeof(b));
        b.sid = env_uniform(e->env, UINT32_MAX) + 1;
        b.ids = (const uint8_t(*)[32])l.v;
        b.n = l.n;
        if (msg_bulk_encode(&b, &w) == 0 && syncer_send(e, c->key, w.p, w.len, false) == 0) {
            c->bulk_sent_ms = now;
            e->st.recon_sessions++; /* the sender's part is done: it has no reply */
            sent = true;
            syncer_logf(e, 3, "bulk catch-up %08x: sent our %u id(s)", (unsigned)b.sid,
                        (unsigned)b.n);
        }
    }
    wb_release(&w);
    env_free(e->env, l.v);
    return sent;
}

/* syncer_bulk_on_msg serves a peer's RECON_BULK. */
void
syncer_bulk_on_msg(struct syncer *e, struct sconn *c, const uint8_t *msg, size_t len, uint64_t now)
{
    uint8_t key[32];
    uint8_t(*lack)[32] = NULL;
    size_t nlack = 0;
    struct msg_bulk b;
    char who[9];

    struct ssrc *ks, *gs;
    uint64_t last;

    memcpy(key, c->key, 32);
    if (msg_bulk_decode(msg, len, &b) != 0) {
        syncer_bad(e, key, "too many reconciliation errors");
        return;
    }
    ks = syncer_src_get(e, key, false, now);
    gs = syncer_src_get(e, c->group, true, now);
    last = syncer_src_last(ks, gs, offsetof(struct ssrc, last_bulk_ms));
    if (!c->recon_ok || c->bulk_on || !syncer_joined(e, c) ||
        (last != 0 && now - last < SYNCER_BULK_GAP_MS)) {
        e->st.recon_limited++;
        return;
    }
    syncer_src_set(ks, gs, offsetof(struct ssrc, last_bulk_ms), now);
    if (b.n > 0 && ((c->bulk_ids = env_alloc(e->env, (size_t)b.n * 32)) == NULL ||
                    (lack = env_alloc(e->env, (size_t)b.n * 32)) == NULL)) {
        env_free(e->env, c->bulk_ids);
        c->bulk_ids = NULL;
        return;
    }
    if (b.n > 0)
        memcpy(c->bulk_ids, b.ids, (size_t)b.n * 32);
    c->bulk_n = b.n;
    c->bulk_sid = b.sid;
    c->bulk_on = true;
    c->bulk_started = false;
    c->bulk_pushed = 0;
    c->have_seq = 0;
    memset(c->hc, 0, sizeof(c->hc));
    c->bulk_eof = false;
    c->have_max = SYNCER_BULK_FIRST;
    for (uint32_t i = 0; i < b.n; i++)
        if (!e->host.has(e->host.ctx, b.ids[i]))
            memcpy(lack[nlack++], b.ids[i], 32);
    syncer_logf(e, 3, "bulk catch-up %08x of %s: it holds %u id(s), we lack %zu", (unsigned)b.sid,
                syncer_short(key, who), (unsigned)b.n, nlack);
    if (nlack > 0) {
        syncer_idq_add(e, &c->want, (const uint8_t(*)[32])lack, nlack, SYNCER_WANT_BACKLOG_MAX);
        syncer_want_pump(e, c, now);
    }
    env_free(e->env, lack);
    syncer_bulk_pump(e, c, now);
}

/* syncer_bulk_on_have: a chunk of ids our RECON_BULK's peer holds and we lack: take the ones we
 * still lack (RECON_TAKE, always answered, even empty). */
void
syncer_bulk_on_have(struct syncer *e, struct sconn *c, const struct msg_have *h, uint64_t now)
{
    uint8_t *pre = NULL;
    struct msg_have t;
    struct pull_wb w;
    uint32_t m = 0;

    if (c->bulk_sent_ms == 0) {
        syncer_bad(e, c->key, "too many reconciliation errors");
        return;
    }
    c->last_rec_ms = now; /* the catch-up goes on: no reconciliation meanwhile */
    if ((pre = env_alloc(e->env, (size_t)h->n * MSG_TAKE_PREFIX)) == NULL)
        return;
    for (uint32_t i = 0; i < h->n; i++) {
        const uint8_t *id = h->ids + (size_t)i * 32;
        if (!e->host.has(e->host.ctx, id))
            memcpy(pre + (size_t)m++ * MSG_TAKE_PREFIX, id, MSG_TAKE_PREFIX);
    }
    memset(&t, 0, sizeof(t));
    t.type = MSG_RECON_TAKE;
    t.sid = h->sid;
    t.seq = h->seq;
    t.ids = pre;
    t.n = m;
    wb_init_env(&w, e->env, MSG_MAX);
    if (msg_have_encode(&t, &w) == 0)
        (void)syncer_send(e, c->key, w.p, w.len, false);
    wb_release(&w);
    env_free(e->env, pre);
}
