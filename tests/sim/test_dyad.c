/* Simulation of dyads under churn (bench/dyad_sim.h): 100 dyads between random pairs of 24
 * nodes that go online and offline at random, with messages delivered directly or as
 * sealed mail carried by gossip. Every dyad must complete on both sides, with no refused
 * message, no expiry, and both attestations of each dyad verifying. The driver is the one
 * `pull-bench dyad` runs: this file includes it (all its names start with dyad_sim_). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>

#include "bench/dyad_sim.c"

static void
dyad_sim_test_print(const char *what, const struct dyad_sim_result *r)
{
    printf("%s: %u/%u completed in %.1f days (mean %.2f, max %.2f days); %llu msgs, %llu "
           "direct, %llu mailed, %llu relayed, %llu resent, %llu held, %llu duplicates, "
           "%llu quota, %llu restarts\n",
           what, r->completed, r->dyads, (double)r->sim_s / 86400.0, r->mean_complete_s / 86400.0,
           r->max_complete_s / 86400.0, (unsigned long long)r->msgs, (unsigned long long)r->direct,
           (unsigned long long)r->mailed, (unsigned long long)r->relayed,
           (unsigned long long)r->resent, (unsigned long long)r->held,
           (unsigned long long)r->duplicates, (unsigned long long)r->quota_refused,
           (unsigned long long)r->restarts);
}

static void
dyad_sim_test_all_complete(const struct dyad_sim_result *r, unsigned dyads)
{
    assert_int_equal(r->dyads, dyads);
    assert_int_equal(r->completed, dyads);
    assert_int_equal(r->stuck, 0);
    assert_int_equal(r->closed_other, 0);
    assert_int_equal(r->errors, 0);
    assert_int_equal(r->expired, 0);
    assert_int_equal(r->attestations, 2 * dyads);
    /* at least 5 messages per dyad; both paths used; nodes restarted */
    assert_true(r->msgs >= 5ull * dyads);
    assert_true(r->direct > 0);
    assert_true(r->mailed > 0);
    assert_true(r->relayed > 0);
    assert_true(r->restarts > 0);
    assert_true(r->mean_complete_s > 0 && r->mean_complete_s <= r->max_complete_s);
}

/* The benchmark's configuration: 100 dyads, 24 nodes, 40% behind NAT. */
static void
test_hundred_dyads_under_churn(void **state)
{
    struct dyad_sim_config cfg;
    struct dyad_sim_result r;

    (void)state;
    dyad_sim_config_default(&cfg);
    assert_int_equal(dyad_sim_run(&cfg, &r), 0);
    dyad_sim_test_print("default", &r);
    dyad_sim_test_all_complete(&r, 100);
}

/* Harder: more NAT (more mail), fewer and sleepier nodes (online 1/6 of the time), another
 * seed. */
static void
test_mostly_mail(void **state)
{
    struct dyad_sim_config cfg;
    struct dyad_sim_result r;

    (void)state;
    dyad_sim_config_default(&cfg);
    cfg.seed = 7;
    cfg.nodes = 16;
    cfg.dyads = 40;
    cfg.nat_pct = 60;
    cfg.online_mean_s = 2 * 3600;
    cfg.offline_mean_s = 10 * 3600;
    assert_int_equal(dyad_sim_run(&cfg, &r), 0);
    dyad_sim_test_print("mostly-mail", &r);
    dyad_sim_test_all_complete(&r, 40);
    assert_true(r.mailed > r.direct);
}

/* Same seed, same run, to the last counter; another seed, another run. */
static void
test_deterministic(void **state)
{
    struct dyad_sim_config cfg;
    struct dyad_sim_result a, b, c;

    (void)state;
    dyad_sim_config_default(&cfg);
    cfg.seed = 3;
    cfg.nodes = 10;
    cfg.dyads = 20;
    assert_int_equal(dyad_sim_run(&cfg, &a), 0);
    assert_int_equal(dyad_sim_run(&cfg, &b), 0);
    assert_memory_equal(&a, &b, sizeof(a));
    dyad_sim_test_all_complete(&a, 20);
    cfg.seed = 4;
    assert_int_equal(dyad_sim_run(&cfg, &c), 0);
    assert_true(a.sim_s != c.sim_s || a.relayed != c.relayed || a.msgs != c.msgs);
    assert_int_equal(dyad_sim_run(&(struct dyad_sim_config){0}, &c), PULL_ERR_INVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hundred_dyads_under_churn),
        cmocka_unit_test(test_mostly_mail),
        cmocka_unit_test(test_deterministic),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
