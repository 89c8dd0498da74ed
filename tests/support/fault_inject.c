/* fault_inject.c — an LD_PRELOAD shim for tests/test_cli_contract.c: it logs and breaks the calls
 * latup's atomic writes make (open, fwrite, fsync, rename), so a test can kill or signal latup
 * mid-write or at the rename, fail an fsync or a rename, and check the order of the calls. A
 * temporary is a file named "latup-XXXXXX.tmp" (src/io/fileio.c). Controlled by:
 *   FAULT_LOG=FILE              append "open PATH FLAGS FD", "fsync FD", "rename A B" lines
 *   FAULT_KILL_AFTER_BYTES=N    SIGKILL once N bytes went through fwrite to files (fd > 2)
 *   FAULT_KILL_AT_RENAME=1      SIGKILL at the first rename of a temporary
 *   FAULT_FSYNC_FAIL=1          every fsync fails with EIO
 *   FAULT_RENAME_FAIL_AT=K      the K-th rename of a temporary fails with EIO (nothing renamed)
 *   FAULT_SIGNAL=S              with one of these, raise(S) (once) where it says, as a user's
 *   FAULT_SIGNAL_AFTER_BYTES=N    kill would arrive: once N bytes went through fwrite to files
 *   FAULT_SIGNAL_AT_RENAME=K      at the K-th rename of a temporary, before it is renamed
 * Built without sanitizers (make: $(BUILD)/tests/support/fault_inject.so). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static long long g_bytes, g_renames;
static int g_signalled;

/* latup's temporaries: "latup-XXXXXX.tmp" in the destination's directory */
static int is_temporary(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    return strlen(base) == 16 && !strncmp(base, "latup-", 6) && !strcmp(base + 12, ".tmp");
}

/* FAULT_SIGNAL, once: the process's own handler decides what happens next. */
static void send_signal(void) {
    const char *v = getenv("FAULT_SIGNAL");
    if (!v || g_signalled) return;
    g_signalled = 1;
    raise((int)strtol(v, NULL, 10));
}

static void log_line(const char *fmt, ...) {
    const char *path = getenv("FAULT_LOG");
    if (!path) return;
    char line[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = sizeof line - 1;
    /* raw syscalls: the log must not go through the functions shimmed here */
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
    close(fd);
}

static long env_num(const char *name) {
    const char *v = getenv(name);
    return v ? strtol(v, NULL, 10) : 0;
}

/* open and open64: the same wrapper around the next definition of the symbol. */
#define OPEN_SHIM(sym)                                                                             \
    int sym(const char *path, int flags, ...) {                                                    \
        static int (*real)(const char *, int, ...);                                                \
        if (!real) real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #sym);                 \
        mode_t mode = 0;                                                                           \
        if (flags & O_CREAT) {                                                                     \
            va_list ap;                                                                            \
            va_start(ap, flags);                                                                   \
            mode = (mode_t)va_arg(ap, int);                                                        \
            va_end(ap);                                                                            \
        }                                                                                          \
        int fd = real(path, flags, mode);                                                          \
        if (is_temporary(path))                                                                    \
            log_line("open %s %s%s%s%s %d\n", path, flags & O_CREAT ? "CREAT" : "-",              \
                     flags & O_EXCL ? "|EXCL" : "", flags & O_TRUNC ? "|TRUNC" : "",               \
                     flags & O_NOFOLLOW ? "|NOFOLLOW" : "", fd);                                   \
        return fd;                                                                                 \
    }
OPEN_SHIM(open)
OPEN_SHIM(open64)

size_t fwrite(const void *p, size_t size, size_t n, FILE *f) {
    static size_t (*real)(const void *, size_t, size_t, FILE *);
    if (!real) real = (size_t(*)(const void *, size_t, size_t, FILE *))dlsym(RTLD_NEXT, "fwrite");
    long kill_at = env_num("FAULT_KILL_AFTER_BYTES"), signal_at = env_num("FAULT_SIGNAL_AFTER_BYTES");
    long limit = kill_at > 0 ? kill_at : signal_at;
    if (limit > 0 && fileno(f) > 2 && !g_signalled) {
        long long total = (long long)(size * n);
        if (g_bytes + total > limit) { /* write what fits, make sure it reached the file, die */
            size_t part = (size_t)(limit - g_bytes);
            if (part) real(p, 1, part, f);
            fflush(f);
            g_bytes = limit;
            if (kill_at > 0) raise(SIGKILL);
            send_signal(); /* a handler that returns: the rest of this write goes on */
            return real((const char *)p + part, 1, size * n - part, f) + part == size * n ? n : 0;
        }
        g_bytes += total;
    }
    return real(p, size, n, f);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    log_line("fsync %d\n", fd);
    if (env_num("FAULT_FSYNC_FAIL")) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}

int rename(const char *a, const char *b) {
    static int (*real)(const char *, const char *);
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    if (is_temporary(a)) {
        g_renames++;
        log_line("rename %s %s\n", a, b);
        if (env_num("FAULT_KILL_AT_RENAME")) raise(SIGKILL);
        if (env_num("FAULT_SIGNAL_AT_RENAME") == g_renames) send_signal();
        if (env_num("FAULT_RENAME_FAIL_AT") == g_renames) {
            errno = EIO;
            return -1;
        }
    }
    return real(a, b);
}
