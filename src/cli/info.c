/* info.c — `latup info FILE`: what a checkpoint holds (format, tensors, dtypes, parameters) and
 * the model latup infers from it (LUA, SwinIR, a VAE decoder), or the shape of a latent. */
#include "cli.h"
#include "jsonw.h"

#include <stdio.h>
#include <string.h>

/* Each fact is a "key:  value" line, or with --json a member of one JSON object with a value of
 * its own type; the line may say more than the member (units, notes), in `text`. */
typedef struct {
    FILE *f;
    cli_json *json; /* NULL: text */
} printer;

static void line(const printer *p, const char *key, const char *text) {
    char k[32];
    snprintf(k, sizeof k, "%s:", key);
    fprintf(p->f, "%-14s%s\n", k, text);
}

static void str_field(printer *p, const char *key, const char *s) {
    if (p->json) cli_json_str(p->json, key, s);
    else line(p, key, s);
}

/* text NULL: the number alone */
static void int_field(printer *p, const char *key, long long v, const char *text) {
    char b[32];
    snprintf(b, sizeof b, "%lld", v);
    if (p->json) cli_json_int(p->json, key, v);
    else line(p, key, text ? text : b);
}

/* "[x2, x4]" with prefix "x" */
static void int_list(char *buf, size_t n, const int *v, int k, const char *prefix) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < k && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%s%d", i ? ", " : "", prefix, v[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

/* text NULL: the list, each number after prefix */
static void list_field(printer *p, const char *key, const int *v, int k, const char *prefix, const char *text) {
    if (p->json) {
        cli_json_array(p->json, key);
        for (int i = 0; i < k; i++) cli_json_int(p->json, NULL, v[i]);
        cli_json_end(p->json);
        return;
    }
    char b[256];
    int_list(b, sizeof b, v, k, prefix);
    line(p, key, text ? text : b);
}

static void print_lua(printer *p, const latup_lua_config *c) {
    char b[256];
    const int lua = c->tail == LATUP_TAIL_LUA_HEADS;
    if (p->json) cli_json_str(p->json, "kind", lua ? "lua" : "swinir");
    str_field(p, "model", lua ? "LUA (SwinIR trunk + multi-scale pixel-shuffle heads)" : "SwinIR (pixel-space super-resolution)");
    int_field(p, "parameters", c->n_params, NULL);
    snprintf(b, sizeof b, "in %d, out %d%s", c->in_chans, c->out_chans,
             c->has_mean ? " (RGB: DIV2K mean subtracted and added back)" : "");
    list_field(p, "channels", (const int[]){c->in_chans, c->out_chans}, 2, "", b);
    int_field(p, "embed dim", c->embed_dim, NULL);
    list_field(p, "depths", c->depths, c->num_layers, "", NULL);
    list_field(p, "heads", c->num_heads, c->num_layers, "", NULL);
    snprintf(b, sizeof b, "%d (shift %d)", c->window_size, c->window_size / 2);
    int_field(p, "window", c->window_size, b);
    int_field(p, "mlp hidden", c->mlp_hidden, NULL);
    snprintf(b, sizeof b, "%s", latup_tail_name(c->tail));
    if (c->head_feat && !p->json) snprintf(b + strlen(b), sizeof b - strlen(b), ", width %d", c->head_feat);
    str_field(p, "tail", b);
    list_field(p, "scales", c->scales, c->n_scales, "x", NULL);
}

/* The encoder the file holds (latup_vae_load loads it when it is all there): its kind, its
 * levels or patch, quant_conv and parameters; one "encoder" object in JSON. */
static void print_encoder(printer *p, const latup_vae_config *c) {
    const char *kind = latup_vae_encoder_name(c->encoder);
    const int ldm = c->encoder == LATUP_VAE_ENCODER_LDM, patch = c->encoder == LATUP_VAE_ENCODER_PATCH;
    const int f = patch ? c->enc_patch : ldm ? 1 << (c->enc_n_levels - 1) : 0;
    if (p->json) {
        cli_json_object(p->json, "encoder");
        cli_json_str(p->json, "kind", kind);
        if (ldm) {
            cli_json_array(p->json, "levels");
            for (int i = 0; i < c->enc_n_levels; i++) cli_json_int(p->json, NULL, c->enc_channels[i]);
            cli_json_end(p->json);
            cli_json_int(p->json, "resnets", c->enc_blocks_per_level);
        }
        if (patch) cli_json_int(p->json, "patch", c->enc_patch);
        if (ldm || patch) {
            cli_json_int(p->json, "downsampling", f);
            cli_json_bool(p->json, "quant_conv", c->has_quant_conv);
            cli_json_int(p->json, "parameters", c->enc_params);
        }
        cli_json_end(p->json);
        return;
    }
    char b[256], lv[160];
    if (ldm) {
        int_list(lv, sizeof lv, c->enc_channels, c->enc_n_levels, "");
        snprintf(b, sizeof b, "ldm, levels %s, %d resnet%s per level, x%d downsampling, quant_conv %s, %lld parameters",
                 lv, c->enc_blocks_per_level, c->enc_blocks_per_level == 1 ? "" : "s", f, c->has_quant_conv ? "yes" : "no",
                 (long long)c->enc_params);
    } else if (patch) {
        snprintf(b, sizeof b, "patch: one %dx%d stride-%d conv to %d channels (mean, log-variance), quant_conv %s, %lld "
                 "parameters", f, f, f, 2 * c->z_channels, c->has_quant_conv ? "yes" : "no", (long long)c->enc_params);
    } else {
        snprintf(b, sizeof b, "none (decode only: 'latup encode' needs a file holding encoder.*)");
    }
    line(p, "encoder", b);
}

static void print_vae(printer *p, const latup_vae_config *c) {
    char b[256];
    if (p->json) cli_json_str(p->json, "kind", "vae");
    str_field(p, "model", c->encoder ? "VAE decoder and encoder (AutoencoderKL)" : "VAE decoder (AutoencoderKL)");
    str_field(p, "family", latup_vae_family_guess(c));
    if (p->json) {
        cli_json_str(p->json, "naming", latup_vae_naming_name(c->naming));
        cli_json_str(p->json, "prefix", c->prefix);
    } else {
        snprintf(b, sizeof b, "%s%s%s", latup_vae_naming_name(c->naming), c->prefix[0] ? ", under " : "", c->prefix);
        line(p, "naming", b);
    }
    snprintf(b, sizeof b, "%lld (decoder)", (long long)c->n_params);
    int_field(p, "parameters", c->n_params, b);
    snprintf(b, sizeof b, "latent %d -> image %d", c->z_channels, c->out_channels);
    list_field(p, "channels", (const int[]){c->z_channels, c->out_channels}, 2, "", b);
    if (p->json) cli_json_bool(p->json, "post_quant_conv", c->has_post_quant_conv);
    else line(p, "post_quant_conv", c->has_post_quant_conv ? "yes" : "no");
    list_field(p, "levels", c->channels, c->n_levels, "", NULL);
    snprintf(b, sizeof b, "%d per level", c->blocks_per_level);
    int_field(p, "resnets", c->blocks_per_level, b);
    snprintf(b, sizeof b, "x%d", 1 << (c->n_levels - 1));
    int_field(p, "upsampling", 1 << (c->n_levels - 1), b);
    print_encoder(p, c);
}

static void print_shape(printer *p, const char *key, const latup_tensor *t) {
    char b[128];
    if (!p->json) {
        line(p, key, latup_shape_str(b, sizeof b, t->ndim, t->shape));
        return;
    }
    cli_json_array(p->json, key);
    for (int d = 0; d < t->ndim; d++) cli_json_int(p->json, NULL, t->shape[d]);
    cli_json_end(p->json);
}

/* The one JSON object, opened once the file has been read (an error prints nothing on stdout). */
static void begin(printer *p) {
    if (p->json) cli_json_object(p->json, NULL);
}

/* The JSON object closed and checked: a misuse is a bug in latup, reported as one. */
static int finish(printer *p) {
    if (!p->json) return 0;
    cli_json_end(p->json);
    const char *bad = cli_json_finish(p->json);
    return bad ? cli_fail(latup_set_error(LATUP_E_INTERNAL, "--json: %s (a bug in latup)", bad)) : 0;
}

int cli_info(int argc, char **argv) {
    cli_args a;
    int rc = cli_parse(&CLI_CMD_INFO, argc, argv, &a, stdout, stderr);
    if (rc >= 0) return rc;
    const char *path = a.pos[0];
    cli_json json;
    printer p = {stdout, cli_given(&a, "--json") ? &json : NULL};
    if (p.json) cli_json_start(p.json, p.f);
    char b[256];
    latup_checkpoint_info ci;
    latup_status st = latup_checkpoint_info_read(path, &ci);
    if (st == LATUP_E_INPUT) { /* not a checkpoint: perhaps a latent (.npy, PNG) */
        char why[1024];
        snprintf(why, sizeof why, "%s", latup_last_error());
        latup_tensor t;
        latup_file_kind kind;
        if (latup_tensor_read(path, NULL, &t, &kind) != LATUP_OK) {
            latup_set_error(LATUP_E_INPUT, "%s", why);
            return cli_fail(LATUP_E_INPUT);
        }
        begin(&p);
        str_field(&p, "file", path);
        str_field(&p, "format", kind == LATUP_FILE_PNG ? "PNG" : ".npy");
        if (p.json) cli_json_str(p.json, "kind", "tensor");
        print_shape(&p, "tensor", &t);
        latup_tensor_free(&t);
        return finish(&p);
    }
    if (st) return cli_fail(st);
    begin(&p);
    str_field(&p, "file", path);
    str_field(&p, "format", ci.format);
    if (ci.wrapper[0] || p.json) str_field(&p, "state dict", ci.wrapper);
    const char *names[4] = {"F32", "F16", "BF16", "I64"};
    const int counts[4] = {ci.n_f32, ci.n_f16, ci.n_bf16, ci.n_i64};
    if (p.json) {
        cli_json_int(p.json, "tensors", ci.n_tensors);
        cli_json_object(p.json, "dtypes");
        for (int d = 0; d < 4; d++) cli_json_int(p.json, names[d], counts[d]);
        cli_json_end(p.json);
    } else {
        size_t o = (size_t)snprintf(b, sizeof b, "%d (", ci.n_tensors);
        for (int d = 0, first = 1; d < 4; d++)
            if (counts[d]) o += (size_t)snprintf(b + o, sizeof b - o, "%s%d %s", first ? "" : ", ", counts[d], names[d]), first = 0;
        snprintf(b + o, sizeof b - o, ")");
        line(&p, "tensors", b);
    }
    snprintf(b, sizeof b, "%lld (all tensors, buffers included)", (long long)ci.n_elements);
    int_field(&p, "elements", ci.n_elements, b);

    latup_lua *m = NULL;
    latup_vae *v = NULL;
    char why_lua[512] = "";
    if (ci.has_latent) {
        latup_tensor t;
        if ((st = latup_tensor_read(path, NULL, &t, NULL))) return cli_fail(st);
        if (p.json) cli_json_str(p.json, "kind", "latent");
        str_field(&p, "model", "none: a latent (ComfyUI .latent, 'latent_tensor')");
        print_shape(&p, "latent", &t);
        latup_tensor_free(&t);
    } else if (latup_lua_load(path, &m) == LATUP_OK) {
        print_lua(&p, latup_lua_get_config(m));
        latup_lua_free(m);
    } else if ((snprintf(why_lua, sizeof why_lua, "%s", latup_last_error()), latup_vae_load(path, &v)) == LATUP_OK) {
        print_vae(&p, latup_vae_get_config(v));
        latup_vae_free(v);
    } else {
        if (p.json) cli_json_str(p.json, "kind", "none");
        snprintf(b, sizeof b, "not a model latup runs (LUA, SwinIR or VAE): %.200s", why_lua);
        str_field(&p, "model", b);
    }
    return finish(&p);
}
