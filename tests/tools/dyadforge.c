/*
 * pull-dyadforge: plants forged dyad messages for the integration tests (test_dyad.sh).
 *
 *   pull-dyadforge DATA_DIR DYAD_ID RECIPIENT_ID COUNTERPART_ID
 *
 * With the node of DATA_DIR stopped, it writes two sealed mail items from that node (its
 * own identity, a third party to the dyad) to RECIPIENT_ID into the node's mail table:
 *   - an ACCEPT of dyad DYAD_ID authored and signed by the third party itself (the
 *     recipient must refuse it: the author is not a side of the dyad);
 *   - an ACCEPT claiming to be authored by COUNTERPART_ID (the recipient's counterpart in
 *     the dyad) but signed with the forger's key (refused: bad signature).
 * When the node starts again, its dyad service loads them as its own outgoing mail and
 * pushes them to the recipient as soon as the two are connected: the real wire path.
 * Prints "FORGED <mail id hex>" per item. Exit 0, 1 on bad usage, 2 on failure.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/mp.h"
#include "lib/paths.h"
#include "lib/store.h"
#include "proto/dyad.h"
#include "proto/mail.h"

/* A signed ACCEPT body [1, 2, dyad, author, 0, created, "", terms, terms_sig]. */
static int
forge_accept(const struct ident *signer, const uint8_t author[32], const uint8_t dyad[32],
             uint64_t created, struct pull_wb *out)
{
    struct pull_wb body;
    msgpack_packer pk;
    uint8_t terms[32], tsig[64], sig[64];
    int rc;

    memset(terms, 0x5a, sizeof(terms));
    wb_init(&body, DYAD_MSG_MAX);
    if ((rc = ident_sign(signer, DYAD_TERMS_DOMAIN, terms, sizeof(terms), tsig)) != 0)
        goto out;
    mp_packer_init(&pk, &body);
    msgpack_pack_array(&pk, 9);
    msgpack_pack_uint64(&pk, DYAD_VERSION);
    msgpack_pack_uint64(&pk, DYAD_ACCEPT);
    mp_pack_bin(&pk, dyad, 32);
    mp_pack_bin(&pk, author, 32);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_uint64(&pk, created);
    mp_pack_str(&pk, "", 0);
    mp_pack_bin(&pk, terms, sizeof(terms));
    mp_pack_bin(&pk, tsig, sizeof(tsig));
    if ((rc = wb_error(&body)) != 0 ||
        (rc = ident_sign(signer, DYAD_DOMAIN, body.p, body.len, sig)) != 0)
        goto out;
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 2);
    mp_pack_bin(&pk, body.p, body.len);
    mp_pack_bin(&pk, sig, sizeof(sig));
    rc = wb_error(out);
out:
    wb_release(&body);
    return rc;
}

int
main(int argc, char **argv)
{
    char path[4096];
    struct ident me;
    uint8_t dyad[32], rcpt[32], other[32];
    struct store *st = NULL;
    struct store_opts so;
    uint64_t now = (uint64_t)time(NULL);
    int rc = 0;

    if (argc != 5) {
        fprintf(stderr, "usage: pull-dyadforge DATA_DIR DYAD_ID RECIPIENT_ID COUNTERPART_ID\n");
        return 1;
    }
    if (sodium_init() < 0 || ident_from_text(argv[2], dyad) != 0 ||
        ident_from_text(argv[3], rcpt) != 0 || ident_from_text(argv[4], other) != 0) {
        fprintf(stderr, "pull-dyadforge: bad id\n");
        return 1;
    }
    if (paths_join(argv[1], PATHS_KEY_NAME, path, sizeof(path)) != 0 ||
        (rc = ident_load(path, &me)) != 0) {
        fprintf(stderr, "pull-dyadforge: %s: %s\n", path, pull_strerror(rc));
        return 2;
    }
    store_opts_init(&so);
    if (paths_join(argv[1], PATHS_STORE_NAME, path, sizeof(path)) != 0 ||
        (rc = store_open(path, &so, &st)) != 0) {
        fprintf(stderr, "pull-dyadforge: store %s: %s\n", path, pull_strerror(rc));
        ident_wipe(&me);
        return 2;
    }
    for (int k = 0; k < 2 && rc == 0; k++) {
        struct pull_wb msg, item;
        uint8_t id[MAIL_ID_BYTES];
        char hex[2 * MAIL_ID_BYTES + 1];
        wb_init(&msg, DYAD_MSG_MAX);
        wb_init(&item, MAIL_ITEM_MAX);
        /* k = 0: signed by me as me; k = 1: "by" the counterpart, signed by me */
        if ((rc = forge_accept(&me, k == 0 ? me.pk : other, dyad, now, &msg)) == 0 &&
            (rc = mail_seal(env_system(), &me, rcpt, msg.p, msg.len, now + 86400, &item, id)) ==
                0 &&
            (rc = store_kv_put(st, STORE_MAIL, id, item.p, item.len)) == 0) {
            sodium_bin2hex(hex, sizeof(hex), id, sizeof(id));
            printf("FORGED %s\n", hex);
        }
        wb_release(&msg);
        wb_release(&item);
    }
    if (rc != 0)
        fprintf(stderr, "pull-dyadforge: %s\n", pull_strerror(rc));
    store_close(st);
    ident_wipe(&me);
    return rc == 0 ? 0 : 2;
}
