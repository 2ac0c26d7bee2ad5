/*
 * sync_int: what sync's two rooms share (internal to daemon/sync*.c; sync.h is the
 * manual).
 *
 * The rooms.
 *   sync.c         the executor: the engine's host (offer, has, fetch, the store's ids),
 *                  its actions turned into net calls and node writes, net's events and
 *                  the node's commits turned into engine calls, the one timer, the dyad
 *                  service's mail hooks, start and stop.
 *   sync_netops.c  the network operations of node.h (node_set_net) that the other floors
 *                  use: peers as `pull peers` shows them, `pull connect` and the wait for
 *                  its session, peers learned from LAN or bootstrap, the addresses.
 * Neither holds a protocol rule: those are proto/syncer's.
 */
#ifndef PULL_SYNC_INT_H
#define PULL_SYNC_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/net.h"
#include "daemon/sync.h"
#include "proto/syncer.h"

struct sync_pconnect;

struct sync {
    struct node *n;
    struct net *net;
    struct syncer *e;
    struct sync_mail_ops mail; /* the dyad service's hooks (sync_set_mail) */
    uv_timer_t timer;
    bool timer_init, stopped, draining;
    struct sync_pconnect *pconn; /* `pull connect`s waiting (sync_netops.c) */
    struct syncer_stats last;    /* the engine's counters already added to the node's */
    char advertised[GOSSIP_ADDR_MAX + 1];
};

static inline uint64_t
sync_now_ms(const struct sync *s)
{
    return node_now_ms(s->n);
}

/* ---- the executor (sync.c) ---- */

/* sync_drain executes the engine's actions and re-arms the timer (for the engine's next
 * deadline or the earliest sync_connect_deadline). Does nothing while it runs already. */
void sync_drain(struct sync *s);

/* ---- the network operations (sync_netops.c) ---- */

/* The operations sync registers with node_set_net (ctx: the struct sync). */
extern const struct node_netops sync_netops;

/* sync_connect_done ends the waiting `pull connect`s for key (all of them for NULL): each
 * callback is called once with err and reason, and forgotten. */
void sync_connect_done(struct sync *s, const uint8_t *key, int err, const char *reason);

/* sync_connect_deadline: when the earliest waiting `pull connect` gives up, UINT64_MAX if
 * none waits. */
uint64_t sync_connect_deadline(const struct sync *s);

/* sync_connect_expire ends, with PULL_ERR_TIMEOUT, the waiting `pull connect`s of the
 * first key found whose deadline is past now; the others whose deadline is past make the
 * timer come back at once (sync_connect_deadline). */
void sync_connect_expire(struct sync *s, uint64_t now);

/* sync_connect_free forgets the waiting `pull connect`s without calling them (sync_free,
 * after sync_stop ended them). */
void sync_connect_free(struct sync *s);

#endif
