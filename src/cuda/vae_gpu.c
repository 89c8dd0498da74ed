/* vae_gpu.c — the AutoencoderKL decoder on the GPU (docs/spec/vae.md), step for step the
 * CPU's decode_one (src/model/vae.c) with the same dump names: GroupNorm (+ SiLU) and nearest x2
 * upsampling applied by each 3x3 conv as it unfolds its input, the mid-block attention over all
 * positions in blocks of query rows, and tiled decoding blended with linear ramps. Activations
 * rotate through three arena slots, each as large as its largest use in the counting pass. */
#include "cuda/gpu.h"
#include "model/device.h"
#include "model/dump_names.h"
#include "model/tiling.h"
#include "model/vae_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the device copy of the model ---------------------------------------------------------------- */
typedef struct {
    struct latup_vae v;   /* layer structs; every weight pointer is a device pointer */
    gpu_uploader up;
} gpu_vae;

static void put_resnet(gpu_uploader *u, resnet *r) {
    gpu_put_norm(u, &r->norm1);
    gpu_put_conv(u, &r->conv1);
    gpu_put_norm(u, &r->norm2);
    gpu_put_conv(u, &r->conv2);
    if (r->has_shortcut) gpu_put_conv(u, &r->nin_shortcut);
}

static void put_model(gpu_uploader *u, struct latup_vae *v) {
    if (v->cfg.has_post_quant_conv) gpu_put_conv(u, &v->post_quant_conv);
    gpu_put_conv(u, &v->conv_in);
    put_resnet(u, &v->mid_block_1);
    gpu_put_norm(u, &v->mid_attn.norm);
    gpu_put_conv(u, &v->mid_attn.q);
    gpu_put_conv(u, &v->mid_attn.k);
    gpu_put_conv(u, &v->mid_attn.v);
    gpu_put_conv(u, &v->mid_attn.proj_out);
    put_resnet(u, &v->mid_block_2);
    for (int L = 0; L < v->cfg.n_levels; L++) {
        for (int M = 0; M < v->up[L].n_blocks; M++) put_resnet(u, &v->up[L].blocks[M]);
        if (v->up[L].has_upsample) gpu_put_conv(u, &v->up[L].upsample);
    }
    gpu_put_norm(u, &v->norm_out);
    gpu_put_conv(u, &v->conv_out);
}

void latup_gpu_vae_release(latup_vae *v) {
    gpu_vae *d = v ? v->gpu : NULL;
    if (!d) return;
    if (d->up.dev) cudaFree(d->up.dev);
    free(d);
    v->gpu = NULL;
}

static latup_status device_model(const latup_vae *v, gpu_vae **out) {
    if (v->gpu) {
        *out = v->gpu;
        return LATUP_OK;
    }
    gpu_vae *d = latup_calloc(1, sizeof *d, "GPU VAE");
    if (!d) return LATUP_E_NOMEM;
    d->v = *v;
    memset(&d->v.weights, 0, sizeof d->v.weights); /* owned by v */
    d->v.gpu = NULL;
    put_model(&d->up, &d->v);                       /* count */
    latup_status st = gpu_uploader_alloc(&d->up, "VAE weights");
    if (st == LATUP_OK) put_model(&d->up, &d->v);   /* copy and repoint */
    if (st == LATUP_OK) st = d->up.st;
    ((latup_vae *)v)->gpu = d; /* a cache beside the model; released by latup_vae_free() */
    if (st != LATUP_OK) {
        latup_gpu_vae_release((latup_vae *)v);
        return st;
    }
    *out = d;
    return LATUP_OK;
}

/* ---- the decoder ------------------------------------------------------------------------------------ */
static const char *const SLOT_NAMES[3] = {"activations 0", "activations 1", "activations 2"};

typedef struct {
    int i;     /* slot */
    float *p;
} act;

/* Slot `i` now holding `floats`. */
static act slot(gpu_ctx *g, int i, size_t floats) {
    act r = {i, latup_arena_slot(&g->a, i, floats, SLOT_NAMES[i])};
    return r;
}

/* The first slot that is neither a nor b. */
static int free_slot(int a, int b) {
    for (int i = 0; i < 3; i++)
        if (i != a && i != b) return i;
    return -1;
}

/* GroupNorm (+ SiLU) as the next conv's input transform; its statistics live in mean/scale [C]. */
static lcu_conv_in norm_op(gpu_ctx *g, float *mean, float *scale, const latup_norm *n, const float *x, int C,
                           int64_t HW, int silu) {
    gpu_groupnorm_stats(g, mean, scale, x, n, C, HW, GN_GROUPS);
    lcu_conv_in op = {0, mean, scale, n->b, silu};
    return op;
}

/* ResnetBlock: y = conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))) + shortcut(x); x in *x, result too. */
static void resnet_forward(gpu_ctx *g, const resnet *r, act *x, int h, int w, const char *name) {
    const int64_t HW = (int64_t)h * w;
    char nm[96];
    const size_t mark = latup_arena_mark(&g->a);
    float *mean = latup_arena_take(&g->a, (size_t)(r->cin > r->cout ? r->cin : r->cout), "GroupNorm mean");
    float *scale = latup_arena_take(&g->a, (size_t)(r->cin > r->cout ? r->cin : r->cout), "GroupNorm scale");
    act t1 = slot(g, free_slot(x->i, -1), (size_t)(r->cin > r->cout ? r->cin : r->cout) * HW);
    lcu_conv_in op = norm_op(g, mean, scale, &r->norm1, x->p, r->cin, HW, 1);
    if (g->dump && !strcmp(name, DUMP_NAMES[DN_MID_BLOCK_1])) {
        /* the golden files hold norm1 (before SiLU) of the first resnet: materialise it */
        GPU_RUN(g, lcu_groupnorm_apply(t1.p, x->p, mean, scale, r->norm1.b, r->cin, HW, 0), "GroupNorm");
        snprintf(nm, sizeof nm, DUMP_NAMES[DN_RES_NORM1], name);
        gpu_dump(g, nm, t1.p, 3, r->cin, h, w);
    }
    gpu_conv(g, t1.p, x->p, &r->conv1, h, w, &op, 0);
    snprintf(nm, sizeof nm, DUMP_NAMES[DN_RES_CONV1], name);
    gpu_dump(g, nm, t1.p, 3, r->cout, h, w);
    act t2 = slot(g, free_slot(x->i, t1.i), (size_t)r->cout * HW);
    op = norm_op(g, mean, scale, &r->norm2, t1.p, r->cout, HW, 1);
    gpu_conv(g, t2.p, t1.p, &r->conv2, h, w, &op, 0);
    if (r->has_shortcut)
        gpu_conv(g, t2.p, x->p, &r->nin_shortcut, h, w, NULL, 1); /* y += nin_shortcut(x), bias included */
    else
        GPU_RUN(g, lcu_add(t2.p, x->p, (int64_t)r->cout * HW), "residual add");
    latup_arena_release(&g->a, mark);
    *x = t2;
    gpu_dump(g, name, x->p, 3, r->cout, h, w);
}

/* AttnBlock: one head over all h*w positions, channel-major q, k, v [C, N]. */
static void attn_forward(gpu_ctx *g, const attn_block *ab, act *x, int h, int w) {
    const int C = ab->norm.dim;
    const int64_t N = (int64_t)h * w;
    const size_t NC = (size_t)N * C, mark = latup_arena_mark(&g->a);
    float *mean = latup_arena_take(&g->a, (size_t)C, "GroupNorm mean");
    float *scale = latup_arena_take(&g->a, (size_t)C, "GroupNorm scale");
    float *q = latup_arena_take(&g->a, NC, "attention q [C, N]");
    float *k = latup_arena_take(&g->a, NC, "attention k [C, N]");
    float *v = latup_arena_take(&g->a, NC, "attention v [C, N]");
    float *o = latup_arena_take(&g->a, NC, "attention out [C, N]");
    act t = slot(g, free_slot(x->i, -1), NC);
    gpu_groupnorm_stats(g, mean, scale, x->p, &ab->norm, C, N, GN_GROUPS);
    GPU_RUN(g, lcu_groupnorm_apply(t.p, x->p, mean, scale, ab->norm.b, C, N, 0), "GroupNorm");
    gpu_dump(g, DUMP_NAMES[DN_ATTN_NORM], t.p, 3, C, h, w);
    gpu_conv(g, q, t.p, &ab->q, h, w, NULL, 0); /* the projections as 1x1 convs on [C, N] */
    gpu_conv(g, k, t.p, &ab->k, h, w, NULL, 0);
    gpu_conv(g, v, t.p, &ab->v, h, w, NULL, 0);
    gpu_dump(g, DUMP_NAMES[DN_ATTN_Q], q, 3, C, h, w);
    gpu_dump(g, DUMP_NAMES[DN_ATTN_K], k, 3, C, h, w);
    gpu_dump(g, DUMP_NAMES[DN_ATTN_V], v, 3, C, h, w);
    gpu_attention_cn(g, o, q, k, v, C, N);
    gpu_dump(g, DUMP_NAMES[DN_ATTN_ATTN], o, 3, C, h, w);
    act y = slot(g, free_slot(x->i, t.i), NC);
    gpu_conv(g, y.p, o, &ab->proj_out, h, w, NULL, 0);
    GPU_RUN(g, lcu_add(y.p, x->p, (int64_t)NC), "residual add");
    latup_arena_release(&g->a, mark);
    *x = y;
    gpu_dump(g, DUMP_NAMES[DN_ATTN], x->p, 3, C, h, w);
}

/* The decoder on one latent zb [zc, h, w] (host; NULL while counting) -> the image [3, 8h, 8w] in
 * the take `image` (device), returned. */
static float *decode_one(gpu_ctx *g, const latup_vae *v, const float *zb, int h, int w) {
    const latup_vae_config *c = &v->cfg;
    const int top = c->channels[c->n_levels - 1], f = latup_vae_factor(c);
    char name[64];
    float *z = latup_arena_take(&g->a, (size_t)c->z_channels * h * w, "latent");
    float *img = latup_arena_take(&g->a, (size_t)c->out_channels * h * f * w * f, "image");
    gpu_upload(g, z, zb, (size_t)c->z_channels * h * w, "copying the latent to the GPU");
    const float *zin = z;
    act x = {-1, NULL};
    if (c->has_post_quant_conv) {                                             /* [zc, h, w] */
        x = slot(g, 0, (size_t)c->z_channels * h * w);
        gpu_conv(g, x.p, z, &v->post_quant_conv, h, w, NULL, 0);
        gpu_dump(g, DUMP_NAMES[DN_POST_QUANT], x.p, 3, c->z_channels, h, w);
        zin = x.p;
    }
    act o = slot(g, free_slot(x.i, -1), (size_t)top * h * w);
    gpu_conv(g, o.p, zin, &v->conv_in, h, w, NULL, 0);                       /* [C, h, w] */
    x = o;
    gpu_dump(g, DUMP_NAMES[DN_CONV_IN], x.p, 3, top, h, w);
    resnet_forward(g, &v->mid_block_1, &x, h, w, DUMP_NAMES[DN_MID_BLOCK_1]);
    attn_forward(g, &v->mid_attn, &x, h, w);
    resnet_forward(g, &v->mid_block_2, &x, h, w, DUMP_NAMES[DN_MID_BLOCK_2]);
    gpu_step(g);
    int hh = h, ww = w, C = top;
    for (int L = c->n_levels - 1; L >= 0; L--) {
        const up_level *u = &v->up[L];
        for (int M = 0; M < u->n_blocks; M++) {
            snprintf(name, sizeof name, DUMP_NAMES[DN_UP_BLOCK], L, M);
            resnet_forward(g, &u->blocks[M], &x, hh, ww, name);
            C = u->blocks[M].cout;
        }
        if (u->has_upsample) {                                                /* nearest x2 + 3x3, fused */
            act y = slot(g, free_slot(x.i, -1), (size_t)C * 4 * hh * ww);
            const lcu_conv_in up = {1, NULL, NULL, NULL, 0};
            gpu_conv(g, y.p, x.p, &u->upsample, 2 * hh, 2 * ww, &up, 0);
            x = y, hh *= 2, ww *= 2;
            snprintf(name, sizeof name, DUMP_NAMES[DN_UPSAMPLE], L);
            gpu_dump(g, name, x.p, 3, C, hh, ww);
        }
        gpu_step(g);
    }
    const int64_t HW = (int64_t)hh * ww;
    const size_t mark = latup_arena_mark(&g->a);
    float *mean = latup_arena_take(&g->a, (size_t)C, "GroupNorm mean");
    float *scale = latup_arena_take(&g->a, (size_t)C, "GroupNorm scale");
    lcu_conv_in op = norm_op(g, mean, scale, &v->norm_out, x.p, C, HW, 1);
    if (g->dump) { /* norm_out is fused into conv_out: materialise it to dump */
        act t = slot(g, free_slot(x.i, -1), (size_t)C * HW);
        GPU_RUN(g, lcu_groupnorm_apply(t.p, x.p, mean, scale, v->norm_out.b, C, HW, 1), "GroupNorm + SiLU");
        gpu_dump(g, DUMP_NAMES[DN_NORM_OUT], t.p, 3, C, hh, ww);
    }
    gpu_conv(g, img, x.p, &v->conv_out, hh, ww, &op, 0);
    latup_arena_release(&g->a, mark);
    gpu_dump(g, DUMP_NAMES[DN_IMAGE], img, 3, c->out_channels, hh, ww);
    gpu_step(g);
    return img;
}

/* ---- whole images and tiles ----------------------------------------------------------------------------- */
typedef struct {
    int h, w, f, tiled, tile, overlap;
    int64_t B;
} vae_call;

/* One exact decode per batch element, or tiles: the same code counts (zb, out NULL) and runs. */
static void decode_image(gpu_ctx *g, const latup_vae *v, const vae_call *p, const float *zb, float *out,
                         float *ztile) {
    const latup_vae_config *c = &v->cfg;
    const int f = p->f, Co = c->out_channels, H = p->h * f, W = p->w * f;
    if (!p->tiled) {
        float *img = decode_one(g, v, zb, p->h, p->w);
        gpu_download(g, out, img, (size_t)Co * H * W, "copying the image from the GPU");
        return;
    }
    const int T = p->tile, ov = p->overlap, th = latup_tile_size(p->h, T), tw = latup_tile_size(p->w, T);
    const int nty = latup_tile_count(p->h, T, ov), ntx = latup_tile_count(p->w, T, ov), ovf = ov * f;
    float *full = latup_arena_take(&g->a, (size_t)Co * H * W, "blended image");
    float *wsum = latup_arena_take(&g->a, (size_t)H * W, "blend weights");
    GPU_RUN(g, (int)cudaMemset(full, 0, (size_t)Co * H * W * sizeof(float)), "clearing the image");
    GPU_RUN(g, (int)cudaMemset(wsum, 0, (size_t)H * W * sizeof(float)), "clearing the blend weights");
    const size_t mark = latup_arena_mark(&g->a);
    for (int ty = 0; ty < nty; ty++)
        for (int tx = 0; tx < ntx; tx++) {
            const int y0 = latup_tile_origin(ty, p->h, T, ov), x0 = latup_tile_origin(tx, p->w, T, ov);
            if (gpu_live(g))
                for (int ch = 0; ch < c->z_channels; ch++)
                    for (int y = 0; y < th; y++)
                        memcpy(ztile + ((size_t)ch * th + y) * tw, zb + ((size_t)ch * p->h + y0 + y) * p->w + x0,
                               (size_t)tw * sizeof(float));
            const float *tile = decode_one(g, v, ztile, th, tw);
            GPU_RUN(g, lcu_blend_tile(full, wsum, tile, Co, th * f, tw * f, H, W, y0 * f, x0 * f,
                                      latup_tile_overlap_lo(ty, ovf), latup_tile_overlap_hi(ty, nty, ovf),
                                      latup_tile_overlap_lo(tx, ovf), latup_tile_overlap_hi(tx, ntx, ovf)),
                    "blending a tile");
            gpu_step(g);
            latup_arena_release(&g->a, mark);
        }
    GPU_RUN(g, lcu_blend_finish(full, wsum, Co, (int64_t)H * W), "normalising the blend");
    gpu_download(g, out, full, (size_t)Co * H * W, "copying the image from the GPU");
}

/* The counting pass of one decode (exact or tiled) at this size; bytes of its device arena. */
static latup_status count_decode(gpu_ctx *g, const latup_vae *v, const vae_call *p) {
    gpu_arena_count(g);
    decode_image(g, v, p, NULL, NULL, NULL);
    return g->a.st;
}

/* The call was checked and planned by src/api/call.c (the tiles too, by the policy the CPU runs):
 * z is valid and finite, img allocated. */
latup_status latup_gpu_vae_run(const latup_vae *v, const latup_tensor *z, latup_tensor *img, int tile, int overlap,
                               const latup_decode_opts *opts, latup_progress *progress) {
    const latup_vae_config *c = &v->cfg;
    const int off = z->ndim - 3;
    vae_call p;
    memset(&p, 0, sizeof p);
    p.B = off ? z->shape[0] : 1;
    p.h = (int)z->shape[off + 1], p.w = (int)z->shape[off + 2], p.f = latup_vae_factor(c);
    gpu_ctx g;
    TRY(gpu_begin(&g, opts ? opts->dump : NULL, opts ? opts->dump_user : NULL));
    g.progress = progress;
    gpu_vae *d = NULL;
    latup_status st = device_model(v, &d);
    p.tiled = tile > 0, p.tile = tile, p.overlap = overlap;
    if (p.tiled) g.dump = NULL; /* dumps belong to an exact decode, as on the CPU */
    float *ztile = NULL;
    if (st == LATUP_OK && p.tiled) {
        const int th = latup_tile_size(p.h, p.tile), tw = latup_tile_size(p.w, p.tile);
        ztile = latup_alloc_floats((size_t)c->z_channels * th * tw, "latent tile");
        if (!ztile) st = LATUP_E_NOMEM;
    }
    if (st == LATUP_OK) st = count_decode(&g, &d->v, &p);
    if (st == LATUP_OK) st = gpu_arena_alloc(&g, "VAE arena");
    const int verbose = opts && opts->verbose;
    if (st == LATUP_OK && verbose) {
        char title[128];
        if (p.tiled)
            snprintf(title, sizeof title, "GPU VAE memory plan: latent %dx%d, tiles of %d, overlap %d", p.h, p.w, p.tile,
                     p.overlap);
        else
            snprintf(title, sizeof title, "GPU VAE memory plan: latent %dx%d", p.h, p.w);
        gpu_arena_print(&g, title);
    }
    const size_t zsz = (size_t)c->z_channels * p.h * p.w, osz = (size_t)c->out_channels * p.h * p.f * p.w * p.f;
    const double t0 = latup_now();
    for (int64_t b = 0; b < p.B && st == LATUP_OK; b++) {
        latup_arena_rewind(&g.a);
        g.b = (int)b;
        decode_image(&g, &d->v, &p, z->data + b * zsz, img->data + b * osz, ztile);
        st = latup_arena_check(&g.a);
    }
    if (st == LATUP_OK && gpu_check(&g, (int)cudaDeviceSynchronize(), "decode")) st = g.a.st;
    if (st == LATUP_OK && verbose)
        fprintf(stderr, "GPU VAE decode (batch %lld%s): %.3f s\n", (long long)p.B, p.tiled ? ", tiled" : "",
                latup_now() - t0);
    gpu_end(&g);
    free(ztile);
    return st;
}
