/* notify: READY=1 and STOPPING=1 for a Type=notify systemd unit (notify.h). */
#include "daemon/notify.h"

#include <stdio.h>

#include "lib/log.h"

#ifdef PULL_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

static bool stopping;

/* sd_notify returns > 0 when sent, 0 when no manager listens, < 0 on an error. */
static void
send_state(const char *state)
{
    int rc = sd_notify(0, state);

    if (rc < 0)
        log_debug("sd_notify: %d", rc);
}

void
notify_ready(const char *id, uint16_t port)
{
    char state[160];

    snprintf(state, sizeof(state), "READY=1\nSTATUS=node %s, peers on TCP port %u", id,
             (unsigned)port);
    send_state(state);
}

void
notify_stopping(void)
{
    if (stopping)
        return;
    stopping = true;
    send_state("STOPPING=1\nSTATUS=stopping");
}

bool
notify_available(void)
{
    return true;
}

#else

void
notify_ready(const char *id, uint16_t port)
{
    (void)id;
    (void)port;
}

void
notify_stopping(void)
{
}

bool
notify_available(void)
{
    return false;
}

#endif
