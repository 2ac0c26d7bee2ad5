/*
 * sync_netops: the network operations of node.h, which sync registers with the node
 * (sync_int.h tells the rooms): peers as `pull peers` shows them (the engine's known
 * peers with net's connection fields), `pull connect` and its wait for a session, peers
 * learned from LAN or bootstrap, the addresses others dial.
 */
#include "daemon/sync_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "lib/err.h"
#include "proto/msg.h"

#define CONNECT_GRACE_MS 3000

/* A `pull connect` waiting for its session. */
struct sync_pconnect {
    struct sync_pconnect *next;
    uint8_t key[32];
    node_connect_fn cb;
    void *arg;
    uint64_t deadline;
};

/* ---------------------------------------------------------------- `pull connect`s waiting */

void
sync_connect_done(struct sync *s, const uint8_t *key, int err, const char *reason)
{
    for (struct sync_pconnect **pp = &s->pconn; *pp != NULL;) {
        struct sync_pconnect *p = *pp;
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

uint64_t
sync_connect_deadline(const struct sync *s)
{
    uint64_t d = UINT64_MAX;

    for (const struct sync_pconnect *p = s->pconn; p != NULL; p = p->next)
        d = p->deadline < d ? p->deadline : d;
    return d;
}

void
sync_connect_expire(struct sync *s, uint64_t now)
{
    for (struct sync_pconnect *p = s->pconn; p != NULL; p = p->next) {
        if (p->deadline <= now) {
            uint8_t k[32];
            memcpy(k, p->key, 32);
            sync_connect_done(s, k, PULL_ERR_TIMEOUT, "no session within the handshake timeout");
            return; /* the list changed; the timer comes back at once for the others */
        }
    }
}

void
sync_connect_free(struct sync *s)
{
    while (s->pconn != NULL) {
        struct sync_pconnect *p = s->pconn;
        s->pconn = p->next;
        free(p);
    }
}

/* ---------------------------------------------------------------- the operations */

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

/* in_list: does one of the first n rows of the snapshot show key already? */
static bool
snap_has(const struct sync *s, const uint8_t key[32])
{
    for (size_t i = 0; i < s->nsnap; i++) {
        const struct sync_peer_ref *r = &s->snap[i];
        struct gossip_peer_info pi;
        struct syncer_known_info k;
        const uint8_t *have = NULL;

        if (r->src == 0 && syncer_peer_at(s->e, r->i, &pi) == 0)
            have = pi.key;
        else if (r->src == 1 && syncer_known_at(s->e, r->i, &k) == 0)
            have = k.key;
        else if (r->src == 2)
            have = s->dials[r->i].key;
        if (have != NULL && memcmp(have, key, 32) == 0)
            return true;
    }
    return false;
}

static void
snap_add(struct sync *s, size_t cap, uint8_t src, size_t i)
{
    if (s->nsnap < cap) {
        s->snap[s->nsnap].src = src;
        s->snap[s->nsnap].i = (uint32_t)i;
        s->nsnap++;
    }
}

/* op_peer_count takes the snapshot of `pull peers`' rows: gossip's peers (connections,
 * the passive view), then the peers the engine remembers and gossip doesn't hold now (a
 * bootstrap line that failed, a peer of a past session), then peers whose dials failed
 * lately and that nobody holds any more (a `pull connect` that failed). */
static size_t
op_peer_count(void *ctx)
{
    struct sync *s = ctx;
    size_t ng = syncer_peer_count(s->e), nk = syncer_known_count(s->e), cap = ng + nk + s->ndials;
    struct syncer_known_info k;
    struct sync_peer_ref *v;

    s->nsnap = 0;
    if (cap == 0)
        return 0;
    if ((v = realloc(s->snap, cap * sizeof(*v))) == NULL)
        return 0;
    s->snap = v;
    for (size_t i = 0; i < ng; i++)
        snap_add(s, cap, 0, i);
    for (size_t i = 0; i < nk; i++) {
        if (syncer_known_at(s->e, i, &k) == 0 && !snap_has(s, k.key))
            snap_add(s, cap, 1, i);
    }
    for (size_t i = 0; i < s->ndials; i++) {
        if (s->dials[i].fails > 0 && !snap_has(s, s->dials[i].key))
            snap_add(s, cap, 2, i);
    }
    return s->nsnap;
}

/* dial_fields adds what the dials to the peer did (last error, last seen, next try). */
static void
dial_fields(struct sync *s, struct node_peer_info *out, uint64_t seen_s)
{
    const struct sync_dial *d = sync_dial_find(s, out->key);

    out->last_seen_s = seen_s;
    if (d != NULL) {
        if (d->last_ok_s > out->last_seen_s)
            out->last_seen_s = d->last_ok_s;
        if (d->fails > 0) {
            out->fails = d->fails;
            out->last_error_kind = net_fail_name(d->kind);
            snprintf(out->last_error, sizeof(out->last_error), "%s", d->reason);
            out->last_error_s = d->last_fail_s;
        }
    }
    if (out->connected)
        out->last_seen_s = node_now_s(s->n);
    else
        out->next_retry_s = sync_next_retry_s(s, out->key);
}

/* known_seen: when the engine last saw key (its persisted peers), 0 if never. */
static uint64_t
known_seen(const struct sync *s, const uint8_t key[32], bool *boot)
{
    struct syncer_known_info k;

    *boot = false;
    for (size_t i = 0; syncer_known_at(s->e, i, &k) == 0; i++) {
        if (memcmp(k.key, key, 32) == 0) {
            *boot = k.bootstrap;
            return k.seen_s;
        }
    }
    return 0;
}

static int
op_peer_at(void *ctx, size_t i, struct node_peer_info *out)
{
    struct sync *s = ctx;
    const struct sync_peer_ref *r;
    struct gossip_peer_info pi;
    struct syncer_known_info k;
    uint64_t seen;

    memset(out, 0, sizeof(*out));
    if (i >= s->nsnap)
        return PULL_ERR_NOT_FOUND;
    r = &s->snap[i];
    if (r->src == 0) {
        if (syncer_peer_at(s->e, r->i, &pi) != 0)
            return PULL_ERR_NOT_FOUND;
        memcpy(out->key, pi.key, 32);
        snprintf(out->addr, sizeof(out->addr), "%s", pi.addr);
        out->state = state_name(pi.state);
        out->inbound = pi.inbound;
        out->score = pi.score;
        (void)net_conn_info(s->net, pi.key, out);
    } else if (r->src == 1) {
        if (syncer_known_at(s->e, r->i, &k) != 0)
            return PULL_ERR_NOT_FOUND;
        memcpy(out->key, k.key, 32);
        snprintf(out->addr, sizeof(out->addr), "%s", k.addr);
        (void)net_conn_info(s->net, k.key, out);
    } else {
        if (r->i >= s->ndials)
            return PULL_ERR_NOT_FOUND;
        memcpy(out->key, s->dials[r->i].key, 32);
        snprintf(out->addr, sizeof(out->addr), "%s", s->dials[r->i].addr);
        (void)net_conn_info(s->net, out->key, out);
    }
    seen = known_seen(s, out->key, &out->bootstrap);
    dial_fields(s, out, seen);
    if (out->state == NULL)
        out->state = out->connected ? "connected" : out->fails > 0 ? "unreachable" : "known";
    return 0;
}

static size_t
op_connected_count(void *ctx)
{
    struct sync *s = ctx;

    return net_up_count(s->net);
}

static bool
addr_ok(const char *addr)
{
    char host[CONFIG_ADDR_MAX];
    uint16_t port;

    return addr != NULL && strlen(addr) <= GOSSIP_ADDR_MAX &&
           config_split_hostport(addr, host, sizeof(host), &port) == 0 && port != 0 &&
           host[0] != '\0';
}

static int
op_connect(void *ctx, const uint8_t key[static 32], const char *addr, node_connect_fn cb, void *arg)
{
    struct sync *s = ctx;
    struct sync_pconnect *p;
    int rc;

    if (s->stopped)
        return PULL_ERR_STATE;
    if (sodium_memcmp(key, s->n->self.pk, 32) == 0)
        return PULL_ERR_BAD_KEY;
    if (!addr_ok(addr))
        return PULL_ERR_INVAL;
    if (net_is_up(s->net, key))
        return PULL_ERR_EXISTS; /* node.h: the caller asks node_peer_at for its address */
    rc = net_dial(s->net, key, addr);
    if (rc != 0 && rc != PULL_ERR_EXISTS)
        return rc;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return PULL_ERR_NOMEM;
    memcpy(p->key, key, 32);
    p->cb = cb;
    p->arg = arg;
    p->deadline = sync_now_ms(s) + s->n->cfg.limits.handshake_timeout_ms + CONNECT_GRACE_MS;
    p->next = s->pconn;
    s->pconn = p;
    (void)syncer_add_known(s->e, key, addr, sync_now_ms(s));
    sync_drain(s);
    return 0;
}

static int
op_learn_peer(void *ctx, const uint8_t key[static 32], const char *addr)
{
    struct sync *s = ctx;
    int rc;

    if (!addr_ok(addr))
        return PULL_ERR_INVAL;
    if (s->stopped)
        return 0;
    rc = syncer_add_known(s->e, key, addr, sync_now_ms(s));
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

static bool
op_reach_open(void *ctx)
{
    struct sync *s = ctx;

    return s->net != NULL && net_reach(s->net) == MSG_REACH_OPEN;
}

static int
op_probe(void *ctx, const uint8_t key[static 32], const char *addr, node_probe_fn cb, void *arg)
{
    struct sync *s = ctx;

    if (s->stopped)
        return PULL_ERR_STATE;
    if (!addr_ok(addr))
        return PULL_ERR_INVAL;
    return net_probe(s->net, key, addr, cb, arg);
}

static int
op_probe_invite(void *ctx, const uint8_t key[static 32], const char *addr,
                const uint8_t netkey[static 32], const uint8_t secret[static 16], node_probe_fn cb,
                void *arg)
{
    struct sync *s = ctx;

    if (s->stopped)
        return PULL_ERR_STATE;
    if (!addr_ok(addr))
        return PULL_ERR_INVAL;
    return net_probe_invite(s->net, key, addr, netkey, secret, cb, arg);
}

static void
op_probe_cancel(void *ctx, void *arg)
{
    struct sync *s = ctx;

    if (s->net != NULL)
        net_probe_cancel(s->net, arg);
}

static size_t
op_bootstrap_count(void *ctx)
{
    struct sync *s = ctx;
    struct syncer_known_info k;
    size_t n = 0;

    for (size_t i = 0; syncer_known_at(s->e, i, &k) == 0 && k.bootstrap; i++)
        n++;
    return n;
}

const struct node_netops sync_netops = {
    .peer_count = op_peer_count,
    .peer_at = op_peer_at,
    .connected_count = op_connected_count,
    .connect = op_connect,
    .learn_peer = op_learn_peer,
    .addresses = op_addresses,
    .listen_port = op_listen_port,
    .reach_open = op_reach_open,
    .probe = op_probe,
    .probe_cancel = op_probe_cancel,
    .bootstrap_count = op_bootstrap_count,
    .probe_invite = op_probe_invite,
};
