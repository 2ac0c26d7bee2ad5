/*
 * pull-attestforge: a self-attesting pair of keys, for the integration tests
 * (test_people.sh).
 *
 *   pull-attestforge BUNDLE [TITLE]
 *
 * Makes two fresh keys X1 and X2 - two keys of one person - and writes to BUNDLE (an
 * import bundle, lib/bundle.h) the records they would need to look like people who
 * completed dyads together without anyone else ever dealing with them:
 *   - an offer by X1 (TITLE, default "Sofa delivery in Paris");
 *   - an attestation by X1, cosigned by X2, about that offer: it has the exact shape of a
 *     dyad's attestation and names a real record, so a node can't tell it from a real one;
 *     only the trust graph can (nobody I can reach dealt with either key);
 *   - an attestation by X2, cosigned by X1, about a record that doesn't exist: an
 *     attestation about no dyad at all, which must not count.
 * Every record is validly signed (and cosigned): `pull import` takes them all. Prints
 * "X1 <key>", "X2 <key>", "OFFER <id>", "ATTEST <id>" (the first), "BOGUS <id>". Exit 0,
 * 1 on bad usage, 2 on failure.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/bundle.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/record.h"
#include "proto/dyad.h"

/* An attestation of author about link, cosigned by peer, as dyad_attestation_build makes
 * them; appended to out, its id in id. */
static int
attest(const struct ident *author, const struct ident *peer, const uint8_t link[32], uint64_t now,
       struct pull_wb *out, uint8_t id[RECORD_ID_BYTES])
{
    struct record rec;
    int rc;

    record_init(&rec);
    rec.kind = RECORD_ATTESTATION;
    memcpy(rec.author, author->pk, 32);
    randombytes_buf(rec.slot, sizeof(rec.slot));
    rec.seq = 1;
    rec.created = now;
    rec.expires = now + DYAD_ATTEST_TTL;
    snprintf(rec.title, sizeof(rec.title), "%s", DYAD_ATTEST_TITLE);
    rec.ntags = 1;
    snprintf(rec.tags[0], sizeof(rec.tags[0]), "%s", DYAD_ATTEST_TAG);
    rec.has_link = true;
    memcpy(rec.link, link, 32);
    rec.has_peer = true;
    memcpy(rec.peer, peer->pk, 32);
    if ((rc = record_cosign(NULL, &rec, peer)) != 0)
        return rc;
    return record_sign(&rec, author, out, id);
}

int
main(int argc, char **argv)
{
    struct ident x1, x2;
    struct record offer;
    struct pull_wb w;
    struct bundle_writer bw;
    uint8_t offer_id[RECORD_ID_BYTES], att_id[RECORD_ID_BYTES], bogus_id[RECORD_ID_BYTES];
    uint8_t nowhere[32];
    char t[IDENT_TEXT_LEN + 1];
    uint64_t now = (uint64_t)time(NULL);
    size_t off1, off2;
    FILE *f;
    int rc;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: pull-attestforge BUNDLE [TITLE]\n");
        return 1;
    }
    if (sodium_init() < 0 || ident_generate(&x1) != 0 || ident_generate(&x2) != 0)
        return 2;
    wb_init(&w, 0);
    record_init(&offer);
    offer.kind = RECORD_OFFER;
    memcpy(offer.author, x1.pk, 32);
    randombytes_buf(offer.slot, sizeof(offer.slot));
    offer.seq = 1;
    offer.created = now - 60;
    offer.expires = now + RECORD_TTL_DEFAULT;
    snprintf(offer.title, sizeof(offer.title), "%s",
             argc == 3 ? argv[2] : "Sofa delivery in Paris");
    randombytes_buf(nowhere, sizeof(nowhere));
    if ((rc = record_sign(&offer, &x1, &w, offer_id)) != 0)
        goto fail;
    off1 = w.len;
    if ((rc = attest(&x1, &x2, offer_id, now, &w, att_id)) != 0)
        goto fail;
    off2 = w.len;
    if ((rc = attest(&x2, &x1, nowhere, now, &w, bogus_id)) != 0)
        goto fail;
    if ((f = fopen(argv[1], "wb")) == NULL) {
        rc = PULL_ERR_IO;
        goto fail;
    }
    if ((rc = bundle_writer_init(&bw, f)) != 0 || (rc = bundle_write(&bw, w.p, off1)) != 0 ||
        (rc = bundle_write(&bw, w.p + off1, off2 - off1)) != 0 ||
        (rc = bundle_write(&bw, w.p + off2, w.len - off2)) != 0 ||
        (rc = bundle_writer_finish(&bw)) != 0) {
        fclose(f);
        goto fail;
    }
    if (fclose(f) != 0) {
        rc = PULL_ERR_IO;
        goto fail;
    }
    ident_to_text(x1.pk, t);
    printf("X1 %s\n", t);
    ident_to_text(x2.pk, t);
    printf("X2 %s\n", t);
    ident_to_text(offer_id, t);
    printf("OFFER %s\n", t);
    ident_to_text(att_id, t);
    printf("ATTEST %s\n", t);
    ident_to_text(bogus_id, t);
    printf("BOGUS %s\n", t);
    wb_release(&w);
    ident_wipe(&x1);
    ident_wipe(&x2);
    return 0;
fail:
    fprintf(stderr, "pull-attestforge: %s\n", pull_strerror(rc));
    wb_release(&w);
    return 2;
}
