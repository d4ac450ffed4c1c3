/* test_device.c: the device decisions (agent/dds_device.h) against independent min-cuts, a direct drive of budget.h, a brute force of a wide model, and bad inputs. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "budget.h"
#include "dds_device.h"
#include "dds_model.h"
#include "dds_part_model.h"
#include "dds_partition.h"

/* argv: the models of the plan tests (tiny_cnn, tiny_seg, resnet50, vit), then wide_cnn. */
static int g_argc;
static char **g_argv;

static const double REGRESSION[2] = {1.0, 0.0}; /* w_v = flops_v, as dds-server sends */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Log-uniform in [lo, hi]. */
static double rng_logu(uint64_t *s, double lo, double hi)
{
	return lo * pow(hi / lo, (double)(rng_next(s) >> 11) * 0x1.0p-53);
}

static struct dds_model *load(const char *path)
{
	struct dds_model *m = NULL;
	struct dds_err err;

	if (dds_model_load_graph(path, &m, &err))
		ck_abort_msg("%s", err.msg);
	return m;
}

/* The partitioner's own context for the same device, built here from the model: the oracle. */
static struct dds_part_ctx *oracle(const struct dds_model *m, const struct dds_device_profile *p)
{
	struct dds_part_linear lin = {.device_flops = p->layer_seconds ? 1 : p->device_flops,
				      .beta = 1, .up_bw = p->up_bw, .down_bw = p->down_bw};
	struct dds_part_model_input mi;
	struct dds_part_ctx *ctx;
	struct dds_part_err pe;

	ck_assert_int_eq(dds_part_graph_from_model(m, &lin, &mi, &pe), 0);
	for (int v = 0; v < m->n_layers; v++) {
		if (p->layer_seconds)
			mi.a[v] = p->layer_seconds[v];
		mi.w[v] = p->work_kind == 1 ? p->work[0] * m->layers[v].flops + p->work[1]
					    : p->work[v];
	}
	ck_assert_msg(dds_part_ctx_new(&mi.in, &ctx, &pe) == 0, "%s", pe.msg);
	dds_part_model_input_free(&mi);
	return ctx;
}

static struct dds_device *device(const struct dds_model *m, const struct dds_device_profile *p,
				 enum dds_device_rule rule, double x0)
{
	struct dds_device *d = NULL;
	char err[256];

	ck_assert_msg(dds_device_new(m, p, rule, NULL, x0, &d, err, sizeof(err)) == 0, "%s", err);
	return d;
}

/* A profile: the linear model, or random per-layer times (seeded) when `measured`. */
static void profile(const struct dds_model *m, bool measured, double *secs, uint64_t *rng,
		    struct dds_device_profile *p)
{
	*p = (struct dds_device_profile){.device_flops = 2e10, .up_bw = 2e6, .down_bw = 1e7,
					 .work_kind = 1, .work = REGRESSION, .n_work = 2};
	if (!measured)
		return;
	for (int v = 0; v < m->n_layers; v++)
		secs[v] = m->layers[v].flops / 2e10 * rng_logu(rng, 0.2, 5);
	p->layer_seconds = secs;
}

/* The plan at r = x / p equals the min-cut at r: same latency (1e-9 relative), same cut. */
START_TEST(plan_equals_mincut)
{
	uint64_t rng = 42;
	int checked = 0, offload = 0, local = 0;

	for (int a = 1; a < g_argc - 1; a++) {
		struct dds_model *m = load(g_argv[a]);
		double *secs = calloc((size_t)m->n_layers, sizeof(double));

		for (int measured = 0; measured < 2; measured++) {
			struct dds_device_profile p;
			struct dds_part_ctx *ctx;
			double x0 = measured ? 3.0 : 0.5;
			struct dds_device *d;

			profile(m, measured, secs, &rng, &p);
			ctx = oracle(m, &p);
			d = device(m, &p, DDS_DEVICE_MOMENTUM, x0);
			for (int i = 0; i < 300; i++) {
				double price = rng_logu(&rng, 1e-13, 1e-7), r = x0 / price;
				struct dds_device_plan plan;
				struct dds_part_result res;
				struct dds_part_err pe;
				char err[256];

				ck_assert_int_eq(dds_device_decide(d, price, &plan, err, sizeof(err)), 0);
				ck_assert_int_eq(dds_part_solve(ctx, r, &res, &pe), 0);
				ck_assert_msg(fabs(plan.t_expected - res.total) <= 1e-9 * res.total,
					      "%s r %g: plan %.17g, min-cut %.17g", m->name, r,
					      plan.t_expected, res.total);
				ck_assert_int_eq(plan.all_local, res.split.n_local == m->n_layers);
				ck_assert_int_eq(plan.n_values, plan.all_local ? 0 : res.split.n_cut);
				ck_assert(memcmp(plan.values, res.split.cut,
						 sizeof(int) * (size_t)plan.n_values) == 0);
				ck_assert(memcmp(plan.local, res.split.local, (size_t)m->n_layers) == 0);
				if (!plan.all_local) {
					uint64_t bytes = 0;

					for (int k = 0; k < plan.n_values; k++)
						bytes += dds_shape_numel(dds_model_value_shape(
							m, plan.values[k])) * 4;
					ck_assert_uint_eq(plan.payload_bytes, bytes);
					ck_assert(plan.x == x0 && fabs(plan.r - r) <= 1e-15 * r);
					ck_assert(fabs(plan.server_work - res.split.server_work) <=
						  1e-12 * res.split.server_work);
				}
				offload += !plan.all_local;
				local += plan.all_local;
				checked++;
			}
			dds_device_free(d);
			dds_part_ctx_free(ctx);
		}
		free(secs);
		dds_model_free(m);
	}
	printf("plan_equals_mincut: %d decisions (%d offloading, %d all-local)\n", checked,
	       offload, local);
	ck_assert(offload > 0 && local > 0);
}
END_TEST

/* The budget pieces of the partitioner's envelope, built here (every piece fits: zoo models). */
static struct dds_budget_piece *envelope_pieces(struct dds_part_ctx *ctx,
						struct dds_part_envelope **env,
						struct dds_budget_pieces *out)
{
	struct dds_part_result all;
	struct dds_part_err pe;
	struct dds_budget_piece *bp;
	int n;

	ck_assert_int_eq(dds_part_envelope_new(ctx, env, &pe), 0);
	n = dds_part_envelope_count(*env);
	bp = calloc((size_t)n, sizeof(*bp));
	for (int i = 0; i < n; i++) {
		const struct dds_part_piece *pc = dds_part_envelope_piece(*env, i);

		ck_assert_int_le(pc->split.n_cut, DDS_DEVICE_MAX_CUT);
		bp[i] = (struct dds_budget_piece){pc->a, pc->w, pc->r_lo, pc->r_hi};
	}
	ck_assert_int_eq(dds_part_edge_only(ctx, 1.0, &all, &pe), 0);
	*out = (struct dds_budget_pieces){bp, n, all.total};
	return bp;
}

/* A price sequence: a random walk in log p, with jumps. */
static double next_price(uint64_t *rng, double p)
{
	double f = rng_logu(rng, 0.8, 1.25);

	if (rng_next(rng) % 17 == 0)
		f = rng_logu(rng, 0.01, 100);
	return fmin(fmax(p * f, 1e-13), 1e-7);
}

/* The device's budgets, step by step, equal budget.h driven directly with the envelope. */
START_TEST(budget_equals_direct)
{
	uint64_t rng = 7;
	int steps = 0, jumps = 0, offload = 0;

	for (int a = 1; a < g_argc - 1; a++) {
		struct dds_model *m = load(g_argv[a]);

		for (int rule = DDS_DEVICE_MOMENTUM; rule <= DDS_DEVICE_EXACT; rule++) {
			struct dds_device_profile p;
			struct dds_part_ctx *ctx;
			struct dds_part_envelope *env;
			struct dds_budget_pieces pieces;
			struct dds_budget_piece *bp;
			struct dds_budget_curve curve;
			struct dds_budget_cfg cfg;
			struct dds_budget b;
			struct dds_device *d;
			double price = 1e-10, x0 = 2.0;

			profile(m, false, NULL, &rng, &p);
			ctx = oracle(m, &p);
			bp = envelope_pieces(ctx, &env, &pieces);
			curve = dds_budget_pieces_curve(&pieces);
			dds_budget_cfg_default(&cfg);
			ck_assert_int_eq(dds_budget_init(&b, &cfg, x0), DDS_BUDGET_OK);
			d = device(m, &p, (enum dds_device_rule)rule, x0);
			ck_assert_int_eq(dds_device_n_pieces(d), pieces.n);
			ck_assert(fabs(dds_device_t_local(d) - pieces.t_local) <= 1e-12 * pieces.t_local);
			for (int i = 0; i < 200; i++, steps++) {
				struct dds_device_plan plan;
				struct dds_budget_choice ch;
				const struct dds_part_piece *pc;
				bool all_local;
				double w;
				char err[256];

				price = next_price(&rng, price);
				ck_assert_int_eq(dds_device_decide(d, price, &plan, err, sizeof(err)), 0);
				pc = dds_part_envelope_lookup(env, b.x / price);
				all_local = !(b.x > 0) || pc->split.n_local == m->n_layers;
				w = all_local ? 0 : pc->w;
				ck_assert_int_eq(plan.all_local, all_local);
				ck_assert_msg(plan.x == (all_local ? 0 : b.x),
					      "step %d: plan x %.17g, direct x %.17g", i, plan.x, b.x);
				offload += !plan.all_local;
				ck_assert_int_eq(dds_device_update(d, price, err, sizeof(err)), 0);
				if (rule == DDS_DEVICE_EXACT)
					dds_budget_step_exact(&b, price, &pieces, &ch);
				else
					dds_budget_step(&b, price, w, &curve);
				ck_assert_msg(dds_device_budget(d)->x == b.x &&
					      dds_device_budget(d)->m == b.m,
					      "step %d: device x %.17g, direct %.17g", i,
					      dds_device_budget(d)->x, b.x);
			}
			jumps += (int)b.jumps;
			dds_device_free(d);
			free(bp);
			dds_part_envelope_free(env);
			dds_part_ctx_free(ctx);
		}
		dds_model_free(m);
	}
	printf("budget_equals_direct: %d steps, %d offloading, %d sniff jumps\n", steps, offload,
	       jumps);
	ck_assert(offload > 0 && offload < steps && jumps > 0);
}
END_TEST

/* The wide model's splits, by brute force: every valid local set, its (A, W, tensors). */
struct wide_split {
	double a, w;
	int n_cut;
};

/* Latency terms of one local set (mask), from the section-3 formulas, written out here. */
static struct wide_split wide_terms(const struct dds_model *m, const struct dds_device_profile *p,
				    const uint8_t *local)
{
	struct wide_split s = {0};
	int n = m->n_layers;

	for (int v = 0; v < n; v++) {
		if (local[v])
			s.a += p->layer_seconds[v];
		else
			s.w += p->work[0] * m->layers[v].flops + p->work[1];
	}
	for (int x = 0; x <= n - 1; x++) { /* value x: 0 = input, k+1 = layer k */
		bool on_dev = x == 0 || local[x - 1], feeds_server = false;

		for (int v = 0; v < n; v++)
			for (int j = 0; j < m->layers[v].n_in; j++)
				feeds_server |= !local[v] && m->layers[v].in[j] == x;
		if (on_dev && feeds_server) {
			s.a += (double)dds_shape_numel(dds_model_value_shape(m, x)) * 4 / p->up_bw;
			s.n_cut++;
		}
	}
	if (!local[m->output])
		s.a += (double)m->layers[m->output].out_bytes / p->down_bw;
	return s;
}

/* wide_cnn: 17 branches feed one concat. With the concat slow on the device, the best split for
 * r in about [1100, 2800] uploads the 17 branch outputs: never sent. The plan is then all-local
 * or server-only, and with these times that is the best of all splits that fit, found here by
 * brute force over every valid split (the device does not search them all: docs/agent.md). */
START_TEST(max_cut_restriction)
{
	struct dds_model *m = load(g_argv[g_argc - 1]);
	int n = m->n_layers, nb = n - 3, wide_seen = 0, n_splits = 0, server_only = 0;
	double *secs = calloc((size_t)n, sizeof(double));
	struct wide_split *all = calloc((size_t)4 << nb, sizeof(*all));
	uint8_t *mask = calloc((size_t)n, 1);
	struct dds_device_profile p = {.up_bw = 1e4, .down_bw = 1e5, .work_kind = 1,
				       .work = REGRESSION, .n_work = 2, .layer_seconds = secs};
	struct dds_part_envelope *env;
	struct dds_part_ctx *ctx;
	struct dds_part_err pe;
	struct dds_device *d;
	bool has_wide = false;

	ck_assert_int_eq(nb, 17);
	for (int v = 0; v < nb; v++)
		secs[v] = 0.1; /* a branch pays on the device only where r < ~900 (all-local there) */
	secs[nb] = 5.0;      /* concat: the 17-tensor cut beats uploading the concat's output */
	secs[nb + 2] = 0.01; /* fc */
	for (unsigned s = 0; s < (1u << nb); s++)
		for (int tail = 0; tail < 4; tail++) {
			if (tail && s != (1u << nb) - 1)
				continue; /* the concat needs every branch */
			for (int v = 0; v < nb; v++)
				mask[v] = (s >> v) & 1;
			for (int t = 0; t < 3; t++)
				mask[nb + t] = t < tail;
			all[n_splits++] = wide_terms(m, &p, mask);
		}
	ctx = oracle(m, &p);
	ck_assert_int_eq(dds_part_envelope_new(ctx, &env, &pe), 0);
	for (int i = 0; i < dds_part_envelope_count(env); i++)
		has_wide |= dds_part_envelope_piece(env, i)->split.n_cut > DDS_DEVICE_MAX_CUT;
	ck_assert_msg(has_wide, "the test model must have an optimal split of > 16 tensors");
	d = device(m, &p, DDS_DEVICE_MOMENTUM, 1.0);
	for (double price = 1e-6; price < 1e3; price *= 1.07) {
		double r = 1.0 / price, best = INFINITY, best_all = INFINITY;
		struct dds_device_plan plan;
		struct dds_part_result ev;
		char err[256];

		for (int i = 0; i < n_splits; i++) {
			double t = all[i].a + (all[i].w > 0 ? all[i].w / r : 0);

			best_all = fmin(best_all, t);
			if (all[i].n_cut <= DDS_DEVICE_MAX_CUT)
				best = fmin(best, t);
		}
		ck_assert_int_eq(dds_device_decide(d, price, &plan, err, sizeof(err)), 0);
		ck_assert_int_le(plan.n_values, DDS_DEVICE_MAX_CUT);
		ck_assert_msg(fabs(plan.t_expected - best) <= 1e-9 * best,
			      "r %g: plan %.17g, best split that fits %.17g", r, plan.t_expected, best);
		ck_assert_int_eq(dds_part_eval(ctx, plan.local, r, &ev, &pe), 0);
		ck_assert(fabs(ev.total - plan.t_expected) <= 1e-9 * best);
		if (best_all < best * (1 - 1e-9)) { /* a window the restriction changes */
			wide_seen++;
			server_only += plan.n_values == 1 && plan.values[0] == 0;
		}
	}
	printf("max_cut_restriction: %d prices where the best split needs > %d tensors, %d "
	       "of them server-only\n", wide_seen, DDS_DEVICE_MAX_CUT, server_only);
	ck_assert(wide_seen > 0 && server_only > 0);
	dds_device_free(d);
	dds_part_envelope_free(env);
	dds_part_ctx_free(ctx);
	free(mask);
	free(all);
	free(secs);
	dds_model_free(m);
}
END_TEST

/* Each bad input gives -1 and a reason, and leaves *out alone. */
START_TEST(bad_inputs)
{
	struct dds_model *m = load(g_argv[1]);
	int n = m->n_layers;
	double *secs = calloc((size_t)n, sizeof(double)), table_short[1] = {1};
	double bad_work[2] = {NAN, 0}, neg_work[2] = {-1, 0}, reg3[3] = {1, 0, 0};
	struct dds_device_profile good = {.device_flops = 1e9, .up_bw = 1e6, .down_bw = 1e6,
					  .work_kind = 1, .work = REGRESSION, .n_work = 2};
	struct dds_device_profile bad[12];
	struct dds_budget_cfg cfg;
	struct dds_device *d = NULL, *sentinel = (struct dds_device *)&cfg;
	struct dds_device_plan plan;
	char err[256];
	int nb = 0;

	for (int i = 0; i < 12; i++)
		bad[i] = good;
	bad[nb++].device_flops = 0;
	bad[nb++].up_bw = -1;
	bad[nb++].down_bw = NAN;
	bad[nb].work_kind = 2; nb++;
	bad[nb].n_work = 3; bad[nb].work = reg3; nb++;
	bad[nb].work_kind = 0; bad[nb].work = table_short; bad[nb].n_work = 1; nb++;
	bad[nb++].work = bad_work;
	bad[nb++].work = neg_work;
	bad[nb++].work = NULL;
	secs[0] = -1;
	bad[nb++].layer_seconds = secs;
	for (int i = 0; i < nb; i++) {
		struct dds_device *out = sentinel;

		err[0] = 0;
		ck_assert_msg(dds_device_new(m, &bad[i], DDS_DEVICE_MOMENTUM, NULL, 1, &out, err,
					     sizeof(err)) == -1, "bad profile %d accepted", i);
		ck_assert_msg(err[0] && out == sentinel, "bad profile %d: no reason", i);
		printf("bad profile %d: %s\n", i, err);
	}
	secs[0] = NAN;
	ck_assert_int_eq(dds_device_new(m, &bad[nb - 1], DDS_DEVICE_EXACT, NULL, 1, &d, err, 8), -1);
	ck_assert_int_eq(dds_device_new(NULL, &good, DDS_DEVICE_EXACT, NULL, 1, &d, NULL, 0), -1);
	ck_assert_int_eq(dds_device_new(m, NULL, DDS_DEVICE_EXACT, NULL, 1, &d, err, sizeof(err)), -1);
	ck_assert_int_eq(dds_device_new(m, &good, DDS_DEVICE_EXACT, NULL, 1, NULL, err, sizeof(err)), -1);
	ck_assert_int_eq(dds_device_new(m, &good, (enum dds_device_rule)7, NULL, 1, &d, err,
					sizeof(err)), -1);
	dds_budget_cfg_default(&cfg);
	cfg.x_min = 0;
	ck_assert_int_eq(dds_device_new(m, &good, DDS_DEVICE_MOMENTUM, &cfg, 1, &d, err,
					sizeof(err)), -1);
	printf("bad budget config: %s\n", err);
	ck_assert(d == NULL);
	d = device(m, &good, DDS_DEVICE_MOMENTUM, NAN); /* NaN x0 starts at x_min */
	ck_assert(dds_device_budget(d)->x == dds_device_budget(d)->cfg.x_min);
	for (int i = 0; i < 4; i++) {
		double prices[4] = {0, -1, NAN, INFINITY};

		ck_assert_int_eq(dds_device_decide(d, prices[i], &plan, err, sizeof(err)), -1);
		ck_assert_int_eq(dds_device_update(d, prices[i], err, sizeof(err)), -1);
	}
	printf("bad price: %s\n", err);
	ck_assert_int_eq(dds_device_decide(NULL, 1, &plan, err, sizeof(err)), -1);
	ck_assert_int_eq(dds_device_decide(d, 1, NULL, err, sizeof(err)), -1);
	ck_assert_int_eq(dds_device_update(NULL, 1, err, sizeof(err)), -1);
	ck_assert_int_eq(dds_device_update(d, 1, err, sizeof(err)), 0); /* update before decide */
	dds_device_free(d);
	dds_device_free(NULL);
	free(secs);
	dds_model_free(m);
}
END_TEST

int main(int argc, char **argv)
{
	struct dds_check_case cases[] = {
		{ .name = "device", .timeout = 300, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(plan_equals_mincut),
			DDS_CHECK_TEST(budget_equals_direct),
			DDS_CHECK_TEST(max_cut_restriction),
			DDS_CHECK_TEST(bad_inputs)) },
		{ .name = NULL },
	};

	if (argc < 3) {
		fprintf(stderr, "usage: test_device MODEL.json ... WIDE_MODEL.json\n");
		return 2;
	}
	g_argc = argc;
	g_argv = argv;
	return dds_check_main("agent-device", cases, CK_FORK_GETENV);
}
