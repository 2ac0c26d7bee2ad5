/*
 * frame: the encrypted, length-prefixed frames that carry messages after the handshake.
 *
 * Each direction of a connection is one libsodium secretstream
 * (crypto_secretstream_xchacha20poly1305) with its own key, derived from the Secret
 * Handshake session (frame_keys). On the wire, per direction:
 *
 *     header      24 bytes, sent once, first thing after the handshake
 *     frame*      len (u32 big-endian) || ciphertext      (len = plaintext length + 17)
 *
 * The 4 length bytes are the additional data of the frame's AEAD, so they are
 * authenticated too. Limits are checked from those 4 bytes, before anything else of the
 * frame is buffered: the plaintext is 1..FRAME_PLAIN_MAX (= MSG_MAX, 64 KiB) bytes, so len
 * must be within [18, 65553]; an empty plaintext is refused.
 *
 * Tags: ordinary frames carry TAG_MESSAGE; the last frame of a direction carries TAG_FINAL
 * (an authenticated goodbye: normally a BYE message) and nothing may follow it. Any other
 * tag is a protocol error. Rekeying is implicit and deterministic: both ends call
 * crypto_secretstream_xchacha20poly1305_rekey() after every FRAME_REKEY_EVERY frames of a
 * direction, so no tag announces it.
 *
 * Every error of the decoder is fatal for the connection and sticky (every later call
 * returns it): PULL_ERR_TOO_BIG (length over the limit), PULL_ERR_MALFORMED (empty
 * plaintext), PULL_ERR_CRYPTO (authentication failed: tampered, truncated-and-continued,
 * reordered, replayed or forged frame, or wrong key), PULL_ERR_PROTOCOL (unknown tag),
 * PULL_ERR_STATE (bytes after the final frame). frame_dec_eof tells a clean end
 * (final frame seen) from a cut (PULL_ERR_TRUNCATED mid-frame, PULL_ERR_CLOSED between
 * frames without a goodbye).
 *
 * Sans-I/O: bytes in, bytes out; the header's randomness comes from the env. Preconditions:
 * sodium_init() succeeded.
 */
#ifndef PULL_FRAME_H
#define PULL_FRAME_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/env.h"
#include "proto/msg.h"
#include "proto/shs.h"

#define FRAME_KEY_BYTES 32
#define FRAME_HEADER_BYTES 24 /* crypto_secretstream_xchacha20poly1305_HEADERBYTES */
#define FRAME_LEN_BYTES 4
#define FRAME_ABYTES 17 /* crypto_secretstream_xchacha20poly1305_ABYTES */
#define FRAME_OVERHEAD (FRAME_LEN_BYTES + FRAME_ABYTES)
#define FRAME_PLAIN_MAX MSG_MAX
#define FRAME_CIPHER_MIN (1 + FRAME_ABYTES)
#define FRAME_CIPHER_MAX (FRAME_PLAIN_MAX + FRAME_ABYTES)
#define FRAME_REKEY_EVERY 4096 /* frames per direction between implicit rekeys */
#define FRAME_KDF_DOMAIN "pull/frame/v1"

/* frame_keys derives the two secretstream keys of a connection from a handshake session:
 *     tx = BLAKE2b-256(key = enc_key, message = "pull/frame/v1" || enc_nonce)
 *     rx = BLAKE2b-256(key = dec_key, message = "pull/frame/v1" || dec_nonce)
 * (the domain tag is the 13 ASCII bytes, no NUL). The peer's tx is our rx. Returns 0 or
 * PULL_ERR_CRYPTO. The caller wipes the keys after frame_enc_init/frame_dec_init. */
int frame_keys(const struct shs_session *sess, uint8_t tx[static FRAME_KEY_BYTES],
               uint8_t rx[static FRAME_KEY_BYTES]);

/* The sending half. Embed it; fields are private. No heap. */
struct frame_enc {
    crypto_secretstream_xchacha20poly1305_state st;
    uint64_t frames;
    bool final;
    bool ready;
};

/* frame_enc_init starts a sending stream with key and writes the 24-byte header to send
 * first. The header's random bytes come from env. Returns 0 or PULL_ERR_CRYPTO. */
int frame_enc_init(struct frame_enc *e, const struct pull_env *env,
                   const uint8_t key[static FRAME_KEY_BYTES],
                   uint8_t header[static FRAME_HEADER_BYTES]);

/* frame_seal encrypts msg[0..n) as one frame into out, which must have room for
 * n + FRAME_OVERHEAD bytes (out must not overlap msg). final marks the goodbye frame.
 * Returns 0, PULL_ERR_INVAL (n == 0), PULL_ERR_TOO_BIG (n > FRAME_PLAIN_MAX), PULL_ERR_STATE
 * (after the final frame or before init) or PULL_ERR_CRYPTO. */
int frame_seal(struct frame_enc *e, const uint8_t *msg, size_t n, bool final, uint8_t *out);

/* frame_write is frame_seal appending the frame to w (no intermediate copy). On failure w
 * is unchanged (or carries its own sticky error). */
int frame_write(struct frame_enc *e, const uint8_t *msg, size_t n, bool final, struct pull_wb *w);

/* frame_enc_release wipes the stream state. */
void frame_enc_release(struct frame_enc *e);

/* A decoded frame: p points into the decoder and stays valid until the next
 * frame_dec_feed or frame_dec_release on that decoder. */
struct frame_msg {
    const uint8_t *p;
    size_t len;
    bool final; /* the goodbye frame: nothing follows */
};

/* The receiving half. Embed it; fields are private. Owns two heap buffers (~128 KiB) from
 * its env's allocator. */
struct frame_dec {
    const struct pull_env *env; /* allocator of the buffers (NULL: the C library's) */
    crypto_secretstream_xchacha20poly1305_state st;
    uint8_t key[FRAME_KEY_BYTES]; /* kept only until the header has arrived */
    uint8_t phase;
    int err;
    uint64_t frames;
    size_t have;   /* bytes of the header, or of len||ciphertext, collected so far */
    size_t need;   /* 4 + ciphertext length once the length is known */
    uint8_t *cbuf; /* FRAME_LEN_BYTES + FRAME_CIPHER_MAX: a frame that arrives in pieces */
    uint8_t *pbuf; /* FRAME_PLAIN_MAX: the last decrypted plaintext */
};

enum frame_status {
    FRAME_AGAIN = 0, /* consumed all bytes given, no complete frame yet */
    FRAME_MSG = 1,   /* a frame is in *msg; bytes after *used are not consumed yet */
};

/* frame_dec_init prepares a receiving stream for key: it expects the peer's 24-byte header
 * first. Its buffers come from env's allocator (NULL: the C library's; env must outlive
 * the decoder). Returns 0 or PULL_ERR_NOMEM (d is then released). */
int frame_dec_init(struct frame_dec *d, const struct pull_env *env,
                   const uint8_t key[static FRAME_KEY_BYTES]);

/* frame_dec_feed consumes bytes received from the peer, any chunking, and stops after the
 * first complete frame: FRAME_MSG with the plaintext in *msg and *used bytes consumed (call
 * again with the rest), or FRAME_AGAIN with all n bytes consumed. A frame that arrives
 * whole in one chunk is decrypted straight from p; only a frame split across chunks is
 * buffered, after its length has passed the limits. Negative PULL_ERR_* codes (see the top
 * of this file) are fatal and sticky: close the connection. */
int frame_dec_feed(struct frame_dec *d, const uint8_t *p, size_t n, size_t *used,
                   struct frame_msg *msg);

/* frame_dec_eof is called when the peer closed its side. Returns 0 if the stream ended with
 * the final frame, PULL_ERR_TRUNCATED if a header or frame was cut, PULL_ERR_CLOSED if it
 * ended between frames without a goodbye, or the decoder's earlier error. */
int frame_dec_eof(const struct frame_dec *d);

/* frame_dec_release wipes the state and frees the buffers (safe on a zeroed struct). */
void frame_dec_release(struct frame_dec *d);

#endif
