/* dds_pricing.h: the server's market: rounds, device budgets, the price, allocations, the ledger.
 *
 * Three parts (docs/pricing.md has the rules, the reason codes and the ledger's byte layout):
 *
 * 1. The market (struct dds_pricing). Devices submit budgets x_i from the packet path (any
 *    number of threads, lock-free, never blocking). One writer thread closes rounds: it admits
 *    new devices, expires silent ones, computes p = max(p0, sum x / R) and r_i = x_i / p, and
 *    publishes them through a seqlock. Readers (the packet path, the scheduler, telemetry) read
 *    p and r_i without a lock and always see one round's values, never a mix. A device active in
 *    a round is charged its budget x_i for that round (the paper's charge, linear in the budget).
 *
 * 2. The charge ledger (struct dds_ledger): an append-only file of fixed 64-byte records, each
 *    with a CRC-32C, fsync'd once per round. Opening it recovers from a crash: complete records
 *    are kept and a torn last record is cut off.
 *
 * 3. The equilibrium price of the DDS game (section 7 of dds-model.md), from the devices'
 *    best-response functions: a reference for simulators and tests.
 *
 * Threads: dds_pricing_submit() and the dds_pricing_read_*() functions may be called from any
 * thread at any time; everything else on a struct dds_pricing belongs to the single writer.
 * A struct dds_ledger belongs to one thread. Nothing here touches a network, a GPU or DPDK.
 */
#ifndef DDS_PRICING_H
#define DDS_PRICING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------------------ */
/* The market                                                                                 */

struct dds_pricing_cfg {
	double capacity;        /* R: server compute rate (FLOP/s or calibrated units); > 0 */
	double base_price;      /* p0: the price when demand is below capacity; > 0 */
	double budget_cap;      /* the largest budget accepted; > 0 */
	uint32_t max_devices;   /* devices in the table at once; 1 .. DDS_PRICING_MAX_DEVICES */
	uint32_t expire_rounds; /* a device silent for this many rounds is dropped; >= 1 */
	uint64_t round_ns;      /* round length for dds_pricing_poll(); > 0 */
};

#define DDS_PRICING_MAX_DEVICES (1u << 20)

/* Why a budget was refused (DDS_PRICING_OK when it was taken). */
enum dds_pricing_reason {
	DDS_PRICING_OK = 0,
	DDS_PRICING_NEGATIVE,   /* x < 0 */
	DDS_PRICING_NAN,        /* x is NaN */
	DDS_PRICING_INFINITE,   /* x is +/- infinity */
	DDS_PRICING_OVER_CAP,   /* x > budget_cap */
	DDS_PRICING_TABLE_FULL, /* a new device, and max_devices are already in the table */
	DDS_PRICING_BUSY,       /* a new device, and the join queue is full: retry later */
	DDS_PRICING_REASON__COUNT
};

/* Fill cfg with the documented defaults (docs/pricing.md). */
void dds_pricing_cfg_default(struct dds_pricing_cfg *cfg);

/* A static, human-readable name for a reason ("negative budget", ...). */
const char *dds_pricing_reason_str(enum dds_pricing_reason r);

/* Check one budget against cfg alone (no table): what submit would say about x. */
enum dds_pricing_reason dds_pricing_check_budget(const struct dds_pricing_cfg *cfg, double x);

struct dds_pricing;

/* Create a market. Returns NULL on a bad cfg or no memory, with a message in err (may be NULL).
 * Before the first round closes, the published price is p0 and no device is active. */
struct dds_pricing *dds_pricing_create(const struct dds_pricing_cfg *cfg, char *err,
				       size_t err_len);
void dds_pricing_free(struct dds_pricing *pr);

/* Any thread. Record device dev's budget x for the round now open (its latest budget wins).
 * A device not in the table joins at the next round close. Never blocks; returns the reason
 * the budget was refused, and then changes nothing. A join refused at round close because the
 * table filled up meanwhile is counted in stats.join_dropped_full (the device's next submit
 * gets DDS_PRICING_TABLE_FULL). */
enum dds_pricing_reason dds_pricing_submit(struct dds_pricing *pr, uint32_t dev, double x);

/* One device's line of a closed round. */
struct dds_pricing_entry {
	uint32_t device;
	double budget;     /* x_i */
	double allocation; /* r_i = x_i / p */
	double charge;     /* what the device owes for the round: x_i */
};

/* A closed round, as the writer sees it. */
struct dds_pricing_round {
	uint64_t round;     /* 1, 2, ... */
	double price;       /* p = max(p0, sum / R) */
	double sum_budget;  /* sum of x_i over the active devices (in table order) */
	uint32_t n_active;  /* entries below */
	uint32_t n_joined;  /* devices admitted at this close */
	uint32_t n_expired; /* devices dropped at this close */
	const struct dds_pricing_entry *entry; /* owned by the market; valid until the next close */
};

/* Writer only. Close the open round now: admit joins, expire devices silent for expire_rounds
 * rounds, compute p and every r_i, publish them, open the next round. Fills out. */
void dds_pricing_close_round(struct dds_pricing *pr, struct dds_pricing_round *out);

/* Writer only. Close the round if its time (round_ns after the previous close) has come.
 * The first call only starts the clock. If the writer is late by a whole round or more, one
 * round is closed and the missed time is not charged (stats.late_closes counts these).
 * Returns 1 if a round was closed (out filled), else 0. now_ns: any monotonic clock. */
int dds_pricing_poll(struct dds_pricing *pr, uint64_t now_ns, struct dds_pricing_round *out);

/* What readers see: the latest published round. */
struct dds_price_view {
	uint64_t round;    /* 0 before the first close */
	double price;
	double sum_budget;
	uint32_t n_active;
};

/* Any thread, lock-free: the published price (and its round). */
void dds_pricing_read_price(const struct dds_pricing *pr, struct dds_price_view *v);

/* Any thread, lock-free: device dev's budget and allocation in the published round, read
 * together with v from one round. Returns false (x = r = 0) if dev was not active in it. */
bool dds_pricing_read_device(const struct dds_pricing *pr, uint32_t dev, struct dds_price_view *v,
			     double *x, double *r);

/* Any thread, lock-free: the whole published round: v and up to cap entries (in table order).
 * Returns the number of active devices (may exceed cap; only cap entries are written). */
size_t dds_pricing_read_all(const struct dds_pricing *pr, struct dds_price_view *v,
			    struct dds_pricing_entry *e, size_t cap);

struct dds_pricing_stats {
	uint64_t accepted;                          /* budgets taken */
	uint64_t rejected[DDS_PRICING_REASON__COUNT]; /* by reason ([0] unused) */
	uint64_t join_dropped_full;                 /* joins refused at close: table full */
	uint64_t late_closes;                       /* poll() found a whole round missed */
	uint32_t devices;                           /* in the table now */
};

/* Any thread; counters are read one by one, so they may be from slightly different instants. */
void dds_pricing_stats(const struct dds_pricing *pr, struct dds_pricing_stats *s);

/* ------------------------------------------------------------------------------------------ */
/* The charge ledger                                                                          */

#define DDS_LEDGER_MAGIC 0x4C534444u /* the bytes "DDSL" read as a little-endian u32 */
#define DDS_LEDGER_VERSION 1u
#define DDS_LEDGER_REC_SIZE 64u

/* One ledger record: device `device` was charged `charge` for round `round`. */
struct dds_ledger_rec {
	uint64_t round;
	uint32_t device;
	double budget;
	double allocation;
	double charge;
	double price;
};

/* What a scan of a ledger file found. */
struct dds_ledger_scan {
	uint64_t file_bytes;    /* size of the file when scanned */
	uint64_t records;       /* complete valid records, from the start */
	uint64_t valid_bytes;   /* records * DDS_LEDGER_REC_SIZE */
	uint64_t torn_bytes;    /* an incomplete or invalid LAST record: a torn write */
	bool corrupt;           /* an invalid record with more data after it */
	uint64_t corrupt_offset;/* where (valid when corrupt) */
	char why[64];           /* what was wrong with the first invalid record, or "" */
};

struct dds_ledger_err {
	char msg[320];
};

/* Open flags. */
#define DDS_LEDGER_REPAIR 1u /* on corruption, keep the valid prefix and cut the rest off */

struct dds_ledger;

/* Open (creating if missing) a ledger for appending, taking an exclusive lock on it, and
 * recover: a torn last record is cut off (scan->torn_bytes says how many bytes). A corrupt
 * record with data after it fails the open (scan->corrupt) unless DDS_LEDGER_REPAIR is given;
 * then the file is cut at the corrupt record, keeping every record before it. scan may be NULL.
 * Returns NULL with err on failure (and changes nothing on disk). */
struct dds_ledger *dds_ledger_open(const char *path, unsigned flags, struct dds_ledger_scan *scan,
				   struct dds_ledger_err *err);

/* Append one record with write(). Not durable until dds_ledger_commit_round(). After a failed
 * write the ledger tries to cut the partial record off and refuses further appends.
 * Returns 0, or -1 with err. */
int dds_ledger_append(struct dds_ledger *l, const struct dds_ledger_rec *rec,
		      struct dds_ledger_err *err);

/* fsync the file: every record appended so far is durable. Returns 0, or -1 with err. */
int dds_ledger_commit_round(struct dds_ledger *l, struct dds_ledger_err *err);

/* Append one record per active device of a closed round, then commit. Returns 0 or -1. */
int dds_ledger_write_round(struct dds_ledger *l, const struct dds_pricing_round *rd,
			   struct dds_ledger_err *err);

/* Records appended and kept (recovered ones included). */
uint64_t dds_ledger_records(const struct dds_ledger *l);

/* Commit, unlock and close. Returns 0, or -1 with err if the final fsync failed (the handle
 * is freed either way). l may be NULL. */
int dds_ledger_close(struct dds_ledger *l, struct dds_ledger_err *err);

/* Read-only scan: call fn for every valid record in order until fn returns non-zero (which is
 * then returned). Changes nothing on disk. Fills scan (may be NULL). Returns 0 when the scan
 * ended at the end of the valid prefix (check scan->corrupt), or -1 with err when the file
 * could not be read (missing, unreadable, I/O error). */
int dds_ledger_read(const char *path, int (*fn)(void *ctx, const struct dds_ledger_rec *rec),
		    void *ctx, struct dds_ledger_scan *scan, struct dds_ledger_err *err);

/* ------------------------------------------------------------------------------------------ */
/* The equilibrium price                                                                      */

/* A player of the game: its best-response budget x_i*(p) >= 0 at price p > 0 (0 = all-local).
 * agent/budget.h's dds_budget_best_response() computes it from a latency envelope. */
struct dds_eq_player {
	double (*best_x)(void *ctx, double p);
	void *ctx;
};

struct dds_eq_result {
	double price;       /* the equilibrium price p* */
	double demand;      /* sum_i r_i*(p*) = sum_i x_i*(p*) / p*: <= R */
	double demand_below;/* sum_i r_i* just below p* (> R unless at_base) */
	bool at_base;       /* demand at p0 already fits: p* = p0 */
	int evaluations;    /* best-response rounds used */
};

/* Find p* = max(p0, sum_i x_i*(p*) / R) by bisection on the total demand D(p) = sum_i
 * x_i*(p) / p, which never increases with p (proof in equilibrium.c). When D jumps across R
 * (a device switches partition there), no exact fixed point exists and p* is the jump:
 * D(p*) <= R < demand_below, within rel_tol of p*. Returns 0, or -1 with err when a best
 * response is negative or not finite, the inputs are invalid, or D never falls below R. */
int dds_pricing_equilibrium(const struct dds_eq_player *pl, size_t n, double capacity,
			    double base_price, double rel_tol, struct dds_eq_result *out, char *err,
			    size_t err_len);

#endif
