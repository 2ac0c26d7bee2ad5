/*
 * ctl_status: the control room of the node itself - "id", "status", "peers", "connect"
 * (proto/ctl.h). The status counters come from NODE_COUNTERS and the limits from config's
 * table: neither is listed here.
 */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/ctl_int.h"
#include "daemon/people.h"
#include "daemon/dyads.h"
#include "daemon/invites.h"
#include "daemon/lan.h"
#include "daemon/nat.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/search.h"
#include "lib/store.h"

#ifndef PULL_VERSION
#define PULL_VERSION "0.0.0"
#endif

#define CTL_ADDRS_MAX 16

int
ctl_h_id(struct ctl_call *call, const struct ctl_request *req)
{
    struct node *n = call->srv->n;
    char(*addrs)[NODE_ADDR_MAX] = calloc(CTL_ADDRS_MAX, NODE_ADDR_MAX);
    struct mp_open m, list;
    size_t na;
    (void)req;

    if (addrs == NULL)
        return PULL_ERR_NOMEM;
    na = node_addresses(n, addrs, CTL_ADDRS_MAX);
    mp_open_map(&m, ctl_begin(call, false));
    ctl_kv_id(&m, "id", n->self.pk);
    mp_key(&m, "addresses");
    mp_open_array(&list, m.pk);
    for (size_t i = 0; i < na; i++)
        mp_pack_cstr(mp_item(&list), addrs[i]);
    mp_close(&list);
    mp_close(&m);
    ctl_send(call);
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

/* listen_address writes the listen address with the port actually bound. */
static void
listen_address(struct node *n, char *out, size_t len)
{
    char host[CONFIG_ADDR_MAX];
    uint16_t port;

    if (config_split_hostport(n->cfg.listen, host, sizeof(host), &port) != 0)
        snprintf(out, len, "%s", n->cfg.listen);
    else if (strchr(host, ':') != NULL)
        snprintf(out, len, "[%.200s]:%u", host, (unsigned)node_listen_port(n));
    else
        snprintf(out, len, "%.200s:%u", host, (unsigned)node_listen_port(n));
}

/* status "store": what the store holds. */
static void
pack_store(struct mp_open *parent, const struct store_stats *st)
{
    struct mp_open m;

    mp_key(parent, "store");
    mp_open_map(&m, parent->pk);
    mp_kv_uint(&m, "records", st->records);
    mp_kv_uint(&m, "offers", st->by_kind[RECORD_OFFER]);
    mp_kv_uint(&m, "needs", st->by_kind[RECORD_NEED]);
    mp_kv_uint(&m, "tombstones", st->by_kind[RECORD_WITHDRAWN]);
    mp_kv_uint(&m, "bytes", st->bytes);
    mp_kv_uint(&m, "map_size", st->map_size);
    mp_kv_uint(&m, "map_used", st->map_used);
    mp_kv_uint(&m, "map_max", st->map_max);
    mp_close(&m);
}

/* status "lan": LAN discovery's counters. */
static void
pack_lan(struct mp_open *parent, const struct lan *lan)
{
    struct lan_stats ls;
    struct mp_open m;

    lan_get_stats(lan, &ls);
    mp_key(parent, "lan");
    mp_open_map(&m, parent->pk);
    mp_kv_bool(&m, "running", ls.running);
    mp_kv_uint(&m, "rx", ls.rx);
    mp_kv_uint(&m, "rx_bad", ls.rx_bad);
    mp_kv_uint(&m, "rx_limited", ls.rx_limited);
    mp_kv_uint(&m, "rx_other_net", ls.rx_other_net);
    mp_kv_uint(&m, "rx_others", ls.rx_others);
    mp_kv_uint(&m, "learned", ls.learned);
    mp_kv_uint(&m, "tx", ls.tx);
    mp_kv_uint(&m, "tx_err", ls.tx_err);
    mp_close(&m);
}

/* status "nat": the port mapping on the router, and whether peers can dial this node. */
static void
pack_nat(struct mp_open *parent, struct node *n, const struct nat *nat)
{
    struct nat_info ni;
    struct mp_open m;

    nat_get_info(nat, n, &ni);
    mp_key(parent, "nat");
    mp_open_map(&m, parent->pk);
    mp_kv_str(&m, "mode", ni.mode);
    mp_kv_str(&m, "method", ni.method);
    mp_kv_str(&m, "external", ni.external);
    mp_kv_uint(&m, "mapped_port", ni.mapped_port);
    mp_kv_uint(&m, "lease_s", ni.lease_s);
    mp_kv_uint(&m, "mapped_ms", ni.mapped_ms);
    mp_kv_uint(&m, "attempts", ni.attempts);
    mp_kv_bool(&m, "busy", ni.busy);
    mp_kv_str(&m, "error", ni.error);
    mp_kv_str(&m, "reach", node_reach_open(n) ? "open" : "local");
    mp_close(&m);
}

/* status "dyads": my completed dyads (from the attestation records stored here) and the dyad
 * service's counters. */
static void
pack_dyads(struct mp_open *parent, struct node *n, struct dyads *dy)
{
    uint32_t done = 0, peers = 0;
    struct dyads_stats ds;
    struct mp_open m;

    (void)dyads_author_stats(dy, n->self.pk, &done, &peers);
    memset(&ds, 0, sizeof(ds));
    dyads_get_stats(dy, &ds);
    mp_key(parent, "dyads");
    mp_open_map(&m, parent->pk);
    mp_kv_uint(&m, "completed", done);
    mp_kv_uint(&m, "counterparts", peers);
    /* "completed" above counts attestations, so the service's own count of completed
     * dyads it holds is "held_completed" */
    mp_kv_uint(&m, "held", ds.dyads);
    mp_kv_uint(&m, "held_open", ds.open);
    mp_kv_uint(&m, "held_completed", ds.completed);
    mp_kv_uint(&m, "msgs_sent", ds.msgs_sent);
    mp_kv_uint(&m, "msgs_applied", ds.msgs_applied);
    mp_kv_uint(&m, "msgs_held", ds.msgs_held);
    mp_kv_uint(&m, "msgs_refused", ds.msgs_refused);
    mp_kv_uint(&m, "mail_in", ds.mail_in);
    mp_kv_uint(&m, "mail_relayed", ds.mail_relayed);
    mp_kv_uint(&m, "mail_refused", ds.mail_refused);
    mp_kv_uint(&m, "mail_bad", ds.mail_bad);
    mp_kv_uint(&m, "mail_swept", ds.mail_swept);
    mp_kv_uint(&m, "mail_held", ds.mail_held);
    mp_kv_uint(&m, "attestations", ds.attestations);
    mp_kv_uint(&m, "proposals_capped", ds.prop_capped);
    mp_kv_uint(&m, "gc_deleted", ds.gc_deleted);
    mp_close(&m);
}

/* "people": what daemon/people.h knows (names, petnames, trust). */
static void
pack_people(struct mp_open *m, struct people *p)
{
    struct people_stats st;
    struct mp_open sub;

    people_get_stats(p, &st);
    mp_key(m, "people");
    mp_open_map(&sub, m->pk);
    mp_kv_uint(&sub, "named", st.names);
    mp_kv_uint(&sub, "petnames", st.petnames);
    mp_kv_uint(&sub, "profiles", st.profiles);
    mp_kv_uint(&sub, "trusted", st.trusted);
    mp_kv_uint(&sub, "evidence", st.evidence);
    mp_kv_uint(&sub, "attestations_counted", st.attest_ok);
    mp_kv_uint(&sub, "attestations_refused", st.attest_bad);
    mp_kv_uint(&sub, "attestations_waiting", st.pending);
    mp_kv_uint(&sub, "attestations_dropped", st.attest_dropped);
    mp_kv_uint(&sub, "handles", st.handles);
    mp_close(&sub);
}

/* What `pull status` says of my own records: live offers and needs, my profile's name. */
struct mine {
    struct record rec;
    uint64_t now_s, profile_created;
    uint32_t offers, needs;
    char name[RECORD_TITLE_MAX + 1];
};

static int
mine_visit(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *p, size_t len)
{
    struct mine *m = ctx;
    struct envelope e;
    (void)id;

    if (ctl_decode_env(p, len, &e, &m->rec) != 0 || m->rec.expires <= m->now_s)
        return 0;
    m->offers += m->rec.kind == RECORD_OFFER;
    m->needs += m->rec.kind == RECORD_NEED;
    if (m->rec.kind == RECORD_PROFILE && m->rec.created >= m->profile_created) {
        m->profile_created = m->rec.created;
        snprintf(m->name, sizeof(m->name), "%s", m->rec.title);
    }
    return 0;
}

/* The warnings `pull status` shows (and `pull doctor` explains). */
#define STATUS_WARN_MAX 8

struct warnings {
    struct mp_open list;
    unsigned n;
};

static void __attribute__((format(printf, 2, 3))) warn_add(struct warnings *w, const char *fmt, ...)
{
    char line[256];
    va_list ap;

    if (w->n >= STATUS_WARN_MAX)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    mp_pack_cstr(mp_item(&w->list), line);
    w->n++;
}

/* pack_warnings: what is wrong now, one short line each. */
static void
pack_warnings(struct mp_open *parent, struct node *n, const struct lan *lan)
{
    size_t np = node_peer_count(n), connected = node_connected_count(n);
    struct node_peer_info p;
    struct lan_stats ls;
    struct warnings w;
    char id[IDENT_SHORT_LEN + 1];
    int64_t far = 0;
    unsigned nfar = 0, nskew = 0;

    mp_key(parent, "warnings");
    mp_open_array(&w.list, parent->pk);
    w.n = 0;
    if (connected == 0)
        warn_add(&w, "no peer connected: this node neither gets nor spreads records");
    for (size_t i = 0; i < np; i++) {
        if (node_peer_at(n, i, &p) != 0)
            continue;
        if (p.connected && p.has_skew) {
            nskew++;
            if (p.skew_ms > 60000 || p.skew_ms < -60000) {
                nfar++;
                far = p.skew_ms;
            }
        }
        if (p.bootstrap && !p.connected && p.last_error[0] != '\0') {
            ident_short(p.key, id);
            warn_add(&w, "bootstrap peer %s at %.100s unreachable: %s", id, p.addr,
                     p.last_error_kind != NULL ? p.last_error_kind : "other");
        }
    }
    if (nskew > 0 && nfar * 2 > nskew)
        warn_add(&w, "this node's clock differs from most of its peers' (by %lld s)",
                 (long long)(far / 1000));
    if (n->counters.commit_errors > 0)
        warn_add(&w, "%llu store writes failed (disk full?)",
                 (unsigned long long)n->counters.commit_errors);
    lan_get_stats(lan, &ls);
    if (n->cfg.lan && !ls.running)
        warn_add(&w, "LAN discovery could not start (see the log)");
    mp_close(&w.list);
}

int
ctl_h_status(struct ctl_call *call, const struct ctl_request *req)
{
    struct ctl_server *srv = call->srv;
    struct node *n = srv->n;
    const struct node_counters *k = &n->counters;
    char net[16], listen[CONFIG_ADDR_MAX + 8];
    struct dyads_stats ds;
    struct store_stats st;
    struct mp_open m, sub;
    struct mine *mine;
    const char *myname = NULL;
    (void)req;

    memset(&st, 0, sizeof(st));
    store_stats(n->store, &st);
    network_name(n, net);
    mp_open_map(&m, ctl_begin(call, false));
    ctl_kv_id(&m, "id", n->self.pk);
    if (people_names(srv->svc.people) != NULL)
        myname = names_name(people_names(srv->svc.people), n->self.pk);
    if (myname != NULL)
        mp_kv_str(&m, "name", myname);
    mp_kv_uint(&m, "uptime_s", (node_now_ms(n) - n->started_ms) / 1000);
    mp_kv_uint(&m, "peers", node_connected_count(n));
    mp_kv_uint(&m, "records", st.records - st.by_kind[RECORD_WITHDRAWN]);
    mp_kv_str(&m, "network", net);
    mp_kv_str(&m, "version", PULL_VERSION);
    mp_kv_str(&m, "data_dir", n->cfg.data_dir);
    mp_kv_uint(&m, "known_peers", node_peer_count(n));
    if ((mine = calloc(1, sizeof(*mine))) != NULL) {
        mine->now_s = node_now_s(n);
        (void)store_iter_author(n->store, n->self.pk, mine_visit, mine);
        if (myname == NULL && mine->name[0] != '\0')
            mp_kv_str(&m, "name", mine->name); /* my profile, before people read it */
        mp_key(&m, "mine");
        mp_open_map(&sub, m.pk);
        mp_kv_uint(&sub, "offers", mine->offers);
        mp_kv_uint(&sub, "needs", mine->needs);
        mp_close(&sub);
        free(mine);
    }
    memset(&ds, 0, sizeof(ds));
    dyads_get_stats(srv->svc.dyads, &ds);
    mp_kv_uint(&m, "dyads_open", ds.open);
    if (n->invites != NULL)
        mp_kv_uint(&m, "invites_open", invites_open_count(n->invites, node_now_s(n)));
    listen_address(n, listen, sizeof(listen));
    mp_kv_str(&m, "listen", listen);
    mp_kv_bool(&m, "lan_enabled", n->cfg.lan);
    pack_warnings(&m, n, srv->svc.lan);

    mp_key(&m, "limits");
    mp_open_map(&sub, m.pk);
    for (size_t i = 0; i < config_limit_count(); i++) {
        const char *name = "?";
        uint64_t v = 0;
        config_limit_at(&n->cfg, i, &name, &v);
        mp_kv_uint(&sub, name, v);
    }
    mp_close(&sub);

    mp_key(&m, "counters");
    mp_open_map(&sub, m.pk);
#define CTL_COUNTER(name, what) mp_kv_uint(&sub, #name, k->name);
    NODE_COUNTERS(CTL_COUNTER)
#undef CTL_COUNTER
    mp_close(&sub);

    pack_store(&m, &st);
    pack_lan(&m, srv->svc.lan);
    pack_nat(&m, n, srv->svc.nat);

    mp_key(&m, "control");
    mp_open_map(&sub, m.pk);
    mp_kv_uint(&sub, "clients", srv->nclients);
    mp_kv_uint(&sub, "watchers", ctl_search_watchers(srv));
    mp_kv_uint(&sub, "search_indexed", search_index_live(n->search));
    mp_kv_bool(&sub, "search_building", node_index_building(n));
    mp_kv_uint(&sub, "search_index_bytes", search_index_bytes(n->search));
    mp_kv_uint(&sub, "reply_bugs", srv->reply_bugs);
    mp_kv_uint(&sub, "evicted", srv->evicted);
    mp_kv_uint(&sub, "idle_closed", srv->idle_closed);
    mp_kv_uint(&sub, "stalled_closed", srv->stalled_closed);
    mp_kv_uint(&sub, "refused", srv->refused);
    mp_kv_uint(&sub, "paced_ms", srv->paced_ms);
    mp_kv_uint(&sub, "watch_bytes", srv->watch_mem);
    mp_kv_uint(&sub, "watch_dropped", srv->watch_dropped);
    mp_close(&sub);

    pack_dyads(&m, n, srv->svc.dyads);
    pack_people(&m, srv->svc.people);
    mp_close(&m);
    ctl_send(call);
    return 0;
}

/* kv_time packs unix seconds t, or nil for 0 (never, unknown). */
static void
kv_time(struct mp_open *m, const char *key, uint64_t t)
{
    if (t != 0)
        mp_kv_uint(m, key, t);
    else
        msgpack_pack_nil(mp_key(m, key));
}

/* pack_peer_diag: what `pull peers` tells of a peer's dials (CONTRACT.md: last_error,
 * last_seen, next_retry; nil when none), and a connected peer's clock. */
static void
pack_peer_diag(struct mp_open *m, const struct node_peer_info *p)
{
    mp_kv_bool(m, "bootstrap", p->bootstrap);
    if (p->last_error[0] != '\0') {
        mp_kv_str(m, "last_error", p->last_error);
        mp_kv_str(m, "last_error_kind", p->last_error_kind != NULL ? p->last_error_kind : "other");
        mp_kv_uint(m, "last_error_at", p->last_error_s);
        mp_kv_uint(m, "failed_dials", p->fails);
    } else {
        msgpack_pack_nil(mp_key(m, "last_error"));
    }
    kv_time(m, "last_seen", p->last_seen_s);
    kv_time(m, "next_retry", p->connected ? 0 : p->next_retry_s);
    if (p->has_skew)
        mp_kv_int(m, "clock_skew_ms", p->skew_ms);
}

int
ctl_h_peers(struct ctl_call *call, const struct ctl_request *req)
{
    struct node *n = call->srv->n;
    size_t np = node_peer_count(n);
    struct node_peer_info p;
    struct mp_open list, m;
    (void)req;

    mp_open_array(&list, ctl_begin(call, false));
    for (size_t i = 0; i < np; i++) {
        if (node_peer_at(n, i, &p) != 0)
            continue;
        mp_open_map(&m, mp_item(&list));
        ctl_kv_id(&m, "id", p.key);
        ctl_kv_person(&m, call->srv, "author", p.key); /* the person of that node */
        mp_kv_str(&m, "address", p.addr);
        mp_kv_str(&m, "state", p.state != NULL ? p.state : "unknown");
        mp_kv_bool(&m, "connected", p.connected);
        mp_kv_bool(&m, "inbound", p.inbound);
        mp_kv_int(&m, "score", p.score);
        mp_kv_uint(&m, "bytes_in", p.bytes_in);
        mp_kv_uint(&m, "bytes_out", p.bytes_out);
        mp_kv_uint(&m, "since", p.since_s);
        pack_peer_diag(&m, &p);
        mp_close(&m);
    }
    mp_close(&list);
    ctl_send(call);
    return 0;
}

/* peer_address writes the address of key's connection (or known address) into out. */
static void
peer_address(struct node *n, const uint8_t key[32], char *out, size_t len)
{
    size_t np = node_peer_count(n);
    struct node_peer_info p;

    out[0] = '\0';
    for (size_t i = 0; i < np; i++) {
        if (node_peer_at(n, i, &p) == 0 && memcmp(p.key, key, 32) == 0) {
            snprintf(out, len, "%s", p.addr);
            return;
        }
    }
}

/* A `pull connect` waiting for its session. */
struct connect_wait {
    struct ctl_call *call;
    uint8_t key[32];
};

/* Replies {"ok": true, "address": the address in use} (and "already": true when the peer
 * was connected). */
static void
reply_ok(struct ctl_call *call, const uint8_t key[32], bool already)
{
    char addr[NODE_ADDR_MAX];
    struct mp_open m;

    peer_address(call->srv->n, key, addr, sizeof(addr));
    mp_open_map(&m, ctl_begin(call, false));
    mp_kv_bool(&m, "ok", true);
    if (already)
        mp_kv_bool(&m, "already", true);
    if (addr[0] != '\0')
        mp_kv_str(&m, "address", addr);
    mp_close(&m);
    ctl_send(call);
}

static void
on_connected(void *arg, int result, const char *reason)
{
    struct connect_wait *w = arg;
    struct ctl_call *call = w->call;

    if (result == 0) {
        reply_ok(call, w->key, false);
        ctl_done(call, 0);
    } else {
        ctl_done(call, ctl_fail(call, result, "could not connect: %s",
                                reason != NULL && reason[0] ? reason : pull_strerror(result)));
    }
    free(w);
}

int
ctl_h_connect(struct ctl_call *call, const struct ctl_request *req)
{
    char addr[NODE_ADDR_MAX + 1], idt[IDENT_TEXT_LEN + 1];
    struct connect_wait *w;
    const char *at;
    uint8_t key[32];
    int rc;

    if ((rc = ctl_arg_str(req, "address", NODE_ADDR_MAX, addr, sizeof(addr))) != 0)
        return ctl_arg_failed(call, rc, "address");
    at = strchr(addr, '@');
    if (at == NULL || at - addr != IDENT_TEXT_LEN || at[1] == '\0')
        return ctl_fail(call, PULL_ERR_INVAL, "'%s' is not an address: want ID@HOST:PORT", addr);
    memcpy(idt, addr, IDENT_TEXT_LEN);
    idt[IDENT_TEXT_LEN] = '\0';
    if (ident_from_text(idt, key) != 0)
        return ctl_fail(call, PULL_ERR_INVAL, "'%s' is not a node id", idt);
    if (sodium_memcmp(key, call->srv->n->self.pk, 32) == 0)
        return ctl_fail(call, PULL_ERR_BAD_KEY, "%.8s... is this node's own id", idt);
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return PULL_ERR_NOMEM;
    w->call = ctl_keep(call);
    memcpy(w->key, key, 32);
    /* node_connect calls on_connected exactly once if it returns 0, never otherwise */
    rc = node_connect(call->srv->n, key, at + 1, on_connected, w);
    if (rc == 0)
        return 0;
    free(w);
    ctl_done(call, 0); /* the keep above: on_connected will not run */
    if (rc == PULL_ERR_EXISTS) {
        reply_ok(call, key, true);
        return 0;
    }
    if (rc == PULL_ERR_BAD_KEY)
        return ctl_fail(call, rc,
                        "'%.8s...' is not a valid node id: it reads as base32 but is not a "
                        "public key (a typo? `pull id` on that node prints its id)",
                        idt);
    return ctl_fail(call, rc, "cannot dial '%s': %s", at + 1,
                    rc == PULL_ERR_INVAL ? "bad address (want HOST:PORT)" : pull_strerror(rc));
}
