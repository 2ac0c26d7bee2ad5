#include "lib/match.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/fold.h"
#include "lib/stem.h"

/* ---- Tokens ------------------------------------------------------------------------ */

/* Finds the next ASCII-rule token in s[*off..) for match_related: returns its start and
 * length, or NULL at the end. s is NUL-terminated. */
static inline const uint8_t *
next_token(const uint8_t *s, size_t *off, size_t *len)
{
    const uint8_t *p = s + *off, *start;

    while (*p != '\0' && !match_is_word(*p))
        p++;
    if (*p == '\0') {
        *off = (size_t)(p - s);
        return NULL;
    }
    start = p;
    while (match_is_word(*p))
        p++;
    *len = (size_t)(p - start);
    *off = (size_t)(p - s);
    return start;
}

size_t
match_field_next(const char *s, size_t n, size_t *off, char *out)
{
    const char *t;
    size_t len, fl;

    while ((t = fold_next(s, n, off, &len)) != NULL) {
        if ((fl = fold_token(t, len, out, MATCH_TERM_MAX + 1)) > 0)
            return fl;
    }
    return 0;
}

/* ---- Queries ----------------------------------------------------------------------- */

/* Common words (folded) of English, German, French and Spanish. */
static const char *const stop_words[] = {
    "a",    "al",   "am",   "an",    "and",  "any",   "anyone", "are",   "at",   "au",
    "aux",  "be",   "bei",  "by",    "con",  "d",     "da",     "dans",  "das",  "de",
    "del",  "dem",  "den",  "der",   "des",  "di",    "die",    "du",    "e",    "ein",
    "eine", "einem", "einen", "einer", "el",  "elle",  "en",     "es",    "est",  "et",
    "for",  "from", "fur",  "i",     "ich",  "il",    "im",     "in",    "is",   "ist",
    "it",   "j",    "je",   "l",     "la",   "las",   "le",     "les",   "los",  "ma",
    "me",   "mein", "meine", "mes",  "mi",   "mir",   "mis",    "mit",   "mon",  "my",
    "nous", "o",    "oder", "of",    "on",   "or",    "ou",     "our",   "para", "please",
    "por",  "pour", "se",   "some",  "someone", "sur", "the",   "this",  "to",   "u",
    "un",   "una",  "und",  "une",   "unos", "unas",  "von",    "vous",  "we",   "wir",
    "with", "y",    "yo",   "you",   "your", "zu",    "zum",    "zur",
};

/* Words that say the searcher needs something (so offers answer the query). */
static const char *const need_words[] = {
    "benotige", "besoin",  "brauche", "brauchen", "buscamos", "buscando", "busco",
    "cherche",  "cherchons", "gesucht", "looking", "necesito", "necesitamos", "need",
    "needed",   "needs",   "recherche", "require", "searching", "seeking", "suche",
    "suchen",   "sucht",   "want",    "wanted",   "wants",
};

/* Words that say the searcher offers something (so needs answer the query). */
static const char *const offer_words[] = {
    "biete", "bieten", "doy", "lend", "lending", "offer", "offering", "offers",
    "ofrece", "ofrezco", "presto", "prete", "propose", "proposons", "verleihe", "verschenke",
};

static bool
in_list(const char *const *list, size_t n, const char *w)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(list[i], w) == 0)
            return true;
    }
    return false;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

void
match_query_init(struct match_query *q)
{
    memset(q, 0, sizeof(*q));
}

static bool
has_digit(const char *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((uint8_t)(w[i] - '0') < 10)
            return true;
    }
    return false;
}

int
match_query_add_words(struct match_query *q, const char *text)
{
    size_t off = 0, n, len;
    char w[MATCH_TERM_MAX + 1];

    if (text == NULL)
        return 0;
    n = strlen(text);
    while ((len = match_field_next(text, n, &off, w)) > 0) {
        bool dup = false, need, offer;
        size_t chars;
        unsigned i;

        if (len > MATCH_WORD_MAX) {
            len = MATCH_WORD_MAX;
            while (len > 0 && ((uint8_t)w[len] & 0xc0) == 0x80)
                len--; /* don't keep half a character */
            if (len == 0)
                continue;
            w[len] = '\0';
        }
        for (i = 0; i < q->nwords && !dup; i++)
            dup = q->wlen[i] == len && memcmp(q->words[i], w, len) == 0;
        if (dup)
            continue;
        if (q->nwords >= MATCH_WORDS_MAX)
            return PULL_ERR_TOO_BIG;
        i = q->nwords++;
        memcpy(q->words[i], w, len + 1);
        q->wlen[i] = (uint8_t)len;
        chars = fold_chars(w, len);
        q->wchars[i] = (uint8_t)chars;
        q->wtypo[i] = has_digit(w, len)          ? 0
                      : chars >= MATCH_TYPO2_MIN ? 2
                      : chars >= MATCH_TYPO1_MIN ? 1
                                                 : 0;
        q->wswap[i] = !has_digit(w, len) && chars == MATCH_SWAP_MIN;
        need = in_list(need_words, COUNT(need_words), w);
        offer = in_list(offer_words, COUNT(offer_words), w);
        q->wstop[i] = need || offer || in_list(stop_words, COUNT(stop_words), w);
        q->need_words += need;
        q->offer_words += offer;
        q->intent = q->need_words > 0 && q->offer_words == 0   ? RECORD_OFFER
                    : q->offer_words > 0 && q->need_words == 0 ? RECORD_NEED
                                                               : 0;
    }
    return 0;
}

bool
match_query_weak(const struct match_query *q, unsigned w)
{
    if (!q->wstop[w])
        return false;
    for (unsigned i = 0; i < q->nwords; i++) {
        if (!q->wstop[i])
            return true;
    }
    return false;
}

int
match_query_add_tag(struct match_query *q, const char *tag)
{
    char t[RECORD_TAG_MAX + 2];
    long len;

    if (tag == NULL || tag[0] == '\0' || strlen(tag) > 4 * RECORD_TAG_MAX)
        return PULL_ERR_TAG;
    if ((len = fold_string(tag, t, RECORD_TAG_MAX + 1)) <= 0)
        return PULL_ERR_TAG;
    for (unsigned i = 0; i < q->ntags; i++) {
        if (strcmp(q->tags[i], t) == 0)
            return 0;
    }
    if (q->ntags >= RECORD_TAGS_MAX)
        return PULL_ERR_TAGS;
    memcpy(q->tags[q->ntags++], t, (size_t)len + 1);
    return 0;
}

int
match_query_set_author(struct match_query *q, const char *prefix)
{
    int rc;

    if ((rc = ident_prefix_parse(prefix, &q->author)) != 0) {
        q->has_author = false;
        return rc;
    }
    q->has_author = true;
    return 0;
}

/* ---- Typos ------------------------------------------------------------------------- */

uint64_t
match_bag(const char *s, size_t n)
{
    uint32_t cps[MATCH_TERM_MAX];
    size_t m = fold_cps(s, n, cps, MATCH_TERM_MAX);
    uint64_t bag = 0;

    for (size_t i = 0; i < m; i++) {
        uint32_t c = cps[i];
        unsigned bit = (c >= 'a' && c <= 'z')   ? c - 'a'
                       : (c >= '0' && c <= '9') ? 26 + (c - '0')
                                                : 36 + c % 28;
        bag |= (uint64_t)1 << bit;
    }
    return bag;
}

bool
match_typo(const uint32_t *a, size_t an, const uint32_t *b, size_t bn, unsigned k, bool swap_only)
{
    /* Optimal string alignment distance, rows of at most MATCH_TERM_MAX + 1 cells, stopping
     * as soon as a whole row exceeds k. */
    unsigned d0[MATCH_TERM_MAX + 1], d1[MATCH_TERM_MAX + 1], d2[MATCH_TERM_MAX + 1];
    unsigned *pp = d0, *prev = d1, *cur = d2;

    if (swap_only) {
        size_t i = 0;
        if (an != bn || an < 2)
            return false;
        while (i < an && a[i] == b[i])
            i++;
        return i + 1 < an && a[i] == b[i + 1] && a[i + 1] == b[i] &&
               (i + 2 == an || memcmp(a + i + 2, b + i + 2, (an - i - 2) * sizeof(*a)) == 0);
    }
    if (an > MATCH_TERM_MAX || bn > MATCH_TERM_MAX)
        return false;
    if ((an > bn ? an - bn : bn - an) > k)
        return false;
    for (size_t j = 0; j <= bn; j++)
        prev[j] = (unsigned)j;
    for (size_t i = 1; i <= an; i++) {
        unsigned lo;
        cur[0] = (unsigned)i;
        lo = cur[0];
        for (size_t j = 1; j <= bn; j++) {
            unsigned cost = a[i - 1] != b[j - 1];
            unsigned v = prev[j - 1] + cost;
            if (prev[j] + 1 < v)
                v = prev[j] + 1;
            if (cur[j - 1] + 1 < v)
                v = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
            if (v < lo)
                lo = v;
        }
        if (lo > k)
            return false;
        {
            unsigned *t = pp;
            pp = prev;
            prev = cur;
            cur = t;
        }
    }
    return prev[bn] <= k;
}

static bool
typo_text(const char *a, size_t an, const char *b, size_t bn, unsigned k, bool swap)
{
    uint32_t ca[MATCH_TERM_MAX], cb[MATCH_TERM_MAX];
    size_t na, nb;

    /* k edits change the length by at most k characters, 4k bytes; a swap not at all */
    if (swap ? an != bn : (an > bn ? an - bn : bn - an) > 4 * k)
        return false;
    na = fold_cps(a, an, ca, MATCH_TERM_MAX);
    nb = fold_cps(b, bn, cb, MATCH_TERM_MAX);
    return match_typo(ca, na, cb, nb, k, swap);
}

/* ---- Scoring ----------------------------------------------------------------------- */

/* BM25F constants (see match.h). */
static const float field_w[MATCH_FIELDS] = {3.0f, 2.5f, 1.0f};
static const float field_b[MATCH_FIELDS] = {0.3f, 0.5f, 0.75f};
static const uint8_t tf_cap[MATCH_FIELDS] = {MATCH_TF_TAG, MATCH_TF_TITLE, MATCH_TF_BODY};
static const uint8_t class_w[5] = {0, 3, 4, 7, 8};
#define BM25_K1 1.2f
#define SCORE_REL_MAX 4194303u /* 22 bits */

unsigned
match_class(const struct match_query *q, unsigned w, const char *w_stem, const char *t, size_t tn,
            const char *t_stem)
{
    const char *word = q->words[w];
    size_t wl = q->wlen[w];

    if (tn == wl && memcmp(t, word, wl) == 0)
        return MATCH_C_EXACT;
    if (strcmp(t_stem, w_stem) == 0)
        return MATCH_C_STEM;
    if (q->wchars[w] >= MATCH_PREFIX_MIN && tn > wl && memcmp(t, word, wl) == 0)
        return MATCH_C_PREFIX;
    if (q->wtypo[w] > 0 || q->wswap[w]) {
        if (typo_text(word, wl, t, tn, q->wtypo[w], q->wswap[w]) ||
            typo_text(w_stem, strlen(w_stem), t_stem, strlen(t_stem), q->wtypo[w], q->wswap[w]))
            return MATCH_C_TYPO;
    }
    return 0;
}

bool
match_filters(const struct match_query *q, const struct record *rec)
{
    unsigned ntags = rec->ntags < RECORD_TAGS_MAX ? rec->ntags : RECORD_TAGS_MAX;

    if (rec->kind == RECORD_WITHDRAWN || (q->kind != 0 && rec->kind != q->kind))
        return false;
    if (q->now_s != 0 && rec->expires <= q->now_s)
        return false;
    if (q->has_author && !ident_prefix_match(&q->author, rec->author))
        return false;
    if (q->allow != NULL && !q->allow(q->allow_ctx, be64dec(rec->author)))
        return false;
    for (unsigned i = 0; i < q->ntags; i++) {
        bool found = false;
        for (unsigned j = 0; j < ntags && !found; j++) {
            char t[RECORD_TAG_MAX + 2];
            (void)fold_string(rec->tags[j], t, sizeof(t));
            found = strcmp(t, q->tags[i]) == 0;
        }
        if (!found)
            return false;
    }
    return true;
}

/* A distinct word of a field, with its class for each query word. */
#define DOC_TERMS 256
#define DOC_SLOTS 512
struct doc_term {
    char t[MATCH_TERM_MAX + 1];
    uint8_t tl;
    bool any; /* matches some query word */
    uint16_t tf;
    uint8_t cls[MATCH_WORDS_MAX];
};

struct doc_ctx {
    const struct match_query *q;
    struct match_doc *d;
    char (*wst)[MATCH_TERM_MAX + 1];
    struct doc_term terms[DOC_TERMS];
    uint16_t slots[DOC_SLOTS]; /* term index + 1 */
    unsigned nterms;
};

/* Counts the words equal to t in texts[0..n). */
static unsigned
count_in(const char *const *texts, unsigned n, const char *t, size_t tl)
{
    char w[MATCH_TERM_MAX + 1];
    unsigned c = 0;

    for (unsigned i = 0; i < n; i++) {
        size_t off = 0, len, tn = strlen(texts[i]);
        while ((len = match_field_next(texts[i], tn, &off, w)) > 0)
            c += len == tl && memcmp(w, t, tl) == 0;
    }
    return c;
}

static void
doc_add(struct match_doc *d, unsigned nwords, unsigned f, const struct doc_term *dt)
{
    unsigned tf = dt->tf < tf_cap[f] ? dt->tf : tf_cap[f];

    for (unsigned k = 0; k < nwords; k++) {
        uint8_t v = (uint8_t)(class_w[dt->cls[k]] * tf);
        if (v > d->v[k][f])
            d->v[k][f] = v;
        if (dt->cls[k] > d->cls[k])
            d->cls[k] = dt->cls[k];
    }
}

/* Scans one field made of texts[0..n) into x->d. */
static void
doc_field(struct doc_ctx *x, unsigned f, const char *const *texts, unsigned n)
{
    const struct match_query *q = x->q;
    struct match_doc *d = x->d;
    char w[MATCH_TERM_MAX + 1], ws[MATCH_TERM_MAX + 1];
    unsigned words = 0, cap = f == MATCH_F_BODY ? MATCH_LEN_BODY : MATCH_LEN_TAG;

    x->nterms = 0;
    memset(x->slots, 0, sizeof(x->slots));
    for (unsigned i = 0; i < n; i++) {
        size_t off = 0, len, tn = strlen(texts[i]);
        while ((len = match_field_next(texts[i], tn, &off, w)) > 0) {
            uint32_t h = match_word_hash(w, len) & (DOC_SLOTS - 1);
            struct doc_term one;
            words++;
            while (x->slots[h] != 0) {
                struct doc_term *dt = &x->terms[x->slots[h] - 1];
                if (dt->tl == len && memcmp(dt->t, w, len) == 0)
                    break;
                h = (h + 1) & (DOC_SLOTS - 1);
            }
            if (x->slots[h] != 0) {
                x->terms[x->slots[h] - 1].tf++;
                continue;
            }
            stem_word(d->lang, w, len, ws, sizeof(ws));
            memset(&one, 0, sizeof(one));
            for (unsigned k = 0; k < q->nwords; k++) {
                one.cls[k] = (uint8_t)match_class(q, k, x->wst[k], w, len, ws);
                one.any = one.any || one.cls[k] != 0;
            }
            memcpy(one.t, w, len + 1);
            one.tl = (uint8_t)len;
            one.tf = 1;
            if (x->nterms < DOC_TERMS) {
                x->terms[x->nterms++] = one;
                x->slots[h] = (uint16_t)x->nterms;
            } else if (one.any) { /* many distinct words: count this one the slow way */
                one.tf = (uint16_t)count_in(texts, n, w, len);
                doc_add(d, q->nwords, f, &one);
            }
        }
    }
    for (unsigned t = 0; t < x->nterms; t++) {
        if (x->terms[t].any)
            doc_add(d, q->nwords, f, &x->terms[t]);
    }
    d->len[f] = (uint16_t)(words < cap ? words : cap);
}

void
match_doc_of(const struct match_query *q, const struct record *rec, struct match_doc *d)
{
    char wst[MATCH_WORDS_MAX][MATCH_TERM_MAX + 1];
    const char *texts[RECORD_TAGS_MAX];
    unsigned n = 0, ntags = rec->ntags < RECORD_TAGS_MAX ? rec->ntags : RECORD_TAGS_MAX;
    struct doc_ctx *x, ctx;

    memset(d, 0, sizeof(*d));
    d->lang = (uint8_t)stem_lang_of(rec);
    for (unsigned i = 0; i < q->nwords; i++)
        stem_word(d->lang, q->words[i], q->wlen[i], wst[i], sizeof(wst[i]));
    x = &ctx;
    x->q = q;
    x->d = d;
    x->wst = wst;
    for (unsigned i = 0; i < ntags; i++) {
        if (!stem_is_lang_tag(rec->tags[i]))
            texts[n++] = rec->tags[i];
    }
    doc_field(x, MATCH_F_TAG, texts, n);
    texts[0] = rec->title;
    doc_field(x, MATCH_F_TITLE, texts, 1);
    texts[0] = rec->body;
    texts[1] = rec->terms;
    doc_field(x, MATCH_F_BODY, texts, 2);
}

/* The length normalisation of field f for a length l, mean avg, weight included. */
static float
norm_value(unsigned f, unsigned l, double avg)
{
    double wf = field_w[f] / 8.0, b = field_b[f];

    return avg > 0 ? (float)(wf / (1.0 - b + b * l / avg)) : (float)wf;
}

static float *
norm_table(struct match_prep *p, unsigned f)
{
    return f == MATCH_F_TAG ? p->norm_tag : f == MATCH_F_TITLE ? p->norm_title : p->norm_body;
}

void
match_prep_init(struct match_prep *p, const struct match_stats *s)
{
    const unsigned lens[MATCH_FIELDS] = {MATCH_LEN_TAG, MATCH_LEN_TITLE, MATCH_LEN_BODY};

    memset(p->idf, 0, sizeof(p->idf));
    for (unsigned f = 0; f < MATCH_FIELDS; f++) {
        double avg = s->n > 0 ? (double)s->len_sum[f] / s->n : 0.0;
        float *tab = norm_table(p, f);
        for (unsigned l = 0; l <= lens[f]; l++)
            tab[l] = norm_value(f, l, avg);
    }
}

void
match_prep_idf(struct match_prep *p, unsigned w, uint32_t n, uint32_t df)
{
    double nn = n < df ? df : n;

    p->idf[w] = (float)log(1.0 + (nn - df + 0.5) / (df + 0.5));
}

float
match_gain(const struct match_prep *p, const uint8_t v[MATCH_FIELDS],
           const uint16_t len[MATCH_FIELDS])
{
    float tf = p->norm_tag[len[0]] * (float)v[0] + p->norm_title[len[1]] * (float)v[1] +
               p->norm_body[len[2]] * (float)v[2];

    return tf * (BM25_K1 + 1.0f) / (BM25_K1 + tf);
}

float
match_word_part(const struct match_prep *p, unsigned w, const uint8_t v[MATCH_FIELDS],
                const uint16_t len[MATCH_FIELDS])
{
    return p->idf[w] * match_gain(p, v, len);
}

uint32_t
match_final(const struct match_query *q, float sum, unsigned any, unsigned strong, uint8_t kind,
            uint64_t created, uint64_t author8)
{
    float age = 0.0f, rel;
    uint32_t r;

    if (any == 0)
        return 0;
    if (q->now_s > created)
        age = (float)(q->now_s - created) / 86400.0f;
    rel = sum * (1.0f + 0.25f * 30.0f / (30.0f + age));
    if (q->intent != 0 && kind == q->intent)
        rel *= 1.25f;
    if (q->trust != NULL) { /* the trust distance's hook */
        uint32_t t = q->trust(q->trust_ctx, author8);
        rel *= (float)(t < 1000 ? t : 1000) / 1000.0f;
    }
    rel *= 1000.0f;
    r = rel >= (float)SCORE_REL_MAX ? SCORE_REL_MAX : rel > 0.0f ? (uint32_t)rel : 0;
    return (uint32_t)any << 27 | (uint32_t)strong << 22 | r;
}

uint32_t
match_final_bound(const struct match_query *q, float sum, unsigned any, unsigned strong,
                  uint8_t kind)
{
    float rel;
    uint32_t r;

    if (any == 0)
        return 0;
    /* freshness at most 1.25, trust at most 1; a little more for the float roundings */
    rel = sum * 1.25f * 1.001f;
    if (q->intent != 0 && kind == q->intent)
        rel *= 1.25f;
    rel *= 1000.0f;
    r = rel >= (float)SCORE_REL_MAX ? SCORE_REL_MAX : rel > 0.0f ? (uint32_t)rel + 1 : 1;
    if (r > SCORE_REL_MAX)
        r = SCORE_REL_MAX;
    return (uint32_t)any << 27 | (uint32_t)strong << 22 | r;
}

uint32_t
match_doc_score(const struct match_query *q, const struct match_prep *p, const struct match_doc *d,
                uint8_t kind, uint64_t created, uint64_t author8)
{
    float sum = 0.0f;
    unsigned any = 0, strong = 0;

    for (unsigned w = 0; w < q->nwords; w++) {
        if (d->cls[w] == 0 || match_query_weak(q, w))
            continue;
        sum += match_word_part(p, w, d->v[w], d->len);
        any++;
        strong += d->cls[w] >= MATCH_C_PREFIX;
    }
    return match_final(q, sum, any, strong, kind, created, author8);
}

uint32_t
match_score(const struct match_query *q, const struct record *rec)
{
    struct match_doc d;
    struct match_prep *p, prep;

    if (!match_filters(q, rec))
        return 0;
    if (q->nwords == 0)
        return 1;
    match_doc_of(q, rec, &d);
    p = &prep;
    /* A collection of one: only the entries for its own lengths are read. */
    for (unsigned f = 0; f < MATCH_FIELDS; f++)
        norm_table(p, f)[d.len[f]] = norm_value(f, d.len[f], (double)d.len[f]);
    for (unsigned w = 0; w < q->nwords; w++)
        match_prep_idf(p, w, 1, d.cls[w] != 0);
    return match_doc_score(q, p, &d, rec->kind, rec->created, be64dec(rec->author));
}

/* ---- Ranking ----------------------------------------------------------------------- */

int
match_hit_cmp(const void *a, const void *b)
{
    const struct match_hit *x = a, *y = b;

    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->created != y->created)
        return x->created > y->created ? -1 : 1;
    if (x->ref != y->ref)
        return x->ref < y->ref ? -1 : 1;
    return 0;
}

void
match_topk_init(struct match_topk *t, struct match_hit *storage, uint32_t cap)
{
    t->hits = storage;
    t->cap = cap;
    t->n = 0;
}

/* The heap keeps the worst kept hit at the root. */
static inline bool
worse(const struct match_hit *a, const struct match_hit *b)
{
    return match_hit_cmp(a, b) > 0;
}

static void
sift_down(struct match_topk *t, uint32_t i)
{
    struct match_hit tmp;

    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < t->n && worse(&t->hits[l], &t->hits[m]))
            m = l;
        if (r < t->n && worse(&t->hits[r], &t->hits[m]))
            m = r;
        if (m == i)
            return;
        tmp = t->hits[i];
        t->hits[i] = t->hits[m];
        t->hits[m] = tmp;
        i = m;
    }
}

void
match_topk_push(struct match_topk *t, const struct match_hit *h)
{
    uint32_t i;
    struct match_hit tmp;

    if (h->score == 0 || t->cap == 0)
        return;
    if (t->n < t->cap) {
        i = t->n++;
        t->hits[i] = *h;
        while (i > 0) {
            uint32_t p = (i - 1) / 2;
            if (!worse(&t->hits[i], &t->hits[p]))
                break;
            tmp = t->hits[i];
            t->hits[i] = t->hits[p];
            t->hits[p] = tmp;
            i = p;
        }
        return;
    }
    if (!worse(&t->hits[0], h))
        return; /* not better than the worst kept */
    t->hits[0] = *h;
    sift_down(t, 0);
}

uint32_t
match_topk_floor(const struct match_topk *t)
{
    return t->cap > 0 && t->n == t->cap ? t->hits[0].score : 0;
}

void
match_topk_sort(struct match_topk *t)
{
    if (t->n > 1)
        qsort(t->hits, t->n, sizeof(t->hits[0]), match_hit_cmp);
}

/* ---- Related records --------------------------------------------------------------- */

static bool
has_tag(const struct record *rec, const char *tag)
{
    for (unsigned i = 0; i < rec->ntags && i < RECORD_TAGS_MAX; i++) {
        if (strcmp(rec->tags[i], tag) == 0)
            return true;
    }
    return false;
}

/* Common words that say nothing about what is offered or needed (English, French). */
static const char *const filler[] = {
    "the",       "and",   "for",    "with",     "from",      "that",    "this",    "are",
    "you",       "your",  "our",    "can",      "will",      "have",    "has",     "not",
    "but",       "any",   "all",    "who",      "what",      "when",    "where",   "how",
    "into",      "about", "some",   "someone",  "anyone",    "need",    "needs",   "needed",
    "looking",   "look",  "want",   "wanted",   "wants",     "seeking", "seek",    "search",
    "searching", "offer", "offers", "offering", "help",      "get",     "give",    "free",
    "les",       "des",   "une",    "pour",     "avec",      "dans",    "sur",     "par",
    "qui",       "que",   "est",    "cherche",  "recherche", "besoin",  "propose", "offre",
};

struct tok {
    const uint8_t *p;
    size_t n;
};

#define RELATED_TOKENS 48

static bool
tok_eq(const struct tok *a, const struct tok *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        if (match_lower(a->p[i]) != match_lower(b->p[i]))
            return false;
    }
    return true;
}

/* Whether a and b name the same thing: equal, or one (4+ bytes) starts the other. */
static bool
tok_related(const struct tok *a, const struct tok *b)
{
    size_t n = a->n < b->n ? a->n : b->n;

    if (a->n == b->n)
        return tok_eq(a, b);
    if (n < 4)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (match_lower(a->p[i]) != match_lower(b->p[i]))
            return false;
    }
    return true;
}

static bool
significant(const uint8_t *t, size_t len)
{
    char w[16];
    bool digits = true;

    if (len < 3)
        return false;
    for (size_t i = 0; i < len && digits; i++)
        digits = t[i] >= '0' && t[i] <= '9';
    if (digits)
        return false;
    if (len >= sizeof(w))
        return true;
    for (size_t i = 0; i < len; i++)
        w[i] = (char)match_lower(t[i]);
    w[len] = '\0';
    for (size_t i = 0; i < sizeof(filler) / sizeof(filler[0]); i++) {
        if (strcmp(filler[i], w) == 0)
            return false;
    }
    return true;
}

/* Appends the distinct significant tokens of s to toks[*n..max). */
static void
collect(const char *s, struct tok *toks, size_t *n, size_t max)
{
    const uint8_t *t;
    size_t off = 0, len;

    while (*n < max && (t = next_token((const uint8_t *)s, &off, &len)) != NULL) {
        struct tok k = {t, len};
        bool dup = false;
        if (!significant(t, len))
            continue;
        for (size_t i = 0; i < *n && !dup; i++)
            dup = tok_eq(&toks[i], &k);
        if (!dup)
            toks[(*n)++] = k;
    }
}

static void
collect_record(const struct record *rec, struct tok *toks, size_t *n)
{
    unsigned ntags = rec->ntags < RECORD_TAGS_MAX ? rec->ntags : RECORD_TAGS_MAX;

    collect(rec->title, toks, n, RELATED_TOKENS);
    for (unsigned i = 0; i < ntags; i++)
        collect(rec->tags[i], toks, n, RELATED_TOKENS);
}

bool
match_related(const struct record *offer, const struct record *need)
{
    struct tok nt[RELATED_TOKENS], ot[RELATED_TOKENS];
    size_t nn = 0, on = 0, shared = 0;
    unsigned ntags = need->ntags < RECORD_TAGS_MAX ? need->ntags : RECORD_TAGS_MAX;

    if (offer->kind != RECORD_OFFER || need->kind != RECORD_NEED)
        return false;
    for (unsigned i = 0; i < ntags; i++) {
        if (has_tag(offer, need->tags[i]))
            return true;
    }
    collect_record(need, nt, &nn);
    if (nn == 0)
        return false;
    collect_record(offer, ot, &on);
    for (size_t i = 0; i < nn; i++) {
        for (size_t j = 0; j < on; j++) {
            if (tok_related(&nt[i], &ot[j])) {
                shared++;
                break;
            }
        }
    }
    return shared >= (nn >= 2 ? 2 : 1);
}
