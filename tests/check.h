/* The CHECK macro of the plain C tests: counts passes, prints each failure with its place, and
 * each test ends with CHECK_SUMMARY() ("N passed, M failed", exit status 1 on any failure). */
#ifndef VX_TEST_CHECK_H
#define VX_TEST_CHECK_H
#include <stdio.h>

static int passed, failed;
#define CHECK(cond, ...)                              \
  do {                                                \
    if (cond) passed++;                               \
    else {                                            \
      failed++;                                       \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);     \
      printf(__VA_ARGS__);                            \
      printf("\n");                                   \
    }                                                 \
  } while (0)
#define CHECK_SUMMARY() (printf("%d passed, %d failed\n", passed, failed), failed ? 1 : 0)
#endif
