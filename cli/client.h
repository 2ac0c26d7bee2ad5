/*
 * client: the CLI's side of the control socket (proto/ctl.h over DATA_DIR/pulld.sock).
 *
 * One connection per `pull` run, blocking I/O. A request is built in place: client_begin
 * packs the request head and hands back the packer for the args map, client_send frames and
 * writes it, client_recv reads the next reply. Replies point into the client's buffer and
 * stay valid until the next client_recv.
 */
#ifndef PULL_CLI_CLIENT_H
#define PULL_CLI_CLIENT_H

#include <limits.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "proto/ctl.h"

struct client {
    int fd;
    uint64_t seq;              /* seq of the last request sent */
    uint64_t seq_first;        /* pipelining: client_recv also takes replies to seqs from
                                * here to seq (0: only seq's reply) */
    char cmd[CTL_CMD_MAX + 1]; /* its command */
    struct pull_wb out;        /* the request being built */
    size_t frame;              /* its frame start */
    msgpack_packer pk;
    struct ctl_reader rd;
    uint8_t in[65536]; /* read buffer */
    size_t in_len, in_off;
    int timeout_ms;      /* per client_recv; 0 = wait forever */
    char dir[PATH_MAX];  /* data directory */
    char sock[PATH_MAX]; /* socket path */
    int sys_errno;       /* errno of the last failed system call */
};

/* client_init resolves the data directory (flag, else the defaults of lib/paths.h) and
 * the socket path; no connection yet. Returns 0 or PULL_ERR_INVAL (no data directory can
 * be determined) / PULL_ERR_TOO_BIG (path too long). */
int client_init(struct client *c, const char *data_dir_flag);

/* client_connect connects to the socket. Returns 0; PULL_ERR_NOT_RUNNING if there is no
 * socket or nobody listens on it (the caller says how to start pulld); PULL_ERR_PERM if
 * access is denied; PULL_ERR_IO otherwise (c->sys_errno tells why). Paths longer than a
 * sockaddr_un holds are reached through /proc/self/fd. */
int client_connect(struct client *c);

/* client_close closes the connection and frees buffers. */
void client_close(struct client *c);

/* client_begin starts a request for cmd with the next seq and returns the packer: the
 * caller packs exactly one map, the args. */
msgpack_packer *client_begin(struct client *c, const char *cmd);

/* client_send frames the request and writes it all. Returns 0, PULL_ERR_TOO_BIG (over
 * CTL_REQUEST_MAX), PULL_ERR_CLOSED (pulld went away) or PULL_ERR_IO. */
int client_send(struct client *c);

/* client_recv reads the next reply into *rep (whose result points into c's buffers until
 * the next call). Replies for other seqs are skipped: all but seq's, or with seq_first set
 * (several requests in flight), all but those of seq_first .. seq. Returns 0, PULL_ERR_CLOSED
 * (pulld closed the connection), PULL_ERR_TIMEOUT, PULL_ERR_AGAIN (interrupted by a signal),
 * PULL_ERR_PROTOCOL (a malformed reply) or PULL_ERR_IO. A reply's own err is in rep->err,
 * not in the return value. */
int client_recv(struct client *c, struct ctl_reply *rep);

#endif
