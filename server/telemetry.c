/* telemetry.c: the daemon's state and counters as DPDK telemetry commands under /dds/ (read by dds-ctl). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_telemetry.h>

#include "dds_hist.h"
#include "srv_int.h"

/* What the callbacks read; set once before the commands are registered, never freed before
 * rte_eal_cleanup() stops the telemetry thread. The latency baseline (what /dds/latency_reset
 * last saw) is the telemetry's own, under `lock` (each client has its own thread). */
static struct {
	struct dds_dp *dp;
	const struct srv_cfg *cfg;
	struct srv_exec *x;
	struct srv_worker *w;
	time_t started;
	pthread_mutex_t lock;
	struct dds_hist *base[DDS_DP_MAX_MODELS + 1][DDS_DP_LAT__COUNT]; /* [0]: all; [1 + m] */
} tel = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The commands answer "stopped" (an error) once the dataplane is gone. */
#define TEL_NEED_DP() do { if (!__atomic_load_n(&tel.dp, __ATOMIC_ACQUIRE)) return -1; } while (0)

void srv_telemetry_detach(void)
{
	__atomic_store_n(&tel.dp, NULL, __ATOMIC_RELEASE);
}

static void tel_counters(struct rte_tel_data *d, int queue)
{
	struct dds_counters c;

	dds_dp_counters(tel.dp, queue, &c);
	rte_tel_data_start_dict(d);
	for (int i = 0; i < DDS_CTR__COUNT; i++)
		rte_tel_data_add_dict_u64(d, dds_ctr_name(i), c.v[i]);
}

static int tel_cmd_counters(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	TEL_NEED_DP();
	tel_counters(d, -1);
	return 0;
}

static int tel_cmd_queue(const char *cmd, const char *params, struct rte_tel_data *d)
{
	char *end;
	long q = params ? strtol(params, &end, 10) : -1;

	(void)cmd;
	TEL_NEED_DP();
	if (!params || *end || q < 0 || q >= dds_dp_n_queues(tel.dp))
		return -1;
	tel_counters(d, (int)q);
	return 0;
}

static int tel_cmd_proto(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	TEL_NEED_DP();
	rte_tel_data_start_dict(d);
	for (int r = 0; r < DDS_PROTO_REASON__COUNT; r++)
		rte_tel_data_add_dict_u64(d, dds_proto_reason_name(r), dds_dp_proto_count(tel.dp, r));
	return 0;
}

static int tel_cmd_state(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct dds_iface *i;
	char ip[INET_ADDRSTRLEN], mac[18], num[32];
	uint64_t slots, bytes;
	struct dds_price_view pv;

	(void)cmd;
	(void)params;
	TEL_NEED_DP();
	i = dds_dp_iface(tel.dp);
	inet_ntop(AF_INET, &i->ip, ip, sizeof(ip));
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", i->mac[0], i->mac[1],
		 i->mac[2], i->mac[3], i->mac[4], i->mac[5]);
	dds_pricing_read_price(srv_exec_market(tel.x), &pv);
	dds_dp_reasm_usage(tel.dp, &slots, &bytes);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "ip", ip);
	rte_tel_data_add_dict_string(d, "mac", mac);
	rte_tel_data_add_dict_int(d, "udp_port", ntohs(i->udp_port));
	rte_tel_data_add_dict_int(d, "port_id", tel.cfg->dp.port_id);
	rte_tel_data_add_dict_int(d, "queues", dds_dp_n_queues(tel.dp));
	rte_tel_data_add_dict_int(d, "mtu", (int)tel.cfg->dp.mtu);
	rte_tel_data_add_dict_string(d, "rx_checksum_offload", dds_dp_rx_csum(tel.dp));
	rte_tel_data_add_dict_string(d, "mac_impl", dds_proto_mac_impl());
	rte_tel_data_add_dict_string(d, "accept_replays",
				     tel.cfg->dp.proto.accept_replays ? "true" : "false");
	rte_tel_data_add_dict_int(d, "models", srv_exec_n_models(tel.x));
	rte_tel_data_add_dict_int(d, "devices", (int)tel.cfg->n_devices);
	snprintf(num, sizeof(num), "%.17g", pv.price);
	rte_tel_data_add_dict_string(d, "price", num);
	snprintf(num, sizeof(num), "%.17g", tel.cfg->pricing.base_price);
	rte_tel_data_add_dict_string(d, "base_price", num);
	rte_tel_data_add_dict_u64(d, "reassembly_requests", slots);
	rte_tel_data_add_dict_u64(d, "reassembly_bytes", bytes);
	rte_tel_data_add_dict_u64(d, "mbufs_in_use", dds_dp_mbufs_in_use(tel.dp));
	rte_tel_data_add_dict_u64(d, "uptime_s", (uint64_t)(time(NULL) - tel.started));
	return 0;
}

static int tel_cmd_models(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	(void)params;
	TEL_NEED_DP();
	rte_tel_data_start_dict(d);
	for (int i = 0; i < srv_exec_n_models(tel.x); i++) {
		const struct dds_model *m = srv_exec_model(tel.x, i);
		char hash[19];

		snprintf(hash, sizeof(hash), "0x%016llx", (unsigned long long)m->hash);
		rte_tel_data_add_dict_string(d, hash, m->name);
	}
	return 0;
}

#define TEL_MAX_SPLITS 40 /* 6 keys each within the dictionary's 256 entries */

/* A split's values as layer names ("input" for the raw input), comma-separated: what
 * `dds-model meet` takes. Names cut short at the telemetry string limit end in "...". */
static void tel_split_values(const struct dds_model *m, const struct srv_split_info *sp,
			     char *buf, size_t n)
{
	size_t len = 0;

	buf[0] = 0;
	for (int k = 0; k < sp->n_vals && len < n; k++)
		len += (size_t)snprintf(buf + len, n - len, "%s%s", k ? "," : "",
					sp->vals[k] ? m->layers[sp->vals[k] - 1].name : "input");
	if (len >= n && n > 4)
		memcpy(buf + n - 4, "...", 4);
}

/* The splits the worker has seen, oldest first, as flat keys "split<i>_<field>". */
static int tel_cmd_splits(const char *cmd, const char *params, struct rte_tel_data *d)
{
	struct srv_split_info sp[TEL_MAX_SPLITS];
	char key[64], val[RTE_TEL_MAX_STRING_LEN];
	int n;

	(void)cmd;
	(void)params;
	TEL_NEED_DP();
	n = srv_groups_splits(srv_worker_groups(tel.w), sp, TEL_MAX_SPLITS);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_int(d, "splits", n);
	rte_tel_data_add_dict_int(d, "shown", n < TEL_MAX_SPLITS ? n : TEL_MAX_SPLITS);
	for (int i = 0; i < n && i < TEL_MAX_SPLITS; i++) {
		const struct dds_model *m = srv_exec_model(tel.x, sp[i].model);

#define TEL_KEY(field) (snprintf(key, sizeof(key), "split%d_%s", i, field), key)
		rte_tel_data_add_dict_string(d, TEL_KEY("model"), m->name);
		tel_split_values(m, &sp[i], val, sizeof(val));
		rte_tel_data_add_dict_string(d, TEL_KEY("values"), val);
		rte_tel_data_add_dict_string(d, TEL_KEY("group"), sp[i].meet ? "meet" : "own");
		rte_tel_data_add_dict_int(d, TEL_KEY("bridged"), sp[i].bridged);
		rte_tel_data_add_dict_u64(d, TEL_KEY("requests"), sp[i].requests);
		snprintf(val, sizeof(val), "%.6g", sp[i].work / 1e9);
		rte_tel_data_add_dict_string(d, TEL_KEY("tail_gflop"), val);
#undef TEL_KEY
	}
	return 0;
}

static int tel_cmd_pricing(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct dds_pricing *pr;
	struct dds_pricing_stats st;
	struct dds_price_view v;
	uint64_t rejected = 0;
	char num[32];

	(void)cmd;
	(void)params;
	TEL_NEED_DP();
	pr = srv_exec_market(tel.x);
	dds_pricing_read_price(pr, &v);
	dds_pricing_stats(pr, &st);
	for (int r = 1; r < DDS_PRICING_REASON__COUNT; r++)
		rejected += st.rejected[r];
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "round", v.round);
	snprintf(num, sizeof(num), "%.17g", v.price);
	rte_tel_data_add_dict_string(d, "price", num);
	snprintf(num, sizeof(num), "%.17g", v.sum_budget);
	rte_tel_data_add_dict_string(d, "sum_budget", num);
	rte_tel_data_add_dict_u64(d, "active_devices", v.n_active);
	rte_tel_data_add_dict_u64(d, "devices", st.devices);
	rte_tel_data_add_dict_u64(d, "budgets_accepted", st.accepted);
	rte_tel_data_add_dict_u64(d, "budgets_rejected", rejected);
	rte_tel_data_add_dict_u64(d, "late_closes", st.late_closes);
	return 0;
}

/* One interval's summary as flat keys "<name>_count", "<name>_p50_ns", ... (nanoseconds). */
static void tel_hist(struct rte_tel_data *d, const char *name, const struct dds_hist *h)
{
	struct dds_hist_summary s;
	char key[64];

	dds_hist_summarize(h, &s);
#define TEL_U64(suffix, v)                                                   \
	do {                                                                 \
		snprintf(key, sizeof(key), "%s_%s", name, suffix);          \
		rte_tel_data_add_dict_u64(d, key, v);                        \
	} while (0)
	TEL_U64("count", s.count);
	TEL_U64("p50_ns", s.p50);
	TEL_U64("p90_ns", s.p90);
	TEL_U64("p99_ns", s.p99);
	TEL_U64("p999_ns", s.p999);
	TEL_U64("max_ns", s.max);
	TEL_U64("mean_ns", (uint64_t)(s.mean + 0.5));
	TEL_U64("overflow", s.overflow);
#undef TEL_U64
}

/* The model a latency command's parameter names: -1 for none (all models), -2 for no such
 * model. */
static int tel_model_param(const char *params)
{
	if (!params || !*params)
		return -1;
	for (int i = 0; i < srv_exec_n_models(tel.x); i++)
		if (!strcmp(srv_exec_model(tel.x, i)->name, params))
			return i;
	return -2;
}

/* Baselines for every row (all models, then each), made on first use; under tel.lock. */
static int tel_bases(int rows)
{
	for (int r = 0; r < rows; r++)
		for (int i = 0; i < DDS_DP_LAT__COUNT; i++)
			if (!tel.base[r][i] && !(tel.base[r][i] = dds_dp_hist_new()))
				return -1;
	return 0;
}

/* The latency histograms of all models (model -1) or of one, since the last reset; with
 * `reset`, every baseline (all models' and each model's) moves to now. */
static int tel_latency(struct rte_tel_data *d, int model, bool reset)
{
	struct dds_hist *cur = dds_dp_hist_new(), *since = dds_dp_hist_new();
	int rows = 1 + srv_exec_n_models(tel.x);
	int rc = cur && since && model >= -1 ? 0 : -1;

	pthread_mutex_lock(&tel.lock);
	if (rc == 0)
		rc = tel_bases(rows);
	if (rc == 0)
		rte_tel_data_start_dict(d);
	for (int i = 0; i < DDS_DP_LAT__COUNT && rc == 0; i++) {
		rc = dds_dp_latency(tel.dp, model, i, cur) || dds_hist_snapshot(cur, since) ||
		     dds_hist_sub(since, tel.base[model + 1][i]) ? -1 : 0;
		if (rc == 0)
			tel_hist(d, dds_dp_lat_name(i), since);
	}
	for (int r = 0; r < rows && rc == 0 && reset; r++)
		for (int i = 0; i < DDS_DP_LAT__COUNT && rc == 0; i++)
			rc = dds_dp_latency(tel.dp, r - 1, i, cur) ||
			     dds_hist_snapshot(cur, tel.base[r][i]) ? -1 : 0;
	pthread_mutex_unlock(&tel.lock);
	dds_hist_free(cur);
	dds_hist_free(since);
	return rc;
}

static int tel_cmd_latency(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	TEL_NEED_DP();
	return tel_latency(d, tel_model_param(params), false);
}

static int tel_cmd_latency_reset(const char *cmd, const char *params, struct rte_tel_data *d)
{
	(void)cmd;
	TEL_NEED_DP();
	return tel_latency(d, tel_model_param(params), true);
}

static int tel_cmd_sched(const char *cmd, const char *params, struct rte_tel_data *d)
{
	static const char *const sizes[9] = {"batches_1", "batches_2", "batches_3_4",
					     "batches_5_8", "batches_9_16", "batches_17_32",
					     "batches_33_64", "batches_65_128", "batches_129_256"};
	struct srv_worker_stats st;
	char key[64];

	(void)cmd;
	(void)params;
	TEL_NEED_DP();
	srv_worker_stats(tel.w, &st);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "backend", st.backend);
	rte_tel_data_add_dict_string(d, "worker", st.mode ? st.mode : "not started");
	rte_tel_data_add_dict_u64(d, "groups", st.grp.groups);
	rte_tel_data_add_dict_u64(d, "plans", st.grp.plans);
	rte_tel_data_add_dict_u64(d, "bridge_plans", st.grp.bridges);
	rte_tel_data_add_dict_u64(d, "merged", st.grp.merged);
	rte_tel_data_add_dict_u64(d, "mixed_batches", st.grp.mixed_batches);
	rte_tel_data_add_dict_u64(d, "queued", st.sched.queued);
	rte_tel_data_add_dict_u64(d, "running", st.sched.running);
	rte_tel_data_add_dict_u64(d, "devices", st.sched.devices);
	rte_tel_data_add_dict_u64(d, "batches", st.sched.batches);
	rte_tel_data_add_dict_u64(d, "dispatched", st.sched.dispatched);
	rte_tel_data_add_dict_u64(d, "completed", st.sched.completed);
	for (int v = 0; v < DDS_SCHED_VERDICT__COUNT; v++) {
		snprintf(key, sizeof(key), "enqueue_%s", dds_sched_verdict_name(v));
		rte_tel_data_add_dict_u64(d, key, st.sched.verdicts[v]);
	}
	rte_tel_data_add_dict_u64(d, "exec_failed", st.exec_failed);
	rte_tel_data_add_dict_u64(d, "refused_shutting_down", st.refused_stop);
	rte_tel_data_add_dict_u64(d, "ring_full", st.ring_full);
	for (int i = 0; i < 9; i++)
		rte_tel_data_add_dict_u64(d, sizes[i], st.batch_hist[i]);
	return 0;
}

int srv_telemetry_register(struct dds_dp *dp, const struct srv_cfg *c, struct srv_exec *x,
			   struct srv_worker *w, char *err, size_t n)
{
	static const struct {
		const char *cmd, *help;
		telemetry_cb fn;
	} cmds[] = {
		{"/dds/counters", "Packet-path counters, summed over queues. No parameters",
		 tel_cmd_counters},
		{"/dds/queue", "Packet-path counters of one rx queue. Parameter: queue number",
		 tel_cmd_queue},
		{"/dds/proto", "Protocol drops and refusals by reason. No parameters", tel_cmd_proto},
		{"/dds/state", "Addresses, queues, price, reassembly use, uptime. No parameters",
		 tel_cmd_state},
		{"/dds/models", "Models served, by wire hash. No parameters", tel_cmd_models},
		{"/dds/pricing", "The market's last round: price, budgets, devices. No parameters",
		 tel_cmd_pricing},
		{"/dds/latency", "Server-side latency per stage since the last reset (ns). "
		 "Parameter: a model's name (default: all models)", tel_cmd_latency},
		{"/dds/latency_reset", "Latency per stage since the last reset (ns), then reset (all "
		 "models). Parameter: a model's name", tel_cmd_latency_reset},
		{"/dds/splits", "Splits seen: model, values sent, group (own or meet), requests. No "
		 "parameters", tel_cmd_splits},
		{"/dds/sched", "Scheduler and backend: queues, groups, plans, batches, verdicts. No "
		 "parameters", tel_cmd_sched},
	};

	tel.dp = dp;
	tel.cfg = c;
	tel.x = x;
	tel.w = w;
	tel.started = time(NULL);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		int rc = rte_telemetry_register_cmd(cmds[i].cmd, cmds[i].fn, cmds[i].help);

		if (rc) {
			snprintf(err, n, "telemetry command %s: error %d", cmds[i].cmd, rc);
			return -1;
		}
	}
	return 0;
}
