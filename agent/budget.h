/* budget.h: the device's budget rule: the paper's momentum update, the sniff, the best response.
 *
 * A device pays x per round for an allocation r = x / p at the published price p; its cost is
 * Cost(x) = T*(x / p) + lambda * x, with T*(r) its optimal inference latency at allocation r
 * (dds-model.md, section 5). Two ways to choose x:
 *
 * - dds_budget_step(): the paper's rule (Eq. 11, 12): a step along the gradient with momentum,
 *   using the server work W_s of the partition in use, clamped to [x_min, x_max], plus the
 *   "sniff": a grid search of x for a cheaper cost, jumping there if one is found. The paper
 *   sniffs every K-th step while all-local (W_s = 0) and steps x by eta * g; the defaults depart
 *   from it in two switchable ways (docs/pricing.md, section 6): the sniff also runs while
 *   offloading (first step, every K-th, and when the price has moved) and can drop to
 *   all-local, and the step is Newton's step in ln x on the partition in use (scale-free,
 *   bounded, exact on that partition's cost).
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

/* How the gradient g of Eq. 11 becomes a step (the m of Eq. 12 is in the same units). */
enum dds_budget_scale {
	DDS_BUDGET_SCALE_FIXED,    /* x <- x - m, m <- gamma m + eta g: Eq. 12 as written */
	DDS_BUDGET_SCALE_RELATIVE, /* the same with eta * x / lambda in place of eta */
	DDS_BUDGET_SCALE_LOG_NEWTON, /* ln x <- ln x - m, m <- gamma m + eta d, with
				      * d = g x^2 / (W_s p + lambda x^2) = tanh(ln(x / x_k*)),
				      * x_k* = sqrt(W_s p / lambda): Newton's step in ln x on the
				      * cost of the partition in use; |d| < 1 */
};

struct dds_budget_cfg {
	double gamma;          /* momentum decay, in [0, 1) */
	double eta;            /* learning rate, > 0 (dimensionless unless scale is FIXED) */
	enum dds_budget_scale scale;
	double lambda;         /* price of latency against money (latency units per money), > 0 */
	double x_min;          /* the smallest budget, > 0 */
	double x_max;          /* the largest budget, > x_min (keep <= the server's budget cap) */
	double max_rel_step;   /* trust region: one step multiplies or divides x by at most
				* 1 + max_rel_step (so |x change| <= max_rel_step * x); 0 = none
				* (the paper's rule); a guard beyond the paper */
	uint32_t sniff_period; /* K: sniff every K-th step (the paper: every K-th consecutive
				* all-local step), >= 1 */
	uint32_t sniff_points; /* grid points of a sniff, log-spaced over [x_min, x_max], >= 2 */
	int sniff_offloading;  /* non-zero: the generalised sniff: on the first step, K steps
				* after the last sniff whatever the partition, and whenever p has
				* moved by more than sniff_price_move since the last sniff; it
				* jumps if a grid point beats the best the partition in use can
				* do (x_min, all-local, included). 0: the paper's sniff */
	double sniff_price_move; /* relative price move that triggers a generalised sniff (p
				  * outside [p_s / (1 + v), p_s (1 + v)], p_s the price of the
				  * last sniff), > 0; INFINITY: never */
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
	uint32_t since_sniff; /* steps since the last generalised sniff */
	double sniff_p;       /* the price at the last generalised sniff; 0: none yet */
	uint32_t sniffs;      /* sniffs done */
	uint32_t jumps;       /* sniffs that moved x (to offload, or to all-local) */
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

/* A static name for a scale: "fixed", "relative", "log-newton" ("?" if out of range). */
const char *dds_budget_scale_name(enum dds_budget_scale s);

/* Start at budget x0 (clamped to [x_min, x_max]; NaN gives x_min) with no momentum.
 * Returns DDS_BUDGET_BAD_CONFIG and leaves b untouched if cfg is out of range. */
enum dds_budget_status dds_budget_init(struct dds_budget *b, const struct dds_budget_cfg *cfg,
				       double x0);

/* One step of the rule after an inference, at price p, where the partition used had server
 * work w_s (0 = all-local). If it is a sniff step and the sniff finds a cheaper budget, x jumps
 * there with no momentum; otherwise x takes the gradient step. curve serves the sniff; NULL
 * disables it. On bad p or w_s nothing changes. Afterwards x_min <= b->x <= x_max. */
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
