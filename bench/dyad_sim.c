/* The dyad simulation driver: see bench/dyad_sim.h. Every name here is prefixed dyad_sim_
 * because tests/sim/test_dyad.c includes this file next to its own code. */
#include "bench/dyad_sim.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/record.h"
#include "proto/dyad.h"
#include "proto/mail.h"
#include "proto/msg.h"

#define DYAD_SIM_T0 1800000000ull
#define DYAD_SIM_HOLD 8
#define DYAD_SIM_BATCH 64 /* items per MSG_MAIL at most */

struct dyad_sim_node {
    struct ident id;
    bool online;
    bool nat;
    uint64_t next_toggle;
    struct mail_index *relay; /* mail for others, and my own outgoing mail */
    struct mail_index *inbox; /* mail for me, kept until it expires (dedupe) */
};

struct dyad_sim_held {
    uint8_t *p;
    size_t n;
};

struct dyad_sim_side {
    struct dyad *view; /* NULL before the proposal arrives, and while offline */
    uint8_t *saved;    /* dyad_encode bytes while the node is offline */
    size_t saved_len;
    bool wants_done;
    uint64_t think_base; /* dyad_updated() when think was drawn */
    uint32_t think;
    uint64_t completed_at;
    struct dyad_sim_held held[DYAD_SIM_HOLD];
    unsigned nheld;
};

struct dyad_sim_plan {
    unsigned node[2]; /* proposer, responder */
    uint8_t record[RECORD_ID_BYTES];
    bool proposed;
    uint8_t id[DYAD_ID_BYTES];
    uint64_t t_propose;  /* when the proposer means to propose */
    uint64_t t_proposed; /* when it did */
    bool met;            /* both sides directly reachable at the previous step */
    struct dyad_sim_side side[2];
};

struct dyad_sim {
    const struct dyad_sim_config *cfg;
    struct dyad_sim_result *res;
    struct env_seeded env;
    struct dyad_timeouts t;
    struct mail_quota relay_q;
    struct mail_quota inbox_q;
    struct dyad_sim_node *nodes;
    struct dyad_sim_plan *plans;
    uint64_t now;
    /* scratch for gossip */
    uint8_t have[MAIL_IHAVE_MAX][MAIL_ID_BYTES];
    uint8_t want[MAIL_IHAVE_MAX][MAIL_ID_BYTES];
    uint8_t ids_in[MAIL_IHAVE_MAX][MAIL_ID_BYTES];
    uint8_t ids_in2[MAIL_IHAVE_MAX][MAIL_ID_BYTES];
    struct mail_ref refs[DYAD_SIM_BATCH];
    struct mail_ref refs_in[DYAD_SIM_BATCH];
};

void
dyad_sim_config_default(struct dyad_sim_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->seed = 1;
    cfg->nodes = 24;
    cfg->dyads = 100;
    cfg->tick_s = 600;
    cfg->horizon_s = 120u * 86400u;
    cfg->online_mean_s = 3u * 3600u;
    cfg->offline_mean_s = 9u * 3600u;
    cfg->nat_pct = 40;
    cfg->fanout = 2;
    cfg->gossip_every_s = 1800;
    cfg->mail_ttl_s = 5u * 86400u;
    cfg->propose_window_s = 10u * 86400u;
}

/* ---- randomness ---- */

static uint32_t
dyad_sim_uniform(struct dyad_sim *s, uint32_t upper)
{
    return env_uniform(&s->env.env, upper);
}

/* An exponentially distributed duration with the given mean (at least one tick). */
static uint64_t
dyad_sim_exp(struct dyad_sim *s, uint32_t mean)
{
    double u = ((double)(env_u64(&s->env.env) >> 11) + 0.5) / 9007199254740992.0;
    double v = -log(u) * (double)mean;

    return v < (double)s->cfg->tick_s ? s->cfg->tick_s : (uint64_t)v;
}

/* ---- network ---- */

static bool
dyad_sim_reachable(const struct dyad_sim *s, unsigned a, unsigned b)
{
    const struct dyad_sim_node *x = &s->nodes[a], *y = &s->nodes[b];

    return a != b && x->online && y->online && !(x->nat && y->nat);
}

static void dyad_sim_deliver(struct dyad_sim *s, unsigned node, const uint8_t *p, size_t n);

/* A node receives one mail item (from the sender directly, or from a relay). */
static void
dyad_sim_receive_item(struct dyad_sim *s, unsigned node, const uint8_t *p, size_t n)
{
    struct dyad_sim_node *y = &s->nodes[node];
    struct mail_item m;
    uint8_t plain[MAIL_PLAIN_MAX];
    size_t pn;
    int rc;

    if (mail_parse(p, n, &m) != 0) {
        s->res->errors++;
        return;
    }
    if (sodium_memcmp(m.recipient, y->id.pk, 32) != 0) {
        rc = mail_index_add(y->relay, p, n, s->now, NULL);
        if (rc == PULL_ERR_QUOTA)
            s->res->quota_refused++;
        else if (rc != 0 && rc != PULL_ERR_DUPLICATE && rc != PULL_ERR_EXPIRED)
            s->res->errors++;
        return;
    }
    rc = mail_index_add(y->inbox, p, n, s->now, NULL);
    if (rc == PULL_ERR_DUPLICATE || rc == PULL_ERR_EXPIRED)
        return;
    if (rc != 0 || (rc = mail_open(&m, &y->id, plain, sizeof(plain), &pn)) != 0) {
        s->res->errors++;
        return;
    }
    dyad_sim_deliver(s, node, plain, pn);
}

/* Sends one dyad message from side `from` of plan p: sealed, then direct or stored. */
static int
dyad_sim_send(struct dyad_sim *s, struct dyad_sim_plan *p, int from, const uint8_t *msg, size_t n,
              bool resend)
{
    unsigned a = p->node[from], b = p->node[1 - from];
    struct pull_wb item;
    int rc;

    wb_init(&item, 0);
    if ((rc = mail_seal(&s->env.env, &s->nodes[a].id, s->nodes[b].id.pk, msg, n,
                        s->now + s->cfg->mail_ttl_s, &item, NULL)) != 0)
        goto out;
    if (resend)
        s->res->resent++;
    else
        s->res->msgs++;
    if (dyad_sim_reachable(s, a, b)) {
        s->res->direct++;
        dyad_sim_receive_item(s, b, item.p, item.len);
    } else {
        s->res->mailed++;
        rc = mail_index_add(s->nodes[a].relay, item.p, item.len, s->now, NULL);
        if (rc == PULL_ERR_QUOTA)
            s->res->quota_refused++;
        else if (rc != 0)
            s->res->errors++;
        rc = 0;
    }
out:
    wb_release(&item);
    return rc;
}

/* ---- dyads at one node ---- */

static struct dyad_sim_plan *
dyad_sim_find(struct dyad_sim *s, const uint8_t id[static DYAD_ID_BYTES])
{
    for (unsigned i = 0; i < s->cfg->dyads; i++) {
        if (s->plans[i].proposed && memcmp(s->plans[i].id, id, DYAD_ID_BYTES) == 0)
            return &s->plans[i];
    }
    return NULL;
}

static void
dyad_sim_hold(struct dyad_sim *s, struct dyad_sim_side *sd, const uint8_t *p, size_t n)
{
    for (unsigned i = 0; i < sd->nheld; i++) {
        if (sd->held[i].n == n && memcmp(sd->held[i].p, p, n) == 0)
            return;
    }
    if (sd->nheld == DYAD_SIM_HOLD || (sd->held[sd->nheld].p = malloc(n)) == NULL) {
        s->res->errors++;
        return;
    }
    memcpy(sd->held[sd->nheld].p, p, n);
    sd->held[sd->nheld].n = n;
    sd->nheld++;
    s->res->held++;
}

/* Notes completion, and checks both attestations can be built and verify. */
static void
dyad_sim_check_done(struct dyad_sim *s, struct dyad_sim_plan *p, int side)
{
    struct dyad_sim_side *sd = &p->side[side];
    struct pull_wb w;
    struct envelope e;
    struct record *rec;

    if (sd->completed_at != 0 || sd->view == NULL || dyad_state(sd->view) != DYAD_ST_COMPLETED)
        return;
    sd->completed_at = s->now;
    wb_init(&w, 0);
    rec = malloc(sizeof(*rec));
    if (rec != NULL && dyad_attestation(sd->view, &s->nodes[p->node[side]].id, &w, NULL) == 0 &&
        envelope_open(w.p, w.len, s->now + 1, &e, rec) == 0 && rec->kind == RECORD_ATTESTATION)
        s->res->attestations++;
    else
        s->res->errors++;
    free(rec);
    wb_release(&w);
}

/* Applies one message to side's view; on progress, retries the held ones. */
static void
dyad_sim_apply(struct dyad_sim *s, struct dyad_sim_plan *p, int side, const uint8_t *msg, size_t n)
{
    struct dyad_sim_side *sd = &p->side[side];
    bool progress;
    int rc;

    if (sd->view == NULL) {
        dyad_sim_hold(s, sd, msg, n);
        return;
    }
    rc = dyad_apply(sd->view, msg, n, s->now);
    if (rc == PULL_ERR_AGAIN) {
        dyad_sim_hold(s, sd, msg, n);
        return;
    }
    if (rc == PULL_ERR_DUPLICATE) {
        s->res->duplicates++;
        return;
    }
    if (rc != 0) {
        if (s->cfg->verbose)
            fprintf(stderr, "dyad_sim: apply refused: %s\n", pull_strerror(rc));
        s->res->errors++;
        return;
    }
    do {
        progress = false;
        for (unsigned i = 0; i < sd->nheld; i++) {
            rc = dyad_apply(sd->view, sd->held[i].p, sd->held[i].n, s->now);
            if (rc == PULL_ERR_AGAIN)
                continue;
            if (rc != 0 && rc != PULL_ERR_DUPLICATE)
                s->res->errors++;
            free(sd->held[i].p);
            sd->held[i] = sd->held[--sd->nheld];
            progress = progress || rc == 0;
            i--;
        }
    } while (progress);
    dyad_sim_check_done(s, p, side);
}

/* A dyad message arrives at node (opened from mail). */
static void
dyad_sim_deliver(struct dyad_sim *s, unsigned node, const uint8_t *msg, size_t n)
{
    struct dyad_sim_plan *p;
    struct dyad_msg m;
    uint8_t id[DYAD_ID_BYTES];
    int side, rc;

    if (dyad_msg_decode(msg, n, &m) != 0) {
        s->res->errors++;
        return;
    }
    if (m.kind == DYAD_PROPOSE) {
        if (dyad_msg_id(msg, n, id) != 0 || (p = dyad_sim_find(s, id)) == NULL ||
            p->node[1] != node) {
            s->res->errors++;
            return;
        }
        if (p->side[1].view != NULL) {
            s->res->duplicates++;
            return;
        }
        if ((rc = dyad_from_propose(NULL, msg, n, s->now, &s->t, &p->side[1].view)) != 0) {
            if (s->cfg->verbose)
                fprintf(stderr, "dyad_sim: proposal refused: %s\n", pull_strerror(rc));
            s->res->errors++;
            return;
        }
        /* messages of the proposer that overtook its proposal: apply them now */
        {
            struct dyad_sim_held early[DYAD_SIM_HOLD];
            unsigned k = p->side[1].nheld;
            memcpy(early, p->side[1].held, k * sizeof(early[0]));
            p->side[1].nheld = 0;
            for (unsigned i = 0; i < k; i++) {
                dyad_sim_apply(s, p, 1, early[i].p, early[i].n);
                free(early[i].p);
            }
        }
        return;
    }
    if ((p = dyad_sim_find(s, m.dyad)) == NULL) {
        s->res->errors++;
        return;
    }
    side = p->node[0] == node ? 0 : 1;
    dyad_sim_apply(s, p, side, msg, n);
}

/* ---- people ---- */

static uint32_t
dyad_sim_think(struct dyad_sim *s, enum dyad_state st)
{
    switch (st) {
    case DYAD_ST_PROPOSED: /* read the proposal, decide */
        return dyad_sim_uniform(s, 2u * 86400u);
    case DYAD_ST_ACCEPTED: /* do the work */
        return 6u * 3600u + dyad_sim_uniform(s, 10u * 86400u);
    default: /* check, acknowledge */
        return dyad_sim_uniform(s, 2u * 86400u);
    }
}

/* Side `side` of plan p acts if its person is due to. */
static int
dyad_sim_person(struct dyad_sim *s, struct dyad_sim_plan *p, int side)
{
    struct dyad_sim_side *sd = &p->side[side];
    const struct ident *me = &s->nodes[p->node[side]].id;
    struct pull_wb w;
    enum dyad_kind kind = 0;
    enum dyad_role role = (enum dyad_role)side;
    int rc = 0;

    wb_init(&w, 0);
    if (side == 0 && !p->proposed) {
        if (s->now < p->t_propose)
            goto out;
        if ((rc = dyad_propose(NULL, me, p->record, s->nodes[p->node[1]].id.pk, "lend me a drill?",
                               16, s->now, &s->t, &sd->view, &w)) != 0)
            goto out;
        memcpy(p->id, dyad_id(sd->view), DYAD_ID_BYTES);
        p->proposed = true;
        p->t_proposed = s->now;
        rc = dyad_sim_send(s, p, side, w.p, w.len, false);
        goto out;
    }
    if (sd->view == NULL || !dyad_is_open(sd->view))
        goto out;
    if (sd->think_base != dyad_updated(sd->view)) {
        sd->think_base = dyad_updated(sd->view);
        sd->think = dyad_sim_think(s, dyad_state(sd->view));
    }
    if (s->now < sd->think_base + sd->think)
        goto out;
    switch (dyad_state(sd->view)) {
    case DYAD_ST_PROPOSED:
        if (side == 1)
            kind = DYAD_ACCEPT;
        break;
    case DYAD_ST_ACCEPTED:
        if (sd->wants_done)
            kind = DYAD_DONE;
        break;
    case DYAD_ST_DONE:
        if (sd->wants_done && !dyad_said_done(sd->view, role) && !dyad_acked(sd->view, role))
            kind = DYAD_DONE;
        else if (!dyad_acked(sd->view, role))
            kind = DYAD_ACK;
        break;
    default:
        break;
    }
    if (kind == 0)
        goto out;
    if ((rc = dyad_act(sd->view, me, kind, NULL, 0, true, s->now, &w)) != 0) {
        if (s->cfg->verbose)
            fprintf(stderr, "dyad_sim: %s refused: %s\n", dyad_kind_name(kind), pull_strerror(rc));
        s->res->errors++;
        rc = 0;
        goto out;
    }
    dyad_sim_check_done(s, p, side);
    rc = dyad_sim_send(s, p, side, w.p, w.len, false);
out:
    wb_release(&w);
    return rc;
}

/* ---- churn and restarts ---- */

static int
dyad_sim_toggle(struct dyad_sim *s, unsigned node)
{
    struct dyad_sim_node *x = &s->nodes[node];
    int rc = 0;

    x->online = !x->online;
    x->next_toggle =
        s->now + dyad_sim_exp(s, x->online ? s->cfg->online_mean_s : s->cfg->offline_mean_s);
    for (unsigned i = 0; i < s->cfg->dyads; i++) {
        struct dyad_sim_plan *p = &s->plans[i];
        for (int side = 0; side < 2; side++) {
            struct dyad_sim_side *sd = &p->side[side];
            if (p->node[side] != node)
                continue;
            if (!x->online && sd->view != NULL) {
                /* going down: persist, as pulld keeps dyads in LMDB */
                struct pull_wb w;
                wb_init(&w, 0);
                if ((rc = dyad_encode(sd->view, &w)) != 0) {
                    wb_release(&w);
                    return rc;
                }
                sd->saved = wb_steal(&w, &sd->saved_len);
                dyad_free(sd->view);
                sd->view = NULL;
                s->res->restarts++;
            } else if (x->online && sd->saved != NULL) {
                /* coming back: restore and re-verify everything */
                if ((rc = dyad_decode(NULL, sd->saved, sd->saved_len, &s->t, &sd->view)) != 0)
                    return rc;
                free(sd->saved);
                sd->saved = NULL;
            }
        }
    }
    return 0;
}

/* How many messages authored by `role` a view holds. */
static size_t
dyad_sim_count_by(const struct dyad *d, enum dyad_role role)
{
    size_t c = 0;

    for (size_t i = 0; d != NULL && i < dyad_msg_count(d); i++) {
        const uint8_t *q;
        size_t n;
        enum dyad_role a;
        if (dyad_msg_at(d, i, &q, &n, NULL, &a) == 0 && a == role)
            c++;
    }
    return c;
}

/* When the two sides meet directly, each resends what the other lacks. */
static int
dyad_sim_meet(struct dyad_sim *s, struct dyad_sim_plan *p)
{
    bool r = p->proposed && dyad_sim_reachable(s, p->node[0], p->node[1]);
    int rc = 0;

    if (r && !p->met) {
        for (int side = 0; side < 2 && rc == 0; side++) {
            struct dyad *mine = p->side[side].view, *theirs = p->side[1 - side].view;
            size_t skip = dyad_sim_count_by(theirs, (enum dyad_role)side), seen = 0;
            for (size_t i = 0; mine != NULL && i < dyad_msg_count(mine) && rc == 0; i++) {
                const uint8_t *q;
                size_t n;
                enum dyad_role a;
                if (dyad_msg_at(mine, i, &q, &n, NULL, &a) != 0 || (int)a != side)
                    continue;
                if (seen++ >= skip)
                    rc = dyad_sim_send(s, p, side, q, n, true);
            }
        }
    }
    p->met = r;
    return rc;
}

/* ---- gossip ---- */

/* dst pulls from src: src announces, dst wants, src sends, through the real codecs. */
static int
dyad_sim_exchange(struct dyad_sim *s, unsigned src, unsigned dst)
{
    struct dyad_sim_node *x = &s->nodes[src], *y = &s->nodes[dst];
    size_t total = mail_index_count(x->relay);
    struct pull_wb msg;
    int rc = 0;

    wb_init(&msg, MSG_MAX);
    for (size_t base = 0; base < total && rc == 0; base += MAIL_IHAVE_MAX) {
        size_t nh = 0, nw = 0, nh_in, nwant_in, unused;
        for (size_t i = base; i < total && nh < MAIL_IHAVE_MAX; i++) {
            const uint8_t *id, *rcpt;
            if (mail_index_at(x->relay, i, NULL, NULL, &id, &rcpt) == 0)
                memcpy(s->have[nh++], id, MAIL_ID_BYTES);
        }
        /* x -> y: IHAVE */
        wb_reset(&msg);
        if ((rc = mail_ihave_encode((const uint8_t(*)[MAIL_ID_BYTES])s->have, nh, NULL, 0, &msg)) !=
                0 ||
            (rc = mail_ihave_decode(msg.p, msg.len, s->ids_in, MAIL_IHAVE_MAX, &nh_in, s->ids_in2,
                                    MAIL_IHAVE_MAX, &unused)) != 0)
            break;
        for (size_t i = 0; i < nh_in; i++) {
            if (!mail_index_has(y->relay, s->ids_in[i]) && !mail_index_has(y->inbox, s->ids_in[i]))
                memcpy(s->want[nw++], s->ids_in[i], MAIL_ID_BYTES);
        }
        if (nw == 0)
            continue;
        /* y -> x: IHAVE with the wants */
        wb_reset(&msg);
        if ((rc = mail_ihave_encode(NULL, 0, (const uint8_t(*)[MAIL_ID_BYTES])s->want, nw, &msg)) !=
                0 ||
            (rc = mail_ihave_decode(msg.p, msg.len, s->ids_in2, MAIL_IHAVE_MAX, &unused, s->ids_in,
                                    MAIL_IHAVE_MAX, &nwant_in)) != 0)
            break;
        /* x -> y: MSG_MAIL batches */
        for (size_t i = 0; i < nwant_in && rc == 0;) {
            size_t k = 0, got, size = 8; /* array headers and the type */
            while (i < nwant_in && k < DYAD_SIM_BATCH) {
                const uint8_t *q;
                size_t n;
                if (mail_index_get(x->relay, s->ids_in[i], &q, &n) == 0) {
                    if (size + 3 + n > MSG_MAX)
                        break; /* next batch */
                    size += 3 + n;
                    s->refs[k++] = (struct mail_ref){q, n};
                }
                i++;
            }
            if (k == 0)
                continue;
            wb_reset(&msg);
            if ((rc = mail_msg_encode(s->refs, k, &msg)) != 0 ||
                (rc = mail_msg_decode(msg.p, msg.len, s->refs_in, DYAD_SIM_BATCH, &got)) != 0)
                break;
            for (size_t j = 0; j < got; j++) {
                s->res->relayed++;
                dyad_sim_receive_item(s, dst, s->refs_in[j].p, s->refs_in[j].len);
            }
        }
    }
    wb_release(&msg);
    return rc;
}

static int
dyad_sim_gossip(struct dyad_sim *s)
{
    unsigned *peers = NULL, np;
    int rc = 0;

    if ((peers = malloc(s->cfg->nodes * sizeof(*peers))) == NULL)
        return PULL_ERR_NOMEM;
    for (unsigned x = 0; x < s->cfg->nodes && rc == 0; x++) {
        if (!s->nodes[x].online)
            continue;
        np = 0;
        for (unsigned y = 0; y < s->cfg->nodes; y++) {
            if (dyad_sim_reachable(s, x, y))
                peers[np++] = y;
        }
        for (unsigned k = 0; k < s->cfg->fanout && np > 0 && rc == 0; k++) {
            unsigned j = dyad_sim_uniform(s, np), y = peers[j];
            peers[j] = peers[--np];
            if ((rc = dyad_sim_exchange(s, x, y)) == 0)
                rc = dyad_sim_exchange(s, y, x);
        }
    }
    free(peers);
    return rc;
}

/* ---- the run ---- */

static bool
dyad_sim_settled(const struct dyad_sim_plan *p)
{
    for (int side = 0; side < 2; side++) {
        const struct dyad_sim_side *sd = &p->side[side];
        if (sd->completed_at != 0)
            continue;
        if (!p->proposed || sd->saved != NULL || sd->view == NULL || dyad_is_open(sd->view))
            return false;
    }
    return true;
}

static void
dyad_sim_free(struct dyad_sim *s)
{
    if (s->plans != NULL) {
        for (unsigned i = 0; i < s->cfg->dyads; i++) {
            for (int side = 0; side < 2; side++) {
                struct dyad_sim_side *sd = &s->plans[i].side[side];
                dyad_free(sd->view);
                free(sd->saved);
                for (unsigned h = 0; h < sd->nheld; h++)
                    free(sd->held[h].p);
            }
        }
    }
    if (s->nodes != NULL) {
        for (unsigned i = 0; i < s->cfg->nodes; i++) {
            mail_index_free(s->nodes[i].relay);
            mail_index_free(s->nodes[i].inbox);
            ident_wipe(&s->nodes[i].id);
        }
    }
    free(s->plans);
    free(s->nodes);
    free(s);
}

int
dyad_sim_run(const struct dyad_sim_config *cfg, struct dyad_sim_result *res)
{
    struct dyad_sim *s = NULL;
    uint64_t end, next_gossip;
    double sum = 0;
    int rc = 0;

    memset(res, 0, sizeof(*res));
    if (cfg->nodes < 2 || cfg->dyads == 0 || cfg->tick_s == 0)
        return PULL_ERR_INVAL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return PULL_ERR_NOMEM;
    s->cfg = cfg;
    s->res = res;
    s->now = DYAD_SIM_T0;
    env_seeded_init(&s->env, cfg->seed, 0, DYAD_SIM_T0);
    dyad_timeouts_default(&s->t);
    mail_quota_default(&s->relay_q);
    mail_quota_default(&s->inbox_q);
    s->inbox_q.sender_items = UINT32_MAX; /* my own inbox is not relay storage */
    s->inbox_q.sender_bytes = UINT64_MAX;
    s->nodes = calloc(cfg->nodes, sizeof(*s->nodes));
    s->plans = calloc(cfg->dyads, sizeof(*s->plans));
    if (s->nodes == NULL || s->plans == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    for (unsigned i = 0; i < cfg->nodes; i++) {
        struct dyad_sim_node *x = &s->nodes[i];
        uint8_t seed[32];
        env_random(&s->env.env, seed, sizeof(seed));
        if ((rc = ident_from_seed(&x->id, seed)) != 0 ||
            (rc = mail_index_new(NULL, &s->relay_q, &x->relay)) != 0 ||
            (rc = mail_index_new(NULL, &s->inbox_q, &x->inbox)) != 0)
            goto out;
        sodium_memzero(seed, sizeof(seed));
        x->nat = dyad_sim_uniform(s, 100) < cfg->nat_pct;
        x->online =
            dyad_sim_uniform(s, cfg->online_mean_s + cfg->offline_mean_s) < cfg->online_mean_s;
        x->next_toggle =
            s->now + dyad_sim_exp(s, x->online ? cfg->online_mean_s : cfg->offline_mean_s);
    }
    for (unsigned i = 0; i < cfg->dyads; i++) {
        struct dyad_sim_plan *p = &s->plans[i];
        unsigned who;
        p->node[0] = dyad_sim_uniform(s, cfg->nodes);
        p->node[1] = (p->node[0] + 1 + dyad_sim_uniform(s, cfg->nodes - 1)) % cfg->nodes;
        env_random(&s->env.env, p->record, sizeof(p->record));
        p->t_propose = s->now + dyad_sim_uniform(s, cfg->propose_window_s + 1);
        who = dyad_sim_uniform(s, 20); /* 9/20 proposer, 9/20 responder, 2/20 both */
        p->side[0].wants_done = who < 9 || who >= 18;
        p->side[1].wants_done = who >= 9;
    }

    end = s->now + cfg->horizon_s;
    next_gossip = s->now;
    for (; s->now < end; s->now += cfg->tick_s) {
        bool all = true;
        s->env.wall_s = s->now;
        for (unsigned i = 0; i < cfg->nodes; i++) {
            if (s->now >= s->nodes[i].next_toggle && (rc = dyad_sim_toggle(s, i)) != 0)
                goto out;
        }
        for (unsigned i = 0; i < cfg->nodes; i++) {
            if (!s->nodes[i].online)
                continue;
            mail_index_sweep(s->nodes[i].relay, s->now);
            mail_index_sweep(s->nodes[i].inbox, s->now);
        }
        for (unsigned i = 0; i < cfg->dyads; i++) {
            struct dyad_sim_plan *p = &s->plans[i];
            for (int side = 0; side < 2; side++) {
                struct dyad_sim_side *sd = &p->side[side];
                if (!s->nodes[p->node[side]].online)
                    continue;
                if (sd->view != NULL && dyad_on_timeout(sd->view, s->now) == 1)
                    res->expired++;
                if ((rc = dyad_sim_person(s, p, side)) != 0)
                    goto out;
            }
            if ((rc = dyad_sim_meet(s, p)) != 0)
                goto out;
        }
        if (s->now >= next_gossip) {
            if ((rc = dyad_sim_gossip(s)) != 0)
                goto out;
            next_gossip = s->now + cfg->gossip_every_s;
        }
        for (unsigned i = 0; i < cfg->dyads && all; i++)
            all = dyad_sim_settled(&s->plans[i]);
        if (all)
            break;
    }
    res->sim_s = s->now - DYAD_SIM_T0;
    res->dyads = cfg->dyads;
    for (unsigned i = 0; i < cfg->dyads; i++) {
        struct dyad_sim_plan *p = &s->plans[i];
        if (p->side[0].completed_at != 0 && p->side[1].completed_at != 0) {
            uint64_t at = p->side[0].completed_at > p->side[1].completed_at
                              ? p->side[0].completed_at
                              : p->side[1].completed_at;
            double d = (double)(at - p->t_proposed);
            res->completed++;
            sum += d;
            if (d > res->max_complete_s)
                res->max_complete_s = d;
        } else if (dyad_sim_settled(p)) {
            res->closed_other++;
        } else {
            res->stuck++;
        }
    }
    res->mean_complete_s = res->completed ? sum / res->completed : 0;
    for (unsigned i = 0; cfg->verbose && i < cfg->dyads; i++) {
        const struct dyad_sim_plan *p = &s->plans[i];
        const char *st[2];
        if (p->side[0].completed_at != 0 && p->side[1].completed_at != 0)
            continue;
        for (int side = 0; side < 2; side++) {
            const struct dyad_sim_side *sd = &p->side[side];
            st[side] = sd->view != NULL    ? dyad_state_name(dyad_state(sd->view))
                       : sd->saved != NULL ? "(offline)"
                                           : "(none)";
        }
        fprintf(stderr, "dyad_sim: unfinished %u: node %u%s -> %u%s, %s / %s\n", i, p->node[0],
                s->nodes[p->node[0]].nat ? " (nat)" : "", p->node[1],
                s->nodes[p->node[1]].nat ? " (nat)" : "", st[0], st[1]);
    }
out:
    dyad_sim_free(s);
    return rc;
}
