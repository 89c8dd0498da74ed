/* fileio.h — whole-file reads (with transparent gzip) and atomic writes (temporary file in the
 * same directory, renamed into place on success, removed on failure). */
#ifndef LATUP_FILEIO_H
#define LATUP_FILEIO_H

#include "common.h"

/* Reads the whole file into a malloc'd buffer. If it starts with the gzip magic (1f 8b) it is
 * inflated; the inflated size is capped at max_bytes (error if larger). */
latup_status latup_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len);

/* Atomic writer: open creates "<path>.tmp.XXXXXX"; commit flushes, closes and renames;
 * abort closes and removes the temporary. */
typedef struct {
    FILE *f;
    char *final_path;
    char *tmp_path;
} latup_atomic_file;

latup_status latup_atomic_open(latup_atomic_file *af, const char *path);
latup_status latup_atomic_write(latup_atomic_file *af, const void *data, size_t n);
latup_status latup_atomic_commit(latup_atomic_file *af);
void latup_atomic_abort(latup_atomic_file *af);

#endif
