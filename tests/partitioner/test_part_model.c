/* test_part_model.c: the partitioner on real model graphs: the adapter from dds_model and the
 * profile file, and on the four zoo models (plus the test corpus) the min-cut against brute
 * force over every valid split, the envelope against fresh min-cuts, and the baselines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check_main.h"
#include "dds_part_model.h"
#include "refcheck.h"

static struct dds_model *load(const char *rel)
{
	const char *root = getenv("DDS_SOURCE_ROOT");
	char path[512];
	struct dds_err err;
	struct dds_model *m = NULL;
	ck_assert_msg(root, "DDS_SOURCE_ROOT not set");
	snprintf(path, sizeof(path), "%s/%s", root, rel);
	ck_assert_msg(dds_model_load(path, NULL, 1, &m, &err) == 0, "%s", err.msg);
	return m;
}

static struct dds_part_linear linear(double mbps, double gflops)
{
	return (struct dds_part_linear){.device_flops = gflops * 1e9, .beta = 1,
					.up_bw = mbps * 1e6 / 8, .down_bw = mbps * 1e6 / 8};
}

START_TEST(adapter_copies_the_model)
{
	struct dds_model *m = load("tests/model/corpus/small_resnet.json");
	struct dds_part_linear p = linear(8, 2);
	struct dds_part_model_input mi;
	struct dds_part_err err;
	for (int macs = 0; macs < 2; macs++) {
		p.use_macs = macs;
		ck_assert_msg(dds_part_graph_from_model(m, &p, &mi, &err) == 0, "%s", err.msg);
		ck_assert_int_eq(mi.in.n, m->n_layers);
		ck_assert_int_eq(mi.in.output, m->output);
		ck_assert(mi.in.d_in == (double)m->in_bytes);
		ck_assert(mi.in.d_out == (double)m->layers[m->output].out_bytes);
		ck_assert(mi.in.up_bw == 1e6 && mi.in.down_bw == 1e6);
		for (int k = 0; k < m->n_layers; k++) {
			const struct dds_layer *l = &m->layers[k];
			double f = macs ? l->macs : l->flops;
			ck_assert_int_eq(mi.in.in_off[k + 1] - mi.in.in_off[k], l->n_in);
			for (int i = 0; i < l->n_in; i++)
				ck_assert_int_eq(mi.in.in_val[mi.in.in_off[k] + i], l->in[i]);
			ck_assert(ref_close(mi.in.a[k], f / 2e9) || (f == 0 && mi.in.a[k] == 0));
			ck_assert(mi.in.w[k] == f && mi.in.d[k] == (double)l->out_bytes);
		}
		dds_part_model_input_free(&mi);
	}
	p.device_flops = 0;
	ck_assert_int_eq(dds_part_graph_from_model(m, &p, &mi, &err), -1);
	ck_assert(strstr(err.msg, "device speed"));
	dds_model_free(m);
}
END_TEST

/* Write text to a temporary file; returns its path (static buffer). */
static const char *tmpfile_with(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/dds-part-profile-XXXXXX");
	int fd = mkstemp(path);
	ck_assert(fd >= 0);
	ck_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void expect_profile_error(struct dds_model *m, struct dds_part_model_input *mi,
				 const char *text, const char *what)
{
	struct dds_part_err err = {{0}};
	const char *path = tmpfile_with(text);
	double a0 = mi->a[0];
	ck_assert_int_eq(dds_part_profile_load(m, path, mi, &err), -1);
	ck_assert_msg(strstr(err.msg, what), "'%s' does not say '%s'", err.msg, what);
	ck_assert(mi->a[0] == a0); /* unchanged on failure */
	unlink(path);
}

START_TEST(profile_file)
{
	struct dds_model *m = load("tests/model/corpus/tiny_vit.json");
	struct dds_part_linear p = linear(8, 2);
	struct dds_part_model_input mi;
	struct dds_part_err err;
	ck_assert(dds_part_graph_from_model(m, &p, &mi, &err) == 0);
	char *good = NULL, *line;
	size_t len = 0;
	FILE *f = open_memstream(&good, &len);
	fprintf(f, "# measured on a test board\n");
	for (int k = 0; k < m->n_layers; k++)
		fprintf(f, "%s %g%s\n", m->layers[k].name, 1e-3 * (k + 1), k == 1 ? " 12345" : "");
	fclose(f);
	const char *path = tmpfile_with(good);
	ck_assert_msg(dds_part_profile_load(m, path, &mi, &err) == 0, "%s", err.msg);
	unlink(path);
	for (int k = 0; k < m->n_layers; k++)
		ck_assert(ref_close(mi.a[k], 1e-3 * (k + 1)));
	ck_assert(mi.w[1] == 12345 && mi.w[0] == m->layers[0].flops);
	/* Errors: each names the problem; the input is unchanged. */
	line = strchr(good, '\n') + 1;
	expect_profile_error(m, &mi, "nosuchlayer 1\n", "no layer 'nosuchlayer'");
	char *dup = NULL;
	f = open_memstream(&dup, &len);
	fprintf(f, "%s%s", good, line);
	fclose(f);
	expect_profile_error(m, &mi, dup, "listed twice");
	char *first = strndup(line, (size_t)(strchr(line, '\n') - line + 1));
	ck_assert(m->n_layers > 1);
	expect_profile_error(m, &mi, first, "missing");
	free(first);
	char bad[256];
	snprintf(bad, sizeof(bad), "%s -1\n", m->layers[0].name);
	expect_profile_error(m, &mi, bad, "local time");
	snprintf(bad, sizeof(bad), "%s 1 abc\n", m->layers[0].name);
	expect_profile_error(m, &mi, bad, "server work");
	snprintf(bad, sizeof(bad), "%s 1 2 3\n", m->layers[0].name);
	expect_profile_error(m, &mi, bad, "more than 3 fields");
	ck_assert_int_eq(dds_part_profile_load(m, "/nonexistent/profile", &mi, &err), -1);
	ck_assert(strstr(err.msg, "/nonexistent/profile"));
	free(good);
	free(dup);
	dds_part_model_input_free(&mi);
	dds_model_free(m);
}
END_TEST

/* Min-cut vs every valid split, envelope vs fresh min-cuts, baselines never better. */
static void check_model(const char *rel)
{
	static const double mbps[] = {0.13, 1.1, 5.85, 18.88, 1000};
	static const double r_gflops[] = {1, 10, 100, 1000};
	struct dds_model *m = load(rel);
	uint8_t *best_local = calloc((size_t)m->n_layers, 1);
	for (size_t b = 0; b < sizeof(mbps) / sizeof(mbps[0]); b++) {
		struct dds_part_linear p = linear(mbps[b], 12);
		struct dds_part_model_input mi;
		struct dds_part_ctx *ctx;
		struct dds_part_envelope *env;
		struct dds_part_err err;
		ck_assert(dds_part_graph_from_model(m, &p, &mi, &err) == 0);
		ck_assert_msg(dds_part_ctx_new(&mi.in, &ctx, &err) == 0, "%s", err.msg);
		for (size_t i = 0; i < sizeof(r_gflops) / sizeof(r_gflops[0]); i++) {
			double r = r_gflops[i] * 1e9, best;
			struct dds_part_result res, ns, eo, so;
			long c = ref_best(&mi.in, r, 20000000, &best, best_local);
			ck_assert_msg(c > 0, "%s: too many valid splits to enumerate", rel);
			ck_assert(dds_part_solve(ctx, r, &res, &err) == 0);
			ref_check_result(&mi.in, &res, r);
			ck_assert_msg(ref_close(res.total, best), "%s %g Mbit/s r %g: %.17g vs %.17g",
				      rel, mbps[b], r, res.total, best);
			ck_assert(dds_part_neurosurgeon(ctx, r, &ns, NULL) == 0);
			ck_assert(dds_part_edge_only(ctx, r, &eo, NULL) == 0);
			ck_assert(dds_part_server_only(ctx, r, &so, NULL) == 0);
			ck_assert(res.total <= fmin(ns.total, fmin(eo.total, so.total)) * (1 + REF_TOL));
		}
		ck_assert_msg(dds_part_envelope_new(ctx, &env, &err) == 0, "%s", err.msg);
		ref_check_envelope(&mi.in, ctx, env, 1e7, 1e15);
		dds_part_envelope_free(env);
		dds_part_ctx_free(ctx);
		dds_part_model_input_free(&mi);
	}
	free(best_local);
	dds_model_free(m);
}

START_TEST(corpus_models)
{
	check_model("tests/model/corpus/small_resnet.json");
	check_model("tests/model/corpus/tiny_vit.json");
}
END_TEST

START_TEST(zoo_models)
{
	static const char *zoo[] = {"zoo/vgg11.json", "zoo/resnet34.json", "zoo/resnet50.json",
				    "zoo/vit_b_16.json"};
	check_model(zoo[_i]);
}
END_TEST

/* argv[1] "emulated" (cross builds run by qemu): no fork per test, Check's forking hangs under
 * qemu-user. */
int main(int argc, char **argv)
{
	struct dds_check_case cases[] = {
		{ .name = "models", .timeout = 600, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(adapter_copies_the_model),
			DDS_CHECK_TEST(profile_file),
			DDS_CHECK_TEST(corpus_models),
			DDS_CHECK_LOOP(zoo_models, 0, 4)) },
		{ .name = NULL },
	};

	return dds_check_main("partitioner_model", cases, dds_check_fork_mode(argc, argv));
}
