/* sim: the deterministic network simulator (see sim.h). */
#include "tests/sim/sim.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/mp.h"
#include "proto/msg.h"
#include "proto/syncer.h"

#define SIM_WALL0_S 1800000000ull /* the wall clock at simulated time 0 */
#define SIM_FEATURES (MSG_FEAT_RECON | MSG_FEAT_MAIL)
#define SIM_DIAL_ADDRS 4096

enum ev_type {
    EV_START = 1, /* start node a (bootstrap) */
    EV_TIMER,     /* node a's engine deadline */
    EV_CONN_UP,   /* dial a -> b (conn) completes */
    EV_CONN_FAIL, /* dial a -> b (conn) fails */
    EV_CLOSED,    /* a learns that its connection conn to b is gone */
    EV_MSG,       /* message from a to b on conn */
};

struct ev {
    uint64_t t;
    uint64_t seq;
    uint8_t type;
    uint32_t a, b;
    uint64_t conn;
    uint8_t *data;
    size_t len;
    bool counted; /* EV_MSG: the SEND's counted flag, reported back when flushed */
};

struct sconn {
    uint32_t peer;
    uint64_t id;
    bool up;
    bool broken;
    uint64_t last_tx;  /* delivery time of the last message sent on it (FIFO) */
    uint64_t inflight; /* bytes sent on it and not yet flushed */
};

struct srec {
    uint8_t id[GOSSIP_ID_BYTES];
    uint8_t *env;
    uint32_t len;
    bool valid;
    uint32_t origin;
    uint64_t t_pub;
    uint64_t receipts;
    uint32_t *arrival; /* ms after t_pub per node, UINT32_MAX = not (yet) */
};

/* A row of a node's key-value tables (what pulld keeps in LMDB: peers, mail). */
struct skv {
    uint8_t table;
    uint8_t key[32];
    uint8_t *val;
    size_t len;
};

struct snode {
    struct sim *sim;
    uint32_t idx;
    uint8_t key[GOSSIP_KEY_BYTES];
    struct ident *id; /* cfg.idents: the node's identity (key = id->pk) */
    char addr[32];
    struct env_seeded env;
    uint32_t starts;
    struct syncer *e;
    bool alive, muted, nat;
    bool raw;           /* played by the test (sim_set_raw): no engine, reachable */
    uint64_t raw_bytes; /* raw: bytes delivered to it */
    uint32_t group;
    uint8_t *have;     /* bitset over records */
    uint32_t have_cap; /* bytes */
    uint32_t nhave;
    struct sconn *conns;
    uint32_t nconns, conns_cap;
    uint64_t timer_at;
    uint8_t (*known)[GOSSIP_KEY_BYTES]; /* bootstrap peers */
    uint32_t nknown;
    struct skv *kv; /* the node's key-value tables: they survive a restart */
    uint32_t nkv, kv_cap;
    struct sim_counters sent;
    struct sim_counters recvd;
};

struct sim {
    struct sim_config cfg;
    uint64_t now;
    uint64_t seq;
    uint64_t next_conn;
    struct env_seeded net; /* the network's randomness */
    struct snode *nodes;
    struct srec *recs;
    uint32_t nrecs, recs_cap;
    uint32_t *rec_index; /* open addressing: rec + 1 */
    uint32_t rec_mask;
    struct ev *heap;
    size_t nheap, heap_cap;
    struct sim_counters all;
    struct sim_mail_hook mail;
    bool (*known)(void *ctx, const uint8_t key[32]); /* the engines' host known() */
    struct {
        char addr[48];
        uint64_t count;
    } dials[SIM_DIAL_ADDRS]; /* CONNECT actions by address (the first SIM_DIAL_ADDRS) */
    uint32_t ndials;
    uint32_t *by_key; /* cfg.idents: node indices sorted by key */
    struct sim_peaks peaks;
};

/* ---------------------------------------------------------------- event heap */

static bool
ev_less(const struct ev *x, const struct ev *y)
{
    return x->t < y->t || (x->t == y->t && x->seq < y->seq);
}

static void
ev_push(struct sim *s, struct ev e)
{
    size_t i;

    if (s->nheap == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 4096;
        struct ev *h = realloc(s->heap, cap * sizeof(*h));
        if (h == NULL) {
            fprintf(stderr, "sim: out of memory\n");
            abort();
        }
        s->heap = h;
        s->heap_cap = cap;
    }
    if (e.t < s->now)
        e.t = s->now;
    e.seq = s->seq++;
    i = s->nheap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_less(&e, &s->heap[parent]))
            break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = e;
}

static struct ev
ev_pop(struct sim *s)
{
    struct ev top = s->heap[0], last = s->heap[--s->nheap];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->nheap)
            break;
        if (c + 1 < s->nheap && ev_less(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!ev_less(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->nheap > 0)
        s->heap[i] = last;
    return top;
}

static void
push_simple(struct sim *s, uint64_t t, uint8_t type, uint32_t a, uint32_t b, uint64_t conn)
{
    struct ev e = {.t = t, .type = type, .a = a, .b = b, .conn = conn};

    ev_push(s, e);
}

/* ---------------------------------------------------------------- records */

static uint32_t
rec_home(const struct sim *s, const uint8_t id[GOSSIP_ID_BYTES])
{
    return be32dec(id) & s->rec_mask;
}

static int
rec_lookup(const struct sim *s, const uint8_t id[GOSSIP_ID_BYTES])
{
    uint32_t h = rec_home(s, id);

    while (s->rec_index[h] != 0) {
        const struct srec *r = &s->recs[s->rec_index[h] - 1];
        if (memcmp(r->id, id, GOSSIP_ID_BYTES) == 0)
            return (int)(s->rec_index[h] - 1);
        h = (h + 1) & s->rec_mask;
    }
    return -1;
}

static int
rec_new(struct sim *s, bool valid, uint32_t origin)
{
    struct srec *r;
    uint32_t h;

    if (s->nrecs == s->recs_cap) {
        uint32_t cap = s->recs_cap ? s->recs_cap * 2 : 64;
        struct srec *n = realloc(s->recs, cap * sizeof(*n));
        if (n == NULL)
            return PULL_ERR_NOMEM;
        s->recs = n;
        s->recs_cap = cap;
    }
    if ((uint64_t)(s->nrecs + 1) * 2 > (uint64_t)s->rec_mask + 1) {
        uint32_t cap = (s->rec_mask + 1) * 2;
        uint32_t *idx = calloc(cap, sizeof(*idx));
        if (idx == NULL)
            return PULL_ERR_NOMEM;
        free(s->rec_index);
        s->rec_index = idx;
        s->rec_mask = cap - 1;
        for (uint32_t i = 0; i < s->nrecs; i++) {
            h = rec_home(s, s->recs[i].id);
            while (s->rec_index[h] != 0)
                h = (h + 1) & s->rec_mask;
            s->rec_index[h] = i + 1;
        }
    }
    r = &s->recs[s->nrecs];
    memset(r, 0, sizeof(*r));
    r->len = s->cfg.envelope_bytes;
    r->env = malloc(r->len);
    r->arrival = malloc((size_t)s->cfg.nodes * sizeof(*r->arrival));
    if (r->env == NULL || r->arrival == NULL) {
        free(r->env);
        free(r->arrival);
        return PULL_ERR_NOMEM;
    }
    env_random(&s->net.env, r->env, r->len);
    /* Give envelopes a plausible shape: a msgpack array [bin, bin 64] header. */
    r->env[0] = 0x92;
    crypto_generichash(r->id, GOSSIP_ID_BYTES, r->env, r->len, NULL, 0);
    memset(r->arrival, 0xff, (size_t)s->cfg.nodes * sizeof(*r->arrival));
    r->valid = valid;
    r->origin = origin;
    r->t_pub = s->now;
    h = rec_home(s, r->id);
    while (s->rec_index[h] != 0)
        h = (h + 1) & s->rec_mask;
    s->rec_index[h] = s->nrecs + 1;
    return (int)s->nrecs++;
}

static bool
node_has(const struct snode *n, uint32_t r)
{
    return r / 8 < n->have_cap && (n->have[r / 8] >> (r % 8) & 1);
}

static void
node_set(struct snode *n, uint32_t r)
{
    if (r / 8 >= n->have_cap) {
        uint32_t cap = n->have_cap ? n->have_cap : 16;
        uint8_t *h;
        while (r / 8 >= cap)
            cap *= 2;
        if ((h = realloc(n->have, cap)) == NULL) {
            fprintf(stderr, "sim: out of memory\n");
            abort();
        }
        memset(h + n->have_cap, 0, cap - n->have_cap);
        n->have = h;
        n->have_cap = cap;
    }
    if (!node_has(n, r)) {
        struct srec *rec = &n->sim->recs[r];
        n->have[r / 8] |= (uint8_t)(1u << (r % 8));
        n->nhave++;
        if (n->e != NULL) /* the store changed: the engine's recon set follows */
            syncer_on_stored(n->e, rec->id, NULL, rec->env, rec->len, rec->origin == n->idx);
    }
}

/* ---------------------------------------------------------------- host callbacks */

static enum gossip_verdict
cb_offer(void *ctx, const uint8_t *env, size_t len, const uint8_t id[GOSSIP_ID_BYTES],
         const uint8_t from[GOSSIP_KEY_BYTES])
{
    struct snode *n = ctx;
    struct sim *s = n->sim;
    int r = rec_lookup(s, id);
    struct srec *rec;

    (void)from;
    if (r < 0)
        return GOSSIP_INVALID;
    rec = &s->recs[r];
    rec->receipts++;
    if (!rec->valid || len != rec->len || memcmp(env, rec->env, len) != 0)
        return GOSSIP_INVALID;
    if (node_has(n, (uint32_t)r))
        return GOSSIP_DUPLICATE;
    node_set(n, (uint32_t)r);
    if (s->now - rec->t_pub < UINT32_MAX)
        rec->arrival[n->idx] = (uint32_t)(s->now - rec->t_pub);
    return GOSSIP_NEW;
}

static bool
cb_has(void *ctx, const uint8_t id[GOSSIP_ID_BYTES])
{
    struct snode *n = ctx;
    int r = rec_lookup(n->sim, id);

    return r >= 0 && node_has(n, (uint32_t)r);
}

static int
cb_fetch(void *ctx, const uint8_t id[GOSSIP_ID_BYTES], uint8_t *buf, size_t cap, size_t *len)
{
    struct snode *n = ctx;
    int r = rec_lookup(n->sim, id);

    *len = 0;
    if (r < 0 || !node_has(n, (uint32_t)r) || n->sim->recs[r].len > cap)
        return PULL_ERR_NOT_FOUND;
    memcpy(buf, n->sim->recs[r].env, n->sim->recs[r].len);
    *len = n->sim->recs[r].len;
    return 0;
}

static int
cb_each_id(void *ctx, recon_visit_fn visit, void *vctx)
{
    struct snode *n = ctx;
    int rc;

    for (uint32_t r = 0; r < n->sim->nrecs; r++) {
        if (node_has(n, r) && (rc = visit(vctx, n->sim->recs[r].id)) != 0)
            return rc;
    }
    return 0;
}

/* A record's "created" is its index: records are made in time order. */
static int
cb_each_key(void *ctx, uint64_t since,
            int (*visit)(void *vctx, uint64_t created, const uint8_t id[32]), void *vctx)
{
    struct snode *n = ctx;
    int rc;

    for (uint64_t r = since; r < n->sim->nrecs; r++) {
        if (node_has(n, (uint32_t)r) && (rc = visit(vctx, r, n->sim->recs[r].id)) != 0)
            return rc;
    }
    return 0;
}

/* ---------------------------------------------------------------- key-value tables */

static struct skv *
kv_find(struct snode *n, uint8_t table, const uint8_t key[32])
{
    for (uint32_t i = 0; i < n->nkv; i++) {
        if (n->kv[i].table == table && memcmp(n->kv[i].key, key, 32) == 0)
            return &n->kv[i];
    }
    return NULL;
}

/* kv_put takes val (owned). */
static void
kv_put(struct snode *n, uint8_t table, const uint8_t key[32], uint8_t *val, size_t len)
{
    struct skv *v = kv_find(n, table, key);

    if (v == NULL) {
        if (n->nkv == n->kv_cap) {
            uint32_t cap = n->kv_cap ? n->kv_cap * 2 : 16;
            struct skv *x = realloc(n->kv, cap * sizeof(*x));
            if (x == NULL) {
                fprintf(stderr, "sim: out of memory\n");
                abort();
            }
            n->kv = x;
            n->kv_cap = cap;
        }
        v = &n->kv[n->nkv++];
        v->table = table;
        memcpy(v->key, key, 32);
        v->val = NULL;
    }
    free(v->val);
    v->val = val;
    v->len = len;
}

static void
kv_del(struct snode *n, uint8_t table, const uint8_t key[32])
{
    struct skv *v = kv_find(n, table, key);

    if (v != NULL) {
        free(v->val);
        *v = n->kv[--n->nkv];
    }
}

/* ---------------------------------------------------------------- setup */

void
sim_config_default(struct sim_config *c)
{
    memset(c, 0, sizeof(*c));
    c->nodes = 1000;
    c->seed = 1;
    c->latency_ms = 50;
    c->jitter_ms = 0;
    c->loss = 0;
    c->connect_fail_ms = 1000;
    c->detect_ms = 100;
    c->envelope_bytes = 800;
    syncer_config_default(&c->engine);
    c->engine.sync_interval_ms = 10000;
    c->engine.recon_cache_symbols = 1024; /* a thousand engines in one process */
}

/* qsort has no context argument: the simulator being sorted (single-threaded). */
static const struct sim *by_key_sort;

static int
cmp_by_key(const void *x, const void *y)
{
    const struct snode *nodes = by_key_sort->nodes;

    return memcmp(nodes[*(const uint32_t *)x].key, nodes[*(const uint32_t *)y].key,
                  GOSSIP_KEY_BYTES);
}

int
sim_new(const struct sim_config *c, struct sim **out)
{
    struct sim *s;

    *out = NULL;
    if (c->nodes == 0 || c->nodes > (1u << 20) || c->envelope_bytes == 0 ||
        c->envelope_bytes > GOSSIP_ENVELOPE_MAX)
        return PULL_ERR_INVAL;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return PULL_ERR_NOMEM;
    s->cfg = *c;
    env_seeded_init(&s->net, c->seed ^ 0x6e6574776f726bull, 0, 0);
    s->nodes = calloc(c->nodes, sizeof(*s->nodes));
    s->rec_mask = 255;
    s->rec_index = calloc(s->rec_mask + 1, sizeof(*s->rec_index));
    if (s->nodes == NULL || s->rec_index == NULL) {
        sim_free(s);
        return PULL_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < c->nodes; i++) {
        struct snode *n = &s->nodes[i];
        uint8_t seed[16];
        n->sim = s;
        n->idx = i;
        n->timer_at = UINT64_MAX;
        be64enc(seed, c->seed);
        be32enc(seed + 8, i);
        if (c->idents) {
            uint8_t sk[32];
            crypto_generichash(sk, sizeof(sk), seed, 12, (const uint8_t *)"sim/ident", 9);
            if ((n->id = malloc(sizeof(*n->id))) == NULL || ident_from_seed(n->id, sk) != 0) {
                sim_free(s);
                return PULL_ERR_NOMEM;
            }
            memcpy(n->key, n->id->pk, GOSSIP_KEY_BYTES);
        } else {
            be32enc(n->key, i);
            crypto_generichash(n->key + 4, GOSSIP_KEY_BYTES - 4, seed, sizeof(seed), NULL, 0);
        }
        snprintf(n->addr, sizeof(n->addr), "10.%u.%u.%u:7450", (i >> 16) & 255, (i >> 8) & 255,
                 i & 255);
    }
    if (c->idents) {
        if ((s->by_key = malloc(c->nodes * sizeof(*s->by_key))) == NULL) {
            sim_free(s);
            return PULL_ERR_NOMEM;
        }
        for (uint32_t i = 0; i < c->nodes; i++)
            s->by_key[i] = i;
        by_key_sort = s;
        qsort(s->by_key, c->nodes, sizeof(*s->by_key), cmp_by_key);
        by_key_sort = NULL;
    }
    s->next_conn = 1;
    *out = s;
    return 0;
}

static void
node_stop(struct sim *s, struct snode *n)
{
    (void)s;
    syncer_free(n->e);
    n->e = NULL;
}

void
sim_free(struct sim *s)
{
    if (s == NULL)
        return;
    for (uint32_t i = 0; s->nodes != NULL && i < s->cfg.nodes; i++) {
        struct snode *n = &s->nodes[i];
        node_stop(s, n);
        free(n->have);
        free(n->conns);
        free(n->known);
        for (uint32_t k = 0; k < n->nkv; k++)
            free(n->kv[k].val);
        free(n->kv);
        if (n->id != NULL)
            sodium_memzero(n->id, sizeof(*n->id));
        free(n->id);
    }
    free(s->by_key);
    for (size_t i = 0; i < s->nheap; i++)
        free(s->heap[i].data);
    for (uint32_t i = 0; i < s->nrecs; i++) {
        free(s->recs[i].env);
        free(s->recs[i].arrival);
    }
    free(s->heap);
    free(s->recs);
    free(s->rec_index);
    free(s->nodes);
    free(s);
}

/* sim_hook_known: what the scenario says node's host knows (sim_mail_hook.known). */
static bool
sim_hook_known(void *ctx, const uint8_t key[32])
{
    const struct snode *n = ctx;

    return n->sim->mail.known(n->sim->mail.ctx, n->idx, key);
}

void
sim_set_mail(struct sim *s, const struct sim_mail_hook *hook)
{
    s->mail = *hook;
    if (hook->known != NULL)
        s->known = sim_hook_known;
}

/* sim_node_known: a key the simulated store knows, i.e. one of the simulation's nodes. */
static bool
sim_node_known(void *ctx, const uint8_t key[32])
{
    const struct snode *n = ctx;

    return sim_node_of(n->sim, key) >= 0;
}

void
sim_set_known(struct sim *s, bool only_nodes)
{
    s->known = only_nodes ? sim_node_known : NULL;
}

uint64_t
sim_now(const struct sim *s)
{
    return s->now;
}

uint32_t
sim_nodes(const struct sim *s)
{
    return s->cfg.nodes;
}

const uint8_t *
sim_key(const struct sim *s, uint32_t node)
{
    return s->nodes[node].key;
}

int
sim_node_of(const struct sim *s, const uint8_t key[GOSSIP_KEY_BYTES])
{
    uint32_t i, lo = 0, hi = s->cfg.nodes;

    if (s->by_key == NULL) { /* index-prefixed keys */
        i = be32dec(key);
        if (i >= s->cfg.nodes || memcmp(s->nodes[i].key, key, GOSSIP_KEY_BYTES) != 0)
            return -1;
        return (int)i;
    }
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = memcmp(s->nodes[s->by_key[mid]].key, key, GOSSIP_KEY_BYTES);
        if (c == 0)
            return (int)s->by_key[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

const struct ident *
sim_ident(const struct sim *s, uint32_t node)
{
    return s->nodes[node].id;
}

uint64_t
sim_wall_s(const struct sim *s)
{
    return SIM_WALL0_S + s->now / 1000;
}

void
sim_set_nat(struct sim *s, uint32_t node, bool nat)
{
    s->nodes[node].nat = nat;
    if (s->nodes[node].e != NULL)
        syncer_set_dialable(s->nodes[node].e, !nat || s->cfg.nat_unsaid);
}

bool
sim_nat(const struct sim *s, uint32_t node)
{
    return s->nodes[node].nat;
}

void
sim_peaks(const struct sim *s, struct sim_peaks *out)
{
    *out = s->peaks;
}

/* ---------------------------------------------------------------- connections */

static struct sconn *
conn_find(struct snode *n, uint32_t peer)
{
    for (uint32_t i = 0; i < n->nconns; i++) {
        if (n->conns[i].peer == peer)
            return &n->conns[i];
    }
    return NULL;
}

static struct sconn *
conn_add(struct snode *n, uint32_t peer, uint64_t id)
{
    struct sconn *c;

    if (n->nconns == n->conns_cap) {
        uint32_t cap = n->conns_cap ? n->conns_cap * 2 : 16;
        struct sconn *x = realloc(n->conns, cap * sizeof(*x));
        if (x == NULL) {
            fprintf(stderr, "sim: out of memory\n");
            abort();
        }
        n->conns = x;
        n->conns_cap = cap;
    }
    c = &n->conns[n->nconns++];
    memset(c, 0, sizeof(*c));
    c->peer = peer;
    c->id = id;
    return c;
}

static void
conn_del(struct snode *n, struct sconn *c)
{
    *c = n->conns[--n->nconns];
}

static bool
reachable(const struct sim *s, uint32_t a, uint32_t b)
{
    const struct snode *x = &s->nodes[a], *y = &s->nodes[b];

    return (x->alive || x->raw) && (y->alive || y->raw) && x->group == y->group;
}

/* dialable: a can open a connection to b (b accepts incoming connections). */
static bool
dialable(const struct sim *s, uint32_t a, uint32_t b)
{
    return reachable(s, a, b) && !s->nodes[b].nat;
}

static uint64_t
delay(struct sim *s)
{
    uint64_t d = s->cfg.latency_ms;

    if (s->cfg.jitter_ms > 0)
        d += env_uniform(&s->net.env, s->cfg.jitter_ms + 1);
    return d;
}

static bool
lost(struct sim *s)
{
    if (s->cfg.loss <= 0)
        return false;
    return (double)env_uniform(&s->net.env, 1000000) < s->cfg.loss * 1e6;
}

/* ---------------------------------------------------------------- driving engines */

static void
schedule_timer(struct sim *s, struct snode *n)
{
    uint64_t d;

    if (n->e == NULL)
        return;
    d = syncer_next_deadline(n->e);
    if (d < n->timer_at) {
        n->timer_at = d < s->now ? s->now : d;
        push_simple(s, n->timer_at, EV_TIMER, n->idx, 0, 0);
    }
}

static void
count_one(struct sim_counters *c, uint32_t type, size_t len)
{
    c->msgs[type]++;
    c->bytes[type] += len;
    c->msgs_total++;
    c->bytes_total += len;
}

static void
count_sent(struct sim *s, struct snode *n, struct snode *to, const uint8_t *data, size_t len)
{
    uint32_t type = 0;

    (void)msg_peek_type(data, len, &type);
    if (type >= SIM_TYPES)
        type = 0;
    count_one(&n->sent, type, len);
    count_one(&to->recvd, type, len);
    count_one(&s->all, type, len);
}

/* transmit queues message bytes (ownership taken) from a to b on their connection. */
static int
transmit(struct sim *s, uint32_t a, uint32_t b, uint8_t *data, size_t len, bool counted)
{
    struct snode *n = &s->nodes[a];
    struct sconn *c = conn_find(n, b);
    struct ev e;

    if (c == NULL || !c->up) {
        free(data);
        return PULL_ERR_NOT_FOUND;
    }
    count_sent(s, n, &s->nodes[b], data, len);
    c->inflight += len;
    if (c->inflight > s->peaks.conn_inflight)
        s->peaks.conn_inflight = c->inflight;
    memset(&e, 0, sizeof(e));
    e.type = EV_MSG;
    e.a = a;
    e.b = b;
    e.conn = c->id;
    e.counted = counted;
    e.t = s->now + delay(s);
    if (e.t < c->last_tx)
        e.t = c->last_tx;
    c->last_tx = e.t;
    if (c->broken || lost(s) || !reachable(s, a, b)) {
        /* The bytes leave the socket but never arrive: still "flushed" for the sender. */
        s->all.lost++;
        n->sent.lost++;
        e.len = len;
        e.data = NULL;
        free(data);
    } else {
        e.data = data;
        e.len = len;
    }
    ev_push(s, e);
    return 0;
}

static void
do_connect(struct sim *s, uint32_t a, const uint8_t key[GOSSIP_KEY_BYTES])
{
    struct snode *n = &s->nodes[a];
    int b = sim_node_of(s, key);
    struct sconn *c;
    uint64_t id;

    if (b < 0 || (uint32_t)b == a) {
        syncer_on_disconnected(n->e, key, s->now);
        return;
    }
    if ((c = conn_find(n, (uint32_t)b)) != NULL) {
        if (c->up && !c->broken)
            syncer_on_connected(n->e, key, false, s->nodes[b].addr, SIM_FEATURES, s->now);
        return; /* a dial is already under way: it will complete */
    }
    id = s->next_conn++;
    conn_add(n, (uint32_t)b, id);
    if (dialable(s, a, (uint32_t)b))
        push_simple(s, s->now + 2 * (uint64_t)s->cfg.latency_ms, EV_CONN_UP, a, (uint32_t)b, id);
    else
        push_simple(s, s->now + s->cfg.connect_fail_ms, EV_CONN_FAIL, a, (uint32_t)b, id);
}

static void
do_disconnect(struct sim *s, uint32_t a, const uint8_t key[GOSSIP_KEY_BYTES])
{
    struct snode *n = &s->nodes[a];
    int b = sim_node_of(s, key);
    struct sconn *c;

    if (b < 0 || (c = conn_find(n, (uint32_t)b)) == NULL)
        return;
    if (c->up && !c->broken) {
        /* The peer sees the close after the data still in flight (FIFO). */
        uint64_t t = s->now + s->cfg.latency_ms;
        if (t < c->last_tx)
            t = c->last_tx;
        push_simple(s, t, EV_CLOSED, (uint32_t)b, a, c->id);
    }
    conn_del(n, c);
}

/* dial_count tallies CONNECT actions by address (sim_dials_to). */
static void
dial_count(struct sim *s, const char *addr)
{
    for (uint32_t i = 0; i < s->ndials; i++) {
        if (strcmp(s->dials[i].addr, addr) == 0) {
            s->dials[i].count++;
            return;
        }
    }
    if (s->ndials == SIM_DIAL_ADDRS)
        return;
    snprintf(s->dials[s->ndials].addr, sizeof(s->dials[0].addr), "%.47s", addr);
    s->dials[s->ndials++].count = 1;
}

/* node_clock sets node a's env to the simulated time before a call into its engine. */
static void
node_clock(struct sim *s, struct snode *n)
{
    n->env.now_ms = s->now;
    n->env.wall_s = SIM_WALL0_S + s->now / 1000;
}

void
sim_after(struct sim *s, uint32_t a)
{
    struct snode *n = &s->nodes[a];
    struct syncer_action act;
    uint64_t count = 0;

    while (n->e != NULL && syncer_poll_action(n->e, &act)) {
        count++;
        switch (act.type) {
        case SYNCER_ACT_SEND: {
            int b = sim_node_of(s, act.peer);
            if (b >= 0) {
                (void)transmit(s, a, (uint32_t)b, act.data, act.len, act.counted);
                act.data = NULL;
            }
            break;
        }
        case SYNCER_ACT_CONNECT:
            dial_count(s, act.addr);
            do_connect(s, a, act.peer);
            break;
        case SYNCER_ACT_DISCONNECT:
            do_disconnect(s, a, act.peer);
            break;
        case SYNCER_ACT_PUT:
            kv_put(n, (uint8_t)act.table, act.key, act.data, act.len);
            act.data = NULL;
            break;
        case SYNCER_ACT_DEL:
            kv_del(n, (uint8_t)act.table, act.key);
            break;
        case SYNCER_ACT_MAIL:
            if (s->mail.on_mail != NULL)
                s->mail.on_mail(s->mail.ctx, a, sim_node_of(s, act.peer), act.data, act.len);
            break;
        }
        syncer_action_release(&act);
    }
    if (count > s->peaks.actions)
        s->peaks.actions = count;
    schedule_timer(s, n);
}

static void
node_start(struct sim *s, uint32_t i)
{
    struct snode *n = &s->nodes[i];
    struct syncer_host host = {.offer = cb_offer,
                               .has = cb_has,
                               .fetch = cb_fetch,
                               .each_id = cb_each_id,
                               .each_key = cb_each_key,
                               .known = s->known,
                               .ctx = n};
    int rc;

    env_seeded_init(&n->env, s->cfg.seed * 1000003u + i * 7919u + n->starts * 104729u, s->now,
                    SIM_WALL0_S + s->now / 1000);
    n->starts++;
    if ((rc = syncer_new(&n->env.env, n->key, n->addr, &s->cfg.engine, &host, &n->e)) != 0) {
        fprintf(stderr, "sim: syncer_new: %s\n", pull_strerror(rc));
        abort();
    }
    syncer_set_dialable(n->e, !n->nat || s->cfg.nat_unsaid);
    n->alive = true;
    n->timer_at = UINT64_MAX;
    /* what the node kept on disk: its bootstrap peers, its persisted peers and mail */
    for (uint32_t k = 0; k < n->nknown; k++) {
        int p = sim_node_of(s, n->known[k]);
        if (p >= 0)
            (void)syncer_add_bootstrap(n->e, n->known[k], s->nodes[p].addr, s->now);
    }
    for (uint32_t k = 0; k < n->nkv; k++) {
        if (n->kv[k].table == SYNCER_TABLE_PEERS)
            syncer_load_peer(n->e, n->kv[k].key, n->kv[k].val, n->kv[k].len, 0);
        else if (n->kv[k].table == SYNCER_TABLE_MAIL)
            syncer_mail_load(n->e, n->kv[k].key, n->kv[k].val, n->kv[k].len);
    }
    syncer_start(n->e, s->now);
    sim_after(s, i);
}

static void
known_add(struct snode *n, const uint8_t key[GOSSIP_KEY_BYTES])
{
    uint8_t(*k)[GOSSIP_KEY_BYTES] = realloc(n->known, (n->nknown + 1) * sizeof(*k));

    if (k == NULL)
        return;
    n->known = k;
    memcpy(n->known[n->nknown++], key, GOSSIP_KEY_BYTES);
}

void
sim_bootstrap(struct sim *s, uint32_t contacts, uint32_t spacing_ms)
{
    for (uint32_t i = 0; i < s->cfg.nodes; i++) {
        struct snode *n = &s->nodes[i];
        n->nknown = 0;
        for (uint32_t k = 0; k < contacts && i > 0; k++)
            known_add(n, s->nodes[env_uniform(&s->net.env, i)].key);
        push_simple(s, s->now + (uint64_t)i * spacing_ms, EV_START, i, 0, 0);
    }
}

void
sim_set_bootstrap(struct sim *s, uint32_t node, const uint32_t *peers, uint32_t n)
{
    s->nodes[node].nknown = 0;
    for (uint32_t k = 0; k < n; k++)
        known_add(&s->nodes[node], s->nodes[peers[k]].key);
}

void
sim_bootstrap_chain(struct sim *s, uint32_t spacing_ms)
{
    for (uint32_t i = 0; i < s->cfg.nodes; i++) {
        struct snode *n = &s->nodes[i];
        n->nknown = 0;
        if (i > 0)
            known_add(n, s->nodes[i - 1].key);
        push_simple(s, s->now + (uint64_t)i * spacing_ms, EV_START, i, 0, 0);
    }
}

/* ---------------------------------------------------------------- events */

static void
on_conn_up(struct sim *s, const struct ev *e)
{
    struct snode *a = &s->nodes[e->a], *b = &s->nodes[e->b];
    struct sconn *ca = conn_find(a, e->b), *cb;

    if ((!a->alive && !a->raw) || ca == NULL || ca->id != e->conn || ca->up)
        return;
    if (!dialable(s, e->a, e->b)) {
        push_simple(s, s->now + s->cfg.connect_fail_ms, EV_CONN_FAIL, e->a, e->b, e->conn);
        return;
    }
    node_clock(s, a);
    node_clock(s, b);
    if ((cb = conn_find(b, e->a)) != NULL) {
        bool was_up = cb->up;
        conn_del(b, cb);
        if (was_up && b->e != NULL) {
            /* A stale connection b had not noticed yet: the host drops it first. */
            syncer_on_disconnected(b->e, a->key, s->now);
            sim_after(s, e->b);
        }
        /* else: b's own dial to a merges into this connection. */
    }
    ca = conn_find(a, e->b);
    ca->up = true;
    s->all.connections++;
    cb = conn_add(b, e->a, e->conn);
    cb->up = true;
    if (a->e != NULL) {
        syncer_on_connected(a->e, b->key, false, b->addr, SIM_FEATURES, s->now);
        sim_after(s, e->a);
    }
    if (b->e != NULL && conn_find(b, e->a) != NULL) {
        char seen[sizeof(a->addr)];
        const char *colon = strrchr(a->addr, ':');
        /* as daemon/net_conn.c: the observed host, and port 0 for a node whose HELLO said it
         * accepts only local connections (seen from outside its NAT) */
        if (a->nat && !s->cfg.nat_unsaid && colon != NULL)
            snprintf(seen, sizeof(seen), "%.*s:0", (int)(colon - a->addr), a->addr);
        else
            snprintf(seen, sizeof(seen), "%s", a->addr);
        syncer_on_connected(b->e, a->key, true, seen, SIM_FEATURES, s->now);
        sim_after(s, e->b);
    }
}

static void
on_conn_fail(struct sim *s, const struct ev *e)
{
    struct snode *a = &s->nodes[e->a];
    struct sconn *ca = conn_find(a, e->b);

    if ((!a->alive && !a->raw) || ca == NULL || ca->id != e->conn || ca->up)
        return;
    conn_del(a, ca);
    s->all.dials_failed++;
    if (a->e == NULL)
        return;
    node_clock(s, a);
    syncer_on_disconnected(a->e, s->nodes[e->b].key, s->now);
    sim_after(s, e->a);
}

static void
on_closed(struct sim *s, const struct ev *e)
{
    struct snode *a = &s->nodes[e->a];
    struct sconn *ca = conn_find(a, e->b);

    if ((!a->alive && !a->raw) || ca == NULL || ca->id != e->conn)
        return;
    conn_del(a, ca);
    if (a->e == NULL)
        return;
    node_clock(s, a);
    syncer_on_disconnected(a->e, s->nodes[e->b].key, s->now);
    sim_after(s, e->a);
}

static void
on_msg(struct sim *s, struct ev *e)
{
    struct snode *a = &s->nodes[e->a], *b = &s->nodes[e->b];
    struct sconn *c;

    if (b->muted)
        return; /* a stuck reader: neither delivered nor flushed */
    if (e->data != NULL && (b->alive || b->raw) && (c = conn_find(b, e->a)) != NULL &&
        c->id == e->conn && c->up && !c->broken) {
        if (b->raw) {
            b->raw_bytes += e->len;
        } else {
            node_clock(s, b);
            (void)syncer_on_message(b->e, a->key, e->data, e->len, s->now);
            sim_after(s, e->b);
        }
    }
    /* The sender learns that the bytes left its socket. */
    if (a->alive && a->e != NULL && (c = conn_find(a, e->b)) != NULL && c->id == e->conn) {
        c->inflight = c->inflight > e->len ? c->inflight - e->len : 0;
        node_clock(s, a);
        syncer_on_flushed(a->e, b->key, e->len, e->counted, s->now);
        sim_after(s, e->a);
    }
}

static void
process(struct sim *s, struct ev *e)
{
    struct snode *a = &s->nodes[e->a];

    switch (e->type) {
    case EV_START:
        if (!a->alive && !a->raw)
            node_start(s, e->a);
        break;
    case EV_TIMER:
        if (!a->alive || a->timer_at != e->t)
            break;
        a->timer_at = UINT64_MAX;
        node_clock(s, a);
        syncer_on_timeout(a->e, s->now);
        sim_after(s, e->a);
        break;
    case EV_CONN_UP:
        on_conn_up(s, e);
        break;
    case EV_CONN_FAIL:
        on_conn_fail(s, e);
        break;
    case EV_CLOSED:
        on_closed(s, e);
        break;
    case EV_MSG:
        on_msg(s, e);
        break;
    }
    free(e->data);
}

void
sim_run_until(struct sim *s, uint64_t t)
{
    while (s->nheap > 0 && s->heap[0].t <= t) {
        struct ev e = ev_pop(s);
        s->now = e.t;
        process(s, &e);
    }
    if (t > s->now)
        s->now = t;
}

void
sim_run_for(struct sim *s, uint64_t ms)
{
    sim_run_until(s, s->now + ms);
}

/* ---------------------------------------------------------------- operations */

int
sim_publish(struct sim *s, uint32_t node)
{
    struct snode *n = &s->nodes[node];
    int r;

    if (!n->alive)
        return PULL_ERR_STATE;
    if ((r = rec_new(s, true, node)) < 0)
        return r;
    node_clock(s, n);
    node_set(n, (uint32_t)r); /* stored as local: the engine publishes it when its timer runs */
    s->recs[r].arrival[node] = 0;
    sim_after(s, node);
    return r;
}

int
sim_make_invalid(struct sim *s)
{
    return rec_new(s, false, 0);
}

int
sim_make_record(struct sim *s, uint32_t origin)
{
    return rec_new(s, true, origin);
}

void
sim_record(const struct sim *s, uint32_t r, const uint8_t **env, size_t *len, const uint8_t **id)
{
    *env = s->recs[r].env;
    *len = s->recs[r].len;
    *id = s->recs[r].id;
}

uint32_t
sim_records(const struct sim *s)
{
    return s->nrecs;
}

uint32_t
sim_complete_nodes(const struct sim *s)
{
    uint32_t valid = 0, complete = 0;

    for (uint32_t r = 0; r < s->nrecs; r++)
        valid += s->recs[r].valid;
    for (uint32_t i = 0; i < s->cfg.nodes; i++) {
        const struct snode *n = &s->nodes[i];
        uint32_t have = 0;
        if (!n->alive)
            continue;
        for (uint32_t r = 0; r < s->nrecs && n->nhave >= valid; r++)
            have += s->recs[r].valid && node_has(n, r);
        complete += have == valid;
    }
    return complete;
}

int
sim_find_record(const struct sim *s, const uint8_t id[GOSSIP_ID_BYTES])
{
    return rec_lookup(s, id);
}

bool
sim_has(const struct sim *s, uint32_t node, uint32_t r)
{
    return node_has(&s->nodes[node], r);
}

uint32_t
sim_node_records(const struct sim *s, uint32_t node)
{
    return s->nodes[node].nhave;
}

void
sim_give(struct sim *s, uint32_t node, uint32_t r)
{
    node_set(&s->nodes[node], r);
}

static int
cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

    return a < b ? -1 : a > b;
}

void
sim_spread(const struct sim *s, uint32_t r, struct sim_spread *out)
{
    const struct srec *rec = &s->recs[r];
    uint32_t *t = malloc((size_t)s->cfg.nodes * sizeof(*t)), nt = 0;

    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < s->cfg.nodes; i++) {
        if (!s->nodes[i].alive)
            continue;
        out->alive++;
        if (!node_has(&s->nodes[i], r))
            continue;
        out->reached++;
        if (i != rec->origin && rec->arrival[i] != UINT32_MAX && t != NULL)
            t[nt++] = rec->arrival[i];
    }
    out->receipts = rec->receipts;
    if (nt > 0) {
        qsort(t, nt, sizeof(*t), cmp_u32);
        out->p50_ms = t[(nt - 1) / 2];
        out->p100_ms = t[nt - 1];
    }
    if (out->alive > 1)
        out->rmr = (double)rec->receipts / (double)(out->alive - 1) - 1.0;
    free(t);
}

bool
sim_alive(const struct sim *s, uint32_t node)
{
    return s->nodes[node].alive;
}

void
sim_kill(struct sim *s, uint32_t node)
{
    struct snode *n = &s->nodes[node];

    if (!n->alive)
        return;
    /* A crash: what survives is what the engine wrote to the node's tables (peers seen,
     * mail), and the bootstrap lines. */
    for (uint32_t i = 0; i < n->nconns; i++) {
        struct sconn *c = &n->conns[i];
        struct sconn *pc = conn_find(&s->nodes[c->peer], node);
        if (pc != NULL && pc->id == c->id) {
            pc->broken = true;
            push_simple(s, s->now + s->cfg.detect_ms, EV_CLOSED, c->peer, node, c->id);
        }
    }
    n->nconns = 0;
    n->alive = false;
    n->timer_at = UINT64_MAX;
    node_stop(s, n);
}

void
sim_restart(struct sim *s, uint32_t node)
{
    if (!s->nodes[node].alive)
        node_start(s, node);
}

static void
cut_links(struct sim *s)
{
    for (uint32_t a = 0; a < s->cfg.nodes; a++) {
        struct snode *n = &s->nodes[a];
        for (uint32_t i = 0; i < n->nconns; i++) {
            struct sconn *c = &n->conns[i];
            if (!c->up || c->broken || n->group == s->nodes[c->peer].group)
                continue;
            c->broken = true;
            push_simple(s, s->now + s->cfg.detect_ms, EV_CLOSED, a, c->peer, c->id);
        }
    }
}

void
sim_partition(struct sim *s, const uint32_t *group)
{
    for (uint32_t i = 0; i < s->cfg.nodes; i++)
        s->nodes[i].group = group[i];
    cut_links(s);
}

void
sim_heal(struct sim *s)
{
    for (uint32_t i = 0; i < s->cfg.nodes; i++)
        s->nodes[i].group = 0;
}

void
sim_set_raw(struct sim *s, uint32_t node, const char *addr)
{
    struct snode *n = &s->nodes[node];

    if (n->alive)
        sim_kill(s, node);
    n->raw = true;
    if (addr != NULL)
        snprintf(n->addr, sizeof(n->addr), "%s", addr);
}

void
sim_set_addr(struct sim *s, uint32_t node, const char *addr)
{
    snprintf(s->nodes[node].addr, sizeof(s->nodes[node].addr), "%s", addr);
}

const char *
sim_addr(const struct sim *s, uint32_t node)
{
    return s->nodes[node].addr;
}

int
sim_raw_connect(struct sim *s, uint32_t raw, uint32_t target)
{
    struct snode *n = &s->nodes[raw];
    uint64_t id;

    if (!n->raw || conn_find(n, target) != NULL)
        return PULL_ERR_EXISTS;
    id = s->next_conn++;
    conn_add(n, target, id);
    push_simple(s, s->now + 2 * (uint64_t)s->cfg.latency_ms, EV_CONN_UP, raw, target, id);
    return 0;
}

void
sim_raw_close(struct sim *s, uint32_t raw, uint32_t target)
{
    struct snode *n = &s->nodes[raw];
    struct sconn *c = conn_find(n, target);

    if (!n->raw || c == NULL)
        return;
    if (c->up)
        push_simple(s, s->now + s->cfg.latency_ms, EV_CLOSED, target, raw, c->id);
    conn_del(n, c);
}

uint64_t
sim_raw_received(const struct sim *s, uint32_t raw)
{
    return s->nodes[raw].raw_bytes;
}

uint64_t
sim_dials_to(const struct sim *s, const char *addr)
{
    uint64_t k = 0;

    for (uint32_t i = 0; i < s->ndials; i++)
        k += strcmp(s->dials[i].addr, addr) == 0 ? s->dials[i].count : 0;
    return k;
}

int
sim_send(struct sim *s, uint32_t node, uint32_t peer, const uint8_t *msg, size_t len)
{
    uint8_t *copy;

    if ((!s->nodes[node].alive && !s->nodes[node].raw) || !sim_connected(s, node, peer))
        return PULL_ERR_NOT_FOUND;
    if ((copy = malloc(len ? len : 1)) == NULL)
        return PULL_ERR_NOMEM;
    memcpy(copy, msg, len);
    return transmit(s, node, peer, copy, len, false);
}

bool
sim_connected(const struct sim *s, uint32_t node, uint32_t peer)
{
    const struct snode *n = &s->nodes[node];

    for (uint32_t i = 0; i < n->nconns; i++) {
        if (n->conns[i].peer == peer)
            return n->conns[i].up && !n->conns[i].broken;
    }
    return false;
}

struct gossip *
sim_gossip(struct sim *s, uint32_t node)
{
    return s->nodes[node].e != NULL ? syncer_gossip(s->nodes[node].e) : NULL;
}

struct syncer *
sim_engine(struct sim *s, uint32_t node)
{
    node_clock(s, &s->nodes[node]);
    return s->nodes[node].e;
}

void
sim_engine_stats(const struct sim *s, struct syncer_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < s->cfg.nodes; i++) {
        struct syncer_stats st;
        if (s->nodes[i].e == NULL)
            continue;
        syncer_get_stats(s->nodes[i].e, &st);
#define SIM_ADD(name, what) out->name += st.name;
        SYNCER_COUNTERS(SIM_ADD)
#undef SIM_ADD
        out->mail_held += st.mail_held;
    }
}

void
sim_mute(struct sim *s, uint32_t node, bool muted)
{
    s->nodes[node].muted = muted;
}

void
sim_counters(const struct sim *s, struct sim_counters *out)
{
    *out = s->all;
}

void
sim_node_counters(const struct sim *s, uint32_t node, struct sim_counters *out)
{
    *out = s->nodes[node].sent;
}

void
sim_node_received(const struct sim *s, uint32_t node, struct sim_counters *out)
{
    *out = s->nodes[node].recvd;
}

void
sim_counters_reset(struct sim *s)
{
    memset(&s->all, 0, sizeof(s->all));
    for (uint32_t i = 0; i < s->cfg.nodes; i++) {
        memset(&s->nodes[i].sent, 0, sizeof(s->nodes[i].sent));
        memset(&s->nodes[i].recvd, 0, sizeof(s->nodes[i].recvd));
    }
    memset(&s->peaks, 0, sizeof(s->peaks));
}

void
sim_overlay(const struct sim *s, uint32_t *min, double *mean, uint32_t *max,
            uint32_t *largest_component)
{
    uint32_t n = s->cfg.nodes, alive = 0, best = 0;
    uint64_t sum = 0;
    uint32_t *comp = calloc(n, sizeof(*comp)), *stack = malloc(n * sizeof(*stack));

    *min = UINT32_MAX;
    *max = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t a;
        if (!s->nodes[i].alive)
            continue;
        a = (uint32_t)syncer_active_count(s->nodes[i].e);
        alive++;
        sum += a;
        if (a < *min)
            *min = a;
        if (a > *max)
            *max = a;
    }
    *mean = alive ? (double)sum / alive : 0;
    if (alive == 0)
        *min = 0;
    /* Components over links that both ends hold active. */
    for (uint32_t i = 0, label = 0; comp != NULL && stack != NULL && i < n; i++) {
        uint32_t sp = 0, size = 0;
        if (!s->nodes[i].alive || comp[i] != 0)
            continue;
        comp[i] = ++label;
        stack[sp++] = i;
        while (sp > 0) {
            uint32_t u = stack[--sp];
            const struct snode *nu = &s->nodes[u];
            size++;
            for (uint32_t k = 0; k < nu->nconns; k++) {
                uint32_t v = nu->conns[k].peer;
                if (!s->nodes[v].alive || comp[v] != 0 ||
                    !gossip_is_active(syncer_gossip(nu->e), s->nodes[v].key))
                    continue;
                comp[v] = label;
                stack[sp++] = v;
            }
        }
        if (size > best)
            best = size;
    }
    *largest_component = best;
    free(comp);
    free(stack);
}

uint32_t
sim_eccentricity(const struct sim *s, uint32_t origin)
{
    uint32_t n = s->cfg.nodes, head = 0, tail = 0, ecc = 0;
    uint32_t *dist = malloc(n * sizeof(*dist)), *queue = malloc(n * sizeof(*queue));

    if (dist == NULL || queue == NULL || !s->nodes[origin].alive) {
        free(dist);
        free(queue);
        return 0;
    }
    memset(dist, 0xff, n * sizeof(*dist));
    dist[origin] = 0;
    queue[tail++] = origin;
    while (head < tail) {
        uint32_t u = queue[head++];
        const struct snode *nu = &s->nodes[u];
        if (dist[u] > ecc)
            ecc = dist[u];
        for (uint32_t k = 0; k < nu->nconns; k++) {
            uint32_t v = nu->conns[k].peer;
            if (dist[v] != UINT32_MAX || !s->nodes[v].alive || !nu->conns[k].up ||
                !gossip_is_active(syncer_gossip(nu->e), s->nodes[v].key))
                continue;
            dist[v] = dist[u] + 1;
            queue[tail++] = v;
        }
    }
    free(dist);
    free(queue);
    return ecc;
}

void
sim_view_histogram(const struct sim *s, uint32_t *hist)
{
    memset(hist, 0, (GOSSIP_ACTIVE_MAX + 1) * sizeof(*hist));
    for (uint32_t i = 0; i < s->cfg.nodes; i++) {
        size_t a;
        if (!s->nodes[i].alive)
            continue;
        a = syncer_active_count(s->nodes[i].e);
        hist[a > GOSSIP_ACTIVE_MAX ? GOSSIP_ACTIVE_MAX : a]++;
    }
}

uint32_t
sim_env_nodes(uint32_t normal, uint32_t sanitized)
{
    const char *v = getenv("PULL_SIM_NODES");

    (void)sanitized;
    (void)normal;
    if (v != NULL && atoi(v) > 1)
        return (uint32_t)atoi(v);
#if defined(__SANITIZE_ADDRESS__)
    return sanitized;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return sanitized;
#else
    return normal;
#endif
#else
    return normal;
#endif
}
