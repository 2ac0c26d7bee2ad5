/* Tests of lib/search: the inverted index must rank exactly like lib/match.h's brute-force
 * scorer over the decoded records with the same collection statistics (checked on random
 * records and queries in several languages, with accents, inflections, prefixes and
 * typos), count every match, retire replaced, withdrawn and expired records, score partial
 * records through the fetch function, stay bounded, and build from / fetch out of a real
 * store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/search.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/match.h"
#include "lib/record.h"
#include "lib/store.h"
#include "testutil.h"

#define NOW 1800000000u

static const char *const vocab[] = {
    "rust",       "Rust",         "rusty",
    "mentor",     "mentoring",    "mentors",
    "bike",       "bikes",        "repair",
    "repairs",    "repaired",     "lyon",
    "C",          "go",           "golang",
    "code",       "review",       "garden",
    "tools",      "guitar",       "piano",
    "été",        "ÉTÉ",          "lessons",
    "less",       "3d",           "print",
    "ab",         "abc",          "abcd",
    "bicycle",    "bicycles",     "Café",
    "CAFÉ",       "cafe",         "Straße",
    "STRASSE",    "strasse",      "école",
    "écoles",     "Fahrrad",      "Fahrräder",
    "reparación", "reparaciones", "clases",
    "guitarra",   "œuvre",        "need",
    "looking",    "the",          "for",
    "de",         "¿dónde?",      "«vélo»",
    "ﬁne",        "naïve",        "averyveryveryverylongwordthatgoesonandonforeverandever",
    "x"};
static const char *const tagv[] = {"rust",    "code-review", "bike",    "3d-print",  "c++", "go",
                                   "été",     "garden",      "a.b",     "mentoring", "x",   "cafÉ",
                                   "lang-de", "lang-fr",     "lang-es", "lang-xx"};
/* Query words beside the vocabulary: typos, prefixes, folds. */
static const char *const qextra[] = {
    "mentr",   "rsut",      "bicyles", "reapir", "guitr",      "cafe",    "strasse", "ecole",
    "fahrrad", "bicicleta", "ment",    "repa",   "mentorship", "guitare", "lesson",  "ete"};

static uint64_t rng_state = 88172645463325252ull;

static uint32_t
rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % n);
}

static void
words(char *out, size_t cap, unsigned n)
{
    size_t off = 0;

    out[0] = '\0';
    for (unsigned i = 0; i < n; i++) {
        int w = snprintf(out + off, cap - off, "%s%s%s", i ? (rnd(3) ? " " : ", ") : "",
                         vocab[rnd(sizeof(vocab) / sizeof(vocab[0]))], rnd(5) ? "" : "!");
        if (w < 0 || (size_t)w >= cap - off)
            break;
        off += (size_t)w;
    }
}

static void
random_record(struct record *r, uint8_t authors)
{
    record_init(r);
    r->kind = (uint8_t)(1 + rnd(3));
    memset(r->author, 0, 32);
    r->author[0] = (uint8_t)rnd(authors);
    r->author[1] = 0x5a;
    for (unsigned i = 0; i < RECORD_SLOT_BYTES; i++)
        r->slot[i] = (uint8_t)rnd(256);
    r->seq = 1;
    r->created = NOW - rnd(100000);
    r->expires = r->created + 30 * 86400;
    words(r->title, sizeof(r->title), 1 + rnd(6));
    if (r->title[0] == '\0')
        snprintf(r->title, sizeof(r->title), "t");
    words(r->body, 400, rnd(20));
    words(r->terms, 100, rnd(2));
    for (unsigned n = rnd(4); r->ntags < n;) {
        const char *t = tagv[rnd(sizeof(tagv) / sizeof(tagv[0]))];
        bool dup = false;
        for (unsigned j = 0; j < r->ntags; j++)
            dup |= strcmp(r->tags[j], t) == 0;
        if (!dup)
            snprintf(r->tags[r->ntags++], sizeof(r->tags[0]), "%s", t);
    }
}

/* The brute-force reference: live records in entry order. */
struct ref {
    struct record *recs;
    uint8_t (*ids)[32];
    bool *dead;
    size_t n;
};

/* ref_init: room for cap records in the brute-force reference. */
static void
ref_init(struct ref *rf, size_t cap)
{
    rf->recs = calloc(cap, sizeof(*rf->recs));
    rf->ids = calloc(cap, sizeof(*rf->ids));
    rf->dead = calloc(cap, sizeof(*rf->dead));
    assert_non_null(rf->recs);
    assert_non_null(rf->ids);
    assert_non_null(rf->dead);
}

static void
ref_free(struct ref *rf)
{
    free(rf->recs);
    free(rf->ids);
    free(rf->dead);
}

static void
ref_add(struct ref *rf, struct search_index *ix, const struct record *r, const uint8_t id[32])
{
    for (size_t i = 0; i < rf->n; i++) {
        if (!rf->dead[i] && memcmp(rf->recs[i].author, r->author, 32) == 0 &&
            memcmp(rf->recs[i].slot, r->slot, RECORD_SLOT_BYTES) == 0)
            rf->dead[i] = true;
    }
    assert_int_equal(search_index_add(ix, id, r), 0);
    if (r->kind == RECORD_WITHDRAWN)
        return;
    rf->recs[rf->n] = *r;
    memcpy(rf->ids[rf->n], id, 32);
    rf->dead[rf->n] = false;
    rf->n++;
}

static int
ref_fetch(void *ctx, uint64_t created, uint64_t id8, struct record *rec)
{
    struct ref *rf = ctx;

    for (size_t i = 0; i < rf->n; i++) {
        if (search_id8(rf->ids[i]) == id8 && rf->recs[i].created == created) {
            *rec = rf->recs[i];
            return 0;
        }
    }
    return PULL_ERR_NOT_FOUND;
}

/* The brute-force reference: the statistics of the live records, then each scored. */
static uint32_t
ref_rank(const struct ref *rf, const struct match_query *q, struct match_hit *all)
{
    struct match_doc *docs = calloc(rf->n + 1, sizeof(*docs));
    struct match_prep *p = malloc(sizeof(*p));
    struct match_stats ms = {0};
    bool *live = calloc(rf->n + 1, sizeof(*live));
    uint32_t m = 0;

    assert_non_null(docs);
    assert_non_null(p);
    assert_non_null(live);
    for (size_t i = 0; i < rf->n; i++) {
        live[i] = !rf->dead[i] && (q->now_s == 0 || rf->recs[i].expires > q->now_s);
        if (!live[i])
            continue;
        match_doc_of(q, &rf->recs[i], &docs[i]);
        ms.n++;
        for (unsigned f = 0; f < MATCH_FIELDS; f++)
            ms.len_sum[f] += docs[i].len[f];
    }
    match_prep_init(p, &ms);
    for (unsigned w = 0; w < q->nwords; w++) {
        uint32_t df_main = 0, df_all = 0;
        for (size_t i = 0; i < rf->n; i++) {
            if (!live[i])
                continue;
            df_all += docs[i].cls[w] != 0;
            df_main += docs[i].cls[w] >= MATCH_C_STEM;
        }
        match_prep_idf(p, w, ms.n, df_main > 0 ? df_main : df_all);
    }
    for (size_t i = 0; i < rf->n; i++) {
        const struct record *r = &rf->recs[i];
        uint32_t s;
        if (!live[i] || !match_filters(q, r))
            continue;
        s = q->nwords == 0
                ? 1
                : match_doc_score(q, p, &docs[i], r->kind, r->created, be64dec(r->author));
        if (s > 0) {
            /* match_score agrees on whether it matches */
            assert_true(match_score(q, r) > 0);
            all[m++] = (struct match_hit){.score = s, .created = r->created, .ref = i};
        } else {
            assert_int_equal(match_score(q, r), 0);
        }
    }
    qsort(all, m, sizeof(*all), match_hit_cmp);
    free(docs);
    free(p);
    free(live);
    return m;
}

static void
check_query(struct search_index *ix, struct ref *rf, const struct match_query *q, uint32_t limit)
{
    struct match_hit *all = calloc(rf->n + 1, sizeof(*all));
    struct search_hit *hits = calloc(limit + 1, sizeof(*hits));
    uint32_t n = 0, m, total = 0;

    assert_non_null(all);
    assert_non_null(hits);
    m = ref_rank(rf, q, all);
    assert_int_equal(search_index_rank(ix, q, limit, ref_fetch, rf, hits, &n, &total), 0);
    assert_int_equal(total, m);
    assert_int_equal(n, m < limit ? m : limit);
    for (uint32_t i = 0; i < n; i++) {
        if (hits[i].score != all[i].score || hits[i].created != all[i].created ||
            hits[i].id8 != search_id8(rf->ids[all[i].ref])) {
            fprintf(stderr, "hit %u: got score %u id8 %llx, want %u %llx (%s | %s)\n", i,
                    hits[i].score, (unsigned long long)hits[i].id8, all[i].score,
                    (unsigned long long)search_id8(rf->ids[all[i].ref]), rf->recs[all[i].ref].title,
                    rf->recs[all[i].ref].body);
            for (unsigned w = 0; w < q->nwords; w++)
                fprintf(stderr, "  word %u: %s\n", w, q->words[w]);
            fail();
        }
    }
    free(all);
    free(hits);
}

/* Hooks as pulld's trust graph gives them (daemon/people.h): a multiplier by the author's
 * distance, and --trusted's filter; here by the author's first byte. */
static uint32_t
hook_trust(void *ctx, uint64_t author8)
{
    static const uint32_t mult[4] = {1000, 960, 930, 880};

    (void)ctx;
    return mult[(author8 >> 56) & 3];
}

static bool
hook_allow(void *ctx, uint64_t author8)
{
    (void)ctx;
    return ((author8 >> 56) & 1) == 0;
}

static void
random_query(struct match_query *q)
{
    char text[200];

    match_query_init(q);
    q->now_s = NOW;
    words(text, sizeof(text), rnd(4));
    if (rnd(4) == 0) /* prefixes of words */
        snprintf(text, sizeof(text), "%.*s", (int)(1 + rnd(5)), vocab[rnd(10)]);
    if (rnd(3) == 0) { /* typos, folds, inflections */
        size_t l = strlen(text);
        snprintf(text + l, sizeof(text) - l, " %s",
                 qextra[rnd(sizeof(qextra) / sizeof(qextra[0]))]);
    }
    match_query_add_words(q, text);
    if (rnd(4) == 0)
        q->kind = (uint8_t)(1 + rnd(3));
    if (rnd(5) == 0)
        match_query_add_tag(q, tagv[rnd(sizeof(tagv) / sizeof(tagv[0]))]);
    if (rnd(10) == 0)
        match_query_add_tag(q, tagv[rnd(sizeof(tagv) / sizeof(tagv[0]))]);
    if (rnd(8) == 0) {
        uint8_t a[32] = {0};
        char t[IDENT_TEXT_LEN + 1];
        a[0] = (uint8_t)rnd(4);
        a[1] = 0x5a;
        ident_to_text(a, t);
        t[6 + rnd(20)] = '\0';
        assert_int_equal(match_query_set_author(q, t), 0);
    }
    if (rnd(5) == 0)
        q->trust = hook_trust;
    if (rnd(6) == 0)
        q->allow = hook_allow;
}

static void
test_equals_match_score(void **state)
{
    enum { N = 1500 };
    struct search_index *ix;
    struct ref rf = {0};
    struct record r;
    (void)state;

    ref_init(&rf, N);
    assert_int_equal(search_index_new(&ix), 0);
    for (unsigned i = 0; i < N; i++) {
        uint8_t id[32];
        random_record(&r, 4);
        for (unsigned j = 0; j < 32; j++)
            id[j] = (uint8_t)rnd(256);
        ref_add(&rf, ix, &r, id);
    }
    assert_int_equal(search_index_live(ix), N);
    for (unsigned i = 0; i < 200; i++) {
        struct match_query q;
        random_query(&q);
        check_query(ix, &rf, &q, rnd(50));
    }
    {
        struct match_query q;
        match_query_init(&q);
        q.now_s = NOW;
        check_query(ix, &rf, &q, 10000);
        match_query_add_words(&q, "rust mentoring");
        check_query(ix, &rf, &q, 10000);
    }
    search_index_free(ix);
    ref_free(&rf);
}

/* Enough records for several of the query's windows (search.c: 4,096 entries each), with
 * replaced versions dead here and there, checked against the brute force. */
static void
test_windows(void **state)
{
    enum { N = 11000 };
    struct search_index *ix;
    struct ref rf = {0};
    struct record r;
    (void)state;

    ref_init(&rf, N);
    assert_int_equal(search_index_new(&ix), 0);
    for (unsigned i = 0; i < N; i++) {
        uint8_t id[32];
        random_record(&r, 4);
        if (i > 0 && rnd(10) == 0) { /* a new version of an earlier record */
            const struct record *old = &rf.recs[rnd((uint32_t)rf.n)];
            memcpy(r.author, old->author, 32);
            memcpy(r.slot, old->slot, RECORD_SLOT_BYTES);
        }
        for (unsigned j = 0; j < 32; j++)
            id[j] = (uint8_t)rnd(256);
        ref_add(&rf, ix, &r, id);
    }
    for (unsigned i = 0; i < 40; i++) {
        struct match_query q;
        random_query(&q);
        check_query(ix, &rf, &q, rnd(50));
    }
    {
        struct match_query q;
        match_query_init(&q);
        q.now_s = NOW;
        match_query_add_words(&q, "rust mentoring");
        check_query(ix, &rf, &q, 10000);
        check_query(ix, &rf, &q, 3);
    }
    search_index_free(ix);
    ref_free(&rf);
}

static void
test_replace_withdraw_expire(void **state)
{
    struct search_index *ix;
    struct ref rf = {0};
    struct record a, b, w, old;
    struct match_query q;
    struct search_hit hits[8];
    uint8_t id1[32] = {1}, id2[32] = {2}, id3[32] = {3}, id4[32] = {4};
    uint32_t n;
    (void)state;

    ref_init(&rf, 8);
    assert_int_equal(search_index_new(&ix), 0);
    random_record(&a, 1);
    snprintf(a.title, sizeof(a.title), "Rust mentoring");
    ref_add(&rf, ix, &a, id1);
    b = a;
    b.seq = 2;
    snprintf(b.title, sizeof(b.title), "Go mentoring");
    ref_add(&rf, ix, &b, id2); /* same slot: replaces */
    assert_int_equal(search_index_live(ix), 1);

    match_query_init(&q);
    q.now_s = NOW;
    match_query_add_words(&q, "rust");
    assert_int_equal(search_index_query(ix, &q, 8, NULL, NULL, hits, &n), 0);
    for (uint32_t i = 0; i < n; i++)
        assert_true(hits[i].id8 != search_id8(id1));
    match_query_init(&q);
    q.now_s = NOW;
    match_query_add_words(&q, "golang go");
    assert_int_equal(search_index_query(ix, &q, 8, NULL, NULL, hits, &n), 0);
    assert_int_equal(n, 1);
    assert_true(hits[0].id8 == search_id8(id2));

    /* withdrawn: gone */
    w = b;
    w.kind = RECORD_WITHDRAWN;
    w.seq = 3;
    w.title[0] = w.body[0] = '\0';
    ref_add(&rf, ix, &w, id3);
    assert_int_equal(search_index_live(ix), 0);
    assert_int_equal(search_index_query(ix, &q, 8, NULL, NULL, hits, &n), 0);
    assert_int_equal(n, 0);

    /* expired: never shown */
    random_record(&old, 1);
    old.created = NOW - 1000;
    old.expires = NOW;
    ref_add(&rf, ix, &old, id4);
    match_query_init(&q);
    q.now_s = NOW - 1;
    assert_int_equal(search_index_query(ix, &q, 8, NULL, NULL, hits, &n), 0);
    assert_int_equal(n, 1);
    q.now_s = NOW; /* expired now, and retired for good (time only goes on) */
    assert_int_equal(search_index_query(ix, &q, 8, NULL, NULL, hits, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(search_index_live(ix), 0);
    search_index_free(ix);
    ref_free(&rf);
}

/* A record with more distinct words than SEARCH_TERMS_PER_RECORD is scored through fetch. */
static void
test_partial(void **state)
{
    struct search_index *ix;
    struct ref rf = {0};
    struct record r;
    struct match_query q;
    struct search_hit hits[4];
    uint8_t id[32] = {9};
    size_t off = 0;
    uint32_t n;
    (void)state;

    ref_init(&rf, 2);
    assert_int_equal(search_index_new(&ix), 0);
    random_record(&r, 1);
    for (unsigned i = 0; i < 400 && off + 8 < RECORD_BODY_MAX; i++)
        off += (size_t)snprintf(r.body + off, sizeof(r.body) - off, "w%04u ", i);
    snprintf(r.body + off, sizeof(r.body) - off, "zebra");
    ref_add(&rf, ix, &r, id);
    match_query_init(&q);
    q.now_s = NOW;
    match_query_add_words(&q, "zebra");
    assert_int_equal(search_index_query(ix, &q, 4, NULL, NULL, hits, &n), 0);
    assert_int_equal(n, 0); /* not indexed, and no fetch */
    check_query(ix, &rf, &q, 4);
    assert_int_equal(search_index_query(ix, &q, 4, ref_fetch, &rf, hits, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(hits[0].score, match_score(&q, &r)); /* a collection of one */
    search_index_free(ix);
    ref_free(&rf);
}

/* Bounded: a flood of unique words never grows the dictionary beyond its cap. */
static void
test_bounded(void **state)
{
    struct search_index *ix;
    struct record r;
    (void)state;

    assert_int_equal(search_index_new(&ix), 0);
    for (unsigned i = 0; i < 2000; i++) {
        uint8_t id[32] = {0};
        size_t off = 0;
        random_record(&r, 250);
        r.author[2] = (uint8_t)(i >> 8);
        for (unsigned j = 0; j < 300 && off + 12 < RECORD_BODY_MAX; j++)
            off += (size_t)snprintf(r.body + off, sizeof(r.body) - off, "u%u_%u ", i, j);
        id[0] = (uint8_t)i;
        id[1] = (uint8_t)(i >> 8);
        assert_int_equal(search_index_add(ix, id, &r), 0);
    }
    /* at most SEARCH_TERMS_PER_RECORD postings per record */
    assert_true(search_index_bytes(ix) <
                2000u * (SEARCH_TERMS_PER_RECORD * 3 + 200) + (size_t)SEARCH_TERMS_MAX * 80);
    search_index_free(ix);
}

/* store_signed signs r by me and stores it (the result must be 0 if stored is true, else
 * it is only signed); id_out, if not NULL, receives its id. */
static void
store_signed(struct store *s, const struct record *r, const struct ident *me, uint64_t now,
             bool stored, uint8_t id_out[RECORD_ID_BYTES])
{
    struct pull_wb w;
    struct store_item it = {0};
    struct envelope e;

    wb_init(&w, 0);
    assert_int_equal(record_sign(r, me, &w, NULL), 0);
    it.bytes = w.p;
    it.len = w.len;
    if (stored) {
        assert_int_equal(store_put_batch(s, &it, 1, now), 0);
        assert_int_equal(it.result, 0);
    }
    assert_int_equal(envelope_parse(w.p, w.len, &e), 0);
    if (id_out != NULL)
        memcpy(id_out, e.id, RECORD_ID_BYTES);
    wb_release(&w);
}

/* Build from a real store, then fetch each hit back by (created, id8). */
static void
test_store_build_fetch(void **state)
{
    char *dir = tu_tmpdir();
    struct store *s;
    struct store_opts o;
    struct search_index *ix;
    struct ident me;
    struct record r;
    struct match_query q;
    struct search_hit hits[64];
    uint8_t seed[32] = {7};
    uint32_t n;
    uint64_t now = (uint64_t)time(NULL);
    (void)state;

    store_opts_init(&o);
    o.sync = STORE_SYNC_NONE;
    assert_int_equal(store_open(dir, &o, &s), 0);
    assert_int_equal(ident_from_seed(&me, seed), 0);
    for (unsigned i = 0; i < 40; i++) {
        random_record(&r, 1);
        memcpy(r.author, me.pk, 32);
        r.created = now - (i % 5); /* several records per second */
        r.expires = r.created + 86400;
        if (i == 39) {
            r.expires = r.created + 1;
            r.created = now - 5;
            r.expires = now - 1 + 2; /* alive now, a live record */
        }
        store_signed(s, &r, &me, now, true, NULL);
    }
    assert_int_equal(search_index_new(&ix), 0);
    assert_int_equal(search_index_build(ix, s, now), 0);
    assert_int_equal(search_index_live(ix), 40);
    match_query_init(&q);
    q.now_s = now;
    assert_int_equal(search_index_query(ix, &q, 64, NULL, NULL, hits, &n), 0);
    assert_int_equal(n, 40);
    for (uint32_t i = 0; i < n; i++) {
        struct pull_wb w;
        struct envelope e;
        wb_init(&w, 0);
        assert_int_equal(search_fetch(s, hits[i].created, hits[i].id8, &w), 0);
        assert_int_equal(envelope_parse(w.p, w.len, &e), 0);
        assert_true(search_id8(e.id) == hits[i].id8);
        wb_release(&w);
        if (i > 0)
            assert_true(hits[i].created <= hits[i - 1].created);
    }
    {
        struct pull_wb w;
        wb_init(&w, 0);
        assert_int_equal(search_fetch(s, hits[0].created, hits[0].id8 ^ 1, &w), PULL_ERR_NOT_FOUND);
        wb_release(&w);
    }
    search_index_free(ix);
    store_close(s);
    ident_wipe(&me);
    tu_rmrf(dir);
    free(dir);
}

/* A build in steps (pulld's start over a large store) gives the index a full build gives,
 * with records added between the steps as commits add them: one ahead of the build's
 * cursor (reached later: not indexed twice) and one stored after the build began. */
static void
test_build_in_steps(void **state)
{
    char *dir = tu_tmpdir();
    struct store *s;
    struct store_opts o;
    struct search_index *ix;
    struct search_build b;
    struct ident me;
    struct record r, ahead;
    struct match_query q;
    struct search_hit hits[64];
    uint8_t seed[32] = {9}, ahead_id[RECORD_ID_BYTES];
    uint32_t n;
    uint64_t now = (uint64_t)time(NULL);
    unsigned steps = 0;
    (void)state;

    store_opts_init(&o);
    o.sync = STORE_SYNC_NONE;
    assert_int_equal(store_open(dir, &o, &s), 0);
    assert_int_equal(ident_from_seed(&me, seed), 0);
    for (unsigned i = 0; i < 30; i++) {
        random_record(&r, 1);
        memcpy(r.author, me.pk, 32);
        r.created = now - 100 + i / 2; /* two records per second: the cursor holds the id */
        r.expires = now + 86400;
        store_signed(s, &r, &me, now, true, i == 20 ? ahead_id : NULL);
        if (i == 20) /* committed and indexed before the build reaches it */
            ahead = r;
    }
    random_record(&r, 1); /* stored after the build began */
    memcpy(r.author, me.pk, 32);
    r.created = now;
    r.expires = now + 86400;
    assert_int_equal(search_index_new(&ix), 0);
    memset(&b, 0, sizeof(b));
    assert_int_equal(search_index_build_step(ix, s, now, &b, 4), 0);
    assert_false(b.done);
    assert_int_equal(search_index_live(ix), 4);
    assert_int_equal(search_index_add(ix, ahead_id, &ahead), 0);
    assert_int_equal(search_index_live(ix), 5);
    while (!b.done) {
        if (++steps == 2) { /* the commit of the record stored meanwhile indexes it */
            uint8_t id[RECORD_ID_BYTES];
            store_signed(s, &r, &me, now, true, id);
            assert_int_equal(search_index_add(ix, id, &r), 0);
        }
        assert_int_equal(search_index_build_step(ix, s, now, &b, 4), 0);
        assert_true(steps < 20);
    }
    assert_int_equal(b.visited, 31);
    assert_int_equal(b.damaged, 0);
    assert_int_equal(search_index_live(ix), 31);
    assert_int_equal(search_index_dead(ix), 0); /* the one added ahead was not indexed again */
    match_query_init(&q);
    q.now_s = now;
    assert_int_equal(search_index_query(ix, &q, 64, NULL, NULL, hits, &n), 0);
    assert_int_equal(n, 31);
    for (uint32_t i = 1; i < n; i++) /* no record twice */
        for (uint32_t j = 0; j < i; j++)
            assert_false(hits[i].id8 == hits[j].id8 && hits[i].created == hits[j].created);
    /* a finished build takes no more steps; a full build gives the same index */
    assert_int_equal(search_index_build_step(ix, s, now, &b, 4), 0);
    assert_int_equal(search_index_live(ix), 31);
    assert_int_equal(search_index_build(ix, s, now), 0);
    assert_int_equal(search_index_live(ix), 31);
    search_index_free(ix);
    store_close(s);
    ident_wipe(&me);
    tu_rmrf(dir);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equals_match_score),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_replace_withdraw_expire),
        cmocka_unit_test(test_partial),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_store_build_fetch),
        cmocka_unit_test(test_build_in_steps),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
