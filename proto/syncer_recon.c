/*
 * syncer_recon: the engine's reconciliation sessions (syncer.h is the manual, "anti-entropy"
 * and "strangers"): one recon engine per connection, driven by its events
 * (syncer_recon_drain); when a session may start (syncer_recon_begin, syncer_catching_up);
 * how a peer's RECON_REQ is limited and served (syncer_recon_on_msg); the recon set rebuilt
 * after an update failed. The memory of what each key and address group asked lately
 * (syncer_src_get and friends) is here too: bulk catch-up (syncer_bulk.c) is limited with it.
 */
#include "proto/syncer_int.h"

#include <stddef.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "proto/msg.h"

/* ---------------------------------------------------------------- sources */

/* syncer_src_get finds what a key (group false) or an address group remembers asking, making room
 * for it (the least recently used goes); NULL for an unknown group. */
struct ssrc *
syncer_src_get(struct syncer *e, const uint8_t *id, bool group, uint64_t now)
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

/* syncer_src_last returns the latest of a field over c's key and group (0: never). */
uint64_t
syncer_src_last(struct ssrc *k, struct ssrc *g, size_t off)
{
    uint64_t a = k != NULL ? *(uint64_t *)((char *)k + off) : 0;
    uint64_t b = g != NULL ? *(uint64_t *)((char *)g + off) : 0;

    return a > b ? a : b;
}

void
syncer_src_set(struct ssrc *k, struct ssrc *g, size_t off, uint64_t now)
{
    if (k != NULL)
        *(uint64_t *)((char *)k + off) = now;
    if (g != NULL)
        *(uint64_t *)((char *)g + off) = now;
}

/* syncer_joined: c's peer is in our active view (what strangers must reach before they are
 * served anything costly). */
bool
syncer_joined(const struct syncer *e, const struct sconn *c)
{
    return gossip_is_active(e->g, c->key);
}

/* ---------------------------------------------------------------- reconciliation */

void
syncer_recon_drain(struct syncer *e, struct sconn *c, uint64_t now)
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
                struct ssrc *gs = syncer_src_get(e, c->group, true, now);
                if (gs != NULL)
                    gs->served += ev.len;
            }
            (void)syncer_send(e, key, ev.msg, ev.len, false);
            break;
        case RECON_EV_WANT:
            syncer_idq_add(e, &c->want, ev.ids, ev.n_ids, SYNCER_WANT_BACKLOG_MAX);
            syncer_want_pump(e, c, now);
            break;
        case RECON_EV_PUSH:
            syncer_idq_add(e, &c->push, ev.ids, ev.n_ids, SYNCER_PUSH_BACKLOG_MAX);
            syncer_push_flush(e, c, now);
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

/* syncer_catching_up: records this node asked for are coming from a peer other than except's (a
 * bulk list it sent, ids it wants, a session it started). A second catch-up meanwhile, ours
 * or a peer's, would bring the same records again: it waits. */
bool
syncer_catching_up(const struct syncer *e, const struct sconn *except, uint64_t now)
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

void
syncer_recon_begin(struct syncer *e, struct sconn *c, unsigned flags, uint64_t now)
{
    if (!e->cfg.recon || !c->recon_ok || recon_active(c->r, RECON_INITIATOR) ||
        syncer_bulk_busy(c, now))
        return;
    if (syncer_catching_up(e, c, now)) {
        if (c->retry_at == 0) /* once the other catch-up is over */
            c->retry_at = now + SYNCER_CATCHUP_AGAIN_MS;
        return;
    }
    if (recon_start(c->r, now, flags) == 0)
        syncer_recon_drain(e, c, now);
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

/* syncer_rebuild_set makes a new recon set from the store after an update failed. */
void
syncer_rebuild_set(struct syncer *e)
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
        if (syncer_conn_recon_new(e, e->conns[i]) != 0) {
            uint8_t k[32];
            memcpy(k, e->conns[i]->key, 32);
            syncer_drop(e, k, "out of memory", env_now_ms(e->env));
            continue;
        }
        i++;
    }
    syncer_logf(e, 2, "reconciliation set rebuilt (%llu ids)",
                (unsigned long long)recon_set_size(set));
}

int
syncer_recon_on_msg(struct syncer *e, struct sconn *c, uint32_t type, const uint8_t *msg,
                    size_t len, uint64_t now)
{
    uint8_t key[32];
    int rc;

    memcpy(key, c->key, 32);
    if (type == MSG_RECON_REQ) {
        struct recon_msg m;
        if (recon_msg_decode(msg, len, &m) == 0) {
            struct ssrc *ks = syncer_src_get(e, key, false, now),
                        *gs = syncer_src_get(e, c->group, true, now);
            size_t off = m.salted ? offsetof(struct ssrc, last_salted_ms)
                                  : offsetof(struct ssrc, last_req_ms);
            uint64_t gap = m.salted ? SYNCER_REQ_SALTED_GAP_MS : SYNCER_REQ_GAP_MS;
            uint64_t last = syncer_src_last(ks, gs, off);
            if (gs != NULL && now - gs->window_ms >= SYNCER_SERVE_WINDOW_MS) {
                gs->window_ms = now;
                gs->served = 0;
            }
            if (!syncer_joined(e, c)) {
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
            if (syncer_catching_up(e, c, now)) { /* it tries again later (RECON_EV_FAILED, AGAIN) */
                e->st.recon_limited++;
                send_recon_err(e, key, m.sid, PULL_ERR_AGAIN, "busy catching up");
                return 0;
            }
            syncer_src_set(ks, gs, off, now);
        }
    }
    if ((rc = recon_on_msg(c->r, now, msg, len)) < 0 && rc != PULL_ERR_NOMEM) {
        /* (out of memory is our shortage, not the peer's fault: its session failed) */
        syncer_bad(e, key, "too many reconciliation errors");
        if ((c = syncer_conn(e, key)) == NULL)
            return rc;
    }
    syncer_recon_drain(e, c, now);
    return rc < 0 ? rc : 0;
}
