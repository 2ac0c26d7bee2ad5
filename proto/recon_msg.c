/*
 * recon_msg: the codec of the reconciliation messages MSG_RECON_REQ .. MSG_RECON_ERR
 * (recon.h, "struct recon_msg"; proto/PROTOCOL.md, "Reconciliation messages"). The engine
 * (recon.c) encodes through recon_msg_encode and decodes through recon_msg_decode like any
 * other caller.
 */
#include "proto/recon.h"

#include <string.h>

#include "lib/err.h"
#include "lib/mp.h"
#include "proto/msg.h"

/* ======================================================================== messages */

/* Reads a uint in [lo, hi] into *v. */
static int
rd_uint32(struct pull_rd *r, uint32_t lo, uint32_t hi, uint32_t *v)
{
    uint64_t u;
    int rc;

    *v = 0;
    if ((rc = mp_read_uint_max(r, hi, &u)) != 0)
        return rc;
    if (u < lo)
        return PULL_ERR_FIELD;
    *v = (uint32_t)u;
    return 0;
}

int
recon_msg_decode(const uint8_t *p, size_t n, struct recon_msg *m)
{
    static const uint32_t nfields[] = {6, 6, 3, 5, 5}; /* REQ, SYMBOLS, MORE, DONE, ERR */
    struct pull_rd r;
    uint32_t count, u;
    const uint8_t *b;
    int rc;

    memset(m, 0, sizeof(*m));
    if (n > MSG_MAX)
        return PULL_ERR_TOO_BIG;
    rd_init(&r, p, n);
    if ((rc = mp_read_array(&r, &count)) != 0)
        return rc;
    if (count < 2)
        return PULL_ERR_MALFORMED;
    if ((rc = rd_uint32(&r, MSG_RECON_REQ, MSG_RECON_ERR, &m->type)) != 0)
        return rc;
    if (count < nfields[m->type - MSG_RECON_REQ])
        return PULL_ERR_MALFORMED;
    if ((rc = rd_uint32(&r, 1, UINT32_MAX, &m->sid)) != 0)
        return rc;
    switch (m->type) {
    case MSG_RECON_REQ:
        if (mp_peek(&r) == MP_NIL) {
            rc = mp_read_nil(&r);
        } else {
            m->salted = true;
            rc = mp_read_bin_exact(&r, m->key, RIBLT_KEY_LEN);
        }
        if (rc != 0 || (rc = rd_uint32(&r, 1, RECON_MAX_CREDIT, &m->credit)) != 0 ||
            (rc = mp_read_bin_exact(&r, m->sym0, RIBLT_SYM_WIRE)) != 0 ||
            (rc = mp_read_bin_exact(&r, m->est, RIBLT_EST_BYTES)) != 0)
            return rc;
        /* The unused last nibble must be zero (one encoding per message). */
        if ((RIBLT_EST_N & 1) && (m->est[RIBLT_EST_BYTES - 1] & 0x0f) != 0)
            return PULL_ERR_FIELD;
        break;
    case MSG_RECON_SYMBOLS:
        if ((rc = rd_uint32(&r, 0, RECON_MAX_CREDIT - 1, &m->start)) != 0 ||
            (rc = rd_uint32(&r, 1, RECON_MAX_CREDIT, &m->end)) != 0 ||
            (rc = mp_read_bin(&r, MSG_MAX, &b, &u)) != 0 ||
            (rc = rd_uint32(&r, 0, UINT32_MAX, &m->hint)) != 0)
            return rc;
        if (u == 0 || u % RIBLT_SYM_WIRE != 0)
            return PULL_ERR_FIELD;
        m->syms = b;
        m->n_syms = u / RIBLT_SYM_WIRE;
        /* start < end and n_syms <= end - start (subtract, never add). */
        if (m->start >= m->end || m->n_syms > m->end - m->start)
            return PULL_ERR_FIELD;
        break;
    case MSG_RECON_MORE:
        if ((rc = rd_uint32(&r, 1, RECON_MAX_CREDIT, &m->total)) != 0)
            return rc;
        break;
    case MSG_RECON_DONE:
        if ((rc = rd_uint32(&r, 0, 1, &u)) != 0 ||
            (rc = rd_uint32(&r, 0, UINT32_MAX, &m->you_lack)) != 0 ||
            (rc = rd_uint32(&r, 0, UINT32_MAX, &m->i_lack)) != 0)
            return rc;
        m->from = (uint8_t)u;
        break;
    case MSG_RECON_ERR:
        if ((rc = rd_uint32(&r, 0, 1, &u)) != 0 || (rc = rd_uint32(&r, 1, 0xffff, &m->code)) != 0 ||
            (rc = mp_read_str(&r, RECON_REASON_MAX, &m->reason, &m->reason_len)) != 0)
            return rc;
        m->from = (uint8_t)u;
        break;
    }
    m->extra = count - nfields[m->type - MSG_RECON_REQ];
    for (uint32_t i = 0; i < m->extra; i++)
        if ((rc = mp_skip(&r)) != 0)
            return rc;
    if (rd_left(&r) != 0)
        return PULL_ERR_TRAILING;
    return 0;
}

int
recon_msg_encode(const struct recon_msg *m, struct pull_wb *w)
{
    msgpack_packer pk;

    if (m->sid == 0 || m->type < MSG_RECON_REQ || m->type > MSG_RECON_ERR)
        return PULL_ERR_INVAL;
    mp_packer_init(&pk, w);
    switch (m->type) {
    case MSG_RECON_REQ:
        if (m->credit < 1 || m->credit > RECON_MAX_CREDIT)
            return PULL_ERR_INVAL;
        msgpack_pack_array(&pk, 6);
        msgpack_pack_uint32(&pk, m->type);
        msgpack_pack_uint32(&pk, m->sid);
        if (m->salted)
            mp_pack_bin(&pk, m->key, RIBLT_KEY_LEN);
        else
            msgpack_pack_nil(&pk);
        msgpack_pack_uint32(&pk, m->credit);
        mp_pack_bin(&pk, m->sym0, RIBLT_SYM_WIRE);
        mp_pack_bin(&pk, m->est, RIBLT_EST_BYTES);
        break;
    case MSG_RECON_SYMBOLS:
        if (m->n_syms == 0 || m->start >= m->end || m->end > RECON_MAX_CREDIT ||
            m->n_syms > m->end - m->start)
            return PULL_ERR_INVAL;
        msgpack_pack_array(&pk, 6);
        msgpack_pack_uint32(&pk, m->type);
        msgpack_pack_uint32(&pk, m->sid);
        msgpack_pack_uint32(&pk, m->start);
        msgpack_pack_uint32(&pk, m->end);
        mp_pack_bin(&pk, m->syms, (size_t)m->n_syms * RIBLT_SYM_WIRE);
        msgpack_pack_uint32(&pk, m->hint);
        break;
    case MSG_RECON_MORE:
        if (m->total < 1 || m->total > RECON_MAX_CREDIT)
            return PULL_ERR_INVAL;
        msgpack_pack_array(&pk, 3);
        msgpack_pack_uint32(&pk, m->type);
        msgpack_pack_uint32(&pk, m->sid);
        msgpack_pack_uint32(&pk, m->total);
        break;
    case MSG_RECON_DONE:
        if (m->from > 1)
            return PULL_ERR_INVAL;
        msgpack_pack_array(&pk, 5);
        msgpack_pack_uint32(&pk, m->type);
        msgpack_pack_uint32(&pk, m->sid);
        msgpack_pack_uint32(&pk, m->from);
        msgpack_pack_uint32(&pk, m->you_lack);
        msgpack_pack_uint32(&pk, m->i_lack);
        break;
    case MSG_RECON_ERR:
        if (m->from > 1 || m->code < 1 || m->code > 0xffff || m->reason_len > RECON_REASON_MAX)
            return PULL_ERR_INVAL;
        msgpack_pack_array(&pk, 5);
        msgpack_pack_uint32(&pk, m->type);
        msgpack_pack_uint32(&pk, m->sid);
        msgpack_pack_uint32(&pk, m->from);
        msgpack_pack_uint32(&pk, m->code);
        mp_pack_str(&pk, m->reason ? m->reason : "", m->reason_len);
        break;
    }
    return wb_error(w);
}
