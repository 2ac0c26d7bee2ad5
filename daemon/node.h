/*
 * node: the ground floor of pulld - the event loop, the store, the search index, the
 * identity, and the one write batch. Every other part of the daemon stands on it and
 * registers with it; node.c calls nothing above it:
 *
 *   node.c        (this header) owns the loop, the store, the search index (lib/search.h,
 *                 fed by the commit path) and the batch that commits once per loop turn;
 *                 node_submit is the ONE way a record enters the store, node_kv_put /
 *                 node_kv_del the one way anything else is written.
 *   node_kin.c    the authors whose records the store budget keeps (node_keeps).
 *   net.c, net_conn.c  TCP listener and dialer, admission, Secret Handshake, frames,
 *                 HELLO/PING/BYE.
 *   node_mine.c   the latest version of each of my records, kept past its expiry.
 *   node_net.c    the network side below: what node_set_net registered, asked for by the
 *                 floors above (peers, connect, probes, addresses).
 *   sync.c        executes the protocol engine (proto/syncer.h) over net's connections;
 *                 sync_netops.c registers the network operations below (node_set_net).
 *   people.c      names, petnames, record handles and trust (daemon/people.h).
 *   dyads.c, dyads_cmd.c, lan.c  the dyad service and its commands, LAN discovery.
 *   ctl_*.c       the control socket and its command rooms.
 *   main.c        wires them together and owns start and stop.
 *
 * Threads: everything runs on the loop thread, and no function here may be called from
 * another thread, except signature checks and the commit's transaction: node_submit_async
 * hands records to the node's verifier threads (one per core, uv_available_parallelism)
 * and their results come back to the loop, which alone decides (ordering, replacement,
 * quotas); the loop hands each batch to the writer thread, which writes and flushes it
 * while the loop goes on, and acknowledges it when it is back (node_commit.c).
 *
 * The batch. node_submit verifies an envelope at once (signature, fields, expiry, and
 * record_admit's staleness and quota rule against the store and the pending batch) and
 * either refuses it (negative return, the callback is never called) or adds it to the
 * pending batch. node_kv_put and node_kv_del queue key-value writes (peers, dyads, mail),
 * and the expiry sweep joins the batch too. The batch is committed in ONE LMDB write
 * transaction (store_commit) from the end of the loop turn (uv_check), or earlier when it
 * is full (NODE_BATCH_MAX records or NODE_BATCH_KV_BYTES of key-value data); one batch is
 * committed at a time and the next one fills meanwhile (a full one waits for it). Only after
 * the commit are the record callbacks, the after-commit callbacks and the observers called,
 * so whatever is acknowledged to the CLI or announced to watchers is on disk.
 * node_has_record, node_fetch_record and node_kv_get see pending writes and the batch
 * being committed too.
 *
 * Records from outside (peers, imports) take node_submit_async: its cheap checks (size,
 * already stored, pending or being verified) run at once; decoding and the signature check
 * run on the verifier threads in jobs of up to NODE_JOB_MAX records (one hand-off per job,
 * not per record); the results are applied on the loop in submission order (the job that
 * finished first waits for the older ones), where record_admit and the batch work as for
 * node_submit. node_has_record sees records being verified. The work in verification is
 * bounded (NODE_VERIFY_MAX records, NODE_VERIFY_BYTES bytes): past that node_verify_busy
 * says so (net stops reading from peers until it clears, which is how a fast peer is slowed
 * down: by the flow control it already has), and at twice that node_submit_async refuses
 * with PULL_ERR_AGAIN.
 *
 * Observers (node_observe) hear, after each commit, of every record that became live, of
 * every record swept or evicted, and of the events parts publish with node_emit (a dyad
 * changed): this is how the parts above talk to each other without calling up.
 *
 * The store budget (limits.store_max_bytes, lib/store.h "Budget"). The node tells the
 * store whose records to keep: its own, and those of the people it deals with - the other
 * side of every dyad in the dyads table that this node proposed or accepted (a proposal
 * received and not accepted does not count: proposing costs a stranger nothing), and the
 * other side of every attestation naming this node. The set is read from the dyads table
 * at start and follows the writes to it and the attestations stored. node_submit refuses
 * a stranger's record over the budget's level before it joins the batch (PULL_ERR_QUOTA,
 * like the store would), so it is never forwarded.
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
#include "lib/search.h"
#include "lib/store.h"

#define NODE_BATCH_MAX 8192          /* records in one commit (verified ones may wait for more) */
#define NODE_JOB_MAX 256             /* records in one verification job */
#define NODE_VERIFY_MAX 2048         /* records in verification before node_verify_busy */
#define NODE_VERIFY_BYTES (2u << 20) /* envelope bytes in verification before it */
#define NODE_VERIFY_THREADS_MAX 64
#define NODE_BATCH_KV_BYTES (4u << 20) /* key-value bytes queued before an early commit */
#define NODE_OBSERVERS_MAX 8
#define NODE_ADDR_MAX 320 /* "ID@HOST:PORT" with an IPv6 host */

/* The node's counters, shown by `pull status --verbose` / `--json` ("counters"): listed
 * once here, X(name, what it counts). Each part increments its own. */
#define NODE_COUNTERS(X)                                                                           \
    X(records_new, "stored records that were new, any origin")                                     \
    X(records_local, "of which created or imported locally")                                       \
    X(records_dup, "refused as duplicate or stale")                                                \
    X(records_invalid, "refused as invalid (bad signature, fields, ...)")                          \
    X(records_quota, "refused over the per-author quota")                                          \
    X(records_swept, "expired records removed")                                                    \
    X(records_evicted, "strangers' records evicted for the store budget")                          \
    X(peers_evicted, "known peers forgotten to keep the peers table bounded")                      \
    X(commits, "write transactions")                                                               \
    X(commit_errors, "failed write transactions (disk full, ...)")                                 \
    X(bytes_in, "TCP bytes received from peers (all, handshake included)")                         \
    X(bytes_out, "TCP bytes sent to peers")                                                        \
    X(conns_in, "inbound connections accepted")                                                    \
    X(conns_out, "outbound dials started")                                                         \
    X(conns_refused, "inbound refused (limits, banned)")                                           \
    X(conns_limited, "of which over their address's or group's share")                             \
    X(conns_evicted, "not yet authenticated, evicted for a newcomer from a smaller source")        \
    X(handshakes_ok, "handshakes completed")                                                       \
    X(handshakes_failed, "handshakes failed")                                                      \
    X(handshakes_slow, "of which too slow: no first message or no HELLO in time")                  \
    X(peers_dropped, "closed for misbehaviour, slowness or limits")                                \
    X(frames_bad, "malformed or unexpected frames")                                                \
    X(recon_sessions, "reconciliation sessions that ended well")                                   \
    X(recon_failed, "reconciliation sessions that failed")                                         \
    X(ctl_clients, "control connections accepted")                                                 \
    X(ctl_bad, "control connections closed for protocol errors")                                   \
    X(msgs_unknown, "well-formed messages of a type this version ignores")                         \
    X(recon_limited, "reconciliation requests refused by the rate limits")

struct node_counters {
#define NODE_COUNTER_FIELD(name, what) uint64_t name;
    NODE_COUNTERS(NODE_COUNTER_FIELD)
#undef NODE_COUNTER_FIELD
};

struct node_batch;
struct node_kin;
struct node_netops;
struct invites;

struct node {
    uv_loop_t *loop;
    struct config cfg; /* the effective configuration (flags + config file) */
    const struct pull_env *env;
    struct ident self; /* the node's identity; its secret half is wiped by node_free */
    char self_text[IDENT_TEXT_LEN + 1];
    struct store *store;
    struct search_index *search; /* every live record, kept by the commit path */
    uint64_t started_ms;         /* env_now_ms at start */
    uint64_t started_s;          /* wall clock at start */
    bool stopping;
    struct node_counters counters;

    struct node_batch *batch;      /* node.c's pending writes and observers */
    struct node_kin *kin;          /* the authors whose records the budget keeps */
    const struct node_netops *net; /* registered by sync.c (node_set_net), may be NULL */
    void *net_ctx;
    struct invites *invites; /* the invitations handed out (daemon/invites.h; main.c owns
                                them), NULL if they could not be loaded */
    /* main.c's restart: stop every part, then start pulld again in the same process with
     * the same arguments (it reads its config files again). NULL: not offered. */
    void (*restart)(void *ctx);
    void *restart_ctx;
};

/* ---- node.c ---- */

/* node_new opens the data dir's store (cfg->data_dir must already be set up by
 * setup_data_dir, the identity loaded), builds the search index from it and starts the
 * batch and the expiry sweep. It starts no other part (main.c does). self is copied (the
 * caller wipes its own copy). Returns 0, or a PULL_ERR_* after logging a one-line reason. */
int node_new(uv_loop_t *loop, const struct config *cfg, const struct ident *self,
             struct node **out);

/* node_stop makes the last commit (everything the stopped parts queued: one commit) and
 * closes the node's handles; the loop then ends once every part closed its own. Stop the
 * parts above first. Safe to call twice. */
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
 * id_out (may be NULL) receives the record id whenever the envelope parsed. */
int node_submit(struct node *n, const uint8_t *env, size_t len, enum node_origin origin,
                const uint8_t *from, node_commit_fn cb, void *arg, uint8_t id_out[RECORD_ID_BYTES]);

/* Called once for a record given to node_submit_async, always on the loop thread and never
 * from inside node_submit_async: result 0 once the commit that stored it is done, else its
 * refusal - a validation error (bad signature, fields), PULL_ERR_EXPIRED, PULL_ERR_DUPLICATE,
 * PULL_ERR_STALE, PULL_ERR_QUOTA, the commit's error, or PULL_ERR_CLOSED when the node
 * stopped first. env/len are the record's bytes, id its id (valid during the call only). */
typedef void (*node_record_fn)(void *arg, int result, const uint8_t id[RECORD_ID_BYTES],
                               const uint8_t *env, size_t len);

/* node_submit_async hands an envelope from outside (len <= RECORD_ENVELOPE_MAX, copied) to
 * the verifier threads; once verified, it is admitted to the batch as by node_submit (and
 * refused the same way). id, if not NULL, is the envelope's BLAKE2b-256 as the caller
 * already computed it (else it is computed here). from is the sending peer's key for
 * NODE_ORIGIN_PEER, else NULL. Returns 0 (cb, which must not be NULL, will be called exactly
 * once), or a negative PULL_ERR_* and cb is never called: PULL_ERR_TOO_BIG (size),
 * PULL_ERR_DUPLICATE (stored, pending or being verified), PULL_ERR_AGAIN (twice the
 * verification budget is in use: try later or use node_submit), PULL_ERR_NOMEM,
 * PULL_ERR_STATE (the node is stopping). */
int node_submit_async(struct node *n, const uint8_t *env, size_t len,
                      const uint8_t id[RECORD_ID_BYTES], enum node_origin origin,
                      const uint8_t *from, node_record_fn cb, void *arg);

/* node_verify_busy: the verification budget (NODE_VERIFY_MAX records or NODE_VERIFY_BYTES)
 * is used up; whoever can wait (net, reading from peers) should until it clears. */
bool node_verify_busy(const struct node *n);

/* node_verify_threads: how many verifier threads run: uv_available_parallelism(), or
 * $PULL_VERIFY_THREADS (1..NODE_VERIFY_THREADS_MAX) when set (benches, tests). */
unsigned node_verify_threads(const struct node *n);

/* node_kv_put queues a write of val (len <= STORE_KV_MAX bytes, copied) under key in table
 * t for the next commit; node_kv_del queues a deletion. Later writes of the same key win.
 * Returns 0, PULL_ERR_TOO_BIG, PULL_ERR_NOMEM or PULL_ERR_STATE (after the last commit).
 * Use node_after_commit to act once the write is on disk. */
int node_kv_put(struct node *n, enum store_table t, const uint8_t key[static 32], const void *val,
                size_t len);
int node_kv_del(struct node *n, enum store_table t, const uint8_t key[static 32]);

/* node_peer_note queues a note for the statistics of a peers row (lib/store.h, struct
 * store_peer_stats; copied): what a session added - sessions = 1 and connected_s when one
 * ended, say. A key without a row is ignored. Same returns as node_kv_put. The records a
 * peer gives are counted by the node itself (node_submit's from). */
int node_peer_note(struct node *n, const uint8_t key[static 32],
                   const struct store_peer_stats *note);

/* node_keeps reports whether author's records are kept whatever the budget: the node's
 * own, and those of the people it deals with (see the overview). */
bool node_keeps(const struct node *n, const uint8_t author[static 32]);

/* node_kv_get appends the value of key to out as the next commit will leave it (pending
 * writes first, then the store). Returns 0 or PULL_ERR_NOT_FOUND (or out's error). */
int node_kv_get(struct node *n, enum store_table t, const uint8_t key[static 32],
                struct pull_wb *out);

/* Called after a commit: result 0, or the commit's error (nothing of it was stored). */
typedef void (*node_done_fn)(void *arg, int result);

/* node_after_commit calls fn(arg, result) once everything queued so far (records and
 * key-value writes) has been committed - after the commit that starts at the end of this
 * loop turn (or after the batch being committed, then that one), or after the early
 * commit of a full batch. If nothing is queued, fn runs at the end of the turn with
 * 0. Returns 0 (fn will be called exactly once, also at node_free with PULL_ERR_CLOSED if
 * the loop never got there), PULL_ERR_NOMEM or PULL_ERR_STATE (fn not called). */
int node_after_commit(struct node *n, node_done_fn fn, void *arg);

/* node_flush commits the pending batch now and waits for it (normally it is handed to the
 * writer at the end of the loop turn): first the batch being committed ends, then the
 * pending one is committed; their acknowledgements and callbacks run before it returns.
 * Called from within such a callback it returns 0 at once (what is pending waits for the
 * commit being ended). Returns 0 or the commit's error. */
int node_flush(struct node *n);

/* node_trim_soon drops the store's map pages from pulld's resident set on the next loop
 * turn (store_trim). Call it after a command that read many records (search, export), so
 * that reading doesn't leave the store's pages counted in pulld's memory. */
void node_trim_soon(struct node *n);

/* node_trim_pages_soon is node_trim_soon for a command that read a few records and freed
 * what it allocated (search): the store's pages only, without malloc_trim's walk of the
 * whole heap. */
void node_trim_pages_soon(struct node *n);

/* node_index_building: the search index is still being built from the store (a large
 * store at start, node_index.c): queries answer over the records indexed so far. */
bool node_index_building(const struct node *n);

/* node_has_record: stored, pending, or being verified. */
bool node_has_record(struct node *n, const uint8_t id[static RECORD_ID_BYTES]);

/* node_fetch_record copies a stored or pending envelope into buf (cap bytes), sets *len.
 * Returns 0, PULL_ERR_NOT_FOUND or PULL_ERR_TOO_BIG. */
int node_fetch_record(struct node *n, const uint8_t id[static RECORD_ID_BYTES], uint8_t *buf,
                      size_t cap, size_t *len);

/* ---- observers ---- */

/* A record that became live in a commit. */
struct node_stored {
    const uint8_t *id;          /* its record id */
    const uint8_t *replaced_id; /* the version of its slot it replaced, or NULL */
    const struct envelope *env;
    const struct record *rec;
    enum node_origin origin;
    const uint8_t *from; /* the peer that sent it (NODE_ORIGIN_PEER), else NULL */
};

/* Events that parts publish to each other through the node (node_emit). */
enum node_event {
    NODE_EV_DYAD = 1, /* a dyad of mine changed: data is its packed MessagePack map
                         (CONTRACT.md dyad JSON), len its size */
};

struct node_observer {
    void (*stored)(void *ctx, const struct node_stored *s);        /* may be NULL */
    void (*removed)(void *ctx, const uint8_t id[RECORD_ID_BYTES]); /* swept or evicted; may
                                                                      be NULL */
    void (*event)(void *ctx, enum node_event ev, const uint8_t *data, size_t len); /* may be NULL */
    void *ctx;
};

/* node_observe registers an observer (copied), called in registration order after each
 * commit (stored, removed) or node_emit (event). Observers may submit records and queue
 * writes: those join the next batch. Returns 0 or PULL_ERR_QUOTA (NODE_OBSERVERS_MAX). */
int node_observe(struct node *n, const struct node_observer *o);

/* node_unobserve removes the observer registered with ctx. */
void node_unobserve(struct node *n, void *ctx);

/* node_emit hands an event to every observer now; data is only read during the call. */
void node_emit(struct node *n, enum node_event ev, const uint8_t *data, size_t len);

/* ---- my records (node_mine.c) ---- */

/* node_mine_start keeps the latest version of each of my records in STORE_MINE (lib/store.h)
 * from now on, past its expiry, and copies there what the store holds already. Called by
 * node_new. Returns 0 or a PULL_ERR_*. */
int node_mine_start(struct node *n);

/* node_mine_key writes the STORE_MINE key of a slot of mine. */
void node_mine_key(const uint8_t slot[RECORD_SLOT_BYTES], uint8_t key[32]);

/* ---- the network side, registered by sync.c ---- */

#define NODE_REASON_MAX 160

/* One peer as `pull peers` shows it. */
struct node_peer_info {
    uint8_t key[32];
    char addr[NODE_ADDR_MAX]; /* "HOST:PORT" (advertised or observed), may be "" */
    const char *state;        /* "active", "passive", "connecting", "pending", "banned", or for
                                 peers the engine only remembers: "unreachable" (the last
                                 dial failed), "known" */
    bool connected;
    bool inbound;
    bool bootstrap; /* a bootstrap line of the configuration */
    int32_t score;
    uint64_t bytes_in, bytes_out; /* this connection (0 if not connected) */
    uint64_t since_s;             /* connection established at (unix seconds), 0 if none */
    bool has_skew;
    int64_t skew_ms; /* connected: its clock minus ours, from its HELLO (has_skew) */
    /* dials: the last failure (fails > 0), when the peer was last connected, the next
     * attempt (unix seconds, 0: unknown or none planned) */
    uint32_t fails;                   /* failed dials since it was last connected */
    const char *last_error_kind;      /* net_fail_name, NULL if none */
    char last_error[NODE_REASON_MAX]; /* "" if none */
    uint64_t last_error_s, last_seen_s, next_retry_s;
};

/* Called when a `pull connect` dial ends: 0 once the session is up, else the error and a
 * one-line reason. */
typedef void (*node_connect_fn)(void *arg, int result, const char *reason);

/* What a diagnostic dial found (node_probe). */
struct node_probe_result {
    int err;                      /* 0: the handshake and HELLO went through */
    const char *kind;             /* err != 0: net_fail_name ("refused", "timeout", "wrong_id",
                                     "other_network", ...) */
    char reason[NODE_REASON_MAX]; /* err != 0: one line for a person */
    uint32_t rtt_ms;              /* err == 0: from the dial to its HELLO */
    bool has_skew;
    int64_t skew_ms; /* err == 0 and has_skew: its clock minus ours */
    char agent[72];  /* err == 0: its HELLO's agent */
};

typedef void (*node_probe_fn)(void *arg, const struct node_probe_result *r);

/* What the network part offers the others (each with ctx first). */
struct node_netops {
    size_t (*peer_count)(void *ctx);
    int (*peer_at)(void *ctx, size_t i, struct node_peer_info *out);
    size_t (*connected_count)(void *ctx);
    int (*connect)(void *ctx, const uint8_t key[static 32], const char *addr, node_connect_fn cb,
                   void *arg);
    int (*learn_peer)(void *ctx, const uint8_t key[static 32], const char *addr);
    size_t (*addresses)(void *ctx, char (*out)[NODE_ADDR_MAX], size_t max);
    uint16_t (*listen_port)(void *ctx);
    bool (*reach_open)(void *ctx);
    int (*probe)(void *ctx, const uint8_t key[static 32], const char *addr, node_probe_fn cb,
                 void *arg);
    void (*probe_cancel)(void *ctx, void *arg);
    size_t (*bootstrap_count)(void *ctx);
    int (*probe_invite)(void *ctx, const uint8_t key[static 32], const char *addr,
                        const uint8_t netkey[static 32], const uint8_t secret[static 16],
                        node_probe_fn cb, void *arg);
};

/* node_set_net registers the network part (ops must outlive the node; NULL unregisters).
 * The node_* functions below answer "nothing" (0, PULL_ERR_STATE) without one. */
void node_set_net(struct node *n, const struct node_netops *ops, void *ctx);

/* node_peer_count / node_peer_at list connections first, then known peers. Indices are
 * valid until the loop runs again. node_peer_at returns 0 or PULL_ERR_NOT_FOUND. */
size_t node_peer_count(struct node *n);
int node_peer_at(struct node *n, size_t i, struct node_peer_info *out);

/* node_connected_count: peers with an established session. */
size_t node_connected_count(struct node *n);

/* node_connect dials key@addr ("HOST:PORT") now, and adds the peer to the known peers.
 * cb (may be NULL) is called exactly once if 0 is returned. Returns 0, PULL_ERR_INVAL
 * (bad address), PULL_ERR_EXISTS (already connected: cb not called), PULL_ERR_BAD_KEY
 * (own key), PULL_ERR_STATE (no network part, or stopping). */
int node_connect(struct node *n, const uint8_t key[static 32], const char *addr, node_connect_fn cb,
                 void *arg);

/* node_learn_peer: a peer was discovered (LAN, bootstrap): remember it, and dial it if the
 * node has room for more connections. Returns 0 or PULL_ERR_INVAL. */
int node_learn_peer(struct node *n, const uint8_t key[static 32], const char *addr);

/* node_addresses writes up to max dialable "ID@HOST:PORT" strings (the listen address;
 * for 0.0.0.0 / :: every non-internal interface address, loopback last). Returns how many. */
size_t node_addresses(struct node *n, char (*out)[NODE_ADDR_MAX], size_t max);

/* node_listen_port: the TCP port actually bound (after port 0 was resolved), 0 if none. */
uint16_t node_listen_port(struct node *n);

/* node_reach_open: our HELLO says every peer may dial us (a public advertised address, or a
 * port mapped on the router); false: only peers of our own network (net_set_external). */
bool node_reach_open(struct node *n);

/* node_probe dials key@addr to diagnose it (pull doctor): handshake and HELLO, then a
 * goodbye, without making it a peer. cb is called exactly once if 0 is returned, never
 * inside this call. Returns 0, PULL_ERR_EXISTS (connected or being dialed already: see
 * node_peer_at), PULL_ERR_BAD_KEY, PULL_ERR_INVAL (bad address), PULL_ERR_STATE. */
int node_probe(struct node *n, const uint8_t key[static 32], const char *addr, node_probe_fn cb,
               void *arg);

/* node_probe_invite redeems an invitation (pull join): it dials key@addr with the network
 * key netkey (which may differ from this node's), presents secret in its HELLO and waits
 * for the inviter's answer (proto/msg.h MSG_BYE_INVITE), without making it a peer. cb is
 * called exactly once if 0 is returned: err 0 if the inviter accepted (a use was taken
 * there), else the error and r->reason (the inviter's answer: PULL_ERR_QUOTA used up,
 * PULL_ERR_EXPIRED, PULL_ERR_NOT_FOUND unknown; or why the dial failed). Same returns as
 * node_probe. */
int node_probe_invite(struct node *n, const uint8_t key[static 32], const char *addr,
                      const uint8_t netkey[static 32], const uint8_t secret[static 16],
                      node_probe_fn cb, void *arg);

/* node_probe_cancel: no callback will come for the probes started with arg. */
void node_probe_cancel(struct node *n, void *arg);

/* node_bootstrap_count: how many bootstrap peers the configuration names (and the engine
 * took). */
size_t node_bootstrap_count(struct node *n);

#endif
