/* test_merge.c: merging splits on the CPU backend: a bridge plan (tail a minus tail m, outputting
 * tail m's inputs) then tail m's plan over a batch that mixes bridged requests with requests of
 * split m itself gives every request the bits of its own tail plan and of the whole graph run on
 * the device; plus the value plans' errors and pass-through outputs.
 *
 * Splits are random nested pairs (tests/split_pairs.h) of the op graphs, a ResNet-style graph
 * (two residual blocks, one with a projection shortcut: cuts are not a chain) and the dataplane
 * tests' tiny_cnn. The oracle is independent of the plans: the CPU engine run on the whole graph
 * for each request alone, whose value buffers then hold every value of the graph.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "../op_graphs.h"
#include "../split_pairs.h"
#include "dds_backend.h"
#include "dds_engine.h"

#define REQS 4   /* bridged requests per pair */
#define DIRECT 2 /* requests of the meet split itself in the same batch */
#define PAIRS 12 /* random pairs per model */

static const char resnet_json[] =
	"{'format':'dds-model/1','name':'res2','input':{'shape':[3,8,8]},'layers':["
	"{'name':'stem','op':'conv2d','inputs':['input'],'out_channels':4,'kernel':3,'padding':1,"
	"'bn':true,'act':'relu'},"
	"{'name':'b1a','op':'conv2d','inputs':['stem'],'out_channels':4,'kernel':3,'padding':1,"
	"'bn':true,'act':'relu'},"
	"{'name':'b1b','op':'conv2d','inputs':['b1a'],'out_channels':4,'kernel':3,'padding':1,"
	"'bn':true},"
	"{'name':'b1','op':'add','inputs':['b1b','stem'],'act':'relu'},"
	"{'name':'b2a','op':'conv2d','inputs':['b1'],'out_channels':8,'kernel':3,'stride':2,"
	"'padding':1,'bn':true,'act':'relu'},"
	"{'name':'b2b','op':'conv2d','inputs':['b2a'],'out_channels':8,'kernel':3,'padding':1,"
	"'bn':true},"
	"{'name':'b2s','op':'conv2d','inputs':['b1'],'out_channels':8,'kernel':1,'stride':2,"
	"'bn':true},"
	"{'name':'b2','op':'add','inputs':['b2b','b2s'],'act':'relu'},"
	"{'name':'gap','op':'adaptive_avgpool','inputs':['b2']},"
	"{'name':'flat','op':'flatten','inputs':['gap']},"
	"{'name':'fc','op':'linear','inputs':['flat'],'out_features':10}],'output':'fc'}";

/* The models under test: op graphs 0.., then res2, then tiny_cnn. */
static struct dds_model *load_model(int i)
{
	struct dds_model *m = NULL;
	struct dds_err err;
	char buf[sizeof(resnet_json)], path[4096];
	const char *root = getenv("DDS_SOURCE_ROOT");

	if (i < DDS_N_OP_GRAPHS)
		return dds_op_graph_load(i);
	if (i == DDS_N_OP_GRAPHS) {
		memcpy(buf, resnet_json, sizeof(buf));
		for (char *p = buf; *p; p++)
			*p = *p == '\'' ? '"' : *p;
		ck_assert_msg(dds_model_load_string(buf, strlen(buf), "res2", NULL, 9, &m, &err) == 0,
			      "%s", err.msg);
		return m;
	}
	snprintf(path, sizeof(path), "%s/tests/dataplane/tiny_cnn.json", root ? root : ".");
	ck_assert_msg(dds_model_load(path, NULL, 1, &m, &err) == 0, "%s", err.msg);
	return m;
}
#define N_MODELS (DDS_N_OP_GRAPHS + 2)

static struct dds_backend *cpu_backend(void)
{
	struct dds_backend_opts o = {.name = "cpu", .cpu_threads = 1};
	struct dds_err err;
	struct dds_backend *b = dds_backend_create(&o, NULL, &err);
	ck_assert_msg(b != NULL, "cpu backend: %s", err.msg);
	return b;
}

/* The values of plan p's inputs from the device's buffers, concatenated (malloc'd): the
 * payload of a split that sends them. */
static float *gather(struct dds_engine *dev, const struct dds_model *m, const struct dds_plan *p)
{
	float *payload = malloc(dds_plan_input_floats(p) * sizeof(float)), *dst = payload;

	ck_assert_ptr_nonnull(payload);
	for (int k = 0; k < dds_plan_n_inputs(p); k++) {
		int v = dds_plan_input_value(p, k);
		size_t n = dds_shape_numel(dds_model_value_shape(m, v));
		memcpy(dst, dds_engine_value(dev, v), n * sizeof(float));
		dst += n;
	}
	return payload;
}

/* One request on the device: a random raw input and the whole graph run (every value kept in
 * dev's buffers; the output copied to want). */
static void device_run(struct dds_engine *dev, const struct dds_model *m, uint64_t *seed,
		       float *want)
{
	struct dds_err err;

	dds_test_fill_random(dds_engine_value(dev, 0), dds_shape_numel(&m->in_shape), seed);
	ck_assert_msg(dds_engine_run(dev, NULL, 1, &err) == 0, "%s", err.msg);
	memcpy(want, dds_engine_value(dev, m->output + 1),
	       dds_shape_numel(&m->layers[m->output].out_shape) * sizeof(float));
}

/* Floats of plan p's inputs (outputs) before the k-th: its offset in one request's row set. */
static size_t prefix(const struct dds_model *m, const struct dds_plan *p, int k, bool outputs)
{
	size_t off = 0;
	for (int j = 0; j < k; j++)
		off += dds_shape_numel(dds_model_value_shape(
			m, outputs ? dds_plan_output_value(p, j) : dds_plan_input_value(p, j)));
	return off;
}

/* The plans of one pair and what the checks count. */
struct pair {
	const struct dds_model *m;
	struct dds_plan *tail_a, *meet, *bridge;
	int passed; /* meet inputs that the bridge copies through (split a sent them) */
};

/* The bridge: tail a's layers outside tail m, outputting tail m's inputs. Its inputs must be
 * exactly what split a sends (docs/scheduler.md, "Merging splits"). */
static void make_bridge(struct pair *q, struct dds_backend *b, const uint8_t *ta,
			const uint8_t *tm)
{
	const struct dds_model *m = q->m;
	uint8_t *bm = malloc((size_t)m->n_layers);
	int outs[64], n_out = dds_plan_n_inputs(q->meet);
	struct dds_err err;

	ck_assert(bm && n_out <= 64);
	for (int k = 0; k < m->n_layers; k++) {
		ck_assert_msg(!tm[k] || ta[k], "%s: tail m not inside tail a at %s", m->name,
			      m->layers[k].name);
		bm[k] = ta[k] && !tm[k];
	}
	for (int k = 0; k < n_out; k++) {
		outs[k] = dds_plan_input_value(q->meet, k);
		q->passed += outs[k] == 0 || !bm[outs[k] - 1];
	}
	q->bridge = dds_plan_create_values(b, m, bm, outs, n_out, REQS, NULL, &err);
	ck_assert_msg(q->bridge != NULL, "bridge: %s", err.msg);
	ck_assert_int_eq(dds_plan_n_inputs(q->bridge), dds_plan_n_inputs(q->tail_a));
	for (int k = 0; k < dds_plan_n_inputs(q->tail_a); k++)
		ck_assert_int_eq(dds_plan_input_value(q->bridge, k),
				 dds_plan_input_value(q->tail_a, k));
	ck_assert_uint_eq(dds_plan_output_floats(q->bridge), dds_plan_input_floats(q->meet));
	free(bm);
}

/* Bridge output row r of every block equals the device's value (mid: request r's meet
 * inputs, concatenated), bit for bit. */
static void check_bridge_rows(const struct pair *q, const float *bout, int r, const float *mid)
{
	for (int k = 0; k < dds_plan_n_outputs(q->bridge); k++) {
		int v = dds_plan_output_value(q->bridge, k);
		size_t n = dds_shape_numel(dds_model_value_shape(q->m, v));
		size_t off = prefix(q->m, q->bridge, k, true);
		ck_assert_msg(!memcmp(bout + off * REQS + (size_t)r * n, mid + off, n * sizeof(float)),
			      "%s: bridge output value %d, request %d differs", q->m->name, v, r);
	}
}

/* Batch row of bridged request r (0, 2, 4, 5) and of direct request r (1, 3). */
static int row_bridged(int r)
{
	return r < DIRECT ? 2 * r : r + DIRECT;
}

/* Plan p's k-th input value of one request: at src + prefix (a request's payload), or row r of
 * a batch of `rows` in a block layout (a plan's outputs). */
static const float *value_at(const struct dds_model *m, const struct dds_plan *p, int k,
			     bool outputs, const float *src, int r, int rows)
{
	int v = outputs ? dds_plan_output_value(p, k) : dds_plan_input_value(p, k);
	return src + prefix(m, p, k, outputs) * rows +
	       (size_t)r * dds_shape_numel(dds_model_value_shape(m, v));
}

/* REQS requests of split a bridged, DIRECT of split m, interleaved in one meet batch; each
 * result against its whole-graph oracle and against tail a's plan run alone. */
static void check_pair(const struct pair *q, uint64_t *seed, struct dds_engine *dev)
{
	const struct dds_model *m = q->m;
	int n = REQS + DIRECT, n_in = dds_plan_n_inputs(q->meet);
	size_t nout = dds_plan_output_floats(q->meet), ain = dds_plan_input_floats(q->tail_a);
	float *pa[REQS], *mid[REQS], *pm[DIRECT], *want = malloc((size_t)n * nout * sizeof(float));
	float *bin = malloc(ain * REQS * sizeof(float));
	float *bout = malloc(dds_plan_output_floats(q->bridge) * REQS * sizeof(float));
	float *min = malloc(dds_plan_input_floats(q->meet) * n * sizeof(float));
	float *got = malloc((size_t)n * nout * sizeof(float)), *alone = malloc(nout * sizeof(float));
	const float **src = malloc((size_t)n * n_in * sizeof(float *));
	struct dds_err err;

	ck_assert(want && bin && bout && min && got && alone && src);
	for (int r = 0; r < REQS; r++) {
		device_run(dev, m, seed, want + (size_t)row_bridged(r) * nout);
		pa[r] = gather(dev, m, q->tail_a);
		mid[r] = gather(dev, m, q->meet);
		for (int k = 0; k < n_in; k++)
			src[row_bridged(r) * n_in + k] = value_at(m, q->bridge, k, true, bout, r, REQS);
	}
	for (int r = 0; r < DIRECT; r++) {
		device_run(dev, m, seed, want + (size_t)(2 * r + 1) * nout);
		pm[r] = gather(dev, m, q->meet);
		for (int k = 0; k < n_in; k++)
			src[(2 * r + 1) * n_in + k] = value_at(m, q->meet, k, false, pm[r], 0, 1);
	}
	ck_assert_int_eq(dds_plan_pack(q->bridge, (const float *const *)pa, REQS, bin), 0);
	ck_assert_msg(dds_plan_run(q->bridge, bin, REQS, bout, &err) == 0, "%s", err.msg);
	for (int r = 0; r < REQS; r++)
		check_bridge_rows(q, bout, r, mid[r]);
	ck_assert_int_eq(dds_plan_pack_values(q->meet, src, n, min), 0);
	ck_assert_msg(dds_plan_run(q->meet, min, n, got, &err) == 0, "%s", err.msg);
	for (int i = 0; i < n; i++)
		ck_assert_msg(!memcmp(got + i * nout, want + i * nout, nout * sizeof(float)),
			      "%s: merged batch row %d differs from the whole graph", m->name, i);
	for (int r = 0; r < REQS; r++) {
		ck_assert(dds_plan_run(q->tail_a, pa[r], 1, alone, &err) == 0);
		ck_assert_msg(!memcmp(alone, want + (size_t)row_bridged(r) * nout,
				      nout * sizeof(float)),
			      "%s: tail a alone differs, request %d", m->name, r);
		free(pa[r]);
		free(mid[r]);
	}
	for (int r = 0; r < DIRECT; r++)
		free(pm[r]);
	free(want);
	free(bin);
	free(bout);
	free(min);
	free(got);
	free(alone);
	free(src);
}

/* Random nested pairs of model _i: plans, the claims of the proof sketch (tail m inside tail
 * a; the bridge reads exactly what a sends), then a mixed merged batch. Prints the counts. */
START_TEST(bridge_then_meet_equals_tail)
{
	struct dds_model *m = load_model(_i);
	struct dds_backend *b = cpu_backend();
	struct dds_engine_opts eo = {.max_batch = 1, .threads = 1, .kernels = DDS_KERNELS_FAST};
	struct dds_err err;
	struct dds_engine *dev = dds_engine_create(m, &eo, &err);
	int nl = m->n_layers, *va = malloc((nl + 1) * sizeof(int));
	int *vm = malloc((nl + 1) * sizeof(int)), na, nm, bridged = 0, same = 0, passed = 0;
	uint8_t *ta = malloc(nl), *tm = malloc(nl);
	uint64_t seed = 1000 + _i;

	ck_assert(dev && va && vm && ta && tm);
	for (int t = 0; t < PAIRS; t++) {
		struct pair q = {.m = m};
		dds_test_random_pair(m, &seed, ta, va, &na, tm, vm, &nm);
		q.tail_a = dds_plan_create(b, m, ta, 1, NULL, &err);
		q.meet = dds_plan_create(b, m, tm, REQS + DIRECT, NULL, &err);
		ck_assert_msg(q.tail_a && q.meet, "%s", err.msg);
		if (!memcmp(ta, tm, nl)) { /* the same tail: nothing to bridge */
			same++;
		} else {
			make_bridge(&q, b, ta, tm);
			check_pair(&q, &seed, dev);
			bridged++;
			passed += q.passed > 0;
		}
		dds_plan_free(q.tail_a);
		dds_plan_free(q.meet);
		dds_plan_free(q.bridge);
	}
	fprintf(stderr, "%s: %d pairs bridged (%d with a sent value passed through), %d same tail\n",
		m->name, bridged, passed, same);
	ck_assert_int_gt(bridged, PAIRS / 3);
	free(va);
	free(vm);
	free(ta);
	free(tm);
	dds_engine_free(dev);
	dds_backend_free(b);
	dds_model_free(m);
}
END_TEST

/* res2 cut after the stem (a) and after b1a and the stem (m): the bridge runs b1a alone and
 * copies the stem's output, which split a sent, through to the meet plan. */
START_TEST(sent_value_passed_through)
{
	struct dds_model *m = load_model(DDS_N_OP_GRAPHS);
	struct dds_backend *b = cpu_backend();
	struct dds_engine_opts eo = {.max_batch = 1, .threads = 1, .kernels = DDS_KERNELS_FAST};
	struct dds_err err;
	struct dds_engine *dev = dds_engine_create(m, &eo, &err);
	int stem = dds_model_find(m, "stem") + 1, b1a = dds_model_find(m, "b1a") + 1;
	int va[] = {stem}, vm[] = {stem, b1a};
	uint8_t ta[16], tm[16];
	struct pair q = {.m = m};
	uint64_t seed = 77;

	ck_assert(dev && m->n_layers <= 16);
	ck_assert(dds_plan_tail_mask(m, va, 1, ta, &err) == 0);
	ck_assert(dds_plan_tail_mask(m, vm, 2, tm, &err) == 0);
	q.tail_a = dds_plan_create(b, m, ta, 1, NULL, &err);
	q.meet = dds_plan_create(b, m, tm, REQS + DIRECT, NULL, &err);
	ck_assert_msg(q.tail_a && q.meet, "%s", err.msg);
	make_bridge(&q, b, ta, tm);
	ck_assert_int_eq(q.passed, 1);
	ck_assert_int_eq(dds_plan_n_outputs(q.bridge), 2);
	ck_assert_int_eq(dds_plan_output_value(q.bridge, 0), stem);
	ck_assert_int_eq(dds_plan_output_value(q.bridge, 1), b1a);
	check_pair(&q, &seed, dev);
	dds_plan_free(q.tail_a);
	dds_plan_free(q.meet);
	dds_plan_free(q.bridge);
	dds_engine_free(dev);
	dds_backend_free(b);
	dds_model_free(m);
}
END_TEST

/* Bad output lists and pack arguments: EINVAL with the value named, never a crash; a plan that
 * runs nothing copies its outputs through. */
START_TEST(value_plan_errors)
{
	struct dds_model *m = load_model(DDS_N_OP_GRAPHS);
	struct dds_backend *b = cpu_backend();
	uint8_t none[16] = {0};
	struct dds_err err;
	int st, v0 = 0;
	float in[3 * 8 * 8 * 2], out[3 * 8 * 8 * 2];
	const float *src[2] = {in, NULL};

	ck_assert_ptr_null(dds_plan_create_values(b, m, none, NULL, 1, 2, &st, &err));
	ck_assert_int_eq(st, DDS_BACKEND_EINVAL);
	ck_assert_ptr_null(dds_plan_create_values(b, m, none, &v0, 0, 2, &st, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "no output values"));
	ck_assert_ptr_null(dds_plan_create_values(b, m, none, (int[]){1, 99}, 2, 2, &st, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "output value 99 is out of range"));
	ck_assert_ptr_null(dds_plan_create_values(b, m, none, (int[]){-1}, 1, 2, &st, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "out of range"));
	ck_assert_ptr_null(dds_plan_create_values(b, m, none, (int[]){2, 2}, 2, 2, &st, &err));
	ck_assert_ptr_nonnull(strstr(err.msg, "output value 2 is given twice"));
	ck_assert_int_eq(st, DDS_BACKEND_EINVAL);
	ck_assert_ptr_null(dds_plan_create_values(b, m, NULL, &v0, 1, 2, &st, &err));
	ck_assert_ptr_null(dds_plan_create_values(b, m, none, &v0, 1, 0, &st, &err));
	fprintf(stderr, "value plan errors: %s\n", err.msg);

	struct dds_plan *p = dds_plan_create_values(b, m, none, &v0, 1, 2, &st, &err);
	ck_assert_msg(p != NULL, "%s", err.msg);
	ck_assert_int_eq(dds_plan_n_inputs(p), 1);
	ck_assert_int_eq(dds_plan_n_outputs(p), 1);
	ck_assert_int_eq(dds_plan_output_value(p, 1), -1);
	ck_assert_uint_eq(dds_plan_output_floats(p), dds_plan_input_floats(p));
	ck_assert_int_eq(dds_plan_pack_values(p, src, 2, out), DDS_BACKEND_EINVAL);
	ck_assert_int_eq(dds_plan_pack_values(p, src, 3, out), DDS_BACKEND_EINVAL);
	ck_assert_int_eq(dds_plan_pack_values(NULL, src, 1, out), DDS_BACKEND_EINVAL);
	uint64_t seed = 5;
	dds_test_fill_random(in, sizeof(in) / sizeof(in[0]), &seed);
	ck_assert_int_eq(dds_plan_run(p, in, 2, out, &err), DDS_BACKEND_OK);
	ck_assert(!memcmp(in, out, sizeof(in)));
	ck_assert_int_eq(dds_plan_n_outputs(NULL), 0);
	dds_plan_free(p);
	dds_backend_free(b);
	dds_model_free(m);
}
END_TEST

int main(void)
{
	struct dds_check_case cases[] = {
		{ .name = "merge", .timeout = 300, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_LOOP(bridge_then_meet_equals_tail, 0, N_MODELS),
			DDS_CHECK_TEST(sent_value_passed_through),
			DDS_CHECK_TEST(value_plan_errors)) },
		{ .name = NULL },
	};

	return dds_check_main("merge", cases, CK_FORK_GETENV);
}
