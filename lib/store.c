/*
 * store: LMDB store of records and their indexes. The layout and the invariants are
 * described in store.h.
 *
 * Internal error convention: helpers that touch LMDB return either a raw LMDB/errno code
 * (MDB_* codes are below -30000, errno values positive) or a PULL_ERR_* code (-1..-99);
 * the two ranges don't overlap, and store_xlate() turns any of them into a PULL_ERR_* at
 * the API boundary. This keeps MDB_MAP_FULL visible to the retry loop in store_write().
 *
 * Durability, measured (pull-bench ingest, 20,000 records in time order, ext4 on the
 * 2-core virtual machine of development; ratio = ingest rate / raw Ed25519 verify rate,
 * interleaved on the same run):
 *   - A commit costs little CPU but waits for the disk: each flush (fdatasync, or the
 *     O_DSYNC write of the meta page) takes 3-15 ms there. STORE_SYNC_FULL does two per
 *     commit, STORE_SYNC_DATA (MDB_NOMETASYNC) one, MDB_NOSYNC + mdb_env_sync() one.
 *   - Batches of 1024: FULL 0.76, DATA 0.81. Batches of 4096: FULL 0.88-0.90, DATA
 *     0.88-0.89 - with big batches the flushes no longer matter, so the default stays
 *     STORE_SYNC_FULL and the writer should batch generously (pulld: one transaction per
 *     loop turn, letting a turn gather a few thousand records under bulk ingest).
 *   - MDB_NOSYNC + mdb_env_sync() per batch costs what DATA costs but is worse: the meta
 *     page may reach the disk before the data pages it points to, so a power loss between
 *     the two can corrupt the store. It is offered only as STORE_SYNC_NONE + store_sync().
 * What the writes cost besides the flush is the pages a commit copies and writes: ids and
 * latest are keyed by random bytes, so a batch dirties about one page of each per record
 * once the store is large (the commit writes ~10x the envelope bytes at 20,000-100,000
 * records); recs, expiry and tags are time-ordered, so they mostly append. That is why
 * the batch is applied in two phases (see put_apply) and why records should arrive in time
 * order where the protocol allows (ingest in random order: ratio 0.82 instead of 0.89).
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

static const char *const table_names[T_COUNT] = {
    "meta",  "recs",  "ids",   "latest",   "tags",  "expiry",  "quota", "peers",
    "dyads", "mail",  "peerstat", "names", "handles", "trust", "mine",
};

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
    size_t page_size;
    struct counters c;
    MDB_txn *rtxn; /* cached read transaction, reset between uses */
    bool rtxn_busy;
    struct record *dec; /* scratch decoded record */
    struct rinfo *ri;   /* scratch batch */
    size_t ri_cap;
    uint32_t level;   /* store_budget_level */
    uint64_t evicted; /* records evicted for the budget since open */
};

/* ---------------------------------------------------------------------------------- */
/* Errors and small helpers                                                            */

static int
store_xlate(int rc)
{
    if (rc == 0)
        return 0;
    if (rc < 0 && rc > -100)
        return rc; /* already a PULL_ERR_* */
    switch (rc) {
    case MDB_NOTFOUND:
        return PULL_ERR_NOT_FOUND;
    case MDB_MAP_FULL:
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return PULL_ERR_STORE_FULL;
    case ENOMEM:
        return PULL_ERR_NOMEM;
    case EIO:
    case EACCES:
    case EPERM:
    case EROFS:
    case ENOENT:
    case ENOTDIR:
        return PULL_ERR_IO;
    case MDB_READERS_FULL:
    case EAGAIN:
        return PULL_ERR_AGAIN;
    case MDB_VERSION_MISMATCH:
        return PULL_ERR_SCHEMA;
    default:
        return PULL_ERR_STORE;
    }
}

static inline MDB_val
mval(const void *p, size_t n)
{
    MDB_val v;

    v.mv_size = n;
    v.mv_data = (void *)(uintptr_t)p;
    return v;
}

static void
reckey(uint8_t k[RECKEY_LEN], uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    be64enc(k, created);
    memcpy(k + 8, id, RECORD_ID_BYTES);
}

static size_t
tagkey(uint8_t k[TAG_KEY_MAX], const char *tag, size_t taglen, uint64_t created,
       const uint8_t id[RECORD_ID_BYTES])
{
    memcpy(k, tag, taglen);
    k[taglen] = 0;
    be64enc(k + taglen + 1, created);
    memcpy(k + taglen + 9, id, RECORD_ID_BYTES);
    return taglen + 1 + 8 + RECORD_ID_BYTES;
}

static void
rinfo_from(struct rinfo *r, const struct envelope *env, const struct record *rec)
{
    r->bytes = env->bytes;
    r->len = env->len;
    memcpy(r->id, env->id, RECORD_ID_BYTES);
    memcpy(r->author, rec->author, 32);
    memcpy(r->slot, rec->slot, RECORD_SLOT_BYTES);
    r->seq = rec->seq;
    r->created = rec->created;
    r->expires = rec->expires;
    r->kind = rec->kind;
    r->ntags = rec->ntags <= RECORD_TAGS_MAX ? rec->ntags : RECORD_TAGS_MAX;
    for (unsigned i = 0; i < r->ntags; i++) {
        size_t tl = strnlen(rec->tags[i], RECORD_TAG_MAX);
        memcpy(r->tags[i], rec->tags[i], tl);
        r->taglen[i] = (uint8_t)tl;
    }
    r->result = 0;
    r->replaced = false;
    r->from = NULL;
}

/* ---------------------------------------------------------------------------------- */
/* Transactions                                                                        */

static int
store_refresh_mapsize(struct store *s)
{
    MDB_envinfo info;
    int rc = mdb_env_info(s->env, &info);

    if (rc == 0)
        s->map_size = info.me_mapsize;
    return rc;
}

static void
store_drop_rtxn(struct store *s)
{
    if (s->rtxn != NULL && !s->rtxn_busy) {
        mdb_txn_abort(s->rtxn);
        s->rtxn = NULL;
    }
}

/* Another process grew the map: adopt its size. Needs no transaction active here. */
static int
store_adopt_mapsize(struct store *s)
{
    int rc;

    if (s->rtxn_busy)
        return PULL_ERR_AGAIN;
    store_drop_rtxn(s);
    if ((rc = mdb_env_set_mapsize(s->env, 0)) != 0)
        return rc;
    return store_refresh_mapsize(s);
}

static int
store_rbegin(struct store *s, MDB_txn **txn)
{
    int rc;

    *txn = NULL;
    if (s->rtxn != NULL && !s->rtxn_busy) {
        if (mdb_txn_renew(s->rtxn) == 0) {
            s->rtxn_busy = true;
            *txn = s->rtxn;
            return 0;
        }
        mdb_txn_abort(s->rtxn);
        s->rtxn = NULL;
    }
    for (int tries = 0;; tries++) {
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
        if (rc == MDB_MAP_RESIZED && tries < 3) {
            if ((rc = store_adopt_mapsize(s)) != 0)
                return store_xlate(rc);
            continue;
        }
        break;
    }
    if (rc != 0) {
        *txn = NULL;
        return store_xlate(rc);
    }
    if (s->rtxn == NULL) {
        s->rtxn = *txn;
        s->rtxn_busy = true;
    }
    return 0;
}

static void
store_rend(struct store *s, MDB_txn *txn)
{
    if (txn == NULL)
        return;
    if (txn == s->rtxn) {
        mdb_txn_reset(txn);
        s->rtxn_busy = false;
    } else {
        mdb_txn_abort(txn);
    }
}

/* Doubles the map (up to map_max). Called with no transaction active. */
static int
store_grow(struct store *s)
{
    uint64_t next;
    int rc;

    if (s->rtxn_busy)
        return PULL_ERR_STORE_FULL; /* can't resize under a reader; refuse the write */
    if (s->map_size >= s->opts.map_max)
        return PULL_ERR_STORE_FULL;
    next = s->map_size > s->opts.map_max / 2 ? s->opts.map_max : s->map_size * 2;
    store_drop_rtxn(s);
    if ((rc = mdb_env_set_mapsize(s->env, (size_t)next)) != 0)
        return store_xlate(rc);
    if ((rc = store_refresh_mapsize(s)) != 0)
        return store_xlate(rc);
    log_info("store: map grown to %llu KiB", (unsigned long long)(s->map_size >> 10));
    return 0;
}

/* LMDB reports a short write as EIO, and a full disk often shows up as a short write
 * (writev stores what fits). So a failed write is taken for a full disk when the file
 * system has little room left or the file is at its size limit (RLIMIT_FSIZE). */
#define STORE_LOW_SPACE (32ull << 20)

static int
store_write_error(struct store *s, int rc)
{
    struct statvfs vfs;
    struct stat st;
    struct rlimit lim;
    int fd;

    if (rc == ENOSPC || rc == EDQUOT || rc == EFBIG)
        return PULL_ERR_STORE_FULL;
    if (rc != EIO || mdb_env_get_fd(s->env, &fd) != 0)
        return store_xlate(rc);
    if (fstatvfs(fd, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < STORE_LOW_SPACE)
        return PULL_ERR_STORE_FULL;
    if (fstat(fd, &st) == 0 && getrlimit(RLIMIT_FSIZE, &lim) == 0 &&
        lim.rlim_cur != RLIM_INFINITY && (uint64_t)st.st_size + STORE_LOW_SPACE > lim.rlim_cur)
        return PULL_ERR_STORE_FULL;
    return PULL_ERR_IO;
}

typedef int (*write_fn)(struct store *s, MDB_txn *txn, void *arg);

/* store_write runs fn in a write transaction and commits. When the map is full, it aborts,
 * grows the map and runs fn again from the start: fn must keep its effects in the
 * transaction and in arg (which it resets at its start), never in s. */
static int
store_write(struct store *s, write_fn fn, void *arg)
{
    for (int resized = 0;;) {
        MDB_txn *txn = NULL;
        int rc = mdb_txn_begin(s->env, NULL, 0, &txn);

        if (rc == MDB_MAP_RESIZED && resized++ < 3) {
            if ((rc = store_adopt_mapsize(s)) != 0)
                return store_xlate(rc);
            continue;
        }
        if (rc != 0)
            return store_xlate(rc);
        rc = fn(s, txn, arg);
        if (rc == 0)
            rc = mdb_txn_commit(txn); /* frees txn, also on failure */
        else
            mdb_txn_abort(txn);
        if (rc == MDB_MAP_FULL) {
            if ((rc = store_grow(s)) != 0)
                return rc;
            continue;
        }
        if (rc != 0 && !(rc < 0 && rc > -100)) {
            log_warn("store: write failed: %s", mdb_strerror(rc));
            return store_write_error(s, rc);
        }
        return store_xlate(rc);
    }
}

/* ---------------------------------------------------------------------------------- */
/* Open and close                                                                      */

void
store_opts_init(struct store_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->map_size = STORE_MAP_DEFAULT;
    o->map_max = STORE_MAP_MAX_DEFAULT;
    o->max_per_author = STORE_MAX_PER_AUTHOR_DEFAULT;
    o->sync = STORE_SYNC_FULL;
    o->max_peers = STORE_MAX_PEERS_DEFAULT;
}

static int
counters_load(struct store *s, MDB_txn *txn)
{
    MDB_val k = mval("stats", 5), v;
    const uint8_t *p;
    int rc = mdb_get(txn, s->dbi[T_META], &k, &v);

    memset(&s->c, 0, sizeof(s->c));
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (v.mv_size != STATS_FIELDS * 8)
        return PULL_ERR_STORE;
    p = v.mv_data;
    s->c.records = be64dec(p);
    s->c.bytes = be64dec(p + 8);
    for (int i = 0; i < KIND_SLOTS; i++)
        s->c.by_kind[i] = be64dec(p + 16 + 8 * i);
    return 0;
}

static int
counters_save(struct store *s, MDB_txn *txn, const struct counters *c)
{
    uint8_t b[STATS_FIELDS * 8];
    MDB_val k = mval("stats", 5), v = mval(b, sizeof(b));

    be64enc(b, c->records);
    be64enc(b + 8, c->bytes);
    for (int i = 0; i < KIND_SLOTS; i++)
        be64enc(b + 16 + 8 * i, c->by_kind[i]);
    return mdb_put(txn, s->dbi[T_META], &k, &v, 0);
}

static int
open_tables(struct store *s, MDB_txn *txn, void *arg)
{
    MDB_val k = mval("schema", 6), v;
    uint8_t ver[4];
    int rc;

    (void)arg;
    if ((rc = mdb_dbi_open(txn, table_names[T_META], MDB_CREATE, &s->dbi[T_META])) != 0)
        return rc;
    rc = mdb_get(txn, s->dbi[T_META], &k, &v);
    if (rc == 0) {
        uint32_t found;
        if (v.mv_size != 4)
            return PULL_ERR_STORE;
        found = be32dec(v.mv_data);
        if (found != STORE_SCHEMA) {
            log_error("store: schema version %u, this pull supports %u", (unsigned)found,
                      (unsigned)STORE_SCHEMA);
            return PULL_ERR_SCHEMA;
        }
    } else if (rc == MDB_NOTFOUND) {
        be32enc(ver, STORE_SCHEMA);
        v = mval(ver, 4);
        if ((rc = mdb_put(txn, s->dbi[T_META], &k, &v, 0)) != 0)
            return rc;
    } else {
        return rc;
    }
    for (int t = T_META + 1; t < T_COUNT; t++) {
        if ((rc = mdb_dbi_open(txn, table_names[t], MDB_CREATE, &s->dbi[t])) != 0)
            return rc;
    }
    return counters_load(s, txn);
}

static int store_precheck(const char *dir);

int
store_open(const char *dir, const struct store_opts *opts, struct store **out)
{
    struct store *s = NULL;
    unsigned flags = MDB_NOTLS;
    long ps;
    int dead = 0, rc;

    *out = NULL;
    if (dir == NULL || dir[0] == '\0')
        return PULL_ERR_INVAL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return PULL_ERR_NOMEM;
    if ((s->dec = malloc(sizeof(*s->dec))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    if (opts != NULL)
        s->opts = *opts;
    else
        store_opts_init(&s->opts);
    ps = sysconf(_SC_PAGESIZE);
    s->page_size = ps > 0 ? (size_t)ps : 4096;
    if (s->opts.map_size == 0)
        s->opts.map_size = STORE_MAP_DEFAULT;
    if (s->opts.map_max == 0)
        s->opts.map_max = STORE_MAP_MAX_DEFAULT;
    if (s->opts.max_per_author == 0)
        s->opts.max_per_author = STORE_MAX_PER_AUTHOR_DEFAULT;
    if (s->opts.max_peers == 0)
        s->opts.max_peers = STORE_MAX_PEERS_DEFAULT;
    s->level = STORE_LEVEL_NONE;
    /* whole pages, at least 16 of them */
    s->opts.map_size = (s->opts.map_size + s->page_size - 1) / s->page_size * s->page_size;
    if (s->opts.map_size < 16 * s->page_size)
        s->opts.map_size = 16 * s->page_size;
    if (s->opts.map_max < s->opts.map_size)
        s->opts.map_max = s->opts.map_size;
    if (s->opts.sync == STORE_SYNC_NONE)
        flags |= MDB_NOSYNC;
    else if (s->opts.sync == STORE_SYNC_DATA)
        flags |= MDB_NOMETASYNC;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        log_error("store: cannot create %s: %s", dir, strerror(errno));
        rc = PULL_ERR_IO;
        goto out;
    }
    if ((rc = store_precheck(dir)) != 0)
        goto out;
    if ((rc = mdb_env_create(&s->env)) != 0 || (rc = mdb_env_set_maxdbs(s->env, T_COUNT)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, (size_t)s->opts.map_size)) != 0)
        goto out;
    if ((rc = mdb_env_open(s->env, dir, flags, 0600)) != 0) {
        log_error("store: cannot open %s: %s", dir, mdb_strerror(rc));
        goto out;
    }
    if ((rc = mdb_reader_check(s->env, &dead)) != 0)
        goto out;
    if (dead > 0)
        log_info("store: cleared %d stale reader slot(s)", dead);
    /* an existing store may have a larger map than asked for */
    if ((rc = store_refresh_mapsize(s)) != 0)
        goto out;
    if (s->opts.map_max < s->map_size)
        s->opts.map_max = s->map_size;
    if ((rc = store_write(s, open_tables, NULL)) != 0)
        goto out;
    *out = s;
    s = NULL; /* transferred */
out:
    store_close(s);
    return store_xlate(rc);
}

void
store_close(struct store *s)
{
    if (s == NULL)
        return;
    if (s->rtxn != NULL)
        mdb_txn_abort(s->rtxn);
    if (s->env != NULL)
        mdb_env_close(s->env);
    free(s->dec);
    free(s->ri);
    free(s);
}

/* ---------------------------------------------------------------------------------- */
/* Writing records                                                                     */

static bool
store_keeps(const struct store *s, const uint8_t author[32])
{
    return s->opts.keep != NULL && s->opts.keep(s->opts.keep_ctx, author);
}

static int
quota_get(struct store *s, MDB_txn *txn, const uint8_t author[32], uint32_t *live, uint32_t *tombs)
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

static int
quota_set(struct store *s, MDB_txn *txn, const uint8_t author[32], uint32_t live, uint32_t tombs)
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

static void
counters_add(struct counters *c, const struct rinfo *r, int sign)
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

/* load_at fills o with the stored record (created, id), decoding its envelope. *found is
 * false if it isn't in recs. If the stored bytes no longer decode (a bug or a corruption),
 * o still gets what the keys tell (id, created, length) with kind 0 and no tags, *decoded
 * is false, and the caller removes what it can. */
static int
load_at(struct store *s, MDB_txn *txn, uint64_t created, const uint8_t id[RECORD_ID_BYTES],
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
        rinfo_from(o, &env, s->dec);
        memcpy(o->id, id, RECORD_ID_BYTES);
        *decoded = true;
    } else {
        log_warn("store: stored record does not decode; removing what can be found");
    }
    return 0;
}

/* load_stored is load_at for an id alone (one more lookup, in ids). */
static int
load_stored(struct store *s, MDB_txn *txn, const uint8_t id[RECORD_ID_BYTES], struct rinfo *o,
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
    return load_at(s, txn, be64dec(v.mv_data), id, o, found, decoded);
}

static int
del_tolerant(MDB_txn *txn, MDB_dbi dbi, const void *key, size_t klen)
{
    MDB_val k = mval(key, klen);
    int rc = mdb_del(txn, dbi, &k, NULL);

    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* remove_indexed deletes o from recs, ids, expiry and tags (not latest, not quota). */
static int
remove_indexed(struct store *s, MDB_txn *txn, const struct rinfo *o, bool decoded)
{
    uint8_t k[TAG_KEY_MAX];
    int rc;

    reckey(k, o->created, o->id);
    if ((rc = del_tolerant(txn, s->dbi[T_RECS], k, RECKEY_LEN)) != 0 ||
        (rc = del_tolerant(txn, s->dbi[T_IDS], o->id, RECORD_ID_BYTES)) != 0)
        return rc;
    if (!decoded)
        return 0;
    reckey(k, o->expires, o->id);
    if ((rc = del_tolerant(txn, s->dbi[T_EXPIRY], k, RECKEY_LEN)) != 0)
        return rc;
    for (unsigned i = 0; i < o->ntags; i++) {
        size_t n = tagkey(k, o->tags[i], o->taglen[i], o->created, o->id);
        if ((rc = del_tolerant(txn, s->dbi[T_TAGS], k, n)) != 0)
            return rc;
    }
    return 0;
}

/* The last key of a time-ordered table (recs, expiry). Records mostly arrive in time order
 * (gossip of new records, syncs walking time ranges), so most inserts land after the last
 * key: MDB_APPEND then skips the search and fills pages completely instead of splitting
 * them in half, which halves the pages a commit writes. Other keys take the normal path. */
struct tail {
    uint8_t key[RECKEY_LEN];
    bool any; /* the table has a last key */
};

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
struct bkey {
    uint8_t key[RECKEY_LEN]; /* an author (32 bytes, zero-padded), or created/expires || id */
    uint32_t idx;
};

struct tkey {
    uint8_t len;
    uint8_t key[TAG_KEY_MAX];
};

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

/* The quota counters of the author being processed in phase 1. */
struct qcur {
    uint8_t author[32];
    uint32_t live;
    uint32_t tombs;
    bool loaded;
    bool dirty;
};

static int
qcur_switch(struct store *s, MDB_txn *txn, struct qcur *q, const uint8_t *author)
{
    int rc;

    if (q->loaded && author != NULL && memcmp(q->author, author, 32) == 0)
        return 0;
    if (q->loaded && q->dirty && (rc = quota_set(s, txn, q->author, q->live, q->tombs)) != 0)
        return rc;
    q->loaded = q->dirty = false;
    if (author == NULL)
        return 0;
    if ((rc = quota_get(s, txn, author, &q->live, &q->tombs)) != 0)
        return rc;
    memcpy(q->author, author, 32);
    q->loaded = true;
    return 0;
}

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

static struct rinfo *
batch_find(struct put_arg *a, const uint8_t id[RECORD_ID_BYTES])
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
            return del_tolerant(txn, s->dbi[T_IDS], r->id, RECORD_ID_BYTES);
        }
        if ((old = batch_find(a, prior.id)) != NULL) {
            in_batch = decoded = true; /* accepted earlier in this batch, not inserted yet */
        } else {
            old = &a->old;
            if ((rc = load_at(s, txn, old_created, prior.id, old, &found, &decoded)) != 0)
                return rc;
            if (!found) { /* a latest entry without its record: just overwrite it */
                if ((rc = del_tolerant(txn, s->dbi[T_IDS], prior.id, RECORD_ID_BYTES)) != 0)
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
        if ((rc = del_tolerant(txn, s->dbi[T_IDS], r->id, RECORD_ID_BYTES)) != 0)
            return rc;
        return fresh ? del_tolerant(txn, s->dbi[T_LATEST], lk, LATEST_KEY_LEN) : 0;
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
            rc = del_tolerant(txn, s->dbi[T_IDS], old->id, RECORD_ID_BYTES);
        } else {
            rc = remove_indexed(s, txn, old, decoded);
        }
        if (rc != 0)
            return rc;
        counters_add(&a->c, old, -1);
        r->replaced = true;
        memcpy(r->replaced_id, old->id, RECORD_ID_BYTES);
        r->replaced_created = old->created;
    }
    r->pending = true;
    batch_add(a, a->ord[pos].idx);
    counters_add(&a->c, r, +1);
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

/* put_apply runs both phases for a's items in txn, counting into a->c (set by the caller:
 * this may be a retry after growing the map). */
static int
put_apply(struct store *s, MDB_txn *txn, struct put_arg *a)
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

static void
put_arg_free(struct put_arg *a)
{
    if (a == NULL)
        return;
    free(a->ord);
    free(a->idtab);
    free(a->tk);
    free(a);
}

static int
put_arg_new(struct rinfo *ri, size_t n, uint64_t now_s, struct put_arg **out)
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
        put_arg_free(a);
        return PULL_ERR_NOMEM;
    }
    *out = a;
    return 0;
}

struct sweep_arg {
    uint64_t now_s;
    size_t max;
    struct pull_wb done; /* created(8) || id(32) per removed record */
    struct rinfo old;
};

static int sweep_apply(struct store *s, MDB_txn *txn, struct sweep_arg *a, struct counters *c);

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

static int kv_apply(struct store *s, MDB_txn *txn, struct commit_arg *ca,
                    const struct store_kv_op *op);
static int kv_table(enum store_table t);
static int peer_note_record(struct store *s, MDB_txn *txn, const uint8_t key[32], uint64_t now_s);

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
    if ((rc = del_tolerant(txn, s->dbi[T_LATEST], lk, LATEST_KEY_LEN)) != 0 ||
        (rc = load_at(s, txn, r->created, r->id, &ca->old, &found, &decoded)) != 0)
        return rc;
    if (found) {
        if ((rc = remove_indexed(s, txn, &ca->old, decoded)) != 0)
            return rc;
        counters_add(&ca->c, &ca->old, -1);
    } else if ((rc = del_tolerant(txn, s->dbi[T_IDS], r->id, RECORD_ID_BYTES)) != 0) {
        return rc;
    }
    if ((rc = quota_get(s, txn, e->author, &live, &tombs)) != 0)
        return rc;
    if (decoded && ca->old.kind == RECORD_WITHDRAWN)
        tombs -= tombs > 0;
    else if (live > 0)
        live--;
    else
        tombs -= tombs > 0;
    if ((rc = quota_set(s, txn, e->author, live, tombs)) != 0)
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
            struct rinfo *r = a != NULL ? batch_find(a, e + 8) : NULL;
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
            (rc = peer_note_record(s, txn, r->from, a->now_s)) != 0)
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
    ca->c = s->c;
    wb_reset(&ca->evicted);
    wb_reset(&ca->peers_out);
    if (ca->put != NULL) {
        ca->put->c = ca->c;
        if ((rc = put_apply(s, txn, ca->put)) != 0)
            return rc;
        ca->c = ca->put->c;
    }
    if (ca->sweep != NULL && (rc = sweep_apply(s, txn, ca->sweep, &ca->c)) != 0)
        return rc;
    for (size_t i = 0; i < ca->nkv; i++) {
        if ((rc = kv_apply(s, txn, ca, &ca->kv[i])) != 0)
            return rc;
    }
    if ((rc = wb_error(&ca->peers_out)) != 0 || (rc = budget_apply(s, txn, ca)) != 0)
        return rc;
    if (ca->put == NULL && ca->sweep == NULL && ca->evicted.len == 0)
        return 0; /* the counters did not change */
    return counters_save(s, txn, &ca->c);
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
    if ((rc = put_arg_new(ri, n, now_s, &ca.put)) != 0)
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
    put_arg_free(ca.put);
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
        rinfo_from(&s->ri[m], &env, s->dec);
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

int
store_commit(struct store *s, struct store_commit *c, uint64_t now_s)
{
    struct commit_arg ca;
    struct sweep_arg *sw = NULL;
    size_t m = 0;
    int rc;

    c->nswept = 0;
    if (c->nrecs > STORE_BATCH_MAX)
        return PULL_ERR_TOO_BIG;
    c->nevicted = c->npeers_evicted = 0;
    for (size_t i = 0; i < c->nkv; i++) {
        const struct store_kv_op *op = &c->kv[i];
        if (kv_table(op->table) < 0 || (!op->del && op->val == NULL && op->len != 0) ||
            (op->note != NULL && op->table != STORE_PEERS))
            return PULL_ERR_INVAL;
        if (op->len > STORE_KV_MAX)
            return PULL_ERR_TOO_BIG;
    }
    if (c->nrecs == 0 && c->nkv == 0 && c->sweep_max == 0)
        return 0;
    if ((rc = store_scratch(s, c->nrecs)) != 0)
        return rc;
    for (size_t i = 0; i < c->nrecs; i++) {
        struct store_opened *it = &c->recs[i];
        it->result = 0;
        it->replaced = false;
        if (it->env == NULL || it->rec == NULL || it->env->bytes == NULL) {
            it->result = PULL_ERR_INVAL;
            continue;
        }
        if (it->env->len == 0 || it->env->len > RECORD_ENVELOPE_MAX) {
            it->result = PULL_ERR_TOO_BIG;
            continue;
        }
        if (it->rec->kind < RECORD_OFFER || it->rec->kind > RECORD_ATTESTATION) {
            it->result = PULL_ERR_KIND;
            continue;
        }
        rinfo_from(&s->ri[m], it->env, it->rec);
        s->ri[m].item = i;
        s->ri[m].from = it->from;
        m++;
    }
    memset(&ca, 0, sizeof(ca));
    ca.kv = c->kv;
    ca.nkv = c->nkv;
    ca.now_s = now_s;
    wb_init(&ca.evicted, 0);
    wb_init(&ca.peers_out, 0);
    if (m > 0 && (rc = put_arg_new(s->ri, m, now_s, &ca.put)) != 0)
        goto out;
    if (c->sweep_max > 0) {
        if ((sw = calloc(1, sizeof(*sw))) == NULL) {
            rc = PULL_ERR_NOMEM;
            goto out;
        }
        sw->now_s = now_s;
        sw->max = c->sweep_max;
        wb_init(&sw->done, 0);
        ca.sweep = sw;
    }
    if ((rc = store_write(s, commit_txn, &ca)) != 0)
        goto out;
    s->c = ca.c;
    s->level = ca.level;
    c->nevicted = ca.evicted.len / RECKEY_LEN;
    c->npeers_evicted = ca.peers_out.len / 32;
    s->evicted += c->nevicted;
    for (size_t j = 0; j < m; j++) {
        struct store_opened *it = &c->recs[s->ri[j].item];
        it->result = s->ri[j].result;
        it->replaced = s->ri[j].replaced;
        if (it->replaced)
            memcpy(it->replaced_id, s->ri[j].replaced_id, RECORD_ID_BYTES);
    }
    if (sw != NULL) {
        c->nswept = sw->done.len / RECKEY_LEN;
        for (size_t off = 0; c->swept != NULL && off < sw->done.len; off += RECKEY_LEN) {
            if (c->swept(c->swept_ctx, be64dec(sw->done.p + off), sw->done.p + off + 8) != 0)
                break; /* the deletions are committed; stopping only skips the reports */
        }
    }
    for (size_t off = 0; c->evicted != NULL && off < ca.evicted.len; off += RECKEY_LEN) {
        if (c->evicted(c->evicted_ctx, be64dec(ca.evicted.p + off), ca.evicted.p + off + 8) != 0)
            break;
    }
    for (size_t off = 0; c->peer_evicted != NULL && off < ca.peers_out.len; off += 32)
        c->peer_evicted(c->peer_evicted_ctx, ca.peers_out.p + off);
out:
    wb_release(&ca.evicted);
    wb_release(&ca.peers_out);
    put_arg_free(ca.put);
    if (sw != NULL) {
        wb_release(&sw->done);
        free(sw);
    }
    store_scratch_trim(s);
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

        if ((rc = load_stored(s, txn, id, &a->old, &found, &decoded)) != 0)
            goto out;
        /* the expiry entry goes in every case (it is how we got here) */
        if ((rc = del_tolerant(txn, s->dbi[T_EXPIRY], ek, RECKEY_LEN)) != 0)
            goto out;
        if (!found) {
            if ((rc = del_tolerant(txn, s->dbi[T_IDS], id, RECORD_ID_BYTES)) != 0)
                goto out;
            continue;
        }
        if ((rc = remove_indexed(s, txn, &a->old, decoded)) != 0)
            goto out;
        counters_add(c, &a->old, -1);
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
            if ((rc = quota_get(s, txn, a->old.author, &live, &tombs)) != 0)
                goto out;
            if (a->old.kind == RECORD_WITHDRAWN)
                tombs -= tombs > 0;
            else
                live -= live > 0;
            if ((rc = quota_set(s, txn, a->old.author, live, tombs)) != 0)
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
store_author_count(struct store *s, const uint8_t author[static 32], uint32_t *live,
                   uint32_t *tombstones)
{
    MDB_txn *txn = NULL;
    uint32_t l = 0, t = 0;
    int rc;

    if ((rc = store_rbegin(s, &txn)) != 0)
        return rc;
    rc = quota_get(s, txn, author, &l, &t);
    store_rend(s, txn);
    if (live != NULL)
        *live = l;
    if (tombstones != NULL)
        *tombstones = t;
    return store_xlate(rc);
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
static int
resolve_prefix_in(struct store *s, int table, const struct ident_prefix *prefix,
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
    return resolve_prefix_in(s, T_IDS, prefix, id);
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
        if ((rc = mdb_cursor_get(cur, &k, &v, op)) != 0) {
            if (rc == MDB_NOTFOUND)
                rc = 0;
            break;
        }
        if (k.mv_size != RECKEY_LEN)
            continue;
        if ((stop = fn(ctx, (const uint8_t *)k.mv_data + 8, v.mv_data, v.mv_size)) != 0)
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

/* ---------------------------------------------------------------------------------- */
/* Key-value tables                                                                    */

static int
kv_table(enum store_table t)
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
    if ((rc = del_tolerant(txn, s->dbi[T_PEERS], worst, 32)) != 0 ||
        (rc = del_tolerant(txn, s->dbi[T_PEERSTAT], worst, 32)) != 0)
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

static int
peer_note_record(struct store *s, MDB_txn *txn, const uint8_t key[32], uint64_t now_s)
{
    struct store_peer_stats n;

    memset(&n, 0, sizeof(n));
    n.records = 1;
    n.last_record_s = now_s;
    return peer_note(s, txn, key, &n);
}

static int
kv_apply(struct store *s, MDB_txn *txn, struct commit_arg *ca, const struct store_kv_op *op)
{
    MDB_val k = mval(op->key, 32), v = mval(op->val != NULL ? op->val : "", op->len);
    int table = kv_table(op->table), rc;

    if (table == T_PEERS) {
        if (op->note != NULL)
            return peer_note(s, txn, op->key, op->note);
        if (!op->del)
            return peer_write(s, txn, ca, op);
        if ((rc = del_tolerant(txn, s->dbi[T_PEERSTAT], op->key, 32)) != 0)
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

    if (kv_table(t) < 0)
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
    int table = kv_table(t), rc;

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
    int table = kv_table(t);

    if (table < 0)
        return PULL_ERR_INVAL;
    return resolve_prefix_in(s, table, prefix, key);
}

int
store_kv_iter(struct store *s, enum store_table t, store_kv_fn fn, void *ctx)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int table = kv_table(t), rc, stop = 0, op = MDB_FIRST;

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

int
store_sync(struct store *s)
{
    return store_xlate(mdb_env_sync(s->env, 1));
}

int
store_trim(struct store *s)
{
    MDB_txn *txn = NULL;
    MDB_val k = mval("schema", 6), v;
    uintptr_t p, lo = 0, hi = 0;
    char line[512];
    FILE *f = NULL;
    int rc;

    /* LMDB does not tell where its map is (me_mapaddr is set only with MDB_FIXEDMAP): take
     * the address of a value inside it and find the mapping that holds it. */
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
        return store_xlate(rc);
    rc = mdb_get(txn, s->dbi[T_META], &k, &v);
    p = rc == 0 ? (uintptr_t)v.mv_data : 0;
    mdb_txn_abort(txn);
    if (rc != 0)
        return store_xlate(rc);
    if ((f = fopen("/proc/self/maps", "re")) == NULL)
        return PULL_ERR_IO;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && p >= a && p < b) {
            lo = a;
            hi = b;
            break;
        }
    }
    fclose(f);
    if (hi <= lo)
        return PULL_ERR_NOT_FOUND;
    /* The map is a read-only MAP_SHARED view of the file (no MDB_WRITEMAP): dropping our
     * page table entries leaves the data in the page cache, and the next access maps it
     * again with a minor fault. Nothing is lost, and since the pages come back on access
     * this is safe even while another transaction of this thread holds pointers. */
    if (madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0) {
        log_warn("store: madvise: %s", strerror(errno));
        return PULL_ERR_IO;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Checking a store that may be damaged                                                */

/*
 * LMDB checks nothing when it reads a page: a truncated file is read past its end through
 * the map (SIGBUS) and a damaged page sends its cursors through garbage offsets (SIGSEGV).
 * So before LMDB maps the file, the check reads it with pread and verifies the on-disk
 * structures LMDB 0.9 (data format 1) relies on, from lmdb/mdb.c, for 64-bit builds:
 *
 *   page header (16 bytes): pgno u64 | pad u16 | flags u16 | lower u16 | upper u16
 *                           (an overflow page has a u32 page count where lower/upper are)
 *   node: data size lo u16 | hi u16 | flags u16 | key size u16 | key | data; in a branch
 *         page lo | hi << 16 | flags << 32 is the child's page number
 *   meta (after the header of pages 0 and 1): magic u32 | version u32 | address u64 |
 *         mapsize u64 | dbs[2] (free, main) | last_pg u64 | txnid u64
 *   db (48 bytes): pad u32 (the page size, in the free db) | flags u16 | depth u16 |
 *         branch_pages u64 | leaf_pages u64 | overflow_pages u64 | entries u64 | root u64
 *
 * Native byte order (LMDB's). The walk visits every page reachable from the current meta:
 * what LMDB may read later, since pulld reads every record at start (search index).
 */
#define CK_PAGEHDR 16
#define CK_NODEHDR 8
#define CK_META_LEN 136
#define CK_DB_LEN 48
#define CK_P_BRANCH 0x01
#define CK_P_LEAF 0x02
#define CK_P_OVERFLOW 0x04
#define CK_P_META 0x08
#define CK_P_LEAF2 0x20
#define CK_P_SUBP 0x40
#define CK_F_BIGDATA 0x01
#define CK_F_SUBDATA 0x02
#define CK_F_DUPDATA 0x04
#define CK_MAGIC 0xBEEFC0DEu
#define CK_VERSION 1
#define CK_INVALID UINT64_MAX
#define CK_DEPTH_MAX 32
#define CK_SAMPLE 32 /* oldest and newest records decoded */

struct ck_db {
    uint32_t pad;
    uint16_t flags, depth;
    uint64_t branch, leaf, overflow, entries, root;
};

struct ck_meta {
    uint16_t pflags;
    uint32_t magic, version;
    uint64_t mapsize;
    struct ck_db dbs[2];
    uint64_t last_pg, txnid;
};

struct ck_count {
    uint64_t branch, leaf, overflow, entries;
};

struct ck_named {
    char name[16];
    struct ck_db db;
};

struct ck {
    int fd;
    uint64_t fsize;
    uint32_t psize;
    uint64_t npages;
    uint8_t *seen;  /* a bit per page reached in a tree */
    uint8_t *freed; /* a bit per page the free-page tree lists */
    bool in_free;   /* walking the free-page tree */
    uint8_t *buf[CK_DEPTH_MAX + 1];
    struct ck_named named[T_COUNT];
    size_t nnamed;
    char *why;
    size_t whylen;
};

static int ck_fail(struct ck *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
ck_fail(struct ck *k, const char *fmt, ...)
{
    va_list ap;

    if (k->why != NULL && k->whylen > 0) {
        va_start(ap, fmt);
        vsnprintf(k->why, k->whylen, fmt, ap);
        va_end(ap);
    }
    return PULL_ERR_STORE;
}

static uint16_t
ld16(const uint8_t *p)
{
    uint16_t v;

    memcpy(&v, p, 2);
    return v;
}

static uint32_t
ld32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

static uint64_t
ld64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

static void
ck_db_parse(const uint8_t *p, struct ck_db *d)
{
    d->pad = ld32(p);
    d->flags = ld16(p + 4);
    d->depth = ld16(p + 6);
    d->branch = ld64(p + 8);
    d->leaf = ld64(p + 16);
    d->overflow = ld64(p + 24);
    d->entries = ld64(p + 32);
    d->root = ld64(p + 40);
}

static int
ck_read(struct ck *k, uint8_t *buf, size_t len, uint64_t off)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r = pread(k->fd, buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return PULL_ERR_IO;
        if (r == 0)
            return ck_fail(k, "data.mdb ends at %llu bytes, inside page %llu",
                           (unsigned long long)k->fsize, (unsigned long long)(off / k->psize));
        got += (size_t)r;
    }
    return 0;
}

/* ck_meta_read reads meta page i (its page size is psize; 0: read the first one's). */
static int
ck_meta_read(struct ck *k, unsigned i, struct ck_meta *m)
{
    uint8_t b[CK_PAGEHDR + CK_META_LEN];
    const uint8_t *p = b + CK_PAGEHDR;
    int rc;

    if ((rc = ck_read(k, b, sizeof(b), (uint64_t)i * k->psize)) != 0)
        return rc;
    m->pflags = ld16(b + 10);
    m->magic = ld32(p);
    m->version = ld32(p + 4);
    m->mapsize = ld64(p + 16);
    ck_db_parse(p + 24, &m->dbs[0]);
    ck_db_parse(p + 24 + CK_DB_LEN, &m->dbs[1]);
    m->last_pg = ld64(p + 120);
    m->txnid = ld64(p + 128);
    return 0;
}

static int
ck_db_sane(struct ck *k, unsigned i, const char *name, const struct ck_db *d, uint64_t npages)
{
    if (d->root == CK_INVALID) {
        if (d->depth != 0 || d->entries != 0 || d->branch + d->leaf + d->overflow != 0)
            return ck_fail(k, "meta page %u: the empty %s tree has pages or entries", i, name);
        return 0;
    }
    if (d->root < 2 || d->root >= npages || d->depth == 0 || d->depth > CK_DEPTH_MAX ||
        d->branch > npages || d->leaf > npages || d->overflow > npages ||
        d->branch + d->leaf + d->overflow > npages)
        return ck_fail(k, "meta page %u: the %s tree is out of bounds (root %llu, depth %u)", i,
                       name, (unsigned long long)d->root, (unsigned)d->depth);
    return 0;
}

/* ck_metas checks the file size and both meta pages; *cur gets the current one. */
static int
ck_metas(struct ck *k, struct ck_meta *cur)
{
    struct ck_meta m[2];
    int rc;

    if (k->fsize < CK_PAGEHDR + CK_META_LEN)
        return ck_fail(k, "data.mdb is %llu bytes, too short to be a store (truncated?)",
                       (unsigned long long)k->fsize);
    k->psize = 4096; /* where the first meta page is read from does not depend on it */
    if ((rc = ck_meta_read(k, 0, &m[0])) != 0)
        return rc;
    k->psize = m[0].dbs[0].pad;
    if (m[0].magic != CK_MAGIC || (m[0].pflags & CK_P_META) == 0)
        return ck_fail(k, "meta page 0 is not an LMDB meta page");
    if (k->psize < 512 || k->psize > 65536 || (k->psize & (k->psize - 1)) != 0)
        return ck_fail(k, "meta page 0: page size %u", (unsigned)k->psize);
    if (k->fsize < 2ull * k->psize)
        return ck_fail(k, "data.mdb is %llu bytes, shorter than its two meta pages (truncated?)",
                       (unsigned long long)k->fsize);
    if ((rc = ck_meta_read(k, 1, &m[1])) != 0)
        return rc;
    for (unsigned i = 0; i < 2; i++) {
        uint64_t np = m[i].last_pg + 1;
        if (m[i].magic != CK_MAGIC || (m[i].pflags & CK_P_META) == 0)
            return ck_fail(k, "meta page %u is not an LMDB meta page", i);
        if (m[i].version != CK_VERSION)
            return ck_fail(k, "meta page %u: data format %u, not %u", i, (unsigned)m[i].version,
                           (unsigned)CK_VERSION);
        if (m[i].dbs[0].pad != k->psize)
            return ck_fail(k, "meta pages disagree on the page size");
        if (m[i].last_pg < 1 || m[i].last_pg >= UINT64_MAX / k->psize ||
            np * k->psize > m[i].mapsize)
            return ck_fail(k, "meta page %u: last page %llu outside the map", i,
                           (unsigned long long)m[i].last_pg);
        if ((rc = ck_db_sane(k, i, "free-page", &m[i].dbs[0], np)) != 0 ||
            (rc = ck_db_sane(k, i, "main", &m[i].dbs[1], np)) != 0)
            return rc;
    }
    /* LMDB writes the meta pages in turn, one transaction apart */
    if ((m[0].txnid > m[1].txnid ? m[0].txnid - m[1].txnid : m[1].txnid - m[0].txnid) > 1)
        return ck_fail(k, "meta pages are at transactions %llu and %llu: one is damaged",
                       (unsigned long long)m[0].txnid, (unsigned long long)m[1].txnid);
    *cur = m[m[1].txnid > m[0].txnid ? 1 : 0];
    if (k->fsize / k->psize < cur->last_pg + 1)
        return ck_fail(k, "data.mdb is %llu bytes but the store's pages need %llu (truncated?)",
                       (unsigned long long)k->fsize,
                       (unsigned long long)((cur->last_pg + 1) * k->psize));
    return 0;
}

static int
ck_mark(struct ck *k, const char *name, uint64_t pg, uint64_t n)
{
    if (pg < 2 || pg >= k->npages || n > k->npages - pg)
        return ck_fail(k, "%s: page %llu is outside the store", name, (unsigned long long)pg);
    for (uint64_t i = pg; i < pg + n; i++) {
        if (k->seen[i / 8] & (1u << (i % 8)))
            return ck_fail(k, "%s: page %llu is reached twice", name, (unsigned long long)i);
        k->seen[i / 8] |= (uint8_t)(1u << (i % 8));
    }
    return 0;
}

/* ck_idl marks the pages a free-page entry lists (count u64, then that many page numbers). */
static int
ck_idl(struct ck *k, const uint8_t *p, uint64_t len)
{
    uint64_t n = len >= 8 ? ld64(p) : 0;

    if (len < 8 || n > (len - 8) / 8)
        return ck_fail(k, "free-page: an entry is damaged");
    for (uint64_t i = 1; i <= n; i++) {
        uint64_t pg = ld64(p + 8 * i);
        if (pg < 2 || pg >= k->npages)
            return ck_fail(k, "free-page: page %llu is outside the store", (unsigned long long)pg);
        k->freed[pg / 8] |= (uint8_t)(1u << (pg % 8));
    }
    return 0;
}

static int
ck_overflow(struct ck *k, const char *name, uint64_t pg, uint64_t dsize, struct ck_count *c)
{
    uint8_t h[CK_PAGEHDR];
    uint64_t n;
    int rc;

    if (pg < 2 || pg >= k->npages)
        return ck_fail(k, "%s: overflow page %llu is outside the store", name,
                       (unsigned long long)pg);
    if ((rc = ck_read(k, h, sizeof(h), pg * k->psize)) != 0)
        return rc;
    n = ld32(h + 12);
    if (ld64(h) != pg || (ld16(h + 10) & CK_P_OVERFLOW) == 0 || n == 0 ||
        n * k->psize < dsize + CK_PAGEHDR)
        return ck_fail(k, "%s: overflow page %llu is damaged", name, (unsigned long long)pg);
    c->overflow += n;
    if ((rc = ck_mark(k, name, pg, n)) != 0)
        return rc;
    if (k->in_free) { /* a long list of free pages */
        uint8_t *d = malloc(dsize > 0 ? dsize : 1);
        if (d == NULL)
            return PULL_ERR_NOMEM;
        if ((rc = ck_read(k, d, dsize, pg * k->psize + CK_PAGEHDR)) == 0)
            rc = ck_idl(k, d, dsize);
        free(d);
    }
    return rc;
}

/* ck_page checks page pg at level (1: the root) of a tree of the given depth, and below. */
static int
ck_page(struct ck *k, const char *name, bool main, uint64_t pg, unsigned level, unsigned depth,
        struct ck_count *c)
{
    uint8_t *b = k->buf[level];
    unsigned want = level < depth ? CK_P_BRANCH : CK_P_LEAF;
    unsigned flags, lower, upper, nkeys;
    int rc;

    if ((rc = ck_mark(k, name, pg, 1)) != 0 || (rc = ck_read(k, b, k->psize, pg * k->psize)) != 0)
        return rc;
    flags = ld16(b + 10);
    lower = ld16(b + 12);
    upper = ld16(b + 14);
    if (ld64(b) != pg)
        return ck_fail(k, "%s: page %llu says it is page %llu", name, (unsigned long long)pg,
                       (unsigned long long)ld64(b));
    if ((flags & (CK_P_BRANCH | CK_P_LEAF | CK_P_OVERFLOW | CK_P_META | CK_P_LEAF2 | CK_P_SUBP)) !=
        want)
        return ck_fail(k, "%s: page %llu is not the %s page the tree needs (flags 0x%x)", name,
                       (unsigned long long)pg, want == CK_P_BRANCH ? "branch" : "leaf", flags);
    if (lower < CK_PAGEHDR || lower > upper || upper > k->psize || (lower - CK_PAGEHDR) % 2 != 0)
        return ck_fail(k, "%s: page %llu has bad bounds", name, (unsigned long long)pg);
    nkeys = (lower - CK_PAGEHDR) / 2;
    if (nkeys == 0)
        return ck_fail(k, "%s: page %llu is empty", name, (unsigned long long)pg);
    if (want == CK_P_BRANCH)
        c->branch++;
    else
        c->leaf++;
    for (unsigned i = 0; i < nkeys; i++) {
        unsigned off = ld16(b + CK_PAGEHDR + 2 * i), ksize, nflags;
        uint64_t lo, hi, dsize, end;
        if (off < upper || off % 2 != 0 || off + CK_NODEHDR > k->psize)
            return ck_fail(k, "%s: page %llu: node %u at a bad offset", name,
                           (unsigned long long)pg, i);
        lo = ld16(b + off);
        hi = ld16(b + off + 2);
        nflags = ld16(b + off + 4);
        ksize = ld16(b + off + 6);
        end = (uint64_t)off + CK_NODEHDR + ksize;
        if (ksize > 511 || end > k->psize)
            return ck_fail(k, "%s: page %llu: node %u has a bad key", name, (unsigned long long)pg,
                           i);
        if (want == CK_P_BRANCH) {
            if ((rc = ck_page(k, name, main, lo | hi << 16 | (uint64_t)nflags << 32, level + 1,
                              depth, c)) != 0)
                return rc;
            continue;
        }
        c->entries++;
        dsize = lo | hi << 16;
        if (nflags & CK_F_BIGDATA) {
            if (end + 8 > k->psize || (nflags & (CK_F_SUBDATA | CK_F_DUPDATA)) != 0)
                return ck_fail(k, "%s: page %llu: node %u is damaged", name, (unsigned long long)pg,
                               i);
            if ((rc = ck_overflow(k, name, ld64(b + end), dsize, c)) != 0)
                return rc;
            continue;
        }
        if (end + dsize > k->psize || (nflags & CK_F_DUPDATA) != 0 ||
            ((nflags & CK_F_SUBDATA) != 0) != main)
            return ck_fail(k, "%s: page %llu: node %u is damaged", name, (unsigned long long)pg, i);
        if (k->in_free && (rc = ck_idl(k, b + end, dsize)) != 0)
            return rc;
        if (main) { /* a named table: checked after the main tree */
            struct ck_named *t;
            if (dsize != CK_DB_LEN || k->nnamed == T_COUNT || ksize >= sizeof(t->name))
                return ck_fail(k, "main: an unknown table");
            t = &k->named[k->nnamed++];
            memcpy(t->name, b + off + CK_NODEHDR, ksize);
            t->name[ksize] = '\0';
            ck_db_parse(b + end, &t->db);
        }
    }
    return 0;
}

static int
ck_tree(struct ck *k, const char *name, bool main, const struct ck_db *d)
{
    struct ck_count c = {0, 0, 0, 0};
    int rc;

    if (ck_db_sane(k, 2, name, d, k->npages) != 0)
        return ck_fail(k, "table %s: out of bounds (root %llu, depth %u)", name,
                       (unsigned long long)d->root, (unsigned)d->depth);
    if (d->root == CK_INVALID)
        return 0;
    if ((rc = ck_page(k, name, main, d->root, 1, d->depth, &c)) != 0)
        return rc;
    if (c.branch != d->branch || c.leaf != d->leaf || c.overflow != d->overflow ||
        c.entries != d->entries)
        return ck_fail(k,
                       "table %s: %llu branch, %llu leaf, %llu overflow pages and %llu entries, "
                       "its header says %llu, %llu, %llu and %llu",
                       name, (unsigned long long)c.branch, (unsigned long long)c.leaf,
                       (unsigned long long)c.overflow, (unsigned long long)c.entries,
                       (unsigned long long)d->branch, (unsigned long long)d->leaf,
                       (unsigned long long)d->overflow, (unsigned long long)d->entries);
    return 0;
}

/* ck_lmdb runs the checks that go through LMDB, once the pages are known to be sound:
 * the record counters against the tables, and the oldest and newest records decode. */
static int
ck_lmdb(struct ck *k, MDB_txn *txn)
{
    MDB_dbi dbi[T_COUNT];
    MDB_stat st[T_COUNT];
    MDB_cursor *cur = NULL;
    MDB_val key = mval("stats", 5), v;
    struct record *rec = NULL;
    uint64_t records = 0;
    int rc;

    for (int t = 0; t < T_COUNT; t++) {
        memset(&st[t], 0, sizeof(st[t]));
        rc = mdb_dbi_open(txn, table_names[t], 0, &dbi[t]);
        if (rc == MDB_NOTFOUND && t != T_META) {
            dbi[t] = 0;
            continue; /* made at the next store_open */
        }
        if (rc != 0 || (rc = mdb_stat(txn, dbi[t], &st[t])) != 0)
            return ck_fail(k, "table %s: %s", table_names[t], mdb_strerror(rc));
    }
    if ((rc = mdb_get(txn, dbi[T_META], &key, &v)) == 0) {
        if (v.mv_size != STATS_FIELDS * 8)
            return ck_fail(k, "the record counters are damaged");
        records = be64dec(v.mv_data);
    } else if (rc != MDB_NOTFOUND) {
        return ck_fail(k, "table meta: %s", mdb_strerror(rc));
    }
    if (records != st[T_RECS].ms_entries || st[T_IDS].ms_entries != st[T_RECS].ms_entries ||
        st[T_EXPIRY].ms_entries != st[T_RECS].ms_entries)
        return ck_fail(k, "the counters say %llu records, the tables hold %llu, %llu and %llu",
                       (unsigned long long)records, (unsigned long long)st[T_RECS].ms_entries,
                       (unsigned long long)st[T_IDS].ms_entries,
                       (unsigned long long)st[T_EXPIRY].ms_entries);
    if (records == 0)
        return 0;
    if ((rec = malloc(sizeof(*rec))) == NULL)
        return PULL_ERR_NOMEM;
    if ((rc = mdb_cursor_open(txn, dbi[T_RECS], &cur)) != 0) {
        free(rec);
        return ck_fail(k, "table recs: %s", mdb_strerror(rc));
    }
    for (int end = 0; end < 2 && rc == 0; end++) {
        int op = end == 0 ? MDB_FIRST : MDB_LAST;
        for (int i = 0; i < CK_SAMPLE; i++, op = end == 0 ? MDB_NEXT : MDB_PREV) {
            struct envelope env;
            if ((rc = mdb_cursor_get(cur, &key, &v, op)) != 0) {
                rc = rc == MDB_NOTFOUND ? 0 : ck_fail(k, "table recs: %s", mdb_strerror(rc));
                break;
            }
            if (key.mv_size != RECKEY_LEN || envelope_parse(v.mv_data, v.mv_size, &env) != 0 ||
                record_decode(env.rec, env.rec_len, rec) != 0 ||
                memcmp(env.id, (const uint8_t *)key.mv_data + 8, RECORD_ID_BYTES) != 0) {
                rc = ck_fail(k, "a stored record is damaged (created %llu)",
                             key.mv_size >= 8 ? (unsigned long long)be64dec(key.mv_data) : 0ull);
                break;
            }
        }
    }
    mdb_cursor_close(cur);
    free(rec);
    return rc;
}

/* ck_file runs the checks that need no LMDB environment: the file and the meta pages. */
static int
ck_file(const char *dir, struct ck *k, struct ck_meta *cur)
{
    char path[PATH_MAX];
    struct stat st;

    if (snprintf(path, sizeof(path), "%s/data.mdb", dir) >= (int)sizeof(path))
        return PULL_ERR_INVAL;
    if ((k->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno != ENOENT)
            return ck_fail(k, "data.mdb: %s", strerror(errno));
        k->fd = -1;
        if (snprintf(path, sizeof(path), "%s/lock.mdb", dir) < (int)sizeof(path) &&
            stat(path, &st) == 0)
            return ck_fail(k, "data.mdb is missing but lock.mdb is there: the store was removed");
        return 0; /* a new store */
    }
    if (fstat(k->fd, &st) != 0)
        return ck_fail(k, "data.mdb: %s", strerror(errno));
    k->fsize = (uint64_t)st.st_size;
    if (k->fsize == 0)
        return ck_fail(k, "data.mdb is empty (truncated?): the records it held are gone");
    return ck_metas(k, cur);
}

static void ck_release(struct ck *k);

/* store_precheck is the part of store_check that store_open runs: the file and its meta
 * pages, so that LMDB never maps a truncated store. */
static int
store_precheck(const char *dir)
{
    struct ck k;
    struct ck_meta m;
    char why[256];
    int rc;

    memset(&k, 0, sizeof(k));
    k.fd = -1;
    k.why = why;
    k.whylen = sizeof(why);
    why[0] = '\0';
    if (sizeof(size_t) != 8)
        return 0;
    rc = ck_file(dir, &k, &m);
    ck_release(&k);
    if (rc == PULL_ERR_STORE)
        log_error("store: %s is damaged: %s", dir, why);
    return rc;
}

static void
ck_release(struct ck *k)
{
    if (k->fd >= 0)
        close(k->fd);
    free(k->seen);
    free(k->freed);
    for (int i = 0; i <= CK_DEPTH_MAX; i++)
        free(k->buf[i]);
}

int
store_check(const char *dir, char *why, size_t whylen)
{
    struct ck k;
    struct ck_meta m, cur;
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    int rc;

    memset(&k, 0, sizeof(k));
    k.fd = -1;
    k.why = why;
    k.whylen = whylen;
    if (why != NULL && whylen > 0)
        why[0] = '\0';
    if (sizeof(size_t) != 8)
        return 0; /* the layouts above are those of 64-bit builds */
    if ((rc = ck_file(dir, &k, &m)) != 0 || k.fd < 0)
        goto out;
    /* Pin a snapshot (a running pulld then can't reuse the pages read) and walk the meta
     * that snapshot uses. Opening maps the file but reads only the meta pages, checked. */
    if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_maxdbs(env, T_COUNT)) != 0 ||
        (rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600)) != 0 ||
        (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0) {
        rc = ck_fail(&k, "LMDB cannot open it: %s", mdb_strerror(rc));
        goto out;
    }
    for (unsigned i = 0; i < 2; i++) {
        if ((rc = ck_meta_read(&k, i, &cur)) != 0)
            goto out;
        if (cur.txnid == (uint64_t)mdb_txn_id(txn))
            break;
        if (i == 1) {
            rc = ck_fail(&k, "no meta page is at the transaction LMDB reads");
            goto out;
        }
    }
    if ((rc = ck_db_sane(&k, 0, "main", &cur.dbs[1], cur.last_pg + 1)) != 0 ||
        (rc = ck_db_sane(&k, 0, "free-page", &cur.dbs[0], cur.last_pg + 1)) != 0)
        goto out;
    k.npages = cur.last_pg + 1;
    if ((k.seen = calloc((size_t)(k.npages / 8 + 1), 1)) == NULL ||
        (k.freed = calloc((size_t)(k.npages / 8 + 1), 1)) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i <= CK_DEPTH_MAX; i++) {
        if ((k.buf[i] = malloc(k.psize)) == NULL) {
            rc = PULL_ERR_NOMEM;
            goto out;
        }
    }
    k.in_free = true;
    if ((rc = ck_tree(&k, "free-page", false, &cur.dbs[0])) != 0)
        goto out;
    k.in_free = false;
    if ((rc = ck_tree(&k, "main", true, &cur.dbs[1])) != 0)
        goto out;
    for (size_t i = 0; i < k.nnamed; i++) {
        if ((rc = ck_tree(&k, k.named[i].name, false, &k.named[i].db)) != 0)
            goto out;
    }
    /* a page both in a tree and free: a tree points at pages the next write will reuse (an
     * older snapshot's, say, through a damaged page number) */
    for (uint64_t i = 0; i < k.npages / 8 + 1; i++) {
        if ((k.seen[i] & k.freed[i]) != 0) {
            rc = ck_fail(
                &k, "a page in use is also listed as free (page %llu)",
                (unsigned long long)(i * 8 + (uint64_t)__builtin_ctz(k.seen[i] & k.freed[i])));
            goto out;
        }
    }
    rc = ck_lmdb(&k, txn);
out:
    if (txn != NULL)
        mdb_txn_abort(txn);
    if (env != NULL)
        mdb_env_close(env);
    ck_release(&k);
    return rc;
}
