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
 * the batch is applied in two phases (see store_put_apply) and why records should arrive in time
 * order where the protocol allows (ingest in random order: ratio 0.82 instead of 0.89).
 *
 * The rooms (store_int.h is what they share):
 *   store.c         the floor: errors and small helpers, transactions (store_write and its
 *                   retry on a full map), open and close, store_sync and store_trim.
 *   store_put.c     writing a batch of records: the checks and the inserts (store_put_apply).
 *   store_commit.c  the one write transaction (store_commit, store_put_batch ...): the
 *                   budget's evictions, the commit itself, and the sweep of expired records.
 *   store_read.c    reading: records by id, author, time and tag, prefixes, counts, stats.
 *   store_kv.c      the key-value tables, the peers rows and their statistics.
 *   store_check.c   checking a store that may be damaged (store_check, store_precheck).
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
#ifdef __linux__
#include <linux/magic.h>
#include <sys/vfs.h>
#endif
#include <time.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/store_int.h"

const char *const store_table_names[T_COUNT] = {
    "meta",  "recs",  "ids",   "latest",   "tags",  "expiry",  "quota", "peers",
    "dyads", "mail",  "peerstat", "names", "handles", "trust", "mine",
};

/* ---------------------------------------------------------------------------------- */
/* Errors and small helpers                                                            */

int
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

void
store_rinfo_from(struct rinfo *r, const struct envelope *env, const struct record *rec)
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

/* The map's growth under MDB_WRITEMAP: an eighth of the map, within these bounds; halved
 * down to STORE_WM_STEP_FLOOR while the disk refuses the blocks. */
#define STORE_WM_STEP_MIN (8ull << 20)
#define STORE_WM_STEP_MAX (256ull << 20)
#define STORE_WM_STEP_FLOOR (64ull << 10)

static bool
store_space_error(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG;
}

/* store_reserve gives the file blocks for [0, to) (posix_fallocate: the blocks are the
 * file system's promise that writing them through the map needs no more room). Returns 0
 * or an errno value. */
static int
store_reserve(struct store *s, uint64_t to)
{
    int fd, rc;

    if (to <= s->reserved)
        return 0;
    if (mdb_env_get_fd(s->env, &fd) != 0)
        return EBADF;
    do
        rc = posix_fallocate(fd, (off_t)s->reserved, (off_t)(to - s->reserved));
    while (rc == EINTR);
    if (rc == 0)
        s->reserved = to;
    return rc;
}

static uint64_t
store_round_page(const struct store *s, uint64_t n)
{
    return (n + s->page_size - 1) / s->page_size * s->page_size;
}

/* The next map size under MDB_WRITEMAP, its blocks reserved: one step, or a smaller one
 * when the disk refuses; 0 and *err when even the smallest step does not fit. */
static uint64_t
store_wm_next(struct store *s, int *err)
{
    uint64_t step = s->map_size / 8, next;
    int rc;

    step = step < STORE_WM_STEP_MIN ? STORE_WM_STEP_MIN : step;
    step = step > STORE_WM_STEP_MAX ? STORE_WM_STEP_MAX : step;
    for (;; step /= 2) {
        next = s->map_size + step > s->opts.map_max ? s->opts.map_max : s->map_size + step;
        next = next / s->page_size * s->page_size;
        if (next <= s->map_size) {
            *err = PULL_ERR_STORE_FULL;
            return 0;
        }
        if ((rc = store_reserve(s, next)) == 0)
            return next;
        if (!store_space_error(rc) || step <= STORE_WM_STEP_FLOOR) {
            log_warn("store: cannot reserve %llu KiB for the map: %s",
                     (unsigned long long)(next >> 10), strerror(rc));
            *err = store_space_error(rc) ? PULL_ERR_STORE_FULL : PULL_ERR_IO;
            return 0;
        }
    }
}

/* Another process grew the map: adopt its size. Needs no transaction active here. */
static int
store_adopt_mapsize(struct store *s)
{
    int rc;

    if (s->rtxn_busy || s->committing) /* a commit may be running on another thread */
        return PULL_ERR_AGAIN;
    store_drop_rtxn(s);
    if ((rc = mdb_env_set_mapsize(s->env, 0)) != 0)
        return rc;
    if ((rc = store_refresh_mapsize(s)) != 0)
        return rc;
    return s->writemap ? store_reserve(s, s->map_size) : 0;
}

int
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

void
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

/* Grows the map (up to map_max): doubles it, or under MDB_WRITEMAP by one step whose
 * blocks are reserved first. Called with no transaction active. */
static int
store_grow(struct store *s)
{
    uint64_t next;
    int rc;

    if (s->rtxn_busy || s->committing)
        return PULL_ERR_STORE_FULL; /* can't resize under a reader; refuse the write */
    if (s->map_size >= s->opts.map_max)
        return PULL_ERR_STORE_FULL;
    if (s->writemap) {
        if ((next = store_wm_next(s, &rc)) == 0)
            return rc;
    } else {
        next = s->map_size > s->opts.map_max / 2 ? s->opts.map_max : s->map_size * 2;
    }
    store_drop_rtxn(s);
    if ((rc = mdb_env_set_mapsize(s->env, (size_t)next)) != 0)
        return store_xlate(rc);
    if ((rc = store_refresh_mapsize(s)) != 0)
        return store_xlate(rc);
    log_info("store: map grown to %llu KiB", (unsigned long long)(s->map_size >> 10));
    return 0;
}

uint64_t
store_last_page(struct store *s)
{
    MDB_envinfo info;

    return mdb_env_info(s->env, &info) == 0 ? (uint64_t)info.me_last_pgno : 0;
}

/* store_grow_ahead: see store_int.h. A map that is full when a commit runs costs that
 * commit a second run (its transaction is aborted, the map grown, the batch written
 * again): during a catch-up nearly every commit ran twice before this. */
void
store_grow_ahead(struct store *s, uint64_t room)
{
    for (int steps = 0; steps < 16; steps++) {
        uint64_t used = (store_last_page(s) + 1) * s->page_size;
        if (used + room <= s->map_size || store_grow(s) != 0)
            return;
    }
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

    if (store_space_error(rc))
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

/* store_write_once runs fn in one write transaction and commits it. What needs the map to
 * change size first is not done here but told in *need (the transaction is then aborted and
 * PULL_ERR_AGAIN returned): STORE_NEED_GROW (the map is full), STORE_NEED_ADOPT (another
 * process grew it), STORE_NEED_RESERVE (the map reaches past the reserved blocks). It reads
 * of s only what no reader changes, so it may run on a thread of its own (store_commit_run).
 * Returns 0 or a PULL_ERR_*. */
int
store_write_once(struct store *s, write_fn fn, void *arg, int *need)
{
    MDB_txn *txn = NULL;
    int rc;

    *need = STORE_NEED_NONE;
    /* The map reaches past the reserved blocks only if another process grew it and the
     * blocks for that could not be had: no write until they can (SIGBUS otherwise). */
    if (s->writemap && s->reserved < s->map_size) {
        *need = STORE_NEED_RESERVE;
        return PULL_ERR_AGAIN;
    }
    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc == MDB_MAP_RESIZED) {
        *need = STORE_NEED_ADOPT;
        return PULL_ERR_AGAIN;
    }
    if (rc != 0)
        return store_xlate(rc);
    rc = fn(s, txn, arg);
    if (rc == 0)
        rc = mdb_txn_commit(txn); /* frees txn, also on failure */
    else
        mdb_txn_abort(txn);
    if (rc == MDB_MAP_FULL) {
        *need = STORE_NEED_GROW;
        return PULL_ERR_AGAIN;
    }
    if (rc != 0 && !(rc < 0 && rc > -100)) {
        log_warn("store: write failed: %s", mdb_strerror(rc));
        return store_write_error(s, rc);
    }
    return store_xlate(rc);
}

/* store_make_room does what store_write_once asked for in need. Needs no transaction open
 * in the process. Returns 0 (write again) or a PULL_ERR_*. */
int
store_make_room(struct store *s, int need)
{
    int rc;

    switch (need) {
    case STORE_NEED_GROW:
        return store_grow(s);
    case STORE_NEED_ADOPT:
        rc = store_adopt_mapsize(s);
        return store_xlate(rc);
    case STORE_NEED_RESERVE:
        return store_reserve(s, s->map_size) == 0 ? 0 : PULL_ERR_STORE_FULL;
    default:
        return 0;
    }
}

/* store_write runs fn in a write transaction and commits. When the map is full, it aborts,
 * grows the map and runs fn again from the start: fn must keep its effects in the
 * transaction and in arg (which it resets at its start), never in s. */
int
store_write(struct store *s, write_fn fn, void *arg)
{
    for (int resized = 0;;) {
        int need, rc = store_write_once(s, fn, arg, &need);

        if (rc != PULL_ERR_AGAIN || need == STORE_NEED_NONE)
            return rc;
        if (need == STORE_NEED_ADOPT && resized++ >= 3)
            return PULL_ERR_AGAIN;
        if ((rc = store_make_room(s, need)) != 0)
            return rc;
    }
}

/* ---------------------------------------------------------------------------------- */
/* Open and close                                                                      */

void
store_opts_init(struct store_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->map_size = 0; /* see store_map_initial */
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

int
store_counters_save(struct store *s, MDB_txn *txn, const struct counters *c)
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
    if ((rc = mdb_dbi_open(txn, store_table_names[T_META], MDB_CREATE, &s->dbi[T_META])) != 0)
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
        if ((rc = mdb_dbi_open(txn, store_table_names[t], MDB_CREATE, &s->dbi[t])) != 0)
            return rc;
    }
    return counters_load(s, txn);
}

/* True where overwriting a file's allocated blocks needs no new ones, so that a map whose
 * blocks are reserved can't fault for room: ext2/3/4, XFS, tmpfs. Not on copy-on-write file
 * systems (btrfs, ZFS, bcachefs), network or FUSE file systems, or anything unknown. */
static bool
store_fs_in_place(const char *dir)
{
#ifdef __linux__
    struct statfs f;

    if (statfs(dir, &f) != 0)
        return false;
    switch ((unsigned long)f.f_type) {
    case EXT4_SUPER_MAGIC:
    case XFS_SUPER_MAGIC:
    case TMPFS_MAGIC:
        return true;
    default:
        return false;
    }
#else
    (void)dir;
    return false;
#endif
}

/* The map asked for at open: opts.map_size if set; else STORE_MAP_DEFAULT, or under
 * MDB_WRITEMAP the file as it is (its blocks were reserved when it grew), at least one
 * step. LMDB raises it to the pages in use. */
static uint64_t
store_map_initial(const struct store *s, const char *dir)
{
    char path[PATH_MAX];
    struct stat st;
    uint64_t map = s->opts.map_size;

    if (!s->writemap) {
        map = map != 0 ? map : STORE_MAP_DEFAULT;
        return map > s->opts.map_max ? s->opts.map_max : map;
    }
    if (map == 0)
        map = STORE_WM_STEP_MIN;
    if ((size_t)snprintf(path, sizeof(path), "%s/data.mdb", dir) < sizeof(path) &&
        stat(path, &st) == 0 && (uint64_t)st.st_size > map)
        map = (uint64_t)st.st_size;
    return map > s->opts.map_max ? s->opts.map_max : map;
}

/* Under MDB_WRITEMAP, right after mdb_env_open (which made the file as long as the map,
 * with holes): reserves the map's blocks, or shrinks the map towards the pages in use
 * until the disk has room for it. Nothing has written through the map yet. Returns 0, or
 * an errno value when not even the pages in use can be reserved. */
static int
store_wm_settle(struct store *s)
{
    MDB_envinfo info;
    uint64_t used, want;
    int rc;

    if ((rc = mdb_env_info(s->env, &info)) != 0)
        return rc;
    used = ((uint64_t)info.me_last_pgno + 1) * s->page_size;
    want = info.me_mapsize;
    while ((rc = store_reserve(s, want)) != 0) {
        if (!store_space_error(rc) || want <= used)
            return rc;
        want = want - used < 2 * STORE_WM_STEP_FLOOR ? used
                                                      : store_round_page(s, used + (want - used) / 2);
    }
    if (want != info.me_mapsize && (rc = mdb_env_set_mapsize(s->env, (size_t)want)) != 0)
        return rc;
    return 0;
}

/* Creates and opens the environment, with MDB_WRITEMAP if s->writemap. */
static int
store_env_open(struct store *s, const char *dir, unsigned flags)
{
    uint64_t map = store_round_page(s, store_map_initial(s, dir));
    int rc;

    if (map < 16 * s->page_size)
        map = 16 * s->page_size;
    if (s->writemap)
        flags |= MDB_WRITEMAP;
    s->reserved = 0;
    if ((rc = mdb_env_create(&s->env)) != 0 || (rc = mdb_env_set_maxdbs(s->env, T_COUNT)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, (size_t)map)) != 0)
        return rc;
    if ((rc = mdb_env_open(s->env, dir, flags, 0600)) != 0) {
        log_error("store: cannot open %s: %s", dir, mdb_strerror(rc));
        return rc;
    }
    if (s->writemap && (rc = store_wm_settle(s)) != 0) {
        log_warn("store: cannot reserve the map's blocks (%s): writing with pwrite",
                 strerror(rc));
        mdb_env_close(s->env);
        s->env = NULL;
        s->writemap = false;
        return store_env_open(s, dir, flags & ~(unsigned)MDB_WRITEMAP);
    }
    return 0;
}

int
store_open(const char *dir, const struct store_opts *opts, struct store **out)
{
    struct store *s = NULL;
    /* MDB_NORDAHEAD (MADV_RANDOM on the map): a fault maps one page, not a readahead
     * window. With readahead the page cache holds the file in large folios, and a commit
     * that dirties one 4 KiB page through the map has the whole folio written back: a 100k
     * import wrote 2.43 GB to the disk with readahead, 1.48 GB without (same rate, same
     * cold start: 1.5 s to a ready pulld over a 100k store either way). */
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
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
    if (s->opts.map_max == 0)
        s->opts.map_max = STORE_MAP_MAX_DEFAULT;
    if (s->opts.max_per_author == 0)
        s->opts.max_per_author = STORE_MAX_PER_AUTHOR_DEFAULT;
    if (s->opts.max_peers == 0)
        s->opts.max_peers = STORE_MAX_PEERS_DEFAULT;
    s->level = STORE_LEVEL_NONE;
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
    s->writemap = !s->opts.no_writemap && store_fs_in_place(dir);
    if ((rc = store_env_open(s, dir, flags)) != 0)
        goto out;
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
    if (s->writemap)
        log_info("store: writes go through the map, %llu KiB reserved",
                  (unsigned long long)(s->reserved >> 10));
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
    /* The map is a MAP_SHARED view of the file (read-only, or writable with MDB_WRITEMAP):
     * dropping our page table entries leaves the data in the page cache (a dirty page stays
     * dirty there, to be written back), and the next access maps it again with a minor
     * fault. Nothing is lost, and since the pages come back on access this is safe even
     * while another transaction of this thread holds pointers. */
    if (madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0) {
        log_warn("store: madvise: %s", strerror(errno));
        return PULL_ERR_IO;
    }
    return 0;
}
