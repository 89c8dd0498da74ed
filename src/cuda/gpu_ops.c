/* gpu_ops.c — the CUDA path's context (device check, cuBLAS in fp32 with TF32 off, the device
 * arena, dumps) and its layers: Linear and convolution on cuBLAS sgemm (im2col a band at a time
 * for 3x3), LayerNorm, GroupNorm statistics, window attention and full attention with score
 * blocks sized from their scratch. The per-element arithmetic is in bodies.cuh (kernels.cu). */
#define _POSIX_C_SOURCE 200809L
#include "cuda/gemm_desc.h"
#include "cuda/gpu.h"
#include "model/device.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* One GPU call at a time per process: the cuBLAS handle and the lazily uploaded weights are
 * shared, and a forward pass keeps the device busy on its own anyway. */
static pthread_mutex_t gpu_lock = PTHREAD_MUTEX_INITIALIZER;
static cublasHandle_t gpu_blas;

static latup_status probe_locked(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* not sticky: a later call may ask again */
        return latup_fail(LATUP_E_DEVICE, "no CUDA device: %s", cudaGetErrorString(e));
    }
    if (n < 1) return latup_fail(LATUP_E_DEVICE, "no CUDA device: the driver reports none");
    struct cudaDeviceProp p;
    e = cudaGetDeviceProperties(&p, 0);
    if (e != cudaSuccess) return latup_fail(LATUP_E_DEVICE, "CUDA device 0: %s", cudaGetErrorString(e));
    if (p.major < 8)
        return latup_fail(LATUP_E_DEVICE, "CUDA device 0 (%s) has compute capability %d.%d; this build has code for "
                          "8.0 and later (sm_80, sm_90, PTX 9.0)", p.name, p.major, p.minor);
    return LATUP_OK;
}

latup_status latup_gpu_probe(void) {
    pthread_mutex_lock(&gpu_lock);
    latup_status st = probe_locked();
    pthread_mutex_unlock(&gpu_lock);
    return st;
}

latup_status gpu_begin(gpu_ctx *g, latup_dump_fn dump, void *dump_user) {
    memset(g, 0, sizeof *g);
    pthread_mutex_lock(&gpu_lock);
    latup_status st = probe_locked();
    if (st == LATUP_OK && !gpu_blas) {
        cublasStatus_t s = cublasCreate(&gpu_blas);
        /* pedantic: fp32 products in fp32, never TF32 or reduced-precision reductions, so the
         * results stay comparable with the CPU oracle at its tolerances */
        if (s == CUBLAS_STATUS_SUCCESS) s = cublasSetMathMode(gpu_blas, CUBLAS_PEDANTIC_MATH);
        if (s != CUBLAS_STATUS_SUCCESS) {
            if (gpu_blas) cublasDestroy(gpu_blas);
            gpu_blas = NULL;
            st = latup_fail(LATUP_E_DEVICE, "cuBLAS: cannot start: %s", cublasGetStatusString(s));
        }
    }
    if (st != LATUP_OK) {
        pthread_mutex_unlock(&gpu_lock);
        return st;
    }
    g->blas = gpu_blas;
    g->dump = dump, g->dump_user = dump_user;
    const char *check = getenv("LATUP_CUDA_CHECK");
    g->guards = check && check[0] == '1';
    const char *env = getenv("LATUP_CUDA_SCRATCH");
    g->scratch = env && strtoull(env, NULL, 10) > 0 ? (size_t)strtoull(env, NULL, 10) : GPU_SCRATCH_BUDGET;
    return LATUP_OK;
}

void gpu_end(gpu_ctx *g) {
    gpu_arena_free(g);
    free(g->stage);
    g->stage = NULL;
    pthread_mutex_unlock(&gpu_lock);
}

/* ---- errors and memory --------------------------------------------------------------------------- */

int gpu_check(gpu_ctx *g, int err, const char *what) {
    if (err == 0) return 0;
    if (g->a.st != LATUP_OK) return 1;
    if (err == LCU_E_CAPACITY)
        g->a.st = latup_fail(LATUP_E_INTERNAL, "CUDA: %s: its scratch is too small for the work", what);
    else
        g->a.st = latup_fail(LATUP_E_DEVICE, "CUDA: %s: %s", what, cudaGetErrorString((cudaError_t)err));
    return 1;
}

int gpu_check_blas(gpu_ctx *g, cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    if (g->a.st == LATUP_OK) g->a.st = latup_fail(LATUP_E_DEVICE, "cuBLAS: %s: %s", what, cublasGetStatusString(s));
    return 1;
}

/* ---- the arena's memory operations on the device (src/ops/arena.h) ------------------------------ */
static float *dev_alloc(size_t floats, const char *what) {
    float *base = NULL;
    const cudaError_t e = cudaMalloc((void **)&base, floats * sizeof(float));
    if (e == cudaSuccess) return base;
    cudaGetLastError();
    latup_fail(LATUP_E_NOMEM, "%s: cannot allocate %.1f MiB on the GPU: %s", what, floats * sizeof(float) / 1048576.0,
               cudaGetErrorString(e));
    return NULL;
}

static void dev_free(float *base) { cudaFree(base); }

static int dev_fill(float *x, size_t n, uint32_t bits) { return lcu_fill_bits(x, (int64_t)n, bits); }

/* Reads the guard back to the host (a few dozen floats) and compares it bit for bit. */
static int dev_intact(const float *x, size_t n, uint32_t bits) {
    float h[64];
    for (size_t i0 = 0; i0 < n; i0 += 64) {
        const size_t k = n - i0 < 64 ? n - i0 : 64;
        if (cudaMemcpy(h, x + i0, k * sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess) return 0;
        for (size_t i = 0; i < k; i++)
            if (memcmp(h + i, &bits, sizeof bits) != 0) return 0;
    }
    return 1;
}

static const latup_arena_ops DEVICE_OPS = {dev_alloc, dev_free, dev_fill, dev_intact};

void gpu_arena_count(gpu_ctx *g) { latup_arena_begin_count_on(&g->a, &DEVICE_OPS, g->guards); }

latup_status gpu_arena_alloc(gpu_ctx *g, const char *what) {
    if (g->a.st != LATUP_OK) return g->a.st;
    return latup_arena_begin_run(&g->a, what);
}

void gpu_arena_free(gpu_ctx *g) { latup_arena_free(&g->a); }

void gpu_arena_print(const gpu_ctx *g, const char *title) {
    latup_mem_plan p;
    latup_arena_plan(&g->a, &p);
    latup_mem_plan_print(&p, title, stderr);
}

void gpu_upload(gpu_ctx *g, float *dev, const float *host, size_t n, const char *what) {
    GPU_RUN(g, (int)cudaMemcpy(dev, host, n * sizeof(float), cudaMemcpyHostToDevice), what);
}

void gpu_download(gpu_ctx *g, float *host, const float *dev, size_t n, const char *what) {
    GPU_RUN(g, (int)cudaMemcpy(host, dev, n * sizeof(float), cudaMemcpyDeviceToHost), what);
}

void gpu_dump(gpu_ctx *g, const char *name, const float *dev, int ndim, int64_t d0, int64_t d1, int64_t d2) {
    if (!g->dump || !gpu_live(g)) return;
    const size_t n = (size_t)d0 * (size_t)d1 * (size_t)(ndim == 3 ? d2 : 1);
    if (n > g->stage_n) {
        float *p = realloc(g->stage, n * sizeof(float));
        if (!p) {
            g->a.st = latup_fail(LATUP_E_NOMEM, "dump of '%s': cannot allocate %zu floats on the host", name, n);
            return;
        }
        g->stage = p, g->stage_n = n;
    }
    gpu_download(g, g->stage, dev, n, name);
    if (g->a.st != LATUP_OK) return;
    latup_tensor t = {.data = g->stage, .ndim = ndim, .shape = {d0, d1, ndim == 3 ? d2 : 0, 0}};
    g->dump(g->dump_user, name, &t, g->b);
}

void gpu_step(gpu_ctx *g) {
    if (!gpu_live(g) || !g->progress || !g->progress->fn) return;
    if (gpu_check(g, (int)cudaDeviceSynchronize(), "finishing a step")) return;
    g->a.st = latup_progress_step(g->progress);
}

double gpu_time(gpu_ctx *g) {
    if (gpu_live(g)) gpu_check(g, (int)cudaDeviceSynchronize(), "synchronise");
    return latup_now();
}

/* ---- products: cuBLAS with the operand layouts of gemm_desc.h --------------------------------------- */

static int fits_int(gpu_ctx *g, int64_t v, const char *what) {
    if (v <= INT_MAX) return 1;
    if (g->a.st == LATUP_OK)
        g->a.st = latup_fail(LATUP_E_INPUT, "%s: %lld exceeds cuBLAS's 32-bit sizes: the input is too large", what,
                             (long long)v);
    return 0;
}

static int gemm(gpu_ctx *g, lcu_gemm d, const float *A, const float *B, float *C, const char *what) {
    const cublasOperation_t ta = d.ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = d.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (d.batch == 1)
        return gpu_check_blas(g, cublasSgemm(g->blas, ta, tb, d.m, d.n, d.k, &d.alpha, A, d.lda, B, d.ldb, &d.beta, C,
                                             d.ldc), what);
    return gpu_check_blas(g, cublasSgemmStridedBatched(g->blas, ta, tb, d.m, d.n, d.k, &d.alpha, A, d.lda, d.sa, B,
                                                       d.ldb, d.sb, &d.beta, C, d.ldc, d.sc, d.batch), what);
}

void gpu_linear(gpu_ctx *g, float *out, const float *inp, const latup_linear *l, int64_t N) {
    if (!fits_int(g, N, "Linear rows") || !gpu_live(g)) return;
    if (gpu_check(g, lcu_linear_bias(out, l->b, N, l->out), "Linear bias")) return;
    gemm(g, lcu_gemm_linear((int)N, l->in, l->out), l->w, inp, out, "Linear sgemm");
}

void gpu_conv(gpu_ctx *g, float *out, const float *inp, const latup_conv *c, int H, int W, const lcu_conv_in *op,
              int accumulate) {
    const int64_t HW = (int64_t)H * W, K = (int64_t)c->cin * c->k * c->k;
    if (!fits_int(g, HW, "convolution map") || !fits_int(g, K, "convolution depth")) return;
    if (c->k == 1) {
        if (op && (op->upsample2x || op->mean)) {
            if (g->a.st == LATUP_OK) g->a.st = latup_fail(LATUP_E_INTERNAL, "a 1x1 convolution with an input transform");
            return;
        }
        if (!gpu_live(g)) return;
        if (gpu_check(g, lcu_conv_bias(out, c->b, c->cout, HW, HW, accumulate), "conv bias")) return;
        gemm(g, lcu_gemm_conv1x1((int)HW, c->cin, c->cout), inp, c->w, out, "1x1 conv sgemm");
        return;
    }
    /* the band: as many rows as fit the budget (at least one); the conv then derives its rows
     * back from the capacity it was given */
    const int want = lcu_band_rows((int64_t)g->scratch, c->cin, W, c->k, H);
    const size_t cap = (size_t)K * W * (size_t)(want > 0 ? want : 1);
    const size_t mark = latup_arena_mark(&g->a);
    float *col = latup_arena_take(&g->a, cap, "conv im2col band");
    if (gpu_live(g)) {
        const int band = lcu_band_rows((int64_t)cap, c->cin, W, c->k, H);
        const lcu_conv_in none = {0, NULL, NULL, NULL, 0};
        for (int y0 = 0; y0 < H && gpu_live(g); y0 += band) {
            const int rows = H - y0 < band ? H - y0 : band, n = rows * W;
            float *o = out + (int64_t)y0 * W;
            if (gpu_check(g, lcu_im2col(col, (int64_t)cap, inp, c->cin, H, W, c->k, y0, rows, op ? *op : none), "im2col") ||
                gpu_check(g, lcu_conv_bias(o, c->b, c->cout, n, HW, accumulate), "conv bias"))
                break;
            gemm(g, lcu_gemm_conv_band(n, (int)K, c->cout, (int)HW), col, c->w, o, "conv sgemm");
        }
    }
    latup_arena_release(&g->a, mark);
}

void gpu_layernorm(gpu_ctx *g, float *out, const float *inp, const latup_norm *n, int64_t N) {
    GPU_RUN(g, lcu_layernorm(out, inp, n->w, n->b, N, n->dim, n->eps), "LayerNorm");
}

void gpu_groupnorm_stats(gpu_ctx *g, float *mean_c, float *scale_c, const float *x, const latup_norm *n, int C,
                         int64_t HW, int groups) {
    const size_t mark = latup_arena_mark(&g->a);
    const size_t cap = (size_t)lcu_gn_scratch_floats(C, HW);
    float *scratch = latup_arena_take(&g->a, cap, "GroupNorm partial sums");
    GPU_RUN(g, lcu_groupnorm_stats(mean_c, scale_c, x, n->w, C, HW, groups, n->eps, scratch, (int64_t)cap),
            "GroupNorm statistics");
    latup_arena_release(&g->a, mark);
}

void gpu_window_attention(gpu_ctx *g, float *out, const float *qkv, const float *table, int nW, int ws, int nH,
                          int hd, int shift, int Hp, int Wp) {
    const int N = ws * ws, C = nH * hd, ld = 3 * C;
    const int64_t NN = (int64_t)N * N, want = lcu_units_in((int64_t)g->scratch, NN, nW);
    const size_t cap = (size_t)((want > 0 ? want : 1) * NN), mark = latup_arena_mark(&g->a);
    float *S = latup_arena_take(&g->a, cap, "attention scores");
    if (gpu_live(g)) {
        const int chunk = (int)lcu_units_in((int64_t)cap, NN, nW); /* windows per product, from the capacity */
        for (int h = 0; h < nH && gpu_live(g); h++)
            for (int w0 = 0; w0 < nW && gpu_live(g); w0 += chunk) {
                const int wc = nW - w0 < chunk ? nW - w0 : chunk;
                const float *q = qkv + (int64_t)w0 * N * ld + (int64_t)h * hd, *k = q + C, *v = q + 2 * C;
                const lcu_score_op sop = {table, nH, h, ws, shift, Hp, Wp};
                if (gemm(g, lcu_gemm_window_scores(N, hd, ld, wc, 1.0f / sqrtf((float)hd)), k, q, S, "attention q k^T") ||
                    gpu_check(g, lcu_softmax_rows(S, (int64_t)wc * N, N, w0, sop), "attention softmax"))
                    break;
                gemm(g, lcu_gemm_window_pv(N, hd, ld, C, wc), v, S, out + (int64_t)w0 * N * C + (int64_t)h * hd,
                     "attention P v");
            }
    }
    latup_arena_release(&g->a, mark);
}

void gpu_attention_cn(gpu_ctx *g, float *out, const float *q, const float *k, const float *v, int C, int64_t N) {
    if (!fits_int(g, N, "attention positions")) return;
    const int64_t want = lcu_units_in((int64_t)g->scratch, N, N);
    const size_t cap = (size_t)((want > 0 ? want : 1) * N), mark = latup_arena_mark(&g->a);
    float *S = latup_arena_take(&g->a, cap, "attention score rows");
    if (gpu_live(g)) {
        const int bq = (int)lcu_units_in((int64_t)cap, N, N); /* query rows per block, from the capacity */
        const lcu_score_op plain = {NULL, 0, 0, 0, 0, 0, 0};
        for (int64_t i0 = 0; i0 < N && gpu_live(g); i0 += bq) {
            const int rows = N - i0 < bq ? (int)(N - i0) : bq;
            if (gemm(g, lcu_gemm_full_scores((int)N, rows, C, 1.0f / sqrtf((float)C)), k, q + i0, S, "attention q k^T") ||
                gpu_check(g, lcu_softmax_rows(S, rows, (int)N, 0, plain), "attention softmax"))
                break;
            gemm(g, lcu_gemm_full_pv((int)N, rows, C), S, v, out + i0, "attention P v");
        }
    }
    latup_arena_release(&g->a, mark);
}

/* ---- weights ------------------------------------------------------------------------------------------ */

void gpu_put(gpu_uploader *u, const float **p, size_t n) {
    if (!*p || u->st != LATUP_OK) return;
    const size_t off = u->floats;
    u->floats += latup_round16(n); /* 64-byte aligned tensors */
    if (!u->dev) return;
    cudaError_t e = cudaMemcpy(u->dev + off, *p, n * sizeof(float), cudaMemcpyHostToDevice);
    if (e != cudaSuccess) {
        u->st = latup_fail(LATUP_E_DEVICE, "CUDA: uploading the weights: %s", cudaGetErrorString(e));
        return;
    }
    *p = u->dev + off;
}

void gpu_put_conv(gpu_uploader *u, latup_conv *c) {
    gpu_put(u, &c->w, (size_t)c->cout * c->cin * c->k * c->k);
    gpu_put(u, &c->b, (size_t)c->cout);
}

void gpu_put_linear(gpu_uploader *u, latup_linear *l) {
    gpu_put(u, &l->w, (size_t)l->out * l->in);
    gpu_put(u, &l->b, (size_t)l->out);
}

void gpu_put_norm(gpu_uploader *u, latup_norm *n) {
    gpu_put(u, &n->w, (size_t)n->dim);
    gpu_put(u, &n->b, (size_t)n->dim);
}

latup_status gpu_uploader_alloc(gpu_uploader *u, const char *what) {
    if (u->st != LATUP_OK) return u->st;
    cudaError_t e = cudaMalloc((void **)&u->dev, (u->floats > 0 ? u->floats : 16) * sizeof(float));
    if (e != cudaSuccess) {
        cudaGetLastError();
        u->dev = NULL;
        return u->st = latup_fail(LATUP_E_NOMEM, "%s: cannot allocate %.1f MiB on the GPU: %s", what,
                                  u->floats * sizeof(float) / 1048576.0, cudaGetErrorString(e));
    }
    u->floats = 0; /* the copying walk counts again, to the same total */
    return LATUP_OK;
}
