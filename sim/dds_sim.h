/* dds_sim.h: the DDS game simulated: N devices, one server, the paper's Fig. 5a, 5b and 6.
 *
 * A population of devices is drawn once from a seed: each gets a model from the zoo, a local
 * compute rate and an uplink bandwidth; each precomputes its latency envelope T*(r)
 * (partitioner/dds_partition.h) once, so every later decision is a lookup. The first n devices
 * of the population play the game for any n <= population (the N sweep is nested).
 *
 * Units: time in seconds, data in bytes, bandwidth in bytes/s, work in multiply-adds (the
 * paper's Table I convention), r and R in multiply-adds/s, budgets and prices in the money unit
 * of docs/game.md. Costs follow dds-model.md sections 3 and 5: a_v = f_v / c_i, w_v = f_v.
 *
 * Ownership: a struct dds_sim owns its models, envelopes and contexts; a struct dds_sim_run owns
 * its arrays (free with dds_sim_run_free). Functions that can fail return 0 or -1 and write a
 * message into err; on failure their outputs hold nothing to free.
 */
#ifndef DDS_SIM_H
#define DDS_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "dds_pricing.h"

#define DDS_SIM_MAX_MODELS 8

/* How devices choose budgets: the paper's momentum rule (Eq. 11, 12 with the sniff) or the
 * exact best response from the envelope. */
enum dds_sim_mode { DDS_SIM_MOMENTUM, DDS_SIM_EXACT };

/* The policies of Fig. 6. Baselines get r = R / n; DDS devices get r_i = x_i / p. */
enum dds_sim_policy {
	DDS_SIM_EO,           /* edge only */
	DDS_SIM_SO,           /* server only: the raw input is uploaded */
	DDS_SIM_DADS,         /* min-cut at r = R / n */
	DDS_SIM_DDS_MOMENTUM, /* the end state of the momentum dynamics */
	DDS_SIM_DDS_EXACT,    /* the end state of the exact best-response dynamics */
	DDS_SIM_POLICY__COUNT
};

struct dds_sim_cfg {
	int population;         /* devices drawn, >= 1 (the largest n a run may use) */
	uint64_t seed;          /* draws the population and every run's update order */
	int rounds;             /* server rounds per run, >= 1 */
	double capacity;        /* R, multiply-adds/s */
	double base_price;      /* p0, money per (multiply-add/s) */
	double lambda;          /* seconds of latency one unit of money is worth, > 0 */
	double flops_min, flops_max; /* local compute c_i, uniform in [min, max], MAC/s */
	double bw_min, bw_max;  /* uplink b_i, log-uniform in [min, max], bytes/s; down = up */
	double update_prob;     /* a device updates in a round with this probability, (0, 1] */
	double x0_factor;       /* start budget of the Fig. 6 runs, in units of p0 R / n */
	double tol;             /* convergence: |p - p*| <= tol p*, in (0, 1) */
	struct dds_budget_cfg budget; /* the momentum rule's parameters (agent/budget.h; lambda
				       * is overwritten by the field above) */
	const char *zoo_dir;    /* folder of the model files */
	const char *models[DDS_SIM_MAX_MODELS]; /* file names in zoo_dir (".json" appended) */
	int n_models;
};

/* Fill cfg with the documented defaults (docs/game.md, "Parameters"). */
void dds_sim_cfg_default(struct dds_sim_cfg *cfg);

/* Check cfg; returns 0, or -1 with err naming the bad field. */
int dds_sim_cfg_check(const struct dds_sim_cfg *cfg, char *err, size_t err_len);

/* One drawn device. */
struct dds_sim_device {
	int model;          /* index into cfg.models */
	double flops;       /* c_i, MAC/s */
	double up_bw;       /* b_i, bytes/s (downlink the same) */
	double t_local;     /* all-local latency, s */
	int n_pieces;       /* pieces of its envelope */
};

struct dds_sim;

/* Load the models, draw the population, build every device's envelope. Returns 0 and *out,
 * or -1 with err (a missing or bad model file, a bad cfg). */
int dds_sim_new(const struct dds_sim_cfg *cfg, struct dds_sim **out, char *err, size_t err_len);
void dds_sim_free(struct dds_sim *sim);

const struct dds_sim_cfg *dds_sim_get_cfg(const struct dds_sim *sim);
const struct dds_sim_device *dds_sim_device(const struct dds_sim *sim, int i);
/* The model's name as its file gives it ("vgg11"). */
const char *dds_sim_model_name(const struct dds_sim *sim, int model);

/* Device i's exact best-response budget at price p (0 = all-local); used by the equilibrium. */
double dds_sim_best_x(const struct dds_sim *sim, int i, double p);

/* Device i's cost T*_i(x / p) + lambda x (x = 0: all-local latency). */
double dds_sim_cost(const struct dds_sim *sim, int i, double p, double x);

/* The Nash equilibrium price of the first n devices (pricing's dds_pricing_equilibrium on the
 * exact best responses, relative tolerance 1e-9). Returns 0, or -1 with err. */
int dds_sim_equilibrium(const struct dds_sim *sim, int n, struct dds_eq_result *out, char *err,
			size_t err_len);

/* One run of the asynchronous game among the first n devices. */
struct dds_sim_run {
	int n, rounds;
	enum dds_sim_mode mode;
	double x0;            /* every device's first budget */
	int tracked;          /* the device whose view of the price is traced */
	double *seen;         /* the price the tracked device saw at each of its updates */
	int n_seen;
	double *round_price;  /* the price published at each round (rounds entries) */
	double *x;            /* every device's final budget (n entries) */
	double final_price;   /* the price from the final budgets */
	double ref_price;     /* the reference (equilibrium) price convergence is measured to */
	int iters_to_converge;  /* first tracked iteration (1-based) from which every seen price
				 * is within tol of ref_price; -1 if the last one is not */
	int rounds_to_converge; /* the same over round_price */
	int n_not_best;       /* devices whose cost at the final price exceeds their exact best
			       * response's by more than tol (relative): not at a Nash point */
	uint64_t steps, sniffs, jumps; /* budget updates, sniffs and sniffs that moved x, over
					* all devices (momentum mode; exact: steps only) */
};

/* Run the game for cfg.rounds rounds among the first n devices, all starting at budget x0.
 * Each round the server publishes p = max(p0, sum x / R) from the latest budgets, then each
 * device updates with probability update_prob. ref_price is what convergence is measured to.
 * Returns 0 and fills out, or -1 with err. */
int dds_sim_run(const struct dds_sim *sim, int n, enum dds_sim_mode mode, double x0,
		double ref_price, struct dds_sim_run *out, char *err, size_t err_len);
void dds_sim_run_free(struct dds_sim_run *run);

/* The parts of one inference's latency (s). */
struct dds_sim_latency {
	double t_edge, t_transfer, t_server, total;
};

/* Latency of device i under a policy: baselines at r = R / n, DDS at r = run->x[i] / p with
 * run's final price (run is needed only for the DDS policies). Returns 0, or -1 with err. */
int dds_sim_device_latency(const struct dds_sim *sim, int i, int n, enum dds_sim_policy pol,
			   const struct dds_sim_run *run, struct dds_sim_latency *out, char *err,
			   size_t err_len);

/* The average over the first n devices of the same. Returns 0, or -1 with err. */
int dds_sim_avg_latency(const struct dds_sim *sim, int n, enum dds_sim_policy pol,
			const struct dds_sim_run *run, struct dds_sim_latency *out, char *err,
			size_t err_len);

/* Static names: "EO", "SO", "DADS", "DDS-momentum", "DDS-exact"; "momentum", "exact". */
const char *dds_sim_policy_name(enum dds_sim_policy pol);
const char *dds_sim_mode_name(enum dds_sim_mode mode);

#endif
