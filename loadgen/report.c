/* report.c: dds-loadgen's progress lines, final text report (stdout) and JSON report (--json). */
#include "lg_int.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

void lg_report_progress(FILE *out, const struct lg_stats *s, uint64_t now, double price)
{
	const struct lg_counts *c = &s->all.total;
	struct dds_hist_summary h;

	dds_hist_summarize(s->all.e2e, &h);
	fprintf(out, "[%6.1f s] sent %lu answered %lu errors %lu lost %lu busy %lu | p50 %.3f ms "
		"p99 %.3f ms%s | price %.6g\n", (double)(now - s->t0_ns) / 1e9,
		(unsigned long)c->sent, (unsigned long)c->answered, (unsigned long)c->errors,
		(unsigned long)c->lost, (unsigned long)c->busy, ms(h.p50), ms(h.p99),
		now < s->meas_ns ? " (warmup)" : "", price);
}

/* Final budgets of model k's devices (k < 0: all): min, mean, max over devices that have one. */
static void final_budgets(const struct lg_fleet *f, int k, double *mn, double *mean, double *mx)
{
	int n = 0;
	double sum = 0;

	*mn = INFINITY;
	*mx = -INFINITY;
	for (int i = 0; i < f->n; i++) {
		double x;

		if (!f->dev[i].dd || (k >= 0 && f->dev[i].model != k))
			continue;
		x = dds_device_budget(f->dev[i].dd)->x;
		*mn = fmin(*mn, x);
		*mx = fmax(*mx, x);
		sum += x;
		n++;
	}
	*mean = n ? sum / n : NAN;
	if (!n)
		*mn = *mx = NAN;
}

static void text_counts(FILE *out, const struct lg_counts *c)
{
	fprintf(out, "requests %lu, local %lu, overflow %lu, sent %lu = answered %lu + errors %lu "
		"+ busy %lu + lost %lu; busy replies %lu, retries %lu, late %lu\n",
		(unsigned long)c->requests, (unsigned long)c->local, (unsigned long)c->overflow,
		(unsigned long)c->sent, (unsigned long)c->answered, (unsigned long)c->errors,
		(unsigned long)c->busy, (unsigned long)c->lost, (unsigned long)c->busy_replies,
		(unsigned long)c->retries, (unsigned long)c->late);
}

static void text_latency(FILE *out, const char *what, const struct dds_hist *h)
{
	struct dds_hist_summary s;

	dds_hist_summarize(h, &s);
	fprintf(out, "    %-10s ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (n %lu)\n",
		what, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.p999), ms(s.max),
		(unsigned long)s.count);
}

static void text_model(FILE *out, const struct lg_fleet *f, const struct lg_mstats *m, int k)
{
	double mn, mean, mx;

	fprintf(out, "  ");
	text_counts(out, &m->meas);
	for (int r = 1; r < DDS_PROTO_REASON__COUNT; r++)
		if (m->errors_by[r])
			fprintf(out, "    error %s: %lu\n", dds_proto_reason_name(r),
				(unsigned long)m->errors_by[r]);
	text_latency(out, "end-to-end", m->e2e);
	text_latency(out, "after send", m->net);
	final_budgets(f, k, &mn, &mean, &mx);
	fprintf(out, "    budget sent: min %.6g mean %.6g max %.6g; final: min %.6g mean %.6g max "
		"%.6g\n", m->x_n ? m->x_min : NAN, m->x_n ? m->x_sum / (double)m->x_n : NAN,
		m->x_n ? m->x_max : NAN, mn, mean, mx);
	if (k < 0)
		return;
	fprintf(out, "    splits (cut value ids: requests):");
	for (int j = 0; j < m->n_split; j++)
		fprintf(out, " %s: %lu", m->split[j].key, (unsigned long)m->split[j].count);
	if (m->split_other)
		fprintf(out, " other: %lu", (unsigned long)m->split_other);
	fprintf(out, "\n");
}

/* What ran and the rate it sustained (pcap-only: what was written). */
static void text_header(FILE *out, const struct lg_fleet *f, const struct lg_stats *s)
{
	const struct lg_opts *o = f->o;
	double secs = s->meas_s > 0 ? s->meas_s : 1;
	struct dds_hist_summary lag;

	dds_hist_summarize(s->lag, &lag);
	fprintf(out, "dds-loadgen: %d devices, %s loop%s, %.3f s measured after %.3f s warmup\n",
		f->n, o->loop == LG_OPEN ? "open" : "closed",
		o->loop == LG_CLOSED ? "" : o->arrival == LG_POISSON ? " (Poisson)" : " (fixed rate)",
		s->meas_s, o->warmup);
	if (o->pcap_only) {
		fprintf(out, "pcap-only: %lu requests written to %s over %.3f s of schedule; nothing "
			"was sent\n", (unsigned long)s->all.meas.sent, o->pcap, s->meas_s);
		return;
	}
	fprintf(out, "sustained: %.1f requests/s sent (offered %.1f/s), generator lag p99 %.3f ms "
		"max %.3f ms, send stalls %lu, send errors %lu\n", (double)s->all.meas.sent / secs,
		(double)s->all.meas.requests / secs, ms(lag.p99), ms(lag.max),
		(unsigned long)s->send_stalls, (unsigned long)s->send_errors);
	if (s->port.valid)
		fprintf(out, "io: dpdk, port %u (%s): ipackets %lu opackets %lu imissed %lu oerrors "
			"%lu\n", s->port.port, s->port.driver, (unsigned long)s->port.ipackets,
			(unsigned long)s->port.opackets, (unsigned long)s->port.imissed,
			(unsigned long)s->port.oerrors);
	else
		fprintf(out, "io: %s\n", s->io ? s->io : "none");
}

void lg_report_text(FILE *out, const struct lg_fleet *f, const struct lg_stats *s)
{
	const struct lg_opts *o = f->o;
	const struct lg_counts *t = &s->all.total;

	text_header(out, f, s);
	for (int k = 0; k < f->n_models; k++) {
		int n = 0;

		for (int i = 0; i < f->n; i++)
			n += f->dev[i].model == k;
		fprintf(out, "model %s (%d devices", f->model_name[k], n);
		if (o->loop == LG_OPEN)
			fprintf(out, ", %g requests/s each", o->rate[k]);
		fprintf(out, "):\n");
		text_model(out, f, &s->m[k], k);
	}
	fprintf(out, "all models:\n");
	text_model(out, f, &s->all, -1);
	if (s->n_price)
		fprintf(out, "price: %zu changes received, first %.6g, last %.6g\n", s->n_price,
			s->price[0].price, s->price[s->n_price - 1].price);
	for (int r = 1; r < DDS_PROTO_REASON__COUNT; r++)
		if (s->rx_drops[r])
			fprintf(out, "received and dropped (%s): %lu\n", dds_proto_reason_name(r),
				(unsigned long)s->rx_drops[r]);
	fprintf(out, "totals with warmup: ");
	text_counts(out, t);
	fprintf(out, "datagrams sent %lu, bytes %lu\n", (unsigned long)t->datagrams,
		(unsigned long)t->bytes);
}

/* ---- JSON ---- */

static json_t *j_num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *j_counts(const struct lg_counts *c)
{
	return json_pack("{sIsIsIsIsIsIsIsIsIsIsIsIsI}", "requests", (json_int_t)c->requests,
			 "local", (json_int_t)c->local, "overflow", (json_int_t)c->overflow,
			 "sent", (json_int_t)c->sent, "answered", (json_int_t)c->answered,
			 "errors", (json_int_t)c->errors, "busy", (json_int_t)c->busy,
			 "lost", (json_int_t)c->lost, "busy_replies", (json_int_t)c->busy_replies,
			 "retries", (json_int_t)c->retries, "late", (json_int_t)c->late,
			 "datagrams", (json_int_t)c->datagrams, "bytes", (json_int_t)c->bytes);
}

static json_t *j_latency(const struct dds_hist *h)
{
	struct dds_hist_summary s;

	dds_hist_summarize(h, &s);
	return json_pack("{sIsososososososo}", "count", (json_int_t)s.count, "mean",
			 j_num(s.count ? s.mean / 1e6 : NAN), "p50", json_real(ms(s.p50)), "p90",
			 json_real(ms(s.p90)), "p99", json_real(ms(s.p99)), "p99.9",
			 json_real(ms(s.p999)), "max", json_real(ms(s.max)), "min",
			 json_real(ms(s.min)));
}

/* [[ms, fraction of values <= ms], ...] over the non-empty buckets. */
static json_t *j_cdf(const struct dds_hist *h)
{
	json_t *a = json_array();
	uint64_t total = dds_hist_count(h), seen = 0, v, c;
	size_t st = 0;

	while (total && dds_hist_next_bucket(h, &st, &v, &c)) {
		seen += c;
		json_array_append_new(a, json_pack("[ff]", ms(v), (double)seen / (double)total));
	}
	return a;
}

static json_t *j_model(const struct lg_fleet *f, const struct lg_mstats *m, int k)
{
	json_t *o = json_object(), *errs = json_object(), *splits = json_object();
	double mn, mean, mx;

	for (int r = 1; r < DDS_PROTO_REASON__COUNT; r++)
		if (m->errors_by[r])
			json_object_set_new(errs, dds_proto_reason_name(r),
					    json_integer((json_int_t)m->errors_by[r]));
	for (int j = 0; j < m->n_split; j++)
		json_object_set_new(splits, m->split[j].key, json_integer((json_int_t)m->split[j].count));
	if (m->split_other)
		json_object_set_new(splits, "other", json_integer((json_int_t)m->split_other));
	final_budgets(f, k, &mn, &mean, &mx);
	json_object_set_new(o, "counts", j_counts(&m->meas));
	json_object_set_new(o, "errors_by_reason", errs);
	json_object_set_new(o, "splits", splits);
	json_object_set_new(o, "budget", json_pack("{sosososososo}", "min",
		j_num(m->x_n ? m->x_min : NAN), "mean", j_num(m->x_n ? m->x_sum / (double)m->x_n : NAN),
		"max", j_num(m->x_n ? m->x_max : NAN), "final_min", j_num(mn), "final_mean",
		j_num(mean), "final_max", j_num(mx)));
	json_object_set_new(o, "latency_ms", j_latency(m->e2e));
	json_object_set_new(o, "after_send_ms", j_latency(m->net));
	json_object_set_new(o, "cdf_ms", j_cdf(m->e2e));
	return o;
}

static json_t *j_config(const struct lg_fleet *f)
{
	const struct lg_opts *o = f->o;

	return json_pack("{sisssssfsfsfsIsssfsisf}", "devices", f->n, "loop",
			 o->loop == LG_OPEN ? "open" : "closed", "arrival",
			 o->arrival == LG_POISSON ? "poisson" : "fixed", "think_ms", o->think_ms, "duration_s", o->duration, "warmup_s", o->warmup,
			 "seed", (json_int_t)o->seed, "rule",
			 o->rule == DDS_DEVICE_EXACT ? "exact" : "momentum", "timeout_ms",
			 o->timeout_ms, "mtu", (int)o->mtu, "lambda", o->lambda);
}

static json_t *j_report(const struct lg_fleet *f, const struct lg_stats *s)
{
	json_t *root = json_object(), *models = json_array(), *price = json_array(), *all;
	json_t *rx_drops = json_object();
	struct dds_hist_summary lag;

	for (int r = 1; r < DDS_PROTO_REASON__COUNT; r++)
		if (s->rx_drops[r])
			json_object_set_new(rx_drops, dds_proto_reason_name(r),
					    json_integer((json_int_t)s->rx_drops[r]));
	for (int k = 0; k < f->n_models; k++) {
		json_t *m = j_model(f, &s->m[k], k);
		char hash[24];
		int n = 0;

		for (int i = 0; i < f->n; i++)
			n += f->dev[i].model == k;
		snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)f->model[k]->hash);
		json_object_set_new(m, "name", json_string(f->model_name[k]));
		json_object_set_new(m, "graph", json_string(f->o->models[k]));
		json_object_set_new(m, "hash", json_string(hash));
		json_object_set_new(m, "devices", json_integer(n));
		json_object_set_new(m, "rate_per_device", json_real(f->o->rate[k]));
		json_array_append_new(models, m);
	}
	for (size_t j = 0; j < s->n_price; j++)
		json_array_append_new(price, json_pack("{sfsoso}", "t",
			((double)s->price[j].t_ns - (double)s->t0_ns) / 1e9, "round",
			s->price[j].round < 0 ? json_null() : json_integer(s->price[j].round),
			"price", json_real(s->price[j].price)));
	all = j_model(f, &s->all, -1);
	json_object_del(all, "splits");
	dds_hist_summarize(s->lag, &lag);
	json_object_set_new(root, "config", j_config(f));
	json_object_set_new(root, "measured_s", json_real(s->meas_s));
	json_object_set_new(root, "models", models);
	json_object_set_new(root, "overall", all);
	json_object_set_new(root, "totals_with_warmup", j_counts(&s->all.total));
	json_object_set_new(root, "generator", json_pack("{sfsfsfsIsI}", "sent_per_s",
		s->meas_s > 0 ? (double)s->all.meas.sent / s->meas_s : 0.0, "lag_p99_ms",
		ms(lag.p99), "lag_max_ms", ms(lag.max), "send_stalls", (json_int_t)s->send_stalls,
		"send_errors", (json_int_t)s->send_errors));
	json_object_set_new(root, "price_timeline", price);
	json_object_set_new(root, "receive_drops", rx_drops);
	json_object_set_new(root, "price_points_dropped", json_integer((json_int_t)s->price_dropped));
	json_object_set_new(root, "io", json_string(s->io ? s->io : "none"));
	if (s->port.valid)
		json_object_set_new(root, "dpdk_port", json_pack("{sisssIsIsIsIsi}", "port",
			(int)s->port.port, "driver", s->port.driver, "ipackets",
			(json_int_t)s->port.ipackets, "opackets", (json_int_t)s->port.opackets,
			"imissed", (json_int_t)s->port.imissed, "oerrors", (json_int_t)s->port.oerrors,
			"mbufs_in_use", (int)s->port.mbufs_in_use));
	return root;
}

int lg_report_json(const char *path, const struct lg_fleet *f, const struct lg_stats *s,
		   char *err, size_t err_len)
{
	json_t *root = j_report(f, s);
	int rc = root ? json_dump_file(root, path, JSON_INDENT(1) | JSON_REAL_PRECISION(9)) : -1;

	json_decref(root);
	if (rc)
		return dds_fail(err, err_len, "--json %s: cannot write the report", path);
	return 0;
}
