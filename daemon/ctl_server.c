/*
 * ctl_server: pulld's side of the control socket (proto/ctl.h is the specification) - the
 * transport and the dispatcher. The calls and their one reply are ctl_call.c's; the
 * commands live in rooms (daemon/ctl_int.h has the map and the reply channel they share).
 *
 * One libuv unix socket at DATA_DIR/pulld.sock, mode 0600, at most ctl_max_clients
 * connections. Per connection: a bounded frame reader (the length is checked before any
 * byte of the body is buffered), at most CTL_MSGS_PER_READ requests handled per read
 * callback (the rest waits for the next loop turn with reading paused), and a bounded
 * outbound queue: a client whose unsent replies exceed CTL_QUEUE_MAX (a stream's own
 * queue_max for its more=true replies: watch events) is dropped, never buffered without
 * limit. Streams hear of completed writes (export is paced by the client that way).
 *
 * Strangers' budget. Whoever can connect owns the node, but a local program that holds
 * connections open, or asks without reading, must not lock the owner's `pull` out or grow
 * pulld without bound (config.h's ctl_* limits):
 *   - Idle clients go. A client with no request in flight, no stream and nothing queued is
 *     closed ctl_first_request_ms after it connected if it never sent a whole request, and
 *     ctl_idle_ms after its last request (or the end of its last call) otherwise; a
 *     client with replies queued that completes no write for ctl_idle_ms (it does not
 *     read) is closed too, streams included. Half a request does not count as activity.
 *     A timer sweeps the clients every CTL_SWEEP_MS (sweep_ms).
 *   - The owner gets in. When all ctl_max_clients slots are taken, a new connection
 *     closes the client idle longest (no stream, nothing in flight), else one that has
 *     not read its replies for a second, else it is refused. Streams (watch, export) may
 *     hold at most ctl_max_clients - ctl_reserved_clients slots: a stream asked beyond
 *     that is refused with PULL_ERR_AGAIN, so the reserved slots always hold plain
 *     commands, which finish.
 *   - Requests in flight: at most ctl_max_inflight calls of one client are being answered
 *     (streams not counted); beyond that its reading pauses until one ends.
 *   - Imports go at the verifiers' pace: a client that imported is not read while the
 *     node's verifiers are full (node_verify_busy), looked at every CTL_VERIFY_POLL_MS.
 *   - Slow commands (CTL_F_SLOW: search, export, import) are paced: after one ran for t,
 *     its client's next request waits t * (100 - ctl_slow_share_pct) / ctl_slow_share_pct,
 *     and at most one runs per client per loop turn, so one client's searches cannot
 *     starve the others (or the network).
 *   - Watchers' memory: each has ctl_watch_queue_bytes of unsent events, all together
 *     ctl_watch_total_bytes (ctl_stream_room); past that a watcher lags (ctl_search.c).
 *
 * Commands come from the one table below {name, handler, required args, flags}; proto/ctl
 * checks existence and required args before the handler runs. A frame that is not a valid
 * request closes only that connection (counters.ctl_bad). Every request becomes a call that
 * gets exactly one final reply (ctl_int.h, ctl_call.c); the dispatcher ends it with the
 * handler's return. A client is freed only when its handles are closed and no call or
 * callback refers to it (refs), never inside its own callback chain.
 */
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/ctl_int.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/mp.h"
#include "lib/paths.h"
#include "proto/ctl.h"

#define CTL_MSGS_PER_READ 32
#define CTL_LINGER_MS 2000
#define CTL_SWEEP_MS 1000u      /* idle and stalled clients are looked for this often */
#define CTL_STALL_EVICT_MS 1000 /* a full server may close a client stalled this long */
#define CTL_VERIFY_POLL_MS 2    /* a client held for the verifiers looks again this often */

/* A write in flight. */
struct ctl_write {
    uv_write_t req;
    struct ctl_client *c;
    uint8_t *buf;
    size_t len;
    size_t watch_cost; /* what it takes of srv->watch_mem (0: not a watch event) */
};

static void client_close(struct ctl_client *c, bool bad, bool graceful);

static uint64_t
now_ms(const struct ctl_server *srv)
{
    return node_now_ms(srv->n);
}

static const struct config_limits *
limits(const struct ctl_server *srv)
{
    return &srv->n->cfg.limits;
}

/* ---- Output ------------------------------------------------------------------------- */

static void
on_write(uv_write_t *req, int status)
{
    struct ctl_write *wr = req->data;
    struct ctl_client *c = wr->c;
    struct ctl_call *s, *next;

    (void)status;
    c->queued -= wr->len;
    c->watch_mem -= wr->watch_cost;
    c->srv->watch_mem -= wr->watch_cost;
    c->wait_ms = now_ms(c->srv);
    free(wr->buf);
    free(wr);
    /* a hook may end its own stream, or drop the client (which ends them all) */
    for (s = c->streams; s != NULL && !c->closing; s = next) {
        next = s->stream_next;
        if (s->stream->written != NULL)
            s->stream->written(s, c->queued);
    }
    ctl_client_unref(c);
}

/* Sends a framed message, taking w's buffer; watch: it is a watch event, counted in the
 * watchers' memory. Returns false if the client was dropped (or is closing: the message is
 * discarded). */
bool
ctl_client_send(struct ctl_client *c, struct pull_wb *w, size_t limit, bool watch)
{
    struct ctl_write *wr;
    uv_buf_t b;
    size_t len, cost = watch ? w->cap + sizeof(*wr) : 0;
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
    wr->watch_cost = cost;
    wr->req.data = wr;
    b = uv_buf_init((char *)p, (unsigned)len);
    if (uv_write(&wr->req, (uv_stream_t *)&c->pipe, &b, 1, on_write) != 0) {
        free(p);
        free(wr);
        client_close(c, false, false);
        return false;
    }
    if (c->queued == 0)
        c->wait_ms = now_ms(c->srv);
    c->queued += len;
    c->watch_mem += cost;
    c->srv->watch_mem += cost;
    c->refs++;
    return true;
}

/* An error reply outside any call: a frame that is not a valid request. */
static void
client_error(struct ctl_client *c, uint64_t seq, const char *msg)
{
    struct pull_wb w;

    wb_init(&w, 4096);
    ctl_reply_error(&w, seq, PULL_ERR_PROTOCOL, msg);
    ctl_client_send(c, &w, CTL_QUEUE_MAX, false);
}

/* ---- The command table -------------------------------------------------------------- */

static const struct ctl_command commands[] = {
    {"id", ctl_h_id, {NULL}, 0},
    {"status", ctl_h_status, {NULL}, 0},
    {"peers", ctl_h_peers, {NULL}, 0},
    {"connect", ctl_h_connect, {"address", NULL}, 0},
    {"record.add", ctl_h_record_add, {"kind", "title", NULL}, CTL_F_WRITE},
    {"record.edit", ctl_h_record_edit, {"id", NULL}, CTL_F_WRITE},
    {"record.list", ctl_h_record_list, {NULL}, 0},
    {"record.renew", ctl_h_record_renew, {"id", NULL}, CTL_F_WRITE},
    {"record.withdraw", ctl_h_record_withdraw, {"id", NULL}, CTL_F_WRITE},
    {"search", ctl_h_search, {NULL}, CTL_F_SLOW},
    {"show", ctl_h_show, {"id", NULL}, 0},
    {"watch", ctl_h_watch, {NULL}, CTL_F_STREAM},
    {"export", ctl_h_export, {NULL}, CTL_F_STREAM | CTL_F_SLOW},
    {"import", ctl_h_import, {"envelopes", NULL}, CTL_F_WRITE | CTL_F_SLOW | CTL_F_VERIFY},
    /* served by dyads.c (dyads_ctl) */
    {"dyad.propose", ctl_h_dyad, {"record", NULL}, CTL_F_WRITE},
    {"dyad.accept", ctl_h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.decline", ctl_h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.done", ctl_h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.ack", ctl_h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.cancel", ctl_h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.list", ctl_h_dyad, {NULL}, 0},
    {"dyad.show", ctl_h_dyad, {"id", NULL}, 0},
    {"dyad.message", ctl_h_dyad, {"id", "message", NULL}, CTL_F_WRITE},
    /* ctl_people.c */
    {"profile.set", ctl_h_profile_set, {NULL}, CTL_F_WRITE},
    {"profile.show", ctl_h_profile_show, {NULL}, 0},
    {"name.set", ctl_h_name_set, {"author", "petname", NULL}, CTL_F_WRITE},
    {"name.remove", ctl_h_name_remove, {"author", NULL}, CTL_F_WRITE},
    {"names", ctl_h_names, {NULL}, 0},
    {"doctor", ctl_h_doctor, {NULL}, CTL_F_STREAM},
    {"candidates", ctl_h_candidates, {"prefix", "of", NULL}, 0},
    {"invite", ctl_h_invite, {NULL}, CTL_F_WRITE},
    {"join", ctl_h_join, {"code", NULL}, CTL_F_WRITE},
    {"restart", ctl_h_restart, {NULL}, 0},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

void
ctl_server_set_commands(struct ctl_server *srv, const struct ctl_command *table, size_t n)
{
    srv->commands = table;
    srv->ncommands = n;
}

/* How many clients may run streams: ctl_max_clients less the reserved slots. */
static unsigned
stream_slots(const struct ctl_server *srv)
{
    const struct config_limits *l = limits(srv);

    return l->ctl_max_clients > l->ctl_reserved_clients
               ? l->ctl_max_clients - l->ctl_reserved_clients
               : 0;
}

/* May one more client run a stream? */
static bool
stream_slot_free(const struct ctl_server *srv)
{
    size_t streaming = 0;

    for (const struct ctl_client *c = srv->clients; c != NULL; c = c->next)
        streaming += c->streams != NULL;
    return streaming < stream_slots(srv);
}

/* A slow command of c ran for ns nanoseconds: c's next request waits its share out. */
static void
client_pace(struct ctl_client *c, uint64_t ns)
{
    uint64_t share = limits(c->srv)->ctl_slow_share_pct, wait_ms;

    c->paced_until_ms = now_ms(c->srv); /* at least the next loop turn (client_held) */
    if (share == 0 || share >= 100)
        return;
    wait_ms = ns / 1000000u * (100 - share) / share;
    c->paced_until_ms += wait_ms;
    c->srv->paced_ms += wait_ms;
}

/* Is c, which imports, held while the node's verifiers are full? Its records would
 * otherwise be verified here on the loop (node_submit): a third verifier on a machine of
 * two cores, and every other client and peer waiting behind it. Reading the client's next
 * request waits instead, so the import goes at the verifiers' pace. */
static bool
verify_held(const struct ctl_client *c)
{
    return c->verifies && c->srv->n != NULL && node_verify_busy(c->srv->n);
}

/* Must c's next request wait (too many in flight, a slow command's share, an import while
 * the verifiers are full)? */
static bool
client_held(const struct ctl_client *c)
{
    return c->inflight >= limits(c->srv)->ctl_max_inflight ||
           (c->paced_until_ms != 0 && now_ms(c->srv) <= c->paced_until_ms) || verify_held(c);
}

/* Handles one whole message. Returns false if the connection must close. */
static bool
handle_msg(struct ctl_client *c, const uint8_t *msg, size_t len)
{
    struct ctl_request req;
    const struct ctl_command *cmd;
    char text[CTL_MSG_MAX + 1];
    struct ctl_call *call;
    int rc;

    memset(&req, 0, sizeof(req));
    c->spoke = true;
    c->since_ms = now_ms(c->srv);
    if ((rc = ctl_request_decode(msg, len, &req)) != 0) {
        snprintf(text, sizeof(text), "not a valid request: %s", pull_strerror(rc));
        client_error(c, req.has_seq ? req.seq : 0, text);
        return false;
    }
    if ((call = ctl_call_new(c, req.seq)) == NULL) {
        client_close(c, false, false);
        return false;
    }
    rc = ctl_command_lookup(c->srv->commands, c->srv->ncommands, &req, &cmd, NULL, text,
                            sizeof(text));
    if (rc != 0) {
        ctl_done(call, ctl_fail(call, rc, "%s", text));
        return true;
    }
    call->cmd = cmd->name;
    if (cmd->flags & CTL_F_VERIFY)
        c->verifies = true;
    if ((cmd->flags & CTL_F_STREAM) && c->streams == NULL && !stream_slot_free(c->srv)) {
        ctl_done(call, ctl_fail(call, PULL_ERR_AGAIN,
                                "too many watches and exports at once (%u: ctl-max-clients "
                                "less ctl-reserved-clients): try again later",
                                stream_slots(c->srv)));
        return true;
    }
    if (cmd->flags & CTL_F_SLOW) {
        uint64_t t0 = uv_hrtime();
        ctl_done(call, cmd->handler(call, &req));
        client_pace(c, uv_hrtime() - t0);
    } else {
        ctl_done(call, cmd->handler(call, &req));
    }
    return true;
}

/* ---- Connections -------------------------------------------------------------------- */

static void
client_free(struct ctl_client *c)
{
    ctl_reader_release(&c->rd);
    free(c->rest);
    free(c);
}

void
ctl_client_unref(struct ctl_client *c)
{
    if (--c->refs == 0)
        client_free(c);
}

static void
on_handle_closed(uv_handle_t *h)
{
    ctl_client_unref(h->data);
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
    ctl_client_unref(c);
}

static void
on_linger_end(uv_timer_t *t)
{
    close_handles(t->data); /* the client did not take its last replies in time */
}

/* Ends c's streams: their last replies when the server stops, nothing when the client is
 * going away. */
static void
streams_stop(struct ctl_client *c, bool server_stopping)
{
    struct ctl_call *s;

    while ((s = c->streams) != NULL) {
        const struct ctl_stream_ops *ops = s->stream;
        ctl_stream_unlink(s);
        ops->stop(s, server_stopping);
    }
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
    streams_stop(c, false);
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
        if (handled >= CTL_MSGS_PER_READ || client_held(c)) {
            if (verify_held(c))
                c->srv->verify_waits++;
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
            client_error(c, 0, "bad frame length");
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
    ctl_client_schedule(c);
}

/* Resumes a paused client when it may go on: on the next loop turn, once its slow
 * command's share is waited out; not before one of its calls ends if too many are in
 * flight (call_settle calls again). */
void
ctl_client_schedule(struct ctl_client *c)
{
    uint64_t now = now_ms(c->srv), delay;

    if (c->closing || !c->paused)
        return;
    if (c->inflight >= limits(c->srv)->ctl_max_inflight) {
        uv_timer_stop(&c->resume);
        return;
    }
    delay = c->paced_until_ms >= now ? c->paced_until_ms - now + 1 : 0;
    if (verify_held(c) && delay < CTL_VERIFY_POLL_MS)
        delay = CTL_VERIFY_POLL_MS;
    uv_timer_start(&c->resume, on_resume, delay, 0);
}

static void
on_resume(uv_timer_t *t)
{
    struct ctl_client *c = t->data;
    ssize_t used;
    bool more;

    if (c->closing)
        return;
    /* no bytes left over (rest NULL): feed nothing, but without NULL + 0 (UB) */
    used = client_feed(c, c->rest != NULL ? c->rest + c->rest_off : (const uint8_t *)"",
                       c->rest_len - c->rest_off, &more);
    if (used < 0)
        return;
    c->rest_off += (size_t)used;
    if (more) {
        ctl_client_schedule(c);
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

/* A client that may be closed to let a new one in: the one idle longest (no stream,
 * nothing in flight or waiting), else the one that has not read its replies for longest
 * (at least CTL_STALL_EVICT_MS). NULL if none. */
static struct ctl_client *
pick_victim(struct ctl_server *srv)
{
    struct ctl_client *idle = NULL, *stalled = NULL;
    uint64_t now = now_ms(srv);

    for (struct ctl_client *c = srv->clients; c != NULL; c = c->next) {
        if (c->closing)
            continue;
        if (c->streams == NULL && c->inflight == 0 && !c->paused && c->queued == 0) {
            if (idle == NULL || c->since_ms < idle->since_ms)
                idle = c;
        } else if (c->queued > 0 && now - c->wait_ms >= CTL_STALL_EVICT_MS) {
            if (stalled == NULL || c->wait_ms < stalled->wait_ms)
                stalled = c;
        }
    }
    return idle != NULL ? idle : stalled;
}

/* How often the sweep runs: every CTL_SWEEP_MS, more often for timeouts shorter than two
 * of those (tests), never more than every 20 ms. */
static uint64_t
sweep_ms(const struct ctl_server *srv)
{
    const struct config_limits *l = limits(srv);
    uint64_t t =
        l->ctl_first_request_ms < l->ctl_idle_ms ? l->ctl_first_request_ms : l->ctl_idle_ms;

    t /= 2;
    return t > CTL_SWEEP_MS ? CTL_SWEEP_MS : t < 20 ? 20 : t;
}

/* The sweep: closes clients idle too long, and clients that do not read their replies. */
static void
on_sweep(uv_timer_t *t)
{
    struct ctl_server *srv = t->data;
    const struct config_limits *l = limits(srv);
    uint64_t now = now_ms(srv);
    struct ctl_client *c, *next;

    for (c = srv->clients; c != NULL; c = next) {
        next = c->next; /* closing c unlinks only c */
        if (c->closing)
            continue;
        if (c->queued > 0 && now - c->wait_ms >= l->ctl_idle_ms) {
            log_info("ctl: closing a client that has read none of its replies for %llu s "
                     "(%zu bytes queued%s)",
                     (unsigned long long)(now - c->wait_ms) / 1000, c->queued,
                     c->streams != NULL ? ", a stream" : "");
            srv->stalled_closed++;
            client_close(c, false, false);
        } else if (c->streams == NULL && c->inflight == 0 && !c->paused && c->queued == 0 &&
                   now - c->since_ms >= (c->spoke ? l->ctl_idle_ms : l->ctl_first_request_ms)) {
            log_debug("ctl: closing an idle client (%s for %llu ms)",
                      c->spoke ? "no request" : "no first request",
                      (unsigned long long)(now - c->since_ms));
            srv->idle_closed++;
            client_close(c, false, true);
        }
    }
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
    if (srv->nclients >= limits(srv)->ctl_max_clients) {
        struct ctl_client *victim = pick_victim(srv);
        if (victim == NULL) {
            log_warn("ctl: refusing a control connection: %zu clients already, none idle "
                     "(ctl-max-clients)",
                     srv->nclients);
            srv->refused++;
            c->closing = true;
            close_handles(c);
            return;
        }
        log_info("ctl: %zu clients (ctl-max-clients): closing the one %s to let a new one in",
                 srv->nclients, victim->queued > 0 ? "that reads nothing" : "idle longest");
        srv->evicted++;
        client_close(victim, false, victim->queued == 0);
    }
    c->since_ms = c->wait_ms = now_ms(srv);
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
    char bindpath[PATH_MAX];
    int dirfd = -1, rc;
    mode_t old;

    *out = NULL;
    if ((srv = calloc(1, sizeof(*srv))) == NULL)
        return PULL_ERR_NOMEM;
    srv->n = n;
    srv->svc = *svc;
    srv->commands = commands;
    srv->ncommands = NCOMMANDS;
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
    uv_timer_init(n->loop, &srv->sweep);
    srv->sweep.data = srv;
    srv->sweeping = true;
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
    uv_timer_start(&srv->sweep, on_sweep, sweep_ms(srv), sweep_ms(srv));
    uv_unref((uv_handle_t *)&srv->sweep); /* the listener keeps the loop running, not this */
    if ((rc = ctl_search_start(srv)) != 0) {
        ctl_server_stop(srv);
        return rc;
    }
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
    ctl_search_stop(srv);
    if (srv->sweeping) {
        uv_close((uv_handle_t *)&srv->sweep, NULL);
        srv->sweeping = false;
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
        streams_stop(c, true);
        client_close(c, false, true);
    }
}

void
ctl_server_free(struct ctl_server *srv)
{
    if (srv == NULL)
        return;
    ctl_search_free(srv);
    free(srv);
}
