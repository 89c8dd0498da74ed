/* gemm_desc.h — the operand layout of every matrix product of the CUDA path, one function per
 * product. cuBLAS is column-major: a row-major [r, c] matrix is its column-major transpose, so a
 * row-major C = A B is issued as C^T = B^T A^T with the operands swapped. These descriptions are
 * what gpu_ops.c hands to cublasSgemm(StridedBatched), and what tests/test_cuda_host.c hands to a
 * column-major cblas_sgemm on the host, so the harness checks the very transposes, leading
 * dimensions and batch strides the GPU uses. Plain C / C++, header-only. */
#ifndef LATUP_CUDA_GEMM_DESC_H
#define LATUP_CUDA_GEMM_DESC_H

/* C[m, n] = alpha op(A)[m, k] op(B)[k, n] + beta C, column-major, for each of `batch` products at
 * strides sa, sb, sc (in floats). ta, tb: 1 = transposed. Which buffers are A, B and C is said
 * beside each function. */
typedef struct {
    int ta, tb;
    int m, n, k;
    int lda, ldb, ldc;
    long long sa, sb, sc;
    int batch;
    float alpha, beta;
} lcu_gemm;

static inline lcu_gemm lcu_gemm_make(int ta, int tb, int m, int n, int k, int lda, int ldb, int ldc, float alpha,
                                     float beta) {
    lcu_gemm g = {ta, tb, m, n, k, lda, ldb, ldc, 0, 0, 0, 1, alpha, beta};
    return g;
}

/* Linear: out[N, out] += inp[N, in] W[out, in]^T (out preset to the bias).
 * A = W, B = inp, C = out: out^T [out, N] = W (stored [in, out] column-major, so op T) x inp^T. */
static inline lcu_gemm lcu_gemm_linear(int N, int in, int out) {
    return lcu_gemm_make(1, 0, out, N, in, in, in, out, 1.0f, 1.0f);
}

/* 1x1 conv: out[cout, HW] += W[cout, cin] inp[cin, HW].
 * A = inp, B = W, C = out: out^T [HW, cout] = inp^T [HW, cin] x W^T [cin, cout]. */
static inline lcu_gemm lcu_gemm_conv1x1(int HW, int cin, int cout) {
    return lcu_gemm_make(0, 0, HW, cout, cin, HW, cin, HW, 1.0f, 1.0f);
}

/* One im2col band of a k x k conv: out[cout, y0*W : y0*W + n] (row stride HW) += W[cout, K]
 * col[K, n]. A = col, B = W, C = out + y0*W: out^T [n, cout] = col^T [n, K] x W^T [K, cout]. */
static inline lcu_gemm lcu_gemm_conv_band(int n, int K, int cout, int HW) {
    return lcu_gemm_make(0, 0, n, cout, K, n, K, HW, 1.0f, 1.0f);
}

/* Window attention scores, head h, windows w0 .. w0+wc: S_w[a, b] = scale q_w[a, :] . k_w[b, :],
 * q, k rows of stride ld = 3C inside qkv [nW, N, 3C] (window stride N*ld).
 * A = k (+ h*hd), B = q (+ h*hd), C = S [wc, N, N]: S_w^T [b, a] = K_w [b, d] x Q_w^T [d, a]. */
static inline lcu_gemm lcu_gemm_window_scores(int N, int hd, int ld, int wc, float scale) {
    lcu_gemm g = lcu_gemm_make(1, 0, N, N, hd, ld, ld, N, scale, 0.0f);
    g.sa = g.sb = (long long)N * ld, g.sc = (long long)N * N, g.batch = wc;
    return g;
}

/* Window attention output of head h: out_w[a, h*hd + d] = sum_b P_w[a, b] v_w[b, d].
 * A = v (+ h*hd), B = S, C = out (+ w0*N*C + h*hd): out_w^T [d, a] = V_w^T [d, b] x P_w^T [b, a]. */
static inline lcu_gemm lcu_gemm_window_pv(int N, int hd, int ld, int C, int wc) {
    lcu_gemm g = lcu_gemm_make(0, 0, hd, N, N, ld, N, C, 1.0f, 0.0f);
    g.sa = (long long)N * ld, g.sb = (long long)N * N, g.sc = (long long)N * C, g.batch = wc;
    return g;
}

/* Full attention scores of query rows i0 .. i0+rows, q and k stored [C, N] (channel-major):
 * S[i, j] = scale sum_c q[c, i0+i] k[c, j]. A = k, B = q + i0, C = S [rows, N]:
 * S^T [j, i] = K^T [j, c] (stored [N, C] column-major) x Q [c, i] (stored [rows, C]: op T). */
static inline lcu_gemm lcu_gemm_full_scores(int N, int rows, int C, float scale) {
    return lcu_gemm_make(0, 1, N, rows, C, N, N, N, scale, 0.0f);
}

/* Full attention output: out[c, i0+i] = sum_j P[i, j] v[c, j]. A = S, B = v, C = out + i0:
 * out^T [i, c] (column-major, ld N) = P [i, j] (stored [N, rows]: op T) x V^T [j, c]. */
static inline lcu_gemm lcu_gemm_full_pv(int N, int rows, int C) {
    return lcu_gemm_make(1, 0, rows, C, N, N, N, N, 1.0f, 0.0f);
}

#endif
