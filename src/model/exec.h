/* exec.h — what a model's forward pass runs on (lua.c, vae.c): the arena, the sticky status, the
 * thread count and band height, the dump hook and the stage hook, and one wrapper per op.
 *
 * Every pass runs twice: a counting pass (arena.counting: takes return NULL, sizes are added up)
 * and the real pass. The lx_* ops know which one this is: they compute only in the real pass and
 * only while nothing has failed, so a forward function is a plain list of ops, one line each,
 * with no branch on the pass. Scratch an op needs (conv bands, attention scores, GroupNorm
 * statistics) is taken from the arena inside the op, so the counting pass sizes it too.
 *
 * Dumps (golden files, `latup --dump`) go through lx_dump*: in the real pass, with a dump hook,
 * they hand a tensor to the hook; the lx_dump_* forms make a tensor the pass itself never holds
 * (a norm it fuses into the next op, token order of a windowed tensor) from what it does hold.
 * Timing and progress come from lx_stage(), called at the pass's stage boundaries: each boundary
 * is one step of the caller's progress (latup_progress_fn), and the counting pass counts them, so
 * a call's total comes from the very lines that report its steps. */
#ifndef LATUP_EXEC_H
#define LATUP_EXEC_H

#include "ops/arena.h"
#include "ops/kernels.h"
#include "model/layers.h"

#define LX_MAX_STAGES 16 /* per-stage seconds a model may keep (the VAE: mid, out, 6 levels, tiles) */

#define LX_SLOTS 3        /* rotating activation buffers (the VAE's) */

typedef struct lx_exec lx_exec;

struct lx_exec {
    latup_arena arena;            /* every buffer of the pass; counting when arena.counting */
    latup_dump_fn dump;           /* NULL: no dumps */
    void *dump_user;
    int verbose;                  /* the run's opts */
    int nthreads, band_rows_max;  /* latup_get_threads(), opts->conv_band_rows */
    int b;                        /* batch element, for dumps */
    char prefix[40];              /* dump name prefix ("tile_Y_X." in a tiled decode) */
    size_t shadow[LX_SLOTS];      /* sizes written to each activation slot in this pass: drives lx_pick() */
    float *buf[LX_SLOTS];         /* each slot's memory (NULL while counting) */
    latup_status st;              /* the first kernel failure (sticky) */
    /* the stage hook, lx_stage() */
    double mark;                  /* when the current stage began */
    double tm[LX_MAX_STAGES];     /* per-stage seconds, summed over the run */
    int64_t steps;                /* stage boundaries of one image's pass: counted by the counting pass */
    latup_progress *progress;     /* the call's step count, told of every boundary (NULL: none) */
    void (*timing_line)(const lx_exec *e, int64_t B);             /* prints the verbose timings */
    const void *model;            /* what timing_line needs of the model */
};

/* timing_line: the model's line for the stage hook; model: what it reads. */
void lx_init(lx_exec *e, latup_dump_fn dump, void *dump_user, int verbose, int conv_band_rows,
             void (*timing_line)(const lx_exec *, int64_t), const void *model);
/* lx_init's first four arguments from a model's options (latup_run_opts, latup_decode_opts; NULL: none). */
#define LX_OPTS(o)                                                                                               \
    (o) ? (o)->dump : NULL, (o) ? (o)->dump_user : NULL, (o) ? (o)->verbose : 0, (o) ? (o)->conv_band_rows : 0

/* Compute only in the real pass and while nothing has failed. */
static inline int lx_live(const lx_exec *e) {
    return !e->arena.counting && e->st == LATUP_OK && e->arena.st == LATUP_OK;
}

/* ---- a run: counted once, then begun, one pass per image, ended ------------------------------------ */
void lx_begin_count(lx_exec *e);                                   /* the counting pass starts: takes, steps */
/* the counted arena, timers zeroed; progress (may be NULL) hears of every step of the run */
latup_status lx_begin_run(lx_exec *e, const char *what, latup_progress *progress);
void lx_begin_image(lx_exec *e, int b);                            /* rewinds the arena: replay the takes */
latup_status lx_end_image(lx_exec *e);                             /* the first failure, or the arena's check */
latup_status lx_end_run(lx_exec *e, latup_status st, int64_t B);   /* frees the arena; timings */

/* The stage hook: stage `stage` (the model's index into tm) ends here, one step. The counting
 * pass counts the step; the real pass adds the seconds since the last boundary to tm[stage] and
 * reports the step, and a callback that asks to stop fails the pass (LATUP_E_CANCELLED), so
 * every later op is skipped. A failed pass does nothing. */
void lx_stage(lx_exec *e, int stage);

/* ---- activation slots ------------------------------------------------------------------------------
 * Activations may rotate through LX_SLOTS arena slots. Every op writes to a free slot chosen only
 * from the history of sizes written so far (best fit among the free ones, else the largest), so
 * the counting pass that sizes the slots and the real pass make identical choices; the arena
 * checks every write against the slot's counted capacity. */
void lx_slots_reset(lx_exec *e);                       /* a pass (image, tile) replays from the start */
/* A free slot for a write of `need` floats (not busy0/busy1, -1: none); e->buf[slot] is its memory. */
int lx_pick(lx_exec *e, size_t need, int busy0, int busy1);
/* After a pass: the arena's guards and capacities (a failure becomes the pass's). */
void lx_check_arena(lx_exec *e);

/* A write of `need` floats into a buffer of `cap`: checked, never trusted (0 and a failure if not). */
int lx_fits(lx_exec *e, size_t need, size_t cap, const char *what);

/* ---- ops: each computes only when lx_live() ------------------------------------------------------ */
/* out = conv(op(inp)), H x W the output size (op may be NULL); the conv's bands come from the arena. */
void lx_conv(lx_exec *e, float *out, const float *inp, const latup_conv *c, int H, int W, const conv_input_op *op,
             const char *name);
/* out = strided conv of inp [c->cin, H, W] (its geometry g; c->k == g->k), output size from g. */
void lx_conv_strided(lx_exec *e, float *out, const float *inp, const latup_conv *c, int H, int W, const conv_geom *g,
                     const char *name);
/* The GroupNorm (+ SiLU) that a conv applies as it reads x [C, HW]: its statistics [2, C] are
 * taken from the arena (release them after the conv). */
conv_input_op lx_groupnorm_op(lx_exec *e, const latup_norm *n, const float *x, int C, int HW, int groups, int silu);
void lx_linear(lx_exec *e, float *out, const float *inp, const latup_linear *l, int N);
void lx_layernorm(lx_exec *e, float *out, const float *inp, const latup_norm *n, int N);
void lx_groupnorm(lx_exec *e, float *out, const float *inp, const latup_norm *n, int C, int HW, int groups);
void lx_gelu(lx_exec *e, float *x, size_t n);
void lx_leaky_relu(lx_exec *e, float *x, size_t n, float slope);
void lx_add(lx_exec *e, float *y, const float *x, size_t n);              /* y += x */
void lx_copy(lx_exec *e, float *y, const float *x, size_t n);             /* y = x */
void lx_zero(lx_exec *e, float *y, size_t n);                             /* y = 0 */
void lx_channel_bias(lx_exec *e, float *x, const float *v, float sign, int C, size_t n); /* x[c,:] += sign v[c] */
void lx_chw_to_hwc(lx_exec *e, float *out, const float *inp, int C, int HW);
void lx_hwc_to_chw(lx_exec *e, float *out, const float *inp, int C, int HW);
void lx_reflect_pad(lx_exec *e, float *out, const float *inp, int C, int H, int W, int Hp, int Wp);
void lx_crop(lx_exec *e, float *out, const float *inp, int C, int H, int W, int Ho, int Wo);
void lx_pixel_shuffle(lx_exec *e, float *out, const float *inp, int C, int H, int W, int r);
void lx_shift_mask(lx_exec *e, float *mask, int H, int W, int ws, int shift);
void lx_layernorm_partition(lx_exec *e, float *win, const float *t, const latup_norm *n, int H, int W, int C, int ws,
                            int shift);
void lx_window_reverse_add(lx_exec *e, float *t, const float *win, int H, int W, int C, int ws, int shift);
/* Window attention on qkv [nW, N, 3C], nH heads with their bias [nH, N, N]; scores from the arena. */
void lx_window_attention(lx_exec *e, float *out, const float *qkv, const float *rel_bias, const float *mask, int nW,
                         int N, int nH, int C);
/* Blocked single-head attention over N tokens [N, C]; its blocks from the arena. */
void lx_attention(lx_exec *e, float *out, const float *q, const float *k, const float *v, int N, int C, int block);

/* ---- dumps: in the real pass, with a dump hook. The lx_dump_* forms make their tensor in memory
 * of their own, malloc'd per dump and freed after it: dumping is a debug mode, and the pass's
 * arena (its plan) must not depend on it. A failed malloc is the pass's LATUP_E_NOMEM. */
void lx_dump(const lx_exec *e, const char *name, const float *x, int ndim, int64_t d0, int64_t d1, int64_t d2);
/* Token-major x [h*w, C], dumped as [C, h, w]. */
void lx_dump_tokens(lx_exec *e, const char *name, const float *x, int C, int h, int w);
/* Shifted windows [nW, ws*ws, C] of an H x W map, dumped in token order [H*W, C]. */
void lx_dump_windows(lx_exec *e, const char *name, const float *win, int H, int W, int C, int ws, int shift);
/* GroupNorm(x) (then SiLU) of x [C, h, w], dumped as [C, h, w]: for norms a pass fuses into a conv. */
void lx_dump_groupnorm(lx_exec *e, const char *name, const float *x, const latup_norm *n, int groups, int C,
                       int h, int w, int silu);

#endif
