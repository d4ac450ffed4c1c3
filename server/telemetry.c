/* telemetry.c: the daemon's state and counters as DPDK telemetry commands under /dds/ (read by dds-ctl). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <rte_telemetry.h>

#include "srv_int.h"

/* What the callbacks read; set once before the commands are registered, never freed before
 * rte_eal_cleanup() stops the telemetry thread. */
static struct {
	struct dds_dp *dp;
	const struct srv_cfg *cfg;
	struct srv_exec *x;
	time_t started;
} tel;

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
	double p, p0;
	struct dds_dp_ops ops;

	(void)cmd;
	(void)params;
	TEL_NEED_DP();
	i = dds_dp_iface(tel.dp);
	inet_ntop(AF_INET, &i->ip, ip, sizeof(ip));
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", i->mac[0], i->mac[1],
		 i->mac[2], i->mac[3], i->mac[4], i->mac[5]);
	srv_exec_ops(tel.x, &ops);
	ops.price(ops.arg, &p, &p0);
	dds_dp_reasm_usage(tel.dp, &slots, &bytes);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "ip", ip);
	rte_tel_data_add_dict_string(d, "mac", mac);
	rte_tel_data_add_dict_int(d, "udp_port", ntohs(i->udp_port));
	rte_tel_data_add_dict_int(d, "port_id", tel.cfg->dp.port_id);
	rte_tel_data_add_dict_int(d, "queues", dds_dp_n_queues(tel.dp));
	rte_tel_data_add_dict_int(d, "mtu", (int)tel.cfg->dp.mtu);
	rte_tel_data_add_dict_int(d, "models", srv_exec_n_models(tel.x));
	rte_tel_data_add_dict_int(d, "devices", (int)tel.cfg->n_devices);
	snprintf(num, sizeof(num), "%.17g", p);
	rte_tel_data_add_dict_string(d, "price", num);
	snprintf(num, sizeof(num), "%.17g", p0);
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

int srv_telemetry_register(struct dds_dp *dp, const struct srv_cfg *c, struct srv_exec *x,
			   char *err, size_t n)
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
	};

	tel.dp = dp;
	tel.cfg = c;
	tel.x = x;
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
