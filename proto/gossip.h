/*
 * gossip: membership (HyParView) and dissemination (Plumtree) of pull's records, sans-I/O.
 *
 * What it does. Each node keeps a small *active view* of open connections (default 6) and
 * a larger *passive view* of known peers (default 60: 32-byte Ed25519 key + "host:port"),
 * maintained with JOIN / FORWARD_JOIN random walks, NEIGHBOR requests and periodic
 * SHUFFLE peer exchange (Leitão, Pereira, Rodrigues, "HyParView", DSN 2007). Over the
 * active view it builds a spanning tree for records (Leitão et al., "Epidemic Broadcast
 * Trees", SRDS 2007): a new record is pushed in full (RECORDS) to the *eager* peers and
 * announced by id (IHAVE, batched on a short timer) to the *lazy* ones; a duplicate
 * arrival prunes the link that carried it to lazy (PRUNE); an announced id that does not
 * arrive in time is pulled and the link grafted back (GRAFT). WANT asks for ids without
 * touching the tree (for the reconciliation layer, proto/recon.h). The wire format of every
 * message is in proto/PROTOCOL.md, "Gossip messages".
 *
 * Driving contract (the host is pulld's event loop, or tests/sim/sim.c):
 *   - The engine does no I/O. Every entry point takes the current monotonic time now_ms,
 *     which must never decrease. Randomness comes from the env given to gossip_new.
 *   - After EVERY call into the engine, the host drains the action queue with
 *     gossip_poll_action until it returns false, and executes the actions in order:
 *       SEND(peer, bytes)      write one message (one frame) to the connection of peer;
 *       CONNECT(peer, addr)    dial addr, run the handshake expecting key peer, then call
 *                              gossip_on_connected(inbound=false), or gossip_on_disconnected
 *                              if the dial or handshake fails;
 *       DISCONNECT(peer)       flush what was queued for peer, then close. The engine has
 *                              already forgotten the connection: do NOT report it back with
 *                              gossip_on_disconnected, and drop messages still arriving on it;
 *       DELIVER(id)            (only with config.deliver_actions) record id was new.
 *     Then it re-arms one timer at gossip_next_deadline() and calls gossip_on_timeout when it
 *     fires (calling it early is harmless).
 *   - The host keeps at most one connection per peer key. It reports each established
 *     connection once (gossip_on_connected: inbound, or the outcome of a CONNECT), and its
 *     loss once (gossip_on_disconnected), unless the engine closed it itself.
 *   - Message bytes handed to gossip_on_message are one whole frame plaintext whose type
 *     (msg_peek_type) satisfies gossip_handles(). They are only read during the call.
 *   - Records are opaque envelopes of 1..GOSSIP_ENVELOPE_MAX bytes; their id is
 *     BLAKE2b-256 of the envelope bytes, computed by the engine for received envelopes. The
 *     engine never stores envelopes: it asks the host through three callbacks in
 *     struct gossip_config: offer() for every received envelope (the host verifies, stores
 *     and says NEW / DUPLICATE / INVALID, or PENDING and later gossip_verdict), has() for
 *     announced ids, fetch() to serve GRAFT
 *     and WANT. Callbacks run synchronously inside an engine call and must not call back
 *     into the engine.
 *   - Flow control: the engine counts the bytes of the SEND actions it emitted for each
 *     peer; the host reports the bytes it has written to the socket with gossip_on_flushed.
 *     A peer whose backlog would exceed config.peer_backlog_max is dropped (DISCONNECT) and
 *     avoided for ban_ms / 10, never buffered without limit, so a slow or stuck peer
 *     cannot slow the others. Records pushed along the tree wait in the peer's queue (up to
 *     defer_max) while its backlog is past half of that, so a burst does not drop a peer
 *     that reads at its own pace; one that flushed nothing for stuck_ms meanwhile is
 *     dropped the same way. Requests (GRAFT, WANT, gossip_push) are served as the
 *     backlog allows, from a bounded per-peer queue. A host that cannot report flushes
 *     sets peer_backlog_max to 0.
 *   - The engine decides which connections live: one that is not in the active view
 *     connect_timeout_ms after it opened is closed. Anti-entropy (proto/recon.h) runs on
 *     the same connections, beside the engine: the host starts a session when a connection
 *     it dialed comes up (and periodically with a random active peer, gossip_peer_at),
 *     and turns RECON_EV_WANT into gossip_want and RECON_EV_PUSH into gossip_push; the
 *     envelopes arrive through offer() like any other (tests/sim/sim_ae_recon.c does it).
 *   - A host-initiated dial (`pull connect`) is simply reported with gossip_on_connected
 *     (inbound=false) without a CONNECT action: the engine asks that peer into its view.
 *   - Peers are scored: a NEW record earns a point, an INVALID record or a malformed
 *     message costs many; at config.score_ban the peer is disconnected and banned for
 *     config.ban_ms (its connections are refused and it is kept out of both views).
 *
 * Ownership: the engine copies every key, address and byte it keeps. gossip_poll_action
 * hands the SEND bytes over to the caller (release them with gossip_action_release, which
 * frees them through the env they came from).
 *
 * Memory: everything the engine allocates comes from its env (lib/env.h). When an
 * allocation fails, the entry point that needed it does less rather than break, and the
 * engine's state stays consistent: a message that can't be queued is not sent (GRAFT
 * timers and anti-entropy make up for it; a record published then spreads by
 * reconciliation), a connection that can't be tracked is refused with DISCONNECT, a dial
 * or a JOIN/NEIGHBOR request that can't be queued leaves the peer in the passive view to
 * be tried again, and a DISCONNECT is never lost (up to 64 wait, without memory, behind
 * the queue). gossip_new reports PULL_ERR_NOMEM; tests/unit/test_nomem.c checks all this.
 * Thread safety: none; one engine is used by one thread.
 */
#ifndef PULL_GOSSIP_H
#define PULL_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/env.h"

#define GOSSIP_KEY_BYTES 32
#define GOSSIP_ID_BYTES 32
#define GOSSIP_ADDR_MAX 255      /* bytes of "host:port", printable ASCII */
#define GOSSIP_ENVELOPE_MAX 4200 /* = RECORD_ENVELOPE_MAX */
#define GOSSIP_SHUFFLE_MAX 16    /* peers in one SHUFFLE / SHUFFLE_REPLY */
#define GOSSIP_IDS_MAX 512       /* ids in one IHAVE / GRAFT / WANT */
#define GOSSIP_RECORDS_MAX 256   /* envelopes in one RECORDS */
#define GOSSIP_TTL_MAX 16        /* random walk length limit */
#define GOSSIP_ACTIVE_MAX 16     /* largest allowed active view */
#define GOSSIP_GROUP_LEN 20      /* an address group (gossip_addr_group) */

/* What the host says about an envelope offered to it. */
enum gossip_verdict {
    GOSSIP_NEW = 0,       /* valid and not stored before: now stored, spread it */
    GOSSIP_DUPLICATE = 1, /* already stored, or stale/expired: nothing to do, no blame */
    GOSSIP_INVALID = 2,   /* an honest peer would never send this (bad signature,
                             malformed record): counts against the sender */
    GOSSIP_PENDING = 3,   /* the host verifies it elsewhere (another thread) and will say
                             with gossip_verdict; until then has() must answer true for it */
};

/* RECORDS flags (PROTOCOL.md): why the envelopes were sent. */
#define GOSSIP_REC_PUSH 0  /* eager push along the tree */
#define GOSSIP_REC_GRAFT 1 /* answer to a GRAFT */
#define GOSSIP_REC_WANT 2  /* answer to a WANT */
#define GOSSIP_REC_RECON 3 /* reconciliation found that the receiver lacks them */

/* DISCONNECT reasons. */
#define GOSSIP_BYE_VIEW 0    /* dropped from my active view; keep me as a passive peer */
#define GOSSIP_BYE_LEAVING 1 /* shutting down */
#define GOSSIP_BYE_BANNED 2  /* you misbehaved */
#define GOSSIP_BYE_FULL 3    /* refused: too many connections */

struct gossip_config {
    /* Membership (HyParView). */
    uint32_t active_size;        /* target active view, default 6, 2..GOSSIP_ACTIVE_MAX */
    uint32_t passive_size;       /* passive view, default 60, 1..1024 */
    uint32_t arwl;               /* active random walk length of FORWARD_JOIN, default 6 */
    uint32_t prwl;               /* passive random walk length, default 3 (< arwl) */
    uint32_t shuffle_active;     /* active peers sampled into a SHUFFLE, default 3 */
    uint32_t shuffle_passive;    /* passive peers sampled into a SHUFFLE, default 4 */
    uint32_t shuffle_ttl;        /* walk length of a SHUFFLE, default 3 */
    uint32_t shuffle_ms;         /* period of the shuffle, default 10000 */
    uint32_t rotate_ms;          /* mean period of active view rotation in a settled network
                                    (NEIGHBOR high to a passive peer even when full: mixes active
                                    views and merges overlays split by a partition), default
                                    3600000; 0 = never */
    uint32_t rotate_young_ms;    /* mean period at first, doubling after each rotation up to
                                    rotate_ms; every failed dial halves the current period
                                    again (down to this), default 60000 */
    uint32_t maint_ms;           /* period of view repair and timeouts, default 1000 */
    uint32_t connect_timeout_ms; /* dial + handshake + JOIN/NEIGHBOR answer, default 10000 */
    uint32_t join_grace_ms;      /* after JOIN, wait this long for FORWARD_JOIN connections before
                                    filling the view with NEIGHBOR requests, default 2000 */
    uint32_t max_pending;        /* connections not (yet) in the active view, default 16 */
    uint32_t evict_gap_ms;       /* at most one high-priority NEIGHBOR that forces an eviction per
                                    this period; more are refused like low-priority ones (eviction
                                    storms from stuck or hostile peers), default 5000 */

    /* Dissemination (Plumtree). */
    uint32_t ihave_delay_ms;   /* IHAVE batching delay, default 50 */
    uint32_t graft_timeout_ms; /* announced but missing -> GRAFT after, default 300: a few
                                  times the one-way link latency. Shorter grafts around slow
                                  tree paths sooner (lower tail latency, more duplicates);
                                  raise it for high-latency networks */
    uint32_t graft_retry_ms;   /* next announcer after, default 150 */
    uint32_t missing_max;      /* announced-but-missing ids tracked, default 4096 */
    uint32_t lazy_max;         /* ids queued per lazy peer before dropping, default 4096 */
    uint32_t defer_max;        /* ids of records to push queued per eager peer while its
                                  backlog is past half of peer_backlog_max, default 8192
                                  (with the answers it asked for: at least serve_max);
                                  past that they are announced (IHAVE) */
    uint32_t stuck_ms;         /* a peer with a backlog that flushed nothing for this long
                                  (seen every maint_ms) is dropped as stuck, as one past
                                  peer_backlog_max is; default 10000 */
    uint32_t serve_max;        /* GRAFT/WANT ids queued per peer, default 1024 */
    uint32_t recent_max;       /* recent ids announced to every new neighbour, default 256 */
    uint32_t recent_ms;        /* ... if received within this window, default 60000 */
    uint32_t pending_max;      /* records offered and awaiting gossip_verdict, default 32768
                                  (above what the host holds unanswered: pulld's two batches
                                  of 8192 and its verifiers' 2048); when full, further
                                  records from peers are dropped (reconciliation brings them
                                  later) */
    size_t peer_backlog_max;   /* unflushed bytes per peer before dropping it, default
                                  1 MiB; 0 = unlimited (host does not call on_flushed) */
    bool deliver_actions;      /* emit DELIVER(id) for every NEW record, default false */

    /* Scores. A peer starts at 0, gains score_new per NEW record (up to score_max), loses
     * score_invalid per INVALID record and score_malformed per malformed message; at or
     * below score_ban it is disconnected and banned for ban_ms. */
    int32_t score_new;       /* default 1 */
    int32_t score_max;       /* default 50 */
    int32_t score_invalid;   /* default 25 */
    int32_t score_malformed; /* default 25 */
    int32_t score_ban;       /* default -100 */
    uint32_t ban_ms;         /* default 600000 */

    /* Host callbacks (required). See the contract above. */
    /* offer: a received envelope (bytes valid during the call), its id, and the sender. */
    enum gossip_verdict (*offer)(void *ctx, const uint8_t *env, size_t len,
                                 const uint8_t id[GOSSIP_ID_BYTES],
                                 const uint8_t from[GOSSIP_KEY_BYTES]);
    /* has: whether the host already stores (or knowingly ignores) this id. */
    bool (*has)(void *ctx, const uint8_t id[GOSSIP_ID_BYTES]);
    /* fetch: copy the stored envelope of id into buf (cap = GOSSIP_ENVELOPE_MAX) and set
     * *len; return 0, or PULL_ERR_NOT_FOUND. */
    int (*fetch)(void *ctx, const uint8_t id[GOSSIP_ID_BYTES], uint8_t *buf, size_t cap,
                 size_t *len);
    void *ctx;
};

enum gossip_action_type {
    GOSSIP_ACT_SEND = 1,
    GOSSIP_ACT_CONNECT = 2,
    GOSSIP_ACT_DISCONNECT = 3,
    GOSSIP_ACT_DELIVER = 4,
};

struct gossip_action {
    enum gossip_action_type type;
    uint8_t peer[GOSSIP_KEY_BYTES]; /* SEND, CONNECT, DISCONNECT */
    char addr[GOSSIP_ADDR_MAX + 1]; /* CONNECT: NUL-terminated "host:port" */
    uint8_t id[GOSSIP_ID_BYTES];    /* DELIVER */
    uint8_t *data;                  /* SEND: one message, owned by the caller */
    size_t len;
    const struct pull_env *env; /* SEND: the allocator of data (the engine's env) */
};

enum gossip_peer_state {
    GOSSIP_PEER_PASSIVE = 0,    /* known, not connected */
    GOSSIP_PEER_CONNECTING = 1, /* CONNECT emitted, waiting for the host */
    GOSSIP_PEER_PENDING = 2,    /* connected, not (yet) in the active view */
    GOSSIP_PEER_ACTIVE = 3,     /* in the active view */
    GOSSIP_PEER_BANNED = 4,     /* avoided until the ban ends */
};

struct gossip_peer_info {
    uint8_t key[GOSSIP_KEY_BYTES];
    char addr[GOSSIP_ADDR_MAX + 1];
    enum gossip_peer_state state;
    bool inbound;   /* connections: the peer dialed us */
    bool eager;     /* active peers: in the eager push set (else lazy) */
    int32_t score;  /* connections only */
    size_t backlog; /* connections: unflushed bytes */
    bool tried;     /* passive peers: we had a session with it, or the host vouched for it
                       (else learned from others: FORWARD_JOIN, SHUFFLE) */
};

struct gossip_stats {
    uint64_t msgs_in[32]; /* by message type (types >= 32 are not counted here) */
    uint64_t msgs_out[32];
    uint64_t bytes_in, bytes_out;
    uint64_t records_new, records_dup, records_invalid;
    uint64_t malformed; /* messages refused by the decoder */
    uint64_t ignored;   /* well-formed messages that did not apply (e.g. not active) */
    uint64_t grafts, prunes, wants;
    uint64_t lazy_dropped;    /* ids not announced because a lazy queue was full */
    uint64_t pending_dropped; /* records not offered: pending_max awaited their verdict */
    uint64_t eager_deferred;  /* records queued for an eager peer instead of pushed at once
                                 (its backlog was past half of peer_backlog_max) */
    uint64_t peers_banned, peers_dropped_backlog, connect_failures;
};

struct gossip;

/* gossip_config_default fills cfg with the defaults above and no callbacks. */
void gossip_config_default(struct gossip_config *cfg);

/* gossip_new creates an engine for the node with public key `key` that accepts
 * connections at `addr` ("host:port", advertised to peers). env gives randomness (and must
 * outlive the engine); cfg is copied. Returns 0 and *out, PULL_ERR_INVAL for a bad config
 * or address (missing callbacks, sizes out of range), or PULL_ERR_NOMEM. */
int gossip_new(const struct pull_env *env, const uint8_t key[static GOSSIP_KEY_BYTES],
               const char *addr, const struct gossip_config *cfg, struct gossip **out);

/* gossip_free frees the engine and every queued action. gossip_free(NULL) does nothing. */
void gossip_free(struct gossip *g);

/* gossip_addr_group writes the address group of "host:port" into out: the /16 of a public
 * IPv4 address, the /32 of a public IPv6 one (one operator rarely holds many of those), the
 * whole address of a private, link-local or CGNAT one, the address and port of a loopback
 * one, a hash of a hostname; all zero when unknown. The engine limits what one group may
 * hold of the views, and (proto/syncer) what one group may ask of a node. */
void gossip_addr_group(const char *addr, uint8_t out[GOSSIP_GROUP_LEN]);

/* gossip_addr_public reports whether "host:port" has a public IP address: not private
 * (RFC 1918, IPv6 ULA), link-local, CGNAT (100.64/10) nor loopback. A hostname, or anything
 * unparsable, is not. */
bool gossip_addr_public(const char *addr);

/* gossip_set_addr changes the address the engine advertises ("host:port", e.g. a port
 * mapped on the router, daemon/nat.c) in the JOINs, NEIGHBORs and SHUFFLEs it sends from
 * now on. Returns 0 or PULL_ERR_INVAL (a bad address: the old one stays). */
int gossip_set_addr(struct gossip *g, const char *addr);

/* gossip_set_dialable says whether nodes outside this node's own network can dial it
 * (default true). false (its HELLO says reach local: no port mapping, a private address):
 * the SHUFFLEs it starts name it with port 0, which no node keeps, so nodes it reaches over
 * several hops never learn an address they could not dial. JOINs and NEIGHBORs keep the
 * port: their receiver's host knows from where it sees the connection (gossip_on_connected). */
void gossip_set_dialable(struct gossip *g, bool dialable);

/* gossip_handles reports whether a message type belongs to this engine (10-16, 20-24). */
bool gossip_handles(uint32_t type);

/* gossip_add_known adds a peer to the passive view (bootstrap line, LAN discovery, the
 * persisted peer list). If the active view is empty, the engine starts joining through it.
 * Returns 0, PULL_ERR_INVAL (own key, bad address), or PULL_ERR_PERM (banned). */
int gossip_add_known(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES], const char *addr,
                     uint64_t now_ms);

/* gossip_on_connected: a connection with peer `key` is established (after the handshake
 * proved the key). inbound says who dialed; for an inbound connection addr is where the host
 * saw it come from, with the port its HELLO says it can be dialed at (msg_hello_dial_port):
 * the engine dials it at that host with the port its JOIN or NEIGHBOR advertises, and never
 * when addr's port is 0 (it accepts no connections, or none from where we see it: it is
 * then neither kept in the passive view nor handed on in walks and shuffles). The engine
 * may answer with DISCONNECT (banned, too many connections). */
void gossip_on_connected(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES],
                         const char *addr, bool inbound, uint64_t now_ms);

/* gossip_on_disconnected: the connection with `key` is gone, or the CONNECT failed.
 * Unknown keys are ignored. An active peer is replaced by a passive one. */
void gossip_on_disconnected(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES],
                            uint64_t now_ms);

/* gossip_on_message handles one message received from connected peer `key`. Returns 0 if
 * it was applied or harmlessly ignored, else the decoder's PULL_ERR_* (the penalty has then
 * already been applied; the return value is for logging). */
int gossip_on_message(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES],
                      const uint8_t *msg, size_t len, uint64_t now_ms);

/* gossip_on_flushed: the host wrote `bytes` more bytes of SEND actions to peer `key`. */
void gossip_on_flushed(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES], size_t bytes,
                       uint64_t now_ms);

/* gossip_verdict gives the host's late verdict on an envelope whose offer() returned
 * GOSSIP_PENDING (env/len: its bytes, id: its id): NEW spreads it as if it had just arrived
 * (on the tree if it came on the tree), INVALID counts against the peer that sent it,
 * DUPLICATE does nothing. An id nobody offered is ignored (NEW: announced later, as a record
 * had by anti-entropy). */
void gossip_verdict(struct gossip *g, const uint8_t *env, size_t len,
                    const uint8_t id[static GOSSIP_ID_BYTES], enum gossip_verdict v,
                    uint64_t now_ms);

/* gossip_publish spreads a record created (and already stored) locally. id must be the
 * BLAKE2b-256 of env. Returns 0, or PULL_ERR_INVAL / PULL_ERR_TOO_BIG for bad sizes. */
int gossip_publish(struct gossip *g, const uint8_t *env, size_t len,
                   const uint8_t id[static GOSSIP_ID_BYTES], uint64_t now_ms);

/* gossip_want asks connected peer `key` for up to GOSSIP_IDS_MAX envelopes by id, without
 * changing the tree (for reconciliation). They arrive through offer() as usual. Returns 0,
 * PULL_ERR_NOT_FOUND (not connected) or PULL_ERR_INVAL (n == 0 or too many). */
int gossip_want(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES],
                const uint8_t (*ids)[GOSSIP_ID_BYTES], size_t n, uint64_t now_ms);

/* gossip_push sends connected peer `key` the stored envelopes of ids (read with fetch();
 * ids no longer stored are skipped) as RECORDS flagged GOSSIP_REC_RECON, which change
 * the tree on neither side: for the reconciliation layer (RECON_EV_PUSH). The ids go to
 * the peer's bounded serve queue (config.serve_max) and leave as its backlog allows.
 * Returns how many ids were queued (push the others again later, e.g. at the next
 * reconciliation), PULL_ERR_NOT_FOUND (not connected) or PULL_ERR_INVAL (n == 0). */
int gossip_push(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES],
                const uint8_t (*ids)[GOSSIP_ID_BYTES], size_t n, uint64_t now_ms);

/* gossip_leave says goodbye (DISCONNECT leaving) to every connected peer and closes them.
 * The engine stays usable (it would rejoin on gossip_add_known or the next timeout). */
void gossip_leave(struct gossip *g, uint64_t now_ms);

/* gossip_next_deadline returns the time at which gossip_on_timeout should run next
 * (UINT64_MAX if nothing is scheduled). */
uint64_t gossip_next_deadline(const struct gossip *g);

/* gossip_on_timeout runs every timer due at now_ms. */
void gossip_on_timeout(struct gossip *g, uint64_t now_ms);

/* gossip_poll_action moves the oldest queued action into *out and returns true, or returns
 * false when the queue is empty. The caller owns out->data (SEND) and releases it with
 * gossip_action_release. */
bool gossip_poll_action(struct gossip *g, struct gossip_action *out);

/* gossip_action_release frees what an action owns (safe on any polled action, twice too). */
void gossip_action_release(struct gossip_action *a);

/* gossip_peer_count and gossip_peer_at list connections (active first), then the passive
 * view, then banned peers; indices are valid until the next call that changes the engine.
 * gossip_peer_at returns 0 or PULL_ERR_NOT_FOUND. */
size_t gossip_peer_count(const struct gossip *g);
int gossip_peer_at(const struct gossip *g, size_t i, struct gossip_peer_info *out);

/* gossip_active_count returns the size of the active view. */
size_t gossip_active_count(const struct gossip *g);

/* gossip_is_active reports whether key is in the active view. */
bool gossip_is_active(const struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES]);

/* gossip_get_stats copies the engine's counters. */
void gossip_get_stats(const struct gossip *g, struct gossip_stats *out);

#endif
