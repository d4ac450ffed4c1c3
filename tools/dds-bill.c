/* dds-bill.c: print a device's bill (or everyone's) from a charge ledger: charges and totals.
 *
 *     dds-bill LEDGER [--device ID] [--json]
 *
 * Exit status: 0 the bill is complete; 1 usage error; 2 the ledger cannot be read; 3 the ledger
 * is corrupt (the bill of the valid records before the damage is printed, and stderr says
 * where the damage is). A torn last record (a crash mid-write) is ignored with a warning.
 * docs/pricing.md explains how to read a bill.
 */
#include "dds_pricing.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-device totals, sorted by device id. */
struct total {
	uint32_t device;
	uint64_t rounds;
	double charge;
};

struct bill {
	bool json;
	bool one;        /* only device `device` */
	bool headed;     /* the head was printed (lazily, so a missing file prints nothing) */
	const char *path;
	uint32_t device;
	uint64_t shown;  /* records printed */
	struct total *t;
	size_t n, cap;
	double sum;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: dds-bill LEDGER [--device ID] [--json]\n"
		   "Prints per-round charges and totals from a DDS charge ledger.\n");
}

/* A JSON number, or null for NaN and infinities (which valid ledgers do not hold). */
static void json_num(double v)
{
	if (isfinite(v))
		printf("%.17g", v);
	else
		printf("null");
}

static struct total *total_of(struct bill *b, uint32_t dev)
{
	size_t lo = 0, hi = b->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (b->t[mid].device < dev)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < b->n && b->t[lo].device == dev)
		return &b->t[lo];
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 64;
		struct total *t = realloc(b->t, cap * sizeof(*t));

		if (!t)
			return NULL;
		b->t = t;
		b->cap = cap;
	}
	memmove(&b->t[lo + 1], &b->t[lo], (b->n - lo) * sizeof(*b->t));
	b->t[lo] = (struct total){ .device = dev };
	b->n++;
	return &b->t[lo];
}

static void print_head(struct bill *b)
{
	if (b->headed)
		return;
	b->headed = true;
	if (b->json) {
		printf("{\n  \"ledger\": \"");
		for (const char *p = b->path; *p; p++) /* escape what JSON strings cannot hold */
			if (*p == '"' || *p == '\\')
				printf("\\%c", *p);
			else if ((unsigned char)*p < 0x20)
				printf("\\u%04x", (unsigned char)*p);
			else
				putchar(*p);
		printf("\",\n  \"records\": [");
	} else {
		printf("%10s %10s %14s %14s %14s %14s\n", "round", "device", "budget", "allocation",
		       "price", "charge");
	}
}

static int on_record(void *ctx, const struct dds_ledger_rec *r)
{
	struct bill *b = ctx;
	struct total *t;

	if (b->one && r->device != b->device)
		return 0;
	t = total_of(b, r->device);
	if (!t)
		return ENOMEM;
	print_head(b);
	t->rounds++;
	t->charge += r->charge;
	b->sum += r->charge;
	if (b->json) {
		printf("%s\n    {\"round\": %" PRIu64 ", \"device\": %" PRIu32 ", \"budget\": ",
		       b->shown ? "," : "", r->round, r->device);
		json_num(r->budget);
		printf(", \"allocation\": ");
		json_num(r->allocation);
		printf(", \"price\": ");
		json_num(r->price);
		printf(", \"charge\": ");
		json_num(r->charge);
		printf("}");
	} else {
		printf("%10" PRIu64 " %10" PRIu32 " %14.6g %14.6g %14.6g %14.6g\n", r->round,
		       r->device, r->budget, r->allocation, r->price, r->charge);
	}
	b->shown++;
	return 0;
}

static void print_tail(struct bill *b, const struct dds_ledger_scan *sc)
{
	print_head(b);
	if (b->json) {
		printf("\n  ],\n  \"totals\": [");
		for (size_t i = 0; i < b->n; i++) {
			printf("%s\n    {\"device\": %" PRIu32 ", \"rounds\": %" PRIu64
			       ", \"charge\": ", i ? "," : "", b->t[i].device, b->t[i].rounds);
			json_num(b->t[i].charge);
			printf("}");
		}
		printf("\n  ],\n  \"total_charge\": ");
		json_num(b->sum);
		printf(",\n  \"torn_bytes\": %" PRIu64 ",\n  \"corrupt\": %s\n}\n", sc->torn_bytes,
		       sc->corrupt ? "true" : "false");
		return;
	}
	printf("\n%10s %10s %14s\n", "device", "rounds", "total charge");
	for (size_t i = 0; i < b->n; i++)
		printf("%10" PRIu32 " %10" PRIu64 " %14.6g\n", b->t[i].device, b->t[i].rounds,
		       b->t[i].charge);
	printf("total charge: %.10g over %" PRIu64 " records\n", b->sum, b->shown);
}

static int parse_args(int argc, char **argv, struct bill *b, const char **path)
{
	*path = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			b->json = true;
		} else if (!strcmp(argv[i], "--device") && i + 1 < argc) {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(argv[++i], &end, 0);
			if (errno || *end || end == argv[i] || argv[i][0] == '-' || v > UINT32_MAX) {
				fprintf(stderr, "dds-bill: --device: '%s' is not a device id "
						"(0 .. 4294967295)\n", argv[i]);
				return -1;
			}
			b->one = true;
			b->device = (uint32_t)v;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			exit(0);
		} else if (argv[i][0] == '-' || *path) {
			fprintf(stderr, "dds-bill: unexpected argument '%s'\n", argv[i]);
			return -1;
		} else {
			*path = argv[i];
		}
	}
	if (!*path)
		fprintf(stderr, "dds-bill: no ledger file given\n");
	return *path ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct bill b = { 0 };
	struct dds_ledger_scan sc;
	struct dds_ledger_err err = { { 0 } };
	const char *path;
	int r;

	if (parse_args(argc, argv, &b, &path) < 0) {
		usage(stderr);
		return 1;
	}
	b.path = path;
	r = dds_ledger_read(path, on_record, &b, &sc, &err);
	if (r != 0) {
		fflush(stdout);
		fprintf(stderr, "dds-bill: %s\n", r < 0 ? err.msg : strerror(r));
		free(b.t);
		return 2;
	}
	print_tail(&b, &sc);
	free(b.t);
	if (sc.torn_bytes)
		fprintf(stderr,
			"dds-bill: warning: %s: the last %" PRIu64 " bytes are an incomplete "
			"record (a torn write, %s); ignored\n", path, sc.torn_bytes, sc.why);
	if (sc.corrupt) {
		fprintf(stderr,
			"dds-bill: %s: corrupt record at byte %" PRIu64 " (%s); the bill covers "
			"only the %" PRIu64 " records before it, %" PRIu64 " bytes after it were "
			"not read\n", path, sc.corrupt_offset, sc.why, sc.records,
			sc.file_bytes - sc.corrupt_offset);
		return 3;
	}
	return 0;
}
