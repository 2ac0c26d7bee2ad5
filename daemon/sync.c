/*
 * sync: the executor of the protocol engine (sync.h is the manual; sync_int.h tells the
 * rooms). Every rule is in proto/syncer; this file turns its actions into net calls and
 * node writes, and net's events and the node's commits into engine calls.
 */
#include "daemon/sync_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/log.h"
#include "proto/msg.h"

/* ---------------------------------------------------------------- the engine's host */

static void on_timer(uv_timer_t *t);

/* verdict_of maps the node's refusal of a received record to gossip's verdict: stale
 * versions, duplicates, quota refusals and our own troubles are no one's fault, anything
 * else counts against the sender. */
static enum gossip_verdict
verdict_of(int rc)
{
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
    case PULL_ERR_STATE:
    case PULL_ERR_CLOSED:
        return GOSSIP_DUPLICATE;
    default:
        return GOSSIP_INVALID;
    }
}

/* on_verdict: the node's answer on a record offer() handed over (GOSSIP_PENDING), after
 * its commit or its refusal; called from the node's callbacks, never inside an engine
 * call. The engine's actions are executed from the zero-delay timer, once for many. */
static void
on_verdict(void *arg, int result, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct sync *s = arg;

    if (s->stopped)
        return;
    syncer_verdict(s->e, env, len, id, verdict_of(result), sync_now_ms(s));
    if (!s->draining)
        uv_timer_start(&s->timer, on_timer, 0, 0);
}

static enum gossip_verdict
host_offer(void *ctx, const uint8_t *env, size_t len, const uint8_t id[GOSSIP_ID_BYTES],
           const uint8_t from[GOSSIP_KEY_BYTES])
{
    struct sync *s = ctx;
    int rc = node_submit_async(s->n, env, len, id, NODE_ORIGIN_PEER, from, on_verdict, s);

    return rc == 0 ? GOSSIP_PENDING : verdict_of(rc);
}

static bool
host_has(void *ctx, const uint8_t id[GOSSIP_ID_BYTES])
{
    struct sync *s = ctx;

    return node_has_record(s->n, id);
}

static int
host_fetch(void *ctx, const uint8_t id[GOSSIP_ID_BYTES], uint8_t *buf, size_t cap, size_t *len)
{
    struct sync *s = ctx;

    return node_fetch_record(s->n, id, buf, cap, len) == 0 ? 0 : PULL_ERR_NOT_FOUND;
}

struct each_ctx {
    recon_visit_fn visit;
    void *vctx;
};

static int
each_id_visit(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    struct each_ctx *e = ctx;

    (void)created;
    return e->visit(e->vctx, id);
}

static int
host_each_id(void *ctx, recon_visit_fn visit, void *vctx)
{
    struct sync *s = ctx;
    struct each_ctx e = {visit, vctx};
    int rc = store_iter_ids(s->n->store, each_id_visit, &e);

    /* a pass over every id (a rebuilt reconciliation set, a bulk catch-up's list): its
     * pages leave pulld's RSS on the next loop turn, as host_each_key's do */
    node_trim_pages_soon(s->n);
    return rc;
}

static int
host_each_key(void *ctx, uint64_t since,
              int (*visit)(void *vctx, uint64_t created, const uint8_t id[32]), void *vctx)
{
    struct sync *s = ctx;
    int rc = store_iter_keys(s->n->store, since, visit, vctx);

    /* the walk read the records' pages: they leave pulld's RSS on the next loop turn */
    node_trim_pages_soon(s->n);
    return rc;
}

/* host_known: an author whose records this node holds, or a person the dyad service knows
 * (the engine adds the peers it knows). */
static bool
host_known(void *ctx, const uint8_t key[32])
{
    struct sync *s = ctx;
    uint32_t live = 0, tombs = 0;

    if (store_author_count(s->n->store, key, &live, &tombs) == 0 && live + tombs > 0)
        return true;
    return s->mail.known != NULL && s->mail.known(s->mail.ctx, key);
}

static void
host_log(void *ctx, int level, const char *line)
{
    (void)ctx;
    if (level <= 0)
        log_error("%s", line);
    else if (level == 1)
        log_warn("%s", line);
    else if (level == 2)
        log_info("%s", line);
    else
        log_debug("%s", line);
}

/* ---------------------------------------------------------------- actions */

/* mirror adds what the engine counted since the last drain to the node's counters. */
static void
mirror(struct sync *s)
{
    struct node_counters *k = &s->n->counters;
    struct syncer_stats st;

    syncer_get_stats(s->e, &st);
    k->recon_sessions += st.recon_sessions - s->last.recon_sessions;
    k->recon_failed += st.recon_failed - s->last.recon_failed;
    k->recon_limited += st.recon_limited - s->last.recon_limited;
    k->frames_bad += st.frames_bad - s->last.frames_bad;
    k->msgs_unknown += st.msgs_unknown - s->last.msgs_unknown;
    k->peers_dropped += st.peers_dropped - s->last.peers_dropped;
    s->last = st;
}

static void
act(struct sync *s, struct syncer_action *a)
{
    static const enum store_table tables[] = {
        [SYNCER_TABLE_PEERS] = STORE_PEERS, [SYNCER_TABLE_MAIL] = STORE_MAIL};
    int rc;

    switch (a->type) {
    case SYNCER_ACT_SEND:
        if (net_send(s->net, a->peer, a->data, a->len, a->counted) != 0)
            syncer_on_flushed(s->e, a->peer, a->len, a->counted, sync_now_ms(s)); /* never sent */
        break;
    case SYNCER_ACT_CONNECT:
        rc = s->stopped ? PULL_ERR_STATE : net_dial(s->net, a->peer, a->addr);
        if (rc == PULL_ERR_EXISTS) {
            struct node_peer_info pi;
            memset(&pi, 0, sizeof(pi));
            if (net_conn_info(s->net, a->peer, &pi) == 0 && pi.connected)
                syncer_on_connected(s->e, a->peer, pi.inbound, pi.addr, 0, sync_now_ms(s));
        } else if (rc != 0) {
            syncer_on_disconnected(s->e, a->peer, sync_now_ms(s));
            if (rc == PULL_ERR_INVAL || rc == PULL_ERR_BAD_KEY) {
                char why[NODE_REASON_MAX];
                snprintf(why, sizeof(why), "cannot dial %.100s: %s", a->addr,
                         rc == PULL_ERR_INVAL ? "not a HOST:PORT address"
                                              : "the id is not a usable key");
                sync_dial_failed(s, a->peer, a->addr, rc, NET_FAIL_OTHER, why);
            }
        }
        break;
    case SYNCER_ACT_DISCONNECT:
        net_close(s->net, a->peer, a->bye, a->text);
        break;
    case SYNCER_ACT_PUT:
        (void)node_kv_put(s->n, tables[a->table], a->key, a->data, a->len);
        break;
    case SYNCER_ACT_DEL:
        (void)node_kv_del(s->n, tables[a->table], a->key);
        break;
    case SYNCER_ACT_MAIL:
        if (s->mail.on_mail != NULL)
            s->mail.on_mail(s->mail.ctx, a->data, a->len, a->peer);
        break;
    }
}

/* sync_drain: see sync_int.h. */
void
sync_drain(struct sync *s)
{
    struct syncer_action a;
    uint64_t now, d, dc;

    if (s->draining || s->e == NULL)
        return;
    s->draining = true;
    while (syncer_poll_action(s->e, &a)) {
        act(s, &a);
        syncer_action_release(&a);
    }
    s->draining = false;
    mirror(s);
    if (s->stopped || !s->timer_init)
        return;
    now = sync_now_ms(s);
    d = syncer_next_deadline(s->e);
    dc = sync_connect_deadline(s);
    d = dc < d ? dc : d;
    uv_timer_start(&s->timer, on_timer, d > now ? d - now : 0, 0);
}

static void
on_timer(uv_timer_t *t)
{
    struct sync *s = t->data;
    uint64_t now = sync_now_ms(s);

    if (s->stopped)
        return;
    syncer_on_timeout(s->e, now);
    sync_connect_expire(s, now);
    sync_drain(s);
}

/* ---------------------------------------------------------------- net events */

static void
ev_up(void *ctx, const uint8_t key[32], bool inbound, const char *addr, uint64_t features)
{
    struct sync *s = ctx;

    if (s->stopped)
        return;
    sync_dial_up(s, key, addr);
    if (inbound) /* a peer from outside may have just proved us dialable (net_conn.c) */
        syncer_set_dialable(s->e, net_reach(s->net) == MSG_REACH_OPEN);
    syncer_on_connected(s->e, key, inbound, addr, features, sync_now_ms(s));
    sync_drain(s);
    sync_connect_done(s, key, 0, NULL);
    if (s->mail.on_peer_up != NULL)
        s->mail.on_peer_up(s->mail.ctx, key);
}

static void
ev_msg(void *ctx, const uint8_t key[32], const uint8_t *msg, size_t len)
{
    struct sync *s = ctx;

    if (s->stopped)
        return;
    (void)syncer_on_message(s->e, key, msg, len, sync_now_ms(s));
    sync_drain(s);
}

static void
ev_flushed(void *ctx, const uint8_t key[32], size_t len, bool counted)
{
    struct sync *s = ctx;

    if (s->stopped)
        return;
    syncer_on_flushed(s->e, key, len, counted, sync_now_ms(s));
    sync_drain(s);
}

static void
ev_down(void *ctx, const uint8_t key[32])
{
    struct sync *s = ctx;

    if (s->stopped)
        return;
    syncer_on_disconnected(s->e, key, sync_now_ms(s));
    sync_drain(s);
}

static void
ev_dial_failed(void *ctx, const uint8_t key[32], const char *addr, int err, enum net_fail kind,
               const char *reason)
{
    struct sync *s = ctx;

    if (s->stopped)
        return;
    syncer_on_disconnected(s->e, key, sync_now_ms(s));
    /* after the engine took it: the warning says when it tries again */
    sync_dial_failed(s, key, addr, err, kind, reason);
    sync_drain(s);
    sync_connect_done(s, key, err, reason);
}

/* ---------------------------------------------------------------- node observers */

static void
obs_stored(void *ctx, const struct node_stored *st)
{
    struct sync *s = ctx;

    syncer_on_stored(s->e, st->id, st->replaced_id, st->env->bytes, st->env->len,
                     st->origin != NODE_ORIGIN_PEER);
    if (!s->draining && !s->stopped)
        uv_timer_start(&s->timer, on_timer, 0, 0); /* publish soon, outside any callback */
}

static void
obs_removed(void *ctx, const uint8_t id[RECORD_ID_BYTES])
{
    struct sync *s = ctx;

    syncer_on_removed(s->e, id);
}

/* ---------------------------------------------------------------- the engine's counters */

void
sync_get_stats(const struct sync *s, struct syncer_stats *out)
{
    syncer_get_stats(s->e, out);
}

/* ---------------------------------------------------------------- lifecycle */

/* A peers row with what the store knows of the peer: the engine feeds the most valuable
 * first (store_peer_value). */
static int
load_peer(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len,
          const struct store_peer_stats *st)
{
    syncer_load_peer(ctx, key, val, len, store_peer_value(st));
    return 0;
}

static int
load_mail(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len)
{
    syncer_mail_load(ctx, key, val, len);
    return 0;
}

int
sync_new(struct node *n, struct sync **out)
{
    const struct config_limits *l = &n->cfg.limits;
    struct net_events ev = {ev_up, ev_msg, ev_flushed, ev_down, ev_dial_failed, NULL};
    struct node_observer obs = {obs_stored, obs_removed, NULL, NULL};
    struct syncer_host host = {.offer = host_offer,
                               .has = host_has,
                               .fetch = host_fetch,
                               .each_id = host_each_id,
                               .each_key = host_each_key,
                               .known = host_known,
                               .log = host_log};
    struct syncer_config sc;
    struct sync *s;
    int rc;

    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return PULL_ERR_NOMEM;
    s->n = n;
    *out = s; /* from here on, sync_stop/sync_free clean up */
    ev.ctx = s;
    host.ctx = s;
    uv_timer_init(n->loop, &s->timer);
    s->timer.data = s;
    s->timer_init = true;
    if ((rc = net_new(n, &ev, &s->net)) != 0)
        return rc;
    net_advertised(s->net, s->advertised, sizeof(s->advertised));
    syncer_config_default(&sc);
    sc.sync_interval_ms = l->sync_interval_ms;
    sc.recon_max_symbols = l->recon_max_symbols;
    if (l->mail_max_items > 0)
        sc.relay.total_items = l->mail_max_items;
    if ((rc = syncer_new(n->env, n->self.pk, s->advertised, &sc, &host, &s->e)) != 0) {
        log_error("cannot start the protocol engine (advertised address %s): %s", s->advertised,
                  pull_strerror(rc));
        return rc;
    }
    syncer_set_dialable(s->e, net_reach(s->net) == MSG_REACH_OPEN);
    obs.ctx = s;
    if ((rc = node_observe(n, &obs)) != 0)
        return rc;
    node_set_net(n, &sync_netops, s);
    for (size_t i = 0; i < n->cfg.n_bootstrap; i++) {
        uint8_t key[32];
        char addr[CONFIG_ADDR_MAX];
        if (config_parse_peer(n->cfg.bootstrap[i], key, addr, sizeof(addr)) != 0 ||
            syncer_add_bootstrap(s->e, key, addr, sync_now_ms(s)) != 0)
            log_warn("bootstrap peer %s ignored", n->cfg.bootstrap[i]);
    }
    (void)store_peers_iter(n->store, load_peer, s->e);
    (void)store_kv_iter(n->store, STORE_MAIL, load_mail, s->e);
    syncer_start(s->e, sync_now_ms(s));
    log_info("%llu record(s) in the store, advertised address %s",
             (unsigned long long)syncer_set_size(s->e), s->advertised);
    sync_drain(s);
    return 0;
}

void
sync_stop(struct sync *s)
{
    if (s == NULL || s->stopped)
        return;
    if (s->e != NULL) {
        syncer_leave(s->e, sync_now_ms(s));
        sync_drain(s);
    }
    s->stopped = true;
    sync_connect_done(s, NULL, PULL_ERR_CLOSED, "pulld is stopping");
    if (s->n->net == &sync_netops)
        node_set_net(s->n, NULL, NULL);
    node_unobserve(s->n, s);
    if (s->net != NULL)
        net_stop(s->net);
    if (s->timer_init)
        uv_close((uv_handle_t *)&s->timer, NULL);
}

void
sync_set_external(struct sync *s, const char *host, uint16_t port)
{
    if (s == NULL || s->stopped || s->net == NULL)
        return;
    net_set_external(s->net, host, port);
    net_advertised(s->net, s->advertised, sizeof(s->advertised));
    if (s->e != NULL && syncer_set_addr(s->e, s->advertised) != 0)
        log_warn("advertised address %s refused by the protocol engine", s->advertised);
    if (s->e != NULL)
        syncer_set_dialable(s->e, net_reach(s->net) == MSG_REACH_OPEN);
    log_info("advertised address %s (%s)", s->advertised,
             net_reach(s->net) == MSG_REACH_OPEN ? "open to every peer" : "local peers only");
}

void
sync_free(struct sync *s)
{
    if (s == NULL)
        return;
    sync_connect_free(s);
    sync_dials_free(s);
    syncer_free(s->e);
    net_free(s->net);
    free(s);
}
