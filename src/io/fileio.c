/* fileio.c — input files opened once, sniffed and read no further than their format allows (gzip
 * inflated on the way, regular files optionally mapped), and atomic writes: data goes
 * to a temporary "latup-XXXXXX.tmp" in <path>'s directory and is renamed over <path> only once it
 * is fully on disk, so a crash or an error never leaves a truncated output behind; the
 * temporaries alive are listed where a signal handler can remove them. */
#define _POSIX_C_SOURCE 200809L
#include "io/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* One open input, read forward only: raw bytes from fd, inflated when the content is gzip. */
typedef struct {
    int fd;
    const char *name;
    uint64_t size_hint; /* a regular file's size (0: unknown), sizes the first allocation */
    uint8_t *buf;       /* the (inflated) bytes so far */
    size_t len, cap;
    int done; /* no more bytes will come (plain: EOF; gzip: last member ended at EOF) */
    /* gzip */
    int gz, z_init, in_eof;
    z_stream zs;
    uint8_t *chunk; /* compressed input, LATUP_READ_CHUNK bytes */
} reader;

/* read(2) of up to n bytes, retried on EINTR; 0 at EOF. */
static latup_status raw_read(reader *r, uint8_t *dst, size_t n, size_t *got) {
    *got = 0;
    for (;;) {
        ssize_t k = read(r->fd, dst, n);
        if (k >= 0) {
            *got = (size_t)k;
            return LATUP_OK;
        }
        if (errno != EINTR) return io_fail(r->name, "read failed", errno);
    }
}

/* Room for at least one more byte, growing towards `want` (never past it): memory follows the
 * bytes that actually arrive, not the size a header claims. */
static latup_status grow(reader *r, uint64_t want) {
    size_t ncap = r->cap ? (r->cap > SIZE_MAX / 2 ? SIZE_MAX : r->cap * 2)
                         : (r->size_hint ? (size_t)r->size_hint + 1 : ((size_t)64 << 10));
    if (ncap < ((size_t)64 << 10)) ncap = (size_t)64 << 10;
    if ((uint64_t)ncap > want) ncap = (size_t)want;
    if (ncap <= r->len) ncap = r->len + 1;
    uint8_t *nb = realloc(r->buf, ncap);
    if (!nb) return latup_fail(LATUP_E_NOMEM, "%s: out of memory reading the file (%zu bytes)", r->name, ncap);
    r->buf = nb;
    r->cap = ncap;
    return LATUP_OK;
}

/* The next chunk of compressed input, once the last one is used up. */
static latup_status refill(reader *r) {
    z_stream *zs = &r->zs;
    if (zs->avail_in == 0 && !r->in_eof) {
        size_t got;
        latup_status st = raw_read(r, r->chunk, LATUP_READ_CHUNK, &got);
        if (st) return st;
        r->in_eof = got == 0;
        zs->next_in = r->chunk;
        zs->avail_in = (uInt)got;
    }
    return LATUP_OK;
}

/* One inflate step into buf[len..cap); reads compressed input as needed. */
static latup_status inflate_some(reader *r) {
    z_stream *zs = &r->zs;
    latup_status st;
    if ((st = refill(r))) return st;
    size_t room = r->cap - r->len < ((size_t)1 << 30) ? r->cap - r->len : ((size_t)1 << 30);
    zs->next_out = r->buf + r->len;
    zs->avail_out = (uInt)room;
    int ret = inflate(zs, Z_NO_FLUSH);
    r->len += room - zs->avail_out;
    if (ret == Z_STREAM_END) {
        /* Concatenated members are joined (as gzip -d does); anything else after one is corrupt. */
        if ((st = refill(r))) return st;
        if (zs->avail_in == 0 && r->in_eof)
            r->done = 1;
        else
            inflateReset(zs);
        return LATUP_OK;
    }
    if (ret == Z_BUF_ERROR) { /* no progress: out of input (truncated) or out of room (grown next) */
        if (zs->avail_in == 0 && r->in_eof) return latup_fail(LATUP_E_INPUT, "%s: truncated gzip data", r->name);
        return LATUP_OK;
    }
    if (ret != Z_OK)
        return latup_fail(LATUP_E_INPUT, "%s: corrupt gzip data (%s)", r->name, zs->msg ? zs->msg : "zlib error");
    return LATUP_OK;
}

/* Reads until `want` bytes are in or the content ends. */
static latup_status fill(reader *r, uint64_t want) {
    latup_status st;
    while ((uint64_t)r->len < want && !r->done) {
        if (r->len == r->cap && (st = grow(r, want))) return st;
        if (r->gz) {
            if ((st = inflate_some(r))) return st;
            continue;
        }
        size_t room = r->cap - r->len < ((size_t)1 << 30) ? r->cap - r->len : ((size_t)1 << 30), got;
        if ((st = raw_read(r, r->buf + r->len, room, &got))) return st;
        r->len += got;
        r->done = got == 0;
    }
    return LATUP_OK;
}

/* Switches to inflating when the content starts with the gzip magic. */
static latup_status detect_gzip(reader *r) {
    uint8_t head[2];
    size_t n = 0, got;
    latup_status st;
    while (n < 2) {
        if ((st = raw_read(r, head + n, 2 - n, &got))) return st;
        if (got == 0) break;
        n += got;
    }
    if (n == 2 && head[0] == 0x1F && head[1] == 0x8B) {
        if (!(r->chunk = latup_malloc(LATUP_READ_CHUNK, "a read buffer"))) return LATUP_E_NOMEM;
        if (inflateInit2(&r->zs, 15 + 16) != Z_OK) /* 15: max window, +16: gzip wrapper only */
            return latup_fail(LATUP_E_NOMEM, "%s: cannot initialise zlib", r->name);
        r->z_init = r->gz = 1;
        memcpy(r->chunk, head, 2);
        r->zs.next_in = r->chunk;
        r->zs.avail_in = 2;
        r->size_hint = 0;
        return LATUP_OK;
    }
    if (n) {
        if ((st = grow(r, UINT64_MAX))) return st;
        memcpy(r->buf, head, n);
    }
    r->len = n;
    r->done = n < 2; /* the loop above stops short of 2 bytes only at the end of the file */
    return LATUP_OK;
}

static latup_status too_big(const reader *r, uint64_t max, const char *fmt_name) {
    if (fmt_name)
        return latup_fail(LATUP_E_INPUT, "%s: %s larger than %llu bytes, the most %s may hold", r->name,
                          r->gz ? "inflates to" : "is", (unsigned long long)max, fmt_name);
    return latup_fail(LATUP_E_INPUT, "%s: %s larger than the limit of %llu bytes", r->name,
                      r->gz ? "inflates to" : "is", (unsigned long long)max);
}

/* "expected A, B or C, found bytes 00 01 ..." (or the only candidate's own message) */
static latup_status unknown_format(const reader *r, const latup_file_format *const *f, int n, const char *kind) {
    if (n == 1 && f[0]->refuse) {
        latup_status st = f[0]->refuse(r->buf, r->len, r->name);
        if (st) return st;
    }
    char msg[1024], *p = msg;
    size_t left = sizeof msg;
    for (int i = 0; i < n && left > 1; i++) {
        int k = snprintf(p, left, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", f[i]->name);
        if (k < 0 || (size_t)k >= left) break;
        p += k, left -= (size_t)k;
    }
    if (r->len == 0) return latup_fail(LATUP_E_INPUT, "%s: empty file: expected %s", r->name, msg);
    char hex[64] = "";
    size_t shown = r->len < 9 ? r->len : 9, at = 0;
    for (size_t i = 0; i < shown; i++)
        at += (size_t)snprintf(hex + at, sizeof hex - at, i ? " %02x" : "%02x", r->buf[i]);
    return latup_fail(LATUP_E_INPUT, "%s: not %s: expected %s, found bytes %s%s", r->name, kind, msg, hex,
                      r->len > shown ? " ..." : "");
}

/* After the sniff: asks the format's sizer how big the file is, then reads exactly that much. A
 * regular file of known size is read whole. */
static latup_status read_sized(reader *r, const latup_file_format *f) {
    uint64_t limit = f->max_bytes;
    latup_status st;
    if (!r->gz && r->size_hint) {
        if (r->size_hint > limit) return too_big(r, limit, f->name);
    } else if (f->size && limit < UINT64_MAX) {
        latup_size s = {0};
        for (;;) {
            if ((st = f->size(r->buf, r->len, r->done, r->name, &s))) return st;
            if (s.known) {
                if (s.total > limit)
                    return latup_fail(LATUP_E_INPUT,
                                      "%s: its header declares %llu bytes, more than %llu, the most %s may hold",
                                      r->name, (unsigned long long)s.total, (unsigned long long)limit, f->name);
                limit = s.total;
                break;
            }
            if (r->done || s.need <= r->len) break; /* short file: the parser says what is missing */
            if ((st = fill(r, s.need < limit + 1 ? s.need : limit + 1))) return st;
            if ((uint64_t)r->len > limit) return too_big(r, limit, f->name);
        }
        if ((st = fill(r, limit + 1))) return st;
        if ((uint64_t)r->len > limit && s.known)
            return latup_fail(LATUP_E_INPUT, "%s: %s past the %llu bytes its header describes", r->name,
                              r->gz ? "inflates" : "continues", (unsigned long long)limit);
        if ((uint64_t)r->len > limit) return too_big(r, limit, f->name);
        return LATUP_OK;
    }
    if ((st = fill(r, limit == UINT64_MAX ? limit : limit + 1))) return st;
    if ((uint64_t)r->len > limit) return too_big(r, limit, f->name);
    return LATUP_OK;
}

static int sniff_any(const uint8_t *head, size_t n) {
    (void)head, (void)n;
    return 1;
}

static latup_status open_fd(const char *path, int *fd, const char **name, struct stat *sb) {
    if (strcmp(path, "-") == 0) {
        *fd = STDIN_FILENO;
        *name = "<stdin>";
    } else {
        *name = path;
        do *fd = open(path, O_RDONLY | O_CLOEXEC);
        while (*fd < 0 && errno == EINTR);
        if (*fd < 0) return io_fail(path, "cannot open", errno);
    }
    if (fstat(*fd, sb) != 0) return io_fail(*name, "cannot stat", errno);
    if (S_ISDIR(sb->st_mode)) return io_fail(*name, "cannot read", EISDIR);
    return LATUP_OK;
}

latup_status latup_input_open(latup_input *in, const char *path, const latup_file_format *const *formats, int n,
                              const char *kind, unsigned flags) {
    memset(in, 0, sizeof *in);
    reader r;
    memset(&r, 0, sizeof r);
    r.fd = -1;
    struct stat sb;
    latup_status st = open_fd(path, &r.fd, &r.name, &sb);
    in->name = r.name;
    size_t sniff_n = 0;
    for (int i = 0; i < n; i++)
        if (formats[i]->sniff_bytes > sniff_n) sniff_n = formats[i]->sniff_bytes;

    /* A regular, uncompressed file can be mapped: its pages are read when a tensor is used. */
    if (!st && (flags & LATUP_INPUT_MAP) && S_ISREG(sb.st_mode) && sb.st_size > 0 &&
        (uint64_t)sb.st_size < (uint64_t)SIZE_MAX) {
        uint8_t head[2];
        ssize_t k = pread(r.fd, head, 2, 0);
        if (k < 0) st = io_fail(r.name, "read failed", errno);
        else if (!(k == 2 && head[0] == 0x1F && head[1] == 0x8B)) {
            void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, r.fd, 0);
            if (map != MAP_FAILED) {
                close(r.fd);
                in->data = map;
                in->len = (size_t)sb.st_size;
                in->mapped = 1;
                for (int i = 0; i < n && !in->format; i++) {
                    const size_t k = in->len < formats[i]->sniff_bytes ? in->len : formats[i]->sniff_bytes;
                    if (formats[i]->sniff(in->data, k)) in->format = formats[i];
                }
                if (in->format && (uint64_t)in->len > in->format->max_bytes) {
                    r.len = in->len, r.buf = (uint8_t *)(uintptr_t)in->data; /* for the message only */
                    st = too_big(&r, in->format->max_bytes, in->format->name);
                } else if (!in->format) {
                    r.len = in->len, r.buf = (uint8_t *)(uintptr_t)in->data;
                    st = unknown_format(&r, formats, n, kind);
                }
                if (st) latup_input_close(in);
                in->name = r.name;
                return st;
            }
            /* not mappable (some file systems): read it instead */
        }
    }
    r.size_hint = !st && S_ISREG(sb.st_mode) && sb.st_size > 0 ? (uint64_t)sb.st_size : 0;
    if (!st) st = detect_gzip(&r);
    if (!st) st = fill(&r, sniff_n);
    const latup_file_format *f = NULL;
    for (int i = 0; !st && i < n && !f; i++)
        if (formats[i]->sniff(r.buf, r.len < formats[i]->sniff_bytes ? r.len : formats[i]->sniff_bytes))
            f = formats[i];
    if (!st && !f) st = unknown_format(&r, formats, n, kind);
    if (!st) st = read_sized(&r, f);
    if (r.z_init) inflateEnd(&r.zs);
    free(r.chunk);
    if (r.fd > STDIN_FILENO) close(r.fd);
    if (st) {
        free(r.buf);
        return st;
    }
    in->data = r.buf ? r.buf : latup_malloc(1, "an empty file");
    if (!in->data) return LATUP_E_NOMEM;
    in->len = r.len;
    in->format = f;
    in->gzip = r.gz;
    return LATUP_OK;
}

void latup_input_close(latup_input *in) {
    if (!in) return;
    if (in->mapped)
        munmap((void *)(uintptr_t)in->data, in->len);
    else
        free((void *)(uintptr_t)in->data);
    memset(in, 0, sizeof *in);
}

latup_status latup_read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    /* any content; a NULL name gives the plain limit messages */
    const latup_file_format any = {NULL, 0, sniff_any, NULL, max_bytes, NULL};
    const latup_file_format *fmts[1] = {&any};
    latup_input in;
    latup_status st = latup_input_open(&in, path, fmts, 1, "readable", 0);
    if (st) return st;
    *out = (uint8_t *)(uintptr_t)in.data;
    *out_len = in.len;
    return LATUP_OK;
}

/* ---- the temporaries a signal handler removes ------------------------------------------------
 * latup_remove_temporaries() runs in signal handlers, maybe on another thread than the one
 * writing, maybe interrupting a malloc: it may only load lock-free atomics and call unlink(2).
 * So the list is slots of atomic pointers in blocks that, once published, are never moved or
 * freed; a slot holds a malloc'd copy of a path or NULL. A copy taken out of its slot is freed
 * only while no handler runs (g_handlers == 0): a handler raises the count before it reads any
 * slot, the writer empties the slot before it reads the count, both sequentially consistent, so
 * one of them sees the other. A copy a handler might still read is left (the process is most
 * likely dying). A slot's copy is an action: 'U' and a path (remove it), or 'R', a kept file's
 * name, '\0' and its destination (put it back: latup_kept_restore). */
_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
               "latup_remove_temporaries needs lock-free atomics to be async-signal-safe");

#define LIST_BLOCK 256
typedef struct {
    _Atomic(char *) path[LIST_BLOCK];
} list_block;
static _Atomic(list_block *) g_blocks[LATUP_SIGNAL_LIST_MAX / LIST_BLOCK];
static atomic_int g_handlers;

static void list_drop(char *copy) {
    if (copy && atomic_load(&g_handlers) == 0) free(copy);
}

/* kind, a, and for 'R' a '\0' and b: a slot's action */
static char *action(char kind, const char *a, const char *b) {
    const size_t na = strlen(a), nb = b ? strlen(b) + 1 : 0;
    char *s = malloc(1 + na + 1 + nb);
    if (!s) return NULL;
    s[0] = kind;
    memcpy(s + 1, a, na + 1);
    if (b) memcpy(s + 1 + na + 1, b, nb);
    return s;
}

static int list_add(char *copy) {
    if (!copy) return -1;
    for (int b = 0; b < LATUP_SIGNAL_LIST_MAX / LIST_BLOCK; b++) {
        list_block *blk = atomic_load(&g_blocks[b]);
        if (!blk) {
            list_block *fresh = calloc(1, sizeof *fresh), *none = NULL;
            if (!fresh) break;
            for (int k = 0; k < LIST_BLOCK; k++) atomic_init(&fresh->path[k], NULL);
            if (atomic_compare_exchange_strong(&g_blocks[b], &none, fresh)) blk = fresh;
            else free(fresh), blk = none; /* another thread published this block first */
        }
        for (int k = 0; k < LIST_BLOCK; k++) {
            char *empty = NULL;
            if (!atomic_load(&blk->path[k]) && atomic_compare_exchange_strong(&blk->path[k], &empty, copy))
                return b * LIST_BLOCK + k;
        }
    }
    free(copy);
    return -1;
}

int latup_signal_list(const char *path) { return list_add(action('U', path, NULL)); }

static _Atomic(char *) *list_slot(int entry) {
    if (entry < 0 || entry >= LATUP_SIGNAL_LIST_MAX) return NULL;
    list_block *blk = atomic_load(&g_blocks[entry / LIST_BLOCK]);
    return blk ? &blk->path[entry % LIST_BLOCK] : NULL;
}

void latup_signal_forget(int entry) {
    _Atomic(char *) *slot = list_slot(entry);
    if (slot) list_drop(atomic_exchange(slot, NULL));
}

/* The entry holds `copy` from now on (one atomic store: never neither, never half of either). */
static void list_replace(int entry, char *copy) {
    _Atomic(char *) *slot = list_slot(entry);
    if (slot && copy) list_drop(atomic_exchange(slot, copy));
    else free(copy);
}

/* rename(2) and unlink(2) only: async-signal-safe. */
static int restore(const char *kept, const char *path) {
    if (rename(kept, path) != 0) return -1;
    unlink(kept); /* still there when both names were links to one file (rename did nothing) */
    return 0;
}

void latup_remove_temporaries(void) {
    const int saved = errno;
    atomic_fetch_add(&g_handlers, 1);
    for (int b = 0; b < LATUP_SIGNAL_LIST_MAX / LIST_BLOCK; b++) {
        list_block *blk = atomic_load(&g_blocks[b]);
        if (!blk) break; /* blocks are published in order */
        for (int k = 0; k < LIST_BLOCK; k++) {
            const char *p = atomic_load(&blk->path[k]);
            if (p && p[0] == 'R') restore(p + 1, p + 1 + strlen(p + 1) + 1);
            else if (p) unlink(p + 1);
        }
    }
    atomic_fetch_sub(&g_handlers, 1);
    errno = saved;
}

/* ---- atomic writing --------------------------------------------------------------------------- */

static void af_clear(latup_atomic_file *af) {
    latup_signal_forget(af->slot - 1);
    free(af->final_path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

/* Fills the trailing XXXXXX of `name` (before ".tmp") with letters and digits. Not security-grade
 * randomness: O_EXCL in the caller is what guarantees we never open someone else's file. */
static void fill_random_suffix(char *name) {
    static const char chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static _Atomic uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 20) ^
                 (counter++ * 0x9E3779B97F4A7C15ull);
    char *p = name + strlen(name) - 10;
    for (int k = 0; k < 6; k++) {
        x ^= x >> 31; /* splitmix-style mixing */
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 27;
        p[k] = chars[x % (sizeof chars - 1)];
    }
}

#define TMP_NAME "latup-XXXXXX.tmp"

latup_status latup_atomic_open(latup_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    if (!path[0]) return latup_fail(LATUP_E_USAGE, "an output path is empty");
    /* the temporary sits in path's directory: everything up to its last '/' */
    const char *slash = strrchr(path, '/');
    const size_t n = strlen(path), dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    af->final_path = latup_malloc(n + 1, "a file name");
    af->tmp_path = latup_malloc(dir_len + sizeof TMP_NAME, "a file name");
    if (!af->final_path || !af->tmp_path) {
        af_clear(af);
        return LATUP_E_NOMEM;
    }
    memcpy(af->final_path, path, n + 1);
    memcpy(af->tmp_path, path, dir_len);
    /* Like mkstemp, but with mode 0666 so the umask applies as for any new file (mkstemp gives
     * 0600, and reading the umask to fix that up would change it process-wide for a moment). */
    int fd = -1, e = 0;
    for (int attempt = 0; attempt < 100 && fd < 0; attempt++) {
        memcpy(af->tmp_path + dir_len, TMP_NAME, sizeof TMP_NAME);
        fill_random_suffix(af->tmp_path);
        fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        e = errno;
        if (fd < 0 && e != EEXIST) break;
    }
    /* Listed once it is ours (listed before the open, a signal could remove someone else's file
     * of that name); a signal in between leaves it, as a SIGKILL would. */
    if (fd >= 0) af->slot = latup_signal_list(af->tmp_path) + 1;
    if (fd < 0) {
        latup_status st = io_fail(path, "cannot create a temporary file next to it", e);
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

static latup_status commit(latup_atomic_file *af, int *held) {
    if (held) *held = -1;
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
    if (!st && held && af->slot > 0) { /* the entry passes to the destination, now in place */
        list_replace(af->slot - 1, action('U', af->final_path, NULL));
        *held = af->slot - 1;
        af->slot = 0;
    }
    af_clear(af);
    return st;
}

latup_status latup_atomic_commit(latup_atomic_file *af) { return commit(af, NULL); }
latup_status latup_atomic_commit_held(latup_atomic_file *af, int *held) { return commit(af, held); }

void latup_atomic_abort(latup_atomic_file *af) {
    if (!af) return;
    if (af->f) fclose(af->f);
    if (af->tmp_path) unlink(af->tmp_path);
    af_clear(af);
}

/* ---- files an output set replaces ---------------------------------------------------------------- */

#define KEPT_NAME "latup-XXXXXX.bak"

latup_status latup_keep_existing(const char *path, char **kept, int *held) {
    *kept = NULL, *held = -1;
    struct stat sb;
    if (lstat(path, &sb) != 0 || S_ISDIR(sb.st_mode)) return LATUP_OK; /* none, or the rename fails on it */
    const char *slash = strrchr(path, '/');
    const size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    char *name = latup_malloc(dir_len + sizeof KEPT_NAME, "a file name");
    if (!name) return LATUP_E_NOMEM;
    memcpy(name, path, dir_len);
    for (int attempt = 0; attempt < 100; attempt++) {
        memcpy(name + dir_len, KEPT_NAME, sizeof KEPT_NAME);
        fill_random_suffix(name);
        /* a second name for what is there, a symlink itself rather than its target (flags 0) */
        if (linkat(AT_FDCWD, path, AT_FDCWD, name, 0) == 0) {
            /* listed once it is ours; until the rename onto path, restoring it only removes it */
            *held = list_add(action('R', name, path));
            *kept = name;
            return LATUP_OK;
        }
        if (errno == ENOENT) { /* nothing there to keep */
            free(name);
            return LATUP_OK;
        }
        if (errno != EEXIST) break;
    }
    latup_status st = io_fail(path, "cannot keep the existing file under a second name while the other outputs "
                                    "are put in place (a hard link in its directory)", errno);
    free(name);
    return st;
}

int latup_kept_restore(const char *kept, const char *path) { return restore(kept, path); }
