/*
 * dyad: the state machine of a pairwise exchange, and its signed messages.
 *
 * A dyad is an exchange between a proposer A and a responder B, the author of an offer or
 * need record R. A proposes against R's exact record id; B accepts (then both have signed
 * the same terms hash) or declines; either side says the work is done; both acknowledge;
 * the dyad is then completed. Either side can cancel an open dyad; every open state has a
 * deadline after which the dyad expires.
 *
 *     proposed --ACCEPT(B)--> accepted --DONE(A|B)--> done --ACK(A) + ACK(B)--> completed
 *        |  \--DECLINE(B)--> declined                  (ACK and a second DONE stay in done)
 *        \------ CANCEL / deadline, from proposed (A only), accepted, done --> cancelled,
 *                                                                              expired
 *
 * ONE transition table (state x message kind x author role) in dyad.c decides every step;
 * dyad_apply and dyad_make both consult it, so what a node may send and what it accepts
 * can't drift apart. Guards on top of the table (kept next to it): a side says DONE and
 * ACK at most once each; a side that has acknowledged can no longer cancel (its ACK is a
 * commitment, and this is what keeps both sides convergent when messages cross).
 *
 * Messages. Each is an envelope `[body: bin, sig: bin 64]`, sig = Ed25519 by the author
 * over "pull/dyad/v1" || body. The body is a canonical MessagePack fixed array:
 *
 *   0 version  uint   = 1
 *   1 kind     uint   1 PROPOSE, 2 ACCEPT, 3 DECLINE, 4 DONE, 5 ACK, 6 CANCEL, 7 NOTE
 *   2 dyad     bin 32 the dyad id (32 zero bytes in a PROPOSE)
 *   3 author   bin 32
 *   4 step     uint   the author's own message counter in this dyad: 0, 1, 2, ...
 *                     (for a NOTE, the author's own note counter)
 *   5 created  uint   unix seconds
 *   6 note     str    0..500 bytes of UTF-8 (no control characters but \n and \t)
 *   PROPOSE:  7 record bin 32, 8 proposer bin 32 (= author), 9 responder bin 32,
 *            10 expires uint (answer before; created < expires <= created + 30 days),
 *            11 terms bin 32, 12 terms_sig bin 64
 *   ACCEPT:   7 terms bin 32, 8 terms_sig bin 64
 *   ACK:      7 cosig bin 0 or 64 (see Attestation)
 *   DECLINE, DONE, CANCEL, NOTE: nothing more.
 *
 * Notes (kind 7 NOTE, added after the six steps: a node that doesn't know it refuses it, and
 * nothing else changes). A note is a message in the dyad's conversation that changes no
 * state: its text is 1..500 bytes, it may be sent in any state by either side (in an open
 * state, before the deadline), at most DYAD_NOTES_MAX per side, and its step counts the
 * author's notes (0, 1, 2, ...), apart from the author's steps of the state machine: a
 * peer that drops notes still follows every state, and a missing note never holds up a
 * state message (or the other way round).
 *
 * terms = BLAKE2b-256 of the canonical MessagePack array [record, proposer, responder,
 * note, created] of the PROPOSE; terms_sig = Ed25519 over "pull/dyad/terms/v1" || terms,
 * by the proposer in the PROPOSE and by the responder in the ACCEPT: an accepted dyad is
 * two signatures over one terms hash, checkable by anyone holding the two messages. The
 * dyad id is BLAKE2b-256 of the whole signed PROPOSE envelope.
 *
 * Refusals. dyad_apply takes any message (mine or the peer's) and refuses, each with its
 * own code, and without changing the dyad:
 *   PULL_ERR_INVAL      the message belongs to another dyad;
 *   PULL_ERR_PERM       the author is neither side (a third party), or the wrong side for
 *                       that kind (the proposer can't ACCEPT or DECLINE, the responder
 *                       can't PROPOSE);
 *   PULL_ERR_BAD_SIG    the envelope signature or the ACCEPT's terms_sig is bad;
 *   PULL_ERR_DUPLICATE  a replay: that author's step was already applied;
 *   PULL_ERR_AGAIN      a gap: an earlier message of that author is still missing (mail
 *                       can arrive out of order); keep it and apply it again after the
 *                       next message of that dyad applies;
 *   PULL_ERR_STATE      out of order: the kind is not allowed in the current state (or
 *                       by a guard above);
 *   PULL_ERR_QUOTA      a NOTE beyond the author's DYAD_NOTES_MAX;
 *   PULL_ERR_EXPIRED    the current state's deadline has passed (call dyad_on_timeout);
 *   PULL_ERR_CLOCK_SKEW created more than DYAD_SKEW_MAX seconds in the future;
 *   PULL_ERR_ATTEST     an ACK whose cosig does not verify;
 *   PULL_ERR_FIELD ...  and the decoding errors of lib/mp.h for malformed bytes.
 *
 * Convergence. The two sides apply the same messages in possibly different interleavings
 * (each sees its own message first when two cross). Every crossing that the protocol
 * allows ends in the same state on both sides: DONE/DONE (both marked), ACK/ACK
 * (completed), CANCEL against ACCEPT/DONE/ACK/CANCEL (cancelled: the crossing message is
 * refused on one side and the cancel applies on the other). One pair ends in two different
 * closed states: DECLINE crossing the proposer's CANCEL (declined on B, cancelled on A);
 * both mean "no exchange". Deadlines are computed from the signed created times, so both
 * sides compute the same ones, but a message arriving after its deadline is refused:
 * expiry, like any timeout between two parties, can differ between them.
 *
 * Deadlines (struct dyad_timeouts, configurable): proposed until the PROPOSE's expires
 * (the proposer's choice, default created + 7 days); accepted until ACCEPT.created + 30
 * days; done until (first DONE applied).created + 14 days. dyad_deadline() tells the host
 * when to call dyad_on_timeout(), which moves an open dyad to expired.
 *
 * Attestation (lib/record.h kind RECORD_ATTESTATION). When a dyad completes, each side can
 * publish an attestation record that it authors and the other side cosigns, with no round
 * trip beyond the two ACKs: every ACK carries the sender's cosignature (record_cosign) over
 * the attestation that the OTHER side will author, which is fully determined by the dyad
 * and by that ACK:
 *     author = the other side, peer = the ACK's author, link = R's record id,
 *     slot = first 16 bytes of the dyad id, seq = 1, created = the ACK's created,
 *     expires = created + 90 days, title "dyad completed", tags ["dyad"], the rest empty.
 * So when the dyad completes, each side holds the cosig of its own attestation whatever
 * the order in which the ACKs crossed; dyad_attestation() builds and signs it. An ACK may
 * carry an empty cosig: that side declines to be named in a public attestation (the other
 * side then has nothing to publish). A present cosig is verified before the ACK applies.
 *
 * Persistence. dyad_encode writes every applied message, in order, with the local
 * `updated` time and `expired_at`: [1, updated, expired_at, [msg: bin, ...]].
 * dyad_decode re-verifies every signature and replays every transition (without the
 * clock checks, which held when the messages were first applied). The daemon's contract:
 * after dyad_apply / dyad_on_timeout succeed, it writes dyad_encode's bytes to the LMDB
 * dyads table (key = dyad id) and only after that transaction committed does it answer
 * the CLI or send the message on; a message received from a peer is applied and stored
 * before the mail carrying it is deleted. After a crash the stored dyad is the truth and
 * the peer's copies of undelivered messages are sent again (dyad_msg_at).
 *
 * Routing (for the host). Incoming bytes: dyad_msg_decode gives the kind and dyad id; a
 * PROPOSE (dyad id computed with dyad_msg_id) for an unknown dyad goes to
 * dyad_from_propose, after the host has checked that the responder is its own key and that
 * R is one of its live offer/need records; anything else goes to dyad_apply of the stored
 * dyad with that id. A dyad message always travels inside a mail item (proto/mail.h),
 * sent straight to the peer when connected, else gossiped as sealed mail.
 *
 * Sans-I/O: time is a now_s argument (unix seconds). Memory: a dyad object (about 1 KiB)
 * with a copy of each message it holds, and, briefly, an attestation record while an ACK
 * is made or checked, from the env given
 * to the constructor (kept in the dyad: it must outlive it), and the scratch writers of a
 * message from the output writer's env (lib/buf.h, wb_init_env). Out of memory is
 * PULL_ERR_NOMEM, with the dyad unchanged, never a refusal of the message: apply it again
 * later. Decoding (dyad_msg_decode, dyad_terms_hash) never allocates. Preconditions:
 * sodium_init() succeeded.
 *
 * Where it lives: the state machine, its table and the dyad in dyad.c, the messages (terms
 * hash, decoder, signer) in dyad_msg.c (proto/dyad_int.h is what they share).
 */
#ifndef PULL_DYAD_H
#define PULL_DYAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "lib/ident.h"
#include "lib/record.h"

#define DYAD_VERSION 1
#define DYAD_DOMAIN "pull/dyad/v1"
#define DYAD_TERMS_DOMAIN "pull/dyad/terms/v1"
#define DYAD_ID_BYTES 32
#define DYAD_NOTE_MAX 500
#define DYAD_MSG_MAX 1024 /* one encoded message envelope */
#define DYAD_NOTES_MAX 16 /* notes per side */
#define DYAD_STEPS_MAX 8  /* messages of the state machine a dyad can hold (4 per side) */
#define DYAD_MSGS_MAX (DYAD_STEPS_MAX + 2 * DYAD_NOTES_MAX) /* messages a dyad can hold */
#define DYAD_ENCODED_MAX (DYAD_MSGS_MAX * (DYAD_MSG_MAX + 3) + 64)
#define DYAD_SKEW_MAX 600u /* seconds a message may be created in our future */
#define DYAD_PROPOSE_TTL_MAX (30u * 86400u)
#define DYAD_ATTEST_TTL (90u * 86400u)
#define DYAD_ATTEST_TITLE "dyad completed"
#define DYAD_ATTEST_TAG "dyad"

enum dyad_kind {
    DYAD_PROPOSE = 1,
    DYAD_ACCEPT = 2,
    DYAD_DECLINE = 3,
    DYAD_DONE = 4,
    DYAD_ACK = 5,
    DYAD_CANCEL = 6,
    DYAD_NOTE = 7,
};
#define DYAD_KIND_MIN DYAD_PROPOSE
#define DYAD_KIND_MAX DYAD_CANCEL /* the kinds of the transition table */
#define DYAD_KIND_LAST DYAD_NOTE  /* every kind a message may have */

enum dyad_state {
    DYAD_ST_PROPOSED = 1,
    DYAD_ST_ACCEPTED = 2,
    DYAD_ST_DECLINED = 3,
    DYAD_ST_DONE = 4,
    DYAD_ST_COMPLETED = 5,
    DYAD_ST_CANCELLED = 6,
    DYAD_ST_EXPIRED = 7,
};
#define DYAD_ST_MIN DYAD_ST_PROPOSED
#define DYAD_ST_MAX DYAD_ST_EXPIRED

enum dyad_role {
    DYAD_PROPOSER = 0,
    DYAD_RESPONDER = 1,
};

/* Per-step timeouts in seconds. */
struct dyad_timeouts {
    uint32_t propose_s; /* PROPOSE.expires = created + propose_s (made by dyad_propose) */
    uint32_t accept_s;  /* accepted -> done */
    uint32_t done_s;    /* done -> completed */
};

/* dyad_timeouts_default sets 7, 30 and 14 days. */
void dyad_timeouts_default(struct dyad_timeouts *t);

/* A decoded message: fixed fields copied, note and body pointing into the input bytes. */
struct dyad_msg {
    uint8_t kind;
    uint8_t dyad[DYAD_ID_BYTES];
    uint8_t author[32];
    uint32_t step;
    uint64_t created;
    const char *note; /* not NUL-terminated */
    uint32_t note_len;
    /* PROPOSE */
    uint8_t record[RECORD_ID_BYTES];
    uint8_t proposer[32];
    uint8_t responder[32];
    uint64_t expires;
    /* PROPOSE and ACCEPT */
    uint8_t terms[32];
    uint8_t terms_sig[IDENT_SIG_BYTES];
    /* ACK */
    bool has_cosig;
    uint8_t cosig[IDENT_SIG_BYTES];
    /* the envelope */
    const uint8_t *body;
    size_t body_len;
    const uint8_t *sig;
};

/* dyad_kind_name returns "propose", "accept", ..., "note", or NULL. */
const char *dyad_kind_name(unsigned kind);

/* dyad_state_name returns the CONTRACT.md name: "proposed", "accepted", "declined",
 * "done", "completed", "cancelled", "expired"; NULL for anything else. */
const char *dyad_state_name(unsigned state);

/* dyad_msg_decode parses exactly n bytes of one message envelope into m: structure, field
 * sizes, canonical encoding, no trailing bytes, kind-specific fields, and (for PROPOSE)
 * proposer == author != responder and a terms hash that matches the fields. It does NOT
 * verify signatures (dyad_msg_verify) nor compare with a dyad. Never allocates; m points
 * into p. Returns 0 or a PULL_ERR_* (TOO_BIG over DYAD_MSG_MAX). */
int dyad_msg_decode(const uint8_t *p, size_t n, struct dyad_msg *m);

/* dyad_msg_verify checks the envelope signature of a decoded message (PULL_ERR_BAD_SIG),
 * and the proposer's terms_sig of a PROPOSE. */
int dyad_msg_verify(const struct dyad_msg *m);

/* dyad_msg_id writes BLAKE2b-256 of the n message bytes: for a PROPOSE, the dyad id. */
int dyad_msg_id(const uint8_t *p, size_t n, uint8_t id[static DYAD_ID_BYTES]);

/* dyad_terms_hash computes the terms hash of a proposal's fields. */
int dyad_terms_hash(const uint8_t record[static 32], const uint8_t proposer[static 32],
                    const uint8_t responder[static 32], const char *note, size_t note_len,
                    uint64_t created, uint8_t terms[static 32]);

struct dyad;

/* dyad_propose makes my proposal against record_id, whose author is responder: the signed
 * PROPOSE (created = now_s, expires = now_s + t->propose_s, note of note_len bytes, may be
 * NULL if 0) is appended to msg_out, and *out is a new dyad in state proposed holding it,
 * allocated from env (NULL: the C library's; env must outlive the dyad).
 * Returns PULL_ERR_INVAL if responder is me, PULL_ERR_FIELD for a note over
 * DYAD_NOTE_MAX or not UTF-8 (PULL_ERR_CONTROL for control characters). The caller frees
 * *out with dyad_free. On failure *out is NULL and msg_out is unchanged. */
int dyad_propose(const struct pull_env *env, const struct ident *me,
                 const uint8_t record_id[static 32], const uint8_t responder[static 32],
                 const char *note, size_t note_len, uint64_t now_s, const struct dyad_timeouts *t,
                 struct dyad **out, struct pull_wb *msg_out);

/* dyad_from_propose verifies a PROPOSE received from a peer (or restored) and creates the
 * dyad it starts, in state proposed. Checks: decoding, both signatures, created not beyond
 * now_s + DYAD_SKEW_MAX (PULL_ERR_CLOCK_SKEW), expires not passed (PULL_ERR_EXPIRED) and
 * within DYAD_PROPOSE_TTL_MAX (PULL_ERR_EXPIRY). The caller checks who the responder is.
 * t gives the later steps' timeouts (it is copied). The dyad is allocated from env, as in
 * dyad_propose. */
int dyad_from_propose(const struct pull_env *env, const uint8_t *p, size_t n, uint64_t now_s,
                      const struct dyad_timeouts *t, struct dyad **out);

/* dyad_free frees a dyad; NULL does nothing. */
void dyad_free(struct dyad *d);

/* dyad_make builds and signs my next message of the given kind (not PROPOSE) at now_s,
 * (a NOTE needs a note of 1..DYAD_NOTE_MAX bytes: PULL_ERR_FIELD otherwise),
 * appending it to out, WITHOUT applying it: the caller passes the bytes to dyad_apply (or
 * uses dyad_act). It refuses with the code dyad_apply would give (PULL_ERR_PERM if me is
 * not a side or the wrong side, PULL_ERR_STATE, PULL_ERR_EXPIRED) so the CLI gets the
 * reason before anything is signed. For ACK, attest says whether to include my cosig of
 * the other side's attestation; it is ignored for other kinds. */
int dyad_make(const struct dyad *d, const struct ident *me, enum dyad_kind kind, const char *note,
              size_t note_len, bool attest, uint64_t now_s, struct pull_wb *out);

/* dyad_act is dyad_make followed by dyad_apply of the result: the usual way to act. On
 * failure nothing is appended and d is unchanged. */
int dyad_act(struct dyad *d, const struct ident *me, enum dyad_kind kind, const char *note,
             size_t note_len, bool attest, uint64_t now_s, struct pull_wb *out);

/* dyad_apply verifies one message (n bytes) against the dyad and, if every check passes,
 * applies its transition and keeps a copy of the bytes. Returns 0 or a refusal listed in
 * the overview; on any refusal d is unchanged. now_s is the local clock. */
int dyad_apply(struct dyad *d, const uint8_t *p, size_t n, uint64_t now_s);

/* dyad_allowed says whether `role` may send `kind` now (0) or why not (the code dyad_make
 * would return, PULL_ERR_EXPIRED excepted): for a CLI listing the possible actions. For
 * NOTE: PULL_ERR_QUOTA once role sent DYAD_NOTES_MAX notes. */
int dyad_allowed(const struct dyad *d, enum dyad_role role, enum dyad_kind kind);

/* dyad_deadline returns when the current state expires (unix seconds), 0 when the dyad
 * is closed (declined, completed, cancelled, expired). */
uint64_t dyad_deadline(const struct dyad *d);

/* dyad_on_timeout moves an open dyad whose deadline is <= now_s to expired and returns 1
 * (the caller stores it), else returns 0 and changes nothing. */
int dyad_on_timeout(struct dyad *d, uint64_t now_s);

/* dyad_encode appends the persisted form (see the overview) to out. */
int dyad_encode(const struct dyad *d, struct pull_wb *out);

/* dyad_decode restores a dyad from n bytes of dyad_encode output, re-verifying every
 * message and transition. t gives the timeouts (current configuration). The dyad is
 * allocated from env, as in dyad_propose. */
int dyad_decode(const struct pull_env *env, const uint8_t *p, size_t n,
                const struct dyad_timeouts *t, struct dyad **out);

/* Accessors. Pointers returned stay valid while d lives and is not changed. */
const uint8_t *dyad_id(const struct dyad *d);
const uint8_t *dyad_record(const struct dyad *d);
const uint8_t *dyad_proposer(const struct dyad *d);
const uint8_t *dyad_responder(const struct dyad *d);
const uint8_t *dyad_terms(const struct dyad *d);
enum dyad_state dyad_state(const struct dyad *d);
bool dyad_is_open(const struct dyad *d);
uint64_t dyad_created(const struct dyad *d);              /* the PROPOSE's created */
uint64_t dyad_updated(const struct dyad *d);              /* local now_s of the last change */
const char *dyad_note(const struct dyad *d, size_t *len); /* the proposal's note */
bool dyad_said_done(const struct dyad *d, enum dyad_role role);
bool dyad_acked(const struct dyad *d, enum dyad_role role);
unsigned dyad_notes(const struct dyad *d, enum dyad_role role); /* notes role sent */

/* dyad_role_of returns the role of key in d, or -1 if key is neither side. */
int dyad_role_of(const struct dyad *d, const uint8_t key[static 32]);

/* dyad_peer returns the key of the side that is not role. */
const uint8_t *dyad_peer(const struct dyad *d, enum dyad_role role);

/* dyad_msg_count / dyad_msg_at give the applied messages in order (to send again). */
size_t dyad_msg_count(const struct dyad *d);
int dyad_msg_at(const struct dyad *d, size_t i, const uint8_t **p, size_t *n, enum dyad_kind *kind,
                enum dyad_role *author);

/* dyad_attestation_build fills rec with the attestation authored by `author` (a role)
 * whose created is `created`, with an empty cosig: the record the other side cosigns in
 * its ACK (see the overview). */
void dyad_attestation_build(const struct dyad *d, enum dyad_role author, uint64_t created,
                            struct record *rec);

/* dyad_attestation builds the attestation that `me` authors for a completed dyad, puts
 * in it the cosig that the other side sent in its ACK, signs it (record_sign) and appends
 * the envelope to out (id_out, if not NULL, gets its record id). Returns PULL_ERR_STATE if
 * d is not completed, PULL_ERR_PERM if me is not a side, PULL_ERR_NOT_FOUND if the other
 * side's ACK carried no cosig. */
int dyad_attestation(const struct dyad *d, const struct ident *me, struct pull_wb *out,
                     uint8_t id_out[RECORD_ID_BYTES]);

#endif
