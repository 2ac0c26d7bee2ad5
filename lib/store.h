/*
 * store: the node's LMDB store of signed records, their indexes, and the small tables of
 * peers, dyads and sealed mail.
 *
 * One LMDB environment per node directory (data.mdb + lock.mdb). Records are stored as the
 * exact envelope bytes that were verified; everything else is an index over them. Tables
 * (LMDB named databases; integers big-endian so byte order is numeric order):
 *
 *   meta    "schema" -> u32 schema version (STORE_SCHEMA); "stats" -> counters
 *   recs    created(8) || id(32)             -> envelope bytes
 *   ids     id(32)                           -> created(8)
 *   latest  author(32) || slot(16)           -> seq(8) || id(32) || expires(8) || created(8)
 *   tags    tag                              -> created(8) || id(32), sorted duplicates
 *   expiry  expires(8) || id(32)             -> (empty)
 *   quota   author(32)                       -> live(u32) || tombstones(u32)
 *   peers, dyads, mail   key(32)             -> opaque value bytes
 *   peerstat  node key(32)                   -> the peers row's statistics (see Peers)
 *   names, handles, trust key(32)            -> opaque value bytes (daemon/people.h)
 *
 * Records are keyed by time (created || id), not by their random id: B-tree inserts of
 * random keys touch a different leaf each time and are many times slower. Getting a record
 * by id is two lookups (ids, then recs). An author's records are listed through latest
 * (author || slot covers them all, one per slot), so there is no separate author index:
 * every table written per record costs a page copy per commit, and the fewer tables a
 * record touches the faster the ingest (see pull-bench ingest).
 *
 * Invariants, true after every committed transaction:
 *   - every stored record has exactly one entry in recs, ids, latest, expiry, one per tag
 *     in tags, and is counted in quota and in the stats counters;
 *   - for each (author, slot) exactly one version is stored, the one record_replaces()
 *     prefers, and latest points to it. Older versions are deleted from every table when
 *     a newer one is stored; a newer version arriving later replaces, an older or equal one
 *     is refused (PULL_ERR_STALE). A withdrawn record is stored like any other (it is the
 *     tombstone), so a replay of the version it withdrew stays refused until the tombstone
 *     expires and is swept - by which time the replay has expired too;
 *   - an author has at most max_per_author live (not withdrawn) records and at most
 *     max_per_author tombstones. Records past their expiry count until store_sweep removes
 *     them, so the daemon sweeps regularly.
 *
 * Threads and transactions. A struct store is used from one thread (pulld's loop thread):
 * all writes happen there, one write transaction at a time. Read transactions are short:
 * each call opens one and ends it before returning. The bytes an iteration callback
 * receives point into the LMDB map and are valid only during that callback: copy what you
 * keep (store_get copies for you). A callback must not write to the store (the map may be
 * resized by a write, which needs no transaction open); it may read (store_get, ...).
 *
 * Map size. When a write finds the map full (MDB_MAP_FULL), the transaction is aborted,
 * the map grown with no transaction active, and the whole batch retried, up to
 * opts.map_max. A write that still does not fit, or that the disk refuses (ENOSPC, EDQUOT,
 * EFBIG; or a short write - which LMDB reports as EIO - while the file system has under
 * 32 MiB free or the file is at RLIMIT_FSIZE), fails with PULL_ERR_STORE_FULL; nothing of
 * it is stored, the store stays readable, and writes work again once there is room.
 *
 * Writes through the map. Where the file system overwrites allocated blocks in place (ext4,
 * XFS, tmpfs) and opts.no_writemap is not set, the store opens with MDB_WRITEMAP: LMDB
 * writes dirty pages straight into the shared map instead of malloc'ing a copy of each
 * (which it keeps for reuse until the store closes: 44 MB of heap for ever after one
 * 2,048-record batch) and pwrite'ing it. A page of a hole the file system can't fill would
 * then be SIGBUS, not an error, so the map never reaches past the blocks the file holds:
 * the file is allocated (posix_fallocate) up to the map's end before the map is set, and
 * the map grows in steps (an eighth of it, 8 MiB to 256 MiB, smaller steps when the disk
 * has less room) rather than doubling. A step the disk refuses is PULL_ERR_STORE_FULL like
 * a refused write. The file on disk is then the map: used pages plus at most one step. On
 * copy-on-write file systems (btrfs, ZFS, ...) an overwrite needs new blocks, so there, and
 * when the allocation fails at open, the store writes with pwrite as before.
 *
 * Durability. A write call returns only after its transaction committed. With the default
 * STORE_SYNC_FULL, LMDB syncs data pages, then the meta page, on every commit: a record
 * acknowledged survives kill -9 and power loss. STORE_SYNC_DATA syncs the data pages and
 * leaves the meta page to the next commit (or store_sync): kill -9 loses nothing, a power
 * loss may undo the last transaction but never corrupts. STORE_SYNC_NONE (MDB_NOSYNC, for
 * tests and benchmarks) still survives kill -9 of the process (the bytes are in the
 * kernel's page cache when commit returns), not a power loss. Each flush costs milliseconds
 * whatever the batch holds, so write in big batches (store.c has the measurements).
 *
 * Budget. With opts.max_bytes set, the envelope bytes stored (store_stats' bytes, a counter
 * kept with the data: checking it costs nothing) stay under that budget. A commit that
 * leaves them above it evicts records, in the same transaction, down to STORE_BUDGET_LOW of
 * the budget (so that evictions come in rounds, not one per commit):
 *   - records whose author opts.keep says to keep (pulld: its own key and the people it
 *     deals with) are never evicted, and are never refused for the budget;
 *   - the other authors ("strangers") are levelled: records are taken from the author
 *     holding the most records (live and tombstones) first, its oldest-created first,
 *     until every stranger holds at most some level L - a flood of throwaway authors can
 *     push the level down, but a stranger holding fewer records than the level loses none;
 *   - a record of the commit itself that the round would take is refused instead
 *     (PULL_ERR_QUOTA): it was never stored, so it is never reported.
 * After a round, until the bytes fall well below the budget again, a stranger's record that
 * would raise its author's count above the level is refused at once (PULL_ERR_QUOTA, see
 * store_budget_level): the store refuses a new stranger's record rather than evict
 * something worth more. Evicted ids are reported like swept ones (store_commit.evicted).
 * docs/DECISIONS.md has the trade-off.
 *
 * Peers. The peers table holds at most opts.max_peers rows. Each row has statistics kept
 * by the store (struct store_peer_stats: versioned, first and last seen, sightings,
 * sessions and connected time as the engine notes them, records it gave). Writing a new
 * key into a full table first deletes the least valuable row (store_peer_value, then the
 * oldest last_seen), reported through store_commit.peer_evicted: a flood of one-shot
 * identities replaces one-shot rows, not the peers that came back or gave records.
 *
 * Damage. LMDB trusts its file: a truncated data.mdb or a damaged page makes it read
 * outside the map (SIGBUS) or follow garbage pointers (SIGSEGV). store_check (pulld runs it
 * before store_open) verifies the file before anything maps it: size, both meta pages, and
 * every B-tree page reachable from the current meta (store_check.c has the list of checks).
 * store_open itself runs the cheap part of it (size and meta pages). Values that LMDB hands
 * out are bounds-checked by their readers (a record that no longer decodes is skipped).
 *
 * Errors. Every LMDB and system error is translated to a PULL_ERR_* code: PULL_ERR_NOT_FOUND
 * (no such key), PULL_ERR_STORE_FULL, PULL_ERR_SCHEMA (store written by a newer pull),
 * PULL_ERR_NOMEM, PULL_ERR_IO, PULL_ERR_AGAIN (reader slots exhausted), PULL_ERR_STORE
 * (anything else: corruption, bad file, ...).
 */
#ifndef PULL_STORE_H
#define PULL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/ident.h"
#include "lib/record.h"

#define STORE_SCHEMA 1
#define STORE_MAP_DEFAULT (1ull << 30)      /* 1 GiB */
#define STORE_MAP_MAX_DEFAULT (16ull << 30) /* 16 GiB */
#define STORE_MAX_PER_AUTHOR_DEFAULT 256
#define STORE_KV_MAX (1u << 20) /* largest peers/dyads/mail value */
#define STORE_BATCH_MAX 8192    /* most items in one store_put_batch/store_put_opened */
#define STORE_MAX_PEERS_DEFAULT 1024
#define STORE_BUDGET_LOW(max) ((max) - (max) / 32) /* an eviction round stops there */
#define STORE_LEVEL_NONE UINT32_MAX                /* store_budget_level: no refusals */

struct store;

enum store_sync {
    STORE_SYNC_FULL = 0, /* default: durable on commit (data sync, then meta sync) */
    STORE_SYNC_NONE = 1, /* MDB_NOSYNC: survives a process crash, not a power loss */
    STORE_SYNC_DATA = 2, /* MDB_NOMETASYNC: data synced on commit, the meta page with the
                          * next commit: a power loss may undo the last transaction */
};

struct store_opts {
    uint64_t map_size;       /* initial map size in bytes; 0: STORE_MAP_DEFAULT, or with
                              * MDB_WRITEMAP the file's size (at least one step) */
    uint64_t map_max;        /* the map never grows beyond this; 0: STORE_MAP_MAX_DEFAULT */
    uint32_t max_per_author; /* live records (and tombstones) per author; 0: default 256 */
    enum store_sync sync;
    bool no_writemap;   /* never MDB_WRITEMAP (see Writes through the map above) */
    uint64_t max_bytes; /* budget of envelope bytes stored (see Budget above); 0: none */
    /* keep(keep_ctx, author): true if author's records are never evicted nor refused for
     * the budget. Called inside write transactions: it must not use the store. NULL: keep
     * nobody. */
    bool (*keep)(void *ctx, const uint8_t author[32]);
    void *keep_ctx;
    uint32_t max_peers; /* rows of the peers table; 0: STORE_MAX_PEERS_DEFAULT */
    /* The kinds whose tags the tags table indexes (store_iter_tag): bit 1 << kind. 0: every
     * kind (the default). A record's tags cost a random-keyed put each per commit, and the
     * tags table was a fifth of a store's pages: pulld indexes attestations only, the one
     * kind it queries by tag, and its search index serves tags for everything else. */
    uint32_t tag_kinds;
};

/* store_opts_init fills o with the defaults. */
void store_opts_init(struct store_opts *o);

/* store_open opens (creating if needed, mode 0700 for the directory and 0600 for the files)
 * the store in directory dir. opts may be NULL for the defaults. It clears stale reader
 * slots left by dead processes (mdb_reader_check), creates the tables of a new store and
 * checks the schema version of an existing one (PULL_ERR_SCHEMA if it is newer than
 * STORE_SCHEMA). Opening does work independent of the number of records. On success *out
 * owns the store; release it with store_close. */
int store_open(const char *dir, const struct store_opts *opts, struct store **out);

/* store_check verifies the store in directory dir without trusting it, and writes a
 * one-line reason into why (whylen bytes) when it refuses. A missing data.mdb is a new
 * store (0). Refused (PULL_ERR_STORE): a data.mdb shorter than two pages (an empty file
 * where a store was), a meta page that is not one (magic, version, flags, page size), two
 * meta pages whose transaction ids are not consecutive, a file shorter than the pages the
 * meta points to, a B-tree page anywhere in the tree that is not what its parent says
 * (its own page number, its kind, its node offsets and sizes, its children's numbers, the
 * tree's depth, the page and entry counts the meta gives), a page reached twice, a page
 * both in a tree and on the free list, record counters that do not match the tables, and
 * a sample of the oldest and newest records that does not decode. It reads the file with
 * pread (never maps it), under a read transaction so that a running pulld can't reuse the
 * pages it reads; the time is linear in the store's size: 100-200 ms for 100,000 records
 * (a 140 MB file) on the development VM, a tenth of what pulld then spends building its
 * search index. Other errors: PULL_ERR_IO, PULL_ERR_NOMEM. */
int store_check(const char *dir, char *why, size_t whylen);

/* store_close closes the store and frees it. store_close(NULL) does nothing. */
void store_close(struct store *s);

/* store_sync forces committed data to disk (fdatasync). Only useful with STORE_SYNC_NONE;
 * with the default every commit is already durable. */
int store_sync(struct store *s);

/* store_trim drops the pages of the store's memory map from this process's resident set
 * (they stay in the kernel's page cache; the next read maps them again). Reading the whole
 * store (an index built at start, a full export, an import) otherwise leaves every page of
 * the file counted in pulld's RSS. Safe at any time on the store's thread. Returns 0 or
 * PULL_ERR_IO. */
int store_trim(struct store *s);

/* One envelope to store (store_put_batch). */
struct store_item {
    /* in */
    const uint8_t *bytes; /* envelope bytes; must stay valid during the call */
    size_t len;
    /* out */
    int result; /* 0: stored (new); PULL_ERR_DUPLICATE, PULL_ERR_STALE, PULL_ERR_QUOTA,
                 * PULL_ERR_EXPIRED or the validation error of envelope_open */
    uint8_t id[RECORD_ID_BYTES]; /* the record id, unless envelope parsing failed */
    bool has_id;
    bool replaced; /* result == 0 and an older version was deleted: */
    uint8_t replaced_id[RECORD_ID_BYTES];
};

/* store_put_batch verifies each item with envelope_open(now_s) - outside any transaction -
 * then stores the valid ones in one write transaction, in order, and commits. n is at most
 * STORE_BATCH_MAX (else PULL_ERR_TOO_BIG); each commit waits for the disk, so batches of
 * a few thousand records ingest fastest (store.c has the numbers). Per item,
 * result says what happened. Items are applied in order, so one item may replace a record
 * stored by an earlier item of the same batch: the ids stored by a batch are the items with
 * result 0, the ids deleted are their replaced_id, and applying both lists in item order
 * gives the new state (an id can appear as stored and, later, as replaced).
 * Returns 0 once the transaction committed (even if every item was refused), or a negative
 * code for the whole batch (PULL_ERR_STORE_FULL, PULL_ERR_NOMEM, ...): then nothing of the
 * batch was stored and the item results must be ignored. Records evicted for the budget
 * are not reported here (store_commit reports them). */
int store_put_batch(struct store *s, struct store_item *items, size_t n, uint64_t now_s);

/* One already verified record (store_put_opened). */
struct store_opened {
    /* in: a verified envelope and its decoded record, as envelope_open produced them; both
     * must stay valid during the call (for store_commit, until store_commit_end). rec may
     * be NULL: the store decodes env's record again itself, one at a time, so a caller
     * holding many verified records need not keep each decoded (4.4 KB) */
    const struct envelope *env;
    const struct record *rec;
    /* in, optional: the peer that sent it (NULL: none). Once it is stored, that peer's row
     * in the peers table (if it has one) counts it (store_peer_stats.records). */
    const uint8_t *from;
    /* out: as in struct store_item */
    int result;
    bool replaced;
    uint8_t replaced_id[RECORD_ID_BYTES];
};

/* store_put_opened stores records whose signatures the caller already verified (with
 * envelope_open), so verification can run elsewhere (another thread). The store trusts
 * env and rec to match; it only refuses records already expired at now_s
 * (PULL_ERR_EXPIRED) besides the rules of store_put_batch. Same transaction, ordering and
 * return rules as store_put_batch. */
int store_put_opened(struct store *s, struct store_opened *items, size_t n, uint64_t now_s);

/* store_get appends a copy of the envelope of record id to out. Returns 0,
 * PULL_ERR_NOT_FOUND, or out's error (PULL_ERR_NOMEM, PULL_ERR_TOO_BIG). */
int store_get(struct store *s, const uint8_t id[static RECORD_ID_BYTES], struct pull_wb *out);

/* store_has returns 0 if record id is stored, PULL_ERR_NOT_FOUND if not. */
int store_has(struct store *s, const uint8_t id[static RECORD_ID_BYTES]);

/* store_latest reports the stored version of (author, slot): its seq, id and expiry (any
 * output may be NULL). Returns 0 or PULL_ERR_NOT_FOUND. */
int store_latest(struct store *s, const uint8_t author[static 32],
                 const uint8_t slot[static RECORD_SLOT_BYTES], uint64_t *seq,
                 uint8_t id[RECORD_ID_BYTES], uint64_t *expires);

/* store_count returns the number of stored records (tombstones included). */
uint64_t store_count(const struct store *s);

/* store_prefix_each calls fn with the id of every stored record whose id starts with prefix,
 * in id order, until fn returns non-zero (returned as is). Returns 0 at the end or the
 * store's error. (An ambiguous prefix's candidates, like git's.) */
int store_prefix_each(struct store *s, const struct ident_prefix *prefix,
                      int (*fn)(void *ctx, const uint8_t id[RECORD_ID_BYTES]), void *ctx);

/* store_resolve_prefix finds the one stored record whose id starts with prefix and writes
 * its id. Returns 0, PULL_ERR_NOT_FOUND, or PULL_ERR_AMBIGUOUS if two or more match. */
int store_resolve_prefix(struct store *s, const struct ident_prefix *prefix,
                         uint8_t id[RECORD_ID_BYTES]);

/* Iteration. fn gets each record's id and envelope bytes (valid only during the call).
 * It returns 0 to go on; any other value stops the iteration, which then returns it
 * (so return a positive value to stop early, a negative PULL_ERR_* to fail).
 * The iterations return 0 when they ran to the end, fn's value, or a PULL_ERR_* code. */
typedef int (*store_rec_fn)(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env,
                            size_t len);

/* store_iter_time visits records with created >= since, oldest first. */
int store_iter_time(struct store *s, uint64_t since, store_rec_fn fn, void *ctx);

/* A place in the time order, for store_iter_resume: zeroed, it is before the oldest
 * record. The key is the store's (created || id) of the last record visited. */
#define STORE_CURSOR_KEY (8 + RECORD_ID_BYTES)
struct store_cursor {
    uint8_t key[STORE_CURSOR_KEY];
    bool started;
};

/* store_iter_resume visits, oldest first, at most max records that come after cur in the
 * time order (records stored meanwhile before it are not visited), each in its own read
 * transaction's view, and leaves cur at the last one visited. Returns 0 once it reached
 * the end, 1 if it stopped after max records, else as the other iterations. */
int store_iter_resume(struct store *s, struct store_cursor *cur, size_t max, store_rec_fn fn,
                      void *ctx);

/* store_iter_tag visits the records carrying tag (exact match), oldest first, of the kinds
 * opts.tag_kinds indexes (and any other a store opened with other opts indexed). Like every
 * iteration here it includes tombstones (kind withdrawn) that carry the tag, and records
 * past their expiry not yet swept: callers that show records filter on kind and expiry. */
int store_iter_tag(struct store *s, const char *tag, store_rec_fn fn, void *ctx);

/* store_iter_author visits the records of author (tombstones included), oldest first. */
int store_iter_author(struct store *s, const uint8_t author[static 32], store_rec_fn fn, void *ctx);

/* store_author_count reports how many live records and tombstones author has stored. */
int store_author_count(struct store *s, const uint8_t author[static 32], uint32_t *live,
                       uint32_t *tombstones);

/* store_author_count_seen is store_author_count while a commit may be running on another
 * thread (store_commit_run): *seen tells whether the counts read already include what that
 * commit changes (it committed before they were read). */
int store_author_count_seen(struct store *s, const uint8_t author[static 32], uint32_t *live,
                            uint32_t *tombstones, bool *seen);

/* Keys of all records, for set reconciliation: no envelope is read. Same stop rules. */
typedef int (*store_key_fn)(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES]);

/* store_iter_ids visits every stored id in id (byte) order, with its created time. */
int store_iter_ids(struct store *s, store_key_fn fn, void *ctx);

/* store_iter_keys visits every stored (created, id) with created >= since, in time order
 * (created, then id). */
int store_iter_keys(struct store *s, uint64_t since, store_key_fn fn, void *ctx);

/* store_sweep deletes up to max records (tombstones included) whose expires <= now_s,
 * earliest expiry first, in one write transaction, so a call does bounded work. After the
 * commit it calls fn (if not NULL) with each deleted id (created is the record's). Returns
 * the number deleted (max means there may be more: call again), or a PULL_ERR_* code, in
 * which case nothing was deleted and fn was not called. */
int store_sweep(struct store *s, uint64_t now_s, size_t max, store_key_fn fn, void *ctx);

struct store_stats {
    uint64_t records;    /* stored records, tombstones included */
    uint64_t by_kind[8]; /* indexed by enum record_kind; [RECORD_WITHDRAWN] = tombstones */
    uint64_t bytes;      /* envelope bytes stored */
    uint64_t map_size;   /* current map size in bytes */
    uint64_t map_used;   /* bytes of the map in use (pages up to the last used one) */
    uint64_t map_max;    /* the map will not grow beyond this */
    bool writemap;       /* LMDB writes through the map (MDB_WRITEMAP) */
    uint64_t max_bytes;  /* the budget (0: none) */
    uint32_t level;      /* store_budget_level */
    uint64_t evicted;    /* records evicted for the budget since store_open */
    uint64_t peers;      /* rows in the peers table */
};

/* store_stats fills st. The counts come from counters kept with the data (no scan). */
int store_stats(struct store *s, struct store_stats *st);

/* store_budget_level returns the most records (live and tombstones) a stranger may hold
 * after the last eviction round, while the store is near its budget, or STORE_LEVEL_NONE.
 * A record that would raise a stranger's count above it is refused (PULL_ERR_QUOTA); an
 * edit of a record it holds (same count) is not. pulld checks it before a record joins its
 * batch, as it checks record_admit. */
uint32_t store_budget_level(const struct store *s);

/* Key-value tables, keyed by 32 bytes (a node key, a dyad id, a mail id, an author key, a
 * record id). Dyads, mail, names, handles and trust are opaque bytes; peers rows have a
 * layout (below). */
enum store_table {
    STORE_PEERS = 0,
    STORE_DYADS = 1,
    STORE_MAIL = 2,
    STORE_NAMES = 3,   /* my petnames, by author key */
    STORE_HANDLES = 4, /* replaced record ids -> their (author, slot) */
    STORE_TRUST = 5,   /* checked evidence of completed dyads, by attestation id */
    STORE_MINE = 6,    /* the node's own records: key slot || 16 zero bytes, value the
                          envelope of the slot's latest version, kept past its expiry
                          (daemon/node_mine.c) */
};

/*
 * Peer statistics. Next to each peers row (the engine's opaque value: see proto/syncer.h,
 * SYNCER_TABLE_PEERS) the store keeps what ranks it, in its own table ("peerstat", same
 * key). Stored form, version 1, integers big-endian (45 bytes):
 *
 *   version u8 = 1 || first_seen_s u64 || last_seen_s u64 || seen u32 || sessions u32 ||
 *   connected_s u64 || records u32 || last_record_s u64
 *
 * Later versions append fields; a reader takes those it knows and ignores the rest, and
 * refuses a version 0. The statistics follow the row: created with it, deleted with it.
 */
#define STORE_PEER_STATS_VERSION 1
#define STORE_PEER_STATS_LEN 45

struct store_peer_stats {
    uint64_t first_seen_s; /* when the row was first written */
    uint64_t last_seen_s;  /* when it was last written */
    uint32_t seen;         /* writes of the row (the engine writes one per session that
                              begins, and one per known peer when it leaves) */
    uint32_t sessions;     /* sessions that ended, as the engine notes them */
    uint64_t connected_s;  /* their total duration in seconds */
    uint32_t records;      /* valid records it sent that were stored (store_opened.from) */
    uint64_t last_record_s;
};

/* store_peer_stats_decode / _encode: the stored form above. decode returns 0 or
 * PULL_ERR_MALFORMED; encode writes STORE_PEER_STATS_LEN bytes into out. */
int store_peer_stats_decode(const uint8_t *val, size_t len, struct store_peer_stats *st);
void store_peer_stats_encode(const struct store_peer_stats *st,
                             uint8_t out[static STORE_PEER_STATS_LEN]);

/* store_peer_stats_add adds a note n to st: counters add up (saturating), first_seen_s takes
 * the earliest non-zero, last_seen_s and last_record_s the latest. */
void store_peer_stats_add(struct store_peer_stats *st, const struct store_peer_stats *n);

/* store_peer_value is how much a row is worth keeping: its sightings (seen + sessions,
 * capped at 64), plus the number of bits of `records`, plus the number of bits of
 * connected_s / 60. A one-shot session is worth 1; a peer that came back, sent us records
 * or stayed connected for long is worth more. The peers table evicts the lowest value
 * first (then the oldest last_seen_s); the engine should rank what it loads the same way. */
uint32_t store_peer_value(const struct store_peer_stats *st);

/* store_peers_iter visits every peers row with its statistics (zero if it has none), in
 * key order; same callback rules as above. */
typedef int (*store_peer_fn)(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len,
                             const struct store_peer_stats *st);
int store_peers_iter(struct store *s, store_peer_fn fn, void *ctx);

/* store_kv_put stores val (len <= STORE_KV_MAX, may be 0) under key, replacing any value,
 * in its own committed write transaction (pulld batches its writes with store_commit).
 * Peers: a new key in a full table first evicts the least valuable row (store.h, Peers);
 * the row's statistics count the write (seen, first and last seen). */
int store_kv_put(struct store *s, enum store_table t, const uint8_t key[static 32], const void *val,
                 size_t len);

/* store_kv_get appends a copy of the value of key to out (NULL: only check that it exists).
 * Returns 0 or PULL_ERR_NOT_FOUND. */
int store_kv_get(struct store *s, enum store_table t, const uint8_t key[static 32],
                 struct pull_wb *out);

/* store_kv_del deletes key. Returns 0 or PULL_ERR_NOT_FOUND. */
int store_kv_del(struct store *s, enum store_table t, const uint8_t key[static 32]);

/* One key-value write of a store_commit: put val (len bytes, val may be NULL if len is 0)
 * under key, or delete key (deleting a missing key is not an error). With note set (table
 * STORE_PEERS only), neither: the note is added to the statistics of key's row
 * (store_peer_stats_add), if there is a row. */
struct store_kv_op {
    enum store_table table;
    uint8_t key[32];
    const void *val;
    size_t len;
    bool del;
    const struct store_peer_stats *note;
};

/* Everything one write transaction does. */
struct store_commit {
    struct store_opened *recs; /* in/out as for store_put_opened (at most STORE_BATCH_MAX) */
    size_t nrecs;
    const struct store_kv_op *kv; /* applied after the records, in order */
    size_t nkv;
    size_t sweep_max;   /* also delete up to this many expired records (as store_sweep) */
    store_key_fn swept; /* called after the commit with each swept id (may be NULL) */
    void *swept_ctx;
    size_t nswept; /* out: how many were swept */
    /* called after the commit with each id evicted for the budget (may be NULL): records
     * that had been stored before this commit, or that an item of it had replaced */
    store_key_fn evicted;
    void *evicted_ctx;
    size_t nevicted; /* out */
    /* called after the commit with the key of each peers row deleted to make room */
    void (*peer_evicted)(void *ctx, const uint8_t key[32]);
    void *peer_evicted_ctx;
    size_t npeers_evicted;         /* out */
    struct store_commit_state *st; /* store_commit_begin to store_commit_end */
};

/* store_commit applies c in ONE write transaction and commits: the records (the rules of
 * store_put_opened), then the sweep of expired records, then the key-value writes, then
 * (if the bytes stored are over opts.max_bytes) an eviction round. It is
 * how pulld writes: everything its loop stores in one turn costs one commit (one flush).
 * Returns 0 once committed (per-record results in c->recs), or a negative code for the
 * whole transaction (PULL_ERR_STORE_FULL, ...): then nothing of it is stored, the record
 * results must be ignored and swept is not called. An empty commit does nothing. */
int store_commit(struct store *s, struct store_commit *c, uint64_t now_s);

/* The same commit in three steps, for a caller that runs the transaction on a thread of its
 * own while its loop keeps reading the store:
 *   store_commit_begin checks and readies c (on the loop); 0, or an error and nothing to
 *     end. c->st is then set (NULL when c is empty: run and end do nothing);
 *   store_commit_run writes and commits (on any thread): it changes nothing of s that reads
 *     use, and calls only opts.keep (which must then be safe to call from that thread);
 *   store_commit_end(rc, the run's result) adopts the result into s and calls c's
 *     callbacks (on the loop). It returns what store_commit would, or PULL_ERR_AGAIN when
 *     the map had to change size first: end did that, and the caller runs and ends c again.
 * From begin to the end that does not return PULL_ERR_AGAIN (which frees c->st), the
 * caller writes nothing else, and the map keeps its size: a reader that finds another
 * process grew it gets PULL_ERR_AGAIN. */
struct store_commit_state;
int store_commit_begin(struct store *s, struct store_commit *c, uint64_t now_s);
int store_commit_run(struct store *s, struct store_commit *c);
int store_commit_end(struct store *s, struct store_commit *c, int rc);

/* store_kv_resolve_prefix finds the one key of table t that starts with prefix (an id
 * prefix). Returns 0, PULL_ERR_NOT_FOUND or PULL_ERR_AMBIGUOUS. */
int store_kv_resolve_prefix(struct store *s, enum store_table t, const struct ident_prefix *prefix,
                            uint8_t key[32]);

/* store_kv_iter visits every (key, value) in key order; same callback rules as above. */
typedef int (*store_kv_fn)(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len);
int store_kv_iter(struct store *s, enum store_table t, store_kv_fn fn, void *ctx);

#endif
