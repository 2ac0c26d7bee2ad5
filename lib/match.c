#include "lib/match.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

/* ---- Tokens ------------------------------------------------------------------------ */

/* Compares n bytes of s (any case) with w (already lowercase). */
static inline bool
eq_lower(const uint8_t *s, const uint8_t *w, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (match_lower(s[i]) != w[i])
            return false;
    }
    return true;
}

/* Finds the next token in s[*off..): returns its start and length, or NULL at the end.
 * s is NUL-terminated. */
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

/* ---- Queries ----------------------------------------------------------------------- */

void
match_query_init(struct match_query *q)
{
    memset(q, 0, sizeof(*q));
}

int
match_query_add_words(struct match_query *q, const char *text)
{
    const uint8_t *s = (const uint8_t *)text, *t;
    size_t off = 0, len;

    if (text == NULL)
        return 0;
    while ((t = next_token(s, &off, &len)) != NULL) {
        char w[MATCH_WORD_MAX + 1];
        bool dup = false;

        if (len > MATCH_WORD_MAX) {
            len = MATCH_WORD_MAX;
            while (len > 0 && (t[len] & 0xc0) == 0x80)
                len--; /* don't keep half a character */
            if (len == 0)
                continue;
        }
        for (size_t i = 0; i < len; i++)
            w[i] = (char)match_lower(t[i]);
        w[len] = '\0';
        for (unsigned i = 0; i < q->nwords && !dup; i++)
            dup = q->wlen[i] == len && memcmp(q->words[i], w, len) == 0;
        if (dup)
            continue;
        if (q->nwords >= MATCH_WORDS_MAX)
            return PULL_ERR_TOO_BIG;
        memcpy(q->words[q->nwords], w, len + 1);
        q->wlen[q->nwords] = (uint8_t)len;
        q->nwords++;
    }
    return 0;
}

int
match_query_add_tag(struct match_query *q, const char *tag)
{
    size_t len = tag != NULL ? strlen(tag) : 0;
    char t[RECORD_TAG_MAX + 1];

    if (len == 0 || len > RECORD_TAG_MAX)
        return PULL_ERR_TAG;
    for (size_t i = 0; i < len; i++)
        t[i] = (char)match_lower((uint8_t)tag[i]);
    t[len] = '\0';
    for (unsigned i = 0; i < q->ntags; i++) {
        if (strcmp(q->tags[i], t) == 0)
            return 0;
    }
    if (q->ntags >= RECORD_TAGS_MAX)
        return PULL_ERR_TAGS;
    memcpy(q->tags[q->ntags++], t, len + 1);
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

/* ---- Scoring ----------------------------------------------------------------------- */

/* Finds, for query word w, its best match among the tokens of text[0..len): a place where
 * the word starts a token (memchr for its first byte in both cases, so long texts are
 * skipped at memchr speed), exact if the token ends with the word, else a prefix match.
 * Keeps the higher of that and best[w]. */
static void
scan_word(const struct match_query *q, unsigned w, const uint8_t *text, size_t len, uint8_t *best,
          uint8_t w_exact, uint8_t w_prefix)
{
    const uint8_t *word = (const uint8_t *)q->words[w], *end = text + len;
    size_t wl = q->wlen[w];
    uint8_t firsts[2] = {word[0], word[0]};

    if ((uint8_t)(word[0] - 'a') < 26)
        firsts[1] = (uint8_t)(word[0] - 'a' + 'A');
    for (int v = 0; v < (firsts[1] != firsts[0] ? 2 : 1) && best[w] < w_exact; v++) {
        const uint8_t *p = text, *hit;
        while (p < end && (hit = memchr(p, firsts[v], (size_t)(end - p))) != NULL) {
            bool exact;
            p = hit + 1;
            if (hit > text && match_is_word(hit[-1]))
                continue; /* inside a token */
            if ((size_t)(end - hit) < wl)
                break;
            if (!eq_lower(hit + 1, word + 1, wl - 1))
                continue;
            exact = hit + wl == end || !match_is_word(hit[wl]);
            if (!exact && wl < MATCH_PREFIX_MIN)
                continue;
            if (exact) {
                if (best[w] < w_exact)
                    best[w] = w_exact;
                break;
            }
            if (best[w] < w_prefix)
                best[w] = w_prefix;
        }
    }
}

static void
scan_field(const struct match_query *q, const char *text, size_t max, uint8_t *best,
           uint8_t w_exact, uint8_t w_prefix)
{
    size_t len = strnlen(text, max);

    if (len == 0)
        return;
    for (unsigned w = 0; w < q->nwords; w++)
        scan_word(q, w, (const uint8_t *)text, len, best, w_exact, w_prefix);
}

static bool
has_tag(const struct record *rec, const char *tag)
{
    for (unsigned i = 0; i < rec->ntags && i < RECORD_TAGS_MAX; i++) {
        if (strcmp(rec->tags[i], tag) == 0)
            return true;
    }
    return false;
}

uint32_t
match_score(const struct match_query *q, const struct record *rec)
{
    uint8_t tag_best[MATCH_WORDS_MAX] = {0}, title_best[MATCH_WORDS_MAX] = {0},
            body_best[MATCH_WORDS_MAX] = {0};
    uint32_t sum = 0, matched = 0;
    unsigned ntags = rec->ntags < RECORD_TAGS_MAX ? rec->ntags : RECORD_TAGS_MAX;

    if (rec->kind == RECORD_WITHDRAWN || (q->kind != 0 && rec->kind != q->kind))
        return 0;
    if (q->now_s != 0 && rec->expires <= q->now_s)
        return 0;
    if (q->has_author && !ident_prefix_match(&q->author, rec->author))
        return 0;
    for (unsigned i = 0; i < q->ntags; i++) {
        if (!has_tag(rec, q->tags[i]))
            return 0;
    }
    if (q->nwords == 0)
        return 1;

    for (unsigned i = 0; i < ntags; i++) {
        const char *tag = rec->tags[i];
        size_t tl = strnlen(tag, RECORD_TAG_MAX);
        for (unsigned w = 0; w < q->nwords; w++) {
            if (q->wlen[w] == tl && memcmp(q->words[w], tag, tl) == 0)
                tag_best[w] = MATCH_W_TAG;
        }
        scan_field(q, tag, RECORD_TAG_MAX, tag_best, MATCH_W_TAG_TOKEN, MATCH_W_TAG_PREFIX);
    }
    scan_field(q, rec->title, RECORD_TITLE_MAX, title_best, MATCH_W_TITLE, MATCH_W_TITLE_PREFIX);
    scan_field(q, rec->body, RECORD_BODY_MAX, body_best, MATCH_W_BODY, MATCH_W_BODY_PREFIX);
    scan_field(q, rec->terms, RECORD_TERMS_MAX, body_best, MATCH_W_BODY, MATCH_W_BODY_PREFIX);
    for (unsigned w = 0; w < q->nwords; w++) {
        uint32_t s = (uint32_t)tag_best[w] + title_best[w] + body_best[w];
        if (s > 0) {
            sum += s;
            matched++;
        }
    }
    return sum * matched;
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

void
match_topk_sort(struct match_topk *t)
{
    if (t->n > 1)
        qsort(t->hits, t->n, sizeof(t->hits[0]), match_hit_cmp);
}

/* ---- Related records --------------------------------------------------------------- */

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
