/*
 * dyads: the dyad service (dyads.h is the manual; dyads_int.h tells the rooms) - the
 * node's dyads in memory and in the store, the sealed mail that carries their messages,
 * peer messages applied (or held until the one they wait for), the deadline timer, start
 * and stop.
 */
#include "daemon/dyads_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/mp.h"
#include "daemon/people.h"
#include "lib/store.h"
#include "proto/mail.h"
#include "proto/msg.h"
#include "proto/syncer.h"

#define DYADS_TICK_MAX_S 60 /* the timer wakes at least this often */
#define DYADS_MAIL_TTL MAIL_TTL_MAX
#define DYADS_EPH_DOMAIN "pull/mail/eph/v1"

static void dyads_arm(struct dyads *ds);
static void dyads_retry_held(struct dyads *ds, const uint8_t id[static DYAD_ID_BYTES]);
static void dyads_boot(struct dyads *ds, uint64_t now_s);

/* ---- small helpers ---- */

static void
short_id(const uint8_t key[static 32], char out[static IDENT_SHORT_LEN + 1])
{
    ident_short(key, out);
}

bool
dyads_is_me(struct dyads *ds, const uint8_t key[static 32])
{
    return sodium_memcmp(key, ds->n->self.pk, 32) == 0;
}

enum dyad_role
dyads_my_role(struct dyads *ds, const struct dyad *d)
{
    return dyads_is_me(ds, dyad_proposer(d)) ? DYAD_PROPOSER : DYAD_RESPONDER;
}

/* ---- persistence ---- */

/* A dyad write waiting for its commit. */
struct dyads_pending {
    struct dyads *ds;
    uint8_t id[DYAD_ID_BYTES];
};

/* persisted runs after the commit of a dyad write: if it failed, the store is the truth
 * again (the dyad is reloaded from it, or dropped if it was never stored). */
static void
persisted(void *arg, int result)
{
    struct dyads_pending *p = arg;
    size_t i;

    if (result != 0 && result != PULL_ERR_CLOSED && dyads_find(p->ds, p->id, &i) != NULL)
        dyads_reload(p->ds, i);
    free(p);
}

/* Queues d's write to the dyads table for the node's next commit. Callers that answer or
 * send on the dyad do so once it is committed (node_after_commit). */
int
dyads_persist(struct dyads *ds, const struct dyad *d)
{
    struct dyads_pending *p = NULL;
    struct pull_wb w;
    int rc;

    wb_init(&w, STORE_KV_MAX);
    if ((rc = dyad_encode(d, &w)) == 0 && (p = malloc(sizeof(*p))) == NULL)
        rc = PULL_ERR_NOMEM;
    if (rc == 0 && (rc = node_kv_put(ds->n, STORE_DYADS, dyad_id(d), w.p, w.len)) == 0) {
        p->ds = ds;
        memcpy(p->id, dyad_id(d), DYAD_ID_BYTES);
        if (node_after_commit(ds->n, persisted, p) == 0)
            p = NULL;
    }
    free(p);
    wb_release(&w);
    if (rc != 0) {
        char s[IDENT_SHORT_LEN + 1];
        short_id(dyad_id(d), s);
        log_error("dyad %s: could not store: %s", s, pull_strerror(rc));
    }
    return rc;
}

/* Replaces the dyad at index i by its stored version (after a failed write), or drops it
 * if it was never stored. */
void
dyads_reload(struct dyads *ds, size_t i)
{
    struct pull_wb w;
    struct dyad *d = NULL;

    wb_init(&w, STORE_KV_MAX);
    if (node_kv_get(ds->n, STORE_DYADS, dyad_id(ds->v[i]), &w) == 0 &&
        dyad_decode(NULL, w.p, w.len, &ds->t, &d) == 0) {
        dyads_replace_at(ds, i, d);
    } else {
        dyads_remove_at(ds, i);
        dyads_recount(ds); /* it may have changed in memory without being counted */
    }
    wb_release(&w);
}

/* ---- events ---- */

/* A dyad of mine changed (stored already): log it and tell watchers. */
static void
dyads_emit(struct dyads *ds, const struct dyad *d, const char *why)
{
    char s[IDENT_SHORT_LEN + 1];
    struct pull_wb w;
    msgpack_packer pk;

    char change[48];

    short_id(dyad_id(d), s);
    log_info("dyad %s: %s (%s)", s, dyad_state_name(dyad_state(d)), why);
    dyads_last_change(ds, d, change, sizeof(change));
    wb_init(&w, 0);
    mp_packer_init(&pk, &w);
    dyads_pack_event(ds, d, change, &pk);
    if (wb_error(&w) == 0)
        node_emit(ds->n, NODE_EV_DYAD, w.p, w.len);
    wb_release(&w);
}

/* Submits my attestation of a completed dyad (idempotent: the same bytes every time, so a
 * second submission is refused as a duplicate). */
static void
dyads_attest(struct dyads *ds, const struct dyad *d)
{
    struct pull_wb w;
    char s[IDENT_SHORT_LEN + 1];
    int rc;

    if (dyad_state(d) != DYAD_ST_COMPLETED)
        return;
    short_id(dyad_id(d), s);
    wb_init(&w, RECORD_ENVELOPE_MAX);
    rc = dyad_attestation(d, &ds->n->self, &w, NULL);
    if (rc == PULL_ERR_NOT_FOUND) {
        log_info("dyad %s: the counterpart declined to be named: no attestation", s);
    } else if (rc != 0) {
        log_warn("dyad %s: attestation not built: %s", s, pull_strerror(rc));
    } else {
        rc = node_submit(ds->n, w.p, w.len, NODE_ORIGIN_LOCAL, NULL, NULL, NULL, NULL);
        if (rc == 0) {
            ds->st.attestations++;
            log_info("dyad %s: attestation published", s);
        } else if (rc != PULL_ERR_DUPLICATE && rc != PULL_ERR_STALE && rc != PULL_ERR_EXPIRED) {
            log_warn("dyad %s: attestation refused: %s", s, pull_strerror(rc));
        }
    }
    wb_release(&w);
}

/* After a stored change of d from state `before`. */
void
dyads_changed(struct dyads *ds, const struct dyad *d, enum dyad_state before, const char *why)
{
    bool was_open =
        before == DYAD_ST_PROPOSED || before == DYAD_ST_ACCEPTED || before == DYAD_ST_DONE;

    if (before != 0 && was_open != dyad_is_open(d)) /* a new dyad was counted by dyads_add */
        ds->nopen = dyad_is_open(d) ? ds->nopen + 1 : ds->nopen - 1;
    if (before != DYAD_ST_COMPLETED && dyad_state(d) == DYAD_ST_COMPLETED) {
        people_dyad_completed(ds->people, dyad_id(d), dyad_peer(d, dyads_my_role(ds, d)));
        dyads_attest(ds, d);
    }
    dyads_emit(ds, d, why);
    dyads_arm(ds);
}

/* ---- mail ---- */

/* A deterministic "random" source for sealing my own items: keyed BLAKE2b of the message
 * under my secret seed, so one message sealed to one recipient is always the same item. */
struct seal_rng {
    struct pull_env env;
    const struct pull_env *base;
    const struct ident *me;
    const uint8_t *rcpt;
    const uint8_t *msg;
    size_t n;
    uint32_t calls;
};

static uint64_t
seal_rng_now_ms(void *ctx)
{
    return env_now_ms(((struct seal_rng *)ctx)->base);
}

static uint64_t
seal_rng_wall_s(void *ctx)
{
    return env_wall_s(((struct seal_rng *)ctx)->base);
}

static void
seal_rng_random(void *ctx, void *buf, size_t len)
{
    struct seal_rng *r = ctx;
    uint8_t *out = buf, block[64], ctr[8];

    while (len > 0) {
        crypto_generichash_state st;
        size_t k = len < sizeof(block) ? len : sizeof(block);
        be64enc(ctr, ((uint64_t)r->calls << 32) | (uint64_t)(out - (uint8_t *)buf));
        crypto_generichash_init(&st, r->me->sk, 32, sizeof(block));
        crypto_generichash_update(&st, (const uint8_t *)DYADS_EPH_DOMAIN, strlen(DYADS_EPH_DOMAIN));
        crypto_generichash_update(&st, ctr, sizeof(ctr));
        crypto_generichash_update(&st, r->rcpt, 32);
        crypto_generichash_update(&st, r->msg, r->n);
        crypto_generichash_final(&st, block, sizeof(block));
        memcpy(out, block, k);
        out += k;
        len -= k;
        sodium_memzero(&st, sizeof(st));
    }
    sodium_memzero(block, sizeof(block));
    r->calls++;
}

/* Seals my dyad message (created at `created`) to rcpt, appending the item to out. */
static int
dyads_seal(struct dyads *ds, const uint8_t rcpt[static 32], const uint8_t *msg, size_t n,
           uint64_t created, struct pull_wb *out, uint8_t id[MAIL_ID_BYTES])
{
    struct seal_rng r = {
        .env = {.now_ms = seal_rng_now_ms, .wall_s = seal_rng_wall_s, .random = seal_rng_random},
        .base = ds->n->env,
        .me = &ds->n->self,
        .rcpt = rcpt,
        .msg = msg,
        .n = n,
    };

    r.env.ctx = &r;
    return mail_seal(&r.env, &ds->n->self, rcpt, msg, n, created + DYADS_MAIL_TTL, out, id);
}

/* One of my items waiting for the commit of its dyad's transition. */
struct dyads_fwd {
    struct dyads *ds;
    uint8_t id[MAIL_ID_BYTES];
    uint8_t peer[32];
    size_t len;
    uint8_t item[];
};

static void
forward_committed(void *arg, int result)
{
    struct dyads_fwd *f = arg;
    int rc;

    if (result == 0 && f->ds->sync != NULL &&
        (rc = sync_mail_post(f->ds->sync, f->item, f->len)) != 0 && rc != PULL_ERR_DUPLICATE)
        log_warn("mail: my item not kept for relaying: %s", pull_strerror(rc));
    free(f);
}

void
dyads_send(struct dyads *ds, const struct dyad *d, const uint8_t *msg, size_t n)
{
    const uint8_t *peer = dyad_peer(d, dyads_my_role(ds, d));
    struct dyads_fwd *f;
    struct dyad_msg m;
    struct pull_wb item;
    uint8_t id[MAIL_ID_BYTES];
    int rc;

    wb_init(&item, MAIL_ITEM_MAX);
    if ((rc = dyad_msg_decode(msg, n, &m)) != 0 ||
        (rc = dyads_seal(ds, peer, msg, n, m.created, &item, id)) != 0) {
        log_error("dyad: could not seal a message: %s", pull_strerror(rc));
        goto out;
    }
    ds->st.msgs_sent++;
    {
        char sd[IDENT_SHORT_LEN + 1], sm[IDENT_SHORT_LEN + 1], sp[IDENT_SHORT_LEN + 1];
        short_id(dyad_id(d), sd);
        short_id(id, sm);
        short_id(peer, sp);
        log_debug("dyad %s: %s sealed as mail %s to %s", sd, dyad_kind_name(m.kind), sm, sp);
    }
    /* the transition is not on disk yet: it leaves once its commit is */
    if ((f = malloc(sizeof(*f) + item.len)) == NULL) {
        log_warn("mail: out of memory: sent at the next reconnect");
        goto out;
    }
    f->ds = ds;
    memcpy(f->id, id, MAIL_ID_BYTES);
    memcpy(f->peer, peer, 32);
    f->len = item.len;
    memcpy(f->item, item.p, item.len);
    if (node_after_commit(ds->n, forward_committed, f) != 0)
        free(f);
out:
    wb_release(&item);
}

/* Puts back in the outbox the items of my recent messages in d (same bytes as when they
 * were first sealed). */
static void
dyads_refill_outbox(struct dyads *ds, const struct dyad *d, uint64_t now_s)
{
    enum dyad_role me = dyads_my_role(ds, d);
    const uint8_t *peer = dyad_peer(d, me);

    for (size_t i = 0; i < dyad_msg_count(d); i++) {
        const uint8_t *p;
        size_t n;
        enum dyad_role author;
        struct dyad_msg m;
        struct pull_wb item;
        uint8_t id[MAIL_ID_BYTES];

        if (dyad_msg_at(d, i, &p, &n, NULL, &author) != 0 || author != me ||
            dyad_msg_decode(p, n, &m) != 0 || m.created + DYADS_MAIL_TTL <= now_s + 60)
            continue;
        wb_init(&item, MAIL_ITEM_MAX);
        if (dyads_seal(ds, peer, p, n, m.created, &item, id) == 0 && ds->sync != NULL &&
            !sync_mail_has(ds->sync, id))
            (void)sync_mail_post(ds->sync, item.p, item.len);
        wb_release(&item);
    }
}

/* ---- applying peer messages ---- */

static void
dyads_hold(struct dyads *ds, const uint8_t dyad[static DYAD_ID_BYTES], const uint8_t *p, size_t n)
{
    uint8_t *copy;

    for (size_t i = 0; i < ds->nheld; i++) {
        if (ds->held[i].n == n && memcmp(ds->held[i].p, p, n) == 0)
            return;
    }
    if ((copy = malloc(n)) == NULL)
        return;
    memcpy(copy, p, n);
    if (ds->nheld == DYADS_HELD_MAX) { /* drop the oldest: it is still in the inbox */
        free(ds->held[0].p);
        memmove(&ds->held[0], &ds->held[1], (DYADS_HELD_MAX - 1) * sizeof(ds->held[0]));
        ds->nheld--;
    }
    memcpy(ds->held[ds->nheld].dyad, dyad, DYAD_ID_BYTES);
    ds->held[ds->nheld].p = copy;
    ds->held[ds->nheld].n = n;
    ds->nheld++;
    ds->st.msgs_held++;
}

static const char *
dyads_refusal(int rc)
{
    switch (rc) {
    case PULL_ERR_PERM:
        return "not a party to this dyad, or the wrong side for that step";
    case PULL_ERR_STATE:
        return "not allowed in the dyad's current state";
    case PULL_ERR_BAD_SIG:
        return "bad signature";
    case PULL_ERR_EXPIRED:
        return "the dyad's deadline has passed";
    default:
        return pull_strerror(rc);
    }
}

/* Applies a peer's message to d (at index i), stores the result and tells watchers; it
 * neither holds nor retries (the callers do). quiet: at start-up (replays of the inbox,
 * whose refusals were already counted). Returns dyad_apply's result or the store's. */
static int
dyads_apply_one(struct dyads *ds, size_t i, const uint8_t *p, size_t n, bool quiet)
{
    struct dyad *d = ds->v[i];
    enum dyad_state before = dyad_state(d);
    char s[IDENT_SHORT_LEN + 1], why[64];
    enum dyad_kind kind = 0;
    struct dyad_msg m;
    int rc;

    short_id(dyad_id(d), s);
    if (dyad_msg_decode(p, n, &m) == 0)
        kind = m.kind;
    rc = dyad_apply(d, p, n, node_now_s(ds->n));
    if (rc == PULL_ERR_EXPIRED && dyad_on_timeout(d, node_now_s(ds->n)) == 1) {
        if (dyads_persist(ds, d) != 0)
            dyads_reload(ds, i);
        else
            dyads_changed(ds, d, before, "deadline passed");
    }
    if (rc == PULL_ERR_AGAIN || rc == PULL_ERR_DUPLICATE)
        return rc;
    if (rc != 0) {
        if (!quiet)
            dyads_refused(ds, "dyad %s: %s refused: %s", s, kind ? dyad_kind_name(kind) : "message",
                          dyads_refusal(rc));
        return rc;
    }
    if ((rc = dyads_persist(ds, d)) != 0) {
        /* the mail stays in the inbox: it is applied again at the next start */
        dyads_reload(ds, i);
        return rc;
    }
    ds->st.msgs_applied++;
    snprintf(why, sizeof(why), "%s from the counterpart", dyad_kind_name(kind));
    dyads_changed(ds, d, before, why);
    return 0;
}

/* Applies a peer's message to the known dyad id: held if it came early, and the held
 * messages of that dyad retried after it applied. */
static int
dyads_apply(struct dyads *ds, const uint8_t id[static DYAD_ID_BYTES], const uint8_t *p, size_t n,
            bool quiet)
{
    size_t i;
    int rc;

    if (dyads_find(ds, id, &i) == NULL) {
        dyads_hold(ds, id, p, n); /* its proposal may still be on its way */
        return PULL_ERR_AGAIN;
    }
    rc = dyads_apply_one(ds, i, p, n, quiet);
    if (rc == PULL_ERR_AGAIN)
        dyads_hold(ds, id, p, n);
    else if (rc == 0)
        dyads_retry_held(ds, id);
    return rc;
}

/* Is rec one of my live offers or needs? An older version of one counts as its live
 * version (a proposal made before a renew or an edit reached the proposer). */
static int
dyads_my_record(struct dyads *ds, const uint8_t id[static RECORD_ID_BYTES], uint64_t now_s)
{
    struct pull_wb w;
    struct envelope env;
    struct record *rec = NULL;
    uint8_t live[RECORD_ID_BYTES];
    int rc;

    wb_init(&w, RECORD_ENVELOPE_MAX);
    if (ds->people == NULL || people_record_live(ds->people, id, live) != 0)
        memcpy(live, id, RECORD_ID_BYTES);
    if ((rc = store_get(ds->n->store, live, &w)) != 0)
        goto out;
    if ((rec = malloc(sizeof(*rec))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    if ((rc = envelope_parse(w.p, w.len, &env)) != 0 ||
        (rc = record_decode(env.rec, env.rec_len, rec)) != 0)
        goto out;
    if (!dyads_is_me(ds, rec->author) || (rec->kind != RECORD_OFFER && rec->kind != RECORD_NEED))
        rc = PULL_ERR_PERM;
    else if (rec->expires <= now_s)
        rc = PULL_ERR_EXPIRED;
out:
    free(rec);
    wb_release(&w);
    return rc;
}

/* A PROPOSE addressed to me. */
static int
dyads_on_propose(struct dyads *ds, const uint8_t *p, size_t n, const struct dyad_msg *m, bool quiet)
{
    uint8_t id[DYAD_ID_BYTES];
    char s[IDENT_SHORT_LEN + 1];
    struct dyad *d = NULL;
    uint64_t now_s = node_now_s(ds->n);
    int rc;

    if ((rc = dyad_msg_id(p, n, id)) != 0)
        return rc;
    short_id(id, s);
    if (dyads_find(ds, id, NULL) != NULL)
        return PULL_ERR_DUPLICATE;
    if (!dyads_is_me(ds, m->responder))
        rc = PULL_ERR_PERM;
    else if ((rc = dyads_admit_proposal(ds, m->proposer, quiet)) != 0)
        return rc; /* counted and logged (the caps are checked before the signatures) */
    else if ((rc = dyads_my_record(ds, m->record, now_s)) == 0)
        rc = dyad_from_propose(NULL, p, n, now_s, &ds->t, &d);
    if (rc != 0) {
        if (!quiet)
            dyads_refused(ds, "dyad %s: proposal refused: %s", s,
                          rc == PULL_ERR_PERM        ? "not about one of my offers or needs"
                          : rc == PULL_ERR_NOT_FOUND ? "no such record of mine"
                                                     : pull_strerror(rc));
        return rc;
    }
    dyads_make_room(ds, dyad_proposer(d)); /* signed: its closed proposals may go */
    if ((rc = dyads_add(ds, d)) != 0) {
        dyad_free(d);
        return rc;
    }
    if ((rc = dyads_persist(ds, d)) != 0) {
        dyads_remove_at(ds, ds->len - 1);
        return rc;
    }
    ds->st.msgs_applied++;
    dyads_changed(ds, d, 0, "proposal received");
    dyads_retry_held(ds, id);
    return 0;
}

void
dyads_deliver(struct dyads *ds, const uint8_t *p, size_t n, bool quiet)
{
    struct dyad_msg m;
    int rc;

    if ((rc = dyad_msg_decode(p, n, &m)) != 0) {
        if (!quiet)
            dyads_refused(ds, "dyad: malformed message in mail: %s", pull_strerror(rc));
        return;
    }
    if (m.kind == DYAD_PROPOSE) {
        (void)dyads_on_propose(ds, p, n, &m, quiet);
        return;
    }
    (void)dyads_apply(ds, m.dyad, p, n, quiet);
}

/* Applies the held messages of dyad id again, as long as one of them applies. */
static void
dyads_retry_held(struct dyads *ds, const uint8_t id[static DYAD_ID_BYTES])
{
    struct dyads_held mine[DYADS_HELD_MAX];
    size_t k = 0, h = 0;
    bool progress = true;

    /* take this dyad's messages out of the list */
    while (h < ds->nheld) {
        if (memcmp(ds->held[h].dyad, id, DYAD_ID_BYTES) == 0) {
            mine[k++] = ds->held[h];
            memmove(&ds->held[h], &ds->held[h + 1], (ds->nheld - h - 1) * sizeof(ds->held[0]));
            ds->nheld--;
        } else {
            h++;
        }
    }
    while (progress && k > 0) {
        progress = false;
        for (size_t j = 0; j < k;) {
            size_t i;
            int rc = PULL_ERR_NOT_FOUND;
            if (dyads_find(ds, id, &i) != NULL)
                rc = dyads_apply_one(ds, i, mine[j].p, mine[j].n, false);
            if (rc == PULL_ERR_AGAIN) {
                j++;
                continue;
            }
            progress = progress || rc == 0;
            free(mine[j].p);
            mine[j] = mine[--k];
        }
    }
    /* still early: hold them again (a fresh copy each) */
    for (size_t j = 0; j < k; j++) {
        dyads_hold(ds, id, mine[j].p, mine[j].n);
        free(mine[j].p);
    }
}

/* The engine's hook: an item addressed to me arrived (kept by the engine, which also
 * dedupes): open it and apply its message. */
static void
dyads_on_mail(void *ctx, const uint8_t *item, size_t len, const uint8_t from[32])
{
    struct dyads *ds = ctx;
    struct mail_item m;
    size_t pn;
    int rc;

    (void)from;
    if ((rc = mail_parse(item, len, &m)) != 0 ||
        (rc = mail_open(&m, &ds->n->self, ds->plain, sizeof(ds->plain), &pn)) != 0) {
        dyads_refused(ds, "mail: an item for me does not open: %s", pull_strerror(rc));
        return;
    }
    dyads_deliver(ds, ds->plain, pn, false);
}

static void
dyads_on_peer_up(void *ctx, const uint8_t key[32])
{
    struct dyads *ds = ctx;
    const struct dyads_by *b = dyads_by_peer(ds, key);
    uint64_t now_s = node_now_s(ds->n);

    /* my messages to this peer that are not in the outbox any more (store error, crash):
     * seal them again (same bytes) so that they go out below */
    for (uint32_t k = 0; b != NULL && k < b->n; k++)
        dyads_refill_outbox(ds, b->v[k], now_s);
}

/* ---- timer ---- */

/* The start-up work that needs a running loop (submitting records, opening mail). */
struct inbox_copy {
    uint8_t **items;
    size_t *lens;
    size_t n, cap;
};

static void
inbox_collect(void *ctx, const uint8_t *item, size_t len)
{
    struct inbox_copy *c = ctx;
    uint8_t *p;

    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        uint8_t **v = realloc(c->items, cap * sizeof(*v));
        size_t *l;
        if (v == NULL)
            return;
        c->items = v;
        if ((l = realloc(c->lens, cap * sizeof(*l))) == NULL)
            return;
        c->lens = l;
        c->cap = cap;
    }
    if ((p = malloc(len)) == NULL)
        return;
    memcpy(p, item, len);
    c->items[c->n] = p;
    c->lens[c->n++] = len;
}

static void
dyads_boot(struct dyads *ds, uint64_t now_s)
{
    struct inbox_copy in = {0};

    for (size_t i = 0; i < ds->len; i++) {
        dyads_refill_outbox(ds, ds->v[i], now_s);
        if (dyad_state(ds->v[i]) == DYAD_ST_COMPLETED)
            dyads_attest(ds, ds->v[i]);
    }
    /* open the inbox again: messages held before the restart apply now (the others are
     * duplicates). Copies first: applying may change what the engine holds. */
    if (ds->sync != NULL)
        sync_mail_each_inbox(ds->sync, inbox_collect, &in);
    for (size_t i = 0; i < in.n; i++) {
        struct mail_item m;
        size_t pn;
        if (mail_parse(in.items[i], in.lens[i], &m) == 0 &&
            mail_open(&m, &ds->n->self, ds->plain, sizeof(ds->plain), &pn) == 0)
            dyads_deliver(ds, ds->plain, pn, true);
        free(in.items[i]);
    }
    free(in.items);
    free(in.lens);
    ds->booted = true;
}

void
dyads_tick_at(struct dyads *ds, uint64_t now_s)
{
    if (!ds->booted)
        dyads_boot(ds, now_s);
    for (size_t i = 0; i < ds->len; i++) {
        struct dyad *d = ds->v[i];
        enum dyad_state before = dyad_state(d);
        if (dyad_on_timeout(d, now_s) != 1)
            continue;
        if (dyads_persist(ds, d) != 0)
            dyads_reload(ds, i);
        else
            dyads_changed(ds, ds->v[i], before, "deadline passed");
    }
    (void)dyads_gc(ds, now_s);
}

static void
dyads_tick(uv_timer_t *t)
{
    struct dyads *ds = t->data;

    dyads_tick_at(ds, node_now_s(ds->n));
    dyads_arm(ds);
}

/* (Re)arms the timer for the earliest deadline, at most DYADS_TICK_MAX_S away. */
static void
dyads_arm(struct dyads *ds)
{
    uint64_t now_s, wait = DYADS_TICK_MAX_S;

    if (!ds->timer_init || ds->n->stopping || uv_is_closing((uv_handle_t *)&ds->timer))
        return;
    now_s = node_now_s(ds->n);
    for (size_t i = 0; i < ds->len; i++) {
        uint64_t dl = dyad_deadline(ds->v[i]);
        if (dl != 0 && (dl <= now_s ? 0 : dl - now_s) < wait)
            wait = dl <= now_s ? 0 : dl - now_s;
    }
    if (!ds->booted)
        wait = 0;
    uv_timer_start(&ds->timer, dyads_tick, wait * 1000 + (wait ? 0 : 10), 0);
}

/* ---- lifecycle ---- */

struct dyads_load {
    struct dyads *ds;
};

static int
load_dyad(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len)
{
    struct dyads_load *l = ctx;
    struct dyad *d = NULL;
    char s[IDENT_SHORT_LEN + 1];
    int rc;

    short_id(key, s);
    if ((rc = dyad_decode(NULL, val, len, &l->ds->t, &d)) != 0) {
        log_error("dyad %s: stored dyad does not load (kept in the store): %s", s,
                  pull_strerror(rc));
        return 0;
    }
    if (memcmp(dyad_id(d), key, DYAD_ID_BYTES) != 0 || dyad_role_of(d, l->ds->n->self.pk) < 0) {
        log_error("dyad %s: stored under the wrong key or not mine: ignored", s);
        dyad_free(d);
        return 0;
    }
    if (!dyads_load_admit(l->ds, d, node_now_s(l->ds->n))) {
        dyad_free(d); /* deleted from the store: past its retention, or beyond the caps */
        return 0;
    }
    if ((rc = dyads_add(l->ds, d)) != 0) {
        dyad_free(d);
        return rc;
    }
    return 0;
}

/* dyads_knows: the engine asks whether key is a person of one of my dyads (their mail is
 * not a stranger's). */
static bool
dyads_knows(void *ctx, const uint8_t key[32])
{
    struct dyads *ds = ctx;

    return dyads_by_peer(ds, key) != NULL;
}

int
dyads_start(struct node *n, struct sync *sync, struct dyads **out)
{
    struct dyads *ds = NULL;
    struct sync_mail_ops hooks = {dyads_on_mail, dyads_on_peer_up, dyads_knows, NULL};
    struct dyads_load l = {0};
    int rc;

    *out = NULL;
    if ((ds = calloc(1, sizeof(*ds))) == NULL)
        return PULL_ERR_NOMEM;
    ds->n = n;
    ds->sync = sync;
    dyad_timeouts_default(&ds->t);
    if ((rc = dyads_keep_init(ds)) != 0)
        goto fail;
    l.ds = ds;
    if ((rc = store_kv_iter(n->store, STORE_DYADS, load_dyad, &l)) != 0)
        goto fail;
    if ((rc = uv_timer_init(n->loop, &ds->timer)) != 0) {
        rc = PULL_ERR_IO;
        goto fail;
    }
    ds->timer.data = ds;
    ds->timer_init = true;
    *out = ds;
    hooks.ctx = ds;
    if (sync != NULL)
        sync_set_mail(sync, &hooks);
    log_info("dyads: %zu dyad(s), %zu open%s", ds->len, ds->nopen,
             ds->st.gc_deleted > 0 ? " (closed or over the caps: some deleted)" : "");
    dyads_arm(ds); /* first tick at once: start-up work that needs the loop */
    return 0;
fail:
    log_error("dyads: cannot start: %s", pull_strerror(rc));
    dyads_free(ds);
    return rc;
}

void
dyads_stop(struct dyads *ds)
{
    if (ds != NULL && ds->sync != NULL) {
        sync_set_mail(ds->sync, NULL);
        ds->sync = NULL;
    }

    if (ds == NULL || !ds->timer_init)
        return;
    if (!uv_is_closing((uv_handle_t *)&ds->timer)) {
        uv_timer_stop(&ds->timer);
        uv_close((uv_handle_t *)&ds->timer, NULL);
    }
}

void
dyads_free(struct dyads *ds)
{
    if (ds == NULL)
        return;
    /* the timer handle lives in ds: it must be closed (dyads_stop) and the loop must have
     * run its close callbacks before ds is freed */
    if (ds->timer_init && !uv_is_closing((uv_handle_t *)&ds->timer)) {
        uv_close((uv_handle_t *)&ds->timer, NULL);
        uv_run(ds->n->loop, UV_RUN_NOWAIT);
    }
    dyads_keep_release(ds);
    for (size_t i = 0; i < ds->nheld; i++)
        free(ds->held[i].p);
    sodium_memzero(ds->plain, sizeof(ds->plain));
    free(ds);
}

void
dyads_set_people(struct dyads *ds, struct people *p)
{
    if (ds == NULL)
        return;
    ds->people = p;
    for (size_t i = 0; i < ds->len && p != NULL; i++) {
        if (dyad_state(ds->v[i]) == DYAD_ST_COMPLETED)
            people_dyad_completed(p, dyad_id(ds->v[i]),
                                  dyad_peer(ds->v[i], dyads_my_role(ds, ds->v[i])));
    }
}

void
dyads_get_stats(struct dyads *ds, struct dyads_stats *st)
{
    struct syncer_stats ss;

    memset(st, 0, sizeof(*st));
    if (ds == NULL)
        return;
    *st = ds->st;
    st->dyads = ds->len;
    for (size_t i = 0; i < ds->len; i++) {
        st->open += dyad_is_open(ds->v[i]);
        st->completed += dyad_state(ds->v[i]) == DYAD_ST_COMPLETED;
    }
    if (ds->sync != NULL) { /* the mail itself is the engine's */
        sync_get_stats(ds->sync, &ss);
        st->mail_in = ss.mail_in;
        st->mail_relayed = ss.mail_relayed;
        st->mail_refused = ss.mail_refused;
        st->mail_bad = ss.mail_bad;
        st->mail_swept = ss.mail_swept;
        st->mail_held = ss.mail_held;
    }
}
