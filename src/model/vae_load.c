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
typedef enum { M_POST_QUANT, M_CONV_IN, M_MID_RESNET, M_MID_ATTN, M_UP_RESNET, M_UPSAMPLE, M_NORM_OUT, M_CONV_OUT } module_kind;

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

static latup_status infer_vae_config(const latup_weights *w, latup_vae_config *c) {
    static const char *prefixes[] = {"", "first_stage_model.", "vae."};
    char name[256];
    int64_t s[4];
    memset(c, 0, sizeof *c);
    c->groups = GN_GROUPS, c->eps = GN_EPS;
    int found = 0;
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0] && !found; i++)
        if (has(w, "%sdecoder.conv_in.weight", prefixes[i])) {
            snprintf(c->prefix, sizeof c->prefix, "%s", prefixes[i]);
            found = 1;
        }
    if (!found)
        return latup_fail(LATUP_E_INPUT, "%s: no 'decoder.conv_in.weight' (flat, or under 'first_stage_model.' or 'vae.'): not a VAE checkpoint", w->path);
    const char *p = c->prefix;
    if (has(w, "%sdecoder.mid.block_1.conv1.weight", p)) {
        c->naming = LATUP_VAE_NAMES_LDM;
        snprintf(name, sizeof name, "%sdecoder.up.", p);
    } else if (has(w, "%sdecoder.mid_block.resnets.0.conv1.weight", p)) {
        c->naming = has(w, "%sdecoder.mid_block.attentions.0.query.weight", p) ? LATUP_VAE_NAMES_DIFFUSERS_OLD
                                                                                : LATUP_VAE_NAMES_DIFFUSERS;
        snprintf(name, sizeof name, "%sdecoder.up_blocks.", p);
    } else {
        return latup_fail(LATUP_E_INPUT, "%s: missing tensor '%sdecoder.mid.block_1.conv1.weight' (ldm names) or "
                          "'%sdecoder.mid_block.resnets.0.conv1.weight' (diffusers names)", w->path, p, p);
    }
    c->n_levels = latup_weights_max_index(w, name) + 1;
    if (c->n_levels < 1 || c->n_levels > LATUP_VAE_MAX_LEVELS)
        return latup_fail(LATUP_E_INPUT, "%s: %d decoder up levels found under '%s', expected 1..%d", w->path,
                          c->n_levels, name, LATUP_VAE_MAX_LEVELS);
    char mod[200];
    vae_module_name(mod, sizeof mod, c, M_CONV_IN, 0, 0);
    TRY(conv_shape(w, mod, s));
    snprintf(name, sizeof name, "%s.weight", mod);
    TRY(latup_config_dim(w, name, "latent channels", s[1], 1, VAE_MAX_Z));
    TRY(latup_config_dim(w, name, "output channels", s[0], 1, VAE_MAX_WIDTH));
    c->z_channels = (int)s[1];
    /* blocks per level, from level 0 (ldm "up.0.block.", diffusers "up_blocks.<n-1>.resnets.") */
    vae_module_name(mod, sizeof mod, c, M_UP_RESNET, 0, 0);
    mod[strlen(mod) - 1] = '\0'; /* "...block." / "...resnets." */
    c->blocks_per_level = latup_weights_max_index(w, mod) + 1;
    if (c->blocks_per_level < 1 || c->blocks_per_level > 8)
        return latup_fail(LATUP_E_INPUT, "%s: %d ResnetBlocks per level found under '%s', expected 1..8", w->path,
                          c->blocks_per_level, mod);
    for (int L = 0; L < c->n_levels; L++) {
        vae_module_name(mod, sizeof mod, c, M_UP_RESNET, L, 0);
        snprintf(name, sizeof name, "%s.conv1", mod);
        TRY(conv_shape(w, name, s));
        char full[272];
        snprintf(full, sizeof full, "%s.weight", name);
        TRY(latup_config_dim(w, full, "channels", s[0], 1, VAE_MAX_WIDTH));
        c->channels[L] = (int)s[0];
        if (c->channels[L] % c->groups != 0)
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s.weight': %d channels, not a multiple of %d GroupNorm groups",
                              w->path, name, c->channels[L], c->groups);
    }
    vae_module_name(mod, sizeof mod, c, M_CONV_OUT, 0, 0);
    TRY(conv_shape(w, mod, s));
    snprintf(name, sizeof name, "%s.weight", mod);
    TRY(latup_config_dim(w, name, "image channels", s[0], 1, VAE_MAX_OUT));
    c->out_channels = (int)s[0];
    vae_module_name(mod, sizeof mod, c, M_POST_QUANT, 0, 0);
    snprintf(name, sizeof name, "%s.weight", mod);
    c->has_post_quant_conv = latup_weights_find(w, name) != NULL;
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

static latup_status bind_vae(latup_vae *v, latup_binder *bd) {
    const latup_vae_config *c = &v->cfg;
    const int ldm = c->naming == LATUP_VAE_NAMES_LDM, top = c->channels[c->n_levels - 1];
    char mod[200], name[256];
    if (c->has_post_quant_conv) {
        vae_module_name(mod, sizeof mod, c, M_POST_QUANT, 0, 0);
        TRY(latup_bind_conv(bd, &v->post_quant_conv, c->z_channels, c->z_channels, 1, mod));
    }
    vae_module_name(mod, sizeof mod, c, M_CONV_IN, 0, 0);
    TRY(latup_bind_conv(bd, &v->conv_in, c->z_channels, top, 3, mod));
    vae_module_name(mod, sizeof mod, c, M_MID_RESNET, 0, 0);
    TRY(bind_resnet(bd, &v->mid_block_1, top, top, c->eps, mod, ldm));
    vae_module_name(mod, sizeof mod, c, M_MID_ATTN, 0, 0);
    const char *const *an = ATTN_NAMES[c->naming];
    snprintf(name, sizeof name, "%s.%s", mod, an[0]);
    TRY(latup_bind_norm(bd, &v->mid_attn.norm, top, c->eps, name));
    TRY(bind_proj(bd, &v->mid_attn.q, top, mod, an[1]));
    TRY(bind_proj(bd, &v->mid_attn.k, top, mod, an[2]));
    TRY(bind_proj(bd, &v->mid_attn.v, top, mod, an[3]));
    TRY(bind_proj(bd, &v->mid_attn.proj_out, top, mod, an[4]));
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

latup_status latup_vae_load(const char *path, latup_vae **out) {
    LATUP_NEED(out);
    *out = NULL;
    LATUP_NEED(path);
    latup_vae *v = latup_calloc(1, sizeof *v, "VAE");
    if (!v) return LATUP_E_NOMEM;
    int latent_channels;
    latup_status st = load_weights(v, path, &latent_channels);
    if (st == LATUP_OK) st = infer_vae_config(&v->weights, &v->cfg);
    if (st == LATUP_OK && latent_channels && latent_channels != v->cfg.z_channels)
        st = latup_fail(LATUP_E_INPUT, "%s: config.json says latent_channels %d, the decoder in %s takes %d", path,
                        latent_channels, v->weights.path, v->cfg.z_channels);
    if (st == LATUP_OK && v->space_name) v->space.channels = v->cfg.z_channels;
    latup_binder bd = {0};
    if (st == LATUP_OK) st = latup_binder_init(&bd, &v->weights);
    if (st == LATUP_OK) st = bind_vae(v, &bd);
    if (st == LATUP_OK) {
        /* the decoder's parameter count: what it bound (encoder etc. ignored) */
        for (int i = 0; i < v->weights.n; i++)
            if (bd.used[i]) v->cfg.n_params += v->weights.t[i].numel;
        latup_weights_release_source(&v->weights); /* a read (gzip'd) file: only the bound copies stay */
        v->resident = latup_weights_resident_bytes(&v->weights);
        v->tag = LATUP_VAE_TAG;
    }
    latup_binder_free(&bd);
    if (st != LATUP_OK) {
        latup_vae_free(v);
        return st;
    }
    *out = v;
    return LATUP_OK;
}

latup_status latup_vae_check(const latup_vae *v, const char *func, const char *arg) {
    if (!v) return latup_null_arg(func, arg);
    if (v->tag != LATUP_VAE_TAG)
        return latup_fail(LATUP_E_USAGE, "%s: %s is not a VAE from latup_vae_load (another type of handle?)", func,
                          arg);
    return LATUP_OK;
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
