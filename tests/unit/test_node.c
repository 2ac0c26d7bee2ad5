/* Tests of node.c, the ground floor (daemon/node.h): node_submit's checks against the store
 * and the pending batch (duplicate, stale, quota, invalid), pending records visible to
 * node_has_record and node_fetch_record, one commit per flush with the callbacks after it,
 * replacement inside one batch, key-value writes and after-commit callbacks in the same
 * commit, observers, and the counters. A real node on a temporary data dir; the network
 * test puts sync (listening on 127.0.0.1:0) on top of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/node.h"
#include "daemon/node_int.h"
#include "daemon/sync.h"
#include "lib/err.h"
#include "lib/log.h"
#include "testutil.h"

struct fixture {
    char *dir;
    uv_loop_t loop;
    struct node *n;
    struct sync *sync; /* the network part, when a test starts one */
    struct ident me;
};

struct result {
    int calls;
    int rc;
    uint8_t id[RECORD_ID_BYTES];
};

static void
on_commit(void *arg, int result, const uint8_t id[RECORD_ID_BYTES])
{
    struct result *r = arg;

    r->calls++;
    r->rc = result;
    memcpy(r->id, id, RECORD_ID_BYTES);
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct config c;

    assert_non_null(f);
    assert_true(sodium_init() >= 0);
    signal(SIGPIPE, SIG_IGN); /* as pulld: a peer that closed is an error code, not a signal */
    log_set_level(LOG_ERROR);
    f->dir = tu_tmpdir();
    config_defaults(&c);
    snprintf(c.data_dir, sizeof(c.data_dir), "%s", f->dir);
    snprintf(c.listen, sizeof(c.listen), "127.0.0.1:0");
    c.lan = false;
    c.store_nosync = true;
    c.limits.max_per_author = 3;
    assert_int_equal(ident_generate(&f->me), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(node_new(&f->loop, &c, &f->me, &f->n), 0);
    assert_int_equal(node_listen_port(f->n), 0); /* no network part yet */
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    sync_stop(f->sync);
    node_stop(f->n);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    sync_free(f->sync);
    node_free(f->n);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    tu_rmrf(f->dir);
    free(f->dir);
    ident_wipe(&f->me);
    free(f);
    return 0;
}

/* make signs a record of author into w (initialized here). */
static void
make(const struct ident *author, uint8_t slot_byte, uint64_t seq, uint8_t kind, const char *title,
     struct pull_wb *w, uint8_t id[RECORD_ID_BYTES])
{
    struct record r;
    uint64_t now = (uint64_t)time(NULL);

    record_init(&r);
    r.kind = kind;
    memcpy(r.author, author->pk, 32);
    memset(r.slot, slot_byte, RECORD_SLOT_BYTES);
    r.seq = seq;
    r.created = now - 60;
    r.expires = now + 86400;
    if (kind != RECORD_WITHDRAWN)
        snprintf(r.title, sizeof(r.title), "%s", title);
    wb_init(w, RECORD_ENVELOPE_MAX);
    assert_int_equal(record_sign(&r, author, w, id), 0);
}

static void
test_submit_checks(void **state)
{
    struct fixture *f = *state;
    struct node *n = f->n;
    struct ident a;
    struct pull_wb w1, w2, w3, w0, wq[3];
    uint8_t id1[32], id2[32], id3[32], id0[32], idq[3][32], got[32], buf[RECORD_ENVELOPE_MAX];
    struct result r1 = {0}, r2 = {0}, rq[3] = {{0}};
    size_t len;

    assert_int_equal(ident_generate(&a), 0);
    make(&a, 1, 5, RECORD_OFFER, "version five", &w1, id1);
    make(&a, 1, 6, RECORD_OFFER, "version six", &w2, id2);
    make(&a, 1, 4, RECORD_OFFER, "version four", &w3, id3);

    assert_int_equal(node_submit(n, w1.p, w1.len, NODE_ORIGIN_LOCAL, NULL, on_commit, &r1, got), 0);
    assert_memory_equal(got, id1, 32);
    /* pending records are visible before the commit */
    assert_true(node_has_record(n, id1));
    assert_int_equal(node_fetch_record(n, id1, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, w1.len);
    assert_memory_equal(buf, w1.p, len);
    assert_int_equal(node_fetch_record(n, id1, buf, 10, &len), PULL_ERR_TOO_BIG);
    assert_int_equal(r1.calls, 0);
    /* the same again, or an older version, are refused against the pending batch */
    assert_int_equal(node_submit(n, w1.p, w1.len, NODE_ORIGIN_PEER, a.pk, NULL, NULL, NULL),
                     PULL_ERR_DUPLICATE);
    assert_int_equal(node_submit(n, w3.p, w3.len, NODE_ORIGIN_PEER, a.pk, NULL, NULL, NULL),
                     PULL_ERR_STALE);
    /* a newer version replaces it within the same batch */
    assert_int_equal(node_submit(n, w2.p, w2.len, NODE_ORIGIN_PEER, a.pk, on_commit, &r2, NULL), 0);
    /* quota: slot 1 plus two more slots fill the quota of 3, the fourth slot is refused */
    for (int i = 0; i < 3; i++) {
        char t[32];
        snprintf(t, sizeof(t), "slot %d", i + 2);
        make(&a, (uint8_t)(i + 2), 1, RECORD_NEED, t, &wq[i], idq[i]);
    }
    assert_int_equal(
        node_submit(n, wq[0].p, wq[0].len, NODE_ORIGIN_IMPORT, NULL, on_commit, &rq[0], NULL), 0);
    assert_int_equal(
        node_submit(n, wq[1].p, wq[1].len, NODE_ORIGIN_IMPORT, NULL, on_commit, &rq[1], NULL), 0);
    assert_int_equal(
        node_submit(n, wq[2].p, wq[2].len, NODE_ORIGIN_IMPORT, NULL, on_commit, &rq[2], NULL),
        PULL_ERR_QUOTA);
    /* invalid bytes */
    make(&f->me, 9, 1, RECORD_OFFER, "tampered", &w0, id0);
    w0.p[w0.len - 1] ^= 1;
    assert_true(node_submit(n, w0.p, w0.len, NODE_ORIGIN_PEER, a.pk, on_commit, &r1, NULL) < 0);
    assert_int_equal(node_submit(n, w0.p, 0, NODE_ORIGIN_PEER, a.pk, NULL, NULL, NULL),
                     PULL_ERR_TOO_BIG);
    assert_int_equal(r1.calls, 0);

    /* one commit, then the callbacks */
    assert_int_equal(node_flush(n), 0);
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r1.rc, 0);
    assert_memory_equal(r1.id, id1, 32);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.rc, 0);
    assert_int_equal(rq[0].calls, 1);
    assert_int_equal(rq[1].calls, 1);
    assert_int_equal(rq[2].calls, 0);
    assert_false(node_has_record(n, id1)); /* replaced in the same batch */
    assert_true(node_has_record(n, id2));
    assert_int_equal(store_count(n->store), 3);
    assert_int_equal(node_flush(n), 0); /* empty: nothing to do */

    /* against the store now */
    assert_int_equal(node_submit(n, w2.p, w2.len, NODE_ORIGIN_PEER, a.pk, NULL, NULL, NULL),
                     PULL_ERR_DUPLICATE);
    assert_int_equal(node_submit(n, w1.p, w1.len, NODE_ORIGIN_PEER, a.pk, NULL, NULL, NULL),
                     PULL_ERR_STALE);
    assert_int_equal(node_submit(n, wq[2].p, wq[2].len, NODE_ORIGIN_PEER, a.pk, NULL, NULL, NULL),
                     PULL_ERR_QUOTA);
    assert_int_equal(node_fetch_record(n, id2, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, w2.len);
    assert_int_equal(node_fetch_record(n, id1, buf, sizeof(buf), &len), PULL_ERR_NOT_FOUND);

    assert_int_equal(n->counters.records_new, 4);
    assert_int_equal(n->counters.records_local, 3);
    assert_int_equal(n->counters.commits, 1);
    assert_true(n->counters.records_dup >= 4);
    assert_true(n->counters.records_quota >= 2);
    assert_true(n->counters.records_invalid >= 2);

    /* the batch commits by itself at the end of a loop turn */
    {
        struct pull_wb w4;
        uint8_t id4[32];
        struct result r4 = {0};
        struct ident b;
        assert_int_equal(ident_generate(&b), 0);
        make(&b, 7, 1, RECORD_OFFER, "by the loop", &w4, id4);
        assert_int_equal(
            node_submit(n, w4.p, w4.len, NODE_ORIGIN_LOCAL, NULL, on_commit, &r4, NULL), 0);
        for (int k = 0; k < 1000 && r4.calls == 0; k++)
            uv_run(&f->loop, UV_RUN_ONCE);
        assert_int_equal(r4.calls, 1);
        assert_int_equal(r4.rc, 0);
        wb_release(&w4);
        ident_wipe(&b);
    }
    wb_release(&w0);
    wb_release(&w1);
    wb_release(&w2);
    wb_release(&w3);
    for (int i = 0; i < 3; i++)
        wb_release(&wq[i]);
    ident_wipe(&a);
}

static void
test_connect_args(void **state)
{
    struct fixture *f = *state;
    char addrs[4][NODE_ADDR_MAX];
    uint8_t other[32];
    struct sync *s = NULL;

    memset(other, 7, sizeof(other));
    /* without a network part, the node says so */
    assert_int_equal(node_connect(f->n, other, "127.0.0.1:1", NULL, NULL), PULL_ERR_STATE);
    assert_int_equal(node_addresses(f->n, addrs, 4), 0);
    assert_int_equal(sync_new(f->n, &f->sync), 0);
    s = f->sync;
    assert_true(node_listen_port(f->n) != 0);
    assert_int_equal(node_connect(f->n, f->me.pk, "127.0.0.1:1", NULL, NULL), PULL_ERR_BAD_KEY);
    assert_int_equal(node_connect(f->n, other, "nonsense", NULL, NULL), PULL_ERR_INVAL);
    assert_int_equal(node_connect(f->n, other, "127.0.0.1:0", NULL, NULL), PULL_ERR_INVAL);
    assert_int_equal(node_learn_peer(f->n, other, "x"), PULL_ERR_INVAL);
    assert_int_equal(node_addresses(f->n, addrs, 4), 1);
    assert_non_null(strstr(addrs[0], "@127.0.0.1:"));
    assert_int_equal(node_connected_count(f->n), 0);
    assert_false(sync_mail_has(s, other));
    sync_stop(s);
    assert_int_equal(node_listen_port(f->n), 0); /* unregistered; freed by teardown */
}

/* What observers hear, in a test. */
struct seen {
    int stored, removed, events;
    uint8_t last[32];
    uint64_t commits_at_stored; /* n->counters.commits when stored ran */
    struct node *n;
};

static void
seen_stored(void *ctx, const struct node_stored *st)
{
    struct seen *s = ctx;

    s->stored++;
    memcpy(s->last, st->id, 32);
    s->commits_at_stored = s->n->counters.commits;
}

static void
seen_removed(void *ctx, const uint8_t id[RECORD_ID_BYTES])
{
    struct seen *s = ctx;

    s->removed++;
    memcpy(s->last, id, 32);
}

static void
seen_event(void *ctx, enum node_event ev, const uint8_t *data, size_t len)
{
    struct seen *s = ctx;

    assert_int_equal(ev, NODE_EV_DYAD);
    assert_int_equal(len, 3);
    assert_memory_equal(data, "abc", 3);
    s->events++;
}

struct done {
    int calls, rc;
    uint64_t commits; /* n->counters.commits when called */
    struct node *n;
};

static void
on_done(void *arg, int result)
{
    struct done *d = arg;

    d->calls++;
    d->rc = result;
    d->commits = d->n->counters.commits;
}

static int
count_kv(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len)
{
    (void)key;
    (void)val;
    (void)len;
    ++*(unsigned *)ctx;
    return 0;
}

/* Records and key-value writes of one loop turn are one commit; pending writes are read
 * back before it; after-commit callbacks and observers run after it. */
static void
test_one_commit(void **state)
{
    struct fixture *f = *state;
    struct node *n = f->n;
    struct seen seen = {.n = n};
    struct node_observer o = {seen_stored, seen_removed, seen_event, &seen};
    struct done d1 = {.n = n}, d2 = {.n = n};
    struct pull_wb w, v;
    uint8_t id[32], k1[32], k2[32];
    uint64_t before;
    struct result r = {0};

    memset(k1, 1, 32);
    memset(k2, 2, 32);
    assert_int_equal(node_observe(n, &o), 0);
    node_emit(n, NODE_EV_DYAD, (const uint8_t *)"abc", 3);
    assert_int_equal(seen.events, 1);
    /* a turn's worth of writes: a record, 512 mail items, a peer, a deletion */
    before = n->counters.commits;
    make(&f->me, 3, 1, RECORD_OFFER, "one commit", &w, id);
    assert_int_equal(node_submit(n, w.p, w.len, NODE_ORIGIN_LOCAL, NULL, on_commit, &r, NULL), 0);
    for (int i = 0; i < 512; i++) {
        uint8_t key[32];
        memset(key, 0, 32);
        key[0] = (uint8_t)i;
        key[1] = (uint8_t)(i >> 8);
        key[2] = 0x4d;
        assert_int_equal(node_kv_put(n, STORE_MAIL, key, "item", 4), 0);
    }
    assert_int_equal(node_kv_put(n, STORE_PEERS, k1, "old", 3), 0);
    assert_int_equal(node_kv_put(n, STORE_PEERS, k1, "new address", 11), 0);
    assert_int_equal(node_kv_put(n, STORE_DYADS, k2, "gone", 4), 0);
    assert_int_equal(node_kv_del(n, STORE_DYADS, k2), 0);
    assert_int_equal(node_after_commit(n, on_done, &d1), 0);
    /* read back before the commit: the newest write wins */
    wb_init(&v, 0);
    assert_int_equal(node_kv_get(n, STORE_PEERS, k1, &v), 0);
    assert_int_equal(v.len, 11);
    assert_int_equal(node_kv_get(n, STORE_DYADS, k2, NULL), PULL_ERR_NOT_FOUND);
    assert_int_equal(d1.calls, 0);
    assert_int_equal(seen.stored, 0);
    for (int k = 0; k < 1000 && d1.calls == 0; k++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(d1.calls, 1);
    assert_int_equal(d1.rc, 0);
    assert_int_equal(n->counters.commits, before + 1); /* everything in ONE commit */
    assert_int_equal(d1.commits, before + 1);
    assert_int_equal(seen.stored, 1);
    assert_int_equal(seen.commits_at_stored, before + 1);
    assert_memory_equal(seen.last, id, 32);
    assert_int_equal(r.calls, 1);
    /* on disk now */
    wb_reset(&v);
    assert_int_equal(store_kv_get(n->store, STORE_PEERS, k1, &v), 0);
    assert_int_equal(v.len, 11);
    assert_memory_equal(v.p, "new address", 11);
    assert_int_equal(store_kv_get(n->store, STORE_DYADS, k2, NULL), PULL_ERR_NOT_FOUND);
    /* the record is in the search index (the node's, fed by the commit) */
    assert_int_equal(search_index_live(n->search), 1);
    /* an after-commit callback with nothing queued runs at the end of the turn, without a
     * commit (once the copy of my record for STORE_MINE, queued by the commit, is in) */
    assert_int_equal(node_flush(n), 0);
    {
        unsigned kept = 0;
        assert_int_equal(store_kv_iter(n->store, STORE_MINE, count_kv, &kept), 0);
        assert_int_equal(kept, 1); /* my record's copy, kept past its expiry */
    }
    before = n->counters.commits;
    assert_int_equal(node_after_commit(n, on_done, &d2), 0);
    for (int k = 0; k < 1000 && d2.calls == 0; k++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(d2.calls, 1);
    assert_int_equal(n->counters.commits, before);
    node_unobserve(n, &seen);
    node_emit(n, NODE_EV_DYAD, (const uint8_t *)"abc", 3);
    assert_int_equal(seen.events, 1);
    wb_release(&v);
    wb_release(&w);
}

static int
count_row(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len)
{
    (void)key, (void)val, (void)len;
    (*(int *)ctx)++;
    return 0;
}

/* Stopping writes what the parts kept (the peers to dial next time) in ONE commit. */
static void
test_shutdown_one_commit(void **state)
{
    struct fixture *f = *state;
    struct node *n2 = NULL;
    struct sync *s2 = NULL;
    struct config c;
    struct ident other;
    char *dir2 = tu_tmpdir(), addr[64];
    uint64_t before;
    int rows = 0;

    /* a second node in the same loop, and a session between the two */
    config_defaults(&c);
    snprintf(c.data_dir, sizeof(c.data_dir), "%s", dir2);
    snprintf(c.listen, sizeof(c.listen), "127.0.0.1:0");
    c.lan = false;
    c.store_nosync = true;
    assert_int_equal(ident_generate(&other), 0);
    assert_int_equal(node_new(&f->loop, &c, &other, &n2), 0);
    assert_int_equal(sync_new(n2, &s2), 0);
    assert_int_equal(sync_new(f->n, &f->sync), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", (unsigned)node_listen_port(n2));
    assert_int_equal(node_connect(f->n, other.pk, addr, NULL, NULL), 0);
    for (int k = 0; k < 500 && node_connected_count(f->n) == 0; k++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    assert_int_equal(node_connected_count(f->n), 1);
    for (int k = 0; k < 20; k++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    before = f->n->counters.commits;
    sync_stop(f->sync); /* the engine queues the peers it knows */
    node_stop(f->n);    /* and the node commits them, once */
    assert_int_equal(f->n->counters.commits, before + 1);
    assert_int_equal(store_kv_iter(f->n->store, STORE_PEERS, count_row, &rows), 0);
    assert_int_equal(rows, 1);
    sync_stop(s2);
    node_stop(n2);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    sync_free(s2);
    node_free(n2);
    tu_rmrf(dir2);
    free(dir2);
    ident_wipe(&other);
}

/* ---- node_submit_async ---- */

struct aresult {
    int calls, rc;
    uint64_t commits; /* n->counters.commits when called */
    struct node *n;
};

static void
on_async(void *arg, int result, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct aresult *r = arg;
    uint8_t h[RECORD_ID_BYTES];

    crypto_generichash(h, sizeof(h), env, len, NULL, 0);
    assert_memory_equal(h, id, RECORD_ID_BYTES); /* the bytes are the record's */
    r->calls++;
    r->rc = result;
    r->commits = r->n != NULL ? r->n->counters.commits : 0;
}

/* run_until runs the loop until *calls reaches want (or a few seconds passed). */
static void
run_until(struct fixture *f, const int *calls, int want)
{
    for (int k = 0; k < 20000 && *calls < want; k++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (*calls < want)
            uv_sleep(1);
    }
    assert_true(*calls >= want);
}

/* A batch being committed on the writer thread is seen as the pending one is: its records
 * are had and fetched, a copy or an older version is refused, its key-value writes are
 * read back, its records count in their author's quota - once, also when the writer has
 * committed them and the loop has not ended the commit yet - and nothing of it is
 * acknowledged before its end. */
static void
writer_wait_done(struct node *n)
{
    struct writer *w = &n->batch->wr;
    bool done = false;

    for (int k = 0; k < 5000 && !done; k++) {
        pthread_mutex_lock(&w->mu);
        done = w->done;
        pthread_mutex_unlock(&w->mu);
        if (!done)
            usleep(1000);
    }
    assert_true(done);
}

static void
test_commit_in_flight(void **state)
{
    struct fixture *f = *state;
    struct node *n = f->n;
    struct ident a;
    struct pull_wb w1, w0, w2, w3, w4, v;
    uint8_t id1[32], id0[32], id2[32], id3[32], id4[32], key[32], buf[RECORD_ENVELOPE_MAX];
    struct result r1 = {0}, r2 = {0}, r3 = {0};
    size_t len;

    if (!n->batch->wr.started)
        skip(); /* PULL_COMMIT_THREAD=0 */
    assert_int_equal(ident_generate(&a), 0);
    make(&a, 1, 5, RECORD_OFFER, "in flight", &w1, id1);
    make(&a, 1, 4, RECORD_OFFER, "older", &w0, id0);
    make(&a, 2, 1, RECORD_OFFER, "second slot", &w2, id2);
    make(&a, 3, 1, RECORD_OFFER, "third slot", &w3, id3);
    make(&a, 4, 1, RECORD_OFFER, "fourth slot", &w4, id4);
    memset(key, 0x6b, sizeof(key));

    assert_int_equal(node_submit(n, w1.p, w1.len, NODE_ORIGIN_LOCAL, NULL, on_commit, &r1, NULL),
                     0);
    assert_int_equal(node_kv_put(n, STORE_MAIL, key, "flying", 6), 0);
    node_commit_start(n);
    assert_false(node_commit_idle(n));
    /* the loop does not turn: the flight stays on until it is ended */
    assert_true(node_has_record(n, id1));
    assert_int_equal(node_fetch_record(n, id1, buf, sizeof(buf), &len), 0);
    assert_int_equal(len, w1.len);
    assert_memory_equal(buf, w1.p, len);
    assert_int_equal(node_submit(n, w1.p, w1.len, NODE_ORIGIN_PEER, a.pk, NULL, NULL, NULL),
                     PULL_ERR_DUPLICATE);
    assert_int_equal(node_submit(n, w0.p, w0.len, NODE_ORIGIN_PEER, a.pk, NULL, NULL, NULL),
                     PULL_ERR_STALE);
    wb_init(&v, 0);
    assert_int_equal(node_kv_get(n, STORE_MAIL, key, &v), 0);
    assert_int_equal(v.len, 6);
    assert_memory_equal(v.p, "flying", 6);
    assert_int_equal(r1.calls, 0);
    /* quota 3: one in flight, one pending, then one more */
    assert_int_equal(node_submit(n, w2.p, w2.len, NODE_ORIGIN_LOCAL, NULL, on_commit, &r2, NULL),
                     0);
    /* the writer has committed the first one: the store counts it, the flight no more */
    writer_wait_done(n);
    assert_false(node_commit_idle(n));
    assert_int_equal(node_submit(n, w3.p, w3.len, NODE_ORIGIN_LOCAL, NULL, on_commit, &r3, NULL),
                     0);
    assert_int_equal(node_submit(n, w4.p, w4.len, NODE_ORIGIN_LOCAL, NULL, NULL, NULL, NULL),
                     PULL_ERR_QUOTA);
    assert_int_equal(r1.calls, 0); /* committed, but acknowledged only at its end */

    assert_int_equal(node_flush(n), 0);
    assert_true(node_commit_idle(n));
    assert_int_equal(r1.calls, 1);
    assert_int_equal(r1.rc, 0);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.rc, 0);
    assert_int_equal(r3.calls, 1);
    assert_int_equal(r3.rc, 0);
    assert_int_equal(store_has(n->store, id3), 0);
    wb_reset(&v);
    assert_int_equal(store_kv_get(n->store, STORE_MAIL, key, &v), 0);
    assert_int_equal(v.len, 6);
    assert_int_equal(node_submit(n, w4.p, w4.len, NODE_ORIGIN_LOCAL, NULL, NULL, NULL, NULL),
                     PULL_ERR_QUOTA);
    wb_release(&v);
    wb_release(&w0);
    wb_release(&w1);
    wb_release(&w2);
    wb_release(&w3);
    wb_release(&w4);
    ident_wipe(&a);
}

/* A record handed to the verifiers: seen by node_has_record at once, refused again as a
 * duplicate, its callback never inside the call and called once after the commit that
 * stored it; a bad signature and a stale version are refused by the callback; the counters
 * tell which. */
static void
test_async_submit(void **state)
{
    struct fixture *f = *state;
    struct node *n = f->n;
    struct ident a;
    struct pull_wb w1, w2, wbad;
    uint8_t id1[32], id2[32], idbad[32];
    struct aresult r1 = {.n = n}, r2 = {.n = n}, rdup = {.n = n}, rbad = {.n = n};
    uint64_t commits = n->counters.commits, invalid = n->counters.records_invalid;

    assert_true(node_verify_threads(n) >= 1);
    assert_int_equal(ident_generate(&a), 0);
    make(&a, 1, 2, RECORD_OFFER, "second version", &w2, id2);
    make(&a, 1, 1, RECORD_OFFER, "first version", &w1, id1);
    make(&a, 2, 1, RECORD_OFFER, "bad signature", &wbad, idbad);
    wbad.p[wbad.len - 1] ^= 1; /* the last byte of the signature */
    crypto_generichash(idbad, sizeof(idbad), wbad.p, wbad.len, NULL, 0);

    assert_false(node_has_record(n, id2));
    assert_int_equal(node_submit_async(n, w2.p, w2.len, id2, NODE_ORIGIN_PEER, a.pk, on_async, &r2),
                     0);
    assert_true(node_has_record(n, id2));
    assert_false(node_verify_busy(n));
    /* the same record again, by id or by bytes, async or not: a duplicate */
    assert_int_equal(
        node_submit_async(n, w2.p, w2.len, NULL, NODE_ORIGIN_PEER, a.pk, on_async, &rdup),
        PULL_ERR_DUPLICATE);
    assert_int_equal(node_submit(n, w2.p, w2.len, NODE_ORIGIN_PEER, a.pk, NULL, NULL, NULL),
                     PULL_ERR_DUPLICATE);
    assert_int_equal(
        node_submit_async(n, wbad.p, wbad.len, NULL, NODE_ORIGIN_PEER, a.pk, on_async, &rbad), 0);
    assert_int_equal(node_submit_async(n, w2.p, 0, NULL, NODE_ORIGIN_PEER, a.pk, on_async, &rdup),
                     PULL_ERR_TOO_BIG);
    assert_int_equal(r2.calls + rbad.calls + rdup.calls, 0);
    run_until(f, &r2.calls, 1);
    run_until(f, &rbad.calls, 1);
    assert_int_equal(r2.rc, 0);
    assert_true(r2.commits > commits); /* called after its commit */
    assert_int_equal(store_has(n->store, id2), 0);
    assert_int_equal(rbad.rc, PULL_ERR_BAD_SIG);
    assert_false(node_has_record(n, idbad));
    assert_int_equal(n->counters.records_invalid, invalid + 2); /* the empty one too */
    assert_int_equal(rdup.calls, 0);
    /* an older version of a stored slot: verified, then refused as stale */
    assert_int_equal(node_submit_async(n, w1.p, w1.len, id1, NODE_ORIGIN_PEER, a.pk, on_async, &r1),
                     0);
    run_until(f, &r1.calls, 1);
    assert_int_equal(r1.rc, PULL_ERR_STALE);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(rbad.calls, 1);
    wb_release(&w1);
    wb_release(&w2);
    wb_release(&wbad);
    ident_wipe(&a);
}

#define MANY 1400 /* > 2 * NODE_VERIFY_BYTES of 3 KB records: several jobs, busy, AGAIN */

/* Many records at once: jobs come back in any order but are applied in the order given
 * (an earlier version of a slot is never found stale by a later one that another job
 * verified first); past the budget the node is busy, past twice it refuses with PULL_ERR_AGAIN;
 * every accepted record gets exactly one callback, and node_stop answers those still in
 * verification. */
static void
test_async_many(void **state)
{
    struct fixture *f = *state;
    struct node *n = f->n;
    struct ident *au = calloc(MANY / 3 + 1, sizeof(*au));
    struct aresult *r = calloc(MANY, sizeof(*r));
    struct pull_wb w;
    uint8_t id[32];
    size_t accepted = 0, again = 0, calls = 0, ok = 0;
    bool busy = false;
    char title[64];

    assert_non_null(au);
    assert_non_null(r);
    for (size_t i = 0; i < MANY / 3 + 1; i++)
        assert_int_equal(ident_generate(&au[i]), 0);
    for (size_t i = 0; i < MANY; i++) {
        struct record rec;
        uint64_t now = (uint64_t)time(NULL);
        int rc;
        /* three records per author: slot 1 seq 1, slot 1 seq 2, slot 2 seq 1 */
        record_init(&rec);
        rec.kind = RECORD_OFFER;
        memcpy(rec.author, au[i / 3].pk, 32);
        memset(rec.slot, i % 3 == 2 ? 2 : 1, RECORD_SLOT_BYTES);
        rec.seq = i % 3 == 1 ? 2 : 1;
        rec.created = now - 60;
        rec.expires = now + 86400;
        snprintf(title, sizeof(title), "record %zu", i);
        snprintf(rec.title, sizeof(rec.title), "%s", title);
        memset(rec.body, 'x', 3000);
        rec.body[3000] = '\0';
        wb_init(&w, RECORD_ENVELOPE_MAX);
        assert_int_equal(record_sign(&rec, &au[i / 3], &w, id), 0);
        r[i].n = n;
        rc = node_submit_async(n, w.p, w.len, id, NODE_ORIGIN_IMPORT, NULL, on_async, &r[i]);
        if (rc == PULL_ERR_AGAIN) {
            again++;
            r[i].calls = -1; /* never called */
        } else {
            assert_int_equal(rc, 0);
            accepted++;
        }
        busy = busy || node_verify_busy(n);
        wb_release(&w);
    }
    assert_true(busy);
    assert_true(again > 0);
    /* half of the rest now, the other half stopped in verification */
    for (int k = 0; k < 20000 && calls < accepted / 2; k++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        calls = 0;
        for (size_t i = 0; i < MANY; i++)
            calls += r[i].calls > 0;
        if (calls < accepted / 2)
            uv_sleep(1);
    }
    node_stop(n);
    calls = 0;
    for (size_t i = 0; i < MANY; i++) {
        if (r[i].calls < 0)
            continue;
        assert_int_equal(r[i].calls, 1);
        calls++;
        /* applied in the order given: the first version of slot 1 came before the second,
         * so it is never stale (it is stored, then replaced) */
        if (r[i].rc == 0)
            ok++;
        else
            assert_int_equal(r[i].rc, PULL_ERR_CLOSED);
    }
    assert_int_equal(calls, accepted);
    assert_true(ok > 0);
    assert_false(node_verify_busy(n));
    for (size_t i = 0; i < MANY / 3 + 1; i++)
        ident_wipe(&au[i]);
    free(au);
    free(r);
}

/* submit_stranger submits an offer of a new author (each author's own quota is small
 * here); r hears of its commit. */
static void
submit_stranger(struct node *n, const char *title, struct result *r)
{
    struct ident a;
    struct pull_wb w;
    uint8_t id[RECORD_ID_BYTES];

    assert_int_equal(ident_generate(&a), 0);
    make(&a, 1, 1, RECORD_OFFER, title, &w, id);
    memset(r, 0, sizeof(*r));
    assert_int_equal(node_submit(n, w.p, w.len, NODE_ORIGIN_IMPORT, NULL, on_commit, r, NULL), 0);
    wb_release(&w);
    ident_wipe(&a);
}

/* A store larger than the first part of the index build: the node serves at once and
 * indexes the rest one slice per loop turn, while commits index what they store. */
static void
test_index_in_slices(void **state)
{
    struct fixture *f = *state;
    struct config c;
    struct result r;
    int turns = 0;

    for (unsigned i = 0; i < 40; i++)
        submit_stranger(f->n, "guitar lessons", &r);
    assert_int_equal(node_flush(f->n), 0);
    assert_false(node_index_building(f->n));
    assert_int_equal(search_index_live(f->n->search), 40);
    node_stop(f->n);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    node_free(f->n);
    f->n = NULL;

    setenv("PULL_INDEX_FIRST", "5", 1);
    setenv("PULL_INDEX_SLICE", "3", 1);
    config_defaults(&c);
    snprintf(c.data_dir, sizeof(c.data_dir), "%s", f->dir);
    snprintf(c.listen, sizeof(c.listen), "127.0.0.1:0");
    c.lan = false;
    c.store_nosync = true;
    assert_int_equal(node_new(&f->loop, &c, &f->me, &f->n), 0);
    unsetenv("PULL_INDEX_FIRST");
    unsetenv("PULL_INDEX_SLICE");
    assert_true(node_index_building(f->n));
    assert_int_equal(search_index_live(f->n->search), 5);
    submit_stranger(f->n, "piano lessons", &r); /* stored while the index is built */
    assert_int_equal(node_flush(f->n), 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(search_index_live(f->n->search), 6); /* its commit indexed it */
    while (node_index_building(f->n) && turns < 1000) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        turns++;
    }
    assert_false(node_index_building(f->n));
    assert_true(turns >= 12); /* 36 more records read, 3 per turn */
    assert_int_equal(search_index_live(f->n->search), 41);
    assert_int_equal(search_index_dead(f->n->search), 0); /* none indexed twice */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_submit_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_one_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_submit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_in_slices, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
