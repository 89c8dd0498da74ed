/* test_determinism.c — the same bytes for any thread count. Every product is cut into tiles whose
 * shape depends on the problem only, each computed by one thread, and every reduction has a fixed
 * order (docs/architecture.md, "Numerics"), so upscale (both heads, the small model and the
 * released widths), decode (exact and tiled) and run (upscale, then decode) must give
 * bit-identical outputs on 1, 2, 3 and 4 threads, even with more threads than cores. One line per
 * comparison; the first differing value is printed when one fails. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <unistd.h>

#include "golden.h"
#include "latup.h"
#include "weightgen.h"

static int g_bad;

/* Compares ys[1..3] with ys[0] bit for bit; one line. */
static void same_bits(const char *what, latup_tensor *ys) {
    const size_t n = (size_t)latup_tensor_numel(&ys[0]);
    int ok = 1;
    for (int t = 1; t < 4 && ok; t++) {
        if ((size_t)latup_tensor_numel(&ys[t]) != n) {
            ok = 0;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (memcmp(&ys[0].data[i], &ys[t].data[i], sizeof(float)) != 0) {
                printf("  %s: value %zu differs on %d threads: %.9g vs %.9g on 1 thread\n", what, i, t + 1,
                       ys[t].data[i], ys[0].data[i]);
                ok = 0;
                break;
            }
    }
    printf("determinism %-52s %zu values, threads 1-4: %s\n", what, n, ok ? "identical OK" : "NOT OK");
    g_bad += !ok;
}

static latup_tensor latent(int C, int h, int w, const char *name) {
    latup_tensor x;
    const int64_t s[4] = {1, C, h, w};
    assert_int_equal(latup_tensor_alloc(&x, 4, s), LATUP_OK);
    wg_input(x.data, latup_tensor_numel(&x), name, 11);
    return x;
}

static void upscale_threads(const char *what, const latup_lua *m, const latup_tensor *x, int scale) {
    latup_tensor ys[4];
    for (int t = 0; t < 4; t++) {
        latup_set_threads(t + 1);
        assert_int_equal(latup_lua_upscale(m, x, scale, &ys[t], NULL), LATUP_OK);
    }
    same_bits(what, ys);
    for (int t = 0; t < 4; t++) latup_tensor_free(&ys[t]);
}

static void decode_threads(const char *what, const latup_vae *v, const latup_tensor *z, int tile, int overlap) {
    latup_tensor ys[4];
    latup_decode_opts o = {.tile = tile, .overlap = overlap};
    for (int t = 0; t < 4; t++) {
        latup_set_threads(t + 1);
        assert_int_equal(latup_vae_decode(v, z, &ys[t], &o), LATUP_OK);
    }
    same_bits(what, ys);
    for (int t = 0; t < 4; t++) latup_tensor_free(&ys[t]);
}

static void test_lua_threads(void **state) {
    (void)state;
    g_bad = 0;
    latup_lua *m = NULL;
    assert_int_equal(latup_lua_load("ref_data/small/model.safetensors.gz", &m), LATUP_OK);
    latup_tensor x = latent(16, 37, 29, "det small");
    upscale_threads("upscale small 37x29 x2", m, &x, 2);
    upscale_threads("upscale small 37x29 x4", m, &x, 4);
    latup_tensor_free(&x);
    latup_lua_free(m);
    /* the released widths (E 360, 12 heads, window 16, F 256), one RSTB of two blocks */
    assert_int_equal(latup_lua_load("ref_data/wide/model.safetensors.gz", &m), LATUP_OK);
    x = latent(16, 33, 47, "det wide");
    upscale_threads("upscale wide (E 360) 33x47 x2", m, &x, 2);
    latup_tensor_free(&x);
    latup_lua_free(m);
    latup_set_threads(2);
    assert_int_equal(g_bad, 0);
}

static void test_vae_threads(void **state) {
    (void)state;
    g_bad = 0;
    latup_vae *v = NULL;
    assert_int_equal(latup_vae_load("ref_data/vae/flux_small.ldm.safetensors.gz", &v), LATUP_OK);
    latup_tensor z = latent(16, 23, 19, "det vae");
    decode_threads("decode flux_small 23x19 exact", v, &z, 0, 0);
    decode_threads("decode flux_small 23x19 tiles 8 overlap 3", v, &z, 8, 3);
    latup_tensor_free(&z);
    latup_vae_free(v);
    /* the real widths (128/256/512/512) from the generator */
    char path[512];
    assert_true(wg_generate_tmp("ref_data/vae/golden_real_widths.safetensors", path, sizeof path) > 0);
    assert_int_equal(latup_vae_load(path, &v), LATUP_OK);
    unlink(path);
    z = latent(16, 13, 11, "det vae real");
    decode_threads("decode real widths 13x11 exact", v, &z, 0, 0);
    decode_threads("decode real widths 13x11 tiles 8 overlap 2", v, &z, 8, 2);
    latup_tensor_free(&z);
    latup_vae_free(v);
    latup_set_threads(2);
    assert_int_equal(g_bad, 0);
}

/* run = upscale then decode, as `latup run` does */
static void test_run_threads(void **state) {
    (void)state;
    g_bad = 0;
    latup_lua *m = NULL;
    latup_vae *v = NULL;
    assert_int_equal(latup_lua_load("ref_data/small/model.safetensors.gz", &m), LATUP_OK);
    assert_int_equal(latup_vae_load("ref_data/vae/flux_small.ldm.safetensors.gz", &v), LATUP_OK);
    latup_tensor x = latent(16, 12, 10, "det run"), ys[4];
    for (int t = 0; t < 4; t++) {
        latup_set_threads(t + 1);
        latup_tensor up;
        assert_int_equal(latup_lua_upscale(m, &x, 2, &up, NULL), LATUP_OK);
        assert_int_equal(latup_vae_decode(v, &up, &ys[t], NULL), LATUP_OK);
        latup_tensor_free(&up);
    }
    same_bits("run small x2 + flux_small, 12x10", ys);
    for (int t = 0; t < 4; t++) latup_tensor_free(&ys[t]);
    latup_tensor_free(&x);
    latup_lua_free(m);
    latup_vae_free(v);
    latup_set_threads(2);
    assert_int_equal(g_bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lua_threads),
        cmocka_unit_test(test_vae_threads),
        cmocka_unit_test(test_run_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
