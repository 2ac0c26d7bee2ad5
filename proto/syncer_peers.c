/*
 * syncer_peers: the peers the engine remembers in order to dial them again: as the node
 * shows them (syncer.h, "what the node shows"), then the rules (the known peers section):
 * the bootstrap lines and persisted rows loaded at start, ranked and fed to gossip, fed
 * again when the node is alone (syncer.c's timeout), and a peer persisted when it connects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "proto/syncer_int.h"

/* in_boot: is key one of the bootstrap lines? */
static bool
in_boot(const struct syncer *e, const uint8_t key[32])
{
    for (size_t i = 0; i < e->nboot; i++) {
        if (memcmp(e->boot[i].key, key, 32) == 0)
            return true;
    }
    return false;
}

/* saved_seen: when key was last seen according to the persisted peers (0: not among them). */
static uint64_t
saved_seen(const struct syncer *e, const uint8_t key[32])
{
    for (size_t i = 0; i < e->nsaved; i++) {
        if (memcmp(e->saved[i].key, key, 32) == 0)
            return e->saved[i].seen_s;
    }
    return 0;
}

size_t
syncer_known_count(const struct syncer *e)
{
    size_t n = e->nboot;

    for (size_t i = 0; i < e->nsaved; i++)
        n += !in_boot(e, e->saved[i].key);
    return n;
}

int
syncer_known_at(const struct syncer *e, size_t i, struct syncer_known_info *out)
{
    const struct known *k = NULL;

    memset(out, 0, sizeof(*out));
    if (i < e->nboot) {
        k = &e->boot[i];
        out->bootstrap = true;
        out->seen_s = saved_seen(e, k->key);
    } else {
        i -= e->nboot;
        for (size_t j = 0; j < e->nsaved && k == NULL; j++) {
            if (in_boot(e, e->saved[j].key))
                continue;
            if (i-- == 0)
                k = &e->saved[j];
        }
        if (k == NULL)
            return PULL_ERR_NOT_FOUND;
        out->seen_s = k->seen_s;
    }
    memcpy(out->key, k->key, 32);
    snprintf(out->addr, sizeof(out->addr), "%s", k->addr);
    return 0;
}

uint64_t
syncer_next_rejoin(const struct syncer *e, uint64_t now_ms)
{
    if (gossip_active_count(e->g) > 0)
        return 0;
    if (e->rejoin_at != 0)
        return e->rejoin_at > now_ms ? e->rejoin_at : now_ms;
    /* alone since the last timeout: the next one plans it one gap ahead */
    return now_ms + (e->rejoin_gap != 0 ? e->rejoin_gap : SYNCER_REJOIN_MIN_MS);
}

/* ---------------------------------------------------------------- known peers */

void
syncer_known_feed(struct syncer *e, uint64_t now)
{
    uint64_t now_s = env_wall_s(e->env);
    size_t used = 0;

    for (size_t i = 0; i < e->nboot; i++)
        (void)gossip_add_known(e->g, e->boot[i].key, e->boot[i].addr, now);
    for (size_t i = 0; i < e->nsaved && used < SYNCER_PEERS_LOAD_MAX; i++) {
        if (e->saved[i].seen_s + SYNCER_PEER_MAX_AGE_S < now_s)
            continue;
        if (gossip_add_known(e->g, e->saved[i].key, e->saved[i].addr, now) == 0)
            used++;
    }
}

/* known_upsert remembers that key was seen at addr at seen_s in the saved list (most
 * recently seen first, at most SYNCER_PEERS_LOAD_MAX: the oldest goes). */
static void
known_upsert(struct syncer *e, const uint8_t key[32], const char *addr, uint64_t seen_s)
{
    size_t i;
    struct known k;

    for (i = 0; i < e->nsaved && memcmp(e->saved[i].key, key, 32) != 0; i++)
        ;
    if (i == e->nsaved) {
        if (e->nsaved < SYNCER_PEERS_LOAD_MAX && e->nsaved == e->csaved) {
            size_t cap = e->csaved ? e->csaved * 2 : 16;
            struct known *v;
            if (cap > SYNCER_PEERS_LOAD_MAX)
                cap = SYNCER_PEERS_LOAD_MAX;
            if ((v = env_realloc(e->env, e->saved, cap * sizeof(*v))) == NULL)
                return;
            e->saved = v;
            e->csaved = cap;
        }
        if (e->nsaved < e->csaved)
            e->nsaved++;
        i = e->nsaved - 1; /* a new entry, or the oldest one replaced */
    }
    memcpy(k.key, key, 32);
    k.seen_s = seen_s;
    k.value = i < e->nsaved && memcmp(e->saved[i].key, key, 32) == 0 ? e->saved[i].value : 0;
    snprintf(k.addr, sizeof(k.addr), "%s", addr);
    memmove(&e->saved[1], &e->saved[0], i * sizeof(k)); /* to the front */
    e->saved[0] = k;
}

/* syncer_peer_put persists that key was seen at addr now. */
void
syncer_peer_put(struct syncer *e, const uint8_t key[32], const char *addr)
{
    size_t len = strlen(addr);
    struct syncer_action *a;
    uint8_t *val;

    if (len < 3 || len > GOSSIP_ADDR_MAX || strcmp(addr + len - 2, ":0") == 0)
        return; /* it accepts no connections: nothing to dial later */
    known_upsert(e, key, addr, env_wall_s(e->env));
    if (len == 0 || len > GOSSIP_ADDR_MAX || (val = env_alloc(e->env, 8 + len)) == NULL)
        return;
    be64enc(val, env_wall_s(e->env));
    memcpy(val + 8, addr, len);
    if ((a = syncer_act_push(e, SYNCER_ACT_PUT)) == NULL) {
        env_free(e->env, val);
        return;
    }
    a->table = SYNCER_TABLE_PEERS;
    memcpy(a->key, key, 32);
    a->data = val;
    a->len = 8 + len;
}

int
syncer_add_bootstrap(struct syncer *e, const uint8_t key[static 32], const char *addr,
                     uint64_t now_ms)
{
    int rc;

    if (addr == NULL || strlen(addr) > GOSSIP_ADDR_MAX)
        return PULL_ERR_INVAL;
    if (e->nboot == SYNCER_BOOTSTRAP_MAX)
        return PULL_ERR_QUOTA;
    syncer_enter(e);
    rc = gossip_add_known(e->g, key, addr, now_ms);
    if (rc == 0) {
        memcpy(e->boot[e->nboot].key, key, 32);
        snprintf(e->boot[e->nboot].addr, sizeof(e->boot[0].addr), "%s", addr);
        e->nboot++;
    }
    syncer_leave_call(e, now_ms);
    return rc;
}

/* The order in which saved peers are fed: the most valuable first, then the most recently
 * seen, then by key (the same order whatever order the rows came in). */
static int
cmp_rank(const void *a, const void *b)
{
    const struct known *x = a, *y = b;

    if (x->value != y->value)
        return x->value < y->value ? 1 : -1;
    if (x->seen_s != y->seen_s)
        return x->seen_s < y->seen_s ? 1 : -1;
    return memcmp(x->key, y->key, 32);
}

void
syncer_load_peer(struct syncer *e, const uint8_t key[static 32], const uint8_t *val, size_t len,
                 uint32_t value)
{
    struct known *k;

    if (len <= 8 || len > 8 + GOSSIP_ADDR_MAX || memcmp(key, e->self, 32) == 0)
        return;
    if (e->nsaved == e->csaved) {
        size_t cap = e->csaved ? e->csaved * 2 : 64;
        struct known *v = env_realloc(e->env, e->saved, cap * sizeof(*v));
        if (v == NULL)
            return;
        e->saved = v;
        e->csaved = cap;
    }
    k = &e->saved[e->nsaved++];
    memcpy(k->key, key, 32);
    k->seen_s = be64dec(val);
    k->value = value;
    memcpy(k->addr, val + 8, len - 8);
    k->addr[len - 8] = '\0';
}

void
syncer_start(struct syncer *e, uint64_t now_ms)
{
    syncer_enter(e);
    if (e->nsaved > 1)
        qsort(e->saved, e->nsaved, sizeof(*e->saved), cmp_rank);
    if (e->nsaved > SYNCER_PEERS_LOAD_MAX) {
        struct known *v;
        e->nsaved = SYNCER_PEERS_LOAD_MAX; /* only these are ever fed */
        if ((v = env_realloc(e->env, e->saved, e->nsaved * sizeof(*v))) != NULL) {
            e->saved = v;
            e->csaved = e->nsaved;
        }
    }
    syncer_known_feed(e, now_ms);
    if (e->nsaved > 0)
        syncer_logf(e, 2, "%zu known peer(s) loaded", e->nsaved);
    syncer_leave_call(e, now_ms);
}

int
syncer_set_addr(struct syncer *e, const char *addr)
{
    return gossip_set_addr(e->g, addr);
}

void
syncer_set_dialable(struct syncer *e, bool dialable)
{
    gossip_set_dialable(e->g, dialable);
}

int
syncer_add_known(struct syncer *e, const uint8_t key[static 32], const char *addr, uint64_t now_ms)
{
    int rc;

    syncer_enter(e);
    rc = gossip_add_known(e->g, key, addr, now_ms);
    syncer_leave_call(e, now_ms);
    return rc;
}
