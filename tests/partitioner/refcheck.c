/* refcheck.c: the reference of refcheck.h, written without the partitioner's code, and the
 * checks that hold the partitioner's answers against it. */
#include "refcheck.h"

#include <check.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool ref_close(double x, double y)
{
	return fabs(x - y) <= REF_TOL * fmax(fabs(x), fabs(y));
}

static bool on_dev(const uint8_t *local, int x)
{
	return x == 0 || local[x - 1];
}

bool ref_valid(const struct dds_part_input *in, const uint8_t *local)
{
	for (int k = 0; k < in->n; k++)
		for (int i = in->in_off[k]; local[k] && i < in->in_off[k + 1]; i++)
			if (!on_dev(local, in->in_val[i]))
				return false;
	return true;
}

double ref_latency(const struct dds_part_input *in, const uint8_t *local, double r, uint8_t *up)
{
	double te = 0, tt = 0, work = 0;
	memset(up, 0, (size_t)in->n + 1);
	for (int k = 0; k < in->n; k++) {
		if (local[k]) {
			te += in->a[k];
			continue;
		}
		work += in->w[k];
		for (int i = in->in_off[k]; i < in->in_off[k + 1]; i++)
			if (on_dev(local, in->in_val[i]))
				up[in->in_val[i]] = 1;
	}
	for (int x = 0; x <= in->n; x++)
		if (up[x])
			tt += (x ? in->d[x - 1] : in->d_in) / in->up_bw;
	if (!local[in->output])
		tt += in->d_out / in->down_bw;
	return te + tt + (work > 0 ? work / r : 0);
}

struct enumr {
	const struct dds_part_input *in;
	double r, best;
	uint8_t *local, *best_local, *up;
	long count, limit;
};

static void enumerate(struct enumr *e, int k)
{
	if (e->count > e->limit)
		return;
	if (k == e->in->n) {
		double t = ref_latency(e->in, e->local, e->r, e->up);
		e->count++;
		if (t < e->best) {
			e->best = t;
			memcpy(e->best_local, e->local, (size_t)k);
		}
		return;
	}
	bool can_local = true;
	for (int i = e->in->in_off[k]; i < e->in->in_off[k + 1]; i++)
		can_local &= on_dev(e->local, e->in->in_val[i]);
	e->local[k] = 0;
	enumerate(e, k + 1);
	if (can_local) {
		e->local[k] = 1;
		enumerate(e, k + 1);
		e->local[k] = 0;
	}
}

long ref_best(const struct dds_part_input *in, double r, long limit, double *best,
	      uint8_t *best_local)
{
	struct enumr e = {.in = in, .r = r, .best = INFINITY, .limit = limit,
			  .best_local = best_local};
	e.local = calloc((size_t)in->n + 1, 1);
	e.up = calloc((size_t)in->n + 1, 1);
	if (e.local && e.up)
		enumerate(&e, 0);
	free(e.local);
	free(e.up);
	*best = e.best;
	return e.count > limit || e.count == 0 ? -1 : e.count;
}

/* The result describes a valid split whose independent latency, cut list and parts match. */
void ref_check_result(const struct dds_part_input *in, const struct dds_part_result *res,
			 double r)
{
	uint8_t *up = calloc((size_t)in->n + 1, 1);
	ck_assert_ptr_nonnull(up);
	ck_assert(ref_valid(in, res->split.local));
	double t = ref_latency(in, res->split.local, r, up);
	ck_assert_msg(ref_close(res->total, t), "total %.17g, reference %.17g", res->total, t);
	ck_assert(ref_close(res->total,
			    res->split.t_edge + res->split.t_transfer + res->t_server));
	int n_up = 0;
	for (int x = 0; x <= in->n; x++)
		n_up += up[x];
	ck_assert_int_eq(res->split.n_cut, n_up);
	for (int i = 0; i < res->split.n_cut; i++)
		ck_assert(up[res->split.cut[i]]);
	ck_assert(res->split.download == !res->split.local[in->output]);
	free(up);
}

/* The envelope's piece at r has the latency of a fresh min-cut at r, on a dense grid and around
 * every breakpoint; pieces are sorted and their splits are what they claim. */
void ref_check_envelope(const struct dds_part_input *in, struct dds_part_ctx *ctx,
			const struct dds_part_envelope *env, double r_min, double r_max)
{
	int m = dds_part_envelope_count(env);
	uint8_t *up = calloc((size_t)in->n + 1, 1);
	ck_assert_ptr_nonnull(up);
	ck_assert_int_ge(m, 1);
	ck_assert(dds_part_envelope_piece(env, 0)->r_lo == 0);
	ck_assert(isinf(dds_part_envelope_piece(env, m - 1)->r_hi));
	for (int p = 0; p < m; p++) {
		const struct dds_part_piece *pc = dds_part_envelope_piece(env, p);
		ck_assert_int_eq(pc->id, p);
		ck_assert(pc->r_lo < pc->r_hi);
		ck_assert(p == 0 || pc->w > dds_part_envelope_piece(env, p - 1)->w);
		ck_assert(p == 0 || pc->r_lo == dds_part_envelope_piece(env, p - 1)->r_hi);
		double mid = isinf(pc->r_hi) ? pc->r_lo * 2 + 1 : (pc->r_lo + pc->r_hi) / 2;
		ck_assert(dds_part_envelope_lookup(env, mid) == pc);
		ck_assert(ref_close(ref_latency(in, pc->split.local, mid, up),
				    dds_part_piece_latency(pc, mid)));
	}
	for (int i = 0; i <= 400 + 2 * m; i++) {
		double r = i <= 400 ? r_min * pow(r_max / r_min, i / 400.0)
				    : dds_part_envelope_piece(env, (i - 401) / 2)->r_hi *
					      ((i & 1) ? 1 - 1e-7 : 1 + 1e-7);
		if (!isfinite(r))
			continue;
		struct dds_part_result res;
		struct dds_part_err err;
		ck_assert_msg(dds_part_solve(ctx, r, &res, &err) == 0, "%s", err.msg);
		double t = dds_part_piece_latency(dds_part_envelope_lookup(env, r), r);
		ck_assert_msg(ref_close(t, res.total), "r %g: envelope %.17g, min-cut %.17g", r, t,
			      res.total);
	}
	free(up);
}
