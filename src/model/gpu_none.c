/* gpu_none.c — the GPU entry points (device.h) of a build without CUDA: every request for the
 * CUDA device fails with LATUP_E_DEVICE. A CUDA=1 build links src/cuda/ instead of this file. */
#include "common.h"
#include "model/device.h"

#define NO_CUDA "this latup was built without CUDA (make CUDA=1)"

latup_status latup_gpu_probe(void) { return latup_fail(LATUP_E_DEVICE, NO_CUDA); }

latup_status latup_gpu_lua_run(const latup_lua *m, int scale, const latup_tensor *x, latup_tensor *y,
                               const latup_run_opts *opts, latup_progress *progress) {
    (void)m, (void)scale, (void)x, (void)y, (void)opts, (void)progress;
    return latup_gpu_probe();
}

latup_status latup_gpu_vae_run(const latup_vae *v, const latup_tensor *z, latup_tensor *img, int tile, int overlap,
                               const latup_decode_opts *opts, latup_progress *progress) {
    (void)v, (void)z, (void)img, (void)tile, (void)overlap, (void)opts, (void)progress;
    return latup_gpu_probe();
}

void latup_gpu_lua_release(latup_lua *m) { (void)m; }
void latup_gpu_vae_release(latup_vae *v) { (void)v; }
