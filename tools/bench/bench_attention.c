/* bench_attention.c — times the VAE mid-block attention, out = softmax(scale q k^T) v over all N
 * tokens, two ways: attention_blocked_forward (streaming softmax, bq x bk score blocks) and the
 * plain form (the whole N x N score matrix, softmax_rows, one more sgemm), and prints the median
 * time, GFLOP/s (4 N^2 C flops), the memory each needs and their max difference.
 *
 *   bench_attention [--n 4096] [--c 512] [--threads 2] [--bq 64] [--bk 256] [--runs 3] [--sweep]
 *
 * --sweep also times a grid of (bq, bk). Build (from the repository root):
 *   cc -std=c11 -O2 -march=native -fopenmp -Isrc $(pkg-config --cflags openblas) \
 *      tools/bench/bench_attention.c src/ops/kernels.c -o build/bench_attention $(pkg-config --libs openblas) -lm */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "ops/kernels.h"
#include "bench_system.h"

static unsigned long long rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * 0x1.0p-53) * 2.0f - 1.0f;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* The plain form: S [N,N] = scale q k^T; softmax per row; out = S v. BLAS threads itself here
 * (outside any parallel region), softmax_rows uses OpenMP. */
static void attention_plain(float *out, float *S, const float *q, const float *k, const float *v,
                            int N, int C, float scale) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, C, scale, q, C, k, C, 0.0f, S, N);
    latup_softmax_rows(S, N, N);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, N, 1.0f, S, N, v, C, 0.0f, out, C);
}

static double time_blocked(float *out, const float *q, const float *k, const float *v, int N, int C,
                           float scale, int bq, int bk, int threads, int runs) {
    const size_t nscratch = latup_attention_blocked_scratch_floats(N, C, bq, bk, threads);
    float *scratch = malloc(nscratch * sizeof(float));
    double t[64];
    latup_attention_blocked_forward(out, q, k, v, N, C, scale, bq, bk, scratch, nscratch, threads); /* warm-up */
    for (int r = 0; r < runs; r++) {
        double t0 = omp_get_wtime();
        latup_attention_blocked_forward(out, q, k, v, N, C, scale, bq, bk, scratch, nscratch, threads);
        t[r] = omp_get_wtime() - t0;
    }
    free(scratch);
    return median(t, runs);
}

int main(int argc, char **argv) {
    int N = 4096, C = 512, threads = 2, bq = 64, bk = 256, runs = 3, sweep = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--n") && has) N = atoi(argv[++i]);
        else if (!strcmp(a, "--c") && has) C = atoi(argv[++i]);
        else if (!strcmp(a, "--threads") && has) threads = atoi(argv[++i]);
        else if (!strcmp(a, "--bq") && has) bq = atoi(argv[++i]);
        else if (!strcmp(a, "--bk") && has) bk = atoi(argv[++i]);
        else if (!strcmp(a, "--runs") && has) runs = atoi(argv[++i]);
        else if (!strcmp(a, "--sweep")) sweep = 1;
        else {
            fprintf(stderr, "usage: %s [--n 4096] [--c 512] [--threads 2] [--bq 64] [--bk 256] "
                            "[--runs 3] [--sweep]\n", argv[0]);
            return 2;
        }
    }
    if (N < 1 || C < 1 || threads < 1 || runs < 1 || runs > 64) {
        fprintf(stderr, "bench_attention: need n, c, threads >= 1 and 1 <= runs <= 64\n");
        return 2;
    }
    /* one owner of threads: OpenMP; the OpenMP build of OpenBLAS follows this too */
    omp_set_num_threads(threads);
    bench_print_system();
    const size_t NC = (size_t)N * C;
    const float scale = 1.0f / sqrtf((float)C);
    float *q = malloc(NC * sizeof(float)), *k = malloc(NC * sizeof(float)),
          *v = malloc(NC * sizeof(float)), *o1 = malloc(NC * sizeof(float)),
          *o2 = malloc(NC * sizeof(float)), *S = malloc((size_t)N * N * sizeof(float));
    if (!q || !k || !v || !o1 || !o2 || !S) {
        fprintf(stderr, "bench_attention: out of memory (N^2 = %zu floats)\n", (size_t)N * N);
        return 1;
    }
    /* unit-variance q, k (scores of a few units, like a trained model), v in [-1, 1) */
    for (size_t i = 0; i < NC; i++) q[i] = 1.7f * frand(), k[i] = 1.7f * frand(), v[i] = frand();
    const double gflop = 4.0 * N * (double)N * C * 1e-9;
    printf("attention N %d (%.0fx%.0f latent) C %d, %d thread(s), %.1f GFLOP, median of %d\n", N,
           sqrt(N), sqrt(N), C, threads, gflop, runs);

    double t[64];
    attention_plain(o2, S, q, k, v, N, C, scale); /* warm-up */
    for (int r = 0; r < runs; r++) {
        double t0 = omp_get_wtime();
        attention_plain(o2, S, q, k, v, N, C, scale);
        t[r] = omp_get_wtime() - t0;
    }
    double tp = median(t, runs);
    printf("  plain   (N x N scores, %7.1f MiB)       %8.3f s  %7.1f GFLOP/s\n",
           (double)N * N * 4 / 1048576.0, tp, gflop / tp);

    double tb = time_blocked(o1, q, k, v, N, C, scale, bq, bk, threads, runs);
    double maxdiff = 0;
    for (size_t i = 0; i < NC; i++) maxdiff = fmax(maxdiff, fabs((double)o1[i] - o2[i]));
    printf("  blocked bq %4d bk %4d (scratch %5.2f MiB) %8.3f s  %7.1f GFLOP/s  max|blocked-plain| %.2e\n",
           bq, bk, latup_attention_blocked_scratch_floats(N, C, bq, bk, threads) * 4 / 1048576.0, tb,
           gflop / tb, maxdiff);

    if (sweep) {
        static const int bqs[] = {16, 32, 64, 128, 256}, bks[] = {64, 128, 256, 512, 1024};
        for (size_t i = 0; i < sizeof bqs / sizeof bqs[0]; i++)
            for (size_t j = 0; j < sizeof bks / sizeof bks[0]; j++) {
                double ts = time_blocked(o1, q, k, v, N, C, scale, bqs[i], bks[j], threads, runs);
                printf("  sweep   bq %4d bk %4d (scratch %5.2f MiB) %8.3f s  %7.1f GFLOP/s\n", bqs[i],
                       bks[j],
                       latup_attention_blocked_scratch_floats(N, C, bqs[i], bks[j], threads) * 4 / 1048576.0,
                       ts, gflop / ts);
            }
    }
    free(q), free(k), free(v), free(o1), free(o2), free(S);
    return 0;
}
