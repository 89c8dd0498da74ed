/* half.h — exact conversions of IEEE binary16 (F16) and bfloat16 (BF16) bit patterns to fp32,
 * shared by the safetensors and .npy readers. Every half value is exactly representable in fp32,
 * so these are bit manipulations with no rounding. */
#ifndef LATUP_HALF_H
#define LATUP_HALF_H

#include <stdint.h>
#include <string.h>

static inline float latup_bits_to_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline float latup_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    if (exp == 0x1F) /* inf, or NaN keeping its payload (and so its quiet bit) */
        return latup_bits_to_float(sign | 0x7F800000u | (man << 13));
    if (exp != 0) /* normal: rebias the exponent from 15 to 127 */
        return latup_bits_to_float(sign | ((exp + 112) << 23) | (man << 13));
    /* zero or subnormal: man * 2^-24, exact because man < 2^10 and the result is a normal fp32 */
    float mag = (float)man * 0x1p-24f;
    return sign ? -mag : mag;
}

/* bfloat16 is the top half of an fp32. */
static inline float latup_bf16_to_float(uint16_t b) { return latup_bits_to_float((uint32_t)b << 16); }

#endif
