#include "proto/mail.h"

#include <sodium.h>
#include <string.h>
#include <sys/types.h>

#include "lib/err.h"
#include "lib/mp.h"
#include "proto/msg.h"

#define MAIL_FIELDS 6
#define SIG_TAIL (2 + IDENT_SIG_BYTES) /* bin 8 header + signature: the last field */
#define MAIL_TIME_MAX (UINT64_C(1) << 40)

/* ---- sealing ---- */

/* crypto_box_seal with a caller-provided ephemeral seed: epk || box(m, nonce, rpk, esk),
 * nonce = BLAKE2b-192(epk || rpk), exactly libsodium's format. */
static int
seal_seeded(uint8_t *c, const uint8_t *m, size_t n, const uint8_t rpk[static 32],
            const uint8_t seed[static 32])
{
    uint8_t epk[crypto_box_PUBLICKEYBYTES], esk[crypto_box_SECRETKEYBYTES];
    uint8_t nonce[crypto_box_NONCEBYTES];
    crypto_generichash_state st;
    int rc = 0;

    if (crypto_box_seed_keypair(epk, esk, seed) != 0 ||
        crypto_generichash_init(&st, NULL, 0, sizeof(nonce)) != 0 ||
        crypto_generichash_update(&st, epk, sizeof(epk)) != 0 ||
        crypto_generichash_update(&st, rpk, 32) != 0 ||
        crypto_generichash_final(&st, nonce, sizeof(nonce)) != 0 ||
        crypto_box_easy(c + sizeof(epk), m, n, nonce, rpk, esk) != 0) {
        rc = PULL_ERR_CRYPTO;
        goto out;
    }
    memcpy(c, epk, sizeof(epk));
out:
    sodium_memzero(esk, sizeof(esk));
    sodium_memzero(&st, sizeof(st));
    return rc;
}

int
mail_seal(const struct pull_env *env, const struct ident *sender,
          const uint8_t recipient[static 32], const uint8_t *plain, size_t n, uint64_t expires,
          struct pull_wb *out, uint8_t id_out[MAIL_ID_BYTES])
{
    uint8_t xpk[crypto_box_PUBLICKEYBYTES], seed[32], sig[IDENT_SIG_BYTES];
    uint8_t *sealed = NULL;
    struct pull_wb body;
    msgpack_packer pk;
    size_t start = out->len, slen = n + MAIL_SEAL_OVERHEAD;
    int rc;

    wb_init_env(&body, env, MAIL_ITEM_MAX);
    if (id_out != NULL)
        memset(id_out, 0, MAIL_ID_BYTES);
    if (n == 0 || n > MAIL_PLAIN_MAX || plain == NULL || expires == 0 || expires > MAIL_TIME_MAX ||
        sodium_memcmp(sender->pk, recipient, 32) == 0) {
        rc = PULL_ERR_INVAL;
        goto out;
    }
    if (crypto_sign_ed25519_pk_to_curve25519(xpk, recipient) != 0) {
        rc = PULL_ERR_BAD_KEY;
        goto out;
    }
    if ((sealed = env_alloc(env, slen)) == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    env_random(env, seed, sizeof(seed));
    rc = seal_seeded(sealed, plain, n, xpk, seed);
    sodium_memzero(seed, sizeof(seed));
    if (rc != 0)
        goto out;
    mp_packer_init(&pk, &body);
    msgpack_pack_array(&pk, MAIL_FIELDS);
    msgpack_pack_uint64(&pk, MAIL_VERSION);
    mp_pack_bin(&pk, recipient, 32);
    mp_pack_bin(&pk, sender->pk, 32);
    msgpack_pack_uint64(&pk, expires);
    mp_pack_bin(&pk, sealed, slen);
    if ((rc = wb_error(&body)) != 0 ||
        (rc = ident_sign(sender, MAIL_DOMAIN, body.p, body.len, sig)) != 0)
        goto out;
    mp_pack_bin(&pk, sig, sizeof(sig));
    if ((rc = wb_error(&body)) != 0 || (rc = wb_put(out, body.p, body.len)) != 0)
        goto out;
    if (id_out != NULL &&
        crypto_generichash(id_out, MAIL_ID_BYTES, body.p, body.len, NULL, 0) != 0) {
        rc = PULL_ERR_CRYPTO;
        goto out;
    }
out:
    if (rc != 0) {
        if (out->len > start && wb_error(out) == 0)
            out->len = start;
        if (id_out != NULL)
            memset(id_out, 0, MAIL_ID_BYTES);
    }
    env_free(env, sealed);
    wb_release(&body);
    return rc;
}

int
mail_parse(const uint8_t *p, size_t n, struct mail_item *m)
{
    struct pull_rd r;
    const uint8_t *b;
    uint32_t blen;
    uint64_t v;
    int rc;

    memset(m, 0, sizeof(*m));
    if (n > MAIL_ITEM_MAX)
        return PULL_ERR_TOO_BIG;
    rd_init(&r, p, n);
    if ((rc = mp_read_array_n(&r, MAIL_FIELDS)) != 0 || (rc = mp_read_uint(&r, &v)) != 0)
        goto out;
    if (v != MAIL_VERSION) {
        rc = PULL_ERR_VERSION;
        goto out;
    }
    if ((rc = mp_read_bin_exact(&r, m->recipient, 32)) != 0 ||
        (rc = mp_read_bin_exact(&r, m->sender, 32)) != 0 ||
        (rc = mp_read_uint_max(&r, MAIL_TIME_MAX, &m->expires)) != 0 ||
        (rc = mp_read_bin(&r, MAIL_SEALED_MAX, &b, &blen)) != 0)
        goto out;
    if (blen <= MAIL_SEAL_OVERHEAD || sodium_memcmp(m->recipient, m->sender, 32) == 0) {
        rc = PULL_ERR_FIELD;
        goto out;
    }
    m->sealed = b;
    m->sealed_len = blen;
    m->signed_len = r.off;
    if ((rc = mp_read_bin(&r, IDENT_SIG_BYTES, &b, &blen)) != 0)
        goto out;
    if (blen != IDENT_SIG_BYTES) {
        rc = PULL_ERR_FIELD;
        goto out;
    }
    m->sig = b;
    if (rd_left(&r) != 0) {
        rc = PULL_ERR_TRAILING;
        goto out;
    }
    if (crypto_generichash(m->id, MAIL_ID_BYTES, p, n, NULL, 0) != 0) {
        rc = PULL_ERR_CRYPTO;
        goto out;
    }
    m->bytes = p;
    m->len = n;
out:
    if (rc != 0)
        memset(m, 0, sizeof(*m));
    return rc;
}

int
mail_verify(const struct mail_item *m, uint64_t now_s)
{
    if (m->bytes == NULL)
        return PULL_ERR_INVAL;
    if (m->expires <= now_s)
        return PULL_ERR_EXPIRED;
    if (m->expires - now_s > (uint64_t)MAIL_TTL_MAX + MAIL_SKEW_MAX)
        return PULL_ERR_EXPIRY;
    return ident_verify(m->sender, MAIL_DOMAIN, m->bytes, m->signed_len, m->sig);
}

int
mail_open(const struct mail_item *m, const struct ident *me, uint8_t *plain, size_t max, size_t *n)
{
    uint8_t xpk[crypto_box_PUBLICKEYBYTES], xsk[crypto_box_SECRETKEYBYTES];
    int rc = 0;

    *n = 0;
    if (m->bytes == NULL || m->sealed_len <= MAIL_SEAL_OVERHEAD)
        return PULL_ERR_INVAL;
    if (sodium_memcmp(m->recipient, me->pk, 32) != 0)
        return PULL_ERR_PERM;
    if (max < m->sealed_len - MAIL_SEAL_OVERHEAD)
        return PULL_ERR_TOO_BIG;
    if (crypto_sign_ed25519_pk_to_curve25519(xpk, me->pk) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(xsk, me->sk) != 0) {
        rc = PULL_ERR_BAD_KEY;
        goto out;
    }
    if (crypto_box_seal_open(plain, m->sealed, m->sealed_len, xpk, xsk) != 0) {
        rc = PULL_ERR_CRYPTO;
        goto out;
    }
    *n = m->sealed_len - MAIL_SEAL_OVERHEAD;
out:
    sodium_memzero(xsk, sizeof(xsk));
    return rc;
}

/* ---- wire messages ---- */

int
mail_msg_encode(const struct mail_ref *items, size_t n, struct pull_wb *out)
{
    msgpack_packer pk;
    size_t start = out->len, total = 1 + 1 + 5;
    int rc;

    if ((rc = wb_error(out)) != 0)
        return rc;
    if (n > UINT32_MAX)
        return PULL_ERR_TOO_BIG;
    for (size_t i = 0; i < n; i++) {
        if (items[i].len > MAIL_ITEM_MAX || items[i].len == 0)
            return PULL_ERR_INVAL;
        total += 3 + items[i].len; /* bounded: each term <= 8355, n counted below */
        if (total > MSG_MAX)
            return PULL_ERR_TOO_BIG;
    }
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint64(&pk, MSG_MAIL);
    msgpack_pack_array(&pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        mp_pack_bin(&pk, items[i].p, items[i].len);
    if ((rc = wb_error(out)) != 0)
        return rc;
    if (out->len - start > MSG_MAX) {
        out->len = start;
        return PULL_ERR_TOO_BIG;
    }
    return 0;
}

/* Reads the head of [type, ...]: the type must be `type` (PULL_ERR_PROTOCOL otherwise) and
 * the array must have at least `fields` elements (PULL_ERR_MALFORMED). *extra gets the
 * number of elements after those: fields a later version appended, skipped by
 * skip_extra (PROTOCOL.md section 6). */
static int
read_head(struct pull_rd *r, uint32_t fields, uint64_t type, uint32_t *extra)
{
    uint32_t n;
    uint64_t t;
    int rc;

    *extra = 0;
    if ((rc = mp_read_array(r, &n)) != 0)
        return rc;
    if (n < 1)
        return PULL_ERR_MALFORMED;
    if ((rc = mp_read_uint(r, &t)) != 0)
        return rc;
    if (t != type)
        return PULL_ERR_PROTOCOL;
    if (n < fields)
        return PULL_ERR_MALFORMED;
    *extra = n - fields;
    return 0;
}

/* Skips the extra fields, then requires the end of the input. */
static int
skip_extra(struct pull_rd *r, uint32_t extra)
{
    int rc;

    for (uint32_t i = 0; i < extra; i++) {
        if ((rc = mp_skip(r)) != 0)
            return rc;
    }
    return rd_left(r) == 0 ? 0 : PULL_ERR_TRAILING;
}

int
mail_msg_decode(const uint8_t *p, size_t n, struct mail_ref *items, size_t max, size_t *count)
{
    struct pull_rd r;
    uint32_t k, blen, extra;
    const uint8_t *b;
    int rc;

    *count = 0;
    if (n > MSG_MAX)
        return PULL_ERR_TOO_BIG;
    rd_init(&r, p, n);
    if ((rc = read_head(&r, 2, MSG_MAIL, &extra)) != 0 || (rc = mp_read_array(&r, &k)) != 0)
        return rc;
    if (k > max)
        return PULL_ERR_TOO_BIG;
    for (uint32_t i = 0; i < k; i++) {
        if ((rc = mp_read_bin(&r, MAIL_ITEM_MAX, &b, &blen)) != 0)
            goto out;
        if (blen == 0) {
            rc = PULL_ERR_FIELD;
            goto out;
        }
        items[i].p = b;
        items[i].len = blen;
    }
    if ((rc = skip_extra(&r, extra)) != 0)
        goto out;
    *count = k;
out:
    return rc;
}

int
mail_ihave_encode(const uint8_t (*have)[MAIL_ID_BYTES], size_t nhave,
                  const uint8_t (*want)[MAIL_ID_BYTES], size_t nwant, struct pull_wb *out)
{
    msgpack_packer pk;
    int rc;

    if ((rc = wb_error(out)) != 0)
        return rc;
    if (nhave > MAIL_IHAVE_MAX || nwant > MAIL_IHAVE_MAX)
        return PULL_ERR_TOO_BIG;
    mp_packer_init(&pk, out);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint64(&pk, MSG_MAIL_IHAVE);
    msgpack_pack_array(&pk, (uint32_t)nhave);
    for (size_t i = 0; i < nhave; i++)
        mp_pack_bin(&pk, have[i], MAIL_ID_BYTES);
    msgpack_pack_array(&pk, (uint32_t)nwant);
    for (size_t i = 0; i < nwant; i++)
        mp_pack_bin(&pk, want[i], MAIL_ID_BYTES);
    return wb_error(out);
}

static int
read_ids(struct pull_rd *r, uint8_t (*ids)[MAIL_ID_BYTES], size_t max, size_t *n)
{
    uint32_t k;
    int rc;

    *n = 0;
    if ((rc = mp_read_array(r, &k)) != 0)
        return rc;
    if (k > max || k > MAIL_IHAVE_MAX)
        return PULL_ERR_TOO_BIG;
    for (uint32_t i = 0; i < k; i++) {
        if ((rc = mp_read_bin_exact(r, ids[i], MAIL_ID_BYTES)) != 0)
            return rc;
    }
    *n = k;
    return 0;
}

int
mail_ihave_decode(const uint8_t *p, size_t n, uint8_t (*have)[MAIL_ID_BYTES], size_t maxhave,
                  size_t *nhave, uint8_t (*want)[MAIL_ID_BYTES], size_t maxwant, size_t *nwant)
{
    struct pull_rd r;
    uint32_t extra;
    int rc;

    *nhave = 0;
    *nwant = 0;
    if (n > MSG_MAX)
        return PULL_ERR_TOO_BIG;
    rd_init(&r, p, n);
    if ((rc = read_head(&r, 3, MSG_MAIL_IHAVE, &extra)) != 0 ||
        (rc = read_ids(&r, have, maxhave, nhave)) != 0 ||
        (rc = read_ids(&r, want, maxwant, nwant)) != 0)
        goto out;
    rc = skip_extra(&r, extra);
out:
    if (rc != 0) {
        *nhave = 0;
        *nwant = 0;
    }
    return rc;
}

/* ---- relay policy ---- */

void
mail_quota_default(struct mail_quota *q)
{
    q->sender_items = 64;
    q->sender_bytes = 256u * 1024u;
    q->total_items = 16384;
    q->total_bytes = 64u * 1024u * 1024u;
}

int
mail_admit(const struct mail_quota *q, const struct mail_usage *sender,
           const struct mail_usage *total, size_t item_len)
{
    /* Compare by subtraction so huge counts can't overflow. */
    if (sender->items >= q->sender_items || total->items >= q->total_items)
        return PULL_ERR_QUOTA;
    if (sender->bytes > q->sender_bytes || item_len > q->sender_bytes - sender->bytes)
        return PULL_ERR_QUOTA;
    if (total->bytes > q->total_bytes || item_len > q->total_bytes - total->bytes)
        return PULL_ERR_QUOTA;
    return 0;
}

struct mail_entry {
    uint8_t id[MAIL_ID_BYTES];
    uint8_t sender[32];
    uint8_t recipient[32];
    uint64_t expires;
    uint8_t *bytes;
    size_t len;
};

/* Entries in arrival order, and an open-addressing hash of their ids (slot -> entry index
 * + 1, 0 = empty; linear probing; at most half full). Ids are BLAKE2b outputs, so their
 * first bytes are already uniform. Removals rebuild the hash. */
struct mail_index {
    const struct pull_env *env;
    struct mail_quota q;
    struct mail_entry *e;
    size_t n, cap;
    size_t *slots;
    size_t nslots; /* a power of two, >= 2 * cap */
    struct mail_usage total;
};

static size_t
slot_of(const uint8_t id[static MAIL_ID_BYTES], size_t nslots)
{
    uint64_t h;

    memcpy(&h, id, sizeof(h));
    return (size_t)h & (nslots - 1);
}

static void
rehash(struct mail_index *ix)
{
    memset(ix->slots, 0, ix->nslots * sizeof(ix->slots[0]));
    for (size_t i = 0; i < ix->n; i++) {
        size_t s = slot_of(ix->e[i].id, ix->nslots);
        while (ix->slots[s] != 0)
            s = (s + 1) & (ix->nslots - 1);
        ix->slots[s] = i + 1;
    }
}

int
mail_index_new(const struct pull_env *env, const struct mail_quota *q, struct mail_index **out)
{
    struct mail_index *ix;

    *out = NULL;
    if ((ix = env_calloc(env, 1, sizeof(*ix))) == NULL)
        return PULL_ERR_NOMEM;
    ix->env = env;
    ix->q = *q;
    *out = ix;
    return 0;
}

void
mail_index_free(struct mail_index *ix)
{
    if (ix == NULL)
        return;
    for (size_t i = 0; i < ix->n; i++)
        env_free(ix->env, ix->e[i].bytes);
    env_free(ix->env, ix->e);
    env_free(ix->env, ix->slots);
    env_free(ix->env, ix);
}

static ssize_t
find(const struct mail_index *ix, const uint8_t id[static MAIL_ID_BYTES])
{
    if (ix->nslots == 0)
        return -1;
    for (size_t s = slot_of(id, ix->nslots); ix->slots[s] != 0; s = (s + 1) & (ix->nslots - 1)) {
        size_t i = ix->slots[s] - 1;
        if (memcmp(ix->e[i].id, id, MAIL_ID_BYTES) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* Makes room for one more entry (array and hash). */
static int
grow(struct mail_index *ix)
{
    size_t cap, nslots;
    struct mail_entry *ne;
    size_t *ns;

    if (ix->n < ix->cap)
        return 0;
    cap = ix->cap ? ix->cap * 2 : 16;
    nslots = 2 * cap;
    if ((ne = env_realloc(ix->env, ix->e, cap * sizeof(*ne))) == NULL)
        return PULL_ERR_NOMEM;
    ix->e = ne;
    if ((ns = env_calloc(ix->env, nslots, sizeof(*ns))) == NULL)
        return PULL_ERR_NOMEM;
    env_free(ix->env, ix->slots);
    ix->slots = ns;
    ix->nslots = nslots;
    ix->cap = cap;
    rehash(ix);
    return 0;
}

void
mail_index_usage(const struct mail_index *ix, const uint8_t *sender, struct mail_usage *u)
{
    if (sender == NULL) {
        *u = ix->total;
        return;
    }
    u->items = 0;
    u->bytes = 0;
    for (size_t i = 0; i < ix->n; i++) {
        if (memcmp(ix->e[i].sender, sender, 32) == 0) {
            u->items++;
            u->bytes += ix->e[i].len;
        }
    }
}

int
mail_index_add(struct mail_index *ix, const uint8_t *p, size_t n, uint64_t now_s,
               uint8_t id_out[MAIL_ID_BYTES])
{
    struct mail_item m;
    struct mail_usage su;
    struct mail_entry *e;
    uint8_t *copy = NULL;
    int rc;

    if (id_out != NULL)
        memset(id_out, 0, MAIL_ID_BYTES);
    if ((rc = mail_parse(p, n, &m)) != 0)
        return rc;
    if (id_out != NULL)
        memcpy(id_out, m.id, MAIL_ID_BYTES);
    if (find(ix, m.id) >= 0)
        return PULL_ERR_DUPLICATE;
    if ((rc = mail_verify(&m, now_s)) != 0)
        return rc;
    mail_index_usage(ix, m.sender, &su);
    if ((rc = mail_admit(&ix->q, &su, &ix->total, n)) != 0)
        return rc;
    if ((rc = grow(ix)) != 0)
        return rc;
    if ((copy = env_alloc(ix->env, n)) == NULL)
        return PULL_ERR_NOMEM;
    memcpy(copy, p, n);
    e = &ix->e[ix->n++];
    memcpy(e->id, m.id, MAIL_ID_BYTES);
    memcpy(e->sender, m.sender, 32);
    memcpy(e->recipient, m.recipient, 32);
    e->expires = m.expires;
    e->bytes = copy;
    e->len = n;
    ix->total.items++;
    ix->total.bytes += n;
    {
        size_t sl = slot_of(e->id, ix->nslots);
        while (ix->slots[sl] != 0)
            sl = (sl + 1) & (ix->nslots - 1);
        ix->slots[sl] = ix->n;
    }
    return 0;
}

bool
mail_index_has(const struct mail_index *ix, const uint8_t id[static MAIL_ID_BYTES])
{
    return find(ix, id) >= 0;
}

int
mail_index_get(const struct mail_index *ix, const uint8_t id[static MAIL_ID_BYTES],
               const uint8_t **p, size_t *n)
{
    ssize_t i = find(ix, id);

    if (i < 0)
        return PULL_ERR_NOT_FOUND;
    *p = ix->e[i].bytes;
    *n = ix->e[i].len;
    return 0;
}

/* Removes entry i, keeping arrival order. */
static void
drop(struct mail_index *ix, size_t i)
{
    ix->total.items--;
    ix->total.bytes -= ix->e[i].len;
    env_free(ix->env, ix->e[i].bytes);
    memmove(&ix->e[i], &ix->e[i + 1], (ix->n - i - 1) * sizeof(ix->e[0]));
    ix->n--;
    rehash(ix);
}

int
mail_index_remove(struct mail_index *ix, const uint8_t id[static MAIL_ID_BYTES])
{
    ssize_t i = find(ix, id);

    if (i < 0)
        return PULL_ERR_NOT_FOUND;
    drop(ix, (size_t)i);
    return 0;
}

size_t
mail_index_sweep(struct mail_index *ix, uint64_t now_s)
{
    size_t dropped = 0, w = 0;

    for (size_t i = 0; i < ix->n; i++) {
        if (ix->e[i].expires <= now_s) {
            ix->total.items--;
            ix->total.bytes -= ix->e[i].len;
            env_free(ix->env, ix->e[i].bytes);
            dropped++;
        } else {
            ix->e[w++] = ix->e[i];
        }
    }
    ix->n = w;
    if (dropped > 0)
        rehash(ix);
    return dropped;
}

size_t
mail_index_count(const struct mail_index *ix)
{
    return ix->n;
}

int
mail_index_at(const struct mail_index *ix, size_t i, const uint8_t **p, size_t *n,
              const uint8_t **id, const uint8_t **recipient)
{
    if (i >= ix->n)
        return PULL_ERR_NOT_FOUND;
    if (p != NULL)
        *p = ix->e[i].bytes;
    if (n != NULL)
        *n = ix->e[i].len;
    if (id != NULL)
        *id = ix->e[i].id;
    if (recipient != NULL)
        *recipient = ix->e[i].recipient;
    return 0;
}
