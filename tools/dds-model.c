/* dds-model: inspect a model graph (vertices, edges, FLOPs, per-layer table) and run it on the
 * CPU engine, for people and for the PyTorch comparison tests and benchmarks. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dds_engine.h"
#include "dds_gpu.h"
#include "dds_model.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: dds-model info MODEL.json [--json]\n"
		"       dds-model backends\n"
		"       dds-model meet MODEL.json SPLIT SPLIT... [--json]\n"
		"       dds-model run MODEL.json [--weights W.ddsw] [--seed S] [--input IN.bin]\n"
		"                 [--output OUT.bin] [--batch N] [--threads T] [--kernels fast|ref]\n"
		"                 [--repeat K] [--warmup K] [--json]\n"
		"  info  prints vertices, edges, GFLOPs, GMACs (ptflops convention) and each layer\n"
		"  backends  says which execution backends are usable here (CPU always; CUDA if a GPU is)\n"
		"  meet  where the tails of splits meet: each SPLIT is the comma-separated values a device\n"
		"        sends (layer names, or 'input'); prints each tail, the shared tail and the\n"
		"        models[].merge_at that names it (docs/scheduler.md, \"Merging splits\")\n"
		"  run   runs the model on the CPU engine; input/output are raw float32 LE [batch, ...]\n"
		"        (seeded random input when --input is absent)\n");
}

static json_t *shape_json(const struct dds_shape *s)
{
	json_t *a = json_array();
	for (int i = 0; i < s->ndim; i++)
		json_array_append_new(a, json_integer(s->d[i]));
	return a;
}

static const char *value_name(const struct dds_model *m, int v)
{
	return v ? m->layers[v - 1].name : "input";
}

static json_t *info_json(const struct dds_model *m, const char *path)
{
	char hash[17];
	json_t *layers = json_array();
	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)m->hash);
	for (int i = 0; i < m->n_layers; i++) {
		const struct dds_layer *l = &m->layers[i];
		json_t *ins = json_array();
		for (int k = 0; k < l->n_in; k++)
			json_array_append_new(ins, json_string(value_name(m, l->in[k])));
		json_array_append_new(layers, json_pack("{s:s, s:s, s:o, s:o, s:I, s:f, s:f}", "name",
							l->name, "op", dds_op_name(l->op), "inputs",
							ins, "shape", shape_json(&l->out_shape),
							"out_bytes", (json_int_t)l->out_bytes, "flops",
							l->flops, "macs", l->macs));
	}
	return json_pack("{s:s, s:s, s:s, s:o, s:I, s:i, s:i, s:f, s:f, s:I, s:s, s:o}", "name",
			 m->name, "file", path, "hash", hash, "input_shape", shape_json(&m->in_shape),
			 "input_bytes", (json_int_t)m->in_bytes, "vertices", m->n_layers, "edges",
			 m->n_edges, "gflops", m->flops / 1e9, "gmacs", m->macs / 1e9, "params",
			 (json_int_t)m->n_weights, "output", m->layers[m->output].name, "layers",
			 layers);
}

static void info_text(const struct dds_model *m, const char *path)
{
	char sh[64];
	dds_shape_format(&m->in_shape, sh, sizeof(sh));
	printf("model %s (%s, hash %016llx)\n", m->name, path, (unsigned long long)m->hash);
	printf("input %s, %zu bytes; output '%s'\n", sh, m->in_bytes, m->layers[m->output].name);
	printf("vertices %d  edges %d  GFLOPs %.3f  GMACs %.3f  params %.2fM\n\n", m->n_layers,
	       m->n_edges, m->flops / 1e9, m->macs / 1e9, (double)m->n_weights / 1e6);
	printf("%4s  %-28s %-16s %-16s %12s %10s %10s  %s\n", "#", "layer", "op", "output",
	       "out bytes", "MFLOPs", "MMACs", "inputs");
	for (int i = 0; i < m->n_layers; i++) {
		const struct dds_layer *l = &m->layers[i];
		dds_shape_format(&l->out_shape, sh, sizeof(sh));
		printf("%4d  %-28s %-16s %-16s %12zu %10.2f %10.2f  ", i, l->name, dds_op_name(l->op),
		       sh, l->out_bytes, l->flops / 1e6, l->macs / 1e6);
		for (int k = 0; k < l->n_in; k++)
			printf("%s%s", k ? "," : "", value_name(m, l->in[k]));
		printf("\n");
	}
}

struct run_opts {
	const char *weights, *input, *output;
	unsigned long long seed;
	int batch, threads, repeat, warmup, json;
	enum dds_kernels kernels;
};

static int read_exact(const char *path, float *buf, size_t n)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "dds-model: %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t got = fread(buf, sizeof(float), n, f);
	int extra = fgetc(f) != EOF;
	fclose(f);
	if (got != n || extra) {
		fprintf(stderr, "dds-model: %s: expected exactly %zu float32 values (%zu bytes)\n", path,
			n, n * sizeof(float));
		return -1;
	}
	return 0;
}

static void fill_random(float *x, size_t n, unsigned long long seed)
{
	unsigned long long s = seed * 0x9e3779b97f4a7c15ull + 1;
	for (size_t i = 0; i < n; i++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		x[i] = (float)((double)(s >> 11) * (2.0 / 9007199254740992.0) - 1.0);
	}
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int write_output(struct dds_engine *e, const struct dds_model *m, const struct run_opts *o)
{
	size_t n = (size_t)o->batch * dds_shape_numel(&m->layers[m->output].out_shape);
	FILE *f = fopen(o->output, "wb");
	if (!f || fwrite(dds_engine_value(e, m->output + 1), sizeof(float), n, f) != n) {
		fprintf(stderr, "dds-model: %s: cannot write: %s\n", o->output, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f) ? -1 : 0;
}

/* Time `repeat` runs after `warmup`; fills times (ms, sorted). */
static int timed_runs(struct dds_engine *e, const struct run_opts *o, double *times)
{
	struct dds_err err;
	for (int i = 0; i < o->warmup + o->repeat; i++) {
		double t0 = now_ms();
		if (dds_engine_run(e, NULL, o->batch, &err)) {
			fprintf(stderr, "dds-model: %s\n", err.msg);
			return -1;
		}
		if (i >= o->warmup)
			times[i - o->warmup] = now_ms() - t0;
	}
	qsort(times, (size_t)o->repeat, sizeof(double), cmp_double);
	return 0;
}

static int run_model(const struct dds_model *m, const struct run_opts *o)
{
	struct dds_err err;
	struct dds_engine_opts eo = {.max_batch = o->batch, .threads = o->threads,
				     .kernels = o->kernels};
	struct dds_engine *e = dds_engine_create(m, &eo, &err);
	if (!e) {
		fprintf(stderr, "dds-model: %s\n", err.msg);
		return 1;
	}
	size_t nin = (size_t)o->batch * dds_shape_numel(&m->in_shape);
	double *times = calloc((size_t)o->repeat, sizeof(double));
	int rc = 1;
	if (o->input ? read_exact(o->input, dds_engine_value(e, 0), nin) : 0)
		goto out;
	if (!o->input)
		fill_random(dds_engine_value(e, 0), nin, o->seed);
	if (!times || timed_runs(e, o, times) || (o->output && write_output(e, m, o)))
		goto out;
	double med = times[o->repeat / 2];
	if (o->json)
		printf("{\"model\": \"%s\", \"batch\": %d, \"threads\": %d, \"kernels\": \"%s\", "
		       "\"ms_median\": %.4f, \"ms_min\": %.4f, \"runs\": %d}\n",
		       m->name, o->batch, o->threads, o->kernels == DDS_KERNELS_REF ? "ref" : "fast",
		       med, times[0], o->repeat);
	else
		printf("%s: batch %d, %d thread(s), %s kernels: median %.3f ms, min %.3f ms over %d "
		       "runs\n",
		       m->name, o->batch, o->threads, o->kernels == DDS_KERNELS_REF ? "ref" : "fast",
		       med, times[0], o->repeat);
	rc = 0;
out:
	free(times);
	dds_engine_free(e);
	return rc;
}

/* ---- meet ---- */

/* The tail of one split given as "name,name,...": its mask (n_layers bytes). 0, or 1 with a
 * message on stderr (unknown name, not a cut). */
static int split_tail(const struct dds_model *m, const char *spec, uint8_t *mask)
{
	int max = m->n_layers + 1, n = 0, rc = 0;
	int *vals = malloc(sizeof(int) * (size_t)max);
	char *buf = strdup(spec), *save = NULL;
	struct dds_err err;

	if (!vals || !buf) {
		fprintf(stderr, "dds-model: meet: out of memory\n");
		rc = 1;
	}
	for (char *t = rc ? NULL : strtok_r(buf, ",", &save); t && rc == 0;
	     t = strtok_r(NULL, ",", &save)) {
		int li = strcmp(t, "input") ? dds_model_find(m, t) : -1;

		if (n == max || (li < 0 && strcmp(t, "input"))) {
			fprintf(stderr, "dds-model: meet: split '%s': %s '%s'\n", spec,
				n == max ? "too many values at" : "no layer", t);
			rc = 1;
		}
		vals[n++] = li + 1;
	}
	if (rc == 0 && dds_model_tail_mask(m, vals, n, mask, &err)) {
		fprintf(stderr, "dds-model: meet: split '%s': %s\n", spec, err.msg);
		rc = 1;
	}
	free(vals);
	free(buf);
	return rc;
}

static double tail_flops(const struct dds_model *m, const uint8_t *mask, int *layers)
{
	double f = 0;

	*layers = 0;
	for (int k = 0; k < m->n_layers; k++)
		if (mask[k]) {
			f += m->layers[k].flops;
			(*layers)++;
		}
	return f;
}

static void meet_print(const struct dds_model *m, char **specs, int n_splits,
		       uint8_t *const *tails, const uint8_t *meet, const int *cut, int n_cut,
		       bool json)
{
	int layers, mlayers;
	double mf = tail_flops(m, meet, &mlayers);

	printf(json ? "{\"model\": \"%s\", \"splits\": [" : "model %s\n", m->name);
	for (int i = 0; i < n_splits; i++) {
		double f = tail_flops(m, tails[i], &layers);

		printf(json ? "%s{\"values\": \"%s\", \"tail_layers\": %d, \"tail_gflop\": %.9g, "
			      "\"shared\": %.9g}"
			    : "%ssplit %s: tail %d layers, %.4g GFLOP, %.1f%% of it shared\n",
		       json && i ? ", " : "", specs[i], layers, f / 1e9,
		       json ? (f > 0 ? mf / f : 0) : (f > 0 ? 100 * mf / f : 0));
	}
	printf(json ? "], \"meet\": {\"tail_layers\": %d, \"tail_gflop\": %.9g, \"merge_at\": ["
		    : "meet: tail %d layers, %.4g GFLOP\nmerge_at: [", mlayers, mf / 1e9);
	for (int i = 0; i < n_cut; i++)
		printf("%s\"%s\"", i ? ", " : "", value_name(m, cut[i]));
	printf(json ? "]}}\n" : "]\n");
}

/* dds-model meet MODEL SPLIT SPLIT...: the shared tail is the intersection of the tails (a valid
 * tail: the union of closed heads is closed); its inputs are the merge_at cut. */
static int meet(const struct dds_model *m, char **specs, int n, bool json)
{
	uint8_t **tails = calloc((size_t)n, sizeof(*tails));
	uint8_t *meet_mask = calloc((size_t)m->n_layers, 1);
	uint8_t *cut_flag = calloc((size_t)m->n_layers + 1, 1);
	int *cut = calloc((size_t)m->n_layers + 1, sizeof(int)), n_cut;
	int rc = !tails || !meet_mask || !cut || !cut_flag;

	if (rc)
		fprintf(stderr, "dds-model: meet: out of memory\n");
	for (int i = 0; i < n && rc == 0; i++) {
		tails[i] = malloc((size_t)m->n_layers);
		if (!tails[i])
			fprintf(stderr, "dds-model: meet: out of memory\n");
		rc = !tails[i] || split_tail(m, specs[i], tails[i]);
	}
	for (int k = 0; k < m->n_layers && rc == 0; k++) {
		meet_mask[k] = 1;
		for (int i = 0; i < n; i++)
			meet_mask[k] &= tails[i][k];
	}
	n_cut = 0;
	if (rc == 0) {
		dds_model_mask_inputs(m, meet_mask, cut_flag);
		for (int v = 0; v <= m->n_layers; v++)
			if (cut_flag[v])
				cut[n_cut++] = v;
	}
	if (rc == 0 && n_cut > 0 && cut[0] == 0) {
		fprintf(stderr, "dds-model: meet: the shared tail reads the raw input: the splits "
			"meet nowhere merge_at can name\n");
		rc = 1;
	}
	if (rc == 0)
		meet_print(m, specs, n, tails, meet_mask, cut, n_cut, json);
	for (int i = 0; tails && i < n; i++)
		free(tails[i]);
	free(tails);
	free(meet_mask);
	free(cut_flag);
	free(cut);
	return rc;
}

static int parse_int(const char *flag, const char *s, int lo, int hi, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi) {
		fprintf(stderr, "dds-model: %s must be an integer in [%d, %d], got '%s'\n", flag, lo, hi,
			s);
		return -1;
	}
	*out = (int)v;
	return 0;
}

static int parse_run_opts(int argc, char **argv, struct run_opts *o)
{
	static const struct option longopts[] = {
		{"weights", required_argument, 0, 'w'}, {"seed", required_argument, 0, 's'},
		{"input", required_argument, 0, 'i'},   {"output", required_argument, 0, 'o'},
		{"batch", required_argument, 0, 'b'},   {"threads", required_argument, 0, 't'},
		{"kernels", required_argument, 0, 'k'}, {"repeat", required_argument, 0, 'r'},
		{"warmup", required_argument, 0, 'W'},  {"json", no_argument, 0, 'j'},
		{0, 0, 0, 0}};
	int c, seed = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case 'w': o->weights = optarg; break;
		case 'i': o->input = optarg; break;
		case 'o': o->output = optarg; break;
		case 'j': o->json = 1; break;
		case 's': bad = parse_int("--seed", optarg, 0, 1 << 30, &seed); break;
		case 'b': bad = parse_int("--batch", optarg, 1, 4096, &o->batch); break;
		case 't': bad = parse_int("--threads", optarg, 1, 256, &o->threads); break;
		case 'r': bad = parse_int("--repeat", optarg, 1, 100000, &o->repeat); break;
		case 'W': bad = parse_int("--warmup", optarg, 0, 100000, &o->warmup); break;
		case 'k':
			if (!strcmp(optarg, "fast") || !strcmp(optarg, "ref"))
				o->kernels = optarg[0] == 'r' ? DDS_KERNELS_REF : DDS_KERNELS_FAST;
			else
				bad = fprintf(stderr, "dds-model: --kernels must be fast or ref\n");
			break;
		default: bad = 1; break;
		}
		if (bad)
			return -1;
	}
	o->seed = (unsigned long long)seed;
	return 0;
}

static int backends(void)
{
	char what[256];
	int n = dds_gpu_probe(what, sizeof(what));
	printf("cpu: available (reference and im2col+OpenBLAS kernels)\ncuda: %s%s\n",
	       n > 0 ? "available, " : "", what);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "backends"))
		return backends();
	if (argc < 3 || (strcmp(argv[1], "info") && strcmp(argv[1], "run") &&
			 strcmp(argv[1], "meet"))) {
		usage(argc > 1 && !strcmp(argv[1], "--help") ? stdout : stderr);
		return argc > 1 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	const char *cmd = argv[1], *path = argv[2];
	struct run_opts o = {.batch = 1, .threads = 1, .repeat = 1, .warmup = 0};
	optind = 3;
	if (!strcmp(cmd, "meet")) {
		o.json = !strcmp(argv[argc - 1], "--json");
		if (argc - 3 - o.json < 2) {
			usage(stderr);
			return 2;
		}
	} else if (!strcmp(cmd, "info")) {
		o.json = argc > 3 && !strcmp(argv[3], "--json");
		if (argc > 3 + o.json) {
			usage(stderr);
			return 2;
		}
	} else if (parse_run_opts(argc, argv, &o) || optind != argc) {
		usage(stderr);
		return 2;
	}
	struct dds_model *m;
	struct dds_err err;
	int rc_load = !strcmp(cmd, "run") ? dds_model_load(path, o.weights, o.seed, &m, &err)
					  : dds_model_load_graph(path, &m, &err);
	if (rc_load) {
		fprintf(stderr, "dds-model: %s\n", err.msg);
		return 1;
	}
	int rc = 0;
	if (!strcmp(cmd, "run")) {
		rc = run_model(m, &o);
	} else if (!strcmp(cmd, "meet")) {
		rc = meet(m, argv + 3, argc - 3 - o.json, o.json);
	} else if (o.json) {
		json_t *j = info_json(m, path);
		json_dumpf(j, stdout, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
		printf("\n");
		json_decref(j);
	} else {
		info_text(m, path);
	}
	dds_model_free(m);
	return rc;
}
