/*
 * Spread of records over a simulated network (tests/sim/sim.h): 1,000 nodes with 50 ms
 * links in the normal build (PULL_SIM_NODES overrides; fewer under the sanitizers).
 * Checks the numbers of DESIGN.md: every node reached, p100 <= 1 s, RMR < 0.5 once the
 * tree has formed; and after killing half of the nodes at once, every survivor reached.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "tests/sim/sim.h"

static struct sim *
build(uint32_t n, uint64_t seed)
{
    struct sim_config c;
    struct sim *s = NULL;
    uint32_t min, max, comp;
    double mean;

    sim_config_default(&c);
    c.nodes = n;
    c.seed = seed;
    assert_int_equal(sim_build(&c, 10, 600000, &s), 0);
    sim_overlay(s, &min, &mean, &max, &comp);
    printf("overlay: %u nodes, active view min %u mean %.2f max %u, largest component %u\n", n, min,
           mean, max, comp);
    {
        uint32_t h[GOSSIP_ACTIVE_MAX + 1];
        sim_view_histogram(s, h);
        printf("active view sizes:");
        for (int i = 0; i <= 8; i++)
            printf(" %d:%u", i, h[i]);
        printf("\n");
    }
    assert_true(min >= 1);
    assert_int_equal(comp, n);
    return s;
}

static void
test_spread(void **state)
{
    uint32_t n = sim_env_nodes(1000, 250);
    struct sim *s = build(n, 1);
    struct sim_summary warm, m;

    (void)state;
    sim_measure(s, 5, 3000, &warm);
    sim_print_summary("warm-up", &warm);
    assert_int_equal(warm.complete, warm.records);
    sim_measure(s, 10, 3000, &m);
    sim_print_summary("tree formed", &m);
    assert_int_equal(m.complete, m.records);
    assert_true(m.p100_ms <= 1000);
    assert_true(m.rmr < 0.5);
    sim_free(s);
}

static void
test_kill_half(void **state)
{
    uint32_t n = sim_env_nodes(1000, 250), killed, min, max, comp;
    struct sim *s = build(n, 2);
    struct sim_summary warm, now, later;
    double mean;

    (void)state;
    sim_measure(s, 5, 3000, &warm);
    killed = sim_kill_fraction(s, 0.5);
    printf("killed %u of %u nodes\n", killed, n);
    /* Immediately: the next record is published while the failures are not yet known. */
    sim_measure(s, 1, 30000, &now);
    sim_print_summary("right after the kill", &now);
    assert_int_equal(now.complete, now.records);
    sim_run_for(s, 30000);
    sim_overlay(s, &min, &mean, &max, &comp);
    printf("overlay after repair: active view min %u mean %.2f max %u, largest component %u"
           " of %u\n",
           min, mean, max, comp, n - killed);
    sim_measure(s, 5, 3000, &later);
    sim_print_summary("after repair", &later);
    assert_int_equal(later.complete, later.records);
    sim_free(s);
}

static void
test_chain_bootstrap(void **state)
{
    uint32_t n = sim_env_nodes(1000, 1000), min, max, comp, h[GOSSIP_ACTIVE_MAX + 1];
    struct sim_config c;
    struct sim_summary m;
    struct sim *s = NULL;
    double mean;

    (void)state;
    /* Every node knows only the previous one. JOIN walks stay near the line, so the overlay
     * starts with a diameter of ~90 hops; shuffles mix the passive views and rotations
     * then mix the active views (fast while nodes are young). Ten minutes of membership. */
    sim_config_default(&c);
    c.nodes = n;
    c.seed = 3;
    assert_int_equal(sim_new(&c, &s), 0);
    sim_bootstrap_chain(s, 10);
    sim_run_until(s, (uint64_t)n * 10 + 600000);
    sim_overlay(s, &min, &mean, &max, &comp);
    sim_view_histogram(s, h);
    printf("chain bootstrap: active view min %u mean %.2f max %u, component %u; sizes 3:%u "
           "4:%u 5:%u 6:%u\n",
           min, mean, max, comp, h[3], h[4], h[5], h[6]);
    assert_int_equal(comp, n);
    assert_true(min >= 2);
    sim_measure(s, 5, 3000, &m);
    sim_measure(s, 5, 3000, &m);
    sim_print_summary("chain, tree formed", &m);
    assert_int_equal(m.complete, m.records);
    assert_true(m.p100_ms <= 1000);
    assert_true(m.rmr < 0.5);
    sim_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_chain_bootstrap),
        cmocka_unit_test(test_kill_half),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
