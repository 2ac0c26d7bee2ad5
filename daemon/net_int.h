/*
 * net_int: what net's two rooms share (internal to daemon/net*.c; net.h is the manual).
 *
 * The rooms.
 *   net.c       the set of connections: the listener and the admission limits (how many
 *               handshakes and sessions, checked on accept and when a key becomes known),
 *               the dialer (resolve, connect), the maintenance timer (handshake and idle
 *               timeouts, PING, the closing grace), the functions of net.h, and the
 *               addresses other nodes should dial.
 *   net_conn.c  one connection's life: the handshake, the frames, HELLO and the session
 *               messages, input under the frame budget and the token bucket, writes and
 *               the send queue, closing with BYE and freeing.
 * A limit on who may connect belongs in net.c's admission; how a connection behaves once
 * admitted belongs in net_conn.c.
 *
 * Phases. A connection goes through DIAL (resolving and connecting), SHS (the four
 * handshake messages, raw bytes), HELLO (frames are running; waiting for the peer's
 * HELLO), UP (sync sees it), CLOSING (final BYE queued, reading stopped, closed when the
 * BYE is written or after a short grace). uv_close is the only way out; the close callback
 * unlinks the connection, emits its event and frees it. Since that callback runs from the
 * loop, never inside a read or write callback of the same connection, code that may close
 * a connection only has to re-check c->phase afterwards.
 */
#ifndef PULL_NET_INT_H
#define PULL_NET_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/net.h"
#include "proto/frame.h"
#include "proto/gossip.h"
#include "proto/msg.h"
#include "proto/shs.h"

#define NET_READ_BUF 65536
#define NET_FRAMES_PER_READ 64
#define NET_PUMP_MS 10
#define NET_CLOSE_GRACE_MS 2000
#define NET_REASON_MAX 160
#define NET_SRC_LEN 9 /* a source address: family, then an IPv4 address or an IPv6 /64 */

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
    bool src_known;           /* inbound, with src_ip and src_group from the observed IP */
    uint8_t src_ip[NET_SRC_LEN];
    uint8_t src_group[GOSSIP_GROUP_LEN]; /* gossip_addr_group of the IP (port 0) */
    struct shs shs;
    struct frame_enc enc;
    struct frame_dec dec;
    uint64_t features;
    uint64_t opened_ms, last_rx_ms, last_ping_ms, close_deadline;
    uint64_t hello_ms; /* when the frames started (PH_HELLO): the peer's HELLO is due */
    uint64_t since_s;
    uint64_t bytes_in, bytes_out;
    size_t queued;
    int64_t tokens;
    uint64_t tokens_ms;
    uint8_t *pend; /* input not yet processed */
    size_t pend_len, pend_off;
    bool fail_set; /* fail_err, fail_kind and fail_reason are said (net_conn_fail) */
    int fail_err;
    enum net_fail fail_kind;
    char fail_reason[NET_REASON_MAX];
    bool reset;                    /* close with a reset (RST): refused before the handshake */
    uint32_t shs_rx;               /* handshake bytes received (the dialer tells failures by it) */
    bool has_skew;                 /* the peer's HELLO said its clock */
    int64_t skew_ms;               /* its clock minus ours when its HELLO arrived */
    char agent[MSG_AGENT_MAX + 1]; /* its HELLO's agent */
    /* a diagnostic dial (net_probe): never seen by sync, never counted as the key's
     * connection; probe_cb is called once (NULL once called or cancelled) */
    bool probe;
    node_probe_fn probe_cb;
    void *probe_arg;
    /* a probe redeeming an invitation (net_probe_invite): invite goes in our HELLO, and
     * after the peer's HELLO (invite_hello) its BYE answers */
    bool invite_dial, invite_hello;
    uint8_t invite[MSG_INVITE_BYTES];
};

/* What a write reports when it completes (the flushed event). */
enum { REPORT_NONE = 0, REPORT_UNCOUNTED = 1, REPORT_COUNTED = 2 };

struct net {
    struct node *node;
    struct net_events ev;
    uv_tcp_t listener;
    bool listening, listener_closed;
    uv_timer_t maint, pump; /* net.c's maintenance; net_conn.c's input pump */
    bool timers_closed;
    bool stopped;
    uint16_t port;
    char listen_host[CONFIG_ADDR_MAX];
    char ext_host[64]; /* the router's external address of a port mapping ("": none) */
    uint16_t ext_port; /* ... and the port mapped there to ours */
    uint8_t reach;     /* what our HELLO says (enum msg_reach): net_set_external */
    bool reach_proven; /* a peer came in from a public address: we are dialable from
                          outside (a forward on the router, 1:1 NAT), mapped or not */
    struct sockaddr_storage bind_src; /* dials leave from the listen address, if one */
    bool bind_set, bind_loopback;
    struct conn *head;
    uint8_t rbuf[NET_READ_BUF]; /* the one read buffer (net_conn.c) */
    bool rbuf_busy;
};

static inline uint64_t
net_now_ms(const struct net *t)
{
    return node_now_ms(t->node);
}

static inline struct node_counters *
net_ctr(struct net *t)
{
    return &t->node->counters;
}

/* ---- the set of connections (net.c) ---- */

/* net_find returns the open (not closing) connection with key, only an UP one if
 * up_only, or NULL. */
struct conn *net_find(const struct net *t, const uint8_t key[32], bool up_only);

/* net_count counts the open connections still in the handshake (DIAL, SHS) if
 * handshaking, else those with frames running (HELLO, UP). */
size_t net_count(const struct net *t, bool handshaking);

/* net_admit_session applies the session limits to c, whose key just became known (its
 * frames run: PH_HELLO): an inbound connection beyond its source's share of sessions
 * (max_conns_per_ip, max_conns_per_group) is refused; one beyond max_conns takes the place
 * of another that has not sent its HELLO yet (net.h "Admission") or is refused. Returns 0,
 * or PULL_ERR_QUOTA after closing c with BYE BUSY (counted as refused). */
int net_admit_session(struct conn *c);

/* ---- one connection (net_conn.c) ---- */

/* net_conn_new allocates a connection of t (phase DIAL, no handle yet) and links it into
 * t's list; only its close callback unlinks and frees it (net_conn_destroy). Returns NULL
 * out of memory. */
struct conn *net_conn_new(struct net *t, bool inbound);

/* net_conn_start_reading fills c's token bucket and starts reading. Returns 0 or
 * PULL_ERR_IO (c is left to the caller). */
int net_conn_start_reading(struct conn *c);

/* net_conn_write queues len bytes (copied) on c; msg_len and report (REPORT_*) say what
 * its flushed event tells, final closes c once written. Returns 0, or an error after
 * destroying c. */
int net_conn_write(struct conn *c, const uint8_t *p, size_t len, size_t msg_len, int report,
                   bool final);

/* net_conn_send_frame seals msg (1..FRAME_PLAIN_MAX bytes) as one frame and queues it.
 * Returns 0, PULL_ERR_CLOSED (no frames, or the final one was sent), PULL_ERR_INVAL,
 * PULL_ERR_NOMEM or net_conn_write's error. */
int net_conn_send_frame(struct conn *c, const uint8_t *msg, size_t len, size_t msg_len, int report,
                        bool final);

/* net_conn_send_wb sends w's bytes as one frame (unless w failed) and releases w. */
int net_conn_send_wb(struct conn *c, struct pull_wb *w, bool final);

/* net_conn_close ends c: a final BYE (bye, and fmt's text if given) if frames run, then
 * close. err and fmt say why, for a dial_failed event and the log, unless net_conn_fail
 * said it first (more precisely). Does nothing to a closing connection. */
void net_conn_close(struct conn *c, int err, uint32_t bye, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* net_conn_destroy closes c's handle now (pending writes are cancelled); the close
 * callback frees it. */
void net_conn_destroy(struct conn *c);

/* net_conn_fail records why c fails (err, kind and a reason, printf-style) for its
 * dial_failed event or probe callback, unless a reason was recorded already. */
void net_conn_fail(struct conn *c, int err, enum net_fail kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* net_conn_probe_done calls c's probe callback (if still set) with c's outcome: err 0 (a
 * session), or c's failure. */
void net_conn_probe_done(struct conn *c, int err);

/* net_conn_name writes c's short key, or "?" before the key is known. */
void net_conn_name(const struct conn *c, char out[IDENT_SHORT_LEN + 1]);

#endif
