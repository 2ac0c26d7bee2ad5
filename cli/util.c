/* Shared plumbing of the subcommands: errors, options, the call to pulld, JSON output. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/mp.h"
#include "lib/names.h"
#include "lib/paths.h"
#include "lib/record.h"

struct cli_state cli;

static void __attribute__((format(printf, 1, 0))) verror(const char *fmt, va_list ap)
{
    char line[1024];

    vsnprintf(line, sizeof(line), fmt, ap);
    fflush(stdout);
    if (cli.color_err)
        fprintf(stderr, "\033[1;31mpull:\033[0m %s\n", line);
    else
        fprintf(stderr, "pull: %s\n", line);
}

int
cli_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verror(fmt, ap);
    va_end(ap);
    return EXIT_FAIL;
}

int
cli_usage(const char *fmt, ...)
{
    va_list ap;
    char line[1024];

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (cli.current != NULL)
        cli_error("%s (see: pull %s --help)", line, cli.current->name);
    else
        cli_error("%s (see: pull --help)", line);
    return EXIT_USAGE;
}

/* ---- Options ---- */

void
cli_getopt_reset(void)
{
    optind = 0; /* glibc: 0 re-initialises the scanner completely */
    opterr = 0;
}

/* Prints a bad option with a suggestion among the long options. */
static void
bad_option(const char *arg, const struct option *opts)
{
    const char *names[64];
    size_t n = 0;
    char word[64];
    const char *close;
    const char *eq;

    snprintf(word, sizeof(word), "%s", arg + (strncmp(arg, "--", 2) == 0 ? 2 : 1));
    if ((eq = strchr(word, '=')) != NULL)
        word[eq - word] = '\0';
    for (; opts[n].name != NULL && n < 64; n++)
        names[n] = opts[n].name;
    close = fmt_closest(word, names, n);
    if (close != NULL)
        cli_usage("unknown option '%s'; did you mean '--%s'?", arg, close);
    else
        cli_usage("unknown option '%s'", arg);
}

int
cli_getopt(int argc, char **argv, const struct option *opts)
{
    int c;

    /* On the first call for this argv: are these the options of the command table? */
    if (optind == 0 && cli.current != NULL && argc > 0)
        (void)cli_check_options(cli.current, argv[0], opts);
    for (;;) {
        c = getopt_long(argc, argv, ":h", opts, NULL);
        switch (c) {
        case CLI_OPT_JSON:
            cli.json = true;
            continue;
        case CLI_OPT_DATA_DIR:
            cli.data_dir = optarg;
            continue;
        case 'h':
        case CLI_OPT_HELP:
            if (cli.current != NULL)
                cli_print_usage(cli.current);
            exit(EXIT_OK);
        case ':':
            cli_usage("option '%s' needs a value", argv[optind - 1]);
            exit(EXIT_USAGE);
        case '?':
            if (optopt != 0 && optopt < 256) {
                char s[3] = {'-', (char)optopt, '\0'};
                bad_option(s, opts);
            } else {
                bad_option(argv[optind - 1], opts);
            }
            exit(EXIT_USAGE);
        default:
            return c;
        }
    }
}

int
cli_parse_expires(const char *s, uint64_t *secs)
{
    int rc = fmt_parse_duration(s, RECORD_TTL_MAX, secs);

    size_t n = strlen(s);

    if (rc == PULL_ERR_TOO_BIG)
        return cli_usage("--expires %s is too long: records live at most 90d", s);
    if (rc != 0 && n > 0 && s[n - 1] == 'm' && s[0] >= '0' && s[0] <= '9')
        return cli_usage("--expires %s: minutes or months? write %.*smin for minutes (records live "
                         "at most 90d)",
                         s, (int)(n - 1), s);
    if (rc != 0 && n > 0 && s[n - 1] >= '0' && s[n - 1] <= '9')
        return cli_usage("--expires %s needs a unit: s, min, h, d or w (30d, 12h, 90min)", s);
    if (rc != 0)
        return cli_usage("--expires wants a number and a unit (s, min, h, d, w) like 30d, 12h, 2w "
                         "(got '%s')",
                         s);
    return 0;
}

int
cli_parse_id(const char *s, char out[53], const char *what)
{
    char clean[64];

    if (fmt_id_prefix(s, out) == 0)
        return 0;
    fmt_clean(clean, sizeof(clean), s, strlen(s), false);
    return cli_usage("'%s' is not a %s: give at least 6 characters of it (a-z, 2-7)", clean, what);
}

int
cli_parse_ref(const char *s, char out[CLI_REF_MAX + 1], const char *what)
{
    char clean[CLI_REF_MAX * 4 + 1];
    size_t n = strnlen(s, CLI_REF_MAX + 1);

    if (fmt_id_prefix(s, out) == 0)
        return 0;
    /* a name: the rules of lib/names.h (a letter or digit, no hidden characters) */
    if (names_check_text(s, n, CLI_REF_MAX, false) == 0) {
        memcpy(out, s, n + 1);
        return 0;
    }
    fmt_clean(clean, sizeof(clean), s, strnlen(s, CLI_REF_MAX * 2), false);
    return cli_usage("'%s' is not a %s: an id or key prefix (6+ characters, a-z 2-7), a petname "
                     "or a name (at most %d bytes)",
                     clean, what, CLI_REF_MAX);
}

/* ---- Talking to pulld ---- */

/* Says why there is no pulld to talk to: no node at all in that directory (never suggest
 * creating one there: a mistyped --data-dir would get a new identity), or a node whose
 * pulld is not running (how to start it). */
static int
cli_not_running(const struct client *c)
{
    char key[PATH_MAX], dflt[PATH_MAX];
    struct stat st;
    bool is_default;

    is_default = paths_data_dir(NULL, dflt, sizeof(dflt)) == 0 && strcmp(dflt, c->dir) == 0;
    if (paths_join(c->dir, PATHS_KEY_NAME, key, sizeof(key)) != 0 || stat(key, &st) != 0) {
        if (is_default)
            cli_error("no pull node at %s yet: start pulld to create one there", c->dir);
        else if (dflt[0] != '\0')
            cli_error("no pull node at %s (no %s there); the default is %s: leave out "
                      "--data-dir, or give the directory of a node",
                      c->dir, PATHS_KEY_NAME, dflt);
        else
            cli_error("no pull node at %s (no %s there)", c->dir, PATHS_KEY_NAME);
        return EXIT_DOWN;
    }
    if (is_default)
        cli_error("pulld is not running on %s; start it with: pulld", c->dir);
    else
        cli_error("pulld is not running on %s; start it with: pulld --data-dir %s", c->dir, c->dir);
    return EXIT_DOWN;
}

int
cli_connect(struct client *c)
{
    int rc;

    if ((rc = client_init(c, cli.data_dir)) != 0) {
        if (rc == PULL_ERR_TOO_BIG)
            return cli_error("data directory path is too long");
        return cli_error("no data directory: set --data-dir, $PULL_HOME or $HOME");
    }
    if ((rc = client_connect(c)) == 0)
        return 0;
    switch (rc) {
    case PULL_ERR_NOT_RUNNING:
        return cli_not_running(c);
    case PULL_ERR_PERM:
        return cli_error("cannot connect to %s: permission denied (is pulld running as "
                         "another user?)",
                         c->sock);
    default:
        return cli_error("cannot connect to %s: %s", c->sock, strerror(c->sys_errno));
    }
}

/* invalid_input: pulld refused what the person typed (a rule of a field), not the command:
 * the same exit code as the CLI's own checks (EXIT_USAGE). */
static bool
invalid_input(int err)
{
    switch (err) {
    case PULL_ERR_INVAL:
    case PULL_ERR_TOO_BIG:
    case PULL_ERR_UTF8:
    case PULL_ERR_KIND:
    case PULL_ERR_TITLE:
    case PULL_ERR_BODY:
    case PULL_ERR_TAGS:
    case PULL_ERR_TAG:
    case PULL_ERR_EXPIRY:
    case PULL_ERR_BAD_KEY:
    case PULL_ERR_FIELD:
    case PULL_ERR_LOCATION:
    case PULL_ERR_ARITY:
    case PULL_ERR_CONTROL:
    case PULL_ERR_TAG_DUP:
    case PULL_ERR_INVISIBLE:
        return true;
    default:
        return false;
    }
}

int
cli_reply_failed(const struct client *c, const struct ctl_reply *rep, const char *cmd)
{
    char msg[CTL_MSG_MAX + 1];
    const char *m = rep->msg[0] != '\0' ? rep->msg : pull_strerror(rep->err);

    (void)c;
    fmt_clean(msg, sizeof(msg), m, strlen(m), false);
    if (rep->err == PULL_ERR_UNKNOWN_CMD)
        return cli_error("this pulld does not know '%s' (%s): is it older than pull?", cmd, msg);
    cli_error("%s", msg);
    return invalid_input(rep->err) ? EXIT_USAGE : EXIT_FAIL;
}

int
cli_transport_failed(const struct client *c, int rc)
{
    switch (rc) {
    case PULL_ERR_CLOSED:
        return cli_error("pulld closed the connection (did it stop?)");
    case PULL_ERR_TIMEOUT:
        return cli_error("pulld did not answer within %d s", c->timeout_ms / 1000);
    case PULL_ERR_PROTOCOL:
        return cli_error("pulld sent a malformed reply");
    case PULL_ERR_TOO_BIG:
        return cli_error("request too large for the control socket");
    default:
        return cli_error("control socket: %s",
                         c->sys_errno != 0 ? strerror(c->sys_errno) : pull_strerror(rc));
    }
}

void
cli_lookup(const char *of, const char *prefix)
{
    cli.lookup_of = of;
    snprintf(cli.lookup_prefix, sizeof(cli.lookup_prefix), "%s", prefix);
}

/* print_candidates asks pulld what the ambiguous prefix could mean and prints it under
 * the error (stderr): best effort, nothing if that fails. */
static void
print_candidates(struct client *c)
{
    struct ctl_reply rep;
    struct mp_open m;
    struct pull_rd r, list;
    uint32_t n;
    uint64_t total;

    mp_open_map(&m, client_begin(c, "candidates"));
    mp_kv_str(&m, "prefix", cli.lookup_prefix);
    mp_kv_str(&m, "of", cli.lookup_of);
    mp_close(&m);
    if (client_send(c) != 0 || client_recv(c, &rep) != 0 || rep.err != 0)
        return;
    rd_init(&r, rep.result, rep.result_len);
    total = mv_uint(&r, "total", 0);
    if (!mv_value(&r, "candidates", &list) || mp_read_array(&list, &n) != 0 || n == 0)
        return;
    fprintf(stderr, "the candidates are:\n");
    for (uint32_t i = 0; i < n; i++) {
        struct pull_rd e = list;
        char id[16], kind[16], title[256], fit[256], author[16];
        if (ctl_value_check(&list, 2) != 0)
            break;
        rec_short(&e, "id", id);
        mv_cstr(&e, "kind", kind, sizeof(kind));
        mv_cstr(&e, "title", title, sizeof(title));
        fmt_fit(fit, sizeof(fit), title, 48);
        rec_short(&e, "author", author);
        if (author[0] != '\0')
            fprintf(stderr, "  %s  %-11s  %s  (%s %s)\n", id, kind, fit,
                    strcmp(kind, "dyad") == 0 ? "with" : "by", author);
        else
            fprintf(stderr, "  %s  %-11s  %s\n", id, kind, fit);
    }
    if (total > n)
        fprintf(stderr, "  ... and %llu more\n", (unsigned long long)(total - n));
}

int
cli_call(struct client *c, struct ctl_reply *rep)
{
    int rc;

    if ((rc = client_send(c)) != 0)
        return cli_transport_failed(c, rc);
    if ((rc = client_recv(c, rep)) != 0)
        return cli_transport_failed(c, rc);
    if (rep->err != 0) {
        rc = cli_reply_failed(c, rep, c->cmd);
        if (rep->err == PULL_ERR_AMBIGUOUS && cli.lookup_of != NULL)
            print_candidates(c);
        return rc;
    }
    return 0;
}

int
cli_recv_more(struct client *c, struct ctl_reply *rep, bool *stopped)
{
    int rc;

    *stopped = false;
    if ((rc = client_recv(c, rep)) != 0) {
        if (rc == PULL_ERR_AGAIN) {
            *stopped = true;
            return 0;
        }
        return cli_transport_failed(c, rc);
    }
    if (rep->err != 0)
        return cli_reply_failed(c, rep, c->cmd);
    return 0;
}

int
cli_run(const char *cmd, void (*pack)(msgpack_packer *pk, void *ctx), void *ctx,
        int (*human)(struct pull_rd *result, void *ctx))
{
    struct client c;
    struct ctl_reply rep;
    msgpack_packer *pk;
    struct mp_open m;
    struct pull_rd r;
    int rc;

    if ((rc = cli_connect(&c)) != 0)
        goto out;
    pk = client_begin(&c, cmd);
    if (pack != NULL) {
        pack(pk, ctx);
    } else {
        mp_open_map(&m, pk);
        mp_close(&m);
    }
    if ((rc = cli_call(&c, &rep)) != 0)
        goto out;
    if (cli.json) {
        rc = cli_print_json(rep.result, rep.result_len);
    } else {
        rd_init(&r, rep.result, rep.result_len);
        rc = human(&r, ctx);
    }
out:
    client_close(&c);
    return rc;
}

int
cli_write(const struct pull_wb *w)
{
    if (w->len > 0 && fwrite(w->p, 1, w->len, stdout) != w->len)
        return cli_error("write error: %s", strerror(errno));
    return 0;
}

int
cli_print_json(const uint8_t *p, size_t n)
{
    struct pull_wb w;
    struct pull_rd r;
    int rc;

    wb_init(&w, 0);
    rd_init(&r, p, n);
    if ((rc = json_from_mp(&r, &w)) != 0) {
        wb_release(&w);
        return cli_error("cannot print the reply as JSON: %s", pull_strerror(rc));
    }
    wb_u8(&w, '\n');
    rc = cli_write(&w);
    wb_release(&w);
    return rc;
}

static uint64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
cli_progress_init(struct cli_progress *p, const char *verb, uint64_t total)
{
    memset(p, 0, sizeof(*p));
    p->on = !cli.json && isatty(STDERR_FILENO) == 1;
    p->verb = verb;
    p->total = total;
    p->t0_ms = p->last_ms = mono_ms();
}

void
cli_progress_update(struct cli_progress *p, uint64_t count, uint64_t done)
{
    uint64_t now = mono_ms(), ms, rate;
    char eta[96] = "";

    if (!p->on || now - p->last_ms < 200)
        return;
    p->last_ms = now;
    ms = now - p->t0_ms > 0 ? now - p->t0_ms : 1;
    rate = count * 1000 / ms;
    if (p->total > 0 && done > 0 && done <= p->total) {
        char left[32];
        fmt_duration(left, sizeof(left), (p->total - done) * ms / done / 1000);
        snprintf(eta, sizeof(eta), ", %llu%%, about %s left",
                 (unsigned long long)(done * 100 / p->total), left);
    }
    fprintf(stderr, "\r\033[K%s: %llu records, %llu/s%s", p->verb, (unsigned long long)count,
            (unsigned long long)rate, eta);
    fflush(stderr);
}

void
cli_progress_end(struct cli_progress *p)
{
    if (p->on && p->last_ms != p->t0_ms)
        fprintf(stderr, "\r\033[K");
}

int64_t
cli_now(void)
{
    return (int64_t)time(NULL);
}
