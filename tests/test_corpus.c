/* test_corpus.c — replays the committed fuzz corpora (fuzz/corpus/<target>/: seeds and every
 * crasher the fuzzers ever found) through the matching buffer parser, or, for the structure-aware
 * targets (whose inputs are programs for a generator), through the targets themselves. Each file
 * must come back LATUP_OK or LATUP_E_INPUT, without crashing; under `make test SANITIZE=1` this
 * also catches the memory errors and leaks the fuzzers caught once. Run from the repository root. */
#define _GNU_SOURCE /* the structure-aware targets use memfd_create */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "io/npy.h"
#include "io/png.h"
#include "io/weights.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef latup_status (*parse_fn)(const uint8_t *buf, size_t len, const char *path);

static latup_status parse_st(const uint8_t *buf, size_t len, const char *path) {
    latup_weights w;
    latup_status st = latup_safetensors_parse(buf, len, path, &w);
    if (!st) latup_weights_free(&w);
    return st;
}

static latup_status parse_npy(const uint8_t *buf, size_t len, const char *path) {
    latup_tensor t;
    latup_status st = latup_npy_parse(buf, len, path, &t);
    if (!st) latup_tensor_free(&t);
    return st;
}

static latup_status parse_png(const uint8_t *buf, size_t len, const char *path) {
    latup_tensor t;
    latup_status st = latup_png_parse(buf, len, path, &t);
    if (!st) latup_tensor_free(&t);
    return st;
}

static latup_status parse_pth(const uint8_t *buf, size_t len, const char *path) {
    latup_weights w;
    latup_status st = latup_pth_parse(buf, len, path, &w);
    if (!st) latup_weights_free(&w);
    return st;
}

/* The bytes of a file exactly (no gzip inflation: the fuzzers fed the parsers raw bytes), in a
 * buffer of exactly that size so ASan sees reads past its end. */
static uint8_t *read_exact(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *b = malloc(cap);
    for (;;) {
        if (n == cap) b = realloc(b, cap *= 2);
        assert_non_null(b);
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    uint8_t *exact = malloc(n ? n : 1);
    assert_non_null(exact);
    memcpy(exact, b, n);
    free(b);
    *len = n;
    return exact;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file of fuzz/corpus/<target>; returns how many there were. */
static int replay(const char *target, parse_fn parse, int *n_ok) {
    char dir[256];
    snprintf(dir, sizeof dir, "fuzz/corpus/%s", target);
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, sizeof *names * (size_t)cap);
            assert_non_null(names);
        }
        names[n] = strdup(e->d_name);
        assert_non_null(names[n]);
        n++;
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_names); /* a stable order for the log */
    int files = 0, bad = 0;
    *n_ok = 0;
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        size_t len = 0;
        uint8_t *buf = read_exact(path, &len);
        assert_non_null(buf);
        latup_status st = parse(buf, len, path);
        free(buf);
        files++;
        if (st == LATUP_OK) (*n_ok)++;
        if (st != LATUP_OK && st != LATUP_E_INPUT) {
            printf("    %s: status %s (%s)\n", path, latup_status_name(st), latup_last_error());
            bad++;
        }
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    printf("corpus %-17s %4d files (%d parse, %d rejected as bad input) %s\n", target, files, *n_ok,
           files - *n_ok - bad, bad ? "NOT OK" : "OK");
    fflush(stdout);
    assert_int_equal(bad, 0);
    return files;
}

static void test_required(const char *target, parse_fn parse) {
    int ok;
    int files = replay(target, parse, &ok);
    if (files <= 0) {
        print_error("fuzz/corpus/%s is %s (run from the repository root)\n", target,
                    files < 0 ? "missing" : "empty");
        fail();
    }
}

static void test_safetensors(void **state) {
    (void)state;
    test_required("fuzz_safetensors", parse_st);
}

static void test_npy(void **state) {
    (void)state;
    test_required("fuzz_npy", parse_npy);
}

static void test_png(void **state) {
    (void)state;
    test_required("fuzz_png", parse_png);
}

/* The .pth corpus is newer than the others: a missing directory counts as empty. */
static void test_pth(void **state) {
    (void)state;
    int ok;
    if (replay("fuzz_pth", parse_pth, &ok) < 0)
        printf("corpus fuzz_pth              0 files (no directory)\n");
}

/* The structure-aware targets, compiled here as they are; a wrong status aborts (a failure). */
#define LLVMFuzzerTestOneInput fuzz_models_one
#include "../fuzz/fuzz_models.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_pth_ops_one
#include "../fuzz/fuzz_pth_ops.c"
#undef LLVMFuzzerTestOneInput

static latup_status run_models(const uint8_t *buf, size_t len, const char *path) {
    (void)path;
    fuzz_models_one(buf, len);
    return LATUP_OK;
}

static latup_status run_pth_ops(const uint8_t *buf, size_t len, const char *path) {
    (void)path;
    fuzz_pth_ops_one(buf, len);
    return LATUP_OK;
}

static void test_models(void **state) {
    (void)state;
    g_plan = 0;
    test_required("fuzz_models", run_models);
    /* again with the memory planners run on every model that loads (LATUP_FUZZ_PLAN=1 in the
     * fuzzer): the corpus holds the VAE planner's null-offset reproducer */
    g_plan = 1;
    test_required("fuzz_models", run_models);
}

static void test_pth_ops(void **state) {
    (void)state;
    test_required("fuzz_pth_ops", run_pth_ops);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safetensors),
        cmocka_unit_test(test_npy),
        cmocka_unit_test(test_png),
        cmocka_unit_test(test_pth),
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_pth_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
