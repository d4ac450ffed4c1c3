/* randdag.c: the random DAGs of randdag.h. */
#include "randdag.h"

#include <math.h>
#include <string.h>

uint64_t randdag_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

double randdag_unit(uint64_t *s)
{
	return (double)(randdag_next(s) >> 11) * 0x1.0p-53;
}

double randdag_log(uint64_t *s, double lo, double hi)
{
	return lo * pow(hi / lo, randdag_unit(s));
}

static int pick(uint64_t *s, int n)
{
	return (int)(randdag_next(s) % (uint64_t)n);
}

/* A cost that is zero one time in eight, else log-uniform. */
static double cost(uint64_t *s, double lo, double hi)
{
	return pick(s, 8) == 0 ? 0 : randdag_log(s, lo, hi);
}

/* Inputs of layer k: mostly the previous value, plus skips back to any earlier value. */
static void make_inputs(struct randdag *g, uint64_t *s, int k, int *e)
{
	int n_in = 1 + (pick(s, 3) == 0) + (pick(s, 6) == 0);
	g->in_off[k] = *e;
	for (int i = 0; i < n_in; i++) {
		int x = i == 0 && pick(s, 4) != 0 ? k : pick(s, k + 1);
		g->in_val[(*e)++] = x;
	}
}

void randdag_make(struct randdag *g, uint64_t *s, int max_n)
{
	int n = 1 + pick(s, max_n), e = 0;
	memset(g, 0, sizeof(*g));
	for (int k = 0; k < n; k++) {
		make_inputs(g, s, k, &e);
		g->a[k] = cost(s, 1e-4, 1e-1);
		g->w[k] = cost(s, 1e6, 1e10);
		g->d[k] = cost(s, 1e2, 1e7);
	}
	g->in_off[n] = e;
	g->r = randdag_log(s, 1e8, 1e12);
	g->in = (struct dds_part_input){
		.n = n, .in_off = g->in_off, .in_val = g->in_val, .a = g->a, .w = g->w, .d = g->d,
		.d_in = cost(s, 1e2, 1e7), .d_out = cost(s, 1e1, 1e6),
		.output = pick(s, 4) == 0 ? pick(s, n) : n - 1,
		.up_bw = randdag_log(s, 1e4, 1e8), .down_bw = randdag_log(s, 1e4, 1e8),
	};
}
