/* device.c: one device's decisions (dds_device.h): the envelope from model + profile, the split at r = x / p, the budget update. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dds_device.h"
#include "dds_part_model.h"
#include "dds_partition.h"

/* One piece of the device's usable envelope: a split that fits in one request and the line
 * T(r) = a + w / r it has (a, w, and its r-range are in the parallel dds_budget_piece). */
struct usable {
	const uint8_t *local; /* n bytes, 1 = on the device */
	const int *cut;       /* values uploaded, ascending */
	int n_cut, n_local;
	int id;               /* partitioner piece id; -1 all-local, -2 server-only (synthesised) */
	uint32_t payload;     /* upload bytes of the cut (float32) */
};

struct dds_device {
	const struct dds_model *m;
	int n;
	enum dds_device_rule rule;
	struct dds_budget b;
	struct dds_part_envelope *env;
	int n_env;           /* pieces of the partitioner's envelope */
	bool all_fit;        /* every piece fits: use[i] is piece i (lookups go to the envelope) */
	int n_use;
	struct usable *use;  /* n_use usable pieces, ascending r */
	struct dds_budget_piece *bp; /* n_use: the same as budget.h pieces (the rule's curve) */
	struct dds_budget_pieces pieces;
	uint8_t *ones;       /* n bytes of 1: the all-local mask */
	uint8_t *zeros;      /* n bytes of 0: the server-only mask */
	double t_local;
	double w_in_use;     /* W_s of the last decided split; < 0 before the first decide */
};

static int errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Upload bytes of a cut (float32), or UINT64_MAX if a value id is out of range. */
static uint64_t cut_bytes(const struct dds_model *m, const int *cut, int n_cut)
{
	uint64_t total = 0;

	for (int i = 0; i < n_cut; i++) {
		const struct dds_shape *s = dds_model_value_shape(m, cut[i]);

		if (!s)
			return UINT64_MAX;
		total += (uint64_t)dds_shape_numel(s) * sizeof(float);
	}
	return total;
}

static int check_profile(const struct dds_model *m, const struct dds_device_profile *p,
			 char *err, size_t len)
{
	int n = m->n_layers;

	if (!p->layer_seconds && (!(p->device_flops > 0) || !isfinite(p->device_flops)))
		return errf(err, len, "device_flops must be > 0 without layer_seconds (got %g)",
			    p->device_flops);
	if (!(p->up_bw > 0) || !isfinite(p->up_bw) || !(p->down_bw > 0) || !isfinite(p->down_bw))
		return errf(err, len, "bandwidths must be finite and > 0 (up %g, down %g bytes/s)",
			    p->up_bw, p->down_bw);
	if (!p->work)
		return errf(err, len, "no server work (work is NULL)");
	if (p->work_kind == 1 && p->n_work != 2)
		return errf(err, len, "a work regression has 2 entries, not %d", p->n_work);
	if (p->work_kind == 0 && p->n_work != n)
		return errf(err, len, "a work table has one entry per layer (%d), not %d", n,
			    p->n_work);
	if (p->work_kind != 0 && p->work_kind != 1)
		return errf(err, len, "work_kind %d is neither 0 (table) nor 1 (regression)",
			    p->work_kind);
	for (int i = 0; i < p->n_work; i++)
		if (!isfinite(p->work[i]))
			return errf(err, len, "server work entry %d is not finite", i);
	return 0;
}

/* The partitioner's input: the linear model, then measured local times and the node's work. */
static int make_input(const struct dds_model *m, const struct dds_device_profile *p,
		      struct dds_part_model_input *mi, char *err, size_t len)
{
	struct dds_part_linear lin = {.device_flops = p->layer_seconds ? 1.0 : p->device_flops,
				      .beta = 1.0, .up_bw = p->up_bw, .down_bw = p->down_bw};
	struct dds_part_err pe;

	if (dds_part_graph_from_model(m, &lin, mi, &pe))
		return errf(err, len, "%s", pe.msg);
	for (int v = 0; v < m->n_layers; v++) {
		if (p->layer_seconds)
			mi->a[v] = p->layer_seconds[v];
		mi->w[v] = p->work_kind == 1 ? p->work[0] * m->layers[v].flops + p->work[1]
					     : p->work[v];
	}
	if (dds_part_input_check(&mi->in, &pe)) {
		dds_part_model_input_free(mi);
		return errf(err, len, "%s", pe.msg);
	}
	return 0;
}

static const int RAW_INPUT_CUT[1] = {0};

static int usable_of_piece(const struct dds_device *d, const struct dds_part_piece *pc,
			   struct usable *u)
{
	uint64_t bytes = cut_bytes(d->m, pc->split.cut, pc->split.n_cut);

	*u = (struct usable){pc->split.local, pc->split.cut, pc->split.n_cut, pc->split.n_local,
			     pc->id, (uint32_t)bytes};
	return pc->split.n_cut <= DDS_DEVICE_MAX_CUT && bytes <= UINT32_MAX;
}

struct line {
	struct dds_budget_piece b;
	struct usable u;
};

/* Candidate order for the hull: server work ascending, then a ascending. */
static int cmp_line(const void *x, const void *y)
{
	const struct dds_budget_piece *p = &((const struct line *)x)->b;
	const struct dds_budget_piece *q = &((const struct line *)y)->b;

	if (p->w != q->w)
		return p->w < q->w ? -1 : 1;
	return p->a < q->a ? -1 : p->a > q->a;
}

/* The lower envelope over r in (0, inf) of the lines a + w / r of n candidates (bp[i] with
 * use[i]), in place; returns how many remain, in ascending r with their breakpoints, or -1 if
 * out of memory. A line with more work than another must have less fixed time to be on it. */
static int lower_hull(struct dds_budget_piece *bp, struct usable *use, int n)
{
	struct line *c = malloc(sizeof(*c) * (size_t)n);
	int k = 0;

	if (!c)
		return -1;
	for (int i = 0; i < n; i++)
		c[i] = (struct line){bp[i], use[i]};
	qsort(c, (size_t)n, sizeof(*c), cmp_line);
	for (int i = 0; i < n; i++) {
		if (k > 0 && c[i].b.a >= bp[k - 1].a)
			continue; /* never below the line kept last */
		c[i].b.r_lo = 0;
		while (k > 0) {
			double cross = (c[i].b.w - bp[k - 1].w) / (bp[k - 1].a - c[i].b.a);

			if (k > 1 && cross <= bp[k - 1].r_lo) {
				k--; /* the line kept last is optimal nowhere */
				continue;
			}
			bp[k - 1].r_hi = cross;
			c[i].b.r_lo = cross;
			break;
		}
		bp[k] = c[i].b;
		bp[k].r_hi = INFINITY;
		use[k++] = c[i].u;
	}
	free(c);
	return k;
}

/* The usable envelope. When every piece of the partitioner's envelope fits in a request (at most
 * DDS_DEVICE_MAX_CUT tensors, payload under 4 GiB), it is that envelope, piece for piece. Else
 * it is the lower envelope of the pieces that fit, plus two splits that always fit: all-local
 * and server-only (the raw input). The pieces that fit are each optimal over all splits on
 * their own r-range, so they keep it; in the gaps the dropped pieces leave, the device takes
 * the best of those candidates, which need not be the best split of at most 16 tensors (that
 * is a constrained min-cut we do not solve): docs/agent.md. */
static int make_usable(struct dds_device *d, struct dds_part_ctx *ctx, char *err, size_t len)
{
	struct dds_part_result so;
	struct dds_part_err pe;
	int n = 0;

	d->n_env = dds_part_envelope_count(d->env);
	d->use = calloc((size_t)d->n_env + 2, sizeof(*d->use));
	d->bp = calloc((size_t)d->n_env + 2, sizeof(*d->bp));
	if (!d->use || !d->bp)
		return errf(err, len, "out of memory for the envelope of %s", d->m->name);
	d->all_fit = true;
	for (int i = 0; i < d->n_env; i++) {
		const struct dds_part_piece *pc = dds_part_envelope_piece(d->env, i);

		if (usable_of_piece(d, pc, &d->use[n]))
			d->bp[n++] = (struct dds_budget_piece){pc->a, pc->w, pc->r_lo, pc->r_hi};
		else
			d->all_fit = false;
	}
	d->n_use = n;
	if (!d->all_fit) {
		if (dds_part_server_only(ctx, 1.0, &so, &pe))
			return errf(err, len, "%s", pe.msg);
		d->use[n] = (struct usable){d->ones, NULL, 0, d->n, -1, 0};
		d->bp[n++] = (struct dds_budget_piece){d->t_local, 0, 0, INFINITY};
		d->use[n] = (struct usable){d->zeros, RAW_INPUT_CUT, 1, 0, -2,
					    (uint32_t)d->m->in_bytes};
		d->bp[n++] = (struct dds_budget_piece){so.split.t_edge + so.split.t_transfer,
						       so.split.server_work, 0, INFINITY};
		d->n_use = lower_hull(d->bp, d->use, n);
		if (d->n_use < 0)
			return errf(err, len, "out of memory for the envelope of %s", d->m->name);
	}
	d->pieces = (struct dds_budget_pieces){d->bp, d->n_use, d->t_local};
	return 0;
}

static int make_envelope(struct dds_device *d, const struct dds_device_profile *p, char *err,
			 size_t len)
{
	struct dds_part_model_input mi;
	struct dds_part_ctx *ctx = NULL;
	struct dds_part_err pe;
	int rc;

	if (make_input(d->m, p, &mi, err, len))
		return -1;
	d->t_local = 0;
	for (int v = 0; v < d->n; v++)
		d->t_local += mi.a[v];
	if (dds_part_ctx_new(&mi.in, &ctx, &pe) || dds_part_envelope_new(ctx, &d->env, &pe))
		rc = errf(err, len, "%s", pe.msg);
	else
		rc = make_usable(d, ctx, err, len);
	dds_part_ctx_free(ctx);
	dds_part_model_input_free(&mi);
	return rc;
}

int dds_device_new(const struct dds_model *m, const struct dds_device_profile *p,
		   enum dds_device_rule rule, const struct dds_budget_cfg *bc, double x0,
		   struct dds_device **out, char *err, size_t err_len)
{
	struct dds_budget_cfg def;
	struct dds_device *d;
	enum dds_budget_status st;

	if (!m || !p || !out)
		return errf(err, err_len, "dds_device_new: model, profile and out are required");
	if (m->n_layers < 1)
		return errf(err, err_len, "%s: the model has no layers", m->name);
	if (rule != DDS_DEVICE_MOMENTUM && rule != DDS_DEVICE_EXACT)
		return errf(err, err_len, "unknown budget rule %d", (int)rule);
	if (check_profile(m, p, err, err_len))
		return -1;
	if (!bc) {
		dds_budget_cfg_default(&def);
		bc = &def;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return errf(err, err_len, "out of memory for a device");
	*d = (struct dds_device){.m = m, .n = m->n_layers, .rule = rule, .w_in_use = -1};
	st = dds_budget_init(&d->b, bc, x0);
	if (st != DDS_BUDGET_OK) {
		free(d);
		return errf(err, err_len, "budget config: %s", dds_budget_status_str(st));
	}
	d->ones = malloc((size_t)d->n);
	d->zeros = calloc((size_t)d->n, 1);
	if (!d->ones || !d->zeros) {
		dds_device_free(d);
		return errf(err, err_len, "out of memory for a device");
	}
	memset(d->ones, 1, (size_t)d->n);
	if (make_envelope(d, p, err, err_len)) {
		dds_device_free(d);
		return -1;
	}
	*out = d;
	return 0;
}

void dds_device_free(struct dds_device *d)
{
	if (!d)
		return;
	dds_part_envelope_free(d->env);
	free(d->zeros);
	free(d->use);
	free(d->bp);
	free(d->ones);
	free(d);
}

/* The usable piece at r: the partitioner's lookup when every piece fits (the usual case), else
 * a binary search of the usable pieces' ranges. */
static int usable_at(const struct dds_device *d, double r)
{
	int lo = 0, hi = d->n_use - 1;

	if (d->all_fit)
		return dds_part_envelope_lookup(d->env, r)->id;
	while (lo < hi) { /* the last piece whose r_lo <= r */
		int mid = (lo + hi + 1) / 2;

		if (d->bp[mid].r_lo <= r)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static void plan_all_local(const struct dds_device *d, struct dds_device_plan *out)
{
	*out = (struct dds_device_plan){.all_local = true, .local = d->ones,
					.t_expected = d->t_local, .piece = -1};
}

int dds_device_decide(struct dds_device *d, double p, struct dds_device_plan *out, char *err,
		      size_t err_len)
{
	const struct usable *u;
	double x, r;
	int k;

	if (!d || !out)
		return errf(err, err_len, "dds_device_decide: device and out are required");
	if (!(p > 0) || !isfinite(p))
		return errf(err, err_len, "price must be finite and > 0 (got %g)", p);
	x = d->b.x;
	r = x / p;
	k = x > 0 ? usable_at(d, r) : -1;
	u = k >= 0 ? &d->use[k] : NULL;
	if (!u || u->n_local == d->n) {
		plan_all_local(d, out);
		d->w_in_use = 0;
		return 0;
	}
	*out = (struct dds_device_plan){
		.x = x, .r = r, .n_values = u->n_cut, .local = u->local,
		.server_work = d->bp[k].w, .t_expected = d->bp[k].a + d->bp[k].w / r,
		.payload_bytes = u->payload, .piece = u->id,
	};
	memcpy(out->values, u->cut, sizeof(int) * (size_t)u->n_cut);
	d->w_in_use = d->bp[k].w;
	return 0;
}

int dds_device_update(struct dds_device *d, double p, char *err, size_t err_len)
{
	struct dds_budget_curve curve;
	struct dds_budget_choice choice;
	struct dds_device_plan plan;
	enum dds_budget_status st;

	if (!d)
		return errf(err, err_len, "dds_device_update: no device");
	if (!(p > 0) || !isfinite(p))
		return errf(err, err_len, "price must be finite and > 0 (got %g)", p);
	if (d->rule == DDS_DEVICE_EXACT) {
		st = dds_budget_step_exact(&d->b, p, &d->pieces, &choice);
	} else {
		if (d->w_in_use < 0 && dds_device_decide(d, p, &plan, err, err_len))
			return -1;
		curve = dds_budget_pieces_curve(&d->pieces);
		st = dds_budget_step(&d->b, p, d->w_in_use, &curve);
	}
	if (st != DDS_BUDGET_OK)
		return errf(err, err_len, "budget update at p = %g: %s", p,
			    dds_budget_status_str(st));
	return 0;
}

const struct dds_budget *dds_device_budget(const struct dds_device *d)
{
	return &d->b;
}

int dds_device_n_pieces(const struct dds_device *d)
{
	return d->n_use;
}

double dds_device_t_local(const struct dds_device *d)
{
	return d->t_local;
}
