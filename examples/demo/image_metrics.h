/* image_metrics.h — what the demo (examples/demo/demo.c) measures pictures with: PSNR and SSIM of 8-bit
 * RGB images, and PyTorch's bicubic x2 upsampling. Header-only so that the golden test
 * (tests/test_trained_golden.c) checks these very functions against their Python twins
 * (tools/train/metrics.py). Images are interleaved 8-bit [H,W,3] unless said otherwise. */
#ifndef LATUP_IMAGE_METRICS_H
#define LATUP_IMAGE_METRICS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* PSNR in dB over all samples of two [H,W,3] byte images (peak 255); 99 dB for identical ones. */
static inline double im_psnr(const uint8_t *a, const uint8_t *b, int H, int W) {
    double se = 0;
    const size_t n = (size_t)H * W * 3;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)a[i] - b[i];
        se += d * d;
    }
    return se == 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 / (se / (double)n));
}

/* SSIM (Wang et al. 2004) as their reference code: an 11x11 Gaussian window (sigma 1.5,
 * normalised), C1 = (0.01 L)^2, C2 = (0.03 L)^2 with L = 255, statistics over the 'valid'
 * positions only (no padding), the map averaged over positions and then over R, G, B.
 * Returns NAN for images smaller than the window or when out of memory. */
#define IM_SSIM_WIN 11
static inline double im_ssim(const uint8_t *a, const uint8_t *b, int H, int W) {
    if (H < IM_SSIM_WIN || W < IM_SSIM_WIN) return NAN;
    double g[IM_SSIM_WIN], gs = 0;
    for (int i = 0; i < IM_SSIM_WIN; i++) {
        const double x = i - IM_SSIM_WIN / 2;
        gs += g[i] = exp(-x * x / (2 * 1.5 * 1.5));
    }
    for (int i = 0; i < IM_SSIM_WIN; i++) g[i] /= gs;
    const int Wv = W - IM_SSIM_WIN + 1, Hv = H - IM_SSIM_WIN + 1;
    /* horizontal pass of the five moments (x, y, xx, yy, xy) for every row, valid columns */
    double *h = malloc(sizeof(double) * 5 * (size_t)H * Wv);
    if (!h) return NAN;
    const double C1 = (0.01 * 255) * (0.01 * 255), C2 = (0.03 * 255) * (0.03 * 255);
    double total = 0;
    for (int c = 0; c < 3; c++) {
        for (int y = 0; y < H; y++)
            for (int x = 0; x < Wv; x++) {
                double m[5] = {0};
                for (int k = 0; k < IM_SSIM_WIN; k++) {
                    const size_t o = ((size_t)y * W + x + k) * 3 + c;
                    const double p = a[o], q = b[o];
                    m[0] += g[k] * p, m[1] += g[k] * q;
                    m[2] += g[k] * p * p, m[3] += g[k] * q * q, m[4] += g[k] * p * q;
                }
                for (int j = 0; j < 5; j++) h[((size_t)j * H + y) * Wv + x] = m[j];
            }
        double sum = 0;
        for (int y = 0; y < Hv; y++)
            for (int x = 0; x < Wv; x++) {
                double m[5] = {0};
                for (int k = 0; k < IM_SSIM_WIN; k++)
                    for (int j = 0; j < 5; j++) m[j] += g[k] * h[((size_t)j * H + y + k) * Wv + x];
                const double mx = m[0], my = m[1];
                const double vx = m[2] - mx * mx, vy = m[3] - my * my, cxy = m[4] - mx * my;
                sum += (2 * mx * my + C1) * (2 * cxy + C2) / ((mx * mx + my * my + C1) * (vx + vy + C2));
            }
        total += sum / ((double)Hv * Wv);
    }
    free(h);
    return total / 3;
}

/* 8-bit interleaved RGB -> planar float [3,H,W] k/255, as latup reads a PNG (the input of the
 * bicubic and pixel paths). */
static inline void im_planar_from_bytes(float *out, const uint8_t *rgb, int H, int W) {
    const size_t n = (size_t)H * W;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < n; i++) out[(size_t)c * n + i] = (float)rgb[i * 3 + c] / 255.0f;
}

/* PyTorch's F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False) (no antialias):
 * Keys' cubic with A = -0.75, source coordinate (dst + 0.5) / 2 - 0.5, taps clamped to the
 * border. in: planar float [3,H,W]; out: planar float [3,2H,2W]. */
static inline float im_cubic_w(float t, int k) {
    const float A = -0.75f;
    /* distances of the four taps from the sample point: 1+t, t, 1-t, 2-t */
    const float d = k == 0 ? 1 + t : k == 1 ? t : k == 2 ? 1 - t : 2 - t;
    return d <= 1 ? ((A + 2) * d - (A + 3)) * d * d + 1 : ((A * d - 5 * A) * d + 8 * A) * d - 4 * A;
}

static inline int im_clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static inline void im_bicubic_x2(float *out, const float *in, int H, int W) {
    const int Ho = 2 * H, Wo = 2 * W;
    for (int c = 0; c < 3; c++) {
        const float *src = in + (size_t)c * H * W;
        float *dst = out + (size_t)c * Ho * Wo;
        for (int y = 0; y < Ho; y++) {
            const float sy = (y + 0.5f) * 0.5f - 0.5f;
            const int y0 = (int)floorf(sy);
            const float ty = sy - (float)y0;
            for (int x = 0; x < Wo; x++) {
                const float sx = (x + 0.5f) * 0.5f - 0.5f;
                const int x0 = (int)floorf(sx);
                const float tx = sx - (float)x0;
                float acc = 0;
                for (int i = 0; i < 4; i++) {
                    const float *row = src + (size_t)im_clampi(y0 - 1 + i, 0, H - 1) * W;
                    float r = 0;
                    for (int j = 0; j < 4; j++) r += im_cubic_w(tx, j) * row[im_clampi(x0 - 1 + j, 0, W - 1)];
                    acc += im_cubic_w(ty, i) * r;
                }
                dst[(size_t)y * Wo + x] = acc;
            }
        }
    }
}

#endif
