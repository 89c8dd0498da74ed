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
} latup_weights;

/* safetensors: strict validation per ../shared/spec/formats.md. `path` names the source in
 * messages. parse() works on a buffer (tests, fuzzing); load() reads a file, transparently
 * inflating gzip. */
latup_status latup_safetensors_parse(const uint8_t *buf, size_t len, const char *path,
                                     latup_weights *w);
latup_status latup_safetensors_load(const char *path, latup_weights *w);
/* Writes an F32/I64 safetensors file (tests and tools); temp file + rename. */
latup_status latup_safetensors_write(const char *path, const latup_weights *w);

void latup_weights_free(latup_weights *w);
const latup_wtensor *latup_weights_find(const latup_weights *w, const char *name);
const char *latup_weights_meta(const latup_weights *w, const char *key); /* NULL if absent */

/* Float tensor `name` with exactly this shape, else LATUP_E_INPUT naming the tensor, the file,
 * and the expected vs found shape (or "missing"). */
latup_status latup_weights_get(const latup_weights *w, const char *name, int ndim,
                               const int64_t *shape, const float **out);

const char *latup_dtype_name(latup_dtype dt);

#endif
