/*
 * node_int.h: what node.c and node_kin.c share (node.h is the manual).
 */
#ifndef PULL_NODE_INT_H
#define PULL_NODE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/node.h"

/* The authors the budget keeps besides the node's own (node_kin.c). */
struct node_kin {
    uint8_t (*keys)[32];
    size_t cap; /* 0 or a power of two */
    size_t n;
};

/* node_kin_add adds key (the all-zero key is ignored). Returns 0 or PULL_ERR_NOMEM. */
int node_kin_add(struct node_kin *k, const uint8_t key[32]);

/* node_kin_free frees k; NULL does nothing. */
void node_kin_free(struct node_kin *k);

/* node_store_keep is the store's keep callback (ctx: the node): node_keeps. */
bool node_store_keep(void *ctx, const uint8_t author[32]);

/* node_kin_learn_dyad adds the other side of a stored dyad (the dyads table's value) if
 * this node proposed or accepted it; node_kin_load_one is the same as a store_kv_iter
 * callback (ctx: the node). */
void node_kin_learn_dyad(struct node *n, const uint8_t *val, size_t len);
int node_kin_load_one(void *ctx, const uint8_t key[32], const uint8_t *val, size_t len);

#endif
