/*
 * stem: Snowball stemmers (libstemmer) for search, so that "bicycles" finds "bicycle" and
 * "mentoring" finds "mentor".
 *
 * Languages. A record's language is named by a tag `lang-xx`, xx an ISO 639-1 code that
 * Snowball has a stemmer for (stem_lang_parse lists them); a record without one is English.
 * The tag and not a new record field, because tags already travel and every node accepts
 * `lang-de` today (`lang:de` would not: ':' is outside the tag alphabet); see
 * docs/DECISIONS.md. Language ids are small integers, STEM_NONE (0: no stemming) and then
 * one per supported code, below STEM_LANGS.
 *
 * Stemming works on folded words (lib/fold.h), on both sides: the index stems the words of
 * a record in the record's language, a query word is stemmed in each language the index
 * holds, and a record matches a stem only in its own language.
 *
 * The stemmers are created on first use and kept for the life of the process (they hold
 * only tables). Not thread-safe: pull uses them from one thread.
 */
#ifndef PULL_STEM_H
#define PULL_STEM_H

#include <stddef.h>
#include <stdint.h>

#include "lib/record.h"

enum { STEM_NONE = 0, STEM_EN = 1 };
#define STEM_LANGS 29      /* ids 0..28 */
#define STEM_TAG_PREFIX "lang-"

/* stem_lang_parse returns the id of the ISO 639-1 code s[0..n) ("en", "de", ...), or -1. */
int stem_lang_parse(const char *s, size_t n);

/* stem_lang_code returns the code of a language id ("" for STEM_NONE, NULL if unknown). */
const char *stem_lang_code(unsigned lang);

/* stem_lang_tag reports whether tag names a language (`lang-` followed by anything). */
int stem_is_lang_tag(const char *tag);

/* stem_lang_of returns the language of a record: the first tag `lang-xx` with a known
 * code, else STEM_EN. A `lang-xx` tag with an unknown code gives STEM_NONE (no stemming
 * rather than English rules on another language). */
unsigned stem_lang_of(const struct record *rec);

/* stem_word writes the stem of the folded word w[0..n) in language lang into out
 * (NUL-terminated, cut at a character boundary to cap - 1 bytes) and returns its length.
 * With STEM_NONE, or if the stemmer can't be made, the stem is the word itself. */
size_t stem_word(unsigned lang, const char *w, size_t n, char *out, size_t cap);

#endif
