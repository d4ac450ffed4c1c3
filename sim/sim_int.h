/* sim_int.h: the simulator's internals shared by its files (not part of dds_sim.h). */
#ifndef DDS_SIM_INT_H
#define DDS_SIM_INT_H

#include "dds_model.h"
#include "dds_part_model.h"
#include "dds_sim.h"
#include "dds_util.h"

/* What the simulator keeps per device beyond the public struct: its latency graph (for the
 * baselines) and its envelope, twice: the partitioner's pieces and agent/budget's copy. */
struct sim_dev {
	struct dds_sim_device pub;
	struct dds_part_model_input mi;
	struct dds_part_ctx *ctx;
	struct dds_part_envelope *env;
	struct dds_budget_piece *pieces;
	struct dds_budget_pieces view; /* points into pieces */
};

struct dds_sim {
	struct dds_sim_cfg cfg;
	struct dds_model *models[DDS_SIM_MAX_MODELS];
	struct sim_dev *dev; /* cfg.population entries */
};


#endif
