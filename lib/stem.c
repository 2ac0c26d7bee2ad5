#include "lib/stem.h"

#include <libstemmer.h>
#include <stdbool.h>
#include <string.h>

/* Snowball's algorithms in Debian's libstemmer 2.2, by ISO 639-1 code; index = id. */
static const char *const codes[STEM_LANGS] = {
    "",   "en", "de", "fr", "es", "it", "pt", "nl", "sv", "no", "da", "fi", "ru", "hu", "ro",
    "tr", "ca", "eu", "el", "ar", "hy", "hi", "id", "ga", "lt", "ne", "sr", "ta", "yi",
};

static struct sb_stemmer *stemmers[STEM_LANGS];
static bool failed[STEM_LANGS];

int
stem_lang_parse(const char *s, size_t n)
{
    if (n != 2)
        return -1;
    for (int i = 1; i < STEM_LANGS; i++) {
        if (codes[i][0] == s[0] && codes[i][1] == s[1])
            return i;
    }
    return -1;
}

const char *
stem_lang_code(unsigned lang)
{
    return lang < STEM_LANGS ? codes[lang] : NULL;
}

int
stem_is_lang_tag(const char *tag)
{
    return strncmp(tag, STEM_TAG_PREFIX, sizeof(STEM_TAG_PREFIX) - 1) == 0;
}

unsigned
stem_lang_of(const struct record *rec)
{
    unsigned ntags = rec->ntags < RECORD_TAGS_MAX ? rec->ntags : RECORD_TAGS_MAX;
    const size_t pl = sizeof(STEM_TAG_PREFIX) - 1;

    for (unsigned i = 0; i < ntags; i++) {
        const char *t = rec->tags[i];
        int id;
        if (!stem_is_lang_tag(t))
            continue;
        id = stem_lang_parse(t + pl, strnlen(t + pl, RECORD_TAG_MAX));
        return id < 0 ? STEM_NONE : (unsigned)id;
    }
    return STEM_EN;
}

size_t
stem_word(unsigned lang, const char *w, size_t n, char *out, size_t cap)
{
    struct sb_stemmer *st = NULL;
    const sb_symbol *r = NULL;
    size_t len;

    if (lang != STEM_NONE && lang < STEM_LANGS && !failed[lang]) {
        if (stemmers[lang] == NULL &&
            (stemmers[lang] = sb_stemmer_new(codes[lang], "UTF_8")) == NULL)
            failed[lang] = true;
        st = stemmers[lang];
    }
    if (st != NULL && (r = sb_stemmer_stem(st, (const sb_symbol *)w, (int)n)) != NULL) {
        w = (const char *)r;
        n = (size_t)sb_stemmer_length(st);
    }
    len = n < cap - 1 ? n : cap - 1;
    while (len < n && len > 0 && ((uint8_t)w[len] & 0xc0) == 0x80)
        len--;
    memcpy(out, w, len);
    out[len] = '\0';
    return len;
}
