/*
 * dyads: pulld's dyad service - the node's dyads (proto/dyad) and the sealed mail that
 * carries their messages (proto/mail). node.h declares the lifecycle and the hooks that
 * node.c and sync.c call (dyads_start/stop/free, dyads_on_msg, dyads_on_peer_up,
 * dyads_on_stored) and dyads_author_stats; this header adds what the control server
 * calls.
 *
 * Persistence. Every dyad lives in the store's dyads table (key: dyad id, value:
 * dyad_encode), loaded at start and re-verified. A transition (a command of ours, a
 * message of the peer, a deadline) is written to LMDB before it is answered to the CLI,
 * sent on, or shown to watchers; if the write fails the dyad is reloaded from the store,
 * which stays the truth. Mail is kept in the mail table (key: mail id, value: the item)
 * in three in-memory indexes (proto/mail's struct mail_index, which applies the quotas):
 *   outbox  items I sealed (my own dyad messages), offered to peers until they expire;
 *   relay   items between two other nodes that I carry for them (per-sender quotas);
 *   inbox   items addressed to me, kept until they expire so that offers of the same id
 *           are answered "have", and opened again at start (so a message that arrived
 *           before the one it depends on - PULL_ERR_AGAIN - survives a restart).
 * My own items are sealed deterministically (the ephemeral key is derived from my secret
 * key, the recipient and the message, and expires = the message's created + 14 days), so
 * sealing a dyad message again gives the same item and id: at start every recent message
 * of mine is sealed again and put back in the outbox if it is missing, which makes a crash
 * between "dyad stored" and "mail stored" harmless, and resending on reconnect free of
 * duplicates.
 *
 * Delivery. A message of mine is put in the outbox, then pushed as MSG_MAIL straight to
 * the counterpart if it is connected; otherwise it is announced (MSG_MAIL_IHAVE) to every
 * connected peer and the counterpart is dialed if its address is known. Peers that want
 * it fetch it, store it under their relay quotas and announce it in turn. When a peer
 * connects it gets every held item addressed to it, then the ids of all held items. Mail
 * addressed to me is opened and its dyad message applied: a PROPOSE only if I am its
 * responder and its record is one of my live offers or needs; a message that arrives early
 * (PULL_ERR_AGAIN, or for a dyad whose PROPOSE has not arrived) is held in memory (and in
 * the inbox) and applied after the message it waits for; anything else is refused,
 * logged and counted, never fatal. When a dyad completes, my attestation record
 * (dyad_attestation) is submitted like any local record and gossips from there.
 *
 * Timers: one uv_timer wakes at the earliest dyad deadline (at least every minute) to
 * expire dyads (dyad_on_timeout) and sweep expired mail.
 */
#ifndef PULL_DYADS_H
#define PULL_DYADS_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/node.h"
#include "proto/ctl.h"
#include "proto/dyad.h"

/* Counters of the dyad service (for `pull status --json`, "dyads"). */
struct dyads_stats {
    uint64_t dyads;        /* dyads held (any state) */
    uint64_t open;         /* of which open */
    uint64_t completed;    /* of which completed */
    uint64_t msgs_sent;    /* dyad messages of mine put in the outbox */
    uint64_t msgs_applied; /* peer messages applied */
    uint64_t msgs_held;    /* peer messages held for an earlier one */
    uint64_t msgs_refused; /* peer messages refused (third party, bad state, ...) */
    uint64_t mail_in;      /* mail items received from peers */
    uint64_t mail_relayed; /* items stored to carry for others */
    uint64_t mail_refused; /* items refused (quota, expired) */
    uint64_t mail_bad;     /* items that failed their checks (counted against the peer) */
    uint64_t mail_swept;   /* expired items removed */
    uint64_t mail_held;    /* items held now: outbox + relay + inbox */
    uint64_t attestations; /* attestations submitted */
};

/* dyads_get_stats fills st (zeroes before dyads_start). */
void dyads_get_stats(struct node *n, struct dyads_stats *st);

/* ---- control commands (proto/ctl.h "dyad.*") ----
 * Each reads its args from req, and on success packs exactly ONE value into pk (the dyad
 * map, or an array of them for list) and returns 0. On failure it packs nothing, writes a
 * one-line message for the person into msg (msgsz bytes) and returns a PULL_ERR_*:
 * PULL_ERR_ARITY / PULL_ERR_FIELD for args, PULL_ERR_NOT_FOUND, PULL_ERR_AMBIGUOUS for an
 * id prefix, PULL_ERR_PERM ("not a party to this dyad", "only the responder can accept"),
 * PULL_ERR_STATE, PULL_ERR_EXPIRED, PULL_ERR_KIND, the store's errors.
 * A dyad map: {"id", "record", "proposer", "responder", "state", "updated", "created",
 * "role": "proposer"|"responder", "counterpart", "note", "expires" (unix s: the current step's
 * deadline; absent once closed), "actions": [verb, ...] (what I may do now), "messages": [{"kind",
 * "from": "me"|"peer", "created", "note"}, ...]}; ids and keys in text form. */
int dyads_cmd_propose(struct node *n, const struct ctl_request *req, msgpack_packer *pk, char *msg,
                      size_t msgsz);
/* accept, decline, done, ack, cancel: the verb is req->cmd after "dyad.". */
int dyads_cmd_act(struct node *n, const struct ctl_request *req, msgpack_packer *pk, char *msg,
                  size_t msgsz);
int dyads_cmd_list(struct node *n, const struct ctl_request *req, msgpack_packer *pk, char *msg,
                   size_t msgsz);
int dyads_cmd_show(struct node *n, const struct ctl_request *req, msgpack_packer *pk, char *msg,
                   size_t msgsz);

/* dyads_ctl runs any of "dyad.propose", "dyad.accept", "dyad.decline",
 * "dyad.done", "dyad.ack", "dyad.cancel", "dyad.list", "dyad.show" (req->cmd) with the
 * functions above: same contract. Returns PULL_ERR_UNKNOWN_CMD (nothing packed, msg
 * untouched) for any other name. Every command is synchronous: the dyad is stored
 * (store_kv_put commits before it returns) before the result is packed. */
int dyads_ctl(struct node *n, const struct ctl_request *req, msgpack_packer *pk, char *msg,
              size_t msgsz);

/* dyads_pack packs one dyad map (as described above) for a dyad of this node: used by
 * watch events. */
void dyads_pack(struct node *n, const struct dyad *d, msgpack_packer *pk);

#endif
