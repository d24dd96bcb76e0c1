/*
 * suites.h - the one list of test suites, in the order they run.
 *
 * Each line names a suite `x`, made by Suite *fut_test_x_suite(void) in
 * test_x.c.  Includers define FUT_TEST_SUITE(name) to what they need
 * (test_util.h a prototype, runner.c an entry of its table) and include
 * this file; it has no include guard on purpose, so that it can be
 * expanded more than once.  test/CMakeLists.txt reads the same lines (one
 * FUT_TEST_SUITE(x) at the start of a line each) for the CTest entries.
 * Add a suite here and nowhere else.
 */
FUT_TEST_SUITE(future)
FUT_TEST_SUITE(promise)
FUT_TEST_SUITE(pool)
FUT_TEST_SUITE(cancel)
FUT_TEST_SUITE(progress)
FUT_TEST_SUITE(alloc)
FUT_TEST_SUITE(fork)
FUT_TEST_SUITE(race)
FUT_TEST_SUITE(chain)
FUT_TEST_SUITE(combinators)
FUT_TEST_SUITE(wait)
FUT_TEST_SUITE(iter)
FUT_TEST_SUITE(map)
FUT_TEST_SUITE(timer)
FUT_TEST_SUITE(loop)
FUT_TEST_SUITE(unhandled)
FUT_TEST_SUITE(reliability)
FUT_TEST_SUITE(sweep)
FUT_TEST_SUITE(blocking)
FUT_TEST_SUITE(group)
FUT_TEST_SUITE(fiber)
FUT_TEST_SUITE(edges)
FUT_TEST_SUITE(fork_edges)
FUT_TEST_SUITE(model)
