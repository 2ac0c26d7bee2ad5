/*
 * sync: gossip + reconciliation over net's connections (sync.h is the manual).
 */
#include "daemon/sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "daemon/net.h"
#include "lib/err.h"
#include "lib/log.h"
#include "proto/gossip.h"
#include "proto/msg.h"
#include "proto/recon.h"

/* stop polling reconciliation symbols above this many queued bytes */
#define RECON_QUEUE_HIGH (512u * 1024u)
/* ids waiting for gossip_push / gossip_want, per peer */
#define PUSH_BACKLOG_MAX 200000
#define WANT_BACKLOG_MAX 1000000
/* ids asked for and not answered yet: below the peer's serve queue (gossip serve_max,
 * 1024), which drops what does not fit */
#define WANT_INFLIGHT 768
/* no answer for this long: ask for more anyway */
#define WANT_STALL_MS 2000
/* a session that wanted ids is followed by another once they arrived, until one wants
 * nothing */
#define CATCHUP_AGAIN_MS 500
/* at most one RECON_REQ per peer per REQ_GAP_MIN_MS; salted ones cost a pass: rarer */
#define REQ_GAP_MIN_MS 1000
#define REQ_SALTED_GAP_MS 60000
/* protocol errors of recon/dyads before a drop */
#define BAD_MAX 8
#define CONNECT_GRACE_MS 3000
/* alone: feed the known peers to gossip again after REJOIN_MIN_MS, doubling up to
 * REJOIN_MAX_MS while nobody answers */
#define REJOIN_MIN_MS 1000
#define REJOIN_MAX_MS 15000
/* bulk catch-up (RECON_BULK): at most one served per connection per BULK_GAP_MS; the store
 * is read BULK_CHUNK ids at a time, when fewer than BULK_LOW wait to be pushed */
#define BULK_GAP_MS 60000
#define BULK_CHUNK 1024
#define BULK_LOW 256
/* after sending a RECON_BULK, no reconciliation with that peer until its records have
 * stopped coming for this long (a session would see the whole unfinished difference) */
#define BULK_QUIET_MS 5000

/* A FIFO of ids (pending pushes or wants). */
struct idq {
    uint8_t (*v)[32];
    size_t off, n, cap; /* live ids are v[off .. off + n) */
};

struct sconn {
    struct sconn *next;
    uint8_t key[32];
    struct recon *r;
    bool recon_ok; /* the peer speaks reconciliation */
    bool retry_salted;
    uint64_t retry_at;
    uint64_t last_req_ms, last_salted_ms;
    uint32_t bad;
    struct idq push; /* ids to gossip_push (serve queue full) */
    struct idq want; /* ids to gossip_want, paced */
    size_t inflight; /* wanted ids not answered yet (approximately: records from the peer) */
    uint64_t want_progress_ms;
    bool again;           /* the last session wanted ids: reconcile again once they are in */
    uint64_t last_rec_ms; /* the last record offered by the peer */
    /* serving the peer's RECON_BULK: its ids (sorted) and where the store pass stands */
    uint8_t (*bulk_ids)[32];
    uint32_t bulk_n, bulk_sid;
    bool bulk_on, bulk_started;
    uint64_t bulk_created; /* cursor: the last (created, id) visited in time order */
    uint8_t bulk_last[32];
    uint64_t bulk_pushed;
    uint64_t last_bulk_ms; /* the last RECON_BULK accepted from the peer (rate limit) */
    uint64_t bulk_sent_ms; /* we sent the peer a RECON_BULK */
};

struct pconnect {
    struct pconnect *next;
    uint8_t key[32];
    node_connect_fn cb;
    void *arg;
    uint64_t deadline;
};

struct sync {
    struct node *n;
    struct net *net;
    struct sync_mail_ops mail; /* the dyad service's hooks (sync_set_mail) */
    struct gossip *g;
    struct recon_set *set;
    bool set_broken;
    uv_timer_t timer, kick;
    bool timers, stopped, draining;
    struct sconn *conns;
    struct pconnect *pconn;
    uint8_t (*pub)[32];
    size_t npub, cpub;
    uint64_t next_periodic_ms;
    uint64_t rejoin_at, rejoin_gap;
    char advertised[GOSSIP_ADDR_MAX + 1];
    uint8_t fetchbuf[GOSSIP_ENVELOPE_MAX];
};

static void sync_drain(struct sync *s);
static void recon_drain(struct sync *s, struct sconn *c);

static uint64_t
now_ms(const struct sync *s)
{
    return node_now_ms(s->n);
}

/* ---------------------------------------------------------------- engine callbacks */

static enum gossip_verdict
cb_offer(void *ctx, const uint8_t *env, size_t len, const uint8_t id[GOSSIP_ID_BYTES],
         const uint8_t from[GOSSIP_KEY_BYTES])
{
    struct sync *s = ctx;
    int rc;

    (void)id;
    rc = node_submit(s->n, env, len, NODE_ORIGIN_PEER, from, NULL, NULL, NULL);
    for (struct sconn *c = s->conns; c != NULL; c = c->next) {
        if (memcmp(c->key, from, 32) != 0)
            continue;
        c->last_rec_ms = node_now_ms(s->n);
        if (c->inflight > 0) {
            c->inflight--; /* most likely one we asked for (want_pump runs after the call) */
            c->want_progress_ms = c->last_rec_ms;
        }
        break;
    }
    switch (rc) {
    case 0:
        return GOSSIP_NEW;
    case PULL_ERR_DUPLICATE:
    case PULL_ERR_STALE:
    case PULL_ERR_EXPIRED:
    case PULL_ERR_QUOTA:
    case PULL_ERR_CLOCK_SKEW: /* our clock may be the wrong one */
    case PULL_ERR_NOMEM:
    case PULL_ERR_STORE:
    case PULL_ERR_STORE_FULL:
    case PULL_ERR_IO:
    case PULL_ERR_AGAIN:
        return GOSSIP_DUPLICATE;
    default:
        return GOSSIP_INVALID;
    }
}

static bool
cb_has(void *ctx, const uint8_t id[GOSSIP_ID_BYTES])
{
    struct sync *s = ctx;

    return node_has_record(s->n, id);
}

static int
cb_fetch(void *ctx, const uint8_t id[GOSSIP_ID_BYTES], uint8_t *buf, size_t cap, size_t *len)
{
    struct sync *s = ctx;
    int rc = node_fetch_record(s->n, id, buf, cap, len);

    return rc == 0 ? 0 : PULL_ERR_NOT_FOUND;
}

struct each_ctx {
    recon_visit_fn visit;
    void *vctx;
};

static int
each_key(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    struct each_ctx *e = ctx;

    (void)created;
    return e->visit(e->vctx, id);
}

struct bulk_list {
    uint8_t (*v)[32]; /* MSG_BULK_MAX ids */
    uint32_t n;
};

/* bulk_collect gathers at most MSG_BULK_MAX ids into a struct bulk_list. */
static int
bulk_collect(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    struct bulk_list *l = ctx;

    (void)created;
    if (l->n == MSG_BULK_MAX)
        return PULL_ERR_QUOTA; /* the set grew: reconcile instead */
    memcpy(l->v[l->n++], id, 32);
    return 0;
}

static int
cb_each(void *ctx, recon_visit_fn visit, void *vctx)
{
    struct sync *s = ctx;
    struct each_ctx e = {visit, vctx};

    return store_iter_ids(s->n->store, each_key, &e);
}

/* ---------------------------------------------------------------- connections */

static struct sconn *
sconn_find(struct sync *s, const uint8_t key[32])
{
    for (struct sconn *c = s->conns; c != NULL; c = c->next) {
        if (memcmp(c->key, key, 32) == 0)
            return c;
    }
    return NULL;
}

static void
sconn_free(struct sync *s, const uint8_t key[32])
{
    for (struct sconn **pp = &s->conns; *pp != NULL; pp = &(*pp)->next) {
        struct sconn *c = *pp;
        if (memcmp(c->key, key, 32) != 0)
            continue;
        *pp = c->next;
        recon_free(c->r);
        free(c->push.v);
        free(c->want.v);
        free(c->bulk_ids);
        free(c);
        return;
    }
}

static int
sconn_recon_new(struct sync *s, struct sconn *c)
{
    struct recon_cfg rc;

    memset(&rc, 0, sizeof(rc));
    rc.env = s->n->env;
    rc.set = s->set;
    rc.each = cb_each;
    rc.each_ctx = s;
    rc.max_symbols = s->n->cfg.limits.recon_max_symbols;
    return recon_new(&rc, &c->r);
}

static struct sconn *
sconn_new(struct sync *s, const uint8_t key[32])
{
    struct sconn *c;

    sconn_free(s, key);
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return NULL;
    memcpy(c->key, key, 32);
    if (sconn_recon_new(s, c) != 0) {
        free(c);
        return NULL;
    }
    c->next = s->conns;
    s->conns = c;
    return c;
}

/* drop_peer ends a connection for misbehaviour outside gossip's scoring. */
static void
drop_peer(struct sync *s, const uint8_t key[32], const char *why)
{
    char who[IDENT_SHORT_LEN + 1];

    ident_short(key, who);
    log_info("peer %s: dropped: %s", who, why);
    s->n->counters.peers_dropped++;
    sconn_free(s, key);
    net_close(s->net, key, MSG_BYE_PROTOCOL, why);
    gossip_on_disconnected(s->g, key, now_ms(s));
    sync_drain(s);
}

static void
connect_done(struct sync *s, const uint8_t key[32], int err, const char *reason)
{
    for (struct pconnect **pp = &s->pconn; *pp != NULL;) {
        struct pconnect *p = *pp;
        if (key != NULL && memcmp(p->key, key, 32) != 0) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        if (p->cb != NULL)
            p->cb(p->arg, err, reason);
        free(p);
    }
}

/* ---------------------------------------------------------------- peers table */

static void
peers_put(struct sync *s, const uint8_t key[32], const char *addr)
{
    uint8_t val[8 + GOSSIP_ADDR_MAX];
    size_t len = strlen(addr);

    if (len == 0 || len > GOSSIP_ADDR_MAX)
        return;
    be64enc(val, node_now_s(s->n));
    memcpy(val + 8, addr, len);
    (void)node_kv_put(s->n, STORE_PEERS, key, val, 8 + len);
}

struct known {
    uint8_t key[32];
    uint64_t seen;
    char addr[GOSSIP_ADDR_MAX + 1];
};

struct known_list {
    struct known *v;
    size_t n, cap;
};

static int
peers_collect(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len)
{
    struct known_list *l = ctx;
    struct known *k;

    if (len <= 8 || len > 8 + GOSSIP_ADDR_MAX)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct known *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return 0;
        l->v = v;
        l->cap = cap;
    }
    k = &l->v[l->n++];
    memcpy(k->key, key, 32);
    k->seen = be64dec(val);
    memcpy(k->addr, val + 8, len - 8);
    k->addr[len - 8] = '\0';
    return 0;
}

static int
known_cmp(const void *a, const void *b)
{
    const struct known *x = a, *y = b;

    return x->seen < y->seen ? 1 : x->seen > y->seen ? -1 : 0;
}

static void
bootstrap_load(struct sync *s, bool quiet)
{
    struct node *n = s->n;

    for (size_t i = 0; i < n->cfg.n_bootstrap; i++) {
        uint8_t key[32];
        char addr[CONFIG_ADDR_MAX];
        if ((config_parse_peer(n->cfg.bootstrap[i], key, addr, sizeof(addr)) != 0 ||
             gossip_add_known(s->g, key, addr, now_ms(s)) != 0) &&
            !quiet)
            log_warn("bootstrap peer %s ignored", n->cfg.bootstrap[i]);
    }
}

static void
peers_load(struct sync *s, bool quiet)
{
    struct known_list l = {0};
    uint64_t now_s = node_now_s(s->n);
    size_t used = 0;

    (void)store_kv_iter(s->n->store, STORE_PEERS, peers_collect, &l);
    if (l.n > 1)
        qsort(l.v, l.n, sizeof(*l.v), known_cmp);
    for (size_t i = 0; i < l.n && used < SYNC_PEERS_LOAD_MAX; i++) {
        if (l.v[i].seen + SYNC_PEER_MAX_AGE_S < now_s)
            continue;
        if (gossip_add_known(s->g, l.v[i].key, l.v[i].addr, now_ms(s)) == 0)
            used++;
    }
    if (used > 0 && !quiet)
        log_info("%zu known peer(s) loaded", used);
    free(l.v);
}

static void
peers_save(struct sync *s)
{
    size_t count = gossip_peer_count(s->g), saved = 0;
    struct gossip_peer_info pi;

    for (size_t i = 0; i < count && saved < 64; i++) {
        if (gossip_peer_at(s->g, i, &pi) != 0 || pi.addr[0] == '\0' ||
            pi.state == GOSSIP_PEER_BANNED)
            continue;
        peers_put(s, pi.key, pi.addr);
        saved++;
    }
}

/* ---------------------------------------------------------------- driving the engines */

static void on_timer(uv_timer_t *t);

static void
arm_timer(struct sync *s)
{
    uint64_t now = now_ms(s), d;

    if (s->stopped)
        return;
    d = gossip_next_deadline(s->g);
    if (s->next_periodic_ms < d)
        d = s->next_periodic_ms;
    for (struct sconn *c = s->conns; c != NULL; c = c->next) {
        uint64_t r = recon_next_deadline(c->r);
        if (r < d)
            d = r;
        if (c->retry_at != 0 && c->retry_at < d)
            d = c->retry_at;
        if ((c->want.n > 0 || c->inflight > 0) && c->want_progress_ms + WANT_STALL_MS < d)
            d = c->want_progress_ms + WANT_STALL_MS;
    }
    for (struct pconnect *p = s->pconn; p != NULL; p = p->next) {
        if (p->deadline < d)
            d = p->deadline;
    }
    if (s->set_broken && now + 1000 < d)
        d = now + 1000;
    if (s->rejoin_at != 0 && s->rejoin_at < d)
        d = s->rejoin_at;
    uv_timer_start(&s->timer, on_timer, d > now ? d - now : 0, 0);
}

/* sync_drain executes the gossip engine's actions and re-arms the timer. */
static void
sync_drain(struct sync *s)
{
    struct gossip_action a;
    uint64_t now;

    if (s->draining || s->g == NULL)
        return;
    s->draining = true;
    while (gossip_poll_action(s->g, &a)) {
        now = now_ms(s);
        switch (a.type) {
        case GOSSIP_ACT_SEND:
            (void)net_send(s->net, a.peer, a.data, a.len, true);
            break;
        case GOSSIP_ACT_CONNECT: {
            int rc = s->stopped ? PULL_ERR_STATE : net_dial(s->net, a.peer, a.addr);
            if (rc == PULL_ERR_EXISTS) {
                struct node_peer_info pi;
                memset(&pi, 0, sizeof(pi));
                if (net_conn_info(s->net, a.peer, &pi) == 0)
                    gossip_on_connected(s->g, a.peer, pi.addr, pi.inbound, now);
            } else if (rc != 0) {
                gossip_on_disconnected(s->g, a.peer, now);
            }
            break;
        }
        case GOSSIP_ACT_DISCONNECT:
            sconn_free(s, a.peer);
            net_close(s->net, a.peer, MSG_BYE_NORMAL, "");
            break;
        case GOSSIP_ACT_DELIVER:
            break;
        }
        gossip_action_release(&a);
    }
    s->draining = false;
    arm_timer(s);
}

static void
idq_add(struct idq *q, const uint8_t (*ids)[32], size_t n, size_t max)
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
        while (cap < q->n + n)
            cap *= 2;
        uint8_t(*v)[32] = realloc(q->v, cap * 32);
        if (v == NULL)
            return;
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

static bool bulk_refill(struct sync *s, struct sconn *c);

/* push_flush hands c's pending pushes to gossip as far as the peer's serve queue takes them,
 * reading the next ids of a bulk catch-up from the store when few are left. */
static void
push_flush(struct sync *s, struct sconn *c)
{
    for (;;) {
        while (c->push.n > 0) {
            size_t k = c->push.n < GOSSIP_IDS_MAX ? c->push.n : GOSSIP_IDS_MAX;
            int got = gossip_push(s->g, c->key, (const uint8_t(*)[32])(c->push.v + c->push.off), k,
                                  now_ms(s));
            if (got <= 0)
                break;
            idq_pop(&c->push, (size_t)got);
            if ((size_t)got < k)
                break;
        }
        if (!c->bulk_on || c->push.n >= BULK_LOW || !bulk_refill(s, c))
            break;
    }
}

/* want_pump asks c's peer for more of the wanted ids while few are in flight. Returns
 * whether it called the gossip engine. */
static bool
want_pump(struct sync *s, struct sconn *c)
{
    uint64_t now = now_ms(s);
    bool used = false;

    if (c->inflight > 0 && now - c->want_progress_ms >= WANT_STALL_MS)
        c->inflight = 0; /* ids the peer no longer has, or answers lost with a drop */
    while (c->want.n > 0 && c->inflight + 128 <= WANT_INFLIGHT) {
        size_t k = WANT_INFLIGHT - c->inflight;
        if (k > GOSSIP_IDS_MAX)
            k = GOSSIP_IDS_MAX;
        if (k > c->want.n)
            k = c->want.n;
        if (gossip_want(s->g, c->key, (const uint8_t(*)[32])(c->want.v + c->want.off), k, now) !=
            0) {
            idq_pop(&c->want, c->want.n); /* not connected in gossip's view: give up */
            break;
        }
        idq_pop(&c->want, k);
        c->inflight += k;
        c->want_progress_ms = now;
        used = true;
    }
    return used;
}

/* want_after runs after records may have arrived from c's peer: ask for more, and once
 * everything a session wanted is in, schedule the next session of the catch-up. */
static void
want_after(struct sync *s, struct sconn *c)
{
    bool used = want_pump(s, c);

    if (c->again && c->want.n == 0 && c->inflight == 0 && c->retry_at == 0) {
        c->again = false;
        c->retry_at = now_ms(s) + CATCHUP_AGAIN_MS;
    }
    if (used)
        sync_drain(s);
}

/* recon_drain acts on c's recon events while the connection can take more. */
static void
recon_drain(struct sync *s, struct sconn *c)
{
    struct recon_event ev;
    uint8_t key[32];
    char who[IDENT_SHORT_LEN + 1];
    bool gossip_used = false;

    memcpy(key, c->key, 32);
    ident_short(key, who);
    for (;;) {
        uint64_t now = now_ms(s);
        if (net_queued(s->net, key) >= RECON_QUEUE_HIGH)
            break;
        if ((c = sconn_find(s, key)) == NULL || recon_poll(c->r, now, &ev) != 1)
            break;
        switch (ev.type) {
        case RECON_EV_SEND:
            (void)net_send(s->net, key, ev.msg, ev.len, false);
            break;
        case RECON_EV_WANT:
            idq_add(&c->want, ev.ids, ev.n_ids, WANT_BACKLOG_MAX);
            (void)want_pump(s, c);
            gossip_used = true;
            break;
        case RECON_EV_PUSH:
            idq_add(&c->push, ev.ids, ev.n_ids, PUSH_BACKLOG_MAX);
            push_flush(s, c);
            gossip_used = true;
            break;
        case RECON_EV_DONE:
            s->n->counters.recon_sessions++;
            if (ev.role == RECON_INITIATOR && ev.stats.n_want > 0)
                c->again = true;
            log_debug("recon with %s (%s) done: want %u push %u, %u round trip(s), %llu+%llu "
                      "bytes",
                      who, ev.role == RECON_INITIATOR ? "initiator" : "responder",
                      (unsigned)ev.stats.n_want, (unsigned)ev.stats.n_push,
                      (unsigned)ev.stats.round_trips, (unsigned long long)ev.stats.bytes_sent,
                      (unsigned long long)ev.stats.bytes_recv);
            break;
        case RECON_EV_FAILED:
            s->n->counters.recon_failed++;
            log_debug("recon with %s (%s) failed: %s", who,
                      ev.role == RECON_INITIATOR ? "initiator" : "responder",
                      ev.reason != NULL ? ev.reason : pull_strerror(ev.err));
            if (ev.role == RECON_INITIATOR && (ev.err == PULL_ERR_AGAIN)) {
                c->retry_salted = ev.retry_salted;
                c->retry_at = now + 2000;
            }
            break;
        }
    }
    if (gossip_used)
        sync_drain(s);
}

/* ---------------------------------------------------------------- bulk catch-up
 *
 * A dialer that holds at most MSG_BULK_MAX records sends RECON_BULK with all its ids instead
 * of starting a reconciliation. The receiver copies the list (bounded: 64 KB), wants the
 * listed ids it lacks, and pushes every stored id not in the list: a pass over the store in
 * time order, BULK_CHUNK ids per short read transaction, resumed after the last (created,
 * id) visited as the peer's backlog drains (push_flush). Records stored during the pass
 * reach the peer by gossip; anything else missed, the next periodic reconciliation finds.
 */

/* bulk_busy: a bulk catch-up with c's peer is under way (either way); a reconciliation now
 * would see the whole unfinished difference. */
static bool
bulk_busy(struct sync *s, const struct sconn *c)
{
    uint64_t last = c->bulk_sent_ms > c->last_rec_ms ? c->bulk_sent_ms : c->last_rec_ms;

    return c->bulk_on || (c->bulk_sent_ms != 0 && now_ms(s) - last < BULK_QUIET_MS);
}

/* bulk_end ends the catch-up c's peer asked for: err 0 when the store pass is complete. */
static void
bulk_end(struct sync *s, struct sconn *c, int err)
{
    char who[IDENT_SHORT_LEN + 1];

    ident_short(c->key, who);
    log_debug("bulk catch-up %08x of %s %s: %llu id(s) pushed", (unsigned)c->bulk_sid, who,
              err == 0 ? "done" : pull_strerror(err), (unsigned long long)c->bulk_pushed);
    free(c->bulk_ids);
    c->bulk_ids = NULL;
    c->bulk_n = 0;
    c->bulk_on = false;
    if (err == 0)
        s->n->counters.recon_sessions++;
    else
        s->n->counters.recon_failed++;
    (void)store_trim(s->n->store); /* the pass mapped the whole store into our RSS */
}

static int
bulk_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

struct bulk_pass {
    struct sconn *c;
    uint8_t (*out)[32];
    size_t n;
};

static int
bulk_visit(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    struct bulk_pass *p = ctx;
    struct sconn *c = p->c;

    if (c->bulk_started && created == c->bulk_created && memcmp(id, c->bulk_last, 32) <= 0)
        return 0; /* visited by an earlier chunk */
    c->bulk_started = true;
    c->bulk_created = created;
    memcpy(c->bulk_last, id, 32);
    if (c->bulk_n > 0 && bsearch(id, c->bulk_ids, c->bulk_n, 32, bulk_cmp) != NULL)
        return 0;
    memcpy(p->out[p->n++], id, 32);
    return p->n == BULK_CHUNK ? 1 : 0;
}

/* bulk_refill queues the next chunk of ids c's peer lacks. Returns whether it queued any;
 * ends the catch-up at the end of the store (or on a store error). */
static bool
bulk_refill(struct sync *s, struct sconn *c)
{
    struct bulk_pass p = {c, NULL, 0};
    int rc;

    if ((p.out = malloc(BULK_CHUNK * 32)) == NULL)
        return false; /* the next flush or tick tries again */
    rc = store_iter_keys(s->n->store, c->bulk_started ? c->bulk_created : 0, bulk_visit, &p);
    if (p.n > 0) {
        idq_add(&c->push, (const uint8_t(*)[32])p.out, p.n, PUSH_BACKLOG_MAX);
        c->bulk_pushed += p.n;
    }
    free(p.out);
    if (rc <= 0)
        bulk_end(s, c, rc);
    return p.n > 0;
}

/* bulk_send: if this node holds at most MSG_BULK_MAX records, list them all to c's peer in
 * a RECON_BULK. Returns whether it sent one (otherwise, reconcile). */
static bool
bulk_send(struct sync *s, struct sconn *c)
{
    struct msg_bulk b;
    struct bulk_list l = {NULL, 0};
    struct pull_wb w;
    bool sent = false;

    if (!c->recon_ok || recon_set_size(s->set) > MSG_BULK_MAX)
        return false;
    if ((l.v = malloc(MSG_BULK_MAX * 32)) == NULL)
        return false;
    wb_init(&w, MSG_MAX);
    if (store_iter_ids(s->n->store, bulk_collect, &l) == 0) {
        memset(&b, 0, sizeof(b));
        b.sid = env_uniform(s->n->env, UINT32_MAX) + 1;
        b.ids = (const uint8_t(*)[32])l.v;
        b.n = l.n;
        if (msg_bulk_encode(&b, &w) == 0 && net_send(s->net, c->key, w.p, w.len, false) == 0) {
            c->bulk_sent_ms = now_ms(s);
            s->n->counters.recon_sessions++; /* the sender's part is done: it has no reply */
            sent = true;
            log_debug("bulk catch-up %08x: sent our %u id(s)", (unsigned)b.sid, (unsigned)b.n);
        }
    }
    wb_release(&w);
    free(l.v);
    return sent;
}

/* bulk_on_msg serves a peer's RECON_BULK. */
static void
bulk_on_msg(struct sync *s, struct sconn *c, const uint8_t *msg, size_t len)
{
    struct node_counters *k = &s->n->counters;
    uint64_t now = now_ms(s);
    uint8_t key[32];
    uint8_t(*lack)[32] = NULL;
    size_t nlack = 0;
    struct msg_bulk b;
    char who[IDENT_SHORT_LEN + 1];

    memcpy(key, c->key, 32);
    if (msg_bulk_decode(msg, len, &b) != 0) {
        k->frames_bad++;
        if (++c->bad > BAD_MAX)
            drop_peer(s, key, "too many reconciliation errors");
        return;
    }
    if (!c->recon_ok || c->bulk_on ||
        (c->last_bulk_ms != 0 && now - c->last_bulk_ms < BULK_GAP_MS)) {
        k->recon_limited++;
        return;
    }
    if (b.n > 0 && ((c->bulk_ids = malloc((size_t)b.n * 32)) == NULL ||
                    (lack = malloc((size_t)b.n * 32)) == NULL)) {
        free(c->bulk_ids);
        c->bulk_ids = NULL;
        return;
    }
    c->last_bulk_ms = now;
    if (b.n > 0)
        memcpy(c->bulk_ids, b.ids, (size_t)b.n * 32);
    c->bulk_n = b.n;
    c->bulk_sid = b.sid;
    c->bulk_on = true;
    c->bulk_started = false;
    c->bulk_pushed = 0;
    for (uint32_t i = 0; i < b.n; i++)
        if (!node_has_record(s->n, b.ids[i]))
            memcpy(lack[nlack++], b.ids[i], 32);
    ident_short(key, who);
    log_debug("bulk catch-up %08x of %s: it holds %u id(s), we lack %zu", (unsigned)b.sid, who,
              (unsigned)b.n, nlack);
    if (nlack > 0) {
        idq_add(&c->want, (const uint8_t(*)[32])lack, nlack, WANT_BACKLOG_MAX);
        (void)want_pump(s, c);
    }
    free(lack);
    push_flush(s, c);
    sync_drain(s);
}

static void
recon_begin(struct sync *s, struct sconn *c, unsigned flags)
{
    if (!c->recon_ok || recon_active(c->r, RECON_INITIATOR) || bulk_busy(s, c))
        return;
    if (recon_start(c->r, now_ms(s), flags) == 0)
        recon_drain(s, c);
}

static void
rebuild_set(struct sync *s)
{
    struct recon_set *set = NULL;

    if (recon_set_new(NULL, &set) != 0 || recon_set_add_all(set, cb_each, s) != 0) {
        recon_set_free(set);
        return; /* try again at the next tick */
    }
    for (struct sconn *c = s->conns; c != NULL; c = c->next) {
        recon_free(c->r);
        c->r = NULL;
    }
    recon_set_free(s->set);
    s->set = set;
    s->set_broken = false;
    for (struct sconn **pp = &s->conns; *pp != NULL;) {
        struct sconn *c = *pp;
        if (sconn_recon_new(s, c) != 0) {
            *pp = c->next;
            free(c->push.v);
            free(c->want.v);
            free(c->bulk_ids);
            free(c);
            continue;
        }
        pp = &c->next;
    }
    log_info("reconciliation set rebuilt (%llu ids)", (unsigned long long)recon_set_size(set));
}

static void
on_timer(uv_timer_t *t)
{
    struct sync *s = t->data;
    uint64_t now = now_ms(s);
    uint8_t(*keys)[32] = NULL;
    size_t nk = 0, cap = 0;

    if (s->stopped)
        return;
    if (s->set_broken)
        rebuild_set(s);
    gossip_on_timeout(s->g, now);
    sync_drain(s);
    /* connections may vanish while we act: work on keys */
    for (struct sconn *c = s->conns; c != NULL; c = c->next)
        cap++;
    if (cap > 0 && (keys = malloc(cap * 32)) == NULL)
        cap = 0;
    for (struct sconn *c = s->conns; c != NULL && nk < cap; c = c->next)
        memcpy(keys[nk++], c->key, 32);
    for (size_t i = 0; i < nk; i++) {
        struct sconn *c = sconn_find(s, keys[i]);
        if (c == NULL)
            continue;
        if (recon_next_deadline(c->r) <= now)
            recon_on_timeout(c->r, now);
        if (c->want.n > 0 || c->inflight > 0 || c->again) {
            want_after(s, c);
            if ((c = sconn_find(s, keys[i])) == NULL)
                continue;
        }
        if (c->retry_at != 0 && c->retry_at <= now) {
            unsigned flags = c->retry_salted ? RECON_SALTED : 0;
            c->retry_at = 0;
            c->retry_salted = false;
            recon_begin(s, c, flags);
            if ((c = sconn_find(s, keys[i])) == NULL)
                continue;
        }
        recon_drain(s, c);
        if ((c = sconn_find(s, keys[i])) != NULL)
            push_flush(s, c);
    }
    free(keys);
    /* HyParView forgets peers that failed; a node whose every peer went away (a partition,
     * a lost uplink) would stay alone. Feed it the bootstrap lines and persisted peers
     * again, with a growing gap, until someone answers. */
    if (gossip_active_count(s->g) > 0) {
        s->rejoin_at = 0;
        s->rejoin_gap = 0;
    } else if (s->rejoin_at == 0) {
        s->rejoin_gap = s->rejoin_gap == 0 ? REJOIN_MIN_MS : s->rejoin_gap;
        s->rejoin_at = now + s->rejoin_gap;
    } else if (now >= s->rejoin_at) {
        log_debug("no active peer: trying the known peers again");
        bootstrap_load(s, true);
        peers_load(s, true);
        s->rejoin_gap = s->rejoin_gap * 2 > REJOIN_MAX_MS ? REJOIN_MAX_MS : s->rejoin_gap * 2;
        s->rejoin_at = now + s->rejoin_gap;
    }
    if (now >= s->next_periodic_ms) {
        size_t act = gossip_active_count(s->g);
        struct gossip_peer_info pi;
        struct sconn *c;
        s->next_periodic_ms = now + s->n->cfg.limits.sync_interval_ms;
        if (act > 0 && gossip_peer_at(s->g, env_uniform(s->n->env, (uint32_t)act), &pi) == 0 &&
            (c = sconn_find(s, pi.key)) != NULL)
            recon_begin(s, c, 0);
    }
    for (struct pconnect *p = s->pconn; p != NULL; p = p->next) {
        if (p->deadline <= now) {
            uint8_t k[32];
            memcpy(k, p->key, 32);
            connect_done(s, k, PULL_ERR_TIMEOUT, "no session within the handshake timeout");
            break; /* the list changed; the timer comes back at once for the others */
        }
    }
    sync_drain(s);
}

static void
on_kick(uv_timer_t *t)
{
    struct sync *s = t->data;
    size_t len;

    for (size_t i = 0; i < s->npub && !s->stopped; i++) {
        if (node_fetch_record(s->n, s->pub[i], s->fetchbuf, sizeof(s->fetchbuf), &len) == 0)
            (void)gossip_publish(s->g, s->fetchbuf, len, s->pub[i], now_ms(s));
    }
    s->npub = 0;
    sync_drain(s);
}

/* ---------------------------------------------------------------- net events */

static void
ev_up(void *ctx, const uint8_t key[32], bool inbound, const char *addr, uint64_t features)
{
    struct sync *s = ctx;
    struct sconn *c;

    if (s->stopped)
        return;
    c = sconn_new(s, key);
    if (c != NULL)
        c->recon_ok = (features & MSG_FEAT_RECON) != 0;
    if (addr != NULL && addr[0] != '\0')
        peers_put(s, key, addr);
    gossip_on_connected(s->g, key, addr, inbound, now_ms(s));
    sync_drain(s);
    connect_done(s, key, 0, NULL);
    if (s->mail.on_peer_up != NULL)
        s->mail.on_peer_up(s->mail.ctx, key);
    if (!inbound && (c = sconn_find(s, key)) != NULL && net_is_up(s->net, key) && !bulk_send(s, c))
        recon_begin(s, c, 0);
}

static void
send_recon_err(struct sync *s, const uint8_t key[32], uint32_t sid, int err, const char *why)
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
    wb_init(&w, MSG_MAX);
    if (recon_msg_encode(&m, &w) == 0 && wb_error(&w) == 0)
        (void)net_send(s->net, key, w.p, w.len, false);
    wb_release(&w);
}

static void
ev_msg(void *ctx, const uint8_t key[32], const uint8_t *msg, size_t len)
{
    struct sync *s = ctx;
    struct node_counters *k = &s->n->counters;
    uint64_t now = now_ms(s);
    struct sconn *c;
    uint32_t type;
    int rc;

    if (s->stopped)
        return;
    if (msg_peek_type(msg, len, &type) != 0) {
        k->frames_bad++;
        drop_peer(s, key, "malformed message");
        return;
    }
    if (gossip_handles(type)) {
        if (gossip_on_message(s->g, key, msg, len, now) != 0)
            k->frames_bad++;
        sync_drain(s);
        if ((c = sconn_find(s, key)) != NULL && (c->want.n > 0 || c->again))
            want_after(s, c);
        return;
    }
    if (type == MSG_RECON_BULK) {
        if ((c = sconn_find(s, key)) != NULL)
            bulk_on_msg(s, c, msg, len);
        return;
    }
    if (type >= MSG_RECON_REQ && type <= MSG_RECON_ERR) {
        if ((c = sconn_find(s, key)) == NULL)
            return;
        if (type == MSG_RECON_REQ) {
            struct recon_msg m;
            if (recon_msg_decode(msg, len, &m) == 0) {
                uint64_t gap = m.salted ? REQ_SALTED_GAP_MS : REQ_GAP_MIN_MS;
                uint64_t last = m.salted ? c->last_salted_ms : c->last_req_ms;
                if (last != 0 && now - last < gap) {
                    k->recon_limited++;
                    send_recon_err(s, key, m.sid, PULL_ERR_AGAIN, "too many requests");
                    return;
                }
                if (m.salted)
                    c->last_salted_ms = now;
                c->last_req_ms = now;
            }
        }
        if ((rc = recon_on_msg(c->r, now, msg, len)) < 0) {
            k->frames_bad++;
            if (++c->bad > BAD_MAX) {
                drop_peer(s, key, "too many reconciliation errors");
                return;
            }
        }
        recon_drain(s, c);
        return;
    }
    if (type == MSG_MAIL || type == MSG_MAIL_IHAVE) {
        rc = s->mail.on_msg != NULL ? s->mail.on_msg(s->mail.ctx, key, msg, len) : 0;
        if (rc < 0) {
            k->frames_bad++;
            if ((c = sconn_find(s, key)) != NULL && ++c->bad > BAD_MAX)
                drop_peer(s, key, "too many bad mail messages");
        }
        return;
    }
    k->msgs_unknown++;
}

static void
ev_flushed(void *ctx, const uint8_t key[32], size_t len)
{
    struct sync *s = ctx;
    struct sconn *c;

    if (s->stopped)
        return;
    if (len > 0)
        gossip_on_flushed(s->g, key, len, now_ms(s));
    if ((c = sconn_find(s, key)) != NULL) {
        recon_drain(s, c);
        if ((c = sconn_find(s, key)) != NULL)
            push_flush(s, c);
    }
    sync_drain(s);
}

static void
ev_down(void *ctx, const uint8_t key[32])
{
    struct sync *s = ctx;

    if (s->stopped)
        return;
    sconn_free(s, key);
    gossip_on_disconnected(s->g, key, now_ms(s));
    sync_drain(s);
}

static void
ev_dial_failed(void *ctx, const uint8_t key[32], int err, const char *reason)
{
    struct sync *s = ctx;
    char who[IDENT_SHORT_LEN + 1];

    if (s->stopped)
        return;
    ident_short(key, who);
    log_debug("dial %s failed: %s", who, reason);
    gossip_on_disconnected(s->g, key, now_ms(s));
    sync_drain(s);
    connect_done(s, key, err, reason);
}

/* ---------------------------------------------------------------- node observers */

static void
obs_stored(void *ctx, const struct node_stored *st)
{
    struct sync *s = ctx;
    const uint8_t *id = st->id, *replaced_id = st->replaced_id;
    enum node_origin origin = st->origin;

    if (!s->set_broken && replaced_id != NULL && recon_set_remove(s->set, replaced_id) != 0)
        s->set_broken = true;
    if (!s->set_broken && recon_set_add(s->set, id) != 0)
        s->set_broken = true;
    if (origin == NODE_ORIGIN_PEER || s->stopped)
        return;
    if (s->npub == s->cpub) {
        size_t cap = s->cpub ? s->cpub * 2 : 64;
        uint8_t(*v)[32] = realloc(s->pub, cap * 32);
        if (v == NULL)
            return;
        s->pub = v;
        s->cpub = cap;
    }
    memcpy(s->pub[s->npub++], id, 32);
    if (!uv_is_active((uv_handle_t *)&s->kick))
        uv_timer_start(&s->kick, on_kick, 0, 0);
}

static void
obs_removed(void *ctx, const uint8_t id[RECORD_ID_BYTES])
{
    struct sync *s = ctx;

    if (!s->set_broken && recon_set_remove(s->set, id) != 0)
        s->set_broken = true;
}

/* ---------------------------------------------------------------- the network side (struct
 * node_netops) */

static const char *
state_name(enum gossip_peer_state st)
{
    switch (st) {
    case GOSSIP_PEER_PASSIVE:
        return "passive";
    case GOSSIP_PEER_CONNECTING:
        return "connecting";
    case GOSSIP_PEER_PENDING:
        return "pending";
    case GOSSIP_PEER_ACTIVE:
        return "active";
    case GOSSIP_PEER_BANNED:
        return "banned";
    }
    return "unknown";
}

static size_t
op_peer_count(void *ctx)
{
    struct sync *s = ctx;

    return gossip_peer_count(s->g);
}

static int
op_peer_at(void *ctx, size_t i, struct node_peer_info *out)
{
    struct sync *s = ctx;
    struct gossip_peer_info pi;

    memset(out, 0, sizeof(*out));
    if (gossip_peer_at(s->g, i, &pi) != 0)
        return PULL_ERR_NOT_FOUND;
    memcpy(out->key, pi.key, 32);
    snprintf(out->addr, sizeof(out->addr), "%s", pi.addr);
    out->state = state_name(pi.state);
    out->inbound = pi.inbound;
    out->score = pi.score;
    (void)net_conn_info(s->net, pi.key, out);
    return 0;
}

static size_t
op_connected_count(void *ctx)
{
    struct sync *s = ctx;

    return net_up_count(s->net);
}

static int
op_connect(void *ctx, const uint8_t key[static 32], const char *addr, node_connect_fn cb, void *arg)
{
    struct sync *s = ctx;
    struct node *n = s->n;
    char host[CONFIG_ADDR_MAX];
    struct pconnect *p;
    uint16_t port;
    int rc;

    if (s->stopped)
        return PULL_ERR_STATE;
    if (sodium_memcmp(key, n->self.pk, 32) == 0)
        return PULL_ERR_BAD_KEY;
    if (addr == NULL || strlen(addr) > GOSSIP_ADDR_MAX ||
        config_split_hostport(addr, host, sizeof(host), &port) != 0 || port == 0 || host[0] == '\0')
        return PULL_ERR_INVAL;
    if (net_is_up(s->net, key))
        return PULL_ERR_EXISTS;
    rc = net_dial(s->net, key, addr);
    if (rc != 0 && rc != PULL_ERR_EXISTS)
        return rc;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return PULL_ERR_NOMEM;
    memcpy(p->key, key, 32);
    p->cb = cb;
    p->arg = arg;
    p->deadline = now_ms(s) + n->cfg.limits.handshake_timeout_ms + CONNECT_GRACE_MS;
    p->next = s->pconn;
    s->pconn = p;
    (void)gossip_add_known(s->g, key, addr, now_ms(s));
    sync_drain(s);
    return 0;
}

static int
op_learn_peer(void *ctx, const uint8_t key[static 32], const char *addr)
{
    struct sync *s = ctx;
    char host[CONFIG_ADDR_MAX];
    uint16_t port;
    int rc;

    if (addr == NULL || strlen(addr) > GOSSIP_ADDR_MAX ||
        config_split_hostport(addr, host, sizeof(host), &port) != 0 || port == 0 || host[0] == '\0')
        return PULL_ERR_INVAL;
    if (s->stopped)
        return 0;
    rc = gossip_add_known(s->g, key, addr, now_ms(s));
    sync_drain(s);
    return rc == PULL_ERR_INVAL ? PULL_ERR_INVAL : 0;
}

static size_t
op_addresses(void *ctx, char (*out)[NODE_ADDR_MAX], size_t max)
{
    struct sync *s = ctx;

    return net_addresses(s->net, out, max);
}

static uint16_t
op_listen_port(void *ctx)
{
    struct sync *s = ctx;

    return net_port(s->net);
}

static const struct node_netops netops = {
    op_peer_count, op_peer_at,   op_connected_count, op_connect,
    op_learn_peer, op_addresses, op_listen_port,
};

int
sync_send(struct sync *s, const uint8_t key[static 32], const uint8_t *msg, size_t len)
{
    int rc;

    if (s->net == NULL || s->stopped)
        return PULL_ERR_NOT_FOUND;
    rc = net_send(s->net, key, msg, len, false);
    return rc == PULL_ERR_INVAL ? PULL_ERR_QUOTA : rc;
}

void
sync_set_mail(struct sync *s, const struct sync_mail_ops *ops)
{
    if (ops != NULL)
        s->mail = *ops;
    else
        memset(&s->mail, 0, sizeof(s->mail));
}

/* ---------------------------------------------------------------- lifecycle */

int
sync_new(struct node *n, struct sync **out)
{
    struct sync *s;
    struct gossip_config gc;
    struct net_events ev = {ev_up, ev_msg, ev_flushed, ev_down, ev_dial_failed, NULL};
    struct node_observer obs = {obs_stored, obs_removed, NULL, NULL};
    int rc;

    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return PULL_ERR_NOMEM;
    s->n = n;
    *out = s; /* from here on, sync_stop/sync_free clean up */
    ev.ctx = s;
    if ((rc = recon_set_new(NULL, &s->set)) != 0 ||
        (rc = recon_set_add_all(s->set, cb_each, s)) != 0) {
        log_error("cannot build the reconciliation set: %s", pull_strerror(rc));
        return rc;
    }
    uv_timer_init(n->loop, &s->timer);
    s->timer.data = s;
    uv_timer_init(n->loop, &s->kick);
    s->kick.data = s;
    s->timers = true;
    if ((rc = net_new(n, &ev, &s->net)) != 0)
        return rc;
    net_advertised(s->net, s->advertised, sizeof(s->advertised));
    gossip_config_default(&gc);
    gc.offer = cb_offer;
    gc.has = cb_has;
    gc.fetch = cb_fetch;
    gc.ctx = s;
    if ((rc = gossip_new(n->env, n->self.pk, s->advertised, &gc, &s->g)) != 0) {
        log_error("cannot start gossip (advertised address %s): %s", s->advertised,
                  pull_strerror(rc));
        return rc;
    }
    obs.ctx = s;
    if ((rc = node_observe(n, &obs)) != 0)
        return rc;
    node_set_net(n, &netops, s);
    s->next_periodic_ms = now_ms(s) + n->cfg.limits.sync_interval_ms;
    bootstrap_load(s, false);
    peers_load(s, false);
    log_info("%llu record(s) in the store, advertised address %s",
             (unsigned long long)recon_set_size(s->set), s->advertised);
    sync_drain(s);
    return 0;
}

void
sync_stop(struct sync *s)
{
    if (s == NULL || s->stopped)
        return;
    if (s->g != NULL) {
        peers_save(s);
        gossip_leave(s->g, now_ms(s));
        sync_drain(s);
    }
    s->stopped = true;
    connect_done(s, NULL, PULL_ERR_CLOSED, "pulld is stopping");
    if (s->n->net == &netops)
        node_set_net(s->n, NULL, NULL);
    node_unobserve(s->n, s);
    if (s->net != NULL)
        net_stop(s->net);
    if (s->timers) {
        uv_close((uv_handle_t *)&s->timer, NULL);
        uv_close((uv_handle_t *)&s->kick, NULL);
    }
}

void
sync_free(struct sync *s)
{
    if (s == NULL)
        return;
    while (s->conns != NULL)
        sconn_free(s, s->conns->key);
    while (s->pconn != NULL) {
        struct pconnect *p = s->pconn;
        s->pconn = p->next;
        free(p);
    }
    gossip_free(s->g);
    recon_set_free(s->set);
    free(s->pub);
    net_free(s->net);
    free(s);
}
