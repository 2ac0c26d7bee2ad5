/*
 * names: who people are to me - the name each one chose (the title of their profile
 * record) and the petname I gave them - and how to show them and find them by name.
 *
 * Zooko's triangle: a key is secure and global but not memorable; a chosen name is
 * memorable and global but anyone can choose it; a petname is memorable and secure because
 * only I give it. So:
 *   - my petname for someone wins wherever they are shown;
 *   - a chosen name is shown alone (a "label") only while it is unique: if another author
 *     chose a name that reads the same, or one of my petnames reads like it, or it reads
 *     "you", it is shown with the key's first characters ("Ada (k3vq7a2b)"), so an
 *     impostor never looks like the person I know;
 *   - two names "read the same" when their words, folded as search folds them (lib/fold.h:
 *     case, accents, compatibility forms), are the same: "ADA", "Ada" and "Àda" do.
 * The full form, for an author field, always carries the key: "Ada (k3vq7a2b)".
 *
 * Text rules (names_check_text): valid UTF-8, 1..max bytes, at least one letter or digit,
 * no control characters and no hidden ones (bidi controls, zero-width and other invisible
 * characters, as lib/record.h's text rule 2 lists them); a name is one line. Names from
 * profiles that break them are ignored (the person shows by key), never shown.
 *
 * Petnames are unique among my petnames (as they read). Finding a person by text
 * (names_find) tries my petnames first, then chosen names (only a unique one is an answer).
 *
 * Bounds: NAMES_MAX people; memory is a small entry per person plus the names' bytes. Hash
 * tables are keyed with SipHash under the caller's random seed. Pure: no I/O. One thread.
 */
#ifndef PULL_NAMES_H
#define PULL_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAMES_NAME_MAX 64    /* bytes of a chosen name kept (longer titles are cut) */
#define NAMES_PETNAME_MAX 64 /* bytes of a petname */
#define NAMES_LABEL_MAX 96   /* a label or full form: name + " (" + 8 + ")" + NUL */
#define NAMES_MAX (1u << 18) /* people with a name or petname: ~40 MiB at most */

struct names;

/* names_check_text checks s[0..n) against the text rules above, with multiline allowing
 * \n (and \t) for longer texts (a profile's about, a message). Returns 0, PULL_ERR_FIELD
 * (empty, over max bytes, or no letter or digit), PULL_ERR_UTF8, or PULL_ERR_CONTROL (a
 * control, bidi or invisible character). */
int names_check_text(const char *s, size_t n, size_t max, bool multiline);

/* names_cp_hidden: is cp a code point that doesn't show as itself (the list of
 * lib/record.h's text rule 2)? */
bool names_cp_hidden(uint32_t cp);

/* names_new makes an empty directory; seed keys its tables (16 random bytes). */
int names_new(const uint8_t seed[static 16], struct names **out);

/* names_free frees nm; NULL does nothing. */
void names_free(struct names *nm);

/* names_set_name records the name key chose in a profile created at `created`: it
 * replaces a name from an older (or equally old) profile, not a newer one. A name that
 * breaks the text rules, or NULL, clears it (if created is not older). The name is cut to
 * NAMES_NAME_MAX bytes at a character boundary. Returns 0, PULL_ERR_QUOTA (NAMES_MAX) or
 * PULL_ERR_NOMEM. */
int names_set_name(struct names *nm, const uint8_t key[static 32], const char *name, size_t n,
                   uint64_t created);

/* names_set_petname gives key the petname pet (NULL: removes it). Returns 0,
 * PULL_ERR_EXISTS if another key has a petname that reads the same (the text rules are
 * the caller's to check first), PULL_ERR_QUOTA, PULL_ERR_NOMEM. */
int names_set_petname(struct names *nm, const uint8_t key[static 32], const char *pet);

/* names_name / names_petname return key's chosen name / my petname, or NULL. Valid until
 * the next change of nm. */
const char *names_name(const struct names *nm, const uint8_t key[static 32]);
const char *names_petname(const struct names *nm, const uint8_t key[static 32]);

/* names_label writes how key is shown where space is short (a path, a list): my petname;
 * else its chosen name if unique (above); else "name (k3vq7a2b)"; else "k3vq7a2b".
 * out has room for NAMES_LABEL_MAX bytes. Returns out. */
const char *names_label(const struct names *nm, const uint8_t key[static 32],
                        char out[static NAMES_LABEL_MAX]);

/* names_full writes the form for an author field: "petname (k3vq7a2b)", else
 * "name (k3vq7a2b)", else "k3vq7a2b". Returns out. */
const char *names_full(const struct names *nm, const uint8_t key[static 32],
                       char out[static NAMES_LABEL_MAX]);

/* names_unique reports whether key's chosen name is shown alone (unique, see above). */
bool names_unique(const struct names *nm, const uint8_t key[static 32]);

/* names_find finds the person text names: a petname of mine (as it reads), else the one
 * person whose chosen name reads like text. Returns 0 (key set), PULL_ERR_NOT_FOUND, or
 * PULL_ERR_AMBIGUOUS (several chose that name: *count says how many; give a key). count
 * may be NULL. */
int names_find(const struct names *nm, const char *text, uint8_t key[static 32], unsigned *count);

/* names_find_petname finds only among my petnames: 0 (key set) or PULL_ERR_NOT_FOUND. */
int names_find_petname(const struct names *nm, const char *text, uint8_t key[static 32]);

/* names_each_petname calls fn for every petname (in no order) until fn returns non-zero,
 * and returns that value (0 at the end). */
int names_each_petname(const struct names *nm,
                       int (*fn)(void *ctx, const uint8_t key[32], const char *pet), void *ctx);

/* names_count returns how many people have a chosen name, and *pets how many petnames. */
size_t names_count(const struct names *nm, size_t *pets);

#endif
