/* lua.c — the LUA model's forward pass (and SwinIR's: the same trunk with a classic tail), as
 * ../shared/spec/lua.md steps 0-7, top to bottom in latup_lua_upscale(); its memory plan is the
 * same pass run in counting mode. Loading lives in lua_load.c. */
#include "ops/kernels.h"
#include "model/device.h"
#include "model/lua_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEAKY_SLOPE 0.01f      /* nn.LeakyReLU default: LUA heads and SwinIR conv_before_upsample */
#define CONV_BAND_BUDGET (8u << 20) /* floats (32 MiB) of im2col scratch per conv band */

static const head *find_head(const latup_lua *m, int scale) {
    for (int s = 0; s < m->cfg.n_scales; s++)
        if (m->heads[s].scale == scale) return &m->heads[s];
    return NULL;
}

/* ---- memory plan ------------------------------------------------------------------------------ */

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

latup_status latup_lua_plan_memory(const latup_lua *m, int H, int W, int scale, latup_lua_plan *p) {
    const latup_lua_config *c = &m->cfg;
    const int ws = c->window_size, E = c->embed_dim, F = c->head_feat;
    memset(p, 0, sizeof *p);
    if (!find_head(m, scale)) {
        char have[64] = "";
        for (int s = 0; s < c->n_scales; s++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%sx%d", s ? ", " : "", c->scales[s]);
        return latup_fail(LATUP_E_USAGE, "scale %d not available: this model has heads %s", scale, have);
    }
    if (H < 1 || W < 1 || H > 16384 || W > 16384)
        return latup_fail(LATUP_E_INPUT, "latent size %dx%d out of range (1..16384)", H, W);
    p->H = H, p->W = W, p->scale = scale;
    p->Hp = round_up(H, ws), p->Wp = round_up(W, ws);
    if (p->Hp - H >= H || p->Wp - W >= W)
        return latup_fail(LATUP_E_INPUT,
                          "latent %dx%d is too small: reflect padding to a multiple of the window (%d) "
                          "needs padding < size, i.e. at least %dx%d",
                          H, W, ws, p->Hp - H >= H ? ws / 2 + 1 : H, p->Wp - W >= W ? ws / 2 + 1 : W);
    const size_t L = (size_t)p->Hp * p->Wp, N = (size_t)ws * ws, nW = L / N;
    const size_t SL = L * (size_t)scale * scale;
    if (L * (size_t)(3 * E > c->mlp_hidden ? 3 * E : c->mlp_hidden) > (size_t)INT32_MAX ||
        SL * (size_t)(4 * F > c->in_chans ? 4 * F : c->in_chans) > (size_t)INT32_MAX * 4)
        return latup_fail(LATUP_E_INPUT, "latent %dx%d is too large for this model", H, W);
    const int nthreads = latup_get_threads();

    p->tokens = L * E * sizeof(float);
    p->qkv = L * 3 * E * sizeof(float);
    p->hidden = L * (size_t)c->mlp_hidden * sizeof(float);
    p->attn_scratch = window_attention_scratch_floats(ws * ws, nthreads) * sizeof(float);
    p->mask = nW * N * N * sizeof(float);
    /* head ping-pong buffers: the largest map is the last stage's [F, S*Hp, S*Wp] (equal to its
     * conv output [4F, S/2*Hp, S/2*Wp]) or conv_last's [C, S*Hp, S*Wp] */
    const size_t head_max = SL * (size_t)(F > c->out_chans ? F : c->out_chans);
    p->head = 2 * head_max * sizeof(float);
    /* im2col band: the widest conv input, Cin * 9 * W floats per row */
    size_t col = 0;
    int band = 0;
    struct { int cin, h, w; } convs[] = {
        {c->in_chans, p->Hp, p->Wp}, {E, p->Hp, p->Wp}, {F, p->Hp * scale, p->Wp * scale},
        {F, p->Hp * scale / 2, p->Wp * scale / 2}};
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        int rows = conv2d_band_rows(convs[i].cin, convs[i].h, convs[i].w, 3, CONV_BAND_BUDGET);
        size_t f = conv2d_col_floats(convs[i].cin, convs[i].w, 3, rows);
        if (f > col) col = f, band = rows;
    }
    p->conv_col = col * sizeof(float);
    p->conv_band_rows = band;
    /* pad [C,L], f0 [E,L], 5 token buffers (t, r, u, win, ao), qkv, hidden, scratch */
    p->total = (size_t)c->in_chans * L * sizeof(float) + 6 * p->tokens + p->qkv + p->hidden +
               p->attn_scratch + p->mask + p->head + p->conv_col;
    return LATUP_OK;
}

void latup_lua_plan_print(const latup_lua_plan *p, FILE *f) {
    const double MiB = 1024.0 * 1024.0;
    fprintf(f, "memory plan: latent %dx%d -> padded %dx%d, x%d\n", p->H, p->W, p->Hp, p->Wp, p->scale);
    fprintf(f, "  token buffers [L,E]     6 x %8.1f MiB\n", p->tokens / MiB);
    fprintf(f, "  qkv [L,3E]                  %8.1f MiB\n", p->qkv / MiB);
    fprintf(f, "  mlp hidden [L,hidden]       %8.1f MiB\n", p->hidden / MiB);
    fprintf(f, "  shift mask [nW,N,N]         %8.1f MiB\n", p->mask / MiB);
    fprintf(f, "  attention scores/thread     %8.1f MiB\n", p->attn_scratch / MiB);
    fprintf(f, "  im2col band (%4d rows)      %8.1f MiB\n", p->conv_band_rows, p->conv_col / MiB);
    fprintf(f, "  head maps                   %8.1f MiB\n", p->head / MiB);
    fprintf(f, "  arena total                 %8.1f MiB\n", p->total / MiB);
}

/* ---- forward ---------------------------------------------------------------------------------- */

/* The arena, carved once per call; nothing is allocated inside the per-block loop. */
typedef struct {
    float *pad;     /* [C, Hp, Wp] padded input */
    float *f0;      /* [E, L] conv_first output, the long skip */
    float *t;       /* [L, E] residual stream */
    float *r;       /* [L, E] RSTB input, its residual */
    float *u, *win; /* [L, E] scratch (also [E, L] for convs) */
    float *ao;      /* [L, E] attention output */
    float *qkv;     /* [L, 3E] */
    float *hid;     /* [L, hidden] */
    float *scores;  /* per-thread [N, N] */
    float *mask;    /* [nW, N, N] shift mask */
    float *ha, *hb; /* head ping-pong */
    float *col;     /* im2col band */
    int band_rows;
} arena;

typedef struct {
    const latup_run_opts *opts;
    int b;
} dumper;

static void dump(const dumper *d, const char *name, const float *data, int ndim, int64_t d0,
                 int64_t d1, int64_t d2) {
    if (!d->opts || !d->opts->dump) return;
    latup_tensor t = {.data = (float *)data, .ndim = ndim, .shape = {d0, d1, d2, 0}};
    d->opts->dump(d->opts->dump_user, name, &t, d->b);
}

static void conv(float *out, const float *inp, const latup_conv *c, int H, int W, arena *a) {
    conv2d_forward(out, inp, c->w, c->b, c->cin, H, W, c->cout, c->k, a->col, a->band_rows);
}

static void linear(float *out, const float *inp, const latup_linear *l, int N) {
    linear_forward(out, inp, l->w, l->b, N, l->in, l->out);
}

static void norm(float *out, const float *inp, const latup_norm *n, int N) {
    layernorm_forward(out, inp, n->w, n->b, N, n->dim, n->eps);
}

/* One Swin block on the token stream t [L, E] (spec step 4). */
static void swin_block_forward(const swin_block *B, const latup_lua_config *c, int Hp, int Wp,
                               arena *a, const dumper *d, const char *pfx) {
    const int E = c->embed_dim, ws = c->window_size, N = ws * ws, L = Hp * Wp, nW = L / N;
    const int nH = B->num_heads, hd = E / nH;
    char name[192];
#define NAME(s) (snprintf(name, sizeof name, "%s.%s", pfx, s), name)
    /* attention branch: LN, roll by -shift, windows, qkv, MSA, proj, windows back, roll back */
    norm(a->u, a->t, &B->norm1, L);                                   /* u   [L, E]      */
    dump(d, NAME("norm1"), a->u, 2, L, E, 0);
    window_partition(a->win, a->u, Hp, Wp, E, ws, B->shift);          /* win [nW, N, E]  */
    linear(a->qkv, a->win, &B->qkv, L);                               /* qkv [nW, N, 3E] */
    dump(d, NAME("attn.qkv"), a->qkv, 3, nW, N, 3 * E);
    window_attention_forward(a->ao, a->qkv, B->rel_bias, B->shift ? a->mask : NULL, nW, N, nH, hd,
                             1.0f / sqrtf((float)hd), a->scores, latup_get_threads());
    dump(d, NAME("attn.out"), a->ao, 3, nW, N, E);                    /* ao  [nW, N, E]  */
    linear(a->win, a->ao, &B->proj, L);                               /* win [nW, N, E]  */
    dump(d, NAME("attn.proj"), a->win, 3, nW, N, E);
    window_reverse(a->u, a->win, Hp, Wp, E, ws, B->shift);            /* u   [L, E]      */
    add_inplace(a->t, a->u, (size_t)L * E);                           /* t += attention  */
    dump(d, NAME("attn_res"), a->t, 2, L, E, 0);
    /* MLP branch */
    norm(a->u, a->t, &B->norm2, L);
    dump(d, NAME("norm2"), a->u, 2, L, E, 0);
    linear(a->hid, a->u, &B->fc1, L);                                 /* hid [L, hidden] */
    gelu_forward(a->hid, a->hid, (size_t)L * c->mlp_hidden);
    dump(d, NAME("mlp.act"), a->hid, 2, L, c->mlp_hidden, 0);
    linear(a->u, a->hid, &B->fc2, L);                                 /* u   [L, E]      */
    dump(d, NAME("mlp.fc2"), a->u, 2, L, E, 0);
    add_inplace(a->t, a->u, (size_t)L * E);                           /* t += mlp        */
    dump(d, pfx, a->t, 2, L, E, 0);
#undef NAME
}

/* The head (spec step 6): conv_before + LeakyReLU, then per stage [conv F -> r*r*F,
 * PixelShuffle(r)], then conv_last (SwinIR's direct tail: one [conv E -> r*r*C, PixelShuffle(r)]).
 * Reads f [E, Hp, Wp]; leaves [C, S*Hp, S*Wp] in *result. Dump names are the module names. */
static void head_forward(const head *h, const float *f, int Hp, int Wp, arena *a,
                         const dumper *d, float **result) {
    char name[96];
    float *x = a->ha, *y = a->hb;
    const float *in = f;
    if (h->has_before) {
        conv(x, f, &h->conv_before, Hp, Wp, a);                        /* x [F, Hp, Wp] */
        leaky_relu_forward(x, x, (size_t)h->conv_before.cout * Hp * Wp, LEAKY_SLOPE);
        dump(d, h->before_name, x, 3, h->conv_before.cout, Hp, Wp);
        in = x;
    }
    int hh = Hp, ww = Wp;
    for (int k = 0; k < h->n_up; k++) {
        const int r = h->r[k], cout = h->up[k].cout;
        conv(y, in, &h->up[k], hh, ww, a);                             /* y [r*r*F, hh, ww] */
        snprintf(name, sizeof name, "%s.%d", h->up_name, 2 * k);
        dump(d, name, y, 3, cout, hh, ww);
        pixel_shuffle(x, y, cout / (r * r), hh, ww, r);                /* x [F, r*hh, r*ww] */
        hh *= r, ww *= r;
        snprintf(name, sizeof name, "%s.%d", h->up_name, 2 * k + 1);
        dump(d, name, x, 3, cout / (r * r), hh, ww);
        in = x;
    }
    if (h->has_last) {
        conv(y, x, &h->conv_last, hh, ww, a);                          /* y [C, S*Hp, S*Wp] */
        dump(d, h->last_name, y, 3, h->conv_last.cout, hh, ww);
        *result = y;
    } else {
        *result = x;
    }
}

static latup_status arena_alloc(arena *a, float **block, const latup_lua *m, const latup_lua_plan *p) {
    const latup_lua_config *c = &m->cfg;
    const size_t L = (size_t)p->Hp * p->Wp, E = (size_t)c->embed_dim;
    float *base = latup_alloc_floats(p->total / sizeof(float) + 16 * 14, "upscale arena");
    if (!base) return LATUP_E_NOMEM;
    float *q = base;
    /* each carve is rounded to 16 floats (64 bytes) */
#define CARVE(ptr, n) (ptr = q, q += ((size_t)(n) + 15) / 16 * 16)
    CARVE(a->pad, (size_t)c->in_chans * L);
    CARVE(a->f0, E * L);
    CARVE(a->t, E * L);
    CARVE(a->r, E * L);
    CARVE(a->u, E * L);
    CARVE(a->win, E * L);
    CARVE(a->ao, E * L);
    CARVE(a->qkv, p->qkv / sizeof(float));
    CARVE(a->hid, p->hidden / sizeof(float));
    CARVE(a->scores, p->attn_scratch / sizeof(float));
    CARVE(a->mask, p->mask / sizeof(float));
    CARVE(a->ha, p->head / 2 / sizeof(float));
    CARVE(a->hb, p->head / 2 / sizeof(float));
    CARVE(a->col, p->conv_col / sizeof(float));
#undef CARVE
    a->band_rows = p->conv_band_rows;
    *block = base;
    return LATUP_OK;
}

/* x[c, :] += sign * v[c] */
static void add_channel_bias(float *x, const float *v, float sign, int C, int n) {
    for (int ch = 0; ch < C; ch++)
        for (int i = 0; i < n; i++) x[(size_t)ch * n + i] += sign * v[ch];
}


latup_status latup_lua_upscale(const latup_lua *m, const latup_tensor *x, int scale,
                               latup_tensor *y, const latup_run_opts *opts) {
    if (opts && opts->device == LATUP_DEVICE_CUDA) return latup_gpu_lua_upscale(m, x, scale, y, opts);
    const latup_lua_config *c = &m->cfg;
    memset(y, 0, sizeof *y);
    if (x->ndim != 3 && x->ndim != 4) {
        char s[96];
        return latup_fail(LATUP_E_INPUT, "latent has shape %s, expected [C,H,W] or [B,C,H,W]",
                          latup_shape_str(s, sizeof s, x->ndim, x->shape));
    }
    const int off = x->ndim - 3;
    const int64_t B = off ? x->shape[0] : 1, C = x->shape[off];
    if (C != c->in_chans) {
        char s[96];
        return latup_fail(LATUP_E_INPUT, "latent has shape %s: %lld channels, the model expects %d",
                          latup_shape_str(s, sizeof s, x->ndim, x->shape), (long long)C, c->in_chans);
    }
    if (B < 1) return latup_fail(LATUP_E_INPUT, "latent has an empty batch");
    if (x->shape[off + 1] > 16384 || x->shape[off + 2] > 16384)
        return latup_fail(LATUP_E_INPUT, "latent %lldx%lld is too large", (long long)x->shape[off + 1],
                          (long long)x->shape[off + 2]);
    const int H = (int)x->shape[off + 1], W = (int)x->shape[off + 2];
    latup_lua_plan p;
    TRY(latup_lua_plan_memory(m, H, W, scale, &p));
    TRY(latup_check_finite(x));
    const head *hd = find_head(m, scale);
    const int E = c->embed_dim, Hp = p.Hp, Wp = p.Wp, L = Hp * Wp, S = scale;
    const int Co = c->out_chans;

    int64_t yshape[4] = {B, Co, (int64_t)S * H, (int64_t)S * W};
    TRY(latup_tensor_alloc(y, x->ndim, off ? yshape : yshape + 1));
    arena a;
    float *block;
    latup_status st = arena_alloc(&a, &block, m, &p);
    if (st != LATUP_OK) {
        latup_tensor_free(y);
        return st;
    }
    const int verbose = opts && opts->verbose;
    if (verbose) latup_lua_plan_print(&p, stderr);
    double tm[6] = {0};
    enum { T_EMBED, T_RSTB, T_BODY, T_HEAD, T_OUT };

    /* the shift mask depends on (Hp, Wp) only: built once per call, shared by odd blocks */
    shift_mask_build(a.mask, Hp, Wp, c->window_size, c->window_size / 2);

    for (int64_t b = 0; b < B; b++) {
        dumper d = {opts, (int)b};
        const float *xb = x->data + (size_t)b * C * H * W;
        double t0 = latup_now();
        /* 0. reflect-pad bottom/right to the window multiple          pad [C, Hp, Wp] */
        reflect_pad(a.pad, xb, (int)C, H, W, Hp, Wp);
        dump(&d, "pad", a.pad, 3, C, Hp, Wp);
        if (c->has_mean) add_channel_bias(a.pad, c->mean, -1.0f, (int)C, L); /* (x - mean) */
        /* 1. shallow features                                          f0  [E, Hp, Wp] */
        conv(a.f0, a.pad, &m->conv_first, Hp, Wp, &a);
        dump(&d, "conv_first", a.f0, 3, E, Hp, Wp);
        /* 2. tokens and patch norm                                     t   [L, E] */
        chw_to_hwc(a.t, a.f0, E, L);
        norm(a.t, a.t, &m->patch_norm, L);
        dump(&d, "patch_embed", a.t, 2, L, E, 0);
        double t1 = latup_now();
        tm[T_EMBED] += t1 - t0;
        /* 3. residual Swin transformer blocks */
        for (int i = 0; i < c->num_layers; i++) {
            const rstb *R = &m->layers[i];
            char pfx[64];
            memcpy(a.r, a.t, (size_t)L * E * sizeof(float));
            for (int j = 0; j < R->depth; j++) {
                snprintf(pfx, sizeof pfx, "layers.%d.blocks.%d", i, j);
                swin_block_forward(&R->blocks[j], c, Hp, Wp, &a, &d, pfx);
            }
            /* t = conv(t as a map) + r */
            hwc_to_chw(a.u, a.t, E, L);
            conv(a.win, a.u, &R->conv, Hp, Wp, &a);                     /* win [E, Hp, Wp] */
            snprintf(pfx, sizeof pfx, "layers.%d.conv", i);
            dump(&d, pfx, a.win, 3, E, Hp, Wp);
            chw_to_hwc(a.t, a.win, E, L);
            add_inplace(a.t, a.r, (size_t)L * E);
            snprintf(pfx, sizeof pfx, "layers.%d", i);
            dump(&d, pfx, a.t, 2, L, E, 0);
            if (opts && opts->progress)
                fprintf(stderr, "\rupscaling: image %lld/%lld, RSTB %d/%d", (long long)b + 1, (long long)B, i + 1,
                        c->num_layers), fflush(stderr);
        }
        double t2 = latup_now();
        tm[T_RSTB] += t2 - t1;
        /* 5. final norm, back to a map, conv_after_body + the long skip  f [E, Hp, Wp] */
        norm(a.t, a.t, &m->norm, L);
        dump(&d, "norm", a.t, 2, L, E, 0);
        hwc_to_chw(a.u, a.t, E, L);
        conv(a.win, a.u, &m->conv_after_body, Hp, Wp, &a);
        add_inplace(a.win, a.f0, (size_t)E * L);
        dump(&d, "conv_after_body", a.win, 3, E, Hp, Wp);
        double t3 = latup_now();
        tm[T_BODY] += t3 - t2;
        /* 6. the requested head                                          [C, S*Hp, S*Wp] */
        float *hr;
        head_forward(hd, a.win, Hp, Wp, &a, &d, &hr);
        double t4 = latup_now();
        tm[T_HEAD] += t4 - t3;
        /* 7. crop the padding away                                       [C, S*H, S*W] */
        float *yb = y->data + (size_t)b * Co * S * H * S * W;
        crop(yb, hr, Co, S * Hp, S * Wp, S * H, S * W);
        if (c->has_mean) add_channel_bias(yb, c->mean, 1.0f, Co, S * H * S * W); /* + mean */
        char oname[16];
        snprintf(oname, sizeof oname, "out.x%d", S);
        dump(&d, oname, yb, 3, Co, (int64_t)S * H, (int64_t)S * W);
        tm[T_OUT] += latup_now() - t4;
    }
    if (opts && opts->progress) fprintf(stderr, "\n");
    if (verbose) {
        double total = tm[T_EMBED] + tm[T_RSTB] + tm[T_BODY] + tm[T_HEAD] + tm[T_OUT];
        fprintf(stderr, "timings (batch %lld, %d threads): embed %.3f s, RSTBs %.3f s, body %.3f s, "
                        "head x%d %.3f s, crop %.3f s, total %.3f s\n",
                (long long)B, latup_get_threads(), tm[T_EMBED], tm[T_RSTB], tm[T_BODY], S,
                tm[T_HEAD], tm[T_OUT], total);
    }
    free(block);
    return LATUP_OK;
}
