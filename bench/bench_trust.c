/*
 * pull-bench trust [AUTHORS] [ATTESTATIONS] [--records N] [--runs R] [--seed S]
 * The trust graph of completed dyads (lib/trust.h) at the size of a large network, and
 * what it costs `pull search`: AUTHORS people (default 10,000) with N records (default
 * 100,000) in a search index (lib/search.h, as pulld holds it), and ATTESTATIONS
 * attestations (default 50,000) between random pairs of them, me among them with a few
 * dyads of my own.
 *
 *   trust.add_us             time to add one attestation, incrementally (distances kept)
 *   trust.recompute_ms       a full pass after a removal (an attestation expired)
 *   trust.reachable          people at a distance from me
 *   trust.paths_ms           shortest paths and independent paths of one author (show)
 *   search.baseline_ms       median of the queries below without trust (as before)
 *   search.trust_ms          the same queries ranked by trust (pulld's hook)
 *   search.trusted2_ms       the same with --trusted 2 (the filter)
 *   search.live_ms           the same ranked by trust while attestations keep arriving
 *                            (one added before each query: the incremental path)
 *   search.trust_ratio, search.trusted2_ratio, search.live_ratio  each over the baseline
 *   search.trust_vs_budget_ratio  search.trust_ms over 5 ms, the in-index share of the
 *                            20 ms DESIGN gives `pull search` start to exit (bench_search's
 *                            target up to 100,000 records)
 * Every query runs as pulld runs `pull search` in human form: the best 20 and the count of
 * every match. The variants take turns within each round so they see the same load; each
 * figure is a median over R rounds (default 30, after 3 untimed) of the time the thread
 * spent on the CPU (CLOCK_THREAD_CPUTIME_ID: other processes on a shared machine don't
 * count, their cache traffic still does); search.baseline_wall_ms is the baseline's wall
 * time. In-process: no sockets, no store (the hits are not fetched), so this is the index
 * and the graph alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/match.h"
#include "lib/record.h"
#include "lib/search.h"
#include "lib/trust.h"

int bench_trust(int argc, char **argv);

#define NOW_S 1800000000u
#define QUERIES 6
#define VARIANTS 4 /* baseline, trust, trusted 2, live */
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* clang-format off */
static const char *const words[] = {
    "guitar", "lessons", "bike", "repair", "rust", "mentoring", "code", "review", "french",
    "garden", "help", "piano", "ride", "lyon", "paris", "berlin", "moving", "boxes", "photo",
    "website", "design", "sourdough", "math", "tutoring", "drill", "sewing", "machine",
    "python", "debugging", "room", "kayak", "dog", "walking", "linux", "install", "logo",
    "spanish", "practice", "plumbing", "advice", "ladder", "proofreading", "chess", "yoga",
    "projector", "electronics", "knitting", "cargo", "tent", "clothes", "statistics", "video",
    "editing", "accounting", "climbing", "partner", "weekends", "evenings", "beginners",
    "tools", "lend", "swap", "coffee", "online", "neighbourhood", "urgent", "month", "hours",
};
static const char *const tags[] = {"c", "rust", "bike", "music", "lessons", "garden", "tools",
                                   "lyon", "paris", "online", "free", "swap"};
/* clang-format on */

struct q {
    const char *name, *text;
    uint8_t kind;
    const char *tag;
};

static const struct q queries[QUERIES] = {
    {"word", "guitar", 0, NULL},
    {"words_kind", "bike repair", RECORD_OFFER, NULL},
    {"three_words", "rust code review", 0, NULL},
    {"common", "lessons", 0, NULL},
    {"typos", "guitr lesons", 0, NULL},
    {"tag", "", 0, "rust"},
};

static uint64_t rng = 88172645463325252ull;

static uint64_t
next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void
author_key(uint32_t i, uint8_t key[32])
{
    uint64_t x = 0x9e3779b97f4a7c15ull * (i + 1);

    for (int k = 0; k < 4; k++) {
        be64enc(key + 8 * k, x);
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    }
}

static void
text(char *out, size_t cap, unsigned nwords)
{
    size_t o = 0;

    out[0] = '\0';
    for (unsigned i = 0; i < nwords && o + 20 < cap; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? " " : "", words[next() % COUNT(words)]);
}

/* CPU seconds of this thread. */
static double
cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n == 0 ? 0 : v[n / 2];
}

struct allow2 {
    struct trust *t;
};

static uint32_t
hook_rank(void *ctx, uint64_t author8)
{
    return trust_rank(trust_distance8(ctx, author8));
}

static bool
hook_within2(void *ctx, uint64_t author8)
{
    return trust_distance8(ctx, author8) <= 2;
}

/* Runs query qi once with the hooks of variant v; returns CPU milliseconds (*wall_ms the
 * wall time). */
static double
run_query(struct search_index *ix, struct trust *t, unsigned qi, unsigned v,
          struct search_hit *hits, uint32_t *total, double *wall_ms)
{
    struct match_query q;
    uint32_t n = 0;
    double t0, w0;

    match_query_init(&q);
    q.now_s = NOW_S;
    if (queries[qi].text[0] != '\0')
        (void)match_query_add_words(&q, queries[qi].text);
    q.kind = queries[qi].kind;
    if (queries[qi].tag != NULL)
        (void)match_query_add_tag(&q, queries[qi].tag);
    if (v == 1 || v == 3) {
        q.trust = hook_rank;
        q.trust_ctx = t;
    } else if (v == 2) {
        q.allow = hook_within2;
        q.allow_ctx = t;
    }
    w0 = bench_now();
    t0 = cpu_now();
    if (search_index_rank(ix, &q, 20, NULL, NULL, hits, &n, total) != 0)
        return -1;
    *wall_ms = (bench_now() - w0) * 1e3;
    return (cpu_now() - t0) * 1e3;
}

/* Adds attestation number k (a random pair, me now and then) to t. */
static int
add_attestation(struct trust *t, uint32_t k, uint32_t authors)
{
    uint8_t id[32], a[32], b[32], dyad[TRUST_DYAD_BYTES];
    uint32_t x = (uint32_t)(next() % authors), y = (uint32_t)(next() % authors);

    if (x == y)
        y = (y + 1) % authors;
    memset(id, 0, sizeof(id));
    be32enc(id, k);
    be32enc(id + 4, 0x61747465);
    author_key(x, a);
    author_key(y, b);
    memcpy(dyad, id, sizeof(dyad));
    return trust_add(t, id, a, b, dyad) < 0 ? -1 : 0;
}

int
bench_trust(int argc, char **argv)
{
    size_t authors = 10000, attestations = 50000, nrec = 100000, runs = 30, warm = 3;
    struct search_index *ix = NULL;
    struct trust *t = NULL;
    struct record *rec = NULL;
    struct search_hit hits[20];
    double *ms[VARIANTS] = {0}, *wall = NULL, t0, dt, add_us;
    uint8_t me[32], seed[16] = {7, 7, 7}, key[32];
    unsigned pos = 0;
    uint32_t extra = 0;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--records") == 0 && i + 1 < argc) {
            nrec = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            rng = strtoull(argv[++i], NULL, 10) | 1;
        } else if (argv[i][0] != '-' && pos < 2) {
            size_t v = strtoull(argv[i], NULL, 10);
            if (pos++ == 0)
                authors = v;
            else
                attestations = v;
        } else {
            fprintf(stderr, "usage: pull-bench trust [AUTHORS] [ATTESTATIONS] [--records N] "
                            "[--runs R] [--seed S]\n");
            return 1;
        }
    }
    if (authors < 2 || nrec < authors || runs == 0) {
        fprintf(stderr, "pull-bench trust: need 2+ authors, as many records, 1+ run\n");
        return 1;
    }
    if (search_index_new(&ix) != 0 || (rec = malloc(sizeof(*rec))) == NULL)
        goto out;
    for (size_t i = 0; i < VARIANTS; i++) {
        if ((ms[i] = calloc(runs * QUERIES, sizeof(double))) == NULL)
            goto out;
    }
    if ((wall = calloc(runs * QUERIES, sizeof(double))) == NULL)
        goto out;

    /* the records: each author's share, random words */
    t0 = bench_now();
    for (size_t i = 0; i < nrec; i++) {
        uint8_t id[RECORD_ID_BYTES];
        record_init(rec);
        rec->kind = next() % 3 == 0 ? RECORD_NEED : RECORD_OFFER;
        author_key((uint32_t)(i % authors), rec->author);
        for (size_t k = 0; k < RECORD_SLOT_BYTES; k++)
            rec->slot[k] = (uint8_t)next();
        rec->seq = 1;
        rec->created = NOW_S - next() % (20u * 86400u);
        rec->expires = rec->created + RECORD_TTL_DEFAULT;
        text(rec->title, sizeof(rec->title), 4 + (unsigned)(next() % 3));
        text(rec->body, sizeof(rec->body), 20 + (unsigned)(next() % 20));
        rec->ntags = 1 + (uint8_t)(next() % 2);
        snprintf(rec->tags[0], sizeof(rec->tags[0]), "%s", tags[next() % COUNT(tags)]);
        snprintf(rec->tags[1], sizeof(rec->tags[1]), "%s", tags[next() % COUNT(tags)]);
        if (rec->ntags == 2 && strcmp(rec->tags[0], rec->tags[1]) == 0)
            rec->ntags = 1;
        for (size_t k = 0; k < RECORD_ID_BYTES; k++)
            id[k] = (uint8_t)next();
        if (search_index_add(ix, id, rec) != 0) {
            fprintf(stderr, "pull-bench trust: indexing failed\n");
            goto out;
        }
    }
    printf("%zu records of %zu authors indexed in %.0f ms\n", nrec, authors,
           (bench_now() - t0) * 1e3);

    /* the graph: me (author 0) with 8 dyads of my own, then the attestations */
    author_key(0, me);
    if (trust_new(me, seed, &t) != 0)
        goto out;
    t0 = cpu_now();
    for (uint32_t k = 0; k < attestations; k++) {
        if (add_attestation(t, k, (uint32_t)authors) != 0) {
            fprintf(stderr, "pull-bench trust: adding an attestation failed\n");
            goto out;
        }
    }
    for (uint32_t k = 0; k < 8; k++) {
        uint8_t id[32], b[32], dyad[TRUST_DYAD_BYTES];
        memset(id, 0xd0, sizeof(id));
        be32enc(id, k);
        author_key(1 + (uint32_t)(next() % (authors - 1)), b);
        memcpy(dyad, id, sizeof(dyad));
        if (trust_add(t, id, me, b, dyad) < 0)
            goto out;
    }
    dt = cpu_now() - t0;
    add_us = dt * 1e6 / (double)(attestations + 8);
    {
        struct trust_stats st;
        uint8_t first[32];
        unsigned indep = 0;
        size_t np;
        uint8_t(*paths)[32] = calloc(4 * TRUST_HOPS_MAX, 32);
        trust_get_stats(t, &st);
        printf("graph: %zu people, %zu pairs, %zu attestations; %zu at a distance from me\n",
               st.people, st.edges, st.evidence, st.reachable);
        bench_report("trust.authors", (double)authors, "authors");
        bench_report("trust.attestations", (double)attestations, "attestations");
        bench_report("trust.add_us", add_us, "us");
        bench_report("trust.reachable", (double)st.reachable, "people");
        /* a removal (the first attestation expired): a full pass at the next question */
        memset(first, 0, sizeof(first));
        be32enc(first + 4, 0x61747465);
        (void)trust_remove(t, first);
        t0 = cpu_now();
        author_key(1, key);
        (void)trust_distance(t, key);
        bench_report("trust.recompute_ms", (cpu_now() - t0) * 1e3, "ms");
        /* what `pull show AUTHOR` asks: paths and independent paths of someone far */
        for (uint32_t i = 2; i < authors; i++) {
            author_key(i, key);
            if (trust_distance(t, key) >= 3 && trust_distance(t, key) != TRUST_NONE)
                break;
        }
        t0 = cpu_now();
        np = paths != NULL ? trust_paths(t, key, paths, 4) : 0;
        (void)trust_independent(t, key, &indep);
        bench_report("trust.paths_ms", (cpu_now() - t0) * 1e3, "ms");
        printf("an author %u hops away: %zu shortest paths listed, %u independent\n",
               trust_distance(t, key), np, indep);
        free(paths);
    }

    /* the queries: every variant of every query in each round */
    for (size_t r = 0; r < warm + runs; r++) {
        for (unsigned qi = 0; qi < QUERIES; qi++) {
            for (unsigned v = 0; v < VARIANTS; v++) {
                uint32_t total = 0;
                double d, w = 0;
                if (v == 3 &&
                    add_attestation(t, (uint32_t)attestations + extra++, (uint32_t)authors) != 0)
                    goto out;
                if ((d = run_query(ix, t, qi, v, hits, &total, &w)) < 0) {
                    fprintf(stderr, "pull-bench trust: a query failed\n");
                    goto out;
                }
                if (r == 0 && v == 0)
                    printf("query %-11s matches %u records\n", queries[qi].name, total);
                if (r >= warm)
                    ms[v][(r - warm) * QUERIES + qi] = d;
                if (r >= warm && v == 0)
                    wall[(r - warm) * QUERIES + qi] = w;
            }
        }
    }
    {
        static const char *const names[VARIANTS] = {"baseline", "trust", "trusted2", "live"};
        double m[VARIANTS];
        char name[64];
        for (unsigned v = 0; v < VARIANTS; v++) {
            m[v] = median(ms[v], runs * QUERIES);
            snprintf(name, sizeof(name), "search.%s_ms", names[v]);
            bench_report(name, m[v], "ms");
        }
        for (unsigned v = 1; v < VARIANTS; v++) {
            snprintf(name, sizeof(name), "search.%s_ratio", names[v]);
            bench_report(name, m[0] > 0 ? m[v] / m[0] : 0, "x");
        }
        bench_report("search.trust_vs_budget_ratio", m[1] / 5.0, "x");
        bench_report("search.baseline_wall_ms", median(wall, runs * QUERIES), "ms");
    }
    rc = 0;
out:
    for (size_t i = 0; i < VARIANTS; i++)
        free(ms[i]);
    free(wall);
    trust_free(t);
    search_index_free(ix);
    free(rec);
    return rc;
}
