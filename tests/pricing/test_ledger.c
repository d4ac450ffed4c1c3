/* test_ledger.c: the ledger survives torn writes, detects corruption, and dds-bill reads it. */
#include "../check_main.h"
#include "pricing_int.h"
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *bill_path; /* argv[1]: the dds-bill executable */
static char dir[] = "/tmp/dds-ledger-test-XXXXXX";

/* A fresh file name in the test's folder. */
static const char *tmp_path(const char *name)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	unlink(buf);
	return buf;
}

static struct dds_ledger_rec rec_of(uint64_t i)
{
	return (struct dds_ledger_rec){ .round = i, .device = (uint32_t)(i % 7), .budget = i * 0.5,
					.allocation = i * 0.25, .charge = i * 0.5 + 0.125,
					.price = 2.0 };
}

static bool rec_eq(const struct dds_ledger_rec *a, const struct dds_ledger_rec *b)
{
	return a->round == b->round && a->device == b->device && a->budget == b->budget &&
	       a->allocation == b->allocation && a->charge == b->charge && a->price == b->price;
}

/* Write records 0 .. n-1 through the ledger API. */
static void write_records(const char *path, uint64_t n)
{
	struct dds_ledger_err err;
	struct dds_ledger *l = dds_ledger_open(path, 0, NULL, &err);

	ck_assert_msg(l, "%s", err.msg);
	for (uint64_t i = 0; i < n; i++) {
		struct dds_ledger_rec r = rec_of(i);

		ck_assert_msg(dds_ledger_append(l, &r, &err) == 0, "%s", err.msg);
		if (i % 3 == 2)
			ck_assert_msg(dds_ledger_commit_round(l, &err) == 0, "%s", err.msg);
	}
	ck_assert_msg(dds_ledger_close(l, &err) == 0, "%s", err.msg);
}

/* The scan callback: records must be 0, 1, 2, ... in order. */
struct seq {
	uint64_t next;
	bool bad;
};

static int check_seq(void *ctx, const struct dds_ledger_rec *r)
{
	struct seq *s = ctx;
	struct dds_ledger_rec want = rec_of(s->next++);

	s->bad |= !rec_eq(r, &want);
	return 0;
}

/* Read path and check it holds exactly records 0 .. n-1 and nothing bad. */
static void expect_records(const char *path, uint64_t n)
{
	struct seq s = { 0 };
	struct dds_ledger_scan sc;
	struct dds_ledger_err err;

	ck_assert_msg(dds_ledger_read(path, check_seq, &s, &sc, &err) == 0, "%s", err.msg);
	ck_assert_msg(!s.bad, "records out of sequence");
	ck_assert_uint_eq(s.next, n);
	ck_assert_uint_eq(sc.records, n);
	ck_assert_uint_eq(sc.torn_bytes, 0);
	ck_assert(!sc.corrupt);
	ck_assert_uint_eq(sc.file_bytes, n * DDS_LEDGER_REC_SIZE);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(1 << 16);

	ck_assert(f && buf);
	*len = fread(buf, 1, 1 << 16, f);
	fclose(f);
	return buf;
}

static void spit(const char *path, const uint8_t *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert(f);
	ck_assert_uint_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
}

/* A bit-at-a-time CRC-32C: an independent check of the table version. */
static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int b = 0; b < 8; b++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
	}
	return ~c;
}

START_TEST(crc32c)
{
	uint8_t buf[1000];
	uint64_t seed = 7;

	ck_assert_uint_eq(dds_crc32c(0, "123456789", 9), 0xE3069283u); /* the standard check */
	for (int t = 0; t < 200; t++) {
		size_t n = (size_t)(dds_rand_unit(&seed) * sizeof(buf)), cut = n / 3;

		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)dds_rand_next(&seed);
		ck_assert_uint_eq(dds_crc32c(0, buf, n), crc_bitwise(buf, n));
		/* Incremental use gives the same answer. */
		ck_assert_uint_eq(dds_crc32c(dds_crc32c(0, buf, cut), buf + cut, n - cut),
				  crc_bitwise(buf, n));
	}
}
END_TEST

START_TEST(every_bit_flip_detected)
{
	uint8_t b[DDS_LEDGER_REC_SIZE];
	struct dds_ledger_rec r = rec_of(12345), back;

	dds_ledger_encode(&r, b);
	ck_assert_ptr_null(dds_ledger_decode(b, &back));
	ck_assert(rec_eq(&r, &back));
	for (int bit = 0; bit < 8 * (int)DDS_LEDGER_REC_SIZE; bit++) {
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ck_assert_msg(dds_ledger_decode(b, &back) != NULL, "flip of bit %d not seen", bit);
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}
END_TEST

/* Cut the file at every byte offset: recovery keeps every complete record, cuts the torn one,
 * and appending afterwards continues the sequence. */
START_TEST(truncate_every_offset)
{
	const uint64_t n = 6;
	const char *path = tmp_path("trunc.ledger");
	size_t len;
	uint8_t *full;

	write_records(path, n);
	full = slurp(path, &len);
	ck_assert_uint_eq(len, n * DDS_LEDGER_REC_SIZE);
	for (size_t cut = 0; cut <= len; cut++) {
		struct dds_ledger_scan sc;
		struct dds_ledger_err err;
		struct dds_ledger *l;
		uint64_t keep = cut / DDS_LEDGER_REC_SIZE;
		struct dds_ledger_rec r = rec_of(keep);
		struct stat st;

		spit(path, full, cut);
		l = dds_ledger_open(path, 0, &sc, &err);
		ck_assert_msg(l, "cut %zu: %s", cut, err.msg);
		ck_assert_uint_eq(sc.records, keep);
		ck_assert_uint_eq(sc.torn_bytes, cut % DDS_LEDGER_REC_SIZE);
		ck_assert(!sc.corrupt);
		ck_assert_uint_eq(stat(path, &st), 0);
		ck_assert_uint_eq((uint64_t)st.st_size, keep * DDS_LEDGER_REC_SIZE);
		ck_assert_uint_eq(dds_ledger_records(l), keep);
		ck_assert(dds_ledger_append(l, &r, &err) == 0);
		ck_assert(dds_ledger_close(l, &err) == 0);
		expect_records(path, keep + 1);
	}
	free(full);
}
END_TEST

/* A damaged byte in a middle record: the scan stops there and says so; a plain open refuses
 * and changes nothing; a repairing open keeps the prefix. Damage in the last record reads as
 * a torn write. */
START_TEST(corrupt_middle)
{
	const uint64_t n = 5, bad = 2;
	const char *path = tmp_path("corrupt.ledger");
	size_t len, len2;
	uint8_t *full, *now;

	write_records(path, n);
	full = slurp(path, &len);
	for (int byte = 0; byte < (int)DDS_LEDGER_REC_SIZE; byte++) {
		struct dds_ledger_scan sc;
		struct dds_ledger_err err;
		struct dds_ledger *l;
		struct seq s = { 0 };

		full[bad * DDS_LEDGER_REC_SIZE + byte] ^= 0x40;
		spit(path, full, len);
		ck_assert_int_eq(dds_ledger_read(path, check_seq, &s, &sc, &err), 0);
		ck_assert(sc.corrupt && !s.bad);
		ck_assert_uint_eq(s.next, bad);
		ck_assert_uint_eq(sc.records, bad);
		ck_assert_uint_eq(sc.corrupt_offset, bad * DDS_LEDGER_REC_SIZE);
		ck_assert(sc.why[0]);
		ck_assert_ptr_null(dds_ledger_open(path, 0, &sc, &err));
		ck_assert_msg(strstr(err.msg, "corrupt record at byte 128"), "%s", err.msg);
		now = slurp(path, &len2);
		ck_assert(len2 == len && memcmp(now, full, len) == 0);
		free(now);
		l = dds_ledger_open(path, DDS_LEDGER_REPAIR, &sc, &err);
		ck_assert_msg(l, "%s", err.msg);
		ck_assert(sc.corrupt);
		ck_assert_uint_eq(dds_ledger_records(l), bad);
		dds_ledger_close(l, &err);
		expect_records(path, bad);
		full[bad * DDS_LEDGER_REC_SIZE + byte] ^= 0x40;
	}
	/* The last record damaged: indistinguishable from a torn write, so it is cut. */
	full[len - 10] ^= 1;
	spit(path, full, len);
	{
		struct dds_ledger_scan sc;
		struct dds_ledger_err err;
		struct dds_ledger *l = dds_ledger_open(path, 0, &sc, &err);

		ck_assert_msg(l, "%s", err.msg);
		ck_assert(!sc.corrupt);
		ck_assert_uint_eq(sc.torn_bytes, DDS_LEDGER_REC_SIZE);
		dds_ledger_close(l, &err);
		expect_records(path, n - 1);
	}
	free(full);
}
END_TEST

START_TEST(bad_files)
{
	struct dds_ledger_err err;
	struct dds_ledger_scan sc;
	struct dds_ledger *a, *b;
	const char *path;

	ck_assert_int_eq(dds_ledger_read(tmp_path("missing"), NULL, NULL, &sc, &err), -1);
	ck_assert_msg(strstr(err.msg, "cannot open") && strstr(err.msg, strerror(ENOENT)), "%s",
		      err.msg);
	ck_assert_int_eq(dds_ledger_read(dir, NULL, NULL, &sc, &err), -1);
	ck_assert_msg(strstr(err.msg, "not a regular file"), "%s", err.msg);
	ck_assert_ptr_null(dds_ledger_open("/nonexistent-dir/x.ledger", 0, NULL, &err));
	ck_assert_msg(strstr(err.msg, "cannot open"), "%s", err.msg);
	/* Two writers: the second is refused. */
	path = tmp_path("two.ledger");
	a = dds_ledger_open(path, 0, NULL, &err);
	ck_assert(a);
	b = dds_ledger_open(path, 0, NULL, &err);
	ck_assert_ptr_null(b);
	ck_assert_msg(strstr(err.msg, "in use by another writer"), "%s", err.msg);
	ck_assert_int_eq(dds_ledger_close(a, &err), 0);
	ck_assert_int_eq(dds_ledger_close(NULL, &err), 0);
}
END_TEST

/* The child: append records 0, 1, 2, ... forever, committing every 4. With torn_writes, it
 * writes each record in random pieces with raw write() calls, as a crash in the middle of a
 * record (or a short write) would leave it. */
static void __attribute__((noreturn))
child_writer(const char *path, bool torn_writes, uint64_t seed)
{
	struct dds_ledger_err err;
	struct dds_ledger *l = torn_writes ? NULL : dds_ledger_open(path, 0, NULL, &err);
	int fd = torn_writes ? open(path, O_WRONLY | O_CREAT | O_APPEND, 0644) : -1;

	if (!l && fd < 0)
		_exit(2);
	for (uint64_t i = 0;; i++) {
		struct dds_ledger_rec r = rec_of(i);
		uint8_t b[DDS_LEDGER_REC_SIZE];
		size_t done = 0;

		if (l && (dds_ledger_append(l, &r, &err) < 0 ||
			  (i % 4 == 3 && dds_ledger_commit_round(l, &err) < 0)))
			_exit(3);
		if (l)
			continue;
		dds_ledger_encode(&r, b);
		while (done < sizeof(b)) {
			size_t piece = 1 + (size_t)(dds_rand_unit(&seed) * (double)(sizeof(b) - done));

			if (write(fd, b + done, piece) != (ssize_t)piece)
				_exit(4);
			done += piece;
		}
	}
}

static void kill_and_recover(bool torn_writes, int run)
{
	const char *path = tmp_path(torn_writes ? "kill-torn.ledger" : "kill.ledger");
	uint64_t seed = 99 + (uint64_t)run;
	struct dds_ledger_scan sc;
	struct dds_ledger_err err;
	struct dds_ledger *l;
	struct dds_ledger_rec r;
	struct stat st = { 0 };
	int status;
	pid_t pid = fork();

	ck_assert(pid >= 0);
	if (pid == 0)
		child_writer(path, torn_writes, seed);
	while (stat(path, &st) != 0 || st.st_size < 1000)
		usleep(1000); /* let it write a little first */
	usleep((useconds_t)(dds_rand_unit(&seed) * 30000));
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	stat(path, &st);
	l = dds_ledger_open(path, 0, &sc, &err);
	ck_assert_msg(l, "%s", err.msg);
	ck_assert(!sc.corrupt);
	ck_assert_uint_eq(sc.records, (uint64_t)st.st_size / DDS_LEDGER_REC_SIZE);
	ck_assert_uint_eq(sc.torn_bytes, (uint64_t)st.st_size % DDS_LEDGER_REC_SIZE);
	r = rec_of(sc.records);
	ck_assert(dds_ledger_append(l, &r, &err) == 0);
	ck_assert(dds_ledger_close(l, &err) == 0);
	expect_records(path, sc.records + 1);
}

START_TEST(sigkill_writer)
{
	kill_and_recover(false, _i);
}
END_TEST

START_TEST(sigkill_torn_writer)
{
	kill_and_recover(true, _i);
}
END_TEST

/* Run dds-bill with args; return its exit status and its stdout in out. */
static int run_bill(const char *args, char *out, size_t cap)
{
	char cmd[1024];
	FILE *p;
	size_t n;
	int st;

	snprintf(cmd, sizeof(cmd), "%s %s 2>%s/bill.err", bill_path, args, dir);
	p = popen(cmd, "r");
	ck_assert(p);
	n = fread(out, 1, cap - 1, p);
	out[n] = 0;
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool bill_stderr_has(const char *what)
{
	char path[300], buf[2048] = { 0 };
	FILE *f;

	snprintf(path, sizeof(path), "%s/bill.err", dir);
	f = fopen(path, "r");
	ck_assert(f);
	ck_assert(fread(buf, 1, sizeof(buf) - 1, f) < sizeof(buf));
	fclose(f);
	return strstr(buf, what) != NULL;
}

START_TEST(bill_tool)
{
	const char *path = tmp_path("bill.ledger");
	char out[1 << 16], args[512];
	double want = 0, got;
	const char *line;
	size_t len;
	uint8_t *full;

	write_records(path, 40); /* device 3 has records 3, 10, 17, 24, 31, 38 */
	for (uint64_t i = 3; i < 40; i += 7)
		want += rec_of(i).charge;
	snprintf(args, sizeof(args), "%s --device 3", path);
	ck_assert_int_eq(run_bill(args, out, sizeof(out)), 0);
	line = strstr(out, "total charge: ");
	ck_assert_msg(line && sscanf(line, "total charge: %lf", &got) == 1, "%s", out);
	ck_assert_msg(fabs(got - want) <= 1e-9 * want, "bill %g, want %g", got, want);
	ck_assert(strstr(out, "over 6 records"));

	/* JSON: parsed by Python's json module, an independent reader. */
	if (access("/usr/bin/python3", X_OK) == 0) {
		snprintf(args, sizeof(args),
			 "%s --json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); "
			 "print(len(d[\"records\"]), d[\"total_charge\"], len(d[\"totals\"]))'", path);
		ck_assert_int_eq(run_bill(args, out, sizeof(out)), 0);
		want = 0;
		for (uint64_t i = 0; i < 40; i++)
			want += rec_of(i).charge;
		ck_assert_msg(sscanf(out, "40 %lf 7", &got) == 1, "%s", out);
		ck_assert(fabs(got - want) <= 1e-12 * want);
	}

	/* Errors: usage, missing file, torn tail (a warning), corruption (status 3). */
	ck_assert_int_eq(run_bill("", out, sizeof(out)), 1);
	ck_assert_int_eq(run_bill("--device -1 x", out, sizeof(out)), 1);
	ck_assert(bill_stderr_has("not a device id"));
	snprintf(args, sizeof(args), "%s/none.ledger", dir);
	ck_assert_int_eq(run_bill(args, out, sizeof(out)), 2);
	ck_assert(bill_stderr_has("cannot open") && out[0] == 0);
	full = slurp(path, &len);
	spit(path, full, len - 5);
	ck_assert_int_eq(run_bill(path, out, sizeof(out)), 0);
	ck_assert(bill_stderr_has("torn write") && strstr(out, "over 39 records"));
	full[100] ^= 1;
	spit(path, full, len);
	ck_assert_int_eq(run_bill(path, out, sizeof(out)), 3);
	ck_assert(bill_stderr_has("corrupt record at byte 64") && strstr(out, "over 1 records"));
	free(full);
}
END_TEST

int main(int argc, char **argv)
{
	struct dds_check_case cases[] = {
		{ .name = "ledger", .timeout = 120, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(crc32c),
			DDS_CHECK_TEST(every_bit_flip_detected),
			DDS_CHECK_TEST(truncate_every_offset),
			DDS_CHECK_TEST(corrupt_middle),
			DDS_CHECK_TEST(bad_files),
			DDS_CHECK_LOOP(sigkill_writer, 0, 4),
			DDS_CHECK_LOOP(sigkill_torn_writer, 0, 4),
			DDS_CHECK_TEST(bill_tool)) },
		{ .name = NULL },
	};
	int failed;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-TO-dds-bill\n", argv[0]);
		return 2;
	}
	bill_path = argv[1];
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 2;
	}
	failed = dds_check_run(dds_check_suite("pricing-ledger", cases), CK_FORK_GETENV);
	if (!failed) {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return failed ? 1 : 0;
}
