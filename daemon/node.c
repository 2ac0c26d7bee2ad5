/*
 * node: the loop's owner, the store and the pending batch (node.h is the manual).
 *
 * The pending batch. node_submit verifies a record at once and keeps a private copy of its
 * bytes with the decoded record; two small open-addressing tables find pending records by
 * id and by (author, slot), so duplicate and staleness checks, node_has_record and
 * node_fetch_record see pending records without scanning. The batch commits in one
 * store_put_opened transaction from the uv_check handle (the end of a loop turn; a uv_idle
 * handle keeps the poll from blocking while records wait) or as soon as it holds
 * NODE_BATCH_MAX records. A flush first moves the items out of the batch, so code called
 * from the observers may submit again: those records go to the next batch.
 *
 * Expiry. A timer sweeps expired records (store_sweep, bounded per call) once a minute,
 * sooner while there is more to sweep, and tells sync.c about each removed id.
 *
 * Resident memory. Reads map the store's pages into pulld; a full pass (the search index
 * built at start, a catch-up serving every record) would leave the whole file counted in
 * its RSS. store_trim drops them (they stay in the page cache): once after start, then
 * TRIM_QUIET_MS after commits pause (the end of an import or a catch-up), and at most every
 * TRIM_EVERY_MS while they go on.
 */
#include "daemon/node.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "daemon/net.h"
#include "daemon/sync.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/paths.h"

#define HASH_SLOTS 4096 /* > 2 * NODE_BATCH_MAX, power of two */
#define SWEEP_EVERY_MS 60000
#define SWEEP_FIRST_MS 1000
#define SWEEP_MAX 1024
#define FULL_LOG_EVERY_MS 10000
#define TRIM_EVERY_MS 10000
#define TRIM_QUIET_MS 200

struct pend {
    enum node_origin origin;
    node_commit_fn cb;
    void *arg;
    bool has_from;
    uint8_t from[32];
    struct envelope env;
    struct record rec;
    size_t len;
    uint8_t bytes[]; /* the envelope, env points into it */
};

struct node_batch {
    struct pend *items[NODE_BATCH_MAX];
    size_t n;
    uint16_t by_id[HASH_SLOTS];   /* index + 1 into items, 0: empty */
    uint16_t by_slot[HASH_SLOTS]; /* idem, keyed by author || slot (latest pending only) */
    uv_check_t check;
    uv_idle_t idle;
    uv_timer_t sweep;
    uv_timer_t trim;
    uint64_t commits_at_trim; /* n->counters.commits at the last store_trim */
    uint64_t trim_ms;         /* when the last store_trim ran */
    bool reads_since_trim;    /* node_trim_soon was called since the last store_trim */
    bool handles;
    bool closed; /* node_stop made its last commit: no more records */
    bool idle_on;
    bool started_ctl, started_lan, started_dyads;
    uint64_t full_logged_ms;
    struct pull_wb scratch;
};

static void trim_after_commit(struct node *n);

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
h32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t
slot_hash(const struct record *r)
{
    return h32(r->author) ^ (h32(r->slot) * 2654435761u);
}

static struct pend *
pend_by_id(const struct node_batch *b, const uint8_t id[RECORD_ID_BYTES])
{
    for (uint32_t i = h32(id) & (HASH_SLOTS - 1);; i = (i + 1) & (HASH_SLOTS - 1)) {
        uint16_t v = b->by_id[i];
        if (v == 0)
            return NULL;
        if (memcmp(b->items[v - 1]->env.id, id, RECORD_ID_BYTES) == 0)
            return b->items[v - 1];
    }
}

/* pend_slot_find returns the table position of (author, slot), empty or holding it. */
static uint32_t
pend_slot_pos(const struct node_batch *b, const struct record *r)
{
    for (uint32_t i = slot_hash(r) & (HASH_SLOTS - 1);; i = (i + 1) & (HASH_SLOTS - 1)) {
        uint16_t v = b->by_slot[i];
        const struct record *q;
        if (v == 0)
            return i;
        q = &b->items[v - 1]->rec;
        if (memcmp(q->author, r->author, 32) == 0 &&
            memcmp(q->slot, r->slot, RECORD_SLOT_BYTES) == 0)
            return i;
    }
}

static void
batch_add(struct node_batch *b, struct pend *p)
{
    uint32_t i;

    b->items[b->n] = p;
    for (i = h32(p->env.id) & (HASH_SLOTS - 1); b->by_id[i] != 0; i = (i + 1) & (HASH_SLOTS - 1))
        ;
    b->by_id[i] = (uint16_t)(b->n + 1);
    b->by_slot[pend_slot_pos(b, &p->rec)] = (uint16_t)(b->n + 1);
    b->n++;
}

static void
on_idle(uv_idle_t *h)
{
    (void)h; /* only there so that the poll does not block while records wait */
}

/* ---------------------------------------------------------------- commit */

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

int
node_flush(struct node *n)
{
    struct node_batch *b = n->batch;
    size_t count = b->n;
    struct pend **work;
    int rc;

    if (count == 0)
        return 0;
    /* move the items out: observers may submit again */
    work = malloc(count * sizeof(*work));
    if (work == NULL)
        return PULL_ERR_NOMEM;
    memcpy(work, b->items, count * sizeof(*work));
    b->n = 0;
    memset(b->by_id, 0, sizeof(b->by_id));
    memset(b->by_slot, 0, sizeof(b->by_slot));
    if (b->idle_on) {
        uv_idle_stop(&b->idle);
        b->idle_on = false;
    }
    struct store_opened *op = calloc(count, sizeof(*op));
    if (op == NULL) {
        rc = PULL_ERR_NOMEM;
    } else {
        for (size_t i = 0; i < count; i++) {
            op[i].env = &work[i]->env;
            op[i].rec = &work[i]->rec;
        }
        rc = store_put_opened(n->store, op, count, node_now_s(n));
    }
    if (rc == 0) {
        n->counters.commits++;
        trim_after_commit(n);
    } else {
        n->counters.commit_errors++;
        log_store_full(n, rc, count);
    }
    for (size_t i = 0; i < count; i++) {
        struct pend *p = work[i];
        int res = rc != 0 ? rc : op[i].result;
        if (res == 0) {
            n->counters.records_new++;
            if (p->origin != NODE_ORIGIN_PEER)
                n->counters.records_local++;
            sync_on_stored(n, p->env.id, op[i].replaced ? op[i].replaced_id : NULL, p->bytes,
                           p->len, p->origin);
            ctl_server_on_stored(n, &p->env, &p->rec, p->origin);
            dyads_on_stored(n, &p->env, &p->rec);
        } else if (res == PULL_ERR_DUPLICATE || res == PULL_ERR_STALE || res == PULL_ERR_EXPIRED) {
            n->counters.records_dup++;
        } else if (res == PULL_ERR_QUOTA) {
            n->counters.records_quota++;
        } else if (rc == 0) {
            n->counters.records_invalid++;
        }
        if (p->cb != NULL)
            p->cb(p->arg, res, p->env.id);
        free(p);
    }
    free(op);
    free(work);
    return rc;
}

static void
on_check(uv_check_t *h)
{
    struct node *n = h->data;

    if (n->batch->n > 0)
        (void)node_flush(n);
}

/* ---------------------------------------------------------------- submit */

int
node_submit(struct node *n, const uint8_t *env, size_t len, enum node_origin origin,
            const uint8_t *from, node_commit_fn cb, void *arg, uint8_t id_out[RECORD_ID_BYTES])
{
    struct node_batch *b = n->batch;
    struct pend *p = NULL, *q;
    uint64_t seq;
    uint8_t sid[RECORD_ID_BYTES];
    uint32_t pos;
    bool slot_exists = false;
    int rc;

    if (b->closed)
        return PULL_ERR_STATE;
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
    p->arg = arg;
    p->has_from = from != NULL;
    if (from != NULL)
        memcpy(p->from, from, 32);
    if ((rc = envelope_open(p->bytes, len, node_now_s(n), &p->env, &p->rec)) != 0) {
        struct envelope e;
        if (id_out != NULL && envelope_parse(p->bytes, len, &e) == 0)
            memcpy(id_out, e.id, RECORD_ID_BYTES);
        if (rc == PULL_ERR_EXPIRED)
            n->counters.records_dup++;
        else
            n->counters.records_invalid++;
        goto out;
    }
    if (id_out != NULL)
        memcpy(id_out, p->env.id, RECORD_ID_BYTES);
    if (pend_by_id(b, p->env.id) != NULL || store_has(n->store, p->env.id) == 0) {
        rc = PULL_ERR_DUPLICATE;
        n->counters.records_dup++;
        goto out;
    }
    pos = pend_slot_pos(b, &p->rec);
    if (b->by_slot[pos] != 0) {
        q = b->items[b->by_slot[pos] - 1];
        slot_exists = true;
        if (!record_replaces(p->rec.seq, p->env.id, q->rec.seq, q->env.id)) {
            rc = PULL_ERR_STALE;
            n->counters.records_dup++;
            goto out;
        }
    }
    if (store_latest(n->store, p->rec.author, p->rec.slot, &seq, sid, NULL) == 0) {
        slot_exists = true;
        if (!record_replaces(p->rec.seq, p->env.id, seq, sid)) {
            rc = PULL_ERR_STALE;
            n->counters.records_dup++;
            goto out;
        }
    }
    if (!slot_exists) {
        uint32_t live = 0, tomb = 0, have;
        bool wd = p->rec.kind == RECORD_WITHDRAWN;
        if (store_author_count(n->store, p->rec.author, &live, &tomb) != 0)
            live = tomb = 0;
        have = wd ? tomb : live;
        if ((uint64_t)have + b->n >= n->cfg.limits.max_per_author) {
            /* count this author's pending records in new slots of the same kind class */
            for (size_t i = 0; i < b->n; i++) {
                const struct record *r = &b->items[i]->rec;
                if (memcmp(r->author, p->rec.author, 32) != 0 ||
                    (r->kind == RECORD_WITHDRAWN) != wd ||
                    b->by_slot[pend_slot_pos(b, r)] != i + 1 ||
                    store_latest(n->store, r->author, r->slot, NULL, NULL, NULL) == 0)
                    continue; /* not the one pending version of a new slot */
                have++;
            }
            if (have >= n->cfg.limits.max_per_author) {
                rc = PULL_ERR_QUOTA;
                n->counters.records_quota++;
                goto out;
            }
        }
    }
    batch_add(b, p);
    p = NULL; /* owned by the batch */
    if (!b->idle_on && b->handles) {
        uv_idle_start(&b->idle, on_idle);
        b->idle_on = true;
    }
    if (b->n >= NODE_BATCH_MAX)
        (void)node_flush(n);
    rc = 0;
out:
    free(p);
    return rc;
}

bool
node_has_record(struct node *n, const uint8_t id[static RECORD_ID_BYTES])
{
    return pend_by_id(n->batch, id) != NULL || store_has(n->store, id) == 0;
}

int
node_fetch_record(struct node *n, const uint8_t id[static RECORD_ID_BYTES], uint8_t *buf,
                  size_t cap, size_t *len)
{
    struct pend *p = pend_by_id(n->batch, id);
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
    return 0;
}

/* ---------------------------------------------------------------- expiry */

static int
on_swept(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    struct node *n = ctx;

    (void)created;
    n->counters.records_swept++;
    sync_on_removed(n, id);
    return 0;
}

static void
on_sweep(uv_timer_t *t)
{
    struct node *n = t->data;
    int rc;

    rc = store_sweep(n->store, node_now_s(n), SWEEP_MAX, on_swept, n);
    if (rc < 0) {
        n->counters.commit_errors++;
        log_warn("expiry sweep failed: %s", pull_strerror(rc));
    } else if (rc > 0) {
        n->counters.commits++;
        log_debug("swept %d expired record(s)", rc);
    }
    uv_timer_start(t, on_sweep, rc == SWEEP_MAX ? 10 : SWEEP_EVERY_MS, 0);
}

static void
trim_now(struct node *n)
{
    int rc = store_trim(n->store);

    if (rc != 0)
        log_debug("store_trim: %s", pull_strerror(rc));
#ifdef __GLIBC__
    /* Bursts (an import, a full sync) free their buffers, but glibc keeps the freed heap
     * and its arenas mapped: hand it back too. */
    malloc_trim(0);
#endif
    n->batch->commits_at_trim = n->counters.commits;
    n->batch->trim_ms = node_now_ms(n);
    n->batch->reads_since_trim = false;
}

static void
on_trim(uv_timer_t *t)
{
    struct node *n = t->data;

    if (n->counters.commits != n->batch->commits_at_trim || n->batch->reads_since_trim)
        trim_now(n);
}

void
node_trim_soon(struct node *n)
{
    struct node_batch *b = n->batch;

    if (b == NULL || !b->handles)
        return;
    b->reads_since_trim = true;
    /* On the next loop turn: the reply that did the reading is written by then, so the
     * client never waits for the trim. */
    uv_timer_start(&b->trim, on_trim, 0, 0);
}

/* trim_after_commit runs after each commit: trim now if the last trim is TRIM_EVERY_MS old,
 * else TRIM_QUIET_MS after the last commit of a run. */
static void
trim_after_commit(struct node *n)
{
    struct node_batch *b = n->batch;

    if (!b->handles)
        return;
    if (node_now_ms(n) - b->trim_ms >= TRIM_EVERY_MS)
        trim_now(n);
    else
        uv_timer_start(&b->trim, on_trim, TRIM_QUIET_MS, 0);
}

/* ---------------------------------------------------------------- lifecycle */

static void
node_teardown_failed(struct node *n)
{
    node_stop(n);
    uv_run(n->loop, UV_RUN_DEFAULT);
    node_free(n);
}

int
node_new(uv_loop_t *loop, const struct config *cfg, const struct ident *self, struct node **out)
{
    struct node *n = NULL;
    struct store_opts so;
    char path[PATH_MAX];
    int rc;

    *out = NULL;
    if ((n = calloc(1, sizeof(*n))) == NULL || (n->batch = calloc(1, sizeof(*n->batch))) == NULL) {
        free(n);
        return PULL_ERR_NOMEM;
    }
    n->loop = loop;
    n->cfg = *cfg;
    n->env = env_system();
    n->self = *self;
    ident_to_text(self->pk, n->self_text);
    n->started_ms = node_now_ms(n);
    n->started_s = node_now_s(n);
    wb_init(&n->batch->scratch, RECORD_ENVELOPE_MAX + 64);

    if ((rc = paths_join(cfg->data_dir, PATHS_STORE_NAME, path, sizeof(path))) != 0) {
        log_error("data directory path too long");
        goto fail_early;
    }
    store_opts_init(&so);
    so.max_per_author = cfg->limits.max_per_author;
    so.sync = cfg->store_nosync ? STORE_SYNC_NONE : STORE_SYNC_FULL;
    if ((rc = store_open(path, &so, &n->store)) != 0) {
        log_error("cannot open the store %s: %s", path, pull_strerror(rc));
        goto fail_early;
    }
    uv_check_init(loop, &n->batch->check);
    n->batch->check.data = n;
    uv_idle_init(loop, &n->batch->idle);
    n->batch->idle.data = n;
    uv_timer_init(loop, &n->batch->sweep);
    n->batch->sweep.data = n;
    uv_timer_init(loop, &n->batch->trim);
    n->batch->trim.data = n;
    n->batch->handles = true;
    uv_check_start(&n->batch->check, on_check);
    uv_timer_start(&n->batch->sweep, on_sweep, SWEEP_FIRST_MS, 0);

    if ((rc = sync_new(n)) != 0)
        goto fail;
    if ((rc = ctl_server_start(n)) != 0) {
        log_error("cannot start the control socket: %s", pull_strerror(rc));
        goto fail;
    }
    n->batch->started_ctl = true;
    trim_now(n); /* the set and the search index were built from a pass over the store */
    if ((rc = lan_start(n)) != 0) {
        log_warn("LAN discovery not available: %s", pull_strerror(rc));
        rc = 0; /* not fatal: the node still works through bootstrap peers */
    } else {
        n->batch->started_lan = true;
    }
    if ((rc = dyads_start(n)) != 0) {
        log_error("cannot start the dyad service: %s", pull_strerror(rc));
        goto fail;
    }
    n->batch->started_dyads = true;
    *out = n;
    return 0;

fail:
    node_teardown_failed(n);
    return rc;
fail_early:
    store_close(n->store);
    wb_release(&n->batch->scratch);
    sodium_memzero(&n->self, sizeof(n->self));
    free(n->batch);
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
    (void)node_flush(n);
    if (b->started_dyads)
        dyads_stop(n);
    if (b->started_lan)
        lan_stop(n);
    if (b->started_ctl)
        ctl_server_stop(n);
    sync_stop(n);
    (void)node_flush(n); /* anything the parts submitted while stopping */
    if (b->handles) {
        if (b->idle_on)
            uv_idle_stop(&b->idle);
        b->idle_on = false;
        uv_close((uv_handle_t *)&b->check, NULL);
        uv_close((uv_handle_t *)&b->idle, NULL);
        uv_close((uv_handle_t *)&b->sweep, NULL);
        uv_close((uv_handle_t *)&b->trim, NULL);
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
    if (b->started_dyads)
        dyads_free(n);
    if (b->started_lan)
        lan_free(n);
    if (b->started_ctl)
        ctl_server_free(n);
    sync_free(n);
    for (size_t i = 0; i < b->n; i++) {
        if (b->items[i]->cb != NULL)
            b->items[i]->cb(b->items[i]->arg, PULL_ERR_CLOSED, b->items[i]->env.id);
        free(b->items[i]);
    }
    store_close(n->store);
    wb_release(&b->scratch);
    ident_wipe(&n->self);
    free(b);
    free(n);
}
