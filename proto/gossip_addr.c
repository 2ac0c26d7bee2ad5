/*
 * gossip_addr: the addresses of the gossip engine - which ones are acceptable on the wire
 * (gs_addr_ok), their port, and their address group (gs_addr_group, gossip_addr_group,
 * gossip_addr_public: what bans, evictions and the syncer's per-group limits compare).
 * Pure functions of the text; the engine's state is untouched. gossip_int.h is the manual.
 */
#include <sodium.h>
#include <string.h>

#include "proto/gossip_int.h"

bool
gs_addr_ok(const char *a, size_t n)
{
    if (n == 0 || n > GOSSIP_ADDR_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

/* host_of splits "host:port" / "[v6]:port": *host, *hlen; returns the port part or NULL. */
static const char *
host_of(const char *a, size_t n, const char **host, size_t *hlen)
{
    const char *colon;

    *host = a;
    *hlen = 0;
    if (n > 0 && a[0] == '[') {
        const char *end = memchr(a, ']', n);
        if (end == NULL || (size_t)(end - a) + 1 >= n || end[1] != ':')
            return NULL;
        *host = a + 1;
        *hlen = (size_t)(end - a - 1);
        return end + 2;
    }
    for (colon = a + n; colon > a && colon[-1] != ':'; colon--)
        ;
    if (colon == a)
        return NULL;
    *hlen = (size_t)(colon - 1 - a);
    return colon;
}

uint32_t
gs_addr_port(const char *a, size_t n)
{
    const char *host, *p = NULL;
    size_t hlen;
    uint32_t port = 0;

    if ((p = host_of(a, n, &host, &hlen)) == NULL || p == a + n)
        return 0;
    for (; p < a + n; p++) {
        if (*p < '0' || *p > '9' || (port = port * 10 + (uint32_t)(*p - '0')) > 65535)
            return 0;
    }
    return port;
}

/* parse_v4 reads a dotted quad of exactly n bytes. */
static bool
parse_v4(const char *s, size_t n, uint8_t out[4])
{
    uint32_t part = 0, k = 0, digits = 0;

    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (digits == 0 || part > 255 || k == 4)
                return false;
            out[k++] = (uint8_t)part;
            part = digits = 0;
            continue;
        }
        if (s[i] < '0' || s[i] > '9' || ++digits > 3)
            return false;
        part = part * 10 + (uint32_t)(s[i] - '0');
    }
    return k == 4;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* parse_v6 reads an IPv6 address of exactly n bytes ("::" and a trailing dotted quad
 * allowed, no zone). */
static bool
parse_v6(const char *s, size_t n, uint8_t out[16])
{
    uint8_t words[16];
    size_t nw = 0, gap = SIZE_MAX, i = 0;

    memset(out, 0, 16);
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = 0;
        i = 2;
    }
    while (i < n) {
        size_t j = i;
        uint32_t v = 0;
        while (j < n && s[j] != ':' && s[j] != '.')
            j++;
        if (j < n && s[j] == '.') { /* the last 32 bits as a dotted quad */
            if (nw > 12 || !parse_v4(s + i, n - i, words + nw))
                return false;
            nw += 4;
            break;
        }
        if (j == i || j - i > 4)
            return false;
        for (size_t k = i; k < j; k++) {
            int h = hexval(s[k]);
            if (h < 0)
                return false;
            v = v << 4 | (uint32_t)h;
        }
        if (nw > 14)
            return false;
        words[nw++] = (uint8_t)(v >> 8);
        words[nw++] = (uint8_t)v;
        i = j;
        if (i < n) {
            if (++i < n && s[i] == ':') {
                if (gap != SIZE_MAX)
                    return false;
                gap = nw;
                i++;
            } else if (i == n) {
                return false; /* a trailing single ':' */
            }
        }
    }
    if (gap == SIZE_MAX) {
        if (nw != 16)
            return false;
        memcpy(out, words, 16);
        return true;
    }
    if (nw > 14)
        return false;
    memcpy(out, words, gap);
    memcpy(out + 16 - (nw - gap), words + gap, nw - gap);
    return true;
}

void
gs_addr_group(const char *a, size_t n, uint8_t out[GS_GROUP_LEN])
{
    const char *host, *port;
    size_t hlen;
    uint8_t ip[16];
    uint32_t pn;

    memset(out, 0, GS_GROUP_LEN);
    if (a == NULL || (port = host_of(a, n, &host, &hlen)) == NULL || hlen == 0)
        return;
    pn = gs_addr_port(a, n);
    if (parse_v6(host, hlen, ip) && memcmp(ip, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) != 0) {
        bool loop = memcmp(ip, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
        bool local = (ip[0] & 0xfe) == 0xfc || (ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80);
        if (loop) {
            out[0] = 'L';
            memcpy(out + 1, ip, 16);
            out[17] = (uint8_t)(pn >> 8);
            out[18] = (uint8_t)pn;
        } else if (local) {
            out[0] = 'P';
            memcpy(out + 1, ip, 16);
        } else {
            out[0] = 6;
            memcpy(out + 1, ip, 4);
        }
        return;
    }
    if (parse_v4(host, hlen, ip) || (parse_v6(host, hlen, ip) && (memmove(ip, ip + 12, 4), true))) {
        bool loop = ip[0] == 127 || ip[0] == 0;
        bool local = ip[0] == 10 || (ip[0] == 172 && (ip[1] & 0xf0) == 16) ||
                     (ip[0] == 192 && ip[1] == 168) || (ip[0] == 169 && ip[1] == 254) ||
                     (ip[0] == 100 && (ip[1] & 0xc0) == 64);
        if (loop) {
            out[0] = 'l';
            memcpy(out + 1, ip, 4);
            out[5] = (uint8_t)(pn >> 8);
            out[6] = (uint8_t)pn;
        } else if (local) {
            out[0] = 'p';
            memcpy(out + 1, ip, 4);
        } else {
            out[0] = 4;
            out[1] = ip[0];
            out[2] = ip[1];
        }
        return;
    }
    out[0] = 'n'; /* a name: its own group (hashed, so any length fits) */
    crypto_generichash(out + 1, GS_GROUP_LEN - 1, (const uint8_t *)host, hlen, NULL, 0);
}

void
gossip_addr_group(const char *addr, uint8_t out[GOSSIP_GROUP_LEN])
{
    gs_addr_group(addr, addr != NULL ? strlen(addr) : 0, out);
}

bool
gossip_addr_public(const char *addr)
{
    uint8_t g[GS_GROUP_LEN];

    gs_addr_group(addr, addr != NULL ? strlen(addr) : 0, g);
    return g[0] == 4 || g[0] == 6;
}

bool
gs_group_eq(const uint8_t a[GS_GROUP_LEN], const uint8_t b[GS_GROUP_LEN])
{
    return a[0] != 0 && memcmp(a, b, GS_GROUP_LEN) == 0;
}
