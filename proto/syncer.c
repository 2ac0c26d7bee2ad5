/*
 * syncer: connections, gossip, reconciliation and bulk catch-up (syncer.h is the manual;
 * mail is in syncer_mail.c).
 *
 * Re-entrance. offer() may make the host commit a full batch, and the commit calls
 * syncer_on_stored from inside the engine. So syncer_on_stored and syncer_on_removed only
 * touch the recon set and the publish list; every other entry point counts its depth, and
 * the outermost one publishes what was stored meanwhile before it returns.
 */
#include "proto/syncer_int.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/mp.h"
#include "proto/msg.h"

static void drain_gossip(struct syncer *e);
static void recon_drain(struct syncer *e, struct sconn *c, uint64_t now);
static void push_flush(struct syncer *e, struct sconn *c, uint64_t now);

/* ---------------------------------------------------------------- small helpers */

void
syncer_logf(const struct syncer *e, int level, const char *fmt, ...)
{
    char line[256];
    va_list ap;

    if (e->host.log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    e->host.log(e->host.ctx, level, line);
}

const char *
syncer_short(const uint8_t key[32], char out[9])
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    uint64_t v = 0;

    for (int i = 0; i < 5; i++)
        v = v << 8 | key[i];
    for (int i = 0; i < 8; i++)
        out[i] = b32[(v >> (35 - 5 * i)) & 31];
    out[8] = '\0';
    return out;
}

static void
enter(struct syncer *e)
{
    e->depth++;
}

static void publish_pending(struct syncer *e, uint64_t now);

/* leave_call ends an entry point: the outermost one publishes local records stored
 * meanwhile and collects gossip's actions. */
static void
leave_call(struct syncer *e, uint64_t now)
{
    if (--e->depth == 0 && e->npub > 0)
        publish_pending(e, now);
    drain_gossip(e);
}

/* act_room makes room for one more action; false when out of memory. */
static bool
act_room(struct syncer *e)
{
    if (e->ahead > 0 && e->ahead == e->nacts)
        e->ahead = e->nacts = 0;
    if (e->nacts == e->cacts) {
        size_t cap = e->cacts ? e->cacts * 2 : 64;
        struct syncer_action *v;
        if (e->ahead > 0) { /* reuse the polled part first */
            memmove(e->acts, e->acts + e->ahead, (e->nacts - e->ahead) * sizeof(*v));
            e->nacts -= e->ahead;
            e->ahead = 0;
        }
        if (e->nacts == e->cacts) {
            if ((v = env_realloc(e->env, e->acts, cap * sizeof(*v))) == NULL)
                return false;
            e->acts = v;
            e->cacts = cap;
        }
    }
    return true;
}

struct syncer_action *
syncer_act_push(struct syncer *e, enum syncer_action_type type)
{
    struct syncer_action *a;

    if (!act_room(e))
        return NULL;
    a = &e->acts[e->nacts++];
    memset(a, 0, sizeof(*a));
    a->type = type;
    a->env = e->env;
    return a;
}

struct sconn *
syncer_conn(const struct syncer *e, const uint8_t key[32])
{
    for (size_t i = 0; i < e->nconns; i++) {
        if (memcmp(e->conns[i]->key, key, 32) == 0)
            return e->conns[i];
    }
    return NULL;
}

/* src_get finds what a key (group false) or an address group remembers asking, making room
 * for it (the least recently used goes); NULL for an unknown group. */
static struct ssrc *
src_get(struct syncer *e, const uint8_t *id, bool group, uint64_t now)
{
    size_t len = group ? GOSSIP_GROUP_LEN : 32, lru = 0;
    struct ssrc *x;

    if (group && id[0] == 0)
        return NULL;
    for (size_t i = 0; i < e->nsrc; i++) {
        x = &e->src[i];
        if (x->group == group && memcmp(x->id, id, len) == 0) {
            x->used_ms = now;
            return x;
        }
        if (x->used_ms < e->src[lru].used_ms)
            lru = i;
    }
    x = e->nsrc < SYNCER_SOURCES_MAX ? &e->src[e->nsrc++] : &e->src[lru];
    memset(x, 0, sizeof(*x));
    x->group = group;
    memcpy(x->id, id, len);
    x->used_ms = now;
    x->window_ms = now;
    return x;
}

/* src_last returns the latest of a field over c's key and group (0: never). */
static uint64_t
src_last(struct ssrc *k, struct ssrc *g, size_t off)
{
    uint64_t a = k != NULL ? *(uint64_t *)((char *)k + off) : 0;
    uint64_t b = g != NULL ? *(uint64_t *)((char *)g + off) : 0;

    return a > b ? a : b;
}

static void
src_set(struct ssrc *k, struct ssrc *g, size_t off, uint64_t now)
{
    if (k != NULL)
        *(uint64_t *)((char *)k + off) = now;
    if (g != NULL)
        *(uint64_t *)((char *)g + off) = now;
}

/* joined: c's peer is in our active view (what strangers must reach before they are
 * served anything costly). */
static bool
joined(const struct syncer *e, const struct sconn *c)
{
    return gossip_is_active(e->g, c->key);
}

int
syncer_send(struct syncer *e, const uint8_t peer[32], const uint8_t *msg, size_t len, bool counted)
{
    struct syncer_action *a;
    struct sconn *c = syncer_conn(e, peer);
    uint8_t *copy;

    if (len == 0 || len > MSG_MAX)
        return PULL_ERR_INVAL;
    if ((copy = env_alloc(e->env, len)) == NULL)
        return PULL_ERR_NOMEM;
    if ((a = syncer_act_push(e, SYNCER_ACT_SEND)) == NULL) {
        env_free(e->env, copy);
        return PULL_ERR_NOMEM;
    }
    memcpy(copy, msg, len);
    memcpy(a->peer, peer, 32);
    a->data = copy;
    a->len = len;
    a->counted = counted;
    if (c != NULL)
        c->queued += len;
    return 0;
}

/* ---------------------------------------------------------------- id queues */

static void
idq_add(const struct syncer *e, struct idq *q, const uint8_t (*ids)[32], size_t n, size_t max)
{
    if (q->n + n > max)
        n = max - q->n; /* the next reconciliation finds the rest */
    if (n == 0)
        return;
    if (q->off > 0 && q->off + q->n + n > q->cap) {
        memmove(q->v, q->v + q->off, q->n * 32);
        q->off = 0;
    }
    if (q->off + q->n + n > q->cap) {
        size_t cap = q->cap ? q->cap : 1024;
        uint8_t(*v)[32];
        while (cap < q->n + n)
            cap *= 2;
        if ((v = env_realloc(e->env, q->v, cap * 32)) == NULL)
            return; /* dropped: the next reconciliation finds them */
        q->v = v;
        q->cap = cap;
    }
    memcpy(q->v + q->off + q->n, ids, n * 32);
    q->n += n;
}

static void
idq_pop(struct idq *q, size_t k)
{
    q->off += k;
    q->n -= k;
    if (q->n == 0)
        q->off = 0;
}

/* ---------------------------------------------------------------- gossip */

static enum gossip_verdict
cb_offer(void *ctx, const uint8_t *env, size_t len, const uint8_t id[GOSSIP_ID_BYTES],
         const uint8_t from[GOSSIP_KEY_BYTES])
{
    struct syncer *e = ctx;
    struct sconn *c = syncer_conn(e, from);

    if (c != NULL) {
        c->last_rec_ms = env_now_ms(e->env);
        if (c->inflight > 0) {
            c->inflight--; /* most likely one we asked for (want_pump runs after the call) */
            c->want_progress_ms = c->last_rec_ms;
        }
    }
    return e->host.offer(e->host.ctx, env, len, id, from);
}

static bool
cb_has(void *ctx, const uint8_t id[GOSSIP_ID_BYTES])
{
    struct syncer *e = ctx;

    return e->host.has(e->host.ctx, id);
}

static int
cb_fetch(void *ctx, const uint8_t id[GOSSIP_ID_BYTES], uint8_t *buf, size_t cap, size_t *len)
{
    struct syncer *e = ctx;

    return e->host.fetch(e->host.ctx, id, buf, cap, len) == 0 ? 0 : PULL_ERR_NOT_FOUND;
}

static void conn_free(struct syncer *e, const uint8_t key[32]);

/* drain_gossip moves gossip's actions into the engine's queue, in order. It makes room
 * before it takes one: out of memory, gossip keeps the rest (its DISCONNECTs are never lost)
 * and they move at the next call or poll, instead of being dropped here (a lost CONNECT
 * left gossip waiting for a dial that never came, a lost DISCONNECT a connection the host
 * kept and the engine had forgotten, a lost SEND bytes gossip counted as queued forever). */
static void
drain_gossip(struct syncer *e)
{
    struct gossip_action ga;

    while (e->g != NULL && act_room(e) && gossip_poll_action(e->g, &ga)) {
        struct syncer_action *a;
        switch (ga.type) {
        case GOSSIP_ACT_SEND: {
            struct sconn *c = syncer_conn(e, ga.peer);
            if ((a = syncer_act_push(e, SYNCER_ACT_SEND)) == NULL)
                break;
            memcpy(a->peer, ga.peer, 32);
            a->data = ga.data;
            a->len = ga.len;
            a->counted = true;
            ga.data = NULL; /* handed over */
            if (c != NULL)
                c->queued += a->len;
            break;
        }
        case GOSSIP_ACT_CONNECT:
            if ((a = syncer_act_push(e, SYNCER_ACT_CONNECT)) != NULL) {
                memcpy(a->peer, ga.peer, 32);
                memcpy(a->addr, ga.addr, sizeof(a->addr));
            }
            break;
        case GOSSIP_ACT_DISCONNECT:
            conn_free(e, ga.peer);
            if ((a = syncer_act_push(e, SYNCER_ACT_DISCONNECT)) != NULL) {
                memcpy(a->peer, ga.peer, 32);
                a->bye = MSG_BYE_NORMAL;
            }
            break;
        case GOSSIP_ACT_DELIVER:
            break;
        }
        gossip_action_release(&ga);
    }
}

/* ---------------------------------------------------------------- connections */

static void
conn_free(struct syncer *e, const uint8_t key[32])
{
    for (size_t i = 0; i < e->nconns; i++) {
        struct sconn *c = e->conns[i];
        if (memcmp(c->key, key, 32) != 0)
            continue;
        e->conns[i] = e->conns[--e->nconns];
        recon_free(c->r);
        env_free(e->env, c->push.v);
        env_free(e->env, c->want.v);
        env_free(e->env, c->bulk_ids);
        env_free(e->env, c->have);
        env_free(e->env, c);
        return;
    }
}

static int
conn_recon_new(struct syncer *e, struct sconn *c)
{
    struct recon_cfg rc;

    memset(&rc, 0, sizeof(rc));
    rc.env = e->env;
    rc.set = e->set;
    rc.each = e->host.each_id;
    rc.each_ctx = e->host.ctx;
    rc.max_symbols = e->cfg.recon_max_symbols;
    return recon_new(&rc, &c->r);
}

static struct sconn *
conn_new(struct syncer *e, const uint8_t key[32])
{
    struct sconn *c;

    conn_free(e, key);
    if (e->nconns == e->cconns) {
        size_t cap = e->cconns ? e->cconns * 2 : 16;
        struct sconn **v = env_realloc(e->env, e->conns, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        e->conns = v;
        e->cconns = cap;
    }
    if ((c = env_calloc(e->env, 1, sizeof(*c))) == NULL)
        return NULL;
    memcpy(c->key, key, 32);
    if (conn_recon_new(e, c) != 0) {
        env_free(e->env, c);
        return NULL;
    }
    e->conns[e->nconns++] = c;
    return c;
}

/* drop ends a connection for misbehaviour outside gossip's scoring. */
static void
drop(struct syncer *e, const uint8_t key[32], const char *why, uint64_t now)
{
    struct syncer_action *a;
    uint8_t k[32];
    char who[9];

    memcpy(k, key, 32);
    syncer_logf(e, 2, "peer %s: dropped: %s", syncer_short(k, who), why);
    e->st.peers_dropped++;
    conn_free(e, k);
    if ((a = syncer_act_push(e, SYNCER_ACT_DISCONNECT)) != NULL) {
        memcpy(a->peer, k, 32);
        a->bye = MSG_BYE_PROTOCOL;
        snprintf(a->text, sizeof(a->text), "%s", why);
    }
    gossip_on_disconnected(e->g, k, now);
}

void
syncer_bad(struct syncer *e, const uint8_t key[32], const char *why)
{
    struct sconn *c = syncer_conn(e, key);

    e->st.frames_bad++;
    if (c != NULL && ++c->bad > SYNCER_BAD_MAX)
        drop(e, key, why, env_now_ms(e->env));
}

/* ---------------------------------------------------------------- wants and pushes */

/* push_flush hands c's pending pushes (what a reconciliation found its peer lacks) to
 * gossip as far as the peer's serve queue takes them. */
static void
push_flush(struct syncer *e, struct sconn *c, uint64_t now)
{
    while (c->push.n > 0) {
        size_t k = c->push.n < GOSSIP_IDS_MAX ? c->push.n : GOSSIP_IDS_MAX;
        int got =
            gossip_push(e->g, c->key, (const uint8_t(*)[32])(c->push.v + c->push.off), k, now);
        if (got <= 0)
            break;
        idq_pop(&c->push, (size_t)got);
        if ((size_t)got < k)
            break;
    }
}

/* want_pump asks c's peer for more of the wanted ids while few are in flight. */
static void
want_pump(struct syncer *e, struct sconn *c, uint64_t now)
{
    if (c->inflight > 0 && now - c->want_progress_ms >= SYNCER_WANT_STALL_MS)
        c->inflight = 0; /* ids the peer no longer has, or answers lost with a drop */
    while (c->want.n > 0 && c->inflight + 128 <= SYNCER_WANT_INFLIGHT) {
        size_t k = SYNCER_WANT_INFLIGHT - c->inflight;
        if (k > GOSSIP_IDS_MAX)
            k = GOSSIP_IDS_MAX;
        if (k > c->want.n)
            k = c->want.n;
        if (gossip_want(e->g, c->key, (const uint8_t(*)[32])(c->want.v + c->want.off), k, now) !=
            0) {
            idq_pop(&c->want, c->want.n); /* not connected in gossip's view: give up */
            break;
        }
        idq_pop(&c->want, k);
        c->inflight += k;
        c->want_progress_ms = now;
    }
}

/* want_after runs after records may have arrived from c's peer: ask for more, and once
 * everything a session wanted is in, schedule the next session of the catch-up. */
static void
want_after(struct syncer *e, struct sconn *c, uint64_t now)
{
    want_pump(e, c, now);
    if (c->again && c->want.n == 0 && c->inflight == 0 && c->retry_at == 0) {
        c->again = false;
        c->retry_at = now + SYNCER_CATCHUP_AGAIN_MS;
    }
}

/* ---------------------------------------------------------------- reconciliation */

static void
recon_drain(struct syncer *e, struct sconn *c, uint64_t now)
{
    struct recon_event ev;
    uint8_t key[32];
    char who[9];

    memcpy(key, c->key, 32);
    syncer_short(key, who);
    for (;;) {
        if ((c = syncer_conn(e, key)) == NULL || c->queued >= SYNCER_QUEUE_HIGH)
            break;
        if (recon_poll(c->r, now, &ev) != 1)
            break;
        switch (ev.type) {
        case RECON_EV_SEND:
            if (ev.role == RECON_RESPONDER) { /* symbols this node spends on the peer */
                struct ssrc *gs = src_get(e, c->group, true, now);
                if (gs != NULL)
                    gs->served += ev.len;
            }
            (void)syncer_send(e, key, ev.msg, ev.len, false);
            break;
        case RECON_EV_WANT:
            idq_add(e, &c->want, ev.ids, ev.n_ids, SYNCER_WANT_BACKLOG_MAX);
            want_pump(e, c, now);
            break;
        case RECON_EV_PUSH:
            idq_add(e, &c->push, ev.ids, ev.n_ids, SYNCER_PUSH_BACKLOG_MAX);
            push_flush(e, c, now);
            break;
        case RECON_EV_DONE:
            e->st.recon_sessions++;
            if (ev.role == RECON_INITIATOR && ev.stats.n_want > 0)
                c->again = true;
            syncer_logf(e, 3,
                        "recon with %s (%s) done: want %u push %u, %u round trip(s), %llu+%llu "
                        "bytes",
                        who, ev.role == RECON_INITIATOR ? "initiator" : "responder",
                        (unsigned)ev.stats.n_want, (unsigned)ev.stats.n_push,
                        (unsigned)ev.stats.round_trips, (unsigned long long)ev.stats.bytes_sent,
                        (unsigned long long)ev.stats.bytes_recv);
            break;
        case RECON_EV_FAILED:
            /* "try again": the peer deferred us (rate limit, busy catching up) or the store
             * moved under the session; retried below, not a failure */
            if (ev.role == RECON_INITIATOR && ev.err == PULL_ERR_AGAIN && !ev.retry_salted)
                e->st.recon_deferred++;
            else
                e->st.recon_failed++;
            syncer_logf(e, 3, "recon with %s (%s) failed: %s", who,
                        ev.role == RECON_INITIATOR ? "initiator" : "responder",
                        ev.reason != NULL ? ev.reason : pull_strerror(ev.err));
            if (ev.role == RECON_INITIATOR && ev.err == PULL_ERR_AGAIN) {
                c->retry_salted = ev.retry_salted;
                c->retry_at = now + 2000;
            }
            break;
        }
    }
}

static bool bulk_busy(const struct sconn *c, uint64_t now);

/* catching_up: records this node asked for are coming from a peer other than except's (a
 * bulk list it sent, ids it wants, a session it started). A second catch-up meanwhile, ours
 * or a peer's, would bring the same records again: it waits. */
static bool
catching_up(const struct syncer *e, const struct sconn *except, uint64_t now)
{
    for (size_t i = 0; i < e->nconns; i++) {
        const struct sconn *c = e->conns[i];
        uint64_t last = c->bulk_sent_ms > c->last_rec_ms ? c->bulk_sent_ms : c->last_rec_ms;
        if (c == except)
            continue;
        if (c->want.n > 0 || c->inflight > 0 || recon_active(c->r, RECON_INITIATOR) ||
            (c->bulk_sent_ms != 0 && now - last < SYNCER_BULK_QUIET_MS))
            return true;
    }
    return false;
}

static void
recon_begin(struct syncer *e, struct sconn *c, unsigned flags, uint64_t now)
{
    if (!e->cfg.recon || !c->recon_ok || recon_active(c->r, RECON_INITIATOR) || bulk_busy(c, now))
        return;
    if (catching_up(e, c, now)) {
        if (c->retry_at == 0) /* once the other catch-up is over */
            c->retry_at = now + SYNCER_CATCHUP_AGAIN_MS;
        return;
    }
    if (recon_start(c->r, now, flags) == 0)
        recon_drain(e, c, now);
}

static void
send_recon_err(struct syncer *e, const uint8_t key[32], uint32_t sid, int err, const char *why)
{
    struct recon_msg m;
    struct pull_wb w;

    memset(&m, 0, sizeof(m));
    m.type = MSG_RECON_ERR;
    m.sid = sid;
    m.from = RECON_RESPONDER;
    m.code = (uint32_t)(-err);
    m.reason = why;
    m.reason_len = (uint32_t)strlen(why);
    wb_init_env(&w, e->env, MSG_MAX);
    if (recon_msg_encode(&m, &w) == 0 && wb_error(&w) == 0)
        (void)syncer_send(e, key, w.p, w.len, false);
    wb_release(&w);
}

/* rebuild_set makes a new recon set from the store after an update failed. */
static void
rebuild_set(struct syncer *e)
{
    struct recon_set_cfg scfg = {
        e->cfg.recon_cache_symbols ? e->cfg.recon_cache_symbols : RECON_CACHE_DEFAULT, 0, e->env};
    struct recon_set *set = NULL;

    if (recon_set_new(&scfg, &set) != 0 ||
        recon_set_add_all(set, e->host.each_id, e->host.ctx) != 0) {
        recon_set_free(set);
        return; /* try again at the next tick */
    }
    for (size_t i = 0; i < e->nconns; i++) {
        recon_free(e->conns[i]->r);
        e->conns[i]->r = NULL;
    }
    recon_set_free(e->set);
    e->set = set;
    e->set_broken = false;
    for (size_t i = 0; i < e->nconns;) {
        if (conn_recon_new(e, e->conns[i]) != 0) {
            uint8_t k[32];
            memcpy(k, e->conns[i]->key, 32);
            drop(e, k, "out of memory", env_now_ms(e->env));
            continue;
        }
        i++;
    }
    syncer_logf(e, 2, "reconciliation set rebuilt (%llu ids)",
                (unsigned long long)recon_set_size(set));
}

/* ---------------------------------------------------------------- bulk catch-up
 *
 * A dialer that holds at most MSG_BULK_MAX records sends RECON_BULK with all its ids instead
 * of starting a reconciliation. The receiver copies the list (bounded: 64 KB), wants the
 * listed ids it lacks, and pushes every stored id not in the list: a pass over the store in
 * time order, SYNCER_BULK_CHUNK ids per each_key call, resumed after the last (created, id)
 * visited as the peer's backlog drains (push_flush). Records stored during the pass reach
 * the peer by gossip; anything else missed, the next periodic reconciliation finds.
 */

static bool
bulk_busy(const struct sconn *c, uint64_t now)
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
    c->have_n = 0;
    c->have_waiting = false;
    if (err == 0)
        e->st.recon_sessions++;
    else
        e->st.recon_failed++;
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

/* bulk_refill announces the next chunk of ids c's peer lacks (RECON_HAVE) and keeps it for
 * the peer's RECON_TAKE. Ends the catch-up at the end of the store (or on a store error). */
static void
bulk_refill(struct syncer *e, struct sconn *c, uint64_t now)
{
    struct bulk_pass p = {c, NULL, 0, c->have_max};
    struct msg_have h;
    struct pull_wb w;
    int rc;

    if (c->have == NULL && (c->have = env_alloc(e->env, SYNCER_BULK_CHUNK * 32)) == NULL)
        return; /* the next pump tries again */
    p.out = c->have;
    rc = e->host.each_key(e->host.ctx, c->bulk_started ? c->bulk_created : 0, bulk_visit, &p);
    c->have_n = (uint32_t)p.n;
    if (p.n > 0) {
        memset(&h, 0, sizeof(h));
        h.type = MSG_RECON_HAVE;
        h.sid = c->bulk_sid;
        h.seq = ++c->have_seq;
        h.ids = (const uint8_t *)c->have;
        h.n = (uint32_t)p.n;
        wb_init_env(&w, e->env, MSG_MAX);
        if (msg_have_encode(&h, &w) == 0 && syncer_send(e, c->key, w.p, w.len, false) == 0) {
            c->have_waiting = true;
            c->bulk_chunk_ms = now;
        }
        wb_release(&w);
        return;
    }
    bulk_end(e, c, rc < 0 ? rc : 0);
}

/* bulk_pump announces the next chunk once the last one was answered and the peer's pushes
 * have mostly gone out; a peer that does not answer within SYNCER_HAVE_STALL_MS, or takes
 * less than a quarter of a chunk, ends the catch-up (the next reconciliation does the rest):
 * what this node sends stays a small multiple of what the peer asks (PROTOCOL.md 11). */
static void
bulk_pump(struct syncer *e, struct sconn *c, uint64_t now)
{
    if (!c->bulk_on || c->queued >= SYNCER_QUEUE_HIGH)
        return;
    if (c->have_waiting) {
        if (now - c->bulk_chunk_ms >= SYNCER_HAVE_STALL_MS)
            bulk_end(e, c, PULL_ERR_TIMEOUT);
        return;
    }
    if (c->push.n < SYNCER_BULK_LOW)
        bulk_refill(e, c, now);
}

/* take_on_msg: the peer of a catch-up we serve wants these ids of the last chunk. */
static void
take_on_msg(struct syncer *e, struct sconn *c, const struct msg_have *t, uint64_t now)
{
    uint8_t(*take)[32];
    size_t n = 0;

    if (!c->bulk_on || !c->have_waiting || t->sid != c->bulk_sid || t->seq != c->have_seq) {
        e->st.recon_limited++; /* late, or not ours: nothing to do */
        return;
    }
    c->have_waiting = false;
    if ((take = env_alloc(e->env, (size_t)c->have_n * 32)) == NULL) {
        bulk_end(e, c, PULL_ERR_NOMEM);
        return;
    }
    for (uint32_t i = 0; i < c->have_n; i++) {
        for (uint32_t k = 0; k < t->n; k++) {
            if (memcmp(c->have[i], t->ids + (size_t)k * MSG_TAKE_PREFIX, MSG_TAKE_PREFIX) == 0) {
                memcpy(take[n++], c->have[i], 32);
                break;
            }
        }
    }
    if (n > 0) {
        idq_add(e, &c->push, (const uint8_t(*)[32])take, n, SYNCER_PUSH_BACKLOG_MAX);
        c->bulk_pushed += n;
        push_flush(e, c, now);
    }
    if (n * 2 >= c->have_n && c->have_max < SYNCER_BULK_CHUNK)
        c->have_max *= 2; /* it takes what it is offered: offer more at once */
    env_free(e->env, take);
    if (n * 4 < c->have_n)
        bulk_end(e, c, 0); /* it holds most of what we have: reconciliation will do */
    else
        bulk_pump(e, c, now);
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

/* bulk_send: if this node holds at most MSG_BULK_MAX records, list them all to c's peer in
 * a RECON_BULK. Returns whether it sent one (otherwise, reconcile). */
static bool
bulk_send(struct syncer *e, struct sconn *c, uint64_t now)
{
    struct msg_bulk b;
    struct bulk_list l = {NULL, 0};
    struct pull_wb w;
    bool sent = false;

    if (!e->cfg.recon || !e->cfg.bulk || !c->recon_ok || recon_set_size(e->set) > MSG_BULK_MAX ||
        catching_up(e, c, now))
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

/* bulk_on_msg serves a peer's RECON_BULK. */
static void
bulk_on_msg(struct syncer *e, struct sconn *c, const uint8_t *msg, size_t len, uint64_t now)
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
    ks = src_get(e, key, false, now);
    gs = src_get(e, c->group, true, now);
    last = src_last(ks, gs, offsetof(struct ssrc, last_bulk_ms));
    if (!c->recon_ok || c->bulk_on || !joined(e, c) ||
        (last != 0 && now - last < SYNCER_BULK_GAP_MS)) {
        e->st.recon_limited++;
        return;
    }
    src_set(ks, gs, offsetof(struct ssrc, last_bulk_ms), now);
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
    c->have_waiting = false;
    c->have_max = SYNCER_BULK_FIRST;
    for (uint32_t i = 0; i < b.n; i++)
        if (!e->host.has(e->host.ctx, b.ids[i]))
            memcpy(lack[nlack++], b.ids[i], 32);
    syncer_logf(e, 3, "bulk catch-up %08x of %s: it holds %u id(s), we lack %zu", (unsigned)b.sid,
                syncer_short(key, who), (unsigned)b.n, nlack);
    if (nlack > 0) {
        idq_add(e, &c->want, (const uint8_t(*)[32])lack, nlack, SYNCER_WANT_BACKLOG_MAX);
        want_pump(e, c, now);
    }
    env_free(e->env, lack);
    bulk_pump(e, c, now);
}

/* have_on_msg: a chunk of ids our RECON_BULK's peer holds and we lack: take the ones we
 * still lack (RECON_TAKE, always answered, even empty). */
static void
have_on_msg(struct syncer *e, struct sconn *c, const struct msg_have *h, uint64_t now)
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

/* ---------------------------------------------------------------- known peers */

static void
known_feed(struct syncer *e, uint64_t now)
{
    uint64_t now_s = env_wall_s(e->env);
    size_t used = 0;

    for (size_t i = 0; i < e->nboot; i++)
        (void)gossip_add_known(e->g, e->boot[i].key, e->boot[i].addr, now);
    for (size_t i = 0; i < e->nsaved && used < SYNCER_PEERS_LOAD_MAX; i++) {
        if (e->saved[i].seen_s + SYNCER_PEER_MAX_AGE_S < now_s)
            continue;
        if (gossip_add_known(e->g, e->saved[i].key, e->saved[i].addr, now) == 0)
            used++;
    }
}

/* known_upsert remembers that key was seen at addr at seen_s in the saved list (most
 * recently seen first, at most SYNCER_PEERS_LOAD_MAX: the oldest goes). */
static void
known_upsert(struct syncer *e, const uint8_t key[32], const char *addr, uint64_t seen_s)
{
    size_t i;
    struct known k;

    for (i = 0; i < e->nsaved && memcmp(e->saved[i].key, key, 32) != 0; i++)
        ;
    if (i == e->nsaved) {
        if (e->nsaved < SYNCER_PEERS_LOAD_MAX && e->nsaved == e->csaved) {
            size_t cap = e->csaved ? e->csaved * 2 : 16;
            struct known *v;
            if (cap > SYNCER_PEERS_LOAD_MAX)
                cap = SYNCER_PEERS_LOAD_MAX;
            if ((v = env_realloc(e->env, e->saved, cap * sizeof(*v))) == NULL)
                return;
            e->saved = v;
            e->csaved = cap;
        }
        if (e->nsaved < e->csaved)
            e->nsaved++;
        i = e->nsaved - 1; /* a new entry, or the oldest one replaced */
    }
    memcpy(k.key, key, 32);
    k.seen_s = seen_s;
    k.value = i < e->nsaved && memcmp(e->saved[i].key, key, 32) == 0 ? e->saved[i].value : 0;
    snprintf(k.addr, sizeof(k.addr), "%s", addr);
    memmove(&e->saved[1], &e->saved[0], i * sizeof(k)); /* to the front */
    e->saved[0] = k;
}

/* peer_put persists that key was seen at addr now. */
static void
peer_put(struct syncer *e, const uint8_t key[32], const char *addr)
{
    size_t len = strlen(addr);
    struct syncer_action *a;
    uint8_t *val;

    if (len < 3 || len > GOSSIP_ADDR_MAX || strcmp(addr + len - 2, ":0") == 0)
        return; /* it accepts no connections: nothing to dial later */
    known_upsert(e, key, addr, env_wall_s(e->env));
    if (len == 0 || len > GOSSIP_ADDR_MAX || (val = env_alloc(e->env, 8 + len)) == NULL)
        return;
    be64enc(val, env_wall_s(e->env));
    memcpy(val + 8, addr, len);
    if ((a = syncer_act_push(e, SYNCER_ACT_PUT)) == NULL) {
        env_free(e->env, val);
        return;
    }
    a->table = SYNCER_TABLE_PEERS;
    memcpy(a->key, key, 32);
    a->data = val;
    a->len = 8 + len;
}

int
syncer_add_bootstrap(struct syncer *e, const uint8_t key[static 32], const char *addr,
                     uint64_t now_ms)
{
    int rc;

    if (addr == NULL || strlen(addr) > GOSSIP_ADDR_MAX)
        return PULL_ERR_INVAL;
    if (e->nboot == SYNCER_BOOTSTRAP_MAX)
        return PULL_ERR_QUOTA;
    enter(e);
    rc = gossip_add_known(e->g, key, addr, now_ms);
    if (rc == 0) {
        memcpy(e->boot[e->nboot].key, key, 32);
        snprintf(e->boot[e->nboot].addr, sizeof(e->boot[0].addr), "%s", addr);
        e->nboot++;
    }
    leave_call(e, now_ms);
    return rc;
}

/* The order in which saved peers are fed: the most valuable first, then the most recently
 * seen, then by key (the same order whatever order the rows came in). */
static int
cmp_rank(const void *a, const void *b)
{
    const struct known *x = a, *y = b;

    if (x->value != y->value)
        return x->value < y->value ? 1 : -1;
    if (x->seen_s != y->seen_s)
        return x->seen_s < y->seen_s ? 1 : -1;
    return memcmp(x->key, y->key, 32);
}

void
syncer_load_peer(struct syncer *e, const uint8_t key[static 32], const uint8_t *val, size_t len,
                 uint32_t value)
{
    struct known *k;

    if (len <= 8 || len > 8 + GOSSIP_ADDR_MAX || memcmp(key, e->self, 32) == 0)
        return;
    if (e->nsaved == e->csaved) {
        size_t cap = e->csaved ? e->csaved * 2 : 64;
        struct known *v = env_realloc(e->env, e->saved, cap * sizeof(*v));
        if (v == NULL)
            return;
        e->saved = v;
        e->csaved = cap;
    }
    k = &e->saved[e->nsaved++];
    memcpy(k->key, key, 32);
    k->seen_s = be64dec(val);
    k->value = value;
    memcpy(k->addr, val + 8, len - 8);
    k->addr[len - 8] = '\0';
}

void
syncer_start(struct syncer *e, uint64_t now_ms)
{
    enter(e);
    if (e->nsaved > 1)
        qsort(e->saved, e->nsaved, sizeof(*e->saved), cmp_rank);
    if (e->nsaved > SYNCER_PEERS_LOAD_MAX) {
        struct known *v;
        e->nsaved = SYNCER_PEERS_LOAD_MAX; /* only these are ever fed */
        if ((v = env_realloc(e->env, e->saved, e->nsaved * sizeof(*v))) != NULL) {
            e->saved = v;
            e->csaved = e->nsaved;
        }
    }
    known_feed(e, now_ms);
    if (e->nsaved > 0)
        syncer_logf(e, 2, "%zu known peer(s) loaded", e->nsaved);
    leave_call(e, now_ms);
}

int
syncer_set_addr(struct syncer *e, const char *addr)
{
    return gossip_set_addr(e->g, addr);
}

void
syncer_set_dialable(struct syncer *e, bool dialable)
{
    gossip_set_dialable(e->g, dialable);
}

int
syncer_add_known(struct syncer *e, const uint8_t key[static 32], const char *addr, uint64_t now_ms)
{
    int rc;

    enter(e);
    rc = gossip_add_known(e->g, key, addr, now_ms);
    leave_call(e, now_ms);
    return rc;
}

/* ---------------------------------------------------------------- entry points */

void
syncer_on_connected(struct syncer *e, const uint8_t key[static 32], bool inbound, const char *addr,
                    uint64_t features, uint64_t now_ms)
{
    struct sconn *c;
    struct syncer_action *a;
    bool fresh = syncer_conn(e, key) == NULL;

    enter(e);
    if (fresh) {
        /* A connection the engine can't track must not reach gossip: it would be used while
         * every message from the peer was ignored (net answers the pings below us, so it
         * would never idle out). Room for its DISCONNECT first; without even that, nothing
         * is told to gossip and the engine ignores the connection. */
        if (!act_room(e))
            goto out;
        if ((c = conn_new(e, key)) == NULL) {
            if ((a = syncer_act_push(e, SYNCER_ACT_DISCONNECT)) != NULL) {
                memcpy(a->peer, key, 32);
                a->bye = MSG_BYE_NORMAL;
                snprintf(a->text, sizeof(a->text), "out of memory");
            }
            gossip_on_disconnected(e->g, key, now_ms); /* to gossip: a dial that failed */
            goto out;
        }
        c->recon_ok = (features & MSG_FEAT_RECON) != 0;
        gossip_addr_group(addr, c->group);
    }
    if (fresh && addr != NULL && addr[0] != '\0')
        peer_put(e, key, addr);
    gossip_on_connected(e->g, key, addr, inbound, now_ms);
    drain_gossip(e);
    if (fresh && e->cfg.mail && syncer_conn(e, key) != NULL)
        syncer_mail_on_connected(e, key);
    if (fresh && !inbound && (c = syncer_conn(e, key)) != NULL && !bulk_send(e, c, now_ms))
        recon_begin(e, c, 0, now_ms);
out:
    leave_call(e, now_ms);
}

void
syncer_on_disconnected(struct syncer *e, const uint8_t key[static 32], uint64_t now_ms)
{
    enter(e);
    conn_free(e, key);
    gossip_on_disconnected(e->g, key, now_ms);
    leave_call(e, now_ms);
}

static int
on_recon_msg(struct syncer *e, struct sconn *c, uint32_t type, const uint8_t *msg, size_t len,
             uint64_t now)
{
    uint8_t key[32];
    int rc;

    memcpy(key, c->key, 32);
    if (type == MSG_RECON_REQ) {
        struct recon_msg m;
        if (recon_msg_decode(msg, len, &m) == 0) {
            struct ssrc *ks = src_get(e, key, false, now), *gs = src_get(e, c->group, true, now);
            size_t off = m.salted ? offsetof(struct ssrc, last_salted_ms)
                                  : offsetof(struct ssrc, last_req_ms);
            uint64_t gap = m.salted ? SYNCER_REQ_SALTED_GAP_MS : SYNCER_REQ_GAP_MS;
            uint64_t last = src_last(ks, gs, off);
            if (gs != NULL && now - gs->window_ms >= SYNCER_SERVE_WINDOW_MS) {
                gs->window_ms = now;
                gs->served = 0;
            }
            if (!joined(e, c)) {
                e->st.recon_limited++;
                send_recon_err(e, key, m.sid, PULL_ERR_PERM, "not a neighbour");
                return 0;
            }
            if ((last != 0 && now - last < gap) ||
                (gs != NULL && gs->served >= SYNCER_SERVE_BUDGET)) {
                e->st.recon_limited++;
                send_recon_err(e, key, m.sid, PULL_ERR_AGAIN, "too many requests");
                return 0;
            }
            if (catching_up(e, c, now)) { /* it tries again later (RECON_EV_FAILED, AGAIN) */
                e->st.recon_limited++;
                send_recon_err(e, key, m.sid, PULL_ERR_AGAIN, "busy catching up");
                return 0;
            }
            src_set(ks, gs, off, now);
        }
    }
    if ((rc = recon_on_msg(c->r, now, msg, len)) < 0 && rc != PULL_ERR_NOMEM) {
        /* (out of memory is our shortage, not the peer's fault: its session failed) */
        syncer_bad(e, key, "too many reconciliation errors");
        if ((c = syncer_conn(e, key)) == NULL)
            return rc;
    }
    recon_drain(e, c, now);
    return rc < 0 ? rc : 0;
}

int
syncer_on_message(struct syncer *e, const uint8_t key[static 32], const uint8_t *msg, size_t len,
                  uint64_t now_ms)
{
    struct sconn *c = syncer_conn(e, key);
    uint32_t type;
    int rc = 0;

    if (c == NULL)
        return 0; /* closed by us: what was still in flight */
    enter(e);
    if ((rc = msg_peek_type(msg, len, &type)) != 0) {
        e->st.frames_bad++;
        drop(e, key, "malformed message", now_ms);
    } else if (gossip_handles(type)) {
        if ((rc = gossip_on_message(e->g, key, msg, len, now_ms)) != 0 && rc != PULL_ERR_NOMEM)
            e->st.frames_bad++;
        drain_gossip(e);
        if ((c = syncer_conn(e, key)) != NULL && (c->want.n > 0 || c->inflight > 0 || c->again))
            want_after(e, c, now_ms);
        if ((c = syncer_conn(e, key)) != NULL && c->bulk_on)
            bulk_pump(e, c, now_ms);
    } else if (type == MSG_RECON_BULK) {
        bulk_on_msg(e, c, msg, len, now_ms);
    } else if (type == MSG_RECON_HAVE || type == MSG_RECON_TAKE) {
        struct msg_have h;
        if ((rc = msg_have_decode(msg, len, &h)) != 0)
            syncer_bad(e, key, "too many reconciliation errors");
        else if (type == MSG_RECON_HAVE)
            have_on_msg(e, c, &h, now_ms);
        else
            take_on_msg(e, c, &h, now_ms);
    } else if (type >= MSG_RECON_REQ && type <= MSG_RECON_ERR) {
        rc = on_recon_msg(e, c, type, msg, len, now_ms);
    } else if (type == MSG_MAIL || type == MSG_MAIL_IHAVE) {
        if (!e->cfg.mail)
            e->st.msgs_unknown++;
        else if ((rc = syncer_mail_on_msg(e, key, type, msg, len, now_ms)) < 0)
            syncer_bad(e, key, "too many bad mail messages");
    } else {
        e->st.msgs_unknown++;
    }
    leave_call(e, now_ms);
    return rc;
}

void
syncer_on_flushed(struct syncer *e, const uint8_t key[static 32], size_t len, bool counted,
                  uint64_t now_ms)
{
    struct sconn *c = syncer_conn(e, key);

    enter(e);
    if (c != NULL)
        c->queued = c->queued > len ? c->queued - len : 0;
    if (counted && len > 0)
        gossip_on_flushed(e->g, key, len, now_ms);
    drain_gossip(e);
    if ((c = syncer_conn(e, key)) != NULL) {
        recon_drain(e, c, now_ms);
        if ((c = syncer_conn(e, key)) != NULL)
            push_flush(e, c, now_ms);
        if ((c = syncer_conn(e, key)) != NULL)
            bulk_pump(e, c, now_ms);
    }
    leave_call(e, now_ms);
}

void
syncer_on_stored(struct syncer *e, const uint8_t id[static 32], const uint8_t *replaced_id,
                 const uint8_t *env, size_t len, bool local)
{
    (void)env, (void)len;
    if (!e->set_broken && replaced_id != NULL && recon_set_remove(e->set, replaced_id) != 0)
        e->set_broken = true;
    if (!e->set_broken && recon_set_add(e->set, id) != 0)
        e->set_broken = true;
    if (!local)
        return;
    if (e->npub == e->cpub) {
        size_t cap = e->cpub ? e->cpub * 2 : 64;
        uint8_t(*v)[32] = env_realloc(e->env, e->pub, cap * 32);
        if (v == NULL)
            return; /* not published now: peers get it by reconciliation */
        e->pub = v;
        e->cpub = cap;
    }
    memcpy(e->pub[e->npub++], id, 32);
}

void
syncer_on_removed(struct syncer *e, const uint8_t id[static 32])
{
    if (!e->set_broken && recon_set_remove(e->set, id) != 0)
        e->set_broken = true;
}

static void
publish_pending(struct syncer *e, uint64_t now)
{
    size_t len;

    for (size_t i = 0; i < e->npub; i++) {
        if (e->host.fetch(e->host.ctx, e->pub[i], e->fetchbuf, sizeof(e->fetchbuf), &len) == 0)
            (void)gossip_publish(e->g, e->fetchbuf, len, e->pub[i], now);
    }
    e->npub = 0;
}

void
syncer_verdict(struct syncer *e, const uint8_t *env, size_t len, const uint8_t id[static 32],
               enum gossip_verdict v, uint64_t now_ms)
{
    enter(e);
    gossip_verdict(e->g, env, len, id, v, now_ms);
    leave_call(e, now_ms);
}

void
syncer_leave(struct syncer *e, uint64_t now_ms)
{
    size_t count, saved = 0;
    struct gossip_peer_info pi;

    enter(e);
    count = gossip_peer_count(e->g);
    for (size_t i = 0; i < count && saved < SYNCER_PEERS_SAVE_MAX; i++) {
        if (gossip_peer_at(e->g, i, &pi) != 0 || pi.addr[0] == '\0' ||
            pi.state == GOSSIP_PEER_BANNED)
            continue;
        peer_put(e, pi.key, pi.addr);
        saved++;
    }
    gossip_leave(e->g, now_ms);
    drain_gossip(e);
    while (e->nconns > 0)
        conn_free(e, e->conns[0]->key);
    leave_call(e, now_ms);
}

/* ---------------------------------------------------------------- timers */

uint64_t
syncer_next_deadline(const struct syncer *e)
{
    uint64_t d = gossip_next_deadline(e->g), now = env_now_ms(e->env);

    if (e->next_periodic_ms < d)
        d = e->next_periodic_ms;
    if (e->cfg.mail && e->next_sweep_ms < d)
        d = e->next_sweep_ms;
    for (size_t i = 0; i < e->nconns; i++) {
        const struct sconn *c = e->conns[i];
        uint64_t r = recon_next_deadline(c->r);
        if (r < d)
            d = r;
        if (c->retry_at != 0 && c->retry_at < d)
            d = c->retry_at;
        if ((c->want.n > 0 || c->inflight > 0) && c->want_progress_ms + SYNCER_WANT_STALL_MS < d)
            d = c->want_progress_ms + SYNCER_WANT_STALL_MS;
        if (c->bulk_on && c->have_waiting && c->bulk_chunk_ms + SYNCER_HAVE_STALL_MS < d)
            d = c->bulk_chunk_ms + SYNCER_HAVE_STALL_MS; /* a peer that does not answer */
    }
    if (e->set_broken && now + 1000 < d)
        d = now + 1000;
    if (e->rejoin_at != 0 && e->rejoin_at < d)
        d = e->rejoin_at;
    if (e->npub > 0)
        d = now;
    return d;
}

void
syncer_on_timeout(struct syncer *e, uint64_t now)
{
    uint8_t(*keys)[32] = NULL;
    size_t nk = 0;

    enter(e);
    if (e->set_broken)
        rebuild_set(e);
    gossip_on_timeout(e->g, now);
    drain_gossip(e);
    /* connections may vanish while we act: work on keys */
    if (e->nconns > 0 && (keys = env_alloc(e->env, e->nconns * 32)) != NULL) {
        for (size_t i = 0; i < e->nconns; i++)
            memcpy(keys[nk++], e->conns[i]->key, 32);
    }
    for (size_t i = 0; i < nk; i++) {
        struct sconn *c = syncer_conn(e, keys[i]);
        if (c == NULL)
            continue;
        if (recon_next_deadline(c->r) <= now)
            recon_on_timeout(c->r, now);
        if (c->want.n > 0 || c->inflight > 0 || c->again) {
            want_after(e, c, now);
            if ((c = syncer_conn(e, keys[i])) == NULL)
                continue;
        }
        if (c->retry_at != 0 && c->retry_at <= now) {
            unsigned flags = c->retry_salted ? RECON_SALTED : 0;
            bool bulk = !c->retry_salted && c->bulk_sent_ms == 0;
            c->retry_at = 0;
            c->retry_salted = false;
            if (!bulk || !bulk_send(e, c, now))
                recon_begin(e, c, flags, now);
            if ((c = syncer_conn(e, keys[i])) == NULL)
                continue;
        }
        recon_drain(e, c, now);
        if ((c = syncer_conn(e, keys[i])) != NULL)
            push_flush(e, c, now);
        if ((c = syncer_conn(e, keys[i])) != NULL)
            bulk_pump(e, c, now);
    }
    env_free(e->env, keys);
    /* HyParView forgets peers that failed; a node whose every peer went away (a partition,
     * a lost uplink) would stay alone. Feed it the bootstrap lines and persisted peers
     * again, with a growing gap, until someone answers. */
    if (gossip_active_count(e->g) > 0) {
        e->rejoin_at = 0;
        e->rejoin_gap = 0;
    } else if (e->rejoin_at == 0) {
        e->rejoin_gap = e->rejoin_gap == 0 ? SYNCER_REJOIN_MIN_MS : e->rejoin_gap;
        e->rejoin_at = now + e->rejoin_gap;
    } else if (now >= e->rejoin_at) {
        syncer_logf(e, 3, "no active peer: trying the known peers again");
        known_feed(e, now);
        e->rejoin_gap =
            e->rejoin_gap * 2 > SYNCER_REJOIN_MAX_MS ? SYNCER_REJOIN_MAX_MS : e->rejoin_gap * 2;
        e->rejoin_at = now + e->rejoin_gap;
    }
    if (e->cfg.sync_interval_ms > 0 && now >= e->next_periodic_ms) {
        size_t act = gossip_active_count(e->g);
        struct gossip_peer_info pi;
        struct sconn *c;
        e->next_periodic_ms = now + e->cfg.sync_interval_ms;
        if (act > 0 && gossip_peer_at(e->g, env_uniform(e->env, (uint32_t)act), &pi) == 0 &&
            (c = syncer_conn(e, pi.key)) != NULL)
            recon_begin(e, c, 0, now);
    }
    if (e->cfg.mail && now >= e->next_sweep_ms) {
        syncer_mail_sweep(e);
        e->next_sweep_ms = now + SYNCER_MAIL_SWEEP_MS;
    }
    leave_call(e, now);
}

/* ---------------------------------------------------------------- actions */

bool
syncer_poll_action(struct syncer *e, struct syncer_action *out)
{
    if (e->ahead == e->nacts)
        drain_gossip(e); /* someone called the gossip engine directly */
    if (e->ahead == e->nacts) {
        e->ahead = e->nacts = 0;
        return false;
    }
    *out = e->acts[e->ahead++];
    return true;
}

void
syncer_action_release(struct syncer_action *a)
{
    env_free(a->env, a->data);
    a->data = NULL;
    a->len = 0;
}

/* ---------------------------------------------------------------- lifecycle and views */

void
syncer_config_default(struct syncer_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    gossip_config_default(&cfg->gossip);
    cfg->sync_interval_ms = 30000;
    cfg->recon = true;
    cfg->bulk = true;
    cfg->mail = true;
    mail_quota_default(&cfg->relay);
}

int
syncer_new(const struct pull_env *env, const uint8_t self[static 32], const char *addr,
           const struct syncer_config *cfg, const struct syncer_host *host, struct syncer **out)
{
    struct syncer *e;
    struct gossip_config gc;
    struct recon_set_cfg scfg;
    int rc;

    *out = NULL;
    if (host == NULL || host->offer == NULL || host->has == NULL || host->fetch == NULL ||
        host->each_id == NULL || host->each_key == NULL)
        return PULL_ERR_INVAL;
    if ((e = env_calloc(env, 1, sizeof(*e))) == NULL)
        return PULL_ERR_NOMEM;
    e->env = env;
    e->cfg = *cfg;
    e->host = *host;
    memcpy(e->self, self, 32);
    memset(&scfg, 0, sizeof(scfg));
    scfg.cache_symbols = cfg->recon_cache_symbols ? cfg->recon_cache_symbols : RECON_CACHE_DEFAULT;
    scfg.env = env;
    if ((rc = recon_set_new(&scfg, &e->set)) != 0 ||
        (rc = recon_set_add_all(e->set, host->each_id, host->ctx)) != 0)
        goto fail;
    gc = cfg->gossip;
    gc.offer = cb_offer;
    gc.has = cb_has;
    gc.fetch = cb_fetch;
    gc.ctx = e;
    if ((rc = gossip_new(env, self, addr, &gc, &e->g)) != 0)
        goto fail;
    if (cfg->mail && (rc = syncer_mail_init(e)) != 0)
        goto fail;
    if ((e->src = env_calloc(env, SYNCER_SOURCES_MAX, sizeof(*e->src))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto fail;
    }
    e->next_periodic_ms = env_now_ms(env) + cfg->sync_interval_ms;
    e->next_sweep_ms = env_now_ms(env) + SYNCER_MAIL_SWEEP_MS;
    *out = e;
    return 0;
fail:
    syncer_free(e);
    return rc;
}

void
syncer_free(struct syncer *e)
{
    if (e == NULL)
        return;
    while (e->nconns > 0)
        conn_free(e, e->conns[0]->key);
    for (size_t i = e->ahead; i < e->nacts; i++)
        syncer_action_release(&e->acts[i]);
    syncer_mail_release(e);
    gossip_free(e->g);
    recon_set_free(e->set);
    env_free(e->env, e->conns);
    env_free(e->env, e->acts);
    env_free(e->env, e->pub);
    env_free(e->env, e->saved);
    env_free(e->env, e->src);
    env_free(e->env, e);
}

size_t
syncer_peer_count(const struct syncer *e)
{
    return gossip_peer_count(e->g);
}

int
syncer_peer_at(const struct syncer *e, size_t i, struct gossip_peer_info *out)
{
    return gossip_peer_at(e->g, i, out);
}

size_t
syncer_active_count(const struct syncer *e)
{
    return gossip_active_count(e->g);
}

uint64_t
syncer_set_size(const struct syncer *e)
{
    return recon_set_size(e->set);
}

void
syncer_get_stats(const struct syncer *e, struct syncer_stats *out)
{
    *out = e->st;
    out->mail_held = e->cfg.mail ? syncer_mail_count(e) : 0;
}

struct gossip *
syncer_gossip(struct syncer *e)
{
    return e->g;
}
