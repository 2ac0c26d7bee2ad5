/*
 * store_commit: the one write transaction of the store (store_commit, store_put_batch,
 * store_put_opened, store_sweep): records (store_put_apply, store_put.c), then the expiry sweep,
 * then the key-value writes (store_kv.c), then the budget's evictions of strangers'
 * records. store_int.h has the rooms.
 */
#include "lib/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/store_int.h"

struct sweep_arg {
    uint64_t now_s;
    size_t max;
    struct pull_wb done; /* created(8) || id(32) per removed record */
    struct rinfo old;
};

static int sweep_apply(struct store *s, MDB_txn *txn, struct sweep_arg *a, struct counters *c);

/* ---------------------------------------------------------------------------------- */
/* The budget                                                                          */

/* One record of a stranger, as its latest entry gives it. */
struct ev_rec {
    uint64_t created;
    uint8_t id[RECORD_ID_BYTES];
    uint8_t slot[RECORD_SLOT_BYTES];
};

/* A stranger during an eviction round. */
struct ev_author {
    uint8_t author[32];
    uint32_t count;      /* live + tombstones, as the round leaves them */
    struct ev_rec *recs; /* its records oldest first, read when first needed */
    size_t nrecs, next;
};

static int
ev_author_cmp(const void *pa, const void *pb)
{
    const struct ev_author *a = pa, *b = pb;

    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return memcmp(a->author, b->author, 32);
}

static int
ev_rec_cmp(const void *pa, const void *pb)
{
    const struct ev_rec *a = pa, *b = pb;

    if (a->created != b->created)
        return a->created < b->created ? -1 : 1;
    return memcmp(a->id, b->id, RECORD_ID_BYTES);
}

/* ev_load lists e's records from latest (author || slot), oldest first. */
static int
ev_load(struct store *s, MDB_txn *txn, struct ev_author *e)
{
    MDB_cursor *cur = NULL;
    MDB_val k = mval(e->author, 32), v;
    size_t cap = 0;
    int rc, op = MDB_SET_RANGE;

    if ((rc = mdb_cursor_open(txn, s->dbi[T_LATEST], &cur)) != 0)
        return rc;
    for (;; op = MDB_NEXT) {
        if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0) {
            if (rc == MDB_NOTFOUND)
                rc = 0;
            break;
        }
        if (k.mv_size != LATEST_KEY_LEN || memcmp(k.mv_data, e->author, 32) != 0)
            break;
        if (v.mv_size != LATEST_VAL_LEN)
            continue;
        if (e->nrecs == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct ev_rec *p = realloc(e->recs, nc * sizeof(*p));
            if (p == NULL) {
                rc = PULL_ERR_NOMEM;
                break;
            }
            e->recs = p;
            cap = nc;
        }
        e->recs[e->nrecs].created = be64dec((const uint8_t *)v.mv_data + 48);
        memcpy(e->recs[e->nrecs].id, (const uint8_t *)v.mv_data + 8, RECORD_ID_BYTES);
        memcpy(e->recs[e->nrecs].slot, (const uint8_t *)k.mv_data + 32, RECORD_SLOT_BYTES);
        e->nrecs++;
    }
    mdb_cursor_close(cur);
    if (rc == 0 && e->nrecs > 1)
        qsort(e->recs, e->nrecs, sizeof(*e->recs), ev_rec_cmp);
    return rc;
}

/* ev_take evicts e's oldest record: every index entry, its quota count, the counters. */
static int
ev_take(struct store *s, MDB_txn *txn, struct commit_arg *ca, struct ev_author *e)
{
    const struct ev_rec *r;
    uint8_t lk[LATEST_KEY_LEN], created[8];
    uint32_t live, tombs;
    bool found, decoded;
    int rc;

    if (e->recs == NULL && (rc = ev_load(s, txn, e)) != 0)
        return rc;
    if (e->next >= e->nrecs) {
        e->count = 0; /* the quota counted records latest does not hold */
        return 0;
    }
    r = &e->recs[e->next++];
    e->count -= e->count > 0;
    memcpy(lk, e->author, 32);
    memcpy(lk + 32, r->slot, RECORD_SLOT_BYTES);
    if ((rc = store_del_tolerant(txn, s->dbi[T_LATEST], lk, LATEST_KEY_LEN)) != 0 ||
        (rc = store_load_at(s, txn, r->created, r->id, &ca->old, &found, &decoded)) != 0)
        return rc;
    if (found) {
        if ((rc = store_remove_indexed(s, txn, &ca->old, decoded)) != 0)
            return rc;
        store_counters_add(&ca->c, &ca->old, -1);
    } else if ((rc = store_del_tolerant(txn, s->dbi[T_IDS], r->id, RECORD_ID_BYTES)) != 0) {
        return rc;
    }
    if ((rc = store_quota_get(s, txn, e->author, &live, &tombs)) != 0)
        return rc;
    if (decoded && ca->old.kind == RECORD_WITHDRAWN)
        tombs -= tombs > 0;
    else if (live > 0)
        live--;
    else
        tombs -= tombs > 0;
    if ((rc = store_quota_set(s, txn, e->author, live, tombs)) != 0)
        return rc;
    be64enc(created, r->created);
    wb_put(&ca->evicted, created, 8);
    return wb_put(&ca->evicted, r->id, RECORD_ID_BYTES);
}

/* evict_apply is an eviction round (store.h, Budget): level the strangers from the top
 * until the bytes are down to STORE_BUDGET_LOW. Work: one pass over the quota table (one
 * entry per author) and the records evicted - and a round frees 1/32 of the budget, so
 * rounds are rare. */
static int
evict_apply(struct store *s, MDB_txn *txn, struct commit_arg *ca)
{
    uint64_t target = STORE_BUDGET_LOW(s->opts.max_bytes);
    struct ev_author *v = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, val;
    size_t n = 0, cap = 0, end;
    uint32_t m = 0;
    int rc, op = MDB_FIRST;

    if ((rc = mdb_cursor_open(txn, s->dbi[T_QUOTA], &cur)) != 0)
        return rc;
    for (;; op = MDB_NEXT) {
        uint32_t count;
        if ((rc = mdb_cursor_get(cur, &k, &val, op)) != 0) {
            if (rc == MDB_NOTFOUND)
                rc = 0;
            break;
        }
        if (k.mv_size != 32 || val.mv_size != 8 || store_keeps(s, k.mv_data))
            continue;
        count = be32dec(val.mv_data) + be32dec((const uint8_t *)val.mv_data + 4);
        if (count == 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 256;
            struct ev_author *p = realloc(v, nc * sizeof(*p));
            if (p == NULL) {
                rc = PULL_ERR_NOMEM;
                break;
            }
            v = p;
            cap = nc;
        }
        memset(&v[n], 0, sizeof(v[n]));
        memcpy(v[n].author, k.mv_data, 32);
        v[n].count = count;
        n++;
    }
    mdb_cursor_close(cur);
    if (rc != 0)
        goto out;
    if (n > 1)
        qsort(v, n, sizeof(*v), ev_author_cmp);
    m = n > 0 ? v[0].count : 0;
    for (end = 0; end < n && v[end].count == m; end++)
        ;
    while (ca->c.bytes > target && m > 0) {
        /* one record from each author at the top level, then the level goes down */
        for (size_t i = 0; i < end && ca->c.bytes > target; i++) {
            if (v[i].count == m && (rc = ev_take(s, txn, ca, &v[i])) != 0)
                goto out;
        }
        if (ca->c.bytes <= target)
            break;
        m--;
        for (; end < n && v[end].count >= m; end++)
            ;
    }
    if (ca->c.bytes > target)
        log_warn("store: over its budget with only kept records (%llu bytes)",
                 (unsigned long long)ca->c.bytes);
    ca->level = m;
out:
    for (size_t i = 0; i < n; i++)
        free(v[i].recs);
    free(v);
    return rc;
}

/* budget_apply runs an eviction round if the transaction leaves the store over its budget,
 * turns the records of this commit that the round took into refusals, and notes which
 * peers gave the records that stay. */
static int
budget_apply(struct store *s, MDB_txn *txn, struct commit_arg *ca)
{
    struct put_arg *a = ca->put;
    uint64_t max = s->opts.max_bytes;
    size_t w = 0;
    int rc;

    ca->level = s->level;
    if (max > 0 && ca->c.bytes > max) {
        if ((rc = evict_apply(s, txn, ca)) != 0)
            return rc;
        /* an item of this commit that was taken is refused instead; what it replaced
         * was stored before, so that one is reported as evicted */
        for (size_t off = 0; off < ca->evicted.len; off += RECKEY_LEN) {
            uint8_t *e = ca->evicted.p + off;
            struct rinfo *r = a != NULL ? store_batch_find(a, e + 8) : NULL;
            if (r != NULL && r->result == 0) {
                r->result = PULL_ERR_QUOTA;
                r->pending = false;
                if (!r->replaced)
                    continue;
                r->replaced = false;
                be64enc(e, r->replaced_created);
                memcpy(e + 8, r->replaced_id, RECORD_ID_BYTES);
            }
            memmove(ca->evicted.p + w, e, RECKEY_LEN);
            w += RECKEY_LEN;
        }
        ca->evicted.len = w;
    } else if (max == 0 || ca->c.bytes < max - max / 16) {
        ca->level = STORE_LEVEL_NONE; /* well below the budget again */
    }
    for (size_t i = 0; a != NULL && i < a->n; i++) {
        const struct rinfo *r = &a->ri[i];
        if (r->result == 0 && r->pending && r->from != NULL &&
            (rc = store_peer_note_record(s, txn, r->from, a->now_s)) != 0)
            return rc;
    }
    return wb_error(&ca->evicted);
}

static int
commit_txn(struct store *s, MDB_txn *txn, void *argp)
{
    struct commit_arg *ca = argp;
    int rc;

    /* restart from the committed state (this may be a retry after growing the map) */
    atomic_store(&s->run_txn, (uint64_t)mdb_txn_id(txn));
    ca->c = s->c;
    wb_reset(&ca->evicted);
    wb_reset(&ca->peers_out);
    if (ca->put != NULL) {
        ca->put->c = ca->c;
        if ((rc = store_put_apply(s, txn, ca->put)) != 0)
            return rc;
        ca->c = ca->put->c;
    }
    if (ca->sweep != NULL && (rc = sweep_apply(s, txn, ca->sweep, &ca->c)) != 0)
        return rc;
    for (size_t i = 0; i < ca->nkv; i++) {
        if ((rc = store_kv_apply(s, txn, ca, &ca->kv[i])) != 0)
            return rc;
    }
    if ((rc = wb_error(&ca->peers_out)) != 0 || (rc = budget_apply(s, txn, ca)) != 0)
        return rc;
    if (ca->put == NULL && ca->sweep == NULL && ca->evicted.len == 0)
        return 0; /* the counters did not change */
    return store_counters_save(s, txn, &ca->c);
}

static int
store_put_infos(struct store *s, struct rinfo *ri, size_t n, uint64_t now_s)
{
    struct commit_arg ca;
    int rc;

    if (n == 0)
        return 0;
    memset(&ca, 0, sizeof(ca));
    ca.now_s = now_s;
    if ((rc = store_put_arg_new(ri, n, now_s, &ca.put)) != 0)
        return rc;
    wb_init(&ca.evicted, 0);
    wb_init(&ca.peers_out, 0);
    rc = store_write(s, commit_txn, &ca);
    if (rc == 0) {
        s->c = ca.c;
        s->level = ca.level;
        s->evicted += ca.evicted.len / RECKEY_LEN;
    }
    wb_release(&ca.evicted);
    wb_release(&ca.peers_out);
    store_put_arg_free(ca.put);
    return rc;
}

static int
store_scratch(struct store *s, size_t n)
{
    struct rinfo *p;

    if (n <= s->ri_cap)
        return 0;
    if (n > SIZE_MAX / sizeof(*p))
        return PULL_ERR_NOMEM;
    if ((p = realloc(s->ri, n * sizeof(*p))) == NULL)
        return PULL_ERR_NOMEM;
    s->ri = p;
    s->ri_cap = n;
    return 0;
}

static void
store_scratch_trim(struct store *s)
{
    if (s->ri_cap > SCRATCH_KEEP) {
        free(s->ri);
        s->ri = NULL;
        s->ri_cap = 0;
    }
}

int
store_put_batch(struct store *s, struct store_item *items, size_t n, uint64_t now_s)
{
    struct envelope env;
    size_t m = 0;
    int rc;

    if (n == 0)
        return 0;
    if (n > STORE_BATCH_MAX)
        return PULL_ERR_TOO_BIG;
    if ((rc = store_scratch(s, n)) != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        struct store_item *it = &items[i];
        it->result = 0;
        it->has_id = false;
        it->replaced = false;
        if (it->bytes == NULL) {
            it->result = PULL_ERR_INVAL;
            continue;
        }
        rc = envelope_open(it->bytes, it->len, now_s, &env, s->dec);
        if (rc != 0) {
            it->result = rc;
            if (envelope_parse(it->bytes, it->len, &env) == 0) {
                memcpy(it->id, env.id, RECORD_ID_BYTES);
                it->has_id = true;
            }
            continue;
        }
        memcpy(it->id, env.id, RECORD_ID_BYTES);
        it->has_id = true;
        store_rinfo_from(&s->ri[m], &env, s->dec);
        s->ri[m].item = i;
        m++;
    }
    rc = store_put_infos(s, s->ri, m, now_s);
    if (rc == 0) {
        for (size_t j = 0; j < m; j++) {
            struct store_item *it = &items[s->ri[j].item];
            it->result = s->ri[j].result;
            it->replaced = s->ri[j].replaced;
            if (it->replaced)
                memcpy(it->replaced_id, s->ri[j].replaced_id, RECORD_ID_BYTES);
        }
    }
    store_scratch_trim(s);
    return rc;
}

int
store_put_opened(struct store *s, struct store_opened *items, size_t n, uint64_t now_s)
{
    struct store_commit c;

    if (n == 0)
        return 0;
    memset(&c, 0, sizeof(c));
    c.recs = items;
    c.nrecs = n;
    return store_commit(s, &c, now_s);
}

/* What a commit carries from store_commit_begin to store_commit_end. */
struct store_commit_state {
    struct commit_arg ca;
    struct sweep_arg *sw;
    size_t m;           /* records in s->ri */
    int need;           /* what store_commit_run left to store_commit_end (STORE_NEED_*) */
    uint64_t last_page; /* store_last_page before it (the pages it adds) */
};

static void
commit_state_free(struct store *s, struct store_commit *c)
{
    struct store_commit_state *st = c->st;

    if (st != NULL) {
        wb_release(&st->ca.evicted);
        wb_release(&st->ca.peers_out);
        store_put_arg_free(st->ca.put);
        if (st->sw != NULL) {
            wb_release(&st->sw->done);
            free(st->sw);
        }
        free(st);
        c->st = NULL;
    }
    s->committing = false;
    atomic_store(&s->run_txn, 0);
    store_scratch_trim(s);
}

int
store_commit_begin(struct store *s, struct store_commit *c, uint64_t now_s)
{
    struct store_commit_state *st;
    size_t m = 0;
    int rc;

    c->st = NULL;
    c->nswept = 0;
    if (c->nrecs > STORE_BATCH_MAX)
        return PULL_ERR_TOO_BIG;
    c->nevicted = c->npeers_evicted = 0;
    for (size_t i = 0; i < c->nkv; i++) {
        const struct store_kv_op *op = &c->kv[i];
        if (store_kv_table(op->table) < 0 || (!op->del && op->val == NULL && op->len != 0) ||
            (op->note != NULL && op->table != STORE_PEERS))
            return PULL_ERR_INVAL;
        if (op->len > STORE_KV_MAX)
            return PULL_ERR_TOO_BIG;
    }
    if (c->nrecs == 0 && c->nkv == 0 && c->sweep_max == 0)
        return 0;
    if (s->committing)
        return PULL_ERR_STATE; /* one commit at a time */
    if ((rc = store_scratch(s, c->nrecs)) != 0)
        return rc;
    if ((st = calloc(1, sizeof(*st))) == NULL)
        return PULL_ERR_NOMEM;
    c->st = st;
    st->last_page = store_last_page(s);
    s->committing = true;
    for (size_t i = 0; i < c->nrecs; i++) {
        struct store_opened *it = &c->recs[i];
        it->result = 0;
        it->replaced = false;
        const struct record *rec = it->rec;
        if (it->env == NULL || it->env->bytes == NULL) {
            it->result = PULL_ERR_INVAL;
            continue;
        }
        if (it->env->len == 0 || it->env->len > RECORD_ENVELOPE_MAX) {
            it->result = PULL_ERR_TOO_BIG;
            continue;
        }
        if (rec == NULL) { /* decoded here, one at a time (s->dec is free: no commit runs) */
            it->result = it->env->rec != NULL
                             ? record_decode(it->env->rec, it->env->rec_len, s->dec)
                             : PULL_ERR_INVAL;
            if (it->result != 0)
                continue;
            rec = s->dec;
        }
        if (rec->kind < RECORD_OFFER || rec->kind > RECORD_ATTESTATION) {
            it->result = PULL_ERR_KIND;
            continue;
        }
        store_rinfo_from(&s->ri[m], it->env, rec);
        s->ri[m].item = i;
        s->ri[m].from = it->from;
        m++;
    }
    st->m = m;
    st->ca.kv = c->kv;
    st->ca.nkv = c->nkv;
    st->ca.now_s = now_s;
    wb_init(&st->ca.evicted, 0);
    wb_init(&st->ca.peers_out, 0);
    if (m > 0 && (rc = store_put_arg_new(s->ri, m, now_s, &st->ca.put)) != 0)
        goto fail;
    if (c->sweep_max > 0) {
        if ((st->sw = calloc(1, sizeof(*st->sw))) == NULL) {
            rc = PULL_ERR_NOMEM;
            goto fail;
        }
        st->sw->now_s = now_s;
        st->sw->max = c->sweep_max;
        wb_init(&st->sw->done, 0);
        st->ca.sweep = st->sw;
    }
    return 0;
fail:
    commit_state_free(s, c);
    return rc;
}

int
store_commit_run(struct store *s, struct store_commit *c)
{
    struct store_commit_state *st = c->st;

    if (st == NULL)
        return 0;
    return store_write_once(s, commit_txn, &st->ca, &st->need);
}

int
store_commit_end(struct store *s, struct store_commit *c, int rc)
{
    struct store_commit_state *st = c->st;
    struct commit_arg *ca;
    uint64_t added;

    if (st == NULL)
        return rc;
    ca = &st->ca;
    if (rc == PULL_ERR_AGAIN && st->need != STORE_NEED_NONE) {
        /* the run is over: nothing of the store is in use on another thread */
        s->committing = false;
        atomic_store(&s->run_txn, 0);
        if ((rc = store_make_room(s, st->need)) == 0) {
            s->committing = true;
            st->need = STORE_NEED_NONE;
            return PULL_ERR_AGAIN; /* run it again */
        }
        goto out;
    }
    if (rc != 0)
        goto out;
    s->c = ca->c;
    s->level = ca->level;
    c->nevicted = ca->evicted.len / RECKEY_LEN;
    c->npeers_evicted = ca->peers_out.len / 32;
    s->evicted += c->nevicted;
    for (size_t j = 0; j < st->m; j++) {
        struct store_opened *it = &c->recs[s->ri[j].item];
        it->result = s->ri[j].result;
        it->replaced = s->ri[j].replaced;
        if (it->replaced)
            memcpy(it->replaced_id, s->ri[j].replaced_id, RECORD_ID_BYTES);
    }
    if (st->sw != NULL) {
        struct sweep_arg *sw = st->sw;
        c->nswept = sw->done.len / RECKEY_LEN;
        for (size_t off = 0; c->swept != NULL && off < sw->done.len; off += RECKEY_LEN) {
            if (c->swept(c->swept_ctx, be64dec(sw->done.p + off), sw->done.p + off + 8) != 0)
                break; /* the deletions are committed; stopping only skips the reports */
        }
    }
    for (size_t off = 0; c->evicted != NULL && off < ca->evicted.len; off += RECKEY_LEN) {
        const uint8_t *e = ca->evicted.p + off;
        if (c->evicted(c->evicted_ctx, be64dec(e), e + 8) != 0)
            break;
    }
    for (size_t off = 0; c->peer_evicted != NULL && off < ca->peers_out.len; off += 32)
        c->peer_evicted(c->peer_evicted_ctx, ca->peers_out.p + off);
    added = store_last_page(s);
    added = added > st->last_page ? added - st->last_page : 0;
    s->grow_pages = added > s->grow_pages / 2 ? added : s->grow_pages / 2;
out:
    commit_state_free(s, c);
    if (rc == 0 && s->grow_pages > 0)
        store_grow_ahead(s, 2 * s->grow_pages * s->page_size);
    return rc;
}

int
store_commit(struct store *s, struct store_commit *c, uint64_t now_s)
{
    int rc;

    if ((rc = store_commit_begin(s, c, now_s)) != 0)
        return rc;
    for (int tries = 0;; tries++) {
        rc = store_commit_run(s, c);
        rc = store_commit_end(s, c, rc);
        if (rc != PULL_ERR_AGAIN || c->st == NULL || tries >= 64)
            break;
    }
    if (c->st != NULL) { /* gave up growing */
        commit_state_free(s, c);
        rc = PULL_ERR_STORE_FULL;
    }
    return rc;
}

/* ---------------------------------------------------------------------------------- */
/* Sweeping expired records                                                            */

/* sweep_apply deletes up to a->max expired records in txn, counting into *c, and lists
 * them in a->done. */
static int
sweep_apply(struct store *s, MDB_txn *txn, struct sweep_arg *a, struct counters *c)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    struct pull_wb ids;
    int rc, op = MDB_FIRST;

    wb_reset(&a->done);
    wb_init(&ids, 0);
    /* first collect the expired ids, then delete (no cursor kept across deletes) */
    if ((rc = mdb_cursor_open(txn, s->dbi[T_EXPIRY], &cur)) != 0)
        goto out;
    for (size_t n = 0; n < a->max; n++, op = MDB_NEXT) {
        rc = mdb_cursor_get(cur, &k, &v, op);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            break;
        }
        if (rc != 0)
            goto out;
        if (k.mv_size != RECKEY_LEN) {
            rc = PULL_ERR_STORE;
            goto out;
        }
        if (be64dec(k.mv_data) > a->now_s)
            break;
        wb_put(&ids, k.mv_data, RECKEY_LEN);
    }
    mdb_cursor_close(cur);
    cur = NULL;
    if ((rc = wb_error(&ids)) != 0)
        goto out;

    for (size_t off = 0; off < ids.len; off += RECKEY_LEN) {
        const uint8_t *ek = ids.p + off, *id = ek + 8;
        bool found, decoded;
        uint8_t lk[LATEST_KEY_LEN];
        uint8_t created[8];

        if ((rc = store_load_stored(s, txn, id, &a->old, &found, &decoded)) != 0)
            goto out;
        /* the expiry entry goes in every case (it is how we got here) */
        if ((rc = store_del_tolerant(txn, s->dbi[T_EXPIRY], ek, RECKEY_LEN)) != 0)
            goto out;
        if (!found) {
            if ((rc = store_del_tolerant(txn, s->dbi[T_IDS], id, RECORD_ID_BYTES)) != 0)
                goto out;
            continue;
        }
        if ((rc = store_remove_indexed(s, txn, &a->old, decoded)) != 0)
            goto out;
        store_counters_add(c, &a->old, -1);
        if (decoded) {
            uint32_t live, tombs;
            memcpy(lk, a->old.author, 32);
            memcpy(lk + 32, a->old.slot, RECORD_SLOT_BYTES);
            k = mval(lk, LATEST_KEY_LEN);
            rc = mdb_get(txn, s->dbi[T_LATEST], &k, &v);
            if (rc == 0 && v.mv_size == LATEST_VAL_LEN &&
                memcmp((const uint8_t *)v.mv_data + 8, id, RECORD_ID_BYTES) == 0)
                rc = mdb_del(txn, s->dbi[T_LATEST], &k, NULL);
            else if (rc == MDB_NOTFOUND || rc == 0)
                rc = 0;
            if (rc != 0)
                goto out;
            if ((rc = store_quota_get(s, txn, a->old.author, &live, &tombs)) != 0)
                goto out;
            if (a->old.kind == RECORD_WITHDRAWN)
                tombs -= tombs > 0;
            else
                live -= live > 0;
            if ((rc = store_quota_set(s, txn, a->old.author, live, tombs)) != 0)
                goto out;
        }
        be64enc(created, a->old.created);
        wb_put(&a->done, created, 8);
        wb_put(&a->done, id, RECORD_ID_BYTES);
    }
    rc = wb_error(&a->done);
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    wb_release(&ids);
    return rc;
}

int
store_sweep(struct store *s, uint64_t now_s, size_t max, store_key_fn fn, void *ctx)
{
    struct store_commit c;
    int rc;

    if (max == 0)
        return 0;
    memset(&c, 0, sizeof(c));
    c.sweep_max = max;
    c.swept = fn;
    c.swept_ctx = ctx;
    if ((rc = store_commit(s, &c, now_s)) != 0)
        return rc;
    return c.nswept > INT32_MAX ? INT32_MAX : (int)c.nswept;
}
