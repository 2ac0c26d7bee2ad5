/* Fuzz envelope_parse and envelope_open at a fixed clock. Whatever is accepted must satisfy
 * the envelope invariants: pointers inside the input, id = BLAKE2b-256 of the input, a
 * record that re-encodes to its exact bytes, a valid signature (and cosig), live at the
 * fixed time. Refused inputs leave the outputs cleared. The seed corpus holds envelopes
 * valid at FUZZ_NOW, so mutations explore the checks behind the signature too. */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/ident.h"
#include "lib/record.h"

#define FUZZ_NOW 1800000000ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
inside(const uint8_t *p, size_t n, const uint8_t *data, size_t size)
{
    return p >= data && (size_t)(p - data) <= size && n <= size - (size_t)(p - data);
}

static void
check_reencode(const struct record *rec, const uint8_t *p, size_t n)
{
    struct pull_wb w;

    wb_init(&w, RECORD_MAX);
    if (record_encode(rec, &w) != 0 || w.len != n || memcmp(w.p, p, n) != 0)
        abort();
    wb_release(&w);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct envelope env;
    struct record rec;
    uint8_t id[RECORD_ID_BYTES];
    int rc;

    if (sodium_init() < 0)
        abort();
    rc = envelope_parse(data, size, &env);
    if (rc == 0) {
        if (env.bytes != data || env.len != size || size > RECORD_ENVELOPE_MAX ||
            env.rec_len > RECORD_MAX || !inside(env.rec, env.rec_len, data, size) ||
            !inside(env.sig, IDENT_SIG_BYTES, data, size))
            abort();
        if (crypto_generichash(id, sizeof(id), data, size, NULL, 0) != 0 ||
            memcmp(id, env.id, sizeof(id)) != 0)
            abort();
        /* The record inside, whatever its signature: reaches the decoder through envelopes. */
        if (record_decode(env.rec, env.rec_len, &rec) == 0 && record_check_fields(&rec) == 0)
            check_reencode(&rec, env.rec, env.rec_len); /* (text rule 2: fuzz_record.c) */
    } else if (env.rec != NULL || env.sig != NULL || env.len != 0) {
        abort();
    }

    if (envelope_open(data, size, FUZZ_NOW, &env, &rec) != 0) {
        if (env.rec != NULL || env.bytes != NULL || rec.kind != 0)
            abort();
        return 0;
    }
    if (rc != 0 || memcmp(id, env.id, sizeof(id)) != 0)
        abort();
    if (record_check_fields(&rec) != 0 || record_check_time(&rec, FUZZ_NOW) != 0)
        abort();
    if (ident_verify(rec.author, RECORD_DOMAIN, env.rec, env.rec_len, env.sig) != 0)
        abort();
    if (rec.kind == RECORD_ATTESTATION &&
        (!rec.has_cosig || !rec.has_peer || memcmp(rec.peer, rec.author, 32) == 0))
        abort();
    check_reencode(&rec, env.rec, env.rec_len);
    return 0;
}
