/* vae.c — the AutoencoderKL decoder's forward pass (docs/spec/vae.md): the exact decode
 * (latup_vae_decode -> decode_one), its memory plan (the same pass run in counting mode), and
 * tiled decoding for outputs beyond the memory budget. Loading lives in vae_load.c. */
#include "model/dump_names.h"
#include "model/exec.h"
#include "model/tiling.h"
#include "model/vae_blocks.h"
#include "model/vae_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_TILE 8         /* automatic tiles: multiples of 8 latent pixels, at least 8 */

/* ---- the forward pass: ResnetBlock, attention and the tiled pass are src/model/vae_blocks.c ------
 * (shared with the encoder). */

/* The decoder on one latent z [zc, h, w]; writes [3, f*h, f*w] to out. */
static void decode_one(lx_exec *e, const latup_vae *v, const float *z, int h, int w, float *out) {
    const latup_vae_config *c = &v->cfg;
    const int top = c->channels[c->n_levels - 1];
    const float *zin = z;
    lx_slots_reset(e); /* every image (and tile) replays the counting pass's choices from the start */
    int hi = -1;
    if (c->has_post_quant_conv) {                                      /* [zc, h, w] */
        hi = lx_pick(e, (size_t)c->z_channels * h * w, -1, -1);
        lx_conv(e, e->buf[hi], z, &v->post_quant_conv, h, w, NULL, "post_quant_conv");
        lx_dump(e, DUMP_NAMES[DN_POST_QUANT], e->buf[hi], 3, c->z_channels, h, w);
        zin = e->buf[hi];
    }
    const int o = lx_pick(e, (size_t)top * h * w, hi, -1);
    lx_conv(e, e->buf[o], zin, &v->conv_in, h, w, NULL, "conv_in");  /* [C, h, w] */
    hi = o;
    lx_dump(e, DUMP_NAMES[DN_CONV_IN], e->buf[hi], 3, top, h, w);
    vae_resnet_forward(e, &v->mid_block_1, &hi, h, w, DUMP_NAMES[DN_MID_BLOCK_1]);
    vae_attn_forward(e, &v->mid_attn, &hi, h, w, "");
    vae_resnet_forward(e, &v->mid_block_2, &hi, h, w, DUMP_NAMES[DN_MID_BLOCK_2]);
    lx_stage(e, V_MID);
    int hh = h, ww = w, C = top;
    for (int L = c->n_levels - 1; L >= 0; L--) {
        const up_level *u = &v->up[L];
        char name[64];
        for (int M = 0; M < u->n_blocks; M++) {
            snprintf(name, sizeof name, DUMP_NAMES[DN_UP_BLOCK], L, M);
            vae_resnet_forward(e, &u->blocks[M], &hi, hh, ww, name);
            C = u->blocks[M].cout;
        }
        if (u->has_upsample) {                                         /* nearest x2 + 3x3, fused */
            const int y = lx_pick(e, (size_t)C * 4 * hh * ww, hi, -1);
            conv_input_op up = {.upsample2x = 1};
            snprintf(name, sizeof name, DUMP_NAMES[DN_UPSAMPLE], L);
            lx_conv(e, e->buf[y], e->buf[hi], &u->upsample, 2 * hh, 2 * ww, &up, name);
            hi = y, hh *= 2, ww *= 2;
            lx_dump(e, name, e->buf[hi], 3, C, hh, ww);
        }
        lx_stage(e, V_UP + (c->n_levels - 1 - L));
    }
    /* norm_out + SiLU, fused into conv_out                              [3, f*h, f*w] */
    const int HW = hh * ww;
    lx_dump_groupnorm(e, DUMP_NAMES[DN_NORM_OUT], e->buf[hi], &v->norm_out, GN_GROUPS, C, hh, ww, 1);
    const size_t mark = latup_arena_mark(&e->arena);
    conv_input_op op = lx_groupnorm_op(e, &v->norm_out, e->buf[hi], C, HW, GN_GROUPS, 1);
    lx_conv(e, out, e->buf[hi], &v->conv_out, hh, ww, &op, "conv_out");
    latup_arena_release(&e->arena, mark);
    lx_dump(e, DUMP_NAMES[DN_IMAGE], out, 3, c->out_channels, hh, ww);
    lx_stage(e, V_OUT);
}

/* ---- jobs: a decode or an encode, planned and run by the same code -------------------------------- */

/* What one pass does: decode h x w latents, or encode H x W images into h x w latents; the
 * options of either call (their LX_OPTS fields by the same names). */
typedef struct {
    int encode;
    int h, w;              /* the latent */
    int H, W;              /* the image (encode) */
    int sample;            /* encode: a draw instead of the mean */
    uint64_t seed;
    latup_dump_fn dump;
    void *dump_user;
    int verbose, conv_band_rows, tile, overlap;
    size_t max_memory;
} vae_job;

static vae_job decode_job(int h, int w, const latup_decode_opts *o) {
    vae_job j = {.h = h, .w = w};
    if (o) {
        j.dump = o->dump, j.dump_user = o->dump_user, j.verbose = o->verbose, j.conv_band_rows = o->conv_band_rows;
        j.tile = o->tile, j.overlap = o->overlap, j.max_memory = o->max_memory;
    }
    return j;
}

static const char *verb(const vae_job *j) { return j->encode ? "encode" : "decode"; }

/* One pass of the job on in into out: exact (T == 0) or tiled. The same code counts and runs. */
static void pass(lx_exec *e, const latup_vae *v, const vae_job *j, const float *in, float *out, int T, int ov) {
    if (j->encode)
        vae_encode_pass(e, v, in, j->H, j->W, out, T, ov, j->sample, j->seed);
    else if (T > 0) /* latent tiles in, image tiles out */
        vae_tiled(e, v, decode_one, in, v->cfg.z_channels, j->h, j->w, 1, out, v->cfg.out_channels,
                  latup_vae_factor(&v->cfg), j->h, j->w, T, ov);
    else
        decode_one(e, v, in, j->h, j->w, out);
}

/* The stage hook's line (lx_exec.timing_line). */
static void vae_timings(const lx_exec *e, int64_t B) {
    const latup_vae_config *c = e->model;
    fprintf(stderr, "VAE timings (batch %lld, %d threads): conv_in+mid %.3f s", (long long)B, e->nthreads, e->tm[V_MID]);
    for (int i = 0; i < c->n_levels; i++) fprintf(stderr, ", up.%d %.3f s", c->n_levels - 1 - i, e->tm[V_UP + i]);
    fprintf(stderr, ", out %.3f s\n", e->tm[V_OUT]);
}

static void job_init(lx_exec *e, const latup_vae *v, const vae_job *j) {
    lx_init(e, LX_OPTS(j), j->encode ? vae_encode_timings : vae_timings, &v->cfg);
}

/* ---- plans ------------------------------------------------------------------------------------- */

/* The counting pass of one job. */
static latup_status count_pass(lx_exec *e, const latup_vae *v, const vae_job *j, int T, int ov) {
    lx_begin_count(e);
    pass(e, v, j, NULL, NULL, T, ov);
    return e->arena.st;
}

static latup_status check_size(const latup_vae *v, int h, int w) {
    if (h < 1 || w < 1 || h > 8192 || w > 8192)
        return latup_fail(LATUP_E_INPUT, "latent size %dx%d out of range (1..8192)", h, w);
    /* the kernels index a map's pixels with int */
    const int64_t f = latup_vae_factor(&v->cfg);
    if ((int64_t)h * f * w * f > INT32_MAX)
        return latup_fail(LATUP_E_INPUT, "latent %dx%d decodes to %lldx%lld, over 2^31 pixels", h, w,
                          (long long)(h * f), (long long)(w * f));
    return LATUP_OK;
}

/* An image the encoder takes: at least f pixels a side (one latent pixel), at most 65536, and
 * under 2^31 pixels (the kernels index a map's pixels with int). */
static latup_status check_image_size(const latup_vae *v, int H, int W) {
    const int f = latup_vae_enc_factor(&v->cfg);
    if (H < f || W < f)
        return latup_fail(LATUP_E_INPUT, "image %dx%d is smaller than the encoder's %d pixels per latent pixel in a "
                          "side: it needs at least %dx%d", W, H, f, f, f);
    if (H > 65536 || W > 65536 || (int64_t)H * W > INT32_MAX)
        return latup_fail(LATUP_E_INPUT, "image %dx%d is out of range: sides up to 65536, under 2^31 pixels", W, H);
    return LATUP_OK;
}

static void fill_plan(const lx_exec *e, const latup_vae *v, const vae_job *j, latup_vae_plan *p) {
    const latup_vae_config *c = &v->cfg;
    const int64_t f = j->encode ? 1 : latup_vae_factor(c); /* an encoder-only VAE has no decoder levels */
    *p = (latup_vae_plan){.h = j->h, .w = j->w};
    latup_arena_plan(&e->arena, &p->mem);
    p->mem.weights = v->resident; /* the parts loaded, as the call's peak counts them */
    p->mem.output = j->encode ? (size_t)c->z_channels * (size_t)j->h * (size_t)j->w * sizeof(float)
                              : (size_t)c->out_channels * (size_t)(j->h * f) * (size_t)(j->w * f) * sizeof(float);
}

/* The arena of one job (exact, T == 0, or in tiles of T), counted into *p. */
static latup_status count_arena(const latup_vae *v, const vae_job *j, int T, int ov, latup_vae_plan *p) {
    lx_exec e;
    job_init(&e, v, j);
    TRY(count_pass(&e, v, j, T, ov));
    fill_plan(&e, v, j, p);
    if (T > 0) p->h = T < j->h ? T : j->h, p->w = T < j->w ? T : j->w;
    return LATUP_OK;
}


/* Everything the process holds while decoding, but the decode's arena. */
static size_t others_of(const latup_call_memory *base) {
    return base->process + base->weights + base->held + base->input + base->upscaled + base->image;
}

/* Exact, or the tiles asked for, or the largest tile (a multiple of MIN_TILE latent pixels) whose
 * pass keeps the whole process within j->max_memory: base holds everything else the process
 * holds at the pass (sizes never overflow: the caller summed them with checks). */
static latup_status plan_job(const latup_vae *v, const vae_job *j, const latup_call_memory *base,
                             latup_decode_plan *dp) {
    memset(dp, 0, sizeof *dp);
    const int h = j->h, w = j->w;
    TRY(j->encode ? check_image_size(v, j->H, j->W) : check_size(v, h, w));
    const size_t budget = j->max_memory, others = others_of(base);
    int T = j->tile > 0 ? j->tile : 0;
    int ov = j->overlap > 0 ? j->overlap : 0;
    /* tile and overlap were checked with the call's options (latup_call_opts_check) */
    if (T == 0) {
        TRY(count_arena(v, j, 0, 0, &dp->plan));
        const size_t exact = others + dp->plan.mem.arena;
        if (budget == 0 || exact <= budget) {
            dp->peak = exact;
            return LATUP_OK;
        }
        /* the largest tile whose pass fits the budget */
        int found = 0;
        for (T = ((h > w ? h : w) - 1) / MIN_TILE * MIN_TILE; T >= MIN_TILE; T -= MIN_TILE) {
            TRY(count_arena(v, j, T, ov > 0 && ov < T ? ov : T / 4, &dp->plan));
            if (others + dp->plan.mem.arena <= budget) {
                found = 1;
                break;
            }
        }
        if (!found) {
            latup_vae_plan sp;
            const int Tm = MIN_TILE < h || MIN_TILE < w ? MIN_TILE : 0;
            TRY(count_arena(v, j, Tm, Tm / 4, &sp));
            return latup_fail(LATUP_E_NOMEM, "a memory budget of %s cannot be met: the smallest tiles (%dx%d latent "
                              "pixels) need %s (process %s, weights %s, inputs and outputs %s, tile arena %s); the "
                              "exact %s needs %s", latup_size_str(budget).s, sp.h, sp.w,
                              latup_size_str(others + sp.mem.arena).s, latup_size_str(base->process).s,
                              latup_size_str(base->weights).s,
                              latup_size_str(base->held + base->input + base->upscaled + base->image).s,
                              latup_size_str(sp.mem.arena).s, verb(j), latup_size_str(exact).s);
        }
        snprintf(dp->reason, sizeof dp->reason, "the exact %s needs %s, over the %s budget", verb(j),
                 latup_size_str(exact).s, latup_size_str(budget).s);
    } else {
        if (T >= h && T >= w) { /* one tile covers the latent: the exact pass */
            TRY(count_arena(v, j, 0, 0, &dp->plan));
            dp->peak = others + dp->plan.mem.arena;
            if (budget > 0 && dp->peak > budget)
                return latup_fail(LATUP_E_NOMEM, "the exact %s needs %s, over the %s memory budget (use smaller "
                                  "tiles)", verb(j), latup_size_str(dp->peak).s, latup_size_str(budget).s);
            return LATUP_OK;
        }
        snprintf(dp->reason, sizeof dp->reason, "tiles of %d latent pixels were asked for", T);
    }
    if (ov <= 0 || ov >= T) ov = T / 4;
    TRY(count_arena(v, j, T, ov, &dp->plan));
    const size_t peak = others + dp->plan.mem.arena;
    if (budget > 0 && peak > budget)
        return latup_fail(LATUP_E_NOMEM, "tiles of %d latent pixels need %s, over the %s memory budget (use "
                          "smaller tiles)", T, latup_size_str(peak).s, latup_size_str(budget).s);
    dp->tiled = 1, dp->tile = T, dp->overlap = ov, dp->peak = peak;
    return LATUP_OK;
}

/* ---- a prepared decode or encode: planned once, then run ------------------------------------------------ */

struct latup_vae_exec {
    lx_exec e;             /* counted for the chosen pass (exact or tiles) */
    const latup_vae *v;
    vae_job j;
    int T, ov;
};

static latup_status exec_prepare(const latup_vae *v, const vae_job *j, const latup_call_memory *base,
                                 latup_vae_exec **out, latup_decode_plan *dp) {
    *out = NULL;
    TRY(plan_job(v, j, base, dp));
    latup_vae_exec *x = latup_calloc(1, sizeof *x, j->encode ? "encode plan" : "decode plan");
    if (!x) return LATUP_E_NOMEM;
    x->v = v, x->j = *j;
    x->T = dp->tiled ? dp->tile : 0, x->ov = dp->tiled ? dp->overlap : 0;
    job_init(&x->e, v, j);
    /* the search above counted several candidates; this counts the chosen one into the exec */
    latup_status st = count_pass(&x->e, v, j, x->T, x->ov);
    if (st != LATUP_OK) {
        free(x);
        return st;
    }
    *out = x;
    return LATUP_OK;
}

latup_status latup_vae_exec_prepare(const latup_vae *v, int h, int w, const latup_decode_opts *opts,
                                    const latup_call_memory *base, latup_vae_exec **out, latup_decode_plan *dp) {
    const vae_job j = decode_job(h, w, opts);
    return exec_prepare(v, &j, base, out, dp);
}

latup_status latup_vae_enc_prepare(const latup_vae *v, int H, int W, const latup_encode_opts *opts,
                                   const latup_call_memory *base, latup_vae_exec **out, latup_decode_plan *dp) {
    const int f = latup_vae_enc_factor(&v->cfg);
    vae_job j = {.encode = 1, .H = H, .W = W, .h = H / f, .w = W / f};
    if (opts) {
        j.dump = opts->dump, j.dump_user = opts->dump_user, j.verbose = opts->verbose;
        j.conv_band_rows = opts->conv_band_rows, j.tile = opts->tile, j.overlap = opts->overlap;
        j.max_memory = opts->max_memory, j.sample = opts->sample != 0, j.seed = opts->seed;
    }
    return exec_prepare(v, &j, base, out, dp);
}

void latup_vae_exec_free(latup_vae_exec *x) {
    if (!x) return;
    latup_arena_free(&x->e.arena);
    free(x);
}

int64_t latup_vae_exec_steps(const latup_vae_exec *x) { return x->e.steps; }

latup_status latup_vae_exec_run(latup_vae_exec *x, const float *in, int64_t B, float *out, latup_progress *progress) {
    lx_exec *e = &x->e;
    const latup_vae_config *c = &x->v->cfg;
    const vae_job *j = &x->j;
    const int f = j->encode ? 1 : latup_vae_factor(c); /* an encoder-only VAE has no decoder levels */
    latup_status st = lx_begin_run(e, j->encode ? "VAE encoder arena" : "VAE arena", progress);
    const size_t zsz = (size_t)c->z_channels * j->h * j->w;
    const size_t isz = j->encode ? (size_t)3 * j->H * j->W : (size_t)c->out_channels * j->h * f * j->w * f;
    const size_t insz = j->encode ? isz : zsz, outsz = j->encode ? zsz : isz;
    for (int64_t b = 0; b < B && st == LATUP_OK; b++) {
        lx_begin_image(e, (int)b);
        pass(e, x->v, j, in + b * insz, out + b * outsz, x->T, x->ov);
        st = lx_end_image(e);
    }
    return lx_end_run(e, st, B);
}

/* ---- plans: latup_vae_plan_decode() and latup_vae_decode() are a prepared call (src/api/call.c) ---------- */

latup_status latup_vae_plan_memory(const latup_vae *v, int h, int w, latup_vae_plan *p) {
    LATUP_NEED(p);
    memset(p, 0, sizeof *p);
    TRY(latup_vae_check(v, __func__, "v"));
    TRY(latup_vae_check_decoder(v));
    TRY(check_size(v, h, w));
    const vae_job j = decode_job(h, w, NULL);
    return count_arena(v, &j, 0, 0, p);
}

void latup_vae_plan_print(const latup_vae_plan *p, FILE *f) {
    if (!p || !f) return;
    char title[96];
    snprintf(title, sizeof title, "VAE memory plan: latent %dx%d", p->h, p->w);
    latup_mem_plan_print(&p->mem, title, f);
}
