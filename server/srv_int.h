/* srv_int.h: dds-server's internals shared by its files: the parsed config, the executor, telemetry. */
#ifndef DDS_SRV_INT_H
#define DDS_SRV_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "dds_backend.h"
#include "dds_dpdk.h"
#include "dds_model.h"
#include "dds_pricing.h"
#include "dds_sched.h"

#define SRV_MAX_MODELS 16
#define SRV_MAX_EAL_ARGS 64
#define SRV_MAX_MERGE DDS_PROTO_MAX_TENSORS /* names in models[].merge_at */

struct srv_model_cfg {
	char graph[PATH_MAX];
	char weights[PATH_MAX]; /* "" = seeded initialisation */
	uint64_t seed;
	struct dds_sched_group_opts batch; /* max_batch, max_delay_ns of its (model, split) groups */
	/* merge_at: the layers whose outputs form the meet cut (docs/scheduler.md, "Merging
	 * splits"); n_merge 0 = no merging. Checked against the model by srv_exec_new(). */
	char merge_at[SRV_MAX_MERGE][DDS_NAME_MAX];
	int n_merge;
};

/* engine.backend */
enum srv_backend { SRV_BACKEND_AUTO, SRV_BACKEND_CPU, SRV_BACKEND_CUDA };
extern const char *const srv_backend_names[3];

/* Everything the config file (docs/server.md) and the flags say. Defaults from srv_cfg_defaults. */
struct srv_cfg {
	char *eal[SRV_MAX_EAL_ARGS]; /* owned copies */
	int n_eal;
	struct dds_dp_cfg dp;        /* dp.devices points at `devices` */
	struct dds_dp_device *devices;
	uint32_t n_devices;
	struct srv_model_cfg models[SRV_MAX_MODELS];
	int n_models;
	bool reference_kernels; /* engine.kernels "reference" */
	int engine_threads;
	enum srv_backend backend;
	struct dds_sched_config sched;
	uint64_t stop_grace_ns;  /* scheduler.stop_grace_ms */
	uint32_t busy_retry_ms;  /* scheduler.busy_retry_ms */
	uint32_t worker_poll_us; /* scheduler.worker_poll_us: busy-poll after work before sleeping */
	int worker_cpu;          /* scheduler.worker_cpu: the worker's only CPU; -1 = srv_worker_start's choice */
	int worker_priority;     /* scheduler.worker_priority: SCHED_FIFO priority; 0 = SCHED_OTHER */
	bool worker_inline;      /* scheduler.inline: no thread; queue 0's lcore runs the worker */
	struct dds_pricing_cfg pricing;
};

void srv_cfg_defaults(struct srv_cfg *c);
/* Read a config file over the defaults. On error returns -1 with a message naming the file,
 * the key (as a path: "reassembly.timeout_ms") and the problem; c may be half-filled then and
 * must still be released with srv_cfg_free(). */
int srv_cfg_load(struct srv_cfg *c, const char *path, char *err, size_t err_len);
/* Set one key from a command-line flag ("interface.ip", "10.0.0.1"); same errors. */
int srv_cfg_set(struct srv_cfg *c, const char *key, const char *value, char *err, size_t err_len);
/* Checks across keys, after the file and the flags: -1 with err naming the key. */
int srv_cfg_check(const struct srv_cfg *c, char *err, size_t err_len);
void srv_cfg_free(struct srv_cfg *c);

/* The glue behind the dataplane's boundary: loaded models, split checks, the market. */
struct srv_exec;
struct srv_worker;
struct srv_exec *srv_exec_new(const struct srv_cfg *c, char *err, size_t err_len);
void srv_exec_free(struct srv_exec *x);
/* Fill ops for dds_dp_create(): requests go to worker w. x and w must outlive the dataplane. */
void srv_exec_ops(struct srv_exec *x, struct srv_worker *w, struct dds_dp_ops *ops);
int srv_exec_n_models(const struct srv_exec *x);
const struct dds_model *srv_exec_model(const struct srv_exec *x, int i);
/* Model i's meet tail from models[].merge_at (one byte per layer), or NULL: no merging. */
const uint8_t *srv_exec_meet(const struct srv_exec *x, int i);
/* The index of the model with this wire hash, or -1. */
int srv_exec_find(const struct srv_exec *x, uint64_t hash);
/* The market (pricing/): read by telemetry and the worker, written by queue 0's lcore. */
struct dds_pricing *srv_exec_market(const struct srv_exec *x);

/* The compute worker (worker.c): one thread that owns the scheduler and the backend. Jobs come
 * from the rx lcores over a multi-producer ring; finished jobs go back with dds_dp_job_done().
 * Created after rte_eal_init(); started once the dataplane exists; stopped (joined) after the
 * rx lcores returned, before the dataplane is freed. `stop` is the daemon's force_quit: once it
 * is set, queued jobs still run for cfg->stop_grace_ns, then are refused (shutting_down).
 * With scheduler.inline there is no thread: queue 0's lcore calls srv_worker_step() after each
 * rx burst (run to completion, as DPDK's examples do), and srv_worker_stop() refuses what is
 * left on the caller's thread. */
struct srv_worker *srv_worker_new(const struct srv_cfg *c, struct srv_exec *x,
				  volatile bool *stop, char *err, size_t err_len);
int srv_worker_start(struct srv_worker *w, char *err, size_t err_len);
/* Offer a job (any rx lcore): 0 taken, -1 the worker's ring is full. */
int srv_worker_submit(struct srv_worker *w, struct dds_dp_job *job);
/* Inline mode, queue 0's lcore only: admit what came, run one eligible batch. */
void srv_worker_step(struct srv_worker *w);
/* Join the thread (jobs still held are refused shutting_down and handed back). */
void srv_worker_stop(struct srv_worker *w);
void srv_worker_free(struct srv_worker *w);

/* The splits and scheduler groups of the worker (groups.c): a request's (model, split) queues
 * in the split's own group, or, when the split's tail holds its model's meet tail
 * (models[].merge_at), in the model's one meet group; plans are made at a group's first batch.
 * Owned and called by the worker thread only. */
struct srv_group_stats {
	uint32_t groups, plans, bridges; /* scheduler groups; plans made, bridge plans among them */
	uint64_t merged;        /* requests that ran a bridge, then a meet batch */
	uint64_t mixed_batches; /* meet batches whose requests came from two splits or more */
};
struct srv_groups;
/* s and b are borrowed; st receives the counters. NULL when out of memory. */
struct srv_groups *srv_groups_new(const struct srv_cfg *c, struct srv_exec *x,
				  struct dds_sched *s, struct dds_backend *b,
				  struct srv_group_stats *st);
void srv_groups_free(struct srv_groups *g);
/* The scheduler group (its split_id) of a request of model mi with tensors tm, and *work, its
 * tail's FLOPs; a new split and group when first seen. -1 (logged) when the split is not a
 * valid tail or scheduler.max_groups splits or groups exist. */
int srv_groups_admit(struct srv_groups *g, int mi, const struct dds_proto_tmsg *tm, double *work);
/* Run batch b (its requests' user pointers are struct dds_dp_job): 0 with *out at b->n rows of
 * the model output (the groups' buffer, valid until the next run), or non-zero (err filled
 * when the backend failed; else no plan or a payload of the wrong size). */
int srv_groups_run(struct srv_groups *g, const struct dds_sched_batch *b, const float **out,
		   struct dds_err *err);
/* The model index of a group. */
int srv_groups_model(const struct srv_groups *g, uint32_t group);
/* One split the worker has seen (for telemetry: what to name in models[].merge_at). */
struct srv_split_info {
	int model;
	int n_vals;
	int vals[DDS_PROTO_MAX_TENSORS]; /* the value ids sent, ascending */
	double work;                     /* FLOPs of its tail, per request */
	bool meet, bridged;              /* queues in its model's meet group; through a bridge */
	uint64_t requests;               /* admitted so far */
};
/* Copy up to max of the splits seen, oldest first; returns how many exist. Safe from any
 * thread while the worker runs: splits are only appended, each complete before it is counted. */
int srv_groups_splits(const struct srv_groups *g, struct srv_split_info *out, int max);
/* The worker's splits and groups (for srv_groups_splits from telemetry). */
const struct srv_groups *srv_worker_groups(const struct srv_worker *w);

/* What the worker publishes for telemetry (a copy, taken under its lock). */
struct srv_worker_stats {
	struct dds_sched_stats sched;
	struct srv_group_stats grp;
	uint64_t exec_failed, refused_stop, ring_full;
	uint64_t batch_hist[9]; /* batches by size: 1, 2, 3-4, 5-8, ..., 129-256 */
	const char *backend;
	const char *mode; /* how the worker runs: "thread", "inline"; NULL before the start */
};
void srv_worker_stats(struct srv_worker *w, struct srv_worker_stats *out);

/* Telemetry commands under /dds/ over the running dataplane. Returns 0 or -1 with err. */
int srv_telemetry_register(struct dds_dp *dp, const struct srv_cfg *c, struct srv_exec *x,
			   struct srv_worker *w, char *err, size_t err_len);
/* Make the commands fail from now on: call before freeing the dataplane. */
void srv_telemetry_detach(void);

#endif
