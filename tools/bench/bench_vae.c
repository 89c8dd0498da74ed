/* bench_vae.c — the VAE decoder at the real widths (128/256/512/512, 3 resnets per level, FLUX
 * style: 16 latent channels, no post_quant_conv) with random weights: writes the weights once, then
 * times exact decodes (median of runs) next to the FLOP count and GFLOP/s. Build: make bench.
 *
 *   build/bench_vae --size 64 [--threads N] [--runs 3] [--tile T] [--exact] [--vae FILE]
 *                   [--serve]  (one timed run per line on stdin: tools/bench/bench_serve.h)
 *   build/bench_vae --write-weights FILE      (for /usr/bin/time -v latup decode --vae FILE ...)
 *   build/bench_vae --write-latent FILE --size 128
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "latup.h"

#include "bench_serve.h"
#include "io/weights.h"
#include "ops/fastmath.h"
#include "bench_system.h"
#include "weightgen.h"

/* the real-width case: its metadata holds the weight generator's seed, levels and checksums */
#define REAL_WIDTHS_GOLDEN "ref_data/vae/golden_real_widths.safetensors"

static const int CH[4] = {128, 256, 512, 512};
/* the input latent's values: uniform in [-1, 1) */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

/* 2 x multiply-adds of an h x w latent decode: convolutions and the mid attention. */
static double flops(int h, int w) {
    double f = 0, hw = (double)h * w;
    f += 2.0 * hw * 512 * 16 * 9;                               /* conv_in */
    f += 2 * (2.0 * hw * 512 * 512 * 9 * 2);                    /* mid resnets */
    f += 2.0 * hw * 512 * 512 * 4 + 2.0 * 2.0 * hw * hw * 512;  /* attention: q,k,v,proj + QK^T, PV */
    int cin = 512;
    for (int L = 3; L >= 0; L--) {
        for (int M = 0; M < 3; M++) {
            int co = CH[L];
            f += 2.0 * hw * co * cin * 9 + 2.0 * hw * co * co * 9;
            if (cin != co) f += 2.0 * hw * co * cin;
            cin = co;
        }
        if (L) hw *= 4, f += 2.0 * hw * cin * cin * 9;
    }
    f += 2.0 * hw * 3 * 128 * 9;
    return f;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static latup_tensor random_latent(int size) {
    latup_tensor z;
    int64_t s[3] = {16, size, size};
    latup_tensor_alloc(&z, 3, s);
    for (int64_t i = 0; i < latup_tensor_numel(&z); i++) z.data[i] = frand();
    return z;
}

typedef struct {
    const latup_vae *v;
    const latup_tensor *z;
    latup_decode_opts o;
} decode_job;

static latup_status decode_once(void *ctx) {
    const decode_job *j = ctx;
    latup_tensor img;
    const latup_status st = latup_vae_decode(j->v, j->z, &img, &j->o);
    if (st == LATUP_OK) latup_tensor_free(&img);
    return st;
}

int main(int argc, char **argv) {
    int size = 64, threads = 0, runs = 3, tile = 0, serve = 0;
    const char *write_w = NULL, *write_z = NULL, *vae_path = NULL;
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--exact")) { /* the plain reference arithmetic (libm, direct convs) */
            latup_set_exact_math(1);
            i--;
            continue;
        }
        if (!strcmp(argv[i], "--serve")) {
            serve = 1;
            i--;
            continue;
        }
        if (i + 1 >= argc) return fprintf(stderr, "bench_vae: %s needs a value\n", argv[i]), 1;
        if (!strcmp(argv[i], "--size")) size = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tile")) tile = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--write-weights")) write_w = argv[i + 1];
        else if (!strcmp(argv[i], "--vae")) vae_path = argv[i + 1];
        else if (!strcmp(argv[i], "--write-latent")) write_z = argv[i + 1];
        else {
            fprintf(stderr, "usage: bench_vae [--size N] [--threads N] [--runs N] [--tile T] [--exact] [--vae FILE] [--write-weights F] [--write-latent F] [--serve]\n");
            return 1;
        }
    }
    if (runs < 1 || runs > 100) runs = 3;
    if (write_z) {
        latup_tensor z = random_latent(size);
        if (latup_npy_write(write_z, &z) != LATUP_OK) return fprintf(stderr, "%s\n", latup_last_error()), 1;
        printf("wrote %s: [16,%d,%d]\n", write_z, size, size);
        latup_tensor_free(&z);
        return 0;
    }
    char tmpl[] = "/tmp/latup_bench_vae_XXXXXX";
    const char *path = vae_path ? vae_path : write_w;
    if (!vae_path) {
        /* the real-width VAE of the tests (tests/support/weightgen.h), from the generator spec in
         * its golden file: run from the repository root */
        latup_weights g = {0};
        if (latup_safetensors_load(REAL_WIDTHS_GOLDEN, &g) != LATUP_OK) return fprintf(stderr, "%s\n", latup_last_error()), 1;
        if (!path) {
            int fd = mkstemp(tmpl);
            close(fd);
            path = tmpl;
        }
        const int n = wg_write_generated(&g, "seed", path);
        latup_weights_free(&g);
        if (n < 0) return fprintf(stderr, "bench_vae: the generated weights were not written to %s\n", path), 1;
        if (write_w) {
            printf("wrote %s\n", write_w);
            return 0;
        }
    }
    latup_set_threads(threads);
    bench_print_system();
    latup_vae *v;
    latup_status st = latup_vae_load(path, &v);
    if (!vae_path) unlink(path);
    if (st != LATUP_OK) return fprintf(stderr, "%s\n", latup_last_error()), 1;
    latup_tensor z = random_latent(size), img;
    latup_vae_plan p;
    latup_vae_plan_memory(v, size, size, &p);
    double t[100], cpu[100];
    latup_decode_opts o = {.tile = tile};
    if (serve) {
        decode_job job = {v, &z, o};
        return bench_serve(decode_once, &job, flops(size, size));
    }
    for (int r = 0; r < runs; r++) {
        struct timespec c0, c1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        double t0 = latup_now();
        if (latup_vae_decode(v, &z, &img, &o) != LATUP_OK) return fprintf(stderr, "%s\n", latup_last_error()), 1;
        t[r] = latup_now() - t0;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        cpu[r] = (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec);
        latup_tensor_free(&img);
    }
    qsort(t, (size_t)runs, sizeof t[0], cmpd);
    qsort(cpu, (size_t)runs, sizeof cpu[0], cmpd);
    double fl = flops(size, size);
    printf("VAE decode (real widths), %dx%d latent -> %dx%d image%s; plan %.0f MiB + weights %.0f MiB\n", size, size,
           8 * size, 8 * size, tile ? " (tiled)" : "", p.mem.arena / 1048576.0, p.mem.weights / 1048576.0);
    printf("threads %d, runs %d: median %.2f s (min %.2f, max %.2f); %.1f GFLOP -> %.1f GFLOP/s; CPU time median "
           "%.2f s%s\n", latup_get_threads(), runs, t[runs / 2], t[0], t[runs - 1], fl * 1e-9, fl * 1e-9 / t[runs / 2],
           cpu[runs / 2], latup_exact_math() ? "; exact math" : "");
    latup_tensor_free(&z);
    latup_vae_free(v);
    return 0;
}
