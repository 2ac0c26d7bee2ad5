/*
 * syncer_mail: the engine's mail store-and-forward (syncer.h is the manual).
 *
 * In-memory indexes (proto/mail's struct mail_index, which applies the quotas):
 *   outbox     items this node sealed, offered to peers until they expire;
 *   relay      items between two other nodes, carried for them under the relay quotas;
 *   far        items for a recipient this node knows nothing of (no peer, no author of a
 *              record it holds): a few, kept for the recipient should it connect, never
 *              announced onward (one injection to a made-up key must not fill every node);
 *   inbox      items addressed to this node from senders it knows (peers, authors, people
 *              of its dyads: the host's known()), kept until they expire so that offers of
 *              the same id are answered "have" (one sender at most SYNCER_INBOX_PER_SENDER);
 *   strangers  items addressed to this node from senders it doesn't know: a small share
 *              each and a pool of their own where the newest item pushes out the oldest, so
 *              throwaway keys can't fill the inbox nor keep a new person's proposal out.
 * Every item kept is also written to the host's mail table (PUT) and deleted from it when
 * it is swept (DEL); syncer_mail_load brings them back at start.
 *
 * Delivery: an item is pushed (MSG_MAIL) straight to its recipient when it is connected,
 * otherwise announced (MSG_MAIL_IHAVE) to the connected peers, which ask for it, keep it
 * and announce it in turn. A peer that connects gets the ids of every held item, those
 * addressed to it first, and asks for what it lacks (items are kept until they expire:
 * pushing them whole at every connection would send them again long after delivery).
 * An item already held is not checked again when it comes back (its id hashes its bytes).
 */
#include "proto/syncer_int.h"

#include <stdio.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "proto/msg.h"

static bool
is_me(const struct syncer *e, const uint8_t key[32])
{
    return memcmp(key, e->self, 32) == 0;
}

int
syncer_mail_init(struct syncer *e)
{
    struct mail_quota own = e->cfg.relay, inbox = e->cfg.relay, few = e->cfg.relay;
    int rc;

    own.sender_items = own.total_items; /* my outbox: only my own items */
    own.sender_bytes = own.total_bytes;
    /* my inbox: anyone can address mail to me, so one sender gets a bounded share (a dyad
     * holds at most 4 messages of the other side) */
    inbox.sender_items = SYNCER_INBOX_PER_SENDER;
    inbox.sender_bytes = (uint64_t)SYNCER_INBOX_PER_SENDER * 8192u;
    few.sender_items = SYNCER_STRANGER_ITEMS;
    few.sender_bytes = (uint64_t)SYNCER_STRANGER_ITEMS * 8192u;
    few.total_items = SYNCER_STRANGERS_MAX;
    few.total_bytes = (uint64_t)SYNCER_STRANGERS_MAX * 8192u;
    if ((rc = mail_index_new(e->env, &e->cfg.relay, &e->relay)) != 0 ||
        (rc = mail_index_new(e->env, &own, &e->outbox)) != 0 ||
        (rc = mail_index_new(e->env, &inbox, &e->inbox)) != 0 ||
        (rc = mail_index_new(e->env, &few, &e->far)) != 0 ||
        (rc = mail_index_new(e->env, &few, &e->strangers)) != 0)
        return rc;
    return 0;
}

void
syncer_mail_release(struct syncer *e)
{
    mail_index_free(e->outbox);
    mail_index_free(e->relay);
    mail_index_free(e->inbox);
    mail_index_free(e->far);
    mail_index_free(e->strangers);
    e->outbox = e->relay = e->inbox = e->far = e->strangers = NULL;
}

size_t
syncer_mail_count(const struct syncer *e)
{
    return mail_index_count(e->outbox) + mail_index_count(e->relay) + mail_index_count(e->inbox) +
           mail_index_count(e->far) + mail_index_count(e->strangers);
}

bool
syncer_mail_has(const struct syncer *e, const uint8_t id[static MAIL_ID_BYTES])
{
    return e->outbox != NULL && (mail_index_has(e->outbox, id) || mail_index_has(e->relay, id) ||
                                 mail_index_has(e->inbox, id) || mail_index_has(e->far, id) ||
                                 mail_index_has(e->strangers, id));
}

/* known: a key this node has reasons to carry mail for and read mail from - a peer it
 * knows, or one its host knows (an author of stored records, a person of its dyads). */
static bool
known(const struct syncer *e, const uint8_t key[32])
{
    size_t count = gossip_peer_count(e->g);
    struct gossip_peer_info pi;

    if (e->host.known == NULL || e->host.known(e->host.ctx, key))
        return true;
    if (syncer_conn(e, key) != NULL)
        return true;
    for (size_t i = 0; i < e->nsaved; i++)
        if (memcmp(e->saved[i].key, key, 32) == 0)
            return true;
    for (size_t i = 0; i < count; i++)
        if (gossip_peer_at(e->g, i, &pi) == 0 && pi.state != GOSSIP_PEER_BANNED &&
            memcmp(pi.key, key, 32) == 0)
            return true;
    return false;
}

/* kv_put / kv_del: the host's mail table follows the indexes. */
static void
kv_put(struct syncer *e, const uint8_t id[MAIL_ID_BYTES], const uint8_t *p, size_t n)
{
    struct syncer_action *a;
    uint8_t *copy = env_alloc(e->env, n);

    if (copy == NULL || (a = syncer_act_push(e, SYNCER_ACT_PUT)) == NULL) {
        env_free(e->env, copy);
        return; /* kept in memory only: lost at a restart, sealed again if it is mine */
    }
    memcpy(copy, p, n);
    a->table = SYNCER_TABLE_MAIL;
    memcpy(a->key, id, MAIL_ID_BYTES);
    a->data = copy;
    a->len = n;
}

static void
kv_del(struct syncer *e, const uint8_t id[MAIL_ID_BYTES])
{
    struct syncer_action *a = syncer_act_push(e, SYNCER_ACT_DEL);

    if (a != NULL) {
        a->table = SYNCER_TABLE_MAIL;
        memcpy(a->key, id, MAIL_ID_BYTES);
    }
}

/* expiry_note: an item expiring at expires is held now (the sweep's lower bound). */
static void
expiry_note(struct syncer *e, const uint8_t *p, size_t n)
{
    struct mail_item m;

    if (e->mail_first_expiry_s != 0 && mail_parse(p, n, &m) == 0 &&
        m.expires < e->mail_first_expiry_s)
        e->mail_first_expiry_s = m.expires;
}

/* keep adds an item to an index and queues its write. Returns 0 or the index's refusal
 * (PULL_ERR_DUPLICATE, PULL_ERR_QUOTA, PULL_ERR_EXPIRED, PULL_ERR_BAD_SIG, ...). */
static int
keep(struct syncer *e, struct mail_index *ix, const uint8_t *p, size_t n, uint8_t id[MAIL_ID_BYTES])
{
    int rc;

    if ((rc = mail_index_add(ix, p, n, env_wall_s(e->env), id)) != 0)
        return rc;
    expiry_note(e, p, n);
    kv_put(e, id, p, n);
    return 0;
}

/* keep_newest keeps an item in one of the small pools (far, strangers): when the pool is
 * full, its oldest item goes (not the sender's share: that one refuses). */
static int
keep_newest(struct syncer *e, struct mail_index *ix, const uint8_t *p, size_t n,
            uint8_t id[MAIL_ID_BYTES])
{
    int rc = keep(e, ix, p, n, id);

    while (rc == PULL_ERR_QUOTA && mail_index_count(ix) > 0) {
        struct mail_item m;
        struct mail_usage u;
        const uint8_t *oid;
        uint8_t old[MAIL_ID_BYTES];
        if (mail_parse(p, n, &m) != 0)
            break;
        mail_index_usage(ix, m.sender, &u);
        if (u.items >= SYNCER_STRANGER_ITEMS)
            break; /* this sender's own share is full: refuse */
        if (mail_index_at(ix, 0, NULL, NULL, &oid, NULL) != 0)
            break;
        memcpy(old, oid, MAIL_ID_BYTES);
        kv_del(e, old);
        mail_index_remove(ix, old);
        rc = keep(e, ix, p, n, id);
    }
    return rc;
}

/* held finds an item I carry (not the inbox: those are mine to read). */
static int
held(const struct syncer *e, const uint8_t id[MAIL_ID_BYTES], const uint8_t **p, size_t *n)
{
    if (mail_index_get(e->outbox, id, p, n) == 0 || mail_index_get(e->relay, id, p, n) == 0)
        return 0;
    return mail_index_get(e->far, id, p, n);
}

/* push sends items to a peer as MSG_MAIL, in batches under MSG_MAX. */
static int
push(struct syncer *e, const uint8_t peer[32], const struct mail_ref *items, size_t count)
{
    struct pull_wb msg;
    int rc = 0;

    wb_init_env(&msg, e->env, MSG_MAX);
    for (size_t i = 0; i < count && rc == 0;) {
        size_t k = 0, size = 8; /* type and array headers */
        while (i + k < count && size + 5 + items[i + k].len <= MSG_MAX)
            size += 5 + items[i + k++].len;
        if (k == 0) { /* cannot happen: an item is far below MSG_MAX */
            i++;
            continue;
        }
        wb_reset(&msg);
        if ((rc = mail_msg_encode(items + i, k, &msg)) == 0)
            rc = syncer_send(e, peer, msg.p, msg.len, false);
        i += k;
    }
    wb_release(&msg);
    return rc;
}

static int
send_ihave(struct syncer *e, const uint8_t peer[32], const uint8_t (*have)[MAIL_ID_BYTES],
           size_t nhave, const uint8_t (*want)[MAIL_ID_BYTES], size_t nwant)
{
    struct pull_wb msg;
    int rc;

    wb_init_env(&msg, e->env, MSG_MAX);
    if ((rc = mail_ihave_encode(have, nhave, want, nwant, &msg)) == 0)
        rc = syncer_send(e, peer, msg.p, msg.len, false);
    wb_release(&msg);
    return rc;
}

/* announce offers one item id to every connected peer but `except` (may be NULL). */
static void
announce(struct syncer *e, const uint8_t id[MAIL_ID_BYTES], const uint8_t *except)
{
    for (size_t i = 0; i < e->nconns; i++) {
        const uint8_t *k = e->conns[i]->key;
        if (except != NULL && memcmp(k, except, 32) == 0)
            continue;
        (void)send_ihave(e, k, (const uint8_t(*)[MAIL_ID_BYTES])id, 1, NULL, 0);
    }
}

/* forward delivers one held item toward its recipient: straight to it when connected,
 * else announced to the connected peers (and the recipient dialed if dial is set and its
 * address is known). */
static void
forward(struct syncer *e, const uint8_t *p, size_t n, const uint8_t id[MAIL_ID_BYTES],
        const uint8_t rcpt[32], const uint8_t *from, bool dial)
{
    struct mail_ref ref = {p, n};

    if (syncer_conn(e, rcpt) != NULL) {
        if (push(e, rcpt, &ref, 1) == 0)
            return;
    } else if (dial) {
        size_t count = gossip_peer_count(e->g);
        struct gossip_peer_info pi;
        for (size_t i = 0; i < count; i++) {
            struct syncer_action *a;
            if (gossip_peer_at(e->g, i, &pi) != 0 || memcmp(pi.key, rcpt, 32) != 0 ||
                pi.addr[0] == '\0' || pi.state == GOSSIP_PEER_BANNED)
                continue;
            if ((a = syncer_act_push(e, SYNCER_ACT_CONNECT)) != NULL) {
                memcpy(a->peer, rcpt, 32);
                snprintf(a->addr, sizeof(a->addr), "%s", pi.addr);
            }
            break;
        }
    }
    announce(e, id, from);
}

int
syncer_mail_post(struct syncer *e, const uint8_t *item, size_t len, uint64_t now_ms)
{
    struct mail_item m;
    uint8_t id[MAIL_ID_BYTES];
    int rc;

    if (!e->cfg.mail)
        return PULL_ERR_UNSUPPORTED;
    if ((rc = mail_parse(item, len, &m)) != 0)
        return rc;
    if (!is_me(e, m.sender))
        return PULL_ERR_PERM;
    if (syncer_mail_has(e, m.id))
        return PULL_ERR_DUPLICATE;
    if ((rc = keep(e, e->outbox, item, len, id)) != 0)
        return rc;
    (void)now_ms;
    forward(e, item, len, id, m.recipient, NULL, true);
    return 0;
}

void
syncer_mail_load(struct syncer *e, const uint8_t key[static 32], const uint8_t *item, size_t len)
{
    struct mail_item m;
    struct mail_index *ix;
    uint8_t id[MAIL_ID_BYTES];
    int rc;

    if (!e->cfg.mail)
        return;
    if (mail_parse(item, len, &m) != 0 || memcmp(m.id, key, MAIL_ID_BYTES) != 0) {
        kv_del(e, key);
        return;
    }
    if (is_me(e, m.recipient))
        ix = known(e, m.sender) ? e->inbox : e->strangers;
    else if (is_me(e, m.sender))
        ix = e->outbox;
    else
        ix = known(e, m.recipient) ? e->relay : e->far;
    rc = mail_index_add(ix, item, len, env_wall_s(e->env), id);
    if (rc == 0)
        expiry_note(e, item, len);
    else if (rc != PULL_ERR_DUPLICATE)
        kv_del(e, key); /* expired, over the (maybe smaller) quota, bad */
}

void
syncer_mail_each_inbox(const struct syncer *e,
                       void (*fn)(void *ctx, const uint8_t *item, size_t len), void *ctx)
{
    size_t count;

    if (e->inbox == NULL)
        return;
    for (int x = 0; x < 2; x++) {
        const struct mail_index *ix = x == 0 ? e->inbox : e->strangers;
        count = mail_index_count(ix);
        for (size_t i = 0; i < count; i++) {
            const uint8_t *p;
            size_t n;
            if (mail_index_at(ix, i, &p, &n, NULL, NULL) == 0)
                fn(ctx, p, n);
        }
    }
}

/* receive_mine keeps an item addressed to me (which also dedupes) and hands it over. */
static void
receive_mine(struct syncer *e, const struct mail_item *m, const uint8_t from[32])
{
    struct syncer_action *a;
    uint8_t id[MAIL_ID_BYTES], *copy;
    int rc;

    if (mail_index_has(e->inbox, m->id) || mail_index_has(e->strangers, m->id))
        return;
    if (known(e, m->sender))
        rc = keep(e, e->inbox, m->bytes, m->len, id);
    else
        rc = keep_newest(e, e->strangers, m->bytes, m->len, id);
    if (rc == PULL_ERR_QUOTA) {
        e->st.mail_refused++;
        syncer_logf(e, 3, "mail: inbox full for this sender: item dropped");
        return;
    }
    if (rc != 0)
        return;
    if ((copy = env_alloc(e->env, m->len)) == NULL ||
        (a = syncer_act_push(e, SYNCER_ACT_MAIL)) == NULL) {
        env_free(e->env, copy);
        return; /* kept: opened at the next start */
    }
    memcpy(copy, m->bytes, m->len);
    memcpy(a->peer, from, 32);
    a->data = copy;
    a->len = m->len;
}

static int
on_mail(struct syncer *e, const uint8_t from[32], const uint8_t *msg, size_t len)
{
    uint64_t now_s = env_wall_s(e->env);
    size_t count;
    int rc, bad = 0;

    if ((rc = mail_msg_decode(msg, len, e->refs, SYNCER_MAIL_REFS_MAX, &count)) != 0) {
        e->st.mail_bad++;
        return rc;
    }
    for (size_t i = 0; i < count; i++) {
        struct mail_item m;
        uint8_t id[MAIL_ID_BYTES];
        char sm[9], sr[9], sf[9];
        e->st.mail_in++;
        if ((rc = mail_parse(e->refs[i].p, e->refs[i].len, &m)) == 0 && syncer_mail_has(e, m.id))
            continue; /* held: the same bytes (the id hashes them all), checked when kept */
        if (rc != 0 || ((rc = mail_verify(&m, now_s)) != 0 && rc != PULL_ERR_EXPIRED)) {
            e->st.mail_bad++;
            bad = bad ? bad : rc;
            continue;
        }
        if (rc == PULL_ERR_EXPIRED) {
            e->st.mail_refused++;
            continue;
        }
        if (is_me(e, m.recipient)) {
            receive_mine(e, &m, from);
            continue;
        }
        if (is_me(e, m.sender))
            continue; /* my own item coming back */
        if (!known(e, m.recipient)) {
            /* kept for the recipient should it connect here, never announced onward */
            if (keep_newest(e, e->far, m.bytes, m.len, id) != 0)
                e->st.mail_refused++;
            continue;
        }
        rc = keep(e, e->relay, m.bytes, m.len, id);
        if (rc == PULL_ERR_QUOTA) {
            e->st.mail_refused++;
            continue;
        }
        if (rc != 0)
            continue;
        e->st.mail_relayed++;
        syncer_logf(e, 3, "mail: carrying %s for %s from %s", syncer_short(id, sm),
                    syncer_short(m.recipient, sr), syncer_short(m.sender, sf));
        /* m points into msg, which stays valid during this call */
        forward(e, m.bytes, m.len, id, m.recipient, from, false);
    }
    return bad;
}

static int
on_ihave(struct syncer *e, const uint8_t from[32], const uint8_t *msg, size_t len)
{
    size_t nhave, nwant, nw = 0, k = 0;
    int rc;

    if ((rc = mail_ihave_decode(msg, len, e->have, MAIL_IHAVE_MAX, &nhave, e->want, MAIL_IHAVE_MAX,
                                &nwant)) != 0) {
        e->st.mail_bad++;
        return rc;
    }
    /* their wants first: answer with the items (e->want is reused below) */
    for (size_t i = 0; i < nwant; i++) {
        const uint8_t *p;
        size_t n;
        if (k < SYNCER_MAIL_REFS_MAX && held(e, e->want[i], &p, &n) == 0)
            e->refs[k++] = (struct mail_ref){p, n};
    }
    if (k > 0 && push(e, from, e->refs, k) != 0)
        return 0; /* out of memory: not their fault */
    /* their haves: ask for what I lack */
    for (size_t i = 0; i < nhave; i++) {
        if (!syncer_mail_has(e, e->have[i]))
            memcpy(e->want[nw++], e->have[i], MAIL_ID_BYTES);
    }
    if (nw > 0)
        (void)send_ihave(e, from, NULL, 0, (const uint8_t(*)[MAIL_ID_BYTES])e->want, nw);
    return 0;
}

int
syncer_mail_on_msg(struct syncer *e, const uint8_t from[32], uint32_t type, const uint8_t *msg,
                   size_t len, uint64_t now_ms)
{
    (void)now_ms;
    if (type == MSG_MAIL)
        return on_mail(e, from, msg, len);
    if (type == MSG_MAIL_IHAVE)
        return on_ihave(e, from, msg, len);
    return PULL_ERR_PROTOCOL;
}

void
syncer_mail_on_connected(struct syncer *e, const uint8_t key[32])
{
    struct mail_index *ixs[3] = {e->outbox, e->relay, e->far};
    size_t nh = 0;

    /* Ids only, those of the items addressed to the peer first: it wants what it lacks.
     * Pushing its items whole would send them again at every connection long after they
     * were delivered (they are kept until they expire). */
    for (int pass = 0; pass < 2; pass++) {
        for (int x = 0; x < 3; x++) {
            size_t count = mail_index_count(ixs[x]);
            for (size_t i = 0; i < count; i++) {
                const uint8_t *id, *rcpt;
                bool theirs;
                if (mail_index_at(ixs[x], i, NULL, NULL, &id, &rcpt) != 0)
                    continue;
                theirs = memcmp(rcpt, key, 32) == 0;
                if (theirs != (pass == 0) || (!theirs && ixs[x] == e->far))
                    continue; /* the far ones are not announced onward */
                memcpy(e->have[nh++], id, MAIL_ID_BYTES);
                if (nh == MAIL_IHAVE_MAX) {
                    (void)send_ihave(e, key, (const uint8_t(*)[MAIL_ID_BYTES])e->have, nh, NULL, 0);
                    nh = 0;
                }
            }
        }
    }
    if (nh > 0)
        (void)send_ihave(e, key, (const uint8_t(*)[MAIL_ID_BYTES])e->have, nh, NULL, 0);
}

/* syncer_mail_sweep removes the expired items. A pass parses (hashes) every held item,
 * so it runs only once the first of them has expired (mail_first_expiry_s, 0: unknown). */
void
syncer_mail_sweep(struct syncer *e)
{
    struct mail_index *ixs[5] = {e->outbox, e->relay, e->inbox, e->far, e->strangers};
    uint64_t now_s = env_wall_s(e->env), first = UINT64_MAX;

    if (e->mail_first_expiry_s != 0 && now_s < e->mail_first_expiry_s)
        return;
    for (int x = 0; x < 5; x++) {
        for (size_t i = 0; i < mail_index_count(ixs[x]);) {
            const uint8_t *p, *idp;
            uint8_t id[MAIL_ID_BYTES];
            size_t n;
            struct mail_item m;
            bool bad = mail_index_at(ixs[x], i, &p, &n, &idp, NULL) != 0 ||
                       mail_parse(p, n, &m) != 0; /* cannot happen: parsed when kept */
            if (bad || m.expires > now_s) {
                if (!bad && m.expires < first)
                    first = m.expires;
                i++;
                continue;
            }
            memcpy(id, idp, sizeof(id));
            kv_del(e, id);
            mail_index_remove(ixs[x], id);
            e->st.mail_swept++;
        }
    }
    e->mail_first_expiry_s = first;
}
