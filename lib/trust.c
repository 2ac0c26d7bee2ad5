/*
 * trust: the personal trust graph (trust.h is the manual).
 *
 * People live in an array (index 0 is me) with their adjacency (neighbour, pieces of
 * evidence for that pair); keys, key prefixes and evidence ids are found through open
 * addressing tables of indexes keyed with SipHash (crypto_shorthash) under the caller's
 * seed. Evidence entries are recycled through a free list; people are never removed (a
 * person without edges costs a few dozen bytes and has no distance).
 */
#include "lib/trust.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"

#define SLOT_EMPTY 0u
#define SLOT_TOMB UINT32_MAX

struct tadj {
    uint32_t to;
    uint32_t ev; /* pieces of evidence for this pair */
};

struct tnode {
    uint8_t key[32];
    uint32_t nadj, cadj;
    struct tadj *adj;
};

struct tev {
    uint8_t id[32];
    uint8_t dyad[TRUST_DYAD_BYTES];
    uint32_t a, b;
    bool used;
    uint32_t next_free;
};

/* An open addressing table of indexes + 1 (0: empty, SLOT_TOMB: deleted). */
struct ttab {
    uint32_t *slot;
    size_t cap, used, tombs; /* cap is a power of two */
};

/* A slot of the key-prefix table: the prefix inline, so a lookup reads one slot. */
struct k8slot {
    uint64_t key8;
    uint32_t idx1; /* index + 1, 0: empty */
};

struct trust {
    uint8_t seed[16];
    uint64_t seed8; /* for hash8 */
    struct tnode *nodes;
    uint8_t *dist; /* by person, apart: the ranking hook reads it for every candidate */
    size_t nnodes, cnodes;
    struct ttab by_key;
    struct k8slot *by_key8; /* as many slots as by_key */
    struct tev *ev;
    size_t nev, cev, live_ev;
    uint32_t ev_free; /* index + 1 of the first free entry, 0: none */
    struct ttab by_ev;
    size_t edges;
    bool dirty; /* distances need a full pass (an edge went away) */
    uint64_t recomputes;
    uint32_t *queue;
    size_t cqueue;
};

/* ---- hashing ---- */

static uint64_t
hash_bytes(const struct trust *t, const void *p, size_t n)
{
    uint8_t h[crypto_shorthash_BYTES];

    crypto_shorthash(h, p, n, t->seed);
    return be64dec(h);
}

static uint64_t
key8_of(const uint8_t key[32])
{
    return be64dec(key);
}

static int
ttab_init(struct ttab *tb, size_t cap)
{
    tb->slot = calloc(cap, sizeof(*tb->slot));
    tb->cap = cap;
    tb->used = tb->tombs = 0;
    return tb->slot == NULL ? PULL_ERR_NOMEM : 0;
}

/* ---- people ---- */

static uint64_t
node_hash(const struct trust *t, uint32_t i)
{
    return hash_bytes(t, t->nodes[i].key, 32);
}

/* The table of key prefixes is asked once per search candidate (the ranking and filter
 * hooks): a seeded murmur3 finaliser, a bijection of key8 ^ seed, costs a few cycles where
 * SipHash costs ~20 ns; without the seed a stranger can't aim keys at one slot either. */
static uint64_t
hash8(const struct trust *t, uint64_t key8)
{
    uint64_t x = key8 ^ t->seed8;

    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* Inserts index i into tb at the first free slot of hash h (no tombstones in the people
 * tables: nobody is removed). */
static void
ttab_put(struct ttab *tb, uint64_t h, uint32_t i)
{
    size_t mask = tb->cap - 1, s = (size_t)h & mask;

    while (tb->slot[s] != SLOT_EMPTY && tb->slot[s] != SLOT_TOMB)
        s = (s + 1) & mask;
    if (tb->slot[s] == SLOT_TOMB)
        tb->tombs--;
    tb->slot[s] = i + 1;
    tb->used++;
}

/* Puts person i in the key-prefix table k8 of cap slots. */
static void
k8_put(const struct trust *t, struct k8slot *k8, size_t cap, uint32_t i)
{
    uint64_t key8 = key8_of(t->nodes[i].key);
    size_t s = (size_t)hash8(t, key8) & (cap - 1);

    while (k8[s].idx1 != 0)
        s = (s + 1) & (cap - 1);
    k8[s].key8 = key8;
    k8[s].idx1 = i + 1;
}

static int
people_grow(struct trust *t)
{
    struct ttab k;
    struct k8slot *k8;
    size_t cap = t->by_key.cap * 2;

    if (ttab_init(&k, cap) != 0)
        return PULL_ERR_NOMEM;
    if ((k8 = calloc(cap, sizeof(*k8))) == NULL) {
        free(k.slot);
        return PULL_ERR_NOMEM;
    }
    for (uint32_t i = 0; i < t->nnodes; i++) {
        ttab_put(&k, node_hash(t, i), i);
        k8_put(t, k8, cap, i);
    }
    free(t->by_key.slot);
    free(t->by_key8);
    t->by_key = k;
    t->by_key8 = k8;
    return 0;
}

static uint32_t
node_find(const struct trust *t, const uint8_t key[32])
{
    size_t mask = t->by_key.cap - 1, s = (size_t)hash_bytes(t, key, 32) & mask;

    for (;; s = (s + 1) & mask) {
        uint32_t v = t->by_key.slot[s];
        if (v == SLOT_EMPTY)
            return UINT32_MAX;
        if (memcmp(t->nodes[v - 1].key, key, 32) == 0)
            return v - 1;
    }
}

static uint32_t
node_find8(const struct trust *t, uint64_t key8)
{
    size_t mask = t->by_key.cap - 1, s = (size_t)hash8(t, key8) & mask;

    for (;; s = (s + 1) & mask) {
        const struct k8slot *k = &t->by_key8[s];
        if (k->idx1 == 0)
            return UINT32_MAX;
        if (k->key8 == key8)
            return k->idx1 - 1;
    }
}

/* Finds or adds key; returns its index or UINT32_MAX (out of memory or bounds: *err). */
static uint32_t
node_get(struct trust *t, const uint8_t key[32], int *err)
{
    uint32_t i = node_find(t, key);
    struct tnode *n;

    if (i != UINT32_MAX)
        return i;
    if (t->nnodes >= TRUST_NODES_MAX) {
        *err = PULL_ERR_QUOTA;
        return UINT32_MAX;
    }
    if ((t->nnodes + 1) * 2 > t->by_key.cap && people_grow(t) != 0) {
        *err = PULL_ERR_NOMEM;
        return UINT32_MAX;
    }
    if (t->nnodes == t->cnodes) {
        size_t cap = t->cnodes * 2;
        struct tnode *v = realloc(t->nodes, cap * sizeof(*v));
        uint8_t *d;
        if (v == NULL) {
            *err = PULL_ERR_NOMEM;
            return UINT32_MAX;
        }
        t->nodes = v;
        if ((d = realloc(t->dist, cap)) == NULL) {
            *err = PULL_ERR_NOMEM;
            return UINT32_MAX;
        }
        t->dist = d;
        t->cnodes = cap;
    }
    i = (uint32_t)t->nnodes++;
    n = &t->nodes[i];
    memset(n, 0, sizeof(*n));
    memcpy(n->key, key, 32);
    t->dist[i] = TRUST_NONE;
    ttab_put(&t->by_key, node_hash(t, i), i);
    k8_put(t, t->by_key8, t->by_key.cap, i);
    return i;
}

static struct tadj *
adj_find(struct tnode *n, uint32_t to)
{
    for (uint32_t k = 0; k < n->nadj; k++) {
        if (n->adj[k].to == to)
            return &n->adj[k];
    }
    return NULL;
}

/* Makes room for one more neighbour of n. */
static int
adj_reserve(struct tnode *n)
{
    uint32_t cap;
    struct tadj *v;

    if (n->nadj < n->cadj)
        return 0;
    cap = n->cadj ? n->cadj * 2 : 4;
    if ((v = realloc(n->adj, cap * sizeof(*v))) == NULL)
        return PULL_ERR_NOMEM;
    n->adj = v;
    n->cadj = cap;
    return 0;
}

static void
adj_drop(struct tnode *n, uint32_t to)
{
    for (uint32_t k = 0; k < n->nadj; k++) {
        if (n->adj[k].to == to) {
            n->adj[k] = n->adj[--n->nadj];
            return;
        }
    }
}

/* ---- evidence ---- */

static size_t
ev_slot(const struct trust *t, const uint8_t id[32], bool *found)
{
    size_t mask = t->by_ev.cap - 1, s = (size_t)hash_bytes(t, id, 32) & mask, tomb = SIZE_MAX;

    *found = false;
    for (;; s = (s + 1) & mask) {
        uint32_t v = t->by_ev.slot[s];
        if (v == SLOT_EMPTY)
            return tomb != SIZE_MAX ? tomb : s;
        if (v == SLOT_TOMB) {
            if (tomb == SIZE_MAX)
                tomb = s;
            continue;
        }
        if (memcmp(t->ev[v - 1].id, id, 32) == 0) {
            *found = true;
            return s;
        }
    }
}

static int
ev_rehash(struct trust *t, size_t cap)
{
    struct ttab nt;

    if (ttab_init(&nt, cap) != 0)
        return PULL_ERR_NOMEM;
    for (size_t i = 0; i < t->nev; i++) {
        if (t->ev[i].used)
            ttab_put(&nt, hash_bytes(t, t->ev[i].id, 32), (uint32_t)i);
    }
    free(t->by_ev.slot);
    t->by_ev = nt;
    return 0;
}

/* ---- distances ---- */

static int
queue_reserve(struct trust *t)
{
    uint32_t *q;

    if (t->cqueue >= t->nnodes)
        return 0;
    if ((q = realloc(t->queue, t->cnodes * sizeof(*q))) == NULL)
        return PULL_ERR_NOMEM;
    t->queue = q;
    t->cqueue = t->cnodes;
    return 0;
}

/* Breadth-first relaxation from the queued people (whose distances are set). */
static void
relax(struct trust *t, size_t head, size_t tail)
{
    while (head < tail) {
        uint32_t vi = t->queue[head++];
        struct tnode *v = &t->nodes[vi];
        if (t->dist[vi] >= TRUST_HOPS_MAX)
            continue;
        for (uint32_t k = 0; k < v->nadj; k++) {
            uint32_t ui = v->adj[k].to;
            if (t->dist[ui] > t->dist[vi] + 1) {
                t->dist[ui] = (uint8_t)(t->dist[vi] + 1);
                t->queue[tail++] = v->adj[k].to; /* each person enters at most once per
                                                  * distance it improves to: <= nnodes
                                                  * entries live at once in a BFS order */
                if (tail == t->cqueue) {
                    /* compact: everything before head is done */
                    memmove(t->queue, t->queue + head, (tail - head) * sizeof(*t->queue));
                    tail -= head;
                    head = 0;
                }
            }
        }
    }
}

static void
recompute(struct trust *t)
{
    memset(t->dist, TRUST_NONE, t->nnodes);
    t->dist[0] = 0;
    if (queue_reserve(t) != 0)
        return; /* keep dirty: try again at the next question */
    t->queue[0] = 0;
    relax(t, 0, 1);
    t->dirty = false;
    t->recomputes++;
}

static void
fresh(struct trust *t)
{
    if (t->dirty)
        recompute(t);
}

/* A new edge a-b: distances can only shrink, from its nearer end outward. */
static void
edge_added(struct trust *t, uint32_t a, uint32_t b)
{
    if (t->dirty)
        return; /* the next question recomputes everything anyway */
    if (t->dist[b] < t->dist[a]) {
        uint32_t x = a;
        a = b;
        b = x;
    }
    if (t->dist[a] >= TRUST_HOPS_MAX || t->dist[b] <= t->dist[a] + 1)
        return;
    if (queue_reserve(t) != 0) {
        t->dirty = true;
        return;
    }
    t->dist[b] = (uint8_t)(t->dist[a] + 1);
    t->queue[0] = b;
    relax(t, 0, 1);
}

/* ---- API ---- */

uint32_t
trust_rank(unsigned distance)
{
    switch (distance) {
    case 0:
    case 1:
        return TRUST_RANK_1;
    case 2:
        return TRUST_RANK_2;
    case 3:
        return TRUST_RANK_3;
    case TRUST_NONE:
        return TRUST_RANK_NONE;
    default:
        return TRUST_RANK_FAR;
    }
}

int
trust_new(const uint8_t me[static 32], const uint8_t seed[static 16], struct trust **out)
{
    struct trust *t;
    int err = 0;

    *out = NULL;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return PULL_ERR_NOMEM;
    memcpy(t->seed, seed, 16);
    t->seed8 = be64dec(seed + 8) ^ 0x5bd1e9955bd1e995ull;
    t->cnodes = 64;
    t->cev = 64;
    if ((t->nodes = calloc(t->cnodes, sizeof(*t->nodes))) == NULL ||
        (t->dist = malloc(t->cnodes)) == NULL || (t->ev = calloc(t->cev, sizeof(*t->ev))) == NULL ||
        ttab_init(&t->by_key, 128) != 0 ||
        (t->by_key8 = calloc(128, sizeof(*t->by_key8))) == NULL || ttab_init(&t->by_ev, 128) != 0 ||
        node_get(t, me, &err) != 0) {
        trust_free(t);
        return PULL_ERR_NOMEM;
    }
    t->dist[0] = 0;
    *out = t;
    return 0;
}

void
trust_free(struct trust *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nnodes; i++)
        free(t->nodes[i].adj);
    free(t->nodes);
    free(t->dist);
    free(t->ev);
    free(t->by_key.slot);
    free(t->by_key8);
    free(t->by_ev.slot);
    free(t->queue);
    free(t);
}

bool
trust_has(const struct trust *t, const uint8_t id[static 32])
{
    bool found;

    (void)ev_slot(t, id, &found);
    return found;
}

int
trust_add(struct trust *t, const uint8_t id[static 32], const uint8_t a[static 32],
          const uint8_t b[static 32], const uint8_t dyad[static TRUST_DYAD_BYTES])
{
    uint32_t ia, ib, e;
    struct tadj *ab, *ba;
    bool found;
    size_t s;
    int err = 0;

    if (memcmp(a, b, 32) == 0)
        return PULL_ERR_INVAL;
    (void)ev_slot(t, id, &found);
    if (found)
        return 0;
    if (t->live_ev >= TRUST_EVIDENCE_MAX)
        return PULL_ERR_QUOTA;
    /* every allocation first, so that a failure changes nothing that matters (a person
     * added without an edge has no effect) */
    if ((t->by_ev.used + t->by_ev.tombs + 1) * 2 > t->by_ev.cap &&
        ev_rehash(t, t->live_ev * 4 > t->by_ev.cap ? t->by_ev.cap * 2 : t->by_ev.cap) != 0)
        return PULL_ERR_NOMEM;
    if (t->ev_free == 0 && t->nev == t->cev) {
        struct tev *v = realloc(t->ev, t->cev * 2 * sizeof(*v));
        if (v == NULL)
            return PULL_ERR_NOMEM;
        t->ev = v;
        t->cev *= 2;
    }
    if ((ia = node_get(t, a, &err)) == UINT32_MAX || (ib = node_get(t, b, &err)) == UINT32_MAX)
        return err;
    if (queue_reserve(t) != 0)
        return PULL_ERR_NOMEM;
    ab = adj_find(&t->nodes[ia], ib);
    ba = adj_find(&t->nodes[ib], ia);
    if (ab == NULL && (adj_reserve(&t->nodes[ia]) != 0 || adj_reserve(&t->nodes[ib]) != 0))
        return PULL_ERR_NOMEM;
    /* commit */
    if (t->ev_free != 0) {
        e = t->ev_free - 1;
        t->ev_free = t->ev[e].next_free;
    } else {
        e = (uint32_t)t->nev++;
    }
    memcpy(t->ev[e].id, id, 32);
    memcpy(t->ev[e].dyad, dyad, TRUST_DYAD_BYTES);
    t->ev[e].a = ia;
    t->ev[e].b = ib;
    t->ev[e].used = true;
    t->ev[e].next_free = 0;
    s = ev_slot(t, id, &found);
    if (t->by_ev.slot[s] == SLOT_TOMB)
        t->by_ev.tombs--;
    t->by_ev.slot[s] = e + 1;
    t->by_ev.used++;
    t->live_ev++;
    if (ab == NULL) {
        t->nodes[ia].adj[t->nodes[ia].nadj++] = (struct tadj){ib, 1};
        t->nodes[ib].adj[t->nodes[ib].nadj++] = (struct tadj){ia, 1};
        t->edges++;
        edge_added(t, ia, ib);
    } else {
        ab->ev++;
        ba->ev++;
    }
    return 1;
}

int
trust_remove(struct trust *t, const uint8_t id[static 32])
{
    bool found;
    size_t s = ev_slot(t, id, &found);
    uint32_t e, a, b;
    struct tadj *ab, *ba;

    if (!found)
        return 0;
    e = t->by_ev.slot[s] - 1;
    t->by_ev.slot[s] = SLOT_TOMB;
    t->by_ev.used--;
    t->by_ev.tombs++;
    a = t->ev[e].a;
    b = t->ev[e].b;
    t->ev[e].used = false;
    t->ev[e].next_free = t->ev_free;
    t->ev_free = e + 1;
    t->live_ev--;
    ab = adj_find(&t->nodes[a], b);
    ba = adj_find(&t->nodes[b], a);
    if (ab != NULL && ba != NULL && --ab->ev == 0) {
        ba->ev = 0;
        adj_drop(&t->nodes[a], b);
        adj_drop(&t->nodes[b], a);
        t->edges--;
        t->dirty = true;
    } else if (ba != NULL && ab != NULL) {
        ba->ev = ab->ev;
    }
    return 1;
}

unsigned
trust_distance(struct trust *t, const uint8_t key[static 32])
{
    uint32_t i;

    fresh(t);
    i = node_find(t, key);
    return i == UINT32_MAX ? TRUST_NONE : t->dist[i];
}

unsigned
trust_distance8(struct trust *t, uint64_t key8)
{
    uint32_t i;

    fresh(t);
    i = node_find8(t, key8);
    return i == UINT32_MAX ? TRUST_NONE : t->dist[i];
}

/* ---- paths ---- */

struct path_walk {
    struct trust *t;
    uint8_t (*out)[32];
    size_t max, n;
    uint32_t stack[TRUST_HOPS_MAX + 1]; /* stack[0] = the target, going back to me */
    unsigned depth;                     /* the target's distance */
};

static int
cmp_node_key(const void *x, const void *y, void *ctx)
{
    const struct trust *t = ctx;
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

    return memcmp(t->nodes[a].key, t->nodes[b].key, 32);
}

/* An insertion sort (parents lists are short) by key, so paths come in a stable order. */
static void
sort_by_key(const struct trust *t, uint32_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint32_t x = v[i];
        size_t j = i;
        while (j > 0 && cmp_node_key(&v[j - 1], &x, (void *)t) > 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

static int
walk(struct path_walk *w, unsigned level)
{
    uint32_t vi = w->stack[level];
    struct tnode *v = &w->t->nodes[vi];
    uint32_t *parents;
    size_t np = 0;
    int rc = 0;

    if (w->t->dist[vi] == 0) { /* reached me: stack[level - 1] .. stack[0] is a path */
        uint8_t(*p)[32] = w->out + w->n * TRUST_HOPS_MAX;
        for (unsigned k = 0; k < level; k++)
            memcpy(p[k], w->t->nodes[w->stack[level - 1 - k]].key, 32);
        w->n++;
        return w->n >= w->max ? 1 : 0;
    }
    if ((parents = malloc(v->nadj * sizeof(*parents) + 1)) == NULL)
        return PULL_ERR_NOMEM;
    for (uint32_t k = 0; k < v->nadj; k++) {
        if (w->t->dist[v->adj[k].to] + 1 == w->t->dist[vi])
            parents[np++] = v->adj[k].to;
    }
    sort_by_key(w->t, parents, np);
    for (size_t k = 0; k < np && rc == 0; k++) {
        w->stack[level + 1] = parents[k];
        rc = walk(w, level + 1);
    }
    free(parents);
    return rc;
}

size_t
trust_paths(struct trust *t, const uint8_t key[static 32], uint8_t (*paths)[32], size_t max)
{
    struct path_walk w = {.t = t, .out = paths, .max = max};
    uint32_t i;

    fresh(t);
    if (max == 0 || (i = node_find(t, key)) == UINT32_MAX || t->dist[i] == TRUST_NONE ||
        t->dist[i] == 0)
        return 0;
    w.stack[0] = i;
    w.depth = t->dist[i];
    (void)walk(&w, 0);
    return w.n;
}

/* ---- independent paths: unit-capacity max flow on split people ----
 * Person v of the reachable graph is two vertices, in (2v) and out (2v + 1), joined by an
 * arc of capacity 1 (unbounded for me and the target), and each edge u-v gives arcs
 * u.out -> v.in and v.out -> u.in of capacity 1. Every arc has its reverse next to it
 * (arc ^ 1). The number of augmenting paths found from me.out to target.in is the number
 * of vertex-disjoint paths. */
struct arc {
    uint32_t to, next;
    int32_t cap;
};

struct flow {
    struct arc *arcs;
    size_t narcs, carcs;
    uint32_t *head; /* first arc of each vertex, UINT32_MAX: none */
    uint32_t *prev; /* BFS: the arc that reached each vertex */
    uint32_t *q;
};

static int
flow_arc(struct flow *f, uint32_t from, uint32_t to, int32_t cap)
{
    if (f->narcs + 2 > f->carcs) {
        size_t nc = f->carcs ? f->carcs * 2 : 1024;
        struct arc *v = realloc(f->arcs, nc * sizeof(*v));
        if (v == NULL)
            return PULL_ERR_NOMEM;
        f->arcs = v;
        f->carcs = nc;
    }
    f->arcs[f->narcs] = (struct arc){to, f->head[from], cap};
    f->head[from] = (uint32_t)f->narcs++;
    f->arcs[f->narcs] = (struct arc){from, f->head[to], 0};
    f->head[to] = (uint32_t)f->narcs++;
    return 0;
}

int
trust_independent(struct trust *t, const uint8_t key[static 32], unsigned *n)
{
    struct flow f = {0};
    uint32_t target, *local = NULL, nl = 0, src, dst;
    int rc = 0;

    *n = 0;
    fresh(t);
    if ((target = node_find(t, key)) == UINT32_MAX || t->dist[target] == TRUST_NONE || target == 0)
        return 0;
    /* number the reachable people */
    if ((local = malloc(t->nnodes * sizeof(*local))) == NULL)
        return PULL_ERR_NOMEM;
    for (uint32_t i = 0; i < t->nnodes; i++)
        local[i] = t->dist[i] != TRUST_NONE ? nl++ : UINT32_MAX;
    if ((f.head = malloc(2 * (size_t)nl * sizeof(*f.head))) == NULL ||
        (f.prev = malloc(2 * (size_t)nl * sizeof(*f.prev))) == NULL ||
        (f.q = malloc(2 * (size_t)nl * sizeof(*f.q))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    memset(f.head, 0xff, 2 * (size_t)nl * sizeof(*f.head));
    for (uint32_t i = 0; i < t->nnodes && rc == 0; i++) {
        uint32_t li = local[i];
        if (li == UINT32_MAX)
            continue;
        rc = flow_arc(&f, 2 * li, 2 * li + 1, (i == 0 || i == target) ? 1 << 20 : 1);
        for (uint32_t k = 0; k < t->nodes[i].nadj && rc == 0; k++) {
            uint32_t lj = local[t->nodes[i].adj[k].to];
            if (lj != UINT32_MAX)
                rc = flow_arc(&f, 2 * li + 1, 2 * lj, 1);
        }
    }
    src = 2 * local[0] + 1;
    dst = 2 * local[target];
    while (rc == 0 && *n < TRUST_INDEPENDENT_MAX) {
        size_t qh = 0, qt = 0;
        bool reached = false;
        memset(f.prev, 0xff, 2 * (size_t)nl * sizeof(*f.prev));
        f.q[qt++] = src;
        f.prev[src] = UINT32_MAX - 1; /* visited, no arc */
        while (qh < qt && !reached) {
            uint32_t v = f.q[qh++];
            for (uint32_t a = f.head[v]; a != UINT32_MAX; a = f.arcs[a].next) {
                uint32_t u = f.arcs[a].to;
                if (f.arcs[a].cap <= 0 || f.prev[u] != UINT32_MAX)
                    continue;
                f.prev[u] = a;
                if (u == dst) {
                    reached = true;
                    break;
                }
                f.q[qt++] = u;
            }
        }
        if (!reached)
            break;
        for (uint32_t v = dst; v != src;) {
            uint32_t a = f.prev[v];
            f.arcs[a].cap--;
            f.arcs[a ^ 1].cap++;
            v = f.arcs[a ^ 1].to;
        }
        (*n)++;
    }
out:
    if (rc != 0)
        *n = 0;
    free(local);
    free(f.arcs);
    free(f.head);
    free(f.prev);
    free(f.q);
    return rc;
}

unsigned
trust_dyads(const struct trust *t, const uint8_t a[static 32], const uint8_t b[static 32])
{
    uint32_t ia = node_find(t, a), ib = node_find(t, b);
    uint8_t(*seen)[TRUST_DYAD_BYTES] = NULL;
    unsigned n = 0, cap = 0;

    if (ia == UINT32_MAX || ib == UINT32_MAX || adj_find(&t->nodes[ia], ib) == NULL)
        return 0;
    for (size_t e = 0; e < t->nev; e++) {
        const struct tev *v = &t->ev[e];
        bool dup = false;
        if (!v->used || !((v->a == ia && v->b == ib) || (v->a == ib && v->b == ia)))
            continue;
        for (unsigned k = 0; k < n && !dup; k++)
            dup = memcmp(seen[k], v->dyad, TRUST_DYAD_BYTES) == 0;
        if (dup)
            continue;
        if (n == cap) {
            unsigned nc = cap ? cap * 2 : 8;
            void *p = realloc(seen, nc * sizeof(*seen));
            if (p == NULL)
                break;
            seen = p;
            cap = nc;
        }
        memcpy(seen[n++], v->dyad, TRUST_DYAD_BYTES);
    }
    free(seen);
    return n > 0 ? n : 1;
}

void
trust_neighbors(const struct trust *t, const uint8_t key[static 32],
                int (*fn)(void *ctx, const uint8_t other[32], unsigned dyads), void *ctx)
{
    uint32_t i = node_find(t, key);

    if (i == UINT32_MAX)
        return;
    for (uint32_t k = 0; k < t->nodes[i].nadj; k++) {
        const uint8_t *other = t->nodes[t->nodes[i].adj[k].to].key;
        if (fn(ctx, other, trust_dyads(t, key, other)) != 0)
            return;
    }
}

void
trust_get_stats(struct trust *t, struct trust_stats *st)
{
    memset(st, 0, sizeof(*st));
    fresh(t);
    st->people = t->nnodes;
    st->edges = t->edges;
    st->evidence = t->live_ev;
    st->recomputes = t->recomputes;
    for (size_t i = 1; i < t->nnodes; i++)
        st->reachable += t->dist[i] != TRUST_NONE;
}
