/* npy.h — buffer-level .npy parsing (tests, fuzzing, callers that already hold the bytes). The
 * file-level reader and writer, latup_npy_read / latup_npy_write, are public in latup.h. */
#ifndef LATUP_NPY_H
#define LATUP_NPY_H

#include "common.h"
#include "io/fileio.h"

#include <stdio.h>

/* Parses a whole .npy file held in buf[0..len): '<f4', '<f2', '<f8' or bfloat16 ('<V2', as
 * numpy writes ml_dtypes.bfloat16; converted to fp32, f8 rounded to nearest), C order,
 * 1 to 4 dims, data exactly shape x itemsize bytes. `path` names the source in messages (NULL:
 * "<buffer>"). On failure *t is left empty (data NULL, ndim 0). */
latup_status latup_npy_parse(const uint8_t *buf, size_t len, const char *path, latup_tensor *t);

/* Writes t as a '<f4' v1.0 .npy (byte-identical to numpy.save) into f; `path` names it in
 * messages. latup_npy_write (latup.h) does this into a temporary file renamed onto the path. */
latup_status latup_npy_encode(FILE *f, const char *path, const latup_tensor *t);

/* The .npy format for latup_input_open (sniffer: the magic; sizer: header + shape x itemsize), so
 * a caller can read an input once and tell .npy from other formats by its bytes. */
extern const latup_file_format latup_npy_format;

#endif
