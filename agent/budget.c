/* budget.c: the device's budget rule (momentum update, sniff, exact best response); libm only. */
#include "budget.h"

#include <math.h>
#include <stddef.h>

void dds_budget_cfg_default(struct dds_budget_cfg *cfg)
{
	*cfg = (struct dds_budget_cfg){
		.gamma = 0.2,
		.eta = 1,
		.scale = DDS_BUDGET_SCALE_LOG_NEWTON,
		.lambda = 1.0,
		.x_min = 1e-4,
		.x_max = 1e3,
		.max_rel_step = 0,
		.sniff_period = 10,
		.sniff_points = 32,
		.sniff_offloading = 1,
		.sniff_price_move = 0.05,
	};
}

const char *dds_budget_status_str(enum dds_budget_status s)
{
	switch (s) {
	case DDS_BUDGET_OK:
		return "ok";
	case DDS_BUDGET_BAD_CONFIG:
		return "budget config out of range";
	case DDS_BUDGET_BAD_PRICE:
		return "price not finite or not positive";
	case DDS_BUDGET_BAD_WORK:
		return "server work not finite or negative";
	case DDS_BUDGET_BAD_CURVE:
		return "malformed latency envelope";
	}
	return "unknown status";
}

const char *dds_budget_scale_name(enum dds_budget_scale s)
{
	switch (s) {
	case DDS_BUDGET_SCALE_FIXED:
		return "fixed";
	case DDS_BUDGET_SCALE_RELATIVE:
		return "relative";
	case DDS_BUDGET_SCALE_LOG_NEWTON:
		return "log-newton";
	}
	return "?";
}

static int finite_pos(double v)
{
	return isfinite(v) && v > 0;
}

static int cfg_valid(const struct dds_budget_cfg *c)
{
	return c->gamma >= 0 && c->gamma < 1 && finite_pos(c->eta) && finite_pos(c->lambda) &&
	       (c->scale == DDS_BUDGET_SCALE_FIXED || c->scale == DDS_BUDGET_SCALE_RELATIVE ||
		c->scale == DDS_BUDGET_SCALE_LOG_NEWTON) &&
	       finite_pos(c->x_min) && isfinite(c->x_max) && c->x_max > c->x_min &&
	       c->max_rel_step >= 0 && isfinite(c->max_rel_step) && c->sniff_period >= 1 &&
	       c->sniff_points >= 2 && c->sniff_price_move > 0;
}

static double clamp(double v, double lo, double hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

enum dds_budget_status dds_budget_init(struct dds_budget *b, const struct dds_budget_cfg *cfg,
				       double x0)
{
	if (!cfg_valid(cfg))
		return DDS_BUDGET_BAD_CONFIG;
	*b = (struct dds_budget){ .cfg = *cfg };
	b->x = isnan(x0) ? cfg->x_min : clamp(x0, cfg->x_min, cfg->x_max);
	return DDS_BUDGET_OK;
}

double dds_budget_cost(const struct dds_budget_curve *curve, double p, double lambda, double x)
{
	double t, w;

	if (!finite_pos(p) || !finite_pos(lambda) || !(x >= 0) || !isfinite(x))
		return NAN;
	if (curve->eval(curve->ctx, x / p, &t, &w) != 0 || isnan(t))
		return NAN;
	return x > 0 ? t + lambda * x : t;
}

/* Whether this step sniffs: the paper's sniff runs on every K-th consecutive all-local step.
 * The generalised one runs on the first step, on every K-th step after a sniff, and when the
 * price has moved by more than sniff_price_move since the last one: at a fixed price the
 * sniff's answer does not change, so a moving price is what makes another one worth it. */
static int sniff_due(struct dds_budget *b, double p)
{
	const struct dds_budget_cfg *c = &b->cfg;
	double move = 1 + c->sniff_price_move;

	if (!c->sniff_offloading)
		return b->local_run > 0 && b->local_run % c->sniff_period == 0;
	if (b->sniff_p > 0 && ++b->since_sniff < c->sniff_period && p <= b->sniff_p * move &&
	    p * move >= b->sniff_p)
		return 0;
	b->since_sniff = 0;
	b->sniff_p = p;
	return 1;
}

/* What a sniff must beat. The paper's: all-local. The generalised one: the best the partition
 * in use can do, the lesser of the cost at x and at that partition's Lemma 1 point
 * sqrt(w_s p / lambda) (where the gradient steps are heading), so that it jumps only to a
 * better partition, never away from one the gradient has not finished with. */
static double sniff_bar(const struct dds_budget *b, double p, double w_s,
			const struct dds_budget_curve *curve)
{
	const struct dds_budget_cfg *c = &b->cfg;
	double here, x_star;

	if (!c->sniff_offloading)
		return dds_budget_cost(curve, p, c->lambda, 0);
	here = dds_budget_cost(curve, p, c->lambda, b->x);
	x_star = clamp(sqrt(w_s * p / c->lambda), c->x_min, c->x_max); /* +inf, 0: clamped */
	return fmin(here, dds_budget_cost(curve, p, c->lambda, x_star)); /* NaN if both are */
}

/* Grid-search x over [x_min, x_max] (log-spaced) for a cost below sniff_bar() and jump to the
 * best grid point with no momentum. The grid starts at x_min, which is all-local for any
 * sensible x_min: that is how the generalised sniff drops an offload that does not pay.
 * Returns 1 if it jumped. */
static int sniff(struct dds_budget *b, double p, double w_s, const struct dds_budget_curve *curve)
{
	const struct dds_budget_cfg *c = &b->cfg;
	double best = sniff_bar(b, p, w_s, curve), best_x = 0, ratio = c->x_max / c->x_min;

	b->sniffs++;
	if (isnan(best))
		return 0;
	for (uint32_t i = 0; i < c->sniff_points; i++) {
		double x = fmin(c->x_min * pow(ratio, (double)i / (c->sniff_points - 1)), c->x_max);
		double cost = dds_budget_cost(curve, p, c->lambda, x);

		if (cost < best) { /* false for NaN: a failing grid point is skipped */
			best = cost;
			best_x = x;
		}
	}
	if (best_x == 0)
		return 0;
	b->x = best_x;
	b->m = 0;
	b->local_run = 0;
	b->jumps++;
	return 1;
}

/* Eq. 12 in the configured scale, from Eq. 11's gradient g at x (on the partition with server
 * work w_s). The clamps keep m finite (no step moves x further than x_max anyway) and apply
 * the optional trust region. */
static void gradient_step(struct dds_budget *b, double p, double w_s)
{
	const struct dds_budget_cfg *c = &b->cfg;
	double g = c->lambda - p * w_s / (b->x * b->x); /* Eq. 11; -inf if it overflows */
	double step, lim;

	if (c->scale == DDS_BUDGET_SCALE_LOG_NEWTON) {
		/* On the partition in use, with y = ln x, Cost = a + w_s p e^-y + lambda e^y and
		 * Cost'(y) / Cost''(y) = tanh(y - y*), y* = ln sqrt(w_s p / lambda) (Lemma 1):
		 * Newton's step in ln x, of the sign of g, in (-1, 1). Written with logs so that
		 * no product overflows; w_s = 0 gives y* = -inf and d = 1. */
		double d = tanh(log(b->x) - 0.5 * (log(w_s) + log(p) - log(c->lambda)));

		lim = c->max_rel_step > 0 ? log1p(c->max_rel_step) : INFINITY;
		b->m = clamp(c->gamma * b->m + c->eta * d, -lim, lim);
		b->x = clamp(b->x * exp(-b->m), c->x_min, c->x_max);
		return;
	}
	/* Step size eta (Eq. 12) or eta * x / lambda: near the optimum x* the cost's curvature
	 * is 2 lambda / x*, so the relative step is stable for eta < 1 + gamma at any scale. */
	step = c->scale == DDS_BUDGET_SCALE_RELATIVE ? c->eta * b->x / c->lambda : c->eta;
	lim = c->max_rel_step > 0 ? c->max_rel_step * b->x : c->x_max;
	b->m = clamp(c->gamma * b->m + step * g, -lim, lim);
	b->x = clamp(b->x - b->m, c->x_min, c->x_max);
}

enum dds_budget_status dds_budget_step(struct dds_budget *b, double p, double w_s,
				       const struct dds_budget_curve *curve)
{
	if (!finite_pos(p))
		return DDS_BUDGET_BAD_PRICE;
	if (!(isfinite(w_s) && w_s >= 0))
		return DDS_BUDGET_BAD_WORK;
	b->steps++;
	b->local_run = w_s > 0 ? 0 : b->local_run + 1;
	if (curve && sniff_due(b, p) && sniff(b, p, w_s, curve))
		return DDS_BUDGET_OK;
	gradient_step(b, p, w_s);
	return DDS_BUDGET_OK;
}

static int piece_valid(const struct dds_budget_piece *pc)
{
	return isfinite(pc->a) && pc->a >= 0 && isfinite(pc->w) && pc->w >= 0 &&
	       isfinite(pc->r_lo) && pc->r_lo >= 0 && !isnan(pc->r_hi) && pc->r_hi >= pc->r_lo;
}

static int env_valid(const struct dds_budget_pieces *env)
{
	if (!env || env->n < 0 || (env->n > 0 && !env->piece) || !isfinite(env->t_local) ||
	    env->t_local < 0)
		return 0;
	for (int k = 0; k < env->n; k++)
		if (!piece_valid(&env->piece[k]))
			return 0;
	return 1;
}

enum dds_budget_status dds_budget_best_response(const struct dds_budget_pieces *env, double p,
						double lambda, double x_min,
						struct dds_budget_choice *out)
{
	struct dds_budget_choice best;

	if (!finite_pos(p))
		return DDS_BUDGET_BAD_PRICE;
	if (!finite_pos(lambda) || !finite_pos(x_min))
		return DDS_BUDGET_BAD_CONFIG;
	if (!env_valid(env))
		return DDS_BUDGET_BAD_CURVE;
	best = (struct dds_budget_choice){ .cost = env->t_local, .piece = -1 };
	for (int k = 0; k < env->n; k++) {
		const struct dds_budget_piece *pc = &env->piece[k];
		double lo = fmax(pc->r_lo * p, x_min), hi = pc->r_hi * p, x, cost;

		if (lo > hi)
			continue; /* the piece lies entirely below x_min */
		/* Lemma 1: a + w p / x + lambda x is convex in x, least at sqrt(w p / lambda). */
		x = pc->w > 0 ? clamp(sqrt(pc->w * p / lambda), lo, hi) : lo;
		cost = pc->a + pc->w * p / x + lambda * x;
		if (cost < best.cost)
			best = (struct dds_budget_choice){ .x = x, .r = x / p, .cost = cost,
							   .piece = k };
	}
	*out = best;
	return DDS_BUDGET_OK;
}

enum dds_budget_status dds_budget_step_exact(struct dds_budget *b, double p,
					     const struct dds_budget_pieces *env,
					     struct dds_budget_choice *out)
{
	enum dds_budget_status s =
		dds_budget_best_response(env, p, b->cfg.lambda, b->cfg.x_min, out);

	if (s != DDS_BUDGET_OK)
		return s;
	b->steps++;
	b->x = out->x;
	b->m = 0;
	return DDS_BUDGET_OK;
}

static int pieces_eval(void *ctx, double r, double *t_star, double *w_server)
{
	const struct dds_budget_pieces *env = ctx;
	double t = env->t_local, w = 0;

	if (!(r >= 0))
		return -1;
	for (int k = 0; r > 0 && k < env->n; k++) {
		const struct dds_budget_piece *pc = &env->piece[k];
		double tk = pc->a + pc->w / r;

		if (r >= pc->r_lo && r <= pc->r_hi && tk < t) {
			t = tk;
			w = pc->w;
		}
	}
	*t_star = t;
	*w_server = w;
	return 0;
}

struct dds_budget_curve dds_budget_pieces_curve(const struct dds_budget_pieces *env)
{
	return (struct dds_budget_curve){ .eval = pieces_eval, .ctx = (void *)env };
}
