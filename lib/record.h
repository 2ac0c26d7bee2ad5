/*
 * record: the signed records that pull gossips (offers, needs, profiles, withdrawals,
 * attestations).
 *
 * Wire form. A record is a canonical MessagePack fixed-position array of 15 elements:
 *
 *   0 version   uint   = 1
 *   1 kind      uint   1 offer, 2 need, 3 profile, 4 withdrawn, 5 attestation
 *   2 author    bin 32 Ed25519 public key of the signer
 *   3 slot      bin 16 chosen at random by the author; an edit keeps the slot
 *   4 seq       uint   grows with each version of (author, slot)
 *   5 created   uint   unix seconds
 *   6 expires   uint   unix seconds, created < expires <= created + 90 days
 *   7 title     str    1..120 bytes (0 allowed only for withdrawn)
 *   8 body      str    0..3000 bytes (empty for withdrawn)
 *   9 tags      array  0..16 str, each 1..32 bytes of [a-z0-9-_.+] or non-ASCII letters,
 *                      no uppercase ASCII, no duplicates; pull makes them folded
 *                      (record_fold_tags), and `lang-xx` names the record's language
 *  10 location  str    "" or a geohash of 1..12 characters of 0-9b-hjkmnp-z
 *  11 terms     str    0..500 bytes: what the author asks or gives in return
 *  12 link      bin    empty, or 32: id of the record an attestation is about
 *  13 peer      bin    empty, or 32: the counterpart key of an attestation
 *  14 cosig     bin    empty, or 64: the counterpart's signature of an attestation
 *
 * Canonical means: shortest encoding of every integer and header (lib/mp.h), strings valid
 * UTF-8 without control characters (body may contain \n and \t), no trailing bytes. A
 * decoder that accepts a record accepts exactly the bytes record_encode would produce.
 * The whole encoded record is at most RECORD_MAX bytes.
 *
 * Envelope. The bytes that travel and are stored: a MessagePack array
 * `[record_bytes: bin, signature: bin 64]`, signature = Ed25519 by the author over
 * "pull/record/v1" || record_bytes. The record id is BLAKE2b-256 of the whole envelope.
 * Signatures are checked over the exact bytes received.
 *
 * Attestation. kind 5: author and peer are the two sides of a completed dyad (peer !=
 * author), link is the record the dyad was about, slot is the first 16 bytes of the dyad
 * id, and cosig is the peer's signature over "pull/attest/v1" || the record encoded with
 * an empty cosig. Other kinds have empty link, peer and cosig.
 *
 * Replacement. For one (author, slot) the stored version is the one with the highest seq;
 * on equal seq the lower id wins. A withdrawal is a new seq of kind withdrawn with empty
 * title and body, expiring when the withdrawn version would have, so that a replay of an
 * older version is refused until that version has expired anyway.
 *
 * Refusals. Each broken rule has its own code: VERSION, KIND, TITLE (empty, over 120 bytes,
 * or not empty in a withdrawal), BODY, TAGS (more than 16), TAG (empty, over 32 bytes, or a
 * character outside the tag alphabet), TAG_DUP, LOCATION, FIELD (a field of the wrong type
 * or size, terms over 500 bytes), UTF8, CONTROL (C0 controls but \n and \t in body and
 * terms, DEL, C1 controls), EXPIRY (record_check_fields checks it too: it needs no clock),
 * CLOCK_SKEW, EXPIRED (now_s >= expires), ATTEST, NONCANONICAL, TRAILING, TRUNCATED,
 * TOO_BIG, BAD_SIG (signature or cosig), INVISIBLE (text rule 2, below). Without Unicode
 * tables, "non-ASCII letters" in tags means any non-ASCII character except those that are
 * certainly not letters and would let two tags look alike (U+0080..U+00BF, U+00D7, U+00F7,
 * U+2000..U+206F, U+3000, U+FE00..U+FE0F, U+FEFF, U+FFF0..U+FFFF).
 *
 * Text rule 2 (proto/PROTOCOL.md, section 9, "Characters"): title, body, terms and tags hold no
 * hidden code point (record_cp_hidden: bidi controls, zero-width and other invisible or
 * default-ignorable characters, line and paragraph separators), refused with INVISIBLE;
 * tags also hold no combining diacritic (U+0300..U+036F), fullwidth or halfwidth form
 * (U+FF00..U+FFEF), mathematical letter (U+1D400..U+1D7FF) or variation selector
 * (U+E0100..U+E01EF), and never mix ASCII letters with Greek or Cyrillic ones (TAG). It is
 * an admission rule: record_check_fields, record_encode and envelope_open (everything that
 * makes or takes in a record) apply it; record_decode, which also reads records stored
 * before the rule, checks the rules of version 1 only, so those still decode (and their
 * readers escape what they show: the CLI's fmt_clean).
 */
#ifndef PULL_RECORD_H
#define PULL_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/ident.h"

#define RECORD_VERSION 1
#define RECORD_FIELDS 15
#define RECORD_MAX 4096          /* encoded record bytes */
#define RECORD_ENVELOPE_MAX 4200 /* encoded envelope bytes */
#define RECORD_TITLE_MAX 120
#define RECORD_BODY_MAX 3000
#define RECORD_TAGS_MAX 16
#define RECORD_TAG_MAX 32
#define RECORD_LOCATION_MAX 12
#define RECORD_TERMS_MAX 500
#define RECORD_ID_BYTES 32
#define RECORD_SLOT_BYTES 16
#define RECORD_TTL_DEFAULT (30u * 86400u)
#define RECORD_TTL_MAX (90u * 86400u)
#define RECORD_SKEW_MAX 600u /* seconds a record may be created in our future */

#define RECORD_DOMAIN "pull/record/v1"
#define RECORD_ATTEST_DOMAIN "pull/attest/v1"

enum record_kind {
    RECORD_OFFER = 1,
    RECORD_NEED = 2,
    RECORD_PROFILE = 3,
    RECORD_WITHDRAWN = 4,
    RECORD_ATTESTATION = 5,
};

/* A decoded record. Strings are NUL-terminated copies (NUL is refused inside them). */
struct record {
    uint8_t version;
    uint8_t kind;
    uint8_t author[32];
    uint8_t slot[RECORD_SLOT_BYTES];
    uint64_t seq;
    uint64_t created;
    uint64_t expires;
    char title[RECORD_TITLE_MAX + 1];
    char body[RECORD_BODY_MAX + 1];
    uint8_t ntags;
    char tags[RECORD_TAGS_MAX][RECORD_TAG_MAX + 1];
    char location[RECORD_LOCATION_MAX + 1];
    char terms[RECORD_TERMS_MAX + 1];
    bool has_link;
    uint8_t link[32];
    bool has_peer;
    uint8_t peer[32];
    bool has_cosig;
    uint8_t cosig[64];
};

/* A parsed envelope: pointers into the caller's bytes, plus the id. */
struct envelope {
    const uint8_t *bytes; /* the whole envelope */
    size_t len;
    const uint8_t *rec; /* the record bytes inside it */
    size_t rec_len;
    const uint8_t *sig; /* 64 bytes inside it */
    uint8_t id[RECORD_ID_BYTES];
};

/* record_kind_name returns "offer", "need", ... or NULL for an unknown kind. */
const char *record_kind_name(unsigned kind);

/* record_kind_parse maps a name back to its kind; returns 0 or PULL_ERR_KIND. */
int record_kind_parse(const char *name, uint8_t *kind);

/* record_init zeroes rec and sets its version. */
void record_init(struct record *rec);

/* record_check_fields checks every field rule that doesn't depend on time or signatures
 * (lengths, UTF-8, control characters, text rule 2, tag syntax, geohash, kind-specific
 * presence of link/peer/cosig). Returns 0 or the PULL_ERR_* naming the broken rule. */
int record_check_fields(const struct record *rec);

/* record_fold_tags folds rec's tags the way search folds words (lib/fold.h: "CAFÉ" is
 * "cafe", "Straße" is "strasse"), for a record being made: a tag that folds like an earlier
 * one is the same tag and is dropped. Returns 0, or PULL_ERR_TAG if a tag is empty or longer
 * than RECORD_TAG_MAX bytes once folded (rec's tags are then unchanged). Records received
 * keep their tags as signed: the search index folds them when it reads them. */
int record_fold_tags(struct record *rec);

/* record_cp_hidden: is code point cp one that text rule 2 refuses because it does not show
 * as itself - U+00AD, U+034F, U+061C, U+115F, U+1160, U+17B4, U+17B5, U+180B..U+180F,
 * U+200B..U+200F, U+2028..U+202E, U+2060..U+206F, U+3164, U+FEFF, U+FFA0, U+FFF0..U+FFFB,
 * U+FFFE, U+FFFF, U+1BCA0..U+1BCA3, U+1D173..U+1D17A, U+E0000..U+E0FFF except the
 * variation selectors U+E0100..U+E01EF? (Controls are rule 1's.) Printers escape these. */
bool record_cp_hidden(uint32_t cp);

/* record_check_time checks created/expires against now_s: expires after created and at
 * most RECORD_TTL_MAX later (PULL_ERR_EXPIRY), created at most RECORD_SKEW_MAX in the
 * future (PULL_ERR_CLOCK_SKEW), not yet expired (PULL_ERR_EXPIRED). */
int record_check_time(const struct record *rec, uint64_t now_s);

/* record_encode appends the canonical encoding of rec to out after record_check_fields.
 * Returns PULL_ERR_TOO_BIG if it would exceed RECORD_MAX. */
int record_encode(const struct record *rec, struct pull_wb *out);

/* record_encoded_size returns how many bytes record_encode would append for rec (whose
 * string fields must be NUL-terminated inside their arrays). */
size_t record_encoded_size(const struct record *rec);

/* record_decode decodes exactly n bytes into rec, refusing anything non-canonical, any
 * trailing byte and any field rule of version 1 (record_check_fields but text rule 2,
 * which records stored before it may break: envelope_open applies it). Never
 * allocates. */
int record_decode(const uint8_t *p, size_t n, struct record *rec);

/* envelope_parse parses the envelope structure (not the record inside, not the signature)
 * and computes its id. The envelope must be exactly n bytes. */
int envelope_parse(const uint8_t *p, size_t n, struct envelope *env);

/* envelope_peek parses an envelope and reads its record's kind, created and expires
 * (outputs may be NULL) without decoding the rest and WITHOUT checking the signature or
 * the other fields: for envelopes this node already verified and stored (listings,
 * exports, index lookups). Returns 0 or the bounded reader's error. */
int envelope_peek(const uint8_t *p, size_t n, uint64_t *kind, uint64_t *created, uint64_t *expires);

/* envelope_open is the full check for bytes from outside: parse, decode the record, check
 * fields (text rule 2 included) and time against now_s, verify the signature (and an
 * attestation's cosig).
 * On success rec and env describe the record; env points into p. */
int envelope_open(const uint8_t *p, size_t n, uint64_t now_s, struct envelope *env,
                  struct record *rec);

/* record_sign encodes rec (whose author must be id->pk), signs it and appends the envelope
 * to out; if id_out is not NULL the record id is written there. Its scratch memory comes
 * from out's env (lib/buf.h). On failure out is as it was (or carries its own error). */
int record_sign(const struct record *rec, const struct ident *id, struct pull_wb *out,
                uint8_t id_out[RECORD_ID_BYTES]);

/* record_cosign fills rec->cosig with the signature of `peer_id` (whose key must equal
 * rec->peer) over the attestation with an empty cosig, encoding it in scratch memory from
 * env (NULL: the C library's). */
int record_cosign(const struct pull_env *env, struct record *rec, const struct ident *peer_id);

/* record_replaces reports whether record a (id a_id) should replace record b (id b_id) of
 * the same author and slot: a.seq > b.seq, or equal seq and a_id < b_id (memcmp). */
bool record_replaces(uint64_t a_seq, const uint8_t a_id[RECORD_ID_BYTES], uint64_t b_seq,
                     const uint8_t b_id[RECORD_ID_BYTES]);

/* What is stored (or pending) now for the (author, slot) of a record being admitted. */
struct record_prior {
    bool exists;  /* a version of the slot is held */
    uint64_t seq; /* ... its seq and id */
    uint8_t id[RECORD_ID_BYTES];
    bool counted; /* it is counted in live/tombs (known kind) */
    bool live;    /* ... as live (else as a tombstone) */
};

/* record_admit is THE rule for storing one valid, unexpired record (its kind, seq and id)
 * of an author who holds
 * `live` live records and `tombs` tombstones (counts that include prior, if counted):
 * refused with PULL_ERR_STALE unless it replaces the prior version of its slot
 * (record_replaces), and with PULL_ERR_QUOTA if, once the prior version is gone, the
 * author would hold more than max_per_author live records (or tombstones, for a
 * withdrawal). Returns 0 to store it. The store applies it inside its write transaction;
 * pulld applies it before a record joins the pending batch, with counts that include the
 * batch, so both refuse exactly the same records. Pure. */
int record_admit(uint8_t kind, uint64_t seq, const uint8_t id[RECORD_ID_BYTES],
                 const struct record_prior *prior, uint32_t live, uint32_t tombs,
                 uint32_t max_per_author);

#endif
