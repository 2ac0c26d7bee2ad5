/*
 * search: the in-memory index behind `pull search`, so that ranking 100,000 records takes
 * milliseconds without holding them decoded (or touching their LMDB pages).
 *
 * The index is an inverted one over the words of lib/match.h (split and folded by
 * lib/fold.h, one function for the index and the query). Each distinct word has one posting
 * list of the entries (records) that contain it, each posting the entry's delta as a LEB128
 * varint and the word's frequency in the three fields (tags, title, body): `(delta << 1)`
 * alone for the common case "once, in the body", else `(delta << 1) | 1` and a byte of
 * frequencies (tags 2 bits, title 2 bits, body 4 bits, capped like match.h). Whole tags
 * (folded) are terms of their own, for the tag filter. A common word costs about a byte per
 * record.
 *
 * Stems: for each language the index holds (lib/stem.h), each word seen in a record of that
 * language is a member of the group of its stem there; a query word is stemmed in every
 * language present, and the members of its group match (STEM) the entries of that
 * language. A query word also matches the words it starts (PREFIX) and those within its
 * typo distance, directly or through their stem groups (TYPO), found by scanning the
 * dictionary with cheap length and character-bag filters first.
 *
 * Scores: a query reads, window by window in entry order, the postings of every term
 * matching a query word (search.c says how); per entry they give each word's best class and
 * field values of lib/match.h, and each word's df (entries matched) gives its idf. N, the
 * mean field lengths and the per-language counts are kept up to date as records come and
 * go, and expired entries leave through a heap on expiry before each query, so the
 * statistics count exactly the live records. Every match is counted (the total of "N of M
 * shown"); only those of the (words, words without typo) tiers that can reach the top are
 * scored. The result is exactly what lib/match.h computes by brute force over the same
 * records (match_doc_of, match_doc_score with the same statistics), without decoding
 * anything: tests/unit/test_search.c checks it. Only the kept hits are then fetched and
 * decoded by the caller.
 *
 * Per record the index keeps a small fixed entry (38 bytes: created, expires, 8 bytes of
 * the id (enough to fetch it from the store by time) and of the author (the author filter),
 * a hash of (author, slot) so that a new version retires the old one, kind, language,
 * flags, field lengths), a slot in two hash tables and its postings: about 126 bytes in all
 * for pull-bench's records. A query's candidate rows (a few bytes each) are kept for the
 * next one up to 256 KiB.
 *
 * Bounds. A record adds at most SEARCH_TERMS_PER_RECORD terms, the dictionary holds at
 * most SEARCH_TERMS_MAX terms and the stem groups at most SEARCH_MEMBERS_MAX words (so at
 * most as many groups); a record that doesn't fit entirely is marked partial and is
 * scored at query time by decoding it (through the caller's fetch function), so results
 * stay exact and memory stays bounded whatever peers send. Dead entries (replaced,
 * withdrawn, expired) stay until search_index_needs_rebuild says a rebuild would halve the
 * index.
 *
 * Pure logic: no store or loop here except search_index_build and search_fetch, which read
 * the store through lib/store.h.
 *
 * Where it lives: the index object and the queries in search.c, what writes the index
 * (dictionary, entries, expiry, search_index_add, search_index_build) in search_build.c
 * (lib/search_int.h is what they share).
 */
#ifndef PULL_SEARCH_H
#define PULL_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/match.h"
#include "lib/record.h"
#include "lib/store.h"

#define SEARCH_TERMS_MAX (256u * 1024u) /* dictionary size (words and whole tags) */
#define SEARCH_TERMS_PER_RECORD 256     /* terms indexed per record */
#define SEARCH_MEMBERS_MAX (512u * 1024u) /* (word, language) pairs in stem groups */
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

/* search_index_dead returns how many retired entries wait for the next rebuild. */
size_t search_index_dead(const struct search_index *ix);

/* search_index_needs_rebuild reports whether retired entries make up most of the index. */
bool search_index_needs_rebuild(const struct search_index *ix);

/* search_index_bytes returns the memory held by the index (approximately). */
size_t search_index_bytes(const struct search_index *ix);

/* search_index_query ranks the live entries for q (q->now_s should be set: expired entries
 * are retired first) and writes the best min(limit, SEARCH_LIMIT_MAX) into hits (room for
 * limit), best first, with *n their number. fetch (may be NULL: partial entries are then
 * neither scored nor counted in df) decodes partial entries. Scores are those of lib/match.h
 * over the index's live records. Returns 0 or PULL_ERR_NOMEM. */
int search_index_query(struct search_index *ix, const struct match_query *q, uint32_t limit,
                       search_fetch_fn fetch, void *fetch_ctx, struct search_hit *hits,
                       uint32_t *n);

/* search_index_rank is search_index_query that also sets *total (if not NULL) to the number
 * of entries that match q, kept or not. limit may be 0 (only the count). */
int search_index_rank(struct search_index *ix, const struct match_query *q, uint32_t limit,
                      search_fetch_fn fetch, void *fetch_ctx, struct search_hit *hits, uint32_t *n,
                      uint32_t *total);

/* search_index_stats sets st to the index's collection statistics (live entries, sums of
 * their field lengths), as queries use them after retiring what expired by now_s (0: keep
 * everything). */
void search_index_stats(struct search_index *ix, uint64_t now_s, struct match_stats *st);

/* search_index_build clears ix and indexes every live record of the store at now_s
 * (withdrawn and expired ones are skipped). Returns 0 or the store's / memory error. */
int search_index_build(struct search_index *ix, struct store *s, uint64_t now_s);

/* A build in steps: zeroed before the first step. */
struct search_build {
    struct store_cursor cur;
    size_t visited; /* stored records read so far */
    size_t damaged; /* of them, those that no longer decode (skipped) */
    bool done;
};

/* search_index_build_step goes on with the build: the first step clears ix, each step
 * indexes up to max more stored records in time order, and b->done says when the last one
 * was read. Between steps the index serves queries (over what it holds so far) and takes
 * search_index_add and search_index_remove as usual: a record the build reaches after it
 * was added is not indexed twice. Returns 0 or the store's / memory error (b->done then
 * stays false; the next step resumes after the last record read). */
int search_index_build_step(struct search_index *ix, struct store *s, uint64_t now_s,
                            struct search_build *b, size_t max);

/* search_fetch appends the envelope of the record with this created time and id prefix to
 * out (copied out of the store). Returns 0, PULL_ERR_NOT_FOUND, or the store's error. */
int search_fetch(struct store *s, uint64_t created, uint64_t id8, struct pull_wb *out);

/* search_id8 returns the first 8 bytes of an id or key, big-endian. */
uint64_t search_id8(const uint8_t *id);

#endif
