/*
 * cli: what the `pull` subcommands share.
 *
 * Each subcommand lives in its own file and exports `int cmd_x(int argc, char **argv)`,
 * called by main.c's table with argv[0] = the command's name and returning the process
 * exit code. Global options (--json, --data-dir) are parsed by main.c before the command
 * and accepted again anywhere among the command's own options (cli_getopt).
 *
 * Exit codes: 0 success; 1 the command failed (a record not found, a dial that failed, a
 * file that couldn't be read, ...); 2 bad usage or invalid input, whether the CLI or pulld
 * found it (a title of spaces, a bad tag, an expiry without a unit); 3 pulld is not
 * running. Every failure prints one line on stderr that
 * starts with "pull: ".
 */
#ifndef PULL_CLI_H
#define PULL_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/client.h"
#include "cli/fmt.h"
#include "lib/buf.h"
#include "lib/ident.h"
#include "proto/ctl.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_DOWN = 3 };

/*
 * The command table (main.c) describes every command for the dispatcher, `pull --help`,
 * the shell completions (`pull completion bash|zsh|fish`) and the option check in
 * cli_getopt. What a command accepts is said in two short strings:
 *
 *   flags     its options besides the common --json, --data-dir and --help, separated by
 *             spaces: "all" (no value), "tag=TAG" (a value), where the value is a word in
 *             capitals, FILE or DIR (a path), or choices "offer|need". "!title=TEXT" is an
 *             option the command's getopt table holds but the command refuses (`offer add`
 *             takes its title as operand): not completed.
 *   operands  what its operands are, written like a value; NULL if it takes none.
 *
 * A command with verbs (offer add, dyad accept...) has them in verbs, each with its own
 * flags and operands, and none of its own. cli_getopt checks, on every run, that the
 * options a command hands it are exactly those of its table entry, and says on stderr
 * if not: tests/integration/test_completion.sh runs every command and verb to see that
 * it stays silent, so a new option can't be missing from the completions.
 */
struct cli_verb {
    const char *name;
    const char *flags;
    const char *operands;
};

/* One entry of the command table (main.c). */
struct cli_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary; /* one line for `pull --help` */
    const char *usage;   /* full help for `pull CMD --help`: synopsis, then details */
    const char *flags;   /* see above; NULL: none */
    const char *operands;
    const struct cli_verb *verbs; /* NULL, or an array ended by an entry with name NULL */
    bool hidden;                  /* left out of `pull --help` and of the completions */
};

/* The global options of main.c, in the flags form above (completion). */
extern const char cli_global_flags[];

struct cli_state {
    const char *data_dir; /* --data-dir, or NULL for the defaults */
    bool json;            /* --json */
    bool color;           /* colour on stdout (a terminal, NO_COLOR unset) */
    bool color_err;       /* colour on stderr */
    size_t width;         /* terminal columns if stdout is a terminal, else 0 */
    const struct cli_command *current;
    const char *lookup_of; /* cli_lookup: where an ambiguous prefix is looked up, or NULL */
    char lookup_prefix[53];
};

extern struct cli_state cli;

/* The commands. */
int cmd_id(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_peers(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_offer(int argc, char **argv);
int cmd_need(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_dyad(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_name(int argc, char **argv);
int cmd_names(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_invite(int argc, char **argv);
int cmd_join(int argc, char **argv);
int cmd_help(int argc, char **argv);
int cmd_completion(int argc, char **argv);

/* cli_command_find returns the table entry named name, or NULL. */
const struct cli_command *cli_command_find(const char *name);

/* cli_commands returns the command table and sets *n to its length. */
const struct cli_command *cli_commands(size_t *n);

/* ---- The table's flag strings (table.c) ---- */

/* One option of a flags string: name[0..name_len), value[0..value_len) (value NULL if the
 * option takes none); pointers into the string. */
struct cli_flag {
    const char *name, *value;
    size_t name_len, value_len;
    bool refused;
};

/* cli_flag_next reads the option at *p into f and moves *p past it; false at the end (or
 * if *p is NULL). */
bool cli_flag_next(const char **p, struct cli_flag *f);

/* cli_verb_find returns the verb of cmd named name, or NULL. */
const struct cli_verb *cli_verb_find(const struct cli_command *cmd, const char *name);

/* cli_check_options compares the getopt table opts of a run of cmd (word: argv[0] of the
 * cli_getopt call, the verb for commands with verbs) with the command table, and prints
 * one "pull: internal: ..." line on stderr per difference. Returns how many there were. */
int cli_check_options(const struct cli_command *cmd, const char *word, const struct option *opts);

/* cli_print_usage prints a command's full help to stdout. */
void cli_print_usage(const struct cli_command *cmd);

/* ---- Errors ---- */

/* cli_error prints "pull: <message>" on stderr and returns EXIT_FAIL. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* cli_usage prints "pull: <message>" and a hint to the current command's --help, and
 * returns EXIT_USAGE. */
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- Options ---- */

/* Option values cli_getopt handles itself; commands use values from CLI_OPT_USER up. */
enum { CLI_OPT_JSON = 1000, CLI_OPT_DATA_DIR, CLI_OPT_HELP, CLI_OPT_USER };

#define CLI_COMMON_OPTIONS                                                                         \
    {"json", no_argument, NULL, CLI_OPT_JSON},                                                     \
        {"data-dir", required_argument, NULL, CLI_OPT_DATA_DIR},                                   \
        {"help", no_argument, NULL, CLI_OPT_HELP},                                                 \
    {                                                                                              \
        NULL, 0, NULL, 0                                                                           \
    }

/* cli_getopt is getopt_long over argv[0..argc) (argv[0] is the command's name) with the
 * options in opts (which must end with CLI_COMMON_OPTIONS). It handles --json, --data-dir
 * and --help (prints the current command's help and exits 0) and returns the next other
 * option's value, or -1 when options are over (optind then indexes the first operand;
 * operands are moved after the options). On a bad option it prints the error and exits
 * with EXIT_USAGE. Call cli_getopt_reset before a new argv. */
int cli_getopt(int argc, char **argv, const struct option *opts);
void cli_getopt_reset(void);

/* cli_parse_expires parses an --expires value (fmt_parse_duration, at most 90 days) into
 * seconds, or prints the error and returns EXIT_USAGE. */
int cli_parse_expires(const char *s, uint64_t *secs);

/* cli_parse_id checks a record id prefix given by the user into out (lowercase), or
 * prints the error and returns EXIT_USAGE. what names it in the message ("record id"). */
int cli_parse_id(const char *s, char out[53], const char *what);

/* cli_parse_ref checks a reference to a record, a person or a dyad into out: an id prefix
 * (lowercased, as cli_parse_id), or else a name - a petname, a chosen name - of at most
 * CLI_REF_MAX bytes of text, passed as it is for pulld to resolve. Prints the error and
 * returns EXIT_USAGE otherwise. */
#define CLI_REF_MAX 64
int cli_parse_ref(const char *s, char out[CLI_REF_MAX + 1], const char *what);

/* cli_lookup says what the command's id prefix names - "records", "mine" (my records, live
 * or expired) or "dyads" - so that if pulld finds it ambiguous, the error is followed by
 * its candidates (up to 5: id, kind, title, author), like git does for short hashes. */
void cli_lookup(const char *of, const char *prefix);

/* ---- Talking to pulld ---- */

/* cli_connect opens the client (per --data-dir) and connects; on failure it prints why
 * (with how to start pulld if it isn't running) and returns the exit code. */
int cli_connect(struct client *c);

/* cli_call sends the request begun with client_begin and reads the reply into rep. Returns
 * 0 if pulld answered with err 0; otherwise prints the error line and returns the exit
 * code. */
int cli_call(struct client *c, struct ctl_reply *rep);

/* cli_transport_failed prints the one-line error for a failed send or receive on the
 * control socket (rc from the client) and returns the exit code. */
int cli_transport_failed(const struct client *c, int rc);

/* cli_recv_more reads the next reply of a stream; same contract as cli_call. *stopped is
 * set (and 0 returned) if a signal interrupted the wait. */
int cli_recv_more(struct client *c, struct ctl_reply *rep, bool *stopped);

/* cli_run is a whole simple command: connect, send cmd with the args packed by pack (NULL:
 * no args), and print the result, as JSON with --json, else with human(result, ctx).
 * Returns the exit code. */
int cli_run(const char *cmd, void (*pack)(msgpack_packer *pk, void *ctx), void *ctx,
            int (*human)(struct pull_rd *result, void *ctx));

/* cli_reply_failed prints a reply's error as one line and returns EXIT_USAGE if pulld
 * refused the input (a field's rule: title, tags, expiry, key ...), else EXIT_FAIL. */
int cli_reply_failed(const struct client *c, const struct ctl_reply *rep, const char *cmd);

/* cli_print_json prints the MessagePack value p[0..n) as one line of JSON on stdout.
 * Returns 0 or EXIT_FAIL (after printing why). */
int cli_print_json(const uint8_t *p, size_t n);

/* cli_write flushes a buffer to stdout; returns 0 or EXIT_FAIL. */
int cli_write(const struct pull_wb *w);

/* ---- Reading result maps (the reader must point at a map) ---- */

struct sv {
    const char *p;
    uint32_t n;
};

/* mv_str returns the str at key, or an empty view if absent or not a str. */
struct sv mv_str(const struct pull_rd *map, const char *key);
/* mv_cstr copies it cleaned for a terminal (fmt_clean, newlines turned into spaces) into
 * out and returns out. */
const char *mv_cstr(const struct pull_rd *map, const char *key, char *out, size_t n);
uint64_t mv_uint(const struct pull_rd *map, const char *key, uint64_t dflt);
int64_t mv_int(const struct pull_rd *map, const char *key, int64_t dflt);
bool mv_bool(const struct pull_rd *map, const char *key, bool dflt);
/* mv_has reports whether key is present (any value). */
bool mv_has(const struct pull_rd *map, const char *key);
/* mv_value points *val at the value of key; false if absent. */
bool mv_value(const struct pull_rd *map, const char *key, struct pull_rd *val);

/* ---- Records ---- */

/* rec_short_id writes the 8-character form of the id at key ("id", "author"). */
const char *rec_short(const struct pull_rd *rec, const char *key, char out[16]);

/* rec_tags writes the record's tags as "rust, mentoring" (cleaned). */
const char *rec_tags(const struct pull_rd *rec, char *out, size_t n);

/* rec_when writes "19:16 CET (3 h ago)" for the time at key (with the date when it is not
 * today: fmt_when). */
const char *rec_when(const struct pull_rd *rec, const char *key, char *out, size_t n);

/* person_of writes how a person of a result map is shown, "Name (k3vq7a2b)": my petname,
 * else the name they chose, with the first characters of their key (keyfield, e.g.
 * "author", "id"); just those characters without a name. The names are read from the
 * fields people.h packs for prefix (ctl_kv_person): "author_name" and "petname" for the
 * prefix "author", "<prefix>_name" and "<prefix>_petname" otherwise. Returns out. */
const char *person_of(const struct pull_rd *map, const char *keyfield, const char *prefix,
                      char *out, size_t n);

/* rec_print_full prints every field of one record for a person (show, add, renew...). */
void rec_print_full(const struct pull_rd *rec);

/* author_print prints the author map of `show AUTHOR` (records, offers, needs, completed
 * dyads and counterparts) for a person. */
void author_print(const struct pull_rd *author);

/* rec_print_list prints records (an array at r) as a table with the given columns:
 * a string of letters i (id), k (kind), t (title), g (tags), a (author), c (created),
 * e (expires). Prints `empty` instead if there are none. */
int rec_print_list(struct pull_rd *arr, const char *cols, const char *empty);

/* kv_print prints a map as aligned "key  value" lines for a person: the keys in first[]
 * in that order, then the others; nested maps as "key.sub", arrays of scalars joined by
 * ", ". Keys ending in "_s" are shown as durations (labelled without the "_s"),
 * "created", "updated" and "expires" as dates; '_' in labels reads as a space. */
void kv_print(const struct pull_rd *map, const char *const *first, size_t nfirst);

/* Progress of a long command on a terminal (stderr), never with --json or when stderr is not
 * a terminal: "importing: 12,345 records, 6,200/s, 40%, about 8 s left", redrawn at most
 * every 200 ms on one line, which cli_progress_end clears. */
struct cli_progress {
    bool on;
    const char *verb;
    uint64_t total; /* bytes (or records) the command will go through, 0: unknown */
    uint64_t t0_ms, last_ms;
};

void cli_progress_init(struct cli_progress *p, const char *verb, uint64_t total);
/* cli_progress_update: count records done, done of total (same unit as total). */
void cli_progress_update(struct cli_progress *p, uint64_t count, uint64_t done);
void cli_progress_end(struct cli_progress *p);

/* cli_now returns the wall clock in unix seconds. */
int64_t cli_now(void);

#endif
