/*
 * store_kv: the key-value tables (peers, dyads, mail, names, handles, trust, mine), the
 * peers rows' statistics and the eviction of peers rows past max_peers. Writes are applied
 * in the commit's transaction (store_kv_apply, called by store_commit.c). store_int.h has the
 * rooms.
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
/* Key-value tables                                                                    */

int
store_kv_table(enum store_table t)
{
    switch (t) {
    case STORE_PEERS:
        return T_PEERS;
    case STORE_DYADS:
        return T_DYADS;
    case STORE_MAIL:
        return T_MAIL;
    case STORE_NAMES:
        return T_NAMES;
    case STORE_HANDLES:
        return T_HANDLES;
    case STORE_TRUST:
        return T_TRUST;
    case STORE_MINE:
        return T_MINE;
    }
    return -1;
}

/* ---- peers rows and their statistics ---- */

int
store_peer_stats_decode(const uint8_t *val, size_t len, struct store_peer_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (val == NULL || len < STORE_PEER_STATS_LEN || val[0] < 1)
        return PULL_ERR_MALFORMED;
    st->first_seen_s = be64dec(val + 1);
    st->last_seen_s = be64dec(val + 9);
    st->seen = be32dec(val + 17);
    st->sessions = be32dec(val + 21);
    st->connected_s = be64dec(val + 25);
    st->records = be32dec(val + 33);
    st->last_record_s = be64dec(val + 37);
    return 0;
}

void
store_peer_stats_encode(const struct store_peer_stats *st, uint8_t out[static STORE_PEER_STATS_LEN])
{
    out[0] = STORE_PEER_STATS_VERSION;
    be64enc(out + 1, st->first_seen_s);
    be64enc(out + 9, st->last_seen_s);
    be32enc(out + 17, st->seen);
    be32enc(out + 21, st->sessions);
    be64enc(out + 25, st->connected_s);
    be32enc(out + 33, st->records);
    be64enc(out + 37, st->last_record_s);
}

static uint32_t
sat_add32(uint32_t a, uint32_t b)
{
    return a > UINT32_MAX - b ? UINT32_MAX : a + b;
}

void
store_peer_stats_add(struct store_peer_stats *st, const struct store_peer_stats *n)
{
    if (n->first_seen_s != 0 && (st->first_seen_s == 0 || n->first_seen_s < st->first_seen_s))
        st->first_seen_s = n->first_seen_s;
    if (n->last_seen_s > st->last_seen_s)
        st->last_seen_s = n->last_seen_s;
    if (n->last_record_s > st->last_record_s)
        st->last_record_s = n->last_record_s;
    st->seen = sat_add32(st->seen, n->seen);
    st->sessions = sat_add32(st->sessions, n->sessions);
    st->connected_s = st->connected_s > UINT64_MAX - n->connected_s
                          ? UINT64_MAX
                          : st->connected_s + n->connected_s;
    st->records = sat_add32(st->records, n->records);
}

static uint32_t
bits64(uint64_t x)
{
    uint32_t n = 0;

    for (; x != 0; x >>= 1)
        n++;
    return n;
}

uint32_t
store_peer_value(const struct store_peer_stats *st)
{
    uint32_t sightings = sat_add32(st->seen, st->sessions);

    return (sightings > 64 ? 64 : sightings) + bits64(st->records) + bits64(st->connected_s / 60);
}

/* peer_stats_get reads key's statistics (zero if none or unreadable). */
static int
peer_stats_get(struct store *s, MDB_txn *txn, const uint8_t key[32], struct store_peer_stats *st)
{
    MDB_val k = mval(key, 32), v;
    int rc = mdb_get(txn, s->dbi[T_PEERSTAT], &k, &v);

    memset(st, 0, sizeof(*st));
    if (rc == 0)
        (void)store_peer_stats_decode(v.mv_data, v.mv_size, st);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int
peer_stats_put(struct store *s, MDB_txn *txn, const uint8_t key[32],
               const struct store_peer_stats *st)
{
    uint8_t b[STORE_PEER_STATS_LEN];
    MDB_val k = mval(key, 32), v = mval(b, sizeof(b));

    store_peer_stats_encode(st, b);
    return mdb_put(txn, s->dbi[T_PEERSTAT], &k, &v, 0);
}

/* peer_evict_one deletes the least valuable peers row (and its statistics) and lists its
 * key in ca->peers_out. One pass over the table - at most max_peers rows, and only when a
 * new key arrives in a full table. */
static int
peer_evict_one(struct store *s, MDB_txn *txn, struct commit_arg *ca)
{
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint8_t worst[32];
    uint32_t wv = UINT32_MAX;
    uint64_t wseen = UINT64_MAX;
    bool any = false;
    int rc, op = MDB_FIRST;

    if ((rc = mdb_cursor_open(txn, s->dbi[T_PEERS], &cur)) != 0)
        return rc;
    for (;; op = MDB_NEXT) {
        struct store_peer_stats st;
        uint32_t val;
        if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0) {
            if (rc == MDB_NOTFOUND)
                rc = 0;
            break;
        }
        if (k.mv_size != 32)
            continue;
        if ((rc = peer_stats_get(s, txn, k.mv_data, &st)) != 0)
            break;
        val = store_peer_value(&st);
        if (!any || val < wv || (val == wv && st.last_seen_s < wseen)) {
            memcpy(worst, k.mv_data, 32);
            wv = val;
            wseen = st.last_seen_s;
            any = true;
        }
    }
    mdb_cursor_close(cur);
    if (rc != 0 || !any)
        return rc;
    if ((rc = store_del_tolerant(txn, s->dbi[T_PEERS], worst, 32)) != 0 ||
        (rc = store_del_tolerant(txn, s->dbi[T_PEERSTAT], worst, 32)) != 0)
        return rc;
    return wb_put(&ca->peers_out, worst, 32);
}

/* peer_write stores the engine's row, making room first if the key is new, and counts the
 * write in the row's statistics. */
static int
peer_write(struct store *s, MDB_txn *txn, struct commit_arg *ca, const struct store_kv_op *op)
{
    struct store_peer_stats st, note;
    MDB_val k = mval(op->key, 32), v;
    uint64_t now = ca->now_s != 0 ? ca->now_s : (uint64_t)time(NULL);
    MDB_stat ms;
    int rc = mdb_get(txn, s->dbi[T_PEERS], &k, &v);

    if (rc == MDB_NOTFOUND) {
        if ((rc = mdb_stat(txn, s->dbi[T_PEERS], &ms)) != 0)
            return rc;
        for (size_t n = ms.ms_entries; n >= s->opts.max_peers; n--) {
            if ((rc = peer_evict_one(s, txn, ca)) != 0)
                return rc;
        }
    } else if (rc != 0) {
        return rc;
    }
    v = mval(op->val != NULL ? op->val : "", op->len);
    if ((rc = mdb_put(txn, s->dbi[T_PEERS], &k, &v, 0)) != 0 ||
        (rc = peer_stats_get(s, txn, op->key, &st)) != 0)
        return rc;
    memset(&note, 0, sizeof(note));
    note.first_seen_s = note.last_seen_s = now;
    note.seen = 1;
    store_peer_stats_add(&st, &note);
    return peer_stats_put(s, txn, op->key, &st);
}

/* peer_note adds n to key's statistics, if key has a row: rows are the engine's to make. */
static int
peer_note(struct store *s, MDB_txn *txn, const uint8_t key[32], const struct store_peer_stats *n)
{
    struct store_peer_stats st;
    MDB_val k = mval(key, 32), v;
    int rc = mdb_get(txn, s->dbi[T_PEERS], &k, &v);

    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0 || (rc = peer_stats_get(s, txn, key, &st)) != 0)
        return rc;
    store_peer_stats_add(&st, n);
    return peer_stats_put(s, txn, key, &st);
}

int
store_peer_note_record(struct store *s, MDB_txn *txn, const uint8_t key[32], uint64_t now_s)
{
    struct store_peer_stats n;

    memset(&n, 0, sizeof(n));
    n.records = 1;
    n.last_record_s = now_s;
    return peer_note(s, txn, key, &n);
}

int
store_kv_apply(struct store *s, MDB_txn *txn, struct commit_arg *ca, const struct store_kv_op *op)
{
    MDB_val k = mval(op->key, 32), v = mval(op->val != NULL ? op->val : "", op->len);
    int table = store_kv_table(op->table), rc;

    if (table == T_PEERS) {
        if (op->note != NULL)
            return peer_note(s, txn, op->key, op->note);
        if (!op->del)
            return peer_write(s, txn, ca, op);
        if ((rc = store_del_tolerant(txn, s->dbi[T_PEERSTAT], op->key, 32)) != 0)
            return rc;
    }
    if (!op->del)
        return mdb_put(txn, s->dbi[table], &k, &v, 0);
    rc = mdb_del(txn, s->dbi[table], &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int
store_kv_put(struct store *s, enum store_table t, const uint8_t key[static 32], const void *val,
             size_t len)
{
    struct store_kv_op op = {.table = t, .val = val, .len = len, .del = false};
    struct store_commit c;

    memcpy(op.key, key, 32);
    memset(&c, 0, sizeof(c));
    c.kv = &op;
    c.nkv = 1;
    return store_commit(s, &c, 0);
}

int
store_kv_del(struct store *s, enum store_table t, const uint8_t key[static 32])
{
    struct store_kv_op op = {.table = t, .del = true};
    struct store_commit c;
    int rc;

    if (store_kv_table(t) < 0)
        return PULL_ERR_INVAL;
    if ((rc = store_kv_get(s, t, key, NULL)) != 0)
        return rc;
    memcpy(op.key, key, 32);
    memset(&c, 0, sizeof(c));
    c.kv = &op;
    c.nkv = 1;
    return store_commit(s, &c, 0);
}

int
store_kv_get(struct store *s, enum store_table t, const uint8_t key[static 32], struct pull_wb *out)
{
    MDB_txn *txn = NULL;
    MDB_val k = mval(key, 32), v;
    int table = store_kv_table(t), rc;

    if (table < 0)
        return PULL_ERR_INVAL;
    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    if ((rc = mdb_get(txn, s->dbi[table], &k, &v)) == 0 && out != NULL)
        rc = wb_put(out, v.mv_data, v.mv_size);
    store_rend(s, txn);
    return store_xlate(rc);
}

int
store_kv_resolve_prefix(struct store *s, enum store_table t, const struct ident_prefix *prefix,
                        uint8_t key[32])
{
    int table = store_kv_table(t);

    if (table < 0)
        return PULL_ERR_INVAL;
    return store_resolve_prefix_in(s, table, prefix, key);
}

int
store_kv_iter(struct store *s, enum store_table t, store_kv_fn fn, void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int table = store_kv_table(t), rc, stop = 0, op = MDB_FIRST;

    if (table < 0)
        return PULL_ERR_INVAL;
    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi[table], &cur)) != 0)
        goto out;
    for (;; op = MDB_NEXT) {
        if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0) {
            if (rc == MDB_NOTFOUND)
                rc = 0;
            break;
        }
        if (k.mv_size != 32)
            continue;
        if ((stop = fn(ctx, k.mv_data, v.mv_data, v.mv_size)) != 0)
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
store_peers_iter(struct store *s, store_peer_fn fn, void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc, stop = 0, op = MDB_FIRST;

    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    if ((rc = mdb_cursor_open(txn, s->dbi[T_PEERS], &cur)) != 0)
        goto out;
    for (;; op = MDB_NEXT) {
        struct store_peer_stats st;
        if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0) {
            if (rc == MDB_NOTFOUND)
                rc = 0;
            break;
        }
        if (k.mv_size != 32)
            continue;
        if ((rc = peer_stats_get(s, txn, k.mv_data, &st)) != 0)
            break;
        if ((stop = fn(ctx, k.mv_data, v.mv_data, v.mv_size, &st)) != 0)
            break;
    }
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    store_rend(s, txn);
    rc = store_xlate(rc);
    return rc != 0 ? rc : stop;
}
