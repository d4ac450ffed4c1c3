/* test_budget.c: the device's budget rule against brute force: Lemma 1, momentum convergence,
 * the sniff, the x_min clamp and bad inputs. */
#include "budget.h"
#include "test_envelope.h"

#include <check.h>
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
		double x_min = tu_unif(&seed) < 0.5 ? 1e-4 : tu_logu(&seed, 1e-4, 0.1), xb, cb;

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

/* Momentum converges to the exact best response, from wherever it starts (the sniff gets it
 * out of all-local), when offloading has one partition: Cost is then convex where it offloads. */
START_TEST(momentum_converges_one_partition)
{
	uint64_t seed = 21;
	struct dds_budget_cfg cfg, abs_cfg;

	dds_budget_cfg_default(&cfg);
	for (int t = 0; t < 200; t++) {
		struct te_device d;
		struct dds_budget b;
		struct dds_budget_choice c;
		double p = tu_logu(&seed, 3e-13, 3e-12);

		te_random(&d, &seed, 1);
		ck_assert_int_eq(dds_budget_best_response(&d.env, p, cfg.lambda, cfg.x_min, &c), 0);
		if (c.piece < 0)
			continue; /* all-local is best: nothing to converge to */
		ck_assert_int_eq(dds_budget_init(&b, &cfg, c.x * tu_logu(&seed, 0.01, 100)), 0);
		run_steps(&b, &d, p, 400);
		ck_assert_msg(fabs(b.x - c.x) <= 1e-6 * c.x, "case %d: x %.9g, best %.9g", t, b.x,
			      c.x);
		/* The paper's fixed step size, scaled for this device, converges too. */
		abs_cfg = cfg;
		abs_cfg.eta_relative = 0;
		abs_cfg.eta = cfg.eta * c.x / cfg.lambda;
		ck_assert_int_eq(dds_budget_init(&b, &abs_cfg, c.x * tu_logu(&seed, 0.5, 2)), 0);
		run_steps(&b, &d, p, 400);
		ck_assert_msg(fabs(b.x - c.x) <= 1e-6 * c.x, "case %d (fixed eta): x %.9g, best %.9g",
			      t, b.x, c.x);
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
		ck_assert_int_eq(dds_budget_init(&b, &cfg, c.x * (0.95 + 0.1 * tu_unif(&seed))), 0);
		run_steps(&b, &d, p, 600);
		got = te_cost(&d, p, cfg.lambda, b.x);
		ck_assert_msg(got <= c.cost * (1 + 1e-6), "case %d: cost %.9g, best %.9g", t, got,
			      c.cost);
	}
	ck_assert_int_gt(tried, 100);
}
END_TEST

/* A device all-local at its current budget, where renting more pays: the sniff at the K-th
 * all-local step jumps to an x that offloads and beats all-local. Where renting never pays,
 * it stays all-local and x sinks to x_min. */
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
	curve = dds_budget_pieces_curve(&d.env);
	ck_assert_int_eq(dds_budget_init(&b, &cfg, cfg.x_min), 0);
	te_tstar(&d, b.x / p, &w);
	ck_assert(w == 0); /* all-local at x_min */
	for (uint32_t i = 1; i < cfg.sniff_period; i++) {
		ck_assert_int_eq(dds_budget_step(&b, p, 0, &curve), 0);
		ck_assert(b.x == cfg.x_min && b.jumps == 0);
	}
	ck_assert_int_eq(dds_budget_step(&b, p, 0, &curve), 0);
	ck_assert_uint_eq(b.jumps, 1);
	te_tstar(&d, b.x / p, &w);
	ck_assert(w > 0 && te_cost(&d, p, cfg.lambda, b.x) < d.t_local);
	run_steps(&b, &d, p, 300);
	ck_assert_int_eq(dds_budget_best_response(&d.env, p, cfg.lambda, cfg.x_min, &c), 0);
	ck_assert_msg(fabs(b.x - c.x) <= 1e-6 * c.x, "x %.9g, best %.9g", b.x, c.x);

	curve = dds_budget_pieces_curve(&never.env);
	ck_assert_int_eq(dds_budget_init(&b, &cfg, 0.5), 0);
	run_steps(&b, &never, p, 200);
	ck_assert_uint_eq(b.jumps, 0);
	ck_assert_uint_gt(b.sniffs, 10);
	ck_assert(b.x == cfg.x_min);
}
END_TEST

START_TEST(x_stays_in_range)
{
	uint64_t seed = 41;

	for (int t = 0; t < 200; t++) {
		struct dds_budget_cfg cfg;
		struct dds_budget b;

		dds_budget_cfg_default(&cfg);
		cfg.gamma = tu_unif(&seed) * 0.99;
		cfg.eta = tu_logu(&seed, 1e-6, 1e3);
		cfg.eta_relative = tu_unif(&seed) < 0.5;
		cfg.max_rel_step = tu_unif(&seed) < 0.5 ? 0 : tu_unif(&seed);
		cfg.x_min = tu_logu(&seed, 1e-6, 1);
		cfg.x_max = cfg.x_min * tu_logu(&seed, 1.001, 1e9);
		ck_assert_int_eq(dds_budget_init(&b, &cfg, tu_logu(&seed, 1e-9, 1e9)), 0);
		for (int i = 0; i < 500; i++) {
			double u = tu_unif(&seed);
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
	for (int f = 0; f < 7; f++) {
		bad = cfg;
		switch (f) {
		case 0: bad.gamma = 1; break;
		case 1: bad.eta = NAN; break;
		case 2: bad.lambda = 0; break;
		case 3: bad.x_min = -1; break;
		case 4: bad.x_max = bad.x_min; break;
		case 5: bad.sniff_period = 0; break;
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
	ck_assert(b.jumps == 0 && b.sniffs == 5);
	for (int s = 0; s <= DDS_BUDGET_BAD_CURVE + 1; s++)
		ck_assert_ptr_nonnull(dds_budget_status_str((enum dds_budget_status)s));
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
	Suite *s = suite_create("agent-budget");
	TCase *tc = tcase_create("budget");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, lemma1_against_grid);
	tcase_add_test(tc, momentum_converges_one_partition);
	tcase_add_test(tc, momentum_converges_near_best);
	tcase_add_test(tc, sniff_escapes_all_local);
	tcase_add_test(tc, x_stays_in_range);
	tcase_add_test(tc, bad_inputs);
	tcase_add_test(tc, exact_mode);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
