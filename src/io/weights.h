/* weights.h — a name -> tensor table loaded from a checkpoint file. Float tensors (F32, F16,
 * BF16 in the file) are converted to fp32 at load; I64 tensors (buffers such as
 * relative_position_index) are kept as int64. Models look tensors up by their checkpoint name. */
#ifndef LATUP_WEIGHTS_H
#define LATUP_WEIGHTS_H

#include "common.h"

#define LATUP_WMAX_DIMS 8

typedef enum { LATUP_DT_F32, LATUP_DT_F16, LATUP_DT_BF16, LATUP_DT_I64 } latup_dtype;

typedef struct {
    char *name;
    latup_dtype dtype;            /* dtype in the file */
    int ndim;
    int64_t shape[LATUP_WMAX_DIMS];
    int64_t numel;
    float *f32;                   /* float tensors: fp32 copy (NULL for I64) */
    int64_t *i64;                 /* I64 tensors (NULL otherwise) */
} latup_wtensor;

typedef struct {
    char *path;                   /* for error messages */
    int n;
    latup_wtensor *t;             /* in file order */
    int n_meta;
    char **meta_key, **meta_val;  /* safetensors __metadata__ */
    void *blob;                   /* backing storage of all tensor data (one allocation) */
    const char *format;           /* static string: "safetensors", "pytorch zip" */
    char *wrapper;                /* .pth: the key the state dict was under ("params_ema",
                                     "params", "state_dict"), NULL for a bare dict */
} latup_weights;

/* safetensors: strict validation per docs/spec/formats.md. `path` names the source in
 * messages. parse() works on a buffer (tests, fuzzing); load() reads a file, transparently
 * inflating gzip. */
latup_status latup_safetensors_parse(const uint8_t *buf, size_t len, const char *path,
                                     latup_weights *w);
latup_status latup_safetensors_load(const char *path, latup_weights *w);
/* Writes an F32/I64 safetensors file (tests and tools); temp file + rename. */
latup_status latup_safetensors_write(const char *path, const latup_weights *w);

/* PyTorch .pth (torch.save zip format, docs/spec/formats.md): a zip reader (stored and
 * deflated entries, ZIP64) and a restricted pickle machine that rebuilds the state dict (data
 * only, a fixed whitelist of globals, nothing executed). Wrappers "params_ema" (preferred),
 * "params", "state_dict" and bare state dicts are recognised; nested dicts are flattened with
 * "." joined keys. Legacy (pre-1.6, non-zip) files are a clear error. */
latup_status latup_pth_parse(const uint8_t *buf, size_t len, const char *path, latup_weights *w);

/* Any checkpoint, the format chosen by content (magic bytes), not by extension: safetensors,
 * .pth zip, gzip of either; legacy torch pickles and unknown content are clear errors. */
latup_status latup_weights_load(const char *path, latup_weights *w);
latup_status latup_weights_parse(const uint8_t *buf, size_t len, const char *path, latup_weights *w);

void latup_weights_free(latup_weights *w);
const latup_wtensor *latup_weights_find(const latup_weights *w, const char *name);
const char *latup_weights_meta(const latup_weights *w, const char *key); /* NULL if absent */

/* Float tensor `name` with exactly this shape, else LATUP_E_INPUT naming the tensor, the file,
 * and the expected vs found shape (or "missing"). */
latup_status latup_weights_get(const latup_weights *w, const char *name, int ndim,
                               const int64_t *shape, const float **out);

const char *latup_dtype_name(latup_dtype dt);

#endif
