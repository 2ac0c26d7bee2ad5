/*
 * ctl_lookup: the control room of "candidates" (proto/ctl.h): what an ambiguous id prefix
 * could mean, like git's list of candidates for a short hash. The CLI asks for it after a
 * command failed with PULL_ERR_AMBIGUOUS, and prints the candidates under the error.
 *
 *   "candidates": {"prefix": str, "of": "records"|"mine"|"dyads"} ->
 *                 {"total": uint, "candidates": [{"id", "kind", "title", "author"}, ...]}
 *
 * "records" are the stored records (show, dyad propose), "mine" my records, live or expired
 * (renew, edit, withdraw), "dyads" my dyads (their kind is "dyad", their title the state and
 * the record's title, their author the counterpart). At most LOOKUP_SHOW candidates are
 * listed; total counts up to LOOKUP_COUNT_MAX.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ctl_int.h"
#include "daemon/dyads.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/store.h"

#define LOOKUP_SHOW 5
#define LOOKUP_COUNT_MAX 1000

struct cand {
    uint8_t id[32];
    const char *kind;
    char title[RECORD_TITLE_MAX + 32];
    uint8_t author[32];
    bool has_author;
};

struct lookup {
    struct store *store;
    struct ident_prefix prefix;
    struct cand c[LOOKUP_SHOW];
    unsigned n, total;
    uint64_t now;
    struct record rec;
};

/* add_rec notes a record (envelope p[0..len)) among the candidates. */
static void
add_rec(struct lookup *l, const uint8_t id[32], const uint8_t *p, size_t len)
{
    struct envelope e;
    struct cand *c;

    l->total++;
    if (l->n >= LOOKUP_SHOW)
        return;
    c = &l->c[l->n++];
    memset(c, 0, sizeof(*c));
    memcpy(c->id, id, 32);
    if (ctl_decode_env(p, len, &e, &l->rec) != 0) {
        c->kind = "record";
        return;
    }
    c->kind = l->rec.kind == RECORD_WITHDRAWN ? "withdrawn" : record_kind_name(l->rec.kind);
    if (l->rec.expires <= l->now && l->rec.kind != RECORD_WITHDRAWN)
        snprintf(c->title, sizeof(c->title), "%s (expired)", l->rec.title);
    else
        snprintf(c->title, sizeof(c->title), "%s", l->rec.title);
    memcpy(c->author, l->rec.author, 32);
    c->has_author = true;
}

/* ---- records ---- */

struct ids {
    uint8_t v[LOOKUP_SHOW][32];
    unsigned n, total;
};

static int
collect_id(void *ctx, const uint8_t id[RECORD_ID_BYTES])
{
    struct ids *x = ctx;

    if (x->n < LOOKUP_SHOW)
        memcpy(x->v[x->n++], id, 32);
    return ++x->total >= LOOKUP_COUNT_MAX;
}

static int
lookup_records(struct node *n, struct lookup *l)
{
    struct ids x;
    struct pull_wb w;
    int rc;

    memset(&x, 0, sizeof(x));
    if ((rc = store_prefix_each(n->store, &l->prefix, collect_id, &x)) < 0)
        return rc;
    wb_init(&w, RECORD_ENVELOPE_MAX);
    for (unsigned i = 0; i < x.n; i++) {
        wb_reset(&w);
        if (store_get(n->store, x.v[i], &w) == 0)
            add_rec(l, x.v[i], w.p, w.len);
    }
    wb_release(&w);
    l->total = x.total;
    return 0;
}

/* ---- mine: live, and expired (STORE_MINE) ---- */

static int
mine_live(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *p, size_t len)
{
    struct lookup *l = ctx;

    if (ident_prefix_match(&l->prefix, id))
        add_rec(l, id, p, len);
    return l->total >= LOOKUP_COUNT_MAX;
}

static int
mine_kept(void *ctx, const uint8_t key[32], const uint8_t *p, size_t len)
{
    struct lookup *l = ctx;
    struct envelope e;
    (void)key;

    /* what the store still holds was seen already: only the expired ones swept since */
    if (envelope_parse(p, len, &e) != 0 || !ident_prefix_match(&l->prefix, e.id) ||
        store_has(l->store, e.id) == 0 || ctl_decode_env(p, len, &e, &l->rec) != 0 ||
        l->rec.kind == RECORD_WITHDRAWN || l->rec.expires > l->now)
        return 0;
    add_rec(l, e.id, p, len);
    return l->total >= LOOKUP_COUNT_MAX;
}

/* ---- dyads: from the list the dyad service packs ---- */

static int
lookup_dyads(struct ctl_server *srv, struct lookup *l)
{
    static const uint8_t empty_args[] = {0x80};
    struct ctl_request req;
    msgpack_packer pk;
    struct pull_wb w, rw;
    struct pull_rd r;
    uint32_t count;
    char msg[CTL_MSG_MAX + 1];
    int rc;

    if (srv->svc.dyads == NULL)
        return 0;
    memset(&req, 0, sizeof(req));
    snprintf(req.cmd, sizeof(req.cmd), "dyad.list");
    req.args = empty_args;
    req.args_len = sizeof(empty_args);
    wb_init(&w, 0);
    wb_init(&rw, RECORD_ENVELOPE_MAX);
    mp_packer_init(&pk, &w);
    if ((rc = dyads_cmd_list(srv->svc.dyads, &req, &pk, msg, sizeof(msg))) != 0 ||
        (rc = wb_error(&w)) != 0)
        goto out;
    rd_init(&r, w.p, w.len);
    if ((rc = mp_read_array(&r, &count)) != 0)
        goto out;
    for (uint32_t i = 0; i < count; i++) {
        struct pull_rd d = r;
        char idt[IDENT_TEXT_LEN + 1], rect[IDENT_TEXT_LEN + 1], peer[IDENT_TEXT_LEN + 1];
        char state[32];
        uint8_t id[32], rid[32];
        struct pull_rd v;
        struct cand *c;
        const char *s;
        uint32_t sn;

        if ((rc = ctl_value_check(&r, 2)) != 0)
            goto out;
#define DYAD_STR(key, out)                                                                         \
    do {                                                                                           \
        out[0] = '\0';                                                                             \
        if (ctl_map_find(&d, key, &v) == 0 && mp_read_str(&v, sizeof(out) - 1, &s, &sn) == 0) {    \
            memcpy(out, s, sn);                                                                    \
            out[sn] = '\0';                                                                        \
        }                                                                                          \
    } while (0)
        DYAD_STR("id", idt);
        DYAD_STR("record", rect);
        DYAD_STR("counterpart", peer);
        DYAD_STR("state", state);
#undef DYAD_STR
        if (ident_from_text(idt, id) != 0 || !ident_prefix_match(&l->prefix, id))
            continue;
        if (++l->total > LOOKUP_SHOW || l->n >= LOOKUP_SHOW)
            continue;
        c = &l->c[l->n++];
        memset(c, 0, sizeof(*c));
        memcpy(c->id, id, 32);
        c->kind = "dyad";
        snprintf(c->title, sizeof(c->title), "%s", state);
        wb_reset(&rw);
        if (ident_from_text(rect, rid) == 0 && store_get(srv->n->store, rid, &rw) == 0) {
            struct envelope e;
            /* a long title is cut: the candidate line only has to tell them apart */
            if (ctl_decode_env(rw.p, rw.len, &e, &l->rec) == 0 &&
                snprintf(c->title, sizeof(c->title), "%s: %s", state, l->rec.title) < 0)
                c->title[0] = '\0';
        }
        c->has_author = ident_from_text(peer, c->author) == 0;
    }
out:
    wb_release(&rw);
    wb_release(&w);
    return rc;
}

int
ctl_h_candidates(struct ctl_call *call, const struct ctl_request *req)
{
    struct node *n = call->srv->n;
    char prefix[IDENT_TEXT_LEN + 1], of[16];
    struct mp_open m, list, c;
    struct lookup *l;
    int rc;

    if ((rc = ctl_arg_str(req, "prefix", IDENT_TEXT_LEN, prefix, sizeof(prefix))) != 0)
        return ctl_arg_failed(call, rc, "prefix");
    if ((rc = ctl_arg_str(req, "of", sizeof(of) - 1, of, sizeof(of))) != 0)
        return ctl_arg_failed(call, rc, "of");
    if ((l = calloc(1, sizeof(*l))) == NULL)
        return PULL_ERR_NOMEM;
    l->now = node_now_s(n);
    l->store = n->store;
    if (ident_prefix_parse(prefix, &l->prefix) != 0) {
        rc = ctl_fail(call, PULL_ERR_FIELD, "bad argument 'prefix'");
    } else if (strcmp(of, "records") == 0) {
        rc = lookup_records(n, l);
    } else if (strcmp(of, "mine") == 0) {
        rc = store_iter_author(n->store, n->self.pk, mine_live, l);
        if (rc >= 0)
            rc = store_kv_iter(n->store, STORE_MINE, mine_kept, l);
        rc = rc > 0 ? 0 : rc;
    } else if (strcmp(of, "dyads") == 0) {
        rc = lookup_dyads(call->srv, l);
    } else {
        rc = ctl_fail(call, PULL_ERR_FIELD, "bad argument 'of': records, mine or dyads");
    }
    if (rc == 0) {
        mp_open_map(&m, ctl_begin(call, false));
        mp_kv_uint(&m, "total", l->total);
        mp_key(&m, "candidates");
        mp_open_array(&list, m.pk);
        for (unsigned i = 0; i < l->n; i++) {
            mp_open_map(&c, mp_item(&list));
            ctl_kv_id(&c, "id", l->c[i].id);
            mp_kv_str(&c, "kind", l->c[i].kind);
            mp_kv_str(&c, "title", l->c[i].title);
            if (l->c[i].has_author)
                ctl_kv_id(&c, "author", l->c[i].author);
            mp_close(&c);
        }
        mp_close(&list);
        mp_close(&m);
        ctl_send(call);
    }
    free(l);
    return rc;
}
