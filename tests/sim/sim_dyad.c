/* sim_dyad: dyads under churn through the engine (see sim_dyad.h). */
#include "tests/sim/sim_dyad.h"

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
#include "proto/syncer.h"
#include "tests/sim/sim.h"

#define SD_HOLD 8 /* messages one side holds for an earlier one */
#define SD_BOOT_PEERS 3

struct sd_held {
    uint8_t *p;
    size_t n;
};

struct sd_side {
    struct dyad *view; /* NULL before the proposal arrives, and while offline */
    uint8_t *saved;    /* dyad_encode bytes while the node is offline (its LMDB) */
    size_t saved_len;
    bool wants_done;
    uint64_t think_base; /* dyad_updated() when think was drawn */
    uint32_t think;
    uint64_t completed_at;
    struct sd_held held[SD_HOLD]; /* in memory only: lost with a crash */
    unsigned nheld;
};

struct sd_plan {
    unsigned node[2]; /* proposer, responder */
    uint8_t record[RECORD_ID_BYTES];
    bool proposed;
    uint8_t id[DYAD_ID_BYTES];
    uint64_t t_propose;  /* when the proposer means to propose (wall s) */
    uint64_t t_proposed; /* when it did */
    struct sd_side side[2];
};

struct sd_node {
    bool online;
    uint64_t next_toggle; /* wall s */
};

struct sd {
    const struct sim_dyad_config *cfg;
    struct sim_dyad_result *res;
    struct sim *sim;
    struct env_seeded env; /* the people's and the churn's randomness */
    struct dyad_timeouts t;
    struct sd_node *nodes;
    struct sd_plan *plans;
    uint8_t plain[MAIL_PLAIN_MAX];
};

void
sim_dyad_config_default(struct sim_dyad_config *cfg)
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
    cfg->mail_ttl_s = 5u * 86400u;
    cfg->propose_window_s = 10u * 86400u;
}

/* ---- randomness ---- */

static uint32_t
sd_uniform(struct sd *s, uint32_t upper)
{
    return env_uniform(&s->env.env, upper);
}

/* An exponentially distributed duration with the given mean (at least one tick). */
static uint64_t
sd_exp(struct sd *s, uint32_t mean)
{
    double u = ((double)(env_u64(&s->env.env) >> 11) + 0.5) / 9007199254740992.0;
    double v = -log(u) * (double)mean;

    return v < (double)s->cfg->tick_s ? s->cfg->tick_s : (uint64_t)v;
}

static uint64_t
sd_now(const struct sd *s)
{
    return sim_wall_s(s->sim);
}

/* ---- sending: seal, hand to the engine ---- */

/* Seals msg from node a to node b and posts it to a's engine. The ephemeral key comes from
 * an env seeded with the message, so sealing it again gives the same item (pulld's
 * dyads_seal does the same). */
static int
sd_post(struct sd *s, unsigned a, unsigned b, const uint8_t *msg, size_t n)
{
    struct env_seeded seal;
    struct dyad_msg m;
    struct pull_wb item;
    uint8_t h[8];
    struct syncer *e;
    int rc;

    crypto_generichash(h, sizeof(h), msg, n, sim_key(s->sim, b), 32);
    env_seeded_init(&seal, be64dec(h), sim_now(s->sim), sd_now(s));
    wb_init(&item, MAIL_ITEM_MAX);
    if ((rc = dyad_msg_decode(msg, n, &m)) != 0 ||
        (rc = mail_seal(&seal.env, sim_ident(s->sim, a), sim_key(s->sim, b), msg, n,
                        m.created + s->cfg->mail_ttl_s, &item, NULL)) != 0)
        goto out;
    s->res->msgs++;
    if ((e = sim_engine(s->sim, a)) == NULL) {
        rc = PULL_ERR_STATE;
        goto out;
    }
    rc = syncer_mail_post(e, item.p, item.len, sim_now(s->sim));
    sim_after(s->sim, a);
    if (rc == PULL_ERR_DUPLICATE)
        rc = 0;
    if (rc != 0) {
        if (s->cfg->verbose)
            fprintf(stderr, "sim_dyad: post refused: %s\n", pull_strerror(rc));
        s->res->errors++;
        rc = 0;
    }
out:
    wb_release(&item);
    return rc;
}

/* ---- receiving: apply, hold, retry ---- */

static struct sd_plan *
sd_find(struct sd *s, const uint8_t id[static DYAD_ID_BYTES])
{
    for (unsigned i = 0; i < s->cfg->dyads; i++) {
        if (s->plans[i].proposed && memcmp(s->plans[i].id, id, DYAD_ID_BYTES) == 0)
            return &s->plans[i];
    }
    return NULL;
}

static void
sd_hold(struct sd *s, struct sd_side *sd, const uint8_t *p, size_t n)
{
    for (unsigned i = 0; i < sd->nheld; i++) {
        if (sd->held[i].n == n && memcmp(sd->held[i].p, p, n) == 0)
            return;
    }
    if (sd->nheld == SD_HOLD || (sd->held[sd->nheld].p = malloc(n)) == NULL) {
        s->res->errors++;
        return;
    }
    memcpy(sd->held[sd->nheld].p, p, n);
    sd->held[sd->nheld].n = n;
    sd->nheld++;
    s->res->held++;
}

static void
sd_drop_held(struct sd_side *sd)
{
    for (unsigned i = 0; i < sd->nheld; i++)
        free(sd->held[i].p);
    sd->nheld = 0;
}

/* Notes completion, and checks that the attestation can be built and verifies. */
static void
sd_check_done(struct sd *s, struct sd_plan *p, int side)
{
    struct sd_side *sd = &p->side[side];
    struct pull_wb w;
    struct envelope e;
    struct record *rec;

    if (sd->completed_at != 0 || sd->view == NULL || dyad_state(sd->view) != DYAD_ST_COMPLETED)
        return;
    sd->completed_at = sd_now(s);
    wb_init(&w, 0);
    rec = malloc(sizeof(*rec));
    if (rec != NULL &&
        dyad_attestation(sd->view, sim_ident(s->sim, p->node[side]), &w, NULL) == 0 &&
        envelope_open(w.p, w.len, sd_now(s) + 1, &e, rec) == 0 && rec->kind == RECORD_ATTESTATION)
        s->res->attestations++;
    else
        s->res->errors++;
    free(rec);
    wb_release(&w);
}

/* Applies one message to side's view; on progress, retries the held ones. quiet: a replay
 * of the inbox after a restart (duplicates are expected, not counted). */
static void
sd_apply(struct sd *s, struct sd_plan *p, int side, const uint8_t *msg, size_t n, bool quiet)
{
    struct sd_side *sd = &p->side[side];
    bool progress;
    int rc;

    if (sd->view == NULL) {
        sd_hold(s, sd, msg, n);
        return;
    }
    rc = dyad_apply(sd->view, msg, n, sd_now(s));
    if (rc == PULL_ERR_AGAIN) {
        sd_hold(s, sd, msg, n);
        return;
    }
    if (rc == PULL_ERR_DUPLICATE) {
        s->res->duplicates += !quiet;
        return;
    }
    if (rc != 0) {
        if (s->cfg->verbose)
            fprintf(stderr, "sim_dyad: apply refused: %s\n", pull_strerror(rc));
        s->res->errors++;
        return;
    }
    do {
        progress = false;
        for (unsigned i = 0; i < sd->nheld; i++) {
            rc = dyad_apply(sd->view, sd->held[i].p, sd->held[i].n, sd_now(s));
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
    sd_check_done(s, p, side);
}

/* An opened dyad message arrives at node. */
static void
sd_deliver(struct sd *s, unsigned node, const uint8_t *msg, size_t n, bool quiet)
{
    struct sd_plan *p;
    struct dyad_msg m;
    uint8_t id[DYAD_ID_BYTES];
    int rc;

    if (dyad_msg_decode(msg, n, &m) != 0) {
        s->res->errors++;
        return;
    }
    if (m.kind != DYAD_PROPOSE) {
        if ((p = sd_find(s, m.dyad)) == NULL) {
            s->res->errors++;
            return;
        }
        sd_apply(s, p, p->node[0] == node ? 0 : 1, msg, n, quiet);
        return;
    }
    if (dyad_msg_id(msg, n, id) != 0 || (p = sd_find(s, id)) == NULL || p->node[1] != node) {
        s->res->errors++;
        return;
    }
    if (p->side[1].view != NULL) {
        s->res->duplicates += !quiet;
        return;
    }
    if ((rc = dyad_from_propose(NULL, msg, n, sd_now(s), &s->t, &p->side[1].view)) != 0) {
        if (s->cfg->verbose)
            fprintf(stderr, "sim_dyad: proposal refused: %s\n", pull_strerror(rc));
        s->res->errors++;
        return;
    }
    {
        /* messages of the proposer that overtook its proposal: apply them now */
        struct sd_held early[SD_HOLD];
        unsigned k = p->side[1].nheld;
        memcpy(early, p->side[1].held, k * sizeof(early[0]));
        p->side[1].nheld = 0;
        for (unsigned i = 0; i < k; i++) {
            sd_apply(s, p, 1, early[i].p, early[i].n, quiet);
            free(early[i].p);
        }
    }
}

/* Opens an item addressed to node; returns the plaintext length or 0. */
static size_t
sd_open(struct sd *s, unsigned node, const uint8_t *item, size_t len)
{
    struct mail_item m;
    size_t pn;

    if (mail_parse(item, len, &m) != 0 ||
        mail_open(&m, sim_ident(s->sim, node), s->plain, sizeof(s->plain), &pn) != 0) {
        s->res->errors++;
        return 0;
    }
    return pn;
}

/* The engine's MAIL action: a new item for node, brought by from. */
static void
sd_on_mail(void *ctx, uint32_t node, int from, const uint8_t *item, size_t len)
{
    struct sd *s = ctx;
    struct mail_item m;
    size_t pn;

    s->res->delivered++;
    if (mail_parse(item, len, &m) == 0 && from >= 0 &&
        memcmp(m.sender, sim_key(s->sim, (uint32_t)from), 32) == 0)
        s->res->direct++;
    else
        s->res->relayed++;
    if ((pn = sd_open(s, node, item, len)) > 0)
        sd_deliver(s, node, s->plain, pn, false);
}

/* What node's host knows (pulld's known()): the authors of the records it holds - every
 * node holds every offer, so every responder is one - and the people of its dyads. */
static bool
sd_known(void *ctx, uint32_t node, const uint8_t key[32])
{
    struct sd *s = ctx;

    for (unsigned i = 0; i < s->cfg->dyads; i++) {
        const struct sd_plan *p = &s->plans[i];
        if (memcmp(sim_key(s->sim, p->node[1]), key, 32) == 0)
            return true;
        if (p->node[1] == node && memcmp(sim_key(s->sim, p->node[0]), key, 32) == 0 &&
            (p->side[1].view != NULL || p->side[1].saved != NULL))
            return true;
    }
    return false;
}

/* After a restart: open the inbox again, so that messages held before the crash apply
 * (the others are duplicates), as pulld's dyads_boot does. Copies first. */
struct sd_inbox {
    uint8_t **items;
    size_t *lens;
    size_t n;
};

static void
sd_inbox_collect(void *ctx, const uint8_t *item, size_t len)
{
    struct sd_inbox *in = ctx;
    uint8_t **v = realloc(in->items, (in->n + 1) * sizeof(*v));
    size_t *l;

    if (v == NULL)
        return;
    in->items = v;
    if ((l = realloc(in->lens, (in->n + 1) * sizeof(*l))) == NULL)
        return;
    in->lens = l;
    if ((in->items[in->n] = malloc(len)) == NULL)
        return;
    memcpy(in->items[in->n], item, len);
    in->lens[in->n++] = len;
}

static void
sd_reopen_inbox(struct sd *s, unsigned node)
{
    struct sd_inbox in = {NULL, NULL, 0};
    struct syncer *e = sim_engine(s->sim, node);

    if (e != NULL)
        syncer_mail_each_inbox(e, sd_inbox_collect, &in);
    for (size_t i = 0; i < in.n; i++) {
        size_t pn = sd_open(s, node, in.items[i], in.lens[i]);
        if (pn > 0)
            sd_deliver(s, node, s->plain, pn, true);
        free(in.items[i]);
    }
    free(in.items);
    free(in.lens);
}

/* ---- people ---- */

static uint32_t
sd_think(struct sd *s, enum dyad_state st)
{
    switch (st) {
    case DYAD_ST_PROPOSED: /* read the proposal, decide */
        return sd_uniform(s, 2u * 86400u);
    case DYAD_ST_ACCEPTED: /* do the work */
        return 6u * 3600u + sd_uniform(s, 10u * 86400u);
    default: /* check, acknowledge */
        return sd_uniform(s, 2u * 86400u);
    }
}

/* Side `side` of plan p acts if its person is due to. */
static int
sd_person(struct sd *s, struct sd_plan *p, int side)
{
    struct sd_side *sd = &p->side[side];
    const struct ident *me = sim_ident(s->sim, p->node[side]);
    uint64_t now = sd_now(s);
    struct pull_wb w;
    enum dyad_kind kind = 0;
    enum dyad_role role = (enum dyad_role)side;
    int rc = 0;

    wb_init(&w, 0);
    if (side == 0 && !p->proposed) {
        if (now < p->t_propose)
            goto out;
        if ((rc = dyad_propose(NULL, me, p->record, sim_key(s->sim, p->node[1]), "lend me a drill?",
                               16, now, &s->t, &sd->view, &w)) != 0)
            goto out;
        memcpy(p->id, dyad_id(sd->view), DYAD_ID_BYTES);
        p->proposed = true;
        p->t_proposed = now;
        rc = sd_post(s, p->node[0], p->node[1], w.p, w.len);
        goto out;
    }
    if (sd->view == NULL || !dyad_is_open(sd->view))
        goto out;
    if (sd->think_base != dyad_updated(sd->view)) {
        sd->think_base = dyad_updated(sd->view);
        sd->think = sd_think(s, dyad_state(sd->view));
    }
    if (now < sd->think_base + sd->think)
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
    if ((rc = dyad_act(sd->view, me, kind, NULL, 0, true, now, &w)) != 0) {
        if (s->cfg->verbose)
            fprintf(stderr, "sim_dyad: %s refused: %s\n", dyad_kind_name(kind), pull_strerror(rc));
        s->res->errors++;
        rc = 0;
        goto out;
    }
    sd_check_done(s, p, side);
    rc = sd_post(s, p->node[side], p->node[1 - side], w.p, w.len);
out:
    wb_release(&w);
    return rc;
}

/* ---- churn ---- */

static void
sd_add_engine_stats(struct sd *s, unsigned node)
{
    struct syncer *e = sim_engine(s->sim, node);
    struct syncer_stats st;

    if (e == NULL)
        return;
    syncer_get_stats(e, &st);
    s->res->mail_in += st.mail_in;
    s->res->mail_carried += st.mail_relayed;
    s->res->mail_refused += st.mail_refused;
    s->res->mail_bad += st.mail_bad;
    s->res->mail_swept += st.mail_swept;
    s->res->peers_dropped += st.peers_dropped;
}

/* Node goes down (a crash: its dyads are on disk, held messages are lost) or comes back
 * (its dyads restored and re-verified, its inbox opened again). */
static int
sd_toggle(struct sd *s, unsigned node)
{
    struct sd_node *x = &s->nodes[node];
    int rc = 0;

    x->online = !x->online;
    x->next_toggle =
        sd_now(s) + sd_exp(s, x->online ? s->cfg->online_mean_s : s->cfg->offline_mean_s);
    if (!x->online) {
        sd_add_engine_stats(s, node);
        sim_kill(s->sim, node);
    } else {
        sim_restart(s->sim, node);
        s->res->restarts++;
    }
    for (unsigned i = 0; i < s->cfg->dyads; i++) {
        struct sd_plan *p = &s->plans[i];
        for (int side = 0; side < 2; side++) {
            struct sd_side *sd = &p->side[side];
            if (p->node[side] != node)
                continue;
            if (!x->online && sd->view != NULL) {
                struct pull_wb w;
                wb_init(&w, 0);
                if ((rc = dyad_encode(sd->view, &w)) != 0) {
                    wb_release(&w);
                    return rc;
                }
                sd->saved = wb_steal(&w, &sd->saved_len);
                dyad_free(sd->view);
                sd->view = NULL;
                sd_drop_held(sd);
            } else if (x->online && sd->saved != NULL) {
                if ((rc = dyad_decode(NULL, sd->saved, sd->saved_len, &s->t, &sd->view)) != 0)
                    return rc;
                free(sd->saved);
                sd->saved = NULL;
            }
        }
    }
    if (x->online)
        sd_reopen_inbox(s, node);
    return 0;
}

/* ---- the run ---- */

static bool
sd_settled(const struct sd_plan *p)
{
    for (int side = 0; side < 2; side++) {
        const struct sd_side *sd = &p->side[side];
        if (sd->completed_at != 0)
            continue;
        if (!p->proposed || sd->saved != NULL || sd->view == NULL || dyad_is_open(sd->view))
            return false;
    }
    return true;
}

static void
sd_free(struct sd *s)
{
    if (s->plans != NULL) {
        for (unsigned i = 0; i < s->cfg->dyads; i++) {
            for (int side = 0; side < 2; side++) {
                struct sd_side *sd = &s->plans[i].side[side];
                dyad_free(sd->view);
                free(sd->saved);
                sd_drop_held(sd);
            }
        }
    }
    sim_free(s->sim);
    free(s->plans);
    free(s->nodes);
    free(s);
}

static int
sd_setup(struct sd *s)
{
    const struct sim_dyad_config *cfg = s->cfg;
    struct sim_config c;
    uint32_t *open = NULL, nopen = 0;
    int rc;

    sim_config_default(&c);
    c.nodes = cfg->nodes;
    c.seed = cfg->seed;
    c.idents = true;
    /* a few dozen nodes, each with at most a few connections: the engine's defaults, but
     * with the periodic reconciliation of pulld (there are no records to reconcile) */
    c.engine.sync_interval_ms = 30000;
    if ((rc = sim_new(&c, &s->sim)) != 0)
        return rc;
    if ((open = calloc(cfg->nodes, sizeof(*open))) == NULL)
        return PULL_ERR_NOMEM;
    for (unsigned i = 0; i < cfg->nodes; i++) {
        bool nat = sd_uniform(s, 100) < cfg->nat_pct;
        sim_set_nat(s->sim, i, nat);
        if (!nat)
            open[nopen++] = i;
    }
    if (nopen == 0) { /* someone must accept connections */
        sim_set_nat(s->sim, 0, false);
        open[nopen++] = 0;
    }
    for (unsigned i = 0; i < cfg->nodes; i++) {
        uint32_t boot[SD_BOOT_PEERS], nb = 0;
        for (unsigned k = 0; k < SD_BOOT_PEERS * 4 && nb < SD_BOOT_PEERS; k++) {
            uint32_t b = open[sd_uniform(s, nopen)];
            bool dup = b == i;
            for (uint32_t j = 0; j < nb; j++)
                dup = dup || boot[j] == b;
            if (!dup)
                boot[nb++] = b;
        }
        sim_set_bootstrap(s->sim, i, boot, nb);
    }
    free(open);
    sim_set_mail(s->sim, &(struct sim_mail_hook){sd_on_mail, sd_known, s});
    for (unsigned i = 0; i < cfg->nodes; i++) {
        struct sd_node *x = &s->nodes[i];
        x->online = sd_uniform(s, cfg->online_mean_s + cfg->offline_mean_s) < cfg->online_mean_s;
        x->next_toggle =
            sd_now(s) + sd_exp(s, x->online ? cfg->online_mean_s : cfg->offline_mean_s);
        if (x->online)
            sim_restart(s->sim, i);
    }
    for (unsigned i = 0; i < cfg->dyads; i++) {
        struct sd_plan *p = &s->plans[i];
        unsigned who;
        p->node[0] = sd_uniform(s, cfg->nodes);
        p->node[1] = (p->node[0] + 1 + sd_uniform(s, cfg->nodes - 1)) % cfg->nodes;
        env_random(&s->env.env, p->record, sizeof(p->record));
        p->t_propose = sd_now(s) + sd_uniform(s, cfg->propose_window_s + 1);
        who = sd_uniform(s, 20); /* 9/20 proposer, 9/20 responder, 2/20 both */
        p->side[0].wants_done = who < 9 || who >= 18;
        p->side[1].wants_done = who >= 9;
    }
    return 0;
}

static void
sd_report(struct sd *s)
{
    const struct sim_dyad_config *cfg = s->cfg;
    struct sim_dyad_result *res = s->res;
    struct sim_counters cnt;
    double sum = 0;

    res->sim_s = sim_now(s->sim) / 1000;
    res->dyads = cfg->dyads;
    for (unsigned i = 0; i < cfg->nodes; i++) {
        if (s->nodes[i].online)
            sd_add_engine_stats(s, i);
    }
    sim_counters(s->sim, &cnt);
    res->mail_msgs = cnt.msgs[MSG_MAIL] + cnt.msgs[MSG_MAIL_IHAVE];
    res->mail_bytes = cnt.bytes[MSG_MAIL] + cnt.bytes[MSG_MAIL_IHAVE];
    res->wire_msgs = cnt.msgs_total;
    res->wire_bytes = cnt.bytes_total;
    res->connections = cnt.connections;
    for (unsigned i = 0; i < cfg->dyads; i++) {
        struct sd_plan *p = &s->plans[i];
        if (p->side[0].completed_at != 0 && p->side[1].completed_at != 0) {
            uint64_t at = p->side[0].completed_at > p->side[1].completed_at
                              ? p->side[0].completed_at
                              : p->side[1].completed_at;
            double d = (double)(at - p->t_proposed);
            res->completed++;
            sum += d;
            if (d > res->max_complete_s)
                res->max_complete_s = d;
        } else if (sd_settled(p)) {
            res->closed_other++;
        } else {
            res->stuck++;
        }
    }
    res->mean_complete_s = res->completed ? sum / res->completed : 0;
    for (unsigned i = 0; cfg->verbose && i < cfg->dyads; i++) {
        const struct sd_plan *p = &s->plans[i];
        const char *st[2];
        if (p->side[0].completed_at != 0 && p->side[1].completed_at != 0)
            continue;
        for (int side = 0; side < 2; side++) {
            const struct sd_side *sd = &p->side[side];
            st[side] = sd->view != NULL    ? dyad_state_name(dyad_state(sd->view))
                       : sd->saved != NULL ? "(offline)"
                                           : "(none)";
        }
        fprintf(stderr, "sim_dyad: unfinished %u: node %u%s -> %u%s, %s / %s\n", i, p->node[0],
                sim_nat(s->sim, p->node[0]) ? " (nat)" : "", p->node[1],
                sim_nat(s->sim, p->node[1]) ? " (nat)" : "", st[0], st[1]);
    }
}

int
sim_dyad_run(const struct sim_dyad_config *cfg, struct sim_dyad_result *res)
{
    struct sd *s = NULL;
    uint64_t end;
    int rc = 0;

    memset(res, 0, sizeof(*res));
    if (cfg->nodes < 2 || cfg->dyads == 0 || cfg->tick_s == 0 || cfg->mail_ttl_s == 0 ||
        cfg->mail_ttl_s > MAIL_TTL_MAX)
        return PULL_ERR_INVAL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return PULL_ERR_NOMEM;
    s->cfg = cfg;
    s->res = res;
    env_seeded_init(&s->env, cfg->seed, 0, 0);
    dyad_timeouts_default(&s->t);
    s->nodes = calloc(cfg->nodes, sizeof(*s->nodes));
    s->plans = calloc(cfg->dyads, sizeof(*s->plans));
    if (s->nodes == NULL || s->plans == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    if ((rc = sd_setup(s)) != 0)
        goto out;
    end = sd_now(s) + cfg->horizon_s;
    while (sd_now(s) < end) {
        bool all = true;
        sim_run_for(s->sim, (uint64_t)cfg->tick_s * 1000);
        for (unsigned i = 0; i < cfg->nodes; i++) {
            if (sd_now(s) >= s->nodes[i].next_toggle && (rc = sd_toggle(s, i)) != 0)
                goto out;
        }
        for (unsigned i = 0; i < cfg->dyads; i++) {
            struct sd_plan *p = &s->plans[i];
            for (int side = 0; side < 2; side++) {
                struct sd_side *sd = &p->side[side];
                if (!s->nodes[p->node[side]].online)
                    continue;
                if (sd->view != NULL && dyad_on_timeout(sd->view, sd_now(s)) == 1)
                    res->expired++;
                if ((rc = sd_person(s, p, side)) != 0)
                    goto out;
            }
        }
        for (unsigned i = 0; i < cfg->dyads && all; i++)
            all = sd_settled(&s->plans[i]);
        if (all)
            break;
    }
    sd_report(s);
out:
    sd_free(s);
    return rc;
}
