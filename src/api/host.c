/* host.c — what the machine the process runs on offers: the default thread count
 * (OMP_NUM_THREADS, else the CPUs we may use), the default memory budget (physical memory,
 * tightened by the cgroup limit a container or a batch scheduler puts on the process), and
 * whether a device can run (asked before any work rather than found out at the first compute). */
#define _POSIX_C_SOURCE 200809L
#include "api/host.h"
#include "model/device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

int latup_parse_omp_num_threads(const char *s) {
    if (!s) return 0;
    /* "4" or a nesting list "4,2": the first level is ours */
    int v = 0;
    const char *p = s;
    while (*p == ' ') p++;
    if (*p < '0' || *p > '9') return 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > LATUP_MAX_THREADS) return 0;
    }
    while (*p == ' ') p++;
    if (*p && *p != ',') return 0;
    return v;
}

int latup_default_threads(void) {
    int n = latup_parse_omp_num_threads(getenv("OMP_NUM_THREADS"));
    if (n > 0) return n;
#ifdef _OPENMP
    n = omp_get_num_procs(); /* the CPUs in our affinity mask */
#else
    n = (int)sysconf(_SC_NPROCESSORS_ONLN);
#endif
    return n > 0 ? n : 1;
}

/* The number in `file` (bytes), 0 if absent or unlimited ("max", or v1's huge page-rounded
 * LONG_MAX). */
static uint64_t read_limit(const char *file) {
    FILE *f = fopen(file, "r");
    if (!f) return 0;
    char line[64] = "";
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    if (!ok || line[0] < '0' || line[0] > '9') return 0; /* "max" */
    char *end;
    unsigned long long v = strtoull(line, &end, 10);
    if (*end && *end != '\n') return 0;
    return v >= ((uint64_t)1 << 62) ? 0 : (uint64_t)v;
}

/* The tightest `leaf` limit from dir up to root (a limit anywhere above applies too). */
static uint64_t tightest_upwards(const char *root, const char *cg_path, const char *leaf) {
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s%s", root, cg_path) >= (int)sizeof dir) return 0;
    size_t root_len = strlen(root);
    uint64_t best = 0;
    for (;;) {
        size_t n = strlen(dir);
        while (n > root_len && dir[n - 1] == '/') dir[--n] = '\0';
        char file[4200];
        snprintf(file, sizeof file, "%s/%s", dir, leaf);
        uint64_t v = read_limit(file);
        if (v && (!best || v < best)) best = v;
        if (n <= root_len) break;
        char *slash = strrchr(dir + root_len, '/');
        if (!slash) break;
        *slash = '\0';
    }
    return best;
}

uint64_t latup_cgroup_memory_limit(const char *fs_root, const char *proc_cgroup) {
    FILE *f = fopen(proc_cgroup, "r");
    if (!f) return 0;
    char line[4096];
    uint64_t best = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/') continue;
        *c2 = '\0';
        const char *controllers = c1 + 1, *path = c2 + 1;
        char root[4200];
        uint64_t v = 0;
        if (!*controllers) { /* v2: "0::/path" */
            snprintf(root, sizeof root, "%s", fs_root);
            v = tightest_upwards(root, path, "memory.max");
        } else {
            char list[256];
            snprintf(list, sizeof list, ",%s,", controllers);
            if (!strstr(list, ",memory,")) continue;
            snprintf(root, sizeof root, "%s/memory", fs_root);
            v = tightest_upwards(root, path, "memory.limit_in_bytes");
        }
        if (v && (!best || v < best)) best = v;
    }
    fclose(f);
    return best;
}

size_t latup_default_max_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGE_SIZE);
    uint64_t mem = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : (uint64_t)4 << 30;
    uint64_t cg = latup_cgroup_memory_limit("/sys/fs/cgroup", "/proc/self/cgroup");
    if (cg && cg < mem) mem = cg;
    mem = mem / 4 * 3;
    return mem > SIZE_MAX ? SIZE_MAX : (size_t)mem;
}

latup_status latup_device_check(latup_device d) {
    if (d == LATUP_DEVICE_CPU) return LATUP_OK;
    if (d == LATUP_DEVICE_CUDA) return latup_gpu_probe();
    return latup_fail(LATUP_E_USAGE, "unknown device %d", (int)d);
}
