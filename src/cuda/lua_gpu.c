/* lua_gpu.c — the LUA / SwinIR forward pass on the GPU, step for step the CPU's (src/model/lua.c,
 * docs/spec/lua.md steps 0-7) with the same dump names, run twice: counting the device
 * arena, then for real in one cudaMalloc of the counted size. The weights go to the device once
 * per model (a copy of its layer structs pointing into device memory, freed with the model). */
#include "cuda/gpu.h"
#include "model/device.h"
#include "model/dump_names.h"
#include "model/lua_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEAKY_SLOPE 0.01f /* nn.LeakyReLU default, as the CPU */

/* ---- the device copy of the model ------------------------------------------------------------------ */
typedef struct {
    struct latup_lua m;                 /* layer structs; every weight pointer is a device pointer */
    swin_block *blocks[LATUP_MAX_LAYERS];
    const float *mean;                  /* cfg.mean on the device (3-channel SwinIR) */
    gpu_uploader up;
} gpu_lua;

static void put_model(gpu_uploader *u, gpu_lua *d) {
    struct latup_lua *m = &d->m;
    gpu_put_conv(u, &m->conv_first);
    gpu_put_norm(u, &m->patch_norm);
    for (int i = 0; i < m->cfg.num_layers; i++) {
        for (int j = 0; j < m->layers[i].depth; j++) {
            swin_block *B = &m->layers[i].blocks[j];
            const int span = 2 * m->cfg.window_size - 1;
            gpu_put_norm(u, &B->norm1);
            gpu_put_linear(u, &B->qkv);
            gpu_put(u, &B->bias_table, (size_t)span * span * B->num_heads);
            gpu_put_linear(u, &B->proj);
            gpu_put_norm(u, &B->norm2);
            gpu_put_linear(u, &B->fc1);
            gpu_put_linear(u, &B->fc2);
        }
        gpu_put_conv(u, &m->layers[i].conv);
    }
    gpu_put_norm(u, &m->norm);
    gpu_put_conv(u, &m->conv_after_body);
    for (int s = 0; s < m->cfg.n_scales; s++) {
        head *h = &m->heads[s];
        if (h->has_before) gpu_put_conv(u, &h->conv_before);
        for (int k = 0; k < h->n_up; k++) gpu_put_conv(u, &h->up[k]);
        if (h->has_last) gpu_put_conv(u, &h->conv_last);
    }
    gpu_put(u, &d->mean, 3);
}

void latup_gpu_lua_release(latup_lua *m) {
    gpu_lua *d = m ? m->gpu : NULL;
    if (!d) return;
    if (d->up.dev) cudaFree(d->up.dev);
    for (int i = 0; i < LATUP_MAX_LAYERS; i++) free(d->blocks[i]);
    free(d);
    m->gpu = NULL;
}

/* The device copy, made on the first call (the caller holds the GPU lock). */
static latup_status device_model(const latup_lua *m, gpu_lua **out) {
    if (m->gpu) {
        *out = m->gpu;
        return LATUP_OK;
    }
    gpu_lua *d = latup_calloc(1, sizeof *d, "GPU model");
    if (!d) return LATUP_E_NOMEM;
    d->m = *m;
    memset(&d->m.weights, 0, sizeof d->m.weights); /* owned by m */
    d->m.gpu = NULL;
    d->mean = m->cfg.mean;
    latup_status st = LATUP_OK;
    for (int i = 0; i < m->cfg.num_layers && st == LATUP_OK; i++) {
        d->blocks[i] = latup_malloc((size_t)m->layers[i].depth * sizeof(swin_block), "GPU model blocks");
        if (!d->blocks[i]) {
            st = LATUP_E_NOMEM;
            break;
        }
        memcpy(d->blocks[i], m->layers[i].blocks, (size_t)m->layers[i].depth * sizeof(swin_block));
        for (int j = 0; j < m->layers[i].depth; j++) d->blocks[i][j].rel_bias = NULL; /* gathered in the softmax */
        d->m.layers[i].blocks = d->blocks[i];
    }
    if (st == LATUP_OK) {
        put_model(&d->up, d);                         /* count */
        st = gpu_uploader_alloc(&d->up, "LUA weights");
        if (st == LATUP_OK) put_model(&d->up, d);     /* copy and repoint */
        if (st == LATUP_OK) st = d->up.st;
    }
    ((latup_lua *)m)->gpu = d; /* a cache beside the model; released by latup_lua_free() */
    if (st != LATUP_OK) {
        latup_gpu_lua_release((latup_lua *)m);
        return st;
    }
    *out = d;
    return LATUP_OK;
}

/* ---- the forward pass ------------------------------------------------------------------------------- */
typedef struct {
    int H, W, Hp, Wp, S;
    int64_t B;
    const head *hd;       /* the requested head, in the device copy */
    const latup_run_opts *opts;
    double tm[5];         /* embed, RSTBs, body, head, crop (verbose) */
} lua_call;

static void swin_block_forward(gpu_ctx *g, const swin_block *B, const latup_lua_config *c, int Hp, int Wp, float *t,
                               float *u, float *win, float *qkv, float *ao, float *hid, int i, int j) {
    const int E = c->embed_dim, ws = c->window_size, N = ws * ws, L = Hp * Wp, nW = L / N;
    const int nH = B->num_heads, hd = E / nH;
    char name[96];
#define NAME(k) (snprintf(name, sizeof name, DUMP_NAMES[k], i, j), name)
    /* attention branch: LN, roll by -shift and partition, qkv, MSA, proj, back and roll, add */
    gpu_layernorm(g, u, t, &B->norm1, L);                                          /* u   [L, E]      */
    gpu_dump(g, NAME(DN_NORM1), u, 2, L, E, 0);
    GPU_RUN(g, lcu_window_partition(win, u, Hp, Wp, E, ws, B->shift), "window partition"); /* [nW, N, E] */
    gpu_linear(g, qkv, win, &B->qkv, L);                                           /* qkv [nW, N, 3E] */
    gpu_dump(g, NAME(DN_QKV), qkv, 3, nW, N, 3 * E);
    gpu_window_attention(g, ao, qkv, B->bias_table, nW, ws, nH, hd, B->shift, Hp, Wp); /* ao [nW, N, E] */
    gpu_dump(g, NAME(DN_ATTN_OUT), ao, 3, nW, N, E);
    gpu_linear(g, win, ao, &B->proj, L);                                           /* win [nW, N, E]  */
    gpu_dump(g, NAME(DN_ATTN_PROJ), win, 3, nW, N, E);
    GPU_RUN(g, lcu_window_reverse_add(t, win, Hp, Wp, E, ws, B->shift), "window reverse"); /* t += attention */
    gpu_dump(g, NAME(DN_ATTN_RES), t, 2, L, E, 0);
    /* MLP branch */
    gpu_layernorm(g, u, t, &B->norm2, L);
    gpu_dump(g, NAME(DN_NORM2), u, 2, L, E, 0);
    gpu_linear(g, hid, u, &B->fc1, L);                                             /* hid [L, hidden] */
    GPU_RUN(g, lcu_gelu(hid, (int64_t)L * c->mlp_hidden), "GELU");
    gpu_dump(g, NAME(DN_MLP_ACT), hid, 2, L, c->mlp_hidden, 0);
    gpu_linear(g, u, hid, &B->fc2, L);                                             /* u   [L, E]      */
    gpu_dump(g, NAME(DN_MLP_FC2), u, 2, L, E, 0);
    GPU_RUN(g, lcu_add(t, u, (int64_t)L * E), "residual add");                     /* t += mlp        */
    gpu_dump(g, NAME(DN_BLOCK), t, 2, L, E, 0);
#undef NAME
}

/* The head (spec step 6) from f [E, Hp, Wp] into a head slot; returns the [C, S*Hp, S*Wp] map. */
static float *head_forward(gpu_ctx *g, const head *h, const float *f, int Hp, int Wp) {
    char name[96];
    const float *in = f;
    float *x = NULL, *y = NULL;
    if (h->has_before) {
        const int F = h->conv_before.cout;
        x = latup_arena_slot(&g->a, 0, (size_t)F * Hp * Wp, "head map a");
        gpu_conv(g, x, f, &h->conv_before, Hp, Wp, NULL, 0);                    /* x [F, Hp, Wp] */
        GPU_RUN(g, lcu_leaky_relu(x, (int64_t)F * Hp * Wp, LEAKY_SLOPE), "LeakyReLU");
        gpu_dump(g, h->before_name, x, 3, F, Hp, Wp);
        in = x;
    }
    int hh = Hp, ww = Wp;
    for (int k = 0; k < h->n_up; k++) {
        const int r = h->r[k], cout = h->up[k].cout;
        y = latup_arena_slot(&g->a, 1, (size_t)cout * hh * ww, "head map b");
        gpu_conv(g, y, in, &h->up[k], hh, ww, NULL, 0);                            /* y [r*r*F, hh, ww] */
        snprintf(name, sizeof name, DUMP_NAMES[DN_HEAD_UP], h->up_name, 2 * k);
        gpu_dump(g, name, y, 3, cout, hh, ww);
        x = latup_arena_slot(&g->a, 0, (size_t)cout * hh * ww, "head map a");
        GPU_RUN(g, lcu_pixel_shuffle(x, y, cout / (r * r), hh, ww, r), "PixelShuffle"); /* x [F, r*hh, r*ww] */
        hh *= r, ww *= r;
        snprintf(name, sizeof name, DUMP_NAMES[DN_HEAD_UP], h->up_name, 2 * k + 1);
        gpu_dump(g, name, x, 3, cout / (r * r), hh, ww);
        in = x;
    }
    if (!h->has_last) return x;
    y = latup_arena_slot(&g->a, 1, (size_t)h->conv_last.cout * hh * ww, "head map b");
    gpu_conv(g, y, x, &h->conv_last, hh, ww, NULL, 0);                             /* y [C, S*Hp, S*Wp] */
    gpu_dump(g, h->last_name, y, 3, h->conv_last.cout, hh, ww);
    return y;
}

/* One image: xb [C, H, W] on the host -> yb [C, S*H, S*W] on the host (NULL while counting). */
static void forward_one(gpu_ctx *g, const gpu_lua *d, lua_call *p, const float *xb, float *yb) {
    const latup_lua *m = &d->m;
    const latup_lua_config *c = &m->cfg;
    latup_arena *a = &g->a;
    const int C = c->in_chans, Co = c->out_chans, E = c->embed_dim, Hp = p->Hp, Wp = p->Wp, S = p->S;
    const int H = p->H, W = p->W;
    const int64_t L = (int64_t)Hp * Wp;
    char name[64];
    float *in = latup_arena_take(a, (size_t)C * H * W, "input");
    float *pad = latup_arena_take(a, (size_t)C * L, "pad [C, Hp, Wp]");
    float *f0 = latup_arena_take(a, (size_t)E * L, "conv_first [E, L] (long skip)");
    float *t = latup_arena_take(a, (size_t)L * E, "tokens t [L, E]");
    float *r = latup_arena_take(a, (size_t)L * E, "RSTB input r [L, E]");
    float *u = latup_arena_take(a, (size_t)L * E, "scratch u [L, E]");
    float *win = latup_arena_take(a, (size_t)L * E, "windows [L, E]");
    float *ao = latup_arena_take(a, (size_t)L * E, "attention out [L, E]");
    float *qkv = latup_arena_take(a, (size_t)L * 3 * E, "qkv [L, 3E]");
    float *hid = latup_arena_take(a, (size_t)L * c->mlp_hidden, "mlp hidden [L, hidden]");
    float *out = latup_arena_take(a, (size_t)Co * S * H * S * W, "output");
    const int verbose = p->opts && p->opts->verbose;
    double t0 = verbose ? gpu_time(g) : 0;

    /* 0. reflect-pad bottom/right to the window multiple                      pad [C, Hp, Wp] */
    gpu_upload(g, in, xb, (size_t)C * H * W, "copying the latent to the GPU");
    GPU_RUN(g, lcu_reflect_pad(pad, in, C, H, W, Hp, Wp), "reflect pad");
    gpu_dump(g, DUMP_NAMES[DN_PAD], pad, 3, C, Hp, Wp);
    if (c->has_mean) GPU_RUN(g, lcu_channel_add(pad, d->mean, -1.0f, C, L), "mean"); /* (x - mean) */
    /* 1. shallow features                                                    f0  [E, Hp, Wp] */
    gpu_conv(g, f0, pad, &m->conv_first, Hp, Wp, NULL, 0);
    gpu_dump(g, DUMP_NAMES[DN_CONV_FIRST], f0, 3, E, Hp, Wp);
    /* 2. tokens and patch norm                                               t   [L, E] */
    GPU_RUN(g, lcu_transpose(t, f0, NULL, E, L), "to tokens");
    gpu_layernorm(g, t, t, &m->patch_norm, L);
    gpu_dump(g, DUMP_NAMES[DN_PATCH_EMBED], t, 2, L, E, 0);
    gpu_step(g);
    double t1 = verbose ? gpu_time(g) : 0;
    /* 3. residual Swin transformer blocks */
    for (int i = 0; i < c->num_layers; i++) {
        const rstb *R = &m->layers[i];
        GPU_RUN(g, (int)cudaMemcpy(r, t, (size_t)L * E * sizeof(float), cudaMemcpyDeviceToDevice), "RSTB input");
        for (int j = 0; j < R->depth; j++) swin_block_forward(g, &R->blocks[j], c, Hp, Wp, t, u, win, qkv, ao, hid, i, j);
        /* t = conv(t as a map) + r */
        GPU_RUN(g, lcu_transpose(u, t, NULL, L, E), "to a map");
        gpu_conv(g, win, u, &R->conv, Hp, Wp, NULL, 0);                          /* win [E, Hp, Wp] */
        snprintf(name, sizeof name, DUMP_NAMES[DN_RSTB_CONV], i);
        gpu_dump(g, name, win, 3, E, Hp, Wp);
        GPU_RUN(g, lcu_transpose(t, win, r, E, L), "to tokens + residual");
        snprintf(name, sizeof name, DUMP_NAMES[DN_RSTB], i);
        gpu_dump(g, name, t, 2, L, E, 0);
        gpu_step(g);
    }
    double t2 = verbose ? gpu_time(g) : 0;
    /* 5. final norm, back to a map, conv_after_body + the long skip           f [E, Hp, Wp] */
    gpu_layernorm(g, t, t, &m->norm, L);
    gpu_dump(g, DUMP_NAMES[DN_NORM], t, 2, L, E, 0);
    GPU_RUN(g, lcu_transpose(u, t, NULL, L, E), "to a map");
    gpu_conv(g, win, u, &m->conv_after_body, Hp, Wp, NULL, 0);
    GPU_RUN(g, lcu_add(win, f0, (int64_t)E * L), "long skip");
    gpu_dump(g, DUMP_NAMES[DN_CONV_AFTER_BODY], win, 3, E, Hp, Wp);
    gpu_step(g);
    double t3 = verbose ? gpu_time(g) : 0;
    /* 6. the requested head                                                   [C, S*Hp, S*Wp] */
    const float *hr = head_forward(g, p->hd, win, Hp, Wp);
    gpu_step(g);
    double t4 = verbose ? gpu_time(g) : 0;
    /* 7. crop the padding away                                                [C, S*H, S*W] */
    GPU_RUN(g, lcu_crop(out, hr, Co, S * Hp, S * Wp, S * H, S * W), "crop");
    if (c->has_mean) GPU_RUN(g, lcu_channel_add(out, d->mean, 1.0f, Co, (int64_t)S * H * S * W), "mean"); /* + mean */
    snprintf(name, sizeof name, DUMP_NAMES[DN_OUT], S);
    gpu_dump(g, name, out, 3, Co, (int64_t)S * H, (int64_t)S * W);
    gpu_download(g, yb, out, (size_t)Co * S * H * S * W, "copying the result from the GPU");
    gpu_step(g);
    if (verbose && gpu_live(g)) {
        double t5 = gpu_time(g);
        const double d5[5] = {t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4};
        for (int k = 0; k < 5; k++) p->tm[k] += d5[k];
    }
}

/* The call was checked and planned by src/api/call.c: x is valid and finite, y allocated. */
latup_status latup_gpu_lua_run(const latup_lua *m, int scale, const latup_tensor *x, latup_tensor *y,
                               const latup_run_opts *opts, latup_progress *progress) {
    lua_call p;
    memset(&p, 0, sizeof p);
    p.opts = opts;
    const int off = x->ndim - 3, ws = m->cfg.window_size;
    p.B = off ? x->shape[0] : 1;
    p.H = (int)x->shape[off + 1], p.W = (int)x->shape[off + 2], p.S = scale;
    p.Hp = (p.H + ws - 1) / ws * ws, p.Wp = (p.W + ws - 1) / ws * ws;
    for (int k = 0; k < m->cfg.n_scales; k++)
        if (m->heads[k].scale == scale) p.hd = &m->heads[k];
    if (!p.hd) return latup_fail(LATUP_E_INTERNAL, "GPU upscale: no head x%d (the plan should have refused it)", scale);
    gpu_ctx g;
    TRY(gpu_begin(&g, opts ? opts->dump : NULL, opts ? opts->dump_user : NULL));
    g.progress = progress;
    gpu_lua *d = NULL;
    latup_status st = device_model(m, &d);
    const latup_lua_config *c = &m->cfg;
    const int Co = c->out_chans, S = scale;
    if (st == LATUP_OK) p.hd = &d->m.heads[p.hd - m->heads]; /* the same head, device pointers */
    if (st == LATUP_OK) {
        gpu_arena_count(&g);
        forward_one(&g, d, &p, NULL, NULL);
        st = gpu_arena_alloc(&g, "upscale arena");
    }
    if (st == LATUP_OK && opts && opts->verbose) {
        char title[96];
        snprintf(title, sizeof title, "GPU memory plan: latent %dx%d -> padded %dx%d, x%d", p.H, p.W, p.Hp, p.Wp, S);
        gpu_arena_print(&g, title);
    }
    const size_t xsz = (size_t)c->in_chans * p.H * p.W, ysz = (size_t)Co * S * p.H * S * p.W;
    for (int64_t b = 0; b < p.B && st == LATUP_OK; b++) {
        latup_arena_rewind(&g.a);
        g.b = (int)b;
        forward_one(&g, d, &p, x->data + (size_t)b * xsz, y->data + (size_t)b * ysz);
        st = latup_arena_check(&g.a);
    }
    if (st == LATUP_OK && gpu_check(&g, (int)cudaDeviceSynchronize(), "upscale")) st = g.a.st;
    if (st == LATUP_OK && opts && opts->verbose)
        fprintf(stderr, "GPU timings (batch %lld): embed %.3f s, RSTBs %.3f s, body %.3f s, head x%d %.3f s, crop %.3f s, "
                        "total %.3f s\n", (long long)p.B, p.tm[0], p.tm[1], p.tm[2], S, p.tm[3], p.tm[4],
                p.tm[0] + p.tm[1] + p.tm[2] + p.tm[3] + p.tm[4]);
    gpu_end(&g);
    return st;
}
