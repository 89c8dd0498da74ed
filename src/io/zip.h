/* zip.h — a read-only zip archive reader over a caller-owned buffer (PyTorch .pth files): the
 * central directory (ZIP64 included) validated against the local headers at open, entries found
 * by name, and extracted stored (a pointer into the buffer) or deflated (malloc'd), CRC-checked. */
#ifndef LATUP_ZIP_H
#define LATUP_ZIP_H

#include "common.h"
#include "io/fileio.h"

typedef struct {
    const char *name; /* into the archive buffer, NOT NUL-terminated: use name_len */
    size_t name_len;
    uint16_t method;       /* 0 stored, 8 deflated (others are refused at open) */
    uint32_t crc;          /* CRC-32 of the uncompressed bytes, from the central directory */
    uint64_t csize, usize; /* compressed and uncompressed sizes (ZIP64 extra applied) */
    uint64_t data_offset;  /* first byte of the entry's data, checked: data_offset + csize <= len */
} latup_zip_entry;

typedef struct {
    const uint8_t *buf; /* the whole archive, not owned, must outlive the reader */
    size_t len;
    const char *path; /* for messages, not owned */
    size_t n;
    latup_zip_entry *e; /* sorted by name (binary search; duplicate names are refused at open) */
} latup_zip;

/* Parses and validates the archive: EOCD (and ZIP64 records), every central-directory entry and
 * its local header. Nothing is copied; every failure is LATUP_E_INPUT naming path and entry. */
latup_status latup_zip_open(latup_zip *z, const uint8_t *buf, size_t len, const char *path);
void latup_zip_close(latup_zip *z);

/* The entry called exactly `name`, or NULL. */
const latup_zip_entry *latup_zip_find(const latup_zip *z, const char *name);

/* The entry's uncompressed bytes in (*data, *len), CRC-checked. Stored entries point into the
 * archive buffer and *owned is NULL; deflated entries are inflated into a malloc'd buffer that
 * is also returned in *owned (free it). Entries whose uncompressed size exceeds max_bytes are
 * refused before anything is allocated. */
latup_status latup_zip_extract(const latup_zip *z, const latup_zip_entry *e, uint64_t max_bytes,
                               const uint8_t **data, size_t *len, uint8_t **owned);

/* How long a zip archive arriving as a stream is: walks its records from the start (local
 * headers and their data, the central directory, the end records) as far as h[0..n) reaches;
 * known once the end-of-central-directory record is in. Archives the walk cannot follow (data
 * descriptors, gaps) leave the size unknown: the format's cap bounds them then. */
void latup_zip_stream_size(const uint8_t *h, size_t n, latup_size *s);

#endif
