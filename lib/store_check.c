/*
 * store_check: checking a store that may be damaged, with pread before LMDB maps the file
 * (the list of checks is below): in full (store_check) or its file and meta pages only
 * (store_precheck, which store_open runs). store_int.h has the rooms.
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
        rc = mdb_dbi_open(txn, store_table_names[t], 0, &dbi[t]);
        if (rc == MDB_NOTFOUND && t != T_META) {
            dbi[t] = 0;
            continue; /* made at the next store_open */
        }
        if (rc != 0 || (rc = mdb_stat(txn, dbi[t], &st[t])) != 0)
            return ck_fail(k, "table %s: %s", store_table_names[t], mdb_strerror(rc));
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
int
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
