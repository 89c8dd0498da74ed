/* test_cuda_host.c — the CUDA path checked without a GPU: every kernel body of src/cuda/bodies.cuh
 * run on the host over the index space its kernel uses (element grids of LCU_BLOCK threads, a warp
 * per row with the xor butterfly, GroupNorm chunks with the shared-memory tree), every matrix
 * product issued with the operand layout the GPU uses (gemm_desc.h, column-major cblas_sgemm),
 * and the GPU ops' blocking derived from capacities as in gpu_ops.c; compared with the CPU
 * kernels (src/ops/) and with naive twins in double, on awkward shapes. Also the device arena and
 * the library's answer to LATUP_DEVICE_CUDA where no GPU can run. Built in every build. */
#include "cuda/bodies.cuh"
#include "cuda/gemm_desc.h"
#include "kernels_emu.h"
#include "ops/arena.h"
#include "op_cases.h"
#include "ops/kernels.h"
#include "test_util.h"

#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <cmocka.h>

#include "latup.h"

/* Tolerances: OC_TOL_NORM, OC_TOL_PRODUCT, OC_TOL_ATTENTION (op_cases.h, with the measurements). */


static float *randn(tu_rng *r, size_t n, float mean, float std) {
    float *x = tu_xmalloc(n * sizeof(float));
    tu_fill_normal(r, x, n, mean, std);
    return x;
}

/* NaN-filled: an element the emulated kernel never writes fails the comparison */
static float *nans(size_t n) {
    float *x = tu_xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

/* got vs a float reference: max|got - ref| <= tol * max|ref| (one report line) */
static bool cmp_scaled(const char *k, const char *shp, const float *got, const float *ref, size_t n, double tol) {
    double *r = tu_xmalloc(n * sizeof(double)), m = 0;
    for (size_t i = 0; i < n; i++) r[i] = ref[i], m = fmax(m, fabs(r[i]));
    bool ok = tu_check(k, shp, got, r, NULL, tol * (m > 0 ? m : 1.0), n);
    free(r);
    return ok;
}

static bool cmp_scaled_d(const char *k, const char *shp, const float *got, const double *ref, size_t n, double tol) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(ref[i]));
    return tu_check(k, shp, got, ref, NULL, tol * (m > 0 ? m : 1.0), n);
}

/* ==============================================================================================
 * The GPU ops of gpu_ops.c on the host: the kernels are kernels_emu.h (the bodies over the
 * kernels' index spaces), the products cuBLAS's column-major sgemm with the GPU's operand
 * descriptions (gemm_desc.h) on OpenBLAS, the loops and the blocking derived from capacities as
 * in gpu_ops.c.
 * ============================================================================================== */
/* cuBLAS's column-major product with the GPU's operand description, on OpenBLAS */
static void host_gemm(lcu_gemm d, const float *A, const float *B, float *C) {
    for (int b = 0; b < d.batch; b++)
        cblas_sgemm(CblasColMajor, d.ta ? CblasTrans : CblasNoTrans, d.tb ? CblasTrans : CblasNoTrans, d.m, d.n, d.k,
                    d.alpha, A + b * d.sa, d.lda, B + b * d.sb, d.ldb, d.beta, C + b * d.sc, d.ldc);
}

static void emu_linear(float *out, const float *inp, const float *w, const float *b, int N, int in, int outc) {
    emu_linear_bias(out, b, N, outc);
    host_gemm(lcu_gemm_linear(N, in, outc), w, inp, out);
}

/* gpu_conv with an im2col scratch of cap floats: the band rows derived from cap */
static void emu_conv(float *out, const float *inp, const float *w, const float *b, int cin, int cout, int k, int H,
                     int W, lcu_conv_in op, int accumulate, int64_t cap) {
    const int64_t HW = (int64_t)H * W, K = (int64_t)cin * k * k;
    if (k == 1) {
        emu_conv_bias(out, b, cout, HW, HW, accumulate);
        host_gemm(lcu_gemm_conv1x1((int)HW, cin, cout), inp, w, out);
        return;
    }
    float *col = nans((size_t)cap);
    const int band = lcu_band_rows(cap, cin, W, k, H);
    assert_true(band >= 1);
    for (int y0 = 0; y0 < H; y0 += band) {
        const int rows = H - y0 < band ? H - y0 : band, n = rows * W;
        float *o = out + (int64_t)y0 * W;
        assert_int_equal(emu_im2col(col, cap, inp, cin, H, W, k, y0, rows, op), 0);
        emu_conv_bias(o, b, cout, n, HW, accumulate);
        host_gemm(lcu_gemm_conv_band(n, (int)K, cout, (int)HW), col, w, o);
    }
    free(col);
}

/* gpu_window_attention with a score scratch of cap floats (windows per product from cap) */
static void emu_window_attention(float *out, const float *qkv, const float *table, int nW, int ws, int nH, int hd,
                                 int shift, int Hp, int Wp, int64_t cap) {
    const int N = ws * ws, C = nH * hd, ld = 3 * C;
    const int64_t NN = (int64_t)N * N;
    const int chunk = (int)lcu_units_in(cap, NN, nW);
    assert_true(chunk >= 1);
    float *S = nans((size_t)cap);
    for (int h = 0; h < nH; h++)
        for (int w0 = 0; w0 < nW; w0 += chunk) {
            const int wc = nW - w0 < chunk ? nW - w0 : chunk;
            const float *q = qkv + (int64_t)w0 * N * ld + (int64_t)h * hd, *k = q + C, *v = q + 2 * C;
            const lcu_score_op sop = {table, nH, h, ws, shift, Hp, Wp};
            host_gemm(lcu_gemm_window_scores(N, hd, ld, wc, 1.0f / sqrtf((float)hd)), k, q, S);
            emu_softmax_rows(S, (int64_t)wc * N, N, w0, sop);
            host_gemm(lcu_gemm_window_pv(N, hd, ld, C, wc), v, S, out + (int64_t)w0 * N * C + (int64_t)h * hd);
        }
    free(S);
}

/* gpu_attention_cn: q, k, v, out [C, N], query rows per block from cap */
static void emu_attention_cn(float *out, const float *q, const float *k, const float *v, int C, int N, int64_t cap) {
    const int bq = (int)lcu_units_in(cap, N, N);
    assert_true(bq >= 1);
    float *S = nans((size_t)cap);
    const lcu_score_op plain = {NULL, 0, 0, 0, 0, 0, 0};
    for (int i0 = 0; i0 < N; i0 += bq) {
        const int rows = N - i0 < bq ? N - i0 : bq;
        host_gemm(lcu_gemm_full_scores(N, rows, C, 1.0f / sqrtf((float)C)), k, q + i0, S);
        emu_softmax_rows(S, rows, N, 0, plain);
        host_gemm(lcu_gemm_full_pv(N, rows, C), S, v, out + i0);
    }
    free(S);
}

/* ==============================================================================================
 * Naive twins, in double, from the definitions (docs/spec, kernels.h comments).
 * ============================================================================================== */
static int naive_reflect(int y, int H) { return y < H ? y : H - 2 - (y - H); }

/* Swin window attention: out[w, a, h*hd + d] = sum_b softmax_b(scale q.k + table[rel(a,b), h]
 * + mask) v[b, d], mask -100 between different regions of the shifted image */
static void naive_window_attention(double *out, const float *qkv, const float *table, int Hp, int Wp, int ws, int nH,
                                   int hd, int shift) {
    const int N = ws * ws, C = nH * hd, nWx = Wp / ws, nW = (Hp / ws) * nWx;
    const double scale = 1.0 / sqrt((double)hd);
    double *s = tu_xmalloc((size_t)N * sizeof(double));
    for (int w = 0; w < nW; w++)
        for (int h = 0; h < nH; h++)
            for (int a = 0; a < N; a++) {
                const float *q = qkv + ((size_t)w * N + a) * 3 * C + h * hd;
                double m = -INFINITY, sum = 0;
                for (int b = 0; b < N; b++) {
                    const float *k = qkv + ((size_t)w * N + b) * 3 * C + C + h * hd;
                    double dot = 0;
                    for (int d = 0; d < hd; d++) dot += (double)q[d] * k[d];
                    const int ya = a / ws, xa = a % ws, yb = b / ws, xb = b % ws;
                    const int idx = (ya - yb + ws - 1) * (2 * ws - 1) + (xa - xb + ws - 1);
                    s[b] = scale * dot + table[idx * nH + h];
                    if (shift) {
                        const int Y0 = (w / nWx) * ws, X0 = (w % nWx) * ws;
                        int la, lb;
                        {
                            int y = Y0 + ya, x = X0 + xa;
                            la = 3 * (y < Hp - ws ? 0 : y < Hp - shift ? 1 : 2) + (x < Wp - ws ? 0 : x < Wp - shift ? 1 : 2);
                            y = Y0 + yb, x = X0 + xb;
                            lb = 3 * (y < Hp - ws ? 0 : y < Hp - shift ? 1 : 2) + (x < Wp - ws ? 0 : x < Wp - shift ? 1 : 2);
                        }
                        if (la != lb) s[b] += -100.0;
                    }
                    m = fmax(m, s[b]);
                }
                for (int b = 0; b < N; b++) sum += (s[b] = exp(s[b] - m));
                for (int d = 0; d < hd; d++) {
                    double acc = 0;
                    for (int b = 0; b < N; b++) acc += s[b] / sum * qkv[((size_t)w * N + b) * 3 * C + 2 * C + h * hd + d];
                    out[((size_t)w * N + a) * C + h * hd + d] = acc;
                }
            }
    free(s);
}

/* conv with zero padding k/2 over op(inp) (nearest x2, then (x - mean) * scale + bias, then SiLU) */
static void naive_conv(double *out, const float *inp, const float *w, const float *b, int cin, int cout, int k, int H,
                       int W, lcu_conv_in op) {
    const int p = k / 2;
    for (int co = 0; co < cout; co++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double acc = b ? b[co] : 0.0;
                for (int ci = 0; ci < cin; ci++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            const int yy = y + ky - p, xx = x + kx - p;
                            if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                            double v = op.upsample2x ? inp[((size_t)ci * (H / 2) + yy / 2) * (W / 2) + xx / 2]
                                                     : inp[((size_t)ci * H + yy) * W + xx];
                            if (op.mean) v = (v - op.mean[ci]) * op.scale[ci] + op.bias[ci];
                            if (op.mean && op.silu) v = v / (1.0 + exp(-v));
                            acc += v * w[(((size_t)co * cin + ci) * k + ky) * k + kx];
                        }
                out[((size_t)co * H + y) * W + x] = acc;
            }
}

/* ==============================================================================================
 * Tests
 * ============================================================================================== */

/* The element grid covers every index once and no other: the launch arithmetic. */
static void test_grid(void **state) {
    (void)state;
    int before = tu_n_failed;
    OC_EACH(s, OC_GRID, OC_HOST) {
        const int64_t n = OC_GRID[s].n;
        unsigned char *hit = calloc((size_t)n, 1);
        bool ok = lcu_blocks(n, LCU_BLOCK) * LCU_BLOCK >= n && (lcu_blocks(n, LCU_BLOCK) - 1) * LCU_BLOCK < n;
        GRID(n, i) hit[i]++;
        for (int64_t i = 0; i < n; i++) ok = ok && hit[i] == 1;
        tu_check_true("element grid", tu_shape("n %lld: every index exactly once, no spare block", (long long)n), ok);
        free(hit);
    }
    assert_int_equal(tu_n_failed - before, 0);
}

static void test_layout_maps(void **state) {
    (void)state;
    int before = tu_n_failed;
    tu_rng rng = tu_rng_seed(101);
    /* reflect pad and crop: C, H, W, Hp, Wp (padding < size) */
    OC_EACH(c, OC_PAD, OC_HOST) {
        const int C = OC_PAD[c].C, H = OC_PAD[c].H, W = OC_PAD[c].W, Hp = OC_PAD[c].Hp, Wp = OC_PAD[c].Wp;
        const size_t n = (size_t)C * Hp * Wp;
        float *x = randn(&rng, (size_t)C * H * W, 0, 1), *got = nans(n), *cpu = nans(n), *naive = nans(n);
        emu_reflect_pad(got, x, C, H, W, Hp, Wp);
        latup_reflect_pad(cpu, x, C, H, W, Hp, Wp);
        for (int ch = 0; ch < C; ch++)
            for (int y = 0; y < Hp; y++)
                for (int xx = 0; xx < Wp; xx++)
                    naive[((size_t)ch * Hp + y) * Wp + xx] = x[((size_t)ch * H + naive_reflect(y, H)) * W + naive_reflect(xx, W)];
        tu_check_exact("pad vs CPU reflect_pad", tu_shape("C%d %dx%d -> %dx%d", C, H, W, Hp, Wp), got, cpu, n);
        tu_check_exact("pad vs naive", tu_shape("C%d %dx%d -> %dx%d", C, H, W, Hp, Wp), got, naive, n);
        /* crop back: the inverse on the top-left */
        float *back = nans((size_t)C * H * W), *cback = nans((size_t)C * H * W);
        emu_crop(back, got, C, Hp, Wp, H, W);
        latup_crop(cback, got, C, Hp, Wp, H, W);
        tu_check_exact("crop vs CPU crop", tu_shape("C%d %dx%d -> %dx%d", C, Hp, Wp, H, W), back, cback, (size_t)C * H * W);
        tu_check_exact("latup_crop(pad(x)) == x", tu_shape("C%d %dx%d", C, H, W), back, x, (size_t)C * H * W);
        free(x), free(got), free(cpu), free(naive), free(back), free(cback);
    }
    /* transposes [C, HW] <-> [HW, C], with the fused residual */
    OC_EACH(c, OC_TRANSPOSE, OC_HOST) {
        const int C = OC_TRANSPOSE[c].C, HW = OC_TRANSPOSE[c].HW;
        const size_t n = (size_t)C * HW;
        float *x = randn(&rng, n, 0, 1), *r = randn(&rng, n, 0, 1), *got = nans(n), *cpu = nans(n);
        emu_transpose(got, x, NULL, C, HW);
        latup_chw_to_hwc(cpu, x, C, HW);
        tu_check_exact("transpose vs chw_to_hwc", tu_shape("C%d HW%d", C, HW), got, cpu, n);
        emu_transpose(got, x, NULL, HW, C);
        latup_hwc_to_chw(cpu, x, C, HW);
        tu_check_exact("transpose vs hwc_to_chw", tu_shape("C%d HW%d", C, HW), got, cpu, n);
        emu_transpose(got, x, r, C, HW);
        latup_chw_to_hwc(cpu, x, C, HW);
        latup_add_inplace(cpu, r, n);
        tu_check_exact("transpose + residual", tu_shape("C%d HW%d", C, HW), got, cpu, n);
        free(x), free(r), free(got), free(cpu);
    }
    /* PixelShuffle */
    OC_EACH(c, OC_SHUFFLE, OC_HOST) {
        const int C = OC_SHUFFLE[c].C, H = OC_SHUFFLE[c].H, W = OC_SHUFFLE[c].W, r = OC_SHUFFLE[c].r;
        const size_t n = (size_t)C * r * r * H * W;
        float *x = randn(&rng, n, 0, 1), *got = nans(n), *cpu = nans(n);
        emu_pixel_shuffle(got, x, C, H, W, r);
        latup_pixel_shuffle(cpu, x, C, H, W, r);
        tu_check_exact("pixel shuffle vs CPU", tu_shape("C%d %dx%d r%d", C, H, W, r), got, cpu, n);
        free(x), free(got), free(cpu);
    }
    assert_int_equal(tu_n_failed - before, 0);
}

static void test_windows(void **state) {
    (void)state;
    int before = tu_n_failed;
    tu_rng rng = tu_rng_seed(102);
    OC_EACH(c, OC_WINDOWS, OC_HOST) {
        const int H = OC_WINDOWS[c].H, W = OC_WINDOWS[c].W, C = OC_WINDOWS[c].C, ws = OC_WINDOWS[c].ws, sh = OC_WINDOWS[c].shift;
        const size_t n = (size_t)H * W * C;
        const char *shp = tu_shape("%dx%d C%d ws%d shift%d", H, W, C, ws, sh);
        char s[200];
        snprintf(s, sizeof s, "%s", shp);
        float *x = randn(&rng, n, 0, 1), *t = randn(&rng, n, 0, 1), *got = nans(n), *cpu = nans(n);
        emu_window_partition(got, x, H, W, C, ws, sh);
        latup_window_partition(cpu, x, H, W, C, ws, sh);
        tu_check_exact("window partition vs CPU", s, got, cpu, n);
        /* t += reverse(windows): CPU window_reverse then add_inplace */
        float *tg = tu_xmalloc(n * sizeof(float)), *ones = tu_xmalloc(n * sizeof(float));
        memcpy(tg, t, n * sizeof(float));
        emu_window_reverse_add(tg, got, H, W, C, ws, sh);
        latup_window_reverse(cpu, got, H, W, C, ws, sh);
        latup_add_inplace(t, cpu, n);
        tu_check_exact("window reverse + add vs CPU", s, tg, t, n);
        /* the scatter is a bijection: adding ones to zeros leaves exactly one everywhere */
        bool bij = true;
        for (size_t i = 0; i < n; i++) ones[i] = 1.0f, tg[i] = 0.0f;
        emu_window_reverse_add(tg, ones, H, W, C, ws, sh);
        for (size_t i = 0; i < n; i++) bij = bij && tg[i] == 1.0f;
        tu_check_true("window reverse scatter", tu_shape("%s: every token element written once", s), bij);
        free(x), free(t), free(got), free(cpu), free(tg), free(ones);
    }
    /* the relative-position index and the shift mask, against the CPU's gathered tables */
    OC_EACH(c, OC_SHIFT_MASK, OC_HOST) {
        const int H = OC_SHIFT_MASK[c].H, W = OC_SHIFT_MASK[c].W, ws = OC_SHIFT_MASK[c].ws, sh = OC_SHIFT_MASK[c].shift;
        const int N = ws * ws, nW = (H / ws) * (W / ws), nH = OC_HOST_RELBIAS_HEADS;
        const size_t nt = (size_t)(2 * ws - 1) * (2 * ws - 1) * nH;
        float *table = randn(&rng, nt, 0, 1), *bias = nans((size_t)nH * N * N), *mask = nans((size_t)nW * N * N);
        float *gb = nans((size_t)nH * N * N), *gm = nans((size_t)nW * N * N);
        latup_relative_bias_gather(bias, table, ws, nH);
        latup_shift_mask_build(mask, H, W, ws, sh);
        for (int h = 0; h < nH; h++)
            for (int a = 0; a < N; a++)
                for (int b = 0; b < N; b++) gb[((size_t)h * N + a) * N + b] = table[(size_t)lcu_rel_index(a, b, ws) * nH + h];
        for (int w = 0; w < nW; w++)
            for (int a = 0; a < N; a++)
                for (int b = 0; b < N; b++) gm[((size_t)w * N + a) * N + b] = lcu_shift_mask(w, a, b, H, W, ws, sh);
        tu_check_exact("relative index vs CPU gather", tu_shape("ws%d nH%d", ws, nH), gb, bias, (size_t)nH * N * N);
        tu_check_exact("shift mask vs CPU", tu_shape("%dx%d ws%d shift%d", H, W, ws, sh), gm, mask, (size_t)nW * N * N);
        free(table), free(bias), free(mask), free(gb), free(gm);
    }
    assert_int_equal(tu_n_failed - before, 0);
}

/* warp-per-row LayerNorm (double statistics) vs the CPU's and a double twin */
static void test_layernorm(void **state) {
    (void)state;
    int before = tu_n_failed;
    tu_rng rng = tu_rng_seed(103);
    OC_EACH(c, OC_LAYERNORM, OC_HOST) {
        const int N = OC_LAYERNORM[c].N, C = OC_LAYERNORM[c].C;
        const size_t n = (size_t)N * C;
        float *x = randn(&rng, n, OC_LAYERNORM[c].mean, OC_LAYERNORM[c].std), *w = randn(&rng, (size_t)C, 1, 0.2f), *b = randn(&rng, (size_t)C, 0, 0.1f);
        float *got = nans(n), *cpu = nans(n), *inplace = tu_xmalloc(n * sizeof(float));
        double *naive = tu_xmalloc(n * sizeof(double));
        emu_layernorm(got, x, w, b, N, C, 1e-5f);
        latup_layernorm_forward(cpu, x, w, b, N, C, 1e-5f);
        memcpy(inplace, x, n * sizeof(float));
        emu_layernorm(inplace, inplace, w, b, N, C, 1e-5f);
        for (int r = 0; r < N; r++) {
            double m = 0, v = 0;
            for (int j = 0; j < C; j++) m += x[(size_t)r * C + j];
            m /= C;
            for (int j = 0; j < C; j++) v += (x[(size_t)r * C + j] - m) * (x[(size_t)r * C + j] - m);
            const double rs = 1.0 / sqrt(v / C + 1e-5);
            for (int j = 0; j < C; j++) naive[(size_t)r * C + j] = (x[(size_t)r * C + j] - m) * rs * w[j] + b[j];
        }
        const char *shp = tu_shape("N%d C%d", N, C);
        char s[64];
        snprintf(s, sizeof s, "%s", shp);
        cmp_scaled("layernorm vs CPU", s, got, cpu, n, OC_TOL_NORM);
        cmp_scaled_d("layernorm vs naive", s, got, naive, n, OC_TOL_NORM);
        tu_check_exact("layernorm in place", s, inplace, got, n);
        free(x), free(w), free(b), free(got), free(cpu), free(inplace), free(naive);
    }
    assert_int_equal(tu_n_failed - before, 0);
}

/* the activations: the CPU's formulas, so the same bits on the host */
static void test_activations(void **state) {
    (void)state;
    int before = tu_n_failed;
    tu_rng rng = tu_rng_seed(104);
    OC_EACH(c, OC_ACT, OC_HOST) {
        const size_t n = OC_ACT[c].n;
        const float slope = OC_ACT[c].slope;
        float *x = randn(&rng, n, 0, 4), *got = nans(n), *cpu = nans(n);
        x[0] = -100.0f, x[1] = 100.0f, x[2] = 0.0f, x[3] = -0.0f;
        /* the device computes GELU and SiLU with CUDA's erff/expf: the CPU's exact mode (libm) is its
         * bit-for-bit twin on the host */
        latup_set_exact_math(1);
        for (size_t i = 0; i < n; i++) got[i] = lcu_gelu_f(x[i]);
        latup_gelu_forward(cpu, x, n);
        tu_check_exact("GELU vs CPU", tu_shape("n %zu, incl. +-100 and +-0", n), got, cpu, n);
        for (size_t i = 0; i < n; i++) got[i] = lcu_leaky_f(x[i], slope);
        latup_leaky_relu_forward(cpu, x, n, slope);
        tu_check_exact("LeakyReLU vs CPU", tu_shape("n %zu", n), got, cpu, n);
        for (size_t i = 0; i < n; i++) got[i] = lcu_silu_f(x[i]);
        latup_silu_forward(cpu, x, n);
        latup_set_exact_math(0);
        tu_check_exact("SiLU vs CPU", tu_shape("n %zu", n), got, cpu, n);
        free(x), free(got), free(cpu);
    }
    assert_int_equal(tu_n_failed - before, 0);
}

/* GroupNorm: chunked statistics with the block tree vs the CPU's affine and the applied map */
static void test_groupnorm(void **state) {
    (void)state;
    int before = tu_n_failed;
    tu_rng rng = tu_rng_seed(105);
    OC_EACH(c, OC_GROUPNORM, OC_HOST) {
        const oc_groupnorm *g = &OC_GROUPNORM[c];
        const int C = g->C, G = g->G;
        const int64_t HW = (int64_t)g->H * g->W;
        const size_t n = (size_t)C * HW;
        char s[96];
        snprintf(s, sizeof s, "C%d %dx%d G%d (%d chunks)", C, g->H, g->W, G, lcu_gn_chunks(HW));
        float *x = randn(&rng, n, g->mean, g->std), *w = randn(&rng, (size_t)C, 1, 0.2f), *b = randn(&rng, (size_t)C, 0, 0.2f);
        float *gm = nans((size_t)C), *gs = nans((size_t)C), *cm = nans((size_t)C), *cs = nans((size_t)C);
        float *scr = nans((size_t)lcu_gn_scratch_floats(C, HW));
        assert_int_equal(emu_groupnorm_stats(gm, gs, x, w, C, HW, G, 1e-6f, scr, lcu_gn_scratch_floats(C, HW)), 0);
        assert_int_equal(emu_groupnorm_stats(gm, gs, x, w, C, HW, G, 1e-6f, scr, lcu_gn_scratch_floats(C, HW) - 1),
                         LCU_E_CAPACITY);
        free(scr);
        latup_groupnorm_affine(cm, cs, x, w, C, (int)HW, G, 1e-6f);
        cmp_scaled("groupnorm mean vs CPU", s, gm, cm, (size_t)C, OC_TOL_NORM);
        cmp_scaled("groupnorm scale vs CPU", s, gs, cs, (size_t)C, OC_TOL_NORM);
        float *got = nans(n), *cpu = nans(n);
        for (int silu = 0; silu < 2; silu++) {
            emu_groupnorm_apply(got, x, gm, gs, b, C, HW, silu);
            if (silu)
                latup_groupnorm_silu_forward(cpu, x, w, b, C, (int)HW, G, 1e-6f);
            else
                latup_groupnorm_forward(cpu, x, w, b, C, (int)HW, G, 1e-6f);
            cmp_scaled(silu ? "groupnorm+SiLU vs CPU" : "groupnorm vs CPU", s, got, cpu, n, OC_TOL_NORM);
        }
        free(x), free(w), free(b), free(gm), free(gs), free(cm), free(cs), free(got), free(cpu);
    }
    assert_int_equal(tu_n_failed - before, 0);
}

/* One conv case: emulated GPU conv (bands from cap) vs CPU conv2d_forward_ex and a double twin. */
static void check_conv(tu_rng *rng, int cin, int H, int W, int cout, int k, int up, int norm, int silu, int acc,
                       int band_rows) {
    const int Hs = up ? H / 2 : H, Ws = up ? W / 2 : W;
    const size_t nin = (size_t)cin * Hs * Ws, nout = (size_t)cout * H * W, nw = (size_t)cout * cin * k * k;
    const int64_t cap = (int64_t)cin * k * k * W * band_rows;
    char s[160];
    snprintf(s, sizeof s, "Cin%d %dx%d Cout%d k%d%s%s%s%s cap %d rows", cin, H, W, cout, k, up ? " up2x" : "",
             norm ? " norm" : "", silu ? " silu" : "", acc ? " acc" : "", band_rows);
    float *x = randn(rng, nin, 0.3f, 1), *w = randn(rng, nw, 0, 1.0f / sqrtf((float)(cin * k * k)));
    float *b = randn(rng, (size_t)cout, 0, 0.5f), *mu = randn(rng, (size_t)cin, 0.3f, 0.5f);
    float *sc = randn(rng, (size_t)cin, 1, 0.2f), *nb = randn(rng, (size_t)cin, 0, 0.5f), *out0 = randn(rng, nout, 0, 1);
    float *got = nans(nout), *cpu = nans(nout);
    if (acc) memcpy(got, out0, nout * sizeof(float)), memcpy(cpu, out0, nout * sizeof(float));
    const lcu_conv_in op = {up, norm ? mu : NULL, sc, nb, silu};
    emu_conv(got, x, w, b, cin, cout, k, H, W, op, acc, cap);
    conv_input_op cop = {.upsample2x = up, .norm = norm, .norm_mean = mu, .norm_scale = sc, .norm_bias = nb,
                         .silu = silu, .accumulate = acc};
    const conv_ctx ctx = {.nthreads = 1, .name = "host harness conv"};
    const size_t ncol = latup_conv2d_scratch_floats(cin, H, W, cout, k, &cop, &ctx);
    float *col = tu_xmalloc(ncol * sizeof(float) + 64);
    assert_int_equal(latup_conv2d_forward(cpu, x, w, b, cin, H, W, cout, k, &cop, col, ncol, &ctx), LATUP_OK);
    double *naive = tu_xmalloc(nout * sizeof(double));
    naive_conv(naive, x, w, b, cin, cout, k, H, W, op);
    if (acc)
        for (size_t i = 0; i < nout; i++) naive[i] += out0[i];
    cmp_scaled("conv vs CPU conv2d_forward_ex", s, got, cpu, nout, OC_TOL_PRODUCT);
    cmp_scaled_d("conv vs naive", s, got, naive, nout, OC_TOL_PRODUCT);
    free(x), free(w), free(b), free(mu), free(sc), free(nb), free(out0), free(got), free(cpu), free(col), free(naive);
}

static void test_conv(void **state) {
    (void)state;
    int before = tu_n_failed;
    tu_rng rng = tu_rng_seed(106);
    OC_EACH(i, OC_CONV, OC_HOST) {
        const oc_conv *c = &OC_CONV[i];
        check_conv(&rng, c->Cin, c->H, c->W, c->Cout, c->k, c->up, c->norm, c->silu, c->acc, c->rows);
    }
    assert_int_equal(tu_n_failed - before, 0);
}

static void test_linear(void **state) {
    (void)state;
    int before = tu_n_failed;
    tu_rng rng = tu_rng_seed(107);
    OC_EACH(c, OC_LINEAR, OC_HOST) {
        const int N = OC_LINEAR[c].N, in = OC_LINEAR[c].Cin, out = OC_LINEAR[c].Cout;
        float *x = randn(&rng, (size_t)N * in, 0, 1), *w = randn(&rng, (size_t)out * in, 0, 1.0f / sqrtf((float)in));
        float *b = randn(&rng, (size_t)out, 0, 0.1f), *got = nans((size_t)N * out), *cpu = nans((size_t)N * out);
        emu_linear(got, x, w, b, N, in, out);
        latup_linear_forward(cpu, x, w, b, N, in, out);
        cmp_scaled("linear vs CPU", tu_shape("N%d %d -> %d", N, in, out), got, cpu, (size_t)N * out, OC_TOL_PRODUCT);
        free(x), free(w), free(b), free(got), free(cpu);
    }
    assert_int_equal(tu_n_failed - before, 0);
}

/* Swin attention: products with the GPU's layouts, the warp softmax with the gathered bias and
 * mask, windows per product from the capacity; vs CPU window_attention_forward and a double twin */
static void test_window_attention(void **state) {
    (void)state;
    int before = tu_n_failed;
    tu_rng rng = tu_rng_seed(108);
    OC_EACH(c, OC_WINDOW_ATTENTION, OC_HOST) {
        const oc_window_attention *t = &OC_WINDOW_ATTENTION[c];
        const int Hp = t->H, Wp = t->W, ws = t->ws, sh = t->shift, nH = t->nH;
        const int hd = t->hd, per = t->per, N = ws * ws, nW = (Hp / ws) * (Wp / ws), C = nH * hd;
        const size_t nq = (size_t)nW * N * 3 * C, no = (size_t)nW * N * C, nt = (size_t)(2 * ws - 1) * (2 * ws - 1) * nH;
        char s[128];
        snprintf(s, sizeof s, "%dx%d ws%d shift%d nH%d hd%d, %d windows/product (nW %d)", Hp, Wp, ws, sh, nH, hd, per, nW);
        float *qkv = randn(&rng, nq, 0, 1), *table = randn(&rng, nt, 0, 1), *got = nans(no), *cpu = nans(no);
        float *bias = nans((size_t)nH * N * N), *mask = nans((size_t)nW * N * N), *scr = nans((size_t)N * N * 2);
        emu_window_attention(got, qkv, table, nW, ws, nH, hd, sh, Hp, Wp, (int64_t)per * N * N);
        latup_relative_bias_gather(bias, table, ws, nH);
        latup_shift_mask_build(mask, Hp, Wp, ws, sh);
        assert_int_equal(latup_window_attention_forward(cpu, qkv, bias, sh ? mask : NULL, nW, N, nH, hd,
                                                        1.0f / sqrtf((float)hd), scr, (size_t)N * N * 2, 1),
                         LATUP_OK);
        double *naive = tu_xmalloc(no * sizeof(double));
        naive_window_attention(naive, qkv, table, Hp, Wp, ws, nH, hd, sh);
        cmp_scaled("window attention vs CPU", s, got, cpu, no, OC_TOL_ATTENTION);
        cmp_scaled_d("window attention vs naive", s, got, naive, no, OC_TOL_ATTENTION);
        free(qkv), free(table), free(got), free(cpu), free(bias), free(mask), free(scr), free(naive);
    }
    assert_int_equal(tu_n_failed - before, 0);
}

/* the VAE's attention over all positions, channel-major, query rows per block from the capacity,
 * vs CPU attention_blocked_forward (token-major) and a double twin */
static void test_full_attention(void **state) {
    (void)state;
    int before = tu_n_failed;
    tu_rng rng = tu_rng_seed(109);
    OC_EACH(c, OC_ATTENTION, OC_HOST) {
        const int C = OC_ATTENTION[c].C, N = OC_ATTENTION[c].N, bq = OC_ATTENTION[c].bq;
        const size_t n = (size_t)C * N;
        char s[96];
        snprintf(s, sizeof s, "C%d N%d, %d query rows/block", C, N, bq);
        float *q = randn(&rng, n, 0, 1), *k = randn(&rng, n, 0, 1), *v = randn(&rng, n, 0, 1), *got = nans(n);
        emu_attention_cn(got, q, k, v, C, N, (int64_t)bq * N);
        /* CPU: token-major [N, C] */
        float *qt = nans(n), *kt = nans(n), *vt = nans(n), *ot = nans(n), *cpu = nans(n);
        latup_chw_to_hwc(qt, q, C, N), latup_chw_to_hwc(kt, k, C, N), latup_chw_to_hwc(vt, v, C, N);
        const size_t nscr = latup_attention_blocked_scratch_floats(N, C, 16, 16, 1);
        float *scr = nans(nscr);
        assert_int_equal(latup_attention_blocked_forward(ot, qt, kt, vt, N, C, 1.0f / sqrtf((float)C), 16, 16, scr,
                                                         nscr, 1),
                         LATUP_OK);
        latup_hwc_to_chw(cpu, ot, C, N);
        double *naive = tu_xmalloc(n * sizeof(double)), *p = tu_xmalloc((size_t)N * sizeof(double));
        for (int i = 0; i < N; i++) {
            double m = -INFINITY, sum = 0;
            for (int j = 0; j < N; j++) {
                double d = 0;
                for (int ch = 0; ch < C; ch++) d += (double)q[(size_t)ch * N + i] * k[(size_t)ch * N + j];
                p[j] = d / sqrt((double)C), m = fmax(m, p[j]);
            }
            for (int j = 0; j < N; j++) sum += (p[j] = exp(p[j] - m));
            for (int ch = 0; ch < C; ch++) {
                double acc = 0;
                for (int j = 0; j < N; j++) acc += p[j] / sum * v[(size_t)ch * N + j];
                naive[(size_t)ch * N + i] = acc;
            }
        }
        cmp_scaled("full attention vs CPU", s, got, cpu, n, OC_TOL_ATTENTION);
        cmp_scaled_d("full attention vs naive", s, got, naive, n, OC_TOL_ATTENTION);
        free(q), free(k), free(v), free(got), free(qt), free(kt), free(vt), free(ot), free(cpu), free(scr), free(naive), free(p);
    }
    assert_int_equal(tu_n_failed - before, 0);
}

/* Tiled decoding's layout and blend: tiles cover the latent, the last flush with the edge, and the
 * ramp-weighted blend (lcu_blend_pixel, one thread per tile pixel) equals the CPU's formula. */
static void test_tiles(void **state) {
    (void)state;
    int before = tu_n_failed;
    tu_rng rng = tu_rng_seed(110);
    const int f = 8, Co = 3;
    OC_EACH(c, OC_TILES, OC_HOST) {
        const int h = OC_TILES[c].h, w = OC_TILES[c].w, T = OC_TILES[c].T, ov = OC_TILES[c].ov;
        const int th = T < h ? T : h, tw = T < w ? T : w, H = h * f, W = w * f, step = T - ov;
        const int nty = latup_tile_count(h, T, ov), ntx = latup_tile_count(w, T, ov);
        /* the CPU's count and origins (decode_tiled) */
        const int cty = h <= T ? 1 : (h - ov + step - 1) / step, ctx = w <= T ? 1 : (w - ov + step - 1) / step;
        bool layout = nty == cty && ntx == ctx;
        const size_t n = (size_t)Co * H * W;
        float *got = calloc(n, sizeof(float)), *gw = calloc((size_t)H * W, sizeof(float));
        double *ref = calloc(n, sizeof(double)), *rw = calloc((size_t)H * W, sizeof(double));
        for (int ty = 0; ty < nty; ty++)
            for (int tx = 0; tx < ntx; tx++) {
                const int y0 = latup_tile_origin(ty, h, T, ov), x0 = latup_tile_origin(tx, w, T, ov);
                int cy = ty * step, cx = tx * step;
                if (cy + th > h) cy = h - th;
                if (cx + tw > w) cx = w - tw;
                layout = layout && y0 == cy && x0 == cx && y0 >= 0 && x0 >= 0;
                const int oh = th * f, ow = tw * f, ot = ty > 0 ? ov * f : 0, ob = ty < nty - 1 ? ov * f : 0;
                const int ol = tx > 0 ? ov * f : 0, orr = tx < ntx - 1 ? ov * f : 0;
                float *tile = randn(&rng, (size_t)Co * oh * ow, 0, 1);
                emu_blend_tile(got, gw, tile, Co, oh, ow, H, W, y0 * f, x0 * f, ot, ob, ol, orr);
                for (int y = 0; y < oh; y++)
                    for (int x = 0; x < ow; x++) {
                        double wy = 1, wx = 1;
                        if (ot > 0 && y < ot) wy = fmin(wy, (y + 0.5) / ot);
                        if (ob > 0 && y >= oh - ob) wy = fmin(wy, (oh - y - 0.5) / ob);
                        if (ol > 0 && x < ol) wx = fmin(wx, (x + 0.5) / ol);
                        if (orr > 0 && x >= ow - orr) wx = fmin(wx, (ow - x - 0.5) / orr);
                        const size_t o = (size_t)(cy * f + y) * W + cx * f + x;
                        rw[o] += wy * wx;
                        for (int ch = 0; ch < Co; ch++) ref[(size_t)ch * H * W + o] += wy * wx * tile[((size_t)ch * oh + y) * ow + x];
                    }
                free(tile);
            }
        bool covered = true;
        for (size_t i = 0; i < (size_t)H * W; i++) covered = covered && gw[i] > 0;
        emu_blend_finish(got, gw, Co, (int64_t)H * W);
        for (size_t i = 0; i < n; i++) ref[i] /= rw[i % ((size_t)H * W)];
        char s[96];
        snprintf(s, sizeof s, "latent %dx%d, tiles of %d overlap %d: %dx%d tiles", h, w, T, ov, nty, ntx);
        tu_check_true("tile layout vs CPU", tu_shape("%s: counts, origins, all pixels weighted", s), layout && covered);
        cmp_scaled_d("tile blend vs naive", s, got, ref, n, OC_TOL_NORM);
        free(got), free(gw), free(ref), free(rw);
    }
    assert_int_equal(tu_n_failed - before, 0);
}

/* ---- the arena with other memory operations, as the GPU uses it ------------------------------------
 * The CUDA path runs src/ops/arena.c's arena with device operations and guards decided at run time
 * (LATUP_CUDA_CHECK=1); here the same over host memory through counting operations, guards on. */
static int n_allocs, n_frees, n_fills, n_reads;
static float *ops_alloc(size_t floats, const char *what) {
    (void)what;
    n_allocs++;
    return tu_xmalloc(floats * sizeof(float));
}
static void ops_free(float *base) { n_frees++, free(base); }
static int ops_fill(float *x, size_t n, uint32_t bits) {
    n_fills++;
    for (size_t i = 0; i < n; i++) memcpy(&x[i], &bits, sizeof bits);
    return 0;
}
static int ops_intact(const float *x, size_t n, uint32_t bits) {
    n_reads++;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&x[i], &bits, sizeof bits) != 0) return 0;
    return 1;
}
static const latup_arena_ops OPS = {ops_alloc, ops_free, ops_fill, ops_intact};

/* a pass shaped like a forward: long-lived takes, scoped scratch, two slots of varying use */
static void arena_pass(latup_arena *a, float **keep, int scale) {
    keep[0] = latup_arena_take(a, 100, "tokens");
    keep[1] = latup_arena_slot(a, 0, 50 * (size_t)scale, "act 0");
    size_t m = latup_arena_mark(a);
    keep[2] = latup_arena_take(a, 333, "band");
    latup_arena_release(a, m);
    keep[3] = latup_arena_slot(a, 1, 70, "act 1");
    keep[4] = latup_arena_slot(a, 0, 20, "act 0");
    keep[5] = latup_arena_take(a, 7, "small");
}

static void test_dev_arena(void **state) {
    (void)state;
    int before = tu_n_failed;
    latup_arena a;
    float *k1[6], *k2[6];
    latup_arena_begin_count_on(&a, &OPS, 1);
    arena_pass(&a, k1, 2);
    const size_t need = latup_arena_bytes(&a) / sizeof(float);
    /* each take rounded to 16 floats plus a 16-float guard: slots 100 and 70, the stack's peak
     * tokens 100 + band 333 */
    const size_t expect = (112 + 16) + (80 + 16) + (112 + 16) + (336 + 16);
    tu_check_true("device arena count", tu_shape("%zu floats counted, expected %zu", need, expect), need == expect);
    assert_int_equal(latup_arena_begin_run(&a, "test arena"), LATUP_OK);
    const float *mem = a.base;
    arena_pass(&a, k1, 2);
    latup_arena_rewind(&a);
    arena_pass(&a, k2, 2);
    bool same = true, inside = true;
    for (int i = 0; i < 6; i++) same = same && k1[i] == k2[i], inside = inside && k1[i] >= mem && k1[i] < mem + need;
    tu_check_true("device arena replay", "a rewound pass carves the same buffers, inside the allocation",
                  same && inside && a.st == LATUP_OK && k1[1] == k1[4] && k1[2] != NULL && a.cap == need);
    tu_check_true("device arena guards", "intact after an in-bounds pass", latup_arena_check(&a) == LATUP_OK);
    tu_check_true("device arena ops", tu_shape("memory through the ops: %d alloc, %d fills, %d reads", n_allocs, n_fills,
                                            n_reads), n_allocs == 1 && n_fills > 0 && n_reads > 0);
    /* one float written past the end of "small" */
    k2[5][7] = 1.0f;
    tu_check_true("device arena guards", tu_shape("overrun detected and named: %s", latup_last_error()),
                  latup_arena_check(&a) == LATUP_E_INTERNAL && strstr(latup_last_error(), "'small'") != NULL);
    /* a pass that takes more than it counted: a named error, never memory outside */
    a.st = LATUP_OK;
    latup_arena_rewind(&a);
    float *big = latup_arena_take(&a, need, "too big");
    tu_check_true("device arena capacity", tu_shape("an uncounted take fails: %s", latup_last_error()),
                  big == NULL && a.st == LATUP_E_INTERNAL && strstr(latup_last_error(), "'too big'") != NULL);
    a.st = LATUP_OK;
    float *slot = latup_arena_slot(&a, 0, 101, "act 0");
    tu_check_true("device arena slot", tu_shape("a slot use beyond its counted size fails: %s", latup_last_error()),
                  slot == NULL && a.st == LATUP_E_INTERNAL);
    latup_arena_free(&a);
    tu_check_true("device arena ops", "freed through the ops", n_frees == 1 && a.base == NULL);
    /* guards off (LATUP_CUDA_CHECK unset): no guard floats counted, none written or read */
    n_fills = n_reads = 0;
    latup_arena_begin_count_on(&a, &OPS, 0);
    arena_pass(&a, k1, 2);
    const size_t bare = latup_arena_bytes(&a) / sizeof(float);
    assert_int_equal(latup_arena_begin_run(&a, "test arena"), LATUP_OK);
    arena_pass(&a, k1, 2);
    tu_check_true("device arena unguarded", tu_shape("%zu floats, no guard written or read", bare),
                  bare == 112 + 80 + 112 + 336 && latup_arena_check(&a) == LATUP_OK && n_fills == 0 && n_reads == 0);
    latup_arena_free(&a);
    assert_int_equal(tu_n_failed - before, 0);
}

/* ---- negative controls: the comparisons above can fail --------------------------------------------- */
static void test_negative_controls(void **state) {
    (void)state;
    tu_rng rng = tu_rng_seed(111);
    const int H = 16, W = 24, C = 5, ws = 8, n = H * W * C;
    float *x = randn(&rng, (size_t)n, 0, 1), *got = nans((size_t)n), *cpu = nans((size_t)n);
    /* the shift of odd blocks taken as ws/2 - 1: a plausible index bug */
    emu_window_partition(got, x, H, W, C, ws, ws / 2 - 1);
    latup_window_partition(cpu, x, H, W, C, ws, ws / 2);
    const int checks = tu_n_checks, failed = tu_n_failed;
    printf("negative control (expected NOT OK):\n");
    bool caught = !tu_check_exact("window partition, shift off by one", "16x24 C5 ws8", got, cpu, (size_t)n);
    /* a conv band one row short of the capacity it reports */
    float *w = randn(&rng, 4 * 3 * 9, 0, 0.3f), *xin = randn(&rng, 3 * 5 * 7, 0, 1), *o = nans(4 * 35), *oc = nans(4 * 35);
    float *col = tu_xmalloc(3 * 9 * 7 * 5 * sizeof(float));
    const lcu_conv_in none = {0, NULL, NULL, NULL, 0};
    emu_conv(o, xin, w, NULL, 3, 4, 3, 5, 7, none, 0, 3 * 9 * 7 * 2);
    for (int i = 0; i < 4 * 35; i++) o[i] = i % 35 >= 28 ? 0.0f : o[i]; /* the last row never written */
    const conv_ctx cc = {.nthreads = 1, .band_rows_max = 5, .name = "negative control"};
    latup_conv2d_forward(oc, xin, w, NULL, 3, 5, 7, 4, 3, NULL, col, 3 * 9 * 7 * 5, &cc);
    caught = caught && !cmp_scaled("conv, last row missing", "Cin3 5x7 Cout4", o, oc, 4 * 35, 1e-6);
    tu_n_checks = checks, tu_n_failed = failed; /* expected failures do not count */
    tu_check_true("negative controls", "both planted bugs were reported NOT OK", caught);
    free(x), free(got), free(cpu), free(w), free(xin), free(o), free(oc), free(col);
    assert_true(caught);
}

/* ---- LATUP_DEVICE_CUDA where no GPU can run ---------------------------------------------------------- */
static void test_device_request(void **state) {
    (void)state;
    latup_lua *m = NULL;
    latup_vae *v = NULL;
    assert_int_equal(latup_lua_load("ref_data/tiny/model.safetensors.gz", &m), LATUP_OK);
    assert_int_equal(latup_vae_load("ref_data/vae/flux_small.ldm.safetensors.gz", &v), LATUP_OK);
    latup_tensor x, z, y, img;
    const int64_t xs[3] = {latup_lua_get_config(m)->in_chans, 16, 16}, zs[3] = {latup_vae_get_config(v)->z_channels, 8, 8};
    const int f = 1 << (latup_vae_get_config(v)->n_levels - 1);
    assert_int_equal(latup_tensor_alloc(&x, 3, xs), LATUP_OK);
    assert_int_equal(latup_tensor_alloc(&z, 3, zs), LATUP_OK);
    latup_run_opts ro = {.device = LATUP_DEVICE_CUDA};
    latup_decode_opts dopt = {.device = LATUP_DEVICE_CUDA};
    latup_status su = latup_lua_upscale(m, &x, 2, &y, &ro);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", latup_last_error());
    latup_status sd = latup_vae_decode(v, &z, &img, &dopt);
#ifdef LATUP_CUDA
    const char *want = "no CUDA device";
#else
    const char *want = "built without CUDA (make CUDA=1)";
#endif
    if (su == LATUP_OK && sd == LATUP_OK) {
        /* a CUDA build on a GPU machine: the GPU test (test_cuda) covers the device; here only
         * that the request ran and made the output it promised */
        tu_check_true("device request", "a CUDA device is present: upscale and decode ran on it",
                      y.data != NULL && img.data != NULL && y.shape[1] == 32 && img.shape[1] == 8 * f);
        latup_tensor_free(&y), latup_tensor_free(&img);
    } else {
        tu_check_true("device request", tu_shape("upscale: status %d (6 expected), '%s'", su, msg),
                      su == LATUP_E_DEVICE && strstr(msg, want) != NULL && y.data == NULL);
        tu_check_true("device request", tu_shape("decode: status %d (6 expected), '%s'", sd, latup_last_error()),
                      sd == LATUP_E_DEVICE && strstr(latup_last_error(), want) != NULL && img.data == NULL);
    }
    /* the default device is the CPU */
    latup_run_opts cpu = {0};
    assert_int_equal(latup_lua_upscale(m, &x, 2, &y, &cpu), LATUP_OK);
    latup_tensor_free(&y);
    latup_tensor_free(&x), latup_tensor_free(&z);
    latup_lua_free(m), latup_vae_free(v);
    assert_int_equal(tu_n_failed, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid),          cmocka_unit_test(test_layout_maps),
        cmocka_unit_test(test_windows),       cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_activations),   cmocka_unit_test(test_groupnorm),
        cmocka_unit_test(test_conv),          cmocka_unit_test(test_linear),
        cmocka_unit_test(test_window_attention), cmocka_unit_test(test_full_attention),
        cmocka_unit_test(test_tiles),         cmocka_unit_test(test_dev_arena),
        cmocka_unit_test(test_negative_controls), cmocka_unit_test(test_device_request),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    printf("cuda host harness: %d comparisons, %d NOT OK\n", tu_n_checks, tu_n_failed);
    return rc || tu_n_failed;
}
