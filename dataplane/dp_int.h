/* dp_int.h: the DPDK dataplane's internal state, shared by port setup and the rx loop (private). */
#ifndef DDS_DP_INT_H
#define DDS_DP_INT_H

#include <rte_common.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>

#include "dds_dpdk.h"

/* Everything one rx queue's lcore owns; alone on its cache lines (no false sharing). Only that
 * lcore writes it; telemetry reads the counters (relaxed atomics). */
struct dp_queue {
	struct dds_counters ctr;
	uint64_t refused[DDS_PROTO_REASON__COUNT]; /* requests refused after reassembly, by reason */
	struct dds_proto_rx *rx;
	struct dds_proto_devtab *devs;
	void *ctx; /* the executor's context for this queue */
	struct rte_eth_dev_tx_buffer *txb;
	uint16_t id;
	uint16_t ip_id;
} __rte_cache_aligned;

struct dds_dp {
	struct dds_dp_cfg cfg;
	struct dds_dp_ops ops;
	struct rte_mempool *pool;
	bool configured, started;
	double ns_per_tsc;
	struct dp_queue q[DDS_DP_MAX_QUEUES];
};

/* Handle one received burst on queue q (the loop's body; also the benchmark's). */
void dp_burst(struct dds_dp *dp, struct dp_queue *q, struct rte_mbuf **pkts, uint16_t n,
	      uint64_t now_ns);
/* Replace queue q's protocol receiver and device table by fresh ones (replay windows
 * forgotten): for benchmarks that replay a capture. Returns 0, or -1 (old state kept). */
int dp_queue_proto_reset(struct dds_dp *dp, struct dp_queue *q);

#endif
