/* Tests of local search (lib/match.h): query parsing, filters, ranking order, the top-k
 * heap, related offers and needs, and the cost per record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/err.h"
#include "lib/match.h"

static void
mkrec(struct record *r, uint8_t kind, const char *title, const char *body, const char *tags,
      uint64_t created)
{
    memset(r, 0, sizeof(*r));
    r->version = 1;
    r->kind = kind;
    r->created = created;
    r->expires = created + 30 * 86400;
    snprintf(r->title, sizeof(r->title), "%s", title);
    snprintf(r->body, sizeof(r->body), "%s", body);
    if (tags != NULL) {
        char copy[256], *save = NULL;
        snprintf(copy, sizeof(copy), "%s", tags);
        for (char *t = strtok_r(copy, " ", &save); t != NULL && r->ntags < RECORD_TAGS_MAX;
             t = strtok_r(NULL, " ", &save))
            snprintf(r->tags[r->ntags++], sizeof(r->tags[0]), "%s", t);
    }
}

static struct match_query
query(const char *words)
{
    struct match_query q;

    match_query_init(&q);
    assert_int_equal(match_query_add_words(&q, words), 0);
    return q;
}

static void
test_query_parse(void **state)
{
    struct match_query q;
    char many[256] = "";
    (void)state;

    q = query("Rust, MENTORING!! rust c++ \xc3\xa9t\xc3\xa9 ok");
    assert_int_equal(q.nwords, 5);
    assert_string_equal(q.words[0], "rust");
    assert_string_equal(q.words[1], "mentoring");
    assert_string_equal(q.words[2], "c");
    assert_string_equal(q.words[3], "ete"); /* folded: no accents */
    assert_string_equal(q.words[4], "ok");
    assert_int_equal(q.wlen[3], 3);

    /* Long words are cut at MATCH_WORD_MAX, never inside a UTF-8 character. */
    q = query("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xd0\xb6zz");
    assert_int_equal(q.nwords, 1);
    assert_int_equal(q.wlen[0], 31);

    /* Empty and punctuation-only text adds nothing. */
    q = query("  ,;-- ");
    assert_int_equal(q.nwords, 0);

    /* Too many words: the first MATCH_WORDS_MAX are kept. */
    for (int i = 0; i < MATCH_WORDS_MAX + 2; i++) {
        char w[8];
        snprintf(w, sizeof(w), "w%d ", i);
        strcat(many, w);
    }
    match_query_init(&q);
    assert_int_equal(match_query_add_words(&q, many), PULL_ERR_TOO_BIG);
    assert_int_equal(q.nwords, MATCH_WORDS_MAX);

    /* Tags. */
    match_query_init(&q);
    assert_int_equal(match_query_add_tag(&q, "Rust"), 0);
    assert_int_equal(match_query_add_tag(&q, "rust"), 0);
    assert_int_equal(q.ntags, 1);
    assert_string_equal(q.tags[0], "rust");
    assert_int_equal(match_query_add_tag(&q, ""), PULL_ERR_TAG);
    assert_int_equal(match_query_add_tag(&q, "abcdefghijklmnopqrstuvwxyz0123456"), PULL_ERR_TAG);
    for (int i = 1; i < RECORD_TAGS_MAX; i++) {
        char t[8];
        snprintf(t, sizeof(t), "t%d", i);
        assert_int_equal(match_query_add_tag(&q, t), 0);
    }
    assert_int_equal(match_query_add_tag(&q, "one-more"), PULL_ERR_TAGS);

    /* Author prefix. */
    assert_int_equal(match_query_set_author(&q, "abc"), PULL_ERR_INVAL);
    assert_false(q.has_author);
    assert_int_equal(match_query_set_author(&q, "aaaaaa"), 0);
    assert_true(q.has_author);
}

static void
test_filters(void **state)
{
    struct record r;
    struct match_query q;
    (void)state;

    mkrec(&r, RECORD_OFFER, "Rust mentoring", "Weekly calls", "rust mentoring", 1000);

    q = query("rust");
    assert_true(match_score(&q, &r) > 0);
    /* Words given, none matching: excluded. */
    q = query("python");
    assert_int_equal(match_score(&q, &r), 0);
    /* Short query words don't match as prefixes ("ru" is not "rust")... */
    q = query("ru");
    assert_int_equal(match_score(&q, &r), 0);
    /* ... 3+ bytes do. */
    q = query("men");
    assert_true(match_score(&q, &r) > 0);

    /* Kind. */
    q = query("rust");
    q.kind = RECORD_NEED;
    assert_int_equal(match_score(&q, &r), 0);
    q.kind = RECORD_OFFER;
    assert_true(match_score(&q, &r) > 0);

    /* Withdrawn never matches, even asked for. */
    r.kind = RECORD_WITHDRAWN;
    q.kind = 0;
    assert_int_equal(match_score(&q, &r), 0);
    q.kind = RECORD_WITHDRAWN;
    assert_int_equal(match_score(&q, &r), 0);
    r.kind = RECORD_OFFER;

    /* Required tags: all of them. */
    match_query_init(&q);
    assert_int_equal(match_query_add_tag(&q, "rust"), 0);
    assert_int_equal(match_score(&q, &r), 1);
    assert_int_equal(match_query_add_tag(&q, "go"), 0);
    assert_int_equal(match_score(&q, &r), 0);

    /* Author prefix: key 0x00.. is "aaaa..." in base32. */
    match_query_init(&q);
    assert_int_equal(match_query_set_author(&q, "aaaaaa"), 0);
    assert_true(match_score(&q, &r) > 0);
    r.author[0] = 0x08; /* "b..." */
    assert_int_equal(match_score(&q, &r), 0);
    assert_int_equal(match_query_set_author(&q, "baaaaa"), 0);
    assert_true(match_score(&q, &r) > 0);

    /* Expiry. */
    match_query_init(&q);
    q.now_s = r.expires;
    assert_int_equal(match_score(&q, &r), 0);
    q.now_s = r.expires - 1;
    assert_int_equal(match_score(&q, &r), 1);

    /* Case-insensitive in the record too; both words matched, neither by a typo. */
    mkrec(&r, RECORD_NEED, "Looking for a RUST Mentor", "", NULL, 1);
    q = query("rust mentor");
    assert_int_equal(match_score(&q, &r) >> 27, 2);
    assert_int_equal((match_score(&q, &r) >> 22) & 31, 2);
}

/* Ranks recs by q and returns the order as indexes. */
static void
rank(const struct match_query *q, const struct record *recs, size_t n, uint64_t *order,
     size_t *kept)
{
    struct match_hit storage[64];
    struct match_topk t;

    match_topk_init(&t, storage, 64);
    for (size_t i = 0; i < n; i++) {
        struct match_hit h = {match_score(q, &recs[i]), recs[i].created, i};
        match_topk_push(&t, &h);
    }
    match_topk_sort(&t);
    for (uint32_t i = 0; i < t.n; i++)
        order[i] = t.hits[i].ref;
    *kept = t.n;
}

static void
test_ranking(void **state)
{
    struct record recs[8];
    struct match_query q;
    uint64_t order[8];
    size_t n;
    (void)state;

    mkrec(&recs[0], RECORD_OFFER, "Bike repair", "I also know rust", NULL, 100);
    mkrec(&recs[1], RECORD_OFFER, "Rust help", "", NULL, 100);
    mkrec(&recs[2], RECORD_OFFER, "Mentoring", "", "rust", 100);
    mkrec(&recs[3], RECORD_OFFER, "Gardening", "rustic furniture too", NULL, 100);
    mkrec(&recs[4], RECORD_OFFER, "Cooking", "pasta", NULL, 100);
    mkrec(&recs[5], RECORD_OFFER, "Rusty tools", "", NULL, 100);
    mkrec(&recs[6], RECORD_OFFER, "Systems", "", "rust-lang", 100);

    /* tag > tag token > title word > title prefix > body word > body prefix; no match out */
    q = query("rust");
    rank(&q, recs, 7, order, &n);
    assert_int_equal(n, 6);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 6);
    assert_int_equal(order[2], 1);
    assert_int_equal(order[3], 5);
    assert_int_equal(order[4], 0);
    assert_int_equal(order[5], 3);

    /* Covering both words beats one strong match. */
    mkrec(&recs[0], RECORD_OFFER, "Rust mentoring", "", NULL, 100);
    mkrec(&recs[1], RECORD_OFFER, "Something", "", "rust", 100);
    mkrec(&recs[2], RECORD_OFFER, "Mentoring in rust, weekly", "", "rust mentoring", 100);
    q = query("rust mentoring");
    rank(&q, recs, 3, order, &n);
    assert_int_equal(n, 3);
    assert_int_equal(order[0], 2);
    assert_int_equal(order[1], 0);
    assert_int_equal(order[2], 1);

    /* Equal scores: newer first, then lower ref. */
    mkrec(&recs[0], RECORD_NEED, "Plumber", "", NULL, 100);
    mkrec(&recs[1], RECORD_NEED, "Plumber", "", NULL, 300);
    mkrec(&recs[2], RECORD_NEED, "Plumber", "", NULL, 200);
    mkrec(&recs[3], RECORD_NEED, "Plumber", "", NULL, 300);
    q = query("plumber");
    rank(&q, recs, 4, order, &n);
    assert_int_equal(n, 4);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 3);
    assert_int_equal(order[2], 2);
    assert_int_equal(order[3], 0);

    /* No words: everything passing the filters, newest first. */
    match_query_init(&q);
    rank(&q, recs, 4, order, &n);
    assert_int_equal(n, 4);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[3], 0);

    /* Terms count like the body. */
    mkrec(&recs[0], RECORD_OFFER, "Lessons", "", NULL, 100);
    snprintf(recs[0].terms, sizeof(recs[0].terms), "paid in bread");
    mkrec(&recs[1], RECORD_OFFER, "Lessons", "paid in bread", NULL, 100);
    q = query("bread");
    assert_true(match_score(&q, &recs[0]) > 0);
    assert_int_equal(match_score(&q, &recs[0]), match_score(&q, &recs[1]));
}

static void
test_topk(void **state)
{
    enum { N = 2000, K = 25 };
    struct match_hit *all = calloc(N, sizeof(*all)), storage[K];
    struct match_topk t;
    uint32_t x = 12345;
    (void)state;

    assert_non_null(all);
    match_topk_init(&t, storage, K);
    for (uint32_t i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        all[i].score = (x >> 16) % 50; /* many ties, some zeros */
        x = x * 1103515245u + 12345u;
        all[i].created = (x >> 16) % 7;
        all[i].ref = i;
        match_topk_push(&t, &all[i]);
    }
    match_topk_sort(&t);
    qsort(all, N, sizeof(*all), match_hit_cmp);
    assert_int_equal(t.n, K);
    for (uint32_t i = 0; i < K; i++) {
        assert_int_equal(t.hits[i].score, all[i].score);
        assert_int_equal(t.hits[i].created, all[i].created);
        assert_int_equal(t.hits[i].ref, all[i].ref);
    }
    /* Capacity 0 keeps nothing; zero scores are never kept. */
    match_topk_init(&t, storage, 0);
    match_topk_push(&t, &all[0]);
    assert_int_equal(t.n, 0);
    match_topk_init(&t, storage, K);
    all[0].score = 0;
    match_topk_push(&t, &all[0]);
    assert_int_equal(t.n, 0);
    free(all);
}

static void
test_related(void **state)
{
    struct record offer, need;
    (void)state;

    mkrec(&offer, RECORD_OFFER, "Rust mentoring for beginners", "", NULL, 1);
    mkrec(&need, RECORD_NEED, "Looking for a Rust mentor", "", NULL, 1);
    assert_true(match_related(&offer, &need));
    /* Arguments the wrong way round. */
    assert_false(match_related(&need, &offer));

    /* One shared word is not enough when the need says more. */
    mkrec(&need, RECORD_NEED, "Rust compiler internals course", "", NULL, 1);
    assert_false(match_related(&offer, &need));

    /* A need with a single significant word needs just that one. */
    mkrec(&offer, RECORD_OFFER, "Plumber in Lyon, evenings", "", NULL, 1);
    mkrec(&need, RECORD_NEED, "Need a plumber!", "", NULL, 1);
    assert_true(match_related(&offer, &need));

    /* Filler words alone relate nothing. */
    mkrec(&offer, RECORD_OFFER, "Looking for help with anything", "", NULL, 1);
    mkrec(&need, RECORD_NEED, "Looking for help", "", NULL, 1);
    assert_false(match_related(&offer, &need));

    /* A shared tag is enough. */
    mkrec(&offer, RECORD_OFFER, "Lessons", "", "3d-printing lyon", 1);
    mkrec(&need, RECORD_NEED, "Print a part", "", "3d-printing", 1);
    assert_true(match_related(&offer, &need));

    /* Tags and titles mix: need tag "garden" + title "tools" vs offer title. */
    mkrec(&offer, RECORD_OFFER, "Garden tools to lend", "", NULL, 1);
    mkrec(&need, RECORD_NEED, "Borrow tools", "", "garden", 1);
    assert_true(match_related(&offer, &need));

    /* Unrelated. */
    mkrec(&offer, RECORD_OFFER, "French lessons", "", "language", 1);
    mkrec(&need, RECORD_NEED, "Bike repair", "", "bike", 1);
    assert_false(match_related(&offer, &need));

    /* Numbers are not significant. */
    mkrec(&offer, RECORD_OFFER, "2024 calendar 100", "", NULL, 1);
    mkrec(&need, RECORD_NEED, "100 2024", "", NULL, 1);
    assert_false(match_related(&offer, &need));
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Scores 100,000 varied records and reports the cost per record. */
static void
test_speed(void **state)
{
    enum { N = 20000, VARIANTS = 64 };
    static const char *const words[] = {
        "rust",    "mentor", "garden", "bike",  "repair",  "lessons", "french",   "cooking",
        "plumber", "lyon",   "paris",  "tools", "printer", "weekly",  "evenings", "beginners",
    };
    struct record *recs = calloc(VARIANTS, sizeof(*recs));
    struct match_hit storage[20];
    struct match_topk t;
    struct match_query q;
    uint32_t x = 7;
    double t0, dt;
    (void)state;

    assert_non_null(recs);
    for (int i = 0; i < VARIANTS; i++) {
        char title[121] = "", body[600] = "";
        for (int w = 0; w < 5; w++) {
            x = x * 1103515245u + 12345u;
            strcat(title, words[(x >> 16) % 16]);
            strcat(title, " ");
        }
        for (int w = 0; w < 40; w++) {
            x = x * 1103515245u + 12345u;
            strcat(body, words[(x >> 16) % 16]);
            strcat(body, w % 7 == 6 ? ". " : " ");
        }
        mkrec(&recs[i], i % 2 ? RECORD_OFFER : RECORD_NEED, title, body, "tag-one two", i);
    }
    q = query("rust mentor lyon");
    match_topk_init(&t, storage, 20);
    t0 = now_s();
    for (uint32_t i = 0; i < N; i++) {
        const struct record *r = &recs[i % VARIANTS];
        struct match_hit h = {match_score(&q, r), r->created, i};
        match_topk_push(&t, &h);
    }
    match_topk_sort(&t);
    dt = now_s() - t0;
    printf("match: %u records (title 5 words, body 40 words), 3-word query: %.3f us/record\n", N,
           dt * 1e6 / N);
    assert_int_equal(t.n, 20);
    /* Generous bounds: the optimised build is far below the first, sanitizers within the
     * second. */
#if defined(__SANITIZE_ADDRESS__)
    assert_true(dt * 1e6 / N < 1000.0);
#else
    assert_true(dt * 1e6 / N < 50.0);
#endif
    free(recs);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_parse), cmocka_unit_test(test_filters),
        cmocka_unit_test(test_ranking),     cmocka_unit_test(test_topk),
        cmocka_unit_test(test_related),     cmocka_unit_test(test_speed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
