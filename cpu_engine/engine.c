/* engine.c: the executor: value buffers, the per-layer kernel choice, BN folding, runs. */
#include <cblas.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

static int engine_errf(struct dds_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int engine_errf(struct dds_err *err, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -1;
}

const float *dds_layer_param(const struct dds_layer *l, const char *name)
{
	for (int i = 0; i < l->n_params; i++)
		if (strcmp(l->params[i].name, name) == 0)
			return l->params[i].data;
	return NULL;
}

size_t dds_kernel_work(const struct dds_model *m, const struct dds_layer *l)
{
	const struct dds_shape *x = dds_model_value_shape(m, l->in[0]);

	if (l->op == DDS_OP_CONV2D && !dds_conv_is_direct(l))
		return (size_t)x->d[0] / l->groups * l->kernel[0] * l->kernel[1] *
		       l->out_shape.d[1] * l->out_shape.d[2];
	if (l->op == DDS_OP_MHA) {
		size_t t = (size_t)x->d[0], e = (size_t)x->d[1];
		return t * 3 * e + t * e + t * t * (size_t)l->heads;
	}
	return 0;
}

/* Parameters each op's kernels read, besides the optional ones of conv2d and linear. */
static const char *const op_params[DDS_OP__COUNT] = {
	[DDS_OP_CONV2D] = "weight",
	[DDS_OP_LINEAR] = "weight",
	[DDS_OP_BATCHNORM] = "weight bias mean var",
	[DDS_OP_LAYERNORM] = "weight bias",
	[DDS_OP_MHA] = "in_proj_weight in_proj_bias out_proj_weight out_proj_bias",
	[DDS_OP_CLS_TOKEN] = "token",
	[DDS_OP_POS_EMBED] = "weight",
};

/* Check what the kernels rely on beyond the loader's shape checks: a known op, inputs that
 * come earlier, the parameters present. */
static int check_layer(const struct dds_model *m, int li, struct dds_err *err)
{
	const struct dds_layer *l = &m->layers[li];
	char names[128], *save = NULL;

	if ((unsigned)l->op >= DDS_OP__COUNT)
		return engine_errf(err, "%s: layer '%s': unknown op %d", m->name, l->name, l->op);
	if (l->n_in < 1)
		return engine_errf(err, "%s: layer '%s': no inputs", m->name, l->name);
	for (int k = 0; k < l->n_in; k++)
		if (l->in[k] < 0 || l->in[k] > li)
			return engine_errf(err, "%s: layer '%s': input %d is not an earlier value",
					   m->name, l->name, l->in[k]);
	bool has_bias = (l->op == DDS_OP_CONV2D || l->op == DDS_OP_LINEAR) && l->bias;
	snprintf(names, sizeof(names), "%s%s%s", op_params[l->op] ? op_params[l->op] : "",
		 has_bias ? " bias" : "",
		 l->op == DDS_OP_CONV2D && l->bn ? " bn_weight bn_bias bn_mean bn_var" : "");
	for (char *p = strtok_r(names, " ", &save); p; p = strtok_r(NULL, " ", &save))
		if (!dds_layer_param(l, p))
			return engine_errf(err, "%s: layer '%s': parameter '%s' is missing", m->name,
					   l->name, p);
	return 0;
}

/* Fold bias and BN of conv layer li into engine-owned copies:
 * w' = w * s, b' = (b - mean) * s + bn_bias with s = bn_weight / sqrt(var + eps). */
static int fold_conv(struct dds_engine *e, int li)
{
	const struct dds_layer *l = &e->m->layers[li];
	const float *w = dds_layer_param(l, "weight"), *b = dds_layer_param(l, "bias");
	const float *bw = dds_layer_param(l, "bn_weight"), *bb = dds_layer_param(l, "bn_bias");
	const float *bm = dds_layer_param(l, "bn_mean"), *bv = dds_layer_param(l, "bn_var");
	int oc = l->out_channels;
	size_t per = (size_t)dds_model_value_shape(e->m, l->in[0])->d[0] / l->groups *
		     l->kernel[0] * l->kernel[1]; /* weights per output channel */

	e->fold_w[li] = malloc(per * oc * sizeof(float));
	e->fold_b[li] = malloc((size_t)oc * sizeof(float));
	if (!e->fold_w[li] || !e->fold_b[li])
		return -1;
	for (int o = 0; o < oc; o++) {
		double s = l->bn ? bw[o] / sqrt((double)bv[o] + l->eps) : 1.0;
		double bias = b ? b[o] : 0.0;
		for (size_t i = 0; i < per; i++)
			e->fold_w[li][o * per + i] = (float)(w[o * per + i] * s);
		e->fold_b[li][o] = (float)(l->bn ? (bias - bm[o]) * s + bb[o] : bias);
	}
	return 0;
}

/* Allocate the value buffers, the per-layer tables and the workspace. Returns 0 or -1 (out
 * of memory; the caller frees the half-built engine). */
static int engine_alloc(struct dds_engine *e)
{
	const struct dds_model *m = e->m;
	int n = m->n_layers, max_in = 1;

	e->val = calloc((size_t)n + 1, sizeof(*e->val));
	e->fn = calloc((size_t)n + 1, sizeof(*e->fn));
	e->fold_w = calloc((size_t)n + 1, sizeof(*e->fold_w));
	e->fold_b = calloc((size_t)n + 1, sizeof(*e->fold_b));
	if (!e->val || !e->fn || !e->fold_w || !e->fold_b)
		return -1;
	for (int v = 0; v <= n; v++) {
		e->val[v] = calloc(dds_shape_numel(dds_model_value_shape(m, v)) *
					   (size_t)e->o.max_batch,
				   sizeof(float));
		if (!e->val[v])
			return -1;
	}
	for (int li = 0; li < n; li++) {
		size_t w = dds_kernel_work(m, &m->layers[li]);
		e->work_floats = w > e->work_floats ? w : e->work_floats;
		max_in = m->layers[li].n_in > max_in ? m->layers[li].n_in : max_in;
	}
	e->work = calloc(e->work_floats ? e->work_floats : 1, sizeof(float));
	e->in = calloc((size_t)max_in, sizeof(*e->in));
	return e->work && e->in ? 0 : -1;
}

struct dds_engine *dds_engine_create(const struct dds_model *m, const struct dds_engine_opts *o,
				     struct dds_err *err)
{
	if (!m || !o) {
		engine_errf(err, "engine: no model or no options");
		return NULL;
	}
	if (o->max_batch < 1 || o->threads < 0 ||
	    (o->kernels != DDS_KERNELS_FAST && o->kernels != DDS_KERNELS_REF)) {
		engine_errf(err, "%s: engine: bad options (max_batch %d must be >= 1, threads %d "
				 ">= 0, kernels %d FAST or REF)",
			    m->name, o->max_batch, o->threads, (int)o->kernels);
		return NULL;
	}
	for (int li = 0; li < m->n_layers; li++)
		if (check_layer(m, li, err))
			return NULL;
	struct dds_engine *e = calloc(1, sizeof(*e));
	if (!e)
		goto oom;
	e->m = m;
	e->o = *o;
	e->o.threads = o->threads ? o->threads : 1;
	if (engine_alloc(e))
		goto oom;
	if (o->kernels == DDS_KERNELS_FAST && e->o.threads > 1 &&
	    !(e->pool = dds_pool_create(e->o.threads))) {
		engine_errf(err, "%s: engine: cannot start %d threads", m->name, e->o.threads);
		dds_engine_free(e);
		return NULL;
	}
	for (int li = 0; li < m->n_layers; li++) {
		enum dds_op op = m->layers[li].op;
		bool fast = o->kernels == DDS_KERNELS_FAST && dds_fast_ops[op];
		e->fn[li] = fast ? dds_fast_ops[op] : dds_ref_ops[op];
		if (fast && op == DDS_OP_CONV2D && fold_conv(e, li))
			goto oom;
	}
	return e;
oom:
	engine_errf(err, "%s: engine: out of memory for max_batch %d", m->name, o->max_batch);
	dds_engine_free(e);
	return NULL;
}

void dds_engine_free(struct dds_engine *e)
{
	if (!e)
		return;
	for (int v = 0; v <= e->m->n_layers; v++) {
		if (e->val)
			free(e->val[v]);
		if (e->fold_w)
			free(e->fold_w[v]);
		if (e->fold_b)
			free(e->fold_b[v]);
	}
	dds_pool_free(e->pool);
	free(e->val);
	free(e->fn);
	free(e->fold_w);
	free(e->fold_b);
	free(e->work);
	free(e->in);
	free(e);
}

float *dds_engine_value(struct dds_engine *e, int value)
{
	return e && value >= 0 && value <= e->m->n_layers ? e->val[value] : NULL;
}

int dds_engine_run(struct dds_engine *e, const uint8_t *mask, int batch, struct dds_err *err)
{
	if (!e)
		return engine_errf(err, "engine: no engine");
	if (batch < 1 || batch > e->o.max_batch)
		return engine_errf(err, "%s: engine: batch %d out of range [1, %d]", e->m->name,
				   batch, e->o.max_batch);
	if (e->o.kernels == DDS_KERNELS_FAST)
		openblas_set_num_threads(1); /* the engine's pool splits the work (fast_kernels.c) */
	for (int li = 0; li < e->m->n_layers; li++) {
		const struct dds_layer *l = &e->m->layers[li];
		if (mask && !mask[li])
			continue;
		for (int k = 0; k < l->n_in; k++)
			e->in[k] = e->val[l->in[k]];
		struct dds_kcall call = {
			.e = e,
			.l = l,
			.li = li,
			.in = e->in,
			.xs = dds_model_value_shape(e->m, l->in[0]),
			.out = e->val[li + 1],
			.batch = batch,
		};
		e->fn[li](&call);
	}
	return 0;
}
