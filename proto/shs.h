/*
 * shs: the Secret Handshake (SHS v1), as a sans-I/O state machine.
 *
 * This is the handshake of the Scuttlebutt protocol guide ("Handshake"), byte for byte, so
 * any independent SHS v1 implementation interoperates (checked against the shs1-test suite
 * in tests/shs1/). Four messages of fixed size, nothing else, no framing:
 *
 *   1. client hello         64 B  hmac(K, a) || a                  (a: client ephemeral pk)
 *   2. server hello         64 B  hmac(K, b) || b                  (b: server ephemeral pk)
 *   3. client authenticate 112 B  secretbox_{sha256(K||ab||aB)}(sig_A || A), zero nonce
 *   4. server accept        80 B  secretbox_{sha256(K||ab||aB||Ab)}(sig_B), zero nonce
 *
 * with K the 32-byte network key, hmac = HMAC-SHA-512-256 (crypto_auth), sig_A =
 * Ed25519_A(K || B || sha256(ab)), sig_B = Ed25519_B(K || sig_A || A || sha256(ab)), and
 * ab, aB, Ab the X25519 shared secrets (A, B: long-term Ed25519 keys, converted to X25519
 * for the key exchange). proto/PROTOCOL.md spells out every byte.
 *
 * Both peers learn each other's long-term key and share the box-stream keys of the guide
 * (struct shs_session); proto/frame.h derives the secretstream keys from them.
 *
 * Driving it. The caller owns a struct shs (embed it; its fields are private) and the I/O:
 *
 *     shs_client_init(&s, env, K, &me, server_pk)    or    shs_server_init(&s, env, K, &me)
 *     for (;;) {
 *         while ((n = shs_next_out(&s, buf)) > 0) send buf[0..n) to the peer;
 *         if (shs_done(&s)) break;
 *         rc = shs_feed(&s, bytes, len, &used);   (bytes: unconsumed input, else read more)
 *         if (rc < 0) close the connection: a failure is silent, there is nothing to send;
 *         drop bytes[0..used);
 *     }
 *     shs_session(&s, &sess);   the remaining input belongs to the frame layer (frame.h)
 *
 * Silence on failure. A server that receives a client hello with the wrong network key (or
 * any other bad message) queues nothing: the peer learns nothing, not even that a pull node
 * listens there. Every failure is final (later calls return the same error) and wipes the
 * secrets at once; shs_fail_reason() tells the log why.
 *
 * Time. The state machine has no clock. A handshake that doesn't finish is the daemon's
 * business: it must close connections whose handshake is not done within its handshake
 * timeout (PROTOCOL.md recommends 10 s), since each costs a socket and this struct.
 *
 * Secrets. The struct holds the ephemeral secret key and the shared secrets while the
 * handshake runs, and the session keys once done. shs_session() copies the result out and
 * wipes the struct; shs_release() wipes it in any state. Call one of them always.
 *
 * Preconditions: sodium_init() succeeded. The ident passed in must stay valid and unchanged
 * until the handshake is done or failed (the struct keeps a pointer to it).
 */
#ifndef PULL_SHS_H
#define PULL_SHS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/env.h"
#include "lib/ident.h"

#define SHS_NETWORK_KEY_BYTES 32
#define SHS_MSG1_BYTES 64  /* client hello */
#define SHS_MSG2_BYTES 64  /* server hello */
#define SHS_MSG3_BYTES 112 /* client authenticate */
#define SHS_MSG4_BYTES 80  /* server accept */
#define SHS_OUT_MAX 112    /* the largest message shs_next_out can produce */
#define SHS_KEY_BYTES 32
#define SHS_NONCE_BYTES 24

/* The network key of the public pull network: BLAKE2b-256 (unkeyed, 32-byte output) of the
 * 22 ASCII bytes "pull public network v1". A private network picks its own secret K. */
/* clang-format off */
#define PULL_NETWORK_KEY_PUBLIC_HEX                                                           \
    "c8802d1f81c4f64059dd005c3befb552d778421564a899a7fd7ebb974a1b4409"
#define PULL_NETWORK_KEY_PUBLIC                                                               \
    {0xc8, 0x80, 0x2d, 0x1f, 0x81, 0xc4, 0xf6, 0x40, 0x59, 0xdd, 0x00, 0x5c, 0x3b, 0xef, 0xb5, \
     0x52, 0xd7, 0x78, 0x42, 0x15, 0x64, 0xa8, 0x99, 0xa7, 0xfd, 0x7e, 0xbb, 0x97, 0x4a, 0x1b, \
     0x44, 0x09}
/* clang-format on */

/* shs_feed results besides negative errors. */
enum shs_status {
    SHS_AGAIN = 0, /* consumed everything given; need more bytes (or send pending output) */
    SHS_DONE = 1,  /* handshake verified; the session is ready */
};

/* Why a handshake failed, for logs only (never sent to the peer). */
enum shs_fail {
    SHS_FAIL_NONE = 0,
    SHS_FAIL_NETWORK,    /* hello HMAC wrong: other network key (or garbage) */
    SHS_FAIL_EPHEMERAL,  /* peer ephemeral key is low-order (shared secret all zero) */
    SHS_FAIL_AUTH_BOX,   /* client authenticate didn't open: wrong server key or tampered */
    SHS_FAIL_CLIENT_SIG, /* client authenticate: bad signature or client key */
    SHS_FAIL_ACCEPT,     /* server accept didn't open or its signature is wrong */
    SHS_FAIL_LOCAL,      /* our own key material is unusable or libsodium failed */
};

/* What a completed handshake yields, exactly the box-stream outcome of the guide:
 *   enc_key   = sha256(sha256(sha256(K || ab || aB || Ab)) || remote long-term pk)
 *   enc_nonce = first 24 bytes of hmac(K, remote ephemeral pk)
 *   dec_key   = sha256(sha256(sha256(K || ab || aB || Ab)) || own long-term pk)
 *   dec_nonce = first 24 bytes of hmac(K, own ephemeral pk)
 * so one side's enc_* equals the other side's dec_*. Wipe it (shs_session_wipe) when the
 * secretstream keys have been derived from it. */
struct shs_session {
    uint8_t peer_pk[IDENT_PK_BYTES]; /* the peer's long-term Ed25519 public key */
    uint8_t enc_key[SHS_KEY_BYTES];
    uint8_t enc_nonce[SHS_NONCE_BYTES];
    uint8_t dec_key[SHS_KEY_BYTES];
    uint8_t dec_nonce[SHS_NONCE_BYTES];
};

/* Handshake state. Embed it; treat every field as private. */
struct shs {
    uint8_t role; /* 1 client, 2 server */
    uint8_t phase;
    uint8_t fail;
    uint8_t out_len; /* pending output bytes in out[] */
    const struct ident *id;
    uint8_t net[SHS_NETWORK_KEY_BYTES];
    uint8_t peer_lt[IDENT_PK_BYTES]; /* server: learned in msg3; client: given */
    uint8_t eph_sk[32], eph_pk[32];  /* our ephemeral X25519 keys */
    uint8_t peer_eph[32];            /* their ephemeral X25519 public key */
    uint8_t ab[32], aB[32], Ab[32];  /* shared secrets */
    uint8_t ab_hash[32];             /* sha256(ab) */
    uint8_t auth[96];                /* sig_A || A: msg3 plaintext */
    uint8_t in[SHS_MSG3_BYTES];      /* the incoming message being collected */
    size_t in_len;
    uint8_t out[SHS_OUT_MAX];
    struct shs_session sess;
};

/* shs_client_init starts the client side: draws the ephemeral key from env, queues the
 * client hello. K is the network key, id our long-term identity, server_pk the long-term
 * key of the node we dial (we fail unless the server proves it holds its secret key).
 * Returns 0, or PULL_ERR_BAD_KEY if server_pk is not a usable Ed25519 key, PULL_ERR_CRYPTO
 * if libsodium fails. On error s is wiped and unusable. */
int shs_client_init(struct shs *s, const struct pull_env *env,
                    const uint8_t K[static SHS_NETWORK_KEY_BYTES], const struct ident *id,
                    const uint8_t server_pk[static IDENT_PK_BYTES]);

/* shs_server_init starts the server side for an accepted connection: draws the ephemeral
 * key from env and waits for the client hello. Same returns as shs_client_init. */
int shs_server_init(struct shs *s, const struct pull_env *env,
                    const uint8_t K[static SHS_NETWORK_KEY_BYTES], const struct ident *id);

/* shs_next_out moves the next pending handshake message (if any) into buf and returns its
 * length (64, 112 or 80), or 0 when nothing is pending (always 0 after a failure). Send
 * those bytes before anything else; call it after init and after each shs_feed. */
size_t shs_next_out(struct shs *s, uint8_t buf[static SHS_OUT_MAX]);

/* shs_feed gives the state machine n bytes received from the peer. It consumes at most the
 * rest of the one handshake message it expects and reports how many bytes in *used; the
 * caller keeps the others (after SHS_DONE they are the peer's first post-handshake bytes;
 * before it, feed them again once shs_next_out has been drained). Returns SHS_AGAIN (need
 * more bytes, or an answer is now pending in shs_next_out), SHS_DONE, or
 * PULL_ERR_HANDSHAKE (final; reason: shs_fail_reason). While output is pending, or after
 * SHS_DONE, it consumes nothing and returns PULL_ERR_STATE (not fatal). */
int shs_feed(struct shs *s, const uint8_t *p, size_t n, size_t *used);

/* shs_done reports whether the handshake has completed successfully. */
bool shs_done(const struct shs *s);

/* shs_session copies the result of a completed handshake into out and wipes s. Returns 0,
 * or PULL_ERR_STATE if the handshake isn't done (out is then zeroed). The server must
 * still have taken the accept message with shs_next_out; it fails with PULL_ERR_STATE if
 * that is pending. */
int shs_session(struct shs *s, struct shs_session *out);

/* shs_fail_reason returns the reason of the failure (SHS_FAIL_NONE if none). */
enum shs_fail shs_fail_reason(const struct shs *s);

/* shs_fail_str returns a short lower-case text for a reason, for logs. */
const char *shs_fail_str(enum shs_fail reason);

/* shs_release wipes s (any state). */
void shs_release(struct shs *s);

/* shs_session_wipe zeroes a session. */
void shs_session_wipe(struct shs_session *sess);

#endif
