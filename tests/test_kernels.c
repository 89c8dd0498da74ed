/* test_kernels.c — every kernel in src/ops/kernels.h against a plain naive twin written from the
 * header comment and docs/spec (never from kernels.c), on seeded random data and awkward shapes.
 * One line per comparison (kernel, shape, max abs/rel error, tolerance, OK/NOT OK); outputs sit
 * between canary floats and start as NaN, so out-of-bounds and missing writes fail too. */
#include "ops/kernels.h"
#include "ops/fastmath.h"
#include "op_cases.h"
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define EPS OC_EPS /* op_cases.h: 2^-23, one fp32 ulp at 1.0 */


/* Guard canaries intact on every buffer the kernel was handed; prints a NOT OK line otherwise. */
static bool guards(const char *kernel, const char *shp, int nbuf, ...) {
    va_list ap;
    va_start(ap, nbuf);
    bool ok = true;
    for (int i = 0; i < nbuf; i++) {
        const tu_buf *b = va_arg(ap, const tu_buf *);
        const char *name = va_arg(ap, const char *);
        if (!tu_guards_ok(b, name)) ok = false;
    }
    va_end(ap);
    if (!ok) {
        char what[200];
        snprintf(what, sizeof what, "%s: guard canaries", shp);
        tu_check_true(kernel, what, false);
    }
    return ok;
}

/* A const input must come back bit-identical. */
static bool unchanged(const char *kernel, const char *shp, const char *name, const float *buf,
                      const float *copy, size_t n) {
    if (memcmp(buf, copy, n * sizeof(float)) == 0) return true;
    char what[200];
    snprintf(what, sizeof what, "%s: input %s modified", shp, name);
    return tu_check_true(kernel, what, false);
}

static float *dup_floats(const float *x, size_t n) {
    float *c = tu_xmalloc(n * sizeof(float));
    memcpy(c, x, n * sizeof(float));
    return c;
}

/* ============================================================================================
 * Naive twins. Plain loop nests from the formulas; products and sums in double.
 * ============================================================================================ */

/* Direct 7-loop convolution with zero padding k/2. S[i] = sum |w*x| + |b| (the scale of the
 * accumulation, used for the tolerance). */
static void naive_conv2d(double *out, double *S, const float *inp, const float *weight,
                         const float *bias, int Cin, int H, int W, int Cout, int k) {
    int p = k / 2;
    for (int co = 0; co < Cout; co++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double acc = bias ? bias[co] : 0.0, sabs = bias ? fabs(bias[co]) : 0.0;
                for (int ci = 0; ci < Cin; ci++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int iy = y + ky - p, ix = x + kx - p;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            double t = (double)weight[((size_t)(co * Cin + ci) * k + ky) * k + kx] *
                                       inp[((size_t)ci * H + iy) * W + ix];
                            acc += t;
                            sabs += fabs(t);
                        }
                size_t o = ((size_t)co * H + y) * W + x;
                out[o] = acc;
                S[o] = sabs;
            }
}

/* Strided convolution with zero padding pad_t/pad_l (top/left) and pad_b/pad_r (bottom/right):
 * output Ho x Wo, Ho = floor((H + pad_t + pad_b - k) / s) + 1. S as naive_conv2d's. */
static void naive_conv2d_strided(double *out, double *S, const float *inp, const float *weight, const float *bias,
                                 int Cin, int H, int W, int Cout, int k, int s, int pt, int pl, int Ho, int Wo) {
    for (int co = 0; co < Cout; co++)
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++) {
                double acc = bias ? bias[co] : 0.0, sabs = bias ? fabs(bias[co]) : 0.0;
                for (int ci = 0; ci < Cin; ci++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            const int iy = y * s + ky - pt, ix = x * s + kx - pl;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            const double t = (double)weight[((size_t)(co * Cin + ci) * k + ky) * k + kx] *
                                             inp[((size_t)ci * H + iy) * W + ix];
                            acc += t;
                            sabs += fabs(t);
                        }
                const size_t o = ((size_t)co * Ho + y) * Wo + x;
                out[o] = acc;
                S[o] = sabs;
            }
}

static void naive_linear(double *out, double *S, const float *inp, const float *weight,
                         const float *bias, int N, int Cin, int Cout) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < Cout; o++) {
            double acc = bias ? bias[o] : 0.0, sabs = bias ? fabs(bias[o]) : 0.0;
            for (int i = 0; i < Cin; i++) {
                double t = (double)inp[(size_t)n * Cin + i] * weight[(size_t)o * Cin + i];
                acc += t;
                sabs += fabs(t);
            }
            out[(size_t)n * Cout + o] = acc;
            S[(size_t)n * Cout + o] = sabs;
        }
}

/* Also returns per row the mean and rstd (for the tolerance). */
static void naive_layernorm(double *out, double *mean_out, double *rstd_out, const float *inp,
                            const float *weight, const float *bias, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= C; /* biased */
        double rstd = 1.0 / sqrt(v + (double)eps);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (x[c] - m) * rstd * weight[c] + bias[c];
        mean_out[n] = m;
        rstd_out[n] = rstd;
    }
}

static double naive_gelu(double x) { return x * 0.5 * (1.0 + erf(x / sqrt(2.0))); }

/* The kernel's own contract is fp32 arithmetic, so the twin is the formula evaluated in fp32. */
static float naive_leaky(float x, float slope) { return x >= 0 ? x : slope * x; }

static void naive_softmax(double *out, const float *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * cols;
        double m = -INFINITY, s = 0;
        for (int c = 0; c < cols; c++) m = fmax(m, xr[c]);
        for (int c = 0; c < cols; c++) s += exp((double)xr[c] - m);
        for (int c = 0; c < cols; c++) out[(size_t)r * cols + c] = exp((double)xr[c] - m) / s;
    }
}

static void naive_chw_to_hwc(float *out, const float *inp, int C, int HW) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < HW; i++) out[(size_t)i * C + c] = inp[(size_t)c * HW + i];
}

static void naive_hwc_to_chw(float *out, const float *inp, int C, int HW) {
    for (int i = 0; i < HW; i++)
        for (int c = 0; c < C; c++) out[(size_t)c * HW + i] = inp[(size_t)i * C + c];
}

/* out[c, h*r+i, w*r+j] = inp[c*r*r + i*r + j, h, w] */
static void naive_pixel_shuffle(float *out, const float *inp, int C, int H, int W, int r) {
    int Ho = H * r, Wo = W * r;
    for (int c = 0; c < C; c++)
        for (int i = 0; i < r; i++)
            for (int j = 0; j < r; j++)
                for (int h = 0; h < H; h++)
                    for (int w = 0; w < W; w++)
                        out[((size_t)c * Ho + h * r + i) * Wo + w * r + j] =
                            inp[((size_t)(c * r * r + i * r + j) * H + h) * W + w];
}

/* padded[H+k] = x[H-2-k], i.e. source index 2H-2-y for y >= H; the same on W. */
static void naive_reflect_pad(float *out, const float *inp, int C, int H, int W, int Hp, int Wp) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < Hp; y++)
            for (int x = 0; x < Wp; x++) {
                int sy = y < H ? y : H - 2 - (y - H);
                int sx = x < W ? x : W - 2 - (x - W);
                out[((size_t)c * Hp + y) * Wp + x] = inp[((size_t)c * H + sy) * W + sx];
            }
}

static void naive_crop(float *out, const float *inp, int C, int H, int W, int Ho, int Wo) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++)
                out[((size_t)c * Ho + y) * Wo + x] = inp[((size_t)c * H + y) * W + x];
}

/* torch.roll(x, shifts=(-s,-s), dims=(H,W)): rolled[h][w] = x[(h+s)%H][(w+s)%W]; then
 * view(H/ws, ws, W/ws, ws, C).permute(0,2,1,3,4): win[wh][ww][i][j] = rolled[wh*ws+i][ww*ws+j]. */
static void naive_window_partition(float *out, const float *inp, int H, int W, int C, int ws,
                                   int shift) {
    float *rolled = tu_xmalloc((size_t)H * W * C * sizeof(float));
    for (int h = 0; h < H; h++)
        for (int w = 0; w < W; w++)
            memcpy(rolled + ((size_t)h * W + w) * C,
                   inp + ((size_t)((h + shift) % H) * W + (w + shift) % W) * C, C * sizeof(float));
    int nWw = W / ws;
    for (int wh = 0; wh < H / ws; wh++)
        for (int ww = 0; ww < nWw; ww++)
            for (int i = 0; i < ws; i++)
                for (int j = 0; j < ws; j++)
                    for (int c = 0; c < C; c++)
                        out[(((size_t)(wh * nWw + ww) * ws + i) * ws + j) * C + c] =
                            rolled[((size_t)(wh * ws + i) * W + ww * ws + j) * C + c];
    free(rolled);
}

/* Windows back to an image (inverse view/permute), then torch.roll(img, shifts=(+s,+s)):
 * out[(h+s)%H][(w+s)%W] = img[h][w]. */
static void naive_window_reverse(float *out, const float *inp, int H, int W, int C, int ws,
                                 int shift) {
    float *img = tu_xmalloc((size_t)H * W * C * sizeof(float));
    int nWw = W / ws;
    for (int wh = 0; wh < H / ws; wh++)
        for (int ww = 0; ww < nWw; ww++)
            for (int i = 0; i < ws; i++)
                for (int j = 0; j < ws; j++)
                    for (int c = 0; c < C; c++)
                        img[((size_t)(wh * ws + i) * W + ww * ws + j) * C + c] =
                            inp[(((size_t)(wh * nWw + ww) * ws + i) * ws + j) * C + c];
    for (int h = 0; h < H; h++)
        for (int w = 0; w < W; w++)
            memcpy(out + ((size_t)((h + shift) % H) * W + (w + shift) % W) * C,
                   img + ((size_t)h * W + w) * C, C * sizeof(float));
    free(img);
}

/* out[h, a, b] = table[(ya-yb+ws-1)*(2ws-1) + (xa-xb+ws-1), h] */
static void naive_relative_bias(float *out, const float *table, int ws, int nH) {
    int N = ws * ws;
    for (int h = 0; h < nH; h++)
        for (int a = 0; a < N; a++)
            for (int b = 0; b < N; b++) {
                int ya = a / ws, xa = a % ws, yb = b / ws, xb = b % ws;
                int idx = (ya - yb + ws - 1) * (2 * ws - 1) + (xa - xb + ws - 1);
                out[((size_t)h * N + a) * N + b] = table[(size_t)idx * nH + h];
            }
}

/* Band of coordinate y on an axis of length L: [0,L-ws) -> 0, [L-ws,L-shift) -> 1, rest -> 2. */
static int band_of(int y, int L, int ws, int shift) {
    if (y < L - ws) return 0;
    if (y < L - shift) return 1;
    return 2;
}

/* img_mask labels (3*band_h + band_w), window_partition without shift, then pairwise
 * label(a) != label(b) -> -100. */
static void naive_shift_mask(float *out, int H, int W, int ws, int shift) {
    int N = ws * ws, nWw = W / ws, nW = (H / ws) * nWw;
    int *lab = tu_xmalloc((size_t)N * sizeof(int));
    for (int w = 0; w < nW; w++) {
        int wh = w / nWw, ww = w % nWw;
        for (int t = 0; t < N; t++) {
            int y = wh * ws + t / ws, x = ww * ws + t % ws;
            lab[t] = 3 * band_of(y, H, ws, shift) + band_of(x, W, ws, shift);
        }
        for (int a = 0; a < N; a++)
            for (int b = 0; b < N; b++)
                out[((size_t)w * N + a) * N + b] = lab[a] == lab[b] ? 0.0f : -100.0f;
    }
    free(lab);
}

/* out_h = softmax(scale * q_h k_h^T + bias[h] + mask[w]) v_h per window and head, in double.
 * tol gets the error budget of each output element (see test_window_attention). */
static void naive_window_attention(double *out, double *tol, const float *qkv, const float *bias,
                                   const float *mask, int nW, int N, int nH, int hd, float scale) {
    int C = nH * hd;
    double *s = tu_xmalloc((size_t)N * sizeof(double)), *ds = tu_xmalloc((size_t)N * sizeof(double));
    for (int w = 0; w < nW; w++)
        for (int h = 0; h < nH; h++)
            for (int a = 0; a < N; a++) {
                const float *q = qkv + ((size_t)w * N + a) * 3 * C + h * hd;
                double m = -INFINITY;
                for (int b = 0; b < N; b++) {
                    const float *k = qkv + ((size_t)w * N + b) * 3 * C + C + h * hd;
                    double dot = 0, adot = 0;
                    for (int d = 0; d < hd; d++) {
                        dot += (double)q[d] * k[d];
                        adot += fabs((double)q[d] * k[d]);
                    }
                    double bb = bias[((size_t)h * N + a) * N + b];
                    double mm = mask ? mask[((size_t)w * N + a) * N + b] : 0.0;
                    s[b] = scale * dot + bb + mm;
                    /* error of the fp32 score, in units of EPS */
                    ds[b] = sqrt((double)hd) * fabs(scale) * adot + fabs(scale * dot) + fabs(bb) +
                            fabs(mm);
                    m = fmax(m, s[b]);
                }
                double sum = 0;
                for (int b = 0; b < N; b++) sum += (s[b] = exp(s[b] - m));
                double D = 0;
                for (int b = 0; b < N; b++) {
                    s[b] /= sum;
                    D += s[b] * ds[b];
                }
                for (int d = 0; d < hd; d++) {
                    double acc = 0, pabs = 0, pds = 0;
                    for (int b = 0; b < N; b++) {
                        double v = qkv[((size_t)w * N + b) * 3 * C + 2 * C + h * hd + d];
                        acc += s[b] * v;
                        pabs += s[b] * fabs(v);
                        pds += s[b] * fabs(v) * ds[b];
                    }
                    size_t o = ((size_t)w * N + a) * C + h * hd + d;
                    out[o] = acc;
                    tol[o] = EPS * (pabs * (2.0 + sqrt((double)N) + D) + pds);
                }
            }
    free(s);
    free(ds);
}

/* ============================================================================================
 * Tests
 * ============================================================================================ */

/* conv2d_forward. Tolerance per element: sqrt(K) * EPS * S + EPS * |ref|, K = Cin*k*k + 1 and
 * S = sum |w*x| + |b|. Recursive fp32 summation of random-sign terms errs by ~u*S; same-sign
 * data by ~u*S*sqrt(K/3); blocked sgemm sums do better. A bug (one dropped tap, a wrong index)
 * costs ~S/K, far above the bound for every K used here.
 *
 * The input may go through the transform (nearest x2, per-channel affine, SiLU) band by band and
 * be accumulated into out: the twin materialises the transformed map in double (then rounds it to
 * float) and runs naive_conv2d on it, with 4 EPS * S more for the transform's own rounding (a few
 * ulp per element, times |w|), plus EPS |out0| when accumulating.
 *
 * Winograd (3x3, 16+ channels each way, unless exact math): F(2x2,3x3) is held to the same bound:
 * its transforms add and subtract up to 4 x 4 terms around the products, but with its small
 * coefficients the measured worst error is 0.11 of the bound (report lines marked "wino2"),
 * against 0.34 for the direct path. F(4x4,3x3) combines 6 x 6 terms with coefficients up to
 * 97/36 (input) and 27/8 (output) around the products and is held to the same bound too: its
 * measured worst is 0.47 of it (lines marked "wino4"; docs/testing.md, "Approximations").
 *
 * Every case runs three times: exact math (the direct im2col path), then with each Winograd tile
 * forced (conv_ctx.wino_tile: 2, then 4) where Winograd applies. Scratch: cap.rows == 0 hands the kernel exactly latup_conv2d_scratch_floats()
 * (guarded, so a band written one float too far fails); else the shared part plus cap.workers
 * bands of cap.rows rows, minus cap.minus floats, which makes it use fewer workers or shorter
 * bands. */
typedef struct {
    int up, norm, silu, accumulate;
} conv_xf;
typedef struct {
    int rows, workers;
    long minus;
} conv_cap;

/* tile: 0 exact math (direct), 2 or 4 that Winograd tile where Winograd applies */
static void check_conv_mode(tu_rng *rng, int tile, int Cin, int H, int W, int Cout, int k, int band_rows_max,
                            conv_xf xf, bool with_bias, conv_cap cap, size_t misalign, int nthreads) {
    const char *kname = "conv2d_forward";
    char shp[240];
    const conv_ctx ctx = {.nthreads = nthreads, .band_rows_max = band_rows_max, .name = "test conv", .wino_tile = tile};
    conv_input_op op0 = {.upsample2x = xf.up, .norm = xf.norm, .silu = xf.silu, .accumulate = xf.accumulate};
    latup_set_exact_math(tile == 0);
    const conv_plan pl = latup_conv2d_plan(Cin, H, W, Cout, k, &op0, &ctx);
    snprintf(shp, sizeof shp, "Cin%d %dx%d Cout%d k%d rows<=%d%s%s%s%s%s cap %d/%d-%ld%s t%d %s", Cin, H, W, Cout, k,
             band_rows_max, xf.up ? " up2x" : "", xf.norm ? " norm" : "", xf.silu ? " silu" : "",
             xf.accumulate ? " acc" : "", with_bias ? " bias" : "", cap.rows, cap.workers, cap.minus,
             misalign ? " unaligned" : "", nthreads, pl.winograd == 4 ? "wino4" : pl.winograd ? "wino2" : "direct");
    const int Hs = xf.up ? H / 2 : H, Ws = xf.up ? W / 2 : W;
    size_t nin = (size_t)Cin * Hs * Ws, nw = (size_t)Cout * Cin * k * k, nout = (size_t)Cout * H * W;
    tu_buf in = tu_alloc_misaligned(nin, misalign), wt = tu_alloc_misaligned(nw, misalign), b = tu_alloc(Cout),
           out = tu_alloc_misaligned(nout, misalign), mu = tu_alloc(Cin), sc = tu_alloc(Cin), nb = tu_alloc(Cin);
    tu_fill_normal(rng, in.p, nin, 0.3f, 1.0f);
    tu_fill_normal(rng, wt.p, nw, 0.0f, 1.0f / sqrtf((float)(Cin * k * k)));
    tu_fill_normal(rng, b.p, Cout, 0.0f, 0.5f);
    tu_fill_normal(rng, mu.p, Cin, 0.3f, 0.5f);
    tu_fill_uniform(rng, sc.p, Cin, 0.5f, 1.5f);
    tu_fill_normal(rng, nb.p, Cin, 0.0f, 0.5f);
    float *out0 = tu_xmalloc(nout * sizeof(float));
    tu_fill_normal(rng, out0, nout, 0.0f, 1.0f);
    if (xf.accumulate) memcpy(out.p, out0, nout * sizeof(float));
    conv_input_op op = {.upsample2x = xf.up, .norm = xf.norm, .norm_mean = mu.p, .norm_scale = sc.p,
                        .norm_bias = nb.p, .silu = xf.silu, .accumulate = xf.accumulate};
    size_t ncap = latup_conv2d_scratch_floats(Cin, H, W, Cout, k, &op, &ctx);
    if (cap.rows > 0) {
        const conv_ctx c1 = {.nthreads = 1, .band_rows_max = cap.rows, .name = "cap", .wino_tile = tile};
        const conv_plan pc = latup_conv2d_plan(Cin, H, W, Cout, k, &op, &c1);
        ncap = pc.shared + (size_t)cap.workers * pc.per_band - (size_t)cap.minus;
    }
    tu_buf col = tu_alloc(ncap);
    float *in_copy = dup_floats(in.p, nin), *w_copy = dup_floats(wt.p, nw), *out_before = dup_floats(out.p, nout);
    /* a band of one row costs a whole tile row (4 rows for F(4x4)): a capacity made for the tile
     * cases of other rows may hold none, and is then refused with nothing written */
    const conv_ctx c1r = {.nthreads = 1, .band_rows_max = 1, .name = "one row", .wino_tile = tile};
    const conv_plan one = latup_conv2d_plan(Cin, H, W, Cout, k, &op, &c1r);
    const bool refuse = ncap < one.shared + one.per_band;

    latup_status st = latup_conv2d_forward(out.p, in.p, wt.p, with_bias ? b.p : NULL, Cin, H, W, Cout, k, &op,
                                           col.n ? col.p : NULL, col.n, &ctx);
    if (refuse) {
        tu_check_true(kname, tu_shape("%s: capacity %zu below one band (%zu): refused, nothing written", shp, ncap,
                                      one.shared + one.per_band),
                      st == LATUP_E_INTERNAL && memcmp(out.p, out_before, nout * sizeof(float)) == 0);
        latup_set_exact_math(0);
        free(in_copy), free(w_copy), free(out0), free(out_before);
        tu_free(&in), tu_free(&wt), tu_free(&b), tu_free(&out), tu_free(&col), tu_free(&mu), tu_free(&sc), tu_free(&nb);
        return;
    }
    tu_check_true(kname, tu_shape("%s: status OK", shp), st == LATUP_OK);

    /* the twin: transform in double, round to float, convolve naively */
    float *tin = tu_xmalloc((size_t)Cin * H * W * sizeof(float));
    for (int c = 0; c < Cin; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double v = in.p[((size_t)c * Hs + (xf.up ? y / 2 : y)) * Ws + (xf.up ? x / 2 : x)];
                if (xf.norm) v = (v - mu.p[c]) * sc.p[c] + nb.p[c];
                if (xf.norm && xf.silu) v = v / (1.0 + exp(-v));
                tin[((size_t)c * H + y) * W + x] = (float)v;
            }
    double *ref = tu_xmalloc(nout * sizeof(double)), *tol = tu_xmalloc(nout * sizeof(double));
    naive_conv2d(ref, tol, tin, wt.p, with_bias ? b.p : NULL, Cin, H, W, Cout, k);
    double K = (double)Cin * k * k + 1;
    const double xtra = xf.up || xf.norm ? 4.0 : 0.0;
    for (size_t i = 0; i < nout; i++) {
        tol[i] = (sqrt(K) + xtra) * EPS * tol[i] + EPS * fabs(ref[i]);
        if (xf.accumulate) ref[i] += out0[i], tol[i] += EPS * (fabs(out0[i]) + fabs(ref[i]));
    }
    tu_check(kname, shp, out.p, ref, tol, 0, nout);
    guards(kname, shp, 5, &in, "inp", &wt, "weight", &b, "bias", &out, "out", &col, "scratch");
    unchanged(kname, shp, "inp", in.p, in_copy, nin);
    unchanged(kname, shp, "weight", wt.p, w_copy, nw);
    latup_set_exact_math(0);
    free(ref), free(tol), free(tin), free(in_copy), free(w_copy), free(out0), free(out_before);
    tu_free(&in), tu_free(&wt), tu_free(&b), tu_free(&out), tu_free(&col), tu_free(&mu), tu_free(&sc), tu_free(&nb);
}

static void check_conv(tu_rng *rng, int Cin, int H, int W, int Cout, int k, int band_rows_max, conv_xf xf,
                       bool with_bias, conv_cap cap, size_t misalign, int nthreads) {
    static const int tiles[] = {0, 2, 4};
    for (int t = 0; t < 3; t++)
        if (t == 0 || (k == 3 && Cin >= 16 && Cout >= 16)) /* Winograd's only where it applies */
            check_conv_mode(rng, tiles[t], Cin, H, W, Cout, k, band_rows_max, xf, with_bias, cap, misalign, nthreads);
}

/* OC_CONV's CPU rows [from, to) (op_cases.h) */
static void run_conv_rows(tu_rng *rng, size_t from, size_t to) {
    for (size_t i = from; i < to; i++) {
        const oc_conv *c = &OC_CONV[i];
        if (!(c->who & OC_CPU)) continue;
        const conv_xf xf = {c->up, c->norm, c->silu, c->acc};
        const conv_cap cap = {c->cap_rows, c->cap_workers, c->cap_minus};
        check_conv(rng, c->Cin, c->H, c->W, c->Cout, c->k, c->rows, xf, c->bias, cap, (size_t)c->misalign, c->threads);
    }
}

static void test_conv2d(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(1);
    run_conv_rows(&rng, 0, OC_CONV_PLAIN_ROWS);
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

static void test_conv2d_transform(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(11);
    run_conv_rows(&rng, OC_CONV_PLAIN_ROWS, sizeof OC_CONV / sizeof OC_CONV[0]);
    assert_int_equal(tu_n_failed - failed_before, 0);
}

/* The plan: band height 1..H, at most band_rows_max, whole Winograd tiles (2 or 4 rows) unless
 * it is the whole height or capped, the same for every thread count; the scratch asked for is the
 * shared part plus one band per worker; a capacity short of one row is refused with nothing
 * written. */
static void test_conv2d_bands(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    const char *kname = "conv2d_plan";
    const conv_input_op gn = {.norm = 1};
    for (int exact = 0; exact < 2; exact++) {
        latup_set_exact_math(exact);
        OC_EACH(c, OC_CONV_PLAN, OC_CPU) {
            const int Cin = OC_CONV_PLAN[c].Cin, H = OC_CONV_PLAN[c].H, W = OC_CONV_PLAN[c].W, Cout = OC_CONV_PLAN[c].Cout,
                      k = OC_CONV_PLAN[c].k, rmax = OC_CONV_PLAN[c].rows_max;
            for (int t = 0; t < 2; t++) {
                const conv_input_op *op = t ? &gn : NULL;
                bool ok = true;
                const conv_ctx c1 = {.nthreads = 1, .band_rows_max = rmax, .name = "c"};
                const conv_plan p1 = latup_conv2d_plan(Cin, H, W, Cout, k, op, &c1);
                const int tile = !(k == 3 && Cin >= 16 && Cout >= 16 && !exact) ? 0 : Cin >= 128 ? 4 : 2;
                if (p1.rows < 1 || p1.rows > H || (rmax > 0 && p1.rows > rmax)) ok = false;
                if (p1.winograd != tile) ok = false;
                if (p1.winograd && p1.rows % p1.winograd && p1.rows != H && p1.rows != rmax) ok = false;
                for (int nt = 1; nt <= 8; nt++) {
                    const conv_ctx cn = {.nthreads = nt, .band_rows_max = rmax, .name = "c"};
                    const conv_plan pn = latup_conv2d_plan(Cin, H, W, Cout, k, op, &cn);
                    const int workers = nt < pn.nbands ? nt : pn.nbands;
                    if (pn.rows != p1.rows || pn.per_band != p1.per_band) ok = false; /* threads never shape bands */
                    if (latup_conv2d_scratch_floats(Cin, H, W, Cout, k, op, &cn) !=
                        pn.shared + pn.per_band * (size_t)workers)
                        ok = false;
                }
                tu_check_true(kname, tu_shape("Cin%d %dx%d Cout%d k%d rows<=%d%s %s: band %d (%s) for 1..8 threads", Cin,
                                           H, W, Cout, k, rmax, t ? " norm" : "", exact ? "exact" : "fast", p1.rows,
                                           p1.winograd == 4 ? "wino4" : p1.winograd ? "wino2" : "direct"),
                              ok);
            }
        }
    }
    latup_set_exact_math(0);
    /* not even one row fits: an error naming the conv, and the output untouched (both methods) */
    for (int mode = 0; mode < 3; mode++) { /* exact, F(2x2), F(4x4) */
        latup_set_exact_math(mode == 0);
        enum { CI = 16, CO = 16 };
        static float out[CO * 9], in[CI * 9], w[CO * CI * 9], col[1 << 16];
        for (int i = 0; i < CO * 9; i++) out[i] = -7.0f;
        const conv_ctx ctx = {.nthreads = 2, .name = "layers.3.conv", .wino_tile = 2 * mode},
                       c1 = {.nthreads = 1, .band_rows_max = 1, .name = "one row", .wino_tile = 2 * mode};
        const conv_plan one = latup_conv2d_plan(CI, 3, 3, CO, 3, NULL, &c1);
        latup_status st =
            latup_conv2d_forward(out, in, w, NULL, CI, 3, 3, CO, 3, NULL, col, one.shared + one.per_band - 1, &ctx);
        bool untouched = true;
        for (int i = 0; i < CO * 9; i++) untouched = untouched && out[i] == -7.0f;
        tu_check_true(kname, tu_shape("%s: capacity below one row: LATUP_E_INTERNAL naming the conv (\"%s\")",
                                   one.winograd == 4 ? "wino4" : one.winograd ? "wino2" : "direct", latup_last_error()),
                      st == LATUP_E_INTERNAL && strstr(latup_last_error(), "layers.3.conv") && untouched);
    }
    latup_set_exact_math(0);
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

/* conv2d_strided_forward (the encoder's Downsample and patch code) against its naive twin, with
 * conv2d_forward's bound (K = Cin*k*k + 1): odd sizes, the (0,1,0,1) pad, patch strides,
 * asymmetric pads; band heights 1, 2, 3 and automatic; 1 and 2 threads, which must agree bit for
 * bit; the scratch exactly what the kernel asks for (guarded); a capacity short of one row
 * refused with nothing written. */
static void test_conv2d_strided(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    const char *kname = "conv2d_strided_forward";
    tu_rng rng = tu_rng_seed(21);
    static const struct {
        int Cin, H, W, Cout, k, s, pt, pl, pb, pr;
    } cases[] = {
        {5, 9, 11, 7, 3, 2, 0, 0, 1, 1},   /* Downsample, odd sides: 4 x 5 */
        {32, 14, 17, 32, 3, 2, 0, 0, 1, 1}, /* Downsample, the encoder's widths */
        {4, 2, 3, 3, 3, 2, 0, 0, 1, 1},    /* the smallest Downsample: 1 x 1 */
        {3, 19, 21, 6, 4, 4, 0, 0, 0, 0},  /* patch code p 4, cropped sides */
        {3, 16, 24, 32, 8, 8, 0, 0, 0, 0}, /* patch code p 8 (the demo VAE) */
        {6, 10, 13, 5, 3, 3, 1, 2, 0, 1},  /* stride 3, asymmetric pads */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int Cin = cases[c].Cin, H = cases[c].H, W = cases[c].W, Cout = cases[c].Cout, k = cases[c].k;
        const conv_geom g = {k, cases[c].s, cases[c].pt, cases[c].pl, cases[c].pb, cases[c].pr};
        const int Ho = latup_conv_out_size(H, k, g.stride, g.pad_t, g.pad_b);
        const int Wo = latup_conv_out_size(W, k, g.stride, g.pad_l, g.pad_r);
        const size_t nin = (size_t)Cin * H * W, nw = (size_t)Cout * Cin * k * k, nout = (size_t)Cout * Ho * Wo;
        tu_buf in = tu_alloc(nin), wt = tu_alloc(nw), b = tu_alloc(Cout);
        tu_fill_normal(&rng, in.p, nin, 0.3f, 1.0f);
        tu_fill_normal(&rng, wt.p, nw, 0.0f, 1.0f / sqrtf((float)(Cin * k * k)));
        tu_fill_normal(&rng, b.p, Cout, 0.0f, 0.5f);
        double *ref = tu_xmalloc(nout * sizeof(double)), *tol = tu_xmalloc(nout * sizeof(double));
        naive_conv2d_strided(ref, tol, in.p, wt.p, b.p, Cin, H, W, Cout, k, g.stride, g.pad_t, g.pad_l, Ho, Wo);
        const double K = (double)Cin * k * k + 1;
        for (size_t i = 0; i < nout; i++) tol[i] = sqrt(K) * EPS * tol[i] + EPS * fabs(ref[i]);
        float *in_copy = dup_floats(in.p, nin);
        const int rows[] = {0, 1, 2, 3};
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            float *first = NULL;
            for (int nt = 1; nt <= 2; nt++) {
                const conv_ctx ctx = {.nthreads = nt, .band_rows_max = rows[r], .name = "test strided conv"};
                const conv_plan pl = latup_conv2d_strided_plan(Cin, H, W, Cout, &g, &ctx);
                char shp[160];
                snprintf(shp, sizeof shp, "Cin%d %dx%d Cout%d k%d s%d pad t%d l%d b%d r%d -> %dx%d rows<=%d band %d t%d", Cin,
                         H, W, Cout, k, g.stride, g.pad_t, g.pad_l, g.pad_b, g.pad_r, Ho, Wo, rows[r], pl.rows, nt);
                tu_buf out = tu_alloc(nout), col = tu_alloc(latup_conv2d_strided_scratch_floats(Cin, H, W, Cout, &g, &ctx));
                latup_status st = latup_conv2d_strided_forward(out.p, in.p, wt.p, b.p, Cin, H, W, Cout, &g, col.p, col.n, &ctx);
                tu_check_true(kname, tu_shape("%s: status OK", shp), st == LATUP_OK);
                tu_check(kname, shp, out.p, ref, tol, 0, nout);
                guards(kname, shp, 5, &in, "inp", &wt, "weight", &b, "bias", &out, "out", &col, "scratch");
                unchanged(kname, shp, "inp", in.p, in_copy, nin);
                if (nt == 1) first = dup_floats(out.p, nout);
                else tu_check_true(kname, tu_shape("%s: bit-identical to 1 thread", shp),
                                   memcmp(first, out.p, nout * sizeof(float)) == 0);
                tu_free(&out), tu_free(&col);
            }
            free(first);
        }
        free(ref), free(tol), free(in_copy);
        tu_free(&in), tu_free(&wt), tu_free(&b);
    }
    /* not even one row fits: LATUP_E_INTERNAL naming the conv, the output untouched */
    {
        static float out[4 * 20], in[4 * 81], w[4 * 4 * 9], col[1 << 12];
        for (int i = 0; i < 4 * 20; i++) out[i] = -7.0f;
        const conv_geom g = {3, 2, 0, 0, 1, 1};
        const conv_ctx ctx = {.nthreads = 2, .name = "encoder.down.0.downsample"}, c1 = {.nthreads = 1, .band_rows_max = 1, .name = "one row"};
        const conv_plan one = latup_conv2d_strided_plan(4, 9, 9, 4, &g, &c1);
        latup_status st = latup_conv2d_strided_forward(out, in, w, NULL, 4, 9, 9, 4, &g, col, one.per_band - 1, &ctx);
        bool untouched = true;
        for (int i = 0; i < 4 * 20; i++) untouched = untouched && out[i] == -7.0f;
        tu_check_true(kname, tu_shape("capacity below one row: LATUP_E_INTERNAL naming the conv (\"%s\")",
                                      latup_last_error()),
                      st == LATUP_E_INTERNAL && strstr(latup_last_error(), "encoder.down.0.downsample") && untouched);
    }
    assert_int_equal(tu_n_failed - failed_before, 0);
}

/* linear_forward. Same bound as the convolution with K = Cin + 1. */
static void check_linear(tu_rng *rng, int N, int Cin, int Cout, bool with_bias, size_t misalign,
                         int nthreads) {
    const char *kname = "linear_forward";
    char shp[160];
    snprintf(shp, sizeof shp, "N%d Cin%d Cout%d %s%s t%d", N, Cin, Cout,
             with_bias ? "bias" : "nobias", misalign ? " unaligned" : "", nthreads);
    size_t nin = (size_t)N * Cin, nw = (size_t)Cout * Cin, nout = (size_t)N * Cout;
    tu_buf in = tu_alloc_misaligned(nin, misalign), wt = tu_alloc_misaligned(nw, misalign),
           b = tu_alloc_misaligned(Cout, misalign), out = tu_alloc_misaligned(nout, misalign);
    tu_fill_normal(rng, in.p, nin, 0.0f, 1.0f);
    tu_fill_normal(rng, wt.p, nw, 0.0f, 1.0f / sqrtf((float)Cin));
    tu_fill_normal(rng, b.p, Cout, 0.0f, 0.5f);
    float *in_copy = dup_floats(in.p, nin), *w_copy = dup_floats(wt.p, nw);

    omp_set_num_threads(nthreads);
    latup_linear_forward(out.p, in.p, wt.p, with_bias ? b.p : NULL, N, Cin, Cout);

    double *ref = tu_xmalloc(nout * sizeof(double)), *tol = tu_xmalloc(nout * sizeof(double));
    naive_linear(ref, tol, in.p, wt.p, with_bias ? b.p : NULL, N, Cin, Cout);
    for (size_t i = 0; i < nout; i++)
        tol[i] = sqrt((double)Cin + 1) * EPS * tol[i] + EPS * fabs(ref[i]);
    tu_check(kname, shp, out.p, ref, tol, 0, nout);
    guards(kname, shp, 4, &in, "inp", &wt, "weight", &b, "bias", &out, "out");
    unchanged(kname, shp, "inp", in.p, in_copy, nin);
    unchanged(kname, shp, "weight", wt.p, w_copy, nw);
    free(ref), free(tol), free(in_copy), free(w_copy);
    tu_free(&in), tu_free(&wt), tu_free(&b), tu_free(&out);
}

static void test_linear(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(2);
    OC_EACH(i, OC_LINEAR, OC_CPU) {
        const oc_linear *c = &OC_LINEAR[i];
        check_linear(&rng, c->N, c->Cin, c->Cout, c->bias, (size_t)c->misalign, c->threads);
    }
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

/* layernorm_forward. Stats are double, so the fp32 error is the last few roundings of
 * (x - mean) * rstd * w + b: 4 EPS * (|x - mean| * rstd * |w| + |b|), plus 2 EPS |mean| rstd |w|
 * so that x - (float)mean in fp32 (error u |mean|) passes with 4x margin. fp32 statistics on the
 * offset data (mean 100, C 360) err by ~1e-4 (two-pass) to ~1e-3 (one-pass): outside. */
static void check_layernorm(tu_rng *rng, int N, int C, float mean, float std, bool in_place,
                            int nthreads) {
    const char *kname = "layernorm_forward";
    char shp[160];
    snprintf(shp, sizeof shp, "N%d C%d data N(%g,%g)%s t%d", N, C, mean, std,
             in_place ? " in-place" : "", nthreads);
    size_t n = (size_t)N * C;
    const float eps = 1e-5f;
    tu_buf in = tu_alloc(n), wt = tu_alloc(C), b = tu_alloc(C), out = tu_alloc(n);
    tu_fill_normal(rng, in.p, n, mean, std);
    tu_fill_normal(rng, wt.p, C, 1.0f, 0.5f);
    tu_fill_normal(rng, b.p, C, 0.0f, 0.5f);
    double *ref = tu_xmalloc(n * sizeof(double)), *tol = tu_xmalloc(n * sizeof(double));
    double *mu = tu_xmalloc((size_t)N * sizeof(double)), *rs = tu_xmalloc((size_t)N * sizeof(double));
    naive_layernorm(ref, mu, rs, in.p, wt.p, b.p, N, C, eps);
    for (int r = 0; r < N; r++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)r * C + c;
            tol[i] = 4 * EPS * (fabs(in.p[i] - mu[r]) * rs[r] * fabs(wt.p[c]) + fabs(b.p[c])) +
                     2 * EPS * fabs(mu[r]) * rs[r] * fabs(wt.p[c]);
        }
    float *in_copy = dup_floats(in.p, n);

    omp_set_num_threads(nthreads);
    if (in_place) {
        memcpy(out.p, in.p, n * sizeof(float));
        latup_layernorm_forward(out.p, out.p, wt.p, b.p, N, C, eps);
    } else {
        latup_layernorm_forward(out.p, in.p, wt.p, b.p, N, C, eps);
    }
    tu_check(kname, shp, out.p, ref, tol, 0, n);
    guards(kname, shp, 4, &in, "inp", &wt, "weight", &b, "bias", &out, "out");
    if (!in_place) unchanged(kname, shp, "inp", in.p, in_copy, n);
    free(ref), free(tol), free(mu), free(rs), free(in_copy);
    tu_free(&in), tu_free(&wt), tu_free(&b), tu_free(&out);
}

static void test_layernorm(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(3);
    OC_EACH(i, OC_LAYERNORM, OC_CPU) {
        const oc_layernorm *c = &OC_LAYERNORM[i];
        check_layernorm(&rng, c->N, c->C, c->mean, c->std, c->in_place, c->threads);
    }
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

/* gelu_forward. erf in fp32 errs by ~EPS absolute where |erf| ~ 1, so 0.5 x (1 + erf) errs by
 * ~EPS |x| / 2 absolute: tolerance 2 EPS |x| + 4 EPS |y|. The tanh approximation (~1e-3 error)
 * is far outside. */
static void check_gelu(tu_rng *rng, size_t n, bool in_place) {
    const char *kname = "gelu_forward";
    char shp[160];
    snprintf(shp, sizeof shp, "n%zu%s", n, in_place ? " in-place" : "");
    static const float specials[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-3f, -1e-3f, 0.5f, -0.5f,
                                     1.0f, -1.0f, 3.0f,   -3.0f,   5.5f,  -5.5f,  9.0f, -9.0f,
                                     30.0f, -30.0f, 1e4f, -1e4f};
    size_t nspec = sizeof specials / sizeof specials[0];
    tu_buf in = tu_alloc(n), out = tu_alloc(n);
    for (size_t i = 0; i < n; i++)
        in.p[i] = i < nspec && n > 2 * nspec ? specials[i] : tu_uniform(rng, -8.0f, 8.0f);
    double *ref = tu_xmalloc(n * sizeof(double)), *tol = tu_xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        ref[i] = naive_gelu(in.p[i]);
        tol[i] = 2 * EPS * fabs((double)in.p[i]) + 4 * EPS * fabs(ref[i]);
    }
    float *in_copy = dup_floats(in.p, n);
    if (in_place) {
        memcpy(out.p, in.p, n * sizeof(float));
        latup_gelu_forward(out.p, out.p, n);
    } else {
        latup_gelu_forward(out.p, in.p, n);
    }
    tu_check(kname, shp, out.p, ref, tol, 0, n);
    guards(kname, shp, 2, &in, "inp", &out, "out");
    if (!in_place) unchanged(kname, shp, "inp", in.p, in_copy, n);
    free(ref), free(tol), free(in_copy);
    tu_free(&in), tu_free(&out);
}

static void test_gelu(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(4);
    OC_EACH(i, OC_ACT, OC_CPU) if (OC_ACT[i].op == OC_GELU) check_gelu(&rng, OC_ACT[i].n, OC_ACT[i].in_place);
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

/* The fast exp and erf (src/ops/fastmath.h) against double libm over the whole fp32 range: every
 * 97th float bit pattern (44 million values, all exponents) plus dense sweeps of the ranges the
 * kernels feed them. The bounds asserted here are the ones docs/testing.md states:
 *  - exp: relative error <= 2.0 ulp (measured 1.003) wherever the result is a normal float; 0 below
 *    ln(FLT_MIN) (libm gives a subnormal < 1.2e-38 there); inf above ln(FLT_MAX); NaN kept;
 *  - erf: absolute error <= 3.0e-7 (A&S 7.1.26's 1.5e-7 plus fp32 rounding; measured 2.35e-7),
 *    and below 0.9, where the Taylor series is used, relative error <= 3 ulp (measured 2.41);
 *  - exact mode: the libm formulas bit for bit. */
static double ulp_of(double y) {
    int e;
    frexp(y, &e);
    return ldexp(1.0, e - 24);
}

static void test_fastmath(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    double exp_worst = 0, erf_worst = 0, exp_at = 0, erf_at = 0, erf_small_ulp = 0, erf_small_at = 0;
    long nexp = 0, nerf = 0, nonpos_differ = 0;
    bool special_ok = true;
    for (uint64_t b = 0; b < (1ull << 32); b += 97) {
        uint32_t bits = (uint32_t)b;
        float x;
        memcpy(&x, &bits, sizeof x);
        if (!isfinite(x)) continue;
        const float e = latup_exp_fast(x);
        if (x <= 0.0f && latup_exp_fast_nonpos(x) != e) nonpos_differ++; /* the softmax's variant */
        const double ref = exp((double)x);
        if (ref >= FLT_MIN && ref <= FLT_MAX) {
            const double u = fabs((double)e - ref) / ulp_of(ref);
            if (u > exp_worst) exp_worst = u, exp_at = x;
            nexp++;
        } else if (ref < FLT_MIN && x < -87.33654475f) {
            special_ok = special_ok && e == 0.0f;
        }
        const double d = fabs((double)latup_erf_fast(x) - erf((double)x));
        if (d > erf_worst) erf_worst = d, erf_at = x;
        if (fabsf(x) < 0.9f && x != 0.0f && fabs(erf((double)x)) >= FLT_MIN) {
            const double u = d / ulp_of(fabs(erf((double)x)));
            if (u > erf_small_ulp) erf_small_ulp = u, erf_small_at = x;
        }
        nerf++;
    }
    for (int i = 0; i <= 2000000; i++) { /* dense: [-30, 0] (softmax) and [-10, 10] (erf, SiLU) */
        const float x = -30.0f + 30.0f * (float)i / 2000000.0f, y = -10.0f + 20.0f * (float)i / 2000000.0f;
        const double ref = exp((double)x), u = fabs((double)latup_exp_fast(x) - ref) / ulp_of(ref);
        if (u > exp_worst) exp_worst = u, exp_at = x;
        const double d = fabs((double)latup_erf_fast(y) - erf((double)y));
        if (d > erf_worst) erf_worst = d, erf_at = y;
        nexp++, nerf++;
    }
    special_ok = special_ok && isinf(latup_exp_fast(89.0f)) && latup_exp_fast(-INFINITY) == 0.0f &&
                 isnan(latup_exp_fast(NAN)) && isfinite(latup_exp_fast(88.72f)) && latup_erf_fast(0.0f) == 0.0f &&
                 latup_erf_fast(30.0f) == 1.0f && latup_erf_fast(-30.0f) == -1.0f;
    printf("%-24s %ld values: max error %.3f ulp (at x = %.9g)  bound 2.0 ulp  %s\n", "exp_fast", nexp, exp_worst,
           exp_at, exp_worst <= 2.0 ? "OK" : "NOT OK");
    printf("%-24s %ld values: max |error| %.3e (at x = %.9g)  bound 3.0e-07  %s\n", "erf_fast", nerf, erf_worst,
           erf_at, erf_worst <= 3.0e-7 ? "OK" : "NOT OK");
    printf("%-24s |x| < 0.9: max error %.3f ulp (at x = %.9g)  bound 3.0 ulp  %s\n", "erf_fast", erf_small_ulp,
           erf_small_at, erf_small_ulp <= 3.0 ? "OK" : "NOT OK");
    printf("%-24s x <= 0, every 97th float: %ld results differ from exp_fast  %s\n", "exp_fast_nonpos",
           nonpos_differ, nonpos_differ == 0 ? "OK" : "NOT OK");
    tu_check_true("exp_fast_nonpos", "the same bits as exp_fast for every x <= 0 tried (so the same bound)",
                  nonpos_differ == 0 && latup_exp_fast_nonpos(-INFINITY) == 0.0f && latup_exp_fast_nonpos(0.0f) == 1.0f &&
                      latup_exp_fast_nonpos(-100.0f) == 0.0f && isnan(latup_exp_fast_nonpos(NAN)));
    tu_check_true("erf_fast", "max error <= 3 ulp below 0.9", erf_small_ulp <= 3.0);
    tu_check_true("exp_fast", "max error <= 2 ulp over the normal range", exp_worst <= 2.0);
    tu_check_true("erf_fast", "max |error| <= 3e-7", erf_worst <= 3.0e-7);
    tu_check_true("exp_fast", "0 below ln(FLT_MIN), inf above ln(FLT_MAX), NaN kept; erf(0) = 0, erf(+-30) = +-1",
                  special_ok);
    /* exact mode: the kernels use libm, bit for bit */
    float in[5] = {-3.5f, -0.25f, 0.0f, 0.75f, 6.0f}, g[5], sl[5];
    latup_set_exact_math(1);
    latup_gelu_forward(g, in, 5);
    latup_silu_forward(sl, in, 5);
    latup_set_exact_math(0);
    bool same = true;
    for (int i = 0; i < 5; i++)
        same = same && g[i] == 0.5f * in[i] * (1.0f + erff(in[i] * 0.70710678118654752440f)) &&
               sl[i] == in[i] / (1.0f + expf(-in[i]));
    tu_check_true("exact math", "gelu and silu equal the libm formulas bit for bit", same);
    assert_int_equal(tu_n_failed - failed_before, 0);
}

/* leaky_relu_forward: one fp32 multiply, exact. */
static void check_leaky(tu_rng *rng, size_t n, float slope, bool in_place) {
    const char *kname = "leaky_relu_forward";
    char shp[160];
    snprintf(shp, sizeof shp, "n%zu slope %g%s", n, slope, in_place ? " in-place" : "");
    tu_buf in = tu_alloc(n), out = tu_alloc(n);
    tu_fill_normal(rng, in.p, n, 0.0f, 2.0f);
    if (n > 3) in.p[0] = 0.0f, in.p[1] = -0.0f, in.p[2] = -1e-38f;
    float *ref = tu_xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) ref[i] = naive_leaky(in.p[i], slope);
    if (in_place) {
        memcpy(out.p, in.p, n * sizeof(float));
        latup_leaky_relu_forward(out.p, out.p, n, slope);
    } else {
        latup_leaky_relu_forward(out.p, in.p, n, slope);
    }
    tu_check_exact(kname, shp, out.p, ref, n);
    guards(kname, shp, 2, &in, "inp", &out, "out");
    free(ref);
    tu_free(&in), tu_free(&out);
}

static void test_leaky_relu(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(5);
    OC_EACH(i, OC_ACT, OC_CPU) if (OC_ACT[i].op == OC_LEAKY) check_leaky(&rng, OC_ACT[i].n, OC_ACT[i].slope, OC_ACT[i].in_place);
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

/* softmax_rows. Per element EPS * y * (4 + 2|x - max| + 2 sqrt(cols)): exp of an fp32
 * difference (relative error ~ |x - max| ulp), a couple of ulp for exp and the division, and the
 * fp32 row sum. Row sums must be 1 within EPS * (4 + 2 sqrt(cols)). The [-50, 100] data
 * overflows a softmax that does not subtract the max. */

static void check_softmax(tu_rng *rng, int rows, int cols, int kind, int nthreads) {
    const char *kname = "softmax_rows";
    static const char *kinds[] = {"N(0,3)", "U(-50,100)", "N(0,3) + -100 mask", "all equal"};
    char shp[160];
    snprintf(shp, sizeof shp, "%dx%d %s t%d", rows, cols, kinds[kind], nthreads);
    size_t n = (size_t)rows * cols;
    tu_buf x = tu_alloc(n);
    for (size_t i = 0; i < n; i++) {
        switch (kind) {
        case OC_SM_NORMAL: x.p[i] = 3.0f * tu_normal(rng); break;
        case OC_SM_WIDE: x.p[i] = tu_uniform(rng, -50.0f, 100.0f); break;
        case OC_SM_MASKED: x.p[i] = 3.0f * tu_normal(rng) + (tu_next_u64(rng) % 3 ? -100.0f : 0.0f); break;
        default: x.p[i] = 7.25f; break;
        }
    }
    double *ref = tu_xmalloc(n * sizeof(double)), *tol = tu_xmalloc(n * sizeof(double));
    naive_softmax(ref, x.p, rows, cols);
    for (int r = 0; r < rows; r++) {
        float m = -INFINITY;
        for (int c = 0; c < cols; c++) m = fmaxf(m, x.p[(size_t)r * cols + c]);
        for (int c = 0; c < cols; c++) {
            size_t i = (size_t)r * cols + c;
            tol[i] = EPS * ref[i] * (4 + 2 * fabs((double)x.p[i] - m) + 2 * sqrt((double)cols)) + 1e-37;
        }
    }
    omp_set_num_threads(nthreads);
    latup_softmax_rows(x.p, rows, cols);
    tu_check(kname, shp, x.p, ref, tol, 0, n);
    guards(kname, shp, 1, &x, "x");
    double worst = 0, rtol = EPS * (4 + 2 * sqrt((double)cols));
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) s += x.p[(size_t)r * cols + c];
        worst = isnan(s) ? INFINITY : fmax(worst, fabs(s - 1.0));
    }
    char shp2[256];
    snprintf(shp2, sizeof shp2, "%s: row sums", shp);
    tu_report(kname, shp2, worst, worst, rtol, worst / rtol, worst <= rtol);
    free(ref), free(tol);
    tu_free(&x);
}

static void test_softmax(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(6);
    OC_EACH(i, OC_SOFTMAX, OC_CPU) check_softmax(&rng, OC_SOFTMAX[i].rows, OC_SOFTMAX[i].cols, OC_SOFTMAX[i].kind, OC_SOFTMAX[i].threads);
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

/* add_inplace: one fp32 add, exact. */
static void test_add_inplace(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(7);
    OC_EACH(s, OC_ADD, OC_CPU) {
        size_t n = OC_ADD[s].n;
        const int mis = OC_ADD[s].misalign;
        char shp[160];
        snprintf(shp, sizeof shp, "n%zu%s", n, mis ? " unaligned" : "");
        tu_buf y = tu_alloc_misaligned(n, (size_t)mis), x = tu_alloc(n);
        tu_fill_normal(&rng, y.p, n, 0.0f, 1.0f);
        tu_fill_normal(&rng, x.p, n, 0.0f, 1.0f);
        float *ref = tu_xmalloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) ref[i] = y.p[i] + x.p[i];
        latup_add_inplace(y.p, x.p, n);
        tu_check_exact("add_inplace", shp, y.p, ref, n);
        guards("add_inplace", shp, 2, &y, "y", &x, "x");
        free(ref);
        tu_free(&y), tu_free(&x);
    }
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

/* chw_to_hwc / hwc_to_chw: pure copies, exact; and the round trip. */
static void test_chw_hwc(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(8);
    OC_EACH(c, OC_TRANSPOSE, OC_CPU) {
        int C = OC_TRANSPOSE[c].C, HW = OC_TRANSPOSE[c].HW;
        size_t n = (size_t)C * HW;
        char shp[160];
        snprintf(shp, sizeof shp, "C%d HW%d", C, HW);
        tu_buf in = tu_alloc(n), mid = tu_alloc(n), back = tu_alloc(n);
        tu_fill_normal(&rng, in.p, n, 0.0f, 1.0f);
        float *ref = tu_xmalloc(n * sizeof(float)), *ref2 = tu_xmalloc(n * sizeof(float));
        latup_chw_to_hwc(mid.p, in.p, C, HW);
        naive_chw_to_hwc(ref, in.p, C, HW);
        tu_check_exact("chw_to_hwc", shp, mid.p, ref, n);
        /* hwc_to_chw on independent data (not just the inverse of the kernel's own output) */
        latup_hwc_to_chw(back.p, in.p, C, HW);
        naive_hwc_to_chw(ref2, in.p, C, HW);
        tu_check_exact("hwc_to_chw", shp, back.p, ref2, n);
        latup_hwc_to_chw(back.p, mid.p, C, HW);
        char shp2[256];
        snprintf(shp2, sizeof shp2, "%s: latup_hwc_to_chw(latup_chw_to_hwc(x)) == x", shp);
        tu_check_exact("chw<->hwc", shp2, back.p, in.p, n);
        guards("chw<->hwc", shp, 3, &in, "inp", &mid, "hwc", &back, "chw");
        free(ref), free(ref2);
        tu_free(&in), tu_free(&mid), tu_free(&back);
    }
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

static void test_pixel_shuffle(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(9);
    OC_EACH(c, OC_SHUFFLE, OC_CPU) {
        int C = OC_SHUFFLE[c].C, H = OC_SHUFFLE[c].H, W = OC_SHUFFLE[c].W, r = OC_SHUFFLE[c].r;
        size_t n = (size_t)C * r * r * H * W;
        char shp[160];
        snprintf(shp, sizeof shp, "C%d %dx%d r%d", C, H, W, r);
        tu_buf in = tu_alloc(n), out = tu_alloc(n);
        tu_fill_normal(&rng, in.p, n, 0.0f, 1.0f);
        float *ref = tu_xmalloc(n * sizeof(float));
        omp_set_num_threads(2);
        latup_pixel_shuffle(out.p, in.p, C, H, W, r);
        naive_pixel_shuffle(ref, in.p, C, H, W, r);
        tu_check_exact("pixel_shuffle", shp, out.p, ref, n);
        guards("pixel_shuffle", shp, 2, &in, "inp", &out, "out");
        free(ref);
        tu_free(&in), tu_free(&out);
    }
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

static void test_reflect_pad(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(10);
    OC_EACH(c, OC_PAD, OC_CPU) {
        int C = OC_PAD[c].C, H = OC_PAD[c].H, W = OC_PAD[c].W, Hp = OC_PAD[c].Hp, Wp = OC_PAD[c].Wp;
        size_t nin = (size_t)C * H * W, nout = (size_t)C * Hp * Wp;
        char shp[160];
        snprintf(shp, sizeof shp, "C%d %dx%d -> %dx%d", C, H, W, Hp, Wp);
        tu_buf in = tu_alloc(nin), out = tu_alloc(nout);
        tu_fill_normal(&rng, in.p, nin, 0.0f, 1.0f);
        float *ref = tu_xmalloc(nout * sizeof(float));
        latup_reflect_pad(out.p, in.p, C, H, W, Hp, Wp);
        naive_reflect_pad(ref, in.p, C, H, W, Hp, Wp);
        tu_check_exact("reflect_pad", shp, out.p, ref, nout);
        guards("reflect_pad", shp, 2, &in, "inp", &out, "out");
        free(ref);
        tu_free(&in), tu_free(&out);
    }
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

static void test_crop(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(11);
    OC_EACH(c, OC_CROP, OC_CPU) {
        int C = OC_CROP[c].C, H = OC_CROP[c].H, W = OC_CROP[c].W, Ho = OC_CROP[c].Ho, Wo = OC_CROP[c].Wo;
        size_t nin = (size_t)C * H * W, nout = (size_t)C * Ho * Wo;
        char shp[160];
        snprintf(shp, sizeof shp, "C%d %dx%d -> %dx%d", C, H, W, Ho, Wo);
        tu_buf in = tu_alloc(nin), out = tu_alloc(nout);
        tu_fill_normal(&rng, in.p, nin, 0.0f, 1.0f);
        float *ref = tu_xmalloc(nout * sizeof(float));
        latup_crop(out.p, in.p, C, H, W, Ho, Wo);
        naive_crop(ref, in.p, C, H, W, Ho, Wo);
        tu_check_exact("crop", shp, out.p, ref, nout);
        guards("crop", shp, 2, &in, "inp", &out, "out");
        free(ref);
        tu_free(&in), tu_free(&out);
    }
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

/* window_partition / window_reverse: pure index maps, exact; reverse(partition(x)) == x. */
static void test_windows(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(12);
    OC_EACH(c, OC_WINDOWS, OC_CPU) {
        int H = OC_WINDOWS[c].H, W = OC_WINDOWS[c].W, C = OC_WINDOWS[c].C, ws = OC_WINDOWS[c].ws, sh = OC_WINDOWS[c].shift;
        size_t n = (size_t)H * W * C;
        char shp[160];
        snprintf(shp, sizeof shp, "%dx%d C%d ws%d shift%d nW%d", H, W, C, ws, sh,
                 (H / ws) * (W / ws));
        tu_buf in = tu_alloc(n), win = tu_alloc(n), back = tu_alloc(n), rev = tu_alloc(n);
        tu_fill_normal(&rng, in.p, n, 0.0f, 1.0f);
        float *ref = tu_xmalloc(n * sizeof(float));
        omp_set_num_threads(2);
        latup_window_partition(win.p, in.p, H, W, C, ws, sh);
        naive_window_partition(ref, in.p, H, W, C, ws, sh);
        tu_check_exact("window_partition", shp, win.p, ref, n);
        /* window_reverse on independent data, against its own twin */
        latup_window_reverse(rev.p, in.p, H, W, C, ws, sh);
        naive_window_reverse(ref, in.p, H, W, C, ws, sh);
        tu_check_exact("window_reverse", shp, rev.p, ref, n);
        latup_window_reverse(back.p, win.p, H, W, C, ws, sh);
        /* the fused forms the Swin block runs: the same bits as the pairs they replace */
        {
            tu_buf wt = tu_alloc((size_t)C), bs = tu_alloc((size_t)C), fused = tu_alloc(n), pair = tu_alloc(n),
                   y = tu_alloc(n);
            tu_fill_normal(&rng, wt.p, (size_t)C, 1.0f, 0.2f);
            tu_fill_normal(&rng, bs.p, (size_t)C, 0.0f, 0.2f);
            latup_layernorm_forward(rev.p, in.p, wt.p, bs.p, H * W, C, 1e-5f);
            latup_window_partition(pair.p, rev.p, H, W, C, ws, sh);
            latup_layernorm_partition(fused.p, in.p, wt.p, bs.p, H, W, C, ws, sh, 1e-5f);
            tu_check_exact("layernorm_partition", shp, fused.p, pair.p, n);
            tu_fill_normal(&rng, y.p, n, 0.0f, 1.0f);
            memcpy(pair.p, y.p, n * sizeof(float));
            latup_window_reverse(rev.p, win.p, H, W, C, ws, sh);
            latup_add_inplace(pair.p, rev.p, n);
            latup_window_reverse_add(y.p, win.p, H, W, C, ws, sh);
            tu_check_exact("window_reverse_add", shp, y.p, pair.p, n);
            guards("layernorm_partition/reverse_add", shp, 5, &wt, "w", &bs, "b", &fused, "fused", &pair, "pair",
                   &y, "y");
            tu_free(&wt), tu_free(&bs), tu_free(&fused), tu_free(&pair), tu_free(&y);
        }
        char shp2[256];
        snprintf(shp2, sizeof shp2, "%s: reverse(partition(x)) == x", shp);
        tu_check_exact("window round trip", shp2, back.p, in.p, n);
        guards("window_partition/rev", shp, 4, &in, "inp", &win, "windows", &back, "back", &rev,
               "rev");
        free(ref);
        tu_free(&in), tu_free(&win), tu_free(&back), tu_free(&rev);
    }
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

static void test_relative_bias(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(13);
    OC_EACH(c, OC_RELBIAS, OC_CPU) {
        int ws = OC_RELBIAS[c].ws, nH = OC_RELBIAS[c].nH, N = ws * ws;
        size_t nt = (size_t)(2 * ws - 1) * (2 * ws - 1) * nH, n = (size_t)nH * N * N;
        char shp[160];
        snprintf(shp, sizeof shp, "ws%d nH%d", ws, nH);
        tu_buf table = tu_alloc(nt), out = tu_alloc(n);
        tu_fill_normal(&rng, table.p, nt, 0.0f, 1.0f);
        float *ref = tu_xmalloc(n * sizeof(float));
        latup_relative_bias_gather(out.p, table.p, ws, nH);
        naive_relative_bias(ref, table.p, ws, nH);
        tu_check_exact("relative_bias_gather", shp, out.p, ref, n);
        guards("relative_bias_gather", shp, 2, &table, "table", &out, "out");
        free(ref);
        tu_free(&table), tu_free(&out);
    }
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

static void test_shift_mask(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    OC_EACH(c, OC_SHIFT_MASK, OC_CPU) {
        int H = OC_SHIFT_MASK[c].H, W = OC_SHIFT_MASK[c].W, ws = OC_SHIFT_MASK[c].ws, sh = OC_SHIFT_MASK[c].shift;
        int N = ws * ws, nW = (H / ws) * (W / ws);
        size_t n = (size_t)nW * N * N;
        char shp[160];
        snprintf(shp, sizeof shp, "%dx%d ws%d shift%d nW%d", H, W, ws, sh, nW);
        tu_buf out = tu_alloc(n);
        float *ref = tu_xmalloc(n * sizeof(float));
        latup_shift_mask_build(out.p, H, W, ws, sh);
        naive_shift_mask(ref, H, W, ws, sh);
        tu_check_exact("shift_mask_build", shp, out.p, ref, n);
        /* exactly 0 or -100, symmetric, zero diagonal; some -100 iff shifted */
        bool vals = true, sym = true, diag = true;
        size_t nmasked = 0;
        for (int w = 0; w < nW; w++)
            for (int a = 0; a < N; a++)
                for (int b = 0; b < N; b++) {
                    float v = out.p[((size_t)w * N + a) * N + b];
                    if (v != 0.0f && v != -100.0f) vals = false;
                    if (v != out.p[((size_t)w * N + b) * N + a]) sym = false;
                    if (a == b && v != 0.0f) diag = false;
                    nmasked += v == -100.0f;
                }
        char shp2[256];
        snprintf(shp2, sizeof shp2, "%s: only 0/-100, symmetric, 0 diagonal, %zu masked", shp,
                 nmasked);
        tu_check_true("shift_mask_build", shp2, vals && sym && diag && ((sh > 0) == (nmasked > 0)));
        guards("shift_mask_build", shp, 1, &out, "out");
        free(ref);
        tu_free(&out);
    }
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

/* window_attention_forward against softmax(scale q k^T + bias + mask) v in double. Tolerance per
 * output element, in EPS units: each fp32 score s_ab errs by dS_ab ~ sqrt(hd) scale sum|q k|
 * (dot product) + |s| + |bias| + |mask| (the adds); that perturbs p_ab relatively by dS_ab plus
 * the row average D_a = sum_b p_ab dS_ab, plus a few ulp for exp/division and sqrt(N) for the
 * fp32 row sum; the p.v sum adds its own sqrt(N). So
 *   tol = EPS * (sum_b p|v| * (2 + sqrt(N) + D_a) + sum_b p|v| dS_ab).
 * (Measured err/tol stays below ~0.15 on the shapes below.)
 * A wrong head, token or mask index moves the output by O(|v|), orders of magnitude above. */
static void check_attention(tu_rng *rng, int H, int W, int ws, int shift, bool with_mask, int nH,
                            int hd, int nthreads, int omp_threads) {
    const char *kname = "window_attention_fwd";
    int N = ws * ws, nW = (H / ws) * (W / ws), C = nH * hd;
    char shp[160];
    snprintf(shp, sizeof shp, "%dx%d ws%d nW%d nH%d hd%d shift%d %s t%d%s", H, W, ws, nW, nH, hd,
             shift, with_mask ? "mask" : "nomask", nthreads,
             omp_threads != nthreads ? " (omp max threads higher)" : "");
    size_t nqkv = (size_t)nW * N * 3 * C, nout = (size_t)nW * N * C, nb = (size_t)nH * N * N,
           nm = (size_t)nW * N * N, ntab = (size_t)(2 * ws - 1) * (2 * ws - 1) * nH;
    float scale = 1.0f / sqrtf((float)hd);
    tu_buf qkv = tu_alloc(nqkv), bias = tu_alloc(nb), mask = tu_alloc(with_mask ? nm : 0),
           out = tu_alloc(nout), scratch = tu_alloc(latup_window_attention_scratch_floats(N, nthreads));
    /* q, k with unit-ish entries give scores of a few units, like a trained model */
    tu_fill_normal(rng, qkv.p, nqkv, 0.0f, 1.0f);
    float *table = tu_xmalloc(ntab * sizeof(float));
    tu_fill_normal(rng, table, ntab, 0.0f, 1.0f);
    naive_relative_bias(bias.p, table, ws, nH);
    if (with_mask) naive_shift_mask(mask.p, H, W, ws, shift);
    float *qkv_copy = dup_floats(qkv.p, nqkv);

    omp_set_num_threads(omp_threads);
    latup_status st = latup_window_attention_forward(out.p, qkv.p, bias.p, with_mask ? mask.p : NULL, nW, N, nH,
                                                     hd, scale, scratch.p, scratch.n, nthreads);
    tu_check_true(kname, tu_shape("%s: status OK", shp), st == LATUP_OK);

    double *ref = tu_xmalloc(nout * sizeof(double)), *tol = tu_xmalloc(nout * sizeof(double));
    naive_window_attention(ref, tol, qkv.p, bias.p, with_mask ? mask.p : NULL, nW, N, nH, hd,
                           scale);
    tu_check(kname, shp, out.p, ref, tol, 0, nout);
    guards(kname, shp, 5, &qkv, "qkv", &bias, "bias", &mask, "mask", &out, "out", &scratch,
           "scratch");
    unchanged(kname, shp, "qkv", qkv.p, qkv_copy, nqkv);
    free(ref), free(tol), free(table), free(qkv_copy);
    tu_free(&qkv), tu_free(&bias), tu_free(&mask), tu_free(&out), tu_free(&scratch);
}

static void test_window_attention(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(14);
    /* H, W, ws, shift, mask, nH, hd, nthreads, omp threads */
    OC_EACH(i, OC_WINDOW_ATTENTION, OC_CPU) {
        const oc_window_attention *c = &OC_WINDOW_ATTENTION[i];
        check_attention(&rng, c->H, c->W, c->ws, c->shift, c->mask, c->nH, c->hd, c->threads, c->omp);
    }
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

/* ============================================================================================
 * VAE decoder kernels: naive twins (from docs/spec/vae.md and kernels.h) and their tests
 * ============================================================================================ */

/* GroupNorm in double: groups of C/G consecutive channels, mean and biased variance over
 * (C/G) x HW, eps inside the root, affine per channel. Also returns, per element, the fp32
 * error budget (see check_groupnorm). */
static void naive_groupnorm(double *out, double *tol, const float *inp, const float *weight,
                            const float *bias, int C, int HW, int G, float eps) {
    int cpg = C / G;
    for (int g = 0; g < G; g++) {
        const float *x = inp + (size_t)g * cpg * HW;
        size_t n = (size_t)cpg * HW;
        double m = 0, var = 0;
        for (size_t i = 0; i < n; i++) m += x[i];
        m /= (double)n;
        for (size_t i = 0; i < n; i++) var += (x[i] - m) * (x[i] - m);
        var /= (double)n;
        double rstd = 1.0 / sqrt(var + (double)eps);
        for (int j = 0; j < cpg; j++) {
            int c = g * cpg + j;
            for (int i = 0; i < HW; i++) {
                size_t o = (size_t)c * HW + i;
                double xh = (inp[o] - m) * rstd;
                out[o] = xh * weight[c] + bias[c];
                tol[o] = 4 * EPS * (fabs(xh * weight[c]) + fabs(bias[c])) +
                         2 * EPS * fabs(m) * rstd * fabs(weight[c]);
            }
        }
    }
}

static double naive_silu(double x) { return x / (1.0 + exp(-x)); }

/* out[c, y, x] = inp[c, y/2, x/2] */
static void naive_upsample2x(float *out, const float *inp, int C, int H, int W) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < 2 * H; y++)
            for (int x = 0; x < 2 * W; x++)
                out[((size_t)c * 2 * H + y) * 2 * W + x] = inp[((size_t)c * H + y / 2) * W + x / 2];
}

/* softmax(scale q k^T) v with the full N x N score matrix, in double. tol gets each output
 * element's error budget (see check_attention_blocked); nkb = number of key blocks. */
static void naive_attention(double *out, double *tol, const float *q, const float *k,
                            const float *v, int N, int C, float scale, int nkb) {
    double *s = tu_xmalloc((size_t)N * sizeof(double)), *ds = tu_xmalloc((size_t)N * sizeof(double));
    double *acc = tu_xmalloc((size_t)C * sizeof(double)), *pabs = tu_xmalloc((size_t)C * sizeof(double)),
           *pds = tu_xmalloc((size_t)C * sizeof(double));
    for (int a = 0; a < N; a++) {
        double m = -INFINITY, smax = 0;
        for (int b = 0; b < N; b++) {
            double dot = 0, adot = 0;
            for (int c = 0; c < C; c++) {
                double t = (double)q[(size_t)a * C + c] * k[(size_t)b * C + c];
                dot += t;
                adot += fabs(t);
            }
            s[b] = scale * dot;
            ds[b] = sqrt((double)C) * fabs(scale) * adot + fabs(s[b]); /* in EPS units */
            m = fmax(m, s[b]);
            smax = fmax(smax, fabs(s[b]));
        }
        double sum = 0;
        for (int b = 0; b < N; b++) sum += (s[b] = exp(s[b] - m));
        double D = 0;
        for (int b = 0; b < N; b++) {
            s[b] /= sum;
            ds[b] += smax; /* s - m with |m| <= smax: the exp argument's rounding */
            D += s[b] * ds[b];
        }
        /* o = sum_b p_b v_b, walking v row by row (b outer) to stay cache-friendly */
        for (int c = 0; c < C; c++) acc[c] = pabs[c] = pds[c] = 0;
        for (int b = 0; b < N; b++)
            for (int c = 0; c < C; c++) {
                double vv = v[(size_t)b * C + c];
                acc[c] += s[b] * vv;
                pabs[c] += s[b] * fabs(vv);
                pds[c] += s[b] * fabs(vv) * ds[b];
            }
        for (int c = 0; c < C; c++) {
            size_t o = (size_t)a * C + c;
            out[o] = acc[c];
            tol[o] = EPS * (pabs[c] * (4.0 + sqrt((double)N) + sqrt((double)nkb) + D) + pds[c]);
        }
    }
    free(s), free(ds), free(acc), free(pabs), free(pds);
}

/* groupnorm_forward and groupnorm_silu_forward. GroupNorm tolerance as for LayerNorm (double
 * statistics, so only the last fp32 roundings of (x - mean) * (rstd w) + b count):
 *   tol = 4 EPS (|x^ w| + |b|) + 2 EPS |mean| rstd |w|.
 * (Measured err/tol <= 0.4.) The offset data N(100, 1) fails fp32 one-pass statistics
 * (E[x^2] - mean^2: error 3e-3, 85x the tolerance) and the tiny-variance data N(0, 1e-3) fails
 * eps outside the root or eps x 10 (> 1e5x). GN+SiLU: |silu'| <= 1.1, so
 *   tol = 1.1 tol_gn + 4 EPS |silu(y)| + 1e-36
 * (x / (1 + expf(-x)) is within ~3 ulp; the floor covers x < -88.7, where expf(-x) overflows and
 * the result is -0 instead of a value below 3e-37). The fused kernel must also equal
 * latup_silu_forward(latup_groupnorm_forward(x)) bit for bit: same fp32 operations in the same order. */
static void check_groupnorm(tu_rng *rng, int C, int H, int W, int G, float mean, float std,
                            bool in_place, size_t misalign, int nthreads) {
    const char *kname = "groupnorm_forward", *kfused = "groupnorm_silu_forward";
    char shp[160];
    snprintf(shp, sizeof shp, "C%d %dx%d G%d N(%g,%g)%s%s t%d", C, H, W, G, mean, std,
             in_place ? " in-place" : "", misalign ? " unaligned" : "", nthreads);
    const int HW = H * W;
    const size_t n = (size_t)C * HW;
    const float eps = 1e-6f; /* the decoder's */
    tu_buf in = tu_alloc_misaligned(n, misalign), wt = tu_alloc_misaligned(C, misalign),
           b = tu_alloc(C), out = tu_alloc_misaligned(n, misalign), fused = tu_alloc(n);
    tu_fill_normal(rng, in.p, n, mean, std);
    tu_fill_normal(rng, wt.p, C, 1.0f, 0.5f);
    tu_fill_normal(rng, b.p, C, 0.0f, 0.5f);
    double *ref = tu_xmalloc(n * sizeof(double)), *tol = tu_xmalloc(n * sizeof(double));
    naive_groupnorm(ref, tol, in.p, wt.p, b.p, C, HW, G, eps);
    float *in_copy = dup_floats(in.p, n);

    omp_set_num_threads(nthreads);
    float *src = in.p;
    if (in_place) {
        memcpy(out.p, in.p, n * sizeof(float));
        src = out.p;
    }
    latup_groupnorm_forward(out.p, src, wt.p, b.p, C, HW, G, eps);
    tu_check(kname, shp, out.p, ref, tol, 0, n);

    if (in_place) {
        memcpy(fused.p, in.p, n * sizeof(float));
        latup_groupnorm_silu_forward(fused.p, fused.p, wt.p, b.p, C, HW, G, eps);
    } else {
        latup_groupnorm_silu_forward(fused.p, in.p, wt.p, b.p, C, HW, G, eps);
    }
    for (size_t i = 0; i < n; i++) {
        ref[i] = naive_silu(ref[i]);
        tol[i] = 1.1 * tol[i] + 4 * EPS * fabs(ref[i]) + 1e-36;
    }
    tu_check(kfused, shp, fused.p, ref, tol, 0, n);
    /* the composition of the two kernels, applied to the GroupNorm output computed above */
    latup_silu_forward(out.p, out.p, n);
    char shp2[256];
    snprintf(shp2, sizeof shp2, "%s == silu(gn)", shp);
    tu_check_exact(kfused, shp2, fused.p, out.p, n);

    guards(kname, shp, 5, &in, "inp", &wt, "weight", &b, "bias", &out, "out", &fused, "fused");
    if (!in_place) unchanged(kname, shp, "inp", in.p, in_copy, n);
    free(ref), free(tol), free(in_copy);
    tu_free(&in), tu_free(&wt), tu_free(&b), tu_free(&out), tu_free(&fused);
}

static void test_groupnorm(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(15);
    /* C, H, W, groups, data mean, std, in-place, misalign, threads */
    OC_EACH(i, OC_GROUPNORM, OC_CPU) {
        const oc_groupnorm *c = &OC_GROUPNORM[i];
        check_groupnorm(&rng, c->C, c->H, c->W, c->G, c->mean, c->std, c->in_place, (size_t)c->misalign, c->threads);
    }
    /* thread count must not change a bit: the statistics are per channel, summed in order */
    {
        int C = 256, HW = 45 * 37, G = 32;
        size_t n = (size_t)C * HW;
        float *x = tu_xmalloc(n * sizeof(float)), *w = tu_xmalloc(C * sizeof(float)),
              *bb = tu_xmalloc(C * sizeof(float)), *y1 = tu_xmalloc(n * sizeof(float)),
              *y2 = tu_xmalloc(n * sizeof(float));
        tu_fill_normal(&rng, x, n, 1.0f, 2.0f);
        tu_fill_normal(&rng, w, C, 1.0f, 0.5f);
        tu_fill_normal(&rng, bb, C, 0.0f, 0.5f);
        omp_set_num_threads(1);
        latup_groupnorm_silu_forward(y1, x, w, bb, C, HW, G, 1e-6f);
        omp_set_num_threads(2);
        latup_groupnorm_silu_forward(y2, x, w, bb, C, HW, G, 1e-6f);
        tu_check_exact("groupnorm_silu_forward", "C256 45x37 G32: t1 == t2", y2, y1, n);
        free(x), free(w), free(bb), free(y1), free(y2);
    }
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

/* silu_forward: tolerance 4 EPS |y| + 1e-36 (see check_groupnorm). Exact SiLU, not the
 * x * hard_sigmoid or a tanh form, and no NaN for large |x| (x / (1 + inf) = -0). */
static void check_silu(tu_rng *rng, size_t n, bool in_place) {
    const char *kname = "silu_forward";
    char shp[160];
    snprintf(shp, sizeof shp, "n%zu%s", n, in_place ? " in-place" : "");
    static const float specials[] = {0.0f,   -0.0f,  1e-30f, -1e-30f, 1e-3f, -1e-3f, 1.0f,
                                     -1.0f,  -1.278f, 5.0f,  -5.0f,   20.0f, -20.0f, 88.5f,
                                     -88.5f, -88.8f, -89.0f, -100.0f, 1e4f,  -1e4f,  -3e38f};
    size_t nspec = sizeof specials / sizeof specials[0];
    tu_buf in = tu_alloc(n), out = tu_alloc(n);
    for (size_t i = 0; i < n; i++)
        in.p[i] = i < nspec && n > 2 * nspec ? specials[i] : tu_uniform(rng, -10.0f, 10.0f);
    double *ref = tu_xmalloc(n * sizeof(double)), *tol = tu_xmalloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        ref[i] = naive_silu(in.p[i]);
        tol[i] = 4 * EPS * fabs(ref[i]) + 1e-36;
    }
    float *in_copy = dup_floats(in.p, n);
    if (in_place) {
        memcpy(out.p, in.p, n * sizeof(float));
        latup_silu_forward(out.p, out.p, n);
    } else {
        latup_silu_forward(out.p, in.p, n);
    }
    tu_check(kname, shp, out.p, ref, tol, 0, n);
    guards(kname, shp, 2, &in, "inp", &out, "out");
    if (!in_place) unchanged(kname, shp, "inp", in.p, in_copy, n);
    free(ref), free(tol), free(in_copy);
    tu_free(&in), tu_free(&out);
}

static void test_silu(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(16);
    omp_set_num_threads(2);
    OC_EACH(i, OC_ACT, OC_CPU) if (OC_ACT[i].op == OC_SILU) check_silu(&rng, OC_ACT[i].n, OC_ACT[i].in_place);
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

/* upsample_nearest2x: a pure copy, exact. */
static void test_upsample(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(17);
    OC_EACH(c, OC_UPSAMPLE, OC_CPU) {
        int C = OC_UPSAMPLE[c].C, H = OC_UPSAMPLE[c].H, W = OC_UPSAMPLE[c].W, mis = OC_UPSAMPLE[c].misalign, t = OC_UPSAMPLE[c].threads;
        size_t nin = (size_t)C * H * W, nout = 4 * nin;
        char shp[160];
        snprintf(shp, sizeof shp, "C%d %dx%d -> %dx%d%s t%d", C, H, W, 2 * H, 2 * W,
                 mis ? " unaligned" : "", t);
        tu_buf in = tu_alloc_misaligned(nin, mis), out = tu_alloc_misaligned(nout, mis);
        tu_fill_normal(&rng, in.p, nin, 0.0f, 1.0f);
        float *ref = tu_xmalloc(nout * sizeof(float)), *in_copy = dup_floats(in.p, nin);
        omp_set_num_threads(t);
        latup_upsample_nearest2x(out.p, in.p, C, H, W);
        naive_upsample2x(ref, in.p, C, H, W);
        tu_check_exact("upsample_nearest2x", shp, out.p, ref, nout);
        guards("upsample_nearest2x", shp, 2, &in, "inp", &out, "out");
        unchanged("upsample_nearest2x", shp, "inp", in.p, in_copy, nin);
        free(ref), free(in_copy);
        tu_free(&in), tu_free(&out);
    }
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

/* attention_blocked_forward against the full-matrix formula in double. Tolerance per output
 * element, in EPS units, extending window attention's: each fp32 score errs by
 * dS_b ~ sqrt(C) |scale| sum|q k| (dot product) + |s_b|; exp(s_b - m) is taken against a running
 * max with |m| <= max|s|, which adds max|s| to dS_b; that perturbs p_b relatively by dS_b, plus
 * the row average D = sum_b p_b dS_b. The fp32 p.v sum adds sqrt(N), the rescaling of the fp32
 * accumulator (up to one per key block) sqrt(N/bk), the final division a few ulp:
 *   tol = EPS * (sum_b p|v| * (4 + sqrt(N) + sqrt(nkb) + D) + sum_b p|v| dS_b).
 * The alpha and p roundings themselves cancel between acc and l (same fp32 values feed both).
 * Measured err/tol <= 0.14 (<= 0.04 on random data: the sqrt(C) dot-product term is pessimistic
 * for blocked sgemm), yet a 1e-5 relative change of `scale` already fails some lines. A dropped
 * key block, a missed rescale or a wrong row moves the output by O(|v|), far above.
 * Data: RAND q, k, v ~ N(0,1); WIDE scales q and k so scores reach several hundred (exp
 * overflows fp32 without the max subtraction); UP makes every key block raise the running max
 * (a rescale per block); DOWN puts the max in the first block (alpha = 1 afterwards). */

static void check_attention_blocked(tu_rng *rng, int N, int C, int bq, int bk, int kind,
                                    float wide, size_t misalign, int nthreads, int omp_threads) {
    const char *kname = "attention_blocked_fwd";
    static const char *kinds[] = {"rand", "wide", "ramp-up", "ramp-down"};
    char shp[160];
    snprintf(shp, sizeof shp, "N%d C%d bq%d bk%d %s", N, C, bq, bk, kinds[kind]);
    if (kind == OC_AT_WIDE)
        snprintf(shp + strlen(shp), sizeof shp - strlen(shp), "x%g", wide);
    snprintf(shp + strlen(shp), sizeof shp - strlen(shp), "%s t%d%s",
             misalign ? " unaligned" : "", nthreads, omp_threads != nthreads ? " (omp 4)" : "");
    size_t n = (size_t)N * C;
    float scale = 1.0f / sqrtf((float)C);
    tu_buf q = tu_alloc_misaligned(n, misalign), k = tu_alloc(n), v = tu_alloc_misaligned(n, misalign),
           out = tu_alloc_misaligned(n, misalign),
           scratch = tu_alloc_misaligned(latup_attention_blocked_scratch_floats(N, C, bq, bk, nthreads),
                                         misalign);
    tu_fill_normal(rng, v.p, n, 0.0f, 1.0f);
    switch (kind) {
    case OC_AT_RAND: tu_fill_normal(rng, q.p, n, 0.0f, 1.0f), tu_fill_normal(rng, k.p, n, 0.0f, 1.0f); break;
    case OC_AT_WIDE: tu_fill_normal(rng, q.p, n, 0.0f, wide), tu_fill_normal(rng, k.p, n, 0.0f, wide); break;
    default:
        /* q > 0, k[b] = t_b * (1 + noise) with t_b rising (falling) in b: scores rise (fall) */
        tu_fill_normal(rng, q.p, n, 1.0f, 0.1f);
        for (int b = 0; b < N; b++) {
            double t = 8.0 * (kind == OC_AT_UP ? b : N - 1 - b) / N;
            for (int c = 0; c < C; c++) k.p[(size_t)b * C + c] = (float)(t * (1 + 0.01 * tu_normal(rng)));
        }
    }
    float *qc = dup_floats(q.p, n), *kc = dup_floats(k.p, n), *vc = dup_floats(v.p, n);

    omp_set_num_threads(omp_threads);
    latup_status st = latup_attention_blocked_forward(out.p, q.p, k.p, v.p, N, C, scale, bq, bk, scratch.p,
                                                      scratch.n, nthreads);
    tu_check_true(kname, tu_shape("%s: status OK", shp), st == LATUP_OK);

    int bkc = bk < 1 ? 1 : (bk > N ? N : bk);
    double *ref = tu_xmalloc(n * sizeof(double)), *tol = tu_xmalloc(n * sizeof(double));
    naive_attention(ref, tol, q.p, k.p, v.p, N, C, scale, (N + bkc - 1) / bkc);
    tu_check(kname, shp, out.p, ref, tol, 0, n);
    guards(kname, shp, 5, &q, "q", &k, "k", &v, "v", &out, "out", &scratch, "scratch");
    unchanged(kname, shp, "q", q.p, qc, n);
    unchanged(kname, shp, "k", k.p, kc, n);
    unchanged(kname, shp, "v", v.p, vc, n);
    free(ref), free(tol), free(qc), free(kc), free(vc);
    tu_free(&q), tu_free(&k), tu_free(&v), tu_free(&out), tu_free(&scratch);
}

static void test_attention_blocked(void **state) {
    (void)state;
    int failed_before = tu_n_failed;
    tu_rng rng = tu_rng_seed(18);
    /* N, C, bq, bk, data, wide, misalign, nthreads, omp threads */
    OC_EACH(i, OC_ATTENTION, OC_CPU) {
        const oc_attention *c = &OC_ATTENTION[i];
        check_attention_blocked(&rng, c->N, c->C, c->bq, c->bk, c->kind, c->wide, (size_t)c->misalign, c->threads, c->omp);
    }
    /* memory is O(bq*bk + bq*C) per thread, independent of N^2 */
    size_t s64 = latup_attention_blocked_scratch_floats(16384, 512, 64, 256, 2);
    tu_check_true("attention_blocked_fwd",
                  tu_shape("scratch N16384 C512 bq64 bk256 t2: %zu floats (N^2 = %zu)", s64,
                        (size_t)16384 * 16384),
                  s64 == 2 * ((size_t)64 * 256 + 64 * 512 + 3 * 64 + 1));
    /* blocks larger than the sequence are the sequence (the VAE's mid block at small latents: N < 256) */
    size_t s10 = latup_attention_blocked_scratch_floats(10, 8, 256, 256, 1);
    tu_check_true("attention_blocked_fwd", tu_shape("scratch N10 C8 bq256 bk256 t1: %zu floats", s10),
                  s10 == (size_t)10 * 10 + 10 * 8 + 3 * 10 + 1);
    assert_int_equal(tu_n_failed - failed_before, 0); /* this test's own lines only */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d),        cmocka_unit_test(test_conv2d_transform),
        cmocka_unit_test(test_conv2d_bands),    cmocka_unit_test(test_conv2d_strided),
        cmocka_unit_test(test_linear),        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_gelu),          cmocka_unit_test(test_leaky_relu),
        cmocka_unit_test(test_fastmath),
        cmocka_unit_test(test_softmax),       cmocka_unit_test(test_add_inplace),
        cmocka_unit_test(test_chw_hwc),       cmocka_unit_test(test_pixel_shuffle),
        cmocka_unit_test(test_reflect_pad),   cmocka_unit_test(test_crop),
        cmocka_unit_test(test_windows),       cmocka_unit_test(test_relative_bias),
        cmocka_unit_test(test_shift_mask),    cmocka_unit_test(test_window_attention),
        cmocka_unit_test(test_groupnorm),     cmocka_unit_test(test_silu),
        cmocka_unit_test(test_upsample),      cmocka_unit_test(test_attention_blocked),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fflush(stderr);
    printf("test_kernels: %d comparisons, %d failed\n", tu_n_checks, tu_n_failed);
    return rc != 0 || tu_n_failed != 0;
}
