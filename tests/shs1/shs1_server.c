/* Adapter for the shs1-test suite's server tests (shs1testserver): performs the server side
 * of the handshake with proto/shs over stdin/stdout.
 *
 *   shs1_server NETWORK_KEY_HEX SERVER_SK_HEX(64 bytes) SERVER_PK_HEX
 *
 * Reads 64, writes 64, reads 112, writes 80, then writes the 112-byte outcome
 * (enc key, enc nonce, dec key, dec nonce) and exits 0. On any failure it exits 1 without
 * writing anything more. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/env.h"
#include "lib/ident.h"
#include "proto/shs.h"
#include "tests/shs1/shs1_io.h"

int
main(int argc, char **argv)
{
    static const size_t sizes[] = {SHS_MSG1_BYTES, SHS_MSG3_BYTES};
    uint8_t K[32];
    struct ident id;
    struct shs s;
    struct shs_session sess;
    int status = 1;

    memset(&s, 0, sizeof(s));
    memset(&sess, 0, sizeof(sess));
    if (argc != 4 || sodium_init() < 0 || shs1_hex(argv[1], K, 32) != 0 ||
        shs1_hex(argv[2], id.sk, 64) != 0 || shs1_hex(argv[3], id.pk, 32) != 0) {
        fprintf(stderr, "usage: shs1_server NETWORK_KEY SERVER_SK SERVER_PK (hex)\n");
        return 2;
    }
    if (shs_server_init(&s, env_system(), K, &id) != 0)
        goto out;
    if (shs1_drive(&s, sizes, 2) != 0) {
        if (getenv("SHS1_VERBOSE") != NULL) /* the suite's failure cases are expected */
            fprintf(stderr, "shs1_server: %s\n", shs_fail_str(shs_fail_reason(&s)));
        goto out;
    }
    if (shs_session(&s, &sess) != 0 || shs1_write_outcome(&sess) != 0)
        goto out;
    status = 0;
out:
    shs_release(&s);
    shs_session_wipe(&sess);
    sodium_memzero(&id, sizeof(id));
    return status;
}
