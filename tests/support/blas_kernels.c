/* blas_kernels.c — the test runner's probe of OpenBLAS kernel sets (tests/support/kernel_sets.sh):
 *   blas_kernels --core   the kernel set OpenBLAS runs in this process (openblas_get_corename(),
 *                         which honours OPENBLAS_CORETYPE in the environment)
 *   blas_kernels --sets   the x86 kernel sets the suite checks that this CPU can run, one a line,
 *                         narrowest first: Haswell (AVX2 + FMA), SkylakeX (AVX-512 F/BW/DQ/VL),
 *                         Cooperlake (SkylakeX + AVX-512 BF16)
 * Not a test itself; built by `make test`, linked against liblatup.a. */
#include <stdio.h>
#include <string.h>

#include <cblas.h>

#include "api/system.h"
#include "latup.h"

/* The CPU's ISA is latup's own verdict (latup_system_info_get: CPUID and the state the OS enables);
 * Cooperlake's BF16 is the one extra the suite needs to know. */
static void sets(void) {
    latup_system_info s;
    if (latup_system_info_get(&s) != LATUP_OK) return;
    const int avx512 = !strcmp(s.cpu_isa, LATUP_ISA_AVX512);
    if (avx512 || !strcmp(s.cpu_isa, LATUP_ISA_AVX2)) puts("Haswell");
    if (avx512) puts("SkylakeX");
#if defined(__x86_64__) || defined(__i386__)
    if (avx512 && __builtin_cpu_supports("avx512bf16")) puts("Cooperlake");
#endif
}

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--core")) {
        puts(openblas_get_corename());
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "--sets")) {
        sets();
        return 0;
    }
    fprintf(stderr, "usage: blas_kernels --core | --sets\n");
    return 2;
}
