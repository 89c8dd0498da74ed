/* test_vae_encoder.c — the VAE encoder against diffusers' AutoencoderKL (golden files of
 * tools/golden/make_vae_golden.py), block by block: the SD-style (4 channels, quant_conv) and
 * FLUX-style (16 channels) encoders in every naming (ldm flat, ldm under first_stage_model.,
 * diffusers, old diffusers attention names, .pth), the real channel widths with generated weights,
 * convs split into bands, 1 and 2 threads bit-identical; the seeded sample; tiled vs exact; the
 * patch encoder of the trained demo VAE (against a naive conv, and its round trip's PSNR); plan vs
 * run, the memory budget, progress and cancellation; loader and argument errors. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <unistd.h>

#include "golden.h"
#include "weightgen.h"
#include "io/json.h"
#include "latup.h"

/* ---- tolerances ---------------------------------------------------------------------------------
 * As the decoder's (VAE_TOLS in test_vae_golden.c): max|c - ref| <= tol * max|ref|. `measured` is
 * the worst over every case below (namings, band rows 1, 1 and 2 threads, real widths) when the
 * value was set; tol is about 5x that, rounded up. diffusers' own fp32 forward differs from fp64 by
 * up to the golden files' fp64_maxabs. */
static const golden_tol ENC_TOLS[] = {
    {"encoder.conv_in", 2e-6, 2.2e-7, "3x3 conv, K = 27"},
    {".downsample", 1e-5, 1.5e-6, "(0,1,0,1) pad + stride-2 3x3 conv (im2col + sgemm), real widths"},
    {"encoder.norm_out", 1e-5, 1.6e-6, "GroupNorm + SiLU after the mid block"},
    {"logvar", 1e-5, 1.8e-6, "the moments' second half, real widths"},
    {"", 1e-5, 1.6e-6, "resnet and attention outputs, conv_out, quant_conv, mean: rounding grows through "
                       "the down levels (diffusers' own fp32 vs fp64: up to 1.35e-6 x max|ref|)"},
};

static const golden_tol *enc_tol_for(const char *name) {
    return golden_tol_lookup(ENC_TOLS, sizeof ENC_TOLS / sizeof ENC_TOLS[0], name);
}

/* a golden file's input as a tensor (its data stays in g) */
static latup_tensor golden_input(const latup_weights *g) {
    const latup_wtensor *in = latup_weights_find(g, "input");
    assert_non_null(in);
    latup_tensor x = {.data = in->f32, .ndim = 4};
    memcpy(x.shape, in->shape, sizeof x.shape);
    return x;
}

/* ---- one golden file against one weights file ---------------------------------------------------- */
/* parts 0: latup_vae_load (the decoder and the encoder); else latup_vae_load_parts(parts). The
 * encoded latent goes to *z when z is not NULL. */
static int run_enc_case(const char *casename, const char *vae_path, const char *golden_path, int parts, int band_rows,
                        int *lines, latup_tensor *z) {
    latup_vae *v = NULL;
    latup_weights g = {0};
    latup_status st = parts ? latup_vae_load_parts(vae_path, parts, &v) : latup_vae_load(vae_path, &v);
    if (st != LATUP_OK) printf("load %s: %s\n", vae_path, latup_last_error());
    assert_int_equal(st, LATUP_OK);
    assert_int_equal(latup_vae_get_config(v)->encoder, LATUP_VAE_ENCODER_LDM);
    assert_int_equal(latup_safetensors_load(golden_path, &g), LATUP_OK);
    latup_tensor img = golden_input(&g), out;
    golden_cmp c;
    golden_cmp_init(&c, &g, (int)img.shape[0]);
    latup_encode_opts o = {.dump = golden_compare_dump, .dump_user = &c, .conv_band_rows = band_rows};
    st = latup_vae_encode(v, &img, &out, &o);
    if (st != LATUP_OK) printf("encode: %s\n", latup_last_error());
    assert_int_equal(st, LATUP_OK);
    char name[48];
    snprintf(name, sizeof name, band_rows ? "%s/b%d" : "%s", casename, band_rows);
    int bad = golden_cmp_report(&c, name, enc_tol_for, lines);
    /* the output is the mean */
    const latup_wtensor *mean = latup_weights_find(&g, "mean");
    assert_non_null(mean);
    if (mean->numel == latup_tensor_numel(&out)) {
        golden_stats s = {0};
        golden_stats_add(&s, out.data, mean->f32, (size_t)mean->numel);
        bad += !golden_report(name, "z (the output: the mean)", &s, enc_tol_for("mean")->tol);
        (*lines)++;
    }
    golden_cmp_free(&c);
    if (z) *z = out;
    else latup_tensor_free(&out);
    latup_weights_free(&g);
    latup_vae_free(v);
    return bad;
}

static int same_bits(const latup_tensor *a, const latup_tensor *b) {
    return latup_tensor_numel(a) == latup_tensor_numel(b) &&
           memcmp(a->data, b->data, (size_t)latup_tensor_numel(a) * sizeof(float)) == 0;
}

static void test_enc_small_all_namings(void **state) {
    (void)state;
    static const char *cases[][3] = {
        {"sd/ldm", "ref_data/vae/sd_small.ldm.safetensors.gz", "ref_data/vae/golden_enc_sd_small.safetensors"},
        {"sd/prefixed", "ref_data/vae/sd_small.ldm_prefixed.safetensors.gz", "ref_data/vae/golden_enc_sd_small.safetensors"},
        {"sd/diffusers", "ref_data/vae/sd_small.diffusers.safetensors.gz", "ref_data/vae/golden_enc_sd_small.safetensors"},
        {"sd/diff-old", "ref_data/vae/sd_small.diffusers_old.safetensors.gz", "ref_data/vae/golden_enc_sd_small.safetensors"},
        {"sd/ldm.pth", "ref_data/vae/sd_small.ldm.pth.gz", "ref_data/vae/golden_enc_sd_small.safetensors"},
        {"flux/ldm", "ref_data/vae/flux_small.ldm.safetensors.gz", "ref_data/vae/golden_enc_flux_small.safetensors"},
        {"flux/diffusers", "ref_data/vae/flux_small.diffusers.safetensors.gz", "ref_data/vae/golden_enc_flux_small.safetensors"},
    };
    int bad = 0, lines = 0;
    latup_set_threads(2);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) /* whole VAE, and the encoder alone */
        bad += run_enc_case(cases[i][0], cases[i][1], cases[i][2], i % 2 ? LATUP_VAE_ENCODER : 0, 0, &lines, NULL);
    /* bands of one row: every conv splits into several bands; the tolerances stay the same */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bad += run_enc_case(cases[i][0], cases[i][1], cases[i][2], 0, 1, &lines, NULL);
    /* 1 and 2 threads: the same bits */
    latup_tensor z1, z2;
    for (int k = 0; k < 2; k++) {
        const size_t i = k ? 5 : 0;
        latup_set_threads(1);
        bad += run_enc_case(k ? "flux/ldm 1thr" : "sd/ldm 1thr", cases[i][1], cases[i][2], 0, 0, &lines, &z1);
        latup_set_threads(2);
        bad += run_enc_case(k ? "flux/ldm 2thr" : "sd/ldm 2thr", cases[i][1], cases[i][2], 0, 0, &lines, &z2);
        const int same = same_bits(&z1, &z2);
        printf("%s: 1 thread vs 2 threads: %s\n", cases[i][0], same ? "bit-identical OK" : "DIFFERENT NOT OK");
        bad += !same;
        latup_tensor_free(&z1), latup_tensor_free(&z2);
    }
    printf("vae encoder golden: %d tensors compared, %d NOT OK\n", lines, bad);
    assert_true(lines >= 150);
    assert_int_equal(bad, 0);
}

/* The comparison can fail: one tap of the first Downsample moved by 0.05 (about a tenth of its
 * weights' spread) must put that stage and everything after it over the tolerances. */
static void test_enc_negative_control(void **state) {
    (void)state;
    latup_weights w = {0};
    assert_int_equal(latup_weights_load("ref_data/vae/sd_small.ldm.safetensors.gz", &w), LATUP_OK);
    assert_int_equal(latup_weights_fetch_all(&w), LATUP_OK);
    latup_wtensor *t = (latup_wtensor *)latup_weights_find(&w, "encoder.down.0.downsample.conv.weight");
    assert_non_null(t);
    t->f32[4] += 0.05f; /* filter 0, input channel 0, the centre tap */
    char path[512];
    assert_int_equal(wg_tmpfile(path, sizeof path), 0);
    assert_int_equal(latup_safetensors_write(path, &w), LATUP_OK);
    latup_weights_free(&w);
    int lines = 0;
    printf("negative control (expect NOT OK from encoder.down.0.downsample on):\n");
    const int bad = run_enc_case("sd/moved", path, "ref_data/vae/golden_enc_sd_small.safetensors", 0, 0, &lines, NULL);
    unlink(path);
    printf("negative control: %d of %d lines NOT OK (must be > 0)\n", bad, lines);
    assert_true(bad >= 5);
}

/* ---- the real widths: weights from the generator in the golden file's metadata -------------------- */
#define REAL_GOLDEN "ref_data/vae/golden_enc_real_widths.safetensors"

static void test_enc_real_widths(void **state) {
    (void)state;
    char path[512];
    assert_true(wg_generate_tmp(REAL_GOLDEN, path, sizeof path) > 0);
    int lines = 0;
    int bad = run_enc_case("enc/real", path, REAL_GOLDEN, LATUP_VAE_ENCODER, 0, &lines, NULL);
    bad += run_enc_case("enc/real", path, REAL_GOLDEN, LATUP_VAE_ENCODER, 1, &lines, NULL);
    latup_vae *v = NULL;
    assert_int_equal(latup_vae_load_parts(path, LATUP_VAE_ENCODER, &v), LATUP_OK);
    const latup_vae_config *c = latup_vae_get_config(v);
    printf("real widths: %lld encoder parameters, channels [%d,%d,%d,%d], %d blocks per level, quant_conv %d\n",
           (long long)c->enc_params, c->enc_channels[0], c->enc_channels[1], c->enc_channels[2], c->enc_channels[3],
           c->enc_blocks_per_level, c->has_quant_conv);
    latup_vae_free(v);
    unlink(path);
    assert_int_equal(bad, 0);
}

/* ---- the sample --------------------------------------------------------------------------------- */
static void test_enc_sample(void **state) {
    (void)state;
    latup_vae *v = NULL;
    latup_weights g = {0};
    assert_int_equal(latup_vae_load("ref_data/vae/flux_small.ldm.safetensors.gz", &v), LATUP_OK);
    assert_int_equal(latup_safetensors_load("ref_data/vae/golden_enc_flux_small.safetensors", &g), LATUP_OK);
    latup_tensor img = golden_input(&g), mean, s1, s2, s3, s4;
    img.shape[0] = 1; /* the golden file's first image */
    latup_encode_opts o = {0};
    assert_int_equal(latup_vae_encode(v, &img, &mean, &o), LATUP_OK);
    o.sample = 1, o.seed = 1234;
    latup_set_threads(1);
    assert_int_equal(latup_vae_encode(v, &img, &s1, &o), LATUP_OK);
    latup_set_threads(2);
    assert_int_equal(latup_vae_encode(v, &img, &s2, &o), LATUP_OK);
    o.seed = 1235;
    assert_int_equal(latup_vae_encode(v, &img, &s3, &o), LATUP_OK);
    const int same = same_bits(&s1, &s2), differs = !same_bits(&s1, &s3) && !same_bits(&s1, &mean);
    printf("sample: seed 1234 on 1 and 2 threads %s; seed 1235 and the mean differ: %s\n",
           same ? "bit-identical OK" : "DIFFERENT NOT OK", differs ? "OK" : "NOT OK");
    assert_true(same && differs);
    /* eps = (z - mean) / exp(logvar / 2) must look like N(0, 1); logvar from the golden file */
    const latup_wtensor *lv = latup_weights_find(&g, "logvar");
    assert_non_null(lv);
    const int64_t n = latup_tensor_numel(&s1);
    assert_true(lv->numel >= n);
    double m = 0, m2 = 0;
    for (int64_t i = 0; i < n; i++) {
        const double std = exp(0.5 * fmin(fmax(lv->f32[i], -30.0), 20.0));
        const double e = ((double)s1.data[i] - mean.data[i]) / std;
        m += e, m2 += e * e;
    }
    m /= (double)n, m2 = m2 / (double)n - m * m;
    printf("sample: %lld values, (z - mean) / std has mean %.4f and variance %.4f (N(0,1): |mean| < %.3f, variance "
           "within 0.1 of 1)\n", (long long)n, m, m2, 4.0 / sqrt((double)n));
    assert_true(fabs(m) < 4.0 / sqrt((double)n) && fabs(m2 - 1.0) < 0.1);
    /* a batch of two: element b draws the stream at its own flat positions (element 0 equals the
     * single-image sample) */
    latup_tensor two;
    const int64_t n_img = latup_tensor_numel(&img);
    const int64_t ts[4] = {2, 3, img.shape[2], img.shape[3]};
    assert_int_equal(latup_tensor_alloc(&two, 4, ts), LATUP_OK);
    memcpy(two.data, img.data, (size_t)n_img * sizeof(float));
    memcpy(two.data + n_img, img.data, (size_t)n_img * sizeof(float));
    o.seed = 1234;
    assert_int_equal(latup_vae_encode(v, &two, &s4, &o), LATUP_OK);
    const int first = memcmp(s4.data, s1.data, (size_t)n * sizeof(float)) == 0;
    const int second = memcmp(s4.data + n, s1.data, (size_t)n * sizeof(float)) != 0;
    printf("sample: batch of two equal images: element 0 equals the single sample %s, element 1 draws other noise %s\n",
           first ? "OK" : "NOT OK", second ? "OK" : "NOT OK");
    assert_true(first && second);
    latup_tensor_free(&two), latup_tensor_free(&s4);
    latup_tensor_free(&mean), latup_tensor_free(&s1), latup_tensor_free(&s2), latup_tensor_free(&s3);
    latup_weights_free(&g);
    latup_vae_free(v);
}

/* ---- tiled encoding: the error against the exact encode is measured and bounded ------------------- */
static double tiled_error(const latup_vae *v, const latup_tensor *img, const latup_tensor *exact, int tile, int overlap,
                          double *max_exact) {
    latup_encode_opts o = {.tile = tile, .overlap = overlap};
    latup_tensor t;
    assert_int_equal(latup_vae_encode(v, img, &t, &o), LATUP_OK);
    assert_int_equal(latup_tensor_numel(&t), latup_tensor_numel(exact));
    double m = 0, r = 0;
    for (int64_t i = 0; i < latup_tensor_numel(exact); i++) {
        m = fmax(m, fabs((double)t.data[i] - exact->data[i]));
        r = fmax(r, fabs((double)exact->data[i]));
    }
    latup_tensor_free(&t);
    if (max_exact) *max_exact = r;
    return m / r;
}

static void test_enc_tiled(void **state) {
    (void)state;
    latup_vae *v = NULL;
    assert_int_equal(latup_vae_load_parts("ref_data/vae/flux_small.ldm.safetensors.gz", LATUP_VAE_ENCODER, &v), LATUP_OK);
    /* a 3x64x80 image (latent 32x40: the small encoder's f is 2), values in [-1, 1] */
    latup_tensor img, exact;
    const int64_t is[3] = {3, 64, 80};
    assert_int_equal(latup_tensor_alloc(&img, 3, is), LATUP_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 64; y++)
            for (int x = 0; x < 80; x++)
                img.data[((size_t)c * 64 + y) * 80 + x] = (float)(0.6 * sin(0.13 * x + 0.7 * c) * cos(0.09 * y) +
                                                                  0.3 * sin(0.41 * (x + y)));
    assert_int_equal(latup_vae_encode(v, &img, &exact, NULL), LATUP_OK);
    /* a tile covering the latent is the exact encode, bit for bit */
    double e0 = tiled_error(v, &img, &exact, 40, 8, NULL);
    printf("tile 40 on a 32x40 latent (one tile): max |tiled - exact| / max|exact| = %.3e\n", e0);
    assert_true(e0 == 0.0);
    /* real tiles: GroupNorm statistics and the attention become per tile */
    double e1 = tiled_error(v, &img, &exact, 8, 2, NULL), e2 = tiled_error(v, &img, &exact, 16, 4, NULL);
    double e3 = tiled_error(v, &img, &exact, 24, 8, NULL);
    printf("tiled encode of a 3x64x80 image (latent 32x40), max |tiled - exact| / max|exact|: tile 8 overlap 2 "
           "%.3e; tile 16 overlap 4 %.3e; tile 24 overlap 8 %.3e\n", e1, e2, e3);
    assert_true(e1 > 0 && e1 < 1.0);
    assert_true(e2 > 0 && e2 < 1.0 && e3 > 0 && e3 < 1.0);
    /* the plan: tiles asked for, and a budget the exact encode exceeds */
    latup_decode_plan dp, ex;
    latup_encode_opts o = {.tile = 16, .overlap = 4};
    assert_int_equal(latup_vae_plan_encode(v, 64, 80, &o, &dp), LATUP_OK);
    assert_true(dp.tiled && dp.tile == 16 && dp.overlap == 4 && strstr(dp.reason, "asked for"));
    assert_int_equal(latup_vae_plan_encode(v, 64, 80, NULL, &ex), LATUP_OK);
    assert_false(ex.tiled);
    o = (latup_encode_opts){.max_memory = ex.peak - 1};
    assert_int_equal(latup_vae_plan_encode(v, 64, 80, &o, &dp), LATUP_OK);
    printf("budget: the exact encode needs %.2f MiB; a budget 1 byte short tiles %d overlap %d, peak %.2f MiB (%s)\n",
           ex.peak / 1048576.0, dp.tile, dp.overlap, dp.peak / 1048576.0, dp.reason);
    assert_true(dp.tiled && dp.tile % 8 == 0 && dp.peak <= o.max_memory && strstr(dp.reason, "exact encode"));
    latup_tensor t;
    assert_int_equal(latup_vae_encode(v, &img, &t, &o), LATUP_OK);
    latup_tensor_free(&t);
    o.max_memory = dp.plan.mem.weights;
    assert_int_equal(latup_vae_plan_encode(v, 64, 80, &o, &dp), LATUP_E_NOMEM);
    printf("budget too small: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "cannot be met"));
    assert_non_null(strstr(latup_last_error(), "exact encode"));
    assert_int_equal(latup_vae_encode(v, &img, &t, &o), LATUP_E_NOMEM);
    assert_null(t.data);
    latup_tensor_free(&img), latup_tensor_free(&exact);
    latup_vae_free(v);
}

/* ---- the patch encoder of the trained demo VAE --------------------------------------------------- */
#define DEMO_VAE "ref_data/trained/vae.ldm.safetensors.gz"

static void test_enc_patch(void **state) {
    (void)state;
    latup_vae *v = NULL;
    assert_int_equal(latup_vae_load(DEMO_VAE, &v), LATUP_OK);
    const latup_vae_config *c = latup_vae_get_config(v);
    assert_int_equal(c->encoder, LATUP_VAE_ENCODER_PATCH);
    assert_int_equal(c->enc_patch, 8);
    assert_true(c->has_decoder);
    printf("demo VAE: %s encoder, p %d, %d latent channels, %lld encoder and %lld decoder parameters\n",
           latup_vae_encoder_name(c->encoder), c->enc_patch, c->z_channels, (long long)c->enc_params,
           (long long)c->n_params);
    /* the demo image, top-left 256x256 (plus 5 odd pixels the encoder must drop), to [-1, 1] */
    latup_tensor png, img, z, rec;
    assert_int_equal(latup_png_read("ref_data/trained/demo_gt.png", &png), LATUP_OK);
    const int S = 261, Wp = (int)png.shape[2];
    const int64_t is[3] = {3, S, S};
    assert_int_equal(latup_tensor_alloc(&img, 3, is), LATUP_OK);
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++)
                img.data[((size_t)ch * S + y) * S + x] = 2.0f * png.data[((size_t)ch * png.shape[1] + y) * Wp + x] - 1.0f;
    assert_int_equal(latup_vae_encode(v, &img, &z, NULL), LATUP_OK);
    assert_true(z.ndim == 3 && z.shape[0] == 16 && z.shape[1] == 32 && z.shape[2] == 32);
    /* the naive 8x8 stride-8 conv in double, from the file's own tensors */
    latup_weights w = {0};
    assert_int_equal(latup_weights_load(DEMO_VAE, &w), LATUP_OK);
    const float *wt, *bs;
    const int64_t wsh[4] = {32, 3, 8, 8}, bsh[1] = {32};
    assert_int_equal(latup_weights_get(&w, "encoder.weight", 4, wsh, &wt), LATUP_OK);
    assert_int_equal(latup_weights_get(&w, "encoder.bias", 1, bsh, &bs), LATUP_OK);
    golden_stats st = {0};
    double *ref = malloc(sizeof(double) * 16 * 32 * 32);
    float *reff = malloc(sizeof(float) * 16 * 32 * 32);
    for (int co = 0; co < 16; co++)
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++) {
                double acc = bs[co];
                for (int ci = 0; ci < 3; ci++)
                    for (int ky = 0; ky < 8; ky++)
                        for (int kx = 0; kx < 8; kx++)
                            acc += (double)wt[((co * 3 + ci) * 8 + ky) * 8 + kx] *
                                   img.data[((size_t)ci * S + 8 * y + ky) * S + 8 * x + kx];
                ref[(co * 32 + y) * 32 + x] = acc;
                reff[(co * 32 + y) * 32 + x] = (float)acc;
            }
    golden_stats_add(&st, z.data, reff, 16 * 32 * 32);
    const int ok = golden_report("demo/patch", "mean vs naive 8x8 stride-8 conv", &st, 1e-6);
    free(ref), free(reff);
    latup_weights_free(&w);
    assert_true(ok);
    /* the round trip: decode the mean, PSNR against the 256x256 crop (pixels clamped to [0, 1]) */
    assert_int_equal(latup_vae_decode(v, &z, &rec, NULL), LATUP_OK);
    assert_true(rec.shape[1] == 256 && rec.shape[2] == 256);
    double se = 0;
    for (int ch = 0; ch < 3; ch++)
        for (int y = 0; y < 256; y++)
            for (int x = 0; x < 256; x++) {
                double r = (rec.data[((size_t)ch * 256 + y) * 256 + x] + 1.0) / 2.0;
                r = r < 0 ? 0 : r > 1 ? 1 : r;
                const double d = r - png.data[((size_t)ch * png.shape[1] + y) * Wp + x];
                se += d * d;
            }
    const double psnr = 10.0 * log10(1.0 / (se / (3.0 * 256 * 256)));
    /* the PyTorch reference (tools/train/models.py load_trained('vae'): its patch encoder's mean, the
     * diffusers decoder, the same crop and clamp, float64 PSNR), torch 1.13 / diffusers 0.31: 28.0389 dB */
    const double ref_psnr = 28.0389;
    printf("demo VAE round trip, demo_gt.png top-left 256x256: encode (mean) then decode, PSNR %.4f dB (float "
           "pixels clamped to [0,1]); PyTorch %.4f dB: %s\n", psnr, ref_psnr,
           fabs(psnr - ref_psnr) < 0.01 ? "within 0.01 dB OK" : "NOT OK");
    assert_true(fabs(psnr - ref_psnr) < 0.01);
    latup_tensor_free(&rec), latup_tensor_free(&z), latup_tensor_free(&img), latup_tensor_free(&png);
    latup_vae_free(v);
}

/* ---- progress, cancellation --------------------------------------------------------------------- */
typedef struct {
    int64_t calls, last, total, stop_at;
} prog;

static int on_prog(void *user, int64_t done, int64_t total) {
    prog *p = user;
    p->calls++;
    assert_true(done >= p->last && done <= total);
    p->last = done, p->total = total;
    return p->stop_at && done >= p->stop_at;
}

static void test_enc_progress(void **state) {
    (void)state;
    latup_vae *v = NULL;
    latup_weights g = {0};
    assert_int_equal(latup_vae_load("ref_data/vae/sd_small.ldm.safetensors.gz", &v), LATUP_OK);
    assert_int_equal(latup_safetensors_load("ref_data/vae/golden_enc_sd_small.safetensors", &g), LATUP_OK);
    latup_tensor img = golden_input(&g), z;
    prog p = {0};
    latup_encode_opts o = {.on_progress = on_prog, .progress_user = &p};
    assert_int_equal(latup_vae_encode(v, &img, &z, &o), LATUP_OK);
    printf("progress: %lld calls, done reached %lld of %lld\n", (long long)p.calls, (long long)p.last,
           (long long)p.total);
    assert_true(p.calls >= 3 && p.last == p.total);
    latup_tensor_free(&z);
    p = (prog){.stop_at = 1};
    assert_int_equal(latup_vae_encode(v, &img, &z, &o), LATUP_E_CANCELLED);
    printf("cancelled after step 1: %s\n", latup_last_error());
    assert_null(z.data);
    o.tile = 4, o.overlap = 1, p = (prog){.stop_at = 2};
    assert_int_equal(latup_vae_encode(v, &img, &z, &o), LATUP_E_CANCELLED);
    assert_null(z.data);
    latup_weights_free(&g);
    latup_vae_free(v);
}

/* ---- loader and argument errors ----------------------------------------------------------------- */
/* w written to a fresh temporary file (path[] receives its name) */
static void write_tmp(latup_weights *w, char *path, size_t n) {
    assert_int_equal(wg_tmpfile(path, n), 0);
    assert_int_equal(latup_safetensors_write(path, w), LATUP_OK);
}

/* A copy of the SD file without the tensors whose names start with `drop` (NULL: none). */
static void write_without(const char *src, const char *drop, char *path, size_t n) {
    latup_weights w = {0};
    assert_int_equal(latup_weights_load(src, &w), LATUP_OK);
    assert_int_equal(latup_weights_fetch_all(&w), LATUP_OK);
    int k = 0;
    for (int i = 0; i < w.n; i++) {
        if (drop && !strncmp(w.t[i].name, drop, strlen(drop))) continue;
        latup_wtensor t = w.t[k];
        w.t[k++] = w.t[i];
        w.t[i] = t;
    }
    const int n_all = w.n;
    w.n = k;
    write_tmp(&w, path, n);
    w.n = n_all;
    latup_weights_free(&w);
}

static void test_enc_errors(void **state) {
    (void)state;
    const char *SD = "ref_data/vae/sd_small.ldm.safetensors.gz";
    char path[512];
    latup_vae *v = NULL;
    latup_tensor z = {0};
    /* a missing encoder tensor, named; latup_vae_load too (the encoder counts as held) */
    write_without(SD, "encoder.mid.attn_1.k.", path, sizeof path);
    assert_int_equal(latup_vae_load_parts(path, LATUP_VAE_ENCODER, &v), LATUP_E_INPUT);
    printf("missing tensor: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "encoder.mid.attn_1.k.weight"));
    assert_int_equal(latup_vae_load(path, &v), LATUP_E_INPUT);
    assert_null(v);
    unlink(path);
    /* a file with the decoder only */
    write_without(SD, "encoder.", path, sizeof path);
    assert_int_equal(latup_vae_load_parts(path, LATUP_VAE_ENCODER, &v), LATUP_E_INPUT);
    printf("no encoder: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "no VAE encoder"));
    assert_int_equal(latup_vae_load_parts(path, LATUP_VAE_DECODER | LATUP_VAE_ENCODER, &v), LATUP_E_INPUT);
    assert_int_equal(latup_vae_load(path, &v), LATUP_OK); /* the decoder alone is a VAE */
    assert_int_equal(latup_vae_get_config(v)->encoder, LATUP_VAE_ENCODER_NONE);
    latup_tensor img;
    const int64_t is[3] = {3, 16, 16};
    assert_int_equal(latup_tensor_alloc(&img, 3, is), LATUP_OK);
    assert_int_equal(latup_vae_encode(v, &img, &z, NULL), LATUP_E_USAGE);
    printf("encode without an encoder: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "without an encoder"));
    latup_vae_free(v);
    unlink(path);
    /* encoder-only and decoder-only loads hold only their part; the decode of an encoder-only load refuses */
    latup_vae *both = NULL, *dec = NULL, *enc = NULL;
    assert_int_equal(latup_vae_load(SD, &both), LATUP_OK);
    assert_int_equal(latup_vae_load_parts(SD, LATUP_VAE_DECODER, &dec), LATUP_OK);
    assert_int_equal(latup_vae_load_parts(SD, LATUP_VAE_ENCODER, &enc), LATUP_OK);
    const latup_vae_config *cb = latup_vae_get_config(both), *cd = latup_vae_get_config(dec), *ce = latup_vae_get_config(enc);
    printf("parameters: both %lld + %lld, decoder-only %lld + %lld, encoder-only %lld + %lld (decoder + encoder)\n",
           (long long)cb->n_params, (long long)cb->enc_params, (long long)cd->n_params, (long long)cd->enc_params,
           (long long)ce->n_params, (long long)ce->enc_params);
    assert_true(cb->n_params == cd->n_params && cb->enc_params == ce->enc_params && cd->enc_params == 0 &&
                ce->n_params == 0 && cb->has_decoder && cd->has_decoder && !ce->has_decoder);
    assert_int_equal(cd->encoder, LATUP_VAE_ENCODER_NONE);
    assert_int_equal(ce->z_channels, 4);
    latup_decode_plan dpd, dpe, dpb;
    assert_int_equal(latup_vae_plan_decode(dec, 4, 4, NULL, &dpd), LATUP_OK);
    assert_int_equal(latup_vae_plan_decode(both, 4, 4, NULL, &dpb), LATUP_OK);
    assert_int_equal(latup_vae_plan_encode(enc, 16, 16, NULL, &dpe), LATUP_OK);
    printf("peak of a 4x4 decode: %.1f KiB with the whole VAE loaded, %.1f KiB with the decoder alone (the encoder's "
           "tensors never fetched)\n", (double)dpb.peak / 1024.0, (double)dpd.peak / 1024.0);
    assert_true(dpb.peak - dpd.peak == (size_t)cb->enc_params * sizeof(float)); /* F16 file: fp32 copies */
    latup_tensor zl, out;
    const int64_t zs[3] = {4, 4, 4};
    assert_int_equal(latup_tensor_alloc(&zl, 3, zs), LATUP_OK);
    assert_int_equal(latup_vae_decode(enc, &zl, &out, NULL), LATUP_E_USAGE);
    printf("decode without the decoder: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "VAE loaded without its decoder"));
    assert_null(out.data);
    latup_tensor_free(&zl);
    /* an image smaller than f in a side: named; wrong channels; NaN; CUDA */
    latup_tensor small;
    const int64_t ss[3] = {3, 1, 16};
    assert_int_equal(latup_tensor_alloc(&small, 3, ss), LATUP_OK);
    assert_int_equal(latup_vae_encode(enc, &small, &z, NULL), LATUP_E_INPUT);
    printf("small image: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "16x1"));
    latup_tensor_free(&small);
    latup_tensor four;
    const int64_t fs[3] = {4, 16, 16};
    assert_int_equal(latup_tensor_alloc(&four, 3, fs), LATUP_OK);
    assert_int_equal(latup_vae_encode(enc, &four, &z, NULL), LATUP_E_INPUT);
    printf("4 channels: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "[4,16,16]"));
    latup_tensor_free(&four);
    img.data[7] = NAN;
    assert_int_equal(latup_vae_encode(enc, &img, &z, NULL), LATUP_E_INPUT);
    printf("NaN: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "input image contains NaN at flat index 7"));
    img.data[7] = 0;
    latup_encode_opts cu = {.device = LATUP_DEVICE_CUDA};
    assert_int_equal(latup_vae_encode(enc, &img, &z, &cu), LATUP_E_DEVICE);
    printf("CUDA: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "CPU only"));
    latup_encode_opts bt = {.tile = 2};
    assert_int_equal(latup_vae_encode(enc, &img, &z, &bt), LATUP_E_USAGE);
    latup_tensor_free(&img);
    latup_vae_free(both), latup_vae_free(dec), latup_vae_free(enc);
    /* the encoder's latent channels must be the decoder's: conv_out (and quant_conv) of 6 channels */
    latup_weights w = {0};
    assert_int_equal(latup_weights_load(SD, &w), LATUP_OK);
    assert_int_equal(latup_weights_fetch_all(&w), LATUP_OK);
    static const char *shrink[] = {"encoder.conv_out.weight", "encoder.conv_out.bias", "quant_conv.bias"};
    for (size_t i = 0; i < 3; i++) {
        latup_wtensor *t = (latup_wtensor *)latup_weights_find(&w, shrink[i]);
        assert_non_null(t);
        t->numel = t->numel / t->shape[0] * 6, t->shape[0] = 6;
    }
    latup_wtensor *q = (latup_wtensor *)latup_weights_find(&w, "quant_conv.weight"); /* [8,8,1,1] -> [6,6,1,1] */
    for (int r = 0; r < 6; r++)
        for (int col = 0; col < 6; col++) q->f32[r * 6 + col] = q->f32[r * 8 + col];
    q->shape[0] = q->shape[1] = 6, q->numel = 36;
    write_tmp(&w, path, sizeof path);
    latup_weights_free(&w);
    assert_int_equal(latup_vae_load(path, &v), LATUP_E_INPUT);
    printf("zc mismatch: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "encoder.conv_out.weight"));
    assert_non_null(strstr(latup_last_error(), "3 latent channels, the decoder takes 4"));
    assert_int_equal(latup_vae_load_parts(path, LATUP_VAE_ENCODER, &v), LATUP_OK); /* alone it is an encoder */
    assert_int_equal(latup_vae_get_config(v)->z_channels, 3);
    latup_vae_free(v);
    unlink(path);
    /* latup_latent_from_vae inverts latup_latent_to_vae */
    latup_tensor x;
    const int64_t xs[1] = {5};
    assert_int_equal(latup_tensor_alloc(&x, 1, xs), LATUP_OK);
    for (int i = 0; i < 5; i++) x.data[i] = (float)i - 2.0f;
    const latup_latent_family *fl = latup_latent_family_find("flux");
    latup_latent_from_vae(&x, fl);
    assert_true(fabs(x.data[4] - (2.0 - 0.1159) * 0.3611) < 1e-6);
    latup_latent_to_vae(&x, fl);
    for (int i = 0; i < 5; i++) assert_true(fabs(x.data[i] - ((float)i - 2.0f)) < 1e-6);
    latup_tensor_free(&x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enc_small_all_namings),
        cmocka_unit_test(test_enc_negative_control),
        cmocka_unit_test(test_enc_real_widths),
        cmocka_unit_test(test_enc_sample),
        cmocka_unit_test(test_enc_tiled),
        cmocka_unit_test(test_enc_patch),
        cmocka_unit_test(test_enc_progress),
        cmocka_unit_test(test_enc_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
