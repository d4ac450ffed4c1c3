/* merge_bench.c: what merging two splits of one model into one batch buys (docs/scheduler.md, "Merging splits"), against a batch per split.
 *
 * For each model (default: zoo/resnet50.json and zoo/vgg11.json, seeded weights) it takes two
 * nested single-tensor splits, the cuts nearest a third (a: the bigger tail T_a) and two thirds
 * (m: T_m) of the FLOPs, as tail_bench picks them. For each total batch N (default 2, 8, 32, 64;
 * N/2 requests of each split) it times a round of N requests two ways, alternating (a pass
 * runs one of each, so a drift in the machine's load hits both alike):
 *   separate  T_a's plan on the N/2 a-requests, then T_m's plan on the N/2 m-requests, each
 *             packed from per-request payloads (dds_plan_pack): the server's two groups;
 *   merged    the bridge (T_a minus T_m, outputting T_m's inputs) on the a-requests, then every
 *             request's T_m inputs gathered (dds_plan_pack_values; a- and m-requests alternate
 *             in the batch) and T_m's plan once on all N: server/groups.c's meet batch.
 * Packing and copies are timed, as the server does them. All plans are made once for the
 * largest N (the server makes them for its max_batch). Per (model, N): median, min and max ms
 * per round, requests/s at the median, and ratio = separate median / merged median (> 1: merging
 * is faster). The last timed rounds' results are then checked: each request's merged result
 * against its separate one, bit for bit on the CPU backend per request, else within 1e-4 of the
 * largest separate output magnitude; max_err is printed, a mismatch makes the exit status 1.
 *
 *   merge_bench [--backend auto|cpu|cuda] [--threads N] [--quick] [--batches 2,8,32,64]
 *               [--reps N] [--warmup N] [--cpu-batched] [--json] [MODEL.json ...]
 *
 * Every N must be even. --json: a header {"tool": "merge_bench", ...} (as tail_bench's), then
 * one object per (model, N): model, model_path, cut_a, cut_m, tail_a_gflop, tail_m_gflop,
 * batch, sep_{med,min,max}_ms, sep_req_per_s, mrg_{med,min,max}_ms, mrg_req_per_s, ratio,
 * max_err, out_scale, exact (bit-for-bit required), ok.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

/* One model's plans (all for max_batch requests) and buffers (malloc'd, owned). */
struct merge_setup {
	const struct dds_model *m;
	const char *cut_a, *cut_m; /* layer names */
	double gf_a, gf_m;
	struct dds_plan *tail_a, *tail_m, *bridge;
	int n_in;                 /* T_m's inputs: values per request in the meet batch */
	size_t *off, *numel;      /* per T_m input: floats before it in a row set; its size */
	float *pay_a, *pay_m;     /* max_batch/2 payloads of each split, one after another */
	const float **req_a, **req_m; /* each request's payload */
	float *in, *mid;          /* packed plan inputs; bridge outputs */
	float *out_a, *out_m, *out; /* results: separate (per split), merged */
	const float **src;        /* the meet batch's inputs: max_batch * n_in pointers */
	int batch;                /* N of the rounds being timed */
};

/* Free what make_plans and make_buffers made (NULLs are fine). */
static void setup_free(struct merge_setup *s)
{
	dds_plan_free(s->tail_a);
	dds_plan_free(s->tail_m);
	dds_plan_free(s->bridge);
	void *bufs[] = {s->off,   s->numel, s->pay_a, s->pay_m, s->req_a, s->req_m,
			s->in,    s->mid,   s->out_a, s->out_m, s->out,   s->src};
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		free(bufs[i]);
}

/* Tails a (cut nearest 1/3 of the FLOPs) and m (2/3) into ta, tm, nested. Returns 0, or -1
 * (message printed) when the model has no two such cuts. */
static int pick_splits(struct merge_setup *s, uint8_t *ta, uint8_t *tm)
{
	const struct dds_model *m = s->m;
	int va = dds_bench_pick_cut(m, 1.0 / 3, ta), vm = dds_bench_pick_cut(m, 2.0 / 3, tm);
	struct dds_err err;

	if (va < 1 || vm < 1 || va == vm || dds_plan_tail_mask(m, &va, 1, ta, &err) ||
	    dds_plan_tail_mask(m, &vm, 1, tm, &err)) {
		fprintf(stderr, "merge_bench: %s: no two single-tensor cuts near 1/3 and 2/3\n",
			m->name);
		return -1;
	}
	for (int k = 0; k < m->n_layers; k++)
		if (tm[k] && !ta[k]) {
			fprintf(stderr, "merge_bench: %s: tail of %s not inside tail of %s\n",
				m->name, m->layers[vm - 1].name, m->layers[va - 1].name);
			return -1;
		}
	s->cut_a = m->layers[va - 1].name;
	s->cut_m = m->layers[vm - 1].name;
	s->gf_a = dds_bench_gflop(m, ta);
	s->gf_m = dds_bench_gflop(m, tm);
	return 0;
}

/* The three plans: T_a, T_m, and the bridge T_a \ T_m outputting T_m's inputs (ta is reused as
 * the bridge's mask). Returns 0 or -1 (message printed). */
static int make_plans(struct merge_setup *s, struct dds_backend *b, uint8_t *ta,
		      const uint8_t *tm, int max_batch)
{
	const struct dds_model *m = s->m;
	struct dds_err err;
	int *outs;

	s->tail_a = dds_plan_create(b, m, ta, max_batch, NULL, &err);
	s->tail_m = s->tail_a ? dds_plan_create(b, m, tm, max_batch, NULL, &err) : NULL;
	if (!s->tail_m)
		goto fail;
	s->n_in = dds_plan_n_inputs(s->tail_m);
	outs = malloc((size_t)s->n_in * sizeof(int));
	if (!outs) {
		snprintf(err.msg, sizeof(err.msg), "out of memory");
		goto fail;
	}
	for (int k = 0; k < s->n_in; k++)
		outs[k] = dds_plan_input_value(s->tail_m, k);
	for (int k = 0; k < m->n_layers; k++)
		ta[k] = ta[k] && !tm[k];
	s->bridge = dds_plan_create_values(b, m, ta, outs, s->n_in, max_batch, NULL, &err);
	free(outs);
	if (s->bridge)
		return 0;
fail:
	fprintf(stderr, "merge_bench: %s: %s\n", m->name, err.msg);
	return -1;
}

/* Payloads (hashed values in [-0.5, 0.5), different per request), request pointers, and the
 * per-input offsets of T_m. Returns 0 or -1 (out of memory). */
static int make_buffers(struct merge_setup *s, int max_batch)
{
	size_t h = (size_t)max_batch / 2, ain = dds_plan_input_floats(s->tail_a);
	size_t min = dds_plan_input_floats(s->tail_m), nout = dds_plan_output_floats(s->tail_m);
	size_t nin = ain * h > min * max_batch ? ain * h : min * max_batch;

	s->off = malloc((size_t)s->n_in * sizeof(size_t));
	s->numel = malloc((size_t)s->n_in * sizeof(size_t));
	s->pay_a = malloc(ain * h * sizeof(float));
	s->pay_m = malloc(min * h * sizeof(float));
	s->req_a = malloc(h * sizeof(float *));
	s->req_m = malloc(h * sizeof(float *));
	s->in = malloc(nin * sizeof(float));
	s->mid = malloc(min * h * sizeof(float));
	s->out_a = malloc(nout * h * sizeof(float));
	s->out_m = malloc(nout * h * sizeof(float));
	s->out = malloc(nout * (size_t)max_batch * sizeof(float));
	s->src = malloc((size_t)max_batch * (size_t)s->n_in * sizeof(float *));
	if (!s->off || !s->numel || !s->pay_a || !s->pay_m || !s->req_a || !s->req_m || !s->in ||
	    !s->mid || !s->out_a || !s->out_m || !s->out || !s->src)
		return -1;
	for (size_t i = 0; i < ain * h; i++)
		s->pay_a[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
	for (size_t i = 0; i < min * h; i++)
		s->pay_m[i] = (float)(((i + 17) * 2246822519u) % 1000) / 1000.0f - 0.5f;
	for (size_t i = 0; i < h; i++) {
		s->req_a[i] = s->pay_a + i * ain;
		s->req_m[i] = s->pay_m + i * min;
	}
	size_t off = 0;
	for (int k = 0; k < s->n_in; k++) {
		int v = dds_plan_input_value(s->tail_m, k);
		s->off[k] = off;
		s->numel[k] = dds_shape_numel(dds_model_value_shape(s->m, v));
		off += s->numel[k];
	}
	return 0;
}

/* A batch of n requests of plan p from their payloads (the server's own-group run): pack, run
 * (out: p's outputs). Returns 0 or a status with err. */
static int pack_run(struct merge_setup *s, struct dds_plan *p, const float *const *req, int n,
		    float *out, struct dds_err *err)
{
	if (dds_plan_pack(p, req, n, s->in)) {
		snprintf(err->msg, sizeof(err->msg), "dds_plan_pack refused batch %d", n);
		return DDS_BACKEND_EINVAL;
	}
	return dds_plan_run(p, s->in, n, out, err);
}

/* A round without merging: each split's plan on its own half of the requests. */
static int round_separate(void *arg, struct dds_err *err)
{
	struct merge_setup *s = arg;
	int h = s->batch / 2, rc = pack_run(s, s->tail_a, s->req_a, h, s->out_a, err);

	return rc ? rc : pack_run(s, s->tail_m, s->req_m, h, s->out_m, err);
}

/* A merged round: the bridge on the a-requests, then T_m on all, a-requests in the even rows
 * (their inputs in the bridge's output blocks [h, numel]), m-requests in the odd rows. */
static int round_merged(void *arg, struct dds_err *err)
{
	struct merge_setup *s = arg;
	int h = s->batch / 2, n = s->n_in, rc = pack_run(s, s->bridge, s->req_a, h, s->mid, err);

	if (rc)
		return rc;
	for (int i = 0; i < h; i++)
		for (int k = 0; k < n; k++) {
			s->src[2 * i * n + k] = s->mid + s->off[k] * h + s->numel[k] * i;
			s->src[(2 * i + 1) * n + k] = s->req_m[i] + s->off[k];
		}
	if (dds_plan_pack_values(s->tail_m, s->src, s->batch, s->in)) {
		snprintf(err->msg, sizeof(err->msg), "dds_plan_pack_values refused batch %d",
			 s->batch);
		return DDS_BACKEND_EINVAL;
	}
	return dds_plan_run(s->tail_m, s->in, s->batch, s->out, err);
}

/* What the check found: the largest |merged - separate| and |separate|. */
struct merge_check {
	double max_err, scale;
	bool exact, ok;
};

/* Each request's merged result (row 2i: a-request i, 2i+1: m-request i) against its separate
 * one; exact: bit for bit required, else within 1e-4 of the scale. */
static struct merge_check check_results(const struct merge_setup *s, bool exact)
{
	size_t nout = dds_plan_output_floats(s->tail_m);
	struct merge_check c = {0, 0, exact, true};

	for (int r = 0; r < s->batch; r++) {
		const float *want = (r % 2 ? s->out_m : s->out_a) + nout * (size_t)(r / 2);
		const float *got = s->out + nout * (size_t)r;
		for (size_t j = 0; j < nout; j++) {
			double d = fabs((double)got[j] - want[j]);
			c.max_err = d > c.max_err || isnan(d) ? d : c.max_err;
			c.scale = fmax(c.scale, fabs((double)want[j]));
			c.ok &= exact ? !memcmp(&got[j], &want[j], sizeof(float)) : !isnan(d);
		}
	}
	c.ok &= exact || c.max_err <= 1e-4 * c.scale;
	return c;
}

/* One result: a table row, or a JSON line (--json). */
static void print_row(const struct merge_setup *s, const char *path, bool json,
		      const struct dds_bench_stats *sep, const struct dds_bench_stats *mrg,
		      const struct merge_check *c)
{
	int n = s->batch;

	if (!json) {
		printf("%-9s %-13s %-13s %4d %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.1f %9.1f "
		       "%6.3f %9.2e%s\n",
		       s->m->name, s->cut_a, s->cut_m, n, sep->med * 1e3, sep->min * 1e3,
		       sep->max * 1e3, mrg->med * 1e3, mrg->min * 1e3, mrg->max * 1e3, n / sep->med,
		       n / mrg->med, sep->med / mrg->med, c->max_err, c->ok ? "" : " MISMATCH");
		fflush(stdout);
		return;
	}
	const char *keys[] = {"{\"model\": ", ", \"model_path\": ", ", \"cut_a\": ", ", \"cut_m\": "};
	const char *vals[] = {s->m->name, path, s->cut_a, s->cut_m};
	for (int i = 0; i < 4; i++) {
		fputs(keys[i], stdout);
		dds_bench_json_str(vals[i]);
	}
	printf(", \"tail_a_gflop\": %.6f, \"tail_m_gflop\": %.6f, \"batch\": %d", s->gf_a, s->gf_m, n);
	const struct dds_bench_stats *st[] = {sep, mrg};
	for (int i = 0; i < 2; i++)
		printf(", \"%s_med_ms\": %.6f, \"%s_min_ms\": %.6f, \"%s_max_ms\": %.6f, "
		       "\"%s_req_per_s\": %.3f",
		       i ? "mrg" : "sep", st[i]->med * 1e3, i ? "mrg" : "sep", st[i]->min * 1e3,
		       i ? "mrg" : "sep", st[i]->max * 1e3, i ? "mrg" : "sep", n / st[i]->med);
	printf(", \"ratio\": %.4f, \"max_err\": %.3e, \"out_scale\": %.4e, \"exact\": %s, "
	       "\"ok\": %s}\n",
	       sep->med / mrg->med, c->max_err, c->scale, c->exact ? "true" : "false",
	       c->ok ? "true" : "false");
	fflush(stdout);
}

/* Time both ways at batch N, check, print. Returns 0, or -1 on a failed run or a mismatch. */
static int bench_batch(struct merge_setup *s, const struct dds_bench_opts *o, bool exact,
		       const char *path, int batch)
{
	static const dds_bench_round_fn rounds[2] = {round_separate, round_merged};
	struct dds_bench_stats st[2];
	struct dds_err err;

	s->batch = batch;
	if (dds_bench_time(o, 2, rounds, s, st, &err)) {
		fprintf(stderr, "merge_bench: %s, N %d: %s\n", s->m->name, batch, err.msg);
		return -1;
	}
	struct merge_check c = check_results(s, exact);
	print_row(s, path, o->json, &st[0], &st[1], &c);
	if (!c.ok)
		fprintf(stderr, "merge_bench: %s, N %d: merged results differ from separate ones: "
			"max error %.3e, scale %.3e (%s)\n", s->m->name, batch, c.max_err, c.scale,
			exact ? "bit for bit required" : "allowed 1e-4 of the scale");
	return c.ok ? 0 : -1;
}

/* One model (a dds_bench_model_fn): its two splits, plans and buffers, every N. Returns 0 or
 * -1 (message printed). */
static int bench_model(const struct dds_bench_opts *o, struct dds_backend *b,
		       const struct dds_model *m, const char *abs_path)
{
	struct merge_setup s = {.m = m};
	uint8_t *ta = malloc((size_t)m->n_layers), *tm = malloc((size_t)m->n_layers);
	bool exact = !strcmp(dds_backend_name(b), "cpu") && !o->cpu_batched;
	int rc = -1;

	if (!ta || !tm)
		fprintf(stderr, "merge_bench: out of memory\n");
	else if (!pick_splits(&s, ta, tm) && !make_plans(&s, b, ta, tm, o->max_batch)) {
		rc = make_buffers(&s, o->max_batch);
		if (rc)
			fprintf(stderr, "merge_bench: %s: out of memory\n", m->name);
	}
	for (int i = 0; i < o->n_batches && !rc; i++)
		rc = bench_batch(&s, o, exact, abs_path, o->batches[i]);
	setup_free(&s);
	free(ta);
	free(tm);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct dds_bench_tool tool = {
		"merge_bench", "2,8,32,64", "2,8", 2,
		"# ms per round of N requests (N/2 of each split); ratio = separate/merged median (> 1:"
		" merging faster)\n"
		"model     cut_a         cut_m            N   sep_med   sep_min   sep_max   mrg_med"
		"   mrg_min   mrg_max   sep_r/s   mrg_r/s  ratio   max_err\n",
		bench_model};
	return dds_bench_main(argc, argv, &tool);
}
