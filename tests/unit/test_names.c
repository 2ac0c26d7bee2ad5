/* Tests of the names directory (lib/names.h): the text rules (controls, bidi and invisible
 * characters refused), labels (petname first, a chosen name alone only while unique, never
 * "you"), petnames unique, finding people by petname or unique name, older profiles not
 * replacing newer ones, names cut at a character boundary, and renaming leaving nothing
 * behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/ident.h"
#include "lib/names.h"

static const uint8_t seed[16] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

static void
key(unsigned i, uint8_t out[32])
{
    memset(out, 0x11 * (i % 15 + 1), 32);
    out[0] = (uint8_t)i;
}

static const char *
shortk(unsigned i, char out[IDENT_SHORT_LEN + 1])
{
    uint8_t k[32];

    key(i, k);
    ident_short(k, out);
    return out;
}

static struct names *
dir(void)
{
    struct names *nm = NULL;

    assert_int_equal(names_new(seed, &nm), 0);
    return nm;
}

static int
set(struct names *nm, unsigned i, const char *name, uint64_t created)
{
    uint8_t k[32];

    key(i, k);
    return names_set_name(nm, k, name, name ? strlen(name) : 0, created);
}

static const char *
label(struct names *nm, unsigned i)
{
    static char out[NAMES_LABEL_MAX];
    uint8_t k[32];

    key(i, k);
    return names_label(nm, k, out);
}

static void
test_text_rules(void **state)
{
    char longname[NAMES_NAME_MAX + 2];
    (void)state;

    assert_int_equal(names_check_text("Ada Lovelace", 12, 64, false), 0);
    assert_int_equal(names_check_text("Zoë", 4, 64, false), 0);
    assert_int_equal(names_check_text("李小龙", 9, 64, false), 0);
    assert_int_equal(names_check_text("", 0, 64, false), PULL_ERR_FIELD);
    assert_int_equal(names_check_text("!!! ---", 7, 64, false), PULL_ERR_FIELD); /* no letter */
    memset(longname, 'a', sizeof(longname));
    assert_int_equal(names_check_text(longname, NAMES_NAME_MAX + 1, NAMES_NAME_MAX, false),
                     PULL_ERR_FIELD);
    assert_int_equal(names_check_text(longname, NAMES_NAME_MAX, NAMES_NAME_MAX, false), 0);
    assert_int_equal(names_check_text("A\nB", 3, 64, false), PULL_ERR_CONTROL);
    assert_int_equal(names_check_text("A\nB\tc", 5, 64, true), 0);
    assert_int_equal(names_check_text("A\rB", 3, 64, true), PULL_ERR_CONTROL);
    assert_int_equal(names_check_text("A\x7f", 2, 64, false), PULL_ERR_CONTROL);
    assert_int_equal(names_check_text("A\xc2\x85", 3, 64, true), PULL_ERR_CONTROL); /* NEL */
    /* RLO, zero-width space, word joiner, BOM, tag characters */
    assert_int_equal(names_check_text("Ada\xe2\x80\xae", 6, 64, false), PULL_ERR_CONTROL);
    assert_int_equal(names_check_text("A\xe2\x80\x8b"
                                      "da",
                                      6, 64, false),
                     PULL_ERR_CONTROL);
    assert_int_equal(names_check_text("A\xe2\x81\xa0", 4, 64, false), PULL_ERR_CONTROL);
    assert_int_equal(names_check_text("\xef\xbb\xbf"
                                      "A",
                                      4, 64, false),
                     PULL_ERR_CONTROL);
    assert_int_equal(names_check_text("A\xf3\xa0\x80\x81", 5, 64, false), PULL_ERR_CONTROL);
    assert_int_equal(names_check_text("A\xff", 2, 64, false), PULL_ERR_UTF8);
    assert_int_equal(names_check_text("A\xe2\x80", 3, 64, false), PULL_ERR_UTF8);
    assert_true(names_cp_hidden(0x202e));
    assert_false(names_cp_hidden('a'));
}

static void
test_labels(void **state)
{
    struct names *nm = dir();
    char s1[16], s2[16], want[NAMES_LABEL_MAX], full[NAMES_LABEL_MAX];
    uint8_t k[32];
    (void)state;

    assert_string_equal(label(nm, 1), shortk(1, s1)); /* nobody: the key */
    assert_int_equal(set(nm, 1, "Ada", 100), 0);
    assert_string_equal(label(nm, 1), "Ada");
    key(1, k);
    assert_true(names_unique(nm, k));
    snprintf(want, sizeof(want), "Ada (%s)", shortk(1, s1));
    assert_string_equal(names_full(nm, k, full), want);
    /* another author chooses a name that reads the same: neither is shown alone */
    assert_int_equal(set(nm, 2, "ÀDA", 100), 0);
    assert_string_equal(label(nm, 1), want);
    snprintf(want, sizeof(want), "ÀDA (%s)", shortk(2, s2));
    assert_string_equal(label(nm, 2), want);
    /* the impostor renames: Ada is alone again */
    assert_int_equal(set(nm, 2, "Bob", 200), 0);
    assert_string_equal(label(nm, 1), "Ada");
    assert_string_equal(label(nm, 2), "Bob");
    /* my petname wins, and a chosen name that reads like one of my petnames is suffixed */
    key(2, k);
    assert_int_equal(names_set_petname(nm, k, "Ada"), 0);
    assert_string_equal(label(nm, 2), "Ada");
    snprintf(want, sizeof(want), "Ada (%s)", shortk(1, s1));
    assert_string_equal(label(nm, 1), want);
    snprintf(want, sizeof(want), "Ada (%s)", shortk(2, s2));
    assert_string_equal(names_full(nm, k, full), want);
    assert_string_equal(names_name(nm, k), "Bob");
    assert_string_equal(names_petname(nm, k), "Ada");
    /* removing the petname */
    assert_int_equal(names_set_petname(nm, k, NULL), 0);
    assert_null(names_petname(nm, k));
    assert_string_equal(label(nm, 1), "Ada");
    /* "you" is never shown alone */
    assert_int_equal(set(nm, 3, "You", 100), 0);
    snprintf(want, sizeof(want), "You (%s)", shortk(3, s1));
    assert_string_equal(label(nm, 3), want);
    names_free(nm);
}

static void
test_petnames_unique(void **state)
{
    struct names *nm = dir();
    uint8_t k1[32], k2[32];
    size_t pets;
    (void)state;

    key(1, k1);
    key(2, k2);
    assert_int_equal(names_set_petname(nm, k1, "Mum"), 0);
    assert_int_equal(names_set_petname(nm, k2, "MUM"), PULL_ERR_EXISTS);
    assert_int_equal(names_set_petname(nm, k1, "mum"), 0); /* the same person again */
    assert_string_equal(names_petname(nm, k1), "mum");
    assert_int_equal(names_set_petname(nm, k2, "Dad"), 0);
    assert_int_equal(names_count(nm, &pets), 0);
    assert_int_equal(pets, 2);
    assert_int_equal(names_set_petname(nm, k1, "!!"), PULL_ERR_FIELD);
    names_free(nm);
}

static void
test_find(void **state)
{
    struct names *nm = dir();
    uint8_t k[32], want[32];
    unsigned count;
    (void)state;

    set(nm, 1, "Ada Lovelace", 1);
    set(nm, 2, "Lin", 1);
    set(nm, 3, "lin", 1);
    assert_int_equal(names_find(nm, "ada   LOVELACE", k, &count), 0);
    key(1, want);
    assert_memory_equal(k, want, 32);
    assert_int_equal(names_find(nm, "Lin", k, &count), PULL_ERR_AMBIGUOUS);
    assert_int_equal(count, 2);
    assert_int_equal(names_find(nm, "nobody", k, &count), PULL_ERR_NOT_FOUND);
    assert_int_equal(names_find(nm, "", k, NULL), PULL_ERR_NOT_FOUND);
    /* a petname is found first, even over a chosen name that reads the same */
    key(3, want);
    assert_int_equal(names_set_petname(nm, want, "LIN"), 0);
    assert_int_equal(names_find(nm, "lin", k, &count), 0);
    assert_memory_equal(k, want, 32);
    memset(k, 0, sizeof(k));
    assert_int_equal(names_find_petname(nm, "Lin", k), 0);
    assert_memory_equal(k, want, 32);
    assert_int_equal(names_find_petname(nm, "Ada Lovelace", k), PULL_ERR_NOT_FOUND);
    names_free(nm);
}

static void
test_profile_order(void **state)
{
    struct names *nm = dir();
    uint8_t k[32];
    char s[16], name[2 * NAMES_NAME_MAX];
    size_t pets;
    (void)state;

    key(1, k);
    assert_int_equal(set(nm, 1, "New", 200), 0);
    assert_int_equal(set(nm, 1, "Old", 100), 0); /* an older profile arriving late */
    assert_string_equal(names_name(nm, k), "New");
    assert_int_equal(set(nm, 1, NULL, 300), 0); /* a newer profile without a name */
    assert_null(names_name(nm, k));
    assert_string_equal(label(nm, 1), shortk(1, s));
    /* a name with a bidi override is ignored: the person shows by key */
    assert_int_equal(set(nm, 1,
                         "\xe2\x80\xae"
                         "evil",
                         400),
                     0);
    assert_null(names_name(nm, k));
    /* long names are cut at a character boundary */
    memset(name, 0, sizeof(name));
    for (size_t i = 0; i + 2 < sizeof(name) - 1; i += 2)
        memcpy(name + i, "\xc3\xa9", 2); /* é */
    assert_int_equal(set(nm, 1, name, 500), 0);
    assert_int_equal(strlen(names_name(nm, k)), NAMES_NAME_MAX);
    /* renamed a thousand times: one name, the latest */
    for (unsigned i = 0; i < 1000; i++) {
        char n[32];
        snprintf(n, sizeof(n), "name %u", i);
        assert_int_equal(set(nm, 1, n, 1000 + i), 0);
    }
    assert_int_equal(names_count(nm, &pets), 1);
    assert_string_equal(label(nm, 1), "name 999");
    names_free(nm);
}

static int
count_pet(void *ctx, const uint8_t key[32], const char *pet)
{
    (void)key;
    (void)pet;
    ++*(unsigned *)ctx;
    return 0;
}

static void
test_many(void **state)
{
    struct names *nm = dir();
    unsigned n = 0;
    (void)state;

    for (unsigned i = 0; i < 5000; i++) {
        uint8_t k[32];
        char name[32];
        memset(k, 0, sizeof(k));
        k[0] = (uint8_t)(i >> 8);
        k[1] = (uint8_t)i;
        snprintf(name, sizeof(name), "person %u", i % 2500);
        assert_int_equal(names_set_name(nm, k, name, strlen(name), 1), 0);
        if (i % 100 == 0) {
            snprintf(name, sizeof(name), "pet %u", i);
            assert_int_equal(names_set_petname(nm, k, name), 0);
        }
    }
    assert_int_equal(names_count(nm, NULL), 5000);
    assert_int_equal(names_each_petname(nm, count_pet, &n), 0);
    assert_int_equal(n, 50);
    names_free(nm);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_rules),      cmocka_unit_test(test_labels),
        cmocka_unit_test(test_petnames_unique), cmocka_unit_test(test_find),
        cmocka_unit_test(test_profile_order),   cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
