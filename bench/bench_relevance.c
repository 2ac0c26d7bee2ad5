/*
 * pull-bench relevance [DIR] [--require R] [-v]
 * How well `pull search` ranks: the relevance test set in DIR (default tests/relevance:
 * corpus.tsv and queries.tsv, written by DIR/gen.py) is indexed by lib/search.h exactly as
 * pulld indexes records, each query runs as pulld runs it, and the results are judged
 * against the records each query names.
 *
 *   search.relevance_pass  share of the queries whose "must" records are all in the top 3
 *   search.ndcg10          mean nDCG@10 (gain 2 for "must" records, 1 for "also" ones)
 *   search.mrr             mean reciprocal rank of the first relevant record (0 past 10)
 *   search.relevance_queries, search.relevance_records  the size of the set
 *
 * With --require R, exits 1 if the pass share is below R (the ctest `relevance` asks for
 * 0.95). -v prints every query's first 3 results; failures are always printed.
 *
 * --trust runs every query a second time with pulld's trust ranking (lib/trust.h
 * trust_rank) over a made-up graph that puts each author at a distance chosen by a hash of
 * its key (10% at 1 hop, 15% at 2, 15% at 3, 10% further, half with no path) - a graph
 * that knows nothing of relevance, the worst case for the boost - and reports:
 *   search.relevance_pass_trust, search.ndcg10_trust, search.mrr_trust  the same measures
 *   search.trust_reordered   share of the queries whose top 10 changed order
 *   search.trust_near_gain   mean places gained in the top 10 by records of authors 1 or
 *                            2 hops away (those in both lists)
 * The boost is right when it reorders near ties and leaves relevance where it was.
 */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "lib/err.h"
#include "lib/match.h"
#include "lib/record.h"
#include "lib/search.h"

int bench_relevance(int argc, char **argv);

#include "lib/trust.h"

#define REL_NOW 1800000000u
#define REL_TOP 10
#define KEY_MAX 48

struct rel_rec {
    char key[KEY_MAX];
    uint64_t id8;
    uint64_t author8;
};

struct rel_set {
    struct rel_rec *recs;
    size_t n, cap;
    struct search_index *ix;
};

/* The made-up distance of an author (see --trust above). */
static unsigned
fake_distance(uint64_t author8)
{
    unsigned h = (unsigned)((author8 * 0x9e3779b97f4a7c15ull) >> 57) % 100; /* 0..99 */

    return h < 10 ? 1 : h < 25 ? 2 : h < 40 ? 3 : h < 50 ? 4 : TRUST_NONE;
}

static uint32_t
fake_trust(void *ctx, uint64_t author8)
{
    (void)ctx;
    return trust_rank(fake_distance(author8));
}

/* Splits line at tabs into at most max fields (the line is modified). */
static size_t
split(char *line, char **f, size_t max)
{
    size_t n = 0;

    line[strcspn(line, "\r\n")] = '\0';
    f[n++] = line;
    for (char *p = line; *p != '\0' && n < max; p++) {
        if (*p == '\t') {
            *p = '\0';
            f[n++] = p + 1;
        }
    }
    return n;
}

static int
copy_text(char *dst, size_t cap, const char *src, const char *what, const char *key)
{
    if (strlen(src) >= cap) {
        fprintf(stderr, "pull-bench relevance: %s of %s is too long\n", what, key);
        return -1;
    }
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

/* Reads corpus.tsv into the set and the index. */
static int
load_corpus(struct rel_set *s, const char *dir)
{
    char path[4096], line[8192], *f[8];
    struct record *rec = malloc(sizeof(*rec));
    FILE *fp;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/corpus.tsv", dir);
    if (rec == NULL || (fp = fopen(path, "r")) == NULL) {
        fprintf(stderr, "pull-bench relevance: cannot read %s\n", path);
        free(rec);
        return -1;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        uint8_t id[RECORD_ID_BYTES], h[64];
        char *save = NULL, *t;
        int err;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (split(line, f, 8) != 8) {
            fprintf(stderr, "pull-bench relevance: bad corpus line: %s\n", line);
            goto out;
        }
        record_init(rec);
        rec->kind = strcmp(f[1], "need") == 0 ? RECORD_NEED : RECORD_OFFER;
        crypto_generichash(h, 64, (const uint8_t *)f[0], strlen(f[0]), NULL, 0);
        memcpy(rec->author, h, 32);
        memcpy(rec->slot, h + 32, RECORD_SLOT_BYTES);
        rec->seq = 1;
        rec->created = REL_NOW - strtoull(f[3], NULL, 10) * 86400u - (s->n % 3600);
        rec->expires = rec->created + RECORD_TTL_MAX;
        if (copy_text(rec->title, sizeof(rec->title), f[4], "title", f[0]) != 0 ||
            copy_text(rec->body, sizeof(rec->body), f[5], "body", f[0]) != 0 ||
            copy_text(rec->terms, sizeof(rec->terms), f[7], "terms", f[0]) != 0)
            goto out;
        for (t = strtok_r(f[6], " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
            if (rec->ntags >= RECORD_TAGS_MAX ||
                copy_text(rec->tags[rec->ntags], sizeof(rec->tags[0]), t, "a tag", f[0]) != 0)
                goto out;
            rec->ntags++;
        }
        if ((err = record_check_fields(rec)) != 0) {
            fprintf(stderr, "pull-bench relevance: record %s: %s\n", f[0], pull_strerror(err));
            goto out;
        }
        crypto_generichash(id, sizeof(id), h, sizeof(h), NULL, 0);
        if ((err = search_index_add(s->ix, id, rec)) != 0) {
            fprintf(stderr, "pull-bench relevance: indexing %s: %s\n", f[0], pull_strerror(err));
            goto out;
        }
        if (s->n == s->cap) {
            size_t nc = s->cap ? 2 * s->cap : 1024;
            struct rel_rec *nr = realloc(s->recs, nc * sizeof(*nr));
            if (nr == NULL)
                goto out;
            s->recs = nr;
            s->cap = nc;
        }
        snprintf(s->recs[s->n].key, KEY_MAX, "%s", f[0]);
        s->recs[s->n].id8 = search_id8(id);
        s->recs[s->n].author8 = search_id8(rec->author);
        s->n++;
    }
    rc = 0;
out:
    fclose(fp);
    free(rec);
    return rc;
}

static const char *
key_of(const struct rel_set *s, uint64_t id8)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->recs[i].id8 == id8)
            return s->recs[i].key;
    }
    return "?";
}

/* Whether the record id8's author is 1 or 2 hops away in --trust's made-up graph. */
static bool
records_author_near(const struct rel_set *s, uint64_t id8)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->recs[i].id8 == id8)
            return fake_distance(s->recs[i].author8) <= 2;
    }
    return false;
}

/* Whether key is one of the space-separated keys of list. */
static bool
in_list(const char *list, const char *key)
{
    size_t kl = strlen(key);

    for (const char *p = list; *p != '\0';) {
        size_t l = strcspn(p, " ");
        if (l == kl && memcmp(p, key, kl) == 0)
            return true;
        p += l;
        while (*p == ' ')
            p++;
    }
    return false;
}

static unsigned
count_list(const char *list)
{
    unsigned n = 0;

    for (const char *p = list; *p != '\0';) {
        size_t l = strcspn(p, " ");
        n += l > 0;
        p += l;
        while (*p == ' ')
            p++;
    }
    return n;
}

int
bench_relevance(int argc, char **argv)
{
    struct rel_set s = {0};
    const char *dir = "tests/relevance";
    char path[4096], line[4096], *f[4];
    double require = -1, ndcg_sum = 0, mrr_sum = 0, ndcg_t = 0, mrr_t = 0, gain = 0;
    unsigned nq = 0, pass = 0, pass_t = 0, reordered = 0, ngain = 0;
    bool verbose = false, trust = false;
    FILE *fp = NULL;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--require") == 0 && i + 1 < argc) {
            require = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "-v") == 0) {
            verbose = true;
        } else if (strcmp(argv[i], "--trust") == 0) {
            trust = true;
        } else if (argv[i][0] != '-') {
            dir = argv[i];
        } else {
            fprintf(stderr, "usage: pull-bench relevance [DIR] [--require R] [-v] [--trust]\n");
            return 1;
        }
    }
    if (search_index_new(&s.ix) != 0 || load_corpus(&s, dir) != 0)
        goto out;
    snprintf(path, sizeof(path), "%s/queries.tsv", dir);
    if ((fp = fopen(path, "r")) == NULL) {
        fprintf(stderr, "pull-bench relevance: cannot read %s\n", path);
        goto out;
    }
    while (fgets(line, sizeof(line), fp) != NULL) {
        struct match_query q;
        struct search_hit hits[REL_TOP];
        uint32_t nh = 0, total = 0;
        unsigned nmust, found = 0, nrel;
        double dcg = 0, idcg = 0, rr = 0;
        char *save = NULL, *t;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (split(line, f, 4) < 3) {
            fprintf(stderr, "pull-bench relevance: bad query line: %s\n", line);
            goto out;
        }
        if (split(line, f, 4) == 3)
            f[3] = "";
        match_query_init(&q);
        q.now_s = REL_NOW;
        if (match_query_add_words(&q, f[0]) != 0)
            goto bad_query;
        for (t = strtok_r(f[1], " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
            if (strncmp(t, "kind=", 5) == 0) {
                if (record_kind_parse(t + 5, &q.kind) != 0)
                    goto bad_query;
            } else if (strncmp(t, "tag=", 4) == 0) {
                if (match_query_add_tag(&q, t + 4) != 0)
                    goto bad_query;
            } else {
                goto bad_query;
            }
        }
        if (search_index_rank(s.ix, &q, REL_TOP, NULL, NULL, hits, &nh, &total) != 0)
            goto out;
        nmust = count_list(f[2]);
        nrel = nmust + count_list(f[3]);
        for (uint32_t i = 0; i < nh; i++) {
            const char *k = key_of(&s, hits[i].id8);
            unsigned g = in_list(f[2], k) ? 2 : in_list(f[3], k) ? 1 : 0;
            if (g == 2 && i < 3)
                found++;
            if (g > 0 && rr == 0)
                rr = 1.0 / (i + 1);
            dcg += (pow(2, g) - 1) / log2(i + 2.0);
        }
        for (unsigned i = 0; i < nrel && i < REL_TOP; i++)
            idcg += (pow(2, i < nmust ? 2 : 1) - 1) / log2(i + 2.0);
        nq++;
        pass += found == nmust;
        ndcg_sum += idcg > 0 ? dcg / idcg : 0;
        mrr_sum += rr;
        if (trust) {
            struct search_hit th[REL_TOP];
            uint32_t tn = 0;
            unsigned tfound = 0;
            double tdcg = 0, trr = 0;
            q.trust = fake_trust;
            if (search_index_rank(s.ix, &q, REL_TOP, NULL, NULL, th, &tn, NULL) != 0)
                goto out;
            q.trust = NULL;
            for (uint32_t i = 0; i < tn; i++) {
                const char *k = key_of(&s, th[i].id8);
                unsigned g = in_list(f[2], k) ? 2 : in_list(f[3], k) ? 1 : 0;
                if (g == 2 && i < 3)
                    tfound++;
                if (g > 0 && trr == 0)
                    trr = 1.0 / (i + 1);
                tdcg += (pow(2, g) - 1) / log2(i + 2.0);
            }
            pass_t += tfound == nmust;
            ndcg_t += idcg > 0 ? tdcg / idcg : 0;
            mrr_t += trr;
            for (uint32_t i = 0; i < tn && i < nh; i++) {
                if (th[i].id8 != hits[i].id8) {
                    reordered++;
                    break;
                }
            }
            for (uint32_t i = 0; i < tn; i++) {
                for (uint32_t j = 0; j < nh; j++) {
                    if (hits[j].id8 == th[i].id8 && records_author_near(&s, th[i].id8)) {
                        gain += (double)j - (double)i;
                        ngain++;
                    }
                }
            }
        }
        if (found != nmust || verbose) {
            printf("%s  \"%s\"%s%s (%u matches): must %s%s", found == nmust ? "ok  " : "FAIL", f[0],
                   f[1][0] ? " " : "", f[1], total, f[2], found == nmust ? "\n" : "; got");
            if (found != nmust || verbose) {
                for (uint32_t i = 0; i < nh && i < 3; i++)
                    printf(" %s%s", found == nmust && i == 0 ? "    " : "", key_of(&s, hits[i].id8));
                printf("\n");
            }
        }
        continue;
    bad_query:
        fprintf(stderr, "pull-bench relevance: bad query: %s\n", f[0]);
        goto out;
    }
    if (nq == 0) {
        fprintf(stderr, "pull-bench relevance: no queries in %s\n", path);
        goto out;
    }
    printf("%u of %u queries have their records in the top 3\n", pass, nq);
    bench_report("search.relevance_pass", (double)pass / nq, "ratio");
    bench_report("search.ndcg10", ndcg_sum / nq, "ratio");
    bench_report("search.mrr", mrr_sum / nq, "ratio");
    bench_report("search.relevance_queries", nq, "queries");
    bench_report("search.relevance_records", (double)s.n, "records");
    if (trust) {
        printf("with trust ranking over a made-up graph: %u of %u queries pass\n", pass_t, nq);
        bench_report("search.relevance_pass_trust", (double)pass_t / nq, "ratio");
        bench_report("search.ndcg10_trust", ndcg_t / nq, "ratio");
        bench_report("search.mrr_trust", mrr_t / nq, "ratio");
        bench_report("search.trust_reordered", (double)reordered / nq, "ratio");
        bench_report("search.trust_near_gain", ngain > 0 ? gain / ngain : 0, "places");
    }
    rc = 0;
    if (require >= 0 && (double)pass / nq < require) {
        fprintf(stderr, "pull-bench relevance: %.3f of the queries pass, below %.3f\n",
                (double)pass / nq, require);
        rc = 1;
    }
out:
    if (fp != NULL)
        fclose(fp);
    search_index_free(s.ix);
    free(s.recs);
    return rc;
}
