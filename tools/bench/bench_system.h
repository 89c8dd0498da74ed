/* bench_system.h — what every benchmark prints first: the OpenBLAS build, the kernel set it runs
 * and the CPU's ISA, with a warning when the kernels are narrower than the CPU allows, so that a
 * timing is never read apart from the kernels it was taken on (a forced OPENBLAS_CORETYPE=Haswell
 * on an AVX-512 CPU costs a third). Call it after the thread count is set. */
#ifndef LATUP_BENCH_SYSTEM_H
#define LATUP_BENCH_SYSTEM_H

#include <stdio.h>

#include "latup.h"

static inline void bench_print_system(void) {
    latup_system_info s;
    if (latup_system_info_get(&s) != LATUP_OK) return;
    printf("%s; CPU %s\n", s.blas_config, s.cpu_name);
    latup_system_info_print(&s, stdout, "");
}

#endif
