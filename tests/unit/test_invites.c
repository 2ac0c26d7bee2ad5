/* Tests of the invitation table (daemon/invites.h): uses, expiry, persistence, bounds and
 * a hostile file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/invites.h"
#include "lib/err.h"
#include "testutil.h"

#define NOW 1800000000u

static void
secret_of(uint8_t s[INVITE_SECRET_BYTES], unsigned i)
{
    memset(s, 0, INVITE_SECRET_BYTES);
    memcpy(s, &i, sizeof(i));
    s[15] = 0x77;
}

static void
test_uses_and_expiry(void **state)
{
    char *dir = tu_tmpdir(), path[512], text[256];
    uint8_t a[INVITE_SECRET_BYTES], b[INVITE_SECRET_BYTES], c[INVITE_SECRET_BYTES];
    struct invites *iv;
    struct stat st;
    FILE *f;
    char buf[2048];
    size_t n;

    (void)state;
    secret_of(a, 1);
    secret_of(b, 2);
    secret_of(c, 3);
    assert_int_equal(invites_open(dir, &iv), 0);
    assert_int_equal(invites_add(iv, a, 2, NOW, NOW + 100), 0);
    assert_int_equal(invites_add(iv, b, 1, NOW, NOW + 10), 0);
    assert_int_equal(invites_add(iv, c, 0, NOW, NOW + 10), PULL_ERR_INVAL);
    assert_int_equal(invites_add(iv, c, 1, NOW, NOW), PULL_ERR_INVAL);
    assert_int_equal(invites_open_count(iv, NOW), 2);
    /* two uses of a, then used up */
    assert_int_equal(invites_redeem(iv, a, NOW + 1, text, sizeof(text)), 0);
    assert_string_equal(text, "accepted");
    assert_int_equal(invites_redeem(iv, a, NOW + 2, text, sizeof(text)), 0);
    assert_int_equal(invites_redeem(iv, a, NOW + 3, text, sizeof(text)), PULL_ERR_QUOTA);
    assert_non_null(strstr(text, "used up (2 of 2"));
    /* b expires */
    assert_int_equal(invites_redeem(iv, b, NOW + 10, text, sizeof(text)), PULL_ERR_EXPIRED);
    assert_non_null(strstr(text, "expired"));
    /* c was never made */
    assert_int_equal(invites_redeem(iv, c, NOW, text, sizeof(text)), PULL_ERR_NOT_FOUND);
    assert_non_null(strstr(text, "unknown"));
    invites_free(iv);

    /* the file is 0600, holds no secret, and the uses survive a restart */
    snprintf(path, sizeof(path), "%s/%s", dir, INVITES_FILE);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_non_null(f = fopen(path, "r"));
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_null(strstr(buf, "01000000000000000000000000000077"));
    assert_int_equal(invites_open(dir, &iv), 0);
    assert_int_equal(invites_redeem(iv, a, NOW + 4, text, sizeof(text)), PULL_ERR_QUOTA);
    assert_int_equal(invites_open_count(iv, NOW + 4), 1);
    /* long after their end, ended invitations are dropped when room is made */
    assert_int_equal(invites_add(iv, c, 1, NOW + 8 * 86400, NOW + 9 * 86400), 0);
    assert_int_equal(invites_redeem(iv, a, NOW + 8 * 86400, text, sizeof(text)),
                     PULL_ERR_NOT_FOUND);
    invites_free(iv);
    tu_rmrf(dir);
    free(dir);
}

static void
test_bounds(void **state)
{
    char *dir = tu_tmpdir(), text[256];
    uint8_t s[INVITE_SECRET_BYTES];
    struct invites *iv;

    (void)state;
    assert_int_equal(invites_open(dir, &iv), 0);
    for (unsigned i = 0; i < INVITES_MAX; i++) {
        secret_of(s, i);
        assert_int_equal(invites_add(iv, s, 1, NOW, NOW + 1000), 0);
    }
    secret_of(s, INVITES_MAX);
    assert_int_equal(invites_add(iv, s, 1, NOW, NOW + 1000), PULL_ERR_QUOTA);
    /* one used up makes room for a new one */
    secret_of(s, 7);
    assert_int_equal(invites_redeem(iv, s, NOW + 1, text, sizeof(text)), 0);
    secret_of(s, INVITES_MAX);
    assert_int_equal(invites_add(iv, s, 1, NOW + 1, NOW + 1000), 0);
    assert_int_equal(invites_open_count(iv, NOW + 1), INVITES_MAX - 1 + 1);
    invites_free(iv);
    tu_rmrf(dir);
    free(dir);
}

static void
test_hostile_file(void **state)
{
    char *dir = tu_tmpdir(), path[512], text[256];
    uint8_t s[INVITE_SECRET_BYTES];
    struct invites *iv;
    FILE *f;

    (void)state;
    snprintf(path, sizeof(path), "%s/%s", dir, INVITES_FILE);
    assert_non_null(f = fopen(path, "w"));
    fputs("# comment\n"
          "v1 zz 1 0 1 2\n"
          "v1 0000000000000000000000000000000000000000000000000000000000000000 0 0 1 2\n"
          "v1 0000000000000000000000000000000000000000000000000000000000000000 2 3 1 2\n"
          "v1 0000000000000000000000000000000000000000000000000000000000000000 1 0 1 2 x\n",
          f);
    for (int i = 0; i < 300; i++)
        fputc('a', f);
    fputs("\nv2 something\n\n", f);
    fclose(f);
    assert_int_equal(invites_open(dir, &iv), 0);
    assert_int_equal(invites_open_count(iv, 0), 0);
    secret_of(s, 1);
    assert_int_equal(invites_redeem(iv, s, NOW, text, sizeof(text)), PULL_ERR_NOT_FOUND);
    invites_free(iv);
    invites_free(NULL);
    tu_rmrf(dir);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uses_and_expiry),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_hostile_file),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
