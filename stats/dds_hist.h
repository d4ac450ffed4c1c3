/* dds_hist.h: log-linear latency histograms (HDR-style): fixed memory, 3 significant digits, one lock-free writer.
 *
 * A histogram counts values (nanoseconds, by convention) from 0 to a maximum fixed at creation.
 * Values below 2^DDS_HIST_SUB_BITS are counted exactly; above, each power of two [2^k, 2^(k+1))
 * is cut into 2^(DDS_HIST_SUB_BITS-1) equal buckets, so a bucket's width is at most 2^-10 of its
 * values: any value reported (percentile, max, min) is within 0.1% of a recorded one (three
 * significant digits, as HdrHistogram with 3 digits). Values above the maximum are counted in
 * the top bucket and in `overflow`.
 *
 * Concurrency: exactly one thread records into a histogram (the stage's owner, e.g. a worker
 * lcore); any number of other threads may read it at any time (dds_hist_snapshot), getting a
 * consistent-enough copy (each counter read atomically; a record racing with the copy may be
 * in the copy or not). Recording never allocates, locks or fails. "Reset" is done by readers:
 * keep a snapshot as a baseline and subtract it (dds_hist_sub), so the writer never stops.
 *
 * Ownership: dds_hist_new() allocates; dds_hist_free() releases. Snapshots are histograms of
 * the same shape, made with dds_hist_new(same max) or dds_hist_clone().
 */
#ifndef DDS_HIST_H
#define DDS_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DDS_HIST_SUB_BITS 11

struct dds_hist;

/* A histogram for values 0..max_value (max_value >= 2^DDS_HIST_SUB_BITS, <= 2^62). NULL if out
 * of memory or max_value is out of range. */
struct dds_hist *dds_hist_new(uint64_t max_value);
/* A new, empty histogram of the same shape as h; NULL if out of memory. */
struct dds_hist *dds_hist_clone(const struct dds_hist *h);
void dds_hist_free(struct dds_hist *h);

/* Count value v once (n times). Writer only. v above the maximum counts as the maximum. */
void dds_hist_record(struct dds_hist *h, uint64_t v);
void dds_hist_record_n(struct dds_hist *h, uint64_t v, uint64_t n);

/* Copy src into dst (same shape); safe while src's writer records. Returns 0, -1 on shape mismatch. */
int dds_hist_snapshot(const struct dds_hist *src, struct dds_hist *dst);
/* dst += src (same shape): merging per-thread histograms. Returns 0, -1 on shape mismatch. */
int dds_hist_add(struct dds_hist *dst, const struct dds_hist *src);
/* dst -= base (same shape; base an earlier snapshot of the same writer's histogram): the values
 * recorded since base. min and max then describe the remaining buckets. Returns 0 or -1. */
int dds_hist_sub(struct dds_hist *dst, const struct dds_hist *base);
/* Empty h (not while its writer records: use a baseline and dds_hist_sub instead). */
void dds_hist_clear(struct dds_hist *h);

/* Summary of a histogram no writer is changing (a snapshot, or one thread's own). */
uint64_t dds_hist_count(const struct dds_hist *h);
uint64_t dds_hist_overflow(const struct dds_hist *h);
/* The value at quantile q in [0, 1]: the highest value equivalent to the bucket holding the
 * ceil(q * count)-th smallest value (q = 0: the smallest; q = 1: the largest); 0 if empty. */
uint64_t dds_hist_quantile(const struct dds_hist *h, double q);
uint64_t dds_hist_min(const struct dds_hist *h);
uint64_t dds_hist_max(const struct dds_hist *h);
double dds_hist_mean(const struct dds_hist *h);

/* The figures every report prints (values in the histogram's unit; all 0 when empty). */
struct dds_hist_summary {
	uint64_t count, min, p50, p90, p99, p999, max, overflow;
	double mean;
};
void dds_hist_summarize(const struct dds_hist *h, struct dds_hist_summary *s);

/* Iterate over the non-empty buckets in increasing value: *state starts at 0; each call gives
 * the bucket's highest equivalent value and its count and returns true, false after the last.
 * (For CDF plots and for exporting.) */
bool dds_hist_next_bucket(const struct dds_hist *h, size_t *state, uint64_t *value,
			  uint64_t *count);

#endif
