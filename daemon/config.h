/*
 * config: pulld's settings, from the command line (CONTRACT.md) and two config files: the
 * user's, $XDG_CONFIG_HOME/pull/config (else ~/.config/pull/config), and the node's,
 * DATA_DIR/config. Precedence, highest first: flags, DATA_DIR/config, the user's file,
 * the defaults. Bootstrap peers are the exception: those of every source add up.
 *
 * A config file is text, one setting per line: `key value`, `#` starts a comment, blank
 * lines are ignored. Keys are the long flag names without "--" (listen, network-key,
 * bootstrap (may repeat), lan (on|off), log-level) and the limits below by their names
 * (max-conns 64). An unknown key or a bad value is an error naming the file and line.
 */
#ifndef PULL_CONFIG_H
#define PULL_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"

#define CONFIG_BOOTSTRAP_MAX 32
#define CONFIG_ADDR_MAX 320 /* "ID@HOST:PORT" */
#define CONFIG_FILE_MAX (64u * 1024u)
#define CONFIG_DEFAULT_PORT 7450
#define CONFIG_LAN_PORT_DEFAULT 7451

/* Port mapping on the home router (daemon/nat.c). */
enum config_nat {
    CONFIG_NAT_AUTO = 0, /* UPnP-IGD, else NAT-PMP */
    CONFIG_NAT_UPNP,
    CONFIG_NAT_NATPMP,
    CONFIG_NAT_OFF,
};

/* config_nat_name returns "auto", "upnp", "natpmp" or "off". */
const char *config_nat_name(enum config_nat m);

/* Resource bounds: every one configurable, every one shown by `pull status --json` under
 * "limits" with the same name (dashes become underscores). */
struct config_limits {
    uint32_t max_conns;            /* established peer connections, in + out (64) */
    uint32_t max_handshakes;       /* connections still in the handshake (32) */
    uint32_t handshake_timeout_ms; /* handshake + HELLO must finish within (5000) */
    uint32_t idle_timeout_ms;      /* a peer silent this long is closed (90000; PING at 1/3) */
    uint32_t peer_rate_bytes;      /* per-peer receive rate, bytes/s (4 MiB/s) */
    uint32_t peer_burst_bytes;     /* per-peer receive burst (16 MiB) */
    uint32_t peer_queue_bytes;     /* unsent bytes queued for one peer before it is dropped
                                      (8 MiB) */
    uint32_t max_per_author;       /* live records per author (256) */
    uint32_t sync_interval_ms;     /* reconciliation with a random peer every (30000) */
    uint32_t recon_max_symbols;    /* reconciliation memory cap, symbols per session (131072) */
    uint32_t ctl_max_clients;      /* control connections (64) */
    uint32_t mail_max_items;       /* sealed mail items held for others (4096) */
    uint64_t store_max_bytes;      /* budget of record bytes stored; past it strangers'
                                      records are evicted and refused (1 GiB; lib/store.h) */
    /* The control socket's per-client budget (daemon/ctl_server.c says how each applies). */
    uint32_t ctl_reserved_clients;  /* of ctl_max_clients, slots a stream may not take (4) */
    uint32_t ctl_first_request_ms;  /* a new client must send a request within (5000) */
    uint32_t ctl_idle_ms;           /* a client with nothing in progress, or one that does not
                                       read what is queued for it, is closed after (60000) */
    uint32_t ctl_max_inflight;      /* requests of one client being answered at once (64) */
    uint32_t ctl_slow_share_pct;    /* loop time one client's search/import/export may take,
                                       in percent: it waits out the rest (75) */
    uint32_t ctl_watch_queue_bytes; /* unsent events per watcher before it lags (2 MiB:
                                       the events of a commit of NODE_BATCH_MAX records) */
    uint32_t ctl_watch_total_bytes; /* unsent events of all watchers together (8 MiB) */
    /* Strangers' shares (daemon/net.h "Admission"): an inbound source - one IP address (an
     * IPv6 /64), and its address group (gossip_addr_group: a public IPv4 /16, a public
     * IPv6 /32; a private or loopback address is a group of its own) - may hold this
     * many of the handshake and session slots. */
    uint32_t max_handshakes_per_ip;    /* handshakes of one address (4) */
    uint32_t max_handshakes_per_group; /* handshakes of one address group (8) */
    uint32_t max_conns_per_ip;         /* inbound sessions of one address (8) */
    uint32_t max_conns_per_group;      /* inbound sessions of one address group (16) */
    uint32_t first_msg_timeout_ms;     /* an inbound peer's first handshake message (2000) */
    uint32_t hello_timeout_ms;         /* the peer's HELLO after the handshake (3000) */
    /* Dyads (daemon/dyads.h "Bounds"). */
    uint32_t max_dyads_per_proposer; /* open dyads proposed to me by one key (8) */
    uint32_t max_dyads_open;         /* open dyads in total (1024) */
    uint32_t dyad_retention_s;       /* a closed dyad is deleted this long after it closed
                                        (7 days; a completed one when its attestation
                                        expires, 90 days) */
    /* Port mapping (daemon/nat.h). */
    uint32_t nat_lease_s; /* lease asked of the router, renewed at half (3600) */
};

struct config {
    char data_dir[PATH_MAX];
    char listen[CONFIG_ADDR_MAX]; /* "HOST:PORT", default "0.0.0.0:7450" */
    uint8_t network_key[32];
    bool network_public;                                   /* network_key is the public network's */
    char bootstrap[CONFIG_BOOTSTRAP_MAX][CONFIG_ADDR_MAX]; /* "ID@HOST:PORT" */
    size_t n_bootstrap;
    bool lan;            /* LAN discovery, default on */
    uint16_t lan_port;   /* UDP port of LAN discovery (7451) */
    enum config_nat nat; /* port mapping, default auto */
    enum log_level log_level;
    bool store_nosync; /* tests/benches: MDB_NOSYNC (survives kill -9, not
                          power loss) */
    bool store_no_writemap; /* store-writemap off: LMDB writes with pwrite (lib/store.h) */
    struct config_limits limits;
    uint64_t flag_set; /* config.c: bit per setting given on the command line (they win
                          over the config file) */
};

/* config_defaults fills c with the defaults (data_dir empty). */
void config_defaults(struct config *c);

/* config_parse_args applies argv's flags to c. Returns 0, 1 if the caller should exit 0
 * (--help, --version printed), or a negative PULL_ERR_* after writing a one-line message
 * into err. */
int config_parse_args(struct config *c, int argc, char **argv, char *err, size_t errlen);

/* config_load_buf applies the settings of a config file's text (len <= CONFIG_FILE_MAX,
 * name for messages). Settings already given by flags are kept (the flags win). Returns 0
 * or a negative PULL_ERR_* with a one-line "name:line: reason" in err. */
int config_load_buf(struct config *c, const char *buf, size_t len, const char *name, char *err,
                    size_t errlen);

/* config_load_file applies the user's config file (config_user_file), then DATA_DIR/config
 * over it; either may be missing. c->data_dir must be set. Settings given as flags are
 * kept. Returns 0 or a negative PULL_ERR_* with a one-line "path:line: reason" in err. */
int config_load_file(struct config *c, char *err, size_t errlen);

/* config_user_file writes the path of the user's config file into out (n bytes):
 * $XDG_CONFIG_HOME/pull/config if that variable holds an absolute path, else
 * $HOME/.config/pull/config (the home directory from the password database if HOME is
 * unset). Returns 0, PULL_ERR_NOT_FOUND if there is no home directory, or
 * PULL_ERR_TOO_BIG. */
int config_user_file(char *out, size_t n);

/* config_split_hostport splits "HOST:PORT" ("[v6]:PORT" for IPv6) into host (NUL-ended,
 * brackets removed, hostlen bytes at most) and port (0..65535). Returns 0 or PULL_ERR_INVAL. */
int config_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);

/* config_parse_peer parses "ID@HOST:PORT" (ID: a 52-character key) into key and addr
 * ("HOST:PORT", addrlen bytes at most). Returns 0 or PULL_ERR_INVAL. */
int config_parse_peer(const char *s, uint8_t key[static 32], char *addr, size_t addrlen);

/* config_file_join records a joined network in DATA_DIR/config (pull join): the line
 * "network-key HEX" for netkey (replacing every network-key line; when the key changes, the
 * bootstrap lines of the old network are kept as comments) and "bootstrap PEER" (unless
 * there already). The file is rewritten whole: a temporary file of mode 0600, fsync'ed,
 * renamed over it. Its other lines are kept. Returns 0 or a negative PULL_ERR_* with a
 * one-line reason in err. */
int config_file_join(const char *data_dir, const uint8_t netkey[static 32], const char *peer,
                     char *err, size_t errlen);

/* config_netkey_from_flag: was the network key given as --network-key (so that the config
 * files' network-key lines do not apply)? */
bool config_netkey_from_flag(const struct config *c);

/* config_usage writes pulld's --help text to f (a FILE *). */
void config_usage(void *f);

/* config_limit_count / config_limit_at enumerate the limits as (name, value) for status. */
size_t config_limit_count(void);
int config_limit_at(const struct config *c, size_t i, const char **name, uint64_t *value);

#endif
