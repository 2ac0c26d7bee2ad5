/*
 * node_mine: the latest version of each of the node's own records, kept past its expiry
 * (node.h, "my records"), so that a person can list the records of theirs that expired
 * and renew one: the expiry sweep removes them from the records, not from here.
 *
 * The table (STORE_MINE) is keyed by slot (16 bytes, then 16 zero bytes) and holds the
 * envelope of the slot's latest offer, need or tombstone. It follows the commits through an
 * observer (any origin: made here, imported, or my own records coming back from a peer after
 * the identity moved), and at start it is brought up to date with the records stored, for
 * stores from before it existed.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/node.h"
#include "lib/err.h"
#include "lib/log.h"

void
node_mine_key(const uint8_t slot[RECORD_SLOT_BYTES], uint8_t key[32])
{
    memset(key, 0, 32);
    memcpy(key, slot, RECORD_SLOT_BYTES);
}

/* keep queues env as the slot's latest version if it is an offer, need or tombstone. */
static void
keep(struct node *n, const struct record *rec, const uint8_t *env, size_t len)
{
    uint8_t key[32];

    if (memcmp(rec->author, n->self.pk, 32) != 0 ||
        (rec->kind != RECORD_OFFER && rec->kind != RECORD_NEED && rec->kind != RECORD_WITHDRAWN))
        return;
    node_mine_key(rec->slot, key);
    if (node_kv_put(n, STORE_MINE, key, env, len) != 0)
        log_warn("cannot keep a copy of my record (for renewing it once expired)");
}

static void
mine_stored(void *ctx, const struct node_stored *st)
{
    keep(ctx, st->rec, st->env->bytes, st->env->len);
}

struct scan {
    struct node *n;
    struct record rec;
};

static int
scan_one(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *p, size_t len)
{
    struct scan *s = ctx;
    struct envelope e;
    (void)id;

    if (envelope_parse(p, len, &e) == 0 && record_decode(e.rec, e.rec_len, &s->rec) == 0)
        keep(s->n, &s->rec, p, len);
    return 0;
}

int
node_mine_start(struct node *n)
{
    struct node_observer obs = {mine_stored, NULL, NULL, n};
    struct scan *s;
    int rc;

    if ((rc = node_observe(n, &obs)) != 0)
        return rc;
    if ((s = calloc(1, sizeof(*s))) == NULL)
        return PULL_ERR_NOMEM;
    s->n = n;
    /* oldest first: a slot's later version overwrites its earlier one */
    rc = store_iter_author(n->store, n->self.pk, scan_one, s);
    free(s);
    return rc < 0 ? rc : 0;
}
