/* Tests of the session messages (proto/msg.h): exact encodings, round trips, version
 * negotiation, evolution rules (extra fields skipped, unknown types reported) and hostile
 * input (truncated, non-canonical, wrong types, oversized, bad text). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "proto/msg.h"
#include "testutil.h"

static size_t
hex(const char *h, uint8_t *out)
{
    return tu_hex(h, out, 1024);
}

static void
test_hello_exact(void **state)
{
    struct msg_hello h, d;
    struct pull_wb w;
    uint8_t want[64];
    size_t n;

    (void)state;
    msg_hello_init(&h, MSG_FEAT_RECON | MSG_FEAT_MAIL, 7450, "pulld/0.1.0");
    assert_int_equal(h.proto_min, 1);
    assert_int_equal(h.proto_max, PULL_PROTO_VERSION);
    wb_init(&w, 0);
    assert_int_equal(msg_hello_encode(&h, &w), 0);
    /* [1, 1, 1, 3, 7450, "pulld/0.1.0"] */
    n = hex("96 01 01 01 03 cd 1d 1a ab 70 75 6c 6c 64 2f 30 2e 31 2e 30", want);
    assert_int_equal(w.len, n);
    assert_memory_equal(w.p, want, n);
    assert_int_equal(msg_hello_decode(w.p, w.len, &d), 0);
    assert_memory_equal(&d, &h, sizeof(h));
    /* with the sender's clock: [1, 1, 1, 3, 7450, "pulld/0.1.0", 1700000000000] */
    h.time_ms = UINT64_C(1700000000000);
    wb_reset(&w);
    assert_int_equal(msg_hello_encode(&h, &w), 0);
    n = hex(
        "97 01 01 01 03 cd 1d 1a ab 70 75 6c 6c 64 2f 30 2e 31 2e 30 cf 00 00 01 8b cf e5 68 00",
        want);
    assert_int_equal(w.len, n);
    assert_memory_equal(w.p, want, n);
    assert_int_equal(msg_hello_decode(w.p, w.len, &d), 0);
    assert_true(d.time_ms == UINT64_C(1700000000000));
    assert_false(d.has_invite);
    /* an invite without a clock or reach: time_ms and reach are written as 0 so that the
     * invite is the 9th */
    h.time_ms = 0;
    h.has_invite = true;
    memset(h.invite, 0xab, sizeof(h.invite));
    wb_reset(&w);
    assert_int_equal(msg_hello_encode(&h, &w), 0);
    n = hex("99 01 01 01 03 cd 1d 1a ab 70 75 6c 6c 64 2f 30 2e 31 2e 30 00 00 c4 10"
            " ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab",
            want);
    assert_int_equal(w.len, n);
    assert_memory_equal(w.p, want, n);
    assert_int_equal(msg_hello_decode(w.p, w.len, &d), 0);
    assert_true(d.has_invite);
    assert_memory_equal(d.invite, h.invite, sizeof(h.invite));
    assert_true(d.time_ms == 0);
    assert_int_equal(d.reach, MSG_REACH_UNSAID);
    /* with reach said too */
    h.reach = MSG_REACH_LOCAL;
    wb_reset(&w);
    assert_int_equal(msg_hello_encode(&h, &w), 0);
    assert_int_equal(msg_hello_decode(w.p, w.len, &d), 0);
    assert_true(d.has_invite);
    assert_int_equal(d.reach, MSG_REACH_LOCAL);
    wb_release(&w);
}

/* reach (PROTOCOL.md 7): a trailing field after time_ms (sent as 0 when only reach is said);
 * older decoders skip it, unknown values read as not said, and msg_hello_dial_port keeps a
 * local-only node from being dialed from a public address. */
static void
test_hello_reach(void **state)
{
    static const struct {
        const char *hex;
        int rc;
        uint8_t reach;
    } cases[] = {
        {"98 01 01 01 00 cd 1d 1a a0 00 02", 0, MSG_REACH_LOCAL},
        {"98 01 01 01 00 cd 1d 1a a0 05 01", 0, MSG_REACH_OPEN},
        /* a value this version doesn't know, a later field after it */
        {"98 01 01 01 00 cd 1d 1a a0 00 07", 0, MSG_REACH_UNSAID},
        {"99 01 01 01 00 cd 1d 1a a0 00 02 c0", 0, MSG_REACH_LOCAL},
        /* of another type: skipped; oversized and non-canonical: refused */
        {"98 01 01 01 00 cd 1d 1a a0 00 a1 78", 0, MSG_REACH_UNSAID},
        {"98 01 01 01 00 cd 1d 1a a0 00 cf ff ff ff ff ff ff ff ff", 0, MSG_REACH_UNSAID},
        {"98 01 01 01 00 cd 1d 1a a0 00 cc 02", PULL_ERR_NONCANONICAL, MSG_REACH_UNSAID},
        /* truncated */
        {"98 01 01 01 00 cd 1d 1a a0 00", PULL_ERR_TRUNCATED, MSG_REACH_UNSAID},
    };
    struct msg_hello h, d;
    struct pull_wb w;
    uint8_t b[64];
    size_t n;

    (void)state;
    msg_hello_init(&h, 0, 7450, "");
    h.reach = MSG_REACH_LOCAL;
    wb_init(&w, 0);
    assert_int_equal(msg_hello_encode(&h, &w), 0);
    n = hex("98 01 01 01 00 cd 1d 1a a0 00 02", b);
    assert_int_equal(w.len, n);
    assert_memory_equal(w.p, b, n);
    assert_int_equal(msg_hello_decode(w.p, w.len, &d), 0);
    assert_memory_equal(&d, &h, sizeof(h));
    /* an older decoder's view: the same bytes with the field cut off are a valid HELLO */
    n = hex("97 01 01 01 00 cd 1d 1a a0 00", b);
    assert_int_equal(msg_hello_decode(b, n, &d), 0);
    assert_int_equal(d.reach, MSG_REACH_UNSAID);
    /* the encoder refuses what the decoder would not give back */
    h.reach = 3;
    wb_reset(&w);
    assert_int_equal(msg_hello_encode(&h, &w), PULL_ERR_FIELD);
    wb_release(&w);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = hex(cases[i].hex, b);
        memset(&d, 0xaa, sizeof(d));
        assert_int_equal(msg_hello_decode(b, n, &d), cases[i].rc);
        assert_int_equal(d.reach, cases[i].reach);
    }
    /* who may dial whom */
    msg_hello_init(&h, 0, 7450, "");
    assert_int_equal(msg_hello_dial_port(&h, true), 7450); /* an older node: as before */
    h.reach = MSG_REACH_OPEN;
    assert_int_equal(msg_hello_dial_port(&h, true), 7450);
    h.reach = MSG_REACH_LOCAL;
    assert_int_equal(msg_hello_dial_port(&h, false), 7450); /* from its own network */
    assert_int_equal(msg_hello_dial_port(&h, true), 0);     /* from outside its NAT */
    msg_hello_init(&h, 0, 0, "");
    h.reach = MSG_REACH_OPEN;
    assert_int_equal(msg_hello_dial_port(&h, true), 0); /* no listener at all */
}

static void
test_hello_fields(void **state)
{
    static const struct {
        const char *hex;
        int rc;
    } cases[] = {
        /* extra fields from a later version are skipped, whatever their type */
        {"98 01 01 02 00 00 a1 61 92 01 02 a1 78", 0},
        {"97 01 01 02 00 00 a0 81 01 c0", 0},
        /* time_ms, then a later field; a time that is not a uint is skipped too */
        {"98 01 01 02 00 00 a0 cd 30 39 c0", 0},
        {"97 01 01 02 00 00 a0 a1 74", 0},
        {"97 01 01 02 00 00 a0 cd 00 05", PULL_ERR_NONCANONICAL},
        /* an invite of the wrong size is skipped like a later field; then more fields */
        {"98 01 01 02 00 00 a0 00 c4 02 01 02", 0},
        {"99 01 01 02 00 00 a0 00 c4 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 c0", 0},
        {"98 01 01 02 00 00 a0 00 c4 05 01", PULL_ERR_TRUNCATED},
        /* trailing bytes after the array */
        {"96 01 01 01 00 00 a0 00", PULL_ERR_TRAILING},
        /* missing fields */
        {"95 01 01 01 00 00", PULL_ERR_MALFORMED},
        {"91 01", PULL_ERR_MALFORMED},
        {"90", PULL_ERR_MALFORMED},
        /* wrong type number */
        {"96 02 01 01 00 00 a0", PULL_ERR_MALFORMED},
        /* versions: zero, out of order, too large */
        {"96 01 00 01 00 00 a0", PULL_ERR_FIELD},
        {"96 01 02 01 00 00 a0", PULL_ERR_FIELD},
        {"96 01 01 cf 00 00 00 01 00 00 00 00 00 00 a0", PULL_ERR_FIELD},
        /* port above 65535 */
        {"96 01 01 01 00 ce 00 01 00 00 a0", PULL_ERR_FIELD},
        /* non-canonical integers */
        {"96 01 cc 01 01 00 00 a0", PULL_ERR_NONCANONICAL},
        {"96 01 01 01 00 cd 00 50 a0", PULL_ERR_NONCANONICAL},
        {"dc 00 06 01 01 01 00 00 a0", PULL_ERR_NONCANONICAL},
        /* wrong field types */
        {"96 01 01 01 00 00 c4 00", PULL_ERR_FIELD},
        {"96 01 01 01 ff 00 a0", PULL_ERR_FIELD},
        {"96 01 01 01 00 00 c0", PULL_ERR_FIELD},
        {"96 a1 01 01 01 00 00 a0", PULL_ERR_FIELD},
        /* agent: control character, invalid UTF-8 */
        {"96 01 01 01 00 00 a2 61 0a", PULL_ERR_FIELD},
        {"96 01 01 01 00 00 a2 61 7f", PULL_ERR_FIELD},
        {"96 01 01 01 00 00 a2 c3 28", PULL_ERR_UTF8},
        /* not an array, an array promising more than there is */
        {"81 01 01", PULL_ERR_FIELD},
        {"dd ff ff ff ff 01", PULL_ERR_TRUNCATED},
        /* an extra field nested deeper than allowed */
        {"97 01 01 01 00 00 a0 91 91 91 91 91 91 91 91 91 91 00", PULL_ERR_DEPTH},
    };
    uint8_t b[64];
    struct msg_hello h;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = hex(cases[i].hex, b);
        int rc = msg_hello_decode(b, n, &h);
        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): got %d want %d", i, cases[i].hex, rc, cases[i].rc);
        if (rc != 0)
            assert_int_equal(h.proto_min, 0); /* cleared on failure */
    }
}

static void
test_agent_limits(void **state)
{
    struct msg_hello h, d;
    struct pull_wb w;
    char agent[100];

    (void)state;
    memset(agent, 'a', sizeof(agent));
    agent[99] = '\0';
    msg_hello_init(&h, 0, 0, agent);
    assert_int_equal(strlen(h.agent), MSG_AGENT_MAX);
    wb_init(&w, 0);
    assert_int_equal(msg_hello_encode(&h, &w), 0);
    assert_int_equal(msg_hello_decode(w.p, w.len, &d), 0);
    assert_string_equal(d.agent, h.agent);
    /* 65 bytes on the wire are refused */
    wb_reset(&w);
    uint8_t b[100];
    size_t n = hex("96 01 01 01 00 00 d9 41", b);
    memset(b + n, 'a', 65);
    assert_int_equal(msg_hello_decode(b, n + 65, &d), PULL_ERR_FIELD);
    b[n - 1] = 64;
    assert_int_equal(msg_hello_decode(b, n + 64, &d), 0);
    /* truncation doesn't split a UTF-8 sequence: 63 'a' then a 2-byte character */
    memset(agent, 'a', 63);
    memcpy(agent + 63, "\xc3\xa9tail", 7);
    msg_hello_init(&h, 0, 0, agent);
    assert_int_equal(strlen(h.agent), 63);
    /* the encoder refuses what the decoder refuses */
    msg_hello_init(&h, 0, 0, "bad\nagent");
    assert_int_equal(msg_hello_encode(&h, &w), PULL_ERR_FIELD);
    msg_hello_init(&h, 0, 0, "x");
    h.proto_min = 2;
    h.proto_max = 1;
    assert_int_equal(msg_hello_encode(&h, &w), PULL_ERR_FIELD);
    assert_int_equal(w.len, 0);
    msg_hello_init(&h, 0, 0, NULL);
    assert_int_equal(msg_hello_encode(&h, &w), 0);
    wb_release(&w);
}

static void
test_negotiate(void **state)
{
    struct msg_hello a, b;
    struct pull_wb w;
    struct msg_bye bye;
    uint32_t v;

    (void)state;
    msg_hello_init(&a, 0, 0, "a");
    msg_hello_init(&b, 0, 0, "b");
    assert_int_equal(msg_negotiate(&a, &b, &v), 0);
    assert_int_equal(v, PULL_PROTO_VERSION);
    a.proto_min = 1, a.proto_max = 3;
    b.proto_min = 2, b.proto_max = 5;
    assert_int_equal(msg_negotiate(&a, &b, &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(msg_negotiate(&b, &a, &v), 0);
    assert_int_equal(v, 3);
    b.proto_min = 4;
    assert_int_equal(msg_negotiate(&a, &b, &v), PULL_ERR_VERSION);
    assert_int_equal(v, 0);
    /* no common version: the BYE says what we speak */
    wb_init(&w, 0);
    assert_int_equal(msg_bye_version(&a, &w), 0);
    assert_int_equal(msg_bye_decode(w.p, w.len, &bye), 0);
    assert_int_equal(bye.reason, MSG_BYE_VERSION);
    assert_string_equal(bye.text, "no common protocol version: this node speaks 1..3");
    assert_string_equal(msg_bye_reason_str(bye.reason), "no common protocol version");
    assert_string_equal(msg_bye_reason_str(999), "unknown");
    wb_release(&w);
}

static void
test_ping_pong(void **state)
{
    static const uint64_t nonces[] = {
        0, 1, 127, 128, 65535, 65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1, UINT64_MAX};
    struct pull_wb w;
    uint32_t type;
    uint64_t nonce;
    uint8_t b[16];

    (void)state;
    wb_init(&w, 0);
    for (size_t i = 0; i < sizeof(nonces) / sizeof(nonces[0]); i++) {
        for (uint32_t t = MSG_PING; t <= MSG_PONG; t++) {
            wb_reset(&w);
            assert_int_equal(msg_ping_encode(t, nonces[i], &w), 0);
            assert_int_equal(msg_ping_decode(w.p, w.len, &type, &nonce), 0);
            assert_int_equal(type, t);
            assert_true(nonce == nonces[i]);
        }
    }
    wb_reset(&w);
    assert_int_equal(msg_ping_encode(MSG_PONG, 0x1234, &w), 0);
    assert_int_equal(w.len, hex("92 03 cd 12 34", b));
    assert_memory_equal(w.p, b, w.len);
    assert_int_equal(msg_ping_encode(MSG_BYE, 1, &w), PULL_ERR_INVAL);
    /* a HELLO is not a ping; a negative nonce is not a nonce */
    assert_int_equal(msg_ping_decode(b, hex("92 01 00", b), &type, &nonce), PULL_ERR_MALFORMED);
    assert_int_equal(msg_ping_decode(b, hex("92 02 ff", b), &type, &nonce), PULL_ERR_FIELD);
    assert_int_equal(msg_ping_decode(b, hex("93 02 05 c3", b), &type, &nonce), 0);
    assert_int_equal(nonce, 5);
    wb_release(&w);
}

static void
test_bye(void **state)
{
    struct pull_wb w;
    struct msg_bye b;
    char text[MSG_BYE_TEXT_MAX + 2];
    uint8_t raw[300];
    size_t n;

    (void)state;
    wb_init(&w, 0);
    assert_int_equal(msg_bye_encode(MSG_BYE_BUSY, "too many peers", &w), 0);
    assert_int_equal(msg_bye_decode(w.p, w.len, &b), 0);
    assert_int_equal(b.reason, MSG_BYE_BUSY);
    assert_string_equal(b.text, "too many peers");
    wb_reset(&w);
    assert_int_equal(msg_bye_encode(MSG_BYE_NORMAL, NULL, &w), 0);
    n = hex("93 04 00 a0", raw);
    assert_int_equal(w.len, n);
    assert_memory_equal(w.p, raw, n);
    /* text limits both ways */
    memset(text, 'x', MSG_BYE_TEXT_MAX);
    text[MSG_BYE_TEXT_MAX] = '\0';
    wb_reset(&w);
    assert_int_equal(msg_bye_encode(77, text, &w), 0);
    assert_int_equal(msg_bye_decode(w.p, w.len, &b), 0);
    assert_int_equal(strlen(b.text), MSG_BYE_TEXT_MAX);
    assert_int_equal(b.reason, 77); /* unknown reasons pass through */
    text[MSG_BYE_TEXT_MAX] = 'x';
    text[MSG_BYE_TEXT_MAX + 1] = '\0';
    assert_int_equal(msg_bye_encode(1, text, &w), PULL_ERR_FIELD);
    n = hex("93 04 01 d9 c9", raw);
    memset(raw + n, 'y', 201);
    assert_int_equal(msg_bye_decode(raw, n + 201, &b), PULL_ERR_FIELD);
    assert_int_equal(msg_bye_encode(1, "tab\tinside", &w), PULL_ERR_FIELD);
    assert_int_equal(msg_bye_decode(raw, hex("92 04 01", raw), &b), PULL_ERR_MALFORMED);
    wb_release(&w);
}

static void
test_session_dispatch(void **state)
{
    struct pull_wb w;
    struct msg_session m;
    struct msg_hello h;
    uint8_t b[MSG_MAX + 10];
    size_t n;

    (void)state;
    wb_init(&w, 0);
    msg_hello_init(&h, 5, 1234, "t");
    assert_int_equal(msg_hello_encode(&h, &w), 0);
    assert_int_equal(msg_session_decode(w.p, w.len, &m), 0);
    assert_int_equal(m.type, MSG_HELLO);
    assert_int_equal(m.u.hello.listen_port, 1234);
    assert_true(m.u.hello.features == 5);
    wb_reset(&w);
    assert_int_equal(msg_ping_encode(MSG_PING, 42, &w), 0);
    assert_int_equal(msg_session_decode(w.p, w.len, &m), 0);
    assert_int_equal(m.type, MSG_PING);
    assert_int_equal(m.u.nonce, 42);
    wb_reset(&w);
    assert_int_equal(msg_bye_encode(MSG_BYE_SELF, "me", &w), 0);
    assert_int_equal(msg_session_decode(w.p, w.len, &m), 0);
    assert_int_equal(m.type, MSG_BYE);
    assert_string_equal(m.u.bye.text, "me");
    /* another engine's message, and a type nobody knows: reported, not decoded */
    n = hex("92 0a 00", b);
    assert_int_equal(msg_session_decode(b, n, &m), PULL_ERR_UNSUPPORTED);
    assert_int_equal(m.type, MSG_JOIN);
    assert_string_equal(msg_type_name(m.type), "join");
    n = hex("93 cd 03 e7 01 02", b);
    assert_int_equal(msg_session_decode(b, n, &m), PULL_ERR_UNSUPPORTED);
    assert_int_equal(m.type, 999);
    assert_null(msg_type_name(999));
    assert_string_equal(msg_type_name(MSG_MAIL_IHAVE), "mail_ihave");
    /* not a message at all */
    assert_int_equal(msg_session_decode(b, hex("c0", b), &m), PULL_ERR_FIELD);
    assert_int_equal(msg_session_decode(b, 0, &m), PULL_ERR_TRUNCATED);
    assert_int_equal(msg_session_decode(b, hex("90", b), &m), PULL_ERR_MALFORMED);
    assert_int_equal(msg_session_decode(b, hex("91 ff", b), &m), PULL_ERR_FIELD);
    /* longer than a frame can be */
    memset(b, 0, sizeof(b));
    assert_int_equal(msg_session_decode(b, MSG_MAX + 1, &m), PULL_ERR_TOO_BIG);
    wb_release(&w);
}

/* Every proper prefix of every valid message fails cleanly. */
static void
test_truncations(void **state)
{
    struct pull_wb w[3];
    struct msg_hello h;
    struct msg_session m;

    (void)state;
    for (int i = 0; i < 3; i++)
        wb_init(&w[i], 0);
    msg_hello_init(&h, UINT64_MAX, 65535, "pulld/0.1.0 (linux; \xc3\xa9t\xc3\xa9)");
    assert_int_equal(msg_hello_encode(&h, &w[0]), 0);
    assert_int_equal(msg_ping_encode(MSG_PING, UINT64_MAX, &w[1]), 0);
    assert_int_equal(msg_bye_encode(MSG_BYE_QUOTA, "too many invalid records", &w[2]), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(msg_session_decode(w[i].p, w[i].len, &m), 0);
        for (size_t n = 0; n < w[i].len; n++)
            assert_true(msg_session_decode(w[i].p, n, &m) < 0);
        wb_release(&w[i]);
    }
}

/* RECON_BULK: exact bytes, round trip, limits, order and hostile input. */
static void
test_bulk(void **state)
{
    static uint8_t ids[MSG_BULK_MAX + 1][32];
    struct msg_bulk b, d;
    struct pull_wb w;
    uint8_t want[128];
    size_t n;

    (void)state;
    for (uint32_t i = 0; i <= MSG_BULK_MAX; i++) {
        memset(ids[i], 0xab, 32);
        ids[i][0] = (uint8_t)(i >> 8);
        ids[i][1] = (uint8_t)i;
    }
    assert_string_equal(msg_type_name(MSG_RECON_BULK), "recon_bulk");
    wb_init(&w, 0);
    /* empty: "I hold nothing" */
    b = (struct msg_bulk){7, NULL, 0};
    assert_int_equal(msg_bulk_encode(&b, &w), 0);
    n = hex("932307c400", want);
    assert_int_equal(w.len, n);
    assert_memory_equal(w.p, want, n);
    assert_int_equal(msg_bulk_decode(w.p, w.len, &d), 0);
    assert_int_equal(d.sid, 7);
    assert_int_equal(d.n, 0);
    /* the largest, which fits in one frame */
    wb_reset(&w);
    b = (struct msg_bulk){UINT32_MAX, (const uint8_t(*)[32])ids, MSG_BULK_MAX};
    assert_int_equal(msg_bulk_encode(&b, &w), 0);
    assert_true(w.len <= MSG_MAX);
    assert_int_equal(msg_bulk_decode(w.p, w.len, &d), 0);
    assert_int_equal(d.sid, UINT32_MAX);
    assert_int_equal(d.n, MSG_BULK_MAX);
    assert_memory_equal(d.ids, ids, (size_t)MSG_BULK_MAX * 32);
    for (size_t k = 0; k < w.len; k += 97)
        assert_true(msg_bulk_decode(w.p, k, &d) < 0);
    /* refused: too many, sid 0, out of order, repeated */
    wb_reset(&w);
    b.n = MSG_BULK_MAX + 1;
    assert_int_equal(msg_bulk_encode(&b, &w), PULL_ERR_FIELD);
    b = (struct msg_bulk){0, (const uint8_t(*)[32])ids, 1};
    assert_int_equal(msg_bulk_encode(&b, &w), PULL_ERR_FIELD);
    b = (struct msg_bulk){1, (const uint8_t(*)[32])ids[1], 2};
    assert_int_equal(msg_bulk_encode(&b, &w), 0); /* ids[1] < ids[2] */
    memcpy(w.p + w.len - 32, ids[0], 32);         /* now ids[1] > ids[0] */
    assert_int_equal(msg_bulk_decode(w.p, w.len, &d), PULL_ERR_FIELD);
    memcpy(w.p + w.len - 32, ids[1], 32); /* repeated */
    assert_int_equal(msg_bulk_decode(w.p, w.len, &d), PULL_ERR_FIELD);
    assert_null(d.ids);
    /* a length that is not a multiple of 32, a wrong type, trailing bytes, extra fields */
    n = hex("932307c40100", want);
    assert_int_equal(msg_bulk_decode(want, n, &d), PULL_ERR_FIELD);
    n = hex("932207c400", want);
    assert_int_equal(msg_bulk_decode(want, n, &d), PULL_ERR_MALFORMED);
    n = hex("932307c40000", want);
    assert_int_equal(msg_bulk_decode(want, n, &d), PULL_ERR_TRAILING);
    n = hex("942307c400c0", want);
    assert_int_equal(msg_bulk_decode(want, n, &d), 0);
    n = hex("922307", want);
    assert_true(msg_bulk_decode(want, n, &d) < 0);
    wb_release(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_exact), cmocka_unit_test(test_hello_fields),
        cmocka_unit_test(test_hello_reach), cmocka_unit_test(test_agent_limits),
        cmocka_unit_test(test_negotiate),   cmocka_unit_test(test_ping_pong),
        cmocka_unit_test(test_bye),         cmocka_unit_test(test_session_dispatch),
        cmocka_unit_test(test_truncations), cmocka_unit_test(test_bulk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
