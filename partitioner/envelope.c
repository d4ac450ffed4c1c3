/* envelope.c: the exact lower envelope T*(r) of all splits' latencies and its O(log n) lookup.
 *
 * Each split k is a line T_k(u) = A_k + W_k u in u = 1/r. The envelope is found with a few
 * min-cuts: take the optimal lines at u = 0 and at a u past every breakpoint, intersect two
 * lines, min-cut at the intersection; a line strictly below both splits the interval in two
 * (recurse), otherwise the two lines meet on the envelope there. A final lower-hull pass keeps
 * exactly the lines that are optimal somewhere, sorted, so the result is clean whatever order
 * the lines were found in. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "part_int.h"

/* Relative tolerance for "the min-cut at the intersection is not below the two lines". */
#define ENV_TOL 1e-12

struct line {
	double a, w;
	int mask; /* index of its split in the builder's masks */
};

struct builder {
	struct dds_part_ctx *ctx;
	struct line *lines;
	uint8_t *masks; /* limit * n bytes */
	int count, limit;
};

struct dds_part_envelope {
	int n, m;
	double *brk;   /* m - 1 breakpoints in r, ascending: piece i is optimal on [brk[i-1], brk[i]) */
	struct dds_part_piece *pieces;
	uint8_t *masks;
	int *cuts;
};

/* Min-cut at u and record its line. Returns the line's index, or -1 with err. */
static int add_line(struct builder *b, double u, struct dds_part_err *err)
{
	struct dds_part_ctx *ctx = b->ctx;
	int n = ctx->in.n;
	double te, tt, ws;
	if (b->count == b->limit)
		return part_errf(err, "envelope: more than %d lines (numerical trouble)", b->limit);
	if (part_min_cut(ctx, u, err))
		return -1;
	part_cost(ctx, ctx->local, &te, &tt, &ws);
	memcpy(b->masks + (size_t)b->count * (size_t)n, ctx->local, (size_t)n);
	b->lines[b->count] = (struct line){.a = te + tt, .w = ws, .mask = b->count};
	return b->count++;
}

/* Find every envelope line strictly between lines i (smaller u, larger W) and j. */
static int refine(struct builder *b, int i, int j, struct dds_part_err *err)
{
	struct line l1 = b->lines[i], l2 = b->lines[j];
	if (!(l1.w > l2.w))
		return 0;
	double u = (l2.a - l1.a) / (l1.w - l2.w);
	if (!(u > 0) || !isfinite(u))
		return 0;
	double t = l1.a + l1.w * u;
	int k = add_line(b, u, err);
	if (k < 0)
		return -1;
	if (b->lines[k].a + b->lines[k].w * u >= t - ENV_TOL * fabs(t))
		return 0;
	return refine(b, i, k, err) || refine(b, k, j, err) ? -1 : 0;
}

/* A u beyond every breakpoint: breakpoints are dA / dW with dA <= the sum of all finite
 * r-independent capacities and dW >= the smallest positive w (optimal splits are nested). */
static double u_beyond(const struct dds_part_ctx *ctx)
{
	double wmin = INFINITY;
	for (int k = 0; k < ctx->in.n; k++)
		if (ctx->in.w[k] > 0 && ctx->in.w[k] < wmin)
			wmin = ctx->in.w[k];
	if (!isfinite(wmin))
		return 0;
	return (2 * ctx->fixed_sum + 1e-300) / wmin + 1 / wmin;
}

static int by_slope(const void *pa, const void *pb)
{
	const struct line *x = pa, *y = pb;
	if (x->w != y->w)
		return x->w > y->w ? -1 : 1;
	return (x->a > y->a) - (x->a < y->a);
}

/* u where line y (smaller W) becomes better than line x. */
static double cross(const struct line *x, const struct line *y)
{
	return (y->a - x->a) / (x->w - y->w);
}

/* Lower hull over u >= 0 of lines sorted by decreasing slope; returns the kept count. */
static int lower_hull(struct line *l, int count)
{
	int m = 0;
	for (int i = 0; i < count; i++) {
		if (m > 0 && l[m - 1].w == l[i].w)
			continue; /* same slope, larger or equal A */
		while (m >= 2 && cross(&l[m - 2], &l[i]) <= cross(&l[m - 2], &l[m - 1]))
			m--;
		l[m++] = l[i];
	}
	int first = 0;
	while (first + 1 < m && cross(&l[first], &l[first + 1]) <= 0)
		first++;
	memmove(l, l + first, sizeof(*l) * (size_t)(m - first));
	return m - first;
}

static struct dds_part_envelope *env_alloc(int n, int m)
{
	struct dds_part_envelope *env = calloc(1, sizeof(*env));
	if (!env)
		return NULL;
	env->n = n;
	env->m = m;
	env->brk = calloc((size_t)m, sizeof(double));
	env->pieces = calloc((size_t)m, sizeof(*env->pieces));
	env->masks = calloc((size_t)m * (size_t)n, 1);
	env->cuts = calloc((size_t)m * (size_t)(n + 1), sizeof(int));
	if (!env->brk || !env->pieces || !env->masks || !env->cuts) {
		dds_part_envelope_free(env);
		return NULL;
	}
	return env;
}

/* Piece p (r ascending) is hull line j = m-1-p (u ascending). */
static void set_piece(struct dds_part_envelope *env, struct builder *b, const struct line *hull,
		      int p)
{
	struct dds_part_ctx *ctx = b->ctx;
	int n = env->n, m = env->m, j = m - 1 - p;
	struct dds_part_result res;
	struct dds_part_piece *pc = &env->pieces[p];
	uint8_t *mask = env->masks + (size_t)p * (size_t)n;
	int *cut = env->cuts + (size_t)p * (size_t)(n + 1);
	part_fill(ctx, b->masks + (size_t)hull[j].mask * (size_t)n, INFINITY, &res);
	memcpy(mask, res.split.local, (size_t)n);
	memcpy(cut, res.split.cut, sizeof(int) * (size_t)res.split.n_cut);
	pc->id = p;
	pc->split = res.split;
	pc->split.local = mask;
	pc->split.cut = cut;
	pc->a = res.split.t_edge + res.split.t_transfer;
	pc->w = res.split.server_work;
	pc->r_lo = j == m - 1 ? 0 : 1 / cross(&hull[j], &hull[j + 1]);
	pc->r_hi = j == 0 ? INFINITY : 1 / cross(&hull[j - 1], &hull[j]);
	if (p < m - 1)
		env->brk[p] = pc->r_hi;
}

static int build_lines(struct builder *b, struct dds_part_err *err)
{
	double u_hi = u_beyond(b->ctx);
	int lo = add_line(b, 0, err);
	if (lo < 0)
		return -1;
	if (u_hi == 0)
		return 0; /* no server work anywhere: T does not depend on r */
	int hi = add_line(b, u_hi, err);
	return hi < 0 ? -1 : refine(b, lo, hi, err);
}

int dds_part_envelope_new(struct dds_part_ctx *ctx, struct dds_part_envelope **out,
			  struct dds_part_err *err)
{
	int n = ctx->in.n;
	struct builder b = {.ctx = ctx, .limit = 4 * (n + 2) + 8};
	struct dds_part_envelope *env = NULL;
	b.lines = calloc((size_t)b.limit, sizeof(*b.lines));
	b.masks = calloc((size_t)b.limit, (size_t)n);
	if (!b.lines || !b.masks) {
		part_errf(err, "out of memory for the envelope");
		goto done;
	}
	if (build_lines(&b, err))
		goto done;
	qsort(b.lines, (size_t)b.count, sizeof(*b.lines), by_slope);
	int m = lower_hull(b.lines, b.count);
	env = env_alloc(n, m);
	if (!env) {
		part_errf(err, "out of memory for the envelope");
		goto done;
	}
	for (int p = 0; p < m; p++)
		set_piece(env, &b, b.lines, p);
	*out = env;
done:
	free(b.lines);
	free(b.masks);
	return env ? 0 : -1;
}

void dds_part_envelope_free(struct dds_part_envelope *env)
{
	if (!env)
		return;
	free(env->brk);
	free(env->pieces);
	free(env->masks);
	free(env->cuts);
	free(env);
}

int dds_part_envelope_count(const struct dds_part_envelope *env)
{
	return env->m;
}

const struct dds_part_piece *dds_part_envelope_piece(const struct dds_part_envelope *env, int i)
{
	return i >= 0 && i < env->m ? &env->pieces[i] : NULL;
}

/* Branch-free binary search: the number of breakpoints <= r is the piece's index. */
const struct dds_part_piece *dds_part_envelope_lookup(const struct dds_part_envelope *env,
						      double r)
{
	const double *b = env->brk;
	size_t len = (size_t)env->m - 1;
	if (len == 0)
		return &env->pieces[0];
	while (len > 1) {
		size_t half = len / 2;
		b = b[half] <= r ? b + half : b;
		len -= half;
	}
	return &env->pieces[(b - env->brk) + (*b <= r)];
}

double dds_part_piece_latency(const struct dds_part_piece *p, double r)
{
	return p->w > 0 ? p->a + p->w / r : p->a;
}
