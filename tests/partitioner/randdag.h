/* randdag.h: seeded random DAGs with unstructured per-layer costs, shared by the partitioner's
 * tests and its networkx dump tool. */
#ifndef DDS_TEST_RANDDAG_H
#define DDS_TEST_RANDDAG_H

#include <stdint.h>

#include "dds_partition.h"

#define RANDDAG_MAX 16
#define RANDDAG_MAX_IN 3

struct randdag {
	struct dds_part_input in;
	int in_off[RANDDAG_MAX + 1];
	int in_val[RANDDAG_MAX * RANDDAG_MAX_IN];
	double a[RANDDAG_MAX], w[RANDDAG_MAX], d[RANDDAG_MAX];
	double r; /* an allocation where server and local times are comparable */
};

/* A splitmix64 stream. */
uint64_t randdag_next(uint64_t *s);

/* Uniform in [0, 1). */
double randdag_unit(uint64_t *s);

/* Log-uniform in [lo, hi). */
double randdag_log(uint64_t *s, double lo, double hi);

/* Fill g with a DAG of 1..max_n layers (max_n <= RANDDAG_MAX) from stream s: layers with one to
 * three inputs (the raw input or earlier layers, so many values have several consumers), and
 * local times, server work and tensor sizes drawn independently (some zero), unrelated to any
 * FLOP count. */
void randdag_make(struct randdag *g, uint64_t *s, int max_n);

#endif
