/* test_util.h — helpers shared by the test programs: a seeded RNG, guarded float buffers
 * (canary floats before and after, body pre-filled with NaN so an unwritten element shows up),
 * and a reporter that prints one line per comparison and counts failures. Header-only. */
#ifndef LATUP_TEST_UTIL_H
#define LATUP_TEST_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* printf into one static buffer: the shape text of a report line, valid until the next call */
static inline const char *tu_shape(const char *fmt, ...) {
    static char buf[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return buf;
}

/* malloc that never returns NULL (nor for 0 bytes) */
static inline void *tu_xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) abort();
    return p;
}

/* ---- seeded RNG (splitmix64): the same seed gives the same data on every machine ---------- */
typedef struct {
    uint64_t s;
} tu_rng;

static inline tu_rng tu_rng_seed(uint64_t seed) {
    tu_rng r = {seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull};
    return r;
}

static inline uint64_t tu_next_u64(tu_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) with 53 random bits */
static inline double tu_next_double(tu_rng *r) { return (double)(tu_next_u64(r) >> 11) * 0x1.0p-53; }

static inline float tu_uniform(tu_rng *r, float lo, float hi) {
    return (float)(lo + (hi - lo) * tu_next_double(r));
}

/* standard normal (Box-Muller; one value per call keeps the stream simple) */
static inline float tu_normal(tu_rng *r) {
    double u1 = tu_next_double(r), u2 = tu_next_double(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static inline void tu_fill_uniform(tu_rng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = tu_uniform(r, lo, hi);
}

static inline void tu_fill_normal(tu_rng *r, float *x, size_t n, float mean, float std) {
    for (size_t i = 0; i < n; i++) x[i] = mean + std * tu_normal(r);
}

/* ---- guarded buffers (ggml test-backend-ops style) --------------------------------------------
 * [TU_GUARD canaries][body: n floats][TU_GUARD canaries]. The canary is a NaN with a payload no
 * arithmetic produces, so a kernel that reads past the end also tends to poison its output. The
 * body starts 64-byte aligned, or `misalign` floats past that (kernels must not assume alignment:
 * weights come from a file at arbitrary offsets). */
#define TU_GUARD 64
#define TU_CANARY_BITS 0x7FBADBADu /* signalling-NaN payload: never produced by arithmetic */
#define TU_FILL_BITS 0x7FC0FFEEu   /* quiet NaN the body starts as ("never written") */

typedef struct {
    float *p; /* the body */
    size_t n;
    float *raw;
    size_t misalign;
} tu_buf;

static inline float tu_bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t tu_float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline tu_buf tu_alloc_misaligned(size_t n, size_t misalign) {
    tu_buf b = {NULL, n, NULL, misalign};
    size_t total = n + 2 * TU_GUARD + misalign;
    size_t bytes = (total * sizeof(float) + 63) & ~(size_t)63;
    b.raw = aligned_alloc(64, bytes);
    if (!b.raw) {
        fprintf(stderr, "tu_alloc: out of memory (%zu floats)\n", n);
        abort();
    }
    const float canary = tu_bits_float(TU_CANARY_BITS), fill = tu_bits_float(TU_FILL_BITS);
    for (size_t i = 0; i < total; i++) b.raw[i] = canary;
    b.p = b.raw + TU_GUARD + misalign;
    for (size_t i = 0; i < n; i++) b.p[i] = fill;
    return b;
}

static inline tu_buf tu_alloc(size_t n) { return tu_alloc_misaligned(n, 0); }

/* true when every canary on both sides is intact; otherwise prints where the first bad one is */
static inline bool tu_guards_ok(const tu_buf *b, const char *what) {
    bool ok = true;
    const float *lo = b->raw, *hi = b->p + b->n;
    size_t nlo = TU_GUARD + b->misalign;
    for (size_t i = 0; i < nlo; i++)
        if (tu_float_bits(lo[i]) != TU_CANARY_BITS) {
            fprintf(stdout, "    guard: %s written %zu floats BEFORE its start\n", what, nlo - i);
            ok = false;
            break;
        }
    for (size_t i = 0; i < TU_GUARD; i++)
        if (tu_float_bits(hi[i]) != TU_CANARY_BITS) {
            fprintf(stdout, "    guard: %s written at index n+%zu (n = %zu)\n", what, i, b->n);
            ok = false;
            break;
        }
    return ok;
}

static inline void tu_free(tu_buf *b) {
    free(b->raw);
    b->raw = b->p = NULL;
}

/* ---- reporting ----------------------------------------------------------------------------- */
static int tu_n_checks, tu_n_failed;

/* Prints one line and counts it; returns ok so callers can chain. */
static inline bool tu_report(const char *kernel, const char *shape, double max_abs, double max_rel,
                             double tol, double worst_ratio, bool ok) {
    tu_n_checks++;
    if (!ok) tu_n_failed++;
    printf("%-24s %-52s max_abs %.2e max_rel %.2e tol %.2e err/tol %5.3f %s\n", kernel, shape,
           max_abs, max_rel, tol, worst_ratio, ok ? "OK" : "NOT OK");
    fflush(stdout);
    return ok;
}

/* got (fp32) against ref (double) with a per-element tolerance tol[i] (or one scalar tolerance
 * when tol == NULL). NaN anywhere fails. The reported tolerance is the one at the element with
 * the largest err/tol, the ratio itself is printed too. */
static inline bool tu_check(const char *kernel, const char *shape, const float *got,
                            const double *ref, const double *tol, double tol_scalar, size_t n) {
    double max_abs = 0, max_rel = 0, worst = 0, tol_at_worst = tol ? 0 : tol_scalar;
    size_t first_bad = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        double t = tol ? tol[i] : tol_scalar;
        double err = fabs((double)got[i] - ref[i]);
        if (!(err <= t)) { /* NaN lands here too */
            if (first_bad == (size_t)-1) first_bad = i;
        }
        if (isnan(err) || isinf(err)) {
            max_abs = max_rel = worst = INFINITY;
            tol_at_worst = t;
            continue;
        }
        if (err > max_abs) max_abs = err;
        double rel = err / fmax(fabs(ref[i]), 1e-30);
        if (err > 0 && rel > max_rel) max_rel = rel;
        double ratio = t > 0 ? err / t : (err > 0 ? INFINITY : 0);
        if (ratio > worst) {
            worst = ratio;
            tol_at_worst = t;
        }
    }
    bool ok = first_bad == (size_t)-1;
    tu_report(kernel, shape, max_abs, max_rel, tol_at_worst, worst, ok);
    if (!ok)
        printf("    first failure at index %zu: got %.9g want %.9g (tol %.3g)\n", first_bad,
               (double)got[first_bad], ref[first_bad], tol ? tol[first_bad] : tol_scalar);
    return ok;
}

/* Bitwise equality (layout ops, exact arithmetic). */
static inline bool tu_check_exact(const char *kernel, const char *shape, const float *got,
                                  const float *ref, size_t n) {
    size_t bad = 0, first_bad = (size_t)-1;
    double max_abs = 0;
    for (size_t i = 0; i < n; i++)
        if (tu_float_bits(got[i]) != tu_float_bits(ref[i])) {
            if (first_bad == (size_t)-1) first_bad = i;
            bad++;
            double e = fabs((double)got[i] - (double)ref[i]);
            max_abs = isnan(e) ? INFINITY : fmax(max_abs, e);
        }
    bool ok = bad == 0;
    tu_report(kernel, shape, max_abs, ok ? 0.0 : INFINITY, 0.0, ok ? 0.0 : INFINITY, ok);
    if (!ok)
        printf("    %zu of %zu elements differ; first at index %zu: got %.9g want %.9g\n", bad, n,
               first_bad, (double)got[first_bad], (double)ref[first_bad]);
    return ok;
}

/* A named pass/fail line for a property that is not a numeric comparison. */
static inline bool tu_check_true(const char *kernel, const char *what, bool ok) {
    return tu_report(kernel, what, 0.0, 0.0, 0.0, ok ? 0.0 : INFINITY, ok);
}

#endif
