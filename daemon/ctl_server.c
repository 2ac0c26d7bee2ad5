/*
 * ctl_server: pulld's side of the control socket (proto/ctl.h is the specification) - the
 * transport and the dispatcher. The commands live in rooms (daemon/ctl_int.h has the map
 * and the reply channel they share).
 *
 * One libuv unix socket at DATA_DIR/pulld.sock, mode 0600, at most ctl_max_clients
 * connections. Per connection: a bounded frame reader (the length is checked before any
 * byte of the body is buffered), at most CTL_MSGS_PER_READ requests handled per read
 * callback (the rest waits for the next loop turn with reading paused), and a bounded
 * outbound queue: a client whose unsent replies exceed CTL_QUEUE_MAX (a stream's own
 * queue_max for its more=true replies: watch events) is dropped, never buffered without
 * limit. Streams hear of completed writes (export is paced by the client that way).
 *
 * Commands come from the one table below {name, handler, required args, flags}; proto/ctl
 * checks existence and required args before the handler runs. A frame that is not a valid
 * request closes only that connection (counters.ctl_bad). Every request becomes a call that
 * gets exactly one final reply (ctl_int.h); the dispatcher ends it with the handler's
 * return. A client is freed only when its handles are closed and no call or callback
 * refers to it (refs), never inside its own callback chain.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdarg.h>
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

struct ctl_client {
    uv_pipe_t pipe; /* first: the handle's data points back here anyway */
    struct ctl_server *srv;
    struct ctl_client *next, *prev;
    struct ctl_reader rd;
    uint8_t *rest; /* received bytes not yet fed (reading paused) */
    size_t rest_len, rest_off;
    uv_timer_t resume; /* continues with rest on the next loop turn */
    size_t queued;     /* bytes written but not yet completed */
    unsigned refs;     /* calls and callbacks that still refer to the client; +1 per handle */
    bool closing;
    bool paused;
    bool pipe_closing, timer_closing;
    struct ctl_call *streams; /* running streams (watch, export) */
};

/* A write in flight. */
struct ctl_write {
    uv_write_t req;
    struct ctl_client *c;
    uint8_t *buf;
    size_t len;
};

static void client_close(struct ctl_client *c, bool bad, bool graceful);
static void client_unref(struct ctl_client *c);

/* ---- Output ------------------------------------------------------------------------- */

static void
on_write(uv_write_t *req, int status)
{
    struct ctl_write *wr = req->data;
    struct ctl_client *c = wr->c;
    struct ctl_call *s, *next;

    (void)status;
    c->queued -= wr->len;
    free(wr->buf);
    free(wr);
    /* a hook may end its own stream, or drop the client (which ends them all) */
    for (s = c->streams; s != NULL && !c->closing; s = next) {
        next = s->stream_next;
        if (s->stream->written != NULL)
            s->stream->written(s, c->queued);
    }
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

/* An error reply outside any call: a frame that is not a valid request. */
static void
client_error(struct ctl_client *c, uint64_t seq, const char *msg)
{
    struct pull_wb w;

    wb_init(&w, 4096);
    ctl_reply_error(&w, seq, PULL_ERR_PROTOCOL, msg);
    client_send(c, &w, CTL_QUEUE_MAX);
}

/* ---- Calls and the one reply ---------------------------------------------------------- */

static struct ctl_call *
call_new(struct ctl_client *c, uint64_t seq)
{
    struct ctl_call *call = calloc(1, sizeof(*call));

    if (call == NULL)
        return NULL;
    call->srv = c->srv;
    call->seq = seq;
    call->c = c;
    call->cmd = "?";
    call->refs = 1;
    c->refs++;
    return call;
}

static void call_bug(struct ctl_call *call, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A handler broke the one-reply rule: log it (with the command) and count it. */
static void
call_bug(struct ctl_call *call, const char *fmt, ...)
{
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    call->srv->reply_bugs++;
    log_error("ctl: bug in '%s' (seq %llu): %s", call->cmd, (unsigned long long)call->seq, what);
}

static void
stream_unlink(struct ctl_call *call)
{
    struct ctl_client *c = call->c;

    if (call->stream == NULL)
        return;
    if (call->stream_prev != NULL)
        call->stream_prev->stream_next = call->stream_next;
    else
        c->streams = call->stream_next;
    if (call->stream_next != NULL)
        call->stream_next->stream_prev = call->stream_prev;
    call->stream_next = call->stream_prev = NULL;
    call->stream = NULL;
}

int
ctl_fail(struct ctl_call *call, int err, const char *fmt, ...)
{
    va_list ap;

    call->fail_err = err;
    call->fail_msg[0] = '\0';
    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(call->fail_msg, sizeof(call->fail_msg), fmt, ap);
        va_end(ap);
    }
    return err;
}

msgpack_packer *
ctl_begin(struct ctl_call *call, bool more)
{
    if (call->building)
        ctl_cancel(call);
    wb_init(&call->w, CTL_REPLY_MAX + 64);
    call->start = ctl_frame_begin(&call->w);
    mp_packer_init(&call->pk, &call->w);
    ctl_pack_reply_head(&call->pk, call->seq, 0, NULL, more);
    call->building = true;
    call->more = more;
    return &call->pk;
}

void
ctl_cancel(struct ctl_call *call)
{
    if (call->building)
        wb_release(&call->w);
    call->building = false;
}

/* Sends a framed reply of the call (or drops it, logged, if the final one went out). */
static void
call_send(struct ctl_call *call, struct pull_wb *w, bool more)
{
    struct ctl_client *c = call->c;
    size_t limit = more && call->queue_max > 0 ? call->queue_max : CTL_QUEUE_MAX;

    if (call->replied) {
        call_bug(call, "a reply after the final reply (refused)");
        wb_release(w);
        return;
    }
    if (!more) {
        call->replied = true;
        stream_unlink(call);
    }
    /* client_send may drop the client, whose streams then end: hold the call meanwhile */
    call->refs++;
    client_send(c, w, limit);
    ctl_done(call, 0);
}

void
ctl_send(struct ctl_call *call)
{
    const struct ctl_stream_ops *ended = NULL;
    int rc;

    if (!call->building) {
        call_bug(call, "ctl_send without ctl_begin");
        return;
    }
    call->building = false;
    if ((rc = ctl_frame_end(&call->w, call->start, CTL_REPLY_MAX)) != 0) {
        wb_reset(&call->w);
        ctl_reply_error(&call->w, call->seq, rc == PULL_ERR_NOMEM ? rc : PULL_ERR_TOO_BIG,
                        rc == PULL_ERR_NOMEM ? NULL
                                             : "the result is too large for one reply: ask "
                                               "for fewer records (--limit)");
        if (call->more)
            ended = call->stream; /* the error is the stream's final reply */
        call->more = false;
    }
    call->refs++;
    call_send(call, &call->w, call->more);
    if (ended != NULL)
        ended->stop(call, false); /* the room lets go of its state (the reply went out) */
    ctl_done(call, 0);
}

void
ctl_send_packed(struct ctl_call *call, bool more, const uint8_t *p, size_t len)
{
    ctl_begin(call, more);
    wb_put(&call->w, p, len);
    ctl_send(call);
}

/* Sends err as the call's final reply, with the message ctl_fail recorded for it. */
static void
call_error(struct ctl_call *call, int err)
{
    struct pull_wb w;

    ctl_cancel(call);
    wb_init(&w, 4096);
    ctl_reply_error(&w, call->seq, err, call->fail_err == err ? call->fail_msg : NULL);
    call_send(call, &w, false);
}

struct ctl_call *
ctl_keep(struct ctl_call *call)
{
    call->refs++;
    return call;
}

struct ctl_call *
ctl_stream(struct ctl_call *call, const struct ctl_stream_ops *ops, void *arg, size_t queue_max)
{
    struct ctl_client *c = call->c;

    assert(!c->closing && !call->replied && call->stream == NULL); /* called by handlers */
    ctl_keep(call);
    call->arg = arg;
    call->queue_max = queue_max;
    call->stream = ops;
    call->stream_prev = NULL;
    call->stream_next = c->streams;
    if (c->streams != NULL)
        c->streams->stream_prev = call;
    c->streams = call;
    return call;
}

bool
ctl_streaming(const struct ctl_call *call, const struct ctl_stream_ops *ops)
{
    for (const struct ctl_call *s = call->c->streams; s != NULL; s = s->stream_next) {
        if (s->stream == ops)
            return true;
    }
    return false;
}

bool
ctl_client_closing(const struct ctl_call *call)
{
    return call->c->closing;
}

void
ctl_done(struct ctl_call *call, int rc)
{
    struct ctl_client *c = call->c;

    if (rc > 0) {
        call_bug(call, "returned %d (not an error code)", rc);
        rc = ctl_fail(call, PULL_ERR_STATE, "internal error: '%s' returned %d", call->cmd, rc);
    }
    if (rc != 0) {
        if (call->replied)
            call_bug(call, "an error (%s) after the final reply (dropped)", pull_strerror(rc));
        else
            call_error(call, rc);
    }
    if (--call->refs > 0)
        return;
    if (!call->replied && !c->closing) {
        call_bug(call, "ended without a reply");
        ctl_fail(call, PULL_ERR_STATE, "internal error: '%s' ended without a reply", call->cmd);
        call->refs++; /* held while the reply goes out */
        call_error(call, PULL_ERR_STATE);
        call->refs--;
    }
    stream_unlink(call);
    ctl_cancel(call);
    free(call);
    client_unref(c);
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
    {"search", ctl_h_search, {NULL}, 0},
    {"show", ctl_h_show, {"id", NULL}, 0},
    {"watch", ctl_h_watch, {NULL}, CTL_F_STREAM},
    {"export", ctl_h_export, {NULL}, CTL_F_STREAM | CTL_F_SLOW},
    {"import", ctl_h_import, {"envelopes", NULL}, CTL_F_WRITE | CTL_F_SLOW},
    /* served by dyads.c (dyads_ctl) */
    {"dyad.propose", ctl_h_dyad, {"record", NULL}, CTL_F_WRITE},
    {"dyad.accept", ctl_h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.decline", ctl_h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.done", ctl_h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.ack", ctl_h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.cancel", ctl_h_dyad, {"id", NULL}, CTL_F_WRITE},
    {"dyad.list", ctl_h_dyad, {NULL}, 0},
    {"dyad.show", ctl_h_dyad, {"id", NULL}, 0},
    {"doctor", ctl_h_doctor, {NULL}, CTL_F_STREAM},
    {"candidates", ctl_h_candidates, {"prefix", "of", NULL}, 0},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

void
ctl_server_set_commands(struct ctl_server *srv, const struct ctl_command *table, size_t n)
{
    srv->commands = table;
    srv->ncommands = n;
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
    if ((rc = ctl_request_decode(msg, len, &req)) != 0) {
        snprintf(text, sizeof(text), "not a valid request: %s", pull_strerror(rc));
        client_error(c, req.has_seq ? req.seq : 0, text);
        return false;
    }
    if ((call = call_new(c, req.seq)) == NULL) {
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
    ctl_done(call, cmd->handler(call, &req));
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

/* Ends c's streams: their last replies when the server stops, nothing when the client is
 * going away. */
static void
streams_stop(struct ctl_client *c, bool server_stopping)
{
    struct ctl_call *s;

    while ((s = c->streams) != NULL) {
        const struct ctl_stream_ops *ops = s->stream;
        stream_unlink(s);
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
