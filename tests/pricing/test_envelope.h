/* test_envelope.h: random latency envelopes for the budget and equilibrium tests, built the
 * slow, obvious way: a device has partitions k with T_k(r) = A_k + W_k / r, plus all-local. */
#ifndef DDS_PRICING_TEST_ENVELOPE_H
#define DDS_PRICING_TEST_ENVELOPE_H

#include "budget.h"
#include "test_util.h"

#include <math.h>
#include <stdlib.h>

#define TE_MAX_LINES 8

struct te_device {
	int n;                                   /* offloading partitions */
	double a[TE_MAX_LINES], w[TE_MAX_LINES]; /* their lines */
	double t_local;
	struct dds_budget_piece piece[2 * TE_MAX_LINES + 2];
	struct dds_budget_pieces env;            /* the lower envelope, built from the lines */
};

/* The optimal latency at r > 0 straight from the lines (r = 0: all-local). */
static inline double te_tstar(const struct te_device *d, double r, double *w_used)
{
	double t = d->t_local;

	*w_used = 0;
	for (int k = 0; r > 0 && k < d->n; k++)
		if (d->a[k] + d->w[k] / r < t) {
			t = d->a[k] + d->w[k] / r;
			*w_used = d->w[k];
		}
	return t;
}

/* Cost(x) from the lines: x = 0 is all-local and free. */
static inline double te_cost(const struct te_device *d, double p, double lambda, double x)
{
	double w;

	return x > 0 ? te_tstar(d, x / p, &w) + lambda * x : d->t_local;
}

static int te_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Build the envelope's pieces: cut u = 1/r at every pairwise crossing of the lines, find the
 * lowest line in each interval, merge neighbours with the same line. */
static inline void te_build(struct te_device *d)
{
	double cut[TE_MAX_LINES * (TE_MAX_LINES + 1) / 2 + 1];
	double aa[TE_MAX_LINES + 1], ww[TE_MAX_LINES + 1];
	int nc = 0, np = 0, prev = -2, nl = d->n + 1;

	for (int k = 0; k < d->n; k++) {
		aa[k] = d->a[k];
		ww[k] = d->w[k];
	}
	aa[d->n] = d->t_local;
	ww[d->n] = 0;
	for (int i = 0; i < nl; i++)
		for (int j = i + 1; j < nl; j++)
			if (ww[i] != ww[j] && (aa[j] - aa[i]) / (ww[i] - ww[j]) > 0)
				cut[nc++] = (aa[j] - aa[i]) / (ww[i] - ww[j]);
	qsort(cut, (size_t)nc, sizeof(double), te_cmp);
	for (int s = 0; s <= nc; s++) {
		double lo = s ? cut[s - 1] : 0, hi = s < nc ? cut[s] : INFINITY;
		double u = s == nc ? (nc ? 2 * lo + 1 : 1) : (lo + hi) / 2;
		int best = 0;

		for (int k = 1; k < nl; k++)
			if (aa[k] + ww[k] * u < aa[best] + ww[best] * u)
				best = k;
		if (best == prev) { /* same line: extend the piece towards larger u (smaller r) */
			d->piece[np - 1].r_lo = isinf(hi) ? 0 : 1 / hi;
			continue;
		}
		d->piece[np++] = (struct dds_budget_piece){ .a = aa[best], .w = ww[best],
							    .r_lo = isinf(hi) ? 0 : 1 / hi,
							    .r_hi = lo > 0 ? 1 / lo : INFINITY };
		prev = best;
	}
	d->env = (struct dds_budget_pieces){ .piece = d->piece, .n = np, .t_local = d->t_local };
}

/* A random device of the paper's scale: all-local 0.2 .. 1 s, partitions with 1e8 .. 1e10
 * FLOP of server work and a local + transfer part below the all-local time. */
static inline void te_random(struct te_device *d, uint64_t *seed, int max_lines)
{
	d->n = 1 + (int)(dds_rand_unit(seed) * max_lines);
	d->t_local = 0.2 + 0.8 * dds_rand_unit(seed);
	for (int k = 0; k < d->n; k++) {
		d->w[k] = tu_logu(seed, 1e8, 1e10);
		d->a[k] = d->t_local * (0.02 + 0.9 * dds_rand_unit(seed));
	}
	te_build(d);
}

#endif
