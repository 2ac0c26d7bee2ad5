/* pull import FILE: read a bundle (lib/bundle.h) and hand its envelopes to pulld, which
 * verifies each like a record from a peer. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "lib/bundle.h"
#include "lib/err.h"
#include "lib/mp.h"

static int
bundle_failed(const char *path, int rc, uint64_t count, bool started)
{
    if (!started && (rc == PULL_ERR_MALFORMED || rc == PULL_ERR_TRUNCATED))
        return cli_error("%s is not a pull bundle (write one with: pull export FILE)", path);
    switch (rc) {
    case PULL_ERR_MALFORMED:
        if (count == 0)
            return cli_error("%s is not a pull bundle", path);
        return cli_error("%s: malformed after %llu records", path, (unsigned long long)count);
    case PULL_ERR_VERSION:
        return cli_error("%s: bundle of an unsupported version", path);
    case PULL_ERR_TOO_BIG:
        return cli_error("%s: record %llu is larger than a record can be", path,
                         (unsigned long long)count + 1);
    case PULL_ERR_TRUNCATED:
        return cli_error("%s: truncated after %llu records", path, (unsigned long long)count);
    default:
        return cli_error("%s: %s", path, strerror(errno));
    }
}

/* Import requests kept in flight. Each request's records are verified by pulld as they
 * arrive, but its reply comes only after their commit; waiting for every reply would make
 * each request of CTL_CHUNK_ENVELOPES one durable LMDB commit. With several in flight
 * pulld commits many requests at once, and the socket keeps it busy while a commit syncs
 * (proto/ctl.h allows this: replies carry their seq). 64 x 256 is twice NODE_BATCH_MAX
 * (8,192): while one batch commits, the next fills. pulld reads at most ctl_max_inflight
 * (64) requests of one client ahead and none while its verifiers are full; beyond that the
 * socket makes this side wait. (With batches of 2,048 and 16 in flight, 100k records
 * imported at 0.64-0.72 x one core's verify rate; with 8,192 and 64, 0.88-0.90 x.) */
#define IMPORT_IN_FLIGHT 64

#define REASONS_MAX 8

/* What pulld did with the records: new ones, those it had, and why it refused others. */
struct counts {
    uint64_t imported, rejected, already, expired, invalid;
    struct {
        char reason[128];
        uint64_t count;
    } why[REASONS_MAX];
    unsigned nwhy;
};

static void
add_reason(struct counts *k, const struct sv *s, uint64_t n)
{
    char r[128];
    unsigned i;

    fmt_clean(r, sizeof(r), s->p, s->n, false);
    for (i = 0; i < k->nwhy && strcmp(k->why[i].reason, r) != 0; i++)
        ;
    if (i == k->nwhy && k->nwhy < REASONS_MAX)
        memcpy(k->why[k->nwhy++].reason, r, sizeof(r));
    else if (i == k->nwhy)
        i = REASONS_MAX - 1;
    k->why[i].count += n;
}

/* Waits for the reply to one import request in flight and adds up its counts. */
static int
recv_counts(struct client *c, struct counts *k)
{
    struct ctl_reply rep;
    struct pull_rd res, list;
    uint32_t n;
    bool stopped;
    int rc;

    if ((rc = cli_recv_more(c, &rep, &stopped)) != 0)
        return rc;
    if (stopped)
        return cli_error("control socket: %s", strerror(EINTR));
    rd_init(&res, rep.result, rep.result_len);
    k->imported += mv_uint(&res, "imported", 0);
    k->rejected += mv_uint(&res, "rejected", 0);
    k->already += mv_uint(&res, "already", 0);
    k->expired += mv_uint(&res, "expired", 0);
    k->invalid += mv_uint(&res, "invalid", 0);
    if (mv_value(&res, "reasons", &list) && mp_read_array(&list, &n) == 0) {
        for (uint32_t i = 0; i < n; i++) {
            struct pull_rd e = list;
            struct sv s;
            if (ctl_value_check(&list, 2) != 0)
                break;
            s = mv_str(&e, "reason");
            add_reason(k, &s, mv_uint(&e, "count", 0));
        }
    }
    return 0;
}

/* Sends one batch (packed bins in batch, n of them) without waiting for its reply; when
 * IMPORT_IN_FLIGHT requests are already waiting, first collects the oldest reply. */
static int
send_batch(struct client *c, const struct pull_wb *batch, uint32_t n, unsigned *in_flight,
           struct counts *k)
{
    msgpack_packer *pk;
    struct mp_open m, list;
    int rc;

    /* Connected with the first batch, not before reading it: pulld closes a client that
     * sends no request within ctl_first_request_ms, and standard input may be slow. */
    if (c->fd < 0 && (rc = cli_connect(c)) != 0)
        return rc;
    if (*in_flight >= IMPORT_IN_FLIGHT) {
        if ((rc = recv_counts(c, k)) != 0)
            return rc;
        (*in_flight)--;
    }
    pk = client_begin(c, "import");
    if (c->seq_first == 0)
        c->seq_first = c->seq; /* replies to any import request of this run are ours */
    mp_open_map(&m, pk);
    mp_key(&m, "envelopes");
    mp_open_array(&list, m.pk);
    wb_put(&c->out, batch->p, batch->len);
    mp_items(&list, n);
    mp_close(&list);
    mp_close(&m);
    if ((rc = client_send(c)) != 0)
        return cli_transport_failed(c, rc);
    (*in_flight)++;
    return 0;
}

/* summary prints "13 new, 0 already present, 2 invalid (bad signature: 2)". */
static void
summary(const struct counts *k)
{
    printf("%llu new, %llu already present", (unsigned long long)k->imported,
           (unsigned long long)k->already);
    if (k->expired > 0)
        printf(", %llu expired", (unsigned long long)k->expired);
    printf(", %llu invalid", (unsigned long long)k->invalid);
    for (unsigned i = 0; i < k->nwhy; i++)
        printf("%s%s: %llu", i == 0 ? " (" : ", ", k->why[i].reason,
               (unsigned long long)k->why[i].count);
    printf("%s\n", k->nwhy > 0 ? ")" : "");
}

int
cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {CLI_COMMON_OPTIONS};
    static struct bundle_reader br;
    struct client c;
    struct pull_wb batch;
    msgpack_packer bpk;
    const char *path, *name;
    FILE *f = NULL;
    uint32_t n = 0;
    unsigned in_flight = 0;
    struct counts k;
    struct cli_progress pr;
    struct stat st;
    int rc, r;

    while (cli_getopt(argc, argv, opts) != -1)
        ;
    if (argc - optind != 1)
        return cli_usage("import needs one FILE (- for standard input)");
    path = argv[optind];
    name = strcmp(path, "-") == 0 ? "standard input" : path;
    if (strcmp(path, "-") == 0) {
        f = stdin;
    } else if ((f = fopen(path, "rb")) == NULL) {
        return cli_error("cannot open %s: %s", path, strerror(errno));
    }
    memset(&k, 0, sizeof(k));
    wb_init(&batch, 0);
    mp_packer_init(&bpk, &batch);
    memset(&c, 0, sizeof(c));
    c.fd = -1;
    bundle_reader_init_file(&br, f);
    cli_progress_init(&pr, "importing",
                      fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0);
    for (;;) {
        const uint8_t *env;
        size_t len;

        r = bundle_next(&br, &env, &len);
        if (r < 0) {
            cli_progress_end(&pr);
            rc = bundle_failed(name, r, br.count, br.started != 0);
            goto out;
        }
        if (r == 1) {
            mp_pack_bin(&bpk, env, len);
            n++;
        }
        if ((r == 0 && n > 0) || n == CTL_CHUNK_ENVELOPES) {
            if (wb_error(&batch) != 0) {
                rc = cli_error("out of memory");
                goto out;
            }
            if ((rc = send_batch(&c, &batch, n, &in_flight, &k)) != 0)
                goto out;
            wb_reset(&batch);
            n = 0;
            {
                long pos = ftell(f);
                cli_progress_update(&pr, br.count, pos > 0 ? (uint64_t)pos : 0);
            }
        }
        if (r == 0)
            break;
    }
    for (; in_flight > 0; in_flight--) {
        if ((rc = recv_counts(&c, &k)) != 0)
            goto out;
    }
    cli_progress_end(&pr);
    if (cli.json)
        printf("{\"imported\":%llu,\"rejected\":%llu,\"already\":%llu,\"expired\":%llu,"
               "\"invalid\":%llu}\n",
               (unsigned long long)k.imported, (unsigned long long)k.rejected,
               (unsigned long long)k.already, (unsigned long long)k.expired,
               (unsigned long long)k.invalid);
    else
        summary(&k);
    rc = EXIT_OK;
out:
    if (f != NULL && f != stdin)
        fclose(f);
    wb_release(&batch);
    client_close(&c);
    return rc;
}
