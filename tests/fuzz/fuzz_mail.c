/* Fuzz the mail decoders. The first byte picks the target, the rest is its input:
 *   0  mail_parse (+ verify, + open as the fixed recipient bob): whatever parses must
 *      re-encode to the same bytes
 *   1  mail_msg_decode (MSG_MAIL), then mail_parse of every item; re-encoding gives the
 *      same items (extra fields of later versions are skipped, so not the same bytes)
 *   2  mail_ihave_decode (MSG_MAIL_IHAVE); re-encoding gives the same ids
 *   3  mail_index_add of the input into a small index, twice (the second is a duplicate) */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/mp.h"
#include "proto/mail.h"
#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW 1800000000ull

static struct ident bob;

static void
init_once(void)
{
    static int done;
    uint8_t seed[32];

    if (done)
        return;
    done = 1;
    if (sodium_init() < 0)
        abort();
    memset(seed, 0x22, 32);
    if (ident_from_seed(&bob, seed) != 0)
        abort();
}

static void
check_item(const uint8_t *p, size_t n)
{
    struct mail_item m;
    struct pull_wb w;
    msgpack_packer pk;
    static uint8_t plain[MAIL_SEALED_MAX];
    size_t pn;

    if (mail_parse(p, n, &m) != 0)
        return;
    wb_init(&w, 0);
    mp_packer_init(&pk, &w);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint64(&pk, MAIL_VERSION);
    mp_pack_bin(&pk, m.recipient, 32);
    mp_pack_bin(&pk, m.sender, 32);
    msgpack_pack_uint64(&pk, m.expires);
    mp_pack_bin(&pk, m.sealed, m.sealed_len);
    if (w.len != m.signed_len)
        abort();
    mp_pack_bin(&pk, m.sig, 64);
    if (w.len != n || memcmp(w.p, p, n) != 0)
        abort();
    wb_release(&w);
    (void)mail_verify(&m, FUZZ_NOW);
    if (mail_open(&m, &bob, plain, sizeof(plain), &pn) == 0 &&
        pn != m.sealed_len - MAIL_SEAL_OVERHEAD)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct mail_ref items[64];
    static uint8_t have[MAIL_IHAVE_MAX][32], want[MAIL_IHAVE_MAX][32];
    struct pull_wb w;
    const uint8_t *p;
    size_t n, count, nh, nw;

    init_once();
    if (size < 1)
        return 0;
    p = data + 1;
    n = size - 1;
    wb_init(&w, 0);
    switch (data[0] % 4) {
    case 0:
        check_item(p, n);
        break;
    case 1:
        if (mail_msg_decode(p, n, items, 64, &count) == 0) {
            for (size_t i = 0; i < count; i++)
                check_item(items[i].p, items[i].len);
            /* re-encoded (without any extra fields a later version may append), it
             * decodes to the same items */
            static struct mail_ref again[64];
            size_t count2;
            if (mail_msg_encode(items, count, &w) != 0 || w.len > n ||
                mail_msg_decode(w.p, w.len, again, 64, &count2) != 0 || count2 != count)
                abort();
            for (size_t i = 0; i < count; i++) {
                if (again[i].len != items[i].len ||
                    memcmp(again[i].p, items[i].p, items[i].len) != 0)
                    abort();
            }
        }
        break;
    case 2:
        if (mail_ihave_decode(p, n, have, MAIL_IHAVE_MAX, &nh, want, MAIL_IHAVE_MAX, &nw) == 0) {
            static uint8_t have2[MAIL_IHAVE_MAX][32], want2[MAIL_IHAVE_MAX][32];
            size_t nh2, nw2;
            if (mail_ihave_encode((const uint8_t(*)[32])have, nh, (const uint8_t(*)[32])want, nw,
                                  &w) != 0 ||
                w.len > n ||
                mail_ihave_decode(w.p, w.len, have2, MAIL_IHAVE_MAX, &nh2, want2, MAIL_IHAVE_MAX,
                                  &nw2) != 0 ||
                nh2 != nh || nw2 != nw || memcmp(have2, have, nh * 32) != 0 ||
                memcmp(want2, want, nw * 32) != 0)
                abort();
        }
        break;
    case 3: {
        struct mail_quota q;
        struct mail_index *ix = NULL;
        int rc;
        mail_quota_default(&q);
        if (mail_index_new(NULL, &q, &ix) != 0)
            abort();
        rc = mail_index_add(ix, p, n, FUZZ_NOW, NULL);
        if (rc == 0 && (mail_index_count(ix) != 1 ||
                        mail_index_add(ix, p, n, FUZZ_NOW, NULL) != PULL_ERR_DUPLICATE))
            abort();
        if (rc != 0 && mail_index_count(ix) != 0)
            abort();
        mail_index_free(ix);
        break;
    }
    }
    wb_release(&w);
    return 0;
}
