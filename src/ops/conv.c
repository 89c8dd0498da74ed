/* conv.c — 2-d convolution as banded im2col + cblas_sgemm: the plain 3x3/1x1 conv of LUA and
 * the VAE's convs that read their input through a transform (GroupNorm + SiLU, nearest x2
 * upsampling) applied band by band, so the transformed map is never materialised whole. */
#include "ops/kernels.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

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

/* out[Cout, n] (row stride ld) = bias broadcast (or += bias when accumulating), so the sgemm
 * can accumulate with beta = 1. */
static void init_out(float *out, const float *bias, int Cout, size_t n, size_t ld, int accumulate) {
#pragma omp parallel for schedule(static)
    for (int co = 0; co < Cout; co++) {
        const float b = bias ? bias[co] : 0.0f;
        float *o = out + (size_t)co * ld;
        if (accumulate)
            for (size_t i = 0; i < n; i++) o[i] += b;
        else
            for (size_t i = 0; i < n; i++) o[i] = b;
    }
}

void conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int Cin, int H, int W, int Cout, int k, float *col, int band_rows) {
    conv2d_forward_ex(out, inp, weight, bias, Cin, H, W, Cout, k, col, band_rows, NULL);
}

static int has_transform(const conv_input_op *op) { return op && (op->upsample2x || op->norm); }

size_t conv2d_ex_scratch_floats(int Cin, int W, int k, int band_rows, const conv_input_op *op) {
    size_t f = conv2d_col_floats(Cin, W, k, band_rows);
    if (k > 1 && has_transform(op)) f += (size_t)Cin * (size_t)(band_rows + k - 1) * (size_t)W;
    return f;
}

static inline float silu1(float x) { return x / (1.0f + expf(-x)); }

/* The input rows [y0-p, y0+rows+p) of op(inp) (output coordinates; zero outside the image), as
 * a [Cin, rows+2p, W] map that im2col then reads like an image whose halo is already there. */
static void transform_band(float *t, const float *inp, int Cin, int H, int W, int y0, int rows, int p,
                           const conv_input_op *op) {
    const int tr = rows + 2 * p;
    const int Hs = op->upsample2x ? H / 2 : H, Ws = op->upsample2x ? W / 2 : W;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < Cin; c++) {
        const float *plane = inp + (size_t)c * Hs * Ws;
        const float mu = op->norm ? op->norm_mean[c] : 0.0f;
        const float a = op->norm ? op->norm_scale[c] : 1.0f;
        const float b = op->norm ? op->norm_bias[c] : 0.0f;
        for (int r = 0; r < tr; r++) {
            const int y = y0 - p + r;
            float *d = t + ((size_t)c * tr + r) * W;
            if (y < 0 || y >= H) { /* the conv's zero padding: zero after the transform */
                memset(d, 0, (size_t)W * sizeof(float));
                continue;
            }
            const float *s = plane + (size_t)(op->upsample2x ? y / 2 : y) * Ws;
            if (op->upsample2x)
                for (int x = 0; x < W; x++) d[x] = s[x / 2];
            else
                memcpy(d, s, (size_t)W * sizeof(float));
            /* the same arithmetic as groupnorm_silu_forward: (x - mean) * (rstd * w) + b */
            if (op->norm) {
                if (op->silu)
                    for (int x = 0; x < W; x++) d[x] = silu1((d[x] - mu) * a + b);
                else
                    for (int x = 0; x < W; x++) d[x] = (d[x] - mu) * a + b;
            }
        }
    }
}

void conv2d_forward_ex(float *out, const float *inp, const float *weight, const float *bias,
                       int Cin, int H, int W, int Cout, int k, float *col, int band_rows,
                       const conv_input_op *op) {
    const size_t HW = (size_t)H * W;
    const int accumulate = op && op->accumulate;
    if (k == 1) {
        /* a 1x1 convolution is a plain matrix product: [Cout,Cin] x [Cin,HW] */
        init_out(out, bias, Cout, HW, HW, accumulate);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, (int)HW, Cin, 1.0f, weight,
                    Cin, inp, (int)HW, 1.0f, out, (int)HW);
        return;
    }
    const int K = Cin * k * k, p = k / 2;
    const int transform = has_transform(op);
    float *tband = col + conv2d_col_floats(Cin, W, k, band_rows);
    if (band_rows < 1) band_rows = 1;
    for (int y0 = 0; y0 < H; y0 += band_rows) {
        const int rows = H - y0 < band_rows ? H - y0 : band_rows;
        const int n = rows * W;
        if (transform) {
            transform_band(tband, inp, Cin, H, W, y0, rows, p, op);
            im2col_band(col, tband, Cin, rows + 2 * p, W, k, p, rows);
        } else {
            im2col_band(col, inp, Cin, H, W, k, y0, rows);
        }
        float *o = out + (size_t)y0 * W;
        init_out(o, bias, Cout, (size_t)n, HW, accumulate);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Cout, n, K, 1.0f, weight, K, col,
                    n, 1.0f, o, (int)HW);
    }
}
