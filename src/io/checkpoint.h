/* checkpoint.h — checkpoint files: telling the formats apart by content and reading them into the
 * name -> tensor table (io/weights.h). src/io/checkpoint.c opens a file and dispatches;
 * safetensors.c and pth.c are the readers. */
#ifndef LATUP_CHECKPOINT_H
#define LATUP_CHECKPOINT_H

#include "common.h"
#include "io/fileio.h"

typedef struct latup_weights latup_weights; /* the table: io/weights.h */

/* The checkpoint formats, for latup_input_open: sniffers and sizers (the sizer reads the
 * safetensors header, or walks the zip's local headers, to bound what a stream may hold). */
extern const latup_file_format latup_safetensors_format, latup_pth_format;

/* Buffer-level parsers (tests, fuzzing): the table with every tensor fetched, nothing pointing
 * into buf afterwards. `path` names the source in messages.
 * safetensors: strict validation per docs/spec/formats.md.
 * PyTorch .pth (torch.save zip format, docs/spec/formats.md): a zip reader (stored and
 * deflated entries, ZIP64) and a restricted pickle machine that rebuilds the state dict (data
 * only, a fixed whitelist of globals, nothing executed). Wrappers "params_ema" (preferred),
 * "params", "state_dict" and bare state dicts are recognised; nested dicts are flattened with
 * "." joined keys. Legacy (pre-1.6, non-zip) files are a clear error.
 * latup_weights_parse: either, chosen by content. */
latup_status latup_safetensors_parse(const uint8_t *buf, size_t len, const char *path,
                                     latup_weights *w);
latup_status latup_pth_parse(const uint8_t *buf, size_t len, const char *path, latup_weights *w);
latup_status latup_weights_parse(const uint8_t *buf, size_t len, const char *path, latup_weights *w);

/* Any checkpoint file ("-": stdin), the format chosen by content (magic bytes), not by extension:
 * safetensors, .pth zip, gzip of either; legacy torch pickles and unknown content are clear
 * errors. Lazy: the table is complete, tensor data is fetched on first use. */
latup_status latup_weights_load(const char *path, latup_weights *w);
/* safetensors only, every tensor fetched (tests and tools that read t->f32 directly). */
latup_status latup_safetensors_load(const char *path, latup_weights *w);
/* Writes an F32/I64 safetensors file (tests and tools); temp file + rename. */
latup_status latup_safetensors_write(const char *path, const latup_weights *w);

/* Reader internals: the table alone, storages pointing into buf (which must stay valid until the
 * tensors are fetched or the source is released). */
latup_status latup_safetensors_table(const uint8_t *buf, size_t len, const char *path, latup_weights *w);
latup_status latup_pth_table(const uint8_t *buf, size_t len, const char *path, latup_weights *w);

#endif
