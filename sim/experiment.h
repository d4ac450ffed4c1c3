/* experiment.h: dds-sim's experiment (Fig. 5a, 5b, 6 and the targets) and its writers. */
#ifndef DDS_SIM_EXPERIMENT_H
#define DDS_SIM_EXPERIMENT_H

#include <stdbool.h>
#include <stdio.h>

#include "dds_sim.h"

#define SIM_MAX_STARTS 8
#define SIM_MAX_SWEEP 64

struct sim_opts {
	struct dds_sim_cfg cfg;
	enum dds_sim_mode mode;       /* the mode of Fig. 5a, 5b and the headline convergence */
	double starts[SIM_MAX_STARTS]; /* Fig. 5a start budgets, in units of p0 R / n */
	int n_starts;
	int sweep[SIM_MAX_SWEEP];     /* Fig. 6's device counts */
	int n_sweep;
	const char *out_dir;          /* NULL: write no files */
	bool json, plots, quiet;
};

/* One point of Fig. 6. */
struct sim_point {
	int n;
	double ne_price;
	double final_price[2];        /* per mode */
	struct dds_sim_latency lat[DDS_SIM_POLICY__COUNT];
};

struct sim_results {
	int n;                         /* devices of Fig. 5a / 5b */
	struct dds_eq_result ne;
	struct dds_sim_run start_run[SIM_MAX_STARTS]; /* Fig. 5a, in opts.mode */
	struct dds_sim_run main_run[2]; /* per mode, from cfg.x0_factor: Fig. 5b, the summary */
	struct sim_point point[SIM_MAX_SWEEP];
	double elapsed_s;
};

/* A run's start is "moderate" when its first price is within a factor 10 of the equilibrium
 * price it is measured to, else "extreme". */
bool sim_start_moderate(const struct dds_sim_run *run);

/* Writers: fig5a/5b/6 CSVs, their gnuplot PNGs, summary.json. Return 0, or -1 with a
 * message on stderr. sim_write_summary writes to any stream. */
int sim_write_outputs(const struct dds_sim *sim, const struct sim_opts *o,
		      const struct sim_results *res);
int sim_write_summary(FILE *f, const struct dds_sim *sim, const struct sim_opts *o,
		      const struct sim_results *res);

#endif
