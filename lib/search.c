#include "lib/search.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/fold.h"
#include "lib/mp.h"
#include "lib/search_int.h"
#include "lib/stem.h"

/*
 * Layout of this file: the index object, the reading of posting lists, the queries, and
 * search_fetch. What writes the index (dictionary, postings appended to, entries, expiry,
 * search_index_add, search_index_build) is in search_build.c; lib/search_int.h is what the
 * two share.
 */

/* A query's row buffer is kept for the next one up to this size. */
#define ROWS_KEEP (256u << 10)

uint64_t
search_id8(const uint8_t *id)
{
    return be64dec(id);
}

void *
search_grow(void *p, uint32_t *cap, uint32_t need, size_t elem)
{
    uint32_t nc = *cap ? *cap : 16;
    void *q;

    while (nc < need) {
        if (nc > UINT32_MAX / 2)
            return NULL;
        nc *= 2;
    }
    if (nc == *cap)
        return p;
    if ((q = realloc(p, (size_t)nc * elem)) == NULL)
        return NULL;
    *cap = nc;
    return q;
}

int
search_index_new(struct search_index **out)
{
    struct search_index *ix;

    *out = NULL;
    if (sodium_init() < 0)
        return PULL_ERR_CRYPTO;
    if ((ix = calloc(1, sizeof(*ix))) == NULL)
        return PULL_ERR_NOMEM;
    randombytes_buf(ix->hkey, sizeof(ix->hkey));
    *out = ix;
    return 0;
}

void
search_index_clear(struct search_index *ix)
{
    for (uint32_t i = 0; i < ix->nterms; i++)
        free(ix->terms[i].post);
    free(ix->terms);
    free(ix->tslots);
    free(ix->groups);
    free(ix->gslots);
    free(ix->members);
    free(ix->ents);
    free(ix->ecreated);
    free(ix->eexpires);
    free(ix->efl);
    free(ix->elen);
    free(ix->kslots);
    free(ix->heap);
    free(ix->partial);
    free(ix->rows);
    free(ix->prep);
    memset(&ix->terms, 0, sizeof(*ix) - offsetof(struct search_index, terms));
}

void
search_index_free(struct search_index *ix)
{
    if (ix == NULL)
        return;
    search_index_clear(ix);
    sodium_memzero(ix->hkey, sizeof(ix->hkey));
    free(ix);
}

size_t
search_index_live(const struct search_index *ix)
{
    return ix->live;
}

size_t
search_index_dead(const struct search_index *ix)
{
    return ix->dead;
}

bool
search_index_needs_rebuild(const struct search_index *ix)
{
    return ix->dead > 4096 && ix->dead > ix->live;
}

size_t
search_index_bytes(const struct search_index *ix)
{
    return sizeof(*ix) + (size_t)ix->cterms * sizeof(struct term) + (size_t)ix->tcap * 4 +
           (size_t)ix->cgroups * sizeof(struct group) + (size_t)ix->gcap * 4 +
           (size_t)ix->cmembers * sizeof(struct member) +
           (size_t)ix->cents * (sizeof(struct entry) + 4 + 4 + 2 + 4) + (size_t)ix->kcap * 4 +
           (size_t)ix->cheap * 4 + (size_t)ix->cpartial * 4 + ix->rows_cap +
           (ix->prep != NULL ? sizeof(*ix->prep) : 0) + ix->post_bytes;
}

/* ---- Postings ---------------------------------------------------------------------- */

/* Walks postings: start with *off = 0, *cur = 0, *k = 0; returns false at the end. */
static inline bool
post_next(const struct term *t, uint32_t *off, uint32_t *cur, uint32_t *k, uint8_t *fb)
{
    uint64_t d = 0;
    uint32_t shift = 0;

    if (*k >= t->count)
        return false;
    while (*off < t->plen) {
        uint8_t b = t->post[(*off)++];
        d |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            break;
        shift += 7;
    }
    if (d & 1)
        *fb = *off < t->plen ? t->post[(*off)++] : 0;
    else
        *fb = 0x10;
    *cur = *k == 0 ? (uint32_t)(d >> 1) : *cur + (uint32_t)(d >> 1);
    (*k)++;
    return true;
}

/* ---- Queries ----------------------------------------------------------------------- */

/*
 * A query is one merge, document at a time, of the posting lists of every term that
 * matches a query word (an iterator per (word, term, class)) in increasing entry order: no
 * per-entry scratch, no random writes, so a query touching most of a million entries reads
 * memory in order. For each entry the iterators on it give each word's field values and
 * class; the entry counts in the df of every word it matches, and if it passes the filters
 * it becomes a row of the candidate buffer with each matched word's gain (match_gain).
 * Once the merge is done the idfs are known: each row's sum is made in query order, and
 * the entry is read (for its created time and author) only if its score can reach the top.
 */

/* An iterator over one term's postings on behalf of one query word. */
struct iter {
    const struct term *t;
    uint32_t off, k, cur;
    uint8_t fb;
    uint8_t cls;
    uint8_t word;
    int8_t lang;  /* only entries of this language, or -1 */
    uint8_t done; /* past its last posting */
};

struct qstate {
    struct search_index *ix;
    const struct match_query *q;
    struct iter *its;
    uint32_t nits, cits;
    uint32_t word_first; /* the current word's first iterator */
    int rc;
    char stems[STEM_LANGS][MATCH_TERM_MAX + 1]; /* the current word's stems */
    uint8_t stem_len[STEM_LANGS];
    uint8_t stem_nc[STEM_LANGS];
    uint64_t stem_bag[STEM_LANGS];
    uint32_t stem_cps[STEM_LANGS][MATCH_TERM_MAX];
};

static const uint8_t class_weight[5] = {0, 3, 4, 7, 8};

static inline bool
iter_next(struct iter *it)
{
    return post_next(it->t, &it->off, &it->cur, &it->k, &it->fb);
}

/* Sets it on its first posting (every iterator has one). */
static void
iter_reset(struct iter *it)
{
    it->off = it->k = it->cur = 0;
    it->done = !iter_next(it);
}

/* Adds an iterator over term t for word w with class cls (entries of lang only if >= 0). */
static void
add_iter(struct qstate *st, const struct term *t, unsigned w, unsigned cls, int lang)
{
    struct iter *it;

    if (st->rc != 0 || t->count == 0)
        return;
    if (st->nits == st->cits) {
        struct iter *n = search_grow(st->its, &st->cits, st->nits + 1, sizeof(*n));
        if (n == NULL) {
            st->rc = PULL_ERR_NOMEM;
            return;
        }
        st->its = n;
    }
    it = &st->its[st->nits++];
    memset(it, 0, sizeof(*it));
    it->t = t;
    it->cls = (uint8_t)cls;
    it->word = (uint8_t)w;
    it->lang = (int8_t)lang;
}

/* Whether the current word already has an iterator over t that covers the entries of
 * lang with class cls or better: a second one would only read the same postings again
 * ("guitar" is its own typo through its stem group). */
static bool
iter_covered(const struct qstate *st, const struct term *t, unsigned cls, int lang)
{
    for (uint32_t i = st->word_first; i < st->nits; i++) {
        const struct iter *it = &st->its[i];
        if (it->t == t && it->cls >= cls && (it->lang < 0 || it->lang == lang))
            return true;
    }
    return false;
}

static void
add_group(struct qstate *st, const struct group *g, unsigned w, unsigned cls, uint32_t skip)
{
    for (uint32_t m = g->first; m != 0; m = st->ix->members[m - 1].next) {
        uint32_t ti = st->ix->members[m - 1].term;
        if (ti != skip &&
            (cls != MATCH_C_TYPO || !iter_covered(st, &st->ix->terms[ti], cls, g->lang)))
            add_iter(st, &st->ix->terms[ti], w, cls, g->lang);
    }
}

static inline bool
bag_close(uint64_t a, uint64_t b, unsigned k, bool swap)
{
    return swap ? a == b : (unsigned)__builtin_popcountll(a ^ b) <= 2 * k;
}

/* Adds the iterators of every term matching query word w, by any class. */
static void
word_iters(struct qstate *st, unsigned w, uint32_t lang_mask)
{
    struct search_index *ix = st->ix;
    const struct match_query *q = st->q;
    const char *word = q->words[w];
    size_t wl = q->wlen[w];
    unsigned k = q->wtypo[w];
    bool swap = q->wswap[w], typo = k > 0 || swap, prefix = q->wchars[w] >= MATCH_PREFIX_MIN;
    uint32_t exact = search_term_find(ix, 0, word, wl, NULL), wc[MATCH_TERM_MAX];
    size_t nwc = fold_cps(word, wl, wc, MATCH_TERM_MAX);
    uint64_t bag = typo ? match_bag(word, wl) : 0;

    st->word_first = st->nits;
    if (exact != UINT32_MAX)
        add_iter(st, &ix->terms[exact], w, MATCH_C_EXACT, -1);
    for (unsigned l = 1; l < STEM_LANGS; l++) {
        uint32_t gi;
        if ((lang_mask & ((uint32_t)1 << l)) == 0)
            continue;
        st->stem_len[l] = (uint8_t)stem_word(l, word, wl, st->stems[l], sizeof(st->stems[l]));
        if (typo) {
            st->stem_nc[l] =
                (uint8_t)fold_cps(st->stems[l], st->stem_len[l], st->stem_cps[l], MATCH_TERM_MAX);
            st->stem_bag[l] = match_bag(st->stems[l], st->stem_len[l]);
        }
        gi = search_group_find(ix, (uint8_t)l, st->stems[l], st->stem_len[l], NULL);
        if (gi != UINT32_MAX)
            add_group(st, &ix->groups[gi], w, MATCH_C_STEM, exact);
    }
    if (!prefix && !typo)
        return;
    for (uint32_t i = 0; i < ix->nterms; i++) {
        const struct term *t = &ix->terms[i];
        if (t->tag || i == exact)
            continue;
        if (prefix && t->len > wl && t->text[0] == word[0] && memcmp(t->text, word, wl) == 0) {
            add_iter(st, t, w, MATCH_C_PREFIX, -1);
            continue; /* a prefix match is stronger than a typo */
        }
        if (typo && (t->nchars > nwc ? t->nchars - nwc : nwc - t->nchars) <= k &&
            bag_close(bag, t->bag, k, swap)) {
            uint32_t tc[MATCH_TERM_MAX];
            size_t ntc = fold_cps(t->text, t->len, tc, MATCH_TERM_MAX);
            if (match_typo(wc, nwc, tc, ntc, k, swap))
                add_iter(st, t, w, MATCH_C_TYPO, -1);
        }
    }
    if (!typo)
        return;
    for (uint32_t i = 0; i < ix->ngroups; i++) {
        const struct group *g = &ix->groups[i];
        uint32_t gc[MATCH_TERM_MAX];
        size_t nsc, ngc;
        if ((lang_mask & ((uint32_t)1 << g->lang)) == 0)
            continue;
        nsc = st->stem_nc[g->lang];
        if ((g->nchars > nsc ? g->nchars - nsc : nsc - g->nchars) > k ||
            !bag_close(st->stem_bag[g->lang], g->bag, k, swap))
            continue;
        ngc = fold_cps(g->text, g->len, gc, MATCH_TERM_MAX);
        if (match_typo(st->stem_cps[g->lang], nsc, gc, ngc, k, swap))
            add_group(st, g, w, MATCH_C_TYPO, UINT32_MAX);
    }
}

static bool
author_ok(const struct match_query *q, uint64_t author8)
{
    unsigned nbits = q->author.nbits < 64 ? q->author.nbits : 64;
    uint64_t want = be64dec(q->author.bytes);
    uint64_t mask = nbits == 0 ? 0 : ~(uint64_t)0 << (64 - nbits);

    return !q->has_author || ((author8 ^ want) & mask) == 0;
}

/* The filters the index can check itself but tags (expired entries were retired before the
 * query). */
static inline bool
entry_ok(const struct search_index *ix, const struct match_query *q, uint32_t e)
{
    uint16_t fl = ix->efl[e];

    if ((fl & (E_DEAD | E_PARTIAL)) != 0 || (q->kind != 0 && EFL_KIND(fl) != q->kind))
        return false;
    if (q->allow != NULL && !q->allow(q->allow_ctx, ix->ents[e].author8))
        return false;
    return !q->has_author || author_ok(q, ix->ents[e].author8);
}

/* Iterators over the query's whole tags, to check that an entry carries them all. */
struct tagset {
    struct iter its[RECORD_TAGS_MAX];
    unsigned n;
    bool done; /* one of them is exhausted (or the tag is on no entry) */
};

static void
tags_init(struct tagset *ts, const struct search_index *ix, const struct match_query *q)
{
    memset(ts, 0, sizeof(*ts));
    for (unsigned i = 0; i < q->ntags; i++) {
        uint32_t ti = search_term_find(ix, 1, q->tags[i], strlen(q->tags[i]), NULL);
        if (ti == UINT32_MAX || !(ts->its[i].t = &ix->terms[ti], iter_next(&ts->its[i]))) {
            ts->done = true;
            return;
        }
        ts->n++;
    }
}

/* Whether entry e carries every query tag (entries must be asked in increasing order). */
static bool
tags_have(struct tagset *ts, uint32_t e)
{
    for (unsigned i = 0; i < ts->n; i++) {
        struct iter *it = &ts->its[i];
        while (it->cur < e) {
            if (!iter_next(it)) {
                ts->done = true;
                return false;
            }
        }
        if (it->cur != e)
            return false;
    }
    return !ts->done;
}

static void
push(struct match_topk *tk, const struct search_index *ix, uint32_t e, uint32_t score)
{
    struct match_hit h = {.score = score, .created = ix->ecreated[e], .ref = e};

    match_topk_push(tk, &h);
}

void
search_index_stats(struct search_index *ix, uint64_t now_s, struct match_stats *st)
{
    search_expire(ix, now_s);
    st->n = (uint32_t)ix->live;
    memcpy(st->len_sum, ix->len_sum, sizeof(st->len_sum));
}

/* A partial entry, decoded for this query. */
struct pdoc {
    uint32_t e;
    bool pass; /* passes the filters */
    struct match_doc d;
};

/*
 * A words query reads its postings window by window: WIN entries at a time, every
 * iterator gives the postings it has in the window (marking the entry in a bitmap and, per
 * entry, the words matched by any class, EXACT/STEM and EXACT/STEM/PREFIX), then the
 * entries marked are taken in order. This is the merge without a heap or a comparison per
 * posting (Lucene's BooleanScorer works in windows of 2048 documents the same way), and
 * the scratch is a few KiB per word whatever the index holds.
 *
 * One pass gives each word's df, the count of matches and how many fall in each (any,
 * strong) tier; a match that passes the filters becomes a row (the entry, its word masks
 * and each matched word's values) unless its tier is already below the limit-th best
 * match's seen so far. Once the idfs and the final lowest tier that can reach the top are
 * known, only the rows of that tier and up are scored, reading an entry's lengths and times
 * (cache misses on a large index) a batch of rows ahead.
 */
#define WIN 4096u
#define WIN_WORDS (WIN / 64)

/* A word's values on an entry: v per field and the best class. */
struct wval {
    uint8_t v[MATCH_FIELDS];
    uint8_t cls;
};

struct win {
    uint64_t bits[WIN_WORDS];                  /* entries matched in this window */
    uint16_t any[WIN], main[WIN], strong[WIN]; /* words matched: any class, >= STEM, >= PREFIX */
    struct wval *vals; /* [word * WIN + entry - base]: valid where `any` has the word */
};

/* What the pass adds up. */
struct wsum {
    uint32_t df_all[MATCH_WORDS_MAX], df_main[MATCH_WORDS_MAX];
    uint32_t tiers[MATCH_WORDS_MAX + 1][MATCH_WORDS_MAX + 1];
    uint32_t count;
};

/* A candidate row, followed by the values of each query word (struct wval, valid for the
 * words in `am`). */
struct row {
    uint32_t e;
    uint16_t am; /* words matched */
    uint8_t any, strong;
};

/* The lowest tier (any << 5 | strong) of the limit best matches counted in ws, 0 if there
 * are fewer; UINT32_MAX for limit 0 (nothing to keep). */
static uint32_t
tier_floor(const struct wsum *ws, uint32_t limit)
{
    uint32_t need = limit, tier = 0;

    if (limit == 0)
        return UINT32_MAX;
    for (int a = MATCH_WORDS_MAX; a >= 0 && need > 0; a--) {
        for (int b = a; b >= 0 && need > 0; b--) {
            uint32_t c = ws->tiers[a][b];
            tier = (uint32_t)a << 5 | (uint32_t)b;
            need = c >= need ? 0 : need - c;
        }
    }
    return need > 0 ? 0 : tier;
}

/* The bits set in x (__builtin_popcount is a libgcc call without -mpopcnt). */
#define B2(n) n, n + 1, n + 1, n + 2
#define B4(n) B2(n), B2(n + 1), B2(n + 1), B2(n + 2)
#define B6(n) B4(n), B4(n + 1), B4(n + 1), B4(n + 2)
static const uint8_t pop8[256] = {B6(0), B6(1), B6(1), B6(2)};
#undef B2
#undef B4
#undef B6

static inline unsigned
pop16(uint16_t x)
{
    return (unsigned)pop8[x & 0xff] + pop8[x >> 8];
}

/* Gives the window [base, base + WIN) the postings of `it` there (with values if vals).
 * The iterator's state is copied into locals for the loop: the stores into the window's
 * byte arrays could alias it, and the compiler would reload it at every posting. */
static inline void
win_feed(struct win *wn, const struct search_index *ix, struct iter *it, uint32_t base,
         struct wval *vals)
{
    const uint8_t *post = it->t->post;
    const uint16_t *efl = ix->efl;
    uint32_t end = base + WIN, plen = it->t->plen, count = it->t->count;
    uint32_t off = it->off, k = it->k, cur = it->cur;
    uint16_t bit = (uint16_t)(1u << it->word);
    uint8_t cw = class_weight[it->cls], cls = it->cls, fb = it->fb;
    int lang = it->lang;
    bool main = cls >= MATCH_C_STEM, strong = cls >= MATCH_C_PREFIX;
    struct wval *wv = vals != NULL ? vals + (size_t)it->word * WIN : NULL;

    if (it->done)
        return;
    while (cur < end) {
        uint32_t i = cur - base, d, shift;
        if (lang < 0 || lang == (int)EFL_LANG(efl[cur])) {
            wn->bits[i >> 6] |= (uint64_t)1 << (i & 63);
            if (wv != NULL) {
                struct wval *v = &wv[i];
                uint8_t a = (uint8_t)(cw * (fb & 3)), b = (uint8_t)(cw * ((fb >> 2) & 3)),
                        c = (uint8_t)(cw * (fb >> 4));
                if ((wn->any[i] & bit) == 0) {
                    v->v[0] = a;
                    v->v[1] = b;
                    v->v[2] = c;
                    v->cls = cls;
                } else {
                    v->v[0] = a > v->v[0] ? a : v->v[0];
                    v->v[1] = b > v->v[1] ? b : v->v[1];
                    v->v[2] = c > v->v[2] ? c : v->v[2];
                    v->cls = cls > v->cls ? cls : v->cls;
                }
            }
            wn->any[i] |= bit;
            if (main)
                wn->main[i] |= bit;
            if (strong)
                wn->strong[i] |= bit;
        }
        /* the next posting, as post_next reads it (never the first one here) */
        if (k >= count) {
            it->done = 1;
            break;
        }
        d = 0;
        shift = 0;
        while (off < plen) {
            uint8_t x = post[off++];
            d |= (uint32_t)(x & 0x7f) << shift;
            if ((x & 0x80) == 0 || (shift += 7) >= 32)
                break;
        }
        if (d & 1)
            fb = off < plen ? post[off++] : 0;
        else
            fb = 0x10;
        cur += d >> 1;
        k++;
    }
    it->off = off;
    it->k = k;
    it->cur = cur;
    it->fb = fb;
}

/* Runs every window of the query's iterators: adds up df, count and tiers into ws and
 * writes the rows of the matches that may reach the limit best (ix->rows, *nrows of
 * rowsz bytes). The window's scratch is left clear. Returns 0 or PULL_ERR_NOMEM. */
static int
win_run(struct search_index *ix, const struct match_query *q, struct qstate *st, struct win *wn,
        struct tagset *ts, struct wsum *ws, uint32_t limit, size_t rowsz, size_t *nrows)
{
    uint32_t base = UINT32_MAX, keep_min = tier_floor(ws, limit);

    for (uint32_t i = 0; i < st->nits; i++) {
        if (!st->its[i].done && st->its[i].cur < base)
            base = st->its[i].cur;
    }
    while (base != UINT32_MAX) {
        uint32_t next = UINT32_MAX;
        base &= ~(WIN - 1);
        for (uint32_t i = 0; i < st->nits; i++) {
            struct iter *it = &st->its[i];
            win_feed(wn, ix, it, base, wn->vals);
            if (!it->done && it->cur < next)
                next = it->cur;
        }
        for (uint32_t k = 0; k < WIN_WORDS; k++) {
            uint64_t b = wn->bits[k];
            wn->bits[k] = 0;
            while (b != 0) {
                uint32_t i = k * 64 + (uint32_t)__builtin_ctzll(b), e = base + i;
                uint16_t am = wn->any[i], sm = wn->strong[i], mm = wn->main[i];
                unsigned any, strong;
                struct row *r;
                struct wval *v;
                b &= b - 1;
                wn->any[i] = wn->main[i] = wn->strong[i] = 0;
                if (e >= ix->nents || (ix->efl[e] & (E_DEAD | E_PARTIAL)) != 0)
                    continue;
                for (uint16_t m = am; m != 0; m &= (uint16_t)(m - 1))
                    ws->df_all[__builtin_ctz(m)]++;
                for (uint16_t m = mm; m != 0; m &= (uint16_t)(m - 1))
                    ws->df_main[__builtin_ctz(m)]++;
                if (!entry_ok(ix, q, e) || (ts->n > 0 && !tags_have(ts, e)))
                    continue;
                any = pop16(am);
                strong = pop16(sm);
                ws->tiers[any][strong]++;
                ws->count++;
                if (((uint32_t)any << 5 | strong) < keep_min)
                    continue;
                if ((*nrows + 1) * rowsz > ix->rows_cap) {
                    size_t nc = ix->rows_cap < 65536 ? 65536 : ix->rows_cap * 2;
                    uint8_t *nr = realloc(ix->rows, nc);
                    if (nr == NULL)
                        return PULL_ERR_NOMEM;
                    ix->rows = nr;
                    ix->rows_cap = nc;
                }
                r = (struct row *)(ix->rows + *nrows * rowsz);
                v = (struct wval *)(r + 1);
                r->e = e;
                r->am = am;
                r->any = (uint8_t)any;
                r->strong = (uint8_t)strong;
                for (uint16_t m = am; m != 0; m &= (uint16_t)(m - 1)) {
                    unsigned w = (unsigned)__builtin_ctz(m);
                    v[w] = wn->vals[w * WIN + i];
                }
                (*nrows)++;
            }
        }
        keep_min = tier_floor(ws, limit);
        base = next;
    }
    return 0;
}

/* Scores the rows of tier_min and up into tk. */
static void
rows_score(const struct search_index *ix, const struct match_query *q, const struct match_prep *p,
           size_t rowsz, size_t nrows, uint32_t tier_min, struct match_topk *tk)
{
    struct match_query plain = *q; /* q without its trust hook */

    plain.trust = NULL;
    for (size_t c = 0; c < nrows; c += 64) {
        size_t end = nrows - c < 64 ? nrows : c + 64;
        /* ask for the lengths and times of the batch first: their misses overlap */
        for (size_t i = c; i < end; i++) {
            const struct row *r = (const struct row *)(ix->rows + i * rowsz);
            if (((uint32_t)r->any << 5 | r->strong) >= tier_min) {
                __builtin_prefetch(&ix->elen[r->e]);
                __builtin_prefetch(&ix->ecreated[r->e]);
            }
        }
        for (size_t i = c; i < end; i++) {
            const struct row *r = (const struct row *)(ix->rows + i * rowsz);
            const struct wval *v = (const struct wval *)(r + 1);
            uint16_t len[MATCH_FIELDS];
            uint8_t kind;
            uint32_t score;
            float sum = 0.0f;
            if (((uint32_t)r->any << 5 | r->strong) < tier_min)
                continue;
            elen_of(ix, r->e, len);
            for (unsigned w = 0; w < q->nwords; w++) {
                if ((r->am >> w) & 1)
                    sum += p->idf[w] * match_gain(p, v[w].v, len);
            }
            kind = (uint8_t)EFL_KIND(ix->efl[r->e]);
            if (match_final_bound(q, sum, r->any, r->strong, kind) < match_topk_floor(tk))
                continue;
            /* Many rows tie on the bound (same words, same lengths): their freshness
             * decides, from the created time asked for above. The author (a cache miss in
             * the entries) is read only for the trust hook, and only if the score without
             * it (trust only lowers a score) may be kept. */
            score = match_final(&plain, sum, r->any, r->strong, kind, ix->ecreated[r->e], 0);
            if (score < match_topk_floor(tk))
                continue;
            if (q->trust != NULL)
                score = match_final(q, sum, r->any, r->strong, kind, ix->ecreated[r->e],
                                    ix->ents[r->e].author8);
            push(tk, ix, r->e, score);
        }
    }
}

int
search_index_rank(struct search_index *ix, const struct match_query *q, uint32_t limit,
                  search_fetch_fn fetch, void *fetch_ctx, struct search_hit *hits, uint32_t *n,
                  uint32_t *total)
{
    struct qstate *st = NULL;
    struct match_topk tk;
    struct match_hit *kept = NULL;
    struct record *rec = NULL;
    struct pdoc *pd = NULL;
    struct tagset *ts = NULL;
    struct win *wn = NULL;
    uint32_t npd = 0, count = 0, lang_mask = 0;
    int rc = 0;

    *n = 0;
    if (total != NULL)
        *total = 0;
    if (limit > SEARCH_LIMIT_MAX)
        limit = SEARCH_LIMIT_MAX;
    search_expire(ix, q->now_s);
    if ((kept = calloc(limit ? limit : 1, sizeof(*kept))) == NULL ||
        (st = calloc(1, sizeof(*st))) == NULL || (ts = malloc(sizeof(*ts))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    match_topk_init(&tk, kept, limit);
    st->ix = ix;
    st->q = q;
    for (unsigned l = 1; l < STEM_LANGS; l++) {
        if (ix->lang_live[l] > 0)
            lang_mask |= (uint32_t)1 << l;
    }
    tags_init(ts, ix, q);
    if (ts->done)
        goto sort; /* a query tag no entry carries */

    /* Entries the index holds only partly: decode them (they count in df too). */
    if (fetch != NULL && ix->npartial > 0) {
        if ((rec = malloc(sizeof(*rec))) == NULL ||
            (pd = calloc(ix->npartial, sizeof(*pd))) == NULL) {
            rc = PULL_ERR_NOMEM;
            goto out;
        }
        for (uint32_t i = 0; i < ix->npartial; i++) {
            uint32_t e = ix->partial[i];
            if ((ix->efl[e] & E_DEAD) != 0)
                continue;
            if (fetch(fetch_ctx, ix->ecreated[e], ix->ents[e].id8, rec) != 0)
                continue;
            pd[npd].e = e;
            pd[npd].pass = match_filters(q, rec) && author_ok(q, ix->ents[e].author8);
            if (q->nwords > 0)
                match_doc_of(q, rec, &pd[npd].d);
            npd++;
        }
    }

    if (q->nwords == 0) {
        /* Filters only: walk the first tag's entries, or all of them. */
        struct iter *first = ts->n > 0 ? &ts->its[0] : NULL;
        for (uint32_t e = first != NULL ? first->cur : 0; e < ix->nents;) {
            if (entry_ok(ix, q, e) && (first == NULL || tags_have(ts, e))) {
                push(&tk, ix, e, 1);
                count++;
            }
            if (first == NULL) {
                e++;
            } else {
                if (ts->done || !iter_next(first))
                    break;
                e = first->cur;
            }
        }
        for (uint32_t i = 0; i < npd; i++) {
            if (pd[i].pass) {
                push(&tk, ix, pd[i].e, 1);
                count++;
            }
        }
    } else {
        struct match_stats ms;
        struct match_prep *p;
        struct wsum ws;
        size_t rowsz = sizeof(struct row) + (size_t)q->nwords * sizeof(struct wval), nrows = 0;

        if (ix->prep == NULL && (ix->prep = malloc(sizeof(*ix->prep))) == NULL) {
            rc = PULL_ERR_NOMEM;
            goto out;
        }
        p = ix->prep;
        memset(&ws, 0, sizeof(ws));
        search_index_stats(ix, q->now_s, &ms);
        match_prep_init(p, &ms);
        for (unsigned w = 0; w < q->nwords; w++) {
            if (!match_query_weak(q, w)) /* weak words don't count (match.h) */
                word_iters(st, w, lang_mask);
        }
        if (st->rc != 0 || (wn = calloc(1, sizeof(*wn))) == NULL ||
            (wn->vals = malloc((size_t)q->nwords * WIN * sizeof(*wn->vals))) == NULL) {
            rc = st->rc != 0 ? st->rc : PULL_ERR_NOMEM;
            goto out;
        }
        for (uint32_t i = 0; i < st->nits; i++)
            iter_reset(&st->its[i]);
        if ((rc = win_run(ix, q, st, wn, ts, &ws, limit, rowsz, &nrows)) != 0)
            goto out;
        for (uint32_t i = 0; i < npd; i++) {
            for (unsigned w = 0; w < q->nwords; w++) {
                if (match_query_weak(q, w))
                    continue;
                ws.df_all[w] += pd[i].d.cls[w] != 0;
                ws.df_main[w] += pd[i].d.cls[w] >= MATCH_C_STEM;
            }
        }
        for (unsigned w = 0; w < q->nwords; w++)
            match_prep_idf(p, w, ms.n, ws.df_main[w] > 0 ? ws.df_main[w] : ws.df_all[w]);
        count += ws.count;
        /* The score's top bits are (any, strong): rows in lower tiers than the limit-th
         * best match's can't be kept, and need no scoring. */
        rows_score(ix, q, p, rowsz, nrows, tier_floor(&ws, limit), &tk);
        for (uint32_t i = 0; i < npd; i++) {
            uint32_t score;
            if (!pd[i].pass)
                continue;
            score = match_doc_score(q, p, &pd[i].d, (uint8_t)EFL_KIND(ix->efl[pd[i].e]),
                                    ix->ecreated[pd[i].e], ix->ents[pd[i].e].author8);
            if (score > 0) {
                push(&tk, ix, pd[i].e, score);
                count++;
            }
        }
        if (ix->rows_cap > ROWS_KEEP) { /* a huge query: don't keep its buffer */
            free(ix->rows);
            ix->rows = NULL;
            ix->rows_cap = 0;
        }
    }

sort:
    match_topk_sort(&tk);
    for (uint32_t i = 0; i < tk.n; i++) {
        const struct entry *en = &ix->ents[tk.hits[i].ref];
        hits[i].score = tk.hits[i].score;
        hits[i].created = ix->ecreated[tk.hits[i].ref];
        hits[i].id8 = en->id8;
        hits[i].entry = (uint32_t)tk.hits[i].ref;
    }
    *n = tk.n;
    if (total != NULL)
        *total = count;
out:
    if (st != NULL)
        free(st->its);
    free(st);
    free(ts);
    if (wn != NULL)
        free(wn->vals);
    free(wn);
    free(pd);
    free(rec);
    free(kept);
    return rc;
}

int
search_index_query(struct search_index *ix, const struct match_query *q, uint32_t limit,
                   search_fetch_fn fetch, void *fetch_ctx, struct search_hit *hits, uint32_t *n)
{
    *n = 0;
    if (limit == 0)
        return 0;
    return search_index_rank(ix, q, limit, fetch, fetch_ctx, hits, n, NULL);
}

/* ---- Store ------------------------------------------------------------------------- */

struct fetch_ctx {
    uint64_t created, id8;
    struct pull_wb *out;
    int rc;
};

static int
fetch_one(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct fetch_ctx *f = ctx;
    uint64_t created;

    if (search_id8(id) == f->id8) {
        f->rc = wb_put(f->out, env, len);
        return 1;
    }
    if (envelope_peek(env, len, NULL, &created, NULL) != 0 || created > f->created)
        return 1; /* past the second it was created in: not there */
    return 0;
}

int
search_fetch(struct store *s, uint64_t created, uint64_t id8, struct pull_wb *out)
{
    struct fetch_ctx f = {.created = created, .id8 = id8, .out = out, .rc = PULL_ERR_NOT_FOUND};
    int rc = store_iter_time(s, created, fetch_one, &f);

    return rc < 0 ? rc : f.rc;
}
