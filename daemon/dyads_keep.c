/*
 * dyads_keep: what the dyad service keeps, and for how long (dyads.h "Bounds"; dyads_int.h
 * tells the rooms) - the dyads in memory with their index by id and by counterpart, the caps
 * on the proposals strangers may make, and the deletion of closed dyads.
 *
 * The index. ds->v owns the dyads in any order; ds->ids is an open-addressing table (linear
 * probing, at most half full, deletion by backward shift) of positions in ds->v, hashed by
 * SipHash of the dyad id under a key drawn at start (dyad ids come from strangers, who must
 * not be able to make them collide); ds->peers maps a counterpart's key, hashed the same
 * way, to my dyads with it (any state, either role). Everything that adds, removes, replaces or
 * moves a dyad in ds->v goes through this file, which keeps the tables and ds->nopen (the
 * open dyads) right.
 */
#include "daemon/dyads_int.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/store.h"

#define DYADS_IX_MIN 64              /* slots of a new table */
#define DYADS_REFUSE_WINDOW_MS 10000 /* refusals logged: at most DYADS_REFUSE_BURST lines */
#define DYADS_REFUSE_BURST 8         /* per window */

/* ---- hashing ---- */

static size_t
ix_hash(const struct dyads *ds, const uint8_t key[static 32])
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v = 0;

    crypto_shorthash(h, key, 32, ds->hkey);
    for (size_t i = 0; i < sizeof(v) && i < sizeof(h); i++)
        v = v << 8 | h[i];
    return (size_t)v;
}

/* ---- the table of ids: positions + 1 in ds->v, 0 for an empty slot ---- */

static size_t
ids_slot(const struct dyads *ds, const uint8_t id[static DYAD_ID_BYTES], bool *found)
{
    size_t mask = ds->ids_cap - 1, i = ix_hash(ds, id) & mask;

    *found = false;
    while (ds->ids[i] != 0) {
        if (memcmp(dyad_id(ds->v[ds->ids[i] - 1]), id, DYAD_ID_BYTES) == 0) {
            *found = true;
            break;
        }
        i = (i + 1) & mask;
    }
    return i;
}

/* ids_rebuild makes a table of cap slots (a power of two) for ds->v[0..len). */
static int
ids_rebuild(struct dyads *ds, size_t cap)
{
    uint32_t *t = calloc(cap, sizeof(*t));
    bool found;

    if (t == NULL)
        return PULL_ERR_NOMEM;
    free(ds->ids);
    ds->ids = t;
    ds->ids_cap = cap;
    for (size_t i = 0; i < ds->len; i++)
        ds->ids[ids_slot(ds, dyad_id(ds->v[i]), &found)] = (uint32_t)(i + 1);
    return 0;
}

/* ids_del empties the slot of id (present) and shifts the probe chain behind it back. */
static void
ids_del(struct dyads *ds, const uint8_t id[static DYAD_ID_BYTES])
{
    size_t mask = ds->ids_cap - 1, i, j;
    bool found;

    i = ids_slot(ds, id, &found);
    if (!found)
        return;
    ds->ids[i] = 0;
    for (j = (i + 1) & mask; ds->ids[j] != 0; j = (j + 1) & mask) {
        size_t h = ix_hash(ds, dyad_id(ds->v[ds->ids[j] - 1])) & mask;
        /* j's entry stays if its home h lies cyclically in (i, j] */
        if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
            continue;
        ds->ids[i] = ds->ids[j];
        ds->ids[j] = 0;
        i = j;
    }
}

struct dyad *
dyads_find(struct dyads *ds, const uint8_t id[static DYAD_ID_BYTES], size_t *idx)
{
    bool found;
    size_t i;

    if (ds->ids == NULL)
        return NULL;
    i = ids_slot(ds, id, &found);
    if (!found)
        return NULL;
    if (idx != NULL)
        *idx = ds->ids[i] - 1;
    return ds->v[ds->ids[i] - 1];
}

/* ---- the table of counterparts ---- */

static size_t
peers_slot(const struct dyads *ds, const uint8_t key[static 32], bool *found)
{
    size_t mask = ds->peers_cap - 1, i = ix_hash(ds, key) & mask;

    *found = false;
    while (ds->peers[i].v != NULL) {
        if (memcmp(ds->peers[i].key, key, 32) == 0) {
            *found = true;
            break;
        }
        i = (i + 1) & mask;
    }
    return i;
}

static int
peers_grow(struct dyads *ds)
{
    size_t cap = ds->peers_cap ? ds->peers_cap * 2 : DYADS_IX_MIN;
    struct dyads_by *old = ds->peers, *t = calloc(cap, sizeof(*t));
    size_t oldcap = ds->peers_cap;
    bool found;

    if (t == NULL)
        return PULL_ERR_NOMEM;
    ds->peers = t;
    ds->peers_cap = cap;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].v != NULL)
            ds->peers[peers_slot(ds, old[i].key, &found)] = old[i];
    }
    free(old);
    return 0;
}

const struct dyads_by *
dyads_by_peer(const struct dyads *ds, const uint8_t key[static 32])
{
    bool found;
    size_t i;

    if (ds->peers == NULL)
        return NULL;
    i = peers_slot(ds, key, &found);
    return found ? &ds->peers[i] : NULL;
}

/* The counterpart of d. */
static const uint8_t *
peer_of(struct dyads *ds, const struct dyad *d)
{
    return dyad_peer(d, dyads_my_role(ds, d));
}

static int
peers_add(struct dyads *ds, struct dyad *d)
{
    struct dyads_by *b;
    bool found;
    size_t i;

    if ((ds->peers_len + 1) * 2 > ds->peers_cap && peers_grow(ds) != 0)
        return PULL_ERR_NOMEM;
    i = peers_slot(ds, peer_of(ds, d), &found);
    b = &ds->peers[i];
    if (!found || b->n == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 4;
        struct dyad **v = realloc(found ? b->v : NULL, cap * sizeof(*v));
        if (v == NULL)
            return PULL_ERR_NOMEM;
        if (!found) {
            memcpy(b->key, peer_of(ds, d), 32);
            b->n = 0;
            ds->peers_len++;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = d;
    return 0;
}

/* peers_del removes d from its proposer's list, and the entry when the list empties. */
static void
peers_del(struct dyads *ds, const struct dyad *d)
{
    size_t mask, i, j;
    struct dyads_by *b;
    bool found;

    if (ds->peers == NULL)
        return;
    i = peers_slot(ds, peer_of(ds, d), &found);
    if (!found)
        return;
    b = &ds->peers[i];
    for (uint32_t k = 0; k < b->n; k++) {
        if (b->v[k] == d) {
            b->v[k] = b->v[--b->n];
            break;
        }
    }
    if (b->n > 0)
        return;
    free(b->v);
    memset(b, 0, sizeof(*b));
    ds->peers_len--;
    mask = ds->peers_cap - 1;
    for (j = (i + 1) & mask; ds->peers[j].v != NULL; j = (j + 1) & mask) {
        size_t h = ix_hash(ds, ds->peers[j].key) & mask;
        if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
            continue;
        ds->peers[i] = ds->peers[j];
        memset(&ds->peers[j], 0, sizeof(ds->peers[j]));
        i = j;
    }
}

static void
peers_replace(struct dyads *ds, struct dyad *old, struct dyad *d)
{
    const struct dyads_by *b = dyads_by_peer(ds, peer_of(ds, old));

    if (b == NULL)
        return;
    for (uint32_t k = 0; k < b->n; k++) {
        if (b->v[k] == old)
            b->v[k] = d;
    }
}

/* ---- the set ---- */

int
dyads_keep_init(struct dyads *ds)
{
    randombytes_buf(ds->hkey, sizeof(ds->hkey));
    return ids_rebuild(ds, DYADS_IX_MIN);
}

void
dyads_keep_release(struct dyads *ds)
{
    for (size_t i = 0; i < ds->len; i++)
        dyad_free(ds->v[i]);
    for (size_t i = 0; i < ds->peers_cap; i++)
        free(ds->peers[i].v);
    free(ds->v);
    free(ds->ids);
    free(ds->peers);
    ds->v = NULL;
    ds->ids = NULL;
    ds->peers = NULL;
    ds->len = ds->cap = ds->ids_cap = ds->peers_cap = ds->peers_len = ds->nopen = 0;
}

int
dyads_add(struct dyads *ds, struct dyad *d)
{
    bool found;

    if (ds->len == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 16;
        struct dyad **v = realloc(ds->v, cap * sizeof(*v));
        if (v == NULL)
            return PULL_ERR_NOMEM;
        ds->v = v;
        ds->cap = cap;
    }
    if ((ds->len + 1) * 2 > ds->ids_cap && ids_rebuild(ds, ds->ids_cap * 2) != 0)
        return PULL_ERR_NOMEM;
    if (peers_add(ds, d) != 0)
        return PULL_ERR_NOMEM;
    ds->v[ds->len] = d;
    ds->ids[ids_slot(ds, dyad_id(d), &found)] = (uint32_t)(ds->len + 1);
    ds->len++;
    ds->nopen += dyad_is_open(d);
    return 0;
}

void
dyads_remove_at(struct dyads *ds, size_t i)
{
    struct dyad *d = ds->v[i];
    size_t last = ds->len - 1;
    bool found;

    ids_del(ds, dyad_id(d));
    peers_del(ds, d);
    ds->nopen -= dyad_is_open(d);
    if (i != last) {
        ds->v[i] = ds->v[last];
        ds->ids[ids_slot(ds, dyad_id(ds->v[i]), &found)] = (uint32_t)(i + 1);
    }
    ds->len--;
    dyad_free(d);
}

void
dyads_replace_at(struct dyads *ds, size_t i, struct dyad *d)
{
    struct dyad *old = ds->v[i];

    peers_replace(ds, old, d);
    ds->v[i] = d; /* same id: the table of ids holds the position */
    dyad_free(old);
    dyads_recount(ds);
}

void
dyads_recount(struct dyads *ds)
{
    ds->nopen = 0;
    for (size_t i = 0; i < ds->len; i++)
        ds->nopen += dyad_is_open(ds->v[i]);
}

/* ---- strangers' proposals ---- */

bool
dyads_unanswered(struct dyads *ds, const struct dyad *d)
{
    enum dyad_kind kind;
    const uint8_t *p;
    size_t n;

    if (dyads_is_me(ds, dyad_proposer(d)))
        return false;
    if (dyad_is_open(d))
        return dyad_state(d) == DYAD_ST_PROPOSED;
    for (size_t i = 0; i < dyad_msg_count(d); i++) {
        if (dyad_msg_at(d, i, &p, &n, &kind, NULL) == 0 && kind == DYAD_ACCEPT)
            return false;
    }
    return true;
}

void
dyads_refused(struct dyads *ds, const char *fmt, ...)
{
    uint64_t now = node_now_ms(ds->n);
    char line[256];
    va_list ap;

    ds->st.msgs_refused++;
    if (ds->refuse_lines == 0 || now - ds->refuse_log_ms >= DYADS_REFUSE_WINDOW_MS) {
        ds->refuse_log_ms = now; /* a new window */
        ds->refuse_lines = 0;
    }
    if (ds->refuse_lines >= DYADS_REFUSE_BURST) {
        ds->refuse_quiet++;
        return;
    }
    ds->refuse_lines++;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (ds->refuse_quiet > 0)
        log_warn("%s (and %llu more refusals not logged)", line,
                 (unsigned long long)ds->refuse_quiet);
    else
        log_warn("%s", line);
    ds->refuse_quiet = 0;
}

/* oldest_closed returns the position of the closed unanswered dyad of b updated first, or
 * -1. */
static long
oldest_closed(struct dyads *ds, const struct dyads_by *b, size_t *count)
{
    const struct dyad *best = NULL;
    size_t pos = 0;

    *count = 0;
    for (uint32_t k = 0; k < b->n; k++) {
        const struct dyad *d = b->v[k];
        if (dyad_is_open(d) || !dyads_unanswered(ds, d))
            continue;
        (*count)++;
        if (best == NULL || dyad_updated(d) < dyad_updated(best))
            best = d;
    }
    if (best == NULL || dyads_find(ds, dyad_id(best), &pos) == NULL)
        return -1;
    return (long)pos;
}

void
dyads_delete_at(struct dyads *ds, size_t i, const char *why)
{
    char s[IDENT_SHORT_LEN + 1];

    ident_short(dyad_id(ds->v[i]), s);
    log_debug("dyad %s: deleted (%s, %s)", s, dyad_state_name(dyad_state(ds->v[i])), why);
    (void)node_kv_del(ds->n, STORE_DYADS, dyad_id(ds->v[i]));
    dyads_remove_at(ds, i);
    ds->st.gc_deleted++;
}

int
dyads_admit_proposal(struct dyads *ds, const uint8_t proposer[static 32], bool quiet)
{
    const struct config_limits *l = &ds->n->cfg.limits;
    const struct dyads_by *b = dyads_by_peer(ds, proposer);
    size_t open = 0;
    char who[IDENT_SHORT_LEN + 1];

    for (uint32_t k = 0; b != NULL && k < b->n; k++)
        open += dyad_is_open(b->v[k]) && dyads_unanswered(ds, b->v[k]);
    if (open >= l->max_dyads_per_proposer || ds->nopen >= l->max_dyads_open) {
        if (!quiet) { /* quiet: replays at start, counted when they first came */
            ds->st.prop_capped++;
            ident_short(proposer, who);
            if (open >= l->max_dyads_per_proposer)
                dyads_refused(ds,
                              "dyad: proposal from %s refused: it has %zu open dyad(s) with "
                              "me (max-dyads-per-proposer %u)",
                              who, open, (unsigned)l->max_dyads_per_proposer);
            else
                dyads_refused(ds,
                              "dyad: proposal from %s refused: %zu open dyads "
                              "(max-dyads-open %u)",
                              who, ds->nopen, (unsigned)l->max_dyads_open);
        }
        return PULL_ERR_QUOTA;
    }
    return 0;
}

void
dyads_make_room(struct dyads *ds, const uint8_t proposer[static 32])
{
    const struct dyads_by *b = dyads_by_peer(ds, proposer);
    size_t closed = 0;
    long pos;

    if (b != NULL && (pos = oldest_closed(ds, b, &closed)) >= 0 &&
        closed >= ds->n->cfg.limits.max_dyads_per_proposer)
        dyads_delete_at(ds, (size_t)pos, "its proposer's share of closed proposals is full");
}

/* ---- deletion of closed dyads ---- */

uint64_t
dyads_gc_due(const struct dyad *d, uint32_t retention_s)
{
    uint64_t keep = retention_s;

    if (dyad_is_open(d))
        return 0;
    /* a completed dyad lives on in its attestation: kept while the attestation is */
    if (dyad_state(d) == DYAD_ST_COMPLETED && keep < DYAD_ATTEST_TTL)
        keep = DYAD_ATTEST_TTL;
    return dyad_updated(d) + keep;
}

static int
cmp_updated(const void *a, const void *b)
{
    const struct dyad *x = *(const struct dyad *const *)a, *y = *(const struct dyad *const *)b;

    if (dyad_updated(x) != dyad_updated(y))
        return dyad_updated(x) < dyad_updated(y) ? -1 : 1;
    return memcmp(dyad_id(x), dyad_id(y), DYAD_ID_BYTES);
}

size_t
dyads_gc(struct dyads *ds, uint64_t now_s)
{
    const struct config_limits *l = &ds->n->cfg.limits;
    struct dyad **old = NULL;
    size_t deleted = 0, k = 0, pos;

    for (size_t i = ds->len; i-- > 0;) {
        uint64_t due = dyads_gc_due(ds->v[i], l->dyad_retention_s);
        if (due != 0 && due <= now_s) {
            dyads_delete_at(ds, i, "closed longer than its retention");
            deleted++;
        }
    }
    /* strangers' closed proposals, together no more than the open dyads may be: the oldest
     * go first */
    for (size_t i = 0; i < ds->len; i++)
        k += !dyad_is_open(ds->v[i]) && dyads_unanswered(ds, ds->v[i]);
    if (k > l->max_dyads_open && (old = malloc(k * sizeof(*old))) != NULL) {
        size_t n = 0;
        for (size_t i = 0; i < ds->len; i++) {
            if (!dyad_is_open(ds->v[i]) && dyads_unanswered(ds, ds->v[i]))
                old[n++] = ds->v[i];
        }
        qsort(old, n, sizeof(*old), cmp_updated);
        for (size_t j = 0; j < n - l->max_dyads_open; j++) {
            if (dyads_find(ds, dyad_id(old[j]), &pos) != NULL) {
                dyads_delete_at(ds, pos, "too many closed proposals");
                deleted++;
            }
        }
        free(old);
    }
    if (deleted > 0)
        log_info("dyads: %zu closed dyad(s) deleted, %zu kept (%zu open)", deleted, ds->len,
                 ds->nopen);
    return deleted;
}

bool
dyads_load_admit(struct dyads *ds, struct dyad *d, uint64_t now_s)
{
    const struct config_limits *l = &ds->n->cfg.limits;
    const struct dyads_by *b;
    struct dyad *newest = NULL;
    size_t open = 0, pos;
    uint64_t due = dyads_gc_due(d, l->dyad_retention_s);

    if (due != 0 && due <= now_s) {
        (void)node_kv_del(ds->n, STORE_DYADS, dyad_id(d));
        ds->st.gc_deleted++;
        return false;
    }
    if (!dyad_is_open(d) || !dyads_unanswered(ds, d))
        return true;
    /* an open proposal beyond the caps (stored before them, or the limits were lowered):
     * a proposer keeps its oldest ones */
    if ((b = dyads_by_peer(ds, dyad_proposer(d))) != NULL) {
        for (uint32_t k = 0; k < b->n; k++) {
            if (!dyad_is_open(b->v[k]) || !dyads_unanswered(ds, b->v[k]))
                continue;
            open++;
            if (newest == NULL || dyad_created(b->v[k]) > dyad_created(newest))
                newest = b->v[k];
        }
    }
    if (open >= l->max_dyads_per_proposer) {
        if (dyad_created(newest) <= dyad_created(d)) {
            (void)node_kv_del(ds->n, STORE_DYADS, dyad_id(d));
            ds->st.gc_deleted++;
            return false;
        }
        if (dyads_find(ds, dyad_id(newest), &pos) != NULL)
            dyads_delete_at(ds, pos, "over its proposer's share");
    }
    if (ds->nopen >= l->max_dyads_open) {
        (void)node_kv_del(ds->n, STORE_DYADS, dyad_id(d));
        ds->st.gc_deleted++;
        return false;
    }
    return true;
}
