/* pull import FILE: read a bundle (lib/bundle.h) and hand its envelopes to pulld, which
 * verifies each like a record from a peer. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/bundle.h"
#include "lib/err.h"
#include "lib/mp.h"

static int
bundle_failed(const char *path, int rc, uint64_t count)
{
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
 * pulld's per-loop-turn batching (NODE_BATCH_MAX) commits several requests at once, and
 * the socket keeps it busy while a commit syncs (proto/ctl.h allows this: replies carry
 * their seq). */
#define IMPORT_IN_FLIGHT 8

/* Waits for the reply to one import request in flight and adds up its counts. */
static int
recv_counts(struct client *c, uint64_t *imported, uint64_t *rejected)
{
    struct ctl_reply rep;
    struct pull_rd res;
    bool stopped;
    int rc;

    if ((rc = cli_recv_more(c, &rep, &stopped)) != 0)
        return rc;
    if (stopped)
        return cli_error("control socket: %s", strerror(EINTR));
    rd_init(&res, rep.result, rep.result_len);
    *imported += mv_uint(&res, "imported", 0);
    *rejected += mv_uint(&res, "rejected", 0);
    return 0;
}

/* Sends one batch (packed bins in batch, n of them) without waiting for its reply; when
 * IMPORT_IN_FLIGHT requests are already waiting, first collects the oldest reply. */
static int
send_batch(struct client *c, const struct pull_wb *batch, uint32_t n, unsigned *in_flight,
           uint64_t *imported, uint64_t *rejected)
{
    msgpack_packer *pk;
    struct mp_open m, list;
    int rc;

    /* Connected with the first batch, not before reading it: pulld closes a client that
     * sends no request within ctl_first_request_ms, and standard input may be slow. */
    if (c->fd < 0 && (rc = cli_connect(c)) != 0)
        return rc;
    if (*in_flight >= IMPORT_IN_FLIGHT) {
        if ((rc = recv_counts(c, imported, rejected)) != 0)
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
    uint64_t imported = 0, rejected = 0;
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
    wb_init(&batch, 0);
    mp_packer_init(&bpk, &batch);
    memset(&c, 0, sizeof(c));
    c.fd = -1;
    bundle_reader_init_file(&br, f);
    for (;;) {
        const uint8_t *env;
        size_t len;

        r = bundle_next(&br, &env, &len);
        if (r < 0) {
            rc = bundle_failed(name, r, br.count);
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
            if ((rc = send_batch(&c, &batch, n, &in_flight, &imported, &rejected)) != 0)
                goto out;
            wb_reset(&batch);
            n = 0;
        }
        if (r == 0)
            break;
    }
    for (; in_flight > 0; in_flight--) {
        if ((rc = recv_counts(&c, &imported, &rejected)) != 0)
            goto out;
    }
    if (cli.json)
        printf("{\"imported\":%llu,\"rejected\":%llu}\n", (unsigned long long)imported,
               (unsigned long long)rejected);
    else if (rejected == 0)
        printf("imported %llu record%s\n", (unsigned long long)imported, imported == 1 ? "" : "s");
    else
        printf("imported %llu record%s, rejected %llu (invalid, expired, or already "
               "stored)\n",
               (unsigned long long)imported, imported == 1 ? "" : "s",
               (unsigned long long)rejected);
    rc = EXIT_OK;
out:
    if (f != NULL && f != stdin)
        fclose(f);
    wb_release(&batch);
    client_close(&c);
    return rc;
}
