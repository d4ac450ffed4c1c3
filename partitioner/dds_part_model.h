/* dds_part_model.h: the partitioner's input made from a model graph (dds_model.h), with the
 * paper's linear cost model or a measured per-layer profile file (docs/partitioner.md). */
#ifndef DDS_PART_MODEL_H
#define DDS_PART_MODEL_H

#include "dds_model.h"
#include "dds_partition.h"

/* The paper's linear model: a_v = beta * f_v / device_flops, w_v = f_v (so T_s = W / r with r in
 * FLOP/s), d_v = the layer's output bytes. f_v is the layer's FLOPs, or its multiply-adds
 * (ptflops convention, the paper's Table I) when use_macs. */
struct dds_part_linear {
	double device_flops; /* c, FLOP/s, > 0 */
	double beta;         /* > 0; 1 in the paper's experiments */
	double up_bw;        /* bytes/s, > 0 */
	double down_bw;      /* bytes/s, > 0 */
	bool use_macs;
};

/* An input that owns its arrays. */
struct dds_part_model_input {
	struct dds_part_input in;
	int *in_off, *in_val;
	double *a, *w, *d;
};

/* Build the input for model m under profile p. Returns 0, or -1 with err (*out untouched).
 * Free with dds_part_model_input_free(). */
int dds_part_graph_from_model(const struct dds_model *m, const struct dds_part_linear *p,
			      struct dds_part_model_input *out, struct dds_part_err *err);

/* Replace the local times (and the server work where given) by a measured profile, a text file
 * with one line per layer: "NAME LOCAL_SECONDS [SERVER_WORK]" ('#' starts a comment). Every layer
 * must appear exactly once. Returns 0, or -1 with err naming the file, the line and the problem;
 * on failure mi is unchanged. */
int dds_part_profile_load(const struct dds_model *m, const char *path,
			  struct dds_part_model_input *mi, struct dds_part_err *err);

void dds_part_model_input_free(struct dds_part_model_input *mi);

#endif
