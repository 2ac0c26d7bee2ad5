/*
 * syncer: entry points, connections, gossip, the queues of ids to push and to want, timers
 * and lifecycle (syncer.h is the manual; reconciliation is in syncer_recon.c, bulk catch-up
 * in syncer_bulk.c, the remembered peers in syncer_peers.c, mail in syncer_mail.c; what
 * they share is in syncer_int.h).
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

void
syncer_enter(struct syncer *e)
{
    e->depth++;
}

static void publish_pending(struct syncer *e, uint64_t now);

/* syncer_leave_call ends an entry point: the outermost one publishes local records stored
 * meanwhile and collects gossip's actions. */
void
syncer_leave_call(struct syncer *e, uint64_t now)
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

void
syncer_idq_add(const struct syncer *e, struct idq *q, const uint8_t (*ids)[32], size_t n,
               size_t max)
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
            c->inflight--; /* most likely one we asked for (syncer_want_pump runs after the call) */
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

int
syncer_conn_recon_new(struct syncer *e, struct sconn *c)
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
    if (syncer_conn_recon_new(e, c) != 0) {
        env_free(e->env, c);
        return NULL;
    }
    e->conns[e->nconns++] = c;
    return c;
}

/* syncer_drop ends a connection for misbehaviour outside gossip's scoring. */
void
syncer_drop(struct syncer *e, const uint8_t key[32], const char *why, uint64_t now)
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
        syncer_drop(e, key, why, env_now_ms(e->env));
}

/* ---------------------------------------------------------------- wants and pushes */

/* syncer_push_flush hands c's pending pushes (what a reconciliation found its peer lacks) to
 * gossip as far as the peer's serve queue takes them. */
void
syncer_push_flush(struct syncer *e, struct sconn *c, uint64_t now)
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

/* syncer_want_pump asks c's peer for more of the wanted ids while few are in flight. */
void
syncer_want_pump(struct syncer *e, struct sconn *c, uint64_t now)
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
    syncer_want_pump(e, c, now);
    if (c->again && c->want.n == 0 && c->inflight == 0 && c->retry_at == 0) {
        c->again = false;
        c->retry_at = now + SYNCER_CATCHUP_AGAIN_MS;
    }
}

/* ---------------------------------------------------------------- entry points */

void
syncer_on_connected(struct syncer *e, const uint8_t key[static 32], bool inbound, const char *addr,
                    uint64_t features, uint64_t now_ms)
{
    struct sconn *c;
    struct syncer_action *a;
    bool fresh = syncer_conn(e, key) == NULL;

    syncer_enter(e);
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
        syncer_peer_put(e, key, addr);
    gossip_on_connected(e->g, key, addr, inbound, now_ms);
    drain_gossip(e);
    if (fresh && e->cfg.mail && syncer_conn(e, key) != NULL)
        syncer_mail_on_connected(e, key);
    if (fresh && !inbound && (c = syncer_conn(e, key)) != NULL && !syncer_bulk_send(e, c, now_ms))
        syncer_recon_begin(e, c, 0, now_ms);
out:
    syncer_leave_call(e, now_ms);
}

void
syncer_on_disconnected(struct syncer *e, const uint8_t key[static 32], uint64_t now_ms)
{
    syncer_enter(e);
    conn_free(e, key);
    gossip_on_disconnected(e->g, key, now_ms);
    syncer_leave_call(e, now_ms);
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
    syncer_enter(e);
    if ((rc = msg_peek_type(msg, len, &type)) != 0) {
        e->st.frames_bad++;
        syncer_drop(e, key, "malformed message", now_ms);
    } else if (gossip_handles(type)) {
        if ((rc = gossip_on_message(e->g, key, msg, len, now_ms)) != 0 && rc != PULL_ERR_NOMEM)
            e->st.frames_bad++;
        drain_gossip(e);
        if ((c = syncer_conn(e, key)) != NULL && (c->want.n > 0 || c->inflight > 0 || c->again))
            want_after(e, c, now_ms);
        if ((c = syncer_conn(e, key)) != NULL && c->bulk_on)
            syncer_bulk_pump(e, c, now_ms);
    } else if (type == MSG_RECON_BULK) {
        syncer_bulk_on_msg(e, c, msg, len, now_ms);
    } else if (type == MSG_RECON_HAVE || type == MSG_RECON_TAKE) {
        struct msg_have h;
        if ((rc = msg_have_decode(msg, len, &h)) != 0)
            syncer_bad(e, key, "too many reconciliation errors");
        else if (type == MSG_RECON_HAVE)
            syncer_bulk_on_have(e, c, &h, now_ms);
        else
            syncer_bulk_on_take(e, c, &h, now_ms);
    } else if (type >= MSG_RECON_REQ && type <= MSG_RECON_ERR) {
        rc = syncer_recon_on_msg(e, c, type, msg, len, now_ms);
    } else if (type == MSG_MAIL || type == MSG_MAIL_IHAVE) {
        if (!e->cfg.mail)
            e->st.msgs_unknown++;
        else if ((rc = syncer_mail_on_msg(e, key, type, msg, len, now_ms)) < 0)
            syncer_bad(e, key, "too many bad mail messages");
    } else {
        e->st.msgs_unknown++;
    }
    syncer_leave_call(e, now_ms);
    return rc;
}

void
syncer_on_flushed(struct syncer *e, const uint8_t key[static 32], size_t len, bool counted,
                  uint64_t now_ms)
{
    struct sconn *c = syncer_conn(e, key);

    syncer_enter(e);
    if (c != NULL)
        c->queued = c->queued > len ? c->queued - len : 0;
    if (counted && len > 0)
        gossip_on_flushed(e->g, key, len, now_ms);
    drain_gossip(e);
    if ((c = syncer_conn(e, key)) != NULL) {
        syncer_recon_drain(e, c, now_ms);
        if ((c = syncer_conn(e, key)) != NULL)
            syncer_push_flush(e, c, now_ms);
        if ((c = syncer_conn(e, key)) != NULL)
            syncer_bulk_pump(e, c, now_ms);
    }
    syncer_leave_call(e, now_ms);
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
    syncer_enter(e);
    gossip_verdict(e->g, env, len, id, v, now_ms);
    syncer_leave_call(e, now_ms);
}

void
syncer_leave(struct syncer *e, uint64_t now_ms)
{
    size_t count, saved = 0;
    struct gossip_peer_info pi;

    syncer_enter(e);
    count = gossip_peer_count(e->g);
    for (size_t i = 0; i < count && saved < SYNCER_PEERS_SAVE_MAX; i++) {
        if (gossip_peer_at(e->g, i, &pi) != 0 || pi.addr[0] == '\0' ||
            pi.state == GOSSIP_PEER_BANNED)
            continue;
        syncer_peer_put(e, pi.key, pi.addr);
        saved++;
    }
    gossip_leave(e->g, now_ms);
    drain_gossip(e);
    while (e->nconns > 0)
        conn_free(e, e->conns[0]->key);
    syncer_leave_call(e, now_ms);
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
        if (c->bulk_on && syncer_bulk_deadline(c) < d)
            d = syncer_bulk_deadline(c); /* a peer that does not answer */
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

    syncer_enter(e);
    if (e->set_broken)
        syncer_rebuild_set(e);
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
            if (!bulk || !syncer_bulk_send(e, c, now))
                syncer_recon_begin(e, c, flags, now);
            if ((c = syncer_conn(e, keys[i])) == NULL)
                continue;
        }
        syncer_recon_drain(e, c, now);
        if ((c = syncer_conn(e, keys[i])) != NULL)
            syncer_push_flush(e, c, now);
        if ((c = syncer_conn(e, keys[i])) != NULL)
            syncer_bulk_pump(e, c, now);
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
        syncer_known_feed(e, now);
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
            syncer_recon_begin(e, c, 0, now);
    }
    if (e->cfg.mail && now >= e->next_sweep_ms) {
        syncer_mail_sweep(e);
        e->next_sweep_ms = now + SYNCER_MAIL_SWEEP_MS;
    }
    syncer_leave_call(e, now);
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
