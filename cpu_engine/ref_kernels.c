/* ref_kernels.c: the naive reference kernels, one per op, with PyTorch's semantics.
 *
 * These are the test oracle of the fast path: plain loops in the formula's order, double
 * accumulators, no threads. Layout is NCHW / [batch, T, E], row-major.
 */
#include <string.h>

#include "engine_int.h"

/* Elements of one sample of the layer's output / its first input. */
static size_t out_numel(const struct dds_kcall *k)
{
	return dds_shape_numel(&k->l->out_shape);
}

static size_t in_numel(const struct dds_kcall *k)
{
	return dds_shape_numel(k->xs);
}

/* One output point of conv2d before bias/BN/act: the sum over its window in its group. */
static double conv_point(const struct dds_layer *l, const struct dds_shape *xs, const float *x,
			 const float *w, int o, int oy, int ox)
{
	int cg = xs->d[0] / l->groups, g = o / (l->out_channels / l->groups);
	int h = xs->d[1], wd = xs->d[2], kh = l->kernel[0], kw = l->kernel[1];
	double acc = 0;

	for (int c = 0; c < cg; c++)
		for (int i = 0; i < kh; i++) {
			int iy = oy * l->stride[0] - l->padding[0] + i * l->dilation[0];
			if (iy < 0 || iy >= h)
				continue;
			for (int j = 0; j < kw; j++) {
				int ix = ox * l->stride[1] - l->padding[1] + j * l->dilation[1];
				if (ix < 0 || ix >= wd)
					continue;
				acc += (double)x[((size_t)(g * cg + c) * h + iy) * wd + ix] *
				       w[(((size_t)o * cg + c) * kh + i) * kw + j];
			}
		}
	return acc;
}

static void ref_conv2d(const struct dds_kcall *k)
{
	const struct dds_layer *l = k->l;
	const float *w = dds_layer_param(l, "weight"), *b = dds_layer_param(l, "bias");
	const float *bw = dds_layer_param(l, "bn_weight"), *bb = dds_layer_param(l, "bn_bias");
	const float *bm = dds_layer_param(l, "bn_mean"), *bv = dds_layer_param(l, "bn_var");
	int oc = l->out_shape.d[0], oh = l->out_shape.d[1], ow = l->out_shape.d[2];

	for (int n = 0; n < k->batch; n++) {
		const float *x = k->in[0] + n * in_numel(k);
		float *y = k->out + n * out_numel(k);
		for (int o = 0; o < oc; o++)
			for (int oy = 0; oy < oh; oy++)
				for (int ox = 0; ox < ow; ox++) {
					double v = conv_point(l, k->xs, x, w, o, oy, ox) + (b ? b[o] : 0);
					if (l->bn)
						v = (v - bm[o]) / sqrt((double)bv[o] + l->eps) * bw[o] + bb[o];
					y[((size_t)o * oh + oy) * ow + ox] = dds_act_apply(l->act, (float)v);
				}
	}
}

/* Batchnorm over the first per-sample axis (channels). */
static void ref_batchnorm(const struct dds_kcall *k)
{
	const struct dds_layer *l = k->l;
	const float *w = dds_layer_param(l, "weight"), *b = dds_layer_param(l, "bias");
	const float *mean = dds_layer_param(l, "mean"), *var = dds_layer_param(l, "var");
	int ch = k->xs->d[0];
	size_t inner = in_numel(k) / (size_t)ch;

	for (int n = 0; n < k->batch; n++)
		for (int c = 0; c < ch; c++) {
			size_t off = ((size_t)n * ch + c) * inner;
			double s = 1.0 / sqrt((double)var[c] + l->eps);
			for (size_t i = 0; i < inner; i++)
				k->out[off + i] = (float)((k->in[0][off + i] - mean[c]) * s * w[c] + b[c]);
		}
}

static void ref_unary_act(const struct dds_kcall *k, enum dds_act a)
{
	size_t n = in_numel(k) * (size_t)k->batch;
	for (size_t i = 0; i < n; i++)
		k->out[i] = dds_act_apply(a, k->in[0][i]);
}

static void ref_relu(const struct dds_kcall *k)
{
	ref_unary_act(k, DDS_ACT_RELU);
}

static void ref_gelu(const struct dds_kcall *k)
{
	ref_unary_act(k, DDS_ACT_GELU);
}

static int min_int(int a, int b)
{
	return a < b ? a : b;
}

/* One pooling window, PyTorch's rule: the window may run into the padding and, with
 * ceil_mode, past it; avgpool's divisor counts the padding (not the overrun) when
 * count_include_pad, else only the input elements. */
static float pool_point(const struct dds_layer *l, const float *x, int h, int w, int oy, int ox)
{
	int y0 = oy * l->stride[0] - l->padding[0], x0 = ox * l->stride[1] - l->padding[1];
	int y1 = y0 + l->kernel[0], x1 = x0 + l->kernel[1];
	int pad_area = (min_int(y1, h + l->padding[0]) - y0) * (min_int(x1, w + l->padding[1]) - x0);
	double sum = 0;
	float mx = -INFINITY;
	int cnt = 0;

	for (int iy = y0 < 0 ? 0 : y0; iy < y1 && iy < h; iy++)
		for (int ix = x0 < 0 ? 0 : x0; ix < x1 && ix < w; ix++) {
			float v = x[(size_t)iy * w + ix];
			if (v > mx || isnan(v))
				mx = v;
			sum += v;
			cnt++;
		}
	if (l->op == DDS_OP_MAXPOOL)
		return mx;
	return (float)(sum / (l->count_include_pad ? pad_area : cnt));
}

static void ref_pool(const struct dds_kcall *k)
{
	int h = k->xs->d[1], w = k->xs->d[2];
	int planes = k->batch * k->xs->d[0], oh = k->l->out_shape.d[1], ow = k->l->out_shape.d[2];

	for (int p = 0; p < planes; p++)
		for (int oy = 0; oy < oh; oy++)
			for (int ox = 0; ox < ow; ox++)
				k->out[((size_t)p * oh + oy) * ow + ox] =
					pool_point(k->l, k->in[0] + (size_t)p * h * w, h, w, oy, ox);
}

/* PyTorch's adaptive bins: [floor(i*n/o), ceil((i+1)*n/o)). */
static void ref_adaptive_avgpool(const struct dds_kcall *k)
{
	int h = k->xs->d[1], w = k->xs->d[2];
	int planes = k->batch * k->xs->d[0], oh = k->l->out_shape.d[1], ow = k->l->out_shape.d[2];

	for (int p = 0; p < planes; p++)
		for (int oy = 0; oy < oh; oy++)
			for (int ox = 0; ox < ow; ox++) {
				int y0 = oy * h / oh, y1 = ((oy + 1) * h + oh - 1) / oh;
				int x0 = ox * w / ow, x1 = ((ox + 1) * w + ow - 1) / ow;
				double sum = 0;
				for (int iy = y0; iy < y1; iy++)
					for (int ix = x0; ix < x1; ix++)
						sum += k->in[0][((size_t)p * h + iy) * w + ix];
				k->out[((size_t)p * oh + oy) * ow + ox] =
					(float)(sum / ((y1 - y0) * (x1 - x0)));
			}
}

/* y[r, j] = act(sum_i x[r, i] * w[j, i] + b[j]) for every row r of length K. */
static void linear_rows(const float *x, size_t rows, int kdim, const float *w, const float *b,
			int nout, enum dds_act act, float *y)
{
	for (size_t r = 0; r < rows; r++)
		for (int j = 0; j < nout; j++) {
			double acc = b ? b[j] : 0;
			for (int i = 0; i < kdim; i++)
				acc += (double)x[r * kdim + i] * w[(size_t)j * kdim + i];
			y[r * nout + j] = dds_act_apply(act, (float)acc);
		}
}

static void ref_linear(const struct dds_kcall *k)
{
	int kdim = k->xs->d[k->xs->ndim - 1];
	size_t rows = in_numel(k) / (size_t)kdim * (size_t)k->batch;
	linear_rows(k->in[0], rows, kdim, dds_layer_param(k->l, "weight"),
		    dds_layer_param(k->l, "bias"), k->l->out_features, k->l->act, k->out);
}

/* Sum in input order in float (as PyTorch's chained a + b + c), then the activation. */
static void ref_add(const struct dds_kcall *k)
{
	size_t n = out_numel(k) * (size_t)k->batch;
	for (size_t i = 0; i < n; i++) {
		float s = k->in[0][i];
		for (int j = 1; j < k->l->n_in; j++)
			s += k->in[j][i];
		k->out[i] = dds_act_apply(k->l->act, s);
	}
}

/* Product of the per-sample dims of s from axis a on. */
static size_t inner_numel(const struct dds_shape *s, int a)
{
	size_t n = 1;
	for (int i = a; i < s->ndim; i++)
		n *= (size_t)s->d[i];
	return n;
}

static void ref_concat(const struct dds_kcall *k)
{
	const struct dds_layer *l = k->l;
	size_t outer = dds_shape_numel(k->xs) / inner_numel(k->xs, l->axis);
	float *y = k->out;

	for (size_t r = 0; r < outer * (size_t)k->batch; r++)
		for (int j = 0; j < l->n_in; j++) {
			const struct dds_shape *s = dds_model_value_shape(k->e->m, l->in[j]);
			size_t blk = inner_numel(s, l->axis);
			memcpy(y, k->in[j] + r * blk, blk * sizeof(float));
			y += blk;
		}
}

static void ref_copy(const struct dds_kcall *k)
{
	memcpy(k->out, k->in[0], in_numel(k) * (size_t)k->batch * sizeof(float));
}

static void ref_softmax(const struct dds_kcall *k)
{
	int e = k->xs->d[k->xs->ndim - 1];
	size_t rows = in_numel(k) / (size_t)e * (size_t)k->batch;

	for (size_t r = 0; r < rows; r++) {
		const float *x = k->in[0] + r * e;
		float *y = k->out + r * e, mx = -INFINITY;
		double sum = 0;
		for (int i = 0; i < e; i++)
			mx = x[i] > mx ? x[i] : mx;
		for (int i = 0; i < e; i++)
			sum += exp((double)x[i] - mx);
		for (int i = 0; i < e; i++)
			y[i] = (float)(exp((double)x[i] - mx) / sum);
	}
}

static void ref_layernorm(const struct dds_kcall *k)
{
	const float *w = dds_layer_param(k->l, "weight"), *b = dds_layer_param(k->l, "bias");
	int e = k->xs->d[k->xs->ndim - 1];
	size_t rows = in_numel(k) / (size_t)e * (size_t)k->batch;

	for (size_t r = 0; r < rows; r++) {
		const float *x = k->in[0] + r * e;
		double mean = 0, var = 0;
		for (int i = 0; i < e; i++)
			mean += x[i];
		mean /= e;
		for (int i = 0; i < e; i++)
			var += (x[i] - mean) * (x[i] - mean);
		double s = 1.0 / sqrt(var / e + k->l->eps);
		for (int i = 0; i < e; i++)
			k->out[r * e + i] = (float)((x[i] - mean) * s * w[i] + b[i]);
	}
}

/* Self-attention of one sample x [T,E]: qkv = x W_in^T + b_in; per head h of width d:
 * softmax(q_h k_h^T / sqrt(d)) v_h into att[:, h*d..]; then y = att W_out^T + b_out.
 * work holds qkv [T,3E], one score row [T] and att [T,E]. */
static void mha_sample(const struct dds_layer *l, const float *x, int t, int e, float *work,
		       float *y)
{
	float *qkv = work, *row = qkv + (size_t)t * 3 * e, *att = row + t;
	int d = e / l->heads;

	linear_rows(x, t, e, dds_layer_param(l, "in_proj_weight"),
		    dds_layer_param(l, "in_proj_bias"), 3 * e, DDS_ACT_NONE, qkv);
	for (int h = 0; h < l->heads; h++)
		for (int i = 0; i < t; i++) {
			const float *q = qkv + (size_t)i * 3 * e + h * d;
			double mx = -INFINITY, sum = 0;
			for (int j = 0; j < t; j++) {
				const float *kk = qkv + (size_t)j * 3 * e + e + h * d;
				double s = 0;
				for (int c = 0; c < d; c++)
					s += (double)q[c] * kk[c];
				row[j] = (float)(s / sqrt((double)d));
				mx = row[j] > mx ? row[j] : mx;
			}
			for (int j = 0; j < t; j++)
				sum += exp(row[j] - mx);
			for (int c = 0; c < d; c++) {
				double acc = 0;
				for (int j = 0; j < t; j++)
					acc += exp(row[j] - mx) / sum * qkv[(size_t)j * 3 * e + 2 * e + h * d + c];
				att[(size_t)i * e + h * d + c] = (float)acc;
			}
		}
	linear_rows(att, t, e, dds_layer_param(l, "out_proj_weight"),
		    dds_layer_param(l, "out_proj_bias"), e, DDS_ACT_NONE, y);
}

static void ref_mha(const struct dds_kcall *k)
{
	int t = k->xs->d[0], e = k->xs->d[1];
	for (int n = 0; n < k->batch; n++)
		mha_sample(k->l, k->in[0] + (size_t)n * t * e, t, e, k->e->work,
			   k->out + (size_t)n * t * e);
}

/* [C,H,W] -> [H*W, C]. */
static void ref_tokens(const struct dds_kcall *k)
{
	int c = k->xs->d[0];
	size_t hw = (size_t)k->xs->d[1] * k->xs->d[2];

	for (int n = 0; n < k->batch; n++)
		for (size_t p = 0; p < hw; p++)
			for (int i = 0; i < c; i++)
				k->out[((size_t)n * hw + p) * c + i] = k->in[0][((size_t)n * c + i) * hw + p];
}

static void ref_cls_token(const struct dds_kcall *k)
{
	size_t e = (size_t)k->xs->d[1], te = in_numel(k);
	const float *tok = dds_layer_param(k->l, "token");

	for (int n = 0; n < k->batch; n++) {
		float *y = k->out + (size_t)n * (te + e);
		memcpy(y, tok, e * sizeof(float));
		memcpy(y + e, k->in[0] + (size_t)n * te, te * sizeof(float));
	}
}

static void ref_pos_embed(const struct dds_kcall *k)
{
	const float *p = dds_layer_param(k->l, "weight");
	size_t te = in_numel(k);

	for (size_t i = 0; i < te * (size_t)k->batch; i++)
		k->out[i] = k->in[0][i] + p[i % te];
}

static void ref_select_token(const struct dds_kcall *k)
{
	size_t e = (size_t)k->xs->d[1];

	for (int n = 0; n < k->batch; n++)
		memcpy(k->out + n * e, k->in[0] + n * in_numel(k) + (size_t)k->l->index * e,
		       e * sizeof(float));
}

const dds_kernel_fn dds_ref_ops[DDS_OP__COUNT] = {
	[DDS_OP_CONV2D] = ref_conv2d,
	[DDS_OP_BATCHNORM] = ref_batchnorm,
	[DDS_OP_RELU] = ref_relu,
	[DDS_OP_GELU] = ref_gelu,
	[DDS_OP_MAXPOOL] = ref_pool,
	[DDS_OP_AVGPOOL] = ref_pool,
	[DDS_OP_ADAPTIVE_AVGPOOL] = ref_adaptive_avgpool,
	[DDS_OP_LINEAR] = ref_linear,
	[DDS_OP_ADD] = ref_add,
	[DDS_OP_CONCAT] = ref_concat,
	[DDS_OP_FLATTEN] = ref_copy,
	[DDS_OP_SOFTMAX] = ref_softmax,
	[DDS_OP_LAYERNORM] = ref_layernorm,
	[DDS_OP_MHA] = ref_mha,
	[DDS_OP_TOKENS] = ref_tokens,
	[DDS_OP_CLS_TOKEN] = ref_cls_token,
	[DDS_OP_POS_EMBED] = ref_pos_embed,
	[DDS_OP_SELECT_TOKEN] = ref_select_token,
};
