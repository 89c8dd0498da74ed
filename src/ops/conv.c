/* conv.c — 2-d convolution as banded im2col + sgemm: the plain 3x3/1x1 conv of LUA and the
 * VAE's convs that read their input through a transform (GroupNorm + SiLU, nearest x2
 * upsampling) applied band by band, so the transformed map is never materialised whole. Bands
 * have a fixed height and are spread over workers, each with its own slice of the caller's
 * scratch; the slice sizes come from the capacity the caller hands in. */
#include "ops/kernels.h"

#include "common.h"

#include <math.h>
#include <string.h>

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The default band: about BAND_PIXELS output pixels (a product wide enough for sgemm to run near
 * its peak), at most BAND_FLOATS of im2col (32 MiB), and at least 4 bands when H >= 4 so two or
 * four workers have work on small images. Constants of the problem, not of the machine. */
#define BAND_PIXELS 2048
#define BAND_FLOATS ((size_t)8 << 20)
#define MIN_BANDS 4
/* 1x1 convs: column tiles of this many pixels. */
#define COL_TILE 1024

void latup_sgemm1(int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B,
                ldb, beta, C, ldc);
}

static int has_transform(const conv_input_op *op) { return op && (op->upsample2x || op->norm); }

size_t latup_conv2d_band_floats(int Cin, int W, int k, int rows, const conv_input_op *op) {
    if (k == 1) return 0;
    size_t f = (size_t)Cin * (size_t)k * (size_t)k * (size_t)W * (size_t)rows;
    if (has_transform(op)) f += (size_t)Cin * (size_t)(rows + k - 1) * (size_t)W;
    return f;
}

int latup_conv2d_band_rows(int Cin, int H, int W, int k, const conv_input_op *op, const conv_ctx *ctx) {
    if (H < 1) return 1;
    const size_t per_row = latup_conv2d_band_floats(Cin, W, k, 1, op);
    long rows = W > 0 ? BAND_PIXELS / W : 1;
    if (per_row > 0 && (size_t)rows > BAND_FLOATS / per_row) rows = (long)(BAND_FLOATS / per_row);
    if (H >= MIN_BANDS && rows > (H + MIN_BANDS - 1) / MIN_BANDS) rows = (H + MIN_BANDS - 1) / MIN_BANDS;
    if (ctx && ctx->band_rows_max > 0 && rows > ctx->band_rows_max) rows = ctx->band_rows_max;
    if (rows > H) rows = H;
    return rows < 1 ? 1 : (int)rows;
}

static int workers_for(int nthreads, int nbands) {
    int w = nthreads < 1 ? 1 : nthreads;
    return w < nbands ? w : nbands;
}

size_t latup_conv2d_scratch_floats(int Cin, int H, int W, int k, const conv_input_op *op, const conv_ctx *ctx) {
    if (k == 1) return 0;
    const int rows = latup_conv2d_band_rows(Cin, H, W, k, op, ctx);
    const int nbands = (H + rows - 1) / rows;
    size_t n;
    if (!latup_mul_ok(latup_conv2d_band_floats(Cin, W, k, rows, op), (size_t)workers_for(ctx->nthreads, nbands), &n))
        return SIZE_MAX;
    return n;
}

/* Unfold rows [y0, y0+rows) of inp[Cin,H,W] into col[Cin*k*k, rows*W]; row r of col is the
 * input plane ci shifted by (ky-p, kx-p), zero outside the image. */
static void im2col_band(float *col, const float *inp, int Cin, int H, int W, int k, int y0, int rows) {
    const int p = k / 2;
    const int K = Cin * k * k;
    const size_t band = (size_t)rows * (size_t)W;
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
    for (int co = 0; co < Cout; co++) {
        const float b = bias ? bias[co] : 0.0f;
        float *o = out + (size_t)co * ld;
        if (accumulate)
            for (size_t i = 0; i < n; i++) o[i] += b;
        else
            for (size_t i = 0; i < n; i++) o[i] = b;
    }
}

static inline float silu1(float x) { return x / (1.0f + expf(-x)); }

/* The input rows [y0-p, y0+rows+p) of op(inp) (output coordinates; zero outside the image), as
 * a [Cin, rows+2p, W] map that im2col then reads like an image whose halo is already there. */
static void transform_band(float *t, const float *inp, int Cin, int H, int W, int y0, int rows, int p,
                           const conv_input_op *op) {
    const int tr = rows + 2 * p;
    const int Hs = op->upsample2x ? H / 2 : H, Ws = op->upsample2x ? W / 2 : W;
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

/* A 1x1 convolution is a plain product [Cout,Cin] x [Cin,HW], here in column tiles. */
static void conv1x1(float *out, const float *inp, const float *weight, const float *bias, int Cin, size_t HW,
                    int Cout, int accumulate, int nthreads) {
    const long ntiles = (long)((HW + COL_TILE - 1) / COL_TILE);
#pragma omp parallel for schedule(dynamic, 1) num_threads(workers_for(nthreads, ntiles > 1 << 30 ? 1 << 30 : (int)ntiles))
    for (long t = 0; t < ntiles; t++) {
        const size_t x0 = (size_t)t * COL_TILE, n = HW - x0 < COL_TILE ? HW - x0 : COL_TILE;
        init_out(out + x0, bias, Cout, n, HW, accumulate);
        latup_sgemm1(0, Cout, (int)n, Cin, 1.0f, weight, Cin, inp + x0, (int)HW, 1.0f, out + x0, (int)HW);
    }
}

latup_status latup_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                                  int Cin, int H, int W, int Cout, int k, const conv_input_op *op,
                                  float *scratch, size_t scratch_floats, const conv_ctx *ctx) {
    const size_t HW = (size_t)H * W;
    const int accumulate = op && op->accumulate;
    const char *name = ctx && ctx->name ? ctx->name : "conv";
    const int nthreads = ctx && ctx->nthreads > 0 ? ctx->nthreads : 1;
    if (k == 1) {
        conv1x1(out, inp, weight, bias, Cin, HW, Cout, accumulate, nthreads);
        return LATUP_OK;
    }
    const int p = k / 2;
    const int K = Cin * k * k;
    const int transform = has_transform(op);
    /* the band height and the workers, from the capacity: the default band if one fits, else the
     * tallest band that does */
    int rows = latup_conv2d_band_rows(Cin, H, W, k, op, ctx);
    size_t per_band = latup_conv2d_band_floats(Cin, W, k, rows, op);
    if (per_band > scratch_floats) {
        const size_t one = latup_conv2d_band_floats(Cin, W, k, 1, op);
        if (one > scratch_floats || !scratch)
            return latup_fail(LATUP_E_INTERNAL, "conv '%s': scratch of %zu floats holds no band (one row needs %zu)",
                              name, scratch_floats, one);
        while (rows > 1 && latup_conv2d_band_floats(Cin, W, k, rows, op) > scratch_floats) rows--;
        per_band = latup_conv2d_band_floats(Cin, W, k, rows, op);
    }
    const int nbands = (H + rows - 1) / rows;
    int workers = workers_for(nthreads, nbands);
    if ((size_t)workers > scratch_floats / per_band) workers = (int)(scratch_floats / per_band);

#pragma omp parallel for schedule(dynamic, 1) num_threads(workers)
    for (int band = 0; band < nbands; band++) {
#ifdef _OPENMP
        float *col = scratch + (size_t)omp_get_thread_num() * per_band;
#else
        float *col = scratch;
#endif
        const int y0 = band * rows, n_rows = H - y0 < rows ? H - y0 : rows;
        const int n = n_rows * W;
        if (transform) {
            float *tband = col + (size_t)K * rows * W;
            transform_band(tband, inp, Cin, H, W, y0, n_rows, p, op);
            im2col_band(col, tband, Cin, n_rows + 2 * p, W, k, p, n_rows);
        } else {
            im2col_band(col, inp, Cin, H, W, k, y0, n_rows);
        }
        float *o = out + (size_t)y0 * W;
        init_out(o, bias, Cout, (size_t)n, HW, accumulate);
        latup_sgemm1(0, Cout, n, K, 1.0f, weight, K, col, n, 1.0f, o, (int)HW);
    }
    return LATUP_OK;
}
