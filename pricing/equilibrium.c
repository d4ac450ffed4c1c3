/* equilibrium.c: the DDS game's equilibrium price, by bisection on the total demand. */
#include "pricing_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

/*
 * Why bisection on the demand works.
 *
 * Device i at price p picks a budget x in X = {0} U [x_min, inf) (0 = all-local: nothing is
 * rented, nothing is charged) to minimise C_i(x, p) = T_i*(x / p) + lambda_i x, where T_i* is
 * the optimal latency at allocation r = x / p, non-increasing in r. In terms of r, C = T_i*(r) +
 * lambda_i p r. Let r1 be its choice at p1 and r2 at p2 > p1.
 *
 * (a) If r2 is also a feasible choice at p1 (r2 = 0 or p1 r2 >= x_min), optimality gives
 *         T(r1) + lambda p1 r1 <= T(r2) + lambda p1 r2
 *         T(r2) + lambda p2 r2 <= T(r1) + lambda p2 r1
 *     and adding them, lambda (p2 - p1)(r2 - r1) <= 0, so r2 <= r1.
 * (b) Otherwise r2 > 0 and p1 r2 < x_min. If r1 > 0 then r1 >= x_min / p1 > r2. If r1 = 0
 *     (all-local at p1), take x2 = p2 r2 >= x_min: at p1 it buys x2 / p1 > r2, so
 *     C(x2, p1) <= C(x2, p2); and C(0) <= C(x2, p1). So all-local is at least as good at p2,
 *     and with ties broken towards all-local (agent/budget.c does), r2 = 0 <= r1.
 *
 * So each r_i*(p) never increases with p, nor does the demand D(p) = sum_i r_i*(p). A price
 * p > p0 is a fixed point of p = max(p0, sum_i x_i*(p) / R) iff D(p) = R, and p0 is one iff
 * D(p0) <= R. Note that f(p) = sum_i x_i*(p) / R itself is not monotone: on one piece of an
 * envelope x* = sqrt(W p / lambda) grows with p, and it drops where a device switches to a
 * partition with less server work. Hence the bisection is on D, not on f(p) - p. Where D
 * jumps over R there is no exact fixed point; the result is the jump, D(p*) <= R < D(p*-).
 */

/* D(p) = sum_i x_i*(p) / p. Returns 0, or -1 with err if a best response is invalid. */
static int demand(const struct dds_eq_player *pl, size_t n, double p, double *d, int *evals,
		  char *err, size_t err_len)
{
	double s = 0;

	for (size_t i = 0; i < n; i++) {
		double x = pl[i].best_x(pl[i].ctx, p);

		if (!isfinite(x) || x < 0) {
			dds_pricing_fmt(err, err_len,
					"equilibrium: player %zu's best response at price %g is %g",
					i, p, x);
			return -1;
		}
		s += x / p;
	}
	(*evals)++;
	*d = s;
	return 0;
}

static bool args_valid(const struct dds_eq_player *pl, size_t n, double capacity,
		       double base_price, double rel_tol, char *err, size_t err_len)
{
	const char *bad = NULL;

	if (n && !pl)
		bad = "no players";
	else if (!(isfinite(capacity) && capacity > 0))
		bad = "capacity must be finite and > 0";
	else if (!(isfinite(base_price) && base_price > 0))
		bad = "base price must be finite and > 0";
	else if (!(rel_tol >= 1e-15 && rel_tol < 1))
		bad = "rel_tol must be in [1e-15, 1)";
	for (size_t i = 0; !bad && i < n; i++)
		if (!pl[i].best_x)
			bad = "a player has no best-response function";
	if (bad)
		dds_pricing_fmt(err, err_len, "equilibrium: %s", bad);
	return !bad;
}

int dds_pricing_equilibrium(const struct dds_eq_player *pl, size_t n, double capacity,
			    double base_price, double rel_tol, struct dds_eq_result *out, char *err,
			    size_t err_len)
{
	double lo = base_price, hi, dlo, dhi;
	int evals = 0;

	memset(out, 0, sizeof(*out));
	if (!args_valid(pl, n, capacity, base_price, rel_tol, err, err_len) ||
	    demand(pl, n, lo, &dlo, &evals, err, err_len) < 0)
		return -1;
	if (dlo <= capacity) {
		*out = (struct dds_eq_result){ .price = lo, .demand = dlo, .demand_below = dlo,
					       .at_base = true, .evaluations = evals };
		return 0;
	}
	/* Bracket: D(lo) > R >= D(hi). */
	for (hi = 2 * lo;; lo = hi, dlo = dhi, hi *= 2) {
		if (hi > DBL_MAX / 4) {
			dds_pricing_fmt(err, err_len,
					"equilibrium: demand stays above capacity up to price %g", lo);
			return -1;
		}
		if (demand(pl, n, hi, &dhi, &evals, err, err_len) < 0)
			return -1;
		if (dhi <= capacity)
			break;
	}
	/* Bisect in log(p), keeping the bracket. */
	while (hi / lo - 1 > rel_tol) {
		double mid = lo * sqrt(hi / lo), dmid;

		if (!(mid > lo && mid < hi))
			break; /* no double between them */
		if (demand(pl, n, mid, &dmid, &evals, err, err_len) < 0)
			return -1;
		if (dmid <= capacity) {
			hi = mid;
			dhi = dmid;
		} else {
			lo = mid;
			dlo = dmid;
		}
	}
	*out = (struct dds_eq_result){ .price = hi, .demand = dhi, .demand_below = dlo,
				       .evaluations = evals };
	return 0;
}
