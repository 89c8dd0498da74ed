/* test_tiling.c — tiled VAE decoding and its plan, through the public API: the tiled image against
 * a twin built here from exact decodes of each tile and an independent blend (origins, ramps over
 * ov * f image pixels, batches, non-square latents); the plan's edges (tile 3 and 4, overlap T - 1
 * and T, a tile covering the latent, the default overlap); the memory budget at its edges (the
 * exact peak and one byte less, the largest fitting tile, the refusal's numbers); the plan's tile
 * and overlap are what runs (decode, encode, latup_execute under a budget, bit for bit). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latup.h"
#include "test_util.h"

#define VAE_PATH "ref_data/vae/flux_small.ldm.safetensors.gz"

static latup_vae *g_vae;

static int setup(void **state) {
    (void)state;
    return latup_vae_load(VAE_PATH, &g_vae) == LATUP_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    latup_vae_free(g_vae);
    return 0;
}

static latup_tensor random_latent(int64_t B, int zc, int h, int w, uint64_t seed) {
    latup_tensor z;
    const int64_t s[4] = {B, zc, h, w};
    assert_int_equal(latup_tensor_alloc(&z, 4, s), LATUP_OK);
    tu_rng r = tu_rng_seed(seed);
    tu_fill_normal(&r, z.data, (size_t)latup_tensor_numel(&z), 0.0f, 1.0f);
    return z;
}

/* ---- the twin: tiles along one axis, the ramp, and the blend, written from the spec ---------------
 * Tiles of T latent pixels start every T - ov pixels; the last one is moved back to end at the
 * edge; as many as it takes to cover n. A tile's pixel i (of n image pixels) weighs
 * min(1, (i + 1/2) / lo, (n - i - 1/2) / hi), a side without a neighbour not ramping (lo or hi 0). */
static int twin_origins(int n, int T, int ov, int *org) {
    if (n <= T) {
        org[0] = 0;
        return 1;
    }
    int k = 0;
    for (int o = 0;; o += T - ov) {
        org[k++] = o + T > n ? n - T : o;
        if (o + T >= n) return k;
    }
}

static double twin_ramp(int i, int n, int lo, int hi) {
    double w = 1.0;
    if (lo) w = fmin(w, (i + 0.5) / lo);
    if (hi) w = fmin(w, (n - i - 0.5) / hi);
    return w;
}

/* The tiled decode of z (batch B) built from exact decodes of each tile, blended in double. */
static void twin_tiled(const latup_tensor *z, int T, int ov, float *ref) {
    const int64_t B = z->shape[0], zc = z->shape[1], h = z->shape[2], w = z->shape[3];
    int oy[64], ox[64];
    const int ny = twin_origins((int)h, T, ov, oy), nx = twin_origins((int)w, T, ov, ox);
    const int th = T < h ? T : (int)h, tw = T < w ? T : (int)w;
    int f = 0, Co = 0;
    int64_t H = 0, W = 0;
    double *acc = NULL, *wsum = NULL;
    for (int ty = 0; ty < ny; ty++)
        for (int tx = 0; tx < nx; tx++) {
            latup_tensor sub, img;
            const int64_t s[4] = {B, zc, th, tw};
            assert_int_equal(latup_tensor_alloc(&sub, 4, s), LATUP_OK);
            for (int64_t b = 0; b < B; b++)
                for (int64_t c = 0; c < zc; c++)
                    for (int y = 0; y < th; y++)
                        for (int x = 0; x < tw; x++)
                            sub.data[((b * zc + c) * th + y) * tw + x] =
                                z->data[((b * zc + c) * h + oy[ty] + y) * w + ox[tx] + x];
            assert_int_equal(latup_vae_decode(g_vae, &sub, &img, NULL), LATUP_OK); /* exact */
            if (!acc) {
                f = (int)(img.shape[2] / th), Co = (int)img.shape[1], H = h * f, W = w * f;
                acc = calloc((size_t)(B * Co * H * W), sizeof *acc);
                wsum = calloc((size_t)(H * W), sizeof *wsum);
                assert_true(acc && wsum);
            }
            const int oh = th * f, ow = tw * f, ovf = ov * f;
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    const double wt = twin_ramp(y, oh, ty > 0 ? ovf : 0, ty < ny - 1 ? ovf : 0) *
                                      twin_ramp(x, ow, tx > 0 ? ovf : 0, tx < nx - 1 ? ovf : 0);
                    const int64_t o = (int64_t)(oy[ty] * f + y) * W + ox[tx] * f + x;
                    wsum[o] += wt;
                    for (int64_t b = 0; b < B; b++)
                        for (int c = 0; c < Co; c++)
                            acc[(b * Co + c) * H * W + o] += wt * img.data[((b * Co + c) * oh + y) * ow + x];
                }
            latup_tensor_free(&sub);
            latup_tensor_free(&img);
        }
    for (int64_t i = 0; i < B * Co * H * W; i++) ref[i] = (float)(acc[i] / wsum[i % (H * W)]);
    free(acc);
    free(wsum);
}

/* One report line; returns 1 when within tol x max|ref|. */
static int compare(const char *what, const float *got, const float *ref, int64_t n, double tol) {
    double m = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs((double)got[i] - ref[i]);
        m = isnan(d) || d > m ? (isnan(d) ? INFINITY : d) : m;
        r = fmax(r, fabs((double)ref[i]));
    }
    const int ok = m <= tol * r;
    printf("%-44s max|diff| %.3e  max|ref| %.3e  tol %.0e  %s\n", what, m, r, tol, ok ? "OK" : "NOT OK");
    return ok;
}

/* The tiled image is the blend of exactly decoded tiles: fp32 accumulation against the twin's
 * double gives ~1e-7 of max|ref|; a wrong origin, ramp, width or batch offset moves it by 1e-2 or
 * more. Batches, non-square latents, a single tile along one axis, overlaps 1 to T - 1. */
static void test_tiled_matches_tile_by_tile(void **state) {
    (void)state;
    static const struct {
        int B, h, w, T, ov;
    } cases[] = {{2, 11, 7, 4, 1}, {1, 9, 13, 5, 2}, {1, 6, 16, 4, 3}, {1, 4, 10, 4, 1}, {1, 10, 4, 6, 2}};
    int bad = 0;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        latup_tensor z = random_latent(cases[k].B, 16, cases[k].h, cases[k].w, 100 + k), img;
        latup_decode_opts o = {.tile = cases[k].T, .overlap = cases[k].ov};
        assert_int_equal(latup_vae_decode(g_vae, &z, &img, &o), LATUP_OK);
        assert_int_equal(img.shape[0], cases[k].B);
        assert_int_equal(img.shape[2], 2 * cases[k].h);
        assert_int_equal(img.shape[3], 2 * cases[k].w);
        float *ref = malloc((size_t)latup_tensor_numel(&img) * sizeof *ref);
        assert_non_null(ref);
        twin_tiled(&z, cases[k].T, cases[k].ov, ref);
        char name[64];
        snprintf(name, sizeof name, "B%d %dx%d tile %d overlap %d", cases[k].B, cases[k].h, cases[k].w, cases[k].T,
                 cases[k].ov);
        bad += !compare(name, img.data, ref, latup_tensor_numel(&img), 2e-6);
        free(ref);
        latup_tensor_free(&img);
        latup_tensor_free(&z);
    }
    assert_int_equal(bad, 0);
}

/* A [zc,h,w] latent tiles as its [1,zc,h,w] twin does, bit for bit. */
static void test_tiled_3d_input(void **state) {
    (void)state;
    latup_tensor z = random_latent(1, 16, 9, 6, 7), z3 = z, a, b;
    z3.ndim = 3;
    memmove(z3.shape, z.shape + 1, 3 * sizeof z.shape[0]);
    latup_decode_opts o = {.tile = 4, .overlap = 1};
    assert_int_equal(latup_vae_decode(g_vae, &z, &a, &o), LATUP_OK);
    assert_int_equal(latup_vae_decode(g_vae, &z3, &b, &o), LATUP_OK);
    assert_int_equal(b.ndim, 3);
    assert_int_equal(latup_tensor_numel(&a), latup_tensor_numel(&b));
    assert_memory_equal(a.data, b.data, (size_t)latup_tensor_numel(&a) * sizeof(float));
    latup_tensor_free(&a);
    latup_tensor_free(&b);
    latup_tensor_free(&z);
}

static void expect_plan(int h, int w, int tile, int overlap, latup_status want, int tiled, int want_tile,
                        int want_ov) {
    latup_decode_opts o = {.tile = tile, .overlap = overlap};
    latup_decode_plan p;
    const latup_status st = latup_vae_plan_decode(g_vae, h, w, &o, &p);
    printf("plan %dx%d tile %d overlap %d: %s tiled %d tile %d overlap %d %s\n", h, w, tile, overlap,
           st == want ? "OK" : "NOT OK", p.tiled, p.tile, p.overlap, st ? latup_last_error() : p.reason);
    assert_int_equal(st, want);
    if (st != LATUP_OK) return;
    assert_int_equal(p.tiled, tiled);
    if (!tiled) {
        assert_int_equal(p.plan.h, h);
        assert_int_equal(p.plan.w, w);
        assert_string_equal(p.reason, "");
        return;
    }
    assert_int_equal(p.tile, want_tile);
    assert_int_equal(p.overlap, want_ov);
    assert_int_equal(p.plan.h, tile < h ? tile : h); /* one tile's decode */
    assert_int_equal(p.plan.w, tile < w ? tile : w);
    assert_non_null(strstr(p.reason, "tiles of"));
}

/* Tiles of 4 or more, larger than the overlap; overlap 0 means tile / 4; a tile covering the whole
 * latent (equal to its larger side, or beyond) is the exact decode. */
static void test_tile_plan_edges(void **state) {
    (void)state;
    expect_plan(20, 12, 1, 0, LATUP_E_USAGE, 0, 0, 0);
    expect_plan(20, 12, 2, 0, LATUP_E_USAGE, 0, 0, 0);
    expect_plan(20, 12, 3, 0, LATUP_E_USAGE, 0, 0, 0);
    expect_plan(20, 12, 4, 0, LATUP_OK, 1, 4, 1);
    /* the call's options (latup_prepare, the CLI's --tile): tile 0 (automatic) and 4 taken, 1 to 3
     * and negative refused; the overlap at tile - 1 taken, at the tile refused */
    const struct {
        int tile, overlap;
        latup_status want;
    } co[] = {{0, 0, LATUP_OK}, {1, 0, LATUP_E_USAGE}, {2, 0, LATUP_E_USAGE}, {3, 0, LATUP_E_USAGE},
              {4, 0, LATUP_OK}, {4, 3, LATUP_OK}, {4, 4, LATUP_E_USAGE}, {-1, 0, LATUP_E_USAGE}, {8, -1, LATUP_E_USAGE}};
    for (size_t k = 0; k < sizeof co / sizeof *co; k++) {
        const latup_call_opts o = {.vae = g_vae, .tile = co[k].tile, .overlap = co[k].overlap};
        const latup_status st = latup_call_opts_check(&o);
        latup_call *c = NULL;
        const latup_tensor shape = {.data = NULL, .ndim = 3, .shape = {16, 20, 12}};
        const latup_status sp = latup_prepare(&o, &shape, &c);
        latup_call_free(c);
        printf("call opts tile %d overlap %d: check %d, prepare %d (want %d) %s\n", co[k].tile, co[k].overlap, (int)st,
               (int)sp, (int)co[k].want, st == co[k].want && sp == co[k].want ? "OK" : "NOT OK");
        assert_int_equal(st, co[k].want);
        assert_int_equal(sp, co[k].want);
    }
    expect_plan(20, 12, 4, 3, LATUP_OK, 1, 4, 3);
    expect_plan(20, 12, 4, 4, LATUP_E_USAGE, 0, 0, 0);
    expect_plan(20, 12, 8, 0, LATUP_OK, 1, 8, 2);
    expect_plan(20, 12, 8, 1, LATUP_OK, 1, 8, 1);
    expect_plan(20, 12, 13, 0, LATUP_OK, 1, 13, 3);
    expect_plan(20, 12, 19, 5, LATUP_OK, 1, 19, 5);
    expect_plan(20, 12, 20, 5, LATUP_OK, 0, 0, 0);
    expect_plan(12, 20, 20, 0, LATUP_OK, 0, 0, 0);
    expect_plan(20, 12, 64, 0, LATUP_OK, 0, 0, 0);
    /* latent sides 1..8192, checked before any plan */
    expect_plan(0, 12, 0, 0, LATUP_E_INPUT, 0, 0, 0);
    expect_plan(12, 0, 8, 0, LATUP_E_INPUT, 0, 0, 0);
    expect_plan(8193, 4, 0, 0, LATUP_E_INPUT, 0, 0, 0);
    expect_plan(4, 8193, 16, 0, LATUP_E_INPUT, 0, 0, 0);
    expect_plan(8192, 4, 0, 0, LATUP_OK, 0, 0, 0);
    expect_plan(4, 8192, 0, 0, LATUP_OK, 0, 0, 0);
    expect_plan(8192, 8192, 64, 0, LATUP_OK, 1, 64, 16); /* both sides at the limit, tiled: 16384^2 pixels < 2^31 */
    expect_plan(1, 1, 0, 0, LATUP_OK, 0, 0, 0);
    /* a run's decode sees the upscaled latent: its sides are the decoder's to check (8200 > 8192),
     * though the upscale takes them */
    latup_lua *m;
    assert_int_equal(latup_lua_load("ref_data/small/model.safetensors.gz", &m), LATUP_OK);
    const latup_call_opts run = {.lua = m, .scale = 2, .vae = g_vae};
    const latup_tensor tall = {.data = NULL, .ndim = 3, .shape = {16, 4100, 8}};
    latup_call *call;
    assert_int_equal(latup_prepare(&run, &tall, &call), LATUP_E_INPUT);
    printf("run x2 of a 4100x8 latent: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "8200x16 out of range (1..8192)"));
    latup_lua_free(m);
    /* refused before anything is decoded */
    latup_tensor z = random_latent(1, 16, 6, 6, 3), img;
    latup_decode_opts o = {.tile = 3};
    assert_int_equal(latup_vae_decode(g_vae, &z, &img, &o), LATUP_E_USAGE);
    assert_null(img.data);
    /* the exact decode when one tile covers the latent, bit for bit */
    latup_tensor exact, covered;
    o.tile = 6, o.overlap = 2;
    assert_int_equal(latup_vae_decode(g_vae, &z, &exact, NULL), LATUP_OK);
    assert_int_equal(latup_vae_decode(g_vae, &z, &covered, &o), LATUP_OK);
    assert_memory_equal(exact.data, covered.data, (size_t)latup_tensor_numel(&exact) * sizeof(float));
    latup_tensor_free(&exact);
    latup_tensor_free(&covered);
    latup_tensor_free(&z);
}

/* The plan's peak is what the process holds: the fixed process overhead, the arena (tile buffers
 * included), the weights, the input latent and the output image. */
static void test_plan_peak_parts(void **state) {
    (void)state;
    static const int hw[][3] = {{20, 12, 0}, {20, 12, 8}, {7, 30, 5}};
    for (int k = 0; k < 3; k++) {
        const int h = hw[k][0], w = hw[k][1];
        latup_decode_opts o = {.tile = hw[k][2]};
        latup_decode_plan p;
        assert_int_equal(latup_vae_plan_decode(g_vae, h, w, &o, &p), LATUP_OK);
        const size_t in = (size_t)16 * h * w * sizeof(float), out = (size_t)3 * (2 * h) * (2 * w) * sizeof(float);
        printf("%dx%d tile %d: peak %zu = process %zu + arena %zu + weights %zu + output %zu + input %zu\n", h, w,
               hw[k][2], p.peak, LATUP_PROCESS_OVERHEAD(latup_get_threads()), p.plan.mem.arena, p.plan.mem.weights, p.plan.mem.output, in);
        assert_int_equal(p.plan.mem.output, out);
        assert_int_equal(p.peak, LATUP_PROCESS_OVERHEAD(latup_get_threads()) + p.plan.mem.arena + p.plan.mem.weights + out + in);
        if (hw[k][2]) { /* the blend weights of the whole image live in the tiled arena */
            latup_vae_plan one;
            assert_int_equal(latup_vae_plan_memory(g_vae, p.plan.h, p.plan.w, &one), LATUP_OK);
            assert_true(p.plan.mem.arena >= one.mem.arena + (size_t)(2 * h) * (2 * w) * sizeof(float));
        }
    }
}

/* latup's size text ("%.2f GiB", "%.1f MiB", "%.1f KiB", "%zu bytes"), as the messages print it */
static void size_text(char *s, size_t n, size_t bytes) {
    const double b = (double)bytes;
    if (b >= 1073741824.0) snprintf(s, n, "%.2f GiB", b / 1073741824.0);
    else if (b >= 1048576.0) snprintf(s, n, "%.1f MiB", b / 1048576.0);
    else if (b >= 1024.0) snprintf(s, n, "%.1f KiB", b / 1024.0);
    else snprintf(s, n, "%zu bytes", bytes);
}

static latup_decode_plan plan_for(int h, int w, int tile, size_t budget, latup_status want) {
    latup_decode_opts o = {.tile = tile, .max_memory = budget};
    latup_decode_plan p;
    assert_int_equal(latup_vae_plan_decode(g_vae, h, w, &o, &p), want);
    return p;
}

/* The budget at its edges: the exact peak fits exactly, one byte less tiles with the largest
 * multiple of 8 whose decode fits (8 more does not), overlap tile / 4; a tiled plan's own peak as
 * the budget picks that tile; a budget no tile meets names the tile-8 numbers. */
static void test_budget_edges(void **state) {
    (void)state;
    const int h = 40, w = 28;
    const latup_decode_plan exact = plan_for(h, w, 0, 0, LATUP_OK);
    assert_false(exact.tiled);
    latup_decode_plan p = plan_for(h, w, 0, exact.peak, LATUP_OK);
    assert_false(p.tiled);
    p = plan_for(h, w, 0, exact.peak - 1, LATUP_OK);
    printf("budget %zu (exact peak - 1): tile %d overlap %d peak %zu (%s)\n", exact.peak - 1, p.tile, p.overlap,
           p.peak, p.reason);
    assert_true(p.tiled && p.peak <= exact.peak - 1);
    assert_int_equal(p.tile % 8, 0);
    assert_int_equal(p.tile, 32); /* the largest multiple of 8 below the larger side, 40 */
    assert_int_equal(p.overlap, 8);
    assert_non_null(strstr(p.reason, "budget"));
    /* each tile size's own peak as the budget: that tile, and no larger one fits */
    for (int T = 8; T <= 32; T += 8) {
        const latup_decode_plan t = plan_for(h, w, T, 0, LATUP_OK);
        const latup_decode_plan a = plan_for(h, w, 0, t.peak, LATUP_OK);
        printf("budget = tile %d's peak %zu: tile %d overlap %d\n", T, t.peak, a.tile, a.overlap);
        assert_true(a.tiled);
        assert_int_equal(a.tile, T);
        assert_int_equal(a.overlap, T / 4);
        assert_int_equal(a.peak, t.peak);
        if (T > 8) { /* one byte less: the next smaller tile */
            const latup_decode_plan b = plan_for(h, w, 0, t.peak - 1, LATUP_OK);
            assert_int_equal(b.tile, T - 8);
        }
    }
    /* tiles given: refused when their own peak is over the budget, accepted at it */
    const latup_decode_plan t16 = plan_for(h, w, 16, 0, LATUP_OK);
    assert_int_equal(plan_for(h, w, 16, t16.peak, LATUP_OK).tile, 16);
    plan_for(h, w, 16, t16.peak - 1, LATUP_E_NOMEM);
    assert_non_null(strstr(latup_last_error(), "tiles of 16 latent pixels need"));
    /* below tile 8's peak: refused, naming tile 8's numbers and the exact decode's */
    const latup_decode_plan t8 = plan_for(h, w, 8, 0, LATUP_OK);
    plan_for(h, w, 0, t8.peak - 1, LATUP_E_NOMEM);
    const char *msg = latup_last_error();
    printf("budget %zu: %s\n", t8.peak - 1, msg);
    char want[512], a[32], b[32], c[32], d[32], e[32], f[32];
    size_text(a, sizeof a, t8.peak), size_text(b, sizeof b, t8.plan.mem.weights);
    size_text(c, sizeof c, t8.peak - t8.plan.mem.weights - t8.plan.mem.arena - LATUP_PROCESS_OVERHEAD(latup_get_threads()));
    size_text(d, sizeof d, t8.plan.mem.arena), size_text(e, sizeof e, exact.peak);
    size_text(f, sizeof f, LATUP_PROCESS_OVERHEAD(latup_get_threads()));
    snprintf(want, sizeof want, "the smallest tiles (8x8 latent pixels) need %s (process %s, weights %s, inputs and "
             "outputs %s, tile arena %s); the exact decode needs %s", a, f, b, c, d, e);
    assert_non_null(strstr(msg, want));
    /* the same refusal from the decode itself, with no output */
    latup_tensor z = random_latent(1, 16, h, w, 5), img;
    latup_decode_opts o = {.max_memory = t8.peak - 1};
    assert_int_equal(latup_vae_decode(g_vae, &z, &img, &o), LATUP_E_NOMEM);
    assert_null(img.data);
    latup_tensor_free(&z);
}

/* A latent smaller than the smallest tile on one side: the refusal's tiles are 8 on the long side
 * and the whole short side. */
static void test_budget_thin_latent(void **state) {
    (void)state;
    const int h = 5, w = 30;
    const latup_decode_plan t8 = plan_for(h, w, 8, 0, LATUP_OK);
    assert_true(t8.tiled && t8.plan.h == 5 && t8.plan.w == 8);
    const latup_decode_plan p = plan_for(h, w, 0, t8.peak, LATUP_OK);
    assert_true(p.tiled && p.tile == 8 && p.overlap == 2);
    plan_for(h, w, 0, t8.peak - 1, LATUP_E_NOMEM);
    char want[64];
    size_text(want, sizeof want, t8.peak);
    printf("thin latent, budget %zu: %s\n", t8.peak - 1, latup_last_error());
    assert_non_null(strstr(latup_last_error(), want));
    assert_non_null(strstr(latup_last_error(), "the smallest tiles (5x8 latent pixels) need"));
}

/* latup_vae_plan_memory (the exact decode of an h x w latent) is the plan latup_vae_plan_decode
 * makes for it, on non-square latents both ways round. */
static void test_plan_memory_is_the_decode_plan(void **state) {
    (void)state;
    const int sides[][2] = {{40, 12}, {12, 40}, {9, 31}};
    for (size_t k = 0; k < sizeof sides / sizeof *sides; k++) {
        const int h = sides[k][0], w = sides[k][1];
        latup_vae_plan vp;
        assert_int_equal(latup_vae_plan_memory(g_vae, h, w, &vp), LATUP_OK);
        const latup_decode_plan dp = plan_for(h, w, 0, 0, LATUP_OK);
        const int ok = vp.h == h && vp.w == w && dp.plan.h == h && dp.plan.w == w && vp.mem.arena == dp.plan.mem.arena &&
                       vp.mem.output == dp.plan.mem.output && vp.mem.weights == dp.plan.mem.weights;
        printf("latent %dx%d: latup_vae_plan_memory %dx%d arena %zu output %zu; the decode plan's %dx%d arena %zu output %zu %s\n",
               h, w, vp.h, vp.w, vp.mem.arena, vp.mem.output, dp.plan.h, dp.plan.w, dp.plan.mem.arena, dp.plan.mem.output,
               ok ? "OK" : "NOT OK");
        assert_true(ok);
    }
}

/* A tile that covers the latent is the exact pass, and the budget still holds it: refused at the
 * exact peak - 1, taken at the exact peak. The encoder's image sizes at their limits: sides up to
 * 65536 and under 2^31 pixels, each at the value and one past. */
static void test_covering_tile_budget_and_image_limits(void **state) {
    (void)state;
    const int h = 20, w = 12;
    const latup_decode_plan exact = plan_for(h, w, 0, 0, LATUP_OK);
    const latup_decode_plan at = plan_for(h, w, 24, exact.peak, LATUP_OK);
    assert_false(at.tiled);
    plan_for(h, w, 24, exact.peak - 1, LATUP_E_NOMEM);
    printf("tile 24 over a 20x12 latent, budget exact peak - 1: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "over the"));
    assert_non_null(strstr(latup_last_error(), "use smaller tiles"));
    latup_vae *ve;
    assert_int_equal(latup_vae_load_parts(VAE_PATH, LATUP_VAE_ENCODER, &ve), LATUP_OK);
    const struct {
        int H, W;
        latup_status want;
    } img[] = {{8, 65536, LATUP_OK}, {8, 65537, LATUP_E_INPUT}, {65536, 8, LATUP_OK}, {65537, 8, LATUP_E_INPUT},
               {46340, 46340, LATUP_OK}, {46341, 46341, LATUP_E_INPUT}};
    for (size_t k = 0; k < sizeof img / sizeof *img; k++) {
        latup_encode_opts o = {.tile = 64};
        latup_decode_plan p;
        const latup_status st = latup_vae_plan_encode(ve, img[k].H, img[k].W, &o, &p);
        printf("encode plan of a %dx%d image: %d (want %d) %s\n", img[k].W, img[k].H, (int)st, (int)img[k].want,
               st == img[k].want ? "OK" : "NOT OK");
        assert_int_equal(st, img[k].want);
    }
    latup_vae_free(ve);
}

/* A latent of MIN_TILE (8) latent pixels a side or less: no tile is smaller than the exact pass,
 * so the refusal's "smallest tiles" are the exact pass, its numbers those of the exact decode; at 9
 * (one past) they are real tiles of 8. */
static void test_budget_refusal_at_min_tile(void **state) {
    (void)state;
    const int sides[][2] = {{8, 8}, {8, 5}, {5, 8}, {9, 8}, {8, 9}};
    for (size_t k = 0; k < sizeof sides / sizeof *sides; k++) {
        const int h = sides[k][0], w = sides[k][1];
        const latup_decode_plan exact = plan_for(h, w, 0, 0, LATUP_OK);
        plan_for(h, w, 0, exact.peak / 4, LATUP_E_NOMEM);
        const char *msg = latup_last_error();
        const latup_decode_plan t8 = h > 8 || w > 8 ? plan_for(h, w, 8, 0, LATUP_OK) : exact;
        char need[64], tiles[160];
        size_text(need, sizeof need, t8.peak);
        snprintf(tiles, sizeof tiles, "the smallest tiles (%dx%d latent pixels) need %s", h < 8 ? h : 8, w < 8 ? w : 8, need);
        const int ok = strstr(msg, tiles) != NULL;
        printf("latent %dx%d, budget %zu: the refusal names \"%s\" (the %s): %s\n", h, w, exact.peak / 4, tiles,
               h > 8 || w > 8 ? "tiles of 8" : "exact decode", ok ? "OK" : "NOT OK");
        if (!ok) printf("    %s\n", msg);
        assert_true(ok);
    }
}

/* A budget that tiles with the overlap given: kept when under the tile the search picks, T / 4
 * when it is not (at the tile and one under it). */
static void test_budget_overlap_given(void **state) {
    (void)state;
    const int h = 40, w = 28;
    const latup_decode_plan t16 = plan_for(h, w, 16, 0, LATUP_OK);
    const struct {
        int overlap, want;
    } cases[] = {{15, 15}, {16, 4}, {17, 4}, {1, 1}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        latup_decode_opts o = {.max_memory = t16.peak, .overlap = cases[k].overlap};
        latup_decode_plan p;
        assert_int_equal(latup_vae_plan_decode(g_vae, h, w, &o, &p), LATUP_OK);
        const int ok = p.tiled && p.tile == 16 && p.overlap == cases[k].want;
        printf("budget = tile 16's peak, overlap %d given: plan tile %d overlap %d (want 16, %d) %s\n", cases[k].overlap,
               p.tile, p.overlap, cases[k].want, ok ? "OK" : "NOT OK");
        assert_true(ok);
    }
}

/* The budget covers the whole batch's input and output: a budget the exact decode of one element
 * fits tiles a batch of two (whose images differ from the exact ones), and one element alone under
 * it is decoded exactly, bit for bit. */
static void test_budget_counts_the_batch(void **state) {
    (void)state;
    const int h = 24, w = 20;
    latup_tensor z2 = random_latent(2, 16, h, w, 9), z1 = z2, exact, got1, got2;
    z1.shape[0] = 1;
    const latup_decode_plan one = plan_for(h, w, 0, 0, LATUP_OK);
    latup_decode_opts o = {.max_memory = one.peak};
    assert_int_equal(latup_vae_decode(g_vae, &z1, &exact, NULL), LATUP_OK);
    assert_int_equal(latup_vae_decode(g_vae, &z1, &got1, &o), LATUP_OK);
    assert_memory_equal(exact.data, got1.data, (size_t)latup_tensor_numel(&exact) * sizeof(float));
    assert_int_equal(latup_vae_decode(g_vae, &z2, &got2, &o), LATUP_OK);
    double m = 0;
    for (int64_t i = 0; i < latup_tensor_numel(&exact); i++) m = fmax(m, fabs((double)got2.data[i] - exact.data[i]));
    printf("batch of 2 under one element's exact peak: max |tiled - exact| = %.3e (must be > 0: tiled)\n", m);
    assert_true(m > 0);
    latup_tensor_free(&exact);
    latup_tensor_free(&got1);
    latup_tensor_free(&got2);
    latup_tensor_free(&z2);
}

/* The decode plans the latent as it is, not transposed: where an h x w latent's exact decode
 * needs less than the w x h one's, a budget of exactly the h x w peak decodes it exactly. */
static void test_budget_not_transposed(void **state) {
    (void)state;
    static const int shapes[][2] = {{40, 8}, {8, 40}, {33, 9}, {9, 33}, {64, 12}, {12, 64}};
    int h = 0, w = 0;
    for (int k = 0; k < 6 && !h; k++) {
        const latup_decode_plan a = plan_for(shapes[k][0], shapes[k][1], 0, 0, LATUP_OK);
        const latup_decode_plan b = plan_for(shapes[k][1], shapes[k][0], 0, 0, LATUP_OK);
        if (a.peak < b.peak) h = shapes[k][0], w = shapes[k][1];
    }
    printf("an h x w latent whose exact decode needs less than its transpose: %dx%d\n", h, w);
    if (!h) return; /* the planner is symmetric here: nothing to tell apart */
    const latup_decode_plan p = plan_for(h, w, 0, 0, LATUP_OK);
    latup_tensor z = random_latent(1, 16, h, w, 11), exact, got;
    latup_decode_opts o = {.max_memory = p.peak};
    assert_int_equal(latup_vae_decode(g_vae, &z, &exact, NULL), LATUP_OK);
    assert_int_equal(latup_vae_decode(g_vae, &z, &got, &o), LATUP_OK);
    assert_memory_equal(exact.data, got.data, (size_t)latup_tensor_numel(&exact) * sizeof(float));
    latup_tensor_free(&exact);
    latup_tensor_free(&got);
    latup_tensor_free(&z);
}

/* ---- the plan's tiles are the ones that run --------------------------------------------------------
 * Under a budget the library picks the tile and the overlap (the plan); the decode (or encode, or
 * latup_execute) under that budget must be the one with that tile and overlap asked for, bit for
 * bit; and the same tile with the overlap one more must differ, so the comparison can fail. */
static int same_bits(const latup_tensor *a, const latup_tensor *b) {
    return latup_tensor_numel(a) == latup_tensor_numel(b) &&
           !memcmp(a->data, b->data, (size_t)latup_tensor_numel(a) * sizeof(float));
}

static latup_tensor decode_with(const latup_tensor *z, int tile, int overlap, size_t budget) {
    latup_decode_opts o = {.tile = tile, .overlap = overlap, .max_memory = budget};
    latup_tensor img;
    assert_int_equal(latup_vae_decode(g_vae, z, &img, &o), LATUP_OK);
    return img;
}

/* One line: what ran under `what` against the same tile/overlap asked for, and overlap + 1. */
static void check_ran_as_planned(const char *what, const latup_tensor *ran, const latup_tensor *asked,
                                 const latup_tensor *other, int tile, int overlap) {
    const int same = same_bits(ran, asked), differs = !same_bits(ran, other);
    printf("%s: plan tile %d overlap %d; the run equals tile %d overlap %d asked for, bit for bit: %s; differs from "
           "overlap %d: %s %s\n", what, tile, overlap, tile, overlap, same ? "yes" : "NO", overlap + 1,
           differs ? "yes" : "NO", same && differs ? "OK" : "NOT OK");
    assert_true(same && differs);
}

static void test_plan_is_what_runs(void **state) {
    (void)state;
    const int h = 40, w = 28;
    latup_tensor z = random_latent(1, 16, h, w, 41);
    const latup_decode_plan exact = plan_for(h, w, 0, 0, LATUP_OK);
    const latup_decode_plan t16 = plan_for(h, w, 16, 0, LATUP_OK);
    const struct {
        const char *what;
        int tile;
        size_t budget;
    } cases[] = {{"decode, budget = exact peak - 1", 0, exact.peak - 1},
                 {"decode, budget = tile 16's peak", 0, t16.peak},
                 {"decode, --tile 24 (default overlap)", 24, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const latup_decode_plan p = plan_for(h, w, cases[c].tile, cases[c].budget, LATUP_OK);
        assert_true(p.tiled);
        latup_tensor ran = decode_with(&z, cases[c].tile, 0, cases[c].budget);
        latup_tensor asked = decode_with(&z, p.tile, p.overlap, 0), other = decode_with(&z, p.tile, p.overlap + 1, 0);
        check_ran_as_planned(cases[c].what, &ran, &asked, &other, p.tile, p.overlap);
        latup_tensor_free(&ran), latup_tensor_free(&asked), latup_tensor_free(&other);
    }
    /* latup_prepare / latup_execute (the CLI's path): the budget one byte under the exact call's peak */
    latup_call_opts co = {.vae = g_vae};
    latup_call *call;
    assert_int_equal(latup_prepare(&co, &z, &call), LATUP_OK);
    co.max_memory = latup_call_plan(call)->mem.peak - 1;
    latup_call_free(call);
    assert_int_equal(latup_prepare(&co, &z, &call), LATUP_OK);
    const latup_decode_plan cp = latup_call_plan(call)->decode;
    assert_true(cp.tiled);
    latup_tensor ran, asked = decode_with(&z, cp.tile, cp.overlap, 0), other = decode_with(&z, cp.tile, cp.overlap + 1, 0);
    assert_int_equal(latup_execute(call, &z, NULL, &ran), LATUP_OK);
    check_ran_as_planned("latup_execute, budget = the exact call's peak - 1", &ran, &asked, &other, cp.tile, cp.overlap);
    latup_call_free(call);
    latup_tensor_free(&ran), latup_tensor_free(&asked), latup_tensor_free(&other);
    latup_tensor_free(&z);

    /* the encoder: a 3x80x56 image (latent 40x28), a budget one byte under the exact encode's peak */
    latup_vae *ve;
    assert_int_equal(latup_vae_load_parts(VAE_PATH, LATUP_VAE_ENCODER, &ve), LATUP_OK);
    latup_tensor img = random_latent(1, 3, 80, 56, 42), zr, za, zo;
    latup_decode_plan ex, ep;
    assert_int_equal(latup_vae_plan_encode(ve, 80, 56, NULL, &ex), LATUP_OK);
    latup_encode_opts eo = {.max_memory = ex.peak - 1};
    assert_int_equal(latup_vae_plan_encode(ve, 80, 56, &eo, &ep), LATUP_OK);
    assert_true(ep.tiled);
    assert_int_equal(latup_vae_encode(ve, &img, &zr, &eo), LATUP_OK);
    latup_encode_opts ea = {.tile = ep.tile, .overlap = ep.overlap}, eb = {.tile = ep.tile, .overlap = ep.overlap + 1};
    assert_int_equal(latup_vae_encode(ve, &img, &za, &ea), LATUP_OK);
    assert_int_equal(latup_vae_encode(ve, &img, &zo, &eb), LATUP_OK);
    check_ran_as_planned("encode, budget = exact peak - 1", &zr, &za, &zo, ep.tile, ep.overlap);
    latup_tensor_free(&zr), latup_tensor_free(&za), latup_tensor_free(&zo), latup_tensor_free(&img);
    latup_vae_free(ve);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiled_matches_tile_by_tile),
        cmocka_unit_test(test_tiled_3d_input),
        cmocka_unit_test(test_tile_plan_edges),
        cmocka_unit_test(test_plan_peak_parts),
        cmocka_unit_test(test_budget_edges),
        cmocka_unit_test(test_budget_thin_latent),
        cmocka_unit_test(test_budget_counts_the_batch),
        cmocka_unit_test(test_budget_not_transposed),
        cmocka_unit_test(test_plan_is_what_runs),
        cmocka_unit_test(test_budget_refusal_at_min_tile),
        cmocka_unit_test(test_covering_tile_budget_and_image_limits),
        cmocka_unit_test(test_plan_memory_is_the_decode_plan),
        cmocka_unit_test(test_budget_overlap_given),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
