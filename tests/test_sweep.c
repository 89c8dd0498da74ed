/* test_sweep.c — the planner at the sizes people run, without golden data: LUA at the released
 * widths (E 360, 12 heads, window 16, F 256, C 16) with one RSTB of one block, x2 and x4, over
 * latent sizes from the minimum (9) to 84 hitting every residue mod 16 in both dimensions, long
 * thin latents (9x225) and 128x128; the VAE at the real widths at odd sizes and under tiling. Every run
 * must succeed with finite output; in `make test SANITIZE=1` every arena buffer is followed by
 * guard floats that the library checks after each image and tile (a damaged guard fails the
 * call, naming the buffer), and ASan/UBSan watch everything else. One line per run. */
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

static int g_bad, g_runs;

static void report(const char *what, latup_status st, const latup_tensor *y, size_t arena) {
    int finite = st == LATUP_OK;
    for (int64_t i = 0; finite && i < latup_tensor_numel(y); i++) finite = isfinite(y->data[i]);
    const int ok = st == LATUP_OK && finite;
    printf("sweep %-44s arena %8.1f MiB  %s%s%s\n", what, arena / 1048576.0, ok ? "OK" : "NOT OK",
           st != LATUP_OK ? ": " : "", st != LATUP_OK ? latup_last_error() : "");
    g_bad += !ok;
    g_runs++;
}

/* ---- LUA: the released widths, one RSTB of one block ------------------------------------------- */
/* The tensors of a LUA with one RSTB of `depth` blocks (spec layout), generated and written. */
static void write_lua(const char *path, int C, int E, int depth, int nH, int ws, int F) {
    latup_weights w = {0};
    w.t = calloc(256, sizeof *w.t);
    size_t total = 0;
    char names[256][96];
    int64_t shapes[256][4];
    int ndims[256];
    int n = 0;
#define T(nd, a, b, c, d, ...)                                                                              \
    (snprintf(names[n], sizeof names[n], __VA_ARGS__), ndims[n] = nd, shapes[n][0] = a, shapes[n][1] = b, \
     shapes[n][2] = c, shapes[n][3] = d, n++)
    T(4, E, C, 3, 3, "conv_first.weight"), T(1, E, 0, 0, 0, "conv_first.bias");
    T(1, E, 0, 0, 0, "patch_embed.norm.weight"), T(1, E, 0, 0, 0, "patch_embed.norm.bias");
    for (int j = 0; j < depth; j++) {
        const char *p = "layers.0.residual_group.blocks";
        T(1, E, 0, 0, 0, "%s.%d.norm1.weight", p, j), T(1, E, 0, 0, 0, "%s.%d.norm1.bias", p, j);
        T(2, (2 * ws - 1) * (2 * ws - 1), nH, 0, 0, "%s.%d.attn.relative_position_bias_table", p, j);
        T(2, 3 * E, E, 0, 0, "%s.%d.attn.qkv.weight", p, j), T(1, 3 * E, 0, 0, 0, "%s.%d.attn.qkv.bias", p, j);
        T(2, E, E, 0, 0, "%s.%d.attn.proj.weight", p, j), T(1, E, 0, 0, 0, "%s.%d.attn.proj.bias", p, j);
        T(1, E, 0, 0, 0, "%s.%d.norm2.weight", p, j), T(1, E, 0, 0, 0, "%s.%d.norm2.bias", p, j);
        T(2, 2 * E, E, 0, 0, "%s.%d.mlp.fc1.weight", p, j), T(1, 2 * E, 0, 0, 0, "%s.%d.mlp.fc1.bias", p, j);
        T(2, E, 2 * E, 0, 0, "%s.%d.mlp.fc2.weight", p, j), T(1, E, 0, 0, 0, "%s.%d.mlp.fc2.bias", p, j);
    }
    T(4, E, E, 3, 3, "layers.0.conv.weight"), T(1, E, 0, 0, 0, "layers.0.conv.bias");
    T(1, E, 0, 0, 0, "norm.weight"), T(1, E, 0, 0, 0, "norm.bias");
    T(4, E, E, 3, 3, "conv_after_body.weight"), T(1, E, 0, 0, 0, "conv_after_body.bias");
    for (int s = 2; s <= 4; s *= 2) {
        T(4, F, E, 3, 3, "heads.x%d.conv_before.0.weight", s), T(1, F, 0, 0, 0, "heads.x%d.conv_before.0.bias", s);
        for (int k = 0; k < (s == 2 ? 1 : 2); k++)
            T(4, 4 * F, F, 3, 3, "heads.x%d.upsample.%d.weight", s, 2 * k),
                T(1, 4 * F, 0, 0, 0, "heads.x%d.upsample.%d.bias", s, 2 * k);
        T(4, C, F, 3, 3, "heads.x%d.conv_last.weight", s), T(1, C, 0, 0, 0, "heads.x%d.conv_last.bias", s);
    }
#undef T
    for (int i = 0; i < n; i++) {
        int64_t k = 1;
        for (int d = 0; d < ndims[i]; d++) k *= shapes[i][d];
        total += (size_t)k;
    }
    float *blob = malloc(total * sizeof(float));
    w.blob = blob;
    for (int i = 0; i < n; i++, w.n++) {
        latup_wtensor *t = &w.t[i];
        t->name = strdup(names[i]);
        t->dtype = LATUP_DT_F32;
        t->ndim = ndims[i];
        t->numel = 1;
        for (int d = 0; d < ndims[i]; d++) t->shape[d] = shapes[i][d], t->numel *= shapes[i][d];
        t->f32 = blob;
        blob += t->numel;
        wg_weight(t->f32, t->name, t->ndim, t->shape, 0x5eed, 15);
    }
    assert_int_equal(latup_safetensors_write(path, &w), LATUP_OK);
    latup_weights_free(&w);
}

static void upscale_one(const latup_lua *m, int H, int W, int scale) {
    latup_tensor x, y = {0};
    const int64_t s[3] = {16, H, W};
    assert_int_equal(latup_tensor_alloc(&x, 3, s), LATUP_OK);
    char name[64];
    snprintf(name, sizeof name, "lua %dx%d", H, W);
    wg_input(x.data, latup_tensor_numel(&x), name, 7);
    latup_lua_plan p;
    assert_int_equal(latup_lua_plan_memory(m, H, W, scale, NULL, &p), LATUP_OK);
    latup_status st = latup_lua_upscale(m, &x, scale, &y, NULL);
    snprintf(name, sizeof name, "LUA E360 1x1 %dx%d x%d", H, W, scale);
    report(name, st, &y, p.mem.arena);
    if (st == LATUP_OK) {
        assert_int_equal(y.shape[1], (int64_t)scale * H);
        assert_int_equal(y.shape[2], (int64_t)scale * W);
    }
    latup_tensor_free(&y);
    latup_tensor_free(&x);
}

static void test_sweep_lua(void **state) {
    (void)state;
    char path[] = "/tmp/latup_sweep_lua_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_lua(path, 16, 360, 1, 12, 16, 256);
    latup_lua *m = NULL;
    assert_int_equal(latup_lua_load(path, &m), LATUP_OK);
    unlink(path);
    latup_set_threads(2);
    g_bad = g_runs = 0;
    /* H = 9 + 5i (9..84) and W = 9 + (3i mod 16) (9..24), i = 0..15: 5 and 3 are prime to 16,
     * so each dimension takes every residue mod 16 once, from the smallest size window 16 allows
     * (9); W stays small to keep the sweep cheap, 128x128 covers the wide side */
    for (int i = 0; i < 16; i++)
        for (int s = 2; s <= 4; s *= 2) upscale_one(m, 9 + 5 * i, 9 + (3 * i) % 16, s);
    upscale_one(m, 9, 225, 2); /* long and thin, both ways */
    upscale_one(m, 225, 9, 2);
    upscale_one(m, 9, 225, 4);
    for (int s = 2; s <= 4; s *= 2) upscale_one(m, 128, 128, s);
    printf("sweep, LUA: %d runs, %d NOT OK\n", g_runs, g_bad);
    latup_lua_free(m);
    assert_int_equal(g_bad, 0);
}

/* ---- VAE: the real widths, odd sizes, tiles ------------------------------------------------------ */
static void decode_one(const latup_vae *v, int h, int w, int tile, int overlap) {
    latup_tensor z, img = {0};
    const int64_t s[3] = {16, h, w};
    assert_int_equal(latup_tensor_alloc(&z, 3, s), LATUP_OK);
    char name[96];
    snprintf(name, sizeof name, "vae %dx%d", h, w);
    wg_input(z.data, latup_tensor_numel(&z), name, 9);
    latup_decode_opts o = {.tile = tile, .overlap = overlap};
    latup_decode_plan dp;
    assert_int_equal(latup_vae_plan_decode(v, h, w, &o, &dp), LATUP_OK);
    latup_status st = latup_vae_decode(v, &z, &img, &o);
    if (tile)
        snprintf(name, sizeof name, "VAE real widths %dx%d tiles %d overlap %d (%s)", h, w, tile, overlap,
                 dp.tiled ? "tiled" : "one tile");
    else
        snprintf(name, sizeof name, "VAE real widths %dx%d", h, w);
    report(name, st, &img, dp.plan.mem.arena);
    latup_tensor_free(&img);
    latup_tensor_free(&z);
}

static void test_sweep_vae(void **state) {
    (void)state;
    char path[512];
    assert_true(wg_generate_tmp("ref_data/vae/golden_real_widths.safetensors", path, sizeof path) > 0);
    latup_vae *v = NULL;
    assert_int_equal(latup_vae_load(path, &v), LATUP_OK);
    unlink(path);
    latup_set_threads(2);
    g_bad = g_runs = 0;
    static const int exact[][2] = {{1, 1}, {2, 7}, {5, 3}, {11, 13}, {16, 12}, {13, 29}};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) decode_one(v, exact[i][0], exact[i][1], 0, 0);
    static const int tiled[][4] = {{21, 17, 8, 2}, {21, 17, 12, 5}, {30, 9, 16, 4}, {9, 33, 7, 6}, {12, 12, 12, 3}};
    for (size_t i = 0; i < sizeof tiled / sizeof tiled[0]; i++)
        decode_one(v, tiled[i][0], tiled[i][1], tiled[i][2], tiled[i][3]);
    printf("sweep, VAE: %d runs, %d NOT OK\n", g_runs, g_bad);
    latup_vae_free(v);
    assert_int_equal(g_bad, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_lua),
        cmocka_unit_test(test_sweep_vae),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
