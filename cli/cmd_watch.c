/* pull watch [WORDS...] [--kind K] [--tag T]... [--mine]: stream records as they arrive. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/json.h"
#include "lib/mp.h"
#include "lib/record.h"

struct watch_args {
    char **words;
    int nwords;
    const char *kind;
    const char *tags[RECORD_TAGS_MAX];
    unsigned ntags;
    bool mine;
};

enum { OPT_KIND = CLI_OPT_USER, OPT_TAG, OPT_MINE };

static void
pack(msgpack_packer *pk, const struct watch_args *a)
{
    struct mp_open m, list;

    mp_open_map(&m, pk);
    if (a->nwords > 0) {
        mp_key(&m, "words");
        mp_open_array(&list, m.pk);
        for (int i = 0; i < a->nwords; i++)
            mp_pack_cstr(mp_item(&list), a->words[i]);
        mp_close(&list);
    }
    if (a->kind != NULL)
        mp_kv_str(&m, "kind", a->kind);
    if (a->ntags > 0) {
        mp_key(&m, "tags");
        mp_open_array(&list, m.pk);
        for (unsigned i = 0; i < a->ntags; i++)
            mp_pack_cstr(mp_item(&list), a->tags[i]);
        mp_close(&list);
    }
    if (a->mine)
        mp_kv_bool(&m, "mine", true);
    mp_close(&m);
}

/* Appends "key":value for each entry of the map at m, except keys in skip[] (and, if
 * also_skip is a map, keys present in it). */
static int
json_entries(struct pull_wb *w, const struct pull_rd *m, const char *const *skip, size_t nskip,
             const struct pull_rd *also_skip, bool *first)
{
    struct pull_rd r = *m;
    uint32_t n;
    int rc;

    if ((rc = mp_read_map(&r, &n)) != 0)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kn;
        bool skipped = false;
        char key[CTL_KEY_MAX + 1];

        if ((rc = mp_read_str(&r, CTL_KEY_MAX, &k, &kn)) != 0)
            return rc;
        memcpy(key, k, kn);
        key[kn] = '\0';
        for (size_t s = 0; s < nskip && !skipped; s++)
            skipped = strcmp(skip[s], key) == 0;
        if (!skipped && also_skip != NULL)
            skipped = mv_has(also_skip, key);
        if (skipped) {
            if ((rc = ctl_value_check(&r, 2)) != 0)
                return rc;
            continue;
        }
        if (!*first)
            wb_u8(w, ',');
        *first = false;
        if ((rc = json_str(w, k, kn)) != 0)
            return rc;
        wb_u8(w, ':');
        if ((rc = json_from_mp(&r, w)) != 0)
            return rc;
    }
    return wb_error(w);
}

/* One event as one JSON line: the record's fields with "event" first and the event's other
 * fields after (CONTRACT.md: watch prints one record per line). Events without a record
 * print as they are. */
static int
print_json(const struct ctl_reply *rep)
{
    static const char *const skip_top[] = {"event", "record"};
    static const char *const skip_rec[] = {"event"};
    struct pull_rd res, rec, ev;
    struct pull_wb w;
    bool first = true;
    int rc;

    rd_init(&res, rep->result, rep->result_len);
    if (!mv_value(&res, "record", &rec) || mp_peek(&rec) != MP_MAP)
        return cli_print_json(rep->result, rep->result_len);
    wb_init(&w, 0);
    wb_u8(&w, '{');
    if (mv_value(&res, "event", &ev)) {
        json_str(&w, "event", 5);
        wb_u8(&w, ':');
        json_from_mp(&ev, &w);
        first = false;
    }
    rc = json_entries(&w, &rec, skip_rec, 1, NULL, &first);
    if (rc == 0)
        rc = json_entries(&w, &res, skip_top, 2, &rec, &first);
    wb_put(&w, "}\n", 2);
    if (rc == 0 && (rc = wb_error(&w)) == 0)
        rc = cli_write(&w);
    else
        rc = cli_error("cannot print the event as JSON");
    wb_release(&w);
    return rc;
}

/* One dyad event: what happened, to which dyad, with whom, the latest message and what
 * comes next:
 * "12:04:31  dyad   1a2b3c4d  ack by Ada        done       with Ada (k3vq7a2b)  on "Bike
 * repair"  "Yes, 6pm"  next: acknowledge: pull dyad ack 1a2b3c4d" (the change is
 * "propose by you", "note by Ada"...: each step and message is its own event). */
#define NOTE_COLS 72
#define KIND_COLS 11 /* "attestation", the longest kind */

/* The local day the watch began: events of another day show their date. */
static int watch_year = -1, watch_yday = -1;

/* clock_now writes the local time of an event: "14:03:12", or "05-02 00:10:03" once the
 * day is not the one the watch began (the header names the zone). */
static void
clock_now(char *out, size_t n)
{
    time_t now = time(NULL);
    struct tm tm;

    if (localtime_r(&now, &tm) == NULL) {
        out[0] = '\0';
        return;
    }
    if (watch_year < 0) {
        watch_year = tm.tm_year;
        watch_yday = tm.tm_yday;
    }
    if (strftime(out, n,
                 tm.tm_year == watch_year && tm.tm_yday == watch_yday ? "%H:%M:%S"
                                                                      : "%m-%d %H:%M:%S",
                 &tm) == 0)
        out[0] = '\0';
}

/* The text of the latest message of a dyad map that has one. */
static void
latest_text(const struct pull_rd *d, char *out, size_t n)
{
    struct pull_rd v;
    uint32_t count = 0;

    out[0] = '\0';
    if (!mv_value(d, "messages", &v) || mp_read_array(&v, &count) != 0)
        return;
    for (uint32_t i = 0; i < count; i++) {
        struct pull_rd m = v;
        struct sv t;
        if (ctl_value_check(&v, 2) != 0)
            return;
        t = mv_str(&m, "text");
        if (t.n == 0)
            t = mv_str(&m, "note");
        if (t.n > 0)
            fmt_clean(out, n, t.p, t.n, false);
    }
}

static void
print_dyad(const char *clock, const struct pull_rd *d)
{
    char id[16], state[64], who[256], label[256], change[64], what[320], title[512], note[1024],
        cut[1024], next[256], kind[32];
    const char *by;

    rec_short(d, "id", id);
    mv_cstr(d, "state", state, sizeof(state));
    mv_cstr(d, "counterpart_full", who, sizeof(who));
    if (who[0] == '\0')
        rec_short(d, "counterpart", who);
    mv_cstr(d, "counterpart_label", label, sizeof(label));
    if (label[0] == '\0')
        snprintf(label, sizeof(label), "%s", who);
    mv_cstr(d, "change", change, sizeof(change));
    /* "ack by peer" -> "ack by Ada", "note by me" -> "message by you" */
    by = strstr(change, " by ");
    if (by != NULL) {
        snprintf(kind, sizeof(kind), "%.*s", (int)(by - change), change);
        snprintf(what, sizeof(what), "%s by %s", strcmp(kind, "note") == 0 ? "message" : kind,
                 strcmp(by + 4, "me") == 0 ? "you" : label);
    } else {
        snprintf(what, sizeof(what), "%s", change[0] != '\0' ? change : state);
    }
    mv_cstr(d, "record_title", title, sizeof(title));
    if (title[0] == '\0')
        rec_short(d, "record", title);
    latest_text(d, note, sizeof(note));
    fmt_fit(cut, sizeof(cut), note, NOTE_COLS);
    mv_cstr(d, "next", next, sizeof(next));
    if (cli.color)
        printf("\033[2m%s\033[0m  %-*s \033[33m%s\033[0m  %-18s %-9s  with %s  on \"%s\"", clock,
               KIND_COLS, "dyad", id, what, state, who, title);
    else
        printf("%s  %-*s %s  %-18s %-9s  with %s  on \"%s\"", clock, KIND_COLS, "dyad", id, what,
               state, who, title);
    if (cut[0] != '\0')
        printf("  \"%s\"", cut);
    if (next[0] != '\0')
        printf("  next: %s", next);
    printf("\n");
}

static void
print_human(const struct ctl_reply *rep)
{
    struct pull_rd res, rec;
    char ev[32], clock[32], kind[32], id[16], title[512], tags[512], author[256], mine[512];

    rd_init(&res, rep->result, rep->result_len);
    mv_cstr(&res, "event", ev, sizeof(ev));
    if (strcmp(ev, "end") == 0)
        return; /* pulld stops: said once on stderr, not as an event */
    clock_now(clock, sizeof(clock));
    if (mv_value(&res, "record", &rec) && mp_peek(&rec) == MP_MAP) {
        mv_cstr(&rec, "kind", kind, sizeof(kind));
        rec_short(&rec, "id", id);
        mv_cstr(&rec, "title", title, sizeof(title));
        rec_tags(&rec, tags, sizeof(tags));
        person_of(&rec, "author", "author", author, sizeof(author));
        if (cli.color)
            printf("\033[2m%s\033[0m  %-*s \033[33m%s\033[0m  %s", clock, KIND_COLS, kind, id,
                   title);
        else
            printf("%s  %-*s %s  %s", clock, KIND_COLS, kind, id, title);
        if (tags[0] != '\0')
            printf("  [%s]", tags);
        printf("  by %s", author);
        if (strcmp(ev, "match") == 0) {
            char mid[16];
            mv_cstr(&res, "mine_title", mine, sizeof(mine));
            rec_short(&res, "mine", mid);
            if (mine[0] != '\0')
                printf("  (matches your %s \"%s\")", mid, mine);
            else
                printf("  (matches your %s)", mid);
        }
        printf("\n");
    } else if (strcmp(ev, "dyad") == 0 && mv_value(&res, "dyad", &rec) && mp_peek(&rec) == MP_MAP) {
        print_dyad(clock, &rec);
    } else if (strcmp(ev, "lagged") == 0) {
        uint64_t n = mv_uint(&res, "dropped", 0);
        printf("%s  (fell behind: %llu event%s not shown; pull search finds what is new)\n", clock,
               (unsigned long long)n, n == 1 ? "" : "s");
    } else {
        printf("%s  %s\n", clock, ev);
    }
}

static void
on_signal(int sig)
{
    (void)sig;
    _exit(EXIT_OK); /* every event line was flushed when printed */
}

int
cmd_watch(int argc, char **argv)
{
    static const struct option opts[] = {{"kind", required_argument, NULL, OPT_KIND},
                                         {"tag", required_argument, NULL, OPT_TAG},
                                         {"mine", no_argument, NULL, OPT_MINE},
                                         CLI_COMMON_OPTIONS};
    struct watch_args a;
    struct client c;
    struct ctl_reply rep;
    struct sigaction sa;
    bool stopped;
    int opt, rc;

    memset(&a, 0, sizeof(a));
    while ((opt = cli_getopt(argc, argv, opts)) != -1) {
        switch (opt) {
        case OPT_KIND:
            if (strcmp(optarg, "offer") != 0 && strcmp(optarg, "need") != 0 &&
                strcmp(optarg, "profile") != 0 && strcmp(optarg, "attestation") != 0)
                return cli_usage("--kind is offer, need, profile or attestation");
            a.kind = optarg;
            break;
        case OPT_TAG:
            if (a.ntags >= RECORD_TAGS_MAX)
                return cli_usage("at most %d tags", RECORD_TAGS_MAX);
            a.tags[a.ntags++] = optarg[0] == '#' ? optarg + 1 : optarg;
            break;
        case OPT_MINE:
            a.mine = true;
            break;
        }
    }
    a.words = argv + optind;
    a.nwords = argc - optind;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if ((rc = cli_connect(&c)) != 0)
        goto out;
    c.timeout_ms = 0; /* a watch waits as long as it takes */
    pack(client_begin(&c, "watch"), &a);
    if ((rc = cli_call(&c, &rep)) != 0)
        goto out;
    for (;;) {
        struct pull_rd res;
        char ev[32];

        rd_init(&res, rep.result, rep.result_len);
        mv_cstr(&res, "event", ev, sizeof(ev));
        if (strcmp(ev, "ready") == 0) {
            char zone[64];
            time_t now = time(NULL);
            struct tm tm;
            if (localtime_r(&now, &tm) == NULL || strftime(zone, sizeof(zone), "%Z", &tm) == 0)
                snprintf(zone, sizeof(zone), "local time");
            fprintf(stderr, "watching (times in %s; Ctrl-C to stop)\n", zone);
        } else if (rep.result_len > 1 || rep.result[0] != 0xc0) {
            if (cli.json) {
                if ((rc = print_json(&rep)) != 0)
                    goto out;
            } else {
                print_human(&rep);
            }
            fflush(stdout);
        }
        if (!rep.more) {
            rc = cli_error(strcmp(ev, "end") == 0 ? "pulld stopped: the watch ended"
                                                  : "pulld ended the watch");
            goto out;
        }
        if ((rc = cli_recv_more(&c, &rep, &stopped)) != 0 || stopped)
            goto out;
    }
out:
    client_close(&c);
    return rc;
}
