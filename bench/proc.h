/*
 * proc: child processes for the benches that drive real pulld nodes (pull-bench sync and
 * search): spawning with posix_spawn, bounded waits, running `pull --json ...` and reading
 * its output, starting and stopping pulld in a temp data dir, reading /proc/PID/status,
 * and generating the signed records the nodes import.
 *
 * Errors. Fallible functions return 0 or -1; on -1 a one-line reason is available from
 * proc_error() until the next failing call. Nothing here exits or prints by itself.
 *
 * Cleanup. A bench keeps every pulld it starts in a struct bench_node and calls
 * bench_node_stop on every path out. SIGINT, SIGTERM and SIGHUP are caught
 * (proc_catch_signals): every wait below then fails with "interrupted", so the bench goes
 * through its normal cleanup (stop the nodes, remove the temp dir). pulld children also
 * get SIGTERM from the kernel if the bench dies without cleaning up (PR_SET_PDEATHSIG).
 * Temp dirs are kept when the environment has PULL_KEEP=1.
 */
#ifndef PULL_BENCH_PROC_H
#define PULL_BENCH_PROC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* proc_error: the reason of the last failure (never NULL). */
const char *proc_error(void);

/* proc_catch_signals installs the SIGINT/SIGTERM/SIGHUP handler described above. */
void proc_catch_signals(void);

/* proc_interrupted: a caught signal arrived. */
bool proc_interrupted(void);

/* The binaries a bench runs. */
struct bench_bins {
    char pulld[PATH_MAX];
    char pull[PATH_MAX];
};

/* bench_find_bins sets the paths from $PULLD and $PULL, else BUILD/daemon/pulld and
 * BUILD/cli/pull where BUILD is the parent of the directory of /proc/self/exe (pull-bench
 * lives in BUILD/bench). Fails if one is not an executable file. */
int bench_find_bins(struct bench_bins *b);

/* proc_spawn starts argv[0] (a path) with argv, stdin from /dev/null, stdout to out_fd and
 * stderr to err_fd (-1: /dev/null). Sets *pid. */
int proc_spawn(char *const argv[], int out_fd, int err_fd, pid_t *pid);

/* proc_wait waits at most timeout_ms for pid to exit and sets *status (waitpid's). On a
 * timeout or an interruption the child is killed (SIGKILL) and reaped, and -1 returned. */
int proc_wait(pid_t pid, int timeout_ms, int *status);

/* Output of a finished command. */
struct proc_out {
    char *out; /* stdout, NUL-terminated (malloc'd) */
    size_t out_len;
    char *err;  /* stderr, NUL-terminated (malloc'd) */
    int status; /* exit code, or 128 + signal */
};

/* proc_out_free frees the buffers (and resets o). */
void proc_out_free(struct proc_out *o);

/* proc_run runs argv to completion within timeout_ms, capturing stdout and stderr into *o
 * (which the caller frees with proc_out_free, also on failure). Returns 0 if the command
 * ran to its end, whatever its exit code; -1 if it could not start, timed out (killed),
 * or was interrupted. */
int proc_run(char *const argv[], int timeout_ms, struct proc_out *o);

/* One pulld started by a bench. */
struct bench_node {
    const struct bench_bins *bins;
    char name[16];      /* "A", "B": for messages */
    char dir[PATH_MAX]; /* its data dir */
    char log[PATH_MAX]; /* its stderr */
    pid_t pid;          /* 0: not running */
};

/* bench_node_start starts pulld --data-dir DIR --no-lan --listen 127.0.0.1:0 --log-level
 * warn, then the extra arguments (NULL-terminated, may be NULL; they win over the ones
 * before), stderr to LOG, and waits until `pull id` answers (at most 30 s). On failure the
 * process, if any, is stopped. */
#define BENCH_NODE_EXTRA_MAX 32
int bench_node_start(struct bench_node *n, const struct bench_bins *bins, const char *name,
                     const char *dir, const char *log, char *const *extra);

/* bench_node_stop sends SIGTERM, waits up to 10 s (then SIGKILL) and sets n->pid = 0.
 * Returns pulld's exit status as proc_out.status (0: clean stop), or -1 if it was killed
 * or not running. bench_node_stop of a stopped node does nothing. */
int bench_node_stop(struct bench_node *n);

/* bench_pull runs `pull --data-dir DIR --json ARGS...` (args NULL-terminated) within
 * timeout_ms. On success (exit 0), *json holds its stdout (malloc'd, NUL-terminated; the
 * caller frees it). On failure, proc_error() names the command and gives pull's message. */
int bench_pull(const struct bench_node *n, int timeout_ms, char **json, const char *arg0, ...)
    __attribute__((sentinel));

/* bench_node_alive: the process has not exited (reaps it and clears n->pid if it has). */
bool bench_node_alive(struct bench_node *n);

/* bench_node_status reads `pull --json status`: records (required), and bytes_in and
 * bytes_out from its "counters" map (set to UINT64_MAX if absent). */
struct bench_status {
    uint64_t records;
    uint64_t bytes_in, bytes_out;
    char *json; /* the whole reply, malloc'd (free it) */
};
int bench_node_status(const struct bench_node *n, struct bench_status *st);

/* Memory of a process from /proc/PID/status, in bytes (0 if absent). */
struct proc_mem {
    uint64_t rss, hwm, anon, file, shmem;
};
int proc_mem_read(pid_t pid, struct proc_mem *m);

/* ---- JSON (compact, as lib/json.c prints it): just enough to read pull's replies ---- */

/* json_value finds "key": in json (at any depth, the first occurrence outside a string
 * value) and returns a pointer to its value, or NULL. */
const char *json_value(const char *json, const char *key);

/* json_extent: the length of the JSON value at v (object, array, string, scalar). */
size_t json_extent(const char *v);

/* json_uint reads the unsigned integer value of key. Returns false if absent or not one. */
bool json_uint(const char *json, const char *key, uint64_t *v);

/* json_sub copies the value of key (e.g. an object) into a new NUL-terminated string, or
 * returns NULL. */
char *json_sub(const char *json, const char *key);

/* json_array_str copies the i-th element of the array at v if it is a string without
 * escapes (ids, addresses) into buf. Returns false otherwise. */
bool json_array_str(const char *v, size_t i, char *buf, size_t cap);

/* json_array_len: elements of the array at v (0 if v is not an array). */
size_t json_array_len(const char *v);

/* ---- temp dirs ---- */

/* bench_tmpdir creates /tmp/pull-bench-TAG-XXXXXX (or under $TMPDIR) into buf. */
int bench_tmpdir(const char *tag, char *buf, size_t cap);

/* bench_rmtree removes dir and everything under it, unless PULL_KEEP=1 (then it says so
 * on stderr). */
void bench_rmtree(const char *dir);

/* ---- records ---- */

/* Signed records generated for a bench (bench_gen.h's generator), back to back. */
struct bench_corpus {
    uint8_t *buf;
    size_t len, cap;
    size_t *off, *elen;
    size_t n, ncap;
};

/* bench_corpus_gen generates n records (seed) into c (initialised by the call) and, if
 * bundle_path is not NULL, also writes them there as an import bundle. */
int bench_corpus_gen(struct bench_corpus *c, size_t n, uint64_t seed, const char *bundle_path);

/* bench_corpus_add appends a copy of one envelope to c. Returns 0 or PULL_ERR_NOMEM. */
int bench_corpus_add(struct bench_corpus *c, const uint8_t *env, size_t len);

/* bench_corpus_free frees c's buffers. */
void bench_corpus_free(struct bench_corpus *c);

/* bench_verify_rate verifies every record's signature (crypto_sign_verify_detached over
 * "pull/record/v1" || record, one core) and returns records per second, or -1 if one
 * failed to parse or verify. The parsing is done first, not timed. */
double bench_verify_rate(const struct bench_corpus *c);

/* bench_parse_n parses a record count 1..10,000,000. */
int bench_parse_n(const char *s, size_t *n);

/* Statistics over a sample of milliseconds (sorts v in place). */
double bench_quantile(double *v, size_t n, double q);

#endif
