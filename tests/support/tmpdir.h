/* tmpdir.h — one scratch directory per test program: created by setup_dir (a cmocka group
 * setup), emptied by tmpdir_clear, removed with everything in it by remove_dir. Header-only;
 * the including file defines _POSIX_C_SOURCE 200809L (mkdtemp). */
#ifndef LATUP_TMPDIR_H
#define LATUP_TMPDIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[64]; /* TMPDIR + "/latup-test-XXXXXX" */

/* g_dir/name; the last 64 results stay valid. */
static inline const char *tmp_path(const char *name) {
    static char buf[64][512];
    static int k;
    k = (k + 1) % 64;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* Removes everything below dir (subdirectories made read-only by a test included). */
static inline void tmpdir_rm_below(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    struct stat sb;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) continue;
            if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
                chmod(p, 0755);
                tmpdir_rm_below(p);
                rmdir(p);
            } else {
                unlink(p);
            }
        }
    closedir(d);
}

static inline int tmpdir_clear(void) {
    tmpdir_rm_below(g_dir);
    return 0;
}

static inline int setup_dir(void **state) {
    (void)state;
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(g_dir, sizeof g_dir, "%s/latup-test-XXXXXX", base);
    return mkdtemp(g_dir) ? 0 : -1;
}

static inline int remove_dir(void **state) {
    (void)state;
    tmpdir_rm_below(g_dir);
    return rmdir(g_dir);
}

#endif
