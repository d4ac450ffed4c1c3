/* test_sched.c: the scheduler on a simulated clock: fair shares by r_i, floods, batching delays,
 * admission and busy verdicts, bad input. The oracle of every fairness test is the ratio of the
 * allocations themselves (and, for floods, the service a device would get alone). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check_main.h"
#include "dds_sched.h"

#define US 1000ull
#define MS 1000000ull
#define HASH_A 0xa11ce5ull
#define HASH_B 0xb0b0b0ull

/* ---- a simulated node: devices, a pool of request records, one executor ---- */

/* One simulated device: its allocation, the work of each of its requests, what it got. */
struct sim_dev {
	uint32_t id;
	double weight, work;
	uint64_t model_hash;
	uint32_t split_id;
	double served_work; /* sum of w of its completed requests */
	uint64_t accepted, served, busy;
	uint64_t max_wait;  /* largest batch_start - queued */
};

#define POOL 4096
struct sim {
	struct dds_sched *s;
	struct dds_sched_req pool[POOL];
	struct dds_sched_req *free_list[POOL];
	int n_free;
	struct sim_dev *dev;
	int n_dev;
	uint64_t now;
	double capacity; /* server FLOP/s: a batch takes (sum of its w) / capacity */
	uint64_t idle_ns; /* time the executor idled while something was eligible */
};

static struct dds_sched *sched_new(uint32_t total, uint32_t per_dev, uint32_t devices,
				   uint32_t groups)
{
	struct dds_sched_config c = {.max_queued_total = total,
				     .max_queued_per_device = per_dev,
				     .max_devices = devices,
				     .max_groups = groups};
	char err[256];
	struct dds_sched *s = dds_sched_create(&c, err, sizeof(err));
	ck_assert_msg(s != NULL, "create: %s", err);
	return s;
}

static void group_add(struct dds_sched *s, uint64_t hash, uint32_t split, int max_batch,
		      uint64_t delay)
{
	struct dds_sched_group_opts o = {.max_batch = max_batch, .max_delay_ns = delay};
	char err[256];
	ck_assert_msg(dds_sched_add_group(s, hash, split, &o, err, sizeof(err)) >= 0, "group: %s",
		      err);
}

static void sim_init(struct sim *sm, struct dds_sched *s, struct sim_dev *dev, int n_dev,
		     double capacity)
{
	memset(sm, 0, sizeof(*sm));
	sm->s = s;
	sm->dev = dev;
	sm->n_dev = n_dev;
	sm->capacity = capacity;
	for (int i = 0; i < POOL; i++)
		sm->free_list[sm->n_free++] = &sm->pool[i];
}

/* Device i offers one request now; returns the verdict. */
static enum dds_sched_verdict sim_offer(struct sim *sm, int i)
{
	struct sim_dev *d = &sm->dev[i];
	ck_assert_int_gt(sm->n_free, 0);
	struct dds_sched_req *r = sm->free_list[--sm->n_free];
	memset(r, 0, sizeof(*r));
	r->device_id = d->id;
	r->model_hash = d->model_hash;
	r->split_id = d->split_id;
	r->weight = d->weight;
	r->work = d->work;
	r->t[DDS_STAGE_first_frag] = r->t[DDS_STAGE_complete] = sm->now;
	r->user = d;
	enum dds_sched_verdict v = dds_sched_enqueue(sm->s, r, sm->now);
	if (v == DDS_SCHED_ok) {
		d->accepted++;
	} else {
		sm->free_list[sm->n_free++] = r;
		d->busy++;
	}
	return v;
}

/* Offer requests from device i until it is refused. */
static void sim_fill(struct sim *sm, int i)
{
	while (sim_offer(sm, i) == DDS_SCHED_ok)
		;
}

/* Run one batch if one is eligible now: the clock advances by its compute time. Returns its
 * size (0: nothing eligible; then the clock moves to the wake time, bounded by `until`). */
static int sim_step(struct sim *sm, uint64_t until)
{
	struct dds_sched_batch b;
	uint64_t wake;
	int n = dds_sched_next_batch(sm->s, sm->now, &b, &wake);

	if (n == 0) {
		sm->now = wake < until ? wake : until;
		return 0;
	}
	double work = 0;
	for (int i = 0; i < n; i++) {
		ck_assert_uint_eq(b.req[i]->t[DDS_STAGE_batch_start], sm->now);
		ck_assert_uint_eq(b.req[i]->model_hash, b.model_hash);
		ck_assert_uint_eq(b.req[i]->split_id, b.split_id);
		work += b.req[i]->work;
	}
	sm->now += (uint64_t)(work / sm->capacity * 1e9) + 1;
	dds_sched_complete(sm->s, &b, sm->now);
	for (int i = 0; i < n; i++) {
		struct dds_sched_req *r = b.req[i];
		struct sim_dev *d = r->user;
		uint64_t wait = r->t[DDS_STAGE_batch_start] - r->t[DDS_STAGE_queued];
		ck_assert_uint_eq(r->t[DDS_STAGE_compute_done], sm->now);
		d->served_work += r->work;
		d->served++;
		d->max_wait = wait > d->max_wait ? wait : d->max_wait;
		sm->free_list[sm->n_free++] = r;
	}
	return n;
}

/* ---- fairness under saturation ---- */

/* Two devices with allocations 3:1 keep their queues full; the scheduler must serve their work
 * 3:1 within 10%. Cases vary the batch size, the groups and the work per request. */
static const struct fair_case {
	int max_batch, max_batch_b; /* B's group's, when B has its own group */
	bool same_group;
	double work_a, work_b;
	uint64_t delay;
} fair_cases[] = {
	{1, 1, true, 1e9, 1e9, 0},
	{8, 8, true, 1e9, 1e9, 0},
	{8, 8, false, 1e9, 1e9, 0},
	{32, 32, false, 2e9, 5e8, 100 * US}, /* A's requests cost 4x B's: still 3:1 in work */
	{4, 4, false, 3e8, 2.7e9, 0},
	{32, 1, false, 1e9, 1e9, 0}, /* A's group batches 32 at a time, B's one */
	{1, 16, false, 1e9, 1e9, 50 * US},
};

START_TEST(fair_3_to_1)
{
	const struct fair_case *c = &fair_cases[_i];
	struct dds_sched *s = sched_new(256, 64, 16, 4);
	struct sim_dev dev[2] = {
		{.id = 10, .weight = 3e11, .work = c->work_a, .model_hash = HASH_A, .split_id = 1},
		{.id = 20, .weight = 1e11, .work = c->work_b, .model_hash = HASH_A,
		 .split_id = c->same_group ? 1 : 2},
	};
	struct sim sm;

	group_add(s, HASH_A, 1, c->max_batch, c->delay);
	if (!c->same_group)
		group_add(s, HASH_A, 2, c->max_batch_b, c->delay);
	sim_init(&sm, s, dev, 2, 4e11);
	for (int step = 0; step < 2000; step++) {
		sim_fill(&sm, 0);
		sim_fill(&sm, 1);
		ck_assert_int_gt(sim_step(&sm, UINT64_MAX), 0); /* saturated: always work */
	}
	double ratio = dev[0].served_work / dev[1].served_work;
	fprintf(stderr, "fair case %d: served work A/B = %.4f (want 3 +- 10%%), %llu + %llu requests\n",
		_i, ratio, (unsigned long long)dev[0].served, (unsigned long long)dev[1].served);
	ck_assert_msg(fabs(ratio - 3.0) <= 0.3, "case %d: ratio %g", _i, ratio);
	dds_sched_free(s);
}
END_TEST

/* A closed-loop device (one request outstanding, re-sent the moment its result is back) must
 * not win more than its share by going idle between requests: SFQ keeps its last finish tag. */
START_TEST(closed_loop_keeps_share)
{
	struct dds_sched *s = sched_new(256, 64, 16, 1);
	struct sim_dev dev[2] = {
		{.id = 1, .weight = 1, .work = 1e9, .model_hash = HASH_A, .split_id = 0},
		{.id = 2, .weight = 3, .work = 1e9, .model_hash = HASH_A, .split_id = 0},
	};
	struct sim sm;

	group_add(s, HASH_A, 0, 1, 0);
	sim_init(&sm, s, dev, 2, 1e11);
	for (int step = 0; step < 2000; step++) {
		if (dev[0].accepted == dev[0].served) /* its previous result is back */
			ck_assert_int_eq(sim_offer(&sm, 0), DDS_SCHED_ok);
		sim_fill(&sm, 1);
		sim_step(&sm, UINT64_MAX);
	}
	double share = dev[0].served_work / (dev[0].served_work + dev[1].served_work);
	fprintf(stderr, "closed loop: share of the weight-1 device %.4f (want 0.25 +- 10%%)\n", share);
	ck_assert_msg(fabs(share - 0.25) <= 0.025, "share %g", share);
	dds_sched_free(s);
}
END_TEST

/* ---- floods ---- */

/* One device floods (offers all it can, every step); three light devices with the same
 * allocation send one request every 10 batch-times. The light ones must never be refused and
 * must wait at most two batch-times (the batch in service and one more); the flooder gets
 * everything else, and the executor never idles. As oracle, the same light traffic on a FIFO
 * queue (one group, delay 0, flooder's weight huge so it always goes first) waits for the
 * flooder's whole queue. */
static void flood_run(double flood_weight, uint64_t *light_wait, uint64_t *light_busy,
		      double *flood_share)
{
	struct dds_sched *s = sched_new(512, 128, 16, 2);
	struct sim_dev dev[4];
	struct sim sm;
	const double w = 1e9, cap = 1e11; /* one request: 10 ms */
	const uint64_t t_req = (uint64_t)(w / cap * 1e9) + 1, batch_t = 4 * (t_req - 1) + 1;

	group_add(s, HASH_A, 1, 4, 0);
	group_add(s, HASH_B, 1, 4, 0);
	for (int i = 0; i < 4; i++)
		dev[i] = (struct sim_dev){.id = 100 + i, .weight = i ? 1e9 : flood_weight, .work = w,
					  .model_hash = i % 2 ? HASH_B : HASH_A, .split_id = 1};
	sim_init(&sm, s, dev, 4, cap);
	uint64_t next_light = 0, total = 0;
	for (int step = 0; step < 1500; step++) {
		sim_fill(&sm, 0);
		if (sm.now >= next_light) {
			for (int i = 1; i < 4; i++)
				sim_offer(&sm, i);
			next_light = sm.now + 10 * batch_t;
		}
		total += (uint64_t)sim_step(&sm, UINT64_MAX);
	}
	*light_wait = 0;
	*light_busy = 0;
	for (int i = 1; i < 4; i++) {
		*light_wait = dev[i].max_wait > *light_wait ? dev[i].max_wait : *light_wait;
		*light_busy += dev[i].busy;
	}
	*flood_share = (double)dev[0].served / (double)total;
	dds_sched_free(s);
}

START_TEST(flood_does_not_starve)
{
	uint64_t wait, busy;
	double share;
	const uint64_t batch_t = 4 * 10 * MS + 1;

	/* Equal allocations, and an over-budget flooder (a tenth of the others' allocation). */
	const double flood_w[] = {1e9, 1e8};
	for (int k = 0; k < 2; k++) {
		flood_run(flood_w[k], &wait, &busy, &share);
		fprintf(stderr, "flood (weight %.0e): light max wait %.1f ms (bound %.1f), flooder "
				"share %.3f\n",
			flood_w[k], wait / 1e6, 2.0 * batch_t / 1e6, share);
		ck_assert_uint_eq(busy, 0);
		ck_assert_uint_le(wait, 2 * batch_t);
		/* Light devices use 3 * 4 of every 10 * 4 slots at most: the flooder gets the rest. */
		ck_assert_double_ge(share, 0.65);
	}
	/* The test can fail: a flooder whose tags never advance (weight 1e30, as if shares were
	 * ignored) starves the light devices, which are then refused or wait past the bound. */
	flood_run(1e30, &wait, &busy, &share);
	fprintf(stderr, "flood, unfair reference: light max wait %.1f ms, %llu refused\n",
		wait / 1e6, (unsigned long long)busy);
	ck_assert(busy > 0 || wait > 2 * batch_t);
}
END_TEST

/* ---- dynamic batching ---- */

START_TEST(max_delay_releases_partial_batch)
{
	struct dds_sched *s = sched_new(64, 64, 4, 2);
	struct sim_dev dev[1] = {{.id = 7, .weight = 1, .work = 1, .model_hash = HASH_A}};
	struct dds_sched_batch b;
	struct sim sm;
	uint64_t wake;

	group_add(s, HASH_A, 0, 8, 100 * US);
	sim_init(&sm, s, dev, 1, 1e9);
	sm.now = 1 * MS;
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(sim_offer(&sm, 0), DDS_SCHED_ok);
	/* Not full and young: nothing yet, wake at the oldest's deadline. */
	ck_assert_int_eq(dds_sched_next_batch(s, 1 * MS + 99 * US, &b, &wake), 0);
	ck_assert_uint_eq(wake, 1 * MS + 100 * US);
	ck_assert_int_eq(dds_sched_next_batch(s, 1 * MS + 100 * US, &b, &wake), 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(b.req[i]->t[DDS_STAGE_queued], 1 * MS);
		ck_assert_uint_eq(b.req[i]->t[DDS_STAGE_batch_start], 1 * MS + 100 * US);
	}
	dds_sched_complete(s, &b, 2 * MS);
	ck_assert_uint_eq(b.req[2]->t[DDS_STAGE_compute_done], 2 * MS);
	/* Empty: nothing, wake never. */
	ck_assert_int_eq(dds_sched_next_batch(s, 3 * MS, &b, &wake), 0);
	ck_assert_uint_eq(wake, UINT64_MAX);
	/* A full batch goes at once, the rest waits for its own deadline. */
	sm.now = 5 * MS;
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(sim_offer(&sm, 0), DDS_SCHED_ok);
	ck_assert_int_eq(dds_sched_next_batch(s, 5 * MS, &b, &wake), 8);
	dds_sched_complete(s, &b, 5 * MS);
	ck_assert_int_eq(dds_sched_next_batch(s, 5 * MS, &b, &wake), 0);
	ck_assert_uint_eq(wake, 5 * MS + 100 * US);
	ck_assert_int_eq(dds_sched_next_batch(s, wake, &b, &wake), 2);
	dds_sched_complete(s, &b, 6 * MS);
	dds_sched_free(s);
}
END_TEST

/* Delay 0: work-conserving; a request is dispatched the moment it is queued. Batches never mix
 * groups and hold requests in start-tag order. */
START_TEST(work_conserving_and_one_group_per_batch)
{
	struct dds_sched *s = sched_new(64, 64, 4, 2);
	struct sim_dev dev[2] = {
		{.id = 1, .weight = 1, .work = 1, .model_hash = HASH_A, .split_id = 3},
		{.id = 2, .weight = 1, .work = 1, .model_hash = HASH_B, .split_id = 3},
	};
	struct dds_sched_batch b;
	struct sim sm;
	uint64_t wake;

	group_add(s, HASH_A, 3, 16, 0);
	group_add(s, HASH_B, 3, 16, 0);
	sim_init(&sm, s, dev, 2, 1e9);
	ck_assert_int_eq(sim_offer(&sm, 0), DDS_SCHED_ok);
	ck_assert_int_eq(dds_sched_next_batch(s, sm.now, &b, &wake), 1);
	ck_assert_uint_eq(wake, 0);
	dds_sched_complete(s, &b, sm.now);
	for (int i = 0; i < 5; i++) {
		ck_assert_int_eq(sim_offer(&sm, 0), DDS_SCHED_ok);
		ck_assert_int_eq(sim_offer(&sm, 1), DDS_SCHED_ok);
	}
	for (int k = 0; k < 2; k++) {
		ck_assert_int_eq(dds_sched_next_batch(s, sm.now, &b, NULL), 5);
		for (int i = 1; i < b.n; i++) {
			ck_assert_uint_eq(b.req[i]->model_hash, b.req[0]->model_hash);
			ck_assert_uint_lt(b.req[i - 1]->sched.start, b.req[i]->sched.start);
		}
		dds_sched_complete(s, &b, sm.now);
	}
	dds_sched_free(s);
}
END_TEST

/* ---- admission ---- */

START_TEST(admission_and_busy)
{
	struct dds_sched *s = sched_new(10, 4, 3, 1);
	struct sim_dev dev[4];
	struct dds_sched_batch b;
	struct dds_sched_stats st;
	struct sim sm;

	group_add(s, HASH_A, 0, 64, 1 * MS);
	for (int i = 0; i < 4; i++)
		dev[i] = (struct sim_dev){.id = 50 + i, .weight = 1, .work = 1, .model_hash = HASH_A};
	sim_init(&sm, s, dev, 4, 1e9);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(sim_offer(&sm, 0), DDS_SCHED_ok);
	ck_assert_int_eq(sim_offer(&sm, 0), DDS_SCHED_busy_device);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(sim_offer(&sm, 1), DDS_SCHED_ok);
	ck_assert_int_eq(sim_offer(&sm, 2), DDS_SCHED_ok);
	ck_assert_int_eq(sim_offer(&sm, 2), DDS_SCHED_ok);
	ck_assert_int_eq(sim_offer(&sm, 2), DDS_SCHED_busy_total); /* 10 queued */
	ck_assert_int_eq(sim_offer(&sm, 3), DDS_SCHED_busy_total);
	dds_sched_get_stats(s, &st);
	ck_assert_uint_eq(st.queued, 10);
	ck_assert_uint_eq(st.verdicts[DDS_SCHED_ok], 10);
	ck_assert_uint_eq(st.verdicts[DDS_SCHED_busy_device], 1);
	ck_assert_uint_eq(st.verdicts[DDS_SCHED_busy_total], 2);
	ck_assert(dds_sched_verdict_is_busy(DDS_SCHED_busy_total));
	ck_assert(!dds_sched_verdict_is_busy(DDS_SCHED_bad_weight));

	/* Dispatch all (max delay reached); while running, a 4th device finds the table full
	 * (3 records: devices 0..2 are running). */
	ck_assert_int_eq(dds_sched_next_batch(s, 1 * MS, &b, NULL), 10);
	sm.now = 1 * MS;
	ck_assert_int_eq(sim_offer(&sm, 3), DDS_SCHED_busy_devices);
	/* Queues are free again: device 0 may queue while its batch still runs. */
	ck_assert_int_eq(sim_offer(&sm, 0), DDS_SCHED_ok);
	dds_sched_complete(s, &b, 2 * MS);
	ck_assert_int_eq(dds_sched_next_batch(s, 3 * MS, &b, NULL), 1);
	dds_sched_complete(s, &b, 3 * MS);
	/* Busy period over: V caught up with every finish tag, the records are reclaimed. */
	sm.now = 3 * MS;
	ck_assert_int_eq(sim_offer(&sm, 3), DDS_SCHED_ok);
	dds_sched_get_stats(s, &st);
	ck_assert_uint_eq(st.devices, 1);
	dds_sched_free(s);
}
END_TEST

/* ---- bad input ---- */

START_TEST(bad_requests)
{
	struct dds_sched *s = sched_new(8, 8, 2, 1);
	struct dds_sched_req r = {.device_id = 1, .model_hash = HASH_A, .weight = 1, .work = 1};
	struct dds_sched_stats st;

	group_add(s, HASH_A, 0, 4, 0);
	ck_assert_int_eq(dds_sched_enqueue(s, NULL, 0), DDS_SCHED_bad_request);
	ck_assert_int_eq(dds_sched_enqueue(NULL, &r, 0), DDS_SCHED_bad_request);
	const double bad[] = {0, -1, NAN, INFINITY, -INFINITY};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r.weight = bad[i];
		ck_assert_int_eq(dds_sched_enqueue(s, &r, 0), DDS_SCHED_bad_weight);
		r.weight = 1;
		r.work = bad[i];
		ck_assert_int_eq(dds_sched_enqueue(s, &r, 0), DDS_SCHED_bad_work);
		r.work = 1;
	}
	r.split_id = 9;
	ck_assert_int_eq(dds_sched_enqueue(s, &r, 0), DDS_SCHED_unknown_group);
	r.split_id = 0;
	r.model_hash = HASH_B;
	ck_assert_int_eq(dds_sched_enqueue(s, &r, 0), DDS_SCHED_unknown_group);
	dds_sched_get_stats(s, &st);
	ck_assert_uint_eq(st.queued, 0);
	ck_assert_uint_eq(st.devices, 0);
	r.model_hash = HASH_A;
	ck_assert_int_eq(dds_sched_enqueue(s, &r, 0), DDS_SCHED_ok);
	ck_assert_int_eq(dds_sched_enqueue(s, &r, 0), DDS_SCHED_bad_request); /* already queued */
	ck_assert_str_eq(dds_sched_verdict_name(DDS_SCHED_unknown_group), "unknown_group");
	ck_assert_ptr_null(dds_sched_verdict_name(DDS_SCHED_VERDICT__COUNT));
	ck_assert_str_eq(dds_stage_name(DDS_STAGE_batch_start), "batch_start");
	ck_assert_ptr_null(dds_stage_name(-1));
	/* NULL batch or scheduler: no crash, nothing dispatched. */
	ck_assert_int_eq(dds_sched_next_batch(s, 0, NULL, NULL), 0);
	ck_assert_int_eq(dds_sched_next_batch(NULL, 0, NULL, NULL), 0);
	dds_sched_complete(NULL, NULL, 0);
	dds_sched_free(s);
}
END_TEST

START_TEST(bad_config)
{
	char err[256];
	struct dds_sched_config c = {.max_queued_total = 4, .max_queued_per_device = 4,
				     .max_devices = 4, .max_groups = 1};
	struct dds_sched_config bad = c;
	bad.max_devices = 0;
	ck_assert_ptr_null(dds_sched_create(&bad, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "max_devices"));
	ck_assert_ptr_null(dds_sched_create(NULL, err, sizeof(err)));

	struct dds_sched *s = dds_sched_create(&c, err, sizeof(err));
	struct dds_sched_group_opts o = {.max_batch = 0};
	ck_assert_int_eq(dds_sched_add_group(s, 1, 1, &o, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "max_batch"));
	o.max_batch = DDS_SCHED_MAX_BATCH + 1;
	ck_assert_int_eq(dds_sched_add_group(s, 1, 1, &o, err, sizeof(err)), -1);
	o.max_batch = 4;
	ck_assert_int_eq(dds_sched_add_group(s, 1, 1, &o, err, sizeof(err)), 0);
	ck_assert_int_eq(dds_sched_add_group(s, 1, 1, &o, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "already exists"));
	ck_assert_int_eq(dds_sched_add_group(s, 1, 2, &o, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "max_groups"));
	dds_sched_free(s);
}
END_TEST

int main(void)
{
	struct dds_check_case cases[] = {
		{ .name = "fairness", .timeout = 60, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_LOOP(fair_3_to_1, 0, sizeof(fair_cases) / sizeof(fair_cases[0])),
			DDS_CHECK_TEST(closed_loop_keeps_share),
			DDS_CHECK_TEST(flood_does_not_starve)) },
		{ .name = "queues", .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(max_delay_releases_partial_batch),
			DDS_CHECK_TEST(work_conserving_and_one_group_per_batch),
			DDS_CHECK_TEST(admission_and_busy),
			DDS_CHECK_TEST(bad_requests),
			DDS_CHECK_TEST(bad_config)) },
		{ .name = NULL },
	};

	return dds_check_main("scheduler", cases, CK_FORK_GETENV);
}
