/*
 * pull-bench index DIR [--runs R] [--only QUERY]
 * The search index alone, in this process: the records of the pulld data dir DIR (one kept
 * by `PULL_KEEP=1 pull-bench search N`, with no pulld running on it) are indexed as pulld
 * indexes them at start, then each query of `pull-bench search` runs R times (default 50)
 * as pulld runs it (limit 20 and the total), and its median time is printed. It separates
 * the index's share of `pull search` from the process, the socket and the store, and is
 * the loop to run under perf.
 *
 *   index.build_s            time to index every record of the store
 *   index.bytes_per_record   search_index_bytes / live entries
 *   index.<query>_us         median time of search_index_rank (no fetch of hits)
 *   index.<query>_total      the number of matches it reports
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "lib/match.h"
#include "lib/search.h"
#include "lib/store.h"

int bench_index(int argc, char **argv);

struct iquery {
    const char *name;
    const char *words; /* NULL: none */
    const char *tag;   /* NULL: none */
    uint8_t kind;
};

static const struct iquery iqueries[] = {
    {"word", "guitar", NULL, 0},
    {"words_kind", "bike repair", NULL, RECORD_OFFER},
    {"tag", NULL, "rust", 0},
    {"typos", "guitr lesons", NULL, 0},
};
#define NIQ (sizeof(iqueries) / sizeof(iqueries[0]))

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int
bench_index(int argc, char **argv)
{
    const char *dir = NULL, *only = NULL;
    char path[4096];
    size_t runs = 50;
    struct store *s = NULL;
    struct search_index *ix = NULL;
    struct search_hit hits[20];
    double *t = NULL, t0;
    uint64_t now = (uint64_t)time(NULL);
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = strtoul(argv[++i], NULL, 10);
            if (runs < 1 || runs > 1000000) {
                fprintf(stderr, "pull-bench index: --runs must be 1..1000000\n");
                return 1;
            }
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else if (argv[i][0] != '-' && dir == NULL) {
            dir = argv[i];
        } else {
            fprintf(stderr, "usage: pull-bench index DIR [--runs R] [--only QUERY]\n");
            return 1;
        }
    }
    if (dir == NULL) {
        fprintf(stderr, "usage: pull-bench index DIR [--runs R] [--only QUERY]\n");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/store", dir);
    if ((t = calloc(runs, sizeof(*t))) == NULL || store_open(path, NULL, &s) != 0 ||
        search_index_new(&ix) != 0) {
        fprintf(stderr, "pull-bench index: cannot open the store in %s\n", path);
        goto out;
    }
    t0 = bench_now();
    if (search_index_build(ix, s, now) != 0) {
        fprintf(stderr, "pull-bench index: indexing failed\n");
        goto out;
    }
    bench_report("index.build_s", bench_now() - t0, "s");
    bench_report("index.records", (double)search_index_live(ix), "records");
    bench_report("index.bytes_per_record",
                 (double)search_index_bytes(ix) / (double)search_index_live(ix), "B");
    for (size_t k = 0; k < NIQ; k++) {
        const struct iquery *iq = &iqueries[k];
        struct match_query q;
        uint32_t n = 0, total = 0;
        char name[64];

        if (only != NULL && strcmp(only, iq->name) != 0)
            continue;
        match_query_init(&q);
        if (iq->words != NULL)
            (void)match_query_add_words(&q, iq->words);
        if (iq->tag != NULL)
            (void)match_query_add_tag(&q, iq->tag);
        q.kind = iq->kind;
        q.now_s = now;
        for (size_t r = 0; r < runs; r++) {
            t0 = bench_now();
            if (search_index_rank(ix, &q, 20, NULL, NULL, hits, &n, &total) != 0) {
                fprintf(stderr, "pull-bench index: query %s failed\n", iq->name);
                goto out;
            }
            t[r] = (bench_now() - t0) * 1e6;
        }
        qsort(t, runs, sizeof(*t), cmp_double);
        snprintf(name, sizeof(name), "index.%s_us", iq->name);
        bench_report(name, t[runs / 2], "us");
        snprintf(name, sizeof(name), "index.%s_total", iq->name);
        bench_report(name, total, "records");
        printf("  %s: %u shown, first score %u, fastest run %.0f us\n", iq->name, n,
               n > 0 ? hits[0].score : 0, t[0]);
    }
    rc = 0;
out:
    search_index_free(ix);
    store_close(s);
    free(t);
    return rc;
}
