/*
 * json: JSON text from MessagePack values, for the CLI's --json output.
 *
 * The control protocol's results are JSON-ready MessagePack (proto/ctl.h), so one generic
 * converter prints every command's result: maps become objects (keys must be str; a uint
 * key becomes its decimal string), arrays arrays, str strings, integers numbers, bools and
 * nil themselves. bin has no JSON form and becomes a lowercase hex string. Floats print
 * with up to 17 significant digits (NaN and infinities as null). ext is refused.
 *
 * Strings are escaped so that any JSON parser reads back the same text: quote, backslash
 * and every control character (U+0000..U+001F, U+007F..U+009F) are escaped, and so are the
 * hidden code points of lib/record.h (record_cp_hidden: bidi controls, zero-width and other
 * invisible characters, U+2028/U+2029 - the output is also valid JavaScript), as \uXXXX
 * (surrogate pairs above U+FFFF), so that a terminal showing the JSON shows them as
 * escapes; other valid UTF-8 passes through unchanged; each byte of invalid UTF-8 becomes
 * U+FFFD. Output is compact (no spaces, no newline).
 *
 * Reading is bounded (lib/mp.h's reader; nesting at most JSON_MAX_DEPTH) and never reads
 * past the input; the output grows in a struct pull_wb up to its own limit.
 */
#ifndef PULL_JSON_H
#define PULL_JSON_H

#include <stddef.h>

#include "lib/buf.h"

#define JSON_MAX_DEPTH 32

/* json_str appends s[0..n) as a JSON string literal, quotes included. Returns 0 or the
 * writer's error. */
int json_str(struct pull_wb *out, const char *s, size_t n);

/* json_from_mp converts the one MessagePack value at r to JSON appended to out, and
 * advances r past it. Returns 0, a reader error (PULL_ERR_TRUNCATED, MALFORMED,
 * NONCANONICAL, UTF8, DEPTH, FIELD for a non-str map key or ext) or the writer's error;
 * on error r is unchanged and out may hold a partial value (callers discard it). */
int json_from_mp(struct pull_rd *r, struct pull_wb *out);

#endif
