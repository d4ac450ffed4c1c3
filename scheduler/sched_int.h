/* sched_int.h: the scheduler's internals shared by its files (not a public header). */
#ifndef DDS_SCHED_INT_H
#define DDS_SCHED_INT_H

#include "dds_sched.h"

#define SCHED_NONE UINT32_MAX

/* A min-heap of a group's queued requests ordered by SFQ start tag, then arrival
 * (sched_heap.c). */
struct sched_heap {
	struct dds_sched_req **a;
	uint32_t n, cap;
};

/* One (model hash, split id) group: its queued requests by tag and by arrival. */
struct sched_group {
	uint64_t model_hash;
	uint32_t split_id;
	struct dds_sched_group_opts o;
	struct sched_heap heap;
	struct dds_sched_req *oldest, *newest; /* arrival order (sched.older/newer links) */
};

/* What the scheduler remembers of a device. A record lives while the device has requests
 * queued or running, or its last finish tag is ahead of V (it was served ahead of its share
 * and must not get that back by going idle); then it may be reclaimed. */
struct sched_device {
	uint32_t id;
	bool used;
	uint32_t queued, running;
	double last_finish; /* F of its latest request */
	uint32_t next;      /* hash chain (index into the records, SCHED_NONE ends) */
};

/* The device table: fixed records, hash chains, a free stack (sched_device.c). */
struct sched_devices {
	struct sched_device *rec;
	uint32_t n_rec, used;
	uint32_t *bucket, mask; /* mask + 1 buckets, a power of two >= 2 * n_rec */
	uint32_t *free_stack, n_free;
};

struct dds_sched {
	struct dds_sched_config c;
	struct sched_group *groups;
	uint32_t n_groups;
	struct sched_devices dev;
	double vtime;      /* V */
	double max_finish; /* the largest F handed out */
	uint64_t seq;      /* arrival counter: ties in S go to the earlier request */
	struct dds_sched_stats st;
};

/* SFQ order: is a served before b? Smaller start tag first; equal tags in arrival order. */
static inline bool sched_req_before(const struct dds_sched_req *a, const struct dds_sched_req *b)
{
	if (a->sched.start != b->sched.start)
		return a->sched.start < b->sched.start;
	return a->sched.seq < b->sched.seq;
}

int sched_heap_init(struct sched_heap *h, uint32_t cap);
void sched_heap_free(struct sched_heap *h);
/* Insert r (the heap has room: the total queue bound is its capacity). */
void sched_heap_push(struct sched_heap *h, struct dds_sched_req *r);
/* Remove and return the smallest; the heap is not empty. */
struct dds_sched_req *sched_heap_pop(struct sched_heap *h);
static inline const struct dds_sched_req *sched_heap_top(const struct sched_heap *h)
{
	return h->n ? h->a[0] : NULL;
}

int sched_devices_init(struct sched_devices *d, uint32_t n);
void sched_devices_free(struct sched_devices *d);
/* The record of device id, or SCHED_NONE. */
uint32_t sched_device_find(const struct sched_devices *d, uint32_t id);
/* A new record for id (not present), reclaiming idle records whose last finish is <= vtime
 * when none is free; SCHED_NONE when all are in use. */
uint32_t sched_device_add(struct sched_devices *d, uint32_t id, double vtime);

#endif
