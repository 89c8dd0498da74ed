/* bench_cuda.c — times the CUDA path (make CUDA=1 bench): LUA at the released config (E 360,
 * 6x6 blocks, 12 heads, window 16, F 256, C 16; seeded random weights) x2 and x4 on 64x64 and
 * 128x128 latents, and the real-width VAE decoder (weights from the generator spec in
 * ref_data/vae/golden_real_widths.safetensors) on a 128x128 latent. Each figure is the median of
 * --runs library calls after one warm-up call (which uploads the weights): the whole call, i.e.
 * the latent copied in, the forward pass, the result copied back. One line per figure on stdout
 * and, with --out FILE, in FILE. --keep-weights DIR leaves the two weight files there (for
 * tools/bench/bench_torch_cuda.py, PyTorch on the same weights).
 *
 *   build-cuda/bench_cuda [--runs 5] [--out FILE] [--keep-weights DIR] [--cpu]
 *
 * --cpu also times the CPU path on the same calls (slow: minutes at 128x128). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen_models.h"
#include "latup.h"
#include "bench_system.h"

static int cmpd(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void latent(latup_tensor *x, int C, int h, int w, uint64_t seed) {
    const int64_t s[3] = {C, h, w};
    if (latup_tensor_alloc(x, 3, s) != LATUP_OK) exit(3);
    for (int64_t i = 0; i < latup_tensor_numel(x); i++) x->data[i] = (float)((double)(wg_splitmix64(&seed) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static FILE *out_file;

static void emit(const char *what, latup_device dev, int runs, const double *t) {
    double s[64];
    memcpy(s, t, (size_t)runs * sizeof(double));
    qsort(s, (size_t)runs, sizeof(double), cmpd);
    char line[256];
    snprintf(line, sizeof line, "%-28s %-4s median %9.1f ms  min %9.1f ms  max %9.1f ms  (%d runs)", what,
             dev == LATUP_DEVICE_CUDA ? "cuda" : "cpu", 1e3 * s[runs / 2], 1e3 * s[0], 1e3 * s[runs - 1], runs);
    printf("%s\n", line);
    fflush(stdout);
    if (out_file) fprintf(out_file, "%s\n", line), fflush(out_file);
}

static int fail(const char *what) {
    fprintf(stderr, "bench_cuda: %s: %s\n", what, latup_last_error());
    return 1;
}

static int time_lua(const latup_lua *m, int size, int scale, latup_device dev, int runs) {
    latup_tensor x, y;
    latup_run_opts o = {.device = dev};
    double t[64];
    latent(&x, 16, size, size, 42);
    for (int r = -1; r < runs; r++) { /* r = -1: warm-up (weights uploaded, cuBLAS started) */
        const double t0 = latup_now();
        if (latup_lua_upscale(m, &x, scale, &y, &o) != LATUP_OK) return fail("upscale");
        if (r >= 0) t[r] = latup_now() - t0;
        latup_tensor_free(&y);
    }
    char what[64];
    snprintf(what, sizeof what, "LUA x%d %dx%d", scale, size, size);
    emit(what, dev, runs, t);
    latup_tensor_free(&x);
    return 0;
}

static int time_vae(const latup_vae *v, int size, latup_device dev, int runs) {
    latup_tensor z, img;
    latup_decode_opts o = {.device = dev};
    double t[64];
    latent(&z, 16, size, size, 43);
    for (int r = -1; r < runs; r++) {
        const double t0 = latup_now();
        if (latup_vae_decode(v, &z, &img, &o) != LATUP_OK) return fail("decode");
        if (r >= 0) t[r] = latup_now() - t0;
        latup_tensor_free(&img);
    }
    char what[64];
    snprintf(what, sizeof what, "VAE decode %dx%d -> %dx%d", size, size, 8 * size, 8 * size);
    emit(what, dev, runs, t);
    latup_tensor_free(&z);
    return 0;
}

int main(int argc, char **argv) {
    int runs = 5, cpu = 0;
    const char *out = NULL, *keep = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--keep-weights") && i + 1 < argc) keep = argv[++i];
        else if (!strcmp(argv[i], "--cpu")) cpu = 1;
        else {
            fprintf(stderr, "usage: bench_cuda [--runs N] [--out FILE] [--keep-weights DIR] [--cpu]\n");
            return 1;
        }
    }
    if (runs < 1 || runs > 64) runs = 5;
    if (out && !(out_file = fopen(out, "a"))) return perror(out), 1;
    latup_set_threads(0);
    bench_print_system();
    if (keep) setenv("TMPDIR", keep, 1); /* the weight files are made there, then renamed */
    char lpath[512], vpath[512];
    if (gen_lua_file(&GEN_LUA_RELEASED, lpath, sizeof lpath) != 0) return fail("writing the LUA weights");
    if (wg_generate_tmp("ref_data/vae/golden_real_widths.safetensors", vpath, sizeof vpath) < 0)
        return fail("writing the VAE weights (run from the repository root)");
    if (keep) { /* stable names, made in keep (TMPDIR) so the rename stays on one file system */
        char p[512];
        snprintf(p, sizeof p, "%s/lua_released.safetensors", keep);
        if (rename(lpath, p) != 0) return perror(p), 1;
        memcpy(lpath, p, sizeof p);
        snprintf(p, sizeof p, "%s/vae_real_widths.safetensors", keep);
        if (rename(vpath, p) != 0) return perror(p), 1;
        memcpy(vpath, p, sizeof p);
    }
    latup_lua *m = NULL;
    latup_vae *v = NULL;
    if (latup_lua_load(lpath, &m) != LATUP_OK || latup_vae_load(vpath, &v) != LATUP_OK) return fail("loading");
    int rc = 0;
    static const int sizes[2] = {64, 128}, scales[2] = {2, 4};
    for (int d = 0; d <= cpu && !rc; d++) {
        const latup_device dev = d ? LATUP_DEVICE_CPU : LATUP_DEVICE_CUDA;
        for (int s = 0; s < 2 && !rc; s++)
            for (int k = 0; k < 2 && !rc; k++) rc = time_lua(m, sizes[s], scales[k], dev, d ? 1 : runs);
        if (!rc) rc = time_vae(v, 128, dev, d ? 1 : runs);
    }
    latup_lua_free(m), latup_vae_free(v);
    if (!keep) unlink(lpath), unlink(vpath);
    if (out_file) fclose(out_file);
    return rc;
}
