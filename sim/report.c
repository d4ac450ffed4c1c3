/* report.c: dds-sim's outputs: the figures' CSVs, their gnuplot PNGs and the JSON summary. */
#include "experiment.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

bool sim_start_moderate(const struct dds_sim_run *run)
{
	double ratio = run->round_price[0] / run->ref_price;

	return ratio >= 0.1 && ratio <= 10;
}

static FILE *open_out(const char *dir, const char *name, const char *mode)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, mode);
	if (!f)
		fprintf(stderr, "dds-sim: cannot write %s: %s\n", path, strerror(errno));
	return f;
}

/* Close a file written with fprintf; -1 (with a message) if any write failed. */
static int close_out(FILE *f, const char *name)
{
	int bad = ferror(f);

	if (fclose(f) != 0 || bad) {
		fprintf(stderr, "dds-sim: writing %s failed\n", name);
		return -1;
	}
	return 0;
}

static int write_fig5a(const struct sim_opts *o, const struct sim_results *res)
{
	FILE *f = open_out(o->out_dir, "fig5a.csv", "w");
	int len = 0;

	if (!f)
		return -1;
	fprintf(f, "iteration,ne_price");
	for (int k = 0; k < o->n_starts; k++) {
		fprintf(f, ",price_start_%g", o->starts[k]);
		if (res->start_run[k].n_seen > len)
			len = res->start_run[k].n_seen;
	}
	fputc('\n', f);
	for (int t = 0; t < len; t++) {
		fprintf(f, "%d,%.9g", t + 1, res->ne.price * 1e12);
		for (int k = 0; k < o->n_starts; k++)
			if (t < res->start_run[k].n_seen)
				fprintf(f, ",%.9g", res->start_run[k].seen[t] * 1e12);
			else
				fputc(',', f);
		fputc('\n', f);
	}
	return close_out(f, "fig5a.csv");
}

static int write_fig5b(const struct dds_sim *sim, const struct sim_opts *o,
		       const struct sim_results *res)
{
	const struct dds_sim_run *run = &res->main_run[o->mode];
	FILE *f = open_out(o->out_dir, "fig5b.csv", "w");
	char err[512];

	if (!f)
		return -1;
	fprintf(f, "device,model,up_mbps,local_gflops,t_local,t_dds,t_edge,t_transfer,t_server,"
		   "r_gflops,budget\n");
	for (int i = 0; i < res->n; i++) {
		const struct dds_sim_device *d = dds_sim_device(sim, i);
		struct dds_sim_latency l;

		if (dds_sim_device_latency(sim, i, res->n, o->mode == DDS_SIM_EXACT ?
					   DDS_SIM_DDS_EXACT : DDS_SIM_DDS_MOMENTUM, run, &l, err,
					   sizeof(err)) < 0) {
			fprintf(stderr, "dds-sim: %s\n", err);
			fclose(f);
			return -1;
		}
		fprintf(f, "%d,%s,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", i,
			dds_sim_model_name(sim, d->model), d->up_bw * 8 / 1e6, d->flops / 1e9,
			d->t_local, l.total, l.t_edge, l.t_transfer, l.t_server,
			run->x[i] / run->final_price / 1e9, run->x[i]);
	}
	return close_out(f, "fig5b.csv");
}

static int write_fig6(const struct sim_opts *o, const struct sim_results *res)
{
	FILE *f = open_out(o->out_dir, "fig6.csv", "w");

	if (!f)
		return -1;
	fprintf(f, "n,ne_price,final_price_momentum,final_price_exact");
	for (int p = 0; p < DDS_SIM_POLICY__COUNT; p++) {
		const char *nm = dds_sim_policy_name((enum dds_sim_policy)p);

		fprintf(f, ",%s_total,%s_edge,%s_transfer,%s_server", nm, nm, nm, nm);
	}
	fputc('\n', f);
	for (int k = 0; k < o->n_sweep; k++) {
		const struct sim_point *pt = &res->point[k];

		fprintf(f, "%d,%.9g,%.9g,%.9g", pt->n, pt->ne_price * 1e12,
			pt->final_price[0] * 1e12, pt->final_price[1] * 1e12);
		for (int p = 0; p < DDS_SIM_POLICY__COUNT; p++)
			fprintf(f, ",%.6g,%.6g,%.6g,%.6g", pt->lat[p].total, pt->lat[p].t_edge,
				pt->lat[p].t_transfer, pt->lat[p].t_server);
		fputc('\n', f);
	}
	return close_out(f, "fig6.csv");
}

/* The gnuplot scripts read the CSVs by column name; they run in out_dir. */
static const char gp_fig5a[] =
	"set terminal pngcairo size 900,560 font ',11'\n"
	"set output 'fig5a.png'\n"
	"set termoption noenhanced\n"
	"set datafile separator ','\n"
	"set key autotitle columnhead top right\n"
	"set logscale y\n"
	"set xlabel 'iteration of the tracked device'\n"
	"set ylabel 'price seen (money per TFLOP/s)'\n"
	"set title 'Fig. 5a: the price one device sees, from four start budgets ('.mode.' rule)'\n"
	"n = system(\"head -1 fig5a.csv | tr ',' '\\n' | wc -l\") + 0\n"
	"plot for [c=3:n] 'fig5a.csv' using 1:c with linespoints pt 7 ps 0.4, \\\n"
	"     'fig5a.csv' using 1:2 with lines dt 2 lc rgb 'black' title 'equilibrium (bisection)'\n";

static const char gp_fig5b[] =
	"set terminal pngcairo size 900,800 font ',11'\n"
	"set output 'fig5b.png'\n"
	"set termoption noenhanced\n"
	"set datafile separator ','\n"
	"set logscale x\n"
	"set key top right\n"
	"models = system(\"tail -n +2 fig5b.csv | cut -d, -f2 | sort -u | tr '\\n' ' '\")\n"
	"set multiplot layout 2,1 title 'Fig. 5b: latency per device against uplink bandwidth ('.mode.' rule)'\n"
	"set ylabel 'all-local latency (s)'\n"
	"set yrange [0:*]\n"
	"plot for [m in models] 'fig5b.csv' using ((strcol(2) eq m) ? $3 : 1/0):5 "
	"with points pt 7 ps 0.8 title m\n"
	"set xlabel 'uplink (Mbit/s)'\n"
	"set ylabel 'latency with DDS (s)'\n"
	"plot for [m in models] 'fig5b.csv' using ((strcol(2) eq m) ? $3 : 1/0):6 "
	"with points pt 7 ps 0.8 title m\n"
	"unset multiplot\n";

static const char gp_fig6[] =
	"set terminal pngcairo size 1100,800 font ',10'\n"
	"set output 'fig6.png'\n"
	"set datafile separator ','\n"
	"set key top left font ',9'\n"
	"set xlabel 'devices N'\n"
	"pol = 'EO SO DADS DDS-momentum DDS-exact'\n"
	"set multiplot layout 2,2 title 'Fig. 6: average latency and its parts against N'\n"
	"do for [part in 'total server transfer edge'] {\n"
	"  set title part eq 'total' ? '(a) total' : part eq 'server' ? '(b) server T_s' : "
	"part eq 'transfer' ? '(c) network T_t' : '(d) device T_e'\n"
	"  set ylabel 'seconds'\n"
	"  plot for [p in pol] 'fig6.csv' using 'n':(column(p.'_'.part)) with linespoints "
	"pt 7 ps 0.6 title p\n"
	"}\n"
	"unset multiplot\n";

/* Write a gnuplot script into dir (with the mode of Fig. 5a/5b as a variable) and run it
 * there; a missing or failing gnuplot is a warning, not an error. */
static int plot(const char *dir, const char *script, const char *name, enum dds_sim_mode mode)
{
	char cmd[4200];
	FILE *f;
	int rc;

	if (strchr(dir, '\'')) {
		fprintf(stderr, "dds-sim: not plotting: the output folder's name has a quote\n");
		return 0;
	}
	f = open_out(dir, name, "w");
	if (!f)
		return -1;
	fprintf(f, "# %s: written by dds-sim (docs/game.md); run in this folder: gnuplot %s\n"
		"mode = '%s'\n", name, name, dds_sim_mode_name(mode));
	fputs(script, f);
	if (close_out(f, name) < 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "cd '%s' && gnuplot '%s'", dir, name);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "dds-sim: warning: gnuplot %s failed (status %d); CSVs are written\n",
			name, rc);
	return 0;
}

int sim_write_outputs(const struct dds_sim *sim, const struct sim_opts *o,
		      const struct sim_results *res)
{
	FILE *f;

	if (mkdir(o->out_dir, 0777) < 0 && errno != EEXIST) {
		fprintf(stderr, "dds-sim: cannot create %s: %s\n", o->out_dir, strerror(errno));
		return -1;
	}
	if (write_fig5a(o, res) < 0 || write_fig5b(sim, o, res) < 0 || write_fig6(o, res) < 0)
		return -1;
	f = open_out(o->out_dir, "summary.json", "w");
	if (!f || sim_write_summary(f, sim, o, res) < 0 || close_out(f, "summary.json") < 0)
		return -1;
	if (!o->plots)
		return 0;
	return plot(o->out_dir, gp_fig5a, "fig5a.gp", o->mode) < 0 ||
	       plot(o->out_dir, gp_fig5b, "fig5b.gp", o->mode) < 0 ||
	       plot(o->out_dir, gp_fig6, "fig6.gp", o->mode) < 0 ? -1 : 0;
}

/* NaN and infinities are not JSON: they become null. */
static json_t *jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *run_json(const struct dds_sim_run *r, double factor)
{
	return json_pack("{s:o, s:s, s:i, s:o, s:o, s:o, s:o, s:i, s:i, s:i, s:i, s:I, s:I, s:I}",
			 "start_factor", jnum(factor), "mode", dds_sim_mode_name(r->mode),
			 "tracked_device", r->tracked,
			 "start_price", jnum(r->n_seen ? r->seen[0] * 1e12 : NAN),
			 "final_price", jnum(r->final_price * 1e12),
			 "final_gap", jnum(fabs(r->final_price / r->ref_price - 1)),
			 "moderate", json_boolean(sim_start_moderate(r)),
			 "iterations", r->n_seen, "iterations_to_converge", r->iters_to_converge,
			 "rounds_to_converge", r->rounds_to_converge,
			 "devices_not_best_responding", r->n_not_best,
			 "budget_steps", (json_int_t)r->steps, "sniffs", (json_int_t)r->sniffs,
			 "sniff_jumps", (json_int_t)r->jumps);
}

static json_t *latency_json(const struct sim_opts *o, const struct sim_results *res)
{
	json_t *lat = json_object(), *ns = json_array(), *ne = json_array();

	for (int k = 0; k < o->n_sweep; k++) {
		json_array_append_new(ns, json_integer(res->point[k].n));
		json_array_append_new(ne, jnum(res->point[k].ne_price * 1e12));
	}
	json_object_set_new(lat, "N", ns);
	json_object_set_new(lat, "ne_price", ne);
	for (int p = 0; p < DDS_SIM_POLICY__COUNT; p++) {
		json_t *a = json_array();

		for (int k = 0; k < o->n_sweep; k++)
			json_array_append_new(a, jnum(res->point[k].lat[p].total));
		json_object_set_new(lat, dds_sim_policy_name((enum dds_sim_policy)p), a);
	}
	return lat;
}

/* The item-6 targets, from the runs of Fig. 5a and the largest N of Fig. 6. */
static json_t *targets_json(const struct sim_opts *o, const struct sim_results *res)
{
	const struct sim_point *last = &res->point[o->n_sweep - 1];
	int mod = 0, ext = 0;
	bool mod_ok = true, ext_ok = true;
	double dads = last->lat[DDS_SIM_DADS].total;

	for (int k = 0; k < o->n_starts; k++) {
		int it = res->start_run[k].iters_to_converge;
		bool moderate = sim_start_moderate(&res->start_run[k]);
		int *worst = moderate ? &mod : &ext;

		*worst = it < 0 || *worst < 0 ? -1 : (it > *worst ? it : *worst);
		if (moderate)
			mod_ok = mod_ok && it >= 0 && it <= 25;
		else
			ext_ok = ext_ok && it >= 0 && it <= 50;
	}
	return json_pack("{s:s, s:i, s:i, s:o, s:i, s:i, s:o, s:o, s:o, s:o, s:o}",
			 "convergence_mode", dds_sim_mode_name(o->mode),
			 "n", last->n, "worst_moderate_iterations", mod,
			 "moderate_within_25", json_boolean(mod_ok),
			 "worst_extreme_iterations", ext,
			 "extreme_iterations_cap", 50,
			 "extreme_within_50", json_boolean(ext_ok),
			 "dads_over_dds_momentum",
			 jnum(dads / last->lat[DDS_SIM_DDS_MOMENTUM].total),
			 "dads_over_dds_exact", jnum(dads / last->lat[DDS_SIM_DDS_EXACT].total),
			 "speedup_at_least_1_25",
			 json_boolean(dads / last->lat[DDS_SIM_DDS_MOMENTUM].total >= 1.25),
			 "so_slower_than_eo",
			 json_boolean(last->lat[DDS_SIM_SO].total > last->lat[DDS_SIM_EO].total));
}

static json_t *params_json(const struct dds_sim_cfg *c)
{
	return json_pack("{s:f, s:f, s:f, s:[f,f], s:[f,f], s:f, s:f, s:f, s:s, s:f, s:f, s:f, "
			 "s:s, s:i, s:f, s:i, s:f}",
			 "capacity_tflops", c->capacity / 1e12,
			 "base_price_per_tflops", c->base_price * 1e12, "lambda", c->lambda,
			 "local_gflops", c->flops_min / 1e9, c->flops_max / 1e9,
			 "uplink_mbps", c->bw_min * 8 / 1e6, c->bw_max * 8 / 1e6,
			 "update_prob", c->update_prob, "gamma", c->budget.gamma,
			 "eta", c->budget.eta, "scale", dds_budget_scale_name(c->budget.scale),
			 "x_min", c->budget.x_min, "x_max", c->budget.x_max,
			 "max_rel_step", c->budget.max_rel_step,
			 "sniff", c->budget.sniff_offloading ? "general" : "paper",
			 "sniff_period", (int)c->budget.sniff_period,
			 "sniff_price_move", c->budget.sniff_price_move,
			 "sniff_points", (int)c->budget.sniff_points, "tol", c->tol);
}

int sim_write_summary(FILE *f, const struct dds_sim *sim, const struct sim_opts *o,
		      const struct sim_results *res)
{
	const struct dds_sim_run *main_run = &res->main_run[o->mode];
	const struct dds_sim_cfg *c = dds_sim_get_cfg(sim);
	json_t *root, *starts = json_array();
	int rc;

	for (int k = 0; k < o->n_starts; k++)
		json_array_append_new(starts, run_json(&res->start_run[k], o->starts[k]));
	root = json_pack("{s:i, s:I, s:i, s:s, s:s, s:o, s:b, s:o, s:o, s:i, s:o, s:o, s:o, "
			 "s:o, s:o, s:o, s:o}",
			 "devices", res->n, "seed", (json_int_t)c->seed, "rounds", c->rounds,
			 "mode", dds_sim_mode_name(o->mode), "price_unit", "money per TFLOP/s",
			 "ne_price", jnum(res->ne.price * 1e12), "ne_at_base", res->ne.at_base,
			 "final_price", jnum(main_run->final_price * 1e12),
			 "final_gap", jnum(fabs(main_run->final_price / res->ne.price - 1)),
			 "iterations_to_converge", main_run->iters_to_converge,
			 "other_mode", run_json(&res->main_run[!o->mode], c->x0_factor),
			 "starts", starts, "latency", latency_json(o, res),
			 "targets", targets_json(o, res), "params", params_json(c),
			 "elapsed_s", jnum(res->elapsed_s),
			 "main_run", run_json(main_run, c->x0_factor));
	if (!root) {
		fprintf(stderr, "dds-sim: building the summary failed\n");
		return -1;
	}
	rc = json_dumpf(root, f, JSON_INDENT(2) | JSON_REAL_PRECISION(8));
	fputc('\n', f);
	json_decref(root);
	return rc;
}
