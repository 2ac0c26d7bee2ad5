#include "lib/ident.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

/* Messages up to this size (domain tag included) are assembled on the stack, so verifying
 * a record (at most 4096 bytes behind a 14-byte tag) never allocates. */
#define IDENT_STACK_MSG (4096 + 256)

static const char b32_alphabet[32] = "abcdefghijklmnopqrstuvwxyz234567";

static int
sodium_ready(void)
{
    return sodium_init() < 0 ? PULL_ERR_CRYPTO : 0;
}

int
ident_from_seed(struct ident *id, const uint8_t seed[static 32])
{
    int rc;

    memset(id, 0, sizeof(*id));
    if ((rc = sodium_ready()) != 0)
        return rc;
    if (crypto_sign_ed25519_seed_keypair(id->pk, id->sk, seed) != 0) {
        ident_wipe(id);
        return PULL_ERR_CRYPTO;
    }
    return 0;
}

void
ident_wipe(struct ident *id)
{
    sodium_memzero(id, sizeof(*id));
}

/* Lays domain || msg out in buf (stack) or a heap block (*heap, freed by the caller). */
static int
assemble(const char *domain, const uint8_t *msg, size_t len, uint8_t *buf, size_t bufsz,
         uint8_t **heap, uint8_t **out, size_t *outlen)
{
    size_t dlen;
    uint8_t *m;

    *heap = NULL;
    *out = NULL;
    *outlen = 0;
    if (domain == NULL || (msg == NULL && len > 0))
        return PULL_ERR_INVAL;
    dlen = strlen(domain);
    if (len > SIZE_MAX - dlen)
        return PULL_ERR_TOO_BIG;
    if (dlen + len <= bufsz) {
        m = buf;
    } else {
        if ((m = malloc(dlen + len)) == NULL)
            return PULL_ERR_NOMEM;
        *heap = m;
    }
    memcpy(m, domain, dlen);
    if (len > 0)
        memcpy(m + dlen, msg, len);
    *out = m;
    *outlen = dlen + len;
    return 0;
}

int
ident_sign(const struct ident *id, const char *domain, const uint8_t *msg, size_t len,
           uint8_t sig[static IDENT_SIG_BYTES])
{
    uint8_t buf[IDENT_STACK_MSG];
    uint8_t *heap = NULL, *m;
    size_t mlen;
    int rc;

    memset(sig, 0, IDENT_SIG_BYTES);
    if ((rc = assemble(domain, msg, len, buf, sizeof(buf), &heap, &m, &mlen)) != 0)
        goto out;
    if (crypto_sign_ed25519_detached(sig, NULL, m, mlen, id->sk) != 0) {
        memset(sig, 0, IDENT_SIG_BYTES);
        rc = PULL_ERR_CRYPTO;
    }
out:
    free(heap);
    return rc;
}

int
ident_verify(const uint8_t pk[static IDENT_PK_BYTES], const char *domain, const uint8_t *msg,
             size_t len, const uint8_t sig[static IDENT_SIG_BYTES])
{
    uint8_t buf[IDENT_STACK_MSG];
    uint8_t *heap = NULL, *m;
    size_t mlen;
    int rc;

    if ((rc = assemble(domain, msg, len, buf, sizeof(buf), &heap, &m, &mlen)) != 0)
        goto out;
    /* libsodium refuses small-order and non-canonical keys and R, and non-canonical S. */
    if (crypto_sign_ed25519_verify_detached(sig, m, mlen, pk) != 0)
        rc = PULL_ERR_BAD_SIG;
out:
    free(heap);
    return rc;
}

size_t
ident_b32_encode(const uint8_t *p, size_t n, char *out)
{
    size_t o = 0;
    unsigned acc = 0, bits = 0;

    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = b32_alphabet[(acc >> bits) & 31];
        }
        acc &= (1u << bits) - 1; /* keep only the bits not yet written */
    }
    if (bits > 0)
        out[o++] = b32_alphabet[(acc << (5 - bits)) & 31];
    out[o] = '\0';
    return o;
}

/* Value of a base32 character (either case), or -1. */
static int
b32_value(char c)
{
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

int
ident_b32_decode(const char *s, size_t len, uint8_t *out, size_t max)
{
    size_t o = 0;
    unsigned acc = 0, bits = 0;

    /* Without padding, lengths 1, 3 and 6 (mod 8) leave a partial byte: not an encoding. */
    switch (len % 8) {
    case 1:
    case 3:
    case 6:
        return PULL_ERR_INVAL;
    }
    if (len / 8 > (size_t)INT32_MAX / 5 || len * 5 / 8 > max)
        return PULL_ERR_INVAL;
    for (size_t i = 0; i < len; i++) {
        int v = b32_value(s[i]);
        if (v < 0)
            return PULL_ERR_INVAL;
        acc = (acc << 5) | (unsigned)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* The unused low bits of the last character must be zero, so each byte string has
     * exactly one text form. */
    if (acc != 0)
        return PULL_ERR_INVAL;
    return (int)o;
}

void
ident_to_text(const uint8_t key[static 32], char out[static IDENT_TEXT_LEN + 1])
{
    ident_b32_encode(key, 32, out);
}

int
ident_from_text(const char *s, uint8_t key[static 32])
{
    uint8_t tmp[32];
    int n;

    memset(key, 0, 32);
    if (s == NULL || strnlen(s, IDENT_TEXT_LEN + 1) != IDENT_TEXT_LEN)
        return PULL_ERR_INVAL;
    n = ident_b32_decode(s, IDENT_TEXT_LEN, tmp, sizeof(tmp));
    if (n != 32)
        return PULL_ERR_INVAL;
    memcpy(key, tmp, 32);
    return 0;
}

void
ident_short(const uint8_t key[static 32], char out[static IDENT_SHORT_LEN + 1])
{
    char full[IDENT_TEXT_LEN + 1];

    ident_to_text(key, full);
    memcpy(out, full, IDENT_SHORT_LEN);
    out[IDENT_SHORT_LEN] = '\0';
}

int
ident_prefix_parse(const char *s, struct ident_prefix *p)
{
    size_t len;
    unsigned acc = 0, bits = 0, o = 0;

    memset(p, 0, sizeof(*p));
    if (s == NULL)
        return PULL_ERR_INVAL;
    len = strnlen(s, IDENT_TEXT_LEN + 1);
    if (len < IDENT_PREFIX_MIN || len > IDENT_TEXT_LEN)
        return PULL_ERR_INVAL;
    for (size_t i = 0; i < len; i++) {
        int v = b32_value(s[i]);
        if (v < 0) {
            memset(p, 0, sizeof(*p));
            return PULL_ERR_INVAL;
        }
        acc = (acc << 5) | (unsigned)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            p->bytes[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (len == IDENT_TEXT_LEN) {
        /* 52 characters carry 260 bits: the last 4 are padding and must be zero. */
        if (acc != 0) {
            memset(p, 0, sizeof(*p));
            return PULL_ERR_INVAL;
        }
        p->nbits = 256;
        return 0;
    }
    if (bits > 0)
        p->bytes[o] = (uint8_t)(acc << (8 - bits)); /* the partial byte, high bits first */
    p->nbits = (unsigned)(5 * len);
    return 0;
}

bool
ident_prefix_match(const struct ident_prefix *p, const uint8_t key[static 32])
{
    unsigned full = p->nbits / 8, rest = p->nbits % 8;
    uint8_t mask;

    if (p->nbits > 256)
        return false;
    if (memcmp(p->bytes, key, full) != 0)
        return false;
    if (rest == 0)
        return true;
    mask = (uint8_t)(0xff << (8 - rest));
    return (p->bytes[full] & mask) == (key[full] & mask);
}
