/* test_loadgen.c: dds-loadgen's arrival generator against theory, its latency accounting under a stall against brute force, its flags. */
#include <arpa/inet.h>
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg_int.h"

/* ---- arrivals ---- */

/* n inter-arrival gaps (ns) of a seeded open-loop flow, pulled as a late generator would. */
static double *gaps(enum lg_arrival a, double rate, uint64_t seed, int n)
{
	struct lg_flow f;
	double *g = malloc((size_t)n * sizeof(double));
	uint64_t prev = 0, t;

	lg_flow_init(&f, LG_OPEN, a, rate, 0, 1000, UINT64_MAX, seed);
	ck_assert(lg_flow_take(&f, UINT64_MAX - 1, &prev));
	for (int i = 0; i < n; i++) {
		ck_assert(lg_flow_take(&f, UINT64_MAX - 1, &t));
		g[i] = (double)(t - prev);
		prev = t;
	}
	return g;
}

static void moments(const double *g, int n, double *mean, double *var)
{
	double s = 0, ss = 0;

	for (int i = 0; i < n; i++)
		s += g[i];
	*mean = s / n;
	for (int i = 0; i < n; i++)
		ss += (g[i] - *mean) * (g[i] - *mean);
	*var = ss / (n - 1);
}

/* Exponential gaps, rate 50/s, 200,000 samples: mean 1/R and variance 1/R^2. The sample mean's
 * relative standard error is 1/sqrt(n) = 0.22%, the sample variance's sqrt(8/n) = 0.63%
 * (exponential kurtosis 9); tolerances are 5 standard errors. P(gap > mean) = 1/e, within 5
 * binomial standard errors. */
START_TEST(poisson_moments)
{
	const int n = 200000;
	const double rate = 50, mu = 1e9 / rate;
	double mean, var, *g = gaps(LG_POISSON, rate, 7, n);
	int above = 0;

	moments(g, n, &mean, &var);
	for (int i = 0; i < n; i++)
		above += g[i] > mu;
	ck_assert_msg(fabs(mean / mu - 1) < 5 / sqrt(n), "mean %g, want %g", mean, mu);
	ck_assert_msg(fabs(var / (mu * mu) - 1) < 5 * sqrt(8.0 / n), "variance %g, want %g", var,
		      mu * mu);
	ck_assert_msg(fabs((double)above / n - exp(-1)) < 5 * sqrt(exp(-1) * (1 - exp(-1)) / n),
		      "P(gap > mean) %g", (double)above / n);
	free(g);
}
END_TEST

/* Fixed rate: every gap is the period (starts are rounded up to whole ns: +-1 ns); the phase
 * of the first start, over 20,000 seeds, is uniform on [0, period): mean period/2 within 5
 * standard errors (period / sqrt(12 n)). */
START_TEST(fixed_gaps_and_phase)
{
	const int n = 10000, seeds = 20000;
	const double rate = 300, period = 1e9 / rate;
	double *g = gaps(LG_FIXED, rate, 3, n), mean, var, phase = 0;

	moments(g, n, &mean, &var);
	for (int i = 0; i < n; i++)
		ck_assert_msg(fabs(g[i] - period) <= 1.0, "gap %d: %g, want %g", i, g[i], period);
	ck_assert(var < 1.0);
	for (int s = 0; s < seeds; s++) {
		struct lg_flow f;
		uint64_t t;

		lg_flow_init(&f, LG_OPEN, LG_FIXED, rate, 0, 0, UINT64_MAX, (uint64_t)s + 1);
		ck_assert(lg_flow_take(&f, UINT64_MAX - 1, &t));
		ck_assert(t <= (uint64_t)ceil(period));
		phase += (double)t;
	}
	phase /= seeds;
	ck_assert_msg(fabs(phase - period / 2) < 5 * period / sqrt(12.0 * seeds), "phase %g", phase);
	free(g);
}
END_TEST

/* The same seed gives the same starts; none is skipped by a late caller; none at or after end. */
START_TEST(flow_late_caller_and_end)
{
	struct lg_flow a, b;
	uint64_t ta, tb, n = 0;

	lg_flow_init(&a, LG_OPEN, LG_POISSON, 1000, 0, 0, 50000000, 9);
	lg_flow_init(&b, LG_OPEN, LG_POISSON, 1000, 0, 0, 50000000, 9);
	/* a is polled every 10 us, b once at the end: same starts */
	for (uint64_t now = 0; now < 60000000; now += 10000)
		while (lg_flow_take(&a, now, &ta)) {
			ck_assert(lg_flow_take(&b, UINT64_MAX - 1, &tb));
			ck_assert_uint_eq(ta, tb);
			ck_assert(ta <= now && ta < 50000000);
			n++;
		}
	ck_assert(!lg_flow_take(&b, UINT64_MAX - 1, &tb));
	ck_assert_uint_eq(lg_flow_next(&a), UINT64_MAX);
	ck_assert_msg(n > 20 && n < 90, "%lu starts in 50 ms at 1000/s", (unsigned long)n);
}
END_TEST

/* Closed loop: one request at a time, the next one think_ns after the previous finished. */
START_TEST(closed_loop)
{
	struct lg_flow f;
	uint64_t t;

	lg_flow_init(&f, LG_CLOSED, LG_POISSON, 1, 5000, 100, UINT64_MAX, 1);
	ck_assert(lg_flow_take(&f, 100, &t));
	ck_assert_uint_eq(t, 100);
	ck_assert(!lg_flow_take(&f, UINT64_MAX - 1, &t));
	ck_assert_uint_eq(lg_flow_next(&f), UINT64_MAX);
	lg_flow_done(&f, 7000);
	ck_assert(!lg_flow_take(&f, 11999, &t));
	ck_assert(lg_flow_take(&f, 12000, &t));
	ck_assert_uint_eq(t, 12000);
	ck_assert_uint_eq(lg_send_time(100, 50, 120), 150);
	ck_assert_uint_eq(lg_send_time(100, 50, 900), 900);
}
END_TEST

/* ---- latency accounting under a stall (simulated clock) ---- */

#define TICK 100000ull         /* the loop wakes every 100 us ... */
#define STALL_AT 200000000ull  /* ... except from 200 ms ... */
#define STALL 50000000ull      /* ... for 50 ms (S) */
#define TE 300000ull           /* head compute 0.3 ms */
#define SERVICE 2000000ull     /* the answer comes 2 ms after the send */
#define RUN 1000000000ull
#define RATE 1000.0            /* R */

/* The first time >= t at which the stalled loop runs. */
static uint64_t first_active(uint64_t t)
{
	uint64_t k = (t + TICK - 1) / TICK * TICK;

	return k >= STALL_AT && k < STALL_AT + STALL ? STALL_AT + STALL : k;
}

struct sim_req {
	uint64_t start, send_at, sent, answer_at;
	int state; /* 1 computing, 2 waiting */
};

/* What the live loop does (run.c), on a simulated clock: arrivals from lg_flow_take, sends at
 * lg_send_time, answers SERVICE after the send, each handled at the loop's next active tick. */
static void simulate(struct lg_stats *s, uint64_t *phase)
{
	static struct sim_req q[4096];
	struct lg_flow f;
	int n = 0;

	lg_flow_init(&f, LG_OPEN, LG_FIXED, RATE, 0, 0, RUN, 5);
	*phase = lg_flow_next(&f);
	for (uint64_t now = 0; now < RUN + 100000000ull; now += TICK) {
		uint64_t start;

		if (now >= STALL_AT && now < STALL_AT + STALL)
			continue; /* the generator is stalled: nothing runs */
		while (lg_flow_take(&f, now, &start)) {
			lg_stats_start(s, 0, start, now);
			q[n++] = (struct sim_req){.start = start, .state = 1,
						  .send_at = lg_send_time(start, TE, now)};
		}
		for (int i = 0; i < n; i++) {
			if (q[i].state == 1 && q[i].send_at <= now) {
				q[i] = (struct sim_req){.start = q[i].start, .sent = now, .state = 2,
							.answer_at = now + SERVICE};
			} else if (q[i].state == 2 && q[i].answer_at <= now) {
				lg_stats_end(s, 0, true, LG_ANSWERED, 0, q[i].start, q[i].sent, now);
				q[i].state = 0;
			}
		}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The exact q-quantile as dds_hist defines it: the ceil(q n)-th smallest (q = 0: smallest). */
static uint64_t exact_q(const uint64_t *v, size_t n, double q)
{
	size_t r = (size_t)ceil(q * (double)n);

	return v[r ? r - 1 : 0];
}

static void check_quantiles(const struct dds_hist *h, uint64_t *v, size_t n, const char *what)
{
	const double qs[] = {0, 0.5, 0.9, 0.99, 0.999, 1};

	qsort(v, n, sizeof(*v), cmp_u64);
	ck_assert_uint_eq(dds_hist_count(h), n);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		double want = (double)exact_q(v, n, qs[i]), got = (double)dds_hist_quantile(h, qs[i]);

		ck_assert_msg(fabs(got - want) <= 1e-3 * want + 1, "%s q%g: %g, brute force %g", what,
			      qs[i], got, want);
	}
}

/* Brute force, from the schedule alone: start k = phase + k / R; the loop handles it at
 * first_active(start); sends at first_active(max(start + TE, handled)); sees the answer at
 * first_active(sent + SERVICE). End-to-end = seen - start; after send = seen - sent. */
START_TEST(stall_latencies_match_brute_force)
{
	struct lg_stats s;
	uint64_t phase, *e2e = malloc(2000 * sizeof(uint64_t)), *net = malloc(2000 * sizeof(uint64_t));
	size_t n = 0;
	char err[128];

	ck_assert_int_eq(lg_stats_init(&s, 1, err, sizeof(err)), 0);
	simulate(&s, &phase);
	for (uint64_t k = 0;; k++) {
		uint64_t start = (uint64_t)ceil((double)phase + (double)k * 1e9 / RATE), h, sent, seen;

		if (start >= RUN)
			break;
		h = first_active(start);
		sent = first_active(start + TE > h ? start + TE : h);
		seen = first_active(sent + SERVICE);
		e2e[n] = seen - start;
		net[n++] = seen - sent;
	}
	ck_assert_uint_eq(n, s.all.meas.requests);
	ck_assert_uint_eq(s.all.meas.answered, n);
	check_quantiles(s.all.e2e, e2e, n, "end-to-end");
	check_quantiles(s.all.net, net, n, "after send");
	/* the stall shows in end-to-end latency (its first victim waited about S); after the send
	 * only answers due during the stall see it, so the median does not */
	ck_assert(dds_hist_max(s.all.e2e) >= STALL + SERVICE - (uint64_t)(1e9 / RATE));
	ck_assert(dds_hist_quantile(s.all.net, 0.5) <= SERVICE + TICK + TICK / 100);
	/* about S * R requests started during the stall, and the generator's lag shows it */
	ck_assert(dds_hist_max(s.lag) >= STALL - 2 * (uint64_t)(1e9 / RATE));
	free(e2e);
	free(net);
	lg_stats_free(&s);
}
END_TEST

/* ---- flags ---- */

/* argv stays until the next call: lg_opts keeps pointers into it (--config, EAL arguments). */
static int parse(const char *line, struct lg_opts *o, char *err, size_t len)
{
	static char buf[2048], *argv[64];
	char *save = NULL;
	int argc = 0, rc;

	snprintf(buf, sizeof(buf), "dds-loadgen %s", line);
	for (char *t = strtok_r(buf, " ", &save); t && argc < 63; t = strtok_r(NULL, " ", &save))
		argv[argc++] = t;
	argv[argc] = NULL;
	rc = lg_opts_parse(argc, argv, o, err, len);
	return rc;
}

START_TEST(bad_flags_are_named)
{
	static const char *bad[][2] = {
		{"--models m.json --rate 0", "--rate"},
		{"--models m.json --rate abc", "--rate"},
		{"--models m.json --devices 0", "--devices"},
		{"--models m.json --devices 2.5", "2.5"},
		{"--models m.json --arrival gamma", "--arrival"},
		{"--models m.json --rule fast", "--rule"},
		{"--models m.json --server 10.0.0", "--server"},
		{"--models m.json --server 10.0.0.1:70000", "--server"},
		{"--models m.json --bind nowhere", "--bind"},
		{"--models m.json --flops 5", "--flops"},
		{"--models m.json --flops 9:5", "--flops"},
		{"--models m.json --uplink-mbps 1:x", "--uplink-mbps"},
		{"--models m.json --mtu 100", "--mtu"},
		{"--models m.json --max-inflight 65", "--max-inflight"},
		{"--models m.json --key 00ff", "--key"},
		{"--models m.json --src-mac 01:02", "--src-mac"},
		{"--models a.json,b.json --mix 1", "--mix"},
		{"--models a.json --mix 0", "--mix"},
		{"--models m.json --pcap-only", "--pcap-only"},
		{"--models m.json --nosuch", "--nosuch"},
		{"--models m.json extra", "extra"},
		{"--rate 2", "models"},
		{"--models m.json --config /nonexistent/node.json", "--config"},
		{"--models m.json --dpdk --pcap-only --pcap x.pcap", "--dpdk and --pcap-only"},
		{"--models m.json --dpdk --bind 10.0.0.1", "--dpdk and --bind"},
		{"--models m.json --dpdk --bind 0.0.0.0", "--dpdk and --bind"},
		{"--models m.json -- --no-huge -l 1", "need --dpdk"},
		{"--models m.json --port 0", "--port needs --dpdk"},
		{"--models m.json --dpdk --port x", "--port"},
		{"--models m.json --dpdk --port 65536", "--port"},
		{"--models m.json --dpdk --mtu 9601", "--mtu 9601"},
		{"--models m.json --dpdk --src-port 65530 --devices 7", "--src-port 65530"},
		{"--models m.json --dpdk --dst-mac 02:00", "--dst-mac"},
		{"--models m.json --dpdk extra -- -l 1", "extra"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct lg_opts o;
		char err[512] = "";

		ck_assert_msg(parse(bad[i][0], &o, err, sizeof(err)) == -1, "accepted: %s", bad[i][0]);
		ck_assert_msg(strstr(err, bad[i][1]), "'%s' gave '%s', which does not name '%s'",
			      bad[i][0], err, bad[i][1]);
		lg_opts_free(&o);
	}
}
END_TEST

/* --dpdk: what comes after "--" is the EAL's, untouched (its flags are not ours); the MACs
 * count as given only when given. A build without DPDK refuses --dpdk alone, by name. */
START_TEST(dpdk_flags)
{
	struct lg_opts o;
	char err[512] = "";
	int rc = parse("--models m.json --dpdk --port 2 --dst-mac 02:00:00:00:00:09 --src-port 50000 "
		       "--mtu 9600 --devices 3 -- --no-huge --devices 5 -l 1", &o, err, sizeof(err));

#ifdef LG_HAVE_DPDK
	ck_assert_msg(rc == 0, "%s", err);
	ck_assert(o.dpdk);
	ck_assert_int_eq(o.port, 2);
	ck_assert_int_eq(o.n_devices, 3);
	ck_assert_int_eq(o.eal_argc, 5);
	ck_assert_str_eq(o.eal_argv[0], "--no-huge");
	ck_assert_str_eq(o.eal_argv[1], "--devices");
	ck_assert_str_eq(o.eal_argv[4], "1");
	ck_assert(o.dst_mac_set && !o.src_mac_set);
	ck_assert_uint_eq(o.dst_mac[5], 9);
	lg_opts_free(&o);
	ck_assert_int_eq(parse("--models m.json --dpdk --src-port 65531 --devices 5", &o, err,
			       sizeof(err)), 0);
	ck_assert_int_eq(o.port, -1);
	ck_assert_int_eq(o.eal_argc, 0);
#else
	ck_assert_int_eq(rc, -1);
	ck_assert_str_eq(err, "--dpdk: built without DPDK");
#endif
	lg_opts_free(&o);
	ck_assert_int_eq(parse("--models m.json", &o, err, sizeof(err)), 0);
	ck_assert(!o.dpdk && !o.dst_mac_set && !o.src_mac_set);
	lg_opts_free(&o);
}
END_TEST

/* --config: the first N devices' ids and keys, the server address and the models. */
START_TEST(config_devices)
{
	char path[] = "/tmp/lg-test-cfg-XXXXXX", err[512] = "";
	FILE *f;
	int fd = mkstemp(path);
	struct lg_opts o;

	ck_assert(fd >= 0);
	f = fdopen(fd, "w");
	fprintf(f, "{\"interface\": {\"ip\": \"10.1.2.3\", \"udp_port\": 9100},"
		   "\"models\": [{\"graph\": \"m/a.json\"}],"
		   "\"devices\": [{\"id\": 7, \"key\": \"%064d\"}, {\"id\": 9, \"key\": "
		   "\"ff%062d\"}, {\"id\": 11, \"key\": \"%064d\"}]}", 0, 0, 0);
	fclose(f);
	snprintf(err, sizeof(err), "--devices 2 --config %s", path);
	{
		char line[512];

		snprintf(line, sizeof(line), "%s", err);
		ck_assert_int_eq(parse(line, &o, err, sizeof(err)), 0);
	}
	ck_assert_uint_eq(o.ids[0], 7);
	ck_assert_uint_eq(o.ids[1], 9);
	ck_assert_uint_eq(o.keys[1][0], 0xff);
	ck_assert_uint_eq(o.keys[0][0], 0);
	ck_assert_uint_eq(o.server_port, 9100);
	ck_assert_uint_eq(o.server_ip, htonl(0x0a010203));
	ck_assert_int_eq(o.n_models, 1);
	ck_assert_msg(strstr(o.models[0], "/m/a.json"), "model path %s", o.models[0]);
	lg_opts_free(&o);
	{
		char line[512];

		snprintf(line, sizeof(line), "--devices 5 --config %s", path);
		ck_assert_int_eq(parse(line, &o, err, sizeof(err)), -1);
		ck_assert_msg(strstr(err, "3 devices"), "%s", err);
		lg_opts_free(&o);
	}
	unlink(path);
}
END_TEST

/* --mix 3,1 over 8 devices: 6 and 2, interleaved (smooth weighted round robin). */
START_TEST(mix_assignment)
{
	const char *root = getenv("DDS_SOURCE_ROOT");
	char line[1024], err[512];
	struct lg_opts o;
	struct lg_fleet f;
	int count[2] = {0};

	snprintf(line, sizeof(line), "--devices 8 --mix 3,1 --models %s/tests/dataplane/tiny_cnn.json,"
		 "%s/tests/dataplane/tiny_seg.json", root ? root : ".", root ? root : ".");
	ck_assert_int_eq(parse(line, &o, err, sizeof(err)), 0);
	ck_assert_msg(lg_fleet_new(&o, &f, err, sizeof(err)) == 0, "%s", err);
	for (int i = 0; i < f.n; i++) {
		count[f.dev[i].model]++;
		ck_assert(f.dev[i].flops >= 10e9 && f.dev[i].flops <= 15e9);
		ck_assert(f.dev[i].up_bw >= 1.1e6 / 8 && f.dev[i].up_bw <= 100e6 / 8);
		ck_assert_int_eq(lg_fleet_find(&f, f.dev[i].id), i);
	}
	ck_assert_int_eq(count[0], 6);
	ck_assert_int_eq(count[1], 2);
	for (int p = 1, m1 = 0; p <= f.n; p++) { /* every prefix follows the weights within 1 */
		m1 += f.dev[p - 1].model;
		ck_assert_msg(fabs(m1 - p / 4.0) <= 1, "prefix %d: %d devices of model 2", p, m1);
	}
	ck_assert_int_eq(lg_fleet_find(&f, 999), -1);
	lg_fleet_free(&f);
	lg_opts_free(&o);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("loadgen");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, poisson_moments);
	tcase_add_test(tc, fixed_gaps_and_phase);
	tcase_add_test(tc, flow_late_caller_and_end);
	tcase_add_test(tc, closed_loop);
	tcase_add_test(tc, stall_latencies_match_brute_force);
	tcase_add_test(tc, bad_flags_are_named);
	tcase_add_test(tc, dpdk_flags);
	tcase_add_test(tc, config_devices);
	tcase_add_test(tc, mix_assignment);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
