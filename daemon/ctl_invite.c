/*
 * ctl_invite: the control room of invitations - "invite" (make one) and "join" (redeem one
 * made by another node), proto/ctl.h; docs/DECISIONS.md "Invites" says why it works so.
 *
 * A code is never logged, and every copy of its secrets (the invite secret, the network
 * key) is wiped when the command is done with it.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/config.h"
#include "daemon/ctl_int.h"
#include "daemon/invites.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/invite.h"
#include "lib/log.h"
#include "proto/shs.h"

#define INVITE_EXPIRES_DEFAULT (7u * 86400u)
#define INVITE_EXPIRES_MAX (90u * 86400u)
#define CTL_INVITE_ADDRS 16

/* network_fp: "public", or the short fingerprint `pull status` shows for a private key. */
static void
network_fp(const uint8_t key[32], char out[16])
{
    const uint8_t pub[32] = PULL_NETWORK_KEY_PUBLIC;
    uint8_t h[32];

    if (sodium_memcmp(key, pub, 32) == 0) {
        snprintf(out, 16, "public");
        return;
    }
    crypto_generichash(h, sizeof(h), key, 32, NULL, 0);
    sodium_bin2hex(out, 16, h, 4);
}

int
ctl_h_invite(struct ctl_call *call, const struct ctl_request *req)
{
    struct node *n = call->srv->n;
    char(*addrs)[NODE_ADDR_MAX] = NULL;
    char *code = NULL, net[16];
    struct invite *inv = NULL;
    uint64_t uses = 1, expires_s = INVITE_EXPIRES_DEFAULT, now_s = node_now_s(n);
    struct mp_open m, list;
    size_t na;
    int rc;

    if ((rc = ctl_arg_uint(req, "uses", UINT32_MAX, &uses)) != 0 && rc != PULL_ERR_NOT_FOUND)
        return ctl_arg_failed(call, rc, "uses");
    if (uses < 1 || uses > INVITES_USES_MAX)
        return ctl_fail(call, PULL_ERR_INVAL, "uses: from 1 to %d joins", INVITES_USES_MAX);
    if ((rc = ctl_arg_uint(req, "expires_s", UINT64_MAX, &expires_s)) != 0 &&
        rc != PULL_ERR_NOT_FOUND)
        return ctl_arg_failed(call, rc, "expires_s");
    if (expires_s < 1 || expires_s > INVITE_EXPIRES_MAX)
        return ctl_fail(call, PULL_ERR_EXPIRY, "an invite lives from 1 s to 90 days");
    if (n->invites == NULL)
        return ctl_fail(call, PULL_ERR_IO,
                        "this node cannot keep invitations (its invites file could not be "
                        "read: see the log)");
    addrs = calloc(CTL_INVITE_ADDRS, NODE_ADDR_MAX);
    inv = calloc(1, sizeof(*inv));
    code = calloc(1, INVITE_TEXT_MAX + 1);
    if (addrs == NULL || inv == NULL || code == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    na = node_addresses(n, addrs, CTL_INVITE_ADDRS);
    for (size_t i = 0; i < na && inv->naddrs < INVITE_ADDRS_MAX; i++) {
        const char *at = strchr(addrs[i], '@');
        if (at != NULL && invite_addr_ok(at + 1, strlen(at + 1)))
            snprintf(inv->addrs[inv->naddrs++], sizeof(inv->addrs[0]), "%s", at + 1);
    }
    if (inv->naddrs == 0) {
        rc = ctl_fail(call, PULL_ERR_STATE,
                      "this node has no address another node could dial (is it listening? "
                      "see pull status)");
        goto out;
    }
    memcpy(inv->inviter, n->self.pk, 32);
    if (!n->cfg.network_public) {
        inv->private_net = true;
        memcpy(inv->network_key, n->cfg.network_key, 32);
    }
    env_random(n->env, inv->secret, sizeof(inv->secret));
    if ((rc = invite_encode(inv, code, INVITE_TEXT_MAX + 1)) < 0)
        goto out;
    if ((rc = invites_add(n->invites, inv->secret, (uint32_t)uses, now_s, now_s + expires_s)) !=
        0) {
        if (rc == PULL_ERR_QUOTA)
            rc = ctl_fail(call, rc,
                          "%d invitations are open already: wait until some are used or expire",
                          INVITES_MAX);
        else
            rc = ctl_fail(call, rc, "the invitation could not be saved (see the log)");
        goto out;
    }
    log_info("invite made: %u use%s, expires in %llu s", (unsigned)uses, uses == 1 ? "" : "s",
             (unsigned long long)expires_s);
    network_fp(n->cfg.network_key, net);
    mp_open_map(&m, ctl_begin(call, false));
    mp_kv_str(&m, "code", code);
    mp_kv_uint(&m, "uses", uses);
    mp_kv_uint(&m, "expires", now_s + expires_s);
    mp_kv_str(&m, "network", net);
    mp_kv_bool(&m, "private", inv->private_net);
    mp_key(&m, "addresses");
    mp_open_array(&list, m.pk);
    for (size_t i = 0; i < inv->naddrs; i++)
        mp_pack_cstr(mp_item(&list), inv->addrs[i]);
    mp_close(&list);
    mp_close(&m);
    ctl_send(call);
    rc = 0;
out:
    if (code != NULL) {
        sodium_memzero(code, INVITE_TEXT_MAX + 1);
        free(code);
    }
    if (inv != NULL) {
        invite_wipe(inv);
        free(inv);
    }
    free(addrs);
    return rc;
}

/* A `pull join` redeeming its invitation, one address of the inviter after the other. */
struct join_wait {
    struct ctl_call *call;
    struct invite inv;
    uint8_t netkey[32];
    size_t next;  /* the address being tried */
    int last_err; /* the last dial's failure */
    char last_reason[NODE_REASON_MAX];
};

/* connected_to: has this node a session with key? */
static bool
connected_to(struct node *n, const uint8_t key[32])
{
    struct node_peer_info p;
    size_t np = node_peer_count(n);

    for (size_t i = 0; i < np; i++) {
        if (node_peer_at(n, i, &p) == 0 && p.connected && sodium_memcmp(p.key, key, 32) == 0)
            return true;
    }
    return false;
}

static void
join_free(struct join_wait *w)
{
    sodium_memzero(w, sizeof(*w));
    free(w);
}

static void on_redeemed(void *arg, const struct node_probe_result *r);

/* join_try dials the next address; returns 0 (on_redeemed follows) or the error of the
 * last address. */
static int
join_try(struct join_wait *w)
{
    struct node *n = w->call->srv->n;
    int rc = PULL_ERR_NOT_FOUND;

    while (w->next < w->inv.naddrs) {
        rc = node_probe_invite(n, w->inv.inviter, w->inv.addrs[w->next], w->netkey, w->inv.secret,
                               on_redeemed, w);
        if (rc == 0)
            return 0;
        w->last_err = rc;
        snprintf(w->last_reason, sizeof(w->last_reason), "cannot dial %s: %s",
                 w->inv.addrs[w->next], pull_strerror(rc));
        w->next++;
    }
    return w->last_err != 0 ? w->last_err : rc;
}

/* join_done: the inviter accepted; record the network and the inviter, then connect (same
 * network) or say that pulld must restart (another network key). */
static int
join_done(struct join_wait *w)
{
    struct ctl_call *call = w->call;
    struct node *n = call->srv->n;
    char peer[NODE_ADDR_MAX + IDENT_TEXT_LEN + 2], idt[IDENT_TEXT_LEN + 1], err[300], net[16];
    const char *addr = w->inv.addrs[w->next];
    bool same = sodium_memcmp(w->netkey, n->cfg.network_key, 32) == 0;
    struct mp_open m;
    int rc;

    ident_to_text(w->inv.inviter, idt);
    snprintf(peer, sizeof(peer), "%s@%s", idt, addr);
    err[0] = '\0';
    if ((rc = config_file_join(n->cfg.data_dir, w->netkey, peer, err, sizeof(err))) != 0)
        return ctl_fail(call, rc,
                        "the inviter accepted, but the config file could not be written: %s "
                        "(the invitation's use is spent)",
                        err);
    if (same)
        (void)node_connect(n, w->inv.inviter, addr, NULL, NULL);
    network_fp(w->netkey, net);
    log_info("joined through %.8s at %s (network %s)%s", idt, addr, net,
             same ? "" : ": restart pulld to use that network");
    mp_open_map(&m, ctl_begin(call, false));
    mp_kv_bool(&m, "ok", true);
    mp_kv_str(&m, "inviter", idt);
    mp_kv_str(&m, "address", addr);
    mp_kv_str(&m, "network", net);
    mp_kv_bool(&m, "restart", !same);
    mp_kv_str(&m, "config", n->cfg.data_dir);
    mp_close(&m);
    ctl_send(call);
    return 0;
}

static void
on_redeemed(void *arg, const struct node_probe_result *r)
{
    struct join_wait *w = arg;
    struct ctl_call *call = w->call;
    int rc;

    if (r->err == 0) {
        ctl_done(call, join_done(w));
        join_free(w);
        return;
    }
    if (r->err == PULL_ERR_QUOTA || r->err == PULL_ERR_EXPIRED || r->err == PULL_ERR_NOT_FOUND) {
        /* the inviter answered: no other address will say otherwise */
        ctl_done(call, ctl_fail(call, r->err, "%s", r->reason));
        join_free(w);
        return;
    }
    w->last_err = r->err;
    snprintf(w->last_reason, sizeof(w->last_reason), "%s", r->reason);
    w->next++;
    if ((rc = join_try(w)) != 0) {
        ctl_done(call, ctl_fail(call, rc == PULL_ERR_CLOSED ? PULL_ERR_HANDSHAKE : rc,
                                "could not reach the inviter: %s", w->last_reason));
        join_free(w);
    }
}

int
ctl_h_join(struct ctl_call *call, const struct ctl_request *req)
{
    struct node *n = call->srv->n;
    char *code = NULL;
    struct join_wait *w = NULL;
    enum invite_bad bad;
    int rc;

    if ((code = calloc(1, INVITE_TEXT_MAX + 1)) == NULL)
        return PULL_ERR_NOMEM;
    if ((rc = ctl_arg_str(req, "code", INVITE_TEXT_MAX, code, INVITE_TEXT_MAX + 1)) != 0) {
        rc = rc == PULL_ERR_FIELD
                 ? ctl_fail(call, PULL_ERR_INVAL, "%s", invite_bad_str(INVITE_BAD_LENGTH))
                 : ctl_arg_failed(call, rc, "code");
        goto out;
    }
    if ((w = calloc(1, sizeof(*w))) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    if (invite_decode(code, &w->inv, &bad) != 0) {
        rc = ctl_fail(call, PULL_ERR_INVAL, "%s", invite_bad_str(bad));
        goto out;
    }
    if (sodium_memcmp(w->inv.inviter, n->self.pk, 32) == 0) {
        rc = ctl_fail(call, PULL_ERR_BAD_KEY,
                      "this invite was made by this node: give it to the node that joins");
        goto out;
    }
    if (w->inv.private_net) {
        memcpy(w->netkey, w->inv.network_key, 32);
    } else {
        const uint8_t pub[32] = PULL_NETWORK_KEY_PUBLIC;
        memcpy(w->netkey, pub, 32);
    }
    /* a --network-key flag wins over the config file: the joined key would never apply */
    if (config_netkey_from_flag(&n->cfg) && sodium_memcmp(w->netkey, n->cfg.network_key, 32) != 0) {
        rc = ctl_fail(call, PULL_ERR_STATE,
                      "pulld runs with --network-key, which would win over the joined network's "
                      "key: start pulld without it, then join");
        goto out;
    }
    if (sodium_memcmp(w->netkey, n->cfg.network_key, 32) == 0 && connected_to(n, w->inv.inviter)) {
        rc = ctl_fail(call, PULL_ERR_EXISTS,
                      "already connected to the inviter: this node is on its network");
        goto out;
    }
    w->call = ctl_keep(call);
    if ((rc = join_try(w)) == 0) {
        w = NULL; /* on_redeemed has it */
        goto out;
    }
    ctl_done(call, 0); /* the keep above: on_redeemed will not run */
    rc = ctl_fail(call, rc, "could not reach the inviter: %s", w->last_reason);
out:
    if (code != NULL) {
        sodium_memzero(code, INVITE_TEXT_MAX + 1);
        free(code);
    }
    if (w != NULL)
        join_free(w);
    return rc;
}

/* The delay between the reply to "restart" and the stop: time for the reply to be written
 * (the stop closes every control client). */
#define RESTART_DELAY_MS 100

static void
restart_closed(uv_handle_t *h)
{
    free(h);
}

static void
restart_now(uv_timer_t *t)
{
    struct node *n = t->data;

    uv_close((uv_handle_t *)t, restart_closed);
    if (!n->stopping && n->restart != NULL)
        n->restart(n->restart_ctx);
}

int
ctl_h_restart(struct ctl_call *call, const struct ctl_request *req)
{
    struct node *n = call->srv->n;
    struct mp_open m;
    uv_timer_t *t;
    (void)req;

    if (n->restart == NULL)
        return ctl_fail(call, PULL_ERR_UNSUPPORTED, "this pulld cannot restart itself");
    if (n->stopping)
        return ctl_fail(call, PULL_ERR_STATE, "pulld is stopping");
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return PULL_ERR_NOMEM;
    uv_timer_init(n->loop, t);
    t->data = n;
    uv_timer_start(t, restart_now, RESTART_DELAY_MS, 0);
    log_info("restart asked for on the control socket");
    mp_open_map(&m, ctl_begin(call, false));
    mp_kv_bool(&m, "ok", true);
    mp_close(&m);
    ctl_send(call);
    return 0;
}
