/*
 * msg: the catalogue of wire messages exchanged between nodes after the handshake.
 *
 * Every frame's plaintext (proto/frame.h) is one message: a canonical MessagePack array
 * whose first element is the message type (uint) below, followed by that type's fields.
 * Each engine encodes and decodes its own messages (gossip in proto/gossip.c, reconciliation
 * in proto/recon.c, dyad mail in proto/dyad.c, the rest in proto/msg.c), always through the
 * bounded reader of lib/mp.h, and all of them are specified in proto/PROTOCOL.md.
 *
 * Rules for evolution: a message may gain fields at the end in a later protocol version;
 * decoders ignore extra trailing fields they don't know (mp_skip). Unknown message types
 * are ignored (counted, not fatal) unless marked critical in PROTOCOL.md.
 */
#ifndef PULL_MSG_H
#define PULL_MSG_H

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
    /* membership, HyParView (proto/gossip.c) */
    MSG_JOIN = 10,
    MSG_FORWARD_JOIN = 11,
    MSG_NEIGHBOR = 12,
    MSG_NEIGHBOR_REPLY = 13,
    MSG_DISCONNECT = 14,
    MSG_SHUFFLE = 15,
    MSG_SHUFFLE_REPLY = 16,
    /* dissemination, Plumtree (proto/gossip.c) */
    MSG_RECORDS = 20, /* eager push of envelopes */
    MSG_IHAVE = 21,   /* lazy announcement of ids */
    MSG_GRAFT = 22,   /* ask for ids and graft the sender into the tree */
    MSG_PRUNE = 23,   /* leave the eager tree */
    MSG_WANT = 24,    /* ask for envelopes by id without grafting */
    /* anti-entropy (proto/recon.c) */
    MSG_RECON_REQ = 30,
    MSG_RECON_SYMBOLS = 31,
    MSG_RECON_MORE = 32,
    MSG_RECON_DONE = 33,
    MSG_RECON_ERR = 34,
    /* sealed mail for dyads (proto/dyad.c) */
    MSG_MAIL = 40,
    MSG_MAIL_IHAVE = 41,
};

/* msg_peek_type reads the type of an encoded message without decoding the rest. Returns 0
 * and the type, or a PULL_ERR_* if p doesn't start with [uint, ...]. */
int msg_peek_type(const uint8_t *p, size_t n, uint32_t *type);

#endif
