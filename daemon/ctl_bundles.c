/*
 * ctl_bundles: the control room of bundles of signed records - "export" (a stream of
 * envelopes) and "import" (proto/ctl.h).
 *
 * An export is a stream call paced by its client: the next chunk (at most
 * CTL_CHUNK_ENVELOPES envelopes and about CTL_EXPORT_CHUNK_BYTES) is read from the store
 * when the client's unsent bytes fall below one chunk, and the final reply {"records": N}
 * ends it. "all" walks the store in time order, resuming after the last (created, id)
 * sent; my own records are collected at the start. An import hands every envelope to the
 * node's verifiers (node_submit_async) and is answered when the last one's callback ran
 * (after its commit, or its refusal).
 */
#include <stdlib.h>
#include <string.h>

#include "daemon/ctl_int.h"
#include "lib/err.h"
#include "lib/store.h"

#define CTL_EXPORT_CHUNK_BYTES (1u << 20)

/* An export stream in progress (its call's arg). */
struct ctl_export {
    bool all;
    uint64_t sent;
    /* all: resume after (created, id) in time order */
    uint64_t cur_created;
    uint8_t last_id[RECORD_ID_BYTES];
    bool started;
    /* mine: every envelope collected at the start */
    struct pull_wb mine; /* u32 length || envelope, ... */
    size_t mine_off;
};

/* One chunk being filled. */
struct chunk {
    struct ctl_export *x;
    uint64_t now;
    struct mp_open *list; /* the reply's envelopes array */
    struct pull_wb *w;    /* the reply's writer */
    size_t start;         /* w->len when the chunk began */
};

static int
export_one(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct chunk *ch = ctx;
    struct ctl_export *x = ch->x;
    uint64_t kind, created, expires;

    if (envelope_peek(env, len, &kind, &created, &expires) != 0)
        return 0;
    if (x->started && created == x->cur_created && memcmp(id, x->last_id, RECORD_ID_BYTES) <= 0)
        return 0; /* sent by an earlier chunk */
    if (ch->list->n >= CTL_CHUNK_ENVELOPES || ch->w->len - ch->start + len > CTL_EXPORT_CHUNK_BYTES)
        return 1;
    x->started = true;
    x->cur_created = created;
    memcpy(x->last_id, id, RECORD_ID_BYTES);
    if (kind == RECORD_WITHDRAWN || expires <= ch->now)
        return 0;
    mp_pack_bin(mp_item(ch->list), env, len);
    return 0;
}

static int
collect_mine(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct chunk *ch = ctx;
    uint64_t kind, created, expires;

    (void)id;
    if (envelope_peek(env, len, &kind, &created, &expires) != 0 || expires <= ch->now ||
        kind == RECORD_WITHDRAWN)
        return 0;
    wb_u32be(&ch->x->mine, (uint32_t)len);
    wb_put(&ch->x->mine, env, len);
    return 0;
}

static void
export_free(struct ctl_export *x)
{
    if (x == NULL)
        return;
    wb_release(&x->mine);
    free(x);
}

/* Ends the export: its state goes, the call is done (with rc if it failed). */
static void
export_end(struct ctl_call *call, int rc)
{
    export_free(call->arg);
    call->arg = NULL;
    ctl_done(call, rc);
}

/* Sends the next chunk of the export, or its final reply. */
static void
export_next(struct ctl_call *call)
{
    struct ctl_export *x = call->arg;
    struct node *n = call->srv->n;
    struct mp_open m, list;
    struct chunk ch;
    int rc = 0;

    mp_open_map(&m, ctl_begin(call, true));
    mp_key(&m, "envelopes");
    mp_open_array(&list, m.pk);
    memset(&ch, 0, sizeof(ch));
    ch.x = x;
    ch.now = node_now_s(n);
    ch.list = &list;
    ch.w = list.w;
    ch.start = list.w->len;
    if (x->all) {
        rc = store_iter_time(n->store, x->started ? x->cur_created : 0, export_one, &ch);
    } else {
        while (x->mine_off + 4 <= x->mine.len && list.n < CTL_CHUNK_ENVELOPES &&
               ch.w->len - ch.start < CTL_EXPORT_CHUNK_BYTES) {
            uint32_t len = be32dec(x->mine.p + x->mine_off);
            mp_pack_bin(mp_item(&list), x->mine.p + x->mine_off + 4, len);
            x->mine_off += 4 + (size_t)len;
        }
    }
    mp_close(&list);
    mp_close(&m);
    if (rc >= 0)
        rc = wb_error(ch.w);
    if (rc < 0) {
        ctl_cancel(call);
        ctl_fail(call, rc, NULL);
        export_end(call, rc);
        return;
    }
    if (list.n > 0) {
        x->sent += list.n;
        ctl_send(call); /* the client's writes ask for the next chunk (export_written) */
        return;
    }
    mp_open_map(&m, ctl_begin(call, false));
    mp_kv_uint(&m, "records", x->sent);
    mp_close(&m);
    ctl_send(call);
    export_end(call, 0);
    node_trim_soon(n); /* an export reads every record it sends */
}

static void
export_written(struct ctl_call *call, size_t queued)
{
    if (queued < CTL_EXPORT_CHUNK_BYTES)
        export_next(call);
}

static void
export_stop(struct ctl_call *call, bool server_stopping)
{
    export_end(call, server_stopping ? ctl_fail(call, PULL_ERR_CLOSED, "pulld is stopping") : 0);
}

static const struct ctl_stream_ops export_ops = {export_written, export_stop};

int
ctl_h_export(struct ctl_call *call, const struct ctl_request *req)
{
    struct node *n = call->srv->n;
    struct ctl_export *x;
    bool all = false;
    int rc;

    if (ctl_streaming(call, &export_ops))
        return ctl_fail(call, PULL_ERR_STATE, "an export is already running here");
    rc = ctl_arg_bool(req, "all", &all);
    if (rc != 0 && rc != PULL_ERR_NOT_FOUND)
        return ctl_arg_failed(call, rc, "all");
    if ((x = calloc(1, sizeof(*x))) == NULL)
        return PULL_ERR_NOMEM;
    x->all = all;
    wb_init(&x->mine, 0);
    if (!all) {
        struct chunk ch = {.x = x, .now = node_now_s(n)};
        if ((rc = store_iter_author(n->store, n->self.pk, collect_mine, &ch)) < 0 ||
            (rc = wb_error(&x->mine)) != 0) {
            export_free(x);
            return rc;
        }
    }
    ctl_stream(call, &export_ops, x, 0);
    export_next(call);
    return 0;
}

/* Why records of an import were refused, by error: "already" (stored, or a newer version
 * is), "expired", and the others as "invalid" with their reasons. */
#define IMPORT_REASONS 8

struct import_state {
    struct ctl_call *call;
    uint32_t pending;
    uint64_t imported, rejected, already, expired;
    struct {
        int err;
        uint64_t count;
    } invalid[IMPORT_REASONS]; /* the first IMPORT_REASONS kinds; more add to the last */
    unsigned ninvalid;
    bool submitting;
};

static void
import_refused(struct import_state *im, int err)
{
    unsigned i;

    im->rejected++;
    if (err == PULL_ERR_DUPLICATE || err == PULL_ERR_STALE) {
        im->already++;
        return;
    }
    if (err == PULL_ERR_EXPIRED) {
        im->expired++;
        return;
    }
    for (i = 0; i < im->ninvalid && im->invalid[i].err != err; i++)
        ;
    if (i == im->ninvalid && im->ninvalid < IMPORT_REASONS)
        im->invalid[im->ninvalid++].err = err;
    else if (i == im->ninvalid)
        i = IMPORT_REASONS - 1;
    im->invalid[i].count++;
}

static void
import_finish(struct import_state *im)
{
    struct ctl_call *call = im->call;
    struct mp_open m, list, r;

    mp_open_map(&m, ctl_begin(call, false));
    mp_kv_uint(&m, "imported", im->imported);
    mp_kv_uint(&m, "rejected", im->rejected);
    mp_kv_uint(&m, "already", im->already);
    mp_kv_uint(&m, "expired", im->expired);
    mp_kv_uint(&m, "invalid", im->rejected - im->already - im->expired);
    mp_key(&m, "reasons");
    mp_open_array(&list, m.pk);
    for (unsigned i = 0; i < im->ninvalid; i++) {
        mp_open_map(&r, mp_item(&list));
        mp_kv_str(&r, "reason",
                  im->invalid[i].err == PULL_ERR_QUOTA ? "over the per-author quota"
                                                       : pull_strerror(im->invalid[i].err));
        mp_kv_uint(&r, "count", im->invalid[i].count);
        mp_close(&r);
    }
    mp_close(&list);
    mp_close(&m);
    ctl_send(call);
    free(im);
    ctl_done(call, 0);
}

static void
on_import_commit(void *arg, int result, const uint8_t id[RECORD_ID_BYTES])
{
    struct import_state *im = arg;

    (void)id;
    if (result == 0)
        im->imported++;
    else
        import_refused(im, result);
    im->pending--;
    if (im->pending == 0 && !im->submitting)
        import_finish(im);
}

static void
on_import_verified(void *arg, int result, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env,
                   size_t len)
{
    (void)env;
    (void)len;
    on_import_commit(arg, result, id);
}

int
ctl_h_import(struct ctl_call *call, const struct ctl_request *req)
{
    struct node *n = call->srv->n;
    struct import_state *im;
    struct ctl_array it;
    const uint8_t *b;
    uint32_t len;
    int rc;

    if ((rc = ctl_arg_array(req, "envelopes", CTL_CHUNK_ENVELOPES, &it)) != 0)
        return ctl_arg_failed(call, rc, "envelopes");
    if ((im = calloc(1, sizeof(*im))) == NULL)
        return PULL_ERR_NOMEM;
    im->call = ctl_keep(call);
    im->submitting = true;
    while ((rc = ctl_array_next_bin(&it, RECORD_ENVELOPE_MAX, &b, &len)) == 1) {
        int r;
        im->pending++;
        /* Verified on the node's verifier threads; past their budget (several imports at
         * once), here on the loop: the commit callback may then run inside node_submit when
         * the batch fills up. */
        r = node_submit_async(n, b, len, NULL, NODE_ORIGIN_IMPORT, NULL, on_import_verified, im);
        if (r == PULL_ERR_AGAIN)
            r = node_submit(n, b, len, NODE_ORIGIN_IMPORT, NULL, on_import_commit, im, NULL);
        if (r != 0) {
            im->pending--;
            import_refused(im, r);
        }
    }
    if (rc < 0) {
        /* a bad element: the rest is not read */
        for (uint32_t k = it.i; k < it.n; k++)
            import_refused(im, PULL_ERR_FIELD);
    }
    im->submitting = false;
    if (im->pending == 0)
        import_finish(im);
    return 0;
}
