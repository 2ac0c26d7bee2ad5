/* Reading fields of result maps by name, and showing records to a person. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "lib/ident.h"
#include "lib/mp.h"

bool
mv_value(const struct pull_rd *map, const char *key, struct pull_rd *val)
{
    if (mp_peek(map) != MP_MAP)
        return false;
    return ctl_map_find(map, key, val) == 0;
}

bool
mv_has(const struct pull_rd *map, const char *key)
{
    struct pull_rd v;

    return mv_value(map, key, &v);
}

struct sv
mv_str(const struct pull_rd *map, const char *key)
{
    struct sv s = {"", 0};
    struct pull_rd v;

    if (mv_value(map, key, &v) && mp_peek(&v) == MP_STR &&
        mp_read_str(&v, UINT32_MAX, &s.p, &s.n) != 0) {
        s.p = "";
        s.n = 0;
    }
    return s;
}

const char *
mv_cstr(const struct pull_rd *map, const char *key, char *out, size_t n)
{
    struct sv s = mv_str(map, key);

    fmt_clean(out, n, s.p, s.n, false);
    return out;
}

uint64_t
mv_uint(const struct pull_rd *map, const char *key, uint64_t dflt)
{
    struct pull_rd v;
    uint64_t u;

    if (mv_value(map, key, &v) && mp_read_uint(&v, &u) == 0)
        return u;
    return dflt;
}

int64_t
mv_int(const struct pull_rd *map, const char *key, int64_t dflt)
{
    struct pull_rd v;
    int64_t i;

    if (mv_value(map, key, &v) && mp_read_int(&v, &i) == 0)
        return i;
    return dflt;
}

bool
mv_bool(const struct pull_rd *map, const char *key, bool dflt)
{
    struct pull_rd v;
    bool b;

    if (mv_value(map, key, &v) && mp_read_bool(&v, &b) == 0)
        return b;
    return dflt;
}

const char *
rec_short(const struct pull_rd *rec, const char *key, char out[16])
{
    struct sv s = mv_str(rec, key);
    size_t n = s.n < IDENT_SHORT_LEN ? s.n : IDENT_SHORT_LEN;

    fmt_clean(out, 16, s.p, n, false);
    return out;
}

const char *
rec_tags(const struct pull_rd *rec, char *out, size_t n)
{
    struct pull_rd v;
    uint32_t count;
    size_t o = 0;

    if (n == 0)
        return out;
    out[0] = '\0';
    if (!mv_value(rec, "tags", &v) || mp_read_array(&v, &count) != 0)
        return out;
    for (uint32_t i = 0; i < count; i++) {
        const char *s;
        uint32_t len;
        if (mp_read_str(&v, UINT32_MAX, &s, &len) != 0)
            break;
        if (i > 0 && o + 2 < n) {
            memcpy(out + o, ", ", 2);
            o += 2;
        }
        o += fmt_clean(out + o, n - o, s, len, false);
    }
    out[o] = '\0';
    return out;
}

const char *
rec_when(const struct pull_rd *rec, const char *key, char *out, size_t n)
{
    fmt_when(out, n, (int64_t)mv_uint(rec, key, 0), cli_now());
    return out;
}

static void
field(const char *label, const char *value)
{
    if (value[0] == '\0')
        return;
    if (cli.color)
        printf("\033[2m%-9s\033[0m %s\n", label, value);
    else
        printf("%-9s %s\n", label, value);
}

/* Writes "3 completed dyads with 2 people" (or "no completed dyads yet"). */
static const char *
dyads_phrase(uint64_t done, uint64_t peers, char *out, size_t n)
{
    if (done == 0)
        snprintf(out, n, "no completed dyads yet");
    else
        snprintf(out, n, "%llu completed dyad%s with %llu %s", (unsigned long long)done,
                 done == 1 ? "" : "s", (unsigned long long)peers, peers == 1 ? "person" : "people");
    return out;
}

const char *
person_of(const struct pull_rd *map, const char *keyfield, const char *prefix, char *out, size_t n)
{
    char k[64], shortk[16], name[4 * 64 + 1];
    struct sv s;

    rec_short(map, keyfield, shortk);
    if (strcmp(prefix, "author") == 0)
        snprintf(k, sizeof(k), "petname");
    else
        snprintf(k, sizeof(k), "%s_petname", prefix);
    s = mv_str(map, k);
    if (s.n == 0) {
        snprintf(k, sizeof(k), "%s_name", prefix);
        s = mv_str(map, k);
    }
    if (s.n == 0) {
        snprintf(out, n, "%s", shortk);
        return out;
    }
    fmt_clean(name, sizeof(name), s.p, s.n, false);
    snprintf(out, n, "%s (%s)", name, shortk);
    return out;
}

/* Prints the "trust" map of the author view: the distance, and the shortest paths by name
 * ("you → Ada → Lin"). */
static void
trust_print(const struct pull_rd *a, bool mine)
{
    struct pull_rd t, paths;
    uint32_t np = 0;
    uint64_t dist, indep;
    char buf[512];

    if (mine) {
        field("trust", "that is you");
        return;
    }
    if (!mv_value(a, "trust", &t) || mp_peek(&t) != MP_MAP)
        return;
    dist = mv_uint(&t, "distance", UINT64_MAX);
    if (dist == UINT64_MAX) {
        field("trust", "no path from you: nobody you completed a dyad with (or they with, and so "
                       "on) completed one with them");
        return;
    }
    indep = mv_uint(&t, "independent", 0);
    snprintf(buf, sizeof(buf), "%llu hop%s from you, %llu independent path%s",
             (unsigned long long)dist, dist == 1 ? "" : "s", (unsigned long long)indep,
             indep == 1 ? "" : "s");
    field("trust", buf);
    if (!mv_value(&t, "path_labels", &paths) || mp_read_array(&paths, &np) != 0)
        return;
    for (uint32_t i = 0; i < np; i++) {
        uint32_t nk = 0;
        size_t o = (size_t)snprintf(buf, sizeof(buf), "you");
        if (mp_read_array(&paths, &nk) != 0)
            return;
        for (uint32_t k = 0; k < nk; k++) {
            const char *sp;
            uint32_t sl;
            char clean[256];
            if (mp_read_str(&paths, 1024, &sp, &sl) != 0)
                return;
            fmt_clean(clean, sizeof(clean), sp, sl, false);
            if (o < sizeof(buf))
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, " \u2192 %s", clean);
        }
        field(i == 0 ? "paths" : "", buf);
    }
}

/* unreachable: pulld says no trust path leads from me to the author of a. */
static bool
unreachable(const struct pull_rd *a)
{
    struct pull_rd t;

    return mv_value(a, "trust", &t) && mp_peek(&t) == MP_MAP &&
           mv_uint(&t, "distance", UINT64_MAX) == UINT64_MAX;
}

void
author_print(const struct pull_rd *a)
{
    char who[256], key[128], buf[1024];
    uint64_t offers = mv_uint(a, "offers", 0), needs = mv_uint(a, "needs", 0);
    bool mine = mv_bool(a, "mine", false);
    struct pull_rd prof, v;
    uint32_t n = 0;

    person_of(a, "author", "author", who, sizeof(who));
    mv_cstr(a, "author", key, sizeof(key));
    if (cli.color)
        printf("\033[1m%s\033[0m%s\n", who, mine ? " (you)" : "");
    else
        printf("%s%s\n", who, mine ? " (you)" : "");
    field("key", key);
    if (mv_value(a, "profile", &prof) && mp_peek(&prof) == MP_MAP) {
        struct sv about = mv_str(&prof, "body");
        field("name", mv_cstr(&prof, "title", buf, sizeof(buf)));
        if (about.n > 0) {
            fmt_clean(buf, sizeof(buf), about.p, about.n, false);
            field("about", buf);
        }
        field("tags", rec_tags(&prof, buf, sizeof(buf)));
        field("location", mv_cstr(&prof, "location", buf, sizeof(buf)));
    } else {
        field("name", "(no profile)");
    }
    if (mv_has(a, "petname"))
        field("petname", mv_cstr(a, "petname", buf, sizeof(buf)));
    snprintf(buf, sizeof(buf), "%llu live (%llu offer%s, %llu need%s)",
             (unsigned long long)mv_uint(a, "records", 0), (unsigned long long)offers,
             offers == 1 ? "" : "s", (unsigned long long)needs, needs == 1 ? "" : "s");
    field("records", buf);
    dyads_phrase(mv_uint(a, "dyads_completed", 0), mv_uint(a, "dyads_counterparts", 0), buf,
                 sizeof(buf));
    if (!mine && mv_uint(a, "dyads_completed", 0) > 0 && unreachable(a)) {
        /* attested by keys nobody I dealt with dealt with: their word, which weighs nothing */
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof(buf) - l, " (as they say: no path from you, no weight)");
    }
    field("dyads", buf);
    if (mv_value(a, "counterparts", &v) && mp_read_array(&v, &n) == 0) {
        for (uint32_t i = 0; i < n; i++) {
            struct pull_rd c = v;
            char p[256];
            uint64_t k;
            if (ctl_value_check(&v, 2) != 0)
                break;
            k = mv_uint(&c, "dyads", 1);
            if (mv_bool(&c, "mine", false))
                snprintf(p, sizeof(p), "you");
            else
                person_of(&c, "key", "key", p, sizeof(p));
            if (k > 1)
                snprintf(buf, sizeof(buf), "with %s (%llu dyads)", p, (unsigned long long)k);
            else
                snprintf(buf, sizeof(buf), "with %s", p);
            field("", buf);
        }
    }
    trust_print(a, mine);
    if (mv_value(a, "live", &v) && mp_peek(&v) == MP_ARRAY) {
        struct pull_rd probe = v;
        if (mp_read_array(&probe, &n) == 0 && n > 0) {
            printf("\n");
            (void)rec_print_list(&v, "iktgc", "");
        }
    }
}

void
rec_print_full(const struct pull_rd *rec)
{
    char kind[32], id[128], buf[1024], seq[32];
    struct sv body = mv_str(rec, "body");

    mv_cstr(rec, "kind", kind, sizeof(kind));
    mv_cstr(rec, "id", id, sizeof(id));
    if (cli.color)
        printf("\033[1m%s\033[0m \033[33m%s\033[0m\n", kind, id);
    else
        printf("%s %s\n", kind, id);
    if (mv_has(rec, "superseded_from")) {
        char old[16], now[16];
        rec_short(rec, "superseded_from", old);
        rec_short(rec, "id", now);
        snprintf(buf, sizeof(buf), "%s is an older version: superseded by %s (same handle)", old,
                 now);
        field("note", buf);
    }
    field("title", mv_cstr(rec, "title", buf, sizeof(buf)));
    field("author", person_of(rec, "author", "author", buf, sizeof(buf)));
    if (mv_has(rec, "author_dyads_completed"))
        field("", dyads_phrase(mv_uint(rec, "author_dyads_completed", 0),
                               mv_uint(rec, "author_dyads_counterparts", 0), buf, sizeof(buf)));
    field("tags", rec_tags(rec, buf, sizeof(buf)));
    field("location", mv_cstr(rec, "location", buf, sizeof(buf)));
    field("terms", mv_cstr(rec, "terms", buf, sizeof(buf)));
    field("about", mv_cstr(rec, "link", buf, sizeof(buf)));
    if (mv_has(rec, "peer"))
        field("with", person_of(rec, "peer", "peer", buf, sizeof(buf)));
    if (mv_has(rec, "created"))
        field("created", rec_when(rec, "created", buf, sizeof(buf)));
    if (mv_has(rec, "expires"))
        field("expires", rec_when(rec, "expires", buf, sizeof(buf)));
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)mv_uint(rec, "seq", 0));
    field("version", seq);
    if (mv_has(rec, "handle")) {
        struct sv h = mv_str(rec, "handle");
        char hs[64];
        /* "AUTHOR/SLOT": the author's first characters and the slot's */
        if (h.n == IDENT_TEXT_LEN + 1 + 32) {
            snprintf(hs, sizeof(hs), "%.8s/%.8s", h.p, h.p + IDENT_TEXT_LEN + 1);
            fmt_clean(buf, sizeof(buf), hs, strlen(hs), false);
            field("handle", buf);
        }
    }
    if (body.n > 0) {
        char clean[4 * 3000 + 1];
        fmt_clean(clean, sizeof(clean), body.p, body.n, true);
        printf("\n%s\n", clean);
    }
}

int
rec_print_list(struct pull_rd *arr, const char *cols, const char *empty)
{
    static const struct {
        char letter;
        const char *head;
        const char *color;
    } known[] = {
        {'i', "ID", "33"},     {'k', "KIND", NULL},    {'t', "TITLE", NULL},   {'g', "TAGS", "36"},
        {'a', "AUTHOR", NULL}, {'c', "CREATED", NULL}, {'e', "EXPIRES", NULL},
    };
    const char *head[FMT_TABLE_MAX_COLS];
    struct fmt_table t;
    struct pull_wb w;
    unsigned ncols = 0;
    int flex = -1, rc;
    uint32_t n;
    int64_t now = cli_now();

    if (mp_read_array(arr, &n) != 0)
        return cli_error("pulld sent a result that is not a list");
    if (n == 0) {
        printf("%s\n", empty);
        return 0;
    }
    for (const char *c = cols; *c != '\0' && ncols < FMT_TABLE_MAX_COLS; c++) {
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
            if (known[k].letter == *c) {
                if (*c == 't')
                    flex = (int)ncols;
                head[ncols++] = known[k].head;
            }
        }
    }
    if (fmt_table_init(&t, ncols, head) != 0)
        return cli_error("out of memory");
    for (unsigned c = 0; c < ncols; c++) {
        for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
            if (strcmp(known[k].head, head[c]) == 0)
                t.color[c] = known[k].color;
        }
    }
    for (uint32_t i = 0; i < n; i++) {
        struct pull_rd rec = *arr;
        char cells[FMT_TABLE_MAX_COLS][512];
        const char *row[FMT_TABLE_MAX_COLS];
        unsigned k = 0;

        if (ctl_value_check(arr, 2) != 0) /* advance past this element */
            break;
        for (const char *c = cols; *c != '\0' && k < ncols; c++) {
            char *cell = cells[k];
            switch (*c) {
            case 'i':
                rec_short(&rec, "id", cell);
                break;
            case 'k':
                mv_cstr(&rec, "kind", cell, sizeof(cells[0]));
                break;
            case 't':
                mv_cstr(&rec, "title", cell, sizeof(cells[0]));
                break;
            case 'g':
                rec_tags(&rec, cell, sizeof(cells[0]));
                break;
            case 'a':
                person_of(&rec, "author", "author", cell, sizeof(cells[0]));
                break;
            case 'c':
                fmt_reltime(cell, sizeof(cells[0]), (int64_t)mv_uint(&rec, "created", 0), now);
                break;
            case 'e':
                fmt_reltime(cell, sizeof(cells[0]), (int64_t)mv_uint(&rec, "expires", 0), now);
                break;
            default:
                continue;
            }
            row[k++] = cell;
        }
        if (fmt_table_add(&t, row) != 0) {
            fmt_table_free(&t);
            return cli_error("out of memory");
        }
    }
    wb_init(&w, 0);
    rc = fmt_table_render(&t, &w, cli.width, flex, cli.color);
    if (rc == 0)
        rc = cli_write(&w);
    else
        rc = cli_error("out of memory");
    wb_release(&w);
    fmt_table_free(&t);
    return rc;
}

static bool
key_listed(const char *k, uint32_t kn, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(list[i]) == kn && memcmp(list[i], k, kn) == 0)
            return true;
    }
    return false;
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Formats one scalar (or an array of scalars) for a person into out. */
static void
kv_value(const char *key, struct pull_rd *v, char *out, size_t n)
{
    const char *s;
    uint32_t len, count;
    uint64_t u;
    int64_t i;
    bool b;
    size_t o = 0;

    out[0] = '\0';
    switch (mp_peek(v)) {
    case MP_STR:
        if (mp_read_str(v, UINT32_MAX, &s, &len) == 0)
            fmt_clean(out, n, s, len, false);
        return;
    case MP_UINT:
        if (mp_read_uint(v, &u) != 0)
            return;
        if (strcmp(key, "created") == 0 || strcmp(key, "updated") == 0 ||
            strcmp(key, "expires") == 0) {
            fmt_when(out, n, (int64_t)u, cli_now());
        } else if (ends_with(key, "_s")) {
            fmt_duration(out, n, u);
        } else {
            snprintf(out, n, "%llu", (unsigned long long)u);
        }
        return;
    case MP_NINT:
        if (mp_read_int(v, &i) == 0)
            snprintf(out, n, "%lld", (long long)i);
        return;
    case MP_BOOL:
        if (mp_read_bool(v, &b) == 0)
            snprintf(out, n, "%s", b ? "yes" : "no");
        return;
    case MP_ARRAY:
        if (mp_read_array(v, &count) != 0)
            return;
        for (uint32_t k = 0; k < count && o + 3 < n; k++) {
            char item[512];
            struct pull_rd save = *v;
            if (mp_peek(v) == MP_MAP || mp_peek(v) == MP_ARRAY) {
                snprintf(out, n, "%u items", count);
                return;
            }
            kv_value("", v, item, sizeof(item));
            if (v->off == save.off && ctl_value_check(v, 2) != 0)
                return;
            o += (size_t)snprintf(out + o, n - o, "%s%s", k > 0 ? ", " : "", item);
        }
        return;
    default:
        (void)ctl_value_check(v, 2);
        return;
    }
}

/* Turns a key path into a label: "uptime_s" -> "uptime", "data_dir" -> "data dir". */
static void
pretty_label(char *label)
{
    size_t n = strlen(label);

    if (n > 2 && strcmp(label + n - 2, "_s") == 0)
        label[n - 2] = '\0';
    for (char *p = label; *p != '\0'; p++) {
        if (*p == '_')
            *p = ' ';
    }
}

static void
kv_collect(struct fmt_table *t, const char *prefix, const struct pull_rd *map,
           const char *const *first, size_t nfirst, bool pass_first)
{
    struct pull_rd r = *map, v;
    uint32_t n;

    if (pass_first) {
        for (size_t i = 0; i < nfirst; i++) {
            if (!mv_value(map, first[i], &v))
                continue;
            if (mp_peek(&v) == MP_MAP) {
                char sub[128];
                snprintf(sub, sizeof(sub), "%s%s.", prefix, first[i]);
                kv_collect(t, sub, &v, NULL, 0, false);
            } else {
                char label[128], value[2048];
                const char *row[2] = {label, value};
                snprintf(label, sizeof(label), "%s%s", prefix, first[i]);
                pretty_label(label);
                kv_value(first[i], &v, value, sizeof(value));
                fmt_table_add(t, row);
            }
        }
    }
    if (mp_read_map(&r, &n) != 0)
        return;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kn;
        char key[CTL_KEY_MAX + 1];

        if (mp_read_str(&r, CTL_KEY_MAX, &k, &kn) != 0)
            return;
        fmt_clean(key, sizeof(key), k, kn, false);
        v = r;
        if (ctl_value_check(&r, 2) != 0)
            return;
        if (key_listed(k, kn, first, nfirst))
            continue;
        if (mp_peek(&v) == MP_MAP) {
            char sub[128];
            snprintf(sub, sizeof(sub), "%s%s.", prefix, key);
            kv_collect(t, sub, &v, NULL, 0, false);
        } else {
            char label[128], value[2048];
            const char *row[2] = {label, value};
            snprintf(label, sizeof(label), "%s%s", prefix, key);
            pretty_label(label);
            kv_value(key, &v, value, sizeof(value));
            fmt_table_add(t, row);
        }
    }
}

void
kv_print(const struct pull_rd *map, const char *const *first, size_t nfirst)
{
    struct fmt_table t;
    struct pull_wb w;

    if (fmt_table_init(&t, 2, NULL) != 0)
        return;
    t.color[0] = cli.color ? "2" : NULL;
    kv_collect(&t, "", map, first, nfirst, true);
    wb_init(&w, 0);
    if (fmt_table_render(&t, &w, 0, -1, cli.color) == 0)
        cli_write(&w);
    wb_release(&w);
    fmt_table_free(&t);
}
