/* The record generator shared by `pull-bench gen` and `pull-bench ingest` (bench_gen.c). */
#ifndef PULL_BENCH_GEN_H
#define PULL_BENCH_GEN_H

#include <stddef.h>
#include <stdint.h>

/* gen_emit_fn receives each signed envelope (valid during the call); nonzero stops. */
typedef int (*gen_emit_fn)(void *ctx, const uint8_t *env, size_t len);

/* gen_records signs n realistic records (offers and needs, titles, bodies, tags, some
 * locations) from max(1, n / 50) authors, at most 200 records per author, created in the
 * 20 days before now_s and expiring 30 days after creation. Deterministic for a seed.
 * Returns 0, the emitter's nonzero value, or a PULL_ERR_* code. */
int gen_records(size_t n, uint64_t now_s, uint64_t seed, gen_emit_fn emit, void *ctx);

#endif
