/*
 * lan: LAN discovery. Two nodes on one network find each other with no configuration.
 *
 * Every few seconds (three quick rounds at start, then every LAN_INTERVAL_MS with jitter)
 * the node sends one small UDP datagram, the announcement of proto/PROTOCOL.md section 13
 * ("PLAN", version, a hash of the network key, the node key, the TCP listen port), to the
 * multicast group 239.255.74.50 through every IPv4 interface (loopback included, so nodes
 * on one host find each other), to each interface's directed broadcast address and to
 * 255.255.255.255. The socket is bound to 0.0.0.0:cfg.lan_port with SO_REUSEADDR, so any
 * number of nodes on one host share the port (multicast and broadcast datagrams reach every
 * socket bound to it), and joins the group on every IPv4 interface (re-checked periodically
 * as interfaces come and go).
 *
 * What is received is untrusted and unauthenticated: anyone on the LAN can send anything
 * from any source address. So: a datagram is checked strictly (exact length, magic,
 * version, network hash, port, key) and only then turns into node_learn_peer(key,
 * "source-ip:port"); the handshake that follows proves the key. Work is bounded three
 * ways: a token bucket per source address (a flooding host is ignored), a global packet
 * budget per second (spoofed sources can't get around the per-source buckets), and a cap
 * on peers learned per minute (a forger can't make us dial the whole address space). A key
 * already learned at the same address is not learned again for LAN_RELEARN_MS.
 *
 * If the socket can't be opened (port taken without SO_REUSEADDR, no permission), LAN
 * discovery is off for this run: one warning, the node runs on.
 *
 * Handles: the UDP socket and the timer are embedded in struct lan, so the struct is freed
 * only after both close callbacks ran (lan_free defers to them if needed).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "daemon/lan.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/log.h"

#define LAN_MAGIC "PLAN"
#define LAN_VERSION 1
#define LAN_PKT_BYTES 56
#define LAN_NETHASH_BYTES 16
#define LAN_NETHASH_DOMAIN "pull/lan/v1"
#define LAN_GROUP "239.255.74.50"
#define LAN_BROADCAST "255.255.255.255"

#define LAN_QUICK_ROUNDS 3   /* fast announcements at start */
#define LAN_QUICK_MS 700     /* mean gap between them */
#define LAN_INTERVAL_MS 5000 /* mean gap afterwards (jitter +-25%) */
#define LAN_REJOIN_ROUNDS 12 /* re-check group memberships every this many rounds */
#define LAN_IFACES_MAX 32    /* interfaces joined and announced on */
#define LAN_SRC_MAX 64       /* source addresses rate-limited individually */
#define LAN_SRC_BURST 20     /* per source: packets in a burst ... */
#define LAN_SRC_RATE 5       /* ... and per second after it */
#define LAN_GLOBAL_PER_S 200 /* packets examined per second, all sources */
#define LAN_SEEN_MAX 256     /* keys remembered to avoid learning them over and over */
#define LAN_RELEARN_MS 60000 /* a key at the same address is learned again after this */
#define LAN_STALE_MS 15000   /* an address not heard for this long may be replaced */
#define LAN_LEARN_PER_MIN 32 /* peers learned per minute, at most */

struct lan_src {
    uint32_t ip; /* network order; 0 = free slot */
    uint32_t tokens_milli;
    uint64_t last_ms;
};

struct lan_seen {
    uint8_t key[32];
    char addr[NODE_ADDR_MAX];
    uint64_t learned_ms; /* last handed to node_learn_peer */
    uint64_t heard_ms;   /* last announcement from addr */
    bool used;
    bool loopback;
};

struct lan {
    struct node *n;
    uv_udp_t udp;
    uv_timer_t timer;
    int open_handles; /* handles initialized and not yet closed (close callbacks pending) */
    bool stopping;
    bool free_on_close; /* lan_free ran before the close callbacks: they free the struct */
    uint8_t net_hash[LAN_NETHASH_BYTES];
    uint8_t rxbuf[LAN_PKT_BYTES + 8]; /* room for more than a packet: longer ones are refused */
    unsigned rounds;
    uint32_t joined[LAN_IFACES_MAX]; /* interface addresses whose group membership we added */
    size_t njoined;
    struct lan_src srcs[LAN_SRC_MAX];
    struct lan_seen seen[LAN_SEEN_MAX];
    uint64_t global_window_ms;
    uint32_t global_count;
    uint64_t learn_window_ms;
    uint32_t learn_count;
    bool warned_send;
    bool warned_learn_cap;
    /* statistics, logged at debug level */
    uint64_t rx, rx_bad, rx_limited, rx_other_net, learned, tx, tx_err, rx_others;
};

static void lan_schedule(struct lan *l);

/* lan_net_hash: BLAKE2b-128("pull/lan/v1" || K). It tells nodes of one network from those
 * of another without revealing K. */
static int
lan_net_hash(const uint8_t K[32], uint8_t out[LAN_NETHASH_BYTES])
{
    uint8_t msg[sizeof(LAN_NETHASH_DOMAIN) - 1 + 32];

    memcpy(msg, LAN_NETHASH_DOMAIN, sizeof(LAN_NETHASH_DOMAIN) - 1);
    memcpy(msg + sizeof(LAN_NETHASH_DOMAIN) - 1, K, 32);
    if (crypto_generichash(out, LAN_NETHASH_BYTES, msg, sizeof(msg), NULL, 0) != 0)
        return PULL_ERR_CRYPTO;
    return 0;
}

static bool
lan_is_loopback(uint32_t ip_net)
{
    return (ntohl(ip_net) >> 24) == 127;
}

static void
lan_on_close(uv_handle_t *h)
{
    struct lan *l = h->data;

    if (--l->open_handles == 0 && l->free_on_close)
        free(l);
}

static void
lan_close_all(struct lan *l)
{
    if (!uv_is_closing((uv_handle_t *)&l->timer) && l->timer.data == l)
        uv_close((uv_handle_t *)&l->timer, lan_on_close);
    if (!uv_is_closing((uv_handle_t *)&l->udp) && l->udp.data == l)
        uv_close((uv_handle_t *)&l->udp, lan_on_close);
}

/* ---- receiving ---- */

/* lan_src_allow: token bucket per source address, and a global budget per second. */
static bool
lan_src_allow(struct lan *l, uint32_t ip, uint64_t now)
{
    struct lan_src *s = NULL, *oldest = &l->srcs[0];
    size_t i;

    if (now - l->global_window_ms >= 1000) {
        l->global_window_ms = now;
        l->global_count = 0;
    }
    if (l->global_count >= LAN_GLOBAL_PER_S)
        return false;
    l->global_count++;

    for (i = 0; i < LAN_SRC_MAX; i++) {
        if (l->srcs[i].ip == ip) {
            s = &l->srcs[i];
            break;
        }
        if (l->srcs[i].ip == 0 || l->srcs[i].last_ms < oldest->last_ms)
            oldest = &l->srcs[i];
    }
    if (s == NULL) {
        s = oldest; /* a free slot, or the least recently heard source */
        s->ip = ip;
        s->tokens_milli = LAN_SRC_BURST * 1000u;
        s->last_ms = now;
    } else {
        uint64_t add = (now - s->last_ms) * LAN_SRC_RATE; /* milli-tokens */
        uint64_t t = s->tokens_milli + add;

        s->tokens_milli = t > LAN_SRC_BURST * 1000u ? LAN_SRC_BURST * 1000u : (uint32_t)t;
        s->last_ms = now;
    }
    if (s->tokens_milli < 1000)
        return false;
    s->tokens_milli -= 1000;
    return true;
}

/* lan_learn: hand key@addr to the node unless it was learned at that address recently, or
 * the per-minute cap is reached. A key heard at another address is moved there only once
 * its current address has gone quiet, or at once to a loopback address: that one is always
 * dialable on the same host, whereas the peer may listen on loopback only. */
static void
lan_learn(struct lan *l, const uint8_t key[32], const char *addr, bool loopback, uint64_t now)
{
    struct lan_seen *e = NULL, *slot = NULL;
    size_t i;
    int rc;

    for (i = 0; i < LAN_SEEN_MAX; i++) {
        struct lan_seen *s = &l->seen[i];

        if (s->used && sodium_memcmp(s->key, key, 32) == 0) {
            e = s;
            break;
        }
        /* the slot for a new key: a free one, else the one learned longest ago */
        if (slot == NULL || (slot->used && (!s->used || s->learned_ms < slot->learned_ms)))
            slot = s;
    }
    if (e != NULL) {
        if (strcmp(e->addr, addr) == 0) {
            e->heard_ms = now;
            if (now - e->learned_ms < LAN_RELEARN_MS)
                return;
        } else if (now - e->heard_ms < LAN_STALE_MS && !(loopback && !e->loopback)) {
            /* the key is still heard at its current address (a host with two interfaces
             * on the LAN, or a forger): keep it, don't flip between addresses */
            return;
        }
    }
    if (now - l->learn_window_ms >= 60000) {
        l->learn_window_ms = now;
        l->learn_count = 0;
        l->warned_learn_cap = false;
    }
    if (l->learn_count >= LAN_LEARN_PER_MIN) {
        if (!l->warned_learn_cap)
            log_warn("lan: more than %u peers announced within a minute; ignoring more",
                     LAN_LEARN_PER_MIN);
        l->warned_learn_cap = true;
        l->rx_limited++;
        return;
    }
    l->learn_count++;
    if (e == NULL) {
        e = slot; /* a free slot, or the key learned longest ago */
        memset(e, 0, sizeof(*e));
        memcpy(e->key, key, 32);
        e->used = true;
    }
    snprintf(e->addr, sizeof(e->addr), "%s", addr);
    e->loopback = loopback;
    e->learned_ms = e->heard_ms = now;
    if ((rc = node_learn_peer(l->n, key, addr)) != 0) {
        log_debug("lan: node_learn_peer %s: %s", addr, pull_strerror(rc));
        return;
    }
    l->learned++;
    {
        char text[IDENT_TEXT_LEN + 1];

        ident_to_text(key, text);
        log_info("lan: discovered %s@%s", text, addr);
    }
}

/* lan_parse checks one datagram strictly. Returns 0 and the key and port, or an error. */
static int
lan_parse(const struct lan *l, const uint8_t *p, size_t n, uint8_t key[32], uint16_t *port)
{
    struct pull_rd r;
    const uint8_t *magic, *hash;
    uint8_t version, flags;
    uint8_t x[32];

    if (n != LAN_PKT_BYTES)
        return PULL_ERR_MALFORMED;
    rd_init(&r, p, n);
    if (rd_bytes(&r, 4, &magic) != 0 || memcmp(magic, LAN_MAGIC, 4) != 0)
        return PULL_ERR_MALFORMED;
    if (rd_u8(&r, &version) != 0 || version != LAN_VERSION)
        return PULL_ERR_VERSION;
    if (rd_u8(&r, &flags) != 0 || rd_u16be(&r, port) != 0 || *port == 0)
        return PULL_ERR_MALFORMED;
    (void)flags; /* reserved: senders write 0, receivers ignore */
    if (rd_bytes(&r, LAN_NETHASH_BYTES, &hash) != 0)
        return PULL_ERR_MALFORMED;
    if (sodium_memcmp(hash, l->net_hash, LAN_NETHASH_BYTES) != 0)
        return PULL_ERR_HANDSHAKE; /* another network: not for us */
    if (rd_copy(&r, key, 32) != 0 || rd_left(&r) != 0)
        return PULL_ERR_MALFORMED;
    /* a key that isn't a usable Ed25519 point could never complete a handshake */
    if (crypto_sign_ed25519_pk_to_curve25519(x, key) != 0)
        return PULL_ERR_BAD_KEY;
    return 0;
}

static void
lan_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct lan *l = h->data;

    (void)suggested;
    *buf = uv_buf_init((char *)l->rxbuf, sizeof(l->rxbuf));
}

static void
lan_on_recv(uv_udp_t *u, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
            unsigned flags)
{
    struct lan *l = u->data;
    const struct sockaddr_in *sin;
    uint8_t key[32];
    uint16_t port;
    uint64_t now;
    char ip[INET_ADDRSTRLEN], addr[NODE_ADDR_MAX];
    int rc;

    (void)buf;
    if (nread <= 0 || from == NULL || l->stopping)
        return; /* nothing, or a transient error: UDP has no connection to lose */
    if (from->sa_family != AF_INET)
        return;
    sin = (const struct sockaddr_in *)from;
    if (sin->sin_addr.s_addr == 0 || sin->sin_addr.s_addr == 0xffffffffu ||
        (ntohl(sin->sin_addr.s_addr) >> 28) == 0xe)
        return; /* no dialable source */
    l->rx++;
    now = node_now_ms(l->n);
    if (!lan_src_allow(l, sin->sin_addr.s_addr, now)) {
        l->rx_limited++;
        return;
    }
    if ((flags & UV_UDP_PARTIAL) != 0) {
        l->rx_bad++;
        return;
    }
    if ((rc = lan_parse(l, l->rxbuf, (size_t)nread, key, &port)) != 0) {
        if (rc == PULL_ERR_HANDSHAKE)
            l->rx_other_net++;
        else
            l->rx_bad++;
        return;
    }
    if (sodium_memcmp(key, l->n->self.pk, 32) == 0)
        return; /* our own announcement, looped back */
    l->rx_others++;
    if (uv_ip4_name(sin, ip, sizeof(ip)) != 0)
        return;
    snprintf(addr, sizeof(addr), "%s:%u", ip, (unsigned)port);
    lan_learn(l, key, addr, lan_is_loopback(sin->sin_addr.s_addr), now);
}

/* ---- announcing ---- */

static void
lan_build(struct lan *l, uint8_t pkt[LAN_PKT_BYTES], uint16_t port)
{
    memcpy(pkt, LAN_MAGIC, 4);
    pkt[4] = LAN_VERSION;
    pkt[5] = 0;
    be16enc(pkt + 6, port);
    memcpy(pkt + 8, l->net_hash, LAN_NETHASH_BYTES);
    memcpy(pkt + 8 + LAN_NETHASH_BYTES, l->n->self.pk, 32);
}

static int
lan_send_to(struct lan *l, const uint8_t *pkt, const char *ip, uint16_t port)
{
    struct sockaddr_in dst;
    uv_buf_t b = uv_buf_init((char *)pkt, LAN_PKT_BYTES);
    int rc;

    if ((rc = uv_ip4_addr(ip, port, &dst)) != 0)
        return rc;
    rc = uv_udp_try_send(&l->udp, &b, 1, (const struct sockaddr *)&dst);
    if (rc < 0) {
        l->tx_err++;
        return rc;
    }
    l->tx++;
    return 0;
}

static bool
lan_joined(const struct lan *l, uint32_t ip)
{
    size_t i;

    for (i = 0; i < l->njoined; i++)
        if (l->joined[i] == ip)
            return true;
    return false;
}

/* lan_announce: one round: join the group on new interfaces, then send the announcement
 * through every IPv4 interface. Send errors are expected (an interface without a route for
 * multicast, no broadcast route) and only counted. */
static void
lan_announce(struct lan *l)
{
    uv_interface_address_t *ifs = NULL;
    uint8_t pkt[LAN_PKT_BYTES];
    uint16_t lport = node_listen_port(l->n), port = l->n->cfg.lan_port;
    int count = 0, i, ok = 0, rc, last_err = 0;

    if (lport == 0)
        return; /* nothing to announce */
    lan_build(l, pkt, lport);
    if (l->rounds % LAN_REJOIN_ROUNDS == 0)
        l->njoined = 0; /* interfaces come and go: join again (EADDRINUSE if still joined) */
    if ((rc = uv_interface_addresses(&ifs, &count)) != 0)
        count = 0;
    for (i = 0; i < count && i < 4 * LAN_IFACES_MAX; i++) {
        const struct sockaddr_in *a = &ifs[i].address.address4;
        const struct sockaddr_in *m = &ifs[i].netmask.netmask4;
        char ip[INET_ADDRSTRLEN];

        if (a->sin_family != AF_INET || uv_ip4_name(a, ip, sizeof(ip)) != 0)
            continue;
        if (!lan_joined(l, a->sin_addr.s_addr) && l->njoined < LAN_IFACES_MAX) {
            rc = uv_udp_set_membership(&l->udp, LAN_GROUP, ip, UV_JOIN_GROUP);
            if (rc == 0 || rc == UV_EADDRINUSE)
                l->joined[l->njoined++] = a->sin_addr.s_addr;
            else
                log_debug("lan: cannot join %s on %s: %s", LAN_GROUP, ip, uv_strerror(rc));
        }
        if (uv_udp_set_multicast_interface(&l->udp, ip) == 0) {
            if ((rc = lan_send_to(l, pkt, LAN_GROUP, port)) == 0)
                ok++;
            else
                last_err = rc;
        }
        if (!ifs[i].is_internal && m->sin_family == AF_INET &&
            ntohl(m->sin_addr.s_addr) < 0xfffffffeu) {
            struct sockaddr_in bc = *a;
            char bip[INET_ADDRSTRLEN];

            bc.sin_addr.s_addr = a->sin_addr.s_addr | ~m->sin_addr.s_addr;
            if (uv_ip4_name(&bc, bip, sizeof(bip)) == 0) {
                if ((rc = lan_send_to(l, pkt, bip, port)) == 0)
                    ok++;
                else
                    last_err = rc;
            }
        }
    }
    if (count > 0)
        uv_free_interface_addresses(ifs, count);
    if ((rc = lan_send_to(l, pkt, LAN_BROADCAST, port)) == 0)
        ok++;
    if (ok == 0 && !l->warned_send) {
        log_warn("lan: announcements cannot be sent (%s); discovery only listens",
                 uv_strerror(last_err != 0 ? last_err : rc));
        l->warned_send = true;
    }
    l->rounds++;
    log_debug("lan: round %u: sent %d (rx %llu, bad %llu, limited %llu, other network %llu, "
              "learned %llu)",
              l->rounds, ok, (unsigned long long)l->rx, (unsigned long long)l->rx_bad,
              (unsigned long long)l->rx_limited, (unsigned long long)l->rx_other_net,
              (unsigned long long)l->learned);
}

static void
lan_on_timer(uv_timer_t *t)
{
    struct lan *l = t->data;

    if (l->stopping)
        return;
    lan_announce(l);
    lan_schedule(l);
}

/* lan_schedule arms the timer for the next round: quick rounds first, then the regular
 * interval, each jittered so nodes started together don't announce in lockstep. */
static void
lan_schedule(struct lan *l)
{
    uint32_t mean = l->rounds < LAN_QUICK_ROUNDS ? LAN_QUICK_MS : LAN_INTERVAL_MS;
    uint32_t delay = mean - mean / 4 + env_uniform(l->n->env, mean / 2 + 1);

    if (l->rounds == 0)
        delay = 50 + env_uniform(l->n->env, 200); /* the first one right away */
    uv_timer_start(&l->timer, lan_on_timer, delay, 0);
}

/* ---- lifecycle ---- */

void
lan_get_stats(const struct lan *l, struct lan_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (l == NULL)
        return;
    out->running = true;
    out->rx = l->rx;
    out->rx_bad = l->rx_bad;
    out->rx_limited = l->rx_limited;
    out->rx_other_net = l->rx_other_net;
    out->learned = l->learned;
    out->tx = l->tx;
    out->tx_err = l->tx_err;
    out->rx_others = l->rx_others;
}

int
lan_start(struct node *n, struct lan **out)
{
    struct lan *l = NULL;
    struct sockaddr_in any;
    uint16_t port;
    int rc;

    *out = NULL;
    if (!n->cfg.lan)
        return 0;
    port = n->cfg.lan_port != 0 ? n->cfg.lan_port : CONFIG_LAN_PORT_DEFAULT;
    n->cfg.lan_port = port;
    if ((l = calloc(1, sizeof(*l))) == NULL)
        return PULL_ERR_NOMEM;
    l->n = n;
    if (lan_net_hash(n->cfg.network_key, l->net_hash) != 0) {
        free(l);
        return PULL_ERR_CRYPTO;
    }
    if ((rc = uv_timer_init(n->loop, &l->timer)) != 0) {
        free(l);
        return PULL_ERR_NOMEM;
    }
    l->timer.data = l;
    l->open_handles++;
    *out = l; /* from here on, lan_stop/lan_free clean up */
    if ((rc = uv_udp_init(n->loop, &l->udp)) != 0) {
        log_warn("lan: discovery off: cannot create a UDP socket: %s", uv_strerror(rc));
        lan_stop(l);
        return 0;
    }
    l->udp.data = l;
    l->open_handles++;
    uv_ip4_addr("0.0.0.0", port, &any);
    if ((rc = uv_udp_bind(&l->udp, (const struct sockaddr *)&any, UV_UDP_REUSEADDR)) != 0 ||
        (rc = uv_udp_set_broadcast(&l->udp, 1)) != 0 ||
        (rc = uv_udp_set_multicast_loop(&l->udp, 1)) != 0 ||
        (rc = uv_udp_set_multicast_ttl(&l->udp, 1)) != 0 ||
        (rc = uv_udp_recv_start(&l->udp, lan_alloc, lan_on_recv)) != 0) {
        log_warn("lan: discovery off: cannot use UDP port %u: %s", (unsigned)port, uv_strerror(rc));
        lan_stop(l);
        return 0;
    }
    log_info("lan: discovery on UDP port %u (group %s and broadcast)", (unsigned)port, LAN_GROUP);
    lan_schedule(l);
    return 0;
}

void
lan_stop(struct lan *l)
{
    if (l == NULL || l->stopping)
        return;
    l->stopping = true;
    if (l->udp.data == l && !uv_is_closing((uv_handle_t *)&l->udp))
        uv_udp_recv_stop(&l->udp);
    lan_close_all(l);
}

void
lan_free(struct lan *l)
{
    if (l == NULL)
        return;
    l->stopping = true;
    lan_close_all(l);
    if (l->open_handles > 0)
        l->free_on_close = true; /* the close callbacks run on the next loop turn */
    else
        free(l);
}
