/*
 * net_conn: one TCP connection of net, from its handshake to its BYE (net_int.h tells the
 * phases and the rooms; net.h is the manual).
 *
 * Input. libuv reads into one shared buffer; conn_input consumes it at once, except when a
 * connection hits its per-callback frame budget, its token bucket runs dry or the node's
 * verifiers are full (node_verify_busy): the rest is copied aside (at most one read
 * buffer), reading stops, and the pump timer resumes the connection once its tokens are
 * back and the verifiers have room. So a busy peer cannot starve the others, and a peer
 * cannot make us buffer more than one read buffer plus one frame.
 */
#include "daemon/net_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sodium.h>

#include "daemon/invites.h"
#include "lib/err.h"
#include "lib/log.h"
#include "proto/msg.h"

#ifndef PULL_VERSION
#define PULL_VERSION "0.0.0"
#endif

struct wreq {
    uv_write_t req;
    struct conn *c;
    size_t len;     /* bytes on the wire */
    size_t msg_len; /* message bytes to report as flushed */
    int report;     /* REPORT_*: a net_send message reports its write */
    bool final;
    uint8_t data[];
};

static void conn_input(struct conn *c, const uint8_t *p, size_t n);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void pump_arm(struct net *t);

void
net_conn_fail(struct conn *c, int err, enum net_fail kind, const char *fmt, ...)
{
    va_list ap;

    if (c->fail_set)
        return;
    c->fail_set = true;
    c->fail_err = err;
    c->fail_kind = kind;
    va_start(ap, fmt);
    vsnprintf(c->fail_reason, sizeof(c->fail_reason), fmt, ap);
    va_end(ap);
}

void
net_conn_probe_done(struct conn *c, int err)
{
    struct node_probe_result r;
    node_probe_fn cb = c->probe_cb;

    if (cb == NULL)
        return;
    c->probe_cb = NULL;
    memset(&r, 0, sizeof(r));
    r.err = err;
    if (err == 0) {
        r.rtt_ms = (uint32_t)(net_now_ms(c->net) - c->opened_ms);
        r.has_skew = c->has_skew;
        r.skew_ms = c->skew_ms;
        snprintf(r.agent, sizeof(r.agent), "%s", c->agent);
    } else {
        r.kind = net_fail_name(c->fail_kind);
        snprintf(r.reason, sizeof(r.reason), "%s",
                 c->fail_reason[0] != '\0' ? c->fail_reason : pull_strerror(err));
    }
    cb(c->probe_arg, &r);
}

void
net_conn_name(const struct conn *c, char out[IDENT_SHORT_LEN + 1])
{
    if (c->key_known)
        ident_short(c->key, out);
    else
        snprintf(out, IDENT_SHORT_LEN + 1, "?");
}

/* ---------------------------------------------------------------- born and freed */

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
    net_conn_name(c, who);
    if (c->probe) {
        /* a probe that got its session reported it in conn_up */
        net_conn_probe_done(c, c->fail_err != 0 ? c->fail_err : PULL_ERR_CLOSED);
    } else if (!c->quiet && !t->stopped && c->key_known) {
        bool other = net_find(t, c->key, false) != NULL;
        if (c->was_up && !other && t->ev.down != NULL) {
            t->ev.down(t->ev.ctx, c->key);
        } else if (!c->was_up && !c->inbound && !other && t->ev.dial_failed != NULL) {
            t->ev.dial_failed(t->ev.ctx, c->key, c->addr,
                              c->fail_err ? c->fail_err : PULL_ERR_CLOSED, c->fail_kind,
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

/* net_conn_destroy closes the handle now (pending writes are cancelled). */
void
net_conn_destroy(struct conn *c)
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
    if (c->reset && uv_tcp_close_reset(&c->tcp, on_closed) == 0)
        return;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

struct conn *
net_conn_new(struct net *t, bool inbound)
{
    struct conn *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->net = t;
    c->inbound = inbound;
    c->opened_ms = c->last_rx_ms = c->last_ping_ms = net_now_ms(t);
    c->next = t->head;
    if (t->head != NULL)
        t->head->prev = c;
    t->head = c;
    return c;
}

/* ---------------------------------------------------------------- writing */

/* shs_refused: the server reset the connection before answering our hello. */
static void
shs_refused(struct conn *c)
{
    net_conn_fail(c, PULL_ERR_CLOSED, NET_FAIL_BUSY,
                  "the node at %.100s refused the connection (it has too many connections or "
                  "handshakes, or is stopping); it will be tried again",
                  c->addr);
}

static void
on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;
    struct net *t = c->net;

    c->queued -= w->len;
    if (status < 0 && status != UV_ECANCELED && !c->handle_closed) {
        if (!c->inbound && c->phase == PH_SHS && c->shs_rx == 0 &&
            (status == UV_ECONNRESET || status == UV_EPIPE)) {
            shs_refused(c);
            net_conn_destroy(c);
        } else if (!c->inbound && (c->phase == PH_SHS || c->phase == PH_HELLO) && c->reading &&
                   (status == UV_ECONNRESET || status == UV_EPIPE)) {
            /* the node closed a dial before our hello arrived, and may have said why first
             * (BYE busy, or the end of the handshake that names a wrong id): what it sent
             * is still to be read, and the read side ends the connection (or the hello
             * timeout does) */
            log_debug("peer %s: write failed before the session: %s", c->addr, uv_strerror(status));
        } else {
            net_conn_fail(c, PULL_ERR_IO, NET_FAIL_OTHER, "write failed: %s", uv_strerror(status));
            net_conn_destroy(c);
        }
    }
    /* Report cancelled writes too: gossip counts every byte it sent to the key, and a
     * connection replaced by a duplicate never gets a down event that would reset it. */
    if (w->report != REPORT_NONE && c->key_known && !t->stopped && t->ev.flushed != NULL)
        t->ev.flushed(t->ev.ctx, c->key, w->msg_len, w->report == REPORT_COUNTED);
    if (w->final && !c->handle_closed)
        net_conn_destroy(c);
    free(w);
}

/* net_conn_write queues len bytes (owned copy). Returns 0, or an error after closing c. */
int
net_conn_write(struct conn *c, const uint8_t *p, size_t len, size_t msg_len, int report, bool final)
{
    struct wreq *w;
    uv_buf_t b;
    int rc;

    if (c->handle_closed)
        return PULL_ERR_CLOSED;
    if ((w = malloc(sizeof(*w) + len)) == NULL) {
        net_conn_destroy(c);
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
        net_conn_fail(c, PULL_ERR_IO, NET_FAIL_OTHER, "write: %s", uv_strerror(rc));
        net_conn_destroy(c);
        return PULL_ERR_IO;
    }
    c->queued += len;
    c->bytes_out += len;
    net_ctr(c->net)->bytes_out += len;
    return 0;
}

/* net_conn_send_frame seals msg as one frame and queues it. */
int
net_conn_send_frame(struct conn *c, const uint8_t *msg, size_t len, size_t msg_len, int report,
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
        rc = net_conn_write(c, buf, len + FRAME_OVERHEAD, msg_len, report, final);
    }
    free(buf);
    return rc;
}

int
net_conn_send_wb(struct conn *c, struct pull_wb *w, bool final)
{
    int rc = wb_error(w);

    if (rc == 0)
        rc = net_conn_send_frame(c, w->p, w->len, 0, REPORT_NONE, final);
    wb_release(w);
    return rc;
}

/* net_conn_close ends c: a final BYE if frames run, then close. err/fmt describe why (for a
 * dial_failed event and the log). */
void
net_conn_close(struct conn *c, int err, uint32_t bye, const char *fmt, ...)
{
    char who[IDENT_SHORT_LEN + 1], text[NET_REASON_MAX];
    struct pull_wb w;
    va_list ap;

    if (c->phase == PH_CLOSING || c->handle_closed)
        return;
    text[0] = '\0';
    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
    }
    net_conn_fail(c, err, NET_FAIL_OTHER, "%s", text[0] != '\0' ? text : msg_bye_reason_str(bye));
    net_conn_name(c, who);
    /* a dial's failure is the dialer's warning to give (sync.c), once per peer */
    if (c->phase == PH_UP || err == 0 || (!c->inbound && c->phase != PH_UP))
        log_debug("peer %s %s: closing: %s", who, c->addr, c->fail_reason);
    else
        log_info("peer %s %s: closing: %s", who, c->addr, c->fail_reason);
    if (c->phase != PH_UP && c->phase != PH_DIAL && !c->quiet && err != PULL_ERR_EXISTS)
        net_ctr(c->net)->handshakes_failed++;
    c->phase = PH_CLOSING;
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
    if (c->frames && !c->final_sent) {
        wb_init(&w, MSG_MAX);
        if (msg_bye_encode(bye, text, &w) != 0) {
            wb_release(&w);
            wb_init(&w, MSG_MAX);
            (void)msg_bye_encode(bye, "", &w);
        }
        if (net_conn_send_wb(c, &w, true) == 0) {
            c->close_deadline = net_now_ms(c->net) + NET_CLOSE_GRACE_MS;
            return;
        }
    }
    net_conn_destroy(c);
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
        bool v6 = strchr(c->ip, ':') != NULL;
        if (v6)
            snprintf(c->addr, sizeof(c->addr), "[%s]:%u", c->ip, (unsigned)h->listen_port);
        else
            snprintf(c->addr, sizeof(c->addr), "%s:%u", c->ip, (unsigned)h->listen_port);
        bool from_public = gossip_addr_public(c->addr);
        /* someone outside our network reached us: whatever our address looks like (a
         * forward set up by hand, a cloud host's 1:1 NAT), say so from now on */
        if (t->reach != MSG_REACH_OPEN && from_public) {
            t->reach_proven = true;
            t->reach = MSG_REACH_OPEN;
            log_info("a peer reached this node from %s: peers outside its network can dial it",
                     c->ip);
        }
        /* a node that accepts only local connections, seen from a public address (behind
         * a NAT without a mapping): port 0, never dialed back (PROTOCOL.md 7, reach) */
        if (msg_hello_dial_port(h, from_public) == 0 && v6)
            snprintf(c->addr, sizeof(c->addr), "[%s]:0", c->ip);
        else if (msg_hello_dial_port(h, from_public) == 0)
            snprintf(c->addr, sizeof(c->addr), "%s:0", c->ip);
    }
    net_ctr(t)->handshakes_ok++;
    snprintf(c->agent, sizeof(c->agent), "%s", h->agent);
    net_conn_name(c, who);
    if (c->probe) {
        log_debug("peer %s %s: probe answered (%.64s)", who, c->addr, h->agent);
        net_conn_probe_done(c, 0);
        c->quiet = true;
        net_conn_close(c, 0, MSG_BYE_NORMAL, "diagnostic dial (pull doctor): done");
        return;
    }
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

    if (c->probe)
        return true; /* never the key's connection: it ends after the HELLOs */
    for (struct conn *o = t->head; o != NULL; o = o->next) {
        const uint8_t *dc, *dd;
        if (o == c || !o->key_known || o->probe || o->phase == PH_CLOSING || o->handle_closed ||
            sodium_memcmp(o->key, c->key, 32) != 0)
            continue;
        dc = c->inbound ? c->key : self;
        dd = o->inbound ? o->key : self;
        if (memcmp(dc, dd, 32) == 0 || memcmp(dc, dd, 32) > 0) {
            net_conn_close(c, PULL_ERR_EXISTS, MSG_BYE_DUPLICATE, "duplicate connection");
            return false;
        }
        net_conn_close(o, PULL_ERR_EXISTS, MSG_BYE_DUPLICATE, "duplicate connection");
    }
    return true;
}

/* wall_ms: the wall clock in unix milliseconds (HELLO's time_ms). */
static uint64_t
wall_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
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
    c->hello_ms = net_now_ms(t);
    if ((rc = net_conn_write(c, hdr, sizeof(hdr), 0, REPORT_NONE, false)) != 0)
        goto out;
    if (sodium_memcmp(c->key, t->node->self.pk, 32) == 0) {
        net_conn_close(c, PULL_ERR_BAD_KEY, MSG_BYE_SELF, "connected to myself");
        rc = PULL_ERR_BAD_KEY;
        goto out;
    }
    if ((rc = net_admit_session(c)) != 0)
        goto out;
    if (!resolve_dup(c)) {
        rc = PULL_ERR_EXISTS;
        goto out;
    }
    msg_hello_init(&h, MSG_FEAT_RECON | MSG_FEAT_MAIL, t->ext_port != 0 ? t->ext_port : t->port,
                   "pulld/" PULL_VERSION);
    h.time_ms = wall_ms();
    h.reach = t->reach;
    if (c->invite_dial) {
        h.has_invite = true;
        memcpy(h.invite, c->invite, MSG_INVITE_BYTES);
    }
    wb_init(&w, MSG_MAX);
    if ((rc = msg_hello_encode(&h, &w)) == 0)
        rc = net_conn_send_wb(c, &w, false);
    else
        wb_release(&w);
    sodium_memzero(h.invite, sizeof(h.invite));
out:
    shs_session_wipe(&sess);
    sodium_memzero(tx, sizeof(tx));
    sodium_memzero(rx, sizeof(rx));
    return rc;
}

/* shs_failed says what a handshake this node dialed and refused means. */
static void
shs_failed(struct conn *c, enum shs_fail why)
{
    char id[IDENT_SHORT_LEN + 1];

    ident_short(c->key, id);
    if (why == SHS_FAIL_NETWORK)
        net_conn_fail(c, PULL_ERR_HANDSHAKE, NET_FAIL_NOT_PULL,
                      "what answers at %.100s is not a pull node on this network (its handshake "
                      "is not authenticated by our network key)",
                      c->addr);
    else if (why == SHS_FAIL_ACCEPT)
        net_conn_fail(c, PULL_ERR_HANDSHAKE, NET_FAIL_WRONG_ID,
                      "the node at %.100s is not %s: it could not prove that id", c->addr, id);
}

/* shs_closed: the server ended the handshake of our dial without a word; what it means
 * depends on how far it got (net.h). */
static void
shs_closed(struct conn *c, bool reset)
{
    char id[IDENT_SHORT_LEN + 1];

    ident_short(c->key, id);
    if (c->shs_rx == 0 && reset)
        shs_refused(c);
    else if (c->shs_rx == 0)
        net_conn_fail(c, PULL_ERR_HANDSHAKE, NET_FAIL_NETKEY,
                      "the node at %.100s closed the connection without answering our hello: it "
                      "is on another network key (pulld --network-key), or it is not a pull node",
                      c->addr);
    else if (c->shs_rx >= SHS_MSG2_BYTES)
        net_conn_fail(c, PULL_ERR_HANDSHAKE, NET_FAIL_WRONG_ID,
                      "the node at %.100s is not %s: it is on our network key but refused a "
                      "handshake for that id (check the id: `pull id` on that node prints it)",
                      c->addr, id);
    else
        net_conn_fail(c, PULL_ERR_HANDSHAKE, NET_FAIL_OTHER,
                      "the node at %.100s closed the connection in the middle of the handshake",
                      c->addr);
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
            if (net_conn_write(c, out, k, 0, REPORT_NONE, false) != 0)
                return -1;
        }
        if (shs_done(&c->shs)) {
            if (session_start(c) != 0) {
                if (c->phase != PH_CLOSING)
                    net_conn_close(c, PULL_ERR_HANDSHAKE, MSG_BYE_PROTOCOL, "session setup failed");
                return -1;
            }
            return (ssize_t)total;
        }
        if (n == total)
            return (ssize_t)total;
        rc = shs_feed(&c->shs, p + total, n - total, &used);
        if (rc < 0) {
            if (!c->inbound)
                shs_failed(c, shs_fail_reason(&c->shs));
            net_conn_close(c, PULL_ERR_HANDSHAKE, 0, "handshake failed: %s",
                           shs_fail_str(shs_fail_reason(&c->shs)));
            return -1;
        }
        total += used;
        if (used == 0 && rc == SHS_AGAIN && shs_next_out(&c->shs, out) == 0 && !shs_done(&c->shs))
            return (ssize_t)total; /* nothing consumed, nothing to send: wait */
    }
}

/* invite_answer: a frame on our invitation dial (net_probe_invite): the inviter's HELLO,
 * then its BYE with the answer. Anything else is a failure of the dial. */
static void
invite_answer(struct conn *c, uint32_t type, const struct frame_msg *m)
{
    struct msg_bye bye;
    struct msg_hello h;
    int err;

    if (type == MSG_HELLO && !c->invite_hello && !m->final &&
        msg_hello_decode(m->p, m->len, &h) == 0) {
        c->invite_hello = true;
        snprintf(c->agent, sizeof(c->agent), "%s", h.agent);
        return;
    }
    if (type != MSG_BYE || msg_bye_decode(m->p, m->len, &bye) != 0) {
        net_conn_fail(c, PULL_ERR_PROTOCOL, NET_FAIL_OTHER,
                      "the node at %.100s sent something else than an answer to the invite",
                      c->addr);
        net_conn_close(c, PULL_ERR_PROTOCOL, MSG_BYE_PROTOCOL, "expected the invite's answer");
        return;
    }
    if (bye.reason != MSG_BYE_INVITE) {
        net_conn_fail(c, PULL_ERR_CLOSED,
                      bye.reason == MSG_BYE_BUSY ? NET_FAIL_BUSY : NET_FAIL_REFUSED_BYE,
                      "the node at %.100s refused the session: %s%s%.100s", c->addr,
                      msg_bye_reason_str(bye.reason), bye.text[0] ? ": " : "", bye.text);
        net_conn_close(c, PULL_ERR_CLOSED, MSG_BYE_NORMAL, "refused by peer");
        return;
    }
    if (strcmp(bye.text, "accepted") == 0) {
        log_info("invite accepted by the node at %s", c->addr);
        net_conn_probe_done(c, 0);
        c->quiet = true;
        net_conn_close(c, 0, MSG_BYE_NORMAL, "invite answered");
        return;
    }
    if (strncmp(bye.text, "used up", 7) == 0)
        err = PULL_ERR_QUOTA;
    else if (strncmp(bye.text, "expired", 7) == 0)
        err = PULL_ERR_EXPIRED;
    else if (strncmp(bye.text, "unknown", 7) == 0)
        err = PULL_ERR_NOT_FOUND;
    else
        err = PULL_ERR_CLOSED;
    net_conn_fail(c, err, NET_FAIL_REFUSED_BYE, "the inviter refused the invite: %.150s", bye.text);
    net_conn_close(c, err, MSG_BYE_NORMAL, "invite refused");
}

/* invite_check: the peer dialed us with an invite in its HELLO; answer it and end. */
static void
invite_check(struct conn *c, struct msg_hello *h)
{
    struct net *t = c->net;
    char text[MSG_BYE_TEXT_MAX + 1], who[IDENT_SHORT_LEN + 1];
    int rc;

    net_conn_name(c, who);
    if (t->node->invites == NULL) {
        snprintf(text, sizeof(text), "unknown: this node keeps no invitations");
        rc = PULL_ERR_NOT_FOUND;
    } else {
        rc = invites_redeem(t->node->invites, h->invite, node_now_s(t->node), text, sizeof(text));
    }
    sodium_memzero(h->invite, sizeof(h->invite));
    if (rc == 0)
        log_info("peer %s %s: joined with an invite", who, c->ip);
    else
        log_info("peer %s %s: invite refused: %s", who, c->ip, text);
    c->quiet = true;
    net_conn_close(c, 0, MSG_BYE_INVITE, "%s", text);
}

/* handle_frame handles one decrypted message. */
static void
handle_frame(struct conn *c, const struct frame_msg *m)
{
    struct net *t = c->net;
    struct msg_session s;
    uint32_t type;
    int rc;

    c->last_rx_ms = net_now_ms(t);
    if ((rc = msg_peek_type(m->p, m->len, &type)) != 0) {
        net_ctr(t)->frames_bad++;
        net_ctr(t)->peers_dropped++;
        net_conn_close(c, PULL_ERR_PROTOCOL, MSG_BYE_PROTOCOL, "malformed message");
        return;
    }
    if (c->phase == PH_HELLO && c->invite_dial) {
        invite_answer(c, type, m);
        return;
    }
    if (c->phase == PH_HELLO) {
        struct msg_hello ours;
        uint32_t version;
        if (type != MSG_HELLO || m->final || msg_hello_decode(m->p, m->len, &s.u.hello) != 0) {
            if (type == MSG_BYE && msg_bye_decode(m->p, m->len, &s.u.bye) == 0) {
                const char *why = msg_bye_reason_str(s.u.bye.reason);
                bool same = strcmp(why, s.u.bye.text) == 0 || s.u.bye.text[0] == '\0';
                if (s.u.bye.reason == MSG_BYE_BUSY)
                    net_conn_fail(c, PULL_ERR_CLOSED, NET_FAIL_BUSY,
                                  "the node at %.100s is busy: it refused the session (%.100s); "
                                  "it is tried again later",
                                  c->addr, same ? why : s.u.bye.text);
                else
                    net_conn_fail(c, PULL_ERR_CLOSED, NET_FAIL_REFUSED_BYE,
                                  "the node at %.100s refused the session: %s%s%.100s", c->addr,
                                  why, same ? "" : ": ", same ? "" : s.u.bye.text);
                net_conn_close(c, PULL_ERR_CLOSED, MSG_BYE_NORMAL, "refused by peer: %s%s%s",
                               msg_bye_reason_str(s.u.bye.reason), s.u.bye.text[0] ? ": " : "",
                               s.u.bye.text);
                return;
            }
            net_ctr(t)->frames_bad++;
            net_conn_close(c, PULL_ERR_PROTOCOL, MSG_BYE_PROTOCOL, "expected HELLO");
            return;
        }
        msg_hello_init(&ours, 0, t->port, "");
        if (msg_negotiate(&ours, &s.u.hello, &version) != 0) {
            net_conn_fail(c, PULL_ERR_VERSION, NET_FAIL_REFUSED_BYE,
                          "the node at %.100s speaks protocol versions %u..%u, this node %u..%u: "
                          "one of them needs an upgrade",
                          c->addr, (unsigned)s.u.hello.proto_min, (unsigned)s.u.hello.proto_max,
                          (unsigned)MSG_PROTO_MIN, (unsigned)MSG_PROTO_MAX);
            net_conn_close(c, PULL_ERR_VERSION, MSG_BYE_VERSION,
                           "no common protocol version: this node speaks %u..%u",
                           (unsigned)MSG_PROTO_MIN, (unsigned)MSG_PROTO_MAX);
            return;
        }
        if (s.u.hello.has_invite && c->inbound) {
            invite_check(c, &s.u.hello);
            return;
        }
        if (s.u.hello.time_ms != 0) {
            /* its clock minus ours, to within the HELLO's flight time */
            c->has_skew = true;
            c->skew_ms = (int64_t)(s.u.hello.time_ms - wall_ms());
        }
        conn_up(c, &s.u.hello);
        return;
    }
    if (c->phase != PH_UP)
        return;
    if (type == MSG_HELLO || type == MSG_PING || type == MSG_PONG || type == MSG_BYE) {
        rc = msg_session_decode(m->p, m->len, &s);
        if (rc != 0 || type == MSG_HELLO) {
            net_ctr(t)->frames_bad++;
            net_ctr(t)->peers_dropped++;
            net_conn_close(c, PULL_ERR_PROTOCOL, MSG_BYE_PROTOCOL, "bad session message");
            return;
        }
        if (type == MSG_PING) {
            struct pull_wb w;
            wb_init(&w, MSG_MAX);
            if (msg_ping_encode(MSG_PONG, s.u.nonce, &w) == 0)
                (void)net_conn_send_wb(c, &w, false);
            else
                wb_release(&w);
        } else if (type == MSG_BYE) {
            net_conn_close(c, 0, MSG_BYE_NORMAL, "peer said bye: %s%s%s",
                           msg_bye_reason_str(s.u.bye.reason), s.u.bye.text[0] ? ": " : "",
                           s.u.bye.text);
        }
        return;
    }
    if (m->final) {
        net_conn_close(c, 0, MSG_BYE_NORMAL, "peer ended the stream");
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
        net_conn_close(c, PULL_ERR_NOMEM, MSG_BYE_NORMAL, "out of memory");
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
        /* the frame budget of one read, or the node's verifiers are full (records wait in
         * the socket, and the peer's sending slows down) */
        if (frames >= NET_FRAMES_PER_READ ||
            (c->phase == PH_UP && node_verify_busy(c->net->node))) {
            save_pending(c, p, n);
            c->paused = true;
            pump_arm(c->net);
            return;
        }
        rc = frame_dec_feed(&c->dec, p, n, &used, &m);
        if (rc < 0) {
            net_ctr(c->net)->frames_bad++;
            if (c->phase == PH_UP)
                net_ctr(c->net)->peers_dropped++;
            net_conn_close(c, rc, MSG_BYE_PROTOCOL, "bad frame: %s", pull_strerror(rc));
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
        if (!c->inbound && c->phase == PH_SHS && (nread == UV_EOF || nread == UV_ECONNRESET)) {
            shs_closed(c, nread == UV_ECONNRESET);
        } else if (nread == UV_EOF) {
            int e = c->frames ? frame_dec_eof(&c->dec) : PULL_ERR_CLOSED;
            net_conn_fail(c, PULL_ERR_CLOSED, NET_FAIL_OTHER, "peer closed the connection%s",
                          e == 0 ? "" : " without a goodbye");
        } else {
            net_conn_fail(c, PULL_ERR_IO, NET_FAIL_OTHER, "read: %s", uv_strerror((int)nread));
        }
        if (c->phase != PH_UP && c->phase != PH_DIAL)
            net_ctr(t)->handshakes_failed++;
        net_conn_destroy(c);
        return;
    }
    c->bytes_in += (size_t)nread;
    if (c->phase == PH_SHS)
        c->shs_rx += (uint32_t)nread;
    net_ctr(t)->bytes_in += (size_t)nread;
    if (c->phase == PH_CLOSING)
        return;
    refill(c, net_now_ms(t));
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
    uint64_t now = net_now_ms(t);
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
        if (c->tokens < 0 || node_verify_busy(t->node)) {
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

int
net_conn_start_reading(struct conn *c)
{
    int rc;

    c->tokens = (int64_t)c->net->node->cfg.limits.peer_burst_bytes;
    c->tokens_ms = net_now_ms(c->net);
    if ((rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) != 0)
        return PULL_ERR_IO;
    c->reading = true;
    return 0;
}
