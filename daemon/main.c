/*
 * pulld: parse flags, prepare the data directory and the identity, run the node until
 * SIGINT or SIGTERM. Exit codes (CONTRACT.md): 0 clean stop, 1 bad usage or config, 2 data
 * directory, key or store problem - always with a one-line reason on stderr.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/node.h"
#include "daemon/setup.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/paths.h"

static void
on_signal(uv_signal_t *h, int signum)
{
    struct node *n = h->data;

    log_info("signal %d: shutting down", signum);
    node_stop(n);
}

static void
close_signal(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (h->type == UV_SIGNAL && !uv_is_closing(h))
        uv_close(h, NULL);
}

int
main(int argc, char **argv)
{
    struct config cfg;
    struct ident self;
    struct node *n = NULL;
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    char err[512], dir[PATH_MAX], idtext[IDENT_TEXT_LEN + 1], shortid[IDENT_SHORT_LEN + 1];
    bool created = false;
    int rc;

    memset(&self, 0, sizeof(self));
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) {
        fprintf(stderr, "pulld: libsodium failed to initialize\n");
        return 2;
    }
    config_defaults(&cfg);
    err[0] = '\0';
    rc = config_parse_args(&cfg, argc, argv, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "pulld: %s\n", err);
        return 1;
    }
    log_set_level(cfg.log_level);
    if (paths_data_dir(cfg.data_dir[0] != '\0' ? cfg.data_dir : NULL, dir, sizeof(dir)) != 0) {
        fprintf(stderr, "pulld: cannot determine the data directory: use --data-dir\n");
        return 1;
    }
    memcpy(cfg.data_dir, dir, strlen(dir) + 1);
    if (setup_data_dir(cfg.data_dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "pulld: %s\n", err);
        return 2;
    }
    if (config_load_file(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "pulld: %s\n", err);
        return 1;
    }
    log_set_level(cfg.log_level);
    if (setup_identity(cfg.data_dir, &self, &created, err, sizeof(err)) != 0) {
        fprintf(stderr, "pulld: %s\n", err);
        return 2;
    }
    ident_to_text(self.pk, idtext);
    ident_short(self.pk, shortid);
    log_set_prefix(shortid);
    if (created)
        log_info("new identity %s", idtext);
    log_info("pulld %s, node %s, data directory %s", PULL_VERSION, idtext, cfg.data_dir);

    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "pulld: cannot create the event loop\n");
        ident_wipe(&self);
        return 2;
    }
    rc = node_new(&loop, &cfg, &self, &n);
    ident_wipe(&self);
    sodium_memzero(cfg.network_key, sizeof(cfg.network_key));
    if (rc != 0) {
        fprintf(stderr, "pulld: cannot start: %s\n", pull_strerror(rc));
        uv_walk(&loop, close_signal, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return rc == PULL_ERR_INVAL ? 1 : 2;
    }
    uv_signal_init(&loop, &sigint);
    uv_signal_init(&loop, &sigterm);
    sigint.data = sigterm.data = n;
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    /* the signal handles must not keep the loop alive once the node has stopped */
    uv_unref((uv_handle_t *)&sigint);
    uv_unref((uv_handle_t *)&sigterm);
    uv_run(&loop, UV_RUN_DEFAULT);
    /* the loop ends once node_stop closed everything; close the other signal handle */
    uv_walk(&loop, close_signal, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    node_free(n);
    if (uv_loop_close(&loop) != 0)
        log_warn("event loop closed with handles still open");
    log_info("stopped");
    return 0;
}
