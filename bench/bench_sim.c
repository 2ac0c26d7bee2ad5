/*
 * pull-bench sim: spread of records over 1,000 simulated nodes (tests/sim/sim.h) with
 * 50 ms links, deterministic for a given --seed.
 *
 * Prints, next to each figure, the limit it is compared with:
 *   spread.p50_ms / spread.p100_ms        arrival times after publication (DESIGN.md:
 *                                         p100 <= 1000 ms), and spread.overlay_p100_ms, the
 *                                         least time any protocol needs over the same
 *                                         overlay (active-link hops from the publisher to
 *                                         the farthest node, times the latency);
 *   spread.rmr                            relative message redundancy once the tree has
 *                                         formed (< 0.5 required; 0 = a perfect tree);
 *   spread.bytes_per_node                 dissemination bytes (RECORDS, IHAVE, GRAFT,
 *                                         PRUNE, WANT) sent per node per record, next to
 *                                         spread.record_bytes, the record's own size;
 *   spread.survivors_reached              after killing half the nodes at once, fraction of
 *                                         survivors reached by the next record (= 1);
 *   partition.*                           two halves write separately, then heal: time until
 *                                         every node holds every record;
 *   catchup.bulk_* / catchup.riblt_*      an empty node joins 30 nodes holding 3,000 records
 *                                         (RECON_BULK), a node holding 2,500 of 5,000 comes
 *                                         back (reconciliation): time, and bytes on its links
 *                                         per byte of record received (DESIGN.md: <= 1.15);
 *   storm.restart_* / storm.partition_*   a third of the nodes restart at the same instant, a
 *                                         partition into groups of ten heals at once:
 *                                         convergence time, messages, engine errors, peaks.
 *
 * The simulator is compiled into pull-bench from tests/sim/ (included below: the bench
 * target only builds bench/ sources).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "lib/err.h"
#include "proto/msg.h"
#include "tests/sim/sim.h"

#include "tests/sim/sim.c"
#include "tests/sim/sim_scenario.c"

int bench_sim(int argc, char **argv);

static void
bench_sim_usage(void)
{
    fprintf(stderr, "usage: pull-bench sim [--seed N] [--nodes N] [--latency MS] [--jitter MS]\n"
                    "                      [--records N] [--no-partition] [--no-catchup]\n");
}

/* Mean over `count` fresh publications of the physical limit ecc(origin) * latency, and
 * the spread summary (publications from the same random origins as sim_measure). */
static void
measure_with_limit(struct sim *s, uint32_t count, uint32_t wait_ms, uint32_t latency,
                   struct sim_summary *m, double *limit_max)
{
    struct sim_summary one;
    double p50 = 0, rmr = 0, bytes = 0, msgs = 0;

    *m = (struct sim_summary){.min_fraction = 1.0};
    *limit_max = 0;
    for (uint32_t k = 0; k < count; k++) {
        uint32_t origin = sim_random_alive(s);
        double limit = (double)sim_eccentricity(s, origin) * latency;
        if (limit > *limit_max)
            *limit_max = limit;
        sim_measure(s, 1, wait_ms, &one);
        m->records += one.records;
        m->complete += one.complete;
        if (one.min_fraction < m->min_fraction)
            m->min_fraction = one.min_fraction;
        if (one.p100_ms > m->p100_ms)
            m->p100_ms = one.p100_ms;
        p50 += one.p50_ms;
        rmr += one.rmr;
        bytes += one.bytes_per_node;
        msgs += one.msgs_per_node;
    }
    if (m->records > 0) {
        m->p50_ms = p50 / m->records;
        m->rmr = rmr / m->records;
        m->bytes_per_node = bytes / m->records;
        m->msgs_per_node = msgs / m->records;
    }
}

/* Catch-up of one node, and reconnect storms (tests/sim/test_catchup.c asserts them). */
static int
bench_catchup(const struct sim_config *base)
{
    static const struct {
        const char *name;
        uint32_t records, had;
    } joins[] = {{"bulk", 3000, 0}, {"riblt", 5000, 2500}};
    static const struct {
        const char *name;
        double frac;
        uint32_t groups;
    } storms[] = {{"restart", 1.0 / 3.0, 1}, {"partition", 0, 30}};
    char name[64];
    int rc;

    for (size_t k = 0; k < sizeof(joins) / sizeof(joins[0]); k++) {
        struct sim_config c = *base;
        struct sim_catchup_result r;
        c.nodes = 31;
        if ((rc = sim_catchup(&c, joins[k].records, joins[k].had, 60000, &r)) != 0)
            return rc;
        printf("catchup %s: %u records (had %u), %u received in %.1f s, %llu bytes on its "
               "links, %llu RECON_BULK, %llu RECON_REQ\n",
               joins[k].name, r.records, r.had, r.received,
               r.complete_ms == UINT64_MAX ? -1.0 : r.complete_ms / 1000.0,
               (unsigned long long)r.wire_bytes, (unsigned long long)r.bulk_msgs,
               (unsigned long long)r.recon_reqs);
        snprintf(name, sizeof(name), "catchup.%s_ms", joins[k].name);
        bench_report(name, r.complete_ms == UINT64_MAX ? -1 : (double)r.complete_ms, "ms");
        snprintf(name, sizeof(name), "catchup.%s_records", joins[k].name);
        bench_report(name, r.received, "records");
        snprintf(name, sizeof(name), "catchup.%s_wire_ratio", joins[k].name);
        bench_report(name, r.ratio, "x");
    }
    for (size_t k = 0; k < sizeof(storms) / sizeof(storms[0]); k++) {
        struct sim_config c = *base;
        struct sim_storm_result r;
        if (c.nodes > 300)
            c.nodes = 300;
        if ((rc = sim_storm(&c, storms[k].frac, storms[k].groups * c.nodes / 300, 300000, &r)) != 0)
            return rc;
        printf("storm %s: %u of %u nodes, converged %s, %llu connections, %llu failed dials, "
               "%llu deferred sessions, peak %llu actions, %llu bytes unflushed\n",
               storms[k].name, r.restarted, r.nodes,
               r.complete == r.nodes && r.component == r.nodes ? "yes" : "no",
               (unsigned long long)r.connections, (unsigned long long)r.dials_failed,
               (unsigned long long)r.st.recon_deferred, (unsigned long long)r.peaks.actions,
               (unsigned long long)r.peaks.conn_inflight);
        snprintf(name, sizeof(name), "storm.%s_nodes", storms[k].name);
        bench_report(name, r.restarted, "nodes");
        snprintf(name, sizeof(name), "storm.%s_converge_ms", storms[k].name);
        bench_report(name, r.converge_ms == UINT64_MAX ? -1 : (double)r.converge_ms, "ms");
        snprintf(name, sizeof(name), "storm.%s_msgs_per_node", storms[k].name);
        bench_report(name, (double)r.msgs / r.nodes, "msgs");
        snprintf(name, sizeof(name), "storm.%s_errors", storms[k].name);
        bench_report(name, (double)(r.st.frames_bad + r.st.peers_dropped + r.st.recon_failed), "x");
        snprintf(name, sizeof(name), "storm.%s_peak_unflushed", storms[k].name);
        bench_report(name, (double)r.peaks.conn_inflight, "B");
    }
    return 0;
}

int
bench_sim(int argc, char **argv)
{
    struct sim_config c;
    struct sim_summary warm, m, now, later;
    struct sim_partition_result pr;
    struct sim_counters cnt;
    struct sim *s = NULL;
    uint32_t records = 10, killed, minv, maxv, comp;
    uint64_t memb_bytes = 0, memb_msgs = 0;
    double limit, limit_later, meanv, t0 = bench_now();
    bool partition = true, catchup = true;
    int rc;

    sim_config_default(&c);
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--no-partition") == 0) {
            partition = false;
            continue;
        }
        if (strcmp(argv[i], "--no-catchup") == 0) {
            catchup = false;
            continue;
        }
        if (v == NULL) {
            bench_sim_usage();
            return 1;
        }
        if (strcmp(argv[i], "--seed") == 0)
            c.seed = strtoull(v, NULL, 10);
        else if (strcmp(argv[i], "--nodes") == 0)
            c.nodes = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(argv[i], "--latency") == 0)
            c.latency_ms = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(argv[i], "--jitter") == 0)
            c.jitter_ms = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(argv[i], "--records") == 0)
            records = (uint32_t)strtoul(v, NULL, 10);
        else {
            bench_sim_usage();
            return 1;
        }
        i++;
    }
    if (c.nodes < 4 || records == 0) {
        bench_sim_usage();
        return 1;
    }
    printf("sim: %u nodes, %u ms links (+%u ms jitter), seed %llu, records of %u bytes\n", c.nodes,
           c.latency_ms, c.jitter_ms, (unsigned long long)c.seed, c.envelope_bytes);

    /* Build the overlay: nodes join one every 10 ms, then 30 minutes of membership. */
    if ((rc = sim_build(&c, 10, 1800000, &s)) != 0) {
        fprintf(stderr, "pull-bench sim: %s\n", pull_strerror(rc));
        return 1;
    }
    sim_overlay(s, &minv, &meanv, &maxv, &comp);
    printf("overlay: active view min %u mean %.2f max %u, one component: %s\n", minv, meanv, maxv,
           comp == c.nodes ? "yes" : "no");
    /* Background membership cost over one idle minute. */
    sim_counters_reset(s);
    sim_run_for(s, 60000);
    sim_counters(s, &cnt);
    for (uint32_t t = MSG_JOIN; t <= MSG_SHUFFLE_REPLY; t++) {
        memb_bytes += cnt.bytes[t];
        memb_msgs += cnt.msgs[t];
    }

    /* Warm-up: the first records prune the eager graph down to a tree. */
    sim_measure(s, 5, 3000, &warm);
    sim_print_summary("warm-up (tree forming)", &warm);
    measure_with_limit(s, records, 3000, c.latency_ms, &m, &limit);
    sim_print_summary("tree formed", &m);
    bench_report("spread.nodes", c.nodes, "nodes");
    bench_report("spread.reached", m.min_fraction, "x");
    bench_report("spread.p50_ms", m.p50_ms, "ms");
    bench_report("spread.p100_ms", m.p100_ms, "ms");
    bench_report("spread.overlay_p100_ms", limit, "ms");
    bench_report("spread.rmr", m.rmr, "x");
    bench_report("spread.warmup_rmr", warm.rmr, "x");
    bench_report("spread.bytes_per_node", m.bytes_per_node, "B");
    bench_report("spread.record_bytes", c.envelope_bytes, "B");
    bench_report("spread.msgs_per_node", m.msgs_per_node, "msgs");
    bench_report("membership.bytes_per_node_s", (double)memb_bytes / c.nodes / 60.0, "B/s");
    bench_report("membership.msgs_per_node_s", (double)memb_msgs / c.nodes / 60.0, "msgs/s");

    /* Kill half the nodes at once and publish right away, before anyone noticed. */
    killed = sim_kill_fraction(s, 0.5);
    sim_measure(s, 1, 30000, &now);
    sim_print_summary("right after killing half", &now);
    bench_report("spread.killed", killed, "nodes");
    bench_report("spread.survivors_reached", now.min_fraction, "x");
    bench_report("spread.kill_p100_ms", now.p100_ms, "ms");
    /* After membership repair. */
    sim_run_for(s, 30000);
    measure_with_limit(s, 5, 3000, c.latency_ms, &later, &limit_later);
    sim_print_summary("after repair", &later);
    bench_report("spread.repaired_reached", later.min_fraction, "x");
    bench_report("spread.repaired_p100_ms", later.p100_ms, "ms");
    bench_report("spread.repaired_overlay_p100_ms", limit_later, "ms");
    bench_report("spread.repaired_rmr", later.rmr, "x");
    sim_free(s);

    if (partition) {
        /* Two halves write separately for 110 s, then heal; proto/recon reconciles. */
        if ((rc = sim_partition_heal(&c, NULL, 300000, &pr)) != 0) {
            fprintf(stderr, "pull-bench sim: %s\n", pull_strerror(rc));
            return 1;
        }
        printf("partition: split component %u, sides isolated %s, healed component %u\n",
               pr.component_split, pr.sides_isolated ? "yes" : "no", pr.component_healed);
        bench_report("partition.converged", (double)pr.complete / pr.nodes, "x");
        bench_report("partition.heal_ms", pr.heal_ms == UINT64_MAX ? -1 : (double)pr.heal_ms, "ms");
    }
    if (catchup && (rc = bench_catchup(&c)) != 0) {
        fprintf(stderr, "pull-bench sim: %s\n", pull_strerror(rc));
        return 1;
    }
    bench_report("sim.wall_s", bench_now() - t0, "s");
    return 0;
}
