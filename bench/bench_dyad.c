/*
 * pull-bench dyad: 100 dyads between random pairs of simulated nodes under churn, every
 * message carried by the nodes' proto/syncer engines (tests/sim/sim_dyad.h), then the cost
 * of the dyad state machine itself next to the raw Ed25519 verification rate it is bounded
 * by.
 *
 *   pull-bench dyad [--nodes N] [--dyads D] [--seed S] [--nat PCT] [--verbose]
 *
 * Prints `BENCH dyad.completed_ratio 1 x` (fraction of dyads completed on both sides),
 * the mean and max simulated time from proposal to completion, how many items reached
 * their recipient straight from their sender and how many through a third node, the mail
 * traffic, and the rates. Exits 1 if any dyad did not complete or any message or mail item
 * was refused for a reason other than a harmless duplicate.
 *
 * The simulator is compiled into pull-bench from tests/sim/ (bench_sim.c includes sim.c,
 * this file the dyad scenario).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "lib/ident.h"
#include "proto/dyad.h"
#include "tests/sim/sim_dyad.h"

#include "tests/sim/sim_dyad.c"

int bench_dyad(int argc, char **argv);

/* One full dyad (5 messages, each made by one side and applied by both views) per loop:
 * messages applied per second, and raw verifications per second of similar bytes. */
static int
bench_dyad_rates(double *apply_rate, double *verify_rate)
{
    struct ident a, b;
    struct dyad_timeouts t;
    struct pull_wb w;
    uint8_t seed[32], rec[32], sig[64], msg[300];
    const uint64_t now = 1800000000ull;
    uint64_t applied = 0, verified = 0;
    double t0, el;
    int rc = 0;

    memset(seed, 1, 32);
    if (ident_from_seed(&a, seed) != 0)
        return -1;
    memset(seed, 2, 32);
    if (ident_from_seed(&b, seed) != 0)
        return -1;
    memset(rec, 3, 32);
    dyad_timeouts_default(&t);
    wb_init(&w, 0);
    t0 = bench_now();
    for (uint64_t i = 0; (el = bench_now() - t0) < 1.0 || i < 10; i++) {
        struct dyad *da = NULL, *db = NULL;
        static const struct {
            int by;
            enum dyad_kind k;
        } steps[] = {{1, DYAD_ACCEPT}, {0, DYAD_DONE}, {0, DYAD_ACK}, {1, DYAD_ACK}};
        wb_reset(&w);
        if ((rc = dyad_propose(NULL, &a, rec, b.pk, NULL, 0, now + i, &t, &da, &w)) != 0 ||
            (rc = dyad_from_propose(NULL, w.p, w.len, now + i, &t, &db)) != 0)
            goto next;
        applied += 2;
        for (size_t s = 0; s < 4 && rc == 0; s++) {
            struct dyad *mine = steps[s].by ? db : da, *theirs = steps[s].by ? da : db;
            wb_reset(&w);
            if ((rc = dyad_act(mine, steps[s].by ? &b : &a, steps[s].k, NULL, 0, true, now + i,
                               &w)) == 0 &&
                (rc = dyad_apply(theirs, w.p, w.len, now + i)) == 0)
                applied += 2;
        }
    next:
        dyad_free(da);
        dyad_free(db);
        if (rc != 0)
            break;
    }
    *apply_rate = (double)applied / el;
    memset(msg, 7, sizeof(msg));
    if (ident_sign(&a, DYAD_DOMAIN, msg, sizeof(msg), sig) != 0)
        rc = -1;
    t0 = bench_now();
    while ((el = bench_now() - t0) < 1.0) {
        for (int k = 0; k < 100; k++) {
            if (ident_verify(a.pk, DYAD_DOMAIN, msg, sizeof(msg), sig) != 0)
                rc = -1;
            verified++;
        }
    }
    *verify_rate = (double)verified / el;
    ident_wipe(&a);
    ident_wipe(&b);
    wb_release(&w);
    return rc;
}

int
bench_dyad(int argc, char **argv)
{
    struct sim_dyad_config cfg;
    struct sim_dyad_result r;
    double t0, wall, apply_rate = 0, verify_rate = 0;
    int rc;

    sim_dyad_config_default(&cfg);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc)
            cfg.nodes = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--dyads") == 0 && i + 1 < argc)
            cfg.dyads = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            cfg.seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--nat") == 0 && i + 1 < argc)
            cfg.nat_pct = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--verbose") == 0)
            cfg.verbose = true;
        else {
            fprintf(stderr, "usage: pull-bench dyad [--nodes N] [--dyads D] [--seed S] "
                            "[--nat PCT] [--verbose]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 1;
        }
    }
    printf("dyad: %u dyads between %u nodes, online %us / offline %us on average, %u%% "
           "behind NAT, seed %llu\n",
           cfg.dyads, cfg.nodes, cfg.online_mean_s, cfg.offline_mean_s, cfg.nat_pct,
           (unsigned long long)cfg.seed);
    t0 = bench_now();
    if ((rc = sim_dyad_run(&cfg, &r)) != 0) {
        fprintf(stderr, "pull-bench dyad: simulation failed: %d\n", rc);
        return 1;
    }
    wall = bench_now() - t0;
    printf("dyad: %u completed, %u closed otherwise, %u stuck after %.1f simulated days; "
           "%llu messages posted, %llu items delivered (%llu by their sender, %llu through a "
           "third node), %llu held early, %llu duplicates, %llu restarts, %llu errors, %llu "
           "expired, %llu attestations\n",
           r.completed, r.closed_other, r.stuck, (double)r.sim_s / 86400.0,
           (unsigned long long)r.msgs, (unsigned long long)r.delivered,
           (unsigned long long)r.direct, (unsigned long long)r.relayed, (unsigned long long)r.held,
           (unsigned long long)r.duplicates, (unsigned long long)r.restarts,
           (unsigned long long)r.errors, (unsigned long long)r.expired,
           (unsigned long long)r.attestations);
    printf("dyad: engines: %llu items received, %llu carried for others, %llu refused, %llu "
           "bad, %llu swept, %llu peers dropped; %llu mail messages (%llu bytes) of %llu on "
           "the wire (%llu bytes), %llu connections\n",
           (unsigned long long)r.mail_in, (unsigned long long)r.mail_carried,
           (unsigned long long)r.mail_refused, (unsigned long long)r.mail_bad,
           (unsigned long long)r.mail_swept, (unsigned long long)r.peers_dropped,
           (unsigned long long)r.mail_msgs, (unsigned long long)r.mail_bytes,
           (unsigned long long)r.wire_msgs, (unsigned long long)r.wire_bytes,
           (unsigned long long)r.connections);
    bench_report("dyad.completed_ratio", r.dyads ? (double)r.completed / r.dyads : 0, "x");
    bench_report("dyad.mean_complete_s", r.mean_complete_s, "s");
    bench_report("dyad.mean_complete_days", r.mean_complete_s / 86400.0, "days");
    bench_report("dyad.max_complete_days", r.max_complete_s / 86400.0, "days");
    bench_report("dyad.msgs_posted", (double)r.msgs, "msgs");
    bench_report("dyad.msgs_direct", (double)r.direct, "msgs");
    bench_report("dyad.msgs_mailed", (double)r.relayed, "msgs");
    bench_report("dyad.mail_relayed", (double)r.mail_carried, "items");
    bench_report("dyad.mail_refused", (double)r.mail_refused, "items");
    bench_report("dyad.mail_bytes", (double)r.mail_bytes, "B");
    bench_report("dyad.connections", (double)r.connections, "conns");
    bench_report("dyad.refused", (double)(r.errors + r.mail_bad), "msgs");
    bench_report("dyad.sim_wall", wall, "s");
    if (bench_dyad_rates(&apply_rate, &verify_rate) != 0) {
        fprintf(stderr, "pull-bench dyad: rate measurement failed\n");
        return 1;
    }
    bench_report("dyad.apply_rate", apply_rate, "msg/s");
    bench_report("dyad.verify_raw", verify_rate, "sig/s");
    bench_report("dyad.apply_ratio_to_verify", apply_rate / verify_rate, "x");
    return r.completed == r.dyads && r.errors == 0 && r.mail_bad == 0 ? 0 : 1;
}
