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

/* ---- status codes (the CLI uses them as exit codes) ------------------------------------------ */
typedef enum {
    LATUP_OK = 0,
    LATUP_E_USAGE = 1,    /* bad arguments or an unsupported request (e.g. scale 3 on a x2/x4 model) */
    LATUP_E_INPUT = 2,    /* bad input file or data: malformed, wrong shape, missing tensor, NaN */
    LATUP_E_NOMEM = 3,    /* an allocation failed or a request exceeds the memory limit */
    LATUP_E_IO = 4,       /* the OS refused: cannot open, read, write or rename a file */
    LATUP_E_INTERNAL = 5, /* a bug in latup */
} latup_status;

const char *latup_last_error(void);         /* one line, no trailing newline */
const char *latup_status_name(latup_status st);

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

int64_t latup_tensor_numel(const latup_tensor *t);
latup_status latup_tensor_alloc(latup_tensor *t, int ndim, const int64_t *shape); /* zeroed */
void latup_tensor_free(latup_tensor *t);
/* "[2,16,32,32]" into buf; returns buf */
const char *latup_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);

/* ---- .npy files (latents in and out) ------------------------------------------------------- */
/* Reads '<f4' or '<f2' (converted to fp32), C order, 1 to 4 dims. */
latup_status latup_npy_read(const char *path, latup_tensor *t);
/* Writes '<f4' v1.0 through a temporary file renamed into place: never a partial file. */
latup_status latup_npy_write(const char *path, const latup_tensor *t);

/* ---- threads --------------------------------------------------------------------------------- */
void latup_set_threads(int n); /* OpenMP and OpenBLAS; n <= 0 means all cores */
int latup_get_threads(void);

/* ---- the LUA model ----------------------------------------------------------------------------- */
#define LATUP_MAX_LAYERS 16
#define LATUP_MAX_SCALES 4

typedef struct {
    int in_chans, out_chans;             /* C: latent channels (conv_first in, conv_last out) */
    int embed_dim;                       /* E */
    int num_layers;                      /* number of RSTBs */
    int depths[LATUP_MAX_LAYERS];        /* Swin blocks per RSTB */
    int num_heads[LATUP_MAX_LAYERS];     /* attention heads per RSTB */
    int window_size;                     /* ws; shift ws/2 on odd blocks */
    int mlp_hidden;                      /* fc1 width (mlp_ratio * E) */
    int head_feat;                       /* F: head width after conv_before */
    int n_scales;                        /* heads present, ascending */
    int scales[LATUP_MAX_SCALES];        /* e.g. {2, 4} */
    float ln_eps;                        /* LayerNorm eps (1e-5) */
    int64_t n_params;                    /* parameters (buffers excluded) */
} latup_lua_config;

typedef struct latup_lua latup_lua;

/* Loads a LUA checkpoint (safetensors, optionally gzip-compressed). The config is inferred from
 * tensor names and shapes; a missing tensor or a wrong shape is an error naming it. */
latup_status latup_lua_load(const char *path, latup_lua **out);
void latup_lua_free(latup_lua *m);
const latup_lua_config *latup_lua_get_config(const latup_lua *m);

/* Called at every layer boundary of the forward pass with the tensor of one batch element
 * (names and shapes: docs/architecture.md). The tensor is only valid during the call. */
typedef void (*latup_dump_fn)(void *user, const char *name, const latup_tensor *t, int batch);

typedef struct {
    latup_dump_fn dump;  /* NULL: no dumps */
    void *dump_user;
    int verbose;         /* print the memory plan and per-stage timings to stderr */
} latup_run_opts;

/* Memory needed by one upscale of a [C,H,W] latent (bytes). */
typedef struct {
    int H, W, Hp, Wp;          /* input and padded size */
    int scale;
    size_t tokens;             /* [L,E] buffers, each */
    size_t qkv, hidden;        /* [L,3E], [L,hidden] */
    size_t conv_col;           /* im2col band */
    int conv_band_rows;        /* rows of the widest conv's im2col band */
    size_t attn_scratch;       /* per-thread score matrices */
    size_t mask;               /* shift mask [nW,N,N] */
    size_t head;               /* head feature maps */
    size_t total;              /* the arena */
} latup_lua_plan;

latup_status latup_lua_plan_memory(const latup_lua *m, int H, int W, int scale, latup_lua_plan *p);
void latup_lua_plan_print(const latup_lua_plan *p, FILE *f);

/* x: [B,C,H,W] (or [C,H,W]) VAE-space latent. y: allocated here, [B,C,sH,sW] ([C,sH,sW] for a
 * 3-d input). Any H, W with H, W > window padding (reflect padding needs pad < size). */
latup_status latup_lua_upscale(const latup_lua *m, const latup_tensor *x, int scale,
                               latup_tensor *y, const latup_run_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
