/* lua_model.h — the LUA / SwinIR model's layer structs, the checkpoint's tensor name beside each
 * field, shared by the CPU forward pass (lua.c) and the CUDA one (src/cuda/). Everything here is
 * filled by latup_lua_load() and read-only afterwards. */
#ifndef LATUP_LUA_MODEL_H
#define LATUP_LUA_MODEL_H

#include "model/layers.h"

/* ---- layer structs, checkpoint names beside each field -------------------------------------- */

typedef struct {
    latup_norm norm1;           /* layers.i.residual_group.blocks.j.norm1 */
    latup_linear qkv;           /* ...attn.qkv  E -> 3E */
    const float *bias_table;    /* ...attn.relative_position_bias_table [(2ws-1)^2, nH] */
    float *rel_bias;            /* gathered once at load: [nH, N, N] */
    latup_linear proj;          /* ...attn.proj E -> E */
    latup_norm norm2;           /* ...norm2 */
    latup_linear fc1, fc2;      /* ...mlp.fc1 E -> hidden, ...mlp.fc2 hidden -> E */
    int num_heads, shift;       /* shift = ws/2 on odd blocks, else 0 */
} swin_block;

typedef struct {
    swin_block *blocks;         /* layers.i.residual_group.blocks.* */
    int depth;
    latup_conv conv;            /* layers.i.conv (3x3 E -> E, "1conv") */
} rstb;

/* A tail: LUA's heads.x{S}, or SwinIR's single upsampler (classic or direct). */
typedef struct {
    int scale;
    int n_up;                   /* upsample stages */
    int r[3];                   /* PixelShuffle factor of each stage */
    int has_before, has_last;   /* false for SwinIR's pixelshuffledirect */
    latup_conv conv_before;     /* heads.xS.conv_before.0 | conv_before_upsample.0: 3x3 E -> F, LeakyReLU */
    latup_conv up[3];           /* heads.xS.upsample.{0,2,4} | upsample.{0,2,4}: 3x3 -> r*r*F, PixelShuffle(r) */
    latup_conv conv_last;       /* heads.xS.conv_last | conv_last: 3x3 F -> C */
    char before_name[40], up_name[40], last_name[40]; /* dump names (checkpoint module names) */
} head;

/* The first member of a loaded model, cleared when it is freed: a handle of another type (a
 * latup_vae passed as a latup_lua, as a binding can) is refused, not read as a LUA. */
#define LATUP_LUA_TAG 0x3141554cu /* "LUA1" */
struct latup_lua {
    uint32_t tag;
    latup_lua_config cfg;
    latup_weights weights;      /* owns every parameter */
    latup_conv conv_first;      /* conv_first (3x3 C -> E) */
    latup_norm patch_norm;      /* patch_embed.norm */
    rstb layers[LATUP_MAX_LAYERS];
    latup_norm norm;            /* norm */
    latup_conv conv_after_body; /* conv_after_body (3x3 E -> E) */
    head heads[LATUP_MAX_SCALES];
    size_t resident;            /* bytes held once loaded: fetched tensors and the rel_bias tables */
    void *gpu;                  /* the device copy (src/cuda/), made on the first GPU call */
};

/* A prepared upscale of H x W latents (src/model/lua.c): checked and counted once by
 * latup_lua_exec_prepare (the arena plan into *p), run on a batch by latup_lua_exec_run (in: B
 * latents [C,H,W], out: B results [C,sH,sW]), as many times as wanted. opts must outlive it. */
typedef struct latup_lua_exec latup_lua_exec;
/* m is a loaded LUA model: LATUP_E_USAGE naming func and arg when it is NULL or another type. */
latup_status latup_lua_check(const latup_lua *m, const char *func, const char *arg);

latup_status latup_lua_exec_prepare(const latup_lua *m, int H, int W, int scale, const latup_run_opts *opts,
                                    latup_lua_exec **out, latup_lua_plan *p);
/* progress (may be NULL) hears of each step: latup_lua_exec_steps() per image, as counted */
latup_status latup_lua_exec_run(latup_lua_exec *x, const float *in, int64_t B, float *out, latup_progress *progress);
int64_t latup_lua_exec_steps(const latup_lua_exec *x);
void latup_lua_exec_free(latup_lua_exec *x);

#endif
