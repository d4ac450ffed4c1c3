/* groups.c: the worker's splits and scheduler groups (one per split, or one meet group per model whose splits merge), their lazy plans, and running a batch of either. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_log.h>

#include "dds_backend.h"
#include "srv_int.h"

/* One split of a model: the values a device sends, its tail, where its requests queue. */
struct grp_split {
	int model;
	int n_vals;
	int vals[DDS_PROTO_MAX_TENSORS]; /* ascending, as on the wire */
	double work;                     /* FLOPs of the whole tail, per request */
	uint8_t *mask;                   /* the tail's layers (owned) */
	int group;                       /* its own scheduler group, or its model's meet group */
	bool bridged;                    /* in the meet group with a larger tail: a bridge first */
	struct dds_plan *plan;           /* own group: the tail; bridged: the bridge; lazy */
	uint64_t requests;               /* admitted (written by the worker, read by telemetry) */
};

/* A scheduler group (id = index = the scheduler's split_id): one split's, or a meet group. */
struct grp_group {
	int model;
	int split; /* -1: the model's meet group */
};

struct srv_groups {
	const struct srv_cfg *cfg;
	struct srv_exec *x;
	struct dds_sched *sched;
	struct dds_backend *backend;
	struct srv_group_stats *st;       /* the worker's counters */
	struct grp_split *splits;         /* scheduler.max_groups of each */
	struct grp_group *groups;
	uint32_t n_splits, n_groups;      /* n_splits: stored with release (srv_groups_splits) */
	int meet_group[SRV_MAX_MODELS];   /* -1 until the model's first merged split */
	struct dds_plan *meet_plan[SRV_MAX_MODELS]; /* lazy */
	float *in, *mid, *out;            /* plan inputs; bridge outputs; batch results */
	size_t in_cap, mid_cap, out_cap;  /* floats */
	const float *src[DDS_SCHED_MAX_BATCH * DDS_PROTO_MAX_TENSORS]; /* meet inputs, per request */
};

struct srv_groups *srv_groups_new(const struct srv_cfg *c, struct srv_exec *x,
				  struct dds_sched *s, struct dds_backend *b,
				  struct srv_group_stats *st)
{
	struct srv_groups *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->splits = calloc(c->sched.max_groups, sizeof(*g->splits));
	g->groups = calloc(c->sched.max_groups, sizeof(*g->groups));
	if (!g->splits || !g->groups) {
		srv_groups_free(g);
		return NULL;
	}
	g->cfg = c;
	g->x = x;
	g->sched = s;
	g->backend = b;
	g->st = st;
	for (int i = 0; i < SRV_MAX_MODELS; i++)
		g->meet_group[i] = -1;
	return g;
}

void srv_groups_free(struct srv_groups *g)
{
	if (!g)
		return;
	for (uint32_t i = 0; i < g->n_splits; i++) {
		dds_plan_free(g->splits[i].plan);
		free(g->splits[i].mask);
	}
	for (int i = 0; i < SRV_MAX_MODELS; i++)
		dds_plan_free(g->meet_plan[i]);
	free(g->splits);
	free(g->groups);
	free(g->in);
	free(g->mid);
	free(g->out);
	free(g);
}

/* ---- splits and groups, created on demand ---- */

static bool grp_same_split(const struct grp_split *s, int mi, const struct dds_proto_tmsg *tm)
{
	if (s->model != mi || s->n_vals != tm->n_tensors)
		return false;
	for (int i = 0; i < s->n_vals; i++)
		if (s->vals[i] != tm->t[i].value_id)
			return false;
	return true;
}

static struct grp_split *grp_find(struct srv_groups *g, int mi, const struct dds_proto_tmsg *tm)
{
	for (uint32_t i = 0; i < g->n_splits; i++)
		if (grp_same_split(&g->splits[i], mi, tm))
			return &g->splits[i];
	return NULL;
}

/* A new scheduler group for model mi (split si, or -1: the meet group). -1 if none is left. */
static int grp_add_group(struct srv_groups *g, int mi, int si)
{
	const struct dds_model *m = srv_exec_model(g->x, mi);
	char msg[256];
	int id;

	if (g->n_groups >= g->cfg->sched.max_groups)
		return -1;
	id = dds_sched_add_group(g->sched, m->hash, g->n_groups, &g->cfg->models[mi].batch, msg,
				 sizeof(msg));
	if (id < 0 || (uint32_t)id != g->n_groups) {
		RTE_LOG(ERR, USER1, "worker: %s: group: %s\n", m->name, msg);
		return -1;
	}
	g->groups[id] = (struct grp_group){.model = mi, .split = si};
	g->st->groups = ++g->n_groups;
	return id;
}

/* Where split s queues: its model's meet group when its tail holds the meet tail (bridged if
 * larger), else a group of its own. */
static int grp_place(struct srv_groups *g, struct grp_split *s, int si)
{
	const struct dds_model *m = srv_exec_model(g->x, s->model);
	const uint8_t *meet = srv_exec_meet(g->x, s->model);
	bool holds = meet != NULL;

	for (int k = 0; k < m->n_layers && holds; k++)
		holds = !meet[k] || s->mask[k];
	if (!holds)
		return grp_add_group(g, s->model, si);
	s->bridged = memcmp(meet, s->mask, (size_t)m->n_layers) != 0;
	if (g->meet_group[s->model] < 0)
		g->meet_group[s->model] = grp_add_group(g, s->model, -1);
	return g->meet_group[s->model];
}

/* A new split from a request's tensors: its tail, work and group. NULL with a log line. */
static struct grp_split *grp_new_split(struct srv_groups *g, int mi,
				       const struct dds_proto_tmsg *tm)
{
	const struct dds_model *m = srv_exec_model(g->x, mi);
	struct grp_split *s = &g->splits[g->n_splits];
	struct dds_err err;

	if (g->n_splits >= g->cfg->sched.max_groups)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->model = mi;
	s->n_vals = tm->n_tensors;
	for (int i = 0; i < tm->n_tensors; i++)
		s->vals[i] = tm->t[i].value_id;
	s->mask = malloc((size_t)m->n_layers);
	if (!s->mask || dds_plan_tail_mask(m, s->vals, s->n_vals, s->mask, &err)) {
		RTE_LOG(ERR, USER1, "worker: %s: split of %d values: %s\n", m->name, s->n_vals,
			s->mask ? err.msg : "out of memory");
		free(s->mask);
		return NULL;
	}
	for (int k = 0; k < m->n_layers; k++)
		s->work += s->mask[k] ? m->layers[k].flops : 0;
	s->work = s->work > 1.0 ? s->work : 1.0; /* a tail of free layers still costs a little */
	s->group = grp_place(g, s, (int)g->n_splits);
	if (s->group < 0) {
		free(s->mask);
		return NULL;
	}
	__atomic_store_n(&g->n_splits, g->n_splits + 1, __ATOMIC_RELEASE); /* s is complete */
	return s;
}

int srv_groups_admit(struct srv_groups *g, int mi, const struct dds_proto_tmsg *tm, double *work)
{
	struct grp_split *s = grp_find(g, mi, tm);

	if (!s)
		s = grp_new_split(g, mi, tm);
	if (!s)
		return -1;
	__atomic_store_n(&s->requests, s->requests + 1, __ATOMIC_RELAXED);
	*work = s->work;
	return s->group;
}

int srv_groups_splits(const struct srv_groups *g, struct srv_split_info *out, int max)
{
	int n = (int)__atomic_load_n(&g->n_splits, __ATOMIC_ACQUIRE);

	for (int i = 0; i < n && i < max; i++) {
		const struct grp_split *s = &g->splits[i];

		out[i] = (struct srv_split_info){
			.model = s->model, .n_vals = s->n_vals, .work = s->work,
			.meet = g->groups[s->group].split < 0, .bridged = s->bridged,
			.requests = __atomic_load_n(&s->requests, __ATOMIC_RELAXED)};
		memcpy(out[i].vals, s->vals, sizeof(int) * (size_t)s->n_vals);
	}
	return n;
}

/* ---- plans, made at their first batch ---- */

/* *slot, or a new plan for model mi: a tail (outs NULL) or a value plan. NULL, logged, if the
 * backend cannot make it. */
static struct dds_plan *grp_plan(struct srv_groups *g, struct dds_plan **slot, int mi,
				 const uint8_t *mask, const int *outs, int n_out)
{
	const struct dds_model *m = srv_exec_model(g->x, mi);
	int mb = g->cfg->models[mi].batch.max_batch, st;
	struct dds_err err;

	if (*slot)
		return *slot;
	*slot = outs ? dds_plan_create_values(g->backend, m, mask, outs, n_out, mb, &st, &err)
		     : dds_plan_create(g->backend, m, mask, mb, &st, &err);
	if (!*slot)
		RTE_LOG(ERR, USER1, "worker: %s: %s plan (%s): %s\n", m->name,
			outs ? "bridge" : "tail", dds_backend_status_name(st), err.msg);
	else if (outs)
		g->st->bridges++;
	g->st->plans += *slot != NULL;
	return *slot;
}

/* The bridge of split s: its tail's layers outside the meet tail, outputting the meet plan's
 * inputs (docs/scheduler.md, "Merging splits"). */
static struct dds_plan *grp_bridge(struct srv_groups *g, struct grp_split *s,
				   const struct dds_plan *meet)
{
	const struct dds_model *m = srv_exec_model(g->x, s->model);
	const uint8_t *mm = srv_exec_meet(g->x, s->model);
	int outs[DDS_PROTO_MAX_TENSORS], n_out = dds_plan_n_inputs(meet);
	uint8_t *bm;

	if (s->plan)
		return s->plan;
	bm = malloc((size_t)m->n_layers);
	if (!bm || n_out > DDS_PROTO_MAX_TENSORS) {
		free(bm);
		return NULL;
	}
	for (int k = 0; k < m->n_layers; k++)
		bm[k] = s->mask[k] && !mm[k];
	for (int k = 0; k < n_out; k++)
		outs[k] = dds_plan_input_value(meet, k);
	grp_plan(g, &s->plan, s->model, bm, outs, n_out);
	free(bm);
	return s->plan;
}

/* ---- running a batch ---- */

/* Grow *buf to hold n floats. */
static int grp_reserve(float **buf, size_t *cap, size_t n)
{
	float *p;

	if (n <= *cap)
		return 0;
	p = realloc(*buf, n * sizeof(float));
	if (!p)
		return -1;
	*buf = p;
	*cap = n;
	return 0;
}

static const struct dds_dp_job *grp_job(const struct dds_sched_batch *b, int i)
{
	return b->req[i]->user;
}

/* A split's own group: pack the payloads (each must be the plan's input size), run the tail. */
static int grp_run_own(struct srv_groups *g, const struct dds_sched_batch *b,
		       struct grp_split *s, struct dds_err *err)
{
	struct dds_plan *p = grp_plan(g, &s->plan, s->model, s->mask, NULL, 0);
	size_t in_f = dds_plan_input_floats(p), n = (size_t)b->n;
	const float *req[DDS_SCHED_MAX_BATCH];

	if (!p || grp_reserve(&g->in, &g->in_cap, in_f * n) ||
	    grp_reserve(&g->out, &g->out_cap, dds_plan_output_floats(p) * n))
		return -1;
	for (int i = 0; i < b->n; i++) {
		req[i] = grp_job(b, i)->rq.payload;
		if (grp_job(b, i)->tm.payload_len != in_f * sizeof(float))
			return -1;
	}
	if (dds_plan_pack(p, req, b->n, g->in))
		return -1;
	return dds_plan_run(p, g->in, b->n, g->out, err);
}

/* Request i of a meet batch sent exactly the meet plan's inputs: point at them in its payload. */
static int grp_direct(struct srv_groups *g, const struct dds_sched_batch *b, int i,
		      const struct dds_plan *meet)
{
	const struct dds_model *m = srv_exec_model(g->x, g->groups[b->split_id].model);
	const float *pl = grp_job(b, i)->rq.payload;
	int n_in = dds_plan_n_inputs(meet);

	if (grp_job(b, i)->tm.payload_len != dds_plan_input_floats(meet) * sizeof(float))
		return -1;
	for (int k = 0; k < n_in; k++) {
		g->src[i * n_in + k] = pl;
		pl += dds_shape_numel(dds_model_value_shape(m, dds_plan_input_value(meet, k)));
	}
	return 0;
}

/* The rows of batch b from i on that are split s's and not yet done: marked done, their
 * payloads in req, their rows in rows. Returns how many, or -1 if a payload is not in_f floats. */
static int grp_members(const struct dds_sched_batch *b, int i, const struct grp_split *s,
		       size_t in_f, bool *done, const float **req, int *rows)
{
	int c = 0;

	for (int j = i; j < b->n; j++) {
		const struct dds_dp_job *job = grp_job(b, j);
		if (done[j] || !grp_same_split(s, s->model, &job->tm))
			continue;
		if (job->tm.payload_len != in_f * sizeof(float))
			return -1;
		done[j] = true;
		req[c] = job->rq.payload;
		rows[c++] = j;
	}
	return c;
}

/* The members of bridged split s in a meet batch (grp_members) through s's bridge as one
 * batch, its outputs at g->mid + *mid_rows rows; each member's meet inputs then point there. */
static int grp_bridge_run(struct srv_groups *g, const struct dds_sched_batch *b, int i,
			  struct grp_split *s, const struct dds_plan *meet, bool *done,
			  int *mid_rows, struct dds_err *err)
{
	const struct dds_model *m = srv_exec_model(g->x, s->model);
	struct dds_plan *p = grp_bridge(g, s, meet);
	int rows[DDS_SCHED_MAX_BATCH], c, n_in = dds_plan_n_inputs(meet);
	const float *req[DDS_SCHED_MAX_BATCH];
	size_t in_f = dds_plan_input_floats(p), mid_f = dds_plan_input_floats(meet);

	if (!p || grp_reserve(&g->in, &g->in_cap, in_f * (size_t)b->n) ||
	    (c = grp_members(b, i, s, in_f, done, req, rows)) < 0)
		return -1;
	float *out = g->mid + mid_f * (size_t)*mid_rows, *blk = out;
	if (dds_plan_pack(p, req, c, g->in) || dds_plan_run(p, g->in, c, out, err))
		return -1;
	for (int k = 0; k < n_in; k++) { /* block k of the bridge's output: [c, numel] */
		size_t nk = dds_shape_numel(dds_model_value_shape(m, dds_plan_input_value(meet, k)));
		for (int r = 0; r < c; r++)
			g->src[rows[r] * n_in + k] = blk + nk * (size_t)r;
		blk += nk * (size_t)c;
	}
	*mid_rows += c;
	g->st->merged += (uint64_t)c;
	return 0;
}

/* A meet batch: each bridged split's members through its bridge (one batch per split), then
 * every member's meet inputs (from a bridge's outputs or its own payload) packed for the meet
 * plan, run once. */
static int grp_run_meet(struct srv_groups *g, const struct dds_sched_batch *b, int mi,
			struct dds_err *err)
{
	struct dds_plan *meet = grp_plan(g, &g->meet_plan[mi], mi, srv_exec_meet(g->x, mi), NULL,
					 0);
	size_t n = (size_t)b->n, in_f = dds_plan_input_floats(meet);
	bool done[DDS_SCHED_MAX_BATCH] = {false}, direct = false;
	int mid_rows = 0, bridged = 0, rc = 0;

	if (!meet || grp_reserve(&g->mid, &g->mid_cap, in_f * n) ||
	    grp_reserve(&g->in, &g->in_cap, in_f * n) ||
	    grp_reserve(&g->out, &g->out_cap, dds_plan_output_floats(meet) * n))
		return -1;
	for (int i = 0; i < b->n && rc == 0; i++) {
		if (done[i])
			continue;
		struct grp_split *s = grp_find(g, mi, &grp_job(b, i)->tm);
		if (!s) {
			rc = -1;
		} else if (s->bridged) {
			bridged++;
			rc = grp_bridge_run(g, b, i, s, meet, done, &mid_rows, err);
		} else {
			direct = true;
			rc = grp_direct(g, b, i, meet);
		}
	}
	if (rc == 0)
		rc = dds_plan_pack_values(meet, g->src, b->n, g->in);
	if (rc == 0)
		rc = dds_plan_run(meet, g->in, b->n, g->out, err);
	g->st->mixed_batches += rc == 0 && bridged + direct > 1; /* the meet split is one split */
	return rc;
}

int srv_groups_run(struct srv_groups *g, const struct dds_sched_batch *b, const float **out,
		   struct dds_err *err)
{
	const struct grp_group *gr = &g->groups[b->split_id];
	int rc = gr->split >= 0 ? grp_run_own(g, b, &g->splits[gr->split], err)
				: grp_run_meet(g, b, gr->model, err);

	*out = g->out;
	return rc;
}

int srv_groups_model(const struct srv_groups *g, uint32_t group)
{
	return g->groups[group].model;
}
