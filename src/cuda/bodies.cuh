/* bodies.cuh — the arithmetic of every CUDA kernel of latup, one function per output element,
 * per lane of a warp or per thread of a block, written in the common subset of C11 and CUDA C++.
 * kernels.cu launches them over a grid; tests/test_cuda_host.c (plain C, no nvcc) runs the very
 * same functions over the same index space on the CPU and compares the result with the CPU
 * kernels and with naive twins, so index math, boundaries and tiling are checked without a GPU.
 * Numerics follow src/ops/kernels.c: norm statistics in double, the same formulas in the same
 * order (kernels.cu is compiled with -fmad=false so no FMA contraction changes the rounding). */
#ifndef LATUP_CUDA_BODIES_CUH
#define LATUP_CUDA_BODIES_CUH

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "model/tiling.h"

#ifdef __CUDACC__
#define LCU_HD static inline __host__ __device__
#else
#define LCU_HD static inline
#endif

#define LCU_WARP 32          /* lanes of a warp-per-row kernel */
#define LCU_BLOCK 256        /* threads of an element-wise or block-reduction kernel */
#define LCU_GN_CHUNK 16384   /* GroupNorm: elements of one channel summed by one block */
#define LCU_MASK_NEG (-100.0f) /* the shift mask's value between regions (BasicSR's) */

/* ---- grids --------------------------------------------------------------------------------------
 * Element-wise kernels run one thread per output element, i = block * LCU_BLOCK + thread, and
 * return when i >= n: the grid is the number of blocks covering n. */
LCU_HD int64_t lcu_blocks(int64_t n, int threads) { return (n + threads - 1) / threads; }
LCU_HD int64_t lcu_elem_index(int64_t block, int threads, int thread) { return block * threads + thread; }

/* ---- simple maps --------------------------------------------------------------------------------- */

/* Reflect padding bottom/right (edge excluded): padded row y >= H reads row 2H-2-y. */
LCU_HD int lcu_reflect(int y, int H) { return y < H ? y : 2 * H - 2 - y; }

/* out[C,Hp,Wp] element i of latup_reflect_pad(inp[C,H,W]) */
LCU_HD float lcu_pad_elem(int64_t i, const float *inp, int H, int W, int Hp, int Wp) {
    const int64_t plane = (int64_t)Hp * Wp;
    const int64_t c = i / plane;
    const int y = (int)(i % plane / Wp), x = (int)(i % Wp);
    return inp[(c * H + lcu_reflect(y, H)) * W + lcu_reflect(x, W)];
}

/* out[C,Ho,Wo] element i of the top-left crop of inp[C,H,W] */
LCU_HD float lcu_crop_elem(int64_t i, const float *inp, int H, int W, int Ho, int Wo) {
    const int64_t plane = (int64_t)Ho * Wo;
    const int64_t c = i / plane;
    const int y = (int)(i % plane / Wo), x = (int)(i % Wo);
    return inp[(c * H + y) * W + x];
}

/* Transpose: out[cols,rows] element i = inp[rows,cols] at (i % rows, i / rows). [C,HW] -> [HW,C]
 * is (rows, cols) = (C, HW); [HW,C] -> [C,HW] is (HW, C). */
LCU_HD int64_t lcu_transpose_src(int64_t i, int64_t rows, int64_t cols) {
    const int64_t r = i % rows, c = i / rows;
    return r * cols + c;
}

/* PixelShuffle(r): out[C, H*r, W*r] element i = inp[C*r*r, H, W] at this index */
LCU_HD int64_t lcu_pixel_shuffle_src(int64_t i, int H, int W, int r) {
    const int Ho = H * r, Wo = W * r;
    const int64_t plane = (int64_t)Ho * Wo;
    const int64_t c = i / plane;
    const int y = (int)(i % plane / Wo), x = (int)(i % Wo);
    return ((c * r * r + (int64_t)(y % r) * r + x % r) * H + y / r) * W + x / r;
}

/* Bias of a conv output [Cout, n] (row stride ld): element (co, j) = i / n, i % n */
LCU_HD int64_t lcu_rows_offset(int64_t i, int64_t n, int64_t ld) { return i / n * ld + i % n; }

/* Element i of small element-wise kernels, the store included. */
/* conv bias over out[rows, n] (row stride ld): = bias[r], or += with accumulate; bias NULL = 0 */
LCU_HD void lcu_conv_bias_elem(int64_t i, float *out, const float *bias, int64_t n, int64_t ld, int accumulate) {
    const float b = bias ? bias[i / n] : 0.0f;
    float *o = out + lcu_rows_offset(i, n, ld);
    *o = accumulate ? *o + b : b;
}
/* Linear bias over out[N, Cout] */
LCU_HD void lcu_linear_bias_elem(int64_t i, float *out, const float *bias, int Cout) {
    out[i] = bias ? bias[i % Cout] : 0.0f;
}
/* x[c, :] += sign * v[c] over planes of n */
LCU_HD void lcu_channel_add_elem(int64_t i, float *x, const float *v, float sign, int64_t n) { x[i] += sign * v[i / n]; }
/* out[cols, rows] = inp^T (+ add) */
LCU_HD void lcu_transpose_elem(int64_t i, float *out, const float *inp, const float *add, int64_t rows, int64_t cols) {
    const float v = inp[lcu_transpose_src(i, rows, cols)];
    out[i] = add ? v + add[i] : v;
}

/* ---- activations (the CPU's formulas) -------------------------------------------------------------- */
LCU_HD float lcu_gelu_f(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f)); }
LCU_HD float lcu_leaky_f(float x, float slope) { return x >= 0.0f ? x : slope * x; }
/* x / (1 + e^-x): -0 rather than NaN where expf(-x) overflows */
LCU_HD float lcu_silu_f(float x) { return x / (1.0f + expf(-x)); }

/* ---- shifted windows ------------------------------------------------------------------------------
 * Token (window w, position n) of the image rolled by (-shift, -shift) comes from unrolled token
 * ((wy*ws + n/ws + shift) mod H, (wx*ws + n%ws + shift) mod W), as torch.roll. */
LCU_HD int64_t lcu_window_src_token(int w, int n, int H, int W, int ws, int shift) {
    const int nWx = W / ws;
    const int y = ((w / nWx) * ws + n / ws + shift) % H;
    const int x = ((w % nWx) * ws + n % ws + shift) % W;
    return (int64_t)y * W + x;
}

/* windows [nW, N, C] element i <- tokens [H*W, C] (partition), or the token element that window
 * element i goes back to (reverse): the same map read both ways */
LCU_HD int64_t lcu_window_elem_token(int64_t i, int H, int W, int C, int ws, int shift) {
    const int N = ws * ws;
    const int c = (int)(i % C);
    const int64_t wn = i / C;
    return lcu_window_src_token((int)(wn / N), (int)(wn % N), H, W, ws, shift) * C + c;
}

/* Relative-position bias table row of the pair (a, b) of a window's tokens. */
LCU_HD int lcu_rel_index(int a, int b, int ws) {
    return (a / ws - b / ws + ws - 1) * (2 * ws - 1) + (a % ws - b % ws + ws - 1);
}

/* Region label of padded pixel (y, x) for the shift mask: 3 bands per axis, [0, H-ws),
 * [H-ws, H-shift), [H-shift, H); label = 3*band_y + band_x. */
LCU_HD int lcu_shift_band(int y, int H, int ws, int shift) {
    return y < H - ws ? 0 : (y < H - shift ? 1 : 2);
}

LCU_HD int lcu_shift_label(int w, int n, int H, int W, int ws, int shift) {
    const int nWx = W / ws;
    const int y = (w / nWx) * ws + n / ws, x = (w % nWx) * ws + n % ws;
    return 3 * lcu_shift_band(y, H, ws, shift) + lcu_shift_band(x, W, ws, shift);
}

/* The mask entry of window w between tokens a and b: 0 in the same region, else -100. */
LCU_HD float lcu_shift_mask(int w, int a, int b, int H, int W, int ws, int shift) {
    return lcu_shift_label(w, a, H, W, ws, shift) == lcu_shift_label(w, b, H, W, ws, shift) ? 0.0f
                                                                                             : LCU_MASK_NEG;
}

/* ---- warp-per-row reductions --------------------------------------------------------------------
 * A row of n values is split over `lanes` lanes: lane l takes elements l, l + lanes, ... Each lane
 * reduces its share in double; the lanes are then combined by the xor butterfly of
 * __shfl_xor_sync (offsets lanes/2 .. 1), after which every lane holds the same total.
 * lcu_butterfly_sum/_max below are that butterfly over an array: the harness's emulation of
 * the warp, the same additions in the same order as the device. */
LCU_HD double lcu_lane_sum(const float *x, int n, int lane, int lanes) {
    double s = 0.0;
    for (int j = lane; j < n; j += lanes) s += (double)x[j];
    return s;
}

LCU_HD double lcu_lane_sqdev(const float *x, int n, int lane, int lanes, double mean) {
    double s = 0.0;
    for (int j = lane; j < n; j += lanes) {
        const double d = (double)x[j] - mean;
        s += d * d;
    }
    return s;
}

LCU_HD void lcu_butterfly_sum(double *v, int lanes) {
    double t[LCU_WARP];
    for (int off = lanes / 2; off > 0; off /= 2) {
        for (int l = 0; l < lanes; l++) t[l] = v[l] + v[l ^ off];
        for (int l = 0; l < lanes; l++) v[l] = t[l];
    }
}

LCU_HD void lcu_butterfly_max(float *v, int lanes) {
    float t[LCU_WARP];
    for (int off = lanes / 2; off > 0; off /= 2) {
        for (int l = 0; l < lanes; l++) t[l] = fmaxf(v[l], v[l ^ off]);
        for (int l = 0; l < lanes; l++) v[l] = t[l];
    }
}

/* LayerNorm of one element once the row's statistics are known: the CPU's expression. */
LCU_HD float lcu_ln_apply(float x, double mean, double rstd, float w, float b) {
    return (float)((x - mean) * rstd) * w + b;
}

LCU_HD double lcu_rstd(double sqdev, double count, float eps) { return 1.0 / sqrt(sqdev / count + (double)eps); }

/* The LayerNorm row as the warp kernel runs it, lane by lane, for the harness (and as the
 * definition of that kernel: layernorm_kernel in kernels.cu is this with shuffles). */
LCU_HD void lcu_layernorm_row_lanes(float *y, const float *x, const float *w, const float *b, int C,
                                    float eps, int lanes) {
    double v[LCU_WARP];
    for (int l = 0; l < lanes; l++) v[l] = lcu_lane_sum(x, C, l, lanes);
    lcu_butterfly_sum(v, lanes);
    const double mean = v[0] / C;
    for (int l = 0; l < lanes; l++) v[l] = lcu_lane_sqdev(x, C, l, lanes, mean);
    lcu_butterfly_sum(v, lanes);
    const double rstd = lcu_rstd(v[0], C, eps);
    for (int l = 0; l < lanes; l++)
        for (int j = l; j < C; j += lanes) y[j] = lcu_ln_apply(x[j], mean, rstd, w[j], b[j]);
}

/* ---- attention scores and softmax (warp per row) -------------------------------------------------
 * Row a of window w, head h, holds scale * q k^T (cuBLAS). Pass 1 adds the relative-position bias
 * and the shift mask in torch's order, (s + bias) + mask, storing the score, and takes the lane's
 * max; pass 2 turns the row into expf(s - max) and sums the lane's share in double; pass 3
 * multiplies by (float)(1 / sum). table == NULL: a plain softmax (the VAE's attention). */
typedef struct {
    const float *table; /* relative_position_bias_table [(2ws-1)^2, nH], or NULL */
    int nH, h;          /* heads, this head */
    int ws;             /* window size (N = ws*ws = the row length when table != NULL) */
    int shift;          /* 0: no mask */
    int H, W;           /* padded image, for the mask's regions */
} lcu_score_op;

LCU_HD float lcu_lane_scores(float *row, int n, int lane, int lanes, int w, int a, lcu_score_op op) {
    float m = -INFINITY;
    for (int b = lane; b < n; b += lanes) {
        float s = row[b];
        if (op.table) {
            s = s + op.table[(int64_t)lcu_rel_index(a, b, op.ws) * op.nH + op.h];
            if (op.shift) s = s + lcu_shift_mask(w, a, b, op.H, op.W, op.ws, op.shift);
            row[b] = s;
        }
        m = fmaxf(m, s);
    }
    return m;
}

LCU_HD double lcu_lane_exp(float *row, int n, int lane, int lanes, float m) {
    double s = 0.0;
    for (int b = lane; b < n; b += lanes) {
        row[b] = expf(row[b] - m);
        s += row[b];
    }
    return s;
}

LCU_HD void lcu_lane_scale(float *row, int n, int lane, int lanes, float inv) {
    for (int b = lane; b < n; b += lanes) row[b] *= inv;
}

LCU_HD void lcu_softmax_row_lanes(float *row, int n, int w, int a, lcu_score_op op, int lanes) {
    float mx[LCU_WARP];
    double s[LCU_WARP];
    for (int l = 0; l < lanes; l++) mx[l] = lcu_lane_scores(row, n, l, lanes, w, a, op);
    lcu_butterfly_max(mx, lanes);
    for (int l = 0; l < lanes; l++) s[l] = lcu_lane_exp(row, n, l, lanes, mx[0]);
    lcu_butterfly_sum(s, lanes);
    const float inv = (float)(1.0 / s[0]);
    for (int l = 0; l < lanes; l++) lcu_lane_scale(row, n, l, lanes, inv);
}

/* ---- GroupNorm ------------------------------------------------------------------------------------
 * Statistics in three steps, each a fixed order (the result does not depend on the grid):
 *  1. block (c, k) sums chunk k (LCU_GN_CHUNK elements) of channel c: thread t takes elements
 *     t, t + threads, ... in double, then the block's shared-memory tree (lcu_tree_sum) adds them;
 *  2. group g adds its channels' chunk sums in order -> mean_g; step 1 again for the squared
 *     deviations around mean_g -> var_g (biased), rstd_g = 1/sqrt(var_g + eps);
 *  3. per channel: mean_c = (float)mean_g, scale_c = (float)(rstd_g * weight[c]), and the
 *     element map y = (x - mean_c) * scale_c + bias[c] (+ SiLU), as the CPU's fused conv input. */
LCU_HD int lcu_gn_chunks(int64_t HW) { return (int)((HW + LCU_GN_CHUNK - 1) / LCU_GN_CHUNK); }

/* Scratch of the statistics, in floats: chunk partials [C, nchunks] and group means [C], doubles. */
LCU_HD int64_t lcu_gn_scratch_floats(int C, int64_t HW) { return 2 * ((int64_t)C * lcu_gn_chunks(HW) + C); }

/* Thread t's share of chunk k of one channel plane x[HW]; sq: squared deviations from mean. */
LCU_HD double lcu_chunk_thread_sum(const float *x, int64_t HW, int k, int t, int threads, int sq, double mean) {
    const int64_t lo = (int64_t)k * LCU_GN_CHUNK;
    const int64_t hi = lo + LCU_GN_CHUNK < HW ? lo + LCU_GN_CHUNK : HW;
    double s = 0.0;
    for (int64_t j = lo + t; j < hi; j += threads) {
        const double v = (double)x[j];
        s += sq ? (v - mean) * (v - mean) : v;
    }
    return s;
}

/* The shared-memory tree of a block of `threads` (a power of two): stride threads/2 .. 1,
 * v[t] += v[t + stride]; the total ends in v[0]. */
LCU_HD void lcu_tree_sum(double *v, int threads) {
    for (int stride = threads / 2; stride > 0; stride /= 2)
        for (int t = 0; t < stride; t++) v[t] += v[t + stride];
}

/* Sum of group g's chunk partials part[C, nchunks] (channels g*cpg .. g*cpg+cpg-1, in order). */
LCU_HD double lcu_group_total(const double *part, int g, int cpg, int nchunks) {
    double s = 0.0;
    for (int j = 0; j < cpg; j++)
        for (int k = 0; k < nchunks; k++) s += part[(int64_t)(g * cpg + j) * nchunks + k];
    return s;
}

/* Steps 2 and 3 for channel c: its group's mean, then (after the squared deviations) its affine. */
LCU_HD void lcu_gn_mean_elem(int c, double *gmean, const double *part, int cpg, int nchunks, double count) {
    gmean[c] = lcu_group_total(part, c / cpg, cpg, nchunks) / count;
}
LCU_HD void lcu_gn_affine_elem(int c, float *mean_c, float *scale_c, const double *part, const double *gmean,
                               const float *w, int cpg, int nchunks, double count, float eps) {
    const double rstd = lcu_rstd(lcu_group_total(part, c / cpg, cpg, nchunks), count, eps);
    mean_c[c] = (float)gmean[c];
    scale_c[c] = (float)(rstd * w[c]);
}

LCU_HD float lcu_gn_apply(float x, float mean, float scale, float bias, int silu) {
    const float y = (x - mean) * scale + bias;
    return silu ? lcu_silu_f(y) : y;
}

/* ---- convolution input: im2col of one band, through the input transform ----------------------------
 * col[K, rows*W] with K = Cin*k*k, row r = (ci, ky, kx): element (r, j) is op(inp) at channel ci,
 * y = y0 + j/W + ky - p, x = j%W + kx - p, zero outside the H x W output grid (the conv's zero
 * padding, applied after the transform). op: nearest x2 upsampling (inp is [Cin, H/2, W/2]), then
 * the GroupNorm map, then SiLU. */
typedef struct {
    int upsample2x;
    const float *mean, *scale, *bias; /* per input channel; NULL: no norm */
    int silu;
} lcu_conv_in;

LCU_HD float lcu_conv_input(const float *inp, int ci, int y, int x, int H, int W, lcu_conv_in op) {
    float v;
    if (op.upsample2x)
        v = inp[((int64_t)ci * (H / 2) + y / 2) * (W / 2) + x / 2];
    else
        v = inp[((int64_t)ci * H + y) * W + x];
    if (op.mean) v = lcu_gn_apply(v, op.mean[ci], op.scale[ci], op.bias[ci], op.silu);
    return v;
}

LCU_HD float lcu_im2col_elem(int64_t i, const float *inp, int H, int W, int k, int y0, int rows,
                             lcu_conv_in op) {
    const int64_t band = (int64_t)rows * W;
    const int r = (int)(i / band);
    const int j = (int)(i % band);
    const int p = k / 2, ci = r / (k * k), ky = r / k % k, kx = r % k;
    const int y = y0 + j / W + ky - p, x = j % W + kx - p;
    if (y < 0 || y >= H || x < 0 || x >= W) return 0.0f;
    return lcu_conv_input(inp, ci, y, x, H, W, op);
}

/* The largest band (1..H rows) whose im2col fits cap floats; 0 if not even one row fits. The
 * conv derives its blocking from the scratch it was given, never from a separate plan. */
LCU_HD int lcu_band_rows(int64_t cap, int Cin, int W, int k, int H) {
    const int64_t per_row = (int64_t)Cin * k * k * W;
    const int64_t rows = per_row > 0 ? cap / per_row : H;
    return (int)(rows < H ? rows : H);
}

/* Whole units of `unit` floats that fit cap floats, at most `most` (0 if none fits): the windows
 * of one batched attention product, the query rows of one score block. */
LCU_HD int64_t lcu_units_in(int64_t cap, int64_t unit, int64_t most) {
    const int64_t r = cap / unit;
    return r < most ? r : most;
}

/* ---- tiled decoding --------------------------------------------------------------------------------
 * The tiles' geometry and ramps are src/model/tiling.h's, the CPU's decode_tiled's. */
/* Adds tile pixel i (of oh x ow, at output origin (Y0, X0)) into out[Co, Hf, Wf] with its ramp
 * weight, and the weight into wsum[Hf, Wf]; ovl = {top, bottom, left, right} overlaps (0: no
 * neighbour on that side). One thread per pixel writes all its channels: no two threads share an
 * output element within one tile, and tiles are blended one after the other. */
LCU_HD void lcu_blend_pixel(int64_t i, float *out, float *wsum, const float *tile, int Co, int oh, int ow,
                            int Hf, int Wf, int Y0, int X0, int ot, int ob, int ol, int orr) {
    const int y = (int)(i / ow), x = (int)(i % ow);
    const float wgt = latup_tile_ramp(y, oh, ot, ob) * latup_tile_ramp(x, ow, ol, orr);
    const int64_t o = (int64_t)(Y0 + y) * Wf + (X0 + x), plane = (int64_t)Hf * Wf, tplane = (int64_t)oh * ow;
    wsum[o] += wgt;
    for (int ch = 0; ch < Co; ch++) out[ch * plane + o] += wgt * tile[ch * tplane + i];
}

#endif
