/* Tests of lib/fold (the one normalisation of words) and lib/stem (Snowball stemmers and
 * record languages). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "lib/fold.h"
#include "lib/stem.h"

static const char *
fold(const char *s)
{
    static char out[64];

    fold_token(s, strlen(s), out, sizeof(out));
    return out;
}

static void
test_fold_words(void **state)
{
    (void)state;
    assert_string_equal(fold("CAFÉ"), "cafe");
    assert_string_equal(fold("Café"), "cafe");
    assert_string_equal(fold("cafe\xcc\x81"), "cafe"); /* e + combining acute */
    assert_string_equal(fold("Straße"), "strasse");
    assert_string_equal(fold("STRASSE"), "strasse");
    assert_string_equal(fold("\xe1\xba\x9e"), "ss"); /* capital sharp s */
    assert_string_equal(fold("ﬁne"), "fine");
    assert_string_equal(fold("Ｒｕｓｔ"), "rust");
    assert_string_equal(fold("Œuvre"), "oeuvre");
    assert_string_equal(fold("Ærø"), "aero");
    assert_string_equal(fold("Łódź"), "lodz");
    assert_string_equal(fold("naïve"), "naive");
    assert_string_equal(fold("Fahrräder"), "fahrrader");
    assert_string_equal(fold("ΆΘΗΝΑ"), "αθηνα"); /* Greek: case and tonos */
    assert_string_equal(fold("Йод"), "йод");    /* Cyrillic keeps its breve */
    assert_string_equal(fold("soft\xc2\xadhyphen"), "softhyphen");
    assert_string_equal(fold("plain"), "plain");
    assert_string_equal(fold("MiXeD123"), "mixed123");
}

static void
test_fold_bounds(void **state)
{
    char out[8], big[4000];
    (void)state;

    /* Cut at a character boundary to fit. */
    assert_int_equal(fold_token("abcdefghij", 10, out, sizeof(out)), 7);
    assert_string_equal(out, "abcdefg");
    assert_int_equal(fold_token("ééééé", 10, out, sizeof(out)), 5);
    assert_int_equal(fold_token("жжжжж", 10, out, sizeof(out)), 6);
    assert_string_equal(out, "жжж");
    /* Thousands of combining marks cost a bounded amount and give the base letter. */
    big[0] = 'a';
    for (size_t i = 1; i + 2 < sizeof(big); i += 2) {
        big[i] = (char)0xcc;
        big[i + 1] = (char)0x81;
    }
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(fold_token(big, strlen(big), out, sizeof(out)), 1);
    assert_string_equal(out, "a");
    /* Invalid UTF-8 never crashes and is dropped. */
    assert_true(fold_token("ab\xff\xfe", 4, out, sizeof(out)) <= 2);
    /* Whole strings: tags. */
    {
        char t[34];
        assert_int_equal(fold_string("Code-Review", t, sizeof(t)), 11);
        assert_string_equal(t, "code-review");
        assert_int_equal(fold_string("CAFÉ", t, sizeof(t)), 4);
        assert_string_equal(t, "cafe");
        assert_int_equal(fold_string("ßßßßßßßßßßßßßßßßßß", t, sizeof(t)), -1); /* 36 bytes */
    }
    assert_int_equal(fold_chars("é", 2), 1);
    assert_int_equal(fold_chars("aé€😀", 10), 4);
}

static void
test_tokens(void **state)
{
    const char *s = "¿Dónde? «vélo» l'école, don't; 3d-print a—b café…ok";
    const char *want[] = {"donde", "velo", "l", "ecole", "don", "t", "3d",
                          "print", "a",    "b", "cafe",  "ok"};
    size_t off = 0, len, i = 0, n = strlen(s);
    const char *t;
    (void)state;

    while ((t = fold_next(s, n, &off, &len)) != NULL) {
        char out[40];
        assert_true(i < sizeof(want) / sizeof(want[0]));
        fold_token(t, len, out, sizeof(out));
        assert_string_equal(out, want[i]);
        i++;
    }
    assert_int_equal(i, sizeof(want) / sizeof(want[0]));
}

static const char *
stem(unsigned lang, const char *w)
{
    static char out[40];

    stem_word(lang, w, strlen(w), out, sizeof(out));
    return out;
}

static void
test_stems(void **state)
{
    int de = stem_lang_parse("de", 2), fr = stem_lang_parse("fr", 2), es = stem_lang_parse("es", 2);
    struct record r;
    (void)state;

    assert_true(de > 0 && fr > 0 && es > 0);
    assert_int_equal(stem_lang_parse("en", 2), STEM_EN);
    assert_int_equal(stem_lang_parse("xx", 2), -1);
    assert_int_equal(stem_lang_parse("eng", 3), -1);
    assert_string_equal(stem_lang_code((unsigned)de), "de");
    assert_string_equal(stem(STEM_EN, "bicycles"), stem(STEM_EN, "bicycle"));
    assert_string_equal(stem(STEM_EN, "mentoring"), "mentor");
    assert_string_equal(stem((unsigned)de, "fahrrader"), stem((unsigned)de, "fahrrad"));
    assert_string_equal(stem((unsigned)fr, "ecoles"), stem((unsigned)fr, "ecole"));
    assert_string_equal(stem((unsigned)es, "bicicletas"), stem((unsigned)es, "bicicleta"));
    assert_string_equal(stem(STEM_NONE, "bicycles"), "bicycles");

    memset(&r, 0, sizeof(r));
    assert_int_equal(stem_lang_of(&r), STEM_EN);
    snprintf(r.tags[r.ntags++], sizeof(r.tags[0]), "bike");
    snprintf(r.tags[r.ntags++], sizeof(r.tags[0]), "lang-de");
    assert_int_equal(stem_lang_of(&r), (unsigned)de);
    snprintf(r.tags[1], sizeof(r.tags[0]), "lang-zz");
    assert_int_equal(stem_lang_of(&r), STEM_NONE);
    assert_true(stem_is_lang_tag("lang-fr"));
    assert_false(stem_is_lang_tag("language"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_words),
        cmocka_unit_test(test_fold_bounds),
        cmocka_unit_test(test_tokens),
        cmocka_unit_test(test_stems),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
