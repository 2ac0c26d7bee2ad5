/*
 * ctl_server: pulld's side of the control socket (proto/ctl.h is the specification).
 *
 * One libuv unix socket at DATA_DIR/pulld.sock, mode 0600, at most ctl_max_clients
 * connections. Per connection: a bounded frame reader (the length is checked before any
 * byte of the body is buffered), at most CTL_MSGS_PER_READ requests handled per read
 * callback (the rest waits for the next loop turn with reading paused), and a bounded
 * outbound queue: a client whose unsent replies exceed CTL_QUEUE_MAX (CTL_WATCH_QUEUE_MAX
 * for watch events) is dropped, never buffered without limit. Export streams are paced by
 * the client: the next chunk is produced when the previous one has been written.
 *
 * Commands come from one table {name, handler, required args, flags}; proto/ctl checks
 * existence and required args before the handler runs. A frame that is not a valid request
 * closes only that connection (counters.ctl_bad). Writes (record.*, import) go through
 * node_submit and are answered only from the commit callback: what is acknowledged is on
 * disk. A client is freed only when its handle is closed and no callback refers to it
 * (refs), never inside its own callback chain.
 *
 * Search runs on the node's in-memory index (lib/search.h, kept by the commit path); only
 * the hits are read from the store. Watchers hear of new records and dyad events through
 * the node's observers.
 */
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/ctl_server.h"
#include "daemon/dyads.h"
#include "daemon/lan.h"
#include "daemon/node.h"
#include "lib/search.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/match.h"
#include "lib/mp.h"
#include "lib/paths.h"
#include "proto/ctl.h"

#ifndef PULL_VERSION
#define PULL_VERSION "0.0.0"
#endif

#define CTL_MSGS_PER_READ 32
#define CTL_QUEUE_MAX (CTL_REPLY_MAX + (8u << 20)) /* unsent bytes per client */
#define CTL_WATCH_QUEUE_MAX (1u << 20)             /* ... while it only gets events */
#define CTL_EXPORT_CHUNK_BYTES (1u << 20)
#define CTL_ADDRS_MAX 16
#define CTL_TEXT_ARG_MAX 4096 /* longest str arg read (longer: "bad argument") */
#define CTL_SEARCH_DEFAULT 20
#define CTL_ARG_WORD_MAX 1024
#define CTL_LINGER_MS 2000

/* dyads.c serves "dyad.*" (daemon/dyads.h); weak so that pulld links without it. */

struct ctl_client;

/* An export stream in progress. */
struct ctl_export {
    uint64_t seq;
    bool all;
    uint64_t sent;
    /* all: resume after (created, id) in time order */
    uint64_t cur_created;
    uint8_t last_id[RECORD_ID_BYTES];
    bool started;
    /* mine: every envelope collected at the start */
    struct pull_wb mine; /* u32 length || envelope, ... */
    size_t mine_off;
};

struct ctl_watch {
    uint64_t seq;
    struct match_query q;
    bool filtered; /* words, kind or tags given */
    bool mine;     /* match and dyad events even if filtered */
};

struct ctl_client {
    uv_pipe_t pipe; /* first: the handle's data points back here anyway */
    struct ctl_server *srv;
    struct ctl_client *next, *prev;
    struct ctl_reader rd;
    uint8_t *rest; /* received bytes not yet fed (reading paused) */
    size_t rest_len, rest_off;
    uv_timer_t resume; /* continues with rest on the next loop turn */
    size_t queued;     /* bytes written but not yet completed */
    unsigned refs;     /* callbacks that still refer to the client; +1 for the handles */
    unsigned handles;  /* open handles (pipe, resume) */
    bool closing;
    bool paused;
    bool pipe_closing, timer_closing;
    struct ctl_watch *watch;
    struct ctl_export *export;
};

struct ctl_server {
    struct node *n;
    struct ctl_services svc;
    uv_pipe_t listener;
    bool listening;
    bool stopped;
    bool observing;
    char path[PATH_MAX];
    dev_t sock_dev;
    ino_t sock_ino;
    struct ctl_client *clients;
    size_t nclients;
    size_t nwatchers;
    struct search_index *ix; /* the node's */
    /* my live offers and needs, for match events (reloaded after a record of mine) */
    struct record *mine;
    uint8_t (*mine_ids)[RECORD_ID_BYTES];
    size_t nmine, cap_mine;
    bool mine_valid;
};

/* A write in flight. */
struct ctl_write {
    uv_write_t req;
    struct ctl_client *c;
    uint8_t *buf;
    size_t len;
};

/* One request being answered; handlers get it as their ctx. */
struct ctl_call {
    struct ctl_client *c;
    uint64_t seq;
};

/* A reply being built: framed, in its own buffer. */
struct reply {
    struct pull_wb w;
    msgpack_packer pk;
    size_t start;
    uint64_t seq;
};

static void client_close(struct ctl_client *c, bool bad, bool graceful);
static void client_unref(struct ctl_client *c);
static void export_next(struct ctl_client *c);

/* ---- Output ------------------------------------------------------------------------- */

static void
on_write(uv_write_t *req, int status)
{
    struct ctl_write *wr = req->data;
    struct ctl_client *c = wr->c;

    (void)status;
    c->queued -= wr->len;
    free(wr->buf);
    free(wr);
    if (!c->closing && c->export != NULL && c->queued < CTL_EXPORT_CHUNK_BYTES)
        export_next(c);
    client_unref(c);
}

/* Sends a framed message, taking w's buffer. Returns false if the client was dropped (or
 * is closing: the message is discarded). */
static bool
client_send(struct ctl_client *c, struct pull_wb *w, size_t limit)
{
    struct ctl_write *wr;
    uv_buf_t b;
    size_t len;
    uint8_t *p;

    if (c->closing || w->len == 0) {
        wb_release(w);
        return !c->closing;
    }
    if (c->queued + w->len > limit) {
        log_info("ctl: dropping a client that does not read its replies (%zu bytes queued)",
                 c->queued);
        wb_release(w);
        client_close(c, false, false);
        return false;
    }
    if ((wr = calloc(1, sizeof(*wr))) == NULL) {
        wb_release(w);
        client_close(c, false, false);
        return false;
    }
    p = wb_steal(w, &len);
    wr->c = c;
    wr->buf = p;
    wr->len = len;
    wr->req.data = wr;
    b = uv_buf_init((char *)p, (unsigned)len);
    if (uv_write(&wr->req, (uv_stream_t *)&c->pipe, &b, 1, on_write) != 0) {
        free(p);
        free(wr);
        client_close(c, false, false);
        return false;
    }
    c->queued += len;
    c->refs++;
    return true;
}

static msgpack_packer *
reply_begin(struct reply *r, uint64_t seq, bool more)
{
    wb_init(&r->w, CTL_REPLY_MAX + 64);
    r->seq = seq;
    r->start = ctl_frame_begin(&r->w);
    mp_packer_init(&r->pk, &r->w);
    ctl_pack_reply_head(&r->pk, seq, 0, NULL, more);
    return &r->pk;
}

/* Frames and sends the reply (an error reply instead if it became too big). */
static void
reply_send_limit(struct ctl_client *c, struct reply *r, size_t limit)
{
    int rc;

    if ((rc = ctl_frame_end(&r->w, r->start, CTL_REPLY_MAX)) != 0) {
        wb_reset(&r->w);
        ctl_reply_error(&r->w, r->seq, rc == PULL_ERR_NOMEM ? rc : PULL_ERR_TOO_BIG,
                        rc == PULL_ERR_NOMEM ? NULL
                                             : "the result is too large for one reply: ask "
                                               "for fewer records (--limit)");
    }
    client_send(c, &r->w, limit);
}

static void
reply_send(struct ctl_client *c, struct reply *r)
{
    reply_send_limit(c, r, CTL_QUEUE_MAX);
}

static void reply_error(struct ctl_client *c, uint64_t seq, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
reply_error(struct ctl_client *c, uint64_t seq, int err, const char *fmt, ...)
{
    struct pull_wb w;
    char msg[CTL_MSG_MAX + 1];
    va_list ap;

    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
    }
    wb_init(&w, 4096);
    ctl_reply_error(&w, seq, err, fmt != NULL ? msg : NULL);
    client_send(c, &w, CTL_QUEUE_MAX);
}

/* An arg getter failed: absent (required ones were checked) or malformed. */
static int
arg_failed(struct ctl_call *call, int rc, const char *key)
{
    if (rc == PULL_ERR_NOT_FOUND)
        reply_error(call->c, call->seq, PULL_ERR_ARITY, "missing argument '%s'", key);
    else
        reply_error(call->c, call->seq, PULL_ERR_FIELD, "bad argument '%s'", key);
    return 0;
}

/* ---- Records as result maps ----------------------------------------------------------- */

static void
pack_key(msgpack_packer *pk, const char *k, const uint8_t key[32])
{
    char t[IDENT_TEXT_LEN + 1];

    ident_to_text(key, t);
    mp_pack_cstr(pk, k);
    mp_pack_str(pk, t, IDENT_TEXT_LEN);
}

static void
pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    mp_pack_cstr(pk, k);
    mp_pack_cstr(pk, v);
}

static void
pack_kv_uint(msgpack_packer *pk, const char *k, uint64_t v)
{
    mp_pack_cstr(pk, k);
    msgpack_pack_uint64(pk, v);
}

/* Packs the record map of proto/ctl.h, with "mine" (bool) and, if score > 0, "score";
 * score UINT32_MAX leaves both out (a match event's "mine" is the id of my record). The
 * map has room for `extra` more key/value pairs, which the caller packs after it. */
static void
pack_record_ex(struct node *n, msgpack_packer *pk, const uint8_t id[RECORD_ID_BYTES],
               const struct record *rec, uint32_t score, uint32_t extra)
{
    char slot[2 * RECORD_SLOT_BYTES + 1];
    const char *kind = record_kind_name(rec->kind);
    bool attest = rec->kind == RECORD_ATTESTATION;
    bool with_mine = score != UINT32_MAX; /* match events carry "mine" themselves */
    uint32_t nfields = 12 + with_mine + (score > 0 && with_mine) + 2 * attest;

    sodium_bin2hex(slot, sizeof(slot), rec->slot, RECORD_SLOT_BYTES);
    msgpack_pack_map(pk, nfields + extra);
    pack_key(pk, "id", id);
    pack_kv_str(pk, "kind", kind != NULL ? kind : "unknown");
    pack_key(pk, "author", rec->author);
    pack_kv_str(pk, "slot", slot);
    pack_kv_uint(pk, "seq", rec->seq);
    pack_kv_str(pk, "title", rec->title);
    pack_kv_str(pk, "body", rec->body);
    mp_pack_cstr(pk, "tags");
    msgpack_pack_array(pk, rec->ntags);
    for (unsigned i = 0; i < rec->ntags; i++)
        mp_pack_cstr(pk, rec->tags[i]);
    pack_kv_uint(pk, "created", rec->created);
    pack_kv_uint(pk, "expires", rec->expires);
    pack_kv_str(pk, "location", rec->location);
    pack_kv_str(pk, "terms", rec->terms);
    if (with_mine) {
        mp_pack_cstr(pk, "mine");
        if (sodium_memcmp(rec->author, n->self.pk, 32) == 0)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
    }
    if (score > 0 && with_mine)
        pack_kv_uint(pk, "score", score);
    if (attest) {
        uint8_t zero[32] = {0};
        pack_key(pk, "link", rec->has_link ? rec->link : zero);
        pack_key(pk, "peer", rec->has_peer ? rec->peer : zero);
    }
}

static void
pack_record(struct node *n, msgpack_packer *pk, const uint8_t id[RECORD_ID_BYTES],
            const struct record *rec, uint32_t score)
{
    pack_record_ex(n, pk, id, rec, score, 0);
}

/* Decodes a stored envelope (verified when it was stored). */
static int
decode_env(const uint8_t *p, size_t len, struct envelope *env, struct record *rec)
{
    int rc;

    if ((rc = envelope_parse(p, len, env)) != 0)
        return rc;
    return record_decode(env->rec, env->rec_len, rec);
}

/* ---- Calls kept across callbacks ---------------------------------------------------- */

static struct ctl_call *
call_keep(struct ctl_call *call)
{
    struct ctl_call *k = malloc(sizeof(*k));

    if (k == NULL)
        return NULL;
    *k = *call;
    call->c->refs++;
    return k;
}

static void
call_done(struct ctl_call *k)
{
    struct ctl_client *c = k->c;

    free(k);
    client_unref(c);
}

/* ---- id, status, peers, connect ---------------------------------------------------- */

static int
h_id(void *ctx, const struct ctl_request *req)
{
    struct ctl_call *call = ctx;
    struct node *n = call->c->srv->n;
    char(*addrs)[NODE_ADDR_MAX] = calloc(CTL_ADDRS_MAX, NODE_ADDR_MAX);
    struct reply r;
    msgpack_packer *pk;
    size_t na;
    (void)req;

    if (addrs == NULL)
        return PULL_ERR_NOMEM;
    na = node_addresses(n, addrs, CTL_ADDRS_MAX);
    pk = reply_begin(&r, call->seq, false);
    msgpack_pack_map(pk, 2);
    pack_key(pk, "id", n->self.pk);
    mp_pack_cstr(pk, "addresses");
    msgpack_pack_array(pk, na);
    for (size_t i = 0; i < na; i++)
        mp_pack_cstr(pk, addrs[i]);
    reply_send(call->c, &r);
    free(addrs);
    return 0;
}

static void
network_name(const struct node *n, char out[16])
{
    uint8_t h[32];

    if (n->cfg.network_public) {
        snprintf(out, 16, "public");
        return;
    }
    crypto_generichash(h, sizeof(h), n->cfg.network_key, 32, NULL, 0);
    sodium_bin2hex(out, 16, h, 4);
}

static int
h_status(void *ctx, const struct ctl_request *req)
{
    struct ctl_call *call = ctx;
    struct ctl_server *srv = call->c->srv;
    struct node *n = srv->n;
    const struct node_counters *k = &n->counters;
    struct store_stats st;
    struct reply r;
    msgpack_packer *pk;
    char net[16];
    size_t nl = config_limit_count();
    (void)req;

    memset(&st, 0, sizeof(st));
    store_stats(n->store, &st);
    network_name(n, net);
    pk = reply_begin(&r, call->seq, false);
    msgpack_pack_map(pk, 14);
    pack_key(pk, "id", n->self.pk);
    pack_kv_uint(pk, "uptime_s", (node_now_ms(n) - n->started_ms) / 1000);
    pack_kv_uint(pk, "peers", node_connected_count(n));
    pack_kv_uint(pk, "records", st.records - st.by_kind[RECORD_WITHDRAWN]);
    pack_kv_str(pk, "network", net);
    pack_kv_str(pk, "version", PULL_VERSION);
    pack_kv_str(pk, "data_dir", n->cfg.data_dir);
    pack_kv_uint(pk, "known_peers", node_peer_count(n));

    mp_pack_cstr(pk, "limits");
    msgpack_pack_map(pk, nl);
    for (size_t i = 0; i < nl; i++) {
        const char *name = "?";
        uint64_t v = 0;
        config_limit_at(&n->cfg, i, &name, &v);
        pack_kv_uint(pk, name, v);
    }

    mp_pack_cstr(pk, "counters");
    msgpack_pack_map(pk, 23);
#define C(f) pack_kv_uint(pk, #f, k->f)
    C(records_new);
    C(records_local);
    C(records_dup);
    C(records_invalid);
    C(records_quota);
    C(records_swept);
    C(commits);
    C(commit_errors);
    C(bytes_in);
    C(bytes_out);
    C(conns_in);
    C(conns_out);
    C(conns_refused);
    C(handshakes_ok);
    C(handshakes_failed);
    C(peers_dropped);
    C(frames_bad);
    C(recon_sessions);
    C(recon_failed);
    C(ctl_clients);
    C(ctl_bad);
    C(msgs_unknown);
    C(recon_limited);
#undef C

    mp_pack_cstr(pk, "store");
    msgpack_pack_map(pk, 8);
    pack_kv_uint(pk, "records", st.records);
    pack_kv_uint(pk, "offers", st.by_kind[RECORD_OFFER]);
    pack_kv_uint(pk, "needs", st.by_kind[RECORD_NEED]);
    pack_kv_uint(pk, "tombstones", st.by_kind[RECORD_WITHDRAWN]);
    pack_kv_uint(pk, "bytes", st.bytes);
    pack_kv_uint(pk, "map_size", st.map_size);
    pack_kv_uint(pk, "map_used", st.map_used);
    pack_kv_uint(pk, "map_max", st.map_max);

    {
        struct lan_stats ls;
        lan_get_stats(srv->svc.lan, &ls);
        mp_pack_cstr(pk, "lan");
        msgpack_pack_map(pk, 8);
        mp_pack_cstr(pk, "running");
        if (ls.running)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
#define L(f) pack_kv_uint(pk, #f, ls.f)
        L(rx);
        L(rx_bad);
        L(rx_limited);
        L(rx_other_net);
        L(learned);
        L(tx);
        L(tx_err);
#undef L
    }

    mp_pack_cstr(pk, "control");
    msgpack_pack_map(pk, 4);
    pack_kv_uint(pk, "clients", srv->nclients);
    pack_kv_uint(pk, "watchers", srv->nwatchers);
    pack_kv_uint(pk, "search_indexed", search_index_live(srv->ix));
    pack_kv_uint(pk, "search_index_bytes", search_index_bytes(srv->ix));

    {
        /* my completed dyads, from the attestation records stored here */
        uint32_t done = 0, peers = 0;
        (void)dyads_author_stats(srv->svc.dyads, n->self.pk, &done, &peers);
        struct dyads_stats ds;
        memset(&ds, 0, sizeof(ds));
        dyads_get_stats(srv->svc.dyads, &ds);
        mp_pack_cstr(pk, "dyads");
        msgpack_pack_map(pk, 16);
        pack_kv_uint(pk, "completed", done);
        pack_kv_uint(pk, "counterparts", peers);
        /* the dyad service's counters; "completed" above counts attestations, so the
         * service's own count of completed dyads it holds is "held_completed" */
        pack_kv_uint(pk, "held", ds.dyads);
        pack_kv_uint(pk, "held_open", ds.open);
        pack_kv_uint(pk, "held_completed", ds.completed);
#define D(f) pack_kv_uint(pk, #f, ds.f)
        D(msgs_sent);
        D(msgs_applied);
        D(msgs_held);
        D(msgs_refused);
        D(mail_in);
        D(mail_relayed);
        D(mail_refused);
        D(mail_bad);
        D(mail_swept);
        D(mail_held);
        D(attestations);
#undef D
    }
    reply_send(call->c, &r);
    return 0;
}

static int
h_peers(void *ctx, const struct ctl_request *req)
{
    struct ctl_call *call = ctx;
    struct node *n = call->c->srv->n;
    size_t np = node_peer_count(n), got = 0;
    struct node_peer_info *ps = calloc(np ? np : 1, sizeof(*ps));
    struct reply r;
    msgpack_packer *pk;
    (void)req;

    if (ps == NULL)
        return PULL_ERR_NOMEM;
    for (size_t i = 0; i < np; i++) {
        if (node_peer_at(n, i, &ps[got]) == 0)
            got++;
    }
    pk = reply_begin(&r, call->seq, false);
    msgpack_pack_array(pk, got);
    for (size_t i = 0; i < got; i++) {
        const struct node_peer_info *p = &ps[i];
        msgpack_pack_map(pk, 9);
        pack_key(pk, "id", p->key);
        pack_kv_str(pk, "address", p->addr);
        pack_kv_str(pk, "state", p->state != NULL ? p->state : "unknown");
        mp_pack_cstr(pk, "connected");
        p->connected ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        mp_pack_cstr(pk, "inbound");
        p->inbound ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        mp_pack_cstr(pk, "score");
        msgpack_pack_int64(pk, p->score);
        pack_kv_uint(pk, "bytes_in", p->bytes_in);
        pack_kv_uint(pk, "bytes_out", p->bytes_out);
        pack_kv_uint(pk, "since", p->since_s);
    }
    reply_send(call->c, &r);
    free(ps);
    return 0;
}

static void
on_connected(void *arg, int result, const char *reason)
{
    struct ctl_call *k = arg;

    if (result == 0) {
        struct reply r;
        msgpack_packer *pk = reply_begin(&r, k->seq, false);
        msgpack_pack_map(pk, 1);
        mp_pack_cstr(pk, "ok");
        msgpack_pack_true(pk);
        reply_send(k->c, &r);
    } else {
        reply_error(k->c, k->seq, result, "could not connect: %s",
                    reason != NULL && reason[0] ? reason : pull_strerror(result));
    }
    call_done(k);
}

static int
h_connect(void *ctx, const struct ctl_request *req)
{
    struct ctl_call *call = ctx, *k;
    struct node *n = call->c->srv->n;
    char addr[NODE_ADDR_MAX + 1], idt[IDENT_TEXT_LEN + 1];
    const char *at;
    uint8_t key[32];
    int rc;

    if ((rc = ctl_arg_str(req, "address", NODE_ADDR_MAX, addr, sizeof(addr))) != 0)
        return arg_failed(call, rc, "address");
    at = strchr(addr, '@');
    if (at == NULL || at - addr != IDENT_TEXT_LEN || at[1] == '\0') {
        reply_error(call->c, call->seq, PULL_ERR_INVAL, "'%s' is not an address: want ID@HOST:PORT",
                    addr);
        return 0;
    }
    memcpy(idt, addr, IDENT_TEXT_LEN);
    idt[IDENT_TEXT_LEN] = '\0';
    if (ident_from_text(idt, key) != 0) {
        reply_error(call->c, call->seq, PULL_ERR_INVAL, "'%s' is not a node id", idt);
        return 0;
    }
    if ((k = call_keep(call)) == NULL)
        return PULL_ERR_NOMEM;
    rc = node_connect(n, key, at + 1, on_connected, k);
    if (rc == 0)
        return 0;
    if (rc == PULL_ERR_EXISTS) {
        struct reply r;
        msgpack_packer *pk = reply_begin(&r, call->seq, false);
        msgpack_pack_map(pk, 2);
        mp_pack_cstr(pk, "ok");
        msgpack_pack_true(pk);
        mp_pack_cstr(pk, "already");
        msgpack_pack_true(pk);
        reply_send(call->c, &r);
    } else if (rc == PULL_ERR_BAD_KEY) {
        reply_error(call->c, call->seq, rc, "that is this node's own id");
    } else {
        reply_error(call->c, call->seq, rc, "cannot dial '%s': %s", at + 1,
                    rc == PULL_ERR_INVAL ? "bad address (want HOST:PORT)" : pull_strerror(rc));
    }
    call_done(k);
    return 0;
}

/* ---- Records ------------------------------------------------------------------------ */

/* A local record waiting for its commit. */
struct pending_rec {
    struct ctl_call *k;
    uint8_t *env;
    size_t len;
};

static const char *
refusal(int rc)
{
    switch (rc) {
    case PULL_ERR_QUOTA:
        return "you have too many live records (max-per-author): withdraw some first";
    case PULL_ERR_STORE_FULL:
        return "the store is full (disk or map size): free some disk space";
    default:
        return pull_strerror(rc);
    }
}

static void
on_rec_commit(void *arg, int result, const uint8_t id[RECORD_ID_BYTES])
{
    struct pending_rec *p = arg;
    struct ctl_client *c = p->k->c;
    struct record *rec = malloc(sizeof(*rec));
    struct envelope env;

    if (result != 0) {
        reply_error(c, p->k->seq, result, "%s", refusal(result));
    } else if (rec == NULL || decode_env(p->env, p->len, &env, rec) != 0) {
        reply_error(c, p->k->seq, PULL_ERR_NOMEM, NULL);
    } else {
        struct reply r;
        pack_record(c->srv->n, reply_begin(&r, p->k->seq, false), id, rec, 0);
        reply_send(c, &r);
    }
    free(rec);
    free(p->env);
    call_done(p->k);
    free(p);
}

/* Signs rec as this node and submits it; the reply comes from the commit callback. */
static int
submit_local(struct ctl_call *call, struct record *rec)
{
    struct node *n = call->c->srv->n;
    struct pending_rec *p = NULL;
    struct pull_wb w;
    int rc;

    wb_init(&w, RECORD_ENVELOPE_MAX);
    memcpy(rec->author, n->self.pk, 32);
    if ((rc = record_check_fields(rec)) != 0 || (rc = record_check_time(rec, node_now_s(n))) != 0) {
        reply_error(call->c, call->seq, rc, "%s", pull_strerror(rc));
        rc = 0;
        goto out;
    }
    if ((rc = record_sign(rec, &n->self, &w, NULL)) != 0) {
        reply_error(call->c, call->seq, rc, "%s", pull_strerror(rc));
        rc = 0;
        goto out;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL || (p->k = call_keep(call)) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    p->env = wb_steal(&w, &p->len);
    rc = node_submit(n, p->env, p->len, NODE_ORIGIN_LOCAL, NULL, on_rec_commit, p, NULL);
    if (rc != 0) {
        reply_error(call->c, call->seq, rc, "%s", refusal(rc));
        free(p->env);
        call_done(p->k);
        rc = 0;
        goto out;
    }
    p = NULL; /* transferred to the commit callback */
out:
    if (p != NULL) {
        if (p->k != NULL)
            call_done(p->k);
        free(p->env);
        free(p);
    }
    wb_release(&w);
    return rc;
}

/* Reads an optional str arg into out (at most max bytes, bigger is `err`). Returns 1 if
 * present, 0 if absent, -1 after replying the error. */
static int
opt_text(struct ctl_call *call, const struct ctl_request *req, const char *key, char *out,
         size_t outsz, size_t max, int err)
{
    char *buf = malloc(CTL_TEXT_ARG_MAX + 1);
    int rc;

    if (buf == NULL) {
        reply_error(call->c, call->seq, PULL_ERR_NOMEM, NULL);
        return -1;
    }
    rc = ctl_arg_str(req, key, CTL_TEXT_ARG_MAX, buf, CTL_TEXT_ARG_MAX + 1);
    if (rc == PULL_ERR_NOT_FOUND) {
        free(buf);
        return 0;
    }
    if (rc != 0) {
        arg_failed(call, rc, key);
        free(buf);
        return -1;
    }
    if (strlen(buf) > max || strlen(buf) >= outsz) {
        reply_error(call->c, call->seq, err, "%s", pull_strerror(err));
        free(buf);
        return -1;
    }
    memcpy(out, buf, strlen(buf) + 1);
    free(buf);
    return 1;
}

/* Reads the content args of add/edit into rec (absent ones leave rec as it is). Returns 0,
 * or -1 after replying. */
static int
read_content(struct ctl_call *call, const struct ctl_request *req, struct record *rec,
             bool *has_expires, uint64_t *expires_s)
{
    char tags[RECORD_TAGS_MAX][RECORD_TAG_MAX + 1];
    uint32_t ntags = 0;
    int rc;

    if (opt_text(call, req, "title", rec->title, sizeof(rec->title), RECORD_TITLE_MAX,
                 PULL_ERR_TITLE) < 0 ||
        opt_text(call, req, "body", rec->body, sizeof(rec->body), RECORD_BODY_MAX, PULL_ERR_BODY) <
            0 ||
        opt_text(call, req, "location", rec->location, sizeof(rec->location), RECORD_LOCATION_MAX,
                 PULL_ERR_LOCATION) < 0 ||
        opt_text(call, req, "terms", rec->terms, sizeof(rec->terms), RECORD_TERMS_MAX,
                 PULL_ERR_FIELD) < 0)
        return -1;
    rc = ctl_arg_strs(req, "tags", RECORD_TAGS_MAX, RECORD_TAG_MAX, &tags[0][0], sizeof(tags[0]),
                      &ntags);
    if (rc == 0) {
        rec->ntags = (uint8_t)ntags;
        memcpy(rec->tags, tags, sizeof(tags));
    } else if (rc != PULL_ERR_NOT_FOUND) {
        reply_error(call->c, call->seq, PULL_ERR_TAGS,
                    "bad argument 'tags': at most %d tags of 1 to %d bytes", RECORD_TAGS_MAX,
                    RECORD_TAG_MAX);
        return -1;
    }
    *has_expires = false;
    rc = ctl_arg_uint(req, "expires_s", RECORD_TTL_MAX, expires_s);
    if (rc == 0) {
        if (*expires_s == 0) {
            reply_error(call->c, call->seq, PULL_ERR_EXPIRY, "expiry out of bounds: at least 1 s");
            return -1;
        }
        *has_expires = true;
    } else if (rc != PULL_ERR_NOT_FOUND) {
        reply_error(call->c, call->seq, PULL_ERR_EXPIRY,
                    "expiry out of bounds: at most 90 days (%u s)", RECORD_TTL_MAX);
        return -1;
    }
    return 0;
}

/* Parses "kind" into *kind (offer or need only when mine_only). 1 if present, 0 absent,
 * -1 after replying. */
static int
opt_kind(struct ctl_call *call, const struct ctl_request *req, bool offer_need, uint8_t *kind)
{
    char name[32];
    int rc = ctl_arg_str(req, "kind", 31, name, sizeof(name));

    *kind = 0;
    if (rc == PULL_ERR_NOT_FOUND)
        return 0;
    if (rc != 0 || record_kind_parse(name, kind) != 0 || *kind == RECORD_WITHDRAWN ||
        (offer_need && *kind != RECORD_OFFER && *kind != RECORD_NEED)) {
        reply_error(call->c, call->seq, PULL_ERR_KIND, "bad argument 'kind': %s",
                    offer_need ? "offer or need" : "offer, need, profile or attestation");
        return -1;
    }
    return 1;
}

static int
h_record_add(void *ctx, const struct ctl_request *req)
{
    struct ctl_call *call = ctx;
    struct node *n = call->c->srv->n;
    struct record *rec = malloc(sizeof(*rec));
    bool has_exp;
    uint64_t exp_s = RECORD_TTL_DEFAULT, now = node_now_s(n);
    int rc = 0;

    if (rec == NULL)
        return PULL_ERR_NOMEM;
    record_init(rec);
    if ((rc = opt_kind(call, req, true, &rec->kind)) <= 0) {
        if (rc == 0)
            arg_failed(call, PULL_ERR_NOT_FOUND, "kind");
        rc = 0;
        goto out;
    }
    if (read_content(call, req, rec, &has_exp, &exp_s) != 0)
        goto out;
    if (!has_exp)
        exp_s = RECORD_TTL_DEFAULT;
    env_random(n->env, rec->slot, sizeof(rec->slot));
    rec->seq = 1;
    rec->created = now;
    rec->expires = now + exp_s;
    rc = submit_local(call, rec);
out:
    free(rec);
    return rc;
}

/* Finding one of my live records by id prefix. */
struct mine_find {
    struct ident_prefix prefix;
    uint64_t now;
    uint8_t id[RECORD_ID_BYTES];
    uint8_t *env;
    size_t len;
    unsigned matches;
    int err;
};

static int
find_mine_one(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct mine_find *f = ctx;
    struct envelope e;
    struct record *rec;

    if (!ident_prefix_match(&f->prefix, id))
        return 0;
    if ((rec = malloc(sizeof(*rec))) == NULL)
        return PULL_ERR_NOMEM;
    if (decode_env(env, len, &e, rec) == 0 && rec->kind != RECORD_WITHDRAWN &&
        rec->expires > f->now) {
        f->matches++;
        memcpy(f->id, id, RECORD_ID_BYTES);
        free(f->env);
        if ((f->env = malloc(len)) == NULL) {
            free(rec);
            return PULL_ERR_NOMEM;
        }
        memcpy(f->env, env, len);
        f->len = len;
    }
    free(rec);
    return 0;
}

/* Resolves "id" to one of my live records and checks "kind". Returns 0 with rec filled,
 * or -1 after replying. */
static int
resolve_mine(struct ctl_call *call, const struct ctl_request *req, struct record *rec,
             uint8_t id[RECORD_ID_BYTES])
{
    struct node *n = call->c->srv->n;
    struct mine_find f;
    struct envelope e;
    char prefix[IDENT_TEXT_LEN + 1], sid[IDENT_SHORT_LEN + 1];
    uint8_t kind = 0;
    int rc, ret = -1;

    memset(&f, 0, sizeof(f));
    if ((rc = ctl_arg_str(req, "id", IDENT_TEXT_LEN, prefix, sizeof(prefix))) != 0 ||
        ident_prefix_parse(prefix, &f.prefix) != 0) {
        arg_failed(call, rc == PULL_ERR_NOT_FOUND ? rc : PULL_ERR_FIELD, "id");
        return -1;
    }
    if (opt_kind(call, req, true, &kind) < 0)
        return -1;
    f.now = node_now_s(n);
    if ((rc = store_iter_author(n->store, n->self.pk, find_mine_one, &f)) < 0) {
        reply_error(call->c, call->seq, rc, NULL);
        goto out;
    }
    if (f.matches == 0) {
        reply_error(call->c, call->seq, PULL_ERR_NOT_FOUND,
                    "no live %s of yours has an id starting with '%s'",
                    kind ? record_kind_name(kind) : "record", prefix);
        goto out;
    }
    if (f.matches > 1) {
        reply_error(call->c, call->seq, PULL_ERR_AMBIGUOUS,
                    "ambiguous id prefix '%s' (%u of your records): give more characters", prefix,
                    f.matches);
        goto out;
    }
    if (decode_env(f.env, f.len, &e, rec) != 0) {
        reply_error(call->c, call->seq, PULL_ERR_STORE, NULL);
        goto out;
    }
    if (kind != 0 && rec->kind != kind) {
        const char *have = record_kind_name(rec->kind);
        ident_short(f.id, sid);
        reply_error(call->c, call->seq, PULL_ERR_KIND, "%s is %s %s, not %s %s", sid,
                    have[0] == 'o' ? "an" : "a", have, kind == RECORD_OFFER ? "an" : "a",
                    record_kind_name(kind));
        goto out;
    }
    memcpy(id, f.id, RECORD_ID_BYTES);
    ret = 0;
out:
    free(f.env);
    return ret;
}

/* renew, withdraw and edit: a new version of one of my records. */
enum { V_RENEW, V_WITHDRAW, V_EDIT };

static int
new_version(struct ctl_call *call, const struct ctl_request *req, int verb)
{
    struct node *n = call->c->srv->n;
    struct record *rec = malloc(sizeof(*rec));
    uint8_t id[RECORD_ID_BYTES];
    uint64_t now = node_now_s(n), exp_s = RECORD_TTL_DEFAULT;
    bool has_exp = false;
    int rc = 0;

    if (rec == NULL)
        return PULL_ERR_NOMEM;
    if (resolve_mine(call, req, rec, id) != 0)
        goto out;
    if (verb == V_EDIT) {
        if (read_content(call, req, rec, &has_exp, &exp_s) != 0)
            goto out;
    } else if (verb == V_RENEW) {
        rc = ctl_arg_uint(req, "expires_s", RECORD_TTL_MAX, &exp_s);
        if (rc == PULL_ERR_NOT_FOUND) {
            exp_s = RECORD_TTL_DEFAULT;
        } else if (rc != 0 || exp_s == 0) {
            reply_error(call->c, call->seq, PULL_ERR_EXPIRY,
                        "expiry out of bounds: 1 s to 90 days");
            rc = 0;
            goto out;
        }
        rc = 0;
        has_exp = true;
    }
    rec->seq++;
    if (verb == V_WITHDRAW) {
        /* The tombstone keeps the old expiry, so a replay of the old version stays refused
         * for as long as it could be live. */
        rec->kind = RECORD_WITHDRAWN;
        rec->title[0] = rec->body[0] = rec->location[0] = rec->terms[0] = '\0';
        rec->ntags = 0;
        memset(rec->tags, 0, sizeof(rec->tags));
        rec->created = now < rec->created ? rec->created : now;
        if (rec->expires <= rec->created)
            rec->expires = rec->created + 1;
        if (rec->expires - rec->created > RECORD_TTL_MAX)
            rec->created = rec->expires - RECORD_TTL_MAX;
    } else {
        uint64_t old_exp = rec->expires;
        rec->created = now;
        rec->expires = has_exp ? now + exp_s : (old_exp > now ? old_exp : now + exp_s);
    }
    rc = submit_local(call, rec);
out:
    free(rec);
    return rc;
}

static int
h_record_renew(void *ctx, const struct ctl_request *req)
{
    return new_version(ctx, req, V_RENEW);
}

static int
h_record_withdraw(void *ctx, const struct ctl_request *req)
{
    return new_version(ctx, req, V_WITHDRAW);
}

static int
h_record_edit(void *ctx, const struct ctl_request *req)
{
    return new_version(ctx, req, V_EDIT);
}

/* record.list: my live records, newest first. */
struct list_item {
    uint64_t created;
    uint8_t id[RECORD_ID_BYTES];
    uint8_t *env;
    size_t len;
};

struct list_ctx {
    struct list_item *items;
    size_t n, cap;
    uint8_t kind;
    uint64_t now;
    struct record *rec;
};

static int
list_one(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct list_ctx *l = ctx;
    struct envelope e;
    struct list_item *it;

    if (decode_env(env, len, &e, l->rec) != 0 || l->rec->kind == RECORD_WITHDRAWN ||
        l->rec->expires <= l->now || (l->kind != 0 && l->rec->kind != l->kind))
        return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        struct list_item *ni = realloc(l->items, nc * sizeof(*ni));
        if (ni == NULL)
            return PULL_ERR_NOMEM;
        l->items = ni;
        l->cap = nc;
    }
    it = &l->items[l->n];
    if ((it->env = malloc(len)) == NULL)
        return PULL_ERR_NOMEM;
    memcpy(it->env, env, len);
    it->len = len;
    it->created = l->rec->created;
    memcpy(it->id, id, RECORD_ID_BYTES);
    l->n++;
    return 0;
}

static int
item_newer_first(const void *a, const void *b)
{
    const struct list_item *x = a, *y = b;

    if (x->created != y->created)
        return x->created > y->created ? -1 : 1;
    return memcmp(x->id, y->id, RECORD_ID_BYTES);
}

static int
h_record_list(void *ctx, const struct ctl_request *req)
{
    struct ctl_call *call = ctx;
    struct node *n = call->c->srv->n;
    struct list_ctx l;
    struct reply r;
    msgpack_packer *pk;
    int rc;

    memset(&l, 0, sizeof(l));
    if (opt_kind(call, req, true, &l.kind) < 0)
        return 0;
    l.now = node_now_s(n);
    if ((l.rec = malloc(sizeof(*l.rec))) == NULL)
        return PULL_ERR_NOMEM;
    if ((rc = store_iter_author(n->store, n->self.pk, list_one, &l)) < 0) {
        reply_error(call->c, call->seq, rc, NULL);
    } else {
        if (l.n > 1)
            qsort(l.items, l.n, sizeof(l.items[0]), item_newer_first);
        pk = reply_begin(&r, call->seq, false);
        msgpack_pack_array(pk, l.n);
        for (size_t i = 0; i < l.n; i++) {
            struct envelope e;
            if (decode_env(l.items[i].env, l.items[i].len, &e, l.rec) == 0)
                pack_record(n, pk, l.items[i].id, l.rec, 0);
            else
                msgpack_pack_nil(pk);
        }
        reply_send(call->c, &r);
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.items[i].env);
    free(l.items);
    free(l.rec);
    return 0;
}

/* ---- search, show ------------------------------------------------------------------- */

/* Reads words, kind, tags (and author when allowed) into q. 0, or -1 after replying. */
static int
read_query(struct ctl_call *call, const struct ctl_request *req, struct match_query *q, bool author,
           bool *filtered)
{
    struct ctl_array it;
    char tags[RECORD_TAGS_MAX][RECORD_TAG_MAX + 1];
    uint32_t ntags = 0;
    int rc;

    match_query_init(q);
    *filtered = false;
    rc = ctl_arg_array(req, "words", 256, &it);
    if (rc == 0) {
        const char *s;
        uint32_t len;
        char word[CTL_ARG_WORD_MAX + 1];
        while ((rc = ctl_array_next_str(&it, CTL_ARG_WORD_MAX, &s, &len)) == 1) {
            if (memchr(s, '\0', len) != NULL) {
                rc = PULL_ERR_FIELD;
                break;
            }
            memcpy(word, s, len);
            word[len] = '\0';
            if (match_query_add_words(q, word) != 0) {
                reply_error(call->c, call->seq, PULL_ERR_TOO_BIG, "too many words: at most %d",
                            MATCH_WORDS_MAX);
                return -1;
            }
        }
        if (rc < 0)
            return arg_failed(call, PULL_ERR_FIELD, "words"), -1;
        *filtered = *filtered || q->nwords > 0;
    } else if (rc != PULL_ERR_NOT_FOUND) {
        return arg_failed(call, rc, "words"), -1;
    }
    if (opt_kind(call, req, false, &q->kind) < 0)
        return -1;
    *filtered = *filtered || q->kind != 0;
    rc = ctl_arg_strs(req, "tags", RECORD_TAGS_MAX, RECORD_TAG_MAX, &tags[0][0], sizeof(tags[0]),
                      &ntags);
    if (rc == 0) {
        for (uint32_t i = 0; i < ntags; i++) {
            if (match_query_add_tag(q, tags[i]) != 0)
                return arg_failed(call, PULL_ERR_FIELD, "tags"), -1;
        }
        *filtered = *filtered || ntags > 0;
    } else if (rc != PULL_ERR_NOT_FOUND) {
        return arg_failed(call, rc, "tags"), -1;
    }
    if (author) {
        char a[IDENT_TEXT_LEN + 1];
        rc = ctl_arg_str(req, "author", IDENT_TEXT_LEN, a, sizeof(a));
        if (rc == 0 && match_query_set_author(q, a) != 0)
            rc = PULL_ERR_FIELD;
        if (rc != 0 && rc != PULL_ERR_NOT_FOUND)
            return arg_failed(call, rc, "author"), -1;
    }
    return 0;
}

static int
search_fetch_rec(void *ctx, uint64_t created, uint64_t id8, struct record *rec)
{
    struct node *n = ctx;
    struct pull_wb w;
    struct envelope e;
    int rc;

    wb_init(&w, RECORD_ENVELOPE_MAX);
    if ((rc = search_fetch(n->store, created, id8, &w)) == 0)
        rc = decode_env(w.p, w.len, &e, rec);
    wb_release(&w);
    return rc;
}

static int
h_search(void *ctx, const struct ctl_request *req)
{
    struct ctl_call *call = ctx;
    struct ctl_server *srv = call->c->srv;
    struct node *n = srv->n;
    struct match_query q;
    struct search_hit *hits = NULL;
    struct record *rec = NULL;
    struct pull_wb items, env;
    msgpack_packer ipk;
    struct reply r;
    uint64_t limit = CTL_SEARCH_DEFAULT;
    uint32_t nh = 0, count = 0;
    bool filtered;
    int rc;

    wb_init(&items, CTL_REPLY_MAX);
    wb_init(&env, RECORD_ENVELOPE_MAX);
    if (read_query(call, req, &q, true, &filtered) != 0) {
        rc = 0;
        goto out;
    }
    rc = ctl_arg_uint(req, "limit", SEARCH_LIMIT_MAX, &limit);
    if (rc == PULL_ERR_NOT_FOUND)
        limit = CTL_SEARCH_DEFAULT;
    else if (rc == 0 && limit == 0)
        rc = PULL_ERR_FIELD;
    if (rc != 0 && rc != PULL_ERR_NOT_FOUND) {
        reply_error(call->c, call->seq, PULL_ERR_FIELD, "bad argument 'limit': 1 to %d",
                    SEARCH_LIMIT_MAX);
        rc = 0;
        goto out;
    }
    q.now_s = node_now_s(n);
    if (search_index_needs_rebuild(srv->ix) &&
        (rc = search_index_build(srv->ix, n->store, q.now_s)) != 0)
        log_warn("ctl: rebuilding the search index failed: %s", pull_strerror(rc));
    if ((hits = calloc(limit, sizeof(*hits))) == NULL || (rec = malloc(sizeof(*rec))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    if ((rc = search_index_query(srv->ix, &q, (uint32_t)limit, search_fetch_rec, n, hits, &nh)) !=
        0)
        goto out;
    mp_packer_init(&ipk, &items);
    for (uint32_t i = 0; i < nh; i++) {
        struct envelope e;
        uint32_t score;
        wb_reset(&env);
        if (search_fetch(n->store, hits[i].created, hits[i].id8, &env) != 0 ||
            decode_env(env.p, env.len, &e, rec) != 0)
            continue;
        /* The index compares 64 bits of an author prefix: the record has the last word. */
        if ((score = match_score(&q, rec)) == 0)
            continue;
        pack_record(n, &ipk, e.id, rec, score);
        count++;
    }
    if (wb_error(&items) != 0) {
        reply_error(call->c, call->seq, PULL_ERR_TOO_BIG,
                    "the result is too large for one reply: ask for fewer records (--limit)");
        rc = 0;
        goto out;
    }
    msgpack_pack_array(reply_begin(&r, call->seq, false), count);
    wb_put(&r.w, items.p, items.len);
    reply_send(call->c, &r);
    node_trim_soon(n); /* the hits' pages leave pulld's RSS once the reply is out */
    rc = 0;
out:
    free(hits);
    free(rec);
    wb_release(&items);
    wb_release(&env);
    return rc;
}

/* The prefix of `pull show` given as an author: counts of the author's stored records. */
struct author_count {
    uint64_t now_s;
    struct record *rec;
    uint32_t records, offers, needs;
};

static int
author_count_visit(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *p, size_t len)
{
    struct author_count *a = ctx;
    struct envelope e;
    (void)id;

    if (decode_env(p, len, &e, a->rec) != 0 || a->rec->kind == RECORD_WITHDRAWN ||
        a->rec->expires <= a->now_s)
        return 0;
    a->records++;
    a->offers += a->rec->kind == RECORD_OFFER;
    a->needs += a->rec->kind == RECORD_NEED;
    return 0;
}

/* Resolves an author prefix into author[32]. A full key resolves if this node knows the
 * author (stored records, attestations naming it, or my own key). A shorter prefix is
 * looked up among the authors of live records through the search index, reading at most
 * SHOW_AUTHOR_SCAN hits: twice the default per-author quota, so that two authors sharing
 * the prefix are seen (it could miss one only past that quota). Returns 0,
 * PULL_ERR_NOT_FOUND, PULL_ERR_AMBIGUOUS or another error. */
#define SHOW_AUTHOR_SCAN (2 * STORE_MAX_PER_AUTHOR_DEFAULT)

static int
resolve_author(struct ctl_server *srv, const char *text, const struct ident_prefix *p,
               struct record *rec, uint8_t author[32])
{
    struct node *n = srv->n;
    struct search_hit *hits = NULL;
    struct match_query q;
    struct pull_wb w;
    uint32_t nh = 0, live = 0, tomb = 0, done = 0, peers = 0;
    bool found = false;
    int rc;

    if (strlen(text) == IDENT_TEXT_LEN) {
        if (ident_from_text(text, author) != 0)
            return PULL_ERR_NOT_FOUND;
        if (sodium_memcmp(author, n->self.pk, 32) == 0)
            return 0;
        if ((rc = store_author_count(n->store, author, &live, &tomb)) != 0)
            return rc;
        if (live + tomb == 0 && dyads_author_stats(srv->svc.dyads, author, &done, &peers) == 0 &&
            done == 0)
            return PULL_ERR_NOT_FOUND;
        return 0;
    }
    if (ident_prefix_match(p, n->self.pk)) {
        memcpy(author, n->self.pk, 32);
        found = true;
    }
    match_query_init(&q);
    q.has_author = true;
    q.author = *p;
    q.now_s = node_now_s(n);
    if (search_index_needs_rebuild(srv->ix) &&
        (rc = search_index_build(srv->ix, n->store, q.now_s)) != 0)
        log_warn("ctl: rebuilding the search index failed: %s", pull_strerror(rc));
    if ((hits = calloc(SHOW_AUTHOR_SCAN, sizeof(*hits))) == NULL)
        return PULL_ERR_NOMEM;
    rc = search_index_query(srv->ix, &q, SHOW_AUTHOR_SCAN, search_fetch_rec, n, hits, &nh);
    wb_init(&w, RECORD_ENVELOPE_MAX);
    for (uint32_t i = 0; rc == 0 && i < nh; i++) {
        struct envelope e;
        wb_reset(&w);
        if (search_fetch(n->store, hits[i].created, hits[i].id8, &w) != 0 ||
            decode_env(w.p, w.len, &e, rec) != 0 || !ident_prefix_match(p, rec->author))
            continue;
        if (!found) {
            memcpy(author, rec->author, 32);
            found = true;
        } else if (memcmp(author, rec->author, 32) != 0) {
            rc = PULL_ERR_AMBIGUOUS;
        }
    }
    wb_release(&w);
    free(hits);
    if (rc == 0 && !found)
        rc = PULL_ERR_NOT_FOUND;
    return rc;
}

/* Replies to `show` with the author map of the author the prefix names, or the error. */
static void
show_author(struct ctl_call *call, const char *prefix, const struct ident_prefix *p)
{
    struct ctl_server *srv = call->c->srv;
    struct author_count a = {.now_s = node_now_s(srv->n)};
    uint8_t author[32];
    char text[IDENT_TEXT_LEN + 1];
    uint32_t done = 0, peers = 0;
    msgpack_packer *pk;
    struct reply r;
    int rc;

    if ((a.rec = malloc(sizeof(*a.rec))) == NULL) {
        reply_error(call->c, call->seq, PULL_ERR_NOMEM, NULL);
        return;
    }
    rc = resolve_author(srv, prefix, p, a.rec, author);
    if (rc == 0 && (rc = store_iter_author(srv->n->store, author, author_count_visit, &a)) > 0)
        rc = 0;
    if (rc == 0)
        rc = dyads_author_stats(srv->svc.dyads, author, &done, &peers);
    if (rc == PULL_ERR_NOT_FOUND) {
        reply_error(call->c, call->seq, rc, "no record or author with an id starting with '%s'",
                    prefix);
    } else if (rc == PULL_ERR_AMBIGUOUS) {
        reply_error(call->c, call->seq, rc,
                    "ambiguous author prefix '%s' (several authors): give more characters", prefix);
    } else if (rc != 0) {
        reply_error(call->c, call->seq, rc, NULL);
    } else {
        ident_to_text(author, text);
        pk = reply_begin(&r, call->seq, false);
        msgpack_pack_map(pk, 7);
        pack_kv_str(pk, "author", text);
        pack_kv_uint(pk, "records", a.records);
        pack_kv_uint(pk, "offers", a.offers);
        pack_kv_uint(pk, "needs", a.needs);
        pack_kv_uint(pk, "dyads_completed", done);
        pack_kv_uint(pk, "dyads_counterparts", peers);
        mp_pack_cstr(pk, "mine");
        if (sodium_memcmp(author, srv->n->self.pk, 32) == 0)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        reply_send(call->c, &r);
    }
    free(a.rec);
}

static int
h_show(void *ctx, const struct ctl_request *req)
{
    struct ctl_call *call = ctx;
    struct node *n = call->c->srv->n;
    struct ident_prefix p;
    char prefix[IDENT_TEXT_LEN + 1];
    uint8_t id[RECORD_ID_BYTES];
    struct record *rec = NULL;
    struct envelope e;
    struct pull_wb w;
    struct reply r;
    int rc;

    wb_init(&w, RECORD_ENVELOPE_MAX);
    if ((rc = ctl_arg_str(req, "id", IDENT_TEXT_LEN, prefix, sizeof(prefix))) != 0 ||
        ident_prefix_parse(prefix, &p) != 0) {
        arg_failed(call, rc == PULL_ERR_NOT_FOUND ? rc : PULL_ERR_FIELD, "id");
        goto out;
    }
    rc = store_resolve_prefix(n->store, &p, id);
    if (rc == PULL_ERR_AMBIGUOUS) {
        reply_error(call->c, call->seq, rc,
                    "ambiguous id prefix '%s' (several records): give more characters", prefix);
    } else if (rc == PULL_ERR_NOT_FOUND) {
        show_author(call, prefix, &p); /* records win; then authors */
    } else if (rc != 0 || (rc = store_get(n->store, id, &w)) != 0) {
        reply_error(call->c, call->seq, rc, NULL);
    } else if ((rec = malloc(sizeof(*rec))) == NULL || decode_env(w.p, w.len, &e, rec) != 0) {
        reply_error(call->c, call->seq, rec == NULL ? PULL_ERR_NOMEM : PULL_ERR_STORE, NULL);
    } else {
        /* the author's completed dyads, from the attestation records stored here */
        uint32_t done = 0, peers = 0;
        msgpack_packer *pk = reply_begin(&r, call->seq, false);
        (void)dyads_author_stats(call->c->srv->svc.dyads, rec->author, &done, &peers);
        pack_record_ex(n, pk, id, rec, 0, 2);
        pack_kv_uint(pk, "author_dyads_completed", done);
        pack_kv_uint(pk, "author_dyads_counterparts", peers);
        reply_send(call->c, &r);
    }
out:
    free(rec);
    wb_release(&w);
    return 0;
}

/* ---- watch ------------------------------------------------------------------------- */

static int
h_watch(void *ctx, const struct ctl_request *req)
{
    struct ctl_call *call = ctx;
    struct ctl_client *c = call->c;
    struct ctl_watch *w;
    struct reply r;
    msgpack_packer *pk;
    bool mine = false;
    int rc;

    if (c->watch != NULL) {
        reply_error(c, call->seq, PULL_ERR_STATE, "this connection is already watching");
        return 0;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return PULL_ERR_NOMEM;
    if (read_query(call, req, &w->q, false, &w->filtered) != 0) {
        free(w);
        return 0;
    }
    rc = ctl_arg_bool(req, "mine", &mine);
    if (rc != 0 && rc != PULL_ERR_NOT_FOUND) {
        free(w);
        return arg_failed(call, rc, "mine");
    }
    w->mine = mine;
    w->seq = call->seq;
    c->watch = w;
    c->srv->nwatchers++;
    pk = reply_begin(&r, call->seq, true);
    msgpack_pack_map(pk, 1);
    pack_kv_str(pk, "event", "ready");
    reply_send(c, &r);
    return 0;
}

/* Sends one event to a watcher; the event map is {"event": ev, <body>} where body is
 * nfields packed key/value pairs in body[0..len). */
static void
watch_send(struct ctl_client *c, const char *ev, const uint8_t *body, size_t len, uint32_t nfields)
{
    struct reply r;
    msgpack_packer *pk = reply_begin(&r, c->watch->seq, true);

    msgpack_pack_map(pk, 1 + nfields);
    pack_kv_str(pk, "event", ev);
    wb_put(&r.w, body, len);
    reply_send_limit(c, &r, CTL_WATCH_QUEUE_MAX);
}

static void
watch_end(struct ctl_client *c)
{
    struct reply r;
    msgpack_packer *pk;

    if (c->watch == NULL || c->closing)
        return;
    pk = reply_begin(&r, c->watch->seq, false);
    msgpack_pack_map(pk, 1);
    pack_kv_str(pk, "event", "end");
    reply_send(c, &r);
}

/* My live offers and needs, loaded when needed after a record of mine changed. */
static int
mine_one(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct ctl_server *srv = ctx;
    struct record *rec = &srv->mine[srv->nmine];
    struct envelope e;

    if (decode_env(env, len, &e, rec) != 0 || rec->expires <= node_now_s(srv->n) ||
        (rec->kind != RECORD_OFFER && rec->kind != RECORD_NEED))
        return 0;
    memcpy(srv->mine_ids[srv->nmine], id, RECORD_ID_BYTES);
    srv->nmine++;
    if (srv->nmine >= srv->cap_mine)
        return 1;
    return 0;
}

static void
mine_load(struct ctl_server *srv)
{
    struct node *n = srv->n;
    uint32_t live = 0, tomb = 0;
    size_t cap;

    if (srv->mine_valid)
        return;
    free(srv->mine);
    free(srv->mine_ids);
    srv->mine = NULL;
    srv->mine_ids = NULL;
    srv->nmine = 0;
    if (store_author_count(n->store, n->self.pk, &live, &tomb) != 0 || live == 0) {
        srv->mine_valid = true;
        return;
    }
    cap = (size_t)live + tomb;
    if (cap > 2 * STORE_MAX_PER_AUTHOR_DEFAULT)
        cap = 2 * STORE_MAX_PER_AUTHOR_DEFAULT;
    srv->mine = malloc(cap * sizeof(*srv->mine));
    srv->mine_ids = malloc(cap * sizeof(*srv->mine_ids));
    srv->cap_mine = cap;
    if (srv->mine == NULL || srv->mine_ids == NULL)
        return;
    if (live + tomb > 0)
        store_iter_author(n->store, n->self.pk, mine_one, srv);
    srv->mine_valid = true;
}

static void
emit_record(struct ctl_server *srv, const uint8_t id[RECORD_ID_BYTES], const struct record *rec)
{
    struct pull_wb body;
    msgpack_packer pk;
    uint64_t now = node_now_s(srv->n);
    struct ctl_client *c, *next;

    if (srv->nwatchers == 0)
        return;
    wb_init(&body, 0);
    mp_packer_init(&pk, &body);
    mp_pack_cstr(&pk, "record");
    pack_record(srv->n, &pk, id, rec, 0);
    for (c = srv->clients; c != NULL; c = next) {
        next = c->next;
        if (c->watch == NULL || c->closing)
            continue;
        c->watch->q.now_s = now;
        if (match_score(&c->watch->q, rec) > 0)
            watch_send(c, "record", body.p, body.len, 1);
    }
    wb_release(&body);
}

/* A need related to one of my offers, or an offer related to one of my needs. */
static void
emit_matches(struct ctl_server *srv, const uint8_t id[RECORD_ID_BYTES], const struct record *rec)
{
    struct node *n = srv->n;

    if ((rec->kind != RECORD_OFFER && rec->kind != RECORD_NEED) ||
        sodium_memcmp(rec->author, n->self.pk, 32) == 0)
        return;
    mine_load(srv);
    for (size_t i = 0; i < srv->nmine; i++) {
        const struct record *m = &srv->mine[i];
        bool related = rec->kind == RECORD_NEED ? m->kind == RECORD_OFFER && match_related(m, rec)
                                                : m->kind == RECORD_NEED && match_related(rec, m);
        char a[IDENT_SHORT_LEN + 1], b[IDENT_SHORT_LEN + 1], mt[IDENT_TEXT_LEN + 1];
        struct pull_wb body;
        msgpack_packer pk;
        struct ctl_client *c, *next;

        if (!related || m->expires <= node_now_s(n))
            continue;
        ident_short(id, a);
        ident_short(srv->mine_ids[i], b);
        log_info("match: %s %s \"%.60s\" relates to your %s %s \"%.60s\"",
                 record_kind_name(rec->kind), a, rec->title, record_kind_name(m->kind), b,
                 m->title);
        if (srv->nwatchers == 0)
            continue;
        ident_to_text(srv->mine_ids[i], mt);
        wb_init(&body, 0);
        mp_packer_init(&pk, &body);
        mp_pack_cstr(&pk, "record");
        pack_record(n, &pk, id, rec, UINT32_MAX);
        pack_kv_str(&pk, "mine", mt);
        for (c = srv->clients; c != NULL; c = next) {
            next = c->next;
            if (c->watch != NULL && !c->closing && (!c->watch->filtered || c->watch->mine))
                watch_send(c, "match", body.p, body.len, 2);
        }
        wb_release(&body);
    }
}

static void
obs_stored(void *ctx, const struct node_stored *st)
{
    struct ctl_server *srv = ctx;
    const struct envelope *env = st->env;
    const struct record *rec = st->rec;

    if (sodium_memcmp(rec->author, srv->n->self.pk, 32) == 0)
        srv->mine_valid = false;
    if (rec->kind == RECORD_WITHDRAWN || srv->stopped)
        return;
    emit_record(srv, env->id, rec);
    emit_matches(srv, env->id, rec);
}

static void
obs_event(void *ctx, enum node_event ev, const uint8_t *dyad, size_t len)
{
    struct ctl_server *srv = ctx;
    struct pull_rd rd;
    struct pull_wb body;
    msgpack_packer pk;
    struct ctl_client *c, *next;

    if (ev != NODE_EV_DYAD || srv->nwatchers == 0 || srv->stopped)
        return;
    rd_init(&rd, dyad, len);
    if (mp_peek(&rd) != MP_MAP || ctl_value_check(&rd, 2) != 0 || rd_left(&rd) != 0)
        return;
    wb_init(&body, 0);
    mp_packer_init(&pk, &body);
    mp_pack_cstr(&pk, "dyad");
    wb_put(&body, dyad, len);
    for (c = srv->clients; c != NULL; c = next) {
        next = c->next;
        if (c->watch != NULL && !c->closing && (!c->watch->filtered || c->watch->mine))
            watch_send(c, "dyad", body.p, body.len, 1);
    }
    wb_release(&body);
}

/* ---- export / import ---------------------------------------------------------------- */

struct chunk {
    struct ctl_export *x;
    uint64_t now;
    msgpack_packer *pk; /* packs into items */
    struct pull_wb *items;
    uint32_t n;
};

static int
export_one(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct chunk *ch = ctx;
    struct ctl_export *x = ch->x;
    uint64_t kind, created, expires;

    if (envelope_peek(env, len, &kind, &created, &expires) != 0)
        return 0;
    if (x->started && created == x->cur_created && memcmp(id, x->last_id, RECORD_ID_BYTES) <= 0)
        return 0; /* sent by an earlier chunk */
    if (ch->n >= CTL_CHUNK_ENVELOPES || ch->items->len + len > CTL_EXPORT_CHUNK_BYTES)
        return 1;
    x->started = true;
    x->cur_created = created;
    memcpy(x->last_id, id, RECORD_ID_BYTES);
    if (kind == RECORD_WITHDRAWN || expires <= ch->now)
        return 0;
    mp_pack_bin(ch->pk, env, len);
    ch->n++;
    return 0;
}

static int
collect_mine(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct chunk *ch = ctx;
    uint64_t kind, created, expires;

    (void)id;
    if (envelope_peek(env, len, &kind, &created, &expires) != 0 || expires <= ch->now ||
        kind == RECORD_WITHDRAWN)
        return 0;
    wb_u32be(&ch->x->mine, (uint32_t)len);
    wb_put(&ch->x->mine, env, len);
    return 0;
}

static void
export_free(struct ctl_export *x)
{
    if (x == NULL)
        return;
    wb_release(&x->mine);
    free(x);
}

/* Sends the next chunk of c's export, or its end. */
static void
export_next(struct ctl_client *c)
{
    struct ctl_export *x = c->export;
    struct node *n = c->srv->n;
    struct pull_wb items;
    msgpack_packer ipk;
    struct chunk ch;
    struct reply r;
    msgpack_packer *pk;
    int rc = 0;

    wb_init(&items, CTL_EXPORT_CHUNK_BYTES + 2 * RECORD_ENVELOPE_MAX);
    mp_packer_init(&ipk, &items);
    memset(&ch, 0, sizeof(ch));
    ch.x = x;
    ch.now = node_now_s(n);
    ch.pk = &ipk;
    ch.items = &items;
    if (x->all) {
        rc = store_iter_time(n->store, x->started ? x->cur_created : 0, export_one, &ch);
    } else {
        while (x->mine_off + 4 <= x->mine.len && ch.n < CTL_CHUNK_ENVELOPES &&
               items.len < CTL_EXPORT_CHUNK_BYTES) {
            uint32_t len = be32dec(x->mine.p + x->mine_off);
            mp_pack_bin(&ipk, x->mine.p + x->mine_off + 4, len);
            x->mine_off += 4 + (size_t)len;
            ch.n++;
        }
    }
    if (rc < 0 || wb_error(&items) != 0) {
        reply_error(c, x->seq, rc < 0 ? rc : wb_error(&items), NULL);
        c->export = NULL;
        export_free(x);
        wb_release(&items);
        return;
    }
    if (ch.n > 0) {
        x->sent += ch.n;
        pk = reply_begin(&r, x->seq, true);
        msgpack_pack_map(pk, 1);
        mp_pack_cstr(pk, "envelopes");
        msgpack_pack_array(pk, ch.n);
        wb_put(&r.w, items.p, items.len);
        wb_release(&items);
        reply_send(c, &r); /* the write callback asks for the next chunk */
        return;
    }
    wb_release(&items);
    c->export = NULL;
    pk = reply_begin(&r, x->seq, false);
    msgpack_pack_map(pk, 1);
    pack_kv_uint(pk, "records", x->sent);
    export_free(x);
    reply_send(c, &r);
    node_trim_soon(n); /* an export reads every record it sends */
}

static int
h_export(void *ctx, const struct ctl_request *req)
{
    struct ctl_call *call = ctx;
    struct ctl_client *c = call->c;
    struct node *n = c->srv->n;
    struct ctl_export *x;
    bool all = false;
    int rc;

    if (c->export != NULL) {
        reply_error(c, call->seq, PULL_ERR_STATE, "an export is already running here");
        return 0;
    }
    rc = ctl_arg_bool(req, "all", &all);
    if (rc != 0 && rc != PULL_ERR_NOT_FOUND)
        return arg_failed(call, rc, "all");
    if ((x = calloc(1, sizeof(*x))) == NULL)
        return PULL_ERR_NOMEM;
    x->seq = call->seq;
    x->all = all;
    wb_init(&x->mine, 0);
    if (!all) {
        struct chunk ch = {.x = x, .now = node_now_s(n)};
        if ((rc = store_iter_author(n->store, n->self.pk, collect_mine, &ch)) < 0 ||
            (rc = wb_error(&x->mine)) != 0) {
            export_free(x);
            reply_error(c, call->seq, rc, NULL);
            return 0;
        }
    }
    c->export = x;
    export_next(c);
    return 0;
}

struct import_state {
    struct ctl_call *k;
    uint32_t pending;
    uint64_t imported, rejected;
    bool submitting;
};

static void
import_finish(struct import_state *im)
{
    struct reply r;
    msgpack_packer *pk = reply_begin(&r, im->k->seq, false);

    msgpack_pack_map(pk, 2);
    pack_kv_uint(pk, "imported", im->imported);
    pack_kv_uint(pk, "rejected", im->rejected);
    reply_send(im->k->c, &r);
    call_done(im->k);
    free(im);
}

static void
on_import_commit(void *arg, int result, const uint8_t id[RECORD_ID_BYTES])
{
    struct import_state *im = arg;

    (void)id;
    if (result == 0)
        im->imported++;
    else
        im->rejected++;
    im->pending--;
    if (im->pending == 0 && !im->submitting)
        import_finish(im);
}

static int
h_import(void *ctx, const struct ctl_request *req)
{
    struct ctl_call *call = ctx;
    struct node *n = call->c->srv->n;
    struct import_state *im;
    struct ctl_array it;
    const uint8_t *b;
    uint32_t len;
    int rc;

    if ((rc = ctl_arg_array(req, "envelopes", CTL_CHUNK_ENVELOPES, &it)) != 0)
        return arg_failed(call, rc, "envelopes");
    if ((im = calloc(1, sizeof(*im))) == NULL || (im->k = call_keep(call)) == NULL) {
        free(im);
        return PULL_ERR_NOMEM;
    }
    im->submitting = true;
    while ((rc = ctl_array_next_bin(&it, RECORD_ENVELOPE_MAX, &b, &len)) == 1) {
        im->pending++;
        /* The commit callback may run inside node_submit when the batch fills up. */
        if (node_submit(n, b, len, NODE_ORIGIN_IMPORT, NULL, on_import_commit, im, NULL) != 0) {
            im->pending--;
            im->rejected++;
        }
    }
    if (rc < 0)
        im->rejected += it.n - it.i; /* a bad element: the rest is not read */
    im->submitting = false;
    if (im->pending == 0)
        import_finish(im);
    return 0;
}

/* ---- dyads -------------------------------------------------------------------------- */

/* A dyad reply held until the commit that stores the dyad. */
struct dyad_reply {
    struct ctl_call *call;
    struct reply r;
};

static void
dyad_reply_committed(void *arg, int result)
{
    struct dyad_reply *d = arg;
    struct ctl_call *call = d->call;

    if (call->c->closing)
        wb_release(&d->r.w);
    else if (result != 0) {
        wb_release(&d->r.w);
        reply_error(call->c, call->seq, result, "the dyad could not be stored: %s",
                    pull_strerror(result));
    } else {
        reply_send(call->c, &d->r);
    }
    free(d);
    call_done(call);
}

static int
h_dyad(void *ctx, const struct ctl_request *req)
{
    struct ctl_call *call = ctx;
    struct ctl_server *srv = call->c->srv;
    struct dyad_reply *d = NULL;
    struct pull_wb res;
    msgpack_packer pk;
    char msg[CTL_MSG_MAX + 1] = "";
    int rc;

    if (srv->svc.dyads == NULL) {
        reply_error(call->c, call->seq, PULL_ERR_STATE, "the dyad service is not running");
        return 0;
    }
    wb_init(&res, CTL_REPLY_MAX);
    mp_packer_init(&pk, &res);
    rc = dyads_ctl(srv->svc.dyads, req, &pk, msg, sizeof(msg));
    if (rc != 0) {
        reply_error(call->c, call->seq, rc, "%s", msg[0] ? msg : pull_strerror(rc));
    } else if (wb_error(&res) != 0 || res.len == 0 || (d = calloc(1, sizeof(*d))) == NULL) {
        reply_error(call->c, call->seq, PULL_ERR_NOMEM, NULL);
    } else {
        /* the dyad's write is queued: answer once it is on disk */
        reply_begin(&d->r, call->seq, false);
        wb_put(&d->r.w, res.p, res.len);
        if ((d->call = call_keep(call)) == NULL ||
            node_after_commit(srv->n, dyad_reply_committed, d) != 0) {
            if (d->call != NULL)
                call_done(d->call);
            wb_release(&d->r.w);
            free(d);
            reply_error(call->c, call->seq, PULL_ERR_NOMEM, NULL);
        }
    }
    wb_release(&res);
    return 0;
}

/* ---- The command table -------------------------------------------------------------- */

static const struct ctl_command commands[] = {
    {"id", h_id, {NULL}, 0},
    {"status", h_status, {NULL}, 0},
    {"peers", h_peers, {NULL}, 0},
    {"connect", h_connect, {"address", NULL}, 0},
    {"record.add", h_record_add, {"kind", "title", NULL}, CTL_F_WRITE},
    {"record.edit", h_record_edit, {"id", NULL}, CTL_F_WRITE},
    {"record.list", h_record_list, {NULL}, 0},
    {"record.renew", h_record_renew, {"id", NULL}, CTL_F_WRITE},
    {"record.withdraw", h_record_withdraw, {"id", NULL}, CTL_F_WRITE},
    {"search", h_search, {NULL}, 0},
    {"show", h_show, {"id", NULL}, 0},
    {"watch", h_watch, {NULL}, CTL_F_STREAM},
    {"export", h_export, {NULL}, CTL_F_STREAM | CTL_F_SLOW},
    {"import", h_import, {"envelopes", NULL}, CTL_F_WRITE | CTL_F_SLOW},
    /* served by dyads.c (dyads_ctl) */
    {"dyad.propose", h_dyad, {"record", NULL}, CTL_F_WRITE},
    {"dyad.accept", h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.decline", h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.done", h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.ack", h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.cancel", h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.list", h_dyad, {NULL}, 0},
    {"dyad.show", h_dyad, {"id", NULL}, 0},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* Handles one whole message. Returns false if the connection must close. */
static bool
handle_msg(struct ctl_client *c, const uint8_t *msg, size_t len)
{
    struct ctl_request req;
    const struct ctl_command *cmd;
    const char *missing;
    char text[CTL_MSG_MAX + 1];
    struct ctl_call call;
    int rc;

    memset(&req, 0, sizeof(req));
    if ((rc = ctl_request_decode(msg, len, &req)) != 0) {
        reply_error(c, req.has_seq ? req.seq : 0, PULL_ERR_PROTOCOL, "not a valid request: %s",
                    pull_strerror(rc));
        return false;
    }
    rc = ctl_command_lookup(commands, NCOMMANDS, &req, &cmd, &missing, text, sizeof(text));
    if (rc != 0) {
        reply_error(c, req.seq, rc, "%s", text);
        return true;
    }
    call.c = c;
    call.seq = req.seq;
    if ((rc = cmd->handler(&call, &req)) != 0)
        reply_error(c, req.seq, rc, NULL);
    return true;
}

/* ---- Connections -------------------------------------------------------------------- */

static void
client_free(struct ctl_client *c)
{
    ctl_reader_release(&c->rd);
    free(c->rest);
    free(c->watch);
    export_free(c->export);
    free(c);
}

static void
client_unref(struct ctl_client *c)
{
    if (--c->refs == 0)
        client_free(c);
}

static void
on_handle_closed(uv_handle_t *h)
{
    client_unref(h->data);
}

static void
close_handles(struct ctl_client *c)
{
    if (!c->pipe_closing) {
        c->pipe_closing = true;
        uv_close((uv_handle_t *)&c->pipe, on_handle_closed);
    }
    if (!c->timer_closing) {
        c->timer_closing = true;
        uv_close((uv_handle_t *)&c->resume, on_handle_closed);
    }
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
    struct ctl_client *c = req->data;

    (void)status;
    free(req);
    close_handles(c);
    client_unref(c);
}

static void
on_linger_end(uv_timer_t *t)
{
    close_handles(t->data); /* the client did not take its last replies in time */
}

/* Closes c. graceful lets the replies already queued go out first (at most
 * CTL_LINGER_MS); bad counts a protocol error. */
static void
client_close(struct ctl_client *c, bool bad, bool graceful)
{
    struct ctl_server *srv = c->srv;
    uv_shutdown_t *sd;

    if (c->closing)
        return;
    c->closing = true;
    if (bad)
        srv->n->counters.ctl_bad++;
    if (c->watch != NULL)
        srv->nwatchers--;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    srv->nclients--;
    uv_read_stop((uv_stream_t *)&c->pipe);
    uv_timer_stop(&c->resume);
    if (graceful && c->queued > 0 && (sd = malloc(sizeof(*sd))) != NULL) {
        sd->data = c;
        if (uv_shutdown(sd, (uv_stream_t *)&c->pipe, on_shutdown) == 0) {
            c->refs++;
            uv_timer_start(&c->resume, on_linger_end, CTL_LINGER_MS, 0);
            return;
        }
        free(sd);
    }
    close_handles(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_resume(uv_timer_t *t);

/* Feeds p[0..n) to the reader and handles up to CTL_MSGS_PER_READ messages. Returns how
 * many bytes it consumed, or -1 if the connection was closed; *more is set if it stopped
 * for fairness (a message may be waiting in the reader, and p[used..n) is not fed yet). */
static ssize_t
client_feed(struct ctl_client *c, const uint8_t *p, size_t n, bool *more)
{
    size_t off = 0, used, len;
    unsigned handled = 0;
    const uint8_t *msg;

    *more = false;
    while (!c->closing) {
        if (handled >= CTL_MSGS_PER_READ) {
            *more = true;
            return (ssize_t)off;
        }
        if (ctl_reader_pop(&c->rd, &msg, &len) == 1) {
            handled++;
            if (!handle_msg(c, msg, len)) {
                client_close(c, true, true);
                return -1;
            }
            continue;
        }
        if (off >= n)
            break;
        if (ctl_reader_feed(&c->rd, p + off, n - off, &used) != 0) {
            reply_error(c, 0, PULL_ERR_PROTOCOL, "bad frame length");
            client_close(c, true, true);
            return -1;
        }
        off += used;
    }
    return c->closing ? -1 : (ssize_t)off;
}

/* Keeps p[0..n) for the next loop turn and pauses reading. */
static void
client_pause(struct ctl_client *c, const uint8_t *p, size_t n)
{
    uint8_t *rest = NULL;

    if (n > 0 && (rest = malloc(n)) == NULL) {
        client_close(c, false, false);
        return;
    }
    if (n > 0)
        memcpy(rest, p, n);
    free(c->rest);
    c->rest = rest;
    c->rest_len = n;
    c->rest_off = 0;
    if (!c->paused) {
        c->paused = true;
        uv_read_stop((uv_stream_t *)&c->pipe);
    }
    uv_timer_start(&c->resume, on_resume, 0, 0);
}

static void
on_resume(uv_timer_t *t)
{
    struct ctl_client *c = t->data;
    ssize_t used;
    bool more;

    if (c->closing)
        return;
    used = client_feed(c, c->rest + c->rest_off, c->rest_len - c->rest_off, &more);
    if (used < 0)
        return;
    c->rest_off += (size_t)used;
    if (more) {
        uv_timer_start(&c->resume, on_resume, 0, 0);
        return;
    }
    free(c->rest);
    c->rest = NULL;
    c->rest_len = c->rest_off = 0;
    c->paused = false;
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char slab[65536]; /* the loop thread reads one client at a time */

    (void)h;
    (void)suggested;
    *buf = uv_buf_init(slab, sizeof(slab));
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct ctl_client *c = s->data;
    ssize_t used;
    bool more;

    if (nread < 0) {
        client_close(c, false, false);
        return;
    }
    if (nread == 0 || c->closing)
        return;
    used = client_feed(c, (const uint8_t *)buf->base, (size_t)nread, &more);
    if (used < 0 || !more)
        return;
    /* More requests than one turn may handle: keep the rest, pause reading. */
    client_pause(c, (const uint8_t *)buf->base + used, (size_t)(nread - used));
}

static void
on_connection(uv_stream_t *server, int status)
{
    struct ctl_server *srv = server->data;
    struct ctl_client *c;

    if (status != 0 || srv->stopped)
        return;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->srv = srv;
    uv_pipe_init(srv->n->loop, &c->pipe, 0);
    uv_timer_init(srv->n->loop, &c->resume);
    c->pipe.data = c;
    c->resume.data = c;
    c->refs = 2; /* the two handles */
    ctl_reader_init(&c->rd, CTL_REQUEST_MAX);
    if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
        c->closing = true;
        close_handles(c);
        return;
    }
    if (srv->nclients >= srv->n->cfg.limits.ctl_max_clients) {
        log_warn("ctl: refusing a control connection: %zu clients already (ctl-max-clients)",
                 srv->nclients);
        c->closing = true;
        close_handles(c);
        return;
    }
    c->next = srv->clients;
    if (srv->clients != NULL)
        srv->clients->prev = c;
    srv->clients = c;
    srv->nclients++;
    srv->n->counters.ctl_clients++;
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* ---- Lifecycle ---------------------------------------------------------------------- */

/* Is something answering on the socket at path? */
static bool
socket_answers(const char *path)
{
    struct sockaddr_un sa;
    int fd, rc;

    if (strlen(path) >= sizeof(sa.sun_path))
        return false;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return false;
    do
        rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    while (rc != 0 && errno == EINTR);
    close(fd);
    return rc == 0;
}

int
ctl_server_start(struct node *n, const struct ctl_services *svc, struct ctl_server **out)
{
    struct ctl_server *srv;
    struct stat st;
    struct node_observer obs = {obs_stored, NULL, obs_event, NULL};
    char bindpath[PATH_MAX];
    int dirfd = -1, rc;
    mode_t old;

    *out = NULL;
    if ((srv = calloc(1, sizeof(*srv))) == NULL)
        return PULL_ERR_NOMEM;
    srv->n = n;
    srv->svc = *svc;
    srv->ix = n->search;
    if ((rc = paths_join(n->cfg.data_dir, PATHS_SOCKET_NAME, srv->path, sizeof(srv->path))) != 0) {
        log_error("control socket path too long in %s", n->cfg.data_dir);
        goto fail;
    }
    snprintf(bindpath, sizeof(bindpath), "%s", srv->path);
    if (strlen(srv->path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        /* Too long for sun_path: bind through the directory's descriptor (as the CLI
         * connects). */
        if ((dirfd = open(n->cfg.data_dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
            rc = PULL_ERR_IO;
            log_error("cannot open %s: %s", n->cfg.data_dir, strerror(errno));
            goto fail;
        }
        snprintf(bindpath, sizeof(bindpath), "/proc/self/fd/%d/%s", dirfd, PATHS_SOCKET_NAME);
    }
    if (lstat(srv->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            rc = PULL_ERR_EXISTS;
            log_error("%s exists and is not a socket: remove it", srv->path);
            goto fail;
        }
        if (socket_answers(bindpath)) {
            rc = PULL_ERR_EXISTS;
            log_error("another pulld is already running on %s (its control socket answers)",
                      n->cfg.data_dir);
            goto fail;
        }
        if (unlink(srv->path) != 0) {
            rc = PULL_ERR_IO;
            log_error("cannot remove the stale socket %s: %s", srv->path, strerror(errno));
            goto fail;
        }
        log_info("removed a stale control socket %s", srv->path);
    }
    uv_pipe_init(n->loop, &srv->listener, 0);
    srv->listener.data = srv;
    srv->listening = true;
    old = umask(0177); /* the socket is created 0600 */
    rc = uv_pipe_bind(&srv->listener, bindpath);
    umask(old);
    if (rc != 0) {
        log_error("cannot create the control socket %s: %s", srv->path, uv_strerror(rc));
        rc = PULL_ERR_IO;
        goto fail_handle;
    }
    if (stat(srv->path, &st) != 0) {
        log_error("control socket %s vanished: %s", srv->path, strerror(errno));
        rc = PULL_ERR_IO;
        goto fail_handle;
    }
    if ((st.st_mode & 0777) != 0600 && chmod(srv->path, 0600) != 0) {
        log_error("cannot make %s mode 0600: %s", srv->path, strerror(errno));
        rc = PULL_ERR_PERM;
        goto fail_handle;
    }
    srv->sock_dev = st.st_dev;
    srv->sock_ino = st.st_ino;
    if ((rc = uv_listen((uv_stream_t *)&srv->listener, 64, on_connection)) != 0) {
        log_error("cannot listen on %s: %s", srv->path, uv_strerror(rc));
        rc = PULL_ERR_IO;
        goto fail_handle;
    }
    if (dirfd >= 0)
        close(dirfd);
    *out = srv;
    obs.ctx = srv;
    if ((rc = node_observe(n, &obs)) != 0) {
        ctl_server_stop(srv);
        return rc;
    }
    srv->observing = true;
    log_info("control socket %s", srv->path);
    return 0;

fail_handle:
    /* The handle must be closed by the loop: ctl_server_stop/free do it. */
    unlink(srv->path);
    *out = srv;
    srv->sock_ino = 0;
    if (dirfd >= 0)
        close(dirfd);
    ctl_server_stop(srv);
    return rc;
fail:
    if (dirfd >= 0)
        close(dirfd);
    free(srv);
    return rc;
}

void
ctl_server_stop(struct ctl_server *srv)
{
    struct stat st;

    if (srv == NULL || srv->stopped)
        return;
    srv->stopped = true;
    if (srv->observing) {
        node_unobserve(srv->n, srv);
        srv->observing = false;
    }
    if (srv->listening) {
        uv_close((uv_handle_t *)&srv->listener, NULL);
        srv->listening = false;
        /* Remove the socket only if it is still ours (not a newer pulld's). */
        if (srv->sock_ino != 0 && stat(srv->path, &st) == 0 && st.st_ino == srv->sock_ino &&
            st.st_dev == srv->sock_dev)
            unlink(srv->path);
    }
    while (srv->clients != NULL) {
        struct ctl_client *c = srv->clients;
        watch_end(c);
        if (c->export != NULL) {
            reply_error(c, c->export->seq, PULL_ERR_CLOSED, "pulld is stopping");
            export_free(c->export);
            c->export = NULL;
        }
        client_close(c, false, true);
    }
}

void
ctl_server_free(struct ctl_server *srv)
{
    if (srv == NULL)
        return;
    free(srv->mine);
    free(srv->mine_ids);
    free(srv);
}
