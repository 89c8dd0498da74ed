/* tiling.h — the geometry of tiled decoding, one definition for every device: tiles of T latent
 * pixels overlapping by ov along each axis, the last one flush with the edge; each decoded tile is
 * blended into the image with linear ramps over the overlaps on the sides that have a neighbour
 * (ov * f image pixels there, none at the image's edges). The weights are never 0, so every pixel
 * is covered, and the blend divides by their sum. Header-only and free of any device: static
 * inline functions for C (src/model/vae.c) and, qualified __host__ __device__ under nvcc, for the
 * CUDA kernels' bodies (src/cuda/bodies.cuh), so both devices compute the same bits. */
#ifndef LATUP_MODEL_TILING_H
#define LATUP_MODEL_TILING_H

#include <math.h>

#ifdef __CUDACC__
#define LATUP_TILE_FN static inline __host__ __device__
#else
#define LATUP_TILE_FN static inline
#endif

/* The extent of a tile along an axis of n latent pixels: T, or n when the axis is shorter. */
LATUP_TILE_FN int latup_tile_size(int n, int T) { return T < n ? T : n; }

/* Tiles along an axis of n latent pixels. */
LATUP_TILE_FN int latup_tile_count(int n, int T, int ov) { return n <= T ? 1 : (n - ov + (T - ov) - 1) / (T - ov); }

/* Tile t's origin along that axis: t steps of T - ov, the last tile moved back flush with the edge. */
LATUP_TILE_FN int latup_tile_origin(int t, int n, int T, int ov) {
    const int th = latup_tile_size(n, T), o = t * (T - ov);
    return o + th > n ? n - th : o;
}

/* The overlap, in image pixels (ovf = ov * f), on the low side (top, left) and on the high side
 * (bottom, right) of tile t of nt along an axis: 0 where there is no neighbour. */
LATUP_TILE_FN int latup_tile_overlap_lo(int t, int ovf) { return t > 0 ? ovf : 0; }
LATUP_TILE_FN int latup_tile_overlap_hi(int t, int nt, int ovf) { return t < nt - 1 ? ovf : 0; }

/* Linear ramp weight of position i in a tile of n (image pixels), with lo/hi overlap on its two
 * sides (0: no neighbour, full weight to the edge). Never 0. */
LATUP_TILE_FN float latup_tile_ramp(int i, int n, int lo, int hi) {
    float wgt = 1.0f;
    if (lo > 0 && i < lo) wgt = fminf(wgt, (i + 0.5f) / lo);
    if (hi > 0 && i >= n - hi) wgt = fminf(wgt, (n - i - 0.5f) / hi);
    return wgt;
}

#endif
