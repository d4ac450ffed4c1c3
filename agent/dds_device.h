/* dds_device.h: one device's decisions: its latency envelope from a model and a profile, then the split and the budget at each price.
 *
 * What both the reference agent (dds-agent) and each simulated device of dds-loadgen run: the
 * partitioner's exact envelope T*(r) (partitioner/dds_partition.h) built once from the model,
 * the device's per-layer local times, its uplink and downlink, and the node's server work
 * (from the REGISTER_REPLY); then per request: r = x / p, the optimal split at r (envelope
 * lookup), the tensors to upload; after each result: the budget update at the price the result
 * carried (agent/budget.h: momentum with sniff, or the exact best response).
 *
 * Plain C + libm (aarch64 too). No I/O, no clock: the caller measures and sends.
 * Ownership: dds_device_new() copies what it needs (the model must outlive the device only
 * for dds_device_decide's value shapes); decisions allocate nothing. Functions returning int
 * give 0, or -1 with a one-line reason in err (err_len may be 0).
 */
#ifndef DDS_DEVICE_H
#define DDS_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "dds_model.h"

#define DDS_DEVICE_MAX_CUT 16 /* tensors one request may carry (= DDS_PROTO_MAX_TENSORS) */

enum dds_device_rule {
	DDS_DEVICE_MOMENTUM, /* dds_budget_step(): Eq. 11/12 with the sniff (the default) */
	DDS_DEVICE_EXACT,    /* dds_budget_step_exact(): the best response from the envelope */
};

struct dds_device_profile {
	/* Local time of each layer, seconds (n_layers entries, e.g. a calibration run), or NULL
	 * for the paper's linear model: a_v = flops_v / device_flops. */
	const double *layer_seconds;
	double device_flops; /* FLOP/s, > 0 when layer_seconds is NULL */
	double up_bw;        /* uplink, bytes/s, > 0 */
	double down_bw;      /* downlink, bytes/s, > 0 */
	/* The node's server work per layer, from its REGISTER_REPLY: w_v = work[0] * flops_v +
	 * work[1] when work_kind is 1 (regression), or w_v = work[v] for a table (kind 0). */
	int work_kind;
	const double *work;
	int n_work;
};

/* What to do for the next request. */
struct dds_device_plan {
	double x;          /* budget to send (0 when all-local) */
	double r;          /* x / p, the allocation it buys */
	bool all_local;    /* nothing to send: run the whole model on the device */
	int n_values;      /* tensors to upload, ascending value ids (0 = the raw input) */
	int values[DDS_DEVICE_MAX_CUT];
	const uint8_t *local; /* n_layers bytes: 1 = layer runs on the device (valid until the next call) */
	double server_work;   /* W_s of this split, the unit of work[] (FLOP for the regression) */
	double t_expected;    /* T_e + T_t + W_s / r, seconds */
	uint32_t payload_bytes; /* bytes of the tensors to upload (float32) */
	int piece;            /* envelope piece id; -1 all-local, -2 server-only when those are the
			       * synthesised fallbacks of dds_device_new's MAX_CUT restriction */
};

struct dds_device;

/* Build the device: envelope from model m (graph only is enough) and profile p; budget rule
 * `rule` with cfg bc (NULL = dds_budget_cfg_default) starting at budget x0 (NaN: x_min).
 * Splits needing more than DDS_DEVICE_MAX_CUT tensors (or 4 GiB) are never chosen: when the
 * partitioner's envelope has such pieces, the device uses the lower envelope of the pieces that
 * fit plus all-local and server-only (docs/agent.md: the best of those, not a constrained
 * min-cut). That usable envelope is also the budget rule's curve. */
int dds_device_new(const struct dds_model *m, const struct dds_device_profile *p,
		   enum dds_device_rule rule, const struct dds_budget_cfg *bc, double x0,
		   struct dds_device **out, char *err, size_t err_len);
void dds_device_free(struct dds_device *d);

/* The plan at price p (> 0) with the current budget. */
int dds_device_decide(struct dds_device *d, double p, struct dds_device_plan *out,
		      char *err, size_t err_len);

/* After a result (or a round's PRICE) at price p: one budget update; the next decide uses it.
 * Momentum uses W_s of the split the last decide chose (before any decide: the one it would
 * choose at p); exact sets x to the best response (0 = all-local). */
int dds_device_update(struct dds_device *d, double p, char *err, size_t err_len);

/* Current budget state (for reports). */
const struct dds_budget *dds_device_budget(const struct dds_device *d);
/* The usable envelope's pieces (those of the partitioner when all fit) and the all-local
 * latency (for reports and tests). */
int dds_device_n_pieces(const struct dds_device *d);
double dds_device_t_local(const struct dds_device *d);

#endif
