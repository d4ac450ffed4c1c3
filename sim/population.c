/* population.c: the simulator's devices: drawn from a seed, each with its envelope built once. */
#include "sim_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dds_sim_cfg_default(struct dds_sim_cfg *cfg)
{
	*cfg = (struct dds_sim_cfg){
		.population = 100,
		.seed = 1,
		.rounds = 200,
		.capacity = 1.2e12,
		.base_price = 1e-12,
		.lambda = 0.1,
		.flops_min = 10e9,
		.flops_max = 15e9,
		.bw_min = 1.1e6 / 8,
		.bw_max = 100e6 / 8,
		.update_prob = 0.5,
		.x0_factor = 1.0,
		.tol = 0.01,
		.zoo_dir = "zoo",
		.models = { "vgg11", "resnet34", "resnet50", "vit_b_16" },
		.n_models = 4,
	};
	dds_budget_cfg_default(&cfg->budget); /* the agent's defaults, with the game's cap */
	cfg->budget.x_max = 100;
	cfg->budget.lambda = cfg->lambda;
}

static int pos(double v)
{
	return isfinite(v) && v > 0;
}

int dds_sim_cfg_check(const struct dds_sim_cfg *c, char *err, size_t err_len)
{
	const char *bad = NULL;

	if (c->population < 1 || c->population > 100000)
		bad = "devices must be in 1..100000";
	else if (c->rounds < 1 || c->rounds > 10000000)
		bad = "rounds must be in 1..10000000";
	else if (!pos(c->capacity))
		bad = "capacity must be > 0";
	else if (!pos(c->base_price))
		bad = "base price must be > 0";
	else if (!pos(c->lambda))
		bad = "lambda must be > 0";
	else if (!pos(c->flops_min) || !pos(c->flops_max) || c->flops_max < c->flops_min)
		bad = "local compute range must satisfy 0 < min <= max";
	else if (!pos(c->bw_min) || !pos(c->bw_max) || c->bw_max < c->bw_min)
		bad = "bandwidth range must satisfy 0 < min <= max";
	else if (!(c->update_prob > 0 && c->update_prob <= 1))
		bad = "update probability must be in (0, 1]";
	else if (!pos(c->x0_factor))
		bad = "start budget factor must be > 0";
	else if (!(c->tol > 0 && c->tol < 1))
		bad = "tolerance must be in (0, 1)";
	else if (c->n_models < 1 || c->n_models > DDS_SIM_MAX_MODELS)
		bad = "between 1 and 8 models";
	else if (!c->zoo_dir)
		bad = "no zoo folder";
	if (!bad) {
		struct dds_budget probe;
		struct dds_budget_cfg b = c->budget;

		b.lambda = c->lambda;
		if (dds_budget_init(&probe, &b, b.x_min) != DDS_BUDGET_OK)
			bad = "budget rule parameters out of range (gamma in [0,1), eta > 0, "
			      "0 < x_min < x_max, max-rel-step >= 0, sniff period >= 1, "
			      "sniff points >= 2, sniff move > 0)";
	}
	if (bad)
		return dds_fail(err, err_len, "%s", bad);
	return 0;
}

static int load_models(struct dds_sim *sim, char *err, size_t err_len)
{
	for (int k = 0; k < sim->cfg.n_models; k++) {
		char path[1024];
		struct dds_err e;

		snprintf(path, sizeof(path), "%s/%s.json", sim->cfg.zoo_dir, sim->cfg.models[k]);
		if (dds_model_load_graph(path, &sim->models[k], &e) < 0)
			return dds_fail(err, err_len, "loading a model: %s", e.msg);
	}
	return 0;
}

/* The envelope as agent/budget wants it; the all-local latency from the edge-only split. */
static int copy_pieces(struct sim_dev *d, char *err, size_t err_len)
{
	int n = dds_part_envelope_count(d->env);
	struct dds_part_result eo;
	struct dds_part_err pe;

	d->pieces = calloc((size_t)n, sizeof(*d->pieces));
	if (!d->pieces)
		return dds_fail(err, err_len, "out of memory");
	for (int k = 0; k < n; k++) {
		const struct dds_part_piece *pc = dds_part_envelope_piece(d->env, k);

		d->pieces[k] = (struct dds_budget_piece){ .a = pc->a, .w = pc->w,
							  .r_lo = pc->r_lo, .r_hi = pc->r_hi };
	}
	if (dds_part_edge_only(d->ctx, 1, &eo, &pe) < 0)
		return dds_fail(err, err_len, "edge-only latency: %s", pe.msg);
	d->view = (struct dds_budget_pieces){ .piece = d->pieces, .n = n, .t_local = eo.total };
	d->pub.t_local = eo.total;
	d->pub.n_pieces = n;
	return 0;
}

/* Draw device i's profile and build its graph, context and envelope. */
static int make_device(struct dds_sim *sim, struct sim_dev *d, uint64_t *rng, char *err,
		       size_t err_len)
{
	const struct dds_sim_cfg *c = &sim->cfg;
	struct dds_part_linear lin;
	struct dds_part_err pe;

	d->pub.model = (int)(dds_rand_next(rng) % (uint64_t)c->n_models);
	d->pub.flops = c->flops_min + (c->flops_max - c->flops_min) * dds_rand_unit(rng);
	d->pub.up_bw = c->bw_min * pow(c->bw_max / c->bw_min, dds_rand_unit(rng));
	lin = (struct dds_part_linear){ .device_flops = d->pub.flops, .beta = 1,
					.up_bw = d->pub.up_bw, .down_bw = d->pub.up_bw,
					.use_macs = true };
	if (dds_part_graph_from_model(sim->models[d->pub.model], &lin, &d->mi, &pe) < 0 ||
	    dds_part_ctx_new(&d->mi.in, &d->ctx, &pe) < 0 ||
	    dds_part_envelope_new(d->ctx, &d->env, &pe) < 0)
		return dds_fail(err, err_len, "device envelope (%s): %s",
				c->models[d->pub.model], pe.msg);
	return copy_pieces(d, err, err_len);
}

int dds_sim_new(const struct dds_sim_cfg *cfg, struct dds_sim **out, char *err, size_t err_len)
{
	struct dds_sim *sim;
	uint64_t rng;

	if (dds_sim_cfg_check(cfg, err, err_len) < 0)
		return -1;
	sim = calloc(1, sizeof(*sim));
	if (!sim)
		return dds_fail(err, err_len, "out of memory");
	sim->cfg = *cfg;
	sim->cfg.budget.lambda = cfg->lambda;
	rng = cfg->seed;
	sim->dev = calloc((size_t)cfg->population, sizeof(*sim->dev));
	if (!sim->dev) {
		dds_fail(err, err_len, "out of memory");
		goto err;
	}
	if (load_models(sim, err, err_len) < 0)
		goto err;
	for (int i = 0; i < cfg->population; i++)
		if (make_device(sim, &sim->dev[i], &rng, err, err_len) < 0)
			goto err;
	*out = sim;
	return 0;
err:
	dds_sim_free(sim);
	return -1;
}

void dds_sim_free(struct dds_sim *sim)
{
	if (!sim)
		return;
	for (int i = 0; sim->dev && i < sim->cfg.population; i++) {
		struct sim_dev *d = &sim->dev[i];

		free(d->pieces);
		dds_part_envelope_free(d->env);
		dds_part_ctx_free(d->ctx);
		if (d->mi.a)
			dds_part_model_input_free(&d->mi);
	}
	free(sim->dev);
	for (int k = 0; k < DDS_SIM_MAX_MODELS; k++)
		if (sim->models[k])
			dds_model_free(sim->models[k]);
	free(sim);
}

const struct dds_sim_cfg *dds_sim_get_cfg(const struct dds_sim *sim)
{
	return &sim->cfg;
}

const struct dds_sim_device *dds_sim_device(const struct dds_sim *sim, int i)
{
	return &sim->dev[i].pub;
}

const char *dds_sim_model_name(const struct dds_sim *sim, int model)
{
	return sim->cfg.models[model];
}

double dds_sim_best_x(const struct dds_sim *sim, int i, double p)
{
	struct dds_budget_choice ch;

	if (dds_budget_best_response(&sim->dev[i].view, p, sim->cfg.lambda,
				     sim->cfg.budget.x_min, &ch) != DDS_BUDGET_OK)
		return NAN;
	return ch.x;
}

double dds_sim_cost(const struct dds_sim *sim, int i, double p, double x)
{
	struct dds_budget_curve curve = dds_budget_pieces_curve(&sim->dev[i].view);

	return dds_budget_cost(&curve, p, sim->cfg.lambda, x);
}

struct eq_ctx {
	const struct dds_sim *sim;
	int i;
};

static double eq_best_x(void *ctx, double p)
{
	const struct eq_ctx *e = ctx;

	return dds_sim_best_x(e->sim, e->i, p);
}

int dds_sim_equilibrium(const struct dds_sim *sim, int n, struct dds_eq_result *out, char *err,
			size_t err_len)
{
	struct dds_eq_player *pl;
	struct eq_ctx *ctx;
	int rc;

	if (n < 1 || n > sim->cfg.population)
		return dds_fail(err, err_len, "equilibrium: n = %d outside 1..%d", n,
				sim->cfg.population);
	pl = calloc((size_t)n, sizeof(*pl));
	ctx = calloc((size_t)n, sizeof(*ctx));
	if (!pl || !ctx) {
		free(pl);
		free(ctx);
		return dds_fail(err, err_len, "out of memory");
	}
	for (int i = 0; i < n; i++) {
		ctx[i] = (struct eq_ctx){ .sim = sim, .i = i };
		pl[i] = (struct dds_eq_player){ .best_x = eq_best_x, .ctx = &ctx[i] };
	}
	rc = dds_pricing_equilibrium(pl, (size_t)n, sim->cfg.capacity, sim->cfg.base_price, 1e-9,
				     out, err, err_len);
	free(pl);
	free(ctx);
	return rc;
}
