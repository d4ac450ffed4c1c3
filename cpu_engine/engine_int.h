/* engine_int.h: internals of the CPU engine shared by its files (not a public header). */
#ifndef DDS_ENGINE_INT_H
#define DDS_ENGINE_INT_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#include "dds_engine.h"

/* Everything one kernel call needs. Shapes were checked by the model loader (dds_layer_finish)
 * and the parameters by dds_engine_create, so kernels cannot fail. */
struct dds_kcall {
	const struct dds_engine *e;
	const struct dds_layer *l;
	int li;                   /* layer index */
	const float *const *in;   /* l->n_in input buffers, [batch, shape...] */
	const struct dds_shape *xs; /* per-sample shape of in[0] */
	float *out;               /* [batch, l->out_shape...] */
	int batch;
};

typedef void (*dds_kernel_fn)(const struct dds_kcall *k);

/* The engine's worker threads (pool.c). A job fn(arg, t, nt) runs once on each of the nt
 * team members t = 0..nt-1 (0 is the caller); dds_pool_run returns when all are done. */
typedef void (*dds_pool_fn)(void *arg, int t, int nt);
struct dds_pool;
/* A team of n (>= 2) threads, the caller included; NULL if threads cannot be started. */
struct dds_pool *dds_pool_create(int n);
void dds_pool_free(struct dds_pool *p);
/* Run fn on the team; a NULL pool runs fn(arg, 0, 1) in the caller. */
void dds_pool_run(struct dds_pool *p, dds_pool_fn fn, void *arg);

struct dds_engine {
	const struct dds_model *m; /* borrowed */
	struct dds_engine_opts o;  /* threads normalised to >= 1 */
	float **val;               /* m->n_layers + 1 buffers, [max_batch, shape...] */
	dds_kernel_fn *fn;         /* per layer: the kernel chosen at creation */
	float **fold_w, **fold_b;  /* per layer (fast conv2d only): engine-owned weights and bias
				    * with BN folded in; NULL elsewhere */
	struct dds_pool *pool;     /* fast kernels' threads; NULL for one thread or ref */
	float *work;               /* scratch shared by the kernels (im2col, attention) */
	size_t work_floats;
	const float **in;          /* scratch for one layer's input pointers */
};

/* The naive reference kernels, one per op (ref_kernels.c): the test oracle. */
extern const dds_kernel_fn dds_ref_ops[DDS_OP__COUNT];
/* The fast kernels (fast_kernels.c); NULL where the reference kernel is used as is. */
extern const dds_kernel_fn dds_fast_ops[DDS_OP__COUNT];

/* Floats of scratch one layer needs per sample (both kernel sets). */
size_t dds_kernel_work(const struct dds_model *m, const struct dds_layer *l);

/* True when a conv2d reads its input directly as the sgemm operand (1x1, stride 1, no pad). */
bool dds_conv_is_direct(const struct dds_layer *l);

/* Data of the layer's parameter `name`, or NULL if it has none. */
const float *dds_layer_param(const struct dds_layer *l, const char *name);

/* The fused activation, shared by both kernel sets. GELU is the exact erf form, as PyTorch's
 * default (float erff: within a few ulp, and much cheaper than double erf). */
static inline float dds_act_apply(enum dds_act a, float x)
{
	if (a == DDS_ACT_RELU)
		return x < 0 ? 0.0f : x;
	if (a == DDS_ACT_GELU)
		return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
	return x;
}

#endif
