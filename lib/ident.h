/*
 * ident: Ed25519 identities, domain-separated signatures, and the text form of keys.
 *
 * A node's and a person's id is its Ed25519 public key. Its text form is lowercase RFC 4648
 * base32 without padding: 52 characters for 32 bytes. Users may type any unique prefix of
 * 6 or more characters (like git hashes); ident_prefix_parse turns such a prefix into the
 * bit prefix that store lookups search for.
 *
 * Every signature in pull covers a domain tag followed by the message ("pull/record/v1" ||
 * bytes), never the bare bytes, so a signature made for one purpose can't be replayed as
 * another. The secret key never leaves struct ident; ident_wipe zeroes it with
 * sodium_memzero. Key files hold the 32-byte seed, are created with O_EXCL|O_NOFOLLOW and
 * mode 0600, and are refused on load if group or others can read them.
 *
 * ident_generate, ident_save and ident_load (lib/ident_file.c) reach the system (its RNG,
 * files) and are in pullcore; the rest is pure and in pullbase, for proto/ to use.
 */
#ifndef PULL_IDENT_H
#define PULL_IDENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDENT_PK_BYTES 32
#define IDENT_SK_BYTES 64
#define IDENT_SIG_BYTES 64
#define IDENT_TEXT_LEN 52      /* base32 characters of a 32-byte key or id */
#define IDENT_SHORT_LEN 8      /* characters shown by the CLI */
#define IDENT_PREFIX_MIN 6     /* shortest prefix accepted from users */

struct ident {
    uint8_t pk[IDENT_PK_BYTES];
    uint8_t sk[IDENT_SK_BYTES]; /* libsodium layout: seed || pk */
};

/* ident_generate makes a new random identity. */
int ident_generate(struct ident *id);

/* ident_from_seed derives the identity of a 32-byte seed (tests, simulator). */
int ident_from_seed(struct ident *id, const uint8_t seed[static 32]);

/* ident_save writes the seed to path, creating it with O_EXCL|O_NOFOLLOW and mode 0600.
 * Returns PULL_ERR_EXISTS if the file exists, PULL_ERR_IO on other failures. */
int ident_save(const struct ident *id, const char *path);

/* ident_load reads a key file. Returns PULL_ERR_PERM if the file is readable or writable by
 * group or others (the message to show says so: chmod 600), PULL_ERR_NOT_FOUND if missing,
 * PULL_ERR_BAD_KEY if its content is not a key. */
int ident_load(const char *path, struct ident *id);

/* ident_wipe zeroes the secret key (and the public key). */
void ident_wipe(struct ident *id);

/* ident_sign signs domain || msg (domain is a NUL-terminated tag, its NUL not signed). */
int ident_sign(const struct ident *id, const char *domain, const uint8_t *msg, size_t len,
               uint8_t sig[static IDENT_SIG_BYTES]);

/* ident_verify checks sig over domain || msg with public key pk. Returns 0 or
 * PULL_ERR_BAD_SIG (also for low-order or non-canonical keys). */
int ident_verify(const uint8_t pk[static IDENT_PK_BYTES], const char *domain,
                 const uint8_t *msg, size_t len, const uint8_t sig[static IDENT_SIG_BYTES]);

/* ident_to_text writes the 52-character base32 form of a 32-byte key or id and a NUL. */
void ident_to_text(const uint8_t key[static 32], char out[static IDENT_TEXT_LEN + 1]);

/* ident_from_text parses exactly 52 base32 characters (case-insensitive) into 32 bytes.
 * Returns PULL_ERR_INVAL on any other input. */
int ident_from_text(const char *s, uint8_t key[static 32]);

/* ident_short writes the first IDENT_SHORT_LEN characters of the text form and a NUL. */
void ident_short(const uint8_t key[static 32], char out[static IDENT_SHORT_LEN + 1]);

/* A prefix of the text form, as bits: the first nbits bits of bytes. */
struct ident_prefix {
    uint8_t bytes[32];
    unsigned nbits;
};

/* ident_prefix_parse parses a prefix of IDENT_PREFIX_MIN..52 base32 characters. Returns
 * PULL_ERR_INVAL if it is shorter, longer, or not base32. */
int ident_prefix_parse(const char *s, struct ident_prefix *p);

/* ident_prefix_match reports whether key starts with the prefix. */
bool ident_prefix_match(const struct ident_prefix *p, const uint8_t key[static 32]);

/* ident_b32_encode writes the lowercase, unpadded RFC 4648 base32 form of n bytes and a NUL
 * to out, which must hold (8 * n + 4) / 5 + 1 bytes. Returns the number of characters. */
size_t ident_b32_encode(const uint8_t *p, size_t n, char *out);

/* ident_b32_decode parses len base32 characters (either case, no padding) into out, which
 * holds max bytes. The unused low bits of the last character must be zero, so every byte
 * string has exactly one text form. Returns the number of bytes or PULL_ERR_INVAL. */
int ident_b32_decode(const char *s, size_t len, uint8_t *out, size_t max);

#endif
