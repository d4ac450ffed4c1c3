/* dds_dpdk.h: the DPDK half of the dataplane: one port, its queues and mempool, and the per-lcore rx/tx loop.
 *
 * Each rx lcore owns one rx/tx queue pair, its counters, its protocol receiver (validation, MAC,
 * replay, reassembly; protocol/dds_proto.h) and its executor context. The loop answers ARP and
 * ICMP echo itself, hands UDP payloads to the protocol receiver, and for every complete request
 * calls the executor through one narrow boundary (struct dds_dp_ops: "run this complete request,
 * give me the result") and sends the result back in RESULT fragments carrying the current price.
 *
 * Life cycle (DPDK's examples): dds_dp_create() after rte_eal_init(); dds_dp_start(); launch
 * dds_dp_lcore_main() on each rx lcore; set *stop (the caller's force_quit) to stop them; wait for
 * the lcores; dds_dp_free() (stops and closes the port). Telemetry may read counters at any time.
 */
#ifndef DDS_DPDK_H
#define DDS_DPDK_H

#include <stdbool.h>
#include <stdint.h>

#include "dds_dataplane.h"
#include "dds_proto.h"

#define DDS_DP_MAX_QUEUES 16

/* A complete, authenticated REQUEST whose split has been checked against its model. */
struct dds_dp_request {
	uint32_t device_id;
	uint64_t request_id;
	uint64_t model_hash;
	double budget;
	const struct dds_proto_tmsg *tm; /* the tensors sent, in payload order */
	const void *payload;             /* tm->payload_len bytes, float32 little-endian */
};

/* What the executor returns: the model's output tensor. data stays valid until the next call
 * on the same context. */
struct dds_dp_result {
	struct dds_proto_tensor t;
	const void *data;
	uint32_t len;
};

/* The server side of the boundary. Every function is called from rx lcores, concurrently, each
 * with the context that ctx_new() made for its queue; price() and known_model() with `arg`. */
struct dds_dp_ops {
	/* A context for one rx queue (an engine per model, buffers). NULL on failure. */
	void *(*ctx_new)(void *arg, unsigned queue);
	void (*ctx_free)(void *ctx);
	/* Run the request; 0 with *res filled, or a dds_proto_reason to refuse it with (ERROR). */
	int (*execute)(void *ctx, const struct dds_dp_request *rq, struct dds_dp_result *res);
	/* Check a completed request's model and split: DDS_PROTO_OK or the reason to refuse. */
	int (*check)(void *arg, uint64_t model_hash, const struct dds_proto_tmsg *tm);
	/* The price now and the base price (the seam for pricing/). */
	void (*price)(void *arg, double *p, double *p0);
	/* A device's budget from an accepted request (may be NULL). */
	void (*budget)(void *arg, uint32_t device_id, double x);
	/* Control work, run by queue 0's lcore on its drain timer (may be NULL): e.g. closing
	 * pricing rounds, so that one thread is the market's only writer. */
	void (*poll)(void *arg, uint64_t now_ns);
	void *arg;
};

struct dds_dp_device {
	uint32_t id;
	uint8_t key[DDS_PROTO_KEY_LEN];
};

struct dds_dp_cfg {
	uint16_t port_id;
	uint16_t n_queues;     /* one per rx lcore, 1 .. DDS_DP_MAX_QUEUES */
	uint16_t rx_desc, tx_desc;
	uint16_t burst;        /* packets per rx burst, 1 .. 512 */
	uint32_t mtu;          /* IP MTU of the port and of our responses */
	uint32_t n_mbufs, mbuf_cache;
	uint32_t drain_us;     /* flush partly filled tx buffers at least this often */
	bool promiscuous;      /* virtual devices on a veth need it; NICs do not */
	bool tx_udp_csum;
	struct dds_iface iface; /* mac is read from the port by dds_dp_create() */
	struct dds_proto_rx_config proto; /* reassembly limits, per queue */
	const struct dds_dp_device *devices;
	uint32_t n_devices;
};

struct dds_dp;

/* Configure the port (queues, RSS when the PMD has it and n_queues > 1, MTU), the mempool and
 * every queue's state (protocol receiver, executor context from ops). Does not start the port.
 * Returns NULL with a message in err on failure; nothing is left allocated then. */
struct dds_dp *dds_dp_create(const struct dds_dp_cfg *cfg, const struct dds_dp_ops *ops,
			     char *err, size_t err_len);
/* Start the port. Returns 0, or a negative errno with err filled. */
int dds_dp_start(struct dds_dp *dp, char *err, size_t err_len);
/* Stop and close the port, free the queues' state and the mempool. NULL is a no-op. */
void dds_dp_free(struct dds_dp *dp);

/* What rte_eal_remote_launch() runs: the rx loop of queue `queue` (a struct dds_dp_launch *). */
struct dds_dp_launch {
	struct dds_dp *dp;
	uint16_t queue;
	volatile bool *stop;
};
int dds_dp_lcore_main(void *launch);

/* Our MAC as read from the port (valid after dds_dp_create). */
const struct dds_iface *dds_dp_iface(const struct dds_dp *dp);
uint16_t dds_dp_n_queues(const struct dds_dp *dp);

/* Counters of one queue, or their sum over all queues (queue = -1), into *out. */
void dds_dp_counters(const struct dds_dp *dp, int queue, struct dds_counters *out);
/* The protocol receivers' counter of `reason`, summed over queues, and their held state. */
uint64_t dds_dp_proto_count(const struct dds_dp *dp, int reason);
void dds_dp_reasm_usage(const struct dds_dp *dp, uint64_t *slots, uint64_t *bytes);
/* Mbufs out of the mempool now (held by the PMD, the loops, or leaked). */
unsigned dds_dp_mbufs_in_use(const struct dds_dp *dp);

#endif
