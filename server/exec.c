/* exec.c: the glue behind the dataplane's boundary: loaded models, split checks, the market, requests to the worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dds_backend.h"
#include "srv_int.h"

struct srv_exec {
	struct dds_pricing *market;
	struct dds_model *models[SRV_MAX_MODELS];
	uint8_t *meet[SRV_MAX_MODELS]; /* models[].merge_at's tail (owned); NULL = no merging */
	int n_models;
	const struct srv_cfg *cfg;
	struct srv_worker *worker; /* set by srv_exec_ops() */
};

int srv_exec_find(const struct srv_exec *x, uint64_t hash)
{
	for (int i = 0; i < x->n_models; i++)
		if (x->models[i]->hash == hash)
			return i;
	return -1;
}

static int exec_check(void *arg, uint64_t hash, const struct dds_proto_tmsg *tm)
{
	const struct srv_exec *x = arg;
	int i = srv_exec_find(x, hash);

	if (i < 0)
		return DDS_DROP_UNKNOWN_MODEL;
	return tm ? dds_proto_check_split(x->models[i], hash, tm) : DDS_PROTO_OK;
}

/* The published price of the market's last closed round (p0 before the first). */
static void exec_price(void *arg, double *p, double *p0)
{
	const struct srv_exec *x = arg;
	struct dds_price_view v;

	dds_pricing_read_price(x->market, &v);
	*p = v.price;
	*p0 = x->cfg->pricing.base_price;
}

static uint64_t exec_round(void *arg)
{
	const struct srv_exec *x = arg;
	struct dds_price_view v;

	dds_pricing_read_price(x->market, &v);
	return v.round;
}

/* A served request's budget joins the open round; refusals are counted by the market. */
static void exec_budget(void *arg, uint32_t device_id, double x)
{
	struct srv_exec *e = arg;

	dds_pricing_submit(e->market, device_id, x);
}

/* The market's single writer: closes a round when its time has come. */
static void exec_poll(void *arg, uint64_t now_ns)
{
	struct srv_exec *e = arg;
	struct dds_pricing_round r;

	dds_pricing_poll(e->market, now_ns, &r);
}

static int exec_submit(void *arg, struct dds_dp_job *job)
{
	struct srv_exec *e = arg;

	return srv_worker_submit(e->worker, job);
}

/* scheduler.inline: the worker's pass, on queue 0's lcore. */
static void exec_step(void *arg)
{
	struct srv_exec *e = arg;

	srv_worker_step(e->worker);
}

/* Is value v read by a layer of the tail? */
static bool exec_tail_reads(const struct dds_model *m, const uint8_t *tail, int v)
{
	for (int k = 0; k < m->n_layers; k++)
		for (int j = 0; tail[k] && j < m->layers[k].n_in; j++)
			if (m->layers[k].in[j] == v)
				return true;
	return false;
}

/* models[i].merge_at as the meet tail: every name a layer, together a cut (the tail after them
 * reads nothing else from the head), each of them read by that tail. -1 with err naming the key. */
static int exec_meet(struct srv_exec *x, int i, char *err, size_t n)
{
	const struct srv_model_cfg *mc = &x->cfg->models[i];
	const struct dds_model *m = x->models[i];
	int vals[SRV_MAX_MERGE];
	struct dds_err e;

	for (int j = 0; j < mc->n_merge; j++) {
		int li = dds_model_find(m, mc->merge_at[j]);
		if (li < 0)
			return snprintf(err, n, "models[%d].merge_at: model %s has no layer '%s'", i,
					m->name, mc->merge_at[j]), -1;
		vals[j] = li + 1;
	}
	x->meet[i] = malloc((size_t)m->n_layers);
	if (!x->meet[i])
		return snprintf(err, n, "models[%d].merge_at: out of memory", i), -1;
	if (dds_plan_tail_mask(m, vals, mc->n_merge, x->meet[i], &e))
		return snprintf(err, n, "models[%d].merge_at: %s", i, e.msg), -1;
	for (int j = 0; j < mc->n_merge; j++)
		if (!exec_tail_reads(m, x->meet[i], vals[j]))
			return snprintf(err, n, "models[%d].merge_at: '%s' is not read by the layers "
					"after the cut (the cut is the others; leave it out)", i,
					mc->merge_at[j]), -1;
	return 0;
}

struct srv_exec *srv_exec_new(const struct srv_cfg *c, char *err, size_t n)
{
	struct srv_exec *x = calloc(1, sizeof(*x));
	struct dds_err e;

	if (!x) {
		snprintf(err, n, "out of memory");
		return NULL;
	}
	x->cfg = c;
	x->market = dds_pricing_create(&c->pricing, err, n);
	if (!x->market) {
		srv_exec_free(x);
		return NULL;
	}
	for (int i = 0; i < c->n_models; i++) {
		const struct srv_model_cfg *mc = &c->models[i];

		if (dds_model_load(mc->graph, mc->weights[0] ? mc->weights : NULL, mc->seed,
				   &x->models[i], &e)) {
			snprintf(err, n, "models[%d]: %s", i, e.msg);
			srv_exec_free(x);
			return NULL;
		}
		x->n_models = i + 1;
		if (srv_exec_find(x, x->models[i]->hash) != i) {
			snprintf(err, n, "models[%d]: %s is loaded twice (same graph file contents)",
				 i, mc->graph);
			srv_exec_free(x);
			return NULL;
		}
		if (mc->n_merge && exec_meet(x, i, err, n)) {
			srv_exec_free(x);
			return NULL;
		}
	}
	return x;
}

void srv_exec_free(struct srv_exec *x)
{
	if (!x)
		return;
	for (int i = 0; i < x->n_models; i++) {
		dds_model_free(x->models[i]);
		free(x->meet[i]);
	}
	dds_pricing_free(x->market);
	free(x);
}

void srv_exec_ops(struct srv_exec *x, struct srv_worker *w, struct dds_dp_ops *ops)
{
	x->worker = w;
	/* Requests are checked here and go to the worker; price, rounds, budgets: the market. */
	*ops = (struct dds_dp_ops){
		.check = exec_check, .submit = exec_submit,
		.price = exec_price, .round = exec_round, .budget = exec_budget, .poll = exec_poll,
		.step = x->cfg->worker_inline ? exec_step : NULL, .arg = x,
	};
}

int srv_exec_n_models(const struct srv_exec *x)
{
	return x->n_models;
}

const struct dds_model *srv_exec_model(const struct srv_exec *x, int i)
{
	return x->models[i];
}

const uint8_t *srv_exec_meet(const struct srv_exec *x, int i)
{
	return x->meet[i];
}

struct dds_pricing *srv_exec_market(const struct srv_exec *x)
{
	return x->market;
}
