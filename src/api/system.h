/* system.h — the pieces of latup_system_info_get (latup.h) that take their inputs as arguments:
 * which vector ISA an OpenBLAS kernel set uses, and the verdict and note drawn from the kernels
 * and the CPU, so tests can check them for CPUs and environments this machine does not have. */
#ifndef LATUP_SYSTEM_H
#define LATUP_SYSTEM_H

#include "common.h"

/* The ISA names of latup_system_info, narrowest first; "unknown" ranks below them all. */
#define LATUP_ISA_SSE "SSE" /* kernels only: the 32-bit pre-SSE2 cores */
#define LATUP_ISA_SSE2 "SSE2"
#define LATUP_ISA_AVX "AVX"
#define LATUP_ISA_AVX2 "AVX2"
#define LATUP_ISA_AVX512 "AVX-512"
#define LATUP_ISA_UNKNOWN "unknown"

/* The ISA of the kernels OpenBLAS runs under the core name `core` (openblas_get_corename(); any
 * case, so a TARGET build's "HASWELL" too): LATUP_ISA_*, "unknown" for a name not in the table
 * (another architecture's, or a core newer than the table). NULL -> "unknown". */
const char *latup_blas_core_isa(const char *core);

/* The first core name of the table whose kernels are of `isa` (AVX-512: "SkylakeX"), NULL if none:
 * what to set OPENBLAS_CORETYPE to for kernels of that width. */
const char *latup_blas_core_for_isa(const char *isa);

/* 1 when kernels of blas_isa are narrower than what cpu_isa allows; 0 when not, or when either is
 * unknown (no verdict without both). */
int latup_isa_narrower(const char *blas_isa, const char *cpu_isa);

/* Sets s->blas_isa, s->blas_narrower and s->note from s->blas_core, s->blas_config and s->cpu_isa,
 * with `coretype` the value of OPENBLAS_CORETYPE (NULL: unset). */
void latup_system_explain(latup_system_info *s, const char *coretype);

#endif
