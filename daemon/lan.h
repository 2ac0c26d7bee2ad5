/*
 * lan: LAN discovery (UDP multicast + broadcast announcements, PROTOCOL.md section 13).
 * What it hears becomes node_learn_peer; lan.c's top comment has the details and bounds.
 */
#ifndef PULL_LAN_H
#define PULL_LAN_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/node.h"

struct lan;

/* LAN discovery's counters, for `pull status` ("lan"). */
struct lan_stats {
    bool running; /* the UDP socket is open */
    uint64_t rx, rx_bad, rx_limited, rx_other_net, learned, tx, tx_err;
    uint64_t rx_others; /* valid announcements of other nodes on our network key */
};

/* lan_start opens the UDP socket and starts announcing (*out stays NULL when
 * !n->cfg.lan). A socket that can't be opened turns discovery off with one warning and
 * returns 0. Returns 0 or PULL_ERR_NOMEM / PULL_ERR_CRYPTO. */
int lan_start(struct node *n, struct lan **out);

/* lan_get_stats fills out (zeros when l is NULL or not running). */
void lan_get_stats(const struct lan *l, struct lan_stats *out);

/* lan_stop closes the socket and the timer. Safe to call twice and with NULL. */
void lan_stop(struct lan *l);

/* lan_free frees l (its close callbacks may still run on the next loop turn). */
void lan_free(struct lan *l);

#endif
