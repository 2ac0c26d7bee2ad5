/*
 * fmt: the CLI's text formatting, pure functions (no I/O, no globals) so that
 * tests/unit/test_cli.c checks them directly.
 *
 * Widths are counted in code points: every character is taken as one column (East Asian
 * wide characters and combining marks are not special-cased). Text from the network is
 * always passed through fmt_clean before it reaches a terminal: records can't contain
 * control characters (lib/record.h), nor, since text rule 2, bidi controls or invisible
 * characters, but records stored before that rule may, and the CLI does not rely on the
 * daemon for any of it. --json output escapes the same characters (lib/json.h).
 */
#ifndef PULL_CLI_FMT_H
#define PULL_CLI_FMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

/* fmt_reltime writes t relative to now: "now", "in 45 s", "in 12 min", "3 h ago",
 * "in 1 day", "in 30 days", "2 years ago". The largest unit, rounded to the nearest. */
void fmt_reltime(char *out, size_t n, int64_t t, int64_t now);

/* fmt_when writes the local time t for a person, with its zone, and the date only when t is
 * not today (now's local day): "14:03 CEST (3 h ago)", "2026-11-20 19:16 CET (3 days
 * ago)". Reads the local time zone (TZ). */
void fmt_when(char *out, size_t n, int64_t t, int64_t now);

/* fmt_duration writes a span in at most two units: "5 s", "12 min 5 s", "3 h 12 min",
 * "2 days 3 h". */
void fmt_duration(char *out, size_t n, uint64_t secs);

/* fmt_parse_duration parses a positive number with its unit: s, min, h, d or w ("30d",
 * "12h", "90min"). A bare number or "m" (minutes or months?) is refused. Returns 0,
 * PULL_ERR_INVAL if it isn't one, or PULL_ERR_TOO_BIG if it exceeds max seconds. */
int fmt_parse_duration(const char *s, uint64_t max, uint64_t *secs);

/* fmt_width returns the display width of s[0..n) (code points). */
size_t fmt_width(const char *s, size_t n);

/* fmt_clean copies s[0..len) into out (size n, NUL-terminated) for a terminal: control
 * characters (C0, DEL, C1) and the hidden code points of lib/record.h (record_cp_hidden:
 * bidi controls, zero-width and other invisible characters) are shown escaped, as
 * "<U+202E>", so that nothing can reorder, hide or recolour what is printed - except \n
 * and \t: kept when keep_newlines, turned into spaces otherwise; invalid UTF-8 bytes
 * become '?'. The copy is cut at a character (or escape) boundary if out is too small.
 * Returns its length. */
size_t fmt_clean(char *out, size_t n, const char *s, size_t len, bool keep_newlines);

/* fmt_fit copies s into out cut to at most width columns, ending with "…" if it was cut.
 * Returns the length in bytes. */
size_t fmt_fit(char *out, size_t n, const char *s, size_t width);

/* fmt_edit_distance returns the Damerau-Levenshtein (optimal string alignment) distance
 * between a and b, bytes compared exactly; strings longer than 64 bytes return 64+. */
unsigned fmt_edit_distance(const char *a, const char *b);

/* fmt_closest returns the name in names[0..n) closest to word, or NULL if none is close
 * enough to suggest (a unique name that starts with word, or an edit distance of at most 2
 * and less than half of word's length). */
const char *fmt_closest(const char *word, const char *const *names, size_t n);

/* fmt_id_prefix checks that s is an id prefix a user may type (IDENT_PREFIX_MIN..52 base32
 * characters, any case) and writes it lowercased into out. Returns 0 or PULL_ERR_INVAL. */
int fmt_id_prefix(const char *s, char out[53]);

/* A text table: rows of cells, rendered with columns aligned. Cells are copied. */
struct fmt_table {
    unsigned ncols;
    size_t nrows; /* the header is row 0 */
    size_t cap;
    char **cells;         /* nrows * ncols */
    const char *color[8]; /* SGR parameters for each column's cells ("33"), or NULL */
    bool header;          /* row 0 is a header */
};

#define FMT_TABLE_MAX_COLS 8

/* fmt_table_init prepares a table whose header is head[0..ncols) (ncols <= 8), or
 * without a header if head is NULL. */
int fmt_table_init(struct fmt_table *t, unsigned ncols, const char *const *head);

/* fmt_table_add appends a row of ncols cells (NULL cells print empty). */
int fmt_table_add(struct fmt_table *t, const char *const *cells);

/* fmt_table_render appends the table to out: columns separated by two spaces, padded to
 * the widest cell, no trailing spaces. If max_width > 0 and the table is wider, column
 * flex is shrunk (not below 10 columns) and its cells cut with "…". With color, the header
 * is bold and columns with a color get it. */
int fmt_table_render(const struct fmt_table *t, struct pull_wb *out, size_t max_width, int flex,
                     bool color);

/* fmt_table_free frees the cells; the table may be initialised again. */
void fmt_table_free(struct fmt_table *t);

#endif
