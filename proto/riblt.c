#include "proto/riblt.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"

/* "pull/recon/v1" padded with zeros: public on purpose (see PROTOCOL.md on crafted ids). */
const uint8_t riblt_default_key[RIBLT_KEY_LEN] = {'p', 'u', 'l', 'l', '/', 'r', 'e', 'c',
                                                  'o', 'n', '/', 'v', '1', 0,   0,   0};

uint64_t
riblt_hash(const uint8_t key[RIBLT_KEY_LEN], const uint8_t id[RIBLT_ID_LEN])
{
    uint8_t out[crypto_shorthash_siphash24_BYTES];
    uint64_t v = 0;

    crypto_shorthash_siphash24(out, id, RIBLT_ID_LEN, key); /* cannot fail */
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | out[i];
    return v;
}

uint64_t
riblt_isqrt(uint64_t n)
{
    /* The double estimate is within a few units; the integer loops make it exact whatever
     * the platform's rounding. x <= 2^32 - 1 keeps x*x from overflowing. */
    uint64_t x = (uint64_t)sqrt((double)n);

    if (x > 0xffffffffu)
        x = 0xffffffffu;
    while (x * x > n)
        x--;
    while (x < 0xffffffffu && (x + 1) * (x + 1) <= n)
        x++;
    return x;
}

void
riblt_map_init(struct riblt_map *m, uint64_t h)
{
    m->state = h;
    m->idx = 0;
}

uint32_t
riblt_map_next(struct riblt_map *m)
{
    uint64_t z, t, a, b, c, prod, step, next;

    if (m->idx == RIBLT_IDX_END)
        return RIBLT_IDX_END;
    /* splitmix64 gives r, uniform in [0, 2^64). With u = r / 2^64 the gap to the next
     * index is ceil((idx + 1.5) * ((1 - u)^(-1/2) - 1)), which makes index i appear with
     * probability ~1/(1 + i/2). In integers: t ~ sqrt(1 - u) * 2^32, in [1, 2^32], and
     * gap = ceil((2 idx + 3) (2^32 - t) / (2 t)); idx < 2^31 keeps the product < 2^64. */
    m->state += 0x9e3779b97f4a7c15ull;
    z = m->state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    t = riblt_isqrt(~z) + 1;
    a = 2 * (uint64_t)m->idx + 3;
    b = ((uint64_t)1 << 32) - t;
    c = 2 * t;
    prod = a * b;
    step = prod / c + (prod % c != 0);
    if (step == 0)
        step = 1;
    next = (uint64_t)m->idx + step;
    m->idx = next >= RIBLT_IDX_LIMIT ? RIBLT_IDX_END : (uint32_t)next;
    return m->idx;
}

double
riblt_density(uint32_t i)
{
    return 1.0 / (1.0 + (double)i / 2.0);
}

void
riblt_sym_apply(struct riblt_sym *s, const uint8_t x[RIBLT_ID_LEN], uint64_t h, int dir)
{
    for (size_t k = 0; k < RIBLT_ID_LEN; k++)
        s->sum[k] ^= x[k];
    s->hash ^= h;
    s->count += dir;
}

void
riblt_sym_encode(const struct riblt_sym *s, uint8_t out[RIBLT_SYM_WIRE])
{
    memcpy(out, s->sum, RIBLT_ID_LEN);
    be64enc(out + 32, s->hash);
    be16enc(out + 40, (uint16_t)((uint64_t)s->count & 0xffffu));
}

void
riblt_sym_decode(const uint8_t in[RIBLT_SYM_WIRE], struct riblt_sym *s)
{
    memcpy(s->sum, in, RIBLT_ID_LEN);
    s->hash = be64dec(in + 32);
    s->count = be16dec(in + 40);
}

bool
riblt_sym_equal16(const struct riblt_sym *a, const struct riblt_sym *b)
{
    return memcmp(a->sum, b->sum, RIBLT_ID_LEN) == 0 && a->hash == b->hash &&
           (((uint64_t)a->count ^ (uint64_t)b->count) & 0xffffu) == 0;
}

/* E_j = c[j mod 4] * 2^(j div 4) / 2 with c ~ 16 * 2^(k/4): 8, 9, 11, 13, 16, ... 2^20. */
static inline uint32_t
est_index(unsigned j)
{
    static const uint32_t c[4] = {16, 19, 23, 27};
    return (c[j & 3] << (j >> 2)) >> 1;
}

uint32_t
riblt_est_index(unsigned j)
{
    return j < RIBLT_EST_N ? est_index(j) : RIBLT_IDX_END;
}

unsigned
riblt_est_first(uint32_t i)
{
    unsigned j = 0;

    while (j < RIBLT_EST_N && est_index(j) < i)
        j++;
    return j;
}

void
riblt_acc_apply(const struct riblt_acc *a, const uint8_t x[RIBLT_ID_LEN], uint64_t h, int dir)
{
    struct riblt_map m;
    uint32_t stop = 0, idx = 0, next_e = RIBLT_IDX_END;
    unsigned j = RIBLT_EST_N;

    if (a->range != NULL && a->hi > a->lo)
        stop = a->hi;
    if (a->est != NULL && a->est_from < RIBLT_EST_N) {
        j = a->est_from;
        next_e = est_index(j);
        if (est_index(RIBLT_EST_N - 1) + 1 > stop)
            stop = est_index(RIBLT_EST_N - 1) + 1;
    }
    riblt_map_init(&m, h);
    while (idx < stop) {
        if (idx >= a->lo && idx < a->hi && a->range != NULL)
            riblt_sym_apply(&a->range[idx - a->lo], x, h, dir);
        while (idx > next_e) {
            j++;
            next_e = j < RIBLT_EST_N ? est_index(j) : RIBLT_IDX_END;
        }
        if (idx == next_e)
            riblt_sym_apply(&a->est[j], x, h, dir);
        idx = riblt_map_next(&m);
    }
}

void
riblt_est_pack(const struct riblt_sym est[RIBLT_EST_N], uint8_t out[RIBLT_EST_BYTES])
{
    memset(out, 0, RIBLT_EST_BYTES);
    for (unsigned j = 0; j < RIBLT_EST_N; j++) {
        unsigned nib = (unsigned)(est[j].hash >> 60);
        out[j / 2] |= (uint8_t)((j & 1) ? nib : nib << 4);
    }
}

unsigned
riblt_est_nibble(const uint8_t packed[RIBLT_EST_BYTES], unsigned j)
{
    if (j >= RIBLT_EST_N)
        return 0;
    return (j & 1) ? packed[j / 2] & 0x0fu : packed[j / 2] >> 4;
}

unsigned
riblt_est_equal(const uint8_t a[RIBLT_EST_BYTES], const uint8_t b[RIBLT_EST_BYTES])
{
    unsigned n = 0;

    for (unsigned j = 0; j < RIBLT_EST_N; j++)
        n += riblt_est_nibble(a, j) == riblt_est_nibble(b, j);
    return n;
}

/* Expected number of equal samples when the difference has d ids. */
static double
est_expected(double d)
{
    double s = 0;

    for (unsigned j = 0; j < RIBLT_EST_N; j++) {
        double q = exp(d * log1p(-riblt_density(est_index(j))));
        s += q * (15.0 / 16.0) + 1.0 / 16.0;
    }
    return s;
}

uint32_t
riblt_estimate(unsigned equal_samples)
{
    uint32_t lo = 1, hi = 1u << 22;

    /* est_expected decreases with d: find the smallest d whose expectation is at most
     * what was observed. */
    if (est_expected(lo) <= equal_samples)
        return lo;
    if (est_expected(hi) > equal_samples)
        return hi;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (est_expected(mid) > equal_samples)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- decoder ---- */

struct dslot {
    uint8_t sum[RIBLT_ID_LEN];
    uint64_t hash;
    uint16_t count;   /* modulo 2^16 */
    uint8_t raw_zero; /* the difference had no id here before any peeling */
};

struct ditem {
    uint8_t id[RIBLT_ID_LEN];
    uint64_t h;
    struct riblt_map m;
    int sign; /* +1 remote (peer only), -1 local (ours only) */
};

struct hent {
    uint32_t idx;
    uint32_t item;
};

struct riblt_dec {
    const struct pull_env *env; /* allocator of everything below */
    uint8_t key[RIBLT_KEY_LEN];
    uint32_t max;
    struct dslot *slot;
    uint32_t cap;
    uint32_t received;
    uint32_t nonzero;
    struct ditem *items;
    size_t n_items, cap_items;
    struct hent *heap;
    size_t n_heap, cap_heap;
    uint32_t *pure;
    size_t n_pure, cap_pure;
    uint8_t (*res)[RIBLT_ID_LEN];
    size_t n_rem, n_loc;
};

/* Returns p grown to hold at least `want` elements of size sz (updating *cap), or NULL if
 * that fails (p is then unchanged and still owned by the caller). */
static void *
grow(const struct pull_env *env, void *p, size_t *cap, size_t want, size_t sz)
{
    size_t n = *cap ? *cap : 16;
    void *q;

    if (want <= *cap)
        return p;
    while (n < want)
        n *= 2;
    if (n > SIZE_MAX / sz || (q = env_realloc(env, p, n * sz)) == NULL)
        return NULL;
    *cap = n;
    return q;
}

int
riblt_dec_new(const struct pull_env *env, const uint8_t key[RIBLT_KEY_LEN], uint32_t max_symbols,
              struct riblt_dec **out)
{
    struct riblt_dec *d;

    *out = NULL;
    d = env_calloc(env, 1, sizeof(*d));
    if (d == NULL)
        return PULL_ERR_NOMEM;
    d->env = env;
    memcpy(d->key, key, RIBLT_KEY_LEN);
    d->max = max_symbols;
    *out = d;
    return 0;
}

void
riblt_dec_free(struct riblt_dec *d)
{
    if (d == NULL)
        return;
    env_free(d->env, d->slot);
    env_free(d->env, d->items);
    env_free(d->env, d->heap);
    env_free(d->env, d->pure);
    env_free(d->env, d->res);
    env_free(d->env, d);
}

static int
slot_reserve(struct riblt_dec *d, uint32_t n)
{
    size_t cap = d->cap;
    uint32_t old = d->cap;
    struct dslot *p;

    if (n <= d->cap)
        return 0;
    if (n > d->max)
        return PULL_ERR_INVAL;
    if ((p = grow(d->env, d->slot, &cap, n, sizeof(struct dslot))) == NULL)
        return PULL_ERR_NOMEM;
    d->slot = p;
    if (cap > d->max)
        cap = d->max; /* never more than max; realloc'd block is at least this big */
    d->cap = (uint32_t)cap;
    memset(d->slot + old, 0, (size_t)(d->cap - old) * sizeof(struct dslot));
    return 0;
}

int
riblt_dec_set_local(struct riblt_dec *d, uint32_t i, const struct riblt_sym *own)
{
    struct dslot *s;
    int rc;

    if (i < d->received || i >= d->max)
        return PULL_ERR_INVAL;
    if ((rc = slot_reserve(d, i + 1)) != 0)
        return rc;
    s = &d->slot[i];
    memcpy(s->sum, own->sum, RIBLT_ID_LEN);
    s->hash = own->hash;
    s->count = (uint16_t)((uint64_t)own->count & 0xffffu);
    return 0;
}

static bool
slot_zero(const struct dslot *s)
{
    static const uint8_t zero[RIBLT_ID_LEN];

    return s->count == 0 && s->hash == 0 && memcmp(s->sum, zero, RIBLT_ID_LEN) == 0;
}

static int
pure_push(struct riblt_dec *d, uint32_t i)
{
    uint32_t *p = grow(d->env, d->pure, &d->cap_pure, d->n_pure + 1, sizeof(uint32_t));

    if (p == NULL)
        return PULL_ERR_NOMEM;
    d->pure = p;
    d->pure[d->n_pure++] = i;
    return 0;
}

/* Removes item it (with its sign) from received slot i. */
static int
slot_remove(struct riblt_dec *d, uint32_t i, const struct ditem *it)
{
    struct dslot *s = &d->slot[i];
    bool was_zero = slot_zero(s);

    for (size_t k = 0; k < RIBLT_ID_LEN; k++)
        s->sum[k] ^= it->id[k];
    s->hash ^= it->h;
    s->count = (uint16_t)(s->count - (uint16_t)it->sign);
    if (slot_zero(s)) {
        if (!was_zero)
            d->nonzero--;
    } else {
        if (was_zero)
            d->nonzero++;
        if (s->count == 1 || s->count == 0xffffu)
            return pure_push(d, i);
    }
    return 0;
}

static void
heap_up(struct hent *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        struct hent t;
        if (h[p].idx <= h[i].idx)
            break;
        t = h[p], h[p] = h[i], h[i] = t;
        i = p;
    }
}

static void
heap_down(struct hent *h, size_t n, size_t i)
{
    for (;;) {
        size_t c = 2 * i + 1;
        struct hent t;
        if (c >= n)
            break;
        if (c + 1 < n && h[c + 1].idx < h[c].idx)
            c++;
        if (h[i].idx <= h[c].idx)
            break;
        t = h[c], h[c] = h[i], h[i] = t;
        i = c;
    }
}

static int
heap_push(struct riblt_dec *d, uint32_t idx, uint32_t item)
{
    struct hent *p;

    if (idx == RIBLT_IDX_END)
        return 0;
    if ((p = grow(d->env, d->heap, &d->cap_heap, d->n_heap + 1, sizeof(struct hent))) == NULL)
        return PULL_ERR_NOMEM;
    d->heap = p;
    d->heap[d->n_heap].idx = idx;
    d->heap[d->n_heap].item = item;
    heap_up(d->heap, d->n_heap);
    d->n_heap++;
    return 0;
}

int
riblt_dec_add_remote(struct riblt_dec *d, const uint8_t wire[RIBLT_SYM_WIRE])
{
    uint32_t i = d->received;
    struct riblt_sym r;
    struct dslot *s;
    int rc;

    if (i >= d->max)
        return PULL_ERR_QUOTA;
    if ((rc = slot_reserve(d, i + 1)) != 0)
        return rc;
    riblt_sym_decode(wire, &r);
    s = &d->slot[i];
    for (size_t k = 0; k < RIBLT_ID_LEN; k++)
        s->sum[k] ^= r.sum[k];
    s->hash ^= r.hash;
    s->count = (uint16_t)((uint16_t)r.count - s->count);
    s->raw_zero = slot_zero(s);
    if (!s->raw_zero)
        d->nonzero++;
    d->received = i + 1;
    /* Ids decoded earlier that map to i come off now, in index order. */
    while (d->n_heap > 0 && d->heap[0].idx == i) {
        struct ditem *it = &d->items[d->heap[0].item];
        if ((rc = slot_remove(d, i, it)) != 0)
            return rc;
        d->heap[0].idx = riblt_map_next(&it->m);
        if (d->heap[0].idx == RIBLT_IDX_END)
            d->heap[0] = d->heap[--d->n_heap];
        heap_down(d->heap, d->n_heap, 0);
    }
    if (s->count == 1 || s->count == 0xffffu)
        return pure_push(d, i);
    return 0;
}

int
riblt_dec_peel(struct riblt_dec *d)
{
    int rc;

    while (d->n_pure > 0) {
        uint32_t i = d->pure[--d->n_pure], idx;
        struct dslot *s = &d->slot[i];
        struct ditem *it;

        if (!(s->count == 1 || s->count == 0xffffu) || riblt_hash(d->key, s->sum) != s->hash)
            continue;
        /* An honest difference of d ids decodes from >= d symbols; far more ids than
         * symbols means the peer's symbols are garbage. */
        if (d->n_items >= (size_t)d->received + 16)
            return PULL_ERR_PROTOCOL;
        if ((it = grow(d->env, d->items, &d->cap_items, d->n_items + 1, sizeof(struct ditem))) ==
            NULL)
            return PULL_ERR_NOMEM;
        d->items = it;
        it = &d->items[d->n_items];
        memcpy(it->id, s->sum, RIBLT_ID_LEN);
        it->h = s->hash;
        it->sign = s->count == 1 ? 1 : -1;
        riblt_map_init(&it->m, it->h);
        idx = 0;
        while (idx < d->received) {
            if ((rc = slot_remove(d, idx, it)) != 0)
                return rc;
            idx = riblt_map_next(&it->m);
        }
        if ((rc = heap_push(d, idx, (uint32_t)d->n_items)) != 0)
            return rc;
        d->n_items++;
    }
    return 0;
}

bool
riblt_dec_done(const struct riblt_dec *d)
{
    return d->received > 0 && d->nonzero == 0;
}

uint32_t
riblt_dec_received(const struct riblt_dec *d)
{
    return d->received;
}

uint32_t
riblt_dec_nonzero(const struct riblt_dec *d)
{
    return d->nonzero;
}

size_t
riblt_dec_decoded(const struct riblt_dec *d)
{
    return d->n_items;
}

double
riblt_dec_estimate(const struct riblt_dec *d)
{
    uint32_t m = d->received, lo = m / 8, stride = 1;
    double zeros = 0, a = 0, b = 1 << 24, v = 0, g = 0, est;

    /* Slot i of the raw difference is empty with probability ~exp(-d p(i)): solve
     * sum exp(-d p(i)) = observed zeros over (a sample of) the slots [m/8, m) for d. The
     * lowest slots are left out: they are almost never empty and only add noise. */
    if (m < 32)
        return -1;
    if (m - lo > 4096)
        stride = (m - lo) / 4096;
    for (uint32_t i = lo; i < m; i += stride)
        zeros += d->slot[i].raw_zero;
    if (zeros < 1)
        return -1;
    for (int it = 0; it < 40; it++) {
        double mid = (a + b) / 2, s = 0;
        for (uint32_t i = lo; i < m; i += stride)
            s += exp(-mid * riblt_density(i));
        if (s > zeros)
            a = mid;
        else
            b = mid;
    }
    est = (a + b) / 2;
    /* Add two standard errors (delta method) so the answer is rarely too small. */
    for (uint32_t i = lo; i < m; i += stride) {
        double p = riblt_density(i), q = exp(-est * p);
        v += q * (1 - q);
        g += p * q;
    }
    if (g > 0)
        est += 2 * sqrt(v) / g;
    return est;
}

bool
riblt_dec_stuck(const struct riblt_dec *d, uint32_t min)
{
    const struct dslot *first = NULL;

    if (d->nonzero < min || d->nonzero == 0)
        return false;
    for (uint32_t i = 0; i < d->received; i++) {
        const struct dslot *s = &d->slot[i];
        if (slot_zero(s))
            continue;
        if (first == NULL) {
            first = s;
            continue;
        }
        if (s->count != first->count || s->hash != first->hash ||
            memcmp(s->sum, first->sum, RIBLT_ID_LEN) != 0)
            return false;
    }
    return true;
}

struct signed_id {
    uint8_t id[RIBLT_ID_LEN];
    int sign;
};

static int
cmp_signed(const void *a, const void *b)
{
    return memcmp(((const struct signed_id *)a)->id, ((const struct signed_id *)b)->id,
                  RIBLT_ID_LEN);
}

int
riblt_dec_result(struct riblt_dec *d, const uint8_t (**remote)[RIBLT_ID_LEN], size_t *n_remote,
                 const uint8_t (**local)[RIBLT_ID_LEN], size_t *n_local)
{
    struct signed_id *v = NULL;
    uint8_t(*res)[RIBLT_ID_LEN] = NULL;
    size_t n = d->n_items, nr = 0, nl = 0, i, k;
    int rc = 0;

    *remote = *local = NULL;
    *n_remote = *n_local = 0;
    if (n == 0)
        goto done;
    v = env_calloc(d->env, n, sizeof(*v));
    res = env_calloc(d->env, n, RIBLT_ID_LEN);
    if (v == NULL || res == NULL) {
        rc = PULL_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        memcpy(v[i].id, d->items[i].id, RIBLT_ID_LEN);
        v[i].sign = d->items[i].sign;
    }
    qsort(v, n, sizeof(*v), cmp_signed);
    /* Remote ids fill res from the front, local ids from the back (reversed below). */
    for (i = 0; i < n; i = k) {
        int sum = 0;
        for (k = i; k < n && memcmp(v[k].id, v[i].id, RIBLT_ID_LEN) == 0; k++)
            sum += v[k].sign;
        if (sum > 0)
            memcpy(res[nr++], v[i].id, RIBLT_ID_LEN);
        else if (sum < 0)
            memcpy(res[n - 1 - nl++], v[i].id, RIBLT_ID_LEN);
    }
    for (i = 0; i < nl / 2; i++) {
        uint8_t t[RIBLT_ID_LEN];
        memcpy(t, res[n - 1 - i], RIBLT_ID_LEN);
        memcpy(res[n - 1 - i], res[n - nl + i], RIBLT_ID_LEN);
        memcpy(res[n - nl + i], t, RIBLT_ID_LEN);
    }
    env_free(d->env, d->res);
    d->res = res;
    res = NULL; /* transferred */
    d->n_rem = nr;
    d->n_loc = nl;
done:
    *remote = (const uint8_t(*)[RIBLT_ID_LEN])d->res;
    *n_remote = d->n_rem = (n == 0 ? 0 : d->n_rem);
    *local = d->res ? (const uint8_t(*)[RIBLT_ID_LEN])(d->res + n - d->n_loc) : NULL;
    *n_local = d->n_loc = (n == 0 ? 0 : d->n_loc);
out:
    env_free(d->env, v);
    env_free(d->env, res);
    return rc;
}
