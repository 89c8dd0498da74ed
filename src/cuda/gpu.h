/* gpu.h — the CUDA path's building blocks (gpu_ops.c), shared by the LUA and VAE forward passes
 * on the GPU (lua_gpu.c, vae_gpu.c): one context per call holding the device arena, the cuBLAS
 * handle and the dump hook, and one function per layer kind, llm.c style (output, inputs,
 * dims). Every op is a no-op while the arena counts, and after the first failure (the arena's
 * sticky status carries CUDA errors too), so a forward pass reads as a plain list of steps. */
#ifndef LATUP_CUDA_GPU_H
#define LATUP_CUDA_GPU_H

#include "cuda/launch.h"
#include "model/layers.h"
#include "ops/arena.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

/* Scratch budget per op, in floats (256 MiB): a conv's im2col band and an attention's score
 * block take at most this much (at least one row / window / query row) and derive their blocking
 * from the capacity they were given. The environment variable LATUP_CUDA_SCRATCH (floats)
 * overrides it: the GPU test makes it tiny so every conv splits into bands and every attention
 * into blocks. */
#define GPU_SCRATCH_BUDGET ((size_t)64 << 20)

typedef struct {
    latup_arena a;       /* src/ops/arena.c's, over device memory (gpu_arena_count) */
    int guards;          /* LATUP_CUDA_CHECK=1: the arena's guards filled and checked */
    cublasHandle_t blas;
    size_t scratch;      /* GPU_SCRATCH_BUDGET or LATUP_CUDA_SCRATCH */
    /* dumps: the callback sees host copies of device tensors */
    latup_dump_fn dump;
    void *dump_user;
    int b;
    float *stage;        /* host staging for dumps, grown on demand (dump runs only) */
    size_t stage_n;
    latup_progress *progress; /* the call's step count (NULL: none): gpu_step */
} gpu_ctx;

/* Locks the GPU path (one call at a time per process), checks for a device and readies cuBLAS
 * (fp32, TF32 off). On success gpu_end() must follow. */
latup_status gpu_begin(gpu_ctx *g, latup_dump_fn dump, void *dump_user);
void gpu_end(gpu_ctx *g);

/* Starts the counting pass of the context's arena over device memory: the arena of the CPU passes
 * (src/ops/arena.h) with cudaMalloc/cudaFree for its base and guards written by a kernel and read
 * back with cudaMemcpy. Guards are on when the environment has LATUP_CUDA_CHECK=1. */
void gpu_arena_count(gpu_ctx *g);
/* After the counting pass: one cudaMalloc of the counted size, then the real pass's arena. */
latup_status gpu_arena_alloc(gpu_ctx *g, const char *what);
void gpu_arena_free(gpu_ctx *g);
/* The arena's plan (the takes by name, the total) on stderr under `title`: --verbose. */
void gpu_arena_print(const gpu_ctx *g, const char *title);

/* True when ops should do work: a real pass without a failure so far. */
static inline int gpu_live(const gpu_ctx *g) { return !g->a.counting && g->a.st == LATUP_OK; }

/* Records a CUDA/launcher error (0: none) as the sticky status; returns 1 if it failed. */
int gpu_check(gpu_ctx *g, int err, const char *what);
int gpu_check_blas(gpu_ctx *g, cublasStatus_t s, const char *what);

/* Host <-> device copies of n floats (no-ops while counting). */
void gpu_upload(gpu_ctx *g, float *dev, const float *host, size_t n, const char *what);
void gpu_download(gpu_ctx *g, float *host, const float *dev, size_t n, const char *what);

/* Hands a device tensor to the dump callback (host copy), if dumps are on. */
void gpu_dump(gpu_ctx *g, const char *name, const float *dev, int ndim, int64_t d0, int64_t d1, int64_t d2);

/* One step of the caller's progress, at the boundaries where the CPU pass calls lx_stage (the call
 * counted the steps on the CPU pass, src/model/exec.h). With a callback, waits for the work
 * queued so far, so a step reported is a step done; one that asks to stop fails the pass
 * (LATUP_E_CANCELLED) and every later op is skipped. Nothing while counting, after a failure, or
 * without a callback (no synchronisation then). */
void gpu_step(gpu_ctx *g);

/* Wall time of the work queued so far (synchronises): for --verbose only. */
double gpu_time(gpu_ctx *g);

/* ---- layers ------------------------------------------------------------------------------------- */
/* out[N, l->out] = inp[N, l->in] @ W^T + b */
void gpu_linear(gpu_ctx *g, float *out, const float *inp, const latup_linear *l, int64_t N);
/* out[cout, H, W] = conv(op(inp)) (+= with accumulate); op may be NULL; k = 1 takes no op. H x W
 * is the output grid (inp is [cin, H/2, W/2] under op->upsample2x). */
void gpu_conv(gpu_ctx *g, float *out, const float *inp, const latup_conv *c, int H, int W, const lcu_conv_in *op,
              int accumulate);
/* LayerNorm of rows inp[N, n->dim] (out may equal inp) */
void gpu_layernorm(gpu_ctx *g, float *out, const float *inp, const latup_norm *n, int64_t N);
/* GroupNorm statistics of x[C, HW] as a per-channel affine: mean_c[C], scale_c[C] */
void gpu_groupnorm_stats(gpu_ctx *g, float *mean_c, float *scale_c, const float *x, const latup_norm *n, int C,
                         int64_t HW, int groups);
/* Window attention (Swin): qkv [nW, N, 3C] -> out [nW, N, C], heads concatenated; table is the
 * block's relative_position_bias_table, shift > 0 adds the shifted-window mask of the Hp x Wp
 * image. */
void gpu_window_attention(gpu_ctx *g, float *out, const float *qkv, const float *table, int nW, int ws, int nH,
                          int hd, int shift, int Hp, int Wp);
/* Single-head attention over all N positions in channel-major layout (the VAE's mid block):
 * q, k, v [C, N] -> out [C, N], in blocks of query rows sized by the score scratch. */
void gpu_attention_cn(gpu_ctx *g, float *out, const float *q, const float *k, const float *v, int C, int64_t N);

/* ---- weights ------------------------------------------------------------------------------------
 * A model's device copy is its layer structs with every weight pointer moved into one cudaMalloc:
 * the same walk over the structs runs twice, counting the floats, then copying and repointing. */
typedef struct {
    float *dev;      /* NULL while counting */
    size_t floats;   /* counted, then filled */
    latup_status st;
} gpu_uploader;

void gpu_put(gpu_uploader *u, const float **p, size_t n);
void gpu_put_conv(gpu_uploader *u, latup_conv *c);
void gpu_put_linear(gpu_uploader *u, latup_linear *l);
void gpu_put_norm(gpu_uploader *u, latup_norm *n);
/* After counting: the allocation; afterwards the same walk copies. */
latup_status gpu_uploader_alloc(gpu_uploader *u, const char *what);

/* Element-wise launchers with the context's error handling. */
#define GPU_RUN(g, call, what)                                                                     \
    do {                                                                                           \
        if (gpu_live(g)) gpu_check((g), (call), (what));                                           \
    } while (0)

#endif
