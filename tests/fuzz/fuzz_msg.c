/* Fuzz every session-message decoder (proto/msg.h) on the same input, plus round trips:
 * whatever decodes must re-encode, decode to the same value, and when the re-encoding has
 * the input's length (no extra fields) reproduce the input byte for byte (canonical). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_same_bytes(const struct pull_wb *w, const uint8_t *data, size_t size)
{
    if (w->len == size && memcmp(w->p, data, size) != 0)
        abort();
    if (w->len > size)
        abort(); /* a decoded message never re-encodes longer than its input */
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct msg_session m, m2;
    struct msg_hello h, h2;
    struct msg_bye b, b2;
    struct pull_wb w;
    uint32_t type, type2;
    uint64_t nonce, nonce2;
    int rc;

    wb_init(&w, MSG_MAX);
    msg_peek_type(data, size, &type);
    rc = msg_session_decode(data, size, &m);
    if (rc == PULL_ERR_UNSUPPORTED && msg_peek_type(data, size, &type) == 0 && type != m.type)
        abort();

    if (msg_hello_decode(data, size, &h) == 0) {
        if (rc != 0 || m.type != MSG_HELLO || memcmp(&h, &m.u.hello, sizeof(h)) != 0)
            abort();
        if (msg_hello_encode(&h, &w) != 0 || msg_hello_decode(w.p, w.len, &h2) != 0 ||
            memcmp(&h, &h2, sizeof(h)) != 0)
            abort();
        check_same_bytes(&w, data, size);
        uint32_t v;
        struct msg_hello ours;
        msg_hello_init(&ours, 0, 0, "fuzz");
        if (msg_negotiate(&ours, &h, &v) == 0 &&
            (v < h.proto_min || v > h.proto_max || v < ours.proto_min || v > ours.proto_max))
            abort();
    }
    wb_reset(&w);
    if (msg_ping_decode(data, size, &type, &nonce) == 0) {
        if (rc != 0 || m.type != type || m.u.nonce != nonce)
            abort();
        if (msg_ping_encode(type, nonce, &w) != 0 ||
            msg_ping_decode(w.p, w.len, &type2, &nonce2) != 0 || type2 != type || nonce2 != nonce)
            abort();
        check_same_bytes(&w, data, size);
    }
    wb_reset(&w);
    if (msg_bye_decode(data, size, &b) == 0) {
        if (rc != 0 || m.type != MSG_BYE || memcmp(&b, &m.u.bye, sizeof(b)) != 0)
            abort();
        if (msg_bye_encode(b.reason, b.text, &w) != 0 || msg_bye_decode(w.p, w.len, &b2) != 0 ||
            memcmp(&b, &b2, sizeof(b)) != 0)
            abort();
        check_same_bytes(&w, data, size);
        (void)msg_bye_reason_str(b.reason);
    }
    if (rc == 0) {
        /* the generic decoder agrees with itself */
        if (msg_session_decode(data, size, &m2) != 0 || memcmp(&m, &m2, sizeof(m)) != 0)
            abort();
        if (msg_type_name(m.type) == NULL)
            abort();
    }
    wb_release(&w);
    return 0;
}
