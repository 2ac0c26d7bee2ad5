/*
 * node_commit: the commit of the pending batch, on a writer thread of its own (node_int.h
 * tells the rooms).
 *
 * The loop moves the pending batch out into the flight (node_commit_start: the records'
 * set, the key-value writes, the after-commit callbacks, the sweep), readies its
 * store_commit (store_commit_begin) and hands it to the writer thread, which runs the
 * transaction and its flush (store_commit_run) while the loop goes on verifying, admitting
 * and serving. A uv_async_t brings it back: flight_end adopts the result into the store
 * (store_commit_end), then tells the observers, acknowledges each record and runs the
 * callbacks, as a commit on the loop would. One batch flies at a time; the next one fills
 * meanwhile and starts when the flight ends. So nothing is acknowledged before it is
 * committed, and a batch costs the loop its admission and its end, not its flush: with
 * the commit on the loop, an import of 100,000 records spent half its time waiting for
 * the disk (docs/DECISIONS.md).
 *
 * While a batch flies, the loop sees it as it sees the pending one: node_pend_find and
 * admit_precheck look in both sets (the author counts of the flight only while the store
 * does not have them yet: store_author_count_seen), node_kv_get reads its key-value writes,
 * the store's map keeps its size (a full map comes back as PULL_ERR_AGAIN: the loop grows
 * it and hands the batch over again) and the page trims wait for its end.
 *
 * node_flush is the synchronous form (shutdown, the tests, a full batch): it waits for the
 * flight, then commits what is pending and waits for that too. PULL_COMMIT_THREAD=0 runs
 * every commit on the loop (no writer thread), as before.
 */
#include "daemon/node.h"
#include "daemon/node_int.h"

#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "lib/err.h"
#include "lib/log.h"

#define FULL_LOG_EVERY_MS 10000

static void
log_store_full(struct node *n, int rc, size_t count)
{
    uint64_t now = node_now_ms(n);

    if (n->batch->full_logged_ms != 0 && now - n->batch->full_logged_ms < FULL_LOG_EVERY_MS)
        return;
    n->batch->full_logged_ms = now;
    if (rc == PULL_ERR_STORE_FULL)
        log_error("store is full (disk or map size): %zu record(s) not stored; pulld keeps "
                  "serving what it has and stores again once there is room",
                  count);
    else
        log_error("store write failed: %s: %zu record(s) not stored", pull_strerror(rc), count);
}

static void
tell_removed(struct node *n, const uint8_t id[RECORD_ID_BYTES])
{
    struct node_batch *b = n->batch;

    for (size_t i = 0; i < b->nobs; i++) {
        if (b->obs[i].removed != NULL)
            b->obs[i].removed(b->obs[i].ctx, id);
    }
}

static int
on_swept(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    struct node *n = ctx;

    (void)created;
    n->counters.records_swept++;
    tell_removed(n, id);
    return 0;
}

static int
on_evicted(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    struct node *n = ctx;

    (void)created;
    n->counters.records_evicted++;
    tell_removed(n, id);
    return 0;
}

static void
on_peer_evicted(void *ctx, const uint8_t key[32])
{
    struct node *n = ctx;

    (void)key;
    n->counters.peers_evicted++;
}

/* tell_stored runs after a commit for one record that became live. */
static void
tell_stored(struct node *n, struct pend *p, const struct store_opened *op)
{
    struct node_batch *b = n->batch;
    struct record dec; /* on the stack: an observer may submit records meanwhile */
    const struct record *rec = &dec;
    struct node_stored s;
    int rc;

    n->counters.records_new++;
    if (p->origin != NODE_ORIGIN_PEER)
        n->counters.records_local++;
    if (record_decode(p->env.rec, p->env.rec_len, &dec) != 0) {
        /* it decoded when it was verified and the store took it: cannot happen */
        log_warn("a stored record does not decode again: not indexed, not told");
        return;
    }
    if (rec->kind == RECORD_ATTESTATION && rec->has_peer) {
        /* an attestation names the two sides of a completed dyad: if one is me, the other
         * is someone I deal with */
        const uint8_t *other = sodium_memcmp(rec->author, n->self.pk, 32) == 0 ? rec->peer
                               : sodium_memcmp(rec->peer, n->self.pk, 32) == 0 ? rec->author
                                                                               : NULL;
        if (other != NULL && node_kin_add(n->kin, other) != 0)
            log_warn("out of memory: an attested counterpart is not kept from the store budget");
    }
    if (n->search != NULL && (rc = search_index_add(n->search, p->env.id, rec)) != 0)
        log_warn("record not indexed for search: %s", pull_strerror(rc));
    s.id = p->env.id;
    s.replaced_id = op->replaced ? op->replaced_id : NULL;
    s.env = &p->env;
    s.rec = rec;
    s.origin = p->origin;
    s.from = p->has_from ? p->from : NULL;
    for (size_t i = 0; i < b->nobs; i++) {
        if (b->obs[i].stored != NULL)
            b->obs[i].stored(b->obs[i].ctx, &s);
    }
}

/* ---------------------------------------------------------------- the writer */

static void *
writer_main(void *arg)
{
    struct writer *w = arg;
    struct node *n = w->node;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        int rc;
        while (!w->job && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->job)
            break; /* stop, and nothing handed over */
        w->job = false;
        pthread_mutex_unlock(&w->mu);
        rc = store_commit_run(n->store, &n->batch->fl.c);
        pthread_mutex_lock(&w->mu);
        w->rc = rc;
        w->done = true;
        pthread_cond_broadcast(&w->cv);
        uv_async_send(&w->async);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* fly hands the flight's store_commit to the writer, or runs it here without one; then the
 * flight ends when it is back (on_written, or flight_wait). */
static void flight_end(struct node *n, int rc);

static void
fly(struct node *n)
{
    struct node_batch *b = n->batch;
    struct writer *w = &b->wr;

    b->fl.runs++;
    if (!w->started) {
        flight_end(n, store_commit_run(n->store, &b->fl.c));
        return;
    }
    b->fl.at_writer = true;
    pthread_mutex_lock(&w->mu);
    w->job = true;
    w->done = false;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* took_back returns the writer's result once it is done (waiting for it if wait), else
 * PULL_ERR_AGAIN; *back says whether it was. */
static int
took_back(struct node *n, bool wait, bool *back)
{
    struct writer *w = &n->batch->wr;
    int rc = PULL_ERR_AGAIN;

    pthread_mutex_lock(&w->mu);
    while (wait && !w->done)
        pthread_cond_wait(&w->cv, &w->mu);
    *back = w->done;
    if (w->done) {
        rc = w->rc;
        w->done = false;
    }
    pthread_mutex_unlock(&w->mu);
    if (*back)
        n->batch->fl.at_writer = false;
    return rc;
}

static void
on_written(uv_async_t *h)
{
    struct node *n = h->data;
    bool back;
    int rc;

    if (!n->batch->fl.at_writer)
        return; /* node_flush took it back already */
    rc = took_back(n, false, &back);
    if (back)
        flight_end(n, rc);
}

/* flight_wait waits until no batch flies (the ends it runs may hand it over again). */
static void
flight_wait(struct node *n)
{
    struct node_batch *b = n->batch;

    /* a flight on but not at the writer is being ended below this call (an observer or a
     * callback of its end): nothing to wait for */
    while (b->fl.on && b->fl.at_writer) {
        bool back;
        int rc = took_back(n, true, &back);
        flight_end(n, rc);
    }
}

/* ---------------------------------------------------------------- a batch's flight */

/* flight_begin moves the pending batch into the flight and readies its store_commit.
 * Returns 0, or PULL_ERR_NOMEM with the pending batch as it was. */
static int
flight_begin(struct node *n)
{
    struct node_batch *b = n->batch;
    struct flight *f = &b->fl;
    size_t count = b->p->n, nkv = b->nkv, i = 0;
    struct pend **work = NULL;
    struct store_opened *op = NULL;
    struct store_kv_op *ops = NULL;
    int rc;

    if ((count > 0 && ((work = malloc(count * sizeof(*work))) == NULL ||
                       (op = calloc(count, sizeof(*op))) == NULL)) ||
        (nkv > 0 && (ops = calloc(nkv, sizeof(*ops))) == NULL)) {
        free(work);
        free(op);
        return PULL_ERR_NOMEM; /* the batch stays as it is: the next turn tries again */
    }
    if (count > 0)
        memcpy(work, b->p->items, count * sizeof(*work));
    memset(f, 0, sizeof(*f));
    f->on = true;
    f->set = b->p;
    f->work = work;
    f->count = count;
    f->op = op;
    f->ops = ops;
    f->kv = b->kv;
    f->after = b->after;
    f->sweep = b->sweep_due;
    f->begin_ms = node_now_ms(n);
    /* the other set takes the records from now on: observers and callbacks may queue */
    b->p = b->p == &b->sets[0] ? &b->sets[1] : &b->sets[0];
    b->kv = NULL;
    b->kv_tail = &b->kv;
    b->nkv = b->kv_bytes = 0;
    b->after = NULL;
    b->after_tail = &b->after;
    b->sweep_due = false;
    b->urgent = false;
    if (b->idle_on) {
        uv_idle_stop(&b->idle);
        b->idle_on = false;
    }

    for (i = 0; i < count; i++) {
        op[i].env = &work[i]->env;
        op[i].rec = NULL; /* the store decodes it (the pend keeps only its key) */
        op[i].from = work[i]->has_from ? work[i]->from : NULL;
    }
    i = 0;
    for (struct kvpend *k = f->kv; k != NULL; k = k->next, i++) {
        ops[i].table = k->table;
        memcpy(ops[i].key, k->key, 32);
        ops[i].del = k->del;
        ops[i].val = k->val;
        ops[i].len = k->len;
        ops[i].note = k->has_note ? &k->note : NULL;
    }
    f->c.recs = op;
    f->c.nrecs = count;
    f->c.kv = ops;
    f->c.nkv = nkv;
    f->c.sweep_max = f->sweep ? NODE_SWEEP_MAX : 0;
    f->c.swept = on_swept;
    f->c.swept_ctx = n;
    f->c.evicted = on_evicted;
    f->c.evicted_ctx = n;
    f->c.peer_evicted = on_peer_evicted;
    f->c.peer_evicted_ctx = n;
    if ((rc = store_commit_begin(n->store, &f->c, node_now_s(n))) != 0 || f->c.st == NULL)
        flight_end(n, rc); /* refused, or nothing to write (callbacks alone) */
    else
        fly(n);
    return 0;
}

/* flight_end ends the flight with the run's result rc: the map grown and the batch handed
 * over again if it had to, else the result adopted, the flight's set emptied, and the
 * observers, acknowledgements and callbacks run. */
static void
flight_end(struct node *n, int rc)
{
    struct node_batch *b = n->batch;
    struct flight *f = &b->fl;
    struct pend **work = f->work;
    struct store_opened *op = f->op;
    struct kvpend *kv = f->kv;
    struct after *after = f->after;
    size_t count = f->count, nkv = f->c.nkv, nswept;
    bool sweep = f->sweep;

    rc = store_commit_end(n->store, &f->c, rc);
    if (rc == PULL_ERR_AGAIN && f->c.st != NULL) {
        fly(n); /* the map grew: write it again */
        return;
    }
    nswept = rc == 0 ? f->c.nswept : 0;
    log_debug("commit: %zu record(s), %zu write(s), %zu swept in %llu ms, %u run(s): %s", count,
              nkv, nswept, (unsigned long long)(node_now_ms(n) - f->begin_ms), f->runs,
              rc == 0 ? "ok" : pull_strerror(rc));
    if (rc == 0) {
        if (count > 0 || nkv > 0 || nswept > 0)
            n->counters.commits++;
        if (f->c.nevicted > 0)
            log_info("store budget: %zu stranger record(s) evicted", f->c.nevicted);
    } else {
        n->counters.commit_errors++;
        log_store_full(n, rc, count + nkv);
    }
    /* the store has the batch now (or refused it): the loop forgets the flight's set */
    memset(f->set, 0, sizeof(*f->set));
    free(f->ops);
    memset(f, 0, sizeof(*f));
    if (rc == 0)
        node_trim_after_commit(n);
    if (sweep)
        node_sweep_next(n, rc == 0, nswept);
    for (size_t i = 0; i < count; i++) {
        struct pend *p = work[i];
        int res = rc != 0 ? rc : op[i].result;
        if (res == 0)
            tell_stored(n, p, &op[i]);
        else if (res == PULL_ERR_DUPLICATE || res == PULL_ERR_STALE || res == PULL_ERR_EXPIRED)
            n->counters.records_dup++;
        else if (res == PULL_ERR_QUOTA)
            n->counters.records_quota++;
        else if (rc == 0)
            n->counters.records_invalid++;
        if (p->cb != NULL)
            p->cb(p->arg, res, p->env.id);
        else if (p->rcb != NULL)
            p->rcb(p->arg, res, p->env.id, p->bytes, p->len);
        free(p);
    }
    while (kv != NULL) {
        struct kvpend *next = kv->next;
        free(kv);
        kv = next;
    }
    while (after != NULL) {
        struct after *next = after->next;
        after->fn(after->arg, rc);
        free(after);
        after = next;
    }
    free(op);
    free(work);
    if (!node_batch_empty(b)) {
        /* Verified records that waited for the flight may wait for more, as a batch that
         * starts now would (commit_due): a commit's flush costs about the same whatever it
         * holds, so records come in fewer, larger commits while the verifiers are busy. */
        b->first_ms = node_now_ms(n);
        node_batch_wake(b);
    }
    b->last_rc = rc;
}

/* ---------------------------------------------------------------- the API */

void
node_commit_start(struct node *n)
{
    struct node_batch *b = n->batch;

    if (b->fl.on || node_batch_empty(b))
        return;
    (void)flight_begin(n);
}

void
node_commit_full(struct node *n)
{
    flight_wait(n);
    node_commit_start(n); /* within an end (fl.on): the pending batch waits for it */
}

bool
node_commit_idle(const struct node *n)
{
    return !n->batch->fl.on;
}

int
node_flush(struct node *n)
{
    struct node_batch *b = n->batch;
    int rc;

    flight_wait(n);
    if (b->fl.on) /* called from the end of a flight: what is pending waits for it */
        return 0;
    if (node_batch_empty(b))
        return 0;
    if ((rc = flight_begin(n)) != 0)
        return rc;
    flight_wait(n);
    return b->last_rc;
}

int
node_writer_start(struct node *n)
{
    struct writer *w = &n->batch->wr;
    const char *e = getenv("PULL_COMMIT_THREAD");

    w->node = n;
    if (e != NULL && strcmp(e, "0") == 0)
        return 0;
    if (pthread_mutex_init(&w->mu, NULL) != 0)
        return PULL_ERR_NOMEM;
    if (pthread_cond_init(&w->cv, NULL) != 0) {
        pthread_mutex_destroy(&w->mu);
        return PULL_ERR_NOMEM;
    }
    if (uv_async_init(n->loop, &w->async, on_written) != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        return PULL_ERR_NOMEM;
    }
    w->async.data = n;
    w->async_init = true;
    if (pthread_create(&w->th, NULL, writer_main, w) != 0) {
        log_warn("no writer thread: commits run on the loop");
        uv_close((uv_handle_t *)&w->async, NULL);
        w->async_init = false;
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        return 0;
    }
#ifdef __GLIBC__
    (void)pthread_setname_np(w->th, "pull-writer");
#endif
    w->started = true;
    return 0;
}

void
node_writer_stop(struct node *n)
{
    struct writer *w = &n->batch->wr;

    flight_wait(n);
    if (!w->started)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    w->started = false;
    if (w->async_init) {
        uv_close((uv_handle_t *)&w->async, NULL);
        w->async_init = false;
    }
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}
