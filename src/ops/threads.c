/* threads.c — one owner of threads: OpenMP runs latup's loops over fixed tiles, and OpenBLAS is
 * asked for one thread, so every sgemm is one tile computed by one thread (the bits do not depend
 * on the thread count, and BLAS threads never fight ours). OpenBLAS's OpenMP build forgets that
 * request outside active parallel regions; latup_sgemm1() (conv.c) is what holds it there. */
#include "common.h"

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

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
