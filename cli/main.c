/*
 * pull: the command-line interface to a local pulld.
 *
 *   pull [--data-dir DIR] [--json] COMMAND [ARGS]
 *
 * main parses the global options, finds COMMAND in the table below and calls its cmd_x
 * (one file per command, like wireguard-tools' wg). Nothing heavy happens before that: no
 * libsodium, no locale, so a search is a connect, one request and one reply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/cli.h"

#define RECORD_FLAGS                                                                               \
    "  --body TEXT        longer description (up to 3000 characters; an accented letter\n"         \
    "                     counts as 2, most other scripts 2 or 3: the limit is 3000 bytes)\n"      \
    "  --tag TAG          a tag, folded like search words (CAFÉ, Café: cafe); repeat for\n"      \
    "                     several, up to 16 of up to 32 characters (bytes, as above), each\n"      \
    "                     one word of letters, digits and - _ . + (rust-mentoring);\n"             \
    "                     --tag lang-de says the record is in German (default English).\n"         \
    "                     On edit, --tag replaces all the tags\n"                                  \
    "  --add-tag TAG      edit: add a tag, keep the others (repeat for several)\n"                 \
    "  --remove-tag TAG   edit: remove a tag, keep the others\n"                                   \
    "  --expires SPAN     lifetime, a number and a unit - s, min, h, d or w: 30d (default),\n"     \
    "                     12h, 90min, 2w... at most 90d\n"                                         \
    "  --location GEOHASH where (a geohash of up to 12 characters, e.g. u09t for Paris)\n"         \
    "  --terms TEXT       what you ask or give in return (up to 500 bytes)\n"

#define RECORD_USAGE(kind, example)                                                                \
    "usage: pull " kind " add TITLE [--body T] [--tag T]... [--expires 30d]\n"                     \
    "                       [--location GEOHASH] [--terms T]\n"                                    \
    "       pull " kind " list [--expired]\n"                                                      \
    "       pull " kind " renew ID [--expires 30d]\n"                                              \
    "       pull " kind " withdraw ID\n"                                                           \
    "       pull " kind " edit ID [--title T] [--body T] [--tag T]... [--add-tag T]...\n"          \
    "                       [--remove-tag T]... [--expires 30d]\n"                                 \
    "\n"                                                                                           \
    "add publishes a signed " kind " that spreads to every node; list shows your live\n" kind      \
    "s (--expired: those that expired, which renew publishes again); renew re-signs\n"             \
    "one with a new expiry; withdraw replaces it with a tombstone; edit publishes a new\n"         \
    "version. ID is any unique prefix (6+ chars).\n"                                               \
    "TITLE is up to 120 characters (an accented letter counts as 2: the limit is 120 bytes),\n"    \
    "and not only spaces. Invalid input exits with code 2.\n"                                      \
    "\n" RECORD_FLAGS "\n"                                                                         \
    "example: pull " kind " add " example "\n"

#define RECORD_CONTENT "body=TEXT tag=TAG expires=SPAN location=GEOHASH terms=TEXT"

static const struct cli_verb record_verbs[] = {
    {"add", RECORD_CONTENT " !title=TEXT !add-tag=TAG !remove-tag=TAG", "TITLE"},
    {"list", "expired", NULL},
    {"renew", "expires=SPAN", "ID"},
    {"withdraw", NULL, "ID"},
    {"edit", RECORD_CONTENT " title=TEXT add-tag=TAG remove-tag=TAG", "ID"},
    {NULL, NULL, NULL},
};

static const struct cli_verb dyad_verbs[] = {
    {"propose", "message=TEXT", "RECORD_ID"}, {"accept", "message=TEXT", "DYAD_ID"},
    {"decline", "message=TEXT", "DYAD_ID"},   {"done", "message=TEXT", "DYAD_ID"},
    {"ack", "message=TEXT", "DYAD_ID"},       {"cancel", "message=TEXT", "DYAD_ID"},
    {"message", "message=TEXT", "DYAD_ID"},   {"list", "!message=TEXT", NULL},
    {"show", "!message=TEXT", "DYAD_ID"},     {NULL, NULL, NULL},
};

static const struct cli_verb profile_verbs[] = {
    {"set", "name=TEXT about=TEXT tag=TAG location=GEOHASH", NULL},
    {"show", "!name=TEXT !about=TEXT !tag=TAG !location=GEOHASH", "AUTHOR"},
    {NULL, NULL, NULL},
};

const char cli_global_flags[] = "data-dir=DIR json help version";

static const struct cli_command commands[] = {
    {"id", cmd_id, "show this node's id and dialable addresses",
     "usage: pull id\n\nPrints the node's id (its public key) and the addresses others can "
     "dial,\nas ID@HOST:PORT (give one to `pull connect` on another node).\n",
     .flags = ""},
    {"status", cmd_status, "node summary: peers, records, network, warnings",
     "usage: pull status [--verbose]\n\n"
     "Prints a summary of the node in at most 10 lines: its id (and profile name),\n"
     "uptime, peers connected and known, live records and mine, open dyads, network,\n"
     "listen address, LAN discovery and what is wrong (pull doctor says what to do).\n\n"
     "  --verbose  every counter and limit (--json always prints them all)\n",
     .flags = "verbose"},
    {"peers", cmd_peers, "connected and known peers",
     "usage: pull peers\n\nLists peers with their address, state (active: connected; "
     "passive: known)\nand direction.\n",
     .flags = ""},
    {"connect", cmd_connect, "dial a peer now",
     "usage: pull connect ID@HOST:PORT\n\nDials the node with that id at HOST:PORT (as "
     "printed by its `pull id`).\n",
     .operands = "ID@HOST:PORT"},
    {"doctor", cmd_doctor, "check the node, and say what to fix",
     "usage: pull doctor\n\n"
     "Checks the node and prints one line per check, with what to do when one fails:\n"
     "pulld running; its listening address reachable from this host; LAN discovery\n"
     "sending and hearing; each bootstrap peer and a sample of known peers (dialed: ok,\n"
     "refused, timeout, wrong id, other network key ...); this node's clock against its\n"
     "peers'; the store and the free disk space. A warning (a known peer offline, nobody\n"
     "heard on the LAN) does not fail. Takes up to the handshake timeout (5 s) and a little.\n"
     "Exit code 0 when every check passes, 1 otherwise. --json prints\n"
     "[{\"check\", \"ok\", \"status\", \"detail\", \"hint\"}, ...].\n",
     .flags = ""},
    {"offer", cmd_offer, "publish, list, renew, withdraw your offers",
     RECORD_USAGE("offer", "\"Rust code reviews\" --tag rust --tag review"), .verbs = record_verbs},
    {"need", cmd_need, "publish, list, renew, withdraw your needs",
     RECORD_USAGE("need", "\"Looking for a Rust mentor\" --tag rust --expires 2w"),
     .verbs = record_verbs},
    {"search", cmd_search, "ranked search over the records this node holds",
     "usage: pull search [WORDS...] [--kind offer|need] [--tag T]... [--author WHO]\n"
     "                   [--limit N] [--count] [--trusted [N]]\n\n"
     "Searches the live records stored on this node (every node holds them all).\n"
     "Words match whatever their case and accents (CAFÉ finds Café, strasse finds\n"
     "Straße), other forms of the same word (bicycles finds bicycle, in\n"
     "the record's language: --tag lang-de on a record), words they start, and small\n"
     "typos (mentr finds mentor). Ranked by relevance (tags, then titles, then bodies;\n"
     "exact and stemmed matches above typos), then freshness; a query saying what it\n"
     "needs (\"looking for\", \"need\") ranks offers first, and the other way round.\n"
     "Ends with \"N of M shown\".\n\n"
     "  --kind K     only offers or only needs (also profile, attestation)\n"
     "  --tag T      only records with this tag (repeat: all of them)\n"
     "  --author WHO only records by this author: a key prefix (6+ chars), a petname\n"
     "               or a name\n"
     "  --limit N    at most N results (default 20)\n"
     "  --count      only the number of matches (--json: {\"total\": M})\n"
     "  --trusted [N] only authors within N hops of you (default 2) in the graph of\n"
     "               completed dyads: you, the people you completed one with (1),\n"
     "               the people they completed one with (2)...\n"
     "Results of authors nearer to you in that graph rank a little higher (pull show\n"
     "AUTHOR prints the paths).\n",
     .flags = "kind=offer|need|profile|attestation tag=TAG author=ID limit=N count trusted",
     .operands = "WORDS"},
    {"show", cmd_show, "show one record in full, or a person",
     "usage: pull show ID\n"
     "       pull show AUTHOR\n\n"
     "Shows the record whose id starts with ID (6+ characters), with how many dyads its\n"
     "author completed. An id of an older version (before a renew or an edit) shows the\n"
     "live version, saying it was superseded. If no record matches, shows the person\n"
     "AUTHOR names - a key prefix, one of your petnames, or the name they chose if only\n"
     "one person chose it: their profile, live offers and needs, the people they\n"
     "completed dyads with, and the trust path from you (you \u2192 Ada \u2192 Lin)\n"
     "(records win when a prefix could name both; give more characters).\n",
     .operands = "ID"},
    {"watch", cmd_watch, "stream matching records as they arrive",
     "usage: pull watch [WORDS...] [--kind K] [--tag T]... [--mine]\n\n"
     "Prints new records that match, as they arrive, until interrupted (Ctrl-C).\n"
     "  --mine   only what concerns you: needs that match your offers (and offers\n"
     "           matching your needs), each once, and every step and message of\n"
     "           your dyads (with words, kind or tags: the matches among those too)\n",
     .flags = "kind=offer|need tag=TAG mine", .operands = "WORDS"},
    {"dyad", cmd_dyad, "propose, accept and complete exchanges",
     "usage: pull dyad propose RECORD_ID [--message T]\n"
     "       pull dyad accept|decline|done|ack|cancel DYAD_ID [--message T]\n"
     "       pull dyad message DYAD_ID --message T\n"
     "       pull dyad list\n"
     "       pull dyad show DYAD_ID\n\n"
     "A dyad is an exchange between two people about one offer or need: one proposes,\n"
     "the other accepts or declines, either marks it done, both acknowledge. Cancel\n"
     "ends an open dyad: the proposer's while it is proposed, either side's once\n"
     "accepted (until that side has acknowledged). message adds a line to the\n"
     "conversation without moving the dyad (up to 16 per side). show prints the\n"
     "conversation, oldest first, and what happens next; list shows each dyad's\n"
     "record, the other person, your role, the state and the next action.\n"
     "RECORD_ID may be an older version's id (the live version is used), or the name\n"
     "of a person with one live offer or need; DYAD_ID may be the other person's\n"
     "petname or name when you have one open dyad with them.\n",
     .verbs = dyad_verbs},
    {"profile", cmd_profile, "say who you are; read who others say they are",
     "usage: pull profile set [--name N] [--about T] [--tag T]... [--location GEOHASH]\n"
     "       pull profile show [AUTHOR]\n\n"
     "set publishes your profile (a signed record that spreads like offers): a name of\n"
     "up to 64 bytes, an about of up to 1000, tags and a place. Given options replace\n"
     "those fields; the rest stay. pulld renews it before it expires. show prints your\n"
     "profile, or the one of AUTHOR (a key prefix, a petname or a name). Names show\n"
     "wherever the person does, as Name (k3vq7a2b).\n",
     .verbs = profile_verbs},
    {"name", cmd_name, "give someone a private name (a petname)",
     "usage: pull name AUTHOR ALIAS\n"
     "       pull name --remove AUTHOR\n\n"
     "Gives the person AUTHOR (a key prefix, a petname or a name) the name ALIAS, for\n"
     "you alone: it is never published, it wins over the name they chose wherever\n"
     "they are shown, and every command that asks for a person (or an id) takes it.\n"
     "Two people can't have the same petname. A name someone chose that reads like\n"
     "one of your petnames, or like another's, is always shown with their key.\n",
     .flags = "remove", .operands = "AUTHOR ALIAS"},
    {"names", cmd_names, "list your petnames",
     "usage: pull names\n\nLists the petnames you gave, with each person's key and the "
     "name they chose.\n",
     .flags = ""},
    {"export", cmd_export, "write signed records to a bundle file",
     "usage: pull export FILE [--all]\n\n"
     "Writes your own records (--all: every live record this node holds) to FILE as a\n"
     "bundle of signed records; FILE - writes to standard output.\n",
     .flags = "all", .operands = "FILE"},
    {"import", cmd_import, "read signed records from a bundle file",
     "usage: pull import FILE\n\n"
     "Reads a bundle written by `pull export` (FILE - reads standard input); every\n"
     "record is verified like one received from a peer.\n",
     .operands = "FILE"},
    {"invite", cmd_invite, "a one-line code for another node to join this node's network",
     "usage: pull invite [--uses N] [--expires SPAN]\n\n"
     "Prints one line, a code to give to a person whose node should join this node's\n"
     "network (they run `pull join CODE`). The code holds this node's id and the\n"
     "addresses it listens on, a secret this node checks when the other node joins, and\n"
     "- on a private network - the network's key: give it only to whom you invite, by a\n"
     "channel you trust. This node accepts it for N joins (default 1) until it expires\n"
     "(default 7d), and counts them.\n\n"
     "  --uses N        how many nodes may join with it (1..1000, default 1)\n"
     "  --expires SPAN  how long it is good for: 30min, 12h, 7d (at most 90d)\n"
     "--json prints {\"code\", \"uses\", \"expires\", \"network\", \"private\", \"addresses\"}.\n",
     .flags = "uses=N expires=SPAN"},
    {"join", cmd_join, "join another node's network with its invite code",
     "usage: pull join CODE [--no-restart]\n\n"
     "Redeems a code printed by `pull invite` on another node: pulld dials the inviter\n"
     "(with the network key the code holds) and presents the code's secret; once the\n"
     "inviter accepts it, the network key and the inviter (as a bootstrap peer) are\n"
     "written to DATA_DIR/config. On the same network, pulld connects at once; on\n"
     "another one (a node of the public network joining a private one) pulld starts\n"
     "again on the new key (same process, same arguments: it cannot switch networks\n"
     "while it runs), and join waits until it is back. A code with a typo is refused\n"
     "before anything is dialed (exit 2); one used up, expired or unknown to the\n"
     "inviter is refused by it (exit 1). pulld must be running. --json prints {\"ok\",\n"
     "\"inviter\", \"address\", \"network\", \"restart\", \"config\"}.\n\n"
     "  --no-restart  only write the config: restart pulld yourself to use a new key\n",
     .flags = "no-restart", .operands = "CODE"},
    {"help", cmd_help, "show help for a command", "usage: pull help [COMMAND]\n",
     .operands = "COMMAND"},
    {"completion", cmd_completion, "print the shell completion script",
     "usage: pull completion bash|zsh|fish\n\n"
     "Prints the completion script for the shell, made from this table (the packages\n"
     "install them). To try one: source <(pull completion bash)\n",
     .operands = "bash|zsh|fish", .hidden = true},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct cli_command *
cli_commands(size_t *n)
{
    *n = NCOMMANDS;
    return commands;
}

const struct cli_command *
cli_command_find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

void
cli_print_usage(const struct cli_command *cmd)
{
    fputs(cmd->usage, stdout);
    printf("\nglobal options: --data-dir DIR (which node), --json (machine-readable output)\n");
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: pull [--data-dir DIR] [--json] COMMAND [ARGS]\n\n"
               "Talks to the local pulld: publish offers and needs, search everything the\n"
               "network has published, and carry out exchanges.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (!commands[i].hidden)
            fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(f, "\noptions:\n"
               "  --data-dir DIR  the node's directory (default: $PULL_HOME, else\n"
               "                  $XDG_DATA_HOME/pull, else ~/.local/share/pull)\n"
               "  --json          print JSON on stdout (streams: one object per line)\n"
               "  --version       print the version\n"
               "\n`pull COMMAND --help` tells more. Exit codes: 0 ok, 1 failed, 2 bad usage,\n"
               "3 pulld not running.\n");
}

int
cmd_help(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS};
    const struct cli_command *c;

    while (cli_getopt(argc, argv, opts) != -1)
        ;
    if (optind >= argc) {
        usage(stdout);
        return EXIT_OK;
    }
    if ((c = cli_command_find(argv[optind])) == NULL) {
        cli.current = NULL;
        return cli_usage("no command '%s'", argv[optind]);
    }
    cli_print_usage(c);
    return EXIT_OK;
}

static bool
want_color(int fd)
{
    const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");

    if (nc != NULL && nc[0] != '\0')
        return false;
    if (term != NULL && strcmp(term, "dumb") == 0)
        return false;
    return isatty(fd) == 1;
}

static int
unknown_command(const char *name)
{
    const char *names[NCOMMANDS];
    const char *close;
    size_t n = 0;

    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (!commands[i].hidden)
            names[n++] = commands[i].name;
    }
    if ((close = fmt_closest(name, names, n)) != NULL)
        cli_error("unknown command '%s'; did you mean '%s'? (see: pull --help)", name, close);
    else
        cli_error("unknown command '%s' (see: pull --help)", name);
    return EXIT_USAGE;
}

int
main(int argc, char **argv)
{
    const struct cli_command *c;
    int i;

    cli.color = want_color(STDOUT_FILENO);
    cli.color_err = want_color(STDERR_FILENO);
    if (isatty(STDOUT_FILENO) == 1) {
        struct winsize ws;
        cli.width = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
    }
    for (i = 1; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            cli.json = true;
        } else if (strcmp(a, "--data-dir") == 0) {
            if (i + 1 >= argc)
                return cli_usage("option '--data-dir' needs a value");
            cli.data_dir = argv[++i];
        } else if (strncmp(a, "--data-dir=", 11) == 0) {
            cli.data_dir = a + 11;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
            printf("pull %s\n", PULL_VERSION);
            return EXIT_OK;
        } else if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else {
            return cli_usage("unknown option '%s'", a);
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((c = cli_command_find(argv[i])) == NULL)
        return unknown_command(argv[i]);
    cli.current = c;
    cli_getopt_reset();
    {
        int rc = c->fn(argc - i, argv + i);
        if (fflush(stdout) != 0 && rc == EXIT_OK)
            return cli_error("write error on standard output");
        return rc;
    }
}
