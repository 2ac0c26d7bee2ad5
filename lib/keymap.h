/*
 * keymap: a hash map from 32-byte keys (public keys, record ids) to 32-bit values, for
 * tables that strangers fill: open addressing keyed with SipHash under a random seed, so
 * chosen keys can't pile up in one place. Deletions leave tombstones, swept when the table
 * is rebuilt (it grows or shrinks with what it holds).
 *
 * The map keeps a copy of each key. Pure: memory from the C library, no I/O, one thread.
 */
#ifndef PULL_KEYMAP_H
#define PULL_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keymap;

/* keymap_new makes an empty map; seed keys its hash (16 random bytes). Returns 0 or
 * PULL_ERR_NOMEM. */
int keymap_new(const uint8_t seed[static 16], struct keymap **out);

/* keymap_free frees m; NULL does nothing. */
void keymap_free(struct keymap *m);

/* keymap_put sets key's value (adding key or replacing its value). Returns 0 or
 * PULL_ERR_NOMEM (the map is then unchanged). */
int keymap_put(struct keymap *m, const uint8_t key[static 32], uint32_t value);

/* keymap_get sets *value (may be NULL) to key's value and returns true, or returns false. */
bool keymap_get(const struct keymap *m, const uint8_t key[static 32], uint32_t *value);

/* keymap_del removes key; returns true if it was there. */
bool keymap_del(struct keymap *m, const uint8_t key[static 32]);

/* keymap_count returns how many keys the map holds. */
size_t keymap_count(const struct keymap *m);

/* keymap_each calls fn for every (key, value) in no particular order until fn returns
 * non-zero, and returns that value (0 at the end). fn must not change the map. */
int keymap_each(const struct keymap *m, int (*fn)(void *ctx, const uint8_t key[32], uint32_t value),
                void *ctx);

#endif
