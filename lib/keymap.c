/*
 * keymap: 32-byte keys to 32-bit values (keymap.h is the manual). Linear probing over an
 * array of entries; a state byte per entry says empty, used or deleted.
 */
#include "lib/keymap.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"

enum { E_EMPTY = 0, E_USED = 1, E_DEAD = 2 };

struct kentry {
    uint8_t key[32];
    uint32_t value;
    uint8_t state;
};

struct keymap {
    uint8_t seed[16];
    struct kentry *e;
    size_t cap, used, dead; /* cap is a power of two */
};

static size_t
home(const struct keymap *m, const uint8_t key[32])
{
    uint8_t h[crypto_shorthash_BYTES];

    crypto_shorthash(h, key, 32, m->seed);
    return (size_t)be64dec(h) & (m->cap - 1);
}

static int
rebuild(struct keymap *m, size_t cap)
{
    struct kentry *e = calloc(cap, sizeof(*e)), *old = m->e;
    size_t oldcap = m->cap;

    if (e == NULL)
        return PULL_ERR_NOMEM;
    m->e = e;
    m->cap = cap;
    m->used = m->dead = 0;
    for (size_t i = 0; i < oldcap; i++) {
        size_t s;
        if (old[i].state != E_USED)
            continue;
        for (s = home(m, old[i].key); e[s].state != E_EMPTY; s = (s + 1) & (cap - 1))
            ;
        e[s] = old[i];
        m->used++;
    }
    sodium_memzero(old, oldcap * sizeof(*old));
    free(old);
    return 0;
}

int
keymap_new(const uint8_t seed[static 16], struct keymap **out)
{
    struct keymap *m = calloc(1, sizeof(*m));

    *out = NULL;
    if (m == NULL)
        return PULL_ERR_NOMEM;
    memcpy(m->seed, seed, 16);
    m->cap = 16;
    if ((m->e = calloc(m->cap, sizeof(*m->e))) == NULL) {
        free(m);
        return PULL_ERR_NOMEM;
    }
    *out = m;
    return 0;
}

void
keymap_free(struct keymap *m)
{
    if (m == NULL)
        return;
    free(m->e);
    free(m);
}

/* The entry of key, or NULL; *slot (if not NULL) is where to insert it if absent. */
static struct kentry *
find(const struct keymap *m, const uint8_t key[32], size_t *slot)
{
    size_t s = home(m, key), first_dead = SIZE_MAX;

    for (;; s = (s + 1) & (m->cap - 1)) {
        struct kentry *e = &m->e[s];
        if (e->state == E_EMPTY) {
            if (slot != NULL)
                *slot = first_dead != SIZE_MAX ? first_dead : s;
            return NULL;
        }
        if (e->state == E_DEAD) {
            if (first_dead == SIZE_MAX)
                first_dead = s;
            continue;
        }
        if (memcmp(e->key, key, 32) == 0)
            return e;
    }
}

int
keymap_put(struct keymap *m, const uint8_t key[static 32], uint32_t value)
{
    struct kentry *e;
    size_t s;

    if ((e = find(m, key, NULL)) != NULL) {
        e->value = value;
        return 0;
    }
    /* keep at least half the slots empty so that probes stay short */
    if ((m->used + m->dead + 1) * 2 > m->cap &&
        rebuild(m, (m->used + 1) * 4 > m->cap ? m->cap * 2 : m->cap) != 0)
        return PULL_ERR_NOMEM;
    (void)find(m, key, &s);
    e = &m->e[s];
    if (e->state == E_DEAD)
        m->dead--;
    memcpy(e->key, key, 32);
    e->value = value;
    e->state = E_USED;
    m->used++;
    return 0;
}

bool
keymap_get(const struct keymap *m, const uint8_t key[static 32], uint32_t *value)
{
    const struct kentry *e = find(m, key, NULL);

    if (e != NULL && value != NULL)
        *value = e->value;
    return e != NULL;
}

bool
keymap_del(struct keymap *m, const uint8_t key[static 32])
{
    struct kentry *e = find(m, key, NULL);

    if (e == NULL)
        return false;
    e->state = E_DEAD;
    m->used--;
    m->dead++;
    /* a table mostly empty shrinks (a failed shrink only keeps it larger) */
    if (m->cap > 64 && m->used * 8 < m->cap)
        (void)rebuild(m, m->cap / 2);
    return true;
}

size_t
keymap_count(const struct keymap *m)
{
    return m->used;
}

int
keymap_each(const struct keymap *m, int (*fn)(void *ctx, const uint8_t key[32], uint32_t value),
            void *ctx)
{
    for (size_t i = 0; i < m->cap; i++) {
        int rc;
        if (m->e[i].state == E_USED && (rc = fn(ctx, m->e[i].key, m->e[i].value)) != 0)
            return rc;
    }
    return 0;
}
