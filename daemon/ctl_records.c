/*
 * ctl_records: the control room of my records and of looking one up - "record.add",
 * "record.edit", "record.renew", "record.withdraw", "record.list", "show" (proto/ctl.h).
 *
 * A new record or version is signed here and submitted to the node (node_submit); the call
 * is kept and answered from the commit callback, so what the CLI is told is on disk.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ctl_int.h"
#include "daemon/dyads.h"
#include "daemon/people.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/match.h"
#include "lib/search.h"
#include "lib/store.h"

/* ---- Writing ------------------------------------------------------------------------- */

/* A local record waiting for its commit. */
struct pending_rec {
    struct ctl_call *call;
    uint8_t *env;
    size_t len;
};

static const char *
refusal(int rc)
{
    switch (rc) {
    case PULL_ERR_QUOTA:
        return "you have too many live records (max-per-author): withdraw some first";
    case PULL_ERR_STORE_FULL:
        return "the store is full (disk or map size): free some disk space";
    default:
        return pull_strerror(rc);
    }
}

static void
on_rec_commit(void *arg, int result, const uint8_t id[RECORD_ID_BYTES])
{
    struct pending_rec *p = arg;
    struct ctl_call *call = p->call;
    struct record *rec = NULL;
    struct envelope env;
    int rc = result;

    if (rc != 0)
        ctl_fail(call, rc, "%s", refusal(rc));
    else if ((rec = malloc(sizeof(*rec))) == NULL)
        rc = PULL_ERR_NOMEM;
    else if ((rc = ctl_decode_env(p->env, p->len, &env, rec)) == 0)
        ctl_pack_record(ctl_begin(call, false), call->srv, id, rec, CTL_REC_MINE, 0);
    if (rc == 0)
        ctl_send(call);
    free(rec);
    free(p->env);
    free(p);
    ctl_done(call, rc);
}

int
ctl_submit_local(struct ctl_call *call, struct record *rec)
{
    struct node *n = call->srv->n;
    struct pending_rec *p = NULL;
    struct pull_wb w;
    int rc;

    wb_init(&w, RECORD_ENVELOPE_MAX);
    memcpy(rec->author, n->self.pk, 32);
    if ((rc = record_check_fields(rec)) != 0 || (rc = record_check_time(rec, node_now_s(n))) != 0 ||
        (rc = record_sign(rec, &n->self, &w, NULL)) != 0) {
        rc = ctl_fail(call, rc, "%s", pull_strerror(rc));
        goto out;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    p->env = wb_steal(&w, &p->len);
    p->call = ctl_keep(call);
    rc = node_submit(n, p->env, p->len, NODE_ORIGIN_LOCAL, NULL, on_rec_commit, p, NULL);
    if (rc != 0) {
        ctl_done(call, 0); /* the keep: the commit callback will not run */
        rc = ctl_fail(call, rc, "%s", refusal(rc));
        free(p->env);
        free(p);
    }
    /* else p is the commit callback's */
out:
    wb_release(&w);
    return rc;
}

/* blank: nothing but spaces (ASCII white space, no-break and other Unicode spaces). */
static bool
blank(const char *s)
{
    const uint8_t *p = (const uint8_t *)s;

    while (*p != '\0') {
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            p++;
        else if (p[0] == 0xc2 && p[1] == 0xa0)
            p += 2; /* U+00A0 */
        else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] <= 0x8a || p[2] == 0xaf))
            p += 3; /* U+2000..U+200A, U+202F */
        else if (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80)
            p += 3; /* U+3000 */
        else
            return false;
    }
    return true;
}

/* tag_rule: the rule a folded tag breaks, named for a person, or NULL if none of the ASCII
 * rules (record_check_fields has the last word). */
static const char *
tag_rule(const char *t, char *buf, size_t n)
{
    size_t len = strlen(t);

    if (len == 0)
        return "a tag can't be empty";
    if (len > RECORD_TAG_MAX) {
        snprintf(buf, n, "a tag is at most %d bytes once folded (this one is %zu)", RECORD_TAG_MAX,
                 len);
        return buf;
    }
    for (const char *p = t; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
            c == '.' || c == '+')
            continue;
        if (c == ' ')
            return "a tag is one word: no spaces (rust-mentoring, not \"rust mentoring\")";
        snprintf(buf, n,
                 "'%c' is not allowed in a tag: letters, digits and - _ . + only (one word)", c);
        return buf;
    }
    return NULL;
}

/* check_tags refuses the first tag of rec that breaks a rule, naming the tag and the rule. */
static int
check_tags(struct ctl_call *call, const struct record *rec)
{
    char buf[160];
    struct record one;
    const char *why;

    for (unsigned i = 0; i < rec->ntags; i++) {
        if ((why = tag_rule(rec->tags[i], buf, sizeof(buf))) != NULL)
            return ctl_fail(call, PULL_ERR_TAG, "tag '%s': %s", rec->tags[i], why);
        record_init(&one);
        snprintf(one.title, sizeof(one.title), "t");
        one.kind = RECORD_OFFER;
        one.ntags = 1;
        memcpy(one.tags[0], rec->tags[i], sizeof(one.tags[0]));
        if (record_check_fields(&one) == PULL_ERR_TAG)
            return ctl_fail(call, PULL_ERR_TAG,
                            "tag '%s': letters of one script, digits and - _ . + only (no "
                            "punctuation, spaces or look-alike characters)",
                            rec->tags[i]);
    }
    return 0;
}

/* read_tags reads the str array arg key into tags; returns the count, or the error. */
static int
read_tags(struct ctl_call *call, const struct ctl_request *req, const char *key,
          char tags[RECORD_TAGS_MAX][RECORD_TAG_MAX + 1])
{
    uint32_t n = 0;
    int rc =
        ctl_arg_strs(req, key, RECORD_TAGS_MAX, RECORD_TAG_MAX, &tags[0][0], sizeof(tags[0]), &n);

    if (rc == PULL_ERR_NOT_FOUND)
        return 0;
    if (rc != 0)
        return ctl_fail(call, PULL_ERR_TAGS, "bad argument '%s': at most %d tags of 1 to %d bytes",
                        key, RECORD_TAGS_MAX, RECORD_TAG_MAX);
    return (int)n;
}

/* amend_tags applies "add_tags" and "remove_tags" (edit) to rec's tags. */
static int
amend_tags(struct ctl_call *call, const struct ctl_request *req, struct record *rec)
{
    char add[RECORD_TAGS_MAX][RECORD_TAG_MAX + 1], rm[RECORD_TAGS_MAX][RECORD_TAG_MAX + 1];
    struct record tmp;
    int na, nr;

    if ((na = read_tags(call, req, "add_tags", add)) < 0 ||
        (nr = read_tags(call, req, "remove_tags", rm)) < 0)
        return na < 0 ? na : nr;
    /* fold them like the record's tags, through a record */
    record_init(&tmp);
    tmp.ntags = (uint8_t)nr;
    memcpy(tmp.tags, rm, sizeof(rm));
    if (nr > 0 && record_fold_tags(&tmp) == 0) {
        for (unsigned j = 0; j < tmp.ntags; j++) {
            for (unsigned i = 0; i < rec->ntags; i++) {
                if (strcmp(rec->tags[i], tmp.tags[j]) != 0)
                    continue;
                memmove(rec->tags[i], rec->tags[i + 1],
                        (rec->ntags - i - 1) * sizeof(rec->tags[0]));
                rec->ntags--;
                memset(rec->tags[rec->ntags], 0, sizeof(rec->tags[0]));
                break;
            }
        }
    }
    for (int j = 0; j < na; j++) {
        if (rec->ntags >= RECORD_TAGS_MAX)
            return ctl_fail(call, PULL_ERR_TAGS, "at most %d tags", RECORD_TAGS_MAX);
        memcpy(rec->tags[rec->ntags++], add[j], sizeof(rec->tags[0]));
    }
    if (record_fold_tags(rec) != 0) /* folds the added ones, drops duplicates */
        return ctl_fail(call, PULL_ERR_TAG,
                        "bad argument 'add_tags': a tag is over %d bytes once "
                        "folded",
                        RECORD_TAG_MAX);
    return 0;
}

/* Reads the content args of add/edit into rec (absent ones leave rec as it is). Returns 0
 * or the error. */
static int
read_content(struct ctl_call *call, const struct ctl_request *req, struct record *rec,
             bool *has_expires, uint64_t *expires_s)
{
    char tags[RECORD_TAGS_MAX][RECORD_TAG_MAX + 1];
    uint32_t ntags = 0;
    int rc;

    if ((rc = ctl_opt_text(call, req, "title", rec->title, sizeof(rec->title), RECORD_TITLE_MAX,
                           PULL_ERR_TITLE)) < 0)
        return rc;
    if (rc == 1 && blank(rec->title))
        return ctl_fail(call, PULL_ERR_TITLE, "the title is empty%s: say what you %s",
                        rec->title[0] != '\0' ? " (only spaces)" : "",
                        rec->kind == RECORD_NEED ? "need" : "offer");
    if ((rc = ctl_opt_text(call, req, "body", rec->body, sizeof(rec->body), RECORD_BODY_MAX,
                           PULL_ERR_BODY)) < 0 ||
        (rc = ctl_opt_text(call, req, "location", rec->location, sizeof(rec->location),
                           RECORD_LOCATION_MAX, PULL_ERR_LOCATION)) < 0 ||
        (rc = ctl_opt_text(call, req, "terms", rec->terms, sizeof(rec->terms), RECORD_TERMS_MAX,
                           PULL_ERR_FIELD)) < 0)
        return rc;
    rc = ctl_arg_strs(req, "tags", RECORD_TAGS_MAX, RECORD_TAG_MAX, &tags[0][0], sizeof(tags[0]),
                      &ntags);
    if (rc == 0) {
        rec->ntags = (uint8_t)ntags;
        memcpy(rec->tags, tags, sizeof(tags));
        if (record_fold_tags(rec) != 0) /* folded like search words (lib/fold.h) */
            return ctl_fail(call, PULL_ERR_TAG,
                            "bad argument 'tags': a tag is over %d bytes "
                            "once folded",
                            RECORD_TAG_MAX);
    } else if (rc != PULL_ERR_NOT_FOUND) {
        return ctl_fail(call, PULL_ERR_TAGS,
                        "bad argument 'tags': at most %d tags of 1 to %d bytes", RECORD_TAGS_MAX,
                        RECORD_TAG_MAX);
    }
    if ((rc = amend_tags(call, req, rec)) != 0 || (rc = check_tags(call, rec)) != 0)
        return rc;
    *has_expires = false;
    rc = ctl_arg_uint(req, "expires_s", RECORD_TTL_MAX, expires_s);
    if (rc == 0) {
        if (*expires_s == 0)
            return ctl_fail(call, PULL_ERR_EXPIRY, "expiry out of bounds: at least 1 s");
        *has_expires = true;
    } else if (rc != PULL_ERR_NOT_FOUND) {
        return ctl_fail(call, PULL_ERR_EXPIRY, "expiry out of bounds: at most 90 days (%u s)",
                        RECORD_TTL_MAX);
    }
    return 0;
}

int
ctl_h_record_add(struct ctl_call *call, const struct ctl_request *req)
{
    struct node *n = call->srv->n;
    struct record *rec = malloc(sizeof(*rec));
    bool has_exp;
    uint64_t exp_s = RECORD_TTL_DEFAULT, now = node_now_s(n);
    int rc;

    if (rec == NULL)
        return PULL_ERR_NOMEM;
    record_init(rec);
    if ((rc = ctl_opt_kind(call, req, true, &rec->kind)) < 0)
        goto out;
    if (rc == 0) {
        rc = ctl_arg_failed(call, PULL_ERR_NOT_FOUND, "kind");
        goto out;
    }
    if ((rc = read_content(call, req, rec, &has_exp, &exp_s)) != 0)
        goto out;
    if (!has_exp)
        exp_s = RECORD_TTL_DEFAULT;
    env_random(n->env, rec->slot, sizeof(rec->slot));
    rec->seq = 1;
    rec->created = now;
    rec->expires = now + exp_s;
    rc = ctl_submit_local(call, rec);
out:
    free(rec);
    return rc;
}

/* Finding one of my live records by id prefix (or an expired one, kept in STORE_MINE). */
struct mine_find {
    struct ident_prefix prefix;
    struct store *store;
    bool expired; /* looking among the expired ones */
    uint64_t now;
    uint8_t id[RECORD_ID_BYTES];
    uint8_t *env;
    size_t len;
    unsigned matches;
};

static int
find_mine_one(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct mine_find *f = ctx;
    struct envelope e;
    struct record *rec;

    if (!ident_prefix_match(&f->prefix, id))
        return 0;
    if ((rec = malloc(sizeof(*rec))) == NULL)
        return PULL_ERR_NOMEM;
    if (ctl_decode_env(env, len, &e, rec) == 0 && rec->kind != RECORD_WITHDRAWN &&
        (f->expired ? rec->expires <= f->now : rec->expires > f->now)) {
        f->matches++;
        memcpy(f->id, id, RECORD_ID_BYTES);
        free(f->env);
        if ((f->env = malloc(len)) == NULL) {
            free(rec);
            return PULL_ERR_NOMEM;
        }
        memcpy(f->env, env, len);
        f->len = len;
    }
    free(rec);
    return 0;
}

/* find_kept visits STORE_MINE for find_mine_one: the versions the store swept. */
static int
find_kept(void *ctx, const uint8_t key[32], const uint8_t *env, size_t len)
{
    struct mine_find *f = ctx;
    struct envelope e;
    (void)key;

    if (envelope_parse(env, len, &e) != 0 || store_has(f->store, e.id) == 0)
        return 0; /* still stored: seen by the pass over the store */
    return find_mine_one(ctx, e.id, env, len);
}

/* Resolves "id" to one of my live records - or, if expired_ok and none is live, to one that
 * expired - and checks "kind". Returns 0 with rec filled, or the error. */
static int
resolve_mine(struct ctl_call *call, const struct ctl_request *req, struct record *rec,
             uint8_t id[RECORD_ID_BYTES], bool expired_ok)
{
    struct node *n = call->srv->n;
    struct mine_find f;
    struct envelope e;
    char prefix[IDENT_TEXT_LEN + 1], sid[IDENT_SHORT_LEN + 1];
    uint8_t kind = 0;
    int rc;

    memset(&f, 0, sizeof(f));
    if ((rc = ctl_arg_str(req, "id", IDENT_TEXT_LEN, prefix, sizeof(prefix))) != 0 ||
        ident_prefix_parse(prefix, &f.prefix) != 0)
        return ctl_arg_failed(call, rc == PULL_ERR_NOT_FOUND ? rc : PULL_ERR_FIELD, "id");
    if ((rc = ctl_opt_kind(call, req, true, &kind)) < 0)
        return rc;
    f.now = node_now_s(n);
    f.store = n->store;
    rc = store_iter_author(n->store, n->self.pk, find_mine_one, &f);
    if (rc >= 0 && f.matches == 0) {
        /* expired: still in the store until the sweep, then in STORE_MINE */
        f.expired = true;
        if ((rc = store_iter_author(n->store, n->self.pk, find_mine_one, &f)) >= 0)
            rc = store_kv_iter(n->store, STORE_MINE, find_kept, &f);
    }
    if (rc >= 0 && f.matches == 0 && call->srv->svc.people != NULL) {
        /* an older version of one of mine: its live version (same handle) */
        struct people_rec pr;
        char live[IDENT_TEXT_LEN + 1];
        if (people_record(call->srv->svc.people, &f.prefix, &pr) == 0 && pr.superseded) {
            ident_to_text(pr.id, live);
            if (ident_prefix_parse(live, &f.prefix) == 0) {
                f.expired = false;
                if ((rc = store_iter_author(n->store, n->self.pk, find_mine_one, &f)) >= 0 &&
                    f.matches == 0) {
                    f.expired = true;
                    if ((rc = store_iter_author(n->store, n->self.pk, find_mine_one, &f)) >= 0)
                        rc = store_kv_iter(n->store, STORE_MINE, find_kept, &f);
                }
            }
        }
    }
    if (rc < 0) {
        /* rc is the store's error */
    } else if (f.matches == 0) {
        rc = ctl_fail(call, PULL_ERR_NOT_FOUND,
                      "no live or expired %s of yours has an id starting with '%s'",
                      kind ? record_kind_name(kind) : "record", prefix);
    } else if (f.expired && !expired_ok && f.matches == 1) {
        rc = ctl_fail(call, PULL_ERR_EXPIRED,
                      "%s %s expired already: nothing to withdraw (renew it to publish it again)",
                      kind ? record_kind_name(kind) : "record", prefix);
    } else if (f.matches > 1) {
        rc = ctl_fail(call, PULL_ERR_AMBIGUOUS,
                      "ambiguous id prefix '%s' (%u of your records): give more characters", prefix,
                      f.matches);
    } else if (ctl_decode_env(f.env, f.len, &e, rec) != 0) {
        rc = PULL_ERR_STORE;
    } else if (kind != 0 && rec->kind != kind) {
        const char *have = record_kind_name(rec->kind);
        ident_short(f.id, sid);
        rc = ctl_fail(call, PULL_ERR_KIND, "%s is %s %s, not %s %s", sid,
                      have[0] == 'o' ? "an" : "a", have, kind == RECORD_OFFER ? "an" : "a",
                      record_kind_name(kind));
    } else {
        memcpy(id, f.id, RECORD_ID_BYTES);
        rc = 0;
    }
    free(f.env);
    return rc;
}

/* renew, withdraw and edit: a new version of one of my records. */
enum { V_RENEW, V_WITHDRAW, V_EDIT };

static int
new_version(struct ctl_call *call, const struct ctl_request *req, int verb)
{
    struct node *n = call->srv->n;
    struct record *rec = malloc(sizeof(*rec));
    uint8_t id[RECORD_ID_BYTES];
    uint64_t now = node_now_s(n), exp_s = RECORD_TTL_DEFAULT;
    bool has_exp = false;
    int rc;

    if (rec == NULL)
        return PULL_ERR_NOMEM;
    if ((rc = resolve_mine(call, req, rec, id, verb != V_WITHDRAW)) != 0)
        goto out;
    if (verb == V_EDIT) {
        if ((rc = read_content(call, req, rec, &has_exp, &exp_s)) != 0)
            goto out;
    } else if (verb == V_RENEW) {
        rc = ctl_arg_uint(req, "expires_s", RECORD_TTL_MAX, &exp_s);
        if (rc == PULL_ERR_NOT_FOUND) {
            exp_s = RECORD_TTL_DEFAULT;
        } else if (rc != 0 || exp_s == 0) {
            rc = ctl_fail(call, PULL_ERR_EXPIRY, "expiry out of bounds: 1 s to 90 days");
            goto out;
        }
        has_exp = true;
    }
    rec->seq++;
    if (verb == V_WITHDRAW) {
        /* The tombstone keeps the old expiry, so a replay of the old version stays refused
         * for as long as it could be live. */
        rec->kind = RECORD_WITHDRAWN;
        rec->title[0] = rec->body[0] = rec->location[0] = rec->terms[0] = '\0';
        rec->ntags = 0;
        memset(rec->tags, 0, sizeof(rec->tags));
        rec->created = now < rec->created ? rec->created : now;
        if (rec->expires <= rec->created)
            rec->expires = rec->created + 1;
        if (rec->expires - rec->created > RECORD_TTL_MAX)
            rec->created = rec->expires - RECORD_TTL_MAX;
    } else {
        uint64_t old_exp = rec->expires;
        rec->created = now;
        rec->expires = has_exp ? now + exp_s : (old_exp > now ? old_exp : now + exp_s);
    }
    rc = ctl_submit_local(call, rec);
out:
    free(rec);
    return rc;
}

int
ctl_h_record_renew(struct ctl_call *call, const struct ctl_request *req)
{
    return new_version(call, req, V_RENEW);
}

int
ctl_h_record_withdraw(struct ctl_call *call, const struct ctl_request *req)
{
    return new_version(call, req, V_WITHDRAW);
}

int
ctl_h_record_edit(struct ctl_call *call, const struct ctl_request *req)
{
    return new_version(call, req, V_EDIT);
}

/* ---- record.list: my live records, newest first ---------------------------------------- */

struct list_item {
    uint64_t created;
    uint8_t id[RECORD_ID_BYTES];
    uint8_t *env;
    size_t len;
};

struct list_ctx {
    struct list_item *items;
    size_t n, cap;
    uint8_t kind;
    bool expired; /* my expired records instead of the live ones */
    uint64_t now;
    struct record *rec;
};

static int
list_one(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct list_ctx *l = ctx;
    struct envelope e;
    struct list_item *it;

    if (ctl_decode_env(env, len, &e, l->rec) != 0 || l->rec->kind == RECORD_WITHDRAWN ||
        (l->expired ? l->rec->expires > l->now : l->rec->expires <= l->now) ||
        (l->kind != 0 && l->rec->kind != l->kind))
        return 0;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        struct list_item *ni = realloc(l->items, nc * sizeof(*ni));
        if (ni == NULL)
            return PULL_ERR_NOMEM;
        l->items = ni;
        l->cap = nc;
    }
    it = &l->items[l->n];
    if ((it->env = malloc(len)) == NULL)
        return PULL_ERR_NOMEM;
    memcpy(it->env, env, len);
    it->len = len;
    it->created = l->rec->created;
    memcpy(it->id, id, RECORD_ID_BYTES);
    l->n++;
    return 0;
}

/* list_kept visits STORE_MINE: the latest version of each of my slots. */
static int
list_kept(void *ctx, const uint8_t key[32], const uint8_t *env, size_t len)
{
    struct envelope e;
    (void)key;

    if (envelope_parse(env, len, &e) != 0)
        return 0;
    return list_one(ctx, e.id, env, len);
}

static int
item_newer_first(const void *a, const void *b)
{
    const struct list_item *x = a, *y = b;

    if (x->created != y->created)
        return x->created > y->created ? -1 : 1;
    return memcmp(x->id, y->id, RECORD_ID_BYTES);
}

int
ctl_h_record_list(struct ctl_call *call, const struct ctl_request *req)
{
    struct node *n = call->srv->n;
    struct list_ctx l;
    struct mp_open list;
    int rc;

    memset(&l, 0, sizeof(l));
    if ((rc = ctl_opt_kind(call, req, true, &l.kind)) < 0)
        return rc;
    if ((rc = ctl_arg_bool(req, "expired", &l.expired)) != 0 && rc != PULL_ERR_NOT_FOUND)
        return ctl_arg_failed(call, rc, "expired");
    l.now = node_now_s(n);
    if ((l.rec = malloc(sizeof(*l.rec))) == NULL)
        return PULL_ERR_NOMEM;
    /* the expired ones: STORE_MINE has each slot's latest version, swept or not */
    rc = l.expired ? store_kv_iter(n->store, STORE_MINE, list_kept, &l)
                   : store_iter_author(n->store, n->self.pk, list_one, &l);
    if (rc >= 0) {
        rc = 0;
        if (l.n > 1)
            qsort(l.items, l.n, sizeof(l.items[0]), item_newer_first);
        mp_open_array(&list, ctl_begin(call, false));
        for (size_t i = 0; i < l.n; i++) {
            struct envelope e;
            if (ctl_decode_env(l.items[i].env, l.items[i].len, &e, l.rec) == 0)
                ctl_pack_record(mp_item(&list), call->srv, l.items[i].id, l.rec, CTL_REC_MINE, 0);
        }
        mp_close(&list);
        ctl_send(call);
    }
    for (size_t i = 0; i < l.n; i++)
        free(l.items[i].env);
    free(l.items);
    free(l.rec);
    return rc;
}

/* ---- show ------------------------------------------------------------------------------ */

int
ctl_h_show(struct ctl_call *call, const struct ctl_request *req)
{
    struct node *n = call->srv->n;
    struct ident_prefix p;
    struct people_rec pr;
    char prefix[NAMES_PETNAME_MAX + 1];
    uint8_t *id = pr.id;
    struct record *rec = NULL;
    struct envelope e;
    struct pull_wb w;
    int rc;

    if ((rc = ctl_arg_str(req, "id", NAMES_PETNAME_MAX, prefix, sizeof(prefix))) != 0)
        return ctl_arg_failed(call, rc, "id");
    if (ident_prefix_parse(prefix, &p) != 0)
        return ctl_show_author(call, prefix); /* a name */
    if (call->srv->svc.people != NULL) {
        rc = people_record(call->srv->svc.people, &p, &pr);
    } else {
        memset(&pr, 0, sizeof(pr));
        rc = store_resolve_prefix(n->store, &p, pr.id);
    }
    if (rc == PULL_ERR_AMBIGUOUS)
        return ctl_fail(call, rc,
                        "ambiguous id prefix '%s' (several records): give more characters", prefix);
    if (rc == PULL_ERR_NOT_FOUND)
        return ctl_show_author(call, prefix); /* records win; then authors */
    if (rc != 0)
        return rc;
    wb_init(&w, RECORD_ENVELOPE_MAX);
    if ((rc = store_get(n->store, id, &w)) != 0) {
        /* the store's error */
    } else if ((rec = malloc(sizeof(*rec))) == NULL) {
        rc = PULL_ERR_NOMEM;
    } else if (ctl_decode_env(w.p, w.len, &e, rec) != 0) {
        rc = PULL_ERR_STORE;
    } else {
        /* the author's completed dyads this node has evidence of (daemon/people.h) */
        uint32_t done = 0, peers = 0;
        struct mp_open m;
        people_dyads_of(call->srv->svc.people, rec->author, &done, &peers, NULL, NULL);
        ctl_record_open(&m, ctl_begin(call, false), call->srv, id, rec, CTL_REC_MINE, 0);
        mp_kv_uint(&m, "author_dyads_completed", done);
        mp_kv_uint(&m, "author_dyads_counterparts", peers);
        if (pr.superseded) /* an older version's id was asked: this is its live version */
            ctl_kv_id(&m, "superseded_from", pr.asked);
        mp_close(&m);
        ctl_send(call);
    }
    free(rec);
    wb_release(&w);
    return rc;
}
