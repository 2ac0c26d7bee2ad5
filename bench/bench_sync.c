/*
 * pull-bench sync [N] [--seed S] [--poll-ms MS] [--search R] [-- PULLD_ARGS...]
 * A full sync of N records (default 100,000) between two real pulld processes on loopback,
 * next to the physical limit measured on the same run: the raw single-core Ed25519 verify
 * rate of the same N envelopes.
 *
 * N records are generated (bench_gen.h, ~N/50 authors) and written as a bundle; node A
 * (--no-lan --listen 127.0.0.1:0, its own temp data dir) imports it with `pull import`;
 * node B starts empty; then `pull connect ID@127.0.0.1:PORT` on B (A's id and address from
 * `pull --json id`) starts the clock, and B's `pull --json status` is polled ("records")
 * until it holds all N. Binaries: BUILD/daemon/pulld and BUILD/cli/pull next to
 * pull-bench's build dir, or $PULLD and $PULL. Arguments after "--" go to both pullds (e.g.
 * -- --recon-max-symbols 262144 --store-nosync), after the bench's own.
 *
 *   verify.raw              crypto_sign_verify_detached of the N envelopes, one core: the
 *                           mean of verify.raw_before (before the nodes start) and
 *                           verify.raw_after (after the sync), rec/s; the machine may be
 *                           shared, so both ends of the run count
 *   cores                   online CPUs; the all-cores limit is verify.raw x cores
 *   import.rate             `pull import` of the bundle into A, spawn to exit (rec/s)
 *   import.ratio_to_verify, import.ratio_to_all_cores   import.rate / each limit
 *   sync.seconds            from the connect to B holding N records
 *   sync.rate               N / sync.seconds
 *   sync.ratio_to_verify    sync.rate / verify.raw (the design: bounded by verification)
 *   sync.ratio_to_all_cores sync.rate / (verify.raw x cores)
 *   sync.wire_ratio         TCP bytes both ways between A and B (B's counters bytes_in +
 *                           bytes_out, handshake included, until they settle after the
 *                           sync) / the N envelopes' bytes (target <= 1.15)
 *   sync.wire_ratio_at_done the same, counted when B reached N records
 *   sync.overhead_per_rec   (wire bytes - envelope bytes) / N, in bytes
 *   sync.rss_a_mib, sync.rss_b_mib   VmRSS of the nodes after the sync, and
 *                           sync.peak_a_mib, sync.peak_b_mib their VmHWM; sync.rss_X_anon_mib
 *                           and sync.rss_X_file_mib split the RSS (file: LMDB's map);
 *                           sync.rss_X_settled_mib is VmRSS one second later
 *   sync.disk_a_per_rec, sync.disk_b_per_rec   bytes of each store on disk (allocated
 *                           blocks of data.mdb, the map's reserved tail included) per
 *                           record
 *   sync.search_p50_ms      `pull search guitar` on B after the sync, spawn to reaped
 *                           exit, median of R runs (--search R, default 11; 0: none)
 * The nodes' logs (warn level) and data dirs live in one temp dir, removed at the end, even
 * on failure (PULL_KEEP=1 keeps it). Any failure ends with a one-line error and exit 1.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/proc.h"

int bench_sync(int argc, char **argv);

#define MIB (1024.0 * 1024.0)

struct sync_opts {
    size_t n;
    uint64_t seed;
    int poll_ms;
    int search_runs;
    char *const *pulld_args; /* after "--": extra arguments of both pullds, or NULL */
};

static int
parse_opts(int argc, char **argv, struct sync_opts *o)
{
    o->n = 100000;
    o->seed = (uint64_t)time(NULL);
    o->poll_ms = 50;
    o->search_runs = 11;
    o->pulld_args = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            o->pulld_args = argv + i + 1;
            break;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            o->seed = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--poll-ms") == 0 && i + 1 < argc) {
            o->poll_ms = atoi(argv[++i]);
            if (o->poll_ms < 1 || o->poll_ms > 10000) {
                fprintf(stderr, "pull-bench sync: --poll-ms must be 1..10000\n");
                return -1;
            }
        } else if (strcmp(argv[i], "--search") == 0 && i + 1 < argc) {
            o->search_runs = atoi(argv[++i]);
            if (o->search_runs < 0 || o->search_runs > 1000) {
                fprintf(stderr, "pull-bench sync: --search must be 0..1000\n");
                return -1;
            }
        } else if (argv[i][0] != '-' && bench_parse_n(argv[i], &o->n) == 0) {
            continue;
        } else {
            fprintf(stderr, "usage: pull-bench sync [N] [--seed S] [--poll-ms MS] [--search R] "
                            "[-- PULLD_ARGS...]\n");
            return -1;
        }
    }
    return 0;
}

/* A's dialable loopback address from `pull --json id`: "ID@127.0.0.1:PORT". */
static int
dial_address(const struct bench_node *a, char *addr, size_t cap)
{
    const char *v;
    char *json = NULL;
    int rc = -1;

    if (bench_pull(a, 10000, &json, "id", NULL) != 0)
        return -1;
    if ((v = json_value(json, "addresses")) == NULL || json_array_len(v) == 0) {
        fprintf(stderr, "pull-bench sync: `pull --json id` on A lists no address: %s\n", json);
        goto out;
    }
    for (size_t i = 0; i < json_array_len(v); i++) {
        if (json_array_str(v, i, addr, cap) && strstr(addr, "@127.0.0.1:") != NULL) {
            rc = 0;
            goto out;
        }
    }
    if (json_array_str(v, 0, addr, cap))
        rc = 0;
    else
        fprintf(stderr, "pull-bench sync: unreadable address in `pull --json id`: %s\n", json);
out:
    free(json);
    return rc;
}

static bool
have_counters(const struct bench_status *s)
{
    return s->bytes_in != UINT64_MAX && s->bytes_out != UINT64_MAX;
}

static void
print_counters(const char *name, const struct bench_status *s)
{
    char *c = json_sub(s->json, "counters");

    printf("node %s counters: %s\n", name, c != NULL ? c : "(none)");
    free(c);
}

/* Bytes the store of the node in dir takes on disk (allocated blocks), or -1. */
static double
store_disk_bytes(const char *dir)
{
    char p[PATH_MAX + 64];
    struct stat st;

    snprintf(p, sizeof(p), "%s/store/data.mdb", dir);
    if (stat(p, &st) != 0)
        return -1;
    return (double)st.st_blocks * 512.0;
}

/* `pull search guitar` on n, runs times: the median milliseconds from spawn to reaped exit,
 * or -1. */
static double
search_p50(const struct bench_node *n, int runs)
{
    char *argv[] = {(char *)n->bins->pull, "--data-dir", (char *)n->dir, "search", "guitar",
                    NULL};
    double *ms = calloc((size_t)runs, sizeof(double)), p50 = -1;
    int k = 0;

    while (ms != NULL && k < runs) {
        double t0 = bench_now();
        pid_t pid;
        int st;
        if (proc_spawn(argv, -1, -1, &pid) != 0 || proc_wait(pid, 10000, &st) != 0 ||
            !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            break;
        ms[k++] = (bench_now() - t0) * 1e3;
    }
    if (ms != NULL && k == runs)
        p50 = bench_quantile(ms, (size_t)runs, 0.5);
    free(ms);
    return p50;
}

/* Polls B until it holds n records; sets *t_done. The clock started at t0. */
static int
wait_synced(struct bench_node *a, struct bench_node *b, size_t n, int poll_ms, double t0,
            double *t_done)
{
    const double stall_s = 60;
    uint64_t last = 0;
    double last_change = bench_now(), next_report = t0 + 5;

    for (;;) {
        struct bench_status st;
        double now;
        if (bench_node_status(b, &st) != 0) {
            fprintf(stderr, "pull-bench sync: %s\n", proc_error());
            return -1;
        }
        now = bench_now();
        if (st.records >= n) {
            free(st.json);
            *t_done = now;
            return 0;
        }
        if (st.records != last) {
            last = st.records;
            last_change = now;
        }
        if (now >= next_report) {
            printf("  %.0f s: B holds %llu of %zu records\n", now - t0,
                   (unsigned long long)st.records, n);
            fflush(stdout);
            next_report += 5;
        }
        if (now - last_change > stall_s) {
            uint64_t ok = 0, failed = 0;
            json_uint(st.json, "recon_sessions", &ok);
            json_uint(st.json, "recon_failed", &failed);
            print_counters("B", &st);
            fprintf(stderr,
                    "pull-bench sync: B stalled at %llu of %zu records for %.0f s "
                    "(B's recon sessions: %llu ok, %llu failed; PULL_KEEP=1 keeps the logs)\n",
                    (unsigned long long)st.records, n, stall_s, (unsigned long long)ok,
                    (unsigned long long)failed);
            free(st.json);
            return -1;
        }
        free(st.json);
        if (!bench_node_alive(a) || !bench_node_alive(b)) {
            fprintf(stderr, "pull-bench sync: pulld %s exited during the sync\n",
                    bench_node_alive(a) ? "B" : "A");
            return -1;
        }
        if (proc_interrupted()) {
            fprintf(stderr, "pull-bench sync: interrupted\n");
            return -1;
        }
        usleep((useconds_t)poll_ms * 1000);
    }
}

/* After the sync: waits until B's byte counters stop moving for a second (at most 10 s),
 * and leaves the last status in *st. */
static int
wait_settled(struct bench_node *b, struct bench_status *st)
{
    double t0 = bench_now(), stable_since = t0;
    uint64_t prev = UINT64_MAX;

    for (;;) {
        uint64_t sum;
        if (bench_node_status(b, st) != 0)
            return -1;
        sum = st->bytes_in + st->bytes_out;
        if (sum != prev) {
            prev = sum;
            stable_since = bench_now();
        }
        if (bench_now() - stable_since >= 1.0 || bench_now() - t0 >= 10 || !have_counters(st))
            return 0;
        free(st->json);
        st->json = NULL;
        usleep(200000);
    }
}

int
bench_sync(int argc, char **argv)
{
    struct sync_opts o;
    struct bench_bins bins;
    struct bench_node a = {0}, b = {0};
    struct bench_corpus corpus = {0};
    struct bench_status a0 = {0}, b0 = {0}, bdone = {0}, bset = {0}, aset = {0};
    struct proc_mem ma, mb;
    char root[PATH_MAX] = "", path[PATH_MAX + 32], dir_a[PATH_MAX + 32], dir_b[PATH_MAX + 32],
         log_a[PATH_MAX + 32], log_b[PATH_MAX + 32], addr[512];
    char *json = NULL;
    double verify_rate, verify_before, verify_after, t0, t_done, dt, rate, import_rate, x;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t imported = 0, rejected = 0;
    int rc = 1, st;

    if (parse_opts(argc, argv, &o) != 0)
        return 1;
    proc_catch_signals();
    if (bench_find_bins(&bins) != 0 || bench_tmpdir("sync", root, sizeof(root)) != 0)
        goto fail;
    snprintf(path, sizeof(path), "%s/records.pull", root);
    snprintf(dir_a, sizeof(dir_a), "%s/a", root);
    snprintf(dir_b, sizeof(dir_b), "%s/b", root);
    snprintf(log_a, sizeof(log_a), "%s/a.log", root);
    snprintf(log_b, sizeof(log_b), "%s/b.log", root);

    t0 = bench_now();
    if (bench_corpus_gen(&corpus, o.n, o.seed, path) != 0)
        goto fail;
    printf("generated %zu signed records (%.1f MB of envelopes, %.0f B each on average) in "
           "%.1f s\n",
           corpus.n, (double)corpus.len / 1e6, (double)corpus.len / (double)corpus.n,
           bench_now() - t0);
    if ((verify_before = bench_verify_rate(&corpus)) < 0)
        goto fail;
    bench_report("verify.raw_before", verify_before, "rec/s");
    if (cores < 1)
        cores = 1;

    if (bench_node_start(&a, &bins, "A", dir_a, log_a, o.pulld_args) != 0)
        goto fail;
    t0 = bench_now();
    if (bench_pull(&a, 120000 + (int)(o.n / 10), &json, "import", path, NULL) != 0)
        goto fail;
    dt = bench_now() - t0;
    if (!json_uint(json, "imported", &imported) || !json_uint(json, "rejected", &rejected) ||
        imported != o.n) {
        fprintf(stderr, "pull-bench sync: A imported %llu of %zu records (%llu rejected): %s\n",
                (unsigned long long)imported, o.n, (unsigned long long)rejected, json);
        goto out;
    }
    printf("A imported %zu records in %.2f s\n", o.n, dt);
    import_rate = (double)o.n / dt;
    if (bench_node_status(&a, &a0) != 0)
        goto fail;
    if (a0.records != o.n) {
        fprintf(stderr, "pull-bench sync: A holds %llu records after importing %zu\n",
                (unsigned long long)a0.records, o.n);
        goto out;
    }

    if (bench_node_start(&b, &bins, "B", dir_b, log_b, o.pulld_args) != 0 ||
        dial_address(&a, addr, sizeof(addr)) != 0 || bench_node_status(&b, &b0) != 0)
        goto fail;
    if (b0.records != 0) {
        fprintf(stderr, "pull-bench sync: B is not empty at start (%llu records)\n",
                (unsigned long long)b0.records);
        goto out;
    }
    printf("B connects to %s\n", addr);
    fflush(stdout);
    free(json);
    json = NULL;
    t0 = bench_now();
    if (bench_pull(&b, 30000, &json, "connect", addr, NULL) != 0)
        goto fail;
    if (wait_synced(&a, &b, o.n, o.poll_ms, t0, &t_done) != 0)
        goto out;
    if (bench_node_status(&b, &bdone) != 0 || wait_settled(&b, &bset) != 0 ||
        bench_node_status(&a, &aset) != 0)
        goto fail;

    dt = t_done - t0;
    rate = (double)o.n / dt;
    printf("B holds all %zu records %.2f s after the connect\n", o.n, dt);
    if ((verify_after = bench_verify_rate(&corpus)) < 0)
        goto fail;
    verify_rate = (verify_before + verify_after) / 2;
    bench_report("verify.raw_after", verify_after, "rec/s");
    bench_report("verify.raw", verify_rate, "rec/s");
    bench_report("cores", (double)cores, "");
    bench_report("import.rate", import_rate, "rec/s");
    bench_report("import.ratio_to_verify", import_rate / verify_rate, "x");
    bench_report("import.ratio_to_all_cores", import_rate / (verify_rate * (double)cores), "x");
    bench_report("sync.seconds", dt, "s");
    bench_report("sync.rate", rate, "rec/s");
    bench_report("sync.ratio_to_verify", rate / verify_rate, "x");
    bench_report("sync.ratio_to_all_cores", rate / (verify_rate * (double)cores), "x");
    if (have_counters(&b0) && have_counters(&bdone) && have_counters(&bset)) {
        uint64_t in = bset.bytes_in - b0.bytes_in, out = bset.bytes_out - b0.bytes_out;
        uint64_t wire = in + out;
        uint64_t wire_done = bdone.bytes_in - b0.bytes_in + bdone.bytes_out - b0.bytes_out;
        printf("wire: %.2f MB A->B, %.2f MB B->A (%.2f MB when B reached N), for %.2f MB of "
               "envelopes\n",
               (double)in / 1e6, (double)out / 1e6, (double)wire_done / 1e6,
               (double)corpus.len / 1e6);
        if (have_counters(&aset) && have_counters(&a0))
            printf("A's view: %.2f MB out, %.2f MB in\n",
                   (double)(aset.bytes_out - a0.bytes_out) / 1e6,
                   (double)(aset.bytes_in - a0.bytes_in) / 1e6);
        bench_report("sync.wire_ratio", (double)wire / (double)corpus.len, "x");
        bench_report("sync.wire_ratio_at_done", (double)wire_done / (double)corpus.len, "x");
        bench_report("sync.overhead_per_rec", ((double)wire - (double)corpus.len) / (double)o.n,
                     "B");
        bench_report("sync.b_to_a_per_rec", (double)out / (double)o.n, "B");
    } else {
        fprintf(stderr, "pull-bench sync: `pull --json status` has no counters.bytes_in / "
                        "bytes_out: sync.wire_ratio not measured\n");
    }
    print_counters("A", &aset);
    print_counters("B", &bset);
    if (proc_mem_read(a.pid, &ma) == 0 && proc_mem_read(b.pid, &mb) == 0) {
        bench_report("sync.rss_a_mib", (double)ma.rss / MIB, "MiB");
        bench_report("sync.rss_b_mib", (double)mb.rss / MIB, "MiB");
        bench_report("sync.rss_a_anon_mib", (double)ma.anon / MIB, "MiB");
        bench_report("sync.rss_a_file_mib", (double)ma.file / MIB, "MiB");
        bench_report("sync.rss_b_anon_mib", (double)mb.anon / MIB, "MiB");
        bench_report("sync.rss_b_file_mib", (double)mb.file / MIB, "MiB");
        bench_report("sync.peak_a_mib", (double)ma.hwm / MIB, "MiB");
        bench_report("sync.peak_b_mib", (double)mb.hwm / MIB, "MiB");
    }
    /* a second later: pulld drops the map pages a run of reads or commits left mapped
     * TRIM_QUIET_MS (200 ms) after the run */
    usleep(1000000);
    if (proc_mem_read(a.pid, &ma) == 0 && proc_mem_read(b.pid, &mb) == 0) {
        bench_report("sync.rss_a_settled_mib", (double)ma.rss / MIB, "MiB");
        bench_report("sync.rss_b_settled_mib", (double)mb.rss / MIB, "MiB");
    }
    if ((x = store_disk_bytes(dir_a)) >= 0)
        bench_report("sync.disk_a_per_rec", x / (double)o.n, "B");
    if ((x = store_disk_bytes(dir_b)) >= 0)
        bench_report("sync.disk_b_per_rec", x / (double)o.n, "B");
    if (o.search_runs > 0) {
        if ((x = search_p50(&b, o.search_runs)) < 0)
            goto fail;
        bench_report("sync.search_p50_ms", x, "ms");
        if (proc_mem_read(b.pid, &mb) == 0)
            bench_report("sync.rss_b_after_search_mib", (double)mb.rss / MIB, "MiB");
    }
    if ((st = bench_node_stop(&a)) != 0)
        printf("note: pulld A exited %d on SIGTERM\n", st);
    if ((st = bench_node_stop(&b)) != 0)
        printf("note: pulld B exited %d on SIGTERM\n", st);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "pull-bench sync: %s\n", proc_error());
out:
    bench_node_stop(&a);
    bench_node_stop(&b);
    free(json);
    free(a0.json);
    free(b0.json);
    free(bdone.json);
    free(bset.json);
    free(aset.json);
    bench_corpus_free(&corpus);
    if (root[0] != '\0')
        bench_rmtree(root);
    return rc;
}
