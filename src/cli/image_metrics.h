/* image_metrics.h — what `latup eval`, the demo (examples/demo/demo.c) and the tests measure and
 * resample pictures with: PSNR and SSIM of 8-bit RGB images, PyTorch's bicubic upsampling (x2, x4)
 * and its antialiased bicubic downscale (the paper's protocol: tools/train/data.py's downscale).
 * Header-only (C library only) so that the CLI, the demo and the golden tests
 * (tests/test_trained_golden.c, tests/test_image_metrics.c) run these very functions against their
 * Python twins (tools/train/metrics.py, torch). Images are interleaved 8-bit [H,W,3] unless said
 * otherwise. */
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

/* PyTorch's F.interpolate(x, scale_factor=s, mode="bicubic", align_corners=False) (no antialias):
 * Keys' cubic with A = -0.75, source coordinate (dst + 0.5) / s - 0.5, taps clamped to the
 * border. in: planar float [3,H,W]; out: planar float [3,sH,sW]. */
static inline float im_cubic_w(float t, int k) {
    const float A = -0.75f;
    /* distances of the four taps from the sample point: 1+t, t, 1-t, 2-t */
    const float d = k == 0 ? 1 + t : k == 1 ? t : k == 2 ? 1 - t : 2 - t;
    return d <= 1 ? ((A + 2) * d - (A + 3)) * d * d + 1 : ((A * d - 5 * A) * d + 8 * A) * d - 4 * A;
}

static inline int im_clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* s: 2 or 4 (1/s is exact in float, as torch's 1/scale_factor) */
static inline void im_bicubic_up(float *out, const float *in, int H, int W, int s) {
    const int Ho = s * H, Wo = s * W;
    const float inv = 1.0f / (float)s;
    for (int c = 0; c < 3; c++) {
        const float *src = in + (size_t)c * H * W;
        float *dst = out + (size_t)c * Ho * Wo;
        for (int y = 0; y < Ho; y++) {
            const float sy = (y + 0.5f) * inv - 0.5f;
            const int y0 = (int)floorf(sy);
            const float ty = sy - (float)y0;
            for (int x = 0; x < Wo; x++) {
                const float sx = (x + 0.5f) * inv - 0.5f;
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

/* ---- the antialiased bicubic downscale ------------------------------------------------------------
 * torch.nn.functional.interpolate(x, scale_factor=1/s, mode="bicubic", align_corners=False,
 * antialias=True), as torch 1.13's CPU kernel computes it (UpSampleKernel.cpp,
 * _compute_weights_aa): the output is floor(H/s) x floor(W/s); output pixel i of an axis takes the
 * input pixels [xmin, xmin + xsize) around the centre s (i + 0.5), xmin = max(trunc(centre - 2s +
 * 0.5), 0), xsize = min(trunc(centre + 2s + 0.5), n) - xmin, each weighted by Keys' cubic with
 * a = -0.5 (PIL's) at (j + xmin - centre + 0.5) / s, the weights divided by their sum (support 2s:
 * the filter stretched by s, which is the antialiasing). Separable: the width pass first, then the
 * height pass on its float result, each output a float sum in tap order. */
static inline double im_aa_cubic(double x) {
    const double a = -0.5;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

/* One axis: n inputs -> n / s outputs, at most IM_AA_TAPS(s) taps each: xmin[i], xsize[i] and
 * w[i * IM_AA_TAPS(s) + j]. */
#define IM_AA_TAPS(s) (4 * (s) + 1)
static inline void im_aa_weights(int n, int s, int *xmin, int *xsize, float *w) {
    const int m = n / s, taps = IM_AA_TAPS(s);
    const float scale = (float)s, support = 2.0f * (float)s, invscale = 1.0f / (float)s;
    for (int i = 0; i < m; i++) {
        const float centre = (float)(scale * (i + 0.5));
        long lo = (long)(centre - support + 0.5), hi = (long)(centre + support + 0.5);
        lo = lo < 0 ? 0 : lo;
        hi = hi > n ? n : hi;
        xmin[i] = (int)lo, xsize[i] = (int)(hi - lo);
        float *wi = w + (size_t)i * taps, total = 0;
        for (int j = 0; j < xsize[i]; j++) {
            const double d = (double)((float)(j + lo) - centre) + 0.5; /* int - float, then + 0.5 in double */
            total += wi[j] = (float)im_aa_cubic((double)(float)(d * (double)invscale));
        }
        for (int j = 0; j < xsize[i]; j++)
            if (total != 0) wi[j] /= total;
        for (int j = xsize[i]; j < taps; j++) wi[j] = 0;
    }
}

/* in: planar float [3,H,W]; out: planar float [3,H/s,W/s] (floor), not clamped. H, W >= s.
 * Returns 0, or -1 when out of memory. */
static inline int im_downscale_aa(float *out, const float *in, int H, int W, int s) {
    const int Ho = H / s, Wo = W / s, taps = IM_AA_TAPS(s);
    int *ix = malloc(sizeof(int) * 2 * ((size_t)Wo + Ho));
    float *wx = malloc(sizeof(float) * (size_t)taps * ((size_t)Wo + Ho)), *tmp = malloc(sizeof(float) * (size_t)H * Wo);
    if (!ix || !wx || !tmp) {
        free(ix), free(wx), free(tmp);
        return -1;
    }
    int *xmin = ix, *xsize = ix + Wo, *ymin = ix + 2 * Wo, *ysize = ymin + Ho;
    float *wy = wx + (size_t)taps * Wo;
    im_aa_weights(W, s, xmin, xsize, wx);
    im_aa_weights(H, s, ymin, ysize, wy);
    for (int c = 0; c < 3; c++) {
        const float *src = in + (size_t)c * H * W;
        float *dst = out + (size_t)c * Ho * Wo;
        for (int y = 0; y < H; y++) /* width pass */
            for (int x = 0; x < Wo; x++) {
                const float *p = src + (size_t)y * W + xmin[x], *wt = wx + (size_t)x * taps;
                float acc = p[0] * wt[0];
                for (int j = 1; j < xsize[x]; j++) acc += p[j] * wt[j];
                tmp[(size_t)y * Wo + x] = acc;
            }
        for (int y = 0; y < Ho; y++) /* height pass */
            for (int x = 0; x < Wo; x++) {
                const float *p = tmp + (size_t)ymin[y] * Wo + x, *wt = wy + (size_t)y * taps;
                float acc = p[0] * wt[0];
                for (int j = 1; j < ysize[y]; j++) acc += p[(size_t)j * Wo] * wt[j];
                dst[(size_t)y * Wo + x] = acc;
            }
    }
    free(ix), free(wx), free(tmp);
    return 0;
}

#endif
