/*
 * syncer_peers: the peers the engine remembers in order to dial them again, as the node
 * shows them (syncer.h, "what the node shows"). The rules that use them are syncer.c's.
 */
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "proto/syncer_int.h"

/* in_boot: is key one of the bootstrap lines? */
static bool
in_boot(const struct syncer *e, const uint8_t key[32])
{
    for (size_t i = 0; i < e->nboot; i++) {
        if (memcmp(e->boot[i].key, key, 32) == 0)
            return true;
    }
    return false;
}

/* saved_seen: when key was last seen according to the persisted peers (0: not among them). */
static uint64_t
saved_seen(const struct syncer *e, const uint8_t key[32])
{
    for (size_t i = 0; i < e->nsaved; i++) {
        if (memcmp(e->saved[i].key, key, 32) == 0)
            return e->saved[i].seen_s;
    }
    return 0;
}

size_t
syncer_known_count(const struct syncer *e)
{
    size_t n = e->nboot;

    for (size_t i = 0; i < e->nsaved; i++)
        n += !in_boot(e, e->saved[i].key);
    return n;
}

int
syncer_known_at(const struct syncer *e, size_t i, struct syncer_known_info *out)
{
    const struct known *k = NULL;

    memset(out, 0, sizeof(*out));
    if (i < e->nboot) {
        k = &e->boot[i];
        out->bootstrap = true;
        out->seen_s = saved_seen(e, k->key);
    } else {
        i -= e->nboot;
        for (size_t j = 0; j < e->nsaved && k == NULL; j++) {
            if (in_boot(e, e->saved[j].key))
                continue;
            if (i-- == 0)
                k = &e->saved[j];
        }
        if (k == NULL)
            return PULL_ERR_NOT_FOUND;
        out->seen_s = k->seen_s;
    }
    memcpy(out->key, k->key, 32);
    snprintf(out->addr, sizeof(out->addr), "%s", k->addr);
    return 0;
}

uint64_t
syncer_next_rejoin(const struct syncer *e, uint64_t now_ms)
{
    if (gossip_active_count(e->g) > 0)
        return 0;
    if (e->rejoin_at != 0)
        return e->rejoin_at > now_ms ? e->rejoin_at : now_ms;
    /* alone since the last timeout: the next one plans it one gap ahead */
    return now_ms + (e->rejoin_gap != 0 ? e->rejoin_gap : SYNCER_REJOIN_MIN_MS);
}
