/* split_pairs.h: random pairs of nested splits of a model (tail a contains tail m), for the tests of merging splits on every backend.
 *
 * Shared by tests/scheduler/test_merge.c (CPU backend) and tests/gpu/test_backend_gpu.c (CUDA).
 * A split is drawn as a head: random layers closed under predecessors, never the output; the
 * values it sends are its cut (the raw input and head values that a layer outside it reads), and
 * its tail is what dds_plan_tail_mask() makes of them, as the node does.
 */
#ifndef DDS_TEST_SPLIT_PAIRS_H
#define DDS_TEST_SPLIT_PAIRS_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "dds_backend.h"
#include "dds_util.h"

/* Close head (one byte per layer) under predecessors: inputs have smaller ids, so one pass
 * from the last layer down reaches every ancestor. */
static inline void dds_test_close_head(const struct dds_model *m, uint8_t *head)
{
	for (int k = m->n_layers - 1; k >= 0; k--)
		for (int j = 0; head[k] && j < m->layers[k].n_in; j++)
			if (m->layers[k].in[j] > 0)
				head[m->layers[k].in[j] - 1] = 1;
}

/* The values a head sends: the raw input and head values read by a layer outside the head,
 * ascending. Returns how many. */
static inline int dds_test_cut(const struct dds_model *m, const uint8_t *head, int *vals)
{
	int n = 0;

	for (int v = 0; v <= m->n_layers; v++) {
		bool crosses = false;
		for (int k = 0; k < m->n_layers && !crosses; k++)
			for (int j = 0; !head[k] && j < m->layers[k].n_in; j++)
				crosses |= m->layers[k].in[j] == v;
		if (crosses && (v == 0 || head[v - 1]))
			vals[n++] = v;
	}
	return n;
}

/* A random head inside `within` (NULL: anywhere): each layer of it picked with probability
 * 1/4, then closed. False when the closure holds the output (draw again). */
static inline bool dds_test_random_head(const struct dds_model *m, const uint8_t *within,
					uint64_t *seed, uint8_t *head)
{
	for (int k = 0; k < m->n_layers; k++)
		head[k] = (!within || within[k]) && dds_rand_unit(seed) < 0.25;
	dds_test_close_head(m, head);
	return !head[m->output];
}

/* A pair of splits, head_a inside head_m, as tails (m->n_layers bytes each) and the values
 * each sends (vals_*, n_*; arrays of n_layers + 1). Draws until both heads are valid. */
static inline void dds_test_random_pair(const struct dds_model *m, uint64_t *seed,
					uint8_t *tail_a, int *vals_a, int *n_a, uint8_t *tail_m,
					int *vals_m, int *n_m)
{
	uint8_t *head_m = malloc((size_t)m->n_layers), *head_a = malloc((size_t)m->n_layers);
	struct dds_err err;

	ck_assert(head_m && head_a);
	while (!dds_test_random_head(m, NULL, seed, head_m))
		;
	dds_test_random_head(m, head_m, seed, head_a); /* inside a valid head: valid too */
	*n_m = dds_test_cut(m, head_m, vals_m);
	*n_a = dds_test_cut(m, head_a, vals_a);
	ck_assert_msg(dds_plan_tail_mask(m, vals_m, *n_m, tail_m, &err) == 0, "%s", err.msg);
	ck_assert_msg(dds_plan_tail_mask(m, vals_a, *n_a, tail_a, &err) == 0, "%s", err.msg);
	free(head_m);
	free(head_a);
}

#endif
