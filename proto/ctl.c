#include "proto/ctl.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/mp.h"

/* ---- Framing ----------------------------------------------------------------------- */

/* Above this, a reader's buffer is given back once its message has been consumed, so one
 * large import doesn't pin megabytes for the life of a connection. */
#define CTL_KEEP_BUFFER (256u << 10)

void
ctl_reader_init(struct ctl_reader *r, size_t max)
{
    memset(r, 0, sizeof(*r));
    r->max = max;
    wb_init(&r->body, max);
}

void
ctl_reader_release(struct ctl_reader *r)
{
    wb_release(&r->body);
    memset(r, 0, sizeof(*r));
}

int
ctl_reader_feed(struct ctl_reader *r, const void *p, size_t n, size_t *used)
{
    const uint8_t *b = p;
    size_t i = 0, take;

    *used = 0;
    if (r->err != 0)
        return r->err;
    if (r->ready)
        return 0; /* pop first */
    while (i < n && r->hdr_have < 4)
        r->hdr[r->hdr_have++] = b[i++];
    if (r->hdr_have < 4) {
        *used = i;
        return 0;
    }
    if (r->want == 0) {
        /* The length is complete: check it before buffering a single body byte. */
        uint32_t len = be32dec(r->hdr);
        if (len == 0) {
            r->err = PULL_ERR_MALFORMED;
            return r->err;
        }
        if (len > r->max) {
            r->err = PULL_ERR_TOO_BIG;
            return r->err;
        }
        if (r->body.cap > CTL_KEEP_BUFFER && len <= CTL_KEEP_BUFFER)
            wb_release(&r->body);
        wb_reset(&r->body);
        r->body.max = len;
        r->want = len;
    }
    take = n - i;
    if (take > r->want - r->body.len)
        take = r->want - r->body.len;
    if (take > 0 && wb_put(&r->body, b + i, take) != 0) {
        r->err = PULL_ERR_NOMEM;
        return r->err;
    }
    i += take;
    if (r->body.len == r->want)
        r->ready = true;
    *used = i;
    return 0;
}

int
ctl_reader_pop(struct ctl_reader *r, const uint8_t **msg, size_t *len)
{
    *msg = NULL;
    *len = 0;
    if (r->err != 0 || !r->ready)
        return 0;
    *msg = r->body.p;
    *len = r->body.len;
    r->ready = false;
    r->hdr_have = 0;
    r->want = 0;
    /* body keeps the bytes until the next message's length is complete. */
    return 1;
}

size_t
ctl_frame_begin(struct pull_wb *out)
{
    size_t start = out->len;
    static const uint8_t zero[4];

    wb_put(out, zero, sizeof(zero));
    return start;
}

int
ctl_frame_end(struct pull_wb *out, size_t start, size_t max)
{
    int rc = wb_error(out);
    size_t len;

    if (rc == 0 && (out->len < start + 4 || (len = out->len - start - 4) == 0 || len > max))
        rc = PULL_ERR_TOO_BIG;
    if (rc != 0) {
        if (out->len > start)
            out->len = start;
        out->err = 0;
        return rc;
    }
    be32enc(out->p + start, (uint32_t)len);
    return 0;
}

/* ---- Encoding ---------------------------------------------------------------------- */

/* The heads' maps are closed once their last key is packed: the count doesn't depend on
 * the value that follows (args, result). */
void
ctl_pack_request_head(msgpack_packer *pk, const char *cmd, uint64_t seq)
{
    struct mp_open m;

    mp_open_map(&m, pk);
    mp_kv_str(&m, "cmd", cmd);
    mp_kv_uint(&m, "seq", seq);
    mp_key(&m, "args");
    mp_close(&m);
}

/* Copies msg into out (CTL_MSG_MAX + 1 bytes) as one clean line: cut at a UTF-8 boundary,
 * control characters turned into spaces, invalid UTF-8 turned into '?'. */
static size_t
clean_msg(const char *msg, char *out)
{
    size_t n = msg != NULL ? strlen(msg) : 0;

    if (n > CTL_MSG_MAX) {
        n = CTL_MSG_MAX;
        while (n > 0 && ((uint8_t)msg[n] & 0xc0) == 0x80)
            n--;
    }
    if (n > 0)
        memcpy(out, msg, n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if ((uint8_t)out[i] < 0x20 || out[i] == 0x7f)
            out[i] = ' ';
    }
    if (!utf8_valid(out, n)) {
        for (size_t i = 0; i < n; i++) {
            if ((uint8_t)out[i] >= 0x80)
                out[i] = '?';
        }
    }
    return n;
}

void
ctl_pack_reply_head(msgpack_packer *pk, uint64_t seq, int err, const char *msg, bool more)
{
    char clean[CTL_MSG_MAX + 1];
    size_t n = clean_msg(msg, clean);
    struct mp_open m;

    mp_open_map(&m, pk);
    mp_kv_uint(&m, "seq", seq);
    mp_kv_int(&m, "err", err);
    mp_pack_str(mp_key(&m, "msg"), clean, n);
    mp_kv_bool(&m, "more", more);
    mp_key(&m, "result");
    mp_close(&m);
}

int
ctl_reply_error(struct pull_wb *out, uint64_t seq, int err, const char *msg)
{
    msgpack_packer pk;
    size_t start = ctl_frame_begin(out);

    mp_packer_init(&pk, out);
    ctl_pack_reply_head(&pk, seq, err, msg != NULL ? msg : pull_strerror(err), false);
    msgpack_pack_nil(&pk);
    return ctl_frame_end(out, start, CTL_REPLY_MAX);
}

/* ---- Validation -------------------------------------------------------------------- */

static int check_value(struct pull_rd *r, unsigned depth);

static int
check_map(struct pull_rd *r, unsigned depth)
{
    struct {
        const char *p;
        uint32_t n;
    } keys[CTL_MAP_MAX];
    uint32_t n;
    int rc;

    if ((rc = mp_read_map(r, &n)) != 0)
        return rc;
    if (n > CTL_MAP_MAX)
        return PULL_ERR_TOO_BIG;
    for (uint32_t i = 0; i < n; i++) {
        if (mp_peek(r) != MP_STR)
            return rd_left(r) == 0 ? PULL_ERR_TRUNCATED : PULL_ERR_FIELD;
        if ((rc = mp_read_str(r, CTL_KEY_MAX, &keys[i].p, &keys[i].n)) != 0)
            return rc;
        for (uint32_t j = 0; j < i; j++) {
            if (keys[j].n == keys[i].n && memcmp(keys[j].p, keys[i].p, keys[i].n) == 0)
                return PULL_ERR_FIELD; /* duplicate key */
        }
        if ((rc = check_value(r, depth + 1)) != 0)
            return rc;
    }
    return 0;
}

static int
check_value(struct pull_rd *r, unsigned depth)
{
    const uint8_t *q;
    uint32_t n;
    int rc;

    if (depth > CTL_MAX_DEPTH)
        return PULL_ERR_DEPTH;
    switch (mp_peek(r)) {
    case MP_MAP:
        return check_map(r, depth);
    case MP_ARRAY:
        if ((rc = mp_read_array(r, &n)) != 0)
            return rc;
        for (uint32_t i = 0; i < n; i++) {
            if ((rc = check_value(r, depth + 1)) != 0)
                return rc;
        }
        return 0;
    case MP_FLOAT:
        /* 0xca: float32, 0xcb: float64. Only the bounds matter here. */
        return rd_bytes(r, r->p[r->off] == 0xca ? 5 : 9, &q);
    case MP_NIL:
    case MP_BOOL:
    case MP_UINT:
    case MP_NINT:
    case MP_STR:
    case MP_BIN:
        return mp_skip(r);
    case MP_EXT:
        return PULL_ERR_MALFORMED;
    case MP_INVALID:
        break;
    }
    return rd_left(r) == 0 ? PULL_ERR_TRUNCATED : PULL_ERR_MALFORMED;
}

int
ctl_value_check(struct pull_rd *r, unsigned depth)
{
    struct pull_rd save = *r;
    int rc;

    if ((rc = check_value(r, depth)) != 0)
        *r = save;
    return rc;
}

/* Skips a value that was already checked. */
static int
skip_checked(struct pull_rd *r)
{
    return check_value(r, 1);
}

int
ctl_map_find(const struct pull_rd *r, const char *key, struct pull_rd *val)
{
    struct pull_rd w = *r;
    size_t klen = strlen(key);
    const char *k;
    uint32_t n, kn;
    int rc;

    memset(val, 0, sizeof(*val));
    if ((rc = mp_read_map(&w, &n)) != 0)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = mp_read_str(&w, CTL_KEY_MAX, &k, &kn)) != 0)
            return rc;
        if (kn == klen && memcmp(k, key, klen) == 0) {
            *val = w;
            return 0;
        }
        if ((rc = skip_checked(&w)) != 0)
            return rc;
    }
    return PULL_ERR_NOT_FOUND;
}

/* ---- Requests ---------------------------------------------------------------------- */

static bool
key_is(const char *k, uint32_t kn, const char *want)
{
    return kn == strlen(want) && memcmp(k, want, kn) == 0;
}

static bool
cmd_name_ok(const char *s, uint32_t n)
{
    if (n == 0 || n > CTL_CMD_MAX)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Best effort after a failed decode: find a uint "seq" among the leading, well-formed
 * entries of the top map, so the error reply can carry it. */
static void
peek_seq(const uint8_t *p, size_t n, uint64_t *seq, bool *has)
{
    struct pull_rd r;
    const char *k;
    uint32_t count, kn;

    rd_init(&r, p, n);
    if (mp_read_map(&r, &count) != 0)
        return;
    for (uint32_t i = 0; i < count; i++) {
        if (mp_read_str(&r, CTL_KEY_MAX, &k, &kn) != 0)
            return;
        if (key_is(k, kn, "seq")) {
            if (mp_read_uint(&r, seq) == 0)
                *has = true;
            return;
        }
        if (ctl_value_check(&r, 2) != 0)
            return;
    }
}

static const uint8_t empty_map[1] = {0x80};

int
ctl_request_decode(const uint8_t *p, size_t n, struct ctl_request *req)
{
    struct pull_rd r;
    const char *k, *s;
    uint32_t count, kn, sn;
    bool have_cmd = false;
    int rc;

    memset(req, 0, sizeof(*req));
    req->args = empty_map;
    req->args_len = sizeof(empty_map);
    rd_init(&r, p, n);
    if (mp_peek(&r) != MP_MAP) {
        rc = rd_left(&r) == 0 ? PULL_ERR_TRUNCATED : PULL_ERR_MALFORMED;
        goto out;
    }
    if ((rc = ctl_value_check(&r, 1)) != 0)
        goto out;
    if (rd_left(&r) != 0) {
        rc = PULL_ERR_TRAILING;
        goto out;
    }
    rd_init(&r, p, n);
    if ((rc = mp_read_map(&r, &count)) != 0)
        goto out;
    for (uint32_t i = 0; i < count; i++) {
        if ((rc = mp_read_str(&r, CTL_KEY_MAX, &k, &kn)) != 0)
            goto out;
        if (key_is(k, kn, "cmd")) {
            if (mp_read_str(&r, CTL_CMD_MAX, &s, &sn) != 0 || !cmd_name_ok(s, sn)) {
                rc = PULL_ERR_FIELD;
                goto out;
            }
            memcpy(req->cmd, s, sn);
            req->cmd[sn] = '\0';
            have_cmd = true;
        } else if (key_is(k, kn, "seq")) {
            if (mp_read_uint(&r, &req->seq) != 0) {
                rc = PULL_ERR_FIELD;
                goto out;
            }
            req->has_seq = true;
        } else if (key_is(k, kn, "args")) {
            if (mp_peek(&r) == MP_NIL) {
                (void)mp_read_nil(&r);
                continue;
            }
            if (mp_peek(&r) != MP_MAP) {
                rc = PULL_ERR_FIELD;
                goto out;
            }
            req->args = r.p + r.off;
            {
                struct pull_rd a = r;
                if ((rc = mp_read_map(&a, &req->nargs)) != 0)
                    goto out;
            }
            if (req->nargs > CTL_ARGS_MAX) {
                rc = PULL_ERR_TOO_BIG;
                goto out;
            }
            if ((rc = skip_checked(&r)) != 0)
                goto out;
            req->args_len = (size_t)(r.p + r.off - req->args);
        } else if ((rc = skip_checked(&r)) != 0) {
            goto out;
        }
    }
    if (!have_cmd || !req->has_seq)
        rc = PULL_ERR_FIELD;
out:
    if (rc != 0) {
        uint64_t seq = req->seq;
        bool has = req->has_seq;
        memset(req, 0, sizeof(*req));
        req->args = empty_map;
        req->args_len = sizeof(empty_map);
        if (!has)
            peek_seq(p, n, &seq, &has);
        req->seq = has ? seq : 0;
        req->has_seq = has;
    }
    return rc;
}

int
ctl_arg_raw(const struct ctl_request *req, const char *key, struct pull_rd *val)
{
    struct pull_rd r;

    rd_init(&r, req->args, req->args_len);
    return ctl_map_find(&r, key, val);
}

/* Finds a non-nil arg. */
static int
arg_find(const struct ctl_request *req, const char *key, struct pull_rd *val)
{
    int rc;

    if ((rc = ctl_arg_raw(req, key, val)) != 0)
        return rc;
    if (mp_peek(val) == MP_NIL)
        return PULL_ERR_NOT_FOUND;
    return 0;
}

/* Copies a str read from r into out. */
static int
copy_str(struct pull_rd *r, uint32_t max, char *out, size_t outsz)
{
    const char *s;
    uint32_t n;

    if (outsz == 0 || max >= outsz)
        return PULL_ERR_INVAL;
    out[0] = '\0';
    if (mp_read_str(r, max, &s, &n) != 0 || memchr(s, '\0', n) != NULL)
        return PULL_ERR_FIELD;
    if (n > 0)
        memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

int
ctl_arg_str(const struct ctl_request *req, const char *key, uint32_t max, char *out, size_t outsz)
{
    struct pull_rd v;
    int rc;

    if (outsz > 0)
        out[0] = '\0';
    if ((rc = arg_find(req, key, &v)) != 0)
        return rc;
    return copy_str(&v, max, out, outsz);
}

int
ctl_arg_uint(const struct ctl_request *req, const char *key, uint64_t max, uint64_t *v)
{
    struct pull_rd r;
    int rc;

    *v = 0;
    if ((rc = arg_find(req, key, &r)) != 0)
        return rc;
    if (mp_read_uint_max(&r, max, v) != 0)
        return PULL_ERR_FIELD;
    return 0;
}

int
ctl_arg_bool(const struct ctl_request *req, const char *key, bool *v)
{
    struct pull_rd r;
    int rc;

    *v = false;
    if ((rc = arg_find(req, key, &r)) != 0)
        return rc;
    if (mp_read_bool(&r, v) != 0)
        return PULL_ERR_FIELD;
    return 0;
}

int
ctl_arg_array(const struct ctl_request *req, const char *key, uint32_t max_items,
              struct ctl_array *it)
{
    int rc;

    memset(it, 0, sizeof(*it));
    if ((rc = arg_find(req, key, &it->rd)) != 0)
        return rc;
    if (mp_read_array(&it->rd, &it->n) != 0 || it->n > max_items) {
        memset(it, 0, sizeof(*it));
        return PULL_ERR_FIELD;
    }
    return 0;
}

int
ctl_array_next_bin(struct ctl_array *it, uint32_t max, const uint8_t **b, uint32_t *len)
{
    *b = NULL;
    *len = 0;
    if (it->i >= it->n)
        return 0;
    if (mp_read_bin(&it->rd, max, b, len) != 0)
        return PULL_ERR_FIELD;
    it->i++;
    return 1;
}

int
ctl_array_next_str(struct ctl_array *it, uint32_t max, const char **s, uint32_t *len)
{
    *s = NULL;
    *len = 0;
    if (it->i >= it->n)
        return 0;
    if (mp_read_str(&it->rd, max, s, len) != 0)
        return PULL_ERR_FIELD;
    it->i++;
    return 1;
}

int
ctl_arg_strs(const struct ctl_request *req, const char *key, uint32_t max_items, uint32_t item_max,
             char *out, size_t stride, uint32_t *count)
{
    struct ctl_array it;
    int rc;

    *count = 0;
    if (item_max >= stride)
        return PULL_ERR_INVAL;
    if ((rc = ctl_arg_array(req, key, max_items, &it)) != 0)
        return rc;
    for (uint32_t i = 0; i < it.n; i++) {
        if ((rc = copy_str(&it.rd, item_max, out + (size_t)i * stride, stride)) != 0) {
            *count = 0;
            return rc;
        }
    }
    *count = it.n;
    return 0;
}

/* ---- Replies ----------------------------------------------------------------------- */

static const uint8_t nil_value[1] = {0xc0};

int
ctl_reply_decode(const uint8_t *p, size_t n, struct ctl_reply *rep)
{
    struct pull_rd r;
    const char *k, *s;
    uint32_t count, kn, sn;
    bool have_seq = false, have_err = false;
    int64_t e;
    int rc;

    memset(rep, 0, sizeof(*rep));
    rep->result = nil_value;
    rep->result_len = sizeof(nil_value);
    rd_init(&r, p, n);
    if (mp_peek(&r) != MP_MAP) {
        rc = rd_left(&r) == 0 ? PULL_ERR_TRUNCATED : PULL_ERR_MALFORMED;
        goto out;
    }
    if ((rc = ctl_value_check(&r, 1)) != 0)
        goto out;
    if (rd_left(&r) != 0) {
        rc = PULL_ERR_TRAILING;
        goto out;
    }
    rd_init(&r, p, n);
    if ((rc = mp_read_map(&r, &count)) != 0)
        goto out;
    for (uint32_t i = 0; i < count; i++) {
        if ((rc = mp_read_str(&r, CTL_KEY_MAX, &k, &kn)) != 0)
            goto out;
        if (key_is(k, kn, "seq")) {
            if (mp_read_uint(&r, &rep->seq) != 0) {
                rc = PULL_ERR_FIELD;
                goto out;
            }
            have_seq = true;
        } else if (key_is(k, kn, "err")) {
            if (mp_read_int(&r, &e) != 0 || e > 0 || e < INT_MIN) {
                rc = PULL_ERR_FIELD;
                goto out;
            }
            rep->err = (int)e;
            have_err = true;
        } else if (key_is(k, kn, "msg")) {
            if (mp_read_str(&r, CTL_MSG_MAX, &s, &sn) != 0) {
                rc = PULL_ERR_FIELD;
                goto out;
            }
            memcpy(rep->msg, s, sn);
            rep->msg[sn] = '\0';
        } else if (key_is(k, kn, "more")) {
            if (mp_read_bool(&r, &rep->more) != 0) {
                rc = PULL_ERR_FIELD;
                goto out;
            }
        } else if (key_is(k, kn, "result")) {
            rep->result = r.p + r.off;
            if ((rc = skip_checked(&r)) != 0)
                goto out;
            rep->result_len = (size_t)(r.p + r.off - rep->result);
        } else if ((rc = skip_checked(&r)) != 0) {
            goto out;
        }
    }
    if (!have_seq || !have_err)
        rc = PULL_ERR_FIELD;
out:
    if (rc != 0) {
        memset(rep, 0, sizeof(*rep));
        rep->result = nil_value;
        rep->result_len = sizeof(nil_value);
    }
    return rc;
}

/* ---- Command table ----------------------------------------------------------------- */

const struct ctl_command *
ctl_command_find(const struct ctl_command *table, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    }
    return NULL;
}

int
ctl_command_lookup(const struct ctl_command *table, size_t n, const struct ctl_request *req,
                   const struct ctl_command **cmd, const char **missing, char *msg, size_t msgsz)
{
    const struct ctl_command *c;
    struct pull_rd v;

    *cmd = NULL;
    if (missing != NULL)
        *missing = NULL;
    if (msg != NULL && msgsz > 0)
        msg[0] = '\0';
    if ((c = ctl_command_find(table, n, req->cmd)) == NULL) {
        if (msg != NULL && msgsz > 0)
            snprintf(msg, msgsz, "unknown command '%s'", req->cmd);
        return PULL_ERR_UNKNOWN_CMD;
    }
    for (size_t i = 0; i < CTL_REQUIRED_MAX && c->required[i] != NULL; i++) {
        if (ctl_arg_raw(req, c->required[i], &v) != 0 || mp_peek(&v) == MP_NIL) {
            if (missing != NULL)
                *missing = c->required[i];
            if (msg != NULL && msgsz > 0)
                snprintf(msg, msgsz, "missing argument '%s'", c->required[i]);
            return PULL_ERR_ARITY;
        }
    }
    *cmd = c;
    return 0;
}
