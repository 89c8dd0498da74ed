/* vae_blocks.h — what the VAE's two passes share (src/model/vae.c, the decoder; vae_enc.c, the
 * encoder): the stage indices, the ResnetBlock and the mid-block attention, the tiling's ops, and
 * the encoder's pass as the exec in vae.c counts and runs it. Internal. */
#ifndef LATUP_VAE_BLOCKS_H
#define LATUP_VAE_BLOCKS_H

#include "model/exec.h"
#include "model/vae_model.h"

/* stages: lx_stage() keeps their seconds (the decoder's up levels in decode order from V_UP, the
 * encoder's down levels in order from V_UP); each boundary is a step of the caller's progress,
 * every tile's stages too, so a tiled pass can be stopped inside a tile */
enum { V_MID, V_UP, V_OUT = V_UP + LATUP_VAE_MAX_LEVELS, V_TILE, V_STAGES };
_Static_assert(V_STAGES <= LX_MAX_STAGES, "the VAE's stages fit the exec's timers");

/* ResnetBlock: y = conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))) + shortcut(x). x in slot *hi; the
 * result's slot goes back in *hi. name: its dump name (and its convs' names under it). */
void vae_resnet_forward(lx_exec *e, const resnet *r, int *hi, int h, int w, const char *name);
/* AttnBlock over all h*w positions, x in slot *hi; its dumps are the DN_ATTN* names after `pre`
 * ("" for the decoder, "encoder." for the encoder). */
void vae_attn_forward(lx_exec *e, const attn_block *a, int *hi, int h, int w, const char *pre);

/* The tiling's ops (real pass only, like the lx_* ones). ztile [C, th, tw] = z [C, h, w] from
 * (y0, x0). */
void vae_copy_tile(lx_exec *e, float *ztile, const float *z, int C, int h, int w, int y0, int x0, int th, int tw);
/* out [Co, H, W] += wgt * otile [Co, oh, ow] at output pixel (y0*f, x0*f), wsum [H, W] += wgt: wgt
 * the product of the ramps over the top/bot/lft/rgt overlaps (0: no neighbour on that side). */
void vae_blend_tile(lx_exec *e, float *out, float *wsum, const float *otile, int Co, int H, int W, int oh, int ow,
                    int y0, int x0, int f, int top, int bot, int lft, int rgt);
/* out [Co, HW] /= wsum [HW] */
void vae_divide_weights(lx_exec *e, float *out, const float *wsum, int Co, size_t HW);

/* One exact pass of a tile: in [Cin, H, W] -> out (decode_one, the encoder's encode_one). */
typedef void (*vae_tile_fn)(lx_exec *e, const latup_vae *v, const float *in, int H, int W, float *out);
/* A tiled pass over an h x w latent: tiles of T latent pixels overlapping by ov (tiling.h's
 * geometry), each tile's input (of in [Cin, Hi, Wi], fi pixels per latent pixel: 1 for a latent,
 * f for an image, whose pixels past h*fi x w*fi no tile reads) copied out and run exactly by
 * one(), its output (Co channels, fo pixels per latent pixel)
 * blended into out [Co, h*fo, w*fo] with linear ramps over ov*fo output pixels, then divided by
 * the weights' sum. Approximate for the VAE: GroupNorm statistics and attention see one tile. */
void vae_tiled(lx_exec *e, const latup_vae *v, vae_tile_fn one, const float *in, int Cin, int Hi, int Wi, int fi,
               float *out, int Co, int fo, int h, int w, int T, int ov);

/* The encoder on one image img [3, H, W] -> z [zc, H/f, W/f]: exact (T == 0) or in latent tiles of
 * T overlapping by ov; the posterior's mean, or with sample a draw seeded by seed (eps indexed by
 * z's flat position in the batch, e->b the image). The same code counts and runs. */
void vae_encode_pass(lx_exec *e, const latup_vae *v, const float *img, int H, int W, float *z, int T, int ov,
                     int sample, uint64_t seed);
/* The encoder's line for the stage hook (lx_exec.timing_line; model: the VAE's config). */
void vae_encode_timings(const lx_exec *e, int64_t B);
/* eps of a sample: the standard normal at index n of the stream seeded by seed (vae_enc.c). */
double vae_normal(uint64_t seed, uint64_t n);

#endif
