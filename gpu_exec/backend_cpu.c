/* backend_cpu.c: the CPU backend: a plan is a CPU engine run per request, or per batch on request. */
#include <stdlib.h>
#include <string.h>

#include "backend_int.h"
#include "dds_engine.h"

/* The backend's context: the engine options and whether to run whole batches at once. */
struct cpu_backend {
	struct dds_engine_opts eo;
	bool batched;
};

static const char *cpu_name(const struct dds_backend *b)
{
	(void)b;
	return "cpu";
}

/* The engine runs every op of the model format (it checked the layer at model load). */
static bool cpu_supports_op(const struct dds_backend *b, const struct dds_model *m, int li)
{
	(void)b;
	return (unsigned)m->layers[li].op < DDS_OP__COUNT;
}

/* One engine: sized for the whole batch when batched, else for one request. */
static int cpu_plan_create(struct dds_backend *b, struct dds_plan *p, struct dds_err *err)
{
	const struct cpu_backend *cb = b->context;
	struct dds_engine_opts eo = cb->eo;

	eo.max_batch = cb->batched ? p->max_batch : 1;
	p->context = dds_engine_create(p->m, &eo, err);
	return p->context ? DDS_BACKEND_OK : DDS_BACKEND_ENOMEM;
}

/* Run requests [first, first + n) of a batch of `batch` through the engine as one engine batch:
 * copy the row range of each input block in, run the plan's layers, copy the row range of each
 * output block out (an output that is also an input comes back as it went in). */
static int cpu_run_rows(struct dds_plan *p, const float *in, int batch, int first, int n,
			float *out, struct dds_err *err)
{
	struct dds_engine *e = p->context;

	for (int k = 0; k < p->n_in; k++) {
		size_t row = p->in_numel[k];
		memcpy(dds_engine_value(e, p->in_val[k]), in + row * (size_t)first,
		       row * (size_t)n * sizeof(float));
		in += row * (size_t)batch;
	}
	if (dds_engine_run(e, p->mask, n, err))
		return DDS_BACKEND_EDEVICE;
	for (int k = 0; k < p->n_out; k++) {
		size_t row = p->out_numel[k];
		memcpy(out + row * (size_t)first, dds_engine_value(e, p->out_val[k]),
		       row * (size_t)n * sizeof(float));
		out += row * (size_t)batch;
	}
	return DDS_BACKEND_OK;
}

static int cpu_plan_run(struct dds_plan *p, const float *in, int batch, float *out,
			struct dds_err *err)
{
	const struct cpu_backend *cb = p->b->context;
	int rc = DDS_BACKEND_OK;

	if (cb->batched)
		return cpu_run_rows(p, in, batch, 0, batch, out, err);
	for (int i = 0; i < batch && rc == DDS_BACKEND_OK; i++)
		rc = cpu_run_rows(p, in, batch, i, 1, out, err);
	return rc;
}

static void cpu_plan_free(struct dds_plan *p)
{
	dds_engine_free(p->context);
}

static void cpu_free(struct dds_backend *b)
{
	free(b->context);
}

int dds_backend_cpu_init(struct dds_backend *b, const struct dds_backend_opts *o,
			 struct dds_err *err)
{
	static const struct dds_backend_iface cpu_iface = {
		.name = cpu_name,
		.supports_op = cpu_supports_op,
		.plan_create = cpu_plan_create,
		.plan_run = cpu_plan_run,
		.plan_free = cpu_plan_free,
		.free = cpu_free,
	};
	struct cpu_backend *cb = calloc(1, sizeof(*cb));

	if (!cb)
		return dds_backend_errf(err, DDS_BACKEND_ENOMEM, "backend 'cpu': out of memory");
	cb->eo.threads = o->cpu_threads;
	cb->eo.kernels = o->cpu_reference ? DDS_KERNELS_REF : DDS_KERNELS_FAST;
	cb->batched = o->cpu_batched;
	b->iface = cpu_iface;
	b->context = cb;
	return DDS_BACKEND_OK;
}
