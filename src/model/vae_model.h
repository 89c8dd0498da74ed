/* vae_model.h — the VAE's layer structs (decoder and encoder), ldm names beside each field, shared by the CPU
 * forward pass (vae.c) and the CUDA one (src/cuda/). Filled by latup_vae_load(), read-only after. */
#ifndef LATUP_VAE_MODEL_H
#define LATUP_VAE_MODEL_H

#include "model/layers.h"

#define GN_GROUPS 32       /* every norm: GroupNorm(32, eps 1e-6) */
#define GN_EPS 1e-6f

/* ---- layer structs, ldm names beside each field (diffusers names: vae_module_name) ------------ */

typedef struct {
    latup_norm norm1, norm2;      /* .norm1, .norm2 (GroupNorm) */
    latup_conv conv1, conv2;      /* .conv1 (3x3 cin -> cout), .conv2 (3x3 cout -> cout) */
    int has_shortcut;
    latup_conv nin_shortcut;      /* .nin_shortcut (diffusers .conv_shortcut), 1x1, cin != cout */
    int cin, cout;
} resnet;

typedef struct {
    latup_norm norm;              /* decoder.mid.attn_1.norm */
    latup_conv q, k, v, proj_out; /* decoder.mid.attn_1.{q,k,v,proj_out}, 1x1 conv or Linear */
} attn_block;

typedef struct {
    resnet blocks[8];             /* decoder.up.L.block.M */
    int n_blocks;
    int has_upsample;
    latup_conv upsample;          /* decoder.up.L.upsample.conv (nearest x2, then 3x3) */
} up_level;

typedef struct {
    resnet blocks[8];             /* encoder.down.i.block.j */
    int n_blocks;
    int has_downsample;
    latup_conv downsample;        /* encoder.down.i.downsample.conv (pad (0,1,0,1), 3x3 stride 2) */
} down_level;

/* The encoder (cfg.encoder says which kind, or none). LDM: conv_in -> down levels -> mid ->
 * norm_out + SiLU -> conv_out (top width -> 2 zc) -> quant_conv (SD/SDXL). PATCH: one p x p
 * stride-p conv (3 -> 2 zc). */
typedef struct {
    latup_conv conv_in;           /* encoder.conv_in (3x3, 3 -> C0) */
    down_level down[LATUP_VAE_MAX_LEVELS];
    resnet mid_block_1, mid_block_2;
    attn_block mid_attn;
    latup_norm norm_out;          /* encoder.norm_out (diffusers conv_norm_out) */
    latup_conv conv_out;          /* encoder.conv_out (3x3 top -> 2 zc) */
    latup_conv quant_conv;        /* quant_conv (1x1 2zc -> 2zc), when cfg.has_quant_conv */
    latup_conv patch;             /* PATCH: encoder.weight [2zc, 3, p, p], encoder.bias */
} vae_encoder;

/* As LATUP_LUA_TAG: the first member of a loaded VAE, cleared when it is freed. */
#define LATUP_VAE_TAG 0x31454156u /* "VAE1" */
struct latup_vae {
    uint32_t tag;
    latup_vae_config cfg;
    latup_weights weights;
    latup_conv post_quant_conv;   /* post_quant_conv (1x1 zc -> zc), SD/SDXL only */
    latup_conv conv_in;           /* decoder.conv_in (3x3 zc -> C) */
    resnet mid_block_1, mid_block_2;
    attn_block mid_attn;
    up_level up[LATUP_VAE_MAX_LEVELS];
    latup_norm norm_out;          /* decoder.norm_out (diffusers conv_norm_out) */
    latup_conv conv_out;          /* decoder.conv_out (3x3 C0 -> 3) */
    vae_encoder enc;              /* when cfg.encoder != LATUP_VAE_ENCODER_NONE */
    size_t resident;              /* bytes held once loaded: the fetched tensors (the parts loaded) */
    void *gpu;                    /* the device copy (src/cuda/), made on the first GPU call */
    latup_latent_family space;    /* a diffusers folder's config.json: scaling_factor, shift_factor */
    char *space_name;             /* that config.json's path; NULL: no latent space known */
};

/* A prepared decode of h x w latents (src/model/vae.c): exact or tiled, the tiles chosen so that
 * base (everything else the process holds at the decode) plus the decode's arena fits
 * opts->max_memory; run on a batch by latup_vae_exec_run (z: B latents, out: B images). opts must
 * outlive it. */
typedef struct latup_vae_exec latup_vae_exec;
/* v is a loaded VAE: LATUP_E_USAGE naming func and arg when it is NULL or another type. */
latup_status latup_vae_check(const latup_vae *v, const char *func, const char *arg);
/* A loaded v that holds the part a call runs: LATUP_E_USAGE "VAE loaded without its decoder" /
 * "... without an encoder" otherwise. */
latup_status latup_vae_check_decoder(const latup_vae *v);
latup_status latup_vae_check_encoder(const latup_vae *v);

latup_status latup_vae_exec_prepare(const latup_vae *v, int h, int w, const latup_decode_opts *opts,
                                    const latup_call_memory *base, latup_vae_exec **out, latup_decode_plan *dp);
/* progress (may be NULL) hears of each step: latup_vae_exec_steps() per image, as counted */
latup_status latup_vae_exec_run(latup_vae_exec *x, const float *z, int64_t B, float *out, latup_progress *progress);
int64_t latup_vae_exec_steps(const latup_vae_exec *x);
void latup_vae_exec_free(latup_vae_exec *x);
/* A prepared encode of H x W images (src/model/vae.c, the pass in vae_enc.c), the same exec: run
 * by latup_vae_exec_run (in: B images [3,H,W], out: B latents [zc,h,w]). v must hold an encoder. */
latup_status latup_vae_enc_prepare(const latup_vae *v, int H, int W, const latup_encode_opts *opts,
                                   const latup_call_memory *base, latup_vae_exec **out, latup_decode_plan *dp);
/* 2^(levels-1): image pixels per latent pixel of the decoder */
static inline int latup_vae_factor(const latup_vae_config *c) { return 1 << (c->n_levels - 1); }
/* the encoder's: 2^(enc_levels-1), or the patch size */
static inline int latup_vae_enc_factor(const latup_vae_config *c) {
    return c->encoder == LATUP_VAE_ENCODER_PATCH ? c->enc_patch : 1 << (c->enc_n_levels - 1);
}

#endif
