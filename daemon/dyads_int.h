/*
 * dyads_int: what the dyad service's two rooms share (internal to daemon/dyads*.c;
 * dyads.h is the manual).
 *
 * The rooms.
 *   dyads.c      the service: the dyads in memory and in the store, persisting a
 *                transition and reloading after a failed commit, the events of a change
 *                (watchers, attestations), sealing and sending my messages, applying the
 *                peer's (or holding them for an earlier one), the deadline timer, start,
 *                stop and the counters.
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

#include "daemon/dyads.h"
#include "proto/mail.h"

#define DYADS_HELD_MAX 64 /* peer messages held in memory for an earlier one */

struct dyads_held {
    uint8_t dyad[DYAD_ID_BYTES]; /* zero: not yet known (impossible: PROPOSEs aren't held) */
    uint8_t *p;
    size_t n;
};

struct dyads {
    struct node *n;
    struct sync *sync;
    struct people *people; /* names, handles and trust (may be NULL) */
    uv_timer_t timer;
    bool timer_init;
    bool booted; /* the start-up work of the first tick is done */
    struct dyad_timeouts t;
    struct dyad **v; /* my dyads, owned; any order (dyad.list sorts them) */
    size_t len, cap;
    struct dyads_held held[DYADS_HELD_MAX];
    size_t nheld;
    struct dyads_stats st;
    uint8_t plain[MAIL_PLAIN_MAX]; /* scratch (too big for the stack) */
};

/* dyads_add appends d to ds->v (ds owns it from then on). Returns 0 or PULL_ERR_NOMEM
 * (d is still the caller's). */
int dyads_add(struct dyads *ds, struct dyad *d);

/* dyads_remove_at frees the dyad at index i and moves the last one into its place. */
void dyads_remove_at(struct dyads *ds, size_t i);

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
