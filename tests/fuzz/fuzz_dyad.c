/* Fuzz the dyad decoders. The first byte picks the target, the rest is its input:
 *   0  dyad_msg_decode (+ verify): whatever it accepts must re-encode to the same bytes
 *   1  dyad_decode (persisted form): whatever it accepts must re-encode to the same bytes
 *   2  dyad_apply to a fixed accepted dyad (alice -> bob), which must stay consistent
 *   3  dyad_from_propose
 * The fixed identities come from constant seeds, so seed corpus files made with them
 * (valid messages, persisted dyads) reach past the signature checks. */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/ident.h"
#include "lib/mp.h"
#include "proto/dyad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW 1800000000ull

static struct ident alice, bob;
static struct dyad_timeouts tdef;
static uint8_t accepted_enc[DYAD_ENCODED_MAX];
static size_t accepted_len;

static void
init_once(void)
{
    static int done;
    uint8_t seed[32], rec[32];
    struct dyad *d = NULL;
    struct pull_wb w;

    if (done)
        return;
    done = 1;
    if (sodium_init() < 0)
        abort();
    memset(seed, 0xa1, 32);
    memset(rec, 0x7e, 32);
    if (ident_from_seed(&alice, seed) != 0)
        abort();
    memset(seed, 0xb0, 32);
    if (ident_from_seed(&bob, seed) != 0)
        abort();
    dyad_timeouts_default(&tdef);
    wb_init(&w, 0);
    if (dyad_propose(NULL, &alice, rec, bob.pk, "fuzz", 4, FUZZ_NOW, &tdef, &d, &w) != 0)
        abort();
    wb_reset(&w);
    if (dyad_act(d, &bob, DYAD_ACCEPT, NULL, 0, false, FUZZ_NOW + 60, &w) != 0)
        abort();
    wb_reset(&w);
    if (dyad_encode(d, &w) != 0 || w.len > sizeof(accepted_enc))
        abort();
    memcpy(accepted_enc, w.p, w.len);
    accepted_len = w.len;
    wb_release(&w);
    dyad_free(d);
}

/* Re-packs a decoded message's body and envelope; must give back the input. */
static void
check_msg_roundtrip(const struct dyad_msg *m, const uint8_t *p, size_t n)
{
    struct pull_wb body, env;
    msgpack_packer pk;
    unsigned fields = m->kind == DYAD_PROPOSE  ? 13
                      : m->kind == DYAD_ACCEPT ? 9
                      : m->kind == DYAD_ACK    ? 8
                                               : 7;

    wb_init(&body, 0);
    wb_init(&env, 0);
    mp_packer_init(&pk, &body);
    msgpack_pack_array(&pk, fields);
    msgpack_pack_uint64(&pk, DYAD_VERSION);
    msgpack_pack_uint64(&pk, m->kind);
    mp_pack_bin(&pk, m->dyad, 32);
    mp_pack_bin(&pk, m->author, 32);
    msgpack_pack_uint64(&pk, m->step);
    msgpack_pack_uint64(&pk, m->created);
    mp_pack_str(&pk, m->note_len ? m->note : "", m->note_len);
    if (m->kind == DYAD_PROPOSE) {
        mp_pack_bin(&pk, m->record, 32);
        mp_pack_bin(&pk, m->proposer, 32);
        mp_pack_bin(&pk, m->responder, 32);
        msgpack_pack_uint64(&pk, m->expires);
        mp_pack_bin(&pk, m->terms, 32);
        mp_pack_bin(&pk, m->terms_sig, 64);
    } else if (m->kind == DYAD_ACCEPT) {
        mp_pack_bin(&pk, m->terms, 32);
        mp_pack_bin(&pk, m->terms_sig, 64);
    } else if (m->kind == DYAD_ACK) {
        mp_pack_bin(&pk, m->cosig, m->has_cosig ? 64 : 0);
    }
    if (body.len != m->body_len || memcmp(body.p, m->body, body.len) != 0)
        abort();
    mp_packer_init(&pk, &env);
    msgpack_pack_array(&pk, 2);
    mp_pack_bin(&pk, body.p, body.len);
    mp_pack_bin(&pk, m->sig, 64);
    if (env.len != n || memcmp(env.p, p, n) != 0)
        abort();
    wb_release(&body);
    wb_release(&env);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dyad *d = NULL;
    struct dyad_msg m;
    struct pull_wb w;
    const uint8_t *p;
    size_t n;

    init_once();
    if (size < 1)
        return 0;
    p = data + 1;
    n = size - 1;
    wb_init(&w, 0);
    switch (data[0] % 4) {
    case 0:
        if (dyad_msg_decode(p, n, &m) == 0) {
            if (m.kind < DYAD_KIND_MIN || m.kind > DYAD_KIND_LAST || m.note_len > DYAD_NOTE_MAX ||
                (m.kind == DYAD_NOTE && m.note_len == 0))
                abort();
            check_msg_roundtrip(&m, p, n);
            (void)dyad_msg_verify(&m);
        }
        break;
    case 1:
        if (dyad_decode(NULL, p, n, &tdef, &d) == 0) {
            if (dyad_encode(d, &w) != 0 || w.len != n || memcmp(w.p, p, n) != 0)
                abort();
            if (dyad_state_name(dyad_state(d)) == NULL || dyad_msg_count(d) < 1)
                abort();
        }
        break;
    case 2: {
        enum dyad_state before;
        if (dyad_decode(NULL, accepted_enc, accepted_len, &tdef, &d) != 0)
            abort();
        before = dyad_state(d);
        if (dyad_apply(d, p, n, FUZZ_NOW + 120) != 0) {
            if (dyad_state(d) != before || dyad_msg_count(d) != 2)
                abort(); /* a refusal changes nothing */
        } else if (dyad_msg_count(d) != 3) {
            abort();
        }
        /* whatever state it is in, it persists and restores */
        if (dyad_encode(d, &w) != 0)
            abort();
        dyad_free(d);
        d = NULL;
        if (dyad_decode(NULL, w.p, w.len, &tdef, &d) != 0)
            abort();
        break;
    }
    case 3:
        if (dyad_from_propose(NULL, p, n, FUZZ_NOW, &tdef, &d) == 0) {
            if (dyad_state(d) != DYAD_ST_PROPOSED || dyad_msg_count(d) != 1)
                abort();
        }
        break;
    }
    dyad_free(d);
    wb_release(&w);
    return 0;
}
