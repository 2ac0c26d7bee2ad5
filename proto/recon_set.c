/*
 * recon_set: the local set of ids that reconciliation serves (recon.h, "struct recon_set";
 * proto/recon_int.h says which room holds what): the cache of its first K coded symbols
 * and its estimator samples, updated on every add and remove, and the journal of changes
 * kept while sessions are pinned, so that each session sees one snapshot.
 */
#include "proto/recon.h"

#include <string.h>

#include "lib/err.h"
#include "proto/recon_int.h"

/* ======================================================================== the set */

int
recon_set_new(const struct recon_set_cfg *cfg, struct recon_set **out)
{
    struct recon_set *s = NULL;
    uint32_t k = cfg ? cfg->cache_symbols : RECON_CACHE_DEFAULT;
    uint32_t jmax = cfg && cfg->journal_max ? cfg->journal_max : RECON_JOURNAL_DEFAULT;
    const struct pull_env *env = cfg ? cfg->env : NULL;
    int rc = 0;

    *out = NULL;
    if (k > RECON_MAX_CREDIT) {
        rc = PULL_ERR_INVAL;
        goto out;
    }
    if (k == 0)
        k = 1; /* symbol 0 is always cached: it answers "equal?" */
    if ((s = env_calloc(env, 1, sizeof(*s))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    s->env = env;
    if ((s->dense = env_calloc(env, k, sizeof(*s->dense))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    s->k = k;
    s->sp_first = riblt_est_first(k);
    s->jr_max = jmax < 2 ? 2 : jmax;
    *out = s;
    s = NULL; /* transferred */
out:
    recon_set_free(s);
    return rc;
}

void
recon_set_free(struct recon_set *s)
{
    if (s == NULL)
        return;
    env_free(s->env, s->dense);
    env_free(s->env, s->jr);
    env_free(s->env, s->pins);
    env_free(s->env, s);
}

static int
set_change(struct recon_set *s, const uint8_t id[RIBLT_ID_LEN], int dir)
{
    struct riblt_acc acc = {s->dense, 0, s->k, s->sparse, s->sp_first};

    if (s->npins > 0) {
        if (s->jr_len == s->jr_max) {
            /* Forget the oldest half; sessions pinned before jr_base become stale and
             * fail with PULL_ERR_AGAIN when they next need symbols. */
            size_t drop = s->jr_len / 2;
            memmove(s->jr, s->jr + drop, (s->jr_len - drop) * sizeof(*s->jr));
            s->jr_len -= drop;
            s->jr_base += drop;
        }
        if (s->jr_len == s->jr_cap) {
            size_t cap = s->jr_cap ? s->jr_cap * 2 : 64;
            struct jent *p;
            if (cap > s->jr_max)
                cap = s->jr_max;
            if ((p = env_realloc(s->env, s->jr, cap * sizeof(*p))) == NULL)
                return PULL_ERR_NOMEM;
            s->jr = p;
            s->jr_cap = cap;
        }
        memcpy(s->jr[s->jr_len].id, id, RIBLT_ID_LEN);
        s->jr[s->jr_len].dir = dir;
        s->jr_len++;
    } else {
        s->jr_base++; /* empty journal: jr_base follows seq */
    }
    riblt_acc_apply(&acc, id, riblt_hash(riblt_default_key, id), dir);
    s->seq++;
    s->n += (uint64_t)(int64_t)dir;
    return 0;
}

int
recon_set_add(struct recon_set *s, const uint8_t id[RIBLT_ID_LEN])
{
    return set_change(s, id, 1);
}

int
recon_set_remove(struct recon_set *s, const uint8_t id[RIBLT_ID_LEN])
{
    return set_change(s, id, -1);
}

uint64_t
recon_set_size(const struct recon_set *s)
{
    return s->n;
}

uint32_t
recon_set_cache_symbols(const struct recon_set *s)
{
    return s->k;
}

int
recon_set_symbol(const struct recon_set *s, uint32_t i, struct riblt_sym *out)
{
    if (i >= s->k)
        return PULL_ERR_INVAL;
    *out = s->dense[i];
    return 0;
}

static int
add_visit(void *vctx, const uint8_t id[RIBLT_ID_LEN])
{
    return recon_set_add(vctx, id);
}

int
recon_set_add_all(struct recon_set *s, recon_each_fn each, void *ctx)
{
    return each(ctx, add_visit, s);
}

uint64_t
recon_set_pin(struct recon_set *s)
{
    if (s->npins == s->pins_cap) {
        size_t cap = s->pins_cap ? s->pins_cap * 2 : 4;
        uint64_t *p = env_realloc(s->env, s->pins, cap * sizeof(*p));
        if (p == NULL)
            return UINT64_MAX; /* caller treats as NOMEM */
        s->pins = p;
        s->pins_cap = cap;
    }
    s->pins[s->npins++] = s->seq;
    return s->seq;
}

void
recon_set_unpin(struct recon_set *s, uint64_t pin)
{
    uint64_t min = s->seq;
    size_t i;

    for (i = 0; i < s->npins; i++) {
        if (s->pins[i] == pin) {
            s->pins[i] = s->pins[--s->npins];
            break;
        }
    }
    for (i = 0; i < s->npins; i++)
        if (s->pins[i] < min)
            min = s->pins[i];
    if (min > s->jr_base) {
        size_t drop = (size_t)(min - s->jr_base);
        memmove(s->jr, s->jr + drop, (s->jr_len - drop) * sizeof(*s->jr));
        s->jr_len -= drop;
        s->jr_base = min;
    }
}

/* Undoes, in acc, every change made to the set after the snapshot `pin`. */
int
recon_set_unapply_since(const struct recon_set *s, uint64_t pin, const uint8_t key[RIBLT_KEY_LEN],
                        const struct riblt_acc *acc)
{
    if (pin < s->jr_base)
        return PULL_ERR_AGAIN;
    for (size_t i = (size_t)(pin - s->jr_base); i < s->jr_len; i++)
        riblt_acc_apply(acc, s->jr[i].id, riblt_hash(key, s->jr[i].id), -s->jr[i].dir);
    return 0;
}
