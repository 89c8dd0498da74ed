/* threads.c — one thread count for OpenMP (latup's loops) and OpenBLAS (sgemm). */
#include "common.h"

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

void latup_set_threads(int n) {
#ifdef _OPENMP
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
#endif
    if (n <= 0) n = 1;
    openblas_set_num_threads(n);
}

int latup_get_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
