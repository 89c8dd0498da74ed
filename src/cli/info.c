/* info.c — `latup info FILE`: what a checkpoint holds (format, tensors, dtypes, parameters) and
 * the model latup infers from it (LUA, SwinIR, a VAE decoder), or the shape of a latent. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    FILE *f;
    int json, first;
} printer;

/* One "key: value" line, or one JSON member (value already JSON when raw). */
static void field(printer *p, const char *key, const char *value, int raw) {
    if (!p->json) {
        char k[32];
        snprintf(k, sizeof k, "%s:", key);
        fprintf(p->f, "%-14s%s\n", k, value);
        return;
    }
    fprintf(p->f, "%s", p->first ? "" : ", ");
    p->first = 0;
    cli_json_string(p->f, key);
    fprintf(p->f, ": ");
    if (raw) fputs(value, p->f);
    else cli_json_string(p->f, value);
}

static void int_list(char *buf, size_t n, const int *v, int k, const char *prefix, int json) {
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < k && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%s%d", i ? ", " : "", json ? "" : prefix, v[i]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

static void print_lua(printer *p, const latup_lua_config *c) {
    char b[256];
    const int lua = c->tail == LATUP_TAIL_LUA_HEADS;
    if (p->json) field(p, "kind", lua ? "lua" : "swinir", 0);
    field(p, "model", lua ? "LUA (SwinIR trunk + multi-scale pixel-shuffle heads)" : "SwinIR (pixel-space super-resolution)", 0);
    snprintf(b, sizeof b, "%lld", (long long)c->n_params);
    field(p, "parameters", b, 1);
    if (p->json)
        snprintf(b, sizeof b, "[%d, %d]", c->in_chans, c->out_chans);
    else
        snprintf(b, sizeof b, "in %d, out %d%s", c->in_chans, c->out_chans,
                 c->has_mean ? " (RGB: DIV2K mean subtracted and added back)" : "");
    field(p, "channels", b, 1);
    snprintf(b, sizeof b, "%d", c->embed_dim);
    field(p, "embed dim", b, 1);
    int_list(b, sizeof b, c->depths, c->num_layers, "", p->json);
    field(p, "depths", b, 1);
    int_list(b, sizeof b, c->num_heads, c->num_layers, "", p->json);
    field(p, "heads", b, 1);
    snprintf(b, sizeof b, p->json ? "%d" : "%d (shift %d)", c->window_size, c->window_size / 2);
    field(p, "window", b, 1);
    snprintf(b, sizeof b, "%d", c->mlp_hidden);
    field(p, "mlp hidden", b, 1);
    if (p->json) {
        field(p, "tail", latup_tail_name(c->tail), 0);
    } else {
        snprintf(b, sizeof b, "%s", latup_tail_name(c->tail));
        if (c->head_feat) snprintf(b + strlen(b), sizeof b - strlen(b), ", width %d", c->head_feat);
        field(p, "tail", b, 1);
    }
    int_list(b, sizeof b, c->scales, c->n_scales, "x", p->json);
    field(p, "scales", b, 1);
}

static void print_vae(printer *p, const latup_vae_config *c) {
    char b[256];
    if (p->json) field(p, "kind", "vae", 0);
    field(p, "model", "VAE decoder (AutoencoderKL)", 0);
    field(p, "family", latup_vae_family_guess(c), 0);
    if (p->json) {
        field(p, "naming", latup_vae_naming_name(c->naming), 0);
        field(p, "prefix", c->prefix, 0);
    } else {
        snprintf(b, sizeof b, "%s%s%s", latup_vae_naming_name(c->naming), c->prefix[0] ? ", under " : "", c->prefix);
        field(p, "naming", b, 1);
    }
    snprintf(b, sizeof b, p->json ? "%lld" : "%lld (decoder)", (long long)c->n_params);
    field(p, "parameters", b, 1);
    snprintf(b, sizeof b, p->json ? "[%d, %d]" : "latent %d -> image %d", c->z_channels, c->out_channels);
    field(p, "channels", b, 1);
    field(p, "post_quant_conv", c->has_post_quant_conv ? (p->json ? "true" : "yes") : (p->json ? "false" : "no"), 1);
    int_list(b, sizeof b, c->channels, c->n_levels, "", p->json);
    field(p, "levels", b, 1);
    snprintf(b, sizeof b, p->json ? "%d" : "%d per level", c->blocks_per_level);
    field(p, "resnets", b, 1);
    snprintf(b, sizeof b, p->json ? "%d" : "x%d", 1 << (c->n_levels - 1));
    field(p, "upsampling", b, 1);
}

static void print_shape(printer *p, const char *key, const latup_tensor *t) {
    char b[128];
    if (!p->json) {
        field(p, key, latup_shape_str(b, sizeof b, t->ndim, t->shape), 1);
        return;
    }
    size_t o = (size_t)snprintf(b, sizeof b, "[");
    for (int d = 0; d < t->ndim; d++) o += (size_t)snprintf(b + o, sizeof b - o, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    snprintf(b + o, sizeof b - o, "]");
    field(p, key, b, 1);
}

int cli_info(int argc, char **argv) {
    cli_args a;
    int rc = cli_parse(&CLI_CMD_INFO, argc, argv, &a, stdout, stderr);
    if (rc >= 0) return rc;
    const char *path = a.pos[0];
    printer p = {stdout, cli_given(&a, "--json"), 1};
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
        if (p.json) fputc('{', p.f);
        field(&p, "file", path, 0);
        field(&p, "format", kind == LATUP_FILE_PNG ? "PNG" : ".npy", 0);
        if (p.json) field(&p, "kind", "tensor", 0);
        print_shape(&p, "tensor", &t);
        if (p.json) fputs("}\n", p.f);
        latup_tensor_free(&t);
        return 0;
    }
    if (st) return cli_fail(st);
    if (p.json) fputc('{', p.f);
    field(&p, "file", path, 0);
    field(&p, "format", ci.format, 0);
    if (ci.wrapper[0] || p.json) field(&p, "state dict", ci.wrapper, 0);
    if (p.json) {
        snprintf(b, sizeof b, "%d", ci.n_tensors);
        field(&p, "tensors", b, 1);
        snprintf(b, sizeof b, "{\"F32\": %d, \"F16\": %d, \"BF16\": %d, \"I64\": %d}", ci.n_f32, ci.n_f16, ci.n_bf16,
                 ci.n_i64);
        field(&p, "dtypes", b, 1);
    } else {
        size_t o = (size_t)snprintf(b, sizeof b, "%d (", ci.n_tensors);
        const char *names[4] = {"F32", "F16", "BF16", "I64"};
        const int counts[4] = {ci.n_f32, ci.n_f16, ci.n_bf16, ci.n_i64};
        for (int d = 0, first = 1; d < 4; d++)
            if (counts[d]) o += (size_t)snprintf(b + o, sizeof b - o, "%s%d %s", first ? "" : ", ", counts[d], names[d]), first = 0;
        snprintf(b + o, sizeof b - o, ")");
        field(&p, "tensors", b, 1);
    }
    snprintf(b, sizeof b, p.json ? "%lld" : "%lld (all tensors, buffers included)", (long long)ci.n_elements);
    field(&p, "elements", b, 1);

    latup_lua *m = NULL;
    latup_vae *v = NULL;
    char why_lua[512] = "";
    if (ci.has_latent) {
        latup_tensor t;
        if ((st = latup_tensor_read(path, NULL, &t, NULL))) return cli_fail(st);
        if (p.json) field(&p, "kind", "latent", 0);
        field(&p, "model", "none: a latent (ComfyUI .latent, 'latent_tensor')", 0);
        print_shape(&p, "latent", &t);
        latup_tensor_free(&t);
    } else if (latup_lua_load(path, &m) == LATUP_OK) {
        print_lua(&p, latup_lua_get_config(m));
        latup_lua_free(m);
    } else if ((snprintf(why_lua, sizeof why_lua, "%s", latup_last_error()), latup_vae_load(path, &v)) == LATUP_OK) {
        print_vae(&p, latup_vae_get_config(v));
        latup_vae_free(v);
    } else {
        if (p.json) field(&p, "kind", "none", 0);
        snprintf(b, sizeof b, "not a model latup runs (LUA, SwinIR or VAE): %.200s", why_lua);
        field(&p, "model", b, 0);
    }
    if (p.json) fputs("}\n", p.f);
    return 0;
}
