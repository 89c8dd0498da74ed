/* fileio.c — whole-file reads with transparent gzip inflation (zlib), and atomic writes: data goes
 * to "<path>.tmp.XXXXXX" in the same directory and is renamed over <path> only once it is fully on
 * disk, so a crash or an error never leaves a truncated output behind. */
#define _POSIX_C_SOURCE 200809L
#include "io/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/* strerror is not thread-safe; the XSI strerror_r is (we build without _GNU_SOURCE). */
static const char *errtext(int e, char *buf, size_t n) {
    if (strerror_r(e, buf, n) != 0) snprintf(buf, n, "error %d", e);
    return buf;
}

static latup_status io_fail(const char *path, const char *what, int e) {
    char eb[128];
    return latup_fail(LATUP_E_IO, "%s: %s: %s", path, what, errtext(e, eb, sizeof eb));
}

/* ---- reading ---------------------------------------------------------------------------------- */

/* Grows *buf so it can hold more than *cap bytes, never beyond `limit`. */
static latup_status grow(uint8_t **buf, size_t *cap, size_t limit, const char *path) {
    size_t ncap = *cap < ((size_t)64 << 10) ? ((size_t)64 << 10) : *cap;
    ncap = ncap > SIZE_MAX / 2 ? SIZE_MAX : ncap * 2;
    if (ncap > limit) ncap = limit;
    uint8_t *nb = realloc(*buf, ncap);
    if (!nb) return latup_fail(LATUP_E_NOMEM, "%s: out of memory reading the file (%zu bytes)", path, ncap);
    *buf = nb;
    *cap = ncap;
    return LATUP_OK;
}

static latup_status too_big(const char *path, bool gz, size_t max_bytes) {
    return latup_fail(LATUP_E_INPUT, "%s: %s larger than the limit of %zu bytes", path,
                      gz ? "inflates to" : "is", max_bytes);
}

/* Inflates the gzip stream whose first `n` bytes are already in `chunk`. Concatenated gzip
 * members are joined (as gzip -d does); anything else after a member is corrupt data. */
static latup_status read_gzip(FILE *f, const char *path, uint8_t *chunk, size_t chunk_cap, size_t n,
                              size_t max_bytes, uint8_t **out, size_t *out_len) {
    /* One spare byte beyond max_bytes tells "exactly max_bytes" from "too big". */
    size_t limit = max_bytes == SIZE_MAX ? SIZE_MAX : max_bytes + 1;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK) /* 15: max window, +16: gzip wrapper only */
        return latup_fail(LATUP_E_NOMEM, "%s: cannot initialise zlib", path);
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    bool eof = false;
    latup_status st = LATUP_OK;
    zs.next_in = chunk;
    zs.avail_in = (uInt)n;
    for (;;) {
        if (zs.avail_in == 0 && !eof) {
            n = fread(chunk, 1, chunk_cap, f);
            if (n == 0) {
                if (ferror(f)) {
                    st = io_fail(path, "read failed", errno);
                    break;
                }
                eof = true;
            }
            zs.next_in = chunk;
            zs.avail_in = (uInt)n;
        }
        if (len == cap) {
            if (cap >= limit) {
                st = too_big(path, true, max_bytes);
                break;
            }
            if ((st = grow(&buf, &cap, limit, path))) break;
        }
        /* avail_out is a uInt: hand zlib at most 1 GiB of output per call */
        size_t room = cap - len < ((size_t)1 << 30) ? cap - len : ((size_t)1 << 30);
        zs.next_out = buf + len;
        zs.avail_out = (uInt)room;
        int ret = inflate(&zs, Z_NO_FLUSH);
        len += room - zs.avail_out;
        if (len > max_bytes) {
            st = too_big(path, true, max_bytes);
            break;
        }
        if (ret == Z_STREAM_END) {
            if (zs.avail_in == 0 && !eof) {
                n = fread(chunk, 1, chunk_cap, f);
                if (n == 0 && ferror(f)) {
                    st = io_fail(path, "read failed", errno);
                    break;
                }
                eof = n == 0;
                zs.next_in = chunk;
                zs.avail_in = (uInt)n;
            }
            if (zs.avail_in == 0 && eof) break; /* done */
            inflateReset(&zs);                  /* another member follows */
        } else if (ret == Z_BUF_ERROR) {
            /* no progress possible: out of input (truncated) or out of room (grown above) */
            if (zs.avail_in == 0 && eof) {
                st = latup_fail(LATUP_E_INPUT, "%s: truncated gzip data", path);
                break;
            }
        } else if (ret != Z_OK) {
            st =
                latup_fail(LATUP_E_INPUT, "%s: corrupt gzip data (%s)", path, zs.msg ? zs.msg : "zlib error");
            break;
        }
    }
    inflateEnd(&zs);
    if (st) {
        free(buf);
        return st;
    }
    *out = buf ? buf : malloc(1);
    if (!*out) return latup_fail(LATUP_E_NOMEM, "%s: out of memory", path);
    *out_len = len;
    return LATUP_OK;
}

/* Plain file: the first `n` bytes are already in `chunk`. A regular file is read into a buffer
 * of its size (plus one byte to observe EOF); pipes and growing files fall back to doubling. */
static latup_status read_plain(FILE *f, const char *path, const uint8_t *chunk, size_t n, uint64_t size_hint,
                               size_t max_bytes, uint8_t **out, size_t *out_len) {
    if (size_hint > (uint64_t)max_bytes) return too_big(path, false, max_bytes);
    size_t limit = max_bytes == SIZE_MAX ? SIZE_MAX : max_bytes + 1;
    size_t cap = (size_t)size_hint < limit ? (size_t)size_hint + 1 : limit;
    if (cap < n) cap = n;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) return latup_fail(LATUP_E_NOMEM, "%s: out of memory reading %zu bytes", path, cap);
    memcpy(buf, chunk, n);
    size_t len = n;
    latup_status st = LATUP_OK;
    for (;;) {
        if (len > max_bytes) {
            st = too_big(path, false, max_bytes);
            break;
        }
        if (len == cap && (st = grow(&buf, &cap, limit, path))) break;
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) st = io_fail(path, "read failed", errno);
            break;
        }
    }
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    *out_len = len;
    return LATUP_OK;
}

latup_status latup_read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return io_fail(path, "cannot open", errno);
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        latup_status st = io_fail(path, "cannot stat", errno);
        fclose(f);
        return st;
    }
    if (S_ISDIR(sb.st_mode)) {
        fclose(f);
        return io_fail(path, "cannot read", EISDIR);
    }
    /* Only a hint: the file may change while we read it. */
    uint64_t size_hint = S_ISREG(sb.st_mode) && sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
    /* The first chunk decides between gzip and plain; it is reused as the inflate input buffer. */
    const size_t chunk_cap = (size_t)1 << 18;
    uint8_t *chunk = latup_malloc(chunk_cap, "a read buffer");
    if (!chunk) {
        fclose(f);
        return LATUP_E_NOMEM;
    }
    latup_status st;
    size_t n = fread(chunk, 1, chunk_cap, f);
    if (n < chunk_cap && ferror(f))
        st = io_fail(path, "read failed", errno);
    else if (n >= 2 && chunk[0] == 0x1F && chunk[1] == 0x8B)
        st = read_gzip(f, path, chunk, chunk_cap, n, max_bytes, out, out_len);
    else
        st = read_plain(f, path, chunk, n, size_hint, max_bytes, out, out_len);
    free(chunk);
    fclose(f);
    return st;
}

/* ---- atomic writing --------------------------------------------------------------------------- */

static void af_clear(latup_atomic_file *af) {
    free(af->final_path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

/* Fills the trailing XXXXXX of `name` with letters and digits. Not security-grade randomness:
 * O_EXCL in the caller is what guarantees we never open someone else's file. */
static void fill_random_suffix(char *name) {
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 20) ^
                 (counter++ * 0x9E3779B97F4A7C15ull);
    char *p = name + strlen(name) - 6;
    for (int k = 0; k < 6; k++) {
        x ^= x >> 31; /* splitmix-style mixing */
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 27;
        p[k] = chars[x % (sizeof chars - 1)];
    }
}

latup_status latup_atomic_open(latup_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    size_t n = strlen(path);
    af->final_path = latup_malloc(n + 1, "a file name");
    af->tmp_path = latup_malloc(n + sizeof ".tmp.XXXXXX", "a file name");
    if (!af->final_path || !af->tmp_path) {
        af_clear(af);
        return LATUP_E_NOMEM;
    }
    memcpy(af->final_path, path, n + 1);
    /* Like mkstemp, but with mode 0666 so the umask applies as for any new file (mkstemp gives
     * 0600, and reading the umask to fix that up would change it process-wide for a moment). */
    int fd = -1;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        memcpy(af->tmp_path, path, n);
        memcpy(af->tmp_path + n, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
        fill_random_suffix(af->tmp_path);
        fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        latup_status st = io_fail(path, "cannot create a temporary file next to it", errno);
        af_clear(af);
        return st;
    }
    if (!(af->f = fdopen(fd, "wb"))) {
        latup_status st = io_fail(path, "cannot set up the temporary file", errno);
        close(fd);
        unlink(af->tmp_path);
        af_clear(af);
        return st;
    }
    return LATUP_OK;
}

latup_status latup_atomic_write(latup_atomic_file *af, const void *data, size_t n) {
    if (!af->f) return latup_fail(LATUP_E_INTERNAL, "write to a closed atomic file");
    if (n && fwrite(data, 1, n, af->f) != n) return io_fail(af->final_path, "write failed", errno);
    return LATUP_OK;
}

latup_status latup_atomic_commit(latup_atomic_file *af) {
    if (!af->f) return latup_fail(LATUP_E_INTERNAL, "commit of a closed atomic file");
    latup_status st = LATUP_OK;
    /* fsync before rename: otherwise a crash can leave the new name pointing at empty data. */
    if (fflush(af->f) != 0 || ferror(af->f))
        st = io_fail(af->final_path, "write failed", errno);
    else if (fsync(fileno(af->f)) != 0)
        st = io_fail(af->final_path, "fsync failed", errno);
    int close_errno = 0;
    if (fclose(af->f) != 0) close_errno = errno;
    af->f = NULL;
    if (!st && close_errno) st = io_fail(af->final_path, "close failed", close_errno);
    if (!st && rename(af->tmp_path, af->final_path) != 0)
        st = io_fail(af->final_path, "cannot rename the temporary file onto it", errno);
    if (st) unlink(af->tmp_path);
    af_clear(af);
    return st;
}

void latup_atomic_abort(latup_atomic_file *af) {
    if (!af) return;
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    af_clear(af);
}
