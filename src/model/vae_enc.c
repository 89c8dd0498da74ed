/* vae_enc.c — the AutoencoderKL encoder's forward pass (docs/vae.md, "The encoder"): the ldm /
 * diffusers Encoder with double_z (conv_in, down levels of ResnetBlocks each but the last ending in
 * a stride-2 conv after a (0,1,0,1) zero pad, the mid block, GroupNorm + SiLU fused into conv_out)
 * then quant_conv, or the patch code (one p x p stride-p conv); the moments [2zc, h, w] become the
 * posterior's mean or a seeded sample. Tiled encoding blends the moments of latent tiles with the
 * decode's ramps (src/model/tiling.h). Planned, counted and run by the exec in vae.c. */
#include "model/dump_names.h"
#include "model/vae_blocks.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- the sample's normal generator ---------------------------------------------------------------
 * latup's own, not torch's: eps[n] (n: the flat index of z over the whole batch, [B, zc, h, w] in C
 * order) = sqrt(-2 ln u1) cos(2 pi u2), u1 = (a + 1) 2^-53 in (0, 1], u2 = b 2^-53 in [0, 1), a and b
 * the top 53 bits of draws 2n and 2n + 1 of splitmix64 seeded by seed (draw k = mix(seed + (k+1)
 * gamma)). Counter-based and computed in double: the same seed gives the same bits on any thread
 * count, any batch split and any tiling. */
static uint64_t splitmix64(uint64_t seed, uint64_t k) {
    uint64_t z = seed + (k + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double vae_normal(uint64_t seed, uint64_t n) {
    const double u1 = (double)((splitmix64(seed, 2 * n) >> 11) + 1) * 0x1.0p-53;
    const double u2 = (double)(splitmix64(seed, 2 * n + 1) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * 3.14159265358979323846 * u2);
}

/* z [zc, hw] = the mean (the moments' first zc channels), or mean + exp(logvar / 2) * eps with
 * logvar clamped to [-30, 20] as diffusers' DiagonalGaussianDistribution; image b of the batch. */
static void posterior(lx_exec *e, float *z, const float *mom, int zc, size_t hw, int sample, uint64_t seed) {
    if (!lx_live(e)) return;
    const size_t n = (size_t)zc * hw;
    if (!sample) {
        memcpy(z, mom, n * sizeof(float));
        return;
    }
    const uint64_t base = (uint64_t)e->b * n;
    for (size_t i = 0; i < n; i++) {
        float lv = mom[n + i];
        lv = lv < -30.0f ? -30.0f : lv > 20.0f ? 20.0f : lv;
        const float std = expf(0.5f * lv);
        z[i] = mom[i] + std * (float)vae_normal(seed, base + i);
    }
}

/* The ldm encoder on img [3, H, W]; moments [2zc, H/f, W/f] to mom. */
static void encode_ldm(lx_exec *e, const latup_vae *v, const float *img, int H, int W, float *mom) {
    const latup_vae_config *c = &v->cfg;
    const vae_encoder *en = &v->enc;
    const int zc2 = 2 * c->z_channels;
    int C = c->enc_channels[0], hh = H, ww = W;
    int hi = lx_pick(e, (size_t)C * H * W, -1, -1);
    lx_conv(e, e->buf[hi], img, &en->conv_in, H, W, NULL, DUMP_NAMES[DN_ENC_CONV_IN]); /* [C0, H, W] */
    lx_dump(e, DUMP_NAMES[DN_ENC_CONV_IN], e->buf[hi], 3, C, H, W);
    char name[64];
    for (int i = 0; i < c->enc_n_levels; i++) {
        const down_level *d = &en->down[i];
        for (int j = 0; j < d->n_blocks; j++) {
            snprintf(name, sizeof name, DUMP_NAMES[DN_ENC_DOWN_BLOCK], i, j);
            vae_resnet_forward(e, &d->blocks[j], &hi, hh, ww, name);
            C = d->blocks[j].cout;
        }
        if (d->has_downsample) { /* F.pad(x, (0,1,0,1)), then 3x3 stride 2: floor(n/2) */
            const conv_geom g = {.k = 3, .stride = 2, .pad_b = 1, .pad_r = 1};
            const int ho = latup_conv_out_size(hh, 3, 2, 0, 1), wo = latup_conv_out_size(ww, 3, 2, 0, 1);
            const int y = lx_pick(e, (size_t)C * ho * wo, hi, -1);
            snprintf(name, sizeof name, DUMP_NAMES[DN_ENC_DOWNSAMPLE], i);
            lx_conv_strided(e, e->buf[y], e->buf[hi], &d->downsample, hh, ww, &g, name);
            hi = y, hh = ho, ww = wo;
            lx_dump(e, name, e->buf[hi], 3, C, hh, ww);
        }
        lx_stage(e, V_UP + i);
    }
    char pre[16];
    snprintf(pre, sizeof pre, "%s.", DUMP_NAMES[DN_ENC]);
    vae_resnet_forward(e, &en->mid_block_1, &hi, hh, ww, DUMP_NAMES[DN_ENC_MID_BLOCK_1]);
    vae_attn_forward(e, &en->mid_attn, &hi, hh, ww, pre);
    vae_resnet_forward(e, &en->mid_block_2, &hi, hh, ww, DUMP_NAMES[DN_ENC_MID_BLOCK_2]);
    lx_stage(e, V_MID);
    /* norm_out + SiLU, fused into conv_out                                [2zc, h, w] */
    const int HW = hh * ww;
    lx_dump_groupnorm(e, DUMP_NAMES[DN_ENC_NORM_OUT], e->buf[hi], &en->norm_out, GN_GROUPS, C, hh, ww, 1);
    const int q = c->has_quant_conv ? lx_pick(e, (size_t)zc2 * HW, hi, -1) : -1;
    float *out = q >= 0 ? e->buf[q] : mom;
    const size_t mark = latup_arena_mark(&e->arena);
    conv_input_op op = lx_groupnorm_op(e, &en->norm_out, e->buf[hi], C, HW, GN_GROUPS, 1);
    lx_conv(e, out, e->buf[hi], &en->conv_out, hh, ww, &op, DUMP_NAMES[DN_ENC_CONV_OUT]);
    latup_arena_release(&e->arena, mark);
    lx_dump(e, DUMP_NAMES[DN_ENC_CONV_OUT], out, 3, zc2, hh, ww);
    if (q >= 0) {
        lx_conv(e, mom, out, &en->quant_conv, hh, ww, NULL, DUMP_NAMES[DN_QUANT]);
        lx_dump(e, DUMP_NAMES[DN_QUANT], mom, 3, zc2, hh, ww);
    }
    lx_stage(e, V_OUT);
}

/* The patch code on img [3, H, W]: one p x p stride-p conv (then quant_conv, if a file has one). */
static void encode_patch(lx_exec *e, const latup_vae *v, const float *img, int H, int W, float *mom) {
    const latup_vae_config *c = &v->cfg;
    const int p = c->enc_patch, h = H / p, w = W / p, zc2 = 2 * c->z_channels;
    const conv_geom g = {.k = p, .stride = p};
    const int q = c->has_quant_conv ? lx_pick(e, (size_t)zc2 * h * w, -1, -1) : -1;
    float *out = q >= 0 ? e->buf[q] : mom;
    lx_conv_strided(e, out, img, &v->enc.patch, H, W, &g, DUMP_NAMES[DN_ENC]);
    lx_dump(e, DUMP_NAMES[DN_ENC], out, 3, zc2, h, w);
    if (q >= 0) {
        lx_conv(e, mom, out, &v->enc.quant_conv, h, w, NULL, DUMP_NAMES[DN_QUANT]);
        lx_dump(e, DUMP_NAMES[DN_QUANT], mom, 3, zc2, h, w);
    }
    lx_stage(e, V_OUT);
}

/* One exact encode: moments [2zc, H/f, W/f] of img [3, H, W]. */
static void encode_one(lx_exec *e, const latup_vae *v, const float *img, int H, int W, float *mom) {
    lx_slots_reset(e); /* every image (and tile) replays the counting pass's choices from the start */
    if (v->cfg.encoder == LATUP_VAE_ENCODER_PATCH)
        encode_patch(e, v, img, H, W, mom);
    else
        encode_ldm(e, v, img, H, W, mom);
}

void vae_encode_pass(lx_exec *e, const latup_vae *v, const float *img, int H, int W, float *z, int T, int ov,
                     int sample, uint64_t seed) {
    const latup_vae_config *c = &v->cfg;
    const int f = latup_vae_enc_factor(c), h = H / f, w = W / f, zc = c->z_channels;
    float *mom = latup_arena_take3(&e->arena, 2 * (size_t)zc, (size_t)h, (size_t)w, "moments [2zc,h,w]");
    if (T > 0) /* image tiles of T*f pixels in (the image cropped to h*f x w*f), moments out, blended
                * over ov latent pixels */
        vae_tiled(e, v, encode_one, img, 3, H, W, f, mom, 2 * zc, 1, h, w, T, ov);
    else
        encode_one(e, v, img, H, W, mom);
    lx_dump(e, DUMP_NAMES[DN_MEAN], mom, 3, zc, h, w);
    if (mom) lx_dump(e, DUMP_NAMES[DN_LOGVAR], mom + (size_t)zc * h * w, 3, zc, h, w); /* NULL while counting */
    posterior(e, z, mom, zc, (size_t)h * w, sample, seed);
}

void vae_encode_timings(const lx_exec *e, int64_t B) {
    const latup_vae_config *c = e->model;
    fprintf(stderr, "VAE encoder timings (batch %lld, %d threads):", (long long)B, e->nthreads);
    if (c->encoder == LATUP_VAE_ENCODER_LDM) {
        for (int i = 0; i < c->enc_n_levels; i++) fprintf(stderr, " down.%d %.3f s,", i, e->tm[V_UP + i]);
        fprintf(stderr, " mid %.3f s,", e->tm[V_MID]);
    }
    fprintf(stderr, " out %.3f s\n", e->tm[V_OUT]);
}
