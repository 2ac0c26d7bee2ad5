/* Tests of daemon/people.c on a real node without sockets: record handles (an older
 * version's id resolves to the live one, a withdrawal keeps the handle), profiles (the
 * newest names the author, a withdrawal forgets it), the attestation check (the shape of a
 * dyad's attestation, about a known offer or need of one of its two sides; one about
 * someone else's record, or of another shape, counts for nothing; one about a record not
 * yet here waits for it), evidence counted once per dyad, removed when the attestation is
 * swept, and petnames and checked evidence that survive a restart. */
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
#include "daemon/node.h"
#include "daemon/people.h"
#include "lib/err.h"
#include "lib/log.h"
#include "proto/dyad.h"
#include "testutil.h"

struct fixture {
    char *dir;
    struct config cfg;
    uv_loop_t loop;
    struct node *n;
    struct people *p;
    struct ident me, x, y, z;
};

static void
start(struct fixture *f)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(node_new(&f->loop, &f->cfg, &f->me, &f->n), 0);
    assert_int_equal(people_start(f->n, &f->p), 0);
}

static void
stop(struct fixture *f)
{
    people_stop(f->p);
    node_stop(f->n);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    people_free(f->p);
    node_free(f->n);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    assert_true(sodium_init() >= 0);
    log_set_level(LOG_ERROR);
    f->dir = tu_tmpdir();
    config_defaults(&f->cfg);
    snprintf(f->cfg.data_dir, sizeof(f->cfg.data_dir), "%s", f->dir);
    f->cfg.lan = false;
    f->cfg.store_nosync = true;
    assert_int_equal(ident_generate(&f->me), 0);
    assert_int_equal(ident_generate(&f->x), 0);
    assert_int_equal(ident_generate(&f->y), 0);
    assert_int_equal(ident_generate(&f->z), 0);
    start(f);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    stop(f);
    tu_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Signs rec (author set from who) and stores it (one commit). */
static void
put(struct fixture *f, struct record *rec, const struct ident *who, uint8_t id[RECORD_ID_BYTES])
{
    struct pull_wb w;

    memcpy(rec->author, who->pk, 32);
    wb_init(&w, RECORD_ENVELOPE_MAX);
    assert_int_equal(record_sign(rec, who, &w, id), 0);
    assert_int_equal(node_submit(f->n, w.p, w.len, NODE_ORIGIN_PEER, f->z.pk, NULL, NULL, NULL), 0);
    assert_int_equal(node_flush(f->n), 0);
    assert_int_equal(node_flush(f->n), 0); /* what the observers queued */
    wb_release(&w);
}

static void
offer(struct record *r, uint8_t slot, uint64_t seq, const char *title)
{
    uint64_t now = (uint64_t)time(NULL);

    record_init(r);
    r->kind = RECORD_OFFER;
    memset(r->slot, slot, RECORD_SLOT_BYTES);
    r->seq = seq;
    r->created = now - 100 + seq;
    r->expires = now + 86400;
    snprintf(r->title, sizeof(r->title), "%s", title);
}

/* The attestation `author` makes of a dyad `dyad` with `peer` about link, cosigned. */
static void
attestation(struct record *r, const struct ident *author, const struct ident *peer,
            const uint8_t link[32], uint8_t dyad)
{
    uint64_t now = (uint64_t)time(NULL);

    record_init(r);
    r->kind = RECORD_ATTESTATION;
    memcpy(r->author, author->pk, 32);
    memset(r->slot, dyad, RECORD_SLOT_BYTES);
    r->seq = 1;
    r->created = now - 10;
    r->expires = r->created + DYAD_ATTEST_TTL;
    snprintf(r->title, sizeof(r->title), "%s", DYAD_ATTEST_TITLE);
    r->ntags = 1;
    snprintf(r->tags[0], sizeof(r->tags[0]), "%s", DYAD_ATTEST_TAG);
    r->has_link = true;
    memcpy(r->link, link, 32);
    r->has_peer = true;
    memcpy(r->peer, peer->pk, 32);
    assert_int_equal(record_cosign(NULL, r, peer), 0);
}

static struct ident_prefix
prefix_of(const uint8_t id[32], size_t chars)
{
    char t[IDENT_TEXT_LEN + 1];
    struct ident_prefix p;

    ident_to_text(id, t);
    t[chars] = '\0';
    assert_int_equal(ident_prefix_parse(t, &p), 0);
    return p;
}

static void
test_handles(void **state)
{
    struct fixture *f = *state;
    struct record r;
    struct people_rec pr;
    struct ident_prefix p;
    uint8_t v1[32], v2[32], v3[32], live[32], author[32], slot[RECORD_SLOT_BYTES];

    offer(&r, 7, 1, "Bike repair");
    put(f, &r, &f->x, v1);
    offer(&r, 7, 2, "Bike repair, renewed");
    put(f, &r, &f->x, v2);
    assert_false(node_has_record(f->n, v1)); /* the old version is gone from the store */
    p = prefix_of(v1, 10);
    assert_int_equal(people_record(f->p, &p, &pr), 0);
    assert_true(pr.superseded);
    assert_memory_equal(pr.asked, v1, 32);
    assert_memory_equal(pr.id, v2, 32);
    assert_int_equal(people_record_live(f->p, v1, live), 0);
    assert_memory_equal(live, v2, 32);
    assert_int_equal(people_handle(f->p, v1, author, slot), 0);
    assert_memory_equal(author, f->x.pk, 32);
    assert_int_equal(slot[0], 7);
    p = prefix_of(v2, 52);
    assert_int_equal(people_record(f->p, &p, &pr), 0);
    assert_false(pr.superseded);
    /* a withdrawal keeps the handle: both old ids name the tombstone */
    record_init(&r);
    r.kind = RECORD_WITHDRAWN;
    memset(r.slot, 7, RECORD_SLOT_BYTES);
    r.seq = 3;
    r.created = (uint64_t)time(NULL);
    r.expires = r.created + 86400;
    put(f, &r, &f->x, v3);
    assert_int_equal(people_record_live(f->p, v1, live), 0);
    assert_memory_equal(live, v3, 32);
    assert_int_equal(people_record_live(f->p, v2, live), 0);
    assert_memory_equal(live, v3, 32);
    /* an id nobody held */
    memset(live, 0x42, 32);
    p = prefix_of(live, 12);
    assert_int_equal(people_record(f->p, &p, &pr), PULL_ERR_NOT_FOUND);
}

static void
test_profiles(void **state)
{
    struct fixture *f = *state;
    struct record r;
    uint8_t id[32], got[32];

    offer(&r, 1, 1, "Xavier");
    r.kind = RECORD_PROFILE;
    put(f, &r, &f->x, id);
    assert_string_equal(names_name(people_names(f->p), f->x.pk), "Xavier");
    assert_int_equal(people_profile(f->p, f->x.pk, got), 0);
    assert_memory_equal(got, id, 32);
    /* a profile with a bidi override names nobody (if the record rules let it be signed at
     * all: text rule 2 refuses it where it applies) */
    offer(&r, 2, 1,
          "Yv\xe2\x80\xae"
          "onne");
    r.kind = RECORD_PROFILE;
    memcpy(r.author, f->y.pk, 32);
    {
        struct pull_wb w;
        wb_init(&w, RECORD_ENVELOPE_MAX);
        if (record_sign(&r, &f->y, &w, id) == 0 &&
            node_submit(f->n, w.p, w.len, NODE_ORIGIN_PEER, f->z.pk, NULL, NULL, NULL) == 0) {
            assert_int_equal(node_flush(f->n), 0);
            assert_int_equal(node_flush(f->n), 0);
        }
        wb_release(&w);
    }
    assert_null(names_name(people_names(f->p), f->y.pk));
    /* withdrawn: forgotten */
    record_init(&r);
    r.kind = RECORD_WITHDRAWN;
    memset(r.slot, 1, RECORD_SLOT_BYTES);
    r.seq = 2;
    r.created = (uint64_t)time(NULL);
    r.expires = r.created + 86400;
    put(f, &r, &f->x, id);
    assert_null(names_name(people_names(f->p), f->x.pk));
    assert_int_equal(people_profile(f->p, f->x.pk, got), PULL_ERR_NOT_FOUND);
}

static void
test_attestations(void **state)
{
    struct fixture *f = *state;
    struct record r, rec;
    struct people_stats st;
    uint8_t xoffer[32], zoffer[32], later[32], a1[32], id[32];
    uint32_t done, peers;

    offer(&r, 3, 1, "X's offer");
    put(f, &r, &f->x, xoffer);
    offer(&r, 4, 1, "Z's offer");
    put(f, &r, &f->z, zoffer);

    /* x and y about x's offer: counts, from either side, as one dyad */
    attestation(&rec, &f->x, &f->y, xoffer, 0xa1);
    put(f, &rec, &f->x, a1);
    assert_int_equal(trust_dyads(people_trust(f->p), f->x.pk, f->y.pk), 1);
    attestation(&rec, &f->y, &f->x, xoffer, 0xa1);
    put(f, &rec, &f->y, id);
    assert_int_equal(trust_dyads(people_trust(f->p), f->x.pk, f->y.pk), 1);
    people_dyads_of(f->p, f->x.pk, &done, &peers, NULL, NULL);
    assert_int_equal(done, 1);
    assert_int_equal(peers, 1);
    /* about z's offer: neither side's record, counts for nothing */
    attestation(&rec, &f->x, &f->y, zoffer, 0xa2);
    assert_int_equal(people_attest_check(f->p, &rec), PULL_ERR_ATTEST);
    put(f, &rec, &f->x, id);
    assert_int_equal(trust_dyads(people_trust(f->p), f->x.pk, f->y.pk), 1);
    /* another shape than a dyad's attestation */
    attestation(&rec, &f->x, &f->y, xoffer, 0xa3);
    snprintf(rec.title, sizeof(rec.title), "we are friends");
    assert_int_equal(record_cosign(NULL, &rec, &f->y), 0);
    assert_int_equal(people_attest_check(f->p, &rec), PULL_ERR_ATTEST);
    put(f, &rec, &f->x, id);
    assert_int_equal(trust_dyads(people_trust(f->p), f->x.pk, f->y.pk), 1);
    /* about a record not here yet: it waits, and counts when the record comes */
    offer(&r, 5, 1, "Y's offer, sent late");
    memcpy(r.author, f->y.pk, 32);
    {
        struct pull_wb w;
        wb_init(&w, RECORD_ENVELOPE_MAX);
        assert_int_equal(record_sign(&r, &f->y, &w, later), 0);
        wb_release(&w);
    }
    attestation(&rec, &f->y, &f->x, later, 0xa4);
    assert_int_equal(people_attest_check(f->p, &rec), PULL_ERR_NOT_FOUND);
    put(f, &rec, &f->y, id);
    people_get_stats(f->p, &st);
    assert_int_equal(st.pending, 1);
    assert_int_equal(trust_dyads(people_trust(f->p), f->x.pk, f->y.pk), 1);
    put(f, &r, &f->y, later);
    people_get_stats(f->p, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(trust_dyads(people_trust(f->p), f->x.pk, f->y.pk), 2);
    assert_true(st.attest_bad >= 2);
    /* nobody I reach dealt with x or y: no distance */
    assert_int_equal(trust_distance(people_trust(f->p), f->x.pk), TRUST_NONE);
    /* one of my dyads with x: x is 1 hop away, y 2 */
    memset(id, 0xdd, 32);
    people_dyad_completed(f->p, id, f->x.pk);
    assert_int_equal(trust_distance(people_trust(f->p), f->x.pk), 1);
    assert_int_equal(trust_distance(people_trust(f->p), f->y.pk), 2);
    assert_true(people_ranking(f->p));
    assert_true(people_rank(f->p, be64dec(f->x.pk)) > people_rank(f->p, be64dec(f->z.pk)));
    {
        struct people_within w1 = {f->p, 1};
        assert_true(people_within(&w1, be64dec(f->x.pk)));
        assert_false(people_within(&w1, be64dec(f->y.pk)));
    }
}

static void
test_restart(void **state)
{
    struct fixture *f = *state;
    struct record r, rec;
    uint8_t xoffer[32], a1[32], got[32];
    char msg[256];

    assert_int_equal(people_set_petname(f->p, f->x.pk, "Xav", msg, sizeof(msg)), 0);
    assert_int_equal(people_set_petname(f->p, f->y.pk, "XAV", msg, sizeof(msg)), PULL_ERR_EXISTS);
    assert_int_equal(people_set_petname(f->p, f->y.pk, "Y\xe2\x80\x8b", msg, sizeof(msg)),
                     PULL_ERR_CONTROL);
    assert_int_equal(people_set_petname(f->p, f->z.pk, NULL, msg, sizeof(msg)), PULL_ERR_NOT_FOUND);
    offer(&r, 3, 1, "X's offer");
    put(f, &r, &f->x, xoffer);
    attestation(&rec, &f->x, &f->y, xoffer, 0xb1);
    put(f, &rec, &f->x, a1);
    assert_int_equal(node_flush(f->n), 0);
    stop(f);
    start(f);
    assert_string_equal(names_petname(people_names(f->p), f->x.pk), "Xav");
    assert_int_equal(people_find(f->p, "xav", got, msg, sizeof(msg)), 0);
    assert_memory_equal(got, f->x.pk, 32);
    assert_int_equal(trust_dyads(people_trust(f->p), f->x.pk, f->y.pk), 1);
    assert_true(trust_has(people_trust(f->p), a1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_profiles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attestations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
