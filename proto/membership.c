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
#include <stdio.h>
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

/* passive_untried counts the passive entries nobody vouched for (learned from others). */
static uint32_t
passive_untried(const struct gossip *g)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < g->npassive; i++)
        n += !g->passive[i].tried;
    return n;
}

/* passive_victim picks the entry to drop for a new one: among the untried entries (one of
 * the `prefer` keys if present: the entries we just sent away in a shuffle), else - only for
 * a tried newcomer - any entry. Returns -1 if the newcomer must not displace anything. */
static int
passive_victim(struct gossip *g, bool tried, const uint8_t (*prefer)[GOSSIP_KEY_BYTES],
               uint32_t nprefer)
{
    uint32_t untried = passive_untried(g), pick;

    for (uint32_t k = 0; k < nprefer; k++) {
        int i = mb_passive_find(g, prefer[k]);
        if (i >= 0 && !g->passive[i].tried)
            return i;
    }
    if (untried == 0)
        return tried ? (int)env_uniform(g->env, g->npassive) : -1;
    pick = env_uniform(g->env, untried);
    for (uint32_t i = 0; i < g->npassive; i++) {
        if (!g->passive[i].tried && pick-- == 0)
            return (int)i;
    }
    return -1;
}

/* passive_insert adds key unless it is ours, connected, banned or known. Entries are
 * "tried" (we had a session with the peer, or the host vouches for it: bootstrap, LAN, the
 * persisted peers) or learned from others (FORWARD_JOIN walks, shuffles): learned entries
 * never displace tried ones, and take at most half of the view - so a stranger's shuffles
 * can't replace what the node knows works (the old SHUFFLE attack replaced 60 of 60). */
static void
passive_insert(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const char *addr,
               size_t addr_len, bool tried, const uint8_t (*prefer)[GOSSIP_KEY_BYTES],
               uint32_t nprefer, uint64_t now_ms)
{
    struct gpassive *e;
    int i;

    if (gs_key_eq(key, g->key) || !gs_addr_ok(addr, addr_len) ||
        gs_addr_port(addr, addr_len) == 0 || gs_conn_find(g, key) != NULL ||
        gs_is_banned(g, key, now_ms))
        return;
    if ((i = mb_passive_find(g, key)) >= 0) {
        if (tried && !g->passive[i].tried) { /* vouched for now: keep this address */
            e = &g->passive[i];
            memcpy(e->addr, addr, addr_len);
            e->addr[addr_len] = '\0';
            gs_addr_group(addr, addr_len, e->group);
            e->tried = true;
        }
        return;
    }
    if (!tried && passive_untried(g) >= g->cfg.passive_size / 2) {
        /* the learned half is full: a newcomer takes a learned place or none */
        if ((i = passive_victim(g, false, prefer, nprefer)) < 0)
            return;
        mb_passive_remove(g, (uint32_t)i);
    } else if (g->npassive >= g->cfg.passive_size) {
        if ((i = passive_victim(g, tried, prefer, nprefer)) < 0)
            return;
        mb_passive_remove(g, (uint32_t)i);
    }
    e = &g->passive[g->npassive++];
    memcpy(e->key, key, GOSSIP_KEY_BYTES);
    memcpy(e->addr, addr, addr_len);
    e->addr[addr_len] = '\0';
    gs_addr_group(addr, addr_len, e->group);
    e->tried = tried;
}

void
mb_passive_add(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const char *addr,
               size_t addr_len, bool tried, uint64_t now_ms)
{
    passive_insert(g, key, addr, addr_len, tried, NULL, 0, now_ms);
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
    bool tried;

    if (reason >= 0 && p->state != GOSSIP_PEER_CONNECTING)
        send_disconnect(g, p, reason);
    gs_emit_disconnect(g, p->key);
    memcpy(key, p->key, sizeof(key));
    memcpy(addr, p->addr, sizeof(addr));
    tried = p->state != GOSSIP_PEER_CONNECTING;
    gs_conn_remove(g, p);
    if (to_passive && addr[0] != '\0')
        mb_passive_add(g, key, addr, strlen(addr), tried, now_ms);
}

/* group_active counts the active peers of an address group (but p). */
static uint32_t
group_active(const struct gossip *g, const uint8_t group[GS_GROUP_LEN], const struct gpeer *p)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < g->nconns; i++) {
        const struct gpeer *q = g->conns[i];
        n += q != p && q->state == GOSSIP_PEER_ACTIVE && !q->doomed && gs_group_eq(q->group, group);
    }
    return n;
}

/* group_cap: how many active peers one address group may hold (a third of the view), so
 * that whoever controls one /16 or /32 can't be most of a node's neighbours. */
static uint32_t
group_cap(const struct gossip *g)
{
    uint32_t cap = g->cfg.active_size / 3;

    return cap > 0 ? cap : 1;
}

/* protected_peer: an active peer a newcomer can't evict. The view's oldest peers - all but
 * a third of the view (two of six), if they have been there GS_PROTECT_MS - stay; so do the
 * peers that gave us new records lately (their score is above zero) if that leaves room.
 * What stays open to eviction is the young rest: a stranger churning JOINs from fresh keys
 * can hold at most those places, never the long-lived good peers' (as Bitcoin Core keeps
 * its longest-connected and most useful peers when it evicts). */
static bool
protected_peer(const struct gossip *g, const struct gpeer *q, uint64_t now_ms)
{
    uint32_t older = 0, keep = g->cfg.active_size - (g->cfg.active_size + 2) / 3;

    if (now_ms - q->since < GS_PROTECT_MS)
        return q->score > 0 && q->eager; /* a young peer that carries the tree for us */
    for (uint32_t i = 0; i < g->nconns; i++) {
        const struct gpeer *r = g->conns[i];
        older += r != q && r->state == GOSSIP_PEER_ACTIVE && !r->doomed && r->since < q->since;
    }
    return older < keep;
}

/* eviction_victim picks the active peer to drop to make room for p, among the peers that
 * are not protected: in the address group holding most of the view, the youngest, a lazy
 * one first so that Plumtree's eager tree keeps its edges (cutting a tree edge costs the
 * next records a GRAFT round). NULL: nobody may be evicted. */
static struct gpeer *
eviction_victim(struct gossip *g, const struct gpeer *p, uint64_t now_ms)
{
    struct gpeer *best = NULL;
    uint32_t best_group = 0;

    for (uint32_t i = 0; i < g->nconns; i++) {
        struct gpeer *q = g->conns[i];
        uint32_t grp;
        if (q == p || q->state != GOSSIP_PEER_ACTIVE || q->doomed || protected_peer(g, q, now_ms))
            continue;
        grp = group_active(g, q->group, NULL);
        if (best == NULL || grp > best_group || (grp == best_group && (best->eager && !q->eager)) ||
            (grp == best_group && best->eager == q->eager && q->since > best->since)) {
            best = q;
            best_group = grp;
        }
    }
    return best;
}

/* may_take reports whether connection p may join the active view now: there is room, or
 * (force: a JOIN or a high-priority NEIGHBOR, at most one eviction per evict_gap_ms) a peer
 * that may be evicted; and its address group stays within its share. */
static bool
may_take(struct gossip *g, const struct gpeer *p, bool force, uint64_t now_ms)
{
    struct gpeer *victim = NULL;
    uint32_t same = group_active(g, p->group, p);

    if (g->nactive < g->cfg.active_size)
        return same < group_cap(g);
    if (!force || now_ms < g->evict_ok_at || (victim = eviction_victim(g, p, now_ms)) == NULL)
        return false;
    return same - (gs_group_eq(victim->group, p->group) ? 1 : 0) < group_cap(g);
}

/* own_victim picks the peer to drop for a peer we chose ourselves (refill, rotation, the
 * end of a walk): any active peer, a lazy one first so that Plumtree's eager tree keeps its
 * edges. Our own random choices are what mix the overlay (HyParView's rotation); only
 * others' requests are held to eviction_victim's protections. */
static struct gpeer *
own_victim(struct gossip *g, const struct gpeer *p)
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
 * passive view, with DISCONNECT) if the view is full: one eviction_victim may lose for a
 * peer that asked (callers checked may_take), any (own_victim) for one we chose. */
static void
add_active(struct gossip *g, struct gpeer *p, uint64_t now_ms)
{
    struct gpeer *victim;

    if (p->state == GOSSIP_PEER_ACTIVE)
        return;
    while (g->nactive >= g->cfg.active_size) {
        victim = p->inbound ? eviction_victim(g, p, now_ms) : own_victim(g, p);
        if (victim == NULL && (victim = own_victim(g, p)) == NULL)
            break;
        mb_close(g, victim, GOSSIP_BYE_VIEW, true, now_ms);
        if (p->inbound)
            g->evict_ok_at = now_ms + g->cfg.evict_gap_ms;
    }
    p->state = GOSSIP_PEER_ACTIVE;
    p->since = now_ms;
    p->eager = true;
    p->asked = false;
    g->nactive++;
    g->joined = true;
    g->fill_backoff = GS_BACKOFF_MIN_MS;
    pt_on_active(g, p, now_ms);
}

/* set_addr records where an inbound peer can be dialed: the host part the host observed
 * and the port the peer advertises (so a JOIN can't point walks and dials at a third
 * party's host), or the advertised address as it is when the host observed nothing.
 * Observed with port 0, the peer can't be dialed from here (no listener, or its HELLO said
 * it accepts only local connections and it came from a public address): whatever its JOIN
 * says, no address - so it is never dialed back, kept in the passive view, or handed on. */
static void
set_addr(struct gpeer *p, const char *addr, uint32_t len)
{
    uint32_t port = gs_addr_port(addr, len);
    size_t sl = strlen(p->seen);

    if (sl > 0 && gs_addr_port(p->seen, sl) == 0) {
        p->addr[0] = '\0';
        return;
    }
    if (sl == 0) {
        memcpy(p->addr, addr, len);
        p->addr[len] = '\0';
        return;
    }
    while (sl > 0 && p->seen[sl - 1] != ':')
        sl--;
    if (sl == 0 || port == 0) {
        p->addr[0] = '\0'; /* it accepts no connections */
        return;
    }
    snprintf(p->addr, sizeof(p->addr), "%.*s%u", (int)sl, p->seen, (unsigned)port);
}

static struct gpeer *
dial(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const char *addr, uint8_t purpose,
     uint64_t now_ms)
{
    struct gpeer *p = gs_conn_add(g, key, addr, GOSSIP_PEER_CONNECTING, now_ms);

    if (p == NULL) {
        /* Out of memory: the peer stays known (a passive peer was removed to be dialed). */
        mb_passive_add(g, key, addr, strlen(addr), true, now_ms);
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

/* walk_allowed: a JOIN walk for a newcomer we did not take in (GS_WALKS_PER_MIN). */
static bool
walk_allowed(struct gossip *g, uint64_t now_ms)
{
    if (now_ms - g->walks_at >= 60000) {
        g->walks_at = now_ms;
        g->walks = 0;
    }
    return g->walks++ < GS_WALKS_PER_MIN;
}

static void
on_join(struct gossip *g, struct gpeer *p, const struct gmsg *m, uint64_t now_ms)
{
    struct gpeer *next;

    if (p->joined_req || p->state == GOSSIP_PEER_ACTIVE) {
        /* One JOIN per connection: each would start walks that make other nodes dial. */
        g->st.ignored++;
        return;
    }
    p->joined_req = true;
    if (p->inbound || p->addr[0] == '\0')
        set_addr(p, m->addr, m->addr_len);
    if (may_take(g, p, true, now_ms)) {
        send_reply(g, p, true);
        add_active(g, p, now_ms);
        if (p->addr[0] == '\0')
            return; /* it can't be dialed: no walk can end at it */
        for (uint32_t i = 0; i < g->nconns; i++) {
            struct gpeer *q = g->conns[i];
            if (q != p && q->state == GOSSIP_PEER_ACTIVE && !q->doomed)
                send_forward_join(g, q, p->key, p->addr, strlen(p->addr), g->cfg.arwl);
        }
        return;
    }
    /* No room for it here: refuse, but let one walk find it a place elsewhere, at a node
     * it does not choose (HyParView's join keeps working in a network of full views). */
    send_reply(g, p, false);
    if (p->addr[0] != '\0' && walk_allowed(g, now_ms) &&
        (next = random_active(g, p, p->key)) != NULL)
        send_forward_join(g, next, p->key, p->addr, strlen(p->addr), g->cfg.arwl);
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
        mb_passive_add(g, m->key, m->addr, m->addr_len, false, now_ms);
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
    if (may_take(g, p, m->flag, now_ms)) {
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
    if (purpose == GS_PURPOSE_LOW || purpose == GS_PURPOSE_JOIN) {
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
        passive_insert(g, e[i].key, e[i].addr, e[i].addr_len, false, prefer, nprefer, now_ms);
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
        if (now_ms < g->fill_at)
            return; /* a contact refused our JOIN: its walk may bring us a neighbour */
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
    char self[GOSSIP_ADDR_MAX + 1];
    uint32_t n = 0, na = 0;
    const char *colon;

    if (target == NULL)
        return;
    memcpy(e[0].key, g->key, GOSSIP_KEY_BYTES);
    e[0].addr = g->addr;
    e[0].addr_len = (uint32_t)strlen(g->addr);
    if (g->undialable && (colon = strrchr(g->addr, ':')) != NULL) {
        /* the origin entry must be there (it says whose shuffle this is): port 0, which
         * nobody keeps in a passive view */
        snprintf(self, sizeof(self), "%.*s:0", (int)(colon - g->addr), g->addr);
        e[0].addr = self;
        e[0].addr_len = (uint32_t)strlen(self);
    }
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
