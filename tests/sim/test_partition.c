/*
 * Partition and heal: the network splits in two halves, both sides keep publishing, and
 * once the partition heals both converge to the same set of records. Gossip alone cannot
 * do it for records older than the recent-announcement window (recent_ms): this needs
 * anti-entropy between the nodes that link the halves again (active view rotation makes
 * such links appear). Every node runs pull's engine (proto/syncer) as pulld does, with its
 * reconciliation every 10 s.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "tests/sim/sim.h"

static void
print_result(const char *label, const struct sim_partition_result *r)
{
    printf("%s: split component %u of %u, sides isolated %s, %u nodes complete, heal %lld ms, "
           "healed component %u\n",
           label, r->component_split, r->nodes, r->sides_isolated ? "yes" : "no", r->complete,
           r->heal_ms == UINT64_MAX ? -1LL : (long long)r->heal_ms, r->component_healed);
}

static void
test_partition_heal(void **state)
{
    struct sim_config c;
    struct sim_partition_result r;
    struct syncer_stats st;

    (void)state;
    sim_config_default(&c);
    c.nodes = sim_env_nodes(1000, 1000);
    c.seed = 7;
    assert_int_equal(sim_partition_heal(&c, &st, 300000, &r), 0);
    print_result("with anti-entropy", &r);
    printf("recon: %llu sessions, %llu failed, %llu refused by rate limits\n",
           (unsigned long long)st.recon_sessions, (unsigned long long)st.recon_failed,
           (unsigned long long)st.recon_limited);
    assert_true(st.recon_sessions > 0);
    assert_int_equal(st.recon_failed, 0);
    assert_true(r.component_split <= c.nodes / 2 + c.nodes / 20);
    assert_true(r.sides_isolated);
    assert_int_equal(r.complete, c.nodes);
    assert_true(r.heal_ms < 120000);
    assert_int_equal(r.component_healed, c.nodes);
}

static void
test_partition_needs_ae(void **state)
{
    struct sim_config c;
    struct sim_partition_result r;

    (void)state;
    /* Without anti-entropy, records older than recent_ms never cross: the reason the
     * reconciliation layer exists. The overlay itself heals. */
    sim_config_default(&c);
    c.nodes = sim_env_nodes(300, 300);
    c.seed = 8;
    c.engine.recon = false;
    assert_int_equal(sim_partition_heal(&c, NULL, 120000, &r), 0);
    print_result("without anti-entropy", &r);
    assert_true(r.sides_isolated);
    assert_true(r.complete < c.nodes);
    assert_int_equal(r.component_healed, c.nodes);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_heal),
        cmocka_unit_test(test_partition_needs_ae),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
