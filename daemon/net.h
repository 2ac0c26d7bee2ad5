/*
 * net: pulld's TCP side. It listens and dials, runs the Secret Handshake with the node's
 * network key, the two secretstreams of frames, the HELLO exchange and version
 * negotiation, liveness (PING after idle_timeout/3 of silence, BYE timeout after
 * idle_timeout) and every per-peer limit of config_limits. Its only user is sync.c, which
 * sees peers by their 32-byte key, never a connection object.
 *
 * Connections. One per peer key: when two exist (both sides dialed at once), both ends keep
 * the one dialed by the lower key and close the other with BYE DUPLICATE, so they agree
 * without talking. A peer presenting our own key gets BYE SELF. A connection is "up" once
 * both HELLOs were exchanged and a version negotiated; only then does sync hear of it.
 *
 * Events (struct net_events), all called from the loop, never from inside net_send or
 * net_close:
 *   up(key, inbound, addr, features)  a session is established. addr is the dialed address,
 *                  or for inbound connections the observed IP with the HELLO's listen port
 *                  (port 0 if the peer accepts no connections);
 *   msg(key, bytes, len)              one message (a whole frame's plaintext) of a type that
 *                  is not a session message (HELLO/PING/PONG/BYE are handled here);
 *   flushed(key, len, counted)        a net_send message of len bytes was written (or dropped
 *                  with its connection); counted is net_send's flag;
 *   down(key)                         an up connection ended on its own (peer gone, timeout,
 *                  protocol error, queue overflow, duplicate);
 *   dial_failed(key, addr, err, kind, reason)  a dial of addr ended before the session was up,
 * unless another connection with that key is alive. kind (enum net_fail) says what the dialing side
 * could tell, reason says it for a person. Connections closed with net_close produce no event.
 *
 * Telling dial failures apart. The Secret Handshake is silent on purpose (proto/shs.h), so
 * the dialer reads the server's behaviour instead, from how far the handshake got:
 *   - connect() refused, unreachable, no answer, or the name does not resolve: said as such;
 *   - the server closed (FIN) before answering our client hello: a pulld drops a hello that
 *     its network key does not authenticate without a word, so it is on another network key
 *     (or it is not a pull node at all);
 *   - the server reset the connection (RST) before answering: pulld refuses a connection
 *     over its admission limits with a reset (net.c), so it is busy;
 *   - the server answered our hello (its HMAC proves our network key) and then closed
 *     after our client authenticate: that box opens only with the secret key of the id we
 *     dialed, so the node there is not that id;
 *   - a server hello that our key does not authenticate: no pulld sends one (it would have
 *     kept quiet), so whatever listens there is not a pull node on our network.
 * Anything else (a close in the middle of a message, a BYE after the handshake) is told as
 * it happened.
 *
 * Limits: max_handshakes connections still in the handshake, max_conns connections with an
 * established session (more are refused with BYE BUSY), handshake_timeout_ms for the
 * handshake and HELLO, a token bucket of peer_rate_bytes / peer_burst_bytes per peer on
 * received bytes (reading stops while it is empty), at most 64 frames handled per read
 * callback, and peer_queue_bytes of unsent data per peer: a peer whose queue would grow
 * beyond it is dropped, never buffered without limit. Every peer byte is untrusted.
 *
 * Admission. An open network is made of strangers, and a stranger must not be able to
 * take every slot before it has said who it is. An inbound connection's source is its IP
 * address (an IPv6 /64) and its address group (gossip_addr_group: the /16 of a public
 * IPv4 address, the /32 of a public IPv6 one; a private or loopback address is a group of
 * its own, so 127.0.0.2 and 127.0.0.3 are two sources). A source holds at most
 * max_handshakes_per_ip / max_handshakes_per_group connections in the handshake (more are
 * closed at accept) and max_conns_per_ip / max_conns_per_group inbound sessions (more get
 * BYE BUSY once the key is known). A stranger holds a slot only at an honest peer's pace:
 * its first handshake message within first_msg_timeout_ms of the accept, its HELLO within
 * hello_timeout_ms of the handshake's end. When every slot of a kind is taken (the
 * handshakes, or the sessions), a newcomer from a source with fewer of them takes the
 * place of the youngest connection of the address group holding the most of those not
 * yet authenticated (in the handshake, or waiting for their HELLO), as Bitcoin Core and
 * libp2p's connection manager do; sessions that sent their HELLO are never evicted. Our
 * own dials are not counted against any source. A node listening on one address (not
 * 0.0.0.0 or ::) dials from it too, so its peers see the address they can dial back.
 * Counters: conns_refused (conns_limited: over a share), conns_evicted, handshakes_slow.
 *
 * Memory: a connection is freed only in its libuv close callback, never inside its own
 * callback chain.
 *
 * Rooms: net.c holds the set of connections (listening and admitting, dialing, the limits
 * on their numbers, maintenance, the functions below, the addresses others dial) and
 * net_conn.c one connection's life (handshake, frames, HELLO, input, writes, BYE);
 * net_int.h is what they share.
 */
#ifndef PULL_NET_H
#define PULL_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/node.h"

struct net;

/* What a failed dial looked like from the dialing side (see the top comment). */
enum net_fail {
    NET_FAIL_OTHER = 0,
    NET_FAIL_RESOLVE,     /* the host name does not resolve */
    NET_FAIL_REFUSED,     /* connection refused: nothing listens at that address */
    NET_FAIL_UNREACHABLE, /* no route to the host or network */
    NET_FAIL_TIMEOUT,     /* no answer (connect or handshake) within the handshake timeout */
    NET_FAIL_NETKEY,      /* closed without answering our hello: another network key */
    NET_FAIL_WRONG_ID,    /* on our network key, but not the node dialed */
    NET_FAIL_NOT_PULL,    /* answered with something that is not our handshake */
    NET_FAIL_BUSY,        /* refused for its limits (reset before the handshake, BYE busy) */
    NET_FAIL_REFUSED_BYE, /* refused after the handshake with another BYE (version, ...) */
};
#define NET_FAIL_COUNT 10

/* net_fail_name: a short name for JSON and tests ("refused", "timeout", "other_network",
 * "wrong_id", ...). */
const char *net_fail_name(enum net_fail kind);

struct net_events {
    void (*up)(void *ctx, const uint8_t key[32], bool inbound, const char *addr, uint64_t features);
    void (*msg)(void *ctx, const uint8_t key[32], const uint8_t *msg, size_t len);
    void (*flushed)(void *ctx, const uint8_t key[32], size_t len, bool counted);
    void (*down)(void *ctx, const uint8_t key[32]);
    void (*dial_failed)(void *ctx, const uint8_t key[32], const char *addr, int err,
                        enum net_fail kind, const char *reason);
    void *ctx;
};

/* net_new binds and listens on n->cfg.listen (port 0: a free port, see net_port) and sets
 * *out. Returns 0, or PULL_ERR_INVAL (bad address, cannot bind) after logging a one-line
 * reason; *out may then be set too and must be stopped and freed. */
int net_new(struct node *n, const struct net_events *ev, struct net **out);

/* net_stop sends BYE (normal) to every peer, closes every connection and the listener.
 * No event follows. Safe to call twice. */
void net_stop(struct net *t);

/* net_free frees the net (after net_stop and the loop ended). net_free(NULL) is fine. */
void net_free(struct net *t);

/* net_port returns the TCP port bound. */
uint16_t net_port(const struct net *t);

/* net_dial connects to key at addr ("HOST:PORT"; HOST may be a name). Returns 0 (an up or
 * dial_failed event will follow), PULL_ERR_EXISTS (a connection with key is up or being
 * dialed: no event), PULL_ERR_BAD_KEY (own key), PULL_ERR_INVAL (bad address),
 * PULL_ERR_QUOTA (max_conns reached). */
int net_dial(struct net *t, const uint8_t key[static 32], const char *addr);

/* net_probe runs a diagnostic dial of key at addr (pull doctor): the handshake and the
 * HELLO exchange, then a goodbye; sync never hears of it. cb is called exactly once if 0 is
 * returned (also when the net stops: err PULL_ERR_CLOSED), never inside this call. Returns
 * 0, PULL_ERR_EXISTS (a connection with key is open or being dialed: ask net_conn_info),
 * PULL_ERR_BAD_KEY (own key, or not a usable key), PULL_ERR_INVAL (bad address),
 * PULL_ERR_STATE (stopped) or PULL_ERR_NOMEM. */
int net_probe(struct net *t, const uint8_t key[static 32], const char *addr, node_probe_fn cb,
              void *arg);

/* net_probe_invite is net_probe for an invitation (node_probe_invite): the handshake with
 * netkey instead of the node's network key, secret in our HELLO, and the inviter's BYE
 * (MSG_BYE_INVITE) awaited after its HELLO. A connection with key being up does not stop
 * it (it never becomes the key's connection). Same returns as net_probe. */
int net_probe_invite(struct net *t, const uint8_t key[static 32], const char *addr,
                     const uint8_t netkey[static 32], const uint8_t secret[static 16],
                     node_probe_fn cb, void *arg);

/* net_probe_cancel forgets the callbacks of the probes running with arg (they run on
 * quietly, no callback follows). */
void net_probe_cancel(struct net *t, void *arg);

/* net_send sends one message (1..MSG_MAX bytes) to the up connection of key. counted is
 * handed back with its flushed event (the gossip engine's backlog accounting). Returns
 * 0, PULL_ERR_NOT_FOUND (no up connection), PULL_ERR_QUOTA (its queue overflowed: the
 * peer is being dropped and a down event follows). */
int net_send(struct net *t, const uint8_t key[static 32], const uint8_t *msg, size_t len,
             bool counted);

/* net_close ends the connection(s) with key: BYE (reason, text) as the final frame after
 * what is queued, then close. No event follows. */
void net_close(struct net *t, const uint8_t key[static 32], uint32_t reason, const char *text);

/* net_queued returns the bytes queued but not yet written to key's up connection. */
size_t net_queued(const struct net *t, const uint8_t key[static 32]);

/* net_is_up reports whether key has an established session. */
bool net_is_up(const struct net *t, const uint8_t key[static 32]);

/* net_up_count returns the number of established sessions. */
size_t net_up_count(const struct net *t);

/* net_conn_info fills the connection fields of out (connected, inbound, bytes, since_s,
 * the clock skew its HELLO told, and addr if out->addr is empty) for key. Returns 0 or
 * PULL_ERR_NOT_FOUND. */
int net_conn_info(const struct net *t, const uint8_t key[static 32], struct node_peer_info *out);

/* net_up_at writes the key of the i-th established session. Returns 0 or
 * PULL_ERR_NOT_FOUND. */
int net_up_at(const struct net *t, size_t i, uint8_t key[32]);

/* net_addresses writes up to max dialable "ID@HOST:PORT" strings (node_addresses). */
size_t net_addresses(const struct net *t, char (*out)[NODE_ADDR_MAX], size_t max);

/* net_advertised writes the "HOST:PORT" other nodes should dial (a port mapping's external
 * address, else the listen address, or for 0.0.0.0 / :: the first non-internal interface
 * address, else loopback). */
void net_advertised(const struct net *t, char *out, size_t len);

/* net_set_external sets (host: a numeric IP, port > 0) or clears (host NULL) the port that a
 * router maps to ours (daemon/nat.c). It becomes the advertised address, the port our
 * HELLOs name, and decides the HELLO's reach: open with a public advertised address, else
 * local (peers that see us come from a public address then never dial us back). */
void net_set_external(struct net *t, const char *host, uint16_t port);

/* net_reach returns what our HELLO says of us (enum msg_reach). */
uint8_t net_reach(const struct net *t);

#endif
