/* test_model_edges.c — the models' promises at their edges, through the public API: the latent
 * sizes LUA accepts (1..16384 per side, padding smaller than the side, a head output under 2^31
 * pixels) at each limit and one past it, and outputs that overflow fp32 refused with nothing
 * returned (LUA and VAE). Plans only where a size is huge: the checks come before any memory. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "latup.h"
#include "ops/kernels.h"

#define LUA_SMALL "ref_data/small/model.safetensors.gz" /* window 8, heads x2 and x4, 16 channels */
#define VAE_FLUX "ref_data/vae/flux_small.ldm.safetensors.gz"

static void expect_plan(const latup_lua *m, int H, int W, int scale, latup_status want, const char *msg) {
    latup_lua_plan p;
    const latup_status st = latup_lua_plan_memory(m, H, W, scale, NULL, &p);
    printf("plan %dx%d x%d: %d (want %d) %s\n", H, W, scale, st, want, st ? latup_last_error() : "");
    assert_int_equal(st, want);
    if (msg) assert_non_null(strstr(latup_last_error(), msg));
    if (!st) assert_true(p.H == H && p.W == W && p.scale == scale);
}

/* Each side 1..16384 (and padding to the window below the side: at least 5 for window 8); the
 * x4 head's map under 2^31 pixels: 16384 x 8184 (x16 = 2,145,386,496) passes, 16384 x 8192
 * (2^31) does not, in either orientation. */
static void test_lua_size_edges(void **state) {
    (void)state;
    latup_lua *m = NULL;
    assert_int_equal(latup_lua_load(LUA_SMALL, &m), LATUP_OK);
    expect_plan(m, 16384, 8, 2, LATUP_OK, NULL);
    expect_plan(m, 8, 16384, 2, LATUP_OK, NULL);
    expect_plan(m, 16385, 8, 2, LATUP_E_INPUT, "out of range");
    expect_plan(m, 8, 16385, 2, LATUP_E_INPUT, "out of range");
    expect_plan(m, 0, 8, 2, LATUP_E_INPUT, "out of range");
    expect_plan(m, 5, 5, 2, LATUP_OK, NULL);
    expect_plan(m, 4, 5, 2, LATUP_E_INPUT, "too small");
    expect_plan(m, 5, 4, 2, LATUP_E_INPUT, "too small");
    expect_plan(m, 16384, 16384, 2, LATUP_OK, NULL); /* x2: 2^30 pixels */
    expect_plan(m, 16384, 8184, 4, LATUP_OK, NULL);
    expect_plan(m, 16384, 8192, 4, LATUP_E_INPUT, "2^31");
    expect_plan(m, 8192, 16384, 4, LATUP_E_INPUT, "2^31");
    latup_lua_free(m);
}

/* An input whose values overflow fp32 in the first conv: the output would be NaN; refused,
 * naming what came out non-finite, and no tensor returned. */
static void test_nonfinite_outputs_refused(void **state) {
    (void)state;
    latup_lua *m = NULL;
    latup_vae *v = NULL;
    assert_int_equal(latup_lua_load(LUA_SMALL, &m), LATUP_OK);
    assert_int_equal(latup_vae_load(VAE_FLUX, &v), LATUP_OK);
    latup_tensor x, y;
    const int64_t s[4] = {2, 16, 8, 8};
    assert_int_equal(latup_tensor_alloc(&x, 4, s), LATUP_OK);
    for (int64_t i = 0; i < latup_tensor_numel(&x); i++) x.data[i] = (i & 1) ? 3.0e38f : -3.0e38f;
    assert_int_equal(latup_lua_upscale(m, &x, 2, &y, NULL), LATUP_E_INPUT);
    printf("LUA: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "the upscaled latent came out non-finite"));
    assert_null(y.data);
    assert_int_equal(latup_vae_decode(v, &x, &y, NULL), LATUP_E_INPUT);
    printf("VAE: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "the decoded image came out non-finite"));
    assert_null(y.data);
    latup_decode_opts o = {.tile = 4, .overlap = 1}; /* tiled too */
    assert_int_equal(latup_vae_decode(v, &x, &y, &o), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "came out non-finite"));
    assert_null(y.data);
    /* the same latent, scaled into range, decodes and upscales */
    for (int64_t i = 0; i < latup_tensor_numel(&x); i++) x.data[i] *= 1e-38f;
    assert_int_equal(latup_lua_upscale(m, &x, 2, &y, NULL), LATUP_OK);
    latup_tensor_free(&y);
    assert_int_equal(latup_vae_decode(v, &x, &y, NULL), LATUP_OK);
    latup_tensor_free(&y);
    latup_tensor_free(&x);
    latup_vae_free(v);
    latup_lua_free(m);
}

/* A latent of rank 1 or 2 is refused, naming the shapes accepted, in the VAE and in LUA. */
static void test_latent_rank(void **state) {
    (void)state;
    latup_vae *v = NULL;
    latup_lua *m = NULL;
    assert_int_equal(latup_vae_load(VAE_FLUX, &v), LATUP_OK);
    assert_int_equal(latup_lua_load(LUA_SMALL, &m), LATUP_OK);
    latup_tensor x, y;
    const int64_t s2[2] = {16, 64};
    assert_int_equal(latup_tensor_alloc(&x, 2, s2), LATUP_OK);
    for (int nd = 2; nd >= 1; nd--) {
        x.ndim = nd;
        assert_int_equal(latup_vae_decode(v, &x, &y, NULL), LATUP_E_INPUT);
        assert_non_null(strstr(latup_last_error(), "expected [C,H,W] or [B,C,H,W]"));
        assert_null(y.data);
        assert_int_equal(latup_lua_upscale(m, &x, 2, &y, NULL), LATUP_E_INPUT);
        assert_non_null(strstr(latup_last_error(), "expected [C,H,W] or [B,C,H,W]"));
    }
    x.ndim = 2;
    latup_tensor_free(&x);
    latup_lua_free(m);
    latup_vae_free(v);
}

/* The latent families by name (and none for an unknown one); a packed FLUX latent refused leaves
 * the output empty, whatever the caller's struct held. */
static void test_latent_helpers(void **state) {
    (void)state;
    static const struct {
        const char *name;
        int channels;
    } fam[] = {{"sd", 4}, {"sdxl", 4}, {"sd3", 16}, {"flux", 16}};
    for (int k = 0; k < 4; k++) {
        const latup_latent_family *f = latup_latent_family_find(fam[k].name);
        assert_non_null(f);
        assert_string_equal(f->name, fam[k].name);
        assert_int_equal(f->channels, fam[k].channels);
    }
    assert_null(latup_latent_family_find("sd4"));
    assert_null(latup_latent_family_find(""));
    latup_tensor packed, out;
    const int64_t s[3] = {1, 6, 64};
    assert_int_equal(latup_tensor_alloc(&packed, 3, s), LATUP_OK);
    float junk = 0;
    const int bad[][2] = {{4, 4}, {5, 4}, {0, 0}};
    for (int k = 0; k < 3; k++) {
        out.data = &junk, out.ndim = 9;
        assert_true(latup_flux_unpack(&packed, bad[k][0], bad[k][1], &out) != LATUP_OK);
        assert_null(out.data);
        assert_int_equal(out.ndim, 0);
    }
    assert_int_equal(latup_flux_unpack(&packed, 4, 6, &out), LATUP_OK);
    assert_int_equal(out.shape[1], 16);
    latup_tensor_free(&out);
    latup_tensor_free(&packed);
}

/* Two kernel contracts no model reaches (kernels.h): window attention handed scratch for less than
 * one N x N score matrix refuses (LATUP_E_INTERNAL) and writes nothing; GroupNorm statistics with
 * groups that do not divide C (or none) write nothing. */
static void test_kernel_refusals(void **state) {
    (void)state;
    enum { nW = 1, N = 4, nH = 2, hd = 3, C = nH * hd };
    float qkv[nW * N * 3 * C], bias[nH * N * N], out[nW * N * C], scratch[N * N];
    for (size_t i = 0; i < sizeof qkv / sizeof qkv[0]; i++) qkv[i] = (float)(i % 7) * 0.1f;
    memset(bias, 0, sizeof bias);
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) out[i] = 42.0f;
    assert_int_equal(latup_window_attention_forward(out, qkv, bias, NULL, nW, N, nH, hd, 0.5f, scratch, N * N - 1, 1),
                     LATUP_E_INTERNAL);
    assert_non_null(strstr(latup_last_error(), "holds no 4x4 score matrix"));
    assert_int_equal(latup_window_attention_forward(out, qkv, bias, NULL, nW, N, nH, hd, 0.5f, NULL, N * N, 1),
                     LATUP_E_INTERNAL);
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) assert_true(out[i] == 42.0f);
    assert_int_equal(latup_window_attention_forward(out, qkv, bias, NULL, nW, N, nH, hd, 0.5f, scratch, N * N, 1),
                     LATUP_OK);
    float x[6 * 5], w[6] = {1, 1, 1, 1, 1, 1}, mean[6], scale[6];
    for (int i = 0; i < 30; i++) x[i] = (float)i;
    const int groups[] = {0, 4, -1};
    for (int g = 0; g < 3; g++) {
        for (int c = 0; c < 6; c++) mean[c] = scale[c] = 7.0f;
        latup_groupnorm_affine(mean, scale, x, w, 6, 5, groups[g], 1e-6f);
        for (int c = 0; c < 6; c++) assert_true(mean[c] == 7.0f && scale[c] == 7.0f);
    }
    latup_groupnorm_affine(mean, scale, x, w, 6, 5, 3, 1e-6f);
    assert_true(mean[0] == 4.5f); /* channels 0-1: 0..9 */
    /* GroupNorm (and with SiLU) on groups that do not divide C, none, or an empty map: nothing
     * written (kernels.h); 3 groups of 2 channels write every output */
    float y[6 * 5], b[6] = {0};
    const struct { int C, HW, groups; } bad[] = {{6, 5, 4}, {6, 5, 0}, {6, 5, -1}, {6, 0, 3}, {0, 5, 3}};
    for (int k = 0; k < 5; k++)
        for (int silu = 0; silu < 2; silu++) {
            for (int i = 0; i < 30; i++) y[i] = 42.0f;
            (silu ? latup_groupnorm_silu_forward : latup_groupnorm_forward)(y, x, w, b, bad[k].C, bad[k].HW, bad[k].groups,
                                                                            1e-6f);
            int untouched = 1;
            for (int i = 0; i < 30; i++) untouched &= y[i] == 42.0f;
            printf("groupnorm%s C %d HW %d groups %d: output untouched %s\n", silu ? "+silu" : "", bad[k].C, bad[k].HW,
                   bad[k].groups, untouched ? "OK" : "NOT OK");
            assert_true(untouched);
        }
    for (int i = 0; i < 30; i++) y[i] = 42.0f;
    latup_groupnorm_forward(y, x, w, b, 6, 5, 3, 1e-6f);
    for (int i = 0; i < 30; i++) assert_true(y[i] != 42.0f);
    /* a 1x1 conv is a plain product: it would like no scratch (a 3x3 one does) */
    assert_int_equal(latup_conv2d_scratch_floats(64, 32, 32, 64, 1, NULL, NULL), 0);
    assert_true(latup_conv2d_scratch_floats(64, 32, 32, 64, 3, NULL, NULL) > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lua_size_edges),
        cmocka_unit_test(test_nonfinite_outputs_refused),
        cmocka_unit_test(test_latent_helpers),
        cmocka_unit_test(test_latent_rank),
        cmocka_unit_test(test_kernel_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
