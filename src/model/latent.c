/* latent.c — diffusion latent spaces: the per-family scaling/shift that turns a pipeline's latent
 * into a decoder-ready VAE latent, and unpacking FLUX's 2x2-packed token layout. */
#include "common.h"

#include <string.h>

static const latup_latent_family FAMILIES[] = {
    {"sd", 0.18215f, 0.0f, 4},       /* SD 1.x / 2.x */
    {"sdxl", 0.13025f, 0.0f, 4},
    {"sd3", 1.5305f, 0.0609f, 16},
    {"flux", 0.3611f, 0.1159f, 16},
};

const latup_latent_family *latup_latent_family_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0]; i++)
        if (strcmp(FAMILIES[i].name, name) == 0) return &FAMILIES[i];
    return NULL;
}

void latup_latent_to_vae(latup_tensor *x, const latup_latent_family *f) {
    const int64_t n = latup_tensor_numel(x);
    if (!f || n < 0 || (n > 0 && !x->data) || (uintptr_t)x->data % _Alignof(float)) return; /* not a tensor to convert: nothing to do */
    for (int64_t i = 0; i < n; i++) x->data[i] = x->data[i] / f->scaling + f->shift;
}

void latup_latent_from_vae(latup_tensor *x, const latup_latent_family *f) {
    const int64_t n = latup_tensor_numel(x);
    if (!f || n < 0 || (n > 0 && !x->data) || (uintptr_t)x->data % _Alignof(float)) return; /* as latup_latent_to_vae */
    for (int64_t i = 0; i < n; i++) x->data[i] = (x->data[i] - f->shift) * f->scaling;
}

latup_status latup_flux_unpack(const latup_tensor *packed, int h, int w, latup_tensor *out) {
    char s[96];
    LATUP_NEED(out);
    if (out == packed) return latup_fail(LATUP_E_USAGE, "%s: out and packed are the same tensor", __func__);
    memset(out, 0, sizeof *out);
    LATUP_NEED_TENSOR(packed);
    const int off = packed->ndim == 3 ? 1 : 0;
    if (packed->ndim != 2 && packed->ndim != 3)
        return latup_fail(LATUP_E_INPUT, "packed FLUX latent has shape %s, expected [B, tokens, 64] or [tokens, 64]",
                          latup_shape_str(s, sizeof s, packed->ndim, packed->shape));
    if (h < 2 || w < 2 || h % 2 || w % 2)
        return latup_fail(LATUP_E_USAGE, "--flux-packed %dx%d: the latent size must be even in both dimensions", h, w);
    const int64_t B = off ? packed->shape[0] : 1, T = packed->shape[off], D = packed->shape[off + 1];
    if (D % 4 != 0)
        return latup_fail(LATUP_E_INPUT, "packed FLUX latent has shape %s: the last dimension (%lld) must be 4 x channels",
                          latup_shape_str(s, sizeof s, packed->ndim, packed->shape), (long long)D);
    if (T != (int64_t)(h / 2) * (w / 2))
        return latup_fail(LATUP_E_INPUT, "packed FLUX latent has %lld tokens, a %dx%d latent packs into %lld "
                          "(give the latent size, i.e. the image size / 8)",
                          (long long)T, h, w, (long long)(h / 2) * (w / 2));
    const int C = (int)(D / 4);
    int64_t shape[4] = {B, C, h, w};
    latup_status st = latup_tensor_alloc(out, 4, shape);
    if (st != LATUP_OK) return st;
    for (int64_t b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    const int64_t tok = (int64_t)(y / 2) * (w / 2) + x / 2;
                    const int64_t ch = 4 * c + 2 * (y % 2) + (x % 2);
                    out->data[((b * C + c) * h + y) * (int64_t)w + x] = packed->data[(b * T + tok) * D + ch];
                }
    return LATUP_OK;
}
