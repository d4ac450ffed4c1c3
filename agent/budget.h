/* budget.h: the device's budget rule: the paper's momentum update, the sniff, the best response.
 *
 * A device pays x per round for an allocation r = x / p at the published price p; its cost is
 * Cost(x) = T*(x / p) + lambda * x, with T*(r) its optimal inference latency at allocation r
 * (dds-model.md, section 5). Two ways to choose x:
 *
 * - dds_budget_step(): the paper's rule (Eq. 11, 12): a gradient step with momentum using the
 *   server work W_s of the partition in use, clamped to [x_min, x_max]; while the partition is
 *   all-local (W_s = 0), every K-th step first "sniffs": grid-searches x for a cost below the
 *   all-local latency and jumps there.
 * - dds_budget_best_response(): the exact minimiser, from the pieces of the latency envelope.
 *
 * The latency curve reaches this code through a callback (struct dds_budget_curve), so the
 * partitioner's envelope, a min-cut at each r, or a test's table can all serve. Plain C and
 * libm only: the agent is built for aarch64 too. docs/pricing.md lists the defaults.
 */
#ifndef DDS_BUDGET_H
#define DDS_BUDGET_H

#include <stdint.h>

/* "What latency and server work at allocation r": T*(r) and W_s(r), the server work of the
 * optimal partition at r. r = 0 means no server at all: the all-local latency, W_s = 0.
 * Returns 0, or non-zero if it cannot answer (the caller then treats r as unusable). */
struct dds_budget_curve {
	int (*eval)(void *ctx, double r, double *t_star, double *w_server);
	void *ctx;
};

/* One piece of the lower envelope: on r in [r_lo, r_hi] (r_hi may be INFINITY), the optimal
 * partition has latency T(r) = a + w / r (a = local + transfer time, w = its server work). */
struct dds_budget_piece {
	double a, w, r_lo, r_hi;
};

/* An envelope as arrays of pieces, plus the all-local latency (what r = 0 gives). */
struct dds_budget_pieces {
	const struct dds_budget_piece *piece;
	int n;
	double t_local;
};

struct dds_budget_cfg {
	double gamma;          /* momentum decay, in [0, 1) */
	double eta;            /* learning rate, > 0 */
	int eta_relative;      /* non-zero: the step size is eta * x_t / lambda (scale-free, eta
				* dimensionless); 0: eta itself (the paper's Eq. 12 as written) */
	double lambda;         /* price of latency against money (latency units per money), > 0 */
	double x_min;          /* the smallest budget, > 0 */
	double x_max;          /* the largest budget, > x_min (keep <= the server's budget cap) */
	double max_rel_step;   /* |x change| per step <= max_rel_step * x; 0 = unlimited (the
				* paper's rule); a guard beyond the paper, see docs/pricing.md */
	uint32_t sniff_period; /* K: sniff every K-th consecutive all-local step, >= 1 */
	uint32_t sniff_points; /* grid points of a sniff, log-spaced over [x_min, x_max], >= 2 */
};

/* Status of the functions below. */
enum dds_budget_status {
	DDS_BUDGET_OK = 0,
	DDS_BUDGET_BAD_CONFIG, /* a cfg field out of range */
	DDS_BUDGET_BAD_PRICE,  /* p not finite or <= 0 */
	DDS_BUDGET_BAD_WORK,   /* W_s not finite or < 0 */
	DDS_BUDGET_BAD_CURVE,  /* the envelope is malformed (NaN, negative, r_lo > r_hi, ...) */
};

/* One device's budget state. Fields are readable; change them only through the functions. */
struct dds_budget {
	struct dds_budget_cfg cfg;
	double x;             /* the budget to send with the next request */
	double m;             /* momentum */
	uint64_t steps;       /* dds_budget_step() calls taken */
	uint32_t local_run;   /* consecutive all-local steps */
	uint32_t sniffs;      /* sniffs done */
	uint32_t jumps;       /* sniffs that left all-local */
};

/* The exact best response at price p. */
struct dds_budget_choice {
	double x;    /* the budget: 0 when all-local is best, else >= x_min */
	double r;    /* x / p */
	double cost; /* T*(r) + lambda x, or t_local when all-local */
	int piece;   /* index of the envelope piece, -1 = all-local */
};

/* Fill cfg with the documented defaults. */
void dds_budget_cfg_default(struct dds_budget_cfg *cfg);

/* A static name for a status. */
const char *dds_budget_status_str(enum dds_budget_status s);

/* Start at budget x0 (clamped to [x_min, x_max]; NaN gives x_min) with no momentum.
 * Returns DDS_BUDGET_BAD_CONFIG and leaves b untouched if cfg is out of range. */
enum dds_budget_status dds_budget_init(struct dds_budget *b, const struct dds_budget_cfg *cfg,
				       double x0);

/* One step of the paper's rule after an inference, at price p, where the partition used had
 * server work w_s (0 = all-local). curve serves the sniff; NULL disables it. On bad p or w_s
 * nothing changes. Afterwards x_min <= b->x <= x_max. */
enum dds_budget_status dds_budget_step(struct dds_budget *b, double p, double w_s,
				       const struct dds_budget_curve *curve);

/* The exact argmin over x in {0} U [x_min, inf) of Cost(x) at price p: on piece k the cost
 * a_k + w_k p / x + lambda x is least at x = sqrt(w_k p / lambda) clipped to the piece's
 * x-range [max(r_lo p, x_min), r_hi p] (Lemma 1); all-local costs t_local. Ties go to
 * all-local, then to the lower piece index. */
enum dds_budget_status dds_budget_best_response(const struct dds_budget_pieces *env, double p,
						double lambda, double x_min,
						struct dds_budget_choice *out);

/* Exact mode: b->x becomes the best response's x (0 when all-local is best), m = 0.
 * Uses b->cfg.lambda and x_min; x_max is not applied. */
enum dds_budget_status dds_budget_step_exact(struct dds_budget *b, double p,
					     const struct dds_budget_pieces *env,
					     struct dds_budget_choice *out);

/* A curve backed by an envelope's pieces (env must outlive the curve): T*(r) is the least
 * a + w / r over the pieces whose range holds r, or t_local if smaller or r = 0. */
struct dds_budget_curve dds_budget_pieces_curve(const struct dds_budget_pieces *env);

/* Cost(x) = T*(x / p) + lambda x through a curve (x = 0: T*(0)). Returns NAN if the curve
 * fails or the inputs are invalid. */
double dds_budget_cost(const struct dds_budget_curve *curve, double p, double lambda, double x);

#endif
