/*
 * pull-bench ingest [N] [--batch B] [--rounds R] [--sync full|data|none] [--shuffled]
 *                   [--profile] [--threads T]
 * How fast signed records are decoded, verified and stored, next to the physical limit
 * measured on the same run: the raw single-core Ed25519 verify rate over the same messages.
 *
 * N envelopes (default 20000, from ~N/50 authors) are generated and signed first (not
 * timed). They are fed in the order a sync delivers them, oldest first (created, id):
 * new records gossip as they are made and range-based reconciliation walks time ranges;
 * --shuffled feeds them in random order instead (that figure is printed too).
 *
 *   verify.raw              crypto_sign_verify_detached over "pull/record/v1" || record
 *   ingest.rate             store_put_batch (envelope_open, then one write transaction per
 *                           batch of B records, default 4096) into a fresh store, one
 *                           thread, durable commits (default STORE_SYNC_FULL, the store's
 *                           default; see lib/store.h)
 *   ingest.ratio_to_verify  ingest.rate / verify.raw (target >= 0.85)
 * The machine may be shared with other work, so the raw verify is interleaved with the
 * ingest batch by batch (the raw verify of a batch's records right before or after it,
 * alternately, timed apart): both see the same load. R rounds (default 3), rates and ratio
 * over the sums (wall clock). The same ratio in process CPU time is printed as
 * ingest.cpu_ratio_to_verify (it leaves out the time spent waiting for the disk). Then,
 * once each:
 *   ingest.rate_shuffled, ingest.ratio_shuffled   the same ingest in random order
 *   ingest.rate_batch1024, ingest.ratio_batch1024 the same with batches of 1024
 *   ingest.rate_sync_full   with STORE_SYNC_FULL (data, then meta page synced: two flushes)
 *   ingest.rate_sync_data   with STORE_SYNC_DATA (data synced, meta page with the next one)
 *   ingest.rate_nosync, ingest.rate_nosync_envsync   with MDB_NOSYNC, and with MDB_NOSYNC
 *                           plus an explicit mdb_env_sync after each batch
 *   ingest.open_rate        envelope_open alone (parse, hash, decode, verify)
 *   store.put_opened        store_put_opened alone (already verified records)
 *   lmdb.put_raw            plain LMDB puts of the same bytes keyed by created || id
 * --profile repeats the envelope_open / store_put_opened split 5 times (for perf).
 *
 * --threads T measures pulld's own path instead: a node (daemon/node.h) on a fresh data
 * dir with T verifier threads, every envelope handed to node_submit_async in time order
 * (waiting while node_verify_busy, as net does), verified on the threads, committed by the
 * loop in its batches (durable, the default) and indexed for search, until the last
 * callback. The raw single-core verify of the same records runs right before and right
 * after (their mean is verify.raw), R rounds:
 *   ingest.node_rate                 records per second, submit to last callback
 *   ingest.ratio_to_verify           ingest.node_rate / verify.raw (one core)
 *   ingest.ratio_to_all_cores        ingest.node_rate / (verify.raw x min(T, cores))
 *   ingest.node_cpu_us_per_rec       the process's CPU time per record (all threads)
 *   ingest.loop_cpu_us_per_rec       the loop thread's own CPU time per record
 *   ingest.loop_busy, ingest.cores_busy   the loop's CPU time, and the process's, over the
 *                                    wall time: what is left of 1 and of the cores is waiting
 */
#include <errno.h>
#include <lmdb.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_gen.h"
#include "bench/proc.h"
#include "daemon/config.h"
#include "daemon/node.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/paths.h"
#include "lib/record.h"
#include "lib/store.h"

int bench_ingest(int argc, char **argv);

/* The generated envelopes, back to back, and what the measurements need of each. */
struct corpus {
    struct bench_corpus e; /* the envelopes (bench/proc.h) */
    /* filled after generation */
    uint8_t *msg; /* "pull/record/v1" || record, back to back */
    size_t *moff, *mlen;
    uint8_t (*pk)[32];
    uint8_t (*sig)[64];
    uint8_t (*key)[40]; /* created || id */
};

static int
corpus_add(void *ctx, const uint8_t *env, size_t len)
{
    struct corpus *c = ctx;

    return bench_corpus_add(&c->e, env, len);
}

static void
corpus_free(struct corpus *c)
{
    bench_corpus_free(&c->e);
    free(c->msg);
    free(c->moff);
    free(c->mlen);
    free(c->pk);
    free(c->sig);
    free(c->key);
}

/* Decodes every envelope once (not timed) for the raw verify and the raw LMDB put. */
static int
corpus_prepare(struct corpus *c)
{
    struct record *rec = malloc(sizeof(*rec));
    size_t n = c->e.n, dl = strlen(RECORD_DOMAIN), total = 0;
    int rc = PULL_ERR_NOMEM;

    c->moff = calloc(n, sizeof(*c->moff));
    c->mlen = calloc(n, sizeof(*c->mlen));
    c->pk = calloc(n, sizeof(*c->pk));
    c->sig = calloc(n, sizeof(*c->sig));
    c->key = calloc(n, sizeof(*c->key));
    c->msg = malloc(c->e.len + n * dl);
    if (rec == NULL || c->moff == NULL || c->mlen == NULL || c->pk == NULL || c->sig == NULL ||
        c->key == NULL || c->msg == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct envelope e;
        if ((rc = envelope_parse(c->e.buf + c->e.off[i], c->e.elen[i], &e)) != 0 ||
            (rc = record_decode(e.rec, e.rec_len, rec)) != 0)
            goto out;
        c->moff[i] = total;
        memcpy(c->msg + total, RECORD_DOMAIN, dl);
        memcpy(c->msg + total + dl, e.rec, e.rec_len);
        c->mlen[i] = dl + e.rec_len;
        total += c->mlen[i];
        memcpy(c->pk[i], rec->author, 32);
        memcpy(c->sig[i], e.sig, 64);
        be64enc(c->key[i], rec->created);
        memcpy(c->key[i] + 8, e.id, 32);
    }
    rc = 0;
out:
    free(rec);
    return rc;
}

static const struct corpus *sort_corpus;

static int
cmp_key(const void *a, const void *b)
{
    return memcmp(sort_corpus->key[*(const size_t *)a], sort_corpus->key[*(const size_t *)b], 40);
}

static double
cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the calling thread alone (the loop's, in the --threads mode). */
static double
thread_cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bytes this process has passed to write calls so far (Linux /proc/self/io), or 0. */
static uint64_t
io_written(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    char line[128];
    unsigned long long v = 0;

    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "wchar: %llu", &v) == 1)
            break;
    }
    if (f != NULL)
        fclose(f);
    return v;
}

static char *
mktemp_dir(void)
{
    char tmpl[] = "/tmp/pull-bench-XXXXXX";
    char *d = mkdtemp(tmpl);

    return d != NULL ? strdup(d) : NULL;
}

static void
rm_store_dir(const char *dir)
{
    char p[4200];

    snprintf(p, sizeof(p), "%s/data.mdb", dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", dir);
    unlink(p);
    rmdir(dir);
}

enum ingest_mode { MODE_FULL, MODE_NOSYNC, MODE_NOSYNC_ENVSYNC, MODE_DATA };

/* Time spent in the raw verify when it is interleaved with the ingest. */
struct rawt {
    double wall, cpu;
};

/* raw_verify_range verifies records order[from..from+m) and adds the time to t. */
static void
raw_verify_range(const struct corpus *c, const size_t *order, size_t from, size_t m, struct rawt *t)
{
    double t0 = bench_now(), c0 = cpu_now();
    size_t bad = 0;

    for (size_t j = from; j < from + m; j++) {
        size_t i = order[j];
        bad +=
            crypto_sign_verify_detached(c->sig[i], c->msg + c->moff[i], c->mlen[i], c->pk[i]) != 0;
    }
    t->wall += bench_now() - t0;
    t->cpu += cpu_now() - c0;
    if (bad != 0)
        fprintf(stderr, "pull-bench ingest: %zu raw verifications failed\n", bad);
}

/* Ingests the corpus in the given order with store_put_batch into a fresh store; returns
 * the wall-clock rate (negative on failure) and the CPU-time rate in *cpu_rate. With raw
 * not NULL, the raw verify of each batch's records runs right before or after the batch
 * (alternately), timed apart into *raw: both then see the same load of a shared machine. */
static double
ingest_rate(const struct corpus *c, const size_t *order, size_t batch, uint64_t now,
            enum ingest_mode mode, size_t *stored_out, double *cpu_rate, struct rawt *raw)
{
    struct store_opts o;
    struct store *s = NULL;
    struct store_item *items = calloc(batch, sizeof(*items));
    char *dir = mktemp_dir();
    size_t stored = 0, k = 0;
    double t0, c0, dt = 0, dc = 0;
    uint64_t w0 = io_written();
    bool ok = false;
    int rc;

    if (items == NULL || dir == NULL)
        goto out;
    store_opts_init(&o);
    o.sync = mode == MODE_FULL   ? STORE_SYNC_FULL
             : mode == MODE_DATA ? STORE_SYNC_DATA
                                 : STORE_SYNC_NONE;
    if ((rc = store_open(dir, &o, &s)) != 0) {
        fprintf(stderr, "pull-bench ingest: store_open: %s\n", pull_strerror(rc));
        goto out;
    }
    for (size_t base = 0; base < c->e.n; base += batch, k++) {
        size_t m = c->e.n - base < batch ? c->e.n - base : batch;
        if (raw != NULL && k % 2 == 0)
            raw_verify_range(c, order, base, m, raw);
        t0 = bench_now();
        c0 = cpu_now();
        for (size_t j = 0; j < m; j++) {
            size_t i = order[base + j];
            items[j].bytes = c->e.buf + c->e.off[i];
            items[j].len = c->e.elen[i];
        }
        if ((rc = store_put_batch(s, items, m, now)) != 0) {
            fprintf(stderr, "pull-bench ingest: store_put_batch: %s\n", pull_strerror(rc));
            goto out;
        }
        if (mode == MODE_NOSYNC_ENVSYNC && (rc = store_sync(s)) != 0)
            goto out;
        dt += bench_now() - t0;
        dc += cpu_now() - c0;
        for (size_t j = 0; j < m; j++)
            stored += items[j].result == 0;
        if (raw != NULL && k % 2 == 1)
            raw_verify_range(c, order, base, m, raw);
    }
    ok = true;
    if (raw != NULL && io_written() > w0)
        printf("ingest wrote %.1f MB for %.1f MB of envelopes\n", (double)(io_written() - w0) / 1e6,
               (double)c->e.len / 1e6);
out:
    store_close(s);
    if (dir != NULL)
        rm_store_dir(dir);
    free(dir);
    free(items);
    if (stored_out != NULL)
        *stored_out = stored;
    if (cpu_rate != NULL)
        *cpu_rate = ok && dc > 0 ? (double)c->e.n / dc : -1;
    return ok && dt > 0 ? (double)c->e.n / dt : -1;
}

/* envelope_open alone, and store_put_opened alone, over the same corpus (wall clock; the
 * CPU microseconds per record of each part are printed too). */
static void
split_rates(const struct corpus *c, const size_t *order, size_t batch, uint64_t now,
            enum store_sync sync, double *open_rate, double *opened_rate)
{
    struct envelope *envs = calloc(batch, sizeof(*envs));
    struct record *recs = malloc(batch * sizeof(*recs));
    struct store_opened *items = calloc(batch, sizeof(*items));
    struct store_opts o;
    struct store *s = NULL;
    char *dir = mktemp_dir();
    double t_open = 0, t_put = 0, c_open = 0, c_put = 0, t0, c0;

    *open_rate = *opened_rate = -1;
    store_opts_init(&o);
    o.sync = sync;
    if (envs == NULL || recs == NULL || items == NULL || dir == NULL ||
        store_open(dir, &o, &s) != 0)
        goto out;
    for (size_t base = 0; base < c->e.n; base += batch) {
        size_t m = c->e.n - base < batch ? c->e.n - base : batch;
        t0 = bench_now();
        c0 = cpu_now();
        for (size_t j = 0; j < m; j++) {
            size_t i = order[base + j];
            if (envelope_open(c->e.buf + c->e.off[i], c->e.elen[i], now, &envs[j], &recs[j]) != 0)
                goto out;
            items[j].env = &envs[j];
            items[j].rec = &recs[j];
        }
        t_open += bench_now() - t0;
        c_open += cpu_now() - c0;
        t0 = bench_now();
        c0 = cpu_now();
        if (store_put_opened(s, items, m, now) != 0)
            goto out;
        t_put += bench_now() - t0;
        c_put += cpu_now() - c0;
    }
    *open_rate = (double)c->e.n / t_open;
    *opened_rate = (double)c->e.n / t_put;
    printf("cpu per record: envelope_open %.1f us, store_put_opened (sync %s) %.1f us\n",
           c_open / (double)c->e.n * 1e6,
           sync == STORE_SYNC_FULL   ? "full"
           : sync == STORE_SYNC_DATA ? "data"
                                     : "none",
           c_put / (double)c->e.n * 1e6);
out:
    store_close(s);
    if (dir != NULL)
        rm_store_dir(dir);
    free(dir);
    free(envs);
    free(recs);
    free(items);
}

/* Plain LMDB: the same bytes under the same keys, same order and batching, durable
 * commits: what the store would cost with one table and no checks. */
static double
lmdb_raw_rate(const struct corpus *c, const size_t *order, size_t batch)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    char *dir = mktemp_dir();
    double t0, dt = -1;

    if (dir == NULL || mdb_env_create(&env) != 0 ||
        mdb_env_set_mapsize(env, (size_t)1 << 30) != 0 || mdb_env_set_maxdbs(env, 2) != 0 ||
        mdb_env_open(env, dir, MDB_NOTLS, 0600) != 0)
        goto out;
    if (mdb_txn_begin(env, NULL, 0, &txn) != 0 ||
        mdb_dbi_open(txn, "recs", MDB_CREATE, &dbi) != 0 || mdb_txn_commit(txn) != 0)
        goto out;
    t0 = bench_now();
    for (size_t base = 0; base < c->e.n; base += batch) {
        size_t m = c->e.n - base < batch ? c->e.n - base : batch;
        if (mdb_txn_begin(env, NULL, 0, &txn) != 0)
            goto out;
        for (size_t j = 0; j < m; j++) {
            size_t i = order[base + j];
            MDB_val k = {40, c->key[i]};
            MDB_val d = {c->e.elen[i], c->e.buf + c->e.off[i]};
            if (mdb_put(txn, dbi, &k, &d, 0) != 0) {
                mdb_txn_abort(txn);
                goto out;
            }
        }
        if (mdb_txn_commit(txn) != 0)
            goto out;
    }
    dt = bench_now() - t0;
out:
    if (env != NULL)
        mdb_env_close(env);
    if (dir != NULL)
        rm_store_dir(dir);
    free(dir);
    return dt > 0 ? (double)c->e.n / dt : -1;
}

/* ---- --threads: pulld's node ---- */

struct node_run {
    size_t done, stored;
};

static void
node_done(void *arg, int result, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct node_run *r = arg;

    (void)id;
    (void)env;
    (void)len;
    r->done++;
    r->stored += result == 0;
}

/* One pass of the corpus through a fresh node with `threads` verifiers; returns the rate
 * (negative on failure) and the CPU seconds in *cpu. */
static double
node_ingest(const struct corpus *c, const size_t *order, unsigned threads, double *cpu,
            double *loop_cpu)
{
    struct config cfg;
    struct ident me;
    struct node *nd = NULL;
    struct node_run r = {0, 0};
    uv_loop_t loop;
    char *dir = mktemp_dir(), num[16], p[256];
    double t0, c0, l0, rate = -1;
    size_t next = 0;
    int rc;

    if (dir == NULL || uv_loop_init(&loop) != 0)
        return -1;
    snprintf(num, sizeof(num), "%u", threads);
    setenv("PULL_VERIFY_THREADS", num, 1);
    config_defaults(&cfg);
    snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
    cfg.lan = false;
    if (ident_generate(&me) != 0 || (rc = node_new(&loop, &cfg, &me, &nd)) != 0) {
        fprintf(stderr, "pull-bench ingest: cannot start a node\n");
        goto out;
    }
    t0 = bench_now();
    c0 = cpu_now();
    l0 = thread_cpu_now();
    while (r.done < c->e.n) {
        while (next < c->e.n && !node_verify_busy(nd)) {
            size_t i = order[next++];
            rc = node_submit_async(nd, c->e.buf + c->e.off[i], c->e.elen[i], NULL,
                                   NODE_ORIGIN_IMPORT, NULL, node_done, &r);
            if (rc != 0) {
                fprintf(stderr, "pull-bench ingest: node_submit_async: %s\n", pull_strerror(rc));
                goto out;
            }
        }
        uv_run(&loop, UV_RUN_ONCE);
    }
    rate = (double)c->e.n / (bench_now() - t0);
    *cpu = cpu_now() - c0;
    *loop_cpu = thread_cpu_now() - l0;
    printf("node: %llu commits, %.0f records per commit\n",
           (unsigned long long)nd->counters.commits,
           (double)c->e.n / (double)(nd->counters.commits ? nd->counters.commits : 1));
    if (r.stored != c->e.n) {
        fprintf(stderr, "pull-bench ingest: the node stored %zu of %zu\n", r.stored, c->e.n);
        rate = -1;
    }
out:
    if (nd != NULL) {
        node_stop(nd);
        uv_run(&loop, UV_RUN_DEFAULT);
        node_free(nd);
    }
    uv_loop_close(&loop);
    ident_wipe(&me);
    if (strlen(dir) < sizeof(p) - sizeof(PATHS_STORE_NAME) - 1) {
        snprintf(p, sizeof(p), "%s/%s", dir, PATHS_STORE_NAME);
        rm_store_dir(p);
    }
    rmdir(dir);
    free(dir);
    return rate;
}

static int
node_mode(const struct corpus *c, const size_t *order, unsigned threads, int rounds)
{
    size_t all = order != NULL ? c->e.n : 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    double raw_t = 0, node_t = 0, cpu_t = 0, loop_t = 0, raw, rate;
    struct rawt rt;

    log_set_level(LOG_ERROR);
    for (int r = 0; r < rounds; r++) {
        double cpu = 0, loop_cpu = 0, x;
        rt.wall = rt.cpu = 0;
        raw_verify_range(c, order, 0, all, &rt);
        if ((x = node_ingest(c, order, threads, &cpu, &loop_cpu)) < 0)
            return -1;
        raw_verify_range(c, order, 0, all, &rt);
        printf("round %d: verify.raw %.0f rec/s, node (%u verifier threads) %.0f rec/s, %.1f us "
               "cpu per record\n",
               r + 1, 2.0 * (double)all / rt.wall, threads, x, cpu / (double)all * 1e6);
        raw_t += rt.wall / 2;
        node_t += (double)all / x;
        cpu_t += cpu;
        loop_t += loop_cpu;
    }
    raw = (double)all * rounds / raw_t;
    rate = (double)all * rounds / node_t;
    if (cores < 1)
        cores = 1;
    bench_report("ingest.threads", threads, "");
    bench_report("verify.raw", raw, "rec/s");
    bench_report("ingest.node_rate", rate, "rec/s");
    bench_report("ingest.ratio_to_verify", rate / raw, "x");
    bench_report("ingest.ratio_to_all_cores",
                 rate / (raw * (double)((long)threads < cores ? (long)threads : cores)), "x");
    bench_report("ingest.node_cpu_us_per_rec", cpu_t / ((double)all * rounds) * 1e6, "us");
    bench_report("ingest.loop_cpu_us_per_rec", loop_t / ((double)all * rounds) * 1e6, "us");
    bench_report("ingest.loop_busy", loop_t / node_t, "x");
    bench_report("ingest.cores_busy", cpu_t / node_t, "x");
    return 0;
}

int
bench_ingest(int argc, char **argv)
{
    struct corpus c;
    size_t n = 20000, batch = 4096, stored = 0, *by_time = NULL, *shuffled = NULL, *main_order;
    uint64_t now = (uint64_t)time(NULL);
    double t0, raw, raw_t = 0, raw_c = 0, ing_t = 0, ing_c = 0, x, y;
    int rc, ret = 1, rounds = 3;
    unsigned threads = 0;
    bool shuffle = false, profile = false, bad = false;
    enum ingest_mode mode = MODE_FULL;

    memset(&c, 0, sizeof(c));
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
            batch = strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--sync") == 0 && i + 1 < argc) {
            i++;
            if (strcmp(argv[i], "full") == 0)
                mode = MODE_FULL;
            else if (strcmp(argv[i], "data") == 0)
                mode = MODE_DATA;
            else if (strcmp(argv[i], "none") == 0)
                mode = MODE_NOSYNC;
            else
                bad = true;
        } else if (strcmp(argv[i], "--shuffled") == 0) {
            shuffle = true;
        } else if (strcmp(argv[i], "--profile") == 0) {
            profile = true;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = (unsigned)strtoul(argv[++i], NULL, 10);
            bad = threads < 1 || threads > NODE_VERIFY_THREADS_MAX;
        } else if (argv[i][0] != '-') {
            n = strtoul(argv[i], NULL, 10);
        } else {
            bad = true;
        }
    }
    if (bad) {
        fprintf(stderr, "usage: pull-bench ingest [N] [--batch B] [--rounds R] "
                        "[--sync full|data|none] [--shuffled] [--profile] [--threads T]\n");
        return 1;
    }
    if (n == 0 || n > 10000000 || batch == 0 || batch > 100000 || rounds < 1 || rounds > 100) {
        fprintf(stderr, "pull-bench ingest: N must be 1..10000000, B 1..100000, R 1..100\n");
        return 1;
    }
    t0 = bench_now();
    if ((rc = gen_records(n, now, 42, corpus_add, &c)) != 0 || (rc = corpus_prepare(&c)) != 0) {
        fprintf(stderr, "pull-bench ingest: generating: %s\n", pull_strerror(rc));
        goto out;
    }
    /* two orders: by time (as a sync delivers), and random (the generator's order) */
    by_time = malloc(n * sizeof(*by_time));
    shuffled = malloc(n * sizeof(*shuffled));
    if (by_time == NULL || shuffled == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        by_time[i] = shuffled[i] = i;
    sort_corpus = &c;
    qsort(by_time, n, sizeof(*by_time), cmp_key);
    main_order = shuffle ? shuffled : by_time;
    printf("generated and signed %zu records (%.1f MB) in %.2f s; batches of %zu, %s order, "
           "sync %s\n",
           c.e.n, (double)c.e.len / 1e6, bench_now() - t0, batch, shuffle ? "random" : "time",
           mode == MODE_FULL   ? "full"
           : mode == MODE_DATA ? "data"
                               : "none");

    if (threads > 0) {
        ret = node_mode(&c, main_order, threads, rounds) == 0 ? 0 : 1;
        goto out;
    }
    /* R rounds, each interleaving raw verify and ingest batch by batch (see ingest_rate);
     * the ratio is over the sums of all rounds. */
    for (int r = 0; r < rounds; r++) {
        struct rawt rt = {0, 0};
        double ig, igc;
        ig = ingest_rate(&c, main_order, batch, now, mode, &stored, &igc, &rt);
        if (ig < 0 || stored != n) {
            fprintf(stderr, "pull-bench ingest: ingest failed (%zu of %zu stored)\n", stored, n);
            goto out;
        }
        printf("round %d: verify.raw %.0f rec/s (cpu %.0f), ingest %.0f rec/s (cpu %.0f)\n", r + 1,
               (double)n / rt.wall, (double)n / rt.cpu, ig, igc);
        raw_t += rt.wall;
        raw_c += rt.cpu;
        ing_t += (double)n / ig;
        ing_c += (double)n / igc;
    }
    raw = (double)n * rounds / raw_t;
    bench_report("verify.raw", raw, "rec/s");
    bench_report("ingest.rate", (double)n * rounds / ing_t, "rec/s");
    bench_report("ingest.ratio_to_verify", raw_t / ing_t, "x");
    bench_report("ingest.cpu_ratio_to_verify", raw_c / ing_c, "x");

    x = ingest_rate(&c, shuffle ? by_time : shuffled, batch, now, mode, NULL, NULL, NULL);
    bench_report(shuffle ? "ingest.rate_time_ordered" : "ingest.rate_shuffled", x, "rec/s");
    bench_report(shuffle ? "ingest.ratio_time_ordered" : "ingest.ratio_shuffled", x / raw, "x");
    split_rates(&c, main_order, batch, now,
                mode == MODE_FULL   ? STORE_SYNC_FULL
                : mode == MODE_DATA ? STORE_SYNC_DATA
                                    : STORE_SYNC_NONE,
                &x, &y);
    bench_report("ingest.open_rate", x, "rec/s");
    bench_report("store.put_opened", y, "rec/s");
    for (int r = 0; profile && r < 5; r++)
        split_rates(&c, main_order, batch, now, STORE_SYNC_NONE, &x, &y);
    bench_report("lmdb.put_raw", lmdb_raw_rate(&c, main_order, batch), "rec/s");
    x = ingest_rate(&c, main_order, 1024, now, mode, NULL, NULL, NULL);
    bench_report("ingest.rate_batch1024", x, "rec/s");
    bench_report("ingest.ratio_batch1024", x / raw, "x");
    bench_report("ingest.rate_sync_full",
                 ingest_rate(&c, main_order, batch, now, MODE_FULL, NULL, NULL, NULL), "rec/s");
    bench_report("ingest.rate_sync_data",
                 ingest_rate(&c, main_order, batch, now, MODE_DATA, NULL, NULL, NULL), "rec/s");
    bench_report("ingest.rate_nosync",
                 ingest_rate(&c, main_order, batch, now, MODE_NOSYNC, NULL, NULL, NULL), "rec/s");
    bench_report("ingest.rate_nosync_envsync",
                 ingest_rate(&c, main_order, batch, now, MODE_NOSYNC_ENVSYNC, NULL, NULL, NULL),
                 "rec/s");
    ret = 0;
out:
    corpus_free(&c);
    free(by_time);
    free(shuffled);
    return ret;
}
