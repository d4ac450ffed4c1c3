/* sched_heap.c: the binary min-heap of a group's queued requests, by SFQ start tag then arrival. */
#include <stdlib.h>

#include "sched_int.h"


int sched_heap_init(struct sched_heap *h, uint32_t cap)
{
	h->a = calloc(cap, sizeof(*h->a));
	h->n = 0;
	h->cap = cap;
	return h->a ? 0 : -1;
}

void sched_heap_free(struct sched_heap *h)
{
	free(h->a);
	h->a = NULL;
}

void sched_heap_push(struct sched_heap *h, struct dds_sched_req *r)
{
	uint32_t i = h->n++;

	while (i > 0 && sched_req_before(r, h->a[(i - 1) / 2])) {
		h->a[i] = h->a[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->a[i] = r;
}

struct dds_sched_req *sched_heap_pop(struct sched_heap *h)
{
	struct dds_sched_req *top = h->a[0], *last = h->a[--h->n];
	uint32_t i = 0;

	for (;;) {
		uint32_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && sched_req_before(h->a[c + 1], h->a[c]))
			c++;
		if (!sched_req_before(h->a[c], last))
			break;
		h->a[i] = h->a[c];
		i = c;
	}
	if (h->n)
		h->a[i] = last;
	return top;
}
