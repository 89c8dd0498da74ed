/* fuzz_models.c — structure-aware libFuzzer target for config inference and binding: the input
 * picks a small model (LUA, SwinIR with either tail, or a VAE in ldm or diffusers names, under a
 * single-file prefix or not) and then mutates the valid safetensors file built for it: tensors
 * dropped, renamed or duplicated, dimensions set to 0, 1, off by one or huge (huge only where the
 * data still fits the file or another dimension is 0), dtypes changed, NaN/Inf planted. The file
 * goes to an in-memory file and through latup_lua_load and latup_vae_load (with LATUP_FUZZ_PLAN
 * set in the environment, also the memory plan for an 8x8 latent: the planner's part). Every outcome must be LATUP_OK or LATUP_E_INPUT: out of memory (3) would
 * mean a file sized an allocation, which is what config inference must prevent. Seeds:
 * fuzz/corpus/fuzz_models/. */
#define _GNU_SOURCE /* memfd_create */
#include "latup.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { F32, F16, BF16, I64 };
static const char *const k_dtype[] = {"F32", "F16", "BF16", "I64"};

typedef struct {
    char name[256];
    int dtype, ndim;
    int64_t shape[4];
    int64_t poison; /* element set to NaN/Inf, -1: none */
    int rel_index;  /* I64 relative_position_index for this window (0: none) */
} spec;

#define MAX_T 1024
#define MAX_DATA ((uint64_t)8 << 20) /* bytes of tensor data in one file */
static spec g_t[MAX_T];
static int g_n;

typedef struct {
    const uint8_t *p;
    size_t n;
} cursor;

static unsigned take(cursor *c) {
    if (!c->n) return 0;
    c->n--;
    return *c->p++;
}

static spec *add(int ndim, int64_t a, int64_t b, int64_t c, int64_t d, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static spec *add(int ndim, int64_t a, int64_t b, int64_t c, int64_t d, const char *fmt, ...) {
    if (g_n == MAX_T) return NULL;
    spec *t = &g_t[g_n++];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->ndim = ndim, t->shape[0] = a, t->shape[1] = b, t->shape[2] = c, t->shape[3] = d;
    t->poison = -1;
    return t;
}
#define VEC(n, ...) add(1, n, 0, 0, 0, __VA_ARGS__)
#define MAT(o, i, ...) add(2, o, i, 0, 0, __VA_ARGS__)
#define CONV(o, i, k, ...) add(4, o, i, k, k, __VA_ARGS__)

static void conv(const char *name, int64_t cout, int64_t cin, int k) {
    CONV(cout, cin, k, "%s.weight", name);
    VEC(cout, "%s.bias", name);
}
static void norm(const char *name, int64_t c) {
    VEC(c, "%s.weight", name);
    VEC(c, "%s.bias", name);
}
static void linear(const char *name, int64_t out, int64_t in) {
    MAT(out, in, "%s.weight", name);
    VEC(out, "%s.bias", name);
}

/* ---- models ------------------------------------------------------------------------------------- */

static void gen_lua(cursor *c, int tail) {
    const int C = 1 + (int)(take(c) % 4), nH = 1 + (int)(take(c) % 3), E = nH * (1 + (int)(take(c) % 4));
    const int ws = 1 + (int)(take(c) % 4), L = 1 + (int)(take(c) % 2), hid = 1 + (int)(take(c) % 8);
    const int F = 1 + (int)(take(c) % 4), with_index = take(c) % 2;
    char n[160];
    conv("conv_first", E, C, 3);
    norm("patch_embed.norm", E);
    for (int i = 0; i < L; i++) {
        const int depth = 1 + (int)(take(c) % 2);
        for (int j = 0; j < depth; j++) {
#define B(s) (snprintf(n, sizeof n, "layers.%d.residual_group.blocks.%d.%s", i, j, s), n)
            norm(B("norm1"), E);
            linear(B("attn.qkv"), 3 * E, E);
            MAT((int64_t)(2 * ws - 1) * (2 * ws - 1), nH, "%s", B("attn.relative_position_bias_table"));
            if (with_index) {
                spec *t = MAT(ws * ws, ws * ws, "%s", B("attn.relative_position_index"));
                if (t) t->dtype = I64, t->rel_index = ws;
            }
            linear(B("attn.proj"), E, E);
            norm(B("norm2"), E);
            linear(B("mlp.fc1"), hid, E);
            linear(B("mlp.fc2"), E, hid);
#undef B
        }
        snprintf(n, sizeof n, "layers.%d.conv", i);
        conv(n, E, E, 3);
    }
    norm("norm", E);
    conv("conv_after_body", E, E, 3);
    if (tail == 0) { /* LUA heads x2 (and x4) */
        const int both = take(c) % 2;
        for (int s = 2; s <= (both ? 4 : 2); s *= 2) {
            snprintf(n, sizeof n, "heads.x%d.conv_before.0", s);
            conv(n, F, E, 3);
            for (int k = 0; k < (s == 2 ? 1 : 2); k++) {
                snprintf(n, sizeof n, "heads.x%d.upsample.%d", s, 2 * k);
                conv(n, 4 * F, F, 3);
            }
            snprintf(n, sizeof n, "heads.x%d.conv_last", s);
            conv(n, C, F, 3);
        }
    } else if (tail == 1) { /* SwinIR pixelshuffle x2 */
        conv("conv_before_upsample.0", F, E, 3);
        conv("upsample.0", 4 * F, F, 3);
        conv("conv_last", C, F, 3);
    } else { /* SwinIR pixelshuffledirect x2 */
        conv("upsample.0", 4 * C, E, 3);
    }
}

static void resnet(const char *mod, int cin, int cout, int ldm) {
    char n[256];
    snprintf(n, sizeof n, "%s.norm1", mod), norm(n, cin);
    snprintf(n, sizeof n, "%s.conv1", mod), conv(n, cout, cin, 3);
    snprintf(n, sizeof n, "%s.norm2", mod), norm(n, cout);
    snprintf(n, sizeof n, "%s.conv2", mod), conv(n, cout, cout, 3);
    if (cin != cout) snprintf(n, sizeof n, ldm ? "%s.nin_shortcut" : "%s.conv_shortcut", mod), conv(n, cout, cin, 1);
}

static void gen_vae(cursor *c, int ldm) {
    static const char *const prefixes[] = {"", "first_stage_model.", "vae."};
    const char *p = prefixes[take(c) % 3];
    const int zc = 1 + (int)(take(c) % 4), levels = 1 + (int)(take(c) % 2), bpl = 1 + (int)(take(c) % 2);
    int ch[3];
    for (int L = 0; L < levels; L++) ch[L] = 32 * (1 + (int)(take(c) % 2));
    const int top = ch[levels - 1], pq = take(c) % 2;
    char n[256], m[200];
    if (pq) snprintf(n, sizeof n, "%spost_quant_conv", p), conv(n, zc, zc, 1);
    snprintf(n, sizeof n, "%sdecoder.conv_in", p), conv(n, top, zc, 3);
    for (int r = 0; r < 2; r++) {
        if (ldm) snprintf(m, sizeof m, "%sdecoder.mid.block_%d", p, r + 1);
        else snprintf(m, sizeof m, "%sdecoder.mid_block.resnets.%d", p, r);
        resnet(m, top, top, ldm);
    }
    static const char *const an[2][5] = {{"group_norm", "to_q", "to_k", "to_v", "to_out.0"},
                                         {"norm", "q", "k", "v", "proj_out"}};
    snprintf(m, sizeof m, ldm ? "%sdecoder.mid.attn_1" : "%sdecoder.mid_block.attentions.0", p);
    snprintf(n, sizeof n, "%s.%s", m, an[ldm][0]), norm(n, top);
    for (int k = 1; k < 5; k++) {
        snprintf(n, sizeof n, "%s.%s", m, an[ldm][k]);
        if (ldm) conv(n, top, top, 1);
        else linear(n, top, top);
    }
    int cin = top;
    for (int L = levels - 1; L >= 0; L--) {
        for (int M = 0; M < bpl; M++) {
            if (ldm) snprintf(m, sizeof m, "%sdecoder.up.%d.block.%d", p, L, M);
            else snprintf(m, sizeof m, "%sdecoder.up_blocks.%d.resnets.%d", p, levels - 1 - L, M);
            resnet(m, cin, ch[L], ldm);
            cin = ch[L];
        }
        if (L) {
            if (ldm) snprintf(n, sizeof n, "%sdecoder.up.%d.upsample.conv", p, L);
            else snprintf(n, sizeof n, "%sdecoder.up_blocks.%d.upsamplers.0.conv", p, levels - 1 - L);
            conv(n, cin, cin, 3);
        }
    }
    snprintf(n, sizeof n, ldm ? "%sdecoder.norm_out" : "%sdecoder.conv_norm_out", p), norm(n, ch[0]);
    snprintf(n, sizeof n, "%sdecoder.conv_out", p), conv(n, 3, ch[0], 3);
    if (take(c) % 4 == 0) conv("model.diffusion_model.input_blocks.0.0", 4, zc, 3); /* a neighbour */
}

/* ---- mutations ---------------------------------------------------------------------------------- */

static uint64_t numel(const spec *t) {
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] == 0) return 0;
        if ((uint64_t)t->shape[d] > MAX_DATA) return UINT64_MAX;
        n *= (uint64_t)t->shape[d];
        if (n > MAX_DATA) return UINT64_MAX;
    }
    return n;
}

static uint64_t data_bytes(void) {
    uint64_t b = 0;
    for (int i = 0; i < g_n; i++) {
        uint64_t n = numel(&g_t[i]);
        if (n == UINT64_MAX) return UINT64_MAX;
        b += n * (g_t[i].dtype == I64 ? 8 : g_t[i].dtype == F32 ? 4 : 2);
        if (b > MAX_DATA) return UINT64_MAX;
    }
    return b;
}

static void mutate(cursor *c) {
    static const int64_t big[] = {2, 3, 7, 63, 64, 65, 255, 4095, 4096, 4097, 65535, 1 << 20, (int64_t)1 << 31,
                                  ((int64_t)1 << 32) + 1, (int64_t)1 << 40, INT64_MAX};
    while (c->n >= 4 && g_n > 0) {
        const unsigned op = take(c) % 8, idx = (take(c) << 8 | take(c)) % (unsigned)g_n, arg = take(c);
        spec *t = &g_t[idx], saved = *t;
        switch (op) {
        case 0: /* drop */
            g_t[idx] = g_t[--g_n];
            continue;
        case 1: /* a zero dimension */
            if (t->ndim) t->shape[arg % t->ndim] = 0;
            break;
        case 2: /* off by one (saturating: a dimension an earlier mutation made INT64_MAX stays), or small */
            if (t->ndim) {
                int64_t *d = &t->shape[arg % t->ndim];
                if (arg & 16) *d += *d < INT64_MAX;
                else *d -= 1;
                if (*d < 0) *d = arg % 9;
            }
            break;
        case 3: /* huge, or not so huge */
            if (t->ndim) t->shape[arg % t->ndim] = big[(arg >> 2) % (sizeof big / sizeof big[0])];
            break;
        case 4: { /* rename: one character */
            size_t len = strlen(t->name);
            static const char alphabet[] = "0123456789.abcdefghijklmnopqrstuvwxyz_\x1b\x7f";
            if (len) t->name[arg % len] = alphabet[(arg >> 3) % (sizeof alphabet - 1)];
            break;
        }
        case 5: /* a duplicate under a changed name, or the rank changed */
            if (arg & 1) {
                if (g_n < MAX_T) {
                    spec copy = *t;
                    snprintf(copy.name, sizeof copy.name, "%.180s.%u", t->name, arg);
                    g_t[g_n++] = copy;
                }
            } else {
                t->ndim = (int)(arg >> 1) % 5;
            }
            break;
        case 6: /* dtype */
            t->dtype = (int)(arg % 4);
            t->rel_index = 0;
            break;
        case 7: { /* a NaN or Inf */
            uint64_t n = numel(t);
            if (n && n != UINT64_MAX) t->poison = (int64_t)((arg * 2654435761u) % n);
            break;
        }
        }
        if (data_bytes() == UINT64_MAX) *t = saved; /* the data must fit in the file */
    }
}

/* ---- the file ----------------------------------------------------------------------------------- */

static void put_f16(uint8_t *p, float f, int bf) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t h;
    if (bf)
        h = (uint16_t)(u >> 16);
    else if (f != f)
        h = 0x7E00;
    else if (f > 65504.0f || f < -65504.0f)
        h = (uint16_t)(u >> 31 << 15 | 0x7C00);
    else /* small values only: a coarse conversion is enough */
        h = (uint16_t)((u >> 16 & 0x8000) | (f == 0 ? 0 : ((((u >> 23) & 0xFF) - 112) << 10 | (u >> 13 & 0x3FF))));
    p[0] = (uint8_t)h, p[1] = (uint8_t)(h >> 8);
}

static uint8_t *build(size_t *len) {
    size_t hcap = 256 + (size_t)g_n * (6 * sizeof g_t[0].name + 200); /* names may be all escapes */
    char *h = malloc(hcap);
    size_t k = 0;
    uint64_t off = 0;
    k += (size_t)snprintf(h + k, hcap - k, "{");
    for (int i = 0; i < g_n; i++) {
        const spec *t = &g_t[i];
        const uint64_t n = numel(t), bytes = n * (t->dtype == I64 ? 8 : t->dtype == F32 ? 4 : 2);
        k += (size_t)snprintf(h + k, hcap - k, "%s\"", i ? "," : "");
        for (const char *s = t->name; *s; s++) /* JSON-escape what renames can introduce */
            k += (size_t)((unsigned char)*s < 0x20 || *s == 0x7f ? snprintf(h + k, hcap - k, "\\u%04x", *s)
                                                                  : snprintf(h + k, hcap - k, "%c", *s));
        k += (size_t)snprintf(h + k, hcap - k, "\":{\"dtype\":\"%s\",\"shape\":[", k_dtype[t->dtype]);
        for (int d = 0; d < t->ndim; d++) k += (size_t)snprintf(h + k, hcap - k, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        k += (size_t)snprintf(h + k, hcap - k, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                              (unsigned long long)(off + bytes));
        off += bytes;
    }
    k += (size_t)snprintf(h + k, hcap - k, "}");
    while (k % 8) h[k++] = ' ';
    *len = 8 + k + off;
    uint8_t *b = calloc(1, *len);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)k >> (8 * i));
    memcpy(b + 8, h, k);
    free(h);
    uint8_t *p = b + 8 + k;
    for (int i = 0; i < g_n; i++) {
        const spec *t = &g_t[i];
        const uint64_t n = numel(t);
        for (uint64_t e = 0; e < n; e++) {
            float v = 0.01f * (float)((e * 7 + (uint64_t)i) % 13) - 0.06f;
            if ((int64_t)e == t->poison) v = (e & 1) ? __builtin_inff() : __builtin_nanf("");
            if (t->dtype == F32) memcpy(p, &v, 4), p += 4;
            else if (t->dtype == F16 || t->dtype == BF16) put_f16(p, v, t->dtype == BF16), p += 2;
            else {
                int64_t x = 0;
                if (t->rel_index) { /* what SwinIR computes, so the check passes unless mutated */
                    const int ws = t->rel_index, N = ws * ws, a = (int)(e / (uint64_t)N), c = (int)(e % (uint64_t)N);
                    x = (int64_t)(a / ws - c / ws + ws - 1) * (2 * ws - 1) + (a % ws - c % ws + ws - 1);
                }
                memcpy(p, &x, 8), p += 8;
            }
        }
    }
    return b;
}

static int g_fd = -1, g_plan = -1;
static char g_path[64];

static void check(latup_status st) {
    if (st != LATUP_OK && st != LATUP_E_INPUT) {
        fprintf(stderr, "status %d: %s\n", (int)st, latup_last_error());
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g_plan < 0) g_plan = getenv("LATUP_FUZZ_PLAN") != NULL;
    if (g_fd < 0) {
        g_fd = memfd_create("latup-fuzz-model", 0);
        if (g_fd < 0) abort();
        snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    }
    cursor c = {data, size};
    g_n = 0;
    const unsigned kind = take(&c) % 5;
    if (kind < 3) gen_lua(&c, (int)kind);
    else gen_vae(&c, kind == 3);
    mutate(&c);
    size_t len;
    uint8_t *b = build(&len);
    if (ftruncate(g_fd, 0) != 0 || pwrite(g_fd, b, len, 0) != (ssize_t)len) abort();
    free(b);

    latup_lua *m = NULL;
    latup_status st = latup_lua_load(g_path, &m);
    check(st);
    if (st == LATUP_OK) {
        const latup_lua_config *cf = latup_lua_get_config(m);
        if (cf->embed_dim < 1 || cf->in_chans < 1 || cf->out_chans < 1 || cf->window_size < 1 || cf->mlp_hidden < 1)
            abort();
        latup_lua_plan p;
        if (g_plan) check(latup_lua_plan_memory(m, 8, 8, cf->scales[0], NULL, &p));
        latup_lua_free(m);
    }
    latup_vae *v = NULL;
    st = latup_vae_load(g_path, &v);
    check(st);
    if (st == LATUP_OK) {
        const latup_vae_config *cf = latup_vae_get_config(v);
        if (cf->z_channels < 1 || cf->out_channels < 1 || cf->n_levels < 1) abort();
        latup_vae_plan p;
        if (g_plan) check(latup_vae_plan_memory(v, 8, 8, &p));
        latup_vae_free(v);
    }
    return 0;
}
