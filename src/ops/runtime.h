/* runtime.h — what the ops share, below them all (src/ops/runtime.c): the one sgemm every product
 * goes through, and the math mode. The thread count and the math mode are set through latup.h
 * (latup_set_threads, latup_set_exact_math); conv.c and kernels.c read them here, so neither
 * calls into the other. */
#ifndef LATUP_RUNTIME_H
#define LATUP_RUNTIME_H

/* One single-threaded sgemm on row-major operands: C[M,N] = alpha A[M,K] op(B) + beta C, op(B) =
 * B [K,N] (ldb) or, with trans_b, B^T for B [N,K]. Every product in the kernels goes through it:
 * OpenBLAS stays at one thread for the call wherever it is called from. */
void latup_sgemm1(int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);

/* 1 when latup_set_exact_math(1) asked for libm's expf/erff and the direct convolution. */
int latup_exact_math(void);

#endif
