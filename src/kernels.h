/* kernels.h — the numeric building blocks of LUA (and later the VAE decoder), one function per
 * operation, llm.c style: output first, then inputs, then dimensions. All fp32, contiguous,
 * row-major. Feature maps are [C,H,W] (one image); token sequences are [L,C] with l = h*W + w.
 * Every kernel has a naive twin in tests/test_kernels.c. OpenMP parallelism lives inside the
 * kernels; cblas_sgemm is only called outside OpenMP parallel regions (or single-threaded inside
 * one), so BLAS threads never fight ours. */
#ifndef LATUP_KERNELS_H
#define LATUP_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ---- convolution ----------------------------------------------------------------------------
 * out[Cout,H,W] = conv(inp[Cin,H,W], weight[Cout,Cin,k,k]) + bias[Cout] (bias may be NULL),
 * stride 1, zero padding k/2, k odd (1 or 3 in LUA). For k > 1 the input is unfolded (im2col)
 * into `col` a band of rows at a time and each band is one sgemm; `col` must hold
 * conv2d_col_floats(Cin, W, k, band_rows) floats, band_rows >= 1. k == 1 needs no scratch. */
size_t conv2d_col_floats(int Cin, int W, int k, int band_rows);
/* The largest band (rows, 1..H) whose im2col fits in budget_floats. */
int conv2d_band_rows(int Cin, int H, int W, int k, size_t budget_floats);
void conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int Cin, int H, int W, int Cout, int k, float *col, int band_rows);

/* ---- dense layers -----------------------------------------------------------------------------
 * out[N,Cout] = inp[N,Cin] @ weight[Cout,Cin]^T + bias[Cout] (bias may be NULL). */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int Cin, int Cout);

/* LayerNorm over the last dim: out[n,:] = (x - mean) / sqrt(var + eps) * weight + bias, biased
 * variance, statistics accumulated in double. out may equal inp. */
void layernorm_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int N, int C, float eps);

/* Exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))). out may equal inp. */
void gelu_forward(float *out, const float *inp, size_t n);
/* LeakyReLU: x >= 0 ? x : slope * x. out may equal inp. */
void leaky_relu_forward(float *out, const float *inp, size_t n, float slope);
/* In place, numerically safe softmax of each row of x[rows,cols]. */
void softmax_rows(float *x, int rows, int cols);
/* y[i] += x[i] */
void add_inplace(float *y, const float *x, size_t n);

/* ---- layout -------------------------------------------------------------------------------- */
/* [C,HW] <-> [HW,C] */
void chw_to_hwc(float *out, const float *inp, int C, int HW);
void hwc_to_chw(float *out, const float *inp, int C, int HW);
/* PixelShuffle(r): inp[C*r*r,H,W] -> out[C,H*r,W*r]; out[c,h*r+i,w*r+j] = inp[c*r*r+i*r+j,h,w]. */
void pixel_shuffle(float *out, const float *inp, int C, int H, int W, int r);
/* Reflect padding on the bottom and right (edge excluded): inp[C,H,W] -> out[C,Hp,Wp],
 * out[c, H+k, :] = inp[c, H-2-k, :]. Requires Hp-H < H and Wp-W < W. */
void reflect_pad(float *out, const float *inp, int C, int H, int W, int Hp, int Wp);
/* Top-left crop: inp[C,H,W] -> out[C,Ho,Wo], Ho <= H, Wo <= W. */
void crop(float *out, const float *inp, int C, int H, int W, int Ho, int Wo);

/* ---- shifted windows ------------------------------------------------------------------------
 * Cyclic shift by (-shift,-shift) then partition into ws x ws windows:
 * inp tokens [H*W, C] -> out [nW, ws*ws, C], windows in row-major order, nW = (H/ws)*(W/ws).
 * H and W are multiples of ws; shift 0 means no roll. */
void window_partition(float *out, const float *inp, int H, int W, int C, int ws, int shift);
/* The inverse: windows [nW, ws*ws, C] -> tokens [H*W, C], rolled back by (+shift,+shift). */
void window_reverse(float *out, const float *inp, int H, int W, int C, int ws, int shift);

/* Relative-position bias: out[h, a, b] = table[index(a,b), h], table [(2ws-1)^2, nH],
 * index = (ya-yb+ws-1)*(2ws-1) + (xa-xb+ws-1); out is [nH, N, N], N = ws*ws. */
void relative_bias_gather(float *out, const float *table, int ws, int nH);

/* Shifted-window mask for a padded H x W image: out [nW, N, N], 0 where tokens a, b of a window
 * carry the same region label, -100 otherwise. Labels: 3 bands per axis, [0,H-ws), [H-ws,H-shift),
 * [H-shift,H); label = 3*band_h + band_w. */
void shift_mask_build(float *out, int H, int W, int ws, int shift);

/* Window multi-head self-attention on qkv [nW, N, 3C] (per token: q | k | v, each nH heads of
 * hd = C/nH, head-major), producing out [nW, N, C] (heads concatenated, before proj):
 * out_h = softmax(scale * q_h k_h^T + bias[h] + mask[w]) v_h. mask may be NULL. scratch holds
 * window_attention_scratch_floats(N, nthreads) floats. */
size_t window_attention_scratch_floats(int N, int nthreads);
void window_attention_forward(float *out, const float *qkv, const float *bias, const float *mask,
                              int nW, int N, int nH, int hd, float scale, float *scratch,
                              int nthreads);

#endif
