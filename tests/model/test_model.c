/* test_model.c: the model loader: shapes, FLOP counts, weights files and every bad-input error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check_main.h"
#include "dds_model.h"

#define HDR "{\"format\":\"dds-model/1\",\"name\":\"t\",\"input\":{\"shape\":[3,8,8]},"

/* A small residual net: conv+bn+relu, a branch pair joined by add, pool, linear. */
static const char *good =
	HDR "\"layers\":["
	"{\"name\":\"c1\",\"op\":\"conv2d\",\"inputs\":[\"input\"],\"out_channels\":8,"
	"\"kernel\":3,\"padding\":1,\"bn\":true,\"act\":\"relu\"},"
	"{\"name\":\"c2\",\"op\":\"conv2d\",\"inputs\":[\"c1\"],\"out_channels\":8,\"kernel\":[3,3],"
	"\"padding\":[1,1],\"groups\":2,\"bias\":true},"
	"{\"name\":\"sum\",\"op\":\"add\",\"inputs\":[\"c1\",\"c2\"],\"act\":\"relu\"},"
	"{\"name\":\"pool\",\"op\":\"maxpool\",\"inputs\":[\"sum\"],\"kernel\":3,\"stride\":2,"
	"\"ceil_mode\":true},"
	"{\"name\":\"gap\",\"op\":\"adaptive_avgpool\",\"inputs\":[\"pool\"]},"
	"{\"name\":\"flat\",\"op\":\"flatten\",\"inputs\":[\"gap\"]},"
	"{\"name\":\"fc\",\"op\":\"linear\",\"inputs\":[\"flat\"],\"out_features\":5}"
	"],\"output\":\"fc\"}";

static struct dds_model *load_ok(const char *text)
{
	struct dds_model *m = NULL;
	struct dds_err err = {{0}};
	int rc = dds_model_load_string(text, strlen(text), "mem.json", NULL, 7, &m, &err);
	ck_assert_msg(rc == 0, "load failed: %s", err.msg);
	return m;
}

/* Loading must fail with a message that contains every string in `want` (NULL-terminated). */
static void load_bad(const char *text, const char *const *want)
{
	struct dds_model *m = NULL;
	struct dds_err err = {{0}};
	int rc = dds_model_load_string(text, strlen(text), "bad.json", NULL, 7, &m, &err);
	ck_assert_msg(rc == -1 && m == NULL, "accepted bad model: %s", text);
	for (; *want; want++)
		ck_assert_msg(strstr(err.msg, *want), "error '%s' lacks '%s'", err.msg, *want);
}

START_TEST(shapes_and_flops)
{
	struct dds_model *m = load_ok(good);
	ck_assert_int_eq(m->n_layers, 7);
	/* edges: input->c1, c1->c2, c1->sum, c2->sum, sum->pool, pool->gap, gap->flat, flat->fc */
	ck_assert_int_eq(m->n_edges, 8);
	ck_assert_int_eq(m->layers[0].n_succ, 2);
	ck_assert_int_eq(m->n_in_succ, 1);
	/* 8x8 -> maxpool k3 s2 ceil: floor((8-3+1)/2)+1 = 4, and (4-1)*2 = 6 < 8 keeps 4 */
	const struct dds_shape *p = &m->layers[3].out_shape;
	ck_assert_int_eq(p->ndim, 3);
	ck_assert_int_eq(p->d[0], 8);
	ck_assert_int_eq(p->d[1], 4);
	ck_assert_int_eq(p->d[2], 4);
	ck_assert_int_eq(m->layers[6].out_shape.d[0], 5);
	ck_assert_uint_eq(m->layers[6].out_bytes, 20);
	/* c1: 8*8*8 outputs x 27 MACs, + bn 2/elem + relu 1/elem (ptflops convention) */
	ck_assert_double_eq(m->layers[0].macs, 512.0 * 27 + 3 * 512);
	ck_assert_double_eq(m->layers[0].flops, 2 * 512.0 * 27 + 3 * 512);
	/* c2 grouped: each output sees 4 channels x 9 taps, + bias */
	ck_assert_double_eq(m->layers[1].macs, 512.0 * 36 + 512);
	/* fc: 8 inputs x 5 outputs + bias */
	ck_assert_double_eq(m->layers[6].macs, 40.0 + 5);
	/* parameters: c1 weight+4 bn, c2 weight+bias, fc weight+bias */
	ck_assert_uint_eq(m->n_weights, 8 * 27 + 4 * 8 + 8 * 4 * 9 + 8 + 5 * 8 + 5);
	ck_assert_int_eq(dds_model_find(m, "sum"), 2);
	ck_assert_int_eq(dds_model_find(m, "nope"), -1);
	dds_model_free(m);
}
END_TEST

START_TEST(seeded_weights_are_deterministic)
{
	struct dds_model *a = load_ok(good), *b = load_ok(good);
	ck_assert_int_eq(memcmp(a->weights, b->weights, a->n_weights * sizeof(float)), 0);
	ck_assert_uint_eq(a->hash, b->hash);
	/* bn_var stays positive, so the folded scale is finite */
	for (int i = 0; i < 8; i++)
		ck_assert(a->layers[0].params[4].data[i] >= 1.0f);
	dds_model_free(a);
	dds_model_free(b);
}
END_TEST

static char *tmpname(const char *tag)
{
	static char buf[4][128];
	static int k;
	char *p = buf[k++ % 4];
	snprintf(p, 128, "/tmp/dds_test_%d_%s", (int)getpid(), tag);
	return p;
}

static long file_size(const char *path)
{
	FILE *f = fopen(path, "rb");
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fclose(f);
	return n;
}

START_TEST(weights_roundtrip_and_errors)
{
	struct dds_model *m = load_ok(good), *m2 = NULL;
	struct dds_err err;
	const char *w = tmpname("w.ddsw");
	const char *j = tmpname("g.json");
	FILE *f = fopen(j, "w");
	fputs(good, f);
	fclose(f);
	for (size_t i = 0; i < m->n_weights; i++)
		m->weights[i] = (float)i * 0.5f;
	ck_assert_int_eq(dds_model_save_weights(m, w, &err), 0);
	ck_assert_msg(dds_model_load(j, w, 0, &m2, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(memcmp(m->weights, m2->weights, m->n_weights * sizeof(float)), 0);
	dds_model_free(m2);

	/* a short file names the tensor where it ended */
	long full = file_size(w);
	ck_assert_int_eq(truncate(w, full - 3), 0);
	ck_assert_int_eq(dds_model_load(j, w, 0, &m2, &err), -1);
	ck_assert_msg(strstr(err.msg, "fc.bias") && strstr(err.msg, "short"), "%s", err.msg);
	/* truncated in the header */
	ck_assert_int_eq(truncate(w, 10), 0);
	ck_assert_int_eq(dds_model_load(j, w, 0, &m2, &err), -1);
	ck_assert_msg(strstr(err.msg, w), "%s", err.msg);
	/* bad magic */
	f = fopen(w, "w");
	fputs("NOTAWEIGHTFILE", f);
	fclose(f);
	ck_assert_int_eq(dds_model_load(j, w, 0, &m2, &err), -1);
	ck_assert_msg(strstr(err.msg, "magic"), "%s", err.msg);
	/* missing file names the path */
	ck_assert_int_eq(dds_model_load(j, "/nonexistent/w.ddsw", 0, &m2, &err), -1);
	ck_assert_msg(strstr(err.msg, "/nonexistent/w.ddsw"), "%s", err.msg);
	ck_assert_int_eq(dds_model_load("/nonexistent/m.json", NULL, 0, &m2, &err), -1);
	ck_assert_msg(strstr(err.msg, "/nonexistent/m.json"), "%s", err.msg);
	unlink(w);
	unlink(j);
	dds_model_free(m);
}
END_TEST

/* A weights file for `good` with one tensor renamed, dropped or reshaped must be refused. */
START_TEST(weights_wrong_tensors)
{
	struct dds_model *m = load_ok(good), *m2 = NULL;
	struct dds_err err;
	const char *w = tmpname("w2.ddsw"), *j = tmpname("g2.json");
	FILE *f = fopen(j, "w");
	fputs(good, f);
	fclose(f);
	/* rename the last tensor "fc.bias" -> "fc.bia5": an unknown tensor */
	ck_assert_int_eq(dds_model_save_weights(m, w, &err), 0);
	long n = file_size(w);
	long name_at = n - 5 * 4 - 4 - 4 - 7; /* data, dims, ndim, then the 7-byte name */
	f = fopen(w, "r+b");
	fseek(f, name_at, SEEK_SET);
	char name[8] = {0};
	ck_assert_int_eq(fread(name, 1, 7, f), 7);
	ck_assert_str_eq(name, "fc.bias");
	fseek(f, name_at + 6, SEEK_SET);
	fputc('5', f);
	fclose(f);
	ck_assert_int_eq(dds_model_load(j, w, 0, &m2, &err), -1);
	ck_assert_msg(strstr(err.msg, "fc.bia5") && strstr(err.msg, "not a parameter"), "%s",
		      err.msg);
	/* change the dim of fc.bias from 5 to 6: a shape mismatch */
	ck_assert_int_eq(dds_model_save_weights(m, w, &err), 0);
	f = fopen(w, "r+b");
	fseek(f, n - 5 * 4 - 4, SEEK_SET);
	fputc(6, f);
	fclose(f);
	ck_assert_int_eq(dds_model_load(j, w, 0, &m2, &err), -1);
	ck_assert_msg(strstr(err.msg, "fc.bias") && strstr(err.msg, "shape"), "%s", err.msg);
	/* drop the last tensor: count says one fewer, file ends early -> missing tensor */
	ck_assert_int_eq(dds_model_save_weights(m, w, &err), 0);
	ck_assert_int_eq(truncate(w, name_at - 4), 0);
	f = fopen(w, "r+b");
	fseek(f, 8, SEEK_SET);
	fputc(9 - 1, f); /* 9 tensors (c1: 5, c2: 2, fc: 2) -> 8 */
	fclose(f);
	ck_assert_int_eq(dds_model_load(j, w, 0, &m2, &err), -1);
	ck_assert_msg(strstr(err.msg, "missing tensor 'fc.bias'") && strstr(err.msg, "layer 'fc'"),
		      "%s", err.msg);
	unlink(w);
	unlink(j);
	dds_model_free(m);
}
END_TEST

#define L(s) "{\"name\":\"a\",\"op\":" s "}"
#define ONE(layer) HDR "\"layers\":[" layer "],\"output\":\"a\"}"

START_TEST(bad_models)
{
	static const struct {
		const char *text;
		const char *want[3];
	} cases[] = {
		{"{\"format\":", {"bad.json:1:", "invalid JSON", NULL}},
		{"[]", {"top level", NULL}},
		{"{\"format\":\"dds-model/2\"}", {"format", NULL}},
		{ONE(L("\"frobnicate\",\"inputs\":[\"input\"]")), {"layer 'a'", "unknown op 'frobnicate'", NULL}},
		{ONE(L("\"relu\",\"inputs\":[\"nothere\"]")), {"layer 'a'", "nothere", NULL}},
		{ONE(L("\"relu\",\"inputs\":[\"input\"],\"kernel\":3")), {"layer 'a'", "unknown attribute 'kernel'", NULL}},
		{ONE(L("\"conv2d\",\"inputs\":[\"input\"],\"kernel\":3")), {"layer 'a'", "out_channels", NULL}},
		{ONE(L("\"conv2d\",\"inputs\":[\"input\"],\"out_channels\":4,\"kernel\":9")), {"layer 'a'", "kernel larger", NULL}},
		{ONE(L("\"conv2d\",\"inputs\":[\"input\"],\"out_channels\":4,\"kernel\":3,\"groups\":2")), {"layer 'a'", "groups", NULL}},
		{ONE(L("\"conv2d\",\"inputs\":[\"input\"],\"out_channels\":4,\"kernel\":-1")), {"layer 'a'", "out of range", NULL}},
		{ONE(L("\"conv2d\",\"inputs\":[\"input\"],\"out_channels\":4,\"kernel\":3,\"act\":\"tanh\"")), {"layer 'a'", "act", NULL}},
		{ONE(L("\"maxpool\",\"inputs\":[\"input\"],\"kernel\":2,\"padding\":2")), {"layer 'a'", "padding", NULL}},
		{ONE(L("\"mha\",\"inputs\":[\"input\"],\"heads\":2")), {"layer 'a'", "[T,E]", NULL}},
		{ONE(L("\"add\",\"inputs\":[\"input\"]")), {"layer 'a'", "at least 2", NULL}},
		{ONE(L("\"relu\",\"inputs\":[\"input\",\"input\"]")), {"layer 'a'", "exactly 1", NULL}},
		{ONE(L("\"relu\",\"inputs\":[]")), {"layer 'a'", "inputs", NULL}},
		{HDR "\"layers\":[{\"name\":\"a\",\"op\":\"relu\",\"inputs\":[\"input\"]},"
		     "{\"name\":\"a\",\"op\":\"relu\",\"inputs\":[\"input\"]}],\"output\":\"a\"}",
		 {"layer 'a'", "duplicate", NULL}},
		{HDR "\"layers\":[{\"name\":\"a\",\"op\":\"relu\",\"inputs\":[\"b\"]},"
		     "{\"name\":\"b\",\"op\":\"relu\",\"inputs\":[\"input\"]}],\"output\":\"a\"}",
		 {"layer 'a'", "defined above", NULL}},
		{HDR "\"layers\":[{\"name\":\"a\",\"op\":\"flatten\",\"inputs\":[\"input\"]},"
		     "{\"name\":\"b\",\"op\":\"add\",\"inputs\":[\"a\",\"input\"]}],\"output\":\"b\"}",
		 {"layer 'b'", "shape mismatch", NULL}},
		{HDR "\"layers\":[{\"name\":\"a\",\"op\":\"relu\",\"inputs\":[\"input\"]},"
		     "{\"name\":\"b\",\"op\":\"relu\",\"inputs\":[\"input\"]}],\"output\":\"b\"}",
		 {"layer 'a'", "never used", NULL}},
		{ONE(L("\"relu\",\"inputs\":[\"input\"]")) "x", {"invalid JSON", NULL}},
		{HDR "\"layers\":[],\"output\":\"a\"}", {"layers", NULL}},
		{"{\"format\":\"dds-model/1\",\"input\":{\"shape\":[0]},\"layers\":[{}],\"output\":\"a\"}",
		 {"input.shape", NULL}},
		{HDR "\"layers\":[" L("\"relu\",\"inputs\":[\"input\"]") "],\"output\":\"zz\"}", {"'output'", NULL}},
		{HDR "\"extra\":1,\"layers\":[],\"output\":\"a\"}", {"unknown top-level key 'extra'", NULL}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		load_bad(cases[i].text, cases[i].want);
}
END_TEST

START_TEST(head_closure)
{
	struct dds_model *m = load_ok(good);
	struct dds_err err;
	uint8_t mask[7] = {1, 1, 1, 0, 0, 0, 0};
	ck_assert_int_eq(dds_model_check_head(m, mask, &err), 0);
	mask[0] = 0; /* c2 and sum need c1 */
	ck_assert_int_eq(dds_model_check_head(m, mask, &err), -1);
	ck_assert_msg(strstr(err.msg, "'c2'") && strstr(err.msg, "'c1'"), "%s", err.msg);
	dds_model_free(m);
}
END_TEST

/* Every zoo model loads, and its totals are the sums of its layers. */
START_TEST(zoo_models)
{
	static const char *names[] = {"vgg11", "resnet34", "resnet50", "vit_b_16"};
	const char *root = getenv("DDS_SOURCE_ROOT");
	char path[512];
	struct dds_err err;
	ck_assert_msg(root, "DDS_SOURCE_ROOT not set");
	for (int i = 0; i < 4; i++) {
		struct dds_model *m;
		snprintf(path, sizeof(path), "%s/zoo/%s.json", root, names[i]);
		ck_assert_msg(dds_model_load(path, NULL, 1, &m, &err) == 0, "%s", err.msg);
		double f = 0;
		int edges = m->n_in_succ;
		for (int k = 0; k < m->n_layers; k++) {
			f += m->layers[k].flops;
			edges += m->layers[k].n_succ;
		}
		ck_assert_double_eq_tol(f, m->flops, 1e-6 * f);
		ck_assert_int_eq(edges, m->n_edges);
		ck_assert_int_eq(m->layers[m->output].n_succ, 0);
		/* the graph alone has the same shapes and work, and no weights */
		struct dds_model *g;
		ck_assert_msg(dds_model_load_graph(path, &g, &err) == 0, "%s", err.msg);
		ck_assert_int_eq(g->n_layers, m->n_layers);
		ck_assert_double_eq(g->flops, m->flops);
		ck_assert_uint_eq(g->hash, m->hash);
		ck_assert_ptr_null(g->weights);
		ck_assert_ptr_null(g->layers[0].params[0].data);
		ck_assert_int_eq(dds_model_save_weights(g, "/nonexistent/x", &err), -1);
		dds_model_free(g);
		dds_model_free(m);
	}
}
END_TEST

int main(void)
{
	struct dds_check_case cases[] = {
		{ .name = "core", .timeout = 120, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(shapes_and_flops),
			DDS_CHECK_TEST(seeded_weights_are_deterministic),
			DDS_CHECK_TEST(weights_roundtrip_and_errors),
			DDS_CHECK_TEST(weights_wrong_tensors),
			DDS_CHECK_TEST(bad_models),
			DDS_CHECK_TEST(head_closure),
			DDS_CHECK_TEST(zoo_models)) },
		{ .name = NULL },
	};

	return dds_check_main("model", cases, CK_FORK_GETENV);
}
