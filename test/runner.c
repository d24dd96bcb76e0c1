/*
 * runner.c - the one test program: fut_tests [SUITE] [--include TAGS] [--exclude TAGS]
 *
 * Runs every suite (or the one named) through Check's tagged runner, so a
 * quick run is `fut_tests --exclude "stress slow"`.  Check's own
 * environment variables still apply (CK_FORK=no for valgrind,
 * CK_TIMEOUT_MULTIPLIER for slow tools, CK_RUN_CASE, CK_VERBOSITY).
 * Randomized cases take their seed from FUT_TEST_SEED.
 */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ThreadSanitizer by default kills a child that starts threads after a
 * multi-threaded fork(); the fork suite does exactly that on purpose. */
#if defined(__SANITIZE_THREAD__)
#define FUT_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FUT_TEST_TSAN 1
#endif
#endif
#ifdef FUT_TEST_TSAN
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) {
    return "die_after_fork=0";
}
#endif

/* Every suite, in the order they run.  Add a suite here and nowhere else. */
static const struct {
    const char *name;
    Suite *(*make)(void);
} suites[] = {
    {.name = "future", .make = fut_test_future_suite},
    {.name = "promise", .make = fut_test_promise_suite},
    {.name = "pool", .make = fut_test_pool_suite},
    {.name = "cancel", .make = fut_test_cancel_suite},
    {.name = "progress", .make = fut_test_progress_suite},
    {.name = "alloc", .make = fut_test_alloc_suite},
    {.name = "fork", .make = fut_test_fork_suite},
    {.name = "race", .make = fut_test_race_suite},
    {.name = "chain", .make = fut_test_chain_suite},
    {.name = "combinators", .make = fut_test_combinators_suite},
    {.name = "wait", .make = fut_test_wait_suite},
    {.name = "timer", .make = fut_test_timer_suite},
    {.name = "loop", .make = fut_test_loop_suite},
    {.name = "unhandled", .make = fut_test_unhandled_suite},
    {.name = "model", .make = fut_test_model_suite},
};

#define NSUITES (sizeof suites / sizeof suites[0])

/* Check splits tags at spaces; accept commas too ("stress,slow"). */
static char *tag_list(const char *arg) {
    char *s = strdup(arg);
    if (s == NULL) {
        perror("strdup");
        exit(2);
    }
    for (char *c = s; *c; c++)
        if (*c == ',')
            *c = ' ';
    return s;
}

static void usage(FILE *out, const char *argv0) {
    fprintf(out, "usage: %s [SUITE] [--include TAGS] [--exclude TAGS]\n", argv0);
    fprintf(out, "  TAGS: Check tags separated by spaces or commas, e.g. \"stress,slow\"\n");
    fprintf(out, "  suites:");
    for (size_t i = 0; i < NSUITES; i++)
        fprintf(out, " %s", suites[i].name);
    fprintf(out, "\n  env: FUT_TEST_SEED=N replays a randomized case; CK_FORK=no; "
                 "CK_TIMEOUT_MULTIPLIER=N\n");
}

int main(int argc, char **argv) {
    const char *suite = NULL;
    char *include = NULL, *exclude = NULL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--include") == 0 && i + 1 < argc) {
            free(include);
            include = tag_list(argv[++i]);
        } else if (strcmp(argv[i], "--exclude") == 0 && i + 1 < argc) {
            free(exclude);
            exclude = tag_list(argv[++i]);
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else if (argv[i][0] != '-' && suite == NULL) {
            suite = argv[i];
        } else {
            usage(stderr, argv[0]);
            return 2;
        }
    }

    if (suite != NULL) {
        bool known = false;
        for (size_t i = 0; i < NSUITES; i++)
            known = known || strcmp(suite, suites[i].name) == 0;
        if (!known) {
            fprintf(stderr, "%s: no suite named \"%s\"\n", argv[0], suite);
            usage(stderr, argv[0]);
            return 2;
        }
    }

    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; i < NSUITES; i++)
        srunner_add_suite(sr, suites[i].make());

    srunner_run_tagged(sr, suite, NULL, include, exclude, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(include);
    free(exclude);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
