/* fleet.c: dds-loadgen's simulated devices: models, seeded profiles, decisions (agent/dds_device.h) and the datagrams they send. */
#define _GNU_SOURCE
#include "lg_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Smooth weighted round robin: device i gets the model whose credit is highest, so every
 * prefix of the fleet follows the weights as closely as whole devices allow. */
static void assign_models(const struct lg_opts *o, struct lg_fleet *f)
{
	double credit[LG_MAX_MODELS] = {0}, sum = 0;

	for (int k = 0; k < f->n_models; k++)
		sum += o->mix[k];
	for (int i = 0; i < f->n; i++) {
		int best = 0;

		for (int k = 0; k < f->n_models; k++) {
			credit[k] += o->mix[k];
			if (credit[k] > credit[best])
				best = k;
		}
		credit[best] -= sum;
		f->dev[i].model = best;
	}
}

/* Request ids are unique per device for the node's lifetime, not just this run's: the node
 * keeps a replay window per device, so each run starts at the wall clock in microseconds
 * (above any id an earlier run could have reached unless it sent over 10^6 requests/s). */
static uint64_t first_request_id(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static double log_uniform(double lo, double hi, uint64_t *rng)
{
	return lo * pow(hi / lo, dds_rand_unit(rng));
}

/* The profile of every device, drawn in device order from --seed as sim/population.c draws
 * it: FLOP/s uniform in [flops_min, flops_max], uplink log-uniform, downlink = uplink unless
 * a downlink range is given (then drawn log-uniform too). Local layer times: flops_v / FLOP/s. */
static int draw_profiles(const struct lg_opts *o, struct lg_fleet *f, char *err, size_t err_len)
{
	uint64_t rng = o->seed, first_id = first_request_id();

	for (int i = 0; i < f->n; i++) {
		struct lg_dev *d = &f->dev[i];
		const struct dds_model *m = f->model[d->model];

		d->id = o->ids[i];
		memcpy(d->key, o->keys[i], DDS_PROTO_KEY_LEN);
		d->next_id = first_id;
		d->flops = o->flops_min + (o->flops_max - o->flops_min) * dds_rand_unit(&rng);
		d->up_bw = log_uniform(o->up_min, o->up_max, &rng);
		d->down_bw = o->down_min > 0 ? log_uniform(o->down_min, o->down_max, &rng) : d->up_bw;
		d->layer_s = calloc((unsigned)m->n_layers, sizeof(double));
		if (!d->layer_s)
			return dds_fail(err, err_len, "out of memory");
		for (int l = 0; l < m->n_layers; l++)
			d->layer_s[l] = m->layers[l].flops / d->flops;
	}
	return 0;
}

static int cmp_id(const void *a, const void *b, void *ctx)
{
	const struct lg_fleet *f = ctx;
	uint32_t x = f->dev[*(const uint32_t *)a].id, y = f->dev[*(const uint32_t *)b].id;

	return x < y ? -1 : x > y;
}

static int index_ids(struct lg_fleet *f, char *err, size_t err_len)
{
	f->by_id = calloc((unsigned)f->n, sizeof(*f->by_id));
	if (!f->by_id)
		return dds_fail(err, err_len, "out of memory");
	for (int i = 0; i < f->n; i++)
		f->by_id[i] = (uint32_t)i;
	qsort_r(f->by_id, (size_t)f->n, sizeof(*f->by_id), cmp_id, f);
	for (int i = 1; i < f->n; i++)
		if (f->dev[f->by_id[i]].id == f->dev[f->by_id[i - 1]].id)
			return dds_fail(err, err_len, "device id %u appears twice",
				       f->dev[f->by_id[i]].id);
	return 0;
}

int lg_fleet_new(const struct lg_opts *o, struct lg_fleet *f, char *err, size_t err_len)
{
	memset(f, 0, sizeof(*f));
	f->o = o;
	f->payload_rng = o->seed ^ 0x5eedf1a7ull;
	for (int k = 0; k < o->n_models; k++) {
		struct dds_err e;

		if (dds_model_load_graph(o->models[k], &f->model[k], &e)) {
			dds_fail(err, err_len, "--models: %s", e.msg);
			goto fail;
		}
		f->model_name[k] = f->model[k]->name;
		f->n_models++;
	}
	f->n = o->n_devices;
	f->dev = calloc((unsigned)f->n, sizeof(*f->dev));
	if (!f->dev) {
		dds_fail(err, err_len, "out of memory");
		goto fail;
	}
	assign_models(o, f);
	if (draw_profiles(o, f, err, err_len) || index_ids(f, err, err_len))
		goto fail;
	return 0;
fail:
	lg_fleet_free(f);
	return -1;
}

void lg_fleet_free(struct lg_fleet *f)
{
	for (int i = 0; f->dev && i < f->n; i++) {
		free(f->dev[i].layer_s);
		dds_device_free(f->dev[i].dd);
	}
	free(f->dev);
	free(f->by_id);
	free(f->payload);
	for (int k = 0; k < f->n_models; k++)
		dds_model_free(f->model[k]);
	memset(f, 0, sizeof(*f));
}

int lg_fleet_find(const struct lg_fleet *f, uint32_t id)
{
	int lo = 0, hi = f->n - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		uint32_t v = f->dev[f->by_id[mid]].id;

		if (v == id)
			return (int)f->by_id[mid];
		if (v < id)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

const void *lg_fleet_payload(struct lg_fleet *f, size_t len)
{
	size_t have = f->payload_len / sizeof(float), want = (len + 3) / sizeof(float);
	float *p;

	if (want <= have)
		return f->payload;
	p = realloc(f->payload, want * sizeof(float));
	if (!p)
		return NULL;
	for (size_t j = have; j < want; j++)
		p[j] = (float)(dds_rand_unit(&f->payload_rng) * 2.0 - 1.0);
	f->payload = p;
	f->payload_len = want * sizeof(float);
	return p;
}

int lg_dev_attach(struct lg_fleet *f, struct lg_dev *d, double price, int work_kind,
		  const double *work, int n_work, char *err, size_t err_len)
{
	const struct lg_opts *o = f->o;
	struct dds_device_profile p = {.layer_seconds = d->layer_s, .device_flops = d->flops,
				       .up_bw = d->up_bw, .down_bw = d->down_bw,
				       .work_kind = work_kind, .work = work, .n_work = n_work};
	struct dds_budget_cfg bc;
	char why[256];

	dds_budget_cfg_default(&bc);
	bc.lambda = o->lambda;
	bc.x_max = o->x_max;
	dds_device_free(d->dd);
	d->dd = NULL;
	if (dds_device_new(f->model[d->model], &p, o->rule, &bc, o->x0, &d->dd, why, sizeof(why)))
		return dds_fail(err, err_len, "device %u (%s): %s", d->id, f->model_name[d->model],
			       why);
	d->price = price;
	return 0;
}

/* The REQUEST descriptor of the cut `values`, with budget x. */
static void fill_tmsg(const struct dds_model *m, const int *values, int n, double x,
		      struct dds_proto_tmsg *tm)
{
	uint32_t total = 0;

	memset(tm, 0, sizeof(*tm));
	tm->value = x;
	tm->n_tensors = (uint16_t)n;
	for (int i = 0; i < n; i++) {
		const struct dds_shape *s = dds_model_value_shape(m, values[i]);

		tm->t[i].value_id = (uint16_t)values[i];
		tm->t[i].dtype = DDS_DTYPE_F32;
		tm->t[i].ndim = (uint8_t)s->ndim;
		for (int k = 0; k < s->ndim; k++)
			tm->t[i].dim[k] = (uint32_t)s->d[k];
		total += (uint32_t)(dds_shape_numel(s) * sizeof(float));
	}
	tm->payload_len = total;
}

int lg_dev_plan(struct lg_fleet *f, struct lg_dev *d, struct lg_req *r, uint64_t *te_ns,
		bool *all_local, char *err, size_t err_len)
{
	const struct dds_model *m = f->model[d->model];
	struct dds_device_plan plan;
	char why[256];
	double te = 0;

	if (!d->dd || dds_device_decide(d->dd, d->price, &plan, why, sizeof(why)))
		return dds_fail(err, err_len, "device %u: %s", d->id, d->dd ? why : "not registered");
	*all_local = plan.all_local;
	if (plan.all_local) {
		*te_ns = (uint64_t)llround(dds_device_t_local(d->dd) * 1e9);
		return 0;
	}
	for (int l = 0; l < m->n_layers; l++)
		te += plan.local[l] ? d->layer_s[l] : 0;
	*te_ns = (uint64_t)llround(te * 1e9);
	r->x = plan.x;
	r->n_values = plan.n_values;
	memcpy(r->values, plan.values, (size_t)plan.n_values * sizeof(int));
	fill_tmsg(m, plan.values, plan.n_values, plan.x, &r->tm);
	if (!lg_fleet_payload(f, r->tm.payload_len))
		return dds_fail(err, err_len, "out of memory for a %u-byte payload", r->tm.payload_len);
	return 0;
}

size_t lg_dev_register(struct lg_dev *d, unsigned mtu, uint64_t model_hash, uint8_t *out,
		       size_t cap)
{
	struct dds_proto_hdr h = {.type = DDS_MSG_REGISTER, .device_id = d->id,
				  .request_id = ++d->next_id, .model_hash = model_hash};

	d->reg_id = h.request_id;
	return dds_proto_encode_register(&h, mtu, d->key, out, cap);
}

size_t lg_dev_frag(const struct lg_fleet *f, const struct lg_dev *d, const struct lg_req *r,
		   unsigned i, uint8_t *out, size_t cap)
{
	struct dds_proto_hdr h = {.type = DDS_MSG_REQUEST, .device_id = d->id,
				  .request_id = r->id, .model_hash = f->model[d->model]->hash};

	return dds_proto_encode_frag(&h, &r->tm, f->payload, i, f->o->mtu, d->key, out, cap);
}
