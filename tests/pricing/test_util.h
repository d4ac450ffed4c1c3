/* test_util.h: a seeded random generator shared by the pricing tests (reproducible runs). */
#ifndef DDS_PRICING_TEST_UTIL_H
#define DDS_PRICING_TEST_UTIL_H

#include <math.h>
#include <stdint.h>

/* splitmix64: state in *s. */
static inline uint64_t tu_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static inline double tu_unif(uint64_t *s)
{
	return (double)(tu_next(s) >> 11) * 0x1.0p-53;
}

/* Log-uniform in [lo, hi]. */
static inline double tu_logu(uint64_t *s, double lo, double hi)
{
	return lo * pow(hi / lo, tu_unif(s));
}

#endif
