/*
 * node: one running pulld - the event loop, the store, the identity, and the seams between
 * the daemon's parts. This header is the only interface the daemon's modules share:
 *
 *   node.c        owns the loop, the store and the batch of records waiting for commit;
 *                 node_submit is the ONE way a record enters the store (from the CLI, an
 *                 import, a peer), and after each commit node.c tells the observers.
 *   net.c         TCP listener and dialer, Secret Handshake, frames, HELLO/PING/BYE,
 *                 per-peer limits (daemon/net.h, used by sync.c only).
 *   sync.c        gossip (proto/gossip) and reconciliation (proto/recon) over net's
 *                 connections; peers persisted in the store's peers table.
 *   ctl_server.c  the control socket (proto/ctl.h) and its commands; search.c ranks.
 *   lan.c         LAN discovery (UDP multicast + broadcast).
 *   dyads.c       dyads and their sealed mail (proto/dyad, proto/mail).
 *
 * Threads: everything runs on the loop thread. No function here may be called from another
 * thread.
 *
 * Records and commits. node_submit verifies an envelope at once (signature, fields,
 * expiry, quota, staleness against the store and the pending batch) and either refuses it
 * (negative return, the callback is never called) or adds it to the pending batch. The
 * batch is committed in ONE LMDB write transaction at the end of the loop turn (uv_check),
 * or earlier when it is full (NODE_BATCH_MAX). Only after the commit are the callback and
 * the observers called, so whatever is acknowledged to the CLI or announced to watchers
 * is on disk. node_has_record and node_fetch_record see pending records too, so gossip can
 * forward a record before its batch committed without asking for it twice.
 */
#ifndef PULL_NODE_H
#define PULL_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "lib/env.h"
#include "lib/ident.h"
#include "lib/record.h"
#include "lib/store.h"

#define NODE_BATCH_MAX 256
#define NODE_ADDR_MAX 320 /* "ID@HOST:PORT" with an IPv6 host */

struct net;
struct sync;
struct lan;
struct ctl_server;
struct dyads;

/* Counters shown by `pull status --json` ("counters"). Each part increments its own. */
struct node_counters {
    uint64_t records_new;     /* stored records that were new, any origin */
    uint64_t records_local;   /* of which created or imported locally */
    uint64_t records_dup;     /* refused as duplicate or stale */
    uint64_t records_invalid; /* refused as invalid (bad signature, fields, ...) */
    uint64_t records_quota;   /* refused over the per-author quota */
    uint64_t records_swept;   /* expired records removed */
    uint64_t commits;         /* write transactions */
    uint64_t commit_errors;   /* failed write transactions (disk full, ...) */
    uint64_t bytes_in;        /* TCP bytes received from peers (all, handshake included) */
    uint64_t bytes_out;       /* TCP bytes sent to peers */
    uint64_t conns_in;        /* inbound connections accepted */
    uint64_t conns_out;       /* outbound dials started */
    uint64_t conns_refused;   /* inbound refused (limits, banned) */
    uint64_t handshakes_ok;
    uint64_t handshakes_failed;
    uint64_t peers_dropped;  /* closed for misbehaviour, slowness or limits */
    uint64_t frames_bad;     /* malformed or unexpected frames */
    uint64_t recon_sessions; /* reconciliation sessions that ended well */
    uint64_t recon_failed;
    uint64_t ctl_clients;   /* control connections accepted */
    uint64_t ctl_bad;       /* control connections closed for protocol errors */
    uint64_t msgs_unknown;  /* well-formed messages of a type this version ignores */
    uint64_t recon_limited; /* reconciliation requests refused by the per-peer rate */
};

struct node {
    uv_loop_t *loop;
    struct config cfg; /* the effective configuration (flags + config file) */
    const struct pull_env *env;
    struct ident self; /* the node's identity; its secret half is wiped by node_free */
    char self_text[IDENT_TEXT_LEN + 1];
    struct store *store;
    uint64_t started_ms; /* env_now_ms at start */
    uint64_t started_s;  /* wall clock at start */
    bool stopping;
    struct node_counters counters;

    /* the parts, each owned by its module */
    struct net *net;
    struct sync *sync;
    struct lan *lan;
    struct ctl_server *ctl;
    struct dyads *dyads;

    struct node_batch *batch; /* node.c's pending records */
};

/* ---- node.c ---- */

/* node_new opens the data dir's store (cfg->data_dir must already be set up by
 * setup_data_dir, the identity loaded), and creates every part: net (listening), sync,
 * ctl_server, lan (unless cfg->lan is false), dyads. self is copied (the caller wipes its
 * own copy). Returns 0, or a PULL_ERR_* after logging a one-line reason. */
int node_new(uv_loop_t *loop, const struct config *cfg, const struct ident *self,
             struct node **out);

/* node_stop starts a clean shutdown: flush the pending batch, BYE to every peer, close the
 * control socket and LAN sockets; the loop then ends by itself. Safe to call twice. */
void node_stop(struct node *n);

/* node_free frees everything (after uv_run returned). node_free(NULL) does nothing. */
void node_free(struct node *n);

/* node_now_ms / node_now_s: monotonic milliseconds and wall-clock seconds. */
uint64_t node_now_ms(const struct node *n);
uint64_t node_now_s(const struct node *n);

/* Where a submitted record comes from. */
enum node_origin {
    NODE_ORIGIN_LOCAL = 0,  /* created by this node (record.add, renew, withdraw, dyads) */
    NODE_ORIGIN_IMPORT = 1, /* a bundle imported through the CLI */
    NODE_ORIGIN_PEER = 2,   /* received from a peer (gossip, reconciliation) */
};

/* Called once the record's batch has committed (result 0, or the store's refusal:
 * PULL_ERR_DUPLICATE, PULL_ERR_STALE, PULL_ERR_QUOTA, PULL_ERR_STORE_FULL, ...). */
typedef void (*node_commit_fn)(void *arg, int result, const uint8_t id[RECORD_ID_BYTES]);

/* node_submit verifies the envelope (len <= RECORD_ENVELOPE_MAX) and queues it for the
 * next commit. from is the sending peer's key for NODE_ORIGIN_PEER, else NULL. Returns 0
 * (queued: cb, if not NULL, will be called exactly once), or a negative PULL_ERR_* (the
 * validation error, PULL_ERR_DUPLICATE, PULL_ERR_STALE, PULL_ERR_QUOTA, PULL_ERR_STATE once
 * node_stop made its last commit; cb not called).
 * id_out (may be NULL) receives the record id whenever the envelope parsed. A locally
 * originated or imported record is also published to the network after its commit. */
int node_submit(struct node *n, const uint8_t *env, size_t len, enum node_origin origin,
                const uint8_t *from, node_commit_fn cb, void *arg, uint8_t id_out[RECORD_ID_BYTES]);

/* node_flush commits the pending batch now (normally done at the end of the loop turn).
 * Returns 0 or the commit's error. */
int node_flush(struct node *n);

/* node_trim_soon drops the store's map pages from pulld's resident set on the next loop
 * turn (store_trim). Call it after a command that read many records (search, export), so
 * that reading doesn't leave the store's pages counted in pulld's memory. */
void node_trim_soon(struct node *n);

/* node_has_record: stored or pending. */
bool node_has_record(struct node *n, const uint8_t id[static RECORD_ID_BYTES]);

/* node_fetch_record copies a stored or pending envelope into buf (cap bytes), sets *len.
 * Returns 0, PULL_ERR_NOT_FOUND or PULL_ERR_TOO_BIG. */
int node_fetch_record(struct node *n, const uint8_t id[static RECORD_ID_BYTES], uint8_t *buf,
                      size_t cap, size_t *len);

/* ---- sync.c / net.c: what the other parts may ask of the network side ---- */

/* One peer as `pull peers` shows it. */
struct node_peer_info {
    uint8_t key[32];
    char addr[NODE_ADDR_MAX]; /* "HOST:PORT" (advertised or observed), may be "" */
    const char *state;        /* "active", "passive", "connecting", "pending", "banned" */
    bool connected;
    bool inbound;
    int32_t score;
    uint64_t bytes_in, bytes_out; /* this connection (0 if not connected) */
    uint64_t since_s;             /* connection established at (unix seconds), 0 if none */
};

/* node_peer_count / node_peer_at list connections first, then known peers. Indices are
 * valid until the loop runs again. node_peer_at returns 0 or PULL_ERR_NOT_FOUND. */
size_t node_peer_count(struct node *n);
int node_peer_at(struct node *n, size_t i, struct node_peer_info *out);

/* node_connected_count: peers with an established session. */
size_t node_connected_count(struct node *n);

/* Called when a `pull connect` dial ends: 0 once the session is up, else the error and a
 * one-line reason. */
typedef void (*node_connect_fn)(void *arg, int result, const char *reason);

/* node_connect dials key@addr ("HOST:PORT") now, and adds the peer to the known peers.
 * cb (may be NULL) is called exactly once if 0 is returned. Returns 0, PULL_ERR_INVAL
 * (bad address), PULL_ERR_EXISTS (already connected: cb not called), PULL_ERR_BAD_KEY
 * (own key). */
int node_connect(struct node *n, const uint8_t key[static 32], const char *addr, node_connect_fn cb,
                 void *arg);

/* node_learn_peer: a peer was discovered (LAN, bootstrap): remember it, and dial it if the
 * node has room for more connections. Returns 0 or PULL_ERR_INVAL. */
int node_learn_peer(struct node *n, const uint8_t key[static 32], const char *addr);

/* node_addresses writes up to max dialable "ID@HOST:PORT" strings (the listen address;
 * for 0.0.0.0 / :: every non-internal interface address, loopback last). Returns how many. */
size_t node_addresses(struct node *n, char (*out)[NODE_ADDR_MAX], size_t max);

/* node_listen_port: the TCP port actually bound (after port 0 was resolved). */
uint16_t node_listen_port(const struct node *n);

/* node_send_direct sends one wire message to a connected peer (dyad messages and mail).
 * Returns 0, PULL_ERR_NOT_FOUND (not connected) or PULL_ERR_QUOTA (its queue is full). */
int node_send_direct(struct node *n, const uint8_t key[static 32], const uint8_t *msg, size_t len);

/* ---- observers, called by node.c after each commit (implemented by their modules) ---- */

/* sync.c: record id became live (replaced_id, if not NULL, stopped being live). */
void sync_on_stored(struct node *n, const uint8_t id[static RECORD_ID_BYTES],
                    const uint8_t *replaced_id, const uint8_t *env, size_t len,
                    enum node_origin origin);
/* sync.c: record id stopped being live (expired and swept). */
void sync_on_removed(struct node *n, const uint8_t id[static RECORD_ID_BYTES]);

/* ctl_server.c: a new live record (for watch streams and match notifications). */
void ctl_server_on_stored(struct node *n, const struct envelope *env, const struct record *rec,
                          enum node_origin origin);

/* dyads.c: a new live record (attestations, records dyads refer to). */
void dyads_on_stored(struct node *n, const struct envelope *env, const struct record *rec);

/* ---- events to the control socket's watchers ---- */

/* ctl_server.c: tell the watchers (`pull watch`) that a dyad of mine changed: dyad[0..len)
 * is the packed MessagePack map of the dyad (proto/ctl.h, CONTRACT.md dyad JSON), sent as
 * {"event": "dyad", "dyad": map} to every watch without a query or with mine = true. The
 * bytes are copied; an invalid map is ignored. */
void ctl_server_emit_dyad(struct node *n, const uint8_t *dyad, size_t len);

/* ---- part lifecycles (each module implements its own) ---- */
int ctl_server_start(struct node *n); /* listen on DATA_DIR/pulld.sock, 0600 */
void ctl_server_stop(struct node *n); /* close listener and clients (streams get more=false) */
void ctl_server_free(struct node *n);
int lan_start(struct node *n); /* no-op returning 0 when !n->cfg.lan */
/* LAN discovery's counters, for `pull status` ("lan"). */
struct lan_stats {
    bool running; /* the UDP socket is open */
    uint64_t rx, rx_bad, rx_limited, rx_other_net, learned, tx, tx_err;
};
void lan_get_stats(struct node *n, struct lan_stats *out); /* zeros when not running */
void lan_stop(struct node *n);
void lan_free(struct node *n);
int dyads_start(struct node *n);
void dyads_stop(struct node *n);
void dyads_free(struct node *n);
/* dyads.c: a dyad wire message (MSG_MAIL, MSG_MAIL_IHAVE) from connected peer `from`.
 * Returns 0 or a PULL_ERR_* that counts against the peer. */
int dyads_on_msg(struct node *n, const uint8_t from[static 32], const uint8_t *msg, size_t len);
/* dyads.c: a peer connected (deliver queued mail) / disconnected. */
void dyads_on_peer_up(struct node *n, const uint8_t key[static 32]);
/* dyads.c: dyads of author completed and attested (attestation records stored here that
 * name author as author or peer, counted once per dyad even if both sides published one)
 * and its distinct counterparts in them. For `pull show AUTHOR` and status. Returns 0 or
 * a store error (outputs are then 0). */
int dyads_author_stats(struct node *n, const uint8_t author[32], uint32_t *completed,
                       uint32_t *counterparts);

#endif
