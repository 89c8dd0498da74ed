/* bench_gemm.c — the sgemm ceiling and the products LUA and the VAE are made of, each timed as
 * latup runs it (one single-threaded sgemm per tile, tiles spread over OpenMP threads), next to
 * a large square sgemm run the same way: how close each product comes to the machine's ceiling.
 *   build/bench_gemm [--threads N] [--seconds S]
 * The ceiling line is what tools/bench/bench_peers.sh reports as the sgemm ceiling. */
#define _POSIX_C_SOURCE 200809L
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "latup.h"
#include "ops/kernels.h"
#include "bench_system.h"

typedef struct {
    const char *what;
    int tb, M, N, K, lda, ldb;  /* one tile: C[M,N] = A[M,K] op(B) */
    int tiles;                  /* independent tiles per repetition (spread over threads) */
} shape;

/* GFLOP/s of `s`: tiles in parallel, each a single-threaded sgemm. */
static double run(const shape *s, double seconds, int threads) {
    const size_t na = (size_t)s->M * s->lda, nb = (size_t)(s->tb ? s->N : s->K) * s->ldb, nc = (size_t)s->M * s->N;
    float *A = malloc(na * sizeof(float) * threads), *B = malloc(nb * sizeof(float)), *C = malloc(nc * sizeof(float) * threads);
    for (size_t i = 0; i < na * threads; i++) A[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    for (size_t i = 0; i < nb; i++) B[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    const double flop = 2.0 * s->M * s->N * s->K * s->tiles;
    double best = 0;
    /* one untimed pass (first touch of the buffers, OpenBLAS's own set-up), then the best of three
     * windows of `seconds` each: the ceiling is what the machine can do, not its worst moment */
    for (int window = -1; window < 3; window++) {
        double t0 = latup_now(), t = 0;
        long reps = 0;
        do {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
            for (int i = 0; i < s->tiles; i++) {
                const int me = omp_get_thread_num();
                latup_sgemm1(s->tb, s->M, s->N, s->K, 1.0f, A + (size_t)me * na, s->lda, B, s->ldb, 0.0f,
                             C + (size_t)me * nc, s->N);
            }
            reps++;
            t = latup_now() - t0;
        } while (window >= 0 && t < seconds);
        if (window >= 0 && flop * reps / t * 1e-9 > best) best = flop * reps / t * 1e-9;
    }
    free(A), free(B), free(C);
    return best;
}

int main(int argc, char **argv) {
    int threads = 0;
    double seconds = 1.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
        else return fprintf(stderr, "usage: bench_gemm [--threads N] [--seconds S]\n"), 1;
    }
    latup_set_threads(threads);
    threads = latup_get_threads();
    bench_print_system();
    const shape shapes[] = {
        {"ceiling: 2048^3 in 2048x256 tiles", 0, 256, 2048, 2048, 2048, 2048, 8},
        {"LUA qkv Linear (256 tokens, 360 -> 1080)", 1, 256, 1080, 360, 360, 360, 16},
        {"LUA proj Linear (256 tokens, 360 -> 360)", 1, 256, 360, 360, 360, 360, 16},
        {"LUA fc1 Linear (256 tokens, 360 -> 720)", 1, 256, 720, 360, 360, 360, 16},
        {"LUA fc2 Linear (256 tokens, 720 -> 360)", 1, 256, 360, 720, 720, 720, 16},
        {"LUA window scores q k^T (256x256, hd 30)", 1, 256, 256, 30, 1080, 1080, 192},
        {"LUA window P v (256x30, K 256)", 0, 256, 30, 256, 256, 1080, 192},
        {"LUA 3x3 conv band (360 <- 3240, 1024 px)", 0, 360, 1024, 3240, 3240, 1024, 4},
        {"VAE 3x3 conv band (512 <- 4608, 2048 px)", 0, 512, 2048, 4608, 4608, 2048, 2},
        {"VAE 3x3 conv band (128 <- 1152, 2048 px)", 0, 128, 2048, 1152, 1152, 2048, 8},
    };
    printf("sgemm, %d threads, one single-threaded sgemm per tile (OpenBLAS at one thread)\n", threads);
    double ceil = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const double g = run(&shapes[i], seconds, threads);
        if (i == 0) ceil = g;
        printf("  %-44s %8.1f GFLOP/s  %5.1f%% of the ceiling\n", shapes[i].what, g, 100.0 * g / ceil);
    }
    return 0;
}
