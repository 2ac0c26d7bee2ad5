/*
 * Fuzz the gossip engine with arbitrary bytes as messages from peers.
 *
 * A fresh engine gets two inbound peers, A (which joined: active) and B (connected, not
 * yet in the view). If the input starts with 0xF0 it is a script of steps
 *   [op u8][len u16 BE][len bytes]
 * where op & 3 selects: 0 = message from A, 1 = message from B, 2 = time passes
 * (len * 10 ms) and timers run, 3 = B drops and reconnects; otherwise the whole input is
 * one message from A. Invariants checked after every step: every SEND the engine emits
 * decodes with its own decoder, the active view never exceeds its size, and nothing
 * leaks or reads out of bounds (sanitizers).
 */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/env.h"
#include "lib/err.h"
#include "lib/mp.h"
#include "proto/gossip.h"
#include "proto/gossip_int.h"
#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t store_id[4][32];
static uint8_t store_env[4][64];

static enum gossip_verdict
f_offer(void *ctx, const uint8_t *env, size_t len, const uint8_t id[32], const uint8_t from[32])
{
    (void)ctx, (void)env, (void)from;
    /* Exercise all three verdicts, decided by the content. */
    switch ((id[0] + len) % 3) {
    case 0:
        return GOSSIP_NEW;
    case 1:
        return GOSSIP_DUPLICATE;
    }
    return GOSSIP_INVALID;
}

static bool
f_has(void *ctx, const uint8_t id[32])
{
    (void)ctx;
    return id[1] & 1;
}

static int
f_fetch(void *ctx, const uint8_t id[32], uint8_t *buf, size_t cap, size_t *len)
{
    (void)ctx;
    *len = 0;
    for (int i = 0; i < 4; i++) {
        if (memcmp(id, store_id[i], 32) == 0 && cap >= sizeof(store_env[i])) {
            memcpy(buf, store_env[i], sizeof(store_env[i]));
            *len = sizeof(store_env[i]);
            return 0;
        }
    }
    return PULL_ERR_NOT_FOUND;
}

static struct gmsg check_msg;

static void
drain(struct gossip *g)
{
    struct gossip_action a;

    while (gossip_poll_action(g, &a)) {
        if (a.type == GOSSIP_ACT_SEND && gs_decode(a.data, a.len, &check_msg) != 0)
            abort(); /* the engine emitted something it would refuse itself */
        if (a.type == GOSSIP_ACT_CONNECT && !gs_addr_ok(a.addr, strlen(a.addr)))
            abort();
        gossip_action_release(&a);
    }
    if (gossip_active_count(g) > GOSSIP_ACTIVE_MAX)
        abort();
}

static void
join(struct gossip *g, const uint8_t key[32], const char *addr, uint64_t now)
{
    struct pull_wb w;
    msgpack_packer pk;

    gossip_on_connected(g, key, "192.0.2.1:4000", true, now);
    wb_init(&w, 0);
    mp_packer_init(&pk, &w);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint32(&pk, MSG_JOIN);
    mp_pack_cstr(&pk, addr);
    (void)gossip_on_message(g, key, w.p, w.len, now);
    wb_release(&w);
    drain(g);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    struct gossip_config cfg;
    struct env_seeded env;
    struct gossip *g = NULL;
    uint8_t me[32], ka[32], kb[32];
    uint64_t now = 1000;

    if (!init) {
        if (sodium_init() < 0)
            abort();
        for (int i = 0; i < 4; i++) {
            memset(store_env[i], 0x40 + i, sizeof(store_env[i]));
            crypto_generichash(store_id[i], 32, store_env[i], sizeof(store_env[i]), NULL, 0);
        }
        init = true;
    }
    memset(me, 1, 32);
    memset(ka, 2, 32);
    memset(kb, 3, 32);
    env_seeded_init(&env, 42, now, 0);
    gossip_config_default(&cfg);
    cfg.offer = f_offer;
    cfg.has = f_has;
    cfg.fetch = f_fetch;
    cfg.peer_backlog_max = 256 * 1024;
    cfg.deliver_actions = true;
    if (gossip_new(&env.env, me, "fuzz.test:7450", &cfg, &g) != 0)
        abort();
    join(g, ka, "a.test:1", now);
    gossip_on_connected(g, kb, "192.0.2.2:4000", true, now);
    drain(g);
    (void)gossip_publish(g, store_env[0], sizeof(store_env[0]), store_id[0], now);
    drain(g);

    if (size > 0 && data[0] == 0xF0) {
        size_t off = 1;
        while (size - off >= 3) {
            uint8_t op = data[off];
            size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
            off += 3;
            if (len > size - off)
                len = size - off;
            switch (op & 3) {
            case 0:
                (void)gossip_on_message(g, ka, data + off, len, now);
                break;
            case 1:
                (void)gossip_on_message(g, kb, data + off, len, now);
                break;
            case 2:
                now += (uint64_t)len * 10;
                gossip_on_timeout(g, now);
                break;
            case 3:
                gossip_on_disconnected(g, kb, now);
                drain(g);
                gossip_on_connected(g, kb, "192.0.2.2:4000", true, now);
                break;
            }
            drain(g);
            gossip_on_flushed(g, ka, 1 << 20, now);
            drain(g);
            off += len;
        }
    } else {
        (void)gossip_on_message(g, ka, data, size, now);
        drain(g);
        now += 1000;
        gossip_on_timeout(g, now);
        drain(g);
    }
    gossip_free(g);
    return 0;
}
