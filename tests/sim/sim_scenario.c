/* sim_scenario: building blocks shared by the sim tests and pull-bench sim (see sim.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int
sim_partition_heal(const struct sim_config *c, struct syncer_stats *stats, uint32_t max_wait_ms,
                   struct sim_partition_result *out)
{
    uint32_t n = c->nodes, *group = NULL, recs[10], nrec = 0, min, max;
    struct sim *s = NULL;
    double mean;
    uint64_t t0;
    int rc;

    memset(out, 0, sizeof(*out));
    out->nodes = n;
    out->heal_ms = UINT64_MAX;
    if ((rc = sim_new(c, &s)) != 0)
        return rc;
    rc = PULL_ERR_NOMEM;
    if ((group = calloc(n, sizeof(*group))) == NULL)
        goto out;
    sim_bootstrap(s, 3, 10);
    sim_run_until(s, (uint64_t)n * 10 + 30000);
    for (int k = 0; k < 3; k++) {
        (void)sim_publish(s, sim_random_alive(s));
        sim_run_for(s, 2000);
    }
    for (uint32_t i = 0; i < n; i++)
        group[i] = (i * 2654435761u >> 7) & 1;
    sim_partition(s, group);
    sim_run_for(s, 20000);
    sim_overlay(s, &min, &mean, &max, &out->component_split);
    /* Five records on each side, alternating. */
    for (uint32_t i = 0; i < n && nrec < 10; i++) {
        int r;
        if (group[i] != nrec % 2)
            continue;
        if ((r = sim_publish(s, i)) < 0) {
            rc = r;
            goto out;
        }
        recs[nrec++] = (uint32_t)r;
        sim_run_for(s, 500);
    }
    /* Longer than recent_ms: the announcement of recent ids on new links won't help. */
    sim_run_for(s, 90000);
    out->sides_isolated = true;
    for (uint32_t k = 0; k < nrec; k++) {
        uint32_t side = 0, other = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (!sim_has(s, i, recs[k]))
                continue;
            if (group[i] == k % 2)
                side++;
            else
                other++;
        }
        if (other != 0 || side < n / 2 - n / 10)
            out->sides_isolated = false;
    }
    sim_heal(s);
    t0 = sim_now(s);
    for (uint32_t waited = 0; waited < max_wait_ms; waited += 1000) {
        sim_run_for(s, 1000);
        if (sim_complete_nodes(s) == n) {
            out->heal_ms = sim_now(s) - t0;
            break;
        }
    }
    out->complete = sim_complete_nodes(s);
    sim_overlay(s, &min, &mean, &max, &out->component_healed);
    if (stats != NULL)
        sim_engine_stats(s, stats);
    rc = 0;
out:
    free(group);
    sim_free(s);
    return rc;
}

/* start_network starts nodes 0 .. n-1 one every spacing_ms, each knowing 3 random earlier
 * ones (from the network's stream through sim_random_alive: no node randomness used). */
static void
start_network(struct sim *s, uint32_t n, uint32_t spacing_ms)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t boot[3], nb = 0;
        for (uint32_t k = 0; k < 3 && i > 0; k++)
            boot[nb++] = (uint32_t)((i * 2654435761u + k * 40503u + 17u) % i);
        sim_set_bootstrap(s, i, boot, nb);
        sim_restart(s, i);
        sim_run_for(s, spacing_ms);
    }
}

int
sim_catchup(const struct sim_config *c, uint32_t records, uint32_t had, uint32_t max_wait_ms,
            struct sim_catchup_result *out)
{
    uint32_t n = c->nodes, joiner = n - 1, boot[3];
    struct sim_counters sent, recvd;
    struct sim *s = NULL;
    uint64_t t0;
    int rc;

    memset(out, 0, sizeof(*out));
    out->complete_ms = UINT64_MAX;
    if (n < 4 || had > records)
        return PULL_ERR_INVAL;
    if ((rc = sim_new(c, &s)) != 0)
        return rc;
    /* the stores, filled before anyone starts (time order: record index) */
    for (uint32_t r = 0; r < records; r++) {
        int k = sim_make_record(s, UINT32_MAX);
        if (k < 0) {
            rc = k;
            goto out;
        }
        for (uint32_t i = 0; i < joiner; i++)
            sim_give(s, i, (uint32_t)k);
        if (r < had)
            sim_give(s, joiner, (uint32_t)k);
    }
    start_network(s, joiner, 10);
    sim_run_for(s, 30000);
    out->records = records;
    out->had = had;
    for (uint32_t k = 0; k < 3; k++)
        boot[k] = (k * 7919u + 3u) % joiner;
    sim_set_bootstrap(s, joiner, boot, 3);
    sim_counters_reset(s);
    t0 = sim_now(s);
    sim_restart(s, joiner);
    for (uint64_t waited = 0; waited < max_wait_ms; waited += 100) {
        sim_run_for(s, 100);
        if (sim_node_records(s, joiner) == records) {
            out->complete_ms = sim_now(s) - t0;
            break;
        }
    }
    sim_run_for(s, 2000); /* what was still on its way (counted too) */
    sim_node_counters(s, joiner, &sent);
    sim_node_received(s, joiner, &recvd);
    out->received = sim_node_records(s, joiner) - had;
    out->wire_bytes = sent.bytes_total + recvd.bytes_total;
    out->wire_msgs = sent.msgs_total + recvd.msgs_total;
    out->record_bytes = (uint64_t)out->received * c->envelope_bytes;
    out->ratio = out->record_bytes ? (double)out->wire_bytes / (double)out->record_bytes : 0;
    out->bulk_msgs = sent.msgs[MSG_RECON_BULK];
    out->recon_reqs = sent.msgs[MSG_RECON_REQ] + recvd.msgs[MSG_RECON_REQ];
    out->records_msgs = recvd.msgs[MSG_RECORDS];
    syncer_get_stats(sim_engine(s, joiner), &out->st);
    if (recvd.bytes[MSG_RECORDS] > out->record_bytes)
        out->records_extra = recvd.bytes[MSG_RECORDS] - out->record_bytes;
    rc = 0;
out:
    sim_free(s);
    return rc;
}

int
sim_storm(const struct sim_config *c, double frac, uint32_t groups, uint32_t max_wait_ms,
          struct sim_storm_result *out)
{
    uint32_t n = c->nodes, *down = NULL, *group = NULL, min, max;
    struct sim_counters cnt;
    struct sim *s = NULL;
    double mean;
    uint64_t t0;
    int rc;

    memset(out, 0, sizeof(*out));
    out->nodes = n;
    out->converge_ms = UINT64_MAX;
    if ((rc = sim_new(c, &s)) != 0)
        return rc;
    rc = PULL_ERR_NOMEM;
    if ((down = calloc(n, sizeof(*down))) == NULL || (group = calloc(n, sizeof(*group))) == NULL)
        goto out;
    sim_bootstrap(s, 3, 10);
    sim_run_until(s, (uint64_t)n * 10 + 60000);
    for (int k = 0; k < 3; k++) {
        (void)sim_publish(s, sim_random_alive(s));
        sim_run_for(s, 2000);
    }
    if (groups > 1) {
        for (uint32_t i = 0; i < n; i++)
            group[i] = i * groups / n;
        sim_partition(s, group);
        out->restarted = n;
    } else {
        for (uint32_t i = 0; i < n; i++) {
            if (sim_alive(s, i))
                down[i] = 1;
        }
        out->restarted = sim_kill_fraction(s, frac);
        for (uint32_t i = 0; i < n; i++)
            down[i] = down[i] && !sim_alive(s, i);
    }
    sim_run_for(s, 5000);
    for (int k = 0; k < 5; k++) {
        (void)sim_publish(s, sim_random_alive(s));
        sim_run_for(s, 2000);
    }
    sim_run_for(s, 70000); /* longer than recent_ms */
    sim_counters_reset(s);
    t0 = sim_now(s);
    if (groups > 1) {
        sim_heal(s);
    } else {
        for (uint32_t i = 0; i < n; i++) {
            if (down[i])
                sim_restart(s, i);
        }
    }
    for (uint64_t waited = 0; waited < max_wait_ms; waited += 500) {
        uint32_t comp;
        sim_run_for(s, 500);
        if (sim_complete_nodes(s) != n)
            continue;
        sim_overlay(s, &min, &mean, &max, &comp);
        if (comp == n) {
            out->converge_ms = sim_now(s) - t0;
            break;
        }
    }
    sim_counters(s, &cnt);
    out->msgs = cnt.msgs_total;
    out->bytes = cnt.bytes_total;
    out->connections = cnt.connections;
    out->dials_failed = cnt.dials_failed;
    sim_peaks(s, &out->peaks);
    out->records = sim_records(s);
    out->complete = sim_complete_nodes(s);
    sim_overlay(s, &out->view_min, &mean, &max, &out->component);
    sim_engine_stats(s, &out->st);
    rc = 0;
out:
    free(down);
    free(group);
    sim_free(s);
    return rc;
}
