/*
 * gossip: entry points, connection table, action queue and scoring of the gossip engine.
 * Membership lives in membership.c, dissemination in plumtree.c, addresses and their
 * groups in gossip_addr.c, the message decoder in gossip_codec.c; the shared state and its
 * invariants are described in gossip_int.h.
 */
#include "proto/gossip.h"

#include <string.h>

#include "lib/err.h"
#include "lib/mp.h"
#include "proto/gossip_int.h"
#include "proto/msg.h"

void
gossip_config_default(struct gossip_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->active_size = 6;
    cfg->passive_size = 60;
    cfg->arwl = 6;
    cfg->prwl = 3;
    cfg->shuffle_active = 3;
    cfg->shuffle_passive = 4;
    cfg->shuffle_ttl = 3;
    cfg->shuffle_ms = 10000;
    cfg->rotate_ms = 3600000;
    cfg->rotate_young_ms = 60000;
    cfg->maint_ms = 1000;
    cfg->connect_timeout_ms = 10000;
    cfg->join_grace_ms = 2000;
    cfg->max_pending = 16;
    cfg->evict_gap_ms = 5000;
    cfg->ihave_delay_ms = 50;
    cfg->graft_timeout_ms = 300;
    cfg->graft_retry_ms = 150;
    cfg->missing_max = 4096;
    cfg->lazy_max = 4096;
    cfg->defer_max = 8192;
    cfg->stuck_ms = 10000;
    cfg->serve_max = 1024;
    cfg->recent_max = 256;
    cfg->recent_ms = 60000;
    cfg->pending_max = 32768;
    cfg->peer_backlog_max = 1u << 20;
    cfg->deliver_actions = false;
    cfg->score_new = 1;
    cfg->score_max = 50;
    cfg->score_invalid = 25;
    cfg->score_malformed = 25;
    cfg->score_ban = -100;
    cfg->ban_ms = 600000;
}

static bool
config_ok(const struct gossip_config *c)
{
    if (c->offer == NULL || c->has == NULL || c->fetch == NULL)
        return false;
    if (c->active_size < 2 || c->active_size > GOSSIP_ACTIVE_MAX)
        return false;
    if (c->passive_size < 1 || c->passive_size > 1024)
        return false;
    if (c->arwl > GOSSIP_TTL_MAX || c->prwl > c->arwl || c->shuffle_ttl > GOSSIP_TTL_MAX)
        return false;
    if (1 + c->shuffle_active + c->shuffle_passive > GOSSIP_SHUFFLE_MAX)
        return false;
    if (c->shuffle_ms == 0 || c->maint_ms == 0 || c->connect_timeout_ms == 0)
        return false;
    if (c->rotate_ms != 0 && (c->rotate_young_ms == 0 || c->rotate_young_ms > c->rotate_ms))
        return false;
    if (c->max_pending < 1 || c->max_pending > 256)
        return false;
    if (c->graft_timeout_ms == 0 || c->graft_retry_ms == 0)
        return false;
    if (c->missing_max < 1 || c->missing_max > (1u << 20) || c->lazy_max < 1 || c->serve_max < 1 ||
        c->recent_max > 4096)
        return false;
    if (c->score_new < 0 || c->score_invalid < 0 || c->score_malformed < 0 || c->score_ban > 0 ||
        c->score_max < 0)
        return false;
    return true;
}

int
gossip_set_addr(struct gossip *g, const char *addr)
{
    if (addr == NULL || !gs_addr_ok(addr, strlen(addr)))
        return PULL_ERR_INVAL;
    memcpy(g->addr, addr, strlen(addr) + 1);
    return 0;
}

void
gossip_set_dialable(struct gossip *g, bool dialable)
{
    g->undialable = !dialable;
}

bool
gs_key_eq(const uint8_t a[GOSSIP_KEY_BYTES], const uint8_t b[GOSSIP_KEY_BYTES])
{
    /* Keys are public: no need for a constant-time comparison. */
    return memcmp(a, b, GOSSIP_KEY_BYTES) == 0;
}

int
gossip_new(const struct pull_env *env, const uint8_t key[static GOSSIP_KEY_BYTES], const char *addr,
           const struct gossip_config *cfg, struct gossip **out)
{
    struct gossip *g = NULL;
    int rc = PULL_ERR_INVAL;

    *out = NULL;
    if (env == NULL || cfg == NULL || addr == NULL || !config_ok(cfg) ||
        !gs_addr_ok(addr, strlen(addr)))
        goto out;
    rc = PULL_ERR_NOMEM;
    if ((g = env_calloc(env, 1, sizeof(*g))) == NULL)
        goto out;
    g->env = env;
    g->cfg = *cfg;
    memcpy(g->key, key, GOSSIP_KEY_BYTES);
    memcpy(g->addr, addr, strlen(addr) + 1);
    env_random(env, g->hkey, sizeof(g->hkey));
    g->passive = env_calloc(env, cfg->passive_size, sizeof(*g->passive));
    g->msg = env_alloc(env, sizeof(*g->msg));
    g->envbuf = env_alloc(env, GOSSIP_ENVELOPE_MAX);
    g->batch = env_alloc(env, MSG_MAX);
    if (g->passive == NULL || g->msg == NULL || g->envbuf == NULL || g->batch == NULL)
        goto out;
    if ((rc = pt_init(g)) != 0)
        goto out;
    g->fill_backoff = GS_BACKOFF_MIN_MS;
    /* First periodic events at a random phase so that nodes started together do not
     * shuffle in lockstep. */
    g->shuffle_at = env_uniform(env, cfg->shuffle_ms) + 1;
    /* Rotation starts fast and slows down: a young node (or a young network, possibly
     * bootstrapped from a line) mixes its active view within minutes, then stays calm. */
    g->rotate_every = cfg->rotate_young_ms;
    g->rotate_at =
        cfg->rotate_ms ? g->rotate_every / 2 + env_uniform(env, (uint32_t)g->rotate_every) : 0;
    g->maint_at = env_uniform(env, cfg->maint_ms) + 1;
    *out = g;
    g = NULL; /* transferred */
    rc = 0;
out:
    gossip_free(g);
    return rc;
}

static void
conn_free(struct gossip *g, struct gpeer *p)
{
    gs_idq_free(g->env, &p->lazy);
    gs_idq_free(g->env, &p->serve);
    gs_idq_free(g->env, &p->graft);
    env_free(g->env, p);
}

void
gossip_free(struct gossip *g)
{
    struct gossip_action a;

    if (g == NULL)
        return;
    while (gossip_poll_action(g, &a))
        gossip_action_release(&a);
    for (uint32_t i = 0; i < g->nconns; i++)
        conn_free(g, g->conns[i]);
    env_free(g->env, g->conns);
    env_free(g->env, g->acts);
    env_free(g->env, g->passive);
    pt_release(g);
    env_free(g->env, g->msg);
    env_free(g->env, g->envbuf);
    env_free(g->env, g->batch);
    env_free(g->env, g);
}

bool
gossip_handles(uint32_t type)
{
    return (type >= MSG_JOIN && type <= MSG_SHUFFLE_REPLY) ||
           (type >= MSG_RECORDS && type <= MSG_WANT);
}

/* ---------------------------------------------------------------- id queues */

int
gs_idq_push(const struct pull_env *env, struct gs_idq *q, const uint8_t id[GOSSIP_ID_BYTES],
            uint8_t tag, uint32_t max)
{
    if (q->n >= max)
        return PULL_ERR_QUOTA;
    if (q->n == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 16;
        void *ids, *tags;
        if (cap > max)
            cap = max;
        if ((ids = env_realloc(env, q->id, (size_t)cap * GOSSIP_ID_BYTES)) == NULL)
            return PULL_ERR_NOMEM;
        q->id = ids;
        if ((tags = env_realloc(env, q->tag, cap)) == NULL)
            return PULL_ERR_NOMEM;
        q->tag = tags;
        q->cap = cap;
    }
    memcpy(q->id[q->n], id, GOSSIP_ID_BYTES);
    q->tag[q->n] = tag;
    q->n++;
    return 0;
}

void
gs_idq_pop(struct gs_idq *q, uint32_t k)
{
    if (k >= q->n) {
        q->n = 0;
        return;
    }
    memmove(q->id, q->id + k, (size_t)(q->n - k) * GOSSIP_ID_BYTES);
    memmove(q->tag, q->tag + k, q->n - k);
    q->n -= k;
}

void
gs_idq_free(const struct pull_env *env, struct gs_idq *q)
{
    env_free(env, q->id);
    env_free(env, q->tag);
    memset(q, 0, sizeof(*q));
}

/* ---------------------------------------------------------------- actions */

static struct gossip_action *
act_push(struct gossip *g, enum gossip_action_type type)
{
    struct gossip_action *a;

    if (g->nacts == g->acts_cap) {
        uint32_t cap = g->acts_cap ? g->acts_cap * 2 : 64;
        struct gossip_action *n = env_calloc(g->env, cap, sizeof(*n));
        if (n == NULL)
            return NULL;
        for (uint32_t i = 0; i < g->nacts; i++)
            n[i] = g->acts[(g->act_head + i) % g->acts_cap];
        env_free(g->env, g->acts);
        g->acts = n;
        g->acts_cap = cap;
        g->act_head = 0;
    }
    a = &g->acts[(g->act_head + g->nacts) % g->acts_cap];
    g->nacts++;
    memset(a, 0, sizeof(*a));
    a->type = type;
    return a;
}

int
gs_emit_connect(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const char *addr)
{
    struct gossip_action *a = act_push(g, GOSSIP_ACT_CONNECT);

    if (a == NULL)
        return PULL_ERR_NOMEM;
    memcpy(a->peer, key, GOSSIP_KEY_BYTES);
    memcpy(a->addr, addr, strlen(addr) + 1);
    return 0;
}

void
gs_emit_disconnect(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES])
{
    struct gossip_action *a = act_push(g, GOSSIP_ACT_DISCONNECT);

    if (a != NULL)
        memcpy(a->peer, key, GOSSIP_KEY_BYTES);
    else if (g->ncloses < GS_CLOSES_MAX) /* more than that: the host has far too many */
        memcpy(g->closes[g->ncloses++], key, GOSSIP_KEY_BYTES);
}

void
gs_emit_deliver(struct gossip *g, const uint8_t id[GOSSIP_ID_BYTES])
{
    struct gossip_action *a;

    if (!g->cfg.deliver_actions || (a = act_push(g, GOSSIP_ACT_DELIVER)) == NULL)
        return;
    memcpy(a->id, id, GOSSIP_ID_BYTES);
}

int
gs_send(struct gossip *g, struct gpeer *p, struct pull_wb *w)
{
    struct gossip_action *a;
    uint32_t type = 0;
    int rc;

    if ((rc = wb_error(w)) != 0) {
        wb_reset(w);
        return rc;
    }
    if (p->doomed || p->state == GOSSIP_PEER_CONNECTING) {
        wb_reset(w);
        return 0;
    }
    if ((a = act_push(g, GOSSIP_ACT_SEND)) == NULL) {
        wb_reset(w);
        return PULL_ERR_NOMEM;
    }
    memcpy(a->peer, p->key, GOSSIP_KEY_BYTES);
    (void)msg_peek_type(w->p, w->len, &type);
    a->data = wb_steal(w, &a->len);
    a->env = w->env;
    if (type < 32)
        g->st.msgs_out[type]++;
    g->st.bytes_out += a->len;
    p->backlog += a->len;
    if (g->cfg.peer_backlog_max != 0 && p->backlog > g->cfg.peer_backlog_max)
        p->doomed = GS_DOOM_BACKLOG;
    return 0;
}

void
gs_msg_begin(struct gossip *g, struct pull_wb *w, msgpack_packer *pk, uint32_t type,
             uint32_t nfields)
{
    wb_init_env(w, g->env, MSG_MAX);
    mp_packer_init(pk, w);
    msgpack_pack_array(pk, 1 + nfields);
    msgpack_pack_uint32(pk, type);
}

bool
gossip_poll_action(struct gossip *g, struct gossip_action *out)
{
    if (g->nacts == 0 && g->ncloses > 0) {
        memset(out, 0, sizeof(*out));
        out->type = GOSSIP_ACT_DISCONNECT;
        memcpy(out->peer, g->closes[0], GOSSIP_KEY_BYTES);
        memmove(g->closes[0], g->closes[1], (size_t)--g->ncloses * GOSSIP_KEY_BYTES);
        return true;
    }
    if (g->nacts == 0)
        return false;
    *out = g->acts[g->act_head];
    g->act_head = (g->act_head + 1) % g->acts_cap;
    g->nacts--;
    return true;
}

void
gossip_action_release(struct gossip_action *a)
{
    env_free(a->env, a->data);
    a->data = NULL;
    a->len = 0;
}

/* ---------------------------------------------------------------- connections */

struct gpeer *
gs_conn_find(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES])
{
    for (uint32_t i = 0; i < g->nconns; i++) {
        if (gs_key_eq(g->conns[i]->key, key))
            return g->conns[i];
    }
    return NULL;
}

struct gpeer *
gs_conn_add(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const char *addr, uint8_t state,
            uint64_t now_ms)
{
    struct gpeer *p;
    int i;

    if (g->nconns == g->conns_cap) {
        uint32_t cap = g->conns_cap ? g->conns_cap * 2 : 16;
        struct gpeer **n = env_realloc(g->env, g->conns, (size_t)cap * sizeof(*n));
        if (n == NULL)
            return NULL;
        g->conns = n;
        g->conns_cap = cap;
    }
    if ((p = env_calloc(g->env, 1, sizeof(*p))) == NULL)
        return NULL;
    memcpy(p->key, key, GOSSIP_KEY_BYTES);
    if (addr != NULL) {
        memcpy(p->addr, addr, strlen(addr) + 1);
        gs_addr_group(addr, strlen(addr), p->group);
    }
    p->state = state;
    p->since = now_ms;
    g->conns[g->nconns++] = p;
    if ((i = mb_passive_find(g, key)) >= 0)
        mb_passive_remove(g, (uint32_t)i);
    return p;
}

void
gs_conn_remove(struct gossip *g, struct gpeer *p)
{
    bool tree_edge = p->state == GOSSIP_PEER_ACTIVE && p->eager;

    for (uint32_t i = 0; i < g->nconns; i++) {
        if (g->conns[i] != p)
            continue;
        if (p->state == GOSSIP_PEER_ACTIVE)
            g->nactive--;
        /* Keep the order: iteration order is part of the engine's determinism. */
        memmove(&g->conns[i], &g->conns[i + 1], (g->nconns - i - 1) * sizeof(g->conns[0]));
        g->nconns--;
        conn_free(g, p);
        if (tree_edge)
            pt_on_eager_lost(g, 0);
        return;
    }
}

uint32_t
gs_pending_count(const struct gossip *g)
{
    return g->nconns - g->nactive;
}

/* ---------------------------------------------------------------- scores and bans */

void
gs_penalize(struct gossip *g, struct gpeer *p, int32_t amount)
{
    (void)g;
    p->score -= amount;
    if (p->score <= g->cfg.score_ban && !p->doomed)
        p->doomed = GS_DOOM_BAN;
}

bool
gs_is_banned(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], uint64_t now_ms)
{
    for (uint32_t i = 0; i < g->nbans; i++) {
        if (!g->bans[i].group && gs_key_eq(g->bans[i].key, key))
            return g->bans[i].until > now_ms;
    }
    return false;
}

bool
gs_group_banned(struct gossip *g, const uint8_t group[GS_GROUP_LEN], uint64_t now_ms)
{
    if (group[0] == 0)
        return false;
    for (uint32_t i = 0; i < g->nbans; i++) {
        if (g->bans[i].group && memcmp(g->bans[i].key, group, GS_GROUP_LEN) == 0)
            return g->bans[i].until > now_ms;
    }
    return false;
}

/* ban_slot finds the entry for (key or group) or a free or replaceable one. */
static uint32_t
ban_slot(struct gossip *g, const uint8_t *k, bool group)
{
    uint32_t slot;

    for (uint32_t i = 0; i < g->nbans; i++) {
        if (g->bans[i].group == group &&
            memcmp(g->bans[i].key, k, group ? GS_GROUP_LEN : GOSSIP_KEY_BYTES) == 0)
            return i;
    }
    if (g->nbans < GS_BANS_MAX)
        return g->nbans++;
    /* Full: replace the ban that ends first. */
    slot = 0;
    for (uint32_t i = 1; i < g->nbans; i++) {
        if (g->bans[i].until < g->bans[slot].until)
            slot = i;
    }
    return slot;
}

/* ban_group bans an address group once GS_GROUP_STRIKES of its keys are banned: one
 * operator behind one /16 doesn't get a new key's worth of chances forever. */
static void
ban_group(struct gossip *g, const uint8_t group[GS_GROUP_LEN], uint64_t ms, uint64_t now_ms)
{
    uint32_t strikes = 0, slot;

    if (group[0] == 0)
        return;
    for (uint32_t i = 0; i < g->nbans; i++) {
        if (!g->bans[i].group && g->bans[i].until > now_ms &&
            gs_group_eq(g->bans[i].group_of, group))
            strikes++;
    }
    if (strikes < GS_GROUP_STRIKES)
        return;
    slot = ban_slot(g, group, true);
    memset(g->bans[slot].key, 0, sizeof(g->bans[slot].key));
    memcpy(g->bans[slot].key, group, GS_GROUP_LEN);
    g->bans[slot].group = true;
    g->bans[slot].until = now_ms + ms;
}

void
gs_ban(struct gossip *g, const uint8_t key[GOSSIP_KEY_BYTES], const uint8_t *group, uint64_t ms,
       uint64_t now_ms)
{
    uint32_t slot = ban_slot(g, key, false);
    int i;

    memcpy(g->bans[slot].key, key, GOSSIP_KEY_BYTES);
    g->bans[slot].group = false;
    memset(g->bans[slot].group_of, 0, GS_GROUP_LEN);
    if (group != NULL)
        memcpy(g->bans[slot].group_of, group, GS_GROUP_LEN);
    g->bans[slot].until = now_ms + ms;
    if ((i = mb_passive_find(g, key)) >= 0)
        mb_passive_remove(g, (uint32_t)i);
    if (group != NULL)
        ban_group(g, group, ms, now_ms);
}

static void
bans_expire(struct gossip *g, uint64_t now_ms)
{
    for (uint32_t i = 0; i < g->nbans;) {
        if (g->bans[i].until <= now_ms)
            g->bans[i] = g->bans[--g->nbans];
        else
            i++;
    }
}

/* gs_finish runs at the end of every entry point: reaps doomed connections, then repairs
 * the active view. */
static void
gs_finish(struct gossip *g, uint64_t now_ms)
{
    bool reaped = false;

    for (uint32_t i = g->nconns; i-- > 0;) {
        struct gpeer *p = g->conns[i];
        if (!p->doomed || i >= g->nconns)
            continue;
        switch (p->doomed) {
        case GS_DOOM_BAN:
            g->st.peers_banned++;
            gs_ban(g, p->key, p->group, g->cfg.ban_ms, now_ms);
            mb_close(g, p, GOSSIP_BYE_BANNED, false, now_ms);
            break;
        case GS_DOOM_BACKLOG:
            /* Stuck: avoid it for a while, or it would be back in a view at once. */
            g->st.peers_dropped_backlog++;
            gs_ban(g, p->key, NULL, g->cfg.ban_ms / 10, now_ms);
            mb_close(g, p, -1, false, now_ms);
            break;
        case GS_DOOM_NOMEM:
            /* Never dialed: keep the peer known, to dial it again later. */
            mb_close(g, p, -1, true, now_ms);
            break;
        default:
            if (p->state == GOSSIP_PEER_CONNECTING) {
                g->st.connect_failures++;
                mb_dial_failed(g, now_ms);
            }
            mb_close(g, p, -1, false, now_ms);
            break;
        }
        reaped = true;
    }
    (void)reaped;
    mb_fill(g, now_ms);
}

/* ---------------------------------------------------------------- entry points */

int
gossip_add_known(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES], const char *addr,
                 uint64_t now_ms)
{
    size_t n = addr ? strlen(addr) : 0;

    if (gs_key_eq(key, g->key) || !gs_addr_ok(addr, n))
        return PULL_ERR_INVAL;
    if (gs_is_banned(g, key, now_ms))
        return PULL_ERR_PERM;
    if (gs_conn_find(g, key) == NULL)
        mb_passive_add(g, key, addr, n, true, now_ms); /* the host vouches for it */
    gs_finish(g, now_ms);
    return 0;
}

void
gossip_on_connected(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES], const char *addr,
                    bool inbound, uint64_t now_ms)
{
    struct gpeer *p;

    uint8_t group[GS_GROUP_LEN];

    gs_addr_group(addr, addr != NULL ? strlen(addr) : 0, group);
    if (gs_key_eq(key, g->key) || gs_is_banned(g, key, now_ms) ||
        gs_group_banned(g, group, now_ms)) {
        gs_emit_disconnect(g, key);
        goto out;
    }
    if ((p = gs_conn_find(g, key)) != NULL) {
        if (p->state == GOSSIP_PEER_CONNECTING) {
            p->state = GOSSIP_PEER_PENDING;
            p->since = now_ms;
            mb_on_connected(g, p, now_ms);
        }
        goto out; /* already connected: the host reported it twice */
    }
    if (gs_pending_count(g) >= g->cfg.max_pending) {
        gs_emit_disconnect(g, key);
        goto out;
    }
    /* An inbound peer's advertised address arrives with its JOIN or NEIGHBOR. An outbound
     * connection we did not ask for is the host's (e.g. `pull connect`): treat it as a
     * request to add that peer to the active view. */
    p = gs_conn_add(g, key, inbound ? NULL : addr, GOSSIP_PEER_PENDING, now_ms);
    if (p == NULL) {
        gs_emit_disconnect(g, key);
        goto out;
    }
    p->inbound = inbound;
    memcpy(p->group, group, GS_GROUP_LEN);
    if (inbound && addr != NULL && gs_addr_ok(addr, strlen(addr)))
        memcpy(p->seen, addr, strlen(addr) + 1);
    if (!inbound) {
        if (addr == NULL || !gs_addr_ok(addr, strlen(addr)))
            p->addr[0] = '\0';
        p->purpose = g->joined ? GS_PURPOSE_HIGH : GS_PURPOSE_JOIN;
        mb_on_connected(g, p, now_ms);
    }
out:
    gs_finish(g, now_ms);
}

void
gossip_on_disconnected(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES],
                       uint64_t now_ms)
{
    struct gpeer *p = gs_conn_find(g, key);

    if (p != NULL) {
        if (p->state == GOSSIP_PEER_CONNECTING) {
            g->st.connect_failures++;
            mb_dial_failed(g, now_ms);
        }
        mb_on_lost(g, p, now_ms);
    }
    gs_finish(g, now_ms);
}

int
gossip_on_message(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES], const uint8_t *msg,
                  size_t len, uint64_t now_ms)
{
    struct gpeer *p = gs_conn_find(g, key);
    int rc = 0;

    if (p == NULL || p->state == GOSSIP_PEER_CONNECTING || p->doomed) {
        g->st.ignored++;
        goto out;
    }
    g->st.bytes_in += len;
    if ((rc = gs_decode(msg, len, g->msg)) != 0) {
        if (rc == PULL_ERR_UNSUPPORTED) {
            g->st.ignored++; /* a newer peer's message: not an offence */
        } else {
            g->st.malformed++;
            gs_penalize(g, p, g->cfg.score_malformed);
        }
        goto out;
    }
    if (g->msg->type < 32)
        g->st.msgs_in[g->msg->type]++;
    if (g->msg->type >= MSG_RECORDS)
        pt_handle(g, p, g->msg, now_ms);
    else
        mb_handle(g, p, g->msg, now_ms);
out:
    gs_finish(g, now_ms);
    return rc;
}

void
gossip_on_flushed(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES], size_t bytes,
                  uint64_t now_ms)
{
    struct gpeer *p = gs_conn_find(g, key);

    if (p != NULL) {
        p->backlog = bytes > p->backlog ? 0 : p->backlog - bytes;
        if (bytes > 0)
            p->stalled_ms = 0; /* it reads */
        if (p->serve.n > 0 && !p->doomed)
            pt_serve(g, p, now_ms);
    }
    gs_finish(g, now_ms);
}

int
gossip_publish(struct gossip *g, const uint8_t *env, size_t len,
               const uint8_t id[static GOSSIP_ID_BYTES], uint64_t now_ms)
{
    int rc;

    if (env == NULL || len == 0)
        return PULL_ERR_INVAL;
    if (len > GOSSIP_ENVELOPE_MAX)
        return PULL_ERR_TOO_BIG;
    rc = pt_publish(g, env, len, id, now_ms);
    gs_finish(g, now_ms);
    return rc;
}

void
gossip_verdict(struct gossip *g, const uint8_t *env, size_t len,
               const uint8_t id[static GOSSIP_ID_BYTES], enum gossip_verdict v, uint64_t now_ms)
{
    if (env != NULL && len > 0 && len <= GOSSIP_ENVELOPE_MAX)
        pt_verdict(g, env, len, id, v, now_ms);
    gs_finish(g, now_ms);
}

int
gossip_want(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES],
            const uint8_t (*ids)[GOSSIP_ID_BYTES], size_t n, uint64_t now_ms)
{
    struct gpeer *p = gs_conn_find(g, key);
    int rc;

    if (n == 0 || n > GOSSIP_IDS_MAX)
        return PULL_ERR_INVAL;
    if (p == NULL || p->state == GOSSIP_PEER_CONNECTING || p->doomed)
        return PULL_ERR_NOT_FOUND;
    rc = pt_want(g, p, ids, n);
    gs_finish(g, now_ms);
    return rc;
}

int
gossip_push(struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES],
            const uint8_t (*ids)[GOSSIP_ID_BYTES], size_t n, uint64_t now_ms)
{
    struct gpeer *p = gs_conn_find(g, key);
    int rc;

    if (n == 0)
        return PULL_ERR_INVAL;
    if (p == NULL || p->state == GOSSIP_PEER_CONNECTING || p->doomed)
        return PULL_ERR_NOT_FOUND;
    if (n > INT32_MAX)
        n = INT32_MAX;
    rc = pt_push(g, p, ids, n, now_ms);
    gs_finish(g, now_ms);
    return rc;
}

void
gossip_leave(struct gossip *g, uint64_t now_ms)
{
    while (g->nconns > 0) {
        struct gpeer *p = g->conns[g->nconns - 1];
        mb_close(g, p, p->state == GOSSIP_PEER_CONNECTING ? -1 : GOSSIP_BYE_LEAVING, true, now_ms);
    }
    g->joined = false;
    (void)now_ms;
}

uint64_t
gossip_next_deadline(const struct gossip *g)
{
    uint64_t a = mb_next_deadline(g), b = pt_next_deadline(g);

    return a < b ? a : b;
}

void
gossip_on_timeout(struct gossip *g, uint64_t now_ms)
{
    if (now_ms >= g->maint_at) {
        g->maint_at = now_ms + g->cfg.maint_ms;
        bans_expire(g, now_ms);
        for (uint32_t i = 0; i < g->nconns; i++) {
            struct gpeer *p = g->conns[i];
            if (p->state != GOSSIP_PEER_ACTIVE && !p->doomed &&
                now_ms - p->since >= g->cfg.connect_timeout_ms)
                p->doomed = GS_DOOM_TIMEOUT;
            /* bytes wait for it and it flushed none for stuck_ms: stuck, dropped as one past
             * peer_backlog_max is (its pushes wait for it below that, see broadcast) */
            if (p->backlog == 0 || g->cfg.peer_backlog_max == 0) /* 0: flushes unreported */
                p->stalled_ms = 0;
            else if (p->stalled_ms == 0)
                p->stalled_ms = now_ms;
            else if (!p->doomed && now_ms - p->stalled_ms >= g->cfg.stuck_ms)
                p->doomed = GS_DOOM_BACKLOG;
        }
    }
    mb_timers(g, now_ms);
    pt_timers(g, now_ms);
    gs_finish(g, now_ms);
}

/* ---------------------------------------------------------------- introspection */

static uint32_t
key_bans(const struct gossip *g)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < g->nbans; i++)
        n += !g->bans[i].group;
    return n;
}

size_t
gossip_peer_count(const struct gossip *g)
{
    return (size_t)g->nconns + g->npassive + key_bans(g);
}

int
gossip_peer_at(const struct gossip *g, size_t i, struct gossip_peer_info *out)
{
    memset(out, 0, sizeof(*out));
    if (i < g->nconns) {
        /* active first, then the others, both in table order */
        size_t k = 0;
        for (int pass = 0; pass < 2; pass++) {
            for (uint32_t j = 0; j < g->nconns; j++) {
                const struct gpeer *p = g->conns[j];
                if ((p->state == GOSSIP_PEER_ACTIVE) != (pass == 0))
                    continue;
                if (k++ != i)
                    continue;
                memcpy(out->key, p->key, GOSSIP_KEY_BYTES);
                memcpy(out->addr, p->addr, sizeof(out->addr));
                out->state = (enum gossip_peer_state)p->state;
                out->inbound = p->inbound;
                out->eager = p->state == GOSSIP_PEER_ACTIVE && p->eager;
                out->score = p->score;
                out->backlog = p->backlog;
                return 0;
            }
        }
        return PULL_ERR_NOT_FOUND;
    }
    i -= g->nconns;
    if (i < g->npassive) {
        memcpy(out->key, g->passive[i].key, GOSSIP_KEY_BYTES);
        memcpy(out->addr, g->passive[i].addr, sizeof(out->addr));
        out->state = GOSSIP_PEER_PASSIVE;
        out->tried = g->passive[i].tried;
        return 0;
    }
    i -= g->npassive;
    for (uint32_t j = 0; j < g->nbans; j++) {
        if (g->bans[j].group || i-- != 0)
            continue;
        memcpy(out->key, g->bans[j].key, GOSSIP_KEY_BYTES);
        out->state = GOSSIP_PEER_BANNED;
        return 0;
    }
    return PULL_ERR_NOT_FOUND;
}

size_t
gossip_active_count(const struct gossip *g)
{
    return g->nactive;
}

bool
gossip_is_active(const struct gossip *g, const uint8_t key[static GOSSIP_KEY_BYTES])
{
    for (uint32_t i = 0; i < g->nconns; i++) {
        if (g->conns[i]->state == GOSSIP_PEER_ACTIVE && gs_key_eq(g->conns[i]->key, key))
            return true;
    }
    return false;
}

void
gossip_get_stats(const struct gossip *g, struct gossip_stats *out)
{
    *out = g->st;
}
