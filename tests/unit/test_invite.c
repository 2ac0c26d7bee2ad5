/* Tests of the invitation code (lib/invite.h): round trips, typos, garbage, hostile
 * lengths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/ident.h"
#include "lib/invite.h"

static void
sample(struct invite *inv, bool private_net, size_t naddrs)
{
    memset(inv, 0, sizeof(*inv));
    inv->private_net = private_net;
    if (private_net)
        memset(inv->network_key, 0x5a, 32);
    for (int i = 0; i < 32; i++)
        inv->inviter[i] = (uint8_t)(i * 7 + 1);
    memset(inv->secret, 0xc3, sizeof(inv->secret));
    inv->naddrs = naddrs;
    for (size_t i = 0; i < naddrs; i++)
        snprintf(inv->addrs[i], sizeof(inv->addrs[i]), "192.168.1.%zu:7450", i + 10);
}

static void
test_round_trip(void **state)
{
    char text[INVITE_TEXT_MAX + 1];
    struct invite a, b;
    enum invite_bad bad;
    int n;
    (void)state;

    for (int priv = 0; priv < 2; priv++) {
        for (size_t na = 1; na <= INVITE_ADDRS_MAX; na++) {
            sample(&a, priv != 0, na);
            n = invite_encode(&a, text, sizeof(text));
            assert_true(n > 0);
            assert_int_equal((size_t)n, strlen(text));
            assert_memory_equal(text, INVITE_PREFIX, strlen(INVITE_PREFIX));
            assert_int_equal(invite_decode(text, &b, &bad), 0);
            assert_int_equal(bad, INVITE_OK);
            assert_int_equal(b.private_net, a.private_net);
            assert_memory_equal(b.network_key, a.network_key, 32);
            assert_memory_equal(b.inviter, a.inviter, 32);
            assert_memory_equal(b.secret, a.secret, sizeof(a.secret));
            assert_int_equal(b.naddrs, na);
            for (size_t i = 0; i < na; i++)
                assert_string_equal(b.addrs[i], a.addrs[i]);
        }
    }
    /* one private code with one address is one short line */
    sample(&a, true, 1);
    n = invite_encode(&a, text, sizeof(text));
    assert_true(n < 200);
    /* pasted with spaces around and in capitals */
    {
        char pasted[INVITE_TEXT_MAX + 8];
        snprintf(pasted, sizeof(pasted), "  %s\r\n", text);
        for (char *p = pasted; *p != '\0'; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
        assert_int_equal(invite_decode(pasted, &b, &bad), 0);
        assert_memory_equal(b.network_key, a.network_key, 32);
    }
}

static void
test_typos(void **state)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    char text[INVITE_TEXT_MAX + 1], t[INVITE_TEXT_MAX + 1];
    struct invite a, b;
    enum invite_bad bad;
    size_t plen = strlen(INVITE_PREFIX), n;
    (void)state;

    sample(&a, true, 2);
    n = (size_t)invite_encode(&a, text, sizeof(text));
    /* every single-character change anywhere after the prefix is caught as a typo */
    for (size_t i = plen; i < n; i++) {
        for (size_t k = 0; k < 32; k += 5) {
            memcpy(t, text, n + 1);
            if (t[i] == alphabet[k])
                continue;
            t[i] = alphabet[k];
            assert_int_equal(invite_decode(t, &b, &bad), PULL_ERR_INVAL);
            assert_int_equal(bad, INVITE_BAD_CHECK);
            /* and nothing of the code is left behind */
            for (size_t j = 0; j < sizeof(b.network_key); j++)
                assert_int_equal(b.network_key[j], 0);
        }
    }
    /* two neighbours swapped */
    memcpy(t, text, n + 1);
    for (size_t i = plen + 10;; i++) {
        if (t[i] != t[i + 1]) {
            char c = t[i];
            t[i] = t[i + 1];
            t[i + 1] = c;
            break;
        }
    }
    assert_int_equal(invite_decode(t, &b, &bad), PULL_ERR_INVAL);
    assert_int_equal(bad, INVITE_BAD_CHECK);
    /* a character lost, or one more */
    memcpy(t, text, n + 1);
    t[n - 1] = '\0';
    assert_int_equal(invite_decode(t, &b, &bad), PULL_ERR_INVAL);
    assert_true(bad == INVITE_BAD_LENGTH || bad == INVITE_BAD_CHECK);
    memcpy(t, text, n + 1);
    t[n] = 'a';
    t[n + 1] = '\0';
    assert_int_equal(invite_decode(t, &b, &bad), PULL_ERR_INVAL);
    assert_true(bad == INVITE_BAD_LENGTH || bad == INVITE_BAD_CHECK);
    /* a character base32 has not (1, 8, 0) */
    memcpy(t, text, n + 1);
    t[plen + 3] = '1';
    assert_int_equal(invite_decode(t, &b, &bad), PULL_ERR_INVAL);
    assert_int_equal(bad, INVITE_BAD_CHAR);
}

static void
test_garbage(void **state)
{
    char big[INVITE_TEXT_MAX + 50];
    struct invite b;
    enum invite_bad bad;
    (void)state;

    assert_int_equal(invite_decode("", &b, &bad), PULL_ERR_INVAL);
    assert_int_equal(bad, INVITE_BAD_PREFIX);
    assert_int_equal(invite_decode("hello world", &b, &bad), PULL_ERR_INVAL);
    assert_int_equal(bad, INVITE_BAD_PREFIX);
    assert_int_equal(invite_decode("pull1-", &b, &bad), PULL_ERR_INVAL);
    assert_int_equal(bad, INVITE_BAD_LENGTH);
    assert_int_equal(invite_decode("pull1-abcdefgh", &b, &bad), PULL_ERR_INVAL);
    assert_int_equal(bad, INVITE_BAD_LENGTH);
    assert_int_equal(invite_decode("pull2-abcdefghabcdefgh", &b, &bad), PULL_ERR_INVAL);
    assert_int_equal(bad, INVITE_BAD_VERSION);
    assert_int_equal(invite_decode("pull1-ab cd", &b, &bad), PULL_ERR_INVAL);
    assert_int_equal(bad, INVITE_BAD_CHAR);
    /* an id@host:port is not a code */
    assert_int_equal(invite_decode("aaaa@127.0.0.1:7450", &b, &bad), PULL_ERR_INVAL);
    assert_int_equal(bad, INVITE_BAD_PREFIX);
    /* far too long, all valid characters */
    memcpy(big, INVITE_PREFIX, strlen(INVITE_PREFIX));
    memset(big + strlen(INVITE_PREFIX), 'a', sizeof(big) - 1 - strlen(INVITE_PREFIX));
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(invite_decode(big, &b, &bad), PULL_ERR_INVAL);
    assert_int_equal(bad, INVITE_BAD_LENGTH);
    /* right length, random bytes: the checksum refuses them */
    {
        uint8_t raw[100];
        char t[INVITE_TEXT_MAX + 1];
        int refused = 0;
        for (int k = 0; k < 200; k++) {
            randombytes_buf(raw, sizeof(raw));
            memcpy(t, INVITE_PREFIX, strlen(INVITE_PREFIX));
            ident_b32_encode(raw, sizeof(raw), t + strlen(INVITE_PREFIX));
            refused += invite_decode(t, &b, &bad) == PULL_ERR_INVAL;
        }
        assert_int_equal(refused, 200);
    }
}

/* A code whose checksum matches but whose fields lie is still refused. */
static void
test_hostile_content(void **state)
{
    uint8_t raw[INVITE_BYTES_MAX];
    char t[INVITE_TEXT_MAX + 1];
    struct invite b;
    enum invite_bad bad;
    size_t n = 0, plen = strlen(INVITE_PREFIX);
    crypto_generichash_state st;
    uint8_t h[16];
    (void)state;

    raw[n++] = 0;
    memset(raw + n, 1, 32 + INVITE_SECRET_BYTES);
    n += 32 + INVITE_SECRET_BYTES;
    raw[n++] = 1;
    raw[n++] = 200; /* an address longer than what follows */
    memcpy(raw + n, "a:1", 3);
    n += 3;
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)"pull/invite/v1", 14);
    crypto_generichash_update(&st, raw, n);
    crypto_generichash_final(&st, h, sizeof(h));
    memcpy(raw + n, h, 4);
    memcpy(t, INVITE_PREFIX, plen);
    ident_b32_encode(raw, n + 4, t + plen);
    assert_int_equal(invite_decode(t, &b, &bad), PULL_ERR_INVAL);
    assert_int_equal(bad, INVITE_BAD_CONTENT);
    /* the same with a sane length decodes: the test builds codes the right way */
    raw[n - 4] = 3;
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)"pull/invite/v1", 14);
    crypto_generichash_update(&st, raw, n);
    crypto_generichash_final(&st, h, sizeof(h));
    memcpy(raw + n, h, 4);
    ident_b32_encode(raw, n + 4, t + plen);
    assert_int_equal(invite_decode(t, &b, &bad), 0);
    assert_string_equal(b.addrs[0], "a:1");
}

static void
test_addr(void **state)
{
    struct invite a;
    char text[INVITE_TEXT_MAX + 1];
    (void)state;

    assert_true(invite_addr_ok("127.0.0.1:7450", 14));
    assert_true(invite_addr_ok("[::1]:7450", 10));
    assert_false(invite_addr_ok("127.0.0.1:0", 11));
    assert_false(invite_addr_ok("127.0.0.1:65536", 15));
    assert_false(invite_addr_ok("127.0.0.1", 9));
    assert_false(invite_addr_ok(":7450", 5));
    assert_false(invite_addr_ok("a b:7450", 8));
    assert_false(invite_addr_ok("x@y:7450", 8));
    sample(&a, false, 1);
    a.naddrs = 0;
    assert_int_equal(invite_encode(&a, text, sizeof(text)), PULL_ERR_INVAL);
    sample(&a, false, 1);
    snprintf(a.addrs[0], sizeof(a.addrs[0]), "no port");
    assert_int_equal(invite_encode(&a, text, sizeof(text)), PULL_ERR_INVAL);
    sample(&a, false, 1);
    assert_int_equal(invite_encode(&a, text, 20), PULL_ERR_INVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_typos),
        cmocka_unit_test(test_garbage),    cmocka_unit_test(test_hostile_content),
        cmocka_unit_test(test_addr),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
