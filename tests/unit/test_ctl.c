/* Tests of the control protocol (proto/ctl.h): framing, request/reply round trips, hostile
 * inputs, typed args and the command table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/mp.h"
#include "proto/ctl.h"
#include "testutil.h"

/* Builds a framed request with a few args of every kind the protocol uses. */
static void
build_request(struct pull_wb *w, uint64_t seq)
{
    msgpack_packer pk;
    size_t start = ctl_frame_begin(w);
    static const uint8_t env1[3] = {1, 2, 3};

    mp_packer_init(&pk, w);
    ctl_pack_request_head(&pk, "record.add", seq);
    msgpack_pack_map(&pk, 6);
    mp_pack_cstr(&pk, "title");
    mp_pack_cstr(&pk, "Rust mentoring \xc3\xa9t\xc3\xa9");
    mp_pack_cstr(&pk, "expires_s");
    msgpack_pack_uint64(&pk, 86400);
    mp_pack_cstr(&pk, "mine");
    msgpack_pack_true(&pk);
    mp_pack_cstr(&pk, "tags");
    msgpack_pack_array(&pk, 2);
    mp_pack_cstr(&pk, "rust");
    mp_pack_cstr(&pk, "mentoring");
    mp_pack_cstr(&pk, "envelopes");
    msgpack_pack_array(&pk, 2);
    mp_pack_bin(&pk, env1, sizeof(env1));
    mp_pack_bin(&pk, "", 0);
    mp_pack_cstr(&pk, "body");
    msgpack_pack_nil(&pk);
    assert_int_equal(ctl_frame_end(w, start, CTL_REQUEST_MAX), 0);
}

static void
test_request_roundtrip(void **state)
{
    struct pull_wb w;
    struct ctl_reader rd;
    struct ctl_request req;
    const uint8_t *msg, *b;
    size_t len, used;
    char title[121], tags[4][33], s[8];
    uint64_t u;
    bool flag;
    uint32_t count, blen;
    struct ctl_array it;
    (void)state;

    wb_init(&w, 0);
    build_request(&w, 7);
    assert_int_equal(be32dec(w.p), w.len - 4);

    /* Feed one byte at a time: the message appears exactly when its last byte is in. */
    ctl_reader_init(&rd, CTL_REQUEST_MAX);
    for (size_t i = 0; i < w.len; i++) {
        assert_int_equal(ctl_reader_pop(&rd, &msg, &len), 0);
        assert_int_equal(ctl_reader_feed(&rd, w.p + i, 1, &used), 0);
        assert_int_equal(used, 1);
    }
    assert_int_equal(ctl_reader_pop(&rd, &msg, &len), 1);
    assert_int_equal(len, w.len - 4);
    assert_memory_equal(msg, w.p + 4, len);

    assert_int_equal(ctl_request_decode(msg, len, &req), 0);
    assert_string_equal(req.cmd, "record.add");
    assert_int_equal(req.seq, 7);
    assert_true(req.has_seq);
    assert_int_equal(req.nargs, 6);

    assert_int_equal(ctl_arg_str(&req, "title", 120, title, sizeof(title)), 0);
    assert_string_equal(title, "Rust mentoring \xc3\xa9t\xc3\xa9");
    assert_int_equal(ctl_arg_str(&req, "title", 5, s, sizeof(s)), PULL_ERR_FIELD);
    assert_int_equal(ctl_arg_uint(&req, "expires_s", 90 * 86400, &u), 0);
    assert_int_equal(u, 86400);
    assert_int_equal(ctl_arg_uint(&req, "expires_s", 3600, &u), PULL_ERR_FIELD);
    assert_int_equal(ctl_arg_bool(&req, "mine", &flag), 0);
    assert_true(flag);
    assert_int_equal(ctl_arg_strs(&req, "tags", 16, 32, &tags[0][0], sizeof(tags[0]), &count), 0);
    assert_int_equal(count, 2);
    assert_string_equal(tags[0], "rust");
    assert_string_equal(tags[1], "mentoring");
    assert_int_equal(ctl_arg_strs(&req, "tags", 1, 32, &tags[0][0], sizeof(tags[0]), &count),
                     PULL_ERR_FIELD);
    assert_int_equal(ctl_arg_strs(&req, "tags", 16, 5, &tags[0][0], sizeof(tags[0]), &count),
                     PULL_ERR_FIELD);
    assert_int_equal(count, 0);

    assert_int_equal(ctl_arg_array(&req, "envelopes", 256, &it), 0);
    assert_int_equal(it.n, 2);
    assert_int_equal(ctl_array_next_bin(&it, 4200, &b, &blen), 1);
    assert_int_equal(blen, 3);
    assert_int_equal(b[2], 3);
    assert_int_equal(ctl_array_next_bin(&it, 4200, &b, &blen), 1);
    assert_int_equal(blen, 0);
    assert_int_equal(ctl_array_next_bin(&it, 4200, &b, &blen), 0);
    /* Strings are not bins. */
    assert_int_equal(ctl_arg_array(&req, "tags", 256, &it), 0);
    assert_int_equal(ctl_array_next_bin(&it, 4200, &b, &blen), PULL_ERR_FIELD);

    /* Absent, nil, wrong type. */
    assert_int_equal(ctl_arg_str(&req, "nope", 7, s, sizeof(s)), PULL_ERR_NOT_FOUND);
    assert_int_equal(ctl_arg_str(&req, "body", 7, s, sizeof(s)), PULL_ERR_NOT_FOUND);
    assert_int_equal(ctl_arg_uint(&req, "title", 10, &u), PULL_ERR_FIELD);
    assert_int_equal(ctl_arg_bool(&req, "expires_s", &flag), PULL_ERR_FIELD);
    assert_int_equal(ctl_arg_str(&req, "tags", 7, s, sizeof(s)), PULL_ERR_FIELD);
    assert_int_equal(ctl_arg_array(&req, "title", 10, &it), PULL_ERR_FIELD);

    ctl_reader_release(&rd);
    wb_release(&w);
}

static void
test_request_truncated_everywhere(void **state)
{
    struct pull_wb w;
    struct ctl_request req;
    uint8_t *copy;
    (void)state;

    wb_init(&w, 0);
    build_request(&w, 300);
    for (size_t i = 0; i < w.len - 4; i++) {
        /* A fresh heap copy of exactly i bytes so ASan catches any overread. */
        copy = malloc(i + 1);
        assert_non_null(copy);
        memcpy(copy, w.p + 4, i);
        assert_int_not_equal(ctl_request_decode(copy, i, &req), 0);
        assert_string_equal(req.cmd, "");
        free(copy);
    }
    wb_release(&w);
}

static size_t
pack_reply(struct pull_wb *w, uint64_t seq, int err, const char *msg, bool more, int kind)
{
    msgpack_packer pk;
    size_t start = ctl_frame_begin(w);

    mp_packer_init(&pk, w);
    ctl_pack_reply_head(&pk, seq, err, msg, more);
    if (kind == 0) {
        msgpack_pack_nil(&pk);
    } else {
        msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, 3);
        mp_pack_cstr(&pk, "id");
        mp_pack_cstr(&pk, "abcdef");
        mp_pack_cstr(&pk, "score");
        msgpack_pack_double(&pk, 1.5);
        mp_pack_cstr(&pk, "tags");
        msgpack_pack_array(&pk, 0);
    }
    assert_int_equal(ctl_frame_end(w, start, CTL_REPLY_MAX), 0);
    return start;
}

static void
test_reply_roundtrip(void **state)
{
    struct pull_wb w;
    struct ctl_reply rep;
    struct pull_rd r, v;
    uint32_t n;
    (void)state;

    wb_init(&w, 0);
    pack_reply(&w, 9, 0, NULL, true, 1);
    assert_int_equal(ctl_reply_decode(w.p + 4, w.len - 4, &rep), 0);
    assert_int_equal(rep.seq, 9);
    assert_int_equal(rep.err, 0);
    assert_true(rep.more);
    assert_string_equal(rep.msg, "");
    rd_init(&r, rep.result, rep.result_len);
    assert_int_equal(mp_read_array(&r, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ctl_map_find(&r, "tags", &v), 0);
    assert_int_equal(mp_peek(&v), MP_ARRAY);
    assert_int_equal(ctl_map_find(&r, "nope", &v), PULL_ERR_NOT_FOUND);

    for (size_t i = 0; i < w.len - 4; i++)
        assert_int_not_equal(ctl_reply_decode(w.p + 4, i, &rep), 0);

    /* Error reply with the default message. */
    wb_reset(&w);
    assert_int_equal(ctl_reply_error(&w, 3, PULL_ERR_AMBIGUOUS, NULL), 0);
    assert_int_equal(ctl_reply_decode(w.p + 4, w.len - 4, &rep), 0);
    assert_int_equal(rep.err, PULL_ERR_AMBIGUOUS);
    assert_string_equal(rep.msg, pull_strerror(PULL_ERR_AMBIGUOUS));
    assert_false(rep.more);
    assert_int_equal(rep.result_len, 1);
    assert_int_equal(rep.result[0], 0xc0);

    /* Messages are made one clean line. */
    wb_reset(&w);
    assert_int_equal(ctl_reply_error(&w, 3, PULL_ERR_TITLE, "bad\ntitle\x1b[31m"), 0);
    assert_int_equal(ctl_reply_decode(w.p + 4, w.len - 4, &rep), 0);
    assert_string_equal(rep.msg, "bad title [31m");

    /* A long message is cut at a UTF-8 boundary. */
    {
        char big[CTL_MSG_MAX * 2 + 1];
        /* "x" then 2-byte characters: byte CTL_MSG_MAX falls inside a character. */
        big[0] = 'x';
        for (size_t i = 0; i < CTL_MSG_MAX - 1; i++) {
            big[1 + 2 * i] = (char)0xc3;
            big[2 + 2 * i] = (char)0xa9;
        }
        big[2 * CTL_MSG_MAX - 1] = '\0';
        wb_reset(&w);
        assert_int_equal(ctl_reply_error(&w, 1, PULL_ERR_BODY, big), 0);
        assert_int_equal(ctl_reply_decode(w.p + 4, w.len - 4, &rep), 0);
        assert_true(strlen(rep.msg) <= CTL_MSG_MAX);
        assert_true(strlen(rep.msg) >= CTL_MSG_MAX - 1);
        assert_true(utf8_valid(rep.msg, strlen(rep.msg)));
    }
    wb_release(&w);
}

static void
test_reader_limits(void **state)
{
    struct ctl_reader rd;
    const uint8_t *msg;
    size_t len, used;
    uint8_t hdr[8];
    (void)state;

    /* A huge declared length is refused as soon as the 4 length bytes are in. */
    ctl_reader_init(&rd, CTL_REQUEST_MAX);
    memcpy(hdr, "\xff\xff\xff\xff\x80\x80\x80\x80", 8);
    assert_int_equal(ctl_reader_feed(&rd, hdr, 8, &used), PULL_ERR_TOO_BIG);
    assert_int_equal(rd.body.cap, 0);
    assert_int_equal(rd.body.len, 0);
    assert_int_equal(ctl_reader_feed(&rd, hdr, 1, &used), PULL_ERR_TOO_BIG);
    assert_int_equal(ctl_reader_pop(&rd, &msg, &len), 0);
    ctl_reader_release(&rd);

    /* One over the maximum is refused, the maximum itself accepted, and memory follows the
     * bytes received, not the declared length. */
    ctl_reader_init(&rd, CTL_REQUEST_MAX);
    be32enc(hdr, CTL_REQUEST_MAX + 1);
    assert_int_equal(ctl_reader_feed(&rd, hdr, 4, &used), PULL_ERR_TOO_BIG);
    ctl_reader_release(&rd);
    ctl_reader_init(&rd, CTL_REQUEST_MAX);
    be32enc(hdr, CTL_REQUEST_MAX);
    hdr[4] = 0x80;
    assert_int_equal(ctl_reader_feed(&rd, hdr, 5, &used), 0);
    assert_int_equal(used, 5);
    assert_true(rd.body.cap < 4096);
    assert_int_equal(ctl_reader_pop(&rd, &msg, &len), 0);
    ctl_reader_release(&rd);

    /* Zero length. */
    ctl_reader_init(&rd, CTL_REQUEST_MAX);
    memset(hdr, 0, 4);
    assert_int_equal(ctl_reader_feed(&rd, hdr, 4, &used), PULL_ERR_MALFORMED);
    ctl_reader_release(&rd);
}

static void
test_reader_two_messages(void **state)
{
    struct pull_wb w;
    struct ctl_reader rd;
    struct ctl_request req;
    const uint8_t *msg;
    size_t len, used, off = 0;
    int got = 0;
    (void)state;

    wb_init(&w, 0);
    build_request(&w, 1);
    build_request(&w, 2);
    build_request(&w, 3);
    ctl_reader_init(&rd, CTL_REQUEST_MAX);
    while (off < w.len) {
        assert_int_equal(ctl_reader_feed(&rd, w.p + off, w.len - off, &used), 0);
        off += used;
        while (ctl_reader_pop(&rd, &msg, &len) == 1) {
            assert_int_equal(ctl_request_decode(msg, len, &req), 0);
            assert_int_equal(req.seq, (uint64_t)++got);
        }
        /* Feeding stops after each message until it is popped. */
        assert_int_equal(ctl_reader_feed(&rd, w.p + off, 0, &used), 0);
    }
    assert_int_equal(got, 3);
    ctl_reader_release(&rd);
    wb_release(&w);
}

/* Decodes hex into req from a heap copy of exactly its size (so ASan sees any overread).
 * req points into the copy, which lives until the next call. */
static int
decode_hex(const char *hex, struct ctl_request *req)
{
    static uint8_t *copy;
    uint8_t b[256];
    size_t n = tu_hex(hex, b, sizeof(b));

    free(copy);
    copy = malloc(n + 1);
    assert_non_null(copy);
    memcpy(copy, b, n);
    return ctl_request_decode(copy, n, req);
}

static void
test_request_hostile(void **state)
{
    struct ctl_request req;
    (void)state;

    /* {"cmd":"id","seq":1} is a fine request with no args. */
    assert_int_equal(decode_hex("82 a3 636d64 a2 6964 a3 736571 01", &req), 0);
    assert_string_equal(req.cmd, "id");
    assert_int_equal(req.nargs, 0);
    /* ... args nil is the same as none. */
    assert_int_equal(decode_hex("83 a3 636d64 a2 6964 a3 736571 01 a4 61726773 c0", &req), 0);
    /* Unknown top-level keys are ignored. */
    assert_int_equal(decode_hex("83 a3 636d64 a2 6964 a3 736571 01 a1 78 93 01 02 03", &req), 0);
    /* Not a map; empty. */
    assert_int_equal(decode_hex("92 01 02", &req), PULL_ERR_MALFORMED);
    assert_int_equal(decode_hex("", &req), PULL_ERR_TRUNCATED);
    /* Missing cmd, missing seq. */
    assert_int_equal(decode_hex("81 a3 736571 01", &req), PULL_ERR_FIELD);
    assert_true(req.has_seq);
    assert_int_equal(req.seq, 1);
    assert_int_equal(decode_hex("81 a3 636d64 a2 6964", &req), PULL_ERR_FIELD);
    assert_false(req.has_seq);
    /* Wrong types. */
    assert_int_equal(decode_hex("82 a3 636d64 01 a3 736571 01", &req), PULL_ERR_FIELD);
    assert_int_equal(decode_hex("82 a3 636d64 a2 6964 a3 736571 a1 31", &req), PULL_ERR_FIELD);
    assert_int_equal(decode_hex("82 a3 636d64 a2 6964 a3 736571 ff", &req), PULL_ERR_FIELD);
    assert_int_equal(decode_hex("83 a3 636d64 a2 6964 a3 736571 01 a4 61726773 90", &req),
                     PULL_ERR_FIELD);
    /* Bad command names: uppercase, space, empty. */
    assert_int_equal(decode_hex("82 a3 636d64 a2 4964 a3 736571 01", &req), PULL_ERR_FIELD);
    assert_int_equal(decode_hex("82 a3 636d64 a2 6920 a3 736571 01", &req), PULL_ERR_FIELD);
    assert_int_equal(decode_hex("82 a3 636d64 a0 a3 736571 01", &req), PULL_ERR_FIELD);
    /* Duplicate key, with the seq still echoed. */
    assert_int_equal(decode_hex("83 a3 736571 05 a3 636d64 a2 6964 a3 636d64 a2 6964", &req),
                     PULL_ERR_FIELD);
    assert_true(req.has_seq);
    assert_int_equal(req.seq, 5);
    /* Map key not a string. */
    assert_int_equal(decode_hex("83 a3 636d64 a2 6964 a3 736571 01 01 01", &req), PULL_ERR_FIELD);
    /* Trailing bytes. */
    assert_int_equal(decode_hex("82 a3 636d64 a2 6964 a3 736571 01 00", &req), PULL_ERR_TRAILING);
    /* Non-canonical seq. */
    assert_int_equal(decode_hex("82 a3 636d64 a2 6964 a3 736571 cd 0005", &req),
                     PULL_ERR_NONCANONICAL);
    /* Huge container headers promising more than exists. */
    assert_int_equal(decode_hex("83 a3 636d64 a2 6964 a3 736571 01 a4 61726773 df ffffffff", &req),
                     PULL_ERR_TRUNCATED);
    assert_int_equal(decode_hex("83 a3 636d64 a2 6964 a3 736571 01 a4 61726773 81 a1 78"
                                " dd ffffffff 01",
                                &req),
                     PULL_ERR_TRUNCATED);
    assert_int_equal(decode_hex("83 a3 636d64 a2 6964 a3 736571 01 a4 61726773 81 a1 78"
                                " c6 ffffffff 01",
                                &req),
                     PULL_ERR_TRUNCATED);
    assert_int_equal(decode_hex("df ffffffff", &req), PULL_ERR_TRUNCATED);
    /* Ext values are refused; floats pass the checker. */
    assert_int_equal(decode_hex("83 a3 636d64 a2 6964 a3 736571 01 a4 61726773 81 a1 78"
                                " d4 01 00",
                                &req),
                     PULL_ERR_MALFORMED);
    assert_int_equal(decode_hex("83 a3 636d64 a2 6964 a3 736571 01 a4 61726773 81 a1 78"
                                " ca 3f800000",
                                &req),
                     0);
    /* Invalid UTF-8 in a string value. */
    assert_int_equal(decode_hex("83 a3 636d64 a2 6964 a3 736571 01 a4 61726773 81 a1 78"
                                " a2 c3 28",
                                &req),
                     PULL_ERR_UTF8);
    /* A NUL inside a str arg is refused by the getter. */
    {
        char s[8];
        assert_int_equal(decode_hex("83 a3 636d64 a2 6964 a3 736571 01 a4 61726773 81 a1 78"
                                    " a3 61 00 62",
                                    &req),
                         0);
        assert_int_equal(ctl_arg_str(&req, "x", 7, s, sizeof(s)), PULL_ERR_FIELD);
    }
}

static void
test_depth_and_width(void **state)
{
    struct pull_wb w;
    struct ctl_request req;
    msgpack_packer pk;
    (void)state;

    /* Nesting deeper than CTL_MAX_DEPTH in args. */
    wb_init(&w, 0);
    mp_packer_init(&pk, &w);
    ctl_pack_request_head(&pk, "x", 1);
    msgpack_pack_map(&pk, 1);
    mp_pack_cstr(&pk, "deep");
    for (int i = 0; i < CTL_MAX_DEPTH; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    assert_int_equal(ctl_request_decode(w.p, w.len, &req), PULL_ERR_DEPTH);
    assert_true(req.has_seq);

    /* Nesting up to the limit is fine. */
    wb_reset(&w);
    ctl_pack_request_head(&pk, "x", 1);
    msgpack_pack_map(&pk, 1);
    mp_pack_cstr(&pk, "deep");
    for (int i = 0; i < CTL_MAX_DEPTH - 3; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    assert_int_equal(ctl_request_decode(w.p, w.len, &req), 0);

    /* Too many args. */
    wb_reset(&w);
    ctl_pack_request_head(&pk, "x", 1);
    msgpack_pack_map(&pk, CTL_ARGS_MAX + 1);
    for (int i = 0; i <= CTL_ARGS_MAX; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%d", i);
        mp_pack_cstr(&pk, k);
        msgpack_pack_nil(&pk);
    }
    assert_int_equal(ctl_request_decode(w.p, w.len, &req), PULL_ERR_TOO_BIG);

    /* Too many keys in any map. */
    wb_reset(&w);
    ctl_pack_request_head(&pk, "x", 1);
    msgpack_pack_map(&pk, 1);
    mp_pack_cstr(&pk, "m");
    msgpack_pack_map(&pk, CTL_MAP_MAX + 1);
    for (int i = 0; i <= CTL_MAP_MAX; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%d", i);
        mp_pack_cstr(&pk, k);
        msgpack_pack_nil(&pk);
    }
    assert_int_equal(ctl_request_decode(w.p, w.len, &req), PULL_ERR_TOO_BIG);
    wb_release(&w);
}

static void
test_reply_hostile(void **state)
{
    struct ctl_reply rep;
    uint8_t b[128];
    size_t n;
    (void)state;

    /* {"seq":1,"err":0} is enough. */
    n = tu_hex("82 a3 736571 01 a3 657272 00", b, sizeof(b));
    assert_int_equal(ctl_reply_decode(b, n, &rep), 0);
    assert_int_equal(rep.result[0], 0xc0);
    /* A positive err is refused; err must be there. */
    n = tu_hex("82 a3 736571 01 a3 657272 05", b, sizeof(b));
    assert_int_equal(ctl_reply_decode(b, n, &rep), PULL_ERR_FIELD);
    n = tu_hex("81 a3 736571 01", b, sizeof(b));
    assert_int_equal(ctl_reply_decode(b, n, &rep), PULL_ERR_FIELD);
    /* more must be a bool, msg a str. */
    n = tu_hex("83 a3 736571 01 a3 657272 00 a4 6d6f7265 01", b, sizeof(b));
    assert_int_equal(ctl_reply_decode(b, n, &rep), PULL_ERR_FIELD);
    n = tu_hex("83 a3 736571 01 a3 657272 00 a3 6d7367 01", b, sizeof(b));
    assert_int_equal(ctl_reply_decode(b, n, &rep), PULL_ERR_FIELD);
    /* A negative err decodes. */
    n = tu_hex("82 a3 736571 01 a3 657272 e6", b, sizeof(b));
    assert_int_equal(ctl_reply_decode(b, n, &rep), 0);
    assert_int_equal(rep.err, -26);
}

static int
dummy_handler(struct ctl_call *call, const struct ctl_request *req)
{
    (void)call, (void)req;
    return 0;
}

static void
test_command_table(void **state)
{
    static const struct ctl_command table[] = {
        {"id", dummy_handler, {NULL}, 0},
        {"show", dummy_handler, {"id", NULL}, 0},
        {"connect", dummy_handler, {"address", NULL}, CTL_F_WRITE},
        {"watch", dummy_handler, {NULL}, CTL_F_STREAM},
    };
    const size_t n = sizeof(table) / sizeof(table[0]);
    const struct ctl_command *c;
    const char *missing;
    struct ctl_request req;
    char msg[CTL_MSG_MAX];
    (void)state;

    assert_int_equal(decode_hex("82 a3 636d64 a2 6964 a3 736571 01", &req), 0);
    assert_int_equal(ctl_command_lookup(table, n, &req, &c, &missing, msg, sizeof(msg)), 0);
    assert_ptr_equal(c, &table[0]);

    /* {"cmd":"show","seq":2} without args */
    assert_int_equal(decode_hex("82 a3 636d64 a4 73686f77 a3 736571 02", &req), 0);
    assert_int_equal(ctl_command_lookup(table, n, &req, &c, &missing, msg, sizeof(msg)),
                     PULL_ERR_ARITY);
    assert_null(c);
    assert_string_equal(missing, "id");
    assert_string_equal(msg, "missing argument 'id'");
    /* ... with id nil */
    assert_int_equal(decode_hex("83 a3 636d64 a4 73686f77 a3 736571 02 a4 61726773"
                                " 81 a2 6964 c0",
                                &req),
                     0);
    assert_int_equal(ctl_command_lookup(table, n, &req, &c, &missing, msg, sizeof(msg)),
                     PULL_ERR_ARITY);
    /* ... with id */
    assert_int_equal(decode_hex("83 a3 636d64 a4 73686f77 a3 736571 02 a4 61726773"
                                " 81 a2 6964 a6 616263646566",
                                &req),
                     0);
    assert_int_equal(ctl_command_lookup(table, n, &req, &c, NULL, NULL, 0), 0);
    assert_ptr_equal(c, &table[1]);

    /* unknown */
    assert_int_equal(decode_hex("82 a3 636d64 a4 6e6f7065 a3 736571 02", &req), 0);
    assert_int_equal(ctl_command_lookup(table, n, &req, &c, &missing, msg, sizeof(msg)),
                     PULL_ERR_UNKNOWN_CMD);
    assert_string_equal(msg, "unknown command 'nope'");
    assert_null(ctl_command_find(table, n, "nope"));
    assert_ptr_equal(ctl_command_find(table, n, "watch"), &table[3]);
}

static void
test_frame_end_rollback(void **state)
{
    struct pull_wb w;
    msgpack_packer pk;
    size_t start;
    char big[300];
    (void)state;

    memset(big, 'a', sizeof(big));
    wb_init(&w, 0);
    start = ctl_frame_begin(&w);
    mp_packer_init(&pk, &w);
    mp_pack_str(&pk, big, sizeof(big));
    assert_int_equal(ctl_frame_end(&w, start, 100), PULL_ERR_TOO_BIG);
    assert_int_equal(w.len, 0);
    assert_int_equal(wb_error(&w), 0);
    /* The writer is usable again for an error reply. */
    assert_int_equal(ctl_reply_error(&w, 1, PULL_ERR_TOO_BIG, NULL), 0);
    assert_true(w.len > 4);

    /* A writer that hit its own limit reports it and rolls back too. */
    wb_release(&w);
    wb_init(&w, 64);
    start = ctl_frame_begin(&w);
    mp_pack_str(&pk, big, sizeof(big));
    assert_int_equal(ctl_frame_end(&w, start, CTL_REPLY_MAX), PULL_ERR_TOO_BIG);
    assert_int_equal(w.len, 0);
    assert_int_equal(ctl_reply_error(&w, 1, PULL_ERR_TOO_BIG, "x"), 0);
    wb_release(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_roundtrip),
        cmocka_unit_test(test_request_truncated_everywhere),
        cmocka_unit_test(test_reply_roundtrip),
        cmocka_unit_test(test_reader_limits),
        cmocka_unit_test(test_reader_two_messages),
        cmocka_unit_test(test_request_hostile),
        cmocka_unit_test(test_depth_and_width),
        cmocka_unit_test(test_reply_hostile),
        cmocka_unit_test(test_command_table),
        cmocka_unit_test(test_frame_end_rollback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
