/*
 * trust: the personal trust graph of completed exchanges, seen from one person ("me").
 *
 * People are nodes, completed dyads are undirected edges. A piece of evidence is one
 * completed dyad between two keys, under an id the caller chooses (the attestation record's
 * id, or the dyad's id for one of my own dyads) and the dyad it is about (the 16 bytes an
 * attestation carries as its slot): both attestations of one dyad are two pieces of evidence
 * for one edge, and the edge lasts as long as one of them does.
 *
 * Trust is personal and starts from me: an author's distance is the number of hops of the
 * shortest chain of completed dyads from me to them (1: someone I dealt with; 2: someone
 * they dealt with; ...), up to TRUST_HOPS_MAX; beyond that, or with no chain at all, there
 * is no distance. So a clique of keys that attest each other gains nothing unless someone
 * reachable from me dealt with one of them: what a key says about itself, or what its
 * friends say, never reaches me by another way than through people I can reach.
 *
 * What a path proves, and what it doesn't (docs/DECISIONS.md says more): each hop is a
 * dyad whose two sides signed its terms and acknowledged it; a path says that the people
 * along it exchanged something with each other, nothing about how well, nor that one
 * person is not several keys (a key I reach can bring in every key it cosigned with).
 * Independent paths (sharing no one between me and the author) make it harder for one
 * person along the way to invent the rest: trust_independent counts them.
 *
 * Incremental. Adding evidence only ever shortens distances: trust_add relaxes them from the
 * new edge outward (work proportional to what changed). Removing evidence (an attestation
 * that expired) may lengthen them: the graph is marked and distances are recomputed from me
 * (one breadth-first pass, bounded by TRUST_HOPS_MAX) before the next question.
 *
 * Bounds: at most TRUST_NODES_MAX people and TRUST_EVIDENCE_MAX pieces of evidence
 * (PULL_ERR_QUOTA beyond). Hash tables are keyed with SipHash under a seed the caller gives
 * (random), so keys chosen by strangers can't make them degenerate.
 *
 * Pure: no I/O, no clock. Memory from the C library (PULL_ERR_NOMEM leaves the graph as it
 * was). One thread.
 */
#ifndef PULL_TRUST_H
#define PULL_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRUST_HOPS_MAX 6              /* distances beyond this are "no path" */
#define TRUST_NONE 255                /* trust_distance: no path within TRUST_HOPS_MAX */
#define TRUST_NODES_MAX (1u << 19)    /* people in the graph */
#define TRUST_EVIDENCE_MAX (1u << 20) /* pieces of evidence: ~70 MiB at most */
#define TRUST_INDEPENDENT_MAX 16      /* trust_independent counts up to this many */
#define TRUST_DYAD_BYTES 16

struct trust;

/* The ranking multipliers (thousandths, as lib/match.h's trust hook takes them) by distance
 * from me: 0 (me) and 1, 2, 3, 4..TRUST_HOPS_MAX, none. Chosen by measurement (pull-bench
 * relevance --trust, docs/DECISIONS.md "Trust"): they reorder results of close relevance
 * and leave clearly better matches first. */
#define TRUST_RANK_1 1000
#define TRUST_RANK_2 970
#define TRUST_RANK_3 950
#define TRUST_RANK_FAR 940
#define TRUST_RANK_NONE 920

/* trust_rank returns the multiplier for a distance (trust_distance's value). */
uint32_t trust_rank(unsigned distance);

/* trust_new makes a graph seen from me (32-byte key); seed keys its hash tables (give 16
 * random bytes). Returns 0 or PULL_ERR_NOMEM. */
int trust_new(const uint8_t me[static 32], const uint8_t seed[static 16], struct trust **out);

/* trust_free frees t; NULL does nothing. */
void trust_free(struct trust *t);

/* trust_add records evidence id (32 bytes) that a and b (a != b) completed dyad `dyad`.
 * Returns 1 if it is new, 0 if id was already recorded (nothing changes), PULL_ERR_INVAL if
 * a == b, PULL_ERR_QUOTA past the bounds, or PULL_ERR_NOMEM. */
int trust_add(struct trust *t, const uint8_t id[static 32], const uint8_t a[static 32],
              const uint8_t b[static 32], const uint8_t dyad[static TRUST_DYAD_BYTES]);

/* trust_remove forgets evidence id. Returns 1 if it was recorded, 0 if not. */
int trust_remove(struct trust *t, const uint8_t id[static 32]);

/* trust_has reports whether evidence id is recorded. */
bool trust_has(const struct trust *t, const uint8_t id[static 32]);

/* trust_distance returns key's distance from me: 0 for me, 1..TRUST_HOPS_MAX, or
 * TRUST_NONE. */
unsigned trust_distance(struct trust *t, const uint8_t key[static 32]);

/* trust_distance8 is trust_distance for a key known by its first 8 bytes, big-endian (as
 * lib/search.h gives authors to its hooks): for ranking, where a stranger would need about
 * 2^64 tries to make a key that shares those bytes with someone I trust. */
unsigned trust_distance8(struct trust *t, uint64_t key8);

/* trust_paths writes up to max shortest paths from me to key into paths: path i is
 * paths[i * (TRUST_HOPS_MAX) .. + distance - 1], the keys after me up to key itself. Paths
 * come in a stable order (by the keys along them). Returns how many were written (0 if key
 * has no distance, or is me). */
size_t trust_paths(struct trust *t, const uint8_t key[static 32], uint8_t (*paths)[32], size_t max);

/* trust_independent returns how many paths from me to key share nobody but me and key
 * (vertex-disjoint, within the people at most TRUST_HOPS_MAX from me), counted up to
 * TRUST_INDEPENDENT_MAX; 0 without a distance. Costs a few passes over the reachable
 * graph: for showing one author, not for ranking. Returns PULL_ERR_NOMEM on failure. */
int trust_independent(struct trust *t, const uint8_t key[static 32], unsigned *n);

/* trust_dyads returns how many distinct dyads a and b completed together (evidence
 * recorded). */
unsigned trust_dyads(const struct trust *t, const uint8_t a[static 32], const uint8_t b[static 32]);

/* trust_neighbors calls fn for each person key completed a dyad with (in no particular
 * order), with the number of distinct dyads; it stops when fn returns non-zero. */
void trust_neighbors(const struct trust *t, const uint8_t key[static 32],
                     int (*fn)(void *ctx, const uint8_t other[32], unsigned dyads), void *ctx);

struct trust_stats {
    size_t people;       /* keys in the graph (me included) */
    size_t edges;        /* pairs with evidence */
    size_t evidence;     /* pieces of evidence */
    size_t reachable;    /* people with a distance (me excluded) */
    uint64_t recomputes; /* full passes done after removals */
};

/* trust_get_stats fills st (distances brought up to date first). */
void trust_get_stats(struct trust *t, struct trust_stats *st);

#endif
