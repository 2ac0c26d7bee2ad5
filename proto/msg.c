/* Wire message catalogue helpers and the session messages (see msg.h, PROTOCOL.md). */
#include "proto/msg.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/mp.h"

int
msg_peek_type(const uint8_t *p, size_t n, uint32_t *type)
{
    struct pull_rd r;
    uint32_t count;
    uint64_t t;
    int rc;

    *type = 0;
    if (n > MSG_MAX)
        return PULL_ERR_TOO_BIG;
    rd_init(&r, p, n);
    if ((rc = mp_read_array(&r, &count)) != 0)
        return rc;
    if (count < 1)
        return PULL_ERR_MALFORMED;
    if ((rc = mp_read_uint_max(&r, UINT32_MAX, &t)) != 0)
        return rc;
    *type = (uint32_t)t;
    return 0;
}

const char *
msg_type_name(uint32_t type)
{
    switch ((enum msg_type)type) {
    case MSG_HELLO:
        return "hello";
    case MSG_PING:
        return "ping";
    case MSG_PONG:
        return "pong";
    case MSG_BYE:
        return "bye";
    case MSG_JOIN:
        return "join";
    case MSG_FORWARD_JOIN:
        return "forward_join";
    case MSG_NEIGHBOR:
        return "neighbor";
    case MSG_NEIGHBOR_REPLY:
        return "neighbor_reply";
    case MSG_DISCONNECT:
        return "disconnect";
    case MSG_SHUFFLE:
        return "shuffle";
    case MSG_SHUFFLE_REPLY:
        return "shuffle_reply";
    case MSG_RECORDS:
        return "records";
    case MSG_IHAVE:
        return "ihave";
    case MSG_GRAFT:
        return "graft";
    case MSG_PRUNE:
        return "prune";
    case MSG_WANT:
        return "want";
    case MSG_RECON_REQ:
        return "recon_req";
    case MSG_RECON_SYMBOLS:
        return "recon_symbols";
    case MSG_RECON_MORE:
        return "recon_more";
    case MSG_RECON_DONE:
        return "recon_done";
    case MSG_RECON_ERR:
        return "recon_err";
    case MSG_RECON_BULK:
        return "recon_bulk";
    case MSG_RECON_HAVE:
        return "recon_have";
    case MSG_RECON_TAKE:
        return "recon_take";
    case MSG_MAIL:
        return "mail";
    case MSG_MAIL_IHAVE:
        return "mail_ihave";
    }
    return NULL;
}

/* Text that may be logged: bounded, UTF-8, no C0 controls and no DEL. */
static int
check_text(const char *s, size_t n, size_t max)
{
    if (n > max)
        return PULL_ERR_FIELD;
    if (!utf8_valid(s, n))
        return PULL_ERR_UTF8;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return PULL_ERR_FIELD;
    }
    return 0;
}

/* Reads the array header and the type of a message of exactly n bytes. The array must have
 * at least `fields` elements (type included); *extra receives how many more it has. */
static int
open_msg(struct pull_rd *r, const uint8_t *p, size_t n, uint32_t fields, uint32_t *type,
         uint32_t *extra)
{
    uint32_t count;
    uint64_t t;
    int rc;

    *type = 0;
    *extra = 0;
    if (n > MSG_MAX)
        return PULL_ERR_TOO_BIG;
    rd_init(r, p, n);
    if ((rc = mp_read_array(r, &count)) != 0)
        return rc;
    if (count < 1)
        return PULL_ERR_MALFORMED;
    if ((rc = mp_read_uint_max(r, UINT32_MAX, &t)) != 0)
        return rc;
    *type = (uint32_t)t;
    if (count < fields)
        return PULL_ERR_MALFORMED;
    *extra = count - fields;
    return 0;
}

/* Skips fields appended by later versions, then insists the frame ends with the array. */
static int
close_msg(struct pull_rd *r, uint32_t extra)
{
    int rc;

    for (uint32_t i = 0; i < extra; i++)
        if ((rc = mp_skip(r)) != 0)
            return rc;
    return rd_left(r) == 0 ? 0 : PULL_ERR_TRAILING;
}

/* Reads a str field into a NUL-terminated buffer of max + 1 bytes. */
static int
read_text(struct pull_rd *r, uint32_t max, char *out)
{
    const char *s;
    uint32_t len;
    int rc;

    out[0] = '\0';
    if ((rc = mp_read_str(r, max, &s, &len)) != 0)
        return rc;
    if ((rc = check_text(s, len, max)) != 0)
        return rc;
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

void
msg_hello_init(struct msg_hello *h, uint64_t features, uint16_t listen_port, const char *agent)
{
    size_t n = agent != NULL ? strlen(agent) : 0;

    memset(h, 0, sizeof(*h));
    h->proto_min = MSG_PROTO_MIN;
    h->proto_max = MSG_PROTO_MAX;
    h->features = features;
    h->listen_port = listen_port;
    if (n > MSG_AGENT_MAX) {
        n = MSG_AGENT_MAX;
        while (n > 0 && ((unsigned char)agent[n] & 0xc0) == 0x80)
            n--; /* don't cut a UTF-8 sequence */
    }
    if (n > 0)
        memcpy(h->agent, agent, n);
    h->agent[n] = '\0';
}

static int
check_hello(const struct msg_hello *h)
{
    if (h->proto_min < 1 || h->proto_min > h->proto_max)
        return PULL_ERR_FIELD;
    return 0;
}

int
msg_hello_encode(const struct msg_hello *h, struct pull_wb *out)
{
    msgpack_packer pk;
    size_t alen = strnlen(h->agent, sizeof(h->agent));
    uint32_t nfields;
    int rc;

    if ((rc = check_hello(h)) != 0 || (rc = check_text(h->agent, alen, MSG_AGENT_MAX)) != 0)
        return rc;
    if (h->reach > MSG_REACH_LOCAL)
        return PULL_ERR_FIELD;
    mp_packer_init(&pk, out);
    nfields = h->has_invite ? 9 : h->reach != MSG_REACH_UNSAID ? 8 : h->time_ms != 0 ? 7 : 6;
    msgpack_pack_array(&pk, nfields);
    msgpack_pack_uint32(&pk, MSG_HELLO);
    msgpack_pack_uint32(&pk, h->proto_min);
    msgpack_pack_uint32(&pk, h->proto_max);
    msgpack_pack_uint64(&pk, h->features);
    msgpack_pack_uint16(&pk, h->listen_port);
    mp_pack_str(&pk, h->agent, alen);
    if (nfields >= 7)
        msgpack_pack_uint64(&pk, h->time_ms); /* 0 when not said but a later field is */
    if (nfields >= 8)
        msgpack_pack_uint32(&pk, h->reach); /* MSG_REACH_UNSAID when only the invite is said */
    if (nfields >= 9)
        msgpack_pack_bin_with_body(&pk, h->invite, MSG_INVITE_BYTES);
    return wb_error(out);
}

/* Decodes the HELLO fields after the type. */
static int
hello_fields(struct pull_rd *r, struct msg_hello *h)
{
    uint64_t v;
    int rc;

    if ((rc = mp_read_uint_max(r, UINT32_MAX, &v)) != 0)
        return rc;
    h->proto_min = (uint32_t)v;
    if ((rc = mp_read_uint_max(r, UINT32_MAX, &v)) != 0)
        return rc;
    h->proto_max = (uint32_t)v;
    if ((rc = mp_read_uint(r, &h->features)) != 0)
        return rc;
    if ((rc = mp_read_uint_max(r, UINT16_MAX, &v)) != 0)
        return rc;
    h->listen_port = (uint16_t)v;
    if ((rc = read_text(r, MSG_AGENT_MAX, h->agent)) != 0)
        return rc;
    return check_hello(h);
}

int
msg_hello_decode(const uint8_t *p, size_t n, struct msg_hello *h)
{
    struct pull_rd r;
    uint32_t type, extra;
    int rc;

    memset(h, 0, sizeof(*h));
    if ((rc = open_msg(&r, p, n, 6, &type, &extra)) != 0)
        goto out;
    if (type != MSG_HELLO) {
        rc = PULL_ERR_MALFORMED;
        goto out;
    }
    if ((rc = hello_fields(&r, h)) != 0)
        goto out;
    /* time_ms (PROTOCOL.md 7): a trailing field, so older nodes skip it; a value of
     * another type is skipped like any field of a later version */
    if (extra > 0 && mp_peek(&r) == MP_UINT) {
        if ((rc = mp_read_uint(&r, &h->time_ms)) != 0)
            goto out;
        extra--;
        /* reach (PROTOCOL.md 7): after time_ms; a value this version doesn't know is read
         * as not said, a value of another type is skipped */
        if (extra > 0 && mp_peek(&r) == MP_UINT) {
            uint64_t v;
            if ((rc = mp_read_uint(&r, &v)) != 0)
                goto out;
            h->reach = v == MSG_REACH_OPEN || v == MSG_REACH_LOCAL ? (uint8_t)v : MSG_REACH_UNSAID;
            extra--;
            /* invite: after reach, a bin of MSG_INVITE_BYTES; anything else is skipped */
            if (extra > 0 && mp_peek(&r) == MP_BIN) {
                const uint8_t *b;
                uint32_t blen;
                if ((rc = mp_read_bin(&r, UINT32_MAX, &b, &blen)) != 0)
                    goto out;
                if (blen == MSG_INVITE_BYTES) {
                    memcpy(h->invite, b, MSG_INVITE_BYTES);
                    h->has_invite = true;
                }
                extra--;
            }
        }
    }
    if ((rc = close_msg(&r, extra)) != 0)
        goto out;
out:
    if (rc != 0)
        sodium_memzero(h, sizeof(*h));
    return rc;
}

uint16_t
msg_hello_dial_port(const struct msg_hello *h, bool seen_public)
{
    if (h->reach == MSG_REACH_LOCAL && seen_public)
        return 0;
    return h->listen_port;
}

int
msg_ping_encode(uint32_t type, uint64_t nonce, struct pull_wb *out)
{
    msgpack_packer pk;

    if (type != MSG_PING && type != MSG_PONG)
        return PULL_ERR_INVAL;
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint32(&pk, type);
    msgpack_pack_uint64(&pk, nonce);
    return wb_error(out);
}

int
msg_ping_decode(const uint8_t *p, size_t n, uint32_t *type, uint64_t *nonce)
{
    struct pull_rd r;
    uint32_t extra;
    int rc;

    *nonce = 0;
    if ((rc = open_msg(&r, p, n, 2, type, &extra)) != 0)
        goto out;
    if (*type != MSG_PING && *type != MSG_PONG) {
        rc = PULL_ERR_MALFORMED;
        goto out;
    }
    if ((rc = mp_read_uint(&r, nonce)) != 0 || (rc = close_msg(&r, extra)) != 0)
        goto out;
out:
    if (rc != 0) {
        *type = 0;
        *nonce = 0;
    }
    return rc;
}

int
msg_bye_encode(uint32_t reason, const char *text, struct pull_wb *out)
{
    msgpack_packer pk;
    size_t tlen = text != NULL ? strlen(text) : 0;
    int rc;

    if (tlen > 0 && (rc = check_text(text, tlen, MSG_BYE_TEXT_MAX)) != 0)
        return rc;
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint32(&pk, MSG_BYE);
    msgpack_pack_uint32(&pk, reason);
    mp_pack_str(&pk, tlen > 0 ? text : "", tlen);
    return wb_error(out);
}

static int
bye_fields(struct pull_rd *r, struct msg_bye *b)
{
    uint64_t v;
    int rc;

    if ((rc = mp_read_uint_max(r, UINT32_MAX, &v)) != 0)
        return rc;
    b->reason = (uint32_t)v;
    return read_text(r, MSG_BYE_TEXT_MAX, b->text);
}

int
msg_bye_decode(const uint8_t *p, size_t n, struct msg_bye *b)
{
    struct pull_rd r;
    uint32_t type, extra;
    int rc;

    memset(b, 0, sizeof(*b));
    if ((rc = open_msg(&r, p, n, 3, &type, &extra)) != 0)
        goto out;
    if (type != MSG_BYE) {
        rc = PULL_ERR_MALFORMED;
        goto out;
    }
    if ((rc = bye_fields(&r, b)) != 0 || (rc = close_msg(&r, extra)) != 0)
        goto out;
out:
    if (rc != 0)
        memset(b, 0, sizeof(*b));
    return rc;
}

int
msg_session_decode(const uint8_t *p, size_t n, struct msg_session *m)
{
    uint32_t type;
    int rc;

    memset(m, 0, sizeof(*m));
    if ((rc = msg_peek_type(p, n, &type)) != 0)
        return rc;
    switch (type) {
    case MSG_HELLO:
        rc = msg_hello_decode(p, n, &m->u.hello);
        break;
    case MSG_PING:
    case MSG_PONG:
        rc = msg_ping_decode(p, n, &type, &m->u.nonce);
        break;
    case MSG_BYE:
        rc = msg_bye_decode(p, n, &m->u.bye);
        break;
    default:
        m->type = type;
        return PULL_ERR_UNSUPPORTED;
    }
    if (rc != 0) {
        memset(m, 0, sizeof(*m));
        return rc;
    }
    m->type = type;
    return 0;
}

int
msg_negotiate(const struct msg_hello *ours, const struct msg_hello *theirs, uint32_t *version)
{
    uint32_t lo = ours->proto_min > theirs->proto_min ? ours->proto_min : theirs->proto_min;
    uint32_t hi = ours->proto_max < theirs->proto_max ? ours->proto_max : theirs->proto_max;

    *version = 0;
    if (lo > hi || lo < 1)
        return PULL_ERR_VERSION;
    *version = hi;
    return 0;
}

int
msg_bye_version(const struct msg_hello *ours, struct pull_wb *out)
{
    char text[MSG_BYE_TEXT_MAX + 1];

    snprintf(text, sizeof(text), "no common protocol version: this node speaks %u..%u",
             (unsigned)ours->proto_min, (unsigned)ours->proto_max);
    return msg_bye_encode(MSG_BYE_VERSION, text, out);
}

const char *
msg_bye_reason_str(uint32_t reason)
{
    switch ((enum msg_bye_reason)reason) {
    case MSG_BYE_NORMAL:
        return "closing";
    case MSG_BYE_VERSION:
        return "no common protocol version";
    case MSG_BYE_PROTOCOL:
        return "protocol violation";
    case MSG_BYE_BUSY:
        return "too many connections";
    case MSG_BYE_DUPLICATE:
        return "already connected";
    case MSG_BYE_TIMEOUT:
        return "timed out";
    case MSG_BYE_QUOTA:
        return "quota exceeded";
    case MSG_BYE_SELF:
        return "connected to itself";
    case MSG_BYE_INVITE:
        return "invite";
    }
    return "unknown";
}

/* ---------------------------------------------------------------- RECON_BULK */

static int
check_bulk(uint32_t sid, const uint8_t (*ids)[32], uint32_t n)
{
    if (sid == 0 || n > MSG_BULK_MAX || (n > 0 && ids == NULL))
        return PULL_ERR_FIELD;
    for (uint32_t i = 1; i < n; i++)
        if (memcmp(ids[i - 1], ids[i], 32) >= 0)
            return PULL_ERR_FIELD;
    return 0;
}

int
msg_bulk_encode(const struct msg_bulk *b, struct pull_wb *out)
{
    msgpack_packer pk;
    int rc;

    if ((rc = check_bulk(b->sid, b->ids, b->n)) != 0)
        return rc;
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint32(&pk, MSG_RECON_BULK);
    msgpack_pack_uint32(&pk, b->sid);
    mp_pack_bin(&pk, b->n > 0 ? (const void *)b->ids : "", (size_t)b->n * 32);
    return wb_error(out);
}

int
msg_bulk_decode(const uint8_t *p, size_t n, struct msg_bulk *b)
{
    struct pull_rd r;
    uint32_t type, extra, len = 0;
    const uint8_t *ids = NULL;
    uint64_t v;
    int rc;

    memset(b, 0, sizeof(*b));
    if ((rc = open_msg(&r, p, n, 3, &type, &extra)) != 0)
        goto out;
    if (type != MSG_RECON_BULK) {
        rc = PULL_ERR_MALFORMED;
        goto out;
    }
    if ((rc = mp_read_uint_max(&r, UINT32_MAX, &v)) != 0 ||
        (rc = mp_read_bin(&r, MSG_BULK_MAX * 32, &ids, &len)) != 0)
        goto out;
    if (len % 32 != 0) {
        rc = PULL_ERR_FIELD;
        goto out;
    }
    if ((rc = check_bulk((uint32_t)v, (const uint8_t(*)[32])ids, len / 32)) != 0 ||
        (rc = close_msg(&r, extra)) != 0)
        goto out;
    b->sid = (uint32_t)v;
    b->ids = len > 0 ? (const uint8_t(*)[32])ids : NULL;
    b->n = len / 32;
out:
    if (rc != 0)
        memset(b, 0, sizeof(*b));
    return rc;
}

int
msg_have_encode(const struct msg_have *h, struct pull_wb *out)
{
    msgpack_packer pk;

    if (h->sid == 0 || h->n > MSG_HAVE_MAX || (h->n > 0 && h->ids == NULL) ||
        (h->type != MSG_RECON_HAVE && h->type != MSG_RECON_TAKE) ||
        (h->type == MSG_RECON_HAVE && h->n == 0))
        return PULL_ERR_FIELD;
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint32(&pk, h->type);
    msgpack_pack_uint32(&pk, h->sid);
    msgpack_pack_uint32(&pk, h->seq);
    mp_pack_bin(&pk, h->n > 0 ? (const void *)h->ids : "",
                (size_t)h->n * (h->type == MSG_RECON_HAVE ? 32 : MSG_TAKE_PREFIX));
    return wb_error(out);
}

int
msg_have_decode(const uint8_t *p, size_t n, struct msg_have *h)
{
    struct pull_rd r;
    uint32_t type, extra, len = 0, unit;
    const uint8_t *ids = NULL;
    uint64_t sid, seq;
    int rc;

    memset(h, 0, sizeof(*h));
    if ((rc = open_msg(&r, p, n, 4, &type, &extra)) != 0)
        goto out;
    if (type != MSG_RECON_HAVE && type != MSG_RECON_TAKE) {
        rc = PULL_ERR_MALFORMED;
        goto out;
    }
    unit = type == MSG_RECON_HAVE ? 32 : MSG_TAKE_PREFIX;
    if ((rc = mp_read_uint_max(&r, UINT32_MAX, &sid)) != 0 ||
        (rc = mp_read_uint_max(&r, UINT32_MAX, &seq)) != 0 ||
        (rc = mp_read_bin(&r, MSG_HAVE_MAX * unit, &ids, &len)) != 0)
        goto out;
    if (sid == 0 || len % unit != 0 || (type == MSG_RECON_HAVE && len == 0)) {
        rc = PULL_ERR_FIELD;
        goto out;
    }
    if ((rc = close_msg(&r, extra)) != 0)
        goto out;
    h->type = type;
    h->sid = (uint32_t)sid;
    h->seq = (uint32_t)seq;
    h->ids = ids;
    h->n = len / unit;
out:
    if (rc != 0)
        memset(h, 0, sizeof(*h));
    return rc;
}
