/* test_arena.c — the arena's contract (src/ops/arena.h): a counting pass and a real pass over
 * the same takes agree by construction; a pass that takes more than was counted is refused
 * (LATUP_E_INTERNAL naming the buffer) instead of running past the end; slots refuse writes above
 * their counted capacity; sizes that overflow are bad input; and guard floats catch an overrun of
 * one float, naming the buffer; memory operations other than the host's (the GPU's) are the ones
 * used, their failures named, and guards can be off at run time. The arena is compiled here with
 * its guards on (as in SANITIZE=1 builds), whatever the build, so the guard checks run in every
 * `make test`. */
#define LATUP_SANITIZE 1
#include "ops/arena.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* A toy "pass": a persistent buffer, then scoped scratch of two sizes, then a slot write. The
 * real pass may ask for `extra` more floats in its scratch than the counting pass did. */
static void pass(latup_arena *a, size_t n, size_t extra, float **keep) {
    *keep = latup_arena_take(a, n, "keep");
    for (size_t k = 1; k <= 3; k++) {
        size_t m = latup_arena_mark(a);
        float *s = latup_arena_take(a, k * n + (a->counting ? 0 : extra), "scratch");
        if (s)
            for (size_t i = 0; i < k * n; i++) s[i] = (float)i;
        latup_arena_release(a, m);
    }
    latup_arena_slot(a, 0, 2 * n, "slot");
}

static void test_count_then_run(void **state) {
    (void)state;
    latup_arena a;
    float *keep;
    latup_arena_begin_count(&a);
    pass(&a, 100, 0, &keep);
    assert_null(keep);
    /* peak: keep (112 + 16 guard) + the largest scratch (304 + 16); slot 0: 200 (+ guard) */
    assert_int_equal(a.peak, 128 + 320);
    assert_int_equal(latup_arena_bytes(&a), (448 + 208 + 16) * sizeof(float));
    assert_int_equal(latup_arena_begin_run(&a, "test arena"), LATUP_OK);
    pass(&a, 100, 0, &keep);
    assert_non_null(keep);
    assert_int_equal(latup_arena_check(&a), LATUP_OK);
    /* the real pass reaches exactly the counted high-water mark: the plan after it is the same */
    assert_int_equal(a.peak, 128 + 320);
    assert_int_equal(latup_arena_bytes(&a), (448 + 208 + 16) * sizeof(float));
    latup_mem_plan p;
    latup_arena_plan(&a, &p);
    assert_int_equal(p.n_takes, 3); /* slot, keep, scratch */
    assert_string_equal(p.takes[2].name, "scratch");
    assert_int_equal(p.takes[2].count, 3);
    assert_int_equal(p.takes[2].bytes, 300 * sizeof(float));
    /* a second image replays the same takes in the same memory */
    float *again;
    latup_arena_rewind(&a);
    pass(&a, 100, 0, &again);
    assert_ptr_equal(again, keep);
    assert_int_equal(a.st, LATUP_OK);
    latup_arena_free(&a);
}

/* With a slot below the stack, a large scratch then a small one: the real pass's high-water mark
 * stays the large one, as counted (the plan after a run is the plan). */
static void test_peak_with_slot(void **state) {
    (void)state;
    latup_arena a;
    for (int run = 0; run < 2; run++) {
        if (run) assert_int_equal(latup_arena_begin_run(&a, "test arena"), LATUP_OK);
        else latup_arena_begin_count(&a);
        latup_arena_slot(&a, 0, 1000, "slot");
        size_t m = latup_arena_mark(&a);
        latup_arena_take(&a, 500, "big");
        latup_arena_release(&a, m);
        latup_arena_take(&a, 10, "small");
        assert_int_equal(a.st, LATUP_OK);
        assert_int_equal(a.peak, 512 + 16); /* 500 rounded to 16, and its guard */
    }
    latup_arena_free(&a);
}

static void test_run_beyond_count(void **state) {
    (void)state;
    latup_arena a;
    float *keep;
    latup_arena_begin_count(&a);
    pass(&a, 100, 0, &keep);
    assert_int_equal(latup_arena_begin_run(&a, "test arena"), LATUP_OK);
    pass(&a, 100, 64, &keep); /* scratch 64 floats larger than counted */
    assert_int_equal(a.st, LATUP_E_INTERNAL);
    printf("take beyond the count: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "'scratch'"));
    latup_arena_free(&a);
    /* a slot write above its counted capacity */
    latup_arena_begin_count(&a);
    latup_arena_slot(&a, 1, 50, "activation buffer");
    assert_int_equal(latup_arena_begin_run(&a, "test arena"), LATUP_OK);
    assert_non_null(latup_arena_slot(&a, 1, 50, "activation buffer"));
    assert_null(latup_arena_slot(&a, 1, 51, "activation buffer"));
    assert_int_equal(a.st, LATUP_E_INTERNAL);
    printf("slot beyond the count: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "activation buffer"));
    latup_arena_free(&a);
}

static void test_overflow(void **state) {
    (void)state;
    latup_arena a;
    latup_arena_begin_count(&a);
    assert_null(latup_arena_take3(&a, SIZE_MAX / 4, 3, 2, "huge"));
    assert_int_equal(a.st, LATUP_E_INPUT);
    printf("overflow: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "'huge'"));
    /* sticky: nothing after the first failure */
    assert_null(latup_arena_take(&a, 4, "small"));
    assert_int_equal(latup_arena_begin_run(&a, "x"), LATUP_E_INPUT);
}

static void test_guards(void **state) {
    (void)state;
    latup_arena a;
    latup_arena_begin_count(&a);
    latup_arena_take(&a, 37, "first");
    latup_arena_take(&a, 5, "second");
    latup_arena_slot(&a, 0, 9, "slot");
    assert_int_equal(latup_arena_begin_run(&a, "test arena"), LATUP_OK);
    float *f = latup_arena_take(&a, 37, "first");
    float *s = latup_arena_take(&a, 5, "second");
    float *sl = latup_arena_slot(&a, 0, 9, "slot");
    for (int i = 0; i < 37; i++) f[i] = 1.0f;
    for (int i = 0; i < 5; i++) s[i] = 2.0f;
    for (int i = 0; i < 9; i++) sl[i] = 3.0f;
    assert_int_equal(latup_arena_check(&a), LATUP_OK); /* writes inside: guards intact */
    f[37] = 0.0f;                                      /* one float past "first" */
    assert_int_equal(latup_arena_check(&a), LATUP_E_INTERNAL);
    printf("guard: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "'first'"));
    latup_arena_free(&a);
    /* a slot's guard, and a scoped take's guard checked on release */
    latup_arena_begin_count(&a);
    latup_arena_slot(&a, 0, 9, "slot");
    latup_arena_take(&a, 3, "scoped");
    assert_int_equal(latup_arena_begin_run(&a, "test arena"), LATUP_OK);
    sl = latup_arena_slot(&a, 0, 9, "slot");
    sl[9] = 1.0f;
    assert_int_equal(latup_arena_check(&a), LATUP_E_INTERNAL);
    assert_non_null(strstr(latup_last_error(), "'slot'"));
    a.st = LATUP_OK;
    latup_arena_rewind(&a);
    sl[9] = 0.0f;
    memcpy(&sl[9], &GUARD_BITS, sizeof GUARD_BITS);
    float *sc = latup_arena_take(&a, 3, "scoped");
    sc[4] = 1.0f;
    latup_arena_release(&a, 0);
    assert_int_equal(a.st, LATUP_E_INTERNAL);
    printf("guard on release: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "'scoped'"));
    latup_arena_free(&a);
}

/* ---- memory operations other than the host's (the GPU's, in src/cuda/gpu_ops.c) --------------------
 * Failing operations: an allocation that fails is LATUP_E_NOMEM with the operation's message; a
 * guard that cannot be written is LATUP_E_DEVICE naming the buffer. Guards off at run time: none
 * counted, written or read. */
static int fail_fill_after = -1; /* fills allowed before one fails (-1: never fails) */
static int n_fill, n_intact;
static float *null_alloc(size_t floats, const char *what) {
    latup_fail(LATUP_E_NOMEM, "%s: no memory for %zu floats (test ops)", what, floats);
    return NULL;
}
static float *ok_alloc(size_t floats, const char *what) { return latup_alloc_floats(floats, what); }
static void ok_free(float *base) { free(base); }
static int some_fill(float *x, size_t n, uint32_t bits) {
    if (fail_fill_after == 0) return 1;
    if (fail_fill_after > 0) fail_fill_after--;
    n_fill++;
    return host_fill(x, n, bits);
}
static int count_intact(const float *x, size_t n, uint32_t bits) {
    n_intact++;
    return host_intact(x, n, bits);
}

static void test_ops(void **state) {
    (void)state;
    const latup_arena_ops nomem = {null_alloc, ok_free, some_fill, count_intact};
    const latup_arena_ops ops = {ok_alloc, ok_free, some_fill, count_intact};
    latup_arena a;
    latup_arena_begin_count_on(&a, &nomem, 1);
    latup_arena_take(&a, 10, "t");
    assert_int_equal(latup_arena_begin_run(&a, "device arena"), LATUP_E_NOMEM);
    printf("ops alloc: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "device arena: no memory"));
    latup_arena_free(&a);
    /* the slot's guard is written, the take's is not */
    latup_arena_begin_count_on(&a, &ops, 1);
    latup_arena_slot(&a, 0, 9, "slot");
    latup_arena_take(&a, 10, "take");
    fail_fill_after = 1;
    assert_int_equal(latup_arena_begin_run(&a, "device arena"), LATUP_OK);
    assert_null(latup_arena_take(&a, 10, "take"));
    assert_int_equal(a.st, LATUP_E_DEVICE);
    printf("ops fill: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "'take'"));
    fail_fill_after = -1;
    latup_arena_free(&a);
    /* guards off at run time, in this build whose host arena has them on */
    n_fill = n_intact = 0;
    latup_arena_begin_count_on(&a, &ops, 0);
    latup_arena_slot(&a, 0, 9, "slot");
    latup_arena_take(&a, 10, "take");
    assert_int_equal(latup_arena_bytes(&a), (16 + 16) * sizeof(float));
    assert_int_equal(latup_arena_begin_run(&a, "device arena"), LATUP_OK);
    float *t = latup_arena_take(&a, 10, "take");
    t[12] = 1.0f; /* inside the rounding: nobody looks */
    latup_arena_release(&a, 0);
    assert_int_equal(latup_arena_check(&a), LATUP_OK);
    assert_int_equal(n_fill + n_intact, 0);
    latup_arena_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_then_run), cmocka_unit_test(test_peak_with_slot),
        cmocka_unit_test(test_run_beyond_count),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_guards), cmocka_unit_test(test_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
