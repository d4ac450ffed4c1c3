/* stats.c: dds-loadgen's counters, split tallies, budgets, latency histograms and price timeline. */
#include "lg_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int mstats_init(struct lg_mstats *m)
{
	memset(m, 0, sizeof(*m));
	m->x_min = INFINITY;
	m->x_max = -INFINITY;
	m->e2e = dds_hist_new(LG_HIST_MAX_NS);
	m->net = dds_hist_new(LG_HIST_MAX_NS);
	return m->e2e && m->net ? 0 : -1;
}

static void mstats_free(struct lg_mstats *m)
{
	dds_hist_free(m->e2e);
	dds_hist_free(m->net);
}

int lg_stats_init(struct lg_stats *s, int n_models, char *err, size_t err_len)
{
	int bad = 0;

	memset(s, 0, sizeof(*s));
	s->n_models = n_models;
	for (int k = 0; k < n_models; k++)
		bad |= mstats_init(&s->m[k]);
	bad |= mstats_init(&s->all);
	s->lag = dds_hist_new(LG_HIST_MAX_NS);
	if (bad || !s->lag) {
		lg_stats_free(s);
		return dds_fail(err, err_len, "out of memory for histograms");
	}
	return 0;
}

void lg_stats_free(struct lg_stats *s)
{
	for (int k = 0; k < s->n_models; k++)
		mstats_free(&s->m[k]);
	mstats_free(&s->all);
	dds_hist_free(s->lag);
	free(s->price);
	memset(s, 0, sizeof(*s));
}

void lg_stats_bump(struct lg_stats *s, int model, bool measured, size_t field_off)
{
	struct lg_mstats *ms[2] = {&s->m[model], &s->all};

	for (int i = 0; i < 2; i++) {
		(*(uint64_t *)((char *)&ms[i]->total + field_off))++;
		if (measured)
			(*(uint64_t *)((char *)&ms[i]->meas + field_off))++;
	}
}

void lg_stats_start(struct lg_stats *s, int model, uint64_t start, uint64_t now)
{
	bool measured = start >= s->meas_ns;

	LG_COUNT(s, model, measured, requests);
	if (measured)
		dds_hist_record(s->lag, now > start ? now - start : 0);
}

void lg_stats_datagram(struct lg_stats *s, int model, size_t bytes)
{
	LG_COUNT(s, model, false, datagrams);
	s->m[model].total.bytes += bytes;
	s->all.total.bytes += bytes;
}

static void split_key(const int *values, int n, char *key, size_t len)
{
	size_t off = 0;

	key[0] = 0;
	for (int i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(key + off, len - off, "%s%d", i ? "+" : "", values[i]);
}

static void split_count(struct lg_mstats *m, const char *key)
{
	for (int i = 0; i < m->n_split; i++)
		if (!strcmp(m->split[i].key, key)) {
			m->split[i].count++;
			return;
		}
	if (m->n_split == LG_MAX_SPLITS) {
		m->split_other++;
		return;
	}
	snprintf(m->split[m->n_split].key, sizeof(m->split[0].key), "%s", key);
	m->split[m->n_split++].count = 1;
}

static void budget_count(struct lg_mstats *m, double x)
{
	m->x_min = fmin(m->x_min, x);
	m->x_max = fmax(m->x_max, x);
	m->x_sum += x;
	m->x_n++;
}

void lg_stats_sent(struct lg_stats *s, int model, bool measured, double x, const int *values,
		   int n)
{
	char key[sizeof(s->all.split[0].key)];

	LG_COUNT(s, model, measured, sent);
	if (!measured)
		return;
	split_key(values, n, key, sizeof(key));
	split_count(&s->m[model], key);
	budget_count(&s->m[model], x);
	budget_count(&s->all, x);
}

void lg_stats_end(struct lg_stats *s, int model, bool measured, enum lg_outcome o, int reason,
		  uint64_t start, uint64_t sent, uint64_t done)
{
	switch (o) {
	case LG_ANSWERED:
		LG_COUNT(s, model, measured, answered);
		if (measured) {
			uint64_t e2e = done > start ? done - start : 0, net = done > sent ? done - sent : 0;

			dds_hist_record(s->m[model].e2e, e2e);
			dds_hist_record(s->all.e2e, e2e);
			dds_hist_record(s->m[model].net, net);
			dds_hist_record(s->all.net, net);
		}
		break;
	case LG_ERROR:
		LG_COUNT(s, model, measured, errors);
		if (measured && reason >= 0 && reason < DDS_PROTO_REASON__COUNT) {
			s->m[model].errors_by[reason]++;
			s->all.errors_by[reason]++;
		}
		break;
	case LG_BUSY:
		LG_COUNT(s, model, measured, busy);
		break;
	case LG_LOST:
		LG_COUNT(s, model, measured, lost);
		break;
	}
}

void lg_stats_price(struct lg_stats *s, uint64_t t, int64_t round, double price)
{
	if (s->n_price && s->price[s->n_price - 1].price == price && round < 0)
		return;
	if (s->n_price == s->cap_price) {
		size_t cap = s->cap_price ? 2 * s->cap_price : 256;
		struct lg_price_pt *p = cap <= 1000000 ? realloc(s->price, cap * sizeof(*p)) : NULL;

		if (!p) {
			s->price_dropped++;
			return;
		}
		s->price = p;
		s->cap_price = cap;
	}
	s->price[s->n_price++] = (struct lg_price_pt){.t_ns = t, .round = round, .price = price};
}
