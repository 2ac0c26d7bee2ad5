/*
 * recon: anti-entropy set reconciliation of record ids between two peers, sans-I/O.
 *
 * Cost grows with the size d of the difference, not with the set size N: the responder
 * streams Rateless IBLT coded symbols (proto/riblt.h) of its set, the initiator subtracts
 * its own and peels out the ids that differ. About 1.4 symbols of 42 bytes per differing
 * id for large d, at most 3 round trips in practice, one message each way when the sets
 * are equal or differ by a single id. Wire format: proto/PROTOCOL.md, "Reconciliation
 * messages" (MSG_RECON_* in proto/msg.h).
 *
 * Two objects:
 *
 *   struct recon_set   the local set of ids, with a cache of its first K coded symbols
 *                      (plus 69 estimator samples) kept up to date incrementally: O(log)
 *                      per add/remove, so a session serving d < ~K/1.4 differences costs
 *                      O(d) and never touches the store. One per node, shared by all
 *                      engines. Beyond K symbols (huge d), or for a salted session, the
 *                      engine asks the host to iterate over the whole set (O(N log m)).
 *
 *   struct recon       one engine per peer connection. It runs at most one session in
 *                      which it is the initiator and one in which it is the responder,
 *                      at the same time (both peers may start one).
 *
 * How the host drives it (the daemon; tests do the same with two engines in one process):
 *
 *   1. At startup: recon_set_new(), then recon_set_add() for every live id in the store
 *      (or recon_set_add_all() with the store iterator). From then on call recon_set_add()
 *      when a record id becomes live (its store transaction committed) and
 *      recon_set_remove() when it stops being live (replaced, withdrawn, expired, GC'd),
 *      so that the cache and the iterator always describe the same set. Add only absent
 *      ids and remove only present ones (the set cannot check; a wrong call corrupts the
 *      cache until the next rebuild).
 *   2. Per connection: recon_new() with the env, the set and the iterator callback.
 *   3. To reconcile (on connect and periodically): recon_start(). To avoid two sessions
 *      where one is enough, let only the dialer start on connect.
 *   4. Feed every received message of type MSG_RECON_REQ .. MSG_RECON_ERR (30..34) to
 *      recon_on_msg(), whole (one decrypted frame = one message).
 *   5. After every call into the engine, drain recon_poll() until it returns 0, acting on
 *      each event in order:
 *        RECON_EV_SEND    send ev.msg (ev.len bytes, <= MSG_MAX) to the peer as one frame.
 *                         Poll again only when the connection can take more: symbols are
 *                         produced lazily, one message per poll.
 *        RECON_EV_WANT    ask the peer for these records (MSG_WANT), they are the peer's.
 *        RECON_EV_PUSH    send these records to the peer (MSG_RECORDS); skip ids that
 *                         are no longer stored.
 *        RECON_EV_DONE    the session ended well; ev.stats has its figures.
 *        RECON_EV_FAILED  the session ended with ev.err (negative PULL_ERR_*) and a one-
 *                         line ev.reason. Retry later; after PULL_ERR_QUOTA (difference
 *                         too large) fall back to another catch-up; after PULL_ERR_AGAIN
 *                         retry soon, with RECON_SALTED if ev.retry_salted is set (the
 *                         difference cannot peel: crafted ids, see PROTOCOL.md).
 *      Every session, of either role, ends with exactly one DONE or FAILED event.
 *      Event pointers (msg, ids, reason) stay valid until the next call on the engine.
 *   6. Timers: after each call, arm a timer for recon_next_deadline() and call
 *      recon_on_timeout() when it fires (earlier or spurious calls are harmless).
 *   7. recon_free() when the connection closes (active sessions end without events).
 *
 * The engine calls the iterator synchronously from recon_start() and recon_on_msg()
 * (never from recon_poll()): it must visit exactly the ids of the set as the recon_set
 * currently describes it (the engine checks the count and fails the session with
 * PULL_ERR_STATE otherwise). Changes made to the set while a session runs are undone for that
 * session through a short journal, so every session sees one consistent snapshot.
 *
 * Memory: a session holds at most max_symbols symbols (48 bytes each, both roles) and a
 * few bytes per decoded id, all from the env's allocator. When an allocation fails, the
 * call returns PULL_ERR_NOMEM and the session it served fails (its FAILED event carries
 * PULL_ERR_NOMEM: our shortage, not the peer's fault; retry later); the engine and the
 * set stay consistent, and every session still ends with exactly one DONE or FAILED
 * event (its memory is set aside when the session starts). Time: the cache makes a
 * session O(d log d); a session whose symbols go past the cache makes one pass over the
 * store per round (usually 1 or 2).
 *
 * Cost a peer can impose: one RECON_REQ (or a lying RECON_SYMBOLS) can make us pass over
 * the store once per round and send or hold up to max_symbols symbols (~5.5 MB); a salted
 * REQ always costs a pass. Hosts rate-limit REQs per peer (e.g. one a minute, salted ones
 * rarer) and may set refuse_salted.
 *
 * Where it lives: the engine in recon.c, the set in recon_set.c, the message codec in
 * recon_msg.c (proto/recon_int.h is what they share).
 */
#ifndef PULL_RECON_H
#define PULL_RECON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "proto/riblt.h"

/* ---- the local set ---- */

#define RECON_CACHE_DEFAULT 16384 /* K: ~768 KiB, serves d up to ~11,000 from memory */
#define RECON_JOURNAL_DEFAULT 65536

struct recon_set_cfg {
    uint32_t cache_symbols;     /* K, the dense cached prefix; 0 keeps only symbol 0 */
    uint32_t journal_max;       /* changes remembered for running sessions (0: default) */
    const struct pull_env *env; /* memory (NULL: the C library's); outlives the set */
};

struct recon_set;

/* recon_set_new creates an empty set (cfg NULL: RECON_CACHE_DEFAULT and
 * RECON_JOURNAL_DEFAULT). Returns 0, PULL_ERR_INVAL (K > 2^24) or PULL_ERR_NOMEM. */
int recon_set_new(const struct recon_set_cfg *cfg, struct recon_set **out);

/* recon_set_free releases the set (NULL is fine). No engine may still use it. */
void recon_set_free(struct recon_set *s);

/* recon_set_add / recon_set_remove update the cache for one id in O(log K). Returns 0 or
 * PULL_ERR_NOMEM (only while sessions run: the journal; the set is then unchanged). */
int recon_set_add(struct recon_set *s, const uint8_t id[RIBLT_ID_LEN]);
int recon_set_remove(struct recon_set *s, const uint8_t id[RIBLT_ID_LEN]);

/* recon_set_size returns the number of ids (adds minus removes). */
uint64_t recon_set_size(const struct recon_set *s);

/* recon_set_cache_symbols returns K. */
uint32_t recon_set_cache_symbols(const struct recon_set *s);

/* recon_set_symbol copies the cached coded symbol i (< K) into out (for tests and
 * diagnostics). Returns 0 or PULL_ERR_INVAL. */
int recon_set_symbol(const struct recon_set *s, uint32_t i, struct riblt_sym *out);

/*
 * The iterator the host provides: each(ctx, visit, vctx) must call visit(vctx, id) once
 * for every id of the set, in any order, and stop and return visit's value as soon as it
 * is non-zero; it returns 0 when done, or its own negative PULL_ERR_* (e.g. PULL_ERR_STORE).
 */
typedef int (*recon_visit_fn)(void *vctx, const uint8_t id[RIBLT_ID_LEN]);
typedef int (*recon_each_fn)(void *ctx, recon_visit_fn visit, void *vctx);

/* recon_set_add_all adds every id the iterator visits (startup). Returns 0 or an error
 * from the iterator (the ids added so far stay). */
int recon_set_add_all(struct recon_set *s, recon_each_fn each, void *ctx);

/* ---- messages (the engine encodes and decodes them; exposed for tests and fuzzing) ---- */

#define RECON_REASON_MAX 200 /* bytes of a RECON_ERR reason */

/* One decoded message. Pointers (syms, reason) point into the decoded input. */
struct recon_msg {
    uint32_t type; /* MSG_RECON_REQ .. MSG_RECON_ERR */
    uint32_t sid;  /* session id, chosen by the initiator, never 0 */
    /* RECON_REQ */
    bool salted; /* key present: per-session hash key */
    uint8_t key[RIBLT_KEY_LEN];
    uint32_t credit;              /* symbols the responder may send before a MORE */
    uint8_t sym0[RIBLT_SYM_WIRE]; /* the initiator's coded symbol 0 */
    uint8_t est[RIBLT_EST_BYTES]; /* the initiator's estimator fingerprints */
    /* RECON_SYMBOLS */
    uint32_t start, end; /* symbols [start, start + n_syms) of the round [.., end) */
    const uint8_t *syms; /* n_syms * RIBLT_SYM_WIRE bytes */
    uint32_t n_syms;
    uint32_t hint; /* the responder's estimate of d */
    /* RECON_MORE */
    uint32_t total; /* the responder may send symbols [0, total) */
    /* RECON_DONE, RECON_ERR */
    uint8_t from;              /* enum recon_role of the sender */
    uint32_t you_lack, i_lack; /* DONE: ids the sender will push / ask for */
    uint32_t code;             /* ERR: positive PULL_ERR number */
    const char *reason;        /* ERR: UTF-8, not NUL-terminated */
    uint32_t reason_len;
    uint32_t extra; /* decode: trailing fields skipped (newer versions) */
};

/* recon_msg_decode parses one message with the bounded reader (lib/mp.h): canonical
 * msgpack, every field checked, no trailing bytes. Returns 0 or a negative PULL_ERR_*
 * (TOO_BIG over MSG_MAX, TRUNCATED, MALFORMED, FIELD, NONCANONICAL, TRAILING, ...). */
int recon_msg_decode(const uint8_t *p, size_t n, struct recon_msg *m);

/* recon_msg_encode appends the message (the fields of m->type) to w. Returns 0,
 * PULL_ERR_INVAL (a field out of range) or the writer's error. */
int recon_msg_encode(const struct recon_msg *m, struct pull_wb *w);

/* ---- the engine ---- */

#define RECON_MAX_SYMBOLS_DEFAULT 131072 /* 5.5 MB of symbols: d up to ~90,000 */
#define RECON_IDLE_TIMEOUT_DEFAULT 15000
#define RECON_SESSION_TIMEOUT_DEFAULT 120000
#define RECON_MAX_CREDIT (1u << 24) /* protocol limit on any symbol count or index */
#define RECON_SYMS_PER_MSG 1536     /* 64,512 bytes of symbols per RECON_SYMBOLS */

struct recon_cfg {
    const struct pull_env *env; /* randomness for session ids and salts, and memory
                                 * (required; outlives the engine) */
    struct recon_set *set;      /* the local set (required; outlives the engine) */
    recon_each_fn each;         /* iterator over the set; NULL: sessions that need it
                                 * fail with PULL_ERR_UNSUPPORTED */
    void *each_ctx;
    uint32_t max_symbols;        /* per-session cap (0: RECON_MAX_SYMBOLS_DEFAULT) */
    uint32_t idle_timeout_ms;    /* no message for a session this long: fail (0: default) */
    uint32_t session_timeout_ms; /* whole-session limit (0: default) */
    bool refuse_salted;          /* as responder, refuse salted requests (they cost a pass
                                  * over the store; rate-limit them or refuse them) */
};

enum recon_role { RECON_INITIATOR = 0, RECON_RESPONDER = 1 };

/* Flags for recon_start. */
#define RECON_SALTED                                                                               \
    1u /* per-session random hash key: immune to crafted ids, but both                             \
        * sides pass over their whole set (no cache) */

struct recon_stats {
    uint32_t sid;
    enum recon_role role;
    uint32_t round_trips; /* requests for symbols: REQ + each MORE (the initiator sent
                           * them, the responder answered them) */
    uint64_t bytes_sent;  /* message bytes of this session, both directions */
    uint64_t bytes_recv;
    uint32_t msgs_sent, msgs_recv;
    uint32_t symbols;    /* coded symbols streamed (received by the initiator, sent by
                          * the responder), not counting symbol 0 inside REQ */
    uint32_t d_estimate; /* the responder's estimate of d from REQ */
    uint32_t n_want;     /* ids this side asked for (RECON_EV_WANT) */
    uint32_t n_push;     /* ids this side pushes (RECON_EV_PUSH) */
    uint32_t peer_want;  /* from the peer's DONE: ids it will ask for / push */
    uint32_t peer_push;
    uint32_t passes; /* full iterations over the local set */
    uint64_t started_ms, ended_ms;
};

enum recon_ev_type {
    RECON_EV_SEND = 1,
    RECON_EV_WANT,
    RECON_EV_PUSH,
    RECON_EV_DONE,
    RECON_EV_FAILED,
};

struct recon_event {
    enum recon_ev_type type;
    enum recon_role role; /* which session */
    const uint8_t *msg;   /* SEND */
    size_t len;
    const uint8_t (*ids)[RIBLT_ID_LEN]; /* WANT, PUSH: sorted, distinct */
    size_t n_ids;
    int err;                  /* FAILED: negative PULL_ERR_* */
    const char *reason;       /* FAILED: one printable line */
    bool retry_salted;        /* FAILED: retry with RECON_SALTED */
    struct recon_stats stats; /* DONE, FAILED */
};

struct recon;

/* recon_new creates an engine for one peer. cfg is copied. Returns 0, PULL_ERR_INVAL
 * (missing env or set) or PULL_ERR_NOMEM. */
int recon_new(const struct recon_cfg *cfg, struct recon **out);

/* recon_free releases the engine and its sessions (NULL is fine). */
void recon_free(struct recon *r);

/* recon_start begins a session as initiator (flags: 0 or RECON_SALTED): computes our
 * symbol 0 and estimator samples and queues a RECON_REQ. Returns 0, PULL_ERR_STATE if an
 * initiator session is already running, or an error from the iterator / allocation (then
 * no session exists and no event is produced). */
int recon_start(struct recon *r, uint64_t now_ms, unsigned flags);

/* recon_on_msg takes one received message (type 30..34, the whole frame). Returns 0 if
 * it was handled or ignored (a stale session id), or a negative PULL_ERR_* if the message
 * is malformed or breaks the protocol; the session it belongs to, if any, then fails (a
 * RECON_ERR is queued to the peer and a FAILED event). The host may count such errors
 * against the peer. */
int recon_on_msg(struct recon *r, uint64_t now_ms, const uint8_t *msg, size_t len);

/* recon_poll returns 1 and fills ev with the next event, or 0 when there is none. It may
 * encode a RECON_SYMBOLS message on the spot from symbols computed earlier. If that fails
 * (allocation), the responder session fails and its FAILED event comes next. */
int recon_poll(struct recon *r, uint64_t now_ms, struct recon_event *ev);

/* recon_next_deadline returns when recon_on_timeout should next be called (monotonic
 * ms), or UINT64_MAX if no session is running. */
uint64_t recon_next_deadline(const struct recon *r);

/* recon_on_timeout fails every session whose deadline has passed (RECON_ERR to the peer,
 * FAILED event with PULL_ERR_TIMEOUT). */
void recon_on_timeout(struct recon *r, uint64_t now_ms);

/* recon_active reports whether a session of that role is running. */
bool recon_active(const struct recon *r, enum recon_role role);

/* recon_stats_get copies the running session's statistics; PULL_ERR_NOT_FOUND if none. */
int recon_stats_get(const struct recon *r, enum recon_role role, struct recon_stats *out);

#endif
