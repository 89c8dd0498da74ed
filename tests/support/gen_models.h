/* gen_models.h — seeded random-weight models written to a temporary file, for tests and
 * benchmarks that need real widths the repository cannot hold: a LUA checkpoint at any config
 * (default: the released FLUX one). The real-width VAE comes from weightgen.h (wg_generate_tmp).
 * Header-only; used by tests/test_cuda.c, tests/test_errors.c and tools/bench/bench_cuda.c, which
 * define _POSIX_C_SOURCE 200809L first (mkstemp). */
#ifndef LATUP_GEN_MODELS_H
#define LATUP_GEN_MODELS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/weights.h"
#include "weightgen.h"

/* ---- a table of named tensors backed by one blob (latup_weights_free releases it) -------------- */
typedef struct {
    latup_weights w;
    int cap;
    size_t used, blob_cap; /* floats */
} gen_table;

static inline float *gen_add(gen_table *g, const char *name, int ndim, const int64_t *shape) {
    if (g->w.n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 256;
        g->w.t = realloc(g->w.t, (size_t)g->cap * sizeof *g->w.t);
    }
    latup_wtensor *t = &g->w.t[g->w.n++];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->dtype = LATUP_DT_F32;
    t->ndim = ndim;
    t->numel = 1;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i], t->numel *= shape[i];
    t->f32 = (float *)(uintptr_t)g->used; /* an offset until gen_finish: the blob still grows */
    g->used += (size_t)t->numel;
    if (g->used > g->blob_cap) {
        g->blob_cap = g->used * 2;
        g->w.blob = realloc(g->w.blob, g->blob_cap * sizeof(float));
    }
    return (float *)g->w.blob + (g->used - (size_t)t->numel);
}

static inline void gen_finish(gen_table *g) {
    for (int i = 0; i < g->w.n; i++) g->w.t[i].f32 = (float *)g->w.blob + (uintptr_t)g->w.t[i].f32;
}

/* Writes the table to a fresh file in $TMPDIR (default /tmp; path[] receives its name); 0 on
 * success. */
static inline int gen_write(gen_table *g, char *path, size_t n) {
    if (wg_tmpfile(path, n) != 0) return -1;
    return latup_safetensors_write(path, &g->w) == LATUP_OK ? 0 : -1;
}

/* ---- LUA: a checkpoint with both heads at any width --------------------------------------------- */
typedef struct {
    int C, E, layers, depth, heads, ws, F;
    uint64_t seed;
} gen_lua_cfg;

static const gen_lua_cfg GEN_LUA_RELEASED = {16, 360, 6, 6, 12, 16, 256, 20261201};

/* uniform in [offset - scale, offset + scale), seeded by the tensor's name */
static inline void gen_lua_tensor(gen_table *g, const gen_lua_cfg *c, const char *name, int ndim, const int64_t *shape,
                                  float scale, float offset) {
    float *x = gen_add(g, name, ndim, shape);
    uint64_t s = wg_fnv1a64(name) ^ c->seed;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    for (int64_t i = 0; i < n; i++) x[i] = offset + scale * (float)((double)(wg_splitmix64(&s) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static inline void gen_lua_conv(gen_table *g, const gen_lua_cfg *c, const char *mod, int cin, int cout) {
    char s[192]; /* mod (up to 160) + ".weight" */
    const int64_t w[4] = {cout, cin, 3, 3}, b[1] = {cout};
    snprintf(s, sizeof s, "%s.weight", mod), gen_lua_tensor(g, c, s, 4, w, sqrtf(3.0f / (9.0f * cin)), 0);
    snprintf(s, sizeof s, "%s.bias", mod), gen_lua_tensor(g, c, s, 1, b, 0.02f, 0);
}

static inline void gen_lua_linear(gen_table *g, const gen_lua_cfg *c, const char *mod, int in, int out) {
    char s[192]; /* mod (up to 160) + ".weight" */
    const int64_t w[2] = {out, in}, b[1] = {out};
    snprintf(s, sizeof s, "%s.weight", mod), gen_lua_tensor(g, c, s, 2, w, sqrtf(3.0f / in), 0);
    snprintf(s, sizeof s, "%s.bias", mod), gen_lua_tensor(g, c, s, 1, b, 0.02f, 0);
}

static inline void gen_lua_norm(gen_table *g, const gen_lua_cfg *c, const char *mod, int dim) {
    char s[192]; /* mod (up to 160) + ".weight" */
    const int64_t d[1] = {dim};
    snprintf(s, sizeof s, "%s.weight", mod), gen_lua_tensor(g, c, s, 1, d, 0.1f, 1.0f);
    snprintf(s, sizeof s, "%s.bias", mod), gen_lua_tensor(g, c, s, 1, d, 0.05f, 0);
}

/* The SwinIR trunk every model here shares: conv_first (C -> E), the RSTBs, norm, conv_after_body. */
static inline void gen_lua_trunk(gen_table *g, const gen_lua_cfg *c) {
    char s[160];
    gen_lua_conv(g, c, "conv_first", c->C, c->E);
    gen_lua_norm(g, c, "patch_embed.norm", c->E);
    for (int i = 0; i < c->layers; i++) {
        for (int j = 0; j < c->depth; j++) {
#define P(x) (snprintf(s, sizeof s, "layers.%d.residual_group.blocks.%d.%s", i, j, x), s)
            const int64_t tb[2] = {(int64_t)(2 * c->ws - 1) * (2 * c->ws - 1), c->heads};
            gen_lua_norm(g, c, P("norm1"), c->E);
            gen_lua_tensor(g, c, P("attn.relative_position_bias_table"), 2, tb, 0.5f, 0);
            gen_lua_linear(g, c, P("attn.qkv"), c->E, 3 * c->E);
            gen_lua_linear(g, c, P("attn.proj"), c->E, c->E);
            gen_lua_norm(g, c, P("norm2"), c->E);
            gen_lua_linear(g, c, P("mlp.fc1"), c->E, 2 * c->E);
            gen_lua_linear(g, c, P("mlp.fc2"), 2 * c->E, c->E);
#undef P
        }
        snprintf(s, sizeof s, "layers.%d.conv", i);
        gen_lua_conv(g, c, s, c->E, c->E);
    }
    gen_lua_norm(g, c, "norm", c->E);
    gen_lua_conv(g, c, "conv_after_body", c->E, c->E);
}

/* LUA with heads x2 and x4, mlp ratio 2, in the released checkpoint's names; writes it to path. */
static inline int gen_lua_file(const gen_lua_cfg *c, char *path, size_t n) {
    gen_table g;
    memset(&g, 0, sizeof g);
    char s[160];
    gen_lua_trunk(&g, c);
    for (int sc = 2; sc <= 4; sc *= 2) {
        snprintf(s, sizeof s, "heads.x%d.conv_before.0", sc);
        gen_lua_conv(&g, c, s, c->E, c->F);
        for (int k = 0; (1 << (k + 1)) <= sc; k++) {
            snprintf(s, sizeof s, "heads.x%d.upsample.%d", sc, 2 * k);
            gen_lua_conv(&g, c, s, c->F, 4 * c->F);
        }
        snprintf(s, sizeof s, "heads.x%d.conv_last", sc);
        gen_lua_conv(&g, c, s, c->F, c->C);
    }
    gen_finish(&g);
    int rc = gen_write(&g, path, n);
    latup_weights_free(&g.w);
    return rc;
}

/* Classic SwinIR (BasicSR names) with c's trunk on c->C-channel images and its pixelshuffle
 * upsampler for one scale (2 or 4): conv_before_upsample.0 (E -> F), upsample.0 (and .2 for x4)
 * (F -> 4F, pixel shuffle), conv_last (F -> C). The paper's pixel-space baseline. */
static inline int gen_swinir_file(const gen_lua_cfg *c, int scale, char *path, size_t n) {
    gen_table g;
    memset(&g, 0, sizeof g);
    char s[160];
    gen_lua_trunk(&g, c);
    gen_lua_conv(&g, c, "conv_before_upsample.0", c->E, c->F);
    for (int k = 0; (1 << (k + 1)) <= scale; k++) {
        snprintf(s, sizeof s, "upsample.%d", 2 * k);
        gen_lua_conv(&g, c, s, c->F, 4 * c->F);
    }
    gen_lua_conv(&g, c, "conv_last", c->F, c->C);
    gen_finish(&g);
    int rc = gen_write(&g, path, n);
    latup_weights_free(&g.w);
    return rc;
}

#endif
