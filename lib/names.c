/*
 * names: chosen names and petnames (names.h is the manual).
 *
 * People are entries of an array found by key through an open addressing table (SipHash
 * of the key). Every name and petname also has a "reading": its words folded as search
 * folds them (lib/fold.h) and joined by single spaces; a second table counts, per reading,
 * how many people chose it and how many of my petnames read so (entries with both counts
 * at zero are deleted, so renaming over and over leaves nothing behind).
 */
#include "lib/names.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/fold.h"
#include "lib/ident.h"

#define SLOT_EMPTY 0u
#define SLOT_TOMB UINT32_MAX
#define READING_MAX (4 * NAMES_NAME_MAX + NAMES_NAME_MAX) /* folded words and spaces */

struct nentry {
    uint8_t key[32];
    char *name, *name_rd; /* chosen name and its reading, or NULL */
    char *pet, *pet_rd;   /* my petname and its reading, or NULL */
    uint64_t created;     /* of the profile the name came from */
    bool has_created;
};

struct reading {
    char *rd;
    uint32_t names, pets;
};

struct tab {
    uint32_t *slot;
    size_t cap, used, tombs;
};

struct names {
    uint8_t seed[16];
    struct nentry *e;
    size_t n, cap;
    struct tab by_key;
    struct reading *rd;
    size_t nrd, caprd;
    uint32_t rd_free; /* a free reading entry + 1 (its rd is NULL), 0: none */
    struct tab by_rd;
    size_t nnames, npets;
};

/* ---- text rules ---- */

bool
names_cp_hidden(uint32_t cp)
{
    return cp == 0xad || cp == 0x34f || cp == 0x61c || cp == 0x115f || cp == 0x1160 ||
           cp == 0x17b4 || cp == 0x17b5 || (cp >= 0x180b && cp <= 0x180f) ||
           (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
           (cp >= 0x2060 && cp <= 0x206f) || cp == 0x3164 || cp == 0xfeff || cp == 0xffa0 ||
           (cp >= 0xfff0 && cp <= 0xfffb) || cp == 0xfffe || cp == 0xffff ||
           (cp >= 0x1bca0 && cp <= 0x1bca3) || (cp >= 0x1d173 && cp <= 0x1d17a) ||
           (cp >= 0xe0000 && cp <= 0xe0fff);
}

/* Decodes one code point of valid UTF-8 at p (n bytes left); returns its length. */
static size_t
cp_at(const uint8_t *p, size_t n, uint32_t *cp)
{
    if (p[0] < 0x80 || n < 2) {
        *cp = p[0];
        return 1;
    }
    if (p[0] < 0xe0) {
        *cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
        return 2;
    }
    if (p[0] < 0xf0 || n < 4) {
        *cp = n < 3
                  ? p[0]
                  : ((uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f));
        return n < 3 ? 1 : 3;
    }
    *cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
          (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
    return 4;
}

int
names_check_text(const char *s, size_t n, size_t max, bool multiline)
{
    const uint8_t *p = (const uint8_t *)s;
    bool word = false;

    if (n == 0 || n > max)
        return PULL_ERR_FIELD;
    if (!utf8_valid(s, n))
        return PULL_ERR_UTF8;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = cp_at(p + i, n - i, &cp);
        if ((cp < 0x20 && !(multiline && (cp == '\n' || cp == '\t'))) || cp == 0x7f ||
            (cp >= 0x80 && cp <= 0x9f) || names_cp_hidden(cp))
            return PULL_ERR_CONTROL;
        word = word || fold_is_word(cp);
        i += k;
    }
    return word ? 0 : PULL_ERR_FIELD;
}

/* The reading of s[0..n): its words folded, joined by one space. Returns its length (0:
 * no word). out has READING_MAX + 1 bytes. */
static size_t
reading_of(const char *s, size_t n, char *out)
{
    size_t off = 0, len, o = 0;
    const char *tok;

    out[0] = '\0';
    while ((tok = fold_next(s, n, &off, &len)) != NULL) {
        char w[4 * NAMES_NAME_MAX + 1];
        size_t wl = fold_token(tok, len, w, sizeof(w));
        if (wl == 0)
            continue;
        if (o + (o > 0) + wl > READING_MAX)
            break;
        if (o > 0)
            out[o++] = ' ';
        memcpy(out + o, w, wl);
        o += wl;
        out[o] = '\0';
    }
    return o;
}

/* ---- tables ---- */

static uint64_t
hash_bytes(const struct names *nm, const void *p, size_t n)
{
    uint8_t h[crypto_shorthash_BYTES];

    crypto_shorthash(h, p, n, nm->seed);
    return be64dec(h);
}

static int
tab_init(struct tab *t, size_t cap)
{
    t->slot = calloc(cap, sizeof(*t->slot));
    t->cap = cap;
    t->used = t->tombs = 0;
    return t->slot == NULL ? PULL_ERR_NOMEM : 0;
}

static void
tab_put(struct tab *t, uint64_t h, uint32_t i)
{
    size_t mask = t->cap - 1, s = (size_t)h & mask;

    while (t->slot[s] != SLOT_EMPTY && t->slot[s] != SLOT_TOMB)
        s = (s + 1) & mask;
    if (t->slot[s] == SLOT_TOMB)
        t->tombs--;
    t->slot[s] = i + 1;
    t->used++;
}

static uint32_t
entry_find(const struct names *nm, const uint8_t key[32])
{
    size_t mask = nm->by_key.cap - 1, s = (size_t)hash_bytes(nm, key, 32) & mask;

    for (;; s = (s + 1) & mask) {
        uint32_t v = nm->by_key.slot[s];
        if (v == SLOT_EMPTY)
            return UINT32_MAX;
        if (memcmp(nm->e[v - 1].key, key, 32) == 0)
            return v - 1;
    }
}

static int
entry_get(struct names *nm, const uint8_t key[32], uint32_t *out)
{
    uint32_t i = entry_find(nm, key);

    if (i != UINT32_MAX) {
        *out = i;
        return 0;
    }
    if (nm->n >= NAMES_MAX)
        return PULL_ERR_QUOTA;
    if ((nm->n + 1) * 2 > nm->by_key.cap) {
        struct tab t;
        if (tab_init(&t, nm->by_key.cap * 2) != 0)
            return PULL_ERR_NOMEM;
        for (uint32_t k = 0; k < nm->n; k++)
            tab_put(&t, hash_bytes(nm, nm->e[k].key, 32), k);
        free(nm->by_key.slot);
        nm->by_key = t;
    }
    if (nm->n == nm->cap) {
        size_t cap = nm->cap ? nm->cap * 2 : 64;
        struct nentry *v = realloc(nm->e, cap * sizeof(*v));
        if (v == NULL)
            return PULL_ERR_NOMEM;
        nm->e = v;
        nm->cap = cap;
    }
    i = (uint32_t)nm->n++;
    memset(&nm->e[i], 0, sizeof(nm->e[i]));
    memcpy(nm->e[i].key, key, 32);
    tab_put(&nm->by_key, hash_bytes(nm, key, 32), i);
    *out = i;
    return 0;
}

/* The slot of reading rd in by_rd (found, or where to insert). */
static size_t
rd_slot(const struct names *nm, const char *rd, bool *found)
{
    size_t mask = nm->by_rd.cap - 1, s = (size_t)hash_bytes(nm, rd, strlen(rd)) & mask;
    size_t tomb = SIZE_MAX;

    *found = false;
    for (;; s = (s + 1) & mask) {
        uint32_t v = nm->by_rd.slot[s];
        if (v == SLOT_EMPTY)
            return tomb != SIZE_MAX ? tomb : s;
        if (v == SLOT_TOMB) {
            if (tomb == SIZE_MAX)
                tomb = s;
            continue;
        }
        if (strcmp(nm->rd[v - 1].rd, rd) == 0) {
            *found = true;
            return s;
        }
    }
}

static const struct reading *
rd_find(const struct names *nm, const char *rd)
{
    bool found;
    size_t s = rd_slot(nm, rd, &found);

    return found ? &nm->rd[nm->by_rd.slot[s] - 1] : NULL;
}

/* Makes sure one more reading fits without a failure later (tables and entry array). */
static int
rd_reserve(struct names *nm)
{
    if ((nm->by_rd.used + nm->by_rd.tombs + 1) * 2 > nm->by_rd.cap) {
        struct tab t;
        size_t cap = (nm->by_rd.used + 1) * 4 > nm->by_rd.cap ? nm->by_rd.cap * 2 : nm->by_rd.cap;
        if (tab_init(&t, cap) != 0)
            return PULL_ERR_NOMEM;
        for (uint32_t k = 0; k < nm->nrd; k++) {
            if (nm->rd[k].rd != NULL)
                tab_put(&t, hash_bytes(nm, nm->rd[k].rd, strlen(nm->rd[k].rd)), k);
        }
        free(nm->by_rd.slot);
        nm->by_rd = t;
    }
    if (nm->rd_free == 0 && nm->nrd == nm->caprd) {
        size_t cap = nm->caprd ? nm->caprd * 2 : 64;
        struct reading *v = realloc(nm->rd, cap * sizeof(*v));
        if (v == NULL)
            return PULL_ERR_NOMEM;
        nm->rd = v;
        nm->caprd = cap;
    }
    return 0;
}

/* Counts one more (delta 1) or one less (-1) chosen name or petname reading rd. Adding
 * needs rd_reserve first and a copy of rd it can keep (*copy, taken if used). */
static void
rd_count(struct names *nm, const char *rd, bool pet, int delta, char **copy)
{
    bool found;
    size_t s = rd_slot(nm, rd, &found);
    struct reading *r;
    uint32_t i;

    if (!found) {
        if (delta < 0 || copy == NULL || *copy == NULL)
            return;
        if (nm->rd_free != 0) {
            i = nm->rd_free - 1;
            nm->rd_free = nm->rd[i].names; /* the free list runs through names */
        } else {
            i = (uint32_t)nm->nrd++;
        }
        nm->rd[i] = (struct reading){*copy, 0, 0};
        *copy = NULL;
        if (nm->by_rd.slot[s] == SLOT_TOMB)
            nm->by_rd.tombs--;
        nm->by_rd.slot[s] = i + 1;
        nm->by_rd.used++;
    }
    i = nm->by_rd.slot[s] - 1;
    r = &nm->rd[i];
    if (pet)
        r->pets = (uint32_t)((int64_t)r->pets + delta);
    else
        r->names = (uint32_t)((int64_t)r->names + delta);
    if (r->names == 0 && r->pets == 0) {
        free(r->rd);
        r->rd = NULL;
        r->names = nm->rd_free;
        nm->rd_free = i + 1;
        nm->by_rd.slot[s] = SLOT_TOMB;
        nm->by_rd.used--;
        nm->by_rd.tombs++;
    }
}

/* ---- API ---- */

int
names_new(const uint8_t seed[static 16], struct names **out)
{
    struct names *nm;

    *out = NULL;
    if ((nm = calloc(1, sizeof(*nm))) == NULL)
        return PULL_ERR_NOMEM;
    memcpy(nm->seed, seed, 16);
    if (tab_init(&nm->by_key, 64) != 0 || tab_init(&nm->by_rd, 64) != 0) {
        names_free(nm);
        return PULL_ERR_NOMEM;
    }
    *out = nm;
    return 0;
}

void
names_free(struct names *nm)
{
    if (nm == NULL)
        return;
    for (size_t i = 0; i < nm->n; i++) {
        free(nm->e[i].name);
        free(nm->e[i].name_rd);
        free(nm->e[i].pet);
        free(nm->e[i].pet_rd);
    }
    for (size_t i = 0; i < nm->nrd; i++)
        free(nm->rd[i].rd);
    free(nm->e);
    free(nm->rd);
    free(nm->by_key.slot);
    free(nm->by_rd.slot);
    free(nm);
}

/* Cuts s to at most max bytes at a character boundary (valid UTF-8). */
static size_t
cut_utf8(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80)
        n--;
    return n;
}

static char *
dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

int
names_set_name(struct names *nm, const uint8_t key[static 32], const char *name, size_t n,
               uint64_t created)
{
    char rd[READING_MAX + 1], *copy = NULL, *rdcopy = NULL, *keep = NULL;
    uint32_t i;
    struct nentry *e;
    int rc = 0;

    if (name != NULL) {
        n = cut_utf8(name, n, NAMES_NAME_MAX);
        if (names_check_text(name, n, NAMES_NAME_MAX, false) != 0 || reading_of(name, n, rd) == 0)
            name = NULL;
    }
    i = entry_find(nm, key);
    if (name == NULL && i == UINT32_MAX)
        return 0; /* nothing to clear */
    if (i != UINT32_MAX && nm->e[i].has_created && created < nm->e[i].created)
        return 0; /* an older profile */
    if (name != NULL) {
        if ((copy = dup_n(name, n)) == NULL || (rdcopy = dup_n(rd, strlen(rd))) == NULL ||
            (keep = dup_n(rd, strlen(rd))) == NULL || rd_reserve(nm) != 0) {
            rc = PULL_ERR_NOMEM;
            goto out;
        }
    }
    if ((rc = entry_get(nm, key, &i)) != 0)
        goto out;
    e = &nm->e[i];
    if (e->name != NULL) {
        rd_count(nm, e->name_rd, false, -1, NULL);
        free(e->name);
        free(e->name_rd);
        e->name = e->name_rd = NULL;
        nm->nnames--;
    }
    e->created = created;
    e->has_created = true;
    if (copy != NULL) {
        /* the reading table keeps rdcopy if the reading is new; the entry keeps its own */
        rd_count(nm, rd, false, 1, &rdcopy);
        e->name = copy;
        e->name_rd = keep;
        copy = keep = NULL;
        nm->nnames++;
    }
out:
    free(copy);
    free(rdcopy);
    free(keep);
    return rc;
}

int
names_set_petname(struct names *nm, const uint8_t key[static 32], const char *pet)
{
    char rd[READING_MAX + 1], *copy = NULL, *rdcopy = NULL, *keep = NULL;
    const struct reading *r;
    uint32_t i;
    struct nentry *e;
    int rc = 0;

    i = entry_find(nm, key);
    if (pet == NULL) {
        if (i == UINT32_MAX || nm->e[i].pet == NULL)
            return 0;
        e = &nm->e[i];
        rd_count(nm, e->pet_rd, true, -1, NULL);
        free(e->pet);
        free(e->pet_rd);
        e->pet = e->pet_rd = NULL;
        nm->npets--;
        return 0;
    }
    if (reading_of(pet, strlen(pet), rd) == 0)
        return PULL_ERR_FIELD;
    if ((r = rd_find(nm, rd)) != NULL && r->pets > 0 &&
        (i == UINT32_MAX || nm->e[i].pet_rd == NULL || strcmp(nm->e[i].pet_rd, rd) != 0))
        return PULL_ERR_EXISTS;
    if ((copy = dup_n(pet, strlen(pet))) == NULL || (rdcopy = dup_n(rd, strlen(rd))) == NULL ||
        (keep = dup_n(rd, strlen(rd))) == NULL || rd_reserve(nm) != 0) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    if ((rc = entry_get(nm, key, &i)) != 0)
        goto out;
    e = &nm->e[i];
    if (e->pet != NULL) {
        rd_count(nm, e->pet_rd, true, -1, NULL);
        free(e->pet);
        free(e->pet_rd);
        nm->npets--;
    }
    rd_count(nm, rd, true, 1, &rdcopy);
    e->pet = copy;
    e->pet_rd = keep;
    copy = keep = NULL;
    nm->npets++;
out:
    free(copy);
    free(rdcopy);
    free(keep);
    return rc;
}

const char *
names_name(const struct names *nm, const uint8_t key[static 32])
{
    uint32_t i = entry_find(nm, key);

    return i == UINT32_MAX ? NULL : nm->e[i].name;
}

const char *
names_petname(const struct names *nm, const uint8_t key[static 32])
{
    uint32_t i = entry_find(nm, key);

    return i == UINT32_MAX ? NULL : nm->e[i].pet;
}

bool
names_unique(const struct names *nm, const uint8_t key[static 32])
{
    uint32_t i = entry_find(nm, key);
    const struct reading *r;

    if (i == UINT32_MAX || nm->e[i].name == NULL)
        return false;
    if (strcmp(nm->e[i].name_rd, "you") == 0)
        return false; /* "you -> you -> Lin" would be a lie */
    r = rd_find(nm, nm->e[i].name_rd);
    return r != NULL && r->names == 1 && r->pets == 0;
}

const char *
names_label(const struct names *nm, const uint8_t key[static 32], char out[static NAMES_LABEL_MAX])
{
    uint32_t i = entry_find(nm, key);
    char s[IDENT_SHORT_LEN + 1];

    ident_short(key, s);
    if (i != UINT32_MAX && nm->e[i].pet != NULL)
        snprintf(out, NAMES_LABEL_MAX, "%s", nm->e[i].pet);
    else if (i != UINT32_MAX && nm->e[i].name != NULL && names_unique(nm, key))
        snprintf(out, NAMES_LABEL_MAX, "%s", nm->e[i].name);
    else if (i != UINT32_MAX && nm->e[i].name != NULL)
        snprintf(out, NAMES_LABEL_MAX, "%s (%s)", nm->e[i].name, s);
    else
        snprintf(out, NAMES_LABEL_MAX, "%s", s);
    return out;
}

const char *
names_full(const struct names *nm, const uint8_t key[static 32], char out[static NAMES_LABEL_MAX])
{
    uint32_t i = entry_find(nm, key);
    char s[IDENT_SHORT_LEN + 1];
    const char *n = NULL;

    ident_short(key, s);
    if (i != UINT32_MAX)
        n = nm->e[i].pet != NULL ? nm->e[i].pet : nm->e[i].name;
    if (n != NULL)
        snprintf(out, NAMES_LABEL_MAX, "%s (%s)", n, s);
    else
        snprintf(out, NAMES_LABEL_MAX, "%s", s);
    return out;
}

int
names_find(const struct names *nm, const char *text, uint8_t key[static 32], unsigned *count)
{
    char rd[READING_MAX + 1];
    const struct reading *r;
    unsigned found = 0;

    if (count != NULL)
        *count = 0;
    if (reading_of(text, strlen(text), rd) == 0 || (r = rd_find(nm, rd)) == NULL)
        return PULL_ERR_NOT_FOUND;
    if (r->pets > 0) {
        for (size_t i = 0; i < nm->n; i++) {
            if (nm->e[i].pet_rd != NULL && strcmp(nm->e[i].pet_rd, rd) == 0) {
                memcpy(key, nm->e[i].key, 32);
                if (count != NULL)
                    *count = 1;
                return 0;
            }
        }
    }
    for (size_t i = 0; i < nm->n && found < 2; i++) {
        if (nm->e[i].name_rd != NULL && strcmp(nm->e[i].name_rd, rd) == 0) {
            if (found++ == 0)
                memcpy(key, nm->e[i].key, 32);
        }
    }
    if (count != NULL)
        *count = r->names;
    if (r->names == 0 || found == 0)
        return PULL_ERR_NOT_FOUND;
    return r->names > 1 ? PULL_ERR_AMBIGUOUS : 0;
}

int
names_find_petname(const struct names *nm, const char *text, uint8_t key[static 32])
{
    char rd[READING_MAX + 1];
    const struct reading *r;

    if (reading_of(text, strlen(text), rd) == 0 || (r = rd_find(nm, rd)) == NULL || r->pets == 0)
        return PULL_ERR_NOT_FOUND;
    for (size_t i = 0; i < nm->n; i++) {
        if (nm->e[i].pet_rd != NULL && strcmp(nm->e[i].pet_rd, rd) == 0) {
            memcpy(key, nm->e[i].key, 32);
            return 0;
        }
    }
    return PULL_ERR_NOT_FOUND;
}

int
names_each_petname(const struct names *nm,
                   int (*fn)(void *ctx, const uint8_t key[32], const char *pet), void *ctx)
{
    for (size_t i = 0; i < nm->n; i++) {
        int rc;
        if (nm->e[i].pet != NULL && (rc = fn(ctx, nm->e[i].key, nm->e[i].pet)) != 0)
            return rc;
    }
    return 0;
}

size_t
names_count(const struct names *nm, size_t *pets)
{
    if (pets != NULL)
        *pets = nm->npets;
    return nm->nnames;
}
