/* conv.c — 2-d convolution in bands of output rows: the plain 3x3/1x1 convs of LUA and the VAE's
 * convs that read their input through a transform (GroupNorm + SiLU, nearest x2 upsampling)
 * applied band by band, so the transformed map is never materialised whole. A band is computed
 * either directly (im2col + one sgemm: the reference arithmetic) or, for 3x3 convs with enough
 * channels and unless exact math is asked for, by Winograd (Lavin & Gray, 2016): F(2x2,3x3), 16
 * sgemms on transformed 4x4 input tiles, 2.25x fewer multiplies, or F(4x4,3x3), 36 sgemms on 6x6
 * tiles, 4x fewer (the tile rule: wino_tile() below). Bands have
 * a fixed height and are spread over workers, each with its own slice of the caller's scratch;
 * the slice sizes come from the capacity the caller hands in. */
#include "ops/kernels.h"

#include "common.h"
#include "ops/fastmath.h"
#include "ops/runtime.h"

#include <math.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* The default band: about BAND_PIXELS output pixels (a product wide enough for sgemm to run near
 * its peak), at most BAND_FLOATS of im2col (32 MiB), and at least 4 bands when H >= 4 so two or
 * four workers have work on small images. Constants of the problem, not of the machine. */
#define BAND_PIXELS 2048
/* F(4x4,3x3) has 4x fewer tiles per pixel than F(2x2,3x3): a taller band keeps its products wide
 * (fewer bands also pack each transformed filter fewer times; measured: 512 channels at 128x128
 * 0.40 -> 0.31 s, 256 at 256x256 0.35 -> 0.34 s, 128 at 512x512 unchanged at 0.45 s, 1 thread). */
#define BAND_PIXELS4 4096
#define BAND_FLOATS ((size_t)8 << 20)
#define MIN_BANDS 4
/* 1x1 convs: column tiles of this many pixels. */
#define COL_TILE 1024

static int has_transform(const conv_input_op *op) { return op && (op->upsample2x || op->norm); }

/* Winograd's row buffers. F(2x2): 4 input rows and 4 row combinations with a halo of 2 (input),
 * or the 8 row combinations of the output, each W + 4 floats. F(4x4): the 6 row combinations
 * (input) with a halo of 1 + up to 8 (the last tile's columns), a row of W zeros and one row's
 * 4 column phases of ceil(W/4) + 1 floats, or the 24 row combinations and 4 output columns
 * of the output, ceil(W/4) floats each. */
#define WINO_WP4(W) ((W) + 12)
#define WINO_ROWBUF(m, W) ((m) == 4 ? 8 * WINO_WP4(W) : 8 * ((W) + 4))

/* The Winograd tile: 0 (direct), 2 for F(2x2,3x3) or 4 for F(4x4,3x3). Winograd pays off once
 * the products are wide enough: 3x3 convs with 16+ channels each way, unless exact math.
 * F(4x4,3x3) where Cin >= WINO4_MIN_CIN (see docs/testing.md, "Approximations", for the
 * measured errors behind it); ctx->wino_tile forces either tile where Winograd applies. */
#define WINO4_MIN_CIN 128
static int wino_tile(int Cin, int Cout, int k, const conv_ctx *ctx) {
    if (k != 3 || Cin < 16 || Cout < 16 || latup_exact_math()) return 0;
    if (ctx && (ctx->wino_tile == 2 || ctx->wino_tile == 4)) return ctx->wino_tile;
    return Cin >= WINO4_MIN_CIN ? 4 : 2;
}

/* Floats one worker needs for a band of `rows` output rows. Direct: im2col [Cin*k*k, rows*W]
 * (+ the transformed input rows [Cin, rows+k-1, W]). Winograd F(mxm,3x3), a = m + 2: the
 * transformed input tiles V [a*a, Cin, T] and the products M [a*a, Cout, T], T = ceil(rows/m) *
 * ceil(W/m) tiles (+ the transformed input rows, m*ceil(rows/m) + 2 of them). */
static size_t band_floats(int wino, int Cin, int W, int Cout, int k, int rows, const conv_input_op *op) {
    if (k == 1) return 0;
    if (wino) {
        const size_t m = (size_t)wino, a2 = (m + 2) * (m + 2);
        const size_t ty = ((size_t)rows + m - 1) / m, T = ty * (((size_t)W + m - 1) / m);
        size_t f = a2 * T * ((size_t)Cin + (size_t)Cout) + WINO_ROWBUF(m, (size_t)W);
        if (has_transform(op)) f += (size_t)Cin * (m * ty + 2) * (size_t)W;
        return f;
    }
    size_t f = (size_t)Cin * (size_t)k * (size_t)k * (size_t)W * (size_t)rows;
    if (has_transform(op)) f += (size_t)Cin * (size_t)(rows + k - 1) * (size_t)W;
    return f;
}

static int workers_for(int nthreads, int nbands) {
    int w = nthreads < 1 ? 1 : nthreads;
    return w < nbands ? w : nbands;
}

/* The plan with a given band height. */
static conv_plan plan_rows(int Cin, int H, int W, int Cout, int k, const conv_input_op *op, const conv_ctx *ctx,
                           int rows) {
    conv_plan p = {0};
    p.winograd = wino_tile(Cin, Cout, k, ctx);
    p.rows = rows;
    p.nbands = (H + rows - 1) / rows;
    p.shared = p.winograd ? (size_t)(p.winograd + 2) * (p.winograd + 2) * Cout * Cin : 0;
    p.per_band = band_floats(p.winograd, Cin, W, Cout, k, rows, op);
    return p;
}

conv_plan latup_conv2d_plan(int Cin, int H, int W, int Cout, int k, const conv_input_op *op, const conv_ctx *ctx) {
    if (H < 1) H = 1;
    const int wino = wino_tile(Cin, Cout, k, ctx);
    /* per output row; a Winograd band holds whole tile rows: a tile row's floats over its rows */
    const size_t per_row = wino ? band_floats(wino, Cin, W, Cout, k, wino, op) / (size_t)wino
                                : band_floats(wino, Cin, W, Cout, k, 1, op);
    long rows = W > 0 ? (wino == 4 ? BAND_PIXELS4 : BAND_PIXELS) / W : 1;
    if (per_row > 0 && (size_t)rows > BAND_FLOATS / per_row) rows = (long)(BAND_FLOATS / per_row);
    if (H >= MIN_BANDS && rows > (H + MIN_BANDS - 1) / MIN_BANDS) rows = (H + MIN_BANDS - 1) / MIN_BANDS;
    if (wino) rows = rows < wino ? wino : (rows + wino - 1) / wino * wino; /* whole output tiles */
    if (ctx && ctx->band_rows_max > 0 && rows > ctx->band_rows_max) rows = ctx->band_rows_max;
    if (rows > H) rows = H;
    return plan_rows(Cin, H, W, Cout, k, op, ctx, rows < 1 ? 1 : (int)rows);
}

size_t latup_conv2d_scratch_floats(int Cin, int H, int W, int Cout, int k, const conv_input_op *op,
                                   const conv_ctx *ctx) {
    if (k == 1) return 0;
    const conv_plan p = latup_conv2d_plan(Cin, H, W, Cout, k, op, ctx);
    size_t n;
    if (!latup_mul_ok(p.per_band, (size_t)workers_for(ctx ? ctx->nthreads : 1, p.nbands), &n) || n > SIZE_MAX - p.shared)
        return SIZE_MAX;
    return n + p.shared;
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

/* The input rows [y0-p, y0+rows+p) of op(inp) (output coordinates; zero outside the image), as
 * a [Cin, rows+2p, W] map that im2col then reads like an image whose halo is already there. Only
 * for an op with an upsample or a norm (has_transform). */
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
            if (op->upsample2x) { /* then the norm, if any, in place */
                for (int x = 0; x < W; x++) d[x] = s[x / 2];
                s = d;
            } /* else there is a norm: a band is transformed only for an op that has one or the other */
            /* the same arithmetic as groupnorm_silu_forward: (x - mean) * (rstd * w) + b, read
             * straight from the input row (no copy first) */
            if (op->norm) {
                if (op->silu && latup_exact_math())
                    for (int x = 0; x < W; x++) d[x] = latup_silu_exact((s[x] - mu) * a + b);
                else if (op->silu)
#pragma omp simd
                    for (int x = 0; x < W; x++) d[x] = latup_silu_fast((s[x] - mu) * a + b);
                else
                    for (int x = 0; x < W; x++) d[x] = (s[x] - mu) * a + b;
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

/* ---- Winograd F(2x2, 3x3) ---------------------------------------------------------------------
 * Y = A^T [ (G g G^T) .* (B^T d B) ] A for each 2x2 output tile, d its 4x4 input tile (one pixel
 * of halo each side), g the 3x3 filter:
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1].
 * Summed over input channels, the 16 elementwise products become 16 sgemms:
 * M[e] [Cout, T] = U[e] [Cout, Cin] x V[e] [Cin, T]. */

/* U[e, co, ci] = (G g G^T)[e] for every filter; rows of cout split over the workers. */
static void wino_filters(float *U, const float *weight, int Cin, int Cout, int nthreads) {
    const size_t plane = (size_t)Cout * Cin;
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int co = 0; co < Cout; co++)
        for (int ci = 0; ci < Cin; ci++) {
            const float *g = weight + ((size_t)co * Cin + ci) * 9;
            float t[4][3]; /* G g */
            for (int j = 0; j < 3; j++) {
                t[0][j] = g[j];
                t[1][j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]);
                t[2][j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]);
                t[3][j] = g[6 + j];
            }
            float *u = U + (size_t)co * Cin + ci;
            for (int i = 0; i < 4; i++) { /* (G g) G^T */
                u[(size_t)(4 * i + 0) * plane] = t[i][0];
                u[(size_t)(4 * i + 1) * plane] = 0.5f * (t[i][0] + t[i][1] + t[i][2]);
                u[(size_t)(4 * i + 2) * plane] = 0.5f * (t[i][0] - t[i][1] + t[i][2]);
                u[(size_t)(4 * i + 3) * plane] = t[i][2];
            }
        }
}

/* One band of output rows [y0, y0+rows) by Winograd. src: the input, or the transformed input
 * rows [y0-1, ...) when `halo` (then row y of the image is src row y - y0 + 1, zero rows
 * included); sH the rows src holds. The transforms run along whole tile rows (contiguous in
 * V and M), so they vectorise: rows are combined first, then columns. */
static void wino_band(float *out, const float *src, int halo, int sH, const float *U, const float *bias,
                      int Cin, int H, int W, int Cout, int y0, int rows, int accumulate, float *V, float *M,
                      float *rowbuf) {
    const int ty_n = (rows + 1) / 2, tx_n = (W + 1) / 2, T = ty_n * tx_n;
    const size_t HW = (size_t)H * W, WP = (size_t)W + 4;
    const size_t plane_v = (size_t)Cin * T, plane_m = (size_t)Cout * T;
    /* input tiles: V[e, ci, t] = (B^T d B)[e]. r[i] is input row i of the tile row with columns
     * -1 .. W+2 (zero outside), so tile tx's columns are r[i][2tx .. 2tx+3] */
    float *r[4], *b[4];
    for (int i = 0; i < 4; i++) r[i] = rowbuf + (size_t)i * WP, b[i] = rowbuf + (size_t)(4 + i) * WP;
    for (int ci = 0; ci < Cin; ci++) {
        const float *plane = src + (size_t)ci * sH * W;
        for (int ty = 0; ty < ty_n; ty++) {
            for (int i = 0; i < 4; i++) {
                const int y = y0 + 2 * ty - 1 + i, sy = halo ? y - y0 + 1 : y;
                memset(r[i], 0, WP * sizeof(float));
                if (y >= 0 && y < H && sy >= 0 && sy < sH) memcpy(r[i] + 1, plane + (size_t)sy * W, (size_t)W * sizeof(float));
            }
            /* B^T d along the rows */
            for (size_t x = 0; x < WP; x++) {
                b[0][x] = r[0][x] - r[2][x];
                b[1][x] = r[1][x] + r[2][x];
                b[2][x] = r[2][x] - r[1][x];
                b[3][x] = r[1][x] - r[3][x];
            }
            /* (B^T d) B along the columns, tile after tile */
            float *v = V + (size_t)ci * T + (size_t)ty * tx_n;
            for (int k = 0; k < 4; k++) {
                const float *bk = b[k];
                float *v0 = v + (size_t)(4 * k) * plane_v, *v1 = v0 + plane_v, *v2 = v1 + plane_v, *v3 = v2 + plane_v;
                for (int tx = 0; tx < tx_n; tx++) {
                    const float c0 = bk[2 * tx], c1 = bk[2 * tx + 1], c2 = bk[2 * tx + 2], c3 = bk[2 * tx + 3];
                    v0[tx] = c0 - c2;
                    v1[tx] = c1 + c2;
                    v2[tx] = c2 - c1;
                    v3[tx] = c1 - c3;
                }
            }
        }
    }
    /* the 16 products */
    for (int e = 0; e < 16; e++)
        latup_sgemm1(0, Cout, T, Cin, 1.0f, U + (size_t)e * Cout * Cin, Cin, V + (size_t)e * Cin * T, T, 0.0f,
                     M + (size_t)e * Cout * T, T);
    /* output tiles: Y = A^T m A plus the bias, a tile row at a time: A^T m along the rows into
     * a[0..1][j][tx], then the columns, into the output rows and columns that exist */
    float *a = rowbuf; /* [2][4][tx_n] */
    for (int co = 0; co < Cout; co++) {
        const float bo = bias ? bias[co] : 0.0f;
        float *o = out + (size_t)co * HW;
        for (int ty = 0; ty < ty_n; ty++) {
            const float *m = M + (size_t)co * T + (size_t)ty * tx_n;
            for (int j = 0; j < 4; j++) {
                const float *m0 = m + (size_t)j * plane_m, *m1 = m + (size_t)(4 + j) * plane_m;
                const float *m2 = m + (size_t)(8 + j) * plane_m, *m3 = m + (size_t)(12 + j) * plane_m;
                float *a0 = a + (size_t)j * tx_n, *a1 = a + (size_t)(4 + j) * tx_n;
                for (int tx = 0; tx < tx_n; tx++) {
                    a0[tx] = m0[tx] + m1[tx] + m2[tx];
                    a1[tx] = m1[tx] - m2[tx] - m3[tx];
                }
            }
            for (int i = 0; i < 2; i++) {
                const int y = y0 + 2 * ty + i;
                if (y >= y0 + rows) break;
                const float *p0 = a + (size_t)(4 * i) * tx_n, *p1 = p0 + tx_n, *p2 = p1 + tx_n, *p3 = p2 + tx_n;
                float *row = o + (size_t)y * W;
                const int full = W / 2; /* tiles whose two columns both exist */
                if (accumulate) {
                    for (int tx = 0; tx < full; tx++) {
                        row[2 * tx] += (p0[tx] + p1[tx] + p2[tx]) + bo;
                        row[2 * tx + 1] += (p1[tx] - p2[tx] - p3[tx]) + bo;
                    }
                    if (W & 1) row[W - 1] += (p0[full] + p1[full] + p2[full]) + bo;
                } else {
                    for (int tx = 0; tx < full; tx++) {
                        row[2 * tx] = (p0[tx] + p1[tx] + p2[tx]) + bo;
                        row[2 * tx + 1] = (p1[tx] - p2[tx] - p3[tx]) + bo;
                    }
                    if (W & 1) row[W - 1] = (p0[full] + p1[full] + p2[full]) + bo;
                }
            }
        }
    }
}

/* ---- Winograd F(4x4, 3x3) ---------------------------------------------------------------------
 * The same with 4x4 output tiles and 6x6 input tiles (one pixel of halo each side). The points
 * are 0, +-a, +-b and infinity with a = 2/3, b = 3/2, not Lavin & Gray's 0, +-1, +-2: in fp32 their
 * error is 2-4x smaller (measured with tools/bench/bench_conv_error.c on the FLUX decoder's
 * layers; docs/testing.md, "Approximations"). With s = a^2 + b^2 = 97/36:
 *   B^T = [1  0  -s    0  1 0;  0 -b -b^2  a  1 0;  0  b -b^2 -a  1 0;
 *          0 -a -a^2   b  1 0;  0  a -a^2 -b  1 0;  0  1   0  -s  0 1],
 *   G   = [1 0 0; -81/130 -27/65 -18/65; -81/130 27/65 -18/65; 8/65 12/65 18/65;
 *          8/65 -12/65 18/65; 0 0 1],
 *   A^T = [1 1 1 1 1 0;  0 a -a b -b 0;  0 a^2 a^2 b^2 b^2 0;  0 a^3 -a^3 b^3 -b^3 1].
 * 36 sgemms M[e] [Cout, T] = U[e] [Cout, Cin] x V[e] [Cin, T]. The filter transform runs in double
 * and is rounded once. */
#define W4A (2.0f / 3.0f)
#define W4B 1.5f
#define W4A2 (4.0f / 9.0f)
#define W4B2 2.25f
#define W4A3 (8.0f / 27.0f)
#define W4B3 3.375f
#define W4S (97.0f / 36.0f)

/* U[e, co, ci] = (G g G^T)[e], e = 6 i + j; the filters of CI_BLOCK input channels at a time into
 * a local block, then each of the 36 planes' runs copied out whole (36 scattered single-float
 * streams were a quarter of a 512-channel conv at 64x64) */
#define CI_BLOCK 64
static void wino4_filters(float *U, const float *weight, int Cin, int Cout, int nthreads) {
    const size_t plane = (size_t)Cout * Cin;
    const double r130 = 1.0 / 130, r65 = 1.0 / 65; /* products, not divisions */
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int co = 0; co < Cout; co++)
        for (int c0 = 0; c0 < Cin; c0 += CI_BLOCK) {
            const int nc = Cin - c0 < CI_BLOCK ? Cin - c0 : CI_BLOCK;
            float blk[36][CI_BLOCK];
            for (int c = 0; c < nc; c++) {
                const float *g = weight + ((size_t)co * Cin + c0 + c) * 9;
                double t[6][3]; /* G g */
                for (int j = 0; j < 3; j++) {
                    const double g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
                    t[0][j] = g0;
                    t[1][j] = -(81 * g0 + 54 * g1 + 36 * g2) * r130;
                    t[2][j] = -(81 * g0 - 54 * g1 + 36 * g2) * r130;
                    t[3][j] = (8 * g0 + 12 * g1 + 18 * g2) * r65;
                    t[4][j] = (8 * g0 - 12 * g1 + 18 * g2) * r65;
                    t[5][j] = g2;
                }
                for (int i = 0; i < 6; i++) { /* (G g) G^T */
                    const double g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
                    blk[6 * i + 0][c] = (float)g0;
                    blk[6 * i + 1][c] = (float)(-(81 * g0 + 54 * g1 + 36 * g2) * r130);
                    blk[6 * i + 2][c] = (float)(-(81 * g0 - 54 * g1 + 36 * g2) * r130);
                    blk[6 * i + 3][c] = (float)((8 * g0 + 12 * g1 + 18 * g2) * r65);
                    blk[6 * i + 4][c] = (float)((8 * g0 - 12 * g1 + 18 * g2) * r65);
                    blk[6 * i + 5][c] = (float)g2;
                }
            }
            for (int e = 0; e < 36; e++)
                memcpy(U + (size_t)e * plane + (size_t)co * Cin + c0, blk[e], (size_t)nc * sizeof(float));
        }
}

/* B^T x for one 6-vector x0..x5 (the rows, then the columns, of an input tile) */
#define W4_IN(x0, x1, x2, x3, x4, x5, y0, y1, y2, y3, y4, y5)                                              \
    do {                                                                                                    \
        const float t1_ = (x4) - W4B2 * (x2), t2_ = W4A * (x3) - W4B * (x1);                                \
        const float t3_ = (x4) - W4A2 * (x2), t4_ = W4B * (x3) - W4A * (x1);                                \
        y0 = ((x0) - W4S * (x2)) + (x4);                                                                    \
        y1 = t1_ + t2_;                                                                                     \
        y2 = t1_ - t2_;                                                                                     \
        y3 = t3_ + t4_;                                                                                     \
        y4 = t3_ - t4_;                                                                                     \
        y5 = ((x1) - W4S * (x3)) + (x5);                                                                    \
    } while (0)
/* A^T m for one 6-vector m0..m5 (the rows, then the columns, of a product tile) */
#define W4_OUT(m0, m1, m2, m3, m4, m5, y0, y1, y2, y3)                                                      \
    do {                                                                                                    \
        const float s12_ = (m1) + (m2), d12_ = (m1) - (m2), s34_ = (m3) + (m4), d34_ = (m3) - (m4);         \
        y0 = ((m0) + s12_) + s34_;                                                                          \
        y1 = W4A * d12_ + W4B * d34_;                                                                       \
        y2 = W4A2 * s12_ + W4B2 * s34_;                                                                     \
        y3 = (W4A3 * d12_ + W4B3 * d34_) + (m5);                                                            \
    } while (0)

/* One band of output rows [y0, y0+rows) by F(4x4,3x3); the arguments as wino_band's. The rows of
 * a tile row are combined (B^T d) straight from the source rows (a row of zeros stands for the
 * padding), into rows with one zero column on the left and zeros after column W, so no row is
 * copied or cleared per tile row; then the columns, tile after tile. */
static void wino4_band(float *out, const float *src, int halo, int sH, const float *U, const float *bias,
                       int Cin, int H, int W, int Cout, int y0, int rows, int accumulate, float *V, float *M,
                       float *rowbuf) {
    const int ty_n = (rows + 3) / 4, tx_n = (W + 3) / 4, T = ty_n * tx_n;
    const size_t HW = (size_t)H * W, WP = WINO_WP4((size_t)W);
    const size_t plane_v = (size_t)Cin * T, plane_m = (size_t)Cout * T;
    float *b[6];
    for (int i = 0; i < 6; i++) {
        b[i] = rowbuf + (size_t)i * WP;
        b[i][0] = 0.0f;
        for (size_t x = (size_t)W + 1; x < WP; x++) b[i][x] = 0.0f;
    }
    float *zero = rowbuf + 6 * WP;
    memset(zero, 0, (size_t)W * sizeof(float));
    float *ph0 = rowbuf + 7 * WP, *ph1 = ph0 + tx_n + 1, *ph2 = ph1 + tx_n + 1, *ph3 = ph2 + tx_n + 1;
    for (int ci = 0; ci < Cin; ci++) {
        const float *plane = src + (size_t)ci * sH * W;
        for (int ty = 0; ty < ty_n; ty++) {
            const float *r[6];
            for (int i = 0; i < 6; i++) {
                const int y = y0 + 4 * ty - 1 + i, sy = halo ? y - y0 + 1 : y;
                r[i] = y >= 0 && y < H && sy >= 0 && sy < sH ? plane + (size_t)sy * W : zero;
            }
            /* B^T d along the rows, into columns 1..W */
            {
                const float *r0 = r[0], *r1 = r[1], *r2 = r[2], *r3 = r[3], *r4 = r[4], *r5 = r[5];
                float *b0 = b[0] + 1, *b1 = b[1] + 1, *b2 = b[2] + 1, *b3 = b[3] + 1, *b4 = b[4] + 1,
                      *b5 = b[5] + 1;
#pragma omp simd
                for (int x = 0; x < W; x++)
                    W4_IN(r0[x], r1[x], r2[x], r3[x], r4[x], r5[x], b0[x], b1[x], b2[x], b3[x], b4[x], b5[x]);
            }
            /* (B^T d) B along the columns: tile tx reads columns 4tx .. 4tx+5 of a row, so the row
             * is split into its 4 column phases first (ph[p][t] = row[4t + p]); then every tile's
             * 6 columns are ph[0..3][tx], ph[0..1][tx + 1], and the combinations vectorise */
            float *v = V + (size_t)ci * T + (size_t)ty * tx_n;
            for (int k = 0; k < 6; k++) {
                const float *bk = b[k];
#pragma omp simd
                for (int t = 0; t <= tx_n; t++)
                    ph0[t] = bk[4 * t], ph1[t] = bk[4 * t + 1], ph2[t] = bk[4 * t + 2], ph3[t] = bk[4 * t + 3];
                float *v0 = v + (size_t)(6 * k) * plane_v, *v1 = v0 + plane_v, *v2 = v1 + plane_v, *v3 = v2 + plane_v,
                      *v4 = v3 + plane_v, *v5 = v4 + plane_v;
#pragma omp simd
                for (int tx = 0; tx < tx_n; tx++)
                    W4_IN(ph0[tx], ph1[tx], ph2[tx], ph3[tx], ph0[tx + 1], ph1[tx + 1], v0[tx], v1[tx], v2[tx], v3[tx],
                          v4[tx], v5[tx]);
            }
        }
    }
    /* the 36 products */
    for (int e = 0; e < 36; e++)
        latup_sgemm1(0, Cout, T, Cin, 1.0f, U + (size_t)e * Cout * Cin, Cin, V + (size_t)e * Cin * T, T, 0.0f,
                     M + (size_t)e * Cout * T, T);
    /* output tiles: Y = A^T m A plus the bias, a tile row at a time: A^T m along the rows into
     * a[i][j][tx] (i < 4, j < 6), then the columns, into the output rows and columns that exist */
    float *a = rowbuf, *q0 = a + 24 * (size_t)tx_n, *q1 = q0 + tx_n, *q2 = q1 + tx_n, *q3 = q2 + tx_n; /* a [4][6][tx_n] */
    for (int co = 0; co < Cout; co++) {
        const float bo = bias ? bias[co] : 0.0f;
        float *o = out + (size_t)co * HW;
        for (int ty = 0; ty < ty_n; ty++) {
            const float *m = M + (size_t)co * T + (size_t)ty * tx_n;
            for (int j = 0; j < 6; j++) {
                const float *m0 = m + (size_t)j * plane_m, *m1 = m0 + 6 * plane_m, *m2 = m1 + 6 * plane_m,
                            *m3 = m2 + 6 * plane_m, *m4 = m3 + 6 * plane_m, *m5 = m4 + 6 * plane_m;
                float *a0 = a + (size_t)j * tx_n, *a1 = a0 + 6 * (size_t)tx_n, *a2 = a1 + 6 * (size_t)tx_n,
                      *a3 = a2 + 6 * (size_t)tx_n;
#pragma omp simd
                for (int tx = 0; tx < tx_n; tx++)
                    W4_OUT(m0[tx], m1[tx], m2[tx], m3[tx], m4[tx], m5[tx], a0[tx], a1[tx], a2[tx], a3[tx]);
            }
            for (int i = 0; i < 4; i++) {
                const int y = y0 + 4 * ty + i;
                if (y >= y0 + rows) break;
                const float *p0 = a + (size_t)(6 * i) * tx_n, *p1 = p0 + tx_n, *p2 = p1 + tx_n, *p3 = p2 + tx_n,
                            *p4 = p3 + tx_n, *p5 = p4 + tx_n;
                float *row = o + (size_t)y * W;
                /* the 4 output columns of every tile (plus the bias), then interleaved into the row */
#pragma omp simd
                for (int tx = 0; tx < tx_n; tx++) {
                    W4_OUT(p0[tx], p1[tx], p2[tx], p3[tx], p4[tx], p5[tx], q0[tx], q1[tx], q2[tx], q3[tx]);
                    q0[tx] += bo, q1[tx] += bo, q2[tx] += bo, q3[tx] += bo;
                }
                const int full = W / 4; /* tiles whose four columns all exist */
                if (accumulate) {
#pragma omp simd
                    for (int tx = 0; tx < full; tx++) {
                        row[4 * tx] += q0[tx];
                        row[4 * tx + 1] += q1[tx];
                        row[4 * tx + 2] += q2[tx];
                        row[4 * tx + 3] += q3[tx];
                    }
                } else {
#pragma omp simd
                    for (int tx = 0; tx < full; tx++) {
                        row[4 * tx] = q0[tx];
                        row[4 * tx + 1] = q1[tx];
                        row[4 * tx + 2] = q2[tx];
                        row[4 * tx + 3] = q3[tx];
                    }
                }
                const float *qs[4] = {q0, q1, q2, q3};
                for (int x = 4 * full; x < W; x++) row[x] = accumulate ? row[x] + qs[x - 4 * full][full] : qs[x - 4 * full][full];
            }
        }
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
    conv_plan pl = latup_conv2d_plan(Cin, H, W, Cout, k, op, ctx);
    if (!scratch || scratch_floats < pl.shared || pl.per_band > scratch_floats - pl.shared) {
        const conv_plan one = plan_rows(Cin, H, W, Cout, k, op, ctx, 1);
        if (!scratch || scratch_floats < one.shared || one.per_band > scratch_floats - one.shared)
            return latup_fail(LATUP_E_INTERNAL, "conv '%s': scratch of %zu floats holds no band (one row needs %zu)",
                              name, scratch_floats, one.shared + one.per_band);
        while (pl.rows > 1 && pl.per_band > scratch_floats - pl.shared)
            pl = plan_rows(Cin, H, W, Cout, k, op, ctx, pl.rows - 1);
    }
    int workers = workers_for(nthreads, pl.nbands);
    if ((size_t)workers > (scratch_floats - pl.shared) / pl.per_band)
        workers = (int)((scratch_floats - pl.shared) / pl.per_band);
    const float *U = scratch;
    if (pl.winograd == 2) wino_filters(scratch, weight, Cin, Cout, workers);
    if (pl.winograd == 4) wino4_filters(scratch, weight, Cin, Cout, workers);
    const int rows = pl.rows, nbands = pl.nbands;

#pragma omp parallel for schedule(dynamic, 1) num_threads(workers)
    for (int band = 0; band < nbands; band++) {
#ifdef _OPENMP
        float *col = scratch + pl.shared + (size_t)omp_get_thread_num() * pl.per_band;
#else
        float *col = scratch + pl.shared;
#endif
        const int y0 = band * rows, n_rows = H - y0 < rows ? H - y0 : rows;
        if (pl.winograd) {
            const int m = pl.winograd, a2 = (m + 2) * (m + 2), ty = (rows + m - 1) / m, T = ty * ((W + m - 1) / m);
            float *V = col, *M = V + (size_t)a2 * Cin * T, *rowbuf = M + (size_t)a2 * Cout * T;
            const float *src = inp;
            int sH = H;
            if (transform) {
                float *tband = rowbuf + WINO_ROWBUF(m, (size_t)W);
                const int tr = m * ((n_rows + m - 1) / m);
                transform_band(tband, inp, Cin, H, W, y0, tr, 1, op);
                src = tband, sH = tr + 2;
            }
            if (m == 4)
                wino4_band(out, src, transform, sH, U, bias, Cin, H, W, Cout, y0, n_rows, accumulate, V, M, rowbuf);
            else
                wino_band(out, src, transform, sH, U, bias, Cin, H, W, Cout, y0, n_rows, accumulate, V, M, rowbuf);
            continue;
        }
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

/* ---- strided convolution -------------------------------------------------------------------------
 * The direct path with a stride and asymmetric zero padding: the encoder's Downsample (k 3, s 2,
 * pad (0,1,0,1) as F.pad(x, (0,1,0,1)) then a stride-2 conv) and the patch code (k p, s p, no pad). */

static conv_plan strided_rows(int Cin, int Wo, int Ho, const conv_geom *g, int rows) {
    conv_plan p = {0};
    p.rows = rows;
    p.nbands = (Ho + rows - 1) / rows;
    p.per_band = (size_t)Cin * (size_t)g->k * (size_t)g->k * (size_t)Wo * (size_t)rows;
    return p;
}

conv_plan latup_conv2d_strided_plan(int Cin, int H, int W, int Cout, const conv_geom *g, const conv_ctx *ctx) {
    (void)Cout;
    int Ho = latup_conv_out_size(H, g->k, g->stride, g->pad_t, g->pad_b);
    const int Wo = latup_conv_out_size(W, g->k, g->stride, g->pad_l, g->pad_r);
    if (Ho < 1) Ho = 1;
    const size_t per_row = (size_t)Cin * (size_t)g->k * (size_t)g->k * (size_t)(Wo > 0 ? Wo : 1);
    long rows = Wo > 0 ? BAND_PIXELS / Wo : 1;
    if ((size_t)rows > BAND_FLOATS / per_row) rows = (long)(BAND_FLOATS / per_row);
    if (Ho >= MIN_BANDS && rows > (Ho + MIN_BANDS - 1) / MIN_BANDS) rows = (Ho + MIN_BANDS - 1) / MIN_BANDS;
    if (ctx && ctx->band_rows_max > 0 && rows > ctx->band_rows_max) rows = ctx->band_rows_max;
    if (rows > Ho) rows = Ho;
    return strided_rows(Cin, Wo > 0 ? Wo : 1, Ho, g, rows < 1 ? 1 : (int)rows);
}

size_t latup_conv2d_strided_scratch_floats(int Cin, int H, int W, int Cout, const conv_geom *g, const conv_ctx *ctx) {
    const conv_plan p = latup_conv2d_strided_plan(Cin, H, W, Cout, g, ctx);
    size_t n;
    if (!latup_mul_ok(p.per_band, (size_t)workers_for(ctx ? ctx->nthreads : 1, p.nbands), &n)) return SIZE_MAX;
    return n;
}

/* Unfold output rows [y0, y0+rows) into col[Cin*k*k, rows*Wo]: row r = (ci, ky, kx) holds input
 * pixel (oy*s + ky - pad_t, ox*s + kx - pad_l) of plane ci, zero outside the image. */
static void im2col_strided(float *col, const float *inp, int Cin, int H, int W, int Wo, const conv_geom *g, int y0,
                           int rows) {
    const int k = g->k, s = g->stride, K = Cin * k * k;
    const size_t band = (size_t)rows * (size_t)Wo;
    for (int r = 0; r < K; r++) {
        const int ci = r / (k * k), ky = (r / k) % k, kx = r % k;
        const float *plane = inp + (size_t)ci * H * W;
        float *dst = col + (size_t)r * band;
        for (int y = 0; y < rows; y++) {
            const int iy = (y0 + y) * s + ky - g->pad_t;
            float *d = dst + (size_t)y * Wo;
            if (iy < 0 || iy >= H) {
                memset(d, 0, (size_t)Wo * sizeof(float));
                continue;
            }
            const float *src = plane + (size_t)iy * W;
            for (int x = 0; x < Wo; x++) {
                const int ix = x * s + kx - g->pad_l;
                d[x] = ix >= 0 && ix < W ? src[ix] : 0.0f;
            }
        }
    }
}

latup_status latup_conv2d_strided_forward(float *out, const float *inp, const float *weight, const float *bias,
                                          int Cin, int H, int W, int Cout, const conv_geom *g, float *scratch,
                                          size_t scratch_floats, const conv_ctx *ctx) {
    const char *name = ctx && ctx->name ? ctx->name : "conv";
    const int nthreads = ctx && ctx->nthreads > 0 ? ctx->nthreads : 1;
    const int Ho = latup_conv_out_size(H, g->k, g->stride, g->pad_t, g->pad_b);
    const int Wo = latup_conv_out_size(W, g->k, g->stride, g->pad_l, g->pad_r);
    if (Ho < 1 || Wo < 1 || g->stride < 1)
        return latup_fail(LATUP_E_INTERNAL, "conv '%s': a %dx%d input makes no output (k %d, stride %d)", name, H, W,
                          g->k, g->stride);
    const size_t HWo = (size_t)Ho * Wo;
    const int K = Cin * g->k * g->k;
    conv_plan pl = latup_conv2d_strided_plan(Cin, H, W, Cout, g, ctx);
    if (!scratch || pl.per_band > scratch_floats) {
        const conv_plan one = strided_rows(Cin, Wo, Ho, g, 1);
        if (!scratch || one.per_band > scratch_floats)
            return latup_fail(LATUP_E_INTERNAL, "conv '%s': scratch of %zu floats holds no band (one row needs %zu)",
                              name, scratch_floats, one.per_band);
        while (pl.rows > 1 && pl.per_band > scratch_floats) pl = strided_rows(Cin, Wo, Ho, g, pl.rows - 1);
    }
    int workers = workers_for(nthreads, pl.nbands);
    if ((size_t)workers > scratch_floats / pl.per_band) workers = (int)(scratch_floats / pl.per_band);
    const int rows = pl.rows, nbands = pl.nbands;
#pragma omp parallel for schedule(dynamic, 1) num_threads(workers)
    for (int band = 0; band < nbands; band++) {
#ifdef _OPENMP
        float *col = scratch + (size_t)omp_get_thread_num() * pl.per_band;
#else
        float *col = scratch;
#endif
        const int y0 = band * rows, n_rows = Ho - y0 < rows ? Ho - y0 : rows;
        const int n = n_rows * Wo;
        im2col_strided(col, inp, Cin, H, W, Wo, g, y0, n_rows);
        float *o = out + (size_t)y0 * Wo;
        init_out(o, bias, Cout, (size_t)n, HWo, 0);
        latup_sgemm1(0, Cout, n, K, 1.0f, weight, K, col, n, 1.0f, o, (int)HWo);
    }
    return LATUP_OK;
}
