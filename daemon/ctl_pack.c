/*
 * ctl_pack: what several control rooms use (daemon/ctl_int.h): records as result maps
 * (every map with a deferred count: no field is counted by hand), and typed args with the
 * error each failure is answered with.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ctl_int.h"
#include "daemon/people.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/log.h"
#include "lib/search.h"

void
ctl_kv_id(struct mp_open *m, const char *key, const uint8_t id[32])
{
    char t[IDENT_TEXT_LEN + 1];

    ident_to_text(id, t);
    mp_pack_str(mp_key(m, key), t, IDENT_TEXT_LEN);
}

void
ctl_kv_person(struct mp_open *m, struct ctl_server *srv, const char *prefix, const uint8_t key[32])
{
    const struct names *nm = people_names(srv->svc.people);
    const char *name = nm != NULL ? names_name(nm, key) : NULL;
    const char *pet = nm != NULL ? names_petname(nm, key) : NULL;
    char k[CTL_KEY_MAX + 1], label[NAMES_LABEL_MAX];

    snprintf(k, sizeof(k), "%s_name", prefix);
    if (name != NULL)
        mp_kv_str(m, k, name);
    if (strcmp(prefix, "author") == 0) /* CONTRACT.md: a record's "petname" */
        snprintf(k, sizeof(k), "petname");
    else
        snprintf(k, sizeof(k), "%s_petname", prefix);
    if (pet != NULL)
        mp_kv_str(m, k, pet);
    snprintf(k, sizeof(k), "%s_label", prefix);
    mp_kv_str(m, k, people_label(srv->svc.people, key, label));
}

void
ctl_record_open(struct mp_open *m, msgpack_packer *pk, struct ctl_server *srv,
                const uint8_t id[RECORD_ID_BYTES], const struct record *rec, unsigned flags,
                uint32_t score)
{
    struct node *n = srv->n;
    char slot[2 * RECORD_SLOT_BYTES + 1], handle[PEOPLE_HANDLE_TEXT];
    const char *kind = record_kind_name(rec->kind);
    struct mp_open tags;

    sodium_bin2hex(slot, sizeof(slot), rec->slot, RECORD_SLOT_BYTES);
    mp_open_map(m, pk);
    ctl_kv_id(m, "id", id);
    mp_kv_str(m, "kind", kind != NULL ? kind : "unknown");
    ctl_kv_id(m, "author", rec->author);
    mp_kv_str(m, "slot", slot);
    mp_kv_uint(m, "seq", rec->seq);
    mp_kv_str(m, "title", rec->title);
    mp_kv_str(m, "body", rec->body);
    mp_key(m, "tags");
    mp_open_array(&tags, pk);
    for (unsigned i = 0; i < rec->ntags; i++)
        mp_pack_cstr(mp_item(&tags), rec->tags[i]);
    mp_close(&tags);
    mp_kv_uint(m, "created", rec->created);
    mp_kv_uint(m, "expires", rec->expires);
    mp_kv_str(m, "location", rec->location);
    mp_kv_str(m, "terms", rec->terms);
    if (flags & CTL_REC_MINE)
        mp_kv_bool(m, "mine", sodium_memcmp(rec->author, n->self.pk, 32) == 0);
    if (score > 0)
        mp_kv_uint(m, "score", score);
    people_handle_text(rec->author, rec->slot, handle);
    mp_kv_str(m, "handle", handle);
    ctl_kv_person(m, srv, "author", rec->author); /* author_name, petname, author_label */
    if (rec->kind == RECORD_ATTESTATION) {
        static const uint8_t zero[32];
        ctl_kv_id(m, "link", rec->has_link ? rec->link : zero);
        ctl_kv_id(m, "peer", rec->has_peer ? rec->peer : zero);
        if (rec->has_peer)
            ctl_kv_person(m, srv, "peer", rec->peer);
    }
}

void
ctl_pack_record(msgpack_packer *pk, struct ctl_server *srv, const uint8_t id[RECORD_ID_BYTES],
                const struct record *rec, unsigned flags, uint32_t score)
{
    struct mp_open m;

    ctl_record_open(&m, pk, srv, id, rec, flags, score);
    mp_close(&m);
}

int
ctl_decode_env(const uint8_t *p, size_t len, struct envelope *env, struct record *rec)
{
    int rc;

    if ((rc = envelope_parse(p, len, env)) != 0)
        return rc;
    return record_decode(env->rec, env->rec_len, rec);
}

int
ctl_fetch_hit(void *ctx, uint64_t created, uint64_t id8, struct record *rec)
{
    struct node *n = ctx;
    struct pull_wb w;
    struct envelope e;
    int rc;

    wb_init(&w, RECORD_ENVELOPE_MAX);
    if ((rc = search_fetch(n->store, created, id8, &w)) == 0)
        rc = ctl_decode_env(w.p, w.len, &e, rec);
    wb_release(&w);
    return rc;
}

void
ctl_index_ready(struct node *n, uint64_t now_s)
{
    int rc;

    if (!node_index_building(n) && search_index_needs_rebuild(n->search) &&
        (rc = search_index_build(n->search, n->store, now_s)) != 0)
        log_warn("ctl: rebuilding the search index failed: %s", pull_strerror(rc));
}

int
ctl_arg_failed(struct ctl_call *call, int rc, const char *key)
{
    if (rc == PULL_ERR_NOT_FOUND)
        return ctl_fail(call, PULL_ERR_ARITY, "missing argument '%s'", key);
    return ctl_fail(call, PULL_ERR_FIELD, "bad argument '%s'", key);
}

int
ctl_opt_text(struct ctl_call *call, const struct ctl_request *req, const char *key, char *out,
             size_t outsz, size_t max, int err)
{
    char *buf = malloc(CTL_TEXT_ARG_MAX + 1);
    size_t len;
    int rc;

    if (buf == NULL)
        return PULL_ERR_NOMEM;
    rc = ctl_arg_str(req, key, CTL_TEXT_ARG_MAX, buf, CTL_TEXT_ARG_MAX + 1);
    if (rc == PULL_ERR_NOT_FOUND) {
        rc = 0;
    } else if (rc != 0) {
        rc = ctl_arg_failed(call, rc, key);
    } else if ((len = strlen(buf)) > max || len >= outsz) {
        rc = ctl_fail(call, err, "the %s is %zu bytes long: at most %zu bytes", key, len, max);
    } else {
        memcpy(out, buf, len + 1);
        rc = 1;
    }
    free(buf);
    return rc;
}

int
ctl_opt_kind(struct ctl_call *call, const struct ctl_request *req, bool offer_need, uint8_t *kind)
{
    char name[32];
    int rc = ctl_arg_str(req, "kind", 31, name, sizeof(name));

    *kind = 0;
    if (rc == PULL_ERR_NOT_FOUND)
        return 0;
    if (rc != 0 || record_kind_parse(name, kind) != 0 || *kind == RECORD_WITHDRAWN ||
        (offer_need && *kind != RECORD_OFFER && *kind != RECORD_NEED)) {
        *kind = 0;
        return ctl_fail(call, PULL_ERR_KIND, "bad argument 'kind': %s",
                        offer_need ? "offer or need" : "offer, need, profile or attestation");
    }
    return 1;
}
