/* cli.c — option parsing, error reporting, and tensor input/output for the commands. */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"
#include "io/fileio.h"
#include "io/png.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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
    fprintf(stderr, " (see 'latup %s%s--help')\n", cmd ? cmd : "", cmd ? " " : "");
    return LATUP_E_USAGE;
}

static int parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

int cli_parse(int argc, char **argv, const cli_opt *opts, int n_opts, const char *cmd, const char *usage) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        const cli_opt *o = NULL;
        for (int k = 0; k < n_opts; k++)
            if (!strcmp(a, opts[k].name)) o = &opts[k];
        if (!o) return cli_usage(cmd, "unknown argument '%s'", a);
        if (o->kind == OPT_FLAG) {
            *(int *)o->dst = 1;
            continue;
        }
        if (i + 1 >= argc) return cli_usage(cmd, "option %s needs a value", a);
        const char *v = argv[++i];
        if (o->kind == OPT_STR) {
            *(const char **)o->dst = v;
        } else if (!parse_int(v, o->lo, o->hi, (int *)o->dst)) {
            return cli_usage(cmd, "%s takes an integer from %d to %d, got '%s'", a, o->lo, o->hi, v);
        }
    }
    return -1;
}

static int ends_with_ci(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}
int cli_is_png_path(const char *path) { return ends_with_ci(path, ".png"); }
int cli_is_npy_path(const char *path) { return ends_with_ci(path, ".npy"); }

latup_status cli_check_writable(const char *path) {
    latup_atomic_file af;
    latup_status st = latup_atomic_open(&af, path);
    if (st == LATUP_OK) latup_atomic_abort(&af);
    return st;
}

latup_status cli_read_input(const char *path, latup_tensor *t, int *is_png) {
    unsigned char magic[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return latup_fail(LATUP_E_IO, "%s: cannot open: %s", path, strerror(errno));
    size_t n = fread(magic, 1, sizeof magic, f);
    fclose(f);
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    *is_png = n == 8 && memcmp(magic, png_sig, 8) == 0;
    return *is_png ? latup_png_read(path, t) : latup_npy_read(path, t);
}

/* A PNG holds one RGB image: [3,H,W] or [1,3,H,W]. */
static latup_status check_png_shape(const char *path, const latup_tensor *t) {
    const int off = t->ndim - 3;
    char s[96];
    if ((t->ndim != 3 && t->ndim != 4) || t->shape[off] != 3 || (off && t->shape[0] != 1))
        return latup_fail(LATUP_E_USAGE, "%s: a PNG holds one RGB image [3,H,W]; the output is %s (write .npy instead)",
                          path, latup_shape_str(s, sizeof s, t->ndim, t->shape));
    return LATUP_OK;
}

latup_status cli_write_output(const char *path, const latup_tensor *t) {
    if (!cli_is_png_path(path)) return latup_npy_write(path, t);
    latup_status st = check_png_shape(path, t);
    return st != LATUP_OK ? st : latup_png_write(path, t);
}

int cli_latent_opts_check(cli_latent_opts *lo, const char *cmd) {
    if (lo->family_name && !(lo->family = latup_latent_family_find(lo->family_name)))
        return cli_usage(cmd, "--diffusion-latent takes sd, sdxl, sd3 or flux, got '%s'", lo->family_name);
    if (lo->packed) {
        char tail;
        if (sscanf(lo->packed, "%dx%d%c", &lo->ph, &lo->pw, &tail) != 2 || lo->ph < 2 || lo->pw < 2 ||
            lo->ph > 16384 || lo->pw > 16384)
            return cli_usage(cmd, "--flux-packed takes the latent size HxW, e.g. 128x128, got '%s'", lo->packed);
    }
    return -1;
}

latup_status cli_read_latent(const char *path, const cli_latent_opts *lo, latup_tensor *x, int *is_png) {
    latup_status st = cli_read_input(path, x, is_png);
    if (st == LATUP_OK && lo->packed) {
        latup_tensor u;
        st = latup_flux_unpack(x, lo->ph, lo->pw, &u);
        latup_tensor_free(x);
        if (st != LATUP_OK) {
            latup_error_prefix(path);
            return st;
        }
        *x = u;
    }
    if (st == LATUP_OK && lo->family) latup_latent_to_vae(x, lo->family);
    return st;
}

latup_status cli_write_decoded(const char *path, const latup_tensor *img) {
    if (!cli_is_png_path(path)) return latup_npy_write(path, img);
    latup_status st = check_png_shape(path, img);
    return st != LATUP_OK ? st : latup_png_write_mapped(path, img, LATUP_PNG_MAP_DIFFUSERS);
}

size_t cli_parse_size(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v <= 0) return 0;
    double mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1024.0, end++;
    else if (*end == 'M' || *end == 'm') mul = 1024.0 * 1024, end++;
    else if (*end == 'G' || *end == 'g') mul = 1024.0 * 1024 * 1024, end++;
    if (*end == 'B' || *end == 'i') end++; /* "4G", "4GB", "4Gi" */
    if (*end == 'B') end++;
    if (*end) return 0;
    v *= mul;
    return v >= 1e18 ? 0 : (size_t)v;
}

size_t cli_default_max_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || psz <= 0) return (size_t)4 << 30;
    return (size_t)pages / 4 * 3 * (size_t)psz;
}

int cli_stderr_is_tty(void) { return isatty(2); }

int cli_decode_opts(int tile, int overlap, const char *max_memory, int verbose, int quiet,
                    latup_decode_opts *o, const char *cmd) {
    memset(o, 0, sizeof *o);
    o->tile = tile, o->overlap = overlap;
    o->verbose = verbose && !quiet;
    o->progress = !quiet && cli_stderr_is_tty();
    o->max_memory = cli_default_max_memory();
    if (max_memory && !(o->max_memory = cli_parse_size(max_memory)))
        return cli_usage(cmd, "--max-memory takes a size like 4G or 512M, got '%s'", max_memory);
    if (tile && overlap >= tile) return cli_usage(cmd, "--overlap %d must be smaller than --tile %d", overlap, tile);
    return -1;
}

void cli_dump_npy(void *user, const char *name, const latup_tensor *t, int batch) {
    cli_dump_ctx *d = user;
    if (d->st != LATUP_OK) return;
    char path[4096];
    if (batch == 0) snprintf(path, sizeof path, "%s/%s.npy", d->dir, name);
    else snprintf(path, sizeof path, "%s/%s.b%d.npy", d->dir, name, batch);
    d->st = latup_npy_write(path, t);
}

latup_status cli_check_dump_dir(const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return latup_fail(LATUP_E_IO, "--dump %s: not a directory", dir);
    return LATUP_OK;
}
