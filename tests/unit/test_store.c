/* Tests of the LMDB store (lib/store.h): replacement, tombstones, expiry, quota, indexes,
 * map growth, schema, key-value tables. `test_store --million` runs the slow test that
 * builds a 1,000,000-record store and times store_open (ctest: unit.test_store_million). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/record.h"
#include "lib/search.h"
#include "lib/store.h"
#include "testutil.h"

#define NOW 1700000000ull
#define DAY 86400ull

/* A signed envelope made for a test. */
struct env {
    uint8_t bytes[RECORD_ENVELOPE_MAX];
    size_t len;
    uint8_t id[RECORD_ID_BYTES];
};

static void
mkident(struct ident *id, uint8_t n)
{
    uint8_t seed[32] = {0};

    seed[0] = n;
    seed[31] = 0x5a;
    assert_int_equal(ident_from_seed(id, seed), 0);
}

/* mkrec signs a record of author `who`: tags is a space-separated list (or NULL). */
static void
mkrec(struct env *e, const struct ident *who, uint8_t kind, uint8_t slot, uint64_t seq,
      uint64_t created, uint64_t expires, const char *title, const char *tags)
{
    struct record *rec = malloc(sizeof(*rec));
    struct pull_wb wb;

    assert_non_null(rec);
    record_init(rec);
    rec->kind = kind;
    memcpy(rec->author, who->pk, 32);
    memset(rec->slot, 0, sizeof(rec->slot));
    rec->slot[0] = slot;
    rec->slot[15] = 0x77;
    rec->seq = seq;
    rec->created = created;
    rec->expires = expires;
    if (kind != RECORD_WITHDRAWN) {
        snprintf(rec->title, sizeof(rec->title), "%s", title);
        snprintf(rec->body, sizeof(rec->body), "body of %s", title);
    }
    if (tags != NULL) {
        const char *p = tags;
        while (*p != '\0' && rec->ntags < RECORD_TAGS_MAX) {
            size_t n = strcspn(p, " ");
            assert_true(n > 0 && n <= RECORD_TAG_MAX);
            memcpy(rec->tags[rec->ntags], p, n);
            rec->tags[rec->ntags][n] = '\0';
            rec->ntags++;
            p += n;
            while (*p == ' ')
                p++;
        }
    }
    wb_init(&wb, RECORD_ENVELOPE_MAX);
    assert_int_equal(record_sign(rec, who, &wb, e->id), 0);
    assert_true(wb.len <= sizeof(e->bytes));
    memcpy(e->bytes, wb.p, wb.len);
    e->len = wb.len;
    wb_release(&wb);
    free(rec);
}

static void
mkoffer(struct env *e, const struct ident *who, uint8_t slot, uint64_t seq, const char *title)
{
    mkrec(e, who, RECORD_OFFER, slot, seq, NOW - 100, NOW + 30 * DAY, title, NULL);
}

/* put1 stores one envelope; returns the item result (the batch must commit). */
static int
put1(struct store *s, const struct env *e, struct store_item *out)
{
    struct store_item it;

    memset(&it, 0, sizeof(it));
    it.bytes = e->bytes;
    it.len = e->len;
    assert_int_equal(store_put_batch(s, &it, 1, NOW), 0);
    if (out != NULL)
        *out = it;
    return it.result;
}

static struct store *
open_store(const char *dir, const struct store_opts *o)
{
    struct store *s = NULL;

    assert_int_equal(store_open(dir, o, &s), 0);
    assert_non_null(s);
    return s;
}

static bool
stored(struct store *s, const uint8_t id[RECORD_ID_BYTES])
{
    struct pull_wb wb;
    int rc;

    wb_init(&wb, 0);
    rc = store_get(s, id, &wb);
    wb_release(&wb);
    assert_true(rc == 0 || rc == PULL_ERR_NOT_FOUND);
    assert_int_equal(store_has(s, id), rc);
    return rc == 0;
}

/* Collects the ids an iteration visits. */
struct collect {
    uint8_t ids[512][RECORD_ID_BYTES];
    uint64_t created[512];
    size_t n;
    size_t stop_after; /* 0: never stop */
};

static int
collect_rec(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct collect *c = ctx;
    struct envelope e;
    struct record *rec = malloc(sizeof(*rec));

    assert_non_null(rec);
    /* what an iteration hands out is the stored, valid envelope of that id */
    assert_int_equal(envelope_parse(env, len, &e), 0);
    assert_memory_equal(e.id, id, RECORD_ID_BYTES);
    assert_int_equal(record_decode(e.rec, e.rec_len, rec), 0);
    assert_true(c->n < 512);
    memcpy(c->ids[c->n], id, RECORD_ID_BYTES);
    c->created[c->n] = rec->created;
    c->n++;
    free(rec);
    return c->stop_after != 0 && c->n >= c->stop_after ? 7 : 0;
}

static int
collect_key(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    struct collect *c = ctx;

    assert_true(c->n < 512);
    memcpy(c->ids[c->n], id, RECORD_ID_BYTES);
    c->created[c->n] = created;
    c->n++;
    return c->stop_after != 0 && c->n >= c->stop_after ? 7 : 0;
}

static bool
collected(const struct collect *c, const uint8_t id[RECORD_ID_BYTES])
{
    for (size_t i = 0; i < c->n; i++)
        if (memcmp(c->ids[i], id, RECORD_ID_BYTES) == 0)
            return true;
    return false;
}

static int
setup(void **state)
{
    *state = tu_tmpdir();
    return 0;
}

static int
teardown(void **state)
{
    tu_rmrf(*state);
    free(*state);
    return 0;
}

/* ---------------------------------------------------------------------------------- */

static void
test_reopen_keeps_everything(void **state)
{
    const char *dir = *state;
    struct ident a, b;
    struct env e[6];
    struct store *s = open_store(dir, NULL);
    struct store_stats st;
    struct pull_wb wb;
    uint64_t seq, exp;
    uint8_t id[RECORD_ID_BYTES];
    uint8_t peer[32];

    mkident(&a, 1);
    mkident(&b, 2);
    mkoffer(&e[0], &a, 1, 1, "lend a 3d printer");
    mkoffer(&e[1], &a, 2, 1, "review c code");
    mkrec(&e[2], &b, RECORD_NEED, 1, 5, NOW - 50, NOW + DAY, "rust mentor", "rust mentoring");
    mkrec(&e[3], &b, RECORD_PROFILE, 2, 1, NOW - 10, NOW + DAY, "bob", NULL);
    mkrec(&e[4], &b, RECORD_WITHDRAWN, 3, 2, NOW - 5, NOW + DAY, "", NULL);
    mkoffer(&e[5], &b, 4, 1, "bike repair");
    for (int i = 0; i < 6; i++)
        assert_int_equal(put1(s, &e[i], NULL), 0);
    memset(peer, 0x42, sizeof(peer));
    assert_int_equal(store_kv_put(s, STORE_PEERS, peer, "addr", 4), 0);
    assert_int_equal(store_count(s), 6);
    store_close(s);

    s = open_store(dir, NULL);
    assert_int_equal(store_count(s), 6);
    assert_int_equal(store_stats(s, &st), 0);
    assert_int_equal(st.records, 6);
    assert_int_equal(st.by_kind[RECORD_OFFER], 3);
    assert_int_equal(st.by_kind[RECORD_NEED], 1);
    assert_int_equal(st.by_kind[RECORD_PROFILE], 1);
    assert_int_equal(st.by_kind[RECORD_WITHDRAWN], 1);
    {
        uint64_t bytes = 0;
        for (int i = 0; i < 6; i++)
            bytes += e[i].len;
        assert_int_equal(st.bytes, bytes);
    }
    /* /tmp is ext4 or tmpfs here: LMDB writes through the map, which starts at one step */
    if (st.writemap)
        assert_true(st.map_size >= 8ull << 20);
    else
        assert_true(st.map_size >= STORE_MAP_DEFAULT);
    assert_true(st.map_used > 0 && st.map_used <= st.map_size);
    wb_init(&wb, 0);
    for (int i = 0; i < 6; i++) {
        wb_reset(&wb);
        assert_int_equal(store_get(s, e[i].id, &wb), 0);
        assert_int_equal(wb.len, e[i].len);
        assert_memory_equal(wb.p, e[i].bytes, e[i].len);
    }
    wb_reset(&wb);
    assert_int_equal(store_kv_get(s, STORE_PEERS, peer, &wb), 0);
    assert_int_equal(wb.len, 4);
    assert_memory_equal(wb.p, "addr", 4);
    wb_release(&wb);
    {
        uint8_t slot[RECORD_SLOT_BYTES] = {0};
        slot[0] = 1;
        slot[15] = 0x77;
        assert_int_equal(store_latest(s, b.pk, slot, &seq, id, &exp), 0);
        assert_int_equal(seq, 5);
        assert_memory_equal(id, e[2].id, RECORD_ID_BYTES);
        assert_int_equal(exp, NOW + DAY);
        slot[0] = 9;
        assert_int_equal(store_latest(s, b.pk, slot, &seq, id, &exp), PULL_ERR_NOT_FOUND);
    }
    {
        uint32_t live, tombs;
        assert_int_equal(store_author_count(s, b.pk, &live, &tombs), 0);
        assert_int_equal(live, 3);
        assert_int_equal(tombs, 1);
    }
    /* and a third time */
    store_close(s);
    s = open_store(dir, NULL);
    assert_int_equal(store_count(s), 6);
    store_close(s);
}

static void
test_replace_by_seq(void **state)
{
    struct ident a;
    struct env v1, v2, v3;
    struct store *s = open_store(*state, NULL);
    struct store_item it;
    struct collect c;
    uint64_t seq;
    uint8_t id[RECORD_ID_BYTES], slot[RECORD_SLOT_BYTES] = {0};

    mkident(&a, 1);
    mkrec(&v1, &a, RECORD_OFFER, 1, 1, NOW - 100, NOW + DAY, "v1", "alpha");
    mkrec(&v2, &a, RECORD_OFFER, 1, 2, NOW - 50, NOW + DAY, "v2", "beta");
    mkrec(&v3, &a, RECORD_OFFER, 1, 3, NOW - 10, NOW + 2 * DAY, "v3", "beta");

    assert_int_equal(put1(s, &v1, &it), 0);
    assert_false(it.replaced);
    assert_int_equal(put1(s, &v2, &it), 0);
    assert_true(it.replaced);
    assert_memory_equal(it.replaced_id, v1.id, RECORD_ID_BYTES);
    assert_false(stored(s, v1.id));
    assert_true(stored(s, v2.id));
    assert_int_equal(store_count(s), 1);
    /* the older version comes back (a replay): refused */
    assert_int_equal(put1(s, &v1, &it), PULL_ERR_STALE);
    assert_true(it.has_id);
    assert_memory_equal(it.id, v1.id, RECORD_ID_BYTES);
    assert_false(stored(s, v1.id));
    /* every index of v1 is gone */
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_tag(s, "alpha", collect_rec, &c), 0);
    assert_int_equal(c.n, 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_author(s, a.pk, collect_rec, &c), 0);
    assert_int_equal(c.n, 1);
    assert_memory_equal(c.ids[0], v2.id, RECORD_ID_BYTES);
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_ids(s, collect_key, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.created[0], NOW - 50);

    /* in one batch: v3 then the stale v1; v3 replaces v2 */
    {
        struct store_item items[2];
        memset(items, 0, sizeof(items));
        items[0].bytes = v3.bytes;
        items[0].len = v3.len;
        items[1].bytes = v1.bytes;
        items[1].len = v1.len;
        assert_int_equal(store_put_batch(s, items, 2, NOW), 0);
        assert_int_equal(items[0].result, 0);
        assert_true(items[0].replaced);
        assert_memory_equal(items[0].replaced_id, v2.id, RECORD_ID_BYTES);
        assert_int_equal(items[1].result, PULL_ERR_STALE);
    }
    slot[0] = 1;
    slot[15] = 0x77;
    assert_int_equal(store_latest(s, a.pk, slot, &seq, id, NULL), 0);
    assert_int_equal(seq, 3);
    assert_memory_equal(id, v3.id, RECORD_ID_BYTES);
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_tag(s, "beta", collect_rec, &c), 0);
    assert_int_equal(c.n, 1);
    assert_memory_equal(c.ids[0], v3.id, RECORD_ID_BYTES);
    store_close(s);
}

/* Two versions with the same seq: the lower id wins whatever the arrival order. */
static void
test_replace_tie_lower_id(void **state)
{
    struct ident a;
    struct env x, y, *lo, *hi;
    struct store *s = open_store(*state, NULL);
    struct store_item it;

    mkident(&a, 3);
    mkrec(&x, &a, RECORD_OFFER, 7, 4, NOW - 100, NOW + DAY, "one text", NULL);
    mkrec(&y, &a, RECORD_OFFER, 7, 4, NOW - 100, NOW + DAY, "another text", NULL);
    if (memcmp(x.id, y.id, RECORD_ID_BYTES) < 0) {
        lo = &x;
        hi = &y;
    } else {
        lo = &y;
        hi = &x;
    }
    assert_true(record_replaces(4, lo->id, 4, hi->id));
    /* higher first: the lower replaces it */
    assert_int_equal(put1(s, hi, &it), 0);
    assert_int_equal(put1(s, lo, &it), 0);
    assert_true(it.replaced);
    assert_memory_equal(it.replaced_id, hi->id, RECORD_ID_BYTES);
    /* and the higher can't come back */
    assert_int_equal(put1(s, hi, &it), PULL_ERR_STALE);
    assert_true(stored(s, lo->id));
    assert_false(stored(s, hi->id));
    assert_int_equal(store_count(s), 1);
    store_close(s);

    /* lower first, in a fresh store: the higher is refused */
    tu_rmrf(*state);
    s = open_store(*state, NULL);
    assert_int_equal(put1(s, lo, &it), 0);
    assert_int_equal(put1(s, hi, &it), PULL_ERR_STALE);
    assert_int_equal(store_count(s), 1);
    store_close(s);
}

static void
test_tombstone_refuses_replay(void **state)
{
    struct ident a;
    struct env v1, gone, v2;
    struct store *s = open_store(*state, NULL);
    struct store_item it;
    struct store_stats st;
    struct collect c;
    uint32_t live, tombs;

    mkident(&a, 4);
    mkrec(&v1, &a, RECORD_OFFER, 1, 1, NOW - 100, NOW + 10 * DAY, "guitar lessons", "music");
    mkrec(&gone, &a, RECORD_WITHDRAWN, 1, 2, NOW - 10, NOW + 10 * DAY, "", NULL);
    mkrec(&v2, &a, RECORD_OFFER, 1, 2, NOW - 20, NOW + 10 * DAY, "guitar lessons 2", NULL);

    assert_int_equal(put1(s, &v1, NULL), 0);
    assert_int_equal(put1(s, &gone, &it), 0);
    assert_true(it.replaced);
    assert_memory_equal(it.replaced_id, v1.id, RECORD_ID_BYTES);
    assert_int_equal(put1(s, &v1, NULL), PULL_ERR_STALE);
    /* an edit with the same seq but a higher id than the tombstone: refused too */
    if (memcmp(v2.id, gone.id, RECORD_ID_BYTES) > 0)
        assert_int_equal(put1(s, &v2, NULL), PULL_ERR_STALE);
    else
        assert_int_equal(put1(s, &v2, NULL), 0);
    assert_int_equal(store_stats(s, &st), 0);
    assert_int_equal(st.records, 1);
    assert_int_equal(st.by_kind[RECORD_OFFER] + st.by_kind[RECORD_WITHDRAWN], 1);
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_tag(s, "music", collect_rec, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(store_author_count(s, a.pk, &live, &tombs), 0);
    assert_int_equal(live + tombs, 1);
    /* survives a reopen */
    store_close(s);
    s = open_store(*state, NULL);
    assert_int_equal(put1(s, &v1, NULL), PULL_ERR_STALE);
    store_close(s);
}

static int
count_key(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    (void)created;
    return collect_key(ctx, created, id);
}

static void
test_sweep_expired(void **state)
{
    struct ident a, b;
    struct env ea, eb, ed, tomb, many[5];
    struct store *s = open_store(*state, NULL);
    struct store_stats st;
    struct collect c;
    uint8_t slot[RECORD_SLOT_BYTES] = {0};
    uint32_t live, tombs;

    mkident(&a, 5);
    mkident(&b, 6);
    mkrec(&ea, &a, RECORD_OFFER, 1, 1, NOW - 100, NOW + 100, "a", "x");
    mkrec(&eb, &a, RECORD_NEED, 2, 1, NOW - 100, NOW + 200, "b", "x");
    mkrec(&ed, &a, RECORD_OFFER, 3, 1, NOW - 100, NOW + 150, "d", "x");
    mkrec(&tomb, &a, RECORD_WITHDRAWN, 3, 2, NOW - 50, NOW + 150, "", NULL);
    assert_int_equal(put1(s, &ea, NULL), 0);
    assert_int_equal(put1(s, &eb, NULL), 0);
    assert_int_equal(put1(s, &ed, NULL), 0);
    assert_int_equal(put1(s, &tomb, NULL), 0);
    assert_int_equal(store_count(s), 3);

    /* nothing has expired yet */
    assert_int_equal(store_sweep(s, NOW + 99, 100, NULL, NULL), 0);
    assert_int_equal(store_count(s), 3);

    memset(&c, 0, sizeof(c));
    assert_int_equal(store_sweep(s, NOW + 100, 100, count_key, &c), 1);
    assert_int_equal(c.n, 1);
    assert_memory_equal(c.ids[0], ea.id, RECORD_ID_BYTES);
    assert_int_equal(c.created[0], NOW - 100);
    assert_false(stored(s, ea.id));
    assert_true(stored(s, eb.id));
    assert_true(stored(s, tomb.id));

    /* the tombstone goes at its own expiry, and (author, slot) is free again */
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_sweep(s, NOW + 150, 100, count_key, &c), 1);
    assert_memory_equal(c.ids[0], tomb.id, RECORD_ID_BYTES);
    slot[0] = 3;
    slot[15] = 0x77;
    assert_int_equal(store_latest(s, a.pk, slot, NULL, NULL, NULL), PULL_ERR_NOT_FOUND);
    assert_int_equal(store_author_count(s, a.pk, &live, &tombs), 0);
    assert_int_equal(live, 1);
    assert_int_equal(tombs, 0);
    /* the withdrawn version has expired as well, so its replay is refused anyway */
    {
        struct store_item it;
        memset(&it, 0, sizeof(it));
        it.bytes = ed.bytes;
        it.len = ed.len;
        assert_int_equal(store_put_batch(s, &it, 1, NOW + 151), 0);
        assert_int_equal(it.result, PULL_ERR_EXPIRED);
    }

    /* bounded work per call */
    for (int i = 0; i < 5; i++) {
        char t[16];
        snprintf(t, sizeof(t), "m%d", i);
        mkrec(&many[i], &b, RECORD_OFFER, (uint8_t)(10 + i), 1, NOW - 100, NOW + 300 + i, t, "y");
        assert_int_equal(put1(s, &many[i], NULL), 0);
    }
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_sweep(s, NOW + 1000, 2, count_key, &c), 2);
    assert_int_equal(c.n, 2);
    /* earliest expiry first: eb (NOW+200), then many[0] */
    assert_memory_equal(c.ids[0], eb.id, RECORD_ID_BYTES);
    assert_memory_equal(c.ids[1], many[0].id, RECORD_ID_BYTES);
    assert_int_equal(store_sweep(s, NOW + 1000, 2, count_key, &c), 2);
    assert_int_equal(store_sweep(s, NOW + 1000, 2, count_key, &c), 2);
    assert_int_equal(store_sweep(s, NOW + 1000, 2, count_key, &c), 0);
    assert_int_equal(c.n, 6);
    assert_int_equal(store_count(s), 0);
    assert_int_equal(store_stats(s, &st), 0);
    for (int k = 0; k < 8; k++)
        assert_int_equal(st.by_kind[k], 0);
    assert_int_equal(st.bytes, 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_tag(s, "y", collect_rec, &c), 0);
    assert_int_equal(store_iter_time(s, 0, collect_rec, &c), 0);
    assert_int_equal(store_iter_ids(s, collect_key, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(store_author_count(s, b.pk, &live, &tombs), 0);
    assert_int_equal(live + tombs, 0);
    assert_int_equal(store_sweep(s, NOW + 1000, 0, NULL, NULL), 0);
    store_close(s);
}

static void
test_duplicates(void **state)
{
    struct ident a;
    struct env e;
    struct store *s = open_store(*state, NULL);
    struct store_item items[3];

    mkident(&a, 7);
    mkoffer(&e, &a, 1, 1, "a duplicate");
    memset(items, 0, sizeof(items));
    for (int i = 0; i < 3; i++) {
        items[i].bytes = e.bytes;
        items[i].len = e.len;
    }
    assert_int_equal(store_put_batch(s, items, 3, NOW), 0);
    assert_int_equal(items[0].result, 0);
    assert_int_equal(items[1].result, PULL_ERR_DUPLICATE);
    assert_int_equal(items[2].result, PULL_ERR_DUPLICATE);
    assert_memory_equal(items[2].id, e.id, RECORD_ID_BYTES);
    assert_int_equal(put1(s, &e, NULL), PULL_ERR_DUPLICATE);
    assert_int_equal(store_count(s), 1);
    store_close(s);
}

static void
test_quota(void **state)
{
    struct ident a, b;
    struct env e[8], other, edit, gone, tomb2[3];
    struct store_opts o;
    struct store *s;
    uint32_t live, tombs;

    store_opts_init(&o);
    o.max_per_author = 5;
    s = open_store(*state, &o);
    mkident(&a, 8);
    mkident(&b, 9);
    for (int i = 0; i < 6; i++) {
        char t[16];
        snprintf(t, sizeof(t), "offer %d", i);
        mkoffer(&e[i], &a, (uint8_t)i, 1, t);
    }
    for (int i = 0; i < 5; i++)
        assert_int_equal(put1(s, &e[i], NULL), 0);
    assert_int_equal(put1(s, &e[5], NULL), PULL_ERR_QUOTA);
    assert_false(stored(s, e[5].id));
    /* another author is not affected */
    mkoffer(&other, &b, 0, 1, "b's offer");
    assert_int_equal(put1(s, &other, NULL), 0);
    /* an edit of a stored record doesn't add a live record */
    mkoffer(&edit, &a, 0, 2, "offer 0, edited");
    assert_int_equal(put1(s, &edit, NULL), 0);
    /* a withdrawal frees a live place */
    mkrec(&gone, &a, RECORD_WITHDRAWN, 1, 2, NOW - 10, NOW + 30 * DAY, "", NULL);
    assert_int_equal(put1(s, &gone, NULL), 0);
    assert_int_equal(store_author_count(s, a.pk, &live, &tombs), 0);
    assert_int_equal(live, 4);
    assert_int_equal(tombs, 1);
    assert_int_equal(put1(s, &e[5], NULL), 0);
    /* tombstones are bounded as well */
    for (int i = 0; i < 3; i++)
        mkrec(&tomb2[i], &a, RECORD_WITHDRAWN, (uint8_t)(100 + i), 1, NOW - 10, NOW + DAY, "",
              NULL);
    {
        struct store_opts o2 = o;
        store_close(s);
        o2.max_per_author = 2;
        s = open_store(*state, &o2);
        assert_int_equal(put1(s, &tomb2[0], NULL), 0);
        assert_int_equal(put1(s, &tomb2[1], NULL), PULL_ERR_QUOTA);
    }
    store_close(s);
}

/* rss_file_kb reads this process's resident file-backed memory (RssFile) in KiB. */
static long
rss_file_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static int
sum_len(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    uint64_t *sum = ctx;

    (void)id;
    for (size_t i = 0; i < len; i += 64)
        *sum += env[i];
    return 0;
}

/* store_trim drops the map's pages from the resident set and the data stays readable. */
static void
test_trim(void **state)
{
    struct ident a;
    struct store *s = open_store(*state, NULL);
    struct env *e = malloc(sizeof(*e));
    struct store_item it;
    uint64_t sum1 = 0, sum2 = 0;
    long before, after;
    int n = 0;

    assert_non_null(e);
    /* 4,000 records of ~3 KiB: ~12 MiB of pages */
    for (uint8_t au = 0; au < 16; au++) {
        mkident(&a, (uint8_t)(100 + au));
        for (int i = 0; i < 250; i++, n++) {
            char title[32];
            struct record *rec = malloc(sizeof(*rec));
            struct pull_wb wb;

            assert_non_null(rec);
            record_init(rec);
            rec->kind = RECORD_OFFER;
            memcpy(rec->author, a.pk, 32);
            rec->slot[0] = (uint8_t)i;
            rec->slot[1] = (uint8_t)(i >> 8);
            rec->seq = 1;
            rec->created = NOW - 5000 + (uint64_t)n;
            rec->expires = NOW + DAY;
            snprintf(title, sizeof(title), "trim %d", n);
            snprintf(rec->title, sizeof(rec->title), "%s", title);
            memset(rec->body, 'x', 3000);
            rec->body[3000] = '\0';
            wb_init(&wb, RECORD_ENVELOPE_MAX);
            assert_int_equal(record_sign(rec, &a, &wb, e->id), 0);
            memset(&it, 0, sizeof(it));
            it.bytes = wb.p;
            it.len = wb.len;
            assert_int_equal(store_put_batch(s, &it, 1, NOW), 0);
            assert_int_equal(it.result, 0);
            wb_release(&wb);
            free(rec);
        }
    }
    assert_int_equal(store_iter_time(s, 0, sum_len, &sum1), 0);
    before = rss_file_kb();
    assert_int_equal(store_trim(s), 0);
    after = rss_file_kb();
    if (before >= 0) {
        /* the ~12 MiB the walk mapped are gone from the resident set */
        print_message("VmRSS %ld kB -> %ld kB\n", before, after);
        assert_true(after + 8 * 1024 < before);
    }
    assert_int_equal(store_iter_time(s, 0, sum_len, &sum2), 0);
    assert_true(sum1 == sum2 && sum1 > 0);
    assert_int_equal(store_count(s), 4000);
    free(e);
    store_close(s);
}

static void
test_time_order(void **state)
{
    struct ident a;
    struct env e[20];
    struct store *s = open_store(*state, NULL);
    struct store_item items[20];
    struct collect c;
    /* created times deliberately out of order */
    static const unsigned off[20] = {5, 19, 3, 11, 0, 7,  15, 2,  9,  13,
                                     1, 18, 4, 12, 6, 17, 8,  16, 10, 14};

    mkident(&a, 10);
    memset(items, 0, sizeof(items));
    for (int i = 0; i < 20; i++) {
        char t[16];
        snprintf(t, sizeof(t), "r%d", i);
        mkrec(&e[i], &a, RECORD_OFFER, (uint8_t)i, 1, NOW - 1000 + off[i] * 10, NOW + DAY, t, NULL);
        items[i].bytes = e[i].bytes;
        items[i].len = e[i].len;
    }
    assert_int_equal(store_put_batch(s, items, 20, NOW), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(items[i].result, 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_time(s, 0, collect_rec, &c), 0);
    assert_int_equal(c.n, 20);
    for (size_t i = 1; i < c.n; i++)
        assert_true(c.created[i - 1] < c.created[i]);
    assert_int_equal(c.created[0], NOW - 1000);
    /* since */
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_time(s, NOW - 1000 + 150, collect_rec, &c), 0);
    assert_int_equal(c.n, 5);
    assert_int_equal(c.created[0], NOW - 1000 + 150);
    /* keys in time order, same sequence */
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_keys(s, 0, collect_key, &c), 0);
    assert_int_equal(c.n, 20);
    for (size_t i = 1; i < c.n; i++)
        assert_true(c.created[i - 1] < c.created[i]);
    /* ids in byte order */
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_ids(s, collect_key, &c), 0);
    assert_int_equal(c.n, 20);
    for (size_t i = 1; i < c.n; i++)
        assert_true(memcmp(c.ids[i - 1], c.ids[i], RECORD_ID_BYTES) < 0);
    /* a callback stops the walk; its value comes back */
    memset(&c, 0, sizeof(c));
    c.stop_after = 3;
    assert_int_equal(store_iter_time(s, 0, collect_rec, &c), 7);
    assert_int_equal(c.n, 3);
    memset(&c, 0, sizeof(c));
    c.stop_after = 4;
    assert_int_equal(store_iter_ids(s, collect_key, &c), 7);
    assert_int_equal(c.n, 4);
    /* by author, in time order */
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_author(s, a.pk, collect_rec, &c), 0);
    assert_int_equal(c.n, 20);
    for (size_t i = 1; i < c.n; i++)
        assert_true(c.created[i - 1] < c.created[i]);
    store_close(s);
}

static void
test_tag_iteration(void **state)
{
    struct ident a, b;
    struct env e[5];
    struct store *s = open_store(*state, NULL);
    struct collect c;

    mkident(&a, 11);
    mkident(&b, 12);
    mkrec(&e[0], &a, RECORD_OFFER, 1, 1, NOW - 40, NOW + DAY, "rust mentoring", "rust mentor");
    mkrec(&e[1], &b, RECORD_NEED, 1, 1, NOW - 30, NOW + DAY, "a rust mentor", "rust");
    mkrec(&e[2], &a, RECORD_OFFER, 2, 1, NOW - 20, NOW + DAY, "rusty bikes", "rusty bike");
    mkrec(&e[3], &b, RECORD_OFFER, 2, 1, NOW - 10, NOW + DAY, "c review", "c code-review");
    mkrec(&e[4], &b, RECORD_OFFER, 3, 1, NOW - 5, NOW + DAY, "no tags", NULL);
    for (int i = 0; i < 5; i++)
        assert_int_equal(put1(s, &e[i], NULL), 0);
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_tag(s, "rust", collect_rec, &c), 0);
    assert_int_equal(c.n, 2);
    assert_memory_equal(c.ids[0], e[0].id, RECORD_ID_BYTES); /* oldest first */
    assert_memory_equal(c.ids[1], e[1].id, RECORD_ID_BYTES);
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_tag(s, "rus", collect_rec, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(store_iter_tag(s, "rusty", collect_rec, &c), 0);
    assert_int_equal(c.n, 1);
    assert_true(collected(&c, e[2].id));
    memset(&c, 0, sizeof(c));
    assert_int_equal(store_iter_tag(s, "c", collect_rec, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(store_iter_tag(s, "code-review", collect_rec, &c), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(store_iter_tag(s, "", collect_rec, &c), PULL_ERR_INVAL);
    assert_int_equal(store_iter_tag(s, "a-tag-that-is-much-longer-than-32-bytes", collect_rec, &c),
                     0);
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    assert_int_equal(store_iter_tag(s, "rust", collect_rec, &c), 7);
    store_close(s);
}

static void
test_prefix_resolution(void **state)
{
    struct ident a;
    struct env e;
    struct store *s = open_store(*state, NULL);
    struct store_item items[40];
    struct env *es = malloc(40 * sizeof(*es));
    struct ident_prefix p;
    char text[IDENT_TEXT_LEN + 1];
    uint8_t id[RECORD_ID_BYTES];

    assert_non_null(es);
    mkident(&a, 13);
    /* empty store */
    memset(&p, 0, sizeof(p));
    p.nbits = 4;
    assert_int_equal(store_resolve_prefix(s, &p, id), PULL_ERR_NOT_FOUND);

    memset(items, 0, sizeof(items));
    for (int i = 0; i < 40; i++) {
        char t[16];
        snprintf(t, sizeof(t), "p%d", i);
        mkoffer(&es[i], &a, (uint8_t)i, 1, t);
        items[i].bytes = es[i].bytes;
        items[i].len = es[i].len;
    }
    assert_int_equal(store_put_batch(s, items, 40, NOW), 0);
    for (int i = 0; i < 40; i++) {
        /* the full text form and a 10-character prefix resolve to the id */
        ident_to_text(es[i].id, text);
        assert_int_equal(ident_prefix_parse(text, &p), 0);
        assert_int_equal(store_resolve_prefix(s, &p, id), 0);
        assert_memory_equal(id, es[i].id, RECORD_ID_BYTES);
        text[10] = '\0';
        assert_int_equal(ident_prefix_parse(text, &p), 0);
        assert_int_equal(store_resolve_prefix(s, &p, id), 0);
        assert_memory_equal(id, es[i].id, RECORD_ID_BYTES);
    }
    /* 40 ids in 16 buckets of 4 bits: some bucket holds two */
    for (unsigned v = 0; v < 16; v++) {
        int n = 0, rc;
        for (int i = 0; i < 40; i++)
            n += (es[i].id[0] >> 4) == v;
        memset(&p, 0, sizeof(p));
        p.bytes[0] = (uint8_t)(v << 4 | 0x0f); /* bits past nbits are ignored */
        p.nbits = 4;
        rc = store_resolve_prefix(s, &p, id);
        if (n == 0)
            assert_int_equal(rc, PULL_ERR_NOT_FOUND);
        else if (n == 1)
            assert_int_equal(rc, 0);
        else
            assert_int_equal(rc, PULL_ERR_AMBIGUOUS);
    }
    /* a prefix that matches nothing although ids around it exist */
    mkoffer(&e, &a, 200, 1, "not stored");
    ident_to_text(e.id, text);
    assert_int_equal(ident_prefix_parse(text, &p), 0);
    assert_int_equal(store_resolve_prefix(s, &p, id), PULL_ERR_NOT_FOUND);
    p.nbits = 257;
    assert_int_equal(store_resolve_prefix(s, &p, id), PULL_ERR_INVAL);
    free(es);
    store_close(s);
}

struct kv_seen {
    int n;
    uint8_t last[32];
    size_t total;
};

static int
kv_count(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len)
{
    struct kv_seen *k = ctx;

    (void)val;
    if (k->n > 0)
        assert_true(memcmp(k->last, key, 32) < 0);
    memcpy(k->last, key, 32);
    k->n++;
    k->total += len;
    return 0;
}

static void
test_peers_dyads_tables(void **state)
{
    struct store *s = open_store(*state, NULL);
    uint8_t k1[32], k2[32], k3[32];
    struct pull_wb wb;
    struct kv_seen seen;
    uint8_t *big = calloc(1, STORE_KV_MAX + 1);

    assert_non_null(big);
    memset(k1, 1, 32);
    memset(k2, 2, 32);
    memset(k3, 3, 32);
    wb_init(&wb, 0);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_kv_iter(s, STORE_PEERS, kv_count, &seen), 0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(store_kv_get(s, STORE_PEERS, k1, &wb), PULL_ERR_NOT_FOUND);

    assert_int_equal(store_kv_put(s, STORE_PEERS, k2, "peer two", 8), 0);
    assert_int_equal(store_kv_put(s, STORE_PEERS, k1, "peer one", 8), 0);
    assert_int_equal(store_kv_put(s, STORE_PEERS, k3, NULL, 0), 0); /* empty value */
    assert_int_equal(store_kv_put(s, STORE_DYADS, k1, "dyad", 4), 0);
    assert_int_equal(store_kv_put(s, STORE_MAIL, k1, "sealed", 6), 0);
    assert_int_equal(store_kv_put(s, STORE_PEERS, k1, "peer ONE", 8), 0); /* replace */
    assert_int_equal(store_kv_put(s, STORE_PEERS, k1, big, STORE_KV_MAX + 1), PULL_ERR_TOO_BIG);
    assert_int_equal(store_kv_put(s, (enum store_table)9, k1, "x", 1), PULL_ERR_INVAL);

    assert_int_equal(store_kv_get(s, STORE_PEERS, k1, &wb), 0);
    assert_int_equal(wb.len, 8);
    assert_memory_equal(wb.p, "peer ONE", 8);
    wb_reset(&wb);
    assert_int_equal(store_kv_get(s, STORE_DYADS, k1, &wb), 0);
    assert_memory_equal(wb.p, "dyad", 4);
    wb_reset(&wb);
    assert_int_equal(store_kv_get(s, STORE_DYADS, k2, &wb), PULL_ERR_NOT_FOUND);
    assert_int_equal(store_kv_get(s, STORE_PEERS, k3, &wb), 0);
    assert_int_equal(wb.len, 0);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_kv_iter(s, STORE_PEERS, kv_count, &seen), 0);
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen.total, 16);

    /* a large value round-trips */
    memset(big, 0xc3, STORE_KV_MAX);
    assert_int_equal(store_kv_put(s, STORE_MAIL, k2, big, STORE_KV_MAX), 0);
    wb_reset(&wb);
    assert_int_equal(store_kv_get(s, STORE_MAIL, k2, &wb), 0);
    assert_int_equal(wb.len, STORE_KV_MAX);
    assert_memory_equal(wb.p, big, STORE_KV_MAX);

    assert_int_equal(store_kv_del(s, STORE_PEERS, k2), 0);
    assert_int_equal(store_kv_del(s, STORE_PEERS, k2), PULL_ERR_NOT_FOUND);
    store_close(s);
    s = open_store(*state, NULL);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_kv_iter(s, STORE_PEERS, kv_count, &seen), 0);
    assert_int_equal(seen.n, 2);
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(store_kv_iter(s, STORE_MAIL, kv_count, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_int_equal(store_count(s), 0); /* records untouched */
    wb_release(&wb);
    free(big);
    store_close(s);
}

/* The tables of people (names, handles, trust) and finding a key by its text prefix. */
static void
test_people_tables(void **state)
{
    struct store *s = open_store(*state, NULL);
    uint8_t k1[32], k2[32], k3[32], got[32];
    char text[IDENT_TEXT_LEN + 1];
    struct ident_prefix p;
    struct pull_wb wb;

    memset(k1, 0x11, 32);
    memcpy(k2, k1, 32);
    k2[31] = 0x12; /* shares 31 bytes with k1 */
    memset(k3, 0x90, 32);
    wb_init(&wb, 0);
    assert_int_equal(store_kv_put(s, STORE_NAMES, k1, "Ada", 3), 0);
    assert_int_equal(store_kv_put(s, STORE_HANDLES, k1, "h1", 2), 0);
    assert_int_equal(store_kv_put(s, STORE_HANDLES, k2, "h2", 2), 0);
    assert_int_equal(store_kv_put(s, STORE_TRUST, k3, "edge", 4), 0);
    assert_int_equal(store_kv_get(s, STORE_NAMES, k1, &wb), 0);
    assert_memory_equal(wb.p, "Ada", 3);
    assert_int_equal(store_kv_get(s, STORE_NAMES, k2, NULL), PULL_ERR_NOT_FOUND);

    ident_to_text(k3, text);
    text[8] = '\0';
    assert_int_equal(ident_prefix_parse(text, &p), 0);
    assert_int_equal(store_kv_resolve_prefix(s, STORE_TRUST, &p, got), 0);
    assert_memory_equal(got, k3, 32);
    assert_int_equal(store_kv_resolve_prefix(s, STORE_HANDLES, &p, got), PULL_ERR_NOT_FOUND);
    ident_to_text(k1, text);
    text[10] = '\0';
    assert_int_equal(ident_prefix_parse(text, &p), 0);
    assert_int_equal(store_kv_resolve_prefix(s, STORE_HANDLES, &p, got), PULL_ERR_AMBIGUOUS);
    ident_to_text(k2, text);
    assert_int_equal(ident_prefix_parse(text, &p), 0);
    assert_int_equal(store_kv_resolve_prefix(s, STORE_HANDLES, &p, got), 0);
    assert_memory_equal(got, k2, 32);
    assert_int_equal(store_kv_resolve_prefix(s, (enum store_table)9, &p, got), PULL_ERR_INVAL);
    /* they survive a reopen */
    store_close(s);
    s = open_store(*state, NULL);
    wb_reset(&wb);
    assert_int_equal(store_kv_get(s, STORE_TRUST, k3, &wb), 0);
    assert_memory_equal(wb.p, "edge", 4);
    wb_release(&wb);
    store_close(s);
}

/* Start with the smallest map; inserting must grow it, transparently. */
static void
test_map_growth(void **state)
{
    struct ident a[10];
    struct store_opts o;
    struct store *s;
    struct store_stats st;
    struct env *es = malloc(2000 * sizeof(*es));
    struct store_item items[100];
    uint64_t first_map;

    assert_non_null(es);
    store_opts_init(&o);
    o.map_size = 1; /* rounded up to the minimum */
    o.sync = STORE_SYNC_NONE;
    s = open_store(*state, &o);
    assert_int_equal(store_stats(s, &st), 0);
    first_map = st.map_size;
    assert_true(first_map <= 256 * 1024);
    for (int i = 0; i < 10; i++)
        mkident(&a[i], (uint8_t)(20 + i));
    for (int i = 0; i < 2000; i++) {
        char t[64];
        snprintf(t, sizeof(t), "record number %d with some words in its title", i);
        mkrec(&es[i], &a[i % 10], RECORD_OFFER, (uint8_t)(i / 10), 1, NOW - (uint64_t)i, NOW + DAY,
              t, "growth test");
    }
    for (int b = 0; b < 20; b++) {
        memset(items, 0, sizeof(items));
        for (int i = 0; i < 100; i++) {
            items[i].bytes = es[b * 100 + i].bytes;
            items[i].len = es[b * 100 + i].len;
        }
        assert_int_equal(store_put_batch(s, items, 100, NOW), 0);
        for (int i = 0; i < 100; i++)
            assert_int_equal(items[i].result, 0);
    }
    assert_int_equal(store_stats(s, &st), 0);
    assert_true(st.map_size >= 4 * first_map);
    assert_int_equal(st.records, 2000);
    store_close(s);
    s = open_store(*state, &o);
    assert_int_equal(store_count(s), 2000);
    for (int i = 0; i < 2000; i += 7)
        assert_true(stored(s, es[i].id));
    store_close(s);
    free(es);
}

/* The commit in three steps, its transaction on another thread (as pulld's writer runs
 * it): reads in between see the store as it was, store_author_count_seen tells when the
 * commit is in, a full map comes back as PULL_ERR_AGAIN for the caller to grow and run
 * again, and a second commit waits for the first. */
struct runner {
    struct store *s;
    struct store_commit *c;
    int rc;
};

static void *
run_commit(void *arg)
{
    struct runner *r = arg;

    r->rc = store_commit_run(r->s, r->c);
    return NULL;
}

/* opts.tag_kinds: only the kinds asked for are indexed by tag; a store written with every
 * kind indexed and reopened with fewer still loses a removed record's tag entries. */
static void
test_tag_kinds(void **state)
{
    struct store_opts o;
    struct store *s;
    struct ident a;
    struct env off1, off2, need1;
    struct store_item it;
    struct collect *c = calloc(1, sizeof(*c));

    assert_non_null(c);
    mkident(&a, 7);
    mkrec(&off1, &a, RECORD_OFFER, 1, 1, NOW - 100, NOW + DAY, "offer v1", "alpha");
    mkrec(&off2, &a, RECORD_OFFER, 1, 2, NOW - 50, NOW + DAY, "offer v2", "alpha");
    mkrec(&need1, &a, RECORD_NEED, 2, 1, NOW - 40, NOW + DAY, "a need", "alpha");
    /* every kind indexed (the default): the offer is found by its tag */
    s = open_store(*state, NULL);
    assert_int_equal(put1(s, &off1, &it), 0);
    assert_int_equal(store_iter_tag(s, "alpha", collect_rec, c), 0);
    assert_int_equal(c->n, 1);
    store_close(s);
    /* needs only: the new offer version is not indexed, the old one's entry goes with it */
    store_opts_init(&o);
    o.tag_kinds = 1u << RECORD_NEED;
    s = open_store(*state, &o);
    assert_int_equal(put1(s, &off2, &it), 0);
    assert_true(it.replaced);
    assert_int_equal(put1(s, &need1, &it), 0);
    memset(c, 0, sizeof(*c));
    assert_int_equal(store_iter_tag(s, "alpha", collect_rec, c), 0);
    assert_int_equal(c->n, 1);
    assert_memory_equal(c->ids[0], need1.id, RECORD_ID_BYTES);
    assert_true(stored(s, off2.id));
    store_close(s);
    free(c);
}

/* A commit leaves room in the map for twice what it added, so the next one of the same
 * size runs once: from the smallest map, only the first commits grow it by running
 * again. Records are handed over without their decoded form (rec NULL): the store decodes
 * them itself. */
static void
test_commit_grows_ahead(void **state)
{
    enum { AUTHORS = 48, PER = 1000, COMMITS = 12 };
    struct ident a[AUTHORS];
    struct store_opts o;
    struct store *s;
    struct env *es = malloc((size_t)PER * COMMITS * sizeof(*es));
    struct envelope *env = malloc(PER * sizeof(*env));
    struct store_opened *items = calloc(PER, sizeof(*items));
    struct record rec;
    int agains[COMMITS] = {0};

    assert_non_null(es);
    assert_non_null(env);
    assert_non_null(items);
    store_opts_init(&o);
    o.map_size = 1;
    o.sync = STORE_SYNC_NONE;
    s = open_store(*state, &o);
    for (int i = 0; i < AUTHORS; i++)
        mkident(&a[i], (uint8_t)(100 + i));
    for (int i = 0; i < PER * COMMITS; i++) {
        char t[64];
        snprintf(t, sizeof(t), "record %d, grown for ahead of time", i);
        mkrec(&es[i], &a[i % AUTHORS], RECORD_OFFER, (uint8_t)(i / AUTHORS), 1, NOW - (uint64_t)i,
              NOW + DAY, t, "ahead");
    }
    for (int b = 0; b < COMMITS; b++) {
        struct store_commit c;
        int rc;

        for (int i = 0; i < PER; i++) {
            struct env *e = &es[b * PER + i];
            assert_int_equal(envelope_open(e->bytes, e->len, NOW, &env[i], &rec), 0);
            memset(&items[i], 0, sizeof(items[i]));
            items[i].env = &env[i];
            items[i].rec = NULL; /* the store decodes it */
        }
        memset(&c, 0, sizeof(c));
        c.recs = items;
        c.nrecs = PER;
        assert_int_equal(store_commit_begin(s, &c, NOW), 0);
        while ((rc = store_commit_end(s, &c, store_commit_run(s, &c))) == PULL_ERR_AGAIN)
            agains[b]++;
        assert_int_equal(rc, 0);
        for (int i = 0; i < PER; i++)
            assert_int_equal(items[i].result, 0);
        assert_int_equal(store_count(s), (uint64_t)(b + 1) * PER);
    }
    assert_true(agains[0] > 0); /* the smallest map: the first commit grew it */
    for (int b = 2; b < COMMITS; b++)
        assert_int_equal(agains[b], 0);
    /* a record decoded by the store reads back whole */
    assert_true(stored(s, es[PER * COMMITS - 1].id));
    store_close(s);
    free(items);
    free(env);
    free(es);
}

static void
test_commit_in_steps(void **state)
{
    struct ident a[12];
    struct store_opts o;
    struct store *s;
    struct store_stats st;
    struct env *es = malloc(1200 * sizeof(*es));
    struct envelope *env = malloc(100 * sizeof(*env));
    struct record *rec = malloc(100 * sizeof(*rec));
    struct store_opened items[100];
    uint64_t first_map;
    int agains = 0;

    assert_non_null(es);
    assert_non_null(env);
    assert_non_null(rec);
    store_opts_init(&o);
    o.map_size = 1; /* the smallest: the commits must grow it */
    o.sync = STORE_SYNC_NONE;
    s = open_store(*state, &o);
    assert_int_equal(store_stats(s, &st), 0);
    first_map = st.map_size;
    for (int i = 0; i < 12; i++)
        mkident(&a[i], (uint8_t)(40 + i));
    for (int i = 0; i < 1200; i++) {
        char t[64];
        snprintf(t, sizeof(t), "record %d of a commit on a thread", i);
        mkrec(&es[i], &a[i % 12], RECORD_OFFER, (uint8_t)(i / 12), 1, NOW - (uint64_t)i, NOW + DAY,
              t, "threaded commit");
    }
    for (int b = 0; b < 12; b++) {
        struct store_commit c, other;
        struct runner r;
        pthread_t th;
        uint32_t live = 0, before = 0;
        bool seen = true;
        int rc;

        memset(items, 0, sizeof(items));
        for (int i = 0; i < 100; i++) {
            struct env *e = &es[b * 100 + i];
            assert_int_equal(envelope_open(e->bytes, e->len, NOW, &env[i], &rec[i]), 0);
            items[i].env = &env[i];
            items[i].rec = &rec[i];
        }
        memset(&c, 0, sizeof(c));
        c.recs = items;
        c.nrecs = 100;
        assert_int_equal(store_commit_begin(s, &c, NOW), 0);
        assert_non_null(c.st);
        /* one commit at a time */
        memset(&other, 0, sizeof(other));
        other.recs = items;
        other.nrecs = 1;
        assert_int_equal(store_commit_begin(s, &other, NOW), PULL_ERR_STATE);
        assert_int_equal(store_author_count_seen(s, a[0].pk, &before, NULL, &seen), 0);
        assert_false(seen);
        for (;;) {
            r.s = s;
            r.c = &c;
            assert_int_equal(pthread_create(&th, NULL, run_commit, &r), 0);
            /* the loop's reads go on meanwhile */
            assert_int_equal(store_count(s), (uint64_t)b * 100);
            if (b > 0)
                assert_true(stored(s, es[b * 100 - 1].id));
            assert_int_equal(pthread_join(th, NULL), 0);
            if (r.rc == 0) {
                /* committed, not yet ended: the counts have it, the store says so */
                assert_int_equal(store_author_count_seen(s, a[0].pk, &live, NULL, &seen), 0);
                assert_true(seen);
                uint32_t mine = 0;
                for (int i = b * 100; i < b * 100 + 100; i++)
                    mine += i % 12 == 0;
                assert_int_equal(live, before + mine);
            }
            rc = store_commit_end(s, &c, r.rc);
            if (rc != PULL_ERR_AGAIN)
                break;
            agains++; /* the map grew: run it again */
            assert_non_null(c.st);
        }
        assert_int_equal(rc, 0);
        assert_null(c.st);
        for (int i = 0; i < 100; i++)
            assert_int_equal(items[i].result, 0);
        assert_int_equal(store_count(s), (uint64_t)(b + 1) * 100);
        assert_int_equal(store_author_count_seen(s, a[0].pk, &live, NULL, &seen), 0);
        assert_false(seen); /* no commit between begin and end */
    }
    assert_true(agains > 0);
    assert_int_equal(store_stats(s, &st), 0);
    assert_true(st.map_size > first_map);
    store_close(s);
    s = open_store(*state, &o);
    assert_int_equal(store_count(s), 1200);
    for (int i = 0; i < 1200; i += 7)
        assert_true(stored(s, es[i].id));
    store_close(s);
    free(es);
    free(env);
    free(rec);
}

/* When the map can't grow any more: STORE_FULL, nothing of the batch stored, still readable. */
static void
test_store_full(void **state)
{
    struct ident a[20];
    struct store_opts o;
    struct store *s;
    struct store_stats st;
    struct env *es = malloc(4000 * sizeof(*es));
    struct store_item items[50];
    int stored_n = 0, rc = 0, b;

    assert_non_null(es);
    store_opts_init(&o);
    o.map_size = 64 * 1024;
    o.map_max = 512 * 1024;
    o.sync = STORE_SYNC_NONE;
    s = open_store(*state, &o);
    for (int i = 0; i < 20; i++)
        mkident(&a[i], (uint8_t)(40 + i));
    for (b = 0; b < 80; b++) {
        memset(items, 0, sizeof(items));
        for (int i = 0; i < 50; i++) {
            int k = b * 50 + i;
            char t[100];
            snprintf(t, sizeof(t), "filling the map with record %d and a longer title", k);
            mkrec(&es[k], &a[k % 20], RECORD_OFFER, (uint8_t)(k / 20), 1, NOW - (uint64_t)k,
                  NOW + DAY, t, "full");
            items[i].bytes = es[k].bytes;
            items[i].len = es[k].len;
        }
        rc = store_put_batch(s, items, 50, NOW);
        if (rc != 0)
            break;
        stored_n += 50;
    }
    assert_int_equal(rc, PULL_ERR_STORE_FULL);
    assert_true(stored_n > 0);
    assert_int_equal(store_count(s), (uint64_t)stored_n);
    assert_int_equal(store_stats(s, &st), 0);
    assert_int_equal(st.map_size, 512 * 1024);
    for (int k = 0; k < stored_n; k += 13)
        assert_true(stored(s, es[k].id));
    assert_false(stored(s, es[stored_n].id)); /* nothing of the failed batch */
    store_close(s);
    s = open_store(*state, &o);
    assert_int_equal(store_count(s), (uint64_t)stored_n);
    assert_true(stored(s, es[0].id));
    store_close(s);
    free(es);
}

/* A disk that refuses to grow the file (simulated with RLIMIT_FSIZE, which makes writes past
 * the limit fail with EFBIG like ENOSPC would): STORE_FULL, and the store stays readable.
 * With pwrite, the map has room and the file system doesn't; with MDB_WRITEMAP, the map's
 * blocks are reserved before it grows, and the reservation is what the disk refuses (a
 * write through the map into a hole would be SIGBUS instead). */
static void
disk_full(void **state, bool writemap)
{
    struct ident a[20];
    struct store_opts o;
    struct store *s;
    struct env *es = malloc(3000 * sizeof(*es));
    struct store_item items[50];
    struct rlimit old, lim;
    void (*old_handler)(int);
    int stored_n = 0, rc = 0;

    assert_non_null(es);
    store_opts_init(&o);
    o.no_writemap = !writemap;
    o.map_size = writemap ? 256 * 1024 : 64ull << 20;
    s = open_store(*state, &o);
    {
        struct store_stats st;
        assert_int_equal(store_stats(s, &st), 0);
        if (writemap && !st.writemap)
            skip(); /* not on a file system that overwrites in place */
        assert_int_equal(st.writemap, writemap);
    }
    for (int i = 0; i < 20; i++)
        mkident(&a[i], (uint8_t)(70 + i));
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 512 * 1024;
    old_handler = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    for (int b = 0; b < 60; b++) {
        memset(items, 0, sizeof(items));
        for (int i = 0; i < 50; i++) {
            int k = b * 50 + i;
            char t[100];
            snprintf(t, sizeof(t), "a record that will not fit on this small disk %d", k);
            mkrec(&es[k], &a[k % 20], RECORD_OFFER, (uint8_t)(k / 20), 1, NOW - (uint64_t)k,
                  NOW + DAY, t, "disk");
            items[i].bytes = es[k].bytes;
            items[i].len = es[k].len;
        }
        rc = store_put_batch(s, items, 50, NOW);
        if (rc != 0)
            break;
        stored_n += 50;
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(rc, PULL_ERR_STORE_FULL);
    assert_true(stored_n > 0);
    /* readable: everything committed before is there, nothing of the failed batch */
    assert_int_equal(store_count(s), (uint64_t)stored_n);
    for (int k = 0; k < stored_n; k += 11)
        assert_true(stored(s, es[k].id));
    assert_false(stored(s, es[stored_n].id));
    /* with room again, writing works, on the same handle and after a reopen */
    assert_int_equal(put1(s, &es[stored_n], NULL), 0);
    store_close(s);
    s = open_store(*state, &o);
    assert_int_equal(store_count(s), (uint64_t)stored_n + 1);
    assert_true(stored(s, es[stored_n - 1].id));
    assert_int_equal(put1(s, &es[stored_n + 1], NULL), 0);
    store_close(s);
    free(es);
}

/* One store, opened in turn with and without MDB_WRITEMAP: the same records, and the
 * writemap map grows in reserved steps (the file's blocks cover the map). */
static void
test_writemap_switch(void **state)
{
    struct ident a;
    struct store_opts o;
    struct store_stats st;
    struct store *s;
    struct env *es = malloc(600 * sizeof(*es));
    struct stat sb;
    char path[512];

    assert_non_null(es);
    mkident(&a, 91);
    for (int k = 0; k < 600; k++) {
        char t[64];
        snprintf(t, sizeof(t), "a record that moves between modes %d", k);
        mkrec(&es[k], &a, RECORD_OFFER, (uint8_t)(k % 200), (uint64_t)(1 + k / 200),
              NOW - 1000 + (uint64_t)k, NOW + DAY, t, "modes");
    }
    store_opts_init(&o);
    o.sync = STORE_SYNC_NONE;
    o.max_per_author = 1000;
    for (int round = 0; round < 3; round++) {
        o.no_writemap = round == 1;
        s = open_store(*state, &o);
        assert_int_equal(store_stats(s, &st), 0);
        if (round != 1 && !st.writemap) {
            store_close(s);
            free(es);
            skip(); /* not on a file system that overwrites in place */
        }
        assert_int_equal(st.writemap, round != 1);
        for (int k = round * 200; k < round * 200 + 200; k++)
            assert_int_equal(put1(s, &es[k], NULL), 0);
        assert_int_equal(store_count(s), 200);
        for (int k = round * 200; k < round * 200 + 200; k += 7)
            assert_true(stored(s, es[k].id));
        assert_int_equal(store_stats(s, &st), 0);
        assert_true(st.map_used <= st.map_size);
        snprintf(path, sizeof(path), "%s/data.mdb", (const char *)*state);
        assert_int_equal(stat(path, &sb), 0);
        if (st.writemap) /* every page of the map has its block */
            assert_true((uint64_t)sb.st_blocks * 512 >= st.map_size);
        store_close(s);
    }
    free(es);
}

static void
test_disk_full(void **state)
{
    disk_full(state, false);
}

static void
test_disk_full_writemap(void **state)
{
    disk_full(state, true);
}

/* One batch gives exactly what the same items stored one by one give: results, replaced
 * ids, final contents and counters. Items of a few authors and slots, with edits,
 * withdrawals, duplicates and a small quota, in a random order. */
static uint64_t
xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static int
collect_all(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    return collect_key(ctx, created, id);
}

static void
test_batch_equals_sequential(void **state)
{
    enum { N = 120 };
    struct ident a[3];
    struct env *es = malloc(N * sizeof(*es));
    struct store_item *seq_items = calloc(N, sizeof(*seq_items));
    struct store_item *bat_items = calloc(N, sizeof(*bat_items));
    struct store_opts o;
    struct store *s1, *s2;
    struct store_stats st1, st2;
    struct collect *c1 = calloc(1, sizeof(*c1)), *c2 = calloc(1, sizeof(*c2));
    char dir2[4096];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int dup_from = -1;

    assert_non_null(es);
    assert_non_null(seq_items);
    assert_non_null(bat_items);
    assert_non_null(c1);
    assert_non_null(c2);
    for (int i = 0; i < 3; i++)
        mkident(&a[i], (uint8_t)(90 + i));
    for (int i = 0; i < N; i++) {
        int au = (int)(xorshift(&x) % 3), slot = (int)(xorshift(&x) % 5);
        uint64_t sq = 1 + xorshift(&x) % 4;
        bool gone = xorshift(&x) % 6 == 0;
        char t[32];
        if (i > 10 && xorshift(&x) % 10 == 0) {
            /* a duplicate, of the previous item or of any earlier one */
            es[i] = es[xorshift(&x) % 2 ? (uint64_t)(i - 1) : xorshift(&x) % (uint64_t)i];
            dup_from = i;
            continue;
        }
        snprintf(t, sizeof(t), "item %d", i);
        mkrec(&es[i], &a[au], gone ? RECORD_WITHDRAWN : RECORD_OFFER, (uint8_t)slot, sq,
              NOW - 1000 + xorshift(&x) % 900, NOW + DAY + xorshift(&x) % DAY, t,
              xorshift(&x) % 2 ? "alpha beta" : "beta");
    }
    assert_true(dup_from > 0);
    store_opts_init(&o);
    o.max_per_author = 3;
    o.sync = STORE_SYNC_NONE;
    s1 = open_store(*state, &o);
    snprintf(dir2, sizeof(dir2), "%s/second", (const char *)*state);
    s2 = open_store(dir2, &o);
    for (int i = 0; i < N; i++) {
        seq_items[i].bytes = bat_items[i].bytes = es[i].bytes;
        seq_items[i].len = bat_items[i].len = es[i].len;
        assert_int_equal(store_put_batch(s1, &seq_items[i], 1, NOW), 0);
    }
    assert_int_equal(store_put_batch(s2, bat_items, N, NOW), 0);
    {
        int stored_n = 0, stale = 0, quota = 0, dups = 0, replaced = 0;
        for (int i = 0; i < N; i++) {
            assert_int_equal(bat_items[i].result, seq_items[i].result);
            assert_int_equal(bat_items[i].replaced, seq_items[i].replaced);
            if (seq_items[i].replaced)
                assert_memory_equal(bat_items[i].replaced_id, seq_items[i].replaced_id,
                                    RECORD_ID_BYTES);
            stored_n += seq_items[i].result == 0;
            stale += seq_items[i].result == PULL_ERR_STALE;
            quota += seq_items[i].result == PULL_ERR_QUOTA;
            dups += seq_items[i].result == PULL_ERR_DUPLICATE;
            replaced += seq_items[i].replaced;
        }
        /* the workload exercises every outcome */
        assert_true(stored_n > 0 && stale > 0 && quota > 0 && dups > 0 && replaced > 0);
    }
    assert_int_equal(store_stats(s1, &st1), 0);
    assert_int_equal(store_stats(s2, &st2), 0);
    assert_int_equal(st1.records, st2.records);
    assert_int_equal(st1.bytes, st2.bytes);
    assert_memory_equal(st1.by_kind, st2.by_kind, sizeof(st1.by_kind));
    assert_int_equal(store_iter_keys(s1, 0, collect_all, c1), 0);
    assert_int_equal(store_iter_keys(s2, 0, collect_all, c2), 0);
    assert_int_equal(c1->n, c2->n);
    assert_int_equal(c1->n, st1.records);
    assert_memory_equal(c1->ids, c2->ids, c1->n * RECORD_ID_BYTES);
    for (int i = 0; i < 3; i++) {
        uint32_t l1, t1, l2, t2;
        assert_int_equal(store_author_count(s1, a[i].pk, &l1, &t1), 0);
        assert_int_equal(store_author_count(s2, a[i].pk, &l2, &t2), 0);
        assert_int_equal(l1, l2);
        assert_int_equal(t1, t2);
        assert_true(l1 <= 3 && t1 <= 3);
    }
    /* and the tag index agrees with the records */
    memset(c1, 0, sizeof(*c1));
    memset(c2, 0, sizeof(*c2));
    assert_int_equal(store_iter_tag(s1, "beta", collect_rec, c1), 0);
    assert_int_equal(store_iter_tag(s2, "beta", collect_rec, c2), 0);
    assert_int_equal(c1->n, c2->n);
    assert_int_equal(c1->n, st1.records); /* every item carries "beta", tombstones too */
    store_close(s1);
    store_close(s2);
    free(es);
    free(seq_items);
    free(bat_items);
    free(c1);
    free(c2);
}

/* What a commit acknowledged survives kill -9, in the middle of further writes, with the
 * default durability and with STORE_SYNC_NONE (whose bytes are in the kernel when commit
 * returns). */
static void
kill9_run(const char *dir, enum store_sync sync, const struct env *es, int n, int kill_after)
{
    int fds[2], status, acked = 0;
    pid_t pid;
    struct store_opts o;
    struct store *s;

    store_opts_init(&o);
    o.sync = sync;
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* child: store batches of 10, report each commit, never stop by itself */
        struct store *cs = NULL;
        close(fds[0]);
        if (store_open(dir, &o, &cs) != 0)
            _exit(2);
        for (int b = 0;; b = (b + 10) % n) {
            struct store_item items[10];
            int32_t done = b + 10;
            memset(items, 0, sizeof(items));
            for (int i = 0; i < 10; i++) {
                items[i].bytes = es[b + i].bytes;
                items[i].len = es[b + i].len;
            }
            if (store_put_batch(cs, items, 10, NOW) != 0)
                _exit(3);
            if (write(fds[1], &done, sizeof(done)) != (ssize_t)sizeof(done))
                _exit(4);
        }
    }
    close(fds[1]);
    while (acked < kill_after) {
        int32_t done;
        assert_int_equal(read(fds[0], &done, sizeof(done)), (ssize_t)sizeof(done));
        acked = done;
    }
    kill(pid, SIGKILL);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(fds[0]);
    s = open_store(dir, &o);
    assert_true(store_count(s) >= (uint64_t)acked);
    for (int i = 0; i < acked; i++)
        assert_true(stored(s, es[i].id));
    store_close(s);
}

static void
test_survives_kill9(void **state)
{
    enum { N = 200 };
    struct ident a[4];
    struct env *es = malloc(N * sizeof(*es));
    char dir2[4096];

    assert_non_null(es);
    for (int i = 0; i < 4; i++)
        mkident(&a[i], (uint8_t)(110 + i));
    for (int i = 0; i < N; i++) {
        char t[32];
        snprintf(t, sizeof(t), "kill -9 survivor %d", i);
        mkrec(&es[i], &a[i % 4], RECORD_OFFER, (uint8_t)(i / 4), 1, NOW - 100, NOW + DAY, t,
              "durable");
    }
    kill9_run(*state, STORE_SYNC_FULL, es, N, 60);
    snprintf(dir2, sizeof(dir2), "%s/nosync", (const char *)*state);
    kill9_run(dir2, STORE_SYNC_NONE, es, N, 150);
    free(es);
}

static void
test_mixed_batch(void **state)
{
    struct ident a;
    struct env good1, good2, badsig, expired, future;
    struct store *s = open_store(*state, NULL);
    struct store_item items[8];
    uint8_t garbage[40];

    mkident(&a, 14);
    mkoffer(&good1, &a, 1, 1, "good one");
    mkoffer(&good2, &a, 2, 1, "good two");
    mkoffer(&badsig, &a, 3, 1, "bad signature");
    badsig.bytes[badsig.len - 1] ^= 1;
    mkrec(&expired, &a, RECORD_OFFER, 4, 1, NOW - 2 * DAY, NOW - DAY, "expired", NULL);
    mkrec(&future, &a, RECORD_OFFER, 5, 1, NOW + DAY, NOW + 2 * DAY, "future", NULL);
    memset(garbage, 0xc1, sizeof(garbage));

    memset(items, 0, sizeof(items));
    items[0].bytes = good1.bytes;
    items[0].len = good1.len;
    items[1].bytes = badsig.bytes;
    items[1].len = badsig.len;
    items[2].bytes = garbage;
    items[2].len = sizeof(garbage);
    items[3].bytes = good2.bytes;
    items[3].len = good2.len - 1; /* truncated */
    items[4].bytes = expired.bytes;
    items[4].len = expired.len;
    items[5].bytes = future.bytes;
    items[5].len = future.len;
    items[6].bytes = good2.bytes;
    items[6].len = good2.len;
    items[7].bytes = good1.bytes;
    items[7].len = good1.len;
    assert_int_equal(store_put_batch(s, items, 8, NOW), 0);
    assert_int_equal(items[0].result, 0);
    assert_int_equal(items[1].result, PULL_ERR_BAD_SIG);
    assert_true(items[1].has_id);
    assert_true(items[2].result < 0);
    assert_false(items[2].has_id);
    assert_true(items[3].result < 0);
    assert_int_equal(items[4].result, PULL_ERR_EXPIRED);
    assert_int_equal(items[5].result, PULL_ERR_CLOCK_SKEW);
    assert_int_equal(items[6].result, 0);
    assert_int_equal(items[7].result, PULL_ERR_DUPLICATE);
    assert_int_equal(store_count(s), 2);
    assert_true(stored(s, good1.id));
    assert_true(stored(s, good2.id));
    assert_false(stored(s, badsig.id));
    assert_int_equal(store_put_batch(s, items, 0, NOW), 0);
    /* a NULL envelope is refused alone; an oversized batch as a whole */
    memset(items, 0, sizeof(items));
    items[1].bytes = good1.bytes;
    items[1].len = good1.len;
    assert_int_equal(store_put_batch(s, items, 2, NOW), 0);
    assert_int_equal(items[0].result, PULL_ERR_INVAL);
    assert_int_equal(items[1].result, PULL_ERR_DUPLICATE);
    {
        struct store_item *many = calloc(STORE_BATCH_MAX + 1, sizeof(*many));
        assert_non_null(many);
        assert_int_equal(store_put_batch(s, many, STORE_BATCH_MAX + 1, NOW), PULL_ERR_TOO_BIG);
        free(many);
    }
    assert_int_equal(store_count(s), 2);
    store_close(s);
}

/* store_put_opened: records verified elsewhere. */
static void
test_put_opened(void **state)
{
    struct ident a;
    struct env e1, e2;
    struct envelope env1, env2;
    struct record *r1 = malloc(sizeof(*r1)), *r2 = malloc(sizeof(*r2));
    struct store *s = open_store(*state, NULL);
    struct store_opened items[3];

    assert_non_null(r1);
    assert_non_null(r2);
    mkident(&a, 15);
    mkoffer(&e1, &a, 1, 1, "opened v1");
    mkoffer(&e2, &a, 1, 2, "opened v2");
    assert_int_equal(envelope_open(e1.bytes, e1.len, NOW, &env1, r1), 0);
    assert_int_equal(envelope_open(e2.bytes, e2.len, NOW, &env2, r2), 0);
    memset(items, 0, sizeof(items));
    items[0].env = &env1;
    items[0].rec = r1;
    items[1].env = &env2;
    items[1].rec = r2;
    items[2].env = &env1;
    items[2].rec = r1;
    assert_int_equal(store_put_opened(s, items, 3, NOW), 0);
    assert_int_equal(items[0].result, 0);
    assert_int_equal(items[1].result, 0);
    assert_true(items[1].replaced);
    assert_memory_equal(items[1].replaced_id, e1.id, RECORD_ID_BYTES);
    assert_int_equal(items[2].result, PULL_ERR_STALE);
    /* expired by the time it is stored */
    memset(items, 0, sizeof(items));
    items[0].env = &env2;
    items[0].rec = r2;
    assert_int_equal(store_put_opened(s, items, 1, NOW + 31 * DAY), 0);
    assert_int_equal(items[0].result, PULL_ERR_EXPIRED);
    assert_int_equal(store_count(s), 1);
    free(r1);
    free(r2);
    store_close(s);
}

/* store_commit: records, the sweep and key-value writes in one transaction; a failed
 * transaction stores none of them. */
static void
test_commit_all_in_one(void **state)
{
    struct ident a;
    struct env e1, e2, old;
    struct envelope env1, env2;
    struct record *r1 = malloc(sizeof(*r1)), *r2 = malloc(sizeof(*r2));
    struct store *s = open_store(*state, NULL);
    struct store_opened items[2];
    struct store_kv_op kv[3];
    struct store_commit c;
    struct collect swept;
    struct pull_wb w;
    uint8_t k1[32] = {1}, k2[32] = {2};

    assert_non_null(r1);
    assert_non_null(r2);
    mkident(&a, 16);
    mkrec(&old, &a, RECORD_OFFER, 9, 1, NOW - 100, NOW + 10, "short lived", NULL);
    assert_int_equal(put1(s, &old, NULL), 0);
    assert_int_equal(store_kv_put(s, STORE_MAIL, k2, "gone", 4), 0);
    mkoffer(&e1, &a, 1, 1, "commit one");
    mkoffer(&e2, &a, 2, 1, "commit two");
    assert_int_equal(envelope_open(e1.bytes, e1.len, NOW, &env1, r1), 0);
    assert_int_equal(envelope_open(e2.bytes, e2.len, NOW, &env2, r2), 0);
    memset(items, 0, sizeof(items));
    items[0].env = &env1;
    items[0].rec = r1;
    items[1].env = &env2;
    items[1].rec = r2;
    memset(kv, 0, sizeof(kv));
    kv[0].table = STORE_PEERS;
    memcpy(kv[0].key, k1, 32);
    kv[0].val = "first";
    kv[0].len = 5;
    kv[1] = kv[0];
    kv[1].val = "second"; /* in order: the later write wins */
    kv[1].len = 6;
    kv[2].table = STORE_MAIL;
    memcpy(kv[2].key, k2, 32);
    kv[2].del = true;
    memset(&c, 0, sizeof(c));
    memset(&swept, 0, sizeof(swept));
    c.recs = items;
    c.nrecs = 2;
    c.kv = kv;
    c.nkv = 3;
    c.sweep_max = 10;
    c.swept = collect_key;
    c.swept_ctx = &swept;
    assert_int_equal(store_commit(s, &c, NOW + 20), 0);
    assert_int_equal(items[0].result, 0);
    assert_int_equal(items[1].result, 0);
    assert_int_equal(c.nswept, 1);
    assert_int_equal(swept.n, 1);
    assert_memory_equal(swept.ids[0], old.id, RECORD_ID_BYTES);
    assert_false(stored(s, old.id));
    assert_true(stored(s, e1.id));
    assert_int_equal(store_count(s), 2);
    wb_init(&w, 0);
    assert_int_equal(store_kv_get(s, STORE_PEERS, k1, &w), 0);
    assert_int_equal(w.len, 6);
    assert_memory_equal(w.p, "second", 6);
    wb_release(&w);
    assert_int_equal(store_kv_get(s, STORE_MAIL, k2, NULL), PULL_ERR_NOT_FOUND);
    /* a bad key-value op refuses the whole commit before anything is written */
    kv[0].table = (enum store_table)99;
    memset(&c, 0, sizeof(c));
    c.kv = kv;
    c.nkv = 1;
    assert_int_equal(store_commit(s, &c, NOW), PULL_ERR_INVAL);
    free(r1);
    free(r2);
    store_close(s);
}

static void
test_schema_version(void **state)
{
    const char *dir = *state;
    struct store *s = open_store(dir, NULL);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val k = {6, (void *)"schema"}, v;
    uint8_t ver[4];
    char path[4200];
    FILE *f;

    store_close(s);
    /* a newer pull wrote this store */
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    assert_int_equal(v.mv_size, 4);
    assert_int_equal(be32dec(v.mv_data), STORE_SCHEMA);
    be32enc(ver, STORE_SCHEMA + 1);
    v.mv_size = 4;
    v.mv_data = ver;
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    s = (struct store *)(uintptr_t)1;
    assert_int_equal(store_open(dir, NULL, &s), PULL_ERR_SCHEMA);
    assert_null(s);

    /* not a store at all */
    tu_rmrf(dir);
    assert_int_equal(store_open(dir, NULL, &s), 0); /* creates the directory */
    store_close(s);
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 8192; i++)
        fputc('x', f);
    fclose(f);
    assert_true(store_open(dir, NULL, &s) < 0);
    assert_null(s);
    assert_int_equal(store_open(NULL, NULL, &s), PULL_ERR_INVAL);
    assert_int_equal(store_open("/proc/nonexistent/dir", NULL, &s), PULL_ERR_IO);
}

/* ---------------------------------------------------------------------------------- */
/* A million-record store opens fast (slow to build: its own ctest, label slow).      */

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An envelope around rec with an all-zero signature: store_put_opened trusts its caller,
 * which lets this test skip a million Ed25519 signatures. */
static void
fake_envelope(const struct record *rec, struct pull_wb *wb)
{
    struct pull_wb r;
    static const uint8_t sig[64];

    wb_init(&r, RECORD_MAX);
    assert_int_equal(record_encode(rec, &r), 0);
    wb_reset(wb);
    wb_u8(wb, 0x92);
    if (r.len < 256) {
        wb_u8(wb, 0xc4);
        wb_u8(wb, (uint8_t)r.len);
    } else {
        wb_u8(wb, 0xc5);
        wb_u16be(wb, (uint16_t)r.len);
    }
    wb_put(wb, r.p, r.len);
    wb_u8(wb, 0xc4);
    wb_u8(wb, 64);
    wb_put(wb, sig, 64);
    assert_int_equal(wb_error(wb), 0);
    wb_release(&r);
}

static int
count_ids(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    (void)created, (void)id;
    (*(uint64_t *)ctx)++;
    return 0;
}

static void
test_million_opens_fast(void **state)
{
    enum { TOTAL = 1000000, BATCH = 5000, PER_AUTHOR = 200 };
    static const char *const words[] = {"bike",    "rust",   "garden", "lessons", "repair",
                                        "printer", "mentor", "music",  "code",    "lyon"};
    const char *dir = *state;
    struct store_opts o;
    struct store *s;
    struct record *recs = malloc(BATCH * sizeof(*recs));
    struct envelope *envs = malloc(BATCH * sizeof(*envs));
    struct pull_wb *wbs = malloc(BATCH * sizeof(*wbs));
    struct store_opened *items = malloc(BATCH * sizeof(*items));
    struct store_stats st;
    double t0, t_build, t_open, t_get;
    uint8_t probe[RECORD_ID_BYTES];
    struct pull_wb got;

    assert_non_null(recs);
    assert_non_null(envs);
    assert_non_null(wbs);
    assert_non_null(items);
    for (int i = 0; i < BATCH; i++)
        wb_init(&wbs[i], RECORD_ENVELOPE_MAX);
    store_opts_init(&o);
    o.sync = STORE_SYNC_NONE;
    s = open_store(dir, &o);
    t0 = now_s();
    for (int base = 0; base < TOTAL; base += BATCH) {
        for (int j = 0; j < BATCH; j++) {
            unsigned i = (unsigned)(base + j), au = i / PER_AUTHOR;
            struct record *r = &recs[j];
            record_init(r);
            r->kind = i % 3 == 0 ? RECORD_NEED : RECORD_OFFER;
            memset(r->author, 0, 32);
            memcpy(r->author, &au, sizeof(au));
            r->author[31] = 0xa7;
            memset(r->slot, 0, sizeof(r->slot));
            memcpy(r->slot, &i, sizeof(i));
            r->seq = 1;
            r->created = NOW - DAY + i / 20;
            r->expires = r->created + 30 * DAY;
            snprintf(r->title, sizeof(r->title), "%s %s number %u", words[i % 10],
                     words[(i / 10) % 10], i);
            r->ntags = 2;
            snprintf(r->tags[0], sizeof(r->tags[0]), "%s", words[i % 10]);
            snprintf(r->tags[1], sizeof(r->tags[1]), "%s", words[(i / 7) % 10]);
            if (strcmp(r->tags[0], r->tags[1]) == 0)
                r->ntags = 1;
            fake_envelope(r, &wbs[j]);
            assert_int_equal(envelope_parse(wbs[j].p, wbs[j].len, &envs[j]), 0);
            items[j].env = &envs[j];
            items[j].rec = r;
        }
        assert_int_equal(store_put_opened(s, items, BATCH, NOW), 0);
        for (int j = 0; j < BATCH; j++)
            assert_int_equal(items[j].result, 0);
    }
    memcpy(probe, envs[BATCH / 2].id, RECORD_ID_BYTES);
    assert_int_equal(store_sync(s), 0);
    t_build = now_s() - t0;
    store_close(s);

    t0 = now_s();
    s = open_store(dir, NULL);
    t_open = now_s() - t0;
    assert_int_equal(store_count(s), TOTAL);
    t0 = now_s();
    wb_init(&got, 0);
    assert_int_equal(store_get(s, probe, &got), 0);
    t_get = now_s() - t0;
    assert_int_equal(store_stats(s, &st), 0);
    printf("# million: built in %.1f s, store_open %.2f ms, first get %.3f ms, "
           "map used %.0f MiB\n",
           t_build, t_open * 1e3, t_get * 1e3, (double)st.map_used / (1 << 20));
    {
        uint64_t count = 0;
        double t_ids, t_keys;
        t0 = now_s();
        assert_int_equal(store_iter_ids(s, count_ids, &count), 0);
        t_ids = now_s() - t0;
        assert_int_equal(count, TOTAL);
        count = 0;
        t0 = now_s();
        assert_int_equal(store_iter_keys(s, 0, count_ids, &count), 0);
        t_keys = now_s() - t0;
        assert_int_equal(count, TOTAL);
        printf("# million: iterate all ids %.0f ms, all (created, id) keys %.0f ms\n", t_ids * 1e3,
               t_keys * 1e3);
    }
    /* opening does no work proportional to the store: milliseconds, with a wide margin
     * for a loaded machine */
    assert_true(t_open < 0.1);
    wb_release(&got);
    store_close(s);
    for (int i = 0; i < BATCH; i++)
        wb_release(&wbs[i]);
    free(recs);
    free(envs);
    free(wbs);
    free(items);
}

/* ---------------------------------------------------------------------------------- */
/* The budget                                                                          */

struct keepset {
    uint8_t keys[4][32];
    size_t n;
};

static bool
keep_fn(void *ctx, const uint8_t author[32])
{
    const struct keepset *k = ctx;

    for (size_t i = 0; i < k->n; i++)
        if (memcmp(k->keys[i], author, 32) == 0)
            return true;
    return false;
}

struct idlist {
    uint8_t (*ids)[RECORD_ID_BYTES];
    size_t n, cap;
};

static int
idlist_add(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    struct idlist *l = ctx;

    (void)created;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->ids = realloc(l->ids, l->cap * RECORD_ID_BYTES);
        assert_non_null(l->ids);
    }
    memcpy(l->ids[l->n++], id, RECORD_ID_BYTES);
    return 0;
}

/* commit_envs stores n envelopes in one store_commit, collecting evicted ids. */
static void
commit_envs(struct store *s, const struct env *e, size_t n, int *results, struct idlist *ev)
{
    struct envelope *envs = calloc(n, sizeof(*envs));
    struct record *recs = calloc(n, sizeof(*recs));
    struct store_opened *items = calloc(n, sizeof(*items));
    struct store_commit c;

    assert_true(envs != NULL && recs != NULL && items != NULL);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(envelope_open(e[i].bytes, e[i].len, NOW, &envs[i], &recs[i]), 0);
        items[i].env = &envs[i];
        items[i].rec = &recs[i];
    }
    memset(&c, 0, sizeof(c));
    c.recs = items;
    c.nrecs = n;
    c.evicted = idlist_add;
    c.evicted_ctx = ev;
    assert_int_equal(store_commit(s, &c, NOW), 0);
    assert_int_equal(c.nevicted, ev != NULL ? c.nevicted : 0);
    for (size_t i = 0; i < n; i++)
        results[i] = items[i].result;
    free(envs);
    free(recs);
    free(items);
}

/* A flood of throwaway authors (the attack of the "strangers" issue): 100 authors, each
 * filling a good part of its per-author quota. Without a budget every byte is stored;
 * with one, the store stays under it, keeps every record of its own author and of the
 * people it deals with, and keeps the small honest strangers (fewer records than the
 * level the flood is cut down to). */
static void
budget_flood(const char *dir, uint64_t max_bytes, uint64_t *flood_bytes, uint64_t *total)
{
    enum { AUTHORS = 100, PER = 40, MINE = 30, SMALL = 20 };
    struct store_opts o;
    struct keepset keep;
    struct ident me, friend, small[SMALL], t;
    struct env *e = calloc(AUTHORS * PER, sizeof(*e));
    struct env mine[MINE], theirs[MINE], smalls[SMALL];
    int *res = calloc(AUTHORS * PER, sizeof(*res));
    struct idlist ev = {NULL, 0, 0};
    struct store_stats st;
    struct store *s;
    uint32_t live, tombs;
    char title[64];

    assert_true(e != NULL && res != NULL);
    store_opts_init(&o);
    o.max_bytes = max_bytes;
    o.keep = keep_fn;
    o.keep_ctx = &keep;
    mkident(&me, 200);
    mkident(&friend, 201);
    memcpy(keep.keys[0], me.pk, 32);
    memcpy(keep.keys[1], friend.pk, 32);
    keep.n = 2;
    s = open_store(dir, &o);
    for (int i = 0; i < MINE; i++) {
        snprintf(title, sizeof(title), "my offer %d", i);
        mkrec(&mine[i], &me, RECORD_OFFER, (uint8_t)i, 1, NOW - 5000 + (uint64_t)i, NOW + DAY,
              title, "mine");
        snprintf(title, sizeof(title), "a friend's offer %d", i);
        mkrec(&theirs[i], &friend, RECORD_OFFER, (uint8_t)i, 1, NOW - 5000, NOW + DAY, title, NULL);
    }
    for (int i = 0; i < SMALL; i++) {
        mkident(&small[i], (uint8_t)(100 + i));
        snprintf(title, sizeof(title), "a small stranger's offer %d", i);
        mkrec(&smalls[i], &small[i], RECORD_OFFER, 1, 1, NOW - 4000, NOW + DAY, title, NULL);
    }
    commit_envs(s, mine, MINE, res, &ev);
    commit_envs(s, theirs, MINE, res, &ev);
    commit_envs(s, smalls, SMALL, res, &ev);
    for (int a = 0; a < AUTHORS; a++) {
        uint8_t seed[32] = {0};
        seed[0] = (uint8_t)a;
        seed[1] = 0xee;
        assert_int_equal(ident_from_seed(&t, seed), 0);
        for (int i = 0; i < PER; i++) {
            snprintf(title, sizeof(title), "throwaway %d offer %d", a, i);
            mkrec(&e[a * PER + i], &t, RECORD_OFFER, (uint8_t)i, 1,
                  NOW - 4000 + (uint64_t)(a * PER + i), NOW + DAY, title, "spam");
        }
    }
    for (int b = 0; b < AUTHORS * PER; b += 250)
        commit_envs(s, e + b, 250, res + b, &ev);
    assert_int_equal(store_stats(s, &st), 0);
    *total = st.bytes;
    *flood_bytes = 0;
    for (int i = 0; i < AUTHORS * PER; i++) {
        if (stored(s, e[i].id))
            *flood_bytes += e[i].len;
    }
    for (int i = 0; i < MINE; i++) {
        assert_true(stored(s, mine[i].id));
        assert_true(stored(s, theirs[i].id));
    }
    for (size_t i = 0; i < ev.n; i++)
        assert_false(stored(s, ev.ids[i])); /* reported evicted: gone */
    if (max_bytes > 0) {
        assert_true(st.bytes <= max_bytes);
        assert_true(ev.n > 0);
        assert_int_equal(st.evicted, ev.n);
        assert_true(st.level >= 1 && st.level < PER);
        for (int i = 0; i < SMALL; i++)
            assert_true(stored(s, smalls[i].id)); /* under the level: untouched */
        /* every throwaway author is levelled: none holds more than the level */
        for (int a = 0; a < AUTHORS; a++) {
            struct envelope en;
            struct record *r = malloc(sizeof(*r));
            assert_non_null(r);
            assert_int_equal(envelope_open(e[a * PER].bytes, e[a * PER].len, NOW, &en, r), 0);
            assert_int_equal(store_author_count(s, r->author, &live, &tombs), 0);
            assert_true(live <= st.level);
            free(r);
        }
        assert_int_equal(store_budget_level(s), st.level);
    }
    free(ev.ids);
    free(e);
    free(res);
    store_close(s);
}

static void
test_budget_throwaway_authors(void **state)
{
    const char *dir = *state;
    uint64_t flood0, total0, flood, total, max = 256 * 1024;
    char dir2[512];

    budget_flood(dir, 0, &flood0, &total0);
    snprintf(dir2, sizeof(dir2), "%s/budget", dir);
    budget_flood(dir2, max, &flood, &total);
    printf("budget: 100 throwaway authors stored %llu bytes without a budget (store %llu), "
           "%llu with a budget of %llu (store %llu)\n",
           (unsigned long long)flood0, (unsigned long long)total0, (unsigned long long)flood,
           (unsigned long long)max, (unsigned long long)total);
    assert_true(total0 > max); /* the flood alone is over the budget */
    assert_true(total <= max);
}

/* After a round, a stranger at the level gets no new record, may still edit one, and a
 * new stranger may start; the node's own records are never refused. */
static void
test_budget_refuses_above_level(void **state)
{
    struct store_opts o;
    struct keepset keep;
    struct ident me, flood[8], fresh;
    struct env e[8 * 20], x[4];
    int res[8 * 20], r4[4];
    struct idlist ev = {NULL, 0, 0};
    struct store *s;
    struct store_stats st;
    uint32_t level;

    store_opts_init(&o);
    o.max_bytes = 16 * 1024; /* about 60 records */
    o.keep = keep_fn;
    o.keep_ctx = &keep;
    mkident(&me, 90);
    memcpy(keep.keys[0], me.pk, 32);
    keep.n = 1;
    s = open_store(*state, &o);
    assert_int_equal(store_budget_level(s), STORE_LEVEL_NONE);
    for (int a = 0; a < 8; a++) {
        mkident(&flood[a], (uint8_t)(60 + a));
        for (int i = 0; i < 20; i++)
            mkrec(&e[a * 20 + i], &flood[a], RECORD_OFFER, (uint8_t)i, 1, NOW - 900 + (uint64_t)i,
                  NOW + DAY, "flooding offer", NULL);
    }
    commit_envs(s, e, 8 * 20, res, &ev);
    level = store_budget_level(s);
    assert_true(level != STORE_LEVEL_NONE && level < 20);
    /* a record of this very commit that the round took was refused, not reported */
    for (int i = 0; i < 8 * 20; i++) {
        assert_true(res[i] == 0 || res[i] == PULL_ERR_QUOTA);
        if (res[i] == PULL_ERR_QUOTA)
            assert_false(stored(s, e[i].id));
    }
    assert_int_equal(ev.n, 0);
    mkident(&fresh, 99);
    mkrec(&x[0], &flood[0], RECORD_OFFER, 30, 1, NOW - 10, NOW + DAY, "one more", NULL);
    mkrec(&x[1], &fresh, RECORD_OFFER, 1, 1, NOW - 10, NOW + DAY, "a newcomer", NULL);
    mkrec(&x[2], &me, RECORD_OFFER, 1, 1, NOW - 10, NOW + DAY, "my own", NULL);
    commit_envs(s, x, 3, r4, &ev);
    assert_int_equal(r4[0], PULL_ERR_QUOTA);
    assert_int_equal(r4[1], 0);
    assert_int_equal(r4[2], 0);
    /* an edit of a record the flooding author holds keeps its count: allowed */
    for (int i = 0; i < 20; i++) {
        if (res[i] == 0 && stored(s, e[i].id)) {
            mkrec(&x[3], &flood[0], RECORD_OFFER, (uint8_t)i, 2, NOW - 5, NOW + DAY, "edited",
                  NULL);
            commit_envs(s, &x[3], 1, r4, &ev);
            assert_int_equal(r4[0], 0);
            break;
        }
    }
    assert_int_equal(store_stats(s, &st), 0);
    assert_true(st.bytes <= o.max_bytes);
    free(ev.ids);
    store_close(s);
}

/* ---------------------------------------------------------------------------------- */
/* The peers table                                                                     */

static void
peer_key(uint8_t k[32], uint32_t i, uint8_t tag)
{
    memset(k, 0, 32);
    be32enc(k, i);
    k[31] = tag;
}

/* peers_put writes the engine's row (last_seen || addr) for n keys, in one commit. */
static size_t
peers_put(struct store *s, uint32_t first, uint32_t n, uint8_t tag, uint64_t now)
{
    struct store_kv_op *ops = calloc(n, sizeof(*ops));
    uint8_t(*vals)[32] = calloc(n, 32);
    struct store_commit c;

    assert_true(ops != NULL && vals != NULL);
    for (uint32_t i = 0; i < n; i++) {
        be64enc(vals[i], now);
        memcpy(vals[i] + 8, "127.0.0.1:7450", 14);
        ops[i].table = STORE_PEERS;
        peer_key(ops[i].key, first + i, tag);
        ops[i].val = vals[i];
        ops[i].len = 22;
    }
    memset(&c, 0, sizeof(c));
    c.kv = ops;
    c.nkv = n;
    assert_int_equal(store_commit(s, &c, now), 0);
    free(ops);
    free(vals);
    return c.npeers_evicted;
}

static uint64_t
peers_rows(struct store *s)
{
    struct store_stats st;

    assert_int_equal(store_stats(s, &st), 0);
    return st.peers;
}

static void
test_peers_bounded(void **state)
{
    enum { HONEST = 20, FLOOD = 2000 };
    struct store *s = open_store(*state, NULL);
    struct store_peer_stats st, note, back;
    struct store_kv_op op;
    struct store_commit c;
    struct pull_wb wb;
    uint8_t k[32], enc[STORE_PEER_STATS_LEN];
    size_t out = 0;
    uint64_t rows600;

    /* honest peers: seen in two sessions, or stayed connected and gave records */
    peers_put(s, 0, HONEST, 0xaa, NOW - 7 * DAY);
    peers_put(s, 0, HONEST / 2, 0xaa, NOW - DAY);
    memset(&note, 0, sizeof(note));
    note.records = 300;
    note.sessions = 1;
    note.connected_s = 3 * 3600;
    memset(&op, 0, sizeof(op));
    op.table = STORE_PEERS;
    op.note = &note;
    memset(&c, 0, sizeof(c));
    c.kv = &op;
    c.nkv = 1;
    for (uint32_t i = HONEST / 2; i < HONEST; i++) {
        peer_key(op.key, i, 0xaa);
        assert_int_equal(store_commit(s, &c, NOW), 0);
    }
    /* a note for a key without a row makes none */
    peer_key(op.key, 999, 0x01);
    assert_int_equal(store_commit(s, &c, NOW), 0);
    assert_int_equal(peers_rows(s), HONEST);

    /* the attack: one-shot identities, one session each */
    out += peers_put(s, 0, 600, 0x55, NOW);
    rows600 = peers_rows(s);
    for (uint32_t b = 600; b < FLOOD; b += 200)
        out += peers_put(s, b, 200, 0x55, NOW + b);
    printf("peers: %llu rows after 600 one-shot identities, %llu after %d (cap %d), "
           "%zu evicted\n",
           (unsigned long long)rows600, (unsigned long long)peers_rows(s), FLOOD,
           STORE_MAX_PEERS_DEFAULT, out);
    assert_int_equal(rows600, HONEST + 600);
    assert_int_equal(peers_rows(s), STORE_MAX_PEERS_DEFAULT);
    assert_int_equal(out, HONEST + FLOOD - STORE_MAX_PEERS_DEFAULT);
    wb_init(&wb, 0);
    for (uint32_t i = 0; i < HONEST; i++) {
        peer_key(k, i, 0xaa);
        wb_reset(&wb);
        assert_int_equal(store_kv_get(s, STORE_PEERS, k, &wb), 0); /* every honest peer */
        assert_int_equal(wb.len, 22);                              /* the engine's bytes */
    }
    /* the oldest one-shots went first */
    peer_key(k, 0, 0x55);
    assert_int_equal(store_kv_get(s, STORE_PEERS, k, NULL), PULL_ERR_NOT_FOUND);
    peer_key(k, FLOOD - 1, 0x55);
    assert_int_equal(store_kv_get(s, STORE_PEERS, k, NULL), 0);
    wb_release(&wb);

    /* the statistics, through the iteration and the stored form */
    memset(&st, 0, sizeof(st));
    st.first_seen_s = 1;
    st.last_seen_s = 2;
    st.seen = 3;
    st.sessions = 4;
    st.connected_s = 5;
    st.records = 6;
    st.last_record_s = 7;
    store_peer_stats_encode(&st, enc);
    assert_int_equal(enc[0], STORE_PEER_STATS_VERSION);
    assert_int_equal(store_peer_stats_decode(enc, sizeof(enc), &back), 0);
    assert_memory_equal(&back, &st, sizeof(st));
    assert_int_equal(store_peer_stats_decode(enc, sizeof(enc) - 1, &back), PULL_ERR_MALFORMED);
    enc[0] = 0;
    assert_int_equal(store_peer_stats_decode(enc, sizeof(enc), &back), PULL_ERR_MALFORMED);
    memset(&st, 0, sizeof(st));
    st.seen = 1;
    assert_int_equal(store_peer_value(&st), 1);
    st.records = 300;
    st.connected_s = 3 * 3600;
    assert_int_equal(store_peer_value(&st), 1 + 9 + 8);
    /* a deleted row takes its statistics along */
    peer_key(k, 3, 0xaa);
    assert_int_equal(store_kv_del(s, STORE_PEERS, k), 0);
    assert_int_equal(peers_rows(s), STORE_MAX_PEERS_DEFAULT - 1);
    store_close(s);
}

static int
peer_stats_of(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len,
              const struct store_peer_stats *st)
{
    struct store_peer_stats *out = ctx;
    uint8_t k[32];

    (void)val;
    (void)len;
    peer_key(k, 7, 0xbb);
    if (memcmp(key, k, 32) == 0)
        *out = *st;
    return 0;
}

/* A record a peer gave is counted in its row, once it is stored. */
static void
test_peers_count_records(void **state)
{
    struct store *s = open_store(*state, NULL);
    struct ident a;
    struct env e[3];
    struct envelope env[3];
    struct record *r = calloc(3, sizeof(*r));
    struct store_opened items[3];
    struct store_peer_stats st;
    uint8_t from[32];

    assert_non_null(r);
    peers_put(s, 7, 1, 0xbb, NOW - 60);
    peer_key(from, 7, 0xbb);
    mkident(&a, 31);
    for (int i = 0; i < 3; i++) {
        mkoffer(&e[i], &a, (uint8_t)i, 1, "from a peer");
        assert_int_equal(envelope_open(e[i].bytes, e[i].len, NOW, &env[i], &r[i]), 0);
    }
    memset(items, 0, sizeof(items));
    for (int i = 0; i < 3; i++) {
        items[i].env = &env[i % 2]; /* the third is a duplicate: not counted */
        items[i].rec = &r[i % 2];
        items[i].from = from;
    }
    assert_int_equal(store_put_opened(s, items, 3, NOW), 0);
    memset(&st, 0, sizeof(st));
    assert_int_equal(store_peers_iter(s, peer_stats_of, &st), 0);
    assert_int_equal(st.records, 2);
    assert_int_equal(st.last_record_s, NOW);
    assert_int_equal(st.seen, 1);
    assert_int_equal(st.first_seen_s, NOW - 60);
    free(r);
    store_close(s);
}

/* ---------------------------------------------------------------------------------- */
/* Damage                                                                              */

static void
copy_file(const char *from, const char *to)
{
    FILE *f = fopen(from, "rb"), *t = fopen(to, "wb");
    char buf[65536];
    size_t n;

    assert_true(f != NULL && t != NULL);
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        assert_int_equal(fwrite(buf, 1, n, t), n);
    fclose(f);
    fclose(t);
}

/* damaged copies the good store of src into a fresh directory and returns that path. */
static const char *
damaged(const char *src, const char *name)
{
    static char dir[512];
    char a[600], b[600];

    snprintf(dir, sizeof(dir), "%s/%s", src, name);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(a, sizeof(a), "%s/good/data.mdb", src);
    snprintf(b, sizeof(b), "%s/data.mdb", dir);
    copy_file(a, b);
    return dir;
}

static void
poke(const char *dir, uint64_t off, const void *bytes, size_t n)
{
    char p[600];
    FILE *f;

    snprintf(p, sizeof(p), "%s/data.mdb", dir);
    assert_non_null(f = fopen(p, "r+b"));
    assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
    assert_int_equal(fwrite(bytes, 1, n, f), n);
    fclose(f);
}

static void
cut(const char *dir, off_t len)
{
    char p[600];

    snprintf(p, sizeof(p), "%s/data.mdb", dir);
    assert_int_equal(truncate(p, len), 0);
}

static int
check_says(const char *dir, const char *what)
{
    char why[256];
    int rc = store_check(dir, why, sizeof(why));

    if (rc != 0)
        printf("store_check %s: %s\n", strrchr(dir, '/') + 1, why);
    if (what != NULL && rc != 0)
        assert_non_null(strstr(why, what));
    return rc;
}

static int
count_rec(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct envelope e;

    (void)id;
    if (envelope_parse(env, len, &e) == 0)
        (*(size_t *)ctx)++;
    return 0;
}

static int
tally_key(void *ctx, uint64_t created, const uint8_t id[RECORD_ID_BYTES])
{
    (void)created;
    (void)id;
    (*(size_t *)ctx)++;
    return 0;
}

static uint64_t
meta_u64(const char *dir, uint64_t off)
{
    char p[600];
    uint64_t v = 0;
    FILE *f;

    snprintf(p, sizeof(p), "%s/data.mdb", dir);
    assert_non_null(f = fopen(p, "rb"));
    assert_int_equal(fseek(f, (long)off, SEEK_SET), 0);
    assert_int_equal(fread(&v, 8, 1, f), 1);
    fclose(f);
    return v;
}

/* The damage of the "strangers" issue, on a real store: each is refused with a reason by
 * store_check (and the cheap part of it by store_open), never a crash. */
static void
test_check_damage(void **state)
{
    const char *dir = *state;
    char good[512], d[512], why[256];
    struct ident a;
    struct env e;
    struct store *s = NULL;
    uint8_t junk[512];
    uint64_t ps, cur, root, last, t0, t1, passed = 0;
    struct stat sb;

    snprintf(good, sizeof(good), "%s/good", dir);
    assert_int_equal(store_check(good, why, sizeof(why)), 0); /* no store yet: a new one */
    s = open_store(good, NULL);
    mkident(&a, 40);
    for (int i = 0; i < 250; i++) {
        mkrec(&e, &a, RECORD_OFFER, (uint8_t)i, 1, NOW - 300 + (uint64_t)i, NOW + DAY,
              "a record to damage", "damage");
        assert_int_equal(put1(s, &e, NULL), 0);
    }
    store_close(s);
    assert_int_equal(store_check(good, why, sizeof(why)), 0);
    ps = (uint32_t)meta_u64(good, 16 + 24); /* the free db's pad: the page size */
    t0 = meta_u64(good, 16 + 128);
    t1 = meta_u64(good, ps + 16 + 128);
    cur = t1 > t0 ? 1 : 0;
    root = meta_u64(good, cur * ps + 16 + 72 + 40);
    last = meta_u64(good, cur * ps + 16 + 120);
    assert_int_equal(stat(good, &sb), 0);

    snprintf(d, sizeof(d), "%s", damaged(dir, "t8k"));
    cut(d, 8192);
    assert_int_equal(check_says(d, "truncated"), PULL_ERR_STORE);
    assert_int_equal(store_open(d, NULL, &s), PULL_ERR_STORE); /* not SIGBUS later */
    assert_null(s);

    snprintf(d, sizeof(d), "%s", damaged(dir, "t0"));
    cut(d, 0);
    assert_int_equal(check_says(d, "empty"), PULL_ERR_STORE);
    assert_int_equal(store_open(d, NULL, &s), PULL_ERR_STORE); /* not a new empty store */

    snprintf(d, sizeof(d), "%s", damaged(dir, "tmeta"));
    cut(d, (off_t)ps + 100); /* inside the second meta page */
    assert_int_equal(check_says(d, NULL), PULL_ERR_STORE);

    /* a flipped byte in a meta page: its transaction id, the main tree's root, the last
     * page, the magic */
    snprintf(d, sizeof(d), "%s", damaged(dir, "mtxn"));
    junk[0] = 0x40;
    poke(d, (1 - cur) * ps + 16 + 128 + 6, junk, 1);
    assert_int_equal(check_says(d, "meta pages"), PULL_ERR_STORE);
    snprintf(d, sizeof(d), "%s", damaged(dir, "mroot"));
    junk[0] = (uint8_t)(root ^ 0x01);
    poke(d, cur * ps + 16 + 72 + 40, junk, 1);
    assert_int_equal(check_says(d, NULL), PULL_ERR_STORE);
    /* past the file's end (with MDB_WRITEMAP the file holds a reserved tail of zero pages:
     * a last page moved into it is no damage LMDB can trip on) */
    snprintf(d, sizeof(d), "%s", damaged(dir, "mlast"));
    junk[0] = 0x10;
    poke(d, cur * ps + 16 + 120 + 2, junk, 1);
    assert_int_equal(check_says(d, NULL), PULL_ERR_STORE);
    snprintf(d, sizeof(d), "%s", damaged(dir, "mmagic"));
    junk[0] = 0x00;
    poke(d, cur * ps + 16, junk, 1);
    assert_int_equal(check_says(d, "meta"), PULL_ERR_STORE);

    /* random bytes over the main tree's root page */
    snprintf(d, sizeof(d), "%s", damaged(dir, "rroot"));
    randombytes_buf(junk, sizeof(junk));
    poke(d, root * ps + 8, junk, sizeof(junk));
    assert_int_equal(check_says(d, NULL), PULL_ERR_STORE);

    /* random bytes in random pages: the check refuses, or the store reads without a crash
     * (the damage hit a free page, or a value: a record that no longer decodes is skipped) */
    for (int i = 0; i < 40; i++) {
        char name[32];
        size_t n = 0;
        uint64_t pg = 2 + randombytes_uniform((uint32_t)(last - 1));
        snprintf(name, sizeof(name), "rnd%d", i);
        snprintf(d, sizeof(d), "%s", damaged(dir, name));
        randombytes_buf(junk, sizeof(junk));
        poke(d, pg * ps + randombytes_uniform((uint32_t)(ps - sizeof(junk))), junk, sizeof(junk));
        if (store_check(d, why, sizeof(why)) != 0)
            continue;
        passed++;
        s = open_store(d, NULL);
        assert_true(store_iter_time(s, 0, count_rec, &n) >= 0);
        assert_true(store_iter_ids(s, tally_key, &n) >= 0);
        store_close(s);
    }
    printf("store_check: %llu of 40 randomly damaged copies passed and read without a crash\n",
           (unsigned long long)passed);

    /* a damaged value outside the decoded sample: the store opens, and the search index
     * skips the record that no longer decodes */
    {
        char p[600], *buf;
        FILE *f;
        long len;
        size_t live = 0;
        int tries = 0;
        snprintf(p, sizeof(p), "%s/data.mdb", good);
        assert_non_null(f = fopen(p, "rb"));
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        fseek(f, 0, SEEK_SET);
        assert_non_null(buf = malloc((size_t)len));
        assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
        fclose(f);
        for (long i = 0; i + 18 <= len && live != 249 && tries < 64; i++) {
            struct search_index *ix = NULL;
            char name[32];
            if (memcmp(buf + i, "a record to damage", 18) != 0 || (i / 18) % 3 != 0)
                continue;
            snprintf(name, sizeof(name), "value%d", tries++);
            snprintf(d, sizeof(d), "%s", damaged(dir, name));
            junk[0] = 0x01; /* a control character in a title */
            poke(d, (uint64_t)i, junk, 1);
            if (store_check(d, why, sizeof(why)) != 0)
                continue; /* one of the sampled records */
            s = open_store(d, NULL);
            assert_int_equal(search_index_new(&ix), 0);
            assert_int_equal(search_index_build(ix, s, NOW), 0);
            live = search_index_live(ix); /* 250: the copy hit was a free page's */
            search_index_free(ix);
            store_close(s);
        }
        free(buf);
        assert_int_equal(live, 249);
    }
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_by_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_in_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_grows_ahead, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_tie_lower_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tombstone_refuses_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep_expired, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_all_in_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag_iteration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_resolution, setup, teardown),
        cmocka_unit_test_setup_teardown(test_people_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peers_dyads_tables, setup, teardown),
        cmocka_unit_test_setup_teardown(test_map_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full_writemap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writemap_switch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_survives_kill9, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_equals_sequential, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_opened, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_throwaway_authors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_refuses_above_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peers_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peers_count_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_damage, setup, teardown),
    };
    const struct CMUnitTest slow[] = {
        cmocka_unit_test_setup_teardown(test_million_opens_fast, setup, teardown),
    };

    if (sodium_init() < 0)
        return 1;
    if (argc > 1 && strcmp(argv[1], "--million") == 0)
        return cmocka_run_group_tests_name("store_million", slow, NULL, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
