/* kernels.c — fp32 CPU kernels for LUA: banded im2col convolution and linear layers on
 * cblas_sgemm, LayerNorm with double statistics, exact GELU, softmax, and the shifted-window
 * machinery (partition/reverse by index arithmetic, relative-position bias, shift mask, window
 * attention); for the VAE decoder GroupNorm (+SiLU), nearest 2x upsampling and blocked
 * full attention with a streaming softmax. The naive twins live in tests/test_kernels.c. */
#include "ops/kernels.h"

#include "common.h"
#include "ops/fastmath.h"
#include "ops/runtime.h"

#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- dense layers ---------------------------------------------------------------------------- */

/* Tiles of tokens, each one sgemm against the whole weight (which that sgemm packs once): an
 * eighth of the rows, between 128 and 1024 in multiples of 64, so there are tiles for several
 * workers and the weight is packed once per 1024 tokens on large inputs. */
static int linear_rows(int N) {
    int r = (N + 7) / 8;
    r = (r + 63) / 64 * 64;
    return r < 128 ? 128 : (r > 1024 ? 1024 : r);
}

void latup_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int Cin, int Cout) {
    const int tile = linear_rows(N), ntiles = (N + tile - 1) / tile;
#pragma omp parallel for schedule(dynamic, 1)
    for (int t = 0; t < ntiles; t++) {
        const int n0 = t * tile, rows = N - n0 < tile ? N - n0 : tile;
        float *o = out + (size_t)n0 * Cout;
        for (int n = 0; n < rows; n++) {
            if (bias)
                memcpy(o + (size_t)n * Cout, bias, (size_t)Cout * sizeof(float));
            else
                memset(o + (size_t)n * Cout, 0, (size_t)Cout * sizeof(float));
        }
        latup_sgemm1(1, rows, Cout, Cin, 1.0f, inp + (size_t)n0 * Cin, Cin, weight, Cin, 1.0f, o, Cout);
    }
}

/* One token's LayerNorm: two passes in double; the sums are vectorised (several partial sums, in
 * an order the code fixes, not the threads), which a single serial double accumulator would not
 * be. Shared by layernorm_forward and layernorm_partition, so the two give the same bits. */
static void layernorm_row(float *y, const float *x, const float *weight, const float *bias, int C, float eps) {
    double sum = 0.0, sq = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int c = 0; c < C; c++) sum += x[c];
    const double mean = sum / C;
#pragma omp simd reduction(+ : sq)
    for (int c = 0; c < C; c++) {
        const double d = x[c] - mean;
        sq += d * d;
    }
    const double rstd = 1.0 / sqrt(sq / C + (double)eps);
#pragma omp simd
    for (int c = 0; c < C; c++)
        y[c] = (float)((x[c] - mean) * rstd) * weight[c] + bias[c];
}

void latup_layernorm_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) layernorm_row(out + (size_t)n * C, inp + (size_t)n * C, weight, bias, C, eps);
}

/* Elementwise loops in chunks: each chunk one vectorised pass. */
#define CHUNK 4096

void latup_gelu_forward(float *out, const float *inp, size_t n) {
    const int exact = latup_exact_math();
    const long nchunks = (long)((n + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nchunks; c++) {
        const size_t i0 = (size_t)c * CHUNK, i1 = i0 + CHUNK < n ? i0 + CHUNK : n;
        if (exact)
            for (size_t i = i0; i < i1; i++) out[i] = latup_gelu_exact(inp[i]);
        else
#pragma omp simd
            for (size_t i = i0; i < i1; i++) out[i] = latup_gelu_fast(inp[i]);
    }
}

void latup_leaky_relu_forward(float *out, const float *inp, size_t n, float slope) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = x >= 0.0f ? x : slope * x;
    }
}

/* x[i] = e^(x[i] - m) for a row whose max is m (so x[i] - m <= 0); returns the sum in double (a
 * vectorised reduction: its order is fixed by the code, not by threads). */
static double exp_row(float *x, int n, float m, int exact) {
    double s = 0.0;
    if (exact) {
        for (int i = 0; i < n; i++) {
            x[i] = expf(x[i] - m);
            s += x[i];
        }
    } else {
#pragma omp simd
        for (int i = 0; i < n; i++) x[i] = latup_exp_fast_nonpos(x[i] - m);
#pragma omp simd reduction(+ : s)
        for (int i = 0; i < n; i++) s += x[i];
    }
    return s;
}

/* The max in 16 lanes (GCC does not vectorise an `omp simd reduction(max)`); max is exact, so the
 * lanes give the same value as a serial scan for finite input. */
#define LANES 16
static float lanes_max(const float *lane) {
    float m = lane[0];
    for (int l = 1; l < LANES; l++) m = lane[l] > m ? lane[l] : m;
    return m;
}

static float row_max(const float *x, int n) {
    float lane[LANES];
    for (int l = 0; l < LANES; l++) lane[l] = x[0];
    int i = 0;
    for (; i + LANES <= n; i += LANES)
#pragma omp simd
        for (int l = 0; l < LANES; l++) lane[l] = x[i + l] > lane[l] ? x[i + l] : lane[l];
    float m = lanes_max(lane);
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* row = (row + bias) [+ mask], torch's order, and its max, in one pass. */
static float add_bias_max(float *row, const float *bias, const float *mask, int n) {
    float lane[LANES];
    const float first = mask ? (row[0] + bias[0]) + mask[0] : row[0] + bias[0];
    for (int l = 0; l < LANES; l++) lane[l] = first;
    int i = 0;
    if (mask)
        for (; i + LANES <= n; i += LANES)
#pragma omp simd
            for (int l = 0; l < LANES; l++) {
                const float v = (row[i + l] + bias[i + l]) + mask[i + l];
                row[i + l] = v;
                lane[l] = v > lane[l] ? v : lane[l];
            }
    else
        for (; i + LANES <= n; i += LANES)
#pragma omp simd
            for (int l = 0; l < LANES; l++) {
                const float v = row[i + l] + bias[i + l];
                row[i + l] = v;
                lane[l] = v > lane[l] ? v : lane[l];
            }
    float m = lanes_max(lane);
    for (; i < n; i++) {
        const float v = mask ? (row[i] + bias[i]) + mask[i] : row[i] + bias[i];
        row[i] = v;
        m = v > m ? v : m;
    }
    return m;
}

/* One row of softmax_rows (the attention kernel runs the same steps with its bias add fused). */
static void softmax_row(float *x, int n, int exact) {
    const double s = exp_row(x, n, row_max(x, n), exact);
    const float inv = (float)(1.0 / s);
#pragma omp simd
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void latup_softmax_rows(float *x, int rows, int cols) {
    const int exact = latup_exact_math();
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) softmax_row(x + (size_t)r * cols, cols, exact);
}

void latup_add_inplace(float *y, const float *x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* ---- layout ---------------------------------------------------------------------------------- */

/* Transposes in 32x32 tiles so both sides stay in cache. */
#define TT 32
static void transpose(float *out, const float *inp, int rows, int cols) {
#pragma omp parallel for schedule(static)
    for (int r0 = 0; r0 < rows; r0 += TT)
        for (int c0 = 0; c0 < cols; c0 += TT) {
            int r1 = r0 + TT < rows ? r0 + TT : rows, c1 = c0 + TT < cols ? c0 + TT : cols;
            for (int r = r0; r < r1; r++)
                for (int c = c0; c < c1; c++) out[(size_t)c * rows + r] = inp[(size_t)r * cols + c];
        }
}

void latup_chw_to_hwc(float *out, const float *inp, int C, int HW) { transpose(out, inp, C, HW); }
void latup_hwc_to_chw(float *out, const float *inp, int C, int HW) { transpose(out, inp, HW, C); }

void latup_pixel_shuffle(float *out, const float *inp, int C, int H, int W, int r) {
    const int Ho = H * r, Wo = W * r;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int i = 0; i < r; i++)
            for (int j = 0; j < r; j++) {
                const float *src = inp + ((size_t)c * r * r + (size_t)i * r + j) * H * W;
                float *dst = out + (size_t)c * Ho * Wo;
                for (int h = 0; h < H; h++)
                    for (int w = 0; w < W; w++)
                        dst[(size_t)(h * r + i) * Wo + (size_t)w * r + j] = src[(size_t)h * W + w];
            }
}

void latup_reflect_pad(float *out, const float *inp, int C, int H, int W, int Hp, int Wp) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const float *s = inp + (size_t)c * H * W;
        float *d = out + (size_t)c * Hp * Wp;
        for (int y = 0; y < H; y++) {
            memcpy(d + (size_t)y * Wp, s + (size_t)y * W, (size_t)W * sizeof(float));
            for (int k = 0; k < Wp - W; k++) d[(size_t)y * Wp + W + k] = s[(size_t)y * W + W - 2 - k];
        }
        for (int k = 0; k < Hp - H; k++)
            memcpy(d + (size_t)(H + k) * Wp, d + (size_t)(H - 2 - k) * Wp, (size_t)Wp * sizeof(float));
    }
}

void latup_crop(float *out, const float *inp, int C, int H, int W, int Ho, int Wo) {
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++)
        for (int y = 0; y < Ho; y++)
            memcpy(out + ((size_t)c * Ho + y) * Wo, inp + ((size_t)c * H + y) * W,
                   (size_t)Wo * sizeof(float));
}

/* ---- shifted windows ------------------------------------------------------------------------ */

/* Token (window w, position n) of the rolled image comes from unrolled token
 * ((wy*ws+ya+shift) mod H, (wx*ws+xa+shift) mod W): torch.roll(x, (-shift, -shift)). */
static inline size_t window_src_token(int w, int n, int H, int W, int ws, int shift) {
    const int nWx = W / ws;
    const int y = ((w / nWx) * ws + n / ws + shift) % H;
    const int x = ((w % nWx) * ws + n % ws + shift) % W;
    return (size_t)y * W + x;
}

void latup_window_partition(float *out, const float *inp, int H, int W, int C, int ws, int shift) {
    const int nW = (H / ws) * (W / ws), N = ws * ws;
#pragma omp parallel for schedule(static)
    for (int w = 0; w < nW; w++)
        for (int n = 0; n < N; n++)
            memcpy(out + ((size_t)w * N + n) * C, inp + window_src_token(w, n, H, W, ws, shift) * C,
                   (size_t)C * sizeof(float));
}

void latup_window_reverse(float *out, const float *inp, int H, int W, int C, int ws, int shift) {
    const int nW = (H / ws) * (W / ws), N = ws * ws;
#pragma omp parallel for schedule(static)
    for (int w = 0; w < nW; w++)
        for (int n = 0; n < N; n++)
            memcpy(out + window_src_token(w, n, H, W, ws, shift) * C, inp + ((size_t)w * N + n) * C,
                   (size_t)C * sizeof(float));
}

void latup_layernorm_partition(float *out, const float *inp, const float *weight, const float *bias, int H,
                               int W, int C, int ws, int shift, float eps) {
    const int nW = (H / ws) * (W / ws), N = ws * ws;
#pragma omp parallel for schedule(static)
    for (int w = 0; w < nW; w++)
        for (int n = 0; n < N; n++)
            layernorm_row(out + ((size_t)w * N + n) * C, inp + window_src_token(w, n, H, W, ws, shift) * C, weight,
                          bias, C, eps);
}

void latup_window_reverse_add(float *y, const float *inp, int H, int W, int C, int ws, int shift) {
    const int nW = (H / ws) * (W / ws), N = ws * ws;
#pragma omp parallel for schedule(static)
    for (int w = 0; w < nW; w++)
        for (int n = 0; n < N; n++) {
            float *d = y + window_src_token(w, n, H, W, ws, shift) * C;
            const float *x = inp + ((size_t)w * N + n) * C;
#pragma omp simd
            for (int c = 0; c < C; c++) d[c] += x[c];
        }
}

void latup_relative_bias_gather(float *out, const float *table, int ws, int nH) {
    const int N = ws * ws, span = 2 * ws - 1;
    for (int a = 0; a < N; a++)
        for (int b = 0; b < N; b++) {
            const int idx = (a / ws - b / ws + ws - 1) * span + (a % ws - b % ws + ws - 1);
            for (int h = 0; h < nH; h++) out[((size_t)h * N + a) * N + b] = table[(size_t)idx * nH + h];
        }
}

static inline int shift_band(int y, int H, int ws, int shift) {
    return y < H - ws ? 0 : (y < H - shift ? 1 : 2);
}

void latup_shift_mask_build(float *out, int H, int W, int ws, int shift) {
    const int nWx = W / ws, nW = (H / ws) * nWx, N = ws * ws;
#pragma omp parallel for schedule(static)
    for (int w = 0; w < nW; w++) {
        int label[N];
        for (int n = 0; n < N; n++) {
            const int y = (w / nWx) * ws + n / ws, x = (w % nWx) * ws + n % ws;
            label[n] = 3 * shift_band(y, H, ws, shift) + shift_band(x, W, ws, shift);
        }
        float *m = out + (size_t)w * N * N;
        for (int a = 0; a < N; a++)
            for (int b = 0; b < N; b++) m[(size_t)a * N + b] = label[a] == label[b] ? 0.0f : -100.0f;
    }
}

size_t latup_window_attention_scratch_floats(int N, int nthreads) {
    return (size_t)N * N * (size_t)(nthreads > 0 ? nthreads : 1);
}

latup_status latup_window_attention_forward(float *out, const float *qkv, const float *bias, const float *mask,
                                            int nW, int N, int nH, int hd, float scale, float *scratch,
                                            size_t scratch_floats, int nthreads) {
    const int C = nH * hd, ld = 3 * C;
    const size_t nn = (size_t)N * N;
    const int exact = latup_exact_math();
    int workers = nthreads < 1 ? 1 : nthreads;
    if ((size_t)workers > scratch_floats / nn) workers = (int)(scratch_floats / nn);
    if (workers < 1 || !scratch)
        return latup_fail(LATUP_E_INTERNAL, "window attention: scratch of %zu floats holds no %dx%d score matrix",
                          scratch_floats, N, N);
    /* One (window, head) pair per task; each worker owns an N x N score matrix. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(workers)
    for (int t = 0; t < nW * nH; t++) {
        const int w = t / nH, h = t % nH;
#ifdef _OPENMP
        float *S = scratch + (size_t)omp_get_thread_num() * nn;
#else
        float *S = scratch;
#endif
        const float *q = qkv + (size_t)w * N * ld + (size_t)h * hd;
        const float *k = q + C, *v = q + 2 * C;
        /* S = scale * q k^T */
        latup_sgemm1(1, N, N, hd, scale, q, ld, k, ld, 0.0f, S, N);
        const float *bh = bias + (size_t)h * nn;
        const float *mw = mask ? mask + (size_t)w * nn : NULL;
        for (int a = 0; a < N; a++) {
            float *row = S + (size_t)a * N;
            /* scores + bias (+ mask), then the softmax: the same arithmetic as softmax_row */
            const float m = add_bias_max(row, bh + (size_t)a * N, mw ? mw + (size_t)a * N : NULL, N);
            const float inv = (float)(1.0 / exp_row(row, N, m, exact));
#pragma omp simd
            for (int b = 0; b < N; b++) row[b] *= inv;
        }
        /* out_h = P v */
        latup_sgemm1(0, N, hd, N, 1.0f, S, N, v, ld, 0.0f, out + (size_t)w * N * C + (size_t)h * hd, C);
    }
    return LATUP_OK;
}

/* ---- VAE decoder ----------------------------------------------------------------------------- */

void latup_silu_forward(float *out, const float *inp, size_t n) {
    const int exact = latup_exact_math();
    const long nchunks = (long)((n + CHUNK - 1) / CHUNK);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < nchunks; c++) {
        const size_t i0 = (size_t)c * CHUNK, i1 = i0 + CHUNK < n ? i0 + CHUNK : n;
        if (exact)
            for (size_t i = i0; i < i1; i++) out[i] = latup_silu_exact(inp[i]);
        else
#pragma omp simd
            for (size_t i = i0; i < i1; i++) out[i] = latup_silu_fast(inp[i]);
    }
}

/* sum_i x[i] and sum_i (x[i] - mean)^2 of one channel, in double. `omp simd` lets the
 * compiler keep several partial sums (a reordering we accept; -ffast-math stays off), which
 * matters here: a single serial double accumulator is latency-bound at ~1 add per 4 cycles. */
static double channel_sum(const float *x, int n) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += (double)x[i];
    return s;
}

static double channel_sumsq(const float *x, int n, double mean) {
    double s = 0.0;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) {
        const double d = (double)x[i] - mean;
        s += d * d;
    }
    return s;
}

/* The body of groupnorm_forward and groupnorm_silu_forward: one flag rather than two copies.
 * Three passes over x: group means, group variances around those means (the two-pass form, no
 * cancellation when |mean| >> std), then the affine map. Partial sums are per channel, so the
 * parallel unit is a channel, not a group: every thread gets work even when groups < threads. */
void latup_groupnorm_affine(float *mean_c, float *scale_c, const float *inp, const float *weight, int C,
                      int HW, int groups, float eps) {
    if (C <= 0 || HW <= 0 || groups <= 0 || C % groups != 0) return; /* see kernels.h */
    const int cpg = C / groups;
    const double count = (double)cpg * (double)HW;
    double part[C], mean[groups], rstd[groups];

#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) part[c] = channel_sum(inp + (size_t)c * HW, HW);
    for (int g = 0; g < groups; g++) {
        double s = 0.0;
        for (int j = 0; j < cpg; j++) s += part[g * cpg + j];
        mean[g] = s / count;
    }

#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) part[c] = channel_sumsq(inp + (size_t)c * HW, HW, mean[c / cpg]);
    for (int g = 0; g < groups; g++) {
        double s = 0.0;
        for (int j = 0; j < cpg; j++) s += part[g * cpg + j];
        rstd[g] = 1.0 / sqrt(s / count + (double)eps); /* biased variance, eps inside the root */
    }
    for (int c = 0; c < C; c++) {
        mean_c[c] = (float)mean[c / cpg];
        scale_c[c] = (float)(rstd[c / cpg] * weight[c]);
    }
}

static void groupnorm_impl(float *out, const float *inp, const float *weight, const float *bias,
                           int C, int HW, int groups, float eps, int with_silu) {
    if (C <= 0 || HW <= 0 || groups <= 0 || C % groups != 0) return; /* see kernels.h */
    float mean[C], scale[C];
    const int exact = latup_exact_math();
    latup_groupnorm_affine(mean, scale, inp, weight, C, HW, groups, eps);
    /* y = (x - mean) * (rstd * w) + b in fp32 so it vectorises; x - mean is formed first, so a
     * large mean does not cancel against b (error ~ u |mean| rstd |w|, not u |mean| / std). */
#pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        const float mu = mean[c], a = scale[c], b = bias[c];
        const float *x = inp + (size_t)c * HW;
        float *y = out + (size_t)c * HW;
        if (with_silu && exact)
            for (int i = 0; i < HW; i++) y[i] = latup_silu_exact((x[i] - mu) * a + b);
        else if (with_silu)
#pragma omp simd
            for (int i = 0; i < HW; i++) y[i] = latup_silu_fast((x[i] - mu) * a + b);
        else
            for (int i = 0; i < HW; i++) y[i] = (x[i] - mu) * a + b;
    }
}

void latup_groupnorm_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int C, int HW, int groups, float eps) {
    groupnorm_impl(out, inp, weight, bias, C, HW, groups, eps, 0);
}

void latup_groupnorm_silu_forward(float *out, const float *inp, const float *weight, const float *bias,
                            int C, int HW, int groups, float eps) {
    groupnorm_impl(out, inp, weight, bias, C, HW, groups, eps, 1);
}

void latup_upsample_nearest2x(float *out, const float *inp, int C, int H, int W) {
    const int Wo = 2 * W;
    /* One input row makes two identical output rows: widen it once, copy it once. */
#pragma omp parallel for schedule(static)
    for (int r = 0; r < C * H; r++) { /* r = c * H + y; output rows 2r and 2r + 1 */
        const float *s = inp + (size_t)r * W;
        float *d = out + (size_t)2 * r * Wo;
        for (int x = 0; x < W; x++) d[2 * x] = d[2 * x + 1] = s[x];
        memcpy(d + Wo, d, (size_t)Wo * sizeof(float));
    }
}

/* ---- blocked attention with a streaming softmax ----------------------------------------------
 * For a block of query rows, walk over key blocks keeping per row the running max m, the running
 * sum l = sum_j exp(s_j - m), and acc = sum_j exp(s_j - m) v_j; when a key block raises the max,
 * l and acc are multiplied by alpha = exp(m_old - m_new). At the end out = acc / l.
 *  - m is fp32: it is always one of the fp32 scores, so it is exact.
 *  - l is double: it costs bq numbers and takes the running-sum rounding (up to N/bk steps) out
 *    of the error budget; acc must stay fp32 because sgemm accumulates into it.
 *  - The same fp32 alpha and the same fp32 p = expf(s - m) values feed both l and acc, so their
 *    rounding cancels in acc / l: it acts like a tiny change of the softmax weights, never as
 *    a mismatch between numerator and denominator.
 * Threads: an OpenMP loop over query blocks, each task calling sgemm single-threaded (OpenBLAS's
 * OpenMP build does not nest). The products are small (bq x bk x C), where a multi-threaded
 * sgemm spends much of its time synchronising, and the softmax update between the two products
 * would be serial; with N/bq >= threads the tasks are equal and independent. */

static int clamp_int(int x, int lo, int hi) { return x < lo ? lo : (x > hi ? hi : x); }

/* The scratch is a float buffer of any alignment; the running sums are doubles, so their slot
 * is rounded up to an 8-byte boundary (one spare float per thread pays for that). */
static double *align_double(float *p) {
    return (double *)(void *)(p + ((uintptr_t)p % sizeof(double) != 0));
}

size_t latup_attention_blocked_scratch_floats(int N, int C, int bq, int bk, int nthreads) {
    if (N < 1) N = 1;
    bq = clamp_int(bq, 1, N);
    bk = clamp_int(bk, 1, N);
    /* scores bq x bk, accumulator bq x C, max bq, sums bq doubles (+1 float to align them) */
    const size_t per_thread = (size_t)bq * bk + (size_t)bq * C + (size_t)bq + 2 * (size_t)bq + 1;
    return per_thread * (size_t)(nthreads > 0 ? nthreads : 1);
}

latup_status latup_attention_blocked_forward(float *out, const float *q, const float *k, const float *v, int N,
                                             int C, float scale, int bq, int bk, float *scratch,
                                             size_t scratch_floats, int nthreads) {
    if (N <= 0 || C <= 0) return LATUP_OK;
    bq = clamp_int(bq, 1, N);
    bk = clamp_int(bk, 1, N);
    const size_t per_thread = latup_attention_blocked_scratch_floats(N, C, bq, bk, 1);
    const int nqb = (N + bq - 1) / bq;
    const int exact = latup_exact_math();
    int workers = nthreads < 1 ? 1 : nthreads;
    if (workers > nqb) workers = nqb;
    if ((size_t)workers > scratch_floats / per_thread) workers = (int)(scratch_floats / per_thread);
    if (workers < 1 || !scratch)
        return latup_fail(LATUP_E_INTERNAL, "attention: scratch of %zu floats holds no %dx%d query block (needs %zu)",
                          scratch_floats, bq, bk, per_thread);

#pragma omp parallel for schedule(dynamic, 1) num_threads(workers)
    for (int qb = 0; qb < nqb; qb++) {
#ifdef _OPENMP
        float *S = scratch + (size_t)omp_get_thread_num() * per_thread; /* [rows, bk] */
#else
        float *S = scratch;
#endif
        float *acc = S + (size_t)bq * bk; /* [rows, C] */
        float *m = acc + (size_t)bq * C;  /* [rows] */
        double *l = align_double(m + bq); /* [rows] */
        const int i0 = qb * bq, rows = N - i0 < bq ? N - i0 : bq;
        const float *qi = q + (size_t)i0 * C;
        for (int r = 0; r < rows; r++) m[r] = -INFINITY, l[r] = 0.0;
        memset(acc, 0, (size_t)rows * C * sizeof(float));

        for (int j0 = 0; j0 < N; j0 += bk) {
            const int cols = N - j0 < bk ? N - j0 : bk;
            /* S = scale * Qb Kb^T   [rows, cols] */
            latup_sgemm1(1, rows, cols, C, scale, qi, C, k + (size_t)j0 * C, C, 0.0f, S, bk);
            for (int r = 0; r < rows; r++) {
                float *s = S + (size_t)r * bk;
                float mnew = m[r];
                for (int j = 0; j < cols; j++) mnew = s[j] > mnew ? s[j] : mnew;
                /* exp(-inf) = 0 on the first block: acc and l are still zero then anyway */
                const float alpha = exact ? expf(m[r] - mnew) : latup_exp_fast(m[r] - mnew);
                const double bsum = exp_row(s, cols, mnew, exact); /* P, in place of S */
                l[r] = l[r] * alpha + bsum;
                if (alpha != 1.0f) {
                    float *a = acc + (size_t)r * C;
                    for (int c = 0; c < C; c++) a[c] *= alpha;
                }
                m[r] = mnew;
            }
            /* acc += P Vb   [rows, C] */
            latup_sgemm1(0, rows, C, cols, 1.0f, S, bk, v + (size_t)j0 * C, C, 1.0f, acc, C);
        }

        for (int r = 0; r < rows; r++) {
            const double inv = 1.0 / l[r];
            const float *a = acc + (size_t)r * C;
            float *o = out + (size_t)(i0 + r) * C;
            for (int c = 0; c < C; c++) o[c] = (float)(a[c] * inv);
        }
    }
    return LATUP_OK;
}
