/* blas_kernels.c — the test runner's probe of OpenBLAS kernel sets (tests/kernel_sets.sh):
 *   blas_kernels --core   the kernel set OpenBLAS runs in this process (openblas_get_corename(),
 *                         which honours OPENBLAS_CORETYPE in the environment)
 *   blas_kernels --sets   the x86 kernel sets the suite checks that this CPU can run, one a line,
 *                         narrowest first: Haswell (AVX2 + FMA), SkylakeX (AVX-512 F/CD/BW/DQ/VL),
 *                         Cooperlake (SkylakeX + AVX-512 BF16)
 * Not a test itself; built by `make test`. */
#include <stdio.h>
#include <string.h>

#include <cblas.h>

static void sets(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
                       __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                       __builtin_cpu_supports("avx512vl");
    if (avx2) puts("Haswell");
    if (avx512) puts("SkylakeX");
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
