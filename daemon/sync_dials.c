/*
 * sync_dials: what the dials to each peer did lately (sync_int.h tells the rooms): the
 * failures net reported, said once at the default log level for the peers the node is
 * meant to reach, with when it tries again, and kept for `pull peers` and `pull doctor`.
 *
 * Why warn. A node whose bootstrap peer has a typo in its address, or sits on another
 * network key, would otherwise just stay alone: the failures were debug lines. A warning
 * per failing peer, repeated only when the failure changes or every SYNC_WARN_AGAIN_MS,
 * tells the person without filling the log while the engine retries every few seconds.
 */
#include "daemon/sync_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

/* ---------------------------------------------------------------- the rows */

static struct sync_dial *
dial_find(const struct sync *s, const uint8_t key[32])
{
    for (size_t i = 0; i < s->ndials; i++) {
        if (memcmp(s->dials[i].key, key, 32) == 0)
            return &s->dials[i];
    }
    return NULL;
}

const struct sync_dial *
sync_dial_find(const struct sync *s, const uint8_t key[32])
{
    return dial_find(s, key);
}

/* dial_row returns key's row, made if needed (the row failed or seen longest ago goes when
 * the table is full), or NULL out of memory. */
static struct sync_dial *
dial_row(struct sync *s, const uint8_t key[32])
{
    struct sync_dial *d = dial_find(s, key);

    if (d != NULL)
        return d;
    if (s->dials == NULL && (s->dials = calloc(SYNC_DIALS_MAX, sizeof(*s->dials))) == NULL)
        return NULL;
    if (s->ndials < SYNC_DIALS_MAX) {
        d = &s->dials[s->ndials++];
    } else {
        d = &s->dials[0];
        for (size_t i = 1; i < s->ndials; i++) {
            const struct sync_dial *o = &s->dials[i];
            uint64_t a = o->last_fail_s > o->last_ok_s ? o->last_fail_s : o->last_ok_s;
            uint64_t b = d->last_fail_s > d->last_ok_s ? d->last_fail_s : d->last_ok_s;
            if (a < b)
                d = &s->dials[i];
        }
    }
    memset(d, 0, sizeof(*d));
    memcpy(d->key, key, 32);
    return d;
}

void
sync_dials_free(struct sync *s)
{
    free(s->dials);
    s->dials = NULL;
    s->ndials = 0;
    free(s->snap);
    s->snap = NULL;
    s->nsnap = 0;
}

/* ---------------------------------------------------------------- when next */

/* in_gossip: is key among gossip's peers (connections and the passive view)? */
static bool
in_gossip(const struct sync *s, const uint8_t key[32])
{
    struct gossip_peer_info pi;

    for (size_t i = 0; syncer_peer_at(s->e, i, &pi) == 0; i++) {
        if (memcmp(pi.key, key, 32) == 0)
            return true;
    }
    return false;
}

/* known_role: "bootstrap peer", "known peer" (a session before), or NULL (neither). */
static const char *
known_role(const struct sync *s, const uint8_t key[32])
{
    struct syncer_known_info k;

    for (size_t i = 0; syncer_known_at(s->e, i, &k) == 0; i++) {
        if (memcmp(k.key, key, 32) == 0)
            return k.bootstrap ? "bootstrap peer" : "known peer";
    }
    return NULL;
}

uint64_t
sync_next_retry_s(const struct sync *s, const uint8_t key[32])
{
    uint64_t now = sync_now_ms(s), at;

    if (s->stopped || in_gossip(s, key) || known_role(s, key) == NULL)
        return 0;
    if ((at = syncer_next_rejoin(s->e, now)) == 0)
        return 0;
    return node_now_s(s->n) + (at - now + 999) / 1000;
}

/* ---------------------------------------------------------------- events */

void
sync_dial_failed(struct sync *s, const uint8_t key[32], const char *addr, int err,
                 enum net_fail kind, const char *reason)
{
    uint64_t now_s = node_now_s(s->n), now = sync_now_ms(s), at;
    const char *role = known_role(s, key);
    char who[IDENT_SHORT_LEN + 1], next[96], since[64];
    struct sync_dial *d = dial_row(s, key);

    ident_short(key, who);
    if (d == NULL) {
        log_info("dial %s failed: %s", who, reason);
        return;
    }
    if (d->fails == 0)
        d->first_fail_s = now_s;
    d->fails++;
    d->err = err;
    d->kind = kind;
    d->last_fail_s = now_s;
    snprintf(d->addr, sizeof(d->addr), "%s", addr != NULL ? addr : "");
    snprintf(d->reason, sizeof(d->reason), "%s", reason);
    if (role == NULL) {
        /* a peer gossip learned of, or one `pull connect` was told about already */
        log_info("dial %s failed: %s", who, reason);
        return;
    }
    if (d->warned_ms != 0 && d->warned_kind == kind && now - d->warned_ms < SYNC_WARN_AGAIN_MS) {
        log_debug("dial %s failed again: %s", who, reason);
        return;
    }
    d->warned_ms = now != 0 ? now : 1;
    d->warned_kind = kind;
    at = syncer_next_rejoin(s->e, now);
    if (at != 0)
        snprintf(next, sizeof(next), "next try in %llu s",
                 (unsigned long long)((at - now + 999) / 1000));
    else
        snprintf(next, sizeof(next), "tried again when this node has no other peer");
    if (d->fails > 1)
        snprintf(since, sizeof(since), " (%u failed dials in %llu s)", (unsigned)d->fails,
                 (unsigned long long)(now_s - d->first_fail_s));
    else
        since[0] = '\0';
    log_warn("cannot reach %s %s: %s; %s%s", role, who, reason, next, since);
}

void
sync_dial_up(struct sync *s, const uint8_t key[32], const char *addr)
{
    struct sync_dial *d = dial_find(s, key);
    char who[IDENT_SHORT_LEN + 1];

    if (d == NULL && (d = dial_row(s, key)) == NULL)
        return;
    if (d->warned_ms != 0) {
        ident_short(key, who);
        log_info("%s at %s: connected again, after %u failed dial(s)", who, addr,
                 (unsigned)d->fails);
    }
    d->fails = 0;
    d->warned_ms = 0;
    d->reason[0] = '\0';
    snprintf(d->addr, sizeof(d->addr), "%s", addr != NULL ? addr : "");
    d->last_ok_s = node_now_s(s->n);
}
