/*
 * Nodes behind NAT (tests/sim/sim.h, sim_set_nat): 40% of the nodes accept no connection.
 * Their HELLO says so (reach local), so the nodes they dial report them with port 0 and
 * never dial them: no failed dial at all toward a NAT'd node, while every node - NAT'd or
 * not - still gets every record, through the connections the NAT'd nodes open themselves.
 * The same network of older nodes (cfg.nat_unsaid: the HELLO says nothing) is the baseline:
 * there the others keep dialing the NAT'd nodes and fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "tests/sim/sim.h"

#define BOOT 3

struct nat_result {
    uint32_t nodes, nat, complete;
    uint64_t dials_to_nat, dials_failed, connections;
};

/* run_nat builds the network (two nodes of every five behind NAT, each node bootstrapping
 * from BOOT open nodes), lets it run for 10 simulated minutes (joins, shuffles, rotations),
 * publishes records from NAT'd and open nodes in turn, and counts. */
static void
run_nat(bool unsaid, struct nat_result *out)
{
    struct sim_config c;
    struct sim *s = NULL;
    uint32_t open[4096], nopen = 0, recs = 0;

    sim_config_default(&c);
    c.nodes = sim_env_nodes(200, 100);
    c.seed = 16;
    c.nat_unsaid = unsaid;
    assert_true(c.nodes <= 4096);
    assert_int_equal(sim_new(&c, &s), 0);
    memset(out, 0, sizeof(*out));
    out->nodes = c.nodes;
    for (uint32_t i = 0; i < c.nodes; i++) {
        bool nat = i >= 10 && i % 5 >= 3; /* the first ten open: contacts */
        sim_set_nat(s, i, nat);
        out->nat += nat;
        if (!nat)
            open[nopen++] = i;
    }
    for (uint32_t i = 0; i < c.nodes; i++) {
        uint32_t boot[BOOT], nb = 0;
        for (uint32_t k = 0; nb < BOOT && k < 3 * BOOT; k++) {
            uint32_t b = open[(i * 7 + k * 13) % nopen];
            bool dup = b == i;
            for (uint32_t j = 0; j < nb; j++)
                dup = dup || boot[j] == b;
            if (!dup)
                boot[nb++] = b;
        }
        sim_set_bootstrap(s, i, boot, nb);
    }
    for (uint32_t i = 0; i < c.nodes; i++) {
        sim_restart(s, i);
        sim_run_for(s, 20);
    }
    sim_run_for(s, 600000);
    for (uint32_t i = 0; i < c.nodes && recs < 10; i += c.nodes / 10) {
        assert_true(sim_publish(s, i + (recs % 2 == 1 ? 3 : 0)) >= 0); /* open, NAT'd */
        recs++;
        sim_run_for(s, 1000);
    }
    sim_run_for(s, 60000);
    out->complete = sim_complete_nodes(s);
    for (uint32_t i = 0; i < c.nodes; i++) {
        if (sim_nat(s, i))
            out->dials_to_nat += sim_dials_to(s, sim_addr(s, i));
    }
    {
        struct sim_counters k;
        sim_counters(s, &k);
        out->dials_failed = k.dials_failed;
        out->connections = k.connections;
    }
    printf("%s: %u nodes, %u behind NAT; %u complete; %llu dials to NAT'd nodes, %llu dials "
           "failed, %llu connections\n",
           unsaid ? "HELLO says nothing (older nodes)" : "HELLO says reach local", out->nodes,
           out->nat, out->complete, (unsigned long long)out->dials_to_nat,
           (unsigned long long)out->dials_failed, (unsigned long long)out->connections);
    sim_free(s);
}

static void
test_nat_not_dialed(void **state)
{
    struct nat_result with, without;

    (void)state;
    run_nat(false, &with);
    run_nat(true, &without);
    /* nobody dials a node that said it can't be dialed, and everybody gets everything */
    assert_int_equal(with.dials_to_nat, 0);
    assert_int_equal(with.complete, with.nodes);
    /* the baseline shows what that saves: the same network dials them, and fails */
    assert_true(without.dials_to_nat > 0);
    assert_true(without.dials_failed > with.dials_failed);
    assert_int_equal(without.complete, without.nodes);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nat_not_dialed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
