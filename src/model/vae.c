/* vae.c — the AutoencoderKL decoder's forward pass (../shared/spec/vae.md): the exact decode
 * (latup_vae_decode -> decode_one), its memory plan (the same pass run in counting mode), and
 * tiled decoding for outputs beyond the memory budget. Loading lives in vae_load.c. */
#include "ops/kernels.h"
#include "model/device.h"
#include "model/vae_model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONV_BAND_BUDGET (8u << 20) /* floats of im2col scratch per band (32 MiB) */
#define ATTN_BLOCK 256     /* query and key block of the mid-block attention */

/* ---- execution: one schedule, run dry to plan and for real to decode -------------------------------
 * Activations rotate through three buffers. Every op writes to a free buffer chosen only from the
 * history of sizes (best fit among the free ones, else the largest), so the dry run that sizes the
 * buffers and the real run make identical choices. */

typedef struct {
    int dry;
    size_t cap[3];       /* floats: dry run grows them; real run: the allocation */
    size_t shadow[3];    /* sizes seen so far, identical in both runs: drives the choice */
    float *buf[3];
    /* mid-block attention, token-major [N, C]: normalised input, q, k, v, output */
    float *nt, *q, *k, *v, *o, *attn_scratch;
    size_t attn_floats, attn_scratch_floats;
    float *col;          /* conv scratch: im2col band + transformed input band */
    size_t col_floats;
    int band_rows_max;
    float *stats;        /* per-channel GroupNorm mean and rstd: [2, Cmax] */
    int cmax;
    const latup_run_opts *dump;
    int b;
    int nthreads;
} vexec;

static int pick(vexec *e, size_t need, int busy0, int busy1) {
    int best = -1, largest = -1;
    for (int i = 0; i < 3; i++) {
        if (i == busy0 || i == busy1) continue;
        if (e->shadow[i] >= need && (best < 0 || e->shadow[i] < e->shadow[best])) best = i;
        if (largest < 0 || e->shadow[i] > e->shadow[largest]) largest = i;
    }
    int i = best >= 0 ? best : largest;
    if (e->shadow[i] < need) e->shadow[i] = need;
    if (e->dry && e->cap[i] < need) e->cap[i] = need;
    return i;
}

static void dump_chw(vexec *e, const char *name, const float *x, int C, int h, int w) {
    if (e->dry || !e->dump || !e->dump->dump) return;
    latup_tensor t = {.data = (float *)x, .ndim = 3, .shape = {C, h, w, 0}};
    e->dump->dump(e->dump->dump_user, name, &t, e->b);
}

/* Scratch for a 3x3 conv with an input transform at this size (the plan takes the max). */
static void need_conv(vexec *e, int cin, int H, int W, const conv_input_op *op) {
    int rows = conv2d_band_rows(cin, H, W, 3, CONV_BAND_BUDGET);
    size_t f = conv2d_ex_scratch_floats(cin, W, 3, rows, op);
    if (f > e->col_floats) e->col_floats = f;
}

/* out = conv(op(inp)); in a dry run only the scratch is sized. H, W: the output size. */
static void run_conv(vexec *e, float *out, const float *inp, const latup_conv *c, int H, int W,
                     const conv_input_op *op) {
    if (c->k == 3) need_conv(e, c->cin, H, W, op);
    if (e->dry) return;
    int rows = conv2d_band_rows(c->cin, H, W, c->k, CONV_BAND_BUDGET);
    conv2d_forward_ex(out, inp, c->w, c->b, c->cin, H, W, c->cout, c->k, e->col, rows, op);
}

/* The GroupNorm (+ SiLU) applied by the next conv as it reads its input. */
static conv_input_op norm_op(vexec *e, const latup_norm *n, const float *x, int C, int HW, int silu) {
    conv_input_op op = {0};
    float *mean = e->stats, *scale = e->stats + e->cmax;
    if (!e->dry) groupnorm_affine(mean, scale, x, n->w, C, HW, GN_GROUPS, n->eps);
    op.norm = 1, op.norm_mean = mean, op.norm_scale = scale, op.norm_bias = n->b;
    op.silu = silu;
    return op;
}

/* ResnetBlock: y = conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))) + shortcut(x). x in buffer *hi;
 * the result's buffer goes back in *hi. */
static void resnet_forward(vexec *e, const resnet *r, int *hi, int h, int w, const char *name) {
    const int HW = h * w;
    const float *x = e->buf[*hi];
    char nm[256];
    int t1 = pick(e, (size_t)r->cout * HW, *hi, -1);
    if (!strcmp(name, "mid.block_1") && e->dump && e->dump->dump && !e->dry) {
        /* the golden files hold norm1 (before SiLU) of the first resnet: materialise it here */
        groupnorm_forward(e->buf[t1], x, r->norm1.w, r->norm1.b, r->cin, HW, GN_GROUPS, r->norm1.eps);
        snprintf(nm, sizeof nm, "%s.norm1", name);
        dump_chw(e, nm, e->buf[t1], r->cin, h, w);
    }
    conv_input_op op = norm_op(e, &r->norm1, x, r->cin, HW, 1);
    run_conv(e, e->buf[t1], x, &r->conv1, h, w, &op);
    snprintf(nm, sizeof nm, "%s.conv1", name);
    dump_chw(e, nm, e->buf[t1], r->cout, h, w);
    int t2 = pick(e, (size_t)r->cout * HW, *hi, t1);
    op = norm_op(e, &r->norm2, e->buf[t1], r->cout, HW, 1);
    run_conv(e, e->buf[t2], e->buf[t1], &r->conv2, h, w, &op);
    if (r->has_shortcut) {
        conv_input_op acc = {.accumulate = 1}; /* y += nin_shortcut(x): one sgemm, beta = 1 */
        run_conv(e, e->buf[t2], x, &r->nin_shortcut, h, w, &acc);
    } else if (!e->dry) {
        add_inplace(e->buf[t2], x, (size_t)r->cout * HW);
    }
    *hi = t2;
    dump_chw(e, name, e->buf[t2], r->cout, h, w);
}

/* Token-major [N,C] -> a dump in [C,h,w], through a free activation buffer. */
static void dump_tokens(vexec *e, const char *name, const float *x, int C, int h, int w, int scratch) {
    if (e->dry || !e->dump || !e->dump->dump) return;
    hwc_to_chw(e->buf[scratch], x, C, h * w);
    dump_chw(e, name, e->buf[scratch], C, h, w);
}

/* AttnBlock: one head over all h*w positions, blocked with an online softmax. */
static void attn_forward(vexec *e, const attn_block *a, int *hi, int h, int w) {
    const int C = a->norm.dim, N = h * w;
    const size_t NC = (size_t)N * C;
    if (NC > e->attn_floats) e->attn_floats = NC;
    size_t sf = attention_blocked_scratch_floats(N, C, ATTN_BLOCK, ATTN_BLOCK, e->nthreads);
    if (sf > e->attn_scratch_floats) e->attn_scratch_floats = sf;
    int t = pick(e, NC, *hi, -1);
    if (e->dry) {
        *hi = pick(e, NC, *hi, t);
        return;
    }
    const float *x = e->buf[*hi];
    groupnorm_forward(e->buf[t], x, a->norm.w, a->norm.b, C, N, GN_GROUPS, a->norm.eps);
    dump_chw(e, "mid.attn_1.norm", e->buf[t], C, h, w);
    chw_to_hwc(e->nt, e->buf[t], C, N);                               /* nt [N, C] */
    linear_forward(e->q, e->nt, a->q.w, a->q.b, N, C, C);             /* the 1x1 convs as Linears */
    linear_forward(e->k, e->nt, a->k.w, a->k.b, N, C, C);
    linear_forward(e->v, e->nt, a->v.w, a->v.b, N, C, C);
    dump_tokens(e, "mid.attn_1.q", e->q, C, h, w, t);
    dump_tokens(e, "mid.attn_1.k", e->k, C, h, w, t);
    dump_tokens(e, "mid.attn_1.v", e->v, C, h, w, t);
    attention_blocked_forward(e->o, e->q, e->k, e->v, N, C, 1.0f / sqrtf((float)C), ATTN_BLOCK, ATTN_BLOCK,
                              e->attn_scratch, e->nthreads);
    dump_tokens(e, "mid.attn_1.attn", e->o, C, h, w, t);
    linear_forward(e->nt, e->o, a->proj_out.w, a->proj_out.b, N, C, C);
    int y = pick(e, NC, *hi, t);
    hwc_to_chw(e->buf[y], e->nt, C, N);
    add_inplace(e->buf[y], x, NC);                                    /* residual */
    *hi = y;
    dump_chw(e, "mid.attn_1", e->buf[y], C, h, w);
}

typedef struct {
    double t[LATUP_VAE_MAX_LEVELS + 3];
} vtimes;

/* The decoder on one latent z [zc, h, w]; writes [3, 8h, 8w] (for n_levels 4) to out. */
static void decode_one(vexec *e, const latup_vae *v, const float *z, int h, int w, float *out, vtimes *tm,
                       int progress, int n_stages_done, int n_stages) {
    const latup_vae_config *c = &v->cfg;
    const int top = c->channels[c->n_levels - 1];
    double t0 = latup_now();
    const float *zin = z;
    /* every image (and tile) replays the dry run's schedule from the start, so it makes the same
     * buffer choices the buffers were sized for */
    memset(e->shadow, 0, sizeof e->shadow);
    int hi = -1;
    if (c->has_post_quant_conv) {                                      /* [zc, h, w] */
        hi = pick(e, (size_t)c->z_channels * h * w, -1, -1);
        run_conv(e, e->buf[hi], z, &v->post_quant_conv, h, w, NULL);
        dump_chw(e, "post_quant_conv", e->buf[hi], c->z_channels, h, w);
        zin = e->buf[hi];
    }
    int o = pick(e, (size_t)top * h * w, hi, -1);
    run_conv(e, e->buf[o], zin, &v->conv_in, h, w, NULL);              /* [C, h, w] */
    hi = o;
    dump_chw(e, "conv_in", e->buf[hi], top, h, w);
    resnet_forward(e, &v->mid_block_1, &hi, h, w, "mid.block_1");
    attn_forward(e, &v->mid_attn, &hi, h, w);
    resnet_forward(e, &v->mid_block_2, &hi, h, w, "mid.block_2");
    if (tm && !e->dry) tm->t[0] += latup_now() - t0;
    int hh = h, ww = w, C = top;
    for (int L = c->n_levels - 1; L >= 0; L--) {
        double tl = latup_now();
        const up_level *u = &v->up[L];
        char name[64];
        for (int M = 0; M < u->n_blocks; M++) {
            snprintf(name, sizeof name, "up.%d.block.%d", L, M);
            resnet_forward(e, &u->blocks[M], &hi, hh, ww, name);
            C = u->blocks[M].cout;
        }
        if (u->has_upsample) {                                         /* nearest x2 + 3x3, fused */
            int y = pick(e, (size_t)C * 4 * hh * ww, hi, -1);
            conv_input_op up = {.upsample2x = 1};
            run_conv(e, e->buf[y], e->buf[hi], &u->upsample, 2 * hh, 2 * ww, &up);
            hi = y, hh *= 2, ww *= 2;
            snprintf(name, sizeof name, "up.%d.upsample", L);
            dump_chw(e, name, e->buf[hi], C, hh, ww);
        }
        if (tm && !e->dry) tm->t[1 + (c->n_levels - 1 - L)] += latup_now() - tl;
        if (progress && !e->dry)
            fprintf(stderr, "\rdecoding: stage %d/%d", n_stages_done + (c->n_levels - L), n_stages), fflush(stderr);
    }
    double tl = latup_now();
    const int HW = hh * ww;
    if (e->dump && e->dump->dump && !e->dry) { /* norm_out is fused into conv_out: materialise it to dump */
        int t = pick(e, (size_t)C * HW, hi, -1);
        groupnorm_forward(e->buf[t], e->buf[hi], v->norm_out.w, v->norm_out.b, C, HW, GN_GROUPS, v->norm_out.eps);
        silu_forward(e->buf[t], e->buf[t], (size_t)C * HW);
        dump_chw(e, "norm_out", e->buf[t], C, hh, ww);
    } else if (e->dry) {
        pick(e, (size_t)C * HW, hi, -1);
    }
    conv_input_op op = norm_op(e, &v->norm_out, e->buf[hi], C, HW, 1);
    run_conv(e, out, e->buf[hi], &v->conv_out, hh, ww, &op);
    dump_chw(e, "out", out, c->out_channels, hh, ww);
    if (tm && !e->dry) tm->t[1 + c->n_levels] += latup_now() - tl;
}

/* ---- plan -------------------------------------------------------------------------------------- */

static int up_factor(const latup_vae_config *c) { return 1 << (c->n_levels - 1); }

static void no_dump(void *user, const char *name, const latup_tensor *t, int b) {
    (void)user, (void)name, (void)t, (void)b;
}

static void plan_exec(const latup_vae *v, int h, int w, vexec *e) {
    memset(e, 0, sizeof *e);
    e->dry = 1;
    e->nthreads = latup_get_threads();
    e->cmax = 0;
    for (int L = 0; L < v->cfg.n_levels; L++)
        if (v->cfg.channels[L] > e->cmax) e->cmax = v->cfg.channels[L];
    latup_run_opts fake_dump = {.dump = no_dump}; /* plan for the dump path's extra buffer too */
    e->dump = &fake_dump;
    decode_one(e, v, NULL, h, w, NULL, NULL, 0, 0, 0);
    e->dump = NULL;
}

latup_status latup_vae_plan_memory(const latup_vae *v, int h, int w, latup_vae_plan *p) {
    memset(p, 0, sizeof *p);
    if (h < 1 || w < 1 || h > 8192 || w > 8192)
        return latup_fail(LATUP_E_INPUT, "latent size %dx%d out of range (1..8192)", h, w);
    vexec e;
    plan_exec(v, h, w, &e);
    p->h = h, p->w = w;
    for (int i = 0; i < 3; i++) p->act[i] = e.cap[i] * sizeof(float);
    p->attn = (5 * e.attn_floats + e.attn_scratch_floats) * sizeof(float);
    p->conv = e.col_floats * sizeof(float);
    p->total = p->act[0] + p->act[1] + p->act[2] + p->attn + p->conv + 2 * (size_t)e.cmax * sizeof(float);
    p->weights = (size_t)v->cfg.n_params * sizeof(float);
    return LATUP_OK;
}

void latup_vae_plan_print(const latup_vae_plan *p, FILE *f) {
    const double MiB = 1024.0 * 1024.0;
    fprintf(f, "VAE memory plan: latent %dx%d\n", p->h, p->w);
    for (int i = 0; i < 3; i++) fprintf(f, "  activation buffer %d         %9.1f MiB\n", i, p->act[i] / MiB);
    fprintf(f, "  mid attention (q,k,v,o,..) %9.1f MiB\n", p->attn / MiB);
    fprintf(f, "  conv band scratch          %9.1f MiB\n", p->conv / MiB);
    fprintf(f, "  arena total                %9.1f MiB (+ weights %.1f MiB)\n", p->total / MiB, p->weights / MiB);
}

static latup_status exec_alloc(vexec *e, float **block) {
    size_t total = e->cap[0] + e->cap[1] + e->cap[2] + 5 * e->attn_floats + e->attn_scratch_floats +
                   e->col_floats + 2 * (size_t)e->cmax + 16 * 12;
    float *q = latup_alloc_floats(total, "VAE arena");
    if (!q) return LATUP_E_NOMEM;
    *block = q;
#define CARVE(ptr, n) (ptr = q, q += ((size_t)(n) + 15) / 16 * 16)
    for (int i = 0; i < 3; i++) CARVE(e->buf[i], e->cap[i]);
    CARVE(e->nt, e->attn_floats);
    CARVE(e->q, e->attn_floats);
    CARVE(e->k, e->attn_floats);
    CARVE(e->v, e->attn_floats);
    CARVE(e->o, e->attn_floats);
    CARVE(e->attn_scratch, e->attn_scratch_floats);
    CARVE(e->col, e->col_floats);
    CARVE(e->stats, 2 * (size_t)e->cmax);
#undef CARVE
    e->dry = 0;
    memset(e->shadow, 0, sizeof e->shadow);
    return LATUP_OK;
}

/* ---- decoding ------------------------------------------------------------------------------------ */

static latup_status check_latent(const latup_vae *v, const latup_tensor *z) {
    char s[96];
    if (z->ndim != 3 && z->ndim != 4)
        return latup_fail(LATUP_E_INPUT, "latent has shape %s, expected [C,H,W] or [B,C,H,W]",
                          latup_shape_str(s, sizeof s, z->ndim, z->shape));
    const int off = z->ndim - 3;
    if (z->shape[off] != v->cfg.z_channels)
        return latup_fail(LATUP_E_INPUT, "latent has shape %s: %lld channels, the VAE expects %d",
                          latup_shape_str(s, sizeof s, z->ndim, z->shape), (long long)z->shape[off], v->cfg.z_channels);
    if ((off && z->shape[0] < 1) || z->shape[off + 1] < 1 || z->shape[off + 2] < 1 || z->shape[off + 1] > 8192 ||
        z->shape[off + 2] > 8192)
        return latup_fail(LATUP_E_INPUT, "latent has shape %s: sizes must be 1..8192",
                          latup_shape_str(s, sizeof s, z->ndim, z->shape));
    return latup_check_finite(z);
}

/* Linear ramp weight of position i in a tile of n, with `lo`/`hi` overlap on sides that have a
 * neighbour (0: no neighbour, full weight to the edge). Never 0, so every pixel is covered. */
static float ramp(int i, int n, int lo, int hi) {
    float wgt = 1.0f;
    if (lo > 0 && i < lo) wgt = fminf(wgt, (i + 0.5f) / lo);
    if (hi > 0 && i >= n - hi) wgt = fminf(wgt, (n - i - 0.5f) / hi);
    return wgt;
}

/* Tiles of T latent pixels with `ov` overlap; each tile decoded exactly, blended with linear
 * ramps across the overlaps. Approximate: GroupNorm statistics and attention see one tile. */
static latup_status decode_tiled(const latup_vae *v, const float *z, int h, int w, float *out, int T, int ov,
                                 const latup_decode_opts *opts, vtimes *tm) {
    const latup_vae_config *c = &v->cfg;
    const int f = up_factor(c), H = h * f, W = w * f, Co = c->out_channels;
    const int step = T - ov;
    const int nty = h <= T ? 1 : (h - ov + step - 1) / step, ntx = w <= T ? 1 : (w - ov + step - 1) / step;
    vexec e;
    plan_exec(v, T < h ? T : h, T < w ? T : w, &e);
    e.nthreads = latup_get_threads();
    float *block = NULL;
    const int th = T < h ? T : h, tw = T < w ? T : w;
    float *ztile = latup_alloc_floats((size_t)c->z_channels * th * tw, "latent tile");
    float *otile = latup_alloc_floats((size_t)Co * th * f * tw * f, "decoded tile");
    float *wsum = latup_calloc((size_t)H * W, sizeof(float), "tile blend weights");
    latup_status st = ztile && otile && wsum ? exec_alloc(&e, &block) : LATUP_E_NOMEM;
    if (st == LATUP_OK) memset(out, 0, (size_t)Co * H * W * sizeof(float));
    for (int ty = 0; ty < nty && st == LATUP_OK; ty++)
        for (int tx = 0; tx < ntx; tx++) {
            /* tile origin, the last tile flush with the edge */
            int y0 = ty * step, x0 = tx * step;
            if (y0 + th > h) y0 = h - th;
            if (x0 + tw > w) x0 = w - tw;
            for (int ch = 0; ch < c->z_channels; ch++)
                for (int y = 0; y < th; y++)
                    memcpy(ztile + ((size_t)ch * th + y) * tw, z + ((size_t)ch * h + y0 + y) * w + x0, (size_t)tw * sizeof(float));
            decode_one(&e, v, ztile, th, tw, otile, tm, 0, 0, 0);
            const int ovl_top = ty > 0 ? ov * f : 0, ovl_bot = ty < nty - 1 ? ov * f : 0;
            const int ovl_lft = tx > 0 ? ov * f : 0, ovl_rgt = tx < ntx - 1 ? ov * f : 0;
            const int oh = th * f, ow = tw * f;
            for (int y = 0; y < oh; y++) {
                const float wy = ramp(y, oh, ovl_top, ovl_bot);
                for (int x = 0; x < ow; x++) {
                    const float wgt = wy * ramp(x, ow, ovl_lft, ovl_rgt);
                    const size_t o = (size_t)(y0 * f + y) * W + (x0 * f + x);
                    wsum[o] += wgt;
                    for (int ch = 0; ch < Co; ch++) out[(size_t)ch * H * W + o] += wgt * otile[((size_t)ch * oh + y) * ow + x];
                }
            }
            if (opts && opts->progress)
                fprintf(stderr, "\rdecoding: tile %d/%d", ty * ntx + tx + 1, nty * ntx), fflush(stderr);
        }
    if (st == LATUP_OK)
        for (int ch = 0; ch < Co; ch++)
            for (size_t i = 0; i < (size_t)H * W; i++) out[(size_t)ch * H * W + i] /= wsum[i];
    free(block);
    free(ztile);
    free(otile);
    free(wsum);
    return st;
}

latup_status latup_vae_decode(const latup_vae *v, const latup_tensor *z, latup_tensor *img,
                              const latup_decode_opts *opts) {
    if (opts && opts->device == LATUP_DEVICE_CUDA) return latup_gpu_vae_decode(v, z, img, opts);
    const latup_vae_config *c = &v->cfg;
    memset(img, 0, sizeof *img);
    TRY(check_latent(v, z));
    const int off = z->ndim - 3;
    const int64_t B = off ? z->shape[0] : 1;
    const int h = (int)z->shape[off + 1], w = (int)z->shape[off + 2], f = up_factor(c);
    latup_vae_plan plan;
    TRY(latup_vae_plan_memory(v, h, w, &plan));
    int tile = opts ? opts->tile : 0;
    const size_t budget = opts ? opts->max_memory : 0;
    if (tile <= 0 && budget > 0 && plan.total + plan.weights > budget) {
        /* the largest tile (multiple of 8 latent pixels) whose exact decode fits the budget */
        for (tile = (h > w ? h : w) / 8 * 8; tile > 8; tile -= 8) {
            latup_vae_plan tp;
            TRY(latup_vae_plan_memory(v, tile < h ? tile : h, tile < w ? tile : w, &tp));
            if (tp.total + tp.weights <= budget / 2) break; /* half: room for the output image */
        }
    }
    const int tiled = tile > 0 && (tile < h || tile < w);
    int overlap = opts && opts->overlap > 0 ? opts->overlap : tile / 4;
    if (tiled && (tile < 4 || overlap >= tile))
        return latup_fail(LATUP_E_USAGE, "tile %d with overlap %d: the tile must be >= 4 and larger than the overlap", tile, overlap);
    const int verbose = opts && opts->verbose;
    if (verbose) {
        if (tiled) {
            latup_vae_plan tp;
            TRY(latup_vae_plan_memory(v, tile < h ? tile : h, tile < w ? tile : w, &tp));
            fprintf(stderr, "VAE: tiled decode, tiles of %d latent pixels, overlap %d (exact decode would need %.1f MiB)\n",
                    tile, overlap, (plan.total + plan.weights) / 1048576.0);
            latup_vae_plan_print(&tp, stderr);
        } else {
            latup_vae_plan_print(&plan, stderr);
        }
    }
    int64_t shape[4] = {B, c->out_channels, (int64_t)h * f, (int64_t)w * f};
    TRY(latup_tensor_alloc(img, z->ndim, off ? shape : shape + 1));
    vtimes tm = {{0}};
    latup_status st = LATUP_OK;
    const size_t zsz = (size_t)c->z_channels * h * w, osz = (size_t)c->out_channels * h * f * w * f;
    if (tiled) {
        for (int64_t b = 0; b < B && st == LATUP_OK; b++)
            st = decode_tiled(v, z->data + b * zsz, h, w, img->data + b * osz, tile, overlap, opts, &tm);
    } else {
        vexec e;
        plan_exec(v, h, w, &e);
        float *block = NULL;
        st = exec_alloc(&e, &block);
        e.dump = opts && opts->dump ? &(latup_run_opts){.dump = opts->dump, .dump_user = opts->dump_user} : NULL;
        for (int64_t b = 0; b < B && st == LATUP_OK; b++) {
            e.b = (int)b;
            decode_one(&e, v, z->data + b * zsz, h, w, img->data + b * osz, &tm, opts && opts->progress,
                       (int)b * c->n_levels, (int)B * c->n_levels);
        }
        free(block);
    }
    if (opts && opts->progress) fprintf(stderr, "\n");
    if (st != LATUP_OK) {
        latup_tensor_free(img);
        return st;
    }
    if (verbose) {
        fprintf(stderr, "VAE timings (batch %lld, %d threads): conv_in+mid %.3f s", (long long)B, latup_get_threads(), tm.t[0]);
        for (int i = 0; i < c->n_levels; i++) fprintf(stderr, ", up.%d %.3f s", c->n_levels - 1 - i, tm.t[1 + i]);
        fprintf(stderr, ", out %.3f s\n", tm.t[1 + c->n_levels]);
    }
    return LATUP_OK;
}
