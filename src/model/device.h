/* device.h — the GPU entry points of the forward passes. latup_lua_upscale() and
 * latup_vae_decode() hand a call to these when opts->device is LATUP_DEVICE_CUDA. A CUDA=1 build
 * implements them in src/cuda/; every other build links gpu_none.c, which answers
 * LATUP_E_DEVICE. Same contracts as the CPU functions (include/latup.h), same dump names. */
#ifndef LATUP_DEVICE_H
#define LATUP_DEVICE_H

#include "latup.h"

#include <stddef.h>

latup_status latup_gpu_lua_upscale(const latup_lua *m, const latup_tensor *x, int scale,
                                   latup_tensor *y, const latup_run_opts *opts);
latup_status latup_gpu_vae_decode(const latup_vae *v, const latup_tensor *z, latup_tensor *img,
                                  const latup_decode_opts *opts);

/* LATUP_OK if a CUDA device can run here; otherwise LATUP_E_DEVICE with the reason as the
 * message ("built without CUDA (make CUDA=1)", "no CUDA device: <driver message>"). */
latup_status latup_gpu_probe(void);

/* Free the device copy of a model's weights (uploaded on its first GPU call); called by
 * latup_lua_free() / latup_vae_free(). No-ops when nothing was uploaded. */
void latup_gpu_lua_release(latup_lua *m);
void latup_gpu_vae_release(latup_vae *v);

#endif
