/*
 * sync_int: what sync's rooms share (internal to daemon/sync*.c; sync.h is the manual).
 *
 * The rooms.
 *   sync.c         the executor: the engine's host (offer, has, fetch, the store's ids),
 *                  its actions turned into net calls and node writes, net's events and
 *                  the node's commits turned into engine calls, the one timer, calling
 *                  the dyad service's mail hooks, start and stop.
 *   sync_mail.c    the dyad service's way in: sync_set_mail, posting and looking up mail.
 *   sync_netops.c  the network operations of node.h (node_set_net) that the other floors
 *                  use: peers as `pull peers` shows them, `pull connect` and the wait for
 *                  its session, peers learned from LAN or bootstrap, the addresses.
 *   sync_dials.c   what the dials to each peer did lately: the warnings, `pull peers`.
 * None holds a protocol rule: those are proto/syncer's.
 */
#ifndef PULL_SYNC_INT_H
#define PULL_SYNC_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/net.h"
#include "daemon/sync.h"
#include "proto/syncer.h"

struct sync_pconnect;

#define SYNC_DIALS_MAX 256 /* peers whose dials are remembered (the oldest go) */
#define SYNC_WARN_AGAIN_MS                                                                         \
    600000 /* a peer that keeps failing the same way: one warning                                  \
              per 10 min */

/* What the dials to one peer did lately (sync_dials.c), for the warnings and `pull peers`. */
struct sync_dial {
    uint8_t key[32];
    char addr[NODE_ADDR_MAX]; /* the address dialed last */
    uint32_t fails;           /* failed dials since its last session */
    int err;
    enum net_fail kind;
    char reason[NODE_REASON_MAX];
    uint64_t first_fail_s, last_fail_s; /* of the failures since its last session */
    uint64_t last_ok_s;                 /* its last session came up (wall clock), 0: never */
    uint64_t warned_ms;                 /* the last warning (monotonic), 0: none yet */
    enum net_fail warned_kind;
};

/* One row of `pull peers`, as the snapshot op_peer_count takes (sync_netops.c). */
struct sync_peer_ref {
    uint8_t src; /* 0: gossip's i-th peer, 1: the engine's i-th known peer, 2: a dial row */
    uint32_t i;
};

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
    struct sync_dial *dials; /* sync_dials.c: at most SYNC_DIALS_MAX */
    size_t ndials;
    struct sync_peer_ref *snap; /* sync_netops.c: `pull peers` rows, valid until the loop
                                   runs again */
    size_t nsnap;
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

/* ---- the dials (sync_dials.c) ---- */

/* sync_dial_failed records a failed dial of key and warns about it at the default log
 * level when the peer is one the node is meant to reach (a bootstrap line, a peer it had
 * sessions with): once, again when the failure changes, and at most every
 * SYNC_WARN_AGAIN_MS otherwise, each time with the next attempt. Other peers' failures
 * are logged at info level. */
void sync_dial_failed(struct sync *s, const uint8_t key[32], const char *addr, int err,
                      enum net_fail kind, const char *reason);

/* sync_dial_up records that key's session came up (it was warned about: say it is back). */
void sync_dial_up(struct sync *s, const uint8_t key[32], const char *addr);

/* sync_dial_find returns the row of key, or NULL. */
const struct sync_dial *sync_dial_find(const struct sync *s, const uint8_t key[32]);

/* sync_next_retry_s: when key is dialed next, in wall-clock seconds, as far as the node
 * knows: 0 if unknown (gossip picks passive peers when it needs some) or none is planned
 * (the engine has other peers). */
uint64_t sync_next_retry_s(const struct sync *s, const uint8_t key[32]);

/* sync_dials_free frees the rows and the peers snapshot. */
void sync_dials_free(struct sync *s);

/* sync_connect_free forgets the waiting `pull connect`s without calling them (sync_free,
 * after sync_stop ended them). */
void sync_connect_free(struct sync *s);

#endif
