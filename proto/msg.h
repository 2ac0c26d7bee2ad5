/*
 * msg: the catalogue of wire messages exchanged between nodes after the handshake.
 *
 * Every frame's plaintext (proto/frame.h) is one message: a canonical MessagePack array
 * whose first element is the message type (uint) below, followed by that type's fields.
 * Each engine encodes and decodes its own messages (gossip: decoded in proto/gossip_codec.c,
 * encoded in membership.c and plumtree.c; reconciliation in proto/recon_msg.c, sealed mail
 * in proto/mail.c, the rest in proto/msg.c), always through the bounded reader of
 * lib/mp.h, and all of them are specified in proto/PROTOCOL.md.
 *
 * Rules for evolution: a message may gain fields at the end in a later protocol version;
 * decoders ignore extra trailing fields they don't know (mp_skip). Unknown message types
 * are ignored (counted, not fatal) unless marked critical in PROTOCOL.md.
 */
#ifndef PULL_MSG_H
#define PULL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define PULL_PROTO_VERSION 1
#define MSG_MAX 65536 /* largest plaintext message, equal to the frame limit */

enum msg_type {
    /* session (proto/msg.c) */
    MSG_HELLO = 1,
    MSG_PING = 2,
    MSG_PONG = 3,
    MSG_BYE = 4,
    /* membership, HyParView (proto/membership.c) */
    MSG_JOIN = 10,
    MSG_FORWARD_JOIN = 11,
    MSG_NEIGHBOR = 12,
    MSG_NEIGHBOR_REPLY = 13,
    MSG_DISCONNECT = 14,
    MSG_SHUFFLE = 15,
    MSG_SHUFFLE_REPLY = 16,
    /* dissemination, Plumtree (proto/plumtree.c) */
    MSG_RECORDS = 20, /* eager push of envelopes */
    MSG_IHAVE = 21,   /* lazy announcement of ids */
    MSG_GRAFT = 22,   /* ask for ids and graft the sender into the tree */
    MSG_PRUNE = 23,   /* leave the eager tree */
    MSG_WANT = 24,    /* ask for envelopes by id without grafting */
    /* anti-entropy (proto/recon_msg.c) */
    MSG_RECON_REQ = 30,
    MSG_RECON_SYMBOLS = 31,
    MSG_RECON_MORE = 32,
    MSG_RECON_DONE = 33,
    MSG_RECON_ERR = 34,
    MSG_RECON_BULK = 35, /* "these are all my ids": a small node's exact catch-up */
    MSG_RECON_HAVE = 36, /* "I hold these ids you lack": the answer to RECON_BULK, in chunks */
    MSG_RECON_TAKE = 37, /* "send me these of that chunk" */
    /* sealed mail for dyads (proto/mail.c) */
    MSG_MAIL = 40,
    MSG_MAIL_IHAVE = 41,
};

/* msg_peek_type reads the type of an encoded message without decoding the rest. Returns 0
 * and the type, or a PULL_ERR_* if p doesn't start with [uint, ...]. */
int msg_peek_type(const uint8_t *p, size_t n, uint32_t *type);

/* msg_type_name returns the lower-case name of a message type ("hello", "recon_req", ...),
 * or NULL for a type this version doesn't know. */
const char *msg_type_name(uint32_t type);

/*
 * Session messages (proto/msg.c): the first and last words of a connection, and liveness.
 *
 *   HELLO [1, proto_min, proto_max, features, listen_port, agent, time_ms?, reach?, invite?]
 *   PING  [2, nonce]          PONG [3, nonce]  (the PONG echoes the PING's nonce)
 *   BYE   [4, reason, text]
 *
 * Each side sends HELLO as its first frame and sends nothing else before it has received
 * the peer's HELLO. Both then use msg_negotiate(): the highest version both speak; if there
 * is none, the side that notices sends BYE (MSG_BYE_VERSION) as its final frame and closes.
 * BYE is normally sent in the final frame (frame.h) and ends the connection.
 *
 * Decoders take exactly the bytes of one frame: canonical MessagePack only (lib/mp.h), no
 * byte after the array; fields appended by later versions are skipped; strings must be
 * valid UTF-8 without control characters (they end up in logs). Encoders refuse what their
 * decoder would refuse.
 */
#define MSG_AGENT_MAX 64     /* bytes of HELLO's agent string */
#define MSG_INVITE_BYTES 16  /* HELLO's invite secret */
#define MSG_BYE_TEXT_MAX 200 /* bytes of BYE's text */
#define MSG_PROTO_MIN 1      /* the versions this build speaks */
#define MSG_PROTO_MAX PULL_PROTO_VERSION

/* HELLO feature bits: what optional engines a node runs. Unknown bits are ignored. */
#define MSG_FEAT_RECON (UINT64_C(1) << 0) /* answers anti-entropy (MSG_RECON_*) */
#define MSG_FEAT_MAIL (UINT64_C(1) << 1)  /* stores and forwards dyad mail (MSG_MAIL*) */

struct msg_hello {
    uint32_t proto_min; /* 1 <= proto_min <= proto_max */
    uint32_t proto_max;
    uint64_t features;             /* MSG_FEAT_* bits */
    uint16_t listen_port;          /* TCP port the node accepts connections on, 0 if none */
    char agent[MSG_AGENT_MAX + 1]; /* software and version, e.g. "pulld/0.1.0"; NUL-ended */
    uint64_t time_ms; /* the sender's wall clock (unix ms) when it sent the HELLO, 0: not
                         said (a trailing field: encoded only when not 0) */
    uint8_t reach;    /* enum msg_reach: who can dial listen_port (a trailing field after
                         time_ms, encoded only when not MSG_REACH_UNSAID; an unknown value
                         decodes as MSG_REACH_UNSAID) */
    /* A dialer redeeming an invitation (lib/invite.h) presents its secret here; the node
     * it dials answers with a BYE whatever it finds (daemon/invites.h). A trailing field
     * after reach (time_ms and reach are then encoded, 0 if not said); older nodes skip it. */
    bool has_invite;
    uint8_t invite[MSG_INVITE_BYTES];
};

/* HELLO's reach: from where the sender accepts connections on listen_port. */
enum msg_reach {
    MSG_REACH_UNSAID = 0, /* not said (an older node): dial it as before */
    MSG_REACH_OPEN = 1,   /* from anywhere: a public address, or a port mapped on its router */
    MSG_REACH_LOCAL = 2,  /* only from its own network: a private address and no mapping, so a
                             peer that sees it come from a public address must not dial it */
};

/* msg_hello_dial_port returns the port a peer that received h on an inbound connection may
 * dial the sender at: h->listen_port, or 0 (do not dial it) when the sender accepts only
 * local connections and the connection came from a public address (seen_public: the
 * observed address is neither private, link-local, CGNAT nor loopback; see
 * gossip_addr_public). */
uint16_t msg_hello_dial_port(const struct msg_hello *h, bool seen_public);

/* BYE reasons. Unknown reasons are reported as they are (msg_bye_reason_str: "unknown"). */
enum msg_bye_reason {
    MSG_BYE_NORMAL = 0,    /* shutting down or done with this peer */
    MSG_BYE_VERSION = 1,   /* no common protocol version */
    MSG_BYE_PROTOCOL = 2,  /* the peer broke the protocol (malformed or unexpected message) */
    MSG_BYE_BUSY = 3,      /* too many connections; try another node */
    MSG_BYE_DUPLICATE = 4, /* already connected to this peer */
    MSG_BYE_TIMEOUT = 5,   /* the peer was silent too long */
    MSG_BYE_QUOTA = 6,     /* the peer sent too much, or too many bad records */
    MSG_BYE_SELF = 7,      /* the peer is this node itself */
    MSG_BYE_INVITE = 8,    /* the answer to a HELLO with an invite: text "accepted", or why
                              not ("used up", "expired", "unknown") */
};

struct msg_bye {
    uint32_t reason;
    char text[MSG_BYE_TEXT_MAX + 1]; /* human-readable detail, may be empty; NUL-ended */
};

/* Any session message, as msg_session_decode returns it. */
struct msg_session {
    uint32_t type; /* MSG_HELLO, MSG_PING, MSG_PONG or MSG_BYE */
    union {
        struct msg_hello hello;
        uint64_t nonce; /* PING, PONG */
        struct msg_bye bye;
    } u;
};

/* msg_hello_init fills h with this build's versions (MSG_PROTO_MIN..MSG_PROTO_MAX), the given
 * features, port and agent (truncated to MSG_AGENT_MAX bytes at a UTF-8 boundary). */
void msg_hello_init(struct msg_hello *h, uint64_t features, uint16_t listen_port,
                    const char *agent);

/* msg_hello_encode appends the HELLO message to out. Returns 0, PULL_ERR_FIELD if the
 * versions are out of order or zero or the agent is too long or has control characters,
 * PULL_ERR_UTF8, or the writer's error. */
int msg_hello_encode(const struct msg_hello *h, struct pull_wb *out);

/* msg_hello_decode decodes a HELLO message of exactly n bytes into h. */
int msg_hello_decode(const uint8_t *p, size_t n, struct msg_hello *h);

/* msg_ping_encode appends a PING (type MSG_PING) or PONG (MSG_PONG) carrying nonce. */
int msg_ping_encode(uint32_t type, uint64_t nonce, struct pull_wb *out);

/* msg_ping_decode decodes a PING or a PONG; *type tells which. */
int msg_ping_decode(const uint8_t *p, size_t n, uint32_t *type, uint64_t *nonce);

/* msg_bye_encode appends a BYE with reason and text (NULL or "" for none). */
int msg_bye_encode(uint32_t reason, const char *text, struct pull_wb *out);

/* msg_bye_decode decodes a BYE into b. */
int msg_bye_decode(const uint8_t *p, size_t n, struct msg_bye *b);

/* msg_session_decode decodes any session message into m. Returns 0, PULL_ERR_UNSUPPORTED
 * when the message is well-formed up to its type but is not a session message (m->type
 * holds the type: msg_type_name tells another engine's type from an unknown one), or the
 * decoding error. */
int msg_session_decode(const uint8_t *p, size_t n, struct msg_session *m);

/* msg_negotiate picks the protocol version for a connection: the highest version in both
 * [ours->proto_min, ours->proto_max] and [theirs->proto_min, theirs->proto_max]. Returns 0
 * and *version, or PULL_ERR_VERSION when the ranges don't meet (send msg_bye_version). */
int msg_negotiate(const struct msg_hello *ours, const struct msg_hello *theirs, uint32_t *version);

/* msg_bye_version appends the BYE for a failed negotiation: reason MSG_BYE_VERSION and a
 * text naming the versions we speak ("no common protocol version: this node speaks 1..1"). */
int msg_bye_version(const struct msg_hello *ours, struct pull_wb *out);

/* msg_bye_reason_str returns a short lower-case description of a BYE reason. */
const char *msg_bye_reason_str(uint32_t reason);

/*
 * RECON_BULK (proto/msg.c; PROTOCOL.md section 11, "Bulk catch-up"): a node that holds few
 * records lists all of them, and the receiver pushes it every record it holds that is not
 * listed (and may ask for the listed ids it lacks). Exact, and no coded symbols: for a peer
 * that lacks nearly everything this costs 32 bytes per id it holds instead of ~57 bytes per
 * id it lacks.
 *
 *   RECON_BULK [35, sid, ids: bin(32 n)]     0 <= n <= MSG_BULK_MAX, ids strictly ascending
 */
#define MSG_BULK_MAX 2000 /* ids in one RECON_BULK: 64,000 bytes, under MSG_MAX */

struct msg_bulk {
    uint32_t sid;             /* 1 .. 2^32-1, names the catch-up in logs */
    const uint8_t (*ids)[32]; /* n ids, strictly ascending (byte order); decode: points
                               * into the decoded input */
    uint32_t n;
};

/* msg_bulk_encode appends a RECON_BULK. Returns 0, PULL_ERR_FIELD (sid 0, n over
 * MSG_BULK_MAX, ids not strictly ascending) or the writer's error. */
int msg_bulk_encode(const struct msg_bulk *b, struct pull_wb *out);

/* msg_bulk_decode decodes a RECON_BULK of exactly n bytes into b (b->ids points into p).
 * Returns 0 or PULL_ERR_TOO_BIG, TRUNCATED, MALFORMED, FIELD (sid 0, a length that is not a
 * multiple of 32, too many ids, ids out of order or repeated), NONCANONICAL, TRAILING. */
int msg_bulk_decode(const uint8_t *p, size_t n, struct msg_bulk *b);

/*
 * The answer to a RECON_BULK, one chunk at a time (PROTOCOL.md section 11):
 *   RECON_HAVE [36, sid, seq, ids: bin(32 n)]       1 <= n <= MSG_HAVE_MAX ids the sender
 *                                                  holds and the bulk's sender lacks
 *   RECON_TAKE [37, sid, seq, prefixes: bin(4 m)]   0 <= m <= MSG_HAVE_MAX: the first
 *                                                  MSG_TAKE_PREFIX bytes of each id of chunk
 *                                                  seq the receiver wants pushed
 * The next chunk follows a TAKE that took at least a quarter of the last one, so what the
 * serving node sends stays a small multiple of what the catching-up node asks.
 */
#define MSG_HAVE_MAX 1024
#define MSG_TAKE_PREFIX 4

struct msg_have {
    uint32_t type; /* MSG_RECON_HAVE or MSG_RECON_TAKE */
    uint32_t sid, seq;
    const uint8_t *ids; /* HAVE: n ids of 32 bytes; TAKE: n prefixes of MSG_TAKE_PREFIX */
    uint32_t n;
};

/* msg_have_encode appends a RECON_HAVE or RECON_TAKE (h->type). Returns 0, PULL_ERR_FIELD
 * or the writer's error. msg_have_decode decodes exactly n bytes of either (ids point into
 * p): PULL_ERR_FIELD for sid 0, a ragged length, an empty HAVE, too many ids. */
int msg_have_encode(const struct msg_have *h, struct pull_wb *out);
int msg_have_decode(const uint8_t *p, size_t n, struct msg_have *h);

#endif
