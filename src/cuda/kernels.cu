/* kernels.cu — latup's own CUDA kernels and their C launchers (launch.h). Every kernel is a thin
 * loop around a body from bodies.cuh: one thread per output element, one warp per row
 * (LayerNorm, softmax: lanes combined with the xor butterfly the harness emulates), or one block
 * per chunk (GroupNorm sums: a shared-memory tree). The matrix products are cuBLAS (gpu_ops.c). */
#include <cuda_runtime.h>

#include "cuda/bodies.cuh"
#include "cuda/launch.h"

namespace {

/* grid of n elements in LCU_BLOCK-thread blocks; n > 0 */
dim3 grid_for(int64_t n) { return dim3((unsigned)lcu_blocks(n, LCU_BLOCK)); }

int launched() { return (int)cudaGetLastError(); }

__device__ int64_t elem() { return lcu_elem_index(blockIdx.x, blockDim.x, threadIdx.x); }

/* the butterfly of lcu_butterfly_sum / lcu_butterfly_max, across the lanes of a warp */
__device__ double warp_sum(double v) {
    for (int off = LCU_WARP / 2; off > 0; off /= 2) v = v + __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

__device__ float warp_max(float v) {
    for (int off = LCU_WARP / 2; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

__global__ void fill_bits_kernel(float *x, int64_t n, uint32_t bits) {
    const int64_t i = elem();
    if (i < n) x[i] = __uint_as_float(bits);
}

__global__ void conv_bias_kernel(float *out, const float *bias, int64_t n, int64_t ld, int accumulate, int64_t total) {
    const int64_t i = elem();
    if (i < total) lcu_conv_bias_elem(i, out, bias, n, ld, accumulate);
}

__global__ void linear_bias_kernel(float *out, const float *bias, int Cout, int64_t total) {
    const int64_t i = elem();
    if (i < total) lcu_linear_bias_elem(i, out, bias, Cout);
}

__global__ void add_kernel(float *y, const float *x, int64_t n) {
    const int64_t i = elem();
    if (i < n) y[i] += x[i];
}

__global__ void channel_add_kernel(float *x, const float *v, float sign, int64_t n, int64_t total) {
    const int64_t i = elem();
    if (i < total) lcu_channel_add_elem(i, x, v, sign, n);
}

__global__ void pad_kernel(float *out, const float *inp, int H, int W, int Hp, int Wp, int64_t total) {
    const int64_t i = elem();
    if (i < total) out[i] = lcu_pad_elem(i, inp, H, W, Hp, Wp);
}

__global__ void crop_kernel(float *out, const float *inp, int H, int W, int Ho, int Wo, int64_t total) {
    const int64_t i = elem();
    if (i < total) out[i] = lcu_crop_elem(i, inp, H, W, Ho, Wo);
}

__global__ void transpose_kernel(float *out, const float *inp, const float *add, int64_t rows, int64_t cols) {
    const int64_t i = elem();
    if (i < rows * cols) lcu_transpose_elem(i, out, inp, add, rows, cols);
}

__global__ void pixel_shuffle_kernel(float *out, const float *inp, int H, int W, int r, int64_t total) {
    const int64_t i = elem();
    if (i < total) out[i] = inp[lcu_pixel_shuffle_src(i, H, W, r)];
}

__global__ void gelu_kernel(float *x, int64_t n) {
    const int64_t i = elem();
    if (i < n) x[i] = lcu_gelu_f(x[i]);
}

__global__ void leaky_kernel(float *x, int64_t n, float slope) {
    const int64_t i = elem();
    if (i < n) x[i] = lcu_leaky_f(x[i], slope);
}

/* warp w of the grid takes row w; the whole warp returns together, so the shuffles see 32 lanes */
__global__ void layernorm_kernel(float *out, const float *inp, const float *w, const float *b, int64_t N, int C,
                                 float eps) {
    const int64_t row = elem() / LCU_WARP;
    const int lane = threadIdx.x % LCU_WARP;
    if (row >= N) return;
    const float *x = inp + row * C;
    float *y = out + row * C;
    const double mean = warp_sum(lcu_lane_sum(x, C, lane, LCU_WARP)) / C;
    const double rstd = lcu_rstd(warp_sum(lcu_lane_sqdev(x, C, lane, LCU_WARP, mean)), C, eps);
    for (int j = lane; j < C; j += LCU_WARP) y[j] = lcu_ln_apply(x[j], mean, rstd, w[j], b[j]);
}

__global__ void window_partition_kernel(float *out, const float *inp, int H, int W, int C, int ws, int shift,
                                        int64_t total) {
    const int64_t i = elem();
    if (i < total) out[i] = inp[lcu_window_elem_token(i, H, W, C, ws, shift)];
}

/* the window map is a bijection: every token element is written by exactly one thread */
__global__ void window_reverse_add_kernel(float *t, const float *win, int H, int W, int C, int ws, int shift,
                                          int64_t total) {
    const int64_t i = elem();
    if (i < total) t[lcu_window_elem_token(i, H, W, C, ws, shift)] += win[i];
}

__global__ void softmax_kernel(float *S, int64_t rows, int n, int w0, lcu_score_op op) {
    const int64_t r = elem() / LCU_WARP;
    const int lane = threadIdx.x % LCU_WARP;
    if (r >= rows) return;
    float *row = S + r * n;
    const float m = warp_max(lcu_lane_scores(row, n, lane, LCU_WARP, w0 + (int)(r / n), (int)(r % n), op));
    const double s = warp_sum(lcu_lane_exp(row, n, lane, LCU_WARP, m));
    lcu_lane_scale(row, n, lane, LCU_WARP, (float)(1.0 / s));
}

/* block (k, c): chunk k of channel c -> part[c * nchunks + k]; sq: deviations from gmean[c] */
__global__ void gn_chunk_kernel(double *part, const float *x, int64_t HW, int nchunks, int sq, const double *gmean) {
    __shared__ double sh[LCU_BLOCK];
    const int k = blockIdx.x, c = blockIdx.y, t = threadIdx.x;
    sh[t] = lcu_chunk_thread_sum(x + (int64_t)c * HW, HW, k, t, LCU_BLOCK, sq, sq ? gmean[c] : 0.0);
    for (int stride = LCU_BLOCK / 2; stride > 0; stride /= 2) { /* lcu_tree_sum */
        __syncthreads();
        if (t < stride) sh[t] += sh[t + stride];
    }
    if (t == 0) part[(int64_t)c * nchunks + k] = sh[0];
}

__global__ void gn_mean_kernel(double *gmean, const double *part, int C, int cpg, int nchunks, double count) {
    const int c = (int)elem();
    if (c < C) lcu_gn_mean_elem(c, gmean, part, cpg, nchunks, count);
}

__global__ void gn_affine_kernel(float *mean_c, float *scale_c, const double *part, const double *gmean,
                                 const float *w, int C, int cpg, int nchunks, double count, float eps) {
    const int c = (int)elem();
    if (c < C) lcu_gn_affine_elem(c, mean_c, scale_c, part, gmean, w, cpg, nchunks, count, eps);
}

__global__ void gn_apply_kernel(float *out, const float *inp, const float *mean_c, const float *scale_c,
                                const float *bias, int64_t HW, int silu, int64_t total) {
    const int64_t i = elem();
    if (i >= total) return;
    const int64_t c = i / HW;
    out[i] = lcu_gn_apply(inp[i], mean_c[c], scale_c[c], bias[c], silu);
}

__global__ void im2col_kernel(float *col, const float *inp, int H, int W, int k, int y0, int rows, lcu_conv_in op,
                              int64_t total) {
    const int64_t i = elem();
    if (i < total) col[i] = lcu_im2col_elem(i, inp, H, W, k, y0, rows, op);
}

__global__ void blend_kernel(float *out, float *wsum, const float *tile, int Co, int oh, int ow, int Hf, int Wf,
                             int Y0, int X0, int ot, int ob, int ol, int orr) {
    const int64_t i = elem();
    if (i < (int64_t)oh * ow) lcu_blend_pixel(i, out, wsum, tile, Co, oh, ow, Hf, Wf, Y0, X0, ot, ob, ol, orr);
}

__global__ void blend_finish_kernel(float *out, const float *wsum, int64_t HW, int64_t total) {
    const int64_t i = elem();
    if (i < total) out[i] /= wsum[i % HW];
}

} // namespace

/* An empty launch is a no-op (a grid of 0 blocks is an error). */
#define LAUNCH(n, kernel, ...)                                                                      \
    do {                                                                                           \
        const int64_t n_ = (n);                                                                    \
        if (n_ <= 0) return 0;                                                                     \
        kernel<<<grid_for(n_), LCU_BLOCK>>>(__VA_ARGS__);                                          \
        return launched();                                                                         \
    } while (0)

extern "C" {

int lcu_fill_bits(float *x, int64_t n, uint32_t bits) { LAUNCH(n, fill_bits_kernel, x, n, bits); }

int lcu_conv_bias(float *out, const float *bias, int rows, int64_t n, int64_t ld, int accumulate) {
    LAUNCH((int64_t)rows * n, conv_bias_kernel, out, bias, n, ld, accumulate, (int64_t)rows * n);
}

int lcu_linear_bias(float *out, const float *bias, int64_t N, int Cout) {
    LAUNCH(N * Cout, linear_bias_kernel, out, bias, Cout, N * Cout);
}

int lcu_add(float *y, const float *x, int64_t n) { LAUNCH(n, add_kernel, y, x, n); }

int lcu_channel_add(float *x, const float *v, float sign, int C, int64_t n) {
    LAUNCH((int64_t)C * n, channel_add_kernel, x, v, sign, n, (int64_t)C * n);
}

int lcu_reflect_pad(float *out, const float *inp, int C, int H, int W, int Hp, int Wp) {
    const int64_t total = (int64_t)C * Hp * Wp;
    LAUNCH(total, pad_kernel, out, inp, H, W, Hp, Wp, total);
}

int lcu_crop(float *out, const float *inp, int C, int H, int W, int Ho, int Wo) {
    const int64_t total = (int64_t)C * Ho * Wo;
    LAUNCH(total, crop_kernel, out, inp, H, W, Ho, Wo, total);
}

int lcu_transpose(float *out, const float *inp, const float *add, int64_t rows, int64_t cols) {
    LAUNCH(rows * cols, transpose_kernel, out, inp, add, rows, cols);
}

int lcu_pixel_shuffle(float *out, const float *inp, int C, int H, int W, int r) {
    const int64_t total = (int64_t)C * H * r * W * r;
    LAUNCH(total, pixel_shuffle_kernel, out, inp, H, W, r, total);
}

int lcu_gelu(float *x, int64_t n) { LAUNCH(n, gelu_kernel, x, n); }

int lcu_leaky_relu(float *x, int64_t n, float slope) { LAUNCH(n, leaky_kernel, x, n, slope); }

int lcu_layernorm(float *out, const float *inp, const float *w, const float *b, int64_t N, int C, float eps) {
    LAUNCH(N * LCU_WARP, layernorm_kernel, out, inp, w, b, N, C, eps);
}

int lcu_window_partition(float *out, const float *inp, int H, int W, int C, int ws, int shift) {
    const int64_t total = (int64_t)H * W * C;
    LAUNCH(total, window_partition_kernel, out, inp, H, W, C, ws, shift, total);
}

int lcu_window_reverse_add(float *t, const float *win, int H, int W, int C, int ws, int shift) {
    const int64_t total = (int64_t)H * W * C;
    LAUNCH(total, window_reverse_add_kernel, t, win, H, W, C, ws, shift, total);
}

int lcu_softmax_rows(float *S, int64_t rows, int n, int w0, lcu_score_op op) {
    LAUNCH(rows * LCU_WARP, softmax_kernel, S, rows, n, w0, op);
}

int lcu_groupnorm_stats(float *mean_c, float *scale_c, const float *x, const float *w, int C, int64_t HW,
                        int groups, float eps, float *scratch, int64_t scratch_cap) {
    if (C <= 0 || HW <= 0 || groups <= 0 || C % groups != 0) return (int)cudaErrorInvalidValue;
    if (lcu_gn_scratch_floats(C, HW) > scratch_cap) return LCU_E_CAPACITY;
    const int nchunks = lcu_gn_chunks(HW), cpg = C / groups;
    const double count = (double)cpg * (double)HW;
    double *part = (double *)(void *)scratch, *gmean = part + (int64_t)C * nchunks;
    const dim3 chunks((unsigned)nchunks, (unsigned)C);
    gn_chunk_kernel<<<chunks, LCU_BLOCK>>>(part, x, HW, nchunks, 0, gmean);
    gn_mean_kernel<<<grid_for(C), LCU_BLOCK>>>(gmean, part, C, cpg, nchunks, count);
    gn_chunk_kernel<<<chunks, LCU_BLOCK>>>(part, x, HW, nchunks, 1, gmean);
    gn_affine_kernel<<<grid_for(C), LCU_BLOCK>>>(mean_c, scale_c, part, gmean, w, C, cpg, nchunks, count, eps);
    return launched();
}

int lcu_groupnorm_apply(float *out, const float *inp, const float *mean_c, const float *scale_c,
                        const float *bias, int C, int64_t HW, int silu) {
    LAUNCH((int64_t)C * HW, gn_apply_kernel, out, inp, mean_c, scale_c, bias, HW, silu, (int64_t)C * HW);
}

int lcu_im2col(float *col, int64_t cap, const float *inp, int Cin, int H, int W, int k, int y0, int rows,
               lcu_conv_in op) {
    const int64_t total = (int64_t)Cin * k * k * rows * W;
    if (total > cap) return LCU_E_CAPACITY;
    LAUNCH(total, im2col_kernel, col, inp, H, W, k, y0, rows, op, total);
}

int lcu_blend_tile(float *out, float *wsum, const float *tile, int Co, int oh, int ow, int Hf, int Wf, int Y0,
                   int X0, int ot, int ob, int ol, int orr) {
    LAUNCH((int64_t)oh * ow, blend_kernel, out, wsum, tile, Co, oh, ow, Hf, Wf, Y0, X0, ot, ob, ol, orr);
}

int lcu_blend_finish(float *out, const float *wsum, int Co, int64_t HW) {
    LAUNCH((int64_t)Co * HW, blend_finish_kernel, out, wsum, HW, (int64_t)Co * HW);
}

} // extern "C"
