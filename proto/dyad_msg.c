/*
 * dyad_msg: the dyad's signed messages (dyad.h, "Messages"): the terms hash, the message
 * id, the decoder and its signature checks, and the signer that dyad.c's state machine
 * sends through. proto/dyad_int.h says what the two rooms share.
 */
#include "proto/dyad.h"

#include <sodium.h>
#include <string.h>

#include "lib/err.h"
#include "lib/mp.h"
#include "proto/dyad_int.h"

#define DYAD_STEP_MAX 255u

static bool
all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;

    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* Refuses C0 controls other than \n and \t, DEL and C1 controls in valid UTF-8. */
int
dyad_check_note(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;

    if (n > DYAD_NOTE_MAX)
        return PULL_ERR_FIELD;
    if (n > 0 && !utf8_valid(s, n))
        return PULL_ERR_UTF8;
    for (size_t i = 0; i < n; i++) {
        if ((p[i] < 0x20 && p[i] != '\n' && p[i] != '\t') || p[i] == 0x7f)
            return PULL_ERR_CONTROL;
        if (p[i] == 0xc2 && i + 1 < n && p[i + 1] <= 0x9f)
            return PULL_ERR_CONTROL;
    }
    return 0;
}

static unsigned
field_count(unsigned kind)
{
    switch (kind) {
    case DYAD_PROPOSE:
        return 13;
    case DYAD_ACCEPT:
        return 9;
    case DYAD_ACK:
        return 8;
    default:
        return 7;
    }
}

/* ---- messages ---- */

/* A msgpack-c write callback that hashes what is packed. */
struct terms_hasher {
    crypto_generichash_state st;
    bool err;
};

static int
terms_hash_write(void *data, const char *buf, size_t len)
{
    struct terms_hasher *th = data;

    if (crypto_generichash_update(&th->st, (const uint8_t *)buf, len) != 0)
        th->err = true;
    return 0;
}

int
dyad_terms_hash(const uint8_t record[static 32], const uint8_t proposer[static 32],
                const uint8_t responder[static 32], const char *note, size_t note_len,
                uint64_t created, uint8_t terms[static 32])
{
    struct terms_hasher th;
    msgpack_packer pk;
    int rc = 0;

    memset(terms, 0, 32);
    if (note_len > DYAD_NOTE_MAX)
        return PULL_ERR_FIELD;
    /* The packer feeds the hash directly: decoding a PROPOSE never allocates. */
    th.err = crypto_generichash_init(&th.st, NULL, 0, 32) != 0;
    msgpack_packer_init(&pk, &th, terms_hash_write);
    msgpack_pack_array(&pk, 5);
    mp_pack_bin(&pk, record, 32);
    mp_pack_bin(&pk, proposer, 32);
    mp_pack_bin(&pk, responder, 32);
    mp_pack_str(&pk, note_len > 0 ? note : "", note_len);
    msgpack_pack_uint64(&pk, created);
    if (th.err || crypto_generichash_final(&th.st, terms, 32) != 0) {
        memset(terms, 0, 32);
        rc = PULL_ERR_CRYPTO;
    }
    sodium_memzero(&th, sizeof(th));
    return rc;
}

int
dyad_msg_id(const uint8_t *p, size_t n, uint8_t id[static DYAD_ID_BYTES])
{
    if (crypto_generichash(id, DYAD_ID_BYTES, p, n, NULL, 0) != 0) {
        memset(id, 0, DYAD_ID_BYTES);
        return PULL_ERR_CRYPTO;
    }
    return 0;
}

static int
decode_body(const uint8_t *p, size_t n, struct dyad_msg *m)
{
    struct pull_rd r;
    uint32_t count;
    uint64_t v;
    uint8_t terms[32];
    int rc;

    rd_init(&r, p, n);
    if ((rc = mp_read_array(&r, &count)) != 0)
        return rc;
    if (count < 2)
        return PULL_ERR_MALFORMED;
    if ((rc = mp_read_uint(&r, &v)) != 0)
        return rc;
    if (v != DYAD_VERSION)
        return PULL_ERR_VERSION;
    if ((rc = mp_read_uint_max(&r, DYAD_KIND_LAST, &v)) != 0)
        return rc;
    if (v < DYAD_KIND_MIN)
        return PULL_ERR_FIELD;
    m->kind = (uint8_t)v;
    if (count != field_count(m->kind))
        return PULL_ERR_MALFORMED;
    if ((rc = mp_read_bin_exact(&r, m->dyad, 32)) != 0 ||
        (rc = mp_read_bin_exact(&r, m->author, 32)) != 0)
        return rc;
    if ((rc = mp_read_uint_max(&r, DYAD_STEP_MAX, &v)) != 0)
        return rc;
    m->step = (uint32_t)v;
    if ((rc = mp_read_uint_max(&r, DYAD_TIME_MAX, &m->created)) != 0)
        return rc;
    if ((rc = mp_read_str(&r, DYAD_NOTE_MAX, &m->note, &m->note_len)) != 0)
        return rc;
    if ((rc = dyad_check_note(m->note, m->note_len)) != 0)
        return rc;
    if (m->kind == DYAD_NOTE && m->note_len == 0)
        return PULL_ERR_FIELD; /* a note says something */
    /* A PROPOSE has no dyad id yet (it is the hash of the PROPOSE); others must name one. */
    if ((m->kind == DYAD_PROPOSE) != all_zero(m->dyad, 32))
        return PULL_ERR_FIELD;
    switch (m->kind) {
    case DYAD_PROPOSE:
        if ((rc = mp_read_bin_exact(&r, m->record, 32)) != 0 ||
            (rc = mp_read_bin_exact(&r, m->proposer, 32)) != 0 ||
            (rc = mp_read_bin_exact(&r, m->responder, 32)) != 0 ||
            (rc = mp_read_uint_max(&r, DYAD_TIME_MAX, &m->expires)) != 0 ||
            (rc = mp_read_bin_exact(&r, m->terms, 32)) != 0 ||
            (rc = mp_read_bin_exact(&r, m->terms_sig, 64)) != 0)
            return rc;
        if (m->step != 0 || sodium_memcmp(m->proposer, m->author, 32) != 0)
            return PULL_ERR_FIELD;
        if (sodium_memcmp(m->proposer, m->responder, 32) == 0)
            return PULL_ERR_INVAL;
        if (m->expires <= m->created || m->expires - m->created > DYAD_PROPOSE_TTL_MAX)
            return PULL_ERR_EXPIRY;
        if ((rc = dyad_terms_hash(m->record, m->proposer, m->responder, m->note, m->note_len,
                                  m->created, terms)) != 0)
            return rc;
        if (sodium_memcmp(terms, m->terms, 32) != 0)
            return PULL_ERR_FIELD;
        break;
    case DYAD_ACCEPT:
        if ((rc = mp_read_bin_exact(&r, m->terms, 32)) != 0 ||
            (rc = mp_read_bin_exact(&r, m->terms_sig, 64)) != 0)
            return rc;
        break;
    case DYAD_ACK: {
        const uint8_t *b;
        uint32_t blen;
        if ((rc = mp_read_bin(&r, 64, &b, &blen)) != 0)
            return rc;
        if (blen != 0 && blen != 64)
            return PULL_ERR_FIELD;
        m->has_cosig = blen == 64;
        if (m->has_cosig)
            memcpy(m->cosig, b, 64);
        break;
    }
    default:
        break;
    }
    if (rd_left(&r) != 0)
        return PULL_ERR_TRAILING;
    return 0;
}

int
dyad_msg_decode(const uint8_t *p, size_t n, struct dyad_msg *m)
{
    struct pull_rd r;
    const uint8_t *body, *sig;
    uint32_t blen, slen;
    int rc;

    memset(m, 0, sizeof(*m));
    if (n > DYAD_MSG_MAX)
        return PULL_ERR_TOO_BIG;
    rd_init(&r, p, n);
    if ((rc = mp_read_array_n(&r, 2)) != 0 ||
        (rc = mp_read_bin(&r, DYAD_MSG_MAX, &body, &blen)) != 0 ||
        (rc = mp_read_bin(&r, IDENT_SIG_BYTES, &sig, &slen)) != 0)
        goto out;
    if (slen != IDENT_SIG_BYTES) {
        rc = PULL_ERR_FIELD;
        goto out;
    }
    if (rd_left(&r) != 0) {
        rc = PULL_ERR_TRAILING;
        goto out;
    }
    if ((rc = decode_body(body, blen, m)) != 0)
        goto out;
    m->body = body;
    m->body_len = blen;
    m->sig = sig;
out:
    if (rc != 0)
        memset(m, 0, sizeof(*m));
    return rc;
}

int
dyad_msg_verify(const struct dyad_msg *m)
{
    int rc;

    if (m->body == NULL || m->sig == NULL)
        return PULL_ERR_INVAL;
    if ((rc = ident_verify(m->author, DYAD_DOMAIN, m->body, m->body_len, m->sig)) != 0)
        return rc;
    /* The terms signature is the author's: the proposer's in a PROPOSE, the responder's in
     * an ACCEPT (that the author is the responder is the dyad's check). */
    if (m->kind == DYAD_PROPOSE || m->kind == DYAD_ACCEPT)
        return ident_verify(m->author, DYAD_TERMS_DOMAIN, m->terms, 32, m->terms_sig);
    return 0;
}

/* Packs m's body, signs it with me and appends the envelope to out. */
int
dyad_msg_sign(const struct dyad_msg *m, const struct ident *me, struct pull_wb *out)
{
    struct pull_wb body;
    msgpack_packer pk;
    uint8_t sig[IDENT_SIG_BYTES];
    size_t start = out->len;
    int rc;

    wb_init_env(&body, out->env, DYAD_MSG_MAX);
    mp_packer_init(&pk, &body);
    msgpack_pack_array(&pk, field_count(m->kind));
    msgpack_pack_uint64(&pk, DYAD_VERSION);
    msgpack_pack_uint64(&pk, m->kind);
    mp_pack_bin(&pk, m->dyad, 32);
    mp_pack_bin(&pk, m->author, 32);
    msgpack_pack_uint64(&pk, m->step);
    msgpack_pack_uint64(&pk, m->created);
    mp_pack_str(&pk, m->note_len > 0 ? m->note : "", m->note_len);
    switch (m->kind) {
    case DYAD_PROPOSE:
        mp_pack_bin(&pk, m->record, 32);
        mp_pack_bin(&pk, m->proposer, 32);
        mp_pack_bin(&pk, m->responder, 32);
        msgpack_pack_uint64(&pk, m->expires);
        mp_pack_bin(&pk, m->terms, 32);
        mp_pack_bin(&pk, m->terms_sig, 64);
        break;
    case DYAD_ACCEPT:
        mp_pack_bin(&pk, m->terms, 32);
        mp_pack_bin(&pk, m->terms_sig, 64);
        break;
    case DYAD_ACK:
        mp_pack_bin(&pk, m->cosig, m->has_cosig ? 64 : 0);
        break;
    default:
        break;
    }
    if ((rc = wb_error(&body)) != 0)
        goto out;
    if ((rc = ident_sign(me, DYAD_DOMAIN, body.p, body.len, sig)) != 0)
        goto out;
    if ((rc = wb_error(out)) != 0)
        goto out;
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 2);
    mp_pack_bin(&pk, body.p, body.len);
    mp_pack_bin(&pk, sig, sizeof(sig));
    if ((rc = wb_error(out)) != 0)
        goto out;
    if (out->len - start > DYAD_MSG_MAX) /* unreachable: a PROPOSE is under 800 bytes */
        rc = PULL_ERR_TOO_BIG;
out:
    if (rc != 0 && out->len > start && wb_error(out) == 0)
        out->len = start;
    wb_release(&body);
    return rc;
}
