/* exec.c: the executor behind the dataplane's boundary: loaded models, split checks, the tail run on the CPU engine. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_log.h>

#include "srv_int.h"

struct srv_exec {
	struct dds_pricing *market;
	struct dds_model *models[SRV_MAX_MODELS];
	int n_models;
	const struct srv_cfg *cfg;
};

/* One rx queue's engines (one per model) and a layer mask to run a tail with. */
struct exec_ctx {
	const struct srv_exec *x;
	struct dds_engine *eng[SRV_MAX_MODELS];
	uint8_t *mask;
};

static int exec_find(const struct srv_exec *x, uint64_t hash)
{
	for (int i = 0; i < x->n_models; i++)
		if (x->models[i]->hash == hash)
			return i;
	return -1;
}

static int exec_check(void *arg, uint64_t hash, const struct dds_proto_tmsg *tm)
{
	const struct srv_exec *x = arg;
	int i = exec_find(x, hash);

	if (i < 0)
		return DDS_DROP_UNKNOWN_MODEL;
	return tm ? dds_proto_check_split(x->models[i], hash, tm) : DDS_PROTO_OK;
}

/* Mark the layers to run: those the output needs that were not sent (walking back from the
 * output, stopping at sent values). dds_proto_check_split() has made sure this is a tail. */
static void exec_tail_mask(const struct dds_model *m, const struct dds_proto_tmsg *tm,
			   uint8_t *mask)
{
	memset(mask, 0, (size_t)m->n_layers);
	mask[m->output] = 1;
	for (int l = m->n_layers - 1; l >= 0; l--) {
		if (!mask[l])
			continue;
		for (int k = 0; k < tm->n_tensors; k++)
			if (tm->t[k].value_id == l + 1)
				mask[l] = 0;
		for (int j = 0; mask[l] && j < m->layers[l].n_in; j++)
			if (m->layers[l].in[j] > 0)
				mask[m->layers[l].in[j] - 1] = 1;
	}
}

static int exec_run(void *vctx, const struct dds_dp_request *rq, struct dds_dp_result *res)
{
	struct exec_ctx *c = vctx;
	int i = exec_find(c->x, rq->model_hash);
	const struct dds_model *m = c->x->models[i];
	const uint8_t *src = rq->payload;
	const struct dds_shape *os;
	struct dds_err err;

	for (int k = 0; k < rq->tm->n_tensors; k++) {
		int v = rq->tm->t[k].value_id;
		size_t bytes = dds_shape_numel(dds_model_value_shape(m, v)) * sizeof(float);

		memcpy(dds_engine_value(c->eng[i], v), src, bytes);
		src += bytes;
	}
	exec_tail_mask(m, rq->tm, c->mask);
	if (dds_engine_run(c->eng[i], c->mask, 1, &err)) {
		RTE_LOG(ERR, USER1, "request %lu of device %u: %s\n", (unsigned long)rq->request_id,
			rq->device_id, err.msg);
		return DDS_DROP_BAD_SPLIT;
	}
	os = dds_model_value_shape(m, m->output + 1);
	memset(&res->t, 0, sizeof(res->t));
	res->t.value_id = (uint16_t)(m->output + 1);
	res->t.dtype = DDS_DTYPE_F32;
	res->t.ndim = (uint8_t)os->ndim;
	for (int d = 0; d < os->ndim; d++)
		res->t.dim[d] = (uint32_t)os->d[d];
	res->data = dds_engine_value(c->eng[i], m->output + 1);
	res->len = (uint32_t)(dds_shape_numel(os) * sizeof(float));
	return DDS_PROTO_OK;
}

static void exec_ctx_free(void *vctx)
{
	struct exec_ctx *c = vctx;

	if (!c)
		return;
	for (int i = 0; i < SRV_MAX_MODELS; i++)
		dds_engine_free(c->eng[i]);
	free(c->mask);
	free(c);
}

static void *exec_ctx_new(void *arg, unsigned queue)
{
	const struct srv_exec *x = arg;
	struct dds_engine_opts o = {.max_batch = 1, .threads = x->cfg->engine_threads,
				    .kernels = x->cfg->kernels};
	struct exec_ctx *c = calloc(1, sizeof(*c));
	int max_layers = 1;
	struct dds_err err;

	if (!c)
		return NULL;
	c->x = x;
	for (int i = 0; i < x->n_models; i++) {
		c->eng[i] = dds_engine_create(x->models[i], &o, &err);
		if (!c->eng[i]) {
			RTE_LOG(ERR, USER1, "queue %u: engine for %s: %s\n", queue,
				x->models[i]->name, err.msg);
			exec_ctx_free(c);
			return NULL;
		}
		if (x->models[i]->n_layers > max_layers)
			max_layers = x->models[i]->n_layers;
	}
	c->mask = malloc((size_t)max_layers);
	if (!c->mask) {
		exec_ctx_free(c);
		return NULL;
	}
	return c;
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
		if (exec_find(x, x->models[i]->hash) != i) {
			snprintf(err, n, "models[%d]: %s is loaded twice (same graph file contents)",
				 i, mc->graph);
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
	for (int i = 0; i < x->n_models; i++)
		dds_model_free(x->models[i]);
	dds_pricing_free(x->market);
	free(x);
}

void srv_exec_ops(struct srv_exec *x, struct dds_dp_ops *ops)
{
	*ops = (struct dds_dp_ops){
		.ctx_new = exec_ctx_new,
		.ctx_free = exec_ctx_free,
		.execute = exec_run,
		.check = exec_check,
		.price = exec_price,
		.budget = exec_budget,
		.poll = exec_poll,
		.arg = x,
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

const struct dds_pricing *srv_exec_market(const struct srv_exec *x)
{
	return x->market;
}
