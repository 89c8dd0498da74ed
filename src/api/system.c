/* system.c — the numeric environment: which kernel set OpenBLAS runs, the vector ISA of those
 * kernels and of the CPU, and when the kernels are narrower than the CPU allows, why (a forced
 * OPENBLAS_CORETYPE, or an OpenBLAS that does not know the CPU), so --verbose and the benchmarks
 * can say so instead of leaving a user with a slow run and no reason. */
#define _POSIX_C_SOURCE 200809L
#include "api/system.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenBLAS 0.3.21's core names (driver/others/dynamic.c, corename[]) and SapphireRapids (0.3.22),
 * with the ISA of the sgemm kernels each runs (kernel/x86_64/KERNEL.<core>). Zen runs the Haswell
 * kernels; Steamroller and Excavator run Piledriver's FMA kernels, not AVX2 ones, even though
 * Excavator has AVX2. The pre-SSE2 names (Katmai, Coppermine, Athlon) are 32-bit builds only: a
 * 64-bit OpenBLAS runs Prescott's kernels in their place. The first name of each ISA is the one
 * latup_blas_core_for_isa suggests. */
static const struct {
    const char *core, *isa;
} CORES[] = {
    {"SkylakeX", LATUP_ISA_AVX512},   {"Cooperlake", LATUP_ISA_AVX512}, {"SapphireRapids", LATUP_ISA_AVX512},
    {"Haswell", LATUP_ISA_AVX2},      {"Zen", LATUP_ISA_AVX2},
    {"Sandybridge", LATUP_ISA_AVX},   {"Bulldozer", LATUP_ISA_AVX},     {"Piledriver", LATUP_ISA_AVX},
    {"Steamroller", LATUP_ISA_AVX},   {"Excavator", LATUP_ISA_AVX},
    {"Nehalem", LATUP_ISA_SSE2},      {"Prescott", LATUP_ISA_SSE2},     {"Core2", LATUP_ISA_SSE2},
    {"Penryn", LATUP_ISA_SSE2},       {"Dunnington", LATUP_ISA_SSE2},   {"Atom", LATUP_ISA_SSE2},
    {"Nano", LATUP_ISA_SSE2},         {"Northwood", LATUP_ISA_SSE2},    {"Banias", LATUP_ISA_SSE2},
    {"Opteron", LATUP_ISA_SSE2},      {"Opteron_SSE3", LATUP_ISA_SSE2}, {"Barcelona", LATUP_ISA_SSE2},
    {"Bobcat", LATUP_ISA_SSE2},       {"Katmai", LATUP_ISA_SSE},        {"Coppermine", LATUP_ISA_SSE},
    {"Athlon", LATUP_ISA_SSE},
};

const char *latup_blas_core_isa(const char *core) {
    for (size_t i = 0; core && i < sizeof CORES / sizeof CORES[0]; i++)
        if (!strcasecmp(core, CORES[i].core)) return CORES[i].isa;
    return LATUP_ISA_UNKNOWN;
}

const char *latup_blas_core_for_isa(const char *isa) {
    for (size_t i = 0; isa && i < sizeof CORES / sizeof CORES[0]; i++)
        if (!strcmp(isa, CORES[i].isa)) return CORES[i].core;
    return NULL;
}

/* 0 for unknown names, so that an unknown side never makes a verdict */
static int isa_rank(const char *isa) {
    static const char *const ORDER[] = {LATUP_ISA_SSE, LATUP_ISA_SSE2, LATUP_ISA_AVX, LATUP_ISA_AVX2, LATUP_ISA_AVX512};
    for (int i = 0; isa && i < (int)(sizeof ORDER / sizeof ORDER[0]); i++)
        if (!strcmp(isa, ORDER[i])) return i + 1;
    return 0;
}

int latup_isa_narrower(const char *blas_isa, const char *cpu_isa) {
    const int b = isa_rank(blas_isa), c = isa_rank(cpu_isa);
    return b > 0 && c > 0 && b < c;
}

/* "0.3.21" from "OpenBLAS 0.3.21 NO_LAPACKE ..."; "" when the config does not start that way */
static void blas_version(char *buf, size_t n, const char *config) {
    buf[0] = '\0';
    if (strncmp(config, "OpenBLAS ", 9)) return;
    snprintf(buf, n, "%.*s", (int)strcspn(config + 9, " "), config + 9);
}

void latup_system_explain(latup_system_info *s, const char *coretype) {
    snprintf(s->blas_isa, sizeof s->blas_isa, "%s", latup_blas_core_isa(s->blas_core));
    s->blas_narrower = latup_isa_narrower(s->blas_isa, s->cpu_isa);
    s->note[0] = '\0';
    if (!s->blas_narrower) return;
    const char *wide = latup_blas_core_for_isa(s->cpu_isa);
    if (!wide) wide = "?";
    /* latup_format: the variable's value is shown safely, whatever bytes it holds */
    if (coretype) {
        /* sites set it to work around an older OpenBLAS misdetecting a newer CPU; it outlives the
         * upgrade that made it unnecessary */
        latup_format(s->note, sizeof s->note,
                     "OPENBLAS_CORETYPE=%.40s is set: OpenBLAS runs its %s kernels (%s) on a CPU with %s; unset it, "
                     "or set OPENBLAS_CORETYPE=%s, for the wider kernels",
                     coretype, s->blas_core, s->blas_isa, s->cpu_isa, wide);
    } else {
        char version[32];
        blas_version(version, sizeof version, s->blas_config);
        latup_format(s->note, sizeof s->note,
                     "OpenBLAS%s%s does not recognise this CPU and runs its %s kernels (%s) on a CPU with %s; a newer "
                     "OpenBLAS, or OPENBLAS_CORETYPE=%s, may run wider kernels",
                     version[0] ? " " : "", version, s->blas_core, s->blas_isa, s->cpu_isa, wide);
    }
}

#if defined(__x86_64__) || defined(__i386__)
/* The state the OS saves on a context switch (XCR0): a CPU may have AVX-512 that the OS (or a
 * hypervisor) leaves disabled, and then its instructions fault. 0 without OSXSAVE. */
static unsigned long long os_xstate(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (unsigned long long)hi << 32 | lo;
}

static const char *cpu_isa(void) {
    __builtin_cpu_init();
    const unsigned long long x = os_xstate();
    const int ymm = (x & 0x6) == 0x6;     /* SSE and AVX state */
    const int zmm = (x & 0xe6) == 0xe6;   /* and opmask, ZMM0-15 upper halves, ZMM16-31 */
    if (zmm && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return LATUP_ISA_AVX512;
    if (ymm && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return LATUP_ISA_AVX2;
    if (ymm && __builtin_cpu_supports("avx")) return LATUP_ISA_AVX;
    if (__builtin_cpu_supports("sse2")) return LATUP_ISA_SSE2;
    return LATUP_ISA_UNKNOWN;
}

/* The brand string of CPUID 0x80000002-4 (what /proc/cpuinfo calls "model name"), spaces trimmed. */
static void cpu_name(char *buf, size_t n) {
    unsigned r[12] = {0}, max = __get_cpuid_max(0x80000000u, NULL);
    if (max < 0x80000004u) {
        snprintf(buf, n, "unknown");
        return;
    }
    for (unsigned i = 0; i < 3; i++) __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
    char s[49];
    memcpy(s, r, 48);
    s[48] = '\0';
    const char *p = s + strspn(s, " ");
    size_t len = strlen(p);
    while (len && p[len - 1] == ' ') len--;
    if (len) snprintf(buf, n, "%.*s", (int)len, p);
    else snprintf(buf, n, "unknown");
}
#else
static const char *cpu_isa(void) { return LATUP_ISA_UNKNOWN; }
static void cpu_name(char *buf, size_t n) { snprintf(buf, n, "unknown"); }
#endif

latup_status latup_system_info_get(latup_system_info *out) {
    LATUP_NEED(out);
    memset(out, 0, sizeof *out);
    const char *core = openblas_get_corename(), *config = openblas_get_config();
    snprintf(out->blas_core, sizeof out->blas_core, "%s", core && *core ? core : "unknown");
    snprintf(out->blas_config, sizeof out->blas_config, "%s", config && *config ? config : "unknown");
    snprintf(out->cpu_isa, sizeof out->cpu_isa, "%s", cpu_isa());
    cpu_name(out->cpu_name, sizeof out->cpu_name);
#ifdef _OPENMP
    /* not latup_get_threads(): that sets OpenBLAS to one thread, and a caller that lets OpenBLAS
     * thread its own calls (bench_attention) asks this without wanting that */
    out->threads = omp_get_max_threads();
#else
    out->threads = 1;
#endif
    latup_system_explain(out, getenv("OPENBLAS_CORETYPE"));
    return LATUP_OK;
}

void latup_system_info_print(const latup_system_info *s, FILE *f, const char *prefix) {
    if (!s || !f) return;
    if (!prefix) prefix = "";
    fprintf(f, "%sOpenBLAS %s kernels (%s), CPU %s, %d thread%s\n", prefix, s->blas_core, s->blas_isa, s->cpu_isa,
            s->threads, s->threads == 1 ? "" : "s");
    if (s->blas_narrower) fprintf(f, "%swarning: %s\n", prefix, s->note);
}
