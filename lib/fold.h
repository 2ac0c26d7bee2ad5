/*
 * fold: the one normalisation of words that search uses, for the index, for queries and for
 * tags, so that "CAFÉ", "Café" and "cafe", or "STRASSE" and "Straße", are the same word.
 *
 * Words. Text splits into tokens at every character that is not a letter, a mark or a
 * number (Unicode general categories L*, M*, N*; in ASCII: a-z, A-Z, 0-9). So punctuation
 * and symbols anywhere in Unicode separate words: "¿dónde?", "l'école" and "«vélo»" give
 * "dónde", "l" "école" and "vélo".
 *
 * Folding a token or a tag, in this order (utf8proc):
 *   1. compatibility decomposition and full Unicode case folding (NFKD + casefold: "ﬁ" is
 *      "fi", "Ｒｕｓｔ" is "rust", "ß" and "ẞ" are "ss"), default-ignorable characters
 *      (soft hyphens, zero-width joiners) dropped;
 *   2. accents stripped: a combining mark (category Mn or Me) is dropped when the letter it
 *      sits on is Latin or Greek (below U+0400, or U+1E00..U+1FFF); marks of other scripts
 *      stay, because there they make other letters or words (Cyrillic й, Devanagari vowel
 *      signs);
 *   3. the Latin letters that carry their accent inside and have no decomposition become
 *      their plain spelling: œ oe, æ ae, ø o, ł l, đ d, ı i;
 *   4. canonical composition (so the result is NFKC of what stayed).
 * ASCII text takes a fast path that only lowercases. Pure functions, no allocation.
 *
 * Characters. fold_chars counts code points, which is what people count (a limit shown to
 * people is in characters; the wire counts bytes).
 */
#ifndef PULL_FOLD_H
#define PULL_FOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* fold_is_word reports whether code point cp is part of a word (a letter, mark or number). */
bool fold_is_word(uint32_t cp);

/* fold_next finds the next token of s[0..n) at or after *off: returns a pointer to its
 * first byte and sets *len to its length in bytes, or returns NULL when there is none.
 * *off moves past the token. Invalid UTF-8 bytes separate words. */
const char *fold_next(const char *s, size_t n, size_t *off, size_t *len);

/* fold_token folds the token tok[0..n) into out, NUL-terminated. The result is cut at a
 * character boundary so that it fits in cap - 1 bytes (cap >= 2), and only about the first
 * 4 * cap bytes of a long token are read, so the cost is bounded whatever the input. Returns
 * the folded length in bytes (0 if nothing is left, e.g. a token of marks alone). */
size_t fold_token(const char *tok, size_t n, char *out, size_t cap);

/* fold_string folds a whole string the same way, separators included (a tag: "Code-Review"
 * is "code-review", "CAFÉ" is "cafe"). Returns the folded length in bytes, or -1 if it does
 * not fit in cap - 1 bytes (out then holds the part that fits). */
long fold_string(const char *s, char *out, size_t cap);

/* fold_chars returns the number of characters (code points) of the UTF-8 text s[0..n);
 * each invalid byte counts as one. */
size_t fold_chars(const char *s, size_t n);

/* fold_cps decodes the UTF-8 text s[0..n) into at most max code points; returns how many. */
size_t fold_cps(const char *s, size_t n, uint32_t *cps, size_t max);

#endif
