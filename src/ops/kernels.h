/* kernels.h — the numeric building blocks of LUA and the VAE decoder, one function per
 * operation, llm.c style: output first, then inputs, then dimensions. All fp32, contiguous,
 * row-major. Feature maps are [C,H,W] (one image); token sequences are [L,C] with l = h*W + w.
 * Every kernel has a naive twin in tests/test_kernels.c.
 *
 * Threads and bits: every product is cut into tiles whose shape depends on the problem only, never
 * on the thread count; each tile is one single-threaded sgemm (OpenBLAS runs with one thread, see
 * runtime.c) inside our own OpenMP loop, and every reduction runs in a fixed order. So the output
 * is the same, bit for bit, on 1 thread or 64.
 *
 * Scratch: a kernel that needs scratch is handed a pointer and its capacity in floats, sizes
 * its blocking from that capacity, and fails (LATUP_E_INTERNAL naming the op) rather than write
 * past it. Its *_scratch_floats() function says how much it would like; the caller takes that
 * much from its arena (src/ops/arena.h), so the size is computed where it is used. */
#ifndef LATUP_KERNELS_H
#define LATUP_KERNELS_H

#include "latup.h"
#include "ops/runtime.h" /* latup_sgemm1, latup_exact_math: the kernels' callers use them too */

#include <stddef.h>
#include <stdint.h>

/* ---- convolution (src/ops/conv.c) ----------------------------------------------------------------
 * out[Cout,H,W] = conv(op(inp), weight[Cout,Cin,k,k]) + bias[Cout] (bias may be NULL), stride 1,
 * zero padding k/2, k odd. For k > 1 the output is computed in bands of rows, spread over the
 * workers, each in its share of the scratch: unfolded (im2col) and multiplied by one sgemm, or
 * by Winograd F(2x2,3x3) or F(4x4,3x3) (16 or 36 sgemms on transformed tiles). A 1x1 conv is a
 * plain product over column tiles and needs no scratch.
 *
 * op (may be NULL) says what happens to the input while it is unfolded, band by band, so the
 * transformed map never exists whole: nearest x2 upsampling, then a per-channel affine
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

/* How a conv is run: workers, an optional cap on the band height (tests force band splitting
 * with it), and the conv's name for error messages. */
typedef struct {
    int nthreads;             /* workers, >= 1 */
    int band_rows_max;        /* 0: the default band height */
    const char *name;         /* e.g. "layers.0.conv" */
    int wino_tile;            /* 0: the plan's tile rule; 2 or 4: that Winograd tile wherever Winograd
                                 applies (tests and the error tool) */
} conv_ctx;

/* How a conv runs: the method, the band height (1..H) and the scratch, set by the problem
 * (channels, size, k, op, band_rows_max, wino_tile) and never by the thread count, so the bits do
 * not depend on it. Winograd for 3x3 convs with 16+ channels in and out unless
 * latup_set_exact_math(1): F(4x4,3x3) with 128+ input channels, else F(2x2,3x3); else direct
 * (im2col). */
typedef struct {
    int winograd;         /* 0: direct; else the Winograd output tile m of F(mxm,3x3): 2 or 4 */
    int rows;             /* band height, output rows */
    int nbands;
    size_t shared;        /* scratch floats shared by the workers (the transformed filter) */
    size_t per_band;      /* scratch floats per worker */
} conv_plan;
conv_plan latup_conv2d_plan(int Cin, int H, int W, int Cout, int k, const conv_input_op *op, const conv_ctx *ctx);
/* What latup_conv2d_forward would like: shared + min(nthreads, bands) bands. */
size_t latup_conv2d_scratch_floats(int Cin, int H, int W, int Cout, int k, const conv_input_op *op,
                                   const conv_ctx *ctx);
/* H, W: the output size (the input is H/2 x W/2 when op->upsample2x). scratch holds
 * scratch_floats floats; fewer than latup_conv2d_scratch_floats() means fewer workers, then
 * shorter bands (other bits); not even one row: LATUP_E_INTERNAL naming ctx->name, nothing
 * written. */
latup_status latup_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                                  int Cin, int H, int W, int Cout, int k, const conv_input_op *op,
                                  float *scratch, size_t scratch_floats, const conv_ctx *ctx);

/* ---- strided convolution (src/ops/conv.c): the encoder's Downsample and patch code ------------------
 * out[Cout,Ho,Wo] = conv(inp[Cin,H,W] zero-padded by pad_t, pad_l (top, left) and pad_b, pad_r
 * (bottom, right), weight[Cout,Cin,k,k], stride s) + bias[Cout] (bias may be NULL), with
 * Ho = floor((H + pad_t + pad_b - k) / s) + 1 and Wo likewise (latup_conv_out_size). Direct: bands of
 * output rows, each unfolded (im2col [Cin*k*k, rows*Wo]) and multiplied by one sgemm, spread over
 * the workers, each in its share of the scratch. The band height comes from the problem (and
 * ctx->band_rows_max), never from the thread count; the scratch contract is latup_conv2d_forward's. */
typedef struct {
    int k, stride;
    int pad_t, pad_l, pad_b, pad_r;
} conv_geom;
/* Output size along an axis of n input pixels (0 when the padded input is shorter than k). */
static inline int latup_conv_out_size(int n, int k, int s, int lo, int hi) {
    const long m = (long)n + lo + hi - k;
    return m < 0 ? 0 : (int)(m / s + 1);
}
/* Band height and scratch as conv_plan (winograd 0, shared 0); Ho the output rows. */
conv_plan latup_conv2d_strided_plan(int Cin, int H, int W, int Cout, const conv_geom *g, const conv_ctx *ctx);
/* What latup_conv2d_strided_forward would like: min(nthreads, bands) bands. */
size_t latup_conv2d_strided_scratch_floats(int Cin, int H, int W, int Cout, const conv_geom *g, const conv_ctx *ctx);
/* H, W: the input size. Fewer scratch floats than asked means fewer workers, then shorter bands
 * (other bits); not even one row: LATUP_E_INTERNAL naming ctx->name, nothing written. */
latup_status latup_conv2d_strided_forward(float *out, const float *inp, const float *weight, const float *bias,
                                          int Cin, int H, int W, int Cout, const conv_geom *g, float *scratch,
                                          size_t scratch_floats, const conv_ctx *ctx);

/* ---- dense layers -----------------------------------------------------------------------------
 * out[N,Cout] = inp[N,Cin] @ weight[Cout,Cin]^T + bias[Cout] (bias may be NULL); tiles of rows. */
void latup_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int Cin, int Cout);

/* LayerNorm over the last dim: out[n,:] = (x - mean) / sqrt(var + eps) * weight + bias, biased
 * variance, statistics accumulated in double. out may equal inp. */
void latup_layernorm_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int N, int C, float eps);

/* Exact GELU: x * 0.5 * (1 + erf(x / sqrt(2))). out may equal inp. */
void latup_gelu_forward(float *out, const float *inp, size_t n);
/* LeakyReLU: x >= 0 ? x : slope * x. out may equal inp. */
void latup_leaky_relu_forward(float *out, const float *inp, size_t n, float slope);
/* In place, numerically safe softmax of each row of x[rows,cols]. */
void latup_softmax_rows(float *x, int rows, int cols);
/* y[i] += x[i] */
void latup_add_inplace(float *y, const float *x, size_t n);

/* ---- layout -------------------------------------------------------------------------------- */
/* [C,HW] <-> [HW,C] */
void latup_chw_to_hwc(float *out, const float *inp, int C, int HW);
void latup_hwc_to_chw(float *out, const float *inp, int C, int HW);
/* PixelShuffle(r): inp[C*r*r,H,W] -> out[C,H*r,W*r]; out[c,h*r+i,w*r+j] = inp[c*r*r+i*r+j,h,w]. */
void latup_pixel_shuffle(float *out, const float *inp, int C, int H, int W, int r);
/* Reflect padding on the bottom and right (edge excluded): inp[C,H,W] -> out[C,Hp,Wp],
 * out[c, H+k, :] = inp[c, H-2-k, :]. Requires Hp-H < H and Wp-W < W. */
void latup_reflect_pad(float *out, const float *inp, int C, int H, int W, int Hp, int Wp);
/* Top-left crop: inp[C,H,W] -> out[C,Ho,Wo], Ho <= H, Wo <= W. */
void latup_crop(float *out, const float *inp, int C, int H, int W, int Ho, int Wo);

/* ---- shifted windows ------------------------------------------------------------------------
 * Cyclic shift by (-shift,-shift) then partition into ws x ws windows:
 * inp tokens [H*W, C] -> out [nW, ws*ws, C], windows in row-major order, nW = (H/ws)*(W/ws).
 * H and W are multiples of ws; shift 0 means no roll. */
void latup_window_partition(float *out, const float *inp, int H, int W, int C, int ws, int shift);
/* The inverse: windows [nW, ws*ws, C] -> tokens [H*W, C], rolled back by (+shift,+shift). */
void latup_window_reverse(float *out, const float *inp, int H, int W, int C, int ws, int shift);
/* The fused forms the Swin block runs (the same bits as the pair they replace, tested so):
 * out = window_partition(layernorm(inp)) — each token normalised as it is copied into its window;
 * y += window_reverse(inp) — each window token added back at its place, no [L, C] temporary. */
void latup_layernorm_partition(float *out, const float *inp, const float *weight, const float *bias, int H,
                               int W, int C, int ws, int shift, float eps);
void latup_window_reverse_add(float *y, const float *inp, int H, int W, int C, int ws, int shift);

/* Relative-position bias: out[h, a, b] = table[index(a,b), h], table [(2ws-1)^2, nH],
 * index = (ya-yb+ws-1)*(2ws-1) + (xa-xb+ws-1); out is [nH, N, N], N = ws*ws. */
void latup_relative_bias_gather(float *out, const float *table, int ws, int nH);

/* Shifted-window mask for a padded H x W image: out [nW, N, N], 0 where tokens a, b of a window
 * carry the same region label, -100 otherwise. Labels: 3 bands per axis, [0,H-ws), [H-ws,H-shift),
 * [H-shift,H); label = 3*band_h + band_w. */
void latup_shift_mask_build(float *out, int H, int W, int ws, int shift);

/* Window multi-head self-attention on qkv [nW, N, 3C] (per token: q | k | v, each nH heads of
 * hd = C/nH, head-major), producing out [nW, N, C] (heads concatenated, before proj):
 * out_h = softmax(scale * q_h k_h^T + bias[h] + mask[w]) v_h. mask may be NULL. One (window, head)
 * pair per task; each worker holds an N x N score matrix in the scratch: scratch_floats / (N*N)
 * workers at most (nthreads wanted, latup_window_attention_scratch_floats()); none fits:
 * LATUP_E_INTERNAL, nothing written. */
size_t latup_window_attention_scratch_floats(int N, int nthreads);
latup_status latup_window_attention_forward(float *out, const float *qkv, const float *bias, const float *mask,
                                            int nW, int N, int nH, int hd, float scale, float *scratch,
                                            size_t scratch_floats, int nthreads);

/* ---- VAE decoder (AutoencoderKL of SD/SDXL/SD3/FLUX; docs: docs/spec/vae.md) ---------------- */

/* GroupNorm on one image x[C,HW]: channels split into `groups` consecutive groups of C/groups
 * (C a multiple of groups); mean and biased variance over each group's (C/groups) x HW values,
 * accumulated in double (two passes); out[c,i] = (x - mean_g) / sqrt(var_g + eps) * weight[c] +
 * bias[c]. out may equal inp. Threads: OpenMP over channels (the decoder has C >= 128). */
/* GroupNorm as a per-channel affine: mean_c[c] = its group's mean, scale_c[c] = rstd * weight[c]
 * (statistics in double), so y = (x - mean_c) * scale_c + bias. Used by the fused conv. */
void latup_groupnorm_affine(float *mean_c, float *scale_c, const float *inp, const float *weight, int C,
                      int HW, int groups, float eps);
void latup_groupnorm_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int C, int HW, int groups, float eps);
/* SiLU(GroupNorm(x)) in the same pass, bit-identical to groupnorm_forward then silu_forward. */
void latup_groupnorm_silu_forward(float *out, const float *inp, const float *weight, const float *bias,
                            int C, int HW, int groups, float eps);
/* SiLU: x * sigmoid(x), evaluated as x / (1 + expf(-x)). out may equal inp. */
void latup_silu_forward(float *out, const float *inp, size_t n);
/* Nearest-neighbour 2x upsampling: inp[C,H,W] -> out[C,2H,2W], out[c,y,x] = inp[c,y/2,x/2]. */
void latup_upsample_nearest2x(float *out, const float *inp, int C, int H, int W);

/* Single-head attention over all N tokens with a streaming (online) softmax:
 * out[N,C] = softmax(scale * q k^T) v, q, k, v [N,C] token-major (rows may not alias out).
 * Query rows are processed in blocks of bq, keys in blocks of bk, so the score matrix never
 * exists whole: each worker holds bq x bk scores and a bq x C accumulator. bq and bk are
 * clamped to [1, N]. One query block per task, at most nthreads workers, and no more than the
 * scratch holds (attention_blocked_scratch_floats(N, C, bq, bk, 1) floats each, any alignment);
 * not even one: LATUP_E_INTERNAL, nothing written. */
size_t latup_attention_blocked_scratch_floats(int N, int C, int bq, int bk, int nthreads);
latup_status latup_attention_blocked_forward(float *out, const float *q, const float *k, const float *v, int N,
                                             int C, float scale, int bq, int bk, float *scratch,
                                             size_t scratch_floats, int nthreads);

#endif
