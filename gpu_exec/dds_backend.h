/* dds_backend.h: run a model's tail (or any chosen layers) for a batch of requests on one execution backend (CPU or CUDA).
 *
 * A backend is chosen once by name: "cpu" (the CPU engine), "cuda" (cuDNN + cuBLAS), or "auto"
 * (CUDA when dds_gpu_probe() finds a usable GPU and the build has the CUDA backend, else the CPU
 * backend, saying why in exactly one log line). For every (model, split, batch-size bucket) the
 * node prepares a plan once: what the backend needs to run that tail for up to `max_batch`
 * requests (CPU: an engine with its buffers; CUDA: algorithm choices, workspaces, resident
 * weights, pinned staging). Running a plan is then a copy in, the tail layers, a copy out.
 *
 * Data layout of dds_plan_run (float32, row-major, per-sample shapes as in the model):
 *   in  = the plan's input values in ascending value id, each one a block [batch, numel(value)]:
 *         block k starts at in + batch * (numel of the input values before k);
 *   out = [batch, numel(model output)]: row i is request i's result. A plan made by
 *         dds_plan_create_values() outputs its chosen values instead, laid out as the inputs:
 *         blocks [batch, numel(value)] in ascending value id.
 * Request i of a batch is row i of every block, so the caller scatters each request's tensors
 * (which arrive as one concatenation per request) into the blocks.
 *
 * Ownership: a backend borrows nothing; a plan borrows its model (which must outlive the plan)
 * and belongs to the backend it was made on (free every plan before its backend). A plan runs
 * one batch at a time: one thread (the worker lcore) per plan.
 *
 * Failure: functions that can fail return DDS_BACKEND_OK (0) or a negative enum dds_backend_status
 * and fill `err` (may be NULL) with one line naming the model and layer; device errors become
 * DDS_BACKEND_EDEVICE, never an abort. On failure outputs are unchanged or unspecified as said.
 */
#ifndef DDS_BACKEND_H
#define DDS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dds_model.h"

enum dds_backend_status {
	DDS_BACKEND_OK = 0,
	DDS_BACKEND_EINVAL = -1,      /* bad argument: unknown name, bad mask, batch out of range */
	DDS_BACKEND_ENOMEM = -2,      /* host or device memory exhausted */
	DDS_BACKEND_EUNSUPPORTED = -3, /* backend not in this build, or a tail layer it cannot run */
	DDS_BACKEND_EDEVICE = -4,     /* the device or its library failed (CUDA/cuDNN/cuBLAS error) */
};

/* Name of a status ("einval"), "unknown" for others. Never NULL. */
const char *dds_backend_status_name(int status);

/* Where the backend's few log lines go: one at creation; CUDA: one per batch bucket whose CUDA
 * graph capture failed (it then runs eagerly), at its first run. */
typedef void (*dds_backend_log_fn)(void *arg, const char *line);

struct dds_backend_opts {
	const char *name;       /* "cpu", "cuda" or "auto"; NULL means "auto" */
	int cpu_threads;        /* CPU backend: kernel threads (0 = 1) */
	bool cpu_reference;     /* CPU backend: the naive reference kernels instead of the fast path */
	/* CPU backend: false (default): each request of a batch runs alone, so its result is bit
	 * for bit the one it gets in any batch (the fast path's sgemm over the rows of a batch
	 * rounds differently with the batch size: seen on linear layers at batch 4, 5, 8 with
	 * OpenBLAS 0.3.21). Convolutions run per sample anyway, so this costs only the weight
	 * reuse of linear layers. true: the whole batch in one engine run (faster on linear-heavy
	 * tails; results then depend on the batch in the last bits). */
	bool cpu_batched;
	int gpu_index;          /* CUDA backend: which device (0 = first) */
	dds_backend_log_fn log; /* NULL = one line on stderr */
	void *log_arg;
};

struct dds_backend;
struct dds_plan;

/* Create a backend. "auto" never fails for want of a GPU: it falls back to "cpu" and logs why.
 * Returns NULL with err (and a status in *status if non-NULL) on failure: unknown name,
 * "cuda" requested but unusable, out of memory. */
struct dds_backend *dds_backend_create(const struct dds_backend_opts *o, int *status,
				       struct dds_err *err);

/* Free a backend whose plans are all freed. NULL is a no-op. */
void dds_backend_free(struct dds_backend *b);

/* "cpu" or "cuda". */
const char *dds_backend_name(const struct dds_backend *b);

/* Can this backend run layer `li` of model m? (Separate from running it, as in ggml.) */
bool dds_backend_supports_layer(const struct dds_backend *b, const struct dds_model *m, int li);

/* dds_model_tail_mask() (model/dds_model.h: the layers the node runs for a split) with this
 * module's status: DDS_BACKEND_OK, or DDS_BACKEND_EINVAL with err (mask unspecified). */
int dds_plan_tail_mask(const struct dds_model *m, const int *values, int n_values, uint8_t *mask,
		       struct dds_err *err);

/* Prepare the plan of a tail (mask: one byte per layer, non-zero = run on the server) for up to
 * max_batch requests. The tail must contain the output layer and its complement must be a valid
 * head (closed under predecessors). Every tail layer must be supported (EUNSUPPORTED names the
 * first that is not). Returns the plan, or NULL with *status and err. */
struct dds_plan *dds_plan_create(struct dds_backend *b, const struct dds_model *m,
				 const uint8_t *tail_mask, int max_batch, int *status,
				 struct dds_err *err);

/* A plan that runs the layers of run_mask (one byte per layer, non-zero = run) and outputs the
 * n_out values out_values (ids 0..n_layers, any order, no duplicates; n_out >= 1) instead of
 * the model output: a bridge between two tails (docs/scheduler.md, "Merging splits"). Its
 * inputs are the values a run layer reads that no run layer computes, plus every output value
 * that no run layer computes (copied through unchanged), in ascending value id. No closure is
 * required of run_mask: the caller supplies every input. Errors as dds_plan_create (EINVAL names
 * the bad output value). */
struct dds_plan *dds_plan_create_values(struct dds_backend *b, const struct dds_model *m,
					const uint8_t *run_mask, const int *out_values, int n_out,
					int max_batch, int *status, struct dds_err *err);

/* Free a plan. NULL is a no-op. */
void dds_plan_free(struct dds_plan *p);

/* The plan's inputs: how many values, and the id of the k-th (ascending). */
int dds_plan_n_inputs(const struct dds_plan *p);
int dds_plan_input_value(const struct dds_plan *p, int k);
/* The plan's outputs: how many values, and the id of the k-th (ascending); a tail plan has one,
 * the model output. */
int dds_plan_n_outputs(const struct dds_plan *p);
int dds_plan_output_value(const struct dds_plan *p, int k);
/* Floats per request: all inputs together, and all outputs together. */
size_t dds_plan_input_floats(const struct dds_plan *p);
size_t dds_plan_output_floats(const struct dds_plan *p);
int dds_plan_max_batch(const struct dds_plan *p);

/* Lay out `batch` requests as dds_plan_run() reads them: req[i] points to request i's input
 * values concatenated in the plan's input order (dds_plan_input_value order: the payload of a
 * request that sent exactly the plan's inputs, ascending); `in` receives batch *
 * dds_plan_input_floats(p) floats. Returns DDS_BACKEND_OK or EINVAL (NULL, batch range). */
int dds_plan_pack(const struct dds_plan *p, const float *const *req, int batch, float *in);

/* The same from one pointer per (request, input value): src[i * dds_plan_n_inputs(p) + k]
 * points to request i's k-th input value (numel of that value floats), wherever it lies (a
 * request's payload, another plan's output block). Returns DDS_BACKEND_OK or EINVAL. */
int dds_plan_pack_values(const struct dds_plan *p, const float *const *src, int batch, float *in);

/* Run the tail for `batch` requests (1..max_batch); layouts of in and out at the top of this
 * file. Blocks until the result is in `out`. On failure `out` is unspecified. */
int dds_plan_run(struct dds_plan *p, const float *in, int batch, float *out, struct dds_err *err);

#endif
