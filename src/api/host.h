/* host.h — the pieces of latup_default_threads / latup_default_max_memory (latup.h) that take
 * their inputs as arguments, so tests can feed them a fake cgroup tree and environment. */
#ifndef LATUP_HOST_H
#define LATUP_HOST_H

#include "common.h"

#define LATUP_MAX_THREADS 4096

/* OMP_NUM_THREADS's first value ("8", "8,2"), 1 to LATUP_MAX_THREADS; 0 if s is NULL or not that. */
int latup_parse_omp_num_threads(const char *s);

/* The memory limit (bytes) the cgroups listed in proc_cgroup (a /proc/self/cgroup) put on the
 * process, read below fs_root (/sys/fs/cgroup): v2 memory.max, v1 memory/.../
 * memory.limit_in_bytes, the tightest from the process's cgroup up to the root. 0: no limit. */
uint64_t latup_cgroup_memory_limit(const char *fs_root, const char *proc_cgroup);

#endif
