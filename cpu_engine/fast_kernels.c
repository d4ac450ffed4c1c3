/* fast_kernels.c: the fast path: conv2d, linear and attention through OpenBLAS sgemm.
 *
 * Threads: the engine's pool (pool.c) runs each kernel as one job; each team member takes a
 * fixed contiguous block of output columns and calls a one-thread sgemm on it (OpenBLAS is set
 * to 1 thread at each run), so there is a single team and no second one spinning against it
 * (OpenBLAS's threads beside OpenMP's ran ResNet50 in 235 ms on 2 threads against 110 ms on
 * 1). Waits block instead of spinning: with a busy neighbour on one of 2 cores, spinning
 * OpenMP took 437 ms and this takes about what 1 thread takes. Blocks depend only on the shape
 * and the team size, so a run is deterministic; OpenBLAS may round differently for another
 * block width, so other thread counts may differ in the last bits.
 *
 * conv2d: per sample and group, y[Og, OH*OW] = W[Og, Cg*kh*kw] * col[Cg*kh*kw, OH*OW] with BN
 * folded into W and the bias at engine creation. Each thread unfolds (im2col) only its own
 * columns into its own slice of the workspace, multiplies and adds bias + activation, with no
 * barrier in between. A 1x1 stride-1 unpadded conv reads the input directly.
 * Every other op uses its reference kernel.
 */
#include <cblas.h>
#include <stdbool.h>
#include <string.h>

#include "engine_int.h"

/* Columns [*j0, *j1) of n for thread `t` of `nt`, in blocks of 16 columns where possible. */
static void split_cols(int n, int t, int nt, int *j0, int *j1)
{
	int blocks = (n + 15) / 16, per = blocks / nt, extra = blocks % nt;
	int b0 = t * per + (t < extra ? t : extra), b1 = b0 + per + (t < extra);
	*j0 = b0 * 16 < n ? b0 * 16 : n;
	*j1 = b1 * 16 < n ? b1 * 16 : n;
}

/* d[q] = src[ix0 + q*sw] for q < n, 0 where that index is outside [0, w) or src is NULL
 * (a tap in the padding). */
static void gather_row(const float *src, int w, int ix0, int sw, int n, float *d)
{
	int lo = 0, hi = 0;

	if (src) {
		lo = ix0 < 0 ? (-ix0 + sw - 1) / sw : 0; /* first q with ix >= 0 */
		hi = ix0 < w ? (w - 1 - ix0) / sw + 1 : 0; /* first q with ix >= w */
		lo = lo < n ? lo : n;
		hi = hi < n ? hi : n;
		hi = hi > lo ? hi : lo;
	}
	memset(d, 0, (size_t)lo * sizeof(float));
	if (sw == 1 && hi > lo)
		memcpy(d + lo, src + ix0 + lo, (size_t)(hi - lo) * sizeof(float));
	else
		for (int q = lo; q < hi; q++)
			d[q] = src[ix0 + q * sw];
	memset(d + hi, 0, (size_t)(n - hi) * sizeof(float));
}

/* Unfold columns [j0, j1) of x [cg, h, w] into col [cg*kh*kw, j1-j0], one output row
 * segment at a time. */
static void im2col_cols(const struct dds_layer *l, const float *x, int cg, int h, int w, int j0,
			int j1, float *col)
{
	int kh = l->kernel[0], kw = l->kernel[1], ow = l->out_shape.d[2];

	for (int r = 0; r < cg * kh * kw; r++) {
		int c = r / (kh * kw), i = r / kw % kh, j = r % kw;
		float *d = col + (size_t)r * (j1 - j0);
		for (int p = j0; p < j1;) {
			int oy = p / ow, ox = p % ow, n = ow - ox < j1 - p ? ow - ox : j1 - p;
			int iy = oy * l->stride[0] - l->padding[0] + i * l->dilation[0];
			const float *src = iy >= 0 && iy < h ? x + ((size_t)c * h + iy) * w : NULL;
			gather_row(src, w, ox * l->stride[1] - l->padding[1] + j * l->dilation[1],
				   l->stride[1], n, d);
			d += n;
			p += n;
		}
	}
}

/* y[r, j0..j1) = act(y[r, j0..j1) + b[r]) for the rows of a [rows, ldy] matrix. */
static void bias_act_block(float *y, int rows, int ldy, int j0, int j1, const float *b,
			   enum dds_act act)
{
	for (int r = 0; r < rows; r++) {
		float *p = y + (size_t)r * ldy, bb = b[r];
		for (int j = j0; j < j1; j++)
			p[j] = dds_act_apply(act, p[j] + bb);
	}
}

bool dds_conv_is_direct(const struct dds_layer *l)
{
	return l->kernel[0] == 1 && l->kernel[1] == 1 && l->stride[0] == 1 && l->stride[1] == 1 &&
	       l->padding[0] == 0 && l->padding[1] == 0;
}

/* One thread's share of one sample and group: columns [j0, j1) of y [og, ohw]. */
static void conv_block(const struct dds_kcall *k, const float *x, const float *w, const float *b,
		       float *y, int j0, int j1)
{
	const struct dds_layer *l = k->l;
	int cg = k->xs->d[0] / l->groups, og = l->out_channels / l->groups;
	int kk = cg * l->kernel[0] * l->kernel[1], ohw = l->out_shape.d[1] * l->out_shape.d[2];
	const float *bm = x + j0;
	int ldb = ohw;

	if (!dds_conv_is_direct(l)) {
		float *col = k->e->work + (size_t)kk * j0; /* this thread's slice */
		im2col_cols(l, x, cg, k->xs->d[1], k->xs->d[2], j0, j1, col);
		bm = col;
		ldb = j1 - j0;
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, og, j1 - j0, kk, 1.0f, w, kk, bm,
		    ldb, 0.0f, y + j0, ohw);
	bias_act_block(y, og, ohw, j0, j1, b, l->act);
}

/* One team member's columns of every sample and group. */
static void conv_job(void *arg, int t, int nt)
{
	const struct dds_kcall *k = arg;
	const struct dds_layer *l = k->l;
	int c = k->xs->d[0], hw = k->xs->d[1] * k->xs->d[2], g = l->groups;
	int cg = c / g, og = l->out_channels / g, kk = cg * l->kernel[0] * l->kernel[1];
	int ohw = l->out_shape.d[1] * l->out_shape.d[2], j0, j1;

	split_cols(ohw, t, nt, &j0, &j1);
	for (int n = 0; j1 > j0 && n < k->batch; n++)
		for (int gi = 0; gi < g; gi++)
			conv_block(k, k->in[0] + ((size_t)n * c + (size_t)gi * cg) * hw,
				   k->e->fold_w[k->li] + (size_t)gi * og * kk, k->e->fold_b[k->li] + gi * og,
				   k->out + ((size_t)n * l->out_channels + (size_t)gi * og) * ohw, j0, j1);
}

static void fast_conv2d(const struct dds_kcall *k)
{
	dds_pool_run(k->e->pool, conv_job, (void *)k);
}

/* y [rows, n] = act(x [rows, kdim] * w[n, kdim]^T + b), ldx/ldy row strides, b may be NULL. */
struct linear_job {
	const float *x, *w, *b;
	int ldx, rows, kdim, n, ldy;
	enum dds_act act;
	float *y;
};

/* One team member's block of the n output columns. */
static void linear_job(void *arg, int t, int nt)
{
	const struct linear_job *a = arg;
	int j0, j1;

	split_cols(a->n, t, nt, &j0, &j1);
	if (j1 <= j0)
		return;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->rows, j1 - j0, a->kdim, 1.0f, a->x,
		    a->ldx, a->w + (size_t)j0 * a->kdim, a->kdim, 0.0f, a->y + j0, a->ldy);
	for (int r = 0; r < a->rows; r++)
		for (int j = j0; j < j1; j++) {
			float *p = &a->y[(size_t)r * a->ldy + j];
			*p = dds_act_apply(a->act, *p + (a->b ? a->b[j] : 0.0f));
		}
}

static void par_linear(struct dds_pool *pool, struct linear_job job)
{
	dds_pool_run(pool, linear_job, &job);
}

static void fast_linear(const struct dds_kcall *k)
{
	int kdim = k->xs->d[k->xs->ndim - 1], n = k->l->out_features;
	int rows = (int)(dds_shape_numel(k->xs) / (size_t)kdim) * k->batch;
	par_linear(k->e->pool, (struct linear_job){.x = k->in[0], .ldx = kdim, .rows = rows,
						    .kdim = kdim,
						    .w = dds_layer_param(k->l, "weight"),
						    .b = dds_layer_param(k->l, "bias"), .n = n,
						    .act = k->l->act, .y = k->out, .ldy = n});
}

/* In-place max-subtracted softmax of each row of a [rows, n] matrix. */
static void softmax_rows(float *s, int rows, int n)
{
	for (int r = 0; r < rows; r++) {
		float *p = s + (size_t)r * n, mx = p[0], sum = 0;
		for (int j = 1; j < n; j++)
			mx = p[j] > mx ? p[j] : mx;
		for (int j = 0; j < n; j++) {
			p[j] = expf(p[j] - mx);
			sum += p[j];
		}
		for (int j = 0; j < n; j++)
			p[j] /= sum;
	}
}

/* Attention of heads [h0, h1) of one sample; s is this thread's [T,T] score matrix. */
static void attend_heads(const float *qkv, int t, int e, int d, int h0, int h1, float *s,
			 float *att)
{
	for (int h = h0; h < h1; h++) {
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t, t, d, 1.0f / sqrtf((float)d),
			    qkv + h * d, 3 * e, qkv + e + h * d, 3 * e, 0.0f, s, t);
		softmax_rows(s, t, t);
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, t, d, t, 1.0f, s, t,
			    qkv + 2 * e + h * d, 3 * e, 0.0f, att + h * d, e);
	}
}

/* One sample's attention, heads split over the team. */
struct heads_job {
	const float *qkv;
	int t, e, heads;
	float *s, *att;
};

static void heads_job(void *arg, int me, int nt)
{
	const struct heads_job *a = arg;
	int h0 = a->heads * me / nt, h1 = a->heads * (me + 1) / nt;
	attend_heads(a->qkv, a->t, a->e, a->e / a->heads, h0, h1, a->s + (size_t)h0 * a->t * a->t,
		     a->att);
}

/* One sample of self-attention. The workspace holds qkv [T,3E], att [T,E] and one [T,T]
 * score matrix per head. */
static void fast_mha_sample(const struct dds_kcall *k, const float *x, float *y)
{
	const struct dds_layer *l = k->l;
	int t = k->xs->d[0], e = k->xs->d[1];
	float *qkv = k->e->work, *att = qkv + (size_t)t * 3 * e;
	struct heads_job hj = {.qkv = qkv, .t = t, .e = e, .heads = l->heads,
			       .s = att + (size_t)t * e, .att = att};

	par_linear(k->e->pool, (struct linear_job){.x = x, .ldx = e, .rows = t, .kdim = e,
						    .w = dds_layer_param(l, "in_proj_weight"),
						    .b = dds_layer_param(l, "in_proj_bias"),
						    .n = 3 * e, .y = qkv, .ldy = 3 * e});
	dds_pool_run(k->e->pool, heads_job, &hj);
	par_linear(k->e->pool, (struct linear_job){.x = att, .ldx = e, .rows = t, .kdim = e,
						    .w = dds_layer_param(l, "out_proj_weight"),
						    .b = dds_layer_param(l, "out_proj_bias"), .n = e,
						    .y = y, .ldy = e});
}

static void fast_mha(const struct dds_kcall *k)
{
	size_t te = dds_shape_numel(k->xs);
	for (int n = 0; n < k->batch; n++)
		fast_mha_sample(k, k->in[0] + n * te, k->out + n * te);
}

const dds_kernel_fn dds_fast_ops[DDS_OP__COUNT] = {
	[DDS_OP_CONV2D] = fast_conv2d,
	[DDS_OP_LINEAR] = fast_linear,
	[DDS_OP_MHA] = fast_mha,
};
