/* Tests of the control server (daemon/ctl_server.h) through a raw control client: a real node,
 * sync, dyad service and control socket in this process on a temporary data dir, and a plain
 * unix socket speaking proto/ctl.h. Every command of the table is sent with good and bad
 * arguments (missing, wrong types, oversized, garbage kinds, a 200-byte title, ...), plus
 * unknown commands and invalid frames, and the replies are counted per seq: exactly one final
 * reply (more=false) for each request, streams (watch, export) ending with exactly one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/ctl_int.h"
#include "daemon/ctl_server.h"
#include "daemon/dyads.h"
#include "daemon/people.h"
#include "daemon/node.h"
#include "daemon/sync.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/mp.h"
#include "lib/paths.h"
#include "lib/record.h"
#include "proto/ctl.h"
#include "testutil.h"

#define SEQ_MAX 512
#define EXP_ANY 1     /* any error, or success */
#define EXP_FAIL 2    /* any error */
#define WAIT_MS 10000 /* longest wait for replies */
#define SETTLE_MS 300 /* extra time for late (duplicate) replies */

/* What came back for one seq. */
struct slot {
    bool sent;
    bool stream; /* watch, export: more=true replies allowed before the final one */
    int expect;  /* 0, a PULL_ERR_*, EXP_ANY or EXP_FAIL */
    const char *what;
    unsigned finals, mores;
    bool bad; /* a reply the client could not decode */
    int err;
    char msg[CTL_MSG_MAX + 1];
    uint8_t *result; /* the final reply's result */
    size_t result_len;
    uint8_t *first_more; /* the first more=true reply's result */
    size_t first_more_len;
};

/* A raw client connection. */
struct raw {
    int fd;
    struct ctl_reader rd;
    struct pull_wb out;
    size_t out_off;
    bool eof;
};

struct fixture {
    char *dir;
    uv_loop_t loop;
    struct node *n;
    struct sync *sync;
    struct dyads *dyads;
    struct people *people;
    struct ctl_server *ctl;
    struct ident me;
    struct slot slots[SEQ_MAX];
    uint64_t next_seq;
};

static int
setup_with(void **state, void (*tune)(struct config_limits *l))
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct ctl_services svc = {0};
    struct config c;

    assert_non_null(f);
    assert_true(sodium_init() >= 0);
    log_set_level(LOG_ERROR);
    f->dir = tu_tmpdir();
    config_defaults(&c);
    snprintf(c.data_dir, sizeof(c.data_dir), "%s", f->dir);
    snprintf(c.listen, sizeof(c.listen), "127.0.0.1:0");
    c.lan = false;
    c.store_nosync = true;
    if (tune != NULL)
        tune(&c.limits);
    assert_int_equal(ident_generate(&f->me), 0);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(node_new(&f->loop, &c, &f->me, &f->n), 0);
    assert_int_equal(sync_new(f->n, &f->sync), 0);
    assert_int_equal(people_start(f->n, &f->people), 0);
    assert_int_equal(dyads_start(f->n, f->sync, &f->dyads), 0);
    dyads_set_people(f->dyads, f->people);
    svc.dyads = f->dyads;
    svc.people = f->people;
    assert_int_equal(ctl_server_start(f->n, &svc, &f->ctl), 0);
    f->next_seq = 1;
    *state = f;
    return 0;
}

static int
setup(void **state)
{
    return setup_with(state, NULL);
}

/* Small control budgets, so that the limits show within a test's time. */
static void
tune_small(struct config_limits *l)
{
    l->ctl_max_clients = 4;
    l->ctl_reserved_clients = 1;
    l->ctl_first_request_ms = 200;
    l->ctl_idle_ms = 600;
}

static int
setup_small(void **state)
{
    return setup_with(state, tune_small);
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    ctl_server_stop(f->ctl);
    dyads_stop(f->dyads);
    people_stop(f->people);
    sync_stop(f->sync);
    node_stop(f->n);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    ctl_server_free(f->ctl);
    dyads_free(f->dyads);
    people_free(f->people);
    sync_free(f->sync);
    node_free(f->n);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    for (size_t i = 0; i < SEQ_MAX; i++) {
        free(f->slots[i].result);
        free(f->slots[i].first_more);
    }
    tu_rmrf(f->dir);
    free(f->dir);
    ident_wipe(&f->me);
    free(f);
    return 0;
}

static void
raw_open(struct fixture *f, struct raw *r)
{
    struct sockaddr_un sa;
    char path[PATH_MAX];

    memset(r, 0, sizeof(*r));
    assert_int_equal(paths_join(f->dir, PATHS_SOCKET_NAME, path, sizeof(path)), 0);
    assert_true(strlen(path) < sizeof(sa.sun_path));
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(r->fd >= 0);
    /* a unix socket connects at once (the backlog takes it before accept) */
    assert_int_equal(connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ctl_reader_init(&r->rd, CTL_REPLY_MAX);
    wb_init(&r->out, 0);
}

static void
raw_close(struct raw *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    ctl_reader_release(&r->rd);
    wb_release(&r->out);
}

/* Finds "seq" in a reply the decoder refused (e.g. one with a positive err). */
static uint64_t
refused_seq(const uint8_t *msg, size_t len)
{
    struct pull_rd r, v;
    uint64_t seq = 0;

    rd_init(&r, msg, len);
    if (ctl_map_find(&r, "seq", &v) == 0)
        (void)mp_read_uint(&v, &seq);
    return seq;
}

/* Takes one reply off the wire and counts it; problems are printed now and failed on by
 * check_slots, so that one run lists them all. */
static void
take_reply(struct fixture *f, const uint8_t *msg, size_t len)
{
    struct ctl_reply rep;
    struct slot *s;
    int rc;

    if ((rc = ctl_reply_decode(msg, len, &rep)) != 0) {
        uint64_t seq = refused_seq(msg, len);
        assert_true(seq > 0 && seq < SEQ_MAX);
        s = &f->slots[seq];
        print_error("seq %llu (%s): a reply the client refuses (%s)\n", (unsigned long long)seq,
                    s->what, pull_strerror(rc));
        s->finals++;
        s->bad = true;
        return;
    }
    if (rep.seq == 0) /* a protocol error: counted by the test that caused it */
        return;
    assert_true(rep.seq < SEQ_MAX);
    s = &f->slots[rep.seq];
    if (!s->sent)
        fail_msg("a reply to seq %llu, which was never sent", (unsigned long long)rep.seq);
    if (rep.more) {
        s->mores++;
        if (s->first_more == NULL) {
            s->first_more = malloc(rep.result_len);
            assert_non_null(s->first_more);
            memcpy(s->first_more, rep.result, rep.result_len);
            s->first_more_len = rep.result_len;
        }
        return;
    }
    s->finals++;
    if (s->finals > 1) {
        print_error("seq %llu (%s): reply number %u (err %d \"%s\"; the first: err %d \"%s\")\n",
                    (unsigned long long)rep.seq, s->what, s->finals, rep.err, rep.msg, s->err,
                    s->msg);
        return;
    }
    s->err = rep.err;
    snprintf(s->msg, sizeof(s->msg), "%s", rep.msg);
    s->result = malloc(rep.result_len);
    assert_non_null(s->result);
    memcpy(s->result, rep.result, rep.result_len);
    s->result_len = rep.result_len;
}

/* Writes what is pending and reads what arrived, without blocking. */
static void
raw_io(struct fixture *f, struct raw *r)
{
    uint8_t buf[65536];
    const uint8_t *msg;
    size_t len, used, off;
    ssize_t k;

    while (r->fd >= 0 && r->out_off < r->out.len) {
        k = send(r->fd, r->out.p + r->out_off, r->out.len - r->out_off, MSG_NOSIGNAL);
        if (k < 0)
            break; /* EAGAIN (or the server closed: seen when reading) */
        r->out_off += (size_t)k;
    }
    while (r->fd >= 0 && !r->eof) {
        k = recv(r->fd, buf, sizeof(buf), 0);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) {
            r->eof = true;
            break;
        }
        if (k < 0)
            break;
        for (off = 0; off < (size_t)k; off += used) {
            assert_int_equal(ctl_reader_feed(&r->rd, buf + off, (size_t)k - off, &used), 0);
            while (ctl_reader_pop(&r->rd, &msg, &len) == 1)
                take_reply(f, msg, len);
        }
    }
}

/* Runs the loop and the clients until done(f) or ms pass. */
static void
pump(struct fixture *f, struct raw **rs, size_t nr, bool (*done)(struct fixture *), int ms)
{
    uint64_t until = uv_hrtime() / 1000000 + (uint64_t)ms;
    struct pollfd p[8];

    assert_true(nr <= 8);
    while (uv_hrtime() / 1000000 < until) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        for (size_t i = 0; i < nr; i++)
            raw_io(f, rs[i]);
        if (done != NULL && done(f))
            return;
        for (size_t i = 0; i < nr; i++) {
            p[i].fd = rs[i]->eof ? -1 : rs[i]->fd;
            p[i].events = POLLIN;
            p[i].revents = 0;
        }
        (void)poll(p, nr, 1);
    }
}

/* Every non-stream request has its final reply. */
static bool
all_answered(struct fixture *f)
{
    for (size_t i = 1; i < f->next_seq; i++) {
        if (f->slots[i].sent && !f->slots[i].stream && f->slots[i].finals == 0)
            return false;
    }
    return true;
}

/* ---- Requests ---------------------------------------------------------------------------- */

struct rq {
    struct raw *r;
    msgpack_packer pk;
    struct mp_open args;
    size_t start;
    uint64_t seq;
};

/* Starts a request; pack its args into the returned map. */
static struct mp_open *
rq(struct fixture *f, struct rq *q, struct raw *r, const char *what, const char *cmd, int expect)
{
    struct slot *s;

    memset(q, 0, sizeof(*q));
    q->r = r;
    q->seq = f->next_seq++;
    assert_true(q->seq < SEQ_MAX);
    s = &f->slots[q->seq];
    s->sent = true;
    s->expect = expect;
    s->what = what;
    q->start = ctl_frame_begin(&r->out);
    mp_packer_init(&q->pk, &r->out);
    ctl_pack_request_head(&q->pk, cmd, q->seq);
    mp_open_map(&q->args, &q->pk);
    return &q->args;
}

/* Ends the request (it is written by the next pump) and returns its seq. */
static uint64_t
rq_end(struct rq *q)
{
    mp_close(&q->args);
    assert_int_equal(ctl_frame_end(&q->r->out, q->start, CTL_REQUEST_MAX), 0);
    return q->seq;
}

/* A request with no args or one str arg. */
static uint64_t
send0(struct fixture *f, struct raw *r, const char *what, const char *cmd, int expect)
{
    struct rq q;

    rq(f, &q, r, what, cmd, expect);
    return rq_end(&q);
}

static uint64_t
send_str(struct fixture *f, struct raw *r, const char *what, const char *cmd, const char *k,
         const char *v, int expect)
{
    struct rq q;

    mp_kv_str(rq(f, &q, r, what, cmd, expect), k, v);
    return rq_end(&q);
}

static uint64_t
send_uint(struct fixture *f, struct raw *r, const char *what, const char *cmd, const char *k,
          uint64_t v, int expect)
{
    struct rq q;

    mp_kv_uint(rq(f, &q, r, what, cmd, expect), k, v);
    return rq_end(&q);
}

/* Reads a str field of a slot's result map. */
static void
result_str(const struct slot *s, const char *key, char *out, size_t outsz)
{
    struct pull_rd r, v;
    const char *p;
    uint32_t n;

    assert_non_null(s->result);
    rd_init(&r, s->result, s->result_len);
    assert_int_equal(ctl_map_find(&r, key, &v), 0);
    assert_int_equal(mp_read_str(&v, (uint32_t)outsz - 1, &p, &n), 0);
    memcpy(out, p, n);
    out[n] = '\0';
}

/* Reads result[key], a uint. */
static uint64_t
result_uint(const struct slot *s, const char *key)
{
    struct pull_rd r, v;
    uint64_t u = 0;

    assert_non_null(s->result);
    rd_init(&r, s->result, s->result_len);
    assert_int_equal(ctl_map_find(&r, key, &v), 0);
    assert_int_equal(mp_read_uint(&v, &u), 0);
    return u;
}

/* Reads result[outer][key], a uint. */
static uint64_t
result_uint2(const struct slot *s, const char *outer, const char *key)
{
    struct pull_rd r, o, v;
    uint64_t u = 0;

    assert_non_null(s->result);
    rd_init(&r, s->result, s->result_len);
    assert_int_equal(ctl_map_find(&r, outer, &o), 0);
    assert_int_equal(ctl_map_find(&o, key, &v), 0);
    assert_int_equal(mp_read_uint(&v, &u), 0);
    return u;
}

/* Checks every slot: one final reply, the expected error, more=true only on streams. */
static void
check_slots(struct fixture *f)
{
    unsigned problems = 0;

    for (size_t i = 1; i < f->next_seq; i++) {
        const struct slot *s = &f->slots[i];
        if (!s->sent)
            continue;
        if (s->finals != 1 || s->bad) {
            print_error("seq %zu (%s): %u final replies%s\n", i, s->what, s->finals,
                        s->bad ? ", one the client refuses" : "");
            problems++;
        }
        if (s->mores > 0 && !s->stream) {
            print_error("seq %zu (%s): %u replies with more=true\n", i, s->what, s->mores);
            problems++;
        }
        if (s->expect == EXP_ANY || s->finals == 0)
            continue;
        if (s->expect == EXP_FAIL ? s->err == 0 : s->err != s->expect) {
            print_error("seq %zu (%s): err %d \"%s\", expected %d\n", i, s->what, s->err, s->msg,
                        s->expect);
            problems++;
        }
        if (s->err != 0 && s->msg[0] == '\0') {
            print_error("seq %zu (%s): err %d without a message\n", i, s->what, s->err);
            problems++;
        }
    }
    assert_int_equal(problems, 0);
}

/* ---- The test ---------------------------------------------------------------------------- */

static void
send_bad_args(struct fixture *f, struct raw *r, uint64_t *good_add)
{
    char t200[201], t5000[5001], body[3100];
    struct mp_open *a;
    struct rq q;

    memset(t200, 'x', 200);
    t200[200] = '\0';
    memset(t5000, 'y', 5000);
    t5000[5000] = '\0';
    memset(body, 'b', 3099);
    body[3099] = '\0';

    /* unknown commands */
    send0(f, r, "unknown", "nope", PULL_ERR_UNKNOWN_CMD);
    send0(f, r, "unknown dotted", "record.nope", PULL_ERR_UNKNOWN_CMD);
    send0(f, r, "unknown dyad", "dyad.nope", PULL_ERR_UNKNOWN_CMD);

    /* id, status, peers: no args; extra args are ignored */
    send0(f, r, "id", "id", 0);
    send_str(f, r, "id extra", "id", "junk", "x", 0);
    send0(f, r, "status", "status", 0);
    send0(f, r, "peers", "peers", 0);

    /* connect */
    send0(f, r, "connect missing", "connect", PULL_ERR_ARITY);
    send_uint(f, r, "connect uint", "connect", "address", 7, PULL_ERR_FIELD);
    send_str(f, r, "connect garbage", "connect", "address", "garbage", PULL_ERR_INVAL);
    send_str(f, r, "connect oversized", "connect", "address", t5000, PULL_ERR_FIELD);
    {
        char addr[NODE_ADDR_MAX];
        ident_to_text(f->me.pk, addr);
        snprintf(addr + IDENT_TEXT_LEN, sizeof(addr) - IDENT_TEXT_LEN, "@127.0.0.1:1");
        send_str(f, r, "connect self", "connect", "address", addr, PULL_ERR_BAD_KEY);
        addr[0] = addr[0] == 'a' ? 'b' : 'a';
        send_str(f, r, "connect refused", "connect", "address", addr, EXP_ANY);
        snprintf(addr + IDENT_TEXT_LEN, sizeof(addr) - IDENT_TEXT_LEN, "@nohost");
        send_str(f, r, "connect bad host", "connect", "address", addr, PULL_ERR_INVAL);
    }

    /* record.add */
    send0(f, r, "add no args", "record.add", PULL_ERR_ARITY);
    send_str(f, r, "add no title", "record.add", "kind", "offer", PULL_ERR_ARITY);
    send_str(f, r, "add no kind", "record.add", "title", "t", PULL_ERR_ARITY);
    a = rq(f, &q, r, "add garbage kind", "record.add", PULL_ERR_KIND);
    mp_kv_str(a, "kind", "garbage");
    mp_kv_str(a, "title", "t");
    rq_end(&q);
    a = rq(f, &q, r, "add withdrawn kind", "record.add", PULL_ERR_KIND);
    mp_kv_str(a, "kind", "withdrawn");
    mp_kv_str(a, "title", "t");
    rq_end(&q);
    a = rq(f, &q, r, "add uint kind", "record.add", PULL_ERR_KIND);
    mp_kv_uint(a, "kind", 1);
    mp_kv_str(a, "title", "t");
    rq_end(&q);
    a = rq(f, &q, r, "add 200-byte title", "record.add", PULL_ERR_TITLE);
    mp_kv_str(a, "kind", "offer");
    mp_kv_str(a, "title", t200);
    rq_end(&q);
    a = rq(f, &q, r, "add 5000-byte title", "record.add", PULL_ERR_FIELD);
    mp_kv_str(a, "kind", "need");
    mp_kv_str(a, "title", t5000);
    rq_end(&q);
    a = rq(f, &q, r, "add uint title", "record.add", PULL_ERR_FIELD);
    mp_kv_str(a, "kind", "need");
    mp_kv_uint(a, "title", 5);
    rq_end(&q);
    a = rq(f, &q, r, "add empty title", "record.add", PULL_ERR_TITLE);
    mp_kv_str(a, "kind", "need");
    mp_kv_str(a, "title", "");
    rq_end(&q);
    a = rq(f, &q, r, "add long body", "record.add", PULL_ERR_BODY);
    mp_kv_str(a, "kind", "offer");
    mp_kv_str(a, "title", "t");
    mp_kv_str(a, "body", body);
    rq_end(&q);
    a = rq(f, &q, r, "add tags not an array", "record.add", PULL_ERR_TAGS);
    mp_kv_str(a, "kind", "offer");
    mp_kv_str(a, "title", "t");
    mp_kv_str(a, "tags", "rust");
    rq_end(&q);
    a = rq(f, &q, r, "add 17 tags", "record.add", PULL_ERR_TAGS);
    mp_kv_str(a, "kind", "offer");
    mp_kv_str(a, "title", "t");
    {
        struct mp_open tags;
        mp_key(a, "tags");
        mp_open_array(&tags, &q.pk);
        for (int i = 0; i < 17; i++)
            mp_pack_cstr(mp_item(&tags), "tag");
        mp_close(&tags);
    }
    rq_end(&q);
    a = rq(f, &q, r, "add bad tag", "record.add", EXP_FAIL);
    mp_kv_str(a, "kind", "offer");
    mp_kv_str(a, "title", "t");
    {
        struct mp_open tags;
        mp_key(a, "tags");
        mp_open_array(&tags, &q.pk);
        mp_pack_cstr(mp_item(&tags), "two words"); /* "UPPER" is folded to "upper" now */
        mp_close(&tags);
    }
    rq_end(&q);
    a = rq(f, &q, r, "add expires 0", "record.add", PULL_ERR_EXPIRY);
    mp_kv_str(a, "kind", "offer");
    mp_kv_str(a, "title", "t");
    mp_kv_uint(a, "expires_s", 0);
    rq_end(&q);
    a = rq(f, &q, r, "add expires 1 year", "record.add", PULL_ERR_EXPIRY);
    mp_kv_str(a, "kind", "offer");
    mp_kv_str(a, "title", "t");
    mp_kv_uint(a, "expires_s", 365 * 86400);
    rq_end(&q);
    a = rq(f, &q, r, "add expires str", "record.add", PULL_ERR_EXPIRY);
    mp_kv_str(a, "kind", "offer");
    mp_kv_str(a, "title", "t");
    mp_kv_str(a, "expires_s", "soon");
    rq_end(&q);
    a = rq(f, &q, r, "add bad location", "record.add", PULL_ERR_LOCATION);
    mp_kv_str(a, "kind", "offer");
    mp_kv_str(a, "title", "t");
    mp_kv_str(a, "location", "not a geohash!");
    rq_end(&q);
    a = rq(f, &q, r, "add nil kind", "record.add", PULL_ERR_ARITY);
    msgpack_pack_nil(mp_key(a, "kind"));
    mp_kv_str(a, "title", "t");
    rq_end(&q);
    a = rq(f, &q, r, "add good", "record.add", 0);
    mp_kv_str(a, "kind", "offer");
    mp_kv_str(a, "title", "Bicycle repair lessons");
    mp_kv_str(a, "body", "weekends");
    {
        struct mp_open tags;
        mp_key(a, "tags");
        mp_open_array(&tags, &q.pk);
        mp_pack_cstr(mp_item(&tags), "bike");
        mp_close(&tags);
    }
    mp_kv_uint(a, "expires_s", 86400);
    *good_add = rq_end(&q);

    /* record.edit, renew, withdraw without a usable id */
    static const char *const versions[] = {"record.edit", "record.renew", "record.withdraw"};
    for (size_t i = 0; i < 3; i++) {
        send0(f, r, versions[i], versions[i], PULL_ERR_ARITY);
        send_uint(f, r, versions[i], versions[i], "id", 12, PULL_ERR_FIELD);
        send_str(f, r, versions[i], versions[i], "id", "abc", PULL_ERR_FIELD);
        send_str(f, r, versions[i], versions[i], "id", t200, PULL_ERR_FIELD);
        send_str(f, r, versions[i], versions[i], "id", "aaaaaaaa", PULL_ERR_NOT_FOUND);
        a = rq(f, &q, r, versions[i], versions[i], PULL_ERR_KIND);
        mp_kv_str(a, "id", "aaaaaaaa");
        mp_kv_str(a, "kind", "garbage");
        rq_end(&q);
    }

    /* record.list */
    send0(f, r, "list", "record.list", 0);
    send_str(f, r, "list offers", "record.list", "kind", "offer", 0);
    send_str(f, r, "list garbage kind", "record.list", "kind", "garbage", PULL_ERR_KIND);
    send_str(f, r, "list profile kind", "record.list", "kind", "profile", PULL_ERR_KIND);
    send_uint(f, r, "list uint kind", "record.list", "kind", 3, PULL_ERR_KIND);

    /* search */
    send0(f, r, "search", "search", 0);
    send_str(f, r, "search words str", "search", "words", "bike", PULL_ERR_FIELD);
    send_uint(f, r, "search limit 0", "search", "limit", 0, PULL_ERR_FIELD);
    send_uint(f, r, "search limit huge", "search", "limit", 1u << 30, PULL_ERR_FIELD);
    send_str(f, r, "search limit str", "search", "limit", "10", PULL_ERR_FIELD);
    send_str(f, r, "search garbage kind", "search", "kind", "garbage", PULL_ERR_KIND);
    send_str(f, r, "search bad author", "search", "author", "!!", PULL_ERR_FIELD);
    send_uint(f, r, "search tags uint", "search", "tags", 1, PULL_ERR_FIELD);
    a = rq(f, &q, r, "search 300 words", "search", EXP_FAIL);
    {
        struct mp_open words;
        mp_key(a, "words");
        mp_open_array(&words, &q.pk);
        for (int i = 0; i < 300; i++)
            mp_pack_cstr(mp_item(&words), "w");
        mp_close(&words);
    }
    rq_end(&q);
    a = rq(f, &q, r, "search long word", "search", PULL_ERR_FIELD);
    {
        struct mp_open words;
        mp_key(a, "words");
        mp_open_array(&words, &q.pk);
        mp_pack_cstr(mp_item(&words), t5000);
        mp_close(&words);
    }
    rq_end(&q);
    a = rq(f, &q, r, "search words", "search", 0);
    {
        struct mp_open words;
        mp_key(a, "words");
        mp_open_array(&words, &q.pk);
        mp_pack_cstr(mp_item(&words), "bicycle");
        mp_close(&words);
    }
    mp_kv_str(a, "kind", "offer");
    mp_kv_uint(a, "limit", 5);
    rq_end(&q);

    /* show */
    send0(f, r, "show missing", "show", PULL_ERR_ARITY);
    send_uint(f, r, "show uint", "show", "id", 1, PULL_ERR_FIELD);
    /* "ab" is no id, but could be someone's name: nobody here */
    send_str(f, r, "show short", "show", "id", "ab", PULL_ERR_NOT_FOUND);
    send_str(f, r, "show no name", "show", "id", "!!", PULL_ERR_FIELD);
    send_str(f, r, "show bidi", "show", "id", "Ada\xe2\x80\xae", PULL_ERR_FIELD);
    send_str(f, r, "show oversized", "show", "id", t200, PULL_ERR_FIELD);
    send_str(f, r, "show none", "show", "id", "aaaaaaaa", PULL_ERR_NOT_FOUND);
    {
        char me[IDENT_TEXT_LEN + 1];
        ident_to_text(f->me.pk, me);
        send_str(f, r, "show me", "show", "id", me, 0);
    }

    /* import */
    send0(f, r, "import missing", "import", PULL_ERR_ARITY);
    send_str(f, r, "import str", "import", "envelopes", "x", PULL_ERR_FIELD);
    a = rq(f, &q, r, "import garbage", "import", 0);
    {
        struct mp_open envs;
        mp_key(a, "envelopes");
        mp_open_array(&envs, &q.pk);
        mp_pack_bin(mp_item(&envs), "garbage", 7);
        mp_pack_cstr(mp_item(&envs), "not a bin");
        mp_close(&envs);
    }
    rq_end(&q);
    a = rq(f, &q, r, "import empty", "import", 0);
    {
        struct mp_open envs;
        mp_key(a, "envelopes");
        mp_open_array(&envs, &q.pk);
        mp_close(&envs);
    }
    rq_end(&q);
    a = rq(f, &q, r, "import 257", "import", PULL_ERR_FIELD);
    {
        struct mp_open envs;
        mp_key(a, "envelopes");
        mp_open_array(&envs, &q.pk);
        for (int i = 0; i < 257; i++)
            mp_pack_bin(mp_item(&envs), "x", 1);
        mp_close(&envs);
    }
    rq_end(&q);

    /* dyads */
    send0(f, r, "propose missing", "dyad.propose", PULL_ERR_ARITY);
    send_uint(f, r, "propose uint", "dyad.propose", "record", 1, EXP_FAIL);
    send_str(f, r, "propose none", "dyad.propose", "record", "aaaaaaaa", EXP_FAIL);
    send_str(f, r, "propose oversized", "dyad.propose", "record", t5000, EXP_FAIL);
    static const char *const acts[] = {"dyad.accept", "dyad.decline", "dyad.done",
                                       "dyad.ack",    "dyad.cancel",  "dyad.show"};
    for (size_t i = 0; i < sizeof(acts) / sizeof(acts[0]); i++) {
        send0(f, r, acts[i], acts[i], PULL_ERR_ARITY);
        send_uint(f, r, acts[i], acts[i], "id", 1, EXP_FAIL);
        send_str(f, r, acts[i], acts[i], "id", "aaaaaaaa", EXP_FAIL);
        a = rq(f, &q, r, acts[i], acts[i], EXP_FAIL);
        mp_kv_str(a, "id", "aaaaaaaa");
        mp_kv_str(a, "message", t5000);
        rq_end(&q);
    }
    send0(f, r, "dyad list", "dyad.list", 0);
    send0(f, r, "dyad message missing", "dyad.message", PULL_ERR_ARITY);
    send_str(f, r, "dyad message no text", "dyad.message", "id", "aaaaaaaa", PULL_ERR_ARITY);
    a = rq(f, &q, r, "dyad message none", "dyad.message", PULL_ERR_NOT_FOUND);
    mp_kv_str(a, "id", "aaaaaaaa");
    mp_kv_str(a, "message", "hello");
    rq_end(&q);

    /* people: profiles and petnames */
    send0(f, r, "profile show none", "profile.show", PULL_ERR_NOT_FOUND);
    send0(f, r, "profile set nothing", "profile.set", PULL_ERR_ARITY);
    send_str(f, r, "profile set bidi", "profile.set", "name", "Ada\xe2\x80\xae", PULL_ERR_CONTROL);
    send_str(f, r, "profile set newline", "profile.set", "name", "Ada\nBob", PULL_ERR_CONTROL);
    send_str(f, r, "profile set long", "profile.set", "name", t200, PULL_ERR_FIELD);
    send_uint(f, r, "profile set uint", "profile.set", "name", 7, PULL_ERR_FIELD);
    a = rq(f, &q, r, "profile set zero-width about", "profile.set", PULL_ERR_CONTROL);
    mp_kv_str(a, "name", "Ada");
    mp_kv_str(a, "about", "hi\xe2\x80\x8bthere");
    rq_end(&q);
    a = rq(f, &q, r, "profile set good", "profile.set", 0);
    mp_kv_str(a, "name", "Ada Lovelace");
    mp_kv_str(a, "about", "I write C\nand fix bikes");
    rq_end(&q);
    send_str(f, r, "profile show bad", "profile.show", "author", "!!", PULL_ERR_FIELD);
    send_str(f, r, "profile show nobody", "profile.show", "author", "Nobody", PULL_ERR_NOT_FOUND);
    send0(f, r, "name missing", "name.set", PULL_ERR_ARITY);
    send_str(f, r, "name no petname", "name.set", "author", "aaaaaaaa", PULL_ERR_ARITY);
    a = rq(f, &q, r, "name nobody", "name.set", PULL_ERR_NOT_FOUND);
    mp_kv_str(a, "author", "aaaaaaaa");
    mp_kv_str(a, "petname", "Al");
    rq_end(&q);
    {
        char me[IDENT_TEXT_LEN + 1];
        ident_to_text(f->me.pk, me);
        a = rq(f, &q, r, "name me", "name.set", PULL_ERR_INVAL);
        mp_kv_str(a, "author", me);
        mp_kv_str(a, "petname", "Me");
        rq_end(&q);
    }
    send0(f, r, "name remove missing", "name.remove", PULL_ERR_ARITY);
    send0(f, r, "names", "names", 0);
}

/* Commands that need the id of the good record. */
static void
send_on_record(struct fixture *f, struct raw *r, const char *id)
{
    char prefix[9], t200[201];
    struct mp_open *a;
    struct rq q;

    memset(t200, 'x', 200);
    t200[200] = '\0';
    memcpy(prefix, id, 8);
    prefix[8] = '\0';
    send_str(f, r, "show record", "show", "id", prefix, 0);
    send_str(f, r, "propose own record", "dyad.propose", "record", prefix, EXP_FAIL);
    a = rq(f, &q, r, "edit wrong kind", "record.edit", PULL_ERR_KIND);
    mp_kv_str(a, "id", prefix);
    mp_kv_str(a, "kind", "need");
    rq_end(&q);
    a = rq(f, &q, r, "edit 200-byte title", "record.edit", PULL_ERR_TITLE);
    mp_kv_str(a, "id", prefix);
    mp_kv_str(a, "kind", "offer");
    mp_kv_str(a, "title", t200);
    rq_end(&q);
    a = rq(f, &q, r, "edit", "record.edit", 0);
    mp_kv_str(a, "id", prefix);
    mp_kv_str(a, "kind", "offer");
    mp_kv_str(a, "title", "Bicycle repair, evenings");
    rq_end(&q);
}

/* After the edit: renew and withdraw the live version. */
static void
send_on_record2(struct fixture *f, struct raw *r, const char *id)
{
    char prefix[9];
    struct mp_open *a;
    struct rq q;

    memcpy(prefix, id, 8);
    prefix[8] = '\0';
    a = rq(f, &q, r, "renew expires 0", "record.renew", PULL_ERR_EXPIRY);
    mp_kv_str(a, "id", prefix);
    mp_kv_uint(a, "expires_s", 0);
    rq_end(&q);
    a = rq(f, &q, r, "renew", "record.renew", 0);
    mp_kv_str(a, "id", prefix);
    mp_kv_str(a, "kind", "offer");
    rq_end(&q);
}

static void
send_withdraw(struct fixture *f, struct raw *r, const char *id)
{
    char prefix[9];
    struct mp_open *a;
    struct rq q;

    memcpy(prefix, id, 8);
    prefix[8] = '\0';
    a = rq(f, &q, r, "withdraw wrong kind", "record.withdraw", PULL_ERR_KIND);
    mp_kv_str(a, "id", prefix);
    mp_kv_str(a, "kind", "need");
    rq_end(&q);
    send_str(f, r, "withdraw", "record.withdraw", "id", prefix, 0);
}

/* Invalid frames: each gets one error reply, then the connection is closed. */
static void
check_protocol_error(struct fixture *f, const uint8_t *frame, size_t len)
{
    struct raw r;
    const uint8_t *msg;
    size_t mlen, used;
    struct ctl_reply rep;
    uint8_t buf[4096];
    ssize_t k;
    size_t have = 0;

    raw_open(f, &r);
    assert_int_equal(wb_put(&r.out, frame, len), 0);
    /* read by hand: the replies carry seq 0 or a seq the test never counted */
    for (int i = 0; i < 2000 && !r.eof; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (r.out_off < r.out.len) {
            k = send(r.fd, r.out.p + r.out_off, r.out.len - r.out_off, MSG_NOSIGNAL);
            if (k > 0)
                r.out_off += (size_t)k;
        }
        k = recv(r.fd, buf + have, sizeof(buf) - have, 0);
        if (k == 0)
            r.eof = true;
        else if (k > 0)
            have += (size_t)k;
        else
            (void)poll(NULL, 0, 1);
    }
    assert_true(r.eof);
    assert_int_equal(ctl_reader_feed(&r.rd, buf, have, &used), 0);
    assert_int_equal(used, have); /* exactly one reply */
    assert_int_equal(ctl_reader_pop(&r.rd, &msg, &mlen), 1);
    assert_int_equal(ctl_reply_decode(msg, mlen, &rep), 0);
    assert_int_equal(rep.err, PULL_ERR_PROTOCOL);
    assert_false(rep.more);
    raw_close(&r);
}

static void
test_one_reply_each(void **state)
{
    struct fixture *f = *state;
    struct raw a, w, x;
    struct raw *all[3] = {&a, &w, &x};
    uint64_t good_add, edit_seq, renew_seq, watch_seq, export_seq, export_all_seq;
    uint64_t status_seq;
    char id[IDENT_TEXT_LEN + 1];
    struct rq q;

    raw_open(f, &a);
    raw_open(f, &w);
    raw_open(f, &x);

    /* a watcher first, so that the records below become events */
    send_str(f, &w, "watch bad words", "watch", "words", "x", PULL_ERR_FIELD);
    send_uint(f, &w, "watch bad mine", "watch", "mine", 3, PULL_ERR_FIELD);
    send_str(f, &w, "watch garbage kind", "watch", "kind", "garbage", PULL_ERR_KIND);
    watch_seq = send0(f, &w, "watch", "watch", 0);
    f->slots[watch_seq].stream = true;
    send0(f, &w, "watch again", "watch", PULL_ERR_STATE);
    pump(f, all, 3, all_answered, WAIT_MS);
    assert_int_equal(f->slots[watch_seq].mores, 1); /* ready */

    send_bad_args(f, &a, &good_add);
    pump(f, all, 3, all_answered, WAIT_MS);
    pump(f, all, 3, NULL, SETTLE_MS); /* late replies (after commits) */
    assert_true(all_answered(f));
    assert_int_equal(f->slots[good_add].err, 0);
    result_str(&f->slots[good_add], "id", id, sizeof(id));

    send_on_record(f, &a, id);
    edit_seq = f->next_seq - 1;
    pump(f, all, 3, all_answered, WAIT_MS);
    assert_int_equal(f->slots[edit_seq].err, 0);
    result_str(&f->slots[edit_seq], "id", id, sizeof(id));
    send_on_record2(f, &a, id);
    renew_seq = f->next_seq - 1;
    pump(f, all, 3, all_answered, WAIT_MS);
    assert_int_equal(f->slots[renew_seq].err, 0);
    result_str(&f->slots[renew_seq], "id", id, sizeof(id));

    /* exports: mine, then all (and one while the first may still run) on another connection */
    export_seq = send0(f, &x, "export", "export", 0);
    f->slots[export_seq].stream = true;
    send_str(f, &x, "export bad all", "export", "all", "yes", EXP_FAIL);
    pump(f, all, 3, all_answered, WAIT_MS);
    rq(f, &q, &x, "export all", "export", 0);
    mp_kv_bool(&q.args, "all", true);
    export_all_seq = rq_end(&q);
    f->slots[export_all_seq].stream = true;
    send_withdraw(f, &a, id);
    pump(f, all, 3, all_answered, WAIT_MS);
    pump(f, all, 3, NULL, SETTLE_MS);
    /* each export sent the record in a chunk, then its one final reply */
    assert_true(f->slots[export_seq].mores >= 1);
    assert_true(f->slots[export_all_seq].mores >= 1);

    /* the watcher heard the records: ready + add, edit, renew (the tombstone is not shown) */
    assert_true(f->slots[watch_seq].mores >= 4);
    assert_int_equal(f->slots[watch_seq].finals, 0);

    /* the server saw no handler break the one-reply rule */
    status_seq = send0(f, &a, "status at the end", "status", 0);
    pump(f, all, 3, all_answered, WAIT_MS);
    assert_int_equal(result_uint2(&f->slots[status_seq], "control", "reply_bugs"), 0);
    assert_int_equal(result_uint2(&f->slots[status_seq], "control", "watchers"), 1);
    assert_true(result_uint2(&f->slots[status_seq], "counters", "records_local") >= 4);

    /* stop: the watch ends with its one final reply */
    ctl_server_stop(f->ctl);
    pump(f, all, 3, NULL, SETTLE_MS);
    assert_true(a.eof && w.eof && x.eof);
    check_slots(f);
    raw_close(&a);
    raw_close(&w);
    raw_close(&x);
}

static void
test_protocol_errors(void **state)
{
    struct fixture *f = *state;
    static const uint8_t not_a_map[] = {0, 0, 0, 1, 0x01};
    static const uint8_t no_seq[] = {0, 0, 0, 6, 0x81, 0xa3, 'c', 'm', 'd', 0xa0};
    static const uint8_t zero_len[] = {0, 0, 0, 0};
    static const uint8_t too_long[] = {0xff, 0xff, 0xff, 0xff};
    /* {"cmd": "id", "seq": 5, "args": 1}: args of the wrong type */
    static const uint8_t bad_args[] = {0,    0,    0,   19,  0x83, 0xa3, 'c', 'm',
                                       'd',  0xa2, 'i', 'd', 0xa3, 's',  'e', 'q',
                                       0x05, 0xa4, 'a', 'r', 'g',  's',  0x01};

    check_protocol_error(f, not_a_map, sizeof(not_a_map));
    check_protocol_error(f, no_seq, sizeof(no_seq));
    check_protocol_error(f, zero_len, sizeof(zero_len));
    check_protocol_error(f, too_long, sizeof(too_long));
    check_protocol_error(f, bad_args, sizeof(bad_args));
}

/* ---- Strangers' budget -------------------------------------------------------------------- */

static bool
all_eof(struct raw *const *rs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!rs[i]->eof)
            return false;
    }
    return true;
}

static struct raw *const *eof_set;
static size_t eof_n;

static bool
set_closed(struct fixture *f)
{
    (void)f;
    return all_eof(eof_set, eof_n);
}

/* Clients that send nothing fill every slot: a new one closes the one idle longest and is
 * answered; silent clients are closed after ctl_first_request_ms, clients between requests
 * after ctl_idle_ms; streams may not take the reserved slot. */
static void
test_idle_and_full(void **state)
{
    struct fixture *f = *state;
    struct raw silent[4], owner, w[4];
    struct raw *all[8];
    uint64_t id, again, watch[4];

    for (int i = 0; i < 4; i++) {
        raw_open(f, &silent[i]);
        all[i] = &silent[i];
        pump(f, all, (size_t)i + 1, NULL, 20); /* accepted in this order */
    }
    assert_int_equal(f->ctl->nclients, 4);
    raw_open(f, &owner);
    all[4] = &owner;
    id = send0(f, &owner, "id with every slot taken", "id", 0);
    pump(f, all, 5, all_answered, WAIT_MS);
    assert_int_equal(f->slots[id].finals, 1);
    assert_int_equal(f->slots[id].err, 0);
    assert_int_equal(f->ctl->evicted, 1);
    pump(f, all, 5, NULL, 50);
    assert_true(silent[0].eof); /* the one idle longest */
    assert_false(silent[3].eof);
    /* the others go after ctl_first_request_ms; the owner, who spoke, after ctl_idle_ms */
    eof_set = all + 1, eof_n = 3;
    pump(f, all, 5, set_closed, 2000);
    assert_true(all_eof(all + 1, 3));
    assert_false(owner.eof);
    again = send0(f, &owner, "a request resets the idle time", "id", 0);
    pump(f, all, 5, all_answered, WAIT_MS);
    assert_int_equal(f->slots[again].err, 0);
    eof_set = all + 4, eof_n = 1;
    pump(f, all, 5, set_closed, 3000);
    assert_true(owner.eof);
    assert_int_equal(f->ctl->idle_closed, 4);

    raw_close(&owner);
    for (int i = 0; i < 4; i++)
        raw_close(&silent[i]);

    /* three streams at most (4 slots, 1 reserved); watchers that read are never idle */
    for (int i = 0; i < 4; i++) {
        raw_open(f, &w[i]);
        all[i] = &w[i];
        watch[i] = send0(f, &w[i], "watch", "watch", i < 3 ? 0 : PULL_ERR_AGAIN);
        f->slots[watch[i]].stream = i < 3;
        pump(f, all, (size_t)i + 1, NULL, 50);
    }
    assert_int_equal(f->slots[watch[3]].finals, 1);
    assert_non_null(strstr(f->slots[watch[3]].msg, "too many watches"));
    raw_open(f, &owner);
    all[4] = &owner;
    (void)send0(f, &owner, "status beside three watchers", "status", 0);
    pump(f, all, 5, all_answered, WAIT_MS);
    assert_true(w[3].eof || f->ctl->evicted == 2); /* the refused one was idle: it made room */
    pump(f, all, 5, NULL, 1000);                   /* past ctl_idle_ms */
    assert_int_equal(ctl_search_watchers(f->ctl), 3);
    for (int i = 0; i < 3; i++) {
        assert_false(w[i].eof);
        assert_int_equal(f->slots[watch[i]].mores, 1); /* ready */
    }
    for (int i = 0; i < 4; i++)
        raw_close(&w[i]);
    raw_close(&owner);
}

/* ---- The dispatcher's guarantee, with handlers that break the rules ------------------------ */

static void
ok_reply(struct ctl_call *call, bool more)
{
    struct mp_open m;

    mp_open_map(&m, ctl_begin(call, more));
    mp_kv_bool(&m, "ok", true);
    mp_close(&m);
    ctl_send(call);
}

static int
h_twice(struct ctl_call *call, const struct ctl_request *req)
{
    (void)req;
    ok_reply(call, false);
    ok_reply(call, false); /* refused */
    return 0;
}

static int
h_silent(struct ctl_call *call, const struct ctl_request *req)
{
    (void)call, (void)req;
    return 0; /* neither replied nor kept */
}

static int
h_error_after_reply(struct ctl_call *call, const struct ctl_request *req)
{
    (void)req;
    ok_reply(call, false);
    return ctl_fail(call, PULL_ERR_INVAL, "too late"); /* dropped */
}

static int
h_positive(struct ctl_call *call, const struct ctl_request *req)
{
    (void)call, (void)req;
    return 1; /* not an error code */
}

static void
release_silently(void *arg, int result)
{
    (void)result;
    ctl_done(arg, 0); /* kept, and let go without a reply */
}

static int
h_kept_silent(struct ctl_call *call, const struct ctl_request *req)
{
    (void)req;
    assert_int_equal(node_after_commit(call->srv->n, release_silently, ctl_keep(call)), 0);
    return 0;
}

static void
release_failing(void *arg, int result)
{
    struct ctl_call *call = arg;

    (void)result;
    ctl_done(call, ctl_fail(call, PULL_ERR_NOT_FOUND, "gone after the commit"));
}

static int
h_kept_error(struct ctl_call *call, const struct ctl_request *req)
{
    (void)req;
    assert_int_equal(node_after_commit(call->srv->n, release_failing, ctl_keep(call)), 0);
    return 0;
}

static int
h_kept_reply_twice(struct ctl_call *call, const struct ctl_request *req)
{
    (void)req;
    ctl_keep(call);
    ok_reply(call, false);
    ctl_done(call, PULL_ERR_IO); /* an error after the reply: dropped */
    return 0;
}

static int
h_more_then_final(struct ctl_call *call, const struct ctl_request *req)
{
    (void)req;
    ok_reply(call, true);
    ok_reply(call, true);
    ok_reply(call, false);
    ok_reply(call, true); /* after the final reply: refused */
    return 0;
}

/* An importing client is not read while the node's verifiers are full (it would be
 * verified here on the loop otherwise): it waits, and every request is answered with all
 * its records imported. 24 requests of 256 are three times the verifiers' budget. */
static void
test_import_waits_for_verifiers(void **state)
{
    enum { REQS = 24, PER = CTL_CHUNK_ENVELOPES, AUTHORS = 64 };
    struct fixture *f = *state;
    struct raw c, *rs[1] = {&c};
    struct ident *au = calloc(AUTHORS, sizeof(*au));
    uint64_t now = (uint64_t)time(NULL), seqs[REQS];
    struct pull_wb w;
    struct rq q;

    assert_non_null(au);
    for (int i = 0; i < AUTHORS; i++)
        assert_int_equal(ident_generate(&au[i]), 0);
    raw_open(f, &c);
    wb_init(&w, RECORD_ENVELOPE_MAX);
    for (int r = 0; r < REQS; r++) {
        struct mp_open envs, *a = rq(f, &q, &c, "import a chunk", "import", 0);
        mp_key(a, "envelopes");
        mp_open_array(&envs, &q.pk);
        for (int i = 0; i < PER; i++) {
            int k = r * PER + i;
            struct record rec;
            record_init(&rec);
            rec.kind = RECORD_OFFER;
            memcpy(rec.author, au[k % AUTHORS].pk, 32);
            memset(rec.slot, 0, RECORD_SLOT_BYTES);
            rec.slot[0] = (uint8_t)(k / AUTHORS);
            rec.slot[1] = (uint8_t)(k / AUTHORS >> 8);
            rec.seq = 1;
            rec.created = now - 60;
            rec.expires = now + 86400;
            snprintf(rec.title, sizeof(rec.title), "offer %d of a large import", k);
            w.len = 0;
            assert_int_equal(record_sign(&rec, &au[k % AUTHORS], &w, NULL), 0);
            mp_pack_bin(mp_item(&envs), w.p, w.len);
        }
        mp_close(&envs);
        seqs[r] = rq_end(&q);
    }
    wb_release(&w);
    pump(f, rs, 1, all_answered, 60000);
    check_slots(f);
    for (int r = 0; r < REQS; r++)
        assert_int_equal(result_uint(&f->slots[seqs[r]], "imported"), PER);
    assert_true(f->ctl->verify_waits > 0);
    raw_close(&c);
    for (int i = 0; i < AUTHORS; i++)
        ident_wipe(&au[i]);
    free(au);
}

static void
test_dispatcher_rules(void **state)
{
    static const struct ctl_command table[] = {
        {"twice", h_twice, {NULL}, 0},
        {"silent", h_silent, {NULL}, 0},
        {"error-after-reply", h_error_after_reply, {NULL}, 0},
        {"positive", h_positive, {NULL}, 0},
        {"kept-silent", h_kept_silent, {NULL}, 0},
        {"kept-error", h_kept_error, {NULL}, 0},
        {"kept-reply-twice", h_kept_reply_twice, {NULL}, 0},
        {"more-then-final", h_more_then_final, {NULL}, CTL_F_STREAM},
        {"needs-x", h_twice, {"x", NULL}, 0},
    };
    struct fixture *f = *state;
    struct raw r;
    struct raw *all[1] = {&r};
    uint64_t twice, silent, late, positive, kept_silent, kept_error, kept_twice, more, arity;

    ctl_server_set_commands(f->ctl, table, sizeof(table) / sizeof(table[0]));
    printf("(the seven bugs below are this test's, on purpose)\n");
    raw_open(f, &r);
    twice = send0(f, &r, "twice", "twice", 0);
    silent = send0(f, &r, "silent", "silent", PULL_ERR_STATE);
    late = send0(f, &r, "error after reply", "error-after-reply", 0);
    positive = send0(f, &r, "positive", "positive", PULL_ERR_STATE);
    kept_silent = send0(f, &r, "kept silent", "kept-silent", PULL_ERR_STATE);
    kept_error = send0(f, &r, "kept error", "kept-error", PULL_ERR_NOT_FOUND);
    kept_twice = send0(f, &r, "kept reply twice", "kept-reply-twice", 0);
    more = send0(f, &r, "more then final", "more-then-final", 0);
    f->slots[more].stream = true;
    arity = send0(f, &r, "missing x", "needs-x", PULL_ERR_ARITY);
    send0(f, &r, "the real table is gone", "status", PULL_ERR_UNKNOWN_CMD);
    pump(f, all, 1, all_answered, WAIT_MS);
    pump(f, all, 1, NULL, SETTLE_MS);
    check_slots(f);
    assert_string_equal(f->slots[kept_error].msg, "gone after the commit");
    assert_non_null(strstr(f->slots[silent].msg, "internal error"));
    assert_non_null(strstr(f->slots[kept_silent].msg, "internal error"));
    assert_non_null(strstr(f->slots[positive].msg, "internal error"));
    assert_string_equal(f->slots[arity].msg, "missing argument 'x'");
    assert_int_equal(f->slots[more].mores, 2);
    (void)twice, (void)late, (void)kept_twice;
    /* twice, silent, error after reply, positive, kept silent, kept reply twice, more after
     * the final reply */
    assert_int_equal(f->ctl->reply_bugs, 7);
    raw_close(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_reply_each, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dispatcher_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_waits_for_verifiers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_and_full, setup_small, teardown),
    };
    signal(SIGPIPE, SIG_IGN); /* as pulld: a client that went away is a write error */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
