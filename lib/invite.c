/* invite: the invitation code's text form (invite.h is the manual). */
#include "lib/invite.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "lib/err.h"
#include "lib/ident.h"

#define FLAG_PRIVATE 0x01
#define CHECK_DOMAIN "pull/invite/v1"

static void
checksum(const uint8_t *p, size_t n, uint8_t out[INVITE_CHECK_BYTES])
{
    crypto_generichash_state st;
    uint8_t h[16];

    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    crypto_generichash_update(&st, (const uint8_t *)CHECK_DOMAIN, strlen(CHECK_DOMAIN));
    crypto_generichash_update(&st, p, n);
    crypto_generichash_final(&st, h, sizeof(h));
    memcpy(out, h, INVITE_CHECK_BYTES);
}

bool
invite_addr_ok(const char *s, size_t len)
{
    size_t colon = len, digits;
    unsigned long port = 0;

    if (len < 3 || len > INVITE_ADDR_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '@')
            return false;
        if (s[i] == ':')
            colon = i;
    }
    if (colon == 0 || colon >= len - 1)
        return false;
    digits = len - colon - 1;
    if (digits > 5)
        return false;
    for (size_t i = colon + 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        port = port * 10 + (unsigned long)(s[i] - '0');
    }
    return port >= 1 && port <= 65535 && s[colon + 1] != '0';
}

void
invite_wipe(struct invite *inv)
{
    sodium_memzero(inv, sizeof(*inv));
}

int
invite_encode(const struct invite *inv, char *out, size_t outlen)
{
    uint8_t b[INVITE_BYTES_MAX];
    size_t n = 0, plen = strlen(INVITE_PREFIX), chars;
    int rc = PULL_ERR_INVAL;

    if (outlen > 0)
        out[0] = '\0';
    if (inv->naddrs == 0 || inv->naddrs > INVITE_ADDRS_MAX)
        goto out;
    b[n++] = inv->private_net ? FLAG_PRIVATE : 0;
    memcpy(b + n, inv->inviter, 32);
    n += 32;
    memcpy(b + n, inv->secret, INVITE_SECRET_BYTES);
    n += INVITE_SECRET_BYTES;
    if (inv->private_net) {
        memcpy(b + n, inv->network_key, 32);
        n += 32;
    }
    b[n++] = (uint8_t)inv->naddrs;
    for (size_t i = 0; i < inv->naddrs; i++) {
        size_t len = strnlen(inv->addrs[i], sizeof(inv->addrs[i]));
        if (!invite_addr_ok(inv->addrs[i], len))
            goto out;
        b[n++] = (uint8_t)len;
        memcpy(b + n, inv->addrs[i], len);
        n += len;
    }
    checksum(b, n, b + n);
    n += INVITE_CHECK_BYTES;
    chars = (8 * n + 4) / 5;
    if (plen + chars + 1 > outlen)
        goto out;
    memcpy(out, INVITE_PREFIX, plen);
    ident_b32_encode(b, n, out + plen);
    rc = (int)(plen + chars);
out:
    sodium_memzero(b, sizeof(b));
    return rc;
}

const char *
invite_bad_str(enum invite_bad bad)
{
    switch (bad) {
    case INVITE_OK:
        return "valid";
    case INVITE_BAD_PREFIX:
        return "not an invite code (a code starts with " INVITE_PREFIX
               "; `pull invite` on the inviting node prints one)";
    case INVITE_BAD_VERSION:
        return "an invite code of another version of pull (this one reads " INVITE_PREFIX " codes)";
    case INVITE_BAD_CHAR:
        return "the invite code has a character it cannot hold (letters a-z and digits 2-7 "
               "only): a typo? copy it again";
    case INVITE_BAD_LENGTH:
        return "the invite code is cut short or too long: copy the whole line again";
    case INVITE_BAD_CHECK:
        return "the invite code has a typo (its checksum does not match): copy it again";
    case INVITE_BAD_CONTENT:
        return "the invite code is damaged (a field is invalid): ask for a new one";
    }
    return "invalid invite code";
}

/* is_space: the white space a paste may bring around a code. */
static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int
invite_decode(const char *text, struct invite *inv, enum invite_bad *bad)
{
    uint8_t b[INVITE_BYTES_MAX], check[INVITE_CHECK_BYTES];
    const char *s = text, *e;
    size_t len, plen = strlen(INVITE_PREFIX), n, pos = 0;
    int got;

    invite_wipe(inv);
    *bad = INVITE_BAD_PREFIX;
    while (*s != '\0' && is_space(*s))
        s++;
    len = strnlen(s, INVITE_TEXT_MAX + 1);
    e = s + len;
    while (e > s && is_space(e[-1]))
        e--;
    len = (size_t)(e - s);
    if (len > INVITE_TEXT_MAX) {
        *bad = INVITE_BAD_LENGTH;
        return PULL_ERR_INVAL;
    }
    if (len < 6 || strncasecmp(s, "pull", 4) != 0) {
        *bad = INVITE_BAD_PREFIX;
        return PULL_ERR_INVAL;
    }
    if (strncasecmp(s, INVITE_PREFIX, plen) != 0) {
        /* "pullN-...": another version's code */
        size_t i = 4;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        *bad = i > 4 && i < len && s[i] == '-' ? INVITE_BAD_VERSION : INVITE_BAD_PREFIX;
        return PULL_ERR_INVAL;
    }
    s += plen;
    len -= plen;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7'))) {
            *bad = INVITE_BAD_CHAR;
            return PULL_ERR_INVAL;
        }
    }
    /* a length base32 cannot have is a character lost or added; the shortest code holds
     * flags, inviter, secret, one address of 3 characters and the check */
    if (len % 8 == 1 || len % 8 == 3 || len % 8 == 6 || len * 5 / 8 > sizeof(b) ||
        len * 5 / 8 < 1 + 32 + INVITE_SECRET_BYTES + 1 + 1 + 3 + INVITE_CHECK_BYTES) {
        *bad = INVITE_BAD_LENGTH;
        return PULL_ERR_INVAL;
    }
    if ((got = ident_b32_decode(s, len, b, sizeof(b))) < 0) {
        /* the unused bits of the last character are not zero: that character was changed */
        *bad = INVITE_BAD_CHECK;
        sodium_memzero(b, sizeof(b));
        return PULL_ERR_INVAL;
    }
    n = (size_t)got - INVITE_CHECK_BYTES;
    checksum(b, n, check);
    if (sodium_memcmp(check, b + n, INVITE_CHECK_BYTES) != 0) {
        *bad = INVITE_BAD_CHECK;
        goto bad;
    }
    *bad = INVITE_BAD_CONTENT;
    if ((b[pos] & ~FLAG_PRIVATE) != 0)
        goto bad;
    inv->private_net = (b[pos++] & FLAG_PRIVATE) != 0;
    memcpy(inv->inviter, b + pos, 32);
    pos += 32;
    memcpy(inv->secret, b + pos, INVITE_SECRET_BYTES);
    pos += INVITE_SECRET_BYTES;
    if (inv->private_net) {
        if (n - pos < 32 + 1)
            goto bad;
        memcpy(inv->network_key, b + pos, 32);
        pos += 32;
    }
    if (n - pos < 1)
        goto bad;
    inv->naddrs = b[pos++];
    if (inv->naddrs == 0 || inv->naddrs > INVITE_ADDRS_MAX)
        goto bad;
    for (size_t i = 0; i < inv->naddrs; i++) {
        size_t alen;
        if (n - pos < 1)
            goto bad;
        alen = b[pos++];
        if (alen > n - pos || !invite_addr_ok((const char *)b + pos, alen))
            goto bad;
        memcpy(inv->addrs[i], b + pos, alen);
        inv->addrs[i][alen] = '\0';
        pos += alen;
    }
    if (pos != n)
        goto bad;
    sodium_memzero(b, sizeof(b));
    *bad = INVITE_OK;
    return 0;
bad:
    sodium_memzero(b, sizeof(b));
    invite_wipe(inv);
    return PULL_ERR_INVAL;
}
