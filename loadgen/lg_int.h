/* lg_int.h: dds-loadgen's internals (arrivals, accounting, pcap, options, fleet, loop), shared by its files and unit tests.
 *
 * dds-loadgen is a program; its interface is its command line (docs/loadgen.md). This header
 * is private: the pieces below are separate so that the unit tests in tests/loadgen/ can drive
 * the arrival generator, the latency accounting and the pcap writer with a simulated clock and
 * no network. Times are nanoseconds on CLOCK_MONOTONIC unless a field says otherwise.
 * Functions returning int give 0, or -1 with a one-line reason in err (err_len may be 0).
 */
#ifndef LG_INT_H
#define LG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>
#include <time.h>

#include "dds_device.h"
#include "dds_hist.h"
#include "dds_model.h"
#include "dds_proto.h"
#include "dds_util.h"

#define LG_MAX_MODELS 16
#define LG_MAX_SPLITS 256     /* distinct splits reported per model; more go to "other" */
#define LG_MAX_INFLIGHT 64    /* a device's replay window holds 64 request ids */
#define LG_HIST_MAX_NS (600ull * 1000000000ull) /* latencies above 10 min count as 10 min */
#define LG_NS 1000000000ull

/* Clock c (CLOCK_MONOTONIC, CLOCK_REALTIME) in ns. */
static inline uint64_t lg_clock_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (uint64_t)ts.tv_sec * LG_NS + (uint64_t)ts.tv_nsec;
}

/* ---- random numbers and arrivals (arrival.c) ---- */


enum lg_loop { LG_OPEN, LG_CLOSED };
enum lg_arrival { LG_POISSON, LG_FIXED };

/* One device's request starts. Open loop: a Poisson process of rate `rate` per second (or a
 * fixed period 1/rate with a uniformly random phase), independent of answers. Closed loop: one
 * request at a time; the next starts think_ns after the previous one finished. */
struct lg_flow {
	enum lg_loop loop;
	enum lg_arrival arrival;
	double rate;       /* open loop: requests per second, > 0 */
	uint64_t think_ns; /* closed loop */
	double next;       /* intended start of the next request (ns, double: no drift) */
	bool waiting;      /* closed loop: a request is outstanding */
	uint64_t end_ns;   /* no request starts at or after this time */
	uint64_t rng;
};

void lg_flow_init(struct lg_flow *f, enum lg_loop loop, enum lg_arrival arrival, double rate,
		  uint64_t think_ns, uint64_t start_ns, uint64_t end_ns, uint64_t seed);
/* The next open-loop inter-arrival time in ns (exponential or fixed). */
double lg_flow_gap(struct lg_flow *f);
/* If a request is due at `now` (its intended start <= now, before end_ns): true, *start = its
 * intended start, and the flow moves on (open: to the next arrival; closed: waits for
 * lg_flow_done). A late caller gets every missed start, one per call: none is skipped. */
bool lg_flow_take(struct lg_flow *f, uint64_t now, uint64_t *start);
/* The intended start of the next request, or UINT64_MAX if none is pending (closed loop
 * waiting, or past end_ns). */
uint64_t lg_flow_next(const struct lg_flow *f);
/* Closed loop: the outstanding request finished at t_done; the next starts at t_done + think. */
void lg_flow_done(struct lg_flow *f, uint64_t t_done);
/* When a request that started at `start` with local compute te_ns is sent, given that the
 * generator handles it at `now`: its intended send time, or now if the generator is late. */
uint64_t lg_send_time(uint64_t start, uint64_t te_ns, uint64_t now);

/* ---- accounting (stats.c) ---- */

enum lg_outcome { LG_ANSWERED, LG_ERROR, LG_BUSY, LG_LOST };

struct lg_counts {
	uint64_t requests;      /* request starts */
	uint64_t local;         /* the device chose all-local: nothing sent */
	uint64_t overflow;      /* not sent: LG_MAX_INFLIGHT requests of the device outstanding */
	uint64_t sent;          /* requests sent (each ends in exactly one of the next four) */
	uint64_t answered, errors, busy, lost;
	uint64_t busy_replies;  /* BUSY messages received (a retried request may get several) */
	uint64_t retries;       /* requests sent again after a BUSY */
	uint64_t late;          /* answers that came after their request was counted lost */
	uint64_t datagrams, bytes; /* sent, including REGISTERs */
};

struct lg_split_count {
	char key[96]; /* cut value ids joined by '+', e.g. "0" (raw input) or "12+15" */
	uint64_t count;
};

/* Everything counted for one model (and, in lg_stats.all, for all models). Counts in `meas`
 * are for requests whose intended start is after the warmup; `total` counts every request. */
struct lg_mstats {
	struct lg_counts meas, total;
	uint64_t errors_by[DDS_PROTO_REASON__COUNT];
	struct lg_split_count split[LG_MAX_SPLITS];
	int n_split;
	uint64_t split_other;
	double x_min, x_max, x_sum; /* budgets sent (measured requests) */
	uint64_t x_n;
	struct dds_hist *e2e;  /* intended start -> answer, ns */
	struct dds_hist *net;  /* last send -> answer, ns */
};

struct lg_price_pt {
	uint64_t t_ns; /* when it was received (CLOCK_MONOTONIC) */
	int64_t round; /* PRICE round, -1 when the price came on another message */
	double price;
};

struct lg_stats {
	int n_models;
	struct lg_mstats m[LG_MAX_MODELS];
	struct lg_mstats all;
	struct dds_hist *lag; /* how late the generator handled request starts, ns */
	struct lg_price_pt *price;
	size_t n_price, cap_price;
	uint64_t price_dropped; /* points not kept (over the cap) */
	uint64_t t0_ns;         /* the run's start (after registration) */
	uint64_t meas_ns;       /* requests starting at or after this are measured */
	double meas_s;          /* length of the measured window, seconds */
	uint64_t send_stalls;   /* sends that waited for socket buffer space */
	uint64_t send_errors;   /* datagrams not sent: the kernel refused them (e.g.
				 * ECONNREFUSED), or the DPDK port's tx ring stayed full */
	uint64_t rx_drops[DDS_PROTO_REASON__COUNT]; /* datagrams the devices' receiver dropped */
	const char *io;         /* the I/O path that ran ("kernel", "dpdk"); NULL: none */
	struct lg_port_stats {  /* --dpdk: the port's own counters (rte_eth_stats_get) at the end */
		bool valid;
		uint16_t port;
		char driver[32];
		uint64_t ipackets, opackets, imissed, oerrors;
		unsigned mbufs_in_use; /* after the port closed: 0 unless mbufs leaked */
	} port;
};

int lg_stats_init(struct lg_stats *s, int n_models, char *err, size_t err_len);
void lg_stats_free(struct lg_stats *s);
/* A request of `model` started at `start` was handled at `now` (lag recorded if measured). */
void lg_stats_start(struct lg_stats *s, int model, uint64_t start, uint64_t now);
/* Count one event in the counters of `model` and of all models: `total` always, `meas` when
 * measured. field_off: offsetof(struct lg_counts, field); use LG_COUNT. */
void lg_stats_bump(struct lg_stats *s, int model, bool measured, size_t field_off);
#define LG_COUNT(s, model, measured, field) \
	lg_stats_bump((s), (model), (measured), offsetof(struct lg_counts, field))
/* One datagram of `bytes` sent by a device of `model` (REGISTERs included; totals only). */
void lg_stats_datagram(struct lg_stats *s, int model, size_t bytes);
/* A request sent with budget x and cut `values` (n). */
void lg_stats_sent(struct lg_stats *s, int model, bool measured, double x, const int *values,
		   int n);
/* The end of a sent request: answered (latencies from start and from sent to done), ERROR
 * with a reason, BUSY (gave up) or lost. */
void lg_stats_end(struct lg_stats *s, int model, bool measured, enum lg_outcome o, int reason,
		  uint64_t start, uint64_t sent, uint64_t done);
/* A price as received at time t (round -1 unless from PRICE); kept when it differs from the
 * last point kept. */
void lg_stats_price(struct lg_stats *s, uint64_t t, int64_t round, double price);

/* ---- pcap (pcap.c): classic libpcap files of Ethernet/IPv4/UDP frames ---- */

struct lg_addr {
	uint8_t src_mac[6], dst_mac[6];
	uint32_t src_ip, dst_ip;     /* network byte order */
	uint16_t src_port, dst_port; /* host byte order */
};

#define LG_FRAME_HDRS 42 /* Ethernet 14 + IPv4 20 + UDP 8 */

/* Ethernet/IPv4/UDP frame around payload[len] into frame[cap], with the IPv4 header checksum
 * and the UDP checksum (pseudo-header) computed, IP id `ip_id`, DF set, TTL 64. Returns the
 * frame length, 0 if it does not fit in cap or the datagram is over 65507 bytes. */
size_t lg_frame_build(uint8_t *frame, size_t cap, const struct lg_addr *a, uint16_t ip_id,
		      const uint8_t *payload, size_t len);

struct lg_pcap;
/* Create (truncate) path and write the file header (microsecond timestamps, LINKTYPE_ETHERNET,
 * snaplen 65535). NULL with err on failure. */
struct lg_pcap *lg_pcap_open(const char *path, char *err, size_t err_len);
/* One frame holding this UDP payload at time t_ns (wall clock, ns since the epoch). */
int lg_pcap_write(struct lg_pcap *p, uint64_t t_ns, const struct lg_addr *a,
		  const uint8_t *payload, size_t len, char *err, size_t err_len);
/* Flush and close; -1 with err if any write failed. NULL is accepted. */
int lg_pcap_close(struct lg_pcap *p, char *err, size_t err_len);

/* ---- options (opts.c) ---- */

struct lg_opts {
	int n_devices;
	const char *config;               /* dds-server config: devices, keys, server, models */
	char *models[LG_MAX_MODELS];      /* graph paths (owned) */
	double mix[LG_MAX_MODELS];        /* weights, default all 1 */
	int n_models;
	uint64_t seed;
	double flops_min, flops_max;      /* device FLOP/s, uniform */
	double up_min, up_max;            /* uplink bytes/s, log-uniform */
	double down_min, down_max;        /* downlink; 0: the same as the uplink draw */
	enum dds_device_rule rule;
	double lambda, x0, x_max;
	enum lg_loop loop;
	enum lg_arrival arrival;
	double rate[LG_MAX_MODELS];       /* per device per second, for model k's devices */
	int n_rate;                       /* values given: 1 (all models) or n_models */
	double think_ms;
	unsigned mtu, busy_retries, max_inflight;
	double timeout_ms, duration, warmup;
	uint32_t server_ip; uint16_t server_port; /* network order ip, host order port */
	uint32_t bind_ip;                         /* 0: any */
	const char *json, *pcap;
	bool pcap_only, quiet;
	unsigned requests;                /* --pcap-only: requests per device */
	double price;                     /* --pcap-only: the price decisions use */
	uint8_t src_mac[6], dst_mac[6];
	bool src_mac_set, dst_mac_set;    /* given (--dpdk: else the port's MAC, and ARP) */
	uint32_t src_ip;                  /* pcap-only and --dpdk source address (network order) */
	uint16_t src_port;                /* pcap-only, --dpdk: device i sends from src_port + i */
	bool dpdk;                        /* --dpdk: the devices' traffic on a DPDK port */
	int port;                         /* --port: its id; -1: the first available */
	int eal_argc;                     /* the arguments after "--", for rte_eal_init */
	char **eal_argv;                  /* (pointers into main's argv, not owned) */
	/* the devices: ids and keys (from --config, or first_id.. with one key) */
	uint32_t *ids;
	uint8_t (*keys)[DDS_PROTO_KEY_LEN];
};

/* Parse argv. Returns 0, 1 when --help was printed, or -1 with a reason in err (a message that
 * names the flag). On 0 the devices are filled in; free with lg_opts_free. */
int lg_opts_parse(int argc, char **argv, struct lg_opts *o, char *err, size_t err_len);
void lg_opts_free(struct lg_opts *o);
void lg_opts_usage(FILE *f);

/* ---- the simulated devices (fleet.c) ---- */

enum lg_req_state { LG_REQ_FREE, LG_REQ_COMPUTING, LG_REQ_WAITING, LG_REQ_RETRY };

struct lg_req {
	enum lg_req_state state;
	uint32_t gen;      /* bumped at each state change: timers of older states are stale */
	uint64_t id;       /* request id of the last send */
	uint64_t start, sent, deadline;
	unsigned tries;
	bool measured;
	double x;
	struct dds_proto_tmsg tm;
	int values[DDS_DEVICE_MAX_CUT], n_values;
};

struct lg_dev {
	uint32_t id;
	uint8_t key[DDS_PROTO_KEY_LEN];
	int model;
	double flops, up_bw, down_bw;
	double *layer_s;          /* per-layer local seconds: flops_v / flops */
	struct dds_device *dd;    /* NULL until registered */
	double price;             /* the latest price this device received */
	uint64_t next_id;         /* the last request id used (REGISTER included); starts at the
				   * wall clock in us, so a new run is not taken for a replay */
	uint64_t reg_id;          /* id of the last REGISTER sent */
	unsigned reg_tries;
	struct lg_flow flow;
	struct lg_addr addr;      /* its frames' addresses (--dpdk, --pcap) */
	struct lg_req req[LG_MAX_INFLIGHT];
	unsigned n_inflight;
};

struct lg_fleet {
	const struct lg_opts *o;
	int n_models;
	struct dds_model *model[LG_MAX_MODELS];
	const char *model_name[LG_MAX_MODELS];
	int n;
	struct lg_dev *dev;
	uint32_t *by_id;          /* device indices sorted by id, for lookups */
	float *payload;           /* seeded pseudo-random floats, shared by every request */
	size_t payload_len;       /* bytes */
	uint64_t payload_rng;     /* float j of the payload is the j-th draw from --seed */
};

/* Load the models, assign them (round robin by --mix weights), draw the profiles from --seed.
 * Sockets are not opened. On failure everything is freed. */
int lg_fleet_new(const struct lg_opts *o, struct lg_fleet *f, char *err, size_t err_len);
void lg_fleet_free(struct lg_fleet *f);
/* Device index of an id, or -1. */
int lg_fleet_find(const struct lg_fleet *f, uint32_t id);
/* Build device d's decisions from a REGISTER_REPLY's price and server work. */
int lg_dev_attach(struct lg_fleet *f, struct lg_dev *d, double price, int work_kind,
		  const double *work, int n_work, char *err, size_t err_len);
/* Decide a request at the device's latest price into r (values, tensors, budget). Returns the
 * local compute time T_e of the head in ns, with *all_local set when nothing is to be sent. */
int lg_dev_plan(struct lg_fleet *f, struct lg_dev *d, struct lg_req *r, uint64_t *te_ns,
		bool *all_local, char *err, size_t err_len);
/* The REGISTER datagram of device d with a fresh id into out[cap]; its length. */
size_t lg_dev_register(struct lg_dev *d, unsigned mtu, uint64_t model_hash, uint8_t *out,
		       size_t cap);
/* Fragment i of request r of device d, with id r->id, into out[cap]; its length. */
size_t lg_dev_frag(const struct lg_fleet *f, const struct lg_dev *d, const struct lg_req *r,
		   unsigned i, uint8_t *out, size_t cap);
/* The pseudo-random payload covering at least `len` bytes (grown on demand), or NULL. */
const void *lg_fleet_payload(struct lg_fleet *f, size_t len);

/* ---- the live run's I/O (io_sock.c: a kernel UDP socket per device; io_dpdk.c: a DPDK port) ---- */

#define LG_BURST 32 /* at most this many datagrams of one device per flush */

struct lg_io; /* one path's state */

/* Where an I/O path hands back what happened, to the run loop (run.c). */
struct lg_io_sink {
	void *arg;
	/* datagram `dgram` of device d went out (called in the order they were queued) */
	void (*sent)(void *arg, struct lg_dev *d, const struct iovec *dgram, uint64_t now);
	/* a UDP payload for the devices arrived at `now`; the buffer is the path's, valid for
	 * the call only */
	void (*recv)(void *arg, const uint8_t *dgram, size_t len, uint64_t now);
};

/* One I/O path. The run loop (timers, requests, accounting) is the same for every path. */
struct lg_io_ops {
	const char *name; /* "kernel" or "dpdk": the report's "io" */
	/* Open the endpoints of f's devices and fill each d->addr. Returns 0; -1 with err on a
	 * failure; -2 with err when the path's arguments are wrong (dds-loadgen exits 2). *io is
	 * set even on failure, for close. */
	int (*open)(struct lg_fleet *f, struct lg_stats *s, const struct lg_io_sink *sink,
		    struct lg_io **io, char *err, size_t err_len);
	/* Send device d's n (<= LG_BURST) datagrams in order. Each ends in sink->sent or counts
	 * in s->send_errors; each wait for room counts in s->send_stalls. */
	void (*flush)(struct lg_io *io, struct lg_dev *d, const struct iovec *dgram, unsigned n,
		      uint64_t now);
	/* Hand what has arrived to sink->recv, waiting for it until `deadline` (CLOCK_MONOTONIC
	 * ns) at most; may return earlier. */
	void (*poll)(struct lg_io *io, uint64_t now, uint64_t deadline);
	/* Release everything; NULL accepted. A port's counters go to s->port. */
	void (*close)(struct lg_io *io, struct lg_stats *s);
};

extern const struct lg_io_ops lg_io_kernel;
#ifdef LG_HAVE_DPDK
extern const struct lg_io_ops lg_io_dpdk;
#endif

/* ---- the run (run.c: live, over an I/O path; pcaponly.c: a pcap without sending) ---- */

/* 0; -1 with err; -2 with err when the I/O path's arguments are wrong (exit 2). */
int lg_run_live(struct lg_fleet *f, struct lg_stats *s, char *err, size_t err_len);
int lg_run_pcap_only(struct lg_fleet *f, struct lg_stats *s, char *err, size_t err_len);

/* ---- the report (report.c) ---- */

void lg_report_text(FILE *out, const struct lg_fleet *f, const struct lg_stats *s);
int lg_report_json(const char *path, const struct lg_fleet *f, const struct lg_stats *s,
		   char *err, size_t err_len);
/* One progress line (stderr). */
void lg_report_progress(FILE *out, const struct lg_stats *s, uint64_t now, double price);

#endif
