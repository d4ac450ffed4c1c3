/* partition.c: the partitioner's context, the latency of a split (section 3), the min-cut
 * decision and the baselines. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "part_int.h"

/* Bounds that keep every index an int with room to spare. */
#define PART_MAX_LAYERS (1 << 20)
#define PART_MAX_INPUTS (1 << 22)

int part_errf(struct dds_part_err *err, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -1;
}

int part_inv_r(double r, double *u, struct dds_part_err *err)
{
	if (!(r > 0) || !isfinite(1 / r))
		return part_errf(err, "allocation r must be a positive number (got %g)", r);
	*u = 1 / r;
	return 0;
}

static bool cost_ok(double x)
{
	return isfinite(x) && x >= 0;
}

static int check_costs(const struct dds_part_input *in, struct dds_part_err *err)
{
	for (int k = 0; k < in->n; k++)
		if (!cost_ok(in->a[k]) || !cost_ok(in->w[k]) || !cost_ok(in->d[k]))
			return part_errf(err, "layer %d: costs must be finite and >= 0 (a %g, w %g, d %g)",
					 k, in->a[k], in->w[k], in->d[k]);
	if (!cost_ok(in->d_in) || !cost_ok(in->d_out))
		return part_errf(err, "input/result sizes must be finite and >= 0 (%g, %g)",
				 in->d_in, in->d_out);
	if (!(in->up_bw > 0) || !(in->down_bw > 0))
		return part_errf(err, "bandwidths must be > 0 (uplink %g, downlink %g)", in->up_bw,
				 in->down_bw);
	return 0;
}

int dds_part_input_check(const struct dds_part_input *in, struct dds_part_err *err)
{
	if (!in || !in->in_off || !in->in_val || !in->a || !in->w || !in->d)
		return part_errf(err, "partitioner input: missing array");
	if (in->n < 1 || in->n > PART_MAX_LAYERS)
		return part_errf(err, "partitioner input: %d layers (need 1..%d)", in->n,
				 PART_MAX_LAYERS);
	if (in->output < 0 || in->output >= in->n)
		return part_errf(err, "output layer %d out of range 0..%d", in->output, in->n - 1);
	if (in->in_off[0] != 0 || in->in_off[in->n] > PART_MAX_INPUTS)
		return part_errf(err, "partitioner input: bad input offsets");
	for (int k = 0; k < in->n; k++) {
		if (in->in_off[k + 1] <= in->in_off[k])
			return part_errf(err, "layer %d: no inputs (or offsets not increasing)", k);
		for (int i = in->in_off[k]; i < in->in_off[k + 1]; i++)
			if (in->in_val[i] < 0 || in->in_val[i] > k)
				return part_errf(err, "layer %d: input value %d is not the raw input or "
						      "an earlier layer (topological order)",
						 k, in->in_val[i]);
	}
	return check_costs(in, err);
}

/* Consumers of every value, each layer counted once per value it reads: a counting sort where
 * succ_off (n+3 entries) is shifted by two while counting and by one while placing. */
static void build_succ(struct dds_part_ctx *ctx)
{
	const struct dds_part_input *in = &ctx->in;
	int *pos = ctx->succ_off;
	memset(pos, 0, sizeof(int) * (size_t)(in->n + 3));
	for (int pass = 0; pass < 2; pass++) {
		for (int k = 0; k < in->n; k++)
			for (int i = in->in_off[k]; i < in->in_off[k + 1]; i++) {
				bool dup = false;
				for (int j = in->in_off[k]; j < i; j++)
					dup |= in->in_val[j] == in->in_val[i];
				if (dup)
					continue;
				if (pass == 0)
					pos[in->in_val[i] + 2]++;
				else
					ctx->succ[pos[in->in_val[i] + 1]++] = k;
			}
		if (pass == 0)
			for (int x = 0; x <= in->n; x++)
				pos[x + 2] += pos[x + 1];
	}
}

static void copy_costs(struct dds_part_ctx *ctx, const struct dds_part_input *in)
{
	size_t n = (size_t)in->n;
	memcpy(ctx->a, in->a, sizeof(double) * n);
	memcpy(ctx->w, in->w, sizeof(double) * n);
	memcpy(ctx->d, in->d, sizeof(double) * n);
	ctx->in = *in;
	ctx->in.in_off = ctx->in_off;
	ctx->in.in_val = ctx->in_val;
	ctx->in.a = ctx->a;
	ctx->in.w = ctx->w;
	ctx->in.d = ctx->d;
}

/* Vertices: e, s, out, one per value, one split copy per value with several consumers. */
static void number_vertices(struct dds_part_ctx *ctx)
{
	int n = ctx->in.n;
	ctx->nv = PART_V_VAL + n + 1;
	for (int x = 0; x <= n; x++)
		ctx->split_vertex[x] = ctx->succ_off[x + 1] - ctx->succ_off[x] > 1 ? ctx->nv++ : -1;
}

#define ALLOC(p, count) ((p) = calloc((size_t)(count) + 1, sizeof(*(p)))) == NULL

/* Everything sized by the graph; on failure the caller frees the half-built context. */
static int alloc_graph(struct dds_part_ctx *ctx)
{
	int n = ctx->in.n, e = ctx->n_inputs;
	if (ALLOC(ctx->in_off, n + 1) || ALLOC(ctx->in_val, e) || ALLOC(ctx->a, n) ||
	    ALLOC(ctx->w, n) || ALLOC(ctx->d, n) || ALLOC(ctx->succ_off, n + 3) ||
	    ALLOC(ctx->succ, e) || ALLOC(ctx->split_vertex, n + 1) || ALLOC(ctx->local, n) ||
	    ALLOC(ctx->scratch, n) || ALLOC(ctx->cut, n + 1) || ALLOC(ctx->arc_server, n) ||
	    ALLOC(ctx->arc_local, n))
		return -1;
	return 0;
}

static int alloc_network(struct dds_part_ctx *ctx)
{
	ctx->na = 2 * ctx->ne; /* at most; part_build_arcs sets the count */
	if (ALLOC(ctx->edges, ctx->ne) || ALLOC(ctx->edge_arc, ctx->ne) ||
	    ALLOC(ctx->head, ctx->nv + 1) || ALLOC(ctx->to, ctx->na) || ALLOC(ctx->rev, ctx->na) ||
	    ALLOC(ctx->cap, ctx->na) || ALLOC(ctx->base, ctx->na) || ALLOC(ctx->level, ctx->nv) ||
	    ALLOC(ctx->iter, ctx->nv) || ALLOC(ctx->queue, ctx->nv) || ALLOC(ctx->bfs, ctx->nv) || ALLOC(ctx->count, ctx->nv) || ALLOC(ctx->excess, ctx->nv) ||
	    ALLOC(ctx->active, ctx->nv))
		return -1;
	return 0;
}

int dds_part_ctx_new(const struct dds_part_input *in, struct dds_part_ctx **out,
		     struct dds_part_err *err)
{
	if (dds_part_input_check(in, err))
		return -1;
	struct dds_part_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return part_errf(err, "out of memory");
	ctx->in.n = in->n;
	ctx->n_inputs = in->in_off[in->n];
	if (alloc_graph(ctx))
		goto nomem;
	memcpy(ctx->in_off, in->in_off, sizeof(int) * (size_t)(in->n + 1));
	memcpy(ctx->in_val, in->in_val, sizeof(int) * (size_t)ctx->n_inputs);
	copy_costs(ctx, in);
	build_succ(ctx);
	number_vertices(ctx);
	ctx->ne = part_list_edges(ctx, NULL);
	if (alloc_network(ctx))
		goto nomem;
	part_list_edges(ctx, ctx->edges);
	part_build_arcs(ctx);
	part_set_base(ctx);
	*out = ctx;
	return 0;
nomem:
	dds_part_ctx_free(ctx);
	return part_errf(err, "out of memory for a latency graph of %d layers", in->n);
}

int dds_part_ctx_update(struct dds_part_ctx *ctx, const struct dds_part_input *in,
			struct dds_part_err *err)
{
	if (dds_part_input_check(in, err))
		return -1;
	if (in->n != ctx->in.n || in->output != ctx->in.output ||
	    in->in_off[in->n] != ctx->n_inputs ||
	    memcmp(in->in_off, ctx->in_off, sizeof(int) * (size_t)(in->n + 1)) != 0 ||
	    memcmp(in->in_val, ctx->in_val, sizeof(int) * (size_t)ctx->n_inputs) != 0)
		return part_errf(err, "update: not the same graph (layers, inputs or output differ)");
	copy_costs(ctx, in);
	part_set_base(ctx);
	return 0;
}

void dds_part_ctx_free(struct dds_part_ctx *ctx)
{
	if (!ctx)
		return;
	void *bufs[] = {ctx->in_off, ctx->in_val, ctx->a, ctx->w, ctx->d, ctx->succ_off,
			ctx->succ, ctx->split_vertex, ctx->local, ctx->scratch, ctx->cut,
			ctx->arc_server, ctx->arc_local, ctx->edges, ctx->edge_arc, ctx->head,
			ctx->to, ctx->rev, ctx->cap, ctx->base, ctx->level, ctx->iter,
			ctx->queue, ctx->bfs, ctx->count, ctx->excess, ctx->active};
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		free(bufs[i]);
	free(ctx);
}

int dds_part_ctx_layers(const struct dds_part_ctx *ctx)
{
	return ctx->in.n;
}

double dds_part_last_cut_value(const struct dds_part_ctx *ctx)
{
	return ctx->last_flow;
}

/* Whether value x is on the device (the raw input always is). */
static bool on_device(const uint8_t *local, int x)
{
	return x == 0 || local[x - 1];
}

static bool feeds_server(const struct dds_part_ctx *ctx, const uint8_t *local, int x)
{
	for (int i = ctx->succ_off[x]; i < ctx->succ_off[x + 1]; i++)
		if (!local[ctx->succ[i]])
			return true;
	return false;
}

static double value_bytes(const struct dds_part_input *in, int x)
{
	return x ? in->d[x - 1] : in->d_in;
}

bool part_cost(const struct dds_part_ctx *ctx, const uint8_t *local, double *t_edge,
	       double *t_transfer, double *work)
{
	const struct dds_part_input *in = &ctx->in;
	double te = 0, tt = 0, ws = 0;
	bool valid = true;
	for (int k = 0; k < in->n; k++) {
		if (local[k])
			te += in->a[k];
		else
			ws += in->w[k];
		for (int i = in->in_off[k]; i < in->in_off[k + 1]; i++)
			valid &= !local[k] || on_device(local, in->in_val[i]);
	}
	for (int x = 0; x <= in->n; x++)
		if (on_device(local, x) && feeds_server(ctx, local, x))
			tt += value_bytes(in, x) / in->up_bw;
	if (!local[in->output])
		tt += in->d_out / in->down_bw;
	*t_edge = te;
	*t_transfer = tt;
	*work = ws;
	return valid;
}

void part_fill(struct dds_part_ctx *ctx, const uint8_t *local, double r,
	       struct dds_part_result *res)
{
	const struct dds_part_input *in = &ctx->in;
	struct dds_part_split *sp = &res->split;
	int n_local = 0, n_cut = 0;
	for (int k = 0; k < in->n; k++)
		n_local += ctx->local[k] = local[k] != 0;
	for (int x = 0; x <= in->n; x++)
		if (on_device(ctx->local, x) && feeds_server(ctx, ctx->local, x))
			ctx->cut[n_cut++] = x;
	part_cost(ctx, ctx->local, &sp->t_edge, &sp->t_transfer, &sp->server_work);
	sp->local = ctx->local;
	sp->n_local = n_local;
	sp->cut = ctx->cut;
	sp->n_cut = n_cut;
	sp->download = !ctx->local[in->output];
	res->r = r;
	res->t_server = sp->server_work > 0 ? sp->server_work / r : 0;
	res->total = sp->t_edge + sp->t_transfer + res->t_server;
}

int dds_part_solve(struct dds_part_ctx *ctx, double r, struct dds_part_result *res,
		   struct dds_part_err *err)
{
	double u;
	if (part_inv_r(r, &u, err) || part_min_cut(ctx, u, err))
		return -1;
	part_fill(ctx, ctx->local, r, res);
	return 0;
}

int dds_part_eval(struct dds_part_ctx *ctx, const uint8_t *local, double r,
		  struct dds_part_result *res, struct dds_part_err *err)
{
	double u, te, tt, ws;
	if (part_inv_r(r, &u, err))
		return -1;
	for (int k = 0; k < ctx->in.n; k++)
		ctx->scratch[k] = local[k] != 0;
	if (!part_cost(ctx, ctx->scratch, &te, &tt, &ws))
		return part_errf(err, "split is not valid: a layer on the server feeds a local one");
	part_fill(ctx, ctx->scratch, r, res);
	return 0;
}

int dds_part_edge_only(struct dds_part_ctx *ctx, double r, struct dds_part_result *res,
		       struct dds_part_err *err)
{
	memset(ctx->scratch, 1, (size_t)ctx->in.n);
	return dds_part_eval(ctx, ctx->scratch, r, res, err);
}

int dds_part_server_only(struct dds_part_ctx *ctx, double r, struct dds_part_result *res,
			 struct dds_part_err *err)
{
	memset(ctx->scratch, 0, (size_t)ctx->in.n);
	return dds_part_eval(ctx, ctx->scratch, r, res, err);
}

int dds_part_dads(struct dds_part_ctx *ctx, double r, struct dds_part_result *res,
		  struct dds_part_err *err)
{
	return dds_part_solve(ctx, r, res, err);
}

int dds_part_neurosurgeon(struct dds_part_ctx *ctx, double r, struct dds_part_result *res,
			  struct dds_part_err *err)
{
	double u, best = INFINITY;
	int best_k = 0;
	if (part_inv_r(r, &u, err))
		return -1;
	memset(ctx->scratch, 0, (size_t)ctx->in.n);
	for (int k = 0; k <= ctx->in.n; k++) {
		double te, tt, ws;
		if (k > 0)
			ctx->scratch[k - 1] = 1;
		part_cost(ctx, ctx->scratch, &te, &tt, &ws);
		double t = te + tt + (ws > 0 ? ws * u : 0);
		if (t < best) {
			best = t;
			best_k = k;
		}
	}
	for (int k = 0; k < ctx->in.n; k++)
		ctx->scratch[k] = k < best_k;
	part_fill(ctx, ctx->scratch, r, res);
	return 0;
}
