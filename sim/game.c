/* game.c: the asynchronous game: rounds of server pricing and device budget updates. */
#include "sim_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *dds_sim_mode_name(enum dds_sim_mode mode)
{
	return mode == DDS_SIM_EXACT ? "exact" : "momentum";
}

static double price_of(const struct dds_sim_cfg *c, const double *x, int n)
{
	double s = 0;

	for (int i = 0; i < n; i++)
		s += x[i];
	return fmax(c->base_price, s / c->capacity);
}

/* One device's update at price p: the paper's momentum step on the server work of the split it
 * uses at r = x / p (an envelope lookup), or the exact best response. */
static int update(const struct sim_dev *d, struct dds_budget *b, enum dds_sim_mode mode,
		  double p)
{
	enum dds_budget_status s;

	if (mode == DDS_SIM_EXACT) {
		struct dds_budget_choice ch;

		s = dds_budget_step_exact(b, p, &d->view, &ch);
	} else {
		struct dds_budget_curve curve = dds_budget_pieces_curve(&d->view);
		const struct dds_part_piece *pc = dds_part_envelope_lookup(d->env, b->x / p);

		s = dds_budget_step(b, p, pc->w, &curve);
	}
	return s == DDS_BUDGET_OK ? 0 : -1;
}

/* First 1-based index from which every v[k] is within tol of ref; -1 if the last one is not. */
static int settle_index(const double *v, int len, double ref, double tol)
{
	int k = len;

	while (k > 0 && fabs(v[k - 1] - ref) <= tol * ref)
		k--;
	return k == len ? -1 : k + 1;
}

static int run_alloc(struct dds_sim_run *out, int n, int rounds)
{
	out->seen = calloc((size_t)rounds, sizeof(double));
	out->round_price = calloc((size_t)rounds, sizeof(double));
	out->x = calloc((size_t)n, sizeof(double));
	return out->seen && out->round_price && out->x ? 0 : -1;
}

/* The rounds themselves; b holds every device's budget state. */
static int play(const struct dds_sim *sim, struct dds_budget *b, struct dds_sim_run *out,
		uint64_t *rng, char *err, size_t err_len)
{
	const struct dds_sim_cfg *c = &sim->cfg;

	for (int t = 0; t < out->rounds; t++) {
		double p = price_of(c, out->x, out->n);

		out->round_price[t] = p;
		for (int i = 0; i < out->n; i++) {
			if (dds_rand_unit(rng) >= c->update_prob)
				continue;
			if (update(&sim->dev[i], &b[i], out->mode, p) < 0)
				return dds_fail(err, err_len, "device %d: budget update failed at "
						"price %g", i, p);
			if (i == out->tracked)
				out->seen[out->n_seen++] = p;
		}
		/* The server sees the budgets only at the next round's close. */
		for (int i = 0; i < out->n; i++)
			out->x[i] = b[i].x;
	}
	out->final_price = price_of(c, out->x, out->n);
	return 0;
}

/* Devices whose end cost at the final price is more than tol above their best response's. */
static int count_not_best(const struct dds_sim *sim, const struct dds_sim_run *r)
{
	int k = 0;

	for (int i = 0; i < r->n; i++) {
		double best = dds_sim_cost(sim, i, r->final_price,
					   dds_sim_best_x(sim, i, r->final_price));

		if (dds_sim_cost(sim, i, r->final_price, r->x[i]) > best * (1 + sim->cfg.tol))
			k++;
	}
	return k;
}

int dds_sim_run(const struct dds_sim *sim, int n, enum dds_sim_mode mode, double x0,
		double ref_price, struct dds_sim_run *out, char *err, size_t err_len)
{
	const struct dds_sim_cfg *c = &sim->cfg;
	struct dds_budget *b;
	uint64_t rng = c->seed ^ 0xD1B54A32D192ED03ull ^ (uint64_t)n;
	int rc;

	memset(out, 0, sizeof(*out));
	if (n < 1 || n > c->population)
		return dds_fail(err, err_len, "run: n = %d outside 1..%d", n, c->population);
	if (!(x0 > 0 && isfinite(x0)) || !(ref_price > 0 && isfinite(ref_price)))
		return dds_fail(err, err_len, "run: start budget and reference price must be > 0");
	b = calloc((size_t)n, sizeof(*b));
	if (!b || run_alloc(out, n, c->rounds) < 0) {
		free(b);
		dds_sim_run_free(out);
		return dds_fail(err, err_len, "out of memory");
	}
	out->n = n;
	out->rounds = c->rounds;
	out->mode = mode;
	out->x0 = x0;
	out->ref_price = ref_price;
	out->tracked = (int)(dds_rand_next(&rng) % (uint64_t)n);
	for (int i = 0; i < n; i++) {
		dds_budget_init(&b[i], &c->budget, x0); /* cfg checked in dds_sim_new */
		out->x[i] = b[i].x;
	}
	rc = play(sim, b, out, &rng, err, err_len);
	for (int i = 0; i < n; i++) {
		out->steps += b[i].steps;
		out->sniffs += b[i].sniffs;
		out->jumps += b[i].jumps;
	}
	free(b);
	if (rc < 0) {
		dds_sim_run_free(out);
		return -1;
	}
	out->iters_to_converge = settle_index(out->seen, out->n_seen, ref_price, c->tol);
	out->rounds_to_converge = settle_index(out->round_price, out->rounds, ref_price, c->tol);
	out->n_not_best = count_not_best(sim, out);
	return 0;
}

void dds_sim_run_free(struct dds_sim_run *run)
{
	free(run->seen);
	free(run->round_price);
	free(run->x);
	run->seen = run->round_price = run->x = NULL;
	run->n_seen = 0;
}
