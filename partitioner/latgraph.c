/* latgraph.c: the latency graph of dds-model.md section 4, its residual network and its dump. */
#include <string.h>

#include "part_int.h"

static void put(struct part_edge *out, int *k, int from, int to, enum part_kind kind, int idx)
{
	if (out)
		out[*k] = (struct part_edge){.from = from, .to = to, .kind = kind, .idx = idx};
	(*k)++;
}

/* The infinite reverse of the edge just listed. */
static void put_reverse(struct part_edge *out, int *k)
{
	if (out)
		out[*k] = (struct part_edge){.from = out[*k - 1].to, .to = out[*k - 1].from,
					     .kind = PART_K_INF, .reverse = true};
	(*k)++;
}

/* Data edges of value x: one edge to a single consumer, or through the split copy when there are
 * several (so the tensor is paid once), and an infinite reverse edge from every consumer back to
 * the producer (a cut that sends data back to the device costs infinity). */
static void list_data(const struct dds_part_ctx *ctx, int x, struct part_edge *out, int *k)
{
	int lo = ctx->succ_off[x], hi = ctx->succ_off[x + 1];
	int px = PART_V_VAL + x;
	if (hi - lo == 1) {
		put(out, k, px, PART_V_VAL + ctx->succ[lo] + 1, PART_K_DATA, x);
		put_reverse(out, k);
	} else if (hi - lo > 1) {
		put(out, k, px, ctx->split_vertex[x], PART_K_DATA, x);
		for (int i = lo; i < hi; i++)
			put(out, k, ctx->split_vertex[x], PART_V_VAL + ctx->succ[i] + 1, PART_K_INF, 0);
		for (int i = lo; i < hi; i++)
			put(out, k, PART_V_VAL + ctx->succ[i] + 1, px, PART_K_INF, 0);
	}
}

int part_list_edges(const struct dds_part_ctx *ctx, struct part_edge *out)
{
	int k = 0, n = ctx->in.n;
	for (int v = 0; v < n; v++) {
		put(out, &k, PART_V_E, PART_V_VAL + v + 1, PART_K_SERVER, v);
		put(out, &k, PART_V_VAL + v + 1, PART_V_S, PART_K_LOCAL, v);
	}
	put(out, &k, PART_V_E, PART_V_VAL, PART_K_INF, 0); /* the raw input is on the device */
	put(out, &k, PART_V_E, PART_V_OUT, PART_K_DOWN, 0);
	put(out, &k, PART_V_OUT, PART_V_VAL + ctx->in.output + 1, PART_K_INF, 0);
	for (int x = 0; x <= n; x++)
		list_data(ctx, x, out, &k);
	return k;
}

double part_edge_cap(const struct dds_part_ctx *ctx, const struct part_edge *e, double u)
{
	const struct dds_part_input *in = &ctx->in;
	switch (e->kind) {
	case PART_K_SERVER:
		return in->w[e->idx] > 0 ? in->w[e->idx] * u : 0;
	case PART_K_LOCAL:
		return in->a[e->idx];
	case PART_K_DATA:
		return (e->idx ? in->d[e->idx - 1] : in->d_in) / in->up_bw;
	case PART_K_DOWN:
		return in->d_out / in->down_bw;
	case PART_K_INF:
		break;
	}
	return DDS_PART_INF;
}

/* The raw input's vertex is e in the residual network. */
static int net_vertex(int v)
{
	return v == PART_V_VAL ? PART_V_E : v;
}

/* Whether edge i gets an arc pair of its own (not e -> in, not a merged reverse). */
static bool own_arcs(const struct part_edge *e)
{
	return !e->reverse && net_vertex(e->from) != net_vertex(e->to);
}

void part_build_arcs(struct dds_part_ctx *ctx)
{
	int *pos = ctx->iter;
	memset(pos, 0, sizeof(int) * (size_t)ctx->nv);
	for (int i = 0; i < ctx->ne; i++) {
		if (!own_arcs(&ctx->edges[i]))
			continue;
		pos[net_vertex(ctx->edges[i].from)]++;
		pos[net_vertex(ctx->edges[i].to)]++;
	}
	ctx->head[0] = 0;
	for (int v = 0; v < ctx->nv; v++) {
		ctx->head[v + 1] = ctx->head[v] + pos[v];
		pos[v] = ctx->head[v];
	}
	ctx->na = ctx->head[ctx->nv];
	for (int i = 0; i < ctx->ne; i++) {
		const struct part_edge *e = &ctx->edges[i];
		if (e->reverse) {
			ctx->edge_arc[i] = ctx->rev[ctx->edge_arc[i - 1]];
			continue;
		}
		if (!own_arcs(e)) {
			ctx->edge_arc[i] = -1;
			continue;
		}
		int from = net_vertex(e->from), to = net_vertex(e->to);
		int fwd = pos[from]++, bwd = pos[to]++;
		ctx->to[fwd] = to;
		ctx->to[bwd] = from;
		ctx->rev[fwd] = bwd;
		ctx->rev[bwd] = fwd;
		ctx->edge_arc[i] = fwd;
		if (e->kind == PART_K_SERVER)
			ctx->arc_server[e->idx] = fwd;
		else if (e->kind == PART_K_LOCAL)
			ctx->arc_local[e->idx] = fwd;
	}
}

void part_set_base(struct dds_part_ctx *ctx)
{
	ctx->fixed_sum = 0;
	ctx->work_sum = 0;
	for (int i = 0; i < ctx->ne; i++) {
		const struct part_edge *e = &ctx->edges[i];
		int arc = ctx->edge_arc[i];
		double c = e->kind == PART_K_SERVER ? 0 : part_edge_cap(ctx, e, 0);
		if (e->kind != PART_K_INF)
			ctx->fixed_sum += c;
		if (arc < 0)
			continue;
		/* Terminal arcs get their capacity at each solve (they depend on r). */
		ctx->base[arc] = e->kind == PART_K_LOCAL ? 0 : c;
		if (!e->reverse)
			ctx->base[ctx->rev[arc]] = 0;
	}
	for (int v = 0; v < ctx->in.n; v++)
		ctx->work_sum += ctx->in.w[v];
}

static void vertex_name(const struct dds_part_ctx *ctx, int v, char *buf, size_t len)
{
	static const char *const fixed[] = {"e", "s", "out", "in"};
	int n = ctx->in.n;
	if (v <= PART_V_VAL) {
		snprintf(buf, len, "%s", fixed[v]);
	} else if (v <= PART_V_VAL + n) {
		snprintf(buf, len, "L%d", v - PART_V_VAL - 1);
	} else {
		for (int x = 0; x <= n; x++)
			if (ctx->split_vertex[x] == v)
				snprintf(buf, len, "S%d", x);
	}
}

int dds_part_write_graph(const struct dds_part_ctx *ctx, double r, FILE *f,
			 struct dds_part_err *err)
{
	double u;
	if (part_inv_r(r, &u, err))
		return -1;
	for (int i = 0; i < ctx->ne; i++) {
		const struct part_edge *e = &ctx->edges[i];
		char from[24], to[24];
		vertex_name(ctx, e->from, from, sizeof(from));
		vertex_name(ctx, e->to, to, sizeof(to));
		if (e->kind == PART_K_INF)
			fprintf(f, "%s %s inf\n", from, to);
		else
			fprintf(f, "%s %s %.17g\n", from, to, part_edge_cap(ctx, e, u));
	}
	return ferror(f) ? part_errf(err, "cannot write the latency graph") : 0;
}
