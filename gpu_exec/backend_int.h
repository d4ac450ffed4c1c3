/* backend_int.h: what a backend implements (the ops table) and the structs behind the handles. */
#ifndef DDS_BACKEND_INT_H
#define DDS_BACKEND_INT_H

#include "dds_backend.h"

/* The operations of one backend, ggml-style: filled once with designated initialisers.
 * Entries marked optional may be NULL; backend.c checks them in one place, so a backend never
 * sees a NULL or out-of-range argument: plan_create gets a checked mask, plan_run a batch in
 * [1, max_batch] and non-NULL buffers. Every entry returns device errors as a status. */
struct dds_backend_iface {
	/* "cpu", "cuda". */
	const char *(*name)(const struct dds_backend *b);
	/* Optional (NULL = every op): can layer li of m run here? */
	bool (*supports_op)(const struct dds_backend *b, const struct dds_model *m, int li);
	/* Fill p->context for the plan described by p's public fields (mask: the layers to run;
	 * outputs: out_val, which may include inputs, to be copied through). On failure frees what it
	 * made, leaves p->context NULL and returns a status with err. */
	int (*plan_create)(struct dds_backend *b, struct dds_plan *p, struct dds_err *err);
	int (*plan_run)(struct dds_plan *p, const float *in, int batch, float *out,
			struct dds_err *err);
	/* Optional: free p->context. */
	void (*plan_free)(struct dds_plan *p);
	/* Optional: free b->context. */
	void (*free)(struct dds_backend *b);
};

struct dds_backend {
	struct dds_backend_iface iface;
	void *context; /* the backend's own state */
};

struct dds_plan {
	struct dds_backend *b;
	const struct dds_model *m; /* borrowed */
	uint8_t *mask;             /* m->n_layers bytes: 1 = tail layer (owned) */
	int max_batch;
	int n_in;
	int *in_val;      /* n_in input value ids, ascending (owned) */
	size_t *in_numel; /* floats per request of each input value (owned) */
	int n_out;
	int *out_val;      /* n_out output value ids, ascending (owned); tail: the model output */
	size_t *out_numel; /* floats per request of each output value (owned) */
	size_t in_floats, out_floats;
	void *context; /* the backend's own state */
};

/* Backend constructors: fill b->iface and b->context from o. Return a status with err. */
int dds_backend_cpu_init(struct dds_backend *b, const struct dds_backend_opts *o,
			 struct dds_err *err);
/* In builds without the CUDA backend (backend_cuda_none.c) this returns EUNSUPPORTED. */
int dds_backend_cuda_init(struct dds_backend *b, const struct dds_backend_opts *o,
			  struct dds_err *err);

/* printf into err (if non-NULL) and return status: the one error path of the module. */
int dds_backend_errf(struct dds_err *err, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
