#include "lib/search.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/mp.h"

/* Fields of a term, with the weights of lib/match.h. */
enum { F_TAG = 0, F_TAGTOK = 1, F_TITLE = 2, F_BODY = 3, F_COUNT };

static const uint8_t w_exact[F_COUNT] = {MATCH_W_TAG, MATCH_W_TAG_TOKEN, MATCH_W_TITLE,
                                         MATCH_W_BODY};
static const uint8_t w_prefix[F_COUNT] = {MATCH_W_TAG_PREFIX, MATCH_W_TAG_PREFIX,
                                          MATCH_W_TITLE_PREFIX, MATCH_W_BODY_PREFIX};
/* Which of the three scores of match_score (tags, title, body) a field adds to. */
static const uint8_t f_slot[F_COUNT] = {0, 0, 1, 2};

#define TERM_TEXT_MAX (MATCH_WORD_MAX + 1)

struct term {
    uint8_t *post; /* LEB128 deltas of entry indexes, ascending */
    uint32_t plen, pcap;
    uint32_t last;  /* last entry posted */
    uint32_t count; /* entries posted */
    uint8_t field;
    uint8_t len;
    bool single; /* F_TAG: the tag is one token, so a query word can equal it */
    char text[TERM_TEXT_MAX + 1];
};

enum { E_DEAD = 1, E_PARTIAL = 2 };

struct entry {
    uint64_t id8, author8, key8;
    uint32_t created, expires;
    uint8_t kind, flags;
};

struct search_index {
    uint8_t hkey[crypto_shorthash_KEYBYTES];
    struct term *terms;
    uint32_t nterms, cterms;
    uint32_t *tslots; /* term index + 1, 0 = empty */
    uint32_t tcap;    /* power of two */
    struct entry *ents;
    uint32_t nents, cents;
    uint32_t *kslots; /* entry index + 1 by key8 */
    uint32_t kcap;
    uint32_t *partial; /* entries indexed partially */
    uint32_t npartial, cpartial;
    size_t live, dead;
    size_t post_bytes;
};

uint64_t
search_id8(const uint8_t *id)
{
    return be64dec(id);
}

static uint64_t
hash_bytes(const struct search_index *ix, uint8_t field, const void *p, size_t n)
{
    uint8_t buf[1 + 64], out[crypto_shorthash_BYTES];

    buf[0] = field;
    memcpy(buf + 1, p, n);
    crypto_shorthash(out, buf, 1 + n, ix->hkey);
    return be64dec(out);
}

static void *
grow(void *p, uint32_t *cap, uint32_t need, size_t elem)
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
    free(ix->ents);
    free(ix->kslots);
    free(ix->partial);
    ix->terms = NULL;
    ix->tslots = NULL;
    ix->ents = NULL;
    ix->kslots = NULL;
    ix->partial = NULL;
    ix->nterms = ix->cterms = ix->tcap = 0;
    ix->nents = ix->cents = ix->kcap = 0;
    ix->npartial = ix->cpartial = 0;
    ix->live = ix->dead = ix->post_bytes = 0;
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

bool
search_index_needs_rebuild(const struct search_index *ix)
{
    return ix->dead > 4096 && ix->dead > ix->live;
}

size_t
search_index_bytes(const struct search_index *ix)
{
    return sizeof(*ix) + (size_t)ix->cterms * sizeof(struct term) + (size_t)ix->tcap * 4 +
           (size_t)ix->cents * sizeof(struct entry) + (size_t)ix->kcap * 4 +
           (size_t)ix->cpartial * 4 + ix->post_bytes;
}

/* ---- Dictionary -------------------------------------------------------------------- */

static uint32_t
term_hash_of(const struct search_index *ix, const struct term *t)
{
    return (uint32_t)hash_bytes(ix, t->field, t->text, t->len);
}

static int
tslots_resize(struct search_index *ix, uint32_t cap)
{
    uint32_t *s = calloc(cap, sizeof(*s));

    if (s == NULL)
        return PULL_ERR_NOMEM;
    for (uint32_t i = 0; i < ix->nterms; i++) {
        uint32_t h = term_hash_of(ix, &ix->terms[i]) & (cap - 1);
        while (s[h] != 0)
            h = (h + 1) & (cap - 1);
        s[h] = i + 1;
    }
    free(ix->tslots);
    ix->tslots = s;
    ix->tcap = cap;
    return 0;
}

/* Finds the term (field, text[0..len)); len <= TERM_TEXT_MAX. Returns its index, or
 * UINT32_MAX if absent (then *slot is where it would go). */
static uint32_t
term_find(const struct search_index *ix, uint8_t field, const char *text, size_t len,
          uint32_t *slot)
{
    uint32_t h;

    if (ix->tcap == 0)
        return UINT32_MAX;
    h = (uint32_t)hash_bytes(ix, field, text, len) & (ix->tcap - 1);
    while (ix->tslots[h] != 0) {
        const struct term *t = &ix->terms[ix->tslots[h] - 1];
        if (t->field == field && t->len == len && memcmp(t->text, text, len) == 0)
            return ix->tslots[h] - 1;
        h = (h + 1) & (ix->tcap - 1);
    }
    if (slot != NULL)
        *slot = h;
    return UINT32_MAX;
}

/* Returns the index of the term, adding it if needed; UINT32_MAX if the dictionary is full
 * or memory ran out. */
static uint32_t
term_get(struct search_index *ix, uint8_t field, const char *text, size_t len, bool single)
{
    uint32_t i, slot = 0;
    struct term *t;

    if ((i = term_find(ix, field, text, len, &slot)) != UINT32_MAX)
        return i;
    if (ix->nterms >= SEARCH_TERMS_MAX)
        return UINT32_MAX;
    if ((uint64_t)(ix->nterms + 1) * 2 > ix->tcap) {
        if (tslots_resize(ix, ix->tcap ? ix->tcap * 2 : 1024) != 0)
            return UINT32_MAX;
        (void)term_find(ix, field, text, len, &slot);
    }
    if (ix->nterms == ix->cterms) {
        struct term *nt = grow(ix->terms, &ix->cterms, ix->nterms + 1, sizeof(*nt));
        if (nt == NULL)
            return UINT32_MAX;
        ix->terms = nt;
    }
    i = ix->nterms++;
    t = &ix->terms[i];
    memset(t, 0, sizeof(*t));
    t->field = field;
    t->len = (uint8_t)len;
    t->single = single;
    memcpy(t->text, text, len);
    ix->tslots[slot] = i + 1;
    return i;
}

/* Appends entry e to t's postings (entries are added in increasing order). */
static int
post_add(struct search_index *ix, struct term *t, uint32_t e)
{
    uint32_t d = t->count == 0 ? e : e - t->last;
    uint32_t old = t->pcap;

    if (t->plen + 5 > t->pcap) {
        uint8_t *np = grow(t->post, &t->pcap, t->plen + 5, 1);
        if (np == NULL)
            return PULL_ERR_NOMEM;
        t->post = np;
        ix->post_bytes += t->pcap - old;
    }
    while (d >= 0x80) {
        t->post[t->plen++] = (uint8_t)(d | 0x80);
        d >>= 7;
    }
    t->post[t->plen++] = (uint8_t)d;
    t->last = e;
    t->count++;
    return 0;
}

/* Walks postings: call with *off = 0, *cur = 0 and first = true; returns false at the end. */
static inline bool
post_next(const struct term *t, uint32_t *off, uint32_t *cur, uint32_t *k)
{
    uint32_t d = 0, shift = 0;

    if (*k >= t->count)
        return false;
    while (*off < t->plen) {
        uint8_t b = t->post[(*off)++];
        d |= (uint32_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            break;
        shift += 7;
    }
    *cur = *k == 0 ? d : *cur + d;
    (*k)++;
    return true;
}

/* ---- Entries ----------------------------------------------------------------------- */

static int
kslots_resize(struct search_index *ix, uint32_t cap)
{
    uint32_t *s = calloc(cap, sizeof(*s));
    uint32_t *old = ix->kslots, oldcap = ix->kcap;

    if (s == NULL)
        return PULL_ERR_NOMEM;
    for (uint32_t i = 0; i < oldcap; i++) {
        uint32_t e = old[i], h;
        if (e == 0)
            continue;
        h = (uint32_t)ix->ents[e - 1].key8 & (cap - 1);
        while (s[h] != 0)
            h = (h + 1) & (cap - 1);
        s[h] = e;
    }
    free(old);
    ix->kslots = s;
    ix->kcap = cap;
    return 0;
}

static uint32_t *
kslot_find(struct search_index *ix, uint64_t key8)
{
    uint32_t h = (uint32_t)key8 & (ix->kcap - 1);

    while (ix->kslots[h] != 0) {
        if (ix->ents[ix->kslots[h] - 1].key8 == key8)
            return &ix->kslots[h];
        h = (h + 1) & (ix->kcap - 1);
    }
    return &ix->kslots[h];
}

static void
retire(struct search_index *ix, uint32_t e)
{
    if ((ix->ents[e].flags & E_DEAD) == 0) {
        ix->ents[e].flags |= E_DEAD;
        ix->live--;
        ix->dead++;
    }
}

/* Posts entry e under term (field, text) unless already posted for it. Returns false if
 * the record could not be indexed entirely (caps, memory). */
static bool
index_term(struct search_index *ix, uint32_t e, uint8_t field, const char *text, size_t len,
           bool single, unsigned *nterms)
{
    uint32_t ti;
    struct term *t;

    if ((ti = term_get(ix, field, text, len, single)) == UINT32_MAX)
        return false;
    t = &ix->terms[ti];
    if (t->count > 0 && t->last == e)
        return true; /* the word is there twice */
    if (*nterms >= SEARCH_TERMS_PER_RECORD)
        return false;
    (*nterms)++;
    return post_add(ix, t, e) == 0;
}

/* Indexes each token of s (at most max bytes) under field. */
static bool
index_text(struct search_index *ix, uint32_t e, uint8_t field, const char *s, size_t max,
           unsigned *nterms)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + strnlen(s, max);
    bool ok = true;

    while (p < end) {
        char tok[TERM_TEXT_MAX];
        size_t n = 0;

        while (p < end && !match_is_word(*p))
            p++;
        if (p >= end)
            break;
        while (p < end && match_is_word(*p)) {
            if (n < TERM_TEXT_MAX)
                tok[n++] = (char)match_lower(*p);
            p++;
        }
        if (!index_term(ix, e, field, tok, n, false, nterms))
            ok = false;
    }
    return ok;
}

static bool
tag_is_single(const char *tag, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!match_is_word((uint8_t)tag[i]))
            return false;
    }
    return n > 0;
}

static uint64_t
key_of(const struct search_index *ix, const struct record *rec)
{
    uint8_t k[32 + RECORD_SLOT_BYTES];

    memcpy(k, rec->author, 32);
    memcpy(k + 32, rec->slot, RECORD_SLOT_BYTES);
    return hash_bytes(ix, 0xff, k, sizeof(k));
}

int
search_index_add(struct search_index *ix, const uint8_t id[static RECORD_ID_BYTES],
                 const struct record *rec)
{
    uint64_t key8 = key_of(ix, rec);
    uint32_t *slot, e;
    struct entry *en;
    unsigned nterms = 0;
    bool ok = true;

    if ((uint64_t)(ix->nents + 1) * 2 > ix->kcap &&
        kslots_resize(ix, ix->kcap ? ix->kcap * 2 : 1024) != 0)
        return PULL_ERR_NOMEM;
    slot = kslot_find(ix, key8);
    if (*slot != 0)
        retire(ix, *slot - 1);
    if (rec->kind == RECORD_WITHDRAWN)
        return 0;
    if (ix->nents >= SEARCH_ENTRIES_MAX)
        return PULL_ERR_TOO_BIG;
    if (ix->nents == ix->cents) {
        struct entry *ne = grow(ix->ents, &ix->cents, ix->nents + 1, sizeof(*ne));
        if (ne == NULL)
            return PULL_ERR_NOMEM;
        ix->ents = ne;
    }
    e = ix->nents++;
    en = &ix->ents[e];
    memset(en, 0, sizeof(*en));
    en->id8 = search_id8(id);
    en->author8 = search_id8(rec->author);
    en->key8 = key8;
    en->created = rec->created > UINT32_MAX ? UINT32_MAX : (uint32_t)rec->created;
    en->expires = rec->expires > UINT32_MAX ? UINT32_MAX : (uint32_t)rec->expires;
    en->kind = rec->kind;
    *slot = e + 1;
    ix->live++;

    for (unsigned i = 0; i < rec->ntags && i < RECORD_TAGS_MAX; i++) {
        const char *tag = rec->tags[i];
        size_t n = strnlen(tag, RECORD_TAG_MAX);
        bool single = tag_is_single(tag, n);
        if (!index_term(ix, e, F_TAG, tag, n, single, &nterms))
            ok = false;
        if (!single && !index_text(ix, e, F_TAGTOK, tag, RECORD_TAG_MAX, &nterms))
            ok = false;
    }
    if (!index_text(ix, e, F_TITLE, rec->title, RECORD_TITLE_MAX, &nterms) ||
        !index_text(ix, e, F_BODY, rec->body, RECORD_BODY_MAX, &nterms) ||
        !index_text(ix, e, F_BODY, rec->terms, RECORD_TERMS_MAX, &nterms))
        ok = false;
    if (!ok) {
        uint32_t *np = grow(ix->partial, &ix->cpartial, ix->npartial + 1, sizeof(*np));
        if (np == NULL) {
            retire(ix, e); /* can't even remember it: search will miss it */
            return PULL_ERR_NOMEM;
        }
        ix->partial = np;
        ix->partial[ix->npartial++] = e;
        en->flags |= E_PARTIAL;
    }
    return 0;
}

/* ---- Queries ----------------------------------------------------------------------- */

struct qstate {
    struct search_index *ix;
    const struct match_query *q;
    uint8_t *best;    /* 3 per entry: this word's best in tags, title, body */
    uint32_t *total;  /* sum over words */
    uint8_t *matched; /* words matched */
    uint8_t *tagcnt;  /* query tags present */
    uint32_t *touched, ntouched;
    uint32_t *cands, ncands;
};

static void
score_term(struct qstate *st, const struct term *t, uint8_t w)
{
    uint32_t off = 0, cur = 0, k = 0;
    uint8_t s = f_slot[t->field];

    while (post_next(t, &off, &cur, &k)) {
        uint8_t *b = &st->best[(size_t)cur * 3];
        if (cur >= st->ix->nents)
            break;
        if (b[s] >= w)
            continue;
        if ((b[0] | b[1] | b[2]) == 0)
            st->touched[st->ntouched++] = cur;
        b[s] = w;
    }
}

static void
score_word(struct qstate *st, unsigned wi)
{
    const struct search_index *ix = st->ix;
    const char *word = st->q->words[wi];
    size_t wl = st->q->wlen[wi];

    st->ntouched = 0;
    if (wl == 0)
        return;
    if (wl < MATCH_PREFIX_MIN) {
        for (uint8_t f = 0; f < F_COUNT; f++) {
            uint32_t ti = term_find(ix, f, word, wl, NULL);
            if (ti != UINT32_MAX && (f != F_TAG || ix->terms[ti].single))
                score_term(st, &ix->terms[ti], w_exact[f]);
        }
    } else {
        for (uint32_t i = 0; i < ix->nterms; i++) {
            const struct term *t = &ix->terms[i];
            if (t->text[0] != word[0] || t->len < wl || (t->field == F_TAG && !t->single))
                continue;
            if (memcmp(t->text, word, wl) != 0)
                continue;
            score_term(st, t, t->len == wl ? w_exact[t->field] : w_prefix[t->field]);
        }
    }
    for (uint32_t i = 0; i < st->ntouched; i++) {
        uint32_t e = st->touched[i];
        uint8_t *b = &st->best[(size_t)e * 3];
        uint32_t s = (uint32_t)b[0] + b[1] + b[2];
        b[0] = b[1] = b[2] = 0;
        if (st->matched[e] == 0)
            st->cands[st->ncands++] = e;
        st->total[e] += s;
        st->matched[e]++;
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

/* The filters match_score applies first; expired entries are retired on the way. */
static bool
entry_ok(struct search_index *ix, const struct match_query *q, uint32_t e)
{
    struct entry *en = &ix->ents[e];

    if (en->flags & E_DEAD)
        return false;
    if (q->now_s != 0 && en->expires <= q->now_s) {
        retire(ix, e);
        return false;
    }
    if (q->kind != 0 && en->kind != q->kind)
        return false;
    return author_ok(q, en->author8);
}

static void
push(struct match_topk *tk, const struct entry *en, uint32_t e, uint32_t score)
{
    struct match_hit h = {.score = score, .created = en->created, .ref = e};

    match_topk_push(tk, &h);
}

int
search_index_query(struct search_index *ix, const struct match_query *q, uint32_t limit,
                   search_fetch_fn fetch, void *fetch_ctx, struct search_hit *hits, uint32_t *n)
{
    struct qstate st;
    struct match_topk tk;
    struct match_hit *kept = NULL;
    struct record *rec = NULL;
    size_t ne = ix->nents ? ix->nents : 1;
    int rc = 0;

    *n = 0;
    memset(&st, 0, sizeof(st));
    st.ix = ix;
    st.q = q;
    if (limit > SEARCH_LIMIT_MAX)
        limit = SEARCH_LIMIT_MAX;
    if (limit == 0)
        return 0;
    if ((kept = calloc(limit, sizeof(*kept))) == NULL)
        return PULL_ERR_NOMEM;
    match_topk_init(&tk, kept, limit);
    if (q->ntags > 0 && (st.tagcnt = calloc(ne, 1)) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    if (q->nwords > 0 &&
        ((st.best = calloc(ne, 3)) == NULL || (st.total = calloc(ne, 4)) == NULL ||
         (st.matched = calloc(ne, 1)) == NULL || (st.touched = calloc(ne, 4)) == NULL ||
         (st.cands = calloc(ne, 4)) == NULL)) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }

    /* Required tags: count, per entry, the query tags it carries. */
    for (unsigned i = 0; i < q->ntags; i++) {
        uint32_t ti = term_find(ix, F_TAG, q->tags[i], strlen(q->tags[i]), NULL);
        uint32_t off = 0, cur = 0, k = 0;
        if (ti == UINT32_MAX)
            break;
        while (post_next(&ix->terms[ti], &off, &cur, &k)) {
            if (cur < ix->nents && st.tagcnt[cur] == i)
                st.tagcnt[cur]++;
        }
    }

    if (q->nwords > 0) {
        for (unsigned w = 0; w < q->nwords; w++)
            score_word(&st, w);
        for (uint32_t i = 0; i < st.ncands; i++) {
            uint32_t e = st.cands[i];
            if (ix->ents[e].flags & E_PARTIAL)
                continue;
            if (q->ntags > 0 && st.tagcnt[e] != q->ntags)
                continue;
            if (entry_ok(ix, q, e))
                push(&tk, &ix->ents[e], e, st.total[e] * st.matched[e]);
        }
    } else {
        for (uint32_t e = 0; e < ix->nents; e++) {
            if (ix->ents[e].flags & E_PARTIAL)
                continue;
            if (q->ntags > 0 && st.tagcnt[e] != q->ntags)
                continue;
            if (entry_ok(ix, q, e))
                push(&tk, &ix->ents[e], e, 1);
        }
    }

    /* Entries the index holds only partly: score them on their decoded record. */
    if (fetch != NULL && ix->npartial > 0) {
        if ((rec = malloc(sizeof(*rec))) == NULL) {
            rc = PULL_ERR_NOMEM;
            goto out;
        }
        for (uint32_t i = 0; i < ix->npartial; i++) {
            uint32_t e = ix->partial[i];
            uint32_t score;
            if (!entry_ok(ix, q, e))
                continue;
            if (fetch(fetch_ctx, ix->ents[e].created, ix->ents[e].id8, rec) != 0)
                continue;
            if ((score = match_score(q, rec)) > 0)
                push(&tk, &ix->ents[e], e, score);
        }
    }

    match_topk_sort(&tk);
    for (uint32_t i = 0; i < tk.n; i++) {
        const struct entry *en = &ix->ents[tk.hits[i].ref];
        hits[i].score = tk.hits[i].score;
        hits[i].created = en->created;
        hits[i].id8 = en->id8;
        hits[i].entry = (uint32_t)tk.hits[i].ref;
    }
    *n = tk.n;
out:
    free(rec);
    free(kept);
    free(st.tagcnt);
    free(st.best);
    free(st.total);
    free(st.matched);
    free(st.touched);
    free(st.cands);
    return rc;
}

/* ---- Store ------------------------------------------------------------------------- */

struct build_ctx {
    struct search_index *ix;
    struct record *rec;
    uint64_t now_s;
    int err;
};

static int
build_one(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct build_ctx *b = ctx;
    struct envelope e;
    int rc;

    if (envelope_parse(env, len, &e) != 0 || record_decode(e.rec, e.rec_len, b->rec) != 0)
        return 0; /* the store verified it once; skip what no longer decodes */
    if (b->rec->kind == RECORD_WITHDRAWN || b->rec->expires <= b->now_s)
        return 0;
    if ((rc = search_index_add(b->ix, id, b->rec)) == PULL_ERR_NOMEM)
        return rc;
    return 0;
}

int
search_index_build(struct search_index *ix, struct store *s, uint64_t now_s)
{
    struct build_ctx b = {.ix = ix, .now_s = now_s};
    int rc;

    search_index_clear(ix);
    if ((b.rec = malloc(sizeof(*b.rec))) == NULL)
        return PULL_ERR_NOMEM;
    rc = store_iter_time(s, 0, build_one, &b);
    free(b.rec);
    return rc < 0 ? rc : 0;
}

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
