/* test_hist.c: the histogram (stats/dds_hist.h) against brute force on sorted arrays of the
 * recorded values: quantiles, extremes, mean, buckets, merging, baselines, and a live reader. */
#include "dds_hist.h"
#include "../check_main.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_62 (UINT64_C(1) << 62)

static uint64_t rnd(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static double unif(uint64_t *s) /* in (0, 1) */
{
	return ((double)(rnd(s) >> 11) + 0.5) / 9007199254740992.0;
}

static double normal(uint64_t *s)
{
	return sqrt(-2 * log(unif(s))) * cos(2 * M_PI * unif(s));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* The brute-force model: the values as the histogram should see them (clamped to the maximum),
 * sorted, with how many were above it. */
struct truth {
	uint64_t *v;
	size_t n;
	uint64_t max_value, overflow;
};

static void truth_init(struct truth *t, const uint64_t *vals, size_t n, uint64_t max_value)
{
	t->v = malloc((n ? n : 1) * sizeof(*t->v));
	ck_assert_ptr_nonnull(t->v);
	t->n = n;
	t->max_value = max_value;
	t->overflow = 0;
	for (size_t i = 0; i < n; i++) {
		t->overflow += vals[i] > max_value;
		t->v[i] = vals[i] > max_value ? max_value : vals[i];
	}
	qsort(t->v, n, sizeof(*t->v), cmp_u64);
}

/* x's bucket [*lo, *top], found by halving instead of counting bits: exact below 2048, else
 * buckets 2^k wide where x / 2^k falls in [1024, 2048); the top bucket ends at the maximum. */
static void brute_bucket(uint64_t x, uint64_t max_value, uint64_t *lo, uint64_t *top)
{
	uint64_t width = 1;

	while (x >= 2048 && x / width >= 2048)
		width *= 2;
	*lo = x - x % width;
	*top = *lo + width - 1 < max_value ? *lo + width - 1 : max_value;
}

static uint64_t brute_top(uint64_t x, uint64_t max_value)
{
	uint64_t lo, top;

	brute_bucket(x, max_value, &lo, &top);
	return top;
}

/* The ceil(q n)-th smallest, 1-based, at least the first. */
static uint64_t brute_quantile(const struct truth *t, double q)
{
	size_t rank = (size_t)ceil(q * (double)t->n);

	return t->v[(rank ? rank : 1) - 1];
}

/* The reported quantile: within 0.1% above the exact order statistic, and precisely the top of
 * its bucket, never above the reported maximum (checked apart, by the caller). */
static void check_quantile(const struct dds_hist *h, const struct truth *t, double q)
{
	uint64_t e = brute_quantile(t, q), v = dds_hist_quantile(h, q);
	uint64_t want = brute_top(e, t->max_value);

	if (want > dds_hist_max(h))
		want = dds_hist_max(h);
	ck_assert_msg(e <= v && v <= e + e / 1024 + 1,
		      "q=%g: %llu not within 0.1%% above the exact %llu", q, (unsigned long long)v,
		      (unsigned long long)e);
	ck_assert_msg(v == want, "q=%g: %llu, the bucket of %llu ends at %llu", q,
		      (unsigned long long)v, (unsigned long long)e, (unsigned long long)want);
}

static void check_quantiles(const struct dds_hist *h, const struct truth *t)
{
	for (int i = 0; i <= 2000; i++)
		check_quantile(h, t, i / 2000.0);
	for (double q = 0.99; q < 1 - 1e-12; q = 1 - (1 - q) / 10)
		check_quantile(h, t, q);
}

/* The buckets the iterator gives are exactly the groups of equal brute_top in the sorted values. */
static void check_buckets(const struct dds_hist *h, const struct truth *t)
{
	size_t state = 0, i = 0;
	uint64_t value, count, total = 0;

	while (dds_hist_next_bucket(h, &state, &value, &count)) {
		uint64_t top;
		size_t j = i;

		ck_assert_uint_lt(i, t->n);
		top = brute_top(t->v[i], t->max_value);
		while (j < t->n && brute_top(t->v[j], t->max_value) == top)
			j++;
		ck_assert_uint_eq(value, top);
		ck_assert_uint_eq(count, j - i);
		total += count;
		i = j;
	}
	ck_assert_uint_eq(i, t->n);
	ck_assert_uint_eq(total, dds_hist_count(h));
	ck_assert(!dds_hist_next_bucket(h, &state, &value, &count));
}

static double brute_mean(const struct truth *t)
{
	long double s = 0;

	for (size_t i = 0; i < t->n; i++)
		s += t->v[i];
	return (double)(s / t->n);
}

/* Within 2^-11 of the exact mean, and precisely the mean of the values' bucket middles. */
static void check_mean(const struct dds_hist *h, const struct truth *t)
{
	double e = brute_mean(t), m = dds_hist_mean(h);
	long double mid = 0;

	for (size_t i = 0; i < t->n; i++) {
		uint64_t lo, top;

		brute_bucket(t->v[i], t->max_value, &lo, &top);
		mid += ((long double)lo + top) / 2;
	}
	mid /= t->n;
	ck_assert_msg(fabs(m - e) <= e / 2048 + 1e-9 * e + 1e-9, "mean %.17g, exact %.17g", m, e);
	ck_assert_msg(fabsl(m - mid) <= 1e-9L * mid + 1e-9L, "mean %.17g, of the middles %.17Lg", m,
		      mid);
}

/* Everything a histogram fed exactly t's values must report; exact_extremes: min and max as
 * recorded (a writer's own histogram, a snapshot or a sum) or only to the bucket (after sub). */
static void check_against(const struct dds_hist *h, const struct truth *t, bool exact_extremes)
{
	struct dds_hist_summary s;

	ck_assert_uint_eq(dds_hist_count(h), t->n);
	ck_assert_uint_eq(dds_hist_overflow(h), t->overflow);
	if (t->n == 0) {
		ck_assert_uint_eq(dds_hist_min(h), 0);
		ck_assert_uint_eq(dds_hist_max(h), 0);
		ck_assert_uint_eq(dds_hist_quantile(h, 0.5), 0);
		ck_assert(dds_hist_mean(h) == 0);
		return;
	}
	if (exact_extremes) {
		ck_assert_uint_eq(dds_hist_min(h), t->v[0]);
		ck_assert_uint_eq(dds_hist_max(h), t->v[t->n - 1]);
	} else {
		uint64_t top = t->max_value;

		ck_assert_uint_eq(brute_top(dds_hist_min(h), top), brute_top(t->v[0], top));
		ck_assert_uint_eq(brute_top(dds_hist_max(h), top), brute_top(t->v[t->n - 1], top));
	}
	check_quantiles(h, t);
	check_buckets(h, t);
	check_mean(h, t);
	dds_hist_summarize(h, &s);
	ck_assert_uint_eq(s.count, t->n);
	ck_assert_uint_eq(s.min, dds_hist_min(h));
	ck_assert_uint_eq(s.p50, dds_hist_quantile(h, 0.5));
	ck_assert_uint_eq(s.p90, dds_hist_quantile(h, 0.9));
	ck_assert_uint_eq(s.p99, dds_hist_quantile(h, 0.99));
	ck_assert_uint_eq(s.p999, dds_hist_quantile(h, 0.999));
	ck_assert_uint_eq(s.max, dds_hist_max(h));
	ck_assert_uint_eq(s.overflow, t->overflow);
	ck_assert(s.mean == dds_hist_mean(h));
}

/* Record vals into a new histogram and check it; returns it for further checks. */
static struct dds_hist *record_and_check(const uint64_t *vals, size_t n, uint64_t max_value)
{
	struct dds_hist *h = dds_hist_new(max_value);
	struct truth t;

	ck_assert_ptr_nonnull(h);
	for (size_t i = 0; i < n; i++)
		dds_hist_record(h, vals[i]);
	truth_init(&t, vals, n, max_value);
	check_against(h, &t, true);
	free(t.v);
	return h;
}

enum dist { UNIFORM, LOGNORMAL, PARETO, SMALL, WIDE };

static uint64_t draw(enum dist d, uint64_t *s)
{
	switch (d) {
	case UNIFORM:
		return rnd(s) % 10000000;
	case LOGNORMAL: /* latencies: median ~ 200 us, a long right shoulder */
		return (uint64_t)exp(12.2 + 0.8 * normal(s));
	case PARETO: /* heavy tail, alpha 1.1, from 1 us: some values far above the maximum */
		return (uint64_t)fmin(1e18, 1000 * pow(unif(s), -1 / 1.1));
	case SMALL:
		return rnd(s) % 2048;
	case WIDE: /* every octave equally likely, up to 2^62 */
		return rnd(s) >> (rnd(s) % 64);
	}
	return 0;
}

static uint64_t *draw_n(enum dist d, size_t n, uint64_t seed)
{
	uint64_t *v = malloc(n * sizeof(*v));

	ck_assert_ptr_nonnull(v);
	for (size_t i = 0; i < n; i++)
		v[i] = draw(d, &seed);
	return v;
}

static void check_dist(enum dist d, size_t n, uint64_t max_value, uint64_t seed)
{
	uint64_t *v = draw_n(d, n, seed);

	dds_hist_free(record_and_check(v, n, max_value));
	free(v);
}

START_TEST(uniform)
{
	check_dist(UNIFORM, 100000, UINT64_C(1) << 30, 1);
	check_dist(UNIFORM, 7, UINT64_C(1) << 30, 2);
}
END_TEST

START_TEST(lognormal)
{
	check_dist(LOGNORMAL, 200000, UINT64_C(60000000000), 3);
}
END_TEST

START_TEST(heavy_tail)
{
	check_dist(PARETO, 200000, UINT64_C(1000000000), 4); /* about 0.001% above the max */
	check_dist(PARETO, 50000, MAX_62, 5);
	check_dist(WIDE, 100000, MAX_62, 6);
}
END_TEST

/* Below 2048 every value has its own bucket: quantiles are the exact order statistics. */
START_TEST(exact_small)
{
	uint64_t *v = draw_n(SMALL, 30000, 7);
	struct dds_hist *h = record_and_check(v, 30000, 4096);
	struct truth t;

	truth_init(&t, v, 30000, 4096);
	for (int i = 0; i <= 1000; i++)
		ck_assert_uint_eq(dds_hist_quantile(h, i / 1000.0), brute_quantile(&t, i / 1000.0));
	ck_assert(fabs(dds_hist_mean(h) - brute_mean(&t)) <= 1e-12 * brute_mean(&t));
	free(t.v);
	free(v);
	dds_hist_free(h);
}
END_TEST

START_TEST(zero_and_single)
{
	uint64_t zeros[5] = { 0, 0, 0, 0, 0 }, one[1] = { 123456789 };
	struct dds_hist *h = record_and_check(zeros, 5, 2048);

	ck_assert_uint_eq(dds_hist_quantile(h, 1), 0);
	dds_hist_free(h);
	dds_hist_free(record_and_check(one, 1, MAX_62));
	dds_hist_free(record_and_check(one, 0, MAX_62));
}
END_TEST

/* The largest maximum, values at and next to it, and values above it (up to UINT64_MAX). */
START_TEST(maximum_and_overflow)
{
	uint64_t v[] = { MAX_62, MAX_62 - 1, MAX_62 + 1, UINT64_MAX, MAX_62 / 2, MAX_62 / 2 - 1,
			 (MAX_62 >> 10) * 1023, 1, 0, 2047, 2048, 2049, 4095, 4096 };
	size_t n = sizeof(v) / sizeof(v[0]);
	struct dds_hist *h = record_and_check(v, n, MAX_62);

	ck_assert_uint_eq(dds_hist_overflow(h), 2);
	ck_assert_uint_eq(dds_hist_max(h), MAX_62);
	ck_assert_uint_eq(dds_hist_quantile(h, 1), MAX_62);
	dds_hist_free(h);
	/* the smallest allowed maximum, overflowed by most values */
	check_dist(UNIFORM, 5000, 2048, 8);
	check_dist(LOGNORMAL, 5000, 100000, 9);
}
END_TEST

START_TEST(bad_shapes)
{
	struct dds_hist *a = dds_hist_new(4096), *b = dds_hist_new(1 << 20), *c;

	ck_assert_ptr_null(dds_hist_new(0));
	ck_assert_ptr_null(dds_hist_new(2047));
	ck_assert_ptr_null(dds_hist_new(MAX_62 + 1));
	ck_assert_ptr_null(dds_hist_new(UINT64_MAX));
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	dds_hist_record(a, 5);
	dds_hist_record(b, 7);
	ck_assert_int_eq(dds_hist_snapshot(a, b), -1);
	ck_assert_int_eq(dds_hist_add(a, b), -1);
	ck_assert_int_eq(dds_hist_sub(a, b), -1);
	/* nothing changed */
	ck_assert_uint_eq(dds_hist_count(a), 1);
	ck_assert_uint_eq(dds_hist_max(a), 5);
	ck_assert_uint_eq(dds_hist_count(b), 1);
	ck_assert_uint_eq(dds_hist_max(b), 7);
	/* same bucket count, another maximum: still another shape */
	c = dds_hist_new(4097);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(dds_hist_add(c, a), -1);
	dds_hist_free(a);
	dds_hist_free(b);
	dds_hist_free(c);
}
END_TEST

/* Two writers' histograms merged equal the histogram of all their values. */
START_TEST(add)
{
	size_t n1 = 40000, n2 = 25000;
	uint64_t *all = malloc((n1 + n2) * sizeof(*all)), *b = draw_n(PARETO, n2, 11);
	uint64_t *a = draw_n(LOGNORMAL, n1, 10);
	struct dds_hist *ha = record_and_check(a, n1, UINT64_C(1) << 36);
	struct dds_hist *hb = record_and_check(b, n2, UINT64_C(1) << 36);
	struct dds_hist *sum = dds_hist_clone(ha);
	struct truth t;

	ck_assert_ptr_nonnull(all);
	memcpy(all, a, n1 * sizeof(*a));
	memcpy(all + n1, b, n2 * sizeof(*b));
	ck_assert_int_eq(dds_hist_add(sum, ha), 0);
	ck_assert_int_eq(dds_hist_add(sum, hb), 0);
	truth_init(&t, all, n1 + n2, UINT64_C(1) << 36);
	check_against(sum, &t, true);
	ck_assert_int_eq(dds_hist_add(ha, hb), 0); /* into a non-empty one */
	check_against(ha, &t, true);
	free(t.v);
	free(all);
	free(a);
	free(b);
	dds_hist_free(ha);
	dds_hist_free(hb);
	dds_hist_free(sum);
}
END_TEST

/* Reset by baseline: what was recorded after the baseline, and nothing more. */
START_TEST(sub_baseline)
{
	size_t n1 = 30000, n2 = 20000;
	uint64_t *a = draw_n(WIDE, n1, 12), *b = draw_n(UNIFORM, n2, 13);
	struct dds_hist *h = dds_hist_new(UINT64_C(1) << 40), *base = dds_hist_clone(h);
	struct dds_hist *now = dds_hist_clone(h);
	struct truth t;

	ck_assert_ptr_nonnull(h);
	ck_assert_ptr_nonnull(base);
	ck_assert_ptr_nonnull(now);
	for (size_t i = 0; i < n1; i++)
		dds_hist_record(h, a[i]);
	ck_assert_int_eq(dds_hist_snapshot(h, base), 0);
	for (size_t i = 0; i < n2; i++)
		dds_hist_record(h, b[i]);
	ck_assert_int_eq(dds_hist_snapshot(h, now), 0);
	/* the earlier snapshot minus the later one is refused and changes nothing */
	ck_assert_int_eq(dds_hist_sub(base, now), -1);
	ck_assert_uint_eq(dds_hist_count(base), n1);
	ck_assert_int_eq(dds_hist_sub(now, base), 0);
	truth_init(&t, b, n2, UINT64_C(1) << 40);
	check_against(now, &t, false);
	free(t.v);
	/* a baseline equal to the histogram leaves it empty */
	ck_assert_int_eq(dds_hist_snapshot(h, now), 0);
	ck_assert_int_eq(dds_hist_sub(now, now), 0);
	truth_init(&t, b, 0, UINT64_C(1) << 40);
	check_against(now, &t, true);
	free(t.v);
	free(a);
	free(b);
	dds_hist_free(h);
	dds_hist_free(base);
	dds_hist_free(now);
}
END_TEST

START_TEST(snapshot_clone_clear)
{
	size_t n = 50000;
	uint64_t *v = draw_n(LOGNORMAL, n, 14);
	struct dds_hist *h = record_and_check(v, n, UINT64_C(1) << 32);
	struct dds_hist *copy = dds_hist_clone(h), *empty = dds_hist_clone(h);
	struct truth t;

	ck_assert_ptr_nonnull(copy);
	ck_assert_ptr_nonnull(empty);
	truth_init(&t, v, n, UINT64_C(1) << 32);
	ck_assert_uint_eq(dds_hist_count(copy), 0); /* a clone is empty */
	ck_assert_int_eq(dds_hist_snapshot(h, copy), 0);
	check_against(copy, &t, true);
	/* a snapshot over a non-empty histogram replaces it */
	ck_assert_int_eq(dds_hist_snapshot(h, copy), 0);
	check_against(copy, &t, true);
	free(t.v);
	dds_hist_clear(h);
	truth_init(&t, v, 0, UINT64_C(1) << 32);
	check_against(h, &t, true);
	check_against(empty, &t, true);
	free(t.v);
	/* recording goes on after a clear */
	for (size_t i = 0; i < 100; i++)
		dds_hist_record(h, v[i]);
	truth_init(&t, v, 100, UINT64_C(1) << 32);
	check_against(h, &t, true);
	free(t.v);
	/* record_n equals n records, above the maximum too */
	dds_hist_clear(copy);
	for (size_t i = 0; i < 100; i++) {
		dds_hist_record_n(copy, v[i], 3);
		v[100 + i] = v[200 + i] = v[i];
	}
	dds_hist_record_n(copy, 5, 0);
	dds_hist_record_n(copy, UINT64_MAX, 4);
	for (size_t i = 300; i < 304; i++)
		v[i] = UINT64_MAX;
	truth_init(&t, v, 304, UINT64_C(1) << 32);
	check_against(copy, &t, true);
	free(t.v);
	free(v);
	dds_hist_free(h);
	dds_hist_free(copy);
	dds_hist_free(empty);
}
END_TEST

/* One writer records while a reader snapshots: every counter only grows between snapshots
 * (the later snapshot minus the earlier one is accepted), each snapshot agrees with itself, and
 * once the writer is done a snapshot equals the writer's histogram. */
#define LIVE_N 1000000

struct live {
	struct dds_hist *h;
	uint64_t seed;
	int done;
};

static void *live_writer(void *arg)
{
	struct live *l = arg;

	for (int i = 0; i < LIVE_N; i++)
		dds_hist_record(l->h, draw(LOGNORMAL, &l->seed));
	__atomic_store_n(&l->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void check_self_consistent(const struct dds_hist *s)
{
	size_t state = 0;
	uint64_t value, count, total = 0, last = 0;

	while (dds_hist_next_bucket(s, &state, &value, &count)) {
		total += count;
		last = value;
	}
	ck_assert_uint_eq(total, dds_hist_count(s));
	if (total) {
		ck_assert_uint_le(dds_hist_min(s), dds_hist_max(s));
		ck_assert_uint_eq(dds_hist_quantile(s, 1), dds_hist_max(s));
		ck_assert_uint_eq(brute_top(dds_hist_max(s), MAX_62), last);
	}
}

START_TEST(live_reader)
{
	struct live l = { dds_hist_new(MAX_62), 15, 0 };
	struct dds_hist *prev = dds_hist_clone(l.h), *cur = dds_hist_clone(l.h);
	struct dds_hist *diff = dds_hist_clone(l.h), *tmp;
	pthread_t w;
	int snaps = 0;

	ck_assert_ptr_nonnull(l.h);
	ck_assert_ptr_nonnull(prev);
	ck_assert_ptr_nonnull(cur);
	ck_assert_ptr_nonnull(diff);
	ck_assert_int_eq(pthread_create(&w, NULL, live_writer, &l), 0);
	while (!__atomic_load_n(&l.done, __ATOMIC_ACQUIRE)) {
		ck_assert_int_eq(dds_hist_snapshot(l.h, cur), 0);
		check_self_consistent(cur);
		ck_assert_uint_ge(dds_hist_count(cur), dds_hist_count(prev));
		ck_assert_int_eq(dds_hist_snapshot(cur, diff), 0);
		ck_assert_int_eq(dds_hist_sub(diff, prev), 0);
		tmp = prev;
		prev = cur;
		cur = tmp;
		snaps++;
	}
	ck_assert_int_eq(pthread_join(w, NULL), 0);
	ck_assert_int_eq(dds_hist_snapshot(l.h, cur), 0);
	ck_assert_uint_eq(dds_hist_count(cur), LIVE_N);
	ck_assert_uint_eq(dds_hist_count(l.h), LIVE_N);
	ck_assert_uint_eq(dds_hist_min(cur), dds_hist_min(l.h));
	ck_assert_uint_eq(dds_hist_max(cur), dds_hist_max(l.h));
	ck_assert_int_eq(dds_hist_snapshot(cur, diff), 0);
	ck_assert_int_eq(dds_hist_sub(diff, l.h), 0); /* cur - writer's = empty: equal */
	ck_assert_uint_eq(dds_hist_count(diff), 0);
	ck_assert_int_eq(dds_hist_sub(l.h, cur), 0);
	ck_assert_uint_eq(dds_hist_count(l.h), 0);
	ck_assert_int_gt(snaps, 0);
	dds_hist_free(l.h);
	dds_hist_free(prev);
	dds_hist_free(cur);
	dds_hist_free(diff);
}
END_TEST

int main(int argc, char **argv)
{
	struct dds_check_case cases[] = {
		{ .name = "brute_force", .timeout = 120, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(uniform),
			DDS_CHECK_TEST(lognormal),
			DDS_CHECK_TEST(heavy_tail),
			DDS_CHECK_TEST(exact_small),
			DDS_CHECK_TEST(zero_and_single),
			DDS_CHECK_TEST(maximum_and_overflow),
			DDS_CHECK_TEST(bad_shapes),
			DDS_CHECK_TEST(add),
			DDS_CHECK_TEST(sub_baseline),
			DDS_CHECK_TEST(snapshot_clone_clear)) },
		{ .name = "concurrent", .timeout = 120, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(live_reader)) },
		{ .name = NULL },
	};

	/* qemu-user (cross builds) hangs when a guest starts a thread: no concurrent case there */
	if (dds_check_arg_is(argc, argv, "emulated"))
		cases[1].name = NULL;
	return dds_check_main("hist", cases, CK_FORK_GETENV);
}
