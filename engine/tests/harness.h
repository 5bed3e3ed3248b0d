/* harness.h — a tiny test harness: CHECK records failures and goes on;
 * each test binary ends with TEST_SUMMARY(), which prints a line and
 * returns the exit code ctest reads. */
#ifndef EMILY_TEST_HARNESS_H
#define EMILY_TEST_HARNESS_H

#include <math.h>
#include <stdio.h>

static int th_failures = 0, th_checks = 0;

#define CHECK(cond, ...)                                            \
  do {                                                              \
    th_checks++;                                                    \
    if (!(cond)) {                                                  \
      th_failures++;                                                \
      if (th_failures <= 50) {                                      \
        fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__,      \
                __LINE__, #cond);                                   \
        fprintf(stderr, __VA_ARGS__);                               \
        fputc('\n', stderr);                                        \
      }                                                             \
    }                                                               \
  } while (0)

/* |got - want| <= atol + rtol * |want|, NaN matches NaN, inf matches inf. */
static inline int th_close(double got, double want, double rtol, double atol) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  if (isnan(got) || isinf(got)) return 0;
  return fabs(got - want) <= atol + rtol * fabs(want);
}

#define TEST_SUMMARY()                                                   \
  (printf("%s: %d checks, %d failed\n", __FILE__, th_checks, th_failures), \
   th_failures ? 1 : 0)

#endif
