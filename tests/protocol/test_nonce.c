/* test_nonce.c: the MAC's nonces never repeat: across threads (each with its own base) and in a forked child. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../check_main.h"
#include "dds_proto.h"

#define THREADS 4
#define PER_THREAD 4000
#define DGRAM 64

static uint8_t nonces[THREADS * PER_THREAD][DDS_PROTO_NONCE_LEN];
static const uint8_t key[DDS_PROTO_KEY_LEN] = {1, 2, 3};

/* Signs one datagram and copies its nonce out. */
static bool sign_one(uint8_t nonce[DDS_PROTO_NONCE_LEN])
{
	uint8_t d[DGRAM] = {0};
	if (!dds_proto_mac_sign(d, sizeof d, key) || !dds_proto_mac_verify(d, sizeof d, key))
		return false;
	memcpy(nonce, d + DGRAM - DDS_PROTO_MAC_LEN, DDS_PROTO_NONCE_LEN);
	return true;
}

static void *signer(void *arg)
{
	uint8_t (*out)[DDS_PROTO_NONCE_LEN] = arg;
	for (int i = 0; i < PER_THREAD; i++)
		if (!sign_one(out[i]))
			return arg; /* failure */
	return NULL;
}

static int cmp_nonce(const void *a, const void *b)
{
	return memcmp(a, b, DDS_PROTO_NONCE_LEN);
}

/* Threads signing at once: all nonces distinct (sorted, no two neighbours equal); each thread's
 * state is freed when it exits (ASan's leak check). */
START_TEST(threads_distinct)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, signer, nonces[i * PER_THREAD]), 0);
	for (int i = 0; i < THREADS; i++) {
		void *rc;
		ck_assert_int_eq(pthread_join(t[i], &rc), 0);
		ck_assert_ptr_null(rc);
	}
	qsort(nonces, THREADS * PER_THREAD, DDS_PROTO_NONCE_LEN, cmp_nonce);
	for (int i = 1; i < THREADS * PER_THREAD; i++)
		ck_assert_msg(cmp_nonce(nonces[i - 1], nonces[i]) != 0, "nonce repeated");
}
END_TEST

/* A forked child does not continue its parent's counter: its next nonce differs from the
 * parent's next one (they would be equal without a fresh base). */
START_TEST(fork_fresh_base)
{
	uint8_t first[DDS_PROTO_NONCE_LEN], parent[DDS_PROTO_NONCE_LEN], child[DDS_PROTO_NONCE_LEN];
	int fd[2];
	ck_assert(sign_one(first));
	ck_assert_int_eq(pipe(fd), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		bool ok = sign_one(child) && write(fd[1], child, sizeof child) == (ssize_t)sizeof child;
		_exit(ok ? 0 : 1);
	}
	int status;
	ck_assert(sign_one(parent));
	ck_assert_int_eq(read(fd[0], child, sizeof child), (ssize_t)sizeof child);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fd[0]);
	close(fd[1]);
	ck_assert(memcmp(parent, child, sizeof child) != 0);
	ck_assert(memcmp(first, child, sizeof child) != 0);
}
END_TEST

int main(void)
{
	struct dds_check_case cases[] = {
		{ .name = "nonce", .timeout = 60, .tests = DDS_CHECK_TESTS(
			DDS_CHECK_TEST(threads_distinct),
			DDS_CHECK_TEST(fork_fresh_base)) },
		{ .name = NULL },
	};

	return dds_check_main("protocol_nonce", cases, CK_FORK_GETENV);
}
