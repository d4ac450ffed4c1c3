/* dds_dpdk.h: the DPDK half of the dataplane: one port, its queues and mempool, and the per-lcore rx/tx loop.
 *
 * Each rx lcore owns one rx/tx queue pair, its counters, its protocol receiver (validation, MAC,
 * replay, reassembly; protocol/dds_proto.h), its latency histograms and what it knows of the
 * devices it has heard (address, rx_mtu, last time seen). The loop answers ARP and ICMP echo
 * itself, hands UDP payloads to the protocol receiver, checks every complete request's model,
 * split and budget, and hands it to the executor through one narrow boundary (struct dds_dp_ops):
 *
 *   asynchronous (ops.submit set: dds-server): the request becomes a job (struct dds_dp_job) that
 *     the executor's thread takes; it hands the job back with dds_dp_job_done() onto the queue's
 *     single-producer/single-consumer return ring; the rx lcore sends the RESULT fragments (or
 *     ERROR, or BUSY), records the job's stage intervals in its histograms and frees the job.
 *   inline (ops.submit NULL, ops.execute set: benchmarks): run on the rx lcore at once.
 *
 * When the round number of the market changes (ops.round), every queue sends a PRICE message to
 * the devices it heard from recently. On stop the loop answers what it already received, refuses
 * partial requests with ERROR shutting_down, and waits (bounded) for the jobs it handed out.
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
#include "dds_sched.h"

struct rte_ring;

#define DDS_DP_MAX_QUEUES 16
#define DDS_DP_MAX_MODELS 16 /* models with latency histograms of their own */
#define DDS_DP_BUSY (-1) /* a job's verdict: no capacity now, answer BUSY with retry_ms */

/* The server-side latency intervals every served request adds to its queue's histograms
 * (X(name, from stage, to stage)), and the dataplane + scheduler overhead. */
#define DDS_DP_LAT_LIST(X) \
	X(reassembly, first_frag, complete) \
	X(handoff, complete, queued) \
	X(queue, queued, batch_start) \
	X(compute, batch_start, compute_done) \
	X(return, compute_done, sent) \
	X(end_to_end, first_frag, sent)

enum dds_dp_lat {
#define DDS_DP_LAT_ENUM(name, from, to) DDS_DP_LAT_##name,
	DDS_DP_LAT_LIST(DDS_DP_LAT_ENUM)
#undef DDS_DP_LAT_ENUM
	DDS_DP_LAT_overhead, /* end_to_end - compute */
	DDS_DP_LAT__COUNT
};
/* "reassembly", ..., "overhead"; NULL out of range. */
const char *dds_dp_lat_name(int lat);

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

/* A request handed to an asynchronous executor and back. The dataplane fills sr.t[FIRST_FRAG],
 * sr.t[COMPLETE], sr.user (= the job), rq and tm; the executor fills the rest of sr (it may hand
 * sr to a dds_sched, which stamps QUEUED, BATCH_START and COMPUTE_DONE), then verdict and, when
 * it is DDS_PROTO_OK, out_t/out/out_len; then it calls dds_dp_job_done(). */
struct dds_dp_job {
	struct dds_sched_req sr;
	struct dds_dp_request rq;  /* rq.tm = &tm; rq.payload: the reassembled buffer (the job's) */
	struct dds_proto_tmsg tm;
	int verdict;               /* DDS_PROTO_OK, a dds_proto_reason (ERROR), or DDS_DP_BUSY */
	uint32_t retry_ms;         /* DDS_DP_BUSY: when to try again */
	struct dds_proto_tensor out_t;
	float *out;                /* DDS_PROTO_OK: the result (malloc'd; freed with the job) */
	uint32_t out_len;          /* bytes */
	/* the dataplane's: never touched by the executor */
	struct dds_proto_hdr h;
	struct dds_peer peer;
	uint16_t queue;
	struct rte_ring *done;
};
/* Executor: hand a finished job back to its rx queue. Call from one thread only (the return
 * rings are single-producer). Never fails: a queue never has more jobs out than its ring holds. */
void dds_dp_job_done(struct dds_dp_job *job);
/* Free a job and its buffers (for an executor that must drop jobs it holds when freed). */
void dds_dp_job_free(struct dds_dp_job *job);

/* The server side of the boundary. Every function is called from rx lcores, concurrently, each
 * with the context that ctx_new() made for its queue; the others with `arg`. */
struct dds_dp_ops {
	/* Inline mode: a context for one rx queue. NULL on failure. May be NULL with submit. */
	void *(*ctx_new)(void *arg, unsigned queue);
	void (*ctx_free)(void *ctx);
	/* Inline mode: run the request; 0 with *res filled, or a dds_proto_reason (ERROR). */
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
	/* Asynchronous mode: take the job (0: taken, it comes back through dds_dp_job_done), or
	 * refuse it (non-zero: the executor's queue is full, the job stays the caller's: BUSY). */
	int (*submit)(void *arg, struct dds_dp_job *job);
	/* The market's last published round (may be NULL: no PRICE messages). */
	uint64_t (*round)(void *arg);
	/* Asynchronous mode run to completion (may be NULL: the executor has its own thread):
	 * the executor's work, run by queue 0's lcore after each rx burst and while it waits for
	 * its jobs at stop. It must return promptly when there is nothing to do. */
	void (*step)(void *arg);
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
	bool rx_csum_offload;  /* let the NIC check IPv4 and UDP checksums where the PMD can */
	struct dds_iface iface; /* mac is read from the port by dds_dp_create() */
	struct dds_proto_rx_config proto; /* reassembly limits, per queue */
	const struct dds_dp_device *devices;
	uint32_t n_devices;
	uint64_t price_recent_ns; /* PRICE goes to devices heard from this recently */
	uint64_t stop_wait_ns;    /* at stop, how long a queue waits for the jobs it handed out */
	uint32_t busy_retry_ms;   /* retry_ms of a BUSY sent when the executor refuses a job */
	const uint64_t *model_hashes; /* the models served (wire hashes): each gets latency */
	int n_models;                 /* histograms of its own; 0 .. DDS_DP_MAX_MODELS */
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

/* The rx checksum offloads in use: "ipv4,udp", "ipv4", "udp" or "none" (after dds_dp_create). */
const char *dds_dp_rx_csum(const struct dds_dp *dp);

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
/* The loops' clock (TSC in ns): what job timestamps are in. Any thread. */
uint64_t dds_dp_now_ns(const struct dds_dp *dp);

struct dds_hist;
/* The latency histogram `lat` (enum dds_dp_lat, ns) of all models (model -1) or of model
 * `model` (its index in cfg.model_hashes), merged over queues into out, a histogram made by
 * dds_dp_hist_new(). Any thread, while the loops record. Returns 0, or -1 (bad lat or model). */
int dds_dp_latency(const struct dds_dp *dp, int model, int lat, struct dds_hist *out);
/* An empty histogram of the shape the queues use (NULL if out of memory). */
struct dds_hist *dds_dp_hist_new(void);

#endif
