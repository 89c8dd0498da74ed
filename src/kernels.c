/* kernels.c — fp32 CPU kernels for LUA: banded im2col convolution and linear layers on
 * cblas_sgemm, LayerNorm with double statistics, exact GELU, softmax, and the shifted-window
 * machinery (partition/reverse by index arithmetic, relative-position bias, shift mask, window
 * attention). The naive twins live in tests/test_kernels.c. */
#include "kernels.h"

#include <math.h>
#include <string.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- convolution --------------------------------------------------------------------------- */

size_t conv2d_col_floats(int Cin, int W, int k, int band_rows) {
    if (k == 1) return 0;
    return (size_t)Cin * (size_t)k * (size_t)k * (size_t)W * (size_t)band_rows;
}

int conv2d_band_rows(int Cin, int H, int W, int k, size_t budget_floats) {
    size_t per_row = conv2d_col_floats(Cin, W, k, 1);
    if (per_row == 0) return H;
    size_t rows = budget_floats / per_row;
    if (rows < 1) rows = 1;
    if (rows > (size_t)H) rows = (size_t)H;
    return (int)rows;
}

/* Unfold rows [y0, y0+rows) of inp[Cin,H,W] into col[Cin*k*k, rows*W]; row r of col is the
 * input plane ci shifted by (ky-p, kx-p), zero outside the image. */
static void im2col_band(float *col, const float *inp, int Cin, int H, int W, int k, int y0,
                        int rows) {
    const int p = k / 2;
    const int K = Cin * k * k;
    const size_t band = (size_t)rows * (size_t)W;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < K; r++) {
        const int ci = r / (k * k), ky = (r / k) % k, kx = r % k;
        const float *plane = inp + (size_t)ci * H * W;
        float *dst = col + (size_t)r * band;
        /* columns x with 0 <= x + kx - p < W */
        const int xlo = p - kx > 0 ? p - kx : 0;
        const int xhi = W + p - kx < W ? W + p - kx : W; /* exclusive */
        for (int y = 0; y < rows; y++) {
            const int ys = y0 + y + ky - p;
            float *d = dst + (size_t)y * W;
            if (ys < 0 || ys >= H || xhi <= xlo) {
                memset(d, 0, (size_t)W * sizeof(float));
                continue;
            }
            const float *s = plane + (size_t)ys * W;
            for (int x = 0; x < xlo; x++) d[x] = 0.0f;
            memcpy(d + xlo, s + xlo + kx - p, (size_t)(xhi - xlo) * sizeof(float));
            for (int x = xhi; x < W; x++) d[x] = 0.0f;
        }
    }
}

/* out[Cout, n] (row stride ld) = bias broadcast, so the sgemm can accumulate with beta = 1. */
static void fill_bias(float *out, const float *bias, int Cout, size_t n, size_t ld) {
#pragma omp parallel for schedule(static)
    for (int co = 0; co < Cout; co++) {
        float b = bias ? bias[co] : 0.0f;
        float *o = out + (size_t)co * ld;
        for (size_t i = 0; i < n; i++) o[i] = b;
    }
}

void conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int Cin, int H, int W, int Cout, int k, float *col, int band_rows) {
    const size_t HW = (size_t)H * W;
    if (k == 1) {
        /* a 1x1 convolution is a plain matrix product: [Cout,Cin] x [Cin,HW] */
        fill_bias(out, bias, Cout, HW, HW);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, (int)HW, Cin, 1.0f, weight,
                    Cin, inp, (int)HW, 1.0f, out, (int)HW);
        return;
    }
    const int K = Cin * k * k;
    if (band_rows < 1) band_rows = 1;
    for (int y0 = 0; y0 < H; y0 += band_rows) {
        const int rows = H - y0 < band_rows ? H - y0 : band_rows;
        const int n = rows * W;
        im2col_band(col, inp, Cin, H, W, k, y0, rows);
        float *o = out + (size_t)y0 * W;
        fill_bias(o, bias, Cout, (size_t)n, HW);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, n, K, 1.0f, weight, K, col,
                    n, 1.0f, o, (int)HW);
    }
}

/* ---- dense layers ---------------------------------------------------------------------------- */

void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int N, int Cin, int Cout) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * Cout;
        if (bias)
            memcpy(o, bias, (size_t)Cout * sizeof(float));
        else
            memset(o, 0, (size_t)Cout * sizeof(float));
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, Cout, Cin, 1.0f, inp, Cin, weight, Cin,
                1.0f, out, Cout);
}

void layernorm_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int N, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *y = out + (size_t)n * C;
        double sum = 0.0, sq = 0.0;
        for (int c = 0; c < C; c++) sum += x[c];
        const double mean = sum / C;
        for (int c = 0; c < C; c++) {
            double d = x[c] - mean;
            sq += d * d;
        }
        const double rstd = 1.0 / sqrt(sq / C + (double)eps);
        for (int c = 0; c < C; c++)
            y[c] = (float)((x[c] - mean) * rstd) * weight[c] + bias[c];
    }
}

void gelu_forward(float *out, const float *inp, size_t n) {
    const float inv_sqrt2 = 0.70710678118654752440f;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + erff(x * inv_sqrt2));
    }
}

void leaky_relu_forward(float *out, const float *inp, size_t n, float slope) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = x >= 0.0f ? x : slope * x;
    }
}

/* One row; shared by softmax_rows and the attention kernel. */
static void softmax_row(float *x, int n) {
    float m = x[0];
    for (int i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    const float inv = (float)(1.0 / s);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void softmax_rows(float *x, int rows, int cols) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++) softmax_row(x + (size_t)r * cols, cols);
}

void add_inplace(float *y, const float *x, size_t n) {
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

void chw_to_hwc(float *out, const float *inp, int C, int HW) { transpose(out, inp, C, HW); }
void hwc_to_chw(float *out, const float *inp, int C, int HW) { transpose(out, inp, HW, C); }

void pixel_shuffle(float *out, const float *inp, int C, int H, int W, int r) {
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

void reflect_pad(float *out, const float *inp, int C, int H, int W, int Hp, int Wp) {
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

void crop(float *out, const float *inp, int C, int H, int W, int Ho, int Wo) {
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

void window_partition(float *out, const float *inp, int H, int W, int C, int ws, int shift) {
    const int nW = (H / ws) * (W / ws), N = ws * ws;
#pragma omp parallel for schedule(static)
    for (int w = 0; w < nW; w++)
        for (int n = 0; n < N; n++)
            memcpy(out + ((size_t)w * N + n) * C, inp + window_src_token(w, n, H, W, ws, shift) * C,
                   (size_t)C * sizeof(float));
}

void window_reverse(float *out, const float *inp, int H, int W, int C, int ws, int shift) {
    const int nW = (H / ws) * (W / ws), N = ws * ws;
#pragma omp parallel for schedule(static)
    for (int w = 0; w < nW; w++)
        for (int n = 0; n < N; n++)
            memcpy(out + window_src_token(w, n, H, W, ws, shift) * C, inp + ((size_t)w * N + n) * C,
                   (size_t)C * sizeof(float));
}

void relative_bias_gather(float *out, const float *table, int ws, int nH) {
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

void shift_mask_build(float *out, int H, int W, int ws, int shift) {
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

size_t window_attention_scratch_floats(int N, int nthreads) {
    return (size_t)N * N * (size_t)(nthreads > 0 ? nthreads : 1);
}

void window_attention_forward(float *out, const float *qkv, const float *bias, const float *mask,
                              int nW, int N, int nH, int hd, float scale, float *scratch,
                              int nthreads) {
    const int C = nH * hd, ld = 3 * C;
    /* One (window, head) pair per task; each thread owns an N x N score matrix. The sgemm calls
     * run inside the parallel region, where OpenBLAS (OpenMP build) stays single-threaded. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
    for (int t = 0; t < nW * nH; t++) {
        const int w = t / nH, h = t % nH;
#ifdef _OPENMP
        float *S = scratch + (size_t)omp_get_thread_num() * N * N;
#else
        float *S = scratch;
#endif
        const float *q = qkv + (size_t)w * N * ld + (size_t)h * hd;
        const float *k = q + C, *v = q + 2 * C;
        /* S = scale * q k^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, hd, scale, q, ld, k, ld, 0.0f,
                    S, N);
        const float *bh = bias + (size_t)h * N * N;
        const float *mw = mask ? mask + (size_t)w * N * N : NULL;
        for (int a = 0; a < N; a++) {
            float *row = S + (size_t)a * N;
            const float *brow = bh + (size_t)a * N;
            if (mw) {
                const float *mrow = mw + (size_t)a * N;
                for (int b = 0; b < N; b++) row[b] = (row[b] + brow[b]) + mrow[b]; /* torch's order */
            } else {
                for (int b = 0; b < N; b++) row[b] += brow[b];
            }
            softmax_row(row, N);
        }
        /* out_h = P v */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, hd, N, 1.0f, S, N, v, ld, 0.0f,
                    out + (size_t)w * N * C + (size_t)h * hd, C);
    }
}
