/*
 * net: TCP peers (net.h is the manual).
 *
 * A connection goes through phases: DIAL (resolving and connecting), SHS (the four
 * handshake messages, raw bytes), HELLO (frames are running; waiting for the peer's
 * HELLO), UP (sync sees it), CLOSING (final BYE queued, reading stopped, closed when the
 * BYE is written or after a short grace). uv_close is the only way out; the close callback
 * unlinks the connection, emits its event and frees it. Since that callback runs from the
 * loop, never inside a read or write callback of the same connection, code that may close
 * a connection only has to re-check c->phase afterwards.
 *
 * Input. libuv reads into one shared buffer; conn_input consumes it at once, except when a
 * connection hits its per-callback frame budget or its token bucket runs dry: the rest is
 * copied aside (at most one read buffer), reading stops, and the pump timer resumes the
 * connection once its tokens are back. So a busy peer cannot starve the others, and a peer
 * cannot make us buffer more than one read buffer plus one frame.
 */
#include "daemon/net.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "lib/err.h"
#include "lib/log.h"
#include "proto/frame.h"
#include "proto/msg.h"
#include "proto/shs.h"

#ifndef PULL_VERSION
#define PULL_VERSION "0.0.0"
#endif

#define NET_READ_BUF 65536
#define NET_FRAMES_PER_READ 64
#define NET_MAINT_MS 250
#define NET_PUMP_MS 10
#define NET_CLOSE_GRACE_MS 2000
#define NET_REASON_MAX 160

enum conn_phase { PH_DIAL, PH_SHS, PH_HELLO, PH_UP, PH_CLOSING };

struct conn {
    uv_tcp_t tcp; /* first: the handle's data points back here too */
    uv_connect_t creq;
    uv_getaddrinfo_t gai;
    struct net *net;
    struct conn *prev, *next;
    enum conn_phase phase;
    bool inbound;
    bool key_known;
    bool tcp_init;      /* tcp handle initialized (needs uv_close) */
    bool handle_closed; /* uv_close called */
    bool gai_pending;
    bool quiet;    /* closed by net_close: no event */
    bool was_up;   /* reached PH_UP */
    bool reading;  /* uv_read_start active */
    bool paused;   /* input pending or tokens exhausted: the pump resumes it */
    bool frames;   /* enc/dec initialized */
    bool shs_live; /* shs initialized */
    bool final_sent;
    uint8_t key[32];
    char addr[NODE_ADDR_MAX]; /* dialed "HOST:PORT", or observed "IP:PORT" */
    char ip[64];              /* observed peer IP (inbound) */
    struct shs shs;
    struct frame_enc enc;
    struct frame_dec dec;
    uint64_t features;
    uint64_t opened_ms, last_rx_ms, last_ping_ms, close_deadline;
    uint64_t since_s;
    uint64_t bytes_in, bytes_out;
    size_t queued;
    int64_t tokens;
    uint64_t tokens_ms;
    uint8_t *pend; /* input not yet processed */
    size_t pend_len, pend_off;
    int fail_err;
    char fail_reason[NET_REASON_MAX];
};

/* What a write reports when it completes (the flushed event). */
enum { REPORT_NONE = 0, REPORT_UNCOUNTED = 1, REPORT_COUNTED = 2 };

struct wreq {
    uv_write_t req;
    struct conn *c;
    size_t len;     /* bytes on the wire */
    size_t msg_len; /* message bytes to report as flushed */
    int report;     /* REPORT_*: a net_send message reports its write */
    bool final;
    uint8_t data[];
};

struct net {
    struct node *node;
    struct net_events ev;
    uv_tcp_t listener;
    bool listening, listener_closed;
    uv_timer_t maint, pump;
    bool timers_closed;
    bool stopped;
    uint16_t port;
    char listen_host[CONFIG_ADDR_MAX];
    struct conn *head;
    uint8_t rbuf[NET_READ_BUF];
    bool rbuf_busy;
};

static void conn_close(struct conn *c, int err, uint32_t bye, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void conn_input(struct conn *c, const uint8_t *p, size_t n);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void pump_arm(struct net *t);

static uint64_t
now_ms(const struct net *t)
{
    return node_now_ms(t->node);
}

static struct node_counters *
ctr(struct net *t)
{
    return &t->node->counters;
}

static void
conn_name(const struct conn *c, char out[IDENT_SHORT_LEN + 1])
{
    if (c->key_known)
        ident_short(c->key, out);
    else
        snprintf(out, IDENT_SHORT_LEN + 1, "?");
}

static struct conn *
conn_find(const struct net *t, const uint8_t key[32], bool up_only)
{
    for (struct conn *c = t->head; c != NULL; c = c->next) {
        if (!c->key_known || c->phase == PH_CLOSING || c->handle_closed)
            continue;
        if (up_only && c->phase != PH_UP)
            continue;
        if (sodium_memcmp(c->key, key, 32) == 0)
            return c;
    }
    return NULL;
}

static size_t
count_phase(const struct net *t, bool handshaking)
{
    size_t k = 0;

    for (struct conn *c = t->head; c != NULL; c = c->next) {
        if (c->phase == PH_CLOSING || c->handle_closed)
            continue;
        if (handshaking ? (c->phase == PH_SHS || c->phase == PH_DIAL)
                        : (c->phase == PH_HELLO || c->phase == PH_UP))
            k++;
    }
    return k;
}

/* ---------------------------------------------------------------- freeing */

static void
on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct net *t = c->net;
    char who[IDENT_SHORT_LEN + 1];

    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        t->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    conn_name(c, who);
    if (!c->quiet && !t->stopped && c->key_known) {
        bool other = conn_find(t, c->key, false) != NULL;
        if (c->was_up && !other && t->ev.down != NULL) {
            t->ev.down(t->ev.ctx, c->key);
        } else if (!c->was_up && !c->inbound && !other && t->ev.dial_failed != NULL) {
            t->ev.dial_failed(t->ev.ctx, c->key, c->fail_err ? c->fail_err : PULL_ERR_CLOSED,
                              c->fail_reason[0] ? c->fail_reason : "connection closed");
        }
    }
    log_debug("peer %s %s: closed", who, c->addr);
    if (c->shs_live)
        shs_release(&c->shs);
    if (c->frames) {
        frame_enc_release(&c->enc);
        frame_dec_release(&c->dec);
    }
    free(c->pend);
    sodium_memzero(c, sizeof(*c));
    free(c);
}

/* conn_destroy closes the handle now (pending writes are cancelled). */
static void
conn_destroy(struct conn *c)
{
    if (c->handle_closed)
        return;
    c->handle_closed = true;
    c->phase = PH_CLOSING;
    if (c->gai_pending) {
        /* on_resolved sees handle_closed and finishes the job */
        uv_cancel((uv_req_t *)&c->gai);
        return;
    }
    if (!c->tcp_init) {
        /* never had a handle: free through a zero-length path */
        c->tcp_init = true;
        uv_tcp_init(c->net->node->loop, &c->tcp);
        c->tcp.data = c;
    }
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* ---------------------------------------------------------------- writing */

static void
on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;
    struct net *t = c->net;

    c->queued -= w->len;
    if (status < 0 && status != UV_ECANCELED && !c->handle_closed) {
        c->fail_err = PULL_ERR_IO;
        snprintf(c->fail_reason, sizeof(c->fail_reason), "write failed: %s", uv_strerror(status));
        conn_destroy(c);
    }
    /* Report cancelled writes too: gossip counts every byte it sent to the key, and a
     * connection replaced by a duplicate never gets a down event that would reset it. */
    if (w->report != REPORT_NONE && c->key_known && !t->stopped && t->ev.flushed != NULL)
        t->ev.flushed(t->ev.ctx, c->key, w->msg_len, w->report == REPORT_COUNTED);
    if (w->final && !c->handle_closed)
        conn_destroy(c);
    free(w);
}

/* conn_write queues len bytes (owned copy). Returns 0, or an error after closing c. */
static int
conn_write(struct conn *c, const uint8_t *p, size_t len, size_t msg_len, int report, bool final)
{
    struct wreq *w;
    uv_buf_t b;
    int rc;

    if (c->handle_closed)
        return PULL_ERR_CLOSED;
    if ((w = malloc(sizeof(*w) + len)) == NULL) {
        conn_destroy(c);
        return PULL_ERR_NOMEM;
    }
    memcpy(w->data, p, len);
    w->c = c;
    w->len = len;
    w->msg_len = msg_len;
    w->report = report;
    w->final = final;
    b = uv_buf_init((char *)w->data, (unsigned)len);
    if ((rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written)) != 0) {
        free(w);
        c->fail_err = PULL_ERR_IO;
        snprintf(c->fail_reason, sizeof(c->fail_reason), "write: %s", uv_strerror(rc));
        conn_destroy(c);
        return PULL_ERR_IO;
    }
    c->queued += len;
    c->bytes_out += len;
    ctr(c->net)->bytes_out += len;
    return 0;
}

/* conn_send_frame seals msg as one frame and queues it. */
static int
conn_send_frame(struct conn *c, const uint8_t *msg, size_t len, size_t msg_len, int report,
                bool final)
{
    uint8_t *buf;
    int rc;

    if (!c->frames || c->final_sent || c->handle_closed)
        return PULL_ERR_CLOSED;
    if (len == 0 || len > FRAME_PLAIN_MAX)
        return PULL_ERR_INVAL;
    if ((buf = malloc(len + FRAME_OVERHEAD)) == NULL)
        return PULL_ERR_NOMEM;
    if ((rc = frame_seal(&c->enc, msg, len, final, buf)) == 0) {
        if (final)
            c->final_sent = true;
        rc = conn_write(c, buf, len + FRAME_OVERHEAD, msg_len, report, final);
    }
    free(buf);
    return rc;
}

static int
conn_send_wb(struct conn *c, struct pull_wb *w, bool final)
{
    int rc = wb_error(w);

    if (rc == 0)
        rc = conn_send_frame(c, w->p, w->len, 0, REPORT_NONE, final);
    wb_release(w);
    return rc;
}

/* conn_close ends c: a final BYE if frames run, then close. err/fmt describe why (for a
 * dial_failed event and the log). */
static void
conn_close(struct conn *c, int err, uint32_t bye, const char *fmt, ...)
{
    char who[IDENT_SHORT_LEN + 1];
    struct pull_wb w;
    va_list ap;

    if (c->phase == PH_CLOSING || c->handle_closed)
        return;
    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(c->fail_reason, sizeof(c->fail_reason), fmt, ap);
        va_end(ap);
    }
    c->fail_err = err;
    if (c->fail_reason[0] == '\0')
        snprintf(c->fail_reason, sizeof(c->fail_reason), "%s", msg_bye_reason_str(bye));
    conn_name(c, who);
    if (c->phase == PH_UP || err == 0)
        log_debug("peer %s %s: closing: %s", who, c->addr, c->fail_reason);
    else
        log_info("peer %s %s: closing: %s", who, c->addr, c->fail_reason);
    if (c->phase != PH_UP && c->phase != PH_DIAL && !c->quiet && err != PULL_ERR_EXISTS)
        ctr(c->net)->handshakes_failed++;
    c->phase = PH_CLOSING;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    if (c->frames && !c->final_sent) {
        wb_init(&w, MSG_MAX);
        if (msg_bye_encode(bye, fmt != NULL ? c->fail_reason : "", &w) != 0) {
            wb_release(&w);
            wb_init(&w, MSG_MAX);
            (void)msg_bye_encode(bye, "", &w);
        }
        if (conn_send_wb(c, &w, true) == 0) {
            c->close_deadline = now_ms(c->net) + NET_CLOSE_GRACE_MS;
            return;
        }
    }
    conn_destroy(c);
}

/* ---------------------------------------------------------------- sessions */

static void
conn_up(struct conn *c, const struct msg_hello *h)
{
    struct net *t = c->net;
    char who[IDENT_SHORT_LEN + 1];

    c->phase = PH_UP;
    c->was_up = true;
    c->features = h->features;
    c->since_s = node_now_s(t->node);
    if (c->inbound) {
        /* the observed IP, with the port it listens on (0: it accepts no connections): the
         * engine dials inbound peers only here, and groups them by this IP */
        if (strchr(c->ip, ':') != NULL)
            snprintf(c->addr, sizeof(c->addr), "[%s]:%u", c->ip, (unsigned)h->listen_port);
        else
            snprintf(c->addr, sizeof(c->addr), "%s:%u", c->ip, (unsigned)h->listen_port);
    }
    ctr(t)->handshakes_ok++;
    conn_name(c, who);
    log_info("peer %s %s: connected (%s, %.64s)", who, c->addr, c->inbound ? "in" : "out",
             h->agent);
    if (t->ev.up != NULL)
        t->ev.up(t->ev.ctx, c->key, c->inbound, c->addr, c->features);
}

/* resolve_dup applies the one-connection-per-key rule when c's key became known.
 * Returns false if c was closed. */
static bool
resolve_dup(struct conn *c)
{
    struct net *t = c->net;
    const uint8_t *self = t->node->self.pk;

    for (struct conn *o = t->head; o != NULL; o = o->next) {
        const uint8_t *dc, *dd;
        if (o == c || !o->key_known || o->phase == PH_CLOSING || o->handle_closed ||
            sodium_memcmp(o->key, c->key, 32) != 0)
            continue;
        dc = c->inbound ? c->key : self;
        dd = o->inbound ? o->key : self;
        if (memcmp(dc, dd, 32) == 0 || memcmp(dc, dd, 32) > 0) {
            conn_close(c, PULL_ERR_EXISTS, MSG_BYE_DUPLICATE, "duplicate connection");
            return false;
        }
        conn_close(o, PULL_ERR_EXISTS, MSG_BYE_DUPLICATE, "duplicate connection");
    }
    return true;
}

/* session_start: the handshake is done; start the frames and send our HELLO. */
static int
session_start(struct conn *c)
{
    struct net *t = c->net;
    struct shs_session sess;
    uint8_t tx[FRAME_KEY_BYTES], rx[FRAME_KEY_BYTES], hdr[FRAME_HEADER_BYTES];
    struct msg_hello h;
    struct pull_wb w;
    int rc;

    rc = shs_session(&c->shs, &sess);
    c->shs_live = false;
    if (rc != 0)
        goto out;
    if (!c->key_known) {
        memcpy(c->key, sess.peer_pk, 32);
        c->key_known = true;
    }
    if ((rc = frame_keys(&sess, tx, rx)) != 0)
        goto out;
    if ((rc = frame_enc_init(&c->enc, t->node->env, tx, hdr)) != 0)
        goto out;
    if ((rc = frame_dec_init(&c->dec, t->node->env, rx)) != 0) {
        frame_enc_release(&c->enc);
        goto out;
    }
    c->frames = true;
    c->phase = PH_HELLO;
    if ((rc = conn_write(c, hdr, sizeof(hdr), 0, REPORT_NONE, false)) != 0)
        goto out;
    if (sodium_memcmp(c->key, t->node->self.pk, 32) == 0) {
        conn_close(c, PULL_ERR_BAD_KEY, MSG_BYE_SELF, "connected to myself");
        rc = PULL_ERR_BAD_KEY;
        goto out;
    }
    if (c->inbound && count_phase(t, false) > t->node->cfg.limits.max_conns) {
        ctr(t)->conns_refused++;
        conn_close(c, PULL_ERR_QUOTA, MSG_BYE_BUSY, "too many connections");
        rc = PULL_ERR_QUOTA;
        goto out;
    }
    if (!resolve_dup(c)) {
        rc = PULL_ERR_EXISTS;
        goto out;
    }
    msg_hello_init(&h, MSG_FEAT_RECON | MSG_FEAT_MAIL, t->port, "pulld/" PULL_VERSION);
    wb_init(&w, MSG_MAX);
    if ((rc = msg_hello_encode(&h, &w)) == 0)
        rc = conn_send_wb(c, &w, false);
    else
        wb_release(&w);
out:
    shs_session_wipe(&sess);
    sodium_memzero(tx, sizeof(tx));
    sodium_memzero(rx, sizeof(rx));
    return rc;
}

/* shs_input runs the handshake on p[0..n); returns how many bytes it used, or -1 if c was
 * closed. */
static ssize_t
shs_input(struct conn *c, const uint8_t *p, size_t n)
{
    uint8_t out[SHS_OUT_MAX];
    size_t k, used, total = 0;
    int rc;

    for (;;) {
        while ((k = shs_next_out(&c->shs, out)) > 0) {
            if (conn_write(c, out, k, 0, REPORT_NONE, false) != 0)
                return -1;
        }
        if (shs_done(&c->shs)) {
            if (session_start(c) != 0) {
                if (c->phase != PH_CLOSING)
                    conn_close(c, PULL_ERR_HANDSHAKE, MSG_BYE_PROTOCOL, "session setup failed");
                return -1;
            }
            return (ssize_t)total;
        }
        if (n == total)
            return (ssize_t)total;
        rc = shs_feed(&c->shs, p + total, n - total, &used);
        if (rc < 0) {
            conn_close(c, PULL_ERR_HANDSHAKE, 0, "handshake failed: %s",
                       shs_fail_str(shs_fail_reason(&c->shs)));
            return -1;
        }
        total += used;
        if (used == 0 && rc == SHS_AGAIN && shs_next_out(&c->shs, out) == 0 && !shs_done(&c->shs))
            return (ssize_t)total; /* nothing consumed, nothing to send: wait */
    }
}

/* handle_frame handles one decrypted message. */
static void
handle_frame(struct conn *c, const struct frame_msg *m)
{
    struct net *t = c->net;
    struct msg_session s;
    uint32_t type;
    int rc;

    c->last_rx_ms = now_ms(t);
    if ((rc = msg_peek_type(m->p, m->len, &type)) != 0) {
        ctr(t)->frames_bad++;
        ctr(t)->peers_dropped++;
        conn_close(c, PULL_ERR_PROTOCOL, MSG_BYE_PROTOCOL, "malformed message");
        return;
    }
    if (c->phase == PH_HELLO) {
        struct msg_hello ours;
        uint32_t version;
        if (type != MSG_HELLO || m->final || msg_hello_decode(m->p, m->len, &s.u.hello) != 0) {
            if (type == MSG_BYE && msg_bye_decode(m->p, m->len, &s.u.bye) == 0) {
                conn_close(c, PULL_ERR_CLOSED, MSG_BYE_NORMAL, "refused by peer: %s%s%s",
                           msg_bye_reason_str(s.u.bye.reason), s.u.bye.text[0] ? ": " : "",
                           s.u.bye.text);
                return;
            }
            ctr(t)->frames_bad++;
            conn_close(c, PULL_ERR_PROTOCOL, MSG_BYE_PROTOCOL, "expected HELLO");
            return;
        }
        msg_hello_init(&ours, 0, t->port, "");
        if (msg_negotiate(&ours, &s.u.hello, &version) != 0) {
            conn_close(c, PULL_ERR_VERSION, MSG_BYE_VERSION,
                       "no common protocol version: this node speaks %u..%u",
                       (unsigned)MSG_PROTO_MIN, (unsigned)MSG_PROTO_MAX);
            return;
        }
        conn_up(c, &s.u.hello);
        return;
    }
    if (c->phase != PH_UP)
        return;
    if (type == MSG_HELLO || type == MSG_PING || type == MSG_PONG || type == MSG_BYE) {
        rc = msg_session_decode(m->p, m->len, &s);
        if (rc != 0 || type == MSG_HELLO) {
            ctr(t)->frames_bad++;
            ctr(t)->peers_dropped++;
            conn_close(c, PULL_ERR_PROTOCOL, MSG_BYE_PROTOCOL, "bad session message");
            return;
        }
        if (type == MSG_PING) {
            struct pull_wb w;
            wb_init(&w, MSG_MAX);
            if (msg_ping_encode(MSG_PONG, s.u.nonce, &w) == 0)
                (void)conn_send_wb(c, &w, false);
            else
                wb_release(&w);
        } else if (type == MSG_BYE) {
            conn_close(c, 0, MSG_BYE_NORMAL, "peer said bye: %s%s%s",
                       msg_bye_reason_str(s.u.bye.reason), s.u.bye.text[0] ? ": " : "",
                       s.u.bye.text);
        }
        return;
    }
    if (m->final) {
        conn_close(c, 0, MSG_BYE_NORMAL, "peer ended the stream");
        return;
    }
    if (t->ev.msg != NULL)
        t->ev.msg(t->ev.ctx, c->key, m->p, m->len);
}

static void
save_pending(struct conn *c, const uint8_t *p, size_t n)
{
    uint8_t *q;

    if (n == 0)
        return;
    if ((q = malloc(n)) == NULL) {
        conn_close(c, PULL_ERR_NOMEM, MSG_BYE_NORMAL, "out of memory");
        return;
    }
    memcpy(q, p, n);
    free(c->pend);
    c->pend = q;
    c->pend_len = n;
    c->pend_off = 0;
}

/* conn_input processes received bytes within the per-call frame budget. Returns nothing;
 * unprocessed bytes are saved and reading paused. */
static void
conn_input(struct conn *c, const uint8_t *p, size_t n)
{
    struct frame_msg m;
    unsigned frames = 0;
    size_t used;
    ssize_t k;
    int rc;

    if (c->phase == PH_SHS) {
        if ((k = shs_input(c, p, n)) < 0)
            return;
        p += k;
        n -= (size_t)k;
        if (c->phase == PH_SHS || n == 0)
            return;
    }
    while (n > 0 && (c->phase == PH_HELLO || c->phase == PH_UP)) {
        if (frames >= NET_FRAMES_PER_READ) {
            save_pending(c, p, n);
            c->paused = true;
            pump_arm(c->net);
            return;
        }
        rc = frame_dec_feed(&c->dec, p, n, &used, &m);
        if (rc < 0) {
            ctr(c->net)->frames_bad++;
            if (c->phase == PH_UP)
                ctr(c->net)->peers_dropped++;
            conn_close(c, rc, MSG_BYE_PROTOCOL, "bad frame: %s", pull_strerror(rc));
            return;
        }
        p += used;
        n -= used;
        if (rc == FRAME_MSG) {
            frames++;
            handle_frame(c, &m);
        }
    }
}

/* ---------------------------------------------------------------- reading */

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    struct net *t = c->net;

    (void)suggested;
    if (t->rbuf_busy) {
        *buf = uv_buf_init(NULL, 0);
        return;
    }
    t->rbuf_busy = true;
    *buf = uv_buf_init((char *)t->rbuf, sizeof(t->rbuf));
}

static void
refill(struct conn *c, uint64_t now)
{
    const struct config_limits *l = &c->net->node->cfg.limits;
    uint64_t dt = now - c->tokens_ms;
    int64_t add;

    if (dt == 0)
        return;
    add = (int64_t)((uint64_t)l->peer_rate_bytes * dt / 1000);
    if (add <= 0)
        return;
    c->tokens += add;
    if (c->tokens > (int64_t)l->peer_burst_bytes)
        c->tokens = (int64_t)l->peer_burst_bytes;
    c->tokens_ms = now;
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    struct net *t = c->net;

    if (buf->base == (char *)t->rbuf)
        t->rbuf_busy = false;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (c->phase == PH_CLOSING)
            return;
        if (nread == UV_EOF) {
            int e = c->frames ? frame_dec_eof(&c->dec) : PULL_ERR_CLOSED;
            c->fail_err = PULL_ERR_CLOSED;
            snprintf(c->fail_reason, sizeof(c->fail_reason), "peer closed the connection%s",
                     e == 0 ? "" : " without a goodbye");
        } else {
            c->fail_err = PULL_ERR_IO;
            snprintf(c->fail_reason, sizeof(c->fail_reason), "read: %s", uv_strerror((int)nread));
        }
        if (c->phase != PH_UP && c->phase != PH_DIAL)
            ctr(t)->handshakes_failed++;
        conn_destroy(c);
        return;
    }
    c->bytes_in += (size_t)nread;
    ctr(t)->bytes_in += (size_t)nread;
    if (c->phase == PH_CLOSING)
        return;
    refill(c, now_ms(t));
    c->tokens -= nread;
    conn_input(c, (const uint8_t *)buf->base, (size_t)nread);
    if (c->phase != PH_CLOSING && !c->handle_closed && (c->tokens < 0 || c->paused)) {
        c->paused = true;
        if (c->reading) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
        }
        pump_arm(t);
    }
}

static void
on_pump(uv_timer_t *tm)
{
    struct net *t = tm->data;
    uint64_t now = now_ms(t);
    bool again = false;

    for (struct conn *c = t->head; c != NULL; c = c->next) {
        if (!c->paused || c->phase == PH_CLOSING || c->handle_closed)
            continue;
        if (c->pend != NULL) {
            /* conn_input may replace c->pend; work on the current rest */
            uint8_t *p = c->pend;
            size_t n = c->pend_len;
            c->pend = NULL;
            c->pend_len = c->pend_off = 0;
            c->paused = false;
            conn_input(c, p, n);
            free(p);
            if (c->phase == PH_CLOSING || c->handle_closed)
                continue;
            if (c->pend != NULL) {
                c->paused = true;
                again = true;
                continue;
            }
        }
        refill(c, now);
        if (c->tokens < 0) {
            c->paused = true;
            again = true;
            continue;
        }
        c->paused = false;
        if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    }
    if (!again)
        uv_timer_stop(&t->pump);
}

static void
pump_arm(struct net *t)
{
    if (!t->stopped && !uv_is_active((uv_handle_t *)&t->pump))
        uv_timer_start(&t->pump, on_pump, NET_PUMP_MS, NET_PUMP_MS);
}

static int
conn_start_reading(struct conn *c)
{
    int rc;

    c->tokens = (int64_t)c->net->node->cfg.limits.peer_burst_bytes;
    c->tokens_ms = now_ms(c->net);
    if ((rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) != 0)
        return PULL_ERR_IO;
    c->reading = true;
    return 0;
}

/* ---------------------------------------------------------------- accepting and dialing */

static struct conn *
conn_new(struct net *t, bool inbound)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->net = t;
    c->inbound = inbound;
    c->opened_ms = c->last_rx_ms = c->last_ping_ms = now_ms(t);
    c->next = t->head;
    if (t->head != NULL)
        t->head->prev = c;
    t->head = c;
    return c;
}

static void
on_connection(uv_stream_t *server, int status)
{
    struct net *t = server->data;
    struct conn *c;
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    if ((c = conn_new(t, true)) == NULL)
        return;
    c->phase = PH_SHS;
    c->quiet = true; /* no event before the key is known */
    uv_tcp_init(t->node->loop, &c->tcp);
    c->tcp_init = true;
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_destroy(c);
        return;
    }
    ctr(t)->conns_in++;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof(c->ip));
        else
            uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof(c->ip));
    }
    snprintf(c->addr, sizeof(c->addr), "%s", c->ip);
    if (t->stopped || count_phase(t, true) > t->node->cfg.limits.max_handshakes ||
        count_phase(t, false) >=
            t->node->cfg.limits.max_conns + t->node->cfg.limits.max_handshakes) {
        ctr(t)->conns_refused++;
        log_debug("refusing connection from %s: too many connections", c->ip);
        conn_destroy(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (shs_server_init(&c->shs, t->node->env, t->node->cfg.network_key, &t->node->self) != 0 ||
        conn_start_reading(c) != 0) {
        conn_destroy(c);
        return;
    }
    c->shs_live = true;
    c->quiet = false;
}

static void
on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    uint8_t out[SHS_OUT_MAX];
    size_t k;

    if (c->handle_closed)
        return;
    if (status < 0) {
        c->fail_err = PULL_ERR_IO;
        snprintf(c->fail_reason, sizeof(c->fail_reason), "connect to %.100s: %s", c->addr,
                 uv_strerror(status));
        conn_destroy(c);
        return;
    }
    if (c->phase == PH_CLOSING) {
        conn_destroy(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->phase = PH_SHS;
    if (conn_start_reading(c) != 0) {
        conn_destroy(c);
        return;
    }
    while ((k = shs_next_out(&c->shs, out)) > 0) {
        if (conn_write(c, out, k, 0, REPORT_NONE, false) != 0)
            return;
    }
}

static void
dial_addr(struct conn *c, const struct sockaddr *sa)
{
    int rc;

    uv_tcp_init(c->net->node->loop, &c->tcp);
    c->tcp_init = true;
    c->tcp.data = c;
    c->creq.data = c;
    if ((rc = uv_tcp_connect(&c->creq, &c->tcp, sa, on_connect)) != 0) {
        c->fail_err = PULL_ERR_IO;
        snprintf(c->fail_reason, sizeof(c->fail_reason), "connect to %.100s: %s", c->addr,
                 uv_strerror(rc));
        conn_destroy(c);
    }
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct conn *c = req->data;

    c->gai_pending = false;
    if (c->handle_closed) {
        uv_freeaddrinfo(res);
        c->handle_closed = false;
        conn_destroy(c);
        return;
    }
    if (status < 0 || res == NULL) {
        c->fail_err = PULL_ERR_INVAL;
        snprintf(c->fail_reason, sizeof(c->fail_reason), "cannot resolve %.100s: %s", c->addr,
                 uv_strerror(status));
        uv_freeaddrinfo(res);
        conn_destroy(c);
        return;
    }
    dial_addr(c, res->ai_addr);
    uv_freeaddrinfo(res);
}

int
net_dial(struct net *t, const uint8_t key[static 32], const char *addr)
{
    char host[CONFIG_ADDR_MAX], portstr[8];
    struct sockaddr_storage ss;
    struct addrinfo hints;
    struct conn *c;
    uint16_t port;
    int rc;

    if (t->stopped)
        return PULL_ERR_STATE;
    if (sodium_memcmp(key, t->node->self.pk, 32) == 0)
        return PULL_ERR_BAD_KEY;
    if (addr == NULL || strlen(addr) >= NODE_ADDR_MAX ||
        config_split_hostport(addr, host, sizeof(host), &port) != 0 || port == 0 || host[0] == '\0')
        return PULL_ERR_INVAL;
    for (c = t->head; c != NULL; c = c->next) {
        if (!c->key_known || c->phase == PH_CLOSING || c->handle_closed ||
            sodium_memcmp(c->key, key, 32) != 0)
            continue;
        if (c->phase == PH_UP || !c->inbound)
            return PULL_ERR_EXISTS;
    }
    if (count_phase(t, false) >= t->node->cfg.limits.max_conns)
        return PULL_ERR_QUOTA;
    if ((c = conn_new(t, false)) == NULL)
        return PULL_ERR_NOMEM;
    memcpy(c->key, key, 32);
    c->key_known = true;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    c->phase = PH_DIAL;
    if ((rc = shs_client_init(&c->shs, t->node->env, t->node->cfg.network_key, &t->node->self,
                              key)) != 0) {
        c->quiet = true;
        conn_destroy(c);
        return rc == PULL_ERR_BAD_KEY ? PULL_ERR_BAD_KEY : rc;
    }
    c->shs_live = true;
    ctr(t)->conns_out++;
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
        dial_addr(c, (struct sockaddr *)&ss);
        return 0;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
    c->gai.data = c;
    if ((rc = uv_getaddrinfo(t->node->loop, &c->gai, on_resolved, host, portstr, &hints)) != 0) {
        c->quiet = true;
        conn_destroy(c);
        return PULL_ERR_INVAL;
    }
    c->gai_pending = true;
    return 0;
}

/* ---------------------------------------------------------------- timers */

static void
on_maint(uv_timer_t *tm)
{
    struct net *t = tm->data;
    const struct config_limits *l = &t->node->cfg.limits;
    uint64_t now = now_ms(t);
    uint64_t ping_every = l->idle_timeout_ms / 3;

    for (struct conn *c = t->head, *next; c != NULL; c = next) {
        next = c->next;
        if (c->handle_closed)
            continue;
        switch (c->phase) {
        case PH_DIAL:
        case PH_SHS:
        case PH_HELLO:
            if (now - c->opened_ms >= l->handshake_timeout_ms)
                conn_close(c, PULL_ERR_TIMEOUT, MSG_BYE_TIMEOUT, "handshake timed out");
            break;
        case PH_UP:
            if (now - c->last_rx_ms >= l->idle_timeout_ms) {
                conn_close(c, PULL_ERR_TIMEOUT, MSG_BYE_TIMEOUT, "silent for %u ms",
                           (unsigned)(now - c->last_rx_ms));
            } else if (now - c->last_rx_ms >= ping_every && now - c->last_ping_ms >= ping_every) {
                struct pull_wb w;
                c->last_ping_ms = now;
                wb_init(&w, MSG_MAX);
                if (msg_ping_encode(MSG_PING, env_u64(t->node->env), &w) == 0)
                    (void)conn_send_wb(c, &w, false);
                else
                    wb_release(&w);
            }
            break;
        case PH_CLOSING:
            if (now >= c->close_deadline)
                conn_destroy(c);
            break;
        }
    }
}

/* ---------------------------------------------------------------- public */

int
net_new(struct node *n, const struct net_events *ev, struct net **out)
{
    struct net *t = NULL;
    struct sockaddr_storage ss;
    int len = sizeof(ss), rc;
    uint16_t port;

    if ((t = calloc(1, sizeof(*t))) == NULL)
        return PULL_ERR_NOMEM;
    t->node = n;
    t->ev = *ev;
    if (config_split_hostport(n->cfg.listen, t->listen_host, sizeof(t->listen_host), &port) != 0) {
        log_error("bad listen address %s", n->cfg.listen);
        free(t);
        return PULL_ERR_INVAL;
    }
    if (uv_ip4_addr(t->listen_host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(t->listen_host, port, (struct sockaddr_in6 *)&ss) != 0) {
        log_error("listen address %s: HOST must be a numeric IP address", n->cfg.listen);
        free(t);
        return PULL_ERR_INVAL;
    }
    uv_tcp_init(n->loop, &t->listener);
    t->listener.data = t;
    uv_timer_init(n->loop, &t->maint);
    t->maint.data = t;
    uv_timer_init(n->loop, &t->pump);
    t->pump.data = t;
    *out = t; /* from here on, net_stop/net_free clean up */
    if ((rc = uv_tcp_bind(&t->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&t->listener, 128, on_connection)) != 0) {
        log_error("cannot listen on %s: %s", n->cfg.listen, uv_strerror(rc));
        net_stop(t);
        return PULL_ERR_INVAL;
    }
    t->listening = true;
    if (uv_tcp_getsockname(&t->listener, (struct sockaddr *)&ss, &len) == 0)
        t->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    uv_timer_start(&t->maint, on_maint, NET_MAINT_MS, NET_MAINT_MS);
    log_info("listening on %s port %u", t->listen_host, (unsigned)t->port);
    return 0;
}

/* on_maint_stopping closes the maintenance timer once a stopped net has no connection
 * left. */
static void
on_maint_stopping(uv_timer_t *tm)
{
    struct net *t = tm->data;

    on_maint(tm);
    if (t->head == NULL && !uv_is_closing((uv_handle_t *)&t->maint))
        uv_close((uv_handle_t *)&t->maint, NULL);
}

void
net_stop(struct net *t)
{
    if (t == NULL || t->stopped)
        return;
    t->stopped = true;
    for (struct conn *c = t->head, *next; c != NULL; c = next) {
        next = c->next;
        c->quiet = true;
        if (c->phase == PH_UP || c->phase == PH_HELLO)
            conn_close(c, 0, MSG_BYE_NORMAL, "shutting down");
        else
            conn_destroy(c);
        /* do not wait for slow peers at shutdown beyond a short grace */
        c->close_deadline = now_ms(t) + 500;
    }
    if (!uv_is_closing((uv_handle_t *)&t->listener))
        uv_close((uv_handle_t *)&t->listener, NULL);
    uv_timer_stop(&t->pump);
    if (!uv_is_closing((uv_handle_t *)&t->pump))
        uv_close((uv_handle_t *)&t->pump, NULL);
    /* the maintenance timer runs until the last connection is gone */
    if (!uv_is_closing((uv_handle_t *)&t->maint))
        uv_timer_start(&t->maint, on_maint_stopping, 50, 50);
}

void
net_free(struct net *t)
{
    if (t == NULL)
        return;
    /* every connection is freed by its close callback before the loop ends */
    free(t);
}

uint16_t
net_port(const struct net *t)
{
    return t != NULL ? t->port : 0;
}

int
net_send(struct net *t, const uint8_t key[static 32], const uint8_t *msg, size_t len, bool counted)
{
    struct conn *c = conn_find(t, key, true);
    int rc;

    if (c == NULL)
        return PULL_ERR_NOT_FOUND;
    if (len == 0 || len > MSG_MAX)
        return PULL_ERR_INVAL;
    if (c->queued + len + FRAME_OVERHEAD > t->node->cfg.limits.peer_queue_bytes) {
        char who[IDENT_SHORT_LEN + 1];
        conn_name(c, who);
        log_info("peer %s %s: dropped: more than %u bytes queued", who, c->addr,
                 (unsigned)t->node->cfg.limits.peer_queue_bytes);
        ctr(t)->peers_dropped++;
        c->fail_err = PULL_ERR_QUOTA;
        snprintf(c->fail_reason, sizeof(c->fail_reason), "send queue full");
        conn_destroy(c);
        return PULL_ERR_QUOTA;
    }
    rc = conn_send_frame(c, msg, len, len, counted ? REPORT_COUNTED : REPORT_UNCOUNTED, false);
    return rc == PULL_ERR_NOMEM || rc == PULL_ERR_IO || rc == PULL_ERR_CLOSED ? PULL_ERR_QUOTA : rc;
}

void
net_close(struct net *t, const uint8_t key[static 32], uint32_t reason, const char *text)
{
    struct conn *c;

    while ((c = conn_find(t, key, false)) != NULL) {
        c->quiet = true;
        conn_close(c, 0, reason, "%s", text != NULL ? text : "");
    }
}

size_t
net_queued(const struct net *t, const uint8_t key[static 32])
{
    const struct conn *c = conn_find(t, key, true);

    return c != NULL ? c->queued : 0;
}

bool
net_is_up(const struct net *t, const uint8_t key[static 32])
{
    return conn_find(t, key, true) != NULL;
}

size_t
net_up_count(const struct net *t)
{
    size_t k = 0;

    for (const struct conn *c = t->head; c != NULL; c = c->next) {
        if (c->phase == PH_UP && !c->handle_closed)
            k++;
    }
    return k;
}

int
net_up_at(const struct net *t, size_t i, uint8_t key[32])
{
    for (const struct conn *c = t->head; c != NULL; c = c->next) {
        if (c->phase != PH_UP || c->handle_closed)
            continue;
        if (i-- == 0) {
            memcpy(key, c->key, 32);
            return 0;
        }
    }
    return PULL_ERR_NOT_FOUND;
}

int
net_conn_info(const struct net *t, const uint8_t key[static 32], struct node_peer_info *out)
{
    const struct conn *c = conn_find(t, key, true);

    if (c == NULL)
        return PULL_ERR_NOT_FOUND;
    out->connected = true;
    out->inbound = c->inbound;
    out->bytes_in = c->bytes_in;
    out->bytes_out = c->bytes_out;
    out->since_s = c->since_s;
    if (out->addr[0] == '\0')
        snprintf(out->addr, sizeof(out->addr), "%s", c->addr);
    return 0;
}

static bool
host_is_any(const char *h)
{
    return strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "") == 0;
}

void
net_advertised(const struct net *t, char *out, size_t len)
{
    char buf[8][NODE_ADDR_MAX];
    size_t k;

    if (!host_is_any(t->listen_host)) {
        if (strchr(t->listen_host, ':') != NULL)
            snprintf(out, len, "[%.200s]:%u", t->listen_host, (unsigned)t->port);
        else
            snprintf(out, len, "%.200s:%u", t->listen_host, (unsigned)t->port);
        return;
    }
    k = node_addresses(t->node, buf, 8);
    if (k > 0) {
        const char *at = strchr(buf[0], '@');
        snprintf(out, len, "%s", at != NULL ? at + 1 : buf[0]);
    } else {
        snprintf(out, len, "127.0.0.1:%u", (unsigned)t->port);
    }
}

size_t
net_addresses(const struct net *t, char (*out)[NODE_ADDR_MAX], size_t max)
{
    const struct node *n = t != NULL ? t->node : NULL;
    uv_interface_address_t *ifs = NULL;
    int nifs = 0;
    size_t k = 0;
    bool v6;

    if (t == NULL || max == 0)
        return 0;
    if (!host_is_any(t->listen_host)) {
        if (strchr(t->listen_host, ':') != NULL)
            snprintf(out[0], NODE_ADDR_MAX, "%s@[%.200s]:%u", n->self_text, t->listen_host,
                     (unsigned)t->port);
        else
            snprintf(out[0], NODE_ADDR_MAX, "%s@%.200s:%u", n->self_text, t->listen_host,
                     (unsigned)t->port);
        return 1;
    }
    v6 = strcmp(t->listen_host, "::") == 0;
    if (uv_interface_addresses(&ifs, &nifs) != 0)
        nifs = 0;
    /* pass 0: external IPv4, pass 1: external IPv6 (:: only), pass 2: loopback */
    for (int pass = 0; pass < 3 && k < max; pass++) {
        for (int i = 0; i < nifs && k < max; i++) {
            char ip[64];
            bool is6 = ifs[i].address.address4.sin_family == AF_INET6;
            if ((pass == 2) != (ifs[i].is_internal != 0))
                continue;
            if (pass == 0 && is6)
                continue;
            if (pass == 1 && (!is6 || !v6))
                continue;
            if (pass == 2 && is6 && !v6)
                continue;
            if (is6) {
                if (IN6_IS_ADDR_LINKLOCAL(&ifs[i].address.address6.sin6_addr))
                    continue;
                uv_ip6_name(&ifs[i].address.address6, ip, sizeof(ip));
                snprintf(out[k], NODE_ADDR_MAX, "%s@[%s]:%u", n->self_text, ip, (unsigned)t->port);
            } else {
                uv_ip4_name(&ifs[i].address.address4, ip, sizeof(ip));
                snprintf(out[k], NODE_ADDR_MAX, "%s@%s:%u", n->self_text, ip, (unsigned)t->port);
            }
            bool dup = false;
            for (size_t j = 0; j < k; j++)
                dup = dup || strcmp(out[j], out[k]) == 0;
            if (!dup)
                k++;
        }
    }
    if (ifs != NULL)
        uv_free_interface_addresses(ifs, nifs);
    if (k == 0 && max > 0) {
        snprintf(out[0], NODE_ADDR_MAX, "%s@127.0.0.1:%u", n->self_text, (unsigned)t->port);
        k = 1;
    }
    return k;
}
