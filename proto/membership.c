/*
 * membership: HyParView (Leitão, Pereira, Rodrigues, DSN 2007) over connections that the
 * host opens and closes for us.
 *
 * A joining node dials a contact and sends JOIN; the contact takes it into its active view
 * and starts a FORWARD_JOIN random walk of length ARWL through each of its other active
 * peers; the walk ends (TTL 0, or a node with a single active peer) at a node that dials
 * the newcomer and asks NEIGHBOR with high priority, which is never refused. On the way,
 * the node where TTL == PRWL keeps the newcomer in its passive view.
 *
 * When the active view is short (a peer failed or left) the node dials passive peers and
 * asks NEIGHBOR: high priority if it has no active peer at all (always accepted; the
 * acceptor drops a random peer if full), low priority otherwise (accepted only if the other
 * has room; refusals back off exponentially). Periodically a SHUFFLE walks ttl hops and the
 * node where it stops answers with a sample of its passive view; both integrate what they
 * got. The answer travels back along the walk (each hop remembers the nonce for a while)
 * because the two ends are usually not connected. Finally, every rotate_ms on average
 * (rotate_young_ms at first, doubling after each rotation, so that young nodes mix fast;
 * failed dials, as in a partition, speed it up again) a node with a full view asks a random passive
 * peer NEIGHBOR high anyway: the overlay keeps changing, so that active views bootstrapped from a
 * few local contacts (or a line) become random, and two halves that were separated by a partition
 * link up again after it heals.
 */
#include <string.h>

#include "lib/err.h"
#include "lib/mp.h"
#include "proto/gossip_int.h"
#include "proto/msg.h"

/* ---------------------------------------------------------------- passive view */

int
mb_passive_find(const struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES])
{
    for (uint32_t i = 0; i < g->npassive; i++) {
        if (gs_key_eq(g->passive[i].key, key))
            return (int)i;
    }
    return -1;
}

void
mb_passive_remove(struct gossip *g, uint32_t i)
{
    if (i >= g->npassive)
        return;
    g->passive[i] = g->passive[g->npassive - 1];
    g->npassive--;
}

/* passive_insert adds key unless it is ours, connected, banned or known; when the view is
 * full it evicts one of the `prefer` keys if present (the entries we just sent away in a
 * shuffle), else a random entry. */
static void
passive_insert(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const char *addr,
               size_t addr_len, const uint8_t (*prefer)[GOSSIP_KEY_BYTES], uint32_t nprefer,
               uint64_t now_ms)
{
    struct gpassive *e;

    if (gs_key_eq(key, g->key) || !gs_addr_ok(addr, addr_len) || gs_conn_find(g, key) != NULL ||
        gs_is_banned(g, key, now_ms) || mb_passive_find(g, key) >= 0)
        return;
    if (g->npassive >= g->cfg.passive_size) {
        int victim = -1;
        for (uint32_t k = 0; k < nprefer && victim < 0; k++)
            victim = mb_passive_find(g, prefer[k]);
        if (victim < 0)
            victim = (int)env_uniform(g->env, g->npassive);
        mb_passive_remove(g, (uint32_t)victim);
    }
    e = &g->passive[g->npassive++];
    memcpy(e->key, key, GOSSIP_KEY_BYTES);
    memcpy(e->addr, addr, addr_len);
    e->addr[addr_len] = '\0';
}

void
mb_passive_add(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const char *addr,
               size_t addr_len, uint64_t now_ms)
{
    passive_insert(g, key, addr, addr_len, NULL, 0, now_ms);
}

/* ---------------------------------------------------------------- messages out */

static int
send_join(struct gossip *g, struct gpeer *p)
{
    struct pull_wb w;
    msgpack_packer pk;
    int rc;

    gs_msg_begin(g, &w, &pk, MSG_JOIN, 1);
    mp_pack_cstr(&pk, g->addr);
    rc = gs_send(g, p, &w);
    wb_release(&w);
    return rc;
}

static int
send_neighbor(struct gossip *g, struct gpeer *p, bool high)
{
    struct pull_wb w;
    msgpack_packer pk;
    int rc;

    gs_msg_begin(g, &w, &pk, MSG_NEIGHBOR, 2);
    mp_pack_cstr(&pk, g->addr);
    if (high)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    rc = gs_send(g, p, &w);
    wb_release(&w);
    return rc;
}

static void
send_reply(struct gossip *g, struct gpeer *p, bool accepted)
{
    struct pull_wb w;
    msgpack_packer pk;

    gs_msg_begin(g, &w, &pk, MSG_NEIGHBOR_REPLY, 1);
    if (accepted)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    (void)gs_send(g, p, &w);
    wb_release(&w);
}

static void
send_forward_join(struct gossip *g, struct gpeer *p, const uint8_t key[GOSSIP_KEY_BYTES],
                  const char *addr, size_t addr_len, uint32_t ttl)
{
    struct pull_wb w;
    msgpack_packer pk;

    gs_msg_begin(g, &w, &pk, MSG_FORWARD_JOIN, 3);
    mp_pack_bin(&pk, key, GOSSIP_KEY_BYTES);
    mp_pack_str(&pk, addr, addr_len);
    msgpack_pack_uint32(&pk, ttl);
    (void)gs_send(g, p, &w);
    wb_release(&w);
}

static void
send_disconnect(struct gossip *g, struct gpeer *p, int reason)
{
    struct pull_wb w;
    msgpack_packer pk;

    gs_msg_begin(g, &w, &pk, MSG_DISCONNECT, 1);
    msgpack_pack_uint32(&pk, (uint32_t)reason);
    (void)gs_send(g, p, &w);
    wb_release(&w);
}

static void
pack_entries(msgpack_packer *pk, const struct gs_peer_entry *e, uint32_t n)
{
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_array(pk, 2);
        mp_pack_bin(pk, e[i].key, GOSSIP_KEY_BYTES);
        mp_pack_str(pk, e[i].addr, e[i].addr_len);
    }
}

static void
send_shuffle(struct gossip *g, struct gpeer *p, uint64_t nonce, uint32_t ttl,
             const struct gs_peer_entry *e, uint32_t n)
{
    struct pull_wb w;
    msgpack_packer pk;

    gs_msg_begin(g, &w, &pk, MSG_SHUFFLE, 3);
    msgpack_pack_uint64(&pk, nonce);
    msgpack_pack_uint32(&pk, ttl);
    pack_entries(&pk, e, n);
    (void)gs_send(g, p, &w);
    wb_release(&w);
}

static void
send_shuffle_reply(struct gossip *g, struct gpeer *p, uint64_t nonce, const struct gs_peer_entry *e,
                   uint32_t n)
{
    struct pull_wb w;
    msgpack_packer pk;

    gs_msg_begin(g, &w, &pk, MSG_SHUFFLE_REPLY, 2);
    msgpack_pack_uint64(&pk, nonce);
    pack_entries(&pk, e, n);
    (void)gs_send(g, p, &w);
    wb_release(&w);
}

/* ---------------------------------------------------------------- view changes */

/* random_active picks a uniformly random usable active peer other than `except` and other
 * than key `except_key` (either may be NULL), or NULL. */
static struct gpeer *
random_active(struct gossip *g, const struct gpeer *except, const uint8_t *except_key)
{
    uint32_t n = 0, pick;

    for (uint32_t i = 0; i < g->nconns; i++) {
        const struct gpeer *q = g->conns[i];
        if (q->state == GOSSIP_PEER_ACTIVE && !q->doomed && q != except &&
            (except_key == NULL || !gs_key_eq(q->key, except_key)))
            n++;
    }
    if (n == 0)
        return NULL;
    pick = env_uniform(g->env, n);
    for (uint32_t i = 0; i < g->nconns; i++) {
        struct gpeer *q = g->conns[i];
        if (q->state == GOSSIP_PEER_ACTIVE && !q->doomed && q != except &&
            (except_key == NULL || !gs_key_eq(q->key, except_key)) && pick-- == 0)
            return q;
    }
    return NULL;
}

void
mb_close(struct gossip *g, struct gpeer *p, int reason, bool to_passive, uint64_t now_ms)
{
    uint8_t key[GOSSIP_KEY_BYTES];
    char addr[GOSSIP_ADDR_MAX + 1];

    if (reason >= 0 && p->state != GOSSIP_PEER_CONNECTING)
        send_disconnect(g, p, reason);
    gs_emit_disconnect(g, p->key);
    memcpy(key, p->key, sizeof(key));
    memcpy(addr, p->addr, sizeof(addr));
    gs_conn_remove(g, p);
    if (to_passive && addr[0] != '\0')
        mb_passive_add(g, key, addr, strlen(addr), now_ms);
}

/* eviction_victim picks the active peer to drop to make room for p: a random lazy one if
 * there is any, so that Plumtree's eager tree keeps its edges (the paper drops a random
 * peer; cutting a tree edge costs the next records a GRAFT round), else a random one. */
static struct gpeer *
eviction_victim(struct gossip *g, const struct gpeer *p)
{
    uint32_t lazy = 0, pick;

    for (uint32_t i = 0; i < g->nconns; i++) {
        const struct gpeer *q = g->conns[i];
        lazy += q != p && q->state == GOSSIP_PEER_ACTIVE && !q->doomed && !q->eager;
    }
    if (lazy == 0)
        return random_active(g, p, NULL);
    pick = env_uniform(g->env, lazy);
    for (uint32_t i = 0; i < g->nconns; i++) {
        struct gpeer *q = g->conns[i];
        if (q != p && q->state == GOSSIP_PEER_ACTIVE && !q->doomed && !q->eager && pick-- == 0)
            return q;
    }
    return NULL;
}

/* add_active moves connection p into the active view, dropping an active peer (to the
 * passive view, with DISCONNECT) if the view is full. */
static void
add_active(struct gossip *g, struct gpeer *p, uint64_t now_ms)
{
    struct gpeer *victim;

    if (p->state == GOSSIP_PEER_ACTIVE)
        return;
    while (g->nactive >= g->cfg.active_size && (victim = eviction_victim(g, p)) != NULL)
        mb_close(g, victim, GOSSIP_BYE_VIEW, true, now_ms);
    p->state = GOSSIP_PEER_ACTIVE;
    p->since = now_ms;
    p->eager = true;
    p->asked = false;
    g->nactive++;
    g->joined = true;
    g->fill_backoff = GS_BACKOFF_MIN_MS;
    pt_on_active(g, p, now_ms);
}

/* set_addr records the address a peer advertises for itself. */
static void
set_addr(struct gpeer *p, const char *addr, uint32_t len)
{
    memcpy(p->addr, addr, len);
    p->addr[len] = '\0';
}

static struct gpeer *
dial(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const char *addr, uint8_t purpose,
     uint64_t now_ms)
{
    struct gpeer *p = gs_conn_add(g, key, addr, GOSSIP_PEER_CONNECTING, now_ms);

    if (p == NULL) {
        /* Out of memory: the peer stays known (a passive peer was removed to be dialed). */
        mb_passive_add(g, key, addr, strlen(addr), now_ms);
        return NULL;
    }
    p->purpose = purpose;
    if (gs_emit_connect(g, key, p->addr) != 0)
        p->doomed = GS_DOOM_NOMEM; /* gs_finish puts it back into the passive view */
    return p;
}

/* dial_passive dials the passive peer at index i. */
static void
dial_passive(struct gossip *g, uint32_t i, uint8_t purpose, uint64_t now_ms)
{
    struct gpassive e = g->passive[i];

    mb_passive_remove(g, i);
    (void)dial(g, e.key, e.addr, purpose, now_ms);
}

void
mb_on_connected(struct gossip *g, struct gpeer *p, uint64_t now_ms)
{
    int rc = 0;

    (void)now_ms;
    switch (p->purpose) {
    case GS_PURPOSE_JOIN:
        rc = send_join(g, p);
        p->asked = true;
        break;
    case GS_PURPOSE_LOW:
        rc = send_neighbor(g, p, false);
        p->asked = true;
        break;
    case GS_PURPOSE_HIGH:
    case GS_PURPOSE_ROTATE:
        rc = send_neighbor(g, p, true);
        p->asked = true;
        break;
    default:
        break;
    }
    /* The request could not be sent (out of memory): rather than wait for the answer that
     * can't come and then forget the peer, close now and keep it in the passive view. */
    if (rc == PULL_ERR_NOMEM && p->addr[0] != '\0')
        p->doomed = GS_DOOM_NOMEM;
}

void
mb_on_lost(struct gossip *g, struct gpeer *p, uint64_t now_ms)
{
    (void)now_ms;
    /* HyParView forgets a failed peer: it is not kept in the passive view. */
    gs_conn_remove(g, p);
}

/* accept_join: end of a FORWARD_JOIN walk: take the newcomer into the active view. */
static void
accept_join(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const char *addr,
            uint32_t addr_len, uint64_t now_ms)
{
    char a[GOSSIP_ADDR_MAX + 1];
    struct gpeer *q = gs_conn_find(g, key);

    if (q != NULL) {
        if (q->state == GOSSIP_PEER_PENDING && !q->asked) {
            q->purpose = GS_PURPOSE_HIGH;
            send_neighbor(g, q, true);
            q->asked = true;
        }
        return;
    }
    if (gs_pending_count(g) >= g->cfg.max_pending)
        return;
    memcpy(a, addr, addr_len);
    a[addr_len] = '\0';
    (void)dial(g, key, a, GS_PURPOSE_HIGH, now_ms);
}

static void
on_join(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms)
{
    if (p->inbound || p->addr[0] == '\0')
        set_addr(p, m->addr, m->addr_len);
    send_reply(g, p, true);
    add_active(g, p, now_ms);
    for (uint32_t i = 0; i < g->nconns; i++) {
        struct gpeer *q = g->conns[i];
        if (q != p && q->state == GOSSIP_PEER_ACTIVE && !q->doomed)
            send_forward_join(g, q, p->key, p->addr, strlen(p->addr), g->cfg.arwl);
    }
}

static void
on_forward_join(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms)
{
    uint32_t ttl = m->ttl < g->cfg.arwl ? (uint32_t)m->ttl : g->cfg.arwl;
    struct gpeer *next;

    if (p->state != GOSSIP_PEER_ACTIVE || gs_key_eq(m->key, g->key) ||
        gs_is_banned(g, m->key, now_ms)) {
        g->st.ignored++;
        return;
    }
    if (ttl == 0 || g->nactive <= 1) {
        accept_join(g, m->key, m->addr, m->addr_len, now_ms);
        return;
    }
    if (ttl == g->cfg.prwl)
        mb_passive_add(g, m->key, m->addr, m->addr_len, now_ms);
    if ((next = random_active(g, p, m->key)) == NULL) {
        accept_join(g, m->key, m->addr, m->addr_len, now_ms);
        return;
    }
    send_forward_join(g, next, m->key, m->addr, m->addr_len, ttl - 1);
}

static void
on_neighbor(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms)
{
    if (p->inbound || p->addr[0] == '\0')
        set_addr(p, m->addr, m->addr_len);
    if (p->state == GOSSIP_PEER_ACTIVE) {
        send_reply(g, p, true);
        return;
    }
    if (g->nactive < g->cfg.active_size || (m->flag && now_ms >= g->evict_ok_at)) {
        if (g->nactive >= g->cfg.active_size)
            g->evict_ok_at = now_ms + g->cfg.evict_gap_ms;
        send_reply(g, p, true);
        add_active(g, p, now_ms);
    } else {
        /* Refused: the asker closes the connection (or it times out here). */
        send_reply(g, p, false);
    }
}

static void
on_neighbor_reply(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms)
{
    uint8_t purpose = p->purpose;

    if (!p->asked) {
        g->st.ignored++;
        return;
    }
    p->asked = false;
    if (m->flag) {
        add_active(g, p, now_ms);
        if (purpose != GS_PURPOSE_JOIN)
            pt_opened_link(g, p);
        if (purpose == GS_PURPOSE_JOIN)
            g->fill_at = now_ms + g->cfg.join_grace_ms;
        return;
    }
    if (p->state == GOSSIP_PEER_ACTIVE)
        return; /* we took the peer in on its own NEIGHBOR meanwhile */
    mb_close(g, p, -1, true, now_ms);
    if (purpose == GS_PURPOSE_LOW) {
        g->fill_at = now_ms + g->fill_backoff;
        g->fill_backoff *= 2;
        if (g->fill_backoff > GS_BACKOFF_MAX_MS)
            g->fill_backoff = GS_BACKOFF_MAX_MS;
    }
}

static void
on_disconnect(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms)
{
    bool keep = m->code == GOSSIP_BYE_VIEW || m->code == GOSSIP_BYE_FULL;

    mb_close(g, p, -1, keep, now_ms);
}

/* sample_passive fills e with up to max distinct random passive entries; returns count. */
static uint32_t
sample_passive(struct gossip *g, struct gs_peer_entry *e, uint32_t max, const uint8_t *except_key)
{
    uint32_t idx[1024], n = 0, cnt = g->npassive;

    for (uint32_t i = 0; i < cnt; i++)
        idx[i] = i;
    for (uint32_t i = 0; i < cnt && n < max; i++) {
        uint32_t j = i + env_uniform(g->env, cnt - i), t = idx[i];
        const struct gpassive *pe;
        idx[i] = idx[j];
        idx[j] = t;
        pe = &g->passive[idx[i]];
        if (except_key != NULL && gs_key_eq(pe->key, except_key))
            continue;
        memcpy(e[n].key, pe->key, GOSSIP_KEY_BYTES);
        e[n].addr = pe->addr;
        e[n].addr_len = (uint32_t)strlen(pe->addr);
        n++;
    }
    return n;
}

static void
integrate(struct gossip *g, const struct gs_peer_entry *e, uint32_t n,
          const uint8_t (*prefer)[GOSSIP_KEY_BYTES], uint32_t nprefer, uint64_t now_ms)
{
    for (uint32_t i = 0; i < n; i++)
        passive_insert(g, e[i].key, e[i].addr, e[i].addr_len, prefer, nprefer, now_ms);
}

static void
on_shuffle(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms)
{
    struct gs_peer_entry reply[GOSSIP_SHUFFLE_MAX];
    uint8_t sent[GOSSIP_SHUFFLE_MAX][GOSSIP_KEY_BYTES];
    const uint8_t *origin = m->peers[0].key;
    struct gpeer *next;
    uint32_t n;

    if (p->state != GOSSIP_PEER_ACTIVE || gs_key_eq(origin, g->key)) {
        g->st.ignored++;
        return;
    }
    if (m->ttl > 0 && g->nactive > 1 && (next = random_active(g, p, origin)) != NULL) {
        struct groute *r = &g->routes[g->route_next];
        g->route_next = (g->route_next + 1) % GS_ROUTES_MAX;
        r->nonce = m->nonce;
        r->until = now_ms + GS_ROUTE_MS;
        memcpy(r->back, p->key, GOSSIP_KEY_BYTES);
        send_shuffle(g, next, m->nonce,
                     m->ttl > GOSSIP_TTL_MAX ? GOSSIP_TTL_MAX - 1 : (uint32_t)m->ttl - 1, m->peers,
                     m->npeers);
        return;
    }
    n = sample_passive(g, reply, m->npeers, origin);
    send_shuffle_reply(g, p, m->nonce, reply, n);
    for (uint32_t i = 0; i < n; i++)
        memcpy(sent[i], reply[i].key, GOSSIP_KEY_BYTES);
    integrate(g, m->peers, m->npeers, sent, n, now_ms);
}

static void
on_shuffle_reply(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms)
{
    (void)p;
    if (g->shuffle_pending && m->nonce == g->shuffle_nonce) {
        g->shuffle_pending = false;
        integrate(g, m->peers, m->npeers, (const uint8_t(*)[GOSSIP_KEY_BYTES])g->shuffle_sent,
                  g->nshuffle_sent, now_ms);
        return;
    }
    for (uint32_t i = 0; i < GS_ROUTES_MAX; i++) {
        struct groute *r = &g->routes[i];
        struct gpeer *q;
        if (r->until <= now_ms || r->nonce != m->nonce)
            continue;
        r->until = 0;
        q = gs_conn_find(g, r->back);
        if (q != NULL && q->state != GOSSIP_PEER_CONNECTING)
            send_shuffle_reply(g, q, m->nonce, m->peers, m->npeers);
        return;
    }
    g->st.ignored++;
}

void
mb_handle(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms)
{
    switch (m->type) {
    case MSG_JOIN:
        on_join(g, p, m, now_ms);
        break;
    case MSG_FORWARD_JOIN:
        on_forward_join(g, p, m, now_ms);
        break;
    case MSG_NEIGHBOR:
        on_neighbor(g, p, m, now_ms);
        break;
    case MSG_NEIGHBOR_REPLY:
        on_neighbor_reply(g, p, m, now_ms);
        break;
    case MSG_DISCONNECT:
        on_disconnect(g, p, m, now_ms);
        break;
    case MSG_SHUFFLE:
        on_shuffle(g, p, m, now_ms);
        break;
    case MSG_SHUFFLE_REPLY:
        on_shuffle_reply(g, p, m, now_ms);
        break;
    default:
        g->st.ignored++;
        break;
    }
}

/* ---------------------------------------------------------------- repair and timers */

void
mb_fill(struct gossip *g, uint64_t now_ms)
{
    uint32_t inflight = 0, want, pending = gs_pending_count(g);
    uint8_t purpose;

    if (g->nactive >= g->cfg.active_size || g->npassive == 0)
        return;
    for (uint32_t i = 0; i < g->nconns; i++) {
        const struct gpeer *q = g->conns[i];
        if (q->state != GOSSIP_PEER_ACTIVE && !q->doomed && q->purpose != GS_PURPOSE_NONE)
            inflight++;
    }
    if (!g->joined) {
        want = 1;
        purpose = GS_PURPOSE_JOIN;
    } else if (g->nactive < g->cfg.active_size / 2) {
        /* None, or hanging by a thread or two: insist, several at once (the paper asks
         * high priority only at zero, which leaves a few nodes with a single link for a
         * long time in a network of full views, where low-priority requests are mostly
         * refused; and after a mass failure many passive peers are dead). */
        want = g->cfg.active_size / 2 - g->nactive;
        purpose = GS_PURPOSE_HIGH;
    } else {
        if (now_ms < g->fill_at)
            return;
        want = g->cfg.active_size - g->nactive;
        purpose = GS_PURPOSE_LOW;
    }
    while (inflight < want && g->npassive > 0 && pending < g->cfg.max_pending) {
        dial_passive(g, env_uniform(g->env, g->npassive), purpose, now_ms);
        inflight++;
        pending++;
    }
}

void
mb_dial_failed(struct gossip *g, uint64_t now_ms)
{
    if (g->cfg.rotate_ms == 0 || g->rotate_every <= g->cfg.rotate_young_ms)
        return;
    g->rotate_every /= 2;
    if (g->rotate_every < g->cfg.rotate_young_ms)
        g->rotate_every = g->cfg.rotate_young_ms;
    if (g->rotate_at > now_ms + g->rotate_every)
        g->rotate_at =
            now_ms + g->rotate_every / 2 + env_uniform(g->env, (uint32_t)g->rotate_every);
}

static void
start_shuffle(struct gossip *g)
{
    struct gs_peer_entry e[GOSSIP_SHUFFLE_MAX];
    struct gpeer *target = random_active(g, NULL, NULL);
    uint32_t n = 0, na = 0;

    if (target == NULL)
        return;
    memcpy(e[0].key, g->key, GOSSIP_KEY_BYTES);
    e[0].addr = g->addr;
    e[0].addr_len = (uint32_t)strlen(g->addr);
    n = 1;
    /* A few active peers (not the target, which knows itself) ... */
    for (uint32_t tries = 0; na < g->cfg.shuffle_active && tries < 2 * g->cfg.active_size;
         tries++) {
        struct gpeer *q = random_active(g, target, NULL);
        bool dup = false;
        if (q == NULL)
            break;
        for (uint32_t k = 1; k < n; k++)
            dup = dup || gs_key_eq(e[k].key, q->key);
        if (dup || q->addr[0] == '\0')
            continue;
        memcpy(e[n].key, q->key, GOSSIP_KEY_BYTES);
        e[n].addr = q->addr;
        e[n].addr_len = (uint32_t)strlen(q->addr);
        n++;
        na++;
    }
    /* ... and a few passive ones. */
    n += sample_passive(g, e + n, g->cfg.shuffle_passive, target->key);
    g->shuffle_nonce = env_u64(g->env);
    g->shuffle_pending = true;
    g->nshuffle_sent = 0;
    for (uint32_t k = 1; k < n; k++)
        memcpy(g->shuffle_sent[g->nshuffle_sent++], e[k].key, GOSSIP_KEY_BYTES);
    send_shuffle(g, target, g->shuffle_nonce, g->cfg.shuffle_ttl, e, n);
}

void
mb_timers(struct gossip *g, uint64_t now_ms)
{
    if (now_ms >= g->shuffle_at) {
        g->shuffle_at = now_ms + g->cfg.shuffle_ms / 2 + env_uniform(g->env, g->cfg.shuffle_ms);
        start_shuffle(g);
    }
    if (g->cfg.rotate_ms != 0 && now_ms >= g->rotate_at) {
        if (g->rotate_every < g->cfg.rotate_ms)
            g->rotate_every *= 2;
        if (g->rotate_every > g->cfg.rotate_ms)
            g->rotate_every = g->cfg.rotate_ms;
        g->rotate_at =
            now_ms + g->rotate_every / 2 + env_uniform(g->env, (uint32_t)g->rotate_every);
        if (g->nactive >= g->cfg.active_size && g->npassive > 0 &&
            gs_pending_count(g) < g->cfg.max_pending)
            dial_passive(g, env_uniform(g->env, g->npassive), GS_PURPOSE_ROTATE, now_ms);
    }
}

uint64_t
mb_next_deadline(const struct gossip *g)
{
    uint64_t d = g->maint_at;

    if (g->shuffle_at < d)
        d = g->shuffle_at;
    if (g->cfg.rotate_ms != 0 && g->rotate_at < d)
        d = g->rotate_at;
    return d;
}
