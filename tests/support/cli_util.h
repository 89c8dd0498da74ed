/* cli_util.h — running build/latup from a test: fork/exec with stderr captured to a file (and,
 * when asked, stdin from a file, stdout into one, extra environment); and checkpoints with one
 * tensor changed, for the models those runs load. Header-only; shared by the tests that run the
 * CLI. */
#ifndef LATUP_CLI_UTIL_H
#define LATUP_CLI_UTIL_H

#include "io/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef LATUP_BUILD_DIR
#define LATUP_BUILD_DIR "build"
#endif
#define LATUP_BIN LATUP_BUILD_DIR "/latup"

#ifndef __USE_MISC
pid_t wait4(pid_t pid, int *status, int options, struct rusage *ru); /* BSD, in glibc; hidden by -std=c11 */
#endif

/* Runs LATUP_BIN with args (NULL-terminated, without the program name), `env` (NULL-terminated
 * "NAME=value" strings, or NULL) added to its environment, stdin from in_path (NULL: inherited),
 * stdout into out_path (NULL: /dev/null), stderr into err (NUL-terminated). Returns the exit
 * status (128 + signal if killed). ru: NULL, or the child's resource usage (ru_maxrss: its peak RSS,
 * KiB), from wait4. */
static inline int run_cli_ru(const char *tmpdir, const char *const *args, const char *const *env, const char *in_path,
                             const char *out_path, char *err, size_t errn, struct rusage *ru) {
    char errpath[512];
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", tmpdir);
    fflush(stdout); /* or the child would print the parent's buffered report again */
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        const char *argv[48] = {LATUP_BIN};
        int n = 1;
        for (; args[n - 1] && n < 47; n++) argv[n] = args[n - 1];
        argv[n] = NULL;
        for (int k = 0; env && env[k]; k++) {
            char kv[1024];
            snprintf(kv, sizeof kv, "%s", env[k]);
            char *eq = strchr(kv, '=');
            if (eq) *eq = '\0', setenv(kv, eq + 1, 1);
        }
        if (!freopen(errpath, "w", stderr) || !freopen(out_path ? out_path : "/dev/null", "w", stdout) ||
            (in_path && !freopen(in_path, "r", stdin)))
            _exit(127);
        execv(LATUP_BIN, (char *const *)argv);
        _exit(127);
    }
    int status;
    struct rusage r;
    if (wait4(pid, &status, 0, &r) != pid) return -1;
    if (ru) *ru = r;
    FILE *f = fopen(errpath, "r");
    size_t n = f ? fread(err, 1, errn - 1, f) : 0;
    err[n] = '\0';
    if (f) fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static inline int run_cli_io(const char *tmpdir, const char *const *args, const char *const *env, const char *in_path,
                             const char *out_path, char *err, size_t errn) {
    return run_cli_ru(tmpdir, args, env, in_path, out_path, err, errn, NULL);
}

/* run_cli_io with stdin inherited, stdout to /dev/null and no extra environment. */
static inline int run_cli(const char *tmpdir, const char *const *args, char *err, size_t errn) {
    return run_cli_io(tmpdir, args, NULL, NULL, NULL, err, errn);
}

/* tests/support/fault_inject.c, built by make beside the tests */
#define LATUP_FAULT_SHIM LATUP_BUILD_DIR "/tests/fault_inject.so"

/* run_cli_io with the fault shim preloaded (and ASan told it comes first), `extra` (NULL or
 * NULL-terminated "NAME=value" strings, at most 9) saying what it breaks. */
static inline int run_cli_faulty(const char *tmpdir, const char *const *args, const char *const *extra, char *err,
                                 size_t errn) {
    static char preload[600], cwd[400];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s/%s", getcwd(cwd, sizeof cwd), LATUP_FAULT_SHIM);
    const char *env[12] = {preload, "ASAN_OPTIONS=verify_asan_link_order=0"};
    int n = 2;
    for (int i = 0; extra && extra[i] && n < 11; i++) env[n++] = extra[i];
    env[n] = NULL;
    return run_cli_io(tmpdir, args, env, NULL, NULL, err, errn);
}

/* Writes text to path (created or truncated); 0 on success, -1 if the file cannot be written. */
static inline int write_text_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    const int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* The whole file (up to 1 MiB - 1 bytes), NUL-terminated, malloc'd; NULL if it cannot be read. */
static inline char *read_text_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = calloc(1 << 20, 1);
    size_t n = b ? fread(b, 1, (1 << 20) - 1, f) : 0;
    if (b) b[n] = '\0';
    fclose(f);
    return b;
}

/* A directory entry of that name exists (a dangling symlink too). */
static inline int path_exists(const char *p) {
    struct stat sb;
    return lstat(p, &sb) == 0;
}

/* Copies the checkpoint src to dst (safetensors) with every element x of `tensor` made
 * x * mul + add: a model with one layer changed. Returns 0 if the tensor is not there. */
static inline int checkpoint_edit(const char *src, const char *dst, const char *tensor, float mul, float add) {
    latup_weights w;
    if (latup_safetensors_load(src, &w) != LATUP_OK) return 0;
    int found = 0;
    for (int i = 0; i < w.n; i++)
        if (!strcmp(w.t[i].name, tensor) && w.t[i].f32) {
            for (int64_t k = 0; k < w.t[i].numel; k++) w.t[i].f32[k] = w.t[i].f32[k] * mul + add;
            found = 1;
        }
    if (found && latup_safetensors_write(dst, &w) != LATUP_OK) found = 0;
    latup_weights_free(&w);
    return found;
}

#endif
