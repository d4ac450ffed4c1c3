/* hist.c: the log-linear histogram of dds_hist.h: O(1) recording by one writer, lock-free reads. */
#include "dds_hist.h"

#include <stdlib.h>

/* Bucket layout. Values below 2^SUB_BITS have a bucket each. Above, the value's top SUB_BITS
 * bits pick the bucket: with k the index of the value's highest set bit and s = k - (SUB_BITS-1)
 * the bits dropped, the bucket is s * HALF + (v >> s), where v >> s lies in [HALF, 2*HALF).
 * Forcing bit SUB_BITS-1 on before counting leading zeros makes s = 0 below 2^SUB_BITS,
 * so one formula, with no branch, serves every value. */
#define SUB_COUNT (UINT64_C(1) << DDS_HIST_SUB_BITS)
#define HALF (SUB_COUNT / 2)
#define MAX_VALUE_LIMIT (UINT64_C(1) << 62)

/* Every counter is written by one thread (the writer) with relaxed atomic stores and may be
 * read by any thread with relaxed atomic loads: no torn values, no ordering between them. */
struct dds_hist {
	uint64_t max_value;	/* fixed at creation: larger values count as this one */
	size_t nbuckets;	/* bucket_of(max_value) + 1 */
	uint64_t count;		/* values recorded (the sum of counts[]) */
	uint64_t overflow;	/* values recorded above max_value */
	uint64_t min;		/* UINT64_MAX while empty */
	uint64_t max;		/* 0 while empty */
	uint64_t counts[];
};

static inline uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void store(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline size_t bucket_of(uint64_t v)
{
	unsigned shift = (unsigned)(63 - __builtin_clzll(v | HALF)) -
			 (DDS_HIST_SUB_BITS - 1);

	return (size_t)shift * HALF + (size_t)(v >> shift);
}

/* How many low bits bucket i drops: 0 for the exact buckets below SUB_COUNT. */
static inline unsigned bucket_shift(size_t i)
{
	return i < SUB_COUNT ? 0 : (unsigned)(i / HALF) - 1;
}

static uint64_t bucket_lowest(size_t i)
{
	unsigned shift = bucket_shift(i);

	return ((uint64_t)i - (uint64_t)shift * HALF) << shift;
}

/* The bucket's highest equivalent value, never above the histogram's maximum (the top bucket
 * holds only values up to it). */
static uint64_t bucket_highest(const struct dds_hist *h, size_t i)
{
	uint64_t top = bucket_lowest(i) + ((UINT64_C(1) << bucket_shift(i)) - 1);

	return top < h->max_value ? top : h->max_value;
}

static bool same_shape(const struct dds_hist *a, const struct dds_hist *b)
{
	return a->max_value == b->max_value && a->nbuckets == b->nbuckets;
}

static void set_empty_extremes(struct dds_hist *h)
{
	store(&h->min, UINT64_MAX);
	store(&h->max, 0);
}

static uint64_t clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Bring min and max into the first and last non-empty buckets: after dds_hist_sub (the old
 * extremes may belong to values subtracted away) and after a snapshot that raced with a record
 * (a bucket counted before its extreme was stored, or the reverse). Not while h's writer
 * records. */
static void fit_extremes(struct dds_hist *h)
{
	size_t first = 0, last = h->nbuckets;

	while (first < h->nbuckets && h->counts[first] == 0)
		first++;
	if (first == h->nbuckets) {
		set_empty_extremes(h);
		return;
	}
	while (h->counts[last - 1] == 0)
		last--;
	store(&h->min, clamp(h->min, bucket_lowest(first), bucket_highest(h, first)));
	store(&h->max, clamp(h->max, bucket_lowest(last - 1), bucket_highest(h, last - 1)));
}

struct dds_hist *dds_hist_new(uint64_t max_value)
{
	struct dds_hist *h;
	size_t nbuckets;

	if (max_value < SUB_COUNT || max_value > MAX_VALUE_LIMIT)
		return NULL;
	nbuckets = bucket_of(max_value) + 1;
	h = calloc(1, sizeof(*h) + nbuckets * sizeof(h->counts[0]));
	if (!h)
		return NULL;
	h->max_value = max_value;
	h->nbuckets = nbuckets;
	set_empty_extremes(h);
	return h;
}

struct dds_hist *dds_hist_clone(const struct dds_hist *h)
{
	return dds_hist_new(h->max_value);
}

void dds_hist_free(struct dds_hist *h)
{
	free(h);
}

void dds_hist_record(struct dds_hist *h, uint64_t v)
{
	dds_hist_record_n(h, v, 1);
}

/* The hot path: one bucket, the count, and the extremes or the overflow only when they move.
 * The writer is the only one storing, so its own plain read-modify-write cannot lose counts. */
void dds_hist_record_n(struct dds_hist *h, uint64_t v, uint64_t n)
{
	uint64_t *c;

	if (n == 0)
		return;
	if (__builtin_expect(v > h->max_value, 0)) {
		store(&h->overflow, h->overflow + n);
		v = h->max_value;
	}
	c = &h->counts[bucket_of(v)];
	store(c, *c + n);
	store(&h->count, h->count + n);
	if (v < h->min)
		store(&h->min, v);
	if (v > h->max)
		store(&h->max, v);
}

/* dst = src, or dst += src: each of src's counters read once, atomically; dst's count is the sum
 * of the counts it got, so the copy agrees with itself even when src's writer was recording. */
static void copy_counts(struct dds_hist *dst, const struct dds_hist *src, bool accumulate)
{
	uint64_t total = accumulate ? dst->count : 0;

	for (size_t i = 0; i < dst->nbuckets; i++) {
		uint64_t c = load(&src->counts[i]);

		total += c;
		store(&dst->counts[i], accumulate ? dst->counts[i] + c : c);
	}
	store(&dst->count, total);
	store(&dst->overflow, (accumulate ? dst->overflow : 0) + load(&src->overflow));
}

int dds_hist_snapshot(const struct dds_hist *src, struct dds_hist *dst)
{
	if (!same_shape(src, dst))
		return -1;
	/* A value recorded during the copy may be in the copied buckets and not in the copied
	 * extremes, or the reverse (relaxed stores are seen in any order): fit_extremes moves each
	 * extreme into the first or last non-empty bucket copied. */
	store(&dst->min, load(&src->min));
	store(&dst->max, load(&src->max));
	copy_counts(dst, src, false);
	fit_extremes(dst);
	return 0;
}

int dds_hist_add(struct dds_hist *dst, const struct dds_hist *src)
{
	uint64_t smin, smax;

	if (!same_shape(src, dst))
		return -1;
	smin = load(&src->min);
	smax = load(&src->max);
	copy_counts(dst, src, true);
	if (smin < dst->min)
		store(&dst->min, smin);
	if (smax > dst->max)
		store(&dst->max, smax);
	fit_extremes(dst);
	return 0;
}

/* Checks every counter first, so a base that is not an earlier snapshot of dst (some counter
 * larger than dst's) leaves dst unchanged. */
int dds_hist_sub(struct dds_hist *dst, const struct dds_hist *base)
{
	if (!same_shape(dst, base) || base->overflow > dst->overflow || base->count > dst->count)
		return -1;
	for (size_t i = 0; i < dst->nbuckets; i++)
		if (base->counts[i] > dst->counts[i])
			return -1;
	for (size_t i = 0; i < dst->nbuckets; i++)
		store(&dst->counts[i], dst->counts[i] - base->counts[i]);
	store(&dst->count, dst->count - base->count);
	store(&dst->overflow, dst->overflow - base->overflow);
	fit_extremes(dst);
	return 0;
}

void dds_hist_clear(struct dds_hist *h)
{
	for (size_t i = 0; i < h->nbuckets; i++)
		store(&h->counts[i], 0);
	store(&h->count, 0);
	store(&h->overflow, 0);
	set_empty_extremes(h);
}

uint64_t dds_hist_count(const struct dds_hist *h)
{
	return h->count;
}

uint64_t dds_hist_overflow(const struct dds_hist *h)
{
	return h->overflow;
}

uint64_t dds_hist_min(const struct dds_hist *h)
{
	return h->count ? h->min : 0;
}

uint64_t dds_hist_max(const struct dds_hist *h)
{
	return h->count ? h->max : 0;
}

/* The rank ceil(q * count), kept in [1, count]; q outside [0, 1] (or NaN) is taken as the
 * nearest end. The value reported is never above the recorded maximum, which lies in the top
 * non-empty bucket, so q = 1 gives the maximum itself. */
uint64_t dds_hist_quantile(const struct dds_hist *h, double q)
{
	uint64_t rank, seen = 0;
	double want;

	if (h->count == 0)
		return 0;
	if (!(q > 0))
		q = 0;
	if (q > 1)
		q = 1;
	want = q * (double)h->count;
	rank = want >= (double)h->count ? h->count : (uint64_t)want;
	if ((double)rank < want)
		rank++;
	if (rank == 0)
		rank = 1;
	for (size_t i = 0; i < h->nbuckets; i++) {
		seen += h->counts[i];
		if (seen >= rank) {
			uint64_t v = bucket_highest(h, i);

			return v < h->max ? v : h->max;
		}
	}
	return h->max; /* not reached: count is the sum of counts[] */
}

/* From the buckets, each value taken as its bucket's middle (exact below 2^SUB_BITS, within
 * 2^-(SUB_BITS) relative above): no running sum to overflow, and exact under dds_hist_sub. */
double dds_hist_mean(const struct dds_hist *h)
{
	double sum = 0;

	if (h->count == 0)
		return 0;
	for (size_t i = 0; i < h->nbuckets; i++)
		if (h->counts[i])
			sum += (double)h->counts[i] *
			       ((double)bucket_lowest(i) + (double)bucket_highest(h, i)) / 2;
	return sum / (double)h->count;
}

void dds_hist_summarize(const struct dds_hist *h, struct dds_hist_summary *s)
{
	s->count = h->count;
	s->min = dds_hist_min(h);
	s->p50 = dds_hist_quantile(h, 0.5);
	s->p90 = dds_hist_quantile(h, 0.9);
	s->p99 = dds_hist_quantile(h, 0.99);
	s->p999 = dds_hist_quantile(h, 0.999);
	s->max = dds_hist_max(h);
	s->overflow = h->overflow;
	s->mean = dds_hist_mean(h);
}

bool dds_hist_next_bucket(const struct dds_hist *h, size_t *state, uint64_t *value,
			  uint64_t *count)
{
	for (size_t i = *state; i < h->nbuckets; i++) {
		if (h->counts[i]) {
			*value = bucket_highest(h, i);
			*count = h->counts[i];
			*state = i + 1;
			return true;
		}
	}
	*state = h->nbuckets;
	return false;
}
