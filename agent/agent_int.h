/* agent_int.h: private to dds-agent: options (options.c), calibration (calibrate.c) and the UDP link to the node (link.c). */
#ifndef DDS_AGENT_INT_H
#define DDS_AGENT_INT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dds_device.h"
#include "dds_engine.h"
#include "dds_util.h"
#include "dds_model.h"
#include "dds_proto.h"

/* Set by SIGINT/SIGTERM; the main loop and link waits poll it. */
extern volatile sig_atomic_t dds_agent_stop;

/* Monotonic clock, nanoseconds. */
uint64_t dds_agent_now_ns(void);

/* ---- options.c ---- */

/* The command line (defaults in dds_agent_parse_opts). */
struct dds_agent_opts {
	char server_ip[64];
	int port;
	uint32_t device_id;
	bool have_id, have_key, have_seed, have_uplink_start;
	uint8_t key[DDS_PROTO_KEY_LEN];
	const char *model, *weights, *calibration;
	uint64_t seed;
	long requests;      /* 0: until a signal */
	long interval_ms;
	enum dds_device_rule rule;
	double x0, lambda;
	double uplink_mbps; /* 0: estimated */
	double uplink_start_mbps; /* the estimator's first value (an optimistic guess) */
	long probe_every;   /* estimating: offload a probe after this many all-local decisions; 0 never */
	long mtu, timeout_ms, retries, threads;
	bool verify, json;
};

/* Parse argv into o. Returns 0, 1 for --help, or -1 on a usage error (already printed). */
int dds_agent_parse_opts(int argc, char **argv, struct dds_agent_opts *o);
void dds_agent_usage(FILE *f);

/* ---- calibrate.c ---- */

/* Local time of every layer (secs: n_layers entries) on engine e: reused from `path` when that
 * file names the model's hash and the same thread count, else measured (`reps` timed runs of
 * each layer alone after one whole warm-up run; the least is kept) and saved there (path NULL:
 * measured, not saved). One log line on stderr says which. Returns 0, or -1 with err. */
int dds_agent_calibrate(const struct dds_model *m, struct dds_engine *e, int threads,
			const char *path, int reps, double *secs, char *err, size_t err_len);

/* ---- link.c ---- */

struct dds_agent_link {
	int fd;               /* UDP socket connected to the node */
	uint32_t device_id;
	uint8_t key[DDS_PROTO_KEY_LEN];
	uint64_t next_id;     /* the device's request-id sequence */
	size_t mtu;           /* IP MTU of what we send: min(--mtu, the path MTU) */
	struct dds_proto_devtab *devs;
	struct dds_proto_rx *rx; /* DDS_ROLE_DEVICE: results reassembled here */
	uint8_t *dgram;       /* one datagram, 65536 bytes */
	double price;         /* the last price the node sent */
	uint64_t price_round; /* the last PRICE round accepted (0: none) */
	uint64_t tx_bytes, rx_bytes; /* UDP payload bytes, this whole run */
};

/* What a wait for one request's answer ended with. */
enum dds_agent_wait {
	DDS_AGENT_RESULT,  /* *ev is the complete RESULT; the caller frees ev->buf */
	DDS_AGENT_ERROR,   /* ERROR for this id: ev->msg.u.err.reason */
	DDS_AGENT_BUSY,    /* BUSY for this id: ev->msg.u.busy.retry_ms */
	DDS_AGENT_REPLY,   /* REGISTER_REPLY for this id */
	DDS_AGENT_TIMEOUT, /* nothing for this id before the deadline */
	DDS_AGENT_STOPPED, /* a signal asked us to stop */
};

/* Called for each PRICE message accepted while waiting (new round, price p). */
typedef void (*dds_agent_price_fn)(void *ctx, double p);

/* Socket connected to ip:port, receiver, key. mtu_max: --mtu. Returns 0, or -1 with err. */
int dds_agent_link_open(struct dds_agent_link *l, const char *ip, int port, uint32_t device_id,
			const uint8_t key[DDS_PROTO_KEY_LEN], size_t mtu_max, uint64_t timeout_ns,
			char *err, size_t err_len);
void dds_agent_link_close(struct dds_agent_link *l);

/* Send one REGISTER for the model (fresh id, returned in *id). Returns 0, or -1 with err. */
int dds_agent_send_register(struct dds_agent_link *l, uint64_t model_hash, uint64_t *id,
			    char *err, size_t err_len);

/* Send every fragment of a REQUEST (fresh id, returned in *id). Returns 0, or -1 with err. */
int dds_agent_send_request(struct dds_agent_link *l, uint64_t model_hash,
			   const struct dds_proto_tmsg *tm, const void *payload, uint64_t *id,
			   unsigned *frags, char *err, size_t err_len);

/* Wait until `deadline_ns` for the answer to request `id`; answers to other ids are dropped
 * (their price is kept). Every answer's price goes to l->price. */
enum dds_agent_wait dds_agent_wait(struct dds_agent_link *l, uint64_t id, uint64_t deadline_ns,
				   dds_agent_price_fn on_price, void *ctx,
				   struct dds_proto_event *ev);

#endif
