/* engine_bench.c: times the CPU engine on a model graph and prints the figures (not a test).
 *
 * usage: engine_bench MODEL.json [threads [batch [reps [ref]]]]
 * Seeded weights. Prints the median and best whole-graph time, the time per op kind (each
 * layer run alone through a one-layer mask) and, with a 5th argument "ref", the largest
 * relative error of the fast output against the reference kernels.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dds_engine.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static struct dds_engine *make(const struct dds_model *m, enum dds_kernels k, int threads,
			       int batch)
{
	struct dds_engine_opts o = {.max_batch = batch, .threads = threads, .kernels = k};
	struct dds_err err;
	struct dds_engine *e = dds_engine_create(m, &o, &err);
	if (!e)
		fprintf(stderr, "engine_bench: %s\n", err.msg);
	return e;
}

static void fill_input(struct dds_engine *e, const struct dds_model *m, int batch)
{
	size_t n = dds_shape_numel(&m->in_shape) * (size_t)batch;
	float *x = dds_engine_value(e, 0);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)sin((double)i * 0.37);
}

/* Whole-graph runs: print median and best of `reps`. */
static void time_whole(struct dds_engine *e, int batch, int reps)
{
	double *t = calloc((size_t)reps, sizeof(double));
	if (!t)
		return;
	dds_engine_run(e, NULL, batch, NULL); /* warm-up */
	for (int r = 0; r < reps; r++) {
		double t0 = now_ms();
		dds_engine_run(e, NULL, batch, NULL);
		t[r] = now_ms() - t0;
	}
	qsort(t, (size_t)reps, sizeof(double), cmp_double);
	printf("whole graph: median %.2f ms, best %.2f ms (%d runs)\n", t[reps / 2], t[0], reps);
	free(t);
}

/* Each layer alone (one-layer mask), summed per op kind. */
static void time_per_op(struct dds_engine *e, const struct dds_model *m, int batch)
{
	double per_op[DDS_OP__COUNT] = {0};
	uint8_t *mask = calloc((size_t)m->n_layers, 1);
	if (!mask)
		return;
	for (int li = 0; li < m->n_layers; li++) {
		mask[li] = 1;
		double t0 = now_ms();
		dds_engine_run(e, mask, batch, NULL);
		per_op[m->layers[li].op] += now_ms() - t0;
		mask[li] = 0;
	}
	for (int op = 0; op < DDS_OP__COUNT; op++)
		if (per_op[op] > 0)
			printf("  %-18s %8.2f ms\n", dds_op_name((enum dds_op)op), per_op[op]);
	free(mask);
}

/* Largest |fast - ref| / max(1, |ref|) on the model's output. */
static void ref_error(struct dds_engine *f, const struct dds_model *m, int batch)
{
	struct dds_engine *r = make(m, DDS_KERNELS_REF, 1, batch);
	if (!r)
		return;
	fill_input(r, m, batch);
	dds_engine_run(r, NULL, batch, NULL);
	int v = m->output + 1;
	size_t n = dds_shape_numel(&m->layers[m->output].out_shape) * (size_t)batch;
	double worst = 0, abs_err = 0, mag = 0;
	for (size_t i = 0; i < n; i++) {
		double a = dds_engine_value(f, v)[i], b = dds_engine_value(r, v)[i];
		double d = fabs(a - b) / fmax(1.0, fabs(b));
		worst = d > worst || isnan(d) ? d : worst;
		abs_err = fmax(abs_err, fabs(a - b));
		mag = fmax(mag, fabs(b));
	}
	printf("fast vs ref on the output (%zu values, max |ref| %.3g): max abs err %.3g, "
	       "max err / max(1, |ref|) %.3g\n",
	       n, mag, abs_err, worst);
	dds_engine_free(r);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s MODEL.json [threads [batch [reps [ref]]]]\n", argv[0]);
		return 2;
	}
	int threads = argc > 2 ? atoi(argv[2]) : 1, batch = argc > 3 ? atoi(argv[3]) : 1;
	int reps = argc > 4 ? atoi(argv[4]) : 10;
	struct dds_model *m = NULL;
	struct dds_err err;

	if (reps < 1 || dds_model_load(argv[1], NULL, 1, &m, &err)) {
		fprintf(stderr, "engine_bench: %s\n", reps < 1 ? "reps must be >= 1" : err.msg);
		return 1;
	}
	struct dds_engine *e = make(m, DDS_KERNELS_FAST, threads, batch);
	if (!e) {
		dds_model_free(m);
		return 1;
	}
	printf("%s: %.2f GMAC/sample, batch %d, threads %d, OpenBLAS core %s\n", m->name,
	       m->macs / 1e9, batch, threads, openblas_get_corename());
	fill_input(e, m, batch);
	time_whole(e, batch, reps);
	time_per_op(e, m, batch);
	if (argc > 5 && strcmp(argv[5], "ref") == 0) {
		dds_engine_run(e, NULL, batch, NULL);
		ref_error(e, m, batch);
	}
	dds_engine_free(e);
	dds_model_free(m);
	return 0;
}
