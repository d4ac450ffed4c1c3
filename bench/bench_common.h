/* bench_common.h: what the tail benchmarks (tail_bench, merge_bench) share: options, backend, models, timing, cut choice, JSON strings.
 *
 * Options common to both (one usage text): [--backend auto|cpu|cuda] [--threads N] [--quick]
 * [--batches B,B,...] [--reps N] [--warmup N] [--cpu-batched] [--json] [MODEL.json ...]; each
 * tool gives its own default and --quick batch lists. Errors go to stderr prefixed by the tool's
 * name; nothing here exits.
 */
#ifndef DDS_BENCH_COMMON_H
#define DDS_BENCH_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "dds_backend.h"

#define DDS_BENCH_MAX_BATCHES 16

struct dds_bench_opts;

/* Run one model (loaded with seeded weights; abs_path: its file's absolute path) on backend b:
 * print its rows. Returns 0 or -1 (message printed). */
typedef int (*dds_bench_model_fn)(const struct dds_bench_opts *o, struct dds_backend *b,
				  const struct dds_model *m, const char *abs_path);

/* Which tool runs: its name (messages, JSON "tool"), batch lists and rows. */
struct dds_bench_tool {
	const char *name;
	const char *batches;       /* default --batches */
	const char *quick_batches; /* --quick's (with 3 reps after 1 warm-up) */
	int batch_step;            /* every batch must be a multiple of it */
	const char *columns;       /* the table's header line(s) (not with --json) */
	dds_bench_model_fn run;
};

struct dds_bench_opts {
	const struct dds_bench_tool *tool;
	const char *backend;
	bool cpu_batched, json;
	int threads, reps, warmup;
	int batches[DDS_BENCH_MAX_BATCHES], n_batches;
	int max_batch; /* the largest of batches */
};

/* The tool's main: options (defaults: the tool's batches, 9 reps after 2 warm-up, all CPUs),
 * the backend they name, the header (--json: a JSON object with tool, backend, cpu_batched,
 * threads, reps, warmup; else a "# tool: ..." comment line and the tool's columns), then
 * tool->run for each model argument (none: zoo/resnet50.json and zoo/vgg11.json under
 * $DDS_SOURCE_ROOT, default "."; a failed model does not stop the others). Returns the exit
 * status: 0, 1 (a backend, model or run failed) or 2 (bad options, usage printed). */
int dds_bench_main(int argc, char **argv, const struct dds_bench_tool *tool);

/* Latency of one timed round, in seconds. */
struct dds_bench_stats {
	double med, min, max;
};

/* Time n kinds of round: o->warmup untimed passes, then o->reps timed ones (CLOCK_MONOTONIC);
 * a pass runs round[i](arg) once for each i in order, so that a drift in the machine's load
 * hits every kind alike. Returns 0 with st[i] per kind, or the first non-zero status of a round
 * (err filled by it), or -1 (err: out of memory). */
typedef int (*dds_bench_round_fn)(void *arg, struct dds_err *err);
int dds_bench_time(const struct dds_bench_opts *o, int n, const dds_bench_round_fn *round,
		   void *arg, struct dds_bench_stats *st, struct dds_err *err);

/* Value id of the single-tensor cut whose head has the FLOPs fraction nearest `frac`, or -1;
 * mask (m->n_layers bytes) is scratch. A cut at value v is single-tensor when v alone lets the
 * server compute the output. */
int dds_bench_pick_cut(const struct dds_model *m, double frac, uint8_t *mask);

/* GFLOP of the layers of mask (one byte per layer, non-zero = counted). */
double dds_bench_gflop(const struct dds_model *m, const uint8_t *mask);

/* Print s on stdout as a JSON string (quotes, backslashes and control characters escaped). */
void dds_bench_json_str(const char *s);

#endif
