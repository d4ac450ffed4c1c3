/* dp_int.h: the DPDK dataplane's internal state, shared by port setup and the rx loop (private). */
#ifndef DDS_DP_INT_H
#define DDS_DP_INT_H

#include <rte_common.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "dds_dpdk.h"
#include "dds_hist.h"

#define DP_RING_SIZE 4096           /* a queue's return ring: at most 4095 jobs out at once */
#define DP_HIST_MAX_NS 60000000000ull /* latencies above 60 s count as 60 s (and as overflow) */

/* What one queue knows of a configured device (index = its rank in dp->dev_ids). */
struct dp_dev {
	struct dds_peer peer;  /* where its last authenticated datagram came from */
	uint64_t seen_ns;      /* when (0: never on this queue) */
	uint32_t rx_mtu;       /* from its REGISTER (0: none yet, the port's MTU is used) */
};

/* Everything one rx queue's lcore owns; alone on its cache lines (no false sharing). Only that
 * lcore writes it; telemetry reads the counters (relaxed atomics) and histograms (snapshots). */
struct dp_queue {
	struct dds_counters ctr;
	uint64_t refused[DDS_PROTO_REASON__COUNT]; /* requests refused after reassembly, by reason */
	struct dds_proto_rx *rx;
	struct dds_proto_devtab *devs;
	void *ctx; /* the inline executor's context for this queue */
	struct rte_eth_dev_tx_buffer *txb;
	struct rte_ring *done;   /* jobs coming back from the executor (SP/SC) */
	uint32_t inflight;       /* jobs handed out and not back yet */
	uint64_t price_round;    /* the last round announced with PRICE */
	struct dp_dev *dev;      /* n_devices entries */
	struct dds_hist *lat[DDS_DP_MAX_MODELS + 1][DDS_DP_LAT__COUNT]; /* [0]: all; [1 + m] */
	uint16_t id;
	uint16_t ip_id;
} __rte_cache_aligned;

struct dds_dp {
	struct dds_dp_cfg cfg;
	struct dds_dp_ops ops;
	struct rte_mempool *pool;
	bool configured, started;
	uint64_t rx_csum;  /* RTE_ETH_RX_OFFLOAD_IPV4_CKSUM / _UDP_CKSUM bits enabled on the port */
	double ns_per_tsc;
	uint32_t *dev_ids; /* the configured device ids, ascending */
	struct dp_queue q[DDS_DP_MAX_QUEUES];
};

/* Handle one received burst on queue q (the loop's body; also the benchmark's). */
void dp_burst(struct dds_dp *dp, struct dp_queue *q, struct rte_mbuf **pkts, uint16_t n,
	      uint64_t now_ns);
/* Replace queue q's protocol receiver and device table by fresh ones (replay windows
 * forgotten): for benchmarks that replay a capture. Returns 0, or -1 (old state kept). */
int dp_queue_proto_reset(struct dds_dp *dp, struct dp_queue *q);
/* The rank of a configured device id in dp->dev_ids, or -1. */
int dp_dev_index(const struct dds_dp *dp, uint32_t id);

#endif
