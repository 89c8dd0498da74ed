/* fastmath.h — exp and erf for fp32 written so the compiler vectorises them (no libm call, no
 * branch), and the activations built on them. They are the kernels' default; with
 * latup_set_exact_math(1) the kernels use libm's expf/erff instead. Error bounds, measured
 * against a double-precision twin in tests/test_kernels.c over the whole fp32 range, are in
 * docs/testing.md ("Approximations").
 *  - exp: Cody-Waite reduction x = n ln2 + r (|r| <= ln2/2), Cephes' degree-6 polynomial for
 *    e^r, 2^n put in the exponent bits. Inputs below ln(FLT_MIN) give 0 (libm: a subnormal below
 *    1.2e-38), above ln(FLT_MAX) +inf, NaN stays NaN.
 *  - erf: for |x| < 0.9 its Taylor series to x^23 (relative error at rounding level, so small
 *    arguments keep their ulps); above, Abramowitz & Stegun 7.1.26, 1 - t P(t) e^(-x^2) with
 *    t = 1/(1 + 0.3275911 |x|): absolute error below 1.5e-7 plus rounding (PyTorch's vectorised
 *    CPU erf uses that form everywhere). Both are computed and one selected, so no branch. */
#ifndef LATUP_FASTMATH_H
#define LATUP_FASTMATH_H

#include "ops/runtime.h" /* latup_exact_math(): which of the two forms the kernels use */

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __FMA__
#define LATUP_FMA(a, b, c) fmaf(a, b, c)
#else
#define LATUP_FMA(a, b, c) ((a) * (b) + (c))
#endif


/* The shared core of the two exps: for xc in [ln(FLT_MIN), ln(FLT_MAX)] returns e^r, with
 * x = n ln2 + r, and *tb, whose bits are 0x4B400000 + n. */
static inline float latup_exp_core(float xc, int32_t *tb) {
    /* n = rint(x / ln2): adding 1.5 * 2^23 rounds to an integer in the low mantissa bits */
    const float shift = 12582912.0f;
    const float t = LATUP_FMA(xc, 1.44269504088896341f, shift);
    const float n = t - shift;
    float r = LATUP_FMA(n, -0.693359375f, xc); /* ln2 = 0.693359375 - 2.12194440e-4, the high */
    r = LATUP_FMA(n, 2.12194440e-4f, r);       /* part exact, so r is exact to the last bits */
    float p = 1.9875691500e-4f;
    p = LATUP_FMA(p, r, 1.3981999507e-3f);
    p = LATUP_FMA(p, r, 8.3334519073e-3f);
    p = LATUP_FMA(p, r, 4.1665795894e-2f);
    p = LATUP_FMA(p, r, 1.6666665459e-1f);
    p = LATUP_FMA(p, r, 5.0000001201e-1f);
    memcpy(tb, &t, sizeof *tb);
    return LATUP_FMA(p * r, r, r) + 1.0f;
}

static inline float latup_exp_fast(float x) {
    const float lo = -87.33654475f;  /* ln(FLT_MIN) */
    const float hi = 88.72283905f;   /* ln(FLT_MAX) */
    const float xc = x < lo ? lo : (x > hi ? hi : x);
    int32_t tb;
    const float y = latup_exp_core(xc, &tb);
    /* 2^n is (n + 127) << 23. At xc = hi, n = 128: split the scale in two halves so the product
     * stays finite where it should */
    const int32_t ni = tb - 0x4B400000;
    const int32_t h1 = (ni >> 1) + 127, h2 = ni - (ni >> 1) + 127;
    float s1, s2;
    /* unsigned: a NaN input makes ni garbage (the result is NaN anyway), and must not overflow */
    const uint32_t b1 = (uint32_t)h1 << 23, b2 = (uint32_t)h2 << 23;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    const float v = (y * s1) * s2;
    return x < lo ? 0.0f : (x > hi ? INFINITY : v);
}

/* e^x for x <= 0 only (a softmax's x - max): latup_exp_fast less what that domain never needs
 * (the upper clamp, and 2^n in two halves, which only n = 128 needs). For x <= 0 it returns the
 * same bits as latup_exp_fast (tests/test_kernels.c checks every 97th float <= 0); for x > 0
 * the result is undefined. */
static inline float latup_exp_fast_nonpos(float x) {
    const float lo = -87.33654475f; /* ln(FLT_MIN): below it 0, as latup_exp_fast */
    int32_t tb;
    const float y = latup_exp_core(x < lo ? lo : x, &tb);
    /* n >= -126 here, so 2^n = (n + 127) << 23 is a normal float */
    const uint32_t b = (uint32_t)(tb - 0x4B400000 + 127) << 23;
    float s;
    memcpy(&s, &b, sizeof s);
    return x < lo ? 0.0f : y * s;
}

static inline float latup_erf_fast(float x) {
    const float a = fabsf(x);
    /* small |x|: erf(x) = 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1)) */
    const float z = a < 0.9f ? a * a : 0.0f;
    float q = -1.22905553017179263e-09f;
    q = LATUP_FMA(q, z, 1.48071928158792176e-08f);
    q = LATUP_FMA(q, z, -1.63658446912349245e-07f);
    q = LATUP_FMA(q, z, 1.64621143658892463e-06f);
    q = LATUP_FMA(q, z, -1.49256503584062504e-05f);
    q = LATUP_FMA(q, z, 1.20553329817896636e-04f);
    q = LATUP_FMA(q, z, -8.54832702345085225e-04f);
    q = LATUP_FMA(q, z, 5.22397762544218793e-03f);
    q = LATUP_FMA(q, z, -2.68661706451312522e-02f);
    q = LATUP_FMA(q, z, 1.12837916709551261e-01f);
    q = LATUP_FMA(q, z, -3.76126389031837538e-01f);
    q = LATUP_FMA(q, z, 1.12837916709551256e+00f);
    const float small = a * q;
    /* the rest: A&S 7.1.26 */
    const float t = 1.0f / LATUP_FMA(0.3275911f, a, 1.0f);
    float p = 1.061405429f;
    p = LATUP_FMA(p, t, -1.453152027f);
    p = LATUP_FMA(p, t, 1.421413741f);
    p = LATUP_FMA(p, t, -0.284496736f);
    p = LATUP_FMA(p, t, 0.254829592f);
    const float large = 1.0f - p * t * latup_exp_fast(-a * a);
    return copysignf(a < 0.9f ? small : large, x);
}

/* x * sigmoid(x) = x / (1 + e^-x); for x < -88.7 e^-x is +inf and the result -0, never NaN. */
static inline float latup_silu_fast(float x) { return x / (1.0f + latup_exp_fast(-x)); }
static inline float latup_silu_exact(float x) { return x / (1.0f + expf(-x)); }

/* Exact GELU, x/2 (1 + erf(x / sqrt 2)). */
static inline float latup_gelu_fast(float x) { return 0.5f * x * (1.0f + latup_erf_fast(x * 0.70710678118654752440f)); }
static inline float latup_gelu_exact(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f)); }

#endif
