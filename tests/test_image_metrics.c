/* test_image_metrics.c — the resampling of `latup eval` (src/cli/image_metrics.h) against torch
 * (tools/golden/make_resample_golden.py, ref_data/resample/golden_resample.safetensors): the
 * antialiased bicubic downscale of the paper's protocol (tools/train/data.py's downscale, then
 * clamp(-1, 1)) at x2 and x4 on an odd-sized 37x29 image, and the plain bicubic upsampling x2 and
 * x4 (A = -0.75) of the eval's bicubic path. One report line per compared tensor; then a negative
 * control: torch's plain bicubic at 1/2 (no antialias) must fail the downscale's comparison.
 *
 * Tolerance: max |C - torch| over the tensor, on values in [-1, 1]; measured (gcc 12 -O2
 * -march=native, AVX-512, torch 1.13) down.x2 6.0e-8, down.x4 1.5e-8, up.x2 1.2e-7, up.x4 2.4e-7
 * (float rounding of the weights and sums); tol 1e-6, about 4x the worst. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/image_metrics.h"
#include "golden.h"
#include "latup.h"

#define GOLDEN "ref_data/resample/golden_resample.safetensors"
#define TOL 1e-6

static double max_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static const latup_wtensor *need(const latup_weights *g, const char *name) {
    const latup_wtensor *t = latup_weights_find(g, name);
    assert_non_null(t);
    return t;
}

static void test_downscale_and_upscale(void **state) {
    (void)state;
    latup_weights g = {0};
    assert_int_equal(latup_safetensors_load(GOLDEN, &g), LATUP_OK);
    const latup_wtensor *in = need(&g, "input"), *small = need(&g, "small");
    const int H = (int)in->shape[1], W = (int)in->shape[2], h = (int)small->shape[1], w = (int)small->shape[2];
    int bad = 0;
    for (int s = 2; s <= 4; s *= 2) {
        char name[16];
        snprintf(name, sizeof name, "down.x%d", s);
        const latup_wtensor *ref = need(&g, name);
        assert_int_equal(ref->shape[1], H / s);
        assert_int_equal(ref->shape[2], W / s);
        float *out = malloc(sizeof(float) * (size_t)ref->numel);
        assert_int_equal(im_downscale_aa(out, in->f32, H, W, s), 0);
        for (int64_t i = 0; i < ref->numel; i++) out[i] = out[i] < -1 ? -1 : out[i] > 1 ? 1 : out[i];
        double d = max_diff(out, ref->f32, ref->numel);
        printf("resample %-8s [3,%d,%d] -> [3,%d,%d]: max |C - torch| = %.3e (tol %.0e) %s\n", name, H, W, H / s,
               W / s, d, TOL, d <= TOL ? "OK" : "NOT OK");
        bad += d > TOL;
        free(out);
        snprintf(name, sizeof name, "up.x%d", s);
        ref = need(&g, name);
        out = malloc(sizeof(float) * (size_t)ref->numel);
        im_bicubic_up(out, small->f32, h, w, s);
        d = max_diff(out, ref->f32, ref->numel);
        printf("resample %-8s [3,%d,%d] -> [3,%d,%d]: max |C - torch| = %.3e (tol %.0e) %s\n", name, h, w, h * s,
               w * s, d, TOL, d <= TOL ? "OK" : "NOT OK");
        bad += d > TOL;
        free(out);
    }
    assert_int_equal(bad, 0);
    latup_weights_free(&g);
}

/* The filter matters: a plain bicubic (no antialias: every output the 4 nearest taps) is not it. */
static void test_negative_control(void **state) {
    (void)state;
    latup_weights g = {0};
    assert_int_equal(latup_safetensors_load(GOLDEN, &g), LATUP_OK);
    const latup_wtensor *in = need(&g, "input"), *ref = need(&g, "down.x2");
    const int H = (int)in->shape[1], W = (int)in->shape[2];
    float *out = malloc(sizeof(float) * (size_t)ref->numel);
    /* torch's bicubic without antialias at 1/2: the taps at (2i + 0.5) - 0.5 +- 1, 2, A = -0.75 */
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H / 2; y++)
            for (int x = 0; x < W / 2; x++) {
                float acc = 0;
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++)
                        acc += im_cubic_w(0.5f, i) * im_cubic_w(0.5f, j) *
                               in->f32[((size_t)c * H + im_clampi(2 * y - 1 + i, 0, H - 1)) * W +
                                       im_clampi(2 * x - 1 + j, 0, W - 1)];
                out[((size_t)c * (H / 2) + y) * (W / 2) + x] = acc < -1 ? -1 : acc > 1 ? 1 : acc;
            }
    const double d = max_diff(out, ref->f32, ref->numel);
    printf("negative control: bicubic without antialias vs down.x2: max diff %.3e (must be > %.0e)\n", d, TOL);
    assert_true(d > TOL);
    free(out);
    latup_weights_free(&g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_downscale_and_upscale),
        cmocka_unit_test(test_negative_control),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
