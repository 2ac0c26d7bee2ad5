/*
 * net: TCP peers (net.h is the manual): the set of connections - listening and admitting,
 * dialing, maintenance, the API, the addresses others dial. One connection's life is
 * net_conn.c's (net_int.h tells the rooms).
 */
#include "daemon/net_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "lib/err.h"
#include "lib/log.h"
#include "proto/gossip.h"
#include "proto/msg.h"

#define NET_MAINT_MS 250

static bool
host_is_any(const char *h)
{
    return strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0 || strcmp(h, "") == 0;
}

/* ---------------------------------------------------------------- the set and its limits */

struct conn *
net_find(const struct net *t, const uint8_t key[32], bool up_only)
{
    for (struct conn *c = t->head; c != NULL; c = c->next) {
        if (!c->key_known || c->probe || c->phase == PH_CLOSING || c->handle_closed)
            continue;
        if (up_only && c->phase != PH_UP)
            continue;
        if (sodium_memcmp(c->key, key, 32) == 0)
            return c;
    }
    return NULL;
}

size_t
net_count(const struct net *t, bool handshaking)
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

/* conn_source sets c's source (src_ip, src_group) from the address it connected from: the
 * IP (an IPv6 address by its /64, which one subscriber holds) and the address group the
 * gossip engine uses (gossip_addr_group of "IP:0": a loopback address is then a group of
 * its own, whatever its port). */
static void
conn_source(struct conn *c, const struct sockaddr_storage *ss)
{
    char a[96];

    memset(c->src_ip, 0, sizeof(c->src_ip));
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        c->src_ip[0] = 4;
        memcpy(c->src_ip + 1, &s4->sin_addr, 4);
        snprintf(a, sizeof(a), "%s:0", c->ip);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        const uint8_t *b = s6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            c->src_ip[0] = 4;
            memcpy(c->src_ip + 1, b + 12, 4);
            snprintf(a, sizeof(a), "%u.%u.%u.%u:0", b[12], b[13], b[14], b[15]);
        } else {
            c->src_ip[0] = 6;
            memcpy(c->src_ip + 1, b, 8);
            snprintf(a, sizeof(a), "[%s]:0", c->ip);
        }
    } else {
        return;
    }
    gossip_addr_group(a, c->src_group);
    c->src_known = c->src_group[0] != 0;
}

/* in_phase: is x an open inbound connection with a known source, in the handshake (SHS) if
 * hs, else with its frames running (HELLO or UP)? */
static bool
in_phase(const struct conn *x, bool hs)
{
    if (!x->inbound || !x->src_known || x->handle_closed)
        return false;
    return hs ? x->phase == PH_SHS : (x->phase == PH_HELLO || x->phase == PH_UP);
}

/* share_of counts the connections other than c that in_phase(hs) holds from c's address
 * (*ip) and from its address group (*group). */
static void
share_of(const struct net *t, const struct conn *c, bool hs, size_t *ip, size_t *group)
{
    *ip = *group = 0;
    for (const struct conn *x = t->head; x != NULL; x = x->next) {
        if (x == c || !in_phase(x, hs))
            continue;
        if (memcmp(x->src_ip, c->src_ip, NET_SRC_LEN) == 0)
            (*ip)++;
        if (memcmp(x->src_group, c->src_group, GOSSIP_GROUP_LEN) == 0)
            (*group)++;
    }
}

/* silent: has x, in the handshake, not sent its first message yet? (An honest peer sends
 * it at once; in the HELLO phase every candidate is silent alike.) */
static bool
silent(const struct conn *x)
{
    return x->phase != PH_SHS || x->bytes_in < SHS_MSG1_BYTES;
}

/* evict_for makes room for c when the slots of phase ph (PH_SHS: the handshakes; PH_HELLO:
 * the sessions, whose candidates are those still waiting for their HELLO) are all taken.
 * As Bitcoin Core and libp2p's connection manager do, the address group holding the most
 * of those connections loses one, if it holds more of them than c's group: a silent one
 * first, the one silent the longest (an honest dialer's first message follows its connect
 * within milliseconds: a flood that reopens its sockets as fast as they go kept evicting
 * the youngest, which was the honest one still on its way), else the youngest. Returns
 * true if a connection was evicted. */
static bool
evict_for(struct conn *c, enum conn_phase ph)
{
    struct net *t = c->net;
    struct conn *victim = NULL, **cand;
    size_t most = 0, mine = 0, m = 0, cap = 0;
    char who[IDENT_SHORT_LEN + 1];

    if (!c->src_known)
        return false;
    /* The candidates first: the list also holds the connections being closed, thousands
     * of them under a flood, and comparing each candidate's group with the whole list made
     * every accept quadratic in them (pull status waited 11 s during test_slowloris). */
    for (const struct conn *x = t->head; x != NULL; x = x->next)
        cap++;
    if ((cand = malloc(cap * sizeof(*cand) + 1)) == NULL)
        return false;
    for (struct conn *x = t->head; x != NULL; x = x->next) {
        if (x != c && in_phase(x, ph == PH_SHS) && x->phase == ph)
            cand[m++] = x;
    }
    for (size_t i = 0; i < m; i++) {
        struct conn *x = cand[i];
        size_t k = 0;
        bool better;
        if (memcmp(x->src_group, c->src_group, GOSSIP_GROUP_LEN) == 0)
            mine++;
        for (size_t j = 0; j < m; j++) {
            if (memcmp(cand[j]->src_group, x->src_group, GOSSIP_GROUP_LEN) == 0)
                k++;
        }
        if (victim == NULL || k > most)
            better = true;
        else if (k < most)
            better = false;
        else if (silent(x) != silent(victim))
            better = silent(x);
        else if (silent(x))
            better = x->opened_ms < victim->opened_ms;
        else
            better = x->opened_ms > victim->opened_ms;
        if (better) {
            most = k;
            victim = x;
        }
    }
    free(cand);
    if (victim == NULL || most <= mine)
        return false;
    net_ctr(t)->conns_evicted++;
    net_conn_name(victim, who);
    log_debug("peer %s %s: evicted for a connection from %s (its address group holds %zu of "
              "the %s)",
              who, victim->ip, c->ip, most, ph == PH_SHS ? "handshakes" : "sessions");
    victim->quiet = true; /* counted as evicted, not as a failed handshake */
    if (ph == PH_SHS)
        net_conn_destroy(victim);
    else
        net_conn_close(victim, PULL_ERR_QUOTA, MSG_BYE_BUSY, "too many connections");
    return true;
}

int
net_admit_session(struct conn *c)
{
    struct net *t = c->net;
    const struct config_limits *l = &t->node->cfg.limits;
    size_t ip = 0, group = 0;

    if (!c->inbound)
        return 0; /* our own dials are counted by net_dial */
    if (c->src_known) {
        share_of(t, c, false, &ip, &group);
        if (ip >= l->max_conns_per_ip || group >= l->max_conns_per_group) {
            net_ctr(t)->conns_refused++;
            net_ctr(t)->conns_limited++;
            net_conn_close(c, PULL_ERR_QUOTA, MSG_BYE_BUSY, "too many connections from %s",
                           ip >= l->max_conns_per_ip ? "your address" : "your address group");
            return PULL_ERR_QUOTA;
        }
    }
    if (net_count(t, false) > l->max_conns && !evict_for(c, PH_HELLO)) {
        net_ctr(t)->conns_refused++;
        net_conn_close(c, PULL_ERR_QUOTA, MSG_BYE_BUSY, "too many connections");
        return PULL_ERR_QUOTA;
    }
    return 0;
}

/* What admit_accept says. */
enum admit { ADMIT_OK = 0, ADMIT_SHARE, ADMIT_FULL };

/* admit_accept: may c, just accepted (c->ip and its source known), start its handshake?
 * It counts among the handshakes already. Returns ADMIT_OK, ADMIT_SHARE if its source
 * holds its share of the handshakes, or ADMIT_FULL if every slot is taken and none could
 * be freed for it (evict_for). */
static enum admit
admit_accept(struct conn *c)
{
    const struct net *t = c->net;
    const struct config_limits *l = &t->node->cfg.limits;
    size_t ip = 0, group = 0;

    if (t->stopped || net_count(t, false) >= l->max_conns + l->max_handshakes)
        return ADMIT_FULL;
    if (c->src_known) {
        share_of(t, c, true, &ip, &group);
        if (ip >= l->max_handshakes_per_ip || group >= l->max_handshakes_per_group)
            return ADMIT_SHARE;
    }
    if (net_count(t, true) > l->max_handshakes && !evict_for(c, PH_SHS))
        return ADMIT_FULL;
    return ADMIT_OK;
}

/* ---------------------------------------------------------------- accepting and dialing */

static void
on_connection(uv_stream_t *server, int status)
{
    struct net *t = server->data;
    struct conn *c;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    enum admit why;

    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    if ((c = net_conn_new(t, true)) == NULL)
        return;
    c->phase = PH_SHS;
    c->quiet = true; /* no event before the key is known */
    uv_tcp_init(t->node->loop, &c->tcp);
    c->tcp_init = true;
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        net_conn_destroy(c);
        return;
    }
    net_ctr(t)->conns_in++;
    memset(&ss, 0, sizeof(ss));
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof(c->ip));
        else
            uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof(c->ip));
    }
    snprintf(c->addr, sizeof(c->addr), "%s", c->ip);
    conn_source(c, &ss);
    if ((why = admit_accept(c)) != ADMIT_OK) {
        net_ctr(t)->conns_refused++;
        if (why == ADMIT_SHARE)
            net_ctr(t)->conns_limited++;
        log_debug("refusing connection from %s: %s", c->ip,
                  why == ADMIT_SHARE ? "its address holds its share of the handshakes"
                                     : "too many connections");
        c->reset = true; /* the dialer tells "busy" from "another network key" by it */
        net_conn_destroy(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (shs_server_init(&c->shs, t->node->env, t->node->cfg.network_key, &t->node->self) != 0 ||
        net_conn_start_reading(c) != 0) {
        net_conn_destroy(c);
        return;
    }
    c->shs_live = true;
    c->quiet = false;
}

/* connect_failed: connect() on c's socket failed with status (a libuv error). */
static void
connect_failed(struct conn *c, int status)
{
    const struct config_limits *l = &c->net->node->cfg.limits;

    switch (status) {
    case UV_ECONNREFUSED:
        net_conn_fail(c, PULL_ERR_IO, NET_FAIL_REFUSED,
                      "nothing accepts connections at %.100s (connection refused): is pulld "
                      "running there, on that port?",
                      c->addr);
        break;
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH:
    case UV_EADDRNOTAVAIL:
        net_conn_fail(c, PULL_ERR_IO, NET_FAIL_UNREACHABLE,
                      "%.100s is unreachable from this host (%s): check the address and this "
                      "host's network",
                      c->addr, uv_strerror(status));
        break;
    case UV_ETIMEDOUT:
        net_conn_fail(c, PULL_ERR_TIMEOUT, NET_FAIL_TIMEOUT,
                      "no answer from %.100s within %u s: the host is down, or a firewall drops "
                      "the connection",
                      c->addr, (unsigned)(l->handshake_timeout_ms / 1000));
        break;
    default:
        net_conn_fail(c, PULL_ERR_IO, NET_FAIL_OTHER, "connect to %.100s: %s", c->addr,
                      uv_strerror(status));
        break;
    }
    net_conn_destroy(c);
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
        connect_failed(c, status);
        return;
    }
    if (c->phase == PH_CLOSING) {
        net_conn_destroy(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->phase = PH_SHS;
    if (net_conn_start_reading(c) != 0) {
        net_conn_destroy(c);
        return;
    }
    while ((k = shs_next_out(&c->shs, out)) > 0) {
        if (net_conn_write(c, out, k, 0, REPORT_NONE, false) != 0)
            return;
    }
}

/* sa_loopback: is sa a loopback address (127/8, ::1, or 127/8 mapped into IPv6)? */
static bool
sa_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

static void
dial_addr(struct conn *c, const struct sockaddr *sa)
{
    struct net *t = c->net;
    int rc;

    uv_tcp_init(c->net->node->loop, &c->tcp);
    c->tcp_init = true;
    c->tcp.data = c;
    /* A node that listens on one address dials from it too, so that the peer sees the
     * address it can dial back (and counts our connections against the right source); a
     * loopback listener keeps its source address for loopback peers only. If the bind
     * fails the connection leaves from the address the system picks. */
    if (t->bind_set && sa->sa_family == t->bind_src.ss_family &&
        (!t->bind_loopback || sa_loopback(sa)))
        (void)uv_tcp_bind(&c->tcp, (const struct sockaddr *)&t->bind_src, 0);
    c->creq.data = c;
    if ((rc = uv_tcp_connect(&c->creq, &c->tcp, sa, on_connect)) != 0)
        connect_failed(c, rc);
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct conn *c = req->data;

    c->gai_pending = false;
    if (c->handle_closed) {
        uv_freeaddrinfo(res);
        c->handle_closed = false;
        net_conn_destroy(c);
        return;
    }
    if (status < 0 || res == NULL) {
        net_conn_fail(c, PULL_ERR_NOT_FOUND, NET_FAIL_RESOLVE,
                      "cannot resolve the host of %.100s: %s", c->addr,
                      status < 0 ? uv_strerror(status) : "no address");
        uv_freeaddrinfo(res);
        net_conn_destroy(c);
        return;
    }
    dial_addr(c, res->ai_addr);
    uv_freeaddrinfo(res);
}

/* dial_start opens an outbound connection to key at addr: a peer's, or a probe's. */
static int
dial_start(struct net *t, const uint8_t key[32], const char *addr, const uint8_t *netkey,
           struct conn **out)
{
    char host[CONFIG_ADDR_MAX], portstr[8];
    struct sockaddr_storage ss;
    struct addrinfo hints;
    struct conn *c;
    uint16_t port;
    int rc;

    *out = NULL;
    if (t->stopped)
        return PULL_ERR_STATE;
    if (sodium_memcmp(key, t->node->self.pk, 32) == 0)
        return PULL_ERR_BAD_KEY;
    if (addr == NULL || strlen(addr) >= NODE_ADDR_MAX ||
        config_split_hostport(addr, host, sizeof(host), &port) != 0 || port == 0 || host[0] == '\0')
        return PULL_ERR_INVAL;
    for (c = t->head; c != NULL && netkey == NULL; c = c->next) {
        if (!c->key_known || c->probe || c->phase == PH_CLOSING || c->handle_closed ||
            sodium_memcmp(c->key, key, 32) != 0)
            continue;
        if (c->phase == PH_UP || !c->inbound)
            return PULL_ERR_EXISTS;
    }
    if (net_count(t, false) >= t->node->cfg.limits.max_conns)
        return PULL_ERR_QUOTA;
    if ((c = net_conn_new(t, false)) == NULL)
        return PULL_ERR_NOMEM;
    memcpy(c->key, key, 32);
    c->key_known = true;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    c->phase = PH_DIAL;
    if ((rc = shs_client_init(&c->shs, t->node->env,
                              netkey != NULL ? netkey : t->node->cfg.network_key, &t->node->self,
                              key)) != 0) {
        c->quiet = true;
        net_conn_destroy(c);
        return rc == PULL_ERR_BAD_KEY ? PULL_ERR_BAD_KEY : rc;
    }
    c->shs_live = true;
    *out = c;
    net_ctr(t)->conns_out++;
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
        *out = NULL;
        c->quiet = true;
        net_conn_destroy(c);
        return PULL_ERR_INVAL;
    }
    c->gai_pending = true;
    return 0;
}

int
net_dial(struct net *t, const uint8_t key[static 32], const char *addr)
{
    struct conn *c;

    return dial_start(t, key, addr, NULL, &c);
}

int
net_probe(struct net *t, const uint8_t key[static 32], const char *addr, node_probe_fn cb,
          void *arg)
{
    struct conn *c;
    int rc;

    if ((rc = dial_start(t, key, addr, NULL, &c)) != 0)
        return rc;
    /* dial_addr may have failed at once: c is closing, its close callback still to come */
    c->probe = true;
    c->probe_cb = cb;
    c->probe_arg = arg;
    return 0;
}

int
net_probe_invite(struct net *t, const uint8_t key[static 32], const char *addr,
                 const uint8_t netkey[static 32], const uint8_t secret[static 16], node_probe_fn cb,
                 void *arg)
{
    struct conn *c;
    int rc;

    if ((rc = dial_start(t, key, addr, netkey, &c)) != 0)
        return rc;
    c->probe = true;
    c->probe_cb = cb;
    c->probe_arg = arg;
    c->invite_dial = true;
    memcpy(c->invite, secret, MSG_INVITE_BYTES);
    return 0;
}

void
net_probe_cancel(struct net *t, void *arg)
{
    for (struct conn *c = t->head; c != NULL; c = c->next) {
        if (c->probe && c->probe_arg == arg)
            c->probe_cb = NULL;
    }
}

const char *
net_fail_name(enum net_fail kind)
{
    static const char *const names[NET_FAIL_COUNT] = {
        [NET_FAIL_OTHER] = "other",       [NET_FAIL_RESOLVE] = "cannot_resolve",
        [NET_FAIL_REFUSED] = "refused",   [NET_FAIL_UNREACHABLE] = "unreachable",
        [NET_FAIL_TIMEOUT] = "timeout",   [NET_FAIL_NETKEY] = "other_network",
        [NET_FAIL_WRONG_ID] = "wrong_id", [NET_FAIL_NOT_PULL] = "not_pull",
        [NET_FAIL_BUSY] = "busy",         [NET_FAIL_REFUSED_BYE] = "refused_after_handshake",
    };

    return (unsigned)kind < NET_FAIL_COUNT ? names[kind] : "other";
}
/* ---------------------------------------------------------------- timers */

/* dial_timed_out says where an outbound connection stood when its time was up. */
static void
dial_timed_out(struct conn *c, uint32_t ms)
{
    unsigned secs = (unsigned)((ms + 999) / 1000);

    if (c->phase == PH_DIAL)
        net_conn_fail(c, PULL_ERR_TIMEOUT, NET_FAIL_TIMEOUT,
                      "no answer from %.100s within %u s: the host is down, or a firewall drops "
                      "the connection",
                      c->addr, secs);
    else if (c->phase == PH_SHS && c->shs_rx == 0)
        net_conn_fail(c, PULL_ERR_TIMEOUT, NET_FAIL_TIMEOUT,
                      "%.100s accepted the connection but did not answer the handshake within "
                      "%u s (not a pull node, or overloaded)",
                      c->addr, secs);
    else if (c->phase == PH_SHS)
        net_conn_fail(c, PULL_ERR_TIMEOUT, NET_FAIL_TIMEOUT,
                      "the node at %.100s did not finish the handshake within %u s", c->addr, secs);
    else
        net_conn_fail(c, PULL_ERR_TIMEOUT, NET_FAIL_TIMEOUT,
                      "the node at %.100s did not say HELLO within %u s of the handshake", c->addr,
                      secs);
}

static void
on_maint(uv_timer_t *tm)
{
    struct net *t = tm->data;
    const struct config_limits *l = &t->node->cfg.limits;
    uint64_t now = net_now_ms(t);
    uint64_t ping_every = l->idle_timeout_ms / 3;

    for (struct conn *c = t->head, *next; c != NULL; c = next) {
        next = c->next;
        if (c->handle_closed)
            continue;
        switch (c->phase) {
        case PH_DIAL:
        case PH_SHS:
        case PH_HELLO:
            /* a stranger holds a slot only as long as it keeps the pace of an honest peer,
             * which speaks at once: the first message, then the HELLO right after the
             * handshake */
            if (c->phase == PH_SHS && c->inbound && c->bytes_in < SHS_MSG1_BYTES &&
                now - c->opened_ms >= l->first_msg_timeout_ms) {
                net_ctr(t)->handshakes_slow++;
                net_conn_close(c, PULL_ERR_TIMEOUT, MSG_BYE_TIMEOUT,
                               "no handshake message within %u ms",
                               (unsigned)l->first_msg_timeout_ms);
            } else if (c->phase == PH_HELLO && now - c->hello_ms >= l->hello_timeout_ms) {
                net_ctr(t)->handshakes_slow++;
                net_conn_close(c, PULL_ERR_TIMEOUT, MSG_BYE_TIMEOUT, "no HELLO within %u ms",
                               (unsigned)l->hello_timeout_ms);
            } else if (now - c->opened_ms >= l->handshake_timeout_ms) {
                if (!c->inbound)
                    dial_timed_out(c, l->handshake_timeout_ms);
                net_conn_close(c, PULL_ERR_TIMEOUT, MSG_BYE_TIMEOUT, "handshake timed out");
            }
            break;
        case PH_UP:
            if (now - c->last_rx_ms >= l->idle_timeout_ms) {
                net_conn_close(c, PULL_ERR_TIMEOUT, MSG_BYE_TIMEOUT, "silent for %u ms",
                               (unsigned)(now - c->last_rx_ms));
            } else if (now - c->last_rx_ms >= ping_every && now - c->last_ping_ms >= ping_every) {
                struct pull_wb w;
                c->last_ping_ms = now;
                wb_init(&w, MSG_MAX);
                if (msg_ping_encode(MSG_PING, env_u64(t->node->env), &w) == 0)
                    (void)net_conn_send_wb(c, &w, false);
                else
                    wb_release(&w);
            }
            break;
        case PH_CLOSING:
            if (now >= c->close_deadline)
                net_conn_destroy(c);
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
        if (rc == UV_EADDRINUSE)
            log_error("cannot listen on %s: address already in use (another pulld, or another "
                      "program, listens there): choose another with --listen HOST:PORT (port 0: "
                      "any free port)",
                      n->cfg.listen);
        else if (rc == UV_EADDRNOTAVAIL)
            log_error("cannot listen on %s: this host has no such address (see `ip addr`)",
                      n->cfg.listen);
        else
            log_error("cannot listen on %s: %s", n->cfg.listen, uv_strerror(rc));
        net_stop(t);
        return PULL_ERR_INVAL;
    }
    t->listening = true;
    if (!host_is_any(t->listen_host)) {
        t->bind_src = ss; /* the listen address, port 0 */
        if (ss.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&t->bind_src)->sin6_port = 0;
        else
            ((struct sockaddr_in *)&t->bind_src)->sin_port = 0;
        t->bind_loopback = sa_loopback((const struct sockaddr *)&t->bind_src);
        t->bind_set = true;
    }
    if (uv_tcp_getsockname(&t->listener, (struct sockaddr *)&ss, &len) == 0)
        t->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    net_set_external(t, NULL, 0); /* no mapping yet: sets the reach */
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
            net_conn_close(c, 0, MSG_BYE_NORMAL, "shutting down");
        else
            net_conn_destroy(c);
        /* do not wait for slow peers at shutdown beyond a short grace */
        c->close_deadline = net_now_ms(t) + 500;
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
    struct conn *c = net_find(t, key, true);
    int rc;

    if (c == NULL)
        return PULL_ERR_NOT_FOUND;
    if (len == 0 || len > MSG_MAX)
        return PULL_ERR_INVAL;
    if (c->queued + len + FRAME_OVERHEAD > t->node->cfg.limits.peer_queue_bytes) {
        char who[IDENT_SHORT_LEN + 1];
        net_conn_name(c, who);
        log_info("peer %s %s: dropped: more than %u bytes queued", who, c->addr,
                 (unsigned)t->node->cfg.limits.peer_queue_bytes);
        net_ctr(t)->peers_dropped++;
        net_conn_fail(c, PULL_ERR_QUOTA, NET_FAIL_OTHER, "send queue full");
        net_conn_destroy(c);
        return PULL_ERR_QUOTA;
    }
    rc = net_conn_send_frame(c, msg, len, len, counted ? REPORT_COUNTED : REPORT_UNCOUNTED, false);
    return rc == PULL_ERR_NOMEM || rc == PULL_ERR_IO || rc == PULL_ERR_CLOSED ? PULL_ERR_QUOTA : rc;
}

void
net_close(struct net *t, const uint8_t key[static 32], uint32_t reason, const char *text)
{
    struct conn *c;

    while ((c = net_find(t, key, false)) != NULL) {
        c->quiet = true;
        net_conn_close(c, 0, reason, "%s", text != NULL ? text : "");
    }
}

size_t
net_queued(const struct net *t, const uint8_t key[static 32])
{
    const struct conn *c = net_find(t, key, true);

    return c != NULL ? c->queued : 0;
}

bool
net_is_up(const struct net *t, const uint8_t key[static 32])
{
    return net_find(t, key, true) != NULL;
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
    const struct conn *c = net_find(t, key, true);

    if (c == NULL)
        return PULL_ERR_NOT_FOUND;
    out->connected = true;
    out->inbound = c->inbound;
    out->bytes_in = c->bytes_in;
    out->bytes_out = c->bytes_out;
    out->since_s = c->since_s;
    out->has_skew = c->has_skew;
    out->skew_ms = c->skew_ms;
    if (out->addr[0] == '\0')
        snprintf(out->addr, sizeof(out->addr), "%s", c->addr);
    return 0;
}

void
net_advertised(const struct net *t, char *out, size_t len)
{
    char buf[8][NODE_ADDR_MAX];
    size_t k;

    if (t->ext_host[0] != '\0') {
        if (strchr(t->ext_host, ':') != NULL)
            snprintf(out, len, "[%s]:%u", t->ext_host, (unsigned)t->ext_port);
        else
            snprintf(out, len, "%s:%u", t->ext_host, (unsigned)t->ext_port);
        return;
    }
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

void
net_set_external(struct net *t, const char *host, uint16_t port)
{
    char adv[NODE_ADDR_MAX];

    if (host != NULL && port != 0 && strlen(host) < sizeof(t->ext_host)) {
        snprintf(t->ext_host, sizeof(t->ext_host), "%s", host);
        t->ext_port = port;
    } else {
        t->ext_host[0] = '\0';
        t->ext_port = 0;
    }
    net_advertised(t, adv, sizeof(adv));
    t->reach = t->reach_proven || gossip_addr_public(adv) ? MSG_REACH_OPEN : MSG_REACH_LOCAL;
}

uint8_t
net_reach(const struct net *t)
{
    return t->reach;
}

static size_t net_addresses_local(const struct net *t, char (*out)[NODE_ADDR_MAX], size_t max);

size_t
net_addresses(const struct net *t, char (*out)[NODE_ADDR_MAX], size_t max)
{
    const struct node *n = t != NULL ? t->node : NULL;
    size_t k;

    if (t == NULL || max == 0)
        return 0;
    if (t->ext_host[0] != '\0') { /* the port mapped on the router first */
        char adv[80];
        net_advertised(t, adv, sizeof(adv));
        snprintf(out[0], NODE_ADDR_MAX, "%s@%s", n->self_text, adv);
        k = net_addresses_local(t, out + 1, max - 1);
        for (size_t j = 1; j <= k; j++) {
            if (strcmp(out[j], out[0]) == 0) { /* the same (a public listen address) */
                memmove(out + j, out + j + 1, (k - j) * sizeof(*out));
                k--;
                break;
            }
        }
        return k + 1;
    }
    return net_addresses_local(t, out, max);
}

/* net_addresses_local: net_addresses without the port mapping. */
static size_t
net_addresses_local(const struct net *t, char (*out)[NODE_ADDR_MAX], size_t max)
{
    const struct node *n = t->node;
    uv_interface_address_t *ifs = NULL;
    int nifs = 0;
    size_t k = 0;
    bool v6;

    if (max == 0)
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
