/* dds_engine.h: the CPU engine: runs a model graph, or a head or tail of it, for a batch.
 *
 * The engine owns one float32 buffer per value (raw input and each layer's output) sized for
 * `max_batch`. To run a head, set the raw input and run with the head mask; to run the matching
 * tail, set the values that cross the cut and run with the complementary mask. Both use the same
 * kernels, so head-then-tail equals the whole graph bit for bit.
 *
 * Two kernel sets: the naive reference kernels (the test oracle) and the fast path (im2col +
 * OpenBLAS sgemm for conv, linear and attention; BN folded into engine-owned copies of the conv
 * weights at creation; the model's parameters are never written), chosen per engine.
 *
 * Accuracy: elementwise |fast - ref| <= 1e-4 * max(1, |ref|) per op (tests/engine checks it on
 * every op; seen: under 2e-6).
 *
 * Threads: a fast engine with `threads` > 1 starts threads - 1 workers at creation; they split
 * each sgemm by output columns, each calling OpenBLAS with one thread (so a run sets
 * openblas_set_num_threads(1), process-wide), and wait blocked between jobs (no spinning).
 * The reference kernels use the calling thread only.
 *
 * Determinism: no atomics, no dynamic scheduling: the same engine options and batch give the
 * same bits, so a head run then the matching tail run equals a whole run bit for bit. Not
 * promised by the fast path: equal bits for different `threads` values (OpenBLAS's result
 * depends on the block it gets), nor sample i of a batch equal to that sample run alone
 * (linear multiplies the whole batch at once; conv2d and attention go sample by sample).
 * The reference kernels promise both.
 *
 * Memory: create() allocates everything (values, folded weights, workspace); run() allocates
 * nothing. One engine must not be run by two threads at once; distinct engines may.
 */
#ifndef DDS_ENGINE_H
#define DDS_ENGINE_H

#include "dds_model.h"

enum dds_kernels { DDS_KERNELS_FAST, DDS_KERNELS_REF };

struct dds_engine_opts {
	int max_batch;           /* largest batch run() accepts; >= 1 */
	int threads;             /* worker threads for the fast kernels; 0 = 1 */
	enum dds_kernels kernels;
};

struct dds_engine;

/* Create an engine for a loaded model (borrowed: must outlive the engine; its parameters may
 * change only for the reference kernels, the fast ones read the conv weights once, here).
 * Value buffers start zeroed. Returns NULL with err on failure (bad opts, a layer missing a
 * parameter, out of memory); nothing is left allocated then. */
struct dds_engine *dds_engine_create(const struct dds_model *m, const struct dds_engine_opts *o,
				     struct dds_err *err);
void dds_engine_free(struct dds_engine *e);

/* The buffer of a value, [max_batch, shape...] row-major; write inputs here, read outputs.
 * NULL if `value` is not in 0..n_layers. Owned by the engine. */
float *dds_engine_value(struct dds_engine *e, int value);

/* Run the layers whose mask byte is non-zero (mask NULL = all), in topological order, for
 * `batch` samples. Every input a run layer reads must have been set (raw input, or a value
 * produced by an earlier run). Returns 0, or -1 with err (batch out of range, ...). */
int dds_engine_run(struct dds_engine *e, const uint8_t *mask, int batch, struct dds_err *err);

#endif
