/*
 * node_net: the network side of the node (node.h, "the network side"): the operations the
 * network part registered with node_set_net, answered "nothing" without one.
 */
#include <string.h>

#include "daemon/node.h"
#include "lib/err.h"

void
node_set_net(struct node *n, const struct node_netops *ops, void *ctx)
{
    n->net = ops;
    n->net_ctx = ops != NULL ? ctx : NULL;
}

size_t
node_peer_count(struct node *n)
{
    return n->net != NULL ? n->net->peer_count(n->net_ctx) : 0;
}

int
node_peer_at(struct node *n, size_t i, struct node_peer_info *out)
{
    if (n->net == NULL) {
        memset(out, 0, sizeof(*out));
        return PULL_ERR_NOT_FOUND;
    }
    return n->net->peer_at(n->net_ctx, i, out);
}

size_t
node_connected_count(struct node *n)
{
    return n->net != NULL ? n->net->connected_count(n->net_ctx) : 0;
}

int
node_connect(struct node *n, const uint8_t key[static 32], const char *addr, node_connect_fn cb,
             void *arg)
{
    if (n->net == NULL || n->stopping)
        return PULL_ERR_STATE;
    return n->net->connect(n->net_ctx, key, addr, cb, arg);
}

int
node_learn_peer(struct node *n, const uint8_t key[static 32], const char *addr)
{
    if (n->net == NULL || n->stopping)
        return 0;
    return n->net->learn_peer(n->net_ctx, key, addr);
}

size_t
node_addresses(struct node *n, char (*out)[NODE_ADDR_MAX], size_t max)
{
    return n->net != NULL ? n->net->addresses(n->net_ctx, out, max) : 0;
}

bool
node_reach_open(struct node *n)
{
    return n->net != NULL && n->net->reach_open != NULL && n->net->reach_open(n->net_ctx);
}

uint16_t
node_listen_port(struct node *n)
{
    return n->net != NULL ? n->net->listen_port(n->net_ctx) : 0;
}

int
node_probe(struct node *n, const uint8_t key[static 32], const char *addr, node_probe_fn cb,
           void *arg)
{
    if (n->net == NULL || n->stopping)
        return PULL_ERR_STATE;
    return n->net->probe(n->net_ctx, key, addr, cb, arg);
}

int
node_probe_invite(struct node *n, const uint8_t key[static 32], const char *addr,
                  const uint8_t netkey[static 32], const uint8_t secret[static 16],
                  node_probe_fn cb, void *arg)
{
    if (n->net == NULL || n->net->probe_invite == NULL || n->stopping)
        return PULL_ERR_STATE;
    return n->net->probe_invite(n->net_ctx, key, addr, netkey, secret, cb, arg);
}

void
node_probe_cancel(struct node *n, void *arg)
{
    if (n->net != NULL)
        n->net->probe_cancel(n->net_ctx, arg);
}

size_t
node_bootstrap_count(struct node *n)
{
    return n->net != NULL ? n->net->bootstrap_count(n->net_ctx) : 0;
}
