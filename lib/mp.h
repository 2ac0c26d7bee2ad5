/*
 * mp: strict, bounded MessagePack reading, and packing through msgpack-c.
 *
 * Why not msgpack-c's unpacker: it allocates from container headers before the contents
 * exist, so five bytes (`dd ff ff ff ff`) can make it try to allocate gigabytes. pull never
 * hands peer bytes to it. Instead every decoder walks its input with these functions on a
 * struct pull_rd (lib/buf.h), which:
 *   - never allocate;
 *   - refuse a container whose element count exceeds the bytes left (each element takes at
 *     least one byte, two for a map entry), so a header can never promise more than exists;
 *   - accept only the canonical (shortest) encoding of every integer and every str/bin/
 *     array/map header, so decode→encode reproduces the input byte for byte (records are
 *     signed over their exact bytes; two encodings of one record must not exist);
 *   - validate UTF-8 in every str.
 * Writing uses msgpack-c's packer, which emits exactly that canonical form (checked in
 * tests/unit/test_mp.c).
 *
 * Deferred counts. A map or array whose size is not known when it is opened is written
 * with struct mp_open (after redis's addReplyDeferredLen / setDeferredMapLen): opening
 * reserves the longest header (5 bytes), every entry is counted as it is added (mp_key
 * packs a map key and counts one entry, whose value the caller packs next; mp_item counts
 * one array element), and mp_close writes the count in its shortest form and moves the
 * body back over the header bytes it did not need - the output is byte for byte what
 * msgpack_pack_map/array with the right count would have produced, so the strict reader
 * above accepts it. Nobody counts fields by hand.
 */
#ifndef PULL_MP_H
#define PULL_MP_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"

enum mp_type {
    MP_NIL,
    MP_BOOL,
    MP_UINT,
    MP_NINT,
    MP_FLOAT,
    MP_STR,
    MP_BIN,
    MP_ARRAY,
    MP_MAP,
    MP_EXT,
    MP_INVALID,
};

/* Maximum nesting that mp_skip accepts. */
#define MP_MAX_DEPTH 8

/* mp_peek returns the type of the next value without consuming it (MP_INVALID at the end
 * of input or on the reserved byte 0xc1). */
enum mp_type mp_peek(const struct pull_rd *r);

int mp_read_nil(struct pull_rd *r);
int mp_read_bool(struct pull_rd *r, bool *v);

/* mp_read_uint reads a non-negative integer in its shortest encoding. */
int mp_read_uint(struct pull_rd *r, uint64_t *v);

/* mp_read_uint_max reads a non-negative integer and fails with PULL_ERR_FIELD if > max. */
int mp_read_uint_max(struct pull_rd *r, uint64_t max, uint64_t *v);

/* mp_read_int reads any integer (positive values must use the uint forms, negative the
 * shortest int form). */
int mp_read_int(struct pull_rd *r, int64_t *v);

/* mp_read_array / mp_read_map read a container header; the count is checked against the
 * bytes remaining. */
int mp_read_array(struct pull_rd *r, uint32_t *n);
int mp_read_map(struct pull_rd *r, uint32_t *n);

/* mp_read_array_n reads an array header that must have exactly n elements. */
int mp_read_array_n(struct pull_rd *r, uint32_t n);

/* mp_read_str returns a pointer into the input (not NUL-terminated) and its length, after
 * checking it is valid UTF-8 and at most max bytes (PULL_ERR_FIELD if longer). */
int mp_read_str(struct pull_rd *r, uint32_t max, const char **s, uint32_t *len);

/* mp_read_bin returns a pointer into the input and its length (at most max). */
int mp_read_bin(struct pull_rd *r, uint32_t max, const uint8_t **b, uint32_t *len);

/* mp_read_bin_exact copies a bin of exactly n bytes into out (PULL_ERR_FIELD otherwise). */
int mp_read_bin_exact(struct pull_rd *r, void *out, uint32_t n);

/* mp_skip skips one value of any type, nested at most MP_MAX_DEPTH deep. Used to ignore
 * fields appended by newer protocol versions. */
int mp_skip(struct pull_rd *r);

/* mp_packer_init sets pk up to append to w. Packing errors are recorded in w (wb_error). */
void mp_packer_init(msgpack_packer *pk, struct pull_wb *w);

/* Small helpers over msgpack-c's packer for the types pull uses. */
void mp_pack_bin(msgpack_packer *pk, const void *p, size_t n);
void mp_pack_str(msgpack_packer *pk, const char *s, size_t n);
void mp_pack_cstr(msgpack_packer *pk, const char *s);
void mp_pack_bool(msgpack_packer *pk, bool v);

/* A map or array open for entries; its count is written by mp_close. Caller-owned
 * storage, nothing to release. */
struct mp_open {
    msgpack_packer *pk;
    struct pull_wb *w;
    size_t off; /* where the header was reserved in w */
    uint32_t n; /* map entries or array elements added so far */
    bool map;
};

/* mp_open_map / mp_open_array start a container at the end of pk's writer; pk must have
 * been set up by mp_packer_init (it writes to a struct pull_wb) and outlive o. Containers
 * nest; close them in the reverse order of opening. */
void mp_open_map(struct mp_open *o, msgpack_packer *pk);
void mp_open_array(struct mp_open *o, msgpack_packer *pk);

/* mp_key packs key into the map o, counts one entry, and returns the packer for its value:
 * the caller packs exactly one value (or one nested container) next. */
msgpack_packer *mp_key(struct mp_open *o, const char *key);

/* mp_item counts one element of the array o and returns the packer: the caller packs
 * exactly one value next. mp_items counts n elements the caller appends itself (already
 * packed bytes, e.g. a copy of another buffer). */
msgpack_packer *mp_item(struct mp_open *o);
void mp_items(struct mp_open *o, uint32_t n);

/* mp_close writes o's header in its shortest form (fixmap/fixarray up to 15 entries,
 * 16-bit up to 65535, else 32-bit), moving the body back by the bytes saved. If the writer
 * failed meanwhile (wb_error), it leaves the bytes alone: the caller sees the error. */
void mp_close(struct mp_open *o);

/* key/value pairs in one call: mp_key followed by the value. */
void mp_kv_str(struct mp_open *o, const char *key, const char *v);
void mp_kv_uint(struct mp_open *o, const char *key, uint64_t v);
void mp_kv_int(struct mp_open *o, const char *key, int64_t v);
void mp_kv_bool(struct mp_open *o, const char *key, bool v);

#endif
