/* bench_common.c: the pieces tail_bench and merge_bench share (bench_common.h): options, backend, models, timing, cuts. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Parse "1,8,32" into o->batches and o->max_batch. Returns 0 or -1. */
static int parse_batches(const char *s, struct dds_bench_opts *o)
{
	char *end;
	o->n_batches = 0;
	o->max_batch = 0;
	while (*s && o->n_batches < DDS_BENCH_MAX_BATCHES) {
		errno = 0;
		long v = strtol(s, &end, 10);
		if (errno || end == s || v < 1 || v > 4096 || (*end && *end != ','))
			return -1;
		o->batches[o->n_batches++] = (int)v;
		o->max_batch = (int)v > o->max_batch ? (int)v : o->max_batch;
		s = *end ? end + 1 : end;
	}
	return o->n_batches && !*s ? 0 : -1;
}

static void usage(const char *argv0, const struct dds_bench_tool *t)
{
	fprintf(stderr,
		"usage: %s [--backend auto|cpu|cuda] [--threads N] [--quick] [--batches %s]\n"
		"          [--reps N] [--warmup N] [--cpu-batched] [--json] [MODEL.json ...]\n"
		"--quick: batches %s, 3 reps after 1 warm-up\n"
		"default models: zoo/resnet50.json zoo/vgg11.json (under $DDS_SOURCE_ROOT, default .)\n",
		argv0, t->batches, t->quick_batches);
}

/* The options before the models; returns the index of the first model argument, or -1. */
static int parse_opts(int argc, char **argv, struct dds_bench_opts *o)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--quick")) {
			parse_batches(o->tool->quick_batches, o);
			o->reps = 3;
			o->warmup = 1;
			continue;
		}
		if (!strcmp(a, "--cpu-batched") || !strcmp(a, "--json")) {
			*(a[2] == 'j' ? &o->json : &o->cpu_batched) = true;
			continue;
		}
		if (!v)
			return -1;
		i++;
		if (!strcmp(a, "--backend"))
			o->backend = v;
		else if (!strcmp(a, "--threads"))
			o->threads = atoi(v);
		else if (!strcmp(a, "--reps"))
			o->reps = atoi(v);
		else if (!strcmp(a, "--warmup"))
			o->warmup = atoi(v);
		else if (!strcmp(a, "--batches") ? parse_batches(v, o) : 1)
			return -1;
	}
	return o->threads >= 0 && o->reps >= 1 && o->warmup >= 0 ? i : -1;
}

/* o from the tool's defaults and argv's options. Returns the index of the first model
 * argument, or -1 (message or usage printed). */
static int parse_args(int argc, char **argv, const struct dds_bench_tool *tool,
		      struct dds_bench_opts *o)
{
	*o = (struct dds_bench_opts){.tool = tool, .backend = "auto", .reps = 9, .warmup = 2};
	parse_batches(tool->batches, o);
	int first = parse_opts(argc, argv, o);
	if (first < 0) {
		usage(argv[0], tool);
		return -1;
	}
	for (int i = 0; i < o->n_batches; i++)
		if (o->batches[i] % tool->batch_step) {
			fprintf(stderr, "%s: --batches: %d is not a multiple of %d\n", tool->name,
				o->batches[i], tool->batch_step);
			return -1;
		}
	if (!o->threads)
		o->threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return first;
}

/* The backend o names, and the run's header. NULL (error printed) on failure. */
static struct dds_backend *make_backend(const struct dds_bench_opts *o)
{
	struct dds_backend_opts bo = {.name = o->backend, .cpu_threads = o->threads,
				      .cpu_batched = o->cpu_batched};
	struct dds_err err;
	struct dds_backend *b = dds_backend_create(&bo, NULL, &err);

	if (!b) {
		fprintf(stderr, "%s: %s\n", o->tool->name, err.msg);
		return NULL;
	}
	if (o->json)
		printf("{\"tool\": \"%s\", \"backend\": \"%s\", \"cpu_batched\": %s, "
		       "\"threads\": %d, \"reps\": %d, \"warmup\": %d}\n",
		       o->tool->name, dds_backend_name(b), o->cpu_batched ? "true" : "false",
		       o->threads, o->reps, o->warmup);
	else
		printf("# %s: backend %s%s, %d CPU thread(s), %d reps after %d warm-up\n%s",
		       o->tool->name, dds_backend_name(b), o->cpu_batched ? " (cpu batched)" : "",
		       o->threads, o->reps, o->warmup, o->tool->columns);
	return b;
}

/* Load one model and run the tool on it. Returns 0 or -1. */
static int run_model(const struct dds_bench_opts *o, struct dds_backend *b, const char *path)
{
	struct dds_model *m = NULL;
	struct dds_err err;
	char abs_path[PATH_MAX];

	if (dds_model_load(path, NULL, 1, &m, &err)) {
		fprintf(stderr, "%s: %s\n", o->tool->name, err.msg);
		return -1;
	}
	if (!realpath(path, abs_path))
		snprintf(abs_path, sizeof(abs_path), "%s", path);
	int rc = o->tool->run(o, b, m, abs_path);
	dds_model_free(m);
	return rc;
}

int dds_bench_main(int argc, char **argv, const struct dds_bench_tool *tool)
{
	const char *root = getenv("DDS_SOURCE_ROOT"), *zoo[] = {"resnet50", "vgg11"};
	char path[PATH_MAX];
	struct dds_bench_opts o;
	struct dds_backend *b;
	int first = parse_args(argc, argv, tool, &o), rc = 0;

	if (first < 0)
		return 2;
	if (!(b = make_backend(&o)))
		return 1;
	for (int i = first; i < argc; i++)
		rc |= run_model(&o, b, argv[i]);
	for (int i = 0; first == argc && i < 2; i++) {
		snprintf(path, sizeof(path), "%s/zoo/%s.json", root ? root : ".", zoo[i]);
		rc |= run_model(&o, b, path);
	}
	dds_backend_free(b);
	return rc ? 1 : 0;
}

int dds_bench_time(const struct dds_bench_opts *o, int n, const dds_bench_round_fn *round,
		   void *arg, struct dds_bench_stats *st, struct dds_err *err)
{
	double *t = malloc((size_t)o->reps * (size_t)n * sizeof(double));
	int rc = 0;

	if (!t) {
		snprintf(err->msg, sizeof(err->msg), "out of memory");
		return -1;
	}
	for (int r = 0; r < o->warmup + o->reps && !rc; r++)
		for (int i = 0; i < n && !rc; i++) {
			double t0 = now_s();
			rc = round[i](arg, err);
			if (r >= o->warmup)
				t[i * o->reps + r - o->warmup] = now_s() - t0;
		}
	for (int i = 0; i < n && !rc; i++) {
		double *ti = t + i * o->reps;
		qsort(ti, (size_t)o->reps, sizeof(double), cmp_double);
		st[i] = (struct dds_bench_stats){ti[o->reps / 2], ti[0], ti[o->reps - 1]};
	}
	free(t);
	return rc;
}

int dds_bench_pick_cut(const struct dds_model *m, double frac, uint8_t *mask)
{
	int best = -1;
	double head = 0, best_d = 2;

	for (int k = 0; k < m->n_layers; k++) {
		int v = k + 1;
		head += m->layers[k].flops;
		if (k == m->output || dds_plan_tail_mask(m, &v, 1, mask, NULL))
			continue;
		double d = head / m->flops - frac;
		d = d < 0 ? -d : d;
		if (d < best_d) {
			best_d = d;
			best = v;
		}
	}
	return best;
}

double dds_bench_gflop(const struct dds_model *m, const uint8_t *mask)
{
	double f = 0;
	for (int k = 0; k < m->n_layers; k++)
		f += mask[k] ? m->layers[k].flops : 0;
	return f / 1e9;
}

void dds_bench_json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}
