/* bench_serve.h — `--serve` for the benchmarks: load once, run once to warm up, then one timed run
 * for each line read on stdin, answered "run SECONDS s". tools/bench/bench_peers.py drives it, so that
 * latup's runs alternate with ONNX Runtime's and PyTorch's (A, B, C, A, B, C, ...) while each tool
 * stays warm in its own process (one OpenMP runtime each). */
#ifndef LATUP_BENCH_SERVE_H
#define LATUP_BENCH_SERVE_H

#include <stdio.h>

#include "common.h"
#include "latup.h"
#include "ops/fastmath.h"

typedef latup_status (*bench_run_fn)(void *ctx);

static inline int bench_serve(bench_run_fn run, void *ctx, double flop) {
    if (run(ctx) != LATUP_OK) return fprintf(stderr, "bench: %s\n", latup_last_error()), 1;
    printf("serve: ready, %.3f GFLOP a run, %d threads%s\n", flop * 1e-9, latup_get_threads(),
           latup_exact_math() ? ", exact math" : "");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        const double t0 = latup_now();
        if (run(ctx) != LATUP_OK) return fprintf(stderr, "bench: %s\n", latup_last_error()), 1;
        printf("run %.6f s\n", latup_now() - t0);
        fflush(stdout);
    }
    return 0;
}

#endif
