/*
 * match: local search. Parse a query, score records against it, keep the best.
 *
 * Words. Text splits into words and each word is folded by lib/fold.h (Unicode case
 * folding, compatibility forms, accents, ß = ss): the index and the query use the same two
 * functions, so "CAFÉ" finds "Café" and "strasse" finds "Straße". A folded query word
 * keeps at most MATCH_WORD_MAX bytes; a record's word is kept to MATCH_TERM_MAX bytes (so
 * no query word equals a longer one, but prefixes still match).
 *
 * Fields. Three: tags (the words of every tag but `lang-xx`), title, and body with terms.
 *
 * How a record's word t matches query word w, strongest first (the record's language L is
 * lib/stem.h's stem_lang_of):
 *   EXACT   t equals w;
 *   STEM    t and w have the same Snowball stem in L ("bicycles" ~ "bicycle");
 *   PREFIX  w has MATCH_PREFIX_MIN characters or more and t starts with it;
 *   TYPO    w has no digit and MATCH_TYPO1_MIN (5) characters or more, and t, or t's stem,
 *           is within Damerau-Levenshtein distance 1 of w, or of w's stem in L (2 when w
 *           has MATCH_TYPO2_MIN (9) characters or more); a word of 4 characters matches
 *           with one swap of two adjacent characters ("rsut" ~ "rust") and nothing else.
 * Each class has a weight (EXACT 8, STEM 7, PREFIX 4, TYPO 3, in eighths). For each query
 * word and field, v = the largest weight x term frequency among the record's matching words
 * (frequency capped: tags 3, title 3, body 15).
 *
 * Relevance is BM25F (Robertson & Zaragoza) over the three fields: for each query word,
 *   tf' = sum over fields of W_f x v_f / 8 / (1 - b_f + b_f x len_f / avglen_f)
 *   part = idf x tf' x (k1 + 1) / (k1 + tf')
 * with W = 3 / 2.5 / 1 (tags / title / body), b = 0.3 / 0.5 / 0.75, k1 = 1.2; len_f is
 * the field's number of words, avglen_f its mean over the live records, and
 * idf = ln(1 + (N - df + 0.5) / (df + 0.5)) with N the number of live records and df the
 * number of them matching the word EXACT or STEM, or by any class if none does. The parts
 * of the words that are not weak are added up in query order (floats, the same code for the index
 * and the reference, so both give the same bits).
 *
 * Weak words. Common words ("the", "for", "de", "la", ...) and words that say what the
 * searcher wants ("need", "looking", "suche", "cherche", "busco", "offer", "biete", ...)
 * are weak when the query has another word: they are then left out of the score (a query
 * of weak words only is scored on them). A query whose words say it looks for something
 * (need words) has intent offer, one that offers has intent need.
 *
 * Score. A 32-bit number, compared as such:
 *   bits 27..31  the number of non-weak query words the record matches (any class; a
 *                record matching none is not a match),
 *   bits 22..26  the number of them it matches EXACT, STEM or PREFIX (so typo matches rank
 *                below exact and stemmed ones),
 *   bits  0..21  the relevance x freshness x complementarity x trust, x 1000, capped;
 *     freshness = 1 + 0.25 x 30 / (30 + age in days at now_s),
 *     complementarity = 1.25 when the record's kind is the query's intent (a need-phrased
 *     query prefers offers and the other way round), else 1,
 *     trust = the query's trust hook (match_trust_fn) / 1000, 1 without a hook.
 * 0 means excluded. Ties are broken by freshness (newer created first), then by the
 * caller's ref (match_hit_cmp). A query without words scores 1 for every record that passes
 * the filters.
 *
 * Filters (a record failing one scores 0):
 *   - kind: equal to the query's kind if set; withdrawn records never match;
 *   - tags: every query tag (folded) is one of the record's tags (folded);
 *   - author: the author key starts with the query's prefix;
 *   - allow: the query's allow hook (match_allow_fn) keeps the author;
 *   - now_s: if set, records with expires <= now_s are excluded.
 *
 * The statistics (N, mean lengths, df) belong to the collection: lib/search.c keeps them in
 * its index; match_score, which sees one record, scores it as a collection of one. Everything
 * here is pure and allocation-free.
 */
#ifndef PULL_MATCH_H
#define PULL_MATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/ident.h"
#include "lib/record.h"

#define MATCH_WORDS_MAX 16 /* query words kept (more are refused) */
#define MATCH_WORD_MAX 32  /* bytes of a folded query word (longer words are cut) */
#define MATCH_TERM_MAX 33  /* bytes a record's folded word is kept to */
#define MATCH_PREFIX_MIN 3 /* characters of a query word that also matches as a prefix */
#define MATCH_SWAP_MIN 4   /* characters of a query word that matches with one swap */
#define MATCH_TYPO1_MIN 5  /* characters of a query word that matches at distance 1 */
#define MATCH_TYPO2_MIN 9  /* ... at distance 2 */

enum { MATCH_F_TAG = 0, MATCH_F_TITLE = 1, MATCH_F_BODY = 2, MATCH_FIELDS = 3 };

/* Match classes, weakest first (0: no match). */
enum { MATCH_C_TYPO = 1, MATCH_C_PREFIX = 2, MATCH_C_STEM = 3, MATCH_C_EXACT = 4 };

/* Term frequency caps per field, and the field lengths kept (words; longer count as this). */
#define MATCH_TF_TAG 3
#define MATCH_TF_TITLE 3
#define MATCH_TF_BODY 15
#define MATCH_LEN_TAG 255
#define MATCH_LEN_TITLE 255
#define MATCH_LEN_BODY 2047

/* The trust hook: a multiplier in thousandths for an author (its first 8 key bytes,
 * big-endian), e.g. from the trust distance; at most 1000 (trust only lowers a score, so
 * that match_final_bound holds). NULL in the query means 1000. */
typedef uint32_t (*match_trust_fn)(void *ctx, uint64_t author8);

/* A filter on authors (e.g. `pull search --trusted N`): false leaves the author's records
 * out. NULL in the query keeps every author. */
typedef bool (*match_allow_fn)(void *ctx, uint64_t author8);

struct match_query {
    uint8_t nwords;
    uint8_t wlen[MATCH_WORDS_MAX];                   /* bytes */
    uint8_t wchars[MATCH_WORDS_MAX];                 /* characters */
    uint8_t wtypo[MATCH_WORDS_MAX];                  /* distance allowed: 0, 1, 2 */
    bool wswap[MATCH_WORDS_MAX];                     /* 4 characters: one swap allowed */
    bool wstop[MATCH_WORDS_MAX];                     /* weak if another word is not */
    char words[MATCH_WORDS_MAX][MATCH_WORD_MAX + 1]; /* folded, NUL-terminated */
    uint8_t kind;                                    /* 0: any kind but withdrawn */
    uint8_t intent;                                  /* kind the words ask for, or 0 */
    uint8_t need_words, offer_words;                 /* words saying need / offer */
    uint8_t ntags;
    char tags[RECORD_TAGS_MAX][RECORD_TAG_MAX + 2]; /* folded; all must be on the record */
    bool has_author;
    struct ident_prefix author;
    uint64_t now_s; /* 0: don't check expiry (and age 0 for freshness) */
    match_trust_fn trust;
    void *trust_ctx;
    match_allow_fn allow; /* a filter like author's, by the author's first 8 bytes */
    void *allow_ctx;
};

/* match_query_init empties q (no words, any kind, no tags, no author, no expiry check). */
void match_query_init(struct match_query *q);

/* match_query_add_words splits text into words and adds the new ones (duplicates are
 * dropped). Returns 0, or PULL_ERR_TOO_BIG if the query would exceed MATCH_WORDS_MAX words
 * (the words that fit are kept). */
int match_query_add_words(struct match_query *q, const char *text);

/* match_query_add_tag adds a required tag (folded, like the tags of records). Returns 0,
 * PULL_ERR_TAG if it is empty or longer than RECORD_TAG_MAX bytes once folded, or
 * PULL_ERR_TAGS if there are already RECORD_TAGS_MAX. A tag given twice is kept once. */
int match_query_add_tag(struct match_query *q, const char *tag);

/* match_query_set_author restricts results to authors whose text id starts with prefix
 * (IDENT_PREFIX_MIN..IDENT_TEXT_LEN base32 characters). Returns 0 or PULL_ERR_INVAL. */
int match_query_set_author(struct match_query *q, const char *prefix);

/* match_query_weak reports whether word w of q is weak (see above). */
bool match_query_weak(const struct match_query *q, unsigned w);

/* match_filters reports whether rec passes q's filters (kind, tags, author, expiry). */
bool match_filters(const struct match_query *q, const struct record *rec);

/* match_score returns rec's score for q scored as a collection of one record (N = 1, its
 * own lengths as the means), 0 if it is excluded or matches no non-weak word. Nonzero
 * exactly when the index would return rec for q. */
uint32_t match_score(const struct match_query *q, const struct record *rec);

/* ---- The pieces of the score, shared by lib/search.c and the reference scorer --------- */

/* The features of one record for a query: per word, v per field and the best class. */
struct match_doc {
    uint8_t v[MATCH_WORDS_MAX][MATCH_FIELDS];
    uint8_t cls[MATCH_WORDS_MAX];
    uint16_t len[MATCH_FIELDS]; /* words per field, capped at MATCH_LEN_* */
    uint8_t lang;
};

/* match_doc_of computes rec's features for q by brute force (no filter applied). */
void match_doc_of(const struct match_query *q, const struct record *rec, struct match_doc *d);

/* Collection statistics. */
struct match_stats {
    uint32_t n;                      /* live records */
    uint64_t len_sum[MATCH_FIELDS];  /* sums of their (capped) field lengths */
};

/* What a query needs besides itself: idf per word and the length normalisation tables. */
struct match_prep {
    float idf[MATCH_WORDS_MAX];
    float norm_tag[MATCH_LEN_TAG + 1];
    float norm_title[MATCH_LEN_TITLE + 1];
    float norm_body[MATCH_LEN_BODY + 1];
};

/* match_prep_init fills the normalisation tables from s (idf all 0). */
void match_prep_init(struct match_prep *p, const struct match_stats *s);

/* match_prep_idf sets word w's idf from n and its df (as defined above). */
void match_prep_idf(struct match_prep *p, unsigned w, uint32_t n, uint32_t df);

/* match_gain returns a word's BM25F part without its idf, tf' (k1 + 1) / (k1 + tf'), for
 * field values v and lengths len. */
float match_gain(const struct match_prep *p, const uint8_t v[MATCH_FIELDS],
                 const uint16_t len[MATCH_FIELDS]);

/* match_word_part returns word w's BM25F part: its idf x match_gain. */
float match_word_part(const struct match_prep *p, unsigned w, const uint8_t v[MATCH_FIELDS],
                      const uint16_t len[MATCH_FIELDS]);

/* match_final makes the score from the sum of the parts, the number of non-weak words
 * matched (any class) and of those matched EXACT/STEM/PREFIX, and the record's kind,
 * created time and author8. 0 if any is 0. */
uint32_t match_final(const struct match_query *q, float sum, unsigned any, unsigned strong,
                     uint8_t kind, uint64_t created, uint64_t author8);

/* match_final_bound returns a score that match_final with these arguments never exceeds,
 * whatever the created time and author (to skip records that can't make the top). */
uint32_t match_final_bound(const struct match_query *q, float sum, unsigned any, unsigned strong,
                           uint8_t kind);

/* match_doc_score scores d (features of a record of this kind, created and author8) with
 * p, the same way lib/search.c does; filters are not checked. */
uint32_t match_doc_score(const struct match_query *q, const struct match_prep *p,
                         const struct match_doc *d, uint8_t kind, uint64_t created,
                         uint64_t author8);

/* match_class returns the class (0 if none) of the record's folded word t[0..tn) for query
 * word w, in language lang; t_stem is t's stem in lang, w_stem w's (NULL: computed here). */
unsigned match_class(const struct match_query *q, unsigned w, const char *w_stem, const char *t,
                     size_t tn, const char *t_stem);

/* match_typo reports whether a[0..an) and b[0..bn) (code points) are within
 * Damerau-Levenshtein distance k (optimal string alignment), or, with swap_only, differ by
 * exactly one swap of two adjacent code points. */
bool match_typo(const uint32_t *a, size_t an, const uint32_t *b, size_t bn, unsigned k,
                bool swap_only);

/* match_bag returns a 64-bit bag of the characters of s[0..n): two words within distance k
 * differ in at most 2k bits of their bags (a cheap filter before match_typo). */
uint64_t match_bag(const char *s, size_t n);

/* match_field_next iterates over the words of a field's text s[0..n): from *off, folds the
 * next word into out (MATCH_TERM_MAX + 1 bytes) and returns its length, or 0 at the end.
 * Words that fold to nothing are skipped. */
size_t match_field_next(const char *s, size_t n, size_t *off, char *out);

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

/* match_topk_floor returns the score a hit must reach to be kept (it must also beat the
 * worst kept one on ties): 0 while fewer than cap are held. */
uint32_t match_topk_floor(const struct match_topk *t);

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

/* The byte rules of match_related (search itself splits and folds words with lib/fold.h):
 * a word byte is an ASCII letter or digit or any byte of a non-ASCII character; words
 * compare ASCII-case-insensitively. */
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

/* FNV-1a of a word: the slot of the small open-addressed word tables (match.c, search.c). */
static inline uint32_t
match_word_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

#endif
