/*
 * store_put: writing a batch of records in one transaction - the quota, the checks of
 * phase 1 (duplicates, replacement) and the inserts of phase 2 (store_put_apply). The
 * transaction that runs it is store_commit.c's; store.c's top comment has what the writes
 * cost, store_int.h the rooms.
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

/* ---------------------------------------------------------------------------------- */
/* Writing records                                                                     */

bool
store_keeps(const struct store *s, const uint8_t author[32])
{
    return s->opts.keep != NULL && s->opts.keep(s->opts.keep_ctx, author);
}

int
store_quota_get(struct store *s, MDB_txn *txn, const uint8_t author[32], uint32_t *live,
                uint32_t *tombs)
{
    MDB_val k = mval(author, 32), v;
    int rc = mdb_get(txn, s->dbi[T_QUOTA], &k, &v);

    *live = *tombs = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (v.mv_size != 8)
        return PULL_ERR_STORE;
    *live = be32dec(v.mv_data);
    *tombs = be32dec((const uint8_t *)v.mv_data + 4);
    return 0;
}

int
store_quota_set(struct store *s, MDB_txn *txn, const uint8_t author[32], uint32_t live,
                uint32_t tombs)
{
    MDB_val k = mval(author, 32), v;
    uint8_t b[8];
    int rc;

    if (live == 0 && tombs == 0) {
        rc = mdb_del(txn, s->dbi[T_QUOTA], &k, NULL);
        return rc == MDB_NOTFOUND ? 0 : rc;
    }
    be32enc(b, live);
    be32enc(b + 4, tombs);
    v = mval(b, 8);
    return mdb_put(txn, s->dbi[T_QUOTA], &k, &v, 0);
}

void
store_counters_add(struct counters *c, const struct rinfo *r, int sign)
{
    unsigned k = r->kind < KIND_SLOTS ? r->kind : 0;

    if (sign > 0) {
        c->records++;
        c->bytes += r->len;
        c->by_kind[k]++;
    } else {
        c->records -= c->records > 0;
        c->bytes -= c->bytes >= r->len ? r->len : c->bytes;
        c->by_kind[k] -= c->by_kind[k] > 0;
    }
}

/* store_load_at fills o with the stored record (created, id), decoding its envelope. *found is
 * false if it isn't in recs. If the stored bytes no longer decode (a bug or a corruption),
 * o still gets what the keys tell (id, created, length) with kind 0 and no tags, *decoded
 * is false, and the caller removes what it can. */
int
store_load_at(struct store *s, MDB_txn *txn, uint64_t created, const uint8_t id[RECORD_ID_BYTES],
              struct rinfo *o, bool *found, bool *decoded)
{
    uint8_t rk[RECKEY_LEN];
    MDB_val k, v;
    struct envelope env;
    int rc;

    *found = *decoded = false;
    memset(o, 0, offsetof(struct rinfo, taglen));
    memcpy(o->id, id, RECORD_ID_BYTES);
    o->created = created;
    reckey(rk, created, id);
    k = mval(rk, RECKEY_LEN);
    rc = mdb_get(txn, s->dbi[T_RECS], &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    *found = true;
    o->bytes = v.mv_data;
    o->len = v.mv_size;
    if (envelope_parse(v.mv_data, v.mv_size, &env) == 0 &&
        record_decode(env.rec, env.rec_len, s->dec) == 0) {
        store_rinfo_from(o, &env, s->dec);
        memcpy(o->id, id, RECORD_ID_BYTES);
        *decoded = true;
    } else {
        log_warn("store: stored record does not decode; removing what can be found");
    }
    return 0;
}

/* store_load_stored is store_load_at for an id alone (one more lookup, in ids). */
int
store_load_stored(struct store *s, MDB_txn *txn, const uint8_t id[RECORD_ID_BYTES], struct rinfo *o,
                  bool *found, bool *decoded)
{
    MDB_val k = mval(id, RECORD_ID_BYTES), v;
    int rc;

    *found = *decoded = false;
    rc = mdb_get(txn, s->dbi[T_IDS], &k, &v);
    if (rc == MDB_NOTFOUND) {
        memset(o, 0, offsetof(struct rinfo, taglen));
        memcpy(o->id, id, RECORD_ID_BYTES);
        return 0;
    }
    if (rc != 0)
        return rc;
    if (v.mv_size != 8)
        return PULL_ERR_STORE;
    return store_load_at(s, txn, be64dec(v.mv_data), id, o, found, decoded);
}

int
store_del_tolerant(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen)
{
    MDB_val k = mval(key, klen);
    int rc = mdb_del(txn, dbi, &k, NULL);

    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* store_remove_indexed deletes o from recs, ids, expiry and tags (not latest, not quota). */
int
store_remove_indexed(struct store *s, MDB_txn *txn, const struct rinfo *o, bool decoded)
{
    uint8_t k[TAG_KEY_MAX];
    int rc;

    reckey(k, o->created, o->id);
    if ((rc = store_del_tolerant(txn, s->dbi[T_RECS], k, RECKEY_LEN)) != 0 ||
        (rc = store_del_tolerant(txn, s->dbi[T_IDS], o->id, RECORD_ID_BYTES)) != 0)
        return rc;
    if (!decoded)
        return 0;
    reckey(k, o->expires, o->id);
    if ((rc = store_del_tolerant(txn, s->dbi[T_EXPIRY], k, RECKEY_LEN)) != 0)
        return rc;
    for (unsigned i = 0; i < o->ntags; i++) {
        size_t n = tagkey(k, o->tags[i], o->taglen[i], o->created, o->id);
        if ((rc = store_del_tolerant(txn, s->dbi[T_TAGS], k, n)) != 0)
            return rc;
    }
    return 0;
}

static int
tail_load(MDB_txn *txn, MDB_dbi dbi, struct tail *t)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc;

    t->any = false;
    if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
        return rc;
    rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0 && k.mv_size == RECKEY_LEN) {
        memcpy(t->key, k.mv_data, RECKEY_LEN);
        t->any = true;
    } else if (rc == 0) {
        rc = PULL_ERR_STORE;
    } else if (rc == MDB_NOTFOUND) {
        rc = 0;
    }
    mdb_cursor_close(cur);
    return rc;
}

static int
tail_put(MDB_txn *txn, MDB_dbi dbi, struct tail *t, const uint8_t key[RECKEY_LEN], MDB_val *val)
{
    MDB_val k = mval(key, RECKEY_LEN);
    bool append = !t->any || memcmp(key, t->key, RECKEY_LEN) > 0;
    int rc = mdb_put(txn, dbi, &k, val, append ? MDB_APPEND : 0);

    if (rc == 0 && append) {
        memcpy(t->key, key, RECKEY_LEN);
        t->any = true;
    }
    return rc;
}

static void
latest_val(uint8_t v[LATEST_VAL_LEN], const struct rinfo *r)
{
    be64enc(v, r->seq);
    memcpy(v + 8, r->id, RECORD_ID_BYTES);
    be64enc(v + 40, r->expires);
    be64enc(v + 48, r->created);
}

/*
 * A batch is written in two phases, which give exactly the results of storing the items
 * one by one in their order (tests/unit/test_store.c checks it):
 *
 *   1. Checks, in the order of (author, position in the batch). Items of different authors
 *      never interact - a duplicate has the same author, replacement is per (author, slot),
 *      the quota per author - so grouping by author keeps every author's items in their
 *      order. Per item: ids and latest are written with MDB_NOOVERWRITE, which is also the
 *      duplicate and replacement check; the quota counters of the current author are kept
 *      in memory and written once per author; replaced versions are deleted.
 *   2. Inserts of the accepted items into recs, expiry and tags, each sorted by its key.
 *      Sorted inserts walk each B-tree in order (the pages on the way stay in cache), and
 *      recs and expiry mostly append (MDB_APPEND, see struct tail).
 */

static int
bkey_cmp(const void *pa, const void *pb)
{
    const struct bkey *a = pa, *b = pb;
    int c = memcmp(a->key, b->key, RECKEY_LEN);

    if (c != 0)
        return c;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Same order as LMDB's default comparison: bytes, then the shorter first. */
static int
tkey_cmp(const void *pa, const void *pb)
{
    const struct tkey *a = pa, *b = pb;
    int c = memcmp(a->key, b->key, a->len < b->len ? a->len : b->len);

    if (c != 0)
        return c;
    return (int)a->len - (int)b->len;
}

static int
qcur_switch(struct store *s, MDB_txn *txn, struct qcur *q, const uint8_t *author)
{
    int rc;

    if (q->loaded && author != NULL && memcmp(q->author, author, 32) == 0)
        return 0;
    if (q->loaded && q->dirty && (rc = store_quota_set(s, txn, q->author, q->live, q->tombs)) != 0)
        return rc;
    q->loaded = q->dirty = false;
    if (author == NULL)
        return 0;
    if ((rc = store_quota_get(s, txn, author, &q->live, &q->tombs)) != 0)
        return rc;
    memcpy(q->author, author, 32);
    q->loaded = true;
    return 0;
}

/* The accepted items of the batch by id (open addressing; ids are uniformly random), so a
 * replacement finds an older version accepted earlier in the same batch in O(1). */
static void
batch_add(struct put_arg *a, uint32_t idx)
{
    size_t mask = a->idcap - 1, h = (size_t)be64dec(a->ri[idx].id) & mask;

    while (a->idtab[h] != 0)
        h = (h + 1) & mask;
    a->idtab[h] = idx + 1;
}

struct rinfo *
store_batch_find(struct put_arg *a, const uint8_t id[RECORD_ID_BYTES])
{
    size_t mask = a->idcap - 1, h = (size_t)be64dec(id) & mask;

    for (; a->idtab[h] != 0; h = (h + 1) & mask) {
        struct rinfo *r = &a->ri[a->idtab[h] - 1];
        if (r->pending && memcmp(r->id, id, RECORD_ID_BYTES) == 0)
            return r;
    }
    return NULL;
}

/* put_check is phase 1 for one item, ord[pos]. Refusals go to r->result (the function
 * returns 0); only transaction-level failures are returned. A refusal after the first put
 * undoes it. */
static int
put_check(struct store *s, MDB_txn *txn, struct put_arg *a, size_t pos)
{
    struct rinfo *r = &a->ri[a->ord[pos].idx], *old = NULL;
    uint8_t cb[8], lk[LATEST_KEY_LEN], lv[LATEST_VAL_LEN];
    MDB_val k, v;
    bool fresh = false, in_batch = false, decoded = false;
    struct record_prior prior;
    int rc;

    r->result = 0;
    r->replaced = false;
    r->pending = false;
    memset(&prior, 0, sizeof(prior));
    if (r->expires <= a->now_s) {
        r->result = PULL_ERR_EXPIRED;
        return 0;
    }
    be64enc(cb, r->created);
    k = mval(r->id, RECORD_ID_BYTES);
    v = mval(cb, 8);
    rc = mdb_put(txn, s->dbi[T_IDS], &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        r->result = PULL_ERR_DUPLICATE;
        return 0;
    }
    if (rc != 0)
        return rc;

    memcpy(lk, r->author, 32);
    memcpy(lk + 32, r->slot, RECORD_SLOT_BYTES);
    latest_val(lv, r);
    k = mval(lk, LATEST_KEY_LEN);
    v = mval(lv, LATEST_VAL_LEN);
    rc = mdb_put(txn, s->dbi[T_LATEST], &k, &v, MDB_NOOVERWRITE);
    if (rc == 0) {
        fresh = true;
    } else if (rc == MDB_KEYEXIST) {
        uint64_t old_created;
        bool found;
        if (v.mv_size != LATEST_VAL_LEN)
            return PULL_ERR_STORE;
        prior.exists = true;
        prior.seq = be64dec(v.mv_data);
        memcpy(prior.id, (const uint8_t *)v.mv_data + 8, RECORD_ID_BYTES);
        old_created = be64dec((const uint8_t *)v.mv_data + 48);
        if (!record_replaces(r->seq, r->id, prior.seq, prior.id)) {
            /* stale: no need to read the older version (record_admit says the same) */
            r->result = PULL_ERR_STALE;
            return store_del_tolerant(txn, s->dbi[T_IDS], r->id, RECORD_ID_BYTES);
        }
        if ((old = store_batch_find(a, prior.id)) != NULL) {
            in_batch = decoded = true; /* accepted earlier in this batch, not inserted yet */
        } else {
            old = &a->old;
            if ((rc = store_load_at(s, txn, old_created, prior.id, old, &found, &decoded)) != 0)
                return rc;
            if (!found) { /* a latest entry without its record: just overwrite it */
                if ((rc = store_del_tolerant(txn, s->dbi[T_IDS], prior.id, RECORD_ID_BYTES)) != 0)
                    return rc;
                old = NULL;
            }
        }
        prior.counted = old != NULL && decoded;
        prior.live = prior.counted && old->kind != RECORD_WITHDRAWN;
    } else {
        return rc;
    }

    if ((rc = qcur_switch(s, txn, &a->q, r->author)) != 0)
        return rc;
    r->result =
        record_admit(r->kind, r->seq, r->id, &prior, a->q.live, a->q.tombs, s->opts.max_per_author);
    if (r->result == 0 && !prior.counted && s->level != STORE_LEVEL_NONE &&
        a->q.live + a->q.tombs >= s->level && !store_keeps(s, r->author))
        r->result = PULL_ERR_QUOTA; /* a stranger at the budget's level: no more records */
    if (r->result != 0) {
        if ((rc = store_del_tolerant(txn, s->dbi[T_IDS], r->id, RECORD_ID_BYTES)) != 0)
            return rc;
        return fresh ? store_del_tolerant(txn, s->dbi[T_LATEST], lk, LATEST_KEY_LEN) : 0;
    }
    if (prior.counted) {
        if (prior.live)
            a->q.live -= a->q.live > 0;
        else
            a->q.tombs -= a->q.tombs > 0;
    }
    if (r->kind != RECORD_WITHDRAWN)
        a->q.live++;
    else
        a->q.tombs++;
    a->q.dirty = true;

    if (!fresh) {
        k = mval(lk, LATEST_KEY_LEN);
        v = mval(lv, LATEST_VAL_LEN);
        if ((rc = mdb_put(txn, s->dbi[T_LATEST], &k, &v, 0)) != 0)
            return rc;
    }
    if (old != NULL) {
        if (in_batch) {
            /* only its ids entry exists yet; phase 2 will skip it */
            old->pending = false;
            rc = store_del_tolerant(txn, s->dbi[T_IDS], old->id, RECORD_ID_BYTES);
        } else {
            rc = store_remove_indexed(s, txn, old, decoded);
        }
        if (rc != 0)
            return rc;
        store_counters_add(&a->c, old, -1);
        r->replaced = true;
        memcpy(r->replaced_id, old->id, RECORD_ID_BYTES);
        r->replaced_created = old->created;
    }
    r->pending = true;
    batch_add(a, a->ord[pos].idx);
    store_counters_add(&a->c, r, +1);
    return 0;
}

/* Phase 2: recs and expiry in key order (mostly appends), then tags in key order. */
static int
put_insert(struct store *s, MDB_txn *txn, struct put_arg *a)
{
    MDB_val empty = mval("", 0), val;
    size_t m = 0, nt = 0;
    int rc;

    for (int pass = 0; pass < 2; pass++) {
        m = 0;
        for (size_t i = 0; i < a->n; i++) {
            const struct rinfo *r = &a->ri[i];
            if (!r->pending)
                continue;
            reckey(a->ord[m].key, pass == 0 ? r->created : r->expires, r->id);
            a->ord[m].idx = (uint32_t)i;
            m++;
        }
        if (m > 1)
            qsort(a->ord, m, sizeof(*a->ord), bkey_cmp);
        for (size_t j = 0; j < m; j++) {
            const struct rinfo *r = &a->ri[a->ord[j].idx];
            val = pass == 0 ? mval(r->bytes, r->len) : empty;
            if ((rc = tail_put(txn, s->dbi[pass == 0 ? T_RECS : T_EXPIRY], &a->tails[pass],
                               a->ord[j].key, &val)) != 0)
                return rc;
        }
    }
    for (size_t i = 0; i < a->n; i++) {
        const struct rinfo *r = &a->ri[i];
        if (s->opts.tag_kinds != 0 && (s->opts.tag_kinds & (1u << r->kind)) == 0)
            continue; /* not indexed by tag (store_opts.tag_kinds) */
        for (unsigned t = 0; r->pending && t < r->ntags && nt < a->tk_cap; t++) {
            a->tk[nt].len =
                (uint8_t)tagkey(a->tk[nt].key, r->tags[t], r->taglen[t], r->created, r->id);
            nt++;
        }
    }
    if (nt > 1)
        qsort(a->tk, nt, sizeof(*a->tk), tkey_cmp);
    for (size_t j = 0; j < nt; j++) {
        MDB_val key = mval(a->tk[j].key, a->tk[j].len);
        if ((rc = mdb_put(txn, s->dbi[T_TAGS], &key, &empty, 0)) != 0)
            return rc;
    }
    return 0;
}

/* store_put_apply runs both phases for a's items in txn, counting into a->c (set by the caller:
 * this may be a retry after growing the map). */
int
store_put_apply(struct store *s, MDB_txn *txn, struct put_arg *a)
{
    int rc;

    memset(&a->q, 0, sizeof(a->q));
    if ((rc = tail_load(txn, s->dbi[T_RECS], &a->tails[0])) != 0 ||
        (rc = tail_load(txn, s->dbi[T_EXPIRY], &a->tails[1])) != 0)
        return rc;
    for (size_t i = 0; i < a->n; i++) {
        memset(a->ord[i].key, 0, RECKEY_LEN);
        memcpy(a->ord[i].key, a->ri[i].author, 32);
        a->ord[i].idx = (uint32_t)i;
        a->ri[i].pending = false;
    }
    memset(a->idtab, 0, a->idcap * sizeof(*a->idtab));
    qsort(a->ord, a->n, sizeof(*a->ord), bkey_cmp);
    for (size_t pos = 0; pos < a->n; pos++) {
        if ((rc = put_check(s, txn, a, pos)) != 0)
            return rc;
    }
    if ((rc = qcur_switch(s, txn, &a->q, NULL)) != 0)
        return rc;
    return put_insert(s, txn, a);
}

void
store_put_arg_free(struct put_arg *a)
{
    if (a == NULL)
        return;
    free(a->ord);
    free(a->idtab);
    free(a->tk);
    free(a);
}

int
store_put_arg_new(struct rinfo *ri, size_t n, uint64_t now_s, struct put_arg **out)
{
    struct put_arg *a;
    size_t ntags = 0;

    *out = NULL;
    if (n > UINT32_MAX)
        return PULL_ERR_TOO_BIG;
    for (size_t i = 0; i < n; i++)
        ntags += ri[i].ntags;
    if ((a = calloc(1, sizeof(*a))) == NULL)
        return PULL_ERR_NOMEM;
    a->ri = ri;
    a->n = n;
    a->now_s = now_s;
    a->tk_cap = ntags;
    for (a->idcap = 16; a->idcap < 2 * n; a->idcap *= 2)
        ;
    if ((a->ord = malloc(n * sizeof(*a->ord))) == NULL ||
        (a->idtab = malloc(a->idcap * sizeof(*a->idtab))) == NULL ||
        (ntags > 0 && (a->tk = malloc(ntags * sizeof(*a->tk))) == NULL)) {
        store_put_arg_free(a);
        return PULL_ERR_NOMEM;
    }
    *out = a;
    return 0;
}
