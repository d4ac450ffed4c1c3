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
 * samples_per_s. bench/tail_torch.py reads it to time PyTorch eager on the same tails. Options,
 * timing and the cut choice are bench_common.h's (shared with merge_bench).
 */
#include <stdio.h>
#include <stdlib.h>

#include "bench_common.h"

/* What a result row says about its split. */
struct bench_split {
	const char *path, *name, *cut; /* model file; split label; cut layer or "input" */
	double tail_gflop;
};

/* One result: a table row, or a JSON line (--json). */
static void print_row(const struct dds_model *m, const struct bench_split *sp, int batch,
		      const struct dds_bench_stats *st, bool json)
{
	if (json) {
		const char *keys[] = {"{\"model\": ", ", \"model_path\": ", ", \"cut\": "};
		const char *vals[] = {m->name, sp->path, sp->cut};
		for (int i = 0; i < 3; i++) {
			fputs(keys[i], stdout);
			dds_bench_json_str(vals[i]);
		}
		printf(", \"tail_gflop\": %.6f, \"batch\": %d, \"med_ms\": %.6f, \"min_ms\": %.6f, "
		       "\"max_ms\": %.6f, \"samples_per_s\": %.3f}\n",
		       sp->tail_gflop, batch, st->med * 1e3, st->min * 1e3, st->max * 1e3,
		       batch / st->med);
	} else {
		printf("%-10s %-22s %9.3f %6d %10.2f %10.2f %10.2f %11.1f\n", m->name, sp->name,
		       sp->tail_gflop, batch, st->med * 1e3, st->min * 1e3, st->max * 1e3,
		       batch / st->med);
	}
	fflush(stdout);
}

/* One timed round: the plan on a batch already laid out (the copy in and out included). */
struct plan_round {
	struct dds_plan *p;
	const float *in;
	float *out;
	int batch;
};

static int plan_round(void *arg, struct dds_err *err)
{
	struct plan_round *r = arg;
	return dds_plan_run(r->p, r->in, r->batch, r->out, err);
}

/* Time one plan at every batch size and print one row each. Returns 0 or -1. */
static int bench_plan(struct dds_plan *p, const struct dds_model *m, const struct bench_split *sp,
		      const struct dds_bench_opts *o)
{
	int maxb = dds_plan_max_batch(p), rc = 0;
	size_t nin = dds_plan_input_floats(p) * (size_t)maxb;
	float *in = malloc(nin * sizeof(float));
	float *out = malloc(dds_plan_output_floats(p) * (size_t)maxb * sizeof(float));
	struct dds_bench_stats st;
	struct dds_err err;

	if (!in || !out) {
		fprintf(stderr, "tail_bench: out of memory\n");
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < nin; i++)
		in[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
	for (int bi = 0; bi < o->n_batches && !rc; bi++) {
		struct plan_round r = {p, in, out, o->batches[bi]};
		const dds_bench_round_fn fn = plan_round;
		rc = dds_bench_time(o, 1, &fn, &r, &st, &err);
		if (rc)
			fprintf(stderr, "tail_bench: %s: %s\n", m->name, err.msg);
		else
			print_row(m, sp, r.batch, &st, o->json);
	}
out:
	free(in);
	free(out);
	return rc;
}

/* The three splits of one model (a dds_bench_model_fn). Returns 0 or -1. */
static int bench_model(const struct dds_bench_opts *o, struct dds_backend *b,
		       const struct dds_model *m, const char *abs_path)
{
	struct dds_err err;
	int rc = 0;
	uint8_t *mask = malloc((size_t)m->n_layers);
	const double fracs[] = {0, 1.0 / 3, 2.0 / 3};

	for (int s = 0; s < 3 && mask && !rc; s++) {
		int v = s ? dds_bench_pick_cut(m, fracs[s], mask) : 0;
		if (v < 0 || dds_plan_tail_mask(m, &v, 1, mask, &err))
			continue; /* no such cut in this model */
		struct bench_split sp = {abs_path, v ? m->layers[v - 1].name : "(server only)",
					 v ? m->layers[v - 1].name : "input",
					 dds_bench_gflop(m, mask)};
		struct dds_plan *p = dds_plan_create(b, m, mask, o->max_batch, NULL, &err);
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
	return mask ? rc : -1;
}

int main(int argc, char **argv)
{
	static const struct dds_bench_tool tool = {
		"tail_bench", "1,8,32,64", "1,8", 1,
		"model      split (cut after)        tail_GF  batch     med_ms     min_ms     max_ms"
		"   samples/s\n",
		bench_model};
	return dds_bench_main(argc, argv, &tool);
}
