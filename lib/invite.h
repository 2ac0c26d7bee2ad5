/*
 * invite: the one-line invitation code of `pull invite` / `pull join`.
 *
 * A code is what a person copies from one terminal and pastes into another, so it is text
 * that survives both: "pull1-" followed by lowercase RFC 4648 base32 (no padding) of
 *
 *   flags      1 byte: bit 0 set if a network key follows (a private network); other bits 0
 *   inviter   32 bytes: the inviting node's id (its Ed25519 key)
 *   secret    16 bytes: the invite secret, random, checked by the inviter (daemon/invites.h)
 *   key       32 bytes: the network key, only if flags bit 0
 *   naddr      1 byte: 1..INVITE_ADDRS_MAX addresses where the inviter listens
 *   addresses  naddr times: 1 byte length (1..INVITE_ADDR_MAX), then "HOST:PORT" in ASCII
 *   check      4 bytes: the first 4 bytes of BLAKE2b-128 of "pull/invite/v1" || all above
 *
 * The "1" of the prefix is the format's version: a later format takes "pull2-". The check
 * catches a mistyped or lost character before anything is dialed (a random change passes it
 * once in 2^32); base32 decoding is canonical (lib/ident.h), so one text per code. Decoding
 * is bounded: the text is at most INVITE_TEXT_MAX characters, every length is checked
 * against what remains, and nothing is allocated.
 *
 * The code holds secrets (the network key, the invite secret): callers wipe struct invite
 * with invite_wipe and never log a code.
 */
#ifndef PULL_INVITE_H
#define PULL_INVITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INVITE_PREFIX "pull1-"
#define INVITE_SECRET_BYTES 16
#define INVITE_ADDRS_MAX 4
#define INVITE_ADDR_MAX 64 /* bytes of one "HOST:PORT" */
#define INVITE_CHECK_BYTES 4
#define INVITE_TEXT_MAX 640 /* characters of a code, prefix included (and room to spare) */
#define INVITE_BYTES_MAX                                                                           \
    (1 + 32 + INVITE_SECRET_BYTES + 32 + 1 + INVITE_ADDRS_MAX * (1 + INVITE_ADDR_MAX) +            \
     INVITE_CHECK_BYTES)

struct invite {
    bool private_net;        /* network_key holds a private network's key */
    uint8_t network_key[32]; /* zero when !private_net: the public network */
    uint8_t inviter[32];
    uint8_t secret[INVITE_SECRET_BYTES];
    size_t naddrs;
    char addrs[INVITE_ADDRS_MAX][INVITE_ADDR_MAX + 1]; /* "HOST:PORT", NUL-ended */
};

/* How a text failed to decode, so the CLI can say which mistake it was. */
enum invite_bad {
    INVITE_OK = 0,
    INVITE_BAD_PREFIX,  /* does not start with "pull1-" (nor "pullN-") */
    INVITE_BAD_VERSION, /* "pullN-" with N other than 1: made by another version of pull */
    INVITE_BAD_CHAR,    /* a character that base32 does not have */
    INVITE_BAD_LENGTH,  /* too short or too long to be a code */
    INVITE_BAD_CHECK,   /* the checksum does not match: a typo */
    INVITE_BAD_CONTENT, /* the checksum matches but a field is invalid */
};

/* invite_encode writes inv as a code and a NUL into out (outlen bytes, INVITE_TEXT_MAX + 1
 * is always enough). Returns the number of characters, or PULL_ERR_INVAL if a field is
 * invalid (no address, an address too long or not "HOST:PORT"). */
int invite_encode(const struct invite *inv, char *out, size_t outlen);

/* invite_decode parses text (leading and trailing white space ignored, either case) into
 * inv. Returns 0, or PULL_ERR_INVAL with *bad saying why and inv wiped. */
int invite_decode(const char *text, struct invite *inv, enum invite_bad *bad);

/* invite_bad_str: a one-line explanation of bad, for a person. */
const char *invite_bad_str(enum invite_bad bad);

/* invite_addr_ok reports whether s[0..len) is an address a code may hold: "HOST:PORT" of
 * printable ASCII without spaces or '@', HOST not empty, PORT 1..65535 in decimal. */
bool invite_addr_ok(const char *s, size_t len);

/* invite_wipe clears inv (sodium_memzero). */
void invite_wipe(struct invite *inv);

#endif
