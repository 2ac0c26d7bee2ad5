/*
 * ctl_search: the control room of finding records - "search" (ranked, on the node's
 * in-memory index, lib/search.h; only the hits are read from the store) and "watch" (a
 * stream of the records, matches and dyad events the node's observers announce after each
 * commit), proto/ctl.h.
 *
 * A watch is a stream call (ctl_stream): its first reply is {"event": "ready"}, then one
 * reply per event (more=true), and its final reply {"event": "end"} when the server stops.
 * If the client goes away the watch just ends. Each event's result is packed once and
 * copied into every watcher's reply.
 *
 * A watcher that falls behind lags, it is not buffered for: when its unsent events would
 * pass ctl_watch_queue_bytes, or those of all watchers ctl_watch_total_bytes
 * (ctl_stream_room), its events are left out and counted until its queue has drained to
 * half; then it hears {"event": "lagged", "dropped": N} and the events after it (a search
 * finds what it missed). One that reads nothing at all is closed by the transport after
 * ctl_idle_ms without a completed write. So a slow watcher costs at most its queue, and
 * all of them together the total, whatever arrives.
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
#include "lib/match.h"
#include "lib/search.h"
#include "lib/store.h"

#define CTL_SEARCH_DEFAULT 20
#define CTL_ARG_WORD_MAX 1024

struct ctl_watch {
    struct ctl_call *call;
    struct match_query q;
    bool filtered; /* words, kind or tags given */
    bool mine;     /* only match and dyad events (matches filtered by the query if any) */
    uint64_t dropped; /* events left out since it fell behind (0: it has not) */
    struct ctl_watch *next, *prev;
};

/* What an event is, for watch_send. */
enum watch_ev { WEV_RECORD, WEV_MATCH, WEV_DYAD };

struct ctl_search {
    struct ctl_watch *watches;
    size_t nwatches;
    bool observing;
    /* my live offers and needs, for match events (reloaded after a record of mine) */
    struct record *mine;
    uint8_t (*mine_ids)[RECORD_ID_BYTES];
    size_t nmine, cap_mine;
    bool mine_valid;
};

/* ---- The query ------------------------------------------------------------------------- */

/* Reads words, kind, tags (and author when allowed) into q. Returns 0 or the error. */
static int
read_query(struct ctl_call *call, const struct ctl_request *req, struct match_query *q, bool author,
           bool *filtered)
{
    struct ctl_array it;
    char tags[RECORD_TAGS_MAX][RECORD_TAG_MAX + 1];
    uint32_t ntags = 0;
    int rc;

    match_query_init(q);
    *filtered = false;
    rc = ctl_arg_array(req, "words", 256, &it);
    if (rc == 0) {
        const char *s;
        uint32_t len;
        char word[CTL_ARG_WORD_MAX + 1];
        while ((rc = ctl_array_next_str(&it, CTL_ARG_WORD_MAX, &s, &len)) == 1) {
            if (memchr(s, '\0', len) != NULL) {
                rc = PULL_ERR_FIELD;
                break;
            }
            memcpy(word, s, len);
            word[len] = '\0';
            if (match_query_add_words(q, word) != 0)
                return ctl_fail(call, PULL_ERR_TOO_BIG, "too many words: at most %d",
                                MATCH_WORDS_MAX);
        }
        if (rc < 0)
            return ctl_arg_failed(call, PULL_ERR_FIELD, "words");
        *filtered = *filtered || q->nwords > 0;
    } else if (rc != PULL_ERR_NOT_FOUND) {
        return ctl_arg_failed(call, rc, "words");
    }
    if ((rc = ctl_opt_kind(call, req, false, &q->kind)) < 0)
        return rc;
    *filtered = *filtered || q->kind != 0;
    rc = ctl_arg_strs(req, "tags", RECORD_TAGS_MAX, RECORD_TAG_MAX, &tags[0][0], sizeof(tags[0]),
                      &ntags);
    if (rc == 0) {
        for (uint32_t i = 0; i < ntags; i++) {
            if (match_query_add_tag(q, tags[i]) != 0)
                return ctl_arg_failed(call, PULL_ERR_FIELD, "tags");
        }
        *filtered = *filtered || ntags > 0;
    } else if (rc != PULL_ERR_NOT_FOUND) {
        return ctl_arg_failed(call, rc, "tags");
    }
    if (author) {
        /* a petname, a key prefix or a name: the author it names (ctl_resolve_author) */
        char a[NAMES_PETNAME_MAX + 1], full[IDENT_TEXT_LEN + 1];
        uint8_t key[32];
        rc = ctl_arg_str(req, "author", NAMES_PETNAME_MAX, a, sizeof(a));
        if (rc == 0) {
            if (strlen(a) != IDENT_TEXT_LEN) {
                if ((rc = ctl_resolve_author(call, a, key)) != 0)
                    return rc; /* its message is recorded */
                ident_to_text(key, full);
                snprintf(a, sizeof(a), "%s", full);
            }
            if (match_query_set_author(q, a) != 0)
                rc = PULL_ERR_FIELD;
        }
        if (rc != 0 && rc != PULL_ERR_NOT_FOUND)
            return ctl_arg_failed(call, rc, "author");
    }
    return 0;
}

/* ---- search ------------------------------------------------------------------------------ */

int
ctl_h_search(struct ctl_call *call, const struct ctl_request *req)
{
    struct node *n = call->srv->n;
    struct match_query q;
    struct search_hit *hits = NULL;
    struct record *rec = NULL;
    struct pull_wb env;
    struct mp_open top, list;
    struct people_within within = {call->srv->svc.people, 0};
    uint64_t limit = CTL_SEARCH_DEFAULT, hops;
    uint32_t nh = 0, total = 0, dropped = 0;
    bool filtered, want_total = false, count_only = false;
    int rc;

    if ((rc = read_query(call, req, &q, true, &filtered)) != 0)
        return rc;
    /* nearer authors rank a little higher, once someone is at a distance from me */
    if (people_ranking(call->srv->svc.people)) {
        q.trust = people_rank;
        q.trust_ctx = call->srv->svc.people;
    }
    rc = ctl_arg_uint(req, "trusted", TRUST_HOPS_MAX, &hops);
    if (rc == 0) {
        if (within.p == NULL)
            return ctl_fail(call, PULL_ERR_STATE, "the people service is not running");
        within.max = (unsigned)hops;
        q.allow = people_within;
        q.allow_ctx = &within;
    } else if (rc != PULL_ERR_NOT_FOUND) {
        return ctl_fail(call, PULL_ERR_FIELD, "bad argument 'trusted': 0 to %d hops",
                        TRUST_HOPS_MAX);
    }
    rc = ctl_arg_uint(req, "limit", SEARCH_LIMIT_MAX, &limit);
    if (rc == PULL_ERR_NOT_FOUND)
        limit = CTL_SEARCH_DEFAULT;
    else if (rc != 0 || limit == 0)
        return ctl_fail(call, PULL_ERR_FIELD, "bad argument 'limit': 1 to %d", SEARCH_LIMIT_MAX);
    /* "total": the records and the number of matches; "count": that number alone */
    if (((rc = ctl_arg_bool(req, "total", &want_total)) != 0 && rc != PULL_ERR_NOT_FOUND) ||
        ((rc = ctl_arg_bool(req, "count", &count_only)) != 0 && rc != PULL_ERR_NOT_FOUND))
        return ctl_fail(call, PULL_ERR_FIELD, "bad argument 'total' or 'count': a bool");
    q.now_s = node_now_s(n);
    ctl_index_ready(n, q.now_s);
    wb_init(&env, RECORD_ENVELOPE_MAX);
    if ((hits = calloc(limit, sizeof(*hits))) == NULL || (rec = malloc(sizeof(*rec))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    if ((rc = search_index_rank(n->search, &q, count_only ? 0 : (uint32_t)limit, ctl_fetch_hit, n,
                                hits, &nh, &total)) != 0)
        goto out;
    if (count_only) {
        mp_open_map(&top, ctl_begin(call, false));
        mp_kv_uint(&top, "total", total);
        if (node_index_building(n))
            mp_kv_bool(&top, "partial", true);
        mp_close(&top);
        ctl_send(call);
        goto out;
    }
    /* a result over CTL_REPLY_MAX becomes ctl_send's TOO_BIG reply ("ask for fewer") */
    if (want_total) {
        mp_open_map(&top, ctl_begin(call, false));
        mp_open_array(&list, mp_key(&top, "records"));
    } else {
        mp_open_array(&list, ctl_begin(call, false));
    }
    for (uint32_t i = 0; i < nh; i++) {
        struct envelope e;
        wb_reset(&env);
        if (search_fetch(n->store, hits[i].created, hits[i].id8, &env) != 0 ||
            ctl_decode_env(env.p, env.len, &e, rec) != 0 ||
            /* The index compares 64 bits of an author prefix: the record has the last word. */
            match_score(&q, rec) == 0) {
            dropped++;
            continue;
        }
        ctl_pack_record(mp_item(&list), call->srv, e.id, rec, CTL_REC_MINE, hits[i].score);
    }
    mp_close(&list);
    if (want_total) {
        mp_kv_uint(&top, "total", total - dropped);
        if (node_index_building(n)) /* the index holds only part of the store so far */
            mp_kv_bool(&top, "partial", true);
        mp_close(&top);
    }
    ctl_send(call);
    node_trim_pages_soon(n); /* the hits' pages leave pulld's RSS once the reply is out */
out:
    free(hits);
    free(rec);
    wb_release(&env);
    return rc;
}

/* ---- watch ------------------------------------------------------------------------------- */

static void
watch_unlink(struct ctl_search *s, struct ctl_watch *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        s->watches = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    s->nwatches--;
}

static void
watch_stop(struct ctl_call *call, bool server_stopping)
{
    struct ctl_watch *w = call->arg;
    struct mp_open m;

    watch_unlink(call->srv->search, w);
    free(w);
    call->arg = NULL;
    if (server_stopping) {
        mp_open_map(&m, ctl_begin(call, false));
        mp_kv_str(&m, "event", "end");
        mp_close(&m);
        ctl_send(call);
    }
    ctl_done(call, 0);
}

/* Is the watcher of call keeping up? One that fell behind catches up once its queue has
 * drained to half (and the watchers' total has room): it hears how many events it missed
 * and gets events again. Returns false while it is behind (or gone). */
static bool
watch_caught_up(struct ctl_call *call, size_t queued)
{
    struct ctl_watch *w = call->arg;
    struct mp_open m;

    if (w->dropped == 0)
        return true;
    if (queued > call->queue_max / 2 || !ctl_stream_room(call, 64))
        return false;
    mp_open_map(&m, ctl_begin(call, true));
    mp_kv_str(&m, "event", "lagged");
    mp_kv_uint(&m, "dropped", w->dropped);
    mp_close(&m);
    w->dropped = 0;
    ctl_send(call); /* had room: the client stays */
    return !ctl_client_closing(call);
}

static void
watch_written(struct ctl_call *call, size_t queued)
{
    (void)watch_caught_up(call, queued);
}

static const struct ctl_stream_ops watch_ops = {watch_written, watch_stop};

int
ctl_h_watch(struct ctl_call *call, const struct ctl_request *req)
{
    struct ctl_search *s = call->srv->search;
    struct ctl_watch *w;
    struct mp_open m;
    bool mine = false;
    int rc;

    if (ctl_streaming(call, &watch_ops))
        return ctl_fail(call, PULL_ERR_STATE, "this connection is already watching");
    if ((w = calloc(1, sizeof(*w))) == NULL)
        return PULL_ERR_NOMEM;
    if ((rc = read_query(call, req, &w->q, false, &w->filtered)) == 0 &&
        (rc = ctl_arg_bool(req, "mine", &mine)) != 0 && rc != PULL_ERR_NOT_FOUND)
        rc = ctl_arg_failed(call, rc, "mine");
    if (rc != 0 && rc != PULL_ERR_NOT_FOUND) {
        free(w);
        return rc;
    }
    w->mine = mine;
    w->call = ctl_stream(call, &watch_ops, w, call->srv->n->cfg.limits.ctl_watch_queue_bytes);
    w->next = s->watches;
    if (s->watches != NULL)
        s->watches->prev = w;
    s->watches = w;
    s->nwatches++;
    mp_open_map(&m, ctl_begin(call, true));
    mp_kv_str(&m, "event", "ready");
    mp_close(&m);
    ctl_send(call); /* may drop the client: then the watch has ended already */
    return 0;
}

/* Sends one packed event result to the watchers that want it:
 *   a new record (rec): the watchers without "mine" whose query matches it;
 *   a match (rec is the new record): the "mine" watchers (filtered: if their query matches
 *     it) and the watchers that are not filtered;
 *   a dyad event: the "mine" watchers and those that are not filtered. */
static void
watch_send(struct ctl_server *srv, const struct pull_wb *result, enum watch_ev ev,
           const struct record *rec)
{
    struct ctl_watch *w, *next;
    uint64_t now = node_now_s(srv->n);

    for (w = srv->search->watches; w != NULL; w = next) {
        next = w->next; /* a watcher dropped while sending is unlinked: only itself */
        if (ctl_client_closing(w->call))
            continue;
        switch (ev) {
        case WEV_RECORD:
            w->q.now_s = now;
            if (w->mine || match_score(&w->q, rec) == 0)
                continue;
            break;
        case WEV_MATCH:
            if (w->mine && w->filtered) {
                w->q.now_s = now;
                if (match_score(&w->q, rec) == 0)
                    continue;
            } else if (!w->mine && w->filtered) {
                continue;
            }
            break;
        case WEV_DYAD:
            if (w->filtered && !w->mine)
                continue;
            break;
        }
        /* behind: left out (told by watch_written), never buffered beyond the limits */
        if (!watch_caught_up(w->call, ctl_queued(w->call)) ||
            !ctl_stream_room(w->call, result->len + 32)) {
            w->dropped++;
            srv->watch_dropped++;
            continue;
        }
        ctl_send_packed(w->call, true, result->p, result->len);
    }
}

/* My live offers and needs, loaded when needed after a record of mine changed. */
static int
mine_one(void *ctx, const uint8_t id[RECORD_ID_BYTES], const uint8_t *env, size_t len)
{
    struct ctl_server *srv = ctx;
    struct ctl_search *s = srv->search;
    struct record *rec = &s->mine[s->nmine];
    struct envelope e;

    if (ctl_decode_env(env, len, &e, rec) != 0 || rec->expires <= node_now_s(srv->n) ||
        (rec->kind != RECORD_OFFER && rec->kind != RECORD_NEED))
        return 0;
    memcpy(s->mine_ids[s->nmine], id, RECORD_ID_BYTES);
    s->nmine++;
    if (s->nmine >= s->cap_mine)
        return 1;
    return 0;
}

static void
mine_load(struct ctl_server *srv)
{
    struct ctl_search *s = srv->search;
    struct node *n = srv->n;
    uint32_t live = 0, tomb = 0;
    size_t cap;

    if (s->mine_valid)
        return;
    free(s->mine);
    free(s->mine_ids);
    s->mine = NULL;
    s->mine_ids = NULL;
    s->nmine = 0;
    if (store_author_count(n->store, n->self.pk, &live, &tomb) != 0 || live == 0) {
        s->mine_valid = true;
        return;
    }
    cap = (size_t)live + tomb;
    if (cap > 2 * STORE_MAX_PER_AUTHOR_DEFAULT)
        cap = 2 * STORE_MAX_PER_AUTHOR_DEFAULT;
    s->mine = malloc(cap * sizeof(*s->mine));
    s->mine_ids = malloc(cap * sizeof(*s->mine_ids));
    s->cap_mine = cap;
    if (s->mine == NULL || s->mine_ids == NULL)
        return;
    store_iter_author(n->store, n->self.pk, mine_one, srv);
    s->mine_valid = true;
}

/* A new or updated record, to the watchers whose query it matches. */
static void
emit_record(struct ctl_server *srv, const uint8_t id[RECORD_ID_BYTES], const struct record *rec)
{
    struct pull_wb result;
    msgpack_packer pk;
    struct mp_open m;

    if (srv->search->nwatches == 0)
        return;
    wb_init(&result, 0);
    mp_packer_init(&pk, &result);
    mp_open_map(&m, &pk);
    mp_kv_str(&m, "event", "record");
    ctl_pack_record(mp_key(&m, "record"), srv, id, rec, CTL_REC_MINE, 0);
    mp_close(&m);
    if (wb_error(&result) == 0)
        watch_send(srv, &result, WEV_RECORD, rec);
    wb_release(&result);
}

/* A need related to one of my offers, or an offer related to one of my needs: one event
 * per new record, naming every record of mine it relates to. */
static void
emit_matches(struct ctl_server *srv, const uint8_t id[RECORD_ID_BYTES], const struct record *rec)
{
    struct ctl_search *s = srv->search;
    struct node *n = srv->n;
    struct pull_wb result;
    msgpack_packer pk;
    struct mp_open map, list;
    size_t first = SIZE_MAX, count = 0;

    if ((rec->kind != RECORD_OFFER && rec->kind != RECORD_NEED) ||
        sodium_memcmp(rec->author, n->self.pk, 32) == 0)
        return;
    mine_load(srv);
    for (size_t i = 0; i < s->nmine; i++) {
        const struct record *m = &s->mine[i];
        bool related = rec->kind == RECORD_NEED ? m->kind == RECORD_OFFER && match_related(m, rec)
                                                : m->kind == RECORD_NEED && match_related(rec, m);
        char a[IDENT_SHORT_LEN + 1], b[IDENT_SHORT_LEN + 1];

        if (!related || m->expires <= node_now_s(n))
            continue;
        ident_short(id, a);
        ident_short(s->mine_ids[i], b);
        log_info("match: %s %s \"%.60s\" relates to your %s %s \"%.60s\"",
                 record_kind_name(rec->kind), a, rec->title, record_kind_name(m->kind), b,
                 m->title);
        if (count++ == 0)
            first = i;
    }
    if (count == 0 || s->nwatches == 0)
        return;
    wb_init(&result, 0);
    mp_packer_init(&pk, &result);
    mp_open_map(&map, &pk);
    mp_kv_str(&map, "event", "match");
    /* the record without "mine": bool - a match event's "mine" is my (first) record's id,
     * "mine_ids" all of them, "mine_title" the first one's title */
    ctl_pack_record(mp_key(&map, "record"), srv, id, rec, 0, 0);
    ctl_kv_id(&map, "mine", s->mine_ids[first]);
    mp_kv_str(&map, "mine_title", s->mine[first].title);
    mp_key(&map, "mine_ids");
    mp_open_array(&list, map.pk);
    for (size_t i = 0; i < s->nmine; i++) {
        const struct record *m = &s->mine[i];
        char t[IDENT_TEXT_LEN + 1];
        if (m->expires <= node_now_s(n) ||
            !(rec->kind == RECORD_NEED ? m->kind == RECORD_OFFER && match_related(m, rec)
                                       : m->kind == RECORD_NEED && match_related(rec, m)))
            continue;
        ident_to_text(s->mine_ids[i], t);
        mp_pack_cstr(mp_item(&list), t);
    }
    mp_close(&list);
    mp_close(&map);
    if (wb_error(&result) == 0)
        watch_send(srv, &result, WEV_MATCH, rec);
    wb_release(&result);
}

static void
obs_stored(void *ctx, const struct node_stored *st)
{
    struct ctl_server *srv = ctx;

    if (sodium_memcmp(st->rec->author, srv->n->self.pk, 32) == 0)
        srv->search->mine_valid = false;
    if (st->rec->kind == RECORD_WITHDRAWN || srv->stopped)
        return;
    emit_record(srv, st->env->id, st->rec);
    emit_matches(srv, st->env->id, st->rec);
}

/* A dyad of mine changed: {"event": "dyad", "dyad": dyad}. */
static void
obs_event(void *ctx, enum node_event ev, const uint8_t *dyad, size_t len)
{
    struct ctl_server *srv = ctx;
    struct pull_rd rd;
    struct pull_wb result;
    msgpack_packer pk;
    struct mp_open m;

    if (ev != NODE_EV_DYAD || srv->search->nwatches == 0 || srv->stopped)
        return;
    rd_init(&rd, dyad, len);
    if (mp_peek(&rd) != MP_MAP || ctl_value_check(&rd, 2) != 0 || rd_left(&rd) != 0)
        return;
    wb_init(&result, 0);
    mp_packer_init(&pk, &result);
    mp_open_map(&m, &pk);
    mp_kv_str(&m, "event", "dyad");
    mp_key(&m, "dyad");
    wb_put(&result, dyad, len); /* one value, checked above */
    mp_close(&m);
    if (wb_error(&result) == 0)
        watch_send(srv, &result, WEV_DYAD, NULL);
    wb_release(&result);
}

/* ---- The room's life ----------------------------------------------------------------------- */

int
ctl_search_start(struct ctl_server *srv)
{
    struct node_observer obs = {obs_stored, NULL, obs_event, srv};
    int rc;

    if ((srv->search = calloc(1, sizeof(*srv->search))) == NULL)
        return PULL_ERR_NOMEM;
    if ((rc = node_observe(srv->n, &obs)) != 0)
        return rc;
    srv->search->observing = true;
    return 0;
}

void
ctl_search_stop(struct ctl_server *srv)
{
    if (srv->search != NULL && srv->search->observing) {
        node_unobserve(srv->n, srv);
        srv->search->observing = false;
    }
}

void
ctl_search_free(struct ctl_server *srv)
{
    if (srv->search == NULL)
        return;
    free(srv->search->mine);
    free(srv->search->mine_ids);
    free(srv->search);
    srv->search = NULL;
}

size_t
ctl_search_watchers(const struct ctl_server *srv)
{
    return srv->search != NULL ? srv->search->nwatches : 0;
}
