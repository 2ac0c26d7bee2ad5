/*
 * bundle: the import/export file format, a stream of signed record envelopes.
 *
 *   bundle   = magic record*
 *   magic    = "PULLBDL1"                   (8 bytes)
 *   record   = length envelope
 *   length   = u32 big-endian, 1..RECORD_ENVELOPE_MAX
 *   envelope = `length` bytes: a record envelope (lib/record.h), exactly as signed
 *
 * The file ends after the last record; a partial length or envelope at the end is an error
 * (PULL_ERR_TRUNCATED), so a cut-off file is noticed. The bundle carries no checksum: each
 * envelope is signed and is verified on import (envelope_open) like bytes from a peer.
 *
 * The reader is bounded: it checks a length against RECORD_ENVELOPE_MAX before reading the
 * envelope, reads into a fixed buffer inside struct bundle_reader, and never allocates.
 * It reads either a FILE* (streaming, any size) or bytes in memory.
 */
#ifndef PULL_BUNDLE_H
#define PULL_BUNDLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/record.h"

#define BUNDLE_MAGIC "PULLBDL1"
#define BUNDLE_MAGIC_LEN 8

/* Writer: caller-owned, embeds nothing that needs freeing. */
struct bundle_writer {
    FILE *f;
    uint64_t count; /* envelopes written */
    int err;        /* first error (sticky) */
};

/* bundle_writer_init writes the magic to f (which the caller opened for writing and closes
 * after bundle_writer_finish). Returns 0 or PULL_ERR_IO. */
int bundle_writer_init(struct bundle_writer *w, FILE *f);

/* bundle_write appends one envelope (len 1..RECORD_ENVELOPE_MAX, else PULL_ERR_TOO_BIG /
 * PULL_ERR_INVAL). Errors are sticky: after one, further writes fail with it. */
int bundle_write(struct bundle_writer *w, const uint8_t *env, size_t len);

/* bundle_writer_finish flushes f and returns the first error of the writer, or 0. */
int bundle_writer_finish(struct bundle_writer *w);

/* Reader: caller-owned; the envelope buffer lives inside it. */
struct bundle_reader {
    FILE *f;            /* streaming source, or NULL */
    const uint8_t *mem; /* in-memory source, when f is NULL */
    size_t mem_len;
    size_t mem_off;
    uint64_t count; /* envelopes returned so far */
    int err;        /* first error (sticky) */
    int started;    /* magic checked */
    uint8_t buf[RECORD_ENVELOPE_MAX];
};

/* bundle_reader_init_file reads from f (opened by the caller for reading, left open). */
void bundle_reader_init_file(struct bundle_reader *r, FILE *f);

/* bundle_reader_init_mem reads the n bytes at p, which must outlive the reader. */
void bundle_reader_init_mem(struct bundle_reader *r, const uint8_t *p, size_t n);

/* bundle_next reads the next envelope. Returns 1 with *env and *len set (the bytes are in
 * r's buffer for a file, in the caller's memory for a memory reader, and stay valid until
 * the next call), 0 at the clean end of the bundle, or a negative error:
 * PULL_ERR_MALFORMED (not a bundle, or a zero length), PULL_ERR_VERSION (a "PULLBDL"
 * magic of another version), PULL_ERR_TOO_BIG (a length above RECORD_ENVELOPE_MAX,
 * refused before reading it), PULL_ERR_TRUNCATED (the input ends inside the magic, a
 * length or an envelope), PULL_ERR_IO (read error). Errors are sticky. The envelope is
 * not checked: give it to envelope_open. */
int bundle_next(struct bundle_reader *r, const uint8_t **env, size_t *len);

#endif
