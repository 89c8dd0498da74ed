/* call.c — prepared calls (latup.h, "prepared calls"): every upscale, decode and run is checked
 * and planned here, once, whichever device computes it, and executed as planned. The stages'
 * arenas are counted by the models (lua.c, vae.c); this file adds up what the whole process holds
 * at the peak, refuses a budget nothing fits, and hands the computation to the device. */
#include "common.h"
#include "model/device.h"
#include "model/lua_model.h"
#include "model/vae_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct latup_call {
    latup_call_opts o;
    latup_run_opts ro;       /* the upscale's options, as the model's pass reads them */
    latup_decode_opts dopt;  /* the decode's */
    latup_plan plan;
    latup_lua_exec *lx;      /* CPU: the counted passes */
    latup_vae_exec *vx;
    const float *checked;    /* the data latup_prepare found finite (skipped once by execute) */
};

/* "[2,16,32,32]" of a shape (latup_shape_str: never past LATUP_MAX_DIMS) */
typedef struct {
    char s[96];
} shape_text;
static shape_text shape_of(int ndim, const int64_t *shape) {
    shape_text t;
    latup_shape_str(t.s, sizeof t.s, ndim, shape);
    return t;
}

/* The bytes of a float tensor [B, C, h, w], or 0 with *ok cleared when they pass size_t. */
static size_t tensor_bytes(size_t B, size_t C, size_t h, size_t w, int *ok) {
    size_t n;
    if (latup_mul_ok(B, C, &n) && latup_mul_ok(n, h, &n) && latup_mul_ok(n, w, &n) && latup_mul_ok(n, sizeof(float), &n))
        return n;
    *ok = 0;
    return 0;
}

/* A latent of the wrong shape: `what` says how, and the two wrong inputs a shape gives away get a
 * hint, said here where the shape is refused so that the CLI, the Python package and any caller
 * get the same one: FLUX's packed transformer tokens ([L, 4C] or [B, L, 4C], read as [C,H,W]) and
 * an RGB image where a latent belongs. */
static latup_status wrong_latent(const char *what, int ndim, const int64_t *shape, int want, const latup_lua *lua) {
    const int64_t L = ndim == 2 ? shape[0] : ndim == 3 ? shape[1] : 0, D = ndim >= 2 ? shape[ndim - 1] : 0;
    if ((ndim == 2 || (ndim == 3 && shape[0] != want && L >= D)) && D == 4 * (int64_t)want && L > 0) {
        int64_t side = (int64_t)sqrt((double)L); /* L < 2^62 (the tensor's bytes fit size_t) */
        while (side * side > L) side--;
        while ((side + 1) * (side + 1) <= L) side++;
        char size[64];
        if (side * side == L)
            snprintf(size, sizeof size, "%lldx%lld", (long long)(2 * side), (long long)(2 * side));
        else
            snprintf(size, sizeof size, "HxW with (H/2)*(W/2) = %lld", (long long)L);
        return latup_fail(LATUP_E_INPUT, "%s (FLUX's packed tokens? %lld tokens of %lld = 4 x %d channels: unpack "
                          "them first, --flux-packed %s on the command line, latup_flux_unpack in the API)",
                          what, (long long)L, (long long)D, want, size);
    }
    if (ndim >= 3 && shape[ndim - 3] == 3 && want != 3) {
        const int is_lua = lua && latup_lua_get_config(lua)->tail == LATUP_TAIL_LUA_HEADS;
        return latup_fail(LATUP_E_INPUT, "%s (3 channels is an RGB image: %s %d-channel latents%s; give the latent "
                          "the diffusion model made, not the image%s)", what,
                          !lua ? "a VAE decodes" : is_lua ? "LUA upscales" : "this model upscales", want,
                          lua ? ", which 'latup decode' then turns into the image" : " into images",
                          lua ? ", or upscale images with a pixel-space SwinIR model" : "");
    }
    return latup_fail(LATUP_E_INPUT, "%s", what);
}

/* The request itself: models, the input's shape against them. */
static latup_status check_request(const latup_call_opts *o, const latup_tensor *x, latup_plan *p) {
    if (!o->lua && !o->vae) return latup_fail(LATUP_E_USAGE, "a call needs a LUA model, a VAE, or both");
    if (o->lua) TRY(latup_lua_check(o->lua, "latup_prepare", "opts->lua"));
    if (o->vae) TRY(latup_vae_check(o->vae, "latup_prepare", "opts->vae"));
    if (o->vae) TRY(latup_vae_check_decoder(o->vae));
    const int want = o->lua ? latup_lua_get_config(o->lua)->in_chans : latup_vae_get_config(o->vae)->z_channels;
    char what[160];
    if (x->ndim != 3 && x->ndim != 4) {
        snprintf(what, sizeof what, "latent has shape %s, expected [C,H,W] or [B,C,H,W]", shape_of(x->ndim, x->shape).s);
        return wrong_latent(what, x->ndim, x->shape, want, o->lua);
    }
    const int off = x->ndim - 3;
    const int64_t B = off ? x->shape[0] : 1, C = x->shape[off], h = x->shape[off + 1], w = x->shape[off + 2];
    if (C != want) {
        snprintf(what, sizeof what, "latent has shape %s: %lld channels, the %s expects %d", shape_of(x->ndim, x->shape).s,
                 (long long)C, o->lua ? "model" : "VAE", want);
        return wrong_latent(what, x->ndim, x->shape, want, o->lua);
    }
    if (B < 1) return latup_fail(LATUP_E_INPUT, "latent has shape %s: an empty batch", shape_of(x->ndim, x->shape).s);
    const int64_t lim = o->lua ? 16384 : 8192;
    if (h < 1 || w < 1 || h > lim || w > lim)
        return latup_fail(LATUP_E_INPUT, "latent %lldx%lld is out of range: sides must be 1..%lld", (long long)h,
                          (long long)w, (long long)lim);
    if (o->lua && o->vae && latup_lua_get_config(o->lua)->out_chans != latup_vae_get_config(o->vae)->z_channels)
        return latup_fail(LATUP_E_INPUT, "%s makes %d-channel latents, %s decodes %d-channel ones",
                          o->lua->weights.path, latup_lua_get_config(o->lua)->out_chans, o->vae->weights.path,
                          latup_vae_get_config(o->vae)->z_channels);
    p->ndim = x->ndim, p->batch = B, p->channels = (int)C, p->h = (int)h, p->w = (int)w;
    return LATUP_OK;
}

/* The shapes of every stage and what the process holds besides the arenas. The upscale's
 * model has checked the scale and the size (latup_lua_exec_prepare), so the shapes are small. */
static latup_status size_call(const latup_call_opts *o, latup_plan *p) {
    latup_call_memory *m = &p->mem;
    const size_t B = (size_t)p->batch;
    int ok = 1;
    m->process = LATUP_PROCESS_OVERHEAD(latup_get_threads());
    m->held = o->held;
    m->weights = (o->lua ? o->lua->resident : 0) + (o->vae ? o->vae->resident : 0);
    m->input = tensor_bytes(B, (size_t)p->channels, (size_t)p->h, (size_t)p->w, &ok);
    int64_t c = p->channels, h = p->h, w = p->w;
    if (o->lua) {
        p->stages |= LATUP_STAGE_UPSCALE;
        p->scale = o->scale;
        c = latup_lua_get_config(o->lua)->out_chans, h *= o->scale, w *= o->scale;
        m->upscaled = tensor_bytes(B, (size_t)c, (size_t)h, (size_t)w, &ok);
    }
    p->dec_h = (int)h, p->dec_w = (int)w;
    if (o->vae) {
        p->stages |= LATUP_STAGE_DECODE;
        const latup_vae_config *vc = latup_vae_get_config(o->vae);
        c = vc->out_channels, h *= latup_vae_factor(vc), w *= latup_vae_factor(vc);
        m->image = tensor_bytes(B, (size_t)c, (size_t)h, (size_t)w, &ok);
    }
    size_t sum = 0;
    const size_t parts[] = {m->process, m->weights, m->held, m->input, m->upscaled, m->image};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) ok &= latup_add_ok(sum, parts[i], &sum);
    if (!ok)
        return latup_fail(LATUP_E_INPUT, "a batch of %lld %dx%d latents is too large to hold", (long long)p->batch,
                          p->h, p->w);
    p->out_ndim = p->ndim;
    const int64_t shape[4] = {p->batch, c, h, w};
    memcpy(p->out_shape, p->ndim == 4 ? shape : shape + 1, (size_t)p->ndim * sizeof shape[0]);
    return LATUP_OK;
}

latup_status latup_call_opts_check(const latup_call_opts *opts) {
    LATUP_NEED(opts);
    const latup_call_opts *o = opts;
    if (o->tile < 0 || o->overlap < 0)
        return latup_fail(LATUP_E_USAGE, "tile %d, overlap %d: neither can be negative", o->tile, o->overlap);
    if (o->tile > 0 && o->tile < 4) return latup_fail(LATUP_E_USAGE, "tile %d: a tile is at least 4 latent pixels", o->tile);
    if (o->tile > 0 && o->overlap >= o->tile)
        return latup_fail(LATUP_E_USAGE, "overlap %d must be smaller than tile %d", o->overlap, o->tile);
    if (o->device != LATUP_DEVICE_CPU && o->device != LATUP_DEVICE_CUDA)
        return latup_fail(LATUP_E_USAGE, "unknown device %d", (int)o->device);
    if (o->conv_band_rows < 0) return latup_fail(LATUP_E_USAGE, "conv_band_rows %d is negative", o->conv_band_rows);
    return LATUP_OK;
}

static latup_status prepare(latup_call *k, const latup_tensor *x) {
    const latup_call_opts *o = &k->o;
    latup_plan *p = &k->plan;
    p->device = o->device, p->budget = o->max_memory;
    TRY(latup_call_opts_check(o));
    TRY(latup_device_check(o->device)); /* before anything else: a device that cannot run is the answer */
    TRY(check_request(o, x, p));
    /* the model's own checks (scale, padding, size) and its counted pass, before any size is taken */
    if (o->lua) TRY(latup_lua_exec_prepare(o->lua, p->h, p->w, o->scale, &k->ro, &k->lx, &p->upscale));
    TRY(size_call(o, p));
    if (x->data) {
        TRY(latup_check_finite(x));
        k->checked = x->data;
    }
    latup_call_memory *m = &p->mem;
    const size_t base = m->process + m->weights + m->held + m->input;
    if (o->lua) {
        m->upscale_arena = p->upscale.mem.arena;
        m->peak = base + m->upscaled + m->upscale_arena;
        if (o->max_memory && m->peak > o->max_memory)
            return latup_fail(LATUP_E_NOMEM, "a memory budget of %s cannot be met: the upscale needs %s (process %s, "
                              "weights %s, inputs and outputs %s, arena %s) and does not tile",
                              latup_size_str(o->max_memory).s, latup_size_str(m->peak).s, latup_size_str(m->process).s,
                              latup_size_str(m->weights).s, latup_size_str(m->held + m->input + m->upscaled).s,
                              latup_size_str(m->upscale_arena).s);
    }
    if (o->vae) {
        TRY(latup_vae_exec_prepare(o->vae, p->dec_h, p->dec_w, &k->dopt, m, &k->vx, &p->decode));
        m->decode_arena = p->decode.plan.mem.arena;
        if (p->decode.peak > m->peak) m->peak = p->decode.peak;
    }
    return LATUP_OK;
}

latup_status latup_prepare(const latup_call_opts *opts, const latup_tensor *x, latup_call **out) {
    LATUP_NEED(out);
    *out = NULL;
    LATUP_NEED(opts);
    TRY(latup_tensor_check(x, __func__, "x", 0)); /* a shape alone plans */
    latup_call *k = latup_calloc(1, sizeof *k, "call");
    if (!k) return LATUP_E_NOMEM;
    k->o = *opts;
    /* progress is not the stages' to report: latup_execute counts one call across both */
    k->ro = (latup_run_opts){.dump = opts->dump, .dump_user = opts->dump_user, .verbose = opts->verbose,
                             .device = opts->device, .conv_band_rows = opts->conv_band_rows};
    k->dopt = (latup_decode_opts){.dump = opts->dump, .dump_user = opts->dump_user, .verbose = opts->verbose,
                                  .device = opts->device, .conv_band_rows = opts->conv_band_rows,
                                  .tile = opts->tile, .overlap = opts->overlap, .max_memory = opts->max_memory};
    const latup_status st = prepare(k, x);
    if (st != LATUP_OK) {
        latup_call_free(k);
        return st;
    }
    *out = k;
    return LATUP_OK;
}

const latup_plan *latup_call_plan(const latup_call *c) { return c ? &c->plan : NULL; }

void latup_call_free(latup_call *c) {
    if (!c) return;
    latup_lua_exec_free(c->lx);
    latup_vae_exec_free(c->vx);
    free(c);
}

/* ---- execute ------------------------------------------------------------------------------------------ */

static void stage(const latup_call *k, latup_stage s, int done, double t) {
    if (k->o.stage) k->o.stage(k->o.stage_user, s, done, t);
}

/* The steps of each stage, as its counting pass found them (per image) times the batch: the GPU
 * passes report the same boundaries. */
static int64_t upscale_steps(const latup_call *k) {
    return k->o.lua ? latup_lua_exec_steps(k->lx) * k->plan.batch : 0;
}
static int64_t decode_steps(const latup_call *k) {
    return k->o.vae ? latup_vae_exec_steps(k->vx) * k->plan.batch : 0;
}

static latup_status upscale(latup_call *k, const latup_tensor *x, latup_tensor *y, latup_progress *pr) {
    const latup_plan *p = &k->plan;
    const int c = latup_lua_get_config(k->o.lua)->out_chans;
    const int64_t shape[4] = {p->batch, c, p->dec_h, p->dec_w};
    TRY(latup_tensor_alloc(y, p->ndim, p->ndim == 4 ? shape : shape + 1));
    pr->end = pr->done + upscale_steps(k);
    stage(k, LATUP_STAGE_UPSCALE, 0, 0);
    const double t0 = latup_now();
    latup_status st = p->device == LATUP_DEVICE_CUDA ? latup_gpu_lua_run(k->o.lua, k->o.scale, x, y, &k->ro, pr)
                                                    : latup_lua_exec_run(k->lx, x->data, p->batch, y->data, pr);
    stage(k, LATUP_STAGE_UPSCALE, 1, latup_now() - t0);
    if (st == LATUP_OK) st = latup_check_finite_output(y, "the upscaled latent");
    if (st == LATUP_OK) st = latup_progress_finish(pr);
    return st;
}

static latup_status decode(latup_call *k, const latup_tensor *z, latup_tensor *img, latup_progress *pr) {
    const latup_plan *p = &k->plan;
    TRY(latup_tensor_alloc(img, p->out_ndim, p->out_shape));
    pr->end = pr->done + decode_steps(k);
    stage(k, LATUP_STAGE_DECODE, 0, 0);
    const double t0 = latup_now();
    const latup_decode_plan *d = &p->decode;
    latup_status st = p->device == LATUP_DEVICE_CUDA
                          ? latup_gpu_vae_run(k->o.vae, z, img, d->tiled ? d->tile : 0, d->overlap, &k->dopt, pr)
                          : latup_vae_exec_run(k->vx, z->data, p->batch, img->data, pr);
    stage(k, LATUP_STAGE_DECODE, 1, latup_now() - t0);
    if (st == LATUP_OK) st = latup_check_finite_output(img, "the decoded image");
    if (st == LATUP_OK) st = latup_progress_finish(pr);
    return st;
}

/* Output tensors are cleared before anything else: one that is also the input, or both outputs
 * in one struct, would be lost. */
static latup_status distinct(const char *func, const latup_tensor *x, const latup_tensor *a, const char *an,
                             const latup_tensor *b, const char *bn) {
    if (a && (a == (const latup_tensor *)x || a == b))
        return latup_fail(LATUP_E_USAGE, "%s: %s is the same tensor as %s", func, an, a == b ? bn : "the input");
    return LATUP_OK;
}

latup_status latup_execute(latup_call *k, const latup_tensor *x, latup_tensor *upscaled, latup_tensor *out) {
    TRY(distinct(__func__, x, out, "out", upscaled, "upscaled"));
    TRY(distinct(__func__, x, upscaled, "upscaled", NULL, NULL));
    if (upscaled) memset(upscaled, 0, sizeof *upscaled);
    if (out) memset(out, 0, sizeof *out);
    LATUP_NEED(k);
    LATUP_NEED(out);
    LATUP_NEED_TENSOR(x);
    const latup_plan *p = &k->plan;
    const int64_t shape[4] = {p->batch, p->channels, p->h, p->w};
    if (x->ndim != p->ndim || memcmp(x->shape, p->ndim == 4 ? shape : shape + 1, (size_t)p->ndim * sizeof shape[0]))
        return latup_fail(LATUP_E_USAGE, "latup_execute: the input has shape %s, the call was prepared for %s",
                          shape_of(x->ndim, x->shape).s,
                          shape_of(p->ndim, p->ndim == 4 ? shape : shape + 1).s);
    if (x->data != k->checked) TRY(latup_check_finite(x));
    k->checked = NULL; /* once: a second execute of the same tensor checks it again */
    if (k->o.verbose) latup_plan_print(p, stderr);
    latup_progress pr = {k->o.on_progress, k->o.progress_user, 0, 0, upscale_steps(k) + decode_steps(k)};
    latup_tensor up = {0};
    latup_status st = LATUP_OK;
    if (k->o.lua) st = upscale(k, x, &up, &pr);
    if (st == LATUP_OK && k->o.vae) st = decode(k, k->o.lua ? &up : x, out, &pr);
    if (st != LATUP_OK) {
        latup_tensor_free(&up);
        latup_tensor_free(out);
        return st;
    }
    if (!k->o.vae) *out = up;
    else if (upscaled) *upscaled = up;
    else latup_tensor_free(&up);
    return LATUP_OK;
}

/* ---- the plan in words ------------------------------------------------------------------------------ */

void latup_plan_print(const latup_plan *p, FILE *f) {
    if (!p || !f) return;
    const double MiB = 1048576.0;
    const latup_call_memory *m = &p->mem;
    if (p->stages & LATUP_STAGE_UPSCALE) latup_lua_plan_print(&p->upscale, f);
    if (p->stages & LATUP_STAGE_DECODE) {
        if (p->decode.tiled)
            fprintf(f, "VAE: tiled decode (%s): tiles of %d latent pixels, overlap %d; an approximation\n",
                    p->decode.reason, p->decode.tile, p->decode.overlap);
        latup_vae_plan_print(&p->decode.plan, f);
    }
    fprintf(f, "memory of the call, batch %lld, on the %s:\n", (long long)p->batch,
            p->device == LATUP_DEVICE_CUDA ? "GPU (host side)" : "CPU");
    const struct {
        const char *name;
        size_t bytes;
    } rows[] = {{"process (code, libraries, stacks, BLAS)", m->process},
                {"weights (models as loaded)", m->weights},
                {"held by the caller", m->held},
                {"input", m->input},
                {"upscaled (batch)", m->upscaled},
                {"image (batch)", m->image},
                {"upscale arena", m->upscale_arena},
                {"decode arena", m->decode_arena}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].bytes) fprintf(f, "  %-40s %10.2f MiB\n", rows[i].name, rows[i].bytes / MiB);
    fprintf(f, "  %-40s %10.2f MiB  (the larger stage's arena and tensors)\n", "peak", m->peak / MiB);
    if (p->budget) fprintf(f, "  %-40s %10.2f MiB\n", "budget", p->budget / MiB);
}

/* ---- the one-stage entry points (latup.h): a prepare and an execute ----------------------------------- */

latup_status latup_lua_upscale(const latup_lua *m, const latup_tensor *x, int scale, latup_tensor *y,
                               const latup_run_opts *opts) {
    TRY(distinct(__func__, x, y, "y", NULL, NULL));
    if (y) memset(y, 0, sizeof *y);
    TRY(latup_lua_check(m, __func__, "m"));
    LATUP_NEED_TENSOR(x);
    LATUP_NEED(y);
    latup_call_opts o = {.lua = m, .scale = scale};
    if (opts) {
        o.device = opts->device, o.conv_band_rows = opts->conv_band_rows;
        o.dump = opts->dump, o.dump_user = opts->dump_user, o.verbose = opts->verbose;
        o.on_progress = opts->on_progress, o.progress_user = opts->progress_user;
    }
    latup_call *c;
    TRY(latup_prepare(&o, x, &c));
    const latup_status st = latup_execute(c, x, NULL, y);
    latup_call_free(c);
    return st;
}

static latup_call_opts call_opts(const latup_vae *v, const latup_decode_opts *opts) {
    latup_call_opts o = {.vae = v};
    if (opts) {
        o.device = opts->device, o.max_memory = opts->max_memory, o.tile = opts->tile, o.overlap = opts->overlap;
        o.conv_band_rows = opts->conv_band_rows, o.dump = opts->dump, o.dump_user = opts->dump_user;
        o.verbose = opts->verbose, o.on_progress = opts->on_progress, o.progress_user = opts->progress_user;
    }
    return o;
}

latup_status latup_vae_plan_decode(const latup_vae *v, int h, int w, const latup_decode_opts *opts,
                                   latup_decode_plan *p) {
    LATUP_NEED(p);
    memset(p, 0, sizeof *p);
    TRY(latup_vae_check(v, __func__, "v"));
    if (h < 1 || w < 1) { /* the VAE's own size message, not one about a tensor made here */
        latup_vae_plan vp;
        return latup_vae_plan_memory(v, h, w, &vp);
    }
    const latup_call_opts o = call_opts(v, opts);
    const latup_tensor z = {.data = NULL, .ndim = 3, .shape = {v->cfg.z_channels, h, w}};
    latup_call *c;
    TRY(latup_prepare(&o, &z, &c));
    *p = latup_call_plan(c)->decode;
    latup_call_free(c);
    return LATUP_OK;
}

latup_status latup_vae_decode(const latup_vae *v, const latup_tensor *z, latup_tensor *img,
                              const latup_decode_opts *opts) {
    TRY(distinct(__func__, z, img, "img", NULL, NULL));
    if (img) memset(img, 0, sizeof *img);
    TRY(latup_vae_check(v, __func__, "v"));
    LATUP_NEED_TENSOR(z);
    LATUP_NEED(img);
    const latup_call_opts o = call_opts(v, opts);
    latup_call *c;
    TRY(latup_prepare(&o, z, &c));
    const latup_status st = latup_execute(c, z, NULL, img);
    latup_call_free(c);
    return st;
}

/* ---- the encoder: a prepare and an execute of its own (CPU only, one stage) ------------------------ */

/* The options alone: tile, overlap, device, band rows (as latup_call_opts_check). */
static latup_status encode_opts_check(const latup_encode_opts *o) {
    if (!o) return LATUP_OK;
    const latup_call_opts co = {.device = o->device, .tile = o->tile, .overlap = o->overlap,
                                .conv_band_rows = o->conv_band_rows};
    TRY(latup_call_opts_check(&co));
    if (o->device == LATUP_DEVICE_CUDA)
        return latup_fail(LATUP_E_DEVICE, "the encoder runs on the CPU only (device CUDA was asked for)");
    return LATUP_OK;
}

/* An image [3,H,W] or [B,3,H,W] (shape only): its batch, H and W. */
static latup_status image_shape(const latup_tensor *img, int64_t *B, int *H, int *W) {
    const int64_t *s = img->shape + (img->ndim == 4);
    if ((img->ndim != 3 && img->ndim != 4) || s[0] != 3)
        return latup_fail(LATUP_E_INPUT, "image has shape %s, expected [3,H,W] or [B,3,H,W] (RGB in [-1,1])",
                          shape_of(img->ndim, img->shape).s);
    *B = img->ndim == 4 ? img->shape[0] : 1;
    if (*B < 1) return latup_fail(LATUP_E_INPUT, "image has shape %s: an empty batch", shape_of(img->ndim, img->shape).s);
    if (s[1] > 65536 || s[2] > 65536)
        return latup_fail(LATUP_E_INPUT, "image %lldx%lld is out of range: sides up to 65536", (long long)s[2],
                          (long long)s[1]);
    *H = (int)s[1], *W = (int)s[2];
    return LATUP_OK;
}

/* A planned encode: the exec, the output's shape and what the process holds. */
typedef struct {
    latup_vae_exec *x;
    latup_decode_plan dp;
    int64_t B;
    int ndim;
    int64_t out_shape[4];
} encode_call;

static latup_status encode_prepare(const latup_vae *v, const latup_tensor *img, const latup_encode_opts *opts,
                                   encode_call *k) {
    memset(k, 0, sizeof *k);
    TRY(encode_opts_check(opts));
    TRY(latup_vae_check_encoder(v));
    int H = 0, W = 0;
    TRY(image_shape(img, &k->B, &H, &W));
    const latup_vae_config *c = &v->cfg;
    const int f = latup_vae_enc_factor(c);
    const int64_t h = H / f, w = W / f;
    latup_call_memory m = {0};
    int ok = 1;
    m.process = LATUP_PROCESS_OVERHEAD(latup_get_threads());
    m.held = opts ? opts->held : 0;
    m.weights = v->resident;
    m.input = tensor_bytes((size_t)k->B, 3, (size_t)H, (size_t)W, &ok);
    m.image = tensor_bytes((size_t)k->B, (size_t)c->z_channels, (size_t)h, (size_t)w, &ok); /* the output */
    size_t sum = 0;
    const size_t parts[] = {m.process, m.weights, m.held, m.input, m.image};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) ok &= latup_add_ok(sum, parts[i], &sum);
    if (!ok)
        return latup_fail(LATUP_E_INPUT, "a batch of %lld %dx%d images is too large to hold", (long long)k->B, W, H);
    if (img->data) TRY(latup_check_finite_input(img, "input image"));
    TRY(latup_vae_enc_prepare(v, H, W, opts, &m, &k->x, &k->dp));
    k->ndim = img->ndim;
    const int64_t shape[4] = {k->B, c->z_channels, h, w};
    memcpy(k->out_shape, k->ndim == 4 ? shape : shape + 1, (size_t)k->ndim * sizeof shape[0]);
    if (opts && opts->verbose) {
        if (k->dp.tiled)
            fprintf(stderr, "VAE: tiled encode (%s): tiles of %d latent pixels, overlap %d; an approximation\n",
                    k->dp.reason, k->dp.tile, k->dp.overlap);
        latup_vae_plan_print(&k->dp.plan, stderr);
        fprintf(stderr, "  %-40s %10.2f MiB\n", "peak of the encode", k->dp.peak / 1048576.0);
    }
    return LATUP_OK;
}

latup_status latup_vae_plan_encode(const latup_vae *v, int H, int W, const latup_encode_opts *opts,
                                   latup_decode_plan *p) {
    LATUP_NEED(p);
    memset(p, 0, sizeof *p);
    TRY(latup_vae_check(v, __func__, "v"));
    const latup_tensor img = {.data = NULL, .ndim = 3, .shape = {3, H < 0 ? 0 : H, W < 0 ? 0 : W}};
    encode_call k;
    TRY(encode_prepare(v, &img, opts, &k));
    *p = k.dp;
    latup_vae_exec_free(k.x);
    return LATUP_OK;
}

latup_status latup_vae_encode(const latup_vae *v, const latup_tensor *img, latup_tensor *z,
                              const latup_encode_opts *opts) {
    TRY(distinct(__func__, img, z, "z", NULL, NULL));
    if (z) memset(z, 0, sizeof *z);
    TRY(latup_vae_check(v, __func__, "v"));
    LATUP_NEED_TENSOR(img);
    LATUP_NEED(z);
    encode_call k;
    TRY(encode_prepare(v, img, opts, &k));
    latup_status st = latup_tensor_alloc(z, k.ndim, k.out_shape);
    if (st == LATUP_OK) {
        latup_progress pr = {opts ? opts->on_progress : NULL, opts ? opts->progress_user : NULL, 0, 0,
                             latup_vae_exec_steps(k.x) * k.B};
        pr.end = pr.total;
        st = latup_vae_exec_run(k.x, img->data, k.B, z->data, &pr);
        if (st == LATUP_OK) st = latup_check_finite_output(z, "the encoded latent");
        if (st == LATUP_OK) st = latup_progress_finish(&pr);
    }
    latup_vae_exec_free(k.x);
    if (st != LATUP_OK) latup_tensor_free(z);
    return st;
}
