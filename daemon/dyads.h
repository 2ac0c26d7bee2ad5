/*
 * dyads: pulld's dyad service - the node's dyads (proto/dyad) and the sealed mail that
 * carries their messages (proto/mail). It stands on the node (its batch, its observers'
 * events) and on sync (mail messages from peers arrive through sync_set_mail's hooks, and
 * leave with sync_mail_post); the control server calls the commands below.
 *
 * Rooms: dyads.c is the service (the dyads, their persistence, mail, peer messages, the
 * timer), dyads_cmd.c what the control server asks of it (the commands, the dyad map,
 * author statistics); dyads_int.h is what they share.
 *
 * Persistence. Every dyad lives in the store's dyads table (key: dyad id, value:
 * dyad_encode), loaded at start and re-verified. A transition (a command of ours, a
 * message of the peer, a deadline) joins the node's batch (node_kv_put); it is answered to
 * the CLI (the control server waits for the commit) and its message sent only after that
 * commit; if the commit fails the dyad is reloaded from the store, which stays the truth. Mail is
 * kept in the mail table (key: mail id, value: the item) in three in-memory indexes (proto/mail's
 * struct mail_index, which applies the quotas): outbox  items I sealed (my own dyad messages),
 * offered to peers until they expire; relay   items between two other nodes that I carry for them
 * (per-sender quotas); inbox   items addressed to me, kept until they expire so that offers of the
 * same id are answered "have", and opened again at start (so a message that arrived before the one
 * it depends on - PULL_ERR_AGAIN - survives a restart). My own items are sealed deterministically
 * (the ephemeral key is derived from my secret key, the recipient and the message, and expires =
 * the message's created + 14 days), so sealing a dyad message again gives the same item and id: at
 * start every recent message of mine is sealed again and put back in the outbox if it is missing,
 * which makes a crash between "dyad stored" and "mail stored" harmless, and resending on reconnect
 * free of duplicates.
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
 * expire dyads (dyad_on_timeout), delete those due (below) and sweep expired mail.
 *
 * Bounds. Anyone who sees one of my offers can propose on it, so what strangers can make me
 * keep is capped. At most max_dyads_per_proposer proposals of one key await my answer (8),
 * and at most max_dyads_open dyads are open in all (1024); a proposal beyond either is
 * refused before its signatures are checked, counted (status "proposals_capped" and
 * "msgs_refused") and logged in at most 8 lines every 10 s (the next line tells how many
 * were not), like every refusal of a peer's dyad message. A closed dyad (declined,
 * cancelled, expired) is deleted from memory and from the store (node_kv_del, through the
 * node's batch) dyad_retention_s after it closed (7 days); a completed one when its
 * attestation expires (DYAD_ATTEST_TTL, 90 days after it completed): the attestation is
 * the lasting summary, and `pull dyad list` shows the dyad until then. Proposals I never
 * accepted that are closed count too: a proposer keeps at most max_dyads_per_proposer of
 * them (its oldest goes when it proposes again), all strangers together at most
 * max_dyads_open (the oldest go at the next tick). At start, dyads due for deletion and
 * open proposals beyond the caps (a store from before them, or lowered limits: a proposer
 * keeps its oldest) are deleted instead of loaded, so a restart stays within the caps.
 * Lookup by id is a hash table (SipHash under a key drawn at start), by counterpart another
 * (dyads_keep.c). A deleted dyad's mail stays in the inbox until it expires: replayed at
 * start, a proposal is admitted again only under the caps.
 */
#ifndef PULL_DYADS_H
#define PULL_DYADS_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/node.h"
#include "daemon/sync.h"
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
    uint64_t prop_capped;  /* proposals refused over max_dyads_per_proposer / _open */
    uint64_t gc_deleted;   /* dyads deleted: closed past their retention, over the caps */
};

struct dyads;

/* dyads_start loads the dyads and mail from the store, hooks itself to sync (mail
 * messages, peers coming up) and arms its timer. Returns 0 or a PULL_ERR_* after logging
 * why. */
int dyads_start(struct node *n, struct sync *sync, struct dyads **out);

/* dyads_stop unhooks from sync and closes the timer. Safe to call twice and with NULL. */
void dyads_stop(struct dyads *ds);

/* dyads_free frees ds (after dyads_stop). NULL does nothing. */
void dyads_free(struct dyads *ds);

/* dyads_set_people hands the dyad service the people part (daemon/people.h), which
 * stands below it: names for the dyad maps, record handles (a proposal on an older version
 * of one of my records is about its live version), and trust (each completed dyad, those
 * loaded at start included, is evidence). NULL unsets it. */
struct people;
void dyads_set_people(struct dyads *ds, struct people *p);

/* dyads_get_stats fills st (zeroes for NULL). */
void dyads_get_stats(struct dyads *ds, struct dyads_stats *st);

/* dyads_author_stats: dyads of author completed and attested (attestation records stored
 * here that name author as author or peer, counted once per dyad even if both sides
 * published one) and its distinct counterparts in them. For `pull show AUTHOR` and status.
 * Returns 0 or a store error (outputs are then 0). */
int dyads_author_stats(struct dyads *ds, const uint8_t author[32], uint32_t *completed,
                       uint32_t *counterparts);

/* ---- control commands (proto/ctl.h "dyad.*") ----
 * Each reads its args from req, and on success packs exactly ONE value into pk (the dyad
 * map, or an array of them for list) and returns 0. On failure it packs nothing, writes a
 * one-line message for the person into msg (msgsz bytes) and returns a PULL_ERR_*:
 * PULL_ERR_ARITY / PULL_ERR_FIELD for args, PULL_ERR_NOT_FOUND, PULL_ERR_AMBIGUOUS for an
 * id prefix, PULL_ERR_PERM ("not a party to this dyad", "only the responder can accept"),
 * PULL_ERR_STATE, PULL_ERR_EXPIRED, PULL_ERR_KIND, the store's errors.
 * A dyad map: {"id", "record", "proposer", "responder", "state", "updated", "created",
 * "role": "proposer"|"responder", "counterpart", "note", "expires" (unix s: the current step's
 * deadline; absent once closed), "actions": [verb, ...] (what I may do now: "message" in any
 * state), "messages": [{"kind", "from": "me"|"peer", "author", "author_label", "created",
 * "at", "step", "note", "text"}, ...] (the conversation, oldest first), "next" (what I do next
 * or whom I wait for), "record_live" (the live version of the record's handle),
 * "record_title", "record_kind", "handle", "counterpart_label", "counterpart_full", and the
 * counterpart's "author_name" and "petname" when known}; ids and keys in text form. The
 * record and dyad args may be names (proto/ctl.h, People). */
int dyads_cmd_propose(struct dyads *ds, const struct ctl_request *req, msgpack_packer *pk,
                      char *msg, size_t msgsz);
/* accept, decline, done, ack, cancel, message: the verb is req->cmd after "dyad."
 * (message: a NOTE, "message" required). */
int dyads_cmd_act(struct dyads *ds, const struct ctl_request *req, msgpack_packer *pk, char *msg,
                  size_t msgsz);
int dyads_cmd_list(struct dyads *ds, const struct ctl_request *req, msgpack_packer *pk, char *msg,
                   size_t msgsz);
int dyads_cmd_show(struct dyads *ds, const struct ctl_request *req, msgpack_packer *pk, char *msg,
                   size_t msgsz);

/* dyads_ctl runs any of "dyad.propose", "dyad.accept", "dyad.decline", "dyad.done",
 * "dyad.ack", "dyad.cancel", "dyad.message", "dyad.list", "dyad.show" (req->cmd) with the
 * functions above: same contract. Returns PULL_ERR_UNKNOWN_CMD (nothing packed, msg
 * untouched) for any other name. The dyad's write is queued in the node's batch when the
 * result is packed: answer it after node_after_commit. */
int dyads_ctl(struct dyads *ds, const struct ctl_request *req, msgpack_packer *pk, char *msg,
              size_t msgsz);

/* dyads_pack packs one dyad map (as described above) for a dyad of this node: used by
 * watch events. */
void dyads_pack(struct dyads *ds, const struct dyad *d, msgpack_packer *pk);

#endif
