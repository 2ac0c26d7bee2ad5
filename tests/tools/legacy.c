/*
 * pull-legacy: plants a record made before text rule 2 (lib/record.h) for the integration
 * tests (test_spoofing.sh): what a node of an older version may hold in its store.
 *
 *   pull-legacy DATA_DIR KIND TITLE BODY [TAG]
 *
 * With the node of DATA_DIR stopped, it signs a record of KIND (offer or need) with a new
 * random author, TITLE, BODY and TAG taken as raw bytes (they may hold bidi controls or
 * zero-width characters that rule 2 refuses but rule 1 lets through), and stores it as
 * verified (store_put_opened), the way an older pulld stored it. The record is encoded
 * here, field by field, because record_encode applies rule 2. Prints "PLANTED <record id>".
 * Exit 0, 1 on bad usage, 2 on failure.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/mp.h"
#include "lib/paths.h"
#include "lib/record.h"
#include "lib/store.h"

int
main(int argc, char **argv)
{
    struct pull_wb rec_bytes, env_bytes;
    struct store *st = NULL;
    struct store_opened op;
    struct envelope env;
    struct record rec;
    struct ident who;
    msgpack_packer pk;
    uint8_t slot[RECORD_SLOT_BYTES], sig[64];
    char path[4096], idtext[IDENT_TEXT_LEN + 1];
    uint64_t now = (uint64_t)time(NULL);
    uint8_t kind;
    int rc;

    if (argc < 5 || argc > 6 || record_kind_parse(argv[2], &kind) != 0) {
        fprintf(stderr, "usage: pull-legacy DATA_DIR offer|need TITLE BODY [TAG]\n");
        return 1;
    }
    if (sodium_init() < 0 || ident_generate(&who) != 0)
        return 2;
    randombytes_buf(slot, sizeof(slot));
    wb_init(&rec_bytes, RECORD_MAX);
    wb_init(&env_bytes, RECORD_ENVELOPE_MAX);
    mp_packer_init(&pk, &rec_bytes);
    msgpack_pack_array(&pk, RECORD_FIELDS);
    msgpack_pack_uint64(&pk, RECORD_VERSION);
    msgpack_pack_uint64(&pk, kind);
    mp_pack_bin(&pk, who.pk, 32);
    mp_pack_bin(&pk, slot, sizeof(slot));
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, now - 10);
    msgpack_pack_uint64(&pk, now + 86400);
    mp_pack_cstr(&pk, argv[3]);
    mp_pack_cstr(&pk, argv[4]);
    msgpack_pack_array(&pk, argc == 6 ? 1 : 0);
    if (argc == 6)
        mp_pack_cstr(&pk, argv[5]);
    mp_pack_cstr(&pk, "");
    mp_pack_cstr(&pk, "");
    mp_pack_bin(&pk, NULL, 0);
    mp_pack_bin(&pk, NULL, 0);
    mp_pack_bin(&pk, NULL, 0);
    if ((rc = wb_error(&rec_bytes)) != 0 ||
        (rc = ident_sign(&who, RECORD_DOMAIN, rec_bytes.p, rec_bytes.len, sig)) != 0)
        goto fail;
    mp_packer_init(&pk, &env_bytes);
    msgpack_pack_array(&pk, 2);
    mp_pack_bin(&pk, rec_bytes.p, rec_bytes.len);
    mp_pack_bin(&pk, sig, sizeof(sig));
    /* what an older pulld checked: parse, decode (rule 1), and the signature */
    if ((rc = wb_error(&env_bytes)) != 0 ||
        (rc = envelope_parse(env_bytes.p, env_bytes.len, &env)) != 0 ||
        (rc = record_decode(env.rec, env.rec_len, &rec)) != 0 ||
        (rc = ident_verify(who.pk, RECORD_DOMAIN, env.rec, env.rec_len, env.sig)) != 0)
        goto fail;
    if ((rc = paths_join(argv[1], PATHS_STORE_NAME, path, sizeof(path))) != 0 ||
        (rc = store_open(path, NULL, &st)) != 0)
        goto fail;
    memset(&op, 0, sizeof(op));
    op.env = &env;
    op.rec = &rec;
    if ((rc = store_put_opened(st, &op, 1, now)) != 0 || (rc = op.result) != 0)
        goto fail;
    store_close(st);
    ident_to_text(env.id, idtext);
    printf("PLANTED %s\n", idtext);
    wb_release(&rec_bytes);
    wb_release(&env_bytes);
    ident_wipe(&who);
    return 0;
fail:
    fprintf(stderr, "pull-legacy: %s\n", pull_strerror(rc));
    store_close(st);
    wb_release(&rec_bytes);
    wb_release(&env_bytes);
    ident_wipe(&who);
    return 2;
}
