/*
 * Secret Handshake v1 (see shs.h and proto/PROTOCOL.md). Names follow the protocol guide:
 * a/b are the client/server ephemeral keys, A/B their long-term keys; ab, aB, Ab the three
 * X25519 shared secrets, each computed by both sides from one secret and one public key.
 */
#include "proto/shs.h"

#include <sodium.h>
#include <string.h>

#include "lib/err.h"

enum { ROLE_CLIENT = 1, ROLE_SERVER = 2 };

enum phase {
    PH_NONE = 0, /* wiped: after shs_session/shs_release, or never initialised */
    PH_C_WAIT2,  /* client: hello queued, waiting for the server hello */
    PH_C_WAIT4,  /* client: authenticate queued, waiting for the accept */
    PH_S_WAIT1,  /* server: waiting for the client hello */
    PH_S_WAIT3,  /* server: hello queued, waiting for the client authenticate */
    PH_DONE,     /* verified; session ready */
    PH_FAILED,   /* failed; everything but the reason wiped */
};

static const uint8_t zero_nonce[crypto_secretbox_NONCEBYTES];

/* Wipes every secret and remembers only the role and the reason. Returns the error that
 * every failing path hands back. */
static int
fail(struct shs *s, enum shs_fail reason)
{
    uint8_t role = s->role;

    sodium_memzero(s, sizeof(*s));
    s->role = role;
    s->phase = PH_FAILED;
    s->fail = (uint8_t)reason;
    return PULL_ERR_HANDSHAKE;
}

/* Wipes what only the handshake needed, keeping the session. */
static void
wipe_handshake(struct shs *s)
{
    sodium_memzero(s->eph_sk, sizeof(s->eph_sk));
    sodium_memzero(s->ab, sizeof(s->ab));
    sodium_memzero(s->aB, sizeof(s->aB));
    sodium_memzero(s->Ab, sizeof(s->Ab));
    sodium_memzero(s->ab_hash, sizeof(s->ab_hash));
    sodium_memzero(s->auth, sizeof(s->auth));
    sodium_memzero(s->in, sizeof(s->in));
    s->in_len = 0;
    s->id = NULL;
}

/* Common start: copy K, draw the ephemeral X25519 key pair from env. */
static int
init_common(struct shs *s, const struct pull_env *env, const uint8_t K[static 32],
            const struct ident *id, uint8_t role)
{
    memset(s, 0, sizeof(*s));
    s->role = role;
    s->id = id;
    memcpy(s->net, K, sizeof(s->net));
    env_random(env, s->eph_sk, sizeof(s->eph_sk));
    if (crypto_scalarmult_base(s->eph_pk, s->eph_sk) != 0)
        return fail(s, SHS_FAIL_LOCAL);
    return 0;
}

/* hello = hmac(K, eph_pk) || eph_pk */
static int
make_hello(struct shs *s)
{
    if (crypto_auth(s->out, s->eph_pk, sizeof(s->eph_pk), s->net) != 0)
        return fail(s, SHS_FAIL_LOCAL);
    memcpy(s->out + crypto_auth_BYTES, s->eph_pk, sizeof(s->eph_pk));
    s->out_len = SHS_MSG1_BYTES;
    return 0;
}

/* Checks a received hello (in[0..64)) and takes the peer's ephemeral key from it. */
static int
take_hello(struct shs *s)
{
    if (crypto_auth_verify(s->in, s->in + crypto_auth_BYTES, 32, s->net) != 0)
        return fail(s, SHS_FAIL_NETWORK);
    memcpy(s->peer_eph, s->in + crypto_auth_BYTES, 32);
    /* ab; crypto_scalarmult returns -1 when the result is all zero, i.e. the peer sent a
     * low-order point to force a known shared secret. */
    if (crypto_scalarmult(s->ab, s->eph_sk, s->peer_eph) != 0)
        return fail(s, SHS_FAIL_EPHEMERAL);
    crypto_hash_sha256(s->ab_hash, s->ab, sizeof(s->ab));
    return 0;
}

/* sha256(K || ab || aB [|| Ab]) : the box keys of messages 3 and 4. */
static void
box_key(const struct shs *s, bool with_Ab, uint8_t key[static 32])
{
    crypto_hash_sha256_state h;

    crypto_hash_sha256_init(&h);
    crypto_hash_sha256_update(&h, s->net, sizeof(s->net));
    crypto_hash_sha256_update(&h, s->ab, sizeof(s->ab));
    crypto_hash_sha256_update(&h, s->aB, sizeof(s->aB));
    if (with_Ab)
        crypto_hash_sha256_update(&h, s->Ab, sizeof(s->Ab));
    crypto_hash_sha256_final(&h, key);
    sodium_memzero(&h, sizeof(h));
}

/* The box-stream outcome (shs.h) from the message-4 box key. */
static int
derive_session(struct shs *s, const uint8_t key4[static 32], const uint8_t own_pk[static 32],
               const uint8_t peer_pk[static 32])
{
    uint8_t h[32], buf[64], mac[crypto_auth_BYTES];
    int rc = 0;

    crypto_hash_sha256(h, key4, 32);
    memcpy(buf, h, 32);
    memcpy(buf + 32, peer_pk, 32);
    crypto_hash_sha256(s->sess.enc_key, buf, sizeof(buf));
    memcpy(buf + 32, own_pk, 32);
    crypto_hash_sha256(s->sess.dec_key, buf, sizeof(buf));
    if (crypto_auth(mac, s->peer_eph, 32, s->net) != 0) {
        rc = -1;
        goto out;
    }
    memcpy(s->sess.enc_nonce, mac, SHS_NONCE_BYTES);
    if (crypto_auth(mac, s->eph_pk, 32, s->net) != 0) {
        rc = -1;
        goto out;
    }
    memcpy(s->sess.dec_nonce, mac, SHS_NONCE_BYTES);
    memcpy(s->sess.peer_pk, peer_pk, 32);
out:
    sodium_memzero(h, sizeof(h));
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

int
shs_client_init(struct shs *s, const struct pull_env *env,
                const uint8_t K[static SHS_NETWORK_KEY_BYTES], const struct ident *id,
                const uint8_t server_pk[static IDENT_PK_BYTES])
{
    uint8_t B_x[32];
    int rc;

    if ((rc = init_common(s, env, K, id, ROLE_CLIENT)) != 0)
        return PULL_ERR_CRYPTO;
    /* The server key must convert to X25519 (this refuses low-order and non-canonical
     * points); otherwise aB would be predictable. */
    if (crypto_sign_ed25519_pk_to_curve25519(B_x, server_pk) != 0) {
        fail(s, SHS_FAIL_LOCAL);
        return PULL_ERR_BAD_KEY;
    }
    memcpy(s->peer_lt, server_pk, sizeof(s->peer_lt));
    /* aB = a * curve(B): needs only our ephemeral secret, so compute it now. */
    if (crypto_scalarmult(s->aB, s->eph_sk, B_x) != 0) {
        fail(s, SHS_FAIL_LOCAL);
        return PULL_ERR_BAD_KEY;
    }
    if (make_hello(s) != 0)
        return PULL_ERR_CRYPTO;
    s->phase = PH_C_WAIT2;
    return 0;
}

int
shs_server_init(struct shs *s, const struct pull_env *env,
                const uint8_t K[static SHS_NETWORK_KEY_BYTES], const struct ident *id)
{
    if (init_common(s, env, K, id, ROLE_SERVER) != 0)
        return PULL_ERR_CRYPTO;
    s->phase = PH_S_WAIT1;
    return 0;
}

/* Server, message 1 received: check it, compute ab and aB, queue message 2. */
static int
server_on_hello(struct shs *s)
{
    uint8_t B_xsk[32];
    int rc;

    if ((rc = take_hello(s)) != 0)
        return rc;
    /* aB = curve(B_sk) * a */
    if (crypto_sign_ed25519_sk_to_curve25519(B_xsk, s->id->sk) != 0) {
        sodium_memzero(B_xsk, sizeof(B_xsk));
        return fail(s, SHS_FAIL_LOCAL);
    }
    rc = crypto_scalarmult(s->aB, B_xsk, s->peer_eph);
    sodium_memzero(B_xsk, sizeof(B_xsk));
    if (rc != 0)
        return fail(s, SHS_FAIL_EPHEMERAL);
    if ((rc = make_hello(s)) != 0)
        return rc;
    s->phase = PH_S_WAIT3;
    return 0;
}

/* Client, message 2 received: check it, sign, queue message 3. */
static int
client_on_hello(struct shs *s)
{
    uint8_t msg[32 + 32 + 32], key[32];
    int rc;

    if ((rc = take_hello(s)) != 0)
        return rc;
    /* sig_A = sign_A(K || B || sha256(ab)) */
    memcpy(msg, s->net, 32);
    memcpy(msg + 32, s->peer_lt, 32);
    memcpy(msg + 64, s->ab_hash, 32);
    rc = crypto_sign_detached(s->auth, NULL, msg, sizeof(msg), s->id->sk);
    sodium_memzero(msg, sizeof(msg));
    if (rc != 0)
        return fail(s, SHS_FAIL_LOCAL);
    memcpy(s->auth + 64, s->id->pk, 32);
    box_key(s, false, key);
    rc = crypto_secretbox_easy(s->out, s->auth, sizeof(s->auth), zero_nonce, key);
    sodium_memzero(key, sizeof(key));
    if (rc != 0)
        return fail(s, SHS_FAIL_LOCAL);
    s->out_len = SHS_MSG3_BYTES;
    s->phase = PH_C_WAIT4;
    return 0;
}

/* Server, message 3 received: open it, check the client's signature, learn A, compute Ab,
 * queue message 4, derive the session. */
static int
server_on_auth(struct shs *s)
{
    uint8_t key[32], msg[32 + 96 + 32], sig[64], A_x[32];
    int rc = 0;

    box_key(s, false, key);
    if (crypto_secretbox_open_easy(s->auth, s->in, SHS_MSG3_BYTES, zero_nonce, key) != 0) {
        rc = fail(s, SHS_FAIL_AUTH_BOX);
        goto out;
    }
    /* sig_A over K || B || sha256(ab), by the A inside the box */
    memcpy(msg, s->net, 32);
    memcpy(msg + 32, s->id->pk, 32);
    memcpy(msg + 64, s->ab_hash, 32);
    if (crypto_sign_verify_detached(s->auth, msg, 96, s->auth + 64) != 0 ||
        crypto_sign_ed25519_pk_to_curve25519(A_x, s->auth + 64) != 0) {
        rc = fail(s, SHS_FAIL_CLIENT_SIG);
        goto out;
    }
    memcpy(s->peer_lt, s->auth + 64, 32);
    /* Ab = b * curve(A) */
    if (crypto_scalarmult(s->Ab, s->eph_sk, A_x) != 0) {
        rc = fail(s, SHS_FAIL_CLIENT_SIG);
        goto out;
    }
    /* sig_B = sign_B(K || sig_A || A || sha256(ab)), boxed with sha256(K||ab||aB||Ab) */
    memcpy(msg, s->net, 32);
    memcpy(msg + 32, s->auth, 96);
    memcpy(msg + 128, s->ab_hash, 32);
    if (crypto_sign_detached(sig, NULL, msg, sizeof(msg), s->id->sk) != 0) {
        rc = fail(s, SHS_FAIL_LOCAL);
        goto out;
    }
    box_key(s, true, key);
    if (crypto_secretbox_easy(s->out, sig, sizeof(sig), zero_nonce, key) != 0 ||
        derive_session(s, key, s->id->pk, s->peer_lt) != 0) {
        rc = fail(s, SHS_FAIL_LOCAL);
        goto out;
    }
    s->out_len = SHS_MSG4_BYTES;
    s->phase = PH_DONE;
    wipe_handshake(s);
out:
    sodium_memzero(key, sizeof(key));
    sodium_memzero(msg, sizeof(msg));
    sodium_memzero(sig, sizeof(sig));
    return rc;
}

/* Client, message 4 received: compute Ab, open it, check the server's signature. */
static int
client_on_accept(struct shs *s)
{
    uint8_t A_xsk[32], key[32], msg[32 + 96 + 32], sig[64];
    int rc = 0;

    /* Ab = curve(A_sk) * b */
    if (crypto_sign_ed25519_sk_to_curve25519(A_xsk, s->id->sk) != 0) {
        rc = fail(s, SHS_FAIL_LOCAL);
        goto out;
    }
    if (crypto_scalarmult(s->Ab, A_xsk, s->peer_eph) != 0) {
        rc = fail(s, SHS_FAIL_EPHEMERAL);
        goto out;
    }
    box_key(s, true, key);
    if (crypto_secretbox_open_easy(sig, s->in, SHS_MSG4_BYTES, zero_nonce, key) != 0) {
        rc = fail(s, SHS_FAIL_ACCEPT);
        goto out;
    }
    memcpy(msg, s->net, 32);
    memcpy(msg + 32, s->auth, 96);
    memcpy(msg + 128, s->ab_hash, 32);
    if (crypto_sign_verify_detached(sig, msg, sizeof(msg), s->peer_lt) != 0) {
        rc = fail(s, SHS_FAIL_ACCEPT);
        goto out;
    }
    if (derive_session(s, key, s->id->pk, s->peer_lt) != 0) {
        rc = fail(s, SHS_FAIL_LOCAL);
        goto out;
    }
    s->phase = PH_DONE;
    wipe_handshake(s);
out:
    sodium_memzero(A_xsk, sizeof(A_xsk));
    sodium_memzero(key, sizeof(key));
    sodium_memzero(msg, sizeof(msg));
    sodium_memzero(sig, sizeof(sig));
    return rc;
}

/* How many bytes the message expected in the current phase has (0: expects none). */
static size_t
expected(const struct shs *s)
{
    switch (s->phase) {
    case PH_C_WAIT2:
        return SHS_MSG2_BYTES;
    case PH_C_WAIT4:
        return SHS_MSG4_BYTES;
    case PH_S_WAIT1:
        return SHS_MSG1_BYTES;
    case PH_S_WAIT3:
        return SHS_MSG3_BYTES;
    default:
        return 0;
    }
}

size_t
shs_next_out(struct shs *s, uint8_t buf[static SHS_OUT_MAX])
{
    size_t n = s->out_len;

    if (n == 0 || s->phase == PH_FAILED)
        return 0;
    memcpy(buf, s->out, n);
    sodium_memzero(s->out, sizeof(s->out));
    s->out_len = 0;
    return n;
}

int
shs_feed(struct shs *s, const uint8_t *p, size_t n, size_t *used)
{
    size_t want, take;
    int rc;

    *used = 0;
    if (s->phase == PH_FAILED)
        return PULL_ERR_HANDSHAKE;
    if ((want = expected(s)) == 0)
        return PULL_ERR_STATE;
    if (s->out_len != 0)
        return PULL_ERR_STATE; /* send what is pending first: the peer can't answer it yet */
    take = want - s->in_len;
    if (take > n)
        take = n;
    if (take > 0)
        memcpy(s->in + s->in_len, p, take);
    s->in_len += take;
    *used = take;
    if (s->in_len < want)
        return SHS_AGAIN;
    /* One whole message: handle it. Bytes after it stay with the caller: after SHS_DONE
     * they are the peer's first frame bytes; before, an honest peer can't have sent them
     * (it waits for our answer) and they are fed again after our answer is taken. */
    switch (s->phase) {
    case PH_C_WAIT2:
        rc = client_on_hello(s);
        break;
    case PH_C_WAIT4:
        rc = client_on_accept(s);
        break;
    case PH_S_WAIT1:
        rc = server_on_hello(s);
        break;
    default: /* PH_S_WAIT3 */
        rc = server_on_auth(s);
        break;
    }
    if (rc != 0)
        return rc;
    sodium_memzero(s->in, sizeof(s->in));
    s->in_len = 0;
    return s->phase == PH_DONE ? SHS_DONE : SHS_AGAIN;
}

bool
shs_done(const struct shs *s)
{
    return s->phase == PH_DONE;
}

int
shs_session(struct shs *s, struct shs_session *out)
{
    memset(out, 0, sizeof(*out));
    if (s->phase != PH_DONE || s->out_len != 0)
        return PULL_ERR_STATE;
    *out = s->sess;
    shs_release(s);
    return 0;
}

enum shs_fail
shs_fail_reason(const struct shs *s)
{
    return s->phase == PH_FAILED ? (enum shs_fail)s->fail : SHS_FAIL_NONE;
}

const char *
shs_fail_str(enum shs_fail reason)
{
    switch (reason) {
    case SHS_FAIL_NONE:
        return "no failure";
    case SHS_FAIL_NETWORK:
        return "hello not authenticated by our network key";
    case SHS_FAIL_EPHEMERAL:
        return "peer ephemeral key is low-order";
    case SHS_FAIL_AUTH_BOX:
        return "client authenticate did not open (wrong server key?)";
    case SHS_FAIL_CLIENT_SIG:
        return "client signature or key invalid";
    case SHS_FAIL_ACCEPT:
        return "server accept invalid (server is not who we dialled)";
    case SHS_FAIL_LOCAL:
        return "local key material unusable";
    }
    return "unknown";
}

void
shs_release(struct shs *s)
{
    sodium_memzero(s, sizeof(*s));
}

void
shs_session_wipe(struct shs_session *sess)
{
    sodium_memzero(sess, sizeof(*sess));
}
