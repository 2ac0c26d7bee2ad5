/*
 * dyad_sim: a deterministic simulation of dyads under churn, shared by `pull-bench dyad`
 * (bench/bench_dyad.c) and the ctest sim.test_dyad (tests/sim/test_dyad.c, which includes
 * bench/dyad_sim.c so both run the very same driver).
 *
 * N nodes, each a person with an identity, go online and offline at random (exponential
 * sessions). D dyads are planned between random pairs: the proposer proposes at a random
 * time, and each side's human acts (accept, done, ack) a random while after noticing the
 * last change, and only while its node is online. Every dyad message travels as a sealed
 * mail item (proto/mail.h): handed straight to the peer when both are online and can
 * connect (not both behind NAT), otherwise stored by the sender and spread by gossip rounds
 * (MSG_MAIL_IHAVE with have/want, then MSG_MAIL, through the real codecs) between online
 * nodes that can connect, under the relay quotas, until it reaches the recipient or
 * expires. Recipients open the mail and apply the message to their own dyad object,
 * holding messages that arrive early (PULL_ERR_AGAIN). A node going offline persists its
 * dyads (dyad_encode) and restores them when it comes back (dyad_decode), like a restart.
 * When two sides meet directly, each resends the messages the other lacks (a model of the
 * daemon's resend-on-connect). Everything draws from one seeded env: same seed, same run.
 */
#ifndef PULL_DYAD_SIM_H
#define PULL_DYAD_SIM_H

#include <stdbool.h>
#include <stdint.h>

struct dyad_sim_config {
    uint64_t seed;
    unsigned nodes;
    unsigned dyads;
    uint32_t tick_s;           /* simulated seconds per step */
    uint32_t horizon_s;        /* give up after this much simulated time */
    uint32_t online_mean_s;    /* mean online session */
    uint32_t offline_mean_s;   /* mean offline period */
    unsigned nat_pct;          /* % of nodes that accept no incoming connection */
    unsigned fanout;           /* gossip peers per online node per round */
    uint32_t gossip_every_s;   /* gossip round period */
    uint32_t mail_ttl_s;       /* expiry of each mail item */
    uint32_t propose_window_s; /* proposals are spread over this span */
    bool verbose;
};

struct dyad_sim_result {
    unsigned dyads;
    unsigned completed;     /* both sides completed */
    unsigned closed_other;  /* both sides closed otherwise */
    unsigned stuck;         /* still open on some side at the end */
    double mean_complete_s; /* proposal to both sides completed, over completed dyads */
    double max_complete_s;
    uint64_t sim_s;         /* simulated time used */
    uint64_t msgs;          /* dyad messages made */
    uint64_t direct;        /* items handed straight to the recipient */
    uint64_t mailed;        /* items left for store-and-forward */
    uint64_t relayed;       /* item transfers between nodes by gossip */
    uint64_t resent;        /* messages resent on direct contact */
    uint64_t quota_refused; /* items a relay refused for quota */
    uint64_t held;          /* messages that arrived early and were held */
    uint64_t duplicates;    /* messages received again (harmless) */
    uint64_t errors;        /* anything else refused: must be 0 */
    uint64_t expired;       /* dyads that expired on some side: must be 0 */
    uint64_t restarts;      /* dyad sets persisted and restored */
    uint64_t attestations;  /* attestations built and verified */
};

/* dyad_sim_config_default: 24 nodes, 100 dyads, 10-minute ticks, 120 days at most,
 * online 3 h / offline 9 h on average, 40% behind NAT, fanout 2 every 30 minutes, mail TTL
 * 5 days, proposals over 10 days, seed 1. */
void dyad_sim_config_default(struct dyad_sim_config *cfg);

/* dyad_sim_run runs one simulation. Returns 0 (whatever the outcome, which is in res) or
 * a PULL_ERR_* if the simulation itself failed (allocation, crypto). */
int dyad_sim_run(const struct dyad_sim_config *cfg, struct dyad_sim_result *res);

#endif
