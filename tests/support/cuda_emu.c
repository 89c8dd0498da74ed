/* cuda_emu.c — an emulated CUDA device on the host, for the test program test_cuda_emu (CUDA=1
 * builds): the few CUDA runtime and cuBLAS functions the CUDA path calls, and every kernel
 * launcher of launch.h, implemented on the CPU (kernels_emu.h: the same bodies over the same
 * index spaces; cuBLAS as column-major cblas_sgemm). Linked instead of kernels.cu, libcudart and
 * libcublas, it runs the CUDA path's own host code (gpu_ops.c, lua_gpu.c, vae_gpu.c: planning,
 * arena, blocking, dumps, tiling, uploads) on any machine, against the golden data.
 * Device memory is kept apart the way a GPU keeps it: each allocation is its own mapping, made
 * inaccessible (PROT_NONE) except inside an emulated copy, kernel or product, and followed by an
 * inaccessible guard page; every pointer handed to a kernel or product must lie inside a device
 * allocation, every copy must go the direction it says. A host dereference of device memory, a
 * host pointer given to a kernel, or a kernel running off its allocation fails here as on a GPU. */
#define _DEFAULT_SOURCE
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels_emu.h"

/* ---- device memory --------------------------------------------------------------------------------- */
#define MAX_REGIONS 256
typedef struct {
    char *p;
    size_t n;     /* usable bytes (page-rounded), the guard page after them */
    int prot;     /* current protection of the usable bytes */
} region;
static region regions[MAX_REGIONS];
static int n_regions;
static cudaError_t last_error;
static int pedantic; /* cuBLAS told: no TF32, no reduced precision */

static size_t page(void) { return (size_t)sysconf(_SC_PAGESIZE); }

/* LATUP_CUDA_EMU_STRICT=0 leaves device memory open to the host: the big cases, whose code paths
 * the small strict ones already cover, run without an mprotect around every launch. */
static int strict(void) {
    const char *e = getenv("LATUP_CUDA_EMU_STRICT");
    return !e || e[0] != '0';
}

static void device_access(int on) {
    const int prot = on || !strict() ? PROT_READ | PROT_WRITE : PROT_NONE;
    for (int i = 0; i < n_regions; i++)
        if (regions[i].prot != prot) {
            mprotect(regions[i].p, regions[i].n, prot);
            regions[i].prot = prot;
        }
}

/* 1 if [p, p + bytes) lies inside one device allocation */
static int on_device(const void *p, size_t bytes) {
    const char *c = p;
    for (int i = 0; i < n_regions; i++)
        if (c >= regions[i].p && c + bytes <= regions[i].p + regions[i].n) return 1;
    return 0;
}

static cudaError_t fail(cudaError_t e, const char *what) {
    fprintf(stderr, "cuda_emu: %s\n", what);
    return last_error = e;
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
    const size_t n = (bytes + page() - 1) / page() * page();
    if (n_regions == MAX_REGIONS) return fail(cudaErrorMemoryAllocation, "too many allocations");
    char *m = mmap(NULL, n + page(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return last_error = cudaErrorMemoryAllocation;
    regions[n_regions].p = m, regions[n_regions].n = n, regions[n_regions].prot = PROT_NONE;
    n_regions++;
    device_access(0);
    *p = m;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    for (int i = 0; i < n_regions; i++)
        if (regions[i].p == p) {
            munmap(regions[i].p, regions[i].n + page());
            regions[i] = regions[--n_regions];
            return cudaSuccess;
        }
    return fail(cudaErrorInvalidValue, "cudaFree of a pointer that is not a device allocation");
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind) {
    const int dd = on_device(dst, bytes), sd = on_device(src, bytes);
    const int ok = kind == cudaMemcpyHostToDevice   ? dd && !sd
                   : kind == cudaMemcpyDeviceToHost ? !dd && sd
                   : kind == cudaMemcpyDeviceToDevice ? dd && sd
                                                      : 0;
    if (!ok) return fail(cudaErrorInvalidValue, "cudaMemcpy: a pointer is not where the copy's kind says");
    device_access(1);
    memmove(dst, src, bytes);
    device_access(0);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *p, int v, size_t bytes) {
    if (!on_device(p, bytes)) return fail(cudaErrorInvalidValue, "cudaMemset of host memory");
    device_access(1);
    memset(p, v, bytes);
    device_access(0);
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device) {
    (void)device;
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "latup host emulation");
    p->major = 9, p->minor = 0;
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    default: return "unknown error (emulated)";
    }
}

/* ---- cuBLAS ---------------------------------------------------------------------------------------- */
static int blas_handle;

cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = (cublasHandle_t)(void *)&blas_handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h) {
    (void)h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
    (void)h;
    pedantic = mode == CUBLAS_PEDANTIC_MATH;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_INVALID_VALUE (emulated)";
}

/* the extent in floats of a column-major r x c operand with leading dimension ld */
static size_t extent(int r, int c, int ld) { return r > 0 && c > 0 ? (size_t)(c - 1) * ld + r : 0; }

static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float *alpha,
                           const float *A, int lda, long long sa, const float *B, int ldb, long long sb, const float *beta,
                           float *C, int ldc, long long sc, int batch) {
    if (!pedantic) {
        fail(cudaErrorInvalidValue, "sgemm before cublasSetMathMode(CUBLAS_PEDANTIC_MATH): TF32 could be on");
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    const int ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
    const int br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
    for (int b = 0; b < batch; b++)
        if (!on_device(A + b * sa, extent(ar, ac, lda) * 4) || !on_device(B + b * sb, extent(br, bc, ldb) * 4) ||
            !on_device(C + b * sc, extent(m, n, ldc) * 4)) {
            fail(cudaErrorIllegalAddress, "sgemm operand outside device memory");
            return CUBLAS_STATUS_INVALID_VALUE;
        }
    device_access(1);
    for (int b = 0; b < batch; b++)
        cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                    m, n, k, *alpha, A + b * sa, lda, B + b * sb, ldb, *beta, C + b * sc, ldc);
    device_access(0);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    (void)h;
    return gemm(ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C, ldc, 0, 1);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long sa,
                                         const float *B, int ldb, long long sb, const float *beta, float *C, int ldc,
                                         long long sc, int batch) {
    (void)h;
    return gemm(ta, tb, m, n, k, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc, sc, batch);
}

/* ---- the kernels: pointer checks, then the emulation with device memory open ---------------------------- */
#define DEV(p, floats) (!(p) || on_device((p), (size_t)(floats) * sizeof(float)))
#define KERNEL(ok, call)                                                                           \
    do {                                                                                           \
        if (!(ok)) return fail(cudaErrorIllegalAddress, "a kernel argument outside device memory"); \
        device_access(1);                                                                          \
        const int r_ = (call);                                                                     \
        device_access(0);                                                                          \
        return r_;                                                                                 \
    } while (0)

int lcu_fill_bits(float *x, int64_t n, uint32_t bits) { KERNEL(DEV(x, n), emu_fill_bits(x, n, bits)); }

int lcu_conv_bias(float *out, const float *bias, int rows, int64_t n, int64_t ld, int accumulate) {
    KERNEL(DEV(out, (rows - 1) * ld + n) && DEV(bias, rows), emu_conv_bias(out, bias, rows, n, ld, accumulate));
}

int lcu_linear_bias(float *out, const float *bias, int64_t N, int Cout) {
    KERNEL(DEV(out, N * Cout) && DEV(bias, Cout), emu_linear_bias(out, bias, N, Cout));
}

int lcu_add(float *y, const float *x, int64_t n) { KERNEL(DEV(y, n) && DEV(x, n), emu_add(y, x, n)); }

int lcu_channel_add(float *x, const float *v, float sign, int C, int64_t n) {
    KERNEL(DEV(x, C * n) && DEV(v, C), emu_channel_add(x, v, sign, C, n));
}

int lcu_reflect_pad(float *out, const float *inp, int C, int H, int W, int Hp, int Wp) {
    KERNEL(DEV(out, (int64_t)C * Hp * Wp) && DEV(inp, (int64_t)C * H * W), emu_reflect_pad(out, inp, C, H, W, Hp, Wp));
}

int lcu_crop(float *out, const float *inp, int C, int H, int W, int Ho, int Wo) {
    KERNEL(DEV(out, (int64_t)C * Ho * Wo) && DEV(inp, (int64_t)C * H * W), emu_crop(out, inp, C, H, W, Ho, Wo));
}

int lcu_transpose(float *out, const float *inp, const float *add, int64_t rows, int64_t cols) {
    KERNEL(DEV(out, rows * cols) && DEV(inp, rows * cols) && DEV(add, rows * cols), emu_transpose(out, inp, add, rows, cols));
}

int lcu_pixel_shuffle(float *out, const float *inp, int C, int H, int W, int r) {
    const int64_t n = (int64_t)C * H * W * r * r;
    KERNEL(DEV(out, n) && DEV(inp, n), emu_pixel_shuffle(out, inp, C, H, W, r));
}

int lcu_gelu(float *x, int64_t n) { KERNEL(DEV(x, n), emu_gelu(x, n)); }

int lcu_leaky_relu(float *x, int64_t n, float slope) { KERNEL(DEV(x, n), emu_leaky_relu(x, n, slope)); }

int lcu_layernorm(float *out, const float *inp, const float *w, const float *b, int64_t N, int C, float eps) {
    KERNEL(DEV(out, N * C) && DEV(inp, N * C) && DEV(w, C) && DEV(b, C), emu_layernorm(out, inp, w, b, N, C, eps));
}

int lcu_window_partition(float *out, const float *inp, int H, int W, int C, int ws, int shift) {
    const int64_t n = (int64_t)H * W * C;
    KERNEL(DEV(out, n) && DEV(inp, n), emu_window_partition(out, inp, H, W, C, ws, shift));
}

int lcu_window_reverse_add(float *t, const float *win, int H, int W, int C, int ws, int shift) {
    const int64_t n = (int64_t)H * W * C;
    KERNEL(DEV(t, n) && DEV(win, n), emu_window_reverse_add(t, win, H, W, C, ws, shift));
}

int lcu_softmax_rows(float *S, int64_t rows, int n, int w0, lcu_score_op op) {
    const int64_t nt = (int64_t)(2 * op.ws - 1) * (2 * op.ws - 1) * op.nH;
    KERNEL(DEV(S, rows * n) && DEV(op.table, nt), emu_softmax_rows(S, rows, n, w0, op));
}

int lcu_groupnorm_stats(float *mean_c, float *scale_c, const float *x, const float *w, int C, int64_t HW, int groups,
                        float eps, float *scratch, int64_t scratch_cap) {
    KERNEL(DEV(mean_c, C) && DEV(scale_c, C) && DEV(x, C * HW) && DEV(w, C) && DEV(scratch, scratch_cap),
           emu_groupnorm_stats(mean_c, scale_c, x, w, C, HW, groups, eps, scratch, scratch_cap));
}

int lcu_groupnorm_apply(float *out, const float *inp, const float *mean_c, const float *scale_c, const float *bias,
                        int C, int64_t HW, int silu) {
    KERNEL(DEV(out, C * HW) && DEV(inp, C * HW) && DEV(mean_c, C) && DEV(scale_c, C) && DEV(bias, C),
           emu_groupnorm_apply(out, inp, mean_c, scale_c, bias, C, HW, silu));
}

int lcu_im2col(float *col, int64_t cap, const float *inp, int Cin, int H, int W, int k, int y0, int rows,
               lcu_conv_in op) {
    const int64_t in = op.upsample2x ? (int64_t)Cin * (H / 2) * (W / 2) : (int64_t)Cin * H * W;
    KERNEL(DEV(col, cap) && DEV(inp, in) && DEV(op.mean, Cin) && DEV(op.scale, Cin) && DEV(op.bias, Cin),
           emu_im2col(col, cap, inp, Cin, H, W, k, y0, rows, op));
}

int lcu_blend_tile(float *out, float *wsum, const float *tile, int Co, int oh, int ow, int Hf, int Wf, int Y0, int X0,
                   int ot, int ob, int ol, int orr) {
    KERNEL(DEV(out, (int64_t)Co * Hf * Wf) && DEV(wsum, (int64_t)Hf * Wf) && DEV(tile, (int64_t)Co * oh * ow),
           emu_blend_tile(out, wsum, tile, Co, oh, ow, Hf, Wf, Y0, X0, ot, ob, ol, orr));
}

int lcu_blend_finish(float *out, const float *wsum, int Co, int64_t HW) {
    KERNEL(DEV(out, Co * HW) && DEV(wsum, HW), emu_blend_finish(out, wsum, Co, HW));
}
