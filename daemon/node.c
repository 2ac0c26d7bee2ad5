/*
 * node: the loop's owner, the store, the search index and the pending write batch (node.h
 * is the manual; node_int.h tells the rooms, node_verify.c holds the records in
 * verification, node_kv.c queues the key-value writes and after-commit callbacks,
 * node_commit.c commits the batch on the writer thread).
 *
 * The pending batch. node_submit verifies a record at once, node_verify.c hands back the
 * records its threads verified (node_admit_verified); either way the batch keeps a private
 * copy of the bytes with the decoded record; small open-addressing tables (a struct bset)
 * find pending records by id and by (author, slot), and the change the batch makes to each
 * author's counts, so duplicate, staleness and quota checks, node_has_record and
 * node_fetch_record see pending records without scanning - in the pending set and in the
 * set of the batch being committed (the two sets swap when a commit starts). Key-value
 * writes wait in a list (searched from the newest for node_kv_get), and so do the
 * after-commit callbacks (node_kv.c queues both). The batch starts its commit from the
 * uv_check handle (the end of a loop turn; a uv_idle handle keeps the poll from blocking
 * while writes wait) once no other batch is being committed, or as soon as it holds
 * NODE_BATCH_MAX records or NODE_BATCH_KV_BYTES of key-value data (waiting for the one
 * being committed first); verified records alone may wait for more (commit_due). A commit
 * first moves everything out of the batch, so code called from the observers and
 * callbacks may queue again: that goes to the next batch.
 *
 * Expiry. A timer marks the sweep due once a minute (sooner while there is more to sweep);
 * the next commit deletes up to NODE_SWEEP_MAX expired records in the same transaction and tells
 * the observers about each removed id.
 *
 * Resident memory. Reads map the store's pages into pulld; a full pass (the search index
 * built at start, a catch-up serving every record) would leave the whole file counted in
 * its RSS. store_trim drops them (they stay in the page cache): once after start, then
 * TRIM_QUIET_MS after commits pause (the end of an import or a catch-up), at most every
 * TRIM_EVERY_MS while they go on, and every TRIM_READ_BYTES read for peers (serving a
 * catch-up commits nothing) or TRIM_QUIET_MS after such reads pause; never while a commit
 * runs on the writer thread (the trim waits for its end).
 */
#include "daemon/node.h"
#include "daemon/node_int.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/paths.h"

#define SWEEP_EVERY_MS 60000
#define SWEEP_FIRST_MS 1000
#define TRIM_EVERY_MS 10000
#define TRIM_QUIET_MS 200
#define NODE_COMMIT_WAIT_MS 100    /* verified records wait at most this for more to commit with */
#define TRIM_READ_BYTES (8u << 20) /* store bytes served to peers between two trims */

static void on_trim(uv_timer_t *t);
static void on_sweep(uv_timer_t *t);

uint64_t
node_now_ms(const struct node *n)
{
    return env_now_ms(n->env);
}

uint64_t
node_now_s(const struct node *n)
{
    return env_wall_s(n->env);
}

/* ---------------------------------------------------------------- pending lookups */

static uint32_t
slot_hash(const struct pkey *r)
{
    return node_h32(r->author) ^ (node_h32(r->slot) * 2654435761u);
}

static struct pend *
set_find(const struct bset *s, const uint8_t id[RECORD_ID_BYTES])
{
    for (uint32_t i = node_h32(id) & (HASH_SLOTS - 1);; i = (i + 1) & (HASH_SLOTS - 1)) {
        uint16_t v = s->by_id[i];
        if (v == 0)
            return NULL;
        if (memcmp(s->items[v - 1]->env.id, id, RECORD_ID_BYTES) == 0)
            return s->items[v - 1];
    }
}

struct pend *
node_pend_find(const struct node_batch *b, const uint8_t id[RECORD_ID_BYTES])
{
    struct pend *p = set_find(b->p, id);

    return p == NULL && b->fl.on ? set_find(b->fl.set, id) : p;
}

/* slot_pos returns the table position of (author, slot) in s, empty or holding it. */
static uint32_t
slot_pos(const struct bset *s, const struct pkey *r)
{
    for (uint32_t i = slot_hash(r) & (HASH_SLOTS - 1);; i = (i + 1) & (HASH_SLOTS - 1)) {
        uint16_t v = s->by_slot[i];
        const struct pkey *q;
        if (v == 0)
            return i;
        q = &s->items[v - 1]->key;
        if (memcmp(q->author, r->author, 32) == 0 &&
            memcmp(q->slot, r->slot, RECORD_SLOT_BYTES) == 0)
            return i;
    }
}

/* slot_find returns the latest record of (author, slot) in s, or NULL. */
static const struct pend *
slot_find(const struct bset *s, const struct pkey *r)
{
    uint16_t v = s->by_slot[slot_pos(s, r)];

    return v != 0 ? s->items[v - 1] : NULL;
}

static void
set_add(struct bset *s, struct pend *p)
{
    uint32_t i;

    s->items[s->n] = p;
    for (i = node_h32(p->env.id) & (HASH_SLOTS - 1); s->by_id[i] != 0;
         i = (i + 1) & (HASH_SLOTS - 1))
        ;
    s->by_id[i] = (uint16_t)(s->n + 1);
    s->by_slot[slot_pos(s, &p->key)] = (uint16_t)(s->n + 1);
    s->n++;
}

static void
on_idle(uv_idle_t *h)
{
    (void)h; /* only there so that the poll does not block while writes wait */
}

/* node_batch_wake makes sure the end of this loop turn commits what waits. */
void
node_batch_wake(struct node_batch *b)
{
    if (!b->idle_on && b->handles) {
        uv_idle_start(&b->idle, on_idle);
        b->idle_on = true;
    }
}

bool
node_batch_empty(const struct node_batch *b)
{
    return b->p->n == 0 && b->kv == NULL && b->after == NULL && !b->sweep_due;
}

/* ---------------------------------------------------------------- observers */

int
node_observe(struct node *n, const struct node_observer *o)
{
    struct node_batch *b = n->batch;

    if (b->nobs == NODE_OBSERVERS_MAX)
        return PULL_ERR_QUOTA;
    b->obs[b->nobs++] = *o;
    return 0;
}

void
node_unobserve(struct node *n, void *ctx)
{
    struct node_batch *b = n->batch;

    for (size_t i = 0; i < b->nobs; i++) {
        if (b->obs[i].ctx != ctx)
            continue;
        memmove(&b->obs[i], &b->obs[i + 1], (b->nobs - i - 1) * sizeof(b->obs[0]));
        b->nobs--;
        return;
    }
}

void
node_emit(struct node *n, enum node_event ev, const uint8_t *data, size_t len)
{
    struct node_batch *b = n->batch;

    for (size_t i = 0; i < b->nobs; i++) {
        if (b->obs[i].event != NULL)
            b->obs[i].event(b->obs[i].ctx, ev, data, len);
    }
}

/* ---------------------------------------------------------------- commit */

/* commit_due says whether the batch commits at the end of this turn. Records from the
 * verifiers may wait for more while more are being verified (a job coming back wakes the
 * loop), up to NODE_COMMIT_WAIT_MS: a commit costs a flush and rewrites the pages it
 * touches, so fewer, larger commits let the disk keep up with the verifiers. Anything
 * else queued (local records, key-value writes, after-commit callbacks, the sweep) is
 * committed at the end of the turn, as is everything once verification is idle. */
static bool
commit_due(struct node *n)
{
    struct node_batch *b = n->batch;

    return b->urgent || b->sweep_due || b->v_records == 0 || b->p->n >= NODE_BATCH_MAX ||
           node_now_ms(n) - b->first_ms >= NODE_COMMIT_WAIT_MS;
}

static void
on_check(uv_check_t *h)
{
    struct node *n = h->data;
    struct node_batch *b = n->batch;

    /* first keep the verifiers busy: they work while the commit waits for the disk */
    node_verify_pump(n, true);
    if (node_batch_empty(b))
        return;
    if (b->fl.on) {
        /* the writer's end wakes the loop (and this) again: no spinning meanwhile */
        if (b->idle_on) {
            uv_idle_stop(&b->idle);
            b->idle_on = false;
        }
    } else if (commit_due(n)) {
        node_commit_start(n);
    } else if (b->idle_on) { /* wait for the verifiers without spinning */
        uv_idle_stop(&b->idle);
        b->idle_on = false;
    }
}

/* ---------------------------------------------------------------- submit */

/* stored_slot reads the stored version of (author, slot): its seq and id, and whether it
 * is live (not a tombstone). Returns true if there is one. */
static bool
stored_slot(struct node *n, const uint8_t author[32], const uint8_t slot[RECORD_SLOT_BYTES],
            uint64_t *seq, uint8_t id[RECORD_ID_BYTES], bool *live)
{
    struct pull_wb *w = &n->batch->scratch;
    uint64_t kind = RECORD_OFFER;

    if (store_latest(n->store, author, slot, seq, id, NULL) != 0)
        return false;
    wb_reset(w);
    if (store_get(n->store, id, w) == 0)
        (void)envelope_peek(w->p, w->len, &kind, NULL, NULL);
    *live = kind != RECORD_WITHDRAWN;
    return true;
}

/* author_at finds the pending change to author's counts, adding an empty one if add. */
static struct acount *
author_at(const struct node_batch *b, struct bset *s, const uint8_t author[32], bool add)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint32_t i;

    crypto_shorthash(h, author, 32, b->vkey);
    for (i = node_h32(h) & (HASH_SLOTS - 1); s->by_author[i] != 0; i = (i + 1) & (HASH_SLOTS - 1)) {
        struct acount *a = &s->authors[s->by_author[i] - 1];
        if (memcmp(a->author, author, 32) == 0)
            return a;
    }
    if (!add || s->nauthors == NODE_BATCH_MAX)
        return NULL;
    s->by_author[i] = (uint16_t)(s->nauthors + 1);
    memset(&s->authors[s->nauthors], 0, sizeof(s->authors[0]));
    memcpy(s->authors[s->nauthors].author, author, 32);
    return &s->authors[s->nauthors++];
}

/* admit_precheck applies record_admit to p against the store with the batches applied, as
 * the commit will apply it: the author's stored counts plus what the batch in flight (unless
 * the store has it already) and the pending batch change in them (kept per author as
 * records join them), the prior version of the slot pending, in flight or stored. d
 * receives what p changes in the author's counts if it joins. */
static int
admit_precheck(struct node *n, const struct pend *p, struct admit *d)
{
    struct node_batch *b = n->batch;
    struct record_prior prior;
    const struct acount *a;
    const struct pend *q;
    uint32_t live = 0, tombs = 0;
    int64_t l, t;
    bool seen = false;

    memset(&prior, 0, sizeof(prior));
    memset(d, 0, sizeof(*d));
    if (store_author_count_seen(n->store, p->key.author, &live, &tombs, &seen) != 0)
        live = tombs = 0;
    l = live;
    t = tombs;
    if (b->fl.on && !seen && (a = author_at(b, b->fl.set, p->key.author, false)) != NULL) {
        l += a->live;
        t += a->tombs;
    }
    if ((a = author_at(b, b->p, p->key.author, false)) != NULL) {
        l += a->live;
        t += a->tombs;
    }
    if ((q = slot_find(b->p, &p->key)) != NULL ||
        (b->fl.on && (q = slot_find(b->fl.set, &p->key)) != NULL)) {
        prior.exists = true;
        prior.seq = q->key.seq;
        memcpy(prior.id, q->env.id, RECORD_ID_BYTES);
        prior.live = q->key.kind != RECORD_WITHDRAWN;
    } else if (stored_slot(n, p->key.author, p->key.slot, &prior.seq, prior.id, &prior.live)) {
        prior.exists = true;
    }
    if (!prior.exists && (uint64_t)(l > 0 ? l : 0) + (uint64_t)(t > 0 ? t : 0) >=
                             store_budget_level(n->store) &&
        !node_keeps(n, p->key.author))
        return PULL_ERR_QUOTA; /* a new slot at the store budget's level, the batch counted */
    prior.counted = prior.exists;
    if (prior.exists) {
        if (prior.live)
            d->live--;
        else
            d->tombs--;
    }
    if (p->key.kind == RECORD_WITHDRAWN)
        d->tombs++;
    else
        d->live++;
    return record_admit(p->key.kind, p->key.seq, p->env.id, &prior, l > 0 ? (uint32_t)l : 0,
                        t > 0 ? (uint32_t)t : 0, n->cfg.limits.max_per_author);
}

/* batch_full says whether the pending batch can take no more records: it is full and the
 * batch in flight is being ended below this call (an observer of its end), so it can't
 * commit before that end is over. Otherwise a full batch was committed when it filled. */
static bool
batch_full(struct node *n)
{
    if (n->batch->p->n < NODE_BATCH_MAX)
        return false;
    node_commit_full(n);
    return n->batch->p->n >= NODE_BATCH_MAX;
}

/* batch_admit adds p, which admit_precheck admitted with change d, to the batch. */
static void
batch_admit(struct node_batch *b, struct pend *p, const struct admit *d)
{
    struct acount *a = author_at(b, b->p, p->key.author, true);

    set_add(b->p, p);
    if (a != NULL) { /* always: one entry per pending record at most */
        a->live += d->live;
        a->tombs += d->tombs;
    }
}

/* node_admit_verified: see node_int.h. */
int
node_admit_verified(struct node *n, struct pend *p)
{
    struct node_batch *b = n->batch;
    struct admit d;
    int rc;

    /* Nothing stored or queued it meanwhile: while it was being verified, every submit of
     * its id was refused as a duplicate. */
    if (b->closed)
        return PULL_ERR_CLOSED;
    if (batch_full(n))
        return PULL_ERR_AGAIN;
    if ((rc = admit_precheck(n, p, &d)) != 0) {
        if (rc == PULL_ERR_QUOTA)
            n->counters.records_quota++;
        else
            n->counters.records_dup++;
        return rc;
    }
    batch_admit(b, p, &d);
    if (b->p->n == 1)
        b->first_ms = node_now_ms(n);
    node_batch_wake(b);
    if (b->p->n >= NODE_BATCH_MAX)
        node_commit_full(n);
    return 0;
}

int
node_submit(struct node *n, const uint8_t *env, size_t len, enum node_origin origin,
            const uint8_t *from, node_commit_fn cb, void *arg, uint8_t id_out[RECORD_ID_BYTES])
{
    struct node_batch *b = n->batch;
    struct pend *p = NULL;
    struct admit d;
    int rc;

    if (b->closed)
        return PULL_ERR_STATE;
    if (batch_full(n))
        return PULL_ERR_AGAIN;
    if (env == NULL || len == 0 || len > RECORD_ENVELOPE_MAX) {
        n->counters.records_invalid++;
        return PULL_ERR_TOO_BIG;
    }
    if ((p = malloc(sizeof(*p) + len)) == NULL)
        return PULL_ERR_NOMEM;
    memcpy(p->bytes, env, len);
    p->len = len;
    p->origin = origin;
    p->cb = cb;
    p->rcb = NULL;
    p->arg = arg;
    p->has_from = from != NULL;
    if (from != NULL)
        memcpy(p->from, from, 32);
    if ((rc = envelope_open(p->bytes, len, node_now_s(n), &p->env, &b->dec)) != 0) {
        struct envelope e;
        if (id_out != NULL && envelope_parse(p->bytes, len, &e) == 0)
            memcpy(id_out, e.id, RECORD_ID_BYTES);
        if (rc == PULL_ERR_EXPIRED)
            n->counters.records_dup++;
        else
            n->counters.records_invalid++;
        goto out;
    }
    node_pkey_from(&p->key, &b->dec);
    if (id_out != NULL)
        memcpy(id_out, p->env.id, RECORD_ID_BYTES);
    if (node_pend_find(b, p->env.id) != NULL || node_verify_find(b, p->env.id) != NULL ||
        store_has(n->store, p->env.id) == 0) {
        rc = PULL_ERR_DUPLICATE;
        n->counters.records_dup++;
        goto out;
    }
    if ((rc = admit_precheck(n, p, &d)) != 0) {
        if (rc == PULL_ERR_QUOTA)
            n->counters.records_quota++;
        else
            n->counters.records_dup++;
        goto out;
    }
    batch_admit(b, p, &d);
    p = NULL; /* owned by the batch */
    b->urgent = true;
    node_batch_wake(b);
    if (b->p->n >= NODE_BATCH_MAX)
        node_commit_full(n);
    rc = 0;
out:
    free(p);
    return rc;
}

/* note_store_read counts bytes read from the store for peers: every TRIM_READ_BYTES the
 * pages they mapped are dropped (with heap, the freed heap too), and TRIM_QUIET_MS after a
 * run of reads pauses (a catch-up of 100,000 records left 72 MB of the store's pages
 * counted on the serving side). */
static void
note_store_read(struct node *n, size_t bytes, bool heap)
{
    struct node_batch *b = n->batch;

    if ((b->read_bytes += bytes) >= TRIM_READ_BYTES) {
        b->read_bytes = 0;
        if (heap)
            node_trim_soon(n);
        else
            node_trim_pages_soon(n);
    } else if (b->handles) {
        b->reads_since_trim = true;
        uv_timer_start(&b->trim, on_trim, TRIM_QUIET_MS, 0);
    }
}

bool
node_has_record(struct node *n, const uint8_t id[static RECORD_ID_BYTES])
{
    if (node_pend_find(n->batch, id) != NULL || node_verify_find(n->batch, id) != NULL)
        return true;
    /* a lookup in a random-keyed table maps a page or so of it (and the kernel maps the
     * pages around it): a peer's run of announcements (100,000 after a catch-up) would
     * leave 14 MB of the store counted in pulld's RSS */
    note_store_read(n, 4096, false);
    return store_has(n->store, id) == 0;
}

int
node_fetch_record(struct node *n, const uint8_t id[static RECORD_ID_BYTES], uint8_t *buf,
                  size_t cap, size_t *len)
{
    struct pend *p = node_pend_find(n->batch, id);
    struct pull_wb *w = &n->batch->scratch;
    int rc;

    *len = 0;
    if (p != NULL) {
        if (p->len > cap)
            return PULL_ERR_TOO_BIG;
        memcpy(buf, p->bytes, p->len);
        *len = p->len;
        return 0;
    }
    wb_reset(w);
    if ((rc = store_get(n->store, id, w)) != 0)
        return rc;
    if (w->len > cap)
        return PULL_ERR_TOO_BIG;
    memcpy(buf, w->p, w->len);
    *len = w->len;
    /* Serving a catch-up reads every record: let its pages go as it goes, so what was
     * sent is not kept counted in pulld's memory. */
    note_store_read(n, w->len, true);
    return 0;
}

/* ---------------------------------------------------------------- expiry and memory */

static void
on_sweep(uv_timer_t *t)
{
    struct node *n = t->data;

    n->batch->sweep_due = true;
    node_batch_wake(n->batch);
}

void
node_sweep_next(struct node *n, bool ok, size_t nswept)
{
    struct node_batch *b = n->batch;

    if (!b->handles || b->closed)
        return;
    if (ok && nswept > 0)
        log_debug("swept %zu expired record(s)", nswept);
    uv_timer_start(&b->sweep, on_sweep, ok && nswept == NODE_SWEEP_MAX ? 10 : SWEEP_EVERY_MS, 0);
}

/* Drops the store's pages, and with heap the freed heap too. */
static void
trim_now(struct node *n, bool heap)
{
    int rc = store_trim(n->store);

    if (rc != 0)
        log_debug("store_trim: %s", pull_strerror(rc));
#ifdef __GLIBC__
    /* Bursts (an import, a full sync) free their buffers, but glibc keeps the freed heap
     * and its arenas mapped: hand it back too. It walks every free chunk of the heap
     * (milliseconds with a million records indexed), so not after a mere search. */
    if (heap)
        malloc_trim(0);
#endif
    if (heap) {
        n->batch->commits_at_trim = n->counters.commits;
        n->batch->heap_since_trim = false;
    }
    n->batch->trim_ms = node_now_ms(n);
    n->batch->reads_since_trim = false;
}

static void
on_trim(uv_timer_t *t)
{
    struct node *n = t->data;

    if (n->batch->fl.on) { /* not under the writer: the end of its commit trims */
        uv_timer_start(&n->batch->trim, on_trim, TRIM_QUIET_MS, 0);
        return;
    }
    if (n->counters.commits != n->batch->commits_at_trim || n->batch->heap_since_trim)
        trim_now(n, true);
    else if (n->batch->reads_since_trim)
        trim_now(n, false);
}

void
node_trim_soon(struct node *n)
{
    struct node_batch *b = n->batch;

    if (b == NULL || !b->handles)
        return;
    b->reads_since_trim = true;
    b->heap_since_trim = true;
    /* On the next loop turn: the reply that did the reading is written by then, so the
     * client never waits for the trim. */
    uv_timer_start(&b->trim, on_trim, 0, 0);
}

void
node_trim_pages_soon(struct node *n)
{
    struct node_batch *b = n->batch;

    if (b == NULL || !b->handles)
        return;
    b->reads_since_trim = true;
    uv_timer_start(&b->trim, on_trim, 0, 0);
}

/* node_trim_after_commit runs after each commit: trim now if the last trim is TRIM_EVERY_MS
 * old, else TRIM_QUIET_MS after the last commit of a run. */
void
node_trim_after_commit(struct node *n)
{
    struct node_batch *b = n->batch;

    if (!b->handles)
        return;
    if (node_now_ms(n) - b->trim_ms >= TRIM_EVERY_MS)
        trim_now(n, true);
    else
        uv_timer_start(&b->trim, on_trim, TRIM_QUIET_MS, 0);
}

/* ---------------------------------------------------------------- lifecycle */

int
node_new(uv_loop_t *loop, const struct config *cfg, const struct ident *self, struct node **out)
{
    struct node *n = NULL;
    struct node_batch *b;
    struct store_opts so;
    char path[PATH_MAX];
    int rc;

    *out = NULL;
    if ((n = calloc(1, sizeof(*n))) == NULL || (n->batch = calloc(1, sizeof(*n->batch))) == NULL) {
        free(n);
        return PULL_ERR_NOMEM;
    }
    b = n->batch;
    b->p = &b->sets[0];
    b->kv_tail = &b->kv;
    b->after_tail = &b->after;
    b->jobs_tail = &b->jobs;
    randombytes_buf(b->vkey, sizeof(b->vkey));
    n->loop = loop;
    n->cfg = *cfg;
    n->env = env_system();
    n->self = *self;
    ident_to_text(self->pk, n->self_text);
    n->started_ms = node_now_ms(n);
    n->started_s = node_now_s(n);
    wb_init(&b->scratch, RECORD_ENVELOPE_MAX + 64);

    if ((rc = paths_join(cfg->data_dir, PATHS_STORE_NAME, path, sizeof(path))) != 0) {
        log_error("data directory path too long");
        goto fail;
    }
    store_opts_init(&so);
    so.max_per_author = cfg->limits.max_per_author;
    so.sync = cfg->store_nosync ? STORE_SYNC_NONE : STORE_SYNC_FULL;
    so.no_writemap = cfg->store_no_writemap;
    so.tag_kinds = 1u << RECORD_ATTESTATION; /* dyads_author_stats; search has the rest */
    so.max_bytes = cfg->limits.store_max_bytes;
    so.keep = node_store_keep;
    so.keep_ctx = n;
    if ((n->kin = node_kin_new()) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto fail;
    }
    if ((rc = store_open(path, &so, &n->store)) != 0) {
        log_error("cannot open the store %s: %s", path, pull_strerror(rc));
        goto fail;
    }
    if ((rc = store_kv_iter(n->store, STORE_DYADS, node_kin_load_one, n)) != 0)
        log_warn("the dyads table could not be read: %s", pull_strerror(rc));
    if (n->kin->n > 0)
        log_info("store budget: the records of %zu people with dyads are kept", n->kin->n);
    if ((rc = search_index_new(&n->search)) != 0)
        goto fail;
    node_index_first(n);
    if ((rc = node_verify_start(n)) != 0) {
        log_error("cannot start the verifier threads: %s", pull_strerror(rc));
        goto fail;
    }
    if ((rc = node_writer_start(n)) != 0) {
        log_error("cannot start the writer thread: %s", pull_strerror(rc));
        goto fail;
    }
    uv_check_init(loop, &b->check);
    b->check.data = n;
    uv_idle_init(loop, &b->idle);
    b->idle.data = n;
    uv_timer_init(loop, &b->sweep);
    b->sweep.data = n;
    uv_timer_init(loop, &b->trim);
    b->trim.data = n;
    uv_idle_init(loop, &b->ix_idle);
    b->ix_idle.data = n;
    b->handles = true;
    node_index_resume(n);
    uv_check_start(&b->check, on_check);
    uv_timer_start(&b->sweep, on_sweep, SWEEP_FIRST_MS, 0);
    log_info("%u verifier thread(s)%s", b->pool.nth, b->pool.uv ? " (libuv's threadpool)" : "");
    trim_now(n, true); /* the index was built from a pass over the store */
    if ((rc = node_mine_start(n)) != 0)
        log_warn("cannot keep copies of my records: %s", pull_strerror(rc)); /* not fatal */
    *out = n;
    return 0;

fail:
    node_writer_stop(n);
    node_verify_release(n);
    search_index_free(n->search);
    store_close(n->store);
    node_kin_free(n->kin);
    wb_release(&b->scratch);
    sodium_memzero(&n->self, sizeof(n->self));
    free(b);
    free(n);
    return rc;
}

void
node_stop(struct node *n)
{
    struct node_batch *b;

    if (n == NULL || n->stopping)
        return;
    n->stopping = true;
    b = n->batch;
    b->sweep_due = false; /* the last commit is what the parts queued, nothing more */
    node_verify_stop(n);  /* what is verified joins it */
    (void)node_flush(n);
    node_writer_stop(n);
    if (b->handles) {
        if (b->idle_on)
            uv_idle_stop(&b->idle);
        b->idle_on = false;
        uv_close((uv_handle_t *)&b->check, NULL);
        uv_close((uv_handle_t *)&b->idle, NULL);
        uv_close((uv_handle_t *)&b->sweep, NULL);
        uv_close((uv_handle_t *)&b->trim, NULL);
        uv_close((uv_handle_t *)&b->ix_idle, NULL);
        b->handles = false; /* closing: never restart them */
    }
    b->closed = true;
    log_info("stopping");
}

void
node_free(struct node *n)
{
    struct node_batch *b;

    if (n == NULL)
        return;
    b = n->batch;
    node_writer_stop(n); /* the batch in flight ends (node_stop did it already) */
    for (size_t i = 0; i < b->p->n; i++) {
        struct pend *p = b->p->items[i];
        if (p->cb != NULL)
            p->cb(p->arg, PULL_ERR_CLOSED, p->env.id);
        else if (p->rcb != NULL)
            p->rcb(p->arg, PULL_ERR_CLOSED, p->env.id, p->bytes, p->len);
        free(p);
    }
    while (b->kv != NULL) {
        struct kvpend *next = b->kv->next;
        free(b->kv);
        b->kv = next;
    }
    while (b->after != NULL) {
        struct after *next = b->after->next;
        b->after->fn(b->after->arg, PULL_ERR_CLOSED);
        free(b->after);
        b->after = next;
    }
    node_verify_release(n);
    search_index_free(n->search);
    store_close(n->store);
    node_kin_free(n->kin);
    wb_release(&b->scratch);
    ident_wipe(&n->self);
    free(b);
    free(n);
}
