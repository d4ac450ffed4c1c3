/* test_backend.c: gpu_exec's backend interface on the CPU backend: choice by name and the
 * fallback log line, tails from the values sent (against brute force), plan errors, a batched
 * run equal bit for bit to single runs and to the CPU engine run on the whole graph, and the
 * scheduler and plans driven together as the dataplane's worker loop will drive them. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "../op_graphs.h"
#include "dds_backend.h"
#include "dds_gpu.h"
#include "dds_engine.h"
#include "dds_sched.h"

/* ---- helpers ---- */

/* A small DAG: conv+bn+relu, a residual branch, pooling, a classifier (7 layers). */
static const char small_json[] =
	"{\"format\":\"dds-model/1\",\"name\":\"small\",\"input\":{\"shape\":[3,8,8]},\"layers\":["
	"{\"name\":\"c1\",\"op\":\"conv2d\",\"inputs\":[\"input\"],\"out_channels\":4,"
	"\"kernel\":3,\"padding\":1,\"bn\":true,\"act\":\"relu\"},"
	"{\"name\":\"c2\",\"op\":\"conv2d\",\"inputs\":[\"c1\"],\"out_channels\":4,\"kernel\":3,"
	"\"padding\":1,\"bias\":true,\"act\":\"relu\"},"
	"{\"name\":\"sum\",\"op\":\"add\",\"inputs\":[\"c1\",\"c2\"],\"act\":\"relu\"},"
	"{\"name\":\"pool\",\"op\":\"maxpool\",\"inputs\":[\"sum\"],\"kernel\":2},"
	"{\"name\":\"flat\",\"op\":\"flatten\",\"inputs\":[\"pool\"]},"
	"{\"name\":\"fc\",\"op\":\"linear\",\"inputs\":[\"flat\"],\"out_features\":10},"
	"{\"name\":\"prob\",\"op\":\"softmax\",\"inputs\":[\"fc\"]}],\"output\":\"prob\"}";

static struct dds_model *small_model(void)
{
	struct dds_model *m = NULL;
	struct dds_err err;
	int rc = dds_model_load_string(small_json, strlen(small_json), "small", NULL, 7, &m, &err);
	ck_assert_msg(rc == 0, "load: %s", err.msg);
	return m;
}

static int log_lines;
static char log_last[600];

static void count_log(void *arg, const char *line)
{
	(void)arg;
	log_lines++;
	snprintf(log_last, sizeof(log_last), "%s", line);
}

static struct dds_backend *cpu_backend(bool batched)
{
	struct dds_backend_opts o = {.name = "cpu", .cpu_threads = 1, .cpu_batched = batched};
	struct dds_err err;
	struct dds_backend *b = dds_backend_create(&o, NULL, &err);
	ck_assert_msg(b != NULL, "cpu backend: %s", err.msg);
	return b;
}

/* ---- choosing a backend ---- */

START_TEST(create_by_name)
{
	struct dds_backend_opts o = {.name = "auto", .log = count_log};
	struct dds_err err;
	int st;

	char what[256];
	bool gpu = dds_gpu_probe(what, sizeof(what)) > 0; /* 0 too in builds without CUDA */

	log_lines = 0;
	struct dds_backend *b = dds_backend_create(&o, &st, &err);
	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(st, DDS_BACKEND_OK);
	/* With a usable GPU "auto" is CUDA; without (or without a CUDA backend in this build),
	 * the CPU engine, and one line why. */
	ck_assert_str_eq(dds_backend_name(b), gpu ? "cuda" : "cpu");
	ck_assert_int_eq(log_lines, 1);
	if (!gpu)
		ck_assert_ptr_nonnull(strstr(log_last, "cpu engine"));
	fprintf(stderr, "auto: %s\n", log_last);
	dds_backend_free(b);

	o.name = "cuda";
	b = dds_backend_create(&o, &st, &err);
	ck_assert_int_eq(st, gpu ? DDS_BACKEND_OK : DDS_BACKEND_EUNSUPPORTED);
	ck_assert(gpu == (b != NULL));
	dds_backend_free(b);
	fprintf(stderr, "cuda: %s\n", gpu ? what : err.msg);
	o.name = "tpu";
	ck_assert_ptr_null(dds_backend_create(&o, &st, &err));
	ck_assert_int_eq(st, DDS_BACKEND_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "'tpu'"));
	o.name = "cpu";
	o.cpu_threads = -1;
	ck_assert_ptr_null(dds_backend_create(&o, &st, &err));
	ck_assert_int_eq(st, DDS_BACKEND_EINVAL);
	ck_assert_ptr_null(dds_backend_create(NULL, &st, &err));
	ck_assert_str_eq(dds_backend_status_name(DDS_BACKEND_EDEVICE), "edevice");
	ck_assert_str_eq(dds_backend_status_name(42), "unknown");
	dds_backend_free(NULL);
}
END_TEST

/* ---- tails ---- */

/* Brute force over every head of the small model (every layer is needed for its output): the
 * values crossing the cut give back exactly the complement of the head. */
START_TEST(tail_mask_matches_brute_force)
{
	struct dds_model *m = small_model();
	int n = m->n_layers, tried = 0;
	uint8_t head[16], mask[16];
	struct dds_err err;

	for (unsigned bits = 0; bits < (1u << n); bits++) {
		for (int k = 0; k < n; k++)
			head[k] = (bits >> k) & 1;
		if (head[m->output] || dds_model_check_head(m, head, &err))
			continue;
		/* The cut: the raw input and head values that a server layer reads. */
		int vals[16], nv = 0;
		for (int v = 0; v <= n; v++) {
			bool crosses = false;
			for (int k = 0; k < n; k++)
				for (int j = 0; !head[k] && j < m->layers[k].n_in; j++)
					crosses |= m->layers[k].in[j] == v;
			if (crosses && (v == 0 || head[v - 1]))
				vals[nv++] = v;
		}
		ck_assert_int_eq(dds_plan_tail_mask(m, vals, nv, mask, &err), DDS_BACKEND_OK);
		for (int k = 0; k < n; k++)
			ck_assert_msg(mask[k] == !head[k], "head %#x layer %d", bits, k);
		tried++;
	}
	fprintf(stderr, "tail masks: %d valid heads checked\n", tried);
	ck_assert_int_ge(tried, n); /* at least every chain prefix */
	dds_model_free(m);
}
END_TEST

START_TEST(tail_mask_bad_input)
{
	struct dds_model *m = small_model();
	uint8_t mask[16];
	struct dds_err err;
	int out_v = m->output + 1;

	ck_assert_int_eq(dds_plan_tail_mask(m, NULL, 0, mask, &err), DDS_BACKEND_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "raw input"));
	ck_assert_int_eq(dds_plan_tail_mask(m, (int[]){2}, 1, mask, &err), DDS_BACKEND_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "not a cut")); /* c2 alone: sum also needs c1 */
	ck_assert_int_eq(dds_plan_tail_mask(m, (int[]){1, 1}, 2, mask, &err), DDS_BACKEND_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "twice"));
	ck_assert_int_eq(dds_plan_tail_mask(m, (int[]){99}, 1, mask, &err), DDS_BACKEND_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "out of range"));
	ck_assert_int_eq(dds_plan_tail_mask(m, &out_v, 1, mask, &err), DDS_BACKEND_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "nothing to run"));
	ck_assert_int_eq(dds_plan_tail_mask(NULL, &out_v, 1, mask, &err), DDS_BACKEND_EINVAL);
	dds_model_free(m);
}
END_TEST

START_TEST(plan_bad_input)
{
	struct dds_model *m = small_model();
	struct dds_backend *b = cpu_backend(false);
	uint8_t mask[7] = {0, 0, 1, 1, 1, 1, 1}; /* cut {c1, c2} */
	struct dds_err err;
	float in[1024] = {0}, out[64];
	int st;

	ck_assert_ptr_null(dds_plan_create(b, m, mask, 0, &st, &err));
	ck_assert_int_eq(st, DDS_BACKEND_EINVAL);
	ck_assert_ptr_null(dds_plan_create(b, NULL, mask, 4, &st, &err));
	mask[6] = 0; /* the output stays on the device */
	ck_assert_ptr_null(dds_plan_create(b, m, mask, 4, &st, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "output"));
	mask[6] = 1;
	mask[1] = 1;
	mask[2] = 0; /* c2 on the server feeds sum on the device: not a head */
	ck_assert_ptr_null(dds_plan_create(b, m, mask, 4, &st, &err));
	ck_assert_int_eq(st, DDS_BACKEND_EINVAL);
	fprintf(stderr, "bad head: %s\n", err.msg);
	mask[2] = 1;
	struct dds_plan *p = dds_plan_create(b, m, mask, 4, &st, &err);
	ck_assert_msg(p != NULL, "plan: %s", err.msg);
	ck_assert_int_eq(dds_plan_n_inputs(p), 1);
	ck_assert_int_eq(dds_plan_input_value(p, 0), 1);
	ck_assert_int_eq(dds_plan_input_value(p, 1), -1);
	ck_assert_int_eq(dds_plan_max_batch(p), 4);
	ck_assert_uint_eq(dds_plan_output_floats(p), 10);
	ck_assert_int_eq(dds_plan_run(p, in, 0, out, &err), DDS_BACKEND_EINVAL);
	ck_assert_int_eq(dds_plan_run(p, in, 5, out, &err), DDS_BACKEND_EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "batch 5"));
	ck_assert_int_eq(dds_plan_run(p, NULL, 1, out, &err), DDS_BACKEND_EINVAL);
	ck_assert_int_eq(dds_plan_run(p, in, 1, NULL, &err), DDS_BACKEND_EINVAL);
	ck_assert_int_eq(dds_plan_run(NULL, in, 1, out, &err), DDS_BACKEND_EINVAL);
	ck_assert_int_eq(dds_plan_run(p, in, 4, out, &err), DDS_BACKEND_OK);
	dds_plan_free(p);
	dds_plan_free(NULL);
	dds_backend_free(b);
	dds_model_free(m);
}
END_TEST

/* ---- batched == single == whole graph ---- */

#define REQS 8

/* Relative difference allowed in the CPU backend's batched mode, where sgemm over a batch may
 * round differently from sgemm over one row (dds_backend.h, cpu_batched). */
#define BATCHED_TOL 1e-5

/* Largest |a - b| / max(1, |b|); NaN counts as infinite. */
static double rel_diff(const float *a, const float *b, size_t n)
{
	double worst = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
		worst = d > worst || isnan(d) ? (isnan(d) ? INFINITY : d) : worst;
	}
	return worst;
}

/* For REQS requests with random raw inputs, each computed alone on the device side: the cut
 * values (head at batch 1) and the whole graph's output (the oracle: the engine guarantees
 * head-then-tail equals the whole graph bit for bit). Then the plan must give the oracle's
 * bytes for each request alone and inside batches of 1, 3 and 8 (the default CPU mode), or
 * agree within BATCHED_TOL (the batched mode; bit differences are counted and printed). */
static void check_batched(const struct dds_model *m, const int *cut, int n_cut, uint64_t seed,
			  bool batched)
{
	struct dds_engine_opts eo = {.max_batch = 1, .threads = 1, .kernels = DDS_KERNELS_FAST};
	struct dds_err err;
	struct dds_engine *dev = dds_engine_create(m, &eo, &err);
	struct dds_backend *b = cpu_backend(batched);
	int differ = 0;
	uint8_t *tail = malloc((size_t)m->n_layers), *head = malloc((size_t)m->n_layers);
	ck_assert(dev && tail && head);
	ck_assert_msg(dds_plan_tail_mask(m, cut, n_cut, tail, &err) == 0, "tail: %s", err.msg);
	struct dds_plan *p = dds_plan_create(b, m, tail, REQS, NULL, &err);
	ck_assert_msg(p != NULL, "plan: %s", err.msg);
	for (int k = 0; k < m->n_layers; k++)
		head[k] = !tail[k];

	size_t nraw = dds_shape_numel(&m->in_shape), nin = dds_plan_input_floats(p);
	size_t nout = dds_plan_output_floats(p);
	float *raw = malloc(nraw * sizeof(float)), *cutv = malloc(nin * REQS * sizeof(float));
	float *want = malloc(nout * REQS * sizeof(float)), *in = malloc(nin * REQS * sizeof(float));
	float *got = malloc(nout * REQS * sizeof(float));
	ck_assert(raw && cutv && want && in && got);

	/* Device side, one request at a time: cut values (per request, concatenated) and oracle. */
	for (int r = 0; r < REQS; r++) {
		dds_test_fill_random(raw, nraw, &seed);
		memcpy(dds_engine_value(dev, 0), raw, nraw * sizeof(float));
		ck_assert(dds_engine_run(dev, head, 1, &err) == 0);
		float *dst = cutv + (size_t)r * nin;
		for (int k = 0; k < dds_plan_n_inputs(p); k++) {
			int v = dds_plan_input_value(p, k);
			size_t n = dds_shape_numel(dds_model_value_shape(m, v));
			memcpy(dst, dds_engine_value(dev, v), n * sizeof(float));
			dst += n;
		}
		memcpy(dds_engine_value(dev, 0), raw, nraw * sizeof(float));
		ck_assert(dds_engine_run(dev, NULL, 1, &err) == 0);
		memcpy(want + (size_t)r * nout, dds_engine_value(dev, m->output + 1),
		       nout * sizeof(float));
	}
	const int batches[] = {1, 3, 8};
	for (int bi = 0; bi < 3; bi++) {
		int batch = batches[bi];
		/* Scatter: request r's k-th tensor becomes row r of block k. */
		float *dst = in;
		for (int k = 0, off = 0; k < dds_plan_n_inputs(p); k++) {
			size_t n = dds_shape_numel(dds_model_value_shape(m, dds_plan_input_value(p, k)));
			for (int r = 0; r < batch; r++, dst += n)
				memcpy(dst, cutv + (size_t)r * nin + off, n * sizeof(float));
			off += (int)n;
		}
		ck_assert_msg(dds_plan_run(p, in, batch, got, &err) == 0, "run: %s", err.msg);
		for (int r = 0; r < batch; r++) {
			const float *g = got + (size_t)r * nout, *w = want + (size_t)r * nout;
			bool same = !memcmp(g, w, nout * sizeof(float));
			ck_assert_msg(same || batched, "%s: cut at %d, batch %d: request %d differs",
				      m->name, cut[0], batch, r);
			ck_assert_msg(rel_diff(g, w, nout) <= BATCHED_TOL,
				      "%s: cut at %d, batch %d: request %d off by %g", m->name,
				      cut[0], batch, r, rel_diff(g, w, nout));
			differ += !same;
		}
	}
	int n_tail = 0;
	for (int k = 0; k < m->n_layers; k++)
		n_tail += tail[k];
	fprintf(stderr, "%s (%s): cut at '%s' (%d value(s) sent), tail of %d layers, %d plan "
			"input(s): %d of 12 batched results differ in bits from the single runs\n",
		m->name, batched ? "batched" : "per request",
		cut[0] ? m->layers[cut[0] - 1].name : "input", n_cut, n_tail, dds_plan_n_inputs(p),
		differ);
	free(raw);
	free(cutv);
	free(want);
	free(in);
	free(got);
	free(tail);
	free(head);
	dds_plan_free(p);
	dds_backend_free(b);
	dds_engine_free(dev);
}

/* _i = 0: the default (per request) mode, bit for bit; 1: the batched mode, within tolerance. */
START_TEST(batched_equals_single_small)
{
	struct dds_model *m = small_model();
	check_batched(m, (int[]){0}, 1, 11, _i);    /* server only: the raw input is sent */
	check_batched(m, (int[]){1}, 1, 12, _i);    /* after c1 */
	check_batched(m, (int[]){2, 1}, 2, 13, _i); /* c1 and c2: two input blocks */
	check_batched(m, (int[]){5}, 1, 14, _i);    /* only the classifier */
	dds_model_free(m);
}
END_TEST

/* The earliest single-tensor cut whose tail has at most `frac` of the model's FLOPs. */
static int late_cut(const struct dds_model *m, double frac)
{
	uint8_t *mask = malloc((size_t)m->n_layers);
	double head = 0;
	int cut = -1;

	ck_assert_ptr_nonnull(mask);
	for (int k = 0; k < m->n_layers && cut < 0; k++) {
		int v = k + 1;
		head += m->layers[k].flops;
		if (k != m->output && m->flops - head <= frac * m->flops &&
		    dds_plan_tail_mask(m, &v, 1, mask, NULL) == DDS_BACKEND_OK)
			cut = v;
	}
	free(mask);
	return cut;
}

/* A zoo model's late tail (seeded weights): the last residual stages and the classifier. */
START_TEST(batched_equals_single_zoo)
{
	const char *root = getenv("DDS_SOURCE_ROOT");
	char path[4096];
	struct dds_model *m = NULL;
	struct dds_err err;

	snprintf(path, sizeof(path), "%s/zoo/resnet50.json", root ? root : ".");
	ck_assert_msg(dds_model_load(path, NULL, 5, &m, &err) == 0, "%s", err.msg);
	int cut = late_cut(m, 0.15);
	ck_assert_int_gt(cut, 0);
	check_batched(m, &cut, 1, 21, _i);
	dds_model_free(m);
}
END_TEST

/* ---- every op on every backend (ggml's test-backend-ops) ---- */

/* The graphs: tests/op_graphs.h. */

/* Relative tolerance of a backend against the CPU engine's reference kernels. */
#define OPS_TOL 1e-4

/* Whole graph (server only) at batch 3 on backend `name` vs the engine's reference kernels.
 * Returns false if the backend is not available here. */
static bool ops_on_backend(const char *name, const struct dds_model *m, uint64_t seed)
{
	struct dds_backend_opts o = {.name = name, .cpu_threads = 1};
	struct dds_engine_opts eo = {.max_batch = 3, .threads = 1, .kernels = DDS_KERNELS_REF};
	struct dds_err err;
	int st, v0 = 0;
	struct dds_backend *b = dds_backend_create(&o, &st, &err);

	if (!b) {
		ck_assert_int_eq(st, DDS_BACKEND_EUNSUPPORTED);
		return false;
	}
	uint8_t mask[64];
	ck_assert(m->n_layers <= (int)sizeof(mask));
	ck_assert(dds_plan_tail_mask(m, &v0, 1, mask, &err) == 0);
	for (int k = 0; k < m->n_layers; k++)
		ck_assert_msg(dds_backend_supports_layer(b, m, k), "%s: %s", name, m->layers[k].name);
	struct dds_plan *p = dds_plan_create(b, m, mask, 3, NULL, &err);
	struct dds_engine *ref = dds_engine_create(m, &eo, &err);
	ck_assert_msg(p && ref, "%s", err.msg);
	size_t nin = dds_plan_input_floats(p) * 3, nout = dds_plan_output_floats(p) * 3;
	float *in = malloc(nin * sizeof(float)), *out = malloc(nout * sizeof(float));
	ck_assert(in && out);
	dds_test_fill_random(in, nin, &seed);
	memcpy(dds_engine_value(ref, 0), in, nin * sizeof(float));
	ck_assert(dds_engine_run(ref, NULL, 3, &err) == 0);
	ck_assert_msg(dds_plan_run(p, in, 3, out, &err) == 0, "%s", err.msg);
	double d = rel_diff(out, dds_engine_value(ref, m->output + 1), nout);
	ck_assert_msg(d <= OPS_TOL, "%s on %s: off by %g", m->name, name, d);
	free(in);
	free(out);
	dds_engine_free(ref);
	dds_plan_free(p);
	dds_backend_free(b);
	return true;
}

START_TEST(every_op_every_backend)
{
	static const char *const backends[] = {"cpu", "cuda"};
	unsigned seen = 0;

	for (int i = 0; i < DDS_N_OP_GRAPHS; i++) {
		struct dds_model *m = dds_op_graph_load(i);
		for (int k = 0; k < m->n_layers; k++)
			seen |= 1u << m->layers[k].op;
		for (size_t j = 0; j < 2; j++)
			if (!ops_on_backend(backends[j], m, 40 + i) && i == 0)
				fprintf(stderr, "every op: backend '%s' not available here, skipped\n",
					backends[j]);
		dds_model_free(m);
	}
	ck_assert_uint_eq(seen, (1u << DDS_OP__COUNT) - 1); /* a new op needs a graph here */
}
END_TEST

/* ---- the worker loop: scheduler + plans, as the dataplane drives them ---- */

#define LOOP_REQS 24
#define US 1000ull

struct loop_req {
	struct dds_sched_req r;
	float *payload, *want, *got; /* cut values sent; whole-graph oracle; what came back */
};

/* Device side of one request: its payload for `plan` and the whole-graph oracle output. */
static void device_side(struct dds_engine *dev, const struct dds_model *m,
			const struct dds_plan *p, const uint8_t *tail, uint64_t *seed,
			struct loop_req *q)
{
	size_t nraw = dds_shape_numel(&m->in_shape), nout = dds_plan_output_floats(p);
	uint8_t head[16];
	struct dds_err err;
	float *dst;

	q->payload = dst = malloc(dds_plan_input_floats(p) * sizeof(float));
	q->want = malloc(nout * sizeof(float));
	q->got = malloc(nout * sizeof(float));
	ck_assert(q->payload && q->want && q->got);
	for (int k = 0; k < m->n_layers; k++)
		head[k] = !tail[k];
	dds_test_fill_random(dds_engine_value(dev, 0), nraw, seed);
	ck_assert(dds_engine_run(dev, head, 1, &err) == 0);
	for (int k = 0; k < dds_plan_n_inputs(p); k++) {
		int v = dds_plan_input_value(p, k);
		size_t n = dds_shape_numel(dds_model_value_shape(m, v));
		memcpy(dst, dds_engine_value(dev, v), n * sizeof(float));
		dst += n;
	}
	ck_assert(dds_engine_run(dev, NULL, 1, &err) == 0); /* the whole graph, same input */
	memcpy(q->want, dds_engine_value(dev, m->output + 1), nout * sizeof(float));
}

/* Run one batch: pack, run on its group's plan, hand each request its result. */
static void run_batch(struct dds_plan *const *plans, const struct dds_sched_batch *b,
		      float *in, float *out)
{
	const float *payload[4];
	struct dds_plan *p = plans[b->split_id - 1];
	size_t nout = dds_plan_output_floats(p);
	struct dds_err err;

	for (int i = 0; i < b->n; i++)
		payload[i] = ((struct loop_req *)b->req[i]->user)->payload;
	ck_assert_int_eq(dds_plan_pack(p, payload, b->n, in), DDS_BACKEND_OK);
	ck_assert_msg(dds_plan_run(p, in, b->n, out, &err) == 0, "run: %s", err.msg);
	for (int i = 0; i < b->n; i++)
		memcpy(((struct loop_req *)b->req[i]->user)->got, out + nout * (size_t)i,
		       nout * sizeof(float));
}

/* 24 requests from 3 devices over two splits (two groups) arrive every 10 us; batches of up
 * to 4 take 100 us. Every result must be the whole graph's, bit for bit, and every request's
 * stage times must be in order. */
START_TEST(worker_loop)
{
	struct dds_model *m = small_model();
	struct dds_backend *b = cpu_backend(false);
	struct dds_engine_opts eo = {.max_batch = 1, .threads = 1, .kernels = DDS_KERNELS_FAST};
	struct dds_sched_config sc = {.max_queued_total = 64, .max_queued_per_device = 16,
				      .max_devices = 8, .max_groups = 2};
	struct dds_sched_group_opts go = {.max_batch = 4, .max_delay_ns = 50 * US};
	const int cuts[2][2] = {{1}, {1, 2}}, n_cut[2] = {1, 2};
	uint8_t tails[2][16];
	struct dds_plan *plans[2];
	struct loop_req q[LOOP_REQS];
	struct dds_err err;
	char serr[128];
	uint64_t seed = 99, now = 0;
	float in[4 * 1024], out[4 * 16];
	struct dds_engine *dev = dds_engine_create(m, &eo, &err);
	struct dds_sched *s = dds_sched_create(&sc, serr, sizeof(serr));

	ck_assert(dev && s);
	for (int k = 0; k < 2; k++) {
		ck_assert(dds_plan_tail_mask(m, cuts[k], n_cut[k], tails[k], &err) == 0);
		plans[k] = dds_plan_create(b, m, tails[k], 4, NULL, &err);
		ck_assert_msg(plans[k] != NULL, "%s", err.msg);
		ck_assert_uint_le(dds_plan_input_floats(plans[k]), 1024);
		ck_assert_int_eq(dds_sched_add_group(s, m->hash, (uint32_t)k + 1, &go, serr,
						     sizeof(serr)), k);
	}
	for (int i = 0; i < LOOP_REQS; i++) {
		int k = i % 2;
		memset(&q[i], 0, sizeof(q[i]));
		device_side(dev, m, plans[k], tails[k], &seed, &q[i]);
		q[i].r = (struct dds_sched_req){.device_id = (uint32_t)(i % 3), .model_hash = m->hash,
						.split_id = (uint32_t)k + 1,
						.weight = 1e9 * (i % 3 + 1), .work = 1e6,
						.user = &q[i]};
	}
	for (int next = 0, done = 0; done < LOOP_REQS;) {
		struct dds_sched_batch batch;
		uint64_t wake;
		if (next < LOOP_REQS) {
			q[next].r.t[DDS_STAGE_first_frag] = now > 5 * US ? now - 5 * US : 0;
			q[next].r.t[DDS_STAGE_complete] = now;
			ck_assert_int_eq(dds_sched_enqueue(s, &q[next++].r, now), DDS_SCHED_ok);
		}
		if (dds_sched_next_batch(s, now, &batch, &wake) == 0) {
			now = next < LOOP_REQS ? now + 10 * US : wake;
			continue;
		}
		ck_assert_uint_eq(batch.model_hash, m->hash);
		run_batch(plans, &batch, in, out);
		now += 100 * US;
		dds_sched_complete(s, &batch, now);
		for (int i = 0; i < batch.n; i++)
			batch.req[i]->t[DDS_STAGE_sent] = now + 1 * US;
		done += batch.n;
	}
	size_t nout = dds_plan_output_floats(plans[0]);
	for (int i = 0; i < LOOP_REQS; i++) {
		ck_assert_msg(!memcmp(q[i].got, q[i].want, nout * sizeof(float)), "request %d", i);
		for (int st = 1; st < DDS_STAGE__COUNT; st++)
			ck_assert_msg(q[i].r.t[st - 1] <= q[i].r.t[st], "request %d: %s after %s", i,
				      dds_stage_name(st - 1), dds_stage_name(st));
		free(q[i].payload);
		free(q[i].want);
		free(q[i].got);
	}
	dds_sched_free(s);
	for (int k = 0; k < 2; k++)
		dds_plan_free(plans[k]);
	dds_engine_free(dev);
	dds_backend_free(b);
	dds_model_free(m);
}
END_TEST

int main(void)
{
	struct dds_check_case cases[] = {
		{ .name = "cpu", .timeout = 300, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(create_by_name),
			DDS_CHECK_TEST(tail_mask_matches_brute_force),
			DDS_CHECK_TEST(tail_mask_bad_input),
			DDS_CHECK_TEST(plan_bad_input),
			DDS_CHECK_LOOP(batched_equals_single_small, 0, 2),
			DDS_CHECK_LOOP(batched_equals_single_zoo, 0, 2),
			DDS_CHECK_TEST(every_op_every_backend),
			DDS_CHECK_TEST(worker_loop)) },
		{ .name = NULL },
	};

	return dds_check_main("backend", cases, CK_FORK_GETENV);
}
