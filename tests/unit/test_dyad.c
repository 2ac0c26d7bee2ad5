/* Tests of the dyad state machine (proto/dyad.h).
 *
 * The core test is table-driven over the whole space: the dyad is driven into every
 * reachable situation (each state, and in `done` each combination of who said done and
 * who acknowledged), and from each one every message kind is sent by the proposer, the
 * responder and a third party. The expected answer comes from expect() below, which is
 * written from the rules in dyad.h and not from dyad.c's table. Messages are forged here
 * with their own packer (any kind from any key), so refusals are tested on correctly
 * signed messages: what refuses them is the rule under test, not the signature.
 * Then: replays, gaps, third-party and forged ACCEPTs, bad signatures and every byte
 * flipped, truncation at every byte, persisted round trips, timeouts, crossings of
 * concurrent messages, attestations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/ident.h"
#include "lib/mp.h"
#include "lib/record.h"
#include "proto/dyad.h"
#include "testutil.h"

#define NOW 1800000000ull
#define DAY 86400ull

static struct ident alice, bob, carol;
static struct dyad_timeouts tdef;
static uint8_t rec_id[32];

#define P 0 /* the proposer, alice */
#define R 1 /* the responder, bob */
#define C 2 /* a third party, carol */

static const struct ident *
who(int role)
{
    return role == P ? &alice : role == R ? &bob : &carol;
}

static int
setup(void **state)
{
    uint8_t seed[32];

    (void)state;
    assert_true(sodium_init() >= 0);
    memset(seed, 0xa1, 32);
    assert_int_equal(ident_from_seed(&alice, seed), 0);
    memset(seed, 0xb0, 32);
    assert_int_equal(ident_from_seed(&bob, seed), 0);
    memset(seed, 0xc3, 32);
    assert_int_equal(ident_from_seed(&carol, seed), 0);
    memset(rec_id, 0x7e, 32);
    dyad_timeouts_default(&tdef);
    return 0;
}

/* ---- a forger: any message, any field, signed by anyone ---- */

struct fmsg {
    unsigned version, kind;
    int nfields; /* 0: the right count for the kind */
    uint8_t dyad[32];
    const struct ident *signer;
    uint8_t author[32];
    uint64_t step, created;
    const char *note;
    uint8_t record[32], proposer[32], responder[32];
    uint64_t expires;
    uint8_t terms[32], terms_sig[64];
    size_t cosig_len;
    uint8_t cosig[64];
    bool extra;     /* append one more field */
    bool sig_bad;   /* flip a bit of the envelope signature */
    size_t sig_len; /* 0: 64 */
};

static unsigned
nfields_of(unsigned kind)
{
    return kind == DYAD_PROPOSE ? 13 : kind == DYAD_ACCEPT ? 9 : kind == DYAD_ACK ? 8 : 7;
}

static void
forge(const struct fmsg *f, struct pull_wb *out)
{
    struct pull_wb body;
    msgpack_packer pk;
    uint8_t sig[64];
    unsigned n = f->nfields ? (unsigned)f->nfields : nfields_of(f->kind);
    const char *note = f->note ? f->note : "";

    wb_init(&body, 4096);
    mp_packer_init(&pk, &body);
    msgpack_pack_array(&pk, n + (f->extra ? 1 : 0));
    msgpack_pack_uint64(&pk, f->version);
    msgpack_pack_uint64(&pk, f->kind);
    mp_pack_bin(&pk, f->dyad, 32);
    mp_pack_bin(&pk, f->author, 32);
    msgpack_pack_uint64(&pk, f->step);
    msgpack_pack_uint64(&pk, f->created);
    mp_pack_str(&pk, note, strlen(note));
    if (f->kind == DYAD_PROPOSE && n >= 13) {
        mp_pack_bin(&pk, f->record, 32);
        mp_pack_bin(&pk, f->proposer, 32);
        mp_pack_bin(&pk, f->responder, 32);
        msgpack_pack_uint64(&pk, f->expires);
        mp_pack_bin(&pk, f->terms, 32);
        mp_pack_bin(&pk, f->terms_sig, 64);
    } else if (f->kind == DYAD_ACCEPT && n >= 9) {
        mp_pack_bin(&pk, f->terms, 32);
        mp_pack_bin(&pk, f->terms_sig, 64);
    } else if (f->kind == DYAD_ACK && n >= 8) {
        mp_pack_bin(&pk, f->cosig, f->cosig_len);
    }
    if (f->extra)
        msgpack_pack_nil(&pk);
    assert_int_equal(wb_error(&body), 0);
    assert_int_equal(ident_sign(f->signer, DYAD_DOMAIN, body.p, body.len, sig), 0);
    if (f->sig_bad)
        sig[5] ^= 0x10;
    wb_reset(out);
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 2);
    mp_pack_bin(&pk, body.p, body.len);
    mp_pack_bin(&pk, sig, f->sig_len ? f->sig_len : 64);
    assert_int_equal(wb_error(out), 0);
    wb_release(&body);
}

/* A proposal forge template (valid as is). */
static void
fprop(struct fmsg *f, const struct ident *proposer, const struct ident *responder, uint64_t created,
      const char *note)
{
    memset(f, 0, sizeof(*f));
    f->version = 1;
    f->kind = DYAD_PROPOSE;
    f->signer = proposer;
    memcpy(f->author, proposer->pk, 32);
    f->created = created;
    f->note = note;
    memcpy(f->record, rec_id, 32);
    memcpy(f->proposer, proposer->pk, 32);
    memcpy(f->responder, responder->pk, 32);
    f->expires = created + 7 * DAY;
    assert_int_equal(dyad_terms_hash(f->record, f->proposer, f->responder, note ? note : "",
                                     note ? strlen(note) : 0, created, f->terms),
                     0);
    assert_int_equal(ident_sign(proposer, DYAD_TERMS_DOMAIN, f->terms, 32, f->terms_sig), 0);
}

/* The next step of `role`'s messages in d (0 for a third party). */
static uint64_t
next_step(const struct dyad *d, int role)
{
    uint64_t s = 0;

    for (size_t i = 0; i < dyad_msg_count(d); i++) {
        const uint8_t *p;
        size_t n;
        enum dyad_kind k;
        enum dyad_role a;
        assert_int_equal(dyad_msg_at(d, i, &p, &n, &k, &a), 0);
        if ((int)a == role)
            s++;
    }
    return role == C ? 0 : s;
}

/* A correctly signed message of `kind` by `role` for d: right step, valid terms and
 * cosig, created at `created`. */
static void
fmsg_for(const struct dyad *d, int role, unsigned kind, uint64_t created, struct fmsg *f)
{
    const struct ident *id = who(role);

    memset(f, 0, sizeof(*f));
    f->version = 1;
    f->kind = kind;
    memcpy(f->dyad, dyad_id(d), 32);
    f->signer = id;
    memcpy(f->author, id->pk, 32);
    f->step = next_step(d, role);
    f->created = created;
    if (kind == DYAD_ACCEPT) {
        memcpy(f->terms, dyad_terms(d), 32);
        assert_int_equal(ident_sign(id, DYAD_TERMS_DOMAIN, f->terms, 32, f->terms_sig), 0);
    } else if (kind == DYAD_ACK && role != C) {
        struct record rec;
        dyad_attestation_build(d, (enum dyad_role)(1 - role), created, &rec);
        assert_int_equal(record_cosign(NULL, &rec, id), 0);
        memcpy(f->cosig, rec.cosig, 64);
        f->cosig_len = 64;
    } else if (kind == DYAD_PROPOSE) {
        struct fmsg g;
        fprop(&g, id, role == P ? &bob : &alice, created, "other");
        *f = g;
    }
}

static int
send_forged(struct dyad *d, int role, unsigned kind, uint64_t now)
{
    struct fmsg f;
    struct pull_wb w;
    int rc;

    wb_init(&w, 0);
    fmsg_for(d, role, kind, now, &f);
    forge(&f, &w);
    rc = dyad_apply(d, w.p, w.len, now);
    wb_release(&w);
    return rc;
}

/* alice proposes to bob at NOW; returns the proposal bytes in prop (if not NULL). */
static struct dyad *
new_dyad(struct pull_wb *prop)
{
    struct dyad *d = NULL;
    struct pull_wb w;

    wb_init(&w, 0);
    assert_int_equal(dyad_propose(NULL, &alice, rec_id, bob.pk, "bread for a bike repair", 23, NOW,
                                  &tdef, &d, &w),
                     0);
    assert_non_null(d);
    if (prop != NULL) {
        wb_reset(prop);
        assert_int_equal(wb_put(prop, w.p, w.len), 0);
    }
    wb_release(&w);
    return d;
}

/* dyad_act by role, checked. */
static void
act(struct dyad *d, int role, enum dyad_kind kind, uint64_t now)
{
    struct pull_wb w;

    wb_init(&w, 0);
    assert_int_equal(dyad_act(d, who(role), kind, NULL, 0, true, now, &w), 0);
    wb_release(&w);
}

/* ---- the expected rules, from dyad.h ---- */

struct expect {
    int rc;
    int next;
};

static struct expect
expect(const struct dyad *d, unsigned kind, int role)
{
    int st = dyad_state(d);
    struct expect e = {PULL_ERR_STATE, st};

    if (role == C) {
        e.rc = PULL_ERR_PERM;
        return e;
    }
    if ((kind == DYAD_ACCEPT || kind == DYAD_DECLINE) && role == P) {
        e.rc = PULL_ERR_PERM;
        return e;
    }
    if (kind == DYAD_PROPOSE && role == R) {
        e.rc = PULL_ERR_PERM;
        return e;
    }
    switch (st) {
    case DYAD_ST_PROPOSED:
        if (kind == DYAD_ACCEPT)
            e = (struct expect){0, DYAD_ST_ACCEPTED};
        else if (kind == DYAD_DECLINE)
            e = (struct expect){0, DYAD_ST_DECLINED};
        else if (kind == DYAD_CANCEL && role == P)
            e = (struct expect){0, DYAD_ST_CANCELLED};
        break;
    case DYAD_ST_ACCEPTED:
        if (kind == DYAD_DONE)
            e = (struct expect){0, DYAD_ST_DONE};
        else if (kind == DYAD_CANCEL)
            e = (struct expect){0, DYAD_ST_CANCELLED};
        break;
    case DYAD_ST_DONE:
        if (kind == DYAD_DONE && !dyad_said_done(d, (enum dyad_role)role))
            e = (struct expect){0, DYAD_ST_DONE};
        else if (kind == DYAD_ACK && !dyad_acked(d, (enum dyad_role)role))
            e = (struct expect){0, dyad_acked(d, (enum dyad_role)(1 - role)) ? DYAD_ST_COMPLETED
                                                                             : DYAD_ST_DONE};
        else if (kind == DYAD_CANCEL && !dyad_acked(d, (enum dyad_role)role))
            e = (struct expect){0, DYAD_ST_CANCELLED};
        break;
    default:
        break;
    }
    return e;
}

/* ---- situations: every reachable state and flag combination ---- */

struct step {
    int role;
    enum dyad_kind kind;
};

static const struct {
    const char *name;
    int nsteps;
    struct step steps[4];
    int timeout; /* then expire */
    int state;
} situations[] = {
    {"proposed", 0, {{0, 0}}, 0, DYAD_ST_PROPOSED},
    {"accepted", 1, {{R, DYAD_ACCEPT}}, 0, DYAD_ST_ACCEPTED},
    {"declined", 1, {{R, DYAD_DECLINE}}, 0, DYAD_ST_DECLINED},
    {"done-by-P", 2, {{R, DYAD_ACCEPT}, {P, DYAD_DONE}}, 0, DYAD_ST_DONE},
    {"done-by-R", 2, {{R, DYAD_ACCEPT}, {R, DYAD_DONE}}, 0, DYAD_ST_DONE},
    {"done-by-both", 3, {{R, DYAD_ACCEPT}, {P, DYAD_DONE}, {R, DYAD_DONE}}, 0, DYAD_ST_DONE},
    {"done-P-acked", 3, {{R, DYAD_ACCEPT}, {P, DYAD_DONE}, {P, DYAD_ACK}}, 0, DYAD_ST_DONE},
    {"done-R-acked", 3, {{R, DYAD_ACCEPT}, {P, DYAD_DONE}, {R, DYAD_ACK}}, 0, DYAD_ST_DONE},
    {"done-R-acked-by-R", 3, {{R, DYAD_ACCEPT}, {R, DYAD_DONE}, {R, DYAD_ACK}}, 0, DYAD_ST_DONE},
    {"completed",
     4,
     {{R, DYAD_ACCEPT}, {P, DYAD_DONE}, {P, DYAD_ACK}, {R, DYAD_ACK}},
     0,
     DYAD_ST_COMPLETED},
    {"cancelled-proposed", 1, {{P, DYAD_CANCEL}}, 0, DYAD_ST_CANCELLED},
    {"cancelled-accepted-R", 2, {{R, DYAD_ACCEPT}, {R, DYAD_CANCEL}}, 0, DYAD_ST_CANCELLED},
    {"cancelled-done-P",
     3,
     {{R, DYAD_ACCEPT}, {R, DYAD_DONE}, {P, DYAD_CANCEL}},
     0,
     DYAD_ST_CANCELLED},
    {"expired-proposed", 0, {{0, 0}}, 1, DYAD_ST_EXPIRED},
    {"expired-accepted", 1, {{R, DYAD_ACCEPT}}, 1, DYAD_ST_EXPIRED},
    {"expired-done", 3, {{R, DYAD_ACCEPT}, {P, DYAD_DONE}, {P, DYAD_ACK}}, 1, DYAD_ST_EXPIRED},
};
#define NSITUATIONS (sizeof(situations) / sizeof(situations[0]))

/* Builds situation i; time advances one minute per step. Returns the time to use next. */
static struct dyad *
build(size_t i, uint64_t *now)
{
    struct dyad *d = new_dyad(NULL);
    uint64_t t = NOW;

    for (int s = 0; s < situations[i].nsteps; s++) {
        t += 60;
        act(d, situations[i].steps[s].role, situations[i].steps[s].kind, t);
    }
    if (situations[i].timeout) {
        uint64_t dl = dyad_deadline(d);
        assert_true(dl > t);
        assert_int_equal(dyad_on_timeout(d, dl - 1), 0);
        assert_int_equal(dyad_on_timeout(d, dl), 1);
        assert_int_equal(dyad_deadline(d), 0);
        assert_int_equal(dyad_on_timeout(d, dl + 100), 0);
        /* Later messages are judged by the table (closed), not by a deadline. */
        t = dl + 60;
    }
    assert_int_equal(dyad_state(d), situations[i].state);
    *now = t + 60;
    return d;
}

static void
encode(const struct dyad *d, struct pull_wb *w)
{
    wb_reset(w);
    assert_int_equal(dyad_encode(d, w), 0);
}

static void
test_transition_table(void **state)
{
    struct pull_wb before, after, msg;
    int checked = 0, allowed = 0;

    (void)state;
    wb_init(&before, 0);
    wb_init(&after, 0);
    wb_init(&msg, 0);
    for (size_t i = 0; i < NSITUATIONS; i++) {
        for (unsigned kind = DYAD_KIND_MIN; kind <= DYAD_KIND_MAX; kind++) {
            for (int role = P; role <= C; role++) {
                uint64_t now;
                struct dyad *d = build(i, &now);
                struct expect e = expect(d, kind, role);
                size_t count = dyad_msg_count(d);
                int rc;

                /* dyad_allowed and dyad_make say the same as the table. */
                if (role != C && kind != DYAD_PROPOSE) {
                    assert_int_equal(dyad_allowed(d, (enum dyad_role)role, kind), e.rc);
                    wb_reset(&msg);
                    rc = dyad_make(d, who(role), kind, NULL, 0, true, now, &msg);
                    if (rc != e.rc)
                        fprintf(stderr, "make %s %s role %d: %d\n", situations[i].name,
                                dyad_kind_name(kind), role, rc);
                    assert_int_equal(rc, e.rc);
                    assert_true(rc == 0 ? msg.len > 0 : msg.len == 0);
                } else if (role == C) {
                    wb_reset(&msg);
                    assert_int_equal(dyad_make(d, &carol, kind == DYAD_PROPOSE ? DYAD_DONE : kind,
                                               NULL, 0, true, now, &msg),
                                     PULL_ERR_PERM);
                } else {
                    assert_int_equal(dyad_allowed(d, (enum dyad_role)role, kind), e.rc);
                }

                encode(d, &before);
                if (kind == DYAD_PROPOSE) {
                    /* Applied to an existing dyad, a PROPOSE is another dyad's, or this
                     * one's again. */
                    rc = send_forged(d, role, kind, now);
                    assert_int_equal(rc, PULL_ERR_INVAL);
                } else {
                    rc = send_forged(d, role, kind, now);
                    if (rc != e.rc)
                        fprintf(stderr, "apply %s %s role %d: got %d want %d\n", situations[i].name,
                                dyad_kind_name(kind), role, rc, e.rc);
                    assert_int_equal(rc, e.rc);
                }
                encode(d, &after);
                if (rc == 0) {
                    assert_int_equal(dyad_state(d), e.next);
                    assert_int_equal(dyad_msg_count(d), count + 1);
                    assert_int_equal(dyad_updated(d), now);
                    allowed++;
                } else {
                    /* A refusal changes nothing. */
                    assert_int_equal(dyad_state(d), situations[i].state);
                    assert_int_equal(before.len, after.len);
                    assert_memory_equal(before.p, after.p, before.len);
                }
                checked++;
                dyad_free(d);
            }
        }
    }
    /* 16 situations x 6 kinds x 3 roles, of which these are allowed: */
    assert_int_equal(checked, (int)NSITUATIONS * 6 * 3);
    assert_int_equal(allowed, /* proposed */ 3 + /* accepted */ 4 + /* done-by-P */ 5 +
                                  /* done-by-R */ 5 + /* both */ 4 + /* P-acked */ 3 +
                                  /* R-acked */ 3 + /* R-acked-by-R */ 3);
    wb_release(&before);
    wb_release(&after);
    wb_release(&msg);
}

/* The original PROPOSE applied again is a replay; dyad_allowed says PROPOSE is never
 * allowed on an existing dyad. */
static void
test_propose_replay(void **state)
{
    struct pull_wb prop;
    struct dyad *d;

    (void)state;
    wb_init(&prop, 0);
    d = new_dyad(&prop);
    assert_int_equal(dyad_apply(d, prop.p, prop.len, NOW + 1), PULL_ERR_DUPLICATE);
    assert_int_equal(dyad_allowed(d, P, DYAD_PROPOSE), PULL_ERR_STATE);
    assert_int_equal(dyad_allowed(d, R, DYAD_PROPOSE), PULL_ERR_PERM);
    assert_int_equal(dyad_make(d, &alice, DYAD_PROPOSE, NULL, 0, false, NOW, &prop),
                     PULL_ERR_INVAL);
    dyad_free(d);
    wb_release(&prop);
}

/* Two views (alice's and bob's) exchanging bytes, start to finish, then attestations. */
static void
test_happy_path(void **state)
{
    struct pull_wb prop, m, env;
    struct dyad *da = NULL, *db = NULL;
    struct envelope e;
    struct record rec;
    uint8_t id_a[32], id_b[32];
    uint64_t t = NOW;

    (void)state;
    wb_init(&prop, 0);
    wb_init(&m, 0);
    wb_init(&env, 0);
    da = new_dyad(&prop);
    assert_int_equal(dyad_from_propose(NULL, prop.p, prop.len, t + 5, &tdef, &db), 0);
    assert_memory_equal(dyad_id(da), dyad_id(db), 32);
    assert_memory_equal(dyad_record(db), rec_id, 32);
    assert_memory_equal(dyad_proposer(db), alice.pk, 32);
    assert_memory_equal(dyad_responder(db), bob.pk, 32);
    assert_memory_equal(dyad_peer(db, R), alice.pk, 32);
    assert_int_equal(dyad_role_of(db, bob.pk), R);
    assert_int_equal(dyad_role_of(db, carol.pk), -1);
    assert_string_equal(dyad_note(db, NULL), "bread for a bike repair");
    assert_int_equal(dyad_created(db), NOW);
    assert_int_equal(dyad_updated(db), t + 5);
    assert_string_equal(dyad_state_name(dyad_state(db)), "proposed");

    /* bob accepts */
    t += 3600;
    wb_reset(&m);
    assert_int_equal(dyad_act(db, &bob, DYAD_ACCEPT, "deal", 4, false, t, &m), 0);
    assert_int_equal(dyad_apply(da, m.p, m.len, t + 10), 0);
    assert_string_equal(dyad_state_name(dyad_state(da)), "accepted");
    /* bob says done */
    t += 2 * DAY;
    wb_reset(&m);
    assert_int_equal(dyad_act(db, &bob, DYAD_DONE, NULL, 0, false, t, &m), 0);
    assert_int_equal(dyad_apply(da, m.p, m.len, t + 10), 0);
    assert_string_equal(dyad_state_name(dyad_state(da)), "done");
    assert_true(dyad_said_done(da, R));
    assert_false(dyad_said_done(da, P));
    /* alice acks */
    t += DAY;
    wb_reset(&m);
    assert_int_equal(dyad_act(da, &alice, DYAD_ACK, "thanks", 6, true, t, &m), 0);
    assert_true(dyad_acked(da, P));
    assert_int_equal(dyad_apply(db, m.p, m.len, t + 10), 0);
    assert_int_equal(dyad_state(db), DYAD_ST_DONE);
    /* Not completed yet: no attestation. */
    assert_int_equal(dyad_attestation(da, &alice, &env, id_a), PULL_ERR_STATE);
    /* bob acks */
    t += 60;
    wb_reset(&m);
    assert_int_equal(dyad_act(db, &bob, DYAD_ACK, NULL, 0, true, t, &m), 0);
    assert_int_equal(dyad_apply(da, m.p, m.len, t + 10), 0);
    assert_string_equal(dyad_state_name(dyad_state(da)), "completed");
    assert_string_equal(dyad_state_name(dyad_state(db)), "completed");
    assert_int_equal(dyad_deadline(da), 0);
    assert_int_equal(dyad_msg_count(da), 5);
    assert_int_equal(dyad_msg_count(db), 5);

    /* Both publish their attestation: each opens as a valid record. */
    wb_reset(&env);
    assert_int_equal(dyad_attestation(da, &alice, &env, id_a), 0);
    assert_int_equal(envelope_open(env.p, env.len, t + 100, &e, &rec), 0);
    assert_memory_equal(e.id, id_a, 32);
    assert_int_equal(rec.kind, RECORD_ATTESTATION);
    assert_memory_equal(rec.author, alice.pk, 32);
    assert_memory_equal(rec.peer, bob.pk, 32);
    assert_memory_equal(rec.link, rec_id, 32);
    assert_memory_equal(rec.slot, dyad_id(da), 16);
    assert_int_equal(rec.created, t); /* bob's ACK time */
    assert_int_equal(rec.expires, t + 90 * DAY);
    wb_reset(&env);
    assert_int_equal(dyad_attestation(db, &bob, &env, id_b), 0);
    assert_int_equal(envelope_open(env.p, env.len, t + 100, &e, &rec), 0);
    assert_memory_equal(rec.author, bob.pk, 32);
    assert_memory_equal(rec.peer, alice.pk, 32);
    assert_int_equal(rec.created, t - 60); /* alice's ACK time */
    assert_memory_not_equal(id_a, id_b, 32);
    /* The attestation is the same whichever view builds it... */
    wb_reset(&env);
    assert_int_equal(dyad_attestation(da, &bob, &env, id_a), 0);
    assert_memory_equal(id_a, id_b, 32);
    /* ...and a third party has none. */
    assert_int_equal(dyad_attestation(da, &carol, &env, id_a), PULL_ERR_PERM);

    dyad_free(da);
    dyad_free(db);
    wb_release(&prop);
    wb_release(&m);
    wb_release(&env);
}

/* Every applied message, applied again, is a replay; the dyad doesn't change. */
static void
test_replays(void **state)
{
    struct pull_wb enc1, enc2;
    struct dyad *d = NULL;
    uint64_t now;

    (void)state;
    wb_init(&enc1, 0);
    wb_init(&enc2, 0);
    for (size_t s = 0; s < NSITUATIONS; s++) {
        d = build(s, &now);
        encode(d, &enc1);
        for (size_t i = 0; i < dyad_msg_count(d); i++) {
            const uint8_t *p;
            size_t n;
            uint8_t copy[DYAD_MSG_MAX];
            assert_int_equal(dyad_msg_at(d, i, &p, &n, NULL, NULL), 0);
            memcpy(copy, p, n);
            assert_int_equal(dyad_apply(d, copy, n, now), PULL_ERR_DUPLICATE);
        }
        encode(d, &enc2);
        assert_int_equal(enc1.len, enc2.len);
        assert_memory_equal(enc1.p, enc2.p, enc1.len);
        dyad_free(d);
    }
    /* A different message reusing an applied step (equivocation) is refused too. */
    d = build(1, &now); /* accepted: bob's step 0 is used */
    {
        struct fmsg f;
        struct pull_wb w;
        wb_init(&w, 0);
        fmsg_for(d, R, DYAD_DONE, now, &f);
        f.step = 0;
        forge(&f, &w);
        assert_int_equal(dyad_apply(d, w.p, w.len, now), PULL_ERR_DUPLICATE);
        wb_release(&w);
    }
    dyad_free(d);
    assert_int_equal(
        dyad_msg_at(d = new_dyad(NULL), 1, &(const uint8_t *){0}, &(size_t){0}, NULL, NULL),
        PULL_ERR_NOT_FOUND);
    dyad_free(d);
    wb_release(&enc1);
    wb_release(&enc2);
}

/* Messages of one author arriving out of order: the later one waits (AGAIN). */
static void
test_gap(void **state)
{
    struct pull_wb prop, acc, done, ack;
    struct dyad *da = NULL, *db = NULL;

    (void)state;
    wb_init(&prop, 0);
    wb_init(&acc, 0);
    wb_init(&done, 0);
    wb_init(&ack, 0);
    da = new_dyad(&prop);
    assert_int_equal(dyad_from_propose(NULL, prop.p, prop.len, NOW, &tdef, &db), 0);
    assert_int_equal(dyad_act(db, &bob, DYAD_ACCEPT, NULL, 0, false, NOW + 10, &acc), 0);
    assert_int_equal(dyad_act(db, &bob, DYAD_DONE, NULL, 0, false, NOW + 20, &done), 0);
    assert_int_equal(dyad_act(db, &bob, DYAD_ACK, NULL, 0, true, NOW + 30, &ack), 0);
    assert_int_equal(dyad_apply(da, ack.p, ack.len, NOW + 40), PULL_ERR_AGAIN);
    assert_int_equal(dyad_apply(da, done.p, done.len, NOW + 40), PULL_ERR_AGAIN);
    assert_int_equal(dyad_state(da), DYAD_ST_PROPOSED);
    assert_int_equal(dyad_apply(da, acc.p, acc.len, NOW + 40), 0);
    assert_int_equal(dyad_apply(da, ack.p, ack.len, NOW + 40), PULL_ERR_AGAIN);
    assert_int_equal(dyad_apply(da, done.p, done.len, NOW + 40), 0);
    assert_int_equal(dyad_apply(da, ack.p, ack.len, NOW + 40), 0);
    assert_true(dyad_acked(da, R));
    assert_int_equal(dyad_state(da), DYAD_ST_DONE);
    dyad_free(da);
    dyad_free(db);
    wb_release(&prop);
    wb_release(&acc);
    wb_release(&done);
    wb_release(&ack);
}

/* Third parties and forged acceptances. */
static void
test_forged_accept(void **state)
{
    struct pull_wb w, other;
    struct dyad *d = new_dyad(NULL), *d2 = NULL;
    struct fmsg f;

    (void)state;
    wb_init(&w, 0);
    wb_init(&other, 0);
    /* carol signs an ACCEPT as herself: not a party. */
    fmsg_for(d, C, DYAD_ACCEPT, NOW + 60, &f);
    forge(&f, &w);
    assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 60), PULL_ERR_PERM);
    /* carol signs an ACCEPT claiming to be bob: bad signature. */
    fmsg_for(d, R, DYAD_ACCEPT, NOW + 60, &f);
    f.signer = &carol;
    forge(&f, &w);
    assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 60), PULL_ERR_BAD_SIG);
    /* bob's envelope with carol's terms signature: bad signature. */
    fmsg_for(d, R, DYAD_ACCEPT, NOW + 60, &f);
    assert_int_equal(ident_sign(&carol, DYAD_TERMS_DOMAIN, f.terms, 32, f.terms_sig), 0);
    forge(&f, &w);
    assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 60), PULL_ERR_BAD_SIG);
    /* bob's terms signature under the wrong domain: bad signature. */
    fmsg_for(d, R, DYAD_ACCEPT, NOW + 60, &f);
    assert_int_equal(ident_sign(&bob, DYAD_DOMAIN, f.terms, 32, f.terms_sig), 0);
    forge(&f, &w);
    assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 60), PULL_ERR_BAD_SIG);
    /* bob accepting other terms (properly signed): protocol violation. */
    fmsg_for(d, R, DYAD_ACCEPT, NOW + 60, &f);
    memset(f.terms, 0x33, 32);
    assert_int_equal(ident_sign(&bob, DYAD_TERMS_DOMAIN, f.terms, 32, f.terms_sig), 0);
    forge(&f, &w);
    assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 60), PULL_ERR_PROTOCOL);
    /* alice accepting her own proposal: wrong role. */
    fmsg_for(d, P, DYAD_ACCEPT, NOW + 60, &f);
    forge(&f, &w);
    assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 60), PULL_ERR_PERM);
    /* bob's real ACCEPT of ANOTHER dyad (same people, same record, other note). */
    assert_int_equal(dyad_propose(NULL, &alice, rec_id, bob.pk, "x", 1, NOW, &tdef, &d2, &other),
                     0);
    wb_reset(&w);
    assert_int_equal(dyad_make(d2, &bob, DYAD_ACCEPT, NULL, 0, false, NOW + 60, &w), 0);
    assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 60), PULL_ERR_INVAL);
    /* the real one applies. */
    assert_int_equal(dyad_state(d), DYAD_ST_PROPOSED);
    fmsg_for(d, R, DYAD_ACCEPT, NOW + 60, &f);
    forge(&f, &w);
    assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 60), 0);
    dyad_free(d);
    dyad_free(d2);
    wb_release(&w);
    wb_release(&other);
}

/* Flipping any single byte of any message is refused (never applied), and a flipped
 * signature is BAD_SIG specifically. */
static void
test_bad_sig_and_flips(void **state)
{
    struct pull_wb enc;
    struct dyad *full;
    uint64_t now;
    size_t flips = 0;

    (void)state;
    wb_init(&enc, 0);
    full = build(9, &now); /* completed: 5 messages */
    assert_int_equal(dyad_msg_count(full), 5);
    for (size_t i = 1; i < dyad_msg_count(full); i++) {
        const uint8_t *p;
        size_t n;
        uint8_t buf[DYAD_MSG_MAX];
        struct dyad *d = build(0, &now);
        /* bring d to just before message i */
        for (size_t j = 1; j < i; j++) {
            assert_int_equal(dyad_msg_at(full, j, &p, &n, NULL, NULL), 0);
            assert_int_equal(dyad_apply(d, p, n, NOW + 3600), 0);
        }
        assert_int_equal(dyad_msg_at(full, i, &p, &n, NULL, NULL), 0);
        for (size_t b = 0; b < n; b++) {
            for (int mask = 1; mask < 256; mask <<= 3) {
                memcpy(buf, p, n);
                buf[b] ^= (uint8_t)mask;
                assert_int_not_equal(dyad_apply(d, buf, n, NOW + 3600), 0);
                flips++;
            }
        }
        /* the signature's last byte: specifically a bad signature */
        memcpy(buf, p, n);
        buf[n - 1] ^= 1;
        assert_int_equal(dyad_apply(d, buf, n, NOW + 3600), PULL_ERR_BAD_SIG);
        /* untouched, it applies */
        assert_int_equal(dyad_apply(d, p, n, NOW + 3600), 0);
        dyad_free(d);
    }
    /* The proposal too: flipped, it doesn't start a dyad. */
    {
        const uint8_t *p;
        size_t n;
        uint8_t buf[DYAD_MSG_MAX];
        struct dyad *d = NULL;
        assert_int_equal(dyad_msg_at(full, 0, &p, &n, NULL, NULL), 0);
        for (size_t b = 0; b < n; b++) {
            memcpy(buf, p, n);
            buf[b] ^= 0x40;
            assert_int_not_equal(dyad_from_propose(NULL, buf, n, NOW, &tdef, &d), 0);
            assert_null(d);
        }
        memcpy(buf, p, n);
        buf[n - 3] ^= 1;
        assert_int_equal(dyad_from_propose(NULL, buf, n, NOW, &tdef, &d), PULL_ERR_BAD_SIG);
    }
    /* A forged signature flag in the forger gives BAD_SIG too. */
    {
        struct fmsg f;
        struct pull_wb w;
        struct dyad *d = build(1, &now);
        wb_init(&w, 0);
        fmsg_for(d, P, DYAD_DONE, now, &f);
        f.sig_bad = true;
        forge(&f, &w);
        assert_int_equal(dyad_apply(d, w.p, w.len, now), PULL_ERR_BAD_SIG);
        wb_release(&w);
        dyad_free(d);
    }
    assert_true(flips > 1000);
    dyad_free(full);
    wb_release(&enc);
}

/* Every strict prefix of a message and of a persisted dyad is refused. */
static void
test_truncated(void **state)
{
    struct pull_wb enc;
    struct dyad *full, *d = NULL;
    struct dyad_msg m;
    uint64_t now;

    (void)state;
    wb_init(&enc, 0);
    full = build(9, &now);
    for (size_t i = 0; i < dyad_msg_count(full); i++) {
        const uint8_t *p;
        size_t n;
        assert_int_equal(dyad_msg_at(full, i, &p, &n, NULL, NULL), 0);
        assert_int_equal(dyad_msg_decode(p, n, &m), 0);
        assert_int_equal(dyad_msg_verify(&m), 0);
        for (size_t k = 0; k < n; k++) {
            uint8_t *cut = malloc(k + 1); /* exact-size heap copy: ASan sees overreads */
            memcpy(cut, p, k);
            assert_int_not_equal(dyad_msg_decode(cut, k, &m), 0);
            assert_int_not_equal(dyad_apply(full, cut, k, now), 0);
            free(cut);
        }
    }
    encode(full, &enc);
    for (size_t k = 0; k < enc.len; k++) {
        uint8_t *cut = malloc(k + 1);
        memcpy(cut, enc.p, k);
        assert_int_not_equal(dyad_decode(NULL, cut, k, &tdef, &d), 0);
        assert_null(d);
        free(cut);
    }
    /* ...and the whole thing decodes. */
    assert_int_equal(dyad_decode(NULL, enc.p, enc.len, &tdef, &d), 0);
    dyad_free(d);
    dyad_free(full);
    wb_release(&enc);
}

/* Every situation survives encode -> decode -> encode byte for byte, with the same state,
 * flags and deadline. */
static void
test_persist_roundtrip(void **state)
{
    struct pull_wb a, b;

    (void)state;
    wb_init(&a, 0);
    wb_init(&b, 0);
    for (size_t s = 0; s < NSITUATIONS; s++) {
        uint64_t now;
        struct dyad *d = build(s, &now), *e = NULL;
        encode(d, &a);
        assert_true(a.len <= DYAD_ENCODED_MAX);
        assert_int_equal(dyad_decode(NULL, a.p, a.len, &tdef, &e), 0);
        encode(e, &b);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.p, b.p, a.len);
        assert_int_equal(dyad_state(d), dyad_state(e));
        assert_int_equal(dyad_deadline(d), dyad_deadline(e));
        assert_int_equal(dyad_updated(d), dyad_updated(e));
        assert_int_equal(dyad_msg_count(d), dyad_msg_count(e));
        for (int r = P; r <= R; r++) {
            assert_int_equal(dyad_said_done(d, r), dyad_said_done(e, r));
            assert_int_equal(dyad_acked(d, r), dyad_acked(e, r));
        }
        assert_memory_equal(dyad_id(d), dyad_id(e), 32);
        /* the restored dyad continues: same answers as the original */
        for (unsigned k = DYAD_ACCEPT; k <= DYAD_KIND_MAX; k++) {
            for (int r = P; r <= R; r++)
                assert_int_equal(dyad_allowed(d, r, k), dyad_allowed(e, r, k));
        }
        dyad_free(d);
        dyad_free(e);
    }
    wb_release(&a);
    wb_release(&b);
}

/* Persisted forms that must be refused. */
static void
test_persist_hostile(void **state)
{
    struct pull_wb w, inner;
    struct dyad *d = NULL, *full;
    msgpack_packer pk;
    uint64_t now;
    const uint8_t *p[5];
    size_t n[5];

    (void)state;
    wb_init(&w, 0);
    wb_init(&inner, 0);
    full = build(9, &now);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(dyad_msg_at(full, i, &p[i], &n[i], NULL, NULL), 0);

#define PERSIST(ver, exp_at, cnt, ...)                                                             \
    do {                                                                                           \
        size_t idx[] = {__VA_ARGS__};                                                              \
        wb_reset(&w);                                                                              \
        mp_packer_init(&pk, &w);                                                                   \
        msgpack_pack_array(&pk, 4);                                                                \
        msgpack_pack_uint64(&pk, ver);                                                             \
        msgpack_pack_uint64(&pk, NOW);                                                             \
        msgpack_pack_uint64(&pk, exp_at);                                                          \
        msgpack_pack_array(&pk, cnt);                                                              \
        for (int q = 0; q < (int)(cnt); q++)                                                       \
            mp_pack_bin(&pk, p[idx[q]], n[idx[q]]);                                                \
    } while (0)

    PERSIST(1, 0, 5, 0, 1, 2, 3, 4);
    assert_int_equal(dyad_decode(NULL, w.p, w.len, &tdef, &d), 0);
    dyad_free(d);
    d = NULL;
    PERSIST(2, 0, 5, 0, 1, 2, 3, 4);
    assert_int_equal(dyad_decode(NULL, w.p, w.len, &tdef, &d), PULL_ERR_VERSION);
    /* expired_at on a completed dyad */
    PERSIST(1, NOW, 5, 0, 1, 2, 3, 4);
    assert_int_equal(dyad_decode(NULL, w.p, w.len, &tdef, &d), PULL_ERR_MALFORMED);
    /* expired_at on an open dyad is fine */
    PERSIST(1, NOW + 5, 2, 0, 1);
    assert_int_equal(dyad_decode(NULL, w.p, w.len, &tdef, &d), 0);
    assert_int_equal(dyad_state(d), DYAD_ST_EXPIRED);
    dyad_free(d);
    d = NULL;
    /* not starting with the proposal */
    PERSIST(1, 0, 2, 1, 2);
    assert_int_equal(dyad_decode(NULL, w.p, w.len, &tdef, &d), PULL_ERR_STATE);
    /* out of order, duplicated */
    PERSIST(1, 0, 3, 0, 2, 1);
    assert_int_equal(dyad_decode(NULL, w.p, w.len, &tdef, &d), PULL_ERR_STATE);
    PERSIST(1, 0, 3, 0, 1, 1);
    assert_int_equal(dyad_decode(NULL, w.p, w.len, &tdef, &d), PULL_ERR_DUPLICATE);
    PERSIST(1, 0, 2, 0, 0);
    assert_int_equal(dyad_decode(NULL, w.p, w.len, &tdef, &d), PULL_ERR_DUPLICATE);
    /* empty list, and too many */
    PERSIST(1, 0, 0, 0);
    assert_int_equal(dyad_decode(NULL, w.p, w.len, &tdef, &d), PULL_ERR_MALFORMED);
    wb_reset(&w);
    mp_packer_init(&pk, &w);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, NOW);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_array(&pk, DYAD_MSGS_MAX + 1);
    for (int q = 0; q < DYAD_MSGS_MAX + 1; q++)
        mp_pack_bin(&pk, p[q < 5 ? q : 4], n[q < 5 ? q : 4]);
    assert_int_equal(dyad_decode(NULL, w.p, w.len, &tdef, &d), PULL_ERR_MALFORMED);
    /* trailing byte */
    PERSIST(1, 0, 5, 0, 1, 2, 3, 4);
    assert_int_equal(wb_u8(&w, 0xc0), 0);
    assert_int_equal(dyad_decode(NULL, w.p, w.len, &tdef, &d), PULL_ERR_TRAILING);
    assert_null(d);
#undef PERSIST
    dyad_free(full);
    wb_release(&w);
    wb_release(&inner);
}

/* Deadlines of each step, with default and custom timeouts. */
static void
test_timeouts(void **state)
{
    struct dyad_timeouts t = {.propose_s = 3600, .accept_s = 7200, .done_s = 600};
    struct pull_wb w, prop;
    struct dyad *d = NULL, *e = NULL;

    (void)state;
    wb_init(&w, 0);
    wb_init(&prop, 0);
    /* defaults */
    d = new_dyad(NULL);
    assert_int_equal(dyad_deadline(d), NOW + 7 * DAY);
    act(d, R, DYAD_ACCEPT, NOW + 100);
    assert_int_equal(dyad_deadline(d), NOW + 100 + 30 * DAY);
    act(d, P, DYAD_DONE, NOW + 200);
    assert_int_equal(dyad_deadline(d), NOW + 200 + 14 * DAY);
    act(d, R, DYAD_DONE, NOW + 300); /* the second DONE doesn't move the deadline */
    assert_int_equal(dyad_deadline(d), NOW + 200 + 14 * DAY);
    dyad_free(d);

    /* custom: the proposal expires; nothing applies after its deadline */
    assert_int_equal(dyad_propose(NULL, &alice, rec_id, bob.pk, NULL, 0, NOW, &t, &d, &prop), 0);
    assert_int_equal(dyad_deadline(d), NOW + 3600);
    assert_int_equal(dyad_from_propose(NULL, prop.p, prop.len, NOW + 3600, &t, &e),
                     PULL_ERR_EXPIRED);
    assert_null(e);
    assert_int_equal(dyad_from_propose(NULL, prop.p, prop.len, NOW + 3599, &t, &e), 0);
    assert_int_equal(dyad_make(e, &bob, DYAD_ACCEPT, NULL, 0, false, NOW + 3600, &w),
                     PULL_ERR_EXPIRED);
    assert_int_equal(dyad_make(e, &bob, DYAD_ACCEPT, NULL, 0, false, NOW + 3599, &w), 0);
    assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 3600), PULL_ERR_EXPIRED);
    assert_int_equal(dyad_state(d), DYAD_ST_PROPOSED);
    assert_int_equal(dyad_on_timeout(d, NOW + 3599), 0);
    assert_int_equal(dyad_on_timeout(d, NOW + 3600), 1);
    assert_string_equal(dyad_state_name(dyad_state(d)), "expired");
    assert_int_equal(dyad_updated(d), NOW + 3600);
    assert_false(dyad_is_open(d));
    /* after expiry the table refuses */
    assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 3600), PULL_ERR_STATE);
    /* accepted -> expired, done -> expired */
    assert_int_equal(dyad_apply(e, w.p, w.len, NOW + 3599), 0);
    assert_int_equal(dyad_deadline(e), NOW + 3599 + 7200);
    assert_int_equal(dyad_on_timeout(e, NOW + 3599 + 7199), 0);
    wb_reset(&w);
    assert_int_equal(dyad_act(e, &alice, DYAD_DONE, NULL, 0, false, NOW + 4000, &w), 0);
    assert_int_equal(dyad_deadline(e), NOW + 4600);
    wb_reset(&w);
    assert_int_equal(dyad_act(e, &alice, DYAD_ACK, NULL, 0, true, NOW + 4600, &w),
                     PULL_ERR_EXPIRED);
    assert_int_equal(w.len, 0);
    assert_int_equal(dyad_on_timeout(e, NOW + 4600), 1);
    assert_int_equal(dyad_state(e), DYAD_ST_EXPIRED);
    dyad_free(d);
    dyad_free(e);
    d = e = NULL;

    /* bad timeouts for a proposal */
    t.propose_s = 0;
    assert_int_equal(dyad_propose(NULL, &alice, rec_id, bob.pk, NULL, 0, NOW, &t, &d, &prop),
                     PULL_ERR_INVAL);
    t.propose_s = DYAD_PROPOSE_TTL_MAX + 1;
    assert_int_equal(dyad_propose(NULL, &alice, rec_id, bob.pk, NULL, 0, NOW, &t, &d, &prop),
                     PULL_ERR_INVAL);
    assert_null(d);
    wb_release(&w);
    wb_release(&prop);
}

/* Messages created too far in our future are refused. */
static void
test_clock_skew(void **state)
{
    struct pull_wb w;
    struct fmsg f;
    struct dyad *d = new_dyad(NULL), *e = NULL;

    (void)state;
    wb_init(&w, 0);
    fmsg_for(d, R, DYAD_ACCEPT, NOW + 1000 + DYAD_SKEW_MAX + 1, &f);
    forge(&f, &w);
    assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 1000), PULL_ERR_CLOCK_SKEW);
    fmsg_for(d, R, DYAD_ACCEPT, NOW + 1000 + DYAD_SKEW_MAX, &f);
    forge(&f, &w);
    assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 1000), 0);
    /* a proposal from the future */
    fprop(&f, &alice, &bob, NOW + DYAD_SKEW_MAX + 1, "hi");
    forge(&f, &w);
    assert_int_equal(dyad_from_propose(NULL, w.p, w.len, NOW, &tdef, &e), PULL_ERR_CLOCK_SKEW);
    assert_int_equal(dyad_from_propose(NULL, w.p, w.len, NOW + 1, &tdef, &e), 0);
    dyad_free(e);
    dyad_free(d);
    wb_release(&w);
}

/* Hostile and malformed messages, each refused with its reason. */
static void
test_decode_hostile(void **state)
{
    struct pull_wb w;
    struct fmsg f;
    struct dyad_msg m;
    struct dyad *d = new_dyad(NULL), *e = NULL;
    char note[DYAD_NOTE_MAX + 2];

    (void)state;
    wb_init(&w, 0);
#define PROP_RC(expr_mod, want)                                                                    \
    do {                                                                                           \
        fprop(&f, &alice, &bob, NOW, "hello");                                                     \
        expr_mod;                                                                                  \
        forge(&f, &w);                                                                             \
        assert_int_equal(dyad_from_propose(NULL, w.p, w.len, NOW, &tdef, &e), want);               \
        dyad_free(e);                                                                              \
        e = NULL;                                                                                  \
    } while (0)
    PROP_RC((void)0, 0);
    PROP_RC(f.version = 2, PULL_ERR_VERSION);
    PROP_RC(f.kind = 0, PULL_ERR_FIELD);
    PROP_RC(f.kind = 7, PULL_ERR_FIELD);
    PROP_RC(f.nfields = 12, PULL_ERR_MALFORMED);
    PROP_RC(f.extra = true, PULL_ERR_MALFORMED);
    PROP_RC(f.dyad[3] = 1, PULL_ERR_FIELD);
    PROP_RC(f.step = 1, PULL_ERR_FIELD);
    PROP_RC(memcpy(f.proposer, carol.pk, 32), PULL_ERR_FIELD);  /* proposer != author */
    PROP_RC(memcpy(f.responder, alice.pk, 32), PULL_ERR_INVAL); /* to oneself */
    PROP_RC(f.expires = NOW, PULL_ERR_EXPIRY);
    PROP_RC(f.expires = NOW + DYAD_PROPOSE_TTL_MAX + 1, PULL_ERR_EXPIRY);
    PROP_RC(f.expires = NOW + DYAD_PROPOSE_TTL_MAX, 0);
    PROP_RC(f.terms[0] ^= 1, PULL_ERR_FIELD);  /* terms don't match */
    PROP_RC(f.note = "hellO", PULL_ERR_FIELD); /* note not in terms */
    PROP_RC(f.terms_sig[0] ^= 1, PULL_ERR_BAD_SIG);
    PROP_RC(f.sig_len = 63, PULL_ERR_FIELD);
    PROP_RC(f.created = (1ull << 40) + 1, PULL_ERR_FIELD);
    PROP_RC(f.kind = DYAD_DONE; memcpy(f.dyad, dyad_id(d), 32), PULL_ERR_STATE);
#undef PROP_RC
    /* notes: 500 bytes fine, 501 too long, controls and bad UTF-8 refused */
    memset(note, 'a', sizeof(note));
    note[DYAD_NOTE_MAX] = '\0';
    assert_int_equal(
        dyad_propose(NULL, &alice, rec_id, bob.pk, note, DYAD_NOTE_MAX, NOW, &tdef, &e, &w), 0);
    dyad_free(e);
    e = NULL;
    assert_int_equal(
        dyad_propose(NULL, &alice, rec_id, bob.pk, note, DYAD_NOTE_MAX + 1, NOW, &tdef, &e, &w),
        PULL_ERR_FIELD);
    assert_int_equal(dyad_propose(NULL, &alice, rec_id, bob.pk, "a\x01", 2, NOW, &tdef, &e, &w),
                     PULL_ERR_CONTROL);
    assert_int_equal(dyad_propose(NULL, &alice, rec_id, bob.pk, "a\xc2\x85", 3, NOW, &tdef, &e, &w),
                     PULL_ERR_CONTROL);
    assert_int_equal(dyad_propose(NULL, &alice, rec_id, bob.pk, "a\xff", 2, NOW, &tdef, &e, &w),
                     PULL_ERR_UTF8);
    assert_int_equal(dyad_propose(NULL, &alice, rec_id, alice.pk, "", 0, NOW, &tdef, &e, &w),
                     PULL_ERR_INVAL);
    assert_int_equal(dyad_make(d, &bob, DYAD_ACCEPT, "line\nand\ttab", 12, false, NOW, &w), 0);
    assert_int_equal(dyad_make(d, &bob, DYAD_ACCEPT, "\x1b[2J", 4, false, NOW, &w),
                     PULL_ERR_CONTROL);
    fprop(&f, &alice, &bob, NOW, "bell\a");
    forge(&f, &w);
    assert_int_equal(dyad_msg_decode(w.p, w.len, &m), PULL_ERR_CONTROL);

    /* non-proposal messages */
#define MSG_RC(kind_, role_, expr_mod, want)                                                       \
    do {                                                                                           \
        fmsg_for(d, role_, kind_, NOW + 10, &f);                                                   \
        expr_mod;                                                                                  \
        forge(&f, &w);                                                                             \
        assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 10), want);                               \
    } while (0)
    MSG_RC(DYAD_ACCEPT, R, memset(f.dyad, 0, 32), PULL_ERR_FIELD);
    MSG_RC(DYAD_ACCEPT, R, f.dyad[0] ^= 1, PULL_ERR_INVAL);
    MSG_RC(DYAD_ACCEPT, R, f.nfields = 8, PULL_ERR_MALFORMED);
    MSG_RC(DYAD_ACCEPT, R, f.extra = true, PULL_ERR_MALFORMED);
    MSG_RC(DYAD_ACCEPT, R, f.step = 256, PULL_ERR_FIELD);
    MSG_RC(DYAD_ACCEPT, R, f.step = 255, PULL_ERR_AGAIN);
    MSG_RC(DYAD_DECLINE, R, f.nfields = 8, PULL_ERR_MALFORMED);
    MSG_RC(DYAD_ACCEPT, R, (void)0, 0);
    act(d, P, DYAD_DONE, NOW + 20);
    MSG_RC(DYAD_ACK, R, f.cosig_len = 32, PULL_ERR_FIELD);
    MSG_RC(DYAD_ACK, R, f.cosig[0] ^= 1, PULL_ERR_ATTEST);
    /* a cosig over an attestation with another created time than the ACK's */
    MSG_RC(DYAD_ACK, R, f.created = NOW + 11, PULL_ERR_ATTEST);
    /* a cosig made by the wrong side (alice cosigning her own attestation) */
    {
        struct record rec;
        fmsg_for(d, R, DYAD_ACK, NOW + 10, &f);
        dyad_attestation_build(d, R, NOW + 10, &rec); /* bob's, cosigned by alice */
        assert_int_equal(record_cosign(NULL, &rec, &alice), 0);
        memcpy(f.cosig, rec.cosig, 64);
        forge(&f, &w);
        assert_int_equal(dyad_apply(d, w.p, w.len, NOW + 10), PULL_ERR_ATTEST);
    }
    MSG_RC(DYAD_ACK, R, f.cosig_len = 0, 0); /* no cosig: allowed */
    assert_int_equal(dyad_state(d), DYAD_ST_DONE);
    MSG_RC(DYAD_ACK, P, (void)0, 0);
    assert_int_equal(dyad_state(d), DYAD_ST_COMPLETED);
    /* bob sent no cosig: alice has nothing to publish; bob does */
    assert_int_equal(dyad_attestation(d, &alice, &w, NULL), PULL_ERR_NOT_FOUND);
    wb_reset(&w);
    assert_int_equal(dyad_attestation(d, &bob, &w, NULL), 0);
#undef MSG_RC
    /* envelope-level damage */
    {
        static const uint8_t junk[][8] = {
            {0x92, 0xc4, 0x00, 0xc4, 0x40}, /* empty body, short sig */
            {0x93, 0xc4, 0x00, 0xc4, 0x00, 0xc0},
            {0xdd, 0xff, 0xff, 0xff, 0xff},
            {0x92, 0xc5, 0xff, 0xff},
            {0x91, 0xc0},
        };
        for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
            assert_int_not_equal(dyad_msg_decode(junk[i], sizeof(junk[i]), &m), 0);
        uint8_t *big = calloc(1, DYAD_MSG_MAX + 1);
        assert_int_equal(dyad_msg_decode(big, DYAD_MSG_MAX + 1, &m), PULL_ERR_TOO_BIG);
        free(big);
    }
    dyad_free(d);
    wb_release(&w);
}

/* Concurrent messages crossing: both views end in the same state. */
static void
cross(enum dyad_kind first_setup, int ra, enum dyad_kind ka, int rb, enum dyad_kind kb, int want_a,
      int want_b)
{
    struct pull_wb prop, ma, mb, m;
    struct dyad *da = NULL, *db = NULL;

    wb_init(&prop, 0);
    wb_init(&ma, 0);
    wb_init(&mb, 0);
    wb_init(&m, 0);
    da = new_dyad(&prop);
    assert_int_equal(dyad_from_propose(NULL, prop.p, prop.len, NOW, &tdef, &db), 0);
    /* common prefix: none, accepted, or done (by alice) */
    if (first_setup >= DYAD_ACCEPT) {
        wb_reset(&m);
        assert_int_equal(dyad_act(db, &bob, DYAD_ACCEPT, NULL, 0, false, NOW + 1, &m), 0);
        assert_int_equal(dyad_apply(da, m.p, m.len, NOW + 1), 0);
    }
    if (first_setup >= DYAD_DONE) {
        wb_reset(&m);
        assert_int_equal(dyad_act(da, &alice, DYAD_DONE, NULL, 0, false, NOW + 2, &m), 0);
        assert_int_equal(dyad_apply(db, m.p, m.len, NOW + 2), 0);
    }
    /* each acts on its own view, then receives the other's */
    assert_int_equal(dyad_act(da, who(ra), ka, NULL, 0, true, NOW + 10, &ma), 0);
    assert_int_equal(dyad_act(db, who(rb), kb, NULL, 0, true, NOW + 10, &mb), 0);
    assert_int_equal(dyad_apply(da, mb.p, mb.len, NOW + 20), want_a);
    assert_int_equal(dyad_apply(db, ma.p, ma.len, NOW + 20), want_b);
    if (kb == DYAD_DECLINE) {
        /* the one documented divergence: declined vs cancelled, both closed */
        assert_false(dyad_is_open(da));
        assert_false(dyad_is_open(db));
    } else {
        assert_int_equal(dyad_state(da), dyad_state(db));
    }
    dyad_free(da);
    dyad_free(db);
    wb_release(&prop);
    wb_release(&ma);
    wb_release(&mb);
    wb_release(&m);
}

static void
test_crossings(void **state)
{
    (void)state;
    /* alice cancels her proposal while bob accepts: cancelled on both */
    cross(0, P, DYAD_CANCEL, R, DYAD_ACCEPT, PULL_ERR_STATE, 0);
    /* alice cancels while bob declines: cancelled / declined (documented) */
    cross(0, P, DYAD_CANCEL, R, DYAD_DECLINE, PULL_ERR_STATE, PULL_ERR_STATE);
    /* both say done */
    cross(DYAD_ACCEPT, P, DYAD_DONE, R, DYAD_DONE, 0, 0);
    /* done vs cancel */
    cross(DYAD_ACCEPT, P, DYAD_DONE, R, DYAD_CANCEL, 0, PULL_ERR_STATE);
    /* both cancel */
    cross(DYAD_ACCEPT, P, DYAD_CANCEL, R, DYAD_CANCEL, PULL_ERR_STATE, PULL_ERR_STATE);
    /* both acknowledge: completed on both */
    cross(DYAD_DONE, P, DYAD_ACK, R, DYAD_ACK, 0, 0);
    /* ack vs cancel */
    cross(DYAD_DONE, P, DYAD_ACK, R, DYAD_CANCEL, 0, PULL_ERR_STATE);
    cross(DYAD_DONE, P, DYAD_CANCEL, R, DYAD_ACK, PULL_ERR_STATE, 0);
    /* ack vs second done */
    cross(DYAD_DONE, P, DYAD_ACK, R, DYAD_DONE, 0, 0);
}

/* The terms hash test vector of PROTOCOL.md section 12. */
static void
test_terms_vector(void **state)
{
    struct ident a, b;
    uint8_t seed[32], rec[32], terms[32], want[32];

    (void)state;
    memset(seed, 1, 32);
    assert_int_equal(ident_from_seed(&a, seed), 0);
    memset(seed, 2, 32);
    assert_int_equal(ident_from_seed(&b, seed), 0);
    memset(rec, 0x7e, 32);
    assert_int_equal(dyad_terms_hash(rec, a.pk, b.pk, "hello", 5, 1800000000ull, terms), 0);
    assert_int_equal(
        tu_hex("21e67955b8b3151a18f9284ae2f59140e6e32d9cbb158b410b8caa63fd863c3a", want, 32), 32);
    assert_memory_equal(terms, want, 32);
    assert_int_equal(dyad_terms_hash(rec, a.pk, b.pk, "x", DYAD_NOTE_MAX + 1, 0, terms),
                     PULL_ERR_FIELD);
}

/* Names, and the API's argument checks. */
static void
test_names_and_args(void **state)
{
    static const char *const states[] = {"proposed",  "accepted",  "declined", "done",
                                         "completed", "cancelled", "expired"};
    struct pull_wb w;
    struct dyad *d = NULL;

    (void)state;
    wb_init(&w, 0);
    for (unsigned s = DYAD_ST_MIN; s <= DYAD_ST_MAX; s++)
        assert_string_equal(dyad_state_name(s), states[s - 1]);
    assert_null(dyad_state_name(0));
    assert_null(dyad_state_name(8));
    assert_string_equal(dyad_kind_name(DYAD_ACK), "ack");
    assert_null(dyad_kind_name(0));
    assert_string_equal(dyad_kind_name(DYAD_NOTE), "note");
    assert_null(dyad_kind_name(8));
    assert_int_equal(dyad_propose(NULL, &alice, rec_id, bob.pk, NULL, 3, NOW, &tdef, &d, &w),
                     PULL_ERR_INVAL);
    d = new_dyad(NULL);
    assert_int_equal(dyad_allowed(d, R, 0), PULL_ERR_INVAL);
    assert_int_equal(dyad_allowed(d, R, 8), PULL_ERR_INVAL);
    assert_int_equal(dyad_make(d, &bob, DYAD_ACCEPT, NULL, 2, false, NOW, &w), PULL_ERR_INVAL);
    dyad_free(d);
    dyad_free(NULL);
    wb_release(&w);
}

/* dyad_make of a note by role at now into w (reset first). */
static int
make_note(struct dyad *d, int role, const char *text, uint64_t now, struct pull_wb *w)
{
    wb_reset(w);
    return dyad_make(d, who(role), DYAD_NOTE, text, text ? strlen(text) : 0, false, now, w);
}

/* Notes: a conversation that changes no state, counted per side apart from the steps. */
static void
test_notes(void **state)
{
    struct pull_wb prop, n1, n2, acc, w, enc;
    struct dyad *a, *b, *e = NULL;
    struct dyad_msg m;
    const uint8_t *p;
    size_t n;
    enum dyad_kind kind;
    enum dyad_role author;
    struct fmsg f;

    (void)state;
    wb_init(&prop, 0);
    wb_init(&n1, 0);
    wb_init(&n2, 0);
    wb_init(&acc, 0);
    wb_init(&w, 0);
    wb_init(&enc, 0);
    a = new_dyad(&prop); /* alice's copy */
    assert_int_equal(dyad_from_propose(NULL, prop.p, prop.len, NOW, &tdef, &b), 0); /* bob's */

    /* bob asks, alice answers, in the proposed state */
    assert_int_equal(make_note(b, R, "which wheel?", NOW + 1, &n1), 0);
    assert_int_equal(dyad_msg_decode(n1.p, n1.len, &m), 0);
    assert_int_equal(m.kind, DYAD_NOTE);
    assert_int_equal(m.step, 0);
    assert_int_equal(dyad_apply(b, n1.p, n1.len, NOW + 1), 0);
    assert_int_equal(dyad_apply(a, n1.p, n1.len, NOW + 1), 0);
    assert_int_equal(dyad_state(a), DYAD_ST_PROPOSED);
    assert_int_equal(dyad_apply(a, n1.p, n1.len, NOW + 1), PULL_ERR_DUPLICATE);
    /* a note doesn't take a step of the state machine: bob's ACCEPT is still step 0 */
    wb_reset(&acc);
    assert_int_equal(dyad_act(b, &bob, DYAD_ACCEPT, "yes, 6pm", 8, false, NOW + 2, &acc), 0);
    assert_int_equal(dyad_msg_decode(acc.p, acc.len, &m), 0);
    assert_int_equal(m.step, 0);
    /* bob's second note arrives at alice before his ACCEPT, and the other way round */
    assert_int_equal(make_note(b, R, "bring the lock", NOW + 3, &n2), 0);
    assert_int_equal(dyad_apply(b, n2.p, n2.len, NOW + 3), 0);
    assert_int_equal(dyad_apply(a, n2.p, n2.len, NOW + 3), 0);
    assert_int_equal(dyad_apply(a, acc.p, acc.len, NOW + 3), 0);
    assert_int_equal(dyad_state(a), DYAD_ST_ACCEPTED);
    assert_int_equal(dyad_notes(a, R), 2);
    assert_int_equal(dyad_notes(a, P), 0);
    /* a gap in notes is held like a gap in steps */
    assert_int_equal(make_note(b, R, "third", NOW + 4, &n1), 0);
    assert_int_equal(dyad_apply(b, n1.p, n1.len, NOW + 4), 0);
    assert_int_equal(make_note(b, R, "fourth", NOW + 5, &n2), 0);
    assert_int_equal(dyad_apply(b, n2.p, n2.len, NOW + 5), 0);
    assert_int_equal(dyad_apply(a, n2.p, n2.len, NOW + 5), PULL_ERR_AGAIN);
    assert_int_equal(dyad_apply(a, n1.p, n1.len, NOW + 5), 0);
    assert_int_equal(dyad_apply(a, n2.p, n2.len, NOW + 5), 0);
    /* an empty note is no note, made or received */
    assert_int_equal(make_note(a, P, "", NOW + 6, &w), PULL_ERR_FIELD);
    assert_int_equal(w.len, 0);
    fmsg_for(a, P, DYAD_DONE, NOW + 6, &f);
    f.kind = DYAD_NOTE;
    f.step = 0;
    f.note = "";
    wb_reset(&w);
    forge(&f, &w);
    assert_int_equal(dyad_apply(a, w.p, w.len, NOW + 6), PULL_ERR_FIELD);
    /* a third party's note */
    f.note = "hello from carol";
    f.signer = &carol;
    memcpy(f.author, carol.pk, 32);
    wb_reset(&w);
    forge(&f, &w);
    assert_int_equal(dyad_apply(a, w.p, w.len, NOW + 6), PULL_ERR_PERM);
    assert_int_equal(make_note(a, C, "me too", NOW + 6, &w), PULL_ERR_PERM);
    /* the dyad goes on and completes; notes still go after */
    act(a, P, DYAD_DONE, NOW + 10);
    act(a, P, DYAD_ACK, NOW + 11);
    act(a, R, DYAD_ACK, NOW + 12);
    assert_int_equal(dyad_state(a), DYAD_ST_COMPLETED);
    assert_int_equal(make_note(a, P, "thanks!", NOW + 13, &w), 0);
    assert_int_equal(dyad_apply(a, w.p, w.len, NOW + 13), 0);
    assert_int_equal(dyad_state(a), DYAD_ST_COMPLETED);
    /* the quota: DYAD_NOTES_MAX per side */
    for (unsigned i = dyad_notes(a, P); i < DYAD_NOTES_MAX; i++) {
        assert_int_equal(dyad_allowed(a, P, DYAD_NOTE), 0);
        assert_int_equal(make_note(a, P, "more", NOW + 20 + i, &w), 0);
        assert_int_equal(dyad_apply(a, w.p, w.len, NOW + 20 + i), 0);
    }
    assert_int_equal(dyad_allowed(a, P, DYAD_NOTE), PULL_ERR_QUOTA);
    assert_int_equal(make_note(a, P, "one too many", NOW + 60, &w), PULL_ERR_QUOTA);
    fmsg_for(a, P, DYAD_DONE, NOW + 60, &f);
    f.kind = DYAD_NOTE;
    f.step = DYAD_NOTES_MAX;
    f.note = "forged past the quota";
    wb_reset(&w);
    forge(&f, &w);
    assert_int_equal(dyad_apply(a, w.p, w.len, NOW + 60), PULL_ERR_QUOTA);
    assert_int_equal(dyad_allowed(a, R, DYAD_NOTE), 0);
    /* the conversation persists in order, and its kinds and authors read back */
    assert_int_equal(dyad_encode(a, &enc), 0);
    assert_true(enc.len <= DYAD_ENCODED_MAX);
    assert_int_equal(dyad_decode(NULL, enc.p, enc.len, &tdef, &e), 0);
    assert_int_equal(dyad_msg_count(e), dyad_msg_count(a));
    assert_int_equal(dyad_notes(e, P), DYAD_NOTES_MAX);
    assert_int_equal(dyad_notes(e, R), 4);
    assert_int_equal(dyad_msg_at(e, 1, &p, &n, &kind, &author), 0);
    assert_int_equal(kind, DYAD_NOTE);
    assert_int_equal(author, DYAD_RESPONDER);
    assert_int_equal(dyad_msg_decode(p, n, &m), 0);
    assert_memory_equal(m.note, "which wheel?", 12);
    assert_int_equal(dyad_state(e), DYAD_ST_COMPLETED);
    dyad_free(e);

    /* in an open state, a note after the deadline is refused like any message */
    dyad_free(b);
    b = new_dyad(NULL);
    assert_int_equal(make_note(b, R, "late", NOW + 8 * DAY, &w), PULL_ERR_EXPIRED);
    assert_int_equal(make_note(b, R, "in time", NOW + DAY, &w), 0);
    assert_int_equal(dyad_apply(b, w.p, w.len, NOW + 8 * DAY), PULL_ERR_EXPIRED);
    dyad_free(a);
    dyad_free(b);
    wb_release(&prop);
    wb_release(&n1);
    wb_release(&n2);
    wb_release(&acc);
    wb_release(&w);
    wb_release(&enc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transition_table),
        cmocka_unit_test(test_propose_replay),
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_replays),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_forged_accept),
        cmocka_unit_test(test_bad_sig_and_flips),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_persist_roundtrip),
        cmocka_unit_test(test_persist_hostile),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_clock_skew),
        cmocka_unit_test(test_decode_hostile),
        cmocka_unit_test(test_crossings),
        cmocka_unit_test(test_terms_vector),
        cmocka_unit_test(test_names_and_args),
        cmocka_unit_test(test_notes),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
