/* vae_blocks.c — what the VAE's decoder (vae.c) and encoder (vae_enc.c) passes share: the
 * ResnetBlock, the mid-block attention, and the tiled pass with its tiling ops (vae_blocks.h). */
#include "model/dump_names.h"
#include "model/tiling.h"
#include "model/vae_blocks.h"

#include <stdio.h>
#include <string.h>

#define ATTN_BLOCK 256     /* query and key block of the mid-block attention */

/* ---- the forward pass -----------------------------------------------------------------------------
 * Every op is an lx_* call (model/exec.h): it computes in the real pass only, and the counting
 * pass that makes the plan runs the same lines. Activations rotate through the exec's three slots
 * (lx_pick); scratch (conv bands, GroupNorm statistics, attention blocks) is taken from the
 * arena's stack by the op that uses it. */

/* p + off, and NULL in the counting pass (no memory behind the slots) */
static float *at(float *p, size_t off) { return p ? p + off : NULL; }

/* A 1x1 conv on token-major [N, cin] input: a Linear. */
static latup_linear as_linear(const latup_conv *c) { return (latup_linear){c->w, c->b, c->cin, c->cout}; }

/* ResnetBlock: y = conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))) + shortcut(x). x in slot *hi;
 * the result's slot goes back in *hi. */
void vae_resnet_forward(lx_exec *e, const resnet *r, int *hi, int h, int w, const char *name) {
    const int HW = h * w;
    const float *x = e->buf[*hi];
    char nm[128];
    snprintf(nm, sizeof nm, DUMP_NAMES[DN_RES_NORM1], name);
    if (!strcmp(name, DUMP_NAMES[DN_MID_BLOCK_1])) /* the golden files hold norm1 (before SiLU) of the first resnet */
        lx_dump_groupnorm(e, nm, x, &r->norm1, GN_GROUPS, r->cin, h, w, 0);
    const int t1 = lx_pick(e, (size_t)r->cout * HW, *hi, -1);
    const size_t mark = latup_arena_mark(&e->arena);
    conv_input_op op = lx_groupnorm_op(e, &r->norm1, x, r->cin, HW, GN_GROUPS, 1);
    snprintf(nm, sizeof nm, DUMP_NAMES[DN_RES_CONV1], name);
    lx_conv(e, e->buf[t1], x, &r->conv1, h, w, &op, nm);              /* t1 = conv1(SiLU(norm1(x))) */
    latup_arena_release(&e->arena, mark);
    lx_dump(e, nm, e->buf[t1], 3, r->cout, h, w);
    const int t2 = lx_pick(e, (size_t)r->cout * HW, *hi, t1);
    op = lx_groupnorm_op(e, &r->norm2, e->buf[t1], r->cout, HW, GN_GROUPS, 1);
    snprintf(nm, sizeof nm, "%s.conv2", name);
    lx_conv(e, e->buf[t2], e->buf[t1], &r->conv2, h, w, &op, nm);     /* t2 = conv2(SiLU(norm2(t1))) */
    latup_arena_release(&e->arena, mark);
    if (r->has_shortcut) {
        conv_input_op acc = {.accumulate = 1}; /* y += nin_shortcut(x): one sgemm, beta = 1 */
        snprintf(nm, sizeof nm, "%s.nin_shortcut", name);
        lx_conv(e, e->buf[t2], x, &r->nin_shortcut, h, w, &acc, nm);  /* t2 += nin_shortcut(x) */
    } else {
        lx_add(e, e->buf[t2], x, (size_t)r->cout * HW);               /* t2 += x */
    }
    *hi = t2;
    lx_dump(e, name, e->buf[t2], 3, r->cout, h, w);
}

/* AttnBlock: one head over all h*w positions, blocked with an online softmax. Its token-major
 * buffers live in the two activation slots the input does not hold (at the mid block they are a
 * small part of slots sized for the full-resolution maps): slot t holds q, k, v and the
 * normalised tokens, slot y the normalised input, then the result. */
void vae_attn_forward(lx_exec *e, const attn_block *a, int *hi, int h, int w, const char *pre) {
    const int C = a->norm.dim, N = h * w;
    char nm[6][64]; /* the dump names under pre */
    static const int dn[6] = {DN_ATTN_NORM, DN_ATTN_Q, DN_ATTN_K, DN_ATTN_V, DN_ATTN_ATTN, DN_ATTN};
    for (int i = 0; i < 6; i++) snprintf(nm[i], sizeof nm[i], "%s%s", pre, DUMP_NAMES[dn[i]]);
    const size_t NC = (size_t)N * C;
    const int t = lx_pick(e, 4 * NC, *hi, -1);
    const int y = lx_pick(e, NC, *hi, t);
    const float *x = e->buf[*hi];
    float *q = e->buf[t], *k = at(q, NC), *v = at(q, 2 * NC), *nt = at(q, 3 * NC); /* [N, C] each */
    float *o = nt;        /* the attention output, once q, k, v are made from nt */
    float *proj = q;      /* proj_out's output, once the attention has read q */
    const latup_linear lq = as_linear(&a->q), lk = as_linear(&a->k), lv = as_linear(&a->v);
    const latup_linear lp = as_linear(&a->proj_out);                  /* the 1x1 convs as Linears */
    lx_groupnorm(e, e->buf[y], x, &a->norm, C, N, GN_GROUPS);         /* y  [C, h, w] */
    lx_dump(e, nm[0], e->buf[y], 3, C, h, w);
    lx_chw_to_hwc(e, nt, e->buf[y], C, N);                            /* nt [N, C] */
    lx_linear(e, q, nt, &lq, N);                                      /* q, k, v [N, C] */
    lx_linear(e, k, nt, &lk, N);
    lx_linear(e, v, nt, &lv, N);
    lx_dump_tokens(e, nm[1], q, C, h, w);
    lx_dump_tokens(e, nm[2], k, C, h, w);
    lx_dump_tokens(e, nm[3], v, C, h, w);
    lx_attention(e, o, q, k, v, N, C, ATTN_BLOCK);                    /* o = softmax(q k^T / sqrt C) v */
    lx_dump_tokens(e, nm[4], o, C, h, w);
    lx_linear(e, proj, o, &lp, N);                                    /* proj [N, C] */
    lx_hwc_to_chw(e, e->buf[y], proj, C, N);                          /* y  [C, h, w] */
    lx_add(e, e->buf[y], x, NC);                                      /* residual */
    *hi = y;
    lx_dump(e, nm[5], e->buf[y], 3, C, h, w);
}

/* ---- tiled decoding ---------------------------------------------------------------------------- */


/* The tile geometry (count, origins, overlaps, ramps) is src/model/tiling.h: the GPU's too. */

/* The tiling's ops (real pass only, like the lx_* ones). ztile [zc, th, tw] = z [zc, h, w] from
 * (y0, x0). */
void vae_copy_tile(lx_exec *e, float *ztile, const float *z, int zc, int h, int w, int y0, int x0, int th,
                      int tw) {
    if (!lx_live(e)) return;
    for (int ch = 0; ch < zc; ch++)
        for (int y = 0; y < th; y++)
            memcpy(ztile + ((size_t)ch * th + y) * tw, z + ((size_t)ch * h + y0 + y) * w + x0,
                   (size_t)tw * sizeof(float));
}

/* out [Co, H, W] += wgt * otile [Co, oh, ow] at image pixel (y0*f, x0*f), wsum [H, W] += wgt: wgt
 * the product of the ramps over the top/bot/lft/rgt overlaps (0: no neighbour on that side). */
void vae_blend_tile(lx_exec *e, float *out, float *wsum, const float *otile, int Co, int H, int W, int oh, int ow,
                       int y0, int x0, int f, int top, int bot, int lft, int rgt) {
    if (!lx_live(e)) return; /* the counting pass and a failed one blend nothing */
    for (int y = 0; y < oh; y++) {
        const float wy = latup_tile_ramp(y, oh, top, bot);
        for (int x = 0; x < ow; x++) {
            const float wgt = wy * latup_tile_ramp(x, ow, lft, rgt);
            const size_t o = (size_t)(y0 * f + y) * W + ((size_t)x0 * f + x);
            wsum[o] += wgt;
            for (int ch = 0; ch < Co; ch++)
                out[(size_t)ch * H * W + o] += wgt * otile[((size_t)ch * oh + y) * ow + x];
        }
    }
}

/* out [Co, HW] /= wsum [HW] */
void vae_divide_weights(lx_exec *e, float *out, const float *wsum, int Co, size_t HW) {
    if (!lx_live(e)) return;
    for (int ch = 0; ch < Co; ch++)
        for (size_t i = 0; i < HW; i++) out[(size_t)ch * HW + i] /= wsum[i];
}

void vae_tiled(lx_exec *e, const latup_vae *v, vae_tile_fn one, const float *in, int Cin, int Hi, int Wi, int fi,
               float *out, int Co, int fo, int h, int w, int T, int ov) {
    const int nty = latup_tile_count(h, T, ov), ntx = latup_tile_count(w, T, ov);
    const int th = latup_tile_size(h, T), tw = latup_tile_size(w, T), oh = th * fo, ow = tw * fo;
    const int Ho = h * fo, Wo = w * fo;
    latup_arena *a = &e->arena;
    float *itile = latup_arena_take3(a, (size_t)Cin, (size_t)th * fi, (size_t)tw * fi, "tile input");
    float *otile = latup_arena_take3(a, (size_t)Co, (size_t)oh, (size_t)ow, "tile output");
    float *wsum = latup_arena_take3(a, (size_t)Ho, (size_t)Wo, 1, "tile blend weights");
    lx_zero(e, out, (size_t)Co * Ho * Wo);
    lx_zero(e, wsum, (size_t)Ho * Wo);
    for (int ty = 0; ty < nty; ty++)
        for (int tx = 0; tx < ntx; tx++) {
            const int y0 = latup_tile_origin(ty, h, T, ov), x0 = latup_tile_origin(tx, w, T, ov);
            vae_copy_tile(e, itile, in, Cin, Hi, Wi, y0 * fi, x0 * fi, th * fi, tw * fi); /* [Cin, th*fi, tw*fi] */
            snprintf(e->prefix, sizeof e->prefix, "tile_%d_%d.", ty, tx);
            one(e, v, itile, th * fi, tw * fi, otile);
            lx_check_arena(e); /* after every tile */
            const int top = latup_tile_overlap_lo(ty, ov * fo), bot = latup_tile_overlap_hi(ty, nty, ov * fo);
            const int lft = latup_tile_overlap_lo(tx, ov * fo), rgt = latup_tile_overlap_hi(tx, ntx, ov * fo);
            vae_blend_tile(e, out, wsum, otile, Co, Ho, Wo, oh, ow, y0, x0, fo, top, bot, lft, rgt);
            lx_stage(e, V_TILE);
        }
    e->prefix[0] = '\0';
    vae_divide_weights(e, out, wsum, Co, (size_t)Ho * Wo);                      /* out [Co, Ho, Wo] */
}
