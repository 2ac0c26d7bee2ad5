/*
 * sim: a deterministic network simulator for pull's sans-I/O engines.
 *
 * N nodes live in one process. Each node is pull's protocol engine (proto/syncer.h: gossip,
 * reconciliation, bulk catch-up, mail) driven exactly as pulld's daemon/sync.c drives it
 * (actions drained after every call, one timer per node), with a record set that plays the
 * store (offer / has / fetch / each_id / each_key) and key-value tables that play LMDB's
 * peers and mail tables.
 *
 * Time is simulated: a priority queue of events ordered by (time, sequence number), so a
 * run is a pure function of the config (seed included). Each node draws randomness from
 * its own env_seeded (lib/env.h) derived from the seed and its index; the network draws
 * from a separate seeded stream.
 *
 * The network: connections are set up in 2 x latency (dial + handshake) and then carry
 * messages in order after latency + uniform jitter (FIFO per direction, like TCP), each
 * lost with probability `loss`. A dial to a dead or unreachable node fails after
 * connect_fail_ms. Killing a node drops all its connections (its peers notice after
 * detect_ms); partitions are groups of nodes that cannot reach each other (existing links
 * across groups break, noticed after detect_ms). A killed node crashes: it says goodbye to
 * no one. A restarted node gets a fresh engine with the same key, its record set (the
 * store survives), its bootstrap peers and what its engine wrote to its tables (the peers
 * it saw, the mail it held). The simulator counts messages and bytes per node and per
 * message type.
 *
 * Node keys are the node's index followed by a hash (cheap, and sim_node_of is an array
 * lookup), or with cfg.idents real Ed25519 identities (sim_ident), for the scenarios whose
 * nodes sign and seal (mail, dyads). A node behind NAT (sim_set_nat) accepts no incoming
 * connection: dials to it fail after connect_fail_ms, and it reaches the others only
 * through the connections it opens.
 */
#ifndef PULL_SIM_H
#define PULL_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/ident.h"
#include "proto/gossip.h"
#include "proto/syncer.h"

#define SIM_TYPES 64 /* message types counted (0..63) */

struct sim;

struct sim_config {
    uint32_t nodes;
    uint64_t seed;
    uint32_t latency_ms;         /* one-way, default 50 */
    uint32_t jitter_ms;          /* extra uniform delay 0..jitter, default 0 */
    double loss;                 /* message loss probability, default 0 */
    uint32_t connect_fail_ms;    /* a dial to a dead/unreachable node fails after, default 1000 */
    uint32_t detect_ms;          /* peers notice a dead node / broken link after, default 100 */
    uint32_t envelope_bytes;     /* size of generated records, default 800 */
    bool idents;                 /* Ed25519 identities as node keys (sim_ident), default false */
    bool nat_unsaid;             /* nodes behind NAT are older nodes whose HELLO says nothing
                                    of their reach: peers see their port and dial them (and
                                    fail). Default false: their HELLO says reach local, and a
                                    peer reports them with port 0 (msg_hello_dial_port) */
    struct syncer_config engine; /* each node's engine (syncer_config_default, reconciliation
                                    every 10 s, a recon cache of 1024 symbols) */
};

/* Message counters (all nodes, or one node). */
struct sim_counters {
    uint64_t msgs[SIM_TYPES];
    uint64_t bytes[SIM_TYPES];
    uint64_t msgs_total, bytes_total;
    uint64_t lost;         /* dropped by loss, broken links or partitions */
    uint64_t connections;  /* connections established (all nodes only) */
    uint64_t dials_failed; /* dials that failed (all nodes only) */
};

/* Spread of one record among the live nodes. */
struct sim_spread {
    uint32_t alive;         /* live nodes now */
    uint32_t reached;       /* live nodes holding the record (origin included) */
    uint64_t receipts;      /* envelopes of this record received, duplicates included */
    double p50_ms, p100_ms; /* arrival time after publication, over reached non-origin */
    double rmr;             /* receipts / (alive - 1) - 1 */
};

/* Mail addressed to a node (the engine's MAIL action), for the dyad scenarios: from is
 * the node that brought it (-1 if unknown). Called while the simulator executes node's
 * actions: it may read the engines but must not call into them. */
struct sim_mail_hook {
    void (*on_mail)(void *ctx, uint32_t node, int from, const uint8_t *item, size_t len);
    /* known (may be NULL): what node's host knows (the engine's known(): authors of its
     * records, people of its dyads); replaces sim_set_known */
    bool (*known)(void *ctx, uint32_t node, const uint8_t key[32]);
    void *ctx;
};

/* Highest values seen since sim_counters_reset (bounded queues). */
struct sim_peaks {
    uint64_t actions;       /* actions drained from one engine after one call */
    uint64_t conn_inflight; /* bytes sent on one connection and not yet flushed */
};

/* sim_config_default fills c with the defaults above, 1000 nodes and seed 1. */
void sim_config_default(struct sim_config *c);

/* sim_new creates the simulator with every node stopped. Returns 0 or PULL_ERR_*. */
int sim_new(const struct sim_config *c, struct sim **out);
void sim_free(struct sim *s);

/* sim_set_mail installs the mail hook (before any node starts). */
void sim_set_mail(struct sim *s, const struct sim_mail_hook *hook);

/* sim_set_known: with only_nodes, the engines' host knows (known()) exactly the keys of the
 * simulation's nodes, so mail from or for made-up keys is a stranger's; without, everyone
 * (the default). Before any node starts. */
void sim_set_known(struct sim *s, bool only_nodes);

uint64_t sim_now(const struct sim *s);
uint32_t sim_nodes(const struct sim *s);

/* sim_bootstrap starts every node: node i at i * spacing_ms, knowing `contacts` random
 * nodes started before it (node 0 knows nobody). */
void sim_bootstrap(struct sim *s, uint32_t contacts, uint32_t spacing_ms);

/* sim_set_bootstrap gives node its bootstrap peers (fed to its engine at every start),
 * without starting it: sim_restart starts a node that never ran. */
void sim_set_bootstrap(struct sim *s, uint32_t node, const uint32_t *peers, uint32_t n);

/* sim_bootstrap_chain starts every node like sim_bootstrap, but node i knows only node
 * i - 1: the overlay must mix itself from a line. */
void sim_bootstrap_chain(struct sim *s, uint32_t spacing_ms);

/* sim_run_until processes events up to time t (inclusive) and sets the clock to t. */
void sim_run_until(struct sim *s, uint64_t t);
void sim_run_for(struct sim *s, uint64_t ms);

/* sim_publish creates a new valid record at node `node` (stored there) and publishes it.
 * Returns the record's index (>= 0) or a PULL_ERR_*. */
int sim_publish(struct sim *s, uint32_t node);

/* sim_make_record creates a valid record held by no node yet (give it with sim_give);
 * returns its index. */
int sim_make_record(struct sim *s, uint32_t origin);

/* sim_make_invalid creates an envelope that offer() will call INVALID; returns its index. */
int sim_make_invalid(struct sim *s);

/* sim_record copies out the envelope of record r (pointer valid until sim_free). */
void sim_record(const struct sim *s, uint32_t r, const uint8_t **env, size_t *len,
                const uint8_t **id);
uint32_t sim_records(const struct sim *s);

/* sim_find_record maps an id to its record index, or -1. */
int sim_find_record(const struct sim *s, const uint8_t id[GOSSIP_ID_BYTES]);

/* sim_complete_nodes counts the live nodes that hold every valid record. */
uint32_t sim_complete_nodes(const struct sim *s);

/* sim_has reports whether node holds record r. */
bool sim_has(const struct sim *s, uint32_t node, uint32_t r);
/* sim_node_records returns how many records node holds. */
uint32_t sim_node_records(const struct sim *s, uint32_t node);

void sim_spread(const struct sim *s, uint32_t r, struct sim_spread *out);

bool sim_alive(const struct sim *s, uint32_t node);
void sim_kill(struct sim *s, uint32_t node);
void sim_restart(struct sim *s, uint32_t node);

/* sim_partition puts node i in group group[i]; nodes of different groups cannot reach each
 * other. sim_heal puts everyone back in group 0. */
void sim_partition(struct sim *s, const uint32_t *group);
void sim_heal(struct sim *s);

/* sim_send sends raw message bytes from node to peer over their connection (copied).
 * Returns 0, or PULL_ERR_NOT_FOUND if they are not connected. Used by tests that play a
 * hostile node. */
int sim_send(struct sim *s, uint32_t node, uint32_t peer, const uint8_t *msg, size_t len);

/* Nodes played by a test. sim_set_raw makes node a raw node (killing its engine if it
 * runs; addr, if not NULL, replaces its address: put strangers in one /16): it has no
 * engine, is never started, can be dialed, and its messages are whatever the test sends
 * with sim_send. sim_raw_connect dials target from raw (up after 2 x latency, as any dial);
 * sim_raw_close closes it; sim_raw_received counts the bytes delivered to raw.
 * sim_set_addr changes a node's address before it starts; sim_addr reads it. */
void sim_set_raw(struct sim *s, uint32_t node, const char *addr);
int sim_raw_connect(struct sim *s, uint32_t raw, uint32_t target);
void sim_raw_close(struct sim *s, uint32_t raw, uint32_t target);
uint64_t sim_raw_received(const struct sim *s, uint32_t raw);
void sim_set_addr(struct sim *s, uint32_t node, const char *addr);
const char *sim_addr(const struct sim *s, uint32_t node);

/* sim_dials_to counts the CONNECT actions of every engine toward addr. */
uint64_t sim_dials_to(const struct sim *s, const char *addr);

/* sim_connected reports whether node has an established connection to peer. */
bool sim_connected(const struct sim *s, uint32_t node, uint32_t peer);

/* sim_engine returns node's engine (NULL if dead) with its clock set to now; sim_gossip its
 * gossip engine. After calling into either directly, call sim_after so the simulator
 * executes the actions. */
struct syncer *sim_engine(struct sim *s, uint32_t node);
struct gossip *sim_gossip(struct sim *s, uint32_t node);
void sim_after(struct sim *s, uint32_t node);

/* sim_engine_stats adds up the counters of every live node's engine. */
void sim_engine_stats(const struct sim *s, struct syncer_stats *out);

/* sim_key returns node's public key; sim_node_of maps a key back (-1 if unknown). */
const uint8_t *sim_key(const struct sim *s, uint32_t node);
int sim_node_of(const struct sim *s, const uint8_t key[GOSSIP_KEY_BYTES]);

/* sim_ident returns node's identity (cfg.idents), else NULL. */
const struct ident *sim_ident(const struct sim *s, uint32_t node);

/* sim_wall_s returns the nodes' wall clock (unix seconds) now. */
uint64_t sim_wall_s(const struct sim *s);

/* sim_set_nat puts node behind NAT (or takes it out): dials to it fail from now on;
 * connections already open stay. Its new connections tell the peer it can't be dialed
 * (HELLO reach local, seen from outside: port 0) unless cfg.nat_unsaid. */
void sim_set_nat(struct sim *s, uint32_t node, bool nat);
bool sim_nat(const struct sim *s, uint32_t node);

/* sim_mute makes node a stuck reader: messages to it are neither delivered nor flushed
 * (their senders' backlogs grow), as when a peer stops reading its socket. */
void sim_mute(struct sim *s, uint32_t node, bool muted);

/* sim_give stores record r at node as if it had been received (no gossip). */
void sim_give(struct sim *s, uint32_t node, uint32_t r);

/* Counters: all nodes, one node's sent messages, or the messages sent to one node (lost
 * ones included). sim_counters_reset zeroes them all, and the peaks. */
void sim_counters(const struct sim *s, struct sim_counters *out);
void sim_node_counters(const struct sim *s, uint32_t node, struct sim_counters *out);
void sim_node_received(const struct sim *s, uint32_t node, struct sim_counters *out);
void sim_counters_reset(struct sim *s);
void sim_peaks(const struct sim *s, struct sim_peaks *out);

/* sim_active_stats reports the min / mean / max active view size over live nodes and the
 * number of live nodes that can reach every other live node over active links
 * (`connected` == alive means the overlay is one component). */
void sim_overlay(const struct sim *s, uint32_t *min, double *mean, uint32_t *max,
                 uint32_t *largest_component);

/* sim_eccentricity returns the largest number of active-link hops from origin to any
 * live node it can reach: times the link latency, the least time any protocol needs to
 * bring a record from origin to everyone over this overlay. */
uint32_t sim_eccentricity(const struct sim *s, uint32_t origin);

/* sim_view_histogram counts live nodes by active view size (hist has
 * GOSSIP_ACTIVE_MAX + 1 entries). */
void sim_view_histogram(const struct sim *s, uint32_t *hist);

/* sim_env_nodes returns the node count to use in tests: PULL_SIM_NODES if set, else
 * `normal`, or `sanitized` in a sanitizer build. */
uint32_t sim_env_nodes(uint32_t normal, uint32_t sanitized);

/* ------------------------------------------------------------------ scenarios
 * Building blocks shared by the sim tests and `pull-bench sim` (tests/sim/sim_scenario.c).
 */

/* sim_random_alive returns a uniformly random live node (from the network's stream). */
uint32_t sim_random_alive(struct sim *s);

/* sim_build creates a simulator from c, starts the nodes one every spacing_ms, each
 * knowing 3 random earlier ones, and runs membership for settle_ms after the last start. */
int sim_build(const struct sim_config *c, uint32_t spacing_ms, uint32_t settle_ms,
              struct sim **out);

/* Aggregate of several publications. */
struct sim_summary {
    uint32_t records;      /* measured publications */
    uint32_t complete;     /* ... that reached every live node */
    double min_fraction;   /* smallest reached / alive over them */
    double p50_ms;         /* mean over records of the median arrival time */
    double p100_ms;        /* max over records of the last arrival time */
    double rmr;            /* mean relative message redundancy */
    double bytes_per_node; /* dissemination bytes (types 20-24) sent per live node, per
                              record */
    double msgs_per_node;  /* dissemination messages sent per live node, per record */
};

/* sim_measure publishes `count` records, one at a time from random live nodes, waiting
 * wait_ms after each, and summarises their spread. */
void sim_measure(struct sim *s, uint32_t count, uint32_t wait_ms, struct sim_summary *out);

/* sim_kill_fraction kills round(frac * live) random live nodes at once; returns how many. */
uint32_t sim_kill_fraction(struct sim *s, double frac);

/* Outcome of sim_partition_heal. */
struct sim_partition_result {
    uint32_t nodes;
    uint32_t component_split;  /* largest overlay component while partitioned */
    bool sides_isolated;       /* records stayed on their side, covering most of it */
    uint32_t complete;         /* nodes holding every record at the end */
    uint64_t heal_ms;          /* heal -> every node complete (UINT64_MAX: never) */
    uint32_t component_healed; /* largest overlay component at the end */
};

/* sim_partition_heal builds a network from c, splits it into two halves for 20 s + 5
 * publications per side + 90 s (longer than recent_ms), heals it, and waits up to
 * max_wait_ms for every node to hold every record. stats (may be NULL) gets the engines'
 * counters at the end. */
int sim_partition_heal(const struct sim_config *c, struct syncer_stats *stats, uint32_t max_wait_ms,
                       struct sim_partition_result *out);

/* Outcome of sim_catchup. */
struct sim_catchup_result {
    uint32_t records;     /* records every other node holds */
    uint32_t had;         /* records the joining node held when it started */
    uint32_t received;    /* records it received */
    uint64_t complete_ms; /* its start -> it holds every record (UINT64_MAX: never) */
    uint64_t wire_bytes;  /* bytes it sent and was sent meanwhile (every message type) */
    uint64_t wire_msgs;
    uint64_t record_bytes;  /* the received records' own bytes */
    double ratio;           /* wire_bytes / record_bytes */
    uint64_t bulk_msgs;     /* RECON_BULK it sent */
    uint64_t recon_reqs;    /* RECON_REQ it sent and was sent */
    uint64_t records_msgs;  /* RECORDS messages it was sent */
    uint64_t records_extra; /* RECORDS bytes it was sent beyond the records' own (framing,
                               envelopes sent again, records in flight on a link closed) */
    struct syncer_stats st; /* its engine's counters */
};

/* sim_catchup builds a network of c->nodes - 1 nodes holding `records` records each (filled
 * before they start), lets it settle, then starts the last node, which holds the oldest
 * `had` of them and knows 3 random nodes, and runs until it holds every record (at most
 * max_wait_ms): RECON_BULK when had <= MSG_BULK_MAX, reconciliation otherwise. */
int sim_catchup(const struct sim_config *c, uint32_t records, uint32_t had, uint32_t max_wait_ms,
                struct sim_catchup_result *out);

/* Outcome of sim_storm. */
struct sim_storm_result {
    uint32_t nodes;
    uint32_t restarted;   /* nodes down and restarted at the same instant */
    uint32_t records;     /* records published, some while they were down */
    uint64_t converge_ms; /* restart -> every node holds every record and the overlay is one
                             component (UINT64_MAX: never) */
    uint32_t complete;    /* nodes holding every record at the end */
    uint32_t component;   /* largest overlay component at the end */
    uint32_t view_min;    /* smallest active view at the end */
    uint64_t msgs, bytes; /* on the wire from the restart to convergence */
    uint64_t connections; /* established meanwhile */
    uint64_t dials_failed;
    struct syncer_stats st; /* the engines' counters at the end */
    struct sim_peaks peaks; /* from the restart on */
};

/* sim_storm builds a network from c, publishes 3 records, kills round(frac * n) nodes at
 * once, publishes 5 more while they are down (longer than recent_ms), then restarts them
 * all at the same instant, every one reconnecting to its known peers, and runs until the
 * network has converged (at most max_wait_ms). With groups > 1, it is instead a partition
 * into that many groups (of consecutive nodes) that heals at once. */
int sim_storm(const struct sim_config *c, double frac, uint32_t groups, uint32_t max_wait_ms,
              struct sim_storm_result *out);

/* sim_print_summary prints a one-line human summary. */
void sim_print_summary(const char *label, const struct sim_summary *m);

#endif
