/*
 * search: the in-memory index behind `pull search`, so that ranking 100,000 records takes
 * milliseconds without holding them decoded (or touching their LMDB pages).
 *
 * The index is an inverted one. Every token of a live record (lib/match.h splits and
 * lowercases text the same way) is a term in one of four fields: whole tags, tokens of
 * multi-token tags ("open" and "source" of "open-source"), title tokens, and body/terms
 * tokens. Each term has a posting list of the entries (records) that contain it, delta
 * encoded as LEB128 varints: a common term costs about one byte per record. Per record the
 * index keeps a small fixed entry: created, expires, kind, 8 bytes of the id (enough to
 * fetch it from the store by time) and of the author (the author filter), and a hash of
 * (author, slot) so that a new version retires the old one.
 *
 * A query finds, for each query word, the terms equal to it or starting with it (prefix
 * matches, MATCH_PREFIX_MIN bytes and more) by scanning the dictionary, walks their
 * postings and adds up the weights of lib/match.h per field, which gives exactly
 * match_score without decoding anything. Only the kept hits are then fetched and decoded
 * by the caller. Tokens longer than MATCH_WORD_MAX bytes are indexed by their first
 * MATCH_WORD_MAX + 1 bytes: no query word can equal them, but prefixes still match.
 *
 * Bounds. A record adds at most SEARCH_TERMS_PER_RECORD terms and the dictionary holds at
 * most SEARCH_TERMS_MAX terms; a record that doesn't fit entirely is marked partial and is
 * scored at query time by decoding it (through the caller's fetch function), so results
 * stay exact and memory stays bounded whatever peers send. Dead entries (replaced,
 * withdrawn, expired) stay until search_index_needs_rebuild says a rebuild would halve the
 * index.
 *
 * Pure logic: no store or loop here except search_index_build and search_fetch, which read
 * the store through lib/store.h.
 */
#ifndef PULL_SEARCH_H
#define PULL_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/match.h"
#include "lib/record.h"
#include "lib/store.h"

#define SEARCH_TERMS_MAX (256u * 1024u) /* dictionary size */
#define SEARCH_TERMS_PER_RECORD 256     /* terms indexed per record */
#define SEARCH_ENTRIES_MAX (16u << 20)  /* records indexed */
#define SEARCH_LIMIT_MAX 10000

struct search_index;

/* A kept result: the caller fetches the record by (created, id8) with search_fetch. */
struct search_hit {
    uint32_t score;
    uint64_t created;
    uint64_t id8;   /* first 8 bytes of the record id, big-endian */
    uint32_t entry; /* index of the entry */
};

/* Fetches and decodes the record of an entry (partial entries are scored this way).
 * Returns 0, or a negative code (the entry is then skipped). */
typedef int (*search_fetch_fn)(void *ctx, uint64_t created, uint64_t id8, struct record *rec);

/* search_index_new makes an empty index. Returns 0 or PULL_ERR_NOMEM. */
int search_index_new(struct search_index **out);

/* search_index_free frees ix; NULL does nothing. */
void search_index_free(struct search_index *ix);

/* search_index_clear empties ix, keeping nothing. */
void search_index_clear(struct search_index *ix);

/* search_index_add indexes a record that just became live (id is its record id). It
 * retires the entry of the previous version of (author, slot) if any; a withdrawn record
 * only retires. Returns 0, or PULL_ERR_NOMEM / PULL_ERR_TOO_BIG (SEARCH_ENTRIES_MAX): the
 * index is then unchanged except that the old version may be retired. */
int search_index_add(struct search_index *ix, const uint8_t id[static RECORD_ID_BYTES],
                     const struct record *rec);

/* search_index_live returns how many entries are live (not retired; expired ones count
 * until a query notices them). */
size_t search_index_live(const struct search_index *ix);

/* search_index_needs_rebuild reports whether retired entries make up most of the index. */
bool search_index_needs_rebuild(const struct search_index *ix);

/* search_index_bytes returns the memory held by the index (approximately). */
size_t search_index_bytes(const struct search_index *ix);

/* search_index_query ranks the live entries for q (q->now_s should be set: expired entries
 * are skipped) and writes the best min(limit, SEARCH_LIMIT_MAX) into hits (room for limit),
 * best first, with *n their number. fetch (may be NULL: partial entries are then skipped)
 * decodes partial entries. Scores equal match_score. Returns 0 or PULL_ERR_NOMEM. */
int search_index_query(struct search_index *ix, const struct match_query *q, uint32_t limit,
                       search_fetch_fn fetch, void *fetch_ctx, struct search_hit *hits,
                       uint32_t *n);

/* search_index_build clears ix and indexes every live record of the store at now_s
 * (withdrawn and expired ones are skipped). Returns 0 or the store's / memory error. */
int search_index_build(struct search_index *ix, struct store *s, uint64_t now_s);

/* search_fetch appends the envelope of the record with this created time and id prefix to
 * out (copied out of the store). Returns 0, PULL_ERR_NOT_FOUND, or the store's error. */
int search_fetch(struct store *s, uint64_t created, uint64_t id8, struct pull_wb *out);

/* search_id8 returns the first 8 bytes of an id or key, big-endian. */
uint64_t search_id8(const uint8_t *id);

#endif
