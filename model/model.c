/* model.c: per-op shape inference, parameter lists, FLOP counts and small model queries. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_int.h"

static const char *const op_names[DDS_OP__COUNT] = {
	[DDS_OP_CONV2D] = "conv2d",
	[DDS_OP_BATCHNORM] = "batchnorm",
	[DDS_OP_RELU] = "relu",
	[DDS_OP_GELU] = "gelu",
	[DDS_OP_MAXPOOL] = "maxpool",
	[DDS_OP_AVGPOOL] = "avgpool",
	[DDS_OP_ADAPTIVE_AVGPOOL] = "adaptive_avgpool",
	[DDS_OP_LINEAR] = "linear",
	[DDS_OP_ADD] = "add",
	[DDS_OP_CONCAT] = "concat",
	[DDS_OP_FLATTEN] = "flatten",
	[DDS_OP_SOFTMAX] = "softmax",
	[DDS_OP_LAYERNORM] = "layernorm",
	[DDS_OP_MHA] = "mha",
	[DDS_OP_TOKENS] = "tokens",
	[DDS_OP_CLS_TOKEN] = "cls_token",
	[DDS_OP_POS_EMBED] = "pos_embed",
	[DDS_OP_SELECT_TOKEN] = "select_token",
};

_Static_assert(sizeof(op_names) / sizeof(op_names[0]) == DDS_OP__COUNT, "op name table");

int dds_errf(struct dds_err *err, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -1;
}

const char *dds_op_name(enum dds_op op)
{
	return (unsigned)op < DDS_OP__COUNT ? op_names[op] : "?";
}

int dds_op_from_name(const char *name)
{
	for (int i = 0; i < DDS_OP__COUNT; i++)
		if (strcmp(op_names[i], name) == 0)
			return i;
	return -1;
}

size_t dds_shape_numel(const struct dds_shape *s)
{
	size_t n = 1;
	for (int i = 0; i < s->ndim; i++)
		n *= (size_t)s->d[i];
	return n;
}

const struct dds_shape *dds_model_value_shape(const struct dds_model *m, int value)
{
	return value == 0 ? &m->in_shape : &m->layers[value - 1].out_shape;
}

int dds_model_find(const struct dds_model *m, const char *name)
{
	for (int i = 0; i < m->n_layers; i++)
		if (strcmp(m->layers[i].name, name) == 0)
			return i;
	return -1;
}

int dds_model_tail_mask(const struct dds_model *m, const int *values, int n_values, uint8_t *mask,
		       struct dds_err *err)
{
	if (!m || !mask || n_values < 0 || (n_values && !values))
		return dds_errf(err, "tail: missing argument");
	int n = m->n_layers, rc = 0;
	uint8_t *sent = calloc((size_t)n + 1, 1), *needed = calloc((size_t)n + 1, 1);

	if (!sent || !needed) {
		rc = dds_errf(err, "%s: tail: out of memory", m->name);
		goto out;
	}
	for (int i = 0; i < n_values && rc == 0; i++) {
		if (values[i] < 0 || values[i] > n || sent[values[i]])
			rc = dds_errf(err, "%s: tail: value %d is %s", m->name, values[i],
				      values[i] < 0 || values[i] > n ? "out of range" : "sent twice");
		else
			sent[values[i]] = 1;
	}
	if (rc != 0)
		goto out;
	if (sent[m->output + 1]) {
		rc = dds_errf(err, "%s: tail: the output '%s' is sent: nothing to run", m->name,
			      m->layers[m->output].name);
		goto out;
	}
	/* Walk back from the output; a needed value that is not sent is computed here. */
	memset(mask, 0, (size_t)n);
	needed[m->output + 1] = 1;
	for (int k = n - 1; k >= 0; k--) {
		if (!needed[k + 1] || sent[k + 1])
			continue;
		mask[k] = 1;
		for (int j = 0; j < m->layers[k].n_in; j++)
			needed[m->layers[k].in[j]] = 1;
	}
	if (needed[0] && !sent[0])
		rc = dds_errf(err, "%s: tail: the output needs the raw input, which is not sent "
			      "(the values sent are not a cut)", m->name);
out:
	free(sent);
	free(needed);
	return rc;
}


void dds_model_mask_inputs(const struct dds_model *m, const uint8_t *mask, uint8_t *in)
{
	memset(in, 0, (size_t)m->n_layers + 1);
	for (int k = 0; k < m->n_layers; k++)
		for (int j = 0; mask[k] && j < m->layers[k].n_in; j++)
			in[m->layers[k].in[j]] = 1;
	for (int v = 1; v <= m->n_layers; v++)
		if (mask[v - 1])
			in[v] = 0;
}

static const char *value_name(const struct dds_model *m, int v)
{
	return v == 0 ? "input" : m->layers[v - 1].name;
}

int dds_model_check_head(const struct dds_model *m, const uint8_t *mask, struct dds_err *err)
{
	for (int i = 0; i < m->n_layers; i++) {
		if (!mask[i])
			continue;
		for (int k = 0; k < m->layers[i].n_in; k++) {
			int v = m->layers[i].in[k];
			if (v > 0 && !mask[v - 1])
				return dds_errf(err,
						"%s: head: layer '%s' is in the head but its input '%s' is not "
						"(a head must be closed under predecessors)",
						m->name, m->layers[i].name, value_name(m, v));
		}
	}
	return 0;
}

/* Elements as a double: cannot overflow, for limit checks on untrusted shapes. */
static double shape_numel_d(const struct dds_shape *s)
{
	double n = 1;
	for (int i = 0; i < s->ndim; i++)
		n *= s->d[i];
	return n;
}

static void shape_set(struct dds_shape *s, int ndim, int a, int b, int c)
{
	s->ndim = ndim;
	s->d[0] = a;
	s->d[1] = b;
	s->d[2] = c;
	s->d[3] = 0;
}

static void param_add(struct dds_layer *l, const char *name, int ndim, int a, int b, int c, int d)
{
	struct dds_param *p = &l->params[l->n_params++];
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->shape.ndim = ndim;
	p->shape.d[0] = a;
	p->shape.d[1] = b;
	p->shape.d[2] = c;
	p->shape.d[3] = d;
	p->count = dds_shape_numel(&p->shape);
}

/* Output length of a conv/pool window sweep, PyTorch's rule; 0 when empty. */
static int sweep_len(int in, int k, int s, int p, int d, bool ceil_mode)
{
	int span = in + 2 * p - d * (k - 1) - 1;
	if (span < 0)
		return 0;
	int out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
	if (ceil_mode && (out - 1) * s >= in + p)
		out--;
	return out;
}

static double act_cost(enum dds_act a, double n)
{
	return a == DDS_ACT_NONE ? 0 : n;
}

#define FAIL(...) dds_errf(err, __VA_ARGS__)

static int finish_conv(struct dds_layer *l, const struct dds_shape *x, const char *where,
		       struct dds_err *err)
{
	if (x->ndim != 3)
		return FAIL("%s: conv2d needs a [C,H,W] input, got %d axes", where, x->ndim);
	int c = x->d[0];
	if (c % l->groups || l->out_channels % l->groups)
		return FAIL("%s: groups=%d must divide in channels %d and out_channels %d", where,
			    l->groups, c, l->out_channels);
	int oh = sweep_len(x->d[1], l->kernel[0], l->stride[0], l->padding[0], l->dilation[0], false);
	int ow = sweep_len(x->d[2], l->kernel[1], l->stride[1], l->padding[1], l->dilation[1], false);
	if (oh < 1 || ow < 1)
		return FAIL("%s: kernel larger than the padded input %dx%d", where, x->d[1], x->d[2]);
	shape_set(&l->out_shape, 3, l->out_channels, oh, ow);
	param_add(l, "weight", 4, l->out_channels, c / l->groups, l->kernel[0], l->kernel[1]);
	if (l->bias)
		param_add(l, "bias", 1, l->out_channels, 0, 0, 0);
	if (l->bn) {
		param_add(l, "bn_weight", 1, l->out_channels, 0, 0, 0);
		param_add(l, "bn_bias", 1, l->out_channels, 0, 0, 0);
		param_add(l, "bn_mean", 1, l->out_channels, 0, 0, 0);
		param_add(l, "bn_var", 1, l->out_channels, 0, 0, 0);
	}
	double out = (double)l->out_channels * oh * ow;
	double k = (double)(c / l->groups) * l->kernel[0] * l->kernel[1];
	double extra = (l->bias ? out : 0) + (l->bn ? 2 * out : 0) + act_cost(l->act, out);
	l->macs = out * k + extra;
	l->flops = 2 * out * k + extra;
	return 0;
}

static int finish_pool(struct dds_layer *l, const struct dds_shape *x, const char *where,
		       struct dds_err *err)
{
	if (x->ndim != 3)
		return FAIL("%s: %s needs a [C,H,W] input, got %d axes", where, dds_op_name(l->op),
			    x->ndim);
	for (int a = 0; a < 2; a++)
		if (l->padding[a] * 2 > l->kernel[a])
			return FAIL("%s: padding %d must be at most half the kernel %d", where,
				    l->padding[a], l->kernel[a]);
	int oh = sweep_len(x->d[1], l->kernel[0], l->stride[0], l->padding[0], 1, l->ceil_mode);
	int ow = sweep_len(x->d[2], l->kernel[1], l->stride[1], l->padding[1], 1, l->ceil_mode);
	if (oh < 1 || ow < 1)
		return FAIL("%s: window larger than the padded input %dx%d", where, x->d[1], x->d[2]);
	shape_set(&l->out_shape, 3, x->d[0], oh, ow);
	l->macs = l->flops = (double)dds_shape_numel(x);
	return 0;
}

static int finish_linear(struct dds_layer *l, const struct dds_shape *x, const char *where,
			 struct dds_err *err)
{
	if (x->ndim < 1 || x->ndim > 2)
		return FAIL("%s: linear needs a [K] or [T,K] input, got %d axes", where, x->ndim);
	int k = x->d[x->ndim - 1];
	l->out_shape = *x;
	l->out_shape.d[x->ndim - 1] = l->out_features;
	param_add(l, "weight", 2, l->out_features, k, 0, 0);
	if (l->bias)
		param_add(l, "bias", 1, l->out_features, 0, 0, 0);
	double out = (double)dds_shape_numel(&l->out_shape);
	double extra = (l->bias ? out : 0) + act_cost(l->act, out);
	l->macs = out * k + extra;
	l->flops = 2 * out * k + extra;
	return 0;
}

static int same_shape(const struct dds_shape *a, const struct dds_shape *b)
{
	if (a->ndim != b->ndim)
		return 0;
	for (int i = 0; i < a->ndim; i++)
		if (a->d[i] != b->d[i])
			return 0;
	return 1;
}

void dds_shape_format(const struct dds_shape *s, char *buf, size_t n)
{
	size_t o = (size_t)snprintf(buf, n, "[");
	for (int i = 0; i < s->ndim && o < n; i++)
		o += (size_t)snprintf(buf + o, n - o, i ? ",%d" : "%d", s->d[i]);
	if (o < n)
		snprintf(buf + o, n - o, "]");
}

static int finish_join(struct dds_model *m, struct dds_layer *l, const char *where,
		       struct dds_err *err)
{
	const struct dds_shape *x = dds_model_value_shape(m, l->in[0]);
	if (l->n_in < 2)
		return FAIL("%s: %s needs at least 2 inputs", where, dds_op_name(l->op));
	l->out_shape = *x;
	if (l->op == DDS_OP_CONCAT && (l->axis < 0 || l->axis >= x->ndim))
		return FAIL("%s: axis %d out of range for %d axes", where, l->axis, x->ndim);
	for (int k = 1; k < l->n_in; k++) {
		const struct dds_shape *y = dds_model_value_shape(m, l->in[k]);
		int ok = l->op == DDS_OP_ADD ? same_shape(x, y) : x->ndim == y->ndim;
		for (int a = 0; ok && l->op == DDS_OP_CONCAT && a < x->ndim; a++)
			ok = a == l->axis || x->d[a] == y->d[a];
		if (!ok) {
			char sx[64], sy[64];
			dds_shape_format(x, sx, sizeof(sx));
			dds_shape_format(y, sy, sizeof(sy));
			return FAIL("%s: shape mismatch: input '%s' is %s but input '%s' is %s", where,
				    value_name(m, l->in[k]), sy, value_name(m, l->in[0]), sx);
		}
		if (l->op == DDS_OP_CONCAT)
			l->out_shape.d[l->axis] += y->d[l->axis];
	}
	double out = (double)dds_shape_numel(&l->out_shape);
	l->flops = l->op == DDS_OP_ADD ? out * (l->n_in - 1) + act_cost(l->act, out) : 0;
	l->macs = l->op == DDS_OP_ADD ? act_cost(l->act, out) : 0;
	return 0;
}

static int need_tokens(const struct dds_shape *x, const char *op, const char *where,
		       struct dds_err *err)
{
	if (x->ndim != 2)
		return FAIL("%s: %s needs a [T,E] input, got %d axes", where, op, x->ndim);
	return 0;
}

static int finish_seq(struct dds_layer *l, const struct dds_shape *x, const char *where,
		      struct dds_err *err)
{
	double n = (double)dds_shape_numel(x);
	const char *op = dds_op_name(l->op);
	l->out_shape = *x;
	switch (l->op) {
	case DDS_OP_LAYERNORM:
		param_add(l, "weight", 1, x->d[x->ndim - 1], 0, 0, 0);
		param_add(l, "bias", 1, x->d[x->ndim - 1], 0, 0, 0);
		l->flops = 5 * n;
		l->macs = 2 * n;
		return 0;
	case DDS_OP_MHA: {
		if (need_tokens(x, op, where, err))
			return -1;
		int t = x->d[0], e = x->d[1];
		if (l->heads < 1 || e % l->heads)
			return FAIL("%s: heads=%d must divide the embedding %d", where, l->heads, e);
		param_add(l, "in_proj_weight", 2, 3 * e, e, 0, 0);
		param_add(l, "in_proj_bias", 1, 3 * e, 0, 0, 0);
		param_add(l, "out_proj_weight", 2, e, e, 0, 0);
		param_add(l, "out_proj_bias", 1, e, 0, 0, 0);
		double te = (double)t * e, tte = (double)t * t * e, tth = (double)t * t * l->heads;
		l->macs = 4 * te * e + 2 * tte + tth + 4 * te;
		l->flops = 2 * (4 * te * e + 2 * tte) + 5 * tth + 4 * te;
		return 0;
	}
	case DDS_OP_CLS_TOKEN:
		if (need_tokens(x, op, where, err))
			return -1;
		l->out_shape.d[0] = x->d[0] + 1;
		param_add(l, "token", 1, x->d[1], 0, 0, 0);
		return 0;
	case DDS_OP_POS_EMBED:
		if (need_tokens(x, op, where, err))
			return -1;
		param_add(l, "weight", 2, x->d[0], x->d[1], 0, 0);
		l->flops = n;
		return 0;
	case DDS_OP_SELECT_TOKEN:
		if (need_tokens(x, op, where, err))
			return -1;
		if (l->index < 0 || l->index >= x->d[0])
			return FAIL("%s: index %d out of range for %d tokens", where, l->index, x->d[0]);
		shape_set(&l->out_shape, 1, x->d[1], 0, 0);
		return 0;
	default:
		return FAIL("%s: internal: op %s is not a sequence op", where, op);
	}
}

/* Element-wise and reshaping ops with one input. */
static int finish_unary(struct dds_layer *l, const struct dds_shape *x, const char *where,
			struct dds_err *err)
{
	double n = (double)dds_shape_numel(x);
	l->out_shape = *x;
	switch (l->op) {
	case DDS_OP_BATCHNORM:
		if (x->ndim < 1)
			return FAIL("%s: batchnorm needs a channel axis", where);
		param_add(l, "weight", 1, x->d[0], 0, 0, 0);
		param_add(l, "bias", 1, x->d[0], 0, 0, 0);
		param_add(l, "mean", 1, x->d[0], 0, 0, 0);
		param_add(l, "var", 1, x->d[0], 0, 0, 0);
		l->flops = l->macs = 2 * n;
		return 0;
	case DDS_OP_RELU:
	case DDS_OP_GELU:
		l->flops = l->macs = n;
		return 0;
	case DDS_OP_SOFTMAX:
		l->flops = 3 * n;
		return 0;
	case DDS_OP_FLATTEN:
		shape_set(&l->out_shape, 1, (int)n, 0, 0);
		return 0;
	case DDS_OP_ADAPTIVE_AVGPOOL:
		if (x->ndim != 3)
			return FAIL("%s: adaptive_avgpool needs a [C,H,W] input", where);
		shape_set(&l->out_shape, 3, x->d[0], l->output_size[0], l->output_size[1]);
		l->flops = l->macs = n;
		return 0;
	case DDS_OP_TOKENS:
		if (x->ndim != 3)
			return FAIL("%s: tokens needs a [C,H,W] input", where);
		shape_set(&l->out_shape, 2, x->d[1] * x->d[2], x->d[0], 0);
		return 0;
	default:
		return FAIL("%s: internal: op %s is not unary", where, dds_op_name(l->op));
	}
}

int dds_layer_finish(struct dds_model *m, int li, const char *origin, struct dds_err *err)
{
	struct dds_layer *l = &m->layers[li];
	const struct dds_shape *x = dds_model_value_shape(m, l->in[0]);
	char where[DDS_NAME_MAX + 300];
	int rc;

	snprintf(where, sizeof(where), "%s: layer '%s'", origin, l->name);
	if (l->op != DDS_OP_ADD && l->op != DDS_OP_CONCAT && l->n_in != 1)
		return FAIL("%s: %s takes exactly 1 input, got %d", where, dds_op_name(l->op), l->n_in);
	switch (l->op) {
	case DDS_OP_CONV2D:
		rc = finish_conv(l, x, where, err);
		break;
	case DDS_OP_MAXPOOL:
	case DDS_OP_AVGPOOL:
		rc = finish_pool(l, x, where, err);
		break;
	case DDS_OP_LINEAR:
		rc = finish_linear(l, x, where, err);
		break;
	case DDS_OP_ADD:
	case DDS_OP_CONCAT:
		rc = finish_join(m, l, where, err);
		break;
	case DDS_OP_LAYERNORM:
	case DDS_OP_MHA:
	case DDS_OP_CLS_TOKEN:
	case DDS_OP_POS_EMBED:
	case DDS_OP_SELECT_TOKEN:
		rc = finish_seq(l, x, where, err);
		break;
	default:
		rc = finish_unary(l, x, where, err);
		break;
	}
	if (rc)
		return rc;
	for (int i = 0; i < l->out_shape.ndim; i++)
		if (l->out_shape.d[i] < 1)
			return FAIL("%s: empty output shape", where);
	if (shape_numel_d(&l->out_shape) > DDS_MAX_TENSOR_ELEMS)
		return FAIL("%s: output of %.0f elements is too large (limit %d)", where,
			    shape_numel_d(&l->out_shape), DDS_MAX_TENSOR_ELEMS);
	for (int p = 0; p < l->n_params; p++)
		if (shape_numel_d(&l->params[p].shape) > DDS_MAX_TENSOR_ELEMS)
			return FAIL("%s: parameter '%s' of %.0f elements is too large (limit %d)", where,
				    l->params[p].name, shape_numel_d(&l->params[p].shape),
				    DDS_MAX_TENSOR_ELEMS);
	l->out_bytes = dds_shape_numel(&l->out_shape) * sizeof(float);
	return 0;
}
