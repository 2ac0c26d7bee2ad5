/*
 * dyads_int: what the dyad service's two rooms share (internal to daemon/dyads*.c;
 * dyads.h is the manual).
 *
 * The rooms.
 *   dyads.c      the service: persisting a transition and reloading after a failed
 *                commit, the events of a change (watchers, attestations), sealing and
 *                sending my messages, applying the peer's (or holding them for an earlier
 *                one), the deadline timer, start, stop and the counters.
 *   dyads_keep.c what is kept: the dyads in memory and their index (by id, by counterpart),
 *                the caps on strangers' proposals, the deletion of closed dyads.
 *   dyads_cmd.c  what the control server asks: the dyad.* commands, the dyad map they
 *                answer with, and the author statistics.
 * A command of mine goes through the same steps as a peer's message: change the dyad,
 * dyads_persist, dyads_send its message, dyads_changed; only the service's room knows how
 * each step is done.
 */
#ifndef PULL_DYADS_INT_H
#define PULL_DYADS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "daemon/dyads.h"
#include "proto/mail.h"

#define DYADS_HELD_MAX 64 /* peer messages held in memory for an earlier one */

struct dyads_held {
    uint8_t dyad[DYAD_ID_BYTES]; /* zero: not yet known (impossible: PROPOSEs aren't held) */
    uint8_t *p;
    size_t n;
};

/* My dyads with one counterpart, in any state and either role (dyads_keep.c's index). */
struct dyads_by {
    uint8_t key[32];
    struct dyad **v; /* NULL: an empty slot of the table */
    uint32_t n, cap;
};

struct dyads {
    struct node *n;
    struct sync *sync;
    struct people *people; /* names, handles and trust (may be NULL) */
    uv_timer_t timer;
    bool timer_init;
    bool booted; /* the start-up work of the first tick is done */
    struct dyad_timeouts t;
    struct dyad **v; /* my dyads, owned; any order: only dyads_keep.c adds, removes or moves */
    size_t len, cap;
    size_t nopen;                            /* of which open */
    uint8_t hkey[crypto_shorthash_KEYBYTES]; /* the index's hash key, drawn at start */
    uint32_t *ids;                           /* by id: positions + 1 in v (0: empty slot) */
    size_t ids_cap;
    struct dyads_by *peers; /* by counterpart */
    size_t peers_cap, peers_len;
    uint32_t refuse_lines;                /* dyads_refused's rate limit: lines in the window, */
    uint64_t refuse_log_ms, refuse_quiet; /* its start, refusals not logged since */
    struct dyads_held held[DYADS_HELD_MAX];
    size_t nheld;
    struct dyads_stats st;
    uint8_t plain[MAIL_PLAIN_MAX]; /* scratch (too big for the stack) */
};

/* ---- dyads_keep.c ---- */

/* dyads_keep_init draws the index's hash key and makes the empty tables; dyads_keep_release
 * frees every dyad and the tables. */
int dyads_keep_init(struct dyads *ds);
void dyads_keep_release(struct dyads *ds);

/* dyads_find returns my dyad with this id (and its index in ds->v if idx is not NULL), or
 * NULL. */
struct dyad *dyads_find(struct dyads *ds, const uint8_t id[static DYAD_ID_BYTES], size_t *idx);

/* dyads_by_peer returns my dyads with counterpart key, or NULL if there are none. */
const struct dyads_by *dyads_by_peer(const struct dyads *ds, const uint8_t key[static 32]);

/* dyads_add appends d to ds->v and indexes it (ds owns it from then on). Returns 0 or
 * PULL_ERR_NOMEM (d is still the caller's). */
int dyads_add(struct dyads *ds, struct dyad *d);

/* dyads_remove_at frees the dyad at index i and moves the last one into its place. */
void dyads_remove_at(struct dyads *ds, size_t i);

/* dyads_replace_at puts d (a version of the dyad at index i: same id) in its place and frees
 * the old one. */
void dyads_replace_at(struct dyads *ds, size_t i, struct dyad *d);

/* dyads_recount counts the open dyads again (ds->nopen follows dyads_add, dyads_remove_at
 * and dyads_changed; a dyad changed in memory and then reloaded is counted again). */
void dyads_recount(struct dyads *ds);

/* dyads_unanswered: was d proposed to me by someone else, and never accepted by me? Only
 * such dyads can a stranger make, so only they are capped. */
bool dyads_unanswered(struct dyads *ds, const struct dyad *d);

/* dyads_refused counts a peer message refused (msgs_refused) and logs the line of fmt, at
 * most 8 lines every 10 s (the next line logged says how many were not): a stranger can't
 * flood the log. */
void dyads_refused(struct dyads *ds, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* dyads_admit_proposal: may proposer open one more dyad with me? Not if
 * max_dyads_per_proposer of its proposals await my answer (open and unanswered), or
 * max_dyads_open dyads are open in all
 * (PULL_ERR_QUOTA, counted as proposals_capped and logged with dyads_refused unless
 * quiet). Changes nothing. Returns 0 or PULL_ERR_QUOTA. */
int dyads_admit_proposal(struct dyads *ds, const uint8_t proposer[static 32], bool quiet);

/* dyads_make_room: a proposal of proposer (verified) is about to be added: if it holds
 * max_dyads_per_proposer closed proposals I never accepted, the oldest of those is deleted
 * (proposing and cancelling cost nothing, so they count as its share too). */
void dyads_make_room(struct dyads *ds, const uint8_t proposer[static 32]);

/* dyads_gc_due returns when d may be deleted (unix s): 0 while it is open; for a closed one
 * retention_s after its last change, for a completed one DYAD_ATTEST_TTL after (when its
 * attestation expires) if that is later. */
uint64_t dyads_gc_due(const struct dyad *d, uint32_t retention_s);

/* dyads_delete_at deletes the dyad at index i from memory and (through the node's batch)
 * from the store, counted as gc_deleted. */
void dyads_delete_at(struct dyads *ds, size_t i, const char *why);

/* dyads_gc deletes the closed dyads due at now_s (dyads_gc_due), then, if strangers' closed
 * proposals (dyads_unanswered) number more than max_dyads_open, the oldest of them. Returns
 * how many it deleted. Indexes into ds->v are not valid across it. */
size_t dyads_gc(struct dyads *ds, uint64_t now_s);

/* dyads_load_admit: d (not yet added) was read from the store at start: true to keep it. A
 * dyad due for deletion, or an open proposal beyond the caps (a proposer keeps its oldest
 * max_dyads_per_proposer; beyond max_dyads_open the later ones go), is deleted from the
 * store (false; d is still the caller's); a newer proposal of the same proposer may be
 * deleted from memory and the store to make room for d. */
bool dyads_load_admit(struct dyads *ds, struct dyad *d, uint64_t now_s);

/* ---- dyads.c ---- */

/* dyads_deliver applies one opened dyad message addressed to me (a PROPOSE starts a dyad,
 * under the caps; anything else goes to its dyad, or is held if it came early). quiet: a
 * replay at start (refusals are neither logged nor counted again). */
void dyads_deliver(struct dyads *ds, const uint8_t *p, size_t n, bool quiet);

/* dyads_tick_at runs the timer's work at now_s: the first time, the start-up work; then
 * expires the dyads whose deadline passed and deletes those due (dyads_gc). */
void dyads_tick_at(struct dyads *ds, uint64_t now_s);

/* dyads_is_me: is key this node's? dyads_my_role: this node's side of d. */
bool dyads_is_me(struct dyads *ds, const uint8_t key[static 32]);
enum dyad_role dyads_my_role(struct dyads *ds, const struct dyad *d);

/* dyads_persist queues d's write to the dyads table for the node's next commit (if that
 * commit fails, d is reloaded from the store then). Callers that answer or send on the
 * dyad do so once it is committed (node_after_commit). Returns 0 or the error (logged). */
int dyads_persist(struct dyads *ds, const struct dyad *d);

/* dyads_reload replaces the dyad at index i by its stored version (after a failed
 * write), or drops it if it was never stored. */
void dyads_reload(struct dyads *ds, size_t i);

/* dyads_send seals my dyad message msg[0..n) of d to the counterpart and hands the item
 * to sync once the node's next commit (the transition's) is done. */
void dyads_send(struct dyads *ds, const struct dyad *d, const uint8_t *msg, size_t n);

/* dyads_pack_event packs d's map for a watch event, with "change": what happened (e.g.
 * "ack by peer", "note by me", "expired": dyads_last_change). */
void dyads_pack_event(struct dyads *ds, const struct dyad *d, const char *change,
                      msgpack_packer *pk);
void dyads_last_change(struct dyads *ds, const struct dyad *d, char *out, size_t n);

/* dyads_changed follows a stored change of d from state `before` (0 for a new dyad): logs
 * it with why, tells watchers, attests a completed dyad, re-arms the timer. */
void dyads_changed(struct dyads *ds, const struct dyad *d, enum dyad_state before, const char *why);

#endif
