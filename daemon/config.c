/*
 * config: flags and config files of pulld (config.h is the manual).
 *
 * Every setting is one row of a table: its flag/file name, its kind and where it lives in
 * struct config. Flags and file lines go through the same parser (config_set), so a value
 * accepted on the command line is accepted in the file and the other way round. A setting
 * given as a flag sets its bit in c->flag_set, and the file then leaves it alone.
 */
#include "daemon/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <fcntl.h>
#include <unistd.h>
#include <pwd.h>
#include <strings.h>
#include <sys/stat.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/paths.h"
#include "proto/shs.h"

#ifndef PULL_VERSION
#define PULL_VERSION "0.0.0"
#endif

enum cfg_kind {
    K_DATA_DIR,
    K_LISTEN,
    K_NETKEY,
    K_BOOTSTRAP,
    K_LAN,    /* file: on|off */
    K_NO_LAN, /* flag only, no value */
    K_NAT,
    K_LAN_PORT,
    K_LOG_LEVEL,
    K_NOSYNC,   /* flag: no value; file: on|off */
    K_WRITEMAP, /* file only: on|off */
    K_LIMIT,
};

struct cfg_limit {
    const char *name; /* as in status: underscores */
    size_t off;       /* offset in struct config_limits */
    uint64_t def, min, max;
    bool wide; /* a uint64_t field (else uint32_t) */
};

#define LIM(f, d, lo, hi)                                                                          \
    {                                                                                              \
#f, offsetof(struct config_limits, f), (d), (lo), (hi), false                              \
    }
#define LIM64(f, d, lo, hi)                                                                        \
    {                                                                                              \
#f, offsetof(struct config_limits, f), (d), (lo), (hi), true                               \
    }

static const struct cfg_limit cfg_limits[] = {
    LIM(max_conns, 64, 1, 4096),
    LIM(max_handshakes, 32, 1, 4096),
    LIM(handshake_timeout_ms, 5000, 100, 600000),
    LIM(idle_timeout_ms, 90000, 1000, 86400000),
    LIM(peer_rate_bytes, 4u << 20, 1024, UINT32_MAX),
    LIM(peer_burst_bytes, 16u << 20, 1u << 17, UINT32_MAX),
    LIM(peer_queue_bytes, 8u << 20, 1u << 17, UINT32_MAX),
    LIM(max_per_author, 256, 1, 1000000),
    LIM(sync_interval_ms, 30000, 100, 86400000),
    LIM(recon_max_symbols, 131072, 1024, 1u << 24),
    LIM(ctl_max_clients, 64, 1, 4096),
    LIM(mail_max_items, 4096, 0, 10000000),
    LIM64(store_max_bytes, 1ull << 30, 1ull << 20, 1ull << 44),
    LIM(ctl_reserved_clients, 4, 0, 4095),
    LIM(ctl_first_request_ms, 5000, 100, 3600000),
    LIM(ctl_idle_ms, 60000, 100, 86400000),
    LIM(ctl_max_inflight, 64, 1, 4096),
    LIM(ctl_slow_share_pct, 75, 1, 100),
    LIM(ctl_watch_queue_bytes, 2u << 20, 4096, 1u << 30),
    LIM(ctl_watch_total_bytes, 8u << 20, 4096, UINT32_MAX),
    LIM(max_handshakes_per_ip, 4, 1, 4096),
    LIM(max_handshakes_per_group, 8, 1, 4096),
    LIM(max_conns_per_ip, 8, 1, 4096),
    LIM(max_conns_per_group, 16, 1, 4096),
    LIM(first_msg_timeout_ms, 2000, 100, 600000),
    LIM(hello_timeout_ms, 3000, 100, 600000),
    LIM(max_dyads_per_proposer, 8, 1, 100000),
    LIM(max_dyads_open, 1024, 1, 1000000),
    LIM(dyad_retention_s, 7u * 86400u, 0, 3650u * 86400u),
    LIM(nat_lease_s, 3600, 10, 86400),
};
#define N_LIMITS (sizeof(cfg_limits) / sizeof(cfg_limits[0]))

struct cfg_setting {
    const char *name; /* flag without "--" and file key */
    enum cfg_kind kind;
    bool flag_only, file_only;
    int limit; /* K_LIMIT: index in cfg_limits */
    int bit;   /* bit in flag_set, -1: none (repeating or flag-only) */
    const char *arg, *help;
};

/* Limits follow the fixed rows; their flag names are the limit names with dashes. */
static const struct cfg_setting cfg_fixed[] = {
    {"data-dir", K_DATA_DIR, true, false, -1, -1, "DIR",
     "data directory (default $PULL_HOME, $XDG_DATA_HOME/pull, ~/.local/share/pull)"},
    {"listen", K_LISTEN, false, false, -1, 0, "HOST:PORT",
     "TCP address to accept peers on (default 0.0.0.0:7450; port 0: any free port)"},
    {"network-key", K_NETKEY, false, false, -1, 1, "HEX64",
     "32-byte network key of the handshake (default: the public network)"},
    {"bootstrap", K_BOOTSTRAP, false, false, -1, -1, "ID@HOST:PORT",
     "a peer to join through (may repeat)"},
    {"no-lan", K_NO_LAN, true, false, -1, 2, NULL, "no LAN discovery"},
    {"lan", K_LAN, false, true, -1, 2, "on|off", NULL},
    {"lan-port", K_LAN_PORT, false, false, -1, 3, "PORT", "UDP port of LAN discovery (7451)"},
    {"nat", K_NAT, false, false, -1, 6, "MODE",
     "port mapping on the router: auto (UPnP, else NAT-PMP), upnp, natpmp or off"},
    {"log-level", K_LOG_LEVEL, false, false, -1, 4, "LEVEL", "error, warn, info or debug"},
    {"store-nosync", K_NOSYNC, false, false, -1, 5, NULL,
     "no fsync on commit (tests: survives kill -9, not power loss)"},
    {"store-writemap", K_WRITEMAP, false, true, -1, 7, "on|off", NULL},
};
#define N_FIXED (sizeof(cfg_fixed) / sizeof(cfg_fixed[0]))
#define LIMIT_BIT0 8
_Static_assert(LIMIT_BIT0 + N_LIMITS <= 64, "flag_set has a bit per setting");

static void cfg_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
cfg_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void
limit_set(struct config_limits *l, size_t i, uint64_t v)
{
    void *p = (char *)l + cfg_limits[i].off;

    if (cfg_limits[i].wide)
        *(uint64_t *)p = v;
    else
        *(uint32_t *)p = (uint32_t)v;
}

static uint64_t
limit_get(const struct config_limits *l, size_t i)
{
    const void *p = (const char *)l + cfg_limits[i].off;

    return cfg_limits[i].wide ? *(const uint64_t *)p : *(const uint32_t *)p;
}

const char *
config_nat_name(enum config_nat m)
{
    switch (m) {
    case CONFIG_NAT_AUTO:
        return "auto";
    case CONFIG_NAT_UPNP:
        return "upnp";
    case CONFIG_NAT_NATPMP:
        return "natpmp";
    case CONFIG_NAT_OFF:
        return "off";
    }
    return "?";
}

void
config_defaults(struct config *c)
{
    const uint8_t pub[32] = PULL_NETWORK_KEY_PUBLIC;

    memset(c, 0, sizeof(*c));
    snprintf(c->listen, sizeof(c->listen), "0.0.0.0:%d", CONFIG_DEFAULT_PORT);
    memcpy(c->network_key, pub, 32);
    c->network_public = true;
    c->lan = true;
    c->lan_port = CONFIG_LAN_PORT_DEFAULT;
    c->log_level = LOG_INFO;
    for (size_t i = 0; i < N_LIMITS; i++)
        limit_set(&c->limits, i, cfg_limits[i].def);
}

int
config_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port)
{
    const char *colon, *hs, *he, *p;
    unsigned long v;
    char *end;

    if (s == NULL || (colon = strrchr(s, ':')) == NULL || colon == s)
        return PULL_ERR_INVAL;
    hs = s;
    he = colon;
    if (s[0] == '[') {
        if (colon[-1] != ']' || colon - s < 3)
            return PULL_ERR_INVAL;
        hs = s + 1;
        he = colon - 1;
    } else if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
        return PULL_ERR_INVAL; /* a bare IPv6 address needs brackets */
    }
    for (p = hs; p < he; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '[' || *p == ']' || *p == '@' || *p == '/')
            return PULL_ERR_INVAL;
    }
    p = colon + 1;
    if (*p < '0' || *p > '9' || strlen(p) > 5)
        return PULL_ERR_INVAL;
    errno = 0;
    v = strtoul(p, &end, 10);
    if (errno != 0 || *end != '\0' || v > 65535)
        return PULL_ERR_INVAL;
    if ((size_t)(he - hs) + 1 > hostlen)
        return PULL_ERR_INVAL;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    *port = (uint16_t)v;
    return 0;
}

int
config_parse_peer(const char *s, uint8_t key[static 32], char *addr, size_t addrlen)
{
    const char *at;
    char id[IDENT_TEXT_LEN + 1], host[CONFIG_ADDR_MAX];
    uint16_t port;

    if (s == NULL || (at = strchr(s, '@')) == NULL || at - s != IDENT_TEXT_LEN)
        return PULL_ERR_INVAL;
    memcpy(id, s, IDENT_TEXT_LEN);
    id[IDENT_TEXT_LEN] = '\0';
    if (ident_from_text(id, key) != 0)
        return PULL_ERR_INVAL;
    if (config_split_hostport(at + 1, host, sizeof(host), &port) != 0 || port == 0 ||
        host[0] == '\0')
        return PULL_ERR_INVAL;
    if (strlen(at + 1) + 1 > addrlen)
        return PULL_ERR_INVAL;
    memcpy(addr, at + 1, strlen(at + 1) + 1);
    return 0;
}

static int
parse_u64(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
    unsigned long long x;
    char *end;

    if (v == NULL || *v < '0' || *v > '9' || strlen(v) > 20)
        return PULL_ERR_INVAL;
    errno = 0;
    x = strtoull(v, &end, 10);
    if (errno != 0 || *end != '\0' || x < lo || x > hi)
        return PULL_ERR_INVAL;
    *out = (uint64_t)x;
    return 0;
}

static int
parse_u32(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
    uint64_t x;
    int rc = parse_u64(v, lo, hi, &x);

    if (rc == 0)
        *out = (uint32_t)x;
    return rc;
}

static int
parse_onoff(const char *v, bool *out)
{
    if (strcmp(v, "on") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 ||
        strcmp(v, "1") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(v, "off") == 0 || strcmp(v, "no") == 0 || strcmp(v, "false") == 0 ||
        strcmp(v, "0") == 0) {
        *out = false;
        return 0;
    }
    return PULL_ERR_INVAL;
}

/* One setting. Row r (or limit index li when r is NULL), value v (NULL for valueless
 * flags), from_flag tells the origin. Writes a reason (without location) into err. */
static int
config_set(struct config *c, const struct cfg_setting *r, int li, const char *v, bool from_flag,
           char *err, size_t errlen)
{
    int bit = r != NULL ? r->bit : LIMIT_BIT0 + li;
    const char *name = r != NULL ? r->name : NULL;
    char host[CONFIG_ADDR_MAX];
    uint16_t port;
    uint8_t key[32];
    uint32_t u;
    bool b;

    if (!from_flag && bit >= 0 && (c->flag_set & (UINT64_C(1) << bit)) != 0)
        return 0; /* the flag wins */
    if (r == NULL) {
        const struct cfg_limit *l = &cfg_limits[li];
        uint64_t x;
        if (parse_u64(v, l->min, l->max, &x) != 0) {
            cfg_err(err, errlen, "%s: expected an integer in %llu..%llu, got \"%.40s\"", l->name,
                    (unsigned long long)l->min, (unsigned long long)l->max, v);
            return PULL_ERR_INVAL;
        }
        limit_set(&c->limits, (size_t)li, x);
        goto done;
    }
    switch (r->kind) {
    case K_DATA_DIR:
        if (v[0] == '\0' || strlen(v) >= sizeof(c->data_dir)) {
            cfg_err(err, errlen, "data-dir: empty or too long");
            return PULL_ERR_INVAL;
        }
        memcpy(c->data_dir, v, strlen(v) + 1);
        break;
    case K_LISTEN:
        if (config_split_hostport(v, host, sizeof(host), &port) != 0 || host[0] == '\0' ||
            strlen(v) >= sizeof(c->listen)) {
            cfg_err(err, errlen, "listen: expected HOST:PORT, got \"%.60s\"", v);
            return PULL_ERR_INVAL;
        }
        memcpy(c->listen, v, strlen(v) + 1);
        break;
    case K_NETKEY: {
        const uint8_t pub[32] = PULL_NETWORK_KEY_PUBLIC;
        size_t bin_len = 0;
        const char *end = NULL;
        if (strlen(v) != 64 || sodium_hex2bin(key, sizeof(key), v, 64, NULL, &bin_len, &end) != 0 ||
            bin_len != 32 || end != v + 64) {
            cfg_err(err, errlen, "network-key: expected 64 hex characters");
            return PULL_ERR_INVAL;
        }
        memcpy(c->network_key, key, 32);
        c->network_public = sodium_memcmp(key, pub, 32) == 0;
        sodium_memzero(key, sizeof(key));
        break;
    }
    case K_BOOTSTRAP: {
        char addr[CONFIG_ADDR_MAX];
        if (config_parse_peer(v, key, addr, sizeof(addr)) != 0) {
            cfg_err(err, errlen, "bootstrap: expected ID@HOST:PORT, got \"%.80s\"", v);
            return PULL_ERR_INVAL;
        }
        for (size_t i = 0; i < c->n_bootstrap; i++) {
            if (strcmp(c->bootstrap[i], v) == 0)
                return 0;
        }
        if (c->n_bootstrap >= CONFIG_BOOTSTRAP_MAX) {
            cfg_err(err, errlen, "bootstrap: more than %d peers", CONFIG_BOOTSTRAP_MAX);
            return PULL_ERR_INVAL;
        }
        memcpy(c->bootstrap[c->n_bootstrap++], v, strlen(v) + 1);
        break;
    }
    case K_LAN:
        if (parse_onoff(v, &b) != 0) {
            cfg_err(err, errlen, "lan: expected on or off");
            return PULL_ERR_INVAL;
        }
        c->lan = b;
        break;
    case K_NO_LAN:
        c->lan = false;
        break;
    case K_NAT: {
        bool found = false;
        for (int m = CONFIG_NAT_AUTO; m <= CONFIG_NAT_OFF; m++) {
            if (v != NULL && strcmp(v, config_nat_name((enum config_nat)m)) == 0) {
                c->nat = (enum config_nat)m;
                found = true;
            }
        }
        if (!found) {
            cfg_err(err, errlen, "nat: expected auto, upnp, natpmp or off");
            return PULL_ERR_INVAL;
        }
        break;
    }
    case K_LAN_PORT:
        if (parse_u32(v, 1, 65535, &u) != 0) {
            cfg_err(err, errlen, "lan-port: expected a port in 1..65535");
            return PULL_ERR_INVAL;
        }
        c->lan_port = (uint16_t)u;
        break;
    case K_LOG_LEVEL: {
        enum log_level lv;
        if (log_parse_level(v, &lv) != 0) {
            cfg_err(err, errlen, "log-level: expected error, warn, info or debug");
            return PULL_ERR_INVAL;
        }
        c->log_level = lv;
        break;
    }
    case K_NOSYNC:
        if (v == NULL) {
            c->store_nosync = true;
        } else if (parse_onoff(v, &b) != 0) {
            cfg_err(err, errlen, "%s: expected on or off", name);
            return PULL_ERR_INVAL;
        } else {
            c->store_nosync = b;
        }
        break;
    case K_WRITEMAP:
        if (parse_onoff(v, &b) != 0) {
            cfg_err(err, errlen, "%s: expected on or off", name);
            return PULL_ERR_INVAL;
        }
        c->store_no_writemap = !b;
        break;
    case K_LIMIT:
        break;
    }
done:
    if (from_flag && bit >= 0)
        c->flag_set |= UINT64_C(1) << bit;
    return 0;
}

/* lookup finds a setting by name (dashes; for limits underscores are accepted too). */
static int
lookup(const char *name, size_t len, const struct cfg_setting **row, int *li)
{
    *row = NULL;
    *li = -1;
    for (size_t i = 0; i < N_FIXED; i++) {
        if (strlen(cfg_fixed[i].name) == len && memcmp(cfg_fixed[i].name, name, len) == 0) {
            *row = &cfg_fixed[i];
            return 0;
        }
    }
    for (size_t i = 0; i < N_LIMITS; i++) {
        const char *ln = cfg_limits[i].name;
        size_t k;
        if (strlen(ln) != len)
            continue;
        for (k = 0; k < len; k++) {
            char a = name[k] == '-' ? '_' : name[k];
            if (a != ln[k])
                break;
        }
        if (k == len) {
            *li = (int)i;
            return 0;
        }
    }
    return PULL_ERR_NOT_FOUND;
}

void
config_usage(void *fp)
{
    FILE *f = fp;

    fprintf(f, "usage: pulld [--data-dir DIR] [--listen HOST:PORT] [--network-key HEX64]\n"
               "             [--bootstrap ID@HOST:PORT]... [--no-lan] [--nat MODE]\n"
               "             [--log-level LEVEL] [LIMIT FLAGS] [--version] [--help]\n\n"
               "pulld is the pull daemon: it keeps the node's records, gossips them with its\n"
               "peers and answers the `pull` command line on DATA_DIR/pulld.sock.\n\n");
    for (size_t i = 0; i < N_FIXED; i++) {
        char left[64];
        if (cfg_fixed[i].help == NULL)
            continue;
        snprintf(left, sizeof(left), "--%s%s%s", cfg_fixed[i].name, cfg_fixed[i].arg ? " " : "",
                 cfg_fixed[i].arg ? cfg_fixed[i].arg : "");
        fprintf(f, "  %-28s %s\n", left, cfg_fixed[i].help);
    }
    fprintf(f, "  %-28s %s\n  %-28s %s\n\nLimits (flag or config file key, default):\n",
            "--version", "print the version and exit", "--help", "print this help and exit");
    for (size_t i = 0; i < N_LIMITS; i++) {
        char left[64];
        size_t k;
        snprintf(left, sizeof(left), "--%s N", cfg_limits[i].name);
        for (k = 2; left[k] != '\0' && left[k] != ' '; k++) {
            if (left[k] == '_')
                left[k] = '-';
        }
        fprintf(f, "  %-28s %llu\n", left, (unsigned long long)cfg_limits[i].def);
    }
    fprintf(f, "\nThe config files hold `key value` lines with the same names (lan on|off\n"
               "instead of --no-lan): DATA_DIR/config, and for every node of the user\n"
               "$XDG_CONFIG_HOME/pull/config (default ~/.config/pull/config). Flags win over\n"
               "DATA_DIR/config, which wins over the user's file; bootstrap peers add up.\n"
               "Exit codes: 0 clean stop, 1 bad usage or config, 2 data dir, key or store "
               "problem.\n");
}

int
config_parse_args(struct config *c, int argc, char **argv, char *err, size_t errlen)
{
    char why[200];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *name, *eq, *v = NULL;
        const struct cfg_setting *row;
        size_t nlen;
        int li, rc;
        bool takes;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            config_usage(stdout);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("pulld %s\n", PULL_VERSION);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            cfg_err(err, errlen, "unexpected argument \"%.60s\" (see pulld --help)", a);
            return PULL_ERR_INVAL;
        }
        name = a + 2;
        eq = strchr(name, '=');
        nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        if (lookup(name, nlen, &row, &li) != 0 || (row != NULL && row->file_only)) {
            cfg_err(err, errlen, "unknown option --%.*s (see pulld --help)",
                    (int)(nlen > 60 ? 60 : nlen), name);
            return PULL_ERR_INVAL;
        }
        takes = row == NULL || (row->kind != K_NO_LAN && row->kind != K_NOSYNC);
        if (takes) {
            if (eq != NULL) {
                v = eq + 1;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                cfg_err(err, errlen, "--%.*s needs a value", (int)nlen, name);
                return PULL_ERR_INVAL;
            }
        } else if (eq != NULL) {
            cfg_err(err, errlen, "--%.*s takes no value", (int)nlen, name);
            return PULL_ERR_INVAL;
        }
        why[0] = '\0';
        if ((rc = config_set(c, row, li, v, true, why, sizeof(why))) != 0) {
            cfg_err(err, errlen, "--%s", why);
            return rc;
        }
    }
    return 0;
}

int
config_load_buf(struct config *c, const char *buf, size_t len, const char *name, char *err,
                size_t errlen)
{
    char line[CONFIG_ADDR_MAX + 128], why[200];
    size_t pos = 0;
    unsigned lineno = 0;

    if (name == NULL)
        name = "config";
    if (len > CONFIG_FILE_MAX) {
        cfg_err(err, errlen, "%s: larger than %u bytes", name, (unsigned)CONFIG_FILE_MAX);
        return PULL_ERR_TOO_BIG;
    }
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t ll = nl != NULL ? (size_t)(nl - (buf + pos)) : len - pos;
        const struct cfg_setting *row;
        char *k, *v, *e, *hash;
        int li, rc;

        lineno++;
        if (ll >= sizeof(line)) {
            cfg_err(err, errlen, "%s:%u: line too long", name, lineno);
            return PULL_ERR_INVAL;
        }
        memcpy(line, buf + pos, ll);
        line[ll] = '\0';
        pos += ll + (nl != NULL ? 1 : 0);
        if (memchr(line, '\0', ll) != NULL) {
            cfg_err(err, errlen, "%s:%u: NUL byte", name, lineno);
            return PULL_ERR_INVAL;
        }
        if ((hash = strchr(line, '#')) != NULL)
            *hash = '\0';
        for (k = line; *k == ' ' || *k == '\t'; k++)
            ;
        e = k + strlen(k);
        while (e > k && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            *--e = '\0';
        if (*k == '\0')
            continue;
        for (v = k; *v != '\0' && *v != ' ' && *v != '\t'; v++)
            ;
        if (*v != '\0') {
            *v++ = '\0';
            while (*v == ' ' || *v == '\t')
                v++;
        }
        for (char *p = k; *p != '\0'; p++) {
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
                cfg_err(err, errlen, "%s:%u: bad character in key", name, lineno);
                return PULL_ERR_INVAL;
            }
        }
        if (lookup(k, strlen(k), &row, &li) != 0 || (row != NULL && row->flag_only)) {
            cfg_err(err, errlen, "%s:%u: unknown key \"%.40s\"", name, lineno, k);
            return PULL_ERR_INVAL;
        }
        if (*v == '\0') {
            cfg_err(err, errlen, "%s:%u: %s needs a value", name, lineno, k);
            return PULL_ERR_INVAL;
        }
        why[0] = '\0';
        if ((rc = config_set(c, row, li, v, false, why, sizeof(why))) != 0) {
            cfg_err(err, errlen, "%s:%u: %s", name, lineno, why);
            return rc;
        }
    }
    return 0;
}

int
config_user_file(char *out, size_t n)
{
    const char *v;
    int len;

    /* XDG: a relative $XDG_CONFIG_HOME is invalid and ignored. */
    if ((v = getenv("XDG_CONFIG_HOME")) != NULL && v[0] == '/') {
        len = snprintf(out, n, "%s/pull/%s", v, PATHS_CONFIG_NAME);
    } else {
        if ((v = getenv("HOME")) == NULL || v[0] == '\0') {
            struct passwd *pw = getpwuid(getuid());
            v = pw != NULL ? pw->pw_dir : NULL;
        }
        if (v == NULL || v[0] == '\0')
            return PULL_ERR_NOT_FOUND;
        len = snprintf(out, n, "%s/.config/pull/%s", v, PATHS_CONFIG_NAME);
    }
    if (len < 0 || (size_t)len >= n)
        return PULL_ERR_TOO_BIG;
    return 0;
}

/* Applies the config file at path; a missing file is fine. The data dir's file is opened
 * with O_NOFOLLOW (the directory is pulld's own), the user's may be a symlink (dotfiles
 * are often kept elsewhere). */
static int
load_path(struct config *c, const char *path, bool follow, char *err, size_t errlen)
{
    char *buf = NULL;
    struct stat st;
    ssize_t got;
    size_t have = 0;
    int fd = -1, rc;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW))) < 0) {
        if (errno == ENOENT || (follow && errno == ENOTDIR))
            return 0;
        cfg_err(err, errlen, "%s: %s", path, strerror(errno));
        return PULL_ERR_IO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        cfg_err(err, errlen, "%s: not a regular file", path);
        rc = PULL_ERR_IO;
        goto out;
    }
    if ((uint64_t)st.st_size > CONFIG_FILE_MAX) {
        cfg_err(err, errlen, "%s: larger than %u bytes", path, (unsigned)CONFIG_FILE_MAX);
        rc = PULL_ERR_TOO_BIG;
        goto out;
    }
    if ((buf = malloc(CONFIG_FILE_MAX + 1)) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    while (have <= CONFIG_FILE_MAX &&
           (got = read(fd, buf + have, CONFIG_FILE_MAX + 1 - have)) != 0) {
        if (got < 0) {
            if (errno == EINTR)
                continue;
            cfg_err(err, errlen, "%s: %s", path, strerror(errno));
            rc = PULL_ERR_IO;
            goto out;
        }
        have += (size_t)got;
    }
    rc = config_load_buf(c, buf, have, path, err, errlen);
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

int
config_load_file(struct config *c, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int rc;

    /* The user's file first, then the data dir's over it: a setting in both takes the data
     * dir's value by being applied last (bootstrap lines add up). No home directory at all
     * just means no user file. */
    if (config_user_file(path, sizeof(path)) == 0 &&
        (rc = load_path(c, path, true, err, errlen)) != 0)
        return rc;
    if ((rc = paths_join(c->data_dir, PATHS_CONFIG_NAME, path, sizeof(path))) != 0) {
        cfg_err(err, errlen, "config file path too long");
        return rc;
    }
    return load_path(c, path, false, err, errlen);
}

/* line_value: if line (len bytes) sets key (its first word, after blanks), returns where
 * its value starts (after blanks) and sets *vlen (up to a comment or trailing blanks);
 * else NULL. */
static const char *
line_value(const char *line, size_t len, const char *key, size_t *vlen)
{
    size_t i = 0, kl = strlen(key), e;

    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (len - i <= kl || memcmp(line + i, key, kl) != 0 ||
        (line[i + kl] != ' ' && line[i + kl] != '\t'))
        return NULL;
    i += kl;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    for (e = i; e < len && line[e] != '#'; e++)
        ;
    while (e > i && (line[e - 1] == ' ' || line[e - 1] == '\t' || line[e - 1] == '\r'))
        e--;
    *vlen = e - i;
    return line + i;
}

int
config_file_join(const char *data_dir, const uint8_t netkey[static 32], const char *peer, char *err,
                 size_t errlen)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8], hex[65];
    char *old = NULL;
    size_t have = 0, pos = 0;
    bool changed = true, have_peer = false;
    struct pull_wb w;
    int fd = -1, rc;
    ssize_t got;

    wb_init(&w, 2 * CONFIG_FILE_MAX);
    if ((rc = paths_join(data_dir, PATHS_CONFIG_NAME, path, sizeof(path))) != 0 ||
        snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        cfg_err(err, errlen, "config file path too long");
        rc = PULL_ERR_TOO_BIG;
        goto out;
    }
    if ((old = malloc(CONFIG_FILE_MAX + 1)) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
        while (have <= CONFIG_FILE_MAX &&
               (got = read(fd, old + have, CONFIG_FILE_MAX + 1 - have)) != 0) {
            if (got < 0 && errno == EINTR)
                continue;
            if (got < 0) {
                cfg_err(err, errlen, "%s: %s", path, strerror(errno));
                rc = PULL_ERR_IO;
                goto out;
            }
            have += (size_t)got;
        }
        close(fd);
        fd = -1;
        if (have > CONFIG_FILE_MAX) {
            cfg_err(err, errlen, "%s: larger than %u bytes", path, (unsigned)CONFIG_FILE_MAX);
            rc = PULL_ERR_TOO_BIG;
            goto out;
        }
    } else if (errno != ENOENT) {
        cfg_err(err, errlen, "%s: %s", path, strerror(errno));
        rc = PULL_ERR_IO;
        goto out;
    }
    /* is the key the file names already netkey? (no network-key line: the public key) */
    {
        const uint8_t pub[32] = PULL_NETWORK_KEY_PUBLIC;
        bool any = false, same = true;
        for (pos = 0; pos < have;) {
            const char *nl = memchr(old + pos, '\n', have - pos);
            size_t ll = nl != NULL ? (size_t)(nl - (old + pos)) : have - pos;
            const char *v;
            size_t vl;
            if ((v = line_value(old + pos, ll, "network-key", &vl)) != NULL) {
                any = true;
                sodium_bin2hex(hex, sizeof(hex), netkey, 32);
                same = same && vl == 64 && strncasecmp(v, hex, 64) == 0;
            }
            pos += ll + (nl != NULL);
        }
        changed = any ? !same : sodium_memcmp(netkey, pub, 32) != 0;
    }
    for (pos = 0; pos < have;) {
        const char *line = old + pos, *nl = memchr(old + pos, '\n', have - pos);
        size_t ll = nl != NULL ? (size_t)(nl - line) : have - pos;
        const char *v;
        size_t vl;
        pos += ll + (nl != NULL);
        if (line_value(line, ll, "network-key", &vl) != NULL)
            continue;
        if ((v = line_value(line, ll, "bootstrap", &vl)) != NULL) {
            if (vl == strlen(peer) && memcmp(v, peer, vl) == 0)
                have_peer = !changed;
            if (changed) {
                wb_put(&w, "# a peer of the network before pull join: ", 42);
                wb_put(&w, line, ll);
                wb_put(&w, "\n", 1);
                continue;
            }
        }
        wb_put(&w, line, ll);
        wb_put(&w, "\n", 1);
    }
    sodium_bin2hex(hex, sizeof(hex), netkey, 32);
    wb_put(&w, "network-key ", 12);
    wb_put(&w, hex, 64);
    wb_put(&w, "\n", 1);
    if (!have_peer) {
        wb_put(&w, "bootstrap ", 10);
        wb_put(&w, peer, strlen(peer));
        wb_put(&w, "\n", 1);
    }
    if ((rc = wb_error(&w)) != 0 || w.len > CONFIG_FILE_MAX) {
        cfg_err(err, errlen, "%s would grow larger than %u bytes", path, (unsigned)CONFIG_FILE_MAX);
        rc = PULL_ERR_TOO_BIG;
        goto out;
    }
    (void)unlink(tmp);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
        cfg_err(err, errlen, "%s: %s", tmp, strerror(errno));
        rc = PULL_ERR_IO;
        goto out;
    }
    for (size_t off = 0; off < w.len;) {
        got = write(fd, w.p + off, w.len - off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            cfg_err(err, errlen, "%s: %s", tmp, strerror(errno));
            rc = PULL_ERR_IO;
            goto out;
        }
        off += (size_t)got;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        cfg_err(err, errlen, "%s: %s", tmp, strerror(errno));
        rc = PULL_ERR_IO;
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        cfg_err(err, errlen, "%s: %s", path, strerror(errno));
        rc = PULL_ERR_IO;
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        (void)unlink(tmp);
    if (old != NULL) {
        sodium_memzero(old, CONFIG_FILE_MAX + 1);
        free(old);
    }
    if (w.p != NULL)
        sodium_memzero(w.p, w.cap);
    wb_release(&w);
    sodium_memzero(hex, sizeof(hex));
    return rc;
}

bool
config_netkey_from_flag(const struct config *c)
{
    for (size_t i = 0; i < N_FIXED; i++) {
        if (cfg_fixed[i].kind == K_NETKEY)
            return (c->flag_set & (UINT64_C(1) << cfg_fixed[i].bit)) != 0;
    }
    return false;
}

size_t
config_limit_count(void)
{
    return N_LIMITS;
}

int
config_limit_at(const struct config *c, size_t i, const char **name, uint64_t *value)
{
    if (i >= N_LIMITS)
        return PULL_ERR_NOT_FOUND;
    *name = cfg_limits[i].name;
    *value = limit_get(&c->limits, i);
    return 0;
}
