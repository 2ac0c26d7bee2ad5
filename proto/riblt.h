/*
 * riblt: Rateless Invertible Bloom Lookup Tables over 32-byte ids (the coding layer of
 * proto/recon.h). Pure computation: no messages, no I/O, no clock.
 *
 * After Yang, Gilad, Alizadeh, "Practical Rateless Set Reconciliation" (SIGCOMM 2024).
 * A set S of ids defines an infinite sequence of coded symbols c_0, c_1, ...; each id x
 * is mapped to a sparse, increasing sequence of indices (always 0 first, then index i
 * with probability ~1/(1+i/2)), and
 *
 *     c_i = ( XOR of x, XOR of h(x), number of x )   over the ids x mapped to i.
 *
 * Symbols of two sets subtract (XOR, XOR, minus), so the first m symbols of A minus the
 * first m symbols of B are the first m symbols of the symmetric difference A ^ B, with
 * count +1 for ids only in A and -1 for ids only in B. A peeling decoder finds "pure"
 * symbols (count +-1 and h(sum) == hash), recovers their id, removes it from every symbol
 * it maps to, and repeats. m ~ 1.35 d symbols are enough for a difference of d ids when d
 * is large (more, relatively, when d is tiny). Nothing here depends on the set sizes.
 *
 * Everything in this header is part of the wire protocol (proto/PROTOCOL.md,
 * "Reconciliation messages"): the hash, the index sequence and the symbol encoding must
 * be bit-exact on every node. The index sequence uses only integer arithmetic (an exact
 * integer square root), so it is the same on every platform and compiler.
 *
 * Counts travel as their low 16 bits; the decoder works modulo 2^16 (a count that wraps
 * can never look pure because the hash check fails), so 16 bits are enough for any set.
 */
#ifndef PULL_RIBLT_H
#define PULL_RIBLT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/env.h"

#define RIBLT_ID_LEN 32
#define RIBLT_KEY_LEN 16
/* A coded symbol on the wire: sum (32) || hash (8, big-endian) || count (2, big-endian,
 * low 16 bits, two's complement). */
#define RIBLT_SYM_WIRE 42
/* Indices are < 2^31; a sequence that would go past ends there. */
#define RIBLT_IDX_LIMIT 0x80000000u
#define RIBLT_IDX_END UINT32_MAX

/* The estimator samples symbol indices E_0 < ... < E_68 (8 ... 2^20, four per octave) and
 * compares 4-bit fingerprints of both sides' symbols there: sample j is "equal" with
 * probability ~(1 - p(E_j))^d (plus 1/16 false matches), which estimates d. */
#define RIBLT_EST_N 69
#define RIBLT_EST_BYTES 35 /* RIBLT_EST_N nibbles, high nibble first, last nibble 0 */

/* The public key of the default (cacheable) hash; see riblt_hash. */
extern const uint8_t riblt_default_key[RIBLT_KEY_LEN];

/* riblt_hash returns SipHash-2-4 of the 32-byte id under a 16-byte key, its 8 output bytes
 * read as a little-endian integer. It is both the checksum in coded symbols and the seed
 * of the id's index sequence. */
uint64_t riblt_hash(const uint8_t key[RIBLT_KEY_LEN], const uint8_t id[RIBLT_ID_LEN]);

/* struct riblt_map walks one id's index sequence. Init puts idx at 0 (every id maps to
 * symbol 0); riblt_map_next advances to the next index and returns it, or RIBLT_IDX_END
 * (and stays there) once the sequence passes RIBLT_IDX_LIMIT. */
struct riblt_map {
    uint64_t state;
    uint32_t idx;
};

void riblt_map_init(struct riblt_map *m, uint64_t h);
uint32_t riblt_map_next(struct riblt_map *m);

/* riblt_isqrt returns floor(sqrt(n)) exactly. */
uint64_t riblt_isqrt(uint64_t n);

/* riblt_density returns the approximate probability that an id maps to index i,
 * 1/(1 + i/2) (used only for estimates, never for coding). */
double riblt_density(uint32_t i);

/* A coded symbol in memory. count is exact here; only its low 16 bits travel. */
struct riblt_sym {
    uint8_t sum[RIBLT_ID_LEN];
    uint64_t hash;
    int64_t count;
};

/* riblt_sym_apply adds (dir = +1) or removes (dir = -1) id x with hash h. */
void riblt_sym_apply(struct riblt_sym *s, const uint8_t x[RIBLT_ID_LEN], uint64_t h, int dir);

/* riblt_sym_encode writes the 42-byte wire form; riblt_sym_decode reads it (count is then
 * the unsigned 16-bit value). */
void riblt_sym_encode(const struct riblt_sym *s, uint8_t out[RIBLT_SYM_WIRE]);
void riblt_sym_decode(const uint8_t in[RIBLT_SYM_WIRE], struct riblt_sym *s);

/* riblt_sym_equal16 compares sum, hash and the low 16 bits of count. */
bool riblt_sym_equal16(const struct riblt_sym *a, const struct riblt_sym *b);

/*
 * struct riblt_acc accumulates symbols of a set, for any of: a dense range of indices
 * [lo, hi) into range[0 .. hi-lo), and the estimator samples E_j for j >= est_from into
 * est[j] (est has RIBLT_EST_N entries; est_from = RIBLT_EST_N to skip). Both pointers may
 * be NULL. riblt_acc_apply walks x's sequence only as far as needed: O(log max index).
 */
struct riblt_acc {
    struct riblt_sym *range;
    uint32_t lo, hi;
    struct riblt_sym *est;
    uint32_t est_from;
};

void riblt_acc_apply(const struct riblt_acc *a, const uint8_t x[RIBLT_ID_LEN], uint64_t h, int dir);

/* riblt_est_index returns E_j (0 <= j < RIBLT_EST_N). */
uint32_t riblt_est_index(unsigned j);

/* riblt_est_first returns the smallest j with E_j >= i (RIBLT_EST_N if none). */
unsigned riblt_est_first(uint32_t i);

/* riblt_est_pack writes the fingerprints of est[0 .. RIBLT_EST_N) (the top 4 bits of each
 * symbol's hash) into out. */
void riblt_est_pack(const struct riblt_sym est[RIBLT_EST_N], uint8_t out[RIBLT_EST_BYTES]);

/* riblt_est_nibble returns fingerprint j of a packed estimator. */
unsigned riblt_est_nibble(const uint8_t packed[RIBLT_EST_BYTES], unsigned j);

/* riblt_est_equal counts the samples whose fingerprints are equal in a and b. */
unsigned riblt_est_equal(const uint8_t a[RIBLT_EST_BYTES], const uint8_t b[RIBLT_EST_BYTES]);

/* riblt_estimate returns an estimate of the difference size d from the number of equal
 * samples (method of moments; at least 1, at most 2^22). */
uint32_t riblt_estimate(unsigned equal_samples);

/*
 * struct riblt_dec: the peeling decoder on the side that receives the peer's symbols.
 *
 * The owner first stores its OWN symbols for indices it is about to receive
 * (riblt_dec_set_local, any time before the peer's symbol of that index arrives), then
 * feeds the peer's symbols strictly in index order (riblt_dec_add_remote), then peels
 * (riblt_dec_peel; call after every batch). When riblt_dec_done is true, the ids only the
 * peer has ("remote": count +1) and only we have ("local": count -1) are complete.
 * All memory is bounded by max_symbols.
 */
struct riblt_dec;

/* riblt_dec_new returns a decoder for up to max_symbols symbols, or PULL_ERR_NOMEM.
 * key (copied) is the session's hash key. Its memory comes from env (NULL: the C
 * library's; env must outlive the decoder). After any PULL_ERR_NOMEM from the functions
 * below, the decoder may hold a half-applied symbol: free it (the session that owns it
 * fails). */
int riblt_dec_new(const struct pull_env *env, const uint8_t key[RIBLT_KEY_LEN],
                  uint32_t max_symbols, struct riblt_dec **out);

/* riblt_dec_free releases d (NULL is fine). */
void riblt_dec_free(struct riblt_dec *d);

/* riblt_dec_set_local stores our own symbol i (i >= riblt_dec_received, < max_symbols).
 * Returns 0, PULL_ERR_INVAL or PULL_ERR_NOMEM. */
int riblt_dec_set_local(struct riblt_dec *d, uint32_t i, const struct riblt_sym *own);

/* riblt_dec_add_remote takes the peer's next symbol in wire form (its index is
 * riblt_dec_received). Symbols with no local symbol set are taken against an empty set.
 * Returns 0, or PULL_ERR_QUOTA when max_symbols were already received. */
int riblt_dec_add_remote(struct riblt_dec *d, const uint8_t wire[RIBLT_SYM_WIRE]);

/* riblt_dec_peel peels every pure symbol it can. Returns 0, PULL_ERR_NOMEM, or
 * PULL_ERR_PROTOCOL if the symbols are inconsistent (more ids decoded than any honest
 * encoder could produce: the peer sent garbage). */
int riblt_dec_peel(struct riblt_dec *d);

/* riblt_dec_done: at least one symbol received and every received symbol is empty. */
bool riblt_dec_done(const struct riblt_dec *d);

uint32_t riblt_dec_received(const struct riblt_dec *d);

/* riblt_dec_nonzero returns how many received symbols are not (yet) empty. */
uint32_t riblt_dec_nonzero(const struct riblt_dec *d);

/* riblt_dec_estimate estimates the size of the whole difference from how many received
 * symbols were empty on arrival (before peeling), plus two standard errors: a size to
 * aim for when the symbols so far did not decode. Returns -1 without enough evidence
 * (fewer than 32 symbols, or none empty). */
double riblt_dec_estimate(const struct riblt_dec *d);

/* riblt_dec_stuck reports whether every non-empty received symbol is identical (same
 * sum, hash and count) while there are at least `min` of them: the remaining ids all share
 * their index sequence (a "stopping set", e.g. crafted hash collisions) and more symbols
 * will not help. */
bool riblt_dec_stuck(const struct riblt_dec *d, uint32_t min);

/* riblt_dec_result gives the decoded ids so far: remote (peer only) and local (ours only),
 * sorted, without duplicates (an id found on both sides cancels out). Pointers stay valid
 * until the next call on d. */
int riblt_dec_result(struct riblt_dec *d, const uint8_t (**remote)[RIBLT_ID_LEN], size_t *n_remote,
                     const uint8_t (**local)[RIBLT_ID_LEN], size_t *n_local);

/* riblt_dec_decoded returns how many ids were peeled so far (both sides). */
size_t riblt_dec_decoded(const struct riblt_dec *d);

#endif
