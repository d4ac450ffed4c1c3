/* test_equilibrium.c: the equilibrium price by bisection against a dense scan of the demand, the
 * monotonicity it relies on, and devices running the paper's rule through the market. */
#include "../check_main.h"
#include "budget.h"
#include "dds_pricing.h"
#include "test_envelope.h"

#include <string.h>

#define MAX_DEV 40

struct player {
	struct te_device d;
	double lambda, x_min;
};

static double best_x(void *ctx, double p)
{
	struct player *pl = ctx;
	struct dds_budget_choice c;

	ck_assert_int_eq(dds_budget_best_response(&pl->d.env, p, pl->lambda, pl->x_min, &c), 0);
	return c.x;
}

struct game {
	size_t n;
	struct player pl[MAX_DEV];
	struct dds_eq_player eq[MAX_DEV];
	double R, p0;
};

static void game_random(struct game *g, uint64_t *seed, int max_lines)
{
	g->n = 1 + (size_t)(dds_rand_unit(seed) * (MAX_DEV - 1));
	g->p0 = tu_logu(seed, 1e-14, 1e-12);
	g->R = (double)g->n * tu_logu(seed, 1e9, 1e12);
	for (size_t i = 0; i < g->n; i++) {
		te_random(&g->pl[i].d, seed, max_lines);
		g->pl[i].lambda = tu_logu(seed, 0.3, 3);
		g->pl[i].x_min = 1e-4;
		g->eq[i] = (struct dds_eq_player){ .best_x = best_x, .ctx = &g->pl[i] };
	}
}

/* D(p) = sum x_i*(p) / p, the plain way. */
static double demand(struct game *g, double p)
{
	double s = 0;

	for (size_t i = 0; i < g->n; i++)
		s += best_x(&g->pl[i], p) / p;
	return s;
}

START_TEST(demand_never_increases)
{
	uint64_t seed = 61;
	int f_not_monotone = 0;

	for (int t = 0; t < 20; t++) {
		struct game g;
		double p = 0, prev_d = INFINITY, prev_f = 0;

		game_random(&g, &seed, 6);
		for (int j = 0; j <= 1500; j++) {
			double d;

			p = g.p0 * pow(1e5, j / 1500.0);
			d = demand(&g, p);
			ck_assert_msg(d <= prev_d * (1 + 1e-12), "case %d: D rises at p = %g", t, p);
			f_not_monotone += d * p < prev_f * (1 - 1e-9);
			prev_d = d;
			prev_f = d * p;
		}
	}
	/* sum x_i*(p) itself does fall in places: bisecting on f(p) - p would be wrong. */
	ck_assert_int_gt(f_not_monotone, 0);
}
END_TEST

START_TEST(bisection_matches_scan)
{
	uint64_t seed = 71 + (uint64_t)_i * 1000;
	const double ratio = 1.002;
	int above_base = 0, smooth = 0;

	for (int t = 0; t < 25; t++) {
		struct game g;
		struct dds_eq_result r;
		char err[256];
		double p;

		game_random(&g, &seed, 1 + _i * 5);
		ck_assert_msg(dds_pricing_equilibrium(g.eq, g.n, g.R, g.p0, 1e-10, &r, err,
						      sizeof(err)) == 0, "%s", err);
		/* The scan: the first grid price where the demand fits. */
		for (p = g.p0; demand(&g, p) > g.R; p *= ratio)
			;
		ck_assert_msg(r.price <= p * (1 + 1e-9) && r.price > p / ratio * (1 - 1e-9),
			      "case %d: bisection %.10g, scan %.10g", t, r.price, p);
		ck_assert(r.demand <= g.R && r.demand == demand(&g, r.price));
		ck_assert(r.at_base == (p == g.p0));
		if (r.at_base) {
			ck_assert(r.price == g.p0);
			continue;
		}
		above_base++;
		ck_assert(r.demand_below > g.R);
		/* Where D is continuous at p*, p* is a fixed point of max(p0, sum x / R). */
		if (r.demand_below - r.demand < 1e-6 * g.R) {
			double sum_x = 0;

			for (size_t i = 0; i < g.n; i++)
				sum_x += best_x(&g.pl[i], r.price);
			ck_assert_msg(fabs(sum_x / g.R - r.price) <= 1e-6 * r.price,
				      "case %d: p* %.10g, sum x / R %.10g", t, r.price, sum_x / g.R);
			smooth++;
		}
	}
	ck_assert_int_gt(above_base, 5);
	ck_assert_int_gt(smooth, 0);
}
END_TEST

static double bad_player(void *ctx, double p)
{
	(void)p;
	return *(double *)ctx;
}

/* A budget that grows with the price as fast as the price: D(p) = 2 for ever. */
static double greedy_player(void *ctx, double p)
{
	(void)ctx;
	return 2 * p;
}

START_TEST(bad_input)
{
	double v = NAN;
	struct dds_eq_player pl = { .best_x = bad_player, .ctx = &v };
	struct dds_eq_result r;
	char err[256];

	ck_assert_int_eq(dds_pricing_equilibrium(&pl, 1, 10, 1, 1e-9, &r, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "player 0"), "%s", err);
	v = -1;
	ck_assert_int_eq(dds_pricing_equilibrium(&pl, 1, 10, 1, 1e-9, &r, err, sizeof(err)), -1);
	ck_assert_int_eq(dds_pricing_equilibrium(&pl, 1, 0, 1, 1e-9, &r, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "capacity"), "%s", err);
	ck_assert_int_eq(dds_pricing_equilibrium(&pl, 1, 1, NAN, 1e-9, &r, err, sizeof(err)), -1);
	ck_assert_int_eq(dds_pricing_equilibrium(&pl, 1, 1, 1, 0, &r, err, sizeof(err)), -1);
	ck_assert_int_eq(dds_pricing_equilibrium(NULL, 1, 1, 1, 1e-9, &r, NULL, 0), -1);
	/* Demand that never falls below capacity is reported. */
	pl.best_x = greedy_player;
	ck_assert_int_eq(dds_pricing_equilibrium(&pl, 1, 1, 1, 1e-9, &r, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "stays above capacity"), "%s", err);
	/* No players: the base price. */
	ck_assert_int_eq(dds_pricing_equilibrium(NULL, 0, 1, 2, 1e-9, &r, err, sizeof(err)), 0);
	ck_assert(r.price == 2 && r.at_base && r.demand == 0);
}
END_TEST

/* Devices running the paper's rule against the real market (submit, close the round, read the
 * price) settle at the price the bisection predicts. With the paper's sniff
 * (cfg.sniff_offloading = 0) the rule is local: an offloading device never compares with
 * all-local, so it can keep offloading where its best response is all-local. The instances checked are those where, at the equilibrium, every device's best
 * response offloads with a clear margin over all-local, on one partition (so its cost is
 * convex where it offloads). */
static bool all_offload(struct game *g, double p)
{
	for (size_t i = 0; i < g->n; i++) {
		struct dds_budget_choice c;

		ck_assert_int_eq(dds_budget_best_response(&g->pl[i].d.env, p, g->pl[i].lambda,
							  g->pl[i].x_min, &c), 0);
		if (c.piece < 0 || c.cost > 0.95 * g->pl[i].d.t_local)
			return false;
	}
	return true;
}

START_TEST(market_dynamics_reach_equilibrium)
{
	uint64_t seed = 81;
	int checked = 0;

	for (int t = 0; t < 40; t++) {
		struct game g;
		struct dds_eq_result eq;
		struct dds_pricing_cfg cfg;
		struct dds_pricing *pr;
		struct dds_budget_cfg bc;
		struct dds_budget b[MAX_DEV];
		struct dds_pricing_round rd;
		double p;

		game_random(&g, &seed, 1);
		g.n = g.n > 10 ? 10 : g.n; /* few devices: all of them offloading is likely */
		ck_assert_int_eq(dds_pricing_equilibrium(g.eq, g.n, g.R, g.p0, 1e-10, &eq, NULL, 0), 0);
		if (eq.at_base || eq.demand_below - eq.demand > 1e-6 * g.R ||
		    !all_offload(&g, eq.price))
			continue;
		dds_pricing_cfg_default(&cfg);
		cfg.capacity = g.R;
		cfg.base_price = g.p0;
		pr = dds_pricing_create(&cfg, NULL, 0);
		ck_assert(pr);
		dds_budget_cfg_default(&bc);
		for (size_t i = 0; i < g.n; i++) {
			bc.lambda = g.pl[i].lambda;
			ck_assert_int_eq(dds_budget_init(&b[i], &bc, best_x(&g.pl[i], g.p0) + 1e-3), 0);
		}
		p = g.p0;
		for (int round = 0; round < 400; round++) {
			for (size_t i = 0; i < g.n; i++) {
				struct dds_budget_curve c = dds_budget_pieces_curve(&g.pl[i].d.env);
				double w;

				te_tstar(&g.pl[i].d, b[i].x / p, &w);
				/* An all-local device sends nothing: it is not in the market. */
				if (w > 0)
					ck_assert_int_eq(dds_pricing_submit(pr, (uint32_t)i, b[i].x), 0);
				ck_assert_int_eq(dds_budget_step(&b[i], p, w, &c), 0);
			}
			dds_pricing_close_round(pr, &rd);
			p = rd.price;
		}
		ck_assert_msg(fabs(p - eq.price) <= 1e-3 * eq.price,
			      "case %d: market price %.6g, equilibrium %.6g", t, p, eq.price);
		checked++;
		dds_pricing_free(pr);
	}
	ck_assert_int_gt(checked, 2);
}
END_TEST

int main(void)
{
	struct dds_check_case cases[] = {
		{ .name = "equilibrium", .timeout = 240, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(demand_never_increases),
			DDS_CHECK_LOOP(bisection_matches_scan, 0, 2),
			DDS_CHECK_TEST(bad_input),
			DDS_CHECK_TEST(market_dynamics_reach_equilibrium)) },
		{ .name = NULL },
	};

	return dds_check_main("pricing-equilibrium", cases, CK_FORK_GETENV);
}
