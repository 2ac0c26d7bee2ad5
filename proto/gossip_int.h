/*
 * gossip_int: the inside of the gossip engine, shared by proto/gossip.c (entry points,
 * connections, actions, scores and bans, timers), proto/gossip_addr.c (addresses and
 * address groups), proto/gossip_codec.c (the message decoder), proto/membership.c
 * (HyParView) and proto/plumtree.c (Plumtree). Not for use outside these five files.
 *
 * Invariants:
 *   - A key is in at most one of: the connection table (conns), the passive view, the ban
 *     list. Our own key is in none of them.
 *   - nactive == number of conns in state GOSSIP_PEER_ACTIVE <= cfg.active_size, except
 *     transiently inside a handler.
 *   - A connection is removed from conns only through gs_conn_remove, never while some
 *     caller iterates over conns: code that may drop peers inside a loop marks them
 *     `doomed` and gs_finish (run at the end of every entry point) reaps them.
 *   - conns holds pointers, so a struct gpeer * stays valid until that peer is removed.
 *   - Memory comes from g->env. Code that can't allocate does less, never leaves a half
 *     change: a peer whose CONNECT or first request can't be queued is doomed
 *     GS_DOOM_NOMEM (back to the passive view); DISCONNECT falls back on g->closes.
 */
#ifndef PULL_GOSSIP_INT_H
#define PULL_GOSSIP_INT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "proto/gossip.h"

#define GS_BANS_MAX 256
#define GS_REJECTED_MAX 256
#define GS_ROUTES_MAX 64
#define GS_ROUTE_MS 30000
#define GS_ANN_MAX 4 /* announcers remembered per missing id */
#define GS_BACKOFF_MIN_MS 1000
#define GS_BACKOFF_MAX_MS 30000
#define GS_CLOSES_MAX 64    /* DISCONNECT actions kept aside when the queue cannot grow */
#define GS_GROUP_LEN 20     /* an address group (gs_addr_group) */
#define GS_PROTECT_MS 60000 /* an active peer this old is among those a newcomer can't evict */
#define GS_GROUP_STRIKES 3  /* keys of one address group banned before the group is */
#define GS_WALKS_PER_MIN 12 /* JOIN walks started for newcomers we did not take in */

/* Why a connection was opened by us. */
enum gs_purpose {
    GS_PURPOSE_NONE = 0, /* inbound, or nothing asked yet */
    GS_PURPOSE_JOIN,     /* send JOIN */
    GS_PURPOSE_LOW,      /* send NEIGHBOR, low priority */
    GS_PURPOSE_HIGH,     /* send NEIGHBOR, high priority */
    GS_PURPOSE_ROTATE,   /* NEIGHBOR high while our view is full (rotation) */
};

enum gs_doom {
    GS_DOOM_NONE = 0,
    GS_DOOM_BAN,     /* score too low: close and ban */
    GS_DOOM_BACKLOG, /* not reading: close and forget */
    GS_DOOM_TIMEOUT, /* connect or JOIN/NEIGHBOR answer took too long */
    GS_DOOM_NOMEM,   /* its CONNECT could not be queued: back to the passive view */
};

/* A small queue of ids with a one-byte tag each (bounded by the caller's max). */
struct gs_idq {
    uint8_t (*id)[GOSSIP_ID_BYTES];
    uint8_t *tag;
    uint32_t n, cap;
};

/* A connection, or a connection attempt. */
struct gpeer {
    uint8_t key[GOSSIP_KEY_BYTES];
    char addr[GOSSIP_ADDR_MAX + 1]; /* the address to dial it at ("" while unknown): the one
                                       we dialed, or the host part the host observed with the
                                       port the peer advertises - never a host it names */
    char seen[GOSSIP_ADDR_MAX + 1]; /* inbound: the address the host observed ("" if none) */
    uint8_t group[GS_GROUP_LEN];    /* address group of where it connects from */
    bool joined_req;                /* it sent its one JOIN */
    uint8_t state;                  /* GOSSIP_PEER_CONNECTING, _PENDING or _ACTIVE */
    uint8_t purpose;                /* enum gs_purpose */
    uint8_t doomed;                 /* enum gs_doom */
    bool inbound;
    bool asked;     /* we sent JOIN/NEIGHBOR and wait for NEIGHBOR_REPLY */
    bool eager;     /* Plumtree: eager push peer (only meaningful when active) */
    uint64_t since; /* when the current state began */
    int32_t score;
    size_t backlog;      /* bytes emitted in SEND actions not yet reported flushed */
    uint64_t stalled_ms; /* a maintenance pass found a backlog and no flush since then
                            (0: none pending, or progress since) */
    uint32_t nmiss;      /* missing-id entries this peer's IHAVEs created (capped) */
    struct gs_idq lazy;  /* ids to announce with the next IHAVE (tag: our hops) */
    struct gs_idq serve; /* ids asked by GRAFT (tag GOSSIP_REC_GRAFT) or WANT */
    struct gs_idq graft; /* ids to GRAFT from this peer at the end of a timer pass */
};

struct gpassive {
    uint8_t key[GOSSIP_KEY_BYTES];
    char addr[GOSSIP_ADDR_MAX + 1];
    uint8_t group[GS_GROUP_LEN];
    bool tried; /* we had a session with it (else: learned from someone) */
};

struct gban {
    uint8_t key[GOSSIP_KEY_BYTES];  /* a key, or (group) an address group */
    uint8_t group_of[GS_GROUP_LEN]; /* a key's: the group it connected from */
    bool group;
    uint64_t until;
};

struct gmiss {
    uint8_t id[GOSSIP_ID_BYTES];
    uint8_t creator[GOSSIP_KEY_BYTES]; /* the peer whose IHAVE created the entry */
    uint64_t deadline;
    uint8_t nann;
    uint8_t ann[GS_ANN_MAX][GOSSIP_KEY_BYTES];
};

struct grecent {
    uint8_t id[GOSSIP_ID_BYTES];
    uint64_t at;
    uint8_t hops; /* our distance from the record's origin (0: we published it) */
    bool tree;    /* it came along the tree (PUSH, GRAFT, or we published it); false: by a
                     WANT or a reconciliation push, so the first tree copy is no reason to
                     prune, and is the one pushed on */
    bool told;    /* pushed to the eager peers and announced to the lazy ones, or (after
                     the tree was given time: pt_timers) announced to every active peer */
};

/* A record offered to the host and awaiting its verdict (gossip_verdict). */
struct gpend {
    uint8_t id[GOSSIP_ID_BYTES];
    uint8_t from[GOSSIP_KEY_BYTES];
    uint8_t hops; /* our distance from the origin, had it come straight */
    bool tree;    /* it came on the tree (PUSH or GRAFT) */
};

struct groute {
    uint64_t nonce;
    uint64_t until; /* 0 = free slot */
    uint8_t back[GOSSIP_KEY_BYTES];
};

struct gs_peer_entry {
    uint8_t key[GOSSIP_KEY_BYTES];
    const char *addr;
    uint32_t addr_len;
};

/* A decoded message: pointers into the received bytes (valid during the call only). */
struct gmsg {
    uint32_t type;
    const char *addr; /* JOIN, FORWARD_JOIN, NEIGHBOR */
    uint32_t addr_len;
    uint8_t key[GOSSIP_KEY_BYTES]; /* FORWARD_JOIN: the joining node */
    uint64_t ttl;                  /* FORWARD_JOIN, SHUFFLE */
    bool flag;                     /* NEIGHBOR: high priority; NEIGHBOR_REPLY: accepted */
    uint64_t code;                 /* DISCONNECT reason, RECORDS flags */
    uint64_t hops;                 /* RECORDS: the sender's distance from the origin */
    uint64_t nonce;                /* SHUFFLE, SHUFFLE_REPLY */
    uint32_t npeers;
    struct gs_peer_entry peers[GOSSIP_SHUFFLE_MAX];
    uint32_t nids;
    uint8_t ids[GOSSIP_IDS_MAX][GOSSIP_ID_BYTES];
    uint8_t ids_hops[GOSSIP_IDS_MAX]; /* IHAVE: the announcer's distance per id */
    uint32_t nenv;
    const uint8_t *env[GOSSIP_RECORDS_MAX];
    uint32_t env_len[GOSSIP_RECORDS_MAX];
};

struct gossip {
    const struct pull_env *env;
    struct gossip_config cfg;
    uint8_t key[GOSSIP_KEY_BYTES];
    char addr[GOSSIP_ADDR_MAX + 1];
    bool undialable; /* gossip_set_dialable(false): shuffles name us with port 0 */
    uint8_t hkey[16]; /* SipHash key of the missing-id index (ids come from peers) */

    /* connections */
    struct gpeer **conns;
    uint32_t nconns, conns_cap;
    uint32_t nactive;

    /* passive view and bans */
    struct gpassive *passive;
    uint32_t npassive;
    struct gban bans[GS_BANS_MAX];
    uint32_t nbans;

    /* membership state */
    bool joined;      /* had an active peer at least once */
    uint64_t fill_at; /* no low-priority NEIGHBOR before this time */
    uint64_t fill_backoff;
    uint64_t shuffle_at, rotate_at, maint_at;
    uint64_t rotate_every; /* current mean rotation interval (see rotate_young_ms) */
    uint64_t evict_ok_at;  /* no forced eviction (JOIN or NEIGHBOR high while full) before */
    uint64_t walks_at;     /* the window of GS_WALKS_PER_MIN walks for refused JOINs began */
    uint32_t walks;        /* ... walks started in it */
    bool shuffle_pending;
    uint64_t shuffle_nonce;
    uint32_t nshuffle_sent;
    uint8_t shuffle_sent[GOSSIP_SHUFFLE_MAX][GOSSIP_KEY_BYTES];
    struct groute routes[GS_ROUTES_MAX];
    uint32_t route_next;

    /* dissemination state */
    struct gmiss *miss; /* dense array of nmiss entries */
    uint32_t nmiss;
    uint32_t *miss_slot; /* open addressing index: entry index + 1, 0 = empty */
    uint32_t miss_mask;
    uint64_t miss_min;  /* earliest deadline in miss, UINT64_MAX if none */
    uint64_t ihave_at;  /* 0 = no IHAVE flush scheduled */
    uint64_t untold_at; /* 0 = no record had by anti-entropy waits to be announced */
    bool seen_record;   /* a record went through us: the tree exists */
    struct gpend *pend; /* dense array of npend entries (cfg.pending_max) */
    uint32_t npend;
    uint32_t *pend_slot; /* open addressing index: entry index + 1, 0 = empty */
    uint32_t pend_mask;
    struct grecent *recent; /* ring of cfg.recent_max */
    uint32_t recent_head, nrecent;
    uint8_t rejected[GS_REJECTED_MAX][GOSSIP_ID_BYTES];
    uint32_t rej_head, nrej;

    /* action queue (ring) */
    struct gossip_action *acts;
    uint32_t act_head, nacts, acts_cap;
    /* DISCONNECTs that found no room in the ring (out of memory): handed out after it, so
     * the host always learns that a connection it holds is no longer wanted. */
    uint8_t closes[GS_CLOSES_MAX][GOSSIP_KEY_BYTES];
    uint32_t ncloses;

    /* scratch */
    struct gmsg *msg;
    uint8_t *envbuf; /* GOSSIP_ENVELOPE_MAX */
    uint8_t *batch;  /* MSG_MAX: envelopes being collected for one RECORDS */
    struct gossip_stats st;
};

/* --- gossip.c: connections, actions, scores and bans --- */
struct gpeer *gs_conn_find(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES]);
/* gs_conn_add adds a connection entry (key must not be in conns); removes key from the
 * passive view. Returns NULL if out of memory. */
struct gpeer *gs_conn_add(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const char *addr,
                          uint8_t state, uint64_t now_ms);
/* gs_conn_remove frees p and removes it from conns (never while iterating). */
void gs_conn_remove(struct gossip *g, struct gpeer *p);
uint32_t gs_pending_count(const struct gossip *g);
bool gs_key_eq(const uint8_t a[GOSSIP_KEY_BYTES], const uint8_t b[GOSSIP_KEY_BYTES]);

/* gs_emit_connect queues CONNECT; PULL_ERR_NOMEM if it can't (nothing was queued). */
int gs_emit_connect(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const char *addr);
void gs_emit_disconnect(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES]);
void gs_emit_deliver(struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES]);
/* gs_send hands the message in w to peer p as a SEND action (w is emptied); marks p
 * doomed if its backlog overflows. Returns 0 or PULL_ERR_NOMEM / the writer's error. */
int gs_send(struct gossip *g, struct gpeer *p, struct pull_wb *w);
/* gs_msg_begin starts message `type` with nfields fields after the type, in a writer w
 * that it sets up with the engine's allocator. */
void gs_msg_begin(struct gossip *g, struct pull_wb *w, msgpack_packer *pk, uint32_t type,
                  uint32_t nfields);
void gs_penalize(struct gossip *g, struct gpeer *p, int32_t amount);
bool gs_is_banned(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], uint64_t now_ms);
/* gs_ban avoids key for `ms` (refused as a connection, kept out of both views). group (may
 * be NULL) is where it connected from: the group is banned too once GS_GROUP_STRIKES of
 * its keys are. */
void gs_ban(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const uint8_t *group,
            uint64_t ms, uint64_t now_ms);

/* gs_group_banned reports whether connections from this group are refused now. */
bool gs_group_banned(struct gossip *g, const uint8_t group[GS_GROUP_LEN], uint64_t now_ms);

/* The id queues' memory comes from env (the engine's). */
int gs_idq_push(const struct pull_env *env, struct gs_idq *q, const uint8_t id[GOSSIP_ID_BYTES],
                uint8_t tag, uint32_t max);
void gs_idq_pop(struct gs_idq *q, uint32_t k);
void gs_idq_free(const struct pull_env *env, struct gs_idq *q);

/* --- gossip_codec.c --- */
int gs_decode(const uint8_t *p, size_t n, struct gmsg *m);

/* --- gossip_addr.c --- */
bool gs_addr_ok(const char *a, size_t n);

/* gs_addr_port returns the port of "host:port" (0 if none or unparsable). */
uint32_t gs_addr_port(const char *a, size_t n);

/* gs_addr_group writes the address group of "host:port" (a hostname, an IPv4 or a
 * bracketed IPv6 address): the /16 of a public IPv4 address, the /32 of a public IPv6
 * address (as Bitcoin Core's netgroups: one operator rarely holds many), the whole address
 * of a private, link-local or CGNAT one (a LAN's hosts are each their own), the address
 * and port of a loopback one (nodes on one host), a hash of a hostname. All zero: unknown
 * (never equal to anything). */
void gs_addr_group(const char *a, size_t n, uint8_t out[GS_GROUP_LEN]);

/* gs_group_eq: two known groups are the same. */
bool gs_group_eq(const uint8_t a[GS_GROUP_LEN], const uint8_t b[GS_GROUP_LEN]);

/* --- membership.c --- */
void mb_on_connected(struct gossip *g, struct gpeer *p, uint64_t now_ms);
void mb_on_lost(struct gossip *g, struct gpeer *p, uint64_t now_ms);
void mb_handle(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms);
void mb_fill(struct gossip *g, uint64_t now_ms);
/* mb_dial_failed: a dial failed (peer gone, or unreachable: partition?): rotate sooner. */
void mb_dial_failed(struct gossip *g, uint64_t now_ms);
void mb_timers(struct gossip *g, uint64_t now_ms);
uint64_t mb_next_deadline(const struct gossip *g);
/* mb_close closes connection p: optionally sends DISCONNECT(reason) first (reason < 0:
 * none), emits the DISCONNECT action, and keeps the peer in the passive view if
 * to_passive. p is freed. */
void mb_close(struct gossip *g, struct gpeer *p, int reason, bool to_passive, uint64_t now_ms);
int mb_passive_find(const struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES]);
void mb_passive_remove(struct gossip *g, uint32_t i);
/* mb_passive_add remembers a peer: tried if we had a session with it or the host vouches for
 * it, else learned from someone (it then never displaces a tried entry). */
void mb_passive_add(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const char *addr,
                    size_t addr_len, bool tried, uint64_t now_ms);

/* --- plumtree.c --- */
void pt_handle(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms);
void pt_on_active(struct gossip *g, struct gpeer *p, uint64_t now_ms);
/* pt_opened_link: p became active through a NEIGHBOR request of ours (refill, rotation). */
void pt_opened_link(struct gossip *g, struct gpeer *p);
/* pt_on_eager_lost: an eager active link is gone (call after removing it). */
void pt_on_eager_lost(struct gossip *g, uint64_t now_ms);
void pt_serve(struct gossip *g, struct gpeer *p, uint64_t now_ms);
int pt_publish(struct gossip *g, const uint8_t *env, size_t len, const uint8_t id[GOSSIP_ID_BYTES],
               uint64_t now_ms);
int pt_want(struct gossip *g, struct gpeer *p, const uint8_t (*ids)[GOSSIP_ID_BYTES], size_t n);
void pt_verdict(struct gossip *g, const uint8_t *env, size_t len, const uint8_t id[GOSSIP_ID_BYTES],
                enum gossip_verdict v, uint64_t now_ms);
int pt_push(struct gossip *g, struct gpeer *p, const uint8_t (*ids)[GOSSIP_ID_BYTES], size_t n,
            uint64_t now_ms);
void pt_timers(struct gossip *g, uint64_t now_ms);
uint64_t pt_next_deadline(const struct gossip *g);
int pt_init(struct gossip *g);
void pt_release(struct gossip *g);

#endif
