/*
 * syncer_int: the inside of the syncer engine, shared by its rooms. Not for use outside
 * the engine. What lives where:
 *
 *   proto/syncer.c         entry points, connections, the action queue, gossip's callbacks,
 *                          the per-peer queues of ids to push and to want, timers, lifecycle;
 *   proto/syncer_recon.c   reconciliation sessions, and what each key and address group
 *                          asked lately (struct ssrc: the strangers' limits);
 *   proto/syncer_bulk.c    bulk catch-up (RECON_BULK, RECON_HAVE, RECON_TAKE);
 *   proto/syncer_peers.c   the remembered peers: bootstrap lines and persisted rows, fed to
 *                          gossip at start and again when alone, and how the node shows them;
 *   proto/syncer_mail.c    mail store-and-forward.
 *
 * Each room keeps its helpers static; the functions below are the ones another room calls.
 */
#ifndef PULL_SYNCER_INT_H
#define PULL_SYNCER_INT_H

#include "proto/syncer.h"

struct msg_have; /* proto/msg.h */

/* A FIFO of ids (pending pushes or wants). */
struct idq {
    uint8_t (*v)[32];
    size_t off, n, cap; /* live ids are v[off .. off + n) */
};

/* A source of requests (a key, or an address group) and what it asked for lately. */
struct ssrc {
    bool group;
    uint8_t id[32]; /* the key, or the group (GOSSIP_GROUP_LEN bytes, zero-padded) */
    uint64_t used_ms;
    uint64_t last_req_ms, last_salted_ms, last_bulk_ms;
    uint64_t window_ms; /* the serve window began */
    uint64_t served;    /* symbol bytes served in it */
};

/* One established connection. */
struct sconn {
    uint8_t key[32];
    uint8_t group[GOSSIP_GROUP_LEN]; /* where it connects from */
    struct recon *r;
    bool recon_ok; /* the peer speaks reconciliation */
    size_t queued; /* bytes of SEND actions not yet reported flushed */
    bool retry_salted;
    uint64_t retry_at; /* start a reconciliation then (0: none) */
    uint32_t bad;      /* protocol errors outside gossip's scoring */
    struct idq push;   /* ids to gossip_push (the serve queue was full) */
    struct idq want;   /* ids to gossip_want, paced */
    size_t inflight;   /* wanted ids not answered yet (approximately) */
    uint64_t want_progress_ms;
    bool again;           /* the last session wanted ids: reconcile again once in */
    uint64_t last_rec_ms; /* the last record the peer offered */
    /* serving the peer's RECON_BULK: its ids (sorted) and where the store pass stands */
    uint8_t (*have)[32]; /* SYNCER_BULK_AHEAD chunks of SYNCER_BULK_CHUNK ids */
    struct {
        uint32_t n, seq;
        bool waiting;     /* announced (RECON_HAVE), its RECON_TAKE has not come yet */
        uint64_t sent_ms; /* when it went out */
    } hc[SYNCER_BULK_AHEAD];
    uint32_t have_seq;
    uint32_t have_max; /* the next chunk's size: SYNCER_BULK_FIRST, doubling */
    bool bulk_eof;     /* the pass reached the end of the store: end once all are taken */
    uint8_t (*bulk_ids)[32];
    uint32_t bulk_n, bulk_sid;
    bool bulk_on, bulk_started;
    uint64_t bulk_created; /* cursor: the last (created, id) visited in time order */
    uint8_t bulk_last[32];
    uint64_t bulk_pushed;
    uint64_t bulk_sent_ms; /* we sent the peer a RECON_BULK */
};

/* A remembered peer (bootstrap line or persisted row), fed to gossip again when alone. */
struct known {
    uint8_t key[32];
    uint64_t seen_s;
    uint32_t value; /* the host's rank of the row at start (syncer_load_peer), 0 if none */
    char addr[GOSSIP_ADDR_MAX + 1];
};

struct syncer {
    const struct pull_env *env;
    struct syncer_config cfg;
    struct syncer_host host;
    uint8_t self[32];
    struct gossip *g;
    struct recon_set *set;
    bool set_broken;

    struct sconn **conns;
    size_t nconns, cconns;

    struct syncer_action *acts; /* queued actions, acts[ahead .. nacts) */
    size_t ahead, nacts, cacts;

    unsigned depth;     /* nested entry points (a commit inside offer()) */
    uint8_t (*pub)[32]; /* local records to publish at the end of the outermost call */
    size_t npub, cpub;

    struct ssrc *src; /* SYNCER_SOURCES_MAX */
    size_t nsrc;

    struct known boot[SYNCER_BOOTSTRAP_MAX];
    size_t nboot;
    struct known *saved; /* persisted peers, most recently seen first */
    size_t nsaved, csaved;

    uint64_t next_periodic_ms;
    uint64_t rejoin_at, rejoin_gap;
    uint64_t next_sweep_ms;
    struct syncer_stats st;
    uint8_t fetchbuf[GOSSIP_ENVELOPE_MAX];

    /* mail (syncer_mail.c) */
    struct mail_index *outbox, *relay, *inbox, *far, *strangers;
    uint64_t mail_first_expiry_s; /* no held item expires before this (0: unknown) */
    uint8_t have[MAIL_IHAVE_MAX][MAIL_ID_BYTES];
    uint8_t want[MAIL_IHAVE_MAX][MAIL_ID_BYTES];
    struct mail_ref refs[SYNCER_MAIL_REFS_MAX];
};

/* syncer.c */
struct syncer_action *syncer_act_push(struct syncer *e, enum syncer_action_type type);
int syncer_send(struct syncer *e, const uint8_t peer[32], const uint8_t *msg, size_t len,
                bool counted);
struct sconn *syncer_conn(const struct syncer *e, const uint8_t key[32]);
void syncer_logf(const struct syncer *e, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* syncer_short writes the 8-character text prefix of a key or id (as ident_short). */
const char *syncer_short(const uint8_t key[32], char out[9]);
void syncer_bad(struct syncer *e, const uint8_t key[32], const char *why);
/* syncer_enter and syncer_leave_call bracket every entry point (see syncer.c's top). */
void syncer_enter(struct syncer *e);
void syncer_leave_call(struct syncer *e, uint64_t now);
void syncer_drop(struct syncer *e, const uint8_t key[32], const char *why, uint64_t now);
int syncer_conn_recon_new(struct syncer *e, struct sconn *c);
void syncer_idq_add(const struct syncer *e, struct idq *q, const uint8_t (*ids)[32], size_t n,
                    size_t max);
void syncer_push_flush(struct syncer *e, struct sconn *c, uint64_t now);
void syncer_want_pump(struct syncer *e, struct sconn *c, uint64_t now);

/* syncer_recon.c */
struct ssrc *syncer_src_get(struct syncer *e, const uint8_t *id, bool group, uint64_t now);
uint64_t syncer_src_last(struct ssrc *k, struct ssrc *g, size_t off);
void syncer_src_set(struct ssrc *k, struct ssrc *g, size_t off, uint64_t now);
bool syncer_joined(const struct syncer *e, const struct sconn *c);
void syncer_recon_drain(struct syncer *e, struct sconn *c, uint64_t now);
bool syncer_catching_up(const struct syncer *e, const struct sconn *except, uint64_t now);
void syncer_recon_begin(struct syncer *e, struct sconn *c, unsigned flags, uint64_t now);
void syncer_rebuild_set(struct syncer *e);
int syncer_recon_on_msg(struct syncer *e, struct sconn *c, uint32_t type, const uint8_t *msg,
                        size_t len, uint64_t now);

/* syncer_bulk.c */
bool syncer_bulk_busy(const struct sconn *c, uint64_t now);
void syncer_bulk_pump(struct syncer *e, struct sconn *c, uint64_t now);
/* syncer_bulk_deadline is when a chunk c announced stalls (UINT64_MAX: none waits). */
uint64_t syncer_bulk_deadline(const struct sconn *c);
bool syncer_bulk_send(struct syncer *e, struct sconn *c, uint64_t now);
void syncer_bulk_on_msg(struct syncer *e, struct sconn *c, const uint8_t *msg, size_t len,
                        uint64_t now);
void syncer_bulk_on_have(struct syncer *e, struct sconn *c, const struct msg_have *h, uint64_t now);
void syncer_bulk_on_take(struct syncer *e, struct sconn *c, const struct msg_have *t, uint64_t now);

/* syncer_peers.c */
void syncer_known_feed(struct syncer *e, uint64_t now);
void syncer_peer_put(struct syncer *e, const uint8_t key[32], const char *addr);

/* syncer_mail.c */
int syncer_mail_init(struct syncer *e);
void syncer_mail_release(struct syncer *e);
int syncer_mail_on_msg(struct syncer *e, const uint8_t from[32], uint32_t type, const uint8_t *msg,
                       size_t len, uint64_t now_ms);
void syncer_mail_on_connected(struct syncer *e, const uint8_t key[32]);
void syncer_mail_sweep(struct syncer *e);
size_t syncer_mail_count(const struct syncer *e);

#endif
