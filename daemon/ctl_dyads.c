/*
 * ctl_dyads: the control room of dyads - "dyad.propose", "dyad.accept", "dyad.decline",
 * "dyad.done", "dyad.ack", "dyad.cancel", "dyad.list", "dyad.show" (proto/ctl.h), served by
 * the dyad service (dyads_ctl, daemon/dyads.h).
 *
 * dyads_ctl packs the result straight into the reply, and queues the dyad's write in the
 * node's batch; the call is kept and the reply sent once that write is on disk
 * (node_after_commit), or an error instead if the commit failed.
 */
#include "daemon/ctl_int.h"
#include "daemon/dyads.h"
#include "lib/err.h"

static void
dyad_committed(void *arg, int result)
{
    struct ctl_call *call = arg;

    if (result != 0) {
        ctl_cancel(call);
        ctl_done(call,
                 ctl_fail(call, result, "the dyad could not be stored: %s", pull_strerror(result)));
        return;
    }
    ctl_send(call);
    ctl_done(call, 0);
}

int
ctl_h_dyad(struct ctl_call *call, const struct ctl_request *req)
{
    struct ctl_server *srv = call->srv;
    char msg[CTL_MSG_MAX + 1] = "";
    size_t before;
    int rc;

    if (srv->svc.dyads == NULL)
        return ctl_fail(call, PULL_ERR_STATE, "the dyad service is not running");
    ctl_begin(call, false);
    before = call->w.len;
    rc = dyads_ctl(srv->svc.dyads, req, &call->pk, msg, sizeof(msg));
    if (rc == 0 && (wb_error(&call->w) != 0 || call->w.len == before))
        rc = PULL_ERR_NOMEM; /* nothing (or not all) was packed */
    if (rc != 0) {
        ctl_cancel(call);
        return ctl_fail(call, rc, "%s", msg[0] ? msg : pull_strerror(rc));
    }
    /* the dyad's write is queued: answer once it is on disk */
    if ((rc = node_after_commit(srv->n, dyad_committed, ctl_keep(call))) != 0) {
        ctl_done(call, 0); /* the keep: dyad_committed will not run */
        ctl_cancel(call);
        return rc;
    }
    return 0;
}
