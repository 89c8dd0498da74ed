/* fileio.h — input files opened once, sniffed, and read (or mapped) no further than their format
 * allows, with transparent gzip; and atomic writes (temporary file in the same directory, renamed
 * into place on success, removed on failure). */
#ifndef LATUP_FILEIO_H
#define LATUP_FILEIO_H

#include "common.h"

/* ---- reading inputs ----------------------------------------------------------------------------
 * An input file is opened once and read once: the format is sniffed from the bytes already read,
 * never by opening the file again, so FIFOs, pipes and /dev/stdin work; the path "-" is standard
 * input (named "<stdin>" in messages). gzip-compressed content (magic 1f 8b) is inflated as it is
 * read. Nothing is read or inflated past what the format allows: the candidates' sniffers look at
 * the first bytes (content that matches none is refused at once, e.g. /dev/zero), then the
 * format's sizer reads its header and says how large the whole file is, and reading stops there
 * (one byte more is an error), so a gzip bomb or an endless device costs at most the size its
 * own header declares, bounded by the format's max_bytes. A regular uncompressed file, whose size
 * is known up front, is read whole (up to max_bytes) and left to the parser to judge. */

/* Compressed input is read in chunks of this size (tests place the gzip trailer across one). */
#define LATUP_READ_CHUNK ((size_t)1 << 18)

/* A sizer's answer. */
typedef struct {
    int known;      /* 1: the whole file is `total` bytes (its header says so); 0: see `need` */
    uint64_t total; /* known: the size the file has according to its header */
    uint64_t need;  /* not known: call again once this many bytes are in (or the file ends) */
    uint64_t state; /* the sizer's own cursor between calls (starts at 0) */
} latup_size;

typedef struct {
    /* What the format is called in "expected A or B" messages, e.g. "a PyTorch zip ('PK')". */
    const char *name;
    /* Whether head[0..n) can start this format; n = min(sniff_bytes, file size). */
    size_t sniff_bytes;
    int (*sniff)(const uint8_t *head, size_t n);
    /* From head[0..n) (the first n bytes; all of the file when at_eof), fills *s. A malformed
     * header is LATUP_E_INPUT with the reader's own message. NULL: max_bytes is the only bound. */
    latup_status (*size)(const uint8_t *head, size_t n, int at_eof, const char *path, latup_size *s);
    uint64_t max_bytes; /* the most any file of this format may hold (inflated) */
    /* When this is the only candidate and the content does not sniff as it: the parser's own
     * message for those first n bytes (NULL: a generic "not <kind>" message). */
    latup_status (*refuse)(const uint8_t *head, size_t n, const char *path);
} latup_file_format;

typedef struct {
    const uint8_t *data; /* the file's (inflated) bytes */
    size_t len;
    const latup_file_format *format; /* the candidate that matched */
    const char *name;           /* the path, or "<stdin>" for "-": what messages call the file */
    int mapped;                 /* 1: data is a read-only mapping of the file; 0: malloc'd */
    int gzip;                   /* the file was gzip-compressed */
} latup_input;

#define LATUP_INPUT_MAP 1 /* map a regular, uncompressed file instead of reading it */

/* Opens and reads (or maps) `path` as one of the n candidate formats, tried in order. Content that
 * none of them sniffs is LATUP_E_INPUT: "<path>: not <kind>: expected <A> or <B>, found bytes ...".
 * A mapped file's pages are read on first touch; the file must not be truncated while mapped. */
latup_status latup_input_open(latup_input *in, const char *path, const latup_file_format *const *formats, int n,
                              const char *kind, unsigned flags);
void latup_input_close(latup_input *in);

/* Reads the whole file (any content; "-" is stdin) into a malloc'd buffer, inflating gzip; the
 * (inflated) size is capped at max_bytes (error if larger). For tests and tools: inputs of a
 * known format go through latup_input_open. */
latup_status latup_read_file(const char *path, size_t max_bytes, uint8_t **buf, size_t *len);

/* ---- atomic writing ----------------------------------------------------------------------------
 * open creates a temporary "latup-XXXXXX.tmp" in the destination's directory (a short name, so
 * every legal destination name works: a 255-byte name would not fit a suffix), O_CREAT|O_EXCL|
 * O_NOFOLLOW with mode 0666 less the umask; commit flushes, fsyncs, closes and renames it over the
 * destination (a symlink there is replaced, never followed); abort closes and removes it. While it
 * exists the temporary is listed for latup_remove_temporaries() (latup.h), so a signal handler can
 * remove it. An empty path is LATUP_E_USAGE. */
typedef struct {
    FILE *f;
    char *final_path;
    char *tmp_path;
    int slot; /* 1 + its entry in the list of temporaries a signal removes; 0: none */
} latup_atomic_file;

latup_status latup_atomic_open(latup_atomic_file *af, const char *path);
latup_status latup_atomic_write(latup_atomic_file *af, const void *data, size_t n);
latup_status latup_atomic_commit(latup_atomic_file *af);
void latup_atomic_abort(latup_atomic_file *af);

/* latup_atomic_commit for a file that is one of a set (latup_outputs_commit): after the rename,
 * the entry that listed the temporary lists the destination instead, in *held, so a signal
 * before the whole set is in place removes this file too (all or none). The caller ends that
 * with latup_signal_forget(*held); *held is -1 on failure or when nothing is listed. */
latup_status latup_atomic_commit_held(latup_atomic_file *af, int *held);

/* The list latup_remove_temporaries() walks: latup_signal_list adds a copy of path (returns its
 * entry, or -1 when it cannot: out of memory, or LATUP_SIGNAL_LIST_MAX entries live, and then a
 * signal leaves that file); latup_signal_forget(-1) does nothing. Thread-safe, lock-free. */
/* An output set replacing files (latup_outputs_commit): before any of its renames, each file
 * that one of them will replace, but the last, gets a second name in its directory (a hard link,
 * "latup-XXXXXX.bak", malloc'd into *kept; NULL when nothing is at path, or a directory, which
 * the rename then refuses) and an entry *held on the
 * signal list that puts it back. latup_kept_restore(kept, path) puts it back: rename onto path,
 * then remove the name (it is left, and -1 returned, when the rename fails); before the rename
 * of the set's file onto path it only removes the second name. The caller ends the entry with
 * latup_signal_forget(*held). LATUP_E_IO when no link can be made (a file system without hard
 * links): nothing is replaced then. */
latup_status latup_keep_existing(const char *path, char **kept, int *held);
int latup_kept_restore(const char *kept, const char *path);

#define LATUP_SIGNAL_LIST_MAX 65536
int latup_signal_list(const char *path);
void latup_signal_forget(int entry);

#endif
