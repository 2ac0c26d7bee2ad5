/*
 * sync: the glue between the network (net.c) and the protocol engines - one gossip engine
 * (proto/gossip.h) for membership and dissemination, one recon engine (proto/recon.h) per
 * connection for anti-entropy over one shared recon_set that follows the store - and the
 * persisted peer list (the store's STORE_PEERS table).
 *
 * The recon set holds exactly the ids store_iter_ids visits: every stored record,
 * tombstones and records past their expiry but not yet swept included. node.c's observers
 * keep it so: sync_on_stored adds the new id and removes the one it replaced,
 * sync_on_removed removes a swept id. Both run right after the commit, before any engine
 * runs again, so a session's iterator and the set never disagree.
 *
 * Engines are driven as their headers say: after every call, the actions are drained
 * (sync_drain) and one timer is re-armed at the earliest deadline. Callbacks from the
 * engines (offer, has, fetch) never call back into an engine: locally created records are
 * published from a zero-delay timer, not from inside a commit that may run within an
 * offer() callback.
 *
 * Peers in STORE_PEERS: key(32) -> last_seen_s(u64 big-endian) || "host:port". Written when
 * a session comes up with a known address and for the passive view at shutdown; read at
 * start (most recently seen first, at most SYNC_PEERS_LOAD_MAX) into the gossip engine,
 * after the bootstrap lines.
 */
#ifndef PULL_SYNC_H
#define PULL_SYNC_H

#include "daemon/node.h"

#define SYNC_PEERS_LOAD_MAX 256
#define SYNC_PEER_MAX_AGE_S (30u * 86400u)

struct sync;

/* sync_new builds the recon set from the store, creates the gossip engine and the net
 * (listening), registers itself with the node (the network operations of node.h and an
 * observer of commits) and feeds bootstrap and persisted peers. Returns 0 or a PULL_ERR_*
 * after logging why; *out is set whenever something was created (stop and free it). */
int sync_new(struct node *n, struct sync **out);

/* sync_stop saves the known peers (queued for the node's last commit), says goodbye to the
 * gossip peers, closes the net and the timers. Safe to call twice and with NULL. */
void sync_stop(struct sync *s);

/* sync_free frees what sync_new created (after the loop ended). NULL does nothing. */
void sync_free(struct sync *s);

/* The dyad service's hooks: mail messages (MSG_MAIL, MSG_MAIL_IHAVE) from a connected
 * peer (a negative return counts against it), and a peer that came up. */
struct sync_mail_ops {
    int (*on_msg)(void *ctx, const uint8_t from[32], const uint8_t *msg, size_t len);
    void (*on_peer_up)(void *ctx, const uint8_t key[32]);
    void *ctx;
};

/* sync_set_mail installs the hooks (copied; NULL removes them). */
void sync_set_mail(struct sync *s, const struct sync_mail_ops *ops);

/* sync_send sends one wire message to a connected peer (dyad mail). Returns 0,
 * PULL_ERR_NOT_FOUND (not connected) or PULL_ERR_QUOTA (its queue is full). */
int sync_send(struct sync *s, const uint8_t key[static 32], const uint8_t *msg, size_t len);

#endif
