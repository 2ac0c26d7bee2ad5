/*
 * pull-bench recon: set reconciliation between two in-memory sets of 1,000,000 random ids
 * that differ by d = 1, 100, 10,000 ids, with two real engines passing message bytes.
 *
 *   pull-bench recon [--n N] [--cache K] [--trials T] [--d D]...
 *
 * Each trial changes the sets by d ids, either split (d/2 only in A, d/2 only in B) or
 * one-sided (all d only in B, so A lacks them), runs one session with A as initiator and
 * checks the result exactly. Rounds are delivered whole before the other side answers
 * (the worst case for wasted symbols: everything a round sends is counted). Printed per d:
 *
 *   BENCH recon.d<d>.round_trips   the largest number of round trips over all trials
 *   BENCH recon.d<d>.bytes_per_diff  mean message bytes (both directions) per differing id
 *   BENCH recon.d<d>.ms            mean CPU time of a whole session (both engines)
 *
 * (the split case; the one-sided case prints the same under recon.onesided.d<d>.*), the
 * time to build the symbol cache of N ids, and the references on the same run: 32 B per
 * id (an id must cross), 1.35 x 42 B (the RIBLT asymptote) and Negentropy's ~1,100 B.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "lib/env.h"
#include "lib/err.h"
#include "proto/msg.h"
#include "proto/recon.h"

int bench_recon(int argc, char **argv);

typedef uint8_t rid_t[RIBLT_ID_LEN];

/* A set as the store would iterate it: the base ids minus the removed ones plus extras. */
struct bset {
    rid_t *base;
    size_t n;
    uint8_t *removed;
    rid_t *extra;
    size_t n_extra;
    struct recon_set *set;
};

static int
bset_each(void *ctx, recon_visit_fn visit, void *vctx)
{
    struct bset *b = ctx;
    int rc;

    for (size_t i = 0; i < b->n; i++)
        if (!b->removed[i] && (rc = visit(vctx, b->base[i])) != 0)
            return rc;
    for (size_t i = 0; i < b->n_extra; i++)
        if ((rc = visit(vctx, b->extra[i])) != 0)
            return rc;
    return 0;
}

static double
cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, RIBLT_ID_LEN);
}

struct collect {
    rid_t *v;
    size_t n, cap;
};

static int
collect_add(struct collect *c, const uint8_t (*ids)[RIBLT_ID_LEN], size_t n)
{
    if (c->n + n > c->cap) {
        size_t cap = (c->n + n) * 2;
        rid_t *p = realloc(c->v, cap * sizeof(rid_t));
        if (p == NULL)
            return PULL_ERR_NOMEM;
        c->v = p;
        c->cap = cap;
    }
    memcpy(c->v + c->n, ids, n * sizeof(rid_t));
    c->n += n;
    return 0;
}

struct side {
    struct recon *eng;
    struct collect want, push;
    int done, failed;
    struct recon_stats st;
    char reason[256];
    uint8_t **out;
    size_t *out_len;
    size_t n_out, cap_out;
};

static int
side_drain(struct side *s, uint64_t now)
{
    struct recon_event ev;
    int rc = 0;

    while (rc == 0 && recon_poll(s->eng, now, &ev) == 1) {
        switch (ev.type) {
        case RECON_EV_SEND:
            if (s->n_out == s->cap_out) {
                size_t cap = s->cap_out ? 2 * s->cap_out : 64;
                uint8_t **o = realloc(s->out, cap * sizeof(*o));
                size_t *l = realloc(s->out_len, cap * sizeof(*l));
                if (o != NULL)
                    s->out = o;
                if (l != NULL)
                    s->out_len = l;
                if (o == NULL || l == NULL)
                    return PULL_ERR_NOMEM;
                s->cap_out = cap;
            }
            if ((s->out[s->n_out] = malloc(ev.len)) == NULL)
                return PULL_ERR_NOMEM;
            memcpy(s->out[s->n_out], ev.msg, ev.len);
            s->out_len[s->n_out++] = ev.len;
            break;
        case RECON_EV_WANT:
            rc = collect_add(&s->want, ev.ids, ev.n_ids);
            break;
        case RECON_EV_PUSH:
            rc = collect_add(&s->push, ev.ids, ev.n_ids);
            break;
        case RECON_EV_DONE:
            s->done++;
            s->st = ev.stats;
            break;
        case RECON_EV_FAILED:
            s->failed++;
            s->st = ev.stats;
            snprintf(s->reason, sizeof(s->reason), "%s", ev.reason);
            break;
        }
    }
    return rc;
}

static size_t
side_deliver(struct side *from, struct side *to, uint64_t now, uint64_t *bytes)
{
    size_t n = from->n_out;

    for (size_t i = 0; i < n; i++) {
        *bytes += from->out_len[i];
        (void)recon_on_msg(to->eng, now, from->out[i], from->out_len[i]);
        free(from->out[i]);
    }
    from->n_out = 0;
    return n;
}

static void
side_release(struct side *s)
{
    recon_free(s->eng);
    free(s->want.v);
    free(s->push.v);
    for (size_t i = 0; i < s->n_out; i++)
        free(s->out[i]);
    free(s->out);
    free(s->out_len);
}

struct result {
    uint32_t round_trips, passes;
    uint64_t bytes;
    double cpu_s;
    bool ok;
};

/* Both sides' union of wants/pushes must be exactly the expected differences. */
static bool
check(struct side *a, struct side *b, rid_t *only_a, size_t na, rid_t *only_b, size_t nb)
{
    struct collect to_a = {0}, to_b = {0};
    bool ok;

    if (collect_add(&to_a, (const uint8_t(*)[RIBLT_ID_LEN])a->want.v, a->want.n) != 0 ||
        collect_add(&to_a, (const uint8_t(*)[RIBLT_ID_LEN])b->push.v, b->push.n) != 0 ||
        collect_add(&to_b, (const uint8_t(*)[RIBLT_ID_LEN])a->push.v, a->push.n) != 0 ||
        collect_add(&to_b, (const uint8_t(*)[RIBLT_ID_LEN])b->want.v, b->want.n) != 0) {
        ok = false;
        goto out;
    }
    qsort(to_a.v, to_a.n, sizeof(rid_t), cmp_id);
    qsort(to_b.v, to_b.n, sizeof(rid_t), cmp_id);
    qsort(only_a, na, sizeof(rid_t), cmp_id);
    qsort(only_b, nb, sizeof(rid_t), cmp_id);
    ok = to_a.n == nb && to_b.n == na &&
         (nb == 0 || memcmp(to_a.v, only_b, nb * sizeof(rid_t)) == 0) &&
         (na == 0 || memcmp(to_b.v, only_a, na * sizeof(rid_t)) == 0);
out:
    free(to_a.v);
    free(to_b.v);
    return ok;
}

static int
run_session(struct bset *sa, struct bset *sb, struct pull_env *env, rid_t *only_a, size_t na,
            rid_t *only_b, size_t nb, struct result *res)
{
    struct side a, b;
    struct recon_cfg cfg;
    uint64_t bytes = 0, now = 1000;
    double t0;
    int rc;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(res, 0, sizeof(*res));
    memset(&cfg, 0, sizeof(cfg));
    cfg.env = env;
    cfg.set = sa->set;
    cfg.each = bset_each;
    cfg.each_ctx = sa;
    if ((rc = recon_new(&cfg, &a.eng)) != 0)
        goto out;
    cfg.set = sb->set;
    cfg.each_ctx = sb;
    if ((rc = recon_new(&cfg, &b.eng)) != 0)
        goto out;
    t0 = cpu_now();
    if ((rc = recon_start(a.eng, now, 0)) != 0)
        goto out;
    for (;;) {
        size_t moved;
        if ((rc = side_drain(&a, now)) != 0)
            goto out;
        moved = side_deliver(&a, &b, now, &bytes);
        if ((rc = side_drain(&b, now)) != 0)
            goto out;
        moved += side_deliver(&b, &a, now, &bytes);
        if (moved == 0)
            break;
    }
    if ((rc = side_drain(&a, now)) != 0 || (rc = side_drain(&b, now)) != 0)
        goto out;
    res->cpu_s = cpu_now() - t0;
    res->bytes = bytes;
    res->round_trips = a.st.round_trips;
    res->passes = a.st.passes + b.st.passes;
    res->ok = a.done == 1 && b.done == 1 && check(&a, &b, only_a, na, only_b, nb);
    if (!res->ok)
        fprintf(stderr, "recon: session failed: %s%s\n", a.reason, b.reason);
out:
    side_release(&a);
    side_release(&b);
    return rc;
}

static void
usage(void)
{
    fprintf(stderr, "usage: pull-bench recon [--n N] [--cache K] [--trials T] [--d D]...\n");
}

int
bench_recon(int argc, char **argv)
{
    size_t n = 1000000, ds[16], nds = 0, trials = 3, maxd = 0;
    uint32_t cache = RECON_CACHE_DEFAULT;
    struct env_seeded e;
    struct bset sa, sb;
    struct recon_set_cfg scfg;
    rid_t *extra = NULL;
    double t0;
    int rc = 1;

    memset(&sa, 0, sizeof(sa));
    memset(&sb, 0, sizeof(sb));
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--n") == 0)
            n = strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--cache") == 0)
            cache = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--trials") == 0)
            trials = strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--d") == 0 && nds < 16)
            ds[nds++] = strtoul(argv[++i], NULL, 10);
        else {
            usage();
            return 1;
        }
    }
    if (nds == 0) {
        ds[0] = 1, ds[1] = 100, ds[2] = 10000;
        nds = 3;
    }
    for (size_t k = 0; k < nds; k++)
        if (ds[k] == 0 || ds[k] > n) {
            usage();
            return 1;
        }
    if (trials == 0)
        trials = 1;
    env_seeded_init(&e, 20240801, 1000, 0);
    sa.n = sb.n = n;
    sa.base = malloc(n * sizeof(rid_t));
    sa.removed = calloc(n, 1);
    sb.removed = calloc(n, 1);
    for (size_t k = 0; k < nds; k++)
        if (ds[k] > maxd)
            maxd = ds[k];
    extra = malloc(2 * maxd * sizeof(rid_t));
    if (sa.base == NULL || sa.removed == NULL || sb.removed == NULL || extra == NULL) {
        fprintf(stderr, "pull-bench recon: out of memory\n");
        goto out;
    }
    sb.base = sa.base;
    env_random(&e.env, sa.base, n * sizeof(rid_t));
    scfg.cache_symbols = cache;
    scfg.journal_max = 0;
    printf("recon: two sets of %zu random ids, symbol cache K=%u, %zu trials per case\n", n, cache,
           trials);
    t0 = cpu_now();
    if (recon_set_new(&scfg, &sa.set) != 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (recon_set_add(sa.set, sa.base[i]) != 0)
            goto out;
    {
        double ms = (cpu_now() - t0) * 1000.0;
        printf("  cache of %zu ids built in %.0f ms CPU\n", n, ms);
        bench_report("recon.cache_build_1m", ms * 1e6 / (double)n, "ms");
    }
    if (recon_set_new(&scfg, &sb.set) != 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (recon_set_add(sb.set, sb.base[i]) != 0)
            goto out;

    for (int onesided = 0; onesided < 2; onesided++) {
        for (size_t k = 0; k < nds; k++) {
            size_t d = ds[k], nb = onesided ? d : d - d / 2, na = onesided ? 0 : d / 2;
            rid_t *only_a = extra, *only_b = extra + maxd;
            uint32_t rt_max = 0;
            double bytes = 0, cpu = 0;
            bool all_ok = true;
            char name[64];

            for (size_t t = 0; t < trials; t++) {
                struct result res;
                /* B loses na of the common ids (they stay only in A) and gains nb new. */
                for (size_t i = 0; i < na; i++) {
                    size_t at;
                    do
                        at = env_uniform(&e.env, (uint32_t)n);
                    while (sb.removed[at]);
                    sb.removed[at] = 1;
                    memcpy(only_a[i], sb.base[at], sizeof(rid_t));
                    if (recon_set_remove(sb.set, sb.base[at]) != 0)
                        goto out;
                }
                env_random(&e.env, only_b, nb * sizeof(rid_t));
                for (size_t i = 0; i < nb; i++)
                    if (recon_set_add(sb.set, only_b[i]) != 0)
                        goto out;
                sb.extra = only_b;
                sb.n_extra = nb;
                if (run_session(&sa, &sb, &e.env, only_a, na, only_b, nb, &res) != 0)
                    goto out;
                printf("  %s d=%zu (%zu only in A, %zu only in B): %u round trips, %.1f B/id, "
                       "%.1f ms, %u passes%s\n",
                       onesided ? "one-sided" : "split", d, na, nb, res.round_trips,
                       (double)res.bytes / (double)d, res.cpu_s * 1000, res.passes,
                       res.ok ? "" : " WRONG RESULT");
                all_ok = all_ok && res.ok;
                if (res.round_trips > rt_max)
                    rt_max = res.round_trips;
                bytes += (double)res.bytes / (double)d;
                cpu += res.cpu_s * 1000;
                /* Restore B to the base set. */
                for (size_t i = 0; i < nb; i++)
                    if (recon_set_remove(sb.set, only_b[i]) != 0)
                        goto out;
                sb.n_extra = 0;
                for (size_t i = 0; i < n; i++) {
                    if (!sb.removed[i])
                        continue;
                    sb.removed[i] = 0;
                    if (recon_set_add(sb.set, sb.base[i]) != 0)
                        goto out;
                }
            }
            if (!all_ok) {
                fprintf(stderr, "pull-bench recon: wrong reconciliation result\n");
                goto out;
            }
            snprintf(name, sizeof(name), "recon.%sd%zu.round_trips", onesided ? "onesided." : "",
                     d);
            bench_report(name, rt_max, "rt");
            snprintf(name, sizeof(name), "recon.%sd%zu.bytes_per_diff", onesided ? "onesided." : "",
                     d);
            bench_report(name, bytes / (double)trials, "B");
            snprintf(name, sizeof(name), "recon.%sd%zu.ms", onesided ? "onesided." : "", d);
            bench_report(name, cpu / (double)trials, "ms");
        }
    }
    bench_report("recon.ref.id_bytes", 32, "B");
    bench_report("recon.ref.riblt_asymptote", 1.35 * RIBLT_SYM_WIRE, "B");
    bench_report("recon.ref.negentropy", 1100, "B");
    rc = 0;
out:
    recon_set_free(sa.set);
    recon_set_free(sb.set);
    free(sa.base);
    free(sa.removed);
    free(sb.removed);
    free(extra);
    return rc;
}
