#include "cli/fmt.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/err.h"
#include "lib/ident.h"
#include "lib/record.h"

static void
plural(char *out, size_t n, uint64_t v, const char *one, const char *many)
{
    snprintf(out, n, "%" PRIu64 " %s", v, v == 1 ? one : many);
}

/* The largest unit of a span, rounded to the nearest: "45 s", "13 min", "3 h", "30 days"
 * (a 30-day record reads "in 30 days" for its first half day, not "in 29 days" a second
 * after it was made). */
static void
span(char *out, size_t n, uint64_t a)
{
    if (a < 60)
        snprintf(out, n, "%" PRIu64 " s", a);
    else if (a < 3600 - 30)
        snprintf(out, n, "%" PRIu64 " min", (a + 30) / 60);
    else if (a < 86400 - 1800)
        snprintf(out, n, "%" PRIu64 " h", (a + 1800) / 3600);
    else if (a < 365 * 86400ull - 43200)
        plural(out, n, (a + 43200) / 86400, "day", "days");
    else
        plural(out, n, (a + 365 * 43200ull) / (365 * 86400ull), "year", "years");
}

void
fmt_reltime(char *out, size_t n, int64_t t, int64_t now)
{
    char s[48];
    uint64_t a;

    if (n == 0)
        return;
    if (t == now) {
        snprintf(out, n, "now");
        return;
    }
    a = t > now ? (uint64_t)t - (uint64_t)now : (uint64_t)now - (uint64_t)t;
    span(s, sizeof(s), a);
    if (t > now)
        snprintf(out, n, "in %s", s);
    else
        snprintf(out, n, "%s ago", s);
}

void
fmt_when(char *out, size_t n, int64_t t, int64_t now)
{
    time_t tt = (time_t)t, tn = (time_t)now;
    struct tm tm, today;
    char date[64], rel[48];

    fmt_reltime(rel, sizeof(rel), t, now);
    if (localtime_r(&tt, &tm) == NULL || localtime_r(&tn, &today) == NULL ||
        strftime(date, sizeof(date),
                 tm.tm_year == today.tm_year && tm.tm_yday == today.tm_yday ? "%H:%M %Z"
                                                                            : "%Y-%m-%d %H:%M %Z",
                 &tm) == 0) {
        snprintf(out, n, "%s", rel);
        return;
    }
    snprintf(out, n, "%s (%s)", date, rel);
}

void
fmt_duration(char *out, size_t n, uint64_t secs)
{
    char a[32], b[32];

    if (secs < 60) {
        snprintf(out, n, "%" PRIu64 " s", secs);
        return;
    }
    if (secs < 3600) {
        snprintf(a, sizeof(a), "%" PRIu64 " min", secs / 60);
        snprintf(b, sizeof(b), "%" PRIu64 " s", secs % 60);
    } else if (secs < 86400) {
        snprintf(a, sizeof(a), "%" PRIu64 " h", secs / 3600);
        snprintf(b, sizeof(b), "%" PRIu64 " min", secs % 3600 / 60);
    } else {
        plural(a, sizeof(a), secs / 86400, "day", "days");
        snprintf(b, sizeof(b), "%" PRIu64 " h", secs % 86400 / 3600);
    }
    if (b[0] == '0')
        snprintf(out, n, "%s", a);
    else
        snprintf(out, n, "%s %s", a, b);
}

int
fmt_parse_duration(const char *s, uint64_t max, uint64_t *secs)
{
    static const struct {
        const char *name;
        uint64_t secs;
    } units[] = {{"s", 1}, {"min", 60}, {"h", 3600}, {"d", 86400}, {"w", 7 * 86400}};
    uint64_t v = 0, unit = 0;
    const char *p = s;

    *secs = 0;
    if (s == NULL || *p < '0' || *p > '9')
        return PULL_ERR_INVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return PULL_ERR_TOO_BIG;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(p, units[i].name) == 0)
            unit = units[i].secs;
    }
    if (unit == 0 || v == 0)
        return PULL_ERR_INVAL; /* no unit ("30"), an unknown one, or "m" (minutes? months?) */
    if (v > UINT64_MAX / unit || v * unit > max)
        return PULL_ERR_TOO_BIG;
    *secs = v * unit;
    return 0;
}

size_t
fmt_width(const char *s, size_t n)
{
    size_t w = 0;

    for (size_t i = 0; i < n; i++) {
        if (((uint8_t)s[i] & 0xc0) != 0x80)
            w++;
    }
    return w;
}

/* Length of the valid UTF-8 sequence at p[0..n) (1 for ASCII), or 0 if invalid. */
static size_t
utf8_len(const uint8_t *p, size_t n)
{
    size_t len;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (len > n || !utf8_valid(p, len))
        return 0;
    return len;
}

/* The code point of the valid UTF-8 sequence p[0..len). */
static uint32_t
utf8_cp(const uint8_t *p, size_t len)
{
    uint32_t cp = len == 1 ? p[0] : p[0] & (0x7f >> len);

    for (size_t k = 1; k < len; k++)
        cp = (cp << 6) | (p[k] & 0x3f);
    return cp;
}

size_t
fmt_clean(char *out, size_t n, const char *s, size_t len, bool keep_newlines)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t o = 0, i = 0;

    if (n == 0)
        return 0;
    while (i < len) {
        size_t l = utf8_len(p + i, len - i);
        const uint8_t *src = p + i;
        char rep[16];
        uint32_t cp;

        if (l == 0) {
            rep[0] = '?';
            src = (const uint8_t *)rep;
            l = 1;
            i++;
        } else if ((p[i] == '\n' || p[i] == '\t') && keep_newlines) {
            i++;
        } else if (p[i] == '\n' || p[i] == '\t') {
            rep[0] = ' ';
            src = (const uint8_t *)rep;
            i++;
        } else if (cp = utf8_cp(p + i, l),
                   cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || record_cp_hidden(cp)) {
            /* shown as what it is, never acted on by the terminal */
            i += l;
            l = (size_t)snprintf(rep, sizeof(rep), "<U+%04" PRIX32 ">", cp);
            src = (const uint8_t *)rep;
        } else {
            i += l;
        }
        if (l > n - 1 - o)
            break;
        memcpy(out + o, src, l);
        o += l;
    }
    out[o] = '\0';
    return o;
}

size_t
fmt_fit(char *out, size_t n, const char *s, size_t width)
{
    static const char ell[] = "\xe2\x80\xa6"; /* … */
    size_t len = strlen(s), o = 0, w = 0, i = 0;

    if (n == 0)
        return 0;
    if (fmt_width(s, len) <= width) {
        if (len > n - 1)
            len = n - 1;
        while (len > 0 && ((uint8_t)s[len] & 0xc0) == 0x80)
            len--;
        memcpy(out, s, len);
        out[len] = '\0';
        return len;
    }
    if (width == 0) {
        out[0] = '\0';
        return 0;
    }
    /* Keep width - 1 characters, then the ellipsis. */
    while (i < len && w < width - 1) {
        size_t l = 1;
        while (i + l < len && ((uint8_t)s[i + l] & 0xc0) == 0x80)
            l++;
        if (o + l + sizeof(ell) > n)
            break;
        memcpy(out + o, s + i, l);
        o += l;
        i += l;
        w++;
    }
    if (o + sizeof(ell) <= n) {
        memcpy(out + o, ell, sizeof(ell) - 1);
        o += sizeof(ell) - 1;
    }
    out[o] = '\0';
    return o;
}

unsigned
fmt_edit_distance(const char *a, const char *b)
{
    enum { M = 64 };
    unsigned d[M + 1][M + 1];
    size_t la = strlen(a), lb = strlen(b);

    if (la > M || lb > M)
        return M + (unsigned)(la > lb ? la - lb : lb - la);
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
            unsigned v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1; /* transposition */
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

const char *
fmt_closest(const char *word, const char *const *names, size_t n)
{
    const char *best = NULL, *prefixed = NULL;
    unsigned best_d = ~0u, nprefixed = 0;
    size_t wl = strlen(word);

    if (wl == 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned d;
        if (strncmp(names[i], word, wl) == 0) {
            prefixed = names[i];
            nprefixed++;
        }
        d = fmt_edit_distance(word, names[i]);
        if (d < best_d) {
            best_d = d;
            best = names[i];
        }
    }
    if (nprefixed == 1)
        return prefixed;
    if (best != NULL && best_d <= 2 && 2 * best_d < wl)
        return best;
    return NULL;
}

int
fmt_id_prefix(const char *s, char out[53])
{
    size_t n = s != NULL ? strnlen(s, IDENT_TEXT_LEN + 1) : 0;

    out[0] = '\0';
    if (n < IDENT_PREFIX_MIN || n > IDENT_TEXT_LEN)
        return PULL_ERR_INVAL;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) {
            out[0] = '\0';
            return PULL_ERR_INVAL;
        }
        out[i] = c;
    }
    out[n] = '\0';
    return 0;
}

/* ---- Tables ------------------------------------------------------------------------ */

int
fmt_table_init(struct fmt_table *t, unsigned ncols, const char *const *head)
{
    memset(t, 0, sizeof(*t));
    if (ncols == 0 || ncols > FMT_TABLE_MAX_COLS)
        return PULL_ERR_INVAL;
    t->ncols = ncols;
    if (head == NULL)
        return 0;
    t->header = true;
    return fmt_table_add(t, head);
}

int
fmt_table_add(struct fmt_table *t, const char *const *cells)
{
    char **row;

    if (t->nrows == t->cap) {
        size_t ncap = t->cap < 16 ? 16 : t->cap * 2;
        char **nc = realloc(t->cells, ncap * t->ncols * sizeof(*nc));
        if (nc == NULL)
            return PULL_ERR_NOMEM;
        t->cells = nc;
        t->cap = ncap;
    }
    row = t->cells + t->nrows * t->ncols;
    for (unsigned c = 0; c < t->ncols; c++) {
        row[c] = strdup(cells[c] != NULL ? cells[c] : "");
        if (row[c] == NULL) {
            for (unsigned k = 0; k < c; k++)
                free(row[k]);
            return PULL_ERR_NOMEM;
        }
    }
    t->nrows++;
    return 0;
}

int
fmt_table_render(const struct fmt_table *t, struct pull_wb *out, size_t max_width, int flex,
                 bool color)
{
    size_t width[FMT_TABLE_MAX_COLS] = {0}, total = 0;
    char *cut = NULL;
    int rc = 0;

    for (size_t r = 0; r < t->nrows; r++) {
        for (unsigned c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            size_t w = fmt_width(s, strlen(s));
            if (w > width[c])
                width[c] = w;
        }
    }
    for (unsigned c = 0; c < t->ncols; c++)
        total += width[c] + (c > 0 ? 2 : 0);
    if (max_width > 0 && total > max_width && flex >= 0 && (unsigned)flex < t->ncols &&
        width[flex] > 10) {
        size_t over = total - max_width;
        width[flex] = width[flex] - over < 10 || over >= width[flex] ? 10 : width[flex] - over;
    }
    for (size_t r = 0; r < t->nrows; r++) {
        unsigned last = t->ncols;
        /* Trailing empty cells print nothing, not padding. */
        while (last > 1 && t->cells[r * t->ncols + last - 1][0] == '\0')
            last--;
        for (unsigned c = 0; c < last; c++) {
            const char *s = t->cells[r * t->ncols + c];
            const char *sgr = r == 0 && t->header ? "1" : t->color[c];
            size_t len = strlen(s), w;

            if (fmt_width(s, len) > width[c]) {
                free(cut);
                if ((cut = malloc(len + 4)) == NULL) {
                    rc = PULL_ERR_NOMEM;
                    goto out;
                }
                len = fmt_fit(cut, len + 4, s, width[c]);
                s = cut;
            }
            w = fmt_width(s, len);
            if (c > 0)
                wb_put(out, "  ", 2);
            if (color && sgr != NULL) {
                wb_put(out, "\033[", 2);
                wb_put(out, sgr, strlen(sgr));
                wb_u8(out, 'm');
            }
            wb_put(out, s, len);
            if (color && sgr != NULL)
                wb_put(out, "\033[0m", 4);
            if (c + 1 < last) {
                for (size_t k = w; k < width[c]; k++)
                    wb_u8(out, ' ');
            }
        }
        wb_u8(out, '\n');
    }
    rc = wb_error(out);
out:
    free(cut);
    return rc;
}

void
fmt_table_free(struct fmt_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}
