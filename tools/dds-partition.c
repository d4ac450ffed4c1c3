/* dds-partition: where should a device split its model? Prints the min-cut split, the tensors
 * it uploads and the latency breakdown at one allocation r, the whole T*(r) envelope, the
 * baselines, and can plot T*(r) (docs/partitioner.md). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dds_part_model.h"
#include "dds_partition.h"

struct opts {
	const char *model, *profile, *plot, *graph;
	double up_mbps, down_mbps, device_gflops, r_gflops, beta;
	bool json, envelope, baselines, macs;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dds-partition --model FILE.json --uplink-mbps B\n"
		"                     (--device-gflops C | --profile FILE) [--r-gflops R]\n"
		"                     [--downlink-mbps B] [--beta X] [--macs] [--json]\n"
		"                     [--envelope [--plot OUT.png]] [--baselines] [--graph OUT.txt]\n"
		"  --model FILE        model graph (docs/model-format.md)\n"
		"  --uplink-mbps B     uplink bandwidth, Mbit/s; --downlink-mbps defaults to it\n"
		"  --device-gflops C   device speed: local time of a layer = beta * FLOPs / C\n"
		"  --profile FILE      measured local times instead: lines 'LAYER SECONDS [WORK]'\n"
		"  --r-gflops R        server compute allocated to this device, GFLOP/s (T_s = W / r,\n"
		"                      server work of a layer = its FLOPs unless the profile says)\n"
		"  --macs              count multiply-adds (ptflops, the paper's Table I) as the work\n"
		"  --json              print JSON (keys local_layers, cut_tensors, t_edge, t_transfer,\n"
		"                      t_server, total, server_work; times in seconds, work in FLOP)\n"
		"  --envelope          print T*(r) for all r as exact breakpoints\n"
		"  --plot OUT.png      with --envelope: plot T*(r) and the baselines (gnuplot)\n"
		"  --baselines         also print edge only, server only, DADS and Neurosurgeon at r\n"
		"  --graph OUT.txt     write the latency graph at r (edge list) to OUT.txt\n");
}

static int bad(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "dds-partition: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\n(run dds-partition --help for usage)\n");
	return 2;
}

static int positive(const char *flag, const char *s, double *x)
{
	char *end;
	errno = 0;
	*x = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(*x) || *x <= 0)
		return bad("%s: expected a positive number, got '%s'", flag, s);
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{"model", required_argument, 0, 'm'},	 {"uplink-mbps", required_argument, 0, 'u'},
		{"downlink-mbps", required_argument, 0, 'd'},
		{"device-gflops", required_argument, 0, 'c'},
		{"r-gflops", required_argument, 0, 'r'}, {"profile", required_argument, 0, 'p'},
		{"beta", required_argument, 0, 'b'},	 {"plot", required_argument, 0, 'P'},
		{"graph", required_argument, 0, 'g'},	 {"json", no_argument, 0, 'j'},
		{"envelope", no_argument, 0, 'e'},	 {"baselines", no_argument, 0, 'B'},
		{"macs", no_argument, 0, 'M'},		 {"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	int c, rc = 0;
	*o = (struct opts){.beta = 1};
	opterr = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (c) {
		case 'm': o->model = optarg; break;
		case 'p': o->profile = optarg; break;
		case 'P': o->plot = optarg; break;
		case 'g': o->graph = optarg; break;
		case 'u': rc = positive("--uplink-mbps", optarg, &o->up_mbps); break;
		case 'd': rc = positive("--downlink-mbps", optarg, &o->down_mbps); break;
		case 'c': rc = positive("--device-gflops", optarg, &o->device_gflops); break;
		case 'r': rc = positive("--r-gflops", optarg, &o->r_gflops); break;
		case 'b': rc = positive("--beta", optarg, &o->beta); break;
		case 'j': o->json = true; break;
		case 'e': o->envelope = true; break;
		case 'B': o->baselines = true; break;
		case 'M': o->macs = true; break;
		case 'h': usage(stdout); exit(0);
		default: return bad("unknown option or missing value: '%s'%s", argv[optind - 1], "");
		}
	}
	if (rc)
		return rc;
	if (optind < argc)
		return bad("unexpected argument '%s'%s", argv[optind], "");
	if (!o->model)
		return bad("--model FILE is required%s%s", "", "");
	if (!o->up_mbps)
		return bad("--uplink-mbps B is required%s%s", "", "");
	if (!o->device_gflops && !o->profile)
		return bad("--device-gflops C or --profile FILE is required%s%s", "", "");
	if (!o->r_gflops && !o->envelope)
		return bad("--r-gflops R is required (or --envelope for all r)%s%s", "", "");
	if ((o->baselines || o->graph) && !o->r_gflops)
		return bad("--baselines and --graph need --r-gflops R%s%s", "", "");
	if (o->plot && !o->envelope)
		return bad("--plot needs --envelope%s%s", "", "");
	if (!o->down_mbps)
		o->down_mbps = o->up_mbps;
	return 0;
}

static const char *value_name(const struct dds_model *m, int x)
{
	return x ? m->layers[x - 1].name : "input";
}

static double value_bytes(const struct dds_model *m, int x)
{
	return x ? (double)m->layers[x - 1].out_bytes : (double)m->in_bytes;
}

static json_t *split_json(const struct dds_model *m, const struct dds_part_split *s)
{
	json_t *loc = json_array(), *cut = json_array();
	for (int k = 0; k < m->n_layers; k++)
		if (s->local[k])
			json_array_append_new(loc, json_string(m->layers[k].name));
	for (int i = 0; i < s->n_cut; i++)
		json_array_append_new(cut, json_string(value_name(m, s->cut[i])));
	return json_pack("{s:o, s:o, s:b, s:f, s:f, s:f}", "local_layers", loc, "cut_tensors", cut,
			 "download", s->download, "t_edge", s->t_edge, "t_transfer", s->t_transfer,
			 "server_work", s->server_work);
}

static json_t *result_json(const struct dds_model *m, const struct dds_part_result *r)
{
	json_t *o = split_json(m, &r->split);
	json_object_set_new(o, "r", json_real(r->r));
	json_object_set_new(o, "t_server", json_real(r->t_server));
	json_object_set_new(o, "total", json_real(r->total));
	return o;
}

static void print_result(const struct dds_model *m, const char *what,
			 const struct dds_part_result *r)
{
	const struct dds_part_split *s = &r->split;
	double up = 0;
	printf("%s: %d of %d layers local; total %.3f ms = T_e %.3f + T_t %.3f + T_s %.3f ms; "
	       "server work %.4g GFLOP\n",
	       what, s->n_local, m->n_layers, r->total * 1e3, s->t_edge * 1e3, s->t_transfer * 1e3,
	       r->t_server * 1e3, s->server_work / 1e9);
	printf("  local layers:");
	for (int k = 0; k < m->n_layers; k++)
		if (s->local[k])
			printf(" %s", m->layers[k].name);
	printf(s->n_local ? "\n  cut tensors (uploaded):" : " (none)\n  cut tensors (uploaded):");
	for (int i = 0; i < s->n_cut; i++) {
		printf(" %s (%.0f B)", value_name(m, s->cut[i]), value_bytes(m, s->cut[i]));
		up += value_bytes(m, s->cut[i]);
	}
	printf("%s\n  upload %.0f bytes; result %s\n", s->n_cut ? "" : " (none)", up,
	       s->download ? "downloaded from the server" : "computed on the device");
}

typedef int (*baseline_fn)(struct dds_part_ctx *, double, struct dds_part_result *,
			   struct dds_part_err *);

static const struct {
	const char *name;
	baseline_fn fn;
} baselines[] = {
	{"edge_only", dds_part_edge_only},
	{"server_only", dds_part_server_only},
	{"dads", dds_part_dads},
	{"neurosurgeon", dds_part_neurosurgeon},
};

#define N_BASELINES (sizeof(baselines) / sizeof(baselines[0]))

static int run_baselines(struct dds_part_ctx *ctx, const struct dds_model *m, double r,
			 json_t *out)
{
	struct dds_part_err err;
	json_t *b = json_object();
	for (size_t i = 0; i < N_BASELINES; i++) {
		struct dds_part_result res;
		if (baselines[i].fn(ctx, r, &res, &err)) {
			json_decref(b);
			fprintf(stderr, "dds-partition: %s: %s\n", baselines[i].name, err.msg);
			return 1;
		}
		if (out)
			json_object_set_new(b, baselines[i].name, result_json(m, &res));
		else
			print_result(m, baselines[i].name, &res);
	}
	if (out)
		json_object_set_new(out, "baselines", b);
	else
		json_decref(b);
	return 0;
}

static json_t *envelope_json(const struct dds_model *m, const struct dds_part_envelope *env)
{
	json_t *a = json_array();
	for (int i = 0; i < dds_part_envelope_count(env); i++) {
		const struct dds_part_piece *p = dds_part_envelope_piece(env, i);
		json_t *o = split_json(m, &p->split);
		json_object_set_new(o, "r_lo", json_real(p->r_lo));
		json_object_set_new(o, "r_hi", isinf(p->r_hi) ? json_null() : json_real(p->r_hi));
		json_object_set_new(o, "a", json_real(p->a));
		json_object_set_new(o, "w", json_real(p->w));
		json_array_append_new(a, o);
	}
	return a;
}

static void envelope_text(const struct dds_model *m, const struct dds_part_envelope *env)
{
	printf("envelope T*(r) = A + W / r: %d pieces (r in GFLOP/s, A in ms, W in GFLOP)\n",
	       dds_part_envelope_count(env));
	for (int i = 0; i < dds_part_envelope_count(env); i++) {
		const struct dds_part_piece *p = dds_part_envelope_piece(env, i);
		printf("  r in [%10.4g, %10.4g): A %9.3f  W %8.4f  local %3d/%d  cut",
		       p->r_lo / 1e9, p->r_hi / 1e9, p->a * 1e3, p->w / 1e9, p->split.n_local,
		       m->n_layers);
		for (int k = 0; k < p->split.n_cut; k++)
			printf(" %s", value_name(m, p->split.cut[k]));
		printf("%s\n", p->split.n_cut ? "" : " -");
	}
}

/* Plot T*(r), edge only and server only over a log range of r around the breakpoints. */
static int plot(struct dds_part_ctx *ctx, const struct dds_part_envelope *env, const char *png)
{
	int m = dds_part_envelope_count(env);
	double lo = m > 1 ? dds_part_envelope_piece(env, 1)->r_lo / 10 : 1e9;
	double hi = m > 1 ? dds_part_envelope_piece(env, m - 1)->r_lo * 10 : 1e13;
	char dat[] = "/tmp/dds-partition-XXXXXX";
	int fd = mkstemp(dat);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		fprintf(stderr, "dds-partition: cannot create a temporary file: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i <= 400; i++) {
		double r = lo * pow(hi / lo, i / 400.0);
		struct dds_part_result eo, so;
		dds_part_edge_only(ctx, r, &eo, NULL);
		dds_part_server_only(ctx, r, &so, NULL);
		fprintf(f, "%g %g %g %g\n", r / 1e9,
			dds_part_piece_latency(dds_part_envelope_lookup(env, r), r) * 1e3,
			eo.total * 1e3, so.total * 1e3);
	}
	fclose(f);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "gnuplot -e \"set terminal pngcairo size 900,600; set output '%s'; set logscale x;"
		 " set xlabel 'allocation r (GFLOP/s)'; set ylabel 'latency (ms)'; set key top right;"
		 " plot '%s' u 1:2 w l lw 2 t 'T*(r) (min-cut envelope)', '' u 1:3 w l t 'edge only',"
		 " '' u 1:4 w l t 'server only'\"",
		 png, dat);
	int rc = system(cmd);
	remove(dat);
	if (rc != 0) {
		fprintf(stderr, "dds-partition: gnuplot failed (exit %d) writing %s\n", rc, png);
		return 1;
	}
	return 0;
}

static int write_graph(struct dds_part_ctx *ctx, double r, const char *path)
{
	struct dds_part_err err;
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "dds-partition: %s: %s\n", path, strerror(errno));
		return 1;
	}
	int rc = dds_part_write_graph(ctx, r, f, &err);
	if (fclose(f) || rc) {
		fprintf(stderr, "dds-partition: %s: %s\n", path, rc ? err.msg : strerror(errno));
		return 1;
	}
	return 0;
}

static int run(const struct opts *o, const struct dds_model *m, struct dds_part_ctx *ctx)
{
	json_t *out = o->json ? json_pack("{s:s}", "model", m->name) : NULL;
	int rc = 0;
	double r = o->r_gflops * 1e9;
	struct dds_part_err err;
	if (o->r_gflops) {
		struct dds_part_result res;
		if (dds_part_solve(ctx, r, &res, &err)) {
			fprintf(stderr, "dds-partition: %s\n", err.msg);
			json_decref(out);
			return 1;
		}
		if (out)
			json_object_update_new(out, result_json(m, &res));
		else
			print_result(m, "min-cut split", &res);
	}
	if (rc == 0 && o->baselines)
		rc = run_baselines(ctx, m, r, out);
	if (rc == 0 && o->graph)
		rc = write_graph(ctx, r, o->graph);
	if (rc == 0 && o->envelope) {
		struct dds_part_envelope *env;
		if (dds_part_envelope_new(ctx, &env, &err)) {
			fprintf(stderr, "dds-partition: envelope: %s\n", err.msg);
			json_decref(out);
			return 1;
		}
		if (out)
			json_object_set_new(out, "envelope", envelope_json(m, env));
		else
			envelope_text(m, env);
		if (o->plot)
			rc = plot(ctx, env, o->plot);
		dds_part_envelope_free(env);
	}
	if (out && rc == 0)
		json_dumpf(out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
	if (out && rc == 0)
		printf("\n");
	json_decref(out);
	return rc;
}

int main(int argc, char **argv)
{
	struct opts o;
	int rc = parse_args(argc, argv, &o);
	if (rc)
		return rc;
	struct dds_err merr;
	struct dds_part_err err;
	struct dds_model *m;
	if (dds_model_load_graph(o.model, &m, &merr)) {
		fprintf(stderr, "dds-partition: %s\n", merr.msg);
		return 1;
	}
	struct dds_part_linear lin = {
		.device_flops = o.device_gflops ? o.device_gflops * 1e9 : 1,
		.beta = o.beta,
		.up_bw = o.up_mbps * 1e6 / 8,
		.down_bw = o.down_mbps * 1e6 / 8,
		.use_macs = o.macs,
	};
	struct dds_part_model_input mi;
	struct dds_part_ctx *ctx = NULL;
	rc = 1;
	if (dds_part_graph_from_model(m, &lin, &mi, &err)) {
		fprintf(stderr, "dds-partition: %s: %s\n", o.model, err.msg);
		goto out_model;
	}
	if ((o.profile && dds_part_profile_load(m, o.profile, &mi, &err)) ||
	    dds_part_ctx_new(&mi.in, &ctx, &err))
		fprintf(stderr, "dds-partition: %s\n", err.msg);
	else
		rc = run(&o, m, ctx);
	dds_part_ctx_free(ctx);
	dds_part_model_input_free(&mi);
out_model:
	dds_model_free(m);
	return rc;
}
