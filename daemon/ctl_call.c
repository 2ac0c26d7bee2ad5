/*
 * ctl_call: the calls and their one reply (ctl_int.h, "One reply channel", is the manual).
 * Every request the transport (ctl_server.c) reads becomes a call here; the rooms build and
 * send its replies through ctl_begin / ctl_send, keep it (ctl_keep, ctl_stream) and let go
 * of it with ctl_done, which enforces the rule: exactly one final reply, a second refused,
 * an error after it dropped, none at all answered with an internal error, each logged and
 * counted (reply_bugs).
 *
 * A call holds its client (refs), so a kept call is always safe to finish; the transport
 * frees the client only when no call refers to it. Replies go out through ctl_client_send,
 * which may drop a client that does not read them: the call holds itself meanwhile. A call
 * counts as a request in flight of its client until it replies, becomes a stream or ends
 * (call_settle), which lets the client's reading go on.
 */
#include <assert.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon/ctl_int.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/mp.h"
#include "proto/ctl.h"

struct ctl_call *
ctl_call_new(struct ctl_client *c, uint64_t seq)
{
    struct ctl_call *call = calloc(1, sizeof(*call));

    if (call == NULL)
        return NULL;
    call->srv = c->srv;
    call->seq = seq;
    call->c = c;
    call->cmd = "?";
    call->refs = 1;
    call->inflight = true;
    c->inflight++;
    c->refs++;
    return call;
}

/* The call no longer counts as a request in flight of its client: it replied, became a
 * stream or ended. Reading may go on. */
static void
call_settle(struct ctl_call *call)
{
    struct ctl_client *c = call->c;

    if (!call->inflight)
        return;
    call->inflight = false;
    c->inflight--;
    c->since_ms = node_now_ms(c->srv->n);
    ctl_client_schedule(c);
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

void
ctl_stream_unlink(struct ctl_call *call)
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
        ctl_stream_unlink(call);
        call_settle(call);
    }
    /* client_send may drop the client, whose streams then end: hold the call meanwhile */
    call->refs++;
    ctl_client_send(c, w, limit, more && call->queue_max > 0);
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
    call_settle(call); /* a stream is not a request in flight: its client may go on */
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

size_t
ctl_queued(const struct ctl_call *call)
{
    return call->c->queued;
}

bool
ctl_stream_room(const struct ctl_call *call, size_t len)
{
    const struct ctl_client *c = call->c;
    const struct ctl_server *srv = call->srv;
    size_t max = call->queue_max > 0 ? call->queue_max : CTL_QUEUE_MAX;

    if (c->closing || c->queued > max || len > max - c->queued)
        return false;
    return call->queue_max == 0 || srv->watch_mem + len <= srv->n->cfg.limits.ctl_watch_total_bytes;
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
    ctl_stream_unlink(call);
    ctl_cancel(call);
    call_settle(call);
    free(call);
    ctl_client_unref(c);
}
