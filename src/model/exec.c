/* exec.c — the execution layer a model's forward pass runs on (exec.h): ops that compute only in
 * the real pass, dumps, and the stage hook. */
#include "model/exec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lx_init(lx_exec *e, latup_dump_fn dump, void *dump_user, int verbose, int conv_band_rows,
             void (*timing_line)(const lx_exec *, int64_t), const void *model) {
    memset(e, 0, sizeof *e);
    e->timing_line = timing_line, e->model = model;
    e->dump = dump, e->dump_user = dump_user;
    e->verbose = verbose;
    e->nthreads = latup_get_threads();
    e->band_rows_max = conv_band_rows;
}

/* ---- a run ------------------------------------------------------------------------------------- */

void lx_begin_count(lx_exec *e) {
    e->steps = 0;
    latup_arena_begin_count(&e->arena);
}

latup_status lx_begin_run(lx_exec *e, const char *what, latup_progress *progress) {
    memset(e->tm, 0, sizeof e->tm);
    e->st = LATUP_OK;
    e->progress = progress;
    return latup_arena_begin_run(&e->arena, what);
}

void lx_begin_image(lx_exec *e, int b) {
    e->b = b;
    latup_arena_rewind(&e->arena); /* every image replays the counted takes */
    e->mark = latup_now();
}

latup_status lx_end_image(lx_exec *e) { return e->st != LATUP_OK ? e->st : latup_arena_check(&e->arena); }

latup_status lx_end_run(lx_exec *e, latup_status st, int64_t B) {
    latup_arena_free(&e->arena);
    e->progress = NULL; /* the call's, not ours to keep */
    if (st == LATUP_OK && e->verbose && e->timing_line) e->timing_line(e, B);
    return st;
}

void lx_stage(lx_exec *e, int stage) {
    if (e->arena.counting) {
        e->steps++;
        return;
    }
    if (!lx_live(e)) return;
    const double now = latup_now();
    e->tm[stage] += now - e->mark;
    e->mark = now;
    e->st = latup_progress_step(e->progress);
}

void lx_slots_reset(lx_exec *e) { memset(e->shadow, 0, sizeof e->shadow); }

int lx_pick(lx_exec *e, size_t need, int busy0, int busy1) {
    int best = -1, largest = -1;
    for (int i = 0; i < LX_SLOTS; i++) {
        if (i == busy0 || i == busy1) continue;
        if (e->shadow[i] >= need && (best < 0 || e->shadow[i] < e->shadow[best])) best = i;
        if (largest < 0 || e->shadow[i] > e->shadow[largest]) largest = i;
    }
    const int i = best >= 0 ? best : largest;
    if (e->shadow[i] < need) e->shadow[i] = need;
    e->buf[i] = latup_arena_slot(&e->arena, i, need, "activation buffer");
    return i;
}

void lx_check_arena(lx_exec *e) {
    if (lx_live(e)) e->st = latup_arena_check(&e->arena);
}

int lx_fits(lx_exec *e, size_t need, size_t cap, const char *what) {
    if (need <= cap) return 1;
    if (e->st == LATUP_OK)
        e->st = latup_fail(LATUP_E_INTERNAL, "%s: needs %zu floats, its buffer holds %zu", what, need, cap);
    return 0;
}

/* ---- ops ----------------------------------------------------------------------------------------- */

void lx_conv(lx_exec *e, float *out, const float *inp, const latup_conv *c, int H, int W, const conv_input_op *op,
             const char *name) {
    const conv_ctx ctx = {.nthreads = e->nthreads, .band_rows_max = e->band_rows_max, .name = name};
    const size_t mark = latup_arena_mark(&e->arena);
    const size_t n = latup_conv2d_scratch_floats(c->cin, H, W, c->cout, c->k, op, &ctx);
    float *col = latup_arena_take(&e->arena, n, "conv bands (per call)");
    if (lx_live(e)) e->st = latup_conv2d_forward(out, inp, c->w, c->b, c->cin, H, W, c->cout, c->k, op, col, n, &ctx);
    latup_arena_release(&e->arena, mark);
}

void lx_conv_strided(lx_exec *e, float *out, const float *inp, const latup_conv *c, int H, int W, const conv_geom *g,
                     const char *name) {
    const conv_ctx ctx = {.nthreads = e->nthreads, .band_rows_max = e->band_rows_max, .name = name};
    const size_t mark = latup_arena_mark(&e->arena);
    const size_t n = latup_conv2d_strided_scratch_floats(c->cin, H, W, c->cout, g, &ctx);
    float *col = latup_arena_take(&e->arena, n, "conv bands (per call)");
    if (lx_live(e)) e->st = latup_conv2d_strided_forward(out, inp, c->w, c->b, c->cin, H, W, c->cout, g, col, n, &ctx);
    latup_arena_release(&e->arena, mark);
}

conv_input_op lx_groupnorm_op(lx_exec *e, const latup_norm *n, const float *x, int C, int HW, int groups, int silu) {
    float *stats = latup_arena_take3(&e->arena, 2, (size_t)C, 1, "GroupNorm statistics [2,C]");
    conv_input_op op = {.norm = 1, .norm_bias = n->b, .silu = silu};
    if (lx_live(e)) {
        latup_groupnorm_affine(stats, stats + C, x, n->w, C, HW, groups, n->eps);
        op.norm_mean = stats, op.norm_scale = stats + C;
    }
    return op;
}

void lx_linear(lx_exec *e, float *out, const float *inp, const latup_linear *l, int N) {
    if (lx_live(e)) latup_linear_forward(out, inp, l->w, l->b, N, l->in, l->out);
}

void lx_layernorm(lx_exec *e, float *out, const float *inp, const latup_norm *n, int N) {
    if (lx_live(e)) latup_layernorm_forward(out, inp, n->w, n->b, N, n->dim, n->eps);
}

void lx_groupnorm(lx_exec *e, float *out, const float *inp, const latup_norm *n, int C, int HW, int groups) {
    if (lx_live(e)) latup_groupnorm_forward(out, inp, n->w, n->b, C, HW, groups, n->eps);
}

void lx_gelu(lx_exec *e, float *x, size_t n) {
    if (lx_live(e)) latup_gelu_forward(x, x, n);
}

void lx_leaky_relu(lx_exec *e, float *x, size_t n, float slope) {
    if (lx_live(e)) latup_leaky_relu_forward(x, x, n, slope);
}

void lx_add(lx_exec *e, float *y, const float *x, size_t n) {
    if (lx_live(e)) latup_add_inplace(y, x, n);
}

void lx_copy(lx_exec *e, float *y, const float *x, size_t n) {
    if (lx_live(e)) memcpy(y, x, n * sizeof(float));
}

void lx_zero(lx_exec *e, float *y, size_t n) {
    if (lx_live(e)) memset(y, 0, n * sizeof(float));
}

void lx_channel_bias(lx_exec *e, float *x, const float *v, float sign, int C, size_t n) {
    if (!lx_live(e)) return;
    for (int ch = 0; ch < C; ch++)
        for (size_t i = 0; i < n; i++) x[(size_t)ch * n + i] += sign * v[ch];
}

void lx_chw_to_hwc(lx_exec *e, float *out, const float *inp, int C, int HW) {
    if (lx_live(e)) latup_chw_to_hwc(out, inp, C, HW);
}

void lx_hwc_to_chw(lx_exec *e, float *out, const float *inp, int C, int HW) {
    if (lx_live(e)) latup_hwc_to_chw(out, inp, C, HW);
}

void lx_reflect_pad(lx_exec *e, float *out, const float *inp, int C, int H, int W, int Hp, int Wp) {
    if (lx_live(e)) latup_reflect_pad(out, inp, C, H, W, Hp, Wp);
}

void lx_crop(lx_exec *e, float *out, const float *inp, int C, int H, int W, int Ho, int Wo) {
    if (lx_live(e)) latup_crop(out, inp, C, H, W, Ho, Wo);
}

void lx_pixel_shuffle(lx_exec *e, float *out, const float *inp, int C, int H, int W, int r) {
    if (lx_live(e)) latup_pixel_shuffle(out, inp, C, H, W, r);
}

void lx_shift_mask(lx_exec *e, float *mask, int H, int W, int ws, int shift) {
    if (lx_live(e)) latup_shift_mask_build(mask, H, W, ws, shift);
}

void lx_layernorm_partition(lx_exec *e, float *win, const float *t, const latup_norm *n, int H, int W, int C, int ws,
                            int shift) {
    if (lx_live(e)) latup_layernorm_partition(win, t, n->w, n->b, H, W, C, ws, shift, n->eps);
}

void lx_window_reverse_add(lx_exec *e, float *t, const float *win, int H, int W, int C, int ws, int shift) {
    if (lx_live(e)) latup_window_reverse_add(t, win, H, W, C, ws, shift);
}

void lx_window_attention(lx_exec *e, float *out, const float *qkv, const float *rel_bias, const float *mask, int nW,
                         int N, int nH, int C) {
    const int hd = C / nH;
    const size_t mark = latup_arena_mark(&e->arena);
    const size_t n = latup_window_attention_scratch_floats(N, e->nthreads);
    float *scores = latup_arena_take(&e->arena, n, "attention scores (per call)");
    if (lx_live(e))
        e->st = latup_window_attention_forward(out, qkv, rel_bias, mask, nW, N, nH, hd, 1.0f / sqrtf((float)hd),
                                               scores, n, e->nthreads);
    latup_arena_release(&e->arena, mark);
}

void lx_attention(lx_exec *e, float *out, const float *q, const float *k, const float *v, int N, int C, int block) {
    const size_t mark = latup_arena_mark(&e->arena);
    const size_t n = latup_attention_blocked_scratch_floats(N, C, block, block, e->nthreads);
    float *scratch = latup_arena_take(&e->arena, n, "attention blocks");
    if (lx_live(e))
        e->st = latup_attention_blocked_forward(out, q, k, v, N, C, 1.0f / sqrtf((float)C), block, block, scratch, n,
                                                e->nthreads);
    latup_arena_release(&e->arena, mark);
}

/* ---- dumps ---------------------------------------------------------------------------------------- */

static int dumping(const lx_exec *e) { return lx_live(e) && e->dump; }

void lx_dump(const lx_exec *e, const char *name, const float *x, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    if (!dumping(e)) return;
    char full[192];
    snprintf(full, sizeof full, "%s%s", e->prefix, name);
    latup_tensor t = {.data = (float *)x, .ndim = ndim, .shape = {d0, d1, d2, 0}};
    e->dump(e->dump_user, full, &t, e->b);
}

/* A dump's own scratch of n floats (a debug mode: malloc'd per dump, not from the arena). */
static float *dump_scratch(lx_exec *e, size_t n) {
    float *s = latup_malloc(n * sizeof(float), "dump scratch");
    if (!s) e->st = LATUP_E_NOMEM;
    return s;
}

void lx_dump_tokens(lx_exec *e, const char *name, const float *x, int C, int h, int w) {
    if (!dumping(e)) return;
    float *s = dump_scratch(e, (size_t)C * h * w);
    if (!s) return;
    latup_hwc_to_chw(s, x, C, h * w);
    lx_dump(e, name, s, 3, C, h, w);
    free(s);
}

void lx_dump_windows(lx_exec *e, const char *name, const float *win, int H, int W, int C, int ws, int shift) {
    if (!dumping(e)) return;
    float *s = dump_scratch(e, (size_t)H * W * C);
    if (!s) return;
    latup_window_reverse(s, win, H, W, C, ws, shift); /* a permutation: the same bits, in token order */
    lx_dump(e, name, s, 2, (int64_t)H * W, C, 0);
    free(s);
}

void lx_dump_groupnorm(lx_exec *e, const char *name, const float *x, const latup_norm *n, int groups, int C, int h,
                       int w, int silu) {
    if (!dumping(e)) return;
    float *s = dump_scratch(e, (size_t)C * h * w);
    if (!s) return;
    if (silu)
        latup_groupnorm_silu_forward(s, x, n->w, n->b, C, h * w, groups, n->eps);
    else
        latup_groupnorm_forward(s, x, n->w, n->b, C, h * w, groups, n->eps);
    lx_dump(e, name, s, 3, C, h, w);
    free(s);
}
