/*
 * check.h - the smallest test harness that does the job.
 *
 * A test file defines `static void test_xxx(void)` functions and lists them in
 * main() with RUN(test_xxx). CHECK* record a failure with file:line and carry
 * on, so one run shows every broken assertion; main() returns DONE(), which
 * prints "N passed, M failed" and exits non-zero on any failure.
 */
#ifndef ADVREC_TEST_CHECK_H
#define ADVREC_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_failed_asserts;
static int check_tests_passed;
static int check_tests_failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            check_failed_asserts++;                                          \
            fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                    #cond);                                                  \
        }                                                                    \
    } while (0)

#define CHECK_INT(a, b)                                                 \
    do {                                                                \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b); \
        if (check_a_ != check_b_) {                                     \
            check_failed_asserts++;                                     \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n",   \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);    \
        }                                                               \
    } while (0)

#define CHECK_STR(a, b)                                                   \
    do {                                                                  \
        const char *check_a_ = (a), *check_b_ = (b);                      \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {  \
            check_failed_asserts++;                                       \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", \
                    __FILE__, __LINE__, #a, #b,                           \
                    check_a_ ? check_a_ : "(null)",                       \
                    check_b_ ? check_b_ : "(null)");                      \
        }                                                                 \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                \
    do {                                                                     \
        double check_a_ = (double)(a), check_b_ = (double)(b);               \
        if (!(fabs(check_a_ - check_b_) <= (double)(tol))) {                 \
            check_failed_asserts++;                                          \
            fprintf(stderr, "%s:%d: |%s - %s| <= %g failed: %.9g vs %.9g\n", \
                    __FILE__, __LINE__, #a, #b, (double)(tol), check_a_,     \
                    check_b_);                                               \
        }                                                                    \
    } while (0)

#define RUN(fn)                                      \
    do {                                             \
        int check_before_ = check_failed_asserts;    \
        fn();                                        \
        if (check_failed_asserts == check_before_) { \
            check_tests_passed++;                    \
        } else {                                     \
            check_tests_failed++;                    \
            fprintf(stderr, "FAIL %s\n", #fn);       \
        }                                            \
    } while (0)

#define DONE()                                                                 \
    (printf("%d passed, %d failed\n", check_tests_passed, check_tests_failed), \
     check_tests_failed ? 1 : 0)

#endif
