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

/* ---- convolution (src/ops/conv.c) ----------------------------------------------------------------
 * out[Cout,H,W] = conv(inp[Cin,H,W], weight[Cout,Cin,k,k]) + bias[Cout] (bias may be NULL),
 * stride 1, zero padding k/2, k odd (1 or 3 here). For k > 1 the input is unfolded (im2col)
 * into `col` a band of rows at a time and each band is one sgemm; `col` must hold
 * conv2d_col_floats(Cin, W, k, band_rows) floats, band_rows >= 1. k == 1 needs no scratch. */
size_t conv2d_col_floats(int Cin, int W, int k, int band_rows);
/* The largest band (rows, 1..H) whose im2col fits in budget_floats. */
int conv2d_band_rows(int Cin, int H, int W, int k, size_t budget_floats);
void conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int Cin, int H, int W, int Cout, int k, float *col, int band_rows);

/* What conv2d_forward_ex does to its input while unfolding it, band by band (the transformed
 * map is never materialised): nearest x2 upsampling, then a per-channel affine
 * (x - norm_mean[c]) * norm_scale[c] + norm_bias[c] (GroupNorm, from groupnorm_affine), then
 * SiLU; zero padding is applied after the transform. `accumulate`: out += conv (bias included)
 * instead of out = conv. For k == 1 only `accumulate` is honoured. */
typedef struct {
    int upsample2x;           /* inp is [Cin, H/2, W/2]; the output is H x W */
    int norm;                 /* apply the affine below */
    const float *norm_mean;   /* per input channel */
    const float *norm_scale;  /* rstd * weight, per input channel */
    const float *norm_bias;   /* GroupNorm bias, per input channel */
    int silu;                 /* SiLU after the norm */
    int accumulate;
} conv_input_op;
/* col (+ the transformed band) floats for conv2d_forward_ex; op may be NULL. */
size_t conv2d_ex_scratch_floats(int Cin, int W, int k, int band_rows, const conv_input_op *op);
void conv2d_forward_ex(float *out, const float *inp, const float *weight, const float *bias,
                       int Cin, int H, int W, int Cout, int k, float *col, int band_rows,
                       const conv_input_op *op);

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

/* ---- VAE decoder (AutoencoderKL of SD/SDXL/SD3/FLUX; docs: shared/spec/vae.md) ---------------- */

/* GroupNorm on one image x[C,HW]: channels split into `groups` consecutive groups of C/groups
 * (C a multiple of groups); mean and biased variance over each group's (C/groups) x HW values,
 * accumulated in double (two passes); out[c,i] = (x - mean_g) / sqrt(var_g + eps) * weight[c] +
 * bias[c]. out may equal inp. Threads: OpenMP over channels (the decoder has C >= 128). */
/* GroupNorm as a per-channel affine: mean_c[c] = its group's mean, scale_c[c] = rstd * weight[c]
 * (statistics in double), so y = (x - mean_c) * scale_c + bias. Used by the fused conv. */
void groupnorm_affine(float *mean_c, float *scale_c, const float *inp, const float *weight, int C,
                      int HW, int groups, float eps);
void groupnorm_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int C, int HW, int groups, float eps);
/* SiLU(GroupNorm(x)) in the same pass, bit-identical to groupnorm_forward then silu_forward. */
void groupnorm_silu_forward(float *out, const float *inp, const float *weight, const float *bias,
                            int C, int HW, int groups, float eps);
/* SiLU: x * sigmoid(x), evaluated as x / (1 + expf(-x)). out may equal inp. */
void silu_forward(float *out, const float *inp, size_t n);
/* Nearest-neighbour 2x upsampling: inp[C,H,W] -> out[C,2H,2W], out[c,y,x] = inp[c,y/2,x/2]. */
void upsample_nearest2x(float *out, const float *inp, int C, int H, int W);

/* Single-head attention over all N tokens with a streaming (online) softmax:
 * out[N,C] = softmax(scale * q k^T) v, q, k, v [N,C] token-major (rows may not alias out).
 * Query rows are processed in blocks of bq, keys in blocks of bk, so the score matrix never
 * exists whole: each thread holds bq x bk scores and a bq x C accumulator. bq and bk are
 * clamped to [1, N]. Threads: one query block per task (OpenMP, at most nthreads), sgemm
 * single-threaded inside, so keep ceil(N/bq) >= nthreads. scratch holds
 * attention_blocked_scratch_floats(N, C, bq, bk, nthreads) floats, any alignment. */
size_t attention_blocked_scratch_floats(int N, int C, int bq, int bk, int nthreads);
void attention_blocked_forward(float *out, const float *q, const float *k, const float *v, int N,
                               int C, float scale, int bq, int bk, float *scratch, int nthreads);

#endif
