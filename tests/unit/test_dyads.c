/* Tests of the daemon's dyad service, what it keeps (daemon/dyads.h "Bounds",
 * daemon/dyads_keep.c): strangers' proposals capped per proposer and in total (counted,
 * refused before anything is stored), closed dyads deleted from memory and from the store
 * after their retention (a completed one kept while its attestation lives), the closed
 * proposals of one proposer bounded when it proposes and cancels again and again, a
 * restart that loads only what the caps allow, and the index by id and by counterpart kept
 * right through all of it. A real node on a temporary data dir with a manual clock;
 * proposals are delivered as opened mail (dyads_deliver), the way the service gets them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/config.h"
#include "daemon/dyads_int.h"
#include "daemon/node.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/store.h"
#include "testutil.h"

#define PER_PROPOSER 3
#define MAX_OPEN 10
#define RETENTION 100

struct fixture {
    char *dir;
    uv_loop_t loop;
    struct node *n;
    struct dyads *ds;
    struct ident me;
    struct env_seeded clock;
    uint8_t offer[RECORD_ID_BYTES];
    struct dyad_timeouts t;
};

/* A proposer's side of a dyad it proposed to the fixture's node. */
struct theirs {
    struct ident who;
    struct dyad *d;
    uint8_t id[DYAD_ID_BYTES];
};

static uint64_t
now_s(struct fixture *f)
{
    return f->clock.wall_s;
}

static void
start_service(struct fixture *f)
{
    assert_int_equal(dyads_start(f->n, NULL, &f->ds), 0);
}

static void
stop_service(struct fixture *f)
{
    dyads_stop(f->ds);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(node_flush(f->n), 0); /* as pulld's stop: the writes are in the store */
    dyads_free(f->ds);
    f->ds = NULL;
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct config c;
    struct record r;
    struct pull_wb w;

    assert_non_null(f);
    assert_true(sodium_init() >= 0);
    log_set_level(LOG_ERROR);
    f->dir = tu_tmpdir();
    config_defaults(&c);
    snprintf(c.data_dir, sizeof(c.data_dir), "%s", f->dir);
    snprintf(c.listen, sizeof(c.listen), "127.0.0.1:0");
    c.lan = false;
    c.store_nosync = true;
    c.limits.max_dyads_per_proposer = PER_PROPOSER;
    c.limits.max_dyads_open = MAX_OPEN;
    c.limits.dyad_retention_s = RETENTION;
    assert_int_equal(ident_generate(&f->me), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(node_new(&f->loop, &c, &f->me, &f->n), 0);
    env_seeded_init(&f->clock, 7, 1000, (uint64_t)time(NULL));
    f->n->env = &f->clock.env; /* a clock the tests move */
    dyad_timeouts_default(&f->t);
    /* my offer, which strangers propose on */
    record_init(&r);
    r.kind = RECORD_OFFER;
    memcpy(r.author, f->me.pk, 32);
    memset(r.slot, 1, RECORD_SLOT_BYTES);
    r.seq = 1;
    r.created = now_s(f) - 60;
    r.expires = now_s(f) + 60 * 86400;
    snprintf(r.title, sizeof(r.title), "Bike repair");
    wb_init(&w, RECORD_ENVELOPE_MAX);
    assert_int_equal(record_sign(&r, &f->me, &w, f->offer), 0);
    assert_int_equal(node_submit(f->n, w.p, w.len, NODE_ORIGIN_LOCAL, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(node_flush(f->n), 0);
    wb_release(&w);
    start_service(f);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    stop_service(f);
    node_stop(f->n);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    node_free(f->n);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    tu_rmrf(f->dir);
    free(f->dir);
    ident_wipe(&f->me);
    free(f);
    return 0;
}

/* check_index: every dyad is found at its place and in its counterpart's list, the lists
 * hold nothing else, and the open count is right. */
static void
check_index(struct fixture *f)
{
    struct dyads *ds = f->ds;
    size_t open = 0, listed = 0, pos;

    for (size_t i = 0; i < ds->len; i++) {
        const struct dyad *d = ds->v[i];
        const struct dyads_by *b = dyads_by_peer(ds, dyad_peer(d, dyads_my_role(ds, d)));
        bool in_list = false;
        assert_ptr_equal(dyads_find(ds, dyad_id(d), &pos), d);
        assert_int_equal(pos, i);
        open += dyad_is_open(d);
        assert_non_null(b);
        for (uint32_t k = 0; k < b->n; k++)
            in_list = in_list || b->v[k] == d;
        assert_true(in_list);
    }
    for (size_t i = 0; i < ds->peers_cap; i++)
        listed += ds->peers[i].v != NULL ? ds->peers[i].n : 0;
    assert_int_equal(listed, ds->len);
    assert_int_equal(ds->nopen, open);
}

/* stored: is dyad id in the store (after the batch committed)? */
static bool
stored(struct fixture *f, const uint8_t id[static DYAD_ID_BYTES])
{
    struct pull_wb w;
    int rc;

    assert_int_equal(node_flush(f->n), 0);
    wb_init(&w, STORE_KV_MAX);
    rc = node_kv_get(f->n, STORE_DYADS, id, &w);
    wb_release(&w);
    return rc == 0;
}

/* propose: p (a new stranger unless p->d is NULL and p->who set by the caller with
 * fresh = false) proposes on my offer; the message is delivered to the service. */
static void
propose(struct fixture *f, struct theirs *p, bool fresh, int k)
{
    struct pull_wb msg;
    char note[48];

    if (fresh)
        assert_int_equal(ident_generate(&p->who), 0);
    snprintf(note, sizeof(note), "proposal %d", k);
    wb_init(&msg, DYAD_MSG_MAX);
    assert_int_equal(dyad_propose(NULL, &p->who, f->offer, f->me.pk, note, strlen(note), now_s(f),
                                  &f->t, &p->d, &msg),
                     0);
    assert_int_equal(dyad_msg_id(msg.p, msg.len, p->id), 0);
    dyads_deliver(f->ds, msg.p, msg.len, false);
    wb_release(&msg);
}

/* act: the proposer's side sends kind (CANCEL) and the service gets it. */
static void
act(struct fixture *f, struct theirs *p, enum dyad_kind kind)
{
    struct pull_wb msg;

    wb_init(&msg, DYAD_MSG_MAX);
    assert_int_equal(dyad_act(p->d, &p->who, kind, "", 0, true, now_s(f), &msg), 0);
    dyads_deliver(f->ds, msg.p, msg.len, false);
    wb_release(&msg);
}

static void
theirs_free(struct theirs *p, size_t n, bool idents)
{
    for (size_t i = 0; i < n; i++) {
        dyad_free(p[i].d);
        p[i].d = NULL;
        if (idents)
            ident_wipe(&p[i].who);
    }
}

static void
test_cap_per_proposer(void **state)
{
    struct fixture *f = *state;
    struct theirs a[6], b;

    for (int k = 0; k < 6; k++) {
        if (k > 0)
            a[k].who = a[0].who;
        propose(f, &a[k], k == 0, k);
    }
    assert_int_equal(f->ds->len, PER_PROPOSER);
    assert_int_equal(f->ds->nopen, PER_PROPOSER);
    assert_int_equal(f->ds->st.prop_capped, 6 - PER_PROPOSER);
    assert_int_equal(f->ds->st.msgs_refused, 6 - PER_PROPOSER);
    for (int k = 0; k < 6; k++) {
        assert_true((dyads_find(f->ds, a[k].id, NULL) != NULL) == (k < PER_PROPOSER));
        assert_true(stored(f, a[k].id) == (k < PER_PROPOSER));
    }
    /* another key is not held back by the first one's share */
    propose(f, &b, true, 0);
    assert_non_null(dyads_find(f->ds, b.id, NULL));
    check_index(f);
    theirs_free(a, 6, false);
    theirs_free(&b, 1, true);
    ident_wipe(&a[0].who);
}

/* The proposals I accepted are mine: they don't count against their proposer's share. */
static void
test_accepted_not_capped(void **state)
{
    struct fixture *f = *state;
    struct theirs a[PER_PROPOSER + 2];
    struct pull_wb out;
    struct dyad *d;

    for (int k = 0; k < PER_PROPOSER; k++) {
        if (k > 0)
            a[k].who = a[0].who;
        propose(f, &a[k], k == 0, k);
    }
    a[PER_PROPOSER].who = a[0].who;
    propose(f, &a[PER_PROPOSER], false, PER_PROPOSER);
    assert_null(dyads_find(f->ds, a[PER_PROPOSER].id, NULL)); /* capped */
    /* I accept the first one */
    d = dyads_find(f->ds, a[0].id, NULL);
    assert_non_null(d);
    wb_init(&out, DYAD_MSG_MAX);
    assert_int_equal(dyad_act(d, &f->me, DYAD_ACCEPT, "", 0, true, now_s(f), &out), 0);
    assert_int_equal(dyads_persist(f->ds, d), 0);
    dyads_changed(f->ds, d, DYAD_ST_PROPOSED, "accepted by the test");
    wb_release(&out);
    assert_false(dyads_unanswered(f->ds, d));
    a[PER_PROPOSER + 1].who = a[0].who;
    propose(f, &a[PER_PROPOSER + 1], false, PER_PROPOSER + 1);
    assert_non_null(dyads_find(f->ds, a[PER_PROPOSER + 1].id, NULL));
    assert_int_equal(f->ds->nopen, PER_PROPOSER + 1);
    check_index(f);
    theirs_free(a, PER_PROPOSER + 2, false);
    ident_wipe(&a[0].who);
}

static void
test_cap_total(void **state)
{
    struct fixture *f = *state;
    struct theirs p[MAX_OPEN + 4];
    struct dyads_stats st;

    for (int k = 0; k < MAX_OPEN + 4; k++)
        propose(f, &p[k], true, k);
    assert_int_equal(f->ds->nopen, MAX_OPEN);
    assert_int_equal(f->ds->len, MAX_OPEN);
    dyads_get_stats(f->ds, &st);
    assert_int_equal(st.open, MAX_OPEN);
    assert_int_equal(st.prop_capped, 4);
    check_index(f);
    /* a restart keeps them all, and the caps */
    stop_service(f);
    start_service(f);
    assert_int_equal(f->ds->nopen, MAX_OPEN);
    check_index(f);
    theirs_free(p, MAX_OPEN + 4, true);
}

static void
test_gc_retention(void **state)
{
    struct fixture *f = *state;
    struct theirs p[3];

    for (int k = 0; k < 3; k++)
        propose(f, &p[k], true, k);
    act(f, &p[0], DYAD_CANCEL); /* closed now */
    assert_int_equal(f->ds->nopen, 2);
    dyads_tick_at(f->ds, now_s(f)); /* start-up work, nothing due */
    assert_int_equal(f->ds->len, 3);
    f->clock.wall_s += RETENTION + 1;
    dyads_tick_at(f->ds, now_s(f));
    assert_int_equal(f->ds->len, 2);
    assert_null(dyads_find(f->ds, p[0].id, NULL));
    assert_false(stored(f, p[0].id));
    assert_true(stored(f, p[1].id));
    assert_int_equal(f->ds->st.gc_deleted, 1);
    /* the open ones expire with their proposal (7 days), and go RETENTION later */
    f->clock.wall_s += f->t.propose_s;
    dyads_tick_at(f->ds, now_s(f));
    assert_int_equal(f->ds->len, 2);
    assert_int_equal(f->ds->nopen, 0);
    assert_int_equal(dyad_state(f->ds->v[0]), DYAD_ST_EXPIRED);
    f->clock.wall_s += RETENTION;
    dyads_tick_at(f->ds, now_s(f));
    assert_int_equal(f->ds->len, 0);
    assert_false(stored(f, p[1].id));
    assert_false(stored(f, p[2].id));
    check_index(f);
    theirs_free(p, 3, true);
}

static void
test_gc_due(void **state)
{
    struct fixture *f = *state;
    struct theirs p;

    propose(f, &p, true, 0);
    /* open: never due */
    assert_int_equal(dyads_gc_due(f->ds->v[0], RETENTION), 0);
    act(f, &p, DYAD_CANCEL);
    assert_int_equal(dyads_gc_due(f->ds->v[0], RETENTION), dyad_updated(f->ds->v[0]) + RETENTION);
    assert_int_equal(dyads_gc_due(f->ds->v[0], 0), dyad_updated(f->ds->v[0]));
    assert_true(dyads_unanswered(f->ds, f->ds->v[0]));
    theirs_free(&p, 1, true);
}

static void
test_gc_at_start(void **state)
{
    struct fixture *f = *state;
    struct theirs p[2];

    propose(f, &p[0], true, 0);
    propose(f, &p[1], true, 1);
    act(f, &p[0], DYAD_CANCEL);
    assert_int_equal(node_flush(f->n), 0);
    stop_service(f);
    f->clock.wall_s += RETENTION + 1;
    start_service(f); /* the cancelled one is not even loaded */
    assert_int_equal(f->ds->len, 1);
    assert_int_equal(f->ds->st.gc_deleted, 1);
    assert_false(stored(f, p[0].id));
    assert_true(stored(f, p[1].id));
    check_index(f);
    theirs_free(p, 2, true);
}

/* Proposing and cancelling cost a stranger nothing: its closed proposals are bounded too. */
static void
test_churn(void **state)
{
    struct fixture *f = *state;
    struct theirs a[PER_PROPOSER * 6];
    const struct dyads_by *b;

    for (int k = 0; k < PER_PROPOSER * 6; k++) {
        if (k > 0)
            a[k].who = a[0].who;
        propose(f, &a[k], k == 0, k);
        assert_non_null(dyads_find(f->ds, a[k].id, NULL));
        act(f, &a[k], DYAD_CANCEL);
        b = dyads_by_peer(f->ds, a[0].who.pk);
        assert_non_null(b);
        assert_true(b->n <= PER_PROPOSER + 1);
        check_index(f);
    }
    assert_int_equal(f->ds->nopen, 0);
    assert_int_equal(f->ds->st.prop_capped, 0);
    assert_true(f->ds->len <= PER_PROPOSER + 1);
    assert_false(stored(f, a[0].id)); /* the oldest went */
    assert_true(stored(f, a[PER_PROPOSER * 6 - 1].id));
    /* many strangers doing the same: all their closed proposals together stay within
     * max_dyads_open after a tick */
    for (int k = 0; k < MAX_OPEN * 2; k++) {
        struct theirs o;
        propose(f, &o, true, k);
        act(f, &o, DYAD_CANCEL);
        theirs_free(&o, 1, true);
    }
    assert_true(f->ds->len > MAX_OPEN);
    dyads_tick_at(f->ds, now_s(f));
    assert_int_equal(f->ds->len, MAX_OPEN);
    check_index(f);
    theirs_free(a, PER_PROPOSER * 6, false);
    ident_wipe(&a[0].who);
}

/* A store holding more open proposals than the caps allow (from before them, or the limits
 * were lowered) is brought under them at start: each proposer keeps its oldest. */
static void
test_caps_at_start(void **state)
{
    struct fixture *f = *state;
    struct theirs a[8], o[4];

    f->n->cfg.limits.max_dyads_per_proposer = 100;
    f->n->cfg.limits.max_dyads_open = 100;
    for (int k = 0; k < 8; k++) {
        if (k > 0)
            a[k].who = a[0].who;
        propose(f, &a[k], k == 0, k);
        f->clock.wall_s++; /* each a second younger than the one before */
    }
    for (int k = 0; k < 4; k++)
        propose(f, &o[k], true, k);
    assert_int_equal(f->ds->nopen, 12);
    assert_int_equal(node_flush(f->n), 0);
    stop_service(f);
    f->n->cfg.limits.max_dyads_per_proposer = PER_PROPOSER;
    f->n->cfg.limits.max_dyads_open = MAX_OPEN;
    start_service(f);
    assert_int_equal(f->ds->nopen, PER_PROPOSER + 4);
    for (int k = 0; k < 8; k++) {
        assert_true((dyads_find(f->ds, a[k].id, NULL) != NULL) == (k < PER_PROPOSER));
        assert_true(stored(f, a[k].id) == (k < PER_PROPOSER));
    }
    check_index(f);
    /* and the total cap: the later ones go */
    stop_service(f);
    f->n->cfg.limits.max_dyads_open = 5;
    start_service(f);
    assert_int_equal(f->ds->nopen, 5);
    check_index(f);
    theirs_free(a, 8, false);
    ident_wipe(&a[0].who);
    theirs_free(o, 4, true);
}

/* Many dyads in and out: the index finds each one where it is, and none of the gone. */
static void
test_index(void **state)
{
    struct fixture *f = *state;
    enum { N = 600 };
    struct theirs *p = calloc(N, sizeof(*p));

    assert_non_null(p);
    f->n->cfg.limits.max_dyads_open = N;
    f->n->cfg.limits.max_dyads_per_proposer = 2;
    for (int k = 0; k < N; k++) {
        if (k % 2 == 1)
            p[k].who = p[k - 1].who; /* two proposals per key */
        propose(f, &p[k], k % 2 == 0, k);
    }
    assert_int_equal(f->ds->len, N);
    check_index(f);
    for (int k = 0; k < N; k += 3)
        act(f, &p[k], DYAD_CANCEL);
    f->clock.wall_s += RETENTION + 1;
    dyads_tick_at(f->ds, now_s(f));
    check_index(f);
    for (int k = 0; k < N; k++)
        assert_true((dyads_find(f->ds, p[k].id, NULL) != NULL) == (k % 3 != 0));
    assert_int_equal(f->ds->len, N - (N + 2) / 3);
    /* a proposer whose one proposal went may propose again (its share has room) */
    dyad_free(p[0].d);
    p[0].d = NULL;
    propose(f, &p[0], false, N);
    assert_non_null(dyads_find(f->ds, p[0].id, NULL));
    check_index(f);
    for (int k = 0; k < N; k++) {
        dyad_free(p[k].d);
        if (k % 2 == 0)
            ident_wipe(&p[k].who);
    }
    free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cap_per_proposer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accepted_not_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_total, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_due, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gc_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_churn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps_at_start, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
