/*
 * syncer: one node's protocol engine, sans-I/O. Every per-peer rule that decides what a
 * node sends, asks for, keeps or refuses lives here, so that pulld (daemon/sync.c, its
 * executor) and the simulator (tests/sim) run exactly the same code:
 *
 *   - membership and dissemination: one gossip engine (proto/gossip.h, HyParView +
 *     Plumtree), fed the bootstrap peers, the persisted known peers and LAN discoveries,
 *     and fed them again (with a growing gap) whenever the node is left without an active
 *     peer, so it rejoins after a partition;
 *   - anti-entropy: one recon engine (proto/recon.h) per connection over one shared
 *     recon_set that follows the store; the dialer reconciles on connect, every node
 *     reconciles every sync_interval_ms with a random active peer, a session that wanted
 *     ids is followed by another once they are in, a session that failed to peel is retried
 *     salted; RECON_REQ is rate-limited per peer (salted ones much more); while records
 *     this node asked for are coming from one peer (a RECON_BULK it sent, ids it wants, a
 *     session it started), it starts no other catch-up and defers its other peers'
 *     requests (RECON_ERR "busy catching up", retried), so the same records don't come twice;
 *   - bulk catch-up (RECON_BULK, PROTOCOL.md section 11): a node holding at most
 *     MSG_BULK_MAX records lists them all instead of reconciling; the receiver announces
 *     the rest (RECON_HAVE) from a pass over its store, one chunk after the peer WANTed
 *     most of the last, so what it sends stays a small multiple of what the peer asked
 *     for (at most one served per source per SYNCER_BULK_GAP_MS);
 *   - strangers: reconciliation and bulk are served only to peers in the active view, their
 *     rate limits and a budget of symbols are kept per key and per address group
 *     (gossip_addr_group) across connections, so new keys and new connections reset
 *     nothing;
 *   - flow: ids to push and ids to want wait in bounded per-peer queues; WANTs are paced
 *     below the peer's serve queue (at most SYNCER_WANT_INFLIGHT ids asked and not yet
 *     answered), reconciliation symbols are produced only while the peer's unflushed bytes
 *     stay under SYNCER_QUEUE_HIGH;
 *   - misbehaviour: gossip scores and bans peers; reconciliation and mail errors count
 *     too, and past SYNCER_BAD_MAX the peer is dropped;
 *   - mail store-and-forward (proto/mail.h): sealed items for other nodes are kept under
 *     the relay quotas and offered to peers (MSG_MAIL_IHAVE, MSG_MAIL), items addressed to
 *     this node are kept (so offers of them are answered "have") and handed to the host,
 *     this node's own items are kept until they expire and announced to every peer that
 *     connects (the recipient asks for those it lacks); expired items are swept.
 *
 * Driving contract (like gossip.h):
 *   - Every entry point takes now_ms, monotonic and never decreasing; wall-clock seconds
 *     (peer ages, mail expiry) come from the env given to syncer_new, and so do randomness
 *     and memory.
 *   - After EVERY call, the host drains syncer_poll_action until it returns false and
 *     executes each action in order, then arms one timer at syncer_next_deadline() and
 *     calls syncer_on_timeout when it fires (early calls are harmless):
 *       SEND(peer, data, counted)  write one message (one frame) to peer's connection and
 *                                  report it with syncer_on_flushed once written (or dropped
 *                                  with the connection);
 *       CONNECT(peer, addr)        dial; report syncer_on_connected or syncer_on_disconnected;
 *       DISCONNECT(peer, bye, text) flush what is queued, send BYE (bye, text), close; the
 *                                  engine has already forgotten the connection: do not report
 *                                  it back;
 *       PUT(table, key, data)      store data under key in the host's key-value table
 *       DEL(table, key)            (SYNCER_TABLE_PEERS, SYNCER_TABLE_MAIL) with its next
 *                                  commit;
 *       MAIL(data, peer)           a new mail item addressed to this node arrived from peer
 *                                  (already verified and kept): open it (mail_open).
 *   - The host reports each established connection once (syncer_on_connected, with the
 *     HELLO's feature bits), its loss once (syncer_on_disconnected) unless the engine closed
 *     it, and every received message whole (syncer_on_message).
 *   - Records: the engine never stores envelopes. It asks the host through struct
 *     syncer_host: offer() for every received envelope (verify, store, say NEW / DUPLICATE /
 *     INVALID), has(), fetch(), each_id() (the ids the store holds, for the recon set) and
 *     each_key() (a time-ordered pass, for bulk catch-up). Callbacks run synchronously inside
 *     an engine call and must not call into the engine, except syncer_on_stored and
 *     syncer_on_removed, which may be called from inside offer() (a commit that a full
 *     batch forced): they only record what changed, the rest waits for the end of the
 *     outermost call.
 *   - The recon set must follow the store: the host calls syncer_on_stored after each
 *     commit for every record that became live (with the version it replaced) and
 *     syncer_on_removed for every record swept. A locally created record (local = true) is
 *     published to the network.
 *
 * Ownership: the engine copies what it keeps. syncer_poll_action hands data over to the
 * caller (release with syncer_action_release). Thread safety: none; one engine per thread.
 */
#ifndef PULL_SYNCER_H
#define PULL_SYNCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/env.h"
#include "proto/gossip.h"
#include "proto/mail.h"
#include "proto/recon.h"

/* Reconciliation symbols wait while a peer has this many unflushed bytes. */
#define SYNCER_QUEUE_HIGH (512u * 1024u)
/* Ids waiting for gossip_push / gossip_want, per peer. */
#define SYNCER_PUSH_BACKLOG_MAX 200000
#define SYNCER_WANT_BACKLOG_MAX 1000000
/* Ids asked for and not answered yet: below the peer's serve queue (gossip serve_max). */
#define SYNCER_WANT_INFLIGHT 768
/* No answer for this long: ask for more anyway. */
#define SYNCER_WANT_STALL_MS 2000
/* A session that wanted ids is followed by another once they arrived. */
#define SYNCER_CATCHUP_AGAIN_MS 1500
/* RECON_REQ from one source: at most one per gap; salted ones (a pass over the store) rarer. */
#define SYNCER_REQ_GAP_MS 1000
#define SYNCER_REQ_SALTED_GAP_MS 60000
/* Protocol errors (reconciliation, bulk, mail) before a peer is dropped. */
#define SYNCER_BAD_MAX 8
/* Alone: feed the known peers to gossip again after this, doubling up to the max. */
#define SYNCER_REJOIN_MIN_MS 1000
#define SYNCER_REJOIN_MAX_MS 15000
/* Bulk catch-up: one served per peer per gap; the store is read in chunks of this many
 * ids when fewer than SYNCER_BULK_LOW wait to be pushed; after sending a RECON_BULK, no
 * reconciliation with that peer until its records stopped coming for SYNCER_BULK_QUIET_MS. */
#define SYNCER_BULK_GAP_MS 60000
#define SYNCER_BULK_CHUNK 1024 /* = MSG_HAVE_MAX */
#define SYNCER_BULK_FIRST 64   /* the first chunk; each one taken doubles the next */
#define SYNCER_BULK_LOW 256
#define SYNCER_BULK_QUIET_MS 5000
/* Chunks announced whose RECON_TAKE has not come yet: with one, the link idled for a round
 * trip after every chunk (the next was announced only after the last one's records had
 * gone out, behind them); with two, the next chunk's records follow right behind. */
#define SYNCER_BULK_AHEAD 2
/* What one source may ask of this node, kept per key AND per address group across
 * connections (SYNCER_SOURCES_MAX remembered): reconciliation symbols served to a group per
 * window; a RECON_HAVE chunk waits until the peer WANTed most of the last one (or
 * SYNCER_HAVE_STALL_MS). Only peers in the active view are served at all. */
#define SYNCER_SOURCES_MAX 512
#define SYNCER_SERVE_WINDOW_MS 600000
#define SYNCER_SERVE_BUDGET (16u << 20)
#define SYNCER_HAVE_STALL_MS 2000
/* Known peers: at most this many persisted ones are fed to gossip, none older than this. */
#define SYNCER_PEERS_LOAD_MAX 256
#define SYNCER_PEER_MAX_AGE_S (30u * 86400u)
#define SYNCER_PEERS_SAVE_MAX 64 /* passive peers persisted when leaving */
#define SYNCER_BOOTSTRAP_MAX 64
/* Mail: items accepted from one MSG_MAIL; items in my inbox per sender; sweep period. */
#define SYNCER_MAIL_REFS_MAX 512
#define SYNCER_INBOX_PER_SENDER 256
/* Mail from senders this node doesn't know, and for recipients it doesn't know: a pool each
 * (the newest item pushes out the oldest), a small share per sender. */
#define SYNCER_STRANGERS_MAX 512
#define SYNCER_STRANGER_ITEMS 4
#define SYNCER_MAIL_SWEEP_MS 60000

/* The host's key-value tables the engine writes (PUT / DEL actions). */
enum syncer_table {
    SYNCER_TABLE_PEERS = 0, /* key: node key; value: last_seen_s (u64 BE) || "host:port" */
    SYNCER_TABLE_MAIL = 1,  /* key: mail id; value: the item */
};

/* The host's store, as the engine reads it (see the contract above). */
struct syncer_host {
    enum gossip_verdict (*offer)(void *ctx, const uint8_t *env, size_t len,
                                 const uint8_t id[GOSSIP_ID_BYTES],
                                 const uint8_t from[GOSSIP_KEY_BYTES]);
    bool (*has)(void *ctx, const uint8_t id[GOSSIP_ID_BYTES]);
    int (*fetch)(void *ctx, const uint8_t id[GOSSIP_ID_BYTES], uint8_t *buf, size_t cap,
                 size_t *len);
    /* each_id: visit every stored id (any order), as recon_each_fn. */
    int (*each_id)(void *ctx, recon_visit_fn visit, void *vctx);
    /* each_key: visit stored (created, id) with created >= since in (created, id) order;
     * stop and return visit's value when it is non-zero; 0 at the end, or a PULL_ERR_*. */
    int (*each_key)(void *ctx, uint64_t since,
                    int (*visit)(void *vctx, uint64_t created, const uint8_t id[32]), void *vctx);
    /* known (may be NULL: everyone is): whether the host knows this key - an author of
     * records it holds, a person of its dyads. Mail from and for keys nobody knows gets the
     * small pools (syncer_mail.c); the engine adds the peers it knows itself. */
    bool (*known)(void *ctx, const uint8_t key[32]);
    /* log (may be NULL): one line about what the engine did (level: 0 error .. 3 debug). */
    void (*log)(void *ctx, int level, const char *line);
    void *ctx;
};

struct syncer_config {
    struct gossip_config gossip;  /* membership and dissemination (callbacks are the engine's) */
    uint32_t sync_interval_ms;    /* periodic reconciliation, default 30000; 0: never */
    uint32_t recon_max_symbols;   /* per session, 0: RECON_MAX_SYMBOLS_DEFAULT */
    uint32_t recon_cache_symbols; /* the recon set's cache, 0: RECON_CACHE_DEFAULT */
    bool recon;                   /* start reconciliations (on connect, periodic), default true;
                                     false: gossip only (peers' sessions are still answered) */
    bool bulk;                    /* send RECON_BULK when holding few records, default true */
    bool mail;                    /* carry mail, default true */
    struct mail_quota relay;      /* mail carried for others (mail_quota_default) */
};

enum syncer_action_type {
    SYNCER_ACT_SEND = 1,
    SYNCER_ACT_CONNECT = 2,
    SYNCER_ACT_DISCONNECT = 3,
    SYNCER_ACT_PUT = 4,
    SYNCER_ACT_DEL = 5,
    SYNCER_ACT_MAIL = 6,
};

struct syncer_action {
    enum syncer_action_type type;
    uint8_t peer[GOSSIP_KEY_BYTES]; /* SEND, CONNECT, DISCONNECT, MAIL (who brought it) */
    char addr[GOSSIP_ADDR_MAX + 1]; /* CONNECT */
    bool counted;                   /* SEND: gossip's bytes (report them flushed counted) */
    uint32_t bye;                   /* DISCONNECT: MSG_BYE_* reason */
    char text[64];                  /* DISCONNECT: one line, may be empty */
    enum syncer_table table;        /* PUT, DEL */
    uint8_t key[32];                /* PUT, DEL */
    uint8_t *data;                  /* SEND, PUT, MAIL: owned by the caller after polling */
    size_t len;
    const struct pull_env *env; /* what data was allocated with (syncer_action_release) */
};

/* Counters, listed once: X(name, what it counts). */
#define SYNCER_COUNTERS(X)                                                                         \
    X(recon_sessions, "reconciliation and bulk sessions that ended well")                          \
    X(recon_failed, "reconciliation and bulk sessions that failed")                                \
    X(recon_limited, "reconciliation requests refused by the rate limits or while catching up")    \
    X(recon_deferred, "our reconciliations the peer deferred (or the store moved): tried again")   \
    X(frames_bad, "malformed or unexpected messages")                                              \
    X(msgs_unknown, "well-formed messages of a type this version ignores")                         \
    X(peers_dropped, "peers dropped for protocol errors")                                          \
    X(mail_in, "mail items received")                                                              \
    X(mail_relayed, "mail items kept to carry for others")                                         \
    X(mail_refused, "mail items refused (quota, expired)")                                         \
    X(mail_bad, "mail items that failed their checks")                                             \
    X(mail_swept, "expired mail items removed")

struct syncer_stats {
#define SYNCER_STAT_FIELD(name, what) uint64_t name;
    SYNCER_COUNTERS(SYNCER_STAT_FIELD)
#undef SYNCER_STAT_FIELD
    uint64_t mail_held; /* items held now (mine, relayed, for me) */
};

struct syncer;

/* syncer_config_default fills cfg with the defaults above and gossip's defaults. */
void syncer_config_default(struct syncer_config *cfg);

/* syncer_new creates the engine of the node with key self, accepting connections at addr
 * ("host:port", advertised). It builds the recon set from host->each_id. env and host
 * must outlive the engine; cfg is copied. Returns 0, PULL_ERR_INVAL, PULL_ERR_NOMEM or the
 * iterator's error. */
int syncer_new(const struct pull_env *env, const uint8_t self[static 32], const char *addr,
               const struct syncer_config *cfg, const struct syncer_host *host,
               struct syncer **out);

/* syncer_set_addr changes the advertised address (gossip_set_addr): a port mapping came or
 * went. Returns 0 or PULL_ERR_INVAL. */
int syncer_set_addr(struct syncer *e, const char *addr);

/* syncer_set_dialable: whether nodes outside this node's network can dial it
 * (gossip_set_dialable; default true). */
void syncer_set_dialable(struct syncer *e, bool dialable);

/* syncer_free frees the engine and its queued actions. NULL does nothing. */
void syncer_free(struct syncer *e);

/* ---- peers ---- */

/* syncer_add_bootstrap remembers a configured peer (fed to gossip now and again whenever
 * the node is alone). Returns 0, PULL_ERR_INVAL, PULL_ERR_QUOTA (SYNCER_BOOTSTRAP_MAX). */
int syncer_add_bootstrap(struct syncer *e, const uint8_t key[static 32], const char *addr,
                         uint64_t now_ms);

/* syncer_load_peer hands the engine one persisted SYNCER_TABLE_PEERS row at start (before
 * syncer_start), with value, what the host knows the peer is worth (pulld: the store's
 * store_peer_value - sightings, sessions, connected time, records given; 0 if unknown).
 * Malformed or stale rows are ignored. */
void syncer_load_peer(struct syncer *e, const uint8_t key[static 32], const uint8_t *val,
                      size_t len, uint32_t value);

/* syncer_start feeds the bootstrap peers and then the persisted peers to gossip, the most
 * valuable first (then the most recently seen), at most SYNCER_PEERS_LOAD_MAX: after a
 * crash, peers that came back, stayed long and gave records are dialed before the
 * one-shot sessions of the last hours, however many of those there were. */
void syncer_start(struct syncer *e, uint64_t now_ms);

/* syncer_add_known: a peer discovered (LAN, `pull connect`): into the passive view.
 * Returns 0, PULL_ERR_INVAL or PULL_ERR_PERM (banned). */
int syncer_add_known(struct syncer *e, const uint8_t key[static 32], const char *addr,
                     uint64_t now_ms);

/* ---- connections and messages ---- */

/* syncer_on_connected: a session with key is established. inbound says who dialed; addr
 * is the dialed address or the observed one ("" if unknown); features are the HELLO's
 * MSG_FEAT_* bits. */
void syncer_on_connected(struct syncer *e, const uint8_t key[static 32], bool inbound,
                         const char *addr, uint64_t features, uint64_t now_ms);

/* syncer_on_disconnected: the connection with key is gone, or a CONNECT failed. */
void syncer_on_disconnected(struct syncer *e, const uint8_t key[static 32], uint64_t now_ms);

/* syncer_on_message handles one message from connected peer key. Returns 0, or the error
 * that was counted against the peer (for logs). */
int syncer_on_message(struct syncer *e, const uint8_t key[static 32], const uint8_t *msg,
                      size_t len, uint64_t now_ms);

/* syncer_on_flushed: len bytes of one SEND to key were written (counted: the action's
 * counted flag). */
void syncer_on_flushed(struct syncer *e, const uint8_t key[static 32], size_t len, bool counted,
                       uint64_t now_ms);

/* syncer_on_stored / syncer_on_removed: the store changed (see the contract). env/len are
 * the new record's envelope (for publishing a local one). */
void syncer_on_stored(struct syncer *e, const uint8_t id[static 32], const uint8_t *replaced_id,
                      const uint8_t *env, size_t len, bool local);
void syncer_on_removed(struct syncer *e, const uint8_t id[static 32]);

/* syncer_verdict: the host's late verdict on a record its offer() answered GOSSIP_PENDING
 * (gossip_verdict: spread it if NEW, blame its sender if INVALID). */
void syncer_verdict(struct syncer *e, const uint8_t *env, size_t len, const uint8_t id[static 32],
                    enum gossip_verdict v, uint64_t now_ms);

/* syncer_leave says goodbye to every peer and queues the passive view for persisting
 * (PUT actions). The engine stays usable. */
void syncer_leave(struct syncer *e, uint64_t now_ms);

/* Timers. */
uint64_t syncer_next_deadline(const struct syncer *e);
void syncer_on_timeout(struct syncer *e, uint64_t now_ms);

/* Actions (see the contract). */
bool syncer_poll_action(struct syncer *e, struct syncer_action *out);
void syncer_action_release(struct syncer_action *a);

/* ---- mail ---- */

/* syncer_mail_load hands the engine one persisted SYNCER_TABLE_MAIL row at start. Rows
 * that are malformed, expired or over quota are dropped (a DEL action). */
void syncer_mail_load(struct syncer *e, const uint8_t key[static 32], const uint8_t *item,
                      size_t len);

/* syncer_mail_post: an item this node sealed (mail_seal) - kept until it expires (PUT),
 * pushed to its recipient if connected, else announced to every peer, and the recipient
 * dialed if its address is known. Returns 0, PULL_ERR_DUPLICATE (already held) or the
 * item's refusal (mail_parse, mail_verify, quota). */
int syncer_mail_post(struct syncer *e, const uint8_t *item, size_t len, uint64_t now_ms);

/* syncer_mail_has: an item with this id is held (mine, relayed, or for me). */
bool syncer_mail_has(const struct syncer *e, const uint8_t id[static MAIL_ID_BYTES]);

/* syncer_mail_each_inbox calls fn for every held item addressed to this node (to open them
 * again after a restart). fn must not call into the engine. */
void syncer_mail_each_inbox(const struct syncer *e,
                            void (*fn)(void *ctx, const uint8_t *item, size_t len), void *ctx);

/* ---- what the node shows ---- */

/* A peer the engine remembers in order to dial it again: a bootstrap line, or a peer it had
 * a session with (persisted), most recently seen first. A key may be both (one entry). */
struct syncer_known_info {
    uint8_t key[32];
    char addr[GOSSIP_ADDR_MAX + 1];
    uint64_t seen_s; /* last session (wall clock), 0: never (a bootstrap line not yet met) */
    bool bootstrap;
};

/* syncer_known_count / syncer_known_at enumerate those peers (proto/syncer_peers.c):
 * the bootstrap lines first, then the others. syncer_known_at returns 0 or
 * PULL_ERR_NOT_FOUND. */
size_t syncer_known_count(const struct syncer *e);
int syncer_known_at(const struct syncer *e, size_t i, struct syncer_known_info *out);

/* syncer_next_rejoin: when the engine will feed its known peers to gossip again (monotonic
 * ms): while it has no active peer it does so with a growing gap (SYNCER_REJOIN_*), so
 * that is when a failed bootstrap or known peer is dialed next. 0 while it has active
 * peers (it then dials only the peers gossip picks). */
uint64_t syncer_next_rejoin(const struct syncer *e, uint64_t now_ms);

size_t syncer_peer_count(const struct syncer *e);
int syncer_peer_at(const struct syncer *e, size_t i, struct gossip_peer_info *out);
size_t syncer_active_count(const struct syncer *e);
uint64_t syncer_set_size(const struct syncer *e);
void syncer_get_stats(const struct syncer *e, struct syncer_stats *out);

/* syncer_gossip exposes the gossip engine (tests and the simulator poke it; call
 * syncer_poll_action afterwards as after any call). */
struct gossip *syncer_gossip(struct syncer *e);

#endif
