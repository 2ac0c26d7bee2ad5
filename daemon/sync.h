/*
 * sync: the executor of pull's protocol engine (proto/syncer.h). Every protocol rule -
 * gossip, reconciliation, bulk catch-up, WANT pacing, rate limits, mail store-and-forward,
 * known peers - lives in the engine, where the unit tests and the simulator drive it
 * without sockets; this part turns the engine's actions into net.c calls (send, dial,
 * close) and node writes (peers and mail rows join the node's batch), and net's events and
 * the node's commits into engine calls. It registers the network operations of node.h
 * (sync_netops.c: peers, `pull connect` and its wait, learned peers, addresses).
 *
 * The engine reads the store through the node: offer() is node_submit_async (a received
 * record is handed to the node's verifier threads and the engine hears GOSSIP_PENDING; its
 * verdict follows with syncer_verdict once it is committed or refused: duplicates, stale
 * versions and quota refusals are no one's fault, anything else counts against the
 * sender), has() and fetch() see pending records too (has() also those being verified),
 * and the recon set follows the commits through a node observer. Locally created records
 * are published, and verdicts passed on, from a zero-delay timer after their commit, never
 * from inside a callback.
 *
 * Peers persisted in STORE_PEERS: key(32) -> last_seen_s (u64 big-endian) || "host:port",
 * written when a session comes up with a known address and for the passive view when the
 * node stops; read at start (the engine keeps the most recently seen).
 */
#ifndef PULL_SYNC_H
#define PULL_SYNC_H

#include "daemon/node.h"

struct sync;

/* sync_new creates the net (listening) and the engine (its recon set built from the
 * store), registers itself with the node (the network operations of node.h and an observer
 * of commits) and feeds the engine the bootstrap, persisted peers and persisted mail. Returns 0 or
 * a PULL_ERR_* after logging why; *out is set whenever something was created (stop and free it). */
int sync_new(struct node *n, struct sync **out);

/* sync_stop has the engine say goodbye and persist the passive view (queued for the node's
 * last commit), then closes the net and the timer. Safe to call twice and with NULL. */
void sync_stop(struct sync *s);

/* sync_free frees what sync_new created (after the loop ended). NULL does nothing. */
void sync_free(struct sync *s);

/* sync_set_external sets (host, port) or clears (host NULL) the port a router maps to ours
 * (daemon/nat.c): it becomes the advertised address of the HELLOs and membership messages
 * sent from now on (net_set_external). */
void sync_set_external(struct sync *s, const char *host, uint16_t port);

/* The dyad service's hooks: an item addressed to this node arrived (verified, kept by the
 * engine; open it), and a peer came up. */
struct sync_mail_ops {
    void (*on_mail)(void *ctx, const uint8_t *item, size_t len, const uint8_t from[32]);
    void (*on_peer_up)(void *ctx, const uint8_t key[32]);
    bool (*known)(void *ctx, const uint8_t key[32]); /* a person of my dyads (may be NULL) */
    void *ctx;
};

/* sync_set_mail installs the hooks (copied; NULL removes them). */
void sync_set_mail(struct sync *s, const struct sync_mail_ops *ops);

/* sync_mail_post hands the engine an item this node sealed: kept until it expires, pushed
 * to its recipient or relayed (syncer_mail_post). Returns 0 or its refusal. */
int sync_mail_post(struct sync *s, const uint8_t *item, size_t len);

/* sync_mail_has: the engine holds mail id. */
bool sync_mail_has(const struct sync *s, const uint8_t id[static 32]);

/* sync_mail_each_inbox calls fn with every held item addressed to this node. */
void sync_mail_each_inbox(const struct sync *s,
                          void (*fn)(void *ctx, const uint8_t *item, size_t len), void *ctx);

struct syncer_stats;

/* sync_get_stats copies the engine's counters. */
void sync_get_stats(const struct sync *s, struct syncer_stats *out);

#endif
