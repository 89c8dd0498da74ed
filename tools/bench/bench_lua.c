/* bench_lua.c — times one LUA upscale with random weights at any config (default: the released
 * FLUX config, E 360, 6x6 blocks, 12 heads, window 16, F 256, C 16) and reports the median of
 * several runs next to the FLOP count and the achieved GFLOP/s. Build: make bench.
 *
 *   build/bench_lua [--size 64] [--scale 2] [--threads N] [--runs 3] [--depth 6] [--layers 6]
 *                   [--exact] [--model FILE]  (FILE: time that checkpoint instead)
 *                   [--serve]  (one timed run per line on stdin: tools/bench/bench_serve.h)
 *   build/bench_lua --write-weights FILE   (the generated model, for latup upscale/run -m FILE)
 *
 * The random model (the tests' seeded generator, tests/support/gen_models.h) is written once to a temporary safetensors file and loaded through the normal
 * loader, so the timing covers exactly the code path the CLI runs. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "latup.h"
#include "io/weights.h"
#include "ops/fastmath.h"
#include "bench_system.h"
#include "gen_models.h"

#include "bench_serve.h"

typedef struct {
    int C, E, layers, depth, heads, ws, F, scale;
} cfg;

/* the input latent's values: uniform in [-1, 1) */
static uint64_t rng = 0x1234567;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
}

/* Multiply-adds x 2 of one upscale of an h x w latent (h, w multiples of the window). */
static double flops(const cfg *c, int h, int w) {
    const double L = (double)h * w, E = c->E, N = (double)c->ws * c->ws, F = c->F, S = c->scale;
    double conv3 = 2.0 * 9.0;
    double block = 2.0 * L * E * 3 * E     /* qkv */
                   + 2.0 * 2.0 * L * N * E /* q k^T and P v, all heads */
                   + 2.0 * L * E * E       /* proj */
                   + 2.0 * 2.0 * L * E * 2 * E; /* fc1, fc2 */
    double trunk = conv3 * L * E * c->C + c->layers * (c->depth * block + conv3 * L * E * E) + conv3 * L * E * E;
    double head = conv3 * L * F * E, l = L;
    for (int s = 1; s < S; s *= 2) head += conv3 * l * 4 * F * F, l *= 4;
    head += conv3 * l * c->C * F;
    return trunk + head;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef struct {
    const latup_lua *m;
    const latup_tensor *x;
    int scale;
} upscale_job;

static latup_status upscale_once(void *ctx) {
    const upscale_job *j = ctx;
    latup_tensor y;
    const latup_status st = latup_lua_upscale(j->m, j->x, j->scale, &y, NULL);
    if (st == LATUP_OK) latup_tensor_free(&y);
    return st;
}

int main(int argc, char **argv) {
    cfg c = {16, 360, 6, 6, 12, 16, 256, 2};
    int size = 64, threads = 0, runs = 3;
    const char *model_path = NULL; /* a checkpoint to time instead of the generated model */
    const char *write_w = NULL;    /* keep the generated model in this file, time nothing */
    int serve = 0;
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--exact")) { /* the plain reference arithmetic (libm exp/erf) */
            latup_set_exact_math(1);
            i--;
            continue;
        }
        if (!strcmp(argv[i], "--serve")) {
            serve = 1;
            i--;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_lua: %s needs a value\n", argv[i]);
            return 1;
        }
        if (!strcmp(argv[i], "--model")) {
            model_path = argv[i + 1];
            continue;
        }
        if (!strcmp(argv[i], "--write-weights")) {
            write_w = argv[i + 1];
            continue;
        }
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--size")) size = v;
        else if (!strcmp(argv[i], "--scale")) c.scale = v;
        else if (!strcmp(argv[i], "--threads")) threads = v;
        else if (!strcmp(argv[i], "--runs")) runs = v;
        else if (!strcmp(argv[i], "--depth")) c.depth = v;
        else if (!strcmp(argv[i], "--layers")) c.layers = v;
        else {
            fprintf(stderr, "usage: bench_lua [--size N] [--scale 2|4] [--threads N] [--runs N] [--depth D] [--layers L] [--exact] [--model FILE] [--serve] [--write-weights FILE]\n");
            return 1;
        }
    }
    if (runs < 1 || runs > 100) runs = 3;
    latup_set_threads(threads);
    bench_print_system();
    latup_lua *m;
    latup_status st;
    if (model_path) {
        st = latup_lua_load(model_path, &m);
    } else {
        /* the tests' seeded generator (tests/support/gen_models.h), heads x2 and x4 */
        const gen_lua_cfg g = {c.C, c.E, c.layers, c.depth, c.heads, c.ws, c.F, GEN_LUA_RELEASED.seed};
        char path[256];
        if (gen_lua_file(&g, path, sizeof path) != 0) {
            fprintf(stderr, "bench: the generated model was not written: %s\n", latup_last_error());
            return 1;
        }
        if (write_w) { /* the temporary file moves (or is copied, across file systems) to FILE */
            int ok = rename(path, write_w) == 0;
            if (!ok) {
                FILE *in = fopen(path, "rb"), *out = fopen(write_w, "wb");
                char buf[1 << 16];
                size_t n;
                ok = in && out;
                while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, n, out) == n;
                ok = ok && !ferror(in);
                if (in) fclose(in);
                if (out && fclose(out) != 0) ok = 0;
                unlink(path);
            }
            if (!ok) return fprintf(stderr, "bench_lua: the generated model was not written to %s\n", write_w), 1;
            printf("wrote %s\n", write_w);
            return 0;
        }
        st = latup_lua_load(path, &m);
        unlink(path);
    }
    if (st != LATUP_OK) {
        fprintf(stderr, "bench: %s\n", latup_last_error());
        return 1;
    }
    if (model_path) { /* the loaded model's shape, for the FLOP count */
        const latup_lua_config *mc = latup_lua_get_config(m);
        c.C = mc->in_chans, c.E = mc->embed_dim, c.layers = mc->num_layers, c.depth = mc->depths[0];
        c.heads = mc->num_heads[0], c.ws = mc->window_size, c.F = mc->head_feat;
    }
    latup_tensor x, y;
    int64_t shape[4] = {1, c.C, size, size};
    latup_tensor_alloc(&x, 4, shape);
    for (int64_t i = 0; i < latup_tensor_numel(&x); i++) x.data[i] = frand();
    int hp = (size + c.ws - 1) / c.ws * c.ws;
    double fl = flops(&c, hp, hp);
    if (serve) {
        upscale_job job = {m, &x, c.scale};
        return bench_serve(upscale_once, &job, fl);
    }
    double t[100], cpu[100];
    for (int r = 0; r < runs; r++) {
        struct timespec c0, c1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        double t0 = latup_now();
        if (latup_lua_upscale(m, &x, c.scale, &y, NULL) != LATUP_OK) {
            fprintf(stderr, "bench: %s\n", latup_last_error());
            return 1;
        }
        t[r] = latup_now() - t0;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        cpu[r] = (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
        latup_tensor_free(&y);
    }
    qsort(t, (size_t)runs, sizeof t[0], cmpd);
    qsort(cpu, (size_t)runs, sizeof cpu[0], cmpd);
    printf("LUA x%d, %dx%d latent (padded %dx%d), E %d, %dx%d blocks, %d heads, ws %d, F %d, C %d\n",
           c.scale, size, size, hp, hp, c.E, c.layers, c.depth, c.heads, c.ws, c.F, c.C);
    printf("threads %d, runs %d: median %.3f s (min %.3f, max %.3f); %.1f GFLOP -> %.1f GFLOP/s; "
           "CPU time median %.3f s (all threads)%s\n",
           latup_get_threads(), runs, t[runs / 2], t[0], t[runs - 1], fl * 1e-9, fl * 1e-9 / t[runs / 2], cpu[runs / 2],
           latup_exact_math() ? "; exact math" : "");
    latup_tensor_free(&x);
    latup_lua_free(m);
    return 0;
}
