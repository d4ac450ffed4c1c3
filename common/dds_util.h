/* dds_util.h: the two helpers several modules share: an error message into a caller's buffer, and splitmix64 random numbers.
 *
 * Header-only, libc only (the device side builds for aarch64 too). The simulator, the load
 * generator and the agent use them; their sequences are part of their documented, seeded
 * behaviour, so the generator must not change.
 */
#ifndef DDS_UTIL_H
#define DDS_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* vsnprintf into err when err is not NULL and err_len > 0; always returns -1, so that
 * `return dds_fail(err, n, "...", ...);` reports a failure in one line. */
static inline __attribute__((format(printf, 3, 4))) int dds_fail(char *err, size_t err_len,
								 const char *fmt, ...)
{
	va_list ap;

	if (err && err_len) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* splitmix64 (Steele, Lea, Flood 2014): the next 64 random bits of the sequence *state. */
static inline uint64_t dds_rand_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Uniform in [0, 1), 53 bits. */
static inline double dds_rand_unit(uint64_t *state)
{
	return (double)(dds_rand_next(state) >> 11) * 0x1.0p-53;
}

#endif
