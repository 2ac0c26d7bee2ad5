/*
 * ctl: the control protocol between pulld and the `pull` CLI (or any local program).
 *
 * This comment is the specification: the server (daemon/ctl_*.c) and the client
 * (cli/) are both written from it.
 *
 * Transport. A unix stream socket at DATA_DIR/pulld.sock (lib/paths.h), mode 0600 in a
 * 0700 directory: whoever can connect owns the node. Several requests may be in flight on
 * one connection; replies carry the request's seq. The server may close a connection that
 * sends no request for a while, or reads none of its replies (pulld's ctl_* limits): a
 * client that keeps a connection open must keep using it, or connect again.
 *
 * Framing. Each message is a u32 big-endian length followed by that many bytes holding
 * exactly one MessagePack map. Lengths are checked before anything is buffered: 1 ..
 * CTL_REQUEST_MAX (4 MiB) for requests, 1 .. CTL_REPLY_MAX (16 MiB) for replies. A length
 * of 0 or over the maximum is a protocol error; the reader fails and the connection is
 * closed. Encoding is canonical MessagePack (shortest forms; msgpack-c's packer produces
 * it); decoding walks the bytes with lib/mp.h's bounded reader only. Maps have string
 * keys (at most CTL_KEY_MAX bytes), no key twice, at most CTL_MAP_MAX keys; unknown keys
 * are ignored (newer clients/servers may add fields). Nesting is limited to CTL_MAX_DEPTH
 * levels in a whole message.
 *
 * Request:  {"cmd": str, "seq": uint, "args": map}
 *   cmd is 1..CTL_CMD_MAX bytes of [a-z0-9._-]. seq is chosen by the client (the CLI
 *   counts from 1); the server echoes it. "args" may be left out (= empty map). An arg
 *   whose value is nil counts as absent.
 * Reply:    {"seq": uint, "err": int, "msg": str, "more": bool, "result": any}
 *   err is 0 or a negative PULL_ERR_* (lib/err.h); msg is "" on success, else a one-line
 *   message for a person (at most CTL_MSG_MAX bytes, no control characters), saying which
 *   rule failed ("title too long or empty", "ambiguous id prefix 'abcdef' (3 records)").
 *   result is nil on error. more is true on every reply of a stream except the last; a
 *   plain command sends exactly one reply with more=false. Every request gets exactly
 *   one reply with more=false (its error, or its result), whatever it asked; the server's
 *   dispatcher guarantees it (daemon/ctl_int.h). Values inside results are
 *   JSON-ready: maps with str keys, str, uint/int, bool, array, nil. No floats (use
 *   integers: scores in thousandths, times in unix seconds, durations in seconds), no ext.
 *   bin appears only where a command says so (export); the CLI's --json prints any bin
 *   as a lowercase hex string. Ids and keys are in text form (ident_to_text: lowercase
 *   base32, 52 characters).
 * A frame that is not a valid request (bad map, missing cmd or seq, bad types) is answered
 * with err PULL_ERR_PROTOCOL (seq echoed if it could be read, else 0) and the connection is
 * closed. Unknown cmd: PULL_ERR_UNKNOWN_CMD, msg "unknown command 'x'"; a required arg
 * missing: PULL_ERR_ARITY, msg "missing argument 'x'"; an arg with the wrong type or size:
 * PULL_ERR_FIELD, msg "bad argument 'x'". These three keep the connection open.
 *
 * Record (a result map), all present on every record:
 *   {"id": text, "kind": "offer"|"need"|"profile"|"withdrawn"|"attestation",
 *    "author": text, "slot": hex (32 chars), "seq": uint, "title": str, "body": str,
 *    "tags": [str], "created": uint, "expires": uint (unix seconds),
 *    "location": str ("" if none), "terms": str ("" if none)}
 *   attestations add "link" (record id, text) and "peer" (key, text).
 *   Servers may add fields (e.g. "mine": bool, "score": uint on search results); pulld
 *   adds "handle": "AUTHOR/SLOT" (author key text, slot hex: the same across renew, edit
 *   and withdraw), "author_label" (how to show the author), and where known "author_name"
 *   (the name the author chose in a profile) and "petname" (mine for the author);
 *   attestations "peer_label", "peer_name", "peer_petname".
 *
 * People. Wherever an arg names a person ("author") it takes my petname, a full key, a key
 * prefix of an author of live records, or a name only one person chose (AMBIGUOUS if
 * several did); an "id" arg of show, dyad.propose ("record") and the dyad commands also
 * takes such a name (show: the person; propose: their only live offer or need; dyads: my
 * only open dyad with them). A record id prefix of an older version names the version
 * stored now of the same handle. Text that is neither an id prefix nor a possible name
 * (no letter or digit, control or invisible characters) is FIELD.
 *
 * Commands (cmd: args -> result). "prefix" args are 6..52 base32 characters of an id; a
 * prefix matching several records fails with PULL_ERR_AMBIGUOUS, none with
 * PULL_ERR_NOT_FOUND. Args marked ? are optional.
 *   "id":      {} -> {"id": text, "addresses": ["ID@HOST:PORT", ...]}
 *   "status":  {} -> {"id", "uptime_s": uint, "peers": uint (connected), "records": uint
 *              (live records stored), "network": str ("public", or a short fingerprint
 *              of a private network key), "version": str, "data_dir": str,
 *              "limits": {str: uint, ...}, ... more fields freely}
 *   "peers":   {} -> [{"id": text, "address": "HOST:PORT", "state": "active"|"passive"|
 *              "connecting"|"unreachable"|"known"|..., "inbound": bool, "score": int,
 *              "bootstrap": bool, "last_error": str|nil, "last_error_kind"?: str,
 *              "last_seen": uint|nil, "next_retry": uint|nil, "clock_skew_ms"?: int, ...}]
 *              (connections, the peers gossip knows, the bootstrap and past peers the
 *              engine remembers, and peers whose dials failed lately)
 *   "connect": {"address": "ID@HOST:PORT"} -> {"ok": true, "address": the address in use,
 *              "already"?: true} once the session is up (or was already); a failed dial is
 *              an error whose msg says why (refused, timeout, wrong id, other network key,
 *              ...); an id that is no key, or this node's own, is BAD_KEY
 *   "doctor":  {} -> stream: one reply per check, more=true, {"check": str, "ok": bool,
 *              "status": "ok"|"warn"|"fail", "detail": str, "hint"?: str (what to do),
 *              "peer"?, "address"?, "result"? (dial checks)}, then more=false
 *              {"checks", "failed", "warnings": uint}
 *   "candidates": {"prefix": prefix, "of": "records"|"mine"|"dyads"} -> {"total": uint,
 *              "candidates": [{"id", "kind", "title", "author"?}, ...] (at most 5)}: what an
 *              ambiguous prefix could mean (the CLI asks after AMBIGUOUS)
 *   "record.add": {"kind": "offer"|"need", "title": str, "body"?: str, "tags"?: [str],
 *              "expires_s"?: uint (lifetime in seconds from now, default 30 days, max 90
 *              days), "location"?: str, "terms"?: str} -> record (after it is stored)
 *   "record.edit": {"id": prefix, "kind"?, "title"?, "body"?, "tags"?, "add_tags"?: [str],
 *              "remove_tags"?: [str], "expires_s"?, "location"?, "terms"?} -> record: a new
 *              version (seq + 1, same slot) of one of my records with the given fields
 *              replaced ("tags" replaces them all, then add_tags/remove_tags amend; optional
 *              for servers: UNKNOWN_CMD is fine)
 *   "record.list": {"kind"?: "offer"|"need", "expired"?: bool} -> [record]: my own live
 *              records, newest first (all my kinds if kind is absent); with "expired", those
 *              that expired instead (the latest version of each slot, kept by the node)
 *   "record.renew": {"id": prefix, "kind"?, "expires_s"?: uint} -> record: new seq, same
 *              content, created = now, expires = now + expires_s (default 30 days)
 *   "record.withdraw": {"id": prefix, "kind"?} -> record: the tombstone (kind "withdrawn")
 *   On edit/renew/withdraw, "id" must name one of MY live records - or, for edit and renew,
 *   one that expired if none live matches (else NOT_FOUND; withdraw: EXPIRED) - and
 *   "kind", which the CLI always sends ("pull need renew" sends "need"), must be its kind
 *   (else PULL_ERR_KIND, msg e.g. "abcdefgh is an offer, not a need").
 *   "search":  {"words"?: [str], "kind"?: str, "tags"?: [str], "author"?: person,
 *              "limit"?: uint (default 20, at most 10000), "total"?: bool, "count"?: bool,
 *              "trusted"?: uint (0..6: only authors within that many hops of me)}
 *              -> [record] best first (lib/match.h ranks; every tag in "tags" must be on
 *              the record); with "total": {"records": [record], "total": uint} (every
 *              match, kept or not); with "count": {"total": uint} alone. Authors nearer
 *              to me in the trust graph rank a little higher (lib/trust.h trust_rank).
 *   "show":    {"id": prefix} -> record (any stored record, mine or not), plus
 *              "author_dyads_completed", "author_dyads_counterparts": uint (the author's
 *              completed dyads and distinct counterparts, from stored attestations).
 *              If no record matches (NOT_FOUND), the prefix is tried as an author key: a
 *              full key this node knows of, or a prefix of the author of a live record
 *              (AMBIGUOUS if it names two) -> {"author": text, "records": uint (live, not
 *              expired), "offers": uint, "needs": uint, "dyads_completed": uint,
 *              "dyads_counterparts": uint, "mine": bool, "author_name"?, "petname"?,
 *              "author_label", "author_full", "profile"?: record, "live": [record]
 *              (offers and needs, newest first), "counterparts": [{"key", "key_label",
 *              "key_name"?, "key_petname"?, "mine": bool, "dyads": uint}], "trust":
 *              {"distance": uint or nil, "paths": [[key, ...]], "path_labels": [[str,
 *              ...]], "independent": uint}}. A record shown for an older version's id
 *              has "superseded_from": that id. Records win: a prefix that matches a
 *              record is never read as an author (no "id" key tells them apart).
 *              Completed dyads are those this node has evidence of (daemon/people.h).
 *   "watch":   {"words"?: [str], "kind"?: str, "tags"?: [str], "mine"?: bool} -> stream.
 *              First reply: more=true, result {"event": "ready"} once the watch is
 *              registered. Then one reply per event, more=true, result
 *              {"event": "record"|"match"|"dyad", "record": record, ...}: "record" = a new
 *              or updated record matching the query; "match" = a need related to one of my
 *              offers or an offer related to one of my needs (match_related), with
 *              "mine": id of my record ("mine_ids": all of mine it relates to, one event
 *              per new record; "mine_title"); "dyad" = a dyad of mine changed, with
 *              "dyad": dyad (and no "record"), its "change" saying what ("ack by peer",
 *              "note by me", "expired"). "mine": true asks for only match and dyad
 *              events (with words/kind/tags: the matches among those). A watcher that
 *              reads too slowly lags: events that would pass its queue are left out, then
 *              one reply {"event": "lagged", "dropped": N} says how many (a search finds
 *              them). The stream ends when the client closes the connection, when it has
 *              read nothing for the server's idle limit (the connection is closed), or
 *              when the server stops (a last reply with more=false). A watch or export
 *              beyond the server's stream slots fails with PULL_ERR_AGAIN.
 *   "export":  {"all"?: bool (false: my own records only; true: every live record)} ->
 *              stream of {"envelopes": [bin, ...]} (raw signed envelopes, at most 256 and
 *              about 1 MiB per reply) with more=true, then a last reply more=false with
 *              {"records": N} (N = envelopes sent in total).
 *   "import":  {"envelopes": [bin, ...] (at most 256, each <= RECORD_ENVELOPE_MAX)} ->
 *              {"imported": uint, "rejected": uint, "already": uint, "expired": uint,
 *              "invalid": uint, "reasons": [{"reason": str, "count": uint}, ...]} (each
 *              envelope fully checked with envelope_open; rejected = already (stored, or a
 *              newer version is) + expired + invalid, the invalid ones by reason)
 *   Dyad commands: "dyad.propose" {"record": prefix, "message"?},
 *   "dyad.accept"/"dyad.decline"/"dyad.done"/"dyad.ack"/"dyad.cancel" {"id": prefix,
 *   "message"?}, "dyad.list" {}, "dyad.show" {"id": prefix} -> dyad {"id", "record",
 *   "proposer", "responder", "state", "updated", ...} (CONTRACT.md), "dyad.message"
 *   {"id", "message"} -> dyad (a note: no state change). A dyad map also has "messages":
 *   [{"kind", "from": "me"|"peer", "author", "author_label", "created", "at", "step",
 *   "text", "note"}] oldest first, "next" (a line: what I do next or whom I wait for),
 *   "record_live", "record_title", "record_kind", "handle", "counterpart_label",
 *   "counterpart_full", and the counterpart's "author_name"?, "petname"?.
 *   "profile.set" {"name"?, "about"?, "tags"?, "location"?} -> the profile record (my
 *   profile's next version; a name is needed the first time); "profile.show"
 *   {"author"?: person} -> the profile record (mine by default) or NOT_FOUND;
 *   "name.set" {"author": person, "petname"} -> {"author", "petname", "author_name"?,
 *   "author_label"}; "name.remove" {"author"} -> the same with "removed": true; "names"
 *   {} -> [{"author", "petname", "author_name"?}] by petname.
 *   "invite": {"uses"?: uint (1..1000, default 1), "expires_s"?: uint (1 s .. 90 days,
 *              default 7 days)} -> {"code": str (lib/invite.h: a secret, shown once),
 *              "uses": uint, "expires": uint (unix seconds), "network": str (as in status),
 *              "private": bool (the code holds the network key), "addresses": ["HOST:PORT",
 *              ...] (those in the code)}; STATE if the node has no dialable address, QUOTA
 *              with 256 invitations open (daemon/invites.h)
 *   "join":    {"code": str} -> {"ok": true, "inviter": text, "address": "HOST:PORT" (the
 *              one that answered), "network": str, "restart": bool (the network key
 *              changed: pulld must restart to use it), "config": the data dir} once the
 *              inviter accepted the code (one use taken there) and the key and the inviter
 *              are in DATA_DIR/config (on the same network, a dial of the inviter has
 *              started). Errors: INVAL (not a code, a typo: msg says which), BAD_KEY (a
 *              code of this node), STATE (pulld runs with --network-key), EXISTS (connected
 *              to the inviter already), the inviter's refusal QUOTA (used up), EXPIRED,
 *              NOT_FOUND (unknown), with its words in msg, or why it could not be reached.
 *   "restart": {} -> {"ok": true}, then pulld stops as on SIGTERM and starts again in the
 *              same process (same pid and arguments), reading its config files again:
 *              how `pull join` moves a running node to the network it joined
 *              (UNSUPPORTED where pulld cannot)
 *   "status" adds "invites_open": uint (invitations that can still be used; absent if
 *   the node keeps none), "name" (my profile's) and "people": {"named", "petnames", "profiles",
 *   "trusted", "evidence", "attestations_counted", "attestations_refused",
 *   "attestations_waiting", "attestations_dropped", "handles"}; "peers" entries add
 *   "author_label", "author_name"?, "petname"?.
 *
 * This module is sans-I/O: it encodes, frames and decodes; sockets are the callers'.
 */
#ifndef PULL_CTL_H
#define PULL_CTL_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define CTL_REQUEST_MAX (4u << 20)
#define CTL_REPLY_MAX (16u << 20)
#define CTL_CMD_MAX 32          /* bytes of a command name */
#define CTL_MSG_MAX 512         /* bytes of an error message */
#define CTL_ARGS_MAX 64         /* keys in an args map */
#define CTL_MAP_MAX 128         /* keys in any map of a message */
#define CTL_KEY_MAX 64          /* bytes of a map key */
#define CTL_MAX_DEPTH 16        /* nesting in a whole message (the top map is depth 1) */
#define CTL_REQUIRED_MAX 4      /* required args per command in a ctl_command */
#define CTL_CHUNK_ENVELOPES 256 /* envelopes per import request / export reply */

/* ---- Framing ----------------------------------------------------------------------- */

/* An incremental frame reader for one connection. Bytes go in with ctl_reader_feed, whole
 * messages come out with ctl_reader_pop. Memory grows with the bytes actually received (not
 * with the declared length) and never beyond one message of at most `max` bytes. */
struct ctl_reader {
    uint8_t hdr[4];
    size_t hdr_have; /* length bytes received so far for the current message */
    size_t want;     /* declared length of the current message, once hdr_have == 4 */
    struct pull_wb body;
    size_t max;
    bool ready; /* a whole message is waiting in body */
    int err;    /* sticky error */
};

/* ctl_reader_init prepares r for messages of at most max bytes (CTL_REQUEST_MAX on the
 * server, CTL_REPLY_MAX on the client). */
void ctl_reader_init(struct ctl_reader *r, size_t max);

/* ctl_reader_release frees r's memory. */
void ctl_reader_release(struct ctl_reader *r);

/* ctl_reader_feed takes bytes from p[0..n) and sets *used to how many it consumed. It
 * stops right after completing a message (ctl_reader_pop then returns it) and takes no
 * more bytes until that message is popped, so callers loop: feed, pop, feed the rest.
 * The declared length is checked as soon as its 4 bytes are in, before any byte of the
 * body is buffered. Returns 0, PULL_ERR_TOO_BIG (length over max), PULL_ERR_MALFORMED
 * (length 0) or PULL_ERR_NOMEM; after an error r stays failed (every call returns it). */
int ctl_reader_feed(struct ctl_reader *r, const void *p, size_t n, size_t *used);

/* ctl_reader_pop returns 1 and points *msg and *len at the next whole message (valid until the
 * next feed, pop or release), or returns 0 if no message is complete yet. */
int ctl_reader_pop(struct ctl_reader *r, const uint8_t **msg, size_t *len);

/* ctl_frame_begin appends a 4-byte length placeholder to out and returns its offset; pack
 * the message after it, then call ctl_frame_end with that offset. */
size_t ctl_frame_begin(struct pull_wb *out);

/* ctl_frame_end writes the length of everything packed since ctl_frame_begin. Returns
 * 0, wb_error(out) if packing failed, or PULL_ERR_TOO_BIG if the message is empty or longer
 * than max. On failure the partial frame is removed (out->len = start) and out's error is
 * cleared, so the caller can append an error reply instead. */
int ctl_frame_end(struct pull_wb *out, size_t start, size_t max);

/* ---- Encoding ---------------------------------------------------------------------- */

/* ctl_pack_request_head packs the start of a request map: {"cmd": cmd, "seq": seq,
 * "args": — the caller then packs exactly one map, the args (msgpack_pack_map(pk, 0) for
 * none). pk must write to a struct pull_wb (mp_packer_init): the head's map is packed with
 * a deferred count (lib/mp.h), as is the reply head below. */
void ctl_pack_request_head(msgpack_packer *pk, const char *cmd, uint64_t seq);

/* ctl_pack_reply_head packs the start of a reply map: {"seq", "err", "msg", "more",
 * "result": — the caller then packs exactly one value, the result (nil on error). msg may
 * be NULL (""); it is cut to CTL_MSG_MAX bytes at a UTF-8 boundary and control characters
 * become spaces. */
void ctl_pack_reply_head(msgpack_packer *pk, uint64_t seq, int err, const char *msg, bool more);

/* ctl_reply_error appends a whole framed error reply (result nil, more false). If msg is
 * NULL, pull_strerror(err) is used. Returns 0 or the writer's error. */
int ctl_reply_error(struct pull_wb *out, uint64_t seq, int err, const char *msg);

/* ---- Decoding ---------------------------------------------------------------------- */

/* A decoded request. Pointers point into the message bytes given to ctl_request_decode and
 * are valid as long as those bytes are. */
struct ctl_request {
    char cmd[CTL_CMD_MAX + 1];
    uint64_t seq;
    bool has_seq;        /* set as soon as seq was read, even if decoding failed later */
    const uint8_t *args; /* the args map, validated (depth, bounds, str keys, no dups) */
    size_t args_len;
    uint32_t nargs;
};

/* ctl_request_decode decodes one request message (the bytes after the length). Returns 0,
 * or PULL_ERR_TRUNCATED / MALFORMED / NONCANONICAL / UTF8 / DEPTH / TRAILING / FIELD (a
 * key with the wrong type, a bad cmd name, a duplicate key, missing cmd or seq) /
 * TOO_BIG (more than CTL_ARGS_MAX args). */
int ctl_request_decode(const uint8_t *p, size_t n, struct ctl_request *req);

/* Typed getters for args. Each returns 0 and the value, PULL_ERR_NOT_FOUND if the arg is
 * absent or nil (outputs are then zero/empty), or PULL_ERR_FIELD if it has the wrong type
 * or is too long (also for a str containing a NUL byte). */

/* ctl_arg_str copies a str of at most max bytes (max < outsz) NUL-terminated into out. */
int ctl_arg_str(const struct ctl_request *req, const char *key, uint32_t max, char *out,
                size_t outsz);
int ctl_arg_uint(const struct ctl_request *req, const char *key, uint64_t max, uint64_t *v);
int ctl_arg_bool(const struct ctl_request *req, const char *key, bool *v);

/* ctl_arg_strs copies an array of at most max_items strs, each at most item_max bytes
 * (item_max < stride), NUL-terminated into out + i * stride; *count gets the number. */
int ctl_arg_strs(const struct ctl_request *req, const char *key, uint32_t max_items,
                 uint32_t item_max, char *out, size_t stride, uint32_t *count);

/* An array arg walked element by element (arrays of bin: envelopes). */
struct ctl_array {
    struct pull_rd rd;
    uint32_t n; /* elements */
    uint32_t i; /* elements read so far */
};

/* ctl_arg_array finds an array arg of at most max_items elements and prepares it. */
int ctl_arg_array(const struct ctl_request *req, const char *key, uint32_t max_items,
                  struct ctl_array *it);

/* ctl_array_next_bin returns 1 with the next bin (at most max bytes; a pointer into the
 * message), 0 at the end, or PULL_ERR_FIELD if the element is not such a bin. */
int ctl_array_next_bin(struct ctl_array *it, uint32_t max, const uint8_t **b, uint32_t *len);

/* ctl_array_next_str is the same for strs. */
int ctl_array_next_str(struct ctl_array *it, uint32_t max, const char **s, uint32_t *len);

/* ctl_arg_raw points *val at the arg's value (any type, nil included), or returns
 * PULL_ERR_NOT_FOUND. */
int ctl_arg_raw(const struct ctl_request *req, const char *key, struct pull_rd *val);

/* A decoded reply. msg is copied; result points into the message bytes. */
struct ctl_reply {
    uint64_t seq;
    int err;
    bool more;
    char msg[CTL_MSG_MAX + 1];
    const uint8_t *result; /* one validated value; nil (0xc0) if absent */
    size_t result_len;
};

/* ctl_reply_decode decodes one reply message. err must be 0 or negative (a positive err is
 * PULL_ERR_FIELD). Same errors as ctl_request_decode. */
int ctl_reply_decode(const uint8_t *p, size_t n, struct ctl_reply *rep);

/* ctl_value_check validates one value of any type at the reader (bounded depth counted from
 * `depth`, canonical forms, UTF-8, str keys in maps, no duplicate keys, floats allowed) and
 * skips over it. Used for args and results; exported for the CLI's printers and fuzzing. */
int ctl_value_check(struct pull_rd *r, unsigned depth);

/* ctl_map_find looks up key in the map at r (which must have been checked) and points *val
 * at its value. Returns 0 or PULL_ERR_NOT_FOUND; r is not moved. */
int ctl_map_find(const struct pull_rd *r, const char *key, struct pull_rd *val);

/* ---- Command table (server side) ---------------------------------------------------- */

enum ctl_flags {
    CTL_F_STREAM = 1 << 0, /* may send several replies (more = true) */
    CTL_F_WRITE = 1 << 1,  /* changes the store */
    CTL_F_SLOW = 1 << 2,   /* may take long: the server may run it off the loop turn */
    CTL_F_VERIFY = 1 << 3, /* hands records to the verifiers: waits while they are full */
};

/* A request being answered: the server's (daemon/ctl_int.h), opaque to the protocol. */
struct ctl_call;

typedef int (*ctl_handler)(struct ctl_call *call, const struct ctl_request *req);

/* One entry of the server's command table. required lists arg names that must be present
 * (not nil), NULL-terminated if fewer than CTL_REQUIRED_MAX. */
struct ctl_command {
    const char *name;
    ctl_handler handler;
    const char *required[CTL_REQUIRED_MAX];
    unsigned flags;
};

/* ctl_command_find returns the entry named name in table[0..n), or NULL. */
const struct ctl_command *ctl_command_find(const struct ctl_command *table, size_t n,
                                           const char *name);

/* ctl_command_lookup finds req->cmd in the table and checks its required args. Returns 0
 * with *cmd set, PULL_ERR_UNKNOWN_CMD, or PULL_ERR_ARITY with *missing set to the first
 * missing arg name. If msg is not NULL, a one-line message for the reply is written there
 * on failure ("unknown command 'x'", "missing argument 'id'"). */
int ctl_command_lookup(const struct ctl_command *table, size_t n, const struct ctl_request *req,
                       const struct ctl_command **cmd, const char **missing, char *msg,
                       size_t msgsz);

#endif
