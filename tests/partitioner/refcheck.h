/* refcheck.h: an independent reference for the partitioner's tests: the latency of a split
 * straight from dds-model.md section 3, and the best split by enumerating every valid one. */
#ifndef DDS_TEST_REFCHECK_H
#define DDS_TEST_REFCHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "dds_partition.h"

/* Relative tolerance of every floating-point comparison in these tests. */
#define REF_TOL 1e-9

bool ref_close(double x, double y);

/* Whether no input of a local layer is produced on the server. */
bool ref_valid(const struct dds_part_input *in, const uint8_t *local);

/* T of a valid split at r (r = INFINITY allowed); up (n+1 bytes) receives which values are
 * uploaded. */
double ref_latency(const struct dds_part_input *in, const uint8_t *local, double r, uint8_t *up);

/* The minimum latency over every valid split, by depth-first enumeration in layer order (a layer
 * may be local only when all its inputs are). best_local (n bytes) receives an optimal split.
 * Returns the number of valid splits, or -1 when there are more than limit. */
long ref_best(const struct dds_part_input *in, double r, long limit, double *best,
	      uint8_t *best_local);

/* Check (with Check's asserts) that res is a valid split whose independent latency at r, cut
 * list and parts match. */
void ref_check_result(const struct dds_part_input *in, const struct dds_part_result *res,
		      double r);

/* Check the envelope: sorted pieces whose splits have the claimed lines, and the piece at r has
 * the latency of a fresh min-cut at r on a log grid over [r_min, r_max] and beside every
 * breakpoint. */
void ref_check_envelope(const struct dds_part_input *in, struct dds_part_ctx *ctx,
			const struct dds_part_envelope *env, double r_min, double r_max);

#endif
