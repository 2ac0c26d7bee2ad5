#include "proto/recon.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/mp.h"
#include "proto/msg.h"
#include "proto/recon_int.h"

/*
 * Layout of this file: the engine (queue, sessions, symbol sources at a session's
 * snapshot, handlers, policy). The local set (cache + journal) is in recon_set.c, the
 * message codec in recon_msg.c; proto/recon_int.h is what they share.
 */

/* ======================================================================== engine */

/* Policy constants (see PROTOCOL.md "Sizing rounds"; tuned by simulation). */
#define FIRST_ROUND_FACTOR 1.26 /* first round: 1.26 * estimate + 2 symbols */
#define MORE_FACTOR 1.43        /* later rounds: 1.05 * 1.36 symbols per estimated id */
#define STUCK_MIN 8

struct qitem {
    struct qitem *next;
    struct recon_event ev;
    void *mem; /* owned bytes: the message or the ids */
    char reason[RECON_REASON_MAX + 40];
};

struct sess {
    enum recon_role role;
    struct qitem *end_q; /* the DONE or FAILED event, allocated up front: it can't fail */
    uint32_t sid;
    uint8_t key[RIBLT_KEY_LEN];
    bool salted;
    uint64_t pin;
    uint64_t idle_deadline, hard_deadline;
    struct recon_stats st;
    /* initiator */
    struct riblt_dec *dec;
    uint32_t credit;    /* symbols granted to the responder so far */
    uint32_t local_end; /* our own symbols are in the decoder up to here */
    uint32_t seen_end;  /* largest round end the responder announced */
    /* responder */
    uint32_t end, sent; /* current round [.., end); next symbol to send */
    uint32_t hint;
    bool retry_salted;     /* the failure calls for a salted session */
    struct riblt_sym *buf; /* symbols [buf_lo, end) of the round */
    uint32_t buf_lo;
};

struct recon {
    struct recon_cfg cfg;
    struct sess *ini, *rsp;
    struct qitem *head, *tail;
    struct qitem *cur; /* the item returned by the last poll */
};

int
recon_new(const struct recon_cfg *cfg, struct recon **out)
{
    struct recon *r;

    *out = NULL;
    if (cfg == NULL || cfg->env == NULL || cfg->set == NULL)
        return PULL_ERR_INVAL;
    if ((r = env_calloc(cfg->env, 1, sizeof(*r))) == NULL)
        return PULL_ERR_NOMEM;
    r->cfg = *cfg;
    if (r->cfg.max_symbols == 0 || r->cfg.max_symbols > RECON_MAX_CREDIT)
        r->cfg.max_symbols = r->cfg.max_symbols ? RECON_MAX_CREDIT : RECON_MAX_SYMBOLS_DEFAULT;
    if (r->cfg.idle_timeout_ms == 0)
        r->cfg.idle_timeout_ms = RECON_IDLE_TIMEOUT_DEFAULT;
    if (r->cfg.session_timeout_ms == 0)
        r->cfg.session_timeout_ms = RECON_SESSION_TIMEOUT_DEFAULT;
    *out = r;
    return 0;
}

static void
qitem_free(struct recon *r, struct qitem *q)
{
    if (q == NULL)
        return;
    env_free(r->cfg.env, q->mem);
    env_free(r->cfg.env, q);
}

static void
sess_free(struct recon *r, struct sess *s)
{
    if (s == NULL)
        return;
    recon_set_unpin(r->cfg.set, s->pin);
    riblt_dec_free(s->dec);
    qitem_free(r, s->end_q);
    env_free(r->cfg.env, s->buf);
    env_free(r->cfg.env, s);
}

void
recon_free(struct recon *r)
{
    if (r == NULL)
        return;
    sess_free(r, r->ini);
    sess_free(r, r->rsp);
    while (r->head != NULL) {
        struct qitem *q = r->head;
        r->head = q->next;
        qitem_free(r, q);
    }
    qitem_free(r, r->cur);
    env_free(r->cfg.env, r);
}

static void
release_cur(struct recon *r)
{
    qitem_free(r, r->cur);
    r->cur = NULL;
}

static void
q_push(struct recon *r, struct qitem *q)
{
    q->next = NULL;
    if (r->tail != NULL)
        r->tail->next = q;
    else
        r->head = q;
    r->tail = q;
}

static struct sess **
slot_of(struct recon *r, enum recon_role role)
{
    return role == RECON_INITIATOR ? &r->ini : &r->rsp;
}

static void
touch(struct recon *r, struct sess *s, uint64_t now)
{
    s->idle_deadline = now + r->cfg.idle_timeout_ms;
}

/* Encodes m and queues it as a SEND event of session s. */
static int
queue_msg(struct recon *r, struct sess *s, const struct recon_msg *m, uint64_t now)
{
    struct pull_wb w;
    struct qitem *q;
    int rc;

    if ((q = env_calloc(r->cfg.env, 1, sizeof(*q))) == NULL)
        return PULL_ERR_NOMEM;
    wb_init_env(&w, r->cfg.env, MSG_MAX);
    if ((rc = recon_msg_encode(m, &w)) != 0) {
        wb_release(&w);
        env_free(r->cfg.env, q);
        return rc;
    }
    q->ev.type = RECON_EV_SEND;
    q->ev.role = s ? s->role : (m->from ? RECON_RESPONDER : RECON_INITIATOR);
    q->mem = wb_steal(&w, &q->ev.len);
    q->ev.msg = q->mem;
    if (s != NULL) {
        s->st.bytes_sent += q->ev.len;
        s->st.msgs_sent++;
        touch(r, s, now);
    }
    q_push(r, q);
    return 0;
}

static int
queue_err_msg(struct recon *r, struct sess *s, enum recon_role from, uint32_t sid, int err,
              const char *reason, uint64_t now)
{
    struct recon_msg m;
    size_t n = strlen(reason);

    memset(&m, 0, sizeof(m));
    m.type = MSG_RECON_ERR;
    m.sid = sid;
    m.from = (uint8_t)from;
    m.code = err < 0 && err > -0xffff ? (uint32_t)-err : (uint32_t)-PULL_ERR_PROTOCOL;
    m.reason = reason;
    m.reason_len = (uint32_t)(n > RECON_REASON_MAX ? RECON_REASON_MAX : n);
    return queue_msg(r, s, &m, now);
}

/* Queues a WANT or PUSH event with a copy of the ids. */
static int
queue_ids(struct recon *r, struct sess *s, enum recon_ev_type type,
          const uint8_t (*ids)[RIBLT_ID_LEN], size_t n)
{
    struct qitem *q;

    if (n == 0)
        return 0;
    if ((q = env_calloc(r->cfg.env, 1, sizeof(*q))) == NULL ||
        (q->mem = env_calloc(r->cfg.env, n, RIBLT_ID_LEN)) == NULL) {
        env_free(r->cfg.env, q);
        return PULL_ERR_NOMEM;
    }
    memcpy(q->mem, ids, n * RIBLT_ID_LEN);
    q->ev.type = type;
    q->ev.role = s->role;
    q->ev.ids = (const uint8_t(*)[RIBLT_ID_LEN])q->mem;
    q->ev.n_ids = n;
    q_push(r, q);
    return 0;
}

/*
 * Ends session s: optionally tells the peer (RECON_ERR), queues the DONE (err == 0) or
 * FAILED event, and frees the session. The event's memory was set aside by sess_new, so
 * the host always hears of the end; out of memory here loses only the RECON_ERR (the peer's
 * session then times out).
 */
static void
sess_end(struct recon *r, struct sess *s, int err, const char *reason, bool tell_peer, uint64_t now)
{
    struct qitem *q;

    if (tell_peer && err != 0)
        (void)queue_err_msg(r, s, s->role, s->sid, err, reason, now);
    s->st.ended_ms = now;
    q = s->end_q;
    s->end_q = NULL;
    q->ev.type = err == 0 ? RECON_EV_DONE : RECON_EV_FAILED;
    q->ev.role = s->role;
    q->ev.err = err;
    q->ev.retry_salted = err != 0 && s->retry_salted;
    q->ev.stats = s->st;
    if (err != 0) {
        snprintf(q->reason, sizeof(q->reason), "%s", reason);
        for (size_t i = 0; q->reason[i] != '\0'; i++)
            if ((unsigned char)q->reason[i] < 0x20 || (unsigned char)q->reason[i] > 0x7e)
                q->reason[i] = '?'; /* one printable line, whatever the peer sent */
        q->ev.reason = q->reason;
    }
    q_push(r, q);
    *slot_of(r, s->role) = NULL;
    sess_free(r, s);
}

static void
sess_fail(struct recon *r, struct sess *s, int err, const char *reason, uint64_t now)
{
    char buf[RECON_REASON_MAX];

    snprintf(buf, sizeof(buf), "%s: %s", reason, pull_strerror(err));
    sess_end(r, s, err, buf, true, now);
}

static int
sess_new(struct recon *r, enum recon_role role, uint32_t sid, const uint8_t *key, uint64_t now,
         struct sess **out)
{
    struct sess *s;

    *out = NULL;
    if ((s = env_calloc(r->cfg.env, 1, sizeof(*s))) == NULL)
        return PULL_ERR_NOMEM;
    if ((s->end_q = env_calloc(r->cfg.env, 1, sizeof(*s->end_q))) == NULL) {
        env_free(r->cfg.env, s);
        return PULL_ERR_NOMEM;
    }
    s->pin = recon_set_pin(r->cfg.set);
    if (s->pin == UINT64_MAX) {
        qitem_free(r, s->end_q);
        env_free(r->cfg.env, s);
        return PULL_ERR_NOMEM;
    }
    s->role = role;
    s->sid = sid;
    s->salted = key != NULL;
    memcpy(s->key, key ? key : riblt_default_key, RIBLT_KEY_LEN);
    s->st.sid = sid;
    s->st.role = role;
    s->st.started_ms = now;
    s->hard_deadline = now + r->cfg.session_timeout_ms;
    touch(r, s, now);
    *slot_of(r, role) = s;
    *out = s;
    return 0;
}

/* ---- symbols of the local set at a session's snapshot ---- */

struct pass {
    const uint8_t *key;
    struct riblt_acc acc;
    uint64_t count;
};

static int
pass_visit(void *vctx, const uint8_t id[RIBLT_ID_LEN])
{
    struct pass *p = vctx;

    riblt_acc_apply(&p->acc, id, riblt_hash(p->key, id), 1);
    p->count++;
    return 0;
}

/* One iteration over the whole local set into acc (which starts zeroed). */
static int
run_pass(struct recon *r, struct sess *s, const struct riblt_acc *acc)
{
    struct pass p = {s->key, *acc, 0};
    int rc;

    if (r->cfg.each == NULL)
        return PULL_ERR_UNSUPPORTED;
    if ((rc = r->cfg.each(r->cfg.each_ctx, pass_visit, &p)) != 0)
        return rc < 0 ? rc : PULL_ERR_STORE;
    s->st.passes++;
    /* The iterator must describe the same set as the cache; otherwise the symbols are
     * inconsistent and decoding would produce garbage. */
    if (p.count != r->cfg.set->n)
        return PULL_ERR_STATE;
    return 0;
}

/* Symbols [lo, hi) of the local set as of s->pin, into out[0 .. hi-lo). */
static int
src_range(struct recon *r, struct sess *s, uint32_t lo, uint32_t hi, struct riblt_sym *out)
{
    struct recon_set *set = r->cfg.set;
    struct riblt_acc acc = {out, lo, hi, NULL, RIBLT_EST_N};
    uint32_t from = lo;
    int rc;

    if (s->pin < set->jr_base)
        return PULL_ERR_AGAIN;
    memset(out, 0, (size_t)(hi - lo) * sizeof(*out));
    if (!s->salted && lo < set->k) {
        uint32_t top = hi < set->k ? hi : set->k;
        memcpy(out, set->dense + lo, (size_t)(top - lo) * sizeof(*out));
        from = top;
    }
    if (from < hi) {
        struct riblt_acc tail = {out + (from - lo), from, hi, NULL, RIBLT_EST_N};
        if ((rc = run_pass(r, s, &tail)) != 0)
            return rc;
    }
    return recon_set_unapply_since(set, s->pin, s->key, &acc);
}

/* Symbol 0 and the estimator samples of the local set as of s->pin. */
static int
src_samples(struct recon *r, struct sess *s, struct riblt_sym *sym0,
            struct riblt_sym est[RIBLT_EST_N])
{
    struct recon_set *set = r->cfg.set;
    struct riblt_acc acc = {sym0, 0, 1, est, 0};
    int rc;

    if (s->pin < set->jr_base)
        return PULL_ERR_AGAIN;
    memset(sym0, 0, sizeof(*sym0));
    memset(est, 0, RIBLT_EST_N * sizeof(*est));
    if (s->salted) {
        if ((rc = run_pass(r, s, &acc)) != 0)
            return rc;
    } else {
        *sym0 = set->dense[0];
        for (unsigned j = 0; j < RIBLT_EST_N; j++)
            est[j] = j < set->sp_first ? set->dense[riblt_est_index(j)] : set->sparse[j];
    }
    return recon_set_unapply_since(set, s->pin, s->key, &acc);
}

/* ---- initiator ---- */

int
recon_start(struct recon *r, uint64_t now, unsigned flags)
{
    struct riblt_sym sym0, est[RIBLT_EST_N];
    struct recon_msg m;
    struct sess *s = NULL;
    uint8_t salt[RIBLT_KEY_LEN];
    uint32_t sid;
    int rc;

    release_cur(r);
    if (r->ini != NULL)
        return PULL_ERR_STATE;
    do {
        sid = (uint32_t)env_u64(r->cfg.env);
    } while (sid == 0);
    if (flags & RECON_SALTED)
        env_random(r->cfg.env, salt, sizeof(salt));
    if ((rc = sess_new(r, RECON_INITIATOR, sid, (flags & RECON_SALTED) ? salt : NULL, now, &s)) !=
        0)
        return rc;
    if ((rc = src_samples(r, s, &sym0, est)) != 0 ||
        (rc = riblt_dec_new(r->cfg.env, s->key, r->cfg.max_symbols, &s->dec)) != 0 ||
        (rc = riblt_dec_set_local(s->dec, 0, &sym0)) != 0)
        goto out;
    s->local_end = 1;
    s->credit = r->cfg.max_symbols;
    memset(&m, 0, sizeof(m));
    m.type = MSG_RECON_REQ;
    m.sid = sid;
    m.salted = s->salted;
    memcpy(m.key, s->key, RIBLT_KEY_LEN);
    m.credit = s->credit;
    riblt_sym_encode(&sym0, m.sym0);
    riblt_est_pack(est, m.est);
    if ((rc = queue_msg(r, s, &m, now)) != 0)
        goto out;
    s->st.round_trips = 1;
    s = NULL; /* running */
out:
    if (s != NULL) {
        r->ini = NULL;
        sess_free(r, s);
    }
    return rc;
}

/* The decoder finished: hand out the ids, tell the responder, end the session. */
static int
ini_finish(struct recon *r, struct sess *s, uint64_t now)
{
    const uint8_t(*rem)[RIBLT_ID_LEN], (*loc)[RIBLT_ID_LEN];
    size_t n_rem, n_loc;
    struct recon_msg m;
    int rc;

    if ((rc = riblt_dec_result(s->dec, &rem, &n_rem, &loc, &n_loc)) != 0)
        return rc;
    s->st.n_want = (uint32_t)n_rem;
    s->st.n_push = (uint32_t)n_loc;
    memset(&m, 0, sizeof(m));
    m.type = MSG_RECON_DONE;
    m.sid = s->sid;
    m.from = RECON_INITIATOR;
    m.you_lack = (uint32_t)n_loc;
    m.i_lack = (uint32_t)n_rem;
    if ((rc = queue_ids(r, s, RECON_EV_WANT, rem, n_rem)) != 0 ||
        (rc = queue_ids(r, s, RECON_EV_PUSH, loc, n_loc)) != 0 ||
        (rc = queue_msg(r, s, &m, now)) != 0)
        return rc;
    sess_end(r, s, 0, NULL, false, now);
    return 0;
}

/* How many symbols in total to ask for after a round that did not decode. */
static uint32_t
ini_next_total(const struct recon *r, const struct sess *s)
{
    uint32_t m = riblt_dec_received(s->dec);
    double est = riblt_dec_estimate(s->dec), want;

    if (est > 0) {
        want = ceil(MORE_FACTOR * est) + 8;
        if (want < m + m / 4.0)
            want = m + m / 4.0;
        if (want > 4.0 * m)
            want = 4.0 * m;
        if (s->st.round_trips >= 2 && want < 2.0 * m)
            want = 2.0 * m; /* third request and beyond: make sure it ends */
    } else if (s->st.round_trips >= 2) {
        /* Still nothing to go on after two rounds: a tiny difference with an unlucky
         * shape (they can need dozens of symbols). Grow fast so it ends in round three. */
        want = m < 16 ? m + 64 : 4.0 * m;
    } else {
        want = m < 16 ? m + 16 : 2.0 * m;
    }
    if (want > r->cfg.max_symbols)
        want = r->cfg.max_symbols;
    return (uint32_t)want;
}

static int
ini_on_symbols(struct recon *r, struct sess *s, const struct recon_msg *m, uint64_t now)
{
    struct riblt_sym *own = NULL;
    struct recon_msg more;
    uint32_t recv = riblt_dec_received(s->dec);
    int rc = 0;

    if (m->start != recv || m->end > s->credit || m->end < s->seen_end)
        return PULL_ERR_PROTOCOL;
    s->seen_end = m->end;
    s->st.d_estimate = m->hint;
    if (m->end > s->local_end) {
        /* Our own symbols for the whole announced round, in one go (one pass at most). */
        uint32_t lo = s->local_end, hi = m->end;
        if ((own = env_calloc(r->cfg.env, (size_t)(hi - lo), sizeof(*own))) == NULL)
            return PULL_ERR_NOMEM;
        if ((rc = src_range(r, s, lo, hi, own)) != 0)
            goto out;
        for (uint32_t i = lo; i < hi; i++)
            if ((rc = riblt_dec_set_local(s->dec, i, &own[i - lo])) != 0)
                goto out;
        s->local_end = hi;
    }
    for (uint32_t i = 0; i < m->n_syms; i++)
        if ((rc = riblt_dec_add_remote(s->dec, m->syms + (size_t)i * RIBLT_SYM_WIRE)) != 0)
            goto out;
    s->st.symbols += m->n_syms;
    if ((rc = riblt_dec_peel(s->dec)) != 0)
        goto out;
    if (riblt_dec_done(s->dec)) {
        rc = ini_finish(r, s, now);
        goto out;
    }
    recv = riblt_dec_received(s->dec);
    if (recv < m->end)
        goto out; /* more of this round is on its way */
    if (riblt_dec_stuck(s->dec, STUCK_MIN)) {
        s->retry_salted = !s->salted;
        sess_end(r, s, PULL_ERR_AGAIN,
                 "stopping set: ids with identical index sequences; retry salted", true, now);
        goto out;
    }
    if (recv >= r->cfg.max_symbols) {
        sess_fail(r, s, PULL_ERR_QUOTA, "difference too large for the symbol cap", now);
        goto out;
    }
    memset(&more, 0, sizeof(more));
    more.type = MSG_RECON_MORE;
    more.sid = s->sid;
    more.total = ini_next_total(r, s);
    if ((rc = queue_msg(r, s, &more, now)) != 0)
        goto out;
    s->credit = more.total;
    s->st.round_trips++;
out:
    env_free(r->cfg.env, own);
    return rc;
}

/* ---- responder ---- */

/* Would a difference of exactly the one id x explain every estimator sample? */
static bool
single_consistent(uint64_t h, const uint8_t own[RIBLT_EST_BYTES],
                  const uint8_t theirs[RIBLT_EST_BYTES])
{
    struct riblt_map map;
    uint32_t idx = 0;

    riblt_map_init(&map, h);
    for (unsigned j = 0; j < RIBLT_EST_N; j++) {
        uint32_t e = riblt_est_index(j);
        unsigned want;
        while (idx < e)
            idx = riblt_map_next(&map);
        want = idx == e ? (unsigned)(h >> 60) : 0;
        if ((riblt_est_nibble(own, j) ^ riblt_est_nibble(theirs, j)) != want)
            return false;
    }
    return true;
}

/* Makes symbols [old end, new_end) of the round ready to send. */
static int
rsp_extend(struct recon *r, struct sess *s, uint32_t new_end)
{
    struct riblt_sym *p;
    uint32_t from = s->end;

    if (s->buf == NULL)
        s->buf_lo = s->sent;
    p = env_realloc(r->cfg.env, s->buf, (size_t)(new_end - s->buf_lo) * sizeof(*p));
    if (p == NULL)
        return PULL_ERR_NOMEM;
    s->buf = p;
    s->end = new_end;
    return src_range(r, s, from, new_end, s->buf + (from - s->buf_lo));
}

static int
rsp_on_req(struct recon *r, const struct recon_msg *m, size_t len, uint64_t now)
{
    struct riblt_sym own0, a0, est[RIBLT_EST_N];
    uint8_t own_est[RIBLT_EST_BYTES];
    struct recon_msg done;
    struct sess *s;
    unsigned equal;
    uint16_t c16;
    uint32_t dhat, n1;
    int16_t dn;
    bool zero_sum;
    int rc;

    if (r->rsp != NULL)
        sess_end(r, r->rsp, PULL_ERR_AGAIN, "superseded by a new request", false, now);
    if (m->salted && r->cfg.refuse_salted)
        return queue_err_msg(r, NULL, RECON_RESPONDER, m->sid, PULL_ERR_UNSUPPORTED,
                             "salted sessions refused", now);
    if ((rc = sess_new(r, RECON_RESPONDER, m->sid, m->salted ? m->key : NULL, now, &s)) != 0)
        return rc;
    s->st.bytes_recv += len;
    s->st.msgs_recv++;
    s->st.round_trips = 1;
    s->credit = m->credit;
    if ((rc = src_samples(r, s, &own0, est)) != 0) {
        sess_fail(r, s, rc, "cannot compute symbols", now);
        return 0; /* our problem, not the peer's */
    }
    riblt_est_pack(est, own_est);
    equal = riblt_est_equal(own_est, m->est);
    riblt_sym_decode(m->sym0, &a0);
    for (size_t i = 0; i < RIBLT_ID_LEN; i++)
        own0.sum[i] ^= a0.sum[i];
    own0.hash ^= a0.hash;
    c16 = (uint16_t)((uint64_t)own0.count - (uint64_t)a0.count);
    zero_sum = sodium_is_zero(own0.sum, RIBLT_ID_LEN);
    memset(&done, 0, sizeof(done));
    done.type = MSG_RECON_DONE;
    done.sid = s->sid;
    done.from = RECON_RESPONDER;
    if (c16 == 0 && own0.hash == 0 && zero_sum && equal == RIBLT_EST_N) {
        /* Equal sets: one message each way. */
        if ((rc = queue_msg(r, s, &done, now)) != 0)
            goto fail;
        sess_end(r, s, 0, NULL, false, now);
        return 0;
    }
    if ((c16 == 1 || c16 == 0xffffu) && riblt_hash(s->key, own0.sum) == own0.hash &&
        single_consistent(own0.hash, own_est, m->est)) {
        /* Exactly one id differs and symbol 0 is it: finish here. */
        const uint8_t(*x)[RIBLT_ID_LEN] = (const uint8_t(*)[RIBLT_ID_LEN])own0.sum;
        if (c16 == 1) {
            done.you_lack = 1;
            s->st.n_push = 1;
            rc = queue_ids(r, s, RECON_EV_PUSH, x, 1);
        } else {
            done.i_lack = 1;
            s->st.n_want = 1;
            rc = queue_ids(r, s, RECON_EV_WANT, x, 1);
        }
        if (rc != 0 || (rc = queue_msg(r, s, &done, now)) != 0)
            goto fail;
        sess_end(r, s, 0, NULL, false, now);
        return 0;
    }
    dhat = riblt_estimate(equal);
    dn = (int16_t)c16;
    if ((uint32_t)abs(dn) > dhat)
        dhat = (uint32_t)abs(dn); /* at least the size difference */
    if (dhat < 2)
        dhat = 2;
    s->hint = dhat;
    s->st.d_estimate = dhat;
    n1 = (uint32_t)ceil(FIRST_ROUND_FACTOR * dhat) + 2;
    /* The estimate is good to a factor of ~2: rather than leave the cache (a pass over
     * both whole sets) on its word, serve the cache and let a second round, sized by the
     * initiator's much better estimate, go further if it must. */
    if (!s->salted && n1 > r->cfg.set->k && n1 <= 4 * (uint64_t)r->cfg.set->k)
        n1 = r->cfg.set->k;
    if (n1 > m->credit)
        n1 = m->credit;
    if (n1 > r->cfg.max_symbols)
        n1 = r->cfg.max_symbols;
    if ((rc = rsp_extend(r, s, n1)) != 0)
        goto fail;
    return 0;
fail:
    sess_fail(r, s, rc, "cannot serve the request", now);
    return 0;
}

static int
rsp_on_more(struct recon *r, struct sess *s, const struct recon_msg *m, uint64_t now)
{
    uint32_t new_end;
    int rc;

    if (m->total <= s->end)
        return 0; /* not more than already granted: stale or repeated */
    s->credit = m->total;
    s->st.round_trips++;
    new_end = m->total < r->cfg.max_symbols ? m->total : r->cfg.max_symbols;
    if (new_end <= s->end) {
        sess_fail(r, s, PULL_ERR_QUOTA, "symbol cap reached", now);
        return 0;
    }
    if ((rc = rsp_extend(r, s, new_end)) != 0)
        sess_fail(r, s, rc, "cannot serve more symbols", now);
    return 0;
}

/* Produces the next RECON_SYMBOLS of the responder's round. */
static int
rsp_produce(struct recon *r, struct sess *s, uint64_t now)
{
    uint32_t n = s->end - s->sent;
    struct recon_msg m;
    uint8_t *wire;
    int rc;

    if (n > RECON_SYMS_PER_MSG)
        n = RECON_SYMS_PER_MSG;
    if ((wire = env_alloc(r->cfg.env, (size_t)n * RIBLT_SYM_WIRE)) == NULL)
        return PULL_ERR_NOMEM;
    for (uint32_t i = 0; i < n; i++)
        riblt_sym_encode(&s->buf[s->sent - s->buf_lo + i], wire + (size_t)i * RIBLT_SYM_WIRE);
    memset(&m, 0, sizeof(m));
    m.type = MSG_RECON_SYMBOLS;
    m.sid = s->sid;
    m.start = s->sent;
    m.end = s->end;
    m.syms = wire;
    m.n_syms = n;
    m.hint = s->hint;
    rc = queue_msg(r, s, &m, now);
    env_free(r->cfg.env, wire);
    if (rc != 0)
        return rc;
    s->sent += n;
    s->st.symbols += n;
    if (s->sent == s->end) {
        env_free(r->cfg.env, s->buf);
        s->buf = NULL;
    }
    return 0;
}

/* ---- dispatch ---- */

/* For a message that failed to decode: which running session does it name, if any? */
static struct sess *
owner_of_bad(struct recon *r, const uint8_t *p, size_t n, uint32_t *req_sid)
{
    struct pull_rd rd;
    uint32_t count;
    uint64_t type, sid, from;

    *req_sid = 0;
    rd_init(&rd, p, n > MSG_MAX ? MSG_MAX : n);
    if (mp_read_array(&rd, &count) != 0 || count < 2 ||
        mp_read_uint_max(&rd, MSG_RECON_ERR, &type) != 0 ||
        mp_read_uint_max(&rd, UINT32_MAX, &sid) != 0 || sid == 0)
        return NULL;
    switch (type) {
    case MSG_RECON_REQ:
        *req_sid = (uint32_t)sid;
        return NULL;
    case MSG_RECON_SYMBOLS:
        return r->ini && r->ini->sid == sid ? r->ini : NULL;
    case MSG_RECON_MORE:
        return r->rsp && r->rsp->sid == sid ? r->rsp : NULL;
    case MSG_RECON_DONE:
    case MSG_RECON_ERR:
        if (count < 3 || mp_read_uint_max(&rd, 1, &from) != 0)
            return NULL;
        if (from == RECON_RESPONDER)
            return r->ini && r->ini->sid == sid ? r->ini : NULL;
        return r->rsp && r->rsp->sid == sid ? r->rsp : NULL;
    }
    return NULL;
}

int
recon_on_msg(struct recon *r, uint64_t now, const uint8_t *p, size_t n)
{
    struct recon_msg m;
    struct sess *s = NULL;
    char reason[RECON_REASON_MAX + 8];
    int rc;

    release_cur(r);
    if ((rc = recon_msg_decode(p, n, &m)) != 0) {
        uint32_t req_sid;
        if ((s = owner_of_bad(r, p, n, &req_sid)) != NULL) {
            s->st.bytes_recv += n;
            s->st.msgs_recv++;
            sess_fail(r, s, rc, "bad message from peer", now);
        } else if (req_sid != 0) {
            /* A bad request: tell the initiator at once rather than let it time out. */
            snprintf(reason, sizeof(reason), "bad request: %s", pull_strerror(rc));
            (void)queue_err_msg(r, NULL, RECON_RESPONDER, req_sid, rc, reason, now);
        }
        return rc;
    }
    if (m.type == MSG_RECON_REQ) {
        return rsp_on_req(r, &m, n, now);
    }
    switch (m.type) {
    case MSG_RECON_SYMBOLS:
        s = r->ini;
        break;
    case MSG_RECON_MORE:
        s = r->rsp;
        break;
    default: /* DONE, ERR: sent by the other role */
        s = m.from == RECON_RESPONDER ? r->ini : r->rsp;
        break;
    }
    if (s == NULL || s->sid != m.sid)
        return 0; /* a session that ended (or never was): ignore */
    s->st.bytes_recv += n;
    s->st.msgs_recv++;
    touch(r, s, now);
    switch (m.type) {
    case MSG_RECON_SYMBOLS:
        /* On error the session still exists (every path that ends it returns 0). */
        if ((rc = ini_on_symbols(r, s, &m, now)) == 0)
            return 0;
        if (rc == PULL_ERR_PROTOCOL || rc == PULL_ERR_QUOTA) {
            sess_fail(r, s, rc, "bad symbols from peer", now);
            return rc;
        }
        sess_fail(r, s, rc, "cannot process symbols", now); /* our trouble, not the peer's */
        return 0;
    case MSG_RECON_MORE:
        return rsp_on_more(r, s, &m, now);
    case MSG_RECON_DONE:
        s->st.peer_push = m.you_lack;
        s->st.peer_want = m.i_lack;
        sess_end(r, s, 0, NULL, false, now);
        return 0;
    case MSG_RECON_ERR: {
        int err = m.code <= 0xffff ? -(int)m.code : PULL_ERR_PROTOCOL;
        if (strcmp(pull_errname(err), "UNKNOWN") == 0)
            err = PULL_ERR_PROTOCOL;
        snprintf(reason, sizeof(reason), "peer: %.*s", (int)m.reason_len, m.reason);
        sess_end(r, s, err, reason, false, now);
        return 0;
    }
    }
    return 0;
}

int
recon_poll(struct recon *r, uint64_t now, struct recon_event *ev)
{
    struct qitem *q;
    int rc;

    release_cur(r);
    memset(ev, 0, sizeof(*ev));
    if (r->head == NULL && r->rsp != NULL && r->rsp->sent < r->rsp->end) {
        if ((rc = rsp_produce(r, r->rsp, now)) != 0)
            sess_fail(r, r->rsp, rc, "cannot produce symbols", now);
    }
    if ((q = r->head) == NULL)
        return 0;
    r->head = q->next;
    if (r->head == NULL)
        r->tail = NULL;
    r->cur = q;
    *ev = q->ev;
    return 1;
}

uint64_t
recon_next_deadline(const struct recon *r)
{
    uint64_t d = UINT64_MAX;
    const struct sess *ss[2] = {r->ini, r->rsp};

    for (int i = 0; i < 2; i++) {
        if (ss[i] == NULL)
            continue;
        if (ss[i]->idle_deadline < d)
            d = ss[i]->idle_deadline;
        if (ss[i]->hard_deadline < d)
            d = ss[i]->hard_deadline;
    }
    return d;
}

void
recon_on_timeout(struct recon *r, uint64_t now)
{
    struct sess *ss[2] = {r->ini, r->rsp};

    release_cur(r);
    for (int i = 0; i < 2; i++) {
        struct sess *s = ss[i];
        if (s == NULL)
            continue;
        if (now >= s->hard_deadline)
            sess_fail(r, s, PULL_ERR_TIMEOUT, "session took too long", now);
        else if (now >= s->idle_deadline)
            sess_fail(r, s, PULL_ERR_TIMEOUT, "peer went silent", now);
    }
}

bool
recon_active(const struct recon *r, enum recon_role role)
{
    return (role == RECON_INITIATOR ? r->ini : r->rsp) != NULL;
}

int
recon_stats_get(const struct recon *r, enum recon_role role, struct recon_stats *out)
{
    const struct sess *s = role == RECON_INITIATOR ? r->ini : r->rsp;

    memset(out, 0, sizeof(*out));
    if (s == NULL)
        return PULL_ERR_NOT_FOUND;
    *out = s->st;
    return 0;
}
