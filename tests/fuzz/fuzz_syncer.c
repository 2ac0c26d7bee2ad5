/*
 * Fuzz the protocol engine (proto/syncer.h) through its entry points, with a fake host.
 *
 * The input is a script of operations on one engine whose host holds up to 8 records and
 * knows 4 peers (real identities, so that sealed mail verifies). Each operation is an
 * opcode byte, then its arguments (missing bytes end the script):
 *   op & 7 = 0 CONNECT  k        peer k & 3 connects (inbound if op & 0x10; no feature bits
 *                                if op & 0x20, else RECON | MAIL)
 *            1 LOST     k        the host lost the connection with k (or a dial failed)
 *            2 MSG      k n:u16  n bytes follow, a message from k; with op & 0x80 they are
 *                                wrapped: byte 0 picks a message type, byte 1 an array
 *                                length, and the rest follows an array header and the type
 *                                (valid type prefixes reach the decoders behind them)
 *            3 TIME     t:u16    t * 10 ms pass (the wall clock follows) and timers run
 *            4 FLUSH    k n      the host writes the n oldest SENDs queued for k
 *            5 STORE    r        record r & 7 stored (local if op & 0x10; replacing r ^ 1 if
 *                                op & 0x20)
 *            6 REMOVE   r        record r & 7 removed
 *            7 MAIL     s        s & 7: post my item, receive an item from peer k in MSG_MAIL,
 *                                load a mail row, load a peer row, add a known peer, add a
 *                                bootstrap peer, leave, start (item and peer chosen by s >> 3)
 * After every operation the host drains the actions as pulld's executor does and checks:
 * a SEND goes only to a peer the host holds a connection with (never after a DISCONNECT or
 * a loss) and is a whole message (1..MSG_MAX bytes, a type), a MAIL action carries an item
 * addressed to this node, the bytes waiting on one connection stay bounded, the actions
 * of one call are bounded; and the sanitizers check memory (no leak once freed).
 */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "proto/mail.h"
#include "proto/msg.h"
#include "proto/syncer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define F_PEERS 4
#define F_RECS 8
#define F_ITEMS 5
#define F_WALL0 1800000000ull
#define F_QUEUE_MAX 16384              /* SENDs waiting on one connection */
#define F_BYTES_MAX (6u * 1024 * 1024) /* bytes waiting on one connection */

static struct ident f_self, f_peer[F_PEERS];
static char f_addr[F_PEERS][32];
static uint8_t f_env[F_RECS][120];
static uint8_t f_id[F_RECS][32];
static uint8_t f_item[F_ITEMS][MAIL_ITEM_MAX];
static size_t f_item_len[F_ITEMS];
static uint8_t f_item_id[F_ITEMS][32];

/* message types the wrapped MSG operation picks from */
static const uint8_t f_types[] = {
    MSG_JOIN,       MSG_FORWARD_JOIN,  MSG_NEIGHBOR,   MSG_NEIGHBOR_REPLY, MSG_DISCONNECT,
    MSG_SHUFFLE,    MSG_SHUFFLE_REPLY, MSG_RECORDS,    MSG_IHAVE,          MSG_GRAFT,
    MSG_PRUNE,      MSG_WANT,          MSG_RECON_REQ,  MSG_RECON_SYMBOLS,  MSG_RECON_MORE,
    MSG_RECON_DONE, MSG_RECON_ERR,     MSG_RECON_BULK, MSG_MAIL,           MSG_MAIL_IHAVE,
};

struct f_sent {
    size_t len;
    bool counted;
};

struct f_host {
    bool stored[F_RECS];
    uint32_t order[F_RECS]; /* time order of the stored ones */
    size_t norder;
    bool up[F_PEERS];
    struct f_sent q[F_PEERS][F_QUEUE_MAX];
    size_t nq[F_PEERS];
    uint64_t bytes[F_PEERS];
    struct syncer *e;
    struct env_seeded env;
    uint64_t now;
};

static int
f_rec(const uint8_t id[32])
{
    for (int r = 0; r < F_RECS; r++)
        if (memcmp(id, f_id[r], 32) == 0)
            return r;
    return -1;
}

static void
f_order_add(struct f_host *h, int r)
{
    h->order[h->norder++] = (uint32_t)r;
}

static void
f_order_del(struct f_host *h, int r)
{
    for (size_t i = 0; i < h->norder; i++) {
        if (h->order[i] == (uint32_t)r) {
            memmove(&h->order[i], &h->order[i + 1], (h->norder - i - 1) * sizeof(h->order[0]));
            h->norder--;
            return;
        }
    }
}

static enum gossip_verdict
f_offer(void *ctx, const uint8_t *env, size_t len, const uint8_t id[32], const uint8_t from[32])
{
    struct f_host *h = ctx;
    int r = f_rec(id);

    (void)from;
    if (r < 0 || len != sizeof(f_env[r]) || memcmp(env, f_env[r], len) != 0)
        return (id[0] & 1) ? GOSSIP_INVALID : GOSSIP_DUPLICATE;
    if (h->stored[r])
        return GOSSIP_DUPLICATE;
    h->stored[r] = true;
    f_order_add(h, r);
    /* the store reports it, as a commit from inside offer() would */
    syncer_on_stored(h->e, id, NULL, env, len, false);
    return GOSSIP_NEW;
}

static bool
f_has(void *ctx, const uint8_t id[32])
{
    struct f_host *h = ctx;
    int r = f_rec(id);

    return r >= 0 && h->stored[r];
}

static int
f_fetch(void *ctx, const uint8_t id[32], uint8_t *buf, size_t cap, size_t *len)
{
    struct f_host *h = ctx;
    int r = f_rec(id);

    *len = 0;
    if (r < 0 || !h->stored[r] || cap < sizeof(f_env[r]))
        return PULL_ERR_NOT_FOUND;
    memcpy(buf, f_env[r], sizeof(f_env[r]));
    *len = sizeof(f_env[r]);
    return 0;
}

static int
f_each_id(void *ctx, recon_visit_fn visit, void *vctx)
{
    struct f_host *h = ctx;
    int rc;

    for (size_t i = 0; i < h->norder; i++)
        if ((rc = visit(vctx, f_id[h->order[i]])) != 0)
            return rc;
    return 0;
}

static int
f_each_key(void *ctx, uint64_t since,
           int (*visit)(void *vctx, uint64_t created, const uint8_t id[32]), void *vctx)
{
    struct f_host *h = ctx;
    int rc;

    for (size_t i = (size_t)since; i < h->norder; i++)
        if ((rc = visit(vctx, i, f_id[h->order[i]])) != 0)
            return rc;
    return 0;
}

/* known: peers 0 and 1 (an author, a person of a dyad), not 2 and 3: mail from and for
 * them goes to the strangers' pools */
static bool
f_known(void *ctx, const uint8_t key[32])
{
    (void)ctx;
    return memcmp(key, f_peer[0].pk, 32) == 0 || memcmp(key, f_peer[1].pk, 32) == 0;
}

static int
f_peer_of(const uint8_t key[32])
{
    for (int k = 0; k < F_PEERS; k++)
        if (memcmp(key, f_peer[k].pk, 32) == 0)
            return k;
    return -1;
}

static void
f_lost(struct f_host *h, int k)
{
    h->up[k] = false;
    h->nq[k] = 0; /* dropped with the connection */
    h->bytes[k] = 0;
}

/* f_drain executes the engine's actions after a call and checks them. */
static void
f_drain(struct f_host *h)
{
    struct syncer_action a;
    size_t count = 0;

    while (syncer_poll_action(h->e, &a)) {
        int k = f_peer_of(a.peer);
        uint32_t type;
        if (++count > 100000)
            abort(); /* one call, unbounded output */
        switch (a.type) {
        case SYNCER_ACT_SEND:
            if (k < 0 || !h->up[k])
                abort(); /* to a peer without a connection */
            if (a.len == 0 || a.len > MSG_MAX || msg_peek_type(a.data, a.len, &type) != 0)
                abort();
            if (h->nq[k] == F_QUEUE_MAX)
                abort(); /* unbounded queue toward one peer */
            h->q[k][h->nq[k]++] = (struct f_sent){a.len, a.counted};
            h->bytes[k] += a.len;
            if (h->bytes[k] > F_BYTES_MAX)
                abort(); /* unbounded queue toward one peer */
            break;
        case SYNCER_ACT_CONNECT:
            if (a.addr[0] == '\0' || memchr(a.addr, '\0', sizeof(a.addr)) == NULL)
                abort();
            break;
        case SYNCER_ACT_DISCONNECT:
            if (k >= 0)
                f_lost(h, k);
            break;
        case SYNCER_ACT_PUT:
            if (a.table != SYNCER_TABLE_PEERS && a.table != SYNCER_TABLE_MAIL)
                abort();
            if (a.data == NULL || a.len == 0)
                abort();
            break;
        case SYNCER_ACT_DEL:
            break;
        case SYNCER_ACT_MAIL: {
            struct mail_item m;
            if (mail_parse(a.data, a.len, &m) != 0 || memcmp(m.recipient, f_self.pk, 32) != 0)
                abort();
            break;
        }
        default:
            abort();
        }
        syncer_action_release(&a);
    }
}

static void
f_clock(struct f_host *h)
{
    h->env.now_ms = h->now;
    h->env.wall_s = F_WALL0 + h->now / 1000;
}

static void
f_init(void)
{
    struct env_seeded env;
    uint8_t seed[32];
    struct pull_wb w;
    static const struct {
        int from, to; /* -1: this node */
    } items[F_ITEMS] = {{-1, 0}, {-1, 1}, {0, -1}, {1, 2}, {3, -1}};

    if (sodium_init() < 0)
        abort();
    memset(seed, 0x10, sizeof(seed));
    if (ident_from_seed(&f_self, seed) != 0)
        abort();
    for (int k = 0; k < F_PEERS; k++) {
        memset(seed, 0x20 + k, sizeof(seed));
        if (ident_from_seed(&f_peer[k], seed) != 0)
            abort();
        snprintf(f_addr[k], sizeof(f_addr[k]), "192.0.2.%d:7450", k + 1);
    }
    for (int r = 0; r < F_RECS; r++) {
        memset(f_env[r], 0x60 + r, sizeof(f_env[r]));
        f_env[r][0] = 0x92;
        crypto_generichash(f_id[r], 32, f_env[r], sizeof(f_env[r]), NULL, 0);
    }
    env_seeded_init(&env, 7, 0, F_WALL0);
    for (int i = 0; i < F_ITEMS; i++) {
        const struct ident *from = items[i].from < 0 ? &f_self : &f_peer[items[i].from];
        const uint8_t *to = items[i].to < 0 ? f_self.pk : f_peer[items[i].to].pk;
        uint8_t plain[40];
        memset(plain, 0x70 + i, sizeof(plain));
        wb_init(&w, MAIL_ITEM_MAX);
        /* expiring after a day: TIME operations can reach it */
        if (mail_seal(&env.env, from, to, plain, sizeof(plain), F_WALL0 + 86400, &w,
                      f_item_id[i]) != 0 ||
            w.len > sizeof(f_item[i]))
            abort();
        memcpy(f_item[i], w.p, w.len);
        f_item_len[i] = w.len;
        wb_release(&w);
    }
}

static void
f_mail_op(struct f_host *h, uint8_t s)
{
    int i = (s >> 3) % F_ITEMS, k = (s >> 3) & 3;
    uint8_t row[8 + 32];
    size_t n;

    switch (s & 7) {
    case 0:
        (void)syncer_mail_post(h->e, f_item[i], f_item_len[i], h->now);
        break;
    case 1: {
        struct mail_ref ref = {f_item[i], f_item_len[i]};
        struct pull_wb w;
        wb_init(&w, MSG_MAX);
        if (mail_msg_encode(&ref, 1, &w) == 0)
            (void)syncer_on_message(h->e, f_peer[k].pk, w.p, w.len, h->now);
        wb_release(&w);
        break;
    }
    case 2:
        syncer_mail_load(h->e, f_item_id[i], f_item[i], f_item_len[i]);
        break;
    case 3:
        be64enc(row, F_WALL0 - (uint64_t)s * 1000);
        n = strlen(f_addr[k]);
        memcpy(row + 8, f_addr[k], n);
        syncer_load_peer(h->e, f_peer[k].pk, row, 8 + n, (uint32_t)(s % 4));
        break;
    case 4:
        (void)syncer_add_known(h->e, f_peer[k].pk, f_addr[k], h->now);
        break;
    case 5:
        (void)syncer_add_bootstrap(h->e, f_peer[k].pk, f_addr[k], h->now);
        break;
    case 6:
        syncer_leave(h->e, h->now);
        break;
    case 7:
        syncer_start(h->e, h->now);
        break;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    static struct f_host h;
    struct syncer_config cfg;
    struct syncer_host host = {.offer = f_offer,
                               .has = f_has,
                               .fetch = f_fetch,
                               .each_id = f_each_id,
                               .each_key = f_each_key,
                               .known = f_known,
                               .ctx = &h};
    uint8_t *msg = NULL;
    size_t off = 0;

    if (!init) {
        f_init();
        init = true;
    }
    memset(&h, 0, sizeof(h));
    h.now = 1000;
    env_seeded_init(&h.env, 42, h.now, F_WALL0 + 1);
    syncer_config_default(&cfg);
    cfg.sync_interval_ms = 5000;
    cfg.gossip.peer_backlog_max = 256 * 1024;
    cfg.recon_cache_symbols = 64; /* small: a fresh engine per input */
    /* two records stored before the start */
    h.stored[0] = h.stored[1] = true;
    f_order_add(&h, 0);
    f_order_add(&h, 1);
    if (syncer_new(&h.env.env, f_self.pk, "fuzz.test:7450", &cfg, &host, &h.e) != 0)
        abort();
    f_drain(&h);
    if ((msg = malloc(MSG_MAX + 8)) == NULL)
        abort();
    while (off < size) {
        uint8_t op = data[off++];
        int k = off < size ? data[off] & 3 : 0;
        f_clock(&h);
        switch (op & 7) {
        case 0:
            if (off >= size)
                goto out;
            off++;
            if (!h.up[k]) {
                h.up[k] = true;
                syncer_on_connected(h.e, f_peer[k].pk, (op & 0x10) != 0, f_addr[k],
                                    (op & 0x20) ? 0 : (MSG_FEAT_RECON | MSG_FEAT_MAIL), h.now);
            }
            break;
        case 1:
            if (off >= size)
                goto out;
            off++;
            f_lost(&h, k);
            syncer_on_disconnected(h.e, f_peer[k].pk, h.now);
            break;
        case 2: {
            size_t n, m = 0;
            if (size - off < 3)
                goto out;
            n = (size_t)data[off + 1] << 8 | data[off + 2];
            off += 3;
            if (n > size - off)
                n = size - off;
            if ((op & 0x80) && n >= 2) {
                msg[m++] = (uint8_t)(0x91 + (data[off + 1] & 7)); /* fixarray 1..8 */
                msg[m++] = f_types[data[off] % sizeof(f_types)];
                memcpy(msg + m, data + off + 2, n - 2 > MSG_MAX ? MSG_MAX : n - 2);
                m += n - 2 > MSG_MAX ? MSG_MAX : n - 2;
            } else {
                memcpy(msg, data + off, n > MSG_MAX ? MSG_MAX : n);
                m = n > MSG_MAX ? MSG_MAX : n;
            }
            off += n;
            if (m > 0)
                (void)syncer_on_message(h.e, f_peer[k].pk, msg, m, h.now);
            break;
        }
        case 3:
            if (size - off < 2)
                goto out;
            h.now += ((uint64_t)data[off] << 8 | data[off + 1]) * 10;
            off += 2;
            f_clock(&h);
            syncer_on_timeout(h.e, h.now);
            break;
        case 4: {
            size_t n;
            if (size - off < 2)
                goto out;
            n = data[off + 1];
            off += 2;
            for (size_t i = 0; i < n && h.nq[k] > 0; i++) {
                struct f_sent s = h.q[k][0];
                memmove(&h.q[k][0], &h.q[k][1], (h.nq[k] - 1) * sizeof(h.q[k][0]));
                h.nq[k]--;
                h.bytes[k] -= s.len;
                syncer_on_flushed(h.e, f_peer[k].pk, s.len, s.counted, h.now);
                f_drain(&h);
            }
            break;
        }
        case 5: {
            int r, old;
            if (off >= size)
                goto out;
            r = data[off++] & 7;
            old = r ^ 1;
            if (h.stored[r])
                break;
            h.stored[r] = true;
            f_order_add(&h, r);
            if ((op & 0x20) && h.stored[old]) {
                h.stored[old] = false;
                f_order_del(&h, old);
                syncer_on_stored(h.e, f_id[r], f_id[old], f_env[r], sizeof(f_env[r]),
                                 (op & 0x10) != 0);
            } else {
                syncer_on_stored(h.e, f_id[r], NULL, f_env[r], sizeof(f_env[r]), (op & 0x10) != 0);
            }
            break;
        }
        case 6: {
            int r;
            if (off >= size)
                goto out;
            r = data[off++] & 7;
            if (!h.stored[r])
                break;
            h.stored[r] = false;
            f_order_del(&h, r);
            syncer_on_removed(h.e, f_id[r]);
            break;
        }
        case 7:
            if (off >= size)
                goto out;
            f_mail_op(&h, data[off++]);
            break;
        }
        f_drain(&h);
        if (syncer_active_count(h.e) > GOSSIP_ACTIVE_MAX)
            abort();
    }
    /* the end: timers once more, then everything written */
    h.now += 60000;
    f_clock(&h);
    syncer_on_timeout(h.e, h.now);
    f_drain(&h);
out:
    free(msg);
    syncer_free(h.e);
    h.e = NULL;
    return 0;
}
