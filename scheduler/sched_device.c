/* sched_device.c: the table of devices the scheduler remembers (fixed records, hash chains). */
#include <stdlib.h>

#include "sched_int.h"

static uint32_t bucket_of(const struct sched_devices *d, uint32_t id)
{
	uint64_t h = (uint64_t)id * 0x9e3779b97f4a7c15ULL; /* Fibonacci hashing */
	return (uint32_t)(h >> 32) & d->mask;
}

int sched_devices_init(struct sched_devices *d, uint32_t n)
{
	uint32_t nb = 2;

	while (nb < 2 * n && nb < (1u << 30))
		nb <<= 1;
	d->rec = calloc(n, sizeof(*d->rec));
	d->bucket = malloc((size_t)nb * sizeof(*d->bucket));
	d->free_stack = malloc((size_t)n * sizeof(*d->free_stack));
	if (!d->rec || !d->bucket || !d->free_stack)
		return -1;
	d->n_rec = n;
	d->used = 0;
	d->mask = nb - 1;
	for (uint32_t b = 0; b < nb; b++)
		d->bucket[b] = SCHED_NONE;
	for (uint32_t i = 0; i < n; i++)
		d->free_stack[i] = n - 1 - i;
	d->n_free = n;
	return 0;
}

void sched_devices_free(struct sched_devices *d)
{
	free(d->rec);
	free(d->bucket);
	free(d->free_stack);
}

uint32_t sched_device_find(const struct sched_devices *d, uint32_t id)
{
	uint32_t i = d->bucket[bucket_of(d, id)];

	while (i != SCHED_NONE && d->rec[i].id != id)
		i = d->rec[i].next;
	return i;
}

/* Unlink record i from its chain and push it on the free stack. */
static void device_remove(struct sched_devices *d, uint32_t i)
{
	uint32_t *link = &d->bucket[bucket_of(d, d->rec[i].id)];

	while (*link != i)
		link = &d->rec[*link].next;
	*link = d->rec[i].next;
	d->rec[i].used = false;
	d->free_stack[d->n_free++] = i;
	d->used--;
}

/* Free every record with nothing queued or running whose last finish tag V has reached. Runs
 * only when the table is full, so its O(max_devices) cost is paid rarely. */
static void device_reclaim(struct sched_devices *d, double vtime)
{
	for (uint32_t i = 0; i < d->n_rec; i++) {
		const struct sched_device *r = &d->rec[i];
		if (r->used && !r->queued && !r->running && r->last_finish <= vtime)
			device_remove(d, i);
	}
}

uint32_t sched_device_add(struct sched_devices *d, uint32_t id, double vtime)
{
	if (!d->n_free)
		device_reclaim(d, vtime);
	if (!d->n_free)
		return SCHED_NONE;
	uint32_t i = d->free_stack[--d->n_free], b = bucket_of(d, id);
	d->rec[i] = (struct sched_device){.id = id, .used = true, .next = d->bucket[b]};
	d->bucket[b] = i;
	d->used++;
	return i;
}
