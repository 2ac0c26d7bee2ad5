/*
 * gossip_codec: the decoder of the gossip engine's messages (HyParView and Plumtree, types
 * and fields in proto/msg.h and PROTOCOL.md): gs_decode checks a whole message against the
 * bounds of struct gmsg and rejects trailing bytes. The encoders are where each message is
 * sent (membership.c, plumtree.c, with gs_msg_begin). gossip_int.h is the manual.
 */
#include <string.h>

#include "lib/err.h"
#include "lib/mp.h"
#include "proto/gossip_int.h"
#include "proto/msg.h"

static int
dec_addr(struct pull_rd *r, const char **a, uint32_t *n)
{
    int rc;

    if ((rc = mp_read_str(r, GOSSIP_ADDR_MAX, a, n)) != 0)
        return rc;
    return gs_addr_ok(*a, *n) ? 0 : PULL_ERR_FIELD;
}

static int
dec_ids(struct pull_rd *r, struct gmsg *m)
{
    uint32_t n;
    int rc;

    if ((rc = mp_read_array(r, &n)) != 0)
        return rc;
    if (n > GOSSIP_IDS_MAX)
        return PULL_ERR_TOO_BIG;
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = mp_read_bin_exact(r, m->ids[i], GOSSIP_ID_BYTES)) != 0)
            return rc;
    }
    m->nids = n;
    return 0;
}

static int
dec_peers(struct pull_rd *r, struct gmsg *m)
{
    uint32_t n, fields;
    int rc;

    if ((rc = mp_read_array(r, &n)) != 0)
        return rc;
    if (n > GOSSIP_SHUFFLE_MAX)
        return PULL_ERR_TOO_BIG;
    for (uint32_t i = 0; i < n; i++) {
        struct gs_peer_entry *e = &m->peers[i];
        if ((rc = mp_read_array(r, &fields)) != 0)
            return rc;
        if (fields < 2)
            return PULL_ERR_FIELD;
        if ((rc = mp_read_bin_exact(r, e->key, GOSSIP_KEY_BYTES)) != 0 ||
            (rc = dec_addr(r, &e->addr, &e->addr_len)) != 0)
            return rc;
        for (uint32_t k = 2; k < fields; k++) {
            if ((rc = mp_skip(r)) != 0)
                return rc;
        }
    }
    m->npeers = n;
    return 0;
}

static int
dec_envelopes(struct pull_rd *r, struct gmsg *m)
{
    uint32_t n;
    int rc;

    if ((rc = mp_read_array(r, &n)) != 0)
        return rc;
    if (n > GOSSIP_RECORDS_MAX)
        return PULL_ERR_TOO_BIG;
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = mp_read_bin(r, GOSSIP_ENVELOPE_MAX, &m->env[i], &m->env_len[i])) != 0)
            return rc;
        if (m->env_len[i] == 0)
            return PULL_ERR_FIELD;
    }
    m->nenv = n;
    return 0;
}

/* Fields after the type that each message must have (newer versions may add more). */
static int
fields_of(uint32_t type)
{
    switch (type) {
    case MSG_JOIN:
        return 1;
    case MSG_FORWARD_JOIN:
        return 3;
    case MSG_NEIGHBOR:
        return 2;
    case MSG_NEIGHBOR_REPLY:
    case MSG_DISCONNECT:
        return 1;
    case MSG_SHUFFLE:
        return 3;
    case MSG_SHUFFLE_REPLY:
        return 2;
    case MSG_RECORDS:
        return 3;
    case MSG_IHAVE:
        return 2;
    case MSG_GRAFT:
    case MSG_WANT:
        return 1;
    case MSG_PRUNE:
        return 0;
    }
    return -1;
}

int
gs_decode(const uint8_t *p, size_t len, struct gmsg *m)
{
    struct pull_rd r;
    uint32_t count;
    uint64_t t;
    int need, rc;

    m->type = 0;
    m->npeers = m->nids = m->nenv = 0;
    m->addr = NULL;
    m->addr_len = 0;
    if (len > MSG_MAX)
        return PULL_ERR_TOO_BIG;
    rd_init(&r, p, len);
    if ((rc = mp_read_array(&r, &count)) != 0)
        return rc;
    if (count < 1)
        return PULL_ERR_MALFORMED;
    if ((rc = mp_read_uint_max(&r, UINT32_MAX, &t)) != 0)
        return rc;
    m->type = (uint32_t)t;
    if ((need = fields_of(m->type)) < 0)
        return PULL_ERR_UNSUPPORTED;
    if (count - 1 < (uint32_t)need)
        return PULL_ERR_MALFORMED;
    switch (m->type) {
    case MSG_JOIN:
        rc = dec_addr(&r, &m->addr, &m->addr_len);
        break;
    case MSG_FORWARD_JOIN:
        if ((rc = mp_read_bin_exact(&r, m->key, GOSSIP_KEY_BYTES)) == 0 &&
            (rc = dec_addr(&r, &m->addr, &m->addr_len)) == 0)
            rc = mp_read_uint_max(&r, 255, &m->ttl);
        break;
    case MSG_NEIGHBOR:
        if ((rc = dec_addr(&r, &m->addr, &m->addr_len)) == 0)
            rc = mp_read_bool(&r, &m->flag);
        break;
    case MSG_NEIGHBOR_REPLY:
        rc = mp_read_bool(&r, &m->flag);
        break;
    case MSG_DISCONNECT:
        rc = mp_read_uint_max(&r, 255, &m->code);
        break;
    case MSG_SHUFFLE:
        if ((rc = mp_read_uint(&r, &m->nonce)) == 0 &&
            (rc = mp_read_uint_max(&r, 255, &m->ttl)) == 0)
            rc = dec_peers(&r, m);
        if (rc == 0 && m->npeers == 0)
            rc = PULL_ERR_FIELD; /* the first entry is the origin */
        break;
    case MSG_SHUFFLE_REPLY:
        if ((rc = mp_read_uint(&r, &m->nonce)) == 0)
            rc = dec_peers(&r, m);
        break;
    case MSG_RECORDS:
        if ((rc = mp_read_uint_max(&r, 255, &m->code)) == 0 &&
            (rc = mp_read_uint_max(&r, 255, &m->hops)) == 0)
            rc = dec_envelopes(&r, m);
        break;
    case MSG_IHAVE: {
        const uint8_t *h;
        uint32_t hn;
        if ((rc = dec_ids(&r, m)) == 0 && (rc = mp_read_bin(&r, GOSSIP_IDS_MAX, &h, &hn)) == 0) {
            if (hn != m->nids)
                rc = PULL_ERR_FIELD;
            else if (hn > 0)
                memcpy(m->ids_hops, h, hn);
        }
        break;
    }
    case MSG_GRAFT:
    case MSG_WANT:
        rc = dec_ids(&r, m);
        break;
    case MSG_PRUNE:
        rc = 0;
        break;
    }
    if (rc != 0)
        return rc;
    for (uint32_t k = (uint32_t)need + 1; k < count; k++) {
        if ((rc = mp_skip(&r)) != 0)
            return rc;
    }
    return rd_left(&r) == 0 ? 0 : PULL_ERR_TRAILING;
}
