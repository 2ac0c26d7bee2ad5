/*
 * Fuzz the reconciliation engine and its message codec.
 *
 * Input: one mode byte, then messages as [u16 big-endian length][bytes] (a short tail is
 * one last message). Mode bit 0: the engine is the initiator (it starts a session first)
 * or the responder; bit 1: the initiator's session is salted; bit 2: messages that decode
 * are re-addressed to the running session's id, so mutations reach deep states.
 *
 * Checks: the decoder never reads out of bounds; whatever it accepts re-encodes to a
 * message that decodes to the same fields (byte-identical when nothing was skipped); the
 * engine survives any sequence, its events are well-formed, and every session ends with
 * exactly one DONE or FAILED event (after a final timeout).
 *
 * The engine's set is 40 shared + 10 own ids from a fixed seed (the corpus was made by a
 * real peer holding 40 shared + 10 other ids), cache of 32 symbols, so passes over the
 * iterator happen too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "lib/err.h"
#include "proto/msg.h"
#include "proto/recon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SET_IDS 50

static uint8_t ids[SET_IDS][RIBLT_ID_LEN];

static int
each(void *ctx, recon_visit_fn visit, void *vctx)
{
    int rc;

    (void)ctx;
    for (int i = 0; i < SET_IDS; i++)
        if ((rc = visit(vctx, ids[i])) != 0)
            return rc;
    return 0;
}

static void
check_roundtrip(const uint8_t *p, size_t n)
{
    struct recon_msg m, m2;
    struct pull_wb w;

    if (recon_msg_decode(p, n, &m) != 0)
        return;
    wb_init(&w, MSG_MAX);
    if (recon_msg_encode(&m, &w) != 0)
        abort(); /* everything the decoder accepts is encodable */
    if (recon_msg_decode(w.p, w.len, &m2) != 0)
        abort();
    if (m.extra == 0 && (w.len != n || memcmp(w.p, p, n) != 0))
        abort(); /* canonical: one encoding per message */
    if (m2.type != m.type || m2.sid != m.sid || m2.credit != m.credit || m2.n_syms != m.n_syms ||
        m2.start != m.start || m2.end != m.end || m2.total != m.total || m2.code != m.code ||
        m2.reason_len != m.reason_len || m2.you_lack != m.you_lack || m2.i_lack != m.i_lack ||
        m2.salted != m.salted)
        abort();
    wb_release(&w);
}

/* Drains every event, checking its shape; counts session ends per role. */
static void
drain(struct recon *r, uint64_t now, int ends[2])
{
    struct recon_event ev;

    while (recon_poll(r, now, &ev) == 1) {
        switch (ev.type) {
        case RECON_EV_SEND:
            if (ev.msg == NULL || ev.len == 0 || ev.len > MSG_MAX)
                abort();
            check_roundtrip(ev.msg, ev.len); /* our own messages are canonical */
            break;
        case RECON_EV_WANT:
        case RECON_EV_PUSH:
            if (ev.ids == NULL || ev.n_ids == 0)
                abort();
            break;
        case RECON_EV_DONE:
        case RECON_EV_FAILED:
            if (ev.type == RECON_EV_FAILED && (ev.err >= 0 || ev.reason == NULL))
                abort();
            ends[ev.role]++;
            break;
        default:
            abort();
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct env_seeded e, idenv;
    struct recon_set_cfg scfg = {32, 0, NULL};
    struct recon_set *set = NULL;
    struct recon_cfg cfg;
    struct recon *r = NULL;
    uint64_t now = 1000;
    int ends[2] = {0, 0}, started[2] = {0, 0};
    unsigned mode;
    size_t off = 1;

    if (size < 1)
        return 0;
    mode = data[0];
    env_seeded_init(&idenv, 42, 0, 0);
    env_random(&idenv.env, ids, sizeof(ids));
    env_seeded_init(&e, 7, now, 0);
    if (recon_set_new(&scfg, &set) != 0)
        abort();
    for (int i = 0; i < SET_IDS; i++)
        if (recon_set_add(set, ids[i]) != 0)
            abort();
    memset(&cfg, 0, sizeof(cfg));
    cfg.env = &e.env;
    cfg.set = set;
    cfg.each = each;
    cfg.max_symbols = 4096;
    if (recon_new(&cfg, &r) != 0)
        abort();
    if ((mode & 1) == 0) {
        if (recon_start(r, now, (mode & 2) ? RECON_SALTED : 0) != 0)
            abort();
        started[RECON_INITIATOR] = 1;
    }
    drain(r, now, ends);
    while (off < size) {
        const uint8_t *p;
        size_t n;
        uint8_t *copy = NULL;
        struct recon_stats st;
        struct recon_msg m;

        if (size - off < 2) {
            p = data + off;
            n = size - off;
            off = size;
        } else {
            n = (size_t)data[off] << 8 | data[off + 1];
            off += 2;
            if (n > size - off)
                n = size - off;
            p = data + off;
            off += n;
        }
        check_roundtrip(p, n);
        if ((mode & 4) && recon_msg_decode(p, n, &m) == 0 && m.type != MSG_RECON_REQ &&
            recon_stats_get(r,
                            m.type == MSG_RECON_MORE ||
                                    (m.type >= MSG_RECON_DONE && m.from == RECON_INITIATOR)
                                ? RECON_RESPONDER
                                : RECON_INITIATOR,
                            &st) == 0) {
            struct pull_wb w;
            m.sid = st.sid;
            wb_init(&w, MSG_MAX);
            if (recon_msg_encode(&m, &w) == 0)
                copy = wb_steal(&w, &n);
            wb_release(&w);
            if (copy != NULL)
                p = copy;
        }
        if (recon_msg_decode(p, n, &m) == 0 && m.type == MSG_RECON_REQ)
            started[RECON_RESPONDER]++;
        (void)recon_on_msg(r, now, p, n);
        free(copy);
        drain(r, now, ends);
        now += 10;
        if (recon_next_deadline(r) <= now)
            recon_on_timeout(r, now);
        drain(r, now, ends);
    }
    /* Time out whatever still runs: every session must end exactly once. */
    now += RECON_SESSION_TIMEOUT_DEFAULT + 1;
    recon_on_timeout(r, now);
    drain(r, now, ends);
    if (recon_active(r, RECON_INITIATOR) || recon_active(r, RECON_RESPONDER))
        abort();
    if (ends[RECON_INITIATOR] != started[RECON_INITIATOR] ||
        ends[RECON_RESPONDER] != started[RECON_RESPONDER])
        abort();
    recon_free(r);
    recon_set_free(set);
    return 0;
}
