/*
 * dyad: the state machine of a pairwise exchange (dyad.h is the manual). This file holds
 * the names, the ONE transition table and its guards, the dyad itself (apply, propose,
 * make, act, timeouts), the attestation and its cosignatures, the dyad's own encoding and
 * the accessors; the signed messages (terms hash, decoder, signer) are in dyad_msg.c, and
 * proto/dyad_int.h is what the two share.
 */
#include "proto/dyad.h"

#include <sodium.h>
#include <string.h>

#include "lib/err.h"
#include "lib/mp.h"
#include "proto/dyad_int.h"

/* bin 8 header + 64 signature bytes: the last field of an encoded attestation. */
#define COSIG_TAIL (2 + 64)

/* ---- names ---- */

static const char *const kind_names[] = {
    [DYAD_PROPOSE] = "propose", [DYAD_ACCEPT] = "accept", [DYAD_DECLINE] = "decline",
    [DYAD_DONE] = "done",       [DYAD_ACK] = "ack",       [DYAD_CANCEL] = "cancel",
    [DYAD_NOTE] = "note",
};

static const char *const state_names[] = {
    [DYAD_ST_PROPOSED] = "proposed",   [DYAD_ST_ACCEPTED] = "accepted",
    [DYAD_ST_DECLINED] = "declined",   [DYAD_ST_DONE] = "done",
    [DYAD_ST_COMPLETED] = "completed", [DYAD_ST_CANCELLED] = "cancelled",
    [DYAD_ST_EXPIRED] = "expired",
};

const char *
dyad_kind_name(unsigned kind)
{
    if (kind < DYAD_KIND_MIN || kind > DYAD_KIND_LAST)
        return NULL;
    return kind_names[kind];
}

const char *
dyad_state_name(unsigned state)
{
    if (state < DYAD_ST_MIN || state > DYAD_ST_MAX)
        return NULL;
    return state_names[state];
}

void
dyad_timeouts_default(struct dyad_timeouts *t)
{
    t->propose_s = 7u * 86400u;
    t->accept_s = 30u * 86400u;
    t->done_s = 14u * 86400u;
}

/* ---- the transition table ----
 *
 * dyad_table[state][kind][role] is either a transition (next state + effect) or a
 * refusal code. Refusals that depend only on (kind, role) are PULL_ERR_PERM in every
 * state: the proposer never accepts or declines, the responder never proposes. Effects
 * carry the guards that need more than the state: EFF_DONE and EFF_ACK refuse a side's
 * second DONE / ACK, EFF_ACK completes the dyad when both sides have acknowledged,
 * EFF_CANCEL refuses a side that has already acknowledged, EFF_ACCEPT checks the terms. */
enum effect {
    EFF_NONE,
    EFF_ACCEPT,
    EFF_DONE,
    EFF_ACK,
    EFF_CANCEL,
};

struct rule {
    uint8_t next;   /* new state, 0 for a refusal */
    uint8_t effect; /* enum effect */
    int8_t err;     /* the refusal, when next is 0 */
};

/* clang-format off */
#define GO(st, eff) {st, eff, 0}
#define NO_STATE {0, EFF_NONE, PULL_ERR_STATE}
#define NO_PERM {0, EFF_NONE, PULL_ERR_PERM}

/* Rows of the closed states: nothing moves them; wrong-role kinds still say PERM. */
#define CLOSED_ROW                                                                            \
    {                                                                                         \
        [DYAD_PROPOSE] = {NO_STATE, NO_PERM}, [DYAD_ACCEPT] = {NO_PERM, NO_STATE},            \
        [DYAD_DECLINE] = {NO_PERM, NO_STATE}, [DYAD_DONE] = {NO_STATE, NO_STATE},             \
        [DYAD_ACK] = {NO_STATE, NO_STATE}, [DYAD_CANCEL] = {NO_STATE, NO_STATE},              \
    }

/* [state][kind][role: proposer, responder] */
static const struct rule dyad_table[DYAD_ST_MAX + 1][DYAD_KIND_MAX + 1][2] = {
    [DYAD_ST_PROPOSED] =
        {
            [DYAD_PROPOSE] = {NO_STATE, NO_PERM},
            [DYAD_ACCEPT] = {NO_PERM, GO(DYAD_ST_ACCEPTED, EFF_ACCEPT)},
            [DYAD_DECLINE] = {NO_PERM, GO(DYAD_ST_DECLINED, EFF_NONE)},
            [DYAD_DONE] = {NO_STATE, NO_STATE},
            [DYAD_ACK] = {NO_STATE, NO_STATE},
            /* The proposer withdraws its proposal; the responder declines instead. */
            [DYAD_CANCEL] = {GO(DYAD_ST_CANCELLED, EFF_CANCEL), NO_STATE},
        },
    [DYAD_ST_ACCEPTED] =
        {
            [DYAD_PROPOSE] = {NO_STATE, NO_PERM},
            [DYAD_ACCEPT] = {NO_PERM, NO_STATE},
            [DYAD_DECLINE] = {NO_PERM, NO_STATE},
            [DYAD_DONE] = {GO(DYAD_ST_DONE, EFF_DONE), GO(DYAD_ST_DONE, EFF_DONE)},
            [DYAD_ACK] = {NO_STATE, NO_STATE},
            [DYAD_CANCEL] = {GO(DYAD_ST_CANCELLED, EFF_CANCEL),
                             GO(DYAD_ST_CANCELLED, EFF_CANCEL)},
        },
    [DYAD_ST_DONE] =
        {
            [DYAD_PROPOSE] = {NO_STATE, NO_PERM},
            [DYAD_ACCEPT] = {NO_PERM, NO_STATE},
            [DYAD_DECLINE] = {NO_PERM, NO_STATE},
            /* The other side may say done too (crossing DONEs); the state stays done. */
            [DYAD_DONE] = {GO(DYAD_ST_DONE, EFF_DONE), GO(DYAD_ST_DONE, EFF_DONE)},
            /* EFF_ACK turns done into completed once both sides have acknowledged. */
            [DYAD_ACK] = {GO(DYAD_ST_DONE, EFF_ACK), GO(DYAD_ST_DONE, EFF_ACK)},
            [DYAD_CANCEL] = {GO(DYAD_ST_CANCELLED, EFF_CANCEL),
                             GO(DYAD_ST_CANCELLED, EFF_CANCEL)},
        },
    [DYAD_ST_DECLINED] = CLOSED_ROW,
    [DYAD_ST_COMPLETED] = CLOSED_ROW,
    [DYAD_ST_CANCELLED] = CLOSED_ROW,
    [DYAD_ST_EXPIRED] = CLOSED_ROW,
};
/* clang-format on */

/* ---- the dyad ---- */

struct dyad_stored {
    uint8_t kind;
    uint8_t role;
    uint16_t len;
    uint8_t *bytes; /* from the dyad's env */
};

struct dyad {
    const struct pull_env *env; /* allocator of the dyad and its scratch records */
    uint8_t id[DYAD_ID_BYTES];
    uint8_t record[RECORD_ID_BYTES];
    uint8_t keys[2][32]; /* by role */
    uint8_t terms[32];
    char note[DYAD_NOTE_MAX + 1];
    size_t note_len;
    uint64_t created;
    uint64_t propose_expires;
    uint64_t accepted_at; /* ACCEPT.created */
    uint64_t done_at;     /* created of the DONE that moved accepted -> done */
    uint64_t updated;
    uint64_t expired_at;
    uint8_t state;
    bool said_done[2];
    bool acked[2];
    bool has_cosig[2];    /* by the role that sent the ACK */
    uint8_t cosig[2][64]; /* cosig[r]: r's cosig of the other side's attestation */
    uint64_t ack_created[2];
    uint32_t next_step[2];
    uint32_t next_note[2]; /* = notes sent by each side */
    struct dyad_timeouts t;
    size_t nmsgs;
    struct dyad_stored msgs[DYAD_MSGS_MAX];
};

static bool
state_open(uint8_t s)
{
    return s == DYAD_ST_PROPOSED || s == DYAD_ST_ACCEPTED || s == DYAD_ST_DONE;
}

/* ---- attestation ---- */

void
dyad_attestation_build(const struct dyad *d, enum dyad_role author, uint64_t created,
                       struct record *rec)
{
    record_init(rec);
    rec->kind = RECORD_ATTESTATION;
    memcpy(rec->author, d->keys[author], 32);
    memcpy(rec->slot, d->id, RECORD_SLOT_BYTES);
    rec->seq = 1;
    rec->created = created;
    rec->expires = created + DYAD_ATTEST_TTL;
    memcpy(rec->title, DYAD_ATTEST_TITLE, sizeof(DYAD_ATTEST_TITLE));
    rec->ntags = 1;
    memcpy(rec->tags[0], DYAD_ATTEST_TAG, sizeof(DYAD_ATTEST_TAG));
    rec->has_link = true;
    memcpy(rec->link, d->record, 32);
    rec->has_peer = true;
    memcpy(rec->peer, d->keys[1 - author], 32);
}

/* Checks that cosig is `signer`'s signature over the attestation authored by the other
 * side with the given created time. The attestation is encoded with the cosig in place,
 * then its last field (`c4 40` + 64 bytes) is replaced by an empty bin (`c4 00`): that is
 * exactly the encoding with an empty cosig, which is what record_cosign signs. */
static int
verify_cosig(const struct dyad *d, enum dyad_role signer, uint64_t created,
             const uint8_t cosig[static 64])
{
    struct record *rec = NULL;
    struct pull_wb w;
    size_t head;
    int rc;

    wb_init_env(&w, d->env, RECORD_MAX);
    if ((rec = env_alloc(d->env, sizeof(*rec))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    dyad_attestation_build(d, (enum dyad_role)(1 - signer), created, rec);
    rec->has_cosig = true;
    memcpy(rec->cosig, cosig, 64);
    if ((rc = record_encode(rec, &w)) != 0) {
        /* Out of memory is not a bad cosig: the ACK may apply once memory is back. */
        if (rc != PULL_ERR_NOMEM)
            rc = PULL_ERR_ATTEST;
        goto out;
    }
    if (w.len < COSIG_TAIL || w.p[w.len - COSIG_TAIL] != 0xc4 ||
        w.p[w.len - COSIG_TAIL + 1] != 64) {
        rc = PULL_ERR_ATTEST; /* unreachable: cosig is the last field */
        goto out;
    }
    head = w.len - COSIG_TAIL;
    w.p[head + 1] = 0x00;
    if (ident_verify(d->keys[signer], RECORD_ATTEST_DOMAIN, w.p, head + 2, cosig) != 0)
        rc = PULL_ERR_ATTEST;
out:
    env_free(d->env, rec);
    wb_release(&w);
    return rc;
}

/* ---- transitions ---- */

int
dyad_role_of(const struct dyad *d, const uint8_t key[static 32])
{
    if (sodium_memcmp(key, d->keys[DYAD_PROPOSER], 32) == 0)
        return DYAD_PROPOSER;
    if (sodium_memcmp(key, d->keys[DYAD_RESPONDER], 32) == 0)
        return DYAD_RESPONDER;
    return -1;
}

/* Looks up (state, kind, role) and applies the guards; on success *rule is the row. */
static int
check_rule(const struct dyad *d, unsigned kind, unsigned role, const struct rule **rule)
{
    const struct rule *r;

    *rule = NULL;
    if (d->state < DYAD_ST_MIN || d->state > DYAD_ST_MAX || kind < DYAD_KIND_MIN ||
        kind > DYAD_KIND_MAX || role > DYAD_RESPONDER)
        return PULL_ERR_INVAL; /* NOTE is not in the table: note_allowed */
    r = &dyad_table[d->state][kind][role];
    if (r->next == 0)
        return r->err;
    switch (r->effect) {
    case EFF_DONE:
        if (d->said_done[role])
            return PULL_ERR_STATE;
        break;
    case EFF_ACK:
    case EFF_CANCEL:
        if (d->acked[role])
            return PULL_ERR_STATE;
        break;
    default:
        break;
    }
    *rule = r;
    return 0;
}

/* A note changes no state: either side may send one in any state, up to its quota. */
static int
note_allowed(const struct dyad *d, unsigned role)
{
    if (role > DYAD_RESPONDER)
        return PULL_ERR_INVAL;
    return d->next_note[role] >= DYAD_NOTES_MAX ? PULL_ERR_QUOTA : 0;
}

int
dyad_allowed(const struct dyad *d, enum dyad_role role, enum dyad_kind kind)
{
    const struct rule *r;

    if (kind == DYAD_NOTE)
        return note_allowed(d, role);
    return check_rule(d, kind, role, &r);
}

uint64_t
dyad_deadline(const struct dyad *d)
{
    switch (d->state) {
    case DYAD_ST_PROPOSED:
        return d->propose_expires;
    case DYAD_ST_ACCEPTED:
        return d->accepted_at + d->t.accept_s;
    case DYAD_ST_DONE:
        return d->done_at + d->t.done_s;
    default:
        return 0;
    }
}

int
dyad_on_timeout(struct dyad *d, uint64_t now_s)
{
    if (!state_open(d->state) || dyad_deadline(d) > now_s)
        return 0;
    d->state = DYAD_ST_EXPIRED;
    d->expired_at = now_s;
    d->updated = now_s;
    return 1;
}

/* The whole check-and-apply of one message; replay skips the clock checks (restoring
 * messages that were checked against the clock when first applied). */
/* Appends a copy of message p[0..n) (kind, role) to d's messages: every check passed, only
 * memory may fail (d then unchanged). */
static int
keep_msg(struct dyad *d, uint8_t kind, int role, const uint8_t *p, size_t n)
{
    uint8_t *copy;

    if (d->nmsgs >= DYAD_MSGS_MAX)
        return PULL_ERR_TOO_BIG; /* unreachable: the guards and quotas bound every side */
    if ((copy = env_alloc(d->env, n)) == NULL)
        return PULL_ERR_NOMEM;
    memcpy(copy, p, n);
    d->msgs[d->nmsgs].kind = kind;
    d->msgs[d->nmsgs].role = (uint8_t)role;
    d->msgs[d->nmsgs].len = (uint16_t)n;
    d->msgs[d->nmsgs].bytes = copy;
    d->nmsgs++;
    return 0;
}

/* A NOTE that passed the checks common to every message. */
static int
apply_note(struct dyad *d, const struct dyad_msg *m, int role, const uint8_t *p, size_t n,
           uint64_t now_s, bool replay)
{
    int rc;

    if (m->step < d->next_note[role])
        return PULL_ERR_DUPLICATE;
    if (m->step > d->next_note[role])
        return PULL_ERR_AGAIN;
    if (!replay) {
        if (m->created > now_s + DYAD_SKEW_MAX)
            return PULL_ERR_CLOCK_SKEW;
        if (state_open(d->state) && now_s >= dyad_deadline(d))
            return PULL_ERR_EXPIRED;
    }
    if ((rc = note_allowed(d, (unsigned)role)) != 0 ||
        (rc = keep_msg(d, DYAD_NOTE, role, p, n)) != 0)
        return rc;
    d->next_note[role] = m->step + 1;
    if (!replay)
        d->updated = now_s;
    return 0;
}

static int
apply_msg(struct dyad *d, const uint8_t *p, size_t n, uint64_t now_s, bool replay)
{
    struct dyad_msg m;
    const struct rule *rule;
    uint8_t id[DYAD_ID_BYTES];
    int role, rc;

    if ((rc = dyad_msg_decode(p, n, &m)) != 0)
        return rc;
    if (m.kind == DYAD_PROPOSE) {
        /* Only one PROPOSE per dyad: the one whose hash is the id. */
        if ((rc = dyad_msg_id(p, n, id)) != 0)
            return rc;
        if (sodium_memcmp(id, d->id, DYAD_ID_BYTES) != 0)
            return PULL_ERR_INVAL;
    } else if (sodium_memcmp(m.dyad, d->id, DYAD_ID_BYTES) != 0) {
        return PULL_ERR_INVAL;
    }
    if ((role = dyad_role_of(d, m.author)) < 0)
        return PULL_ERR_PERM;
    if ((rc = dyad_msg_verify(&m)) != 0)
        return rc;
    if (m.kind == DYAD_NOTE)
        return apply_note(d, &m, role, p, n, now_s, replay);
    if (m.step < d->next_step[role])
        return PULL_ERR_DUPLICATE;
    if (m.step > d->next_step[role])
        return PULL_ERR_AGAIN;
    if (!replay) {
        if (m.created > now_s + DYAD_SKEW_MAX)
            return PULL_ERR_CLOCK_SKEW;
        if (state_open(d->state) && now_s >= dyad_deadline(d))
            return PULL_ERR_EXPIRED;
    }
    if ((rc = check_rule(d, m.kind, (unsigned)role, &rule)) != 0)
        return rc;
    switch (rule->effect) {
    case EFF_ACCEPT:
        if (sodium_memcmp(m.terms, d->terms, 32) != 0)
            return PULL_ERR_PROTOCOL;
        break;
    case EFF_ACK:
        if (m.has_cosig && (rc = verify_cosig(d, (enum dyad_role)role, m.created, m.cosig)) != 0)
            return rc;
        break;
    default:
        break;
    }
    /* Every check passed: keep the message (memory may fail), then commit. */
    if ((rc = keep_msg(d, m.kind, role, p, n)) != 0)
        return rc;
    switch (rule->effect) {
    case EFF_ACCEPT:
        d->accepted_at = m.created;
        break;
    case EFF_DONE:
        if (d->state == DYAD_ST_ACCEPTED)
            d->done_at = m.created;
        d->said_done[role] = true;
        break;
    case EFF_ACK:
        d->acked[role] = true;
        d->ack_created[role] = m.created;
        d->has_cosig[role] = m.has_cosig;
        if (m.has_cosig)
            memcpy(d->cosig[role], m.cosig, 64);
        break;
    default:
        break;
    }
    d->state = rule->next;
    if (rule->effect == EFF_ACK && d->acked[0] && d->acked[1])
        d->state = DYAD_ST_COMPLETED;
    d->next_step[role] = m.step + 1;
    if (!replay)
        d->updated = now_s;
    return 0;
}

int
dyad_apply(struct dyad *d, const uint8_t *p, size_t n, uint64_t now_s)
{
    return apply_msg(d, p, n, now_s, false);
}

static int
from_propose(const struct pull_env *env, const uint8_t *p, size_t n, uint64_t now_s,
             const struct dyad_timeouts *t, bool replay, struct dyad **out)
{
    struct dyad_msg m;
    struct dyad *d = NULL;
    int rc;

    *out = NULL;
    if ((rc = dyad_msg_decode(p, n, &m)) != 0)
        goto out;
    if (m.kind != DYAD_PROPOSE) {
        rc = PULL_ERR_STATE; /* a dyad starts with its proposal */
        goto out;
    }
    if ((rc = dyad_msg_verify(&m)) != 0)
        goto out;
    if (!replay) {
        if (m.created > now_s + DYAD_SKEW_MAX) {
            rc = PULL_ERR_CLOCK_SKEW;
            goto out;
        }
        if (now_s >= m.expires) {
            rc = PULL_ERR_EXPIRED;
            goto out;
        }
    }
    if ((d = env_calloc(env, 1, sizeof(*d))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    d->env = env;
    if ((rc = dyad_msg_id(p, n, d->id)) != 0)
        goto out;
    memcpy(d->record, m.record, 32);
    memcpy(d->keys[DYAD_PROPOSER], m.proposer, 32);
    memcpy(d->keys[DYAD_RESPONDER], m.responder, 32);
    memcpy(d->terms, m.terms, 32);
    memcpy(d->note, m.note, m.note_len);
    d->note[m.note_len] = '\0';
    d->note_len = m.note_len;
    d->created = m.created;
    d->propose_expires = m.expires;
    d->updated = now_s;
    d->state = DYAD_ST_PROPOSED;
    d->t = *t;
    if ((rc = keep_msg(d, DYAD_PROPOSE, DYAD_PROPOSER, p, n)) != 0)
        goto out;
    d->next_step[DYAD_PROPOSER] = 1;
    *out = d;
    d = NULL; /* transferred */
out:
    dyad_free(d);
    return rc;
}

int
dyad_from_propose(const struct pull_env *env, const uint8_t *p, size_t n, uint64_t now_s,
                  const struct dyad_timeouts *t, struct dyad **out)
{
    return from_propose(env, p, n, now_s, t, false, out);
}

int
dyad_propose(const struct pull_env *env, const struct ident *me, const uint8_t record_id[static 32],
             const uint8_t responder[static 32], const char *note, size_t note_len, uint64_t now_s,
             const struct dyad_timeouts *t, struct dyad **out, struct pull_wb *msg_out)
{
    struct dyad_msg m;
    struct pull_wb w;
    int rc;

    *out = NULL;
    memset(&m, 0, sizeof(m));
    wb_init_env(&w, env, DYAD_MSG_MAX);
    if (note == NULL && note_len > 0) {
        rc = PULL_ERR_INVAL;
        goto out;
    }
    if ((rc = dyad_check_note(note, note_len)) != 0)
        goto out;
    if (sodium_memcmp(me->pk, responder, 32) == 0 || t->propose_s == 0 ||
        t->propose_s > DYAD_PROPOSE_TTL_MAX || now_s > DYAD_TIME_MAX - DYAD_PROPOSE_TTL_MAX) {
        rc = PULL_ERR_INVAL;
        goto out;
    }
    m.kind = DYAD_PROPOSE;
    memcpy(m.author, me->pk, 32);
    m.created = now_s;
    m.note = note;
    m.note_len = (uint32_t)note_len;
    memcpy(m.record, record_id, 32);
    memcpy(m.proposer, me->pk, 32);
    memcpy(m.responder, responder, 32);
    m.expires = now_s + t->propose_s;
    if ((rc = dyad_terms_hash(m.record, m.proposer, m.responder, note, note_len, now_s, m.terms)) !=
            0 ||
        (rc = ident_sign(me, DYAD_TERMS_DOMAIN, m.terms, 32, m.terms_sig)) != 0 ||
        (rc = dyad_msg_sign(&m, me, &w)) != 0 ||
        (rc = from_propose(env, w.p, w.len, now_s, t, false, out)) != 0)
        goto out;
    if ((rc = wb_put(msg_out, w.p, w.len)) != 0) {
        dyad_free(*out);
        *out = NULL;
    }
out:
    wb_release(&w);
    return rc;
}

void
dyad_free(struct dyad *d)
{
    const struct pull_env *env;

    if (d == NULL)
        return;
    env = d->env;
    for (size_t i = 0; i < d->nmsgs; i++)
        env_free(env, d->msgs[i].bytes);
    sodium_memzero(d, sizeof(*d));
    env_free(env, d);
}

int
dyad_make(const struct dyad *d, const struct ident *me, enum dyad_kind kind, const char *note,
          size_t note_len, bool attest, uint64_t now_s, struct pull_wb *out)
{
    struct dyad_msg m;
    struct record *att = NULL;
    const struct rule *rule;
    int role, rc;

    memset(&m, 0, sizeof(m));
    if (kind == DYAD_PROPOSE || (note == NULL && note_len > 0) || now_s > DYAD_TIME_MAX) {
        rc = PULL_ERR_INVAL;
        goto out;
    }
    if ((rc = dyad_check_note(note, note_len)) != 0)
        goto out;
    if ((role = dyad_role_of(d, me->pk)) < 0) {
        rc = PULL_ERR_PERM;
        goto out;
    }
    if (kind == DYAD_NOTE) {
        if (note_len == 0) {
            rc = PULL_ERR_FIELD;
            goto out;
        }
        if ((rc = note_allowed(d, (unsigned)role)) != 0)
            goto out;
    } else if ((rc = check_rule(d, kind, (unsigned)role, &rule)) != 0) {
        goto out;
    }
    if (state_open(d->state) && now_s >= dyad_deadline(d)) {
        rc = PULL_ERR_EXPIRED;
        goto out;
    }
    m.kind = (uint8_t)kind;
    memcpy(m.dyad, d->id, DYAD_ID_BYTES);
    memcpy(m.author, me->pk, 32);
    m.step = kind == DYAD_NOTE ? d->next_note[role] : d->next_step[role];
    m.created = now_s;
    m.note = note;
    m.note_len = (uint32_t)note_len;
    if (kind == DYAD_ACCEPT) {
        memcpy(m.terms, d->terms, 32);
        if ((rc = ident_sign(me, DYAD_TERMS_DOMAIN, m.terms, 32, m.terms_sig)) != 0)
            goto out;
    } else if (kind == DYAD_ACK && attest) {
        /* My cosig of the attestation the other side will author (see dyad.h). */
        if ((att = env_alloc(d->env, sizeof(*att))) == NULL) {
            rc = PULL_ERR_NOMEM;
            goto out;
        }
        dyad_attestation_build(d, (enum dyad_role)(1 - role), now_s, att);
        if ((rc = record_cosign(d->env, att, me)) != 0)
            goto out;
        memcpy(m.cosig, att->cosig, 64);
        m.has_cosig = true;
    }
    rc = dyad_msg_sign(&m, me, out);
out:
    env_free(d->env, att);
    return rc;
}

int
dyad_act(struct dyad *d, const struct ident *me, enum dyad_kind kind, const char *note,
         size_t note_len, bool attest, uint64_t now_s, struct pull_wb *out)
{
    struct pull_wb w;
    int rc;

    wb_init_env(&w, d->env, DYAD_MSG_MAX);
    if ((rc = dyad_make(d, me, kind, note, note_len, attest, now_s, &w)) != 0 ||
        (rc = wb_reserve(out, w.len) == NULL ? wb_error(out) : 0) != 0)
        goto out;
    if ((rc = dyad_apply(d, w.p, w.len, now_s)) != 0)
        goto out;
    rc = wb_put(out, w.p, w.len); /* room reserved above: can't fail */
out:
    wb_release(&w);
    return rc;
}

/* ---- persistence ---- */

int
dyad_encode(const struct dyad *d, struct pull_wb *out)
{
    msgpack_packer pk;
    size_t start = out->len;
    int rc;

    if ((rc = wb_error(out)) != 0)
        return rc;
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint64(&pk, DYAD_VERSION);
    msgpack_pack_uint64(&pk, d->updated);
    msgpack_pack_uint64(&pk, d->expired_at);
    msgpack_pack_array(&pk, (uint32_t)d->nmsgs);
    for (size_t i = 0; i < d->nmsgs; i++)
        mp_pack_bin(&pk, d->msgs[i].bytes, d->msgs[i].len);
    if ((rc = wb_error(out)) != 0)
        return rc;
    if (out->len - start > DYAD_ENCODED_MAX) { /* unreachable by construction */
        out->len = start;
        return PULL_ERR_TOO_BIG;
    }
    return 0;
}

int
dyad_decode(const struct pull_env *env, const uint8_t *p, size_t n, const struct dyad_timeouts *t,
            struct dyad **out)
{
    struct pull_rd r;
    struct dyad *d = NULL;
    const uint8_t *b;
    uint64_t v, updated, expired_at;
    uint32_t count, blen;
    int rc;

    *out = NULL;
    if (n > DYAD_ENCODED_MAX)
        return PULL_ERR_TOO_BIG;
    rd_init(&r, p, n);
    if ((rc = mp_read_array_n(&r, 4)) != 0 || (rc = mp_read_uint(&r, &v)) != 0)
        goto out;
    if (v != DYAD_VERSION) {
        rc = PULL_ERR_VERSION;
        goto out;
    }
    if ((rc = mp_read_uint_max(&r, DYAD_TIME_MAX, &updated)) != 0 ||
        (rc = mp_read_uint_max(&r, DYAD_TIME_MAX, &expired_at)) != 0 ||
        (rc = mp_read_array(&r, &count)) != 0)
        goto out;
    if (count < 1 || count > DYAD_MSGS_MAX) {
        rc = PULL_ERR_MALFORMED;
        goto out;
    }
    if ((rc = mp_read_bin(&r, DYAD_MSG_MAX, &b, &blen)) != 0 ||
        (rc = from_propose(env, b, blen, 0, t, true, &d)) != 0)
        goto out;
    for (uint32_t i = 1; i < count; i++) {
        if ((rc = mp_read_bin(&r, DYAD_MSG_MAX, &b, &blen)) != 0 ||
            (rc = apply_msg(d, b, blen, 0, true)) != 0)
            goto out;
    }
    if (rd_left(&r) != 0) {
        rc = PULL_ERR_TRAILING;
        goto out;
    }
    if (expired_at != 0) {
        if (!state_open(d->state)) {
            rc = PULL_ERR_MALFORMED;
            goto out;
        }
        d->state = DYAD_ST_EXPIRED;
        d->expired_at = expired_at;
    }
    d->updated = updated;
    *out = d;
    d = NULL; /* transferred */
out:
    dyad_free(d);
    return rc;
}

/* ---- accessors ---- */

const uint8_t *
dyad_id(const struct dyad *d)
{
    return d->id;
}

const uint8_t *
dyad_record(const struct dyad *d)
{
    return d->record;
}

const uint8_t *
dyad_proposer(const struct dyad *d)
{
    return d->keys[DYAD_PROPOSER];
}

const uint8_t *
dyad_responder(const struct dyad *d)
{
    return d->keys[DYAD_RESPONDER];
}

const uint8_t *
dyad_terms(const struct dyad *d)
{
    return d->terms;
}

enum dyad_state
dyad_state(const struct dyad *d)
{
    return (enum dyad_state)d->state;
}

bool
dyad_is_open(const struct dyad *d)
{
    return state_open(d->state);
}

uint64_t
dyad_created(const struct dyad *d)
{
    return d->created;
}

uint64_t
dyad_updated(const struct dyad *d)
{
    return d->updated;
}

const char *
dyad_note(const struct dyad *d, size_t *len)
{
    if (len != NULL)
        *len = d->note_len;
    return d->note;
}

bool
dyad_said_done(const struct dyad *d, enum dyad_role role)
{
    return role <= DYAD_RESPONDER && d->said_done[role];
}

bool
dyad_acked(const struct dyad *d, enum dyad_role role)
{
    return role <= DYAD_RESPONDER && d->acked[role];
}

unsigned
dyad_notes(const struct dyad *d, enum dyad_role role)
{
    return role <= DYAD_RESPONDER ? d->next_note[role] : 0;
}

const uint8_t *
dyad_peer(const struct dyad *d, enum dyad_role role)
{
    return d->keys[role == DYAD_PROPOSER ? DYAD_RESPONDER : DYAD_PROPOSER];
}

size_t
dyad_msg_count(const struct dyad *d)
{
    return d->nmsgs;
}

int
dyad_msg_at(const struct dyad *d, size_t i, const uint8_t **p, size_t *n, enum dyad_kind *kind,
            enum dyad_role *author)
{
    if (i >= d->nmsgs)
        return PULL_ERR_NOT_FOUND;
    *p = d->msgs[i].bytes;
    *n = d->msgs[i].len;
    if (kind != NULL)
        *kind = (enum dyad_kind)d->msgs[i].kind;
    if (author != NULL)
        *author = (enum dyad_role)d->msgs[i].role;
    return 0;
}

int
dyad_attestation(const struct dyad *d, const struct ident *me, struct pull_wb *out,
                 uint8_t id_out[RECORD_ID_BYTES])
{
    struct record *rec = NULL;
    int role, other, rc;

    if (id_out != NULL)
        memset(id_out, 0, RECORD_ID_BYTES);
    if ((role = dyad_role_of(d, me->pk)) < 0)
        return PULL_ERR_PERM;
    if (d->state != DYAD_ST_COMPLETED)
        return PULL_ERR_STATE;
    other = 1 - role;
    if (!d->has_cosig[other])
        return PULL_ERR_NOT_FOUND;
    if ((rec = env_alloc(d->env, sizeof(*rec))) == NULL)
        return PULL_ERR_NOMEM;
    dyad_attestation_build(d, (enum dyad_role)role, d->ack_created[other], rec);
    rec->has_cosig = true;
    memcpy(rec->cosig, d->cosig[other], 64);
    rc = record_sign(rec, me, out, id_out);
    env_free(d->env, rec);
    return rc;
}
