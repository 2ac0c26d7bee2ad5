/*
 * nat: a TCP port mapped on the home router, so that a node behind it accepts peers.
 *
 * At start (unless --nat off, or the node listens on loopback) the node asks the router
 * for a mapping of its listen port: UPnP-IGD (libminiupnpc) or NAT-PMP (libnatpmp), as
 * --nat says (auto: UPnP first, then NAT-PMP). Both libraries block, so each attempt runs
 * on libuv's thread pool (uv_queue_work) with bounded waits (UPnP discovery 500 ms per
 * search, NAT-PMP 2 s per request, the library's own HTTP timeouts); only the result is
 * applied on the loop. A mapping's external address becomes the advertised address
 * (sync_set_external: HELLO, JOIN, NEIGHBOR, SHUFFLE, `pull id`). The lease asked is the
 * limit nat_lease_s (1 hour); the mapping is renewed at half the lease granted (at most every
 * 5 s), tried again after a failure (1 min, doubling to 15 min), and deleted at stop.
 *
 * What the router says is untrusted: the external address must parse as a numeric IPv4
 * address, ports and leases are range-checked, strings are bounded copies.
 */
#ifndef PULL_NAT_H
#define PULL_NAT_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/node.h"
#include "daemon/sync.h"

struct nat;

/* The mapping as `pull status` shows it ("nat"). */
struct nat_info {
    const char *mode;  /* "auto", "upnp", "natpmp" or "off" (config) */
    char method[8];    /* "upnp" or "natpmp" while mapped, "" otherwise */
    char external[64]; /* the router's external IPv4 address, "" if none */
    uint16_t mapped_port;
    uint32_t lease_s;   /* 0: permanent (the router grants no lease), or not mapped */
    uint64_t mapped_ms; /* ms from start to the first mapping, 0 if none yet */
    bool busy;          /* an attempt is running */
    uint32_t attempts;  /* attempts made */
    char error[160];    /* why there is no mapping ("" when mapped, or not tried) */
};

/* nat_start starts mapping node n's listen port as n->cfg.nat says, reporting the result
 * to s (sync_set_external). *out is NULL for --nat off. Returns 0 or PULL_ERR_NOMEM. */
int nat_start(struct node *n, struct sync *s, struct nat **out);

/* nat_get_info fills out (mode "off" and the rest empty when t is NULL). */
void nat_get_info(const struct nat *t, const struct node *n, struct nat_info *out);

/* nat_stop stops the timer and deletes the mapping (on the thread pool: the loop runs
 * until that bounded request is done). An attempt still running is left to end; its
 * result is dropped. Safe to call twice and with NULL. */
void nat_stop(struct nat *t);

/* nat_free frees t once the loop has run out (after nat_stop). NULL does nothing. */
void nat_free(struct nat *t);

#endif
