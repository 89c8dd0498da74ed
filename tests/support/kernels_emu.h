/* kernels_emu.h — every kernel launcher of src/cuda/launch.h run on the host: the same bodies
 * (bodies.cuh) over the same index space as kernels.cu, one emu_<name> per lcu_<name> with the
 * same arguments and return values (0, or LCU_E_CAPACITY when the scratch is too small). Element
 * grids run block by block, thread by thread, with the kernel's `i < n` test; warp-per-row
 * kernels run their rows' lanes through the butterfly of bodies.cuh; the GroupNorm chunk kernel
 * runs each block's threads and then its shared-memory tree. Header-only: the host harness
 * (test_cuda_host.c) and the emulated device (cuda_emu.c) use it. */
#ifndef LATUP_KERNELS_EMU_H
#define LATUP_KERNELS_EMU_H

#include "cuda/bodies.cuh"
#include "cuda/launch.h"

#include <stdlib.h>
#include <string.h>

/* GRID(n, i): the statement runs for every thread of the grid kernels.cu launches for n elements
 * (lcu_blocks(n) blocks of LCU_BLOCK) whose index i is below n, as `if (i < n)` there. */
#define GRID(n, i)                                                                                 \
    for (int64_t blk_ = 0; blk_ < lcu_blocks((n), LCU_BLOCK); blk_++)                              \
        for (int thr_ = 0; thr_ < LCU_BLOCK; thr_++)                                               \
            for (int64_t i = lcu_elem_index(blk_, LCU_BLOCK, thr_); i < (n); i = INT64_MAX)

/* WARP_ROWS(N, row): a warp-per-row kernel, N * 32 threads, row = i / 32; lane 0 stands for the
 * warp (the lanes themselves are run by the *_row_lanes bodies) */
#define WARP_ROWS(N, row)                                                                          \
    GRID((int64_t)(N) * LCU_WARP, i_)                                                              \
    for (int64_t row = i_ / LCU_WARP; i_ % LCU_WARP == 0; i_ = INT64_MAX)

static inline int emu_fill_bits(float *x, int64_t n, uint32_t bits) {
    GRID(n, i) memcpy(&x[i], &bits, sizeof bits);
    return 0;
}
static inline int emu_conv_bias(float *out, const float *bias, int rows, int64_t n, int64_t ld, int accumulate) {
    GRID((int64_t)rows * n, i) lcu_conv_bias_elem(i, out, bias, n, ld, accumulate);
    return 0;
}
static inline int emu_linear_bias(float *out, const float *bias, int64_t N, int Cout) {
    GRID(N * Cout, i) lcu_linear_bias_elem(i, out, bias, Cout);
    return 0;
}
static inline int emu_add(float *y, const float *x, int64_t n) {
    GRID(n, i) y[i] += x[i];
    return 0;
}
static inline int emu_channel_add(float *x, const float *v, float sign, int C, int64_t n) {
    GRID((int64_t)C * n, i) lcu_channel_add_elem(i, x, v, sign, n);
    return 0;
}
static inline int emu_reflect_pad(float *out, const float *inp, int C, int H, int W, int Hp, int Wp) {
    GRID((int64_t)C * Hp * Wp, i) out[i] = lcu_pad_elem(i, inp, H, W, Hp, Wp);
    return 0;
}
static inline int emu_crop(float *out, const float *inp, int C, int H, int W, int Ho, int Wo) {
    GRID((int64_t)C * Ho * Wo, i) out[i] = lcu_crop_elem(i, inp, H, W, Ho, Wo);
    return 0;
}
static inline int emu_transpose(float *out, const float *inp, const float *add, int64_t rows, int64_t cols) {
    GRID(rows * cols, i) lcu_transpose_elem(i, out, inp, add, rows, cols);
    return 0;
}
static inline int emu_pixel_shuffle(float *out, const float *inp, int C, int H, int W, int r) {
    GRID((int64_t)C * H * r * W * r, i) out[i] = inp[lcu_pixel_shuffle_src(i, H, W, r)];
    return 0;
}
static inline int emu_gelu(float *x, int64_t n) {
    GRID(n, i) x[i] = lcu_gelu_f(x[i]);
    return 0;
}
static inline int emu_leaky_relu(float *x, int64_t n, float slope) {
    GRID(n, i) x[i] = lcu_leaky_f(x[i], slope);
    return 0;
}
static inline int emu_layernorm(float *out, const float *inp, const float *w, const float *b, int64_t N, int C,
                                float eps) {
    WARP_ROWS(N, row) lcu_layernorm_row_lanes(out + row * C, inp + row * C, w, b, C, eps, LCU_WARP);
    return 0;
}
static inline int emu_window_partition(float *out, const float *inp, int H, int W, int C, int ws, int shift) {
    GRID((int64_t)H * W * C, i) out[i] = inp[lcu_window_elem_token(i, H, W, C, ws, shift)];
    return 0;
}
static inline int emu_window_reverse_add(float *t, const float *win, int H, int W, int C, int ws, int shift) {
    GRID((int64_t)H * W * C, i) t[lcu_window_elem_token(i, H, W, C, ws, shift)] += win[i];
    return 0;
}
static inline int emu_softmax_rows(float *S, int64_t rows, int n, int w0, lcu_score_op op) {
    WARP_ROWS(rows, r) lcu_softmax_row_lanes(S + r * n, n, w0 + (int)(r / n), (int)(r % n), op, LCU_WARP);
    return 0;
}
static inline int emu_groupnorm_stats(float *mean_c, float *scale_c, const float *x, const float *w, int C, int64_t HW,
                                      int groups, float eps, float *scratch, int64_t scratch_cap) {
    if (C <= 0 || HW <= 0 || groups <= 0 || C % groups != 0) return 1; /* cudaErrorInvalidValue */
    if (lcu_gn_scratch_floats(C, HW) > scratch_cap) return LCU_E_CAPACITY;
    const int nch = lcu_gn_chunks(HW), cpg = C / groups;
    const double count = (double)cpg * (double)HW;
    double *part = (double *)(void *)scratch, *gmean = part + (int64_t)C * nch;
    double sh[LCU_BLOCK];
    for (int sq = 0; sq < 2; sq++) {
        for (int c = 0; c < C; c++) /* block (k, c) of gn_chunk_kernel: its threads, then its tree */
            for (int k = 0; k < nch; k++) {
                for (int t = 0; t < LCU_BLOCK; t++)
                    sh[t] = lcu_chunk_thread_sum(x + (int64_t)c * HW, HW, k, t, LCU_BLOCK, sq, sq ? gmean[c] : 0.0);
                lcu_tree_sum(sh, LCU_BLOCK);
                part[(int64_t)c * nch + k] = sh[0];
            }
        if (!sq) GRID(C, c) lcu_gn_mean_elem((int)c, gmean, part, cpg, nch, count);
    }
    GRID(C, c) lcu_gn_affine_elem((int)c, mean_c, scale_c, part, gmean, w, cpg, nch, count, eps);
    return 0;
}
static inline int emu_groupnorm_apply(float *out, const float *inp, const float *mean_c, const float *scale_c,
                                      const float *bias, int C, int64_t HW, int silu) {
    GRID((int64_t)C * HW, i) out[i] = lcu_gn_apply(inp[i], mean_c[i / HW], scale_c[i / HW], bias[i / HW], silu);
    return 0;
}
static inline int emu_im2col(float *col, int64_t cap, const float *inp, int Cin, int H, int W, int k, int y0, int rows,
                             lcu_conv_in op) {
    const int64_t total = (int64_t)Cin * k * k * rows * W;
    if (total > cap) return LCU_E_CAPACITY;
    GRID(total, i) col[i] = lcu_im2col_elem(i, inp, H, W, k, y0, rows, op);
    return 0;
}
static inline int emu_blend_tile(float *out, float *wsum, const float *tile, int Co, int oh, int ow, int Hf, int Wf,
                                 int Y0, int X0, int ot, int ob, int ol, int orr) {
    GRID((int64_t)oh * ow, i) lcu_blend_pixel(i, out, wsum, tile, Co, oh, ow, Hf, Wf, Y0, X0, ot, ob, ol, orr);
    return 0;
}
static inline int emu_blend_finish(float *out, const float *wsum, int Co, int64_t HW) {
    GRID((int64_t)Co * HW, i) out[i] /= wsum[i % HW];
    return 0;
}

#endif
