/* LD_PRELOAD shim for tools/mutate/mutate.py: runs only some of a cmocka binary's tests, chosen by name,
 * without touching the tests. MUTATE_TESTS="name1,name2" keeps those (in the binary's order);
 * unset or empty, every test runs. Wraps _cmocka_run_group_tests (cmocka 1.1). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

typedef int (*run_fn)(const char *, const struct CMUnitTest *, size_t, CMFixtureFunction, CMFixtureFunction);

static int listed(const char *list, const char *name) {
    const size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        const size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0) return 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}

int _cmocka_run_group_tests(const char *group_name, const struct CMUnitTest *const tests, const size_t num_tests,
                            CMFixtureFunction group_setup, CMFixtureFunction group_teardown) {
    run_fn next = (run_fn)dlsym(RTLD_NEXT, "_cmocka_run_group_tests");
    const char *only = getenv("MUTATE_TESTS");
    if (!next) return 1;
    if (!only || !*only) return next(group_name, tests, num_tests, group_setup, group_teardown);
    struct CMUnitTest *kept = calloc(num_tests ? num_tests : 1, sizeof *kept);
    size_t n = 0;
    if (!kept) return 1;
    for (size_t i = 0; i < num_tests; i++)
        if (listed(only, tests[i].name)) kept[n++] = tests[i];
    const int rc = n ? next(group_name, kept, n, group_setup, group_teardown) : 1; /* none matched: a typo */
    free(kept);
    return rc;
}
