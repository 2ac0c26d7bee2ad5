/*
 * recon_int: what the reconciliation rooms share (internal to proto/recon*.c; recon.h is
 * the manual).
 *
 * The rooms.
 *   recon.c      the engine: the event queue, sessions, the symbols of the local set at a
 *                session's snapshot, the initiator's and the responder's handlers, the
 *                sizing policy, dispatch and timers.
 *   recon_set.c  the local set: its cache of coded symbols (dense [0, k) and the sparse
 *                estimator samples), kept up to date on add and remove, and the journal of
 *                changes that lets a session see the set as of its snapshot (pins).
 *   recon_msg.c  the codec of the RECON_* messages (recon_msg_decode, recon_msg_encode).
 *
 * The engine reads the set's cache and journal directly (struct recon_set below) to serve
 * symbols at a snapshot; it changes the set only through the functions below and recon.h's.
 */
#ifndef PULL_RECON_INT_H
#define PULL_RECON_INT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/recon.h"

struct jent {
    uint8_t id[RIBLT_ID_LEN];
    int dir;
};

struct recon_set {
    const struct pull_env *env; /* allocator of the set */
    uint32_t k;                 /* dense cache [0, k), k >= 1 */
    struct riblt_sym *dense;
    unsigned sp_first; /* estimator samples j >= sp_first live in sparse[] */
    struct riblt_sym sparse[RIBLT_EST_N];
    uint64_t n;      /* ids in the set */
    uint64_t seq;    /* changes so far; seq == jr_base + jr_len */
    struct jent *jr; /* changes [jr_base, seq), kept while sessions are pinned */
    size_t jr_len, jr_cap;
    uint64_t jr_base;
    uint32_t jr_max;
    uint64_t *pins; /* snapshot seqs of running sessions (a multiset) */
    size_t npins, pins_cap;
};

/* Pins the set's current state for a session: changes made from now on are journalled
 * until recon_set_unpin. Returns the snapshot's seq, or UINT64_MAX when out of memory. */
uint64_t recon_set_pin(struct recon_set *s);

/* Lets go of the snapshot `pin` (one pin of that seq), and forgets the journal entries no
 * remaining pin needs. */
void recon_set_unpin(struct recon_set *s, uint64_t pin);

/* Undoes, in acc, every change made to the set after the snapshot `pin` (symbols hashed
 * with key). Returns 0, or PULL_ERR_AGAIN when the journal no longer reaches back to pin. */
int recon_set_unapply_since(const struct recon_set *s, uint64_t pin,
                            const uint8_t key[RIBLT_KEY_LEN], const struct riblt_acc *acc);

#endif
