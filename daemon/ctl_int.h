/*
 * ctl_int: what the control server's rooms share (internal to daemon/ctl_*.c).
 *
 * The rooms. ctl_server.c is the transport: the listener, the clients, framing, the
 * per-client limits, the dispatcher and its ONE command table. ctl_call.c is the call and
 * its one reply (below), which the transport and every room go through. The commands live
 * in rooms by domain, each a file of its own that knows nothing of sockets:
 *   ctl_status.c   id, status, peers, connect
 *   ctl_doctor.c   doctor: checks of the node, each with what to do
 *   ctl_lookup.c   candidates: what an ambiguous id prefix could mean
 *   ctl_records.c  record.add / edit / renew / withdraw / list, show
 *   ctl_search.c   search, watch (and the events watchers hear, from the node's observers)
 *   ctl_dyads.c    dyad.* (served by dyads_ctl, dyads_cmd.c)
 *   ctl_people.c   profile.*, name.*, names, the author view of show, and
 *                  ctl_resolve_author (daemon/people.h has the names, handles, trust)
 *   ctl_bundles.c  export, import
 *   ctl_invite.c   invite, join (daemon/invites.h keeps the invitations), restart
 *   ctl_pack.c     what several rooms use: records as result maps, typed args with their
 *                  error messages.
 *
 * One reply channel. Every request becomes a struct ctl_call, and every call gets exactly
 * one final reply (more=false); streams send replies with more=true before it. A handler
 * does exactly one of:
 *   - return an error (a negative PULL_ERR_*; ctl_fail records the one-line message that
 *     goes with it): the dispatcher sends it as the reply;
 *   - reply now (ctl_begin, pack the result, ctl_send) and return 0;
 *   - keep the call (ctl_keep, or ctl_stream for a stream) and return 0, then finish it
 *     later, after a commit or a dial, with ctl_done(call, rc): rc 0 after replying, or an
 *     error for ctl_done to send.
 * The dispatcher ends each call with ctl_done(call, handler's return) too, so there is one
 * path for errors. The call tracks its state and enforces the rule: a second final reply
 * is refused (not sent) and logged as a bug; an error returned after replying is dropped
 * and logged; a call whose last holder lets go without any reply gets an "internal error"
 * reply, logged. Bugs are counted in `pull status` ("control": "reply_bugs").
 *
 * Lifetimes. A call holds its client (the client is freed only when its handles are
 * closed and no call refers to it), so a kept call is always safe to finish; replies to a
 * client that went away are discarded (and count as sent). Nothing here is freed inside
 * its own callback chain.
 */
#ifndef PULL_CTL_INT_H
#define PULL_CTL_INT_H

#include <limits.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/ctl_server.h"
#include "daemon/node.h"
#include "lib/mp.h"
#include "lib/record.h"
#include "proto/ctl.h"

#define CTL_QUEUE_MAX (CTL_REPLY_MAX + (8u << 20)) /* unsent bytes per client */
#define CTL_TEXT_ARG_MAX 4096 /* longest str arg read (longer: "bad argument") */

struct ctl_client;
struct ctl_search;

struct ctl_server {
    struct node *n;
    struct ctl_services svc;
    uv_pipe_t listener;
    bool listening;
    bool stopped;
    char path[PATH_MAX];
    dev_t sock_dev;
    ino_t sock_ino;
    struct ctl_client *clients;
    size_t nclients;
    uv_timer_t sweep; /* closes idle and stalled clients (ctl_server.c) */
    bool sweeping;
    size_t watch_mem;                   /* what the watchers' unsent events take, all together */
    uint64_t reply_bugs;                /* calls that broke the one-reply rule (logged) */
    uint64_t evicted;                   /* idle clients closed to let a new one in */
    uint64_t idle_closed;               /* clients closed for sending no request in time */
    uint64_t stalled_closed;            /* clients closed for not reading their replies */
    uint64_t refused;                   /* connections refused: every slot busy */
    uint64_t paced_ms;                  /* time clients waited for their slow commands' share */
    uint64_t verify_waits;              /* importing clients' reads put off: verifiers full */
    uint64_t watch_dropped;             /* events not sent to watchers that fell behind */
    const struct ctl_command *commands; /* the table (ctl_server_set_commands for tests) */
    size_t ncommands;
    struct ctl_search *search; /* ctl_search.c's watchers and my records for match events */
};

/* A stream's hooks (watch, export), called by the transport. */
struct ctl_stream_ops {
    /* A write of the client completed; queued bytes are still unsent (may be NULL). */
    void (*written)(struct ctl_call *call, size_t queued);
    /* The stream must end now: the client is going away (server_stopping false: no reply
     * can reach it) or the server stops (send the last reply). Either way, free the
     * stream's state and ctl_done the call. The stream is already unlinked. */
    void (*stop)(struct ctl_call *call, bool server_stopping);
};

/* One request being answered. Rooms read srv, seq and arg; the rest is the transport's. */
struct ctl_call {
    struct ctl_server *srv;
    uint64_t seq;
    void *arg; /* a kept call's state, the room's */

    struct ctl_client *c;
    const char *cmd; /* the command's name (static), for the logs */
    unsigned refs;   /* the dispatcher while the handler runs, + ctl_keep */
    bool replied;    /* the final reply went out (or was discarded: client gone) */
    int fail_err;    /* the error ctl_fail recorded a message for */
    char fail_msg[CTL_MSG_MAX + 1];
    /* the reply being built (ctl_begin .. ctl_send) */
    bool building, more;
    struct pull_wb w;
    msgpack_packer pk;
    size_t start;
    /* streams: linked in the client's list while running */
    const struct ctl_stream_ops *stream;
    size_t queue_max; /* unsent bytes allowed when sending more=true replies */
    struct ctl_call *stream_next, *stream_prev;
    bool inflight; /* counted in the client's requests in flight (not a stream, no reply) */
};

/* ---- The reply channel (ctl_call.c) ---- */

/* ctl_fail records msg (printf-style, one line, NULL: pull_strerror(err)) as the message of
 * err for this call, and returns err: `return ctl_fail(call, PULL_ERR_KIND, "...")`. */
int ctl_fail(struct ctl_call *call, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ctl_begin starts a reply (the final one unless more) and returns the packer for its
 * result: pack exactly one value, then ctl_send (or ctl_cancel). */
msgpack_packer *ctl_begin(struct ctl_call *call, bool more);

/* ctl_send frames and sends the reply begun by ctl_begin (a TOO_BIG error reply instead if
 * it outgrew CTL_REPLY_MAX: for a stream, that error is its final reply and its stop hook
 * runs). A final reply after the final reply is refused and logged. The client may be
 * dropped here if it does not read its replies (its streams then stop). */
void ctl_send(struct ctl_call *call);

/* ctl_send_packed sends a reply whose result is the one packed value p[0..len) (an event
 * packed once for many watchers). */
void ctl_send_packed(struct ctl_call *call, bool more, const uint8_t *p, size_t len);

/* ctl_cancel drops a reply begun by ctl_begin and not sent. */
void ctl_cancel(struct ctl_call *call);

/* ctl_keep: the caller holds the call beyond the handler's return; finish with ctl_done.
 * Returns call. */
struct ctl_call *ctl_keep(struct ctl_call *call);

/* ctl_stream keeps the call as a stream of the client with ops (copied pointer, static),
 * arg its state and queue_max the unsent bytes its more=true replies may find queued
 * (0: CTL_QUEUE_MAX). Call it from the handler, before any reply (the client is open
 * then). The final reply (ctl_send with more false) unlinks it; the room then finishes
 * with ctl_done; until then ops->stop is called if the client goes or the server stops.
 * Returns call. */
struct ctl_call *ctl_stream(struct ctl_call *call, const struct ctl_stream_ops *ops, void *arg,
                            size_t queue_max);

/* ctl_stream_room: may a more=true reply of len bytes go out on this stream now? No when
 * its client would have more than the stream's queue_max unsent, or when the watchers'
 * unsent events would exceed ctl_watch_total_bytes all together (streams with a
 * queue_max count there). A stream that hears no leaves its event out (ctl_search.c says
 * so to the watcher once it catches up) rather than sending it and being dropped. */
bool ctl_stream_room(const struct ctl_call *call, size_t len);

/* ctl_queued: the bytes of replies to the call's client not yet written. */
size_t ctl_queued(const struct ctl_call *call);

/* ctl_streaming: does the call's client already run a stream with these ops? */
bool ctl_streaming(const struct ctl_call *call, const struct ctl_stream_ops *ops);

/* ctl_done lets go of the call: rc 0 if this holder replied (or leaves it to another), an
 * error to send as the reply (refused and logged if a final reply went out already). When
 * the last holder lets go of a call that got no final reply, an internal error is sent and
 * logged. The call may be freed: don't touch it afterwards. */
void ctl_done(struct ctl_call *call, int rc);

/* ctl_client_closing: the call's client went away (replies are discarded). */
bool ctl_client_closing(const struct ctl_call *call);

/* ctl_server_set_commands replaces the command table (static storage), so that tests can
 * check the dispatcher with handlers that break the rules. (ctl_server.c) */
void ctl_server_set_commands(struct ctl_server *srv, const struct ctl_command *table, size_t n);

/* ---- Between the transport and the calls (ctl_server.c, ctl_call.c; not for rooms) ---- */

/* One connection (ctl_server.c reads it, ctl_call.c counts its calls and links its
 * streams). */
struct ctl_client {
    uv_pipe_t pipe; /* first: the handle's data points back here anyway */
    struct ctl_server *srv;
    struct ctl_client *next, *prev;
    struct ctl_reader rd;
    uint8_t *rest; /* received bytes not yet fed (reading paused) */
    size_t rest_len, rest_off;
    uv_timer_t resume; /* continues with rest on the next loop turn */
    size_t queued;     /* bytes written but not yet completed */
    unsigned refs;     /* calls and callbacks that still refer to the client; +1 per handle */
    bool closing;
    bool paused;
    bool pipe_closing, timer_closing;
    struct ctl_call *streams; /* running streams (watch, export) */
    /* the budget (ctl_server.c's essay) */
    bool spoke;              /* a whole request came */
    unsigned inflight;       /* calls being answered, streams not counted */
    uint64_t since_ms;       /* the last request or end of a call (the connection at first) */
    uint64_t wait_ms;        /* the last write completion, or when the queue began */
    uint64_t paced_until_ms; /* the next request is not read before */
    bool verifies;           /* it imported: held while the verifiers are full */
    size_t watch_mem;        /* this client's share of srv->watch_mem */
};

/* ctl_client_send sends the framed message in w (taking its buffer) unless c already has
 * more than limit bytes unsent, in which case c is dropped (its streams stop); watch: it is
 * a watch event, counted in the watchers' memory. Returns false if c was dropped or is
 * closing (the message is discarded). (ctl_server.c) */
bool ctl_client_send(struct ctl_client *c, struct pull_wb *w, size_t limit, bool watch);

/* ctl_client_schedule resumes c's reading, if it is paused, as soon as it may go on (a call
 * of c ended or replied). (ctl_server.c) */
void ctl_client_schedule(struct ctl_client *c);

/* ctl_client_unref lets go of a reference to c (a call's, a write's, a handle's); the last
 * one frees c. (ctl_server.c) */
void ctl_client_unref(struct ctl_client *c);

/* ctl_call_new makes the call of request seq of c: it holds c and counts as one of c's
 * requests in flight. The dispatcher ends it with ctl_done. NULL if out of memory.
 * (ctl_call.c) */
struct ctl_call *ctl_call_new(struct ctl_client *c, uint64_t seq);

/* ctl_stream_unlink takes a stream call out of its client's list (nothing if it is not a
 * stream); its stop hook is no longer called. (ctl_call.c) */
void ctl_stream_unlink(struct ctl_call *call);

/* ---- Shared packing and args (ctl_pack.c) ---- */

/* ctl_kv_id packs key: the text form of id (a key or a record id, 52 chars) into m. */
void ctl_kv_id(struct mp_open *m, const char *key, const uint8_t id[32]);

enum {
    CTL_REC_MINE = 1 << 0, /* "mine": bool (is the author me?) */
};

/* ctl_record_open opens the record map of proto/ctl.h in m (caller-owned) with every field
 * of a record, "mine" with CTL_REC_MINE, "score" if score > 0, "handle" and the author as
 * people.h names them (ctl_kv_person); the caller may add more fields and closes m
 * (mp_close). ctl_pack_record packs the map whole. */
void ctl_record_open(struct mp_open *m, msgpack_packer *pk, struct ctl_server *srv,
                     const uint8_t id[RECORD_ID_BYTES], const struct record *rec, unsigned flags,
                     uint32_t score);
void ctl_pack_record(msgpack_packer *pk, struct ctl_server *srv, const uint8_t id[RECORD_ID_BYTES],
                     const struct record *rec, unsigned flags, uint32_t score);

/* ctl_kv_person packs what people.h knows of key: "<prefix>_name" (the name they chose, if
 * any), the petname (if any: "petname" for the prefix "author", else "<prefix>_petname")
 * and "<prefix>_label" (how to show them: names_label). */
void ctl_kv_person(struct mp_open *m, struct ctl_server *srv, const char *prefix,
                   const uint8_t key[32]);

/* ctl_decode_env decodes a stored envelope (verified when it was stored) into env/rec. */
int ctl_decode_env(const uint8_t *p, size_t len, struct envelope *env, struct record *rec);

/* ctl_fetch_hit: a search index fetch callback (lib/search.h) reading from the node (ctx). */
int ctl_fetch_hit(void *ctx, uint64_t created, uint64_t id8, struct record *rec);

/* ctl_index_ready rebuilds the node's search index if it asks for it (logged if it fails). */
void ctl_index_ready(struct node *n, uint64_t now_s);

/* ctl_arg_failed: the error of an arg getter's failure: ARITY "missing argument 'k'" if
 * absent, else FIELD "bad argument 'k'". Returns the error (recorded with ctl_fail). */
int ctl_arg_failed(struct ctl_call *call, int rc, const char *key);

/* ctl_opt_text reads an optional str arg into out (outsz bytes) of at most max bytes:
 * longer (up to CTL_TEXT_ARG_MAX) fails with err and its message, beyond that or of the
 * wrong type with FIELD. Returns 1 if present, 0 if absent, or the error. */
int ctl_opt_text(struct ctl_call *call, const struct ctl_request *req, const char *key, char *out,
                 size_t outsz, size_t max, int err);

/* ctl_opt_kind reads "kind" (offer or need only when offer_need; never "withdrawn").
 * Returns 1 if present, 0 if absent, or PULL_ERR_KIND. */
int ctl_opt_kind(struct ctl_call *call, const struct ctl_request *req, bool offer_need,
                 uint8_t *kind);

/* ctl_submit_local signs rec as this node (author set here), submits it and keeps the call:
 * its reply, the record, is sent once the record is committed (or the refusal). Returns 0
 * or the error (recorded with ctl_fail). */
int ctl_submit_local(struct ctl_call *call, struct record *rec);

/* ---- The rooms' handlers (one table in ctl_server.c) ---- */

/* ctl_status.c */
int ctl_h_id(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_status(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_peers(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_connect(struct ctl_call *call, const struct ctl_request *req);

/* ctl_lookup.c */
int ctl_h_candidates(struct ctl_call *call, const struct ctl_request *req);

/* ctl_doctor.c */
int ctl_h_doctor(struct ctl_call *call, const struct ctl_request *req);

/* ctl_records.c */
int ctl_h_record_add(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_record_edit(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_record_renew(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_record_withdraw(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_record_list(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_show(struct ctl_call *call, const struct ctl_request *req);

/* ctl_search.c */
int ctl_h_search(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_watch(struct ctl_call *call, const struct ctl_request *req);

/* ctl_search_start registers the watchers' observer with the node; ctl_search_stop
 * unregisters it; ctl_search_free frees the room's state. ctl_search_watchers counts the
 * running watches. */
int ctl_search_start(struct ctl_server *srv);
void ctl_search_stop(struct ctl_server *srv);
void ctl_search_free(struct ctl_server *srv);
size_t ctl_search_watchers(const struct ctl_server *srv);

/* ctl_dyads.c */
int ctl_h_dyad(struct ctl_call *call, const struct ctl_request *req);

/* ctl_people.c */
int ctl_h_profile_set(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_profile_show(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_name_set(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_name_remove(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_names(struct ctl_call *call, const struct ctl_request *req);

/* ctl_resolve_author finds the author text names: one of my petnames, a full key this node
 * knows, a key prefix of an author of live records (or me), or a unique chosen name.
 * Returns 0, or the error with its message recorded (ctl_fail): NOT_FOUND, AMBIGUOUS. */
int ctl_resolve_author(struct ctl_call *call, const char *text, uint8_t author[32]);

/* ctl_show_author replies to `show` with the author view of the person text names
 * (proto/ctl.h), or returns the error. */
int ctl_show_author(struct ctl_call *call, const char *text);

/* ctl_invite.c */
int ctl_h_invite(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_join(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_restart(struct ctl_call *call, const struct ctl_request *req);

/* ctl_bundles.c */
int ctl_h_export(struct ctl_call *call, const struct ctl_request *req);
int ctl_h_import(struct ctl_call *call, const struct ctl_request *req);

#endif
