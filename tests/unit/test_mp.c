/* Tests of the bounded, canonical MessagePack reader (lib/mp.h) and the byte buffers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/mp.h"
#include "testutil.h"

static int
read_uint_hex(const char *hex, uint64_t *v)
{
    uint8_t b[16];
    struct pull_rd r;
    size_t n = tu_hex(hex, b, sizeof(b));
    int rc;

    rd_init(&r, b, n);
    rc = mp_read_uint(&r, v);
    if (rc == 0 && rd_left(&r) != 0)
        return PULL_ERR_TRAILING;
    return rc;
}

static void
test_uint_canonical(void **state)
{
    uint64_t v;
    (void)state;
    assert_int_equal(read_uint_hex("7f", &v), 0);
    assert_int_equal(v, 127);
    assert_int_equal(read_uint_hex("cc 80", &v), 0);
    assert_int_equal(v, 128);
    assert_int_equal(read_uint_hex("cc 7f", &v), PULL_ERR_NONCANONICAL);
    assert_int_equal(read_uint_hex("cd 00 ff", &v), PULL_ERR_NONCANONICAL);
    assert_int_equal(read_uint_hex("cd 01 00", &v), 0);
    assert_int_equal(v, 256);
    assert_int_equal(read_uint_hex("ce 00 00 ff ff", &v), PULL_ERR_NONCANONICAL);
    assert_int_equal(read_uint_hex("cf 00 00 00 00 ff ff ff ff", &v), PULL_ERR_NONCANONICAL);
    assert_int_equal(read_uint_hex("cf 00 00 00 01 00 00 00 00", &v), 0);
    assert_int_equal(v, 0x100000000ull);
    assert_int_equal(read_uint_hex("cf ff ff ff ff ff ff ff ff", &v), 0);
    assert_true(v == UINT64_MAX);
    /* truncated at every byte */
    assert_int_equal(read_uint_hex("cf 00 00 00 01 00 00 00", &v), PULL_ERR_TRUNCATED);
    assert_int_equal(read_uint_hex("cd 01", &v), PULL_ERR_TRUNCATED);
    assert_int_equal(read_uint_hex("", &v), PULL_ERR_TRUNCATED);
    /* wrong type */
    assert_int_equal(read_uint_hex("a1 41", &v), PULL_ERR_FIELD);
    assert_int_equal(read_uint_hex("ff", &v), PULL_ERR_FIELD);
}

static void
test_int_canonical(void **state)
{
    uint8_t b[16];
    struct pull_rd r;
    int64_t v;
    size_t n;
    (void)state;

    n = tu_hex("e0", b, sizeof(b));
    rd_init(&r, b, n);
    assert_int_equal(mp_read_int(&r, &v), 0);
    assert_int_equal(v, -32);
    n = tu_hex("d0 e0", b, sizeof(b)); /* -32 in int8: must be fixint */
    rd_init(&r, b, n);
    assert_int_equal(mp_read_int(&r, &v), PULL_ERR_NONCANONICAL);
    n = tu_hex("d0 df", b, sizeof(b));
    rd_init(&r, b, n);
    assert_int_equal(mp_read_int(&r, &v), 0);
    assert_int_equal(v, -33);
    n = tu_hex("d0 05", b, sizeof(b)); /* positive in int8 */
    rd_init(&r, b, n);
    assert_int_equal(mp_read_int(&r, &v), PULL_ERR_NONCANONICAL);
    n = tu_hex("d1 ff 80", b, sizeof(b)); /* -128 fits int8 */
    rd_init(&r, b, n);
    assert_int_equal(mp_read_int(&r, &v), PULL_ERR_NONCANONICAL);
    n = tu_hex("d1 ff 7f", b, sizeof(b));
    rd_init(&r, b, n);
    assert_int_equal(mp_read_int(&r, &v), 0);
    assert_int_equal(v, -129);
}

static void
test_huge_containers_refused(void **state)
{
    uint8_t b[16];
    struct pull_rd r;
    uint32_t n32;
    size_t n;
    (void)state;

    /* The msgpack-c issue #1013 headers: must be refused without allocating. */
    n = tu_hex("dd ff ff ff ff", b, sizeof(b));
    rd_init(&r, b, n);
    assert_int_equal(mp_read_array(&r, &n32), PULL_ERR_TRUNCATED);
    assert_int_equal(r.off, 0);
    n = tu_hex("df 0f ff ff ff", b, sizeof(b));
    rd_init(&r, b, n);
    assert_int_equal(mp_read_map(&r, &n32), PULL_ERR_TRUNCATED);
    rd_init(&r, b, n);
    assert_int_equal(mp_skip(&r), PULL_ERR_TRUNCATED);
    /* A bin that claims 4 GiB. */
    n = tu_hex("c6 ff ff ff ff 00", b, sizeof(b));
    rd_init(&r, b, n);
    assert_int_equal(mp_skip(&r), PULL_ERR_TRUNCATED);
    /* Non-canonical array16 holding 3 elements. */
    n = tu_hex("dc 00 03 01 02 03", b, sizeof(b));
    rd_init(&r, b, n);
    assert_int_equal(mp_read_array(&r, &n32), PULL_ERR_NONCANONICAL);
    /* Exactly enough bytes is fine. */
    n = tu_hex("93 01 02 03", b, sizeof(b));
    rd_init(&r, b, n);
    assert_int_equal(mp_read_array(&r, &n32), 0);
    assert_int_equal(n32, 3);
    /* One element more than bytes left. */
    n = tu_hex("94 01 02 03", b, sizeof(b));
    rd_init(&r, b, n);
    assert_int_equal(mp_read_array(&r, &n32), PULL_ERR_TRUNCATED);
}

static void
test_str_bin(void **state)
{
    uint8_t b[64];
    struct pull_rd r;
    const char *s;
    const uint8_t *p;
    uint32_t len;
    size_t n;
    (void)state;

    n = tu_hex("a3 61 62 63", b, sizeof(b));
    rd_init(&r, b, n);
    assert_int_equal(mp_read_str(&r, 10, &s, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "abc", 3);
    rd_init(&r, b, n);
    assert_int_equal(mp_read_str(&r, 2, &s, &len), PULL_ERR_FIELD);
    assert_int_equal(r.off, 0);
    n = tu_hex("d9 03 61 62 63", b, sizeof(b)); /* str8 for a 3-byte string */
    rd_init(&r, b, n);
    assert_int_equal(mp_read_str(&r, 10, &s, &len), PULL_ERR_NONCANONICAL);
    n = tu_hex("a2 c3 28", b, sizeof(b)); /* invalid UTF-8 */
    rd_init(&r, b, n);
    assert_int_equal(mp_read_str(&r, 10, &s, &len), PULL_ERR_UTF8);
    n = tu_hex("a3 ed a0 80", b, sizeof(b)); /* surrogate */
    rd_init(&r, b, n);
    assert_int_equal(mp_read_str(&r, 10, &s, &len), PULL_ERR_UTF8);
    n = tu_hex("a2 c0 80", b, sizeof(b)); /* overlong NUL */
    rd_init(&r, b, n);
    assert_int_equal(mp_read_str(&r, 10, &s, &len), PULL_ERR_UTF8);
    n = tu_hex("c4 02 01 02", b, sizeof(b));
    rd_init(&r, b, n);
    assert_int_equal(mp_read_bin(&r, 10, &p, &len), 0);
    assert_int_equal(len, 2);
    n = tu_hex("c5 00 02 01 02", b, sizeof(b));
    rd_init(&r, b, n);
    assert_int_equal(mp_read_bin(&r, 10, &p, &len), PULL_ERR_NONCANONICAL);
    n = tu_hex("c4 03 01 02", b, sizeof(b));
    rd_init(&r, b, n);
    assert_int_equal(mp_read_bin(&r, 10, &p, &len), PULL_ERR_TRUNCATED);
}

static void
test_packer_is_canonical(void **state)
{
    static const uint64_t values[] = {
        0, 1, 127, 128, 255, 256, 65535, 65536, 0xffffffffull, 0x100000000ull, UINT64_MAX};
    static const size_t lens[] = {0, 31, 32, 255, 256, 65535, 65536};
    struct pull_wb w;
    msgpack_packer pk;
    (void)state;

    wb_init(&w, 0);
    mp_packer_init(&pk, &w);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        uint64_t v;
        struct pull_rd r;
        wb_reset(&w);
        msgpack_pack_uint64(&pk, values[i]);
        rd_init(&r, w.p, w.len);
        assert_int_equal(mp_read_uint(&r, &v), 0);
        assert_true(v == values[i]);
        assert_int_equal(rd_left(&r), 0);
    }
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        static char big[65536];
        struct pull_rd r;
        const char *s;
        const uint8_t *p;
        uint32_t len, n;
        memset(big, 'x', sizeof(big));
        wb_reset(&w);
        mp_pack_str(&pk, big, lens[i]);
        mp_pack_bin(&pk, big, lens[i]);
        msgpack_pack_array(&pk, (uint32_t)lens[i] > 16 ? 16 : (uint32_t)lens[i]);
        for (size_t k = 0; k < (lens[i] > 16 ? 16 : lens[i]); k++)
            msgpack_pack_nil(&pk);
        assert_int_equal(wb_error(&w), 0);
        rd_init(&r, w.p, w.len);
        assert_int_equal(mp_read_str(&r, UINT32_MAX, &s, &len), 0);
        assert_int_equal(len, lens[i]);
        assert_int_equal(mp_read_bin(&r, UINT32_MAX, &p, &len), 0);
        assert_int_equal(len, lens[i]);
        assert_int_equal(mp_read_array(&r, &n), 0);
        for (uint32_t k = 0; k < n; k++)
            assert_int_equal(mp_read_nil(&r), 0);
        assert_int_equal(rd_left(&r), 0);
    }
    wb_release(&w);
}

/* Packs a map (or array) of n entries both ways - counted up front with msgpack-c and with
 * a deferred count - and checks the bytes are the same, with something before and after. */
static void
deferred_matches(bool map, uint32_t n)
{
    struct pull_wb a, b;
    msgpack_packer pa, pb;
    struct mp_open o;
    struct pull_rd r;
    uint32_t got;

    wb_init(&a, 0);
    wb_init(&b, 0);
    mp_packer_init(&pa, &a);
    mp_packer_init(&pb, &b);
    mp_pack_cstr(&pa, "before");
    mp_pack_cstr(&pb, "before");
    if (map)
        msgpack_pack_map(&pa, n);
    else
        msgpack_pack_array(&pa, n);
    (map ? mp_open_map : mp_open_array)(&o, &pb);
    for (uint32_t i = 0; i < n; i++) {
        if (map) {
            mp_pack_cstr(&pa, "k");
            msgpack_pack_uint64(&pa, i);
            mp_kv_uint(&o, "k", i);
        } else {
            msgpack_pack_uint64(&pa, i);
            msgpack_pack_uint64(mp_item(&o), i);
        }
    }
    mp_close(&o);
    mp_pack_cstr(&pa, "after");
    mp_pack_cstr(&pb, "after");
    assert_int_equal(wb_error(&a), 0);
    assert_int_equal(wb_error(&b), 0);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.p, b.p, a.len);
    /* and the strict reader takes it */
    rd_init(&r, b.p + 7, b.len - 7);
    assert_int_equal(map ? mp_read_map(&r, &got) : mp_read_array(&r, &got), 0);
    assert_int_equal(got, n);
    wb_release(&a);
    wb_release(&b);
}

static void
test_deferred_counts(void **state)
{
    static const uint32_t sizes[] = {0, 1, 15, 16, 17, 255, 256, 65535, 65536, 70000};
    struct pull_wb w;
    msgpack_packer pk;
    struct mp_open outer, inner, tiny;
    struct pull_rd r;
    uint32_t n;
    const char *s;
    uint32_t len;
    uint64_t v;
    bool b;
    (void)state;

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        deferred_matches(true, sizes[i]);
        deferred_matches(false, sizes[i]);
    }

    /* nested: {"list": [16 x {"i": i}], "ok": true, "empty": {}} */
    wb_init(&w, 0);
    mp_packer_init(&pk, &w);
    mp_open_map(&outer, &pk);
    mp_key(&outer, "list");
    mp_open_array(&inner, &pk);
    for (uint32_t i = 0; i < 16; i++) {
        mp_item(&inner);
        mp_open_map(&tiny, &pk);
        mp_kv_uint(&tiny, "i", i);
        mp_close(&tiny);
    }
    mp_close(&inner);
    mp_kv_bool(&outer, "ok", true);
    mp_key(&outer, "empty");
    mp_open_map(&tiny, &pk);
    mp_close(&tiny);
    mp_close(&outer);
    assert_int_equal(wb_error(&w), 0);
    rd_init(&r, w.p, w.len);
    assert_int_equal(mp_read_map(&r, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(mp_read_str(&r, 10, &s, &len), 0);
    assert_int_equal(mp_read_array(&r, &n), 0);
    assert_int_equal(n, 16);
    for (uint32_t i = 0; i < 16; i++) {
        assert_int_equal(mp_read_map(&r, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(mp_read_str(&r, 10, &s, &len), 0);
        assert_int_equal(mp_read_uint(&r, &v), 0);
        assert_int_equal(v, i);
    }
    assert_int_equal(mp_read_str(&r, 10, &s, &len), 0);
    assert_int_equal(mp_read_bool(&r, &b), 0);
    assert_true(b);
    assert_int_equal(mp_read_str(&r, 10, &s, &len), 0);
    assert_int_equal(mp_read_map(&r, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(rd_left(&r), 0);

    /* a writer that fails meanwhile keeps its error; close leaves the bytes alone */
    wb_release(&w);
    wb_init(&w, 8);
    mp_packer_init(&pk, &w);
    mp_open_map(&outer, &pk);
    mp_kv_str(&outer, "long", "longer than the writer allows");
    mp_close(&outer);
    assert_int_not_equal(wb_error(&w), 0);
    wb_release(&w);
}

static void
test_skip_depth(void **state)
{
    uint8_t b[32];
    struct pull_rd r;
    (void)state;

    memset(b, 0x91, sizeof(b)); /* [[[[...]]]] deeper than allowed */
    b[sizeof(b) - 1] = 0x01;
    rd_init(&r, b, sizeof(b));
    assert_int_equal(mp_skip(&r), PULL_ERR_DEPTH);
    assert_int_equal(r.off, 0);
    rd_init(&r, b + sizeof(b) - 5, 5); /* 4 levels: fine */
    assert_int_equal(mp_skip(&r), 0);
    assert_int_equal(rd_left(&r), 0);
}

static void
test_wb_limits(void **state)
{
    struct pull_wb w;
    uint8_t x[10] = {0};
    (void)state;

    wb_init(&w, 16);
    assert_int_equal(wb_put(&w, x, 10), 0);
    assert_int_equal(wb_put(&w, x, 6), 0);
    assert_int_equal(wb_put(&w, x, 1), PULL_ERR_TOO_BIG);
    assert_int_equal(wb_u8(&w, 1), PULL_ERR_TOO_BIG); /* sticky */
    assert_int_equal(w.len, 16);
    wb_reset(&w);
    assert_int_equal(wb_u64be(&w, 0x0102030405060708ull), 0);
    assert_int_equal(be64dec(w.p), 0x0102030405060708ull);
    wb_release(&w);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uint_canonical),
        cmocka_unit_test(test_int_canonical),
        cmocka_unit_test(test_huge_containers_refused),
        cmocka_unit_test(test_str_bin),
        cmocka_unit_test(test_packer_is_canonical),
        cmocka_unit_test(test_deferred_counts),
        cmocka_unit_test(test_skip_depth),
        cmocka_unit_test(test_wb_limits),
    };
    return cmocka_run_group_tests_name("mp", tests, NULL, NULL);
}
