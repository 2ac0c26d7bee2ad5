/*
 * pull-collide: two signed records whose ids start with the same 6 base32 characters, for
 * the integration tests of ambiguous id prefixes (test_diagnostics.sh).
 *
 *   pull-collide FILE
 *
 * One fresh author signs offers "collision N" until two ids share their first 30 bits (the
 * first 6 characters of the text form); a birthday search, about 40,000 signatures. Writes
 * the two records as a bundle to FILE (lib/bundle.h) and prints the shared prefix. Ed25519
 * signatures are deterministic, so the first record of a pair is signed again, not kept.
 * Exit 0, 1 on bad usage, 2 on failure.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/bundle.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/record.h"

#define SLOTS (1u << 22)
#define TRIES (1u << 22)

/* make signs offer number i of author id into out (the same bytes for the same i). */
static int
make(const struct ident *id, uint32_t i, uint64_t now, struct pull_wb *out, uint8_t rid[32])
{
    struct record rec;

    record_init(&rec);
    rec.kind = RECORD_OFFER;
    memcpy(rec.author, id->pk, 32);
    memset(rec.slot, 0, sizeof(rec.slot));
    memcpy(rec.slot, &i, sizeof(i));
    rec.seq = 1;
    rec.created = now;
    rec.expires = now + 30u * 86400u;
    snprintf(rec.title, sizeof(rec.title), "collision %u", (unsigned)i);
    wb_reset(out);
    return record_sign(&rec, id, out, rid);
}

int
main(int argc, char **argv)
{
    uint32_t *seen = NULL; /* prefix slot -> offer number + 1 */
    struct ident id;
    struct pull_wb w;
    struct bundle_writer bw;
    uint8_t rid[32];
    char text[IDENT_TEXT_LEN + 1];
    uint64_t now = (uint64_t)time(NULL);
    FILE *f = NULL;
    int rc = 2;

    if (argc != 2) {
        fprintf(stderr, "usage: pull-collide FILE\n");
        return 1;
    }
    if (sodium_init() < 0 || ident_generate(&id) != 0 ||
        (seen = calloc(SLOTS, sizeof(*seen))) == NULL)
        return 2;
    wb_init(&w, RECORD_ENVELOPE_MAX);
    for (uint32_t i = 0; i < TRIES; i++) {
        uint32_t p, slot;
        if (make(&id, i, now, &w, rid) != 0)
            goto out;
        p = (uint32_t)rid[0] << 22 | (uint32_t)rid[1] << 14 | (uint32_t)rid[2] << 6 | rid[3] >> 2;
        /* open addressing on the 30-bit prefix */
        for (slot = p % SLOTS; seen[slot] != 0; slot = (slot + 1) % SLOTS) {
            uint8_t other[32];
            uint32_t q;
            struct pull_wb w2;
            if (make(&id, seen[slot] - 1, now, &w, other) != 0)
                goto out;
            q = (uint32_t)other[0] << 22 | (uint32_t)other[1] << 14 | (uint32_t)other[2] << 6 |
                other[3] >> 2;
            if (q != p)
                continue;
            /* a pair: write both */
            if ((f = fopen(argv[1], "wb")) == NULL || bundle_writer_init(&bw, f) != 0 ||
                bundle_write(&bw, w.p, w.len) != 0)
                goto out;
            wb_init(&w2, RECORD_ENVELOPE_MAX);
            if (make(&id, i, now, &w2, rid) != 0 || bundle_write(&bw, w2.p, w2.len) != 0 ||
                bundle_writer_finish(&bw) != 0) {
                wb_release(&w2);
                goto out;
            }
            wb_release(&w2);
            ident_to_text(rid, text);
            printf("%.6s\n", text);
            rc = 0;
            goto out;
        }
        seen[slot] = i + 1;
    }
    fprintf(stderr, "pull-collide: no pair in %u tries\n", TRIES);
out:
    if (f != NULL && fclose(f) != 0)
        rc = 2;
    wb_release(&w);
    ident_wipe(&id);
    free(seen);
    return rc;
}
