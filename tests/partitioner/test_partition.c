/* test_partition.c: the min-cut, the envelope and the baselines against brute force on random
 * DAGs (all comparisons within a relative 1e-9, REF_TOL), and clear errors on bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "dds_partition.h"
#include "randdag.h"
#include "refcheck.h"

/* Random DAGs in the main test; the other tests use a fraction of it. */
static int n_dags = 1000;

static struct dds_part_ctx *make_ctx(const struct randdag *g)
{
	struct dds_part_ctx *ctx = NULL;
	struct dds_part_err err = {{0}};
	ck_assert_msg(dds_part_ctx_new(&g->in, &ctx, &err) == 0, "%s", err.msg);
	return ctx;
}

START_TEST(mincut_equals_brute_force)
{
	uint64_t s = 42;
	long splits = 0;
	int multi_succ = 0;
	for (int i = 0; i < n_dags; i++) {
		struct randdag g;
		randdag_make(&g, &s, RANDDAG_MAX);
		struct dds_part_ctx *ctx = make_ctx(&g);
		const double rs[] = {g.r, g.r * 100, g.r / 100, INFINITY};
		for (size_t j = 0; j < sizeof(rs) / sizeof(rs[0]); j++) {
			struct dds_part_result res;
			struct dds_part_err err;
			uint8_t best_local[RANDDAG_MAX];
			double best;
			long c = ref_best(&g.in, rs[j], 1L << 20, &best, best_local);
			ck_assert(c > 0);
			splits += c;
			ck_assert_msg(dds_part_solve(ctx, rs[j], &res, &err) == 0, "%s", err.msg);
			ref_check_result(&g.in, &res, rs[j]);
			ck_assert_msg(ref_close(res.total, best), "dag %d r %g: min-cut %.17g, brute %.17g",
				      i, rs[j], res.total, best);
			ck_assert_msg(ref_close(dds_part_last_cut_value(ctx), best),
				      "dag %d: flow %.17g, brute %.17g", i,
				      dds_part_last_cut_value(ctx), best);
		}
		for (int x = 0; x < g.in.n; x++) {
			int consumers = 0;
			for (int e = 0; e < g.in.in_off[g.in.n]; e++)
				consumers += g.in_val[e] == x;
			multi_succ += consumers > 1;
		}
		dds_part_ctx_free(ctx);
	}
	/* The generator must exercise what the issue asks for. */
	ck_assert_int_gt(multi_succ, n_dags);
	ck_assert_int_gt(splits, 100L * n_dags);
}
END_TEST

START_TEST(envelope_equals_fresh_mincut)
{
	uint64_t s = 7;
	int pieces = 0, count = n_dags * 3 / 10;
	for (int i = 0; i < count; i++) {
		struct randdag g;
		struct dds_part_envelope *env;
		struct dds_part_err err;
		randdag_make(&g, &s, RANDDAG_MAX);
		struct dds_part_ctx *ctx = make_ctx(&g);
		ck_assert_msg(dds_part_envelope_new(ctx, &env, &err) == 0, "%s", err.msg);
		ref_check_envelope(&g.in, ctx, env, 1e4, 1e16);
		pieces += dds_part_envelope_count(env);
		dds_part_envelope_free(env);
		dds_part_ctx_free(ctx);
	}
	ck_assert_int_gt(pieces, count); /* curves with several pieces are common */
}
END_TEST

START_TEST(baselines_match_reference)
{
	uint64_t s = 99;
	for (int i = 0; i < n_dags * 3 / 10; i++) {
		struct randdag g;
		struct dds_part_result eo, so, ns, dads, mc;
		uint8_t loc[RANDDAG_MAX], up[RANDDAG_MAX + 1];
		randdag_make(&g, &s, RANDDAG_MAX);
		struct dds_part_ctx *ctx = make_ctx(&g);
		double r = g.r, best_prefix = INFINITY;
		ck_assert(dds_part_edge_only(ctx, r, &eo, NULL) == 0);
		memset(loc, 1, sizeof(loc));
		ck_assert(ref_close(eo.total, ref_latency(&g.in, loc, r, up)));
		ck_assert_int_eq(eo.split.n_local, g.in.n);
		ck_assert(dds_part_server_only(ctx, r, &so, NULL) == 0);
		memset(loc, 0, sizeof(loc));
		ck_assert(ref_close(so.total, ref_latency(&g.in, loc, r, up)));
		ck_assert_int_eq(so.split.n_local, 0);
		for (int k = 0; k <= g.in.n; k++) {
			for (int j = 0; j < g.in.n; j++)
				loc[j] = j < k;
			best_prefix = fmin(best_prefix, ref_latency(&g.in, loc, r, up));
		}
		ck_assert(dds_part_neurosurgeon(ctx, r, &ns, NULL) == 0);
		ref_check_result(&g.in, &ns, r);
		ck_assert(ref_close(ns.total, best_prefix));
		ck_assert(dds_part_dads(ctx, r, &dads, NULL) == 0);
		ck_assert(dds_part_solve(ctx, r, &mc, NULL) == 0);
		ck_assert(ref_close(dads.total, mc.total));
		ck_assert(mc.total <= fmin(fmin(eo.total, so.total), ns.total) * (1 + REF_TOL));
		dds_part_ctx_free(ctx);
	}
}
END_TEST

START_TEST(update_equals_new_context)
{
	uint64_t s = 5;
	for (int i = 0; i < n_dags / 10; i++) {
		struct randdag g, h;
		struct dds_part_result r1, r2;
		randdag_make(&g, &s, RANDDAG_MAX);
		struct dds_part_ctx *ctx = make_ctx(&g);
		h = g;
		h.in.in_off = h.in_off;
		h.in.in_val = h.in_val;
		h.in.a = h.a;
		h.in.w = h.w;
		h.in.d = h.d;
		for (int k = 0; k < h.in.n; k++)
			h.a[k] = randdag_log(&s, 1e-4, 1e-1);
		h.in.up_bw *= 0.1;
		ck_assert(dds_part_ctx_update(ctx, &h.in, NULL) == 0);
		struct dds_part_ctx *fresh = make_ctx(&h);
		ck_assert(dds_part_solve(ctx, h.r, &r1, NULL) == 0);
		ck_assert(dds_part_solve(fresh, h.r, &r2, NULL) == 0);
		ck_assert(ref_close(r1.total, r2.total));
		dds_part_ctx_free(fresh);
		dds_part_ctx_free(ctx);
	}
}
END_TEST

/* A fixed small graph: input -> L0 -> L1, L0 -> L2, (L1, L2) -> L3. */
static const int t_off[] = {0, 1, 2, 3, 5};
static const int t_val[] = {0, 1, 1, 2, 3};
static const double t_a[] = {1, 2, 3, 4}, t_w[] = {1, 1, 1, 1}, t_d[] = {1, 1, 1, 1};

static struct dds_part_input tiny(void)
{
	return (struct dds_part_input){.n = 4, .in_off = t_off, .in_val = t_val, .a = t_a,
				       .w = t_w, .d = t_d, .d_in = 1, .d_out = 1, .output = 3,
				       .up_bw = 1, .down_bw = 1};
}

static void expect_error(const struct dds_part_input *in, const char *what)
{
	struct dds_part_ctx *ctx = NULL;
	struct dds_part_err err = {{0}};
	ck_assert_int_eq(dds_part_ctx_new(in, &ctx, &err), -1);
	ck_assert_ptr_null(ctx);
	ck_assert_msg(strstr(err.msg, what), "error '%s' does not mention '%s'", err.msg, what);
}

START_TEST(bad_input_is_refused)
{
	struct dds_part_input in = tiny();
	int bad_val[] = {0, 1, 1, 2, 4};
	double bad_a[] = {1, -2, 3, 4}, nan_w[] = {1, 1, NAN, 1};
	expect_error(NULL, "missing");
	in.n = 0;
	expect_error(&in, "layers");
	in = tiny();
	in.output = 4;
	expect_error(&in, "output");
	in = tiny();
	in.in_val = bad_val;
	expect_error(&in, "topological");
	in = tiny();
	in.a = bad_a;
	expect_error(&in, "layer 1");
	in = tiny();
	in.w = nan_w;
	expect_error(&in, "layer 2");
	in = tiny();
	in.up_bw = 0;
	expect_error(&in, "bandwidth");
	in = tiny();
	in.d_in = INFINITY;
	expect_error(&in, "sizes");
}
END_TEST

START_TEST(bad_calls_are_refused)
{
	struct dds_part_input in = tiny();
	struct dds_part_ctx *ctx = NULL;
	struct dds_part_err err = {{0}};
	struct dds_part_result res;
	ck_assert(dds_part_ctx_new(&in, &ctx, &err) == 0);
	const double bad_r[] = {0, -1, NAN, 1e-320};
	for (size_t i = 0; i < sizeof(bad_r) / sizeof(bad_r[0]); i++) {
		ck_assert_int_eq(dds_part_solve(ctx, bad_r[i], &res, &err), -1);
		ck_assert(strstr(err.msg, "allocation r"));
		ck_assert_int_eq(dds_part_neurosurgeon(ctx, bad_r[i], &res, &err), -1);
	}
	const uint8_t invalid[] = {1, 0, 1, 1}; /* L1 on the server feeds local L3 */
	ck_assert_int_eq(dds_part_eval(ctx, invalid, 1, &res, &err), -1);
	ck_assert(strstr(err.msg, "not valid"));
	/* Capacities near "infinity" are refused, not silently wrong. */
	ck_assert_int_eq(dds_part_solve(ctx, 1e-29, &res, &err), -1);
	ck_assert(strstr(err.msg, "too large"));
	/* An update must keep the graph. */
	int other_val[] = {0, 1, 0, 2, 3};
	in.in_val = other_val;
	ck_assert_int_eq(dds_part_ctx_update(ctx, &in, &err), -1);
	ck_assert(strstr(err.msg, "same graph"));
	ck_assert(dds_part_solve(ctx, 1, &res, &err) == 0);
	dds_part_ctx_free(ctx);
}
END_TEST

/* The tiny graph by hand: the latency graph has the split copy of L0 and the reverse edges. */
START_TEST(tiny_graph_dump)
{
	struct dds_part_input in = tiny();
	struct dds_part_ctx *ctx = NULL;
	char *buf = NULL;
	size_t len = 0;
	ck_assert(dds_part_ctx_new(&in, &ctx, NULL) == 0);
	FILE *f = open_memstream(&buf, &len);
	ck_assert(dds_part_write_graph(ctx, 2, f, NULL) == 0);
	fclose(f);
	const char *want[] = {"e L0 0.5\n", "L3 s 4\n", "e in inf\n", "e out 1\n", "out L3 inf\n",
			      "in L0 1\n", "L0 S1 1\n", "S1 L1 inf\n", "S1 L2 inf\n", "L2 L0 inf\n",
			      "L3 L2 inf\n"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(strstr(buf, want[i]), "no edge '%s' in\n%s", want[i], buf);
	free(buf);
	dds_part_ctx_free(ctx);
}
END_TEST

/* argv[1] "emulated" (cross builds run by qemu): no fork per test, Check's forking hangs under
 * qemu-user. */
int main(int argc, char **argv)
{
	struct dds_check_case cases[] = {
		{ .name = "core", .timeout = 600, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(mincut_equals_brute_force),
			DDS_CHECK_TEST(envelope_equals_fresh_mincut),
			DDS_CHECK_TEST(baselines_match_reference),
			DDS_CHECK_TEST(update_equals_new_context),
			DDS_CHECK_TEST(bad_input_is_refused),
			DDS_CHECK_TEST(bad_calls_are_refused),
			DDS_CHECK_TEST(tiny_graph_dump)) },
		{ .name = NULL },
	};

	return dds_check_main("partitioner", cases, dds_check_fork_mode(argc, argv));
}
