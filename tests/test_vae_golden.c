/* test_vae_golden.c — the VAE decoder against diffusers' AutoencoderKL, block by block: the
 * SD-style (4 channels, post_quant_conv) and FLUX-style (16 channels) cases in every naming
 * (ldm flat, ldm under first_stage_model., diffusers, old diffusers attention names, .pth), the
 * real channel widths with generated weights, tiled vs exact decoding, and loader errors. */
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
 * Same rule as LUA: max|c - ref| <= tol * max|ref|. `measured` is the worst over all VAE cases and
 * namings (1 and 2 threads) when the value was set; tol is about 5x that, rounded up. diffusers'
 * own fp32 forward differs from fp64 by up to 4e-6 x max|ref| (fp64_maxabs in the golden files). */
static const golden_tol VAE_TOLS[] = {
    {"post_quant_conv", 2e-6, 0.0, "1x1 conv, K = zc = 4: exact here"},
    {"conv_in", 2e-6, 4.2e-7, "3x3 conv, K = 9 zc"},
    {".norm1", 2e-6, 4.0e-7, "GroupNorm, double statistics"},
    {".conv1", 4e-6, 5.7e-7, "GroupNorm + SiLU fused into a 3x3 conv"},
    {".norm", 2e-6, 4.3e-7, "the attention's GroupNorm"},
    {".q", 4e-6, 6.7e-7, "1x1 projection"},
    {".k", 4e-6, 5.9e-7, "1x1 projection"},
    {".v", 4e-6, 6.6e-7, "1x1 projection"},
    {".attn", 6e-6, 1.3e-6, "blocked online softmax vs diffusers' baddbmm + softmax"},
    {"norm_out", 6e-6, 1.1e-6, "GroupNorm + SiLU after all up levels"},
    {"", 2e-5, 4.0e-6, "resnet, attention and upsample outputs and the image: rounding grows "
                       "through the up levels, most at the real widths (the issue's bound)"},
};

static const golden_tol *vae_tol_for(const char *name) {
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof VAE_TOLS / sizeof VAE_TOLS[0]; i++) {
        size_t k = strlen(VAE_TOLS[i].suffix);
        if (k <= n && strcmp(name + n - k, VAE_TOLS[i].suffix) == 0) return &VAE_TOLS[i];
    }
    return &VAE_TOLS[sizeof VAE_TOLS / sizeof VAE_TOLS[0] - 1];
}

/* ---- one golden file against one weights file ---------------------------------------------------- */
/* band_rows > 0: every conv runs in bands of at most that many rows (latup_decode_opts.conv_band_rows). */
static int run_vae_case(const char *casename, const char *vae_path, const char *golden_path, int band_rows,
                        int *lines) {
    latup_vae *v = NULL;
    latup_weights g = {0};
    latup_status st = latup_vae_load(vae_path, &v);
    if (st != LATUP_OK) printf("load %s: %s\n", vae_path, latup_last_error());
    assert_int_equal(st, LATUP_OK);
    assert_int_equal(latup_safetensors_load(golden_path, &g), LATUP_OK);
    const latup_wtensor *in = latup_weights_find(&g, "input");
    assert_non_null(in);
    latup_tensor z = {.data = in->f32, .ndim = 4}, img;
    memcpy(z.shape, in->shape, sizeof z.shape);
    golden_cmp c;
    golden_cmp_init(&c, &g, (int)in->shape[0]);
    latup_decode_opts o = {.dump = golden_compare_dump, .dump_user = &c, .conv_band_rows = band_rows};
    assert_int_equal(latup_vae_decode(v, &z, &img, &o), LATUP_OK);
    char name[48];
    snprintf(name, sizeof name, band_rows ? "%s/b%d" : "%s", casename, band_rows);
    int bad = golden_cmp_report(&c, name, vae_tol_for, lines);
    golden_cmp_free(&c);
    latup_tensor_free(&img);
    latup_weights_free(&g);
    latup_vae_free(v);
    return bad;
}

static void test_vae_small_all_namings(void **state) {
    (void)state;
    static const char *cases[][3] = {
        {"sd/ldm", "ref_data/vae/sd_small.ldm.safetensors.gz", "ref_data/vae/golden_sd_small.safetensors"},
        {"sd/prefixed", "ref_data/vae/sd_small.ldm_prefixed.safetensors.gz", "ref_data/vae/golden_sd_small.safetensors"},
        {"sd/diffusers", "ref_data/vae/sd_small.diffusers.safetensors.gz", "ref_data/vae/golden_sd_small.safetensors"},
        {"sd/diff-old", "ref_data/vae/sd_small.diffusers_old.safetensors.gz", "ref_data/vae/golden_sd_small.safetensors"},
        {"sd/ldm.pth", "ref_data/vae/sd_small.ldm.pth.gz", "ref_data/vae/golden_sd_small.safetensors"},
        {"flux/ldm", "ref_data/vae/flux_small.ldm.safetensors.gz", "ref_data/vae/golden_flux_small.safetensors"},
        {"flux/diffusers", "ref_data/vae/flux_small.diffusers.safetensors.gz", "ref_data/vae/golden_flux_small.safetensors"},
    };
    int bad = 0, lines = 0;
    latup_set_threads(2);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bad += run_vae_case(cases[i][0], cases[i][1], cases[i][2], 0, &lines);
    /* again with bands of one row: the golden latents are 4 to 8 rows high, so every conv splits
     * into at least 4 bands; the tolerances stay the same */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bad += run_vae_case(cases[i][0], cases[i][1], cases[i][2], 1, &lines);
    latup_set_threads(1);
    bad += run_vae_case("sd/ldm 1thr", cases[0][1], cases[0][2], 0, &lines);
    latup_set_threads(2);
    printf("vae golden: %d tensors compared, %d NOT OK\n", lines, bad);
    assert_true(lines >= 100);
    assert_int_equal(bad, 0);
}

/* ---- the real widths: weights from the generator in the golden file's metadata -------------------- */
/* ---- tiled decoding: the error against the exact decode is measured and bounded ------------------- */
static double tiled_error(const latup_vae *v, const latup_tensor *z, const latup_tensor *exact, int tile, int overlap) {
    latup_decode_opts o = {.tile = tile, .overlap = overlap};
    latup_tensor t;
    assert_int_equal(latup_vae_decode(v, z, &t, &o), LATUP_OK);
    double m = 0, r = 0;
    for (int64_t i = 0; i < latup_tensor_numel(exact); i++) {
        m = fmax(m, fabs((double)t.data[i] - exact->data[i]));
        r = fmax(r, fabs((double)exact->data[i]));
    }
    latup_tensor_free(&t);
    return m / r;
}

static void test_vae_real_widths(void **state) {
    (void)state;
    const char *gpath = "ref_data/vae/golden_real_widths.safetensors";
    char path[512];
    assert_true(wg_generate_tmp(gpath, path, sizeof path) > 0);
    int lines = 0;
    int bad = run_vae_case("vae/real", path, gpath, 0, &lines);
    bad += run_vae_case("vae/real", path, gpath, 1, &lines);
    latup_vae *v = NULL;
    assert_int_equal(latup_vae_load(path, &v), LATUP_OK);
    const latup_vae_config *c = latup_vae_get_config(v);
    printf("real widths: %lld decoder parameters, channels [%d,%d,%d,%d]\n", (long long)c->n_params,
           c->channels[0], c->channels[1], c->channels[2], c->channels[3]);
    assert_int_equal(c->n_params, 49545475); /* the spec's SD3/FLUX decoder count */
    /* a batch of two 16x12 latents (16x12: the size whose GroupNorm+SiLU conv band is the
     * largest scratch, which the plan once undersized): each image of the batch must equal its
     * own decode bit for bit; then tiled vs exact, 2x2 tiles of 10 with overlap 4 */
    latup_tensor z, exact, one;
    int64_t zs[4] = {2, 16, 16, 12};
    assert_int_equal(latup_tensor_alloc(&z, 4, zs), LATUP_OK);
    uint64_t r = 12345;
    for (int64_t i = 0; i < latup_tensor_numel(&z); i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        z.data[i] = (float)((double)(r >> 11) * 0x1.0p-53 * 2.0 - 1.0);
    }
    latup_decode_opts o = {0};
    assert_int_equal(latup_vae_decode(v, &z, &exact, &o), LATUP_OK);
    latup_tensor z1 = {.data = z.data + 16 * 16 * 12, .ndim = 3, .shape = {16, 16, 12}};
    assert_int_equal(latup_vae_decode(v, &z1, &one, &o), LATUP_OK);
    const size_t img = (size_t)latup_tensor_numel(&one);
    const int same = memcmp(exact.data + img, one.data, img * sizeof(float)) == 0;
    printf("real widths, batch of 2 (16x12): image 1 of the batch vs decoded alone: %s\n",
           same ? "bit-identical OK" : "DIFFERENT NOT OK");
    assert_true(same);
    latup_tensor_free(&one);
    double e = tiled_error(v, &z, &exact, 10, 4);
    printf("real widths, 16x12 latents, tiles of 10 overlap 4: max |tiled - exact| / max|exact| = %.3e\n", e);
    assert_true(e > 0 && e < 1.5);
    latup_tensor_free(&z);
    latup_tensor_free(&exact);
    latup_vae_free(v);
    unlink(path);
    assert_int_equal(bad, 0);
}

static void test_vae_tiled(void **state) {
    (void)state;
    latup_vae *v = NULL;
    latup_weights g = {0};
    assert_int_equal(latup_vae_load("ref_data/vae/flux_small.ldm.safetensors.gz", &v), LATUP_OK);
    assert_int_equal(latup_safetensors_load("ref_data/vae/golden_flux_small.safetensors", &g), LATUP_OK);
    const latup_wtensor *in = latup_weights_find(&g, "input");
    latup_tensor z = {.data = in->f32, .ndim = 4}, exact;
    memcpy(z.shape, in->shape, sizeof z.shape);
    latup_decode_opts o = {0};
    assert_int_equal(latup_vae_decode(v, &z, &exact, &o), LATUP_OK);
    /* a tile covering the latent is the exact decode, bit for bit */
    double e0 = tiled_error(v, &z, &exact, 8, 2);
    printf("tile 8 on an 8x6 latent (one tile): max |tiled - exact| / max|exact| = %.3e\n", e0);
    assert_true(e0 == 0.0);
    /* real tiles: an approximation (GroupNorm statistics and the all-positions attention become
     * per tile). With random weights the decoder is as non-local as it gets, so the error is
     * large and spread over the whole image (docs/vae.md); what must hold: bigger tiles with
     * more overlap get closer to the exact decode, and nothing blows up */
    double e1 = tiled_error(v, &z, &exact, 4, 2), e2 = tiled_error(v, &z, &exact, 6, 3);
    printf("tile 4 overlap 2: %.3e; tile 6 overlap 3: %.3e (max |tiled - exact| / max|exact|)\n", e1, e2);
    assert_true(e1 > 0 && e1 < 1.5);
    assert_true(e2 > 0 && e2 < e1);
    latup_tensor_free(&exact);
    latup_weights_free(&g);
    latup_vae_free(v);
}

/* ---- tiled decoding against the PyTorch reference's tiled decode ------------------------------------
 * tools/golden/make_tiled_golden.py decodes tile by tile with diffusers and blends with latup's rule (the
 * tiling, the ramps over ov * f image pixels, the fp32 weighted sum and division): the C tiled
 * decode must match it at the image tolerance, which pins down the tile origins, the ramp widths
 * and the blending, not just "close to the exact decode". */
static void test_vae_tiled_golden(void **state) {
    (void)state;
    latup_weights g = {0};
    assert_int_equal(latup_safetensors_load("ref_data/vae/golden_tiled.safetensors", &g), LATUP_OK);
    const char *cases = latup_weights_meta(&g, "cases");
    assert_non_null(cases);
    latup_json_doc doc;
    assert_int_equal(latup_json_parse(cases, strlen(cases), 1u << 16, &doc), LATUP_OK);
    char gen[512];
    assert_true(wg_generate_tmp("ref_data/vae/golden_real_widths.safetensors", gen, sizeof gen) > 0);
    int bad = 0, lines = 0;
    latup_set_threads(2);
    for (const latup_json *cs = doc.root->u.kids.first; cs; cs = cs->next) {
        const char *name = NULL;
        int tile = 0, overlap = 0;
        for (const latup_json *f = cs->u.kids.first; f; f = f->next) {
            if (!strcmp(f->key, "case")) name = f->u.str.s;
            if (!strcmp(f->key, "tile")) tile = (int)f->u.i;
            if (!strcmp(f->key, "overlap")) overlap = (int)f->u.i;
        }
        assert_true(name && tile > 0 && overlap > 0);
        latup_vae *v = NULL;
        assert_int_equal(latup_vae_load(strcmp(name, "flux_small") ? gen : "ref_data/vae/flux_small.ldm.safetensors.gz", &v),
                         LATUP_OK);
        char k[96];
        snprintf(k, sizeof k, "%s/input", name);
        const latup_wtensor *in = latup_weights_find(&g, k);
        snprintf(k, sizeof k, "%s/out", name);
        const latup_wtensor *ref = latup_weights_find(&g, k);
        assert_true(in && ref);
        latup_tensor z = {.data = in->f32, .ndim = 4}, img;
        memcpy(z.shape, in->shape, sizeof z.shape);
        latup_decode_opts o = {.tile = tile, .overlap = overlap};
        latup_decode_plan dp;
        assert_int_equal(latup_vae_plan_decode(v, (int)z.shape[2], (int)z.shape[3], &o, &dp), LATUP_OK);
        assert_true(dp.tiled && dp.tile == tile && dp.overlap == overlap);
        assert_int_equal(latup_vae_decode(v, &z, &img, &o), LATUP_OK);
        assert_int_equal(latup_tensor_numel(&img), ref->numel);
        golden_stats st = {0};
        golden_stats_add(&st, img.data, ref->f32, (size_t)ref->numel);
        snprintf(k, sizeof k, "tiled out (tiles %d, overlap %d)", tile, overlap);
        bad += !golden_report(name, k, &st, vae_tol_for("out")->tol);
        lines++;
        latup_tensor_free(&img);
        latup_vae_free(v);
    }
    unlink(gen);
    latup_json_free(&doc);
    latup_weights_free(&g);
    assert_int_equal(lines, 2);
    assert_int_equal(bad, 0);
}

/* ---- the memory budget: auto-tiling keeps the whole decode (weights, input, output, arena) under
 * max_memory, measured as the peak RSS of a child process that decodes; a budget no tile can meet
 * is an error naming the smallest one that works. */
/* The process's resident set (VmRSS) and its peak (VmHWM) in KiB; writing 5 to clear_refs resets
 * the peak to the current size (Linux 4.0+), so a peak can be taken over one call. */
static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) v = atol(line + strlen(key) + 1);
    if (f) fclose(f);
    return v;
}

static int reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return 0;
    const int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}

static void test_vae_budget(void **state) {
    (void)state;
    char path[512];
    assert_true(wg_generate_tmp("ref_data/vae/golden_real_widths.safetensors", path, sizeof path) > 0);
    latup_vae *v = NULL;
    assert_int_equal(latup_vae_load(path, &v), LATUP_OK);
    latup_tensor z;
    const int64_t zs[4] = {1, 16, 40, 36};
    assert_int_equal(latup_tensor_alloc(&z, 4, zs), LATUP_OK);
    wg_input(z.data, latup_tensor_numel(&z), "budget", 5);
    latup_decode_plan exact, tiled;
    assert_int_equal(latup_vae_plan_decode(v, 40, 36, NULL, &exact), LATUP_OK);
    assert_false(exact.tiled);
    /* half of what the exact decode needs beyond the weights */
    const size_t budget = exact.plan.mem.weights + (exact.peak - exact.plan.mem.weights) / 2;
    latup_decode_opts o = {.max_memory = budget};
    assert_int_equal(latup_vae_plan_decode(v, 40, 36, &o, &tiled), LATUP_OK);
    printf("budget: exact decode needs %.1f MiB; a budget of %.1f MiB tiles %d with overlap %d, planned peak %.1f MiB "
           "(%s)\n", exact.peak / 1048576.0, budget / 1048576.0, tiled.tile, tiled.overlap, tiled.peak / 1048576.0,
           tiled.reason);
    assert_true(tiled.tiled && tiled.peak <= budget && strstr(tiled.reason, "budget"));
    /* the planned peak holds the output image: less room for tiles than without it */
    assert_true(tiled.peak >= tiled.plan.mem.arena + tiled.plan.mem.weights + (size_t)3 * 320 * 288 * 4);
    /* measured: the growth of this process's peak resident set over the decode (the weights and
     * the input are resident before it starts; the output image and the arena are what it adds) */
    assert_true(reset_peak_rss()); /* cannot measure: fail, never pass unmeasured */
    const long before = status_kb("VmRSS");
    latup_tensor img0;
    assert_int_equal(latup_vae_decode(v, &z, &img0, &o), LATUP_OK);
    const long peak = status_kb("VmHWM");
    latup_tensor_free(&img0);
    const double used = (double)(peak - before) * 1024.0;
    const double room = (double)budget - (double)tiled.plan.mem.weights - (double)latup_tensor_numel(&z) * 4;
    printf("budget: the decode raised the peak resident set by %.1f MiB (from %.1f MiB); the budget leaves %.1f MiB "
           "beyond the weights and the input: %s\n", used / 1048576.0, before / 1024.0, room / 1048576.0,
           used <= room ? "OK" : "NOT OK");
    assert_true(used > 0 && used <= room);
    /* a budget that only the weights would fill: refused, naming the smallest budget that works */
    latup_decode_opts tiny = {.max_memory = tiled.plan.mem.weights};
    assert_int_equal(latup_vae_plan_decode(v, 40, 36, &tiny, &tiled), LATUP_E_NOMEM);
    printf("budget too small: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "cannot be met"));
    assert_non_null(strstr(latup_last_error(), "smallest tiles"));
    latup_tensor img;
    assert_int_equal(latup_vae_decode(v, &z, &img, &tiny), LATUP_E_NOMEM);
    assert_null(img.data);
    latup_tensor_free(&z);
    latup_vae_free(v);
    unlink(path);
}

/* ---- loader errors ---------------------------------------------------------------------------------- */
static void test_vae_load_errors(void **state) {
    (void)state;
    latup_weights w = {0};
    assert_int_equal(latup_safetensors_load("ref_data/vae/sd_small.diffusers.safetensors.gz", &w), LATUP_OK);
    latup_wtensor *t = (latup_wtensor *)latup_weights_find(&w, "decoder.mid_block.attentions.0.to_k.weight");
    assert_non_null(t);
    t->shape[0] -= 1, t->numel -= t->shape[1]; /* [63,64] */
    char path[] = "/tmp/latup_vae_bad_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    assert_int_equal(latup_safetensors_write(path, &w), LATUP_OK);
    latup_vae *v = NULL;
    assert_int_equal(latup_vae_load(path, &v), LATUP_E_INPUT);
    printf("vae load error: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "decoder.mid_block.attentions.0.to_k.weight"));
    assert_non_null(strstr(latup_last_error(), "[63,64]"));
    unlink(path);
    latup_weights_free(&w);
    /* a LUA checkpoint is not a VAE */
    assert_int_equal(latup_vae_load("ref_data/small/model.safetensors.gz", &v), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "not a VAE"));
    /* wrong latent channels */
    assert_int_equal(latup_vae_load("ref_data/vae/flux_small.ldm.safetensors.gz", &v), LATUP_OK);
    latup_tensor z, img;
    int64_t s[3] = {4, 8, 8};
    assert_int_equal(latup_tensor_alloc(&z, 3, s), LATUP_OK);
    assert_int_equal(latup_vae_decode(v, &z, &img, NULL), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "16"));
    latup_tensor_free(&z);
    latup_vae_free(v);
}

/* ---- the encoder's weights: the C generator (weightgen.h) against Python's (vae_ref.gen_tensor) ------
 * golden_enc_<case>.safetensors lists every encoder tensor (and quant_conv) with its checksum; the
 * C twin regenerates each one (sum and first values must match), and for the small cases every
 * value must equal the committed ldm weight file's (which Python's generator wrote), for every
 * encoder name kind: conv_in/out, resnet norms and convs, nin_shortcut, downsample, attention,
 * norm_out, quant_conv. */
static void test_vae_encoder_generator(void **state) {
    (void)state;
    static const char *cases[][2] = {
        {"ref_data/vae/golden_enc_sd_small.safetensors", "ref_data/vae/sd_small.ldm.safetensors.gz"},
        {"ref_data/vae/golden_enc_flux_small.safetensors", "ref_data/vae/flux_small.ldm.safetensors.gz"},
        {"ref_data/vae/golden_enc_real_widths.safetensors", NULL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[512];
        const int n = wg_generate_tmp(cases[c][0], path, sizeof path);
        assert_true(n > 0);
        latup_weights gen = {0};
        assert_int_equal(latup_safetensors_load(path, &gen), LATUP_OK);
        assert_int_equal(latup_weights_fetch_all(&gen), LATUP_OK);
        int kinds = 0, quant = 0;
        for (int i = 0; i < gen.n; i++) {
            kinds += strncmp(gen.t[i].name, "encoder.", 8) == 0;
            quant += strncmp(gen.t[i].name, "quant_conv.", 11) == 0;
        }
        assert_int_equal(kinds + quant, gen.n); /* encoder tensors only */
        if (cases[c][1]) {
            latup_weights ref = {0};
            assert_int_equal(latup_safetensors_load(cases[c][1], &ref), LATUP_OK);
            int64_t values = 0, differ = 0;
            for (int i = 0; i < gen.n; i++) {
                latup_wtensor *r = (latup_wtensor *)latup_weights_find(&ref, gen.t[i].name);
                assert_non_null(r);
                assert_int_equal(latup_weights_fetch(&ref, r), LATUP_OK);
                assert_int_equal(r->numel, gen.t[i].numel);
                for (int64_t k = 0; k < r->numel; k++) differ += r->f32[k] != gen.t[i].f32[k];
                values += r->numel;
            }
            printf("encoder generator: %d tensors (%d quant_conv), %lld values; vs %s (Python's generator): "
                   "%lld differ %s\n", gen.n, quant, (long long)values, cases[c][1], (long long)differ,
                   differ ? "NOT OK" : "OK");
            assert_int_equal(differ, 0);
            latup_weights_free(&ref);
        } else {
            printf("encoder generator: %d tensors at the real widths, checksums OK\n", gen.n);
        }
        latup_weights_free(&gen);
        unlink(path);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vae_small_all_namings),
        cmocka_unit_test(test_vae_real_widths),
        cmocka_unit_test(test_vae_tiled),
        cmocka_unit_test(test_vae_tiled_golden),
        cmocka_unit_test(test_vae_budget),
        cmocka_unit_test(test_vae_load_errors),
        cmocka_unit_test(test_vae_encoder_generator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
