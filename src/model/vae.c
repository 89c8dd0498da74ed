/* vae.c — the AutoencoderKL decoder's forward pass (docs/spec/vae.md): the exact decode
 * (latup_vae_decode -> decode_one), its memory plan (the same pass run in counting mode), and
 * tiled decoding for outputs beyond the memory budget. Loading lives in vae_load.c. */
#include "ops/arena.h"
#include "ops/kernels.h"
#include "model/device.h"
#include "model/vae_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTN_BLOCK 256     /* query and key block of the mid-block attention */
#define MIN_TILE 8         /* automatic tiles: multiples of 8 latent pixels, at least 8 */

/* ---- execution: one schedule, counted then run --------------------------------------------------
 * Activations rotate through three arena slots. Every op writes to a free slot chosen only from
 * the history of sizes written so far (best fit among the free ones, else the largest), so the
 * counting pass that sizes the slots and the real pass make identical choices; the arena checks
 * every write against the slot's counted capacity. Scratch (conv bands, GroupNorm statistics,
 * attention buffers) is taken from the arena's stack by the op that uses it. */

typedef struct {
    latup_arena arena;
    size_t shadow[3];       /* sizes written to each slot in this pass: drives pick() */
    float *buf[3];          /* each slot's memory (NULL while counting) */
    const latup_decode_opts *opts;
    char prefix[40];        /* dump name prefix: "" exact, "tile_Y_X." when tiling */
    int b, nthreads, band_rows_max;
    latup_status st;        /* the first kernel failure */
    double tm[LATUP_VAE_MAX_LEVELS + 3];
    int progress_done, progress_total; /* stage counter */
} vexec;

static void exec_init(vexec *e, const latup_decode_opts *opts) {
    memset(e, 0, sizeof *e);
    e->opts = opts;
    e->nthreads = latup_get_threads();
    e->band_rows_max = opts ? opts->conv_band_rows : 0;
}

static int live(const vexec *e) { return !e->arena.counting && e->st == LATUP_OK && e->arena.st == LATUP_OK; }

static int dumping(const vexec *e) { return live(e) && e->opts && e->opts->dump; }

/* A free slot for a write of `need` floats (not busy0/busy1); e->buf[slot] is its memory. */
static int pick(vexec *e, size_t need, int busy0, int busy1) {
    int best = -1, largest = -1;
    for (int i = 0; i < 3; i++) {
        if (i == busy0 || i == busy1) continue;
        if (e->shadow[i] >= need && (best < 0 || e->shadow[i] < e->shadow[best])) best = i;
        if (largest < 0 || e->shadow[i] > e->shadow[largest]) largest = i;
    }
    const int i = best >= 0 ? best : largest;
    if (e->shadow[i] < need) e->shadow[i] = need;
    e->buf[i] = latup_arena_slot(&e->arena, i, need, "activation buffer");
    return i;
}

static void dump_chw(const vexec *e, const char *name, const float *x, int C, int h, int w) {
    if (!dumping(e)) return;
    char full[128];
    snprintf(full, sizeof full, "%s%s", e->prefix, name);
    latup_tensor t = {.data = (float *)x, .ndim = 3, .shape = {C, h, w, 0}};
    e->opts->dump(e->opts->dump_user, full, &t, e->b);
}

/* out = conv(op(inp)), H x W the output size; the conv's bands come from the arena. */
static void run_conv(vexec *e, float *out, const float *inp, const latup_conv *c, int H, int W,
                     const conv_input_op *op, const char *name) {
    const conv_ctx ctx = {e->nthreads, e->band_rows_max, name};
    const size_t mark = latup_arena_mark(&e->arena);
    const size_t n = latup_conv2d_scratch_floats(c->cin, H, W, c->cout, c->k, op, &ctx);
    float *col = latup_arena_take(&e->arena, n, "conv bands (per call)");
    if (live(e)) e->st = latup_conv2d_forward(out, inp, c->w, c->b, c->cin, H, W, c->cout, c->k, op, col, n, &ctx);
    latup_arena_release(&e->arena, mark);
}

/* The GroupNorm (+ SiLU) that the next conv applies as it reads its input; its statistics are
 * taken from the arena (the caller releases them after the conv). */
static conv_input_op norm_op(vexec *e, const latup_norm *n, const float *x, int C, int HW, int silu) {
    float *stats = latup_arena_take3(&e->arena, 2, (size_t)C, 1, "GroupNorm statistics [2,C]");
    conv_input_op op = {.norm = 1, .norm_bias = n->b, .silu = silu};
    if (live(e)) {
        latup_groupnorm_affine(stats, stats + C, x, n->w, C, HW, GN_GROUPS, n->eps);
        op.norm_mean = stats, op.norm_scale = stats + C;
    }
    return op;
}

/* ResnetBlock: y = conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))) + shortcut(x). x in slot *hi;
 * the result's slot goes back in *hi. */
static void resnet_forward(vexec *e, const resnet *r, int *hi, int h, int w, const char *name) {
    const int HW = h * w;
    const float *x = e->buf[*hi];
    char nm[128];
    const int t1 = pick(e, (size_t)r->cout * HW, *hi, -1);
    if (!strcmp(name, "mid.block_1") && dumping(e)) {
        /* the golden files hold norm1 (before SiLU) of the first resnet: materialise it here */
        latup_groupnorm_forward(e->buf[t1], x, r->norm1.w, r->norm1.b, r->cin, HW, GN_GROUPS, r->norm1.eps);
        snprintf(nm, sizeof nm, "%s.norm1", name);
        dump_chw(e, nm, e->buf[t1], r->cin, h, w);
    }
    size_t mark = latup_arena_mark(&e->arena);
    conv_input_op op = norm_op(e, &r->norm1, x, r->cin, HW, 1);
    snprintf(nm, sizeof nm, "%s.conv1", name);
    run_conv(e, e->buf[t1], x, &r->conv1, h, w, &op, nm);
    latup_arena_release(&e->arena, mark);
    dump_chw(e, nm, e->buf[t1], r->cout, h, w);
    const int t2 = pick(e, (size_t)r->cout * HW, *hi, t1);
    op = norm_op(e, &r->norm2, e->buf[t1], r->cout, HW, 1);
    snprintf(nm, sizeof nm, "%s.conv2", name);
    run_conv(e, e->buf[t2], e->buf[t1], &r->conv2, h, w, &op, nm);
    latup_arena_release(&e->arena, mark);
    if (r->has_shortcut) {
        conv_input_op acc = {.accumulate = 1}; /* y += nin_shortcut(x): one sgemm, beta = 1 */
        snprintf(nm, sizeof nm, "%s.nin_shortcut", name);
        run_conv(e, e->buf[t2], x, &r->nin_shortcut, h, w, &acc, nm);
    } else if (live(e)) {
        latup_add_inplace(e->buf[t2], x, (size_t)r->cout * HW);
    }
    *hi = t2;
    dump_chw(e, name, e->buf[t2], r->cout, h, w);
}

/* Token-major [N,C] -> a dump in [C,h,w], through a free slot's memory. */
static void dump_tokens(const vexec *e, const char *name, const float *x, int C, int h, int w, int scratch) {
    if (!dumping(e)) return;
    latup_hwc_to_chw(e->buf[scratch], x, C, h * w);
    dump_chw(e, name, e->buf[scratch], C, h, w);
}

/* AttnBlock: one head over all h*w positions, blocked with an online softmax. Its token-major
 * buffers live in the two activation slots the input does not hold (at the mid block they are a
 * small part of slots sized for the full-resolution maps): slot t holds q, k, v and the
 * normalised tokens, slot y the normalised input, then the result. */
static void attn_forward(vexec *e, const attn_block *a, int *hi, int h, int w) {
    const int C = a->norm.dim, N = h * w;
    const size_t NC = (size_t)N * C;
    latup_arena *ar = &e->arena;
    const int t = pick(e, 4 * NC, *hi, -1);
    const int y = pick(e, NC, *hi, t);
    const size_t mark = latup_arena_mark(ar);
    const size_t ns = latup_attention_blocked_scratch_floats(N, C, ATTN_BLOCK, ATTN_BLOCK, e->nthreads);
    float *scratch = latup_arena_take(ar, ns, "attention blocks");
    const float *x = e->buf[*hi];
    if (live(e)) {
        float *q = e->buf[t], *k = q + NC, *v = k + NC, *nt = v + NC; /* [N, C] each */
        float *o = nt;        /* the attention output, once q, k, v are made from nt */
        float *proj = q;      /* proj_out's output, once the attention has read q */
        latup_groupnorm_forward(e->buf[y], x, a->norm.w, a->norm.b, C, N, GN_GROUPS, a->norm.eps);
        dump_chw(e, "mid.attn_1.norm", e->buf[y], C, h, w);
        latup_chw_to_hwc(nt, e->buf[y], C, N);
        latup_linear_forward(q, nt, a->q.w, a->q.b, N, C, C);               /* the 1x1 convs as Linears */
        latup_linear_forward(k, nt, a->k.w, a->k.b, N, C, C);
        latup_linear_forward(v, nt, a->v.w, a->v.b, N, C, C);
        dump_tokens(e, "mid.attn_1.q", q, C, h, w, y);
        dump_tokens(e, "mid.attn_1.k", k, C, h, w, y);
        dump_tokens(e, "mid.attn_1.v", v, C, h, w, y);
        e->st = latup_attention_blocked_forward(o, q, k, v, N, C, 1.0f / sqrtf((float)C), ATTN_BLOCK, ATTN_BLOCK,
                                                scratch, ns, e->nthreads);
        if (live(e)) {
            dump_tokens(e, "mid.attn_1.attn", o, C, h, w, y);
            latup_linear_forward(proj, o, a->proj_out.w, a->proj_out.b, N, C, C);
            latup_hwc_to_chw(e->buf[y], proj, C, N);
            latup_add_inplace(e->buf[y], x, NC);                              /* residual */
        }
    }
    latup_arena_release(ar, mark);
    *hi = y;
    dump_chw(e, "mid.attn_1", e->buf[y], C, h, w);
}

/* The decoder on one latent z [zc, h, w]; writes [3, f*h, f*w] to out. */
static void decode_one(vexec *e, const latup_vae *v, const float *z, int h, int w, float *out) {
    const latup_vae_config *c = &v->cfg;
    const int top = c->channels[c->n_levels - 1];
    double t0 = latup_now();
    const float *zin = z;
    /* every image (and tile) replays the counting pass's choices from the start */
    memset(e->shadow, 0, sizeof e->shadow);
    int hi = -1;
    if (c->has_post_quant_conv) {                                      /* [zc, h, w] */
        hi = pick(e, (size_t)c->z_channels * h * w, -1, -1);
        run_conv(e, e->buf[hi], z, &v->post_quant_conv, h, w, NULL, "post_quant_conv");
        dump_chw(e, "post_quant_conv", e->buf[hi], c->z_channels, h, w);
        zin = e->buf[hi];
    }
    const int o = pick(e, (size_t)top * h * w, hi, -1);
    run_conv(e, e->buf[o], zin, &v->conv_in, h, w, NULL, "conv_in");  /* [C, h, w] */
    hi = o;
    dump_chw(e, "conv_in", e->buf[hi], top, h, w);
    resnet_forward(e, &v->mid_block_1, &hi, h, w, "mid.block_1");
    attn_forward(e, &v->mid_attn, &hi, h, w);
    resnet_forward(e, &v->mid_block_2, &hi, h, w, "mid.block_2");
    if (live(e)) e->tm[0] += latup_now() - t0;
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
            const int y = pick(e, (size_t)C * 4 * hh * ww, hi, -1);
            conv_input_op up = {.upsample2x = 1};
            snprintf(name, sizeof name, "up.%d.upsample", L);
            run_conv(e, e->buf[y], e->buf[hi], &u->upsample, 2 * hh, 2 * ww, &up, name);
            hi = y, hh *= 2, ww *= 2;
            dump_chw(e, name, e->buf[hi], C, hh, ww);
        }
        if (live(e)) {
            e->tm[1 + (c->n_levels - 1 - L)] += latup_now() - tl;
            if (e->opts && e->opts->progress && e->progress_total > 0)
                fprintf(stderr, "\rdecoding: stage %d/%d", ++e->progress_done, e->progress_total), fflush(stderr);
        }
    }
    double tl = latup_now();
    const int HW = hh * ww;
    /* norm_out is fused into conv_out; a free slot holds it materialised when dumping (picked in
     * both passes, so the slots are sized for it) */
    const int t = pick(e, (size_t)C * HW, hi, -1);
    if (dumping(e)) {
        latup_groupnorm_silu_forward(e->buf[t], e->buf[hi], v->norm_out.w, v->norm_out.b, C, HW, GN_GROUPS,
                                     v->norm_out.eps);
        dump_chw(e, "norm_out", e->buf[t], C, hh, ww);
    }
    const size_t mark = latup_arena_mark(&e->arena);
    conv_input_op op = norm_op(e, &v->norm_out, e->buf[hi], C, HW, 1);
    run_conv(e, out, e->buf[hi], &v->conv_out, hh, ww, &op, "conv_out");
    latup_arena_release(&e->arena, mark);
    dump_chw(e, "out", out, c->out_channels, hh, ww);
    if (live(e)) e->tm[1 + c->n_levels] += latup_now() - tl;
}

/* ---- tiled decoding ---------------------------------------------------------------------------- */

static int up_factor(const latup_vae_config *c) { return 1 << (c->n_levels - 1); }

/* Linear ramp weight of position i in a tile of n, with `lo`/`hi` overlap on sides that have a
 * neighbour (0: no neighbour, full weight to the edge). Never 0, so every pixel is covered. */
static float ramp(int i, int n, int lo, int hi) {
    float wgt = 1.0f;
    if (lo > 0 && i < lo) wgt = fminf(wgt, (i + 0.5f) / lo);
    if (hi > 0 && i >= n - hi) wgt = fminf(wgt, (n - i - 0.5f) / hi);
    return wgt;
}

/* Tiles along one axis of n latent pixels: the count, and tile t's origin (the last tile flush
 * with the edge). */
static int tile_count(int n, int T, int ov) { return n <= T ? 1 : (n - ov + (T - ov) - 1) / (T - ov); }
static int tile_origin(int t, int n, int T, int ov) {
    const int th = T < n ? T : n, o = t * (T - ov);
    return o + th > n ? n - th : o;
}

/* Tiles of T latent pixels with `ov` overlap; each tile decoded exactly, blended with linear
 * ramps over the overlaps (ov * f image pixels). Approximate: GroupNorm statistics and attention
 * see one tile. */
static void decode_tiled(vexec *e, const latup_vae *v, const float *z, int h, int w, float *out, int T, int ov) {
    const latup_vae_config *c = &v->cfg;
    const int f = up_factor(c), H = h * f, W = w * f, Co = c->out_channels, zc = c->z_channels;
    const int nty = tile_count(h, T, ov), ntx = tile_count(w, T, ov);
    const int th = T < h ? T : h, tw = T < w ? T : w, oh = th * f, ow = tw * f;
    latup_arena *a = &e->arena;
    float *ztile = latup_arena_take3(a, (size_t)zc, (size_t)th, (size_t)tw, "latent tile");
    float *otile = latup_arena_take3(a, (size_t)Co, (size_t)oh, (size_t)ow, "decoded tile");
    float *wsum = latup_arena_take3(a, (size_t)H, (size_t)W, 1, "tile blend weights [H,W]");
    if (live(e)) {
        memset(out, 0, (size_t)Co * H * W * sizeof(float));
        memset(wsum, 0, (size_t)H * W * sizeof(float));
    }
    for (int ty = 0; ty < nty; ty++)
        for (int tx = 0; tx < ntx; tx++) {
            const int y0 = tile_origin(ty, h, T, ov), x0 = tile_origin(tx, w, T, ov);
            if (live(e))
                for (int ch = 0; ch < zc; ch++)
                    for (int y = 0; y < th; y++)
                        memcpy(ztile + ((size_t)ch * th + y) * tw, z + ((size_t)ch * h + y0 + y) * w + x0,
                               (size_t)tw * sizeof(float));
            snprintf(e->prefix, sizeof e->prefix, "tile_%d_%d.", ty, tx);
            decode_one(e, v, ztile, th, tw, otile);
            if (live(e)) e->st = latup_arena_check(a); /* after every tile */
            if (!live(e)) continue;
            const int top = ty > 0 ? ov * f : 0, bot = ty < nty - 1 ? ov * f : 0;
            const int lft = tx > 0 ? ov * f : 0, rgt = tx < ntx - 1 ? ov * f : 0;
            for (int y = 0; y < oh; y++) {
                const float wy = ramp(y, oh, top, bot);
                for (int x = 0; x < ow; x++) {
                    const float wgt = wy * ramp(x, ow, lft, rgt);
                    const size_t o = (size_t)(y0 * f + y) * W + ((size_t)x0 * f + x);
                    wsum[o] += wgt;
                    for (int ch = 0; ch < Co; ch++)
                        out[(size_t)ch * H * W + o] += wgt * otile[((size_t)ch * oh + y) * ow + x];
                }
            }
            if (e->opts && e->opts->progress)
                fprintf(stderr, "\rdecoding: tile %d/%d", ty * ntx + tx + 1, nty * ntx), fflush(stderr);
        }
    e->prefix[0] = '\0';
    if (live(e))
        for (int ch = 0; ch < Co; ch++)
            for (size_t i = 0; i < (size_t)H * W; i++) out[(size_t)ch * H * W + i] /= wsum[i];
}

/* One decode of z [zc,h,w] into out: exact (T == 0) or tiled. The same code counts and runs. */
static void decode(vexec *e, const latup_vae *v, const float *z, int h, int w, float *out, int T, int ov) {
    if (T > 0)
        decode_tiled(e, v, z, h, w, out, T, ov);
    else
        decode_one(e, v, z, h, w, out);
}

/* ---- plans ------------------------------------------------------------------------------------- */

/* The counting pass of one decode. */
static latup_status count_pass(vexec *e, const latup_vae *v, int h, int w, int T, int ov) {
    latup_arena_begin_count(&e->arena);
    decode(e, v, NULL, h, w, NULL, T, ov);
    return e->arena.st;
}

static latup_status check_size(const latup_vae *v, int h, int w) {
    if (h < 1 || w < 1 || h > 8192 || w > 8192)
        return latup_fail(LATUP_E_INPUT, "latent size %dx%d out of range (1..8192)", h, w);
    /* the kernels index a map's pixels with int */
    const int64_t f = up_factor(&v->cfg);
    if ((int64_t)h * f * w * f > INT32_MAX)
        return latup_fail(LATUP_E_INPUT, "latent %dx%d decodes to %lldx%lld, over 2^31 pixels", h, w,
                          (long long)(h * f), (long long)(w * f));
    return LATUP_OK;
}

static void fill_plan(const vexec *e, const latup_vae *v, int h, int w, latup_vae_plan *p) {
    const int64_t f = up_factor(&v->cfg);
    memset(p, 0, sizeof *p);
    p->h = h, p->w = w;
    latup_arena_plan(&e->arena, &p->mem);
    p->mem.weights = (size_t)v->cfg.n_params * sizeof(float);
    p->mem.output = (size_t)v->cfg.out_channels * (size_t)(h * f) * (size_t)(w * f) * sizeof(float);
}

/* The arena of one decode (exact, T == 0, or in tiles of T), counted into *p. */
static latup_status count_arena(const latup_vae *v, int h, int w, int T, int ov, const latup_decode_opts *opts,
                                latup_vae_plan *p) {
    vexec e;
    exec_init(&e, opts);
    TRY(count_pass(&e, v, h, w, T, ov));
    fill_plan(&e, v, h, w, p);
    if (T > 0) p->h = T < h ? T : h, p->w = T < w ? T : w;
    return LATUP_OK;
}

/* A size in the unit that fits it: "3.02 GiB", "716.4 MiB", "12.0 KiB", "512 bytes". */
typedef struct {
    char s[24];
} size_text;
static size_text sz(size_t bytes) {
    size_text t;
    const double b = (double)bytes;
    if (b >= 1073741824.0) snprintf(t.s, sizeof t.s, "%.2f GiB", b / 1073741824.0);
    else if (b >= 1048576.0) snprintf(t.s, sizeof t.s, "%.1f MiB", b / 1048576.0);
    else if (b >= 1024.0) snprintf(t.s, sizeof t.s, "%.1f KiB", b / 1024.0);
    else snprintf(t.s, sizeof t.s, "%zu bytes", bytes);
    return t;
}

/* Everything the process holds while decoding, but the decode's arena. */
static size_t others_of(const latup_call_memory *base) {
    return base->process + base->weights + base->held + base->input + base->upscaled + base->image;
}

/* Exact, or the tiles asked for, or the largest tile (a multiple of MIN_TILE latent pixels) whose
 * decode keeps the whole process within opts->max_memory: base holds everything else the process
 * holds at the decode (sizes never overflow: the caller summed them with checks). */
static latup_status plan_decode(const latup_vae *v, int h, int w, const latup_decode_opts *opts,
                                const latup_call_memory *base, latup_decode_plan *dp) {
    memset(dp, 0, sizeof *dp);
    TRY(check_size(v, h, w));
    const size_t budget = opts ? opts->max_memory : 0, others = others_of(base);
    int T = opts && opts->tile > 0 ? opts->tile : 0;
    int ov = opts && opts->overlap > 0 ? opts->overlap : 0;
    if (T > 0 && (T < 4 || (ov > 0 && ov >= T)))
        return latup_fail(LATUP_E_USAGE, "tile %d with overlap %d: the tile must be at least 4 and larger than the "
                          "overlap", T, ov);
    if (T == 0) {
        TRY(count_arena(v, h, w, 0, 0, opts, &dp->plan));
        const size_t exact = others + dp->plan.mem.arena;
        if (budget == 0 || exact <= budget) {
            dp->peak = exact;
            return LATUP_OK;
        }
        /* the largest tile whose decode fits the budget */
        int found = 0;
        for (T = ((h > w ? h : w) - 1) / MIN_TILE * MIN_TILE; T >= MIN_TILE; T -= MIN_TILE) {
            TRY(count_arena(v, h, w, T, ov > 0 && ov < T ? ov : T / 4, opts, &dp->plan));
            if (others + dp->plan.mem.arena <= budget) {
                found = 1;
                break;
            }
        }
        if (!found) {
            latup_vae_plan sp;
            const int Tm = MIN_TILE < h || MIN_TILE < w ? MIN_TILE : 0;
            TRY(count_arena(v, h, w, Tm, Tm / 4, opts, &sp));
            return latup_fail(LATUP_E_NOMEM, "a memory budget of %s cannot be met: the smallest tiles (%dx%d latent "
                              "pixels) need %s (process %s, weights %s, inputs and outputs %s, tile arena %s); the "
                              "exact decode needs %s", sz(budget).s, sp.h, sp.w, sz(others + sp.mem.arena).s,
                              sz(base->process).s, sz(base->weights).s,
                              sz(base->held + base->input + base->upscaled + base->image).s, sz(sp.mem.arena).s,
                              sz(exact).s);
        }
        snprintf(dp->reason, sizeof dp->reason, "the exact decode needs %s, over the %s budget", sz(exact).s,
                 sz(budget).s);
    } else {
        if (T >= h && T >= w) { /* one tile covers the latent: the exact decode */
            TRY(count_arena(v, h, w, 0, 0, opts, &dp->plan));
            dp->peak = others + dp->plan.mem.arena;
            if (budget > 0 && dp->peak > budget)
                return latup_fail(LATUP_E_NOMEM, "the exact decode needs %s, over the %s memory budget (use smaller "
                                  "tiles)", sz(dp->peak).s, sz(budget).s);
            return LATUP_OK;
        }
        snprintf(dp->reason, sizeof dp->reason, "tiles of %d latent pixels were asked for", T);
    }
    if (ov <= 0 || ov >= T) ov = T / 4;
    TRY(count_arena(v, h, w, T, ov, opts, &dp->plan));
    const size_t peak = others + dp->plan.mem.arena;
    if (budget > 0 && peak > budget)
        return latup_fail(LATUP_E_NOMEM, "tiles of %d latent pixels need %s, over the %s memory budget (use "
                          "smaller tiles)", T, sz(peak).s, sz(budget).s);
    dp->tiled = 1, dp->tile = T, dp->overlap = ov, dp->peak = peak;
    return LATUP_OK;
}

/* ---- a prepared decode: planned once, then run ---------------------------------------------------------- */

struct latup_vae_exec {
    vexec e;               /* counted for the chosen decode (exact or tiles) */
    const latup_vae *v;
    int h, w, T, ov;
};

latup_status latup_vae_exec_prepare(const latup_vae *v, int h, int w, const latup_decode_opts *opts,
                                    const latup_call_memory *base, latup_vae_exec **out, latup_decode_plan *dp) {
    *out = NULL;
    TRY(plan_decode(v, h, w, opts, base, dp));
    latup_vae_exec *x = latup_calloc(1, sizeof *x, "decode plan");
    if (!x) return LATUP_E_NOMEM;
    x->v = v, x->h = h, x->w = w;
    x->T = dp->tiled ? dp->tile : 0, x->ov = dp->tiled ? dp->overlap : 0;
    exec_init(&x->e, opts);
    /* the search above counted several candidates; this counts the chosen one into the exec */
    latup_status st = count_pass(&x->e, v, h, w, x->T, x->ov);
    if (st != LATUP_OK) {
        free(x);
        return st;
    }
    *out = x;
    return LATUP_OK;
}

void latup_vae_exec_free(latup_vae_exec *x) {
    if (!x) return;
    latup_arena_free(&x->e.arena);
    free(x);
}

latup_status latup_vae_exec_run(latup_vae_exec *x, const float *z, int64_t B, float *out) {
    vexec *e = &x->e;
    const latup_vae_config *c = &x->v->cfg;
    const int h = x->h, w = x->w, f = up_factor(c);
    memset(e->tm, 0, sizeof e->tm);
    e->st = LATUP_OK;
    e->progress_done = 0;
    e->progress_total = x->T ? 0 : (int)B * c->n_levels;
    latup_status st = latup_arena_begin_run(&e->arena, "VAE arena");
    const size_t zsz = (size_t)c->z_channels * h * w, osz = (size_t)c->out_channels * h * f * w * f;
    for (int64_t b = 0; b < B && st == LATUP_OK; b++) {
        e->b = (int)b;
        latup_arena_rewind(&e->arena); /* every image replays the counted takes */
        decode(e, x->v, z + b * zsz, h, w, out + b * osz, x->T, x->ov);
        st = e->st != LATUP_OK ? e->st : latup_arena_check(&e->arena);
    }
    latup_arena_free(&e->arena);
    if (e->opts && e->opts->progress) fprintf(stderr, "\n");
    if (st == LATUP_OK && e->opts && e->opts->verbose) {
        fprintf(stderr, "VAE timings (batch %lld, %d threads): conv_in+mid %.3f s", (long long)B, e->nthreads, e->tm[0]);
        for (int i = 0; i < c->n_levels; i++) fprintf(stderr, ", up.%d %.3f s", c->n_levels - 1 - i, e->tm[1 + i]);
        fprintf(stderr, ", out %.3f s\n", e->tm[1 + c->n_levels]);
    }
    return st;
}

/* ---- plans: latup_vae_plan_decode() and latup_vae_decode() are a prepared call (src/api/call.c) ---------- */

latup_status latup_vae_plan_memory(const latup_vae *v, int h, int w, latup_vae_plan *p) {
    memset(p, 0, sizeof *p);
    TRY(check_size(v, h, w));
    return count_arena(v, h, w, 0, 0, NULL, p);
}

void latup_vae_plan_print(const latup_vae_plan *p, FILE *f) {
    char title[96];
    snprintf(title, sizeof title, "VAE memory plan: latent %dx%d", p->h, p->w);
    latup_mem_plan_print(&p->mem, title, f);
}
