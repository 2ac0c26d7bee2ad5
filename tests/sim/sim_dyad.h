/*
 * sim_dyad: dyads under churn, through the engine pulld ships. Shared by `pull-bench dyad`
 * (bench/bench_dyad.c) and the ctest sim.test_dyad (tests/sim/test_dyad.c).
 *
 * N nodes of the simulator (tests/sim/sim.h, one proto/syncer engine each, with real
 * Ed25519 identities), each a person, go online and offline at random (exponential
 * sessions): going offline is a crash (sim_kill), coming back a restart with the node's
 * tables (known peers, mail) and its dyads (dyad_encode / dyad_decode, as pulld keeps them
 * in LMDB). Some nodes are behind NAT: nobody can dial them. Every node knows a few
 * reachable nodes as bootstrap peers.
 *
 * D dyads are planned between random pairs: the proposer proposes at a random time, and
 * each side's human acts (accept, done, ack) a random while after noticing the last
 * change, and only while its node is online. Each dyad message is sealed (mail_seal, with
 * an env seeded from the message so that sealing again gives the same item, as pulld
 * does) and handed to the node's engine with syncer_mail_post; from there on the engines
 * carry it: straight to the recipient when connected, else announced and relayed by the
 * nodes they meet, kept in their mail tables across restarts. The engine's MAIL action
 * (sim_set_mail) hands an item to its recipient, which opens it and applies the message to
 * its dyad, holding the ones that came early (PULL_ERR_AGAIN) and opening its inbox again
 * after a restart, as daemon/dyads.c does. Same seed, same run.
 */
#ifndef PULL_SIM_DYAD_H
#define PULL_SIM_DYAD_H

#include <stdbool.h>
#include <stdint.h>

struct sim_dyad_config {
    uint64_t seed;
    unsigned nodes;
    unsigned dyads;
    uint32_t tick_s;           /* the people look at their dyads this often */
    uint32_t horizon_s;        /* give up after this much simulated time */
    uint32_t online_mean_s;    /* mean online session */
    uint32_t offline_mean_s;   /* mean offline period */
    unsigned nat_pct;          /* % of nodes that accept no incoming connection */
    uint32_t mail_ttl_s;       /* expiry of each mail item (<= MAIL_TTL_MAX) */
    uint32_t propose_window_s; /* proposals are spread over this span */
    bool verbose;
};

struct sim_dyad_result {
    unsigned dyads;
    unsigned completed;     /* both sides completed */
    unsigned closed_other;  /* both sides closed otherwise */
    unsigned stuck;         /* still open on some side at the end */
    double mean_complete_s; /* proposal to both sides completed, over completed dyads */
    double max_complete_s;
    uint64_t sim_s;        /* simulated time used */
    uint64_t msgs;         /* dyad messages sealed and posted */
    uint64_t delivered;    /* items handed to their recipient (MAIL actions) */
    uint64_t direct;       /* ... brought by their sender */
    uint64_t relayed;      /* ... brought by a third node */
    uint64_t held;         /* messages that arrived early and were held */
    uint64_t duplicates;   /* messages received again (harmless) */
    uint64_t errors;       /* anything else refused: must be 0 */
    uint64_t expired;      /* dyads that expired on some side: must be 0 */
    uint64_t restarts;     /* node restarts */
    uint64_t attestations; /* attestations built and verified */
    /* the engines' counters, summed over every run of every node */
    uint64_t mail_in;       /* mail items received */
    uint64_t mail_carried;  /* items kept to carry for others */
    uint64_t mail_refused;  /* refused for quota or expiry */
    uint64_t mail_bad;      /* failed their checks: must be 0 */
    uint64_t mail_swept;    /* expired items removed */
    uint64_t peers_dropped; /* peers dropped for protocol errors: must be 0 */
    uint64_t mail_msgs;     /* MSG_MAIL and MSG_MAIL_IHAVE on the wire */
    uint64_t mail_bytes;
    uint64_t wire_msgs; /* every message on the wire */
    uint64_t wire_bytes;
    uint64_t connections; /* connections established */
};

/* sim_dyad_config_default: 24 nodes, 100 dyads, people looking every 10 minutes, 120 days
 * at most, online 3 h / offline 9 h on average, 40% behind NAT, mail TTL 5 days, proposals
 * over 10 days, seed 1. */
void sim_dyad_config_default(struct sim_dyad_config *cfg);

/* sim_dyad_run runs one simulation. Returns 0 (whatever the outcome, which is in res) or
 * a PULL_ERR_* if the simulation itself failed (bad config, allocation, crypto). */
int sim_dyad_run(const struct sim_dyad_config *cfg, struct sim_dyad_result *res);

#endif
