/*
 * Churn, restarts, loss and jitter: the network keeps delivering every record to every
 * live node while nodes come and go (restarted nodes keep their store and their known
 * peers), and on lossy, jittery links (every node runs proto/syncer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "tests/sim/sim.h"

static struct sim *
build(struct sim_config *c)
{
    struct sim *s = NULL;

    assert_int_equal(sim_new(c, &s), 0);
    sim_bootstrap(s, 3, 10);
    sim_run_until(s, (uint64_t)c->nodes * 10 + 30000);
    return s;
}

static void
test_restart(void **state)
{
    struct sim_config c;
    struct sim *s;
    uint32_t n, dead[100], ndead = 0, min, max, comp;
    double mean;

    (void)state;
    sim_config_default(&c);
    c.nodes = n = sim_env_nodes(500, 500);
    c.seed = 11;
    s = build(&c);
    for (int k = 0; k < 3; k++) {
        assert_true(sim_publish(s, sim_random_alive(s)) >= 0);
        sim_run_for(s, 2000);
    }
    /* 10% of the nodes go down; records are published while they are away for longer
     * than recent_ms; then they come back with their store and known peers. */
    for (uint32_t i = 7; i < n && ndead < n / 10 && ndead < 100; i += 10) {
        sim_kill(s, i);
        dead[ndead++] = i;
    }
    for (int k = 0; k < 5; k++) {
        assert_true(sim_publish(s, sim_random_alive(s)) >= 0);
        sim_run_for(s, 1000);
    }
    sim_run_for(s, 70000);
    assert_int_equal(sim_complete_nodes(s), n - ndead);
    for (uint32_t k = 0; k < ndead; k++)
        sim_restart(s, dead[k]);
    sim_run_for(s, 30000);
    sim_overlay(s, &min, &mean, &max, &comp);
    {
        struct syncer_stats st;
        sim_engine_stats(s, &st);
        printf("after restart of %u nodes: %u of %u complete, active view min %u mean %.2f, "
               "component %u; recon %llu sessions\n",
               ndead, sim_complete_nodes(s), n, min, mean, comp,
               (unsigned long long)st.recon_sessions);
    }
    assert_int_equal(sim_complete_nodes(s), n);
    assert_int_equal(comp, n);
    assert_true(min >= 1);
    sim_free(s);
}

static void
test_continuous_churn(void **state)
{
    struct sim_config c;
    struct sim *s;
    uint32_t n, down[64] = {0}, ndown = 0, comp, min, max;
    double mean;

    (void)state;
    sim_config_default(&c);
    c.nodes = n = sim_env_nodes(500, 300);
    c.seed = 12;
    s = build(&c);
    /* For 60 s: every second one node dies and, once 20 are down, the longest-dead one
     * comes back; a record is published every 2 s. */
    for (uint32_t t = 0; t < 60; t++) {
        uint32_t victim = (t * 2654435761u + 99u) % n;
        if (sim_alive(s, victim) && ndown < 64) {
            sim_kill(s, victim);
            down[ndown++] = victim;
        }
        if (ndown >= 20) {
            sim_restart(s, down[0]);
            for (uint32_t k = 1; k < ndown; k++)
                down[k - 1] = down[k];
            ndown--;
        }
        if (t % 2 == 0)
            assert_true(sim_publish(s, sim_random_alive(s)) >= 0);
        sim_run_for(s, 1000);
    }
    for (uint32_t k = 0; k < ndown; k++)
        sim_restart(s, down[k]);
    sim_run_for(s, 40000);
    sim_overlay(s, &min, &mean, &max, &comp);
    printf("after 60 s of churn: %u of %u complete, active view min %u mean %.2f, component "
           "%u\n",
           sim_complete_nodes(s), n, min, mean, comp);
    assert_int_equal(sim_complete_nodes(s), n);
    assert_int_equal(comp, n);
    sim_free(s);
}

static void
test_lossy_jittery(void **state)
{
    struct sim_config c;
    struct sim_summary m;
    struct sim *s;

    (void)state;
    sim_config_default(&c);
    c.nodes = sim_env_nodes(500, 300);
    c.seed = 13;
    c.jitter_ms = 50;
    c.loss = 0.01;
    s = build(&c);
    sim_measure(s, 5, 3000, &m);
    sim_print_summary("1% loss, 50 ms jitter", &m);
    /* Lost frames are repaired by IHAVE/GRAFT within the second, or by recon later. */
    assert_true(m.min_fraction > 0.95);
    sim_run_for(s, 30000);
    printf("after 30 s: %u of %u nodes hold every record\n", sim_complete_nodes(s), c.nodes);
    assert_int_equal(sim_complete_nodes(s), c.nodes);
    sim_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_continuous_churn),
        cmocka_unit_test(test_lossy_jittery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
