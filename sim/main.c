/* main.c: dds-sim: reproduces the paper's Fig. 5a, 5b and 6 and prints the targets (docs/game.md). */
#include "experiment.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char usage[] =
	"usage: dds-sim [options]\n"
	"  --devices N        devices in the game (Fig. 5a, 5b; largest N of Fig. 6) [100]\n"
	"  --seed S           draws the devices and the update order [1]\n"
	"  --rounds R         server rounds per run [200]\n"
	"  --mode M           momentum | exact: budget rule of Fig. 5a/5b [momentum]\n"
	"  --out DIR          write fig5a/fig5b/fig6 .csv and .png and summary.json to DIR\n"
	"  --json             print the summary (JSON) on stdout\n"
	"  --no-plots         CSV only (no gnuplot)\n"
	"  --quiet            no progress lines on stderr\n"
	"  --zoo DIR          folder of the model files [zoo]\n"
	"  --models LIST      comma-separated model names [vgg11,resnet34,resnet50,vit_b_16]\n"
	"  --capacity T       server capacity R, TFLOP/s (multiply-adds) [1.2]\n"
	"  --base-price P     base price p0, money per TFLOP/s [1]\n"
	"  --lambda L         seconds of latency one unit of money is worth [0.1]\n"
	"  --flops MIN:MAX    local compute range, GFLOP/s (uniform) [10:15]\n"
	"  --bw MIN:MAX       uplink range, Mbit/s (log-uniform; downlink = uplink) [1.1:100]\n"
	"  --update-prob Q    chance that a device updates in a round [0.5]\n"
	"  --gamma G          momentum decay (Eq. 12) [0.2]\n"
	"  --eta E            learning rate (Eq. 12) [1]\n"
	"  --scale S          step of Eq. 12: fixed (eta g, the paper's), relative\n"
	"                     (eta x g / lambda) or log-newton (Newton in ln x) [log-newton]\n"
	"  --x-min X          smallest budget [1e-4]\n"
	"  --x-max X          largest budget [100]\n"
	"  --max-rel-step S   trust region: x changes by a factor <= 1 + S a step; 0 = none [0]\n"
	"  --sniff M          paper (every K all-local steps, must beat all-local) or general\n"
	"                     (also while offloading, and on price moves) [general]\n"
	"  --sniff-period K   sniff every K steps (paper: K all-local steps) [10]\n"
	"  --sniff-move V     general sniff: also when the price moved by more than V [0.05]\n"
	"  --sniff-points P   grid points of a sniff [32]\n"
	"  --starts LIST      Fig. 5a start budgets in units of p0 R / N (the start\n"
	"                     price in units of p0) [1,30,300,10000]\n"
	"  --x0 F             start budget of the Fig. 6 runs, units of p0 R / N [1]\n"
	"  --sweep LIST       device counts of Fig. 6 [5,10,20,...,100 up to --devices]\n"
	"  --tol T            convergence band around the equilibrium price [0.01]\n"
	"  --help\n";

enum {
	OPT_SEED = 256, OPT_ROUNDS, OPT_MODE, OPT_OUT, OPT_JSON, OPT_NOPLOTS, OPT_QUIET, OPT_ZOO,
	OPT_MODELS, OPT_CAPACITY, OPT_BASE, OPT_LAMBDA, OPT_FLOPS, OPT_BW, OPT_UPD, OPT_GAMMA,
	OPT_ETA, OPT_XMIN, OPT_XMAX, OPT_MAXREL, OPT_SNIFF, OPT_STARTS, OPT_X0, OPT_SWEEP, OPT_TOL,
	OPT_DEVICES, OPT_HELP, OPT_SCALE, OPT_SNIFF_MODE, OPT_SNIFF_MOVE, OPT_SNIFF_POINTS
};

static const struct option long_opts[] = {
	{ "devices", required_argument, 0, OPT_DEVICES },
	{ "seed", required_argument, 0, OPT_SEED },
	{ "rounds", required_argument, 0, OPT_ROUNDS },
	{ "mode", required_argument, 0, OPT_MODE },
	{ "out", required_argument, 0, OPT_OUT },
	{ "json", no_argument, 0, OPT_JSON },
	{ "no-plots", no_argument, 0, OPT_NOPLOTS },
	{ "quiet", no_argument, 0, OPT_QUIET },
	{ "zoo", required_argument, 0, OPT_ZOO },
	{ "models", required_argument, 0, OPT_MODELS },
	{ "capacity", required_argument, 0, OPT_CAPACITY },
	{ "base-price", required_argument, 0, OPT_BASE },
	{ "lambda", required_argument, 0, OPT_LAMBDA },
	{ "flops", required_argument, 0, OPT_FLOPS },
	{ "bw", required_argument, 0, OPT_BW },
	{ "update-prob", required_argument, 0, OPT_UPD },
	{ "gamma", required_argument, 0, OPT_GAMMA },
	{ "eta", required_argument, 0, OPT_ETA },
	{ "x-min", required_argument, 0, OPT_XMIN },
	{ "x-max", required_argument, 0, OPT_XMAX },
	{ "max-rel-step", required_argument, 0, OPT_MAXREL },
	{ "sniff-period", required_argument, 0, OPT_SNIFF },
	{ "scale", required_argument, 0, OPT_SCALE },
	{ "sniff", required_argument, 0, OPT_SNIFF_MODE },
	{ "sniff-move", required_argument, 0, OPT_SNIFF_MOVE },
	{ "sniff-points", required_argument, 0, OPT_SNIFF_POINTS },
	{ "starts", required_argument, 0, OPT_STARTS },
	{ "x0", required_argument, 0, OPT_X0 },
	{ "sweep", required_argument, 0, OPT_SWEEP },
	{ "tol", required_argument, 0, OPT_TOL },
	{ "help", no_argument, 0, OPT_HELP },
	{ 0, 0, 0, 0 },
};

static int bad_arg(const char *flag, const char *val, const char *why)
{
	fprintf(stderr, "dds-sim: --%s '%s': %s (see --help)\n", flag, val, why);
	return -1;
}

/* A finite number with nothing after it. */
static int parse_num(const char *flag, const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(*out))
		return bad_arg(flag, s, "not a finite number");
	return 0;
}

static int parse_int(const char *flag, const char *s, long lo, long hi, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	if (end == s || *end || errno || *out < lo || *out > hi) {
		char why[64];

		snprintf(why, sizeof(why), "not an integer in %ld..%ld", lo, hi);
		return bad_arg(flag, s, why);
	}
	return 0;
}

static int parse_range(const char *flag, const char *s, double scale, double *lo, double *hi)
{
	char *end;

	errno = 0;
	*lo = strtod(s, &end);
	if (end == s || *end != ':')
		return bad_arg(flag, s, "expected MIN:MAX");
	if (parse_num(flag, end + 1, hi) < 0)
		return -1;
	if (!(*lo > 0 && *hi >= *lo) || !isfinite(*lo))
		return bad_arg(flag, s, "need 0 < MIN <= MAX");
	*lo *= scale;
	*hi *= scale;
	return 0;
}

/* A comma-separated list of positive numbers, at most cap. */
static int parse_list(const char *flag, const char *s, double *v, int cap, int *n)
{
	const char *p = s;

	for (*n = 0; *p; (*n)++) {
		char *end;

		if (*n == cap)
			return bad_arg(flag, s, "too many values");
		errno = 0;
		v[*n] = strtod(p, &end);
		if (end == p || (*end && *end != ',') || errno || !(v[*n] > 0) || !isfinite(v[*n]))
			return bad_arg(flag, s, "expected positive numbers separated by commas");
		p = *end ? end + 1 : end;
	}
	return *n ? 0 : bad_arg(flag, s, "empty list");
}

static int parse_models(const char *s, struct dds_sim_cfg *cfg, char *buf, size_t len)
{
	char *save, *tok;

	snprintf(buf, len, "%s", s);
	cfg->n_models = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (cfg->n_models == DDS_SIM_MAX_MODELS)
			return bad_arg("models", s, "at most 8 models");
		cfg->models[cfg->n_models++] = tok;
	}
	return cfg->n_models ? 0 : bad_arg("models", s, "empty list");
}

static void default_sweep(struct sim_opts *o)
{
	o->n_sweep = 0;
	for (int n = 5; n <= o->cfg.population && o->n_sweep < SIM_MAX_SWEEP;
	     n = n == 5 ? 10 : n + 10)
		o->sweep[o->n_sweep++] = n;
	if (o->n_sweep == 0 || o->sweep[o->n_sweep - 1] != o->cfg.population)
		o->sweep[o->n_sweep++] = o->cfg.population;
}

static int parse_sweep(const char *s, struct sim_opts *o)
{
	double v[SIM_MAX_SWEEP];

	if (parse_list("sweep", s, v, SIM_MAX_SWEEP, &o->n_sweep) < 0)
		return -1;
	for (int k = 0; k < o->n_sweep; k++) {
		if (v[k] != floor(v[k]) || v[k] > 100000)
			return bad_arg("sweep", s, "device counts must be integers");
		o->sweep[k] = (int)v[k];
	}
	return 0;
}

/* One option (other than the lists, handled by the caller). */
static int parse_opt(int c, const char *a, struct sim_opts *o)
{
	struct dds_sim_cfg *g = &o->cfg;
	double v = 0;
	long l;
	const char *name = NULL;

	for (const struct option *lo = long_opts; lo->name; lo++)
		if (lo->val == c)
			name = lo->name;
	switch (c) {
	case OPT_DEVICES:
		return parse_int(name, a, 1, 100000, &l) < 0 ? -1 : (g->population = (int)l, 0);
	case OPT_SEED:
		return parse_int(name, a, 0, 0x7fffffffL, &l) < 0 ? -1 : (g->seed = (uint64_t)l, 0);
	case OPT_ROUNDS:
		return parse_int(name, a, 1, 10000000, &l) < 0 ? -1 : (g->rounds = (int)l, 0);
	case OPT_SNIFF:
		return parse_int(name, a, 1, 1000000, &l) < 0 ? -1 :
		       (g->budget.sniff_period = (uint32_t)l, 0);
	case OPT_SNIFF_POINTS:
		return parse_int(name, a, 2, 1000000, &l) < 0 ? -1 :
		       (g->budget.sniff_points = (uint32_t)l, 0);
	case OPT_SCALE:
		for (int k = DDS_BUDGET_SCALE_FIXED; k <= DDS_BUDGET_SCALE_LOG_NEWTON; k++)
			if (!strcmp(a, dds_budget_scale_name((enum dds_budget_scale)k)))
				return g->budget.scale = (enum dds_budget_scale)k, 0;
		return bad_arg(name, a, "expected fixed, relative or log-newton");
	case OPT_SNIFF_MODE:
		if (strcmp(a, "paper") && strcmp(a, "general"))
			return bad_arg(name, a, "expected paper or general");
		g->budget.sniff_offloading = !strcmp(a, "general");
		return 0;
	case OPT_MODE:
		if (strcmp(a, "momentum") && strcmp(a, "exact"))
			return bad_arg(name, a, "expected momentum or exact");
		o->mode = strcmp(a, "exact") ? DDS_SIM_MOMENTUM : DDS_SIM_EXACT;
		return 0;
	case OPT_FLOPS:
		return parse_range(name, a, 1e9, &g->flops_min, &g->flops_max);
	case OPT_BW:
		return parse_range(name, a, 1e6 / 8, &g->bw_min, &g->bw_max);
	}
	if (parse_num(name, a, &v) < 0)
		return -1;
	switch (c) {
	case OPT_CAPACITY: g->capacity = v * 1e12; break;
	case OPT_BASE: g->base_price = v * 1e-12; break;
	case OPT_LAMBDA: g->lambda = v; break;
	case OPT_UPD: g->update_prob = v; break;
	case OPT_GAMMA: g->budget.gamma = v; break;
	case OPT_ETA: g->budget.eta = v; break;
	case OPT_XMIN: g->budget.x_min = v; break;
	case OPT_XMAX: g->budget.x_max = v; break;
	case OPT_MAXREL: g->budget.max_rel_step = v; break;
	case OPT_SNIFF_MOVE: g->budget.sniff_price_move = v; break;
	case OPT_X0: g->x0_factor = v; break;
	case OPT_TOL: g->tol = v; break;
	default: return -1;
	}
	return 0;
}

/* Returns 0 to run, 1 for --help, -1 on a bad command line. */
static int parse_args(int argc, char **argv, struct sim_opts *o, char *models_buf, size_t len)
{
	const char *sweep = NULL;
	char err[256];
	int c;

	*o = (struct sim_opts){ .mode = DDS_SIM_MOMENTUM, .plots = true,
				.starts = { 1, 30, 300, 10000 }, .n_starts = 4 };
	dds_sim_cfg_default(&o->cfg);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
		int rc = 0;

		if (c == '?') {
			fprintf(stderr, "dds-sim: unknown option or missing value: '%s' (see --help)\n",
				argv[optind - 1]);
			return -1;
		}
		switch (c) {
		case OPT_HELP: fputs(usage, stdout); return 1;
		case OPT_OUT: o->out_dir = optarg; break;
		case OPT_JSON: o->json = true; break;
		case OPT_NOPLOTS: o->plots = false; break;
		case OPT_QUIET: o->quiet = true; break;
		case OPT_ZOO: o->cfg.zoo_dir = optarg; break;
		case OPT_MODELS: rc = parse_models(optarg, &o->cfg, models_buf, len); break;
		case OPT_STARTS:
			rc = parse_list("starts", optarg, o->starts, SIM_MAX_STARTS, &o->n_starts);
			break;
		case OPT_SWEEP: sweep = optarg; break;
		default: rc = parse_opt(c, optarg, o); break;
		}
		if (rc < 0)
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "dds-sim: unexpected argument '%s' (see --help)\n", argv[optind]);
		return -1;
	}
	if (sweep ? parse_sweep(sweep, o) < 0 : (default_sweep(o), 0))
		return -1;
	if (dds_sim_cfg_check(&o->cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "dds-sim: %s (see --help)\n", err);
		return -1;
	}
	for (int k = 0; k < o->n_sweep; k++)
		if (o->sweep[k] < 1 || o->sweep[k] > o->cfg.population) {
			fprintf(stderr, "dds-sim: --sweep: %d is outside 1..--devices (%d)\n",
				o->sweep[k], o->cfg.population);
			return -1;
		}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress(const struct sim_opts *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void progress(const struct sim_opts *o, const char *fmt, ...)
{
	va_list ap;

	if (o->quiet)
		return;
	va_start(ap, fmt);
	fputs("dds-sim: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* One point of Fig. 6: the equilibrium, both dynamics, every policy's average latency. */
static int sweep_point(const struct dds_sim *sim, int n, struct sim_point *pt, char *err,
		       size_t len)
{
	const struct dds_sim_cfg *c = dds_sim_get_cfg(sim);
	struct dds_eq_result ne;
	struct dds_sim_run run[2] = { { 0 }, { 0 } };
	int rc = -1;

	pt->n = n;
	if (dds_sim_equilibrium(sim, n, &ne, err, len) < 0)
		return -1;
	pt->ne_price = ne.price;
	for (int m = 0; m < 2; m++) {
		if (dds_sim_run(sim, n, (enum dds_sim_mode)m,
				c->x0_factor * c->base_price * c->capacity / n, ne.price, &run[m],
				err, len) < 0)
			goto out;
		pt->final_price[m] = run[m].final_price;
	}
	for (int p = 0; p < DDS_SIM_POLICY__COUNT; p++) {
		const struct dds_sim_run *r = p == DDS_SIM_DDS_EXACT ? &run[1] : &run[0];

		if (dds_sim_avg_latency(sim, n, (enum dds_sim_policy)p, r, &pt->lat[p], err,
					len) < 0)
			goto out;
	}
	rc = 0;
out:
	dds_sim_run_free(&run[0]);
	dds_sim_run_free(&run[1]);
	return rc;
}

static int experiment(const struct dds_sim *sim, const struct sim_opts *o,
		      struct sim_results *res, char *err, size_t len)
{
	const struct dds_sim_cfg *c = &o->cfg;
	int n = c->population;
	double unit = c->base_price * c->capacity / n;

	res->n = n;
	if (dds_sim_equilibrium(sim, n, &res->ne, err, len) < 0)
		return -1;
	progress(o, "equilibrium price at N = %d: %.6g (%d best-response rounds)", n,
		 res->ne.price, res->ne.evaluations);
	for (int k = 0; k < o->n_starts; k++) {
		struct dds_sim_run *r = &res->start_run[k];

		if (dds_sim_run(sim, n, o->mode, o->starts[k] * unit, res->ne.price, r, err,
				len) < 0)
			return -1;
		progress(o, "start %gx: final price %.6g, converged at iteration %d", o->starts[k],
			 r->final_price, r->iters_to_converge);
	}
	for (int m = 0; m < 2; m++)
		if (dds_sim_run(sim, n, (enum dds_sim_mode)m, c->x0_factor * unit, res->ne.price,
				&res->main_run[m], err, len) < 0)
			return -1;
	for (int k = 0; k < o->n_sweep; k++) {
		if (sweep_point(sim, o->sweep[k], &res->point[k], err, len) < 0)
			return -1;
		progress(o, "N = %d: DADS %.4f s, DDS %.4f s", o->sweep[k],
			 res->point[k].lat[DDS_SIM_DADS].total,
			 res->point[k].lat[DDS_SIM_DDS_MOMENTUM].total);
	}
	return 0;
}

static void results_free(struct sim_results *res)
{
	for (int k = 0; k < SIM_MAX_STARTS; k++)
		dds_sim_run_free(&res->start_run[k]);
	dds_sim_run_free(&res->main_run[0]);
	dds_sim_run_free(&res->main_run[1]);
}

int main(int argc, char **argv)
{
	static struct sim_opts o;
	static struct sim_results res;
	char models_buf[512], err[512];
	struct dds_sim *sim = NULL;
	double t0 = now_s();
	int rc;

	rc = parse_args(argc, argv, &o, models_buf, sizeof(models_buf));
	if (rc)
		return rc > 0 ? 0 : 2;
	progress(&o, "drawing %d devices and their envelopes (seed %llu)", o.cfg.population,
		 (unsigned long long)o.cfg.seed);
	if (dds_sim_new(&o.cfg, &sim, err, sizeof(err)) < 0 ||
	    experiment(sim, &o, &res, err, sizeof(err)) < 0) {
		fprintf(stderr, "dds-sim: %s\n", err);
		rc = 1;
		goto out;
	}
	res.elapsed_s = now_s() - t0;
	if ((o.out_dir && sim_write_outputs(sim, &o, &res) < 0) ||
	    (o.json && sim_write_summary(stdout, sim, &o, &res) < 0))
		rc = 1;
	progress(&o, "done in %.1f s", now_s() - t0);
out:
	results_free(&res);
	dds_sim_free(sim);
	return rc;
}
