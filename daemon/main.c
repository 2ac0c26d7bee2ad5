/*
 * pulld: parse flags, prepare the data directory and the identity, run the node until
 * SIGINT or SIGTERM. Exit codes (CONTRACT.md): 0 clean stop, 1 bad usage or config, 2 data
 * directory, key or store problem - always with a one-line reason on stderr. A damaged
 * store is found by store_check before anything maps it: exit 2, never a crash in LMDB.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sodium.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/ctl_server.h"
#include "daemon/dyads.h"
#include "daemon/lan.h"
#include "daemon/nat.h"
#include "daemon/node.h"
#include "daemon/notify.h"
#include "daemon/people.h"
#include "daemon/invites.h"
#include "daemon/setup.h"
#include "daemon/sync.h"
#include "lib/env.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/paths.h"
#include "lib/store.h"

/* The floors of a running pulld, bottom up. main wires them: each part registers with
 * the ones below it, none calls up. */
struct pulld {
    struct node *node;       /* loop, store, search index, the write batch */
    struct sync *sync;       /* net + the protocol engines */
    struct people *people;   /* names, record handles, trust */
    struct dyads *dyads;     /* dyads and their mail */
    struct nat *nat;         /* port mapping on the router (NULL with --nat off) */
    struct lan *lan;         /* LAN discovery (NULL with --no-lan) */
    struct ctl_server *ctl;  /* the control socket */
    struct invites *invites; /* the invitations handed out (the node borrows them) */
};

/* pulld_stop stops the parts top down; node_stop then makes the one last commit of what
 * they queued (peers, mail, dyads). */
static void
pulld_stop(struct pulld *p)
{
    if (p->node == NULL || p->node->stopping)
        return;
    ctl_server_stop(p->ctl);
    lan_stop(p->lan);
    nat_stop(p->nat);
    dyads_stop(p->dyads);
    people_stop(p->people);
    sync_stop(p->sync);
    node_stop(p->node);
}

static void
pulld_free(struct pulld *p)
{
    ctl_server_free(p->ctl);
    lan_free(p->lan);
    nat_free(p->nat);
    dyads_free(p->dyads);
    people_free(p->people);
    sync_free(p->sync);
    node_free(p->node);
    invites_free(p->invites);
    memset(p, 0, sizeof(*p));
}

/* pulld_start builds the floors. On failure everything built is stopped (the caller runs
 * the loop so handles close, then pulld_free). */
static int
pulld_start(uv_loop_t *loop, const struct config *cfg, const struct ident *self, struct pulld *p)
{
    struct ctl_services svc;
    int rc;

    memset(p, 0, sizeof(*p));
    if ((rc = node_new(loop, cfg, self, &p->node)) != 0)
        return rc;
    /* without its invitations the node still runs: `pull invite` and joins then fail */
    if ((rc = invites_open(cfg->data_dir, &p->invites)) != 0)
        log_warn("invitations not available: %s", pull_strerror(rc));
    p->node->invites = p->invites;
    if ((rc = sync_new(p->node, &p->sync)) != 0)
        goto fail;
    if ((rc = people_start(p->node, &p->people)) != 0)
        goto fail;
    if ((rc = dyads_start(p->node, p->sync, &p->dyads)) != 0) {
        log_error("cannot start the dyad service: %s", pull_strerror(rc));
        goto fail;
    }
    dyads_set_people(p->dyads, p->people);
    if ((rc = nat_start(p->node, p->sync, &p->nat)) != 0)
        log_warn("port mapping not available: %s", pull_strerror(rc)); /* not fatal */
    if ((rc = lan_start(p->node, &p->lan)) != 0)
        log_warn("LAN discovery not available: %s", pull_strerror(rc)); /* not fatal */
    svc.dyads = p->dyads;
    svc.lan = p->lan;
    svc.nat = p->nat;
    svc.people = p->people;
    if ((rc = ctl_server_start(p->node, &svc, &p->ctl)) != 0) {
        log_error("cannot start the control socket: %s", pull_strerror(rc));
        goto fail;
    }
    return 0;
fail:
    pulld_stop(p);
    return rc;
}

static void
on_signal(uv_signal_t *h, int signum)
{
    struct pulld *p = h->data;

    log_info("signal %d: shutting down", signum);
    notify_stopping();
    pulld_stop(p);
}

/* Set by on_restart: once stopped, main starts pulld again (execv) instead of exiting. */
static bool restart_wanted;

/* on_restart: `pull join` changed the network key (node.h restart): stop like on SIGTERM,
 * but tell the service manager nothing (the process goes on, with the same pid). */
static void
on_restart(void *ctx)
{
    struct pulld *p = ctx;

    log_info("restarting to read the configuration again (a new network key)");
    restart_wanted = true;
    pulld_stop(p);
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
    struct pulld p;
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    char err[512], dir[PATH_MAX], idtext[IDENT_TEXT_LEN + 1], shortid[IDENT_SHORT_LEN + 1];
    bool created = false;
    uint64_t t0;
    int rc, lock_fd = -1;

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
    /* the lock before anything else: a second pulld on this directory stops here */
    if (setup_lock(cfg.data_dir, &lock_fd, err, sizeof(err)) != 0) {
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

    t0 = env_now_ms(env_system());
    if ((rc = paths_join(cfg.data_dir, PATHS_STORE_NAME, dir, sizeof(dir))) != 0 ||
        (rc = store_check(dir, err, sizeof(err))) != 0) {
        if (rc == PULL_ERR_STORE)
            fprintf(stderr,
                    "pulld: the store %s is damaged: %s; move it away to start with an "
                    "empty one\n",
                    dir, err);
        else
            fprintf(stderr, "pulld: cannot check the store %s: %s\n", dir, pull_strerror(rc));
        ident_wipe(&self);
        return 2;
    }
    log_info("store checked in %llu ms", (unsigned long long)(env_now_ms(env_system()) - t0));

    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "pulld: cannot create the event loop\n");
        ident_wipe(&self);
        return 2;
    }
    rc = pulld_start(&loop, &cfg, &self, &p);
    ident_wipe(&self);
    sodium_memzero(cfg.network_key, sizeof(cfg.network_key));
    if (rc != 0) {
        /* the part that failed logged why; this line says what it means */
        if (rc == PULL_ERR_INVAL)
            fprintf(stderr, "pulld: cannot start: bad configuration (see the error above)\n");
        else
            fprintf(stderr, "pulld: cannot start: %s\n", pull_strerror(rc));
        uv_walk(&loop, close_signal, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        pulld_free(&p);
        uv_loop_close(&loop);
        return rc == PULL_ERR_INVAL ? 1 : 2;
    }
    p.node->restart = on_restart;
    p.node->restart_ctx = &p;
    uv_signal_init(&loop, &sigint);
    uv_signal_init(&loop, &sigterm);
    sigint.data = sigterm.data = &p;
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    /* the signal handles must not keep the loop alive once the node has stopped */
    uv_unref((uv_handle_t *)&sigint);
    uv_unref((uv_handle_t *)&sigterm);
    notify_ready(shortid, node_listen_port(p.node));
    uv_run(&loop, UV_RUN_DEFAULT);
    /* the loop ends once node_stop closed everything; close the other signal handle */
    uv_walk(&loop, close_signal, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    pulld_free(&p);
    if (uv_loop_close(&loop) != 0)
        log_warn("event loop closed with handles still open");
    if (restart_wanted) {
        /* the same binary and arguments; the lock file and every socket are close-on-exec */
        log_info("stopped; starting again");
        execv("/proc/self/exe", argv);
        execv(argv[0], argv);
        fprintf(stderr, "pulld: cannot start again (%s): start pulld yourself\n", strerror(errno));
        return 2;
    }
    log_info("stopped");
    return 0;
}
