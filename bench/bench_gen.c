/*
 * pull-bench gen N FILE: N signed records from many random authors, written as an import
 * bundle (lib/bundle.h). Also the generator behind pull-bench ingest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "bench/bench_gen.h"
#include "lib/buf.h"
#include "lib/bundle.h"
#include "lib/env.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/record.h"

int bench_gen(int argc, char **argv);

#define GEN_PER_AUTHOR_MAX 200
#define GEN_AUTHOR_AVG 50

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* clang-format off */

static const char *const skills[] = {
    "C code review",     "Rust mentoring",     "bike repair",       "French lessons",
    "guitar lessons",    "3D printing",        "garden help",       "tax paperwork",
    "piano lessons",     "a ride to Lyon",     "moving boxes",      "photography",
    "website design",    "sourdough starter",  "math tutoring",     "a drill",
    "sewing machine",    "Python debugging",   "a spare room",      "kayak",
    "dog walking",       "Linux install help", "logo design",       "Spanish practice",
    "plumbing advice",   "a ladder",           "CV proofreading",   "chess coaching",
    "yoga sessions",     "a projector",        "Go code review",    "electronics repair",
    "knitting lessons",  "cargo bike",         "a tent",            "baby clothes",
    "statistics help",   "video editing",      "accounting basics", "climbing partner",
};
static const char *const offer_verbs[] = {"I can offer", "Happy to help with", "I lend",
                                          "Available for", "Free:", "I teach"};
static const char *const need_verbs[] = {"Looking for", "Need", "Searching for",
                                         "Would love some", "Anyone with"};
static const char *const places[] = {"Lyon",   "Paris",     "Berlin", "Lisbon", "Montreal",
                                     "Nantes", "Barcelona", "online", "Torino", "Ghent"};
static const char *const sentences[] = {
    "Weekends work best for me.",
    "I have done this for about ten years and enjoy sharing it.",
    "Happy to meet in a cafe or do it over video.",
    "No payment needed, a coffee or a swap is welcome.",
    "Please say a few words about what you need and when.",
    "I can also lend the tools if you prefer to do it yourself.",
    "Beginners are very welcome, no question is silly.",
    "Evenings after 7pm are fine during the week.",
    "It takes about two hours, longer if we go into details.",
    "I am new in the neighbourhood and would like to meet people.",
    "Urgent-ish: ideally before the end of the month.",
    "References from earlier exchanges are visible on my profile.",
};
static const char *const tag_words[] = {
    "c",       "rust",    "python",   "go",       "code-review", "mentoring", "bike",
    "repair",  "lessons", "music",    "guitar",   "piano",       "language",  "french",
    "spanish", "lyon",    "paris",    "berlin",   "garden",      "tools",     "lend",
    "3d-print", "design", "web",      "tutoring", "math",        "moving",    "photo",
    "food",    "kids",    "sport",    "climbing", "yoga",        "pets",      "linux",
    "tax",     "writing", "video",    "sewing",   "craft",       "housing",   "travel",
    "chess",   "finance", "electronics", "outdoor", "free",      "swap",      "online",
};
static const char *const terms[] = {"", "", "", "free", "a coffee", "swap for bike help",
                                    "pay what you want", "return the favour someday"};
static const char geohash_alphabet[] = "0123456789bcdefghjkmnpqrstuvwxyz";
/* clang-format on */

/* Fills rec with a plausible offer or need. */
static void
gen_fill(struct record *rec, const struct pull_env *env, const uint8_t author[32], uint64_t now_s)
{
    const char *skill = skills[env_uniform(env, COUNT(skills))];
    const char *place = places[env_uniform(env, COUNT(places))];
    size_t off = 0, ns;

    record_init(rec);
    rec->kind = env_uniform(env, 100) < 60 ? RECORD_OFFER : RECORD_NEED;
    memcpy(rec->author, author, 32);
    env_random(env, rec->slot, sizeof(rec->slot));
    rec->seq = 1 + env_uniform(env, 3);
    rec->created = now_s - env_uniform(env, 20 * 86400);
    rec->expires = rec->created + RECORD_TTL_DEFAULT;
    if (rec->kind == RECORD_OFFER)
        snprintf(rec->title, sizeof(rec->title), "%s %s in %s",
                 offer_verbs[env_uniform(env, COUNT(offer_verbs))], skill, place);
    else
        snprintf(rec->title, sizeof(rec->title), "%s %s (%s)",
                 need_verbs[env_uniform(env, COUNT(need_verbs))], skill, place);
    ns = 1 + env_uniform(env, 5);
    for (size_t i = 0; i < ns && off < 1000; i++) {
        int w = snprintf(rec->body + off, sizeof(rec->body) - off, "%s%s", i ? " " : "",
                         sentences[env_uniform(env, COUNT(sentences))]);
        if (w < 0 || (size_t)w >= sizeof(rec->body) - off)
            break;
        off += (size_t)w;
    }
    for (unsigned nt = 1 + env_uniform(env, 5); rec->ntags < nt;) {
        const char *t = tag_words[env_uniform(env, COUNT(tag_words))];
        bool dup = false;
        for (unsigned j = 0; j < rec->ntags; j++)
            dup |= strcmp(rec->tags[j], t) == 0;
        if (dup)
            continue;
        snprintf(rec->tags[rec->ntags], sizeof(rec->tags[0]), "%s", t);
        rec->ntags++;
    }
    if (env_uniform(env, 2) == 0) {
        size_t gl = 4 + env_uniform(env, 4);
        for (size_t i = 0; i < gl; i++)
            rec->location[i] = geohash_alphabet[env_uniform(env, 32)];
        rec->location[gl] = '\0';
    }
    snprintf(rec->terms, sizeof(rec->terms), "%s", terms[env_uniform(env, COUNT(terms))]);
}

int
gen_records(size_t n, uint64_t now_s, uint64_t seed, gen_emit_fn emit, void *ctx)
{
    struct env_seeded es;
    const struct pull_env *env;
    struct ident *ids = NULL;
    uint16_t *used = NULL;
    struct record *rec = NULL;
    struct pull_wb wb;
    size_t nauthors = n / GEN_AUTHOR_AVG;
    int rc = 0;

    if (nauthors == 0)
        nauthors = 1;
    /* enough room for every record even at the per-author cap */
    if (nauthors < (n + GEN_PER_AUTHOR_MAX - 1) / GEN_PER_AUTHOR_MAX)
        nauthors = (n + GEN_PER_AUTHOR_MAX - 1) / GEN_PER_AUTHOR_MAX;
    if (nauthors > UINT32_MAX)
        return PULL_ERR_INVAL;
    env_seeded_init(&es, seed, 0, now_s);
    env = &es.env;
    wb_init(&wb, RECORD_ENVELOPE_MAX);
    ids = calloc(nauthors, sizeof(*ids));
    used = calloc(nauthors, sizeof(*used));
    rec = malloc(sizeof(*rec));
    if (ids == NULL || used == NULL || rec == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    for (size_t a = 0; a < nauthors; a++) {
        uint8_t s[32];
        env_random(env, s, sizeof(s));
        if ((rc = ident_from_seed(&ids[a], s)) != 0)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        size_t a = env_uniform(env, (uint32_t)nauthors);
        while (used[a] >= GEN_PER_AUTHOR_MAX)
            a = (a + 1) % nauthors;
        used[a]++;
        gen_fill(rec, env, ids[a].pk, now_s);
        wb_reset(&wb);
        if ((rc = record_sign(rec, &ids[a], &wb, NULL)) != 0)
            goto out;
        if ((rc = emit(ctx, wb.p, wb.len)) != 0)
            goto out;
    }
out:
    if (ids != NULL) {
        for (size_t a = 0; a < nauthors; a++)
            ident_wipe(&ids[a]);
    }
    free(ids);
    free(used);
    free(rec);
    wb_release(&wb);
    return rc;
}

struct gen_file {
    struct bundle_writer w;
    uint64_t bytes;
};

static int
emit_bundle(void *ctx, const uint8_t *env, size_t len)
{
    struct gen_file *g = ctx;

    g->bytes += len;
    return bundle_write(&g->w, env, len);
}

int
bench_gen(int argc, char **argv)
{
    struct gen_file g;
    char *end = NULL;
    unsigned long long n;
    double t0, dt;
    FILE *f;
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: pull-bench gen N FILE\n");
        return 1;
    }
    errno = 0;
    n = strtoull(argv[1], &end, 10);
    if (errno != 0 || end == argv[1] || *end != '\0' || n == 0 || n > 100000000ull) {
        fprintf(stderr, "pull-bench gen: N must be a number from 1 to 100000000\n");
        return 1;
    }
    if ((f = fopen(argv[2], "wb")) == NULL) {
        fprintf(stderr, "pull-bench gen: %s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    memset(&g, 0, sizeof(g));
    t0 = bench_now();
    if ((rc = bundle_writer_init(&g.w, f)) == 0)
        rc = gen_records((size_t)n, (uint64_t)time(NULL), (uint64_t)time(NULL), emit_bundle, &g);
    if (rc == 0)
        rc = bundle_writer_finish(&g.w);
    if (fclose(f) != 0 && rc == 0)
        rc = PULL_ERR_IO;
    dt = bench_now() - t0;
    if (rc != 0) {
        fprintf(stderr, "pull-bench gen: %s\n", pull_strerror(rc));
        return 1;
    }
    printf("generated %llu signed records from %llu authors (%.1f MB of envelopes) into %s "
           "in %.2f s\n",
           n, (unsigned long long)(n / GEN_AUTHOR_AVG ? n / GEN_AUTHOR_AVG : 1),
           (double)g.bytes / 1e6, argv[2], dt);
    bench_report("gen.time", dt, "s");
    bench_report("gen.rate", (double)n / dt, "rec/s");
    return 0;
}
