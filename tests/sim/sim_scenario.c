/* sim_scenario: building blocks shared by the sim tests and pull-bench sim (see sim.h). */
#include <stdio.h>
#include <stdlib.h>

#include "lib/err.h"
#include "proto/msg.h"
#include "tests/sim/sim.h"

uint32_t
sim_random_alive(struct sim *s)
{
    uint32_t n = sim_nodes(s), alive = 0, pick;

    for (uint32_t i = 0; i < n; i++)
        alive += sim_alive(s, i);
    if (alive == 0)
        return 0;
    /* Node randomness must not be disturbed: derive the choice from the clock and the
     * record count, which are themselves deterministic. */
    pick = (uint32_t)((sim_now(s) * 2654435761u + sim_records(s) * 40503u) % alive);
    for (uint32_t i = 0; i < n; i++) {
        if (sim_alive(s, i) && pick-- == 0)
            return i;
    }
    return 0;
}

int
sim_build(const struct sim_config *c, uint32_t spacing_ms, uint32_t settle_ms, struct sim **out)
{
    struct sim *s = NULL;
    int rc;

    if ((rc = sim_new(c, &s)) != 0)
        return rc;
    sim_bootstrap(s, 3, spacing_ms);
    sim_run_until(s, (uint64_t)c->nodes * spacing_ms + settle_ms);
    *out = s;
    return 0;
}

void
sim_measure(struct sim *s, uint32_t count, uint32_t wait_ms, struct sim_summary *out)
{
    double p50_sum = 0, rmr_sum = 0, bytes = 0, msgs = 0;

    *out = (struct sim_summary){.min_fraction = 1.0};
    for (uint32_t k = 0; k < count; k++) {
        struct sim_counters c;
        struct sim_spread sp;
        uint64_t b = 0, m = 0;
        int r;

        sim_counters_reset(s);
        if ((r = sim_publish(s, sim_random_alive(s))) < 0)
            continue;
        sim_run_for(s, wait_ms);
        sim_spread(s, (uint32_t)r, &sp);
        sim_counters(s, &c);
        for (uint32_t t = MSG_RECORDS; t <= MSG_WANT; t++) {
            b += c.bytes[t];
            m += c.msgs[t];
        }
        out->records++;
        if (sp.reached == sp.alive)
            out->complete++;
        if (sp.alive > 0 && (double)sp.reached / sp.alive < out->min_fraction)
            out->min_fraction = (double)sp.reached / sp.alive;
        p50_sum += sp.p50_ms;
        if (sp.p100_ms > out->p100_ms)
            out->p100_ms = sp.p100_ms;
        rmr_sum += sp.rmr;
        bytes += sp.alive ? (double)b / sp.alive : 0;
        msgs += sp.alive ? (double)m / sp.alive : 0;
    }
    if (out->records > 0) {
        out->p50_ms = p50_sum / out->records;
        out->rmr = rmr_sum / out->records;
        out->bytes_per_node = bytes / out->records;
        out->msgs_per_node = msgs / out->records;
    }
}

uint32_t
sim_kill_fraction(struct sim *s, double frac)
{
    uint32_t n = sim_nodes(s), alive = 0, want, killed = 0;

    for (uint32_t i = 0; i < n; i++)
        alive += sim_alive(s, i);
    want = (uint32_t)(frac * alive + 0.5);
    /* A deterministic pseudo-random permutation walk (odd step modulo n is a cycle when
     * n is a power of two; in general, skip repeats by checking aliveness). */
    for (uint64_t k = 0; killed < want && k < 64ull * n; k++) {
        uint32_t i = (uint32_t)((k * 2654435761u + 12345u) % n);
        if (sim_alive(s, i)) {
            sim_kill(s, i);
            killed++;
        }
    }
    return killed;
}

void
sim_print_summary(const char *label, const struct sim_summary *m)
{
    printf("%-28s records %u complete %u min_reach %.4f p50 %.0f ms p100 %.0f ms rmr %.3f "
           "bytes/node %.0f msgs/node %.2f\n",
           label, m->records, m->complete, m->min_fraction, m->p50_ms, m->p100_ms, m->rmr,
           m->bytes_per_node, m->msgs_per_node);
    fflush(stdout);
}
