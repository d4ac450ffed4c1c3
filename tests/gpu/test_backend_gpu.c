/* test_backend_gpu.c: the CUDA backend against the CPU engine: every op on small random graphs
 * and the four zoo models at batch 1, 8 and 32 (ggml's test-backend-ops, for gpu_exec), and
 * merged splits: a bridge plan (value outputs) then the meet plan against the tail alone.
 *
 * Error measure: max |cuda - cpu| / max |cpu| over the whole output of a batch. Tolerances:
 * OPS_TOL for the small graphs (reference: the CPU engine's naive double-accumulating kernels),
 * ZOO_TOL for the zoo models (reference: the CPU engine's fast path, itself within 1.5e-6 of
 * the naive kernels; cuDNN may pick Winograd or FFT convolutions, whose float rounding is
 * larger than a direct sum's, and 12 to 50 layers compound it). Every figure is printed, so
 * the run records the margin. Without a usable GPU the program exits 77 (meson's "skipped")
 * and says why. Check runs without fork here: a CUDA context does not survive fork().
 *
 * DDS_GPU_TEST_BACKEND=cpu puts the CPU backend's fast path under test instead of CUDA, with
 * no GPU needed: a check of this harness itself (e.g. CK_RUN_CASE=ops on a machine without a
 * GPU), not of the CUDA backend.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check_main.h"
#include "../op_graphs.h"
#include "../split_pairs.h"
#include "dds_backend.h"
#include "dds_gpu.h"

#define OPS_TOL 1e-4
#define ZOO_TOL 1e-3

/* The backend under test: "cuda", or DDS_GPU_TEST_BACKEND. */
static const char *tested = "cuda";

/* ---- helpers ---- */

/* max |got - want| / max |want|; NaN anywhere counts as infinite. */
static double rel_err(const float *got, const float *want, size_t n)
{
	double err = 0, scale = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - want[i]);
		if (isnan(d))
			return INFINITY;
		err = d > err ? d : err;
		scale = fabs((double)want[i]) > scale ? fabs((double)want[i]) : scale;
	}
	return scale > 0 ? err / scale : err;
}

static struct dds_backend *make_backend(const char *name, bool reference)
{
	struct dds_backend_opts o = {.name = name, .cpu_reference = reference,
				     .cpu_batched = !reference,
				     .cpu_threads = (int)sysconf(_SC_NPROCESSORS_ONLN)};
	struct dds_err err;
	struct dds_backend *b = dds_backend_create(&o, NULL, &err);
	ck_assert_msg(b != NULL, "backend %s: %s", name, err.msg);
	return b;
}

/* Run the tail `tail` of m at each batch on CUDA and on the CPU engine (plans for max_batch,
 * the same random input) and compare; a second CUDA run of the same input must give the same
 * bits (the graph replay). Prints one line per batch. */
static void compare_tail(const struct dds_model *m, const uint8_t *tail, const char *what,
			 int max_batch, const int *batches, int n_batches, bool reference,
			 double tol, uint64_t seed)
{
	struct dds_backend *gpu = make_backend(tested, false), *cpu = make_backend("cpu", reference);
	struct dds_err err;
	struct dds_plan *pg = dds_plan_create(gpu, m, tail, max_batch, NULL, &err);
	ck_assert_msg(pg != NULL, "%s: %s plan: %s", what, tested, err.msg);
	struct dds_plan *pc = dds_plan_create(cpu, m, tail, max_batch, NULL, &err);
	ck_assert_msg(pc != NULL, "%s: cpu plan: %s", what, err.msg);
	size_t nin = dds_plan_input_floats(pg) * max_batch, nout = dds_plan_output_floats(pg);
	float *in = malloc(nin * sizeof(float)), *want = malloc(nout * max_batch * sizeof(float));
	float *got = malloc(nout * max_batch * sizeof(float));
	float *again = malloc(nout * max_batch * sizeof(float));
	ck_assert(in && want && got && again);

	for (int i = 0; i < n_batches; i++) {
		int batch = batches[i];
		size_t n = nout * (size_t)batch;
		dds_test_fill_random(in, dds_plan_input_floats(pg) * batch, &seed);
		ck_assert_msg(dds_plan_run(pc, in, batch, want, &err) == 0, "cpu: %s", err.msg);
		ck_assert_msg(dds_plan_run(pg, in, batch, got, &err) == 0, "%s: %s", tested, err.msg);
		ck_assert_msg(dds_plan_run(pg, in, batch, again, &err) == 0, "%s: %s", tested, err.msg);
		double e = rel_err(got, want, n);
		printf("%-10s %-34s batch %3d: max abs err / max abs ref = %.3g (tolerance %g)\n",
		       m->name, what, batch, e, tol);
		fflush(stdout);
		ck_assert_msg(e <= tol, "%s %s batch %d: %g > %g", m->name, what, batch, e, tol);
		ck_assert_msg(!memcmp(got, again, n * sizeof(float)),
			      "%s %s batch %d: a second run gave other bits", m->name, what, batch);
	}
	free(in);
	free(want);
	free(got);
	free(again);
	dds_plan_free(pg);
	dds_plan_free(pc);
	dds_backend_free(gpu);
	dds_backend_free(cpu);
}

/* ---- every op: tests/op_graphs.h ---- */

/* Each graph whole (server only) and from every single-tensor cut, at batch 1, 3 (a padded
 * bucket) and 8, against the naive CPU kernels. */
START_TEST(every_op)
{
	static const int batches[] = {1, 3, 8};
	unsigned seen = 0;

	for (int i = 0; i < DDS_N_OP_GRAPHS; i++) {
		struct dds_model *m = dds_op_graph_load(i);
		uint8_t mask[32];
		ck_assert(m->n_layers <= (int)sizeof(mask));
		for (int k = 0; k < m->n_layers; k++)
			seen |= 1u << m->layers[k].op;
		for (int v = 0; v <= m->n_layers; v++) {
			char what[96];
			if (v == m->output + 1 || dds_plan_tail_mask(m, &v, 1, mask, NULL))
				continue;
			snprintf(what, sizeof(what), "cut after %s",
				 v ? m->layers[v - 1].name : "input");
			compare_tail(m, mask, what, 8, batches, 3, true, OPS_TOL, 100 + v);
		}
		dds_model_free(m);
	}
	ck_assert_uint_eq(seen, (1u << DDS_OP__COUNT) - 1); /* a new op needs a graph here */
}
END_TEST

/* ---- the zoo ---- */

/* The single-tensor cut whose head has the FLOPs fraction nearest frac (as tail_bench). */
static int cut_near(const struct dds_model *m, double frac, uint8_t *mask)
{
	double head = 0, best_d = 2;
	int best = -1;

	for (int k = 0; k < m->n_layers; k++) {
		int v = k + 1;
		head += m->layers[k].flops;
		if (k == m->output || dds_plan_tail_mask(m, &v, 1, mask, NULL))
			continue;
		if (fabs(head / m->flops - frac) < best_d) {
			best_d = fabs(head / m->flops - frac);
			best = v;
		}
	}
	return best;
}

static const char *const zoo[] = {"resnet34", "resnet50", "vgg11", "vit_b_16"};

/* Zoo model _i (seeded weights): whole model at batch 1, 8, 32, and the cut nearest half its
 * FLOPs at batch 8, against the CPU engine's fast path. */
START_TEST(zoo_model)
{
	static const int batches[] = {1, 8, 32};
	const char *root = getenv("DDS_SOURCE_ROOT");
	char path[4096], what[96];
	struct dds_model *m = NULL;
	struct dds_err err;

	snprintf(path, sizeof(path), "%s/zoo/%s.json", root ? root : ".", zoo[_i]);
	ck_assert_msg(dds_model_load(path, NULL, 5, &m, &err) == 0, "%s", err.msg);
	uint8_t *mask = malloc((size_t)m->n_layers);
	ck_assert_ptr_nonnull(mask);
	int v = 0;
	ck_assert(dds_plan_tail_mask(m, &v, 1, mask, &err) == 0);
	compare_tail(m, mask, "whole model", 32, batches, 3, false, ZOO_TOL, 7);
	v = cut_near(m, 0.5, mask);
	ck_assert_int_gt(v, 0);
	ck_assert(dds_plan_tail_mask(m, &v, 1, mask, &err) == 0);
	snprintf(what, sizeof(what), "cut after %s", m->layers[v - 1].name);
	compare_tail(m, mask, what, 8, batches + 1, 1, false, ZOO_TOL, 8);
	free(mask);
	dds_model_free(m);
}
END_TEST

/* ---- merging splits: a bridge plan, then the meet plan (tests/split_pairs.h) ---- */

#define BRIDGE_MAX 5

/* The bridge from tail a down to the meet plan's inputs (dds_plan_create_values), on b. */
static struct dds_plan *bridge_plan(struct dds_backend *b, const struct dds_model *m,
				    const uint8_t *ta, const uint8_t *tm,
				    const struct dds_plan *meet)
{
	uint8_t bm[32];
	int outs[33], n_out = dds_plan_n_inputs(meet);
	struct dds_err err;

	for (int k = 0; k < m->n_layers; k++)
		bm[k] = ta[k] && !tm[k];
	for (int k = 0; k < n_out; k++)
		outs[k] = dds_plan_input_value(meet, k);
	struct dds_plan *p = dds_plan_create_values(b, m, bm, outs, n_out, BRIDGE_MAX, NULL, &err);
	ck_assert_msg(p != NULL, "%s: bridge on %s: %s", m->name, tested, err.msg);
	return p;
}

/* Split a's requests through the tested backend's bridge then its meet plan (the bridge's
 * output blocks are the meet plan's input blocks), against the CPU's reference kernels running
 * tail a alone on the same inputs, at batch 3 (a padded bucket) and 5. A second run must give
 * the same bits (the graph replay of a value plan). */
static void compare_bridge(const struct dds_model *m, const uint8_t *ta, const uint8_t *tm,
			   const char *what, uint64_t seed)
{
	struct dds_backend *gpu = make_backend(tested, false), *cpu = make_backend("cpu", true);
	struct dds_err err;
	struct dds_plan *ref = dds_plan_create(cpu, m, ta, BRIDGE_MAX, NULL, &err);
	struct dds_plan *meet = dds_plan_create(gpu, m, tm, BRIDGE_MAX, NULL, &err);
	ck_assert_msg(ref && meet, "%s: %s", what, err.msg);
	struct dds_plan *br = bridge_plan(gpu, m, ta, tm, meet);
	size_t nin = dds_plan_input_floats(ref), nmid = dds_plan_output_floats(br);
	size_t nout = dds_plan_output_floats(ref), rows = BRIDGE_MAX * sizeof(float);
	float *in = malloc(nin * rows), *mid = malloc(nmid * rows), *mid2 = malloc(nmid * rows);
	float *want = malloc(nout * rows), *got = malloc(nout * rows);
	ck_assert(in && mid && mid2 && want && got);
	ck_assert_uint_eq(dds_plan_input_floats(br), nin); /* the bridge reads what a sends */
	ck_assert_uint_eq(nmid, dds_plan_input_floats(meet));

	for (int batch = 3; batch <= BRIDGE_MAX; batch += 2) {
		dds_test_fill_random(in, nin * batch, &seed);
		ck_assert_msg(dds_plan_run(ref, in, batch, want, &err) == 0, "cpu: %s", err.msg);
		ck_assert_msg(dds_plan_run(br, in, batch, mid, &err) == 0, "bridge: %s", err.msg);
		ck_assert_msg(dds_plan_run(br, in, batch, mid2, &err) == 0, "bridge: %s", err.msg);
		ck_assert_msg(!memcmp(mid, mid2, nmid * batch * sizeof(float)),
			      "%s %s: a second bridge run gave other bits", m->name, what);
		ck_assert_msg(dds_plan_run(meet, mid, batch, got, &err) == 0, "meet: %s", err.msg);
		double e = rel_err(got, want, nout * batch);
		printf("%-10s %-34s batch %3d: bridge + meet vs tail: %.3g (tolerance %g)\n",
		       m->name, what, batch, e, OPS_TOL);
		fflush(stdout);
		ck_assert_msg(e <= OPS_TOL, "%s %s batch %d: %g > %g", m->name, what, batch, e,
			      OPS_TOL);
	}
	free(in);
	free(mid);
	free(mid2);
	free(want);
	free(got);
	dds_plan_free(br);
	dds_plan_free(meet);
	dds_plan_free(ref);
	dds_backend_free(gpu);
	dds_backend_free(cpu);
}

/* Random nested pairs of every op graph whose tails differ (eight per graph), then two with a
 * the whole model (the raw input sent) and m a random split: the bridge is then m's whole head,
 * which holds ops0's convolutions and batchnorms (ancestors of nearly every layer, so almost
 * never between two random heads) and reads value 0. */
START_TEST(bridge)
{
	for (int i = 0; i < DDS_N_OP_GRAPHS; i++) {
		struct dds_model *m = dds_op_graph_load(i);
		int va[33], vm[33], na, nm, done = 0, whole = 0;
		uint8_t ta[32], tm[32];
		uint64_t seed = 300 + i;
		char what[96];
		ck_assert(m->n_layers <= 32);
		for (int t = 0; t < 100 && done < 10; t++) {
			dds_test_random_pair(m, &seed, ta, va, &na, tm, vm, &nm);
			if (done >= 8)
				ck_assert(dds_plan_tail_mask(m, &whole, 1, ta, NULL) == 0);
			if (!memcmp(ta, tm, (size_t)m->n_layers))
				continue;
			snprintf(what, sizeof(what), "%d to %d value(s), pair %d", done >= 8 ? 1 : na,
				 nm, done);
			compare_bridge(m, ta, tm, what, 400 + t);
			done++;
		}
		ck_assert_int_eq(done, 10);
		dds_model_free(m);
	}
}
END_TEST

/* ---- errors ---- */

/* A GPU index past the last device: EUNSUPPORTED with a reason, no crash. */
START_TEST(bad_gpu_index)
{
	struct dds_backend_opts o = {.name = "cuda", .gpu_index = 4096};
	struct dds_err err;
	int st;

	ck_assert_ptr_null(dds_backend_create(&o, &st, &err));
	ck_assert_int_eq(st, DDS_BACKEND_EUNSUPPORTED);
	printf("gpu 4096: %s\n", err.msg);
}
END_TEST

int main(void)
{
	char what[256];

	if (getenv("DDS_GPU_TEST_BACKEND"))
		tested = getenv("DDS_GPU_TEST_BACKEND");
	if (strcmp(tested, "cuda") == 0 && dds_gpu_probe(what, sizeof(what)) <= 0) {
		printf("SKIP: %s\n", what);
		return 77;
	}
	struct dds_backend_opts o = {.name = tested};
	struct dds_err err;
	struct dds_backend *b = dds_backend_create(&o, NULL, &err);
	if (!b) {
		printf("SKIP: backend '%s' does not start: %s\n", tested, err.msg);
		return 77;
	}
	dds_backend_free(b);
	printf("under test: %s%s%s\n", tested, strcmp(tested, "cuda") ? "" : ", GPU: ",
	       strcmp(tested, "cuda") ? "" : what);

	struct dds_check_case cases[] = {
		{.name = "ops", .timeout = 600, .tests = DDS_CHECK_TESTS(DDS_CHECK_TEST(every_op))},
		{.name = "zoo", .timeout = 1200, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_LOOP(zoo_model, 0, (int)(sizeof(zoo) / sizeof(zoo[0]))))},
		{.name = "bridge", .timeout = 600, .tests = DDS_CHECK_TESTS(DDS_CHECK_TEST(bridge))},
		{.name = "errors", .tests = DDS_CHECK_TESTS(DDS_CHECK_TEST(bad_gpu_index))},
		{.name = NULL},
	};
	/* No fork: the CUDA context made above does not survive one. */
	return dds_check_main("backend_gpu", cases, CK_NOFORK);
}
