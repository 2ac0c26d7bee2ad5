/* sim_ae_full: temporary whole-set anti-entropy for the simulator (see sim.h). */
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/mp.h"
#include "tests/sim/sim.h"

#define IDSET_MAX 2000 /* ids per message (64 KiB frames) */

static void *
full_new(struct sim *s, uint32_t node, void *ctx)
{
    (void)s, (void)node, (void)ctx;
    return malloc(1);
}

static void
full_free(void *state)
{
    free(state);
}

static void
send_set(struct sim *s, uint32_t node, uint32_t peer, bool reply)
{
    uint32_t n = 0, total = sim_records(s);
    struct pull_wb w;
    msgpack_packer pk;

    for (uint32_t r = 0; r < total; r++)
        n += sim_has(s, node, r);
    if (n > IDSET_MAX)
        n = IDSET_MAX;
    wb_init(&w, 0);
    mp_packer_init(&pk, &w);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint32(&pk, SIM_MSG_IDSET);
    if (reply)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    msgpack_pack_array(&pk, n);
    for (uint32_t r = 0, k = 0; r < total && k < n; r++) {
        const uint8_t *env, *id;
        size_t len;
        if (!sim_has(s, node, r))
            continue;
        sim_record(s, r, &env, &len, &id);
        mp_pack_bin(&pk, id, GOSSIP_ID_BYTES);
        k++;
    }
    if (wb_error(&w) == 0)
        (void)sim_send(s, node, peer, w.p, w.len);
    wb_release(&w);
}

static void
full_connected(struct sim *s, uint32_t node, uint32_t peer, bool inbound, void *state)
{
    (void)state;
    if (!inbound)
        send_set(s, node, peer, false);
}

static void
full_disconnected(struct sim *s, uint32_t node, uint32_t peer, void *state)
{
    (void)s, (void)node, (void)peer, (void)state;
}

static void
full_message(struct sim *s, uint32_t node, uint32_t peer, const uint8_t *msg, size_t len,
             void *state)
{
    uint32_t total = sim_records(s), count, nwant = 0;
    uint8_t(*want)[GOSSIP_ID_BYTES] = NULL;
    uint8_t *theirs = NULL;
    struct gossip *g = sim_gossip(s, node);
    struct pull_rd r;
    uint64_t type;
    bool reply, lacking = false;

    (void)state;
    rd_init(&r, msg, len);
    if (g == NULL || mp_read_array_n(&r, 3) != 0 || mp_read_uint(&r, &type) != 0 ||
        type != SIM_MSG_IDSET || mp_read_bool(&r, &reply) != 0 || mp_read_array(&r, &count) != 0)
        return;
    want = malloc((size_t)(count ? count : 1) * GOSSIP_ID_BYTES);
    theirs = calloc(total ? total : 1, 1);
    if (want == NULL || theirs == NULL)
        goto out;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t id[GOSSIP_ID_BYTES];
        int rec;
        if (mp_read_bin_exact(&r, id, GOSSIP_ID_BYTES) != 0)
            goto out;
        rec = sim_find_record(s, id);
        if (rec >= 0)
            theirs[rec] = 1;
        if (rec < 0 || !sim_has(s, node, (uint32_t)rec))
            memcpy(want[nwant++], id, GOSSIP_ID_BYTES);
    }
    for (uint32_t off = 0; off < nwant; off += GOSSIP_IDS_MAX) {
        uint32_t k = nwant - off < GOSSIP_IDS_MAX ? nwant - off : GOSSIP_IDS_MAX;
        (void)gossip_want(g, sim_key(s, peer), (const uint8_t(*)[GOSSIP_ID_BYTES])want + off, k,
                          sim_now(s));
    }
    sim_after(s, node);
    for (uint32_t rec = 0; rec < total && !lacking; rec++)
        lacking = sim_has(s, node, rec) && !theirs[rec];
    if (!reply && lacking)
        send_set(s, node, peer, true);
out:
    free(want);
    free(theirs);
}

static void
full_tick(struct sim *s, uint32_t node, void *state)
{
    struct gossip *g = sim_gossip(s, node);
    struct gossip_peer_info pi;
    size_t nactive, pick;

    (void)state;
    if (g == NULL || (nactive = gossip_active_count(g)) == 0)
        return;
    pick = (size_t)((sim_now(s) / 7 + node) % nactive);
    if (gossip_peer_at(g, pick, &pi) == 0 && pi.state == GOSSIP_PEER_ACTIVE) {
        int peer = sim_node_of(s, pi.key);
        if (peer >= 0)
            send_set(s, node, (uint32_t)peer, false);
    }
}

void
sim_ae_full(struct sim_ae_ops *ops, uint32_t tick_ms)
{
    memset(ops, 0, sizeof(*ops));
    ops->node_new = full_new;
    ops->node_free = full_free;
    ops->on_connected = full_connected;
    ops->on_disconnected = full_disconnected;
    ops->on_message = full_message;
    ops->on_tick = full_tick;
    ops->tick_ms = tick_ms;
}
