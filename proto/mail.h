/*
 * mail: sealed, store-and-forward mail between two nodes that can't reach each other.
 *
 * The two sides of a dyad are often not online at the same time. A dyad message (a signed
 * proto/dyad.h envelope) then travels as a mail item: sealed to the recipient, signed by
 * the sender, carried by any online node until it expires.
 *
 * Item. A canonical MessagePack fixed array of 6 elements:
 *
 *   0 version    uint   = 1
 *   1 recipient  bin 32 Ed25519 key of the recipient
 *   2 sender     bin 32 Ed25519 key of the sender (!= recipient)
 *   3 expires    uint   unix seconds; a relay refuses an item that has expired or that
 *                       expires more than MAIL_TTL_MAX (+ MAIL_SKEW_MAX) after its now
 *   4 sealed     bin    MAIL_SEAL_OVERHEAD+1 .. MAIL_SEALED_MAX bytes
 *   5 sig        bin 64 Ed25519 by the sender over "pull/mail/v1" || the item's bytes up
 *                       to and excluding this field (the array header 0x96 included)
 *
 * The mail id is BLAKE2b-256 of the whole item. A relay verifies the signature (so it can
 * count the item against the sender's quota and refuse forgeries) without being able to
 * read the content. `sealed` is exactly libsodium's crypto_box_seal format (ephemeral
 * X25519 key || crypto_box_easy with nonce BLAKE2b-192(epk || rpk)) to the recipient's
 * X25519 key, converted from its Ed25519 key (crypto_sign_ed25519_pk_to_curve25519); the
 * recipient opens it with crypto_box_seal_open and its converted secret key. mail_seal
 * builds it by hand only so that the ephemeral key comes from the injected env (sans-I/O,
 * and deterministic in the simulator); the bytes open with crypto_box_seal_open.
 *
 * The content is not bound to the sender by the seal (crypto_box_seal is anonymous): the
 * payload carries its own signature (a dyad message is signed by its author), and that is
 * what the recipient trusts. The sender signature is for relays and quotas.
 *
 * Wire messages (proto/msg.h), each a canonical MessagePack array:
 *   MSG_MAIL       [40, [item: bin, ...]]        mail items, pushed or asked for
 *   MSG_MAIL_IHAVE [41, have: [id: bin 32, ...], want: [id: bin 32, ...]]
 *                  announces the ids a node holds and asks for ids it lacks; a node
 *                  answers a `have` with its own MSG_MAIL_IHAVE listing what it wants
 *                  (have may be empty), and answers a `want` with MSG_MAIL.
 * A message is at most MSG_MAX bytes; decoders take the caller's capacity and refuse a
 * longer list with PULL_ERR_TOO_BIG.
 *
 * Relay policy (mail_admit, struct mail_index): dedupe by id; per sender at most
 * sender_items items and sender_bytes bytes held by one node; totals per node; expired
 * items are swept. Items addressed to this node are kept until they expire too, so that
 * relays offering them again are answered "have" rather than downloaded again.
 *
 * Sans-I/O: randomness from a struct pull_env, time as now_s. Preconditions:
 * sodium_init() succeeded.
 */
#ifndef PULL_MAIL_H
#define PULL_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "lib/ident.h"

#define MAIL_VERSION 1
#define MAIL_DOMAIN "pull/mail/v1"
#define MAIL_ID_BYTES 32
#define MAIL_SEAL_OVERHEAD 48 /* crypto_box_SEALBYTES */
#define MAIL_SEALED_MAX 8192
#define MAIL_PLAIN_MAX (MAIL_SEALED_MAX - MAIL_SEAL_OVERHEAD)
#define MAIL_ITEM_MAX (MAIL_SEALED_MAX + 160)
#define MAIL_TTL_MAX (14u * 86400u)
#define MAIL_SKEW_MAX 600u
#define MAIL_IHAVE_MAX 512 /* ids per list in one MSG_MAIL_IHAVE */

/* A parsed item: pointers into the caller's bytes, plus the id. */
struct mail_item {
    const uint8_t *bytes;
    size_t len;
    uint8_t recipient[32];
    uint8_t sender[32];
    uint64_t expires;
    const uint8_t *sealed;
    size_t sealed_len;
    const uint8_t *sig;
    size_t signed_len; /* bytes[0..signed_len) are what sig covers */
    uint8_t id[MAIL_ID_BYTES];
};

/* mail_seal seals plain[0..n) (1..MAIL_PLAIN_MAX bytes) to recipient, signs the item as
 * sender and appends it to out (id_out, if not NULL, gets the mail id). The ephemeral key
 * comes from env. Returns PULL_ERR_BAD_KEY if recipient is not a usable Ed25519 key,
 * PULL_ERR_INVAL if recipient is the sender or n is out of range. */
int mail_seal(const struct pull_env *env, const struct ident *sender,
              const uint8_t recipient[static 32], const uint8_t *plain, size_t n, uint64_t expires,
              struct pull_wb *out, uint8_t id_out[MAIL_ID_BYTES]);

/* mail_parse parses exactly n bytes of an item (structure, sizes, canonical encoding, no
 * trailing bytes) and computes its id; it checks neither the signature nor the time.
 * m points into p. Never allocates. */
int mail_parse(const uint8_t *p, size_t n, struct mail_item *m);

/* mail_verify checks a parsed item for a relay at now_s: not expired (PULL_ERR_EXPIRED),
 * TTL within MAIL_TTL_MAX + MAIL_SKEW_MAX (PULL_ERR_EXPIRY), sender's signature
 * (PULL_ERR_BAD_SIG). */
int mail_verify(const struct mail_item *m, uint64_t now_s);

/* mail_open decrypts an item addressed to me into plain (capacity max), setting *n.
 * Returns PULL_ERR_PERM if the item is for someone else, PULL_ERR_CRYPTO if it doesn't
 * open (tampered, or sealed to another key), PULL_ERR_TOO_BIG if max is too small. The
 * converted secret key is wiped before returning. */
int mail_open(const struct mail_item *m, const struct ident *me, uint8_t *plain, size_t max,
              size_t *n);

/* A reference to one item's bytes inside a buffer. */
struct mail_ref {
    const uint8_t *p;
    size_t len;
};

/* mail_msg_encode appends MSG_MAIL carrying n items to out; PULL_ERR_TOO_BIG if the
 * message would exceed MSG_MAX (send fewer items per message). */
int mail_msg_encode(const struct mail_ref *items, size_t n, struct pull_wb *out);

/* mail_msg_decode parses exactly n bytes of a MSG_MAIL, filling items[0..*count) with
 * references into p (each at most MAIL_ITEM_MAX bytes; items are parsed later, one by
 * one, with mail_parse). More than max items: PULL_ERR_TOO_BIG. */
int mail_msg_decode(const uint8_t *p, size_t n, struct mail_ref *items, size_t max, size_t *count);

/* mail_ihave_encode appends MSG_MAIL_IHAVE with the given ids (each list at most
 * MAIL_IHAVE_MAX, else PULL_ERR_TOO_BIG). */
int mail_ihave_encode(const uint8_t (*have)[MAIL_ID_BYTES], size_t nhave,
                      const uint8_t (*want)[MAIL_ID_BYTES], size_t nwant, struct pull_wb *out);

/* mail_ihave_decode parses exactly n bytes of a MSG_MAIL_IHAVE, copying the ids into
 * have[0..*nhave) and want[0..*nwant) (capacities maxhave, maxwant: PULL_ERR_TOO_BIG if
 * a list is longer). */
int mail_ihave_decode(const uint8_t *p, size_t n, uint8_t (*have)[MAIL_ID_BYTES], size_t maxhave,
                      size_t *nhave, uint8_t (*want)[MAIL_ID_BYTES], size_t maxwant, size_t *nwant);

/* ---- relay policy ---- */

struct mail_quota {
    uint32_t sender_items; /* items one sender may have held by this node */
    uint64_t sender_bytes;
    uint32_t total_items; /* all senders together */
    uint64_t total_bytes;
};

/* What a sender (or everyone) has stored here now, as counted by the host. */
struct mail_usage {
    uint64_t items;
    uint64_t bytes;
};

/* mail_quota_default: 64 items and 256 KiB per sender, 16384 items and 64 MiB in all. */
void mail_quota_default(struct mail_quota *q);

/* mail_admit decides, from the host's counts, whether one more item of item_len bytes
 * from that sender may be stored: 0 or PULL_ERR_QUOTA. Pure. */
int mail_admit(const struct mail_quota *q, const struct mail_usage *sender,
               const struct mail_usage *total, size_t item_len);

/* An in-memory mail store applying that policy, for the simulator, tests and small relays
 * (ids are hashed; a removal or a sweep that drops items costs O(items), and so does the
 * per-sender count of an add). The daemon keeps mail in its LMDB mail table instead and
 * calls mail_admit with counts from there. */
struct mail_index;

/* mail_index_new makes an empty index applying quota q (copied), with memory from env
 * (NULL: the C library's; env must outlive the index). Returns 0 or PULL_ERR_NOMEM.
 * mail_index_free frees it and every item it holds (NULL does nothing). */
int mail_index_new(const struct pull_env *env, const struct mail_quota *q, struct mail_index **out);
void mail_index_free(struct mail_index *ix);

/* mail_index_add parses and verifies an item at now_s (mail_parse, mail_verify), refuses
 * one already held (PULL_ERR_DUPLICATE) or over quota (PULL_ERR_QUOTA), and stores a copy
 * (PULL_ERR_NOMEM: not stored, the index unchanged).
 * id_out, if not NULL, gets the mail id (also when the answer is PULL_ERR_DUPLICATE). */
int mail_index_add(struct mail_index *ix, const uint8_t *p, size_t n, uint64_t now_s,
                   uint8_t id_out[MAIL_ID_BYTES]);

bool mail_index_has(const struct mail_index *ix, const uint8_t id[static MAIL_ID_BYTES]);

/* mail_index_get points *p at the held bytes of an item (valid until the index changes). */
int mail_index_get(const struct mail_index *ix, const uint8_t id[static MAIL_ID_BYTES],
                   const uint8_t **p, size_t *n);

int mail_index_remove(struct mail_index *ix, const uint8_t id[static MAIL_ID_BYTES]);

/* mail_index_sweep drops every item expired at now_s and returns how many. */
size_t mail_index_sweep(struct mail_index *ix, uint64_t now_s);

size_t mail_index_count(const struct mail_index *ix);

/* mail_index_at gives item i (0 <= i < count) in arrival order: its bytes, id and
 * recipient (pointers valid until the index changes). */
int mail_index_at(const struct mail_index *ix, size_t i, const uint8_t **p, size_t *n,
                  const uint8_t **id, const uint8_t **recipient);

/* mail_index_usage reports what one sender (or everyone, if sender is NULL) holds here. */
void mail_index_usage(const struct mail_index *ix, const uint8_t *sender, struct mail_usage *u);

#endif
