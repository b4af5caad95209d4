/* testutil.h - CUnit glue shared by the suites: run every registered suite and
 * return non-zero when any assertion failed, so CTest sees failures. */
#ifndef JEPA_TESTUTIL_H
#define JEPA_TESTUTIL_H
#include <CUnit/CUnit.h>

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

/* Registers one suite of `n` cases and runs all suites; returns the exit code. */
int test_main(const char *suite, const test_case *cases, int n);

#endif
