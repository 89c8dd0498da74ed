/* weights.h — a name -> tensor table loaded from a checkpoint file (io/checkpoint.h reads the
 * files and fills it). Float tensors (F32, F16, BF16 in the file) are read as fp32, I64 tensors
 * (buffers such as relative_position_index) as int64. A file is mapped (or, when gzip'd or not a
 * regular file, read) and its table parsed without touching tensor data; each tensor's data is
 * converted on first use (latup_weights_fetch), so a model that binds 200 MB of a 7 GB checkpoint
 * reads 200 MB. Models look tensors up by their checkpoint name. */
#ifndef LATUP_WEIGHTS_H
#define LATUP_WEIGHTS_H

#include "common.h"
#include "io/fileio.h"
/* Transitional: the loaders moved to io/checkpoint.h, which does not include this header (it
 * names the table by its struct tag). tests/, tools/ and fuzz/ still reach latup_weights_load and
 * the safetensors reader/writer through here; drop this line once they include io/checkpoint.h. */
#include "io/checkpoint.h"

#define LATUP_WMAX_DIMS 8

typedef enum { LATUP_DT_F32, LATUP_DT_F16, LATUP_DT_BF16, LATUP_DT_I64 } latup_dtype;

/* Where a storage's bytes are until it is converted. Tensors are views of a storage: in
 * safetensors each tensor has its own, in a .pth several tensors may share a torch storage. */
typedef struct {
    latup_dtype dtype;     /* as stored */
    int64_t numel;
    const uint8_t *bytes;  /* the stored bytes (NULL for a deflated .pth entry: see zip_entry) */
    const void *zip_entry; /* .pth: its archive entry (CRC-checked, inflated on first use) */
    void *data;            /* fp32 (float dtypes) or int64: NULL until first use */
    int owned;             /* data was allocated here (else it points into the mapped file) */
} latup_wstorage;

typedef struct {
    char *name;
    latup_dtype dtype;            /* dtype in the file */
    int ndim;
    int64_t shape[LATUP_WMAX_DIMS];
    int64_t numel;
    float *f32;                   /* float tensors: fp32 data, NULL until fetched */
    int64_t *i64;                 /* I64 tensors: NULL until fetched */
    int storage;                  /* index into latup_weights.storage */
    int64_t offset;               /* first element within the storage */
} latup_wtensor;

typedef struct latup_weights {
    char *path;                   /* for error messages */
    int n;
    latup_wtensor *t;             /* in file order */
    int n_meta;
    char **meta_key, **meta_val;  /* safetensors __metadata__ */
    void *blob;                   /* memory freed with the table (hand-built tables) */
    const char *format;           /* static string: "safetensors", "pytorch zip" */
    char *wrapper;                /* .pth: the key the state dict was under ("params_ema",
                                     "params", "state_dict"), NULL for a bare dict */
    int n_storage;
    latup_wstorage *storage;
    latup_input *src;             /* the file behind unfetched tensors (NULL once released) */
    void *zip;                    /* .pth: the archive reader over src */
} latup_weights;

/* Converts tensor t's storage (F16/BF16 widened to fp32; a .pth entry CRC-checked, inflated if
 * deflated) unless done already, and sets t->f32 or t->i64. Cheap when fetched already. */
latup_status latup_weights_fetch(latup_weights *w, latup_wtensor *t);
latup_status latup_weights_fetch_all(latup_weights *w);
/* Lets go of the file read into memory for unfetched tensors (a mapping that fetched tensors
 * point into is kept); tensors not fetched by then stay without data. */
void latup_weights_release_source(latup_weights *w);
/* Bytes the table's fetched tensors occupy (fp32 / int64 data, copied or mapped in place): what a
 * loaded model keeps of its file. */
size_t latup_weights_resident_bytes(const latup_weights *w);

void latup_weights_free(latup_weights *w);
const latup_wtensor *latup_weights_find(const latup_weights *w, const char *name);
const char *latup_weights_meta(const latup_weights *w, const char *key); /* NULL if absent */

/* Float tensor `name` with exactly this shape, fetched, else LATUP_E_INPUT naming the tensor, the
 * file, and the expected vs found shape (or "missing"). */
latup_status latup_weights_get(latup_weights *w, const char *name, int ndim, const int64_t *shape,
                               const float **out);

const char *latup_dtype_name(latup_dtype dt);
size_t latup_dtype_size(latup_dtype dt); /* bytes per element in the file */
/* The dtype safetensors calls `name` ("F32", "F16", "BF16", "I64"): 1 and *dt set, else 0. */
int latup_dtype_from_name(const char *name, latup_dtype *dt);

#endif
