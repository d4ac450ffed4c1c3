/* test_util.h: seeded random draws shared by the pricing tests (splitmix64 from common/dds_util.h). */
#ifndef DDS_PRICING_TEST_UTIL_H
#define DDS_PRICING_TEST_UTIL_H

#include <math.h>
#include <stdint.h>

#include "dds_util.h"

/* Log-uniform in [lo, hi]. */
static inline double tu_logu(uint64_t *s, double lo, double hi)
{
	return lo * pow(hi / lo, dds_rand_unit(s));
}

#endif
