/* maxflow.c: the exact min-cut of the latency graph by push-relabel (FIFO, global relabelling,
 * gap heuristic), stopping after the preflow phase, which is all a minimum cut needs; allocates
 * nothing. */
#include <string.h>

#include "part_int.h"

/* Distances to s in the residual graph by a backward BFS; nv for vertices that cannot reach s. */
static void label_by_distance(struct dds_part_ctx *ctx)
{
	int *label = ctx->level, *queue = ctx->bfs, qh = 0, qt = 0, nv = ctx->nv;
	for (int v = 0; v < nv; v++)
		label[v] = nv;
	label[PART_V_S] = 0;
	queue[qt++] = PART_V_S;
	while (qh < qt) {
		int t = queue[qh++];
		for (int b = ctx->head[t]; b < ctx->head[t + 1]; b++) {
			int v = ctx->to[b];
			if (label[v] == nv && ctx->cap[ctx->rev[b]] > 0) {
				label[v] = label[t] + 1;
				queue[qt++] = v;
			}
		}
	}
	memset(ctx->count, 0, sizeof(int) * (size_t)nv);
	for (int i = 0; i < qt; i++)
		ctx->count[label[queue[i]]]++;
}

/* Gap: no vertex is left at label g < nv, so none above it can reach s: they drop out. */
static void gap(struct dds_part_ctx *ctx, int g)
{
	for (int v = 0; v < ctx->nv; v++)
		if (ctx->level[v] > g && ctx->level[v] < ctx->nv) {
			ctx->count[ctx->level[v]]--;
			ctx->level[v] = ctx->nv;
		}
}

/* Vertices that may hold excess and still reach s go through a FIFO (ring of nv entries; a
 * vertex is in it at most once). */
static void activate(struct dds_part_ctx *ctx, int v)
{
	if (ctx->active[v] || v == PART_V_S || v == PART_V_E || ctx->level[v] >= ctx->nv)
		return;
	ctx->active[v] = 1;
	ctx->queue[ctx->q_tail] = v;
	ctx->q_tail = ctx->q_tail + 1 == ctx->nv ? 0 : ctx->q_tail + 1;
	ctx->q_count++;
}

static int next_active(struct dds_part_ctx *ctx)
{
	int v = ctx->queue[ctx->q_head];
	ctx->q_head = ctx->q_head + 1 == ctx->nv ? 0 : ctx->q_head + 1;
	ctx->q_count--;
	ctx->active[v] = 0;
	return v;
}

/* Move d along arc a. Pushing a vertex's whole excess leaves exactly 0 behind, and pushing an
 * arc's whole residual capacity leaves exactly 0 in it: no flow is lost to rounding. */
static void push(struct dds_part_ctx *ctx, int v, int a, double d)
{
	int t = ctx->to[a];
	ctx->cap[a] -= d;
	ctx->cap[ctx->rev[a]] += d;
	ctx->excess[v] -= d;
	ctx->excess[t] += d;
	activate(ctx, t);
}

/* Called only for labels below nv; a label reaching nv or more leaves the count. */
static void relabel(struct dds_part_ctx *ctx, int v)
{
	int low = 2 * ctx->nv, old = ctx->level[v];
	for (int a = ctx->head[v]; a < ctx->head[v + 1]; a++)
		if (ctx->cap[a] > 0 && ctx->level[ctx->to[a]] < low)
			low = ctx->level[ctx->to[a]];
	ctx->level[v] = low + 1;
	ctx->iter[v] = ctx->head[v];
	ctx->relabels++;
	if (low + 1 < ctx->nv)
		ctx->count[low + 1]++;
	if (--ctx->count[old] == 0)
		gap(ctx, old);
}

/* Push v's excess down admissible arcs, relabelling when none is left, until the excess is gone
 * or v can no longer reach s (label >= nv: its excess cannot change the cut). */
static void discharge(struct dds_part_ctx *ctx, int v)
{
	int *label = ctx->level;
	while (ctx->excess[v] > 0 && label[v] < ctx->nv) {
		int a = ctx->iter[v];
		if (a == ctx->head[v + 1]) {
			relabel(ctx, v);
			continue;
		}
		if (ctx->cap[a] > 0 && label[v] == label[ctx->to[a]] + 1) {
			double e = ctx->excess[v], c = ctx->cap[a];
			push(ctx, v, a, e < c ? e : c);
			if (e < c)
				break;
		}
		ctx->iter[v]++;
	}
}

/* Terminal capacities at u: of e -> v (w_v u) and v -> s (a_v) only the difference matters, the
 * smaller one is paid either way; returns the sum of those constants. */
static double set_caps(struct dds_part_ctx *ctx, double u)
{
	double k = 0;
	memcpy(ctx->cap, ctx->base, sizeof(double) * (size_t)ctx->na);
	for (int v = 0; v < ctx->in.n; v++) {
		double ts = ctx->in.w[v] > 0 ? ctx->in.w[v] * u : 0, tl = ctx->in.a[v];
		double m = ts < tl ? ts : tl;
		k += m;
		ctx->cap[ctx->arc_server[v]] = ts - m;
		ctx->cap[ctx->arc_local[v]] = tl - m;
	}
	return k;
}

/* Exact labels (distance to s) for every vertex; those that cannot reach s any more drop out.
 * Done at the start and again after every nv relabels, which keeps excess that cannot reach s
 * from climbing the labels one step at a time. */
static void global_relabel(struct dds_part_ctx *ctx)
{
	label_by_distance(ctx);
	if (ctx->level[PART_V_E] < ctx->nv)
		ctx->count[ctx->level[PART_V_E]]--;
	ctx->level[PART_V_E] = ctx->nv; /* the source's label: no path from e to s survives */
	memcpy(ctx->iter, ctx->head, sizeof(int) * (size_t)ctx->nv);
	ctx->relabels = 0;
}

int part_min_cut(struct dds_part_ctx *ctx, double u, struct dds_part_err *err)
{
	double sum = ctx->fixed_sum + (ctx->work_sum > 0 ? ctx->work_sum * u : 0);
	if (!(sum * 4 < DDS_PART_INF))
		return part_errf(err, "latency graph capacities sum to %g at u = 1/r = %g, over the "
				      "limit %g/4: costs too large or allocation too small",
				 sum, u, DDS_PART_INF);
	double k = set_caps(ctx, u);
	memset(ctx->excess, 0, sizeof(double) * (size_t)ctx->nv);
	memset(ctx->active, 0, (size_t)ctx->nv);
	global_relabel(ctx);
	ctx->q_head = ctx->q_tail = ctx->q_count = 0;
	/* Every arc out of e is finite (the raw input's vertex is e itself): saturate them all. */
	for (int a = ctx->head[PART_V_E]; a < ctx->head[PART_V_E + 1]; a++)
		if (ctx->cap[a] > 0)
			push(ctx, PART_V_E, a, ctx->cap[a]);
	while (ctx->q_count > 0) {
		if (ctx->relabels >= ctx->nv)
			global_relabel(ctx);
		discharge(ctx, next_active(ctx));
	}
	ctx->last_flow = k + ctx->excess[PART_V_S];
	/* The sink side of a minimum cut: whatever can still reach s. */
	label_by_distance(ctx);
	for (int v = 0; v < ctx->in.n; v++)
		ctx->local[v] = ctx->level[PART_V_VAL + v + 1] >= ctx->nv;
	return 0;
}
