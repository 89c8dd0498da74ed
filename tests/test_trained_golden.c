/* test_trained_golden.c — the models trained here (ref_data/trained/, docs/results.md) against
 * their PyTorch references (tools/train/make_trained_golden.py): LUA, the VAE decoder and the pixel
 * SwinIR on real latents and a real photo, one report line per golden tensor; the demo's metrics
 * and bicubic (src/cli/image_metrics.h) against their Python twins; the demo's LUA and bicubic paths
 * against floors under their measured scores; and a negative control per model. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <unistd.h>

#include "cli/image_metrics.h"
#include "golden.h"
#include "io/json.h"
#include "io/png.h"
#include "latup.h"

#define TRAINED "ref_data/trained/"
static const char *LUA_W = TRAINED "lua_x2x4.safetensors.gz";
static const char *VAE_W = TRAINED "vae.ldm.safetensors.gz";
static const char *SWINIR_W = TRAINED "swinir_x2.safetensors.gz";

/* ---- tolerances ---------------------------------------------------------------------------------
 * Same rule as the other golden tests: max|c - ref| <= tol * max|ref|. `measured` is the worst seen
 * on these files (1 and 2 threads, gcc 12 -O2 -march=native, OpenBLAS 0.3.21, AVX-512) when the
 * value was set; tol is about 6x that, rounded up. Trained weights have the same kind of error as
 * the random ones (docs/testing.md); the fp32 references differ from fp64 by up to 6e-7 x max|ref|
 * on these inputs (fp64_maxabs in each golden file). Re-measured on issue 20's SwinIR: worst 9.0e-7
 * (1 thread), under the SkylakeX and the Haswell kernels. */
static const golden_tol TRAINED_TOLS[] = {
    {"conv_first", 2e-6, 0.0, "one 3x3 conv of the input (bit-identical here)"},
    {"out", 5e-6, 8.4e-7, "final outputs: trunk and head rounding"},
    {"", 6e-6, 1.0e-6, "RSTB, trunk and head outputs (worst: conv_after_body)"},
};

/* The trained LUA (issue 20's second recipe) starts as a closed-form linear upscaler built into its
 * layers (tools/train/train_lua.py, designed_start): conv_before writes [X, -X] and the upsample conv
 * takes their difference, so the heads' outputs are differences of values near 12 with fitted
 * coefficients (heads.x4 applies them twice): PyTorch's fp32 forward differs from its fp64 one by
 * 3.45e-6 x max|ref| (fp64_maxabs), latup's by 4.24e-6 (out.x4, Haswell kernels; 3.91e-6 SkylakeX).
 * conv_first is no longer bit-identical (5.2e-7). tol is about 6x the measured. */
static const golden_tol TRAINED_LUA_TOLS[] = {
    {"conv_first", 3e-6, 5.2e-7, "one 3x3 conv of the input"},
    {"out", 2.5e-5, 4.24e-6, "final outputs: differences of the [X, -X] pair, the x4 fit applied twice"},
    {"", 6e-6, 9.3e-7, "RSTB, trunk and head outputs (worst: heads.x2.conv_before)"},
};

/* The trained VAE decoder (issue 20) carries each colour through norm_out as [X, -X, +20, -20] and
 * SiLU's input as X + 10 (tools/train/train_vae.py, passthrough_init); conv_out subtracts the 10
 * again, so its rounding is that of values near 10, about 10x the output's own: PyTorch's fp32
 * forward differs from its fp64 one by 6.0e-6 x max|ref| there (fp64_maxabs), latup's by 1.32e-5.
 * The upsamplers' worst is 2.6e-6 (torch fp32 vs fp64: 2.5e-6). tol is about 6x the measured. */
static const golden_tol TRAINED_VAE_TOLS[] = {
    {"out", 8e-5, 1.32e-5, "decoder output: conv_out removes norm_out's offset of 10 (see above)"},
    {"", 1.6e-5, 2.6e-6, "conv_in, mid block, attention, upsamplers (worst: up.1.upsample)"},
};

static const golden_tol *tol_in(const golden_tol *t, size_t n_t, const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < n_t; i++) {
        size_t k = strlen(t[i].suffix);
        if (k <= n && strncmp(name, t[i].suffix, k) == 0) return &t[i];
    }
    return &t[n_t - 1];
}
static const golden_tol *trained_tol_for(const char *name) {
    return tol_in(TRAINED_TOLS, sizeof TRAINED_TOLS / sizeof TRAINED_TOLS[0], name);
}
static const golden_tol *trained_lua_tol_for(const char *name) {
    return tol_in(TRAINED_LUA_TOLS, sizeof TRAINED_LUA_TOLS / sizeof TRAINED_LUA_TOLS[0], name);
}
static const golden_tol *trained_vae_tol_for(const char *name) {
    return tol_in(TRAINED_VAE_TOLS, sizeof TRAINED_VAE_TOLS / sizeof TRAINED_VAE_TOLS[0], name);
}

/* ---- one model against its golden file -------------------------------------------------------------
 * weights: a path; kind: decode instead of upscale for the VAE (every head the golden file has an
 * output for otherwise), and which tolerance table applies. Returns the number of NOT OK lines;
 * *worst = the largest abs/max|ref| among the outputs. */
typedef enum { KIND_LUA, KIND_VAE, KIND_SWINIR } trained_kind;
static const golden_tol *(*const TOLS_OF[])(const char *) = {
    [KIND_LUA] = trained_lua_tol_for, [KIND_VAE] = trained_vae_tol_for, [KIND_SWINIR] = trained_tol_for};

static int run_trained(const char *casename, const char *weights, const char *golden, trained_kind kind, int *lines,
                       double *worst) {
    latup_weights g = {0};
    assert_int_equal(latup_safetensors_load(golden, &g), LATUP_OK);
    const latup_wtensor *in = latup_weights_find(&g, "input");
    assert_non_null(in);
    latup_tensor x = {.data = in->f32, .ndim = in->ndim}, y = {0};
    memcpy(x.shape, in->shape, sizeof x.shape);
    golden_cmp c;
    golden_cmp_init(&c, &g, (int)in->shape[0]);
    if (kind == KIND_VAE) {
        latup_vae *v = NULL;
        assert_int_equal(latup_vae_load(weights, &v), LATUP_OK);
        latup_decode_opts o = {.dump = golden_compare_dump, .dump_user = &c};
        assert_int_equal(latup_vae_decode(v, &x, &y, &o), LATUP_OK);
        latup_tensor_free(&y);
        latup_vae_free(v);
    } else {
        latup_lua *m = NULL;
        assert_int_equal(latup_lua_load(weights, &m), LATUP_OK);
        const latup_lua_config *cfg = latup_lua_get_config(m);
        for (int s = 0; s < cfg->n_scales; s++) {
            char oname[16];
            snprintf(oname, sizeof oname, "out.x%d", cfg->scales[s]);
            if (!latup_weights_find(&g, oname)) continue;
            latup_run_opts o = {.dump = golden_compare_dump, .dump_user = &c};
            assert_int_equal(latup_lua_upscale(m, &x, cfg->scales[s], &y, &o), LATUP_OK);
            latup_tensor_free(&y);
        }
        latup_lua_free(m);
    }
    int bad = golden_cmp_report(&c, casename, TOLS_OF[kind], lines);
    *worst = 0;
    for (int i = 0; i < g.n; i++)
        if (!strncmp(g.t[i].name, "out", 3) && c.stats[i].max_ref > 0)
            *worst = fmax(*worst, c.stats[i].max_abs / c.stats[i].max_ref);
    golden_cmp_free(&c);
    latup_weights_free(&g);
    return bad;
}

static void test_trained_models(void **state) {
    (void)state;
    int bad = 0, lines = 0;
    double w;
    for (int threads = 2; threads >= 1; threads--) {
        latup_set_threads(threads);
        bad += run_trained(threads == 2 ? "trained/lua" : "lua 1thr", LUA_W, TRAINED "golden_lua.safetensors", KIND_LUA,
                           &lines, &w);
        bad += run_trained(threads == 2 ? "trained/vae" : "vae 1thr", VAE_W, TRAINED "golden_vae.safetensors", KIND_VAE,
                           &lines, &w);
        bad += run_trained(threads == 2 ? "trained/sw" : "sw 1thr", SWINIR_W, TRAINED "golden_swinir.safetensors",
                           KIND_SWINIR, &lines, &w);
    }
    latup_set_threads(2);
    printf("trained golden: %d tensors compared, %d NOT OK\n", lines, bad);
    assert_true(lines >= 40);
    assert_int_equal(bad, 0);
}

/* ---- negative controls: a small change to one trained weight must fail the comparison ------------ */
static double perturbed(const char *weights, const char *golden, const char *tensor, int64_t elem, float delta,
                        trained_kind kind) {
    latup_weights w = {0};
    assert_int_equal(latup_safetensors_load(weights, &w), LATUP_OK);
    latup_wtensor *t = (latup_wtensor *)latup_weights_find(&w, tensor);
    assert_non_null(t);
    assert_true(elem < t->numel);
    t->f32[elem] += delta;
    for (int i = 0; i < w.n; i++) /* written back as F32 (the file holds F16) */
        if (w.t[i].f32) w.t[i].dtype = LATUP_DT_F32;
    char path[] = "/tmp/latup_trained_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(latup_safetensors_write(path, &w), LATUP_OK);
    latup_weights_free(&w);
    int lines = 0;
    double worst;
    int bad = run_trained("perturbed", path, golden, kind, &lines, &worst);
    unlink(path);
    printf("negative control: %s[%lld] += %g -> worst output abs/max|ref| %.3e vs tol %.1e, %d NOT OK (must be > 0)\n",
           tensor, (long long)elem, delta, worst, TOLS_OF[kind]("out")->tol, bad);
    return bad;
}

static void test_negative_controls(void **state) {
    (void)state;
    latup_set_threads(2);
    /* conv_after_body: the trunk's way into the heads (a change inside the trunk shows in layers.N, but
     * the trunk's share of the output is still small after 400 steps from the designed start) */
    assert_true(perturbed(LUA_W, TRAINED "golden_lua.safetensors", "conv_after_body.weight", 5, 1e-2f, KIND_LUA) > 0);
    /* conv_in's centre tap from latent channel 0 into the red signal (issue 20's decoder: its mid attention
     * is nearly inert, so a change to attn_1.k no longer shows) */
    assert_true(perturbed(VAE_W, TRAINED "golden_vae.safetensors", "decoder.conv_in.weight", 4, 1e-2f, KIND_VAE) > 0);
    assert_true(perturbed(SWINIR_W, TRAINED "golden_swinir.safetensors", "conv_last.bias", 1, 1e-3f, KIND_SWINIR) > 0);
}

/* ---- the demo's metrics and bicubic against tools/train/metrics.py --------------------------------- */
static double meta_number(const latup_weights *g, const char *key, const char *field) {
    const char *s = latup_weights_meta(g, key);
    assert_non_null(s);
    latup_json_doc doc;
    assert_int_equal(latup_json_parse(s, strlen(s), 1u << 16, &doc), LATUP_OK);
    double v = NAN;
    for (const latup_json *e = doc.root->u.kids.first; e; e = e->next)
        if (!strcmp(e->key, field)) v = e->type == LATUP_JSON_INT ? (double)e->u.i : e->u.d;
    latup_json_free(&doc);
    assert_false(isnan(v));
    return v;
}

static uint8_t *bytes_of(const latup_wtensor *t) {
    uint8_t *b = malloc((size_t)t->numel);
    for (int64_t i = 0; i < t->numel; i++) b[i] = (uint8_t)t->f32[i];
    return b;
}

static void test_metrics_match_python(void **state) {
    (void)state;
    latup_weights g = {0};
    assert_int_equal(latup_safetensors_load(TRAINED "golden_metrics.safetensors", &g), LATUP_OK);
    const latup_wtensor *a = latup_weights_find(&g, "a"), *b = latup_weights_find(&g, "b");
    const latup_wtensor *bi = latup_weights_find(&g, "bicubic_in"), *bo = latup_weights_find(&g, "bicubic_out");
    assert_true(a && b && bi && bo);
    const int H = (int)a->shape[0], W = (int)a->shape[1];
    uint8_t *a8 = bytes_of(a), *b8 = bytes_of(b);
    const double psnr = im_psnr(a8, b8, H, W), ssim = im_ssim(a8, b8, H, W);
    const double want_psnr = meta_number(&g, "values", "psnr"), want_ssim = meta_number(&g, "values", "ssim");
    printf("metrics: PSNR %.12f (python %.12f), SSIM %.12f (python %.12f)\n", psnr, want_psnr, ssim, want_ssim);
    assert_true(fabs(psnr - want_psnr) < 1e-9);
    assert_true(fabs(ssim - want_ssim) < 1e-9);
    assert_true(im_psnr(a8, a8, H, W) == 99.0 && fabs(im_ssim(a8, a8, H, W) - 1.0) < 1e-12);
    assert_true(isnan(im_ssim(a8, b8, 10, W))); /* smaller than the window */
    /* bicubic: float rounding only (torch sums the four taps in the same order) */
    const int h = (int)bi->shape[1], w = (int)bi->shape[2];
    float *out = malloc(sizeof(float) * 3 * 4 * (size_t)h * w);
    im_bicubic_up(out, bi->f32, h, w, 2);
    double m = 0;
    for (int64_t i = 0; i < bo->numel; i++) m = fmax(m, fabs((double)out[i] - bo->f32[i]));
    printf("bicubic x2 [3,%d,%d]: max |C - torch| = %.3e (tol 1e-6)\n", h, w, m);
    assert_true(m <= 1e-6);
    free(out), free(a8), free(b8);
    latup_weights_free(&g);
}

/* ---- the demo: LUA x2 then decode, and the bicubic path, against the photo -------------------------
 * From the photo, as `latup eval` (make demo) starts: its antialiased half (im_downscale_aa of 2x - 1,
 * clamped) encoded by the trained VAE's encoder; then the two paths that need no SwinIR: LUA x2 then
 * decode, and the 1x decode as 8-bit bytes upscaled bicubically. The floors are issue 20's targets
 * for the demo image (the LUA path at least 24 dB and at least 0.5 dB above the bicubic path), under
 * the measured scores (24.99 dB, SSIM 0.781, +1.83 dB; docs/results.md). */
#define DEMO_PSNR_MIN 24.0
#define DEMO_SSIM_MIN 0.75
#define DEMO_MARGIN_MIN 0.5
static void test_demo_is_a_picture(void **state) {
    (void)state;
    latup_set_threads(2);
    latup_tensor z = {0}, gt = {0}, up = {0}, img = {0}, dec1 = {0}, x = {0}, half = {0};
    latup_lua *m = NULL;
    latup_vae *v = NULL;
    assert_int_equal(latup_png_read(TRAINED "demo_gt.png", &gt), LATUP_OK);
    assert_int_equal(latup_lua_load(LUA_W, &m), LATUP_OK);
    assert_int_equal(latup_vae_load(VAE_W, &v), LATUP_OK); /* decoder and encoder */
    {
        const int GH = (int)gt.shape[1], GW = (int)gt.shape[2];
        const int64_t ls[3] = {3, GH / 2, GW / 2};
        assert_int_equal(latup_tensor_alloc(&x, 3, gt.shape), LATUP_OK);
        assert_int_equal(latup_tensor_alloc(&half, 3, ls), LATUP_OK);
        for (int64_t i = 0; i < latup_tensor_numel(&x); i++) x.data[i] = 2.0f * gt.data[i] - 1.0f;
        assert_int_equal(im_downscale_aa(half.data, x.data, GH, GW, 2), 0);
        for (int64_t i = 0; i < latup_tensor_numel(&half); i++) half.data[i] = fminf(1.0f, fmaxf(-1.0f, half.data[i]));
        assert_int_equal(latup_vae_encode(v, &half, &z, NULL), LATUP_OK);
    }
    assert_int_equal(latup_lua_upscale(m, &z, 2, &up, NULL), LATUP_OK);
    assert_int_equal(latup_vae_decode(v, &up, &img, NULL), LATUP_OK);
    assert_int_equal(latup_vae_decode(v, &z, &dec1, NULL), LATUP_OK);
    const int H = (int)gt.shape[1], W = (int)gt.shape[2];
    assert_int_equal(img.shape[1], H);
    assert_int_equal(img.shape[2], W);
    assert_int_equal(dec1.shape[1] * 2, H);
    assert_int_equal(dec1.shape[2] * 2, W);
    uint8_t *a = malloc((size_t)H * W * 3), *b = malloc((size_t)H * W * 3), *c = malloc((size_t)H * W * 3);
    float *lo = malloc((size_t)3 * (H / 2) * (W / 2) * sizeof *lo), *bic = malloc((size_t)3 * H * W * sizeof *bic);
    assert_true(a && b && c && lo && bic);
    latup_png_quantize(a, img.data, H, W, LATUP_PNG_MAP_DIFFUSERS);
    latup_png_quantize(b, gt.data, H, W, LATUP_PNG_MAP_UNIT);
    /* bicubic path: the 1x decode as bytes, read back as k/255, bicubic x2, bytes again */
    latup_png_quantize(c, dec1.data, H / 2, W / 2, LATUP_PNG_MAP_DIFFUSERS);
    im_planar_from_bytes(lo, c, H / 2, W / 2);
    im_bicubic_up(bic, lo, H / 2, W / 2, 2);
    latup_png_quantize(c, bic, H, W, LATUP_PNG_MAP_UNIT);
    const double psnr = im_psnr(a, b, H, W), ssim = im_ssim(a, b, H, W), psnr_bic = im_psnr(c, b, H, W);
    printf("demo: LUA x2 + decode vs the photo: PSNR %.2f dB, SSIM %.4f (must be >= %.1f dB, %.2f)\n", psnr, ssim,
           DEMO_PSNR_MIN, DEMO_SSIM_MIN);
    printf("demo: decode 1x + bicubic x2 vs the photo: PSNR %.2f dB; LUA path - bicubic path = %+.2f dB "
           "(must be >= %+.2f)\n", psnr_bic, psnr - psnr_bic, DEMO_MARGIN_MIN);
    assert_true(psnr >= DEMO_PSNR_MIN);
    assert_true(ssim >= DEMO_SSIM_MIN);
    assert_true(psnr - psnr_bic >= DEMO_MARGIN_MIN);
    free(a), free(b), free(c), free(lo), free(bic);
    latup_tensor *ts[] = {&z, &gt, &up, &img, &dec1, &x, &half};
    for (int i = 0; i < 7; i++) latup_tensor_free(ts[i]);
    latup_lua_free(m);
    latup_vae_free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trained_models),
        cmocka_unit_test(test_negative_controls),
        cmocka_unit_test(test_metrics_match_python),
        cmocka_unit_test(test_demo_is_a_picture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
