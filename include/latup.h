/* latup.h — public API of liblatup, a CPU reference implementation of LUA, the Latent Upscaler
 * Adapter (arXiv 2511.10629). Every function that can fail returns a latup_status; the message
 * for the last failure on the calling thread is latup_last_error(). The library never exits. */
#ifndef LATUP_H
#define LATUP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* liblatup.so is built with -fvisibility=hidden: only what is marked LATUP_API is exported. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define LATUP_API __attribute__((visibility("default")))
#else
#define LATUP_API
#endif

/* ---- version: these macros are the headers', latup_version() the linked library's -------------- */
#define LATUP_VERSION_MAJOR 0
#define LATUP_VERSION_MINOR 1
#define LATUP_VERSION_PATCH 0
#define LATUP_VERSION_STRING "0.1.0"
LATUP_API const char *latup_version(void); /* "0.1.0" */

/* ---- arguments ---------------------------------------------------------------------------------
 * The contract every function below keeps, whatever a caller (C, ctypes, another binding) passes:
 * - A pointer argument is required unless its comment says "may be NULL". A required pointer that
 *   is NULL is LATUP_E_USAGE, the message naming the function and the argument; nothing is
 *   dereferenced. Functions returning no status do nothing on NULL (the _free functions, the
 *   _print functions) or return NULL, -1 or "unknown" as their comment says.
 * - A tensor argument is checked before anything indexes or formats it: ndim 1 to
 *   LATUP_MAX_DIMS, no negative dimension, an element count whose bytes fit size_t, data aligned
 *   for float, and data not NULL when it holds elements (latup_prepare alone takes a shape without
 *   data). Otherwise
 *   LATUP_E_USAGE naming the tensor. A valid tensor of the wrong shape for the call is
 *   LATUP_E_INPUT, as a wrong file is.
 * - An enum argument (or enum field of an options struct) outside its declared values is
 *   LATUP_E_USAGE; the _name functions return "unknown" for it.
 * - A model handle must come from its own loader and not be freed yet: a latup_vae passed where a
 *   latup_lua goes (or the reverse) is LATUP_E_USAGE (each handle carries a type tag; a freed one
 *   usually fails the same way, but a freed handle is undefined behaviour all the same).
 * - An output tensor is never also an input of the same call (LATUP_E_USAGE).
 * - Every output a call fills (a tensor, a plan, an info struct) is cleared once its pointer is
 *   checked: after a failure it holds zeros (an empty tensor), never what was there before.
 * - Models are read-only during calls: any number of threads may run calls on one model at once;
 *   freeing it while a call runs is the caller's error (the Python package waits for the calls).
 * - LATUP_E_INTERNAL is never the answer to a caller's mistake: it means latup broke its own
 *   invariant, and is a bug to report. */

/* ---- status codes (the CLI uses them as exit codes) ------------------------------------------ */
typedef enum {
    LATUP_OK = 0,
    LATUP_E_USAGE = 1,    /* bad arguments or an unsupported request (e.g. scale 3 on a x2/x4 model) */
    LATUP_E_INPUT = 2,    /* bad input file or data: malformed, wrong shape, missing tensor, NaN */
    LATUP_E_NOMEM = 3,    /* an allocation failed or a request exceeds the memory limit */
    LATUP_E_IO = 4,       /* the OS refused: cannot open, read, write or rename a file */
    LATUP_E_INTERNAL = 5, /* a bug in latup */
    LATUP_E_DEVICE = 6,   /* the requested device cannot run: no CUDA in this build, no GPU, or
                           * the driver refused */
    LATUP_E_CANCELLED = 7, /* the caller's progress callback asked to stop */
} latup_status;

LATUP_API const char *latup_last_error(void);         /* one line, no trailing newline */
LATUP_API const char *latup_status_name(latup_status st);

/* ---- tensors ---------------------------------------------------------------------------------
 * Dense, contiguous, row-major fp32. Images and feature maps are NCHW ([B,C,H,W], or [C,H,W] for
 * one image); token sequences are [L, C] with token index l = h*W + w, as PyTorch's
 * x.flatten(2).transpose(1, 2). */
#define LATUP_MAX_DIMS 4
typedef struct {
    float *data;
    int ndim;
    int64_t shape[LATUP_MAX_DIMS];
} latup_tensor;

/* The element count; -1 for NULL, a rank outside 1..LATUP_MAX_DIMS, a negative dimension, or a
 * count whose fp32 bytes overflow. */
LATUP_API int64_t latup_tensor_numel(const latup_tensor *t);
/* Zeroed. ndim outside 1..LATUP_MAX_DIMS or a negative dimension: LATUP_E_USAGE; a size that
 * overflows: LATUP_E_NOMEM. On failure *t is empty (t may not be NULL). */
LATUP_API latup_status latup_tensor_alloc(latup_tensor *t, int ndim, const int64_t *shape);
LATUP_API void latup_tensor_free(latup_tensor *t); /* t may be NULL */
/* "[2,16,32,32]" into buf; returns buf ("" when buf is NULL or n is 0). Reads shape[0..ndim-1]
 * only when ndim is 0..LATUP_MAX_DIMS; any other ndim prints "[rank 7]". */
LATUP_API const char *latup_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);

/* ---- .npy files (latents in and out) ------------------------------------------------------- */
/* Reads '<f4', '<f2', '<f8' or bfloat16 (converted to fp32), C order, 1 to 4 dims. */
LATUP_API latup_status latup_npy_read(const char *path, latup_tensor *t);
/* Writes '<f4' v1.0 through a temporary file renamed into place: never a partial file. */
LATUP_API latup_status latup_npy_write(const char *path, const latup_tensor *t);

/* ---- latent spaces (docs/spec/lua.md, "Latent spaces") ---------------------------------
 * A diffusion pipeline's latent z becomes a decoder-ready VAE latent as z / scaling + shift. */
typedef struct {
    const char *name;  /* "sd", "sdxl", "sd3", "flux" */
    float scaling, shift;
    int channels;
} latup_latent_family;

LATUP_API const latup_latent_family *latup_latent_family_find(const char *name); /* NULL if unknown or NULL */
/* In place: x = x / scaling + shift. Nothing happens for NULL, or a tensor the argument rules
 * refuse (this function has no status to say so). */
LATUP_API void latup_latent_to_vae(latup_tensor *x, const latup_latent_family *f);
/* FLUX's packed transformer tokens [B, (h/2)*(w/2), 4C] (or [(h/2)*(w/2), 4C]) -> [B, C, h, w],
 * h x w the latent size (image size / 8), as diffusers' _unpack_latents:
 * out[b, c, 2y+i, 2x+j] = in[b, y*(w/2)+x, 4c+2i+j]. out is allocated here. */
LATUP_API latup_status latup_flux_unpack(const latup_tensor *packed, int h, int w, latup_tensor *out);

/* ---- threads --------------------------------------------------------------------------------- */
LATUP_API void latup_set_threads(int n); /* OpenMP threads for latup's tile loops (OpenBLAS stays at one
                                * thread); n <= 0 means all cores. If the OS refuses to create that
                                * many threads (ulimit), libgomp itself ends the process: latup cannot
                                * catch it, so keep n near the core count. */
LATUP_API int latup_get_threads(void);

/* ---- math mode ---------------------------------------------------------------------------------
 * By default the kernels use fast paths whose error is bounded and documented (docs/testing.md,
 * "Approximations"): vectorised exp and erf. latup_set_exact_math(1) switches the whole process
 * to the plain reference arithmetic (libm's expf and erff). Not thread-safe against a concurrent
 * upscale or decode. */
LATUP_API void latup_set_exact_math(int on);

/* ---- the LUA model ----------------------------------------------------------------------------- */
#define LATUP_MAX_LAYERS 16
#define LATUP_MAX_SCALES 4

/* The same SwinIR trunk carries two kinds of tail: LUA's multi-scale heads (heads.x2, heads.x4)
 * or one classic SwinIR upsampler (conv_before_upsample/upsample/conv_last: "pixelshuffle", or
 * upsample.0 alone: "pixelshuffledirect"), the paper's pixel-space baseline. */
typedef enum {
    LATUP_TAIL_LUA_HEADS = 0,
    LATUP_TAIL_PIXELSHUFFLE = 1,
    LATUP_TAIL_PIXELSHUFFLEDIRECT = 2,
} latup_tail;

typedef struct {
    latup_tail tail;                     /* LUA heads, or a SwinIR upsampler */
    int in_chans, out_chans;             /* C: latent channels (conv_first in, conv_last out) */
    int embed_dim;                       /* E */
    int num_layers;                      /* number of RSTBs */
    int depths[LATUP_MAX_LAYERS];        /* Swin blocks per RSTB */
    int num_heads[LATUP_MAX_LAYERS];     /* attention heads per RSTB */
    int window_size;                     /* ws; shift ws/2 on odd blocks */
    int mlp_hidden;                      /* fc1 width (mlp_ratio * E) */
    int head_feat;                       /* F: head width after conv_before (0: direct tail) */
    int n_scales;                        /* heads present, ascending */
    int scales[LATUP_MAX_SCALES];        /* e.g. {2, 4} */
    float ln_eps;                        /* LayerNorm eps (1e-5) */
    int has_mean;                        /* 3-channel (RGB) models: subtract mean, add it back */
    float mean[3];                       /* (0.4488, 0.4371, 0.4040), SwinIR's DIV2K mean */
    int64_t n_params;                    /* parameters (buffers excluded) */
} latup_lua_config;

typedef struct latup_lua latup_lua;

/* Loads a LUA (or SwinIR) checkpoint: safetensors or PyTorch .pth, optionally gzip-compressed,
 * told apart by content. The config is inferred from tensor names and shapes; a missing tensor,
 * a wrong shape or a tensor the model does not have is an error naming it. */
LATUP_API latup_status latup_lua_load(const char *path, latup_lua **out);
LATUP_API void latup_lua_free(latup_lua *m);
LATUP_API const latup_lua_config *latup_lua_get_config(const latup_lua *m); /* NULL for NULL */
LATUP_API const char *latup_tail_name(latup_tail t); /* "lua-heads", "pixelshuffle", "pixelshuffledirect" */

/* Called at every layer boundary of the forward pass with the tensor of one batch element
 * (names and shapes: docs/architecture.md). The tensor is only valid during the call. */
typedef void (*latup_dump_fn)(void *user, const char *name, const latup_tensor *t, int batch);

/* Progress of a long call: called after each step (an RSTB or head of the LUA, a decoder stage, a
 * tile), with the steps done so far and the total steps of this call (a latup_execute counts the
 * upscale's and the decode's steps together). Return non-zero to stop: the call returns
 * LATUP_E_CANCELLED ("cancelled by the progress callback") and produces no output.
 * It is called on the thread that made the call, between steps (never from OpenMP's workers);
 * done rises by one step at a time (by more only when a GPU pass ends short of the count) and
 * reaches total when the call succeeds. */
typedef int (*latup_progress_fn)(void *user, int64_t done, int64_t total);

/* Where the forward pass runs. LATUP_DEVICE_CUDA needs a build with CUDA=1 and a GPU; otherwise
 * the call fails with LATUP_E_DEVICE and a message saying which is missing. */
typedef enum {
    LATUP_DEVICE_CPU = 0,
    LATUP_DEVICE_CUDA = 1,
} latup_device;

typedef struct {
    latup_dump_fn dump;  /* NULL: no dumps */
    void *dump_user;
    int verbose;         /* print the memory plan and per-stage timings to stderr */
    int progress;        /* unused: the library prints no progress (on_progress tells the caller) */
    latup_device device; /* LATUP_DEVICE_CPU (0) by default */
    int conv_band_rows;  /* 0: automatic. n > 0: im2col bands of at most n rows, for tests that
                          * force every conv to split into several bands (same code path) */
    latup_progress_fn on_progress; /* NULL: none */
    void *progress_user;
} latup_run_opts;

/* ---- memory plans ---------------------------------------------------------------------------
 * A plan is what the forward pass takes from its arena, found by running the pass in counting
 * mode: each named buffer (its largest take and how often it is taken per image) and the arena's
 * size, the high-water mark of the takes. Weights and the output tensor come on top. */
#define LATUP_PLAN_MAX_TAKES 32
typedef struct {
    char name[48];
    size_t bytes;        /* the largest take of this name */
    long count;          /* how many times one image takes it */
} latup_plan_take;

typedef struct {
    size_t arena;        /* bytes of scratch: the high-water mark of the takes */
    size_t weights;      /* bytes of fp32 weights held */
    size_t output;       /* bytes of the output tensor (one image) */
    int n_takes;
    latup_plan_take takes[LATUP_PLAN_MAX_TAKES];
} latup_mem_plan;

/* Memory needed by one upscale of a [C,H,W] latent. */
typedef struct {
    int H, W, Hp, Wp;          /* input and padded size */
    int scale;
    latup_mem_plan mem;
} latup_lua_plan;

/* opts may be NULL; its conv_band_rows and the thread count shape the plan. */
LATUP_API latup_status latup_lua_plan_memory(const latup_lua *m, int H, int W, int scale,
                                   const latup_run_opts *opts, latup_lua_plan *p);
LATUP_API void latup_lua_plan_print(const latup_lua_plan *p, FILE *f);

/* x: [B,C,H,W] (or [C,H,W]) VAE-space latent. y: allocated here, [B,C,sH,sW] ([C,sH,sW] for a
 * 3-d input), not x. Any H, W with H, W > window padding (reflect padding needs pad < size).
 * opts may be NULL (defaults). */
LATUP_API latup_status latup_lua_upscale(const latup_lua *m, const latup_tensor *x, int scale,
                               latup_tensor *y, const latup_run_opts *opts);

/* ---- the VAE decoder (AutoencoderKL of SD 1.x/2.x, SDXL, SD3, FLUX.1; docs/spec/vae.md) -- */
#define LATUP_VAE_MAX_LEVELS 6

typedef enum {
    LATUP_VAE_NAMES_LDM = 0,           /* decoder.mid.attn_1.q, decoder.up.3.block.0 ... */
    LATUP_VAE_NAMES_DIFFUSERS = 1,     /* decoder.mid_block.attentions.0.to_q, up_blocks.0 ... */
    LATUP_VAE_NAMES_DIFFUSERS_OLD = 2, /* ...attentions.0.query / proj_attn */
} latup_vae_naming;

/* The encoder a VAE file holds: the ldm/diffusers Encoder (conv_in, down blocks with stride-2
 * downsampling, mid block with attention, norm_out, conv_out to 2 zc channels: mean and log-variance),
 * or a single p x p stride-p convolution to 2 zc channels ("encoder.weight", "encoder.bias": the
 * linear patch code of latup's demo VAE, docs/results.md). */
typedef enum {
    LATUP_VAE_ENCODER_NONE = 0,
    LATUP_VAE_ENCODER_LDM = 1,
    LATUP_VAE_ENCODER_PATCH = 2,
} latup_vae_encoder_kind;
typedef struct {
    int z_channels;                      /* latent channels (4: SD/SDXL, 16: SD3/FLUX) */
    int has_post_quant_conv;             /* SD/SDXL */
    int n_levels;                        /* up levels (4) */
    int channels[LATUP_VAE_MAX_LEVELS];  /* output channels of up[L], ldm order (128,256,512,512) */
    int blocks_per_level;                /* ResnetBlocks per up level (3) */
    int out_channels;                    /* 3 */
    int groups;                          /* GroupNorm groups (32) */
    float eps;                           /* GroupNorm eps (1e-6) */
    latup_vae_naming naming;
    char prefix[32];                     /* "", "first_stage_model.", "vae." */
    int64_t n_params;                    /* decoder parameters (0: no decoder loaded) */
    /* the encoder (appended fields; latup_vae_load_parts) */
    int has_decoder;                     /* the decoder was loaded (decode needs it) */
    latup_vae_encoder_kind encoder;      /* LATUP_VAE_ENCODER_NONE: none loaded */
    int has_quant_conv;                  /* SD/SDXL: quant_conv (1x1, 2zc -> 2zc) after the encoder */
    int enc_n_levels;                    /* LDM: down levels (4), downsampling after all but the last */
    int enc_channels[LATUP_VAE_MAX_LEVELS]; /* LDM: output channels of down[i] (128,256,512,512) */
    int enc_blocks_per_level;            /* LDM: ResnetBlocks per down level (2) */
    int enc_patch;                       /* PATCH: the conv's size and stride p (8) */
    int64_t enc_params;                  /* encoder parameters (quant_conv included) */
} latup_vae_config;

typedef struct latup_vae latup_vae;

/* Loads the decoder from any checkpoint holding one (standalone VAE, FLUX ae.safetensors,
 * diffusers vae/, single-file model), and the encoder when the file holds one (see
 * latup_vae_load_parts): tensors neither uses are ignored; every tensor a loaded part needs must
 * be there with its exact shape. path may also be a diffusers folder, as
 * AutoencoderKL.from_pretrained takes it: config.json beside diffusion_pytorch_model.safetensors
 * (else .bin, else their .fp16 variants), or a pipeline's folder holding that as vae/; its
 * config.json's latent_channels must match the weights, and its scaling_factor and shift_factor
 * are kept (latup_vae_latent_family). */
LATUP_API latup_status latup_vae_load(const char *path, latup_vae **out);
/* The parts of a VAE checkpoint to load: latup_vae_load() loads the decoder (required) and the
 * encoder when the file holds one (its tensors all there, with their shapes; the encoder counts as
 * held when 'encoder.conv_out.weight' or, for the patch code, 'encoder.weight' is there). With
 * parts, each part named is required ("FILE: no VAE encoder ('encoder.conv_out.weight' ...)",
 * LATUP_E_INPUT) and no other is loaded, so a decode-only or encode-only process holds only what
 * it runs. parts: LATUP_VAE_DECODER, LATUP_VAE_ENCODER or both (else LATUP_E_USAGE). */
#define LATUP_VAE_DECODER 1
#define LATUP_VAE_ENCODER 2
LATUP_API latup_status latup_vae_load_parts(const char *path, int parts, latup_vae **out);
LATUP_API const char *latup_vae_encoder_name(latup_vae_encoder_kind k); /* "none", "ldm", "patch" */
LATUP_API void latup_vae_free(latup_vae *v);
LATUP_API const latup_vae_config *latup_vae_get_config(const latup_vae *v); /* NULL for NULL */
/* The latent space of a VAE loaded from a diffusers folder whose config.json gives scaling_factor
 * (shift_factor: 0 when absent or null): name is that config.json's path, channels the decoder's;
 * for latup_latent_to_vae. NULL for a VAE loaded from a file, a config without scaling_factor, or
 * NULL. Valid as long as v. */
LATUP_API const latup_latent_family *latup_vae_latent_family(const latup_vae *v);
LATUP_API const char *latup_vae_naming_name(latup_vae_naming n);
/* "SD 1.x/2.x or SDXL" (4 channels + post_quant_conv; for an encoder-only load, quant_conv), "SD3 or
 * FLUX.1" (16, none), or "unknown" */
LATUP_API const char *latup_vae_family_guess(const latup_vae_config *c);

typedef struct {
    int h, w;             /* latent size decoded at once (a tile, or the whole latent) */
    latup_mem_plan mem;
} latup_vae_plan;

/* The exact decode of an h x w latent (or one tile of that size). */
LATUP_API latup_status latup_vae_plan_memory(const latup_vae *v, int h, int w, latup_vae_plan *p);
LATUP_API void latup_vae_plan_print(const latup_vae_plan *p, FILE *f);

typedef struct {
    latup_dump_fn dump;   /* per-layer tensors of an exact decode (not called when tiling) */
    void *dump_user;
    int verbose;          /* plan and per-stage timings on stderr */
    int progress;         /* unused: the library prints no progress (on_progress tells the caller) */
    latup_device device;  /* LATUP_DEVICE_CPU (0) by default */
    int conv_band_rows;   /* as in latup_run_opts (tests) */
    int tile;             /* latent tile size; 0 = exact unless over max_memory (then tiled) */
    int overlap;          /* latent overlap between tiles (default tile/4) */
    size_t max_memory;    /* bytes; 0 = no limit (never tile automatically) */
    latup_progress_fn on_progress; /* NULL: none */
    void *progress_user;
} latup_decode_opts;

/* What latup_vae_decode() will do with an h x w latent and these options: decode exactly, or in
 * tiles (the tile size given, or the largest whose decode fits opts->max_memory), and the memory
 * of one decode (one tile when tiling). A budget that no tile can meet is LATUP_E_NOMEM naming the
 * smallest budget that works. */
typedef struct {
    int tiled;             /* 0: exact */
    int tile, overlap;     /* latent pixels (tiled only) */
    latup_vae_plan plan;   /* one decode: the whole latent, or one tile */
    size_t peak;           /* bytes: plan arena + weights + output image + tiling buffers */
    char reason[160];      /* why it tiles ("--tile 32", "the exact decode needs 5.1 GiB, over the
                            * 3.0 GiB budget"); empty when exact */
} latup_decode_plan;

/* opts may be NULL (defaults). */
LATUP_API latup_status latup_vae_plan_decode(const latup_vae *v, int h, int w, const latup_decode_opts *opts,
                                   latup_decode_plan *p);

/* z: [B,zc,h,w] or [zc,h,w] decoder-ready latent -> img [B,3,8h,8w] (or [3,8h,8w]; not z), raw
 * decoder output (about [-1,1], not clamped); opts may be NULL (defaults). Exact unless opts->tile is set or the exact decode's plan
 * exceeds opts->max_memory; tiling is an approximation (docs/vae.md). */
LATUP_API latup_status latup_vae_decode(const latup_vae *v, const latup_tensor *z, latup_tensor *img,
                              const latup_decode_opts *opts);

/* ---- the VAE encoder ------------------------------------------------------------------------
 * img [B,3,H,W] or [3,H,W], pixels in the VAE's range [-1,1] (a PNG's [0,1] as 2x - 1) -> z
 * [B,zc,h,w] (or [zc,h,w]; not img), the VAE-space latent: the posterior's mean (diffusers'
 * latent_dist.mean), or with opts->sample a draw mean + exp(logvar/2) * eps, logvar clamped to
 * [-30, 20] as diffusers does, eps from latup's own seeded normal generator (not torch's).
 * Any H, W >= 1, as the model itself takes them: h = floor(H / f), w = floor(W / f), f =
 * 2^(levels-1) (8), each stride-2 downsampling padding one zero row and column at the bottom
 * and right (diffusers' AutoencoderKL.encode; its image processor resizes to a multiple of 8
 * first, latup does not). Needs the encoder (latup_vae_load_parts). Exact unless opts->tile is set
 * or the exact encode's plan exceeds opts->max_memory: then image tiles of tile*f pixels whose
 * latents are blended over the overlap, as the tiled decode (docs/vae.md), an approximation
 * (GroupNorm statistics and attention see one tile); a tiled encode reads the image cropped to
 * h*f x w*f. A latent for a diffusion model is latup_latent_from_vae() of z. */
typedef struct {
    latup_dump_fn dump;   /* per-layer tensors of an exact encode (ldm names: docs/vae.md) */
    void *dump_user;
    int verbose;          /* plan and per-stage timings on stderr */
    latup_device device;  /* LATUP_DEVICE_CPU only (CUDA: LATUP_E_DEVICE) */
    int conv_band_rows;   /* as in latup_run_opts (tests) */
    int tile;             /* latent tile size; 0 = exact unless over max_memory (then tiled) */
    int overlap;          /* latent overlap between tiles (default tile/4) */
    size_t max_memory;    /* bytes, the process's budget as in latup_call_opts; 0 = no limit */
    size_t held;          /* bytes the caller holds besides this call's tensors (counted) */
    int sample;           /* 0: the posterior mean; 1: a draw, seeded by seed */
    uint64_t seed;
    latup_progress_fn on_progress; /* NULL: none */
    void *progress_user;
} latup_encode_opts;
/* What latup_vae_encode() will do with an H x W image (exact or tiled, why, the arena of one
 * encode or tile, the process's peak), in the decode plan's struct: plan.h, plan.w is the latent
 * (or latent tile) size. opts may be NULL. */
LATUP_API latup_status latup_vae_plan_encode(const latup_vae *v, int H, int W, const latup_encode_opts *opts,
                                             latup_decode_plan *p);
LATUP_API latup_status latup_vae_encode(const latup_vae *v, const latup_tensor *img, latup_tensor *z,
                                        const latup_encode_opts *opts);
/* The inverse of latup_latent_to_vae: x = (x - shift) * scaling, in place (a VAE latent for the
 * diffusion model). Nothing happens for NULL or a tensor the argument rules refuse. */
LATUP_API void latup_latent_from_vae(latup_tensor *x, const latup_latent_family *f);

/* ---- prepared calls: validated and planned once, then executed --------------------------------
 * An upscale, a decode, or both ("run": upscale, then decode the result) is one call.
 * latup_prepare() checks the request (models, scale, the input's shape, the device) and plans
 * it: the stages, each stage's shapes, the decode's tiles, and the memory the whole process holds
 * at its peak. latup_execute() runs exactly that plan. latup_lua_upscale() and latup_vae_decode()
 * are a prepare and an execute; --dry-run prints the plan and stops.
 *
 * The memory budget (max_memory) is the process's: the plan counts the process's own overhead
 * (code, libraries, thread stacks, BLAS buffers: LATUP_PROCESS_OVERHEAD(threads), measured in
 * docs/memory.md), the models as loaded
 * (parameters and the tables derived from them), what the caller holds besides (held), the input,
 * every intermediate and output tensor of the batch, and the arena of the largest stage. The
 * decode tiles so that the total fits; when nothing fits, the prepare fails with LATUP_E_NOMEM
 * naming the smallest budget that works, before any compute. */
#define LATUP_PROCESS_OVERHEAD(threads) (((size_t)5 << 20) + (size_t)(threads) * ((size_t)3 << 19))

typedef enum {
    LATUP_STAGE_UPSCALE = 1,
    LATUP_STAGE_DECODE = 2,
} latup_stage;

/* Called as each stage of an execute begins (done 0, seconds 0) and ends (done 1, its seconds). */
typedef void (*latup_stage_fn)(void *user, latup_stage stage, int done, double seconds);

typedef struct {
    const latup_lua *lua;   /* upscale with this model (NULL: no upscale) ... */
    int scale;              /* ... by this factor */
    const latup_vae *vae;   /* decode with this VAE (NULL: no decode) */
    latup_device device;
    size_t max_memory;      /* the process's budget in bytes; 0 = no limit (never tile automatically) */
    size_t held;            /* bytes the caller holds besides this call's tensors (counted) */
    int tile, overlap;      /* decode tiles, as in latup_decode_opts (0: automatic) */
    int conv_band_rows;     /* tests (latup_run_opts) */
    latup_dump_fn dump;     /* per-layer tensors of each stage (not of a tiled decode) */
    void *dump_user;
    latup_stage_fn stage;   /* NULL: none */
    void *stage_user;
    int verbose;            /* the plan and per-stage timings on stderr */
    int progress;           /* unused: the library prints no progress (on_progress tells the caller) */
    latup_progress_fn on_progress; /* NULL: none; one done/total across the upscale and the decode */
    void *progress_user;
} latup_call_opts;

/* What the process holds at the call's peak, in bytes. */
typedef struct {
    size_t process;        /* LATUP_PROCESS_OVERHEAD(latup_get_threads()) */
    size_t weights;        /* the models as loaded */
    size_t held;           /* opts->held */
    size_t input;          /* the input tensor */
    size_t upscaled;       /* the upscale's result, whole batch (0 without an upscale) */
    size_t image;          /* the decode's result, whole batch (0 without a decode) */
    size_t upscale_arena;  /* scratch of the upscale (0 without one) */
    size_t decode_arena;   /* scratch of the decode, tile buffers included (0 without one) */
    size_t peak;           /* process + weights + held + input + the larger stage: upscale
                            * (upscaled + its arena) or decode (upscaled + image + its arena) */
} latup_call_memory;

typedef struct {
    latup_device device;
    int stages;                /* LATUP_STAGE_UPSCALE | LATUP_STAGE_DECODE */
    int ndim;                  /* 3 or 4, as the input */
    int64_t batch;
    int channels, h, w;        /* the input latent */
    int scale;                 /* 0 without an upscale */
    int dec_h, dec_w;          /* the latent the decode sees (after the upscale) */
    int out_ndim;
    int64_t out_shape[LATUP_MAX_DIMS]; /* the result of the last stage */
    latup_lua_plan upscale;    /* its arena per image (when upscaling) */
    latup_decode_plan decode;  /* exact or tiled, why, one decode's arena; decode.peak: the decode
                                * stage's total (when decoding) */
    latup_call_memory mem;
    size_t budget;             /* opts->max_memory */
} latup_plan;

typedef struct latup_call latup_call;

/* The options alone, before any model or input is at hand (the CLI calls it before opening a
 * file; latup_prepare calls it too): tile 0 or at least 4, overlap under a given tile, neither
 * negative, a known device. LATUP_E_USAGE saying which. */
LATUP_API latup_status latup_call_opts_check(const latup_call_opts *opts);
/* Checks and plans a call on an input of this shape ([C,H,W] or [B,C,H,W]). x->data may be NULL
 * (a plan only, e.g. for a scheduler); when it is not, its values are checked too (finite), and
 * an execute on the same tensor does not scan them again. The models must outlive the call. */
LATUP_API latup_status latup_prepare(const latup_call_opts *opts, const latup_tensor *x, latup_call **out);
LATUP_API const latup_plan *latup_call_plan(const latup_call *c); /* NULL for NULL */
/* Runs the plan on x (the prepared shape). out: the last stage's result, allocated here. upscaled
 * may be NULL; otherwise (for a run) it receives the upscale's result too, allocated here. out,
 * upscaled and x are three different tensors. On failure both outputs are empty. */
LATUP_API latup_status latup_execute(latup_call *c, const latup_tensor *x, latup_tensor *upscaled,
                                     latup_tensor *out);
LATUP_API void latup_call_free(latup_call *c); /* c may be NULL */
/* The plan on f (nothing for a NULL p or f): its stages, tiles and memory lines (what --verbose and --dry-run print). */
LATUP_API void latup_plan_print(const latup_plan *p, FILE *f);

/* ---- errors raised by callers ---------------------------------------------------------------- */
/* Records a one-line message for latup_last_error() (as the library does) and returns st; an st
 * outside latup_status, or fmt NULL, records that instead and returns LATUP_E_USAGE. */
LATUP_API latup_status latup_set_error(latup_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prefixes the current message with "prefix: " (e.g. the file the data came from). */
LATUP_API void latup_error_prefix(const char *prefix);

/* ---- tensors from files ----------------------------------------------------------------------
 * One reader for every input a command takes, the format told by content (never by extension):
 *   .npy   '<f4', '<f2', '<f8' (converted to fp32, rounded to nearest) and bfloat16 (numpy writes
 *          ml_dtypes.bfloat16 as the 2-byte void '<V2'; 'bfloat16' and '<bf16' are read too);
 *   PNG    8-bit gray, gray+alpha, RGB, RGBA, palette, 16-bit gray, gray+alpha, RGB, RGBA ->
 *          [3,H,W] in [0,1];
 *   safetensors: the tensor `key`; without a key, "latent_tensor" (a ComfyUI .latent: a file
 *          without its "latent_format_version_0" marker is an old one, scaled by 1/0.18215 as
 *          ComfyUI's LoadLatent does) or else the file's only tensor.
 * The file is opened and read once, so pipes and /dev/stdin work; "-" is standard input. */
typedef enum {
    LATUP_FILE_NPY = 1,
    LATUP_FILE_PNG = 2,
    LATUP_FILE_SAFETENSORS = 3,
} latup_file_kind;

/* key: a safetensors tensor name, may be NULL; kind: may be NULL, else the kind read (0 on failure). */
LATUP_API latup_status latup_tensor_read(const char *path, const char *key, latup_tensor *t,
                                         latup_file_kind *kind);

/* ---- images --------------------------------------------------------------------------------- */
typedef enum {
    LATUP_PIXELS_UNIT = 0,   /* values in [0,1] (images read from PNG, SwinIR outputs) */
    LATUP_PIXELS_SIGNED = 1, /* a VAE decoder's output, about [-1,1]: diffusers' (x + 1) / 2 */
} latup_pixel_range;

/* img: float [3,H,W] or [1,3,H,W], clamped to the range, scaled to 255 (bits 8) or 65535 (bits
 * 16) and rounded (signed: half to even, numpy's round as in diffusers' numpy_to_pil; unit: half
 * away from zero); RGB, no alpha. An image holding NaN or Inf is refused (LATUP_E_INPUT) and
 * nothing is written. Atomic. */
LATUP_API latup_status latup_png_write(const char *path, const latup_tensor *img,
                                       latup_pixel_range range, int bits);
/* A PNG text chunk (e.g. "Software", or "parameters": the command that made the image, as
 * stable-diffusion.cpp and other generators write it). key: 1 to 79 printable ASCII characters,
 * no leading, trailing or double spaces (the PNG keyword rules, ASCII only); text: any string of
 * at most 1 MiB, written as tEXt when it is ASCII, else as iTXt (it must then be UTF-8). */
typedef struct {
    const char *key;
    const char *text;
} latup_png_text;
/* latup_png_write with n_text text chunks, written before the image data (a reader finds them
 * without inflating it); n_text 0 to 64, text may be NULL when n_text is 0. A bad key or text is
 * LATUP_E_USAGE naming it, and nothing is written. */
LATUP_API latup_status latup_png_write_text(const char *path, const latup_tensor *img, latup_pixel_range range,
                                            int bits, const latup_png_text *text, int n_text);
/* 8-bit gray, gray+alpha, RGB, RGBA and palette, and 16-bit gray, gray+alpha, RGB and RGBA (what
 * --png-bits 16 writes), non-interlaced -> [3,H,W] in [0,1]: each sample v / 255 or v / 65535,
 * gray replicated, alpha dropped. Other bit depths and interlaced files are LATUP_E_INPUT. */
LATUP_API latup_status latup_png_read(const char *path, latup_tensor *img);
/* The 8-bit pixels latup_png_write would write for img ([3,H,W] or [1,3,H,W]; the range's mapping
 * and rounding) into rgb, interleaved [H,W,3] (the caller's 3*H*W bytes): what `latup eval`
 * scores, so the numbers and the PNGs it saves agree. Another shape, or NaN or Inf in img, is
 * LATUP_E_INPUT (rgb is then unspecified). */
LATUP_API latup_status latup_image_to_rgb8(const latup_tensor *img, latup_pixel_range range, uint8_t *rgb);

/* ---- outputs committed together ----------------------------------------------------------------
 * Each output is encoded at once into a temporary file in its destination's directory (a short
 * name, "latup-XXXXXX.tmp", so any legal destination name works), created with O_EXCL|O_NOFOLLOW
 * (an existing file is never opened, a symlink never followed); latup_outputs_commit then fsyncs
 * and renames every one into place (a symlink at the destination is replaced, not followed), and
 * if any of that fails it takes back those already renamed: a command leaves all of its outputs or
 * none, and a file an output replaced is put back as it was. (Before the renames, each existing
 * file that one of them will replace, but the last's, gets a second name in its directory, a hard
 * link "latup-XXXXXX.bak" removed once the set is in place: LATUP_E_IO, with nothing replaced,
 * on a file system without hard links.) The path "-" is standard output, written last, after
 * every rename.
 *
 * A set has three states. open (from latup_outputs_new): it takes outputs and one commit.
 * committed (a commit that renamed every file): its files are in place, even when writing "-"
 * then fails (that commit returns LATUP_E_IO). aborted (a commit that failed): it took back what
 * it had renamed (put back what that replaced) and removed every temporary. In committed or aborted, an add or a commit is
 * LATUP_E_USAGE naming the state, and touches no file: a committed file is never removed or
 * rewritten through its set. An add that fails (a bad image, a full disk) leaves the set open
 * without that output. latup_outputs_free removes the temporaries of a set never committed and
 * leaves committed files in place. o, path and the tensor are required; an empty path is
 * LATUP_E_USAGE. */
typedef struct latup_outputs latup_outputs;

/* Checks, before any work, that path can be written: not a directory, its directory exists and
 * takes a new file (a temporary is created there and removed). "-" passes; "" is LATUP_E_USAGE. */
LATUP_API latup_status latup_output_check(const char *path);
LATUP_API latup_status latup_outputs_new(latup_outputs **o);
LATUP_API latup_status latup_outputs_add_npy(latup_outputs *o, const char *path, const latup_tensor *t);
/* range: LATUP_PIXELS_UNIT or LATUP_PIXELS_SIGNED; bits: 8 or 16 (otherwise LATUP_E_USAGE). */
LATUP_API latup_status latup_outputs_add_png(latup_outputs *o, const char *path, const latup_tensor *img,
                                             latup_pixel_range range, int bits);
/* latup_outputs_add_png with text chunks, as latup_png_write_text. */
LATUP_API latup_status latup_outputs_add_png_text(latup_outputs *o, const char *path, const latup_tensor *img,
                                                  latup_pixel_range range, int bits, const latup_png_text *text,
                                                  int n_text);
LATUP_API latup_status latup_outputs_commit(latup_outputs *o);
LATUP_API void latup_outputs_free(latup_outputs *o); /* o may be NULL; removes uncommitted temporaries */

/* Async-signal-safe: removes every temporary file this process holds right now (those of output
 * sets, of latup_npy_write and latup_png_write, and of latup_output_check's probe), and the files
 * of a commit under way that has not yet renamed all of its set. For a handler of SIGINT, SIGTERM
 * or SIGHUP that then lets the signal end the process (the CLI restores the default action and
 * raises it again), so an interrupted command leaves no temporary and no part of an output set,
 * and the files a set had replaced are put back. It only loads lock-free atomics and calls
 * unlink(2) and rename(2); errno is kept. A writer whose temporary was
 * removed fails at its commit (LATUP_E_IO). A temporary created while it runs, or one of more than
 * 65536 alive at once, may stay. */
LATUP_API void latup_remove_temporaries(void);

/* ---- checkpoints --------------------------------------------------------------------------------- */
typedef struct {
    char format[32];      /* "safetensors", "pytorch zip" */
    char wrapper[32];     /* .pth: the key the state dict was under ("params_ema"), "" if bare */
    int n_tensors;
    int n_f32, n_f16, n_bf16, n_i64; /* tensors by dtype in the file */
    int64_t n_elements;   /* all tensors, buffers included */
    int has_latent;       /* a "latent_tensor" (ComfyUI .latent) is there */
} latup_checkpoint_info;

LATUP_API latup_status latup_checkpoint_info_read(const char *path, latup_checkpoint_info *ci);

/* ---- host defaults --------------------------------------------------------------------------- */
/* OMP_NUM_THREADS when it is set (its first value), else the CPUs this process may run on. */
LATUP_API int latup_default_threads(void);
/* 3/4 of the smaller of physical memory and the cgroup memory limit of this process (v2
 * memory.max, v1 memory.limit_in_bytes, the tightest on the path to the root). */
LATUP_API size_t latup_default_max_memory(void);
/* LATUP_OK if the device can run here; else LATUP_E_DEVICE saying what is missing (a build
 * without CUDA, no GPU, the driver's refusal), as the forward passes would, but before any work. */
LATUP_API latup_status latup_device_check(latup_device d);

/* ---- the numeric environment ---------------------------------------------------------------------
 * Speed depends on which of its kernel sets OpenBLAS runs, and OpenBLAS picks it at load time from
 * the CPU or from OPENBLAS_CORETYPE: set to "Haswell" on an AVX-512 CPU, or left to an OpenBLAS
 * older than the CPU, it runs 256-bit kernels where 512-bit ones would be about 1.5x faster
 * (docs/performance.md, "Which kernels run"). ISA names: "AVX-512" (F, BW, DQ and VL), "AVX2"
 * (with FMA), "AVX", "SSE2" ("SSE" for a 32-bit OpenBLAS's pre-SSE2 kernels), or "unknown" (not
 * x86, or a core name latup does not know). */
typedef struct {
    char blas_core[32];    /* openblas_get_corename(): the kernel set, "SkylakeX", "Haswell" */
    char blas_config[256]; /* openblas_get_config(): version and build options */
    char blas_isa[16];     /* the ISA those kernels use */
    char cpu_isa[16];      /* the widest ISA the CPU has and the OS enables (XCR0) */
    char cpu_name[64];     /* the CPU's brand string, "unknown" off x86 */
    int threads;           /* OpenMP's threads (omp_get_max_threads(): latup's tile loops) */
    int blas_narrower;     /* 1: the kernels are narrower than the CPU allows (slower than need be) */
    char note[256];        /* when narrower, one line: the likely cause and what to do; else "" */
} latup_system_info;

/* Fills *out (LATUP_E_USAGE if out is NULL). Every string is non-empty except note. */
LATUP_API latup_status latup_system_info_get(latup_system_info *out);
/* On f: "<prefix>OpenBLAS SkylakeX kernels (AVX-512), CPU AVX-512, 2 threads", and when the
 * kernels are narrower a second line "<prefix>warning: <note>". Prints nothing for NULL. */
LATUP_API void latup_system_info_print(const latup_system_info *s, FILE *f, const char *prefix);

#ifdef __cplusplus
}
#endif
#endif
