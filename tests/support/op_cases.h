/* op_cases.h — the one table of kernel op cases both kernel harnesses iterate, as ggml's
 * tests/test-backend-ops.c keeps one list of op cases that every backend runs:
 *   test_kernels.c    (OC_CPU)  the CPU kernels of src/ops/ against naive twins in double, with
 *                               per-element error bounds (the bound of each op is derived where
 *                               the harness checks it);
 *   test_cuda_host.c  (OC_HOST) the CUDA kernel bodies (src/cuda/bodies.cuh) over their index
 *                               spaces on the host, against the CPU kernels and naive twins, with
 *                               the scaled tolerances OC_TOL_* below.
 * One table per op: its shapes and parameters, one row a case, and in `who` the harnesses that run
 * the row (OC_ALL: both). A harness runs its rows in table order (OC_EACH), one report line per
 * compared tensor, so the rows of one harness keep their order (and the harness its RNG stream).
 * A field a harness has no use for is ignored by it (said at the table). Header-only data. */
#ifndef LATUP_OP_CASES_H
#define LATUP_OP_CASES_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>

enum { OC_CPU = 1, OC_HOST = 2, OC_ALL = OC_CPU | OC_HOST };

/* for (each row i of table that harness runs) */
#define OC_EACH(i, table, harness)                                   \
    for (size_t i = 0; i < sizeof(table) / sizeof((table)[0]); i++) \
        if ((table)[i].who & (harness))

/* ---- tolerances -----------------------------------------------------------------------------
 * OC_CPU: per element, from the operation count of each output (test_kernels.c, at each check_*),
 * in units of OC_EPS; layout maps and add_inplace exact.
 * OC_HOST: max|got - ref| <= tol * max|ref|. Layout maps (pad, crop, transposes, shuffle, windows,
 * bias/mask gathers, activations) must be bit-exact. The rest: the worst ratio measured over the
 * cases below (gcc 12 -O2, OpenBLAS 0.3.21) times about 5:
 *  - norms and the tile blend: 4 fp32 ulps (4.8e-7); measured 0 vs the CPU (the same double
 *    statistics), 0.63 ulp vs the LayerNorm twin, 0.93 ulp for the blend;
 *  - products (conv, linear): 4e-6; measured 6.8e-7 vs the twin (Cin 64 with GN + SiLU), 5.2e-7 vs
 *    the CPU (OpenBLAS in both, different operand order);
 *  - attention: 4e-6; measured 8.5e-7 (C 64, N 257) — softmax exp amplifies score rounding.
 * An index bug moves an element by O(its size): far above every one of these. */
#define OC_EPS ((double)FLT_EPSILON) /* 2^-23, one fp32 ulp at 1.0 */
#define OC_TOL_NORM (4 * OC_EPS)
#define OC_TOL_PRODUCT 4e-6
#define OC_TOL_ATTENTION 4e-6

/* ==== layout maps (exact in both) ============================================================= */

/* reflect pad (pad < size). CPU: vs naive_reflect_pad. HOST: emu_reflect_pad vs the CPU's and a
 * naive map, then the crop back (emu_crop vs latup_crop, and crop(pad(x)) == x). */
typedef struct { int who, C, H, W, Hp, Wp; } oc_pad;
static const oc_pad OC_PAD[] = {
    {OC_ALL, 1, 1, 1, 1, 1},      {OC_ALL, 2, 2, 3, 3, 4},       {OC_CPU, 3, 5, 7, 8, 8},
    {OC_CPU, 1, 9, 1, 16, 1},     {OC_CPU, 16, 17, 13, 32, 16},  {OC_CPU, 2, 8, 8, 8, 8},
    {OC_CPU, 4, 3, 30, 4, 32},    {OC_CPU, 16, 33, 40, 48, 48},  {OC_HOST, 3, 9, 7, 16, 8},
    {OC_HOST, 1, 17, 31, 32, 32}, {OC_HOST, 16, 13, 5, 16, 8},   {OC_HOST, 4, 16, 16, 16, 16}};

/* crop [C, H, W] -> [C, Ho, Wo] (CPU: vs naive_crop; HOST checks the crop on OC_PAD's rows) */
typedef struct { int who, C, H, W, Ho, Wo; } oc_crop;
static const oc_crop OC_CROP[] = {{OC_CPU, 1, 1, 1, 1, 1},     {OC_CPU, 3, 8, 8, 5, 7},  {OC_CPU, 2, 16, 16, 16, 16},
                                  {OC_CPU, 16, 34, 26, 33, 25}, {OC_CPU, 1, 5, 9, 1, 9}, {OC_CPU, 2, 4, 6, 4, 1}};

/* transposes [C, HW] <-> [HW, C] (HOST: also with the fused residual) */
typedef struct { int who, C, HW; } oc_transpose;
static const oc_transpose OC_TRANSPOSE[] = {
    {OC_ALL, 1, 1},    {OC_CPU, 1, 17},  {OC_CPU, 17, 1},   {OC_CPU, 3, 5},   {OC_CPU, 16, 221},
    {OC_CPU, 360, 37}, {OC_CPU, 7, 1000}, {OC_HOST, 1, 7},  {OC_HOST, 3, 1},  {OC_HOST, 5, 33},
    {OC_HOST, 360, 17}, {OC_HOST, 16, 256}};

/* PixelShuffle, r x r */
typedef struct { int who, C, H, W, r; } oc_shuffle;
static const oc_shuffle OC_SHUFFLE[] = {
    {OC_CPU, 1, 1, 1, 1},  {OC_ALL, 1, 1, 1, 2},  {OC_ALL, 3, 2, 5, 2},  {OC_CPU, 16, 7, 3, 2},
    {OC_CPU, 2, 3, 4, 3},  {OC_CPU, 256, 3, 5, 2}, {OC_CPU, 5, 1, 9, 2}, {OC_HOST, 4, 7, 3, 3},
    {OC_HOST, 16, 4, 4, 2}, {OC_HOST, 2, 5, 6, 4}};

/* window partition and reverse (+ add), shifted by `shift` */
typedef struct { int who, H, W, C, ws, shift; } oc_windows;
static const oc_windows OC_WINDOWS[] = {
    {OC_ALL, 1, 1, 1, 1, 0},     {OC_ALL, 3, 3, 2, 1, 0},      {OC_ALL, 4, 6, 2, 2, 1},
    {OC_CPU, 8, 8, 1, 8, 0},     {OC_HOST, 9, 6, 3, 3, 1},     {OC_ALL, 8, 8, 3, 8, 4},
    {OC_ALL, 16, 24, 5, 8, 4},   {OC_ALL, 16, 24, 5, 8, 3},    {OC_ALL, 32, 16, 7, 16, 8},
    {OC_ALL, 32, 48, 3, 16, 4},  {OC_ALL, 16, 16, 360, 16, 8}, {OC_ALL, 48, 32, 17, 16, 0}};

/* relative-position bias gather (CPU; HOST checks its index on OC_SHIFT_MASK's rows with 3 heads) */
typedef struct { int who, ws, nH; } oc_relbias;
static const oc_relbias OC_RELBIAS[] = {{OC_CPU, 1, 1}, {OC_CPU, 2, 3}, {OC_CPU, 7, 2}, {OC_CPU, 8, 6}, {OC_CPU, 16, 12}};
#define OC_HOST_RELBIAS_HEADS 3

/* the shift mask of an H x W grid (HOST: lcu_shift_mask and lcu_rel_index vs the CPU's tables) */
typedef struct { int who, H, W, ws, shift; } oc_shift_mask;
static const oc_shift_mask OC_SHIFT_MASK[] = {
    {OC_ALL, 8, 8, 8, 4},     {OC_CPU, 16, 16, 8, 4},   {OC_ALL, 16, 24, 8, 3},  {OC_CPU, 16, 16, 8, 0},
    {OC_CPU, 32, 32, 16, 8},  {OC_CPU, 32, 48, 16, 4},  {OC_CPU, 64, 32, 16, 8}, {OC_HOST, 32, 48, 16, 8},
    {OC_ALL, 16, 16, 16, 8},  {OC_CPU, 16, 32, 16, 0},  {OC_ALL, 4, 6, 2, 1},    {OC_HOST, 9, 6, 3, 1}};

/* nearest x2 upsampling (CPU: vs naive_upsample2x; misalign: the input one float off 64 bytes) */
typedef struct { int who, C, H, W, misalign, threads; } oc_upsample;
static const oc_upsample OC_UPSAMPLE[] = {
    {OC_CPU, 1, 1, 1, 0, 1},    {OC_CPU, 3, 1, 5, 1, 2},    {OC_CPU, 2, 7, 1, 0, 2},
    {OC_CPU, 5, 3, 4, 1, 1},    {OC_CPU, 1, 17, 33, 0, 2},  {OC_CPU, 512, 16, 16, 0, 2},
    {OC_CPU, 512, 13, 9, 1, 2}, {OC_CPU, 256, 64, 64, 0, 2}, {OC_CPU, 4, 1, 1, 0, 2}};

/* add_inplace, exact */
typedef struct { int who; size_t n; int misalign; } oc_add;
static const oc_add OC_ADD[] = {{OC_CPU, 1, 0}, {OC_CPU, 7, 1}, {OC_CPU, 16, 0}, {OC_CPU, 17, 1}, {OC_CPU, 1001, 0}};

/* ==== elementwise ============================================================================= */

/* activations. CPU: GELU vs naive_gelu (erf), LeakyReLU exact, SiLU vs naive_silu, each row one
 * op. HOST: one row, all three on one input of n values (incl. +-100, +-0), bit-exact vs the CPU
 * in exact math (libm erff/expf, as CUDA's). */
enum { OC_GELU, OC_LEAKY, OC_SILU, OC_ACTS_ALL };
typedef struct { int who, op; size_t n; float slope; int in_place; } oc_act;
static const oc_act OC_ACT[] = {
    {OC_CPU, OC_GELU, 1, 0, 0},        {OC_CPU, OC_GELU, 7, 0, 1},        {OC_CPU, OC_GELU, 33, 0, 0},
    {OC_CPU, OC_GELU, 1001, 0, 0},     {OC_CPU, OC_GELU, 4099, 0, 1},     {OC_CPU, OC_LEAKY, 1, 0.01f, 0},
    {OC_CPU, OC_LEAKY, 7, 0.01f, 1},   {OC_CPU, OC_LEAKY, 1001, 0.01f, 0}, {OC_CPU, OC_LEAKY, 1001, 0.2f, 1},
    {OC_CPU, OC_SILU, 1, 0, 0},        {OC_CPU, OC_SILU, 7, 0, 1},        {OC_CPU, OC_SILU, 33, 0, 0},
    {OC_CPU, OC_SILU, 1001, 0, 0},     {OC_CPU, OC_SILU, 65537, 0, 1},    {OC_HOST, OC_ACTS_ALL, 4099, 0.01f, 0}};

/* softmax over rows (CPU, vs naive_softmax in double) */
enum { OC_SM_NORMAL, OC_SM_WIDE, OC_SM_MASKED, OC_SM_EQUAL };
typedef struct { int who, rows, cols, kind, threads; } oc_softmax;
static const oc_softmax OC_SOFTMAX[] = {
    {OC_CPU, 1, 1, OC_SM_NORMAL, 1},   {OC_CPU, 3, 7, OC_SM_NORMAL, 1},     {OC_CPU, 5, 17, OC_SM_WIDE, 2},
    {OC_CPU, 64, 64, OC_SM_MASKED, 2}, {OC_CPU, 256, 256, OC_SM_NORMAL, 2}, {OC_CPU, 2, 1000, OC_SM_WIDE, 1},
    {OC_CPU, 3, 33, OC_SM_EQUAL, 1}};

/* ==== norms =================================================================================== */

/* LayerNorm over C of N rows; the input N(mean, std). CPU: vs naive_layernorm, in place or not,
 * with threads. HOST: the warp-per-row body vs the CPU's and a double twin, and in place always
 * (in_place and threads unused). */
typedef struct { int who, N, C; float mean, std; int in_place, threads; } oc_layernorm;
static const oc_layernorm OC_LAYERNORM[] = {
    {OC_CPU, 1, 1, 0.0f, 1.0f, 0, 1},      {OC_CPU, 1, 7, 0.0f, 1.0f, 0, 1},    {OC_CPU, 13, 17, 0.5f, 2.0f, 1, 2},
    {OC_CPU, 5, 360, 0.0f, 1.0f, 0, 2},    {OC_CPU, 300, 60, 0.0f, 3.0f, 1, 2}, {OC_CPU, 33, 360, 100.0f, 1.0f, 0, 2},
    {OC_CPU, 3, 361, 0.0f, 1e-3f, 0, 1},   {OC_HOST, 1, 1, 3.0f, 2.0f, 1, 1},   {OC_HOST, 3, 7, 3.0f, 2.0f, 1, 1},
    {OC_HOST, 5, 31, 3.0f, 2.0f, 1, 1},    {OC_HOST, 4, 32, 3.0f, 2.0f, 1, 1},  {OC_HOST, 6, 33, 3.0f, 2.0f, 1, 1},
    {OC_HOST, 17, 180, 3.0f, 2.0f, 1, 1},  {OC_HOST, 64, 360, 3.0f, 2.0f, 1, 1}, {OC_HOST, 2, 1000, 3.0f, 2.0f, 1, 1}};

/* GroupNorm of [C, H, W] in G groups, input N(mean, std). CPU: groupnorm_forward and the fused
 * + SiLU vs naive_groupnorm. HOST: the chunked statistics (and a capacity one float short
 * refused), the affine and the applied map with and without SiLU vs the CPU (in_place, misalign,
 * threads unused). */
typedef struct { int who, C, H, W, G; float mean, std; int in_place, misalign, threads; } oc_groupnorm;
static const oc_groupnorm OC_GROUPNORM[] = {
    {OC_CPU, 1, 1, 1, 1, 0.0f, 1.0f, 0, 0, 1},          /* var 0: out = bias */
    {OC_CPU, 32, 1, 1, 32, 0.0f, 1.0f, 0, 0, 2},        /* C = groups, 1x1: bias */
    {OC_CPU, 32, 3, 5, 32, 0.5f, 2.0f, 1, 0, 2},        /* C = groups */
    {OC_CPU, 64, 7, 9, 32, 0.0f, 1.0f, 0, 1, 1},        /* C = 2 groups, odd */
    {OC_CPU, 64, 1, 13, 32, 0.0f, 1.0f, 0, 0, 2},       /* H = 1 */
    {OC_CPU, 64, 11, 1, 32, 0.0f, 3.0f, 1, 1, 2},       /* W = 1 */
    {OC_CPU, 5, 4, 4, 1, 0.0f, 1.0f, 0, 0, 2},          /* one group, odd C */
    {OC_CPU, 6, 5, 7, 3, -2.0f, 1.0f, 0, 0, 1},         /* odd C/G */
    {OC_CPU, 96, 33, 31, 32, 0.0f, 1.0f, 0, 1, 2},      /* 3 channels per group */
    {OC_CPU, 128, 32, 32, 32, 100.0f, 1.0f, 0, 0, 2},   /* large mean */
    {OC_CPU, 256, 17, 23, 32, 0.0f, 1e-3f, 0, 0, 2},    /* var ~ eps */
    {OC_CPU, 512, 64, 64, 32, 0.0f, 1.0f, 1, 0, 2},     /* mid block, 64^2 */
    {OC_CPU, 128, 128, 128, 32, 0.3f, 2.0f, 0, 0, 2},   /* up[0]-like */
    {OC_CPU, 128, 128, 128, 32, 0.3f, 2.0f, 0, 0, 1},
    {OC_HOST, 32, 1, 1, 32, 5.0f, 2.0f, 0, 0, 1},       {OC_HOST, 64, 3, 5, 32, 5.0f, 2.0f, 0, 0, 1},
    {OC_HOST, 32, 128, 129, 32, 5.0f, 2.0f, 0, 0, 1},   {OC_HOST, 96, 7, 9, 32, 5.0f, 2.0f, 0, 0, 1},
    {OC_HOST, 8, 131, 131, 2, 5.0f, 2.0f, 0, 0, 1},     {OC_HOST, 4, 1, 16385, 1, 5.0f, 2.0f, 0, 0, 1}};

/* ==== products ================================================================================ */

/* convolution k x k, zero padding k/2, over op(input): nearest x2 (up), GroupNorm affine (norm)
 * then SiLU (silu), accumulated into out (acc). rows: the band height the scratch may hold (CPU:
 * band_rows_max, 0 = the kernel's plan; HOST: the rows the capacity holds, beyond H clamped).
 * CPU only: bias, cap_rows/cap_workers/cap_minus (a scratch short of the plan's: cap_rows 0 = the
 * plan's exactly), misalign, threads; each row twice (exact math, then Winograd where it
 * applies), vs naive_conv2d. HOST: emu_conv (bands from the capacity) vs the CPU's conv and a
 * double twin, with bias always. */
typedef struct {
    int who, Cin, H, W, Cout, k, rows, up, norm, silu, acc, bias, cap_rows, cap_workers;
    long cap_minus;
    int misalign, threads;
} oc_conv;
static const oc_conv OC_CONV[] = {
    /* test_kernels test_conv2d: the plain convolution */
    {OC_CPU, 1, 1, 1, 1, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},    /* 1x1 image, all taps but one padded */
    {OC_CPU, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},    /* the smallest k=1 */
    {OC_CPU, 3, 5, 7, 4, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},    /* bands of 1 row */
    {OC_CPU, 3, 5, 7, 4, 3, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2},    /* bands not dividing H */
    {OC_CPU, 3, 5, 7, 4, 3, 3, 0, 0, 0, 0, 1, 0, 0, 0, 1, 3},    /* last band of 2 rows, unaligned */
    {OC_CPU, 3, 5, 7, 4, 3, 5, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2},    /* one band = H */
    {OC_CPU, 2, 1, 9, 3, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},    /* H = 1 */
    {OC_CPU, 2, 9, 1, 3, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4},    /* W = 1 */
    {OC_CPU, 1, 6, 11, 1, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},   /* Cin = Cout = 1 */
    {OC_CPU, 5, 4, 4, 17, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},   /* 1x1 conv, no scratch */
    {OC_CPU, 37, 3, 19, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2},  /* 1x1 conv, unaligned */
    {OC_CPU, 7, 6, 5, 3, 5, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},    /* k = 5: the header allows any odd k */
    {OC_CPU, 16, 13, 17, 33, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2}, /* latent width in; Winograd from 16 */
    {OC_CPU, 64, 13, 17, 96, 3, 3, 0, 0, 0, 0, 1, 0, 0, 0, 1, 2}, /* near the real model, unaligned */
    {OC_CPU, 33, 16, 16, 16, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 3}, /* conv_last-like: many in, 16 out */
    {OC_CPU, 360, 9, 11, 360, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2}, /* the trunk conv at E = 360 */
    {OC_CPU, 16, 70, 40, 16, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2}, /* tall: several default bands */
    {OC_CPU, 16, 1, 1, 16, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2},   /* Winograd on 1x1: one partial tile */
    {OC_CPU, 20, 7, 9, 24, 3, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2},   /* odd bands and widths: partial tiles */
    /* capacities below what the kernel asks for: fewer workers, then shorter bands */
    {OC_CPU, 9, 21, 13, 5, 3, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 4},   /* exactly one row */
    {OC_CPU, 9, 21, 13, 5, 3, 0, 0, 0, 0, 0, 1, 3, 1, 1, 0, 4},   /* two rows, one worker */
    {OC_CPU, 9, 21, 13, 5, 3, 2, 0, 0, 0, 0, 1, 2, 2, 0, 1, 4},   /* two workers of 2 rows */
    {OC_CPU, 24, 21, 13, 17, 3, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 4}, /* the same, Winograd */
    {OC_CPU, 24, 21, 13, 17, 3, 0, 0, 0, 0, 0, 1, 4, 1, 1, 0, 4},
    {OC_CPU, 24, 21, 13, 17, 3, 4, 0, 0, 0, 0, 1, 4, 2, 0, 1, 4},
    /* test_kernels test_conv2d_transform: the transformed inputs */
    {OC_CPU, 3, 5, 7, 4, 3, 1, 0, 1, 1, 0, 1, 0, 0, 0, 0, 1},     /* GN+SiLU, bands of 1 */
    {OC_CPU, 3, 5, 7, 4, 3, 2, 0, 1, 1, 0, 1, 0, 0, 0, 1, 2},     /* bands not dividing H, unaligned */
    {OC_CPU, 8, 9, 6, 5, 3, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 2},     /* norm without SiLU */
    {OC_CPU, 4, 8, 6, 3, 3, 3, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1},     /* nearest x2 only */
    {OC_CPU, 4, 2, 2, 3, 3, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 2},     /* x2 of a 1x1 map, plus GN+SiLU */
    {OC_CPU, 32, 12, 10, 16, 3, 5, 1, 0, 0, 0, 1, 0, 0, 0, 1, 3}, /* decoder-like upsample conv */
    {OC_CPU, 6, 7, 5, 4, 3, 2, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1},     /* accumulate into out */
    {OC_CPU, 6, 7, 5, 9, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 2},     /* 1x1 shortcut, accumulated */
    {OC_CPU, 64, 16, 12, 32, 3, 4, 0, 1, 1, 0, 1, 0, 0, 0, 0, 2}, /* resnet-like, many bands */
    {OC_CPU, 32, 13, 9, 32, 3, 3, 0, 1, 1, 1, 1, 0, 0, 0, 0, 3},  /* Winograd, accumulated, odd sizes */
    {OC_CPU, 16, 6, 10, 16, 3, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0, 2},  /* Winograd through both transforms */
    /* the transformed band lives in the scratch too: one row of it, exactly */
    {OC_CPU, 16, 11, 9, 8, 3, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 2},
    {OC_CPU, 16, 12, 10, 8, 3, 0, 1, 0, 0, 0, 1, 2, 1, 0, 0, 3},
    {OC_CPU, 16, 11, 9, 24, 3, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 2},  /* Winograd */
    {OC_CPU, 16, 12, 10, 24, 3, 0, 1, 0, 0, 0, 1, 2, 1, 0, 0, 3},
    /* test_cuda_host test_conv: emulated bands from the capacity */
    {OC_HOST, 1, 1, 1, 1, 3, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},    /* 1x1 image: all taps but one padded */
    {OC_HOST, 3, 5, 7, 4, 3, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},    /* one row per band */
    {OC_HOST, 3, 5, 7, 4, 3, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},    /* bands not dividing H */
    {OC_HOST, 3, 5, 7, 4, 3, 5, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},    /* one band */
    {OC_HOST, 3, 5, 7, 4, 3, 99, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},   /* capacity beyond H: clamped */
    {OC_HOST, 2, 1, 9, 3, 3, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},    /* H = 1 */
    {OC_HOST, 2, 9, 1, 3, 3, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},    /* W = 1 */
    {OC_HOST, 16, 13, 17, 33, 3, 4, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}, /* latent-like */
    {OC_HOST, 5, 4, 4, 17, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1},   /* 1x1 conv */
    {OC_HOST, 6, 7, 5, 9, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1},    /* 1x1 shortcut accumulated */
    {OC_HOST, 3, 5, 7, 4, 3, 2, 0, 1, 1, 0, 1, 0, 0, 0, 0, 1},    /* GroupNorm + SiLU input */
    {OC_HOST, 8, 9, 6, 5, 3, 9, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1},    /* norm without SiLU */
    {OC_HOST, 4, 8, 6, 3, 3, 3, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1},    /* nearest x2 input */
    {OC_HOST, 4, 2, 2, 3, 3, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 1},    /* x2 of a 1x1 map + GN + SiLU */
    {OC_HOST, 6, 7, 5, 4, 3, 2, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1},    /* accumulate */
    {OC_HOST, 64, 16, 12, 32, 3, 3, 0, 1, 1, 0, 1, 0, 0, 0, 0, 1}, /* resnet-like, 6 bands */
    {OC_HOST, 5, 6, 5, 4, 5, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1}};   /* k = 5 */
/* the rows of test_conv2d (the rest of OC_CONV's OC_CPU rows are test_conv2d_transform's) */
#define OC_CONV_PLAIN_ROWS 25

/* the convolution's band plan (CPU: latup_conv2d_plan for 1..8 threads, with and without norm) */
typedef struct { int who, Cin, H, W, Cout, k, rows_max; } oc_conv_plan;
static const oc_conv_plan OC_CONV_PLAN[] = {
    {OC_CPU, 1, 1, 1, 1, 3, 0},          {OC_CPU, 3, 5, 7, 4, 3, 0},      {OC_CPU, 16, 13, 17, 16, 3, 0},
    {OC_CPU, 360, 64, 64, 360, 3, 0},    {OC_CPU, 256, 7, 1, 16, 3, 0},   {OC_CPU, 7, 9, 5, 3, 5, 2},
    {OC_CPU, 512, 128, 128, 512, 3, 0},  {OC_CPU, 128, 1024, 1024, 128, 3, 0},
    {OC_CPU, 16, 3000, 5000, 16, 3, 0},  {OC_CPU, 360, 64, 64, 360, 3, 3}};

/* linear [N, Cin] -> [N, Cout]. CPU: vs naive_linear (bias, misalign, threads). HOST: the GPU's
 * column-major product on OpenBLAS vs the CPU's, bias always (misalign, threads unused). */
typedef struct { int who, N, Cin, Cout, bias, misalign, threads; } oc_linear;
static const oc_linear OC_LINEAR[] = {
    {OC_ALL, 1, 1, 1, 1, 0, 1},         {OC_CPU, 1, 1, 1, 0, 0, 1},        {OC_ALL, 7, 3, 5, 1, 0, 2},
    {OC_CPU, 1, 17, 33, 0, 1, 1},       {OC_CPU, 33, 1, 9, 1, 0, 2},       {OC_CPU, 5, 9, 1, 1, 1, 1},
    {OC_CPU, 300, 60, 180, 1, 0, 2},    {OC_CPU, 300, 60, 180, 0, 1, 1},
    {OC_CPU, 256, 360, 1080, 1, 0, 2},  /* the real qkv */
    {OC_CPU, 17, 720, 360, 1, 1, 2},    /* the real fc2, odd N */
    {OC_HOST, 256, 36, 108, 1, 0, 1},   {OC_HOST, 33, 360, 17, 1, 0, 1},   {OC_HOST, 64, 720, 360, 1, 0, 1}};

/* ==== attention =============================================================================== */

/* Swin window attention over an H x W grid of ws x ws windows, nH heads of hd. CPU: vs
 * naive_window_attention with the mask or not, window-parallel threads and OpenMP threads. HOST:
 * the products and the warp softmax, `per` windows a product, the mask whenever shift (mask,
 * threads, omp unused) vs the CPU's and a double twin. */
typedef struct { int who, H, W, ws, shift, mask, nH, hd, threads, omp, per; } oc_window_attention;
static const oc_window_attention OC_WINDOW_ATTENTION[] = {
    {OC_CPU, 1, 1, 1, 0, 0, 1, 1, 1, 1, 0},      /* N = 1: out = v */
    {OC_CPU, 3, 15, 3, 1, 1, 2, 7, 2, 2, 0},     /* N = 9, odd hd, 5 windows */
    {OC_CPU, 8, 24, 8, 0, 0, 1, 10, 2, 2, 0},    /* no mask, 3 windows */
    {OC_CPU, 8, 8, 8, 4, 1, 3, 10, 2, 2, 0},     /* more threads than windows */
    {OC_CPU, 16, 16, 8, 4, 1, 6, 30, 1, 1, 0},   /* classic SwinIR head */
    {OC_CPU, 16, 16, 8, 4, 1, 6, 30, 2, 2, 0},
    {OC_CPU, 16, 16, 16, 0, 0, 3, 10, 1, 1, 0},  /* N = 256, hd 10 */
    {OC_CPU, 32, 16, 16, 8, 1, 12, 30, 2, 2, 0}, /* the released LUA block */
    {OC_CPU, 32, 32, 16, 4, 1, 2, 30, 2, 2, 0},
    {OC_CPU, 16, 24, 8, 4, 1, 2, 10, 2, 4, 0},   /* scratch sized for threads: not more even if OpenMP would */
    {OC_HOST, 4, 4, 2, 0, 0, 1, 1, 1, 1, 1},     {OC_HOST, 4, 6, 2, 1, 1, 2, 3, 1, 1, 4},
    {OC_HOST, 9, 6, 3, 1, 1, 2, 2, 1, 1, 4},     {OC_HOST, 16, 24, 8, 4, 1, 3, 5, 1, 1, 5},
    {OC_HOST, 16, 16, 8, 0, 0, 2, 4, 1, 1, 4},   {OC_HOST, 32, 16, 16, 8, 1, 2, 6, 1, 1, 1},
    {OC_HOST, 32, 32, 16, 8, 1, 3, 4, 1, 1, 3}};

/* attention over all N positions, C channels (the VAE's), bq query rows x bk key rows a block.
 * CPU: attention_blocked_forward vs naive_attention, on data of `kind` (OC_AT_WIDE: scores
 * scaled by `wide`), misalign, threads, omp. HOST: channel-major, bq query rows a block from the
 * capacity, vs the CPU's and a double twin (bk, kind, wide, misalign, threads, omp unused). */
enum { OC_AT_RAND, OC_AT_WIDE, OC_AT_UP, OC_AT_DOWN };
typedef struct { int who, N, C, bq, bk, kind; float wide; int misalign, threads, omp; } oc_attention;
static const oc_attention OC_ATTENTION[] = {
    {OC_CPU, 1, 1, 1, 1, OC_AT_RAND, 0, 0, 1, 1},           /* out = v */
    {OC_CPU, 1, 32, 64, 64, OC_AT_RAND, 0, 1, 2, 2},        /* blocks > N */
    {OC_CPU, 7, 1, 1, 1, OC_AT_RAND, 0, 0, 1, 1},
    {OC_CPU, 7, 32, 17, 17, OC_AT_RAND, 0, 0, 2, 2},
    {OC_CPU, 7, 512, 1, 256, OC_AT_RAND, 0, 1, 2, 2},
    {OC_CPU, 64, 32, 64, 64, OC_AT_RAND, 0, 0, 1, 1},       /* one block */
    {OC_CPU, 64, 32, 17, 1, OC_AT_RAND, 0, 0, 2, 2},        /* bk = 1 */
    {OC_CPU, 64, 512, 1, 17, OC_AT_RAND, 0, 0, 2, 2},       /* bq = 1 */
    {OC_CPU, 64, 1, 256, 256, OC_AT_WIDE, 30, 0, 1, 1},     /* C = 1, |s| ~ 900 */
    {OC_CPU, 300, 32, 64, 64, OC_AT_RAND, 0, 1, 2, 2},      /* N % 64 != 0 */
    {OC_CPU, 300, 32, 17, 256, OC_AT_RAND, 0, 0, 2, 2},
    {OC_CPU, 300, 512, 256, 17, OC_AT_RAND, 0, 0, 2, 2},
    {OC_CPU, 300, 1, 1, 300, OC_AT_RAND, 0, 0, 1, 1},
    {OC_CPU, 300, 32, 64, 64, OC_AT_WIDE, 8, 0, 2, 2},      /* |s| ~ 300 */
    {OC_CPU, 300, 1, 17, 17, OC_AT_WIDE, 30, 1, 2, 2},
    {OC_CPU, 300, 32, 17, 1, OC_AT_UP, 0, 0, 2, 2},         /* 300 rescales */
    {OC_CPU, 300, 32, 64, 17, OC_AT_UP, 0, 0, 1, 1},
    {OC_CPU, 300, 32, 64, 17, OC_AT_DOWN, 0, 0, 2, 2},
    {OC_CPU, 1000, 32, 64, 256, OC_AT_RAND, 0, 0, 2, 2},
    {OC_CPU, 1000, 32, 17, 1, OC_AT_RAND, 0, 1, 2, 2},
    {OC_CPU, 1000, 32, 1, 64, OC_AT_WIDE, 4, 0, 2, 2},
    {OC_CPU, 1000, 512, 64, 64, OC_AT_RAND, 0, 0, 2, 2},    /* mid-block C */
    {OC_CPU, 1000, 512, 1000, 1000, OC_AT_RAND, 0, 0, 1, 1}, /* bq = bk = N */
    {OC_CPU, 1000, 128, 2000, 256, OC_AT_WIDE, 3, 1, 1, 1},  /* bq > N */
    {OC_CPU, 1000, 128, 256, 64, OC_AT_UP, 0, 0, 2, 2},
    {OC_CPU, 300, 32, 17, 64, OC_AT_RAND, 0, 0, 2, 4},      /* scratch sized for threads: not more even if OpenMP would */
    {OC_CPU, 300, 32, 17, 64, OC_AT_RAND, 0, 1, 1, 4},
    {OC_HOST, 1, 1, 1, 0, OC_AT_RAND, 0, 0, 1, 1},          {OC_HOST, 7, 4, 3, 0, OC_AT_RAND, 0, 0, 1, 1},
    {OC_HOST, 48, 8, 48, 0, OC_AT_RAND, 0, 0, 1, 1},        {OC_HOST, 100, 32, 7, 0, OC_AT_RAND, 0, 0, 1, 1},
    {OC_HOST, 257, 64, 64, 0, OC_AT_RAND, 0, 0, 1, 1}};

/* ==== the GPU's launch arithmetic and tiled decoding (HOST) ==================================== */

/* element grids of n threads: every index exactly once */
typedef struct { int who; int64_t n; } oc_grid;
static const oc_grid OC_GRID[] = {{OC_HOST, 1},   {OC_HOST, 2},    {OC_HOST, 31},   {OC_HOST, 255},  {OC_HOST, 256},
                                  {OC_HOST, 257}, {OC_HOST, 511},  {OC_HOST, 1000}, {OC_HOST, 65537}};

/* tiled decoding of an h x w latent in tiles of T with overlap ov: layout and the blend vs the
 * CPU's formula (OC_TOL_NORM) */
typedef struct { int who, h, w, T, ov; } oc_tiles;
static const oc_tiles OC_TILES[] = {{OC_HOST, 8, 6, 8, 2},   {OC_HOST, 8, 6, 4, 2},   {OC_HOST, 8, 6, 6, 3},
                                    {OC_HOST, 16, 12, 10, 4}, {OC_HOST, 33, 17, 8, 2}, {OC_HOST, 5, 40, 16, 4}};

#endif
