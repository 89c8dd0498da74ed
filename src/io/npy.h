/* npy.h — buffer-level .npy parsing (tests, fuzzing, callers that already hold the bytes). The
 * file-level reader and writer, latup_npy_read / latup_npy_write, are public in latup.h. */
#ifndef LATUP_NPY_H
#define LATUP_NPY_H

#include "common.h"
#include "io/fileio.h"

/* Parses a whole .npy file held in buf[0..len): '<f4' or '<f2' (converted to fp32), C order,
 * 1 to 4 dims, data exactly shape x itemsize bytes. `path` names the source in messages (NULL:
 * "<buffer>"). On failure *t is left empty (data NULL, ndim 0). */
latup_status latup_npy_parse(const uint8_t *buf, size_t len, const char *path, latup_tensor *t);

/* The .npy format for latup_input_open (sniffer: the magic; sizer: header + shape x itemsize), so
 * a caller can read an input once and tell .npy from other formats by its bytes. */
extern const latup_file_format latup_npy_format;

#endif
