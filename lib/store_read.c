/*
 * store_read: reading the records - by id, by author and slot, by time and by tag, id
 * prefixes - and the counts and stats. Every call opens a short read transaction
 * (store_rbegin, store.c) and ends it before returning. store_int.h has the rooms.
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
/* Reading                                                                             */

int
store_get(struct store *s, const uint8_t id[static RECORD_ID_BYTES], struct pull_wb *out)
{
    MDB_txn *txn = NULL;
    MDB_val k = mval(id, RECORD_ID_BYTES), v;
    uint8_t rk[RECKEY_LEN];
    int rc;

    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    if ((rc = mdb_get(txn, s->dbi[T_IDS], &k, &v)) != 0)
        goto out;
    if (v.mv_size != 8) {
        rc = PULL_ERR_STORE;
        goto out;
    }
    reckey(rk, be64dec(v.mv_data), id);
    k = mval(rk, RECKEY_LEN);
    if ((rc = mdb_get(txn, s->dbi[T_RECS], &k, &v)) != 0)
        goto out;
    rc = wb_put(out, v.mv_data, v.mv_size); /* copied before the transaction ends */
out:
    store_rend(s, txn);
    return store_xlate(rc);
}

int
store_has(struct store *s, const uint8_t id[static RECORD_ID_BYTES])
{
    MDB_txn *txn = NULL;
    MDB_val k = mval(id, RECORD_ID_BYTES), v;
    int rc;

    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    rc = mdb_get(txn, s->dbi[T_IDS], &k, &v);
    store_rend(s, txn);
    return store_xlate(rc);
}

int
store_latest(struct store *s, const uint8_t author[static 32],
             const uint8_t slot[static RECORD_SLOT_BYTES], uint64_t *seq,
             uint8_t id[RECORD_ID_BYTES], uint64_t *expires)
{
    MDB_txn *txn = NULL;
    uint8_t lk[LATEST_KEY_LEN];
    MDB_val k, v;
    int rc;

    memcpy(lk, author, 32);
    memcpy(lk + 32, slot, RECORD_SLOT_BYTES);
    k = mval(lk, LATEST_KEY_LEN);
    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    if ((rc = mdb_get(txn, s->dbi[T_LATEST], &k, &v)) != 0)
        goto out;
    if (v.mv_size != LATEST_VAL_LEN) {
        rc = PULL_ERR_STORE;
        goto out;
    }
    if (seq != NULL)
        *seq = be64dec(v.mv_data);
    if (id != NULL)
        memcpy(id, (const uint8_t *)v.mv_data + 8, RECORD_ID_BYTES);
    if (expires != NULL)
        *expires = be64dec((const uint8_t *)v.mv_data + 40);
out:
    store_rend(s, txn);
    return store_xlate(rc);
}

uint64_t
store_count(const struct store *s)
{
    return s->c.records;
}

int
store_author_count_seen(struct store *s, const uint8_t author[static 32], uint32_t *live,
                        uint32_t *tombstones, bool *seen)
{
    MDB_txn *txn = NULL;
    uint32_t l = 0, t = 0;
    uint64_t run;
    int rc;

    if (seen != NULL)
        *seen = false;
    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    rc = store_quota_get(s, txn, author, &l, &t);
    /* the commit's id is set before it can be seen: a snapshot at least that new has it */
    run = atomic_load(&s->run_txn);
    if (seen != NULL)
        *seen = run != 0 && (uint64_t)mdb_txn_id(txn) >= run;
    store_rend(s, txn);
    if (live != NULL)
        *live = l;
    if (tombstones != NULL)
        *tombstones = t;
    return store_xlate(rc);
}

int
store_author_count(struct store *s, const uint8_t author[static 32], uint32_t *live,
                   uint32_t *tombstones)
{
    return store_author_count_seen(s, author, live, tombstones, NULL);
}

static bool
prefix_match(const uint8_t *key, const uint8_t *pb, unsigned nbits)
{
    unsigned full = nbits / 8, rest = nbits % 8;

    if (memcmp(key, pb, full) != 0)
        return false;
    if (rest != 0) {
        uint8_t mask = (uint8_t)(0xff << (8 - rest));
        if ((key[full] & mask) != (pb[full] & mask))
            return false;
    }
    return true;
}

int
store_prefix_each(struct store *s, const struct ident_prefix *prefix,
                  int (*fn)(void *ctx, const uint8_t id[RECORD_ID_BYTES]), void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint8_t seek[RECORD_ID_BYTES] = {0}, id[RECORD_ID_BYTES];
    MDB_val k, v;
    unsigned nbits;
    int rc;

    if (prefix == NULL || prefix->nbits > 8 * RECORD_ID_BYTES)
        return PULL_ERR_INVAL;
    nbits = prefix->nbits;
    memcpy(seek, prefix->bytes, (nbits + 7) / 8);
    if (nbits % 8 != 0)
        seek[nbits / 8] &= (uint8_t)(0xff << (8 - nbits % 8));
    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi[T_IDS], &cur)) != 0)
        goto out;
    k = mval(seek, RECORD_ID_BYTES);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int r;
        if (k.mv_size != RECORD_ID_BYTES || !prefix_match(k.mv_data, seek, nbits))
            break;
        memcpy(id, k.mv_data, RECORD_ID_BYTES); /* the txn stays open: copy, then call */
        if ((r = fn(ctx, id)) != 0) {
            mdb_cursor_close(cur);
            store_rend(s, txn);
            return r;
        }
    }
    if (rc == MDB_NOTFOUND)
        rc = 0;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_rend(s, txn);
    return store_xlate(rc);
}

/* The one key of 32 bytes of table `table` that starts with prefix. */
int
store_resolve_prefix_in(struct store *s, int table, const struct ident_prefix *prefix,
                        uint8_t id[RECORD_ID_BYTES])
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint8_t seek[RECORD_ID_BYTES] = {0};
    MDB_val k, v;
    unsigned nbits;
    int rc;

    memset(id, 0, RECORD_ID_BYTES);
    if (prefix == NULL || prefix->nbits > 8 * RECORD_ID_BYTES)
        return PULL_ERR_INVAL;
    nbits = prefix->nbits;
    memcpy(seek, prefix->bytes, (nbits + 7) / 8);
    if (nbits % 8 != 0)
        seek[nbits / 8] &= (uint8_t)(0xff << (8 - nbits % 8));
    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi[table], &cur)) != 0)
        goto out;
    k = mval(seek, RECORD_ID_BYTES);
    if ((rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) != 0)
        goto out;
    if (k.mv_size != RECORD_ID_BYTES || !prefix_match(k.mv_data, seek, nbits)) {
        rc = MDB_NOTFOUND;
        goto out;
    }
    memcpy(id, k.mv_data, RECORD_ID_BYTES);
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    if (rc == 0 && k.mv_size == RECORD_ID_BYTES && prefix_match(k.mv_data, seek, nbits))
        rc = PULL_ERR_AMBIGUOUS;
    else if (rc == 0 || rc == MDB_NOTFOUND)
        rc = 0;
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_rend(s, txn);
    if (rc != 0)
        memset(id, 0, RECORD_ID_BYTES);
    return store_xlate(rc);
}

int
store_resolve_prefix(struct store *s, const struct ident_prefix *prefix,
                     uint8_t id[RECORD_ID_BYTES])
{
    return store_resolve_prefix_in(s, T_IDS, prefix, id);
}

/* Walks index keys starting with prefix (plen bytes; seek is where to start), each of
 * total length klen, whose last 40 bytes are created || id, and hands the record to fn. */
static int
iter_index(struct store *s, int table, const uint8_t *seek, size_t seeklen, size_t plen,
           size_t klen, store_rec_fn fn, void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k = mval(seek, seeklen), v, rk, rv;
    int rc, stop = 0, op = MDB_SET_RANGE;

    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi[table], &cur)) != 0)
        goto out;
    for (;; op = MDB_NEXT) {
        const uint8_t *kp;
        if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0) {
            if (rc == MDB_NOTFOUND)
                rc = 0;
            break;
        }
        kp = k.mv_data;
        if (k.mv_size < plen || memcmp(kp, seek, plen) != 0)
            break;
        if (k.mv_size != klen)
            continue; /* another tag sharing the prefix can't happen (NUL ends tags) */
        rk = mval(kp + klen - RECKEY_LEN, RECKEY_LEN);
        rc = mdb_get(txn, s->dbi[T_RECS], &rk, &rv);
        if (rc == MDB_NOTFOUND)
            continue; /* dangling index entry: skip */
        if (rc != 0)
            break;
        if ((stop = fn(ctx, kp + klen - RECORD_ID_BYTES, rv.mv_data, rv.mv_size)) != 0)
            break;
    }
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_rend(s, txn);
    rc = store_xlate(rc);
    return rc != 0 ? rc : stop;
}

int
store_iter_time(struct store *s, uint64_t since, store_rec_fn fn, void *ctx)
{
    struct store_cursor c;

    memset(&c, 0, sizeof(c)); /* not started: from the first key at or after since */
    be64enc(c.key, since);
    return store_iter_resume(s, &c, SIZE_MAX, fn, ctx);
}

_Static_assert(STORE_CURSOR_KEY == RECKEY_LEN, "a cursor holds one records key");

int
store_iter_resume(struct store *s, struct store_cursor *cur, size_t max, store_rec_fn fn, void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *c = NULL;
    MDB_val k = mval(cur->key, RECKEY_LEN), v;
    size_t seen = 0;
    int rc, stop = 0, op = MDB_SET_RANGE;

    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi[T_RECS], &c)) != 0)
        goto out;
    for (;; op = MDB_NEXT) {
        if ((rc = mdb_cursor_get(c, &k, &v, op)) != 0) {
            if (rc == MDB_NOTFOUND)
                rc = 0;
            break;
        }
        if (k.mv_size != RECKEY_LEN)
            continue;
        /* SET_RANGE lands on the cursor's own key if that record is still there */
        if (cur->started && memcmp(k.mv_data, cur->key, RECKEY_LEN) <= 0)
            continue;
        if (seen == max) {
            stop = 1;
            break;
        }
        memcpy(cur->key, k.mv_data, RECKEY_LEN);
        cur->started = true;
        seen++;
        if ((stop = fn(ctx, (const uint8_t *)k.mv_data + 8, v.mv_data, v.mv_size)) != 0)
            break;
    }
out:
    if (c != NULL)
        mdb_cursor_close(c);
    store_rend(s, txn);
    rc = store_xlate(rc);
    return rc != 0 ? rc : stop;
}

int
store_iter_tag(struct store *s, const char *tag, store_rec_fn fn, void *ctx)
{
    uint8_t seek[RECORD_TAG_MAX + 1];
    size_t tl;

    if (tag == NULL || (tl = strnlen(tag, RECORD_TAG_MAX + 1)) == 0)
        return PULL_ERR_INVAL;
    if (tl > RECORD_TAG_MAX)
        return 0; /* no stored record can carry it */
    memcpy(seek, tag, tl);
    seek[tl] = 0;
    return iter_index(s, T_TAGS, seek, tl + 1, tl + 1, tl + 1 + RECKEY_LEN, fn, ctx);
}

struct akey {
    uint64_t created;
    uint8_t id[RECORD_ID_BYTES];
};

static int
akey_cmp(const void *pa, const void *pb)
{
    const struct akey *a = pa, *b = pb;

    if (a->created != b->created)
        return a->created < b->created ? -1 : 1;
    return memcmp(a->id, b->id, RECORD_ID_BYTES);
}

/* The author's records are found through latest (author || slot, at most max_per_author
 * live records and as many tombstones), then sorted by time. */
int
store_iter_author(struct store *s, const uint8_t author[static 32], store_rec_fn fn, void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k = mval(author, 32), v, rk, rv;
    struct akey *keys = NULL;
    size_t n = 0, cap = 0;
    uint8_t rkb[RECKEY_LEN];
    int rc, stop = 0, op = MDB_SET_RANGE;

    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi[T_LATEST], &cur)) != 0)
        goto out;
    for (;; op = MDB_NEXT) {
        if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0) {
            if (rc == MDB_NOTFOUND)
                rc = 0;
            break;
        }
        if (k.mv_size != LATEST_KEY_LEN || memcmp(k.mv_data, author, 32) != 0)
            break;
        if (v.mv_size != LATEST_VAL_LEN)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            struct akey *p = realloc(keys, nc * sizeof(*p));
            if (p == NULL) {
                rc = PULL_ERR_NOMEM;
                goto out;
            }
            keys = p;
            cap = nc;
        }
        keys[n].created = be64dec((const uint8_t *)v.mv_data + 48);
        memcpy(keys[n].id, (const uint8_t *)v.mv_data + 8, RECORD_ID_BYTES);
        n++;
    }
    if (rc != 0)
        goto out;
    if (n > 1)
        qsort(keys, n, sizeof(*keys), akey_cmp);
    for (size_t i = 0; i < n; i++) {
        reckey(rkb, keys[i].created, keys[i].id);
        rk = mval(rkb, RECKEY_LEN);
        rc = mdb_get(txn, s->dbi[T_RECS], &rk, &rv);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc != 0 || (stop = fn(ctx, keys[i].id, rv.mv_data, rv.mv_size)) != 0)
            break;
    }
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_rend(s, txn);
    free(keys);
    rc = store_xlate(rc);
    return rc != 0 ? rc : stop;
}

int
store_iter_ids(struct store *s, store_key_fn fn, void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc, stop = 0, op = MDB_FIRST;

    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi[T_IDS], &cur)) != 0)
        goto out;
    for (;; op = MDB_NEXT) {
        if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0) {
            if (rc == MDB_NOTFOUND)
                rc = 0;
            break;
        }
        if (k.mv_size != RECORD_ID_BYTES || v.mv_size != 8)
            continue;
        if ((stop = fn(ctx, be64dec(v.mv_data), k.mv_data)) != 0)
            break;
    }
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_rend(s, txn);
    rc = store_xlate(rc);
    return rc != 0 ? rc : stop;
}

int
store_iter_keys(struct store *s, uint64_t since, store_key_fn fn, void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    uint8_t seek[RECKEY_LEN] = {0};
    MDB_val k = mval(seek, RECKEY_LEN), v;
    int rc, stop = 0, op = MDB_SET_RANGE;

    be64enc(seek, since);
    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi[T_RECS], &cur)) != 0)
        goto out;
    for (;; op = MDB_NEXT) {
        /* MDB_GET_CURRENT-free walk: the value is only a pointer, nothing is copied */
        if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0) {
            if (rc == MDB_NOTFOUND)
                rc = 0;
            break;
        }
        if (k.mv_size != RECKEY_LEN)
            continue;
        if ((stop = fn(ctx, be64dec(k.mv_data), (const uint8_t *)k.mv_data + 8)) != 0)
            break;
    }
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_rend(s, txn);
    rc = store_xlate(rc);
    return rc != 0 ? rc : stop;
}

int
store_stats(struct store *s, struct store_stats *st)
{
    MDB_envinfo info;
    MDB_txn *txn = NULL;
    MDB_stat ms;
    int rc;

    memset(st, 0, sizeof(*st));
    if ((rc = mdb_env_info(s->env, &info)) != 0 || (rc = mdb_env_stat(s->env, &ms)) != 0)
        return store_xlate(rc);
    st->records = s->c.records;
    st->bytes = s->c.bytes;
    memcpy(st->by_kind, s->c.by_kind, sizeof(st->by_kind));
    st->map_size = info.me_mapsize;
    st->map_used = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
    st->map_max = s->opts.map_max;
    st->writemap = s->writemap;
    st->max_bytes = s->opts.max_bytes;
    st->level = s->level;
    st->evicted = s->evicted;
    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    if ((rc = mdb_stat(txn, s->dbi[T_PEERS], &ms)) == 0)
        st->peers = ms.ms_entries;
    store_rend(s, txn);
    return store_xlate(rc);
}

uint32_t
store_budget_level(const struct store *s)
{
    return s->level;
}
