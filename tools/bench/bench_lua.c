/* bench_lua.c — times one LUA upscale with random weights at any config (default: the released
 * FLUX config, E 360, 6x6 blocks, 12 heads, window 16, F 256, C 16) and reports the median of
 * several runs next to the FLOP count and the achieved GFLOP/s. Build: make bench.
 *
 *   build/bench_lua [--size 64] [--scale 2] [--threads N] [--runs 3] [--depth 6] [--layers 6]
 *                   [--exact] [--model FILE]  (FILE: time that checkpoint instead)
 *                   [--serve]  (one timed run per line on stdin: tools/bench/bench_serve.h)
 *
 * The random model is written once to a temporary safetensors file and loaded through the normal
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

#include "bench_serve.h"

typedef struct {
    int C, E, layers, depth, heads, ws, F, scale;
} cfg;

static uint64_t rng = 0x1234567;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
}

static void add(latup_weights *w, int *cap, const char *name, int ndim, const int64_t *shape, float scale) {
    if (w->n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        w->t = realloc(w->t, (size_t)*cap * sizeof *w->t);
    }
    latup_wtensor *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->dtype = LATUP_DT_F32;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i], t->numel *= shape[i];
    t->f32 = malloc((size_t)t->numel * sizeof(float));
    for (int64_t i = 0; i < t->numel; i++) t->f32[i] = scale * frand();
}

static void conv(latup_weights *w, int *cap, const char *name, int cin, int cout) {
    char s[160];
    int64_t ws[4] = {cout, cin, 3, 3}, bs[1] = {cout};
    snprintf(s, sizeof s, "%s.weight", name);
    add(w, cap, s, 4, ws, 1.0f / sqrtf(9.0f * cin));
    snprintf(s, sizeof s, "%s.bias", name);
    add(w, cap, s, 1, bs, 0.01f);
}

static void lin(latup_weights *w, int *cap, const char *name, int in, int out) {
    char s[160];
    int64_t ws[2] = {out, in}, bs[1] = {out};
    snprintf(s, sizeof s, "%s.weight", name);
    add(w, cap, s, 2, ws, 1.0f / sqrtf((float)in));
    snprintf(s, sizeof s, "%s.bias", name);
    add(w, cap, s, 1, bs, 0.01f);
}

static void ln(latup_weights *w, int *cap, const char *name, int dim) {
    char s[160];
    int64_t sh[1] = {dim};
    snprintf(s, sizeof s, "%s.weight", name);
    add(w, cap, s, 1, sh, 0.1f);
    for (int i = 0; i < dim; i++) w->t[w->n - 1].f32[i] += 1.0f;
    snprintf(s, sizeof s, "%s.bias", name);
    add(w, cap, s, 1, sh, 0.01f);
}

static void build(latup_weights *w, const cfg *c) {
    int cap = 0;
    char s[160];
    conv(w, &cap, "conv_first", c->C, c->E);
    ln(w, &cap, "patch_embed.norm", c->E);
    for (int i = 0; i < c->layers; i++) {
        for (int j = 0; j < c->depth; j++) {
#define P(x) (snprintf(s, sizeof s, "layers.%d.residual_group.blocks.%d.%s", i, j, x), s)
            ln(w, &cap, P("norm1"), c->E);
            int64_t tb[2] = {(2 * c->ws - 1) * (2 * c->ws - 1), c->heads};
            add(w, &cap, P("attn.relative_position_bias_table"), 2, tb, 1.0f);
            lin(w, &cap, P("attn.qkv"), c->E, 3 * c->E);
            lin(w, &cap, P("attn.proj"), c->E, c->E);
            ln(w, &cap, P("norm2"), c->E);
            lin(w, &cap, P("mlp.fc1"), c->E, 2 * c->E);
            lin(w, &cap, P("mlp.fc2"), 2 * c->E, c->E);
#undef P
        }
        snprintf(s, sizeof s, "layers.%d.conv", i);
        conv(w, &cap, s, c->E, c->E);
    }
    ln(w, &cap, "norm", c->E);
    conv(w, &cap, "conv_after_body", c->E, c->E);
    for (int sc = 2; sc <= 4; sc *= 2) {
        snprintf(s, sizeof s, "heads.x%d.conv_before.0", sc);
        conv(w, &cap, s, c->E, c->F);
        for (int k = 0; (1 << (k + 1)) <= sc; k++) {
            snprintf(s, sizeof s, "heads.x%d.upsample.%d", sc, 2 * k);
            conv(w, &cap, s, c->F, 4 * c->F);
        }
        snprintf(s, sizeof s, "heads.x%d.conv_last", sc);
        conv(w, &cap, s, c->F, c->C);
    }
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
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--size")) size = v;
        else if (!strcmp(argv[i], "--scale")) c.scale = v;
        else if (!strcmp(argv[i], "--threads")) threads = v;
        else if (!strcmp(argv[i], "--runs")) runs = v;
        else if (!strcmp(argv[i], "--depth")) c.depth = v;
        else if (!strcmp(argv[i], "--layers")) c.layers = v;
        else {
            fprintf(stderr, "usage: bench_lua [--size N] [--scale 2|4] [--threads N] [--runs N] [--depth D] [--layers L] [--exact] [--model FILE] [--serve]\n");
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
        latup_weights w = {0};
        w.path = strdup("bench");
        build(&w, &c);
        char path[] = "/tmp/latup_bench_XXXXXX";
        int fd = mkstemp(path);
        close(fd);
        if (latup_safetensors_write(path, &w) != LATUP_OK) {
            fprintf(stderr, "bench: %s\n", latup_last_error());
            return 1;
        }
        for (int i = 0; i < w.n; i++) free(w.t[i].f32), free(w.t[i].name);
        free(w.t);
        free(w.path);
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
