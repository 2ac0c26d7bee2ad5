/* Child processes, pulld nodes, JSON replies and records for pull-bench sync and search. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_gen.h"
#include "bench/proc.h"
#include "lib/bundle.h"
#include "lib/err.h"
#include "lib/record.h"

#define PULL_ARGS_MAX 32

static char last_error[1024] = "no error";
static volatile sig_atomic_t interrupted;

const char *
proc_error(void)
{
    return last_error;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sets the error message; returns -1. */
static int
fail(const char *fmt, ...)
{
    char tmp[sizeof(last_error)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap); /* tmp: fmt's arguments may be last_error */
    va_end(ap);
    memcpy(last_error, tmp, sizeof(last_error));
    return -1;
}

static void
on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

void
proc_catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: blocking waits return EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

bool
proc_interrupted(void)
{
    return interrupted != 0;
}

static double
ms_left(double deadline)
{
    double left = (deadline - bench_now()) * 1e3;

    return left > 0 ? left : 0;
}

static void
sleep_ms(double ms)
{
    long ns = (long)(ms * 1e6);
    struct timespec ts = {ns / 1000000000L, ns % 1000000000L};

    nanosleep(&ts, NULL);
}

/* ---- binaries ---- */

static int
check_exe(const char *path, const char *what, const char *env)
{
    struct stat st;

    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || access(path, X_OK) != 0)
        return fail("%s not found at %s (build it, or set %s)", what, path, env);
    return 0;
}

int
bench_find_bins(struct bench_bins *b)
{
    const char *e;
    char self[PATH_MAX], *slash;
    ssize_t n;

    memset(b, 0, sizeof(*b));
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return fail("cannot read /proc/self/exe: %s", strerror(errno));
    self[n] = '\0';
    for (int up = 0; up < 2; up++) { /* BUILD/bench/pull-bench -> BUILD */
        if ((slash = strrchr(self, '/')) == NULL)
            return fail("unexpected path of pull-bench: %s", self);
        *slash = '\0';
    }
    if ((e = getenv("PULLD")) != NULL && e[0] != '\0')
        snprintf(b->pulld, sizeof(b->pulld), "%s", e);
    else
        snprintf(b->pulld, sizeof(b->pulld), "%.*s/daemon/pulld", PATH_MAX - 20, self);
    if ((e = getenv("PULL")) != NULL && e[0] != '\0')
        snprintf(b->pull, sizeof(b->pull), "%s", e);
    else
        snprintf(b->pull, sizeof(b->pull), "%.*s/cli/pull", PATH_MAX - 20, self);
    if (check_exe(b->pulld, "pulld", "PULLD") != 0 || check_exe(b->pull, "pull", "PULL") != 0)
        return -1;
    return 0;
}

/* ---- spawning and waiting ---- */

int
proc_spawn(char *const argv[], int out_fd, int err_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    int r;

    *pid = 0;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return fail("posix_spawn_file_actions_init failed");
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (out_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    else
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (err_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    else
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    r = posix_spawn(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0) {
        *pid = 0;
        return fail("cannot run %s: %s", argv[0], strerror(r));
    }
    return 0;
}

static int
status_code(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 255;
}

/* Waits for pid (at most timeout_ms); interruptible: a caught signal ends the wait. Kills
 * (SIGKILL) and reaps the child when the wait fails. */
static int
wait_pid(pid_t pid, int timeout_ms, int *status, bool interruptible)
{
    double deadline = bench_now() + timeout_ms / 1e3;
    int pfd = -1, st = 0;
    pid_t r;

#ifdef SYS_pidfd_open
    pfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
    for (;;) {
        r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            if (pfd >= 0)
                close(pfd);
            return fail("waitpid %d: %s", (int)pid, strerror(errno));
        }
        if (interruptible && interrupted) {
            fail("interrupted");
            goto kill_it;
        }
        if (ms_left(deadline) <= 0) {
            fail("timed out after %d ms", timeout_ms);
            goto kill_it;
        }
        if (pfd >= 0) {
            struct pollfd p = {pfd, POLLIN, 0};
            double left = ms_left(deadline);
            poll(&p, 1, left > 1000 ? 1000 : (int)left + 1);
        } else {
            sleep_ms(0.1);
        }
    }
    if (pfd >= 0)
        close(pfd);
    if (status != NULL)
        *status = st;
    return 0;
kill_it:
    if (pfd >= 0)
        close(pfd);
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return -1;
}

int
proc_wait(pid_t pid, int timeout_ms, int *status)
{
    return wait_pid(pid, timeout_ms, status, true);
}

void
proc_out_free(struct proc_out *o)
{
    free(o->out);
    free(o->err);
    memset(o, 0, sizeof(*o));
}

struct growbuf {
    char *p;
    size_t len, cap;
};

static int
grow_read(struct growbuf *g, int fd, bool *eof)
{
    char tmp[65536];
    ssize_t n = read(fd, tmp, sizeof(tmp));

    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? 0 : -1;
    if (n == 0) {
        *eof = true;
        return 0;
    }
    if (g->cap - g->len < (size_t)n + 1) {
        size_t nc = g->cap ? g->cap : 4096;
        char *q;
        while (nc - g->len < (size_t)n + 1)
            nc *= 2;
        if ((q = realloc(g->p, nc)) == NULL)
            return -1;
        g->p = q;
        g->cap = nc;
    }
    memcpy(g->p + g->len, tmp, (size_t)n);
    g->len += (size_t)n;
    g->p[g->len] = '\0';
    return 0;
}

static char *
finish_buf(struct growbuf *g)
{
    if (g->p == NULL)
        return strdup("");
    return g->p;
}

int
proc_run(char *const argv[], int timeout_ms, struct proc_out *o)
{
    double deadline = bench_now() + timeout_ms / 1e3;
    struct growbuf gout = {0}, gerr = {0};
    int po[2] = {-1, -1}, pe[2] = {-1, -1}, st = 0, rc = -1;
    bool eof_o = false, eof_e = false;
    pid_t pid = 0;

    memset(o, 0, sizeof(*o));
    if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
        fail("pipe: %s", strerror(errno));
        goto out;
    }
    if (proc_spawn(argv, po[1], pe[1], &pid) != 0)
        goto out;
    close(po[1]);
    close(pe[1]);
    po[1] = pe[1] = -1;
    while (!eof_o || !eof_e) {
        struct pollfd p[2] = {{eof_o ? -1 : po[0], POLLIN, 0}, {eof_e ? -1 : pe[0], POLLIN, 0}};
        double left = ms_left(deadline);
        int r;
        if (interrupted) {
            fail("interrupted");
            goto kill_it;
        }
        if (left <= 0) {
            fail("timed out after %d ms", timeout_ms);
            goto kill_it;
        }
        r = poll(p, 2, left > 1000 ? 1000 : (int)left + 1);
        if (r < 0 && errno != EINTR) {
            fail("poll: %s", strerror(errno));
            goto kill_it;
        }
        if (r <= 0)
            continue;
        if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) && grow_read(&gout, po[0], &eof_o) != 0) {
            fail("reading the output of %s: %s", argv[0], strerror(errno));
            goto kill_it;
        }
        if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && grow_read(&gerr, pe[0], &eof_e) != 0) {
            fail("reading the output of %s: %s", argv[0], strerror(errno));
            goto kill_it;
        }
    }
    if (wait_pid(pid, (int)ms_left(deadline) + 1, &st, true) != 0) {
        pid = 0; /* reaped */
        goto out;
    }
    pid = 0;
    o->out_len = gout.len;
    o->out = finish_buf(&gout);
    o->err = finish_buf(&gerr);
    gout.p = gerr.p = NULL;
    o->status = status_code(st);
    if (o->out == NULL || o->err == NULL) {
        fail("out of memory");
        goto out;
    }
    rc = 0;
    goto out;
kill_it:
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    pid = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (po[i] >= 0)
            close(po[i]);
        if (pe[i] >= 0)
            close(pe[i]);
    }
    free(gout.p);
    free(gerr.p);
    return rc;
}

/* ---- nodes ---- */

/* The last non-empty line of a text, into buf (for one-line errors). */
static const char *
last_line(const char *text, char *buf, size_t cap)
{
    size_t end = strlen(text), start;

    while (end > 0 && (text[end - 1] == '\n' || text[end - 1] == '\r' || text[end - 1] == ' '))
        end--;
    start = end;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    snprintf(buf, cap, "%.*s", (int)(end - start), text + start);
    return buf;
}

/* The last line of a node's log, or "(empty log)". */
static const char *
log_tail(const struct bench_node *n, char *buf, size_t cap)
{
    char tail[4096];
    FILE *f = fopen(n->log, "r");
    long sz;
    size_t got = 0;

    snprintf(buf, cap, "(empty log)");
    if (f == NULL)
        return buf;
    if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) > 0) {
        fseek(f, sz > (long)sizeof(tail) - 1 ? sz - (long)sizeof(tail) + 1 : 0, SEEK_SET);
        got = fread(tail, 1, sizeof(tail) - 1, f);
    }
    fclose(f);
    tail[got] = '\0';
    if (got > 0)
        last_line(tail, buf, cap);
    return buf;
}

bool
bench_node_alive(struct bench_node *n)
{
    int st;

    if (n->pid <= 0)
        return false;
    if (waitpid(n->pid, &st, WNOHANG) == n->pid) {
        n->pid = 0;
        return false;
    }
    return true;
}

int
bench_node_start(struct bench_node *n, const struct bench_bins *bins, const char *name,
                 const char *dir, const char *log, char *const *extra)
{
    char *argv[BENCH_NODE_EXTRA_MAX + 10] = {(char *)bins->pulld, "--data-dir", (char *)dir,
                                             "--no-lan",          "--listen",   "127.0.0.1:0",
                                             "--log-level",       "warn"};
    size_t k = 8;
    double deadline = bench_now() + 30;
    char sock[PATH_MAX + 16], tail[512];
    pid_t parent = getpid(), pid;
    int logfd;

    memset(n, 0, sizeof(*n));
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        if (i == BENCH_NODE_EXTRA_MAX)
            return fail("more than %d extra arguments for pulld", BENCH_NODE_EXTRA_MAX);
        argv[k++] = extra[i];
    }
    argv[k] = NULL;
    n->bins = bins;
    snprintf(n->name, sizeof(n->name), "%s", name);
    snprintf(n->dir, sizeof(n->dir), "%s", dir);
    snprintf(n->log, sizeof(n->log), "%s", log);
    if ((logfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
        return fail("cannot create %s: %s", log, strerror(errno));
    /* fork, not posix_spawn: the child asks for SIGTERM when the bench dies */
    if ((pid = fork()) < 0) {
        close(logfd);
        return fail("fork: %s", strerror(errno));
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        if (nul < 0 || dup2(nul, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
            _exit(127);
        execv(argv[0], argv);
        dprintf(2, "pull-bench: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(logfd);
    n->pid = pid;
    snprintf(sock, sizeof(sock), "%s/pulld.sock", dir);
    for (;;) {
        char *json = NULL;
        if (!bench_node_alive(n))
            return fail("pulld %s exited at start: %s", name, log_tail(n, tail, sizeof(tail)));
        if (interrupted) {
            bench_node_stop(n);
            return fail("interrupted");
        }
        if (access(sock, F_OK) == 0 && bench_pull(n, 5000, &json, "id", NULL) == 0) {
            free(json);
            return 0;
        }
        if (bench_now() > deadline) {
            fail("pulld %s did not answer `pull id` within 30 s: %s", name, proc_error());
            bench_node_stop(n);
            return -1;
        }
        sleep_ms(20);
    }
}

int
bench_node_stop(struct bench_node *n)
{
    int st = 0;

    if (n->pid <= 0)
        return -1;
    kill(n->pid, SIGTERM);
    if (wait_pid(n->pid, 10000, &st, false) != 0) {
        n->pid = 0;
        return -1;
    }
    n->pid = 0;
    return status_code(st);
}

int
bench_pull(const struct bench_node *n, int timeout_ms, char **json, const char *arg0, ...)
{
    char *argv[PULL_ARGS_MAX + 6], cmd[256], line[512];
    size_t k = 0, cl = 0;
    struct proc_out o;
    const char *a;
    va_list ap;
    int rc = -1;

    *json = NULL;
    argv[k++] = (char *)n->bins->pull;
    argv[k++] = "--data-dir";
    argv[k++] = (char *)n->dir;
    argv[k++] = "--json";
    cmd[0] = '\0';
    va_start(ap, arg0);
    for (a = arg0; a != NULL && k < PULL_ARGS_MAX; a = va_arg(ap, const char *)) {
        argv[k++] = (char *)a;
        if (cl < sizeof(cmd))
            cl += (size_t)snprintf(cmd + cl, sizeof(cmd) - cl, "%s%s", cl ? " " : "", a);
    }
    va_end(ap);
    argv[k] = NULL;
    if (proc_run(argv, timeout_ms, &o) != 0) {
        fail("`pull %s` on %s: %s", cmd, n->name, proc_error());
        goto out;
    }
    if (o.status != 0) {
        fail("`pull %s` on %s exited %d: %s", cmd, n->name, o.status,
             last_line(o.err, line, sizeof(line)));
        goto out;
    }
    *json = o.out;
    o.out = NULL; /* transferred */
    rc = 0;
out:
    proc_out_free(&o);
    return rc;
}

int
bench_node_status(const struct bench_node *n, struct bench_status *st)
{
    char *counters;

    memset(st, 0, sizeof(*st));
    if (bench_pull(n, 10000, &st->json, "status", NULL) != 0)
        return -1;
    if (!json_uint(st->json, "records", &st->records)) {
        free(st->json);
        st->json = NULL;
        return fail("`pull --json status` on %s has no \"records\"", n->name);
    }
    st->bytes_in = st->bytes_out = UINT64_MAX;
    if ((counters = json_sub(st->json, "counters")) != NULL) {
        if (!json_uint(counters, "bytes_in", &st->bytes_in))
            st->bytes_in = UINT64_MAX;
        if (!json_uint(counters, "bytes_out", &st->bytes_out))
            st->bytes_out = UINT64_MAX;
        free(counters);
    }
    return 0;
}

int
proc_mem_read(pid_t pid, struct proc_mem *m)
{
    char path[64], line[256];
    unsigned long long v;
    FILE *f;

    memset(m, 0, sizeof(*m));
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    if ((f = fopen(path, "r")) == NULL)
        return fail("cannot read %s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %llu kB", &v) == 1)
            m->rss = v * 1024;
        else if (sscanf(line, "VmHWM: %llu kB", &v) == 1)
            m->hwm = v * 1024;
        else if (sscanf(line, "RssAnon: %llu kB", &v) == 1)
            m->anon = v * 1024;
        else if (sscanf(line, "RssFile: %llu kB", &v) == 1)
            m->file = v * 1024;
        else if (sscanf(line, "RssShmem: %llu kB", &v) == 1)
            m->shmem = v * 1024;
    }
    fclose(f);
    if (m->rss == 0)
        return fail("no VmRSS in %s", path);
    return 0;
}

/* ---- JSON ---- */

/* Past the string starting at s (s[0] == '"'): the character after its closing quote. */
static const char *
skip_string(const char *s)
{
    for (s++; *s != '\0'; s++) {
        if (*s == '\\' && s[1] != '\0')
            s++;
        else if (*s == '"')
            return s + 1;
    }
    return s;
}

const char *
json_value(const char *json, const char *key)
{
    size_t kl = strlen(key);

    for (const char *p = json; *p != '\0';) {
        if (*p != '"') {
            p++;
            continue;
        }
        const char *e = skip_string(p);
        if (e[0] == ':' && (size_t)(e - p) == kl + 2 && memcmp(p + 1, key, kl) == 0)
            return e + 1;
        p = e;
    }
    return NULL;
}

size_t
json_extent(const char *v)
{
    const char *p = v;
    int depth = 0;

    if (*p == '"')
        return (size_t)(skip_string(p) - v);
    if (*p != '{' && *p != '[') {
        while (*p != '\0' && *p != ',' && *p != '}' && *p != ']')
            p++;
        return (size_t)(p - v);
    }
    while (*p != '\0') {
        if (*p == '"') {
            p = skip_string(p);
            continue;
        }
        if (*p == '{' || *p == '[')
            depth++;
        else if ((*p == '}' || *p == ']') && --depth == 0)
            return (size_t)(p + 1 - v);
        p++;
    }
    return (size_t)(p - v);
}

bool
json_uint(const char *json, const char *key, uint64_t *v)
{
    const char *p = json_value(json, key);
    char *end;
    unsigned long long x;

    if (p == NULL || *p < '0' || *p > '9')
        return false;
    errno = 0;
    x = strtoull(p, &end, 10);
    if (errno != 0 || end == p)
        return false;
    *v = x;
    return true;
}

char *
json_sub(const char *json, const char *key)
{
    const char *p = json_value(json, key);

    if (p == NULL)
        return NULL;
    return strndup(p, json_extent(p));
}

/* Calls back for each element of the array at v; stops at element i. */
static const char *
array_elem(const char *v, size_t i, size_t *count)
{
    const char *p = v + 1;
    size_t k = 0;

    *count = 0;
    if (*v != '[')
        return NULL;
    while (*p != '\0' && *p != ']') {
        if (k == i)
            return p;
        p += json_extent(p);
        k++;
        if (*p == ',')
            p++;
    }
    *count = k;
    return NULL;
}

bool
json_array_str(const char *v, size_t i, char *buf, size_t cap)
{
    size_t count, len;
    const char *e = array_elem(v, i, &count);

    if (e == NULL || *e != '"')
        return false;
    len = json_extent(e);
    if (len < 2 || len - 2 >= cap || memchr(e + 1, '\\', len - 2) != NULL)
        return false;
    memcpy(buf, e + 1, len - 2);
    buf[len - 2] = '\0';
    return true;
}

size_t
json_array_len(const char *v)
{
    size_t count;

    array_elem(v, SIZE_MAX, &count);
    return count;
}

/* ---- temp dirs ---- */

int
bench_tmpdir(const char *tag, char *buf, size_t cap)
{
    const char *t = getenv("TMPDIR");

    if (t == NULL || t[0] == '\0')
        t = "/tmp";
    if ((size_t)snprintf(buf, cap, "%s/pull-bench-%s-XXXXXX", t, tag) >= cap)
        return fail("TMPDIR is too long");
    if (mkdtemp(buf) == NULL)
        return fail("cannot create a temp dir in %s: %s", t, strerror(errno));
    return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void
bench_rmtree(const char *dir)
{
    const char *keep = getenv("PULL_KEEP");

    if (dir == NULL || dir[0] == '\0')
        return;
    if (keep != NULL && strcmp(keep, "1") == 0) {
        fprintf(stderr, "pull-bench: kept %s (PULL_KEEP=1)\n", dir);
        return;
    }
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- records ---- */

struct corpus_sink {
    struct bench_corpus *c;
    struct bundle_writer *w;
};

int
bench_corpus_add(struct bench_corpus *c, const uint8_t *env, size_t len)
{

    if (c->n == c->ncap) {
        size_t nc = c->ncap ? c->ncap * 2 : 1024;
        size_t *o = realloc(c->off, nc * sizeof(*o)), *l;
        if (o == NULL)
            return PULL_ERR_NOMEM;
        c->off = o;
        if ((l = realloc(c->elen, nc * sizeof(*l))) == NULL)
            return PULL_ERR_NOMEM;
        c->elen = l;
        c->ncap = nc;
    }
    if (c->cap - c->len < len) {
        size_t nc = c->cap ? c->cap * 2 : 1 << 20;
        uint8_t *b;
        while (nc - c->len < len)
            nc *= 2;
        if ((b = realloc(c->buf, nc)) == NULL)
            return PULL_ERR_NOMEM;
        c->buf = b;
        c->cap = nc;
    }
    memcpy(c->buf + c->len, env, len);
    c->off[c->n] = c->len;
    c->elen[c->n] = len;
    c->len += len;
    c->n++;
    return 0;
}

static int
corpus_add(void *ctx, const uint8_t *env, size_t len)
{
    struct corpus_sink *s = ctx;
    int rc;

    if ((rc = bench_corpus_add(s->c, env, len)) != 0)
        return rc;
    return s->w != NULL ? bundle_write(s->w, env, len) : 0;
}

int
bench_corpus_gen(struct bench_corpus *c, size_t n, uint64_t seed, const char *bundle_path)
{
    struct bundle_writer w;
    struct corpus_sink s = {c, NULL};
    FILE *f = NULL;
    int rc;

    memset(c, 0, sizeof(*c));
    if (bundle_path != NULL) {
        if ((f = fopen(bundle_path, "wb")) == NULL)
            return fail("cannot create %s: %s", bundle_path, strerror(errno));
        if ((rc = bundle_writer_init(&w, f)) != 0) {
            fclose(f);
            return fail("%s: %s", bundle_path, pull_strerror(rc));
        }
        s.w = &w;
    }
    rc = gen_records(n, (uint64_t)time(NULL), seed, corpus_add, &s);
    if (rc == 0 && s.w != NULL)
        rc = bundle_writer_finish(&w);
    if (f != NULL && fclose(f) != 0 && rc == 0)
        rc = PULL_ERR_IO;
    if (rc != 0)
        return fail("generating records: %s", pull_strerror(rc));
    return 0;
}

void
bench_corpus_free(struct bench_corpus *c)
{
    free(c->buf);
    free(c->off);
    free(c->elen);
    memset(c, 0, sizeof(*c));
}

double
bench_verify_rate(const struct bench_corpus *c)
{
    size_t dl = strlen(RECORD_DOMAIN), total = 0, bad = 0;
    uint8_t *msg = malloc(c->len + c->n * dl);
    size_t *moff = calloc(c->n, sizeof(*moff)), *mlen = calloc(c->n, sizeof(*mlen));
    uint8_t(*pk)[32] = calloc(c->n, sizeof(*pk));
    uint8_t(*sig)[64] = calloc(c->n, sizeof(*sig));
    struct record *rec = malloc(sizeof(*rec));
    double t0, dt, rate = -1;

    if (msg == NULL || moff == NULL || mlen == NULL || pk == NULL || sig == NULL || rec == NULL) {
        fail("out of memory");
        goto out;
    }
    for (size_t i = 0; i < c->n; i++) {
        struct envelope e;
        int rc;
        if ((rc = envelope_parse(c->buf + c->off[i], c->elen[i], &e)) != 0 ||
            (rc = record_decode(e.rec, e.rec_len, rec)) != 0) {
            fail("generated record %zu does not parse: %s", i, pull_strerror(rc));
            goto out;
        }
        moff[i] = total;
        memcpy(msg + total, RECORD_DOMAIN, dl);
        memcpy(msg + total + dl, e.rec, e.rec_len);
        mlen[i] = dl + e.rec_len;
        total += mlen[i];
        memcpy(pk[i], rec->author, 32);
        memcpy(sig[i], e.sig, 64);
    }
    t0 = bench_now();
    for (size_t i = 0; i < c->n; i++)
        bad += crypto_sign_verify_detached(sig[i], msg + moff[i], mlen[i], pk[i]) != 0;
    dt = bench_now() - t0;
    if (bad != 0) {
        fail("%zu generated records fail the raw verify", bad);
        goto out;
    }
    rate = (double)c->n / dt;
out:
    free(msg);
    free(moff);
    free(mlen);
    free(pk);
    free(sig);
    free(rec);
    return rate;
}

int
bench_parse_n(const char *s, size_t *n)
{
    char *end = NULL;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v == 0 || v > 10000000ull)
        return fail("N must be a number from 1 to 10000000, not '%s'", s);
    *n = (size_t)v;
    return 0;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

double
bench_quantile(double *v, size_t n, double q)
{
    double pos;
    size_t lo;

    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    pos = q * (double)(n - 1);
    lo = (size_t)pos;
    if (lo + 1 >= n)
        return v[n - 1];
    return v[lo] + (v[lo + 1] - v[lo]) * (pos - (double)lo);
}
