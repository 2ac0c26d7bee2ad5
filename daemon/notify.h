/*
 * notify: tells the service manager how pulld is doing, through systemd's notification
 * protocol (sd_notify), so that a Type=notify unit (packaging/pulld.service) is started
 * only once the node can be used, and shows why it is going away.
 *
 * Built with libsystemd (found by pkg-config, PULL_HAVE_SYSTEMD) the calls send their
 * message when pulld runs under a manager that asked for one ($NOTIFY_SOCKET set); without
 * libsystemd, or with no $NOTIFY_SOCKET, every call does nothing. A failure to notify is
 * logged at debug level and otherwise ignored: the node runs the same either way.
 */
#ifndef PULL_NOTIFY_H
#define PULL_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* notify_ready sends READY=1 with a status line naming the node (id, its short text form)
 * and its TCP port. Call it once the node listens for peers and its control socket
 * listens, before the loop runs: a client that connects then is answered on the loop's
 * first turn. */
void notify_ready(const char *id, uint16_t port);

/* notify_stopping sends STOPPING=1: a clean shutdown has begun. Safe to call more than
 * once (only the first call sends). */
void notify_stopping(void);

/* notify_available reports whether this pulld was built with libsystemd. */
bool notify_available(void);

#endif
