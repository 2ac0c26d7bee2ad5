/*
 * ctl_doctor: the control room of `pull doctor` - checks of the node, each with what to do
 * when it fails (proto/ctl.h, "doctor").
 *
 * A doctor is a stream call: one reply per check as soon as it is known, then a final one
 * with the totals. The checks that need nothing but a look (store, disk, LAN, port mapping,
 * peers) answer at once; those that go on the network run together and answer as they end,
 * all within the handshake timeout and a little more:
 *   listen     a TCP connection from this host to each address the node advertises (up to
 *              DOC_ADDRS): does what others are told to dial accept connections?
 *   bootstrap  each bootstrap line: connected already, or a diagnostic dial (node_probe:
 *              handshake and HELLO, then goodbye; it never becomes a peer) that says ok,
 *              refused, timeout, wrong id, other network key ... as net.h tells them apart;
 *   peer       the same for a sample of the other known peers (DOC_SAMPLE);
 *   clock      once the dials are in: this node's clock against its peers' (the median of
 *              their HELLO clocks, connected peers and probes).
 * Each reply is {"check", "ok", "status": "ok"|"warn"|"fail", "detail", "hint"?, ...}; a
 * warning does not fail the doctor (a known peer gone offline, LAN discovery that hears
 * nobody). The final reply is {"checks", "failed", "warnings"}.
 *
 * Lifetimes. The doctor's timer is embedded in it, so the doctor is freed in the timer's
 * close callback. The self-connections are freed by their own close callbacks and let go
 * of the doctor (d = NULL) when it ends first; probes are cancelled (node_probe_cancel).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/ctl_int.h"
#include "daemon/lan.h"
#include "daemon/nat.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/store.h"

#ifndef PULL_VERSION
#define PULL_VERSION "0.0.0"
#endif

#define DOC_ADDRS 3            /* own addresses tried */
#define DOC_SAMPLE 4           /* known peers (besides the bootstrap lines) checked */
#define DOC_PROBES 40          /* bootstrap lines (CONFIG_BOOTSTRAP_MAX) + the sample */
#define DOC_GRACE_MS 3000      /* beyond the handshake timeout */
#define DOC_SKEW_FAIL_MS 60000 /* this node's clock off its peers' by more: fail */
#define DOC_DISK_FAIL (64u << 20)
#define DOC_DISK_WARN (1024u << 20)

struct doctor;

/* A TCP connection from this host to one of the node's own addresses. */
struct doc_self {
    uv_tcp_t tcp;
    uv_connect_t req;
    struct doctor *d; /* NULL once the doctor ended */
    char addr[NODE_ADDR_MAX];
};

/* A bootstrap line or a known peer being dialed. */
struct doc_probe {
    struct doctor *d;
    uint8_t key[32];
    char addr[NODE_ADDR_MAX];
    bool bootstrap;
    bool done;
};

struct doctor {
    struct ctl_call *call;
    struct node *n;
    uv_timer_t timer;
    unsigned pending; /* self-connections and probes not answered yet */
    unsigned checks, failed, warnings;
    bool ended;
    struct doc_self *selfs[DOC_ADDRS];
    unsigned nselfs;
    struct doc_probe probes[DOC_PROBES];
    unsigned nprobes;
    int64_t skews[DOC_PROBES + 64]; /* peers' clocks minus ours, ms */
    unsigned nskews;
    char skew_far[160]; /* peers whose clock is far off, for the warning */
};

enum doc_status { DOC_OK, DOC_WARN, DOC_FAIL };

/* emit sends one check's reply; p (may be NULL) is the peer it is about, with result the
 * outcome of its dial ("ok", "refused", "wrong_id", ...). Nothing once the doctor ended
 * (its client went away). */
static void __attribute__((format(printf, 7, 8)))
emit(struct doctor *d, const char *check, enum doc_status st, const char *hint,
     const struct doc_probe *p, const char *result, const char *fmt, ...)
{
    static const char *const names[] = {"ok", "warn", "fail"};
    char detail[CTL_MSG_MAX];
    struct mp_open m;
    va_list ap;

    if (d->ended)
        return;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    d->checks++;
    d->failed += st == DOC_FAIL;
    d->warnings += st == DOC_WARN;
    mp_open_map(&m, ctl_begin(d->call, true));
    mp_kv_str(&m, "check", check);
    mp_kv_bool(&m, "ok", st != DOC_FAIL);
    mp_kv_str(&m, "status", names[st]);
    mp_kv_str(&m, "detail", detail);
    if (hint != NULL && hint[0] != '\0')
        mp_kv_str(&m, "hint", hint);
    if (p != NULL) {
        ctl_kv_id(&m, "peer", p->key);
        mp_kv_str(&m, "address", p->addr);
        mp_kv_str(&m, "result", result != NULL ? result : "other");
    }
    mp_close(&m);
    ctl_send(d->call);
}

/* ---------------------------------------------------------------- the checks at once */

static void
check_pulld(struct doctor *d)
{
    char up[64];
    uint64_t s = (node_now_ms(d->n) - d->n->started_ms) / 1000;

    if (s < 120)
        snprintf(up, sizeof(up), "%llu s", (unsigned long long)s);
    else if (s < 7200)
        snprintf(up, sizeof(up), "%llu min", (unsigned long long)(s / 60));
    else
        snprintf(up, sizeof(up), "%llu h", (unsigned long long)(s / 3600));
    emit(d, "pulld", DOC_OK, NULL, NULL, NULL, "pulld %s running for %s on %s (network %s)",
         PULL_VERSION, up, d->n->cfg.data_dir,
         d->n->cfg.network_public ? "public" : "private: its own --network-key");
}

static void
check_store(struct doctor *d)
{
    const struct node_counters *k = &d->n->counters;
    struct store_stats st;
    uint64_t pct;

    memset(&st, 0, sizeof(st));
    if (store_stats(d->n->store, &st) != 0) {
        emit(d, "store", DOC_FAIL, "stop pulld and look at DATA_DIR/store (see pulld(8))", NULL,
             NULL, "the store does not answer");
        return;
    }
    pct = st.map_max > 0 ? st.map_used * 100 / st.map_max : 0;
    if (k->commit_errors > 0)
        emit(d, "store", DOC_FAIL,
             "free disk space; pulld retries its writes (its log says why they failed)", NULL, NULL,
             "%llu write transaction(s) failed since start; %llu records stored",
             (unsigned long long)k->commit_errors, (unsigned long long)st.records);
    else if (pct >= 90)
        emit(d, "store", DOC_FAIL, "raise the store's map size or remove records", NULL, NULL,
             "the store is %llu%% full (%llu of %llu MiB)", (unsigned long long)pct,
             (unsigned long long)(st.map_used >> 20), (unsigned long long)(st.map_max >> 20));
    else
        emit(d, "store", DOC_OK, NULL, NULL, NULL,
             "%llu records, %llu MiB of at most %llu MiB used, no failed write",
             (unsigned long long)st.records, (unsigned long long)(st.map_used >> 20),
             (unsigned long long)(st.map_max >> 20));
}

static void
check_disk(struct doctor *d)
{
    struct statvfs v;
    uint64_t avail, total;

    if (statvfs(d->n->cfg.data_dir, &v) != 0) {
        emit(d, "disk", DOC_WARN, NULL, NULL, NULL, "cannot tell the free space of %s: %s",
             d->n->cfg.data_dir, strerror(errno));
        return;
    }
    avail = (uint64_t)v.f_bavail * v.f_frsize;
    total = (uint64_t)v.f_blocks * v.f_frsize;
    if (avail < DOC_DISK_FAIL)
        emit(d, "disk", DOC_FAIL, "free some space on that disk: pulld cannot store more", NULL,
             NULL, "%llu MiB free on the disk of %s", (unsigned long long)(avail >> 20),
             d->n->cfg.data_dir);
    else if (avail < DOC_DISK_WARN || (total > 0 && avail * 20 < total))
        emit(d, "disk", DOC_WARN, "free some space on that disk soon", NULL, NULL,
             "only %llu MiB free on the disk of %s", (unsigned long long)(avail >> 20),
             d->n->cfg.data_dir);
    else
        emit(d, "disk", DOC_OK, NULL, NULL, NULL, "%llu MiB free on the disk of %s",
             (unsigned long long)(avail >> 20), d->n->cfg.data_dir);
}

static void
check_lan(struct doctor *d)
{
    const struct lan *lan = d->call->srv->svc.lan;
    struct lan_stats ls;

    if (!d->n->cfg.lan) {
        emit(d, "lan", DOC_OK, NULL, NULL, NULL, "LAN discovery is off (--no-lan, or lan off)");
        return;
    }
    lan_get_stats(lan, &ls);
    if (!ls.running) {
        emit(d, "lan", DOC_FAIL,
             "another program may hold the UDP port: choose another with --lan-port, or turn "
             "discovery off (--no-lan)",
             NULL, NULL, "LAN discovery could not open its UDP port %u (the start-up log says why)",
             (unsigned)d->n->cfg.lan_port);
        return;
    }
    if (ls.tx == 0 && ls.tx_err > 0) {
        emit(d, "lan", DOC_FAIL, "check this host's network interfaces and firewall", NULL, NULL,
             "LAN discovery cannot send its announcements (%llu failed)",
             (unsigned long long)ls.tx_err);
        return;
    }
    if (ls.rx_others > 0)
        emit(d, "lan", DOC_OK, NULL, NULL, NULL,
             "sending (%llu announcements) and hearing other nodes (%llu announcements, %llu "
             "peers learned)",
             (unsigned long long)ls.tx, (unsigned long long)ls.rx_others,
             (unsigned long long)ls.learned);
    else if (ls.rx_other_net > 0)
        emit(d, "lan", DOC_WARN, "use the same --network-key on the nodes that should meet", NULL,
             NULL,
             "sending (%llu announcements); heard only nodes on another network key (%llu "
             "announcements)",
             (unsigned long long)ls.tx, (unsigned long long)ls.rx_other_net);
    else
        emit(d, "lan", DOC_WARN,
             "none may run on this LAN, or the network filters multicast and broadcast (UDP "
             "port of --lan-port): connect with pull connect ID@HOST:PORT",
             NULL, NULL, "sending (%llu announcements to UDP port %u), heard no other node yet",
             (unsigned long long)ls.tx, (unsigned)d->n->cfg.lan_port);
}

/* check_nat: can peers outside this node's network dial it (a port mapped on the router,
 * a public address, or a peer from outside that did)? Never a failure: a node that can't be
 * dialed still gets everything through the peers it dials. */
static void
check_nat(struct doctor *d)
{
    struct nat_info ni;
    bool open = node_reach_open(d->n);
    char hint[200];

    nat_get_info(d->call->srv->svc.nat, d->n, &ni);
    snprintf(hint, sizeof(hint),
             "turn on UPnP or NAT-PMP on the router, or forward TCP port %u to this host there; "
             "records still arrive through the peers this node dials",
             (unsigned)node_listen_port(d->n));
    if (ni.method[0] != '\0')
        emit(d, "nat", DOC_OK, NULL, NULL, NULL,
             "the router maps %s:%u to this node (%s, lease %u s): peers outside can dial it",
             ni.external, (unsigned)ni.mapped_port, ni.method, (unsigned)ni.lease_s);
    else if (open)
        emit(d, "nat", DOC_OK, NULL, NULL, NULL,
             "no port mapping (%s); peers outside can dial this node (a public address, or one "
             "of them did)",
             ni.error[0] != '\0' ? ni.error : ni.mode);
    else if (strcmp(ni.mode, "off") == 0)
        emit(d, "nat", DOC_OK, NULL, NULL, NULL,
             "port mapping off (--nat off): only peers of this node's own network can dial it");
    else if (ni.busy)
        emit(d, "nat", DOC_OK, NULL, NULL, NULL, "asking the router for a port mapping (%s)",
             ni.mode);
    else if (strncmp(ni.error, "not needed", 10) == 0)
        emit(d, "nat", DOC_OK, NULL, NULL, NULL, "no port mapping: %s", ni.error);
    else
        emit(d, "nat", DOC_WARN, hint, NULL, NULL,
             "only peers of this node's own network can dial it: no port mapping (%s)",
             ni.error[0] != '\0' ? ni.error : "not tried yet");
}

/* check_peers: is the node alone? */
static void
check_peers(struct doctor *d)
{
    size_t conn = node_connected_count(d->n), known = node_peer_count(d->n);
    size_t boot = node_bootstrap_count(d->n);

    if (conn > 0)
        emit(d, "peers", DOC_OK, NULL, NULL, NULL, "%zu connected, %zu known", conn, known);
    else if (boot > 0)
        emit(d, "peers", DOC_FAIL, "see the bootstrap checks below", NULL, NULL,
             "alone: no peer connected (%zu known); records neither arrive nor spread", known);
    else
        emit(d, "peers", DOC_FAIL,
             "connect to a node: pull connect ID@HOST:PORT (its `pull id` prints it), or add "
             "bootstrap lines (pulld --bootstrap, DATA_DIR/config)",
             NULL, NULL, "alone: no peer connected, no bootstrap line, %zu known", known);
}

/* ---------------------------------------------------------------- the end */

static void
on_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

/* doc_release lets go of everything still running and closes the timer (which frees d). */
static void
doc_release(struct doctor *d)
{
    d->ended = true;
    for (unsigned i = 0; i < d->nprobes; i++)
        if (!d->probes[i].done)
            node_probe_cancel(d->n, &d->probes[i]);
    for (unsigned i = 0; i < d->nselfs; i++) {
        if (d->selfs[i] != NULL) {
            d->selfs[i]->d = NULL;
            if (!uv_is_closing((uv_handle_t *)&d->selfs[i]->tcp))
                uv_close((uv_handle_t *)&d->selfs[i]->tcp, (uv_close_cb)free);
        }
    }
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static void
check_clock(struct doctor *d)
{
    int64_t med;
    uint64_t a;

    if (d->nskews == 0) {
        emit(d, "clock", DOC_OK, NULL, NULL, NULL, "no peer to compare this node's clock with");
        return;
    }
    qsort(d->skews, d->nskews, sizeof(d->skews[0]), cmp_i64);
    med = d->skews[d->nskews / 2];
    if (d->nskews % 2 == 0) {
        /* two in the middle: the one closer to this clock (one peer of two off is that
         * peer's problem until a third says otherwise) */
        int64_t lo = d->skews[d->nskews / 2 - 1];
        if ((lo < 0 ? -lo : lo) < (med < 0 ? -med : med))
            med = lo;
    }
    a = (uint64_t)(med < 0 ? -med : med);
    if (a > DOC_SKEW_FAIL_MS)
        emit(d, "clock", DOC_FAIL,
             "set this host's clock (timedatectl set-ntp true): records it signs look as if "
             "made at the wrong time, and peers refuse them beyond 10 min",
             NULL, NULL, "this node's clock is %llu s %s its peers' (median of %u)",
             (unsigned long long)(a / 1000), med > 0 ? "behind" : "ahead of", d->nskews);
    else if (d->skew_far[0] != '\0')
        emit(d, "clock", DOC_WARN, "their owners should set their clocks", NULL, NULL,
             "within %llu ms of its peers' (median of %u); clocks far off: %s",
             (unsigned long long)a, d->nskews, d->skew_far);
    else
        emit(d, "clock", DOC_OK, NULL, NULL, NULL, "within %llu ms of its peers' (median of %u)",
             (unsigned long long)a, d->nskews);
}

/* doc_finish sends the last checks and the totals once nothing is pending. */
static void
doc_finish(struct doctor *d)
{
    struct ctl_call *call = d->call;
    struct mp_open m;

    if (d->ended || d->pending > 0)
        return;
    check_clock(d);
    mp_open_map(&m, ctl_begin(call, false));
    mp_kv_uint(&m, "checks", d->checks);
    mp_kv_uint(&m, "failed", d->failed);
    mp_kv_uint(&m, "warnings", d->warnings);
    mp_close(&m);
    ctl_send(call); /* the final reply unlinks the stream */
    doc_release(d);
    ctl_done(call, 0);
}

/* add_skew notes a peer's clock (ms, its minus ours). */
static void
add_skew(struct doctor *d, const uint8_t key[32], int64_t skew)
{
    char id[IDENT_SHORT_LEN + 1];
    size_t l = strlen(d->skew_far);

    if (d->nskews < sizeof(d->skews) / sizeof(d->skews[0]))
        d->skews[d->nskews++] = skew;
    if ((skew > DOC_SKEW_FAIL_MS || skew < -DOC_SKEW_FAIL_MS) && l + 40 < sizeof(d->skew_far)) {
        ident_short(key, id);
        snprintf(d->skew_far + l, sizeof(d->skew_far) - l, "%s%s %+lld s", l > 0 ? ", " : "", id,
                 (long long)(skew / 1000));
    }
}

/* ---------------------------------------------------------------- listen: own addresses */

static void
on_self_connect(uv_connect_t *req, int status)
{
    struct doc_self *sc = req->data;
    struct doctor *d = sc->d;

    if (!uv_is_closing((uv_handle_t *)&sc->tcp))
        uv_close((uv_handle_t *)&sc->tcp, (uv_close_cb)free);
    if (d == NULL || status == UV_ECANCELED)
        return;
    for (unsigned i = 0; i < d->nselfs; i++)
        if (d->selfs[i] == sc)
            d->selfs[i] = NULL;
    if (status == 0)
        emit(d, "listen", DOC_OK, NULL, NULL, NULL, "%s accepts connections from this host",
             sc->addr);
    else
        emit(d, "listen", DOC_FAIL,
             "a firewall on this host may block it; or give pulld --listen an address of this "
             "host",
             NULL, NULL, "this host cannot connect to %s, the address others are told to dial: %s",
             sc->addr, uv_strerror(status));
    d->pending--;
    doc_finish(d);
}

static void
start_listen_checks(struct doctor *d)
{
    char addrs[DOC_ADDRS][NODE_ADDR_MAX], mapped[80] = "";
    size_t na = node_addresses(d->n, addrs, DOC_ADDRS);
    struct nat_info ni;

    /* the router's side of a port mapping: most routers don't loop a connection from the
     * LAN back to their own external address, so this host can't test it (the nat check
     * tells of the mapping) */
    nat_get_info(d->call->srv->svc.nat, d->n, &ni);
    if (ni.method[0] != '\0')
        snprintf(mapped, sizeof(mapped), "%s:%u", ni.external, (unsigned)ni.mapped_port);
    if (na == 0) {
        emit(d, "listen", DOC_FAIL, "restart pulld (see its log)", NULL, NULL,
             "the node has no address to be dialed at");
        return;
    }
    for (size_t i = 0; i < na; i++) {
        const char *at = strchr(addrs[i], '@');
        char host[CONFIG_ADDR_MAX];
        struct sockaddr_storage ss;
        struct doc_self *sc;
        uint16_t port;
        int rc;

        at = at != NULL ? at + 1 : addrs[i];
        if (mapped[0] != '\0' && strcmp(at, mapped) == 0)
            continue;
        if (config_split_hostport(at, host, sizeof(host), &port) != 0 ||
            (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
             uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0))
            continue;
        if ((sc = calloc(1, sizeof(*sc))) == NULL)
            break;
        sc->d = d;
        snprintf(sc->addr, sizeof(sc->addr), "%.300s", at);
        uv_tcp_init(d->n->loop, &sc->tcp);
        sc->req.data = sc;
        if ((rc = uv_tcp_connect(&sc->req, &sc->tcp, (struct sockaddr *)&ss, on_self_connect)) !=
            0) {
            uv_close((uv_handle_t *)&sc->tcp, (uv_close_cb)free);
            emit(d, "listen", DOC_FAIL, "check this host's network", NULL, NULL,
                 "cannot connect to %s: %s", at, uv_strerror(rc));
            continue;
        }
        d->selfs[d->nselfs++] = sc;
        d->pending++;
    }
}

/* ---------------------------------------------------------------- bootstrap and peers */

/* hint_for: what to do about a dial that failed this way. */
static const char *
hint_for(const char *kind, bool bootstrap)
{
    if (kind == NULL)
        return NULL;
    if (strcmp(kind, "refused") == 0)
        return bootstrap ? "check the port in the bootstrap line, and that pulld runs there"
                         : "it may be offline; nothing to do unless you expect it up";
    if (strcmp(kind, "timeout") == 0)
        return "check that the host is up and that its firewall lets the TCP port in";
    if (strcmp(kind, "cannot_resolve") == 0)
        return "check the host name in the address";
    if (strcmp(kind, "unreachable") == 0)
        return "check the address and this host's network";
    if (strcmp(kind, "other_network") == 0)
        return "both nodes need the same --network-key (or none: the public network)";
    if (strcmp(kind, "wrong_id") == 0)
        return "use the id that `pull id` prints on that node";
    if (strcmp(kind, "not_pull") == 0)
        return "check the port: another program listens there";
    if (strcmp(kind, "busy") == 0)
        return "it has too many connections: it is tried again later";
    return NULL;
}

/* emit_probe sends the check of one bootstrap line or known peer. */
static void
emit_probe(struct doctor *d, const struct doc_probe *p, const char *kind, enum doc_status st,
           const char *hint, const char *detail)
{
    char id[IDENT_SHORT_LEN + 1];

    ident_short(p->key, id);
    emit(d, p->bootstrap ? "bootstrap" : "peer", st, hint, p, kind, "%s@%s: %s", id, p->addr,
         detail);
}

static void
on_probe(void *arg, const struct node_probe_result *r)
{
    struct doc_probe *p = arg;
    struct doctor *d = p->d;
    char detail[NODE_REASON_MAX + 64];

    p->done = true;
    if (r->err == 0) {
        snprintf(detail, sizeof(detail), "ok, answered in %u ms (%.64s)", (unsigned)r->rtt_ms,
                 r->agent);
        if (r->has_skew)
            add_skew(d, p->key, r->skew_ms);
        emit_probe(d, p, "ok", DOC_OK, NULL, detail);
    } else {
        /* a known peer may just be offline; a bootstrap line is the configuration's */
        emit_probe(d, p, r->kind != NULL ? r->kind : "other", p->bootstrap ? DOC_FAIL : DOC_WARN,
                   hint_for(r->kind, p->bootstrap), r->reason);
    }
    d->pending--;
    doc_finish(d);
}

/* start_peer_check reports a connected peer at once, or dials it. */
static void
start_peer_check(struct doctor *d, const struct node_peer_info *pi)
{
    struct doc_probe *p;
    char detail[NODE_REASON_MAX];
    int rc;

    if (d->nprobes >= DOC_PROBES)
        return;
    p = &d->probes[d->nprobes++];
    memset(p, 0, sizeof(*p));
    p->d = d;
    p->done = true;
    memcpy(p->key, pi->key, 32);
    snprintf(p->addr, sizeof(p->addr), "%s", pi->addr);
    p->bootstrap = pi->bootstrap;
    if (pi->connected) {
        snprintf(detail, sizeof(detail), "ok, connected (%s)",
                 pi->inbound ? "it dialed" : "dialed");
        emit_probe(d, p, "ok", DOC_OK, NULL, detail);
        return;
    }
    p->done = false;
    rc = node_probe(d->n, p->key, p->addr, on_probe, p);
    if (rc == 0) {
        d->pending++;
        return;
    }
    p->done = true;
    if (rc == PULL_ERR_EXISTS)
        emit_probe(d, p, "ok", DOC_OK, NULL, "being dialed right now (see pull peers)");
    else
        emit_probe(d, p, "other", p->bootstrap ? DOC_FAIL : DOC_WARN,
                   rc == PULL_ERR_INVAL ? "fix the address (HOST:PORT)" : NULL,
                   rc == PULL_ERR_INVAL ? "not a dialable address" : pull_strerror(rc));
}

static void
start_peer_checks(struct doctor *d)
{
    size_t np = node_peer_count(d->n);
    struct node_peer_info pi;
    unsigned sample = 0;

    /* node_peer_at's indices hold until the loop runs: read the rows first */
    for (size_t i = 0; i < np; i++) {
        if (node_peer_at(d->n, i, &pi) != 0)
            continue;
        if (pi.connected && pi.has_skew)
            add_skew(d, pi.key, pi.skew_ms);
    }
    for (size_t i = 0; i < np && !d->ended; i++) {
        if (node_peer_at(d->n, i, &pi) != 0 || !pi.bootstrap)
            continue;
        start_peer_check(d, &pi);
    }
    for (size_t i = 0; i < np && sample < DOC_SAMPLE && !d->ended; i++) {
        if (node_peer_at(d->n, i, &pi) != 0 || pi.bootstrap || pi.addr[0] == '\0')
            continue;
        if (!pi.connected && strcmp(pi.state, "passive") != 0 && strcmp(pi.state, "known") != 0 &&
            strcmp(pi.state, "unreachable") != 0)
            continue; /* being dialed or pending: its own dial tells */
        start_peer_check(d, &pi);
        sample++;
    }
}

/* ---------------------------------------------------------------- the stream */

static void
on_deadline(uv_timer_t *t)
{
    struct doctor *d = t->data;

    for (unsigned i = 0; i < d->nprobes; i++) {
        struct doc_probe *p = &d->probes[i];
        if (p->done)
            continue;
        node_probe_cancel(d->n, p);
        p->done = true;
        emit_probe(d, p, "timeout", p->bootstrap ? DOC_FAIL : DOC_WARN,
                   hint_for("timeout", p->bootstrap), "no answer in time");
        d->pending--;
    }
    for (unsigned i = 0; i < d->nselfs; i++) {
        struct doc_self *sc = d->selfs[i];
        if (sc == NULL)
            continue;
        d->selfs[i] = NULL;
        sc->d = NULL;
        emit(d, "listen", DOC_FAIL, "a firewall on this host may drop it", NULL, NULL,
             "this host got no answer from %s in time", sc->addr);
        d->pending--;
        if (!uv_is_closing((uv_handle_t *)&sc->tcp))
            uv_close((uv_handle_t *)&sc->tcp, (uv_close_cb)free);
    }
    d->pending = 0;
    doc_finish(d);
}

static void
doctor_stop(struct ctl_call *call, bool server_stopping)
{
    struct doctor *d = call->arg;

    call->arg = NULL;
    doc_release(d);
    ctl_done(call, server_stopping ? ctl_fail(call, PULL_ERR_CLOSED, "pulld is stopping") : 0);
}

static const struct ctl_stream_ops doctor_ops = {NULL, doctor_stop};

int
ctl_h_doctor(struct ctl_call *call, const struct ctl_request *req)
{
    struct node *n = call->srv->n;
    struct doctor *d;
    (void)req;

    if (ctl_streaming(call, &doctor_ops))
        return ctl_fail(call, PULL_ERR_STATE, "a doctor is already running here");
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return PULL_ERR_NOMEM;
    d->n = n;
    uv_timer_init(n->loop, &d->timer);
    d->timer.data = d;
    d->call = ctl_stream(call, &doctor_ops, d, 0);
    d->pending = 1; /* until every check started */
    check_pulld(d);
    check_store(d);
    check_disk(d);
    check_lan(d);
    check_nat(d);
    check_peers(d);
    if (!d->ended)
        start_listen_checks(d);
    if (!d->ended)
        start_peer_checks(d);
    if (d->ended)
        return 0; /* the client went away: doctor_stop let go of everything */
    uv_timer_start(&d->timer, on_deadline, n->cfg.limits.handshake_timeout_ms + DOC_GRACE_MS, 0);
    d->pending--;
    doc_finish(d);
    return 0;
}
