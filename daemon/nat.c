/*
 * nat: port mapping through UPnP-IGD and NAT-PMP (nat.h has the overview).
 *
 * One job at a time: a struct nat_job that the loop fills, the pool thread runs (touching
 * nothing else: no log, no node), and the loop reads back in the after-work callback.
 * While `busy`, only the thread touches the job.
 */
#include "daemon/nat.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <uv.h>

#ifdef PULL_HAVE_MINIUPNPC
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#endif
#ifdef PULL_HAVE_NATPMP
#include <natpmp.h>
#endif

#include "lib/err.h"
#include "lib/log.h"

#define NAT_UPNP_DISCOVER_MS 500        /* per SSDP search type (at most four) */
#define NAT_PMP_WAIT_MS 2000            /* per NAT-PMP request */
#define NAT_RETRY_MS 60000u             /* after a failure, doubling ... */
#define NAT_RETRY_MAX_MS 900000u        /* ... up to 15 min */
#define NAT_RENEW_MIN_MS 5000u          /* never renew more often (a router granting 1 s) */
#define NAT_PERMANENT_CHECK_MS 3600000u /* a permanent mapping: checked again hourly */
#define NAT_URL_MAX 256
#define NAT_PORT_TRIES 3 /* the listen port itself, then random ones (UPnP conflicts) */

enum nat_method { NAT_NONE = 0, NAT_UPNP, NAT_NATPMP };
enum nat_op { OP_MAP, OP_RELEASE };

struct nat_job {
    enum nat_op op;
    enum config_nat mode;
    uint16_t port;      /* our listen port */
    uint32_t lease_ask; /* the lease asked for, s (limit nat_lease_s) */
    uint16_t try_port[NAT_PORT_TRIES];
    /* in and out: what the last mapping was (a renewal keeps the same external port) */
    enum nat_method method;
    uint16_t ext_port;
    char control_url[NAT_URL_MAX]; /* UPnP: the IGD's control URL ("" if not known) */
    char service[NAT_URL_MAX];     /* ... and service type */
    char lan[64];                  /* UPnP: our address as the IGD sees us */
    /* out */
    int rc;
    char external[64];
    uint32_t lease_s;
    char error[160];
};

struct nat {
    struct node *n;
    struct sync *s;
    enum config_nat mode;
    uint16_t port;
    uv_timer_t timer;
    uv_work_t work;
    bool busy, stopping, release_queued;
    uint32_t retry_ms;
    uint64_t start_ms, expires_ms;
    enum nat_method live; /* the method of the mapping in place (NAT_NONE: none) */
    struct nat_job job;
    struct nat_info info; /* what status shows (loop only) */
};

static void nat_schedule(struct nat *t, uint64_t ms);

/* ---------------------------------------------------------------- on the pool thread */

static void
job_err(struct nat_job *j, int rc, const char *msg)
{
    j->rc = rc;
    snprintf(j->error, sizeof(j->error), "%s", msg);
}

#if defined(PULL_HAVE_MINIUPNPC) || defined(PULL_HAVE_NATPMP)
/* external_ok: the router's external address is a numeric IPv4 address (copied bounded). */
static bool
external_ok(const char *s, char out[64])
{
    struct in_addr a;
    char buf[INET_ADDRSTRLEN];

    if (s == NULL || strnlen(s, 64) >= 16 || inet_pton(AF_INET, s, &a) != 1 || a.s_addr == 0 ||
        inet_ntop(AF_INET, &a, buf, sizeof(buf)) == NULL)
        return false;
    snprintf(out, 64, "%s", buf);
    return true;
}
#endif

#ifdef PULL_HAVE_MINIUPNPC
/* upnp_add asks the IGD at the job's control URL for ext -> lan:port. Returns the UPnP
 * result (0: mapped). */
static int
upnp_add(struct nat_job *j, uint16_t ext, const char *lease)
{
    char e[8], i[8];

    snprintf(e, sizeof(e), "%u", (unsigned)ext);
    snprintf(i, sizeof(i), "%u", (unsigned)j->port);
    return UPNP_AddPortMapping(j->control_url, j->service, e, i, j->lan, "pulld", "TCP", NULL,
                               lease);
}

/* upnp_map_at maps through the known IGD: the previous external port first (a renewal),
 * else the job's candidates. Returns 0 or an error with j->error set. */
static int
upnp_map_at(struct nat_job *j)
{
    char lease[16], ext[64];
    int r = -1;

    snprintf(lease, sizeof(lease), "%u", (unsigned)j->lease_ask);
    for (int k = -1; k < NAT_PORT_TRIES; k++) {
        uint16_t p = k < 0 ? j->ext_port : j->try_port[k];
        if (p == 0)
            continue;
        r = upnp_add(j, p, lease);
        if (r == 725) { /* OnlyPermanentLeasesSupported */
            snprintf(lease, sizeof(lease), "0");
            r = upnp_add(j, p, lease);
        }
        if (r == 0) {
            j->ext_port = p;
            break;
        }
        if (r != 718) /* not ConflictInMappingEntry: another port won't help */
            break;
    }
    if (r != 0) {
        j->rc = PULL_ERR_IO;
        snprintf(j->error, sizeof(j->error), "UPnP router refused the mapping: %.100s",
                 strupnperror(r) != NULL ? strupnperror(r) : "?");
        return j->rc;
    }
    ext[0] = '\0';
    if (UPNP_GetExternalIPAddress(j->control_url, j->service, ext) != 0 ||
        !external_ok(ext, j->external)) {
        job_err(j, PULL_ERR_IO, "UPnP router gave no usable external address");
        return j->rc;
    }
    j->lease_s = (uint32_t)strtoul(lease, NULL, 10);
    j->method = NAT_UPNP;
    j->rc = 0;
    return 0;
}

static int
upnp_map(struct nat_job *j)
{
    struct UPNPDev *devs = NULL;
    struct UPNPUrls urls;
    struct IGDdatas data;
    char lan[64];
    int err = 0, r, igd;

    if (j->control_url[0] != '\0' && upnp_map_at(j) == 0)
        return 0; /* renewed at the known IGD */
    j->control_url[0] = '\0';
    memset(&urls, 0, sizeof(urls));
    memset(&data, 0, sizeof(data));
    devs = upnpDiscover(NAT_UPNP_DISCOVER_MS, NULL, NULL, UPNP_LOCAL_PORT_ANY, 0, 2, &err);
    if (devs == NULL) {
        job_err(j, PULL_ERR_NOT_FOUND, "no UPnP router answered");
        return j->rc;
    }
    lan[0] = '\0';
#if MINIUPNPC_API_VERSION >= 18
    igd = UPNP_GetValidIGD(devs, &urls, &data, lan, sizeof(lan), NULL, 0);
#else
    igd = UPNP_GetValidIGD(devs, &urls, &data, lan, sizeof(lan));
#endif
    freeUPNPDevlist(devs);
    r = igd;
    if (r != 1) {
        job_err(j, PULL_ERR_NOT_FOUND,
                r == 2 ? "the UPnP router says it is not connected" : "no UPnP router found");
        goto out;
    }
    if (urls.controlURL == NULL || strlen(urls.controlURL) >= sizeof(j->control_url) ||
        strnlen(data.first.servicetype, sizeof(data.first.servicetype)) >= sizeof(j->service) ||
        strnlen(lan, sizeof(lan)) >= sizeof(j->lan)) {
        job_err(j, PULL_ERR_IO, "UPnP router description too long");
        goto out;
    }
    snprintf(j->control_url, sizeof(j->control_url), "%s", urls.controlURL);
    snprintf(j->service, sizeof(j->service), "%s", data.first.servicetype);
    snprintf(j->lan, sizeof(j->lan), "%s", lan);
    r = upnp_map_at(j);
out:
    if (igd == 1 || igd == 2 || igd == 3)
        FreeUPNPUrls(&urls);
    return j->rc;
}

static void
upnp_release(struct nat_job *j)
{
    char e[8];

    if (j->control_url[0] == '\0' || j->ext_port == 0)
        return;
    snprintf(e, sizeof(e), "%u", (unsigned)j->ext_port);
    (void)UPNP_DeletePortMapping(j->control_url, j->service, e, "TCP", NULL);
}
#endif

#ifdef PULL_HAVE_NATPMP
/* pmp_wait reads the answer to the request just sent, retrying as the library says, for at
 * most NAT_PMP_WAIT_MS. Returns 0 or an error. */
static int
pmp_wait(natpmp_t *np, natpmpresp_t *resp)
{
    uint64_t start = uv_hrtime() / 1000000u, now;
    int r;

    do {
        struct pollfd pfd = {.fd = np->s, .events = POLLIN};
        struct timeval tv;
        long ms = 250;
        now = uv_hrtime() / 1000000u;
        if (getnatpmprequesttimeout(np, &tv) == 0)
            ms = (long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
        if (ms < 0)
            ms = 0;
        if ((uint64_t)ms > start + NAT_PMP_WAIT_MS - now)
            ms = (long)(start + NAT_PMP_WAIT_MS - now);
        (void)poll(&pfd, 1, (int)ms);
        r = readnatpmpresponseorretry(np, resp);
        now = uv_hrtime() / 1000000u;
    } while (r == NATPMP_TRYAGAIN && now < start + NAT_PMP_WAIT_MS);
    return r;
}

static int
pmp_map(struct nat_job *j)
{
    natpmp_t np;
    natpmpresp_t resp;
    char ext[INET_ADDRSTRLEN];
    uint16_t want = j->ext_port != 0 ? j->ext_port : j->port;
    int r;

    if (initnatpmp(&np, 0, 0) != 0) {
        job_err(j, PULL_ERR_NOT_FOUND, "NAT-PMP: no default gateway");
        return j->rc;
    }
    memset(&resp, 0, sizeof(resp));
    if (sendpublicaddressrequest(&np) < 0 || pmp_wait(&np, &resp) != 0 ||
        resp.type != NATPMP_RESPTYPE_PUBLICADDRESS ||
        inet_ntop(AF_INET, &resp.pnu.publicaddress.addr, ext, sizeof(ext)) == NULL ||
        !external_ok(ext, j->external)) {
        job_err(j, PULL_ERR_NOT_FOUND, "no NAT-PMP router answered");
        goto out;
    }
    memset(&resp, 0, sizeof(resp));
    if ((r = sendnewportmappingrequest(&np, NATPMP_PROTOCOL_TCP, j->port, want, j->lease_ask)) <
            0 ||
        (r = pmp_wait(&np, &resp)) != 0 || resp.type != NATPMP_RESPTYPE_TCPPORTMAPPING ||
        resp.pnu.newportmapping.privateport != j->port ||
        resp.pnu.newportmapping.mappedpublicport == 0 || resp.pnu.newportmapping.lifetime == 0) {
        job_err(j, PULL_ERR_IO, "NAT-PMP router refused the mapping");
        goto out;
    }
    j->ext_port = resp.pnu.newportmapping.mappedpublicport;
    j->lease_s = resp.pnu.newportmapping.lifetime;
    j->method = NAT_NATPMP;
    j->rc = 0;
out:
    closenatpmp(&np);
    return j->rc;
}

static void
pmp_release(struct nat_job *j)
{
    natpmp_t np;
    natpmpresp_t resp;

    if (j->ext_port == 0 || initnatpmp(&np, 0, 0) != 0)
        return;
    /* lifetime 0 deletes the mapping (RFC 6886 3.4) */
    if (sendnewportmappingrequest(&np, NATPMP_PROTOCOL_TCP, j->port, 0, 0) >= 0)
        (void)pmp_wait(&np, &resp);
    closenatpmp(&np);
}
#endif

static void
job_run(uv_work_t *w)
{
    struct nat *t = w->data;
    struct nat_job *j = &t->job;
    bool upnp = j->mode == CONFIG_NAT_AUTO || j->mode == CONFIG_NAT_UPNP;
    bool pmp = j->mode == CONFIG_NAT_AUTO || j->mode == CONFIG_NAT_NATPMP;
    char first[160] = "";

    j->rc = PULL_ERR_UNSUPPORTED;
    j->error[0] = '\0';
    if (j->op == OP_RELEASE) {
#ifdef PULL_HAVE_MINIUPNPC
        if (j->method == NAT_UPNP)
            upnp_release(j);
#endif
#ifdef PULL_HAVE_NATPMP
        if (j->method == NAT_NATPMP)
            pmp_release(j);
#endif
        j->rc = 0;
        return;
    }
    /* a renewal asks the same router the same way first */
    if (j->method == NAT_NATPMP && pmp)
        upnp = false;
#ifdef PULL_HAVE_MINIUPNPC
    if (upnp && upnp_map(j) == 0)
        return;
    if (upnp)
        snprintf(first, sizeof(first), "%s", j->error);
#else
    if (upnp)
        snprintf(first, sizeof(first), "built without UPnP (libminiupnpc)");
#endif
#ifdef PULL_HAVE_NATPMP
    if (pmp && pmp_map(j) == 0)
        return;
#else
    if (pmp)
        job_err(j, PULL_ERR_UNSUPPORTED, "built without NAT-PMP (libnatpmp)");
#endif
    if (first[0] != '\0' && pmp) {
        char both[160];
        snprintf(both, sizeof(both), "%.70s; %.80s", first, j->error);
        snprintf(j->error, sizeof(j->error), "%s", both);
    } else if (first[0] != '\0') {
        snprintf(j->error, sizeof(j->error), "%s", first);
    }
    if (j->rc == 0)
        j->rc = PULL_ERR_IO;
    j->method = NAT_NONE;
}

/* ---------------------------------------------------------------- on the loop */

static const char *
method_name(enum nat_method m)
{
    return m == NAT_UPNP ? "upnp" : m == NAT_NATPMP ? "natpmp" : "";
}

static void
job_done(uv_work_t *w, int status)
{
    struct nat *t = w->data;
    struct nat_job *j = &t->job;
    uint64_t now = node_now_ms(t->n);
    bool was = t->info.method[0] != '\0';

    t->busy = false;
    t->info.busy = false;
    if (t->stopping) {
        if (j->op == OP_MAP && j->rc == 0 && !t->release_queued)
            nat_stop(t); /* mapped while stopping: delete it again */
        return;
    }
    if (status != 0 || j->rc != 0) {
        snprintf(t->info.error, sizeof(t->info.error), "%s",
                 status != 0 ? uv_strerror(status) : j->error);
        if (was && now < t->expires_ms) {
            /* the renewal failed, the lease still runs: try again before it ends, the same
             * way (and delete it at stop) */
            uint64_t left = t->expires_ms - now;
            j->method = t->live;
            log_warn("port mapping: renewal failed (%s); retrying", t->info.error);
            nat_schedule(t, left / 2 < NAT_RETRY_MS ? left / 2 : NAT_RETRY_MS);
            return;
        }
        t->live = NAT_NONE;
        if (was) {
            log_warn("port mapping lost: %s", t->info.error);
            t->info.method[0] = '\0';
            t->info.external[0] = '\0';
            t->info.mapped_port = 0;
            t->info.lease_s = 0;
            sync_set_external(t->s, NULL, 0);
        } else if (t->info.attempts == 1) {
            log_info("no port mapping: %s", t->info.error);
        }
        nat_schedule(t, t->retry_ms);
        t->retry_ms = t->retry_ms * 2 > NAT_RETRY_MAX_MS ? NAT_RETRY_MAX_MS : t->retry_ms * 2;
        return;
    }
    t->retry_ms = NAT_RETRY_MS;
    t->live = j->method;
    t->info.error[0] = '\0';
    if (!was || strcmp(t->info.external, j->external) != 0 || t->info.mapped_port != j->ext_port) {
        snprintf(t->info.method, sizeof(t->info.method), "%s", method_name(j->method));
        snprintf(t->info.external, sizeof(t->info.external), "%s", j->external);
        t->info.mapped_port = j->ext_port;
        if (t->info.mapped_ms == 0)
            t->info.mapped_ms = now - t->start_ms > 0 ? now - t->start_ms : 1;
        log_info("port mapping (%s): %s:%u -> port %u, lease %u s", t->info.method, j->external,
                 (unsigned)j->ext_port, (unsigned)t->port, (unsigned)j->lease_s);
        sync_set_external(t->s, j->external, j->ext_port);
    }
    snprintf(t->info.method, sizeof(t->info.method), "%s", method_name(j->method));
    t->info.lease_s = j->lease_s;
    if (j->lease_s == 0) {
        t->expires_ms = UINT64_MAX;
        nat_schedule(t, NAT_PERMANENT_CHECK_MS);
    } else {
        uint64_t half = (uint64_t)j->lease_s * 500u;
        t->expires_ms = now + (uint64_t)j->lease_s * 1000u;
        /* at half the lease, but at least hourly (a long lease: the external address may
         * change meanwhile) and at most every NAT_RENEW_MIN_MS */
        half = half > NAT_PERMANENT_CHECK_MS ? NAT_PERMANENT_CHECK_MS : half;
        nat_schedule(t, half < NAT_RENEW_MIN_MS ? NAT_RENEW_MIN_MS : half);
    }
}

static void
nat_queue(struct nat *t, enum nat_op op)
{
    int rc;

    t->job.op = op;
    t->job.mode = t->mode;
    t->job.port = t->port;
    t->job.lease_ask = t->n->cfg.limits.nat_lease_s;
    t->job.try_port[0] = t->port;
    for (int k = 1; k < NAT_PORT_TRIES; k++)
        t->job.try_port[k] = (uint16_t)(1024 + randombytes_uniform(65536 - 1024));
    t->work.data = t;
    if ((rc = uv_queue_work(t->n->loop, &t->work, job_run, job_done)) != 0) {
        snprintf(t->info.error, sizeof(t->info.error), "cannot start: %s", uv_strerror(rc));
        if (!t->stopping)
            nat_schedule(t, t->retry_ms);
        return;
    }
    t->busy = true;
    t->info.busy = op == OP_MAP;
    if (op == OP_MAP)
        t->info.attempts++;
}

static void
on_timer(uv_timer_t *tm)
{
    struct nat *t = tm->data;

    if (!t->busy && !t->stopping)
        nat_queue(t, OP_MAP);
}

static void
nat_schedule(struct nat *t, uint64_t ms)
{
    uv_timer_start(&t->timer, on_timer, ms, 0);
}

/* listen_loopback: the node listens on a loopback address (no router forwards there). */
static bool
listen_loopback(const struct node *n)
{
    char host[CONFIG_ADDR_MAX];
    uint16_t port;

    if (config_split_hostport(n->cfg.listen, host, sizeof(host), &port) != 0)
        return false;
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

/* method_built: this build can try what mode asks. */
static bool
method_built(enum config_nat mode)
{
    bool upnp = false, pmp = false;

#ifdef PULL_HAVE_MINIUPNPC
    upnp = true;
#endif
#ifdef PULL_HAVE_NATPMP
    pmp = true;
#endif
    return mode == CONFIG_NAT_UPNP ? upnp : mode == CONFIG_NAT_NATPMP ? pmp : upnp || pmp;
}

int
nat_start(struct node *n, struct sync *s, struct nat **out)
{
    struct nat *t;

    *out = NULL;
    if (n->cfg.nat == CONFIG_NAT_OFF)
        return 0;
    if ((t = calloc(1, sizeof(*t))) == NULL)
        return PULL_ERR_NOMEM;
    t->n = n;
    t->s = s;
    t->mode = n->cfg.nat;
    t->port = node_listen_port(n);
    t->retry_ms = NAT_RETRY_MS;
    t->start_ms = node_now_ms(n);
    uv_timer_init(n->loop, &t->timer);
    t->timer.data = t;
    *out = t;
    if (t->port == 0) {
        snprintf(t->info.error, sizeof(t->info.error), "not listening");
        return 0;
    }
    if (listen_loopback(n)) {
        snprintf(t->info.error, sizeof(t->info.error), "not needed: listening on loopback");
        return 0;
    }
    if (!method_built(t->mode)) {
        snprintf(t->info.error, sizeof(t->info.error), "built without %s",
                 t->mode == CONFIG_NAT_UPNP     ? "UPnP (libminiupnpc)"
                 : t->mode == CONFIG_NAT_NATPMP ? "NAT-PMP (libnatpmp)"
                                                : "UPnP and NAT-PMP (libminiupnpc, libnatpmp)");
        log_warn("no port mapping: pulld was %s", t->info.error);
        return 0;
    }
    nat_queue(t, OP_MAP);
    return 0;
}

void
nat_get_info(const struct nat *t, const struct node *n, struct nat_info *out)
{
    memset(out, 0, sizeof(*out));
    out->mode = config_nat_name(n->cfg.nat);
    if (t == NULL)
        return;
    *out = t->info;
    out->mode = config_nat_name(t->mode);
}

void
nat_stop(struct nat *t)
{
    if (t == NULL)
        return;
    if (!t->stopping) {
        t->stopping = true;
        uv_timer_stop(&t->timer);
        uv_close((uv_handle_t *)&t->timer, NULL);
    }
    if (t->busy || t->release_queued)
        return; /* job_done comes back here if that attempt mapped a port */
    if (t->job.method != NAT_NONE && t->job.ext_port != 0) {
        t->release_queued = true;
        nat_queue(t, OP_RELEASE);
        log_info("port mapping: deleting %s:%u", t->job.external, (unsigned)t->job.ext_port);
    }
}

void
nat_free(struct nat *t)
{
    free(t);
}
