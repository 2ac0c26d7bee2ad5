/*
 * node_int: what the node's rooms share (internal to daemon/node*.c; node.h is the
 * manual).
 *
 * The rooms.
 *   node.c         the loop's floor: the pending batch, records admitted by node_submit
 *                  or coming back verified, observers, expiry, trimming memory, start
 *                  and stop.
 *   node_commit.c  the commit: the pending batch moved into the flight, its transaction
 *                  on the writer thread, its end (acknowledgements, observers) on the loop.
 *   node_kv.c      key-value writes and after-commit callbacks, queued in the batch.
 *   node_kin.c     the authors the store budget keeps besides the node's own.
 *   node_verify.c  records in verification: node_submit_async's checks, the jobs, the
 *                  verifier threads (or libuv's threadpool), the table of ids being
 *                  verified, the order in which results come back to the batch.
 *   node_mine.c    my records kept past their expiry, node_net.c the network operations
 *                  (node_set_net): both need only node.h.
 *   node_index.c   the search index at start: the first records before serving, the
 *                  rest in slices while serving.
 */
#ifndef PULL_NODE_INT_H
#define PULL_NODE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sodium.h>

#include "daemon/node.h"

#define HASH_SLOTS (4 * NODE_BATCH_MAX) /* > 2 * NODE_BATCH_MAX, power of two */
#define NODE_SWEEP_MAX 1024             /* expired records deleted by one commit */

/* What the batch needs of a pending record until its commit ends: the fields of the
 * replacement rules and quotas. The decoded record (4.4 KB) is not kept: the store decodes
 * the envelope again when the commit begins, the observers when it ends. */
struct pkey {
    uint8_t kind;
    uint8_t author[32];
    uint8_t slot[RECORD_SLOT_BYTES];
    uint64_t seq;
};

/* node_pkey_from takes a pending record's key from its decoded record. */
static inline void
node_pkey_from(struct pkey *k, const struct record *r)
{
    k->kind = r->kind;
    memcpy(k->author, r->author, 32);
    memcpy(k->slot, r->slot, RECORD_SLOT_BYTES);
    k->seq = r->seq;
}

struct pend {
    int verified; /* a verifier's envelope_open result (node_submit_async) */
    enum node_origin origin;
    node_commit_fn cb;  /* node_submit's */
    node_record_fn rcb; /* node_submit_async's */
    void *arg;
    bool has_from;
    uint8_t from[32];
    struct envelope env;
    struct pkey key;
    size_t len;
    uint8_t bytes[]; /* the envelope, env points into it */
};

/* A queued key-value write. */
struct kvpend {
    struct kvpend *next;
    enum store_table table;
    uint8_t key[32];
    bool del;
    bool has_note; /* a node_peer_note */
    struct store_peer_stats note;
    size_t len;
    uint8_t val[];
};

/* A queued after-commit callback. */
struct after {
    struct after *next;
    node_done_fn fn;
    void *arg;
};

/* ---- verification (node_submit_async) ---- */

/* One record in verification: what the loop knows of it. */
struct vitem {
    uint8_t id[RECORD_ID_BYTES];
    uint32_t home;     /* its slot in the table of records in verification */
    uint32_t off, len; /* its bytes in the job's arena */
    enum node_origin origin;
    bool has_from;
    uint8_t from[32];
    node_record_fn cb;
    void *arg;
};

enum vjob_state {
    JOB_FILLING, /* the loop adds records to it */
    JOB_WAITING, /* full, waits for a verifier */
    JOB_RUNNING, /* handed to the verifiers (its records moved to pends) */
    JOB_DONE,    /* back on the loop, waits for the older jobs */
};

/* A job: up to NODE_JOB_MAX records verified by one thread in one go. Their bytes wait in
 * the arena; when the job is handed over, each is copied into the pend it will be in the
 * batch (and the arena freed), and the verifier opens the envelope right there (env, rec,
 * verified). While the job is RUNNING the loop touches only its items; the pool's mutex
 * hands it back. */
struct vjob {
    struct vjob *next;  /* the node's list of jobs, oldest first */
    struct vjob *qnext; /* the pool's queue, then its done list */
    enum vjob_state state;
    bool ran; /* the verifier ran it (else it was cancelled at stop) */
    uint64_t now_s;
    size_t n;
    uint8_t *arena; /* until handed over */
    size_t used, cap;
    struct pend **pends; /* from then on */
    struct node *node;
    uv_work_t work; /* libuv's threadpool (PULL_VERIFY_POOL=uv) */
    struct vitem items[NODE_JOB_MAX];
};

/* The verifier threads, or libuv's threadpool. */
struct vpool {
    unsigned nth;
    bool uv; /* uv_queue_work instead of threads of our own */
    pthread_t th[NODE_VERIFY_THREADS_MAX];
    unsigned started; /* threads running */
    bool sync_init;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct vjob *todo, **todo_tail; /* handed over, not started */
    struct vjob *done;              /* finished, not yet taken back by the loop */
    bool stop;
    uv_async_t async;
    bool async_init;
};

#define VTAB_SLOTS (4 * NODE_VERIFY_MAX) /* > 2 * the hard limit, power of two */

/* What the pending batch changes in one author's counts. */
struct acount {
    uint8_t author[32];
    int32_t live, tombs;
};

/* What one admitted record changes in its author's counts. */
struct admit {
    int32_t live, tombs;
};

/* The records of a batch, found by id and by (author, slot), and the change they make to
 * each author's counts. */
struct bset {
    struct pend *items[NODE_BATCH_MAX];
    size_t n;
    uint16_t by_id[HASH_SLOTS];            /* index + 1 into items, 0: empty */
    uint16_t by_slot[HASH_SLOTS];          /* idem, keyed by author || slot (the latest only) */
    struct acount authors[NODE_BATCH_MAX]; /* the change per author */
    size_t nauthors;
    uint16_t by_author[HASH_SLOTS]; /* index + 1 into authors */
};

/* The batch being committed (node_commit.c): what node_commit_start moved out of the pending
 * batch, and the store_commit that writes it. */
struct flight {
    bool on;          /* from node_commit_start to the end of flight_end */
    bool at_writer;   /* handed to the writer thread, not yet back */
    struct bset *set; /* its records (the one of the two sets not pending) */
    struct pend **work;
    size_t count;
    struct kvpend *kv;
    struct after *after;
    struct store_opened *op;
    struct store_kv_op *ops;
    bool sweep;
    unsigned runs;     /* store_commit_run calls (more than one: the map had to grow) */
    uint64_t begin_ms; /* when it began (the debug log of its end) */
    struct store_commit c;
};

/* The writer thread: runs store_commit_run for the flight, one at a time. */
struct writer {
    bool started;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* the writer waits for a job; node_flush for its end */
    bool job, done, stop; /* under mu */
    int rc;               /* the run's result, when done */
    struct node *node;
    uv_async_t async; /* wakes the loop when done */
    bool async_init;
};

struct node_batch {
    struct bset sets[2];
    struct bset *p; /* the pending batch's records (the other set flies) */
    struct flight fl;
    struct writer wr;
    int last_rc;                  /* the result of the last flight (node_flush) */
    struct kvpend *kv, **kv_tail; /* in order of queueing */
    size_t nkv, kv_bytes;
    struct after *after, **after_tail;
    bool sweep_due;
    bool urgent;       /* something besides verified records waits: commit this turn */
    uint64_t first_ms; /* when the oldest record of the batch joined it */
    struct node_observer obs[NODE_OBSERVERS_MAX];
    size_t nobs;
    uv_check_t check;
    uv_idle_t idle;
    uv_timer_t sweep;
    uv_timer_t trim;
    uint64_t commits_at_trim; /* n->counters.commits at the last store_trim */
    uint64_t trim_ms;         /* when the last store_trim ran */
    bool reads_since_trim;    /* node_trim_soon was called since the last store_trim */
    bool heap_since_trim;     /* ... and wants the heap trimmed too (not only the pages) */
    bool handles;
    bool closed; /* node_stop made its last commit: no more writes */
    bool idle_on;
    uint64_t full_logged_ms;
    struct pull_wb scratch;
    struct record dec; /* node_submit's decoded record, until its key is taken */
    size_t read_bytes; /* read from the store for peers since the last trim */

    /* the search index's build (node_index.c) */
    struct search_build ix;
    uv_idle_t ix_idle;
    uint64_t ix_t0;
    uint64_t ix_slices;
    size_t ix_slice; /* records per slice */

    /* verification */
    struct vpool pool;
    struct vjob *jobs, **jobs_tail; /* every job not applied yet, oldest first */
    struct vjob *fill;              /* the job being filled (the last one), or NULL */
    size_t v_records, v_bytes;      /* in verification (all jobs) */
    unsigned v_running;             /* jobs handed over and not back */
    struct vitem *vtab[VTAB_SLOTS]; /* records in verification by id (linear probing) */
    uint8_t vkey[crypto_shorthash_KEYBYTES];
};

static inline uint32_t
node_h32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- node.c ---- */

/* node_pend_find returns the pending record with this id, or NULL: pending or in flight. */
struct pend *node_pend_find(const struct node_batch *b, const uint8_t id[RECORD_ID_BYTES]);

/* node_batch_empty says whether nothing waits in the pending batch. */
bool node_batch_empty(const struct node_batch *b);

/* node_trim_after_commit schedules the trim that follows a commit (node.c);
 * node_sweep_next the next sweep after a commit that swept (ok: it committed, nswept
 * records). */
void node_trim_after_commit(struct node *n);
void node_sweep_next(struct node *n, bool ok, size_t nswept);

/* ---- node_commit.c ---- */

/* node_commit_start moves the pending batch into the flight and hands it to the writer
 * thread (or commits it here without one); its acknowledgements come when it is back
 * (flight_end). Does nothing while another batch flies: the pending one waits for it.
 * node_commit_full is the same when the pending batch is full: it first waits for the
 * batch in flight. node_flush (node.h) waits for both. */
void node_commit_start(struct node *n);
void node_commit_full(struct node *n);

/* node_writer_start starts the writer thread (PULL_COMMIT_THREAD=0: none, every commit
 * runs on the loop); node_writer_stop waits for the flight and joins it. */
int node_writer_start(struct node *n);
void node_writer_stop(struct node *n);

/* node_commit_idle says whether no batch flies. */
bool node_commit_idle(const struct node *n);

/* node_batch_wake makes sure the end of this loop turn commits what waits in the batch. */
void node_batch_wake(struct node_batch *b);

/* node_admit_verified takes a verified record (p, with env and rec set) into the batch as
 * node_submit does (record_admit against the store and the batch). Returns 0 once p is the
 * batch's (its callback comes after the commit), else the refusal (p stays the caller's). */
int node_admit_verified(struct node *n, struct pend *p);

/* ---- node_index.c ---- */

/* node_index_first indexes the first stored records (node_new, before the handles);
 * node_index_resume goes on with the rest one slice per loop turn (once the handles are
 * up). */
void node_index_first(struct node *n);
void node_index_resume(struct node *n);

/* ---- node_verify.c ---- */

/* node_verify_start starts the verifiers (before the node's handles). Returns 0 or a
 * PULL_ERR_* (nothing is left running). */
int node_verify_start(struct node *n);

/* node_verify_find returns the record being verified with this id, or NULL. */
struct vitem *node_verify_find(const struct node_batch *b, const uint8_t id[RECORD_ID_BYTES]);

/* node_verify_pump hands waiting jobs over while a verifier can take them soon; at the end
 * of a loop turn (turn_end) also the job being filled, if a verifier would idle otherwise. */
void node_verify_pump(struct node *n, bool turn_end);

/* node_verify_stop ends verification at node_stop: the threads finish the job they run and
 * stop, what was verified joins the last commit, the rest is refused with PULL_ERR_CLOSED. */
void node_verify_stop(struct node *n);

/* node_verify_release frees what verification still holds (node_free). */
void node_verify_release(struct node *n);

/* ---- node_kin.c ---- */

/* The authors the budget keeps besides the node's own (node_kin.c). */
struct node_kin {
    uint8_t (*keys)[32];
    size_t cap; /* 0 or a power of two */
    size_t n;
    /* the loop changes the set under mu; the writer thread reads it under mu (opts.keep
     * inside a commit), the loop without */
    pthread_mutex_t mu;
};

/* node_kin_new makes an empty set. Returns NULL without memory. */
struct node_kin *node_kin_new(void);

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
