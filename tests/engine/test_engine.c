/* test_engine.c: the CPU engine: fast vs reference on every op, hand-checked reference
 * kernels, head-then-tail == whole graph bit for bit, and run() errors. */
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "dds_engine.h"

/* The fast path must agree with the reference kernels elementwise within
 * |fast - ref| <= TOL * max(1, |ref|). */
#define TOL 1e-4

static int test_threads = 2; /* threads of the second fast engine; env DDS_TEST_THREADS */
static double worst_err; /* largest relative error seen by the cross-backend test */
static int thread_diffs; /* values where fast with 1 and test_threads differ in some bit */
static int batch_diffs;  /* cases where fast sample 0 differs between batch 1 and batch 3 */

/* ---- helpers ---- */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [-scale, scale). */
static void fill_random(float *x, size_t n, float scale, uint64_t *s)
{
	for (size_t i = 0; i < n; i++)
		x[i] = scale * (float)((double)(rng_next(s) >> 11) / 9007199254740992.0 * 2 - 1);
}

/* Load a model from JSON written with ' for " (readable C strings). */
static struct dds_model *load_json(const char *in_shape, const char *layers, const char *output)
{
	char buf[8192];
	struct dds_err err;
	struct dds_model *m = NULL;
	int n = snprintf(buf, sizeof(buf),
			 "{'format':'dds-model/1','name':'t','input':{'shape':%s},"
			 "'layers':[%s],'output':'%s'}",
			 in_shape, layers, output);
	ck_assert_int_lt(n, (int)sizeof(buf));
	for (char *p = buf; *p; p++)
		*p = *p == '\'' ? '"' : *p;
	int rc = dds_model_load_string(buf, strlen(buf), "test", NULL, 42, &m, &err);
	ck_assert_msg(rc == 0, "load failed: %s\n%s", err.msg, buf);
	return m;
}

static struct dds_engine *engine(const struct dds_model *m, enum dds_kernels k, int max_batch,
				 int threads)
{
	struct dds_engine_opts o = {.max_batch = max_batch, .threads = threads, .kernels = k};
	struct dds_err err;
	struct dds_engine *e = dds_engine_create(m, &o, &err);
	ck_assert_msg(e != NULL, "create failed: %s", err.msg);
	return e;
}

static size_t value_numel(const struct dds_model *m, int v)
{
	return dds_shape_numel(dds_model_value_shape(m, v));
}

static void run_ok(struct dds_engine *e, const uint8_t *mask, int batch)
{
	struct dds_err err;
	ck_assert_msg(dds_engine_run(e, mask, batch, &err) == 0, "run failed: %s", err.msg);
}

/* Set the raw input of an engine to x (batch samples). */
static void set_input(struct dds_engine *e, const struct dds_model *m, const float *x, int batch)
{
	memcpy(dds_engine_value(e, 0), x, value_numel(m, 0) * (size_t)batch * sizeof(float));
}

static struct dds_param *param(struct dds_model *m, int li, const char *name)
{
	struct dds_layer *l = &m->layers[li];
	for (int i = 0; i < l->n_params; i++)
		if (strcmp(l->params[i].name, name) == 0)
			return &l->params[i];
	ck_abort_msg("layer %d has no parameter %s", li, name);
	return NULL;
}

/* Run a one-sample model on x through both kernel sets; return the output of value v of the
 * reference run in ref_out and check the fast one agrees. */
static void run_both(const struct dds_model *m, const float *x, int v, float *ref_out)
{
	struct dds_engine *r = engine(m, DDS_KERNELS_REF, 1, 1), *f = engine(m, DDS_KERNELS_FAST, 1, 1);
	set_input(r, m, x, 1);
	set_input(f, m, x, 1);
	run_ok(r, NULL, 1);
	run_ok(f, NULL, 1);
	size_t n = value_numel(m, v);
	for (size_t i = 0; i < n; i++) {
		float a = dds_engine_value(r, v)[i], b = dds_engine_value(f, v)[i];
		ck_assert_msg(fabsf(a - b) <= TOL * fmaxf(1, fabsf(a)), "fast %g ref %g at %zu", b, a, i);
	}
	memcpy(ref_out, dds_engine_value(r, v), n * sizeof(float));
	dds_engine_free(r);
	dds_engine_free(f);
}

#define NEAR(a, b, tol)                                                                        \
	ck_assert_msg(fabs((double)(a) - (b)) <= (tol), "%.9g != %.9g", (double)(a), (double)(b))

/* ---- (a) fast vs reference on every op ---- */

struct op_case {
	const char *in_shape, *layers, *output;
};

static const struct op_case op_cases[] = {
	{"[3,9,11]", "{'name':'c','op':'conv2d','inputs':['input'],'out_channels':4,'kernel':3,"
		     "'padding':1,'bias':true}", "c"},
	{"[4,10,7]", "{'name':'c','op':'conv2d','inputs':['input'],'out_channels':6,'kernel':3,"
		     "'stride':2,'padding':2,'dilation':2,'groups':2,'bn':true,'act':'relu'}", "c"},
	{"[6,8,8]", "{'name':'c','op':'conv2d','inputs':['input'],'out_channels':6,'kernel':3,"
		    "'padding':1,'groups':6,'bn':true,'act':'gelu'}", "c"},
	{"[8,5,7]", "{'name':'c','op':'conv2d','inputs':['input'],'out_channels':5,'kernel':1,"
		    "'bias':true,'bn':true,'act':'relu','eps':0.001}", "c"},
	{"[8,7,7]", "{'name':'c','op':'conv2d','inputs':['input'],'out_channels':4,'kernel':1,"
		    "'stride':2}", "c"},
	{"[3,17,15]", "{'name':'c','op':'conv2d','inputs':['input'],'out_channels':8,'kernel':7,"
		      "'stride':2,'padding':3,'bn':true,'act':'relu'}", "c"},
	{"[4,5,5]", "{'name':'c','op':'conv2d','inputs':['input'],'out_channels':6,'kernel':1,"
		    "'groups':2,'bias':true}", "c"},
	{"[3,6,9]", "{'name':'c','op':'conv2d','inputs':['input'],'out_channels':5,'kernel':[1,3],"
		    "'stride':[2,1],'padding':[0,1],'dilation':[1,2],'bias':true}", "c"},
	{"[64,9,9]", "{'name':'c','op':'conv2d','inputs':['input'],'out_channels':32,'kernel':3,"
		     "'padding':1,'bn':true,'act':'relu'}", "c"},
	{"[5,4,3]", "{'name':'b','op':'batchnorm','inputs':['input']}", "b"},
	{"[6]", "{'name':'b','op':'batchnorm','inputs':['input'],'eps':0.01}", "b"},
	{"[7,5,3]", "{'name':'r','op':'relu','inputs':['input']},"
		    "{'name':'g','op':'gelu','inputs':['input']},"
		    "{'name':'c','op':'concat','inputs':['r','g']}", "c"},
	{"[4,9,9]", "{'name':'p','op':'maxpool','inputs':['input'],'kernel':3,'stride':2,"
		    "'padding':1}", "p"},
	{"[3,8,8]", "{'name':'p','op':'maxpool','inputs':['input'],'kernel':3,'stride':2,"
		    "'ceil_mode':true}", "p"},
	{"[3,7,7]", "{'name':'p','op':'maxpool','inputs':['input'],'kernel':2,'ceil_mode':true}", "p"},
	{"[2,9,9]", "{'name':'p','op':'avgpool','inputs':['input'],'kernel':3,'stride':2,"
		    "'padding':1}", "p"},
	{"[2,9,9]", "{'name':'p','op':'avgpool','inputs':['input'],'kernel':3,'stride':2,"
		    "'padding':1,'count_include_pad':false}", "p"},
	{"[2,6,6]", "{'name':'p','op':'avgpool','inputs':['input'],'kernel':3,'stride':2,"
		    "'padding':1,'ceil_mode':true,'count_include_pad':false}", "p"},
	{"[2,5,5]", "{'name':'p','op':'avgpool','inputs':['input'],'kernel':2,'ceil_mode':true}", "p"},
	{"[3,7,5]", "{'name':'p','op':'adaptive_avgpool','inputs':['input'],'output_size':[2,3]}", "p"},
	{"[4,7,7]", "{'name':'p','op':'adaptive_avgpool','inputs':['input']}", "p"},
	{"[2,3,3]", "{'name':'p','op':'adaptive_avgpool','inputs':['input'],'output_size':5}", "p"},
	{"[13]", "{'name':'f','op':'linear','inputs':['input'],'out_features':7}", "f"},
	{"[5,12]", "{'name':'f','op':'linear','inputs':['input'],'out_features':9,'act':'gelu'}", "f"},
	{"[10]", "{'name':'f','op':'linear','inputs':['input'],'out_features':4,'bias':false,"
		 "'act':'relu'}", "f"},
	{"[3,4,5]", "{'name':'r','op':'relu','inputs':['input']},"
		    "{'name':'g','op':'gelu','inputs':['input']},"
		    "{'name':'a','op':'add','inputs':['input','r','g'],'act':'relu'}", "a"},
	{"[2,3,4]", "{'name':'r','op':'relu','inputs':['input']},"
		    "{'name':'c1','op':'concat','inputs':['input','r'],'axis':1},"
		    "{'name':'c2','op':'concat','inputs':['c1','c1','c1'],'axis':2}", "c2"},
	{"[3,4,4]", "{'name':'a','op':'conv2d','inputs':['input'],'out_channels':2,'kernel':1},"
		    "{'name':'b','op':'conv2d','inputs':['input'],'out_channels':3,'kernel':3,"
		    "'padding':1},{'name':'c','op':'concat','inputs':['a','b','a']}", "c"},
	{"[3,4,5]", "{'name':'f','op':'flatten','inputs':['input']},"
		    "{'name':'l','op':'linear','inputs':['f'],'out_features':6}", "l"},
	{"[4,9]", "{'name':'s','op':'softmax','inputs':['input']}", "s"},
	{"[11]", "{'name':'s','op':'softmax','inputs':['input']}", "s"},
	{"[5,16]", "{'name':'n','op':'layernorm','inputs':['input']}", "n"},
	{"[12]", "{'name':'n','op':'layernorm','inputs':['input'],'eps':1e-6}", "n"},
	{"[7,12]", "{'name':'a','op':'mha','inputs':['input'],'heads':3}", "a"},
	{"[5,8]", "{'name':'a','op':'mha','inputs':['input'],'heads':1}", "a"},
	{"[1,6]", "{'name':'a','op':'mha','inputs':['input'],'heads':2}", "a"},
	{"[6,3,4]", "{'name':'t','op':'tokens','inputs':['input']},"
		    "{'name':'c','op':'cls_token','inputs':['t']},"
		    "{'name':'p','op':'pos_embed','inputs':['c']},"
		    "{'name':'s','op':'select_token','inputs':['p'],'index':2},"
		    "{'name':'h','op':'linear','inputs':['s'],'out_features':3}", "h"},
	{"[3,8,8]", "{'name':'pe','op':'conv2d','inputs':['input'],'out_channels':16,'kernel':4,"
		    "'stride':4,'bias':true},{'name':'t','op':'tokens','inputs':['pe']},"
		    "{'name':'c','op':'cls_token','inputs':['t']},"
		    "{'name':'p','op':'pos_embed','inputs':['c']},"
		    "{'name':'n1','op':'layernorm','inputs':['p']},"
		    "{'name':'a','op':'mha','inputs':['n1'],'heads':4},"
		    "{'name':'r1','op':'add','inputs':['p','a']},"
		    "{'name':'n2','op':'layernorm','inputs':['r1']},"
		    "{'name':'m1','op':'linear','inputs':['n2'],'out_features':32,'act':'gelu'},"
		    "{'name':'m2','op':'linear','inputs':['m1'],'out_features':16},"
		    "{'name':'r2','op':'add','inputs':['r1','m2']},"
		    "{'name':'s','op':'select_token','inputs':['r2']},"
		    "{'name':'h','op':'linear','inputs':['s'],'out_features':5},"
		    "{'name':'sm','op':'softmax','inputs':['h']}", "sm"},
};

/* Largest |a - r| / max(1, |r|) over n elements. */
static double rel_err(const float *a, const float *r, size_t n)
{
	double worst = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - r[i]) / fmax(1.0, fabs((double)r[i]));
		worst = d > worst || isnan(d) ? d : worst;
	}
	return worst;
}

/* Run m through ref, fast (test_threads) and fast (1 thread) at batch 1 and 3 on the same
 * random input; every value of fast must be within TOL of ref. `what` names the case. */
static void compare_kernel_sets(const struct dds_model *m, uint64_t seed, const char *what)
{
	struct dds_engine *r = engine(m, DDS_KERNELS_REF, 3, 1);
	struct dds_engine *f = engine(m, DDS_KERNELS_FAST, 3, test_threads);
	struct dds_engine *f1 = engine(m, DDS_KERNELS_FAST, 3, 1);
	size_t nin = value_numel(m, 0), nout = value_numel(m, m->output + 1);
	float *x = malloc(nin * 3 * sizeof(float)), *alone = malloc(nout * sizeof(float));
	float *alone_ref = malloc(nout * sizeof(float));

	ck_assert(x && alone && alone_ref);
	fill_random(x, nin * 3, 2.0f, &seed);
	for (int batch = 1; batch <= 3; batch += 2) {
		struct dds_engine *all[] = {r, f, f1};
		for (int k = 0; k < 3; k++) {
			set_input(all[k], m, x, batch);
			run_ok(all[k], NULL, batch);
		}
		for (int v = 1; v <= m->n_layers; v++) {
			size_t n = value_numel(m, v) * (size_t)batch;
			double err = rel_err(dds_engine_value(f, v), dds_engine_value(r, v), n);
			ck_assert_msg(err <= TOL, "%s: layer %s batch %d: rel err %g", what,
				      m->layers[v - 1].name, batch, err);
			worst_err = err > worst_err ? err : worst_err;
			thread_diffs += memcmp(dds_engine_value(f, v), dds_engine_value(f1, v),
					       n * sizeof(float)) != 0;
		}
		/* sample 0 of batch 3 against itself alone: equal bits for ref (asserted), counted
		 * for fast (not promised: linear multiplies the whole batch at once) */
		if (batch == 1) {
			memcpy(alone, dds_engine_value(f1, m->output + 1), nout * sizeof(float));
			memcpy(alone_ref, dds_engine_value(r, m->output + 1), nout * sizeof(float));
		} else {
			batch_diffs += memcmp(alone, dds_engine_value(f1, m->output + 1),
					      nout * sizeof(float)) != 0;
			ck_assert(!memcmp(alone_ref, dds_engine_value(r, m->output + 1),
					  nout * sizeof(float)));
		}
	}
	free(x);
	free(alone);
	free(alone_ref);
	dds_engine_free(r);
	dds_engine_free(f);
	dds_engine_free(f1);
}

START_TEST(fast_matches_ref)
{
	const struct op_case *c = &op_cases[_i];
	struct dds_model *m = load_json(c->in_shape, c->layers, c->output);
	char what[32];

	snprintf(what, sizeof(what), "case %d", _i);
	compare_kernel_sets(m, 1000 + (uint64_t)_i, what);
	dds_model_free(m);
}
END_TEST

static int rnd(uint64_t *s, int lo, int hi) /* uniform in [lo, hi] */
{
	return lo + (int)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

static const char *const acts[] = {"none", "relu", "gelu"};
static const char *const bools[] = {"false", "true"};

/* A random conv2d: groups 1, 2 or depthwise, kernel 1..5, stride 1..3, dilation 1..2,
 * padding 0..3, odd sizes, bias/bn/act at random. */
static void random_conv(uint64_t *s, char *shape, char *layer)
{
	int g = rnd(s, 0, 2), cin = rnd(s, 1, 4), kh = rnd(s, 1, 5), kw = rnd(s, 1, 5);
	int dh = rnd(s, 1, 2), dw = rnd(s, 1, 2);
	g = g == 0 ? 1 : g == 1 ? 2 : cin * 2; /* the last one: depthwise */
	cin = g == cin * 2 ? g : g * cin;
	sprintf(shape, "[%d,%d,%d]", cin, (kh - 1) * dh + rnd(s, 1, 12), (kw - 1) * dw + rnd(s, 1, 12));
	sprintf(layer, "{'name':'x','op':'conv2d','inputs':['input'],'out_channels':%d,"
		       "'kernel':[%d,%d],'stride':[%d,%d],'padding':[%d,%d],'dilation':[%d,%d],"
		       "'groups':%d,'bias':%s,'bn':%s,'act':'%s'}",
		g * rnd(s, 1, 3), kh, kw, rnd(s, 1, 3), rnd(s, 1, 3), rnd(s, 0, 3), rnd(s, 0, 3), dh, dw,
		g, bools[rnd(s, 0, 1)], bools[rnd(s, 0, 1)], acts[rnd(s, 0, 2)]);
}

/* A random max/avg pool: kernel 1..4, stride 1..3, padding up to half the kernel, ceil_mode
 * and count_include_pad at random. */
static void random_pool(uint64_t *s, char *shape, char *layer)
{
	int kh = rnd(s, 1, 4), kw = rnd(s, 1, 4), avg = rnd(s, 0, 1);
	sprintf(shape, "[%d,%d,%d]", rnd(s, 1, 3), kh + rnd(s, 0, 9), kw + rnd(s, 0, 9));
	sprintf(layer, "{'name':'x','op':'%s','inputs':['input'],'kernel':[%d,%d],'stride':[%d,%d],"
		       "'padding':[%d,%d],'ceil_mode':%s%s%s}",
		avg ? "avgpool" : "maxpool", kh, kw, rnd(s, 1, 3), rnd(s, 1, 3), rnd(s, 0, kh / 2),
		rnd(s, 0, kw / 2), bools[rnd(s, 0, 1)], avg ? ",'count_include_pad':" : "",
		avg ? bools[rnd(s, 0, 1)] : "");
}

/* A random linear on [K] or [T,K], a random mha, or a random adaptive pool. */
static void random_other(uint64_t *s, char *shape, char *layer)
{
	int kind = rnd(s, 0, 2), t = rnd(s, 1, 9), heads = rnd(s, 1, 4);
	if (kind == 0) {
		int k = rnd(s, 1, 40);
		if (rnd(s, 0, 1))
			sprintf(shape, "[%d,%d]", t, k);
		else
			sprintf(shape, "[%d]", k);
		sprintf(layer, "{'name':'x','op':'linear','inputs':['input'],'out_features':%d,"
			       "'bias':%s,'act':'%s'}",
			rnd(s, 1, 40), bools[rnd(s, 0, 1)], acts[rnd(s, 0, 2)]);
	} else if (kind == 1) {
		sprintf(shape, "[%d,%d]", t, heads * rnd(s, 1, 6));
		sprintf(layer, "{'name':'x','op':'mha','inputs':['input'],'heads':%d}", heads);
	} else {
		sprintf(shape, "[%d,%d,%d]", rnd(s, 1, 3), rnd(s, 1, 9), rnd(s, 1, 9));
		sprintf(layer, "{'name':'x','op':'adaptive_avgpool','inputs':['input'],"
			       "'output_size':[%d,%d]}", rnd(s, 1, 5), rnd(s, 1, 5));
	}
}

START_TEST(fast_matches_ref_random)
{
	static void (*const gen[])(uint64_t *, char *, char *) = {random_conv, random_pool,
								   random_other};
	uint64_t s = 5000 + (uint64_t)_i;
	char shape[64], layer[512], what[600];

	gen[_i % 3](&s, shape, layer);
	snprintf(what, sizeof(what), "%s %s", shape, layer);
	struct dds_model *m = load_json(shape, layer, "x");
	compare_kernel_sets(m, s, what);
	dds_model_free(m);
}
END_TEST

/* ---- (b) hand-checked reference kernels ---- */

/* A 1x1 conv is a matrix product: y[o, p] = b[o] + sum_c w[o, c] x[c, p]. */
START_TEST(conv1x1_is_matmul)
{
	struct dds_model *m = load_json("[4,3,5]", "{'name':'c','op':'conv2d','inputs':['input'],"
						   "'out_channels':3,'kernel':1,'bias':true}", "c");
	const float *w = param(m, 0, "weight")->data, *b = param(m, 0, "bias")->data;
	float x[60], y[45];
	uint64_t s = 7;

	fill_random(x, 60, 1.0f, &s);
	run_both(m, x, 1, y);
	for (int o = 0; o < 3; o++)
		for (int p = 0; p < 15; p++) {
			double acc = b[o];
			for (int c = 0; c < 4; c++)
				acc += (double)w[o * 4 + c] * x[c * 15 + p];
			NEAR(y[o * 15 + p], acc, 1e-6);
		}
	dds_model_free(m);
}
END_TEST

/* Padding equals an unpadded conv on a zero-padded input (same weights). */
START_TEST(conv_padding_is_zero_border)
{
	struct dds_model *a = load_json("[2,5,6]", "{'name':'c','op':'conv2d','inputs':['input'],"
						   "'out_channels':3,'kernel':3,'padding':[1,2]}", "c");
	struct dds_model *b = load_json("[2,7,10]", "{'name':'c','op':'conv2d','inputs':['input'],"
						    "'out_channels':3,'kernel':3}", "c");
	float x[60], xp[140] = {0}, ya[3 * 5 * 8], yb[3 * 5 * 8];
	uint64_t s = 8;

	memcpy(param(b, 0, "weight")->data, param(a, 0, "weight")->data, 54 * sizeof(float));
	fill_random(x, 60, 1.0f, &s);
	for (int c = 0; c < 2; c++)
		for (int i = 0; i < 5; i++)
			for (int j = 0; j < 6; j++)
				xp[(c * 7 + i + 1) * 10 + j + 2] = x[(c * 5 + i) * 6 + j];
	run_both(a, x, 1, ya);
	run_both(b, xp, 1, yb);
	for (int i = 0; i < 120; i++)
		NEAR(ya[i], yb[i], 1e-6);
	dds_model_free(a);
	dds_model_free(b);
}
END_TEST

/* A 3x3 kernel with dilation 2 equals a 5x5 kernel with zeros between the taps. */
START_TEST(conv_dilation_is_sparse_kernel)
{
	struct dds_model *a = load_json("[2,9,9]", "{'name':'c','op':'conv2d','inputs':['input'],"
						   "'out_channels':2,'kernel':3,'dilation':2,'padding':1}",
					"c");
	struct dds_model *b = load_json("[2,9,9]", "{'name':'c','op':'conv2d','inputs':['input'],"
						   "'out_channels':2,'kernel':5,'padding':1}", "c");
	float *wa = param(a, 0, "weight")->data, *wb = param(b, 0, "weight")->data;
	float x[162], ya[2 * 7 * 7], yb[2 * 7 * 7];
	uint64_t s = 9;

	memset(wb, 0, 100 * sizeof(float));
	for (int oc = 0; oc < 4; oc++) /* (o, c) pairs */
		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 3; j++)
				wb[(oc * 5 + 2 * i) * 5 + 2 * j] = wa[(oc * 3 + i) * 3 + j];
	fill_random(x, 162, 1.0f, &s);
	run_both(a, x, 1, ya);
	run_both(b, x, 1, yb);
	for (int i = 0; i < 98; i++)
		NEAR(ya[i], yb[i], 1e-6);
	dds_model_free(a);
	dds_model_free(b);
}
END_TEST

/* groups=2 equals a full conv whose weights are zero across groups. */
START_TEST(conv_groups_is_block_diagonal)
{
	struct dds_model *a = load_json("[4,6,6]", "{'name':'c','op':'conv2d','inputs':['input'],"
						   "'out_channels':6,'kernel':3,'groups':2}", "c");
	struct dds_model *b = load_json("[4,6,6]", "{'name':'c','op':'conv2d','inputs':['input'],"
						   "'out_channels':6,'kernel':3}", "c");
	float *wa = param(a, 0, "weight")->data, *wb = param(b, 0, "weight")->data;
	float x[144], ya[96], yb[96];
	uint64_t s = 10;

	memset(wb, 0, 6 * 4 * 9 * sizeof(float));
	for (int o = 0; o < 6; o++)
		for (int c = 0; c < 2; c++)
			memcpy(wb + (o * 4 + (o / 3) * 2 + c) * 9, wa + (o * 2 + c) * 9, 9 * sizeof(float));
	fill_random(x, 144, 1.0f, &s);
	run_both(a, x, 1, ya);
	run_both(b, x, 1, yb);
	for (int i = 0; i < 96; i++)
		NEAR(ya[i], yb[i], 1e-6);
	dds_model_free(a);
	dds_model_free(b);
}
END_TEST

/* A conv with fused bn equals the conv followed by a batchnorm layer with the same numbers. */
START_TEST(conv_bn_is_conv_then_batchnorm)
{
	struct dds_model *a = load_json("[3,5,5]", "{'name':'c','op':'conv2d','inputs':['input'],"
						   "'out_channels':4,'kernel':3,'bias':true,'bn':true,"
						   "'eps':0.01,'act':'relu'}", "c");
	struct dds_model *b = load_json("[3,5,5]", "{'name':'c','op':'conv2d','inputs':['input'],"
						   "'out_channels':4,'kernel':3,'bias':true},"
						   "{'name':'n','op':'batchnorm','inputs':['c'],'eps':0.01},"
						   "{'name':'r','op':'relu','inputs':['n']}", "r");
	static const char *const pa[] = {"weight", "bias", "bn_weight", "bn_bias", "bn_mean", "bn_var"};
	static const char *const pb[] = {"weight", "bias", "weight", "bias", "mean", "var"};
	float x[75], ya[36], yb[36];
	uint64_t s = 11;

	for (int i = 0; i < 6; i++) {
		struct dds_param *src = param(a, 0, pa[i]), *dst = param(b, i < 2 ? 0 : 1, pb[i]);
		memcpy(dst->data, src->data, src->count * sizeof(float));
	}
	fill_random(x, 75, 1.0f, &s);
	run_both(a, x, 1, ya);
	run_both(b, x, 3, yb);
	for (int i = 0; i < 36; i++)
		NEAR(ya[i], yb[i], 1e-5);
	dds_model_free(a);
	dds_model_free(b);
}
END_TEST

START_TEST(maxpool_known)
{
	struct dds_model *m = load_json("[1,4,4]", "{'name':'p','op':'maxpool','inputs':['input'],"
						   "'kernel':2}", "p");
	float x[16], y[4];
	for (int i = 0; i < 16; i++)
		x[i] = (float)i;
	run_both(m, x, 1, y);
	NEAR(y[0], 5, 0);
	NEAR(y[1], 7, 0);
	NEAR(y[2], 13, 0);
	NEAR(y[3], 15, 0);
	dds_model_free(m);
}
END_TEST

/* ceil_mode with padding: width 5, kernel 2, stride 2, pad 1 gives windows starting at -1, 1, 3
 * (a 4th would start in the right padding, which PyTorch drops). */
START_TEST(pool_ceil_mode_windows)
{
	struct dds_model *m = load_json("[1,1,5]", "{'name':'p','op':'maxpool','inputs':['input'],"
						   "'kernel':[1,2],'stride':[1,2],'padding':[0,1],"
						   "'ceil_mode':true}", "p");
	struct dds_model *a = load_json("[1,1,5]", "{'name':'p','op':'avgpool','inputs':['input'],"
						   "'kernel':[1,2],'ceil_mode':true}", "p");
	float x[5] = {3, -1, 4, 1, -5}, y[3];

	ck_assert_int_eq(m->layers[0].out_shape.d[2], 3);
	run_both(m, x, 1, y);
	NEAR(y[0], 3, 0);
	NEAR(y[1], 4, 0);
	NEAR(y[2], 1, 0);
	/* avgpool's overrunning last window [4, 6) divides by the 1 element inside */
	ck_assert_int_eq(a->layers[0].out_shape.d[2], 3);
	run_both(a, x, 1, y);
	NEAR(y[0], 1, 1e-7);
	NEAR(y[1], 2.5, 1e-7);
	NEAR(y[2], -5, 1e-7);
	dds_model_free(m);
	dds_model_free(a);
}
END_TEST

/* A 3x3 mean over ones with padding 1: corners 4/9, edges 6/9, centre 1 when the padding
 * counts; all 1 when it does not. */
START_TEST(avgpool_count_include_pad)
{
	static const char *const attrs[] = {"true", "false"};
	for (int k = 0; k < 2; k++) {
		char layer[256];
		snprintf(layer, sizeof(layer),
			 "{'name':'p','op':'avgpool','inputs':['input'],'kernel':3,'stride':1,"
			 "'padding':1,'count_include_pad':%s}", attrs[k]);
		struct dds_model *m = load_json("[1,3,3]", layer, "p");
		float x[9], y[9];
		for (int i = 0; i < 9; i++)
			x[i] = 1;
		run_both(m, x, 1, y);
		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 3; j++) {
				int in = (i == 1 ? 3 : 2) * (j == 1 ? 3 : 2);
				NEAR(y[i * 3 + j], k == 0 ? in / 9.0 : 1.0, 1e-7);
			}
		dds_model_free(m);
	}
}
END_TEST

/* Width 5 into 3 bins: [0,2), [1,4), [3,5). */
START_TEST(adaptive_bins)
{
	struct dds_model *m = load_json("[1,1,5]", "{'name':'p','op':'adaptive_avgpool',"
						   "'inputs':['input'],'output_size':[1,3]}", "p");
	float x[5] = {1, 2, 4, 8, 16}, y[3];
	run_both(m, x, 1, y);
	NEAR(y[0], 1.5, 1e-7);
	NEAR(y[1], 14 / 3.0, 1e-6);
	NEAR(y[2], 12, 1e-6);
	dds_model_free(m);
}
END_TEST

START_TEST(linear_rows_are_affine)
{
	struct dds_model *m = load_json("[3,5]", "{'name':'f','op':'linear','inputs':['input'],"
						 "'out_features':4}", "f");
	const float *w = param(m, 0, "weight")->data, *b = param(m, 0, "bias")->data;
	float x[15], y[12];
	uint64_t s = 12;

	fill_random(x, 15, 1.0f, &s);
	run_both(m, x, 1, y);
	for (int t = 0; t < 3; t++)
		for (int j = 0; j < 4; j++) {
			double acc = b[j];
			for (int i = 0; i < 5; i++)
				acc += (double)w[j * 5 + i] * x[t * 5 + i];
			NEAR(y[t * 4 + j], acc, 1e-6);
		}
	dds_model_free(m);
}
END_TEST

START_TEST(gelu_and_relu_values)
{
	struct dds_model *m = load_json("[4]", "{'name':'g','op':'gelu','inputs':['input']},"
					       "{'name':'r','op':'relu','inputs':['input']},"
					       "{'name':'c','op':'concat','inputs':['g','r']}", "c");
	float x[4] = {1, -1, 0, 3}, g[4], r[4];
	run_both(m, x, 1, g);
	run_both(m, x, 2, r);
	NEAR(g[0], 0.841344746, 1e-7);
	NEAR(g[1], -0.158655254, 1e-7);
	NEAR(g[2], 0, 0);
	NEAR(g[3], 2.995950, 1e-6);
	NEAR(r[0], 1, 0);
	NEAR(r[1], 0, 0);
	NEAR(r[3], 3, 0);
	dds_model_free(m);
}
END_TEST

/* Rows sum to 1, keep the order of their inputs, and do not overflow on large logits. */
START_TEST(softmax_rows)
{
	struct dds_model *m = load_json("[2,5]", "{'name':'s','op':'softmax','inputs':['input']}", "s");
	float x[10] = {1, 2, 3, 4, 5, 1000, 999, 998, 0, -1000}, y[10];
	run_both(m, x, 1, y);
	for (int r = 0; r < 2; r++) {
		double sum = 0;
		for (int i = 0; i < 5; i++)
			sum += y[r * 5 + i];
		NEAR(sum, 1, 1e-6);
	}
	for (int i = 0; i < 4; i++)
		ck_assert(y[i] < y[i + 1]);
	NEAR(y[5] / y[6], exp(1), 1e-5);
	NEAR(y[8], 0, 1e-30);
	dds_model_free(m);
}
END_TEST

/* With weight 1 and bias 0, each row has mean 0 and (biased) variance 1. */
START_TEST(layernorm_rows)
{
	struct dds_model *m = load_json("[3,8]", "{'name':'n','op':'layernorm','inputs':['input']}", "n");
	struct dds_param *w = param(m, 0, "weight"), *b = param(m, 0, "bias");
	float x[24], y[24];
	uint64_t s = 13;

	for (int i = 0; i < 8; i++) {
		w->data[i] = 1;
		b->data[i] = 0;
	}
	fill_random(x, 24, 5.0f, &s);
	run_both(m, x, 1, y);
	for (int r = 0; r < 3; r++) {
		double mean = 0, var = 0;
		for (int i = 0; i < 8; i++)
			mean += y[r * 8 + i] / 8.0;
		for (int i = 0; i < 8; i++)
			var += (y[r * 8 + i] - mean) * (y[r * 8 + i] - mean) / 8.0;
		NEAR(mean, 0, 1e-6);
		NEAR(var, 1, 1e-4);
	}
	dds_model_free(m);
}
END_TEST

/* One token attends only to itself: y = W_o (W_v x + b_v) + b_o. */
START_TEST(mha_single_token)
{
	struct dds_model *m = load_json("[1,6]", "{'name':'a','op':'mha','inputs':['input'],"
						 "'heads':2}", "a");
	const float *wi = param(m, 0, "in_proj_weight")->data, *bi = param(m, 0, "in_proj_bias")->data;
	const float *wo = param(m, 0, "out_proj_weight")->data, *bo = param(m, 0, "out_proj_bias")->data;
	float x[6], y[6];
	double v[6];
	uint64_t s = 14;

	fill_random(x, 6, 1.0f, &s);
	run_both(m, x, 1, y);
	for (int j = 0; j < 6; j++) {
		v[j] = bi[12 + j];
		for (int i = 0; i < 6; i++)
			v[j] += (double)wi[(12 + j) * 6 + i] * x[i];
	}
	for (int j = 0; j < 6; j++) {
		double acc = bo[j];
		for (int i = 0; i < 6; i++)
			acc += wo[j * 6 + i] * v[i];
		NEAR(y[j], acc, 1e-6);
	}
	dds_model_free(m);
}
END_TEST

/* Self-attention without positions is permutation-equivariant: reversing the tokens
 * reverses the output rows. */
START_TEST(mha_permutation)
{
	struct dds_model *m = load_json("[5,8]", "{'name':'a','op':'mha','inputs':['input'],"
						 "'heads':4}", "a");
	float x[40], xr[40], y[40], yr[40];
	uint64_t s = 15;

	fill_random(x, 40, 1.0f, &s);
	for (int t = 0; t < 5; t++)
		memcpy(xr + t * 8, x + (4 - t) * 8, 8 * sizeof(float));
	run_both(m, x, 1, y);
	run_both(m, xr, 1, yr);
	for (int t = 0; t < 5; t++)
		for (int i = 0; i < 8; i++)
			NEAR(y[t * 8 + i], yr[(4 - t) * 8 + i], 1e-6);
	dds_model_free(m);
}
END_TEST

/* tokens transposes, cls_token prepends, pos_embed adds, select_token picks a row, concat
 * joins along its axis. */
START_TEST(token_ops_known)
{
	struct dds_model *m = load_json("[2,1,3]",
					"{'name':'t','op':'tokens','inputs':['input']},"
					"{'name':'c','op':'cls_token','inputs':['t']},"
					"{'name':'p','op':'pos_embed','inputs':['c']},"
					"{'name':'s','op':'select_token','inputs':['p'],'index':3},"
					"{'name':'j','op':'concat','inputs':['t','c'],'axis':0},"
					"{'name':'f','op':'flatten','inputs':['j']},"
					"{'name':'o','op':'concat','inputs':['f','s']}", "o");
	const float *tok = param(m, 1, "token")->data, *pos = param(m, 2, "weight")->data;
	float x[6] = {0, 1, 2, 10, 11, 12}, t[6], c[8], p[8], s[2], j[14];

	run_both(m, x, 1, t);
	run_both(m, x, 2, c);
	run_both(m, x, 3, p);
	run_both(m, x, 4, s);
	run_both(m, x, 5, j);
	for (int r = 0; r < 3; r++)
		for (int ch = 0; ch < 2; ch++)
			NEAR(t[r * 2 + ch], x[ch * 3 + r], 0);
	NEAR(c[0], tok[0], 0);
	NEAR(c[1], tok[1], 0);
	for (int i = 0; i < 6; i++)
		NEAR(c[2 + i], t[i], 0);
	for (int i = 0; i < 8; i++)
		NEAR(p[i], c[i] + pos[i], 0);
	NEAR(s[0], p[6], 0);
	NEAR(s[1], p[7], 0);
	for (int i = 0; i < 14; i++)
		NEAR(j[i], i < 6 ? t[i] : c[i - 6], 0);
	dds_model_free(m);
}
END_TEST

/* ---- (c) head-then-tail equals the whole graph bit for bit ---- */

/* A random head closed under predecessors: each layer joins with probability p if all of its
 * layer inputs are in. */
static void random_head(const struct dds_model *m, double p, uint64_t *s, uint8_t *mask)
{
	for (int li = 0; li < m->n_layers; li++) {
		const struct dds_layer *l = &m->layers[li];
		int ok = (double)(rng_next(s) >> 11) / 9007199254740992.0 < p;
		for (int k = 0; ok && k < l->n_in; k++)
			ok = l->in[k] == 0 || mask[l->in[k] - 1];
		mask[li] = (uint8_t)ok;
	}
	struct dds_err err;
	ck_assert_msg(dds_model_check_head(m, mask, &err) == 0, "%s", err.msg);
}

/* Run head on one engine, copy the values crossing the cut to a fresh engine, run the tail
 * there, and compare the result with `whole` byte for byte. */
static void check_split(const struct dds_model *m, enum dds_kernels k, int threads,
			const float *x, const uint8_t *mask, const float *whole)
{
	struct dds_engine *h = engine(m, k, 1, threads), *t = engine(m, k, 1, threads);
	uint8_t *tail = malloc((size_t)m->n_layers);
	int out = m->output + 1;

	ck_assert_ptr_nonnull(tail);
	set_input(h, m, x, 1);
	run_ok(h, mask, 1);
	for (int li = 0; li < m->n_layers; li++) {
		tail[li] = !mask[li];
		for (int j = 0; tail[li] && j < m->layers[li].n_in; j++) {
			int v = m->layers[li].in[j];
			if (v == 0 || mask[v - 1])
				memcpy(dds_engine_value(t, v), dds_engine_value(h, v),
				       value_numel(m, v) * sizeof(float));
		}
	}
	run_ok(t, tail, 1);
	const float *res = dds_engine_value(mask[m->output] ? h : t, out);
	ck_assert_msg(memcmp(res, whole, value_numel(m, out) * sizeof(float)) == 0,
		      "%s: head-then-tail differs from the whole graph", m->name);
	free(tail);
	dds_engine_free(h);
	dds_engine_free(t);
}

/* Whole run, then `n` random heads, preceded by the empty and the full head if `trivial`. */
static void check_heads(const struct dds_model *m, enum dds_kernels k, int threads, int n,
			bool trivial, uint64_t seed)
{
	struct dds_engine *w = engine(m, k, 1, threads);
	size_t nin = value_numel(m, 0), nout = value_numel(m, m->output + 1);
	float *x = malloc(nin * sizeof(float)), *whole = malloc(nout * sizeof(float));
	uint8_t *mask = malloc((size_t)m->n_layers);

	ck_assert(x && whole && mask);
	fill_random(x, nin, 1.0f, &seed);
	set_input(w, m, x, 1);
	run_ok(w, NULL, 1);
	memcpy(whole, dds_engine_value(w, m->output + 1), nout * sizeof(float));
	for (int i = trivial ? 0 : 2; i < n + 2; i++) {
		if (i < 2)
			memset(mask, i, (size_t)m->n_layers);
		else
			random_head(m, 0.2 + 0.6 * (i % 3) / 2, &seed, mask);
		check_split(m, k, threads, x, mask, whole);
	}
	free(x);
	free(whole);
	free(mask);
	dds_engine_free(w);
}

static const char *const skip_dag =
	"{'name':'c1','op':'conv2d','inputs':['input'],'out_channels':8,'kernel':3,'padding':1,"
	"'bn':true,'act':'relu'},"
	"{'name':'c2','op':'conv2d','inputs':['c1'],'out_channels':8,'kernel':3,'padding':1,"
	"'bn':true},"
	"{'name':'a','op':'add','inputs':['c1','c2'],'act':'relu'},"
	"{'name':'c3','op':'conv2d','inputs':['a'],'out_channels':4,'kernel':1},"
	"{'name':'mp','op':'maxpool','inputs':['c3'],'kernel':2},"
	"{'name':'c4','op':'conv2d','inputs':['input'],'out_channels':4,'kernel':3,'stride':2,"
	"'padding':1},"
	"{'name':'cat','op':'concat','inputs':['mp','c4']},"
	"{'name':'gap','op':'adaptive_avgpool','inputs':['cat']},"
	"{'name':'fl','op':'flatten','inputs':['gap']},"
	"{'name':'fc','op':'linear','inputs':['fl'],'out_features':5}";

START_TEST(split_small_dag)
{
	struct dds_model *m = load_json("[3,8,8]", skip_dag, "fc");
	check_heads(m, DDS_KERNELS_REF, 1, 6, true, 21);
	check_heads(m, DDS_KERNELS_FAST, 1, 6, true, 22);
	check_heads(m, DDS_KERNELS_FAST, test_threads, 6, true, 23);
	dds_model_free(m);
}
END_TEST

/* Every model of zoo/ (seeded weights, fast kernels). */
START_TEST(split_zoo)
{
	const char *root = getenv("DDS_SOURCE_ROOT");
	char dir[4096], path[8192];
	int seen = 0;

	snprintf(dir, sizeof(dir), "%s/zoo", root ? root : ".");
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "split_zoo: no %s, skipped\n", dir);
		return;
	}
	for (struct dirent *de; (de = readdir(d));) {
		size_t len = strlen(de->d_name);
		if (len < 5 || strcmp(de->d_name + len - 5, ".json"))
			continue;
		struct dds_model *m = NULL;
		struct dds_err err;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		ck_assert_msg(dds_model_load(path, NULL, 3, &m, &err) == 0, "%s", err.msg);
		check_heads(m, DDS_KERNELS_FAST, 1, 2, false, 31 + (uint64_t)seen);
		dds_model_free(m);
		seen++;
	}
	closedir(d);
	fprintf(stderr, "split_zoo: %d models from %s\n", seen, dir);
}
END_TEST

/* ---- (d) errors ---- */

START_TEST(run_errors)
{
	struct dds_model *m = load_json("[3,8,8]", skip_dag, "fc");
	struct dds_engine *e = engine(m, DDS_KERNELS_FAST, 2, 1);
	struct dds_engine_opts bad[] = {
		{.max_batch = 0, .threads = 1, .kernels = DDS_KERNELS_FAST},
		{.max_batch = 1, .threads = -1, .kernels = DDS_KERNELS_FAST},
		{.max_batch = 1, .threads = 1, .kernels = (enum dds_kernels)7},
	};
	struct dds_err err;

	err.msg[0] = 0;
	ck_assert_int_eq(dds_engine_run(e, NULL, 0, &err), -1);
	ck_assert_msg(strstr(err.msg, "batch 0 out of range"), "%s", err.msg);
	ck_assert_int_eq(dds_engine_run(e, NULL, 3, &err), -1);
	ck_assert_msg(strstr(err.msg, "batch 3 out of range [1, 2]"), "%s", err.msg);
	ck_assert_int_eq(dds_engine_run(e, NULL, 2, &err), 0);
	ck_assert_ptr_null(dds_engine_value(e, -1));
	ck_assert_ptr_null(dds_engine_value(e, m->n_layers + 1));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = 0;
		ck_assert_ptr_null(dds_engine_create(m, &bad[i], &err));
		ck_assert_msg(strstr(err.msg, "bad options"), "%s", err.msg);
	}
	ck_assert_ptr_null(dds_engine_create(NULL, &bad[0], &err));
	ck_assert_int_eq(dds_engine_run(NULL, NULL, 1, &err), -1);
	/* a hand-broken layer without its weight is refused at creation */
	snprintf(m->layers[0].params[0].name, sizeof(m->layers[0].params[0].name), "gone");
	struct dds_engine_opts ok = {.max_batch = 1, .threads = 1, .kernels = DDS_KERNELS_REF};
	ck_assert_ptr_null(dds_engine_create(m, &ok, &err));
	ck_assert_msg(strstr(err.msg, "'c1': parameter 'weight' is missing"), "%s", err.msg);
	dds_engine_free(e);
	dds_model_free(m);
}
END_TEST

static void report_worst(void)
{
	fprintf(stderr, "fast vs ref: worst relative error %.3g (tolerance %g)\n", worst_err, TOL);
	fprintf(stderr, "fast, not promised: %d values differ between 1 and %d threads, %d cases "
			"between batch 1 and 3\n", thread_diffs, test_threads, batch_diffs);
}

/* The zoo's whole models are slow where the engine is emulated (qemu), so they run apart:
 * `test_engine zoo` runs only them, `test_engine` everything else. */
static Suite *engine_suite(bool zoo)
{
	struct dds_check_case zoo_cases[] = {
		{ .name = "split", .timeout = 300, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(split_zoo)) },
		{ .name = NULL },
	};
	struct dds_check_case cases[] = {
		{ .name = "fast_vs_ref", .tests = DDS_CHECK_TESTS(
			DDS_CHECK_LOOP(fast_matches_ref, 0,
				       (int)(sizeof(op_cases) / sizeof(op_cases[0]))),
			DDS_CHECK_LOOP(fast_matches_ref_random, 0, 90)) },
		{ .name = "ref", .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(conv1x1_is_matmul),
			DDS_CHECK_TEST(conv_padding_is_zero_border),
			DDS_CHECK_TEST(conv_dilation_is_sparse_kernel),
			DDS_CHECK_TEST(conv_groups_is_block_diagonal),
			DDS_CHECK_TEST(conv_bn_is_conv_then_batchnorm),
			DDS_CHECK_TEST(maxpool_known),
			DDS_CHECK_TEST(pool_ceil_mode_windows),
			DDS_CHECK_TEST(avgpool_count_include_pad),
			DDS_CHECK_TEST(adaptive_bins),
			DDS_CHECK_TEST(linear_rows_are_affine),
			DDS_CHECK_TEST(gelu_and_relu_values),
			DDS_CHECK_TEST(softmax_rows),
			DDS_CHECK_TEST(layernorm_rows),
			DDS_CHECK_TEST(mha_single_token),
			DDS_CHECK_TEST(mha_permutation),
			DDS_CHECK_TEST(token_ops_known)) },
		{ .name = "split", .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(split_small_dag)) },
		{ .name = "errors", .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(run_errors)) },
		{ .name = NULL },
	};

	return dds_check_suite("engine", zoo ? zoo_cases : cases);
}

int main(int argc, char **argv)
{
	bool zoo = dds_check_arg_is(argc, argv, "zoo");
	const char *th = getenv("DDS_TEST_THREADS");
	test_threads = th && atoi(th) > 0 ? atoi(th) : 2;
	/* no fork: the error figures below live in this process */
	int failed = dds_check_run(engine_suite(zoo), CK_NOFORK);

	if (!zoo)
		report_worst();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
