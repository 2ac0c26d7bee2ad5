/* Dyads under churn through the engine (tests/sim/sim_dyad.h): 100 dyads between random
 * pairs of 24 nodes that go online and offline at random, 40% of them behind NAT, every
 * message sealed and carried by the nodes' proto/syncer engines. Every dyad must complete
 * on both sides, with no refused message or mail item, no expiry, no peer dropped, and
 * both attestations of each dyad verifying. `pull-bench dyad` runs the same driver. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "tests/sim/sim.h"
#include "tests/sim/sim_dyad.h"

static void
print_result(const char *what, const struct sim_dyad_result *r)
{
    printf("%s: %u/%u completed in %.1f days (mean %.2f, max %.2f days); %llu msgs posted, "
           "%llu delivered: %llu direct, %llu relayed; %llu held, %llu duplicates, %llu "
           "restarts; engines: %llu carried, %llu refused, %llu swept; %llu mail msgs\n",
           what, r->completed, r->dyads, (double)r->sim_s / 86400.0, r->mean_complete_s / 86400.0,
           r->max_complete_s / 86400.0, (unsigned long long)r->msgs,
           (unsigned long long)r->delivered, (unsigned long long)r->direct,
           (unsigned long long)r->relayed, (unsigned long long)r->held,
           (unsigned long long)r->duplicates, (unsigned long long)r->restarts,
           (unsigned long long)r->mail_carried, (unsigned long long)r->mail_refused,
           (unsigned long long)r->mail_swept, (unsigned long long)r->mail_msgs);
    fflush(stdout);
}

static void
all_complete(const struct sim_dyad_result *r, unsigned dyads)
{
    assert_int_equal(r->dyads, dyads);
    assert_int_equal(r->completed, dyads);
    assert_int_equal(r->stuck, 0);
    assert_int_equal(r->closed_other, 0);
    assert_int_equal(r->errors, 0);
    assert_int_equal(r->expired, 0);
    assert_int_equal(r->mail_bad, 0);
    assert_int_equal(r->peers_dropped, 0);
    assert_int_equal(r->attestations, 2 * dyads);
    /* 5 messages per dyad at least, each delivered once; both paths used; restarts */
    assert_true(r->msgs >= 5ull * dyads);
    assert_true(r->delivered >= r->msgs);
    assert_int_equal(r->delivered, r->direct + r->relayed);
    assert_true(r->direct > 0);
    assert_true(r->relayed > 0);
    assert_true(r->mail_carried > 0);
    assert_true(r->restarts > 0);
    assert_true(r->mean_complete_s > 0 && r->mean_complete_s <= r->max_complete_s);
}

/* The benchmark's configuration: 100 dyads, 24 nodes, 40% behind NAT (under the
 * sanitizers, 40 dyads between 12 nodes: the cost is simulated days times online nodes). */
static void
test_hundred_dyads_under_churn(void **state)
{
    struct sim_dyad_config cfg;
    struct sim_dyad_result r;

    (void)state;
    sim_dyad_config_default(&cfg);
    cfg.nodes = sim_env_nodes(24, 12);
    cfg.dyads = cfg.nodes == 24 ? 100 : 40;
    assert_int_equal(sim_dyad_run(&cfg, &r), 0);
    print_result("default", &r);
    all_complete(&r, cfg.dyads);
}

/* Harder: more NAT (more relaying), fewer and sleepier nodes (online 1/6 of the time),
 * another seed. */
static void
test_mostly_relayed(void **state)
{
    struct sim_dyad_config cfg;
    struct sim_dyad_result r;

    (void)state;
    sim_dyad_config_default(&cfg);
    cfg.seed = 7;
    cfg.nodes = sim_env_nodes(16, 10);
    cfg.dyads = cfg.nodes == 16 ? 40 : 16;
    cfg.nat_pct = 60;
    cfg.online_mean_s = 2 * 3600;
    cfg.offline_mean_s = 10 * 3600;
    assert_int_equal(sim_dyad_run(&cfg, &r), 0);
    print_result("mostly-relayed", &r);
    all_complete(&r, cfg.dyads);
    assert_true(r.relayed > r.direct);
}

/* Same seed, same run, to the last counter; another seed, another run. */
static void
test_deterministic(void **state)
{
    struct sim_dyad_config cfg;
    struct sim_dyad_result a, b, c;

    (void)state;
    sim_dyad_config_default(&cfg);
    cfg.seed = 3;
    cfg.nodes = 8;
    cfg.dyads = 10;
    cfg.propose_window_s = 2 * 86400;
    assert_int_equal(sim_dyad_run(&cfg, &a), 0);
    assert_int_equal(sim_dyad_run(&cfg, &b), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    all_complete(&a, 10);
    cfg.seed = 4;
    assert_int_equal(sim_dyad_run(&cfg, &c), 0);
    assert_true(a.sim_s != c.sim_s || a.wire_bytes != c.wire_bytes || a.msgs != c.msgs);
    assert_int_equal(sim_dyad_run(&(struct sim_dyad_config){0}, &c), PULL_ERR_INVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hundred_dyads_under_churn),
        cmocka_unit_test(test_mostly_relayed),
        cmocka_unit_test(test_deterministic),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
