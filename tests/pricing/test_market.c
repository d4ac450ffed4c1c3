/* test_market.c: the market against a plain reference model, its reason codes, its clock, and
 * lock-free readers racing the round writer. */
#include "../check_main.h"
#include "dds_pricing.h"
#include "test_util.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct dds_pricing *make(uint32_t max_dev, uint32_t expire, double R, double p0)
{
	struct dds_pricing_cfg c;
	char err[128];
	struct dds_pricing *pr;

	dds_pricing_cfg_default(&c);
	c.max_devices = max_dev;
	c.expire_rounds = expire;
	c.capacity = R;
	c.base_price = p0;
	c.budget_cap = 1000;
	c.round_ns = 100;
	pr = dds_pricing_create(&c, err, sizeof(err));
	ck_assert_msg(pr, "create: %s", err);
	return pr;
}

START_TEST(reasons)
{
	struct dds_pricing *pr = make(4, 3, 10, 1);
	struct dds_pricing_stats st;
	const struct {
		double x;
		enum dds_pricing_reason want;
	} c[] = {
		{ -1, DDS_PRICING_NEGATIVE },   { -1e-300, DDS_PRICING_NEGATIVE },
		{ NAN, DDS_PRICING_NAN },       { -NAN, DDS_PRICING_NAN },
		{ INFINITY, DDS_PRICING_INFINITE }, { -INFINITY, DDS_PRICING_INFINITE },
		{ nextafter(1000, 2000), DDS_PRICING_OVER_CAP }, { 1e300, DDS_PRICING_OVER_CAP },
		{ 1000, DDS_PRICING_OK },       { 0, DDS_PRICING_OK }, { -0.0, DDS_PRICING_OK },
	};
	uint64_t want_rej[DDS_PRICING_REASON__COUNT] = { 0 }, want_ok = 0;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		enum dds_pricing_reason r = dds_pricing_submit(pr, 7, c[i].x);

		ck_assert_msg(r == c[i].want, "x=%g: got %s, want %s", c[i].x,
			      dds_pricing_reason_str(r), dds_pricing_reason_str(c[i].want));
		if (r)
			want_rej[r]++;
		else
			want_ok++;
	}
	dds_pricing_stats(pr, &st);
	ck_assert_uint_eq(st.accepted, want_ok);
	for (int i = 1; i < DDS_PRICING_REASON__COUNT; i++)
		ck_assert_uint_eq(st.rejected[i], want_rej[i]);
	for (int i = 0; i <= DDS_PRICING_REASON__COUNT; i++)
		ck_assert_ptr_nonnull(dds_pricing_reason_str((enum dds_pricing_reason)i));
	dds_pricing_free(pr);
}
END_TEST

START_TEST(bad_config)
{
	struct dds_pricing_cfg c;
	char err[128];

	dds_pricing_cfg_default(&c);
	c.capacity = 0;
	ck_assert_ptr_null(dds_pricing_create(&c, err, sizeof(err)));
	ck_assert_msg(strstr(err, "capacity"), "%s", err);
	dds_pricing_cfg_default(&c);
	c.base_price = NAN;
	ck_assert_ptr_null(dds_pricing_create(&c, err, sizeof(err)));
	ck_assert_msg(strstr(err, "base_price"), "%s", err);
	dds_pricing_cfg_default(&c);
	c.max_devices = 0;
	ck_assert_ptr_null(dds_pricing_create(&c, NULL, 0));
	dds_pricing_cfg_default(&c);
	c.expire_rounds = 0;
	ck_assert_ptr_null(dds_pricing_create(&c, err, sizeof(err)));
	ck_assert_msg(strstr(err, "expire_rounds"), "%s", err);
}
END_TEST

/* --- The reference model: the rules of docs/pricing.md, written the plain way. ----------- */

#define REF_MAX 512

/* Devices in the table and pending joins (one per device, its latest budget). */
struct ref {
	uint32_t max, expire;
	double R, p0;
	uint64_t open;
	int n;
	uint32_t dev[REF_MAX];
	double x[REF_MAX];
	uint64_t seen[REF_MAX];
	int nq;
	uint32_t qdev[REF_MAX];
	double qx[REF_MAX];
};

static int ref_find(const uint32_t *devs, int n, uint32_t dev)
{
	for (int i = 0; i < n; i++)
		if (devs[i] == dev)
			return i;
	return -1;
}

/* What the rules say about a submit. A new device's join may also get DDS_PRICING_BUSY when
 * its join cells are taken (hash collisions the model does not know): got says what the
 * market said, and the model follows it then. */
static enum dds_pricing_reason ref_submit(struct ref *m, uint32_t dev, double x,
					  enum dds_pricing_reason got)
{
	int i = ref_find(m->dev, m->n, dev);

	if (isnan(x))
		return DDS_PRICING_NAN;
	if (isinf(x))
		return DDS_PRICING_INFINITE;
	if (x < 0)
		return DDS_PRICING_NEGATIVE;
	if (x > 1000)
		return DDS_PRICING_OVER_CAP;
	if (i >= 0) {
		m->x[i] = x;
		m->seen[i] = m->open;
		return DDS_PRICING_OK;
	}
	if ((uint32_t)m->n >= m->max)
		return DDS_PRICING_TABLE_FULL;
	if (got == DDS_PRICING_BUSY)
		return got;
	i = ref_find(m->qdev, m->nq, dev);
	if (i < 0) {
		i = m->nq++;
		m->qdev[i] = dev;
	}
	m->qx[i] = x;
	return DDS_PRICING_OK;
}

/* Close: admit the pending joins, expire the silent, return p and the sum. When more devices
 * ask to join than there is room for, which ones get in is the market's choice (rd). */
static double ref_close(struct ref *m, const struct dds_pricing_round *rd, double *sum)
{
	int room = (int)m->max - m->n, admitted = 0;
	bool all_fit = m->nq <= room;

	for (int q = 0; q < m->nq; q++) {
		bool chosen = false;

		for (uint32_t j = 0; j < rd->n_active; j++)
			chosen |= rd->entry[j].device == m->qdev[q];
		if (!all_fit && !chosen)
			continue;
		ck_assert_int_lt(m->n, (int)m->max);
		m->dev[m->n] = m->qdev[q];
		m->x[m->n] = m->qx[q];
		m->seen[m->n++] = m->open;
		admitted++;
	}
	ck_assert_int_eq(admitted, all_fit ? m->nq : room);
	ck_assert_int_eq((int)rd->n_joined, admitted);
	m->nq = 0;
	for (int i = 0; i < m->n; i++) {
		if (m->open - m->seen[i] < m->expire)
			continue;
		m->n--;
		m->dev[i] = m->dev[m->n];
		m->x[i] = m->x[m->n];
		m->seen[i] = m->seen[m->n];
		i--;
	}
	*sum = 0;
	for (int i = 0; i < m->n; i++)
		*sum += m->x[i];
	m->open++;
	return fmax(m->p0, *sum / m->R);
}

static int near(double a, double b)
{
	return fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b)) + 1e-300;
}

/* Compare a closed round and what readers see with the reference. */
static void check_round(struct ref *m, struct dds_pricing *pr, const struct dds_pricing_round *rd,
			double p, double sum, uint64_t round)
{
	struct dds_pricing_entry e[REF_MAX];
	struct dds_price_view v;
	size_t n;

	ck_assert_uint_eq(rd->round, round);
	ck_assert_int_eq((int)rd->n_active, m->n);
	ck_assert_msg(near(rd->price, p) && near(rd->sum_budget, sum), "round %llu: p %g vs %g",
		      (unsigned long long)round, rd->price, p);
	for (uint32_t j = 0; j < rd->n_active; j++) {
		int i = ref_find(m->dev, m->n, rd->entry[j].device);
		double x, r;

		ck_assert_msg(i >= 0, "device %u should not be active", rd->entry[j].device);
		ck_assert(rd->entry[j].budget == m->x[i] && rd->entry[j].charge == m->x[i]);
		ck_assert(near(rd->entry[j].allocation, m->x[i] / p));
		ck_assert(dds_pricing_read_device(pr, m->dev[i], &v, &x, &r));
		ck_assert(x == m->x[i] && r == rd->entry[j].allocation && v.round == round);
	}
	n = dds_pricing_read_all(pr, &v, e, REF_MAX);
	ck_assert_uint_eq(n, rd->n_active);
	ck_assert(v.price == rd->price && v.sum_budget == rd->sum_budget);
	for (size_t j = 0; j < n; j++)
		ck_assert(e[j].device == rd->entry[j].device && e[j].budget == rd->entry[j].budget &&
			  e[j].allocation == rd->entry[j].allocation &&
			  e[j].charge == rd->entry[j].charge);
}

START_TEST(against_reference)
{
	uint64_t seed = 1234 + (uint64_t)_i;
	struct ref m = { .max = 16, .expire = 3, .R = 50, .p0 = 0.5, .open = 1 };
	struct dds_pricing *pr = make(m.max, m.expire, m.R, m.p0);
	struct dds_pricing_stats st;
	struct dds_pricing_round rd;
	enum dds_pricing_reason got;
	double x, sum, p;

	for (uint64_t round = 1; round <= 400; round++) {
		int subs = (int)(dds_rand_unit(&seed) * 40);

		for (int s = 0; s < subs; s++) {
			/* A few regulars, many occasional devices: joins, expiry, a full table. */
			uint32_t dev = dds_rand_unit(&seed) < 0.5 ? (uint32_t)(dds_rand_unit(&seed) * 8)
							     : (uint32_t)(dds_rand_unit(&seed) * 300) * 7919;
			double u = dds_rand_unit(&seed);

			x = u < 0.02 ? NAN : u < 0.04 ? -1 : u < 0.06 ? 2000 : dds_rand_unit(&seed) * 20;
			got = dds_pricing_submit(pr, dev, x);
			ck_assert_int_eq(got, ref_submit(&m, dev, x, got));
		}
		dds_pricing_close_round(pr, &rd);
		p = ref_close(&m, &rd, &sum);
		check_round(&m, pr, &rd, p, sum, round);
	}
	dds_pricing_stats(pr, &st);
	ck_assert_uint_gt(st.rejected[DDS_PRICING_TABLE_FULL], 0); /* the paths were exercised */
	ck_assert_uint_eq(st.devices, (uint64_t)m.n);
	dds_pricing_free(pr);
}
END_TEST

START_TEST(full_at_close)
{
	struct dds_pricing *pr = make(3, 1, 10, 1);
	struct dds_pricing_round rd;
	struct dds_pricing_stats st;
	unsigned out = 0x1f;

	/* Five new devices queue while the table is empty; only three fit at the close. */
	for (uint32_t d = 0; d < 5; d++)
		ck_assert_int_eq(dds_pricing_submit(pr, d, 1), DDS_PRICING_OK);
	dds_pricing_close_round(pr, &rd);
	ck_assert_uint_eq(rd.n_active, 3);
	ck_assert_uint_eq(rd.n_joined, 3);
	dds_pricing_stats(pr, &st);
	ck_assert_uint_eq(st.join_dropped_full, 2);
	for (uint32_t j = 0; j < rd.n_active; j++)
		out &= ~(1u << rd.entry[j].device); /* which ones got in is the market's choice */
	ck_assert_int_eq(__builtin_popcount(out), 2);
	ck_assert_int_eq(dds_pricing_submit(pr, (uint32_t)__builtin_ctz(out), 1),
			 DDS_PRICING_TABLE_FULL);
	/* Nobody speaks for a round (expire_rounds = 1): all leave, room again. */
	dds_pricing_close_round(pr, &rd);
	ck_assert_uint_eq(rd.n_active, 0);
	ck_assert_uint_eq(rd.n_expired, 3);
	ck_assert(rd.price == 1);
	ck_assert_int_eq(dds_pricing_submit(pr, 4, 1), DDS_PRICING_OK);
	dds_pricing_free(pr);
}
END_TEST

START_TEST(round_clock)
{
	struct dds_pricing *pr = make(4, 3, 10, 1);
	struct dds_pricing_round rd;
	struct dds_pricing_stats st;
	/* round_ns = 100: the first poll starts the clock. */
	const struct {
		uint64_t now;
		int closes;
	} c[] = { { 1000, 0 }, { 1050, 0 }, { 1099, 0 }, { 1100, 1 }, { 1150, 0 },
		  { 1210, 1 }, { 1299, 0 }, { 1300, 1 }, { 2000, 1 }, { 2050, 0 }, { 2100, 1 } };

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		ck_assert_msg(dds_pricing_poll(pr, c[i].now, &rd) == c[i].closes, "at %llu",
			      (unsigned long long)c[i].now);
	ck_assert_uint_eq(rd.round, 5);
	dds_pricing_stats(pr, &st);
	ck_assert_uint_eq(st.late_closes, 1); /* 2000 was 600 past the deadline of 1400 */
	dds_pricing_free(pr);
}
END_TEST

/* --- Readers racing the writer. --------------------------------------------------------- */

#define MT_STEADY 32
#define MT_CHURN 16
#define MT_ROUNDS 5000
#define MT_R 100.0
#define MT_P0 1.0

struct mt {
	struct dds_pricing *pr;
	atomic_bool done;
	atomic_ulong snapshots;
	atomic_ulong bad;
	char why[256];
};

/* Device i's budget in round k: every round changes every budget; every third round the
 * demand is below capacity, so both p = p0 and p > p0 are published. */
static double mt_budget(uint64_t k, uint32_t i)
{
	return (double)((k * 31 + i * 17) % 97 + 1) * (k % 3 == 0 ? 0.001 : 1.0);
}

static void mt_fail(struct mt *t, const char *what, uint64_t round)
{
	if (atomic_fetch_add(&t->bad, 1) == 0)
		snprintf(t->why, sizeof(t->why), "%s (round %llu)", what,
			 (unsigned long long)round);
}

/* Check one whole snapshot: every number must come from the same round. Returns what is
 * wrong, or NULL. */
static const char *mt_check(const struct dds_price_view *v, const struct dds_pricing_entry *e,
			    size_t n)
{
	double sum = 0, sum_r = 0;
	uint32_t steady = 0;

	if (v->round == 0)
		return NULL;
	if (n != v->n_active)
		return "entry count differs from n_active";
	for (size_t j = 0; j < n; j++) {
		sum += e[j].budget;
		sum_r += e[j].allocation;
		if (e[j].device < MT_STEADY && e[j].budget != mt_budget(v->round, e[j].device))
			return "a budget from another round";
		steady += e[j].device < MT_STEADY;
		if (e[j].allocation != e[j].budget / v->price)
			return "r_i != x_i / p";
	}
	if (steady != MT_STEADY)
		return "a steady device missing";
	if (sum != v->sum_budget)
		return "sum of x_i differs from the published sum";
	if (v->price != fmax(MT_P0, sum / MT_R))
		return "p != max(p0, sum / R)";
	if (v->price > MT_P0 && fabs(sum_r - MT_R) > 1e-9 * MT_R)
		return "sum r_i != R while p > p0";
	return NULL;
}

static void *mt_reader(void *arg)
{
	struct mt *t = arg;
	struct dds_pricing_entry e[MT_STEADY + MT_CHURN];
	struct dds_price_view v, w;
	uint64_t seed = (uint64_t)(uintptr_t)&v, last = 0;
	double x, r;

	while (!atomic_load(&t->done)) {
		size_t n = dds_pricing_read_all(t->pr, &v, e, MT_STEADY + MT_CHURN);
		uint32_t i = (uint32_t)(dds_rand_unit(&seed) * MT_STEADY);
		const char *bad = mt_check(&v, e, n);

		if (bad)
			mt_fail(t, bad, v.round);
		if (v.round < last)
			mt_fail(t, "round went backwards", v.round);
		last = v.round;
		if (dds_pricing_read_device(t->pr, i, &w, &x, &r) &&
		    (x != mt_budget(w.round, i) || r != x / w.price))
			mt_fail(t, "read_device mixed rounds", w.round);
		atomic_fetch_add(&t->snapshots, 1);
	}
	return NULL;
}

/* Occasional devices: they come and go (expire_rounds = 2), exercising join and retire
 * while readers read and the writer closes. */
static void *mt_churn(void *arg)
{
	struct mt *t = arg;
	uint64_t seed = (uint64_t)(uintptr_t)&seed;

	while (!atomic_load(&t->done)) {
		uint32_t d = 1000 + (uint32_t)(dds_rand_unit(&seed) * MT_CHURN);
		enum dds_pricing_reason r = dds_pricing_submit(t->pr, d, dds_rand_unit(&seed) * 10);

		if (r != DDS_PRICING_OK && r != DDS_PRICING_BUSY)
			mt_fail(t, dds_pricing_reason_str(r), 0);
		for (volatile int spin = (int)(dds_rand_unit(&seed) * 20000); spin > 0; spin--)
			;
	}
	return NULL;
}

START_TEST(readers_race_writer)
{
	/* One spare slot: a churn device can rejoin while its old slot is being retired. */
	struct mt t = { .pr = make(MT_STEADY + MT_CHURN + 1, 2, MT_R, MT_P0) };
	pthread_t rd[2], ch;
	struct dds_pricing_round round;
	struct dds_pricing_stats st;

	ck_assert_int_eq(pthread_create(&ch, NULL, mt_churn, &t), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&rd[i], NULL, mt_reader, &t), 0);
	for (uint64_t k = 1; k <= MT_ROUNDS; k++) {
		for (uint32_t i = 0; i < MT_STEADY; i++)
			ck_assert_int_eq(dds_pricing_submit(t.pr, i, mt_budget(k, i)),
					 DDS_PRICING_OK);
		dds_pricing_close_round(t.pr, &round);
		ck_assert_uint_eq(round.round, k);
	}
	atomic_store(&t.done, true);
	pthread_join(ch, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(rd[i], NULL);
	dds_pricing_stats(t.pr, &st);
	ck_assert_msg(atomic_load(&t.bad) == 0, "%lu bad snapshots, first: %s",
		      atomic_load(&t.bad), t.why);
	ck_assert_uint_gt(atomic_load(&t.snapshots), 100);
	ck_assert_uint_gt(st.accepted, MT_STEADY * MT_ROUNDS);
	dds_pricing_free(t.pr);
}
END_TEST

int main(void)
{
	struct dds_check_case cases[] = {
		{ .name = "market", .timeout = 240, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(reasons),
			DDS_CHECK_TEST(bad_config),
			DDS_CHECK_LOOP(against_reference, 0, 8),
			DDS_CHECK_TEST(full_at_close),
			DDS_CHECK_TEST(round_clock),
			DDS_CHECK_TEST(readers_race_writer)) },
		{ .name = NULL },
	};

	return dds_check_main("pricing-market", cases, CK_FORK_GETENV);
}
