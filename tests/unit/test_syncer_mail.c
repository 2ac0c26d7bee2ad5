/* Tests of the engine's mail against strangers (proto/syncer_mail.c): throwaway keys can't
 * fill a node's inbox and keep a new person's proposal out, and mail for a key nobody knows
 * is kept in a small pool and never announced onward (one injection must not fill every
 * node's relay store). One engine, driven by hand: its peers are keys the test speaks for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/env.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "proto/mail.h"
#include "proto/msg.h"
#include "proto/syncer.h"

#define NOW_S 1800000000ull

static struct env_seeded env;
static struct ident victim, peer, watcher, known_far;
static uint8_t known_keys[4][32];
static int nknown;

static enum gossip_verdict
h_offer(void *ctx, const uint8_t *e, size_t len, const uint8_t id[32], const uint8_t from[32])
{
    (void)ctx, (void)e, (void)len, (void)id, (void)from;
    return GOSSIP_DUPLICATE;
}

static bool
h_has(void *ctx, const uint8_t id[32])
{
    (void)ctx, (void)id;
    return false;
}

static int
h_fetch(void *ctx, const uint8_t id[32], uint8_t *buf, size_t cap, size_t *len)
{
    (void)ctx, (void)id, (void)buf, (void)cap;
    *len = 0;
    return PULL_ERR_NOT_FOUND;
}

static int
h_each_id(void *ctx, recon_visit_fn visit, void *vctx)
{
    (void)ctx, (void)visit, (void)vctx;
    return 0;
}

static int
h_each_key(void *ctx, uint64_t since, int (*visit)(void *, uint64_t, const uint8_t *), void *vctx)
{
    (void)ctx, (void)since, (void)visit, (void)vctx;
    return 0;
}

/* The host knows the keys in known_keys (an author of records it holds, a dyad's person). */
static bool
h_known(void *ctx, const uint8_t key[32])
{
    (void)ctx;
    for (int i = 0; i < nknown; i++)
        if (memcmp(known_keys[i], key, 32) == 0)
            return true;
    return false;
}

/* What the engine did, after a call. */
struct seen {
    int mail;          /* MAIL actions (items for the victim) */
    int ihave_watcher; /* MAIL_IHAVE sent to the watcher */
    int puts;
};

static void
drain(struct syncer *e, struct seen *s)
{
    struct syncer_action a;

    while (syncer_poll_action(e, &a)) {
        uint32_t type = 0;
        if (a.type == SYNCER_ACT_MAIL)
            s->mail++;
        if (a.type == SYNCER_ACT_PUT)
            s->puts++;
        if (a.type == SYNCER_ACT_SEND && msg_peek_type(a.data, a.len, &type) == 0 &&
            type == MSG_MAIL_IHAVE && memcmp(a.peer, watcher.pk, 32) == 0)
            s->ihave_watcher++;
        syncer_action_release(&a);
    }
}

static struct syncer *
make_engine(void)
{
    struct syncer_config cfg;
    struct syncer_host host = {.offer = h_offer,
                               .has = h_has,
                               .fetch = h_fetch,
                               .each_id = h_each_id,
                               .each_key = h_each_key,
                               .known = h_known};
    struct syncer *e = NULL;
    struct seen s = {0};

    syncer_config_default(&cfg);
    cfg.relay.total_items = 4096; /* pulld's default mail_max_items */
    assert_int_equal(syncer_new(&env.env, victim.pk, "10.0.0.1:7450", &cfg, &host, &e), 0);
    syncer_start(e, 0);
    syncer_on_connected(e, peer.pk, true, "10.0.0.2:7450", MSG_FEAT_RECON | MSG_FEAT_MAIL, 0);
    syncer_on_connected(e, watcher.pk, true, "10.0.0.3:7450", MSG_FEAT_RECON | MSG_FEAT_MAIL, 0);
    drain(e, &s);
    return e;
}

/* deliver sends `count` items sealed by `senders` (round robin) to rcpt through the peer,
 * in MSG_MAIL messages of up to 100 items. */
static void
deliver(struct syncer *e, struct ident *senders, int nsenders, const uint8_t rcpt[32], int count,
        struct seen *s)
{
    static uint8_t items[100][MAIL_ITEM_MAX];
    struct mail_ref refs[100];
    int k = 0;

    for (int i = 0; i < count; i++) {
        struct pull_wb w;
        uint8_t plain[64];
        snprintf((char *)plain, sizeof(plain), "garbage %d", i);
        wb_init(&w, MAIL_ITEM_MAX);
        assert_int_equal(mail_seal(&env.env, &senders[i % nsenders], rcpt, plain, sizeof(plain),
                                   NOW_S + 86400, &w, NULL),
                         0);
        memcpy(items[k], w.p, w.len);
        refs[k] = (struct mail_ref){items[k], w.len};
        k++;
        wb_release(&w);
        if (k == 100 || i == count - 1) {
            struct pull_wb msg;
            wb_init(&msg, MSG_MAX);
            assert_int_equal(mail_msg_encode(refs, (size_t)k, &msg), 0);
            (void)syncer_on_message(e, peer.pk, msg.p, msg.len, 1000);
            wb_release(&msg);
            drain(e, s);
            k = 0;
        }
    }
}

static struct ident throwaway[200];

static int
setup(void **state)
{
    uint8_t seed[32];

    (void)state;
    assert_true(sodium_init() >= 0);
    env_seeded_init(&env, 7, 0, NOW_S);
    memset(seed, 1, 32);
    assert_int_equal(ident_from_seed(&victim, seed), 0);
    memset(seed, 2, 32);
    assert_int_equal(ident_from_seed(&peer, seed), 0);
    memset(seed, 3, 32);
    assert_int_equal(ident_from_seed(&watcher, seed), 0);
    memset(seed, 4, 32);
    assert_int_equal(ident_from_seed(&known_far, seed), 0);
    for (int i = 0; i < 200; i++) {
        memset(seed, 0x40, 32);
        seed[0] = (uint8_t)i;
        seed[1] = (uint8_t)(i >> 8);
        assert_int_equal(ident_from_seed(&throwaway[i], seed), 0);
    }
    nknown = 0;
    memcpy(known_keys[nknown++], known_far.pk, 32);
    return 0;
}

/* 4,096 items from 16 throwaway keys, then a new person's first message: it gets in. */
static void
test_inbox_strangers(void **state)
{
    struct syncer *e = make_engine();
    struct syncer_stats st;
    struct seen s = {0};
    struct ident newcomer;
    uint8_t seed[32];

    (void)state;
    deliver(e, throwaway, 16, victim.pk, 4096, &s);
    syncer_get_stats(e, &st);
    printf("inbox: 4096 items from 16 throwaway keys: %d handed over, %llu held, %llu refused\n",
           s.mail, (unsigned long long)st.mail_held, (unsigned long long)st.mail_refused);
    assert_true(st.mail_held <= SYNCER_STRANGERS_MAX);
    memset(seed, 0x77, 32);
    assert_int_equal(ident_from_seed(&newcomer, seed), 0);
    memset(&s, 0, sizeof(s));
    deliver(e, &newcomer, 1, victim.pk, 1, &s);
    assert_int_equal(s.mail, 1); /* the newest pushes out the oldest */
    /* many more throwaway keys fill the strangers' pool: a newcomer still gets in */
    deliver(e, throwaway + 16, 184, victim.pk, 184 * SYNCER_STRANGER_ITEMS, &s);
    syncer_get_stats(e, &st);
    assert_true(st.mail_held <= SYNCER_STRANGERS_MAX + 1);
    memset(&s, 0, sizeof(s));
    memset(seed, 0x78, 32);
    assert_int_equal(ident_from_seed(&newcomer, seed), 0);
    deliver(e, &newcomer, 1, victim.pk, 1, &s);
    assert_int_equal(s.mail, 1);
    /* a person the host knows has the inbox proper */
    memset(&s, 0, sizeof(s));
    deliver(e, &known_far, 1, victim.pk, 3, &s);
    assert_int_equal(s.mail, 3);
    syncer_free(e);
}

/* 4,096 items for a key nobody knows: a small pool, never announced onward; mail for a key
 * the host knows is carried and announced as before. */
static void
test_relay_unknown(void **state)
{
    struct syncer *e = make_engine();
    struct syncer_stats st;
    struct seen s = {0};
    uint8_t nobody[32];
    struct ident nb;

    (void)state;
    memset(nobody, 0x99, 32);
    assert_int_equal(ident_from_seed(&nb, nobody), 0);
    deliver(e, throwaway, 16, nb.pk, 4096, &s);
    syncer_get_stats(e, &st);
    printf("relay: 4096 items for an unknown key: %llu held, %d announced onward\n",
           (unsigned long long)st.mail_held, s.ihave_watcher);
    assert_true(st.mail_held <= SYNCER_STRANGERS_MAX);
    assert_int_equal(s.ihave_watcher, 0);
    memset(&s, 0, sizeof(s));
    deliver(e, throwaway, 1, known_far.pk, 1, &s);
    assert_int_equal(s.ihave_watcher, 1);
    syncer_free(e);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_inbox_strangers, setup),
        cmocka_unit_test_setup(test_relay_unknown, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
