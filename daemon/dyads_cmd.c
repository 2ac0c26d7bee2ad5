/*
 * dyads_cmd: what the control server asks of the dyad service (dyads.h is the manual;
 * dyads_int.h tells the rooms) - the dyad.* commands with their args and refusals, the
 * dyad map they answer with (packed with deferred counts), and the author statistics of
 * `pull show AUTHOR` and status, read from the attestation records.
 */
#include "daemon/dyads_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/people.h"
#include "lib/err.h"
#include "lib/mp.h"
#include "lib/store.h"

/* ---- control commands ---- */

static const char *
role_name(enum dyad_role r)
{
    return r == DYAD_PROPOSER ? "proposer" : "responder";
}

/* kv_key packs name: the text form of key into m. */
static void
kv_key(struct mp_open *m, const char *name, const uint8_t key[static 32])
{
    char t[IDENT_TEXT_LEN + 1];

    ident_to_text(key, t);
    mp_kv_str(m, name, t);
}

/* Verbs I may use now, as the CLI names them. */
static const struct {
    const char *verb;
    enum dyad_kind kind;
} dyads_verbs[] = {
    {"accept", DYAD_ACCEPT}, {"decline", DYAD_DECLINE}, {"done", DYAD_DONE},
    {"ack", DYAD_ACK},       {"cancel", DYAD_CANCEL},   {"message", DYAD_NOTE},
};
#define DYADS_NVERBS (sizeof(dyads_verbs) / sizeof(dyads_verbs[0]))

/* pack_message packs message i of d as a map into the array list: the conversation, one
 * entry per applied message, oldest first (CONTRACT.md: from, at, step, text; "from" is
 * "me" or "peer", "author" the key, "author_label" how to show it). */
static void
pack_message(struct dyads *ds, struct mp_open *list, const struct dyad *d, size_t i,
             enum dyad_role me)
{
    const uint8_t *p = NULL;
    size_t len = 0;
    enum dyad_kind kind = 0;
    enum dyad_role author = DYAD_PROPOSER;
    struct dyad_msg msg;
    struct mp_open m;
    char label[NAMES_LABEL_MAX];
    const char *kname;
    bool ok =
        dyad_msg_at(d, i, &p, &len, &kind, &author) == 0 && dyad_msg_decode(p, len, &msg) == 0;
    const uint8_t *who = author == DYAD_PROPOSER ? dyad_proposer(d) : dyad_responder(d);

    kname = ok && dyad_kind_name(kind) ? dyad_kind_name(kind) : "?";
    mp_open_map(&m, mp_item(list));
    mp_kv_str(&m, "kind", kname);
    mp_kv_str(&m, "from", author == me ? "me" : "peer");
    kv_key(&m, "author", who);
    mp_kv_str(&m, "author_label", author == me ? "you" : people_label(ds->people, who, label));
    mp_kv_uint(&m, "created", ok ? msg.created : 0);
    mp_kv_uint(&m, "at", ok ? msg.created : 0);
    mp_kv_str(&m, "step", kname);
    mp_pack_str(mp_key(&m, "note"), ok ? msg.note : "", ok ? msg.note_len : 0);
    mp_pack_str(mp_key(&m, "text"), ok ? msg.note : "", ok ? msg.note_len : 0);
    mp_close(&m);
}

/* What I do next with d, or whom I wait for, in a line for a person. */
static void
next_action(struct dyads *ds, const struct dyad *d, enum dyad_role me, char *out, size_t n)
{
    enum dyad_role peer = me == DYAD_PROPOSER ? DYAD_RESPONDER : DYAD_PROPOSER;
    char who[NAMES_LABEL_MAX], id[IDENT_SHORT_LEN + 1];

    people_label(ds->people, dyad_peer(d, me), who);
    ident_short(dyad_id(d), id);
    switch (dyad_state(d)) {
    case DYAD_ST_PROPOSED:
        if (me == DYAD_PROPOSER)
            snprintf(out, n, "waiting for %s to accept or decline", who);
        else
            snprintf(out, n, "accept or decline: pull dyad accept %s", id);
        break;
    case DYAD_ST_ACCEPTED:
        snprintf(out, n, "once the exchange happened: pull dyad done %s", id);
        break;
    case DYAD_ST_DONE:
        if (!dyad_acked(d, me))
            snprintf(out, n, "acknowledge: pull dyad ack %s", id);
        else if (!dyad_acked(d, peer))
            snprintf(out, n, "waiting for %s to ack", who);
        else
            snprintf(out, n, "nothing: completed");
        break;
    case DYAD_ST_COMPLETED:
        snprintf(out, n, "nothing: completed");
        break;
    default:
        snprintf(out, n, "nothing: %s", dyad_state_name(dyad_state(d)));
        break;
    }
}

/* The record d is about, as it is now: the id of its handle's live version and its title
 * ("" when this node holds no version of it any more). */
static void
pack_record(struct dyads *ds, struct mp_open *m, const struct dyad *d)
{
    uint8_t live[RECORD_ID_BYTES], buf[RECORD_ENVELOPE_MAX];
    struct envelope e;
    struct record *rec = malloc(sizeof(*rec));
    size_t len;
    bool have = false;

    if (ds->people == NULL || people_record_live(ds->people, dyad_record(d), live) != 0)
        memcpy(live, dyad_record(d), RECORD_ID_BYTES);
    if (rec != NULL && node_fetch_record(ds->n, live, buf, sizeof(buf), &len) == 0 &&
        envelope_parse(buf, len, &e) == 0 && record_decode(e.rec, e.rec_len, rec) == 0)
        have = true;
    kv_key(m, "record_live", live);
    mp_kv_str(m, "record_title", have ? rec->title : "");
    mp_kv_str(m, "record_kind",
              have && record_kind_name(rec->kind) ? record_kind_name(rec->kind) : "");
    if (have) {
        char h[PEOPLE_HANDLE_TEXT];
        people_handle_text(rec->author, rec->slot, h);
        mp_kv_str(m, "handle", h);
    }
    free(rec);
}

/* Packs the map of d; change (may be NULL) names what just happened, for events. */
static void
pack_dyad(struct dyads *ds, const struct dyad *d, const char *change, msgpack_packer *pk)
{
    enum dyad_role me = dyads_my_role(ds, d);
    const uint8_t *peer = dyad_peer(d, me);
    size_t note_len;
    const char *note = dyad_note(d, &note_len);
    const char *name = ds->people != NULL ? names_name(people_names(ds->people), peer) : NULL;
    const char *pet = ds->people != NULL ? names_petname(people_names(ds->people), peer) : NULL;
    char label[NAMES_LABEL_MAX], next[160];
    struct mp_open m, list;

    mp_open_map(&m, pk);
    kv_key(&m, "id", dyad_id(d));
    kv_key(&m, "record", dyad_record(d));
    kv_key(&m, "proposer", dyad_proposer(d));
    kv_key(&m, "responder", dyad_responder(d));
    mp_kv_str(&m, "state", dyad_state_name(dyad_state(d)));
    mp_kv_uint(&m, "updated", dyad_updated(d));
    mp_kv_uint(&m, "created", dyad_created(d));
    mp_kv_str(&m, "role", role_name(me));
    kv_key(&m, "counterpart", peer);
    /* the counterpart, as people.h names people (CONTRACT.md: author_name, petname) */
    if (name != NULL)
        mp_kv_str(&m, "author_name", name);
    if (pet != NULL)
        mp_kv_str(&m, "petname", pet);
    mp_kv_str(&m, "counterpart_label", people_label(ds->people, peer, label));
    mp_kv_str(&m, "counterpart_full", people_full(ds->people, peer, label));
    pack_record(ds, &m, d);
    next_action(ds, d, me, next, sizeof(next));
    mp_kv_str(&m, "next", next);
    if (change != NULL)
        mp_kv_str(&m, "change", change);
    mp_pack_str(mp_key(&m, "note"), note != NULL ? note : "", note != NULL ? note_len : 0);
    if (dyad_deadline(d) != 0)
        mp_kv_uint(&m, "expires", dyad_deadline(d)); /* when the current step expires */
    mp_key(&m, "actions");
    mp_open_array(&list, m.pk);
    for (size_t i = 0; i < DYADS_NVERBS; i++) {
        /* a note goes in any state; the steps only while the dyad is open */
        if ((dyad_is_open(d) || dyads_verbs[i].kind == DYAD_NOTE) &&
            dyad_allowed(d, me, dyads_verbs[i].kind) == 0)
            mp_pack_cstr(mp_item(&list), dyads_verbs[i].verb);
    }
    mp_close(&list);
    mp_key(&m, "messages");
    mp_open_array(&list, m.pk);
    for (size_t i = 0; i < dyad_msg_count(d); i++)
        pack_message(ds, &list, d, i, me);
    mp_close(&list);
    mp_close(&m);
}

void
dyads_pack(struct dyads *ds, const struct dyad *d, msgpack_packer *pk)
{
    pack_dyad(ds, d, NULL, pk);
}

void
dyads_pack_event(struct dyads *ds, const struct dyad *d, const char *change, msgpack_packer *pk)
{
    pack_dyad(ds, d, change, pk);
}

void
dyads_last_change(struct dyads *ds, const struct dyad *d, char *out, size_t n)
{
    const uint8_t *p;
    size_t len, count = dyad_msg_count(d);
    enum dyad_kind kind;
    enum dyad_role author;

    if (dyad_state(d) == DYAD_ST_EXPIRED) {
        snprintf(out, n, "expired");
        return;
    }
    if (count == 0 || dyad_msg_at(d, count - 1, &p, &len, &kind, &author) != 0 ||
        dyad_kind_name(kind) == NULL) {
        snprintf(out, n, "%s", dyad_state_name(dyad_state(d)));
        return;
    }
    snprintf(out, n, "%s by %s", dyad_kind_name(kind),
             author == dyads_my_role(ds, d) ? "me" : "peer");
}

/* Reads "message" (optional) into note: text of at most DYAD_NOTE_MAX bytes, lines of it
 * without control or invisible characters (lib/names.h's rules, as every text made here). */
static int
arg_note(const struct ctl_request *req, char *note, size_t cap, char *msg, size_t msgsz)
{
    int rc = ctl_arg_str(req, "message", DYAD_NOTE_MAX, note, cap);

    if (rc == PULL_ERR_NOT_FOUND) {
        note[0] = '\0';
        return 0;
    }
    if (rc != 0) {
        snprintf(msg, msgsz, "message too long (at most %d bytes) or not text", DYAD_NOTE_MAX);
        return rc;
    }
    if (note[0] != '\0' && (rc = names_check_text(note, strlen(note), DYAD_NOTE_MAX, true)) != 0 &&
        rc != PULL_ERR_FIELD) { /* a message of punctuation alone is fine */
        snprintf(msg, msgsz,
                 "the message has a control or invisible character (bidi "
                 "controls, zero-width characters): type it plainly");
        return PULL_ERR_CONTROL;
    }
    return 0;
}

/* Reads arg key as a reference: an id prefix or a name (at most NAMES_PETNAME_MAX bytes).
 * Returns 0, or the error with msg. */
static int
arg_ref(const struct ctl_request *req, const char *key, char *text, size_t cap, char *msg,
        size_t msgsz)
{
    int rc = ctl_arg_str(req, key, NAMES_PETNAME_MAX, text, cap);

    if (rc != 0) {
        snprintf(msg, msgsz,
                 rc == PULL_ERR_NOT_FOUND ? "missing argument '%s'" : "bad argument '%s'", key);
        return rc == PULL_ERR_NOT_FOUND ? PULL_ERR_ARITY : PULL_ERR_FIELD;
    }
    return 0;
}

/* My dyads with the person text names (a petname or a unique chosen name): the only open
 * one, else the only one. */
static int
dyad_by_name(struct dyads *ds, const char *text, size_t *idx, char *msg, size_t msgsz)
{
    uint8_t key[32];
    char who[NAMES_LABEL_MAX];
    size_t all = 0, open = 0, first_all = 0, first_open = 0;
    int rc;

    if (ds->people == NULL)
        return PULL_ERR_NOT_FOUND;
    if ((rc = people_find(ds->people, text, key, msg, msgsz)) != 0)
        return rc;
    for (size_t i = 0; i < ds->len; i++) {
        if (memcmp(dyad_peer(ds->v[i], dyads_my_role(ds, ds->v[i])), key, 32) != 0)
            continue;
        if (all++ == 0)
            first_all = i;
        if (dyad_is_open(ds->v[i]) && open++ == 0)
            first_open = i;
    }
    people_full(ds->people, key, who);
    if (open == 1 || (open == 0 && all == 1)) {
        *idx = open == 1 ? first_open : first_all;
        return 0;
    }
    if (all == 0) {
        snprintf(msg, msgsz, "no dyad with %s on this node", who);
        return PULL_ERR_NOT_FOUND;
    }
    snprintf(msg, msgsz, "%zu %sdyads with %s: give the dyad's id (pull dyad list)",
             open > 0 ? open : all, open > 0 ? "open " : "", who);
    return PULL_ERR_AMBIGUOUS;
}

/* Finds my dyad by the "id" arg: a dyad id prefix, or the name of the counterpart
 * (dyad_by_name). */
static int
arg_dyad(struct dyads *ds, const struct ctl_request *req, size_t *idx, char *msg, size_t msgsz)
{
    char text[NAMES_PETNAME_MAX + 1];
    struct ident_prefix pre;
    size_t found = 0;
    int rc;

    if ((rc = arg_ref(req, "id", text, sizeof(text), msg, msgsz)) != 0)
        return rc;
    if (ident_prefix_parse(text, &pre) == 0) {
        for (size_t i = 0; i < ds->len; i++) {
            if (ident_prefix_match(&pre, dyad_id(ds->v[i]))) {
                if (found++ == 0)
                    *idx = i;
            }
        }
    }
    if (found == 0) {
        char why[CTL_MSG_MAX];
        rc = dyad_by_name(ds, text, idx, why, sizeof(why));
        if (rc == 0 || rc == PULL_ERR_AMBIGUOUS ||
            (rc == PULL_ERR_NOT_FOUND && strncmp(why, "no dyad with", 12) == 0)) {
            snprintf(msg, msgsz, "%s", why);
            return rc;
        }
        snprintf(msg, msgsz, "no dyad '%s' on this node (a dyad id, or a petname)", text);
        return PULL_ERR_NOT_FOUND;
    }
    if (found > 1) {
        snprintf(msg, msgsz, "ambiguous id prefix '%s' (%zu dyads)", text, found);
        return PULL_ERR_AMBIGUOUS;
    }
    return 0;
}

/* Counting an author's live offers and needs (a proposal by the author's name). */
struct live_count {
    uint64_t now_s;
    struct record *rec;
    unsigned n;
    uint8_t id[RECORD_ID_BYTES];
};

static int
count_live(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct live_count *c = ctx;
    struct envelope e;

    if (envelope_parse(env, len, &e) != 0 || record_decode(e.rec, e.rec_len, c->rec) != 0 ||
        (c->rec->kind != RECORD_OFFER && c->rec->kind != RECORD_NEED) ||
        c->rec->expires <= c->now_s)
        return 0;
    if (c->n++ == 0)
        memcpy(c->id, id, RECORD_ID_BYTES);
    return 0;
}

/* The record a proposal is about: a record id prefix (an older version's id is its
 * handle's live version), or the name of a person who has exactly one live offer or need. */
static int
resolve_record(struct dyads *ds, const char *text, uint8_t rid[RECORD_ID_BYTES], char *msg,
               size_t msgsz)
{
    struct ident_prefix pre;
    struct people_rec pr;
    struct live_count c = {.now_s = node_now_s(ds->n)};
    char who[NAMES_LABEL_MAX];
    uint8_t author[32];
    int rc = PULL_ERR_NOT_FOUND;

    if (ident_prefix_parse(text, &pre) == 0) {
        if (ds->people != NULL)
            rc = people_record(ds->people, &pre, &pr);
        else if ((rc = store_resolve_prefix(ds->n->store, &pre, pr.id)) == 0)
            memcpy(pr.asked, pr.id, RECORD_ID_BYTES);
        if (rc == 0) {
            memcpy(rid, pr.id, RECORD_ID_BYTES);
            return 0;
        }
        if (rc == PULL_ERR_AMBIGUOUS) {
            snprintf(msg, msgsz, "ambiguous id prefix '%s'", text);
            return rc;
        }
        if (rc != PULL_ERR_NOT_FOUND) {
            snprintf(msg, msgsz, "%s", pull_strerror(rc));
            return rc;
        }
    }
    if (ds->people == NULL || people_find(ds->people, text, author, msg, msgsz) != 0) {
        snprintf(msg, msgsz, "no record '%s' on this node", text);
        return PULL_ERR_NOT_FOUND;
    }
    if ((c.rec = malloc(sizeof(*c.rec))) == NULL)
        return PULL_ERR_NOMEM;
    rc = store_iter_author(ds->n->store, author, count_live, &c);
    free(c.rec);
    if (rc < 0) {
        snprintf(msg, msgsz, "%s", pull_strerror(rc));
        return rc;
    }
    people_full(ds->people, author, who);
    if (c.n == 1) {
        memcpy(rid, c.id, RECORD_ID_BYTES);
        return 0;
    }
    if (c.n == 0) {
        snprintf(msg, msgsz, "%s has no live offer or need here", who);
        return PULL_ERR_NOT_FOUND;
    }
    snprintf(msg, msgsz, "%s has %u live offers and needs: give the record's id (pull show %s)",
             who, c.n, text);
    return PULL_ERR_AMBIGUOUS;
}

int
dyads_cmd_propose(struct dyads *ds, const struct ctl_request *req, msgpack_packer *pk, char *msg,
                  size_t msgsz)
{
    struct node *n = ds->n;
    char text[NAMES_PETNAME_MAX + 1], note[DYAD_NOTE_MAX + 1];
    uint8_t rid[RECORD_ID_BYTES];
    struct pull_wb env, out;
    struct envelope e;
    struct record *rec = NULL;
    struct dyad *d = NULL;
    uint64_t now_s = node_now_s(n);
    int rc;

    wb_init(&env, RECORD_ENVELOPE_MAX);
    wb_init(&out, DYAD_MSG_MAX);
    if (ds == NULL) {
        snprintf(msg, msgsz, "the dyad service is not running");
        rc = PULL_ERR_STATE;
        goto out;
    }
    if ((rc = arg_ref(req, "record", text, sizeof(text), msg, msgsz)) != 0 ||
        (rc = arg_note(req, note, sizeof(note), msg, msgsz)) != 0 ||
        (rc = resolve_record(ds, text, rid, msg, msgsz)) != 0)
        goto out;
    if ((rec = malloc(sizeof(*rec))) == NULL) {
        rc = PULL_ERR_NOMEM;
        snprintf(msg, msgsz, "%s", pull_strerror(rc));
        goto out;
    }
    if ((rc = store_get(n->store, rid, &env)) != 0 ||
        (rc = envelope_parse(env.p, env.len, &e)) != 0 ||
        (rc = record_decode(e.rec, e.rec_len, rec)) != 0) {
        snprintf(msg, msgsz, "record '%s' unreadable: %s", text, pull_strerror(rc));
        goto out;
    }
    if (rec->kind != RECORD_OFFER && rec->kind != RECORD_NEED) {
        snprintf(msg, msgsz, "can only propose on an offer or a need (this is a %s)",
                 record_kind_name(rec->kind) ? record_kind_name(rec->kind) : "record");
        rc = PULL_ERR_KIND;
        goto out;
    }
    if (dyads_is_me(ds, rec->author)) {
        snprintf(msg, msgsz, "that is your own %s: propose on another person's record",
                 record_kind_name(rec->kind));
        rc = PULL_ERR_INVAL;
        goto out;
    }
    if (rec->expires <= now_s) {
        snprintf(msg, msgsz, "that %s has expired", record_kind_name(rec->kind));
        rc = PULL_ERR_EXPIRED;
        goto out;
    }
    if ((rc = dyad_propose(NULL, &n->self, rid, rec->author, note, strlen(note), now_s, &ds->t, &d,
                           &out)) != 0) {
        snprintf(msg, msgsz, "%s",
                 rc == PULL_ERR_FIELD || rc == PULL_ERR_CONTROL
                     ? "message too long or contains control characters"
                     : pull_strerror(rc));
        goto out;
    }
    if ((rc = dyads_add(ds, d)) != 0) {
        snprintf(msg, msgsz, "%s", pull_strerror(rc));
        goto out;
    }
    if ((rc = dyads_persist(ds, d)) != 0) {
        dyads_remove_at(ds, ds->len - 1); /* frees d */
        d = NULL;
        snprintf(msg, msgsz, "could not store the dyad: %s", pull_strerror(rc));
        goto out;
    }
    dyads_send(ds, d, out.p, out.len);
    dyads_changed(ds, d, 0, "my proposal");
    dyads_pack(ds, d, pk);
    d = NULL; /* owned by ds */
out:
    if (rc != 0)
        dyad_free(d);
    free(rec);
    wb_release(&env);
    wb_release(&out);
    return rc;
}

/* A one-line message for a refused step of mine. */
static void
act_refusal(const struct dyad *d, enum dyad_role me, enum dyad_kind kind, const char *verb, int rc,
            char *msg, size_t msgsz)
{
    const char *state = dyad_state_name(dyad_state(d));

    switch (rc) {
    case PULL_ERR_PERM:
        if (kind == DYAD_ACCEPT || kind == DYAD_DECLINE)
            snprintf(msg, msgsz, "only the responder can %s a dyad (you proposed it)", verb);
        else if (kind == DYAD_CANCEL)
            snprintf(msg, msgsz, "the responder declines rather than cancels a proposal");
        else
            snprintf(msg, msgsz, "not a party to this dyad");
        break;
    case PULL_ERR_STATE:
        if (kind == DYAD_DONE && dyad_said_done(d, me))
            snprintf(msg, msgsz, "you already marked this dyad done");
        else if (kind == DYAD_ACK && dyad_acked(d, me))
            snprintf(msg, msgsz, "you already acknowledged this dyad");
        else if (kind == DYAD_ACK && dyad_state(d) == DYAD_ST_ACCEPTED)
            snprintf(msg, msgsz, "can't ack yet: the dyad must be marked done first");
        else if (kind == DYAD_CANCEL && dyad_acked(d, me))
            snprintf(msg, msgsz, "can't cancel: you already acknowledged this dyad");
        else
            snprintf(msg, msgsz, "can't %s a dyad that is %s", verb, state);
        break;
    case PULL_ERR_EXPIRED:
        snprintf(msg, msgsz, "the dyad has expired (its deadline passed)");
        break;
    case PULL_ERR_QUOTA:
        snprintf(msg, msgsz, "you already sent %d messages in this dyad (the most a side may)",
                 DYAD_NOTES_MAX);
        break;
    case PULL_ERR_FIELD:
    case PULL_ERR_CONTROL:
    case PULL_ERR_UTF8:
        snprintf(msg, msgsz, "message too long or contains control characters");
        break;
    default:
        snprintf(msg, msgsz, "%s", pull_strerror(rc));
        break;
    }
}

int
dyads_cmd_act(struct dyads *ds, const struct ctl_request *req, msgpack_packer *pk, char *msg,
              size_t msgsz)
{
    struct node *n = ds->n;
    const char *verb = strncmp(req->cmd, "dyad.", 5) == 0 ? req->cmd + 5 : req->cmd;
    char note[DYAD_NOTE_MAX + 1];
    enum dyad_kind kind = 0;
    enum dyad_role me;
    enum dyad_state before;
    struct pull_wb out;
    struct dyad *d;
    size_t i;
    int rc;

    if (ds == NULL) {
        snprintf(msg, msgsz, "the dyad service is not running");
        return PULL_ERR_STATE;
    }
    for (size_t k = 0; k < DYADS_NVERBS; k++) {
        if (strcmp(dyads_verbs[k].verb, verb) == 0)
            kind = dyads_verbs[k].kind;
    }
    if (kind == 0) {
        snprintf(msg, msgsz, "unknown command '%s'", req->cmd);
        return PULL_ERR_UNKNOWN_CMD;
    }
    if ((rc = arg_dyad(ds, req, &i, msg, msgsz)) != 0 ||
        (rc = arg_note(req, note, sizeof(note), msg, msgsz)) != 0)
        return rc;
    if (kind == DYAD_NOTE && note[0] == '\0') {
        snprintf(msg, msgsz, "a message needs its text: --message TEXT");
        return PULL_ERR_ARITY;
    }
    d = ds->v[i];
    if (dyad_role_of(d, n->self.pk) < 0) {
        snprintf(msg, msgsz, "not a party to this dyad");
        return PULL_ERR_PERM;
    }
    me = (enum dyad_role)dyad_role_of(d, n->self.pk);
    before = dyad_state(d);
    wb_init(&out, DYAD_MSG_MAX);
    rc = dyad_act(d, &n->self, kind, note, strlen(note), true, node_now_s(n), &out);
    if (rc == PULL_ERR_EXPIRED && dyad_on_timeout(d, node_now_s(n)) == 1) {
        if (dyads_persist(ds, d) != 0)
            dyads_reload(ds, i);
        else
            dyads_changed(ds, d, before, "deadline passed");
    }
    if (rc != 0) {
        act_refusal(ds->v[i], me, kind, verb, rc, msg, msgsz);
        goto out;
    }
    if ((rc = dyads_persist(ds, d)) != 0) {
        dyads_reload(ds, i);
        snprintf(msg, msgsz, "could not store the dyad: %s", pull_strerror(rc));
        goto out;
    }
    dyads_send(ds, d, out.p, out.len);
    {
        char why[48];
        snprintf(why, sizeof(why), "my %s", verb);
        dyads_changed(ds, d, before, why);
    }
    dyads_pack(ds, d, pk);
out:
    wb_release(&out);
    return rc;
}

static int
cmp_updated_desc(const void *a, const void *b)
{
    const struct dyad *x = *(const struct dyad *const *)a, *y = *(const struct dyad *const *)b;

    if (dyad_updated(x) != dyad_updated(y))
        return dyad_updated(x) < dyad_updated(y) ? 1 : -1;
    return memcmp(dyad_id(x), dyad_id(y), DYAD_ID_BYTES);
}

int
dyads_cmd_list(struct dyads *ds, const struct ctl_request *req, msgpack_packer *pk, char *msg,
               size_t msgsz)
{
    struct dyad **v;
    struct mp_open list;

    (void)req;
    if (ds == NULL) {
        snprintf(msg, msgsz, "the dyad service is not running");
        return PULL_ERR_STATE;
    }
    /* newest first, in a copy: ds->v's order is the index's */
    if ((v = malloc((ds->len ? ds->len : 1) * sizeof(*v))) == NULL) {
        snprintf(msg, msgsz, "%s", pull_strerror(PULL_ERR_NOMEM));
        return PULL_ERR_NOMEM;
    }
    if (ds->len > 0)
        memcpy(v, ds->v, ds->len * sizeof(*v));
    if (ds->len > 1)
        qsort(v, ds->len, sizeof(v[0]), cmp_updated_desc);
    mp_open_array(&list, pk);
    for (size_t i = 0; i < ds->len; i++)
        dyads_pack(ds, v[i], mp_item(&list));
    mp_close(&list);
    free(v);
    return 0;
}

int
dyads_cmd_show(struct dyads *ds, const struct ctl_request *req, msgpack_packer *pk, char *msg,
               size_t msgsz)
{
    size_t i;
    int rc;

    if (ds == NULL) {
        snprintf(msg, msgsz, "the dyad service is not running");
        return PULL_ERR_STATE;
    }
    if ((rc = arg_dyad(ds, req, &i, msg, msgsz)) != 0)
        return rc;
    dyads_pack(ds, ds->v[i], pk);
    return 0;
}

int
dyads_ctl(struct dyads *ds, const struct ctl_request *req, msgpack_packer *pk, char *msg,
          size_t msgsz)
{
    static const char *const acts[] = {"dyad.accept", "dyad.decline", "dyad.done",
                                       "dyad.ack",    "dyad.cancel",  "dyad.message"};

    if (strcmp(req->cmd, "dyad.propose") == 0)
        return dyads_cmd_propose(ds, req, pk, msg, msgsz);
    if (strcmp(req->cmd, "dyad.list") == 0)
        return dyads_cmd_list(ds, req, pk, msg, msgsz);
    if (strcmp(req->cmd, "dyad.show") == 0)
        return dyads_cmd_show(ds, req, pk, msg, msgsz);
    for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
        if (strcmp(req->cmd, acts[i]) == 0)
            return dyads_cmd_act(ds, req, pk, msg, msgsz);
    }
    return PULL_ERR_UNKNOWN_CMD;
}

/* ---- author statistics (attestation records) ---- */

struct stats_ctx {
    const uint8_t *author;
    uint64_t now_s;
    struct record *rec;
    uint8_t (*slots)[RECORD_SLOT_BYTES];
    uint8_t (*peers)[32];
    size_t n, cap;
    int err;
};

static int
stats_visit(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *p, size_t len)
{
    struct stats_ctx *c = ctx;
    struct envelope env;
    const uint8_t *other;
    (void)id;

    if (envelope_parse(p, len, &env) != 0 || record_decode(env.rec, env.rec_len, c->rec) != 0)
        return 0;
    if (c->rec->kind != RECORD_ATTESTATION || c->rec->expires <= c->now_s || !c->rec->has_peer)
        return 0;
    if (memcmp(c->rec->author, c->author, 32) == 0)
        other = c->rec->peer;
    else if (memcmp(c->rec->peer, c->author, 32) == 0)
        other = c->rec->author;
    else
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        void *s = realloc(c->slots, cap * sizeof(*c->slots));
        if (s == NULL)
            return PULL_ERR_NOMEM;
        c->slots = s;
        if ((s = realloc(c->peers, cap * sizeof(*c->peers))) == NULL)
            return PULL_ERR_NOMEM;
        c->peers = s;
        c->cap = cap;
    }
    memcpy(c->slots[c->n], c->rec->slot, RECORD_SLOT_BYTES);
    memcpy(c->peers[c->n], other, 32);
    c->n++;
    return 0;
}

static int
cmp_slot(const void *a, const void *b)
{
    return memcmp(a, b, RECORD_SLOT_BYTES);
}

static int
cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

int
dyads_author_stats(struct dyads *ds, const uint8_t author[32], uint32_t *completed,
                   uint32_t *counterparts)
{
    struct node *n = ds->n;
    struct stats_ctx c = {.author = author, .now_s = node_now_s(n)};
    uint32_t done = 0, peers = 0;
    int rc;

    *completed = 0;
    *counterparts = 0;
    if ((c.rec = malloc(sizeof(*c.rec))) == NULL)
        return PULL_ERR_NOMEM;
    rc = store_iter_tag(n->store, DYAD_ATTEST_TAG, stats_visit, &c);
    if (rc > 0)
        rc = 0;
    if (rc == 0 && c.n > 0) {
        /* one dyad may be attested by both sides: count its slot (= dyad id) once */
        qsort(c.slots, c.n, sizeof(*c.slots), cmp_slot);
        qsort(c.peers, c.n, sizeof(*c.peers), cmp_key);
        for (size_t i = 0; i < c.n; i++) {
            done += i == 0 || memcmp(c.slots[i], c.slots[i - 1], RECORD_SLOT_BYTES) != 0;
            peers += i == 0 || memcmp(c.peers[i], c.peers[i - 1], 32) != 0;
        }
        *completed = done;
        *counterparts = peers;
    }
    free(c.rec);
    free(c.slots);
    free(c.peers);
    return rc;
}
