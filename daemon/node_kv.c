/*
 * node_kv: the key-value writes (node.h, node_kv_put and its kin) and the after-commit
 * callbacks. Both wait in the pending batch, in the order they were queued, and commit with
 * its records in one transaction (node_commit.c); node_kv_get reads the pending batch
 * first, from the newest write of a key, then the batch being committed, then the store.
 * Enough key-value bytes queued (NODE_BATCH_KV_BYTES) commit at once rather than at the
 * end of the loop turn.
 */
#include "daemon/node.h"
#include "daemon/node_int.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

static int
kv_queue(struct node *n, enum store_table t, const uint8_t key[32], const void *val, size_t len,
         bool del, const struct store_peer_stats *note)
{
    struct node_batch *b = n->batch;
    struct kvpend *k;

    if (b->closed)
        return PULL_ERR_STATE;
    if (len > STORE_KV_MAX)
        return PULL_ERR_TOO_BIG;
    if ((k = malloc(sizeof(*k) + len)) == NULL)
        return PULL_ERR_NOMEM;
    k->next = NULL;
    k->table = t;
    memcpy(k->key, key, 32);
    k->del = del;
    k->has_note = note != NULL;
    if (note != NULL)
        k->note = *note;
    k->len = len;
    if (len > 0)
        memcpy(k->val, val, len);
    *b->kv_tail = k;
    b->kv_tail = &k->next;
    b->nkv++;
    b->kv_bytes += len + 64;
    b->urgent = true;
    node_batch_wake(b);
    if (b->kv_bytes >= NODE_BATCH_KV_BYTES)
        node_commit_full(n);
    return 0;
}

int
node_kv_put(struct node *n, enum store_table t, const uint8_t key[static 32], const void *val,
            size_t len)
{
    int rc;

    if (val == NULL && len != 0)
        return PULL_ERR_INVAL;
    if ((rc = kv_queue(n, t, key, val, len, false, NULL)) == 0 && t == STORE_DYADS)
        node_kin_learn_dyad(n, val, len);
    return rc;
}

int
node_peer_note(struct node *n, const uint8_t key[static 32], const struct store_peer_stats *note)
{
    if (note == NULL)
        return PULL_ERR_INVAL;
    return kv_queue(n, STORE_PEERS, key, NULL, 0, false, note);
}

int
node_kv_del(struct node *n, enum store_table t, const uint8_t key[static 32])
{
    return kv_queue(n, t, key, NULL, 0, true, NULL);
}

/* kv_newest returns the newest write of key in the list l (not a note), or NULL. */
static const struct kvpend *
kv_newest(const struct kvpend *l, enum store_table t, const uint8_t key[32])
{
    const struct kvpend *last = NULL;

    for (const struct kvpend *k = l; k != NULL; k = k->next) {
        if (k->table == t && !k->has_note && memcmp(k->key, key, 32) == 0)
            last = k;
    }
    return last;
}

int
node_kv_get(struct node *n, enum store_table t, const uint8_t key[static 32], struct pull_wb *out)
{
    /* the pending batch, then the one in flight (the store does not have it yet) */
    const struct kvpend *last = kv_newest(n->batch->kv, t, key);

    if (last == NULL)
        last = kv_newest(n->batch->fl.kv, t, key);
    if (last != NULL) {
        if (last->del)
            return PULL_ERR_NOT_FOUND;
        return out != NULL ? wb_put(out, last->val, last->len) : 0;
    }
    return store_kv_get(n->store, t, key, out);
}

int
node_after_commit(struct node *n, node_done_fn fn, void *arg)
{
    struct node_batch *b = n->batch;
    struct after *a;

    if (b->closed)
        return PULL_ERR_STATE;
    if ((a = malloc(sizeof(*a))) == NULL)
        return PULL_ERR_NOMEM;
    a->next = NULL;
    a->fn = fn;
    a->arg = arg;
    *b->after_tail = a;
    b->after_tail = &a->next;
    b->urgent = true;
    node_batch_wake(b);
    return 0;
}
