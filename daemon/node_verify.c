/*
 * node_verify: the node's verifier threads and the records in verification
 * (node_submit_async; node.h is the manual, node_int.h tells the rooms).
 *
 * The loop fills a job; full jobs are handed to the verifiers while fewer than two per
 * thread are in their hands (one running and one queued each: a job's pends are only
 * allocated when it is handed over), a partly filled one at the end of a loop turn if a
 * verifier would otherwise idle. One queued job per thread keeps the verifiers working
 * while the loop is held by a commit (`pull-bench ingest --threads 2`: 1.11x to 1.17x one
 * core's verify, the loop 32% busy, the cores 1.50 to 1.56); handing them every waiting job
 * went to 1.21x but doubled `pull status`'s p90 during an import (250 to 550 ms): the loop
 * then applies more records per turn. Finished jobs are applied in the order they were
 * filled, so the loop sees records in the order they were submitted whatever thread
 * verified them first. Records in verification are found by id in a table keyed with a
 * secret (their ids are chosen by whoever sent the bytes); it is emptied in the order it
 * was filled, so its entries leave by backward shifting, without tombstones.
 *
 * Threads. The verifiers touch only the jobs handed to them (the pends' bytes, env, rec and
 * verified, and the job's ran flag), taken from and given back under the pool's mutex; the
 * loop wakes on a uv_async_t. Everything else is the loop's.
 */
#include "daemon/node_int.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/log.h"

static void pool_join(struct vpool *p);

static uint32_t
vtab_home(const struct node_batch *b, const uint8_t id[RECORD_ID_BYTES])
{
    uint8_t h[crypto_shorthash_BYTES];

    /* keyed: ids of unverified bytes are chosen by whoever sent them */
    crypto_shorthash(h, id, RECORD_ID_BYTES, b->vkey);
    return node_h32(h) & (VTAB_SLOTS - 1);
}

static struct vitem *
vtab_find_at(const struct node_batch *b, const uint8_t id[RECORD_ID_BYTES], uint32_t home)
{
    for (uint32_t i = home; b->vtab[i] != NULL; i = (i + 1) & (VTAB_SLOTS - 1)) {
        if (memcmp(b->vtab[i]->id, id, RECORD_ID_BYTES) == 0)
            return b->vtab[i];
    }
    return NULL;
}

struct vitem *
node_verify_find(const struct node_batch *b, const uint8_t id[RECORD_ID_BYTES])
{
    return b->v_records == 0 ? NULL : vtab_find_at(b, id, vtab_home(b, id));
}

/* vtab_add adds it at it->home (set by the caller). */
static void
vtab_add(struct node_batch *b, struct vitem *it)
{
    uint32_t i = it->home;

    while (b->vtab[i] != NULL)
        i = (i + 1) & (VTAB_SLOTS - 1);
    b->vtab[i] = it;
}

/* vtab_del removes it, shifting back the entries of its cluster (no tombstones). */
static void
vtab_del(struct node_batch *b, const struct vitem *it)
{
    uint32_t i = it->home, j, home;

    while (b->vtab[i] != it) {
        if (b->vtab[i] == NULL)
            return;
        i = (i + 1) & (VTAB_SLOTS - 1);
    }
    b->vtab[i] = NULL;
    for (j = (i + 1) & (VTAB_SLOTS - 1); b->vtab[j] != NULL; j = (j + 1) & (VTAB_SLOTS - 1)) {
        home = b->vtab[j]->home;
        /* move j into the hole i unless its home lies cyclically in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            b->vtab[i] = b->vtab[j];
            b->vtab[j] = NULL;
            i = j;
        }
    }
}

/* job_run verifies a job's records (on a verifier thread, or the loop at stop). */
static void
job_run(struct vjob *j)
{
    struct record rec; /* 4.4 KB on the thread's stack: the pend keeps only its key */

    for (size_t i = 0; i < j->n; i++) {
        struct pend *p = j->pends[i];
        p->verified = envelope_open(p->bytes, p->len, j->now_s, &p->env, &rec);
        if (p->verified == 0)
            node_pkey_from(&p->key, &rec);
    }
    j->ran = true;
}

static void *
verifier_main(void *arg)
{
    struct vpool *p = arg;
    struct vjob *j;

    (void)pthread_setname_np(pthread_self(), "pull-verify"); /* for top -H and perf */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->todo == NULL)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        j = p->todo;
        if ((p->todo = j->qnext) == NULL)
            p->todo_tail = &p->todo;
        pthread_mutex_unlock(&p->mu);
        job_run(j);
        pthread_mutex_lock(&p->mu);
        j->qnext = p->done;
        p->done = j;
        uv_async_send(&p->async);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void
uv_work_run(uv_work_t *w)
{
    job_run(w->data);
}

static void verify_back(struct node *n, struct vjob *j);

static void
uv_work_after(uv_work_t *w, int status)
{
    struct vjob *j = w->data;

    (void)status; /* cancelled at stop: j->ran is false */
    verify_back(j->node, j);
}

static void
on_verified(uv_async_t *h)
{
    struct node *n = h->data;
    struct vpool *p = &n->batch->pool;
    struct vjob *done;

    pthread_mutex_lock(&p->mu);
    done = p->done;
    p->done = NULL;
    pthread_mutex_unlock(&p->mu);
    while (done != NULL) {
        struct vjob *next = done->qnext;
        verify_back(n, done);
        done = next;
    }
}

static void
pends_free(struct vjob *j)
{
    for (size_t i = 0; j->pends != NULL && i < j->n; i++)
        free(j->pends[i]);
    free(j->pends);
    j->pends = NULL;
}

/* job_hand_over gives a job to the verifiers. Returns 0 or PULL_ERR_NOMEM (it stays). */
static int
job_hand_over(struct node *n, struct vjob *j)
{
    struct node_batch *b = n->batch;
    struct vpool *p = &b->pool;

    if ((j->pends = calloc(j->n, sizeof(*j->pends))) == NULL)
        return PULL_ERR_NOMEM;
    for (size_t i = 0; i < j->n; i++) {
        const struct vitem *it = &j->items[i];
        struct pend *q = malloc(sizeof(*q) + it->len);
        if (q == NULL) {
            pends_free(j);
            return PULL_ERR_NOMEM;
        }
        memcpy(q->bytes, j->arena + it->off, it->len);
        q->len = it->len;
        q->origin = it->origin;
        q->cb = NULL;
        q->rcb = it->cb;
        q->arg = it->arg;
        q->has_from = it->has_from;
        memcpy(q->from, it->from, 32);
        j->pends[i] = q;
    }
    free(j->arena);
    j->arena = NULL;
    if (b->fill == j)
        b->fill = NULL;
    j->now_s = node_now_s(n);
    j->state = JOB_RUNNING;
    b->v_running++;
    if (p->uv) {
        j->work.data = j;
        if (uv_queue_work(n->loop, &j->work, uv_work_run, uv_work_after) != 0) {
            job_run(j); /* cannot happen with a valid loop */
            verify_back(n, j);
        }
        return 0;
    }
    pthread_mutex_lock(&p->mu);
    j->qnext = NULL;
    *p->todo_tail = j;
    p->todo_tail = &j->qnext;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* node_verify_pump hands waiting jobs over while a verifier can take them soon; at the end of a
 * loop turn (turn_end) also the job being filled if a verifier would idle otherwise. */
void
node_verify_pump(struct node *n, bool turn_end)
{
    struct node_batch *b = n->batch;

    if (n->stopping)
        return;
    for (struct vjob *j = b->jobs; j != NULL && b->v_running < 2 * b->pool.nth; j = j->next) {
        if (j->state == JOB_FILLING && (!turn_end || j->n == 0 || b->v_running >= b->pool.nth))
            break;
        if (j->state != JOB_WAITING && j->state != JOB_FILLING)
            continue;
        if (job_hand_over(n, j) != 0)
            break;
    }
}

/* job_apply applies a finished job (taken off the list): verified records join the batch,
 * the others are refused now. Callbacks may submit again (to later jobs). */
static void
job_apply(struct node *n, struct vjob *j)
{
    struct node_batch *b = n->batch;

    for (size_t i = 0; i < j->n; i++)
        vtab_del(b, &j->items[i]);
    for (size_t i = 0; i < j->n; i++) {
        const struct vitem *it = &j->items[i];
        struct pend *p = j->pends != NULL ? j->pends[i] : NULL;
        int rc = j->ran ? p->verified : PULL_ERR_CLOSED;

        b->v_records--;
        b->v_bytes -= it->len;
        if (rc == 0) {
            if ((rc = node_admit_verified(n, p)) == 0)
                j->pends[i] = NULL; /* the batch's */
        } else if (rc == PULL_ERR_EXPIRED) {
            n->counters.records_dup++;
        } else if (rc != PULL_ERR_CLOSED) {
            n->counters.records_invalid++;
        }
        if (rc != 0)
            it->cb(it->arg, rc, it->id, p != NULL ? p->bytes : j->arena + it->off, it->len);
    }
    pends_free(j);
    free(j->arena);
    free(j);
}

/* verify_apply applies the finished jobs at the head of the list, oldest first. */
static void
verify_apply(struct node *n)
{
    struct node_batch *b = n->batch;
    struct vjob *j;

    while ((j = b->jobs) != NULL && j->state == JOB_DONE) {
        if ((b->jobs = j->next) == NULL)
            b->jobs_tail = &b->jobs;
        job_apply(n, j);
    }
}

/* verify_back: a job came back from the verifiers (on the loop). */
static void
verify_back(struct node *n, struct vjob *j)
{
    struct node_batch *b = n->batch;

    j->state = JOB_DONE;
    b->v_running--;
    verify_apply(n);
    node_verify_pump(n, false);
}

bool
node_verify_busy(const struct node *n)
{
    const struct node_batch *b = n->batch;

    return b->v_records >= NODE_VERIFY_MAX || b->v_bytes >= NODE_VERIFY_BYTES;
}

unsigned
node_verify_threads(const struct node *n)
{
    return n->batch->pool.nth;
}

/* job_new starts a job at the end of the list. */
static struct vjob *
job_new(struct node *n, size_t need)
{
    struct node_batch *b = n->batch;
    struct vjob *j = calloc(1, sizeof(*j));
    size_t cap = 128u << 10;

    while (cap < need)
        cap *= 2;
    if (j == NULL || (j->arena = malloc(cap)) == NULL) {
        free(j);
        return NULL;
    }
    j->cap = cap;
    j->node = n;
    j->state = JOB_FILLING;
    *b->jobs_tail = j;
    b->jobs_tail = &j->next;
    b->fill = j;
    return j;
}

int
node_submit_async(struct node *n, const uint8_t *env, size_t len, const uint8_t id[RECORD_ID_BYTES],
                  enum node_origin origin, const uint8_t *from, node_record_fn cb, void *arg)
{
    struct node_batch *b = n->batch;
    struct vjob *j = b->fill;
    struct vitem *it;
    uint8_t hid[RECORD_ID_BYTES];
    uint32_t home;

    if (b->closed || n->stopping)
        return PULL_ERR_STATE;
    if (env == NULL || len == 0 || len > RECORD_ENVELOPE_MAX) {
        n->counters.records_invalid++;
        return PULL_ERR_TOO_BIG;
    }
    if (id == NULL) {
        crypto_generichash(hid, RECORD_ID_BYTES, env, len, NULL, 0);
        id = hid;
    }
    home = vtab_home(b, id);
    if ((b->v_records > 0 && vtab_find_at(b, id, home) != NULL) || node_pend_find(b, id) != NULL ||
        store_has(n->store, id) == 0) {
        n->counters.records_dup++;
        return PULL_ERR_DUPLICATE;
    }
    if (b->v_records >= 2 * NODE_VERIFY_MAX || b->v_bytes >= 2 * NODE_VERIFY_BYTES)
        return PULL_ERR_AGAIN;
    if (j != NULL && (j->n == NODE_JOB_MAX || j->cap - j->used < len)) {
        j->state = JOB_WAITING; /* full: a new one */
        b->fill = j = NULL;
        node_verify_pump(n, false);
    }
    if (j == NULL && (j = job_new(n, len)) == NULL)
        return PULL_ERR_NOMEM;
    it = &j->items[j->n++];
    memcpy(it->id, id, RECORD_ID_BYTES);
    it->home = home;
    it->off = (uint32_t)j->used;
    it->len = (uint32_t)len;
    memcpy(j->arena + j->used, env, len);
    j->used += len;
    it->origin = origin;
    it->has_from = from != NULL;
    if (from != NULL)
        memcpy(it->from, from, 32);
    it->cb = cb;
    it->arg = arg;
    vtab_add(b, it);
    b->v_records++;
    b->v_bytes += len;
    if (j->n == NODE_JOB_MAX) {
        j->state = JOB_WAITING;
        b->fill = NULL;
        node_verify_pump(n, false);
    }
    return 0;
}

/* node_verify_start: see node_int.h. */
int
node_verify_start(struct node *n)
{
    struct vpool *p = &n->batch->pool;
    const char *v = getenv("PULL_VERIFY_THREADS"), *u = getenv("PULL_VERIFY_POOL");
    unsigned long k = v != NULL ? strtoul(v, NULL, 10) : 0;

    p->nth = k >= 1 && k <= NODE_VERIFY_THREADS_MAX ? (unsigned)k : uv_available_parallelism();
    if (p->nth > NODE_VERIFY_THREADS_MAX)
        p->nth = NODE_VERIFY_THREADS_MAX;
    p->uv = u != NULL && strcmp(u, "uv") == 0;
    p->todo_tail = &p->todo;
    if (p->uv)
        return 0;
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        return PULL_ERR_NOMEM;
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        return PULL_ERR_NOMEM;
    }
    p->sync_init = true;
    for (; p->started < p->nth; p->started++) {
        if (pthread_create(&p->th[p->started], NULL, verifier_main, p) != 0)
            break;
    }
    /* no job was handed over yet, so no thread calls uv_async_send before this */
    if (p->started == 0 || uv_async_init(n->loop, &p->async, on_verified) != 0) {
        pool_join(p);
        return PULL_ERR_NOMEM;
    }
    p->async.data = n;
    p->async_init = true;
    p->nth = p->started;
    return 0;
}

/* pool_join stops the threads and waits for them (a running job is finished first). */
static void
pool_join(struct vpool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->started; i++)
        pthread_join(p->th[i], NULL);
    p->started = 0;
}

/* pool_stop stops the verifier threads (those running a job finish it first) and hands
 * every job back to the loop: run, or not (cancelled). */
static void
pool_stop(struct node *n)
{
    struct vpool *p = &n->batch->pool;
    struct vjob *todo;

    if (p->uv) {
        for (struct vjob *j = n->batch->jobs; j != NULL; j = j->next) {
            if (j->state == JOB_RUNNING)
                (void)uv_cancel((uv_req_t *)&j->work); /* uv_work_after says when */
        }
        return;
    }
    if (!p->sync_init)
        return;
    pool_join(p);
    todo = p->todo;
    p->todo = NULL;
    p->todo_tail = &p->todo;
    while (todo != NULL) { /* never started: back unrun */
        struct vjob *next = todo->qnext;
        todo->qnext = p->done;
        p->done = todo;
        todo = next;
    }
    if (p->async_init) {
        on_verified(&p->async);
        uv_close((uv_handle_t *)&p->async, NULL);
    }
}

/* node_verify_stop: see node_int.h. */
void
node_verify_stop(struct node *n)
{
    struct node_batch *b = n->batch;

    pool_stop(n);
    for (struct vjob *j = b->jobs; j != NULL; j = j->next) {
        if (j->state == JOB_FILLING || j->state == JOB_WAITING)
            j->state = JOB_DONE; /* never handed over: j->ran stays false */
    }
    b->fill = NULL;
    verify_apply(n);
}

void
node_verify_release(struct node *n)
{
    struct node_batch *b = n->batch;

    while (b->jobs != NULL) { /* only if node_stop was never called */
        struct vjob *j = b->jobs;
        b->jobs = j->next;
        j->ran = false;
        j->state = JOB_DONE;
        b->closed = true;
        job_apply(n, j);
    }
    if (b->pool.sync_init) {
        pthread_mutex_destroy(&b->pool.mu);
        pthread_cond_destroy(&b->pool.cv);
        b->pool.sync_init = false;
    }
}
