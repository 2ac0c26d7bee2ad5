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

/* sync_new builds the recon set from the store, creates the gossip engine and the net
 * (listening; n->net), feeds bootstrap and persisted peers, and stores itself in n->sync.
 * Returns 0 or a PULL_ERR_* after logging why. */
int sync_new(struct node *n);

/* sync_stop saves the known peers, says goodbye to the gossip peers, closes the net and the
 * timers. Safe to call twice. */
void sync_stop(struct node *n);

/* sync_free frees what sync_new created (after the loop ended). */
void sync_free(struct node *n);

#endif
