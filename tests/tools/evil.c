/*
 * pull-evil: a hostile peer for the integration tests. It speaks the real Secret Handshake
 * and frames (proto/shs.h, proto/frame.h) over blocking sockets, and misbehaves in one of
 * several ways against one node, then prints what the node did.
 *
 *   pull-evil MODE ID@HOST:PORT [--count N] [--network-key HEX64] [--seconds S]
 *             [--bind IP [--spread K]] [--record ID] [--keys K]
 *
 * --bind makes every connection leave from IP (e.g. 127.0.0.2: one stranger's address on
 * loopback); with --spread K they leave from K consecutive IPv4 addresses starting at IP
 * in turn (many strangers).
 *
 * Modes:
 *   garbage   N connections that send random bytes instead of a client hello
 *   halfopen  N connections opened at once and held silent for S seconds
 *   wrongnet  N handshakes made with a wrong network key
 *   frames    valid sessions, then: a frame with a bad MAC, a frame that is not MessagePack,
 *             a first frame that is not HELLO, random bytes after the stream header
 *   oversize  valid sessions, then a frame length prefix over the limit (65553)
 *   forged    a valid session sending RECORDS with N envelopes whose signatures fail
 *             (flipped signature byte, edited title, impersonated author)
 *   flood     a valid session sending N valid records by ONE author (beyond the quota)
 *   replay    a valid session sending an old version of a record after the newer one, and
 *             an offer after its withdrawal
 *   idle      slowloris before the handshake: N TCP connections that never send a byte,
 *             each opened again as soon as the node closes it, for S seconds
 *   nohello   slowloris after the handshake: N sessions, each with a key of its own, that
 *             finish the Secret Handshake (stream header included) and never send HELLO,
 *             each made again as soon as the node closes it, for S seconds
 *   propose   a valid session sending N dyad proposals on the node's record --record ID,
 *             from K proposer keys (--keys, default 1) in turn, each sealed as mail to the
 *             node (from a new mail sender key every 4 items: a stranger's share of mail)
 *
 * Output: human lines, plus machine-readable lines starting with "EVIL " that the tests
 * read: "EVIL result <what the node did>", "EVIL forged <record id>", "EVIL author <id>",
 * "EVIL stale <id>", "EVIL live <id>", "EVIL withdrawn <id>", "EVIL halfopen opened=N
 * established=E closed_by_node=C still_open=O", "EVIL idle ...", "EVIL nohello ...",
 * "EVIL proposer <id>", "EVIL propose sent=N keys=K". Exit status 0 when the attack was
 * carried out, 1 on bad usage, 2 if the node could not be reached at all.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/mp.h"
#include "lib/record.h"
#include "proto/dyad.h"
#include "proto/frame.h"
#include "proto/mail.h"
#include "proto/msg.h"
#include "proto/shs.h"

#define IO_TIMEOUT_MS 5000

static struct {
    uint8_t key[32]; /* the target's key */
    char host[256];
    char port[16];
    uint8_t net[32];
    long count;
    long seconds;
    struct ident me;
    int io_ms;     /* blocking socket timeout */
    bool bind_set; /* --bind */
    struct sockaddr_storage bind;
    socklen_t bind_len;
    long spread;            /* --spread: consecutive IPv4 source addresses */
    unsigned long next_src; /* the next one's offset */
    bool record_set;        /* --record */
    uint8_t record[32];
    long keys;       /* --keys */
    bool fresh_keys; /* a new identity for every handshake */
} opt;

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
usage(void)
{
    fprintf(stderr, "usage: pull-evil garbage|halfopen|wrongnet|frames|oversize|forged|flood|"
                    "replay|idle|nohello|propose ID@HOST:PORT [--count N] [--network-key HEX64]"
                    " [--seconds S] [--bind IP [--spread K]] [--record ID] [--keys K]\n");
    exit(1);
}

/* ---- blocking sockets ---- */

/* bind_source binds fd to the next source address of --bind / --spread. Returns 0, or -1
 * (printed) if the family differs or the bind fails. */
static int
bind_source(int fd, int family)
{
    struct sockaddr_storage ss = opt.bind;
    static bool warned;

    if (family != ss.ss_family)
        return -1;
    if (family == AF_INET && opt.spread > 1) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        uint32_t a =
            ntohl(s4->sin_addr.s_addr) + (uint32_t)(opt.next_src++ % (unsigned long)opt.spread);
        s4->sin_addr.s_addr = htonl(a);
    }
    if (bind(fd, (struct sockaddr *)&ss, opt.bind_len) != 0) {
        if (!warned)
            fprintf(stderr, "pull-evil: bind: %s\n", strerror(errno));
        warned = true;
        return -1;
    }
    return 0;
}

static int
tcp_connect(bool nonblock)
{
    struct addrinfo hints, *res = NULL, *ai;
    int fd = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(opt.host, opt.port, &hints, &res) != 0)
        return -1;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | (nonblock ? SOCK_NONBLOCK : 0), 0);
        if (fd < 0)
            continue;
        if (opt.bind_set && bind_source(fd, ai->ai_family) != 0) {
            close(fd);
            fd = -1;
            continue;
        }
        if (!nonblock) {
            struct timeval tv = {opt.io_ms / 1000, (opt.io_ms % 1000) * 1000};

            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || (nonblock && errno == EINPROGRESS))
            break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

static int
send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;

    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* wait_readable: 1 readable (or closed), 0 timeout. */
static int
wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    int r;

    do
        r = poll(&p, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    return r > 0 ? 1 : 0;
}

/* ---- a session: handshake, frames ---- */

struct sess {
    int fd;
    struct frame_enc enc;
    struct frame_dec dec;
    uint8_t in[8192];
    size_t in_off, in_len; /* unconsumed received bytes */
    bool closed;
    bool got_bye;
    struct msg_bye bye;
};

/* sess_read: read more bytes into s->in. Returns >0, 0 at EOF, -1 on error/timeout. */
static ssize_t
sess_read(struct sess *s, int timeout_ms)
{
    ssize_t r;

    if (s->in_off == s->in_len)
        s->in_off = s->in_len = 0;
    if (s->in_len == sizeof(s->in)) {
        memmove(s->in, s->in + s->in_off, s->in_len - s->in_off);
        s->in_len -= s->in_off;
        s->in_off = 0;
    }
    if (!wait_readable(s->fd, timeout_ms))
        return -1;
    r = recv(s->fd, s->in + s->in_len, sizeof(s->in) - s->in_len, 0);
    if (r == 0)
        s->closed = true;
    if (r > 0)
        s->in_len += (size_t)r;
    return r;
}

/* sess_handshake: SHS as client with network key net. Returns 0, or -1 if the node closed
 * or didn't answer (what it does with a wrong key or garbage). */
static int
sess_handshake(struct sess *s, const uint8_t net[32])
{
    struct shs h;
    struct shs_session ss;
    uint8_t out[SHS_OUT_MAX], tx[FRAME_KEY_BYTES], rx[FRAME_KEY_BYTES], hdr[FRAME_HEADER_BYTES];
    size_t n, used;
    int rc = -1;

    memset(s, 0, sizeof(*s));
    s->fd = -1;
    if (opt.fresh_keys) { /* a stranger per session: keys cost nothing */
        ident_wipe(&opt.me);
        if (ident_generate(&opt.me) != 0)
            return -1;
    }
    if ((s->fd = tcp_connect(false)) < 0)
        return -2;
    if (shs_client_init(&h, env_system(), net, &opt.me, opt.key) != 0)
        return -1;
    for (;;) {
        while ((n = shs_next_out(&h, out)) > 0)
            if (send_all(s->fd, out, n) != 0)
                goto out;
        if (shs_done(&h))
            break;
        if (s->in_off == s->in_len && sess_read(s, opt.io_ms) <= 0)
            goto out;
        rc = shs_feed(&h, s->in + s->in_off, s->in_len - s->in_off, &used);
        if (rc < 0) {
            rc = -1;
            goto out;
        }
        s->in_off += used;
        rc = -1;
    }
    if (shs_session(&h, &ss) != 0 || frame_keys(&ss, tx, rx) != 0 ||
        frame_enc_init(&s->enc, env_system(), tx, hdr) != 0 ||
        frame_dec_init(&s->dec, env_system(), rx) != 0)
        goto out;
    shs_session_wipe(&ss);
    if (send_all(s->fd, hdr, sizeof(hdr)) != 0)
        goto out;
    rc = 0;
out:
    shs_release(&h);
    sodium_memzero(tx, sizeof(tx));
    sodium_memzero(rx, sizeof(rx));
    return rc;
}

static int
sess_send(struct sess *s, const uint8_t *msg, size_t n, bool final)
{
    struct pull_wb w;
    int rc;

    wb_init(&w, 0);
    if ((rc = frame_write(&s->enc, msg, n, final, &w)) == 0)
        rc = send_all(s->fd, w.p, w.len);
    wb_release(&w);
    return rc;
}

/* sess_recv: next message from the node into buf (cap MSG_MAX). Returns 1 with *len, 0 at
 * EOF/close, -1 on timeout or error. A BYE is remembered in s->bye. */
static int
sess_recv(struct sess *s, uint8_t *buf, size_t *len, int timeout_ms)
{
    struct frame_msg m;
    size_t used;
    int rc;
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        if (s->in_off < s->in_len) {
            rc = frame_dec_feed(&s->dec, s->in + s->in_off, s->in_len - s->in_off, &used, &m);
            if (rc < 0)
                return -1;
            s->in_off += used;
            if (rc == FRAME_MSG) {
                uint32_t type;

                memcpy(buf, m.p, m.len);
                *len = m.len;
                if (msg_peek_type(buf, *len, &type) == 0 && type == MSG_BYE &&
                    msg_bye_decode(buf, *len, &s->bye) == 0)
                    s->got_bye = true;
                return 1;
            }
        }
        {
            uint64_t t = now_ms();
            ssize_t r;

            if (t >= deadline)
                return -1;
            r = sess_read(s, (int)(deadline - t));
            if (r == 0)
                return 0;
            if (r < 0)
                return s->closed ? 0 : -1;
        }
    }
}

/* sess_hello: send our HELLO, wait for the node's. Returns 0 or -1. */
static int
sess_hello(struct sess *s)
{
    struct msg_hello h;
    struct pull_wb w;
    static uint8_t buf[MSG_MAX];
    size_t len;
    uint32_t type;
    int rc;

    msg_hello_init(&h, 0, 0, "pull-evil/1");
    wb_init(&w, 0);
    rc = msg_hello_encode(&h, &w);
    if (rc == 0)
        rc = sess_send(s, w.p, w.len, false);
    wb_release(&w);
    if (rc != 0)
        return -1;
    for (;;) {
        if (sess_recv(s, buf, &len, opt.io_ms) != 1)
            return -1;
        if (msg_peek_type(buf, len, &type) == 0 && type == MSG_HELLO)
            return 0;
    }
}

/* sess_open: connect, handshake, HELLOs. Exits 2 if the node can't be reached. */
static int
sess_open(struct sess *s)
{
    int rc = sess_handshake(s, opt.net);

    if (rc == -2) {
        fprintf(stderr, "pull-evil: cannot connect to %s:%s\n", opt.host, opt.port);
        exit(2);
    }
    if (rc != 0 || sess_hello(s) != 0) {
        printf("session refused: handshake or HELLO failed%s\n",
               s->closed ? " (node closed the connection)" : "");
        return -1;
    }
    return 0;
}

static void
sess_close(struct sess *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    frame_enc_release(&s->enc);
    frame_dec_release(&s->dec);
}

/* sess_observe: read (and drop) what the node sends for up to timeout_ms; report whether it
 * closed the connection, with its BYE if any. Returns 1 if closed. */
static int
sess_observe(struct sess *s, int timeout_ms, const char *what)
{
    static uint8_t buf[MSG_MAX];
    size_t len;
    uint64_t t0 = now_ms(), deadline = t0 + (uint64_t)timeout_ms;
    int rc = -1;

    while (now_ms() < deadline) {
        rc = sess_recv(s, buf, &len, (int)(deadline - now_ms()));
        if (rc <= 0)
            break;
    }
    if (s->closed || rc == 0 || (rc < 0 && now_ms() < deadline)) {
        if (s->got_bye)
            printf("EVIL result %s: node closed after %llu ms with BYE %u (%s) \"%s\"\n", what,
                   (unsigned long long)(now_ms() - t0), s->bye.reason,
                   msg_bye_reason_str(s->bye.reason), s->bye.text);
        else
            printf("EVIL result %s: node closed after %llu ms without BYE\n", what,
                   (unsigned long long)(now_ms() - t0));
        return 1;
    }
    printf("EVIL result %s: connection still open after %d ms\n", what, timeout_ms);
    return 0;
}

/* raw_observe: for connections without a session: wait for the node to close. */
static int
raw_observe(int fd, int timeout_ms, const char *what)
{
    uint8_t buf[4096];
    uint64_t t0 = now_ms(), deadline = t0 + (uint64_t)timeout_ms;
    size_t got = 0;

    while (now_ms() < deadline) {
        ssize_t r;

        if (!wait_readable(fd, (int)(deadline - now_ms())))
            break;
        r = recv(fd, buf, sizeof(buf), 0);
        if (r <= 0) {
            printf("EVIL result %s: node closed after %llu ms (%zu bytes answered)\n", what,
                   (unsigned long long)(now_ms() - t0), got);
            return 1;
        }
        got += (size_t)r;
    }
    printf("EVIL result %s: connection still open after %d ms (%zu bytes answered)\n", what,
           timeout_ms, got);
    return 0;
}

/* ---- records ---- */

static int
make_record(const struct ident *author, const uint8_t slot[RECORD_SLOT_BYTES], uint64_t seq,
            uint8_t kind, const char *title, struct pull_wb *env, uint8_t id[RECORD_ID_BYTES])
{
    struct record r;
    uint64_t now = (uint64_t)time(NULL);

    record_init(&r);
    r.kind = kind;
    memcpy(r.author, author->pk, 32);
    memcpy(r.slot, slot, RECORD_SLOT_BYTES);
    r.seq = seq;
    r.created = now - 60;
    r.expires = now + 86400;
    if (kind != RECORD_WITHDRAWN) {
        snprintf(r.title, sizeof(r.title), "%s", title);
        snprintf(r.body, sizeof(r.body), "sent by pull-evil");
        r.ntags = 1;
        snprintf(r.tags[0], sizeof(r.tags[0]), "evil");
    }
    wb_init(env, RECORD_ENVELOPE_MAX);
    return record_sign(&r, author, env, id);
}

/* send_records: one RECORDS message [20, 0, 255, [env...]] (at most 256 envelopes). */
static int
send_records(struct sess *s, uint8_t **envs, const size_t *lens, size_t n)
{
    struct pull_wb w;
    msgpack_packer pk;
    size_t i;
    int rc;

    wb_init(&w, MSG_MAX);
    mp_packer_init(&pk, &w);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint32(&pk, MSG_RECORDS);
    msgpack_pack_uint32(&pk, 0);
    msgpack_pack_uint32(&pk, 255);
    msgpack_pack_array(&pk, (uint32_t)n);
    for (i = 0; i < n; i++)
        mp_pack_bin(&pk, envs[i], lens[i]);
    if ((rc = wb_error(&w)) == 0)
        rc = sess_send(s, w.p, w.len, false);
    wb_release(&w);
    return rc;
}

static void
print_id(const char *label, const uint8_t id[32])
{
    char t[IDENT_TEXT_LEN + 1];

    ident_to_text(id, t);
    printf("EVIL %s %s\n", label, t);
}

/* ---- modes ---- */

static int
mode_garbage(void)
{
    long i;

    for (i = 0; i < opt.count; i++) {
        uint8_t junk[4096];
        size_t n = 1 + randombytes_uniform(sizeof(junk));
        int fd = tcp_connect(false);

        if (fd < 0) {
            fprintf(stderr, "pull-evil: cannot connect\n");
            return i == 0 ? 2 : 0;
        }
        randombytes_buf(junk, n);
        send_all(fd, junk, n);
        raw_observe(fd, 8000, "garbage");
        close(fd);
    }
    return 0;
}

static int
mode_wrongnet(void)
{
    long i;

    for (i = 0; i < opt.count; i++) {
        struct sess s;
        uint8_t net[32];
        int rc;

        randombytes_buf(net, sizeof(net));
        rc = sess_handshake(&s, net);
        if (rc == -2) {
            fprintf(stderr, "pull-evil: cannot connect\n");
            return 2;
        }
        if (rc == 0)
            printf("EVIL result wrongnet: handshake SUCCEEDED with a wrong network key\n");
        else if (s.closed)
            printf("EVIL result wrongnet: node closed without answering the hello\n");
        else
            printf("EVIL result wrongnet: no answer (handshake failed: %zu bytes received)\n",
                   s.in_len);
        sess_close(&s);
    }
    return 0;
}

static int
mode_halfopen(void)
{
    long n = opt.count, i, established = 0, closed = 0, failed = 0;
    int *fds = calloc((size_t)n, sizeof(int));
    struct pollfd *p = calloc((size_t)n, sizeof(struct pollfd));
    bool *up = calloc((size_t)n, sizeof(bool)), *gone = calloc((size_t)n, sizeof(bool));
    struct rlimit rl;
    uint64_t t0, deadline;

    if (fds == NULL || p == NULL || up == NULL || gone == NULL)
        return 2;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (i = 0; i < n; i++) {
        fds[i] = tcp_connect(true);
        if (fds[i] < 0) {
            failed++;
            gone[i] = true;
        }
    }
    printf("halfopen: %ld connects started (%ld failed at once), holding %ld s\n", n, failed,
           opt.seconds);
    fflush(stdout);
    t0 = now_ms();
    deadline = t0 + (uint64_t)opt.seconds * 1000u;
    while (now_ms() < deadline) {
        long k = 0;
        int r;

        for (i = 0; i < n; i++) {
            p[i].fd = gone[i] ? -1 : fds[i];
            p[i].events = up[i] ? POLLIN : POLLOUT;
            p[i].revents = 0;
        }
        r = poll(p, (nfds_t)n, 200);
        if (r <= 0)
            continue;
        for (i = 0; i < n; i++) {
            if (p[i].revents == 0 || gone[i])
                continue;
            if (!up[i]) {
                int err = 0;
                socklen_t l = sizeof(err);

                getsockopt(fds[i], SOL_SOCKET, SO_ERROR, &err, &l);
                if (err != 0 || (p[i].revents & (POLLERR | POLLHUP)) != 0) {
                    gone[i] = true;
                    failed++;
                    continue;
                }
                up[i] = true;
                established++;
                continue;
            }
            {
                uint8_t b[256];
                ssize_t rr = recv(fds[i], b, sizeof(b), MSG_DONTWAIT);

                if (rr == 0 || (rr < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                    gone[i] = true;
                    closed++;
                }
            }
            k++;
        }
        (void)k;
    }
    printf("EVIL halfopen opened=%ld established=%ld closed_by_node=%ld still_open=%ld "
           "failed=%ld held_ms=%llu\n",
           n, established, closed, established - closed, failed,
           (unsigned long long)(now_ms() - t0));
    for (i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    free(p);
    free(up);
    free(gone);
    return 0;
}

static int
mode_frames(void)
{
    long i;

    for (i = 0; i < opt.count; i++) {
        struct sess s;
        int variant = (int)(i % 4);

        if (variant == 3) {
            /* random bytes right after the stream header, before any HELLO */
            uint8_t junk[512];

            if (sess_handshake(&s, opt.net) == -2)
                return 2;
            randombytes_buf(junk, sizeof(junk));
            junk[0] = 0;
            junk[1] = 0;
            junk[2] = 1; /* a plausible length: 256 + ... */
            send_all(s.fd, junk, sizeof(junk));
            sess_observe(&s, 8000, "frames/random-after-header");
            sess_close(&s);
            continue;
        }
        if (variant == 2) {
            /* a first frame that is not HELLO */
            static const uint8_t ping[] = {0x92, 0x02, 0x01};

            if (sess_handshake(&s, opt.net) == -2)
                return 2;
            sess_send(&s, ping, sizeof(ping), false);
            sess_observe(&s, 8000, "frames/first-not-hello");
            sess_close(&s);
            continue;
        }
        if (sess_open(&s) != 0) {
            sess_close(&s);
            continue;
        }
        if (variant == 0) {
            /* a well-sized frame whose ciphertext was tampered with: bad MAC */
            static const uint8_t ping[] = {0x92, 0x02, 0x05};
            struct pull_wb w;

            wb_init(&w, 0);
            frame_write(&s.enc, ping, sizeof(ping), false, &w);
            w.p[w.len - 1] ^= 0x40;
            send_all(s.fd, w.p, w.len);
            wb_release(&w);
            sess_observe(&s, 8000, "frames/bad-mac");
        } else {
            /* a valid frame that is not MessagePack (then a few more of them) */
            uint8_t junk[300];
            int k;

            for (k = 0; k < 5; k++) {
                randombytes_buf(junk, sizeof(junk));
                junk[0] = 0xc1; /* never valid MessagePack */
                if (sess_send(&s, junk, sizeof(junk), false) != 0)
                    break;
            }
            sess_observe(&s, 8000, "frames/not-msgpack");
        }
        sess_close(&s);
    }
    return 0;
}

static int
mode_oversize(void)
{
    static const uint32_t lens[] = {FRAME_CIPHER_MAX + 1, 0x7fffffffu, 0xffffffffu, 1};
    long i;

    for (i = 0; i < opt.count; i++) {
        struct sess s;
        uint8_t p[4];
        char what[64];
        uint32_t len = lens[i % 4];

        if (sess_open(&s) != 0) {
            sess_close(&s);
            continue;
        }
        be32enc(p, len);
        send_all(s.fd, p, 4);
        if (len == 1) {
            uint8_t junk[64];

            randombytes_buf(junk, sizeof(junk));
            send_all(s.fd, junk, sizeof(junk));
        }
        snprintf(what, sizeof(what), "oversize/len=%u", len);
        sess_observe(&s, 8000, what);
        sess_close(&s);
    }
    return 0;
}

static int
mode_forged(void)
{
    struct sess s;
    struct ident author, other;
    long n = opt.count, i, batch = 0;
    uint8_t **envs = calloc((size_t)n, sizeof(uint8_t *));
    size_t *lens = calloc((size_t)n, sizeof(size_t));
    int rc = 0;

    if (envs == NULL || lens == NULL || ident_generate(&author) != 0 || ident_generate(&other) != 0)
        return 2;
    for (i = 0; i < n; i++) {
        struct pull_wb w;
        uint8_t slot[RECORD_SLOT_BYTES], id[RECORD_ID_BYTES];
        struct envelope e;
        char title[64];
        uint8_t *hit;

        randombytes_buf(slot, sizeof(slot));
        snprintf(title, sizeof(title), "forged offer %ld", i);
        if (make_record(&author, slot, 1, RECORD_OFFER, title, &w, id) != 0)
            return 2;
        switch (i % 3) {
        case 0: /* a flipped signature byte */
            w.p[w.len - 1] ^= 1;
            break;
        case 1: /* an edited title (same length: still canonical) */
            hit = memmem(w.p, w.len, "forged", 6);
            if (hit != NULL)
                hit[0] = 'F';
            break;
        default: /* impersonation: another author's key in the signed record */
            hit = memmem(w.p, w.len, author.pk, 32);
            if (hit != NULL)
                memcpy(hit, other.pk, 32);
            break;
        }
        if (envelope_parse(w.p, w.len, &e) != 0)
            return 2;
        print_id("forged", e.id);
        lens[i] = w.len;
        envs[i] = wb_steal(&w, &lens[i]);
    }
    if (sess_open(&s) != 0) {
        printf("EVIL result forged: no session\n");
        sess_close(&s);
        return 0;
    }
    for (i = 0; i < n; i += batch) {
        batch = n - i > 16 ? 16 : n - i;
        if (send_records(&s, envs + i, lens + i, (size_t)batch) != 0) {
            printf("forged: node stopped reading after %ld envelopes\n", i);
            rc = 0;
            break;
        }
    }
    sess_observe(&s, 3000, "forged");
    sess_close(&s);
    for (i = 0; i < n; i++)
        free(envs[i]);
    free(envs);
    free(lens);
    ident_wipe(&author);
    ident_wipe(&other);
    return rc;
}

static int
mode_flood(void)
{
    struct sess s;
    struct ident author;
    long n = opt.count, i, sent = 0;
    uint8_t *envs[64];
    size_t lens[64];
    size_t k = 0;

    if (ident_generate(&author) != 0)
        return 2;
    print_id("author", author.pk);
    fflush(stdout);
    if (sess_open(&s) != 0) {
        printf("EVIL result flood: no session\n");
        sess_close(&s);
        return 0;
    }
    for (i = 0; i < n; i++) {
        struct pull_wb w;
        uint8_t slot[RECORD_SLOT_BYTES], id[RECORD_ID_BYTES];
        char title[64];

        randombytes_buf(slot, sizeof(slot));
        snprintf(title, sizeof(title), "flood offer %ld", i);
        if (make_record(&author, slot, 1, RECORD_OFFER, title, &w, id) != 0)
            return 2;
        lens[k] = w.len;
        envs[k] = wb_steal(&w, &lens[k]);
        k++;
        if (k == 64 || i == n - 1) {
            int rc = send_records(&s, envs, lens, k);
            size_t j;

            for (j = 0; j < k; j++)
                free(envs[j]);
            if (rc != 0) {
                printf("flood: node stopped reading after %ld records\n", sent);
                k = 0;
                break;
            }
            sent += (long)k;
            k = 0;
        }
    }
    printf("EVIL sent %ld\n", sent);
    sess_observe(&s, 3000, "flood");
    sess_close(&s);
    ident_wipe(&author);
    return 0;
}

/* replay: slot A: v1 then v2 then v1 again (v1 must stay refused); slot B: offer, withdrawal,
 * then the offer again (it must not come back). Each step in its own RECORDS message with a
 * pause, so they are not one batch. */
static int
mode_replay(void)
{
    struct sess s;
    struct ident author;
    uint8_t slot_a[RECORD_SLOT_BYTES], slot_b[RECORD_SLOT_BYTES];
    uint8_t id_a1[32], id_a2[32], id_b1[32], id_b2[32];
    struct pull_wb a1, a2, b1, b2;
    uint8_t *steps[6];
    size_t lens[6];
    int i;

    if (ident_generate(&author) != 0)
        return 2;
    randombytes_buf(slot_a, sizeof(slot_a));
    randombytes_buf(slot_b, sizeof(slot_b));
    if (make_record(&author, slot_a, 1, RECORD_OFFER, "replay offer version one", &a1, id_a1) ||
        make_record(&author, slot_a, 2, RECORD_OFFER, "replay offer version two", &a2, id_a2) ||
        make_record(&author, slot_b, 1, RECORD_NEED, "replay need to withdraw", &b1, id_b1) ||
        make_record(&author, slot_b, 2, RECORD_WITHDRAWN, "", &b2, id_b2))
        return 2;
    print_id("author", author.pk);
    print_id("stale", id_a1);
    print_id("live", id_a2);
    print_id("stale", id_b1);
    print_id("withdrawn", id_b2);
    fflush(stdout);
    if (sess_open(&s) != 0) {
        printf("EVIL result replay: no session\n");
        sess_close(&s);
        return 0;
    }
    steps[0] = a1.p, lens[0] = a1.len;
    steps[1] = b1.p, lens[1] = b1.len;
    steps[2] = a2.p, lens[2] = a2.len;
    steps[3] = b2.p, lens[3] = b2.len;
    steps[4] = a1.p, lens[4] = a1.len; /* the replays */
    steps[5] = b1.p, lens[5] = b1.len;
    for (i = 0; i < 6; i++) {
        if (send_records(&s, &steps[i], &lens[i], 1) != 0) {
            printf("replay: node stopped reading at step %d\n", i);
            break;
        }
        usleep(300 * 1000); /* the node commits each step in its own loop turn */
    }
    sess_observe(&s, 2000, "replay");
    sess_close(&s);
    wb_release(&a1);
    wb_release(&a2);
    wb_release(&b1);
    wb_release(&b2);
    ident_wipe(&author);
    return 0;
}

/* ---- slowloris: idle sockets, sessions without HELLO ---- */

/* A held connection of idle or nohello. */
struct held {
    int fd;           /* -1: none (open again at retry_ms) */
    bool up;          /* TCP connected (idle) */
    uint64_t born_ms; /* opened (idle) or session made (nohello) */
    uint64_t retry_ms;
};

/* life_add counts one connection the node closed after life_ms. */
struct life {
    long closed, fast; /* fast: closed within 100 ms (refused at accept) */
    uint64_t sum_ms;
};

static void
life_add(struct life *l, uint64_t life_ms)
{
    l->closed++;
    l->fast += life_ms < 100;
    l->sum_ms += life_ms;
}

#define RETRY_MS 20 /* pause before opening a closed socket again (idle) */

static int
mode_idle(void)
{
    long n = opt.count, i, opened = 0, failed = 0;
    struct held *h = calloc((size_t)n, sizeof(*h));
    struct pollfd *p = calloc((size_t)n, sizeof(*p));
    struct life life = {0};
    struct rlimit rl;
    uint64_t t0 = now_ms(), deadline = t0 + (uint64_t)opt.seconds * 1000u;

    if (h == NULL || p == NULL)
        return 2;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (i = 0; i < n; i++)
        h[i].fd = -1;
    while (now_ms() < deadline) {
        uint64_t t = now_ms();
        for (i = 0; i < n; i++) {
            if (h[i].fd >= 0 || t < h[i].retry_ms)
                continue;
            h[i].fd = tcp_connect(true);
            h[i].up = false;
            h[i].born_ms = t;
            h[i].retry_ms = t + RETRY_MS;
            if (h[i].fd < 0)
                failed++;
            else
                opened++;
        }
        for (i = 0; i < n; i++) {
            p[i].fd = h[i].fd;
            p[i].events = h[i].up ? POLLIN : POLLOUT;
            p[i].revents = 0;
        }
        if (poll(p, (nfds_t)n, 50) <= 0)
            continue;
        t = now_ms();
        for (i = 0; i < n; i++) {
            uint8_t b[256];
            ssize_t r;
            if (p[i].revents == 0 || h[i].fd < 0)
                continue;
            if (!h[i].up) {
                int err = 0;
                socklen_t l = sizeof(err);
                getsockopt(h[i].fd, SOL_SOCKET, SO_ERROR, &err, &l);
                if (err == 0 && (p[i].revents & (POLLERR | POLLHUP)) == 0) {
                    h[i].up = true;
                    continue;
                }
                failed++;
            } else if ((r = recv(h[i].fd, b, sizeof(b), MSG_DONTWAIT)) > 0 ||
                       (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
                continue;
            } else {
                life_add(&life, t - h[i].born_ms);
            }
            close(h[i].fd);
            h[i].fd = -1;
            h[i].retry_ms = t + RETRY_MS;
        }
    }
    for (i = 0; i < n; i++) {
        if (h[i].fd >= 0)
            close(h[i].fd);
    }
    printf("EVIL idle sockets=%ld opened=%ld closed_by_node=%ld closed_within_100ms=%ld "
           "mean_life_ms=%llu failed=%ld held_ms=%llu\n",
           n, opened, life.closed, life.fast,
           (unsigned long long)(life.closed ? life.sum_ms / (uint64_t)life.closed : 0), failed,
           (unsigned long long)(now_ms() - t0));
    free(h);
    free(p);
    return 0;
}

/* drain reads what the node sent on s without blocking (it is readable): frames are
 * decoded and dropped, a BYE remembered. Returns 0 at EOF or on a bad frame, 1 if s is
 * still open. */
static int
drain(struct sess *s)
{
    struct frame_msg m;
    size_t used;
    ssize_t r = sess_read(s, 0);
    int rc;

    if (r == 0 || (r < 0 && s->closed))
        return 0;
    while (s->in_off < s->in_len) {
        rc = frame_dec_feed(&s->dec, s->in + s->in_off, s->in_len - s->in_off, &used, &m);
        if (rc < 0)
            return 0;
        s->in_off += used;
        if (rc == FRAME_MSG) {
            uint32_t type;
            if (msg_peek_type(m.p, m.len, &type) == 0 && type == MSG_BYE &&
                msg_bye_decode(m.p, m.len, &s->bye) == 0)
                s->got_bye = true;
        } else if (used == 0) {
            break;
        }
    }
    return 1;
}

static int
mode_nohello(void)
{
    long n = opt.count, i, made = 0, refused = 0, busy = 0;
    struct sess *ss = calloc((size_t)n, sizeof(*ss));
    struct held *h = calloc((size_t)n, sizeof(*h));
    struct pollfd *p = calloc((size_t)n, sizeof(*p));
    struct life life = {0};
    uint64_t t0 = now_ms(), deadline = t0 + (uint64_t)opt.seconds * 1000u;

    if (ss == NULL || h == NULL || p == NULL)
        return 2;
    for (i = 0; i < n; i++)
        h[i].fd = ss[i].fd = -1;
    while (now_ms() < deadline) {
        uint64_t t = now_ms();
        for (i = 0; i < n && now_ms() < deadline; i++) {
            int rc;
            if (h[i].fd >= 0)
                continue;
            rc = sess_handshake(&ss[i], opt.net); /* no pause: a handshake takes time */
            if (rc == -2 && made == 0 && refused == 0) {
                fprintf(stderr, "pull-evil: cannot connect to %s:%s\n", opt.host, opt.port);
                return 2;
            }
            if (rc != 0) {
                refused++;
                sess_close(&ss[i]);
                continue;
            }
            made++;
            h[i].fd = ss[i].fd;
            h[i].born_ms = now_ms();
        }
        for (i = 0; i < n; i++) {
            p[i].fd = h[i].fd;
            p[i].events = POLLIN;
            p[i].revents = 0;
        }
        if (poll(p, (nfds_t)n, 50) <= 0)
            continue;
        t = now_ms();
        for (i = 0; i < n; i++) {
            if (p[i].revents == 0 || h[i].fd < 0 || drain(&ss[i]) == 1)
                continue;
            life_add(&life, t - h[i].born_ms);
            busy += ss[i].got_bye && ss[i].bye.reason == MSG_BYE_BUSY;
            sess_close(&ss[i]);
            h[i].fd = -1;
        }
    }
    for (i = 0; i < n; i++) {
        if (h[i].fd >= 0)
            sess_close(&ss[i]);
    }
    printf("EVIL nohello sessions=%ld handshakes=%ld refused=%ld closed_by_node=%ld busy=%ld "
           "mean_life_ms=%llu held_ms=%llu\n",
           n, made, refused, life.closed, busy,
           (unsigned long long)(life.closed ? life.sum_ms / (uint64_t)life.closed : 0),
           (unsigned long long)(now_ms() - t0));
    free(ss);
    free(h);
    free(p);
    return 0;
}

/* ---- dyad proposals ---- */

#define PROPOSE_BATCH 40     /* items per MSG_MAIL (each about 1.3 KB) */
#define PROPOSE_PER_SENDER 4 /* items sealed by one mail sender key (keys are free) */

/* send_mail sends items[0..n) as one MSG_MAIL. */
static int
send_mail(struct sess *s, uint8_t **items, const size_t *lens, size_t n)
{
    struct mail_ref refs[PROPOSE_BATCH];
    struct pull_wb w;
    int rc;

    for (size_t i = 0; i < n; i++)
        refs[i] = (struct mail_ref){items[i], lens[i]};
    wb_init(&w, MSG_MAX);
    if ((rc = mail_msg_encode(refs, n, &w)) == 0)
        rc = sess_send(s, w.p, w.len, false);
    wb_release(&w);
    return rc;
}

static int
mode_propose(void)
{
    struct sess s;
    struct ident *props = calloc((size_t)opt.keys, sizeof(*props)), sender;
    struct dyad_timeouts to;
    uint8_t *items[PROPOSE_BATCH];
    size_t lens[PROPOSE_BATCH], k = 0;
    long i, sent = 0;
    int rc = 0;

    if (props == NULL || !opt.record_set) {
        fprintf(stderr, "pull-evil: propose needs --record ID\n");
        return 1;
    }
    dyad_timeouts_default(&to);
    for (i = 0; i < opt.keys; i++) {
        if (ident_generate(&props[i]) != 0)
            return 2;
        if (i < 4)
            print_id("proposer", props[i].pk);
    }
    if (ident_generate(&sender) != 0)
        return 2;
    if (sess_open(&s) != 0) {
        printf("EVIL result propose: no session\n");
        sess_close(&s);
        return 0;
    }
    for (i = 0; i < opt.count && rc == 0; i++) {
        uint64_t now = (uint64_t)time(NULL);
        struct pull_wb msg, item;
        struct dyad *d = NULL;
        uint8_t id[MAIL_ID_BYTES];
        char note[64];

        if (i > 0 && i % PROPOSE_PER_SENDER == 0) {
            ident_wipe(&sender);
            if (ident_generate(&sender) != 0)
                return 2;
        }
        snprintf(note, sizeof(note), "proposal %ld from pull-evil", i);
        wb_init(&msg, DYAD_MSG_MAX);
        wb_init(&item, MAIL_ITEM_MAX);
        if (dyad_propose(NULL, &props[i % opt.keys], opt.record, opt.key, note, strlen(note), now,
                         &to, &d, &msg) != 0 ||
            mail_seal(env_system(), &sender, opt.key, msg.p, msg.len, now + 7 * 86400, &item, id) !=
                0) {
            fprintf(stderr, "pull-evil: cannot make a proposal\n");
            return 2;
        }
        dyad_free(d);
        wb_release(&msg);
        lens[k] = item.len;
        items[k] = wb_steal(&item, &lens[k]);
        k++;
        if (k == PROPOSE_BATCH || i == opt.count - 1) {
            rc = send_mail(&s, items, lens, k);
            for (size_t j = 0; j < k; j++)
                free(items[j]);
            if (rc == 0)
                sent += (long)k;
            k = 0;
            if (wait_readable(s.fd, 0) && drain(&s) == 0)
                rc = -1;
        }
    }
    if (rc != 0)
        printf("propose: node stopped reading after %ld proposals\n", sent);
    printf("EVIL propose sent=%ld keys=%ld\n", sent, opt.keys);
    sess_observe(&s, 2000, "propose");
    sess_close(&s);
    for (i = 0; i < opt.keys; i++)
        ident_wipe(&props[i]);
    free(props);
    ident_wipe(&sender);
    return 0;
}

static int
hex_decode(const char *s, uint8_t *out, size_t n)
{
    size_t bin_len = 0;

    if (strlen(s) != 2 * n || sodium_hex2bin(out, n, s, strlen(s), NULL, &bin_len, NULL) != 0 ||
        bin_len != n)
        return -1;
    return 0;
}

int
main(int argc, char **argv)
{
    static const uint8_t pub[32] = PULL_NETWORK_KEY_PUBLIC;
    const char *mode, *addr, *at, *colon;
    int i;

    if (argc < 3)
        usage();
    if (sodium_init() < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    mode = argv[1];
    addr = argv[2];
    memcpy(opt.net, pub, 32);
    opt.count = -1;
    opt.seconds = 10;
    opt.io_ms = IO_TIMEOUT_MS;
    opt.spread = 1;
    opt.keys = 1;
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            opt.count = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--spread") == 0 && i + 1 < argc)
            opt.spread = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
            opt.keys = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--record") == 0 && i + 1 < argc) {
            if (ident_from_text(argv[++i], opt.record) != 0)
                usage();
            opt.record_set = true;
        } else if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&opt.bind;
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&opt.bind;
            i++;
            if (inet_pton(AF_INET, argv[i], &s4->sin_addr) == 1) {
                s4->sin_family = AF_INET;
                opt.bind_len = sizeof(*s4);
            } else if (inet_pton(AF_INET6, argv[i], &s6->sin6_addr) == 1) {
                s6->sin6_family = AF_INET6;
                opt.bind_len = sizeof(*s6);
            } else {
                usage();
            }
            opt.bind_set = true;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            opt.seconds = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--network-key") == 0 && i + 1 < argc) {
            if (hex_decode(argv[++i], opt.net, 32) != 0)
                usage();
        } else
            usage();
    }
    if (opt.spread < 1 || opt.keys < 1)
        usage();
    at = strchr(addr, '@');
    colon = strrchr(addr, ':');
    if (at == NULL || colon == NULL || colon < at || (size_t)(at - addr) != IDENT_TEXT_LEN ||
        (size_t)(colon - at - 1) >= sizeof(opt.host) || strlen(colon + 1) >= sizeof(opt.port))
        usage();
    {
        char id[IDENT_TEXT_LEN + 1];

        memcpy(id, addr, IDENT_TEXT_LEN);
        id[IDENT_TEXT_LEN] = 0;
        if (ident_from_text(id, opt.key) != 0)
            usage();
    }
    memcpy(opt.host, at + 1, (size_t)(colon - at - 1));
    opt.host[colon - at - 1] = 0;
    if (opt.host[0] == '[') { /* [v6]:port */
        size_t l = strlen(opt.host);

        memmove(opt.host, opt.host + 1, l);
        if (l >= 2 && opt.host[l - 2] == ']')
            opt.host[l - 2] = 0;
    }
    snprintf(opt.port, sizeof(opt.port), "%s", colon + 1);
    if (ident_generate(&opt.me) != 0)
        return 2;

    if (strcmp(mode, "garbage") == 0)
        return opt.count = opt.count < 0 ? 10 : opt.count, mode_garbage();
    if (strcmp(mode, "halfopen") == 0)
        return opt.count = opt.count < 0 ? 100 : opt.count, mode_halfopen();
    if (strcmp(mode, "wrongnet") == 0)
        return opt.count = opt.count < 0 ? 5 : opt.count, mode_wrongnet();
    if (strcmp(mode, "frames") == 0)
        return opt.count = opt.count < 0 ? 8 : opt.count, mode_frames();
    if (strcmp(mode, "oversize") == 0)
        return opt.count = opt.count < 0 ? 4 : opt.count, mode_oversize();
    if (strcmp(mode, "forged") == 0)
        return opt.count = opt.count < 0 ? 30 : opt.count, mode_forged();
    if (strcmp(mode, "flood") == 0)
        return opt.count = opt.count < 0 ? 300 : opt.count, mode_flood();
    if (strcmp(mode, "replay") == 0)
        return mode_replay();
    if (strcmp(mode, "idle") == 0)
        return opt.count = opt.count < 0 ? 40 : opt.count, mode_idle();
    if (strcmp(mode, "nohello") == 0) {
        opt.io_ms = 2000; /* a refused handshake must not stall the others for long */
        opt.fresh_keys = true;
        return opt.count = opt.count < 0 ? 100 : opt.count, mode_nohello();
    }
    if (strcmp(mode, "propose") == 0)
        return opt.count = opt.count < 0 ? 1000 : opt.count, mode_propose();
    usage();
    return 1;
}
