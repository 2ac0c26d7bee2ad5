/* Tests of identities: keys, key files, domain-separated signatures and the base32 text
 * form (lib/ident.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/ident.h"
#include "testutil.h"

static void
seeded(struct ident *id, uint8_t b)
{
    uint8_t seed[32];

    memset(seed, b, sizeof(seed));
    assert_int_equal(ident_from_seed(id, seed), 0);
}

static void
test_rfc8032_vector(void **state)
{
    uint8_t seed[32], pk[32], sig[64], want[64];
    struct ident id;
    (void)state;

    /* RFC 8032 section 7.1, TEST 1: with an empty domain tag ident_sign is plain Ed25519. */
    tu_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60", seed, 32);
    tu_hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pk, 32);
    tu_hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33b"
           "acc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
           want, 64);
    assert_int_equal(ident_from_seed(&id, seed), 0);
    assert_memory_equal(id.pk, pk, 32);
    assert_memory_equal(id.sk, seed, 32);
    assert_memory_equal(id.sk + 32, pk, 32);
    assert_int_equal(ident_sign(&id, "", NULL, 0, sig), 0);
    assert_memory_equal(sig, want, 64);
    assert_int_equal(ident_verify(pk, "", NULL, 0, sig), 0);
    /* The same signature is not valid under a domain tag. */
    assert_int_equal(ident_verify(pk, "pull/record/v1", NULL, 0, sig), PULL_ERR_BAD_SIG);
    ident_wipe(&id);
}

static void
test_sign_verify(void **state)
{
    struct ident a, b;
    uint8_t msg[100], sig[64], bad[64];
    (void)state;

    assert_int_equal(ident_generate(&a), 0);
    assert_int_equal(ident_generate(&b), 0);
    assert_memory_not_equal(a.pk, b.pk, 32);
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)i;
    assert_int_equal(ident_sign(&a, "pull/record/v1", msg, sizeof(msg), sig), 0);
    assert_int_equal(ident_verify(a.pk, "pull/record/v1", msg, sizeof(msg), sig), 0);
    /* wrong key, wrong domain, domain moved into the message */
    assert_int_equal(ident_verify(b.pk, "pull/record/v1", msg, sizeof(msg), sig), PULL_ERR_BAD_SIG);
    assert_int_equal(ident_verify(a.pk, "pull/attest/v1", msg, sizeof(msg), sig), PULL_ERR_BAD_SIG);
    assert_int_equal(ident_verify(a.pk, "pull/record/v", msg, sizeof(msg), sig), PULL_ERR_BAD_SIG);
    assert_int_equal(ident_verify(a.pk, "", msg, sizeof(msg), sig), PULL_ERR_BAD_SIG);
    /* every flipped bit of the signature, and some of the message */
    for (size_t i = 0; i < 64 * 8; i++) {
        memcpy(bad, sig, 64);
        bad[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(ident_verify(a.pk, "pull/record/v1", msg, sizeof(msg), bad),
                         PULL_ERR_BAD_SIG);
    }
    for (size_t i = 0; i < sizeof(msg) * 8; i += 7) {
        msg[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(ident_verify(a.pk, "pull/record/v1", msg, sizeof(msg), sig),
                         PULL_ERR_BAD_SIG);
        msg[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    /* truncated message */
    assert_int_equal(ident_verify(a.pk, "pull/record/v1", msg, sizeof(msg) - 1, sig),
                     PULL_ERR_BAD_SIG);
    assert_int_equal(ident_verify(a.pk, NULL, msg, sizeof(msg), sig), PULL_ERR_INVAL);
    assert_int_equal(ident_sign(&a, NULL, msg, sizeof(msg), bad), PULL_ERR_INVAL);
    ident_wipe(&a);
    ident_wipe(&b);
}

static void
test_sign_large_message(void **state)
{
    struct ident a;
    uint8_t *msg = malloc(100000), sig[64];
    (void)state;

    assert_non_null(msg);
    memset(msg, 0x5a, 100000);
    seeded(&a, 7);
    /* both the stack path and the heap path */
    for (size_t n = 4000; n <= 100000; n += 48000) {
        assert_int_equal(ident_sign(&a, "pull/record/v1", msg, n, sig), 0);
        assert_int_equal(ident_verify(a.pk, "pull/record/v1", msg, n, sig), 0);
        msg[n - 1] ^= 1;
        assert_int_equal(ident_verify(a.pk, "pull/record/v1", msg, n, sig), PULL_ERR_BAD_SIG);
        msg[n - 1] ^= 1;
    }
    free(msg);
    ident_wipe(&a);
}

static void
test_small_order_key_refused(void **state)
{
    uint8_t pk[32] = {1}, sig[64] = {1};
    (void)state;

    /* The identity point as key with R = identity and S = 0 "verifies" any message under a
     * lax verifier. */
    assert_int_equal(ident_verify(pk, "pull/record/v1", (const uint8_t *)"x", 1, sig),
                     PULL_ERR_BAD_SIG);
    memset(pk, 0, sizeof(pk));
    memset(sig, 0, sizeof(sig));
    assert_int_equal(ident_verify(pk, "pull/record/v1", (const uint8_t *)"x", 1, sig),
                     PULL_ERR_BAD_SIG);
}

static void
test_wipe(void **state)
{
    struct ident a, zero;
    (void)state;

    memset(&zero, 0, sizeof(zero));
    seeded(&a, 3);
    assert_memory_not_equal(&a, &zero, sizeof(a));
    ident_wipe(&a);
    assert_memory_equal(&a, &zero, sizeof(a));
}

static void
write_file(const char *path, const void *p, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void
test_key_file(void **state)
{
    char *dir = tu_tmpdir();
    char path[512], link[512], other[512];
    struct ident a, b;
    struct stat st;
    mode_t old;
    uint8_t junk[40] = {0};
    (void)state;

    snprintf(path, sizeof(path), "%s/key", dir);
    snprintf(link, sizeof(link), "%s/link", dir);
    snprintf(other, sizeof(other), "%s/other", dir);
    assert_int_equal(ident_load(path, &b), PULL_ERR_NOT_FOUND);

    seeded(&a, 9);
    old = umask(0); /* a permissive umask must not widen the mode */
    assert_int_equal(ident_save(&a, path), 0);
    umask(old);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);

    assert_int_equal(ident_load(path, &b), 0);
    assert_memory_equal(&a, &b, sizeof(a));

    /* never overwrite */
    seeded(&b, 10);
    assert_int_equal(ident_save(&b, path), PULL_ERR_EXISTS);
    assert_int_equal(ident_load(path, &b), 0);
    assert_memory_equal(a.pk, b.pk, 32);

    /* group or others may read or write: refused */
    const mode_t unsafe[] = {0644, 0640, 0604, 0620, 0602, 0610, 0601};
    for (size_t i = 0; i < sizeof(unsafe) / sizeof(unsafe[0]); i++) {
        assert_int_equal(chmod(path, unsafe[i]), 0);
        assert_int_equal(ident_load(path, &b), PULL_ERR_PERM);
        assert_int_equal(b.sk[0] | b.pk[0], 0); /* wiped on failure */
    }
    assert_int_equal(chmod(path, 0400), 0);
    assert_int_equal(ident_load(path, &b), 0);
    assert_memory_equal(a.sk, b.sk, 64);

    /* a symlink is refused on load, and save through it neither follows it nor succeeds */
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(ident_load(link, &b), PULL_ERR_PERM);
    char dangling[512];
    snprintf(dangling, sizeof(dangling), "%s/dangling", dir);
    assert_int_equal(symlink(other, dangling), 0);
    assert_int_equal(ident_save(&a, dangling), PULL_ERR_EXISTS);
    assert_int_equal(access(other, F_OK), -1); /* the target was not created */

    /* wrong sizes and non-files */
    write_file(other, junk, 31, 0600);
    assert_int_equal(ident_load(other, &b), PULL_ERR_BAD_KEY);
    write_file(other, junk, 33, 0600);
    assert_int_equal(ident_load(other, &b), PULL_ERR_BAD_KEY);
    write_file(other, junk, 0, 0600);
    assert_int_equal(ident_load(other, &b), PULL_ERR_BAD_KEY);
    chmod(dir, 0700);
    assert_int_equal(ident_load(dir, &b), PULL_ERR_BAD_KEY);
    char fifo[512];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(ident_load(fifo, &b), PULL_ERR_BAD_KEY); /* and does not hang */

    /* save into a directory that doesn't exist */
    snprintf(other, sizeof(other), "%s/nodir/key", dir);
    assert_int_equal(ident_save(&a, other), PULL_ERR_IO);

    ident_wipe(&a);
    ident_wipe(&b);
    tu_rmrf(dir);
    free(dir);
}

static void
check_b32(const char *bytes, const char *text)
{
    char out[64];
    uint8_t back[64];
    char upper[64];
    size_t n = strlen(bytes);

    assert_int_equal(ident_b32_encode((const uint8_t *)bytes, n, out), strlen(text));
    assert_string_equal(out, text);
    assert_int_equal(ident_b32_decode(text, strlen(text), back, sizeof(back)), (int)n);
    assert_memory_equal(back, bytes, n);
    for (size_t i = 0; i <= strlen(text); i++)
        upper[i] = (char)(text[i] >= 'a' && text[i] <= 'z' ? text[i] - 32 : text[i]);
    assert_int_equal(ident_b32_decode(upper, strlen(upper), back, sizeof(back)), (int)n);
    assert_memory_equal(back, bytes, n);
}

static void
test_base32_vectors(void **state)
{
    uint8_t out[16];
    (void)state;

    /* RFC 4648 section 10, lowercase and without padding */
    check_b32("", "");
    check_b32("f", "my");
    check_b32("fo", "mzxq");
    check_b32("foo", "mzxw6");
    check_b32("foob", "mzxw6yq");
    check_b32("fooba", "mzxw6ytb");
    check_b32("foobar", "mzxw6ytboi");

    /* lengths that can't end on a byte boundary */
    assert_int_equal(ident_b32_decode("m", 1, out, sizeof(out)), PULL_ERR_INVAL);
    assert_int_equal(ident_b32_decode("mzx", 3, out, sizeof(out)), PULL_ERR_INVAL);
    assert_int_equal(ident_b32_decode("mzxw6y", 6, out, sizeof(out)), PULL_ERR_INVAL);
    /* non-zero padding bits: a second spelling of "f" */
    assert_int_equal(ident_b32_decode("mz", 2, out, sizeof(out)), PULL_ERR_INVAL);
    /* padding and characters outside the alphabet */
    assert_int_equal(ident_b32_decode("my======", 8, out, sizeof(out)), PULL_ERR_INVAL);
    const char *bad[] = {"m0", "m1", "m8", "m9", "m ", "m-", "m\xc3", "m@", "m[", "m{"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ident_b32_decode(bad[i], 2, out, sizeof(out)), PULL_ERR_INVAL);
    assert_int_equal(ident_b32_decode("m\0", 2, out, sizeof(out)), PULL_ERR_INVAL);
    /* output too small */
    assert_int_equal(ident_b32_decode("mzxw6ytboi", 10, out, 5), PULL_ERR_INVAL);
}

static void
test_key_text(void **state)
{
    uint8_t key[32], back[32];
    char text[IDENT_TEXT_LEN + 1], s[IDENT_SHORT_LEN + 1], buf[64];
    (void)state;

    memset(key, 0, 32);
    ident_to_text(key, text);
    assert_int_equal(strlen(text), 52);
    assert_string_equal(text, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    memset(key, 0xff, 32);
    ident_to_text(key, text);
    assert_string_equal(text, "777777777777777777777777777777777777777777777777777q");
    assert_int_equal(ident_from_text(text, back), 0);
    assert_memory_equal(back, key, 32);
    /* the last character carries one bit: "r" sets a padding bit */
    text[51] = 'r';
    assert_int_equal(ident_from_text(text, back), PULL_ERR_INVAL);

    for (int round = 0; round < 200; round++) {
        randombytes_buf(key, 32);
        ident_to_text(key, text);
        assert_int_equal(strlen(text), IDENT_TEXT_LEN);
        for (size_t i = 0; i < IDENT_TEXT_LEN; i++)
            assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz234567", text[i]));
        assert_int_equal(ident_from_text(text, back), 0);
        assert_memory_equal(back, key, 32);
        for (size_t i = 0; i < IDENT_TEXT_LEN; i++)
            buf[i] = (char)(text[i] >= 'a' ? text[i] - 32 : text[i]);
        buf[IDENT_TEXT_LEN] = '\0';
        assert_int_equal(ident_from_text(buf, back), 0);
        assert_memory_equal(back, key, 32);
        ident_short(key, s);
        assert_int_equal(strlen(s), IDENT_SHORT_LEN);
        assert_memory_equal(s, text, IDENT_SHORT_LEN);
    }
    /* wrong lengths and characters */
    memcpy(buf, text, 53);
    buf[51] = '\0';
    assert_int_equal(ident_from_text(buf, back), PULL_ERR_INVAL);
    memcpy(buf, text, 52);
    buf[52] = 'a';
    buf[53] = '\0';
    assert_int_equal(ident_from_text(buf, back), PULL_ERR_INVAL);
    memcpy(buf, text, 53);
    buf[10] = '1';
    assert_int_equal(ident_from_text(buf, back), PULL_ERR_INVAL);
    buf[10] = '=';
    assert_int_equal(ident_from_text(buf, back), PULL_ERR_INVAL);
    assert_int_equal(ident_from_text("", back), PULL_ERR_INVAL);
    assert_int_equal(ident_from_text(NULL, back), PULL_ERR_INVAL);
}

static void
test_prefix(void **state)
{
    uint8_t key[32], other[32];
    char text[IDENT_TEXT_LEN + 1], buf[64];
    struct ident_prefix p;
    (void)state;

    randombytes_buf(key, 32);
    ident_to_text(key, text);
    for (size_t len = IDENT_PREFIX_MIN; len <= IDENT_TEXT_LEN; len++) {
        memcpy(buf, text, len);
        buf[len] = '\0';
        assert_int_equal(ident_prefix_parse(buf, &p), 0);
        assert_int_equal(p.nbits, len == 52 ? 256 : 5 * len);
        assert_true(ident_prefix_match(&p, key));
        /* changing the last character's value changes a bit inside the prefix */
        buf[len - 1] = buf[len - 1] == 'a' ? 'b' : 'a';
        if (len == 52) {
            /* only the top bit of the last character counts; others are padding */
            buf[51] = text[51] == 'a' ? 'q' : 'a';
        }
        assert_int_equal(ident_prefix_parse(buf, &p), 0);
        assert_false(ident_prefix_match(&p, key));
        /* the uppercase form is the same prefix */
        memcpy(buf, text, len);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)(buf[i] >= 'a' ? buf[i] - 32 : buf[i]);
        assert_int_equal(ident_prefix_parse(buf, &p), 0);
        assert_true(ident_prefix_match(&p, key));
    }
    /* a key that differs only in the bit right after a 30-bit prefix still matches */
    memcpy(other, key, 32);
    other[3] ^= 0x02; /* bit 30 */
    memcpy(buf, text, 6);
    buf[6] = '\0';
    assert_int_equal(ident_prefix_parse(buf, &p), 0);
    assert_true(ident_prefix_match(&p, other));
    other[3] ^= 0x06; /* now only bit 29 differs, and it is inside the prefix */
    assert_false(ident_prefix_match(&p, other));

    /* too short, too long, not base32 */
    assert_int_equal(ident_prefix_parse("abcde", &p), PULL_ERR_INVAL);
    assert_int_equal(ident_prefix_parse("", &p), PULL_ERR_INVAL);
    assert_int_equal(ident_prefix_parse(NULL, &p), PULL_ERR_INVAL);
    memcpy(buf, text, 52);
    buf[52] = 'a';
    buf[53] = '\0';
    assert_int_equal(ident_prefix_parse(buf, &p), PULL_ERR_INVAL);
    assert_int_equal(ident_prefix_parse("abcde1", &p), PULL_ERR_INVAL);
    assert_int_equal(ident_prefix_parse("abc def", &p), PULL_ERR_INVAL);
    assert_int_equal(ident_prefix_parse("abcdef=", &p), PULL_ERR_INVAL);
    /* 52 characters with padding bits set */
    memcpy(buf, text, 53);
    buf[51] = (char)(text[51] == 'a' ? 'b' : 'r');
    assert_int_equal(ident_prefix_parse(buf, &p), PULL_ERR_INVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8032_vector),
        cmocka_unit_test(test_sign_verify),
        cmocka_unit_test(test_sign_large_message),
        cmocka_unit_test(test_small_order_key_refused),
        cmocka_unit_test(test_wipe),
        cmocka_unit_test(test_key_file),
        cmocka_unit_test(test_base32_vectors),
        cmocka_unit_test(test_key_text),
        cmocka_unit_test(test_prefix),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
