/*
 * people: names, handles and trust (people.h is the manual).
 *
 * In memory: the names directory (lib/names.h), the trust graph (lib/trust.h), the live
 * profiles (author -> profile id, slot, created; and profile id -> author, for sweeps), and
 * a ring of attestations waiting for the record they are about (link id -> the newest one,
 * each pointing to the next one with the same link).
 */
#include "daemon/people.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/keymap.h"
#include "lib/log.h"
#include "lib/store.h"
#include "proto/dyad.h"

#define HANDLE_VAL_LEN (32 + RECORD_SLOT_BYTES + 8)    /* author || slot || replaced_at */
#define TRUST_VAL_LEN (32 + 32 + TRUST_DYAD_BYTES + 8) /* a || b || dyad || expires */
#define NONE UINT32_MAX

struct prof {
    uint8_t author[32];
    uint8_t id[RECORD_ID_BYTES];
    uint8_t slot[RECORD_SLOT_BYTES];
    uint64_t created;
    bool used;
};

/* What the trust graph needs of an attestation. */
struct record_lite {
    uint8_t author[32], peer[32];
    uint8_t slot[RECORD_SLOT_BYTES];
    uint64_t created, expires;
};

struct pend {
    uint8_t id[RECORD_ID_BYTES]; /* the attestation */
    uint8_t link[RECORD_ID_BYTES];
    struct record_lite r;
    uint32_t next; /* the next pending one with the same link, NONE */
    bool used;
};

struct people {
    struct node *n;
    struct names *nm;
    struct trust *tr;
    struct keymap *prof_by_author, *prof_by_id;
    struct prof *profs;
    size_t nprofs, cprofs;
    uint32_t prof_free; /* a free profile slot, NONE */
    struct keymap *pend_by_link;
    struct pend *pend; /* a ring of PEOPLE_PENDING_MAX */
    uint32_t pend_next;
    uv_timer_t timer;
    bool timer_init, observing;
    struct people_stats st;
    struct record *rec; /* scratch */
};

/* ---- names ---- */

const struct names *
people_names(const struct people *p)
{
    return p != NULL ? p->nm : NULL;
}

const char *
people_label(const struct people *p, const uint8_t key[static 32], char out[static NAMES_LABEL_MAX])
{
    if (p == NULL) {
        ident_short(key, out);
        return out;
    }
    return names_label(p->nm, key, out);
}

const char *
people_full(const struct people *p, const uint8_t key[static 32], char out[static NAMES_LABEL_MAX])
{
    if (p == NULL) {
        ident_short(key, out);
        return out;
    }
    return names_full(p->nm, key, out);
}

int
people_set_petname(struct people *p, const uint8_t key[static 32], const char *pet, char *msg,
                   size_t msgsz)
{
    char who[NAMES_LABEL_MAX];
    uint8_t other[32];
    int rc;

    if (pet == NULL) {
        if (names_petname(p->nm, key) == NULL) {
            snprintf(msg, msgsz, "%s has no petname", people_full(p, key, who));
            return PULL_ERR_NOT_FOUND;
        }
        if ((rc = node_kv_del(p->n, STORE_NAMES, key)) != 0) {
            snprintf(msg, msgsz, "%s", pull_strerror(rc));
            return rc;
        }
        return names_set_petname(p->nm, key, NULL);
    }
    if ((rc = names_check_text(pet, strlen(pet), NAMES_PETNAME_MAX, false)) != 0) {
        snprintf(msg, msgsz,
                 rc == PULL_ERR_FIELD ? "a petname is 1 to %d bytes with a letter or digit"
                                      : "a petname is one line of text without control or "
                                        "invisible characters (at most %d bytes)",
                 NAMES_PETNAME_MAX);
        return rc;
    }
    rc = names_find(p->nm, pet, other, NULL);
    if (rc == 0 && names_petname(p->nm, other) != NULL && memcmp(other, key, 32) != 0) {
        snprintf(msg, msgsz,
                 "'%s' is already your petname for %s: remove it first "
                 "(pull name --remove)",
                 pet, people_full(p, other, who));
        return PULL_ERR_EXISTS;
    }
    if ((rc = node_kv_put(p->n, STORE_NAMES, key, pet, strlen(pet))) != 0 ||
        (rc = names_set_petname(p->nm, key, pet)) != 0) {
        snprintf(msg, msgsz, "%s", pull_strerror(rc));
        return rc; /* a write queued before a failure here: loaded at the next start */
    }
    return 0;
}

int
people_find(const struct people *p, const char *text, uint8_t key[static 32], char *msg,
            size_t msgsz)
{
    unsigned count = 0;
    int rc = names_find(p->nm, text, key, &count);

    if (rc == PULL_ERR_AMBIGUOUS)
        snprintf(msg, msgsz, "%u people chose the name '%s': give a key prefix instead", count,
                 text);
    else if (rc == PULL_ERR_NOT_FOUND)
        snprintf(msg, msgsz, "nobody named '%s' (no petname, no profile)", text);
    return rc;
}

/* ---- profiles ---- */

int
people_profile(const struct people *p, const uint8_t author[static 32],
               uint8_t id[static RECORD_ID_BYTES])
{
    uint32_t i;

    if (!keymap_get(p->prof_by_author, author, &i))
        return PULL_ERR_NOT_FOUND;
    memcpy(id, p->profs[i].id, RECORD_ID_BYTES);
    return 0;
}

static void
profile_clear(struct people *p, uint32_t i)
{
    struct prof *pr = &p->profs[i];

    (void)names_set_name(p->nm, pr->author, NULL, 0, pr->created);
    keymap_del(p->prof_by_author, pr->author);
    keymap_del(p->prof_by_id, pr->id);
    pr->used = false;
    pr->created = p->prof_free;
    p->prof_free = i;
    p->st.profiles--;
}

/* A live profile record: the author's name, if it is their newest. */
static void
profile_seen(struct people *p, const uint8_t id[RECORD_ID_BYTES], const struct record *rec)
{
    uint32_t i;
    struct prof *pr;

    if (keymap_get(p->prof_by_author, rec->author, &i)) {
        if (p->profs[i].created > rec->created)
            return; /* an older profile (another slot, or late) */
        keymap_del(p->prof_by_id, p->profs[i].id);
    } else {
        if (p->prof_free != NONE) {
            i = p->prof_free;
            p->prof_free = (uint32_t)p->profs[i].created;
        } else {
            if (p->nprofs == p->cprofs) {
                size_t cap = p->cprofs ? p->cprofs * 2 : 64;
                struct prof *v = realloc(p->profs, cap * sizeof(*v));
                if (v == NULL)
                    return;
                p->profs = v;
                p->cprofs = cap;
            }
            i = (uint32_t)p->nprofs++;
        }
        if (keymap_put(p->prof_by_author, rec->author, i) != 0) {
            p->profs[i].used = false;
            p->profs[i].created = p->prof_free;
            p->prof_free = i;
            return;
        }
        p->st.profiles++;
    }
    pr = &p->profs[i];
    memcpy(pr->author, rec->author, 32);
    memcpy(pr->id, id, RECORD_ID_BYTES);
    memcpy(pr->slot, rec->slot, RECORD_SLOT_BYTES);
    pr->created = rec->created;
    pr->used = true;
    (void)keymap_put(p->prof_by_id, id, i);
    if (names_set_name(p->nm, rec->author, rec->title, strlen(rec->title), rec->created) != 0)
        log_warn("people: a profile name not kept (out of memory or too many people)");
}

/* A withdrawal of (author, slot): the profile goes if it was that one. */
static void
profile_withdrawn(struct people *p, const struct record *rec)
{
    uint32_t i;

    if (keymap_get(p->prof_by_author, rec->author, &i) &&
        memcmp(p->profs[i].slot, rec->slot, RECORD_SLOT_BYTES) == 0)
        profile_clear(p, i);
}

/* ---- handles ---- */

static int
handle_get(struct people *p, const uint8_t id[RECORD_ID_BYTES], uint8_t author[32],
           uint8_t slot[RECORD_SLOT_BYTES])
{
    struct pull_wb w;
    int rc;

    wb_init(&w, HANDLE_VAL_LEN);
    if ((rc = node_kv_get(p->n, STORE_HANDLES, id, &w)) == 0) {
        if (w.len != HANDLE_VAL_LEN) {
            rc = PULL_ERR_NOT_FOUND;
        } else {
            memcpy(author, w.p, 32);
            memcpy(slot, w.p + 32, RECORD_SLOT_BYTES);
        }
    }
    wb_release(&w);
    return rc;
}

int
people_handle(struct people *p, const uint8_t id[static RECORD_ID_BYTES], uint8_t author[static 32],
              uint8_t slot[static RECORD_SLOT_BYTES])
{
    uint8_t buf[RECORD_ENVELOPE_MAX];
    struct envelope e;
    size_t len;
    int rc;

    if (node_fetch_record(p->n, id, buf, sizeof(buf), &len) == 0 &&
        envelope_parse(buf, len, &e) == 0 && record_decode(e.rec, e.rec_len, p->rec) == 0) {
        memcpy(author, p->rec->author, 32);
        memcpy(slot, p->rec->slot, RECORD_SLOT_BYTES);
        return 0;
    }
    rc = handle_get(p, id, author, slot);
    return rc == 0 ? 0 : PULL_ERR_NOT_FOUND;
}

int
people_record_live(struct people *p, const uint8_t id[static RECORD_ID_BYTES],
                   uint8_t live[static RECORD_ID_BYTES])
{
    uint8_t author[32], slot[RECORD_SLOT_BYTES];

    if (node_has_record(p->n, id)) {
        memcpy(live, id, RECORD_ID_BYTES);
        return 0;
    }
    if (handle_get(p, id, author, slot) != 0 ||
        store_latest(p->n->store, author, slot, NULL, live, NULL) != 0)
        return PULL_ERR_NOT_FOUND;
    return 0;
}

int
people_record(struct people *p, const struct ident_prefix *prefix, struct people_rec *out)
{
    int rc;

    memset(out, 0, sizeof(*out));
    rc = store_resolve_prefix(p->n->store, prefix, out->asked);
    if (rc == 0) {
        memcpy(out->id, out->asked, RECORD_ID_BYTES);
        return 0;
    }
    if (rc != PULL_ERR_NOT_FOUND)
        return rc;
    if ((rc = store_kv_resolve_prefix(p->n->store, STORE_HANDLES, prefix, out->asked)) != 0)
        return rc;
    if (people_record_live(p, out->asked, out->id) != 0)
        return PULL_ERR_NOT_FOUND;
    out->superseded = true;
    return 0;
}

void
people_handle_text(const uint8_t author[static 32], const uint8_t slot[static RECORD_SLOT_BYTES],
                   char out[static PEOPLE_HANDLE_TEXT])
{
    ident_to_text(author, out);
    out[IDENT_TEXT_LEN] = '/';
    sodium_bin2hex(out + IDENT_TEXT_LEN + 1, 2 * RECORD_SLOT_BYTES + 1, slot, RECORD_SLOT_BYTES);
}

static void
handle_replaced(struct people *p, const uint8_t old[RECORD_ID_BYTES], const struct record *rec)
{
    uint8_t v[HANDLE_VAL_LEN];

    memcpy(v, rec->author, 32);
    memcpy(v + 32, rec->slot, RECORD_SLOT_BYTES);
    be64enc(v + 32 + RECORD_SLOT_BYTES, node_now_s(p->n));
    if (node_kv_put(p->n, STORE_HANDLES, old, v, sizeof(v)) == 0)
        p->st.handles++;
}

/* ---- trust ---- */

struct trust *
people_trust(struct people *p)
{
    return p->tr;
}

/* Is the record `link` an offer or need of a or b, created no later than `before` (plus
 * the clock skew allowed)? 0, PULL_ERR_NOT_FOUND (unknown here) or PULL_ERR_ATTEST. */
static int
link_check(struct people *p, const uint8_t link[RECORD_ID_BYTES], const uint8_t a[32],
           const uint8_t b[32], uint64_t before)
{
    uint8_t buf[RECORD_ENVELOPE_MAX], author[32], slot[RECORD_SLOT_BYTES];
    struct record *rec = NULL;
    struct envelope e;
    size_t len;
    int rc;

    if (node_fetch_record(p->n, link, buf, sizeof(buf), &len) == 0) {
        if ((rec = malloc(sizeof(*rec))) == NULL)
            return PULL_ERR_NOMEM;
        if (envelope_parse(buf, len, &e) != 0 || record_decode(e.rec, e.rec_len, rec) != 0)
            rc = PULL_ERR_ATTEST;
        else if (rec->kind != RECORD_OFFER && rec->kind != RECORD_NEED)
            rc = PULL_ERR_ATTEST; /* a dyad is about an offer or a need */
        else if (memcmp(rec->author, a, 32) != 0 && memcmp(rec->author, b, 32) != 0)
            rc = PULL_ERR_ATTEST; /* about someone else's record */
        else if (rec->created > before + RECORD_SKEW_MAX)
            rc = PULL_ERR_ATTEST; /* completed before the record existed */
        else
            rc = 0;
        free(rec);
        return rc;
    }
    /* an older version this node held: its author is the handle's */
    if (handle_get(p, link, author, slot) == 0)
        return memcmp(author, a, 32) == 0 || memcmp(author, b, 32) == 0 ? 0 : PULL_ERR_ATTEST;
    return PULL_ERR_NOT_FOUND;
}

/* The shape of an attestation as dyad_attestation_build makes it. */
static bool
attest_shape(const struct record *rec)
{
    return rec->kind == RECORD_ATTESTATION && rec->has_link && rec->has_peer && rec->has_cosig &&
           memcmp(rec->author, rec->peer, 32) != 0 && rec->seq == 1 &&
           strcmp(rec->title, DYAD_ATTEST_TITLE) == 0 && rec->ntags == 1 &&
           strcmp(rec->tags[0], DYAD_ATTEST_TAG) == 0 && rec->body[0] == '\0' &&
           rec->location[0] == '\0' && rec->terms[0] == '\0' &&
           rec->expires == rec->created + DYAD_ATTEST_TTL;
}

int
people_attest_check(struct people *p, const struct record *rec)
{
    if (!attest_shape(rec))
        return PULL_ERR_ATTEST;
    return link_check(p, rec->link, rec->author, rec->peer, rec->created);
}

/* Adds checked evidence to the graph and, if persist, to the trust table. */
static void
evidence_add(struct people *p, const uint8_t id[RECORD_ID_BYTES], const struct record_lite *r,
             bool persist)
{
    uint8_t v[TRUST_VAL_LEN];
    int rc = trust_add(p->tr, id, r->author, r->peer, r->slot);

    if (rc < 0) {
        log_warn("people: evidence not kept: %s", pull_strerror(rc));
        return;
    }
    if (rc == 1)
        p->st.attest_ok++;
    if (!persist)
        return;
    memcpy(v, r->author, 32);
    memcpy(v + 32, r->peer, 32);
    memcpy(v + 64, r->slot, TRUST_DYAD_BYTES);
    be64enc(v + 64 + TRUST_DYAD_BYTES, r->expires);
    (void)node_kv_put(p->n, STORE_TRUST, id, v, sizeof(v));
}

static void
lite_of(const struct record *rec, struct record_lite *r)
{
    memcpy(r->author, rec->author, 32);
    memcpy(r->peer, rec->peer, 32);
    memcpy(r->slot, rec->slot, RECORD_SLOT_BYTES);
    r->created = rec->created;
    r->expires = rec->expires;
}

/* Unlinks pending entry i from its link's chain. */
static void
pend_unlink(struct people *p, uint32_t i)
{
    struct pend *e = &p->pend[i];
    uint32_t head;

    if (!e->used)
        return;
    if (keymap_get(p->pend_by_link, e->link, &head)) {
        if (head == i) {
            if (e->next == NONE)
                keymap_del(p->pend_by_link, e->link);
            else
                (void)keymap_put(p->pend_by_link, e->link, e->next);
        } else {
            for (uint32_t k = head; k != NONE; k = p->pend[k].next) {
                if (p->pend[k].next == i) {
                    p->pend[k].next = e->next;
                    break;
                }
            }
        }
    }
    e->used = false;
    p->st.pending--;
}

static void
pend_add(struct people *p, const uint8_t id[RECORD_ID_BYTES], const struct record *rec)
{
    uint32_t i = p->pend_next, head;
    struct pend *e = &p->pend[i];

    if (e->used) {
        pend_unlink(p, i);
        p->st.attest_dropped++;
    }
    memcpy(e->id, id, RECORD_ID_BYTES);
    memcpy(e->link, rec->link, RECORD_ID_BYTES);
    lite_of(rec, &e->r);
    e->next = keymap_get(p->pend_by_link, rec->link, &head) ? head : NONE;
    if (keymap_put(p->pend_by_link, rec->link, i) != 0)
        return;
    e->used = true;
    p->st.pending++;
    p->pend_next = (i + 1) % PEOPLE_PENDING_MAX;
}

/* Record `id` arrived: the attestations waiting for it are checked again. */
static void
pend_resolve(struct people *p, const uint8_t id[RECORD_ID_BYTES])
{
    uint32_t i;
    uint64_t now = node_now_s(p->n);

    while (keymap_get(p->pend_by_link, id, &i)) {
        struct pend e = p->pend[i];
        pend_unlink(p, i);
        if (e.r.expires <= now)
            continue;
        if (link_check(p, e.link, e.r.author, e.r.peer, e.r.created) == 0)
            evidence_add(p, e.id, &e.r, true);
        else
            p->st.attest_bad++;
    }
}

/* An attestation stored (or found at start). */
static void
attest_seen(struct people *p, const uint8_t id[RECORD_ID_BYTES], const struct record *rec)
{
    struct record_lite r;
    int rc;

    if (trust_has(p->tr, id))
        return;
    rc = people_attest_check(p, rec);
    lite_of(rec, &r);
    if (rc == 0)
        evidence_add(p, id, &r, true);
    else if (rc == PULL_ERR_NOT_FOUND && attest_shape(rec))
        pend_add(p, id, rec);
    else
        p->st.attest_bad++;
}

struct dyads_of {
    uint32_t completed, counterparts;
    int (*fn)(void *ctx, const uint8_t other[32], unsigned dyads);
    void *ctx;
    bool stopped;
};

static int
dyads_of_one(void *ctx, const uint8_t other[32], unsigned dyads)
{
    struct dyads_of *d = ctx;

    d->completed += dyads;
    d->counterparts++;
    if (d->fn != NULL && !d->stopped && d->fn(d->ctx, other, dyads) != 0)
        d->stopped = true;
    return 0;
}

void
people_dyads_of(struct people *p, const uint8_t author[static 32], uint32_t *completed,
                uint32_t *counterparts,
                int (*fn)(void *ctx, const uint8_t other[32], unsigned dyads), void *ctx)
{
    struct dyads_of d = {0, 0, fn, ctx, false};

    if (p != NULL)
        trust_neighbors(p->tr, author, dyads_of_one, &d);
    *completed = d.completed;
    *counterparts = d.counterparts;
}

void
people_dyad_completed(struct people *p, const uint8_t dyad[static 32],
                      const uint8_t counterpart[static 32])
{
    int rc;

    if (p == NULL)
        return;
    rc = trust_add(p->tr, dyad, p->n->self.pk, counterpart, dyad);
    if (rc < 0)
        log_warn("people: my dyad not counted: %s", pull_strerror(rc));
}

uint32_t
people_rank(void *ctx, uint64_t author8)
{
    struct people *p = ctx;

    return trust_rank(trust_distance8(p->tr, author8));
}

bool
people_within(void *ctx, uint64_t author8)
{
    struct people_within *w = ctx;

    return trust_distance8(w->p->tr, author8) <= w->max;
}

bool
people_ranking(struct people *p)
{
    struct trust_stats st;

    if (p == NULL)
        return false;
    trust_get_stats(p->tr, &st);
    return st.reachable > 0;
}

void
people_get_stats(struct people *p, struct people_stats *st)
{
    struct trust_stats ts;
    size_t pets = 0;

    memset(st, 0, sizeof(*st));
    if (p == NULL)
        return;
    *st = p->st;
    st->names = names_count(p->nm, &pets);
    st->petnames = pets;
    trust_get_stats(p->tr, &ts);
    st->evidence = ts.evidence;
    st->trusted = ts.reachable;
}

/* ---- the node's observers ---- */

static void
obs_stored(void *ctx, const struct node_stored *s)
{
    struct people *p = ctx;

    if (s->replaced_id != NULL)
        handle_replaced(p, s->replaced_id, s->rec);
    switch (s->rec->kind) {
    case RECORD_PROFILE:
        profile_seen(p, s->id, s->rec);
        break;
    case RECORD_WITHDRAWN:
        profile_withdrawn(p, s->rec);
        break;
    case RECORD_ATTESTATION:
        attest_seen(p, s->id, s->rec);
        break;
    default:
        break;
    }
    if (p->st.pending > 0)
        pend_resolve(p, s->id);
}

static void
obs_removed(void *ctx, const uint8_t id[RECORD_ID_BYTES])
{
    struct people *p = ctx;
    uint32_t i;

    if (keymap_get(p->prof_by_id, id, &i))
        profile_clear(p, i);
    if (trust_remove(p->tr, id) == 1)
        (void)node_kv_del(p->n, STORE_TRUST, id);
}

/* ---- start-up ---- */

static int
load_petname(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len)
{
    struct people *p = ctx;
    char pet[NAMES_PETNAME_MAX + 1];

    if (len == 0 || len > NAMES_PETNAME_MAX)
        return 0;
    memcpy(pet, val, len);
    pet[len] = '\0';
    if (names_check_text(pet, len, NAMES_PETNAME_MAX, false) != 0 ||
        names_set_petname(p->nm, key, pet) != 0)
        log_warn("people: a stored petname does not load (ignored)");
    return 0;
}

static int
load_evidence(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len)
{
    struct people *p = ctx;
    struct record_lite r;

    if (len != TRUST_VAL_LEN)
        return 0;
    memcpy(r.author, val, 32);
    memcpy(r.peer, val + 32, 32);
    memcpy(r.slot, val + 64, TRUST_DYAD_BYTES);
    r.expires = be64dec(val + 64 + TRUST_DYAD_BYTES);
    if (r.expires <= node_now_s(p->n)) {
        (void)node_kv_del(p->n, STORE_TRUST, key); /* expired while pulld was down */
        return 0;
    }
    evidence_add(p, key, &r, false);
    return 0;
}

/* One pass over the store: live profiles and attestations. */
static int
scan_one(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct people *p = ctx;
    uint64_t kind, expires;
    struct envelope e;

    if (envelope_peek(env, len, &kind, NULL, &expires) != 0 || expires <= node_now_s(p->n) ||
        (kind != RECORD_PROFILE && kind != RECORD_ATTESTATION))
        return 0;
    if (envelope_parse(env, len, &e) != 0 || record_decode(e.rec, e.rec_len, p->rec) != 0)
        return 0;
    if (kind == RECORD_PROFILE)
        profile_seen(p, id, p->rec);
    else
        attest_seen(p, id, p->rec);
    return 0;
}

/* The hourly sweep of the handles table. */
struct gc_ctx {
    struct people *p;
    uint64_t before;
    uint32_t dropped;
};

static int
gc_one(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len)
{
    struct gc_ctx *g = ctx;

    if (len != HANDLE_VAL_LEN || be64dec(val + 32 + RECORD_SLOT_BYTES) < g->before) {
        (void)node_kv_del(g->p->n, STORE_HANDLES, key);
        g->dropped++;
    }
    return 0;
}

/* My profile, signed again (same slot, next seq, 90 days) once it has less than
 * PEOPLE_PROFILE_RENEW_S to live: a name should not vanish because nobody ran a command. */
static void
renew_my_profile(struct people *p)
{
    uint8_t id[RECORD_ID_BYTES], buf[RECORD_ENVELOPE_MAX];
    uint64_t now = node_now_s(p->n);
    struct envelope e;
    struct pull_wb w;
    size_t len;
    int rc;

    if (people_profile(p, p->n->self.pk, id) != 0 ||
        node_fetch_record(p->n, id, buf, sizeof(buf), &len) != 0 ||
        envelope_parse(buf, len, &e) != 0 || record_decode(e.rec, e.rec_len, p->rec) != 0 ||
        p->rec->expires > now + PEOPLE_PROFILE_RENEW_S)
        return;
    p->rec->seq++;
    p->rec->created = now;
    p->rec->expires = now + RECORD_TTL_MAX;
    wb_init(&w, RECORD_ENVELOPE_MAX);
    if ((rc = record_sign(p->rec, &p->n->self, &w, NULL)) != 0 ||
        (rc = node_submit(p->n, w.p, w.len, NODE_ORIGIN_LOCAL, NULL, NULL, NULL, NULL)) != 0)
        log_warn("people: my profile not renewed: %s", pull_strerror(rc));
    else
        log_info("people: my profile renewed for 90 days");
    wb_release(&w);
}

static void
on_timer(uv_timer_t *t)
{
    struct people *p = t->data;
    uint64_t now = node_now_s(p->n);
    struct gc_ctx g = {p, now > PEOPLE_HANDLE_KEEP_S ? now - PEOPLE_HANDLE_KEEP_S : 0, 0};

    renew_my_profile(p);
    (void)store_kv_iter(p->n->store, STORE_HANDLES, gc_one, &g);
    if (g.dropped > 0)
        log_debug("people: %u replaced ids forgotten", (unsigned)g.dropped);
}

int
people_start(struct node *n, struct people **out)
{
    struct node_observer obs = {obs_stored, obs_removed, NULL, NULL};
    struct people *p;
    uint8_t seed[16];
    uint64_t t0 = node_now_ms(n);
    int rc;

    *out = NULL;
    if ((p = calloc(1, sizeof(*p))) == NULL)
        return PULL_ERR_NOMEM;
    p->n = n;
    p->prof_free = NONE;
    env_random(n->env, seed, sizeof(seed));
    if ((rc = names_new(seed, &p->nm)) != 0 || (rc = trust_new(n->self.pk, seed, &p->tr)) != 0 ||
        (rc = keymap_new(seed, &p->prof_by_author)) != 0 ||
        (rc = keymap_new(seed, &p->prof_by_id)) != 0 ||
        (rc = keymap_new(seed, &p->pend_by_link)) != 0)
        goto fail;
    if ((p->pend = calloc(PEOPLE_PENDING_MAX, sizeof(*p->pend))) == NULL ||
        (p->rec = malloc(sizeof(*p->rec))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto fail;
    }
    if ((rc = store_kv_iter(n->store, STORE_NAMES, load_petname, p)) < 0 ||
        (rc = store_kv_iter(n->store, STORE_TRUST, load_evidence, p)) < 0 ||
        (rc = store_iter_time(n->store, 0, scan_one, p)) < 0)
        goto fail;
    obs.ctx = p;
    if ((rc = node_observe(n, &obs)) != 0)
        goto fail;
    p->observing = true;
    uv_timer_init(n->loop, &p->timer);
    p->timer.data = p;
    p->timer_init = true;
    uv_timer_start(&p->timer, on_timer, 60u * 1000u, PEOPLE_GC_MS);
    {
        struct people_stats st;
        people_get_stats(p, &st);
        log_info("people: %llu named, %llu petnames, %llu pieces of evidence, %llu waiting, "
                 "in %llu ms",
                 (unsigned long long)st.names, (unsigned long long)st.petnames,
                 (unsigned long long)st.evidence, (unsigned long long)st.pending,
                 (unsigned long long)(node_now_ms(n) - t0));
    }
    node_trim_soon(n); /* the scan read the whole store */
    *out = p;
    return 0;
fail:
    log_error("people: cannot start: %s", pull_strerror(rc));
    people_free(p);
    return rc;
}

void
people_stop(struct people *p)
{
    if (p == NULL)
        return;
    if (p->observing) {
        node_unobserve(p->n, p);
        p->observing = false;
    }
    if (p->timer_init && !uv_is_closing((uv_handle_t *)&p->timer)) {
        uv_timer_stop(&p->timer);
        uv_close((uv_handle_t *)&p->timer, NULL);
    }
}

void
people_free(struct people *p)
{
    if (p == NULL)
        return;
    if (p->timer_init && !uv_is_closing((uv_handle_t *)&p->timer)) {
        uv_close((uv_handle_t *)&p->timer, NULL);
        uv_run(p->n->loop, UV_RUN_NOWAIT);
    }
    names_free(p->nm);
    trust_free(p->tr);
    keymap_free(p->prof_by_author);
    keymap_free(p->prof_by_id);
    keymap_free(p->pend_by_link);
    free(p->profs);
    free(p->pend);
    free(p->rec);
    free(p);
}
