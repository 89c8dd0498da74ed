/* lua.c — the LUA model's forward pass (and SwinIR's: the same trunk with a classic tail), as
 * docs/spec/lua.md steps 0-7, top to bottom in lua_forward(). The memory plan is the same
 * pass run in counting mode: every buffer is taken from an arena (src/ops/arena.h) where it is
 * used, so the plan is the sum of the takes by construction. Loading lives in lua_load.c. */
#include "model/dump_names.h"
#include "model/exec.h"
#include "model/lua_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEAKY_SLOPE 0.01f      /* nn.LeakyReLU default: LUA heads and SwinIR conv_before_upsample */

static const head *find_head(const latup_lua *m, int scale) {
    for (int s = 0; s < m->cfg.n_scales; s++)
        if (m->heads[s].scale == scale) return &m->heads[s];
    return NULL;
}

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

/* ---- the forward pass ------------------------------------------------------------------------------
 * Every op is an lx_* call (model/exec.h): it computes in the real pass only, and the counting
 * pass that makes the plan runs the same lines. */

/* stages: lx_stage() keeps their seconds; each boundary is a step of the caller's progress */
enum { T_EMBED, T_RSTB, T_BODY, T_HEAD, T_OUT };

/* The trunk's buffers, [L, E] token-major unless noted. */
typedef struct {
    float *t;       /* residual stream */
    float *r;       /* RSTB input, its residual */
    float *u, *win; /* scratch maps (also [E, L] for convs) */
    float *qh;      /* qkv [L, 3E], later the MLP hidden [L, hidden] */
    float *mask;    /* shift mask [nW, N, N] */
} trunk_bufs;

/* One Swin block on the token stream t [L, E] (spec step 4). */
static void swin_block_forward(lx_exec *e, const swin_block *B, const latup_lua_config *c, int Hp, int Wp,
                               const trunk_bufs *k, int li, int bj) {
    const int E = c->embed_dim, ws = c->window_size, N = ws * ws, L = Hp * Wp, nW = L / N, sh = B->shift;
    char name[192];
#define NAME(id) (snprintf(name, sizeof name, DUMP_NAMES[id], li, bj), name)
    /* attention branch: LN, roll by -shift, windows, qkv, MSA, proj, windows back, roll back */
    lx_layernorm_partition(e, k->win, k->t, &B->norm1, Hp, Wp, E, ws, sh);             /* win [nW, N, E]  */
    lx_dump_windows(e, NAME(DN_NORM1), k->win, Hp, Wp, E, ws, sh);                       /*     as [L, E]   */
    lx_linear(e, k->qh, k->win, &B->qkv, L);                                            /* qkv [nW, N, 3E] */
    lx_dump(e, NAME(DN_QKV), k->qh, 3, nW, N, 3 * E);
    lx_window_attention(e, k->u, k->qh, B->rel_bias, sh ? k->mask : NULL, nW, N, B->num_heads, E); /* u [nW, N, E] */
    lx_dump(e, NAME(DN_ATTN_OUT), k->u, 3, nW, N, E);
    lx_linear(e, k->win, k->u, &B->proj, L);                                            /* win [nW, N, E]  */
    lx_dump(e, NAME(DN_ATTN_PROJ), k->win, 3, nW, N, E);
    lx_window_reverse_add(e, k->t, k->win, Hp, Wp, E, ws, sh);                          /* t += attention  */
    lx_dump(e, NAME(DN_ATTN_RES), k->t, 2, L, E, 0);
    /* MLP branch */
    lx_layernorm(e, k->u, k->t, &B->norm2, L);                                          /* u   [L, E]      */
    lx_dump(e, NAME(DN_NORM2), k->u, 2, L, E, 0);
    lx_linear(e, k->qh, k->u, &B->fc1, L);                                              /* hid [L, hidden] */
    lx_gelu(e, k->qh, (size_t)L * c->mlp_hidden);
    lx_dump(e, NAME(DN_MLP_ACT), k->qh, 2, L, c->mlp_hidden, 0);
    lx_linear(e, k->u, k->qh, &B->fc2, L);                                              /* u   [L, E]      */
    lx_dump(e, NAME(DN_MLP_FC2), k->u, 2, L, E, 0);
    lx_add(e, k->t, k->u, (size_t)L * E);                                               /* t += mlp        */
    lx_dump(e, NAME(DN_BLOCK), k->t, 2, L, E, 0);
#undef NAME
}

/* The head (spec step 6): conv_before + LeakyReLU, then per stage [conv F -> r*r*F,
 * PixelShuffle(r)], then conv_last (SwinIR's direct tail: one [conv E -> r*r*C, PixelShuffle(r)]).
 * Reads f [E, Hp, Wp]; leaves [C, S*Hp, S*Wp] in *result, in one of the two maps it takes from
 * the arena. Dump names are the module names. */
static void head_forward(lx_exec *e, const head *h, const float *f, int Hp, int Wp, float **result) {
    /* the two ping-pong maps: x holds conv_before's output and each PixelShuffle's, y each conv's */
    size_t nx = h->has_before ? (size_t)h->conv_before.cout * Hp * Wp : 0, ny = 0;
    size_t hw = (size_t)Hp * Wp;
    for (int k = 0; k < h->n_up; k++) {
        const size_t n = (size_t)h->up[k].cout * hw;
        ny = n > ny ? n : ny, nx = n > nx ? n : nx;
        hw *= (size_t)h->r[k] * h->r[k];
    }
    if (h->has_last) ny = (size_t)h->conv_last.cout * hw > ny ? (size_t)h->conv_last.cout * hw : ny;
    float *x = latup_arena_take(&e->arena, nx, "head map x");
    float *y = latup_arena_take(&e->arena, ny, "head map y");

    char name[96];
    const float *in = f;
    if (h->has_before) {
        const int F = h->conv_before.cout;
        if (lx_fits(e, (size_t)F * Hp * Wp, nx, h->before_name)) {
            lx_conv(e, x, f, &h->conv_before, Hp, Wp, NULL, h->before_name);          /* x [F, Hp, Wp] */
            lx_leaky_relu(e, x, (size_t)F * Hp * Wp, LEAKY_SLOPE);
        }
        lx_dump(e, h->before_name, x, 3, F, Hp, Wp);
        in = x;
    }
    int hh = Hp, ww = Wp;
    for (int k = 0; k < h->n_up; k++) {
        const int r = h->r[k], cout = h->up[k].cout;
        snprintf(name, sizeof name, DUMP_NAMES[DN_HEAD_UP], h->up_name, 2 * k);
        if (!lx_fits(e, (size_t)cout * hh * ww, ny, name) || !lx_fits(e, (size_t)cout * hh * ww, nx, name)) break;
        lx_conv(e, y, in, &h->up[k], hh, ww, NULL, name);                             /* y [r*r*F, hh, ww] */
        lx_dump(e, name, y, 3, cout, hh, ww);
        lx_pixel_shuffle(e, x, y, cout / (r * r), hh, ww, r);                         /* x [F, r*hh, r*ww] */
        hh *= r, ww *= r;
        snprintf(name, sizeof name, DUMP_NAMES[DN_HEAD_UP], h->up_name, 2 * k + 1);
        lx_dump(e, name, x, 3, cout / (r * r), hh, ww);
        in = x;
    }
    if (h->has_last) {
        if (lx_fits(e, (size_t)h->conv_last.cout * hh * ww, ny, h->last_name))
            lx_conv(e, y, x, &h->conv_last, hh, ww, NULL, h->last_name);              /* y [C, S*Hp, S*Wp] */
        lx_dump(e, h->last_name, y, 3, h->conv_last.cout, hh, ww);
        *result = y;
    } else {
        *result = x;
    }
}

/* The forward pass on one latent x [C, H, W] into y [C, S*H, S*W] (spec steps 0-7). In the
 * counting pass x and y are NULL and only the takes happen. */
static void lua_forward(lx_exec *e, const latup_lua *m, const head *hd, const float *xb, int H, int W, float *yb) {
    const latup_lua_config *c = &m->cfg;
    const int E = c->embed_dim, ws = c->window_size, N = ws * ws, C = c->in_chans, Co = c->out_chans;
    const int Hp = round_up(H, ws), Wp = round_up(W, ws), L = Hp * Wp, S = hd->scale;
    latup_arena *a = &e->arena;
    /* buffers alive for the whole pass */
    float *pad = latup_arena_take3(a, (size_t)C, (size_t)Hp, (size_t)Wp, "pad [C,Hp,Wp]");
    float *f0 = latup_arena_take3(a, (size_t)E, (size_t)Hp, (size_t)Wp, "f0 [E,Hp,Wp] (long skip)");
    /* 0. reflect-pad bottom/right to the window multiple          pad [C, Hp, Wp] */
    lx_reflect_pad(e, pad, xb, C, H, W, Hp, Wp);
    lx_dump(e, DUMP_NAMES[DN_PAD], pad, 3, C, Hp, Wp);
    if (c->has_mean) lx_channel_bias(e, pad, c->mean, -1.0f, C, (size_t)L);     /* (x - mean) */
    /* 1. shallow features                                          f0  [E, Hp, Wp] */
    lx_conv(e, f0, pad, &m->conv_first, Hp, Wp, NULL, "conv_first");
    lx_dump(e, DUMP_NAMES[DN_CONV_FIRST], f0, 3, E, Hp, Wp);

    /* the trunk's buffers, given back before the head takes its maps */
    const size_t trunk_mark = latup_arena_mark(a);
    const size_t qh = 3 * E > c->mlp_hidden ? 3 * (size_t)E : (size_t)c->mlp_hidden;
    trunk_bufs k = {
        .t = latup_arena_take3(a, (size_t)L, (size_t)E, 1, "t [L,E] residual stream"),
        .r = latup_arena_take3(a, (size_t)L, (size_t)E, 1, "r [L,E] RSTB input"),
        .u = latup_arena_take3(a, (size_t)L, (size_t)E, 1, "u [L,E]"),
        .win = latup_arena_take3(a, (size_t)L, (size_t)E, 1, "win [L,E] windows"),
        .qh = latup_arena_take3(a, (size_t)L, qh, 1, "qkv [L,3E] / mlp hidden"),
        .mask = latup_arena_take3(a, (size_t)(L / N), (size_t)N, (size_t)N, "shift mask [nW,N,N]"),
    };
    /* 2. tokens and patch norm                                     t   [L, E] */
    lx_shift_mask(e, k.mask, Hp, Wp, ws, ws / 2);                                /* odd blocks share it */
    lx_chw_to_hwc(e, k.t, f0, E, L);
    lx_layernorm(e, k.t, k.t, &m->patch_norm, L);
    lx_dump(e, DUMP_NAMES[DN_PATCH_EMBED], k.t, 2, L, E, 0);
    lx_stage(e, T_EMBED);
    /* 3. residual Swin transformer blocks */
    char pfx[64];
    for (int i = 0; i < c->num_layers; i++) {
        const rstb *R = &m->layers[i];
        lx_copy(e, k.r, k.t, (size_t)L * E);                                     /* r = t           */
        for (int j = 0; j < R->depth; j++) {
            swin_block_forward(e, &R->blocks[j], c, Hp, Wp, &k, i, j);
        }
        /* t = conv(t as a map) + r */
        snprintf(pfx, sizeof pfx, DUMP_NAMES[DN_RSTB_CONV], i);
        lx_hwc_to_chw(e, k.u, k.t, E, L);                                        /* u   [E, Hp, Wp] */
        lx_conv(e, k.win, k.u, &R->conv, Hp, Wp, NULL, pfx);                     /* win [E, Hp, Wp] */
        lx_dump(e, pfx, k.win, 3, E, Hp, Wp);
        lx_chw_to_hwc(e, k.t, k.win, E, L);                                      /* t   [L, E]      */
        lx_add(e, k.t, k.r, (size_t)L * E);                                      /* t += r          */
        snprintf(pfx, sizeof pfx, DUMP_NAMES[DN_RSTB], i);
        lx_dump(e, pfx, k.t, 2, L, E, 0);
        lx_stage(e, T_RSTB);
    }
    /* 5. final norm, back to a map, conv_after_body + the long skip  f = f0 [E, Hp, Wp] */
    lx_layernorm(e, k.t, k.t, &m->norm, L);
    lx_dump(e, DUMP_NAMES[DN_NORM], k.t, 2, L, E, 0);
    lx_hwc_to_chw(e, k.u, k.t, E, L);
    lx_conv(e, k.win, k.u, &m->conv_after_body, Hp, Wp, NULL, "conv_after_body");
    lx_add(e, f0, k.win, (size_t)E * L);                                         /* f0 + conv == conv + f0, exactly */
    lx_dump(e, DUMP_NAMES[DN_CONV_AFTER_BODY], f0, 3, E, Hp, Wp);
    latup_arena_release(a, trunk_mark);
    lx_stage(e, T_BODY);
    /* 6. the requested head                                          [C, S*Hp, S*Wp] */
    float *hr = NULL;
    head_forward(e, hd, f0, Hp, Wp, &hr);
    lx_stage(e, T_HEAD);
    /* 7. crop the padding away                                       [C, S*H, S*W] */
    lx_crop(e, yb, hr, Co, S * Hp, S * Wp, S * H, S * W);
    if (c->has_mean) lx_channel_bias(e, yb, c->mean, 1.0f, Co, (size_t)S * H * S * W); /* + mean */
    char oname[16];
    snprintf(oname, sizeof oname, DUMP_NAMES[DN_OUT], S);
    lx_dump(e, oname, yb, 3, Co, (int64_t)S * H, (int64_t)S * W);
    lx_stage(e, T_OUT);
}

/* The stage hook's line (lx_exec.timing_line). */
static void lua_timings(const lx_exec *e, int64_t B) {
    const head *hd = e->model;
    const double *tm = e->tm, total = tm[T_EMBED] + tm[T_RSTB] + tm[T_BODY] + tm[T_HEAD] + tm[T_OUT];
    fprintf(stderr, "timings (batch %lld, %d threads): embed %.3f s, RSTBs %.3f s, body %.3f s, "
                    "head x%d %.3f s, crop %.3f s, total %.3f s\n",
            (long long)B, e->nthreads, tm[T_EMBED], tm[T_RSTB], tm[T_BODY], hd->scale, tm[T_HEAD], tm[T_OUT], total);
}

/* ---- memory plan ------------------------------------------------------------------------------- */

/* The checks every upscale of an H x W latent makes, before anything is taken. */
static latup_status check_size(const latup_lua *m, int H, int W, int scale, const head **hd) {
    const latup_lua_config *c = &m->cfg;
    const int ws = c->window_size;
    *hd = find_head(m, scale);
    if (!*hd) {
        char have[64] = "";
        for (int s = 0; s < c->n_scales; s++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%sx%d", s ? ", " : "", c->scales[s]);
        return latup_fail(LATUP_E_USAGE, "scale %d not available: this model has heads %s", scale, have);
    }
    if (H < 1 || W < 1 || H > 16384 || W > 16384)
        return latup_fail(LATUP_E_INPUT, "latent size %dx%d out of range (1..16384)", H, W);
    const int Hp = round_up(H, ws), Wp = round_up(W, ws);
    if (Hp - H >= H || Wp - W >= W)
        return latup_fail(LATUP_E_INPUT,
                          "latent %dx%d is too small: reflect padding to a multiple of the window (%d) "
                          "needs padding < size, i.e. at least %dx%d",
                          H, W, ws, Hp - H >= H ? ws / 2 + 1 : H, Wp - W >= W ? ws / 2 + 1 : W);
    /* the kernels index a map's pixels with int: the head's largest map must stay below 2^31 */
    if ((int64_t)Hp * Wp * scale * scale > INT32_MAX)
        return latup_fail(LATUP_E_INPUT, "latent %dx%d is too large: the x%d output has over 2^31 pixels", H, W, scale);
    return LATUP_OK;
}

/* The counting pass: the forward pass with no memory behind the arena. */
static latup_status count_pass(lx_exec *e, const latup_lua *m, const head *hd, int H, int W) {
    lx_begin_count(e);
    lua_forward(e, m, hd, NULL, H, W, NULL);
    return e->arena.st;
}

/* The plan of a counted pass. */
static void fill_plan(const lx_exec *e, const latup_lua *m, int H, int W, int scale, latup_lua_plan *p) {
    const int ws = m->cfg.window_size;
    memset(p, 0, sizeof *p);
    p->H = H, p->W = W, p->scale = scale;
    p->Hp = round_up(H, ws), p->Wp = round_up(W, ws);
    latup_arena_plan(&e->arena, &p->mem);
    p->mem.weights = m->resident;
    p->mem.output = (size_t)m->cfg.out_chans * scale * H * (size_t)scale * W * sizeof(float);
}

/* ---- a prepared upscale: checked and counted once, then run --------------------------------------- */

struct latup_lua_exec {
    lx_exec e;             /* counted: its arena's takes are the plan */
    const latup_lua *m;
    const head *hd;
    int H, W;
};

latup_status latup_lua_exec_prepare(const latup_lua *m, int H, int W, int scale, const latup_run_opts *opts,
                                    latup_lua_exec **out, latup_lua_plan *p) {
    *out = NULL;
    memset(p, 0, sizeof *p);
    const head *hd;
    TRY(check_size(m, H, W, scale, &hd));
    latup_lua_exec *x = latup_calloc(1, sizeof *x, "upscale plan");
    if (!x) return LATUP_E_NOMEM;
    lx_init(&x->e, LX_OPTS(opts), lua_timings, hd);
    x->m = m, x->hd = hd, x->H = H, x->W = W;
    latup_status st = count_pass(&x->e, m, hd, H, W);
    if (st != LATUP_OK) {
        free(x);
        return st;
    }
    fill_plan(&x->e, m, H, W, scale, p);
    *out = x;
    return LATUP_OK;
}

void latup_lua_exec_free(latup_lua_exec *x) {
    if (!x) return;
    latup_arena_free(&x->e.arena);
    free(x);
}

int64_t latup_lua_exec_steps(const latup_lua_exec *x) { return x->e.steps; }

latup_status latup_lua_exec_run(latup_lua_exec *x, const float *in, int64_t B, float *out, latup_progress *progress) {
    lx_exec *e = &x->e;
    const latup_lua_config *c = &x->m->cfg;
    const int H = x->H, W = x->W, S = x->hd->scale;
    latup_status st = lx_begin_run(e, "upscale arena", progress);
    const size_t xsz = (size_t)c->in_chans * H * W, ysz = (size_t)c->out_chans * S * H * S * W;
    for (int64_t b = 0; b < B && st == LATUP_OK; b++) {
        lx_begin_image(e, (int)b);
        lua_forward(e, x->m, x->hd, in + b * xsz, H, W, out + b * ysz);
        st = lx_end_image(e);
    }
    return lx_end_run(e, st, B);
}

/* ---- plans: latup_lua_upscale() is a prepared call (src/api/call.c) ------------------------------------ */

latup_status latup_lua_plan_memory(const latup_lua *m, int H, int W, int scale, const latup_run_opts *opts,
                                   latup_lua_plan *p) {
    LATUP_NEED(p);
    memset(p, 0, sizeof *p);
    TRY(latup_lua_check(m, __func__, "m"));
    if (opts) {
        TRY(latup_check_enum((int)opts->device, LATUP_DEVICE_CPU, LATUP_DEVICE_CUDA, __func__, "opts->device"));
        if (opts->conv_band_rows < 0)
            return latup_fail(LATUP_E_USAGE, "%s: opts->conv_band_rows %d is negative", __func__, opts->conv_band_rows);
    }
    latup_lua_exec *x;
    TRY(latup_lua_exec_prepare(m, H, W, scale, opts, &x, p));
    latup_lua_exec_free(x);
    return LATUP_OK;
}

void latup_lua_plan_print(const latup_lua_plan *p, FILE *f) {
    if (!p || !f) return;
    char title[128];
    snprintf(title, sizeof title, "memory plan: latent %dx%d -> padded %dx%d, x%d", p->H, p->W, p->Hp, p->Wp,
             p->scale);
    latup_mem_plan_print(&p->mem, title, f);
}
