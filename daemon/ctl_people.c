/*
 * ctl_people: the control room of people (proto/ctl.h) - "profile.set", "profile.show",
 * "name.set", "name.remove", "names", and the author view of "show" (ctl_show_author),
 * with ctl_resolve_author, the one way an author given as text (a petname, a key or a key
 * prefix, a chosen name) is found, which show, search and watch use too.
 *
 * Names, handles and trust are the people part's (daemon/people.h); this room only reads
 * them and queues petname writes through it. A petname change is answered once it is on
 * disk (node_after_commit), like records and dyads.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ctl_int.h"
#include "daemon/people.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/match.h"
#include "lib/search.h"
#include "lib/store.h"

#define SHOW_AUTHOR_SCAN (2 * STORE_MAX_PER_AUTHOR_DEFAULT)
#define SHOW_LIVE_MAX 64 /* live records listed by the author view */
#define SHOW_PATHS_MAX 4 /* shortest paths listed */
#define SHOW_COUNTERPARTS_MAX 64

/* ---- finding an author ---- */

/* A key prefix among the authors of live records (through the search index, reading at
 * most SHOW_AUTHOR_SCAN hits: twice the default per-author quota, so that two authors
 * sharing the prefix are seen) and me. */
static int
author_by_prefix(struct node *n, const struct ident_prefix *p, uint8_t author[32])
{
    struct search_hit *hits = NULL;
    struct record *rec = NULL;
    struct match_query q;
    struct pull_wb w;
    uint32_t nh = 0;
    bool found = false;
    int rc;

    if (ident_prefix_match(p, n->self.pk)) {
        memcpy(author, n->self.pk, 32);
        found = true;
    }
    match_query_init(&q);
    q.has_author = true;
    q.author = *p;
    q.now_s = node_now_s(n);
    ctl_index_ready(n, q.now_s);
    if ((hits = calloc(SHOW_AUTHOR_SCAN, sizeof(*hits))) == NULL ||
        (rec = malloc(sizeof(*rec))) == NULL) {
        free(hits);
        return PULL_ERR_NOMEM;
    }
    rc = search_index_query(n->search, &q, SHOW_AUTHOR_SCAN, ctl_fetch_hit, n, hits, &nh);
    wb_init(&w, RECORD_ENVELOPE_MAX);
    for (uint32_t i = 0; rc == 0 && i < nh; i++) {
        struct envelope e;
        wb_reset(&w);
        if (search_fetch(n->store, hits[i].created, hits[i].id8, &w) != 0 ||
            ctl_decode_env(w.p, w.len, &e, rec) != 0 || !ident_prefix_match(p, rec->author))
            continue;
        if (!found) {
            memcpy(author, rec->author, 32);
            found = true;
        } else if (memcmp(author, rec->author, 32) != 0) {
            rc = PULL_ERR_AMBIGUOUS;
        }
    }
    wb_release(&w);
    free(hits);
    free(rec);
    if (rc == 0 && !found)
        rc = PULL_ERR_NOT_FOUND;
    return rc;
}

int
ctl_resolve_author(struct ctl_call *call, const char *text, uint8_t author[32])
{
    struct ctl_server *srv = call->srv;
    struct people *pp = srv->svc.people;
    struct ident_prefix p;
    char msg[CTL_MSG_MAX];
    uint32_t live = 0, tomb = 0, done = 0, peers = 0;
    int rc;

    if (pp != NULL && names_find_petname(people_names(pp), text, author) == 0)
        return 0; /* my petnames first: they are mine */
    if (ident_prefix_parse(text, &p) != 0 &&
        names_check_text(text, strlen(text), NAMES_PETNAME_MAX, false) != 0)
        return ctl_fail(call, PULL_ERR_FIELD,
                        "bad author '%s': an id or key prefix (6+ characters, a-z 2-7), a "
                        "petname or a name",
                        text);
    if (ident_prefix_parse(text, &p) == 0) {
        if (strlen(text) == IDENT_TEXT_LEN) {
            if (ident_from_text(text, author) != 0)
                return ctl_fail(call, PULL_ERR_FIELD, "bad key '%s'", text);
            people_dyads_of(pp, author, &done, &peers, NULL, NULL);
            if (sodium_memcmp(author, srv->n->self.pk, 32) == 0 ||
                (store_author_count(srv->n->store, author, &live, &tomb) == 0 && live + tomb > 0) ||
                done > 0 || (pp != NULL && names_petname(people_names(pp), author) != NULL))
                return 0;
        } else if ((rc = author_by_prefix(srv->n, &p, author)) == 0) {
            return 0;
        } else if (rc == PULL_ERR_AMBIGUOUS) {
            return ctl_fail(call, rc,
                            "ambiguous author prefix '%s' (several authors): give more characters",
                            text);
        } else if (rc != PULL_ERR_NOT_FOUND) {
            return rc;
        }
    }
    if (pp != NULL && (rc = people_find(pp, text, author, msg, sizeof(msg))) != PULL_ERR_NOT_FOUND)
        return rc == 0 ? 0 : ctl_fail(call, rc, "%s", msg);
    return ctl_fail(call, PULL_ERR_NOT_FOUND,
                    "no record or author '%s' (an id or key prefix of 6+ characters, a petname "
                    "or a name)",
                    text);
}

/* ---- the author view ---- */

struct live_item {
    uint64_t created;
    uint8_t id[RECORD_ID_BYTES];
};

struct author_scan {
    uint64_t now_s;
    struct record *rec;
    uint32_t records, offers, needs;
    struct live_item items[SHOW_LIVE_MAX];
    size_t nitems;
};

static int
author_visit(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *p, size_t len)
{
    struct author_scan *a = ctx;
    struct envelope e;

    if (ctl_decode_env(p, len, &e, a->rec) != 0 || a->rec->kind == RECORD_WITHDRAWN ||
        a->rec->expires <= a->now_s)
        return 0;
    a->records++;
    if (a->rec->kind != RECORD_OFFER && a->rec->kind != RECORD_NEED)
        return 0;
    a->offers += a->rec->kind == RECORD_OFFER;
    a->needs += a->rec->kind == RECORD_NEED;
    /* keep the newest SHOW_LIVE_MAX (visited oldest first) */
    if (a->nitems == SHOW_LIVE_MAX) {
        memmove(&a->items[0], &a->items[1], (SHOW_LIVE_MAX - 1) * sizeof(a->items[0]));
        a->nitems--;
    }
    a->items[a->nitems].created = a->rec->created;
    memcpy(a->items[a->nitems].id, id, RECORD_ID_BYTES);
    a->nitems++;
    return 0;
}

/* Packs the stored record id as a record map into pk (nil if it is gone). */
static void
pack_stored(struct ctl_server *srv, msgpack_packer *pk, const uint8_t id[RECORD_ID_BYTES],
            struct record *rec)
{
    uint8_t buf[RECORD_ENVELOPE_MAX];
    struct envelope e;
    size_t len;

    if (node_fetch_record(srv->n, id, buf, sizeof(buf), &len) == 0 &&
        ctl_decode_env(buf, len, &e, rec) == 0)
        ctl_pack_record(pk, srv, id, rec, CTL_REC_MINE, 0);
    else
        msgpack_pack_nil(pk);
}

struct counterparts {
    struct ctl_server *srv;
    struct mp_open *list;
    unsigned n;
};

static int
counterpart_one(void *ctx, const uint8_t other[32], unsigned dyads)
{
    struct counterparts *c = ctx;
    struct mp_open m;

    mp_open_map(&m, mp_item(c->list));
    ctl_kv_id(&m, "key", other);
    ctl_kv_person(&m, c->srv, "key", other);
    mp_kv_bool(&m, "mine", sodium_memcmp(other, c->srv->n->self.pk, 32) == 0);
    mp_kv_uint(&m, "dyads", dyads);
    mp_close(&m);
    return ++c->n >= SHOW_COUNTERPARTS_MAX;
}

/* "trust": {"distance": n or nil, "paths": [[key, ...], ...], "path_labels": [[label, ...],
 * ...], "independent": n}: how this person is reached from me. */
static int
pack_trust(struct ctl_server *srv, struct mp_open *m, const uint8_t author[32])
{
    struct people *pp = srv->svc.people;
    uint8_t(*paths)[32] = NULL;
    unsigned dist = TRUST_NONE, indep = 0;
    size_t np = 0;
    struct mp_open t, list, path;
    int rc = 0;

    if (pp != NULL) {
        struct trust *tr = people_trust(pp);
        dist = trust_distance(tr, author);
        if ((paths = calloc(SHOW_PATHS_MAX * TRUST_HOPS_MAX, 32)) == NULL)
            return PULL_ERR_NOMEM;
        np = trust_paths(tr, author, paths, SHOW_PATHS_MAX);
        if ((rc = trust_independent(tr, author, &indep)) != 0) {
            free(paths);
            return rc;
        }
    }
    mp_key(m, "trust");
    mp_open_map(&t, m->pk);
    if (dist == TRUST_NONE)
        msgpack_pack_nil(mp_key(&t, "distance"));
    else
        mp_kv_uint(&t, "distance", dist);
    for (int labels = 0; labels < 2; labels++) {
        mp_key(&t, labels ? "path_labels" : "paths");
        mp_open_array(&list, t.pk);
        for (size_t i = 0; i < np; i++) {
            mp_open_array(&path, mp_item(&list));
            for (unsigned k = 0; k < dist; k++) {
                const uint8_t *key = paths[i * TRUST_HOPS_MAX + k];
                char l[NAMES_LABEL_MAX], tx[IDENT_TEXT_LEN + 1];
                if (labels) {
                    mp_pack_cstr(mp_item(&path), people_label(pp, key, l));
                } else {
                    ident_to_text(key, tx);
                    mp_pack_cstr(mp_item(&path), tx);
                }
            }
            mp_close(&path);
        }
        mp_close(&list);
    }
    mp_kv_uint(&t, "independent", indep);
    mp_close(&t);
    free(paths);
    return 0;
}

int
ctl_show_author(struct ctl_call *call, const char *text)
{
    struct ctl_server *srv = call->srv;
    struct people *pp = srv->svc.people;
    struct author_scan *a = calloc(1, sizeof(*a));
    struct counterparts cp = {srv, NULL, 0};
    uint8_t author[32], pid[RECORD_ID_BYTES];
    uint32_t done = 0, peers = 0;
    struct mp_open m, list;
    char full[NAMES_LABEL_MAX];
    int rc;

    if (a == NULL || (a->rec = malloc(sizeof(*a->rec))) == NULL) {
        free(a);
        return PULL_ERR_NOMEM;
    }
    a->now_s = node_now_s(srv->n);
    if ((rc = ctl_resolve_author(call, text, author)) != 0)
        goto out;
    if ((rc = store_iter_author(srv->n->store, author, author_visit, a)) < 0)
        goto out;
    people_dyads_of(pp, author, &done, &peers, NULL, NULL);
    mp_open_map(&m, ctl_begin(call, false));
    ctl_kv_id(&m, "author", author);
    ctl_kv_person(&m, srv, "author", author);
    mp_kv_str(&m, "author_full", people_full(pp, author, full));
    mp_kv_bool(&m, "mine", sodium_memcmp(author, srv->n->self.pk, 32) == 0);
    mp_kv_uint(&m, "records", a->records);
    mp_kv_uint(&m, "offers", a->offers);
    mp_kv_uint(&m, "needs", a->needs);
    mp_kv_uint(&m, "dyads_completed", done);
    mp_kv_uint(&m, "dyads_counterparts", peers);
    if (pp != NULL && people_profile(pp, author, pid) == 0)
        pack_stored(srv, mp_key(&m, "profile"), pid, a->rec);
    mp_key(&m, "live");
    mp_open_array(&list, m.pk);
    for (size_t i = a->nitems; i-- > 0;) /* newest first */
        pack_stored(srv, mp_item(&list), a->items[i].id, a->rec);
    mp_close(&list);
    mp_key(&m, "counterparts");
    mp_open_array(&list, m.pk);
    cp.list = &list;
    people_dyads_of(pp, author, &done, &peers, counterpart_one, &cp);
    mp_close(&list);
    if ((rc = pack_trust(srv, &m, author)) != 0) {
        ctl_cancel(call);
        goto out;
    }
    mp_close(&m);
    ctl_send(call);
    node_trim_soon(srv->n);
out:
    free(a->rec);
    free(a);
    return rc;
}

/* ---- profile.set / profile.show ---- */

/* Reads my current profile into rec (0), or PULL_ERR_NOT_FOUND. */
static int
my_profile(struct ctl_server *srv, struct record *rec)
{
    uint8_t id[RECORD_ID_BYTES], buf[RECORD_ENVELOPE_MAX];
    struct envelope e;
    size_t len;

    if (srv->svc.people == NULL || people_profile(srv->svc.people, srv->n->self.pk, id) != 0 ||
        node_fetch_record(srv->n, id, buf, sizeof(buf), &len) != 0 ||
        ctl_decode_env(buf, len, &e, rec) != 0)
        return PULL_ERR_NOT_FOUND;
    return 0;
}

/* An optional text arg checked by lib/names.h's rules; *present says if it was given. */
static int
arg_text(struct ctl_call *call, const struct ctl_request *req, const char *key, size_t max,
         bool multiline, char *out, size_t outsz, bool *present)
{
    int rc = ctl_opt_text(call, req, key, out, outsz, max, PULL_ERR_FIELD);

    *present = rc == 1;
    if (rc <= 0)
        return rc == 0 ? 0 : rc;
    if (out[0] == '\0' && multiline)
        return 0; /* an empty about clears it */
    if ((rc = names_check_text(out, strlen(out), max, multiline)) == 0)
        return 0;
    if (rc == PULL_ERR_FIELD)
        return ctl_fail(call, rc, "bad argument '%s': 1 to %zu bytes with a letter or digit", key,
                        max);
    return ctl_fail(call, rc,
                    "bad argument '%s': control or invisible characters (bidi controls, "
                    "zero-width characters)%s are not allowed",
                    key, multiline ? "" : ", or a line break,");
}

int
ctl_h_profile_set(struct ctl_call *call, const struct ctl_request *req)
{
    struct ctl_server *srv = call->srv;
    struct record *rec = malloc(sizeof(*rec));
    char name[NAMES_NAME_MAX + 1], about[PEOPLE_ABOUT_MAX + 1];
    char tags[RECORD_TAGS_MAX][RECORD_TAG_MAX + 1];
    uint32_t ntags = 0;
    bool has_name, has_about, had;
    uint64_t now = node_now_s(srv->n);
    int rc;

    if (rec == NULL)
        return PULL_ERR_NOMEM;
    if ((rc = arg_text(call, req, "name", NAMES_NAME_MAX, false, name, sizeof(name), &has_name)) !=
            0 ||
        (rc = arg_text(call, req, "about", PEOPLE_ABOUT_MAX, true, about, sizeof(about),
                       &has_about)) != 0)
        goto out;
    had = my_profile(srv, rec) == 0;
    if (!had) {
        if (!has_name) {
            rc = ctl_fail(call, PULL_ERR_ARITY,
                          "you have no profile yet: give it a name (pull profile set --name NAME)");
            goto out;
        }
        record_init(rec);
        rec->kind = RECORD_PROFILE;
        env_random(srv->n->env, rec->slot, sizeof(rec->slot));
        rec->seq = 0;
    }
    if (has_name)
        snprintf(rec->title, sizeof(rec->title), "%s", name);
    if (has_about)
        snprintf(rec->body, sizeof(rec->body), "%s", about);
    if ((rc = ctl_opt_text(call, req, "location", rec->location, sizeof(rec->location),
                           RECORD_LOCATION_MAX, PULL_ERR_LOCATION)) < 0)
        goto out;
    rc = ctl_arg_strs(req, "tags", RECORD_TAGS_MAX, RECORD_TAG_MAX, &tags[0][0], sizeof(tags[0]),
                      &ntags);
    if (rc == 0) {
        rec->ntags = (uint8_t)ntags;
        memcpy(rec->tags, tags, sizeof(tags));
        if (record_fold_tags(rec) != 0) {
            rc = ctl_fail(call, PULL_ERR_TAG,
                          "bad argument 'tags': a tag is over %d bytes once "
                          "folded",
                          RECORD_TAG_MAX);
            goto out;
        }
    } else if (rc != PULL_ERR_NOT_FOUND) {
        rc = ctl_fail(call, PULL_ERR_TAGS, "bad argument 'tags': at most %d tags of 1 to %d bytes",
                      RECORD_TAGS_MAX, RECORD_TAG_MAX);
        goto out;
    }
    rec->seq++;
    rec->created = now;
    rec->expires = now + RECORD_TTL_MAX; /* pulld renews it before it expires (people.c) */
    rc = ctl_submit_local(call, rec);
out:
    free(rec);
    return rc;
}

int
ctl_h_profile_show(struct ctl_call *call, const struct ctl_request *req)
{
    struct ctl_server *srv = call->srv;
    char text[NAMES_PETNAME_MAX + 1], who[NAMES_LABEL_MAX];
    uint8_t author[32], id[RECORD_ID_BYTES], buf[RECORD_ENVELOPE_MAX];
    struct record *rec = NULL;
    struct envelope e;
    struct mp_open m;
    uint32_t done = 0, peers = 0;
    size_t len;
    bool mine;
    int rc;

    rc = ctl_arg_str(req, "author", NAMES_PETNAME_MAX, text, sizeof(text));
    if (rc == PULL_ERR_NOT_FOUND)
        memcpy(author, srv->n->self.pk, 32);
    else if (rc != 0)
        return ctl_arg_failed(call, rc, "author");
    else if ((rc = ctl_resolve_author(call, text, author)) != 0)
        return rc;
    mine = sodium_memcmp(author, srv->n->self.pk, 32) == 0;
    if (srv->svc.people == NULL || people_profile(srv->svc.people, author, id) != 0 ||
        node_fetch_record(srv->n, id, buf, sizeof(buf), &len) != 0) {
        if (mine)
            return ctl_fail(call, PULL_ERR_NOT_FOUND,
                            "you have no profile yet: pull profile set --name NAME");
        return ctl_fail(call, PULL_ERR_NOT_FOUND, "%s has no profile here",
                        people_full(srv->svc.people, author, who));
    }
    if ((rec = malloc(sizeof(*rec))) == NULL)
        return PULL_ERR_NOMEM;
    if ((rc = ctl_decode_env(buf, len, &e, rec)) != 0) {
        free(rec);
        return PULL_ERR_STORE;
    }
    people_dyads_of(srv->svc.people, author, &done, &peers, NULL, NULL);
    ctl_record_open(&m, ctl_begin(call, false), srv, id, rec, CTL_REC_MINE, 0);
    mp_kv_uint(&m, "author_dyads_completed", done);
    mp_kv_uint(&m, "author_dyads_counterparts", peers);
    mp_close(&m);
    ctl_send(call);
    free(rec);
    return 0;
}

/* ---- petnames ---- */

/* A petname change waiting for its commit; the reply is packed already. */
static void
name_committed(void *arg, int result)
{
    struct ctl_call *call = arg;

    if (result != 0) {
        ctl_cancel(call);
        ctl_done(call, ctl_fail(call, result, "the petname could not be stored: %s",
                                pull_strerror(result)));
        return;
    }
    ctl_send(call);
    ctl_done(call, 0);
}

/* Packs {"author", "petname", "author_name"?, "author_label", "removed"?} and answers after
 * the commit. */
static int
name_reply(struct ctl_call *call, const uint8_t author[32], const char *pet, bool removed)
{
    struct mp_open m;
    const char *name = names_name(people_names(call->srv->svc.people), author);
    char label[NAMES_LABEL_MAX];
    int rc;

    mp_open_map(&m, ctl_begin(call, false));
    ctl_kv_id(&m, "author", author);
    mp_kv_str(&m, "petname", pet);
    if (name != NULL)
        mp_kv_str(&m, "author_name", name);
    mp_kv_str(&m, "author_label", people_label(call->srv->svc.people, author, label));
    if (removed)
        mp_kv_bool(&m, "removed", true);
    mp_close(&m);
    if ((rc = node_after_commit(call->srv->n, name_committed, ctl_keep(call))) != 0) {
        ctl_done(call, 0); /* the keep */
        ctl_cancel(call);
        return rc;
    }
    return 0;
}

static int
name_args(struct ctl_call *call, const struct ctl_request *req, uint8_t author[32])
{
    char text[NAMES_PETNAME_MAX + 1];
    int rc;

    if (call->srv->svc.people == NULL)
        return ctl_fail(call, PULL_ERR_STATE, "the people service is not running");
    if ((rc = ctl_arg_str(req, "author", NAMES_PETNAME_MAX, text, sizeof(text))) != 0)
        return ctl_arg_failed(call, rc, "author");
    return ctl_resolve_author(call, text, author);
}

int
ctl_h_name_set(struct ctl_call *call, const struct ctl_request *req)
{
    char pet[NAMES_PETNAME_MAX + 1], msg[CTL_MSG_MAX];
    uint8_t author[32];
    int rc;

    if ((rc = name_args(call, req, author)) != 0)
        return rc;
    if (sodium_memcmp(author, call->srv->n->self.pk, 32) == 0)
        return ctl_fail(call, PULL_ERR_INVAL,
                        "that is you: choose your own name with pull profile set --name");
    if ((rc = ctl_arg_str(req, "petname", NAMES_PETNAME_MAX, pet, sizeof(pet))) != 0)
        return rc == PULL_ERR_NOT_FOUND
                   ? ctl_arg_failed(call, rc, "petname")
                   : ctl_fail(call, PULL_ERR_FIELD, "a petname is at most %d bytes",
                              NAMES_PETNAME_MAX);
    if ((rc = people_set_petname(call->srv->svc.people, author, pet, msg, sizeof(msg))) != 0)
        return ctl_fail(call, rc, "%s", msg);
    return name_reply(call, author, pet, false);
}

int
ctl_h_name_remove(struct ctl_call *call, const struct ctl_request *req)
{
    char old[NAMES_PETNAME_MAX + 1], msg[CTL_MSG_MAX];
    const char *pet;
    uint8_t author[32];
    int rc;

    if ((rc = name_args(call, req, author)) != 0)
        return rc;
    pet = names_petname(people_names(call->srv->svc.people), author);
    snprintf(old, sizeof(old), "%s", pet != NULL ? pet : "");
    if ((rc = people_set_petname(call->srv->svc.people, author, NULL, msg, sizeof(msg))) != 0)
        return ctl_fail(call, rc, "%s", msg);
    return name_reply(call, author, old, true);
}

struct pet_item {
    uint8_t key[32];
    const char *pet;
};

struct pet_list {
    struct pet_item *v;
    size_t n, cap;
};

static int
collect_pet(void *ctx, const uint8_t key[32], const char *pet)
{
    struct pet_list *l = ctx;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        struct pet_item *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return PULL_ERR_NOMEM;
        l->v = v;
        l->cap = cap;
    }
    memcpy(l->v[l->n].key, key, 32);
    l->v[l->n++].pet = pet;
    return 0;
}

static int
cmp_pet(const void *a, const void *b)
{
    const struct pet_item *x = a, *y = b;

    return strcmp(x->pet, y->pet);
}

int
ctl_h_names(struct ctl_call *call, const struct ctl_request *req)
{
    struct people *pp = call->srv->svc.people;
    struct pet_list l = {0};
    struct mp_open list, m;
    int rc;

    (void)req;
    if (pp != NULL && (rc = names_each_petname(people_names(pp), collect_pet, &l)) != 0) {
        free(l.v);
        return rc;
    }
    if (l.n > 1)
        qsort(l.v, l.n, sizeof(l.v[0]), cmp_pet);
    mp_open_array(&list, ctl_begin(call, false));
    for (size_t i = 0; i < l.n; i++) {
        const char *name = names_name(people_names(pp), l.v[i].key);
        mp_open_map(&m, mp_item(&list));
        ctl_kv_id(&m, "author", l.v[i].key);
        mp_kv_str(&m, "petname", l.v[i].pet);
        if (name != NULL)
            mp_kv_str(&m, "author_name", name);
        mp_close(&m);
    }
    mp_close(&list);
    ctl_send(call);
    free(l.v);
    return 0;
}
