/*
 * Tests of the `pull` CLI without a daemon: the formatting functions (cli/fmt.c) and JSON
 * printer (lib/json.c) directly; the control client (cli/client.c) against a fake pulld
 * thread on a unix socket in a temp dir; and the real `pull` binary (built next to this
 * test) run against the same fake server, checking stdout, stderr and exit codes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The units under test are compiled in: they are the CLI's, not libpull's. */
#include "cli/client.c"
#include "cli/fmt.c"
#include "cli/table.c"

#include "lib/bundle.h"
#include "lib/json.h"
#include "testutil.h"

/* snprintf that fails the test instead of truncating. */
#define SNP(buf, ...) assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

/* ---- the command table's flag strings (cli/table.c) ---------------------------------- */

static void
test_table_flags(void **state)
{
    const char *p = "all  tag=TAG !title=TEXT kind=offer|need";
    struct cli_flag f;
    (void)state;

    assert_true(cli_flag_next(&p, &f));
    assert_int_equal(f.name_len, 3);
    assert_memory_equal(f.name, "all", 3);
    assert_null(f.value);
    assert_false(f.refused);
    assert_true(cli_flag_next(&p, &f));
    assert_memory_equal(f.name, "tag", 3);
    assert_int_equal(f.value_len, 3);
    assert_memory_equal(f.value, "TAG", 3);
    assert_true(cli_flag_next(&p, &f));
    assert_true(f.refused);
    assert_int_equal(f.name_len, 5);
    assert_true(cli_flag_next(&p, &f));
    assert_int_equal(f.value_len, 10);
    assert_false(cli_flag_next(&p, &f));
    assert_false(cli_flag_next(&p, &f)); /* stays at the end */
    p = NULL;
    assert_false(cli_flag_next(&p, &f));
    p = "";
    assert_false(cli_flag_next(&p, &f));
}

/* cli_check_options counts every difference between a getopt table and a table entry. */
static void
test_table_check(void **state)
{
    static const struct option opts[] = {
        {"tag", required_argument, NULL, 1}, {"all", no_argument, NULL, 2}, CLI_COMMON_OPTIONS};
    static const struct cli_verb verbs[] = {{"add", "tag=T all", NULL}, {NULL, NULL, NULL}};
    struct cli_command cmd = {"x", NULL, "", "", .flags = "tag=T all"};
    FILE *saved = stderr;
    (void)state;

    /* the messages go to stderr; keep the test's output clean */
    stderr = fopen("/dev/null", "w");
    assert_non_null(stderr);
    assert_int_equal(cli_check_options(&cmd, "x", opts), 0);
    cmd.flags = "tag=T"; /* --all is missing from the table */
    assert_int_equal(cli_check_options(&cmd, "x", opts), 1);
    cmd.flags = "tag=T all mine"; /* --mine is in the table only */
    assert_int_equal(cli_check_options(&cmd, "x", opts), 1);
    cmd.flags = "tag all=X"; /* both take the wrong kind of value */
    assert_int_equal(cli_check_options(&cmd, "x", opts), 2);
    cmd.flags = "tag=T !all"; /* refused still counts as known */
    assert_int_equal(cli_check_options(&cmd, "x", opts), 0);
    cmd.flags = NULL;
    assert_int_equal(cli_check_options(&cmd, "x", opts), 2);
    cmd.verbs = verbs;
    assert_int_equal(cli_check_options(&cmd, "add", opts), 0);
    assert_int_equal(cli_check_options(&cmd, "frob", opts), 1);
    fclose(stderr);
    stderr = saved;
    assert_ptr_equal(cli_verb_find(&cmd, "add"), &verbs[0]);
    assert_null(cli_verb_find(&cmd, "frob"));
}

/* ---- fmt ----------------------------------------------------------------------------- */

static void
test_reltime(void **state)
{
    char b[64];
    (void)state;

    fmt_reltime(b, sizeof(b), 1000, 1000);
    assert_string_equal(b, "now");
    fmt_reltime(b, sizeof(b), 1045, 1000);
    assert_string_equal(b, "in 45 s");
    fmt_reltime(b, sizeof(b), 1000 - 59, 1000);
    assert_string_equal(b, "59 s ago");
    fmt_reltime(b, sizeof(b), 1000 + 12 * 60 + 29, 1000);
    assert_string_equal(b, "in 12 min");
    fmt_reltime(b, sizeof(b), 1000 + 12 * 60 + 59, 1000);
    assert_string_equal(b, "in 13 min");
    fmt_reltime(b, sizeof(b), 1000 + 59 * 60 + 45, 1000);
    assert_string_equal(b, "in 1 h");
    fmt_reltime(b, sizeof(b), 1000000 - 3 * 3600 - 100, 1000000);
    assert_string_equal(b, "3 h ago");
    fmt_reltime(b, sizeof(b), 86400 + 1, 0);
    assert_string_equal(b, "in 1 day");
    /* A 30-day record a second, an hour, 13 hours after its creation. */
    fmt_reltime(b, sizeof(b), 30 * 86400, 1);
    assert_string_equal(b, "in 30 days");
    fmt_reltime(b, sizeof(b), 30 * 86400, 3600);
    assert_string_equal(b, "in 30 days");
    fmt_reltime(b, sizeof(b), 30 * 86400, 13 * 3600);
    assert_string_equal(b, "in 29 days");
    fmt_reltime(b, sizeof(b), 0, 2 * 365 * 86400 + 5);
    assert_string_equal(b, "2 years ago");
    /* A time for a person: the zone always, the date when it is not today. */
    setenv("TZ", "UTC", 1);
    tzset();
    fmt_when(b, sizeof(b), 1000000, 1000000 + 3600);
    assert_string_equal(b, "13:46 UTC (1 h ago)");
    fmt_when(b, sizeof(b), 0, 3 * 86400);
    assert_string_equal(b, "1970-01-01 00:00 UTC (3 days ago)");
}

static void
test_duration(void **state)
{
    char b[64];
    uint64_t s;
    (void)state;

    fmt_duration(b, sizeof(b), 5);
    assert_string_equal(b, "5 s");
    fmt_duration(b, sizeof(b), 12 * 60 + 5);
    assert_string_equal(b, "12 min 5 s");
    fmt_duration(b, sizeof(b), 3 * 3600 + 12 * 60 + 7);
    assert_string_equal(b, "3 h 12 min");
    fmt_duration(b, sizeof(b), 2 * 86400 + 3 * 3600);
    assert_string_equal(b, "2 days 3 h");
    fmt_duration(b, sizeof(b), 86400);
    assert_string_equal(b, "1 day");
    fmt_duration(b, sizeof(b), 3600);
    assert_string_equal(b, "1 h");

    assert_int_equal(fmt_parse_duration("30d", 90 * 86400, &s), 0);
    assert_int_equal(s, 30 * 86400);
    assert_int_equal(fmt_parse_duration("90d", 90 * 86400, &s), 0);
    assert_int_equal(fmt_parse_duration("91d", 90 * 86400, &s), PULL_ERR_TOO_BIG);
    assert_int_equal(fmt_parse_duration("12h", 90 * 86400, &s), 0);
    assert_int_equal(s, 12 * 3600);
    assert_int_equal(fmt_parse_duration("2w", 90 * 86400, &s), 0);
    assert_int_equal(s, 14 * 86400);
    assert_int_equal(fmt_parse_duration("45min", 90 * 86400, &s), 0);
    assert_int_equal(s, 45 * 60);
    /* a unit is needed; "m" could be minutes or months */
    assert_int_equal(fmt_parse_duration("45m", 90 * 86400, &s), PULL_ERR_INVAL);
    assert_int_equal(fmt_parse_duration("90", 90 * 86400, &s), PULL_ERR_INVAL);
    assert_int_equal(fmt_parse_duration("3mins", 90 * 86400, &s), PULL_ERR_INVAL);
    assert_int_equal(fmt_parse_duration("10s", 90 * 86400, &s), 0);
    assert_int_equal(s, 10);
    assert_int_equal(fmt_parse_duration("0d", 90 * 86400, &s), PULL_ERR_INVAL);
    assert_int_equal(fmt_parse_duration("", 90 * 86400, &s), PULL_ERR_INVAL);
    assert_int_equal(fmt_parse_duration("d", 90 * 86400, &s), PULL_ERR_INVAL);
    assert_int_equal(fmt_parse_duration("-1d", 90 * 86400, &s), PULL_ERR_INVAL);
    assert_int_equal(fmt_parse_duration("3dd", 90 * 86400, &s), PULL_ERR_INVAL);
    assert_int_equal(fmt_parse_duration("3y", 90 * 86400, &s), PULL_ERR_INVAL);
    assert_int_equal(fmt_parse_duration("1.5d", 90 * 86400, &s), PULL_ERR_INVAL);
    assert_int_equal(fmt_parse_duration("99999999999999999999999d", 90 * 86400, &s),
                     PULL_ERR_TOO_BIG);
    assert_int_equal(fmt_parse_duration("9999999999999999999w", UINT64_MAX, &s), PULL_ERR_TOO_BIG);
}

static void
test_clean_fit_width(void **state)
{
    char b[64];
    (void)state;

    assert_int_equal(fmt_width("abc", 3), 3);
    assert_int_equal(fmt_width("\xc3\xa9t\xc3\xa9", 5), 3);
    assert_int_equal(fmt_width("\xe2\x9c\x93", 3), 1);

    /* Escapes and controls never reach the terminal. */
    fmt_clean(b, sizeof(b), "a\x1b[31mb\x07", 8, false);
    assert_string_equal(b, "a<U+001B>[31mb<U+0007>");
    fmt_clean(b, sizeof(b), "l1\nl2\tx", 7, false);
    assert_string_equal(b, "l1 l2 x");
    fmt_clean(b, sizeof(b), "l1\nl2\tx", 7, true);
    assert_string_equal(b, "l1\nl2\tx");
    /* C1 controls (U+009B is a CSI) and invalid UTF-8. */
    fmt_clean(b, sizeof(b),
              "a\xc2\x9b"
              "b\xff\xc3",
              6, false);
    assert_string_equal(b, "a<U+009B>b??");
    /* Bidi controls and invisible characters (text rule 2) are shown, not obeyed. */
    fmt_clean(b, sizeof(b),
              "bike\xe2\x80\xae"
              "ekib",
              11, false);
    assert_string_equal(b, "bike<U+202E>ekib");
    fmt_clean(b, sizeof(b),
              "a\xe2\x80\x8b"
              "b\xe2\x80\x8d"
              "c\xef\xbb\xbf"
              "d\xc2\xad",
              15, false);
    assert_string_equal(b, "a<U+200B>b<U+200D>c<U+FEFF>d<U+00AD>");
    fmt_clean(b, sizeof(b), "\xf3\xa0\x81\x81x\xe2\x81\xa6", 8, false);
    assert_string_equal(b, "<U+E0041>x<U+2066>");
    fmt_clean(b, sizeof(b), "\xe2\x9d\xa4\xef\xb8\x8f \xd7\xa9", 9, false); /* kept */
    assert_string_equal(b, "\xe2\x9d\xa4\xef\xb8\x8f \xd7\xa9");
    /* an escape is never cut in half */
    assert_int_equal(fmt_clean(b, 8, "ab\xe2\x80\xae", 5, false), 2);
    assert_string_equal(b, "ab");
    fmt_clean(b, sizeof(b), "\xc3\xa9", 2, false);
    assert_string_equal(b, "\xc3\xa9");
    /* Cut at a character boundary when out is small. */
    assert_int_equal(fmt_clean(b, 4, "a\xc3\xa9\xc3\xa9", 5, false), 3);
    assert_string_equal(b, "a\xc3\xa9");

    assert_int_equal(fmt_fit(b, sizeof(b), "short", 10), 5);
    assert_string_equal(b, "short");
    fmt_fit(b, sizeof(b), "a long title here", 8);
    assert_string_equal(b, "a long \xe2\x80\xa6");
    assert_int_equal(fmt_width(b, strlen(b)), 8);
    fmt_fit(b, sizeof(b), "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 3);
    assert_string_equal(b, "\xc3\xa9\xc3\xa9\xe2\x80\xa6");
}

static void
test_suggest(void **state)
{
    static const char *const names[] = {"id",     "status", "peers", "connect", "offer",
                                        "need",   "search", "show",  "watch",   "dyad",
                                        "export", "import", "help"};
    const size_t n = sizeof(names) / sizeof(names[0]);
    (void)state;

    assert_int_equal(fmt_edit_distance("search", "search"), 0);
    assert_int_equal(fmt_edit_distance("serch", "search"), 1);
    assert_int_equal(fmt_edit_distance("saerch", "search"), 1); /* transposition */
    assert_int_equal(fmt_edit_distance("", "abc"), 3);
    assert_int_equal(fmt_edit_distance("kitten", "sitting"), 3);

    assert_string_equal(fmt_closest("serch", names, n), "search");
    assert_string_equal(fmt_closest("sattus", names, n), "status");
    assert_string_equal(fmt_closest("offers", names, n), "offer");
    assert_string_equal(fmt_closest("imprt", names, n), "import");
    assert_string_equal(fmt_closest("sea", names, n), "search"); /* unique prefix */
    assert_string_equal(fmt_closest("wath", names, n), "watch");
    assert_null(fmt_closest("xyzzy", names, n));
    assert_null(fmt_closest("s", names, n)); /* too short to guess */
    assert_null(fmt_closest("", names, n));
}

static void
test_id_prefix(void **state)
{
    char out[53];
    (void)state;

    assert_int_equal(fmt_id_prefix("ABCDEF", out), 0);
    assert_string_equal(out, "abcdef");
    assert_int_equal(fmt_id_prefix("abc27z", out), 0);
    assert_int_equal(fmt_id_prefix("abcde", out), PULL_ERR_INVAL);
    assert_int_equal(fmt_id_prefix("abcde1", out), PULL_ERR_INVAL); /* 1 isn't base32 */
    assert_int_equal(fmt_id_prefix("abcde8", out), PULL_ERR_INVAL);
    assert_int_equal(fmt_id_prefix("abcdef-", out), PULL_ERR_INVAL);
    assert_int_equal(fmt_id_prefix("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", out), 0);
    assert_int_equal(fmt_id_prefix("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", out),
                     PULL_ERR_INVAL);
    assert_int_equal(fmt_id_prefix(NULL, out), PULL_ERR_INVAL);
}

static void
test_table(void **state)
{
    static const char *const head[] = {"ID", "TITLE", "TAGS"};
    const char *r1[] = {"abcd1234", "Rust mentoring", "rust, mentoring"};
    const char *r2[] = {"efgh5678", "V\xc3\xa9lo repair in Lyon, any weekday", ""};
    struct fmt_table t;
    struct pull_wb w;
    (void)state;

    assert_int_equal(fmt_table_init(&t, 3, head), 0);
    assert_int_equal(fmt_table_add(&t, r1), 0);
    assert_int_equal(fmt_table_add(&t, r2), 0);
    wb_init(&w, 0);
    assert_int_equal(fmt_table_render(&t, &w, 0, 1, false), 0);
    wb_u8(&w, '\0');
    /* Columns aligned by characters (é is one), two spaces apart, no trailing spaces. */
    assert_string_equal((char *)w.p, "ID        TITLE                             TAGS\n"
                                     "abcd1234  Rust mentoring                    rust, mentoring\n"
                                     "efgh5678  V\xc3\xa9lo repair in Lyon, any weekday\n");

    /* Too wide for 40 columns: the title column shrinks with an ellipsis. */
    wb_reset(&w);
    assert_int_equal(fmt_table_render(&t, &w, 40, 1, false), 0);
    wb_u8(&w, '\0');
    assert_string_equal((char *)w.p, "ID        TITLE          TAGS\n"
                                     "abcd1234  Rust mentori\xe2\x80\xa6  rust, mentoring\n"
                                     "efgh5678  V\xc3\xa9lo repair \xe2\x80\xa6\n");

    /* Colour: bold header, coloured column. */
    t.color[0] = "33";
    wb_reset(&w);
    assert_int_equal(fmt_table_render(&t, &w, 0, 1, true), 0);
    wb_u8(&w, '\0');
    assert_non_null(strstr((char *)w.p, "\033[1mID\033[0m"));
    assert_non_null(strstr((char *)w.p, "\033[33mabcd1234\033[0m"));
    wb_release(&w);
    fmt_table_free(&t);

    /* Headless. */
    assert_int_equal(fmt_table_init(&t, 2, NULL), 0);
    {
        const char *a[] = {"uptime", "3 h"}, *b[] = {"records", "12"};
        fmt_table_add(&t, a);
        fmt_table_add(&t, b);
    }
    wb_init(&w, 0);
    assert_int_equal(fmt_table_render(&t, &w, 0, -1, true), 0);
    wb_u8(&w, '\0');
    assert_string_equal((char *)w.p, "uptime   3 h\nrecords  12\n");
    wb_release(&w);
    fmt_table_free(&t);
}

/* ---- JSON ---------------------------------------------------------------------------- */

static char *
to_json(const uint8_t *p, size_t n, int *rc)
{
    static char buf[4096];
    struct pull_wb w;
    struct pull_rd r;

    wb_init(&w, 0);
    rd_init(&r, p, n);
    *rc = json_from_mp(&r, &w);
    snprintf(buf, sizeof(buf), "%.*s", (int)w.len, w.p != NULL ? (char *)w.p : "");
    wb_release(&w);
    return buf;
}

static void
test_json(void **state)
{
    struct pull_wb w;
    msgpack_packer pk;
    uint8_t b[64];
    size_t n;
    int rc;
    char *s;
    (void)state;

    /* Escaping: quote, backslash, controls, DEL, U+2028; UTF-8 kept; invalid bytes. */
    wb_init(&w, 0);
    json_str(&w, "a\"b\\c\n\t\x01\x1f\x7f", 10);
    wb_u8(&w, 0);
    assert_string_equal((char *)w.p, "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\\u007f\"");
    wb_reset(&w);
    json_str(&w, "\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80 \xe2\x80\xa8", 13);
    wb_u8(&w, 0);
    assert_string_equal((char *)w.p, "\"\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80 \\u2028\"");
    wb_reset(&w);
    json_str(&w, "x\xff\xc3(\xed\xa0\x80", 7); /* bad byte, cut sequence, surrogate */
    wb_u8(&w, 0);
    assert_string_equal((char *)w.p, "\"x\\ufffd\\ufffd(\\ufffd\\ufffd\\ufffd\"");
    wb_reset(&w);
    json_str(&w, "\b\f\r", 3);
    wb_u8(&w, 0);
    assert_string_equal((char *)w.p, "\"\\b\\f\\r\"");
    /* C1 controls, bidi controls and invisible characters (text rule 2) as \uXXXX */
    wb_reset(&w);
    json_str(&w,
             "\xc2\x9b"
             "a\xe2\x80\xae"
             "b\xe2\x80\x8b"
             "c\xef\xbb\xbf"
             "d\xf3\xa0\x81\x81",
             19);
    wb_u8(&w, 0);
    assert_string_equal((char *)w.p, "\"\\u009ba\\u202eb\\u200bc\\ufeffd\\udb40\\udc41\"");

    /* A record-like result. */
    wb_reset(&w);
    mp_packer_init(&pk, &w);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 6);
    mp_pack_cstr(&pk, "id");
    mp_pack_cstr(&pk, "abcdef");
    mp_pack_cstr(&pk, "seq");
    msgpack_pack_uint64(&pk, UINT64_MAX);
    mp_pack_cstr(&pk, "score");
    msgpack_pack_int64(&pk, -70000);
    mp_pack_cstr(&pk, "tags");
    msgpack_pack_array(&pk, 2);
    mp_pack_cstr(&pk, "rust");
    mp_pack_cstr(&pk, "c\"");
    mp_pack_cstr(&pk, "env");
    mp_pack_bin(&pk, "\x00\xff\x10", 3);
    mp_pack_cstr(&pk, "x");
    msgpack_pack_map(&pk, 2);
    mp_pack_cstr(&pk, "ok");
    msgpack_pack_true(&pk);
    mp_pack_cstr(&pk, "none");
    msgpack_pack_nil(&pk);
    s = to_json(w.p, w.len, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(s, "[{\"id\":\"abcdef\",\"seq\":18446744073709551615,"
                           "\"score\":-70000,\"tags\":[\"rust\",\"c\\\"\"],"
                           "\"env\":\"00ff10\",\"x\":{\"ok\":true,\"none\":null}}]");

    /* Floats, a uint key, empty containers. */
    wb_reset(&w);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_uint64(&pk, 7);
    msgpack_pack_double(&pk, 0.5);
    mp_pack_cstr(&pk, "a");
    msgpack_pack_array(&pk, 0);
    mp_pack_cstr(&pk, "m");
    msgpack_pack_map(&pk, 0);
    s = to_json(w.p, w.len, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(s, "{\"7\":0.5,\"a\":[],\"m\":{}}");

    /* Hostile input: truncated, ext, bool key, nesting, huge header. */
    n = tu_hex("92 01", b, sizeof(b));
    to_json(b, n, &rc);
    assert_int_equal(rc, PULL_ERR_TRUNCATED);
    n = tu_hex("d4 01 00", b, sizeof(b));
    to_json(b, n, &rc);
    assert_int_equal(rc, PULL_ERR_FIELD);
    n = tu_hex("81 c3 01", b, sizeof(b));
    to_json(b, n, &rc);
    assert_int_equal(rc, PULL_ERR_FIELD);
    n = tu_hex("dd ffffffff 01", b, sizeof(b));
    to_json(b, n, &rc);
    assert_int_equal(rc, PULL_ERR_TRUNCATED);
    memset(b, 0x91, 40);
    b[40] = 0xc0;
    to_json(b, 41, &rc);
    assert_int_equal(rc, PULL_ERR_DEPTH);
    wb_release(&w);
}

/* ---- A fake pulld ---------------------------------------------------------------------- */

struct fake;
typedef void (*fake_handler)(struct fake *f, int fd, const struct ctl_request *req);

struct fake {
    char *dir;
    char sock[PATH_MAX];
    int lfd;
    pthread_t th;
    fake_handler handle;
    pthread_mutex_t mu;
    int nreq;
    char cmd[8][CTL_CMD_MAX + 1]; /* commands received */
    uint8_t args[8][8192];        /* their args maps */
    size_t args_len[8];
    uint64_t envelopes;   /* import: envelopes received */
    uint8_t env_hash[32]; /* import: running checksum of their bytes */
};

static void
send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        p += k;
        n -= (size_t)k;
    }
}

/* Replies with err/msg and a result packed by fn (NULL: nil). */
static void
reply(int fd, uint64_t seq, int err, const char *msg, bool more,
      void (*fn)(msgpack_packer *pk, void *ctx), void *ctx)
{
    struct pull_wb w;
    msgpack_packer pk;
    size_t start;

    wb_init(&w, 0);
    start = ctl_frame_begin(&w);
    mp_packer_init(&pk, &w);
    ctl_pack_reply_head(&pk, seq, err, msg, more);
    if (fn != NULL)
        fn(&pk, ctx);
    else
        msgpack_pack_nil(&pk);
    assert_int_equal(ctl_frame_end(&w, start, CTL_REPLY_MAX), 0);
    send_all(fd, w.p, w.len);
    wb_release(&w);
}

static const char *const ID1 = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst";
static const char *const ID2 = "zyxwvutsrqponmlkjihgfedcba765432zyxwvutsrqponmlkjihg";

static void
pack_record(msgpack_packer *pk, const char *id, const char *kind, const char *title)
{
    msgpack_pack_map(pk, 12);
    mp_pack_cstr(pk, "id");
    mp_pack_cstr(pk, id);
    mp_pack_cstr(pk, "kind");
    mp_pack_cstr(pk, kind);
    mp_pack_cstr(pk, "author");
    mp_pack_cstr(pk, ID2);
    mp_pack_cstr(pk, "slot");
    mp_pack_cstr(pk, "00112233445566778899aabbccddeeff");
    mp_pack_cstr(pk, "seq");
    msgpack_pack_uint64(pk, 3);
    mp_pack_cstr(pk, "title");
    mp_pack_cstr(pk, title);
    mp_pack_cstr(pk, "body");
    mp_pack_cstr(pk, "line one\nline two");
    mp_pack_cstr(pk, "tags");
    msgpack_pack_array(pk, 2);
    mp_pack_cstr(pk, "rust");
    mp_pack_cstr(pk, "mentoring");
    mp_pack_cstr(pk, "created");
    msgpack_pack_uint64(pk, (uint64_t)time(NULL) - 3 * 3600 - 60);
    mp_pack_cstr(pk, "expires");
    msgpack_pack_uint64(pk, (uint64_t)time(NULL) + 29 * 86400 + 3600);
    mp_pack_cstr(pk, "location");
    mp_pack_cstr(pk, "u09t");
    mp_pack_cstr(pk, "terms");
    mp_pack_cstr(pk, "");
}

static void
pack_search_result(msgpack_packer *pk, void *ctx)
{
    (void)ctx;
    msgpack_pack_array(pk, 2);
    pack_record(pk, ID1, "offer", "Rust mentoring");
    pack_record(pk, ID2, "need", "Looking for a \x1b[31mRust\x1b[0m mentor");
}

static void
pack_one_record(msgpack_packer *pk, void *ctx)
{
    pack_record(pk, ID1, ctx != NULL ? ctx : "offer", "Rust mentoring");
}

static void
pack_event(msgpack_packer *pk, void *ctx)
{
    const char *ev = ctx;

    if (strcmp(ev, "ready") == 0) {
        msgpack_pack_map(pk, 1);
        mp_pack_cstr(pk, "event");
        mp_pack_cstr(pk, "ready");
        return;
    }
    if (strcmp(ev, "lagged") == 0) {
        msgpack_pack_map(pk, 2);
        mp_pack_cstr(pk, "event");
        mp_pack_cstr(pk, "lagged");
        mp_pack_cstr(pk, "dropped");
        msgpack_pack_uint64(pk, 7);
        return;
    }
    if (strcmp(ev, "spoof") == 0) { /* a record stored before text rule 2 */
        msgpack_pack_map(pk, 2);
        mp_pack_cstr(pk, "event");
        mp_pack_cstr(pk, "record");
        mp_pack_cstr(pk, "record");
        pack_record(pk, ID2, "offer",
                    "free bike\xe2\x80\xae"
                    "ekib eerf\xe2\x80\x8b");
        return;
    }
    msgpack_pack_map(pk, strcmp(ev, "match") == 0 ? 3 : 2);
    mp_pack_cstr(pk, "event");
    mp_pack_cstr(pk, ev);
    mp_pack_cstr(pk, "record");
    pack_record(pk, strcmp(ev, "match") == 0 ? ID2 : ID1, "need", "Rust mentor wanted");
    if (strcmp(ev, "match") == 0) {
        mp_pack_cstr(pk, "mine");
        mp_pack_cstr(pk, ID1);
    }
}

/* Fake envelopes for export: 3-byte payloads with distinct bytes. */
static void
pack_export_chunk(msgpack_packer *pk, void *ctx)
{
    int base = *(int *)ctx;

    msgpack_pack_map(pk, 1);
    mp_pack_cstr(pk, "envelopes");
    msgpack_pack_array(pk, 3);
    for (int i = 0; i < 3; i++) {
        uint8_t e[3] = {(uint8_t)base, (uint8_t)i, 0xee};
        mp_pack_bin(pk, e, sizeof(e));
    }
}

static void
pack_export_end(msgpack_packer *pk, void *ctx)
{
    msgpack_pack_map(pk, 1);
    mp_pack_cstr(pk, "records");
    msgpack_pack_uint64(pk, *(uint64_t *)ctx);
}

static void
pack_import_result(msgpack_packer *pk, void *ctx)
{
    uint32_t n = *(uint32_t *)ctx;

    msgpack_pack_map(pk, 6);
    mp_pack_cstr(pk, "imported");
    msgpack_pack_uint64(pk, n - 1);
    mp_pack_cstr(pk, "rejected");
    msgpack_pack_uint64(pk, 1);
    mp_pack_cstr(pk, "already");
    msgpack_pack_uint64(pk, 0);
    mp_pack_cstr(pk, "expired");
    msgpack_pack_uint64(pk, 0);
    mp_pack_cstr(pk, "invalid");
    msgpack_pack_uint64(pk, 1);
    mp_pack_cstr(pk, "reasons");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    mp_pack_cstr(pk, "reason");
    mp_pack_cstr(pk, "bad signature");
    mp_pack_cstr(pk, "count");
    msgpack_pack_uint64(pk, 1);
}

static void
pack_status(msgpack_packer *pk, void *ctx)
{
    (void)ctx;
    msgpack_pack_map(pk, 6);
    mp_pack_cstr(pk, "id");
    mp_pack_cstr(pk, ID1);
    mp_pack_cstr(pk, "uptime_s");
    msgpack_pack_uint64(pk, 3 * 3600 + 12 * 60);
    mp_pack_cstr(pk, "peers");
    msgpack_pack_uint64(pk, 4);
    mp_pack_cstr(pk, "records");
    msgpack_pack_uint64(pk, 1234);
    mp_pack_cstr(pk, "network");
    mp_pack_cstr(pk, "public");
    mp_pack_cstr(pk, "limits");
    msgpack_pack_map(pk, 1);
    mp_pack_cstr(pk, "records_per_author");
    msgpack_pack_uint64(pk, 256);
}

static void
pack_candidates(msgpack_packer *pk, void *ctx)
{
    (void)ctx;
    msgpack_pack_map(pk, 2);
    mp_pack_cstr(pk, "total");
    msgpack_pack_uint64(pk, 2);
    mp_pack_cstr(pk, "candidates");
    msgpack_pack_array(pk, 2);
    for (int i = 0; i < 2; i++) {
        msgpack_pack_map(pk, 4);
        mp_pack_cstr(pk, "id");
        mp_pack_cstr(pk, i == 0 ? ID1 : ID2);
        mp_pack_cstr(pk, "kind");
        mp_pack_cstr(pk, i == 0 ? "offer" : "need");
        mp_pack_cstr(pk, "title");
        mp_pack_cstr(pk, i == 0 ? "Rust mentoring" : "Rust mentor wanted");
        mp_pack_cstr(pk, "author");
        mp_pack_cstr(pk, ID2);
    }
}

/* The fake's behaviour: what a real pulld would answer, enough to drive each command. */
static void
default_handler(struct fake *f, int fd, const struct ctl_request *req)
{
    char id[64] = "";
    (void)f;

    if (strcmp(req->cmd, "search") == 0 || strcmp(req->cmd, "record.list") == 0) {
        reply(fd, req->seq, 0, NULL, false, pack_search_result, NULL);
    } else if (strcmp(req->cmd, "show") == 0) {
        ctl_arg_str(req, "id", 52, id, sizeof(id));
        if (strcmp(id, "abcdef") == 0)
            reply(fd, req->seq, PULL_ERR_AMBIGUOUS, "ambiguous id prefix 'abcdef' (2 records)",
                  false, NULL, NULL);
        else
            reply(fd, req->seq, 0, NULL, false, pack_one_record, NULL);
    } else if (strcmp(req->cmd, "candidates") == 0) {
        reply(fd, req->seq, 0, NULL, false, pack_candidates, NULL);
    } else if (strcmp(req->cmd, "record.add") == 0) {
        char title[200];
        ctl_arg_str(req, "title", 199, title, sizeof(title));
        if (strlen(title) < 3)
            reply(fd, req->seq, PULL_ERR_TITLE, "title too long or empty", false, NULL, NULL);
        else
            reply(fd, req->seq, 0, NULL, false, pack_one_record, NULL);
    } else if (strcmp(req->cmd, "status") == 0) {
        reply(fd, req->seq, 0, NULL, false, pack_status, NULL);
    } else if (strcmp(req->cmd, "watch") == 0) {
        reply(fd, req->seq, 0, NULL, true, pack_event, "ready");
        reply(fd, req->seq, 0, NULL, true, pack_event, "record");
        reply(fd, req->seq, 0, NULL, true, pack_event, "match");
        reply(fd, req->seq, 0, NULL, true, pack_event, "lagged");
        reply(fd, req->seq, 0, NULL, true, pack_event, "spoof");
        /* ... and stays open until the client goes. */
    } else if (strcmp(req->cmd, "export") == 0) {
        int a = 1, b = 2;
        uint64_t total = 6;
        reply(fd, req->seq, 0, NULL, true, pack_export_chunk, &a);
        reply(fd, req->seq, 0, NULL, true, pack_export_chunk, &b);
        reply(fd, req->seq, 0, NULL, false, pack_export_end, &total);
    } else if (strcmp(req->cmd, "import") == 0) {
        struct ctl_array it;
        const uint8_t *env;
        uint32_t len, n = 0;
        assert_int_equal(ctl_arg_array(req, "envelopes", CTL_CHUNK_ENVELOPES, &it), 0);
        while (ctl_array_next_bin(&it, 4200, &env, &len) == 1) {
            pthread_mutex_lock(&f->mu);
            f->envelopes++;
            for (uint32_t i = 0; i < len; i++)
                f->env_hash[(f->envelopes + i) % 32] ^= env[i];
            pthread_mutex_unlock(&f->mu);
            n++;
        }
        reply(fd, req->seq, 0, NULL, false, pack_import_result, &n);
    } else {
        char msg[128];
        snprintf(msg, sizeof(msg), "unknown command '%s'", req->cmd);
        reply(fd, req->seq, PULL_ERR_UNKNOWN_CMD, msg, false, NULL, NULL);
    }
}

static void
serve(struct fake *f, int fd)
{
    struct ctl_reader rd;
    uint8_t buf[4096];
    ssize_t n;

    ctl_reader_init(&rd, CTL_REQUEST_MAX);
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        size_t off = 0, used;
        while (off < (size_t)n) {
            const uint8_t *msg;
            size_t len;
            if (ctl_reader_feed(&rd, buf + off, (size_t)n - off, &used) != 0)
                goto out;
            off += used;
            while (ctl_reader_pop(&rd, &msg, &len) == 1) {
                struct ctl_request req;
                if (ctl_request_decode(msg, len, &req) != 0)
                    goto out;
                pthread_mutex_lock(&f->mu);
                if (f->nreq < 8) {
                    memcpy(f->cmd[f->nreq], req.cmd, sizeof(req.cmd));
                    f->args_len[f->nreq] = req.args_len < 8192 ? req.args_len : 0;
                    memcpy(f->args[f->nreq], req.args, f->args_len[f->nreq]);
                }
                f->nreq++;
                pthread_mutex_unlock(&f->mu);
                f->handle(f, fd, &req);
            }
        }
    }
out:
    ctl_reader_release(&rd);
}

static void *
fake_main(void *arg)
{
    struct fake *f = arg;
    int fd;

    while ((fd = accept(f->lfd, NULL, NULL)) >= 0) {
        serve(f, fd);
        close(fd);
    }
    return NULL;
}

static struct fake *
fake_start(fake_handler h)
{
    struct fake *f = calloc(1, sizeof(*f));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    assert_non_null(f);
    f->dir = tu_tmpdir();
    f->handle = h != NULL ? h : default_handler;
    pthread_mutex_init(&f->mu, NULL);
    snprintf(f->sock, sizeof(f->sock), "%s/pulld.sock", f->dir);
    SNP(sa.sun_path, "%s", f->sock);
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->lfd, 8), 0);
    assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
    return f;
}

static void
fake_stop(struct fake *f)
{
    shutdown(f->lfd, SHUT_RDWR); /* wakes accept() */
    pthread_join(f->th, NULL);
    close(f->lfd);
    tu_rmrf(f->dir);
    free(f->dir);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

/* ---- The client against the fake ------------------------------------------------------- */

static void
test_client_roundtrip(void **state)
{
    struct fake *f = fake_start(NULL);
    struct client c;
    struct ctl_reply rep;
    struct pull_rd r;
    msgpack_packer *pk;
    uint32_t n;
    int events = 0;
    (void)state;

    assert_int_equal(client_init(&c, f->dir), 0);
    assert_string_equal(c.sock, f->sock);
    assert_int_equal(client_connect(&c), 0);

    pk = client_begin(&c, "search");
    msgpack_pack_map(pk, 1);
    mp_pack_cstr(pk, "words");
    msgpack_pack_array(pk, 1);
    mp_pack_cstr(pk, "rust");
    assert_int_equal(client_send(&c), 0);
    assert_int_equal(client_recv(&c, &rep), 0);
    assert_int_equal(rep.err, 0);
    assert_int_equal(rep.seq, 1);
    assert_false(rep.more);
    rd_init(&r, rep.result, rep.result_len);
    assert_int_equal(mp_read_array(&r, &n), 0);
    assert_int_equal(n, 2);

    /* An error reply carries its message. */
    pk = client_begin(&c, "show");
    msgpack_pack_map(pk, 1);
    mp_pack_cstr(pk, "id");
    mp_pack_cstr(pk, "abcdef");
    assert_int_equal(client_send(&c), 0);
    assert_int_equal(client_recv(&c, &rep), 0);
    assert_int_equal(rep.seq, 2);
    assert_int_equal(rep.err, PULL_ERR_AMBIGUOUS);
    assert_string_equal(rep.msg, "ambiguous id prefix 'abcdef' (2 records)");

    /* A stream. */
    pk = client_begin(&c, "export");
    msgpack_pack_map(pk, 0);
    assert_int_equal(client_send(&c), 0);
    do {
        assert_int_equal(client_recv(&c, &rep), 0);
        assert_int_equal(rep.err, 0);
        events++;
    } while (rep.more);
    assert_int_equal(events, 3);

    /* The server saw what we sent. */
    assert_int_equal(f->nreq, 3);
    assert_string_equal(f->cmd[0], "search");
    {
        struct ctl_request req = {.args = f->args[0], .args_len = f->args_len[0]};
        char words[1][33];
        uint32_t count;
        assert_int_equal(ctl_arg_strs(&req, "words", 4, 32, &words[0][0], 33, &count), 0);
        assert_int_equal(count, 1);
        assert_string_equal(words[0], "rust");
    }
    client_close(&c);

    /* Nobody listening: NOT_RUNNING, whether the socket is missing or stale. */
    assert_int_equal(client_init(&c, "/nonexistent-pull-dir"), 0);
    assert_int_equal(client_connect(&c), PULL_ERR_NOT_RUNNING);
    client_close(&c);
    fake_stop(f);
}

static void
test_client_long_path(void **state)
{
    struct fake *f;
    struct client c;
    char *base = tu_tmpdir(), deep[PATH_MAX], cmd[PATH_MAX + 16];
    struct ctl_reply rep;
    (void)state;

    /* A data dir whose socket path doesn't fit in sun_path (108 bytes). */
    snprintf(deep, sizeof(deep), "%s/%s", base,
             "a-rather-long-directory-name-to-overflow-sun-path-0123456789/"
             "and-another-long-directory-name-for-good-measure-0123456789");
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", deep);
    assert_int_equal(system(cmd), 0);
    f = fake_start(NULL);
    /* Move the fake's socket into the deep directory (bind used the short path). */
    {
        char to[PATH_MAX];
        SNP(to, "%s/pulld.sock", deep);
        assert_int_equal(rename(f->sock, to), 0);
    }
    assert_int_equal(client_init(&c, deep), 0);
    assert_true(strlen(c.sock) >= sizeof(((struct sockaddr_un *)0)->sun_path));
    assert_int_equal(client_connect(&c), 0);
    msgpack_pack_map(client_begin(&c, "status"), 0);
    assert_int_equal(client_send(&c), 0);
    assert_int_equal(client_recv(&c, &rep), 0);
    assert_int_equal(rep.err, 0);
    client_close(&c);
    fake_stop(f);
    tu_rmrf(base);
    free(base);
}

/* ---- The real binary against the fake --------------------------------------------------- */

static char pull_bin[PATH_MAX];

/* Finds build/cli/pull from build/tests/test_cli. */
static bool
find_pull(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash;

    if (n <= 0)
        return false;
    self[n] = '\0';
    if ((slash = strrchr(self, '/')) == NULL)
        return false;
    *slash = '\0';
    SNP(pull_bin, "%s/../cli/pull", self);
    return access(pull_bin, X_OK) == 0;
}

struct run {
    int status; /* exit code, or 128 + signal */
    char out[16384];
    char err[4096];
};

static void
read_file(const char *path, char *buf, size_t n)
{
    FILE *fp = fopen(path, "rb");
    size_t k = 0;

    if (fp != NULL) {
        k = fread(buf, 1, n - 1, fp);
        fclose(fp);
    }
    buf[k] = '\0';
}

/* Starts pull with args (NULL-terminated, after "pull"), stdout and stderr to files in
 * dir. Returns the pid. */
static pid_t
spawn_pull(const char *dir, const char *const *args)
{
    char outp[PATH_MAX], errp[PATH_MAX], home[PATH_MAX + 8];
    char *argv[32];
    char *envp[] = {"NO_COLOR=1", "TZ=UTC", home, NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int i = 0;

    snprintf(home, sizeof(home), "HOME=%s", dir);
    snprintf(outp, sizeof(outp), "%s/out", dir);
    snprintf(errp, sizeof(errp), "%s/err", dir);
    argv[i++] = pull_bin;
    for (; args[i - 1] != NULL && i < 31; i++)
        argv[i] = (char *)args[i - 1];
    argv[i] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(posix_spawn(&pid, pull_bin, &fa, NULL, argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static void
finish(const char *dir, pid_t pid, struct run *r)
{
    char path[PATH_MAX];
    int st;

    assert_int_equal(waitpid(pid, &st, 0), pid);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    snprintf(path, sizeof(path), "%s/out", dir);
    read_file(path, r->out, sizeof(r->out));
    snprintf(path, sizeof(path), "%s/err", dir);
    read_file(path, r->err, sizeof(r->err));
}

static struct run *
run_pull(const char *dir, const char *const *args)
{
    static struct run r;

    memset(&r, 0, sizeof(r));
    finish(dir, spawn_pull(dir, args), &r);
    return &r;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void
test_binary_errors(void **state)
{
    char *dir = tu_tmpdir();
    struct run *r;
    char want[PATH_MAX * 3];
    (void)state;

    if (!find_pull()) {
        tu_rmrf(dir);
        free(dir);
        skip();
    }
    /* No node in that directory: say so, never suggest creating one there; exit 3. */
    r = run_pull(dir, ARGS("--data-dir", dir, "search", "rust"));
    assert_int_equal(r->status, 3);
    snprintf(want, sizeof(want),
             "pull: no pull node at %s (no identity.key there); the default is ", dir);
    assert_true(strncmp(r->err, want, strlen(want)) == 0);
    assert_null(strstr(r->err, "start it"));
    assert_string_equal(r->out, "");
    /* A node whose pulld is not running: one line, how to start it, exit 3. */
    {
        char key[PATH_MAX + 32];
        FILE *f;
        snprintf(key, sizeof(key), "%s/identity.key", dir);
        assert_non_null(f = fopen(key, "w"));
        fclose(f);
    }
    r = run_pull(dir, ARGS("--data-dir", dir, "search", "rust"));
    assert_int_equal(r->status, 3);
    snprintf(want, sizeof(want),
             "pull: pulld is not running on %s; start it with: pulld --data-dir %s\n", dir, dir);
    assert_string_equal(r->err, want);

    /* Unknown command with a suggestion; bad flag; missing argument; bad duration. */
    r = run_pull(dir, ARGS("serch", "rust"));
    assert_int_equal(r->status, 2);
    assert_string_equal(
        r->err, "pull: unknown command 'serch'; did you mean 'search'? (see: pull --help)\n");
    r = run_pull(dir, ARGS("search", "--limt", "3"));
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "did you mean '--limit'?"));
    r = run_pull(dir, ARGS("show"));
    assert_int_equal(r->status, 2);
    assert_true(strncmp(r->err, "pull: show needs one record ID", 30) == 0);
    r = run_pull(dir, ARGS("offer", "add", "Title", "--expires", "91d"));
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "at most 90d"));
    r = run_pull(dir, ARGS("show", "a\xe2\x80\xae"
                                   "c")); /* a name can't hold a bidi control */
    assert_int_equal(r->status, 2);
    assert_non_null(strstr(r->err, "is not a record id or author"));
    /* Every error is exactly one line. */
    assert_non_null(strchr(r->err, '\n'));
    assert_string_equal(strchr(r->err, '\n'), "\n");

    /* Help goes to stdout with exit 0, in all three forms. */
    r = run_pull(dir, ARGS("--help"));
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "usage: pull"));
    r = run_pull(dir, ARGS("search", "--help"));
    assert_int_equal(r->status, 0);
    assert_true(strncmp(r->out, "usage: pull search", 18) == 0);
    r = run_pull(dir, ARGS("help", "watch"));
    assert_int_equal(r->status, 0);
    assert_true(strncmp(r->out, "usage: pull watch", 17) == 0);
    tu_rmrf(dir);
    free(dir);
}

static void
test_binary_commands(void **state)
{
    struct fake *f;
    struct run *r;
    char id8[9];
    (void)state;

    if (!find_pull())
        skip();
    f = fake_start(NULL);
    memcpy(id8, ID1, 8);
    id8[8] = '\0';

    /* search --json: the result, generically, on one line. */
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "--json", "search", "rust", "mentor", "--kind",
                              "offer", "--tag", "#rust", "--limit", "5"));
    assert_int_equal(r->status, 0);
    assert_string_equal(r->err, "");
    assert_true(strncmp(r->out, "[{\"id\":\"", 8) == 0);
    assert_non_null(strstr(r->out, "\"title\":\"Looking for a \\u001b[31mRust\\u001b[0m mentor\""));
    assert_non_null(strstr(r->out, "\"tags\":[\"rust\",\"mentoring\"]"));
    assert_int_equal(strchr(r->out, '\n') - r->out + 1, (long)strlen(r->out));
    /* ... and the request carried every argument. */
    {
        struct ctl_request req = {.args = f->args[0], .args_len = f->args_len[0]};
        char words[2][33], tags[1][33], kind[16];
        uint32_t count;
        uint64_t limit;
        assert_string_equal(f->cmd[0], "search");
        assert_int_equal(ctl_arg_strs(&req, "words", 4, 32, &words[0][0], 33, &count), 0);
        assert_int_equal(count, 2);
        assert_string_equal(words[1], "mentor");
        assert_int_equal(ctl_arg_strs(&req, "tags", 4, 32, &tags[0][0], 33, &count), 0);
        assert_string_equal(tags[0], "rust");
        assert_int_equal(ctl_arg_str(&req, "kind", 15, kind, sizeof(kind)), 0);
        assert_string_equal(kind, "offer");
        assert_int_equal(ctl_arg_uint(&req, "limit", 10000, &limit), 0);
        assert_int_equal(limit, 5);
    }

    /* search, for people: a table with short ids, relative times, no escape codes. */
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "search", "rust"));
    assert_int_equal(r->status, 0);
    assert_true(strncmp(r->out, "ID        KIND   TITLE", 22) == 0);
    assert_non_null(strstr(r->out, id8));
    assert_non_null(strstr(r->out, "Rust mentoring"));
    assert_non_null(strstr(r->out, "3 h ago"));
    assert_non_null(strstr(r->out, "Looking for a <U+001B>[31mRust<U+001B>[0m mentor"));
    assert_null(strchr(r->out, '\033'));

    /* show: refused with the server's message, exit 1, and the candidates like git's. */
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "show", "ABCDEF"));
    assert_int_equal(r->status, 1);
    assert_true(strncmp(r->err,
                        "pull: ambiguous id prefix 'abcdef' (2 records)\nthe candidates are:\n",
                        66) == 0);
    assert_non_null(strstr(r->err, "\n  abcdefgh  offer        Rust mentoring  (by "));
    assert_non_null(strstr(r->err, "need         Rust mentor wanted  (by "));
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "show", "abcdefgh"));
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "offer abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst\n"));
    assert_non_null(strstr(r->out, "expires   "));
    assert_non_null(strstr(r->out, "(in 29 days)"));
    assert_non_null(strstr(r->out, "\nline one\nline two\n"));

    /* offer add: flags become args; a refused record says which rule. */
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "offer", "add", "Rust", "mentoring", "--tag",
                              "Rust", "--tag", "#mentoring", "--expires", "2w", "--body", "weekly",
                              "--location", "u09t"));
    assert_int_equal(r->status, 0);
    assert_true(
        strncmp(r->out, "published offer abcdefgh: Rust mentoring (expires in 29 days)", 60) == 0);
    {
        const int k = 5; /* after search, search, show, candidates, show */
        struct ctl_request req = {.args = f->args[k], .args_len = f->args_len[k]};
        char title[64], tags[2][33], kind[16];
        uint32_t count;
        uint64_t exp;
        assert_string_equal(f->cmd[k], "record.add");
        assert_int_equal(ctl_arg_str(&req, "title", 63, title, sizeof(title)), 0);
        assert_string_equal(title, "Rust mentoring");
        assert_int_equal(ctl_arg_str(&req, "kind", 15, kind, sizeof(kind)), 0);
        assert_string_equal(kind, "offer");
        assert_int_equal(ctl_arg_strs(&req, "tags", 4, 32, &tags[0][0], 33, &count), 0);
        assert_int_equal(count, 2);
        assert_string_equal(tags[0], "rust");
        assert_string_equal(tags[1], "mentoring");
        assert_int_equal(ctl_arg_uint(&req, "expires_s", UINT64_MAX, &exp), 0);
        assert_int_equal(exp, 14 * 86400);
    }
    /* a rule of a field that pulld checks: invalid input, the exit code of usage errors */
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "need", "add", "x"));
    assert_int_equal(r->status, 2);
    assert_string_equal(r->err, "pull: title too long or empty\n");

    /* status: a summary; --verbose: aligned key/value lines, durations and nested maps. */
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "status"));
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "uptime    3 h 12 min\n"));
    assert_non_null(strstr(r->out, "peers     4 connected, 0 known\n"));
    assert_null(strstr(r->out, "limits"));
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "status", "--verbose"));
    assert_int_equal(r->status, 0);
    assert_non_null(strstr(r->out, "uptime                     3 h 12 min\n"));
    assert_non_null(strstr(r->out, "limits.records per author  256\n"));

    /* A command this pulld doesn't serve. */
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "dyad", "list"));
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "this pulld does not know 'dyad.list'"));
    fake_stop(f);
}

static void
test_binary_watch(void **state)
{
    struct fake *f;
    struct run r;
    char path[PATH_MAX], buf[8192];
    pid_t pid;
    (void)state;

    if (!find_pull())
        skip();
    f = fake_start(NULL);
    pid = spawn_pull(f->dir, ARGS("--data-dir", f->dir, "--json", "watch", "rust"));
    /* Wait for both events, then interrupt: watch exits 0. */
    snprintf(path, sizeof(path), "%s/out", f->dir);
    for (int i = 0; i < 500; i++) {
        read_file(path, buf, sizeof(buf));
        if (strstr(buf, "eerf") != NULL)
            break;
        usleep(10000);
    }
    kill(pid, SIGINT);
    memset(&r, 0, sizeof(r));
    finish(f->dir, pid, &r);
    assert_int_equal(r.status, 0);
    assert_true(strncmp(r.err, "watching (times in ", 19) == 0); /* the local zone's name */
    assert_non_null(strstr(r.err, "; Ctrl-C to stop)\n"));
    /* One record per line, its fields at the top with the event first. */
    assert_true(strncmp(r.out, "{\"event\":\"record\",\"id\":\"abcdefgh", 32) == 0);
    assert_non_null(strstr(r.out, "\n{\"event\":\"match\",\"id\":\"zyxwvuts"));
    assert_non_null(
        strstr(r.out, ",\"mine\":\"abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst\"}\n"));
    assert_non_null(strstr(r.out, "{\"event\":\"lagged\",\"dropped\":7}\n"));
    /* peer text: escaped, never raw */
    assert_non_null(strstr(r.out, "\"title\":\"free bike\\u202eekib eerf\\u200b\""));
    assert_null(strstr(r.out, "\xe2\x80"));

    /* Human form. */
    pid = spawn_pull(f->dir, ARGS("--data-dir", f->dir, "watch"));
    for (int i = 0; i < 500; i++) {
        read_file(path, buf, sizeof(buf));
        if (strstr(buf, "eerf") != NULL)
            break;
        usleep(10000);
    }
    kill(pid, SIGTERM);
    finish(f->dir, pid, &r);
    assert_int_equal(r.status, 0);
    /* the kind column is as wide as "attestation" */
    assert_non_null(strstr(r.out, "  need        abcdefgh  Rust mentor wanted  [rust, mentoring]  "
                                  "by zyxwvuts\n"));
    assert_non_null(strstr(r.out, "(matches your abcdefgh)\n"));
    assert_non_null(strstr(r.out, "  (fell behind: 7 events not shown; pull search finds what is "
                                  "new)\n"));
    assert_non_null(strstr(r.out, "  offer       zyxwvuts  free bike<U+202E>ekib eerf<U+200B>  "));
    assert_null(strstr(r.out, "\xe2\x80"));
    fake_stop(f);
}

static void
test_binary_export_import(void **state)
{
    struct fake *f;
    struct run *r;
    char file[PATH_MAX], partial[PATH_MAX];
    struct bundle_reader *br = calloc(1, sizeof(*br));
    const uint8_t *env;
    size_t len;
    FILE *fp;
    int count = 0;
    (void)state;

    if (!find_pull()) {
        free(br);
        skip();
    }
    f = fake_start(NULL);
    snprintf(file, sizeof(file), "%s/backup.pull", f->dir);
    SNP(partial, "%s.partial", file);

    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "export", file, "--all"));
    assert_int_equal(r->status, 0);
    assert_string_equal(r->err, "");
    assert_true(strncmp(r->out, "exported 6 records to ", 22) == 0);
    assert_int_equal(access(partial, F_OK), -1);
    /* The file is a bundle of exactly the envelopes sent. */
    fp = fopen(file, "rb");
    assert_non_null(fp);
    bundle_reader_init_file(br, fp);
    while (bundle_next(br, &env, &len) == 1) {
        assert_int_equal(len, 3);
        assert_int_equal(env[0], 1 + count / 3);
        assert_int_equal(env[1], count % 3);
        count++;
    }
    assert_int_equal(br->err, 0);
    assert_int_equal(count, 6);
    fclose(fp);

    /* --json; an existing bundle is replaced (atomically, by rename). */
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "--json", "export", file));
    assert_int_equal(r->status, 0);
    assert_string_equal(r->out, "{\"records\":6}\n");

    /* Import sends every envelope and adds up the counts. */
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "--json", "import", file));
    assert_int_equal(r->status, 0);
    assert_string_equal(
        r->out, "{\"imported\":5,\"rejected\":1,\"already\":0,\"expired\":0,\"invalid\":1}\n");
    assert_int_equal(f->envelopes, 6);

    /* A file that isn't a bundle, and a truncated one. */
    fp = fopen(file, "wb");
    fputs("hello, world", fp);
    fclose(fp);
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "import", file));
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "is not a pull bundle"));
    fp = fopen(file, "wb"); /* shorter than the magic */
    fputs("hi", fp);
    fclose(fp);
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "import", file));
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "is not a pull bundle"));
    fp = fopen(file, "wb");
    fwrite("PULLBDL1\x00\x00\x00\x05\x01\x02", 1, 14, fp);
    fclose(fp);
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "import", file));
    assert_int_equal(r->status, 1);
    assert_non_null(strstr(r->err, "truncated after 0 records"));
    fake_stop(f);
    free(br);
}

/* Many envelopes go in batches of CTL_CHUNK_ENVELOPES. */
static void
test_binary_import_batches(void **state)
{
    struct fake *f;
    struct run *r;
    char file[PATH_MAX];
    FILE *fp;
    (void)state;

    if (!find_pull())
        skip();
    f = fake_start(NULL);
    snprintf(file, sizeof(file), "%s/many.pull", f->dir);
    fp = fopen(file, "wb");
    fwrite("PULLBDL1", 1, 8, fp);
    for (int i = 0; i < 600; i++) {
        uint8_t rec[4 + 100];
        be32enc(rec, 100);
        memset(rec + 4, i & 0xff, 100);
        fwrite(rec, 1, sizeof(rec), fp);
    }
    fclose(fp);
    r = run_pull(f->dir, ARGS("--data-dir", f->dir, "import", file));
    assert_int_equal(r->status, 0);
    /* 3 batches (256 + 256 + 88), each reporting one rejected. */
    assert_string_equal(r->out, "597 new, 0 already present, 3 invalid (bad signature: 3)\n");
    assert_int_equal(f->envelopes, 600);
    assert_int_equal(f->nreq, 3);
    fake_stop(f);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reltime),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_clean_fit_width),
        cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_id_prefix),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_table_flags),
        cmocka_unit_test(test_table_check),
        cmocka_unit_test(test_client_roundtrip),
        cmocka_unit_test(test_client_long_path),
        cmocka_unit_test(test_binary_errors),
        cmocka_unit_test(test_binary_commands),
        cmocka_unit_test(test_binary_watch),
        cmocka_unit_test(test_binary_export_import),
        cmocka_unit_test(test_binary_import_batches),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
