/* ledger.c: the charge ledger: append-only checksummed records, fsync per round, recovery. */
#include "pricing_int.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct dds_ledger {
	int fd;         /* O_APPEND, flock'd exclusively */
	char *path;     /* for messages */
	uint64_t bytes; /* bytes of complete records in the file */
	uint64_t records;
	bool failed;    /* a write or fsync failed: refuse more */
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static void putf64(uint8_t *p, double d)
{
	uint64_t v;

	memcpy(&v, &d, sizeof(v));
	put64(p, v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

static double getf64(const uint8_t *p)
{
	uint64_t v = get64(p);
	double d;

	memcpy(&d, &v, sizeof(d));
	return d;
}

void dds_ledger_encode(const struct dds_ledger_rec *rec, uint8_t out[DDS_LEDGER_REC_SIZE])
{
	memset(out, 0, DDS_LEDGER_REC_SIZE);
	put32(out + DDS_LREC_OFF_MAGIC, DDS_LEDGER_MAGIC);
	put16(out + DDS_LREC_OFF_VERSION, DDS_LEDGER_VERSION);
	put16(out + DDS_LREC_OFF_LENGTH, DDS_LEDGER_REC_SIZE);
	put32(out + DDS_LREC_OFF_DEVICE, rec->device);
	put64(out + DDS_LREC_OFF_ROUND, rec->round);
	putf64(out + DDS_LREC_OFF_BUDGET, rec->budget);
	putf64(out + DDS_LREC_OFF_ALLOC, rec->allocation);
	putf64(out + DDS_LREC_OFF_CHARGE, rec->charge);
	putf64(out + DDS_LREC_OFF_PRICE, rec->price);
	put32(out + DDS_LREC_OFF_CRC, dds_crc32c(0, out, DDS_LREC_OFF_CRC));
}

const char *dds_ledger_decode(const uint8_t in[DDS_LEDGER_REC_SIZE], struct dds_ledger_rec *rec)
{
	if (get32(in + DDS_LREC_OFF_MAGIC) != DDS_LEDGER_MAGIC)
		return "bad magic";
	if (get32(in + DDS_LREC_OFF_CRC) != dds_crc32c(0, in, DDS_LREC_OFF_CRC))
		return "bad checksum";
	if (get16(in + DDS_LREC_OFF_VERSION) != DDS_LEDGER_VERSION)
		return "unknown version";
	if (get16(in + DDS_LREC_OFF_LENGTH) != DDS_LEDGER_REC_SIZE)
		return "bad record length";
	rec->device = get32(in + DDS_LREC_OFF_DEVICE);
	rec->round = get64(in + DDS_LREC_OFF_ROUND);
	rec->budget = getf64(in + DDS_LREC_OFF_BUDGET);
	rec->allocation = getf64(in + DDS_LREC_OFF_ALLOC);
	rec->charge = getf64(in + DDS_LREC_OFF_CHARGE);
	rec->price = getf64(in + DDS_LREC_OFF_PRICE);
	return NULL;
}

/* Read len bytes at off, fewer only at end of file. Returns the count, or -1 (errno). */
static ssize_t pread_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(fd, buf + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* The first invalid record is at off: a torn write if nothing follows it, else corruption. */
static void scan_stop(struct dds_ledger_scan *sc, uint64_t off, const char *why)
{
	sc->valid_bytes = off;
	if (sc->file_bytes - off <= DDS_LEDGER_REC_SIZE) {
		sc->torn_bytes = sc->file_bytes - off;
	} else {
		sc->corrupt = true;
		sc->corrupt_offset = off;
	}
	dds_pricing_fmt(sc->why, sizeof(sc->why), "%s", why);
}

/* Scan fd from the start, calling fn (may be NULL) on each valid record. Returns 0 when the
 * valid prefix was scanned, fn's non-zero value if it stopped the scan, or -1 with err. */
static int scan_fd(int fd, const char *path, int (*fn)(void *, const struct dds_ledger_rec *),
		   void *ctx, struct dds_ledger_scan *sc, struct dds_ledger_err *err)
{
	uint8_t buf[DDS_LEDGER_REC_SIZE * 256];
	struct dds_ledger_rec rec;
	struct stat st;
	uint64_t off = 0;

	memset(sc, 0, sizeof(*sc));
	if (fstat(fd, &st) < 0) {
		dds_pricing_fmt(err->msg, sizeof(err->msg), "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		dds_pricing_fmt(err->msg, sizeof(err->msg), "%s: not a regular file", path);
		return -1;
	}
	sc->file_bytes = (uint64_t)st.st_size;
	while (off < sc->file_bytes) {
		uint64_t left = sc->file_bytes - off;
		ssize_t got = pread_full(fd, buf, left < sizeof(buf) ? left : sizeof(buf), off);
		size_t i;

		if (got < 0) {
			dds_pricing_fmt(err->msg, sizeof(err->msg), "%s: read at byte %llu: %s",
					path, (unsigned long long)off, strerror(errno));
			return -1;
		}
		if (got == 0)
			sc->file_bytes = off; /* shrank under us */
		for (i = 0; i + DDS_LEDGER_REC_SIZE <= (size_t)got; i += DDS_LEDGER_REC_SIZE) {
			const char *why = dds_ledger_decode(buf + i, &rec);
			int r;

			if (why) {
				scan_stop(sc, off + i, why);
				return 0;
			}
			sc->records++;
			sc->valid_bytes = off + i + DDS_LEDGER_REC_SIZE;
			if (fn && (r = fn(ctx, &rec)) != 0)
				return r;
		}
		if (i < (size_t)got) { /* a partial record: only at the end of the file */
			scan_stop(sc, off + i, "incomplete record");
			return 0;
		}
		off += (uint64_t)got;
	}
	return 0;
}

int dds_ledger_read(const char *path, int (*fn)(void *ctx, const struct dds_ledger_rec *rec),
		    void *ctx, struct dds_ledger_scan *scan, struct dds_ledger_err *err)
{
	struct dds_ledger_scan local;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0) {
		dds_pricing_fmt(err->msg, sizeof(err->msg), "cannot open %s: %s", path,
				strerror(errno));
		return -1;
	}
	r = scan_fd(fd, path, fn, ctx, scan ? scan : &local, err);
	close(fd);
	return r;
}

/* fsync the directory holding path, so that a newly created file survives a crash. */
static int sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd, r = -1;

	if (!copy)
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		r = fsync(fd);
		close(fd);
	}
	free(copy);
	return r;
}

/* Cut the file to the valid prefix found by the scan and make that durable. */
static int recover(struct dds_ledger *l, const struct dds_ledger_scan *sc,
		   struct dds_ledger_err *err)
{
	if (sc->valid_bytes == sc->file_bytes)
		return 0;
	if (ftruncate(l->fd, (off_t)sc->valid_bytes) < 0 || fsync(l->fd) < 0) {
		dds_pricing_fmt(err->msg, sizeof(err->msg), "%s: cutting off %llu bad bytes: %s",
				l->path, (unsigned long long)(sc->file_bytes - sc->valid_bytes),
				strerror(errno));
		return -1;
	}
	return 0;
}

static struct dds_ledger *ledger_fail(struct dds_ledger *l)
{
	if (l->fd >= 0)
		close(l->fd);
	free(l->path);
	free(l);
	return NULL;
}

struct dds_ledger *dds_ledger_open(const char *path, unsigned flags, struct dds_ledger_scan *scan,
				   struct dds_ledger_err *err)
{
	struct dds_ledger_scan local;
	struct dds_ledger *l = calloc(1, sizeof(*l));

	if (!scan)
		scan = &local;
	if (!l || !(l->path = strdup(path))) {
		free(l);
		dds_pricing_fmt(err->msg, sizeof(err->msg), "%s: out of memory", path);
		return NULL;
	}
	l->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (l->fd < 0) {
		dds_pricing_fmt(err->msg, sizeof(err->msg), "cannot open %s: %s", path,
				strerror(errno));
		return ledger_fail(l);
	}
	if (flock(l->fd, LOCK_EX | LOCK_NB) < 0) {
		dds_pricing_fmt(err->msg, sizeof(err->msg), "%s: %s", path,
				errno == EWOULDBLOCK ? "in use by another writer" : strerror(errno));
		return ledger_fail(l);
	}
	if (scan_fd(l->fd, path, NULL, NULL, scan, err) < 0)
		return ledger_fail(l);
	if (scan->corrupt && !(flags & DDS_LEDGER_REPAIR)) {
		dds_pricing_fmt(err->msg, sizeof(err->msg),
				"%s: corrupt record at byte %llu (%s) with %llu bytes after it; "
				"%llu good records before it (open with repair to keep only them)",
				path, (unsigned long long)scan->corrupt_offset, scan->why,
				(unsigned long long)(scan->file_bytes - scan->corrupt_offset),
				(unsigned long long)scan->records);
		return ledger_fail(l);
	}
	if (recover(l, scan, err) < 0)
		return ledger_fail(l);
	if (sync_dir(path) < 0) {
		dds_pricing_fmt(err->msg, sizeof(err->msg), "%s: fsync of its folder: %s", path,
				strerror(errno));
		return ledger_fail(l);
	}
	l->bytes = scan->valid_bytes;
	l->records = scan->records;
	return l;
}

int dds_ledger_append(struct dds_ledger *l, const struct dds_ledger_rec *rec,
		      struct dds_ledger_err *err)
{
	uint8_t buf[DDS_LEDGER_REC_SIZE];
	size_t done = 0;

	if (l->failed) {
		dds_pricing_fmt(err->msg, sizeof(err->msg),
				"%s: an earlier write failed; reopen the ledger to recover", l->path);
		return -1;
	}
	dds_ledger_encode(rec, buf);
	while (done < sizeof(buf)) {
		ssize_t n = write(l->fd, buf + done, sizeof(buf) - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			dds_pricing_fmt(err->msg, sizeof(err->msg), "%s: write: %s", l->path,
					n < 0 ? strerror(errno) : "wrote nothing");
			l->failed = true;
			if (ftruncate(l->fd, (off_t)l->bytes) < 0) {
				/* the torn record stays; the next open cuts it off */
			}
			return -1;
		}
		done += (size_t)n;
	}
	l->bytes += sizeof(buf);
	l->records++;
	return 0;
}

int dds_ledger_commit_round(struct dds_ledger *l, struct dds_ledger_err *err)
{
	if (l->failed) {
		dds_pricing_fmt(err->msg, sizeof(err->msg),
				"%s: an earlier write failed; reopen the ledger to recover", l->path);
		return -1;
	}
	if (fsync(l->fd) < 0) {
		dds_pricing_fmt(err->msg, sizeof(err->msg), "%s: fsync: %s", l->path,
				strerror(errno));
		l->failed = true; /* after a failed fsync the page cache cannot be trusted */
		return -1;
	}
	return 0;
}

int dds_ledger_write_round(struct dds_ledger *l, const struct dds_pricing_round *rd,
			   struct dds_ledger_err *err)
{
	for (uint32_t i = 0; i < rd->n_active; i++) {
		const struct dds_pricing_entry *e = &rd->entry[i];
		struct dds_ledger_rec rec = { .round = rd->round, .device = e->device,
					      .budget = e->budget, .allocation = e->allocation,
					      .charge = e->charge, .price = rd->price };

		if (dds_ledger_append(l, &rec, err) < 0)
			return -1;
	}
	return dds_ledger_commit_round(l, err);
}

uint64_t dds_ledger_records(const struct dds_ledger *l)
{
	return l->records;
}

int dds_ledger_close(struct dds_ledger *l, struct dds_ledger_err *err)
{
	int r = 0;

	if (!l)
		return 0;
	if (!l->failed)
		r = dds_ledger_commit_round(l, err);
	close(l->fd);
	free(l->path);
	free(l);
	return r;
}
