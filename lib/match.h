/*
 * match: local search. Parse a query, score decoded records against it, keep the best.
 *
 * A query has words (free text), an optional kind, required tags and an optional author
 * prefix. Words are split on anything that is not an ASCII letter or digit (bytes >= 0x80
 * count as letters, so UTF-8 words stay whole) and ASCII-lowercased; matching is
 * ASCII-case-insensitive and byte-exact beyond ASCII.
 *
 * Filters (a record failing one scores 0, i.e. is excluded):
 *   - kind: equal to the query's kind if set; withdrawn records never match;
 *   - tags: every query tag is one of the record's tags (exact);
 *   - author: the author key starts with the query's prefix;
 *   - now_s: if set, records with expires <= now_s are excluded.
 * Relevance, for each query word, the best match in each field, added up:
 *   exact tag 64, tag token (a part of a tag like "open-source") 40, tag prefix 20;
 *   title word 32, title prefix 12; body or terms word 8, prefix 3.
 * "Prefix" means the record's word starts with the query word, and needs a query word of
 * at least MATCH_PREFIX_MIN bytes. The sum is multiplied by the number of query words that
 * matched somewhere, so covering more of the query beats a single strong match. A query
 * with words where none matches scores 0; a query without words scores 1 for every record
 * that passes the filters. Ties are broken by freshness (newer created first), then by the
 * caller's ref (match_hit_cmp).
 *
 * Everything here is pure and allocation-free: scoring walks the record's strings once per
 * field with a table-driven tokenizer, so a search can afford it over 100,000 records.
 */
#ifndef PULL_MATCH_H
#define PULL_MATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/ident.h"
#include "lib/record.h"

#define MATCH_WORDS_MAX 16 /* query words kept (more are refused) */
#define MATCH_WORD_MAX 32  /* bytes of a query word (longer words are cut) */
#define MATCH_PREFIX_MIN 3 /* shortest query word that also matches as a prefix */

/* Weights (see above). */
enum {
    MATCH_W_TAG = 64,
    MATCH_W_TAG_TOKEN = 40,
    MATCH_W_TAG_PREFIX = 20,
    MATCH_W_TITLE = 32,
    MATCH_W_TITLE_PREFIX = 12,
    MATCH_W_BODY = 8,
    MATCH_W_BODY_PREFIX = 3,
};

struct match_query {
    uint8_t nwords;
    uint8_t wlen[MATCH_WORDS_MAX];
    char words[MATCH_WORDS_MAX][MATCH_WORD_MAX + 1]; /* lowercased, NUL-terminated */
    uint8_t kind;                                    /* 0: any kind but withdrawn */
    uint8_t ntags;
    char tags[RECORD_TAGS_MAX][RECORD_TAG_MAX + 1]; /* all must be on the record */
    bool has_author;
    struct ident_prefix author;
    uint64_t now_s; /* 0: don't check expiry */
};

/* match_query_init empties q (no words, any kind, no tags, no author, no expiry check). */
void match_query_init(struct match_query *q);

/* match_query_add_words splits text into words and adds the new ones (duplicates are
 * dropped). Returns 0, or PULL_ERR_TOO_BIG if the query would exceed MATCH_WORDS_MAX words
 * (the words that fit are kept). */
int match_query_add_words(struct match_query *q, const char *text);

/* match_query_add_tag adds a required tag (ASCII-lowercased). Returns 0, PULL_ERR_TAG if
 * it is empty or longer than RECORD_TAG_MAX, or PULL_ERR_TAGS if there are already
 * RECORD_TAGS_MAX. A tag given twice is kept once. */
int match_query_add_tag(struct match_query *q, const char *tag);

/* match_query_set_author restricts results to authors whose text id starts with prefix
 * (IDENT_PREFIX_MIN..IDENT_TEXT_LEN base32 characters). Returns 0 or PULL_ERR_INVAL. */
int match_query_set_author(struct match_query *q, const char *prefix);

/* match_score returns rec's relevance for q, 0 if rec is excluded. */
uint32_t match_score(const struct match_query *q, const struct record *rec);

/* A scored record: ref is the caller's handle (an index, a store position). */
struct match_hit {
    uint32_t score;
    uint64_t created;
    uint64_t ref;
};

/* match_hit_cmp orders hits best first: higher score, then newer created, then lower ref.
 * Usable with qsort. */
int match_hit_cmp(const void *a, const void *b);

/* Keeps the best `cap` hits seen, in caller-provided storage (a min-heap). */
struct match_topk {
    struct match_hit *hits;
    uint32_t cap;
    uint32_t n;
};

/* match_topk_init uses storage[0..cap) for the hits; cap 0 keeps nothing. */
void match_topk_init(struct match_topk *t, struct match_hit *storage, uint32_t cap);

/* match_topk_push offers a hit: kept if fewer than cap are held or it beats the worst.
 * Hits with score 0 are ignored. O(log cap). */
void match_topk_push(struct match_topk *t, const struct match_hit *h);

/* match_topk_sort sorts the kept hits best first into t->hits[0..t->n); after it, push no
 * more. */
void match_topk_sort(struct match_topk *t);

/* match_related reports whether a need asks for what an offer gives, for "attract"
 * notifications: offer must be of kind offer and need of kind need, and they share a tag,
 * or enough significant words of their titles and tags (words of 3+ bytes that are not
 * common filler like "looking", "the", "pour"; a word of 4+ bytes also matches a longer
 * word it starts: "mentor" ~ "mentoring"): 2 shared words, or 1 if the need has only one
 * significant word. The authors are not compared: callers skip their own records. */
bool match_related(const struct record *offer, const struct record *need);

/* The tokenizer's two rules, shared with the search index (lib/search.c) so that both
 * split text into the same words: a word byte is an ASCII letter or digit or any byte of a
 * non-ASCII character; words compare ASCII-case-insensitively. */
static inline bool
match_is_word(uint8_t c)
{
    return c >= 0x80 || (uint8_t)((c | 0x20) - 'a') < 26 || (uint8_t)(c - '0') < 10;
}

static inline uint8_t
match_lower(uint8_t c)
{
    return (uint8_t)(c - 'A') < 26 ? (uint8_t)(c | 0x20) : c;
}

#endif
