/* bench_paper.c — the paper's speed claim at the released widths (issue 20): from a 512 px image's
 * latent (64x64, 16 channels) to a 1024 px image, two ways (arXiv 2511.10629 compares them: 0.42 s
 * for LUA against 1.87 s for a pixel-space SwinIR on its GPU):
 *
 *   LUA path    upscale the latent x2 (LUA, released config), then decode 128x128 -> 1024 px;
 *   pixel path  decode the 64x64 latent -> 512 px, then SwinIR x2 on the image -> 1024 px.
 *
 * Both start where a diffusion pipeline stops; what each adds is measured over the 512 px decode
 * that a pipeline does anyway: LUA path - decode 64x64, and the SwinIR alone. Random weights
 * (the tests' seeded generators) at the released widths: LUA E 360, 6 RSTBs of 6 blocks, 12
 * heads, window 16, head width 256; the pixel SwinIR with the same trunk on RGB and SwinIR's
 * classic pixelshuffle head (64 features); the VAE decoder at the FLUX widths (128/256/512/512).
 * Timing a random model times the same arithmetic as a trained one (no data-dependent work).
 *
 * The rounds interleave the paths (LUA, pixel, LUA, pixel, ...) in one warm process, after one
 * untimed warm-up of each; the medians and every round are printed, with the CPU, the threads and
 * the OpenBLAS kernels. Build: make bench-paper (or make build/bench_paper).
 *
 *   build/bench_paper [--runs 5] [--threads N] [--size 64] [--scale 2|4]
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "latup.h"
#include "bench_system.h"
#include "gen_models.h"

/* the real-width VAE of the tests: its golden file holds the generator's spec (weightgen.h) */
#define REAL_WIDTHS_GOLDEN "ref_data/vae/golden_real_widths.safetensors"
/* the paper's timings of the two paths (its table of inference times, 1024 px) */
#define PAPER_LUA_S 0.42
#define PAPER_PIXEL_S 1.87

static uint64_t rng = 0x5eed2026;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static double median(const double *v, int n) {
    double s[64];
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, cmpd);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

static int fail(const char *what) {
    fprintf(stderr, "bench_paper: %s: %s\n", what, latup_last_error());
    return 1;
}

typedef struct {
    const latup_lua *lua, *swinir;
    const latup_vae *vae;
    int scale;
} models;

/* LUA path: times of the upscale and of the decode. */
static latup_status lua_path(const models *m, const latup_tensor *z, double *t_up, double *t_dec) {
    latup_tensor up, img;
    double t0 = latup_now();
    latup_status st = latup_lua_upscale(m->lua, z, m->scale, &up, NULL);
    *t_up = latup_now() - t0;
    if (st) return st;
    t0 = latup_now();
    st = latup_vae_decode(m->vae, &up, &img, NULL);
    *t_dec = latup_now() - t0;
    latup_tensor_free(&up);
    latup_tensor_free(&img);
    return st;
}

/* Pixel path: times of the decode and of the SwinIR (on the decoded image mapped to [0,1], as
 * diffusers' postprocess gives it to any pixel-space upscaler). */
static latup_status pixel_path(const models *m, const latup_tensor *z, double *t_dec, double *t_sr) {
    latup_tensor img, sr;
    double t0 = latup_now();
    latup_status st = latup_vae_decode(m->vae, z, &img, NULL);
    *t_dec = latup_now() - t0;
    if (st) return st;
    const int64_t n = latup_tensor_numel(&img);
    for (int64_t i = 0; i < n; i++) {
        const float v = 0.5f * img.data[i] + 0.5f;
        img.data[i] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
    t0 = latup_now();
    st = latup_lua_upscale(m->swinir, &img, m->scale, &sr, NULL);
    *t_sr = latup_now() - t0;
    latup_tensor_free(&img);
    latup_tensor_free(&sr);
    return st;
}

int main(int argc, char **argv) {
    int runs = 5, threads = 0, size = 64, scale = 2;
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "usage: bench_paper [--runs N] [--threads N] [--size S] [--scale 2|4]\n");
            return 1;
        }
        const int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--runs")) runs = v;
        else if (!strcmp(argv[i], "--threads")) threads = v;
        else if (!strcmp(argv[i], "--size")) size = v;
        else if (!strcmp(argv[i], "--scale")) scale = v;
        else {
            fprintf(stderr, "usage: bench_paper [--runs N] [--threads N] [--size S] [--scale 2|4]\n");
            return 1;
        }
        i++;
    }
    if (runs < 1 || runs > 64 || size < 16 || size > 256 || (scale != 2 && scale != 4)) {
        fprintf(stderr, "bench_paper: runs 1..64, size 16..256, scale 2 or 4\n");
        return 1;
    }
    if (threads > 0) latup_set_threads(threads);

    /* the three models, written once to temporary files and loaded as any checkpoint is */
    char lpath[512], spath[512], vpath[512];
    const gen_lua_cfg sw = {3, GEN_LUA_RELEASED.E, GEN_LUA_RELEASED.layers, GEN_LUA_RELEASED.depth,
                            GEN_LUA_RELEASED.heads, GEN_LUA_RELEASED.ws, 64, GEN_LUA_RELEASED.seed + 1};
    if (gen_lua_file(&GEN_LUA_RELEASED, lpath, sizeof lpath) != 0) return fail("writing the LUA weights");
    if (gen_swinir_file(&sw, scale, spath, sizeof spath) != 0) return fail("writing the SwinIR weights");
    if (wg_generate_tmp(REAL_WIDTHS_GOLDEN, vpath, sizeof vpath) < 0) return fail("writing the VAE weights");
    latup_lua *lua = NULL, *swinir = NULL;
    latup_vae *vae = NULL;
    latup_status st = latup_lua_load(lpath, &lua);
    if (!st) st = latup_lua_load(spath, &swinir);
    if (!st) st = latup_vae_load(vpath, &vae);
    unlink(lpath), unlink(spath), unlink(vpath);
    if (st) return fail("loading the models");
    const models m = {lua, swinir, vae, scale};

    latup_tensor z;
    const int64_t zs[3] = {16, size, size};
    if (latup_tensor_alloc(&z, 3, zs)) return fail("the latent");
    for (int64_t i = 0; i < latup_tensor_numel(&z); i++) z.data[i] = frand();

    bench_print_system();
    const latup_lua_config *lc = latup_lua_get_config(lua), *sc = latup_lua_get_config(swinir);
    printf("LUA: E %d, %d RSTBs x %d blocks, window %d, head width %d, %.1fM parameters\n", lc->embed_dim,
           lc->num_layers, lc->depths[0], lc->window_size, lc->head_feat, lc->n_params / 1e6);
    printf("pixel SwinIR x%d: the same trunk on RGB, pixelshuffle head of %d features, %.1fM parameters\n", scale,
           sc->head_feat, sc->n_params / 1e6);
    printf("VAE decoder: FLUX widths %d/%d/%d/%d, %.1fM parameters\n", latup_vae_get_config(vae)->channels[0],
           latup_vae_get_config(vae)->channels[1], latup_vae_get_config(vae)->channels[2],
           latup_vae_get_config(vae)->channels[3], latup_vae_get_config(vae)->n_params / 1e6);
    printf("from a %d px image's latent (%dx%d) to %d px, x%d; %d rounds, interleaved (LUA, pixel, ...), after one "
           "untimed warm-up of each path\n", 8 * size, size, size, 8 * size * scale, scale, runs);
    fflush(stdout);

    double up[64], dec_big[64], dec_small[64], sr[64], lua_total[64], pix_total[64], lua_added[64];
    double a, b;
    if (lua_path(&m, &z, &a, &b) || pixel_path(&m, &z, &a, &b)) return fail("the warm-up");
    printf("round  LUA: upscale  decode %dx%d  total | pixel: decode %dx%d  SwinIR  total\n", size * scale,
           size * scale, size, size);
    for (int r = 0; r < runs; r++) {
        if (lua_path(&m, &z, &up[r], &dec_big[r])) return fail("the LUA path");
        if (pixel_path(&m, &z, &dec_small[r], &sr[r])) return fail("the pixel path");
        lua_total[r] = up[r] + dec_big[r], pix_total[r] = dec_small[r] + sr[r];
        lua_added[r] = lua_total[r] - dec_small[r];
        printf("%5d  %12.2f  %13.2f  %5.2f | %18.2f  %6.2f  %5.2f\n", r + 1, up[r], dec_big[r], lua_total[r],
               dec_small[r], sr[r], pix_total[r]);
        fflush(stdout);
    }
    const double la = median(lua_added, runs), pa = median(sr, runs);
    printf("medians of %d (seconds): LUA upscale %.2f, decode %dx%d %.2f, LUA path %.2f; decode %dx%d %.2f, "
           "SwinIR %.2f, pixel path %.2f\n", runs, median(up, runs), size * scale, size * scale, median(dec_big, runs),
           median(lua_total, runs), size, size, median(dec_small, runs), median(sr, runs), median(pix_total, runs));
    printf("added over the %d px decode: LUA path %.2f s, pixel path %.2f s; ratio %.3f (the paper: %.2f s / %.2f s "
           "= %.3f); whole paths: %.2f s / %.2f s = %.3f\n", 8 * size, la, pa, la / pa, PAPER_LUA_S, PAPER_PIXEL_S,
           PAPER_LUA_S / PAPER_PIXEL_S, median(lua_total, runs), median(pix_total, runs),
           median(lua_total, runs) / median(pix_total, runs));
    latup_tensor_free(&z);
    latup_lua_free(lua);
    latup_lua_free(swinir);
    latup_vae_free(vae);
    return 0;
}
