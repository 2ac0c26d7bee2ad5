/*
 * node_kin: the authors whose records the store budget keeps besides the node's own (node.h,
 * "The store budget"): the other side of each dyad this node proposed or accepted, and of
 * each attestation naming it. An open-addressing set of keys (the all-zero key marks an
 * empty slot and is never added), filled from the dyads table at start, then from the
 * dyads written and the attestations stored.
 */
#include "daemon/node.h"
#include "daemon/node_int.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/mp.h"
#include "proto/dyad.h"

static const uint8_t zero_key[32];

static uint32_t
h32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t
kin_pos(const struct node_kin *k, const uint8_t key[32])
{
    size_t mask = k->cap - 1, i = h32(key) & mask;

    while (memcmp(k->keys[i], zero_key, 32) != 0 && memcmp(k->keys[i], key, 32) != 0)
        i = (i + 1) & mask;
    return i;
}

static bool
kin_has(const struct node_kin *k, const uint8_t key[32])
{
    return k != NULL && k->cap > 0 && memcmp(k->keys[kin_pos(k, key)], zero_key, 32) != 0;
}

struct node_kin *
node_kin_new(void)
{
    struct node_kin *k = calloc(1, sizeof(*k));

    if (k != NULL && pthread_mutex_init(&k->mu, NULL) != 0) {
        free(k);
        return NULL;
    }
    return k;
}

int
node_kin_add(struct node_kin *k, const uint8_t key[32])
{
    int rc = 0;

    if (memcmp(key, zero_key, 32) == 0 || kin_has(k, key))
        return 0;
    pthread_mutex_lock(&k->mu);
    if (2 * (k->n + 1) > k->cap) { /* keep it at most half full */
        struct node_kin g = {.keys = NULL, .cap = k->cap ? 2 * k->cap : 64, .n = k->n};
        if ((g.keys = calloc(g.cap, 32)) == NULL) {
            rc = PULL_ERR_NOMEM;
            goto out;
        }
        for (size_t i = 0; i < k->cap; i++) {
            if (memcmp(k->keys[i], zero_key, 32) != 0)
                memcpy(g.keys[kin_pos(&g, k->keys[i])], k->keys[i], 32);
        }
        free(k->keys);
        k->keys = g.keys;
        k->cap = g.cap;
    }
    memcpy(k->keys[kin_pos(k, key)], key, 32);
    k->n++;
out:
    pthread_mutex_unlock(&k->mu);
    return rc;
}

void
node_kin_free(struct node_kin *k)
{
    if (k == NULL)
        return;
    pthread_mutex_destroy(&k->mu);
    free(k->keys);
    free(k);
}

bool
node_keeps(const struct node *n, const uint8_t author[static 32])
{
    return sodium_memcmp(author, n->self.pk, 32) == 0 || kin_has(n->kin, author);
}

/* opts.keep: called inside commits, which may run on the writer thread */
bool
node_store_keep(void *ctx, const uint8_t author[32])
{
    struct node *n = ctx;
    bool keep;

    if (sodium_memcmp(author, n->self.pk, 32) == 0)
        return true;
    pthread_mutex_lock(&n->kin->mu);
    keep = kin_has(n->kin, author);
    pthread_mutex_unlock(&n->kin->mu);
    return keep;
}

/* kin_learn_dyad adds the other side of a stored dyad (dyads.c's value: [1, updated,
 * expired_at, [msg, ...]], proto/dyad.h) if this node proposed it or accepted it. Only the
 * messages' layout is read, not their signatures: dyads.c verified them before storing. */
void
node_kin_learn_dyad(struct node *n, const uint8_t *val, size_t len)
{
    struct pull_rd r;
    struct dyad_msg m;
    const uint8_t *p;
    uint32_t nmsg, plen;
    uint64_t u;
    uint8_t other[32];

    rd_init(&r, val, len);
    if (mp_read_array_n(&r, 4) != 0 || mp_read_uint(&r, &u) != 0 || mp_read_uint(&r, &u) != 0 ||
        mp_read_uint(&r, &u) != 0 || mp_read_array(&r, &nmsg) != 0 || nmsg == 0 ||
        mp_read_bin(&r, (uint32_t)len, &p, &plen) != 0 || dyad_msg_decode(p, plen, &m) != 0 ||
        m.kind != DYAD_PROPOSE)
        return;
    if (sodium_memcmp(m.proposer, n->self.pk, 32) == 0) {
        memcpy(other, m.responder, 32);
    } else if (sodium_memcmp(m.responder, n->self.pk, 32) == 0 && nmsg >= 2) {
        memcpy(other, m.proposer, 32);
        if (mp_read_bin(&r, (uint32_t)len, &p, &plen) != 0 || dyad_msg_decode(p, plen, &m) != 0 ||
            m.kind != DYAD_ACCEPT)
            return; /* declined, or cancelled before an answer */
    } else {
        return;
    }
    if (node_kin_add(n->kin, other) != 0)
        log_warn("out of memory: a dyad's counterpart is not kept from the store budget");
}

int
node_kin_load_one(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len)
{
    (void)key;
    node_kin_learn_dyad(ctx, val, len);
    return 0;
}
