/* part_int.h: the partitioner's internals shared by its files (context layout, latency graph). */
#ifndef DDS_PART_INT_H
#define DDS_PART_INT_H

#include "dds_partition.h"

/* Vertices of the latency graph (dds-model.md section 4). */
enum {
	PART_V_E = 0,   /* source: the device */
	PART_V_S = 1,   /* sink: the server */
	PART_V_OUT = 2, /* the result, paid for when the output layer is on the server */
	PART_V_VAL = 3, /* + x: value x (x = 0 the raw input "in", x = k+1 layer k) */
};

/* What an edge's capacity is made of. */
enum part_kind {
	PART_K_SERVER, /* e -> layer: w_v / r, cut iff the layer is on the server */
	PART_K_LOCAL,  /* layer -> s: a_v, cut iff the layer is local */
	PART_K_DATA,   /* producer -> consumer or split copy: d_x / up_bw */
	PART_K_DOWN,   /* e -> out: d_out / down_bw */
	PART_K_INF,    /* never cut by a finite cut */
};

struct part_edge {
	int from, to;
	enum part_kind kind;
	int idx;       /* layer (SERVER, LOCAL) or value (DATA) */
	bool reverse;  /* INF edge that is the reverse of the edge before it: in the residual
			* network it is that edge's reverse arc, made infinite */
};

struct dds_part_ctx {
	/* A copy of the input (the struct's pointers point at the arrays below). */
	struct dds_part_input in;
	int *in_off, *in_val;
	double *a, *w, *d;
	int n_inputs; /* in_off[n] */

	/* Consumers of each value x in 0..n: layers succ[succ_off[x]..succ_off[x+1]). */
	int *succ_off, *succ;

	/* The latency graph: canonical edges, then the residual network as arc pairs (arc i and
	 * rev[i]) in CSR order by tail vertex. */
	int nv, ne, na;
	struct part_edge *edges;
	int *split_vertex; /* per value: its split copy's vertex, or -1 */
	int *head;         /* nv+1 offsets into the arcs */
	int *to, *rev;
	double *cap, *base; /* residual capacities, and their value at the start of a solve */
	int *edge_arc;     /* per edge: its forward arc */
	int *arc_server, *arc_local; /* per layer: its e -> v and v -> s arcs */
	double fixed_sum;  /* sum of the finite capacities that do not depend on r */
	double work_sum;   /* sum of w_v */

	/* Max-flow scratch. */
	int *level, *iter, *queue, *bfs; /* labels, current arcs, active FIFO, BFS queue */
	int *count; /* vertices per label below nv */
	double *excess;
	uint8_t *active;
	int q_head, q_tail, q_count, relabels;
	double last_flow;

	/* Result buffers. */
	uint8_t *local, *scratch;
	int *cut;
};

int part_errf(struct dds_part_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* latgraph.c: list the edges of the latency graph (out may be NULL to count them); returns the
 * count. */
int part_list_edges(const struct dds_part_ctx *ctx, struct part_edge *out);

/* latgraph.c: capacity of an edge at u = 1/r (DDS_PART_INF for infinite edges). */
double part_edge_cap(const struct dds_part_ctx *ctx, const struct part_edge *e, double u);

/* latgraph.c: build the residual network's structure from ctx->edges. The raw input's vertex is
 * merged into e (it is always on the device) and an edge marked reverse shares its partner's
 * arc pair: the residual network is smaller than the dumped latency graph, with the same cuts. */
void part_build_arcs(struct dds_part_ctx *ctx);

/* latgraph.c: reset base capacities after the costs changed. */
void part_set_base(struct dds_part_ctx *ctx);

/* maxflow.c: max-flow from e to s at u = 1/r; fills ctx->local with the source side.
 * Returns 0, or -1 with err when the capacities would reach DDS_PART_INF. */
int part_min_cut(struct dds_part_ctx *ctx, double u, struct dds_part_err *err);

/* partition.c: u = 1/r for a valid r (> 0, not NaN); -1 with err otherwise. */
int part_inv_r(double r, double *u, struct dds_part_err *err);

/* partition.c: fill res for ctx->local at u (the split must be valid); split's pointers are
 * ctx's buffers. */
void part_fill(struct dds_part_ctx *ctx, const uint8_t *local, double u,
	       struct dds_part_result *res);

/* partition.c: T_e, T_t and W of a split, and whether it is valid. */
bool part_cost(const struct dds_part_ctx *ctx, const uint8_t *local, double *t_edge,
	       double *t_transfer, double *work);

#endif
