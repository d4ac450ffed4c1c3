/* test_budget.c: the device's budget rule against brute force: Lemma 1, the log-Newton step
 * against finite differences, momentum convergence in every scale, both sniffs, the x_min
 * clamp and bad inputs. */
#include "../check_main.h"
#include "budget.h"
#include "test_envelope.h"

#include <string.h>

/* Brute force: Cost(x) from the lines on a dense log grid over [x_min, 1e4], refined by a
 * golden-section search around the best grid point; x = 0 (all-local) too. */
static double brute_min(const struct te_device *d, double p, double lambda, double x_min,
			double *x_best)
{
	const int n = 40000;
	const double top = 1e4, step = pow(top / x_min, 1.0 / n);
	double best = d->t_local, lo, hi;
	int at = -1;

	*x_best = 0;
	for (int i = 0; i <= n; i++) {
		double x = x_min * pow(step, i), c = te_cost(d, p, lambda, x);

		if (c < best) {
			best = c;
			at = i;
		}
	}
	if (at < 0)
		return best;
	lo = fmax(x_min, x_min * pow(step, at - 1));
	hi = x_min * pow(step, at + 1);
	for (int it = 0; it < 200; it++) {
		double m1 = hi - (hi - lo) * 0.6180339887, m2 = lo + (hi - lo) * 0.6180339887;

		if (te_cost(d, p, lambda, m1) < te_cost(d, p, lambda, m2))
			hi = m2;
		else
			lo = m1;
	}
	*x_best = x_min * pow(step, at);
	if (te_cost(d, p, lambda, (lo + hi) / 2) < best) {
		*x_best = (lo + hi) / 2;
		best = te_cost(d, p, lambda, *x_best);
	}
	return best;
}

START_TEST(lemma1_against_grid)
{
	uint64_t seed = 11;

	for (int t = 0; t < 300; t++) {
		struct te_device d;
		struct dds_budget_choice c;
		double p = tu_logu(&seed, 1e-13, 1e-11), lambda = tu_logu(&seed, 0.3, 3);
		double x_min = dds_rand_unit(&seed) < 0.5 ? 1e-4 : tu_logu(&seed, 1e-4, 0.1), xb, cb;

		te_random(&d, &seed, 6);
		ck_assert_int_eq(dds_budget_best_response(&d.env, p, lambda, x_min, &c),
				 DDS_BUDGET_OK);
		cb = brute_min(&d, p, lambda, x_min, &xb);
		/* The exact answer is never worse than the grid, and the grid comes within
		 * its resolution of it. */
		ck_assert_msg(c.cost <= cb * (1 + 1e-12), "case %d: exact %.15g > grid %.15g", t,
			      c.cost, cb);
		ck_assert_msg(c.cost >= cb * (1 - 1e-9), "case %d: exact %.15g << grid %.15g", t,
			      c.cost, cb);
		/* The cost it reports is the cost at the x it gives. */
		ck_assert(fabs(c.cost - te_cost(&d, p, lambda, c.x)) <= 1e-12 * c.cost);
		ck_assert(c.x == 0 ? c.piece == -1 : (c.x >= x_min && c.piece >= 0));
		ck_assert(c.r == c.x / p);
	}
}
END_TEST

/* Run the paper's rule at a fixed price: after each inference the partition in use is the
 * optimal one at r = x / p, and its server work drives the step. */
static void run_steps(struct dds_budget *b, const struct te_device *d, double p, int steps)
{
	struct dds_budget_curve curve = dds_budget_pieces_curve(&d->env);

	for (int i = 0; i < steps; i++) {
		double w;

		te_tstar(d, b->x / p, &w);
		ck_assert_int_eq(dds_budget_step(b, p, w, &curve), DDS_BUDGET_OK);
	}
}

/* Momentum converges to the exact best response when offloading has one partition (Cost is
 * then convex where it offloads), in each scale. The log-Newton step is scale-free and starts
 * anywhere in 0.01 .. 100 x*; the fixed step (the paper's Eq. 12, eta chosen for this device)
 * and the relative one start within 2x of x*, with eta making the step about Newton's near x*
 * (the cost's curvature there is 2 lambda / x*). The sniff gets a start out of all-local. */
START_TEST(momentum_converges_one_partition)
{
	uint64_t seed = 21;
	struct dds_budget_cfg cfg;

	dds_budget_cfg_default(&cfg);
	for (int t = 0; t < 300; t++) {
		struct te_device d;
		struct dds_budget b;
		struct dds_budget_choice c;
		struct dds_budget_cfg sc = cfg;
		double p = tu_logu(&seed, 3e-13, 3e-12), x0;

		te_random(&d, &seed, 1);
		ck_assert_int_eq(dds_budget_best_response(&d.env, p, cfg.lambda, cfg.x_min, &c), 0);
		if (c.piece < 0)
			continue; /* all-local is best: nothing to converge to */
		sc.scale = (enum dds_budget_scale)(t % 3);
		if (sc.scale == DDS_BUDGET_SCALE_LOG_NEWTON) {
			x0 = c.x * tu_logu(&seed, 0.01, 100);
		} else {
			sc.eta = sc.scale == DDS_BUDGET_SCALE_FIXED ? 0.5 * c.x / cfg.lambda : 0.5;
			x0 = c.x * tu_logu(&seed, 0.5, 2);
		}
		ck_assert_int_eq(dds_budget_init(&b, &sc, x0), 0);
		run_steps(&b, &d, p, 400);
		ck_assert_msg(fabs(b.x - c.x) <= 1e-6 * c.x, "case %d (%s): x %.9g, best %.9g", t,
			      dds_budget_scale_name(sc.scale), b.x, c.x);
	}
}
END_TEST

/* The log-Newton step is Newton's step in y = ln x on the partition's cost
 * f(y) = a + w p e^-y + lambda e^y: with gamma = 0 and eta = 1, ln x moves by -f'(y) / f''(y),
 * here from central finite differences of f written out in the test. Newton then converges
 * to Lemma 1's x* = sqrt(w p / lambda) in a few steps from 20x away. */
START_TEST(log_newton_step_is_newton)
{
	uint64_t seed = 25;
	struct dds_budget_cfg cfg;

	dds_budget_cfg_default(&cfg);
	cfg.gamma = 0;
	cfg.eta = 1;
	cfg.x_min = 1e-9;
	cfg.x_max = 1e9;
	for (int t = 0; t < 300; t++) {
		struct dds_budget b;
		double a = dds_rand_unit(&seed), w = tu_logu(&seed, 1e8, 1e10);
		double p = tu_logu(&seed, 1e-13, 1e-11), lambda = tu_logu(&seed, 0.3, 3);
		double x_star = sqrt(w * p / lambda), y = log(x_star * tu_logu(&seed, 0.05, 20));
		const double h = 1e-4;
		double f0, fp, fm, d1, d2;

		cfg.lambda = lambda;
		f0 = a + w * p * exp(-y) + lambda * exp(y);
		fp = a + w * p * exp(-(y + h)) + lambda * exp(y + h);
		fm = a + w * p * exp(-(y - h)) + lambda * exp(y - h);
		d1 = (fp - fm) / (2 * h);
		d2 = (fp - 2 * f0 + fm) / (h * h);
		ck_assert_int_eq(dds_budget_init(&b, &cfg, exp(y)), 0);
		ck_assert_int_eq(dds_budget_step(&b, p, w, NULL), 0);
		ck_assert_msg(fabs(log(b.x) - (y - d1 / d2)) <= 1e-5 * (1 + fabs(d1 / d2)),
			      "case %d: step %.9g, Newton %.9g", t, log(b.x) - y, -d1 / d2);
		for (int i = 0; i < 7; i++)
			ck_assert_int_eq(dds_budget_step(&b, p, w, NULL), 0);
		ck_assert_msg(fabs(b.x / x_star - 1) <= 1e-12, "case %d: x %.17g, x* %.17g", t, b.x,
			      x_star);
	}
}
END_TEST

/* Several partitions: Cost has local minima, and the rule (a local method) converges to the
 * best response from a start near it. */
START_TEST(momentum_converges_near_best)
{
	uint64_t seed = 31;
	struct dds_budget_cfg cfg;
	int tried = 0;

	dds_budget_cfg_default(&cfg);
	for (int t = 0; t < 300; t++) {
		struct te_device d;
		struct dds_budget b;
		struct dds_budget_choice c;
		double p = tu_logu(&seed, 3e-13, 3e-12), got;

		te_random(&d, &seed, 6);
		ck_assert_int_eq(dds_budget_best_response(&d.env, p, cfg.lambda, cfg.x_min, &c), 0);
		if (c.piece < 0)
			continue;
		tried++;
		ck_assert_int_eq(dds_budget_init(&b, &cfg, c.x * (0.95 + 0.1 * dds_rand_unit(&seed))), 0);
		run_steps(&b, &d, p, 600);
		got = te_cost(&d, p, cfg.lambda, b.x);
		ck_assert_msg(got <= c.cost * (1 + 1e-6), "case %d: cost %.9g, best %.9g", t, got,
			      c.cost);
	}
	ck_assert_int_gt(tried, 100);
}
END_TEST

/* Several partitions, any start in [x_min, x_max]: with the generalised sniff the rule ends
 * no worse than the best point of the sniff's own grid (brute force here) and never better
 * than the exact best response; for almost every device (300 of 300 here) it reaches the exact
 * best response. */
START_TEST(general_sniff_converges_from_anywhere)
{
	uint64_t seed = 33;
	struct dds_budget_cfg cfg;
	int tried = 0, exact = 0;

	dds_budget_cfg_default(&cfg);
	for (int t = 0; t < 300; t++) {
		struct te_device d;
		struct dds_budget b;
		struct dds_budget_choice c;
		double p = tu_logu(&seed, 3e-13, 3e-12), got, grid = INFINITY;

		te_random(&d, &seed, 6);
		ck_assert_int_eq(dds_budget_best_response(&d.env, p, cfg.lambda, cfg.x_min, &c), 0);
		for (uint32_t i = 0; i < cfg.sniff_points; i++)
			grid = fmin(grid, te_cost(&d, p, cfg.lambda,
						  cfg.x_min * pow(cfg.x_max / cfg.x_min,
								  i / (cfg.sniff_points - 1.0))));
		ck_assert_int_eq(dds_budget_init(&b, &cfg, tu_logu(&seed, cfg.x_min, cfg.x_max)), 0);
		run_steps(&b, &d, p, 300);
		got = te_cost(&d, p, cfg.lambda, b.x);
		ck_assert_msg(got <= grid * (1 + 1e-9), "case %d: cost %.9g, grid %.9g", t, got, grid);
		ck_assert(got >= fmin(c.cost, d.t_local + cfg.lambda * cfg.x_min) * (1 - 1e-9));
		tried++;
		exact += c.piece < 0 ? b.x == cfg.x_min : got <= c.cost * (1 + 1e-6);
	}
	ck_assert_msg(exact >= tried * 19 / 20, "exact best response reached in %d of %d", exact,
		      tried);
}
END_TEST

/* A device at the interior minimum of a server piece that costs more than all-local: the
 * gradient is zero there. The paper's sniff (only while all-local) never moves it; the
 * generalised sniff drops it to x_min, which is all-local and the best response. */
START_TEST(general_sniff_drops_a_bad_offload)
{
	/* T = 0.1 + w / r beats all-local (0.3) at x* = sqrt(w p / lambda) = 0.15, where
	 * T = 0.25 but Cost = 0.4. */
	struct te_device d = { .n = 1, .a = { 0.1 }, .w = { 2.25e10 }, .t_local = 0.3 };
	struct dds_budget_cfg cfg;
	struct dds_budget_choice c;
	struct dds_budget b;
	const double p = 1e-12;

	te_build(&d);
	dds_budget_cfg_default(&cfg);
	ck_assert_int_eq(dds_budget_best_response(&d.env, p, cfg.lambda, cfg.x_min, &c), 0);
	ck_assert_int_eq(c.piece, -1);
	for (int general = 0; general <= 1; general++) {
		cfg.sniff_offloading = general;
		ck_assert_int_eq(dds_budget_init(&b, &cfg, 0.15), 0);
		run_steps(&b, &d, p, 100);
		if (general) {
			ck_assert(b.x == cfg.x_min && b.jumps == 1);
		} else {
			ck_assert_msg(fabs(b.x - 0.15) <= 1e-9 && b.jumps == 0, "x %g", b.x);
			ck_assert(te_cost(&d, p, cfg.lambda, b.x) > d.t_local + 0.09);
		}
	}
}
END_TEST

/* When each sniff runs: the paper's on every K-th consecutive all-local step; the generalised
 * one on the first step, K steps after the last one, and when p leaves
 * [p_s / (1 + v), p_s (1 + v)] around the price p_s of the last one. */
START_TEST(sniff_schedule)
{
	struct te_device d = { .n = 1, .a = { 0.05 }, .w = { 4e9 }, .t_local = 0.6 };
	struct dds_budget_curve curve;
	struct dds_budget_cfg cfg;
	struct dds_budget b;
	const double p = 1e-12;
	uint32_t k;

	te_build(&d);
	curve = dds_budget_pieces_curve(&d.env);
	dds_budget_cfg_default(&cfg);
	k = cfg.sniff_period;
	ck_assert_int_eq(dds_budget_init(&b, &cfg, 0.1), 0);
	for (uint32_t i = 1; i <= 2 * k + 1; i++) {
		ck_assert_int_eq(dds_budget_step(&b, p, 4e9, &curve), 0);
		ck_assert_uint_eq(b.sniffs, 1 + (i - 1) / k); /* steps 1, K + 1, 2K + 1 */
	}
	/* Price moves inside the band: no sniff; just outside it: one, and the period restarts. */
	ck_assert_int_eq(dds_budget_step(&b, p * (1 + 0.9 * cfg.sniff_price_move), 4e9, &curve), 0);
	ck_assert_int_eq(dds_budget_step(&b, p / (1 + 0.9 * cfg.sniff_price_move), 4e9, &curve), 0);
	ck_assert_uint_eq(b.sniffs, 3);
	ck_assert_int_eq(dds_budget_step(&b, p * (1 + 1.1 * cfg.sniff_price_move), 4e9, &curve), 0);
	ck_assert_uint_eq(b.sniffs, 4);
	ck_assert_int_eq(dds_budget_step(&b, p, 4e9, &curve), 0); /* back: a move too */
	ck_assert_uint_eq(b.sniffs, 5);
	/* The paper's: only all-local steps count, and an offloading step resets the count. */
	cfg.sniff_offloading = 0;
	ck_assert_int_eq(dds_budget_init(&b, &cfg, 0.1), 0);
	for (uint32_t i = 0; i < 3 * k; i++)
		ck_assert_int_eq(dds_budget_step(&b, p, 4e9, &curve), 0);
	ck_assert_uint_eq(b.sniffs, 0);
	for (uint32_t i = 1; i < k; i++)
		ck_assert_int_eq(dds_budget_step(&b, p, 0, NULL), 0);
	ck_assert_int_eq(dds_budget_step(&b, p, 4e9, &curve), 0);
	ck_assert_int_eq(dds_budget_step(&b, p, 0, &curve), 0);
	ck_assert_uint_eq(b.sniffs, 0);
}
END_TEST

/* A device all-local at its current budget, where renting more pays: the sniff jumps to an x
 * that offloads and beats all-local, at the K-th all-local step (the paper's) or at once (the
 * generalised one), and the rule then converges to the best response. Where renting never
 * pays, x sinks to x_min (the generalised sniff gets there in one jump from an offload that
 * does not pay). */
START_TEST(sniff_escapes_all_local)
{
	struct te_device d = { .n = 1, .a = { 0.05 }, .w = { 4e9 }, .t_local = 0.6 };
	struct te_device never = { .n = 1, .a = { 0.59 }, .w = { 4e9 }, .t_local = 0.6 };
	struct dds_budget_curve curve;
	struct dds_budget_cfg cfg;
	struct dds_budget_choice c;
	struct dds_budget b;
	const double p = 1e-12;
	double w;

	te_build(&d);
	te_build(&never);
	dds_budget_cfg_default(&cfg);
	ck_assert_int_eq(dds_budget_best_response(&d.env, p, cfg.lambda, cfg.x_min, &c), 0);
	for (int general = 0; general <= 1; general++) {
		uint32_t first = general ? 1 : cfg.sniff_period;

		cfg.sniff_offloading = general;
		curve = dds_budget_pieces_curve(&d.env);
		ck_assert_int_eq(dds_budget_init(&b, &cfg, cfg.x_min), 0);
		te_tstar(&d, b.x / p, &w);
		ck_assert(w == 0); /* all-local at x_min */
		for (uint32_t i = 1; i < first; i++) {
			ck_assert_int_eq(dds_budget_step(&b, p, 0, &curve), 0);
			ck_assert(b.x == cfg.x_min && b.jumps == 0);
		}
		ck_assert_int_eq(dds_budget_step(&b, p, 0, &curve), 0);
		ck_assert_uint_eq(b.jumps, 1);
		te_tstar(&d, b.x / p, &w);
		ck_assert(w > 0 && te_cost(&d, p, cfg.lambda, b.x) < d.t_local);
		run_steps(&b, &d, p, 300);
		ck_assert_msg(fabs(b.x - c.x) <= 1e-6 * c.x, "x %.9g, best %.9g", b.x, c.x);

		curve = dds_budget_pieces_curve(&never.env);
		ck_assert_int_eq(dds_budget_init(&b, &cfg, 0.5), 0);
		run_steps(&b, &never, p, 200);
		ck_assert_uint_eq(b.jumps, (uint32_t)general);
		ck_assert_uint_gt(b.sniffs, 10);
		ck_assert(b.x == cfg.x_min);
	}
}
END_TEST

START_TEST(x_stays_in_range)
{
	uint64_t seed = 41;

	for (int t = 0; t < 200; t++) {
		struct dds_budget_cfg cfg;
		struct dds_budget b;

		dds_budget_cfg_default(&cfg);
		cfg.gamma = dds_rand_unit(&seed) * 0.99;
		cfg.eta = tu_logu(&seed, 1e-6, 1e3);
		cfg.scale = (enum dds_budget_scale)(dds_rand_next(&seed) % 3);
		cfg.max_rel_step = dds_rand_unit(&seed) < 0.5 ? 0 : dds_rand_unit(&seed);
		cfg.x_min = tu_logu(&seed, 1e-6, 1);
		cfg.x_max = cfg.x_min * tu_logu(&seed, 1.001, 1e9);
		ck_assert_int_eq(dds_budget_init(&b, &cfg, tu_logu(&seed, 1e-9, 1e9)), 0);
		for (int i = 0; i < 500; i++) {
			double u = dds_rand_unit(&seed);
			double w = u < 0.3 ? 0 : u < 0.4 ? 1e300 : tu_logu(&seed, 1e-3, 1e12);

			ck_assert_int_eq(dds_budget_step(&b, tu_logu(&seed, 1e-150, 1e150), w, NULL), 0);
			ck_assert_msg(b.x >= cfg.x_min && b.x <= cfg.x_max && isfinite(b.m),
				      "case %d step %d: x %g outside [%g, %g]", t, i, b.x, cfg.x_min,
				      cfg.x_max);
		}
	}
}
END_TEST

static int failing_curve(void *ctx, double r, double *t, double *w)
{
	(void)ctx;
	(void)r;
	*t = *w = 0;
	return -1;
}

START_TEST(bad_inputs)
{
	struct dds_budget_cfg cfg, bad;
	struct dds_budget b, before;
	struct dds_budget_choice c;
	struct dds_budget_piece pc = { .a = 0.1, .w = 1e9, .r_lo = 0, .r_hi = INFINITY };
	struct dds_budget_pieces env = { .piece = &pc, .n = 1, .t_local = 0.5 };
	struct dds_budget_curve fail = { .eval = failing_curve };
	const double nasty[] = { NAN, -NAN, INFINITY, -INFINITY, -1, 0, -0.0 };

	dds_budget_cfg_default(&cfg);
	ck_assert_int_eq(dds_budget_init(&b, &cfg, NAN), 0);
	ck_assert(b.x == cfg.x_min);
	before = b;
	for (size_t i = 0; i < sizeof(nasty) / sizeof(nasty[0]); i++) {
		ck_assert_int_eq(dds_budget_step(&b, nasty[i], 1e9, NULL), DDS_BUDGET_BAD_PRICE);
		if (nasty[i] != 0)
			ck_assert_int_eq(dds_budget_step(&b, 1e-12, nasty[i], NULL),
					 DDS_BUDGET_BAD_WORK);
		ck_assert_int_eq(dds_budget_best_response(&env, nasty[i], 1, 1e-4, &c),
				 DDS_BUDGET_BAD_PRICE);
		ck_assert(memcmp(&b, &before, sizeof(b)) == 0);
	}
	/* Each config field out of range is refused. */
	for (int f = 0; f < 11; f++) {
		bad = cfg;
		switch (f) {
		case 0: bad.gamma = 1; break;
		case 1: bad.eta = NAN; break;
		case 2: bad.lambda = 0; break;
		case 3: bad.x_min = -1; break;
		case 4: bad.x_max = bad.x_min; break;
		case 5: bad.sniff_period = 0; break;
		case 6: bad.scale = (enum dds_budget_scale)3; break;
		case 7: bad.max_rel_step = -0.5; break;
		case 8: bad.sniff_price_move = 0; break;
		case 9: bad.sniff_price_move = NAN; break;
		default: bad.sniff_points = 1; break;
		}
		ck_assert_int_eq(dds_budget_init(&b, &bad, 1), DDS_BUDGET_BAD_CONFIG);
	}
	/* Malformed envelopes. */
	pc.w = NAN;
	ck_assert_int_eq(dds_budget_best_response(&env, 1, 1, 1e-4, &c), DDS_BUDGET_BAD_CURVE);
	pc.w = 1e9;
	pc.r_lo = 2;
	pc.r_hi = 1;
	ck_assert_int_eq(dds_budget_best_response(&env, 1, 1, 1e-4, &c), DDS_BUDGET_BAD_CURVE);
	env.n = -1;
	ck_assert_int_eq(dds_budget_best_response(&env, 1, 1, 1e-4, &c), DDS_BUDGET_BAD_CURVE);
	ck_assert_int_eq(dds_budget_best_response(NULL, 1, 1, 1e-4, &c), DDS_BUDGET_BAD_CURVE);
	ck_assert_int_eq(dds_budget_best_response(&env, 1, 0, 1e-4, &c), DDS_BUDGET_BAD_CONFIG);
	/* A curve that fails: the cost is NaN and the sniff does not jump. */
	ck_assert(isnan(dds_budget_cost(&fail, 1, 1, 1)));
	ck_assert(isnan(dds_budget_cost(&fail, 1, 1, -1)));
	ck_assert_int_eq(dds_budget_init(&b, &cfg, 1), 0);
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(dds_budget_step(&b, 1, 0, &fail), 0);
	ck_assert(b.jumps == 0 && b.sniffs == 5); /* steps 1, 11, ..., 41 */
	for (int s = 0; s <= DDS_BUDGET_BAD_CURVE + 1; s++)
		ck_assert_ptr_nonnull(dds_budget_status_str((enum dds_budget_status)s));
	ck_assert_str_eq(dds_budget_scale_name((enum dds_budget_scale)3), "?");
}
END_TEST

START_TEST(exact_mode)
{
	uint64_t seed = 51;
	struct dds_budget_cfg cfg;
	int local = 0, offload = 0;

	dds_budget_cfg_default(&cfg);
	for (int t = 0; t < 200; t++) {
		struct te_device d;
		struct dds_budget b;
		struct dds_budget_choice c, want;
		double p = tu_logu(&seed, 1e-13, 1e-10);

		te_random(&d, &seed, 6);
		ck_assert_int_eq(dds_budget_init(&b, &cfg, 1), 0);
		ck_assert_int_eq(dds_budget_step_exact(&b, p, &d.env, &c), 0);
		ck_assert_int_eq(dds_budget_best_response(&d.env, p, cfg.lambda, cfg.x_min, &want), 0);
		ck_assert(b.x == want.x && c.x == want.x && b.m == 0);
		ck_assert(c.piece < 0 ? b.x == 0 : b.x >= cfg.x_min);
		local += c.piece < 0;
		offload += c.piece >= 0;
	}
	ck_assert(local > 0 && offload > 0); /* both answers were exercised */
}
END_TEST

int main(void)
{
	struct dds_check_case cases[] = {
		{ .name = "budget", .timeout = 120, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(lemma1_against_grid),
			DDS_CHECK_TEST(momentum_converges_one_partition),
			DDS_CHECK_TEST(log_newton_step_is_newton),
			DDS_CHECK_TEST(momentum_converges_near_best),
			DDS_CHECK_TEST(general_sniff_converges_from_anywhere),
			DDS_CHECK_TEST(general_sniff_drops_a_bad_offload),
			DDS_CHECK_TEST(sniff_schedule),
			DDS_CHECK_TEST(sniff_escapes_all_local),
			DDS_CHECK_TEST(x_stays_in_range),
			DDS_CHECK_TEST(bad_inputs),
			DDS_CHECK_TEST(exact_mode)) },
		{ .name = NULL },
	};

	return dds_check_main("agent-budget", cases, CK_FORK_GETENV);
}
