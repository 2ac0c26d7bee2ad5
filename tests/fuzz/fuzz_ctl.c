/* Fuzz the control protocol decoders (proto/ctl.h): the frame reader fed in odd-sized
 * chunks, request and reply decoding of every message it yields and of the raw input, the
 * typed arg getters, the command table lookup, and the JSON printer (lib/json.h) on every
 * result. Nothing may read out of bounds, whatever decodes must re-encode to something that
 * decodes the same way, and every valid result must convert to JSON. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/mp.h"
#include "proto/ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
noop(struct ctl_call *call, const struct ctl_request *req)
{
    (void)call, (void)req;
    return 0;
}

static const struct ctl_command table[] = {
    {"id", noop, {NULL}, 0},
    {"show", noop, {"id", NULL}, 0},
    {"record.add", noop, {"kind", "title", NULL}, CTL_F_WRITE},
    {"import", noop, {"envelopes", NULL}, CTL_F_WRITE | CTL_F_SLOW},
};

static void
exercise_request(const uint8_t *p, size_t n)
{
    struct ctl_request req;
    const struct ctl_command *cmd;
    const char *missing;
    char msg[CTL_MSG_MAX], s[121], tags[16][33];
    uint64_t u;
    bool b;
    uint32_t count, len;
    struct ctl_array it;
    const uint8_t *bin;
    const char *str;
    struct pull_wb w;
    msgpack_packer pk;
    struct ctl_request again;

    if (ctl_request_decode(p, n, &req) != 0)
        return;
    (void)ctl_command_lookup(table, sizeof(table) / sizeof(table[0]), &req, &cmd, &missing, msg,
                             sizeof(msg));
    (void)ctl_arg_str(&req, "title", 120, s, sizeof(s));
    (void)ctl_arg_uint(&req, "expires_s", 90 * 86400, &u);
    (void)ctl_arg_bool(&req, "all", &b);
    (void)ctl_arg_strs(&req, "tags", 16, 32, &tags[0][0], sizeof(tags[0]), &count);
    if (ctl_arg_array(&req, "envelopes", 256, &it) == 0) {
        while (ctl_array_next_bin(&it, 4200, &bin, &len) == 1)
            ;
    }
    if (ctl_arg_array(&req, "words", 64, &it) == 0) {
        while (ctl_array_next_str(&it, 64, &str, &len) == 1)
            ;
    }

    /* Re-encode with the same args bytes: it must decode to the same request. */
    wb_init(&w, 0);
    mp_packer_init(&pk, &w);
    ctl_pack_request_head(&pk, req.cmd, req.seq);
    wb_put(&w, req.args, req.args_len);
    if (wb_error(&w) != 0 || ctl_request_decode(w.p, w.len, &again) != 0 ||
        strcmp(again.cmd, req.cmd) != 0 || again.seq != req.seq || again.nargs != req.nargs ||
        again.args_len != req.args_len || memcmp(again.args, req.args, req.args_len) != 0)
        abort();
    wb_release(&w);
}

static void
exercise_reply(const uint8_t *p, size_t n)
{
    struct ctl_reply rep;
    struct pull_rd r, v;

    if (ctl_reply_decode(p, n, &rep) != 0)
        return;
    if (rep.err > 0 || strlen(rep.msg) > CTL_MSG_MAX)
        abort();
    rd_init(&r, rep.result, rep.result_len);
    if (ctl_value_check(&r, 2) != 0 || rd_left(&r) != 0)
        abort(); /* the result was validated as exactly one value */
    rd_init(&r, rep.result, rep.result_len);
    if (mp_peek(&r) == MP_MAP)
        (void)ctl_map_find(&r, "id", &v);
    /* Every validated result converts to JSON, consuming exactly the value. */
    {
        struct pull_wb out;
        wb_init(&out, 0);
        rd_init(&r, rep.result, rep.result_len);
        if (json_from_mp(&r, &out) != 0 || rd_left(&r) != 0)
            abort();
        wb_release(&out);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ctl_reader rd;
    const uint8_t *msg;
    size_t len, used, off = 1, chunk;

    exercise_request(data, size);
    exercise_reply(data, size);
    if (size == 0)
        return 0;
    /* The first byte picks the chunk size, the rest is a byte stream of frames. */
    chunk = (size_t)data[0] % 17 + 1;
    ctl_reader_init(&rd, 1u << 16);
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        if (ctl_reader_feed(&rd, data + off, n, &used) != 0)
            break;
        if (used > n)
            abort();
        off += used;
        while (ctl_reader_pop(&rd, &msg, &len) == 1) {
            if (len == 0 || len > (1u << 16))
                abort();
            exercise_request(msg, len);
            exercise_reply(msg, len);
        }
        if (used == 0 && rd.err == 0 && !rd.ready)
            abort(); /* no progress */
    }
    ctl_reader_release(&rd);
    return 0;
}
