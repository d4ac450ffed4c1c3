/* main.c: dds-server: init as a table of named steps, the rx lcores and the compute worker, clean stop on SIGINT/SIGTERM. */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include "srv_int.h"

static volatile bool force_quit;

struct srv {
	int argc;
	char **argv;
	char *eal_argv[2 * SRV_MAX_EAL_ARGS + 2];
	int eal_argc;
	int app_argc;
	char **app_argv;
	const char *config_path;
	bool check_only;
	struct srv_cfg cfg;
	struct srv_exec *x;
	struct srv_worker *w;
	struct dds_dp *dp;
	struct dds_dp_launch launch[DDS_DP_MAX_QUEUES];
	uint64_t model_hashes[SRV_MAX_MODELS]; /* cfg.dp.model_hashes: latency per model */
	char err[1024];
};

_Static_assert(SRV_MAX_MODELS <= DDS_DP_MAX_MODELS, "every model needs its latency histograms");

static void usage(FILE *to)
{
	fprintf(to,
		"usage: dds-server [EAL options] -- -c CONFIG [options]\n"
		"  -c, --config FILE     the JSON config (docs/server.md)\n"
		"      --check-config    read the config and the models, then exit\n"
		"      --set KEY=VALUE   override a config key, e.g. --set interface.mtu=9000\n"
		"      --ip ADDR         same as --set interface.ip=ADDR\n"
		"      --udp-port N      same as --set interface.udp_port=N\n"
		"  -h, --help            this text\n"
		"EAL options (before --) are added after the config's \"eal\" list.\n");
}

/* Split argv at "--": EAL options before, ours after (all ours if there is no "--"). */
static int step_args(struct srv *s)
{
	int dash = -1;

	for (int i = 1; i < s->argc && dash < 0; i++)
		if (!strcmp(s->argv[i], "--"))
			dash = i;
	s->app_argv = dash < 0 ? s->argv : s->argv + dash;
	s->app_argc = dash < 0 ? s->argc : s->argc - dash;
	s->eal_argc = dash < 0 ? 0 : dash - 1;
	return 0;
}

static int set_flag(struct srv *s, const char *key, const char *value)
{
	return srv_cfg_set(&s->cfg, key, value, s->err, sizeof(s->err));
}

static int step_config(struct srv *s)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 'k'},
		{"set", required_argument, NULL, 's'},    {"ip", required_argument, NULL, 'i'},
		{"udp-port", required_argument, NULL, 'u'}, {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}};
	int o;

	srv_cfg_defaults(&s->cfg);
	optind = 1;
	while ((o = getopt_long(s->app_argc, s->app_argv, "c:h", opts, NULL)) != -1) {
		char *eq;
		int rc = 0;

		switch (o) {
		case 'c':
			s->config_path = optarg;
			if (srv_cfg_load(&s->cfg, optarg, s->err, sizeof(s->err)))
				return -1;
			break;
		case 'k': s->check_only = true; break;
		case 'i': rc = set_flag(s, "interface.ip", optarg); break;
		case 'u': rc = set_flag(s, "interface.udp_port", optarg); break;
		case 's':
			eq = strchr(optarg, '=');
			if (!eq) {
				snprintf(s->err, sizeof(s->err), "--set %s: want KEY=VALUE", optarg);
				return -1;
			}
			*eq = '\0';
			rc = set_flag(s, optarg, eq + 1);
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); snprintf(s->err, sizeof(s->err), "bad command line"); return -1;
		}
		if (rc)
			return -1;
	}
	if (optind < s->app_argc) {
		snprintf(s->err, sizeof(s->err), "unexpected argument '%s'", s->app_argv[optind]);
		return -1;
	}
	if (!s->config_path) {
		snprintf(s->err, sizeof(s->err), "no config: give -c FILE (docs/server.md)");
		return -1;
	}
	return srv_cfg_check(&s->cfg, s->err, sizeof(s->err));
}

static void step_config_undo(struct srv *s)
{
	srv_cfg_free(&s->cfg);
}

/* A failed config step frees what it had read, like the other steps leave nothing behind. */
static int step_config_all(struct srv *s)
{
	int rc = step_config(s);

	if (rc)
		step_config_undo(s);
	return rc;
}

static int step_models(struct srv *s)
{
	s->x = srv_exec_new(&s->cfg, s->err, sizeof(s->err));
	if (s->x && s->check_only) {
		printf("%s: config OK, %d model(s), %u device(s)\n", s->config_path, s->cfg.n_models,
		       s->cfg.n_devices);
		force_quit = true;
	}
	return s->x ? 0 : -1;
}

static void step_models_undo(struct srv *s)
{
	srv_exec_free(s->x);
}

/* argv[0], the config's "eal" list, the command line's EAL options, and a file prefix of our
 * own unless one was given (so that dds-ctl finds the telemetry socket). */
static int step_eal(struct srv *s)
{
	bool prefix = false;
	int n = 0, rc;

	s->eal_argv[n++] = s->argv[0];
	for (int i = 0; i < s->cfg.n_eal; i++)
		s->eal_argv[n++] = s->cfg.eal[i];
	for (int i = 0; i < s->eal_argc && n < 2 * SRV_MAX_EAL_ARGS; i++)
		s->eal_argv[n++] = s->argv[1 + i];
	for (int i = 1; i < n; i++)
		prefix |= !strncmp(s->eal_argv[i], "--file-prefix", 13);
	if (!prefix)
		s->eal_argv[n++] = "--file-prefix=dds";
	s->eal_argv[n] = NULL;
	rc = rte_eal_init(n, s->eal_argv);
	if (rc < 0) {
		snprintf(s->err, sizeof(s->err), "rte_eal_init: %s (check the \"eal\" list)",
			 rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

static void step_eal_undo(struct srv *s)
{
	(void)s;
	rte_eal_cleanup();
}

static void on_signal(int sig)
{
	(void)sig;
	force_quit = true;
}

static int step_signals(struct srv *s)
{
	struct sigaction sa;

	(void)s;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL) ? -1 : 0;
}

/* The compute worker (scheduler + backend); its thread starts with the port. */
static int step_worker(struct srv *s)
{
	s->w = srv_worker_new(&s->cfg, s->x, &force_quit, s->err, sizeof(s->err));
	return s->w ? 0 : -1;
}

static void step_worker_undo(struct srv *s)
{
	srv_worker_free(s->w);
}

/* One rx queue per worker lcore; the main lcore runs the only queue when there is no worker. */
static int step_dataplane(struct srv *s)
{
	struct dds_dp_ops ops;
	unsigned workers = rte_lcore_count() - 1;

	s->cfg.dp.n_queues = (uint16_t)(workers ? workers : 1);
	if (s->cfg.worker_inline && s->cfg.dp.n_queues > 1) {
		snprintf(s->err, sizeof(s->err), "scheduler.inline: needs exactly one rx queue (EAL "
			 "-l: one lcore, or the main lcore and one more); %u lcores make %u queues",
			 rte_lcore_count(), s->cfg.dp.n_queues);
		return -1;
	}
	s->cfg.dp.price_recent_ns = s->cfg.pricing.expire_rounds * s->cfg.pricing.round_ns;
	s->cfg.dp.stop_wait_ns = s->cfg.stop_grace_ns + 1000000000ull;
	s->cfg.dp.busy_retry_ms = s->cfg.busy_retry_ms;
	s->cfg.dp.n_models = srv_exec_n_models(s->x);
	for (int i = 0; i < s->cfg.dp.n_models; i++)
		s->model_hashes[i] = srv_exec_model(s->x, i)->hash;
	s->cfg.dp.model_hashes = s->model_hashes;
	srv_exec_ops(s->x, s->w, &ops);
	s->dp = dds_dp_create(&s->cfg.dp, &ops, s->err, sizeof(s->err));
	return s->dp ? 0 : -1;
}

static void step_dataplane_undo(struct srv *s)
{
	srv_telemetry_detach();
	dds_dp_free(s->dp);
}

static int step_telemetry(struct srv *s)
{
	return srv_telemetry_register(s->dp, &s->cfg, s->x, s->w, s->err, sizeof(s->err));
}

static int step_start(struct srv *s)
{
	if (srv_worker_start(s->w, s->err, sizeof(s->err)))
		return -1;
	return dds_dp_start(s->dp, s->err, sizeof(s->err)) ? -1 : 0;
}

/* The worker's thread must be gone before the dataplane (its return rings) is freed. */
static void step_start_undo(struct srv *s)
{
	srv_worker_stop(s->w);
}

static const struct step {
	const char *name;
	int (*run)(struct srv *s);
	void (*undo)(struct srv *s);
	bool needs_eal; /* skipped by --check-config */
} steps[] = {
	{"arguments", step_args, NULL, false},
	{"config", step_config_all, step_config_undo, false},
	{"models", step_models, step_models_undo, false},
	{"eal", step_eal, step_eal_undo, true},
	{"signals", step_signals, NULL, true},
	{"worker", step_worker, step_worker_undo, true},
	{"dataplane", step_dataplane, step_dataplane_undo, true},
	{"telemetry", step_telemetry, NULL, true},
	{"start", step_start, step_start_undo, true},
};
#define N_STEPS ((int)(sizeof(steps) / sizeof(steps[0])))

/* The counters, flushed to stdout as one JSON object when the daemon stops. */
static void print_counters(const struct srv *s)
{
	json_t *o = json_object(), *c = json_object(), *p = json_object(), *w = json_object();
	struct srv_worker_stats ws;
	struct dds_counters sum;
	char *text;

	dds_dp_counters(s->dp, -1, &sum);
	for (int i = 0; i < DDS_CTR__COUNT; i++)
		json_object_set_new(c, dds_ctr_name(i), json_integer((json_int_t)sum.v[i]));
	for (int r = 0; r < DDS_PROTO_REASON__COUNT; r++)
		json_object_set_new(p, dds_proto_reason_name(r),
				    json_integer((json_int_t)dds_dp_proto_count(s->dp, r)));
	srv_worker_stats(s->w, &ws);
	for (int v = 0; v < DDS_SCHED_VERDICT__COUNT; v++)
		json_object_set_new(w, dds_sched_verdict_name(v),
				    json_integer((json_int_t)ws.sched.verdicts[v]));
	json_object_set_new(w, "batches", json_integer((json_int_t)ws.sched.batches));
	json_object_set_new(w, "completed", json_integer((json_int_t)ws.sched.completed));
	json_object_set_new(w, "exec_failed", json_integer((json_int_t)ws.exec_failed));
	json_object_set_new(w, "refused_stop", json_integer((json_int_t)ws.refused_stop));
	json_object_set_new(o, "counters", c);
	json_object_set_new(o, "proto", p);
	json_object_set_new(o, "sched", w);
	text = json_dumps(o, JSON_SORT_KEYS);
	if (text)
		printf("%s\n", text);
	fflush(stdout);
	free(text);
	json_decref(o);
}

/* Launch the rx loops, then wait for force_quit on the main lcore (or run the loop there). */
static void run(struct srv *s)
{
	unsigned lcore, q = 0;
	uint16_t nq = dds_dp_n_queues(s->dp);

	for (unsigned i = 0; i < nq; i++)
		s->launch[i] = (struct dds_dp_launch){.dp = s->dp, .queue = (uint16_t)i,
						      .stop = &force_quit};
	fprintf(stderr, "dds-server: running, %u rx queue(s), MAC by %s; SIGINT or SIGTERM stops\n",
		nq, dds_proto_mac_impl());
	if (s->cfg.dp.proto.accept_replays)
		fprintf(stderr, "dds-server: WARNING: reassembly.accept_replays is on: replayed "
			"requests are served and billed again (for load tests only)\n");
	if (rte_lcore_count() == 1) {
		dds_dp_lcore_main(&s->launch[0]);
	} else {
		RTE_LCORE_FOREACH_WORKER(lcore)
			rte_eal_remote_launch(dds_dp_lcore_main, &s->launch[q++], lcore);
		while (!force_quit) {
			struct timespec ts = {0, 50 * 1000 * 1000};

			nanosleep(&ts, NULL);
		}
		rte_eal_mp_wait_lcore();
	}
	srv_worker_stop(s->w);
	fprintf(stderr, "dds-server: stopped\n");
	print_counters(s);
}

int main(int argc, char **argv)
{
	static struct srv s;
	int done = 0, rc = 0;

	s.argc = argc;
	s.argv = argv;
	for (; done < N_STEPS; done++) {
		if (steps[done].needs_eal && s.check_only)
			break;
		if (steps[done].run(&s)) {
			fprintf(stderr, "dds-server: init step '%s' failed: %s\n", steps[done].name,
				s.err[0] ? s.err : "(no detail)");
			rc = 1;
			break;
		}
	}
	if (done == N_STEPS)
		run(&s);
	while (done-- > 0)
		if (steps[done].undo)
			steps[done].undo(&s);
	return rc;
}
