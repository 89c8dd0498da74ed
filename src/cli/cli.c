/* cli.c — pieces the commands share: error lines, directories and names, the finiteness check
 * on inputs and outputs, --dump and thread setup, and the option rules that need more than the
 * parser (tiling options resolved, a terminal on stdout, warnings). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int cli_fail(latup_status st) {
    fprintf(stderr, "latup: %s\n", latup_last_error());
    return (int)st;
}

int cli_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "latup%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd) fprintf(stderr, " (see 'latup help %s')\n", cmd);
    else fprintf(stderr, " (see 'latup --help')\n");
    return LATUP_E_USAGE;
}

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cli_stderr_is_tty(void) { return isatty(2); }

latup_status cli_mkdirs(const char *dir) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return latup_set_error(LATUP_E_IO, "%.64s...: directory name too long", dir);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            return latup_set_error(LATUP_E_IO, "%s: cannot create the directory: %s", p, strerror(errno));
        *s = c;
        if (!c) break;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return latup_set_error(LATUP_E_IO, "%s: not a directory", dir);
    return LATUP_OK;
}

int cli_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

void cli_stem(char *buf, size_t n, const char *path) {
    if (!strcmp(path, "-")) {
        snprintf(buf, n, "stdin");
        return;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(buf, n, "%s", base);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf) *dot = '\0';
}

int cli_output_name(const cli_args *a, const char *path, const char *ext, char *stem, size_t ns, char *out, size_t no) {
    const char *dir = cli_str(a, "--out-dir");
    cli_stem(stem, ns, path);
    if (dir) snprintf(out, no, "%s/%s.%s", dir, stem, ext);
    else snprintf(out, no, "%s", cli_str(a, "--out"));
    return dir != NULL;
}

/* ---- --dump ------------------------------------------------------------------------------------ */

latup_status cli_dump_open(cli_dump_ctx *d, const char *dir) {
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    latup_status st = cli_mkdirs(dir);
    if (st) return st;
    char p[4200];
    snprintf(p, sizeof p, "%s/dump_order.txt", dir);
    /* A dump into the same DIR again replaces the list. Whatever is there goes first (a symlink
     * itself, never its target), then a new file is made with O_EXCL|O_NOFOLLOW: a link planted
     * after the unlink makes the open fail, so latup never writes through one. */
    if (unlink(p) != 0 && errno != ENOENT)
        return latup_set_error(LATUP_E_IO, "%s: cannot replace it: %s", p, strerror(errno));
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) return latup_set_error(LATUP_E_IO, "%s: cannot create: %s", p, strerror(errno));
    if (!(d->order = fdopen(fd, "w"))) {
        const int e = errno;
        close(fd);
        return latup_set_error(LATUP_E_IO, "%s: cannot create: %s", p, strerror(e));
    }
    return LATUP_OK;
}

void cli_dump_npy(void *user, const char *name, const latup_tensor *t, int batch) {
    cli_dump_ctx *d = user;
    if (d->st != LATUP_OK) return;
    char rel[1024], path[sizeof d->dir + sizeof rel + 8];
    if (batch == 0) snprintf(rel, sizeof rel, "%s", name);
    else snprintf(rel, sizeof rel, "%s.b%d", name, batch);
    snprintf(path, sizeof path, "%s/%s.npy", d->dir, rel);
    const char *slash = strrchr(path, '/');
    if (strchr(rel, '/')) { /* a name with folders (per-tile dumps): make them */
        char sub[sizeof path];
        memcpy(sub, path, (size_t)(slash - path));
        sub[slash - path] = '\0';
        if ((d->st = cli_mkdirs(sub))) return;
    }
    if ((d->st = latup_npy_write(path, t))) return;
    if (d->order && fprintf(d->order, "%s\n", rel) < 0)
        d->st = latup_set_error(LATUP_E_IO, "%s/dump_order.txt: write failed", d->dir);
}

latup_status cli_dump_close(cli_dump_ctx *d) {
    if (d->order && fclose(d->order) != 0 && !d->st)
        d->st = latup_set_error(LATUP_E_IO, "%s/dump_order.txt: write failed", d->dir);
    d->order = NULL;
    return d->st;
}

/* ---- misc ---------------------------------------------------------------------------------------- */

/* The CPUs this process may run on (taskset, cgroup cpusets, Slurm): what latup_default_threads
 * takes without OMP_NUM_THREADS. */
static int cpus_allowed(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    const long n = sysconf(_SC_NPROCESSORS_ONLN); /* over 1024 CPUs the mask above is too small */
    return n > 0 ? (int)n : 1;
}

int cli_check_pipeline(const cli_args *a, int *tile, int *overlap) {
    const char *cmd = a->cmd->name;
    /* the tile: --tile T, or stable-diffusion.cpp's spellings of it */
    int T = (int)cli_num(a, "--tile", 0);
    const cli_value *ts = cli_get(a, "--vae-tile-size");
    if (ts->given) {
        if (ts->num != ts->num2)
            return cli_usage(cmd, "--vae-tile-size %s: tiles are square (the library plans one tile size for both sides); "
                             "give TxT, or --tile T", ts->text);
        T = (int)ts->num;
    }
    if (!T && cli_given(a, "--vae-tiling")) T = CLI_VAE_TILING_TILE;
    /* the overlap: latent pixels, or a fraction of a tile that must then be known here */
    const cli_value *ov = cli_get(a, "--overlap");
    int O = ov->given ? (int)ov->num : 0;
    if (ov->given && ov->real > 0) {
        if (!T)
            return cli_usage(cmd, "--overlap %s: a fraction of the tile needs a tile size (--tile, --vae-tile-size or "
                             "--vae-tiling); the tiles chosen over --max-memory take an overlap in latent pixels", ov->text);
        O = (int)(ov->real * T + 0.5);
        O = O < 1 ? 1 : O > T - 1 ? T - 1 : O;
    } else if (ov->given && T && !cli_given(a, "--tile") && O >= T) { /* with --tile: the library's own message */
        return cli_usage(cmd, "--overlap %d must be smaller than the tile, %d", O, T);
    }
    *tile = T, *overlap = O;

    /* binary bytes on a terminal are garbage to the reader and can upset the terminal itself */
    const char *out = cli_str(a, "--out");
    if (out && !strcmp(out, "-") && !cli_given(a, "--dry-run") && isatty(STDOUT_FILENO))
        return cli_usage(cmd, "--out -: standard output is a terminal; redirect it (> out.npy) or name a file");
    return -1;
}

void cli_warn_pipeline(const cli_args *a) {
    const char *cmd = a->cmd->name;
    if (cli_given(a, "--quiet")) return;
    if (cli_given(a, "--flux-packed") && !cli_given(a, "--diffusion-latent"))
        fprintf(stderr, "latup %s: warning: --flux-packed without --diffusion-latent: the tokens are decoded as they are, "
                "but a FluxPipeline latent needs --diffusion-latent flux or the colours come out wrong\n", cmd);
    const long long n = cli_num(a, "--threads", 0);
    const int cpus = cpus_allowed();
    if (n > cpus)
        fprintf(stderr, "latup %s: warning: --threads %lld is more than the %d CPU%s this process may run on: slower, "
                "not faster\n", cmd, n, cpus, cpus == 1 ? "" : "s");
}

int cli_latent_space(const cli_args *a, const latup_vae *v, const char *vae_path, const latup_latent_family **f) {
    const char *name = cli_str(a, "--diffusion-latent");
    *f = NULL;
    if (!name) return -1;
    const latup_latent_family *named = latup_latent_family_find(name), *cfg = v ? latup_vae_latent_family(v) : NULL;
    if (!cfg && !named)
        return cli_usage(a->cmd->name, "--diffusion-latent vae: %s has no config.json giving scaling_factor (a diffusers "
                         "VAE folder has one): name the family (sd, sdxl, sd3, flux)", vae_path ? vae_path : "--vae");
    if (cfg && named && (named->scaling != cfg->scaling || named->shift != cfg->shift) && !cli_given(a, "--quiet"))
        fprintf(stderr, "latup: warning: --diffusion-latent %s means z / %g + %g, but %s gives scaling_factor %g, "
                "shift_factor %g: using %s's\n", named->name, named->scaling, named->shift, cfg->name, cfg->scaling,
                cfg->shift, cfg->name);
    *f = cfg ? cfg : named;
    return -1;
}

int cli_setup_threads(const cli_args *a) {
    int n = (int)cli_num(a, "--threads", 0);
    if (n <= 0) n = latup_default_threads();
    latup_set_threads(n);
    return latup_get_threads();
}
