/* runtime.c — the state the ops share, in one place below conv.c and kernels.c: the thread counts
 * (OpenMP runs latup's loops over fixed tiles, and OpenBLAS is asked for one thread, so every
 * sgemm is one tile computed by one thread: the bits do not depend on the thread count, and BLAS
 * threads never fight ours), the one sgemm every product goes through (latup_sgemm1, which holds
 * OpenBLAS at one thread where its OpenMP build would forget the request: outside active parallel
 * regions), and the math mode (latup_set_exact_math). */
#include "ops/runtime.h"

#include "common.h"

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- threads --------------------------------------------------------------------------------- */

/* OpenBLAS's OpenMP build sets OpenMP's thread count too when told its own: keep ours. */
static void blas_single_thread(void) {
    if (openblas_get_num_threads() == 1) return;
#ifdef _OPENMP
    const int n = omp_get_max_threads();
    openblas_set_num_threads(1);
    omp_set_num_threads(n);
#else
    openblas_set_num_threads(1);
#endif
}

void latup_set_threads(int n) {
#ifdef _OPENMP
    if (n <= 0) n = omp_get_num_procs();
    blas_single_thread();
    omp_set_num_threads(n);
#else
    (void)n;
    blas_single_thread();
#endif
}

int latup_get_threads(void) {
    blas_single_thread();
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ---- the one sgemm ------------------------------------------------------------------------------ */

/* One thread, wherever it is called from. OpenBLAS's OpenMP build sizes each call's team from
 * omp_get_max_threads() whenever the caller is not in an active parallel region (num_cpu_avail()
 * in its common_thread.h, 0.3.x): openblas_set_num_threads(1) is undone by the next call. So a
 * product called from serial code, or from a region of one worker (one band, one query block),
 * was split over the OpenMP thread count, and a split changes which micro-kernel (full tile or
 * edge) computes an element; OpenBLAS's Haswell kernels then give other bits (143x512x143: 3601
 * of 73216 values differ between 1 and 2 threads). Outside an active region the calling task's
 * thread count is set to 1 for the call: the ICV is per task, so no other thread sees it. */
void latup_sgemm1(int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
#ifdef _OPENMP
    const int team = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (team > 1) omp_set_num_threads(1);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (team > 1) omp_set_num_threads(team);
#else
    cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

/* ---- the math mode: fast (vectorised exp/erf, Winograd convs) unless exact is asked for -------- */

static int g_exact_math;
void latup_set_exact_math(int on) { g_exact_math = on != 0; }
int latup_exact_math(void) { return g_exact_math; }
