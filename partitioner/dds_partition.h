/* dds_partition.h: where a device splits its DNN: the latency graph, an exact min-cut, the whole
 * T*(r) envelope and the baselines (docs/partitioner.md, design dds-model.md sections 3 and 4).
 *
 * Plain C with no dependency beyond libc and libm, so the device agent can use it on phones and
 * boards. A model file becomes a struct dds_part_input through dds_part_model.h.
 *
 * Values are numbered as in the model graph: value 0 is the raw input, value k+1 is the output of
 * layer k. Layers are in a topological order (every input of layer k is a value <= k).
 *
 * Units are the caller's, as long as they agree: with times in seconds, bytes and bytes/s,
 * server work w in FLOP and r in FLOP/s, every latency below is in seconds.
 *
 * Ownership: a context owns a copy of its input; results point into the context (or into an
 * envelope) and stay valid until the next call on it. A decision (dds_part_solve, the envelope
 * lookup) allocates nothing. Functions that can fail return 0 or -1 and fill a struct
 * dds_part_err; on failure their outputs are unchanged.
 */
#ifndef DDS_PARTITION_H
#define DDS_PARTITION_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Capacity used for "infinite" edges; every finite capacity sum must stay below a quarter of it
 * (checked: larger inputs are refused with an error). */
#define DDS_PART_INF 1e30

struct dds_part_err {
	char msg[256];
};

/* The problem: a DAG of n layers and one device profile (dds-model.md section 3). */
struct dds_part_input {
	int n;              /* layers, >= 1 */
	const int *in_off;  /* n+1 offsets into in_val: inputs of layer k are in_val[in_off[k]..in_off[k+1]) */
	const int *in_val;  /* value ids: 0 = raw input, j+1 = layer j (j < k) */
	const double *a;    /* a_v: local time of each layer on the device, >= 0 */
	const double *w;    /* w_v: server work of each layer (T_s = sum w_v / r), >= 0 */
	const double *d;    /* d_v: bytes of each layer's output tensor, >= 0 */
	double d_in;        /* bytes of the raw input */
	double d_out;       /* bytes of the result, sent back iff the output layer runs on the server */
	int output;         /* layer index of the result */
	double up_bw;       /* uplink bandwidth, bytes per time unit, > 0 */
	double down_bw;     /* downlink bandwidth, > 0 */
};

/* A partition and the parts of its latency that do not depend on r. */
struct dds_part_split {
	const uint8_t *local; /* n bytes: 1 = the layer runs on the device (V_E) */
	int n_local;
	const int *cut;       /* value ids uploaded (the tensors that cross the cut), ascending */
	int n_cut;
	bool download;        /* the output layer is on the server: the result is sent back */
	double t_edge;        /* T_e = sum of a_v over V_E */
	double t_transfer;    /* T_t: uploads (each tensor once) plus the result download */
	double server_work;   /* W_s = sum of w_v over V_S */
};

/* The latency of a split at one allocation r. */
struct dds_part_result {
	struct dds_part_split split;
	double r;
	double t_server; /* W_s / r (0 when W_s = 0, even at r = 0) */
	double total;    /* T_e + T_t + T_s */
};

/* One piece of the envelope: the split that is optimal for r in [r_lo, r_hi). */
struct dds_part_piece {
	int id;       /* index of the piece, 0 = smallest r */
	double r_lo;  /* 0 for the first piece */
	double r_hi;  /* INFINITY for the last piece */
	double a;     /* A_k = T_e + T_t */
	double w;     /* W_k = server work: T(r) = a + w / r on the piece */
	struct dds_part_split split;
};

struct dds_part_ctx;
struct dds_part_envelope;

/* Check an input: sizes, topological order, costs finite and >= 0, bandwidths > 0.
 * Returns 0, or -1 with err saying what is wrong (naming the layer). */
int dds_part_input_check(const struct dds_part_input *in, struct dds_part_err *err);

/* Make a context for a graph: copies the input, builds the latency graph's structure and
 * preallocates every buffer a decision needs. Returns 0 and *out, or -1 with err. */
int dds_part_ctx_new(const struct dds_part_input *in, struct dds_part_ctx **out,
		     struct dds_part_err *err);

/* New costs (a, w, d, sizes, bandwidths) for the same graph (same n, output and inputs); allocates
 * nothing. Returns 0, or -1 with err and the context unchanged. */
int dds_part_ctx_update(struct dds_part_ctx *ctx, const struct dds_part_input *in,
			struct dds_part_err *err);

void dds_part_ctx_free(struct dds_part_ctx *ctx);

int dds_part_ctx_layers(const struct dds_part_ctx *ctx);

/* The optimal split at allocation r > 0 (INFINITY allowed: a free server) by an exact min-cut
 * (push-relabel max-flow) on the latency graph. Returns 0, or -1 with err (bad r, costs too large). */
int dds_part_solve(struct dds_part_ctx *ctx, double r, struct dds_part_result *res,
		   struct dds_part_err *err);

/* The value of the last min-cut computed by dds_part_solve (the max-flow), for cross-checks. */
double dds_part_last_cut_value(const struct dds_part_ctx *ctx);

/* The latency of a given split (local: n bytes, non-zero = on the device) at r, by the formulas
 * of section 3. Returns 0, or -1 with err if the split is not valid (a server layer feeds a
 * local one) or r is bad. */
int dds_part_eval(struct dds_part_ctx *ctx, const uint8_t *local, double r,
		  struct dds_part_result *res, struct dds_part_err *err);

/* Baselines at allocation r. Edge only: every layer on the device. Server only: the raw input is
 * uploaded and every layer runs on the server. DADS: the min-cut at a fixed r (the caller passes
 * R/N), i.e. dds_part_solve. Neurosurgeon: the best single split point on the topological order
 * (layers 0..k-1 local, the rest on the server). Return 0, or -1 with err for a bad r. */
int dds_part_edge_only(struct dds_part_ctx *ctx, double r, struct dds_part_result *res,
		       struct dds_part_err *err);
int dds_part_server_only(struct dds_part_ctx *ctx, double r, struct dds_part_result *res,
			 struct dds_part_err *err);
int dds_part_dads(struct dds_part_ctx *ctx, double r, struct dds_part_result *res,
		  struct dds_part_err *err);
int dds_part_neurosurgeon(struct dds_part_ctx *ctx, double r, struct dds_part_result *res,
			  struct dds_part_err *err);

/* Write the latency graph at allocation r as text, one edge a line: "FROM TO CAPACITY" with
 * CAPACITY "inf" for the infinite edges. Vertices: e (device, source), s (server, sink), in, out,
 * L<k> for layer k and S<x> for the split copy of value x (x = 0 is the raw input).
 * Returns 0, or -1 with err for a bad r. */
int dds_part_write_graph(const struct dds_part_ctx *ctx, double r, FILE *f,
			 struct dds_part_err *err);

/* The whole curve T*(r) for r in (0, inf): computed exactly with a few min-cuts (intersect the
 * lines of two optimal splits, recurse). Allocates the envelope; returns 0 and *out, or -1 with
 * err. The envelope does not refer to the context afterwards. */
int dds_part_envelope_new(struct dds_part_ctx *ctx, struct dds_part_envelope **out,
			  struct dds_part_err *err);

void dds_part_envelope_free(struct dds_part_envelope *env);

int dds_part_envelope_count(const struct dds_part_envelope *env);

const struct dds_part_piece *dds_part_envelope_piece(const struct dds_part_envelope *env, int i);

/* The piece optimal at r (binary search on the breakpoints, no allocation, no min-cut).
 * r <= 0 or NaN gives the first piece. Never NULL. */
const struct dds_part_piece *dds_part_envelope_lookup(const struct dds_part_envelope *env,
						      double r);

/* T(r) = a + w / r on a piece (w = 0 gives a, even at r = 0). */
double dds_part_piece_latency(const struct dds_part_piece *p, double r);

#endif
