/* lua_load.c — loading a LUA (or SwinIR) checkpoint: the config inferred from tensor names and
 * shapes (docs/spec/lua.md, "Checkpoint layout"), then every layer struct bound to its
 * tensors with exact shapes; a tensor missing, misshapen or unexpected is an error naming it. */
#include "io/checkpoint.h"
#include "ops/kernels.h"
#include "model/device.h"
#include "model/lua_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-5f           /* nn.LayerNorm default; SwinIR never changes it */

/* Bounds on what config inference accepts. Released LUA and SwinIR models sit far inside them
 * (C 3..16, E 60..180, 6 heads, window 8, depth 6, hidden 2E); they exist so that a crafted file
 * can neither run with a zero width nor make the loader size tables past memory. */
#define LUA_MAX_CHANS 1024                     /* latent or image channels, in and out */
#define LUA_MAX_EMBED 4096                     /* E */
#define LUA_MAX_HEADS 64                       /* per RSTB */
#define LUA_MAX_HEAD_DIM 512                   /* E / heads */
#define LUA_MAX_WINDOW 32                      /* ws: N = ws^2 tokens per window */
#define LUA_MAX_DEPTH 64                       /* Swin blocks per RSTB */
#define LUA_MAX_HIDDEN 65536                   /* MLP width */
#define LUA_MAX_FEAT 4096                      /* head width F */
#define LUA_MAX_REL_BIAS ((int64_t)1 << 28)    /* floats in all [nH, N, N] attention tables (1 GiB) */

/* ---- config inference ------------------------------------------------------------------------ */


/* LUA: heads.x{S} for S in 2, 4, 8; width F from conv_before.0, C_out from conv_last. */
static latup_status infer_lua_heads(const latup_weights *w, latup_lua_config *c) {
    const latup_wtensor *t;
    char name[96];
    c->tail = LATUP_TAIL_LUA_HEADS;
    for (int s = 2; s <= 8; s *= 2) {
        snprintf(name, sizeof name, "heads.x%d.conv_before.0.weight", s);
        if (!latup_weights_find(w, name)) continue;
        TRY(latup_weights_require(w, name, 4, "LUA", &t));
        TRY(latup_config_dim(w, name, "head width", t->shape[0], 1, LUA_MAX_FEAT));
        if (c->n_scales == 0) c->head_feat = (int)t->shape[0];
        c->scales[c->n_scales++] = s;
        snprintf(name, sizeof name, "heads.x%d.conv_last.weight", s);
        TRY(latup_weights_require(w, name, 4, "LUA", &t));
        TRY(latup_config_dim(w, name, "output channels", t->shape[0], 1, LUA_MAX_CHANS));
        c->out_chans = (int)t->shape[0];
    }
    if (c->n_scales == 0)
        return latup_fail(LATUP_E_INPUT, "%s: no 'heads.x2.conv_before.0.weight' or 'heads.x4...': not a LUA checkpoint", w->path);
    return LATUP_OK;
}

/* SwinIR: "pixelshuffle" = conv_before_upsample.0 (E -> F) + upsample.{0,2,..} + conv_last, the
 * scale read off the stages (4F outputs: x2 each; one stage of 9F: x3); "pixelshuffledirect" =
 * upsample.0 alone, E -> C*r*r. */
static latup_status infer_swinir_tail(const latup_weights *w, latup_lua_config *c) {
    const latup_wtensor *t;
    int scale = 1;
    char name[96];
    if (latup_weights_find(w, "conv_before_upsample.0.weight")) {
        c->tail = LATUP_TAIL_PIXELSHUFFLE;
        TRY(latup_weights_require(w, "conv_before_upsample.0.weight", 4, "LUA", &t));
        TRY(latup_config_dim(w, "conv_before_upsample.0.weight", "head width", t->shape[0], 1, LUA_MAX_FEAT));
        const int F = (int)t->shape[0];
        c->head_feat = F;
        int stages = latup_weights_max_index(w, "upsample.") / 2 + 1;
        for (int k = 0; k < stages; k++) {
            snprintf(name, sizeof name, "upsample.%d.weight", 2 * k);
            TRY(latup_weights_require(w, name, 4, "LUA", &t));
            if (t->shape[0] == 4 * (int64_t)F && stages <= 3) scale *= 2;
            else if (t->shape[0] == 9 * (int64_t)F && stages == 1) scale = 3;
            else
                return latup_fail(LATUP_E_INPUT, "%s: tensor '%s' has %lld outputs, expected 4x%d (x2 stage) or 9x%d (a single x3 stage)",
                                  w->path, name, (long long)t->shape[0], F, F);
        }
        TRY(latup_weights_require(w, "conv_last.weight", 4, "LUA", &t));
        TRY(latup_config_dim(w, "conv_last.weight", "output channels", t->shape[0], 1, LUA_MAX_CHANS));
        c->out_chans = (int)t->shape[0];
    } else {
        c->tail = LATUP_TAIL_PIXELSHUFFLEDIRECT;
        TRY(latup_weights_require(w, "upsample.0.weight", 4, "LUA", &t));
        c->out_chans = c->in_chans; /* SwinIR's num_out_ch for super-resolution */
        const int64_t rr = c->out_chans > 0 ? t->shape[0] / c->out_chans : 0;
        for (int r = 2; r <= 8; r++)
            if ((int64_t)r * r == rr && rr * c->out_chans == t->shape[0]) scale = r;
        if (scale == 1)
            return latup_fail(LATUP_E_INPUT, "%s: tensor 'upsample.0.weight' has %lld outputs, expected %d x r^2 (r = 2..8)",
                              w->path, (long long)t->shape[0], c->out_chans);
    }
    c->n_scales = 1;
    c->scales[0] = scale;
    return LATUP_OK;
}

static latup_status infer_config(const latup_weights *w, latup_lua_config *c) {
    const latup_wtensor *t;
    char name[160];
    memset(c, 0, sizeof *c);
    c->ln_eps = LN_EPS;

    TRY(latup_weights_require(w, "conv_first.weight", 4, "LUA", &t)); /* [E, C, 3, 3] */
    TRY(latup_config_dim(w, "conv_first.weight", "embed dim", t->shape[0], 1, LUA_MAX_EMBED));
    TRY(latup_config_dim(w, "conv_first.weight", "input channels", t->shape[1], 1, LUA_MAX_CHANS));
    c->embed_dim = (int)t->shape[0];
    c->in_chans = (int)t->shape[1];

    c->num_layers = latup_weights_max_index(w, "layers.") + 1;
    if (c->num_layers < 1)
        return latup_fail(LATUP_E_INPUT, "%s: no 'layers.0.*' tensors: not a LUA/SwinIR checkpoint", w->path);
    if (c->num_layers > LATUP_MAX_LAYERS)
        return latup_fail(LATUP_E_INPUT, "%s: %d RSTB layers, latup supports at most %d", w->path,
                          c->num_layers, LATUP_MAX_LAYERS);
    int64_t rel_bias = 0; /* floats the attention tables will take: checked before any is allocated */
    for (int i = 0; i < c->num_layers; i++) {
        snprintf(name, sizeof name, "layers.%d.residual_group.blocks.", i);
        c->depths[i] = latup_weights_max_index(w, name) + 1;
        if (c->depths[i] < 1)
            return latup_fail(LATUP_E_INPUT, "%s: missing tensor 'layers.%d.residual_group.blocks.0.norm1.weight'", w->path, i);
        if (c->depths[i] > LUA_MAX_DEPTH)
            return latup_fail(LATUP_E_INPUT, "%s: tensor names 'layers.%d.residual_group.blocks.%d.*' give %d Swin blocks; a model has 1 to %d",
                              w->path, i, c->depths[i] - 1, c->depths[i], LUA_MAX_DEPTH);
        /* heads and window from the bias table [(2ws-1)^2, nH] */
        snprintf(name, sizeof name, "layers.%d.residual_group.blocks.0.attn.relative_position_bias_table", i);
        TRY(latup_weights_require(w, name, 2, "LUA", &t));
        const int64_t max_rows = (int64_t)(2 * LUA_MAX_WINDOW - 1) * (2 * LUA_MAX_WINDOW - 1);
        TRY(latup_config_dim(w, name, "(2*window-1)^2 rows", t->shape[0], 1, max_rows));
        int span = (int)lround(sqrt((double)t->shape[0]));
        if (span < 1 || (int64_t)span * span != t->shape[0] || span % 2 == 0)
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s' has %lld rows, expected (2*ws-1)^2", w->path,
                              name, (long long)t->shape[0]);
        int ws = (span + 1) / 2;
        if (i > 0 && ws != c->window_size)
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s' implies window %d, layer 0 has %d", w->path,
                              name, ws, c->window_size);
        c->window_size = ws;
        TRY(latup_config_dim(w, name, "heads", t->shape[1], 1, LUA_MAX_HEADS));
        c->num_heads[i] = (int)t->shape[1];
        if (c->embed_dim % c->num_heads[i] != 0)
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': %d heads do not divide embed dim %d",
                              w->path, name, c->num_heads[i], c->embed_dim);
        TRY(latup_config_dim(w, name, "head width (embed dim / heads)", c->embed_dim / c->num_heads[i], 1,
                             LUA_MAX_HEAD_DIM));
        const int64_t N = (int64_t)ws * ws;
        rel_bias += (int64_t)c->depths[i] * c->num_heads[i] * N * N;
    }
    if (rel_bias > LUA_MAX_REL_BIAS)
        return latup_fail(LATUP_E_INPUT,
                          "%s: window %d with these heads and depths needs %lld MiB of relative-position tables, "
                          "more than the %lld MiB latup allows a model",
                          w->path, c->window_size, (long long)(rel_bias * 4 >> 20), (long long)(LUA_MAX_REL_BIAS * 4 >> 20));
    TRY(latup_weights_require(w, "layers.0.residual_group.blocks.0.mlp.fc1.weight", 2, "LUA", &t)); /* [hidden, E] */
    TRY(latup_config_dim(w, "layers.0.residual_group.blocks.0.mlp.fc1.weight", "MLP width", t->shape[0], 1,
                         LUA_MAX_HIDDEN));
    c->mlp_hidden = (int)t->shape[0];
    /* SwinIR subtracts the DIV2K RGB mean from 3-channel inputs and adds it back (img_range 1);
     * for latents (C != 3) the mean is 0 */
    if (c->in_chans == 3) {
        c->has_mean = 1;
        c->mean[0] = 0.4488f, c->mean[1] = 0.4371f, c->mean[2] = 0.4040f;
    }

    if (latup_weights_max_index(w, "heads.x") >= 0) return infer_lua_heads(w, c);
    if (latup_weights_find(w, "upsample.0.weight")) return infer_swinir_tail(w, c);
    return latup_fail(LATUP_E_INPUT,
                      "%s: no 'heads.x2'/'heads.x4' (LUA) or 'upsample.0' (SwinIR) tensors: unknown tail",
                      w->path);
}

/* ---- loading ---------------------------------------------------------------------------------- */

/* relative_position_index is a buffer computed from ws alone: check it if present, never use
 * it. attn_mask was built for the training size: ignore its contents. */
static latup_status check_buffers(latup_binder *bd, int i, int j, int ws) {
    const int N = ws * ws;
    const latup_wtensor *t;
    TRY(latup_bind_optional(bd, &t, 1, "layers.%d.residual_group.blocks.%d.attn.relative_position_index", i, j));
    if (t) {
        if (!t->i64 || t->ndim != 2 || t->shape[0] != N || t->shape[1] != N)
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s' must be I64 [%d,%d]", bd->w->path, t->name, N, N);
        for (int a = 0; a < N; a++)
            for (int b = 0; b < N; b++) {
                int64_t idx = (int64_t)(a / ws - b / ws + ws - 1) * (2 * ws - 1) + (a % ws - b % ws + ws - 1);
                if (t->i64[(size_t)a * N + b] != idx)
                    return latup_fail(LATUP_E_INPUT, "%s: tensor '%s'[%d,%d] = %lld, expected %lld for window %d",
                                      bd->w->path, t->name, a, b, (long long)t->i64[(size_t)a * N + b],
                                      (long long)idx, ws);
            }
    }
    TRY(latup_bind_optional(bd, &t, 0, "layers.%d.residual_group.blocks.%d.attn_mask", i, j));
    if (t && (t->ndim != 3 || t->shape[1] != N || t->shape[2] != N))
        return latup_fail(LATUP_E_INPUT, "%s: tensor '%s' must be [nW,%d,%d]", bd->w->path, t->name, N, N);
    return LATUP_OK;
}

static latup_status bind_head(head *h, const latup_lua_config *c, int scale, latup_binder *bd) {
    const int E = c->embed_dim, F = c->head_feat;
    char pfx[24] = "", name[96];
    h->scale = scale;
    if (scale == 3 || c->tail == LATUP_TAIL_PIXELSHUFFLEDIRECT) {
        h->n_up = 1, h->r[0] = scale;
    } else {
        h->n_up = 0;
        for (int r = scale; r > 1; r /= 2) h->r[h->n_up++] = 2;
    }
    if (c->tail == LATUP_TAIL_LUA_HEADS) {
        snprintf(pfx, sizeof pfx, "heads.x%d.", scale);
        snprintf(h->before_name, sizeof h->before_name, "%sconv_before", pfx);
    } else {
        snprintf(h->before_name, sizeof h->before_name, "conv_before_upsample");
    }
    snprintf(h->up_name, sizeof h->up_name, "%supsample", pfx);
    snprintf(h->last_name, sizeof h->last_name, "%sconv_last", pfx);
    h->has_before = h->has_last = c->tail != LATUP_TAIL_PIXELSHUFFLEDIRECT;
    if (h->has_before) {
        snprintf(name, sizeof name, "%s.0", h->before_name);
        TRY(latup_bind_conv(bd, &h->conv_before, E, F, 3, name));
    }
    for (int k = 0; k < h->n_up; k++) {
        const int cin = h->has_before ? F : E, cout = h->r[k] * h->r[k] * (h->has_last ? F : c->out_chans);
        snprintf(name, sizeof name, "%s.%d", h->up_name, 2 * k);
        TRY(latup_bind_conv(bd, &h->up[k], cin, cout, 3, name));
    }
    if (h->has_last) TRY(latup_bind_conv(bd, &h->conv_last, F, c->out_chans, 3, h->last_name));
    return LATUP_OK;
}

static latup_status bind_model(latup_lua *m, latup_binder *bd) {
    const latup_lua_config *c = &m->cfg;
    const int E = c->embed_dim, ws = c->window_size, N = ws * ws;
    char name[160];
    TRY(latup_bind_conv(bd, &m->conv_first, c->in_chans, E, 3, "conv_first"));
    TRY(latup_bind_norm(bd, &m->patch_norm, E, c->ln_eps, "patch_embed.norm"));
    for (int i = 0; i < c->num_layers; i++) {
        rstb *L = &m->layers[i];
        L->depth = c->depths[i];
        L->blocks = latup_calloc((size_t)L->depth, sizeof(swin_block), "swin blocks");
        if (!L->blocks) return LATUP_E_NOMEM;
        for (int j = 0; j < L->depth; j++) {
            swin_block *B = &L->blocks[j];
            const int nH = c->num_heads[i];
            const int64_t tshape[2] = {(int64_t)(2 * ws - 1) * (2 * ws - 1), nH};
            B->num_heads = nH;
            B->shift = (j % 2) ? ws / 2 : 0;
#define P(field) (snprintf(name, sizeof name, "layers.%d.residual_group.blocks.%d.%s", i, j, field), name)
            TRY(latup_bind_norm(bd, &B->norm1, E, c->ln_eps, P("norm1")));
            TRY(latup_bind_linear(bd, &B->qkv, E, 3 * E, P("attn.qkv")));
            TRY(latup_bind(bd, &B->bias_table, 2, tshape, "%s", P("attn.relative_position_bias_table")));
            TRY(latup_bind_linear(bd, &B->proj, E, E, P("attn.proj")));
            TRY(latup_bind_norm(bd, &B->norm2, E, c->ln_eps, P("norm2")));
            TRY(latup_bind_linear(bd, &B->fc1, E, c->mlp_hidden, P("mlp.fc1")));
            TRY(latup_bind_linear(bd, &B->fc2, c->mlp_hidden, E, P("mlp.fc2")));
#undef P
            TRY(check_buffers(bd, i, j, ws));
        }
        snprintf(name, sizeof name, "layers.%d.conv", i);
        TRY(latup_bind_conv(bd, &L->conv, E, E, 3, name));
    }
    TRY(latup_bind_norm(bd, &m->norm, E, c->ln_eps, "norm"));
    TRY(latup_bind_conv(bd, &m->conv_after_body, E, E, 3, "conv_after_body"));
    for (int s = 0; s < c->n_scales; s++) TRY(bind_head(&m->heads[s], c, c->scales[s], bd));
    TRY(latup_binder_check_all_used(bd, c->tail == LATUP_TAIL_LUA_HEADS ? "LUA" : "SwinIR"));
    /* Only a checkpoint whose every tensor checked out gets its attention tables (sized within
     * LUA_MAX_REL_BIAS by infer_config). */
    for (int i = 0; i < c->num_layers; i++)
        for (int j = 0; j < m->layers[i].depth; j++) {
            swin_block *B = &m->layers[i].blocks[j];
            B->rel_bias = latup_alloc_floats((size_t)B->num_heads * N * N, "relative position bias");
            if (!B->rel_bias) return LATUP_E_NOMEM;
            latup_relative_bias_gather(B->rel_bias, B->bias_table, ws, B->num_heads);
        }
    return LATUP_OK;
}

latup_status latup_lua_load(const char *path, latup_lua **out) {
    LATUP_NEED(out);
    *out = NULL;
    LATUP_NEED(path);
    latup_lua *m = latup_calloc(1, sizeof *m, "model");
    if (!m) return LATUP_E_NOMEM;
    latup_status st = latup_weights_load(path, &m->weights);
    if (st == LATUP_OK) st = infer_config(&m->weights, &m->cfg);
    if (st == LATUP_OK) {
        latup_binder bd;
        st = latup_binder_init(&bd, &m->weights);
        if (st == LATUP_OK) st = bind_model(m, &bd);
        latup_binder_free(&bd);
    }
    if (st != LATUP_OK) {
        latup_lua_free(m);
        return st;
    }
    int64_t n = 0;
    for (int i = 0; i < m->weights.n; i++) {
        const char *s = m->weights.t[i].name;
        size_t L = strlen(s);
        if (m->weights.t[i].dtype != LATUP_DT_I64 && !(L >= 9 && strcmp(s + L - 9, "attn_mask") == 0))
            n += m->weights.t[i].numel;
    }
    m->cfg.n_params = n;
    m->tag = LATUP_LUA_TAG;
    latup_weights_release_source(&m->weights); /* a read (gzip'd) file: only the bound copies stay */
    m->resident = latup_weights_resident_bytes(&m->weights);
    for (int i = 0; i < m->cfg.num_layers; i++)
        for (int j = 0; j < m->layers[i].depth; j++)
            m->resident += (size_t)m->layers[i].blocks[j].num_heads * m->cfg.window_size * m->cfg.window_size *
                           m->cfg.window_size * m->cfg.window_size * sizeof(float);
    *out = m;
    return LATUP_OK;
}

latup_status latup_lua_check(const latup_lua *m, const char *func, const char *arg) {
    if (!m) return latup_null_arg(func, arg);
    if (m->tag != LATUP_LUA_TAG)
        return latup_fail(LATUP_E_USAGE, "%s: %s is not a LUA model from latup_lua_load (another type of handle?)",
                          func, arg);
    return LATUP_OK;
}

void latup_lua_free(latup_lua *m) {
    if (!m || (m->tag != LATUP_LUA_TAG && m->tag != 0)) return; /* 0: a load that failed half-way */
    m->tag = 0;
    latup_gpu_lua_release(m);
    for (int i = 0; i < LATUP_MAX_LAYERS; i++) {
        if (!m->layers[i].blocks) continue;
        for (int j = 0; j < m->layers[i].depth; j++) free(m->layers[i].blocks[j].rel_bias);
        free(m->layers[i].blocks);
    }
    latup_weights_free(&m->weights);
    free(m);
}

const latup_lua_config *latup_lua_get_config(const latup_lua *m) {
    return m && m->tag == LATUP_LUA_TAG ? &m->cfg : NULL;
}

const char *latup_tail_name(latup_tail t) {
    switch (t) {
    case LATUP_TAIL_LUA_HEADS: return "lua-heads";
    case LATUP_TAIL_PIXELSHUFFLE: return "pixelshuffle";
    case LATUP_TAIL_PIXELSHUFFLEDIRECT: return "pixelshuffledirect";
    }
    return "unknown";
}
