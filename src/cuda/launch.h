/* launch.h — the kernel launchers of kernels.cu, callable from C: one per kernel, output first,
 * device pointers, all on the legacy default stream (cuBLAS uses it too, so every call is
 * ordered after the previous one). Each returns 0 or the CUDA error of the launch, or
 * LCU_E_CAPACITY when the scratch it was given cannot hold the work: a launcher that takes
 * scratch gets its capacity and checks it. */
#ifndef LATUP_CUDA_LAUNCH_H
#define LATUP_CUDA_LAUNCH_H

#include <stddef.h>
#include <stdint.h>

#include "cuda/bodies.cuh"

#ifdef __cplusplus
extern "C" {
#endif

#define LCU_E_CAPACITY (-1)

/* x[i] = bits (as a float) for i < n: arena guards */
int lcu_fill_bits(float *x, int64_t n, uint32_t bits);

/* out[r, j] (row stride ld) = bias[r] (0 if NULL), or += with accumulate: the start of a conv */
int lcu_conv_bias(float *out, const float *bias, int rows, int64_t n, int64_t ld, int accumulate);
/* out[r, c] = bias[c] (0 if NULL), r < N, c < Cout: the start of a Linear */
int lcu_linear_bias(float *out, const float *bias, int64_t N, int Cout);
/* y[i] += x[i] */
int lcu_add(float *y, const float *x, int64_t n);
/* x[c, i] += sign * v[c] */
int lcu_channel_add(float *x, const float *v, float sign, int C, int64_t n);
/* out = latup_reflect_pad(inp[C,H,W]) [C,Hp,Wp]; out = latup_crop(inp[C,H,W]) [C,Ho,Wo] */
int lcu_reflect_pad(float *out, const float *inp, int C, int H, int W, int Hp, int Wp);
int lcu_crop(float *out, const float *inp, int C, int H, int W, int Ho, int Wo);
/* out[cols, rows] = inp[rows, cols]^T, plus add[cols, rows] if add != NULL */
int lcu_transpose(float *out, const float *inp, const float *add, int64_t rows, int64_t cols);
/* PixelShuffle(r): inp[C*r*r, H, W] -> out[C, H*r, W*r] */
int lcu_pixel_shuffle(float *out, const float *inp, int C, int H, int W, int r);
/* in place: GELU, LeakyReLU */
int lcu_gelu(float *x, int64_t n);
int lcu_leaky_relu(float *x, int64_t n, float slope);

/* LayerNorm of each row of inp[N, C] (out may equal inp), warp per row, double statistics */
int lcu_layernorm(float *out, const float *inp, const float *w, const float *b, int64_t N, int C, float eps);

/* tokens [H*W, C] -> windows [nW, ws*ws, C] of the image rolled by -shift */
int lcu_window_partition(float *out, const float *inp, int H, int W, int C, int ws, int shift);
/* t[H*W, C] += latup_window_reverse(win [nW, ws*ws, C]) rolled back by +shift */
int lcu_window_reverse_add(float *t, const float *win, int H, int W, int C, int ws, int shift);

/* Softmax of each row of S[rows, n] in place, after adding op's bias and mask (table != NULL:
 * row r is query r % n of window w0 + r / n). */
int lcu_softmax_rows(float *S, int64_t rows, int n, int w0, lcu_score_op op);

/* GroupNorm statistics of x[C, HW] as a per-channel affine (bodies.cuh): mean_c[C], scale_c[C].
 * scratch: lcu_gn_scratch_floats(C, HW) floats. */
int lcu_groupnorm_stats(float *mean_c, float *scale_c, const float *x, const float *w, int C, int64_t HW,
                        int groups, float eps, float *scratch, int64_t scratch_cap);
/* out[c, i] = (x - mean_c) * scale_c + bias (+ SiLU); out may equal inp */
int lcu_groupnorm_apply(float *out, const float *inp, const float *mean_c, const float *scale_c,
                        const float *bias, int C, int64_t HW, int silu);

/* col[Cin*k*k, rows*W] = im2col of output rows [y0, y0 + rows) of op(inp), H x W the output
 * grid; LCU_E_CAPACITY if that is more than cap floats. */
int lcu_im2col(float *col, int64_t cap, const float *inp, int Cin, int H, int W, int k, int y0, int rows,
               lcu_conv_in op);

/* Tiled decoding: blend one decoded tile into out/wsum (lcu_blend_pixel), then out /= wsum. */
int lcu_blend_tile(float *out, float *wsum, const float *tile, int Co, int oh, int ow, int Hf, int Wf, int Y0,
                   int X0, int ot, int ob, int ol, int orr);
int lcu_blend_finish(float *out, const float *wsum, int Co, int64_t HW);

#ifdef __cplusplus
}
#endif
#endif
