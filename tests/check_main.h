/* check_main.h: the suite/runner part of every Check test's main(), written once.
 *
 * A test's main() lists its test cases in a table and hands it to dds_check_main():
 *
 *	struct dds_check_case cases[] = {
 *		{ .name = "core", .timeout = 120, .tests = DDS_CHECK_TESTS(
 *			DDS_CHECK_TEST(parses_the_header),
 *			DDS_CHECK_LOOP(every_truncation, 0, 64)) },
 *		{ .name = NULL },
 *	};
 *	return dds_check_main("protocol", cases, CK_FORK_GETENV);
 *
 * The tables must live inside a function (START_TEST's handles are not constant expressions);
 * Check keeps only the names (string literals) and the static tests they point to, so the
 * tables may go once the suite is built. Tests that need work around the run (a usage check
 * first, a report or cleanup after) call dds_check_suite() and dds_check_run() themselves.
 */
#ifndef DDS_CHECK_MAIN_H
#define DDS_CHECK_MAIN_H

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* One test of a case, run once for each _i in [start, end) (a plain test: [0, 1)). */
struct dds_check_test {
	const TTest *fn;
	int start, end;
};
#define DDS_CHECK_TEST(fn) { (fn), 0, 1 }
#define DDS_CHECK_LOOP(fn, start, end) { (fn), (start), (end) }
#define DDS_CHECK_END { NULL, 0, 0 }
/* A case's tests: DDS_CHECK_TESTS(DDS_CHECK_TEST(a), DDS_CHECK_LOOP(b, 0, 4), ...). */
#define DDS_CHECK_TESTS(...) \
	((const struct dds_check_test[]){ __VA_ARGS__, DDS_CHECK_END })

/* A test case: its name; its timeout in seconds per test (0: Check's default, 4 s or
 * CK_DEFAULT_TIMEOUT); an optional unchecked fixture (setup before the case's first test,
 * teardown after its last, in the runner's process); its tests (DDS_CHECK_TESTS, or an array
 * ended by DDS_CHECK_END). A table of cases ends with one whose name is NULL. */
struct dds_check_case {
	const char *name;
	double timeout;
	SFun setup, teardown;
	const struct dds_check_test *tests;
};

/* The suite `name` made of the cases, in their order. Check aborts the process if out of memory. */
static inline Suite *dds_check_suite(const char *name, const struct dds_check_case *cases)
{
	Suite *s = suite_create(name);

	for (const struct dds_check_case *c = cases; c->name; c++) {
		TCase *tc = tcase_create(c->name);

		if (c->timeout > 0)
			tcase_set_timeout(tc, c->timeout);
		if (c->setup || c->teardown)
			tcase_add_unchecked_fixture(tc, c->setup, c->teardown);
		for (const struct dds_check_test *t = c->tests; t->fn; t++)
			tcase_add_loop_test(tc, t->fn, t->start, t->end);
		suite_add_tcase(s, tc);
	}
	return s;
}

/* Run the suite (taking it over) with Check's normal report; fork: CK_FORK_GETENV (a process per
 * test unless the environment says CK_FORK=no, as cross builds under qemu do) or CK_NOFORK
 * (every test in this process, e.g. to add up figures across tests). Returns the number of
 * tests that failed. */
static inline int dds_check_run(Suite *s, enum fork_status fork)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_set_fork_status(sr, fork);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}

/* Build, run, and give main()'s exit status: EXIT_SUCCESS when every test passed. */
static inline int dds_check_main(const char *name, const struct dds_check_case *cases,
				 enum fork_status fork)
{
	return dds_check_run(dds_check_suite(name, cases), fork) ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Whether the test program's first argument is `word` (e.g. "zoo": only the slow tests). */
static inline bool dds_check_arg_is(int argc, char **argv, const char *word)
{
	return argc > 1 && strcmp(argv[1], word) == 0;
}

/* The fork mode for tests whose meson.build passes "emulated" in cross builds (run by qemu-user,
 * where Check's fork per test hangs): CK_NOFORK there, else as the environment says. */
static inline enum fork_status dds_check_fork_mode(int argc, char **argv)
{
	return dds_check_arg_is(argc, argv, "emulated") ? CK_NOFORK : CK_FORK_GETENV;
}

#endif
