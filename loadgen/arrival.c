/* arrival.c: request start times of one simulated device (open loop Poisson or fixed rate, closed loop), free of coordinated omission. */
#include "lg_int.h"

#include <math.h>
#include <stdarg.h>

double lg_flow_gap(struct lg_flow *f)
{
	double mean = 1e9 / f->rate;

	if (f->arrival == LG_FIXED)
		return mean;
	return -log1p(-dds_rand_unit(&f->rng)) * mean; /* 1 - u in (0, 1]: finite */
}

/* Open loop: the first start is one gap after start_ns (Poisson: memoryless, so this is the
 * process seen from any instant) or a uniform phase in [0, period) (fixed: devices do not
 * all fire together). Closed loop: the first request starts at start_ns. */
void lg_flow_init(struct lg_flow *f, enum lg_loop loop, enum lg_arrival arrival, double rate,
		  uint64_t think_ns, uint64_t start_ns, uint64_t end_ns, uint64_t seed)
{
	*f = (struct lg_flow){.loop = loop, .arrival = arrival, .rate = rate,
			      .think_ns = think_ns, .end_ns = end_ns, .rng = seed};
	if (loop == LG_CLOSED)
		f->next = (double)start_ns;
	else if (arrival == LG_FIXED)
		f->next = (double)start_ns + dds_rand_unit(&f->rng) * 1e9 / rate;
	else
		f->next = (double)start_ns + lg_flow_gap(f);
}

uint64_t lg_flow_next(const struct lg_flow *f)
{
	if (f->waiting || f->next >= (double)f->end_ns)
		return UINT64_MAX;
	return (uint64_t)ceil(f->next);
}

bool lg_flow_take(struct lg_flow *f, uint64_t now, uint64_t *start)
{
	uint64_t t = lg_flow_next(f);

	if (t == UINT64_MAX || t > now)
		return false;
	*start = t;
	if (f->loop == LG_CLOSED)
		f->waiting = true;
	else
		f->next += lg_flow_gap(f);
	return true;
}

void lg_flow_done(struct lg_flow *f, uint64_t t_done)
{
	f->waiting = false;
	f->next = (double)t_done + (double)f->think_ns;
}

uint64_t lg_send_time(uint64_t start, uint64_t te_ns, uint64_t now)
{
	uint64_t t = start + te_ns;

	return t > now ? t : now;
}
