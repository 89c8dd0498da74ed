/* device.h — the GPU entry points of the forward passes. A prepared call (src/api/call.c) hands
 * its compute to these when its device is LATUP_DEVICE_CUDA, after every check and the plan: the
 * input is valid and finite, the output allocated with its shape, the tiles chosen. A CUDA=1
 * build implements them in src/cuda/; every other build links gpu_none.c, which answers
 * LATUP_E_DEVICE. Same dump names as the CPU passes. */
#ifndef LATUP_DEVICE_H
#define LATUP_DEVICE_H

#include "common.h"

#include <stddef.h>

/* x [B,C,H,W] or [C,H,W] -> y (allocated by the caller: [B,C',sH,sW]). progress (may be NULL)
 * hears of the same steps as the CPU pass reports (lx_stage's boundaries, src/model/lua.c). */
latup_status latup_gpu_lua_run(const latup_lua *m, int scale, const latup_tensor *x, latup_tensor *y,
                               const latup_run_opts *opts, latup_progress *progress);
/* z -> img (allocated by the caller), exact (tile 0) or in tiles of `tile` with `overlap`;
 * progress as the CPU decode's (src/model/vae.c) */
latup_status latup_gpu_vae_run(const latup_vae *v, const latup_tensor *z, latup_tensor *img, int tile, int overlap,
                               const latup_decode_opts *opts, latup_progress *progress);

/* LATUP_OK if a CUDA device can run here; otherwise LATUP_E_DEVICE with the reason as the
 * message ("built without CUDA (make CUDA=1)", "no CUDA device: <driver message>"). */
latup_status latup_gpu_probe(void);

/* Free the device copy of a model's weights (uploaded on its first GPU call); called by
 * latup_lua_free() / latup_vae_free(). No-ops when nothing was uploaded. */
void latup_gpu_lua_release(latup_lua *m);
void latup_gpu_vae_release(latup_vae *v);

#endif
