/* pricing.c: the market: the device table, lock-free budget submits, round close, seqlock. */
#include "pricing_int.h"

#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * How the threads share the table (docs/pricing.md, "Concurrency"):
 *
 * - slot[k] holds one device. Its tag is TAG(dev) while dev owns it, else 0. Submitters find
 *   the slot through the index (an open-addressing hash table of slot numbers) and store the
 *   budget there with atomics, bracketed by the slot's busy counter.
 * - Only the writer changes tags and the index. To free a slot it clears the tag, then waits
 *   for busy to drain (a Dekker pair of seq_cst operations): a submitter that saw the old tag
 *   finishes before the slot can be given to anyone else, and one that comes later sees the
 *   tag cleared. A lookup checks the tag, so it never returns a wrong slot; a miss is
 *   re-checked against the index's seqcount, so a rebuild of the index hides no device.
 * - A device not found asks to join: it claims a cell of the join table (hashed by device,
 *   JOIN_PROBES cells tried) or updates the cell it already holds, so a device that submits
 *   many times before it is admitted holds one cell with its latest budget. The writer
 *   admits the joins when it closes a round, before summing: it locks each claimed cell
 *   (tag JOIN_LOCKED: no one can claim or update it), waits out its busy submits, reads the
 *   budget and frees the cell.
 * - The writer publishes each closed round (p, sum, and per slot the device, x_i, r_i) under
 *   a seqlock (Boehm, "Can seqlocks get along with programming language memory models?").
 */

#define TAG(dev) ((UINT64_C(1) << 32) | (uint64_t)(dev))
#define CELL_EMPTY 0u
#define CELL_TOMB UINT32_MAX
#define JOIN_LOCKED (UINT64_C(1) << 33) /* never a TAG() */
#define JOIN_PROBES 4

struct slot {
	alignas(64) _Atomic uint64_t tag; /* TAG(dev) while dev owns the slot, else 0 */
	_Atomic uint32_t busy;            /* submits in flight on this slot */
	_Atomic double x;                 /* the latest budget */
	_Atomic uint64_t seen_round;      /* the round that was open at the latest submit */
	uint32_t cell;                    /* writer only: the index cell pointing here (slots) */
};

struct pub_dev {
	_Atomic uint64_t tag; /* TAG(dev) if dev was active in the published round, else 0 */
	_Atomic double x;
	_Atomic double r;
};

struct dds_pricing {
	struct dds_pricing_cfg cfg;
	struct slot *slot;       /* [max_devices] */
	_Atomic uint32_t *cell;  /* [cell_mask + 1]: slot + 1, CELL_EMPTY or CELL_TOMB */
	_Atomic uint32_t index_seq; /* odd while the writer rebuilds the index */
	uint32_t cell_mask;
	struct slot *join;       /* [join_mask + 1] join cells: tag 0, TAG(dev) or JOIN_LOCKED */
	uint32_t join_mask;
	struct pub_dev *pub;     /* [max_devices] */

	alignas(64) _Atomic uint64_t open_round;
	_Atomic uint32_t n_live;
	alignas(64) _Atomic uint32_t join_pending; /* join requests since the last close (a hint) */
	alignas(64) _Atomic uint64_t accepted;
	_Atomic uint64_t rejected[DDS_PRICING_REASON__COUNT];
	_Atomic uint64_t join_dropped_full;
	_Atomic uint64_t late_closes;

	alignas(64) _Atomic uint32_t seq; /* seqlock: odd while the writer publishes */
	_Atomic uint64_t pub_round;
	_Atomic double pub_price;
	_Atomic double pub_sum;
	_Atomic uint32_t pub_n;

	/* Writer only. */
	alignas(64) uint32_t *free_slot; /* stack of free slot numbers */
	uint32_t n_free;
	uint32_t n_empty;    /* CELL_EMPTY cells in the index */
	struct dds_pricing_entry *entry; /* the last closed round, in slot order */
	uint32_t *entry_slot;            /* slot of each entry */
	uint64_t deadline;
	bool clock_started;
};

void dds_pricing_fmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!buf || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

void dds_pricing_cfg_default(struct dds_pricing_cfg *cfg)
{
	*cfg = (struct dds_pricing_cfg){
		.capacity = 1.2e12,      /* the paper's server: 1.2 TFLOP/s */
		.base_price = 1e-12,     /* money per (FLOP/s) per round: R * p0 = 1.2 */
		.budget_cap = 1e6,
		.max_devices = 1024,
		.expire_rounds = 20,
		.round_ns = 100000000u,  /* 100 ms */
	};
}

const char *dds_pricing_reason_str(enum dds_pricing_reason r)
{
	static const char *const name[DDS_PRICING_REASON__COUNT] = {
		[DDS_PRICING_OK] = "ok",
		[DDS_PRICING_NEGATIVE] = "negative budget",
		[DDS_PRICING_NAN] = "budget is not a number",
		[DDS_PRICING_INFINITE] = "infinite budget",
		[DDS_PRICING_OVER_CAP] = "budget over the cap",
		[DDS_PRICING_TABLE_FULL] = "device table full",
		[DDS_PRICING_BUSY] = "join table crowded, retry",
	};

	if ((unsigned)r >= DDS_PRICING_REASON__COUNT)
		return "unknown reason";
	return name[r];
}

enum dds_pricing_reason dds_pricing_check_budget(const struct dds_pricing_cfg *cfg, double x)
{
	if (isnan(x))
		return DDS_PRICING_NAN;
	if (isinf(x))
		return DDS_PRICING_INFINITE;
	if (x < 0)
		return DDS_PRICING_NEGATIVE;
	if (x > cfg->budget_cap)
		return DDS_PRICING_OVER_CAP;
	return DDS_PRICING_OK;
}

static bool cfg_valid(const struct dds_pricing_cfg *c, char *err, size_t err_len)
{
	const char *bad = NULL;

	if (!(isfinite(c->capacity) && c->capacity > 0))
		bad = "capacity must be finite and > 0";
	else if (!(isfinite(c->base_price) && c->base_price > 0))
		bad = "base_price must be finite and > 0";
	else if (!(isfinite(c->budget_cap) && c->budget_cap > 0))
		bad = "budget_cap must be finite and > 0";
	else if (c->max_devices < 1 || c->max_devices > DDS_PRICING_MAX_DEVICES)
		bad = "max_devices must be in 1 .. 1048576";
	else if (c->expire_rounds < 1)
		bad = "expire_rounds must be >= 1";
	else if (c->round_ns < 1)
		bad = "round_ns must be >= 1";
	if (bad)
		dds_pricing_fmt(err, err_len, "pricing config: %s", bad);
	return !bad;
}

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 16;

	while (p < n)
		p <<= 1;
	return p;
}

static void *aligned_zalloc(size_t n, size_t size)
{
	size_t bytes = (n * size + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, bytes);

	if (p)
		memset(p, 0, bytes);
	return p;
}

void dds_pricing_free(struct dds_pricing *pr)
{
	if (!pr)
		return;
	free(pr->slot);
	free(pr->cell);
	free(pr->join);
	free(pr->pub);
	free(pr->free_slot);
	free(pr->entry);
	free(pr->entry_slot);
	free(pr);
}

struct dds_pricing *dds_pricing_create(const struct dds_pricing_cfg *cfg, char *err,
				       size_t err_len)
{
	struct dds_pricing *pr;
	uint32_t n, n_cells;

	if (!cfg_valid(cfg, err, err_len))
		return NULL;
	n = cfg->max_devices;
	n_cells = pow2_at_least(2 * n);
	pr = aligned_zalloc(1, sizeof(*pr));
	if (!pr)
		goto oom;
	pr->cfg = *cfg;
	pr->slot = aligned_zalloc(n, sizeof(*pr->slot));
	pr->cell = aligned_zalloc(n_cells, sizeof(*pr->cell));
	pr->join = aligned_zalloc(n_cells, sizeof(*pr->join));
	pr->pub = aligned_zalloc(n, sizeof(*pr->pub));
	pr->free_slot = calloc(n, sizeof(*pr->free_slot));
	pr->entry = calloc(n, sizeof(*pr->entry));
	pr->entry_slot = calloc(n, sizeof(*pr->entry_slot));
	if (!pr->slot || !pr->cell || !pr->join || !pr->pub || !pr->free_slot || !pr->entry ||
	    !pr->entry_slot)
		goto oom;
	pr->cell_mask = n_cells - 1;
	pr->join_mask = n_cells - 1;
	pr->n_empty = n_cells;
	for (uint32_t i = 0; i < n; i++)
		pr->free_slot[i] = n - 1 - i; /* slot 0 is handed out first */
	pr->n_free = n;
	atomic_init(&pr->open_round, 1);
	atomic_init(&pr->pub_price, cfg->base_price);
	return pr;
oom:
	dds_pricing_free(pr);
	dds_pricing_fmt(err, err_len, "pricing: out of memory for %u devices", cfg->max_devices);
	return NULL;
}

static uint32_t hash32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	x ^= x >> 16;
	return x;
}

/* Any thread: dev's slot, or -1. Never a wrong slot (the tag is checked); may miss dev while
 * the writer rebuilds the index. */
static int64_t probe(const struct dds_pricing *pr, uint32_t dev)
{
	uint32_t i = hash32(dev) & pr->cell_mask;

	for (uint32_t n = 0; n <= pr->cell_mask; n++, i = (i + 1) & pr->cell_mask) {
		uint32_t c = atomic_load_explicit(&pr->cell[i], memory_order_acquire);

		if (c == CELL_EMPTY)
			return -1;
		if (c != CELL_TOMB &&
		    atomic_load_explicit(&pr->slot[c - 1].tag, memory_order_acquire) == TAG(dev))
			return c - 1;
	}
	return -1;
}

/* Any thread: dev's slot, or -1. A miss is trusted only if no index rebuild overlapped the
 * probe (a seqcount, like the seqlock below); edits other than a rebuild never hide a device
 * that stays in the table. */
static int64_t find_slot(const struct dds_pricing *pr, uint32_t dev)
{
	for (;;) {
		uint32_t s = atomic_load_explicit(&pr->index_seq, memory_order_acquire);
		int64_t k = probe(pr, dev);

		if (k >= 0)
			return k;
		atomic_thread_fence(memory_order_acquire);
		if (!(s & 1) && atomic_load_explicit(&pr->index_seq, memory_order_relaxed) == s)
			return -1;
	}
}

/* Any thread: store x into slot s if dev owns it; with claim, first take s if it is free.
 * The seq_cst increment of busy and load of tag pair with the writer's store of the tag and
 * load of busy in retire() and join_take(). */
static bool slot_store(struct slot *s, uint64_t round, uint32_t dev, double x, bool claim)
{
	uint64_t tag;
	bool owned;

	atomic_fetch_add(&s->busy, 1);
	tag = atomic_load(&s->tag);
	if (claim && tag == 0 && atomic_compare_exchange_strong(&s->tag, &tag, TAG(dev)))
		tag = TAG(dev);
	owned = tag == TAG(dev);
	if (owned) {
		atomic_store_explicit(&s->x, x, memory_order_relaxed);
		atomic_store_explicit(&s->seen_round, round, memory_order_relaxed);
	}
	atomic_fetch_sub_explicit(&s->busy, 1, memory_order_release);
	return owned;
}

static uint64_t open_round(const struct dds_pricing *pr)
{
	return atomic_load_explicit(&pr->open_round, memory_order_relaxed);
}

/* Any thread: ask for dev to join at the next close, in a join cell it holds or claims. */
static enum dds_pricing_reason join_request(struct dds_pricing *pr, uint32_t dev, double x)
{
	uint32_t h = hash32(dev);

	if (atomic_load_explicit(&pr->n_live, memory_order_relaxed) >= pr->cfg.max_devices)
		return DDS_PRICING_TABLE_FULL;
	for (uint32_t i = 0; i < JOIN_PROBES; i++) {
		if (slot_store(&pr->join[(h + i) & pr->join_mask], 0, dev, x, true)) {
			/* A hint that the writer must scan the join table; counting a cell
			 * twice only costs a scan. */
			atomic_fetch_add_explicit(&pr->join_pending, 1, memory_order_release);
			return DDS_PRICING_OK;
		}
	}
	return DDS_PRICING_BUSY;
}

/* Writer: if join cell c is claimed, take its device and latest budget and free the cell. */
static bool join_take(struct slot *c, uint32_t *dev, double *x)
{
	uint64_t tag = atomic_load(&c->tag);

	if (tag == 0)
		return false; /* a claim racing with us is taken at the next close */
	atomic_store(&c->tag, JOIN_LOCKED);
	while (atomic_load(&c->busy) != 0)
		; /* a submit holds busy for a few instructions */
	*dev = (uint32_t)tag;
	*x = atomic_load_explicit(&c->x, memory_order_relaxed);
	atomic_store_explicit(&c->tag, 0, memory_order_release);
	return true;
}

enum dds_pricing_reason dds_pricing_submit(struct dds_pricing *pr, uint32_t dev, double x)
{
	enum dds_pricing_reason r = dds_pricing_check_budget(&pr->cfg, x);

	if (r == DDS_PRICING_OK) {
		int64_t k = find_slot(pr, dev);

		if (k < 0 || !slot_store(&pr->slot[k], open_round(pr), dev, x, false))
			r = join_request(pr, dev, x);
	}
	if (r == DDS_PRICING_OK)
		atomic_fetch_add_explicit(&pr->accepted, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&pr->rejected[r], 1, memory_order_relaxed);
	return r;
}

/* Writer: point a free cell of dev's probe sequence at slot k. */
static void index_insert(struct dds_pricing *pr, uint32_t k, uint32_t dev)
{
	uint32_t i = hash32(dev) & pr->cell_mask;

	for (;;) {
		uint32_t c = atomic_load_explicit(&pr->cell[i], memory_order_relaxed);

		if (c == CELL_EMPTY || c == CELL_TOMB) {
			pr->n_empty -= c == CELL_EMPTY;
			pr->slot[k].cell = i;
			atomic_store_explicit(&pr->cell[i], k + 1, memory_order_release);
			return;
		}
		i = (i + 1) & pr->cell_mask; /* terminates: live cells <= half the index */
	}
}

/* Writer: rebuild the index once tombstones leave fewer than a quarter of it empty. Lookups
 * that overlap it retry their misses (find_slot). */
static void index_maybe_rebuild(struct dds_pricing *pr)
{
	uint32_t s = atomic_load_explicit(&pr->index_seq, memory_order_relaxed);

	if (pr->n_empty >= (pr->cell_mask + 1) / 4)
		return;
	atomic_store_explicit(&pr->index_seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	for (uint32_t i = 0; i <= pr->cell_mask; i++)
		atomic_store_explicit(&pr->cell[i], CELL_EMPTY, memory_order_relaxed);
	pr->n_empty = pr->cell_mask + 1;
	for (uint32_t k = 0; k < pr->cfg.max_devices; k++) {
		uint64_t tag = atomic_load_explicit(&pr->slot[k].tag, memory_order_relaxed);

		if (tag)
			index_insert(pr, k, (uint32_t)tag);
	}
	atomic_store_explicit(&pr->index_seq, s + 2, memory_order_release);
}

/* Writer: take slot k away from its device and wait out the submits in flight on it. */
static void retire(struct dds_pricing *pr, uint32_t k)
{
	struct slot *s = &pr->slot[k];

	atomic_store(&s->tag, 0);
	while (atomic_load(&s->busy) != 0)
		; /* a submit holds busy for a few instructions */
	atomic_store_explicit(&pr->cell[s->cell], CELL_TOMB, memory_order_release);
	pr->free_slot[pr->n_free++] = k;
	atomic_store_explicit(&pr->n_live, pr->cfg.max_devices - pr->n_free,
			      memory_order_relaxed);
	index_maybe_rebuild(pr);
}

/* Writer: admit a queued join (or update a device that is already in). Returns true if a
 * device was added to the table. */
static bool admit(struct dds_pricing *pr, uint32_t dev, double x)
{
	int64_t k = find_slot(pr, dev);
	struct slot *s;

	if (k >= 0) {
		slot_store(&pr->slot[k], open_round(pr), dev, x, false);
		return false;
	}
	if (pr->n_free == 0) {
		atomic_fetch_add_explicit(&pr->join_dropped_full, 1, memory_order_relaxed);
		return false;
	}
	k = pr->free_slot[--pr->n_free];
	s = &pr->slot[k];
	atomic_store_explicit(&s->x, x, memory_order_relaxed);
	atomic_store_explicit(&s->seen_round, open_round(pr), memory_order_relaxed);
	atomic_store(&s->tag, TAG(dev));
	index_insert(pr, (uint32_t)k, dev);
	atomic_store_explicit(&pr->n_live, pr->cfg.max_devices - pr->n_free,
			      memory_order_relaxed);
	return true;
}

/* Writer: publish the entries of the round just computed (seqlock write side). */
static void publish(struct dds_pricing *pr, const struct dds_pricing_round *rd)
{
	uint32_t s = atomic_load_explicit(&pr->seq, memory_order_relaxed);
	uint32_t j = 0;

	atomic_store_explicit(&pr->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&pr->pub_round, rd->round, memory_order_relaxed);
	atomic_store_explicit(&pr->pub_price, rd->price, memory_order_relaxed);
	atomic_store_explicit(&pr->pub_sum, rd->sum_budget, memory_order_relaxed);
	atomic_store_explicit(&pr->pub_n, rd->n_active, memory_order_relaxed);
	for (uint32_t k = 0; k < pr->cfg.max_devices; k++) {
		struct pub_dev *d = &pr->pub[k];
		bool active = j < rd->n_active && pr->entry_slot[j] == k;

		atomic_store_explicit(&d->tag, active ? TAG(rd->entry[j].device) : 0,
				      memory_order_relaxed);
		atomic_store_explicit(&d->x, active ? rd->entry[j].budget : 0,
				      memory_order_relaxed);
		atomic_store_explicit(&d->r, active ? rd->entry[j].allocation : 0,
				      memory_order_relaxed);
		j += active;
	}
	atomic_store_explicit(&pr->seq, s + 2, memory_order_release);
}

void dds_pricing_close_round(struct dds_pricing *pr, struct dds_pricing_round *out)
{
	uint64_t n = atomic_load_explicit(&pr->open_round, memory_order_relaxed);
	uint32_t joined = 0, expired = 0, na = 0, dev;
	double sum = 0, x, p;

	if (atomic_exchange_explicit(&pr->join_pending, 0, memory_order_acq_rel))
		for (uint32_t i = 0; i <= pr->join_mask; i++)
			if (join_take(&pr->join[i], &dev, &x))
				joined += admit(pr, dev, x);
	for (uint32_t k = 0; k < pr->cfg.max_devices; k++) {
		struct slot *s = &pr->slot[k];
		uint64_t tag = atomic_load_explicit(&s->tag, memory_order_relaxed);
		uint64_t seen = atomic_load_explicit(&s->seen_round, memory_order_relaxed);

		if (!tag)
			continue;
		if (n - seen >= pr->cfg.expire_rounds) { /* seen <= n: set from open_round */
			retire(pr, k);
			expired++;
			continue;
		}
		x = atomic_load_explicit(&s->x, memory_order_relaxed);
		pr->entry[na] = (struct dds_pricing_entry){ .device = (uint32_t)tag, .budget = x };
		pr->entry_slot[na++] = k;
		sum += x;
	}
	p = fmax(pr->cfg.base_price, sum / pr->cfg.capacity);
	for (uint32_t i = 0; i < na; i++) {
		pr->entry[i].allocation = pr->entry[i].budget / p;
		pr->entry[i].charge = pr->entry[i].budget;
	}
	*out = (struct dds_pricing_round){ .round = n, .price = p, .sum_budget = sum,
					   .n_active = na, .n_joined = joined,
					   .n_expired = expired, .entry = pr->entry };
	publish(pr, out);
	atomic_store_explicit(&pr->open_round, n + 1, memory_order_release);
}

int dds_pricing_poll(struct dds_pricing *pr, uint64_t now_ns, struct dds_pricing_round *out)
{
	uint64_t len = pr->cfg.round_ns;

	if (!pr->clock_started) {
		pr->clock_started = true;
		pr->deadline = now_ns + len;
		return 0;
	}
	if (now_ns < pr->deadline)
		return 0;
	if (now_ns - pr->deadline >= len) {
		atomic_fetch_add_explicit(&pr->late_closes, 1, memory_order_relaxed);
		pr->deadline = now_ns + len;
	} else {
		pr->deadline += len;
	}
	dds_pricing_close_round(pr, out);
	return 1;
}

/* Seqlock read side: wait for an even sequence number. */
static uint32_t read_begin(const struct dds_pricing *pr)
{
	for (;;) {
		uint32_t s = atomic_load_explicit(&pr->seq, memory_order_acquire);

		if (!(s & 1))
			return s;
	}
}

/* Seqlock read side: true if the values read since read_begin() may be torn. */
static bool read_retry(const struct dds_pricing *pr, uint32_t s)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&pr->seq, memory_order_relaxed) != s;
}

static void read_view(const struct dds_pricing *pr, struct dds_price_view *v)
{
	v->round = atomic_load_explicit(&pr->pub_round, memory_order_relaxed);
	v->price = atomic_load_explicit(&pr->pub_price, memory_order_relaxed);
	v->sum_budget = atomic_load_explicit(&pr->pub_sum, memory_order_relaxed);
	v->n_active = atomic_load_explicit(&pr->pub_n, memory_order_relaxed);
}

void dds_pricing_read_price(const struct dds_pricing *pr, struct dds_price_view *v)
{
	uint32_t s;

	do {
		s = read_begin(pr);
		read_view(pr, v);
	} while (read_retry(pr, s));
}

bool dds_pricing_read_device(const struct dds_pricing *pr, uint32_t dev, struct dds_price_view *v,
			     double *x, double *r)
{
	int64_t k = find_slot(pr, dev);
	bool active;
	uint32_t s;

	do {
		s = read_begin(pr);
		read_view(pr, v);
		active = k >= 0 && atomic_load_explicit(&pr->pub[k].tag, memory_order_relaxed) ==
					   TAG(dev);
		*x = active ? atomic_load_explicit(&pr->pub[k].x, memory_order_relaxed) : 0;
		*r = active ? atomic_load_explicit(&pr->pub[k].r, memory_order_relaxed) : 0;
	} while (read_retry(pr, s));
	return active;
}

size_t dds_pricing_read_all(const struct dds_pricing *pr, struct dds_price_view *v,
			    struct dds_pricing_entry *e, size_t cap)
{
	size_t n;
	uint32_t s;

	do {
		s = read_begin(pr);
		read_view(pr, v);
		n = 0;
		for (uint32_t k = 0; k < pr->cfg.max_devices; k++) {
			const struct pub_dev *d = &pr->pub[k];
			uint64_t tag = atomic_load_explicit(&d->tag, memory_order_relaxed);
			double x, r;

			if (!tag)
				continue;
			x = atomic_load_explicit(&d->x, memory_order_relaxed);
			r = atomic_load_explicit(&d->r, memory_order_relaxed);
			if (n < cap)
				e[n] = (struct dds_pricing_entry){ .device = (uint32_t)tag,
								   .budget = x, .allocation = r,
								   .charge = x };
			n++;
		}
	} while (read_retry(pr, s));
	return n;
}

void dds_pricing_stats(const struct dds_pricing *pr, struct dds_pricing_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->accepted = atomic_load_explicit(&pr->accepted, memory_order_relaxed);
	for (int i = 1; i < DDS_PRICING_REASON__COUNT; i++)
		s->rejected[i] = atomic_load_explicit(&pr->rejected[i], memory_order_relaxed);
	s->join_dropped_full = atomic_load_explicit(&pr->join_dropped_full, memory_order_relaxed);
	s->late_closes = atomic_load_explicit(&pr->late_closes, memory_order_relaxed);
	s->devices = atomic_load_explicit(&pr->n_live, memory_order_relaxed);
}
