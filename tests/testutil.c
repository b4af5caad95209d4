/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int test_main(const char *suite, const test_case *cases, int n) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    if (!s) return 2;
    /* JEPA_TEST_ONLY=NAME runs that case alone (a developer's loop) */
    const char *only = getenv("JEPA_TEST_ONLY");
    if (only && !*only) only = NULL;
    for (int i = 0; i < n; i++)
        if ((!only || !strcmp(only, cases[i].name)) && !CU_add_test(s, cases[i].name, cases[i].fn))
            return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned run = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (run == 0) {
        fprintf(stderr, "%s: no test ran\n", suite);
        return 1;
    }
    return failed ? 1 : 0;
}
