/* vae_load.c — loading the AutoencoderKL decoder from any checkpoint holding one: ldm or
 * diffusers names (flat, or under a single-file checkpoint's prefix), the config inferred from
 * shapes, every layer bound with exact shapes; tensors the decoder does not use are ignored. A
 * diffusers folder (config.json beside the weights) is read too, its latent scaling kept. */
#define _POSIX_C_SOURCE 200809L
#include "io/checkpoint.h"
#include "io/fileio.h"
#include "io/json.h"
#include "model/device.h"
#include "model/vae_model.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- names ---------------------------------------------------------------------------------------
 * Modules are named the ldm way in the code; vae_module_name() gives the file's name for one. */
typedef enum {
    M_POST_QUANT, M_CONV_IN, M_MID_RESNET, M_MID_ATTN, M_UP_RESNET, M_UPSAMPLE, M_NORM_OUT, M_CONV_OUT,
    /* the encoder's: diffusers' down_blocks count as ldm's down levels (no reversal) */
    M_QUANT, M_ENC_CONV_IN, M_ENC_RESNET, M_ENC_DOWNSAMPLE, M_ENC_MID_RESNET, M_ENC_MID_ATTN, M_ENC_NORM_OUT,
    M_ENC_CONV_OUT
} module_kind;

static void vae_module_name(char *out, size_t n, const latup_vae_config *c, module_kind k, int a, int b) {
    const int ldm = c->naming == LATUP_VAE_NAMES_LDM;
    const char *p = c->prefix;
    switch (k) {
    case M_POST_QUANT: snprintf(out, n, "%spost_quant_conv", p); break;
    case M_CONV_IN: snprintf(out, n, "%sdecoder.conv_in", p); break;
    case M_CONV_OUT: snprintf(out, n, "%sdecoder.conv_out", p); break;
    case M_NORM_OUT: snprintf(out, n, ldm ? "%sdecoder.norm_out" : "%sdecoder.conv_norm_out", p); break;
    case M_MID_RESNET:
        if (ldm) snprintf(out, n, "%sdecoder.mid.block_%d", p, a + 1);
        else snprintf(out, n, "%sdecoder.mid_block.resnets.%d", p, a);
        break;
    case M_MID_ATTN:
        snprintf(out, n, ldm ? "%sdecoder.mid.attn_1" : "%sdecoder.mid_block.attentions.0", p);
        break;
    case M_UP_RESNET: /* diffusers counts up_blocks from the lowest resolution */
        if (ldm) snprintf(out, n, "%sdecoder.up.%d.block.%d", p, a, b);
        else snprintf(out, n, "%sdecoder.up_blocks.%d.resnets.%d", p, c->n_levels - 1 - a, b);
        break;
    case M_UPSAMPLE:
        if (ldm) snprintf(out, n, "%sdecoder.up.%d.upsample.conv", p, a);
        else snprintf(out, n, "%sdecoder.up_blocks.%d.upsamplers.0.conv", p, c->n_levels - 1 - a);
        break;
    case M_QUANT: snprintf(out, n, "%squant_conv", p); break;
    case M_ENC_CONV_IN: snprintf(out, n, "%sencoder.conv_in", p); break;
    case M_ENC_CONV_OUT: snprintf(out, n, "%sencoder.conv_out", p); break;
    case M_ENC_NORM_OUT: snprintf(out, n, ldm ? "%sencoder.norm_out" : "%sencoder.conv_norm_out", p); break;
    case M_ENC_MID_RESNET:
        if (ldm) snprintf(out, n, "%sencoder.mid.block_%d", p, a + 1);
        else snprintf(out, n, "%sencoder.mid_block.resnets.%d", p, a);
        break;
    case M_ENC_MID_ATTN:
        snprintf(out, n, ldm ? "%sencoder.mid.attn_1" : "%sencoder.mid_block.attentions.0", p);
        break;
    case M_ENC_RESNET:
        if (ldm) snprintf(out, n, "%sencoder.down.%d.block.%d", p, a, b);
        else snprintf(out, n, "%sencoder.down_blocks.%d.resnets.%d", p, a, b);
        break;
    case M_ENC_DOWNSAMPLE:
        if (ldm) snprintf(out, n, "%sencoder.down.%d.downsample.conv", p, a);
        else snprintf(out, n, "%sencoder.down_blocks.%d.downsamplers.0.conv", p, a);
        break;
    }
}

/* the attention's sub-modules in each naming: norm, q, k, v, proj */
static const char *ATTN_NAMES[3][5] = {
    {"norm", "q", "k", "v", "proj_out"},
    {"group_norm", "to_q", "to_k", "to_v", "to_out.0"},
    {"group_norm", "query", "key", "value", "proj_attn"},
};

/* ---- config inference --------------------------------------------------------------------------
 * Bounds: the AutoencoderKLs of SD, SDXL, SD3 and FLUX have 4 or 16 latent channels, widths
 * 128..512 and 3 output channels; these limits only keep a crafted file from running with a zero
 * width or sizing buffers past memory. */
#define VAE_MAX_Z 256      /* latent channels */
#define VAE_MAX_WIDTH 4096 /* channels of an up level */
#define VAE_MAX_OUT 64     /* image channels */
#define VAE_MAX_PATCH 64   /* the patch encoder's p */

static int has(const latup_weights *w, const char *fmt, ...) LATUP_PRINTF(2, 3);
static int has(const latup_weights *w, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return latup_weights_find(w, name) != NULL;
}

static latup_status conv_shape(const latup_weights *w, const char *name, int64_t *shape4) {
    char full[272]; /* name (up to 256) + ".weight" */
    const latup_wtensor *t;
    snprintf(full, sizeof full, "%s.weight", name);
    TRY(latup_weights_require(w, full, 4, "VAE", &t));
    memcpy(shape4, t->shape, 4 * sizeof(int64_t));
    return LATUP_OK;
}

/* The width of a level from its first resnet's conv1 [C, cin, 3, 3]: in range, whole groups. */
static latup_status level_width(const latup_weights *w, const latup_vae_config *c, const char *conv, int *width) {
    int64_t s[4];
    char full[272];
    TRY(conv_shape(w, conv, s));
    snprintf(full, sizeof full, "%s.weight", conv);
    TRY(latup_config_dim(w, full, "channels", s[0], 1, VAE_MAX_WIDTH));
    if (s[0] % c->groups != 0)
        return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': %lld channels, not a multiple of %d GroupNorm groups",
                          w->path, full, (long long)s[0], c->groups);
    *width = (int)s[0];
    return LATUP_OK;
}

/* The levels under `prefix` ("...decoder.up.", "...encoder.down_blocks."): 1 to LATUP_VAE_MAX_LEVELS. */
static latup_status count_levels(const latup_weights *w, const char *prefix, const char *what, int *n) {
    *n = latup_weights_max_index(w, prefix) + 1;
    if (*n < 1 || *n > LATUP_VAE_MAX_LEVELS)
        return latup_fail(LATUP_E_INPUT, "%s: %d %s levels found under '%s', expected 1..%d", w->path, *n, what, prefix,
                          LATUP_VAE_MAX_LEVELS);
    return LATUP_OK;
}

/* ResnetBlocks per level (from level 0's, module kind k: M_UP_RESNET or M_ENC_RESNET) and each of
 * the n levels' width (its first resnet's conv1). */
static latup_status level_blocks(const latup_weights *w, const latup_vae_config *c, module_kind k, int n, int *blocks,
                                 int *widths) {
    char mod[200], name[256];
    vae_module_name(mod, sizeof mod, c, k, 0, 0);
    mod[strlen(mod) - 1] = '\0'; /* "...block." / "...resnets." */
    *blocks = latup_weights_max_index(w, mod) + 1;
    if (*blocks < 1 || *blocks > 8)
        return latup_fail(LATUP_E_INPUT, "%s: %d ResnetBlocks per level found under '%s', expected 1..8", w->path,
                          *blocks, mod);
    for (int i = 0; i < n; i++) {
        vae_module_name(mod, sizeof mod, c, k, i, 0);
        snprintf(name, sizeof name, "%s.conv1", mod);
        TRY(level_width(w, c, name, &widths[i]));
    }
    return LATUP_OK;
}

static const char *const PREFIXES[] = {"", "first_stage_model.", "vae."};

/* The naming of part ("decoder" or "encoder") under prefix p, from its mid block's first conv. */
static latup_status detect_naming(const latup_weights *w, const char *p, const char *part, latup_vae_naming *n) {
    if (has(w, "%s%s.mid.block_1.conv1.weight", p, part)) {
        *n = LATUP_VAE_NAMES_LDM;
    } else if (has(w, "%s%s.mid_block.resnets.0.conv1.weight", p, part)) {
        *n = has(w, "%s%s.mid_block.attentions.0.query.weight", p, part) ? LATUP_VAE_NAMES_DIFFUSERS_OLD
                                                                          : LATUP_VAE_NAMES_DIFFUSERS;
    } else {
        return latup_fail(LATUP_E_INPUT, "%s: missing tensor '%s%s.mid.block_1.conv1.weight' (ldm names) or "
                          "'%s%s.mid_block.resnets.0.conv1.weight' (diffusers names)", w->path, p, part, p, part);
    }
    return LATUP_OK;
}

/* The decoder's config (c->prefix set): levels, widths, blocks, latent and image channels. */
static latup_status infer_decoder(const latup_weights *w, latup_vae_config *c) {
    char name[256];
    int64_t s[4];
    const char *p = c->prefix;
    TRY(detect_naming(w, p, "decoder", &c->naming));
    snprintf(name, sizeof name, c->naming == LATUP_VAE_NAMES_LDM ? "%sdecoder.up." : "%sdecoder.up_blocks.", p);
    TRY(count_levels(w, name, "decoder up", &c->n_levels));
    char mod[200];
    vae_module_name(mod, sizeof mod, c, M_CONV_IN, 0, 0);
    TRY(conv_shape(w, mod, s));
    snprintf(name, sizeof name, "%s.weight", mod);
    TRY(latup_config_dim(w, name, "latent channels", s[1], 1, VAE_MAX_Z));
    TRY(latup_config_dim(w, name, "output channels", s[0], 1, VAE_MAX_WIDTH));
    c->z_channels = (int)s[1];
    /* ldm "up.0.block.", diffusers "up_blocks.<n-1>.resnets." */
    TRY(level_blocks(w, c, M_UP_RESNET, c->n_levels, &c->blocks_per_level, c->channels));
    vae_module_name(mod, sizeof mod, c, M_CONV_OUT, 0, 0);
    TRY(conv_shape(w, mod, s));
    snprintf(name, sizeof name, "%s.weight", mod);
    TRY(latup_config_dim(w, name, "image channels", s[0], 1, VAE_MAX_OUT));
    c->out_channels = (int)s[0];
    vae_module_name(mod, sizeof mod, c, M_POST_QUANT, 0, 0);
    snprintf(name, sizeof name, "%s.weight", mod);
    c->has_post_quant_conv = latup_weights_find(w, name) != NULL;
    c->has_decoder = 1;
    return LATUP_OK;
}

/* The encoder a file holds under prefix p: ldm/diffusers (its conv_out) or the patch code. */
static latup_vae_encoder_kind encoder_present(const latup_weights *w, const char *p) {
    if (has(w, "%sencoder.conv_out.weight", p)) return LATUP_VAE_ENCODER_LDM;
    if (has(w, "%sencoder.weight", p)) return LATUP_VAE_ENCODER_PATCH;
    return LATUP_VAE_ENCODER_NONE;
}

/* The encoder's config (c->prefix set, the decoder's config too when it is loaded): its kind,
 * levels, widths, blocks, patch size, latent channels and quant_conv, from shapes. */
static latup_status infer_encoder(const latup_weights *w, latup_vae_config *c) {
    char name[256], mod[200];
    int64_t s[4];
    const char *p = c->prefix;
    int zc2;
    c->encoder = encoder_present(w, p);
    if (c->encoder == LATUP_VAE_ENCODER_PATCH) {
        snprintf(name, sizeof name, "%sencoder.weight", p);
        snprintf(mod, sizeof mod, "%sencoder", p);
        TRY(conv_shape(w, mod, s));
        TRY(latup_config_dim(w, name, "patch size", s[2], 1, VAE_MAX_PATCH));
        if (s[1] != 3 || s[3] != s[2] || s[0] % 2) {
            char sh[96];
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s' has shape %s, expected [2*zc, 3, p, p] (a p x p patch "
                              "code from RGB to mean and log-variance)", w->path, name,
                              latup_shape_str(sh, sizeof sh, 4, s));
        }
        c->enc_patch = (int)s[2];
        zc2 = (int)s[0];
    } else {
        latup_vae_naming n;
        TRY(detect_naming(w, p, "encoder", &n));
        if (c->has_decoder && n != c->naming)
            return latup_fail(LATUP_E_INPUT, "%s: the encoder's tensors use %s names, the decoder's %s names", w->path,
                              latup_vae_naming_name(n), latup_vae_naming_name(c->naming));
        c->naming = n;
        const int ldm = n == LATUP_VAE_NAMES_LDM;
        snprintf(name, sizeof name, ldm ? "%sencoder.down." : "%sencoder.down_blocks.", p);
        TRY(count_levels(w, name, "encoder down", &c->enc_n_levels));
        TRY(level_blocks(w, c, M_ENC_RESNET, c->enc_n_levels, &c->enc_blocks_per_level, c->enc_channels));
        vae_module_name(mod, sizeof mod, c, M_ENC_CONV_IN, 0, 0);
        TRY(conv_shape(w, mod, s));
        snprintf(name, sizeof name, "%s.weight", mod);
        if (s[1] != 3)
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s' takes %lld image channels, expected 3 (RGB)", w->path,
                              name, (long long)s[1]);
        vae_module_name(mod, sizeof mod, c, M_ENC_CONV_OUT, 0, 0);
        TRY(conv_shape(w, mod, s));
        snprintf(name, sizeof name, "%s.weight", mod);
        if (s[0] % 2)
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s' makes %lld channels, expected 2 x latent channels (mean "
                              "and log-variance)", w->path, name, (long long)s[0]);
        zc2 = (int)s[0];
    }
    TRY(latup_config_dim(w, name, "latent channels (x2)", zc2, 2, 2 * VAE_MAX_Z));
    if (c->has_decoder && zc2 / 2 != c->z_channels)
        return latup_fail(LATUP_E_INPUT, "%s: tensor '%s' gives the encoder %d latent channels, the decoder takes %d",
                          w->path, name, zc2 / 2, c->z_channels);
    c->z_channels = zc2 / 2;
    c->has_quant_conv = has(w, "%squant_conv.weight", p);
    return LATUP_OK;
}

/* ---- binding ------------------------------------------------------------------------------------- */

static latup_status bind_resnet(latup_binder *bd, resnet *r, int cin, int cout, float eps, const char *mod,
                                int ldm) {
    char name[256];
    r->cin = cin, r->cout = cout;
    snprintf(name, sizeof name, "%s.norm1", mod);
    TRY(latup_bind_norm(bd, &r->norm1, cin, eps, name));
    snprintf(name, sizeof name, "%s.conv1", mod);
    TRY(latup_bind_conv(bd, &r->conv1, cin, cout, 3, name));
    snprintf(name, sizeof name, "%s.norm2", mod);
    TRY(latup_bind_norm(bd, &r->norm2, cout, eps, name));
    snprintf(name, sizeof name, "%s.conv2", mod);
    TRY(latup_bind_conv(bd, &r->conv2, cout, cout, 3, name));
    r->has_shortcut = cin != cout;
    if (r->has_shortcut) {
        snprintf(name, sizeof name, ldm ? "%s.nin_shortcut" : "%s.conv_shortcut", mod);
        TRY(latup_bind_conv(bd, &r->nin_shortcut, cin, cout, 1, name));
    }
    return LATUP_OK;
}

/* An attention projection: a 1x1 conv [C,C,1,1] (ldm) or a Linear [C,C] (diffusers); the same
 * memory layout either way. */
static latup_status bind_proj(latup_binder *bd, latup_conv *cv, int C, const char *mod, const char *sub) {
    char name[256];
    snprintf(name, sizeof name, "%s.%s.weight", mod, sub);
    const latup_wtensor *t = latup_weights_find(bd->w, name);
    const int64_t lin[2] = {C, C}, conv[4] = {C, C, 1, 1};
    const int is_linear = t && t->ndim == 2;
    TRY(latup_bind(bd, &cv->w, is_linear ? 2 : 4, is_linear ? lin : conv, "%s", name));
    const int64_t bs[1] = {C};
    TRY(latup_bind(bd, &cv->b, 1, bs, "%s.%s.bias", mod, sub));
    cv->cin = cv->cout = C, cv->k = 1;
    return LATUP_OK;
}

/* The mid block's attention, module mod, width C. */
static latup_status bind_attn(latup_binder *bd, attn_block *a, int C, float eps, const char *mod, latup_vae_naming n) {
    char name[256];
    const char *const *an = ATTN_NAMES[n];
    snprintf(name, sizeof name, "%s.%s", mod, an[0]);
    TRY(latup_bind_norm(bd, &a->norm, C, eps, name));
    TRY(bind_proj(bd, &a->q, C, mod, an[1]));
    TRY(bind_proj(bd, &a->k, C, mod, an[2]));
    TRY(bind_proj(bd, &a->v, C, mod, an[3]));
    return bind_proj(bd, &a->proj_out, C, mod, an[4]);
}

static latup_status bind_encoder(latup_vae *v, latup_binder *bd) {
    const latup_vae_config *c = &v->cfg;
    vae_encoder *en = &v->enc;
    const int zc2 = 2 * c->z_channels;
    char mod[200];
    if (c->encoder == LATUP_VAE_ENCODER_PATCH) {
        snprintf(mod, sizeof mod, "%sencoder", c->prefix);
        TRY(latup_bind_conv(bd, &en->patch, 3, zc2, c->enc_patch, mod));
    } else {
        const int ldm = c->naming == LATUP_VAE_NAMES_LDM, top = c->enc_channels[c->enc_n_levels - 1];
        vae_module_name(mod, sizeof mod, c, M_ENC_CONV_IN, 0, 0);
        TRY(latup_bind_conv(bd, &en->conv_in, 3, c->enc_channels[0], 3, mod));
        int cin = c->enc_channels[0];
        for (int i = 0; i < c->enc_n_levels; i++) {
            down_level *d = &en->down[i];
            d->n_blocks = c->enc_blocks_per_level;
            for (int j = 0; j < d->n_blocks; j++) {
                vae_module_name(mod, sizeof mod, c, M_ENC_RESNET, i, j);
                TRY(bind_resnet(bd, &d->blocks[j], cin, c->enc_channels[i], c->eps, mod, ldm));
                cin = c->enc_channels[i];
            }
            d->has_downsample = i != c->enc_n_levels - 1;
            if (d->has_downsample) {
                vae_module_name(mod, sizeof mod, c, M_ENC_DOWNSAMPLE, i, 0);
                TRY(latup_bind_conv(bd, &d->downsample, cin, cin, 3, mod));
            }
        }
        vae_module_name(mod, sizeof mod, c, M_ENC_MID_RESNET, 0, 0);
        TRY(bind_resnet(bd, &en->mid_block_1, top, top, c->eps, mod, ldm));
        vae_module_name(mod, sizeof mod, c, M_ENC_MID_ATTN, 0, 0);
        TRY(bind_attn(bd, &en->mid_attn, top, c->eps, mod, c->naming));
        vae_module_name(mod, sizeof mod, c, M_ENC_MID_RESNET, 1, 0);
        TRY(bind_resnet(bd, &en->mid_block_2, top, top, c->eps, mod, ldm));
        vae_module_name(mod, sizeof mod, c, M_ENC_NORM_OUT, 0, 0);
        TRY(latup_bind_norm(bd, &en->norm_out, top, c->eps, mod));
        vae_module_name(mod, sizeof mod, c, M_ENC_CONV_OUT, 0, 0);
        TRY(latup_bind_conv(bd, &en->conv_out, top, zc2, 3, mod));
    }
    if (c->has_quant_conv) {
        vae_module_name(mod, sizeof mod, c, M_QUANT, 0, 0);
        TRY(latup_bind_conv(bd, &en->quant_conv, zc2, zc2, 1, mod));
    }
    return LATUP_OK;
}

static latup_status bind_decoder(latup_vae *v, latup_binder *bd) {
    const latup_vae_config *c = &v->cfg;
    const int ldm = c->naming == LATUP_VAE_NAMES_LDM, top = c->channels[c->n_levels - 1];
    char mod[200];
    if (c->has_post_quant_conv) {
        vae_module_name(mod, sizeof mod, c, M_POST_QUANT, 0, 0);
        TRY(latup_bind_conv(bd, &v->post_quant_conv, c->z_channels, c->z_channels, 1, mod));
    }
    vae_module_name(mod, sizeof mod, c, M_CONV_IN, 0, 0);
    TRY(latup_bind_conv(bd, &v->conv_in, c->z_channels, top, 3, mod));
    vae_module_name(mod, sizeof mod, c, M_MID_RESNET, 0, 0);
    TRY(bind_resnet(bd, &v->mid_block_1, top, top, c->eps, mod, ldm));
    vae_module_name(mod, sizeof mod, c, M_MID_ATTN, 0, 0);
    TRY(bind_attn(bd, &v->mid_attn, top, c->eps, mod, c->naming));
    vae_module_name(mod, sizeof mod, c, M_MID_RESNET, 1, 0);
    TRY(bind_resnet(bd, &v->mid_block_2, top, top, c->eps, mod, ldm));
    int cin = top;
    for (int L = c->n_levels - 1; L >= 0; L--) {
        up_level *u = &v->up[L];
        u->n_blocks = c->blocks_per_level;
        for (int M = 0; M < u->n_blocks; M++) {
            vae_module_name(mod, sizeof mod, c, M_UP_RESNET, L, M);
            TRY(bind_resnet(bd, &u->blocks[M], cin, c->channels[L], c->eps, mod, ldm));
            cin = c->channels[L];
        }
        u->has_upsample = L != 0;
        if (u->has_upsample) {
            vae_module_name(mod, sizeof mod, c, M_UPSAMPLE, L, 0);
            TRY(latup_bind_conv(bd, &u->upsample, cin, cin, 3, mod));
        }
    }
    vae_module_name(mod, sizeof mod, c, M_NORM_OUT, 0, 0);
    TRY(latup_bind_norm(bd, &v->norm_out, c->channels[0], c->eps, mod));
    vae_module_name(mod, sizeof mod, c, M_CONV_OUT, 0, 0);
    TRY(latup_bind_conv(bd, &v->conv_out, c->channels[0], c->out_channels, 3, mod));
    return LATUP_OK;
}

/* ---- diffusers folders ---------------------------------------------------------------------------
 * AutoencoderKL.from_pretrained takes a folder: config.json beside diffusion_pytorch_model.safetensors
 * (or the .bin that torch.save writes, a zip the .pth reader reads; or the fp16 variants). A
 * pipeline's root holds that folder as vae/. Only the latent scaling is taken from config.json:
 * the decoder's shape comes from the weights, as for any file. */
#define VAE_CONFIG_MAX ((size_t)1 << 20)

static const char *const WEIGHT_NAMES[] = {
    "diffusion_pytorch_model.safetensors",      "diffusion_pytorch_model.bin",
    "diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.fp16.bin",
};

static int stat_is(const char *path, int want_dir) {
    struct stat sb;
    if (stat(path, &sb) != 0) return 0; /* stat follows symlinks: the Hugging Face cache links to blobs */
    return want_dir ? S_ISDIR(sb.st_mode) : S_ISREG(sb.st_mode);
}

/* dir/name, without doubling a slash the user typed */
static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    const size_t len = n + 1 + strlen(name) + 1;
    char *p = latup_malloc(len, "a file name");
    if (p) snprintf(p, len, "%.*s/%s", (int)n, dir, name);
    return p;
}

/* The folder's files: *weights and *config (malloc'd), from a VAE folder or a pipeline root. */
static latup_status find_folder_files(const char *dir, char **weights, char **config) {
    *weights = *config = NULL;
    char *vae_dir = NULL, *cfg = join(dir, "config.json");
    if (!cfg) return LATUP_E_NOMEM;
    const char *folder = dir;
    if (!stat_is(cfg, 0)) {
        free(cfg);
        cfg = NULL;
        if (!(vae_dir = join(dir, "vae"))) return LATUP_E_NOMEM;
        if (stat_is(vae_dir, 1)) {
            folder = vae_dir;
            if (!(cfg = join(vae_dir, "config.json"))) {
                free(vae_dir);
                return LATUP_E_NOMEM;
            }
            if (!stat_is(cfg, 0)) {
                latup_status st = latup_fail(LATUP_E_INPUT, "%s: no config.json in the pipeline's vae/ folder %s "
                                             "(a diffusers VAE folder holds config.json and "
                                             "diffusion_pytorch_model.safetensors)", dir, vae_dir);
                free(cfg), free(vae_dir);
                return st;
            }
        } else {
            free(vae_dir);
            return latup_fail(LATUP_E_INPUT, "%s: a folder without config.json or vae/: expected a diffusers VAE "
                              "folder (config.json and diffusion_pytorch_model.safetensors, as "
                              "AutoencoderKL.from_pretrained takes) or a pipeline folder holding vae/", dir);
        }
    }
    for (size_t i = 0; i < sizeof WEIGHT_NAMES / sizeof WEIGHT_NAMES[0] && !*weights; i++) {
        char *p = join(folder, WEIGHT_NAMES[i]);
        if (!p) break;
        if (stat_is(p, 0)) *weights = p;
        else free(p);
    }
    latup_status st = LATUP_OK;
    if (!*weights)
        st = latup_fail(LATUP_E_INPUT, "%s: no diffusion_pytorch_model.safetensors (nor .bin, nor their .fp16 "
                        "variants) beside config.json", folder);
    free(vae_dir);
    if (st) {
        free(cfg);
        return st;
    }
    *config = cfg;
    return LATUP_OK;
}

/* A number member of config.json: *v, or *present 0 when absent or null. */
static latup_status config_number(const char *path, const latup_json *root, const char *key, double *v, int *present) {
    const latup_json *j = latup_json_get(root, key);
    *present = 0;
    if (!j || j->type == LATUP_JSON_NULL) return LATUP_OK;
    if (j->type != LATUP_JSON_INT && j->type != LATUP_JSON_REAL)
        return latup_fail(LATUP_E_INPUT, "%s: %s is %s, expected a number", path, key, latup_json_type_name(j->type));
    *v = j->type == LATUP_JSON_INT ? (double)j->u.i : j->u.d;
    *present = 1;
    return LATUP_OK;
}

/* config.json: the class, the latent scaling (diffusers' scaling_factor and shift_factor, the
 * numbers the pipeline divided its latents by), and the latent channels to check the weights by. */
static latup_status read_folder_config(latup_vae *v, const char *path, int *latent_channels) {
    uint8_t *buf;
    size_t len;
    TRY(latup_read_file(path, VAE_CONFIG_MAX, &buf, &len));
    latup_json_doc doc;
    latup_status st = latup_json_parse((const char *)buf, len, 100000, &doc);
    free(buf);
    if (st) {
        latup_error_prefix(path);
        return st;
    }
    const latup_json *root = doc.root, *cls = latup_json_get(root, "_class_name");
    double scaling = 0, shift = 0, chans = 0;
    int has_scaling = 0, has_shift = 0, has_chans = 0;
    if (root->type != LATUP_JSON_OBJECT)
        st = latup_fail(LATUP_E_INPUT, "%s: %s, expected a JSON object", path, latup_json_type_name(root->type));
    else if (cls && cls->type != LATUP_JSON_STRING)
        st = latup_fail(LATUP_E_INPUT, "%s: _class_name is %s, expected a string", path, latup_json_type_name(cls->type));
    else if (cls && strncmp(cls->u.str.s, "AutoencoderKL", 13))
        st = latup_fail(LATUP_E_INPUT, "%s: _class_name is '%s', not an AutoencoderKL: give the VAE's folder (a "
                        "pipeline's vae/)", path, cls->u.str.s);
    if (!st) st = config_number(path, root, "scaling_factor", &scaling, &has_scaling);
    if (!st) st = config_number(path, root, "shift_factor", &shift, &has_shift);
    if (!st) st = config_number(path, root, "latent_channels", &chans, &has_chans);
    latup_json_free(&doc);
    if (st) return st;
    /* compared as doubles first: converting one past FLT_MAX to float is undefined */
    if (has_scaling && !(scaling > 0 && scaling <= FLT_MAX && (float)scaling > 0))
        return latup_fail(LATUP_E_INPUT, "%s: scaling_factor %g: a latent is divided by it, so it must be a positive "
                          "finite float", path, scaling);
    if (has_shift && !(fabs(shift) <= FLT_MAX))
        return latup_fail(LATUP_E_INPUT, "%s: shift_factor %g is not a finite float", path, shift);
    *latent_channels = has_chans && chans >= 1 && chans <= VAE_MAX_Z && chans == floor(chans) ? (int)chans
                       : has_chans ? -1 : 0;
    if (*latent_channels < 0)
        return latup_fail(LATUP_E_INPUT, "%s: latent_channels %g: a VAE has 1 to %d", path, chans, VAE_MAX_Z);
    if (has_scaling) {
        if (!(v->space_name = latup_malloc(strlen(path) + 1, "a file name"))) return LATUP_E_NOMEM;
        memcpy(v->space_name, path, strlen(path) + 1);
        v->space = (latup_latent_family){v->space_name, (float)scaling, has_shift ? (float)shift : 0.0f, 0};
    }
    return LATUP_OK;
}

static latup_status load_weights(latup_vae *v, const char *path, int *latent_channels) {
    *latent_channels = 0;
    if (strcmp(path, "-") == 0 || !stat_is(path, 1)) return latup_weights_load(path, &v->weights);
    char *weights, *config;
    TRY(find_folder_files(path, &weights, &config));
    latup_status st = read_folder_config(v, config, latent_channels);
    if (!st) st = latup_weights_load(weights, &v->weights);
    free(weights), free(config);
    return st;
}

/* The prefix ("", "first_stage_model.", "vae.") and the config of the parts in `want`; those in
 * `required` must be there, the others are loaded when the file holds them. */
static latup_status infer_config(const latup_weights *w, int want, int required, latup_vae_config *c) {
    memset(c, 0, sizeof *c);
    c->groups = GN_GROUPS, c->eps = GN_EPS;
    int found = 0;
    for (size_t i = 0; i < sizeof PREFIXES / sizeof PREFIXES[0] && !found; i++)
        if (want & LATUP_VAE_DECODER ? has(w, "%sdecoder.conv_in.weight", PREFIXES[i])
                                     : encoder_present(w, PREFIXES[i]) != LATUP_VAE_ENCODER_NONE) {
            snprintf(c->prefix, sizeof c->prefix, "%s", PREFIXES[i]);
            found = 1;
        }
    if (!found && want & LATUP_VAE_DECODER)
        return latup_fail(LATUP_E_INPUT, "%s: no 'decoder.conv_in.weight' (flat, or under 'first_stage_model.' or 'vae.'): not a VAE checkpoint", w->path);
    if (!found)
        return latup_fail(LATUP_E_INPUT, "%s: no VAE encoder ('encoder.conv_out.weight', or 'encoder.weight' for a "
                          "patch code; flat, or under 'first_stage_model.' or 'vae.')", w->path);
    if (want & LATUP_VAE_DECODER) TRY(infer_decoder(w, c));
    if (want & LATUP_VAE_ENCODER) {
        if (encoder_present(w, c->prefix) != LATUP_VAE_ENCODER_NONE)
            TRY(infer_encoder(w, c));
        else if (required & LATUP_VAE_ENCODER)
            return latup_fail(LATUP_E_INPUT, "%s: no VAE encoder ('%sencoder.conv_out.weight', or '%sencoder.weight' "
                              "for a patch code): the file holds the decoder only", w->path, c->prefix, c->prefix);
    }
    return LATUP_OK;
}

/* Parameters bound so far that were not counted yet (a part's count, bound after the last). */
static int64_t count_new(const latup_binder *bd, unsigned char *counted) {
    int64_t n = 0;
    for (int i = 0; i < bd->w->n; i++)
        if (bd->used[i] && !counted[i]) counted[i] = 1, n += bd->w->t[i].numel;
    return n;
}

static latup_status load(const char *path, int want, int required, latup_vae **out) {
    latup_vae *v = latup_calloc(1, sizeof *v, "VAE");
    if (!v) return LATUP_E_NOMEM;
    int latent_channels;
    latup_status st = load_weights(v, path, &latent_channels);
    if (st == LATUP_OK) st = infer_config(&v->weights, want, required, &v->cfg);
    if (st == LATUP_OK && latent_channels && latent_channels != v->cfg.z_channels)
        st = latup_fail(LATUP_E_INPUT, "%s: config.json says latent_channels %d, the %s in %s takes %d", path,
                        latent_channels, v->cfg.has_decoder ? "decoder" : "encoder", v->weights.path,
                        v->cfg.z_channels);
    if (st == LATUP_OK && v->space_name) v->space.channels = v->cfg.z_channels;
    latup_binder bd = {0};
    unsigned char *counted = NULL;
    if (st == LATUP_OK) st = latup_binder_init(&bd, &v->weights);
    if (st == LATUP_OK && !(counted = latup_calloc((size_t)(v->weights.n > 0 ? v->weights.n : 1), 1, "tensor bookkeeping")))
        st = LATUP_E_NOMEM;
    /* each part's parameter count: what it bound (tensors of parts not loaded are never fetched) */
    if (st == LATUP_OK && v->cfg.has_decoder) st = bind_decoder(v, &bd);
    if (st == LATUP_OK) v->cfg.n_params = count_new(&bd, counted);
    if (st == LATUP_OK && v->cfg.encoder != LATUP_VAE_ENCODER_NONE) st = bind_encoder(v, &bd);
    if (st == LATUP_OK) v->cfg.enc_params = count_new(&bd, counted);
    if (st == LATUP_OK) {
        latup_weights_release_source(&v->weights); /* a read (gzip'd) file: only the bound copies stay */
        v->resident = latup_weights_resident_bytes(&v->weights);
        v->tag = LATUP_VAE_TAG;
    }
    free(counted);
    latup_binder_free(&bd);
    if (st != LATUP_OK) {
        latup_vae_free(v);
        return st;
    }
    *out = v;
    return LATUP_OK;
}

latup_status latup_vae_load(const char *path, latup_vae **out) {
    LATUP_NEED(out);
    *out = NULL;
    LATUP_NEED(path);
    return load(path, LATUP_VAE_DECODER | LATUP_VAE_ENCODER, LATUP_VAE_DECODER, out);
}

latup_status latup_vae_load_parts(const char *path, int parts, latup_vae **out) {
    LATUP_NEED(out);
    *out = NULL;
    LATUP_NEED(path);
    if (parts < LATUP_VAE_DECODER || parts > (LATUP_VAE_DECODER | LATUP_VAE_ENCODER))
        return latup_fail(LATUP_E_USAGE, "latup_vae_load_parts: parts %d, expected LATUP_VAE_DECODER (1), "
                          "LATUP_VAE_ENCODER (2) or both (3)", parts);
    return load(path, parts, parts, out);
}

const char *latup_vae_encoder_name(latup_vae_encoder_kind k) {
    switch (k) {
    case LATUP_VAE_ENCODER_NONE: return "none";
    case LATUP_VAE_ENCODER_LDM: return "ldm";
    case LATUP_VAE_ENCODER_PATCH: return "patch";
    }
    return "unknown";
}

latup_status latup_vae_check(const latup_vae *v, const char *func, const char *arg) {
    if (!v) return latup_null_arg(func, arg);
    if (v->tag != LATUP_VAE_TAG)
        return latup_fail(LATUP_E_USAGE, "%s: %s is not a VAE from latup_vae_load (another type of handle?)", func,
                          arg);
    return LATUP_OK;
}

latup_status latup_vae_check_decoder(const latup_vae *v) {
    if (v->cfg.has_decoder) return LATUP_OK;
    return latup_fail(LATUP_E_USAGE, "%s: VAE loaded without its decoder (latup_vae_load_parts with "
                      "LATUP_VAE_DECODER, or latup_vae_load, loads it)", v->weights.path);
}

latup_status latup_vae_check_encoder(const latup_vae *v) {
    if (v->cfg.encoder != LATUP_VAE_ENCODER_NONE) return LATUP_OK;
    return latup_fail(LATUP_E_USAGE, "%s: VAE loaded without an encoder (%s)", v->weights.path,
                      v->cfg.has_decoder ? "the file holds none, or latup_vae_load_parts left it out"
                                         : "latup_vae_load_parts without LATUP_VAE_ENCODER");
}

void latup_vae_free(latup_vae *v) {
    if (!v || (v->tag != LATUP_VAE_TAG && v->tag != 0)) return; /* 0: a load that failed half-way */
    v->tag = 0;
    latup_gpu_vae_release(v);
    latup_weights_free(&v->weights);
    free(v->space_name);
    free(v);
}

const latup_latent_family *latup_vae_latent_family(const latup_vae *v) {
    return v && v->tag == LATUP_VAE_TAG && v->space_name ? &v->space : NULL;
}

const latup_vae_config *latup_vae_get_config(const latup_vae *v) {
    return v && v->tag == LATUP_VAE_TAG ? &v->cfg : NULL;
}

const char *latup_vae_naming_name(latup_vae_naming n) {
    switch (n) {
    case LATUP_VAE_NAMES_LDM: return "ldm (original)";
    case LATUP_VAE_NAMES_DIFFUSERS: return "diffusers";
    case LATUP_VAE_NAMES_DIFFUSERS_OLD: return "diffusers (old attention names)";
    }
    return "unknown";
}

const char *latup_vae_family_guess(const latup_vae_config *c) {
    if (!c) return "unknown family";
    if (c->z_channels == 4 && c->has_post_quant_conv) return "SD 1.x/2.x or SDXL (4 channels, post_quant_conv)";
    if (c->z_channels == 16 && !c->has_post_quant_conv) return "SD3 or FLUX.1 (16 channels, no post_quant_conv)";
    return "unknown family";
}
