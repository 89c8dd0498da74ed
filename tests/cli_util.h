/* cli_util.h — running build/latup from a test: fork/exec with stderr captured to a file.
 * Header-only; shared by test_cli.c and test_errors.c. */
#ifndef LATUP_CLI_UTIL_H
#define LATUP_CLI_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef LATUP_BUILD_DIR
#define LATUP_BUILD_DIR "build"
#endif
#define LATUP_BIN LATUP_BUILD_DIR "/latup"

/* Runs LATUP_BIN with args (NULL-terminated, without the program name); stdout goes to
 * /dev/null, stderr into err (NUL-terminated). Returns the exit status (128 + signal if killed). */
static inline int run_cli(const char *tmpdir, const char *const *args, char *err, size_t errn) {
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
        if (!freopen(errpath, "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(127);
        execv(LATUP_BIN, (char *const *)argv);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    FILE *f = fopen(errpath, "r");
    size_t n = f ? fread(err, 1, errn - 1, f) : 0;
    err[n] = '\0';
    if (f) fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#endif
