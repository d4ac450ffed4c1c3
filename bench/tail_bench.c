/* tail_bench.c: throughput and latency of a model's tail on an execution backend, per split and batch.
 *
 * For each model (default: zoo/resnet50.json and zoo/vgg11.json, seeded weights) it picks three
 * splits: server only (the device sends the raw input) and the single-tensor cuts nearest a third
 * and two thirds of the model's FLOPs. For each split it prepares one plan for the largest batch
 * and times dds_plan_run() at each batch size (default 1, 8, 32, 64; --quick: 1 and 8, fewer
 * repetitions): median, min and max latency per batch after warm-up runs, and samples/s at the
 * median. The copy in and out is part of what is timed (it is part of serving).
 *
 *   tail_bench [--backend auto|cpu|cuda] [--threads N] [--quick] [--batches 1,8,32,64]
 *              [--reps N] [--warmup N] [--cpu-batched] [--json] [MODEL.json ...]
 *
 * --cpu-batched: the CPU backend's batched mode (dds_backend.h), instead of per request.
 * --json: one JSON object per line instead of the table: first {"tool": "tail_bench", ...}
 * (backend, threads, reps), then one per (model, split, batch) with model_path, cut (the
 * layer whose output is sent, or "input"), tail_gflop, batch, med_ms, min_ms, max_ms,
 * samples_per_s. bench/tail_torch.py reads it to time PyTorch eager on the same tails.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dds_backend.h"

#define MAX_BATCHES 16

struct bench_opts {
	const char *backend;
	bool cpu_batched, json;
	int threads, reps, warmup;
	int batches[MAX_BATCHES], n_batches;
};

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

/* Parse "1,8,32" into o->batches. Returns 0 or -1. */
static int parse_batches(const char *s, struct bench_opts *o)
{
	char *end;
	o->n_batches = 0;
	while (*s && o->n_batches < MAX_BATCHES) {
		errno = 0;
		long v = strtol(s, &end, 10);
		if (errno || end == s || v < 1 || v > 4096 || (*end && *end != ','))
			return -1;
		o->batches[o->n_batches++] = (int)v;
		s = *end ? end + 1 : end;
	}
	return o->n_batches && !*s ? 0 : -1;
}

/* Value id of the single-tensor cut whose head has the FLOPs fraction nearest `frac`, or -1.
 * A cut at value v is single-tensor when v alone lets the server compute the output. */
static int pick_cut(const struct dds_model *m, double frac, uint8_t *mask)
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

/* What a result row says about its split. */
struct bench_split {
	const char *path, *name, *cut; /* model file; split label; cut layer or "input" */
	double tail_gflop;
};

/* Print s as a JSON string (quotes, backslashes and control characters escaped). */
static void json_str(const char *s)
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

/* One result: a table row, or a JSON line (--json). */
static void print_row(const struct dds_model *m, const struct bench_split *sp, int batch,
		      const double *t, int reps, bool json)
{
	double med = t[reps / 2];

	if (json) {
		const char *keys[] = {"{\"model\": ", ", \"model_path\": ", ", \"cut\": "};
		const char *vals[] = {m->name, sp->path, sp->cut};
		for (int i = 0; i < 3; i++) {
			fputs(keys[i], stdout);
			json_str(vals[i]);
		}
		printf(", \"tail_gflop\": %.6f, \"batch\": %d, \"med_ms\": %.6f, \"min_ms\": %.6f, "
		       "\"max_ms\": %.6f, \"samples_per_s\": %.3f}\n",
		       sp->tail_gflop, batch, med * 1e3, t[0] * 1e3, t[reps - 1] * 1e3, batch / med);
	} else {
		printf("%-10s %-22s %9.3f %6d %10.2f %10.2f %10.2f %11.1f\n", m->name, sp->name,
		       sp->tail_gflop, batch, med * 1e3, t[0] * 1e3, t[reps - 1] * 1e3,
		       batch / med);
	}
	fflush(stdout);
}

/* Time one plan at every batch size and print one row each. Returns 0 or -1. */
static int bench_plan(struct dds_plan *p, const struct dds_model *m, const struct bench_split *sp,
		      const struct bench_opts *o)
{
	int maxb = dds_plan_max_batch(p), rc = 0;
	size_t nin = dds_plan_input_floats(p) * (size_t)maxb;
	float *in = malloc(nin * sizeof(float));
	float *out = malloc(dds_plan_output_floats(p) * (size_t)maxb * sizeof(float));
	double *t = malloc((size_t)o->reps * sizeof(double));
	struct dds_err err;

	if (!in || !out || !t) {
		fprintf(stderr, "tail_bench: out of memory\n");
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < nin; i++)
		in[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
	for (int bi = 0; bi < o->n_batches && !rc; bi++) {
		int batch = o->batches[bi];
		for (int r = 0; r < o->warmup + o->reps && !rc; r++) {
			double t0 = now_s();
			rc = dds_plan_run(p, in, batch, out, &err);
			if (r >= o->warmup)
				t[r - o->warmup] = now_s() - t0;
		}
		if (rc) {
			fprintf(stderr, "tail_bench: %s: %s\n", m->name, err.msg);
			break;
		}
		qsort(t, (size_t)o->reps, sizeof(double), cmp_double);
		print_row(m, sp, batch, t, o->reps, o->json);
	}
out:
	free(in);
	free(out);
	free(t);
	return rc;
}

/* The three splits of one model. Returns 0 or -1. */
static int bench_model(struct dds_backend *b, const char *path, const struct bench_opts *o)
{
	struct dds_model *m = NULL;
	struct dds_err err;
	int maxb = 0, rc = 0;

	if (dds_model_load(path, NULL, 1, &m, &err)) {
		fprintf(stderr, "tail_bench: %s\n", err.msg);
		return -1;
	}
	for (int i = 0; i < o->n_batches; i++)
		maxb = o->batches[i] > maxb ? o->batches[i] : maxb;
	uint8_t *mask = malloc((size_t)m->n_layers);
	const double fracs[] = {0, 1.0 / 3, 2.0 / 3};
	char abs_path[PATH_MAX];
	if (!realpath(path, abs_path))
		snprintf(abs_path, sizeof(abs_path), "%s", path);
	for (int s = 0; s < 3 && mask && !rc; s++) {
		int v = s ? pick_cut(m, fracs[s], mask) : 0;
		char split[64];
		if (v < 0 || dds_plan_tail_mask(m, &v, 1, mask, &err))
			continue; /* no such cut in this model */
		double tail = 0;
		for (int k = 0; k < m->n_layers; k++)
			tail += mask[k] ? m->layers[k].flops : 0;
		snprintf(split, sizeof(split), "%s", v ? m->layers[v - 1].name : "(server only)");
		struct bench_split sp = {abs_path, split, v ? m->layers[v - 1].name : "input",
					 tail / 1e9};
		struct dds_plan *p = dds_plan_create(b, m, mask, maxb, NULL, &err);
		if (!p) {
			fprintf(stderr, "tail_bench: %s\n", err.msg);
			rc = -1;
			break;
		}
		rc = bench_plan(p, m, &sp, o);
		dds_plan_free(p);
	}
	if (!mask)
		fprintf(stderr, "tail_bench: out of memory\n");
	free(mask);
	dds_model_free(m);
	return mask ? rc : -1;
}

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [--backend auto|cpu|cuda] [--threads N] [--quick] [--batches 1,8,32,64]\n"
		"          [--reps N] [--warmup N] [--cpu-batched] [--json] [MODEL.json ...]\n"
		"default models: zoo/resnet50.json zoo/vgg11.json (from the source root)\n",
		argv0);
}

/* Parse the options; returns the index of the first model argument, or -1. */
static int parse_args(int argc, char **argv, struct bench_opts *o)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--quick")) {
			parse_batches("1,8", o);
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

int main(int argc, char **argv)
{
	struct bench_opts o = {.backend = "auto", .threads = 0, .reps = 9, .warmup = 2};
	parse_batches("1,8,32,64", &o);
	int first = parse_args(argc, argv, &o);
	if (first < 0) {
		usage(argv[0]);
		return 2;
	}
	if (!o.threads)
		o.threads = (int)sysconf(_SC_NPROCESSORS_ONLN);

	struct dds_backend_opts bo = {.name = o.backend, .cpu_threads = o.threads,
				      .cpu_batched = o.cpu_batched};
	struct dds_err err;
	struct dds_backend *b = dds_backend_create(&bo, NULL, &err);
	if (!b) {
		fprintf(stderr, "tail_bench: %s\n", err.msg);
		return 1;
	}
	if (o.json)
		printf("{\"tool\": \"tail_bench\", \"backend\": \"%s\", \"cpu_batched\": %s, "
		       "\"threads\": %d, \"reps\": %d, \"warmup\": %d}\n",
		       dds_backend_name(b), o.cpu_batched ? "true" : "false", o.threads, o.reps,
		       o.warmup);
	else
		printf("# tail_bench: backend %s%s, %d CPU thread(s), %d reps after %d warm-up\n"
		       "%-10s %-22s %9s %6s %10s %10s %10s %11s\n",
		       dds_backend_name(b), o.cpu_batched ? " (cpu batched)" : "", o.threads, o.reps,
		       o.warmup, "model", "split (cut after)", "tail_GF", "batch", "med_ms",
		       "min_ms", "max_ms", "samples/s");

	const char *root = getenv("DDS_SOURCE_ROOT");
	char defaults[2][4096];
	char *dflt[2] = {defaults[0], defaults[1]};
	snprintf(defaults[0], sizeof(defaults[0]), "%s/zoo/resnet50.json", root ? root : ".");
	snprintf(defaults[1], sizeof(defaults[1]), "%s/zoo/vgg11.json", root ? root : ".");
	char **models = first < argc ? argv + first : dflt;
	int n_models = first < argc ? argc - first : 2, rc = 0;
	for (int i = 0; i < n_models; i++)
		rc |= bench_model(b, models[i], &o);
	dds_backend_free(b);
	return rc ? 1 : 0;
}
