/*
 * search_build: what writes the search index (search.h is the manual; lib/search_int.h
 * says which room holds what): the dictionary of terms and stem groups, the posting lists
 * as they are appended to, the entries with their key table and the expiry heap,
 * search_index_add, and search_index_build from the store. The queries only read what
 * this builds (search.c).
 */
#include "lib/search.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/fold.h"
#include "lib/log.h"
#include "lib/mp.h"
#include "lib/search_int.h"
#include "lib/stem.h"

static uint64_t
hash_bytes(const struct search_index *ix, uint8_t field, const void *p, size_t n)
{
    uint8_t buf[1 + 64], out[crypto_shorthash_BYTES];

    buf[0] = field;
    memcpy(buf + 1, p, n);
    crypto_shorthash(out, buf, 1 + n, ix->hkey);
    return be64dec(out);
}

/* ---- Dictionary -------------------------------------------------------------------- */

static uint32_t
term_hash(const struct search_index *ix, uint8_t tag, const char *text, size_t len)
{
    return (uint32_t)hash_bytes(ix, tag, text, len);
}

static uint32_t
group_hash(const struct search_index *ix, uint8_t lang, const char *text, size_t len)
{
    return (uint32_t)hash_bytes(ix, (uint8_t)(0x80 | lang), text, len);
}

static int
tslots_resize(struct search_index *ix, uint32_t cap)
{
    uint32_t *s = calloc(cap, sizeof(*s));

    if (s == NULL)
        return PULL_ERR_NOMEM;
    for (uint32_t i = 0; i < ix->nterms; i++) {
        const struct term *t = &ix->terms[i];
        uint32_t h = term_hash(ix, t->tag, t->text, t->len) & (cap - 1);
        while (s[h] != 0)
            h = (h + 1) & (cap - 1);
        s[h] = i + 1;
    }
    free(ix->tslots);
    ix->tslots = s;
    ix->tcap = cap;
    return 0;
}

/* Finds the term (tag, text[0..len)). Returns its index, or UINT32_MAX if absent (then
 * *slot is where it would go). */
uint32_t
search_term_find(const struct search_index *ix, uint8_t tag, const char *text, size_t len,
                 uint32_t *slot)
{
    uint32_t h;

    if (ix->tcap == 0 || len > MATCH_TERM_MAX)
        return UINT32_MAX;
    h = term_hash(ix, tag, text, len) & (ix->tcap - 1);
    while (ix->tslots[h] != 0) {
        const struct term *t = &ix->terms[ix->tslots[h] - 1];
        if (t->tag == tag && t->len == len && memcmp(t->text, text, len) == 0)
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
term_get(struct search_index *ix, uint8_t tag, const char *text, size_t len)
{
    uint32_t i, slot = 0;
    struct term *t;

    if ((i = search_term_find(ix, tag, text, len, &slot)) != UINT32_MAX)
        return i;
    if (ix->nterms >= SEARCH_TERMS_MAX)
        return UINT32_MAX;
    if ((uint64_t)(ix->nterms + 1) * 2 > ix->tcap) {
        if (tslots_resize(ix, ix->tcap ? ix->tcap * 2 : 1024) != 0)
            return UINT32_MAX;
        (void)search_term_find(ix, tag, text, len, &slot);
    }
    if (ix->nterms == ix->cterms) {
        struct term *nt = search_grow(ix->terms, &ix->cterms, ix->nterms + 1, sizeof(*nt));
        if (nt == NULL)
            return UINT32_MAX;
        ix->terms = nt;
    }
    i = ix->nterms++;
    t = &ix->terms[i];
    memset(t, 0, sizeof(*t));
    t->tag = tag;
    t->len = (uint8_t)len;
    memcpy(t->text, text, len);
    if (!tag) {
        t->nchars = (uint8_t)fold_chars(text, len);
        t->bag = match_bag(text, len);
    }
    ix->tslots[slot] = i + 1;
    return i;
}

static int
gslots_resize(struct search_index *ix, uint32_t cap)
{
    uint32_t *s = calloc(cap, sizeof(*s));

    if (s == NULL)
        return PULL_ERR_NOMEM;
    for (uint32_t i = 0; i < ix->ngroups; i++) {
        const struct group *g = &ix->groups[i];
        uint32_t h = group_hash(ix, g->lang, g->text, g->len) & (cap - 1);
        while (s[h] != 0)
            h = (h + 1) & (cap - 1);
        s[h] = i + 1;
    }
    free(ix->gslots);
    ix->gslots = s;
    ix->gcap = cap;
    return 0;
}

uint32_t
search_group_find(const struct search_index *ix, uint8_t lang, const char *text, size_t len,
                  uint32_t *slot)
{
    uint32_t h;

    if (ix->gcap == 0)
        return UINT32_MAX;
    h = group_hash(ix, lang, text, len) & (ix->gcap - 1);
    while (ix->gslots[h] != 0) {
        const struct group *g = &ix->groups[ix->gslots[h] - 1];
        if (g->lang == lang && g->len == len && memcmp(g->text, text, len) == 0)
            return ix->gslots[h] - 1;
        h = (h + 1) & (ix->gcap - 1);
    }
    if (slot != NULL)
        *slot = h;
    return UINT32_MAX;
}

/* Lists term ti in the stem group of its stem in lang. Returns 0, PULL_ERR_NOMEM or
 * PULL_ERR_TOO_BIG (SEARCH_MEMBERS_MAX: the record is then indexed partially). */
static int
group_add(struct search_index *ix, uint32_t ti, uint8_t lang)
{
    char stem[MATCH_TERM_MAX + 1];
    size_t sl;
    uint32_t gi, slot = 0;
    struct group *g;
    struct member *m;

    if (ix->nmembers >= SEARCH_MEMBERS_MAX)
        return PULL_ERR_TOO_BIG;
    sl = stem_word(lang, ix->terms[ti].text, ix->terms[ti].len, stem, sizeof(stem));
    if ((gi = search_group_find(ix, lang, stem, sl, &slot)) == UINT32_MAX) {
        if ((uint64_t)(ix->ngroups + 1) * 2 > ix->gcap) {
            if (gslots_resize(ix, ix->gcap ? ix->gcap * 2 : 1024) != 0)
                return PULL_ERR_NOMEM;
            (void)search_group_find(ix, lang, stem, sl, &slot);
        }
        if (ix->ngroups == ix->cgroups) {
            struct group *ng = search_grow(ix->groups, &ix->cgroups, ix->ngroups + 1, sizeof(*ng));
            if (ng == NULL)
                return PULL_ERR_NOMEM;
            ix->groups = ng;
        }
        gi = ix->ngroups++;
        g = &ix->groups[gi];
        memset(g, 0, sizeof(*g));
        g->lang = lang;
        g->len = (uint8_t)sl;
        memcpy(g->text, stem, sl);
        g->nchars = (uint8_t)fold_chars(stem, sl);
        g->bag = match_bag(stem, sl);
        ix->gslots[slot] = gi + 1;
    }
    if (ix->nmembers == ix->cmembers) {
        struct member *nm = search_grow(ix->members, &ix->cmembers, ix->nmembers + 1, sizeof(*nm));
        if (nm == NULL)
            return PULL_ERR_NOMEM;
        ix->members = nm;
    }
    g = &ix->groups[gi];
    m = &ix->members[ix->nmembers++];
    m->term = ti;
    m->next = g->first;
    g->first = ix->nmembers;
    ix->terms[ti].langs |= (uint32_t)1 << lang;
    return 0;
}

/* ---- Postings ---------------------------------------------------------------------- */

/* Frequencies byte: tags bits 0-1, title bits 2-3, body bits 4-7. */
static inline uint8_t
tf_byte(const uint8_t tf[MATCH_FIELDS])
{
    return (uint8_t)(tf[0] | tf[1] << 2 | tf[2] << 4);
}

/* Appends entry e with frequencies fb to t's postings (entries come in increasing order). */
static int
post_add(struct search_index *ix, struct term *t, uint32_t e, uint8_t fb)
{
    uint64_t v = (uint64_t)(t->count == 0 ? e : e - t->last) << 1;
    uint32_t old = t->pcap;

    if (fb != 0x10)
        v |= 1;
    if (t->plen + 7 > t->pcap) {
        uint32_t want = t->pcap < 8 ? 8 : t->pcap + t->pcap / 2;
        uint8_t *np = realloc(t->post, want);
        if (np == NULL)
            return PULL_ERR_NOMEM;
        t->post = np;
        t->pcap = want;
        ix->post_bytes += t->pcap - old;
    }
    while (v >= 0x80) {
        t->post[t->plen++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t->post[t->plen++] = (uint8_t)v;
    if (fb != 0x10)
        t->post[t->plen++] = fb;
    t->last = e;
    t->count++;
    return 0;
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
    uint16_t len[MATCH_FIELDS];

    if ((ix->efl[e] & E_DEAD) != 0)
        return;
    ix->efl[e] |= E_DEAD;
    ix->live--;
    ix->dead++;
    elen_of(ix, e, len);
    for (unsigned f = 0; f < MATCH_FIELDS; f++)
        ix->len_sum[f] -= len[f];
    ix->lang_live[EFL_LANG(ix->efl[e])]--;
}

static inline bool
heap_less(const struct search_index *ix, uint32_t a, uint32_t b)
{
    return ix->eexpires[a] < ix->eexpires[b];
}

static int
heap_push(struct search_index *ix, uint32_t e)
{
    uint32_t i;

    if (ix->nheap == ix->cheap) {
        uint32_t *nh = search_grow(ix->heap, &ix->cheap, ix->nheap + 1, sizeof(*nh));
        if (nh == NULL)
            return PULL_ERR_NOMEM;
        ix->heap = nh;
    }
    i = ix->nheap++;
    ix->heap[i] = e;
    while (i > 0) {
        uint32_t p = (i - 1) / 2, t;
        if (!heap_less(ix, ix->heap[i], ix->heap[p]))
            break;
        t = ix->heap[i];
        ix->heap[i] = ix->heap[p];
        ix->heap[p] = t;
        i = p;
    }
    return 0;
}

static void
heap_pop(struct search_index *ix)
{
    uint32_t i = 0;

    ix->heap[0] = ix->heap[--ix->nheap];
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i, t;
        if (l < ix->nheap && heap_less(ix, ix->heap[l], ix->heap[m]))
            m = l;
        if (r < ix->nheap && heap_less(ix, ix->heap[r], ix->heap[m]))
            m = r;
        if (m == i)
            return;
        t = ix->heap[i];
        ix->heap[i] = ix->heap[m];
        ix->heap[m] = t;
        i = m;
    }
}

/* Retires every entry expired at now_s (time only goes on: they stay retired). */
void
search_expire(struct search_index *ix, uint64_t now_s)
{
    if (now_s == 0)
        return;
    while (ix->nheap > 0 && ix->eexpires[ix->heap[0]] <= now_s) {
        retire(ix, ix->heap[0]);
        heap_pop(ix);
    }
}

/* The distinct words of a record being added, with their frequency per field. */
#define REC_SLOTS 512
struct rec_words {
    struct {
        char text[MATCH_TERM_MAX + 1];
        uint8_t len;
        uint8_t tf[MATCH_FIELDS];
    } w[SEARCH_TERMS_PER_RECORD];
    uint16_t slots[REC_SLOTS]; /* word index + 1 */
    unsigned n;
    unsigned words[MATCH_FIELDS];
    bool overflow;
};

static void
rec_words_text(struct rec_words *rw, unsigned f, const char *s, size_t max)
{
    static const uint8_t cap[MATCH_FIELDS] = {MATCH_TF_TAG, MATCH_TF_TITLE, MATCH_TF_BODY};
    char w[MATCH_TERM_MAX + 1];
    size_t n = strnlen(s, max), off = 0, len;

    while ((len = match_field_next(s, n, &off, w)) > 0) {
        uint32_t h = match_word_hash(w, len) & (REC_SLOTS - 1);
        rw->words[f]++;
        while (rw->slots[h] != 0) {
            unsigned i = rw->slots[h] - 1;
            if (rw->w[i].len == len && memcmp(rw->w[i].text, w, len) == 0)
                break;
            h = (h + 1) & (REC_SLOTS - 1);
        }
        if (rw->slots[h] == 0) {
            unsigned i;
            if (rw->n >= SEARCH_TERMS_PER_RECORD) {
                rw->overflow = true;
                continue;
            }
            i = rw->n++;
            memcpy(rw->w[i].text, w, len);
            rw->w[i].len = (uint8_t)len;
            memset(rw->w[i].tf, 0, sizeof(rw->w[i].tf));
            rw->slots[h] = (uint16_t)(i + 1);
        }
        {
            unsigned i = rw->slots[h] - 1;
            if (rw->w[i].tf[f] < cap[f])
                rw->w[i].tf[f]++;
        }
    }
}

static uint64_t
key_of(const struct search_index *ix, const struct record *rec)
{
    uint8_t k[32 + RECORD_SLOT_BYTES];

    memcpy(k, rec->author, 32);
    memcpy(k + 32, rec->slot, RECORD_SLOT_BYTES);
    return hash_bytes(ix, 0xff, k, sizeof(k));
}

/* Makes room for one more entry in every per-entry array. */
static int
ents_reserve(struct search_index *ix)
{
    uint32_t cap = ix->cents;
    struct entry *ne;
    uint16_t *nf;
    uint32_t *nl, *nc, *nx;

    if (ix->nents < ix->cents)
        return 0;
    if ((ne = search_grow(ix->ents, &cap, ix->nents + 1, sizeof(*ne))) == NULL)
        return PULL_ERR_NOMEM;
    ix->ents = ne;
    if ((nf = realloc(ix->efl, (size_t)cap * sizeof(*nf))) == NULL)
        return PULL_ERR_NOMEM;
    ix->efl = nf;
    if ((nl = realloc(ix->elen, (size_t)cap * sizeof(*nl))) == NULL)
        return PULL_ERR_NOMEM;
    ix->elen = nl;
    if ((nc = realloc(ix->ecreated, (size_t)cap * sizeof(*nc))) == NULL)
        return PULL_ERR_NOMEM;
    ix->ecreated = nc;
    if ((nx = realloc(ix->eexpires, (size_t)cap * sizeof(*nx))) == NULL)
        return PULL_ERR_NOMEM;
    ix->eexpires = nx;
    ix->cents = cap;
    return 0;
}

static int
add_partial(struct search_index *ix, uint32_t e)
{
    uint32_t *np = search_grow(ix->partial, &ix->cpartial, ix->npartial + 1, sizeof(*np));

    if (np == NULL)
        return PULL_ERR_NOMEM;
    ix->partial = np;
    ix->partial[ix->npartial++] = e;
    ix->efl[e] |= E_PARTIAL;
    return 0;
}

int
search_index_add(struct search_index *ix, const uint8_t id[static RECORD_ID_BYTES],
                 const struct record *rec)
{
    uint64_t key8 = key_of(ix, rec);
    uint32_t *slot, e;
    struct entry *en;
    struct rec_words *rw = NULL;
    unsigned ntags = rec->ntags < RECORD_TAGS_MAX ? rec->ntags : RECORD_TAGS_MAX, lang;
    unsigned nposted = 0;
    bool ok = true;
    int rc = 0;

    if ((uint64_t)(ix->nents + 1) * 2 > ix->kcap &&
        kslots_resize(ix, ix->kcap ? ix->kcap * 2 : 1024) != 0)
        return PULL_ERR_NOMEM;
    slot = kslot_find(ix, key8);
    /* this very record again (a build in steps reaching one that a commit added): the same
     * author, slot, created time and id prefix (a forged prefix match only keeps its own
     * author's older version in the index, and search_fetch drops that one) */
    if (*slot != 0 && (ix->efl[*slot - 1] & E_DEAD) == 0 &&
        ix->ents[*slot - 1].id8 == search_id8(id) &&
        ix->ecreated[*slot - 1] ==
            (rec->created > UINT32_MAX ? UINT32_MAX : (uint32_t)rec->created))
        return 0;
    if (*slot != 0)
        retire(ix, *slot - 1);
    if (rec->kind == RECORD_WITHDRAWN)
        return 0;
    if (ix->nents >= SEARCH_ENTRIES_MAX)
        return PULL_ERR_TOO_BIG;
    if (ents_reserve(ix) != 0 || (rw = calloc(1, sizeof(*rw))) == NULL)
        return PULL_ERR_NOMEM;
    lang = stem_lang_of(rec);
    for (unsigned i = 0; i < ntags; i++) {
        if (!stem_is_lang_tag(rec->tags[i]))
            rec_words_text(rw, MATCH_F_TAG, rec->tags[i], RECORD_TAG_MAX);
    }
    rec_words_text(rw, MATCH_F_TITLE, rec->title, RECORD_TITLE_MAX);
    rec_words_text(rw, MATCH_F_BODY, rec->body, RECORD_BODY_MAX);
    rec_words_text(rw, MATCH_F_BODY, rec->terms, RECORD_TERMS_MAX);

    e = ix->nents;
    en = &ix->ents[e];
    memset(en, 0, sizeof(*en));
    en->id8 = search_id8(id);
    en->author8 = search_id8(rec->author);
    en->key8 = key8;
    ix->ecreated[e] = rec->created > UINT32_MAX ? UINT32_MAX : (uint32_t)rec->created;
    ix->eexpires[e] = rec->expires > UINT32_MAX ? UINT32_MAX : (uint32_t)rec->expires;
    if ((rc = heap_push(ix, e)) != 0)
        goto out;
    ix->efl[e] = (uint16_t)(lang << 2 | (rec->kind & 7u) << 7);
    {
        uint32_t lt = rw->words[0] < MATCH_LEN_TAG ? rw->words[0] : MATCH_LEN_TAG;
        uint32_t li = rw->words[1] < MATCH_LEN_TITLE ? rw->words[1] : MATCH_LEN_TITLE;
        uint32_t lb = rw->words[2] < MATCH_LEN_BODY ? rw->words[2] : MATCH_LEN_BODY;
        ix->elen[e] = lt | li << 8 | lb << 16;
        ix->len_sum[0] += lt;
        ix->len_sum[1] += li;
        ix->len_sum[2] += lb;
    }
    ix->nents++;
    *slot = e + 1;
    ix->live++;
    ix->lang_live[lang]++;

    /* Whole tags, for the tag filter. */
    for (unsigned i = 0; i < ntags; i++) {
        char t[MATCH_TERM_MAX + 1];
        uint32_t ti;
        long tl = fold_string(rec->tags[i], t, sizeof(t));
        if (tl < 0)
            tl = (long)strlen(t);
        if (tl == 0)
            continue;
        if (nposted >= SEARCH_TERMS_PER_RECORD ||
            (ti = term_get(ix, 1, t, (size_t)tl)) == UINT32_MAX) {
            ok = false;
            continue;
        }
        if (ix->terms[ti].count > 0 && ix->terms[ti].last == e)
            continue; /* two tags folding alike (an old record) */
        nposted++;
        if (post_add(ix, &ix->terms[ti], e, 0x10) != 0)
            ok = false;
    }
    if (rw->overflow)
        ok = false;
    for (unsigned i = 0; i < rw->n; i++) {
        uint32_t ti;
        if (nposted >= SEARCH_TERMS_PER_RECORD ||
            (ti = term_get(ix, 0, rw->w[i].text, rw->w[i].len)) == UINT32_MAX) {
            ok = false;
            continue;
        }
        if (lang != STEM_NONE && (ix->terms[ti].langs & ((uint32_t)1 << lang)) == 0 &&
            group_add(ix, ti, (uint8_t)lang) != 0) {
            ok = false;
            continue;
        }
        nposted++;
        if (post_add(ix, &ix->terms[ti], e, tf_byte(rw->w[i].tf)) != 0)
            ok = false;
    }
    if (!ok && add_partial(ix, e) != 0) {
        retire(ix, e); /* can't even remember it: search will miss it */
        rc = PULL_ERR_NOMEM;
    }
out:
    free(rw);
    return rc;
}

/* ---- Store ------------------------------------------------------------------------- */

struct build_ctx {
    struct search_index *ix;
    struct record *rec;
    uint64_t now_s;
    int err;
    size_t visited; /* stored records read */
    size_t damaged; /* of them, those that no longer decode */
};

static int
build_one(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct build_ctx *b = ctx;
    struct envelope e;
    int rc;

    b->visited++;
    if (envelope_parse(env, len, &e) != 0 || record_decode(e.rec, e.rec_len, b->rec) != 0) {
        b->damaged++; /* the store verified it once; skip what no longer decodes */
        return 0;
    }
    if (b->rec->kind == RECORD_WITHDRAWN || b->rec->expires <= b->now_s)
        return 0;
    if ((rc = search_index_add(b->ix, id, b->rec)) == PULL_ERR_NOMEM)
        return rc;
    return 0;
}

int
search_index_build_step(struct search_index *ix, struct store *s, uint64_t now_s,
                        struct search_build *b, size_t max)
{
    struct build_ctx c = {.ix = ix, .now_s = now_s};
    int rc;

    if (b->done)
        return 0;
    if (!b->cur.started && b->visited == 0)
        search_index_clear(ix);
    if ((c.rec = malloc(sizeof(*c.rec))) == NULL)
        return PULL_ERR_NOMEM;
    rc = store_iter_resume(s, &b->cur, max, build_one, &c);
    free(c.rec);
    b->visited += c.visited;
    b->damaged += c.damaged;
    if (c.damaged > 0)
        log_warn("search index: %zu stored record(s) no longer decode: skipped", c.damaged);
    if (rc < 0)
        return rc;
    b->done = rc == 0;
    return 0;
}

int
search_index_build(struct search_index *ix, struct store *s, uint64_t now_s)
{
    struct search_build b;

    memset(&b, 0, sizeof(b));
    return search_index_build_step(ix, s, now_s, &b, SIZE_MAX);
}
