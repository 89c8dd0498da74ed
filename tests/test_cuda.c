/* test_cuda.c — the CUDA path on a GPU, tensor by tensor through the dump callback: against the
 * committed PyTorch golden data and against the CPU path, at the CPU tests' tolerances (golden.h;
 * the VAE's below). Cases: every LUA/SwinIR golden case (both heads, batch 2), the same with a
 * tiny scratch budget so every conv splits into bands and every attention into blocks, the
 * released widths at 64x64 for x2 and x4 (seeded random weights), the VAE golden cases, the
 * real-width VAE (weights generated from the golden file's spec) exact and tiled, the plans of
 * both devices under memory budgets (the same tiles, peaks and refusals; the tiled decodes
 * compared), input errors, and the progress callback's steps (the CPU pass's, one by one). Built only with CUDA=1. Without a CUDA device it prints one line and exits 77, which
 * the test runner reports as NOT RUN and counts against the suite: it is not a pass.
 * Built with -DLATUP_CUDA_EMU and tests/support/cuda_emu.c it is test_cuda_emu: the same comparisons on an
 * emulated device (kernels and products on the CPU), at 32x32 for the released widths. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gen_models.h"
#include "golden.h"
#include "latup.h"
#include "model/device.h"

#define NOT_RUN 77

/* The VAE tolerances of tests/test_vae_golden.c (VAE_TOLS there, measured on the CPU path; see
 * that file and docs/testing.md for the measurements). A copy until the table moves into
 * golden.h; keep the two equal. */
static const golden_tol GPU_VAE_TOLS[] = {
    {"post_quant_conv", 2e-6, 0.0, "1x1 conv"},
    {"conv_in", 2e-6, 4.2e-7, "3x3 conv, K = 9 zc"},
    {".norm1", 2e-6, 4.0e-7, "GroupNorm, double statistics"},
    {".conv1", 4e-6, 5.7e-7, "GroupNorm + SiLU fused into a 3x3 conv"},
    {".norm", 2e-6, 4.3e-7, "the attention's GroupNorm"},
    {".q", 4e-6, 6.7e-7, "1x1 projection"},
    {".k", 4e-6, 5.9e-7, "1x1 projection"},
    {".v", 4e-6, 6.6e-7, "1x1 projection"},
    {".attn", 6e-6, 1.3e-6, "attention"},
    {"norm_out", 6e-6, 1.1e-6, "GroupNorm + SiLU after all up levels"},
    {"", 2e-5, 4.0e-6, "resnet, attention and upsample outputs and the image"},
};

static const golden_tol *vae_tol_for(const char *name) {
    const size_t n = strlen(name), nt = sizeof GPU_VAE_TOLS / sizeof GPU_VAE_TOLS[0];
    for (size_t i = 0; i < nt; i++) {
        const size_t k = strlen(GPU_VAE_TOLS[i].suffix);
        if (k <= n && strcmp(name + n - k, GPU_VAE_TOLS[i].suffix) == 0) return &GPU_VAE_TOLS[i];
    }
    return &GPU_VAE_TOLS[nt - 1];
}

static int g_lines, g_bad;

/* ---- the CPU run's dumps, kept as a golden table (batch-major, [B, ...]) ------------------------ */
typedef struct {
    latup_weights w;
    int cap, B;
} recorder;

static void record(void *user, const char *name, const latup_tensor *t, int b) {
    recorder *r = user;
    const size_t n = (size_t)latup_tensor_numel(t);
    latup_wtensor *e = (latup_wtensor *)latup_weights_find(&r->w, name);
    if (!e) {
        if (r->w.n == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 64;
            r->w.t = realloc(r->w.t, (size_t)r->cap * sizeof *r->w.t);
            assert_non_null(r->w.t);
        }
        e = &r->w.t[r->w.n++];
        memset(e, 0, sizeof *e);
        e->name = strdup(name);
        e->dtype = LATUP_DT_F32;
        e->ndim = t->ndim + 1;
        e->shape[0] = r->B;
        for (int d = 0; d < t->ndim; d++) e->shape[d + 1] = t->shape[d];
        e->numel = (int64_t)(n * (size_t)r->B);
        e->f32 = malloc(n * (size_t)r->B * sizeof(float));
        assert_non_null(e->f32);
        for (size_t i = 0; i < n * (size_t)r->B; i++) e->f32[i] = NAN;
    }
    assert_true((size_t)e->numel == n * (size_t)r->B && b < r->B);
    memcpy(e->f32 + (size_t)b * n, t->data, n * sizeof(float));
}

static void recorder_free(recorder *r) {
    for (int i = 0; i < r->w.n; i++) free(r->w.t[i].name), free(r->w.t[i].f32);
    free(r->w.t);
    memset(r, 0, sizeof *r);
}

/* one GPU run compared with two references at once */
typedef struct {
    golden_cmp *golden, *cpu;
} tee;

static void tee_dump(void *user, const char *name, const latup_tensor *t, int b) {
    tee *x = user;
    if (x->golden) golden_compare_dump(x->golden, name, t, b);
    if (x->cpu) golden_compare_dump(x->cpu, name, t, b);
}

static void report(golden_cmp *c, const char *casename, const golden_tol *(*tol_for)(const char *)) {
    g_bad += golden_cmp_report(c, casename, tol_for, &g_lines);
}

/* GPU against CPU: each path is held within a golden tolerance of PyTorch, so the two may differ by
 * twice it (the CPU's Winograd F(4x4,3x3) convs, issue 23, and the GPU's own products round
 * differently; docs/testing.md, "CUDA"). The golden comparisons keep the tolerance itself. */
static golden_tol g_pair;
static const golden_tol *pair_tol(const golden_tol *t) {
    g_pair = *t;
    g_pair.tol *= 2;
    return &g_pair;
}
static const golden_tol *lua_pair_tol_for(const char *name) { return pair_tol(golden_tol_for(name)); }
static const golden_tol *vae_pair_tol_for(const char *name) { return pair_tol(vae_tol_for(name)); }

/* ---- LUA ----------------------------------------------------------------------------------------- */
/* Every head (the golden file's, or all), GPU vs CPU per head, GPU vs golden over all heads. */
static void lua_case(const char *casename, const char *model, const char *golden, const latup_tensor *xin) {
    latup_lua *m = NULL;
    latup_weights g = {0};
    assert_int_equal(latup_lua_load(model, &m), LATUP_OK);
    latup_tensor x = {0};
    if (golden) {
        assert_int_equal(latup_safetensors_load(golden, &g), LATUP_OK);
        const latup_wtensor *in = latup_weights_find(&g, "input");
        assert_non_null(in);
        x.data = in->f32, x.ndim = in->ndim;
        memcpy(x.shape, in->shape, sizeof x.shape);
    } else {
        x = *xin;
    }
    const int B = x.ndim == 4 ? (int)x.shape[0] : 1;
    golden_cmp cg;
    if (golden) golden_cmp_init(&cg, &g, B);
    const latup_lua_config *cfg = latup_lua_get_config(m);
    for (int s = 0; s < cfg->n_scales; s++) {
        char oname[16], label[64];
        snprintf(oname, sizeof oname, "out.x%d", cfg->scales[s]);
        if (golden && !latup_weights_find(&g, oname)) continue;
        recorder rec = {.B = B};
        latup_tensor yc, yg;
        latup_run_opts co = {.dump = record, .dump_user = &rec};
        assert_int_equal(latup_lua_upscale(m, &x, cfg->scales[s], &yc, &co), LATUP_OK);
        golden_cmp cc;
        golden_cmp_init(&cc, &rec.w, B);
        tee t = {golden ? &cg : NULL, &cc};
        latup_run_opts go = {.dump = tee_dump, .dump_user = &t, .device = LATUP_DEVICE_CUDA};
        latup_status st = latup_lua_upscale(m, &x, cfg->scales[s], &yg, &go);
        if (st != LATUP_OK) printf("%s x%d on the GPU: %s\n", casename, cfg->scales[s], latup_last_error());
        assert_int_equal(st, LATUP_OK);
        assert_int_equal(latup_tensor_numel(&yg), latup_tensor_numel(&yc));
        snprintf(label, sizeof label, "%s x%d gpu~cpu", casename, cfg->scales[s]);
        report(&cc, label, lua_pair_tol_for);
        golden_cmp_free(&cc);
        recorder_free(&rec);
        latup_tensor_free(&yc), latup_tensor_free(&yg);
    }
    if (golden) {
        char label[64];
        snprintf(label, sizeof label, "%s gpu~golden", casename);
        report(&cg, label, golden_tol_for);
        golden_cmp_free(&cg);
        latup_weights_free(&g);
    }
    latup_lua_free(m);
}

static void test_lua_golden(void **state) {
    (void)state;
    const int before = g_bad;
    for (int i = 0; i < N_GOLDEN_CASES; i++) lua_case(GOLDEN_CASES[i].name, GOLDEN_CASES[i].model, GOLDEN_CASES[i].golden, NULL);
    printf("LUA golden cases on the GPU: %d tensors compared so far, %d NOT OK\n", g_lines, g_bad);
    assert_int_equal(g_bad - before, 0);
}

static const golden_case *find_case(const char *name) {
    for (int i = 0; i < N_GOLDEN_CASES; i++)
        if (!strcmp(GOLDEN_CASES[i].name, name)) return &GOLDEN_CASES[i];
    fail_msg("no golden case '%s' in golden.h", name);
    return NULL;
}

/* the same with a scratch budget of 4096 floats: one conv row per band, one window per product,
 * a few query rows per attention block */
static void test_lua_golden_split(void **state) {
    (void)state;
    const int before = g_bad;
    static const char *cases[] = {"small/pad", "wide/pad", "swinir/x3"};
    setenv("LATUP_CUDA_SCRATCH", "4096", 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const golden_case *gc = find_case(cases[i]);
        char label[48];
        snprintf(label, sizeof label, "%s split", gc->name);
        lua_case(label, gc->model, gc->golden, NULL);
    }
    unsetenv("LATUP_CUDA_SCRATCH");
    assert_int_equal(g_bad - before, 0);
}

/* the released config (E 360, 6x6 blocks, 12 heads, ws 16, F 256) at 64x64, x2 and x4 */
static void test_lua_released_widths(void **state) {
    (void)state;
    const int before = g_bad;
    char path[64];
    assert_int_equal(gen_lua_file(&GEN_LUA_RELEASED, path, sizeof path), 0);
    latup_tensor x;
#ifdef LATUP_CUDA_EMU
    const int64_t xs[3] = {16, 32, 32}; /* the emulated device is a CPU: 2x2 windows still */
    const char *casename = "released 32x32";
#else
    const int64_t xs[3] = {16, 64, 64};
    const char *casename = "released 64x64";
#endif
    assert_int_equal(latup_tensor_alloc(&x, 3, xs), LATUP_OK);
    uint64_t s = 7;
    for (int64_t i = 0; i < latup_tensor_numel(&x); i++) x.data[i] = (float)((double)(wg_splitmix64(&s) >> 11) * 0x1.0p-53 * 4.0 - 2.0);
    setenv("LATUP_CUDA_EMU_STRICT", "0", 1); /* emulated device only: see cuda_emu.c */
    lua_case(casename, path, NULL, &x);
    unsetenv("LATUP_CUDA_EMU_STRICT");
    latup_tensor_free(&x);
    unlink(path);
    assert_int_equal(g_bad - before, 0);
}

/* ---- VAE ----------------------------------------------------------------------------------------- */
static void vae_case(const char *casename, const char *vae_path, const char *golden, const latup_tensor *zin,
                     const latup_decode_opts *extra) {
    latup_vae *v = NULL;
    latup_weights g = {0};
    assert_int_equal(latup_vae_load(vae_path, &v), LATUP_OK);
    latup_tensor z = {0};
    if (golden) {
        assert_int_equal(latup_safetensors_load(golden, &g), LATUP_OK);
        const latup_wtensor *in = latup_weights_find(&g, "input");
        assert_non_null(in);
        z.data = in->f32, z.ndim = in->ndim;
        memcpy(z.shape, in->shape, sizeof z.shape);
    } else {
        z = *zin;
    }
    const int B = z.ndim == 4 ? (int)z.shape[0] : 1;
    recorder rec = {.B = B};
    latup_decode_opts co = extra ? *extra : (latup_decode_opts){0};
    co.dump = record, co.dump_user = &rec;
    latup_tensor ic, ig;
    assert_int_equal(latup_vae_decode(v, &z, &ic, &co), LATUP_OK);
    golden_cmp cg, cc;
    if (golden) golden_cmp_init(&cg, &g, B);
    golden_cmp_init(&cc, &rec.w, B);
    tee t = {golden ? &cg : NULL, &cc};
    latup_decode_opts go = co;
    go.dump = tee_dump, go.dump_user = &t, go.device = LATUP_DEVICE_CUDA;
    latup_status st = latup_vae_decode(v, &z, &ig, &go);
    if (st != LATUP_OK) printf("%s on the GPU: %s\n", casename, latup_last_error());
    assert_int_equal(st, LATUP_OK);
    char label[64];
    if (extra && extra->tile) {
        /* tiled decodes dump nothing: the images, one line */
        golden_stats s = {0};
        golden_stats_add(&s, ig.data, ic.data, (size_t)latup_tensor_numel(&ic));
        snprintf(label, sizeof label, "%s gpu~cpu", casename);
        g_bad += !golden_report(label, "out (tiled)", &s, vae_pair_tol_for("out")->tol);
        g_lines++;
    } else {
        snprintf(label, sizeof label, "%s gpu~cpu", casename);
        report(&cc, label, vae_pair_tol_for);
    }
    if (golden) {
        snprintf(label, sizeof label, "%s gpu~golden", casename);
        report(&cg, label, vae_tol_for);
        golden_cmp_free(&cg);
        latup_weights_free(&g);
    }
    golden_cmp_free(&cc);
    recorder_free(&rec);
    latup_tensor_free(&ic), latup_tensor_free(&ig);
    latup_vae_free(v);
}

static void test_vae_golden(void **state) {
    (void)state;
    const int before = g_bad;
    vae_case("vae sd/ldm", "ref_data/vae/sd_small.ldm.safetensors.gz", "ref_data/vae/golden_sd_small.safetensors", NULL, NULL);
    vae_case("vae sd/diff-old", "ref_data/vae/sd_small.diffusers_old.safetensors.gz",
             "ref_data/vae/golden_sd_small.safetensors", NULL, NULL);
    vae_case("vae flux/ldm", "ref_data/vae/flux_small.ldm.safetensors.gz", "ref_data/vae/golden_flux_small.safetensors",
             NULL, NULL);
    setenv("LATUP_CUDA_SCRATCH", "512", 1);
    vae_case("vae flux split", "ref_data/vae/flux_small.ldm.safetensors.gz", "ref_data/vae/golden_flux_small.safetensors",
             NULL, NULL);
    unsetenv("LATUP_CUDA_SCRATCH");
    assert_int_equal(g_bad - before, 0);
}

static void random_latent(latup_tensor *z, int ndim, const int64_t *shape, uint64_t seed) {
    assert_int_equal(latup_tensor_alloc(z, ndim, shape), LATUP_OK);
    for (int64_t i = 0; i < latup_tensor_numel(z); i++) z->data[i] = (float)((double)(wg_splitmix64(&seed) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

/* (128, 256, 512, 512), 3 resnets per level: the golden 4x4 case, a 32x32 latent (256^2 image)
 * against the CPU, and a batch of two 16x12 latents decoded in tiles of 10 with overlap 4 */
static void test_vae_real_widths(void **state) {
    (void)state;
    const int before = g_bad;
    const char *gpath = "ref_data/vae/golden_real_widths.safetensors";
    char path[512];
    assert_true(wg_generate_tmp(gpath, path, sizeof path) > 0);
    vae_case("vae real", path, gpath, NULL, NULL);
    setenv("LATUP_CUDA_EMU_STRICT", "0", 1); /* emulated device only: see cuda_emu.c */
    latup_tensor z;
    const int64_t zs[3] = {16, 32, 32}, zb[4] = {2, 16, 16, 12};
    random_latent(&z, 3, zs, 11);
    vae_case("vae real 32x32", path, NULL, &z, NULL);
    latup_tensor_free(&z);
    random_latent(&z, 4, zb, 12);
    const latup_decode_opts tiled = {.tile = 10, .overlap = 4};
    vae_case("vae real tiled", path, NULL, &z, &tiled);
    unsetenv("LATUP_CUDA_EMU_STRICT");
    latup_tensor_free(&z);
    unlink(path);
    assert_int_equal(g_bad - before, 0);
}

/* ---- one plan for both devices -------------------------------------------------------------------------
 * src/api/call.c plans a call the same way whichever device runs it: for budgets from the exact
 * decode's peak down to below the smallest tile's, latup_prepare on the CUDA device picks the CPU's
 * tiles and peak, an impossible budget fails with the CPU's status and message, and a tiled CUDA
 * decode gives the CPU's tiled image at the GPU~CPU image tolerance. One line per compared case. */
typedef struct {
    latup_status st;
    int tiled, tile, overlap;
    size_t peak, decode_peak;
    char err[1024];
} seen_plan;

static seen_plan prepare_on(const latup_vae *v, const latup_tensor *z, latup_device dev, size_t budget, int tile,
                            latup_call **keep) {
    const latup_call_opts o = {.vae = v, .device = dev, .max_memory = budget, .tile = tile};
    latup_call *c = NULL;
    seen_plan s;
    memset(&s, 0, sizeof s);
    s.st = latup_prepare(&o, z, &c);
    if (s.st == LATUP_OK) {
        const latup_plan *p = latup_call_plan(c);
        s.tiled = p->decode.tiled, s.tile = p->decode.tile, s.overlap = p->decode.overlap;
        s.peak = p->mem.peak, s.decode_peak = p->decode.peak;
    } else {
        snprintf(s.err, sizeof s.err, "%s", latup_last_error());
    }
    if (keep) *keep = c;
    else latup_call_free(c);
    return s;
}

/* The CUDA decode of a prepared call against the CPU's, one line. */
static void compare_tiled_decode(latup_call *cc, latup_call *cg, const latup_tensor *z, const char *label) {
    latup_tensor ic = {0}, ig = {0};
    assert_int_equal(latup_execute(cc, z, NULL, &ic), LATUP_OK);
    const latup_status st = latup_execute(cg, z, NULL, &ig);
    if (st != LATUP_OK) printf("%s on the GPU: %s\n", label, latup_last_error());
    assert_int_equal(st, LATUP_OK);
    assert_int_equal(latup_tensor_numel(&ig), latup_tensor_numel(&ic));
    golden_stats s = {0};
    golden_stats_add(&s, ig.data, ic.data, (size_t)latup_tensor_numel(&ic));
    g_bad += !golden_report(label, "out (tiled)", &s, vae_pair_tol_for("out")->tol);
    g_lines++;
    latup_tensor_free(&ic), latup_tensor_free(&ig);
}

static void test_plan_budgets(void **state) {
    (void)state;
    const int before = g_bad;
    latup_vae *v = NULL;
    assert_int_equal(latup_vae_load("ref_data/vae/flux_small.ldm.safetensors.gz", &v), LATUP_OK);
    latup_tensor z;
    const int64_t zs[3] = {latup_vae_get_config(v)->z_channels, 24, 20};
    random_latent(&z, 3, zs, 13);
    /* the exact decode's peak, and the smallest automatic tiles' (8 latent pixels, overlap 2) */
    const seen_plan exact = prepare_on(v, &z, LATUP_DEVICE_CPU, 0, 0, NULL);
    const seen_plan small = prepare_on(v, &z, LATUP_DEVICE_CPU, 0, 8, NULL);
    assert_int_equal(exact.st, LATUP_OK);
    assert_int_equal(small.st, LATUP_OK);
    assert_true(small.tiled && small.peak < exact.peak);
    enum { N_BUDGETS = 9 };
    size_t budgets[N_BUDGETS];
    budgets[0] = exact.peak, budgets[1] = exact.peak - 1;
    for (int k = 1; k <= 5; k++) budgets[1 + k] = small.peak + (exact.peak - small.peak) / 6 * (size_t)(6 - k);
    budgets[7] = small.peak, budgets[8] = small.peak - 1;
    int decoded_tile = 0, n_tiled = 0, n_refused = 0;
    for (int i = 0; i < N_BUDGETS; i++) {
        latup_call *cc = NULL, *cg = NULL;
        const seen_plan c = prepare_on(v, &z, LATUP_DEVICE_CPU, budgets[i], 0, &cc);
        const seen_plan g = prepare_on(v, &z, LATUP_DEVICE_CUDA, budgets[i], 0, &cg);
        char label[96], what[160];
        snprintf(label, sizeof label, "plan budget %zu", budgets[i]);
        int same;
        if (c.st != LATUP_OK) {
            same = g.st == c.st && strcmp(g.err, c.err) == 0;
            snprintf(what, sizeof what, "refused (%s) on both", c.st == LATUP_E_NOMEM ? "LATUP_E_NOMEM" : "other");
            n_refused += c.st == LATUP_E_NOMEM;
            if (!same) printf("  CPU: %s\n  GPU: %s\n", c.err, g.err);
        } else {
            same = g.st == LATUP_OK && g.tiled == c.tiled && g.tile == c.tile && g.overlap == c.overlap &&
                   g.peak == c.peak && g.decode_peak == c.decode_peak;
            if (c.tiled)
                snprintf(what, sizeof what, "tiles of %d overlap %d, peak %zu", c.tile, c.overlap, c.peak);
            else
                snprintf(what, sizeof what, "exact, peak %zu", c.peak);
            n_tiled += c.tiled;
            if (!same)
                printf("  GPU: status %d, tiled %d tile %d overlap %d peak %zu\n", (int)g.st, g.tiled, g.tile, g.overlap,
                       g.peak);
        }
        printf("%-28s %-44s CPU = CUDA %s\n", label, what, same ? "OK" : "NOT OK");
        g_lines++, g_bad += !same;
        /* each tile size the budgets pick: the CUDA decode against the CPU's */
        if (same && c.st == LATUP_OK && c.tiled && c.tile != decoded_tile) {
            snprintf(label, sizeof label, "plan budget %zu tiles of %d gpu~cpu", budgets[i], c.tile);
            compare_tiled_decode(cc, cg, &z, label);
            decoded_tile = c.tile;
        }
        latup_call_free(cc), latup_call_free(cg);
    }
    /* the range covered what it should: exact, tiled and refused budgets */
    assert_true(n_tiled >= 2 && n_refused == 1 && decoded_tile == 8);
    latup_tensor_free(&z);
    latup_vae_free(v);
    assert_int_equal(g_bad - before, 0);
}

/* ---- errors on the GPU path: the CPU's statuses and messages ----------------------------------------- */
static void test_errors(void **state) {
    (void)state;
    latup_lua *m = NULL;
    latup_vae *v = NULL;
    assert_int_equal(latup_lua_load(find_case("small/pad")->model, &m), LATUP_OK);
    assert_int_equal(latup_vae_load("ref_data/vae/flux_small.ldm.safetensors.gz", &v), LATUP_OK);
    latup_tensor x, y;
    const int64_t bad[3] = {4, 16, 16}, ok[3] = {16, 16, 16};
    const latup_run_opts go = {.device = LATUP_DEVICE_CUDA};
    const latup_decode_opts gd = {.device = LATUP_DEVICE_CUDA};
    assert_int_equal(latup_tensor_alloc(&x, 3, bad), LATUP_OK);
    assert_int_equal(latup_lua_upscale(m, &x, 2, &y, &go), LATUP_E_INPUT);
    printf("GPU, wrong channels: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "the model expects 16"));
    assert_int_equal(latup_vae_decode(v, &x, &y, &gd), LATUP_E_INPUT);
    printf("GPU VAE, wrong channels: %s\n", latup_last_error());
    latup_tensor_free(&x);
    assert_int_equal(latup_tensor_alloc(&x, 3, ok), LATUP_OK);
    assert_int_equal(latup_lua_upscale(m, &x, 3, &y, &go), LATUP_E_USAGE);
    printf("GPU, scale 3: %s\n", latup_last_error());
    x.data[5] = NAN;
    assert_int_equal(latup_lua_upscale(m, &x, 2, &y, &go), LATUP_E_INPUT);
    printf("GPU, NaN input: %s\n", latup_last_error());
    assert_null(y.data);
    latup_tensor_free(&x);
    latup_lua_free(m), latup_vae_free(v);
}

/* ---- progress on the GPU: the steps the CPU's counting pass counted, one by one ------------------------ */
typedef struct {
    int64_t calls, last, total, stop_at;
    int bad; /* a done that is not last + 1 (a GPU pass off the CPU's boundaries), or a changed total */
} steps;

static int on_step(void *user, int64_t done, int64_t total) {
    steps *s = user;
    if (s->calls == 0) s->total = total;
    if (done != s->last + 1 || total != s->total) s->bad = 1;
    s->calls++, s->last = done;
    return s->stop_at > 0 && done >= s->stop_at;
}

/* Every step reported where the CPU pass reports it: done rises by one to total in an upscale, an
 * exact and a tiled decode and a run; a callback that stops the call gets LATUP_E_CANCELLED and no
 * output. */
static void test_progress(void **state) {
    (void)state;
    latup_lua *m = NULL;
    latup_vae *v = NULL;
    assert_int_equal(latup_lua_load(find_case("small/pad")->model, &m), LATUP_OK);
    assert_int_equal(latup_vae_load("ref_data/vae/flux_small.ldm.safetensors.gz", &v), LATUP_OK);
    const int64_t shape[4] = {2, 16, 16, 16};
    latup_tensor x, y, img;
    assert_int_equal(latup_tensor_alloc(&x, 4, shape), LATUP_OK);
    for (int64_t i = 0; i < latup_tensor_numel(&x); i++) x.data[i] = (float)((i * 37) % 17) / 17.0f - 0.5f;
    const int layers = latup_lua_get_config(m)->num_layers, levels = latup_vae_get_config(v)->n_levels;
    steps a = {0}, b = {0}, c = {0}, d = {0}, e = {.stop_at = 3};
    const latup_run_opts ro = {.device = LATUP_DEVICE_CUDA, .on_progress = on_step, .progress_user = &a};
    assert_int_equal(latup_lua_upscale(m, &x, 2, &y, &ro), LATUP_OK);
    latup_tensor_free(&y);
    latup_decode_opts dopt = {.device = LATUP_DEVICE_CUDA, .on_progress = on_step, .progress_user = &b};
    assert_int_equal(latup_vae_decode(v, &x, &img, &dopt), LATUP_OK);
    latup_tensor_free(&img);
    dopt.tile = 8, dopt.overlap = 2, dopt.progress_user = &c; /* 16x16 in tiles of 8, overlap 2: 3 x 3 tiles */
    assert_int_equal(latup_vae_decode(v, &x, &img, &dopt), LATUP_OK);
    latup_tensor_free(&img);
    latup_call_opts co = {.lua = m, .scale = 2, .vae = v, .device = LATUP_DEVICE_CUDA, .on_progress = on_step,
                          .progress_user = &d};
    latup_call *call;
    assert_int_equal(latup_prepare(&co, &x, &call), LATUP_OK);
    assert_int_equal(latup_execute(call, &x, NULL, &img), LATUP_OK);
    latup_tensor_free(&img);
    latup_call_free(call);
    co.progress_user = &e;
    assert_int_equal(latup_prepare(&co, &x, &call), LATUP_OK);
    const latup_status st = latup_execute(call, &x, NULL, &img);
    latup_call_free(call);
    printf("GPU progress: upscale %lld/%lld, decode %lld/%lld, tiled %lld/%lld, run %lld/%lld, stopped at 3: %s\n",
           (long long)a.last, (long long)a.total, (long long)b.last, (long long)b.total, (long long)c.last,
           (long long)c.total, (long long)d.last, (long long)d.total, latup_status_name(st));
    assert_true(!a.bad && !b.bad && !c.bad && !d.bad && !e.bad);
    assert_int_equal(a.calls, 2 * (layers + 4));
    assert_int_equal(b.calls, 2 * (levels + 2));
    assert_int_equal(c.calls, 2 * 9 * (levels + 3));
    assert_int_equal(d.calls, 2 * (layers + 4) + 2 * (levels + 2));
    assert_int_equal(st, LATUP_E_CANCELLED);
    assert_int_equal(e.calls, 3);
    assert_null(img.data);
    latup_tensor_free(&x);
    latup_lua_free(m), latup_vae_free(v);
}

int main(void) {
    if (latup_gpu_probe() != LATUP_OK) {
        printf("test_cuda: %s: the GPU test did NOT run (exit %d: not a pass)\n", latup_last_error(), NOT_RUN);
        return NOT_RUN;
    }
#ifdef LATUP_CUDA_EMU
    printf("test_cuda_emu: the CUDA path's host code on an emulated device (tests/support/cuda_emu.c: kernels and products "
           "on the CPU); what only a GPU can show is test_cuda's\n");
#endif
    setenv("LATUP_CUDA_CHECK", "1", 1); /* the device arena's guards filled and checked */
#ifdef LATUP_CUDA_EMU
    latup_set_threads(1); /* the emulated products are many small sgemms: threads would only spin */
#else
    latup_set_threads(0);
#endif
    /* e.g. LATUP_CUDA_TEST_FILTER=test_lua_golden: one test, for chasing a failure */
    if (getenv("LATUP_CUDA_TEST_FILTER")) cmocka_set_test_filter(getenv("LATUP_CUDA_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lua_golden),  cmocka_unit_test(test_lua_golden_split),
        cmocka_unit_test(test_lua_released_widths), cmocka_unit_test(test_vae_golden),
        cmocka_unit_test(test_vae_real_widths), cmocka_unit_test(test_plan_budgets),
        cmocka_unit_test(test_errors),      cmocka_unit_test(test_progress),
    };
    const int rc = cmocka_run_group_tests(tests, NULL, NULL);
    printf("GPU test: %d tensors compared, %d NOT OK\n", g_lines, g_bad);
    return rc || g_bad || g_lines < 300 ? 1 : 0;
}
