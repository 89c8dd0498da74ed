/* gen_models.h — seeded random-weight models written to a temporary file, for tests and
 * benchmarks that need real widths the repository cannot hold: a LUA checkpoint at any config
 * (default: the released FLUX one), and the real-width VAE decoder from the "latup VAE weight
 * generator v1" spec stored in ref_data/vae/golden_real_widths.safetensors (tools/README.md).
 * Header-only; used by tests/test_cuda.c and tools/bench_cuda.c, which define _POSIX_C_SOURCE
 * 200809L first (mkstemp). */
#ifndef LATUP_GEN_MODELS_H
#define LATUP_GEN_MODELS_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/json.h"
#include "io/weights.h"

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
    const char *dir = getenv("TMPDIR");
    if ((size_t)snprintf(path, n, "%s/latup_gen_XXXXXX", dir && *dir ? dir : "/tmp") >= n) return -1;
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    close(fd);
    return latup_safetensors_write(path, &g->w) == LATUP_OK ? 0 : -1;
}

/* ---- LUA: a checkpoint with both heads at any width --------------------------------------------- */
typedef struct {
    int C, E, layers, depth, heads, ws, F;
    uint64_t seed;
} gen_lua_cfg;

static const gen_lua_cfg GEN_LUA_RELEASED = {16, 360, 6, 6, 12, 16, 256, 20261201};

static inline uint64_t gen_mix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t gen_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* uniform in [offset - scale, offset + scale), seeded by the tensor's name */
static inline void gen_lua_tensor(gen_table *g, const gen_lua_cfg *c, const char *name, int ndim, const int64_t *shape,
                                  float scale, float offset) {
    float *x = gen_add(g, name, ndim, shape);
    uint64_t s = gen_hash(name) ^ c->seed;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    for (int64_t i = 0; i < n; i++) x[i] = offset + scale * (float)((double)(gen_mix(&s) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
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

/* LUA with heads x2 and x4, mlp ratio 2, in the released checkpoint's names; writes it to path. */
static inline int gen_lua_file(const gen_lua_cfg *c, char *path, size_t n) {
    gen_table g;
    memset(&g, 0, sizeof g);
    char s[160];
    gen_lua_conv(&g, c, "conv_first", c->C, c->E);
    gen_lua_norm(&g, c, "patch_embed.norm", c->E);
    for (int i = 0; i < c->layers; i++) {
        for (int j = 0; j < c->depth; j++) {
#define P(x) (snprintf(s, sizeof s, "layers.%d.residual_group.blocks.%d.%s", i, j, x), s)
            const int64_t tb[2] = {(int64_t)(2 * c->ws - 1) * (2 * c->ws - 1), c->heads};
            gen_lua_norm(&g, c, P("norm1"), c->E);
            gen_lua_tensor(&g, c, P("attn.relative_position_bias_table"), 2, tb, 0.5f, 0);
            gen_lua_linear(&g, c, P("attn.qkv"), c->E, 3 * c->E);
            gen_lua_linear(&g, c, P("attn.proj"), c->E, c->E);
            gen_lua_norm(&g, c, P("norm2"), c->E);
            gen_lua_linear(&g, c, P("mlp.fc1"), c->E, 2 * c->E);
            gen_lua_linear(&g, c, P("mlp.fc2"), 2 * c->E, c->E);
#undef P
        }
        snprintf(s, sizeof s, "layers.%d.conv", i);
        gen_lua_conv(&g, c, s, c->E, c->E);
    }
    gen_lua_norm(&g, c, "norm", c->E);
    gen_lua_conv(&g, c, "conv_after_body", c->E, c->E);
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

/* ---- the VAE: "latup VAE weight generator v1" (tools/vae_ref.py GENERATOR_SPEC) -----------------
 * splitmix64 per tensor seeded by fnv1a64(name) ^ seed; integer levels k in [-L, L]: biases k/64,
 * GroupNorm weights 1 + k/32 (L = 6), conv/linear weights k * 2^-e with the smallest e such that
 * 6 * 4^e >= L (L+1) fan_in (L = weights_Lw). The same as tests/test_vae_golden.c's generate(). */
static inline int gen_ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

static inline void gen_vae_tensor(float *out, const char *name, int ndim, const int64_t *shape, uint64_t seed, int Lw) {
    int64_t n = 1, fan_in = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    for (int d = 1; d < ndim; d++) fan_in *= shape[d];
    const int bias = gen_ends_with(name, ".bias"), gn = !bias && ndim == 1;
    const int L = bias || gn ? 6 : Lw;
    int e = 0;
    if (!bias && !gn)
        while (6.0 * ldexp(1.0, 2 * e) < (double)L * (L + 1) * (double)fan_in) e++;
    uint64_t s = gen_hash(name) ^ seed;
    for (int64_t i = 0; i < n; i++) {
        const int64_t k = (int64_t)((gen_mix(&s) >> 11) % (uint64_t)(2 * L + 1)) - L;
        out[i] = bias ? (float)k / 64.0f : gn ? 1.0f + (float)k / 32.0f : ldexpf((float)k, -e);
    }
}

/* The weights named in golden's weights_checksums (ldm names, F32) into path, each tensor's sum
 * checked against the checksum; 0 on success, -1 (and a message on stdout) otherwise. */
static inline int gen_vae_file(const latup_weights *golden, char *path, size_t pn) {
    const char *ck = latup_weights_meta(golden, "weights_checksums");
    const char *seed = latup_weights_meta(golden, "seed"), *lw = latup_weights_meta(golden, "weights_Lw");
    if (!ck || !seed || !lw) {
        printf("gen_vae_file: the golden file has no generator spec\n");
        return -1;
    }
    latup_json_doc doc;
    if (latup_json_parse(ck, strlen(ck), 1u << 20, &doc) != LATUP_OK) return -1;
    gen_table g;
    memset(&g, 0, sizeof g);
    int rc = 0;
    for (const latup_json *e = doc.root->u.kids.first; e; e = e->next) {
        const latup_json *shp = e->u.kids.first, *sum = shp->next;
        int64_t shape[LATUP_WMAX_DIMS];
        int nd = 0;
        for (const latup_json *d = shp->u.kids.first; d && nd < LATUP_WMAX_DIMS; d = d->next) shape[nd++] = d->u.i;
        float *x = gen_add(&g, e->key, nd, shape);
        gen_vae_tensor(x, e->key, nd, shape, (uint64_t)strtoull(seed, NULL, 10), atoi(lw));
        int64_t n = 1;
        for (int d = 0; d < nd; d++) n *= shape[d];
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += x[i];
        const double want = sum->type == LATUP_JSON_INT ? (double)sum->u.i : sum->u.d;
        if (s != want) {
            printf("gen_vae_file: %s sums to %.17g, the golden file says %.17g\n", e->key, s, want);
            rc = -1;
        }
    }
    latup_json_free(&doc);
    gen_finish(&g);
    if (rc == 0) rc = gen_write(&g, path, pn);
    latup_weights_free(&g.w);
    return rc;
}

#endif
