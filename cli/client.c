#include "cli/client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/mp.h"
#include "lib/paths.h"

#define CLIENT_TIMEOUT_MS 60000

int
client_init(struct client *c, const char *data_dir_flag)
{
    int rc;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->timeout_ms = CLIENT_TIMEOUT_MS;
    wb_init(&c->out, CTL_REQUEST_MAX + 4);
    ctl_reader_init(&c->rd, CTL_REPLY_MAX);
    if ((rc = paths_data_dir(data_dir_flag, c->dir, sizeof(c->dir))) != 0)
        return rc;
    return paths_join(c->dir, PATHS_SOCKET_NAME, c->sock, sizeof(c->sock));
}

static int
map_connect_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ECONNREFUSED:
    case ENOTDIR:
        return PULL_ERR_NOT_RUNNING;
    case EACCES:
    case EPERM:
        return PULL_ERR_PERM;
    default:
        return PULL_ERR_IO;
    }
}

int
client_connect(struct client *c)
{
    struct sockaddr_un sa;
    int dirfd = -1, rc = 0;
    const char *path = c->sock;
    char alt[64];

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        /* Too long for sun_path: go through the directory's descriptor instead. */
        if ((dirfd = open(c->dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0) {
            c->sys_errno = errno;
            rc = map_connect_errno(errno);
            goto out;
        }
        snprintf(alt, sizeof(alt), "/proc/self/fd/%d/%s", dirfd, PATHS_SOCKET_NAME);
        path = alt;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if ((c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        c->sys_errno = errno;
        rc = PULL_ERR_IO;
        goto out;
    }
    while (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (errno == EINTR)
            continue;
        c->sys_errno = errno;
        rc = map_connect_errno(errno);
        close(c->fd);
        c->fd = -1;
        goto out;
    }
out:
    if (dirfd >= 0)
        close(dirfd);
    return rc;
}

void
client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    wb_release(&c->out);
    ctl_reader_release(&c->rd);
}

msgpack_packer *
client_begin(struct client *c, const char *cmd)
{
    snprintf(c->cmd, sizeof(c->cmd), "%s", cmd);
    wb_reset(&c->out);
    c->frame = ctl_frame_begin(&c->out);
    mp_packer_init(&c->pk, &c->out);
    ctl_pack_request_head(&c->pk, cmd, ++c->seq);
    return &c->pk;
}

int
client_send(struct client *c)
{
    size_t off = 0;
    int rc;

    if ((rc = ctl_frame_end(&c->out, c->frame, CTL_REQUEST_MAX)) != 0)
        return rc;
    while (off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + off, c->out.len - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            c->sys_errno = errno;
            return errno == EPIPE || errno == ECONNRESET ? PULL_ERR_CLOSED : PULL_ERR_IO;
        }
        off += (size_t)n;
    }
    return 0;
}

int
client_recv(struct client *c, struct ctl_reply *rep)
{
    const uint8_t *msg;
    size_t len, used;
    int rc;

    for (;;) {
        if (ctl_reader_pop(&c->rd, &msg, &len) == 1) {
            if (ctl_reply_decode(msg, len, rep) != 0)
                return PULL_ERR_PROTOCOL;
            if (rep->seq != c->seq &&
                (c->seq_first == 0 || rep->seq < c->seq_first || rep->seq > c->seq))
                continue; /* a late reply to an earlier request */
            return 0;
        }
        if (c->in_off < c->in_len) {
            if ((rc = ctl_reader_feed(&c->rd, c->in + c->in_off, c->in_len - c->in_off, &used)) !=
                0)
                return PULL_ERR_PROTOCOL;
            c->in_off += used;
            continue;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, c->timeout_ms > 0 ? c->timeout_ms : -1);
        if (pr < 0) {
            c->sys_errno = errno;
            return errno == EINTR ? PULL_ERR_AGAIN : PULL_ERR_IO;
        }
        if (pr == 0)
            return PULL_ERR_TIMEOUT;
        ssize_t n = read(c->fd, c->in, sizeof(c->in));
        if (n < 0) {
            c->sys_errno = errno;
            if (errno == EINTR)
                return PULL_ERR_AGAIN;
            return errno == ECONNRESET ? PULL_ERR_CLOSED : PULL_ERR_IO;
        }
        if (n == 0)
            return PULL_ERR_CLOSED;
        c->in_len = (size_t)n;
        c->in_off = 0;
    }
}
