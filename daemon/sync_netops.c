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

static size_t
op_peer_count(void *ctx)
{
    struct sync *s = ctx;

    return syncer_peer_count(s->e);
}

static int
op_peer_at(void *ctx, size_t i, struct node_peer_info *out)
{
    struct sync *s = ctx;
    struct gossip_peer_info pi;

    memset(out, 0, sizeof(*out));
    if (syncer_peer_at(s->e, i, &pi) != 0)
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
        return PULL_ERR_EXISTS;
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

const struct node_netops sync_netops = {
    op_peer_count, op_peer_at,   op_connected_count, op_connect,
    op_learn_peer, op_addresses, op_listen_port,
};
