/* Tests of pulld's configuration (daemon/config.h): defaults, flags, the config files,
 * precedence (flags > DATA_DIR/config > the user's XDG config file > defaults), and hostile values
 * (out of range, malformed, too long, unknown keys), each refused with a one-line reason naming the
 * file and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "proto/shs.h"
#include "testutil.h"

/* snprintf that fails the test instead of truncating. */
#define SNPRINTF_OK(buf, ...)                                                                      \
    assert_true(snprintf(buf, sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

#define KEY52 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static int
parse(struct config *c, char *err, size_t errlen, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    const char *a;

    argv[argc++] = "pulld";
    va_start(ap, errlen);
    while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;
    return config_parse_args(c, argc, argv, err, errlen);
}

static uint64_t
limit(const struct config *c, const char *name)
{
    const char *nm;
    uint64_t v;

    for (size_t i = 0; i < config_limit_count(); i++) {
        assert_int_equal(config_limit_at(c, i, &nm, &v), 0);
        if (strcmp(nm, name) == 0)
            return v;
    }
    fail_msg("no limit %s", name);
    return 0;
}

static void
test_defaults(void **state)
{
    struct config c;
    const uint8_t pub[32] = PULL_NETWORK_KEY_PUBLIC;
    const char *nm;
    uint64_t v;

    (void)state;
    config_defaults(&c);
    assert_string_equal(c.listen, "0.0.0.0:7450");
    assert_memory_equal(c.network_key, pub, 32);
    assert_true(c.network_public);
    assert_true(c.lan);
    assert_int_equal(c.lan_port, 7451);
    assert_int_equal(c.n_bootstrap, 0);
    assert_false(c.store_nosync);
    assert_int_equal(c.limits.max_conns, 64);
    assert_int_equal(c.limits.max_handshakes, 32);
    assert_int_equal(c.limits.idle_timeout_ms, 90000);
    assert_int_equal(c.limits.peer_queue_bytes, 8u << 20);
    assert_int_equal(c.limits.max_per_author, 256);
    assert_int_equal(c.limits.recon_max_symbols, 131072);
    assert_int_equal(config_limit_count(), 30);
    assert_int_equal(c.limits.ctl_first_request_ms, 5000);
    assert_int_equal(c.limits.ctl_idle_ms, 60000);
    assert_int_equal(c.limits.ctl_watch_total_bytes, 8u << 20);
    assert_int_equal(limit(&c, "sync_interval_ms"), 30000);
    assert_int_equal(config_limit_at(&c, config_limit_count(), &nm, &v), PULL_ERR_NOT_FOUND);
    assert_true(limit(&c, "store_max_bytes") == 1ull << 30); /* a 64-bit limit */
    assert_int_equal(c.limits.max_handshakes_per_ip, 4);
    assert_int_equal(c.limits.max_conns_per_group, 16);
    assert_int_equal(c.limits.first_msg_timeout_ms, 2000);
    assert_int_equal(c.limits.max_dyads_per_proposer, 8);
    assert_int_equal(limit(&c, "max_dyads_open"), 1024);
    assert_int_equal(limit(&c, "dyad_retention_s"), 7 * 86400);
    assert_int_equal(limit(&c, "nat_lease_s"), 3600);

    for (size_t i = 0; i < config_limit_count(); i++) {
        assert_int_equal(config_limit_at(&c, i, &nm, &v), 0);
        assert_null(strchr(nm, '-')); /* status names use underscores */
    }
}

static void
test_flags(void **state)
{
    struct config c;
    char err[256];

    (void)state;
    config_defaults(&c);
    assert_int_equal(
        parse(&c, err, sizeof(err), "--data-dir", "/tmp/x", "--listen", "127.0.0.1:0", "--no-lan",
              "--log-level", "debug", "--max-conns", "8", "--bootstrap", KEY52 "@127.0.0.1:7450",
              "--bootstrap", KEY52 "@[::1]:7451", "--store-nosync", "--lan-port=9999",
              "--idle-timeout-ms=5000", "--network-key",
              "0001020304050607080900010203040506070809000102030405060708090001", NULL),
        0);
    assert_string_equal(c.data_dir, "/tmp/x");
    assert_string_equal(c.listen, "127.0.0.1:0");
    assert_false(c.lan);
    assert_int_equal(c.log_level, LOG_DEBUG);
    assert_int_equal(c.limits.max_conns, 8);
    assert_int_equal(c.limits.idle_timeout_ms, 5000);
    assert_int_equal(c.n_bootstrap, 2);
    assert_string_equal(c.bootstrap[1], KEY52 "@[::1]:7451");
    assert_true(c.store_nosync);
    assert_int_equal(c.lan_port, 9999);
    assert_false(c.network_public);
    assert_int_equal(c.network_key[1], 1);
    /* the same bootstrap twice is kept once */
    assert_int_equal(parse(&c, err, sizeof(err), "--bootstrap", KEY52 "@127.0.0.1:7450", NULL), 0);
    assert_int_equal(c.n_bootstrap, 2);
}

static void
test_flags_bad(void **state)
{
    static const char *bad[][3] = {
        {"--max-conns", "0", NULL},
        {"--max-conns", "4097", NULL},
        {"--max-conns", "-1", NULL},
        {"--max-conns", "8x", NULL},
        {"--max-conns", "", NULL},
        {"--max-conns", "99999999999999999999", NULL},
        {"--listen", "nohost", NULL},
        {"--listen", "1.2.3.4:65536", NULL},
        {"--listen", "::1:80", NULL},
        {"--listen", ":80", NULL},
        {"--network-key", "00", NULL},
        {"--network-key", KEY52 "zzzzzzzzzzzz", NULL},
        {"--bootstrap", "x@1.2.3.4:1", NULL},
        {"--bootstrap", KEY52 "@1.2.3.4:0", NULL},
        {"--bootstrap", KEY52, NULL},
        {"--log-level", "loud", NULL},
        {"--lan-port", "0", NULL},
        {"--frobnicate", NULL, NULL},
        {"positional", NULL, NULL},
        {"--max-conns", NULL, NULL},
        {"--no-lan=1", NULL, NULL},
        {"--lan", "off", NULL},
    };
    struct config c;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_defaults(&c);
        err[0] = '\0';
        assert_true(parse(&c, err, sizeof(err), bad[i][0], bad[i][1], NULL) < 0);
        assert_true(err[0] != '\0');
        assert_null(strchr(err, '\n'));
    }
}

static void
test_file(void **state)
{
    struct config c;
    char err[256];
    const char *txt = "# pulld config\n"
                      "\n"
                      "listen 127.0.0.1:7000   # trailing comment\n"
                      "  lan off\r\n"
                      "bootstrap " KEY52 "@host.example:7450\n"
                      "max-conns 12\n"
                      "sync_interval_ms 1000\n"
                      "log-level warn\n"
                      "store-nosync on";

    (void)state;
    config_defaults(&c);
    assert_int_equal(config_load_buf(&c, txt, strlen(txt), "cfg", err, sizeof(err)), 0);
    assert_string_equal(c.listen, "127.0.0.1:7000");
    assert_false(c.lan);
    assert_int_equal(c.n_bootstrap, 1);
    assert_int_equal(c.limits.max_conns, 12);
    assert_int_equal(c.limits.sync_interval_ms, 1000);
    assert_int_equal(c.log_level, LOG_WARN);
    assert_true(c.store_nosync);
}

static void
test_flags_win(void **state)
{
    struct config c;
    char err[256];
    const char *txt = "listen 127.0.0.1:7000\nmax-conns 12\nlan on\nbootstrap " KEY52
                      "@127.0.0.1:1\nmax-handshakes 3\n";

    (void)state;
    config_defaults(&c);
    assert_int_equal(parse(&c, err, sizeof(err), "--listen", "127.0.0.1:0", "--max-conns", "5",
                           "--no-lan", "--bootstrap", KEY52 "@127.0.0.1:2", NULL),
                     0);
    assert_int_equal(config_load_buf(&c, txt, strlen(txt), "cfg", err, sizeof(err)), 0);
    assert_string_equal(c.listen, "127.0.0.1:0");
    assert_int_equal(c.limits.max_conns, 5);
    assert_false(c.lan);
    assert_int_equal(c.limits.max_handshakes, 3); /* not given as a flag: the file's */
    assert_int_equal(c.n_bootstrap, 2);           /* bootstraps add up */
}

/* nat: auto by default; a flag, a config key, the flag wins; anything else refused. */
static void
test_nat(void **state)
{
    struct config c;
    char err[256];
    const char *txt = "nat natpmp\n";

    (void)state;
    config_defaults(&c);
    assert_int_equal(c.nat, CONFIG_NAT_AUTO);
    assert_string_equal(config_nat_name(c.nat), "auto");
    assert_int_equal(config_load_buf(&c, txt, strlen(txt), "cfg", err, sizeof(err)), 0);
    assert_int_equal(c.nat, CONFIG_NAT_NATPMP);
    config_defaults(&c);
    assert_int_equal(parse(&c, err, sizeof(err), "--nat", "off", NULL), 0);
    assert_int_equal(config_load_buf(&c, txt, strlen(txt), "cfg", err, sizeof(err)), 0);
    assert_int_equal(c.nat, CONFIG_NAT_OFF); /* the flag wins */
    config_defaults(&c);
    assert_int_equal(parse(&c, err, sizeof(err), "--nat=upnp", NULL), 0);
    assert_int_equal(c.nat, CONFIG_NAT_UPNP);
    assert_string_equal(config_nat_name(c.nat), "upnp");
    static const char *const bad[] = {"", "UPNP", "pcp", "on", "auto2", "off "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_defaults(&c);
        err[0] = '\0';
        assert_true(parse(&c, err, sizeof(err), "--nat", bad[i], NULL) < 0);
        assert_non_null(strstr(err, "nat"));
        assert_int_equal(c.nat, CONFIG_NAT_AUTO);
    }
    config_defaults(&c);
    assert_true(parse(&c, err, sizeof(err), "--nat", NULL) < 0); /* missing value */
    assert_true(config_load_buf(&c, "nat maybe\n", 10, "cfg", err, sizeof(err)) < 0);
}

static void
test_file_bad(void **state)
{
    static const char *bad[] = {
        "frobnicate 1\n", "max-conns\n",   "max-conns 0\n",   "lan maybe\n",      "listen x\n",
        "no-lan 1\n",     "data-dir /x\n", "max-conns 1 2\n", "log-level \x01\n", "\x7f 1\n",
    };
    struct config c;
    char err[256];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        config_defaults(&c);
        err[0] = '\0';
        assert_true(config_load_buf(&c, bad[i], strlen(bad[i]), "f", err, sizeof(err)) < 0);
        assert_true(strncmp(err, "f:1: ", 5) == 0);
    }
    /* the line number is right */
    config_defaults(&c);
    assert_true(config_load_buf(&c, "lan on\n\n# x\nbogus 1\n", 21, "f", err, sizeof(err)) < 0);
    assert_true(strncmp(err, "f:4: ", 5) == 0);
    /* NUL inside, a too long line, a too big file */
    assert_true(config_load_buf(&c, "lan on\0x\n", 9, "f", err, sizeof(err)) < 0);
    {
        char *big = malloc(CONFIG_FILE_MAX + 2);
        assert_non_null(big);
        memset(big, 'a', CONFIG_FILE_MAX + 1);
        big[CONFIG_FILE_MAX + 1] = '\0';
        assert_true(config_load_buf(&c, big, 2000, "f", err, sizeof(err)) < 0);
        assert_int_equal(config_load_buf(&c, big, CONFIG_FILE_MAX + 1, "f", err, sizeof(err)),
                         PULL_ERR_TOO_BIG);
        free(big);
    }
    /* a tiny error buffer is fine */
    assert_true(config_load_buf(&c, "bogus 1\n", 8, "f", err, 4) < 0);
    assert_int_equal(strlen(err), 3);
}

static void
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void
test_load_file(void **state)
{
    char *dir = tu_tmpdir(), path[512], err[256];
    struct config c;
    FILE *f;

    (void)state;
    assert_int_equal(setenv("XDG_CONFIG_HOME", dir, 1), 0); /* no user file in there */
    config_defaults(&c);
    snprintf(c.data_dir, sizeof(c.data_dir), "%s", dir);
    assert_int_equal(config_load_file(&c, err, sizeof(err)), 0); /* missing is fine */
    snprintf(path, sizeof(path), "%s/config", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("max-conns 7\n", f);
    fclose(f);
    assert_int_equal(config_load_file(&c, err, sizeof(err)), 0);
    assert_int_equal(c.limits.max_conns, 7);
    f = fopen(path, "w");
    fputs("max-conns 7\nwhat 1\n", f);
    fclose(f);
    assert_true(config_load_file(&c, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "config:2: unknown key"));
    tu_rmrf(dir);
    free(dir);
}

/* The user's file: where it is looked for, and the order of the four sources. */
static void
test_user_file(void **state)
{
    char *home = tu_tmpdir(), *xdg = tu_tmpdir(), *data = tu_tmpdir();
    char path[600], err[256];
    struct config c;

    (void)state;
    /* $XDG_CONFIG_HOME/pull/config; a relative or empty one is ignored: ~/.config */
    assert_int_equal(setenv("HOME", home, 1), 0);
    assert_int_equal(setenv("XDG_CONFIG_HOME", xdg, 1), 0);
    assert_int_equal(config_user_file(path, sizeof(path)), 0);
    assert_true(strncmp(path, xdg, strlen(xdg)) == 0);
    assert_string_equal(path + strlen(xdg), "/pull/config");
    assert_int_equal(config_user_file(path, 5), PULL_ERR_TOO_BIG);
    assert_int_equal(setenv("XDG_CONFIG_HOME", "relative/dir", 1), 0);
    assert_int_equal(config_user_file(path, sizeof(path)), 0);
    assert_true(strncmp(path, home, strlen(home)) == 0);
    assert_string_equal(path + strlen(home), "/.config/pull/config");
    assert_int_equal(setenv("XDG_CONFIG_HOME", "", 1), 0);
    assert_int_equal(config_user_file(path, sizeof(path)), 0);
    assert_string_equal(path + strlen(home), "/.config/pull/config");

    /* ~/.config/pull/config alone applies */
    SNPRINTF_OK(path, "%s/.config", home);
    assert_int_equal(mkdir(path, 0700), 0);
    SNPRINTF_OK(path, "%s/.config/pull", home);
    assert_int_equal(mkdir(path, 0700), 0);
    SNPRINTF_OK(path, "%s/.config/pull/config", home);
    write_file(path, "max-conns 11\n");
    config_defaults(&c);
    SNPRINTF_OK(c.data_dir, "%s", data);
    assert_int_equal(config_load_file(&c, err, sizeof(err)), 0);
    assert_int_equal(c.limits.max_conns, 11);

    /* with XDG_CONFIG_HOME set, its file is the user's (and ~/.config is not read) */
    assert_int_equal(setenv("XDG_CONFIG_HOME", xdg, 1), 0);
    SNPRINTF_OK(path, "%s/pull", xdg);
    assert_int_equal(mkdir(path, 0700), 0);
    SNPRINTF_OK(path, "%s/pull/config", xdg);
    write_file(path, "# the user's\n"
                     "listen 127.0.0.1:1001\n"
                     "max-conns 21\n"
                     "max-handshakes 22\n"
                     "log-level debug\n"
                     "bootstrap " KEY52 "@127.0.0.1:1\n");
    SNPRINTF_OK(path, "%s/config", data);
    write_file(path, "# the node's\n"
                     "listen 127.0.0.1:2002\n"
                     "max-conns 31\n"
                     "bootstrap " KEY52 "@127.0.0.1:2\n");
    config_defaults(&c);
    assert_int_equal(parse(&c, err, sizeof(err), "--listen", "127.0.0.1:3003", NULL), 0);
    SNPRINTF_OK(c.data_dir, "%s", data);
    assert_int_equal(config_load_file(&c, err, sizeof(err)), 0);
    assert_string_equal(c.listen, "127.0.0.1:3003");   /* flag > data dir > user */
    assert_int_equal(c.limits.max_conns, 31);          /* data dir > user */
    assert_int_equal(c.limits.max_handshakes, 22);     /* user > default */
    assert_int_equal(c.log_level, LOG_DEBUG);          /* user > default */
    assert_int_equal(c.limits.idle_timeout_ms, 90000); /* the default */
    assert_int_equal(c.n_bootstrap, 2);                /* bootstraps add up */
    assert_string_equal(c.bootstrap[0], KEY52 "@127.0.0.1:1");
    assert_string_equal(c.bootstrap[1], KEY52 "@127.0.0.1:2");

    /* an error in the user's file names that file and line, and stops there */
    SNPRINTF_OK(path, "%s/pull/config", xdg);
    write_file(path, "max-conns 21\nfrobnicate 1\n");
    config_defaults(&c);
    SNPRINTF_OK(c.data_dir, "%s", data);
    err[0] = '\0';
    assert_true(config_load_file(&c, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "/pull/config:2: unknown key"));
    assert_int_equal(strncmp(err, xdg, strlen(xdg)), 0);

    /* a directory where the file should be is refused, not skipped */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mkdir(path, 0700), 0);
    config_defaults(&c);
    SNPRINTF_OK(c.data_dir, "%s", data);
    assert_true(config_load_file(&c, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "not a regular file"));

    /* no home at all: no user file, the data dir's file still applies */
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(unsetenv("XDG_CONFIG_HOME"), 0);
    assert_int_equal(unsetenv("HOME"), 0);
    config_defaults(&c);
    SNPRINTF_OK(c.data_dir, "%s", data);
    assert_int_equal(config_load_file(&c, err, sizeof(err)), 0);
    assert_int_equal(c.limits.max_conns, 31);

    tu_rmrf(home);
    tu_rmrf(xdg);
    tu_rmrf(data);
    free(home);
    free(xdg);
    free(data);
}

/* read_all returns the file's text (static buffer). */
static const char *
read_all(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n;

    assert_non_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* config_file_join: pull join's record of the network it joined. */
static void
test_file_join(void **state)
{
    char *dir = tu_tmpdir(), path[512], err[256], hex[65];
    const uint8_t pub[32] = PULL_NETWORK_KEY_PUBLIC;
    uint8_t key[32];
    struct config c;
    struct stat st;
    const char *t;

    (void)state;
    memset(key, 0x42, sizeof(key));
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    SNPRINTF_OK(path, "%s/config", dir);
    /* no file yet: it is made, 0600, with the key and the peer */
    assert_int_equal(config_file_join(dir, key, KEY52 "@127.0.0.1:7", err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    t = read_all(path);
    assert_non_null(strstr(t, "network-key "));
    assert_non_null(strstr(t, hex));
    assert_non_null(strstr(t, "bootstrap " KEY52 "@127.0.0.1:7\n"));
    /* and pulld reads it back */
    config_defaults(&c);
    assert_int_equal(config_load_buf(&c, t, strlen(t), "config", err, sizeof(err)), 0);
    assert_memory_equal(c.network_key, key, 32);
    assert_false(c.network_public);
    assert_int_equal(c.n_bootstrap, 1);

    /* joining again on the same key: the peer is not repeated, other lines are kept */
    write_file(path, "max-conns 9 # mine\n  network-key   "
                     "4242424242424242424242424242424242424242424242424242424242424242\n"
                     "bootstrap " KEY52 "@127.0.0.1:7\n");
    assert_int_equal(config_file_join(dir, key, KEY52 "@127.0.0.1:7", err, sizeof(err)), 0);
    t = read_all(path);
    assert_non_null(strstr(t, "max-conns 9 # mine\n"));
    assert_non_null(strstr(t, "bootstrap"));
    assert_null(strstr(strstr(t, "bootstrap") + 1, "bootstrap"));
    config_defaults(&c);
    assert_int_equal(config_load_buf(&c, t, strlen(t), "config", err, sizeof(err)), 0);
    assert_int_equal(c.n_bootstrap, 1);
    assert_int_equal(c.limits.max_conns, 9);

    /* another network (back to the public one): the old peers become comments */
    assert_int_equal(config_file_join(dir, pub, KEY52 "@10.0.0.1:8", err, sizeof(err)), 0);
    t = read_all(path);
    assert_non_null(
        strstr(t, "# a peer of the network before pull join: bootstrap " KEY52 "@127.0.0.1:7\n"));
    assert_null(strstr(t, hex));
    config_defaults(&c);
    assert_int_equal(config_load_buf(&c, t, strlen(t), "config", err, sizeof(err)), 0);
    assert_true(c.network_public);
    assert_int_equal(c.n_bootstrap, 1);
    assert_string_equal(c.bootstrap[0], KEY52 "@10.0.0.1:8");
    tu_rmrf(dir);
    free(dir);
}

static void
test_peer_parse(void **state)
{
    uint8_t key[32];
    char addr[64], host[64];
    uint16_t port;

    (void)state;
    assert_int_equal(config_parse_peer(KEY52 "@[fe80::1]:7450", key, addr, sizeof(addr)), 0);
    assert_string_equal(addr, "[fe80::1]:7450");
    assert_int_equal(config_split_hostport(addr, host, sizeof(host), &port), 0);
    assert_string_equal(host, "fe80::1");
    assert_int_equal(port, 7450);
    assert_int_equal(config_parse_peer(KEY52 "@h:1", key, addr, 3), PULL_ERR_INVAL);
    assert_int_equal(config_split_hostport("[::1:80", host, sizeof(host), &port), PULL_ERR_INVAL);
    assert_int_equal(config_split_hostport("a b:80", host, sizeof(host), &port), PULL_ERR_INVAL);
    assert_int_equal(config_split_hostport("abc:80", host, 3, &port), PULL_ERR_INVAL);
    assert_int_equal(config_split_hostport("abc:80", host, 4, &port), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),   cmocka_unit_test(test_flags),
        cmocka_unit_test(test_flags_bad),  cmocka_unit_test(test_file),
        cmocka_unit_test(test_flags_win),  cmocka_unit_test(test_file_bad),
        cmocka_unit_test(test_load_file),  cmocka_unit_test(test_user_file),
        cmocka_unit_test(test_peer_parse), cmocka_unit_test(test_file_join),
        cmocka_unit_test(test_nat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
