/*
 * store_int: what the store's rooms share (internal to lib/store*.c; store.h is the
 * manual, store.c's top comment has the internal error convention and what writes cost).
 *
 * The rooms.
 *   store.c         the floor: errors and small helpers, transactions (store_rbegin,
 *                   store_rend, store_write and its retry on a full map), open and close,
 *                   store_sync and store_trim.
 *   store_put.c     writing a batch of records in one transaction: the quota, loading and
 *                   removing stored records, the two phases of store_put_apply.
 *   store_commit.c  the one write transaction (store_commit, store_put_batch,
 *                   store_put_opened, store_sweep): records, the sweep of expired records,
 *                   key-value writes, then the budget's evictions.
 *   store_read.c    reading: records by id, author, time and tag, prefixes, counts, stats.
 *   store_kv.c      the key-value tables, the peers rows and their statistics.
 *   store_check.c   checking a store that may be damaged (store_check; store_precheck,
 *                   which store_open runs).
 * Everything else stays static in its room.
 */
#ifndef PULL_STORE_INT_H
#define PULL_STORE_INT_H

#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/record.h"
#include "lib/store.h"

enum {
    T_META,
    T_RECS,
    T_IDS,
    T_LATEST,
    T_TAGS,
    T_EXPIRY,
    T_QUOTA,
    T_PEERS,
    T_DYADS,
    T_MAIL,
    T_PEERSTAT,
    T_NAMES,
    T_HANDLES,
    T_TRUST,
    T_MINE,
    T_COUNT
};

extern const char *const store_table_names[T_COUNT]; /* store.c */

#define KIND_SLOTS 8
#define STATS_FIELDS (2 + KIND_SLOTS)
#define RECKEY_LEN (8 + RECORD_ID_BYTES)          /* created || id */
#define LATEST_KEY_LEN (32 + RECORD_SLOT_BYTES)   /* author || slot */
#define LATEST_VAL_LEN (8 + RECORD_ID_BYTES + 16) /* seq || id || expires || created */
#define TAG_KEY_MAX (RECORD_TAG_MAX + 1 + 8 + RECORD_ID_BYTES)
#define SCRATCH_KEEP 4096 /* batch scratch kept between calls */

struct counters {
    uint64_t records;
    uint64_t bytes;
    uint64_t by_kind[KIND_SLOTS];
};

/* What the store indexes of one record. Copies, so it outlives the decoded record. */
struct rinfo {
    const uint8_t *bytes;
    size_t len;
    uint8_t id[RECORD_ID_BYTES];
    uint8_t author[32];
    uint8_t slot[RECORD_SLOT_BYTES];
    uint64_t seq;
    uint64_t created;
    uint64_t expires;
    uint8_t kind;
    uint8_t ntags;
    uint8_t taglen[RECORD_TAGS_MAX];
    char tags[RECORD_TAGS_MAX][RECORD_TAG_MAX];
    /* results */
    size_t item;
    int result;
    bool replaced;
    uint8_t replaced_id[RECORD_ID_BYTES];
    uint64_t replaced_created;
    bool pending;        /* accepted in phase 1, still to be inserted in phase 2 */
    const uint8_t *from; /* the peer that sent it, or NULL */
};

struct store {
    MDB_env *env;
    MDB_dbi dbi[T_COUNT];
    struct store_opts opts;
    uint64_t map_size;
    bool writemap;     /* MDB_WRITEMAP: the map never reaches past reserved */
    uint64_t reserved; /* the file has blocks for [0, reserved) (writemap only) */
    size_t page_size;
    struct counters c;
    MDB_txn *rtxn; /* cached read transaction, reset between uses */
    bool rtxn_busy;
    struct record *dec; /* scratch decoded record */
    struct rinfo *ri;   /* scratch batch */
    size_t ri_cap;
    uint32_t level;   /* store_budget_level */
    uint64_t evicted; /* records evicted for the budget since open */
    /* between store_commit_begin and store_commit_end (the loop's side of a commit that
     * may run on another thread): the map keeps its size and store_trim waits */
    bool committing;
    /* the id of the write transaction store_commit_run is committing, set before the
     * commit starts (0: none): store_author_count_seen compares a snapshot with it */
    _Atomic uint64_t run_txn;
    /* the pages a commit added past the file's last used page, the most of recent ones
     * (halved at every commit that added less): store_grow_ahead keeps twice that free */
    uint64_t grow_pages;
};

static inline MDB_val
mval(const void *p, size_t n)
{
    MDB_val v;

    v.mv_size = n;
    v.mv_data = (void *)(uintptr_t)p;
    return v;
}

static inline void
reckey(uint8_t k[RECKEY_LEN], uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    be64enc(k, created);
    memcpy(k + 8, id, RECORD_ID_BYTES);
}

static inline size_t
tagkey(uint8_t k[TAG_KEY_MAX], const char *tag, size_t taglen, uint64_t created,
       const uint8_t id[RECORD_ID_BYTES])
{
    memcpy(k, tag, taglen);
    k[taglen] = 0;
    be64enc(k + taglen + 1, created);
    memcpy(k + taglen + 9, id, RECORD_ID_BYTES);
    return taglen + 1 + 8 + RECORD_ID_BYTES;
}

/* The last key of a time-ordered table (recs, expiry). Records mostly arrive in time order
 * (gossip of new records, syncs walking time ranges), so most inserts land after the last
 * key: MDB_APPEND then skips the search and fills pages completely instead of splitting
 * them in half, which halves the pages a commit writes. Other keys take the normal path. */
struct tail {
    uint8_t key[RECKEY_LEN];
    bool any; /* the table has a last key */
};

/* Phase 2 sorts the batch by these keys (store_put.c describes the two phases). */
struct bkey {
    uint8_t key[RECKEY_LEN]; /* an author (32 bytes, zero-padded), or created/expires || id */
    uint32_t idx;
};

struct tkey {
    uint8_t len;
    uint8_t key[TAG_KEY_MAX];
};

/* The quota counters of the author being processed in phase 1. */
struct qcur {
    uint8_t author[32];
    uint32_t live;
    uint32_t tombs;
    bool loaded;
    bool dirty;
};

/* A batch of records being written (store_put_apply). */
struct put_arg {
    struct rinfo *ri;
    size_t n;
    uint64_t now_s;
    struct counters c;
    struct qcur q;
    struct bkey *ord; /* n entries */
    uint32_t *idtab;  /* idcap slots: item index + 1, or 0 */
    size_t idcap;
    struct tkey *tk;
    size_t tk_cap;
    struct tail tails[2]; /* recs, expiry */
    struct rinfo old;
};

/* One write transaction: records, then the expiry sweep, then key-value writes. */
struct commit_arg {
    struct put_arg *put;     /* NULL: no records */
    struct sweep_arg *sweep; /* NULL: no sweep */
    const struct store_kv_op *kv;
    size_t nkv;
    uint64_t now_s;
    struct counters c;        /* the counters as this transaction leaves them */
    struct pull_wb evicted;   /* created(8) || id(32) per record evicted for the budget */
    struct pull_wb peers_out; /* key(32) per peers row deleted to make room */
    uint32_t level;           /* the budget level this transaction leaves */
    struct rinfo old;
};

/* ---- store.c ---- */

/* store_xlate turns a raw LMDB/errno code or a PULL_ERR_* into a PULL_ERR_* (store.c's
 * top comment has the convention). */
int store_xlate(int rc);

/* store_rinfo_from fills r with what the store indexes of the opened record (env, rec). */
void store_rinfo_from(struct rinfo *r, const struct envelope *env, const struct record *rec);

/* store_rbegin opens a read transaction (the cached one when it is free), store_rend ends
 * it. store_rbegin returns 0 or a PULL_ERR_* (*txn is then NULL). */
int store_rbegin(struct store *s, MDB_txn **txn);
void store_rend(struct store *s, MDB_txn *txn);

typedef int (*write_fn)(struct store *s, MDB_txn *txn, void *arg);

/* store_write runs fn in a write transaction and commits, growing the map and running fn
 * again when it is full (see store.c). Returns 0 or a PULL_ERR_*. */
int store_write(struct store *s, write_fn fn, void *arg);

/* store_write_once is one try of store_write that leaves any change of the map's size to
 * the caller: it returns PULL_ERR_AGAIN with *need set, and store_make_room (no transaction
 * open in the process) does it. */
enum { STORE_NEED_NONE, STORE_NEED_GROW, STORE_NEED_ADOPT, STORE_NEED_RESERVE };
int store_write_once(struct store *s, write_fn fn, void *arg, int *need);
int store_make_room(struct store *s, int need);

/* store_last_page returns the last page the store's file uses (mdb_env_info's
 * me_last_pgno), 0 if unknown. store_grow_ahead grows the map (no transaction active)
 * until at least room bytes lie beyond that page, so the next commits need not run twice;
 * failing that, they grow the map themselves when it is full. */
uint64_t store_last_page(struct store *s);
void store_grow_ahead(struct store *s, uint64_t room);

/* store_counters_save writes the counters c to meta in txn. */
int store_counters_save(struct store *s, MDB_txn *txn, const struct counters *c);

/* ---- store_put.c ---- */

/* store_keeps says whether the author's records are kept whatever the budget (opts.keep). */
bool store_keeps(const struct store *s, const uint8_t author[32]);

/* store_quota_get and store_quota_set read and write an author's counts of live records and
 * tombstones in txn. */
int store_quota_get(struct store *s, MDB_txn *txn, const uint8_t author[32], uint32_t *live,
                    uint32_t *tombs);
int store_quota_set(struct store *s, MDB_txn *txn, const uint8_t author[32], uint32_t live,
                    uint32_t tombs);

/* store_counters_add counts record r into c (sign > 0) or out of it (never below 0). */
void store_counters_add(struct counters *c, const struct rinfo *r, int sign);

/* store_load_at and store_load_stored fill o with a stored record; store_remove_indexed deletes one
 * from recs, ids, expiry and tags; store_del_tolerant deletes a key that may be missing
 * (store_put.c has the details). */
int store_load_at(struct store *s, MDB_txn *txn, uint64_t created,
                  const uint8_t id[RECORD_ID_BYTES], struct rinfo *o, bool *found, bool *decoded);
int store_load_stored(struct store *s, MDB_txn *txn, const uint8_t id[RECORD_ID_BYTES],
                      struct rinfo *o, bool *found, bool *decoded);
int store_del_tolerant(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen);
int store_remove_indexed(struct store *s, MDB_txn *txn, const struct rinfo *o, bool decoded);

/* store_batch_find returns the item of batch a accepted with this id, or NULL. */
struct rinfo *store_batch_find(struct put_arg *a, const uint8_t id[RECORD_ID_BYTES]);

/* store_put_apply writes a's items in txn, counting into a->c (set by the caller). */
int store_put_apply(struct store *s, MDB_txn *txn, struct put_arg *a);

/* store_put_arg_new makes the batch of the n items ri (the caller keeps ri, which must outlive
 * it); store_put_arg_free frees it (NULL: nothing). */
int store_put_arg_new(struct rinfo *ri, size_t n, uint64_t now_s, struct put_arg **out);
void store_put_arg_free(struct put_arg *a);

/* ---- store_read.c ---- */

/* store_resolve_prefix_in finds the one key of 32 bytes of table `table` that starts with
 * prefix. */
int store_resolve_prefix_in(struct store *s, int table, const struct ident_prefix *prefix,
                            uint8_t id[RECORD_ID_BYTES]);

/* ---- store_kv.c ---- */

/* store_kv_table returns the table index of t, or -1; store_kv_apply applies one key-value write in
 * the commit's transaction; store_peer_note_record counts a record received from peer key. */
int store_kv_table(enum store_table t);
int store_kv_apply(struct store *s, MDB_txn *txn, struct commit_arg *ca,
                   const struct store_kv_op *op);
int store_peer_note_record(struct store *s, MDB_txn *txn, const uint8_t key[32], uint64_t now_s);

/* ---- store_check.c ---- */

/* store_precheck is the part of store_check that store_open runs: the file and its meta
 * pages, so that LMDB never maps a truncated store. */
int store_precheck(const char *dir);

#endif
