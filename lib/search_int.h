/*
 * search_int: what the search index's rooms share (internal to lib/search*.c; search.h is
 * the manual).
 *
 * The rooms.
 *   search.c        the index object (new, clear, free, its size), the reading of posting
 *                   lists and the queries: the iterators, the window-by-window merge, the
 *                   rows and their scores, search_index_rank, and search_fetch. The hot
 *                   path of a query (post_next, the windows, the scoring) stays in this one
 *                   file, static inline where it was.
 *   search_build.c  what writes the index: the dictionary (terms and stem groups, their
 *                   hash tables), posting lists appended to, entries (key table, expiry
 *                   heap, partial entries), search_index_add and search_index_build.
 *
 * The structures of the index are here because both rooms read them; only search_build.c
 * changes the dictionary and the entries, and a query changes nothing but its scratch
 * (rows, prep) and the expiry of entries (search_expire).
 */
#ifndef PULL_SEARCH_INT_H
#define PULL_SEARCH_INT_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/match.h"
#include "lib/search.h"
#include "lib/stem.h"

/* A dictionary term: a distinct folded word, or a whole folded tag (tag = 1). */
struct term {
    uint8_t *post; /* postings, see search.h */
    uint32_t plen, pcap;
    uint32_t last;  /* last entry posted */
    uint32_t count; /* entries posted */
    uint64_t bag;   /* match_bag of the text (words) */
    uint32_t langs; /* languages whose stem group lists this word */
    uint8_t len, nchars, tag;
    char text[MATCH_TERM_MAX + 1];
};

/* A stem group: the words whose stem in `lang` is `text`. */
struct group {
    uint64_t bag;
    uint32_t first; /* member index + 1, 0 = none */
    uint8_t lang, len, nchars;
    char text[MATCH_TERM_MAX + 1];
};

struct member {
    uint32_t term;
    uint32_t next; /* member index + 1 */
};

/* efl: flags in bits 0-1, language in bits 2-6, kind in bits 7-9. */
enum { E_DEAD = 1, E_PARTIAL = 2 };
#define EFL_LANG(x) (((x) >> 2) & 0x1f)
#define EFL_KIND(x) (((x) >> 7) & 0x7)

/* The times live in arrays of their own (ecreated, eexpires): a query reads the created
 * time of many entries, and 4-byte steps through a dense array are a few cache lines where
 * whole entries would be one line (and often one TLB entry) each. */
struct entry {
    uint64_t id8, author8, key8;
};

struct search_index {
    uint8_t hkey[crypto_shorthash_KEYBYTES];
    struct term *terms;
    uint32_t nterms, cterms;
    uint32_t *tslots; /* term index + 1, 0 = empty */
    uint32_t tcap;    /* power of two */
    struct group *groups;
    uint32_t ngroups, cgroups;
    uint32_t *gslots;
    uint32_t gcap;
    struct member *members;
    uint32_t nmembers, cmembers;
    struct entry *ents;
    uint32_t *ecreated, *eexpires;
    uint16_t *efl;
    uint32_t *elen; /* tag words | title words << 8 | body words << 16 */
    uint32_t nents, cents;
    uint32_t *kslots; /* entry index + 1 by key8 */
    uint32_t kcap;
    uint32_t *heap; /* entries by expiry, a min-heap (dead ones leave when they surface) */
    uint32_t nheap, cheap;
    uint32_t *partial; /* entries indexed partially */
    uint32_t npartial, cpartial;
    uint8_t *rows; /* the candidate rows of a query */
    size_t rows_cap;
    struct match_prep *prep;
    size_t live, dead;
    uint64_t len_sum[MATCH_FIELDS];
    uint32_t lang_live[STEM_LANGS];
    size_t post_bytes;
};

static inline void
elen_of(const struct search_index *ix, uint32_t e, uint16_t len[MATCH_FIELDS])
{
    uint32_t x = ix->elen[e];

    len[0] = (uint16_t)(x & 0xff);
    len[1] = (uint16_t)((x >> 8) & 0xff);
    len[2] = (uint16_t)(x >> 16);
}

/* Grows the array p of *cap elements of elem bytes to hold at least need (doubling from
 * 16). Returns the array (p itself when it is big enough), or NULL when out of memory (p is
 * then unchanged and still owned by the caller); *cap is updated on success. */
void *search_grow(void *p, uint32_t *cap, uint32_t need, size_t elem);

/* search_build.c */

/* Finds the term (tag, text[0..len)). Returns its index, or UINT32_MAX if absent (then
 * *slot, when not NULL, is where it would go). */
uint32_t search_term_find(const struct search_index *ix, uint8_t tag, const char *text, size_t len,
                          uint32_t *slot);

/* Finds the stem group of text[0..len) in lang. Returns its index, or UINT32_MAX if absent
 * (then *slot, when not NULL, is where it would go). */
uint32_t search_group_find(const struct search_index *ix, uint8_t lang, const char *text,
                           size_t len, uint32_t *slot);

/* Retires every entry expired at now_s (0: none). */
void search_expire(struct search_index *ix, uint64_t now_s);

#endif
