/* agent_main.c: dds-agent, what a device runs: calibrate, register, then per request decide the split and budget, run the head, send, receive, verify, report (docs/agent.md). */
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_int.h"
#include "dds_device.h"

enum { EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_SETUP = 3 };

/* What the run did, for the summary. */
struct stats {
	long requests, served, local, lost, refused, abandoned, busy, retries, rebuilds, probes;
	long verify_exact, verify_close, verify_mismatch;
	double *latency; /* served and local requests, seconds */
	long n_latency;
	bool stopped;
};

struct agent {
	struct dds_agent_opts o;
	struct dds_model *m;
	struct dds_engine *e;
	double *secs;        /* calibrated local time per layer */
	struct dds_agent_link link;
	bool link_open;
	struct dds_proto_reg_reply reply; /* limits from the node; work copied below */
	double *work;
	double up_bw;        /* uplink estimate, bytes/s */
	double up_bw_in_use; /* the one the device's envelope was built with */
	long local_streak;   /* all-local decisions since the last request sent (estimating) */
	bool probing;        /* the request in flight is a probe (see start_probe) */
	double probe_prev_bw; /* the estimate before the probe, restored if it gets no answer */
	struct dds_device *dev;
	uint8_t *payload;    /* cut tensors of one request (payload_cap bytes) */
	size_t payload_cap;
	float *input;        /* the raw input of the request in flight */
	struct stats st;
};

static void on_signal(int sig)
{
	(void)sig;
	dds_agent_stop = 1;
}

/* ---- init steps ---- */

static int step_model(struct agent *a, char *err, size_t len)
{
	struct dds_engine_opts eo = {.max_batch = 1, .threads = (int)a->o.threads,
				     .kernels = DDS_KERNELS_FAST};
	struct dds_err de;

	if (dds_model_load(a->o.model, a->o.weights, a->o.seed, &a->m, &de) ||
	    !(a->e = dds_engine_create(a->m, &eo, &de))) {
		snprintf(err, len, "%s", de.msg);
		return -1;
	}
	a->secs = calloc((size_t)a->m->n_layers, sizeof(double));
	a->input = malloc(a->m->in_bytes);
	if (!a->secs || !a->input) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	return 0;
}

static int step_calibration(struct agent *a, char *err, size_t len)
{
	return dds_agent_calibrate(a->m, a->e, (int)a->o.threads, a->o.calibration, 3, a->secs,
				   err, len);
}

static int step_link(struct agent *a, char *err, size_t len)
{
	if (dds_agent_link_open(&a->link, a->o.server_ip, a->o.port, a->o.device_id, a->o.key,
				(size_t)a->o.mtu, (uint64_t)a->o.timeout_ms * 1000000ull, err, len))
		return -1;
	a->link_open = true;
	fprintf(stderr, "dds-agent: device %u -> %s:%d, MTU %zu\n", a->o.device_id,
		a->o.server_ip, a->o.port, a->link.mtu);
	return 0;
}

/* Keep what the node said: price, limits and its server work (copied: ev points into the
 * link's datagram buffer). */
static int keep_reply(struct agent *a, const struct dds_proto_event *ev, char *err, size_t len)
{
	a->reply = ev->msg.u.reply;
	a->work = calloc(a->reply.n_work ? a->reply.n_work : 1, sizeof(double));
	if (!a->work) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	for (unsigned i = 0; i < a->reply.n_work; i++)
		a->work[i] = dds_proto_reg_work(&ev->msg, i);
	a->reply.work = a->work;
	return 0;
}

/* REGISTER -> REGISTER_REPLY, retried like a request. The uplink starts at --uplink-mbps, or
 * at the optimistic --uplink-start-mbps for the estimator (the exchange's two small datagrams
 * measure latency, not bandwidth: docs/agent.md). */
static int step_register(struct agent *a, char *err, size_t len)
{
	struct dds_agent_link *l = &a->link;

	for (long k = 0; k <= a->o.retries && !dds_agent_stop; k++) {
		uint64_t t0 = dds_agent_now_ns(), id;
		struct dds_proto_event ev;
		enum dds_agent_wait w;
		double rtt;

		if (dds_agent_send_register(l, a->m->hash, &id, err, len))
			return -1;
		w = dds_agent_wait(l, id, t0 + (uint64_t)a->o.timeout_ms * 1000000ull, NULL, NULL,
				   &ev);
		if (w == DDS_AGENT_BUSY || w == DDS_AGENT_TIMEOUT)
			continue;
		if (w == DDS_AGENT_ERROR) {
			snprintf(err, len, "the node refused the registration: %s",
				 dds_proto_reason_name(ev.msg.u.err.reason));
			return -1;
		}
		if (w != DDS_AGENT_REPLY)
			break;
		rtt = (double)(dds_agent_now_ns() - t0) * 1e-9;
		a->up_bw = (a->o.uplink_mbps > 0 ? a->o.uplink_mbps : a->o.uplink_start_mbps) * 1e6 / 8;
		fprintf(stderr, "dds-agent: registered: price %g, base price %g, work %s (%u), "
			"max payload %u, round trip %.3f ms, uplink %.3g MB/s (%s)\n",
			ev.msg.u.reply.price, ev.msg.u.reply.p0,
			ev.msg.u.reply.work_kind ? "regression" : "table", ev.msg.u.reply.n_work,
			ev.msg.u.reply.max_payload, rtt * 1e3, a->up_bw / 1e6,
			a->o.uplink_mbps > 0 ? "--uplink-mbps" : "start of the estimate");
		return keep_reply(a, &ev, err, len);
	}
	snprintf(err, len, "no REGISTER_REPLY from %s:%d after %ld tries", a->o.server_ip,
		 a->o.port, a->o.retries + 1);
	return -1;
}

/* (Re)build the device's decisions at the current uplink estimate, keeping the budget. */
static int build_device(struct agent *a, char *err, size_t len)
{
	struct dds_device_profile p = {
		.layer_seconds = a->secs, .up_bw = a->up_bw, .down_bw = a->up_bw,
		.work_kind = a->reply.work_kind, .work = a->work, .n_work = a->reply.n_work};
	struct dds_budget_cfg bc;
	struct dds_device *d;
	double x0 = a->dev ? dds_device_budget(a->dev)->x : a->o.x0;

	dds_budget_cfg_default(&bc);
	bc.lambda = a->o.lambda;
	if (dds_device_new(a->m, &p, a->o.rule, &bc, x0, &d, err, len))
		return -1;
	dds_device_free(a->dev);
	a->dev = d;
	a->up_bw_in_use = a->up_bw;
	return 0;
}

static int step_device(struct agent *a, char *err, size_t len)
{
	if (build_device(a, err, len))
		return -1;
	fprintf(stderr, "dds-agent: %s: %d layers, %d envelope pieces, all-local %.6f s, rule %s, "
		"x0 %g\n", a->m->name, a->m->n_layers, dds_device_n_pieces(a->dev),
		dds_device_t_local(a->dev), a->o.rule == DDS_DEVICE_EXACT ? "exact" : "momentum",
		dds_device_budget(a->dev)->x);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct agent *a, char *err, size_t len);
} init_steps[] = {
	{"model", step_model},
	{"calibration", step_calibration},
	{"link", step_link},
	{"register", step_register},
	{"device", step_device},
};

static void agent_free(struct agent *a)
{
	dds_device_free(a->dev);
	free(a->work);
	if (a->link_open)
		dds_agent_link_close(&a->link);
	dds_engine_free(a->e);
	dds_model_free(a->m);
	free(a->secs);
	free(a->payload);
	free(a->input);
	free(a->st.latency);
}

/* ---- one request ---- */

/* What happened to one request, for its report line. */
struct outcome {
	const char *what; /* "result", "local", "lost", "refused", "abandoned", "too_large" */
	int reason;       /* ERROR's reason */
	struct dds_device_plan plan; /* plan.local is not read after the exchange: an uplink
				      * update may rebuild the device that owns it */
	int n_local;                 /* layers run here */
	double price, head_s, latency_s;
	unsigned frags;
	long retries;
	uint64_t id;
	const char *verify; /* "exact", "close", "MISMATCH" or NULL */
	bool probe;         /* sent by start_probe's decision */
};

/* The raw input of request i: reproducible pseudo-random floats in [-1, 1). */
static void fill_input(struct agent *a, long i)
{
	uint64_t s = a->o.seed * 0x9e3779b97f4a7c15ull + (uint64_t)i;
	size_t n = dds_shape_numel(&a->m->in_shape);
	float *in = dds_engine_value(a->e, 0);

	for (size_t k = 0; k < n; k++) {
		uint64_t z = (s += 0x9e3779b97f4a7c15ull);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		in[k] = (float)((z ^ (z >> 31)) >> 40) * 0x1.0p-23f - 1.0f;
	}
	memcpy(a->input, in, a->m->in_bytes);
}

/* The cut tensors, in ascending value order, into a->payload (grown as needed); the
 * descriptor into tm. Returns 0, or -1 if out of memory. */
static int pack_request(struct agent *a, const struct dds_device_plan *p,
			struct dds_proto_tmsg *tm)
{
	size_t off = 0;

	if (p->payload_bytes > a->payload_cap) {
		uint8_t *np = realloc(a->payload, p->payload_bytes);

		if (!np)
			return -1;
		a->payload = np;
		a->payload_cap = p->payload_bytes;
	}

	memset(tm, 0, sizeof(*tm));
	tm->value = p->x;
	tm->n_tensors = (uint16_t)p->n_values;
	tm->payload_len = p->payload_bytes;
	for (int i = 0; i < p->n_values; i++) {
		const struct dds_shape *s = dds_model_value_shape(a->m, p->values[i]);
		size_t b = dds_shape_numel(s) * sizeof(float);

		tm->t[i] = (struct dds_proto_tensor){.value_id = (uint16_t)p->values[i],
						     .dtype = DDS_DTYPE_F32, .ndim = (uint8_t)s->ndim};
		for (int d = 0; d < s->ndim; d++)
			tm->t[i].dim[d] = (uint32_t)s->d[d];
		memcpy(a->payload + off, dds_engine_value(a->e, p->values[i]), b);
		off += b;
	}
	return 0;
}

/* The whole model run here on the same input, compared with the node's result: "exact" (same
 * bits), "close" (within the engine's accuracy, 1e-4 * max(1, |ref|): other kernels or
 * threads), else "MISMATCH". */
static const char *verify_result(struct agent *a, const void *buf, size_t len)
{
	size_t out_bytes = a->m->layers[a->m->output].out_bytes, n = out_bytes / sizeof(float);
	const float *got = buf, *ref;
	struct dds_err de;

	memcpy(dds_engine_value(a->e, 0), a->input, a->m->in_bytes);
	if (len != out_bytes || dds_engine_run(a->e, NULL, 1, &de))
		return "MISMATCH";
	ref = dds_engine_value(a->e, a->m->output + 1);
	if (memcmp(ref, got, out_bytes) == 0)
		return "exact";
	for (size_t i = 0; i < n; i++)
		if (!(fabsf(got[i] - ref[i]) <= 1e-4f * fmaxf(1.0f, fabsf(ref[i]))))
			return "MISMATCH";
	return "close";
}

static void on_price(void *ctx, double p)
{
	struct agent *a = ctx;
	char err[256];

	if (dds_device_update(a->dev, p, err, sizeof(err)))
		fprintf(stderr, "dds-agent: PRICE %g: %s\n", p, err);
}

/* Interruptible sleep (a signal ends it early). */
static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Rebuild the device when the estimate has moved by more than 25% from the one in use
 * (budget kept, momentum reset). */
static void rebuild_if_moved(struct agent *a)
{
	char err[256];

	if (fabs(log(a->up_bw / a->up_bw_in_use)) <= log(1.25))
		return;
	if (build_device(a, err, sizeof(err)))
		fprintf(stderr, "dds-agent: rebuilding at uplink %g B/s: %s\n", a->up_bw, err);
	else
		a->st.rebuilds++;
}

/* Uplink estimate from a request answered at the first try: the bytes both ways (with IPv4 +
 * UDP headers) over the round trip less the node's expected compute W_s / r (when that leaves
 * at least half of it), smoothed by an EWMA of weight 1/4; a probe's sample replaces the
 * estimate (it is the only news after a run of all-local decisions). */
static void update_uplink(struct agent *a, uint64_t bytes, unsigned dgrams, double rtt,
			  const struct dds_device_plan *p)
{
	double t = rtt - p->server_work / p->r, sample;

	if (a->o.uplink_mbps > 0 || !(rtt > 0))
		return;
	if (!(t >= rtt / 2))
		t = rtt;
	sample = (double)(bytes + 28ull * dgrams) / t;
	a->up_bw = a->probing ? sample : 0.75 * a->up_bw + 0.25 * sample;
	a->probing = false;
	rebuild_if_moved(a);
}

/* An all-local decision sends nothing, so it never corrects the estimate that made it: after
 * --probe-every of them in a row, the device is rebuilt at the optimistic start estimate (if
 * the current one is lower) and the next request is decided there (the exact rule first takes
 * its best response there). If it offloads, its answer measures the link (update_uplink). */
static void start_probe(struct agent *a)
{
	double start = a->o.uplink_start_mbps * 1e6 / 8;
	char err[256];

	a->local_streak = 0;
	if (!(a->up_bw < start))
		return;
	a->probe_prev_bw = a->up_bw;
	a->up_bw = start;
	if (build_device(a, err, sizeof(err))) {
		fprintf(stderr, "dds-agent: probe: rebuilding at uplink %g B/s: %s\n", start, err);
		a->up_bw = a->probe_prev_bw;
		return;
	}
	if (a->o.rule == DDS_DEVICE_EXACT &&
	    dds_device_update(a->dev, a->link.price, err, sizeof(err)))
		fprintf(stderr, "dds-agent: probe: budget: %s\n", err);
	a->probing = true;
}

/* After a request's exchange: a probe that got no sample (all-local after all, lost, refused)
 * puts the estimate back where it was. */
static void end_probe(struct agent *a)
{
	if (!a->probing)
		return;
	a->probing = false;
	a->up_bw = a->probe_prev_bw;
	rebuild_if_moved(a);
}

/* Send and wait, retrying a lost request with a new id; fills o and, on a result, *ev. */
static void exchange(struct agent *a, const struct dds_proto_tmsg *tm, struct outcome *o,
		     struct dds_proto_event *ev)
{
	struct dds_agent_link *l = &a->link;
	char err[256];

	o->what = "lost";
	for (o->retries = 0; o->retries <= a->o.retries; o->retries++) {
		uint64_t tx0 = l->tx_bytes, rx0 = l->rx_bytes, t0 = dds_agent_now_ns();
		enum dds_agent_wait w;

		if (dds_agent_send_request(l, a->m->hash, tm, a->payload, &o->id, &o->frags, err,
					   sizeof(err))) {
			fprintf(stderr, "dds-agent: %s\n", err);
			continue;
		}
		w = dds_agent_wait(l, o->id, t0 + (uint64_t)a->o.timeout_ms * 1000000ull, on_price,
				   a, ev);
		if (w == DDS_AGENT_RESULT) {
			o->what = "result";
			if (o->retries == 0)
				update_uplink(a, l->tx_bytes - tx0 + l->rx_bytes - rx0,
					      o->frags + 1, (double)(dds_agent_now_ns() - t0) * 1e-9,
					      &o->plan);
			return;
		}
		if (w == DDS_AGENT_ERROR) {
			o->what = "refused";
			o->reason = ev->msg.u.err.reason;
			return;
		}
		if (w == DDS_AGENT_STOPPED) {
			o->what = "abandoned";
			return;
		}
		if (w == DDS_AGENT_BUSY) {
			a->st.busy++;
			sleep_ms((long)ev->msg.u.busy.retry_ms);
		}
	}
	o->retries = a->o.retries;
}

static void count(struct agent *a, const struct outcome *o)
{
	struct stats *s = &a->st;

	s->requests++;
	s->retries += o->retries;
	if (!strcmp(o->what, "result") || !strcmp(o->what, "local"))
		s->latency[s->n_latency++] = o->latency_s;
	s->served += !strcmp(o->what, "result");
	s->probes += o->probe;
	s->local += !strcmp(o->what, "local");
	s->lost += !strcmp(o->what, "lost");
	s->refused += !strcmp(o->what, "refused") || !strcmp(o->what, "too_large");
	s->abandoned += !strcmp(o->what, "abandoned");
	if (o->verify) {
		s->verify_exact += !strcmp(o->verify, "exact");
		s->verify_close += !strcmp(o->verify, "close");
		s->verify_mismatch += !strcmp(o->verify, "MISMATCH");
	}
}

static void report(const struct agent *a, long i, const struct outcome *o)
{
	const struct dds_device_plan *p = &o->plan;
	int n_local = o->n_local;

	if (!a->o.json) {
		printf("req %ld: %-9s split piece %d local %d/%d values %d (%u B, %u frags) "
		       "x %.4g price %.4g head %.3f ms latency %.3f ms expected %.3f ms retries %ld",
		       i, o->what, p->piece, n_local, a->m->n_layers, p->n_values, p->payload_bytes,
		       o->frags, p->x, o->price, o->head_s * 1e3, o->latency_s * 1e3,
		       p->t_expected * 1e3, o->retries);
		if (o->reason)
			printf(" reason %s", dds_proto_reason_name(o->reason));
		if (o->probe)
			printf(" probe");
		printf("%s%s\n", o->verify ? " verify " : "", o->verify ? o->verify : "");
		fflush(stdout);
		return;
	}
	printf("{\"request\": %ld, \"request_id\": %" PRIu64 ", \"outcome\": \"%s\", "
	       "\"piece\": %d, \"local_layers\": %d, \"values\": [", i, o->id, o->what, p->piece,
	       n_local);
	for (int k = 0; k < p->n_values; k++)
		printf("%s%d", k ? ", " : "", p->values[k]);
	printf("], \"payload_bytes\": %u, \"fragments\": %u, \"x\": %.17g, \"r\": %.17g, "
	       "\"price\": %.17g, \"head_s\": %.9f, \"latency_s\": %.9f, \"expected_s\": %.9f, "
	       "\"retries\": %ld, \"reason\": \"%s\", \"probe\": %s, \"verify\": %s%s%s}\n",
	       p->payload_bytes, o->frags, p->x, p->r, o->price, o->head_s, o->latency_s,
	       p->t_expected, o->retries,
	       o->reason ? dds_proto_reason_name(o->reason) : "", o->probe ? "true" : "false",
	       o->verify ? "\"" : "",
	       o->verify ? o->verify : "null", o->verify ? "\"" : "");
	fflush(stdout);
}

/* One request: decide, run the head (or everything), send, wait, verify, update, report. */
static void one_request(struct agent *a, long i)
{
	struct outcome o = {.price = a->link.price};
	struct dds_proto_event ev;
	struct dds_proto_tmsg tm;
	struct dds_err de;
	char err[256];
	uint64_t t0;

	if (a->o.uplink_mbps == 0 && a->o.probe_every && a->local_streak >= a->o.probe_every)
		start_probe(a);
	if (dds_device_decide(a->dev, a->link.price, &o.plan, err, sizeof(err))) {
		fprintf(stderr, "dds-agent: decide: %s\n", err);
		end_probe(a);
		return;
	}
	a->local_streak = o.plan.all_local ? a->local_streak + 1 : 0;
	if (o.plan.all_local)
		end_probe(a); /* local even on the optimistic estimate: the link is not why */
	o.probe = a->probing;
	for (int k = 0; k < a->m->n_layers; k++)
		o.n_local += o.plan.local[k] != 0;
	fill_input(a, i);
	t0 = dds_agent_now_ns();
	if (dds_engine_run(a->e, o.plan.all_local ? NULL : o.plan.local, 1, &de)) {
		fprintf(stderr, "dds-agent: head: %s\n", de.msg);
		return;
	}
	o.head_s = (double)(dds_agent_now_ns() - t0) * 1e-9;
	if (o.plan.all_local) {
		o.what = "local";
	} else if (o.plan.payload_bytes > a->reply.max_payload) {
		o.what = "too_large";
	} else if (pack_request(a, &o.plan, &tm)) {
		o.what = "lost";
		fprintf(stderr, "dds-agent: out of memory for a %u-byte request\n",
			o.plan.payload_bytes);
	} else {
		exchange(a, &tm, &o, &ev);
	}
	o.latency_s = (double)(dds_agent_now_ns() - t0) * 1e-9;
	if (!strcmp(o.what, "result")) {
		o.price = ev.msg.u.frag.tm.value;
		if (a->o.verify)
			o.verify = verify_result(a, ev.buf, ev.len);
		free(ev.buf);
	}
	end_probe(a);
	/* The step after each inference, at the price last heard (a result carries it). */
	if (strcmp(o.what, "lost") && strcmp(o.what, "abandoned") &&
	    dds_device_update(a->dev, a->link.price, err, sizeof(err)))
		fprintf(stderr, "dds-agent: budget: %s\n", err);
	count(a, &o);
	report(a, i, &o);
}

/* ---- summary ---- */

static int cmp_double(const void *x, const void *y)
{
	double p = *(const double *)x, q = *(const double *)y;

	return (p > q) - (p < q);
}

/* The q-quantile of n sorted values (nearest rank), 0 if there are none. */
static double quantile(const double *v, long n, double q)
{
	long k = (long)ceil(q * (double)n) - 1;

	return n ? v[k < 0 ? 0 : k] : 0;
}

static void summary(struct agent *a)
{
	struct stats *s = &a->st;
	const struct dds_budget *b = dds_device_budget(a->dev);

	qsort(s->latency, (size_t)s->n_latency, sizeof(double), cmp_double);
	printf("%s\"summary\": {\"model\": \"%s\", \"requests\": %ld, \"served\": %ld, "
	       "\"local\": %ld, \"lost\": %ld, \"refused\": %ld, \"abandoned\": %ld, "
	       "\"busy\": %ld, \"retries\": %ld, \"verify_exact\": %ld, \"verify_close\": %ld, "
	       "\"verify_mismatch\": %ld, \"latency_p50_s\": %.9f, \"latency_p99_s\": %.9f, "
	       "\"latency_max_s\": %.9f, \"budget_x\": %.17g, \"sniffs\": %u, \"jumps\": %u, "
	       "\"price\": %.17g, \"uplink_Bps\": %.6g, \"rebuilds\": %ld, \"probes\": %ld, "
	       "\"tx_bytes\": %" PRIu64
	       ", \"rx_bytes\": %" PRIu64 ", \"stopped_by_signal\": %s}%s\n",
	       a->o.json ? "{" : "summary: {", a->m->name, s->requests, s->served, s->local,
	       s->lost, s->refused, s->abandoned, s->busy, s->retries, s->verify_exact,
	       s->verify_close, s->verify_mismatch, quantile(s->latency, s->n_latency, 0.5),
	       quantile(s->latency, s->n_latency, 0.99), quantile(s->latency, s->n_latency, 1.0),
	       b->x, b->sniffs, b->jumps, a->link.price, a->up_bw, s->rebuilds, s->probes,
	       a->link.tx_bytes,
	       a->link.rx_bytes, s->stopped ? "true" : "false", a->o.json ? "}" : "");
	fflush(stdout);
}

static int run(struct agent *a)
{
	a->st.latency = calloc(a->o.requests ? (size_t)a->o.requests : 1 << 20, sizeof(double));
	if (!a->st.latency)
		return EXIT_SETUP;
	for (long i = 0; (a->o.requests == 0 || i < a->o.requests) && i < (1 << 20) &&
			 !dds_agent_stop; i++) {
		one_request(a, i);
		if (a->o.interval_ms && !dds_agent_stop)
			sleep_ms(a->o.interval_ms);
	}
	a->st.stopped = dds_agent_stop;
	summary(a);
	if (a->st.verify_mismatch)
		return EXIT_FAILED;
	return !a->st.stopped && (a->st.lost || a->st.refused) ? EXIT_FAILED : 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits wake up */
	struct agent a = {0};
	char err[512];
	int rc;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = dds_agent_parse_opts(argc, argv, &a.o);
	if (rc) {
		dds_agent_usage(rc > 0 ? stdout : stderr);
		return rc > 0 ? 0 : EXIT_USAGE;
	}
	for (size_t k = 0; k < sizeof(init_steps) / sizeof(init_steps[0]); k++) {
		if (dds_agent_stop || init_steps[k].fn(&a, err, sizeof(err))) {
			fprintf(stderr, "dds-agent: init step '%s' failed: %s\n", init_steps[k].name,
				dds_agent_stop ? "stopped by a signal" : err);
			agent_free(&a);
			return EXIT_SETUP;
		}
	}
	rc = run(&a);
	agent_free(&a);
	return rc;
}
