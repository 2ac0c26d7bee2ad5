/*
 * people: who the authors are to this node - the names they choose (profile records), the
 * petnames I give them, the handles of their records (so that an id survives renew, edit
 * and withdraw), and the trust that completed dyads build (lib/trust.h).
 *
 * Floors. It stands on the node and on nothing else: the node's observers tell it of every
 * record stored (profiles, attestations, new versions) and swept, and it writes its three
 * tables through node_kv_put / node_kv_del (one commit with the rest of the loop turn).
 * The dyad service and the control server stand on it (main.c hands it to them).
 *
 * Names (lib/names.h). A profile is a record of kind profile: title = the name the author
 * chose, body = about, tags, location. An author's name is that of their newest live
 * profile; it goes when the profile is withdrawn or expires. Petnames are mine, private:
 * the names table (author -> petname), never gossiped.
 *
 * Handles. A record's handle is (author, slot): renew, edit and withdraw keep it and make
 * a new version with a new id. When a version replaces another, the replaced id is kept in
 * the handles table (id -> author || slot || replaced_at, big-endian) for
 * PEOPLE_HANDLE_KEEP_S, so that an id given out before (to a friend, in a dyad's proposal)
 * still finds the live version: people_record, people_record_live. An id this node never
 * held in an older version is unknown to it, as before.
 *
 * Trust. Evidence of a completed dyad is either one of my own completed dyads (the dyad
 * service tells: people_dyad_completed) or an attestation record that passes
 * people_attest_check: the exact shape dyad_attestation_build gives (so, cosigned by the
 * peer: the store verified that), about an offer or need this node knows (stored, or an
 * older version in the handles table) authored by one of its two sides. An attestation
 * about a record this node doesn't know (yet) waits, at most PEOPLE_PENDING_MAX of them,
 * until that record arrives. Checked evidence is kept in the trust table (attestation id
 * -> a || b || dyad slot || expires) so that it outlives the record it is about; it goes
 * when the attestation expires. Distances from me rank search results (people_rank, a
 * lib/match.h trust hook) and filter them (--trusted N: people_within).
 *
 * Everything runs on the loop thread.
 */
#ifndef PULL_PEOPLE_H
#define PULL_PEOPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/node.h"
#include "lib/names.h"
#include "lib/trust.h"

#define PEOPLE_HANDLE_KEEP_S (60u * 86400u) /* replaced ids resolve for 60 days */
#define PEOPLE_PENDING_MAX 4096             /* attestations waiting for their record */
#define PEOPLE_ABOUT_MAX 1000               /* bytes of a profile's about */
#define PEOPLE_GC_MS (3600u * 1000u)        /* the handles table is swept hourly */
#define PEOPLE_PROFILE_RENEW_S (30u * 86400u) /* my profile is renewed this long before */

struct people;

struct people_stats {
    uint64_t names;          /* authors with a chosen name */
    uint64_t petnames;       /* my petnames */
    uint64_t profiles;       /* live profiles known */
    uint64_t handles;        /* replaced ids remembered since start */
    uint64_t evidence;       /* pieces of evidence in the trust graph */
    uint64_t trusted;        /* people at a distance from me */
    uint64_t pending;        /* attestations waiting for their record */
    uint64_t attest_ok;      /* attestations checked and counted */
    uint64_t attest_bad;     /* attestations refused by people_attest_check */
    uint64_t attest_dropped; /* pending attestations dropped (PEOPLE_PENDING_MAX) */
};

/* people_start reads the petnames and the checked evidence, scans the store once for
 * profiles and attestations, registers with the node's observers and arms its timer.
 * Returns 0 or a PULL_ERR_* after logging why. */
int people_start(struct node *n, struct people **out);

/* people_stop unregisters and closes the timer; safe twice and with NULL. */
void people_stop(struct people *p);

/* people_free frees p (after the loop ran the close callbacks). NULL does nothing. */
void people_free(struct people *p);

/* ---- names ---- */

/* people_names returns the directory (valid while p lives; read only). */
const struct names *people_names(const struct people *p);

/* people_label / people_full write names_label / names_full of key (just the short key
 * when p is NULL). Return out. */
const char *people_label(const struct people *p, const uint8_t key[static 32],
                         char out[static NAMES_LABEL_MAX]);
const char *people_full(const struct people *p, const uint8_t key[static 32],
                        char out[static NAMES_LABEL_MAX]);

/* people_set_petname gives key the petname pet (NULL removes it) and queues the write.
 * Returns 0, or with a one-line msg: PULL_ERR_FIELD / PULL_ERR_UTF8 / PULL_ERR_CONTROL
 * (the text rules of lib/names.h, at most NAMES_PETNAME_MAX bytes), PULL_ERR_EXISTS
 * (another person has that petname), PULL_ERR_NOT_FOUND (removing: none), or the
 * node's error. */
int people_set_petname(struct people *p, const uint8_t key[static 32], const char *pet, char *msg,
                       size_t msgsz);

/* people_find finds the person text names: one of my petnames, else a unique chosen name.
 * Returns 0, PULL_ERR_NOT_FOUND, or PULL_ERR_AMBIGUOUS (msg says how many chose it). */
int people_find(const struct people *p, const char *text, uint8_t key[static 32], char *msg,
                size_t msgsz);

/* people_profile writes the id of author's live profile record. Returns 0 or
 * PULL_ERR_NOT_FOUND. */
int people_profile(const struct people *p, const uint8_t author[static 32],
                   uint8_t id[static RECORD_ID_BYTES]);

/* ---- handles ---- */

/* What a record id prefix names. */
struct people_rec {
    uint8_t asked[RECORD_ID_BYTES]; /* the id the prefix matched */
    uint8_t id[RECORD_ID_BYTES];    /* the version of its handle stored now */
    bool superseded;                /* asked is an older version (asked != id) */
};

/* people_record resolves an id prefix: a stored record, else an older version whose
 * handle has a stored version now (that version). Returns 0, PULL_ERR_NOT_FOUND (also
 * for an older version whose handle has nothing stored now: expired and swept) or
 * PULL_ERR_AMBIGUOUS. */
int people_record(struct people *p, const struct ident_prefix *prefix, struct people_rec *out);

/* people_record_live writes the id of the version stored now of id's handle: id itself
 * if it is stored. Returns 0 or PULL_ERR_NOT_FOUND. */
int people_record_live(struct people *p, const uint8_t id[static RECORD_ID_BYTES],
                       uint8_t live[static RECORD_ID_BYTES]);

/* people_handle_text writes a handle as JSON shows it: "AUTHOR/SLOT", the author's key in
 * text form and the slot in hex. */
#define PEOPLE_HANDLE_TEXT (IDENT_TEXT_LEN + 1 + 2 * RECORD_SLOT_BYTES + 1)
void people_handle_text(const uint8_t author[static 32],
                        const uint8_t slot[static RECORD_SLOT_BYTES],
                        char out[static PEOPLE_HANDLE_TEXT]);

/* people_handle writes the handle (author, slot) of record id, stored or replaced.
 * Returns 0 or PULL_ERR_NOT_FOUND. */
int people_handle(struct people *p, const uint8_t id[static RECORD_ID_BYTES],
                  uint8_t author[static 32], uint8_t slot[static RECORD_SLOT_BYTES]);

/* ---- trust ---- */

/* people_trust returns the graph (distances, paths) for reading. */
struct trust *people_trust(struct people *p);

/* people_attest_check checks an attestation record (decoded, its signatures verified) as
 * evidence: 0 if it counts, PULL_ERR_NOT_FOUND if the record it is about is unknown here
 * (it may come later), PULL_ERR_ATTEST if it doesn't have the shape of a dyad's
 * attestation or is about a record of someone else. */
int people_attest_check(struct people *p, const struct record *rec);

/* people_dyads_of reports the completed dyads of author this node has evidence of (my own
 * dyads and checked attestations): how many (each dyad once) and with how many people;
 * fn (may be NULL) is called for each counterpart with their number of dyads together,
 * until it returns non-zero. */
void people_dyads_of(struct people *p, const uint8_t author[static 32], uint32_t *completed,
                     uint32_t *counterparts,
                     int (*fn)(void *ctx, const uint8_t other[32], unsigned dyads), void *ctx);

/* people_dyad_completed: one of my dyads (id) completed with counterpart. */
void people_dyad_completed(struct people *p, const uint8_t dyad[static 32],
                           const uint8_t counterpart[static 32]);

/* people_rank is a match_trust_fn (lib/match.h) with p as ctx: trust_rank of the
 * author's distance. */
uint32_t people_rank(void *p, uint64_t author8);

/* For --trusted N: a match_allow_fn (lib/match.h) with a struct people_within as ctx,
 * keeping authors at most max hops from me (me included). */
struct people_within {
    struct people *p;
    unsigned max;
};
bool people_within(void *ctx, uint64_t author8);

/* people_ranking reports whether ranking by trust changes anything (someone is at a
 * distance from me): search leaves the hook out otherwise. */
bool people_ranking(struct people *p);

/* people_get_stats fills st. */
void people_get_stats(struct people *p, struct people_stats *st);

#endif
