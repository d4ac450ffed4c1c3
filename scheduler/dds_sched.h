/* dds_sched.h: request queues, dynamic batching, fair sharing by allocated rate, admission control.
 *
 * Requests are grouped by (model hash, split id): only requests of one group run in one batch.
 * Each group has its own max batch and max queue delay. Across devices the server's work is
 * shared in proportion to each device's allocated rate r_i by start-time fair queuing (SFQ,
 * Goyal, Vin and Cheng, 1996) on server work (docs/scheduler.md says why SFQ):
 *
 *   on arrival   S = max(V, F_last(device)),  F = S + w / r_i,  F_last(device) = F
 *   dispatch     the eligible group whose queued request has the smallest S; the batch is that
 *                group's requests in increasing S, up to its max batch; V = max(V, S of the first)
 *   idle         when nothing is queued or running, V = the largest F handed out
 *
 * A group is eligible when it holds max_batch requests or its oldest request has waited
 * max_delay_ns (0: at once). Dispatch is work-conserving over eligible groups: while any group
 * is eligible, dds_sched_next_batch() returns a batch.
 *
 * Thread model: a scheduler owns no thread and no lock. Every call on one scheduler must come
 * from one thread: the dataplane's worker lcore, which enqueues the requests it completed (or
 * that rx lcores passed it through a single-consumer rte_ring), asks for the next batch when the
 * executor is free, and completes batches. Time is passed in by the caller, in ns, from one
 * monotonic clock (TSC converted once); tests pass a simulated clock.
 *
 * Ownership: request records belong to the caller. From an accepted dds_sched_enqueue() until
 * the dds_sched_complete() of the batch that carried it, the scheduler links the record (its
 * `sched` field) and the caller must not free or move it. Nothing is allocated after
 * dds_sched_create() except when a group is added.
 */
#ifndef DDS_SCHED_H
#define DDS_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest max_batch a group may have (the batch struct holds this many pointers). */
#define DDS_SCHED_MAX_BATCH 256

/* Per-stage timestamps of one request (ns, the caller's clock), for the latency histograms.
 * The dataplane fills FIRST_FRAG and COMPLETE before enqueueing and SENT after replying; the
 * scheduler fills QUEUED (enqueue), BATCH_START (next_batch) and COMPUTE_DONE (complete). */
#define DDS_STAGE_LIST(X) \
	X(first_frag, "first fragment received") \
	X(complete, "request reassembled") \
	X(queued, "accepted by the scheduler") \
	X(batch_start, "dispatched in a batch") \
	X(compute_done, "batch computed") \
	X(sent, "result sent")

enum dds_stage {
#define DDS_STAGE_ENUM(name, doc) DDS_STAGE_##name,
	DDS_STAGE_LIST(DDS_STAGE_ENUM)
#undef DDS_STAGE_ENUM
	DDS_STAGE__COUNT
};

/* "queued", "batch_start", ...; NULL out of range. */
const char *dds_stage_name(int stage);

/* What dds_sched_enqueue() says. Busy verdicts mean "try later" (a BUSY reply); the others mean
 * the request is wrong (an ERROR reply). */
#define DDS_SCHED_VERDICT_LIST(X) \
	X(ok, "accepted") \
	X(busy_device, "the device's queue is full (max_queued_per_device)") \
	X(busy_total, "the node's queue is full (max_queued_total)") \
	X(busy_devices, "too many devices with queued or recent requests (max_devices)") \
	X(unknown_group, "no group for this (model hash, split id)") \
	X(bad_weight, "allocation r_i not finite and > 0") \
	X(bad_work, "server work w not finite and > 0") \
	X(bad_request, "no request, or a request already queued")

enum dds_sched_verdict {
#define DDS_SCHED_VERDICT_ENUM(name, doc) DDS_SCHED_##name,
	DDS_SCHED_VERDICT_LIST(DDS_SCHED_VERDICT_ENUM)
#undef DDS_SCHED_VERDICT_ENUM
	DDS_SCHED_VERDICT__COUNT
};

/* "busy_device", ... and its one-line description; NULL out of range. */
const char *dds_sched_verdict_name(int v);
const char *dds_sched_verdict_doc(int v);
static inline bool dds_sched_verdict_is_busy(int v)
{
	return v >= DDS_SCHED_busy_device && v <= DDS_SCHED_busy_devices;
}

/* One request. The caller fills the fields above `sched` and t[FIRST_FRAG], t[COMPLETE]. */
struct dds_sched_req {
	uint32_t device_id;
	uint64_t model_hash;
	uint32_t split_id; /* the caller's name for the split (the set of values sent) */
	double weight;     /* r_i: the device's allocated compute rate (FLOP/s), > 0 */
	double work;       /* w: server work of this request's tail (FLOP), > 0 */
	uint64_t t[DDS_STAGE__COUNT];
	void *user; /* the caller's (its payload, reply address); never read here */

	struct { /* the scheduler's while the request is queued or running; do not touch */
		double start, finish; /* SFQ tags S and F */
		struct dds_sched_req *older, *newer; /* the group's arrival-order list */
		uint64_t seq;  /* arrival number: equal start tags are served in arrival order */
		uint32_t device_slot;
		bool linked;   /* queued or running */
	} sched;
};

struct dds_sched_config {
	uint32_t max_queued_total;      /* requests waiting, all devices; >= 1 */
	uint32_t max_queued_per_device; /* requests waiting per device; >= 1 */
	uint32_t max_devices;  /* devices with queued, running or recently served requests; >= 1 */
	uint32_t max_groups;   /* (model, split) groups; >= 1 */
};

/* A group's batching knobs (per model in the config file). */
struct dds_sched_group_opts {
	int max_batch;         /* 1..DDS_SCHED_MAX_BATCH */
	uint64_t max_delay_ns; /* how long a partial batch may wait for more requests */
};

/* A batch to run: requests of one group, in dispatch order. */
struct dds_sched_batch {
	uint32_t group;
	uint64_t model_hash;
	uint32_t split_id;
	int n;
	struct dds_sched_req *req[DDS_SCHED_MAX_BATCH];
};

struct dds_sched_stats {
	uint64_t verdicts[DDS_SCHED_VERDICT__COUNT]; /* enqueue calls by verdict */
	uint64_t batches, dispatched, completed;
	uint32_t queued, running, devices;           /* now */
	double vtime;                                /* V, for the curious */
};

struct dds_sched;

/* Create a scheduler. Returns NULL with a reason in err (if err_len > 0) on a bad config or
 * when out of memory. */
struct dds_sched *dds_sched_create(const struct dds_sched_config *c, char *err, size_t err_len);

/* Free the scheduler. Requests still linked are simply forgotten (they are the caller's). */
void dds_sched_free(struct dds_sched *s);

/* Add the group (model_hash, split_id). Returns its id (>= 0), or -1 with err: bad options,
 * duplicate, more than max_groups, out of memory. */
int dds_sched_add_group(struct dds_sched *s, uint64_t model_hash, uint32_t split_id,
			const struct dds_sched_group_opts *o, char *err, size_t err_len);

/* Offer a request at time now. On DDS_SCHED_ok it is queued (t[QUEUED] = now, its SFQ tags set);
 * on any other verdict nothing changed and the request is still the caller's. */
enum dds_sched_verdict dds_sched_enqueue(struct dds_sched *s, struct dds_sched_req *r,
					 uint64_t now);

/* Fill b with the next batch at time now and return b->n (> 0), each request stamped
 * t[BATCH_START] = now; or return 0 when no group is eligible, with *wake_ns (if non-NULL) the
 * time at which one becomes eligible (UINT64_MAX when nothing is queued). */
int dds_sched_next_batch(struct dds_sched *s, uint64_t now, struct dds_sched_batch *b,
			 uint64_t *wake_ns);

/* The batch b (from next_batch) has been computed (or failed) at time now: stamps
 * t[COMPUTE_DONE] and hands every request back to the caller. */
void dds_sched_complete(struct dds_sched *s, struct dds_sched_batch *b, uint64_t now);

void dds_sched_get_stats(const struct dds_sched *s, struct dds_sched_stats *st);

#endif
