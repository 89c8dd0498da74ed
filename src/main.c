/* main.c — the latup command line: argument parsing, help texts, and one function per command.
 * Library errors come back as a status and one line of text; they become one line on stderr and
 * the status as the exit code. */
#define _POSIX_C_SOURCE 200809L
#include "latup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *USAGE_MAIN =
    "usage: latup COMMAND [options]\n"
    "\n"
    "latup — CPU reference implementation of LUA, the Latent Upscaler Adapter.\n"
    "\n"
    "commands:\n"
    "  upscale   upscale a VAE latent x2 or x4 with a LUA model\n"
    "  info      print what a model file holds and the inferred LUA config\n"
    "\n"
    "Run 'latup COMMAND --help' for the options of a command.\n"
    "\n"
    "exit codes:\n"
    "  0 ok   1 usage error   2 bad input file or data   3 out of memory\n"
    "  4 i/o error (cannot read/write a file)   5 internal error\n";

static const char *USAGE_UPSCALE =
    "usage: latup upscale --model MODEL --scale 2|4 --in LATENT.npy --out OUT.npy [options]\n"
    "\n"
    "Upscales a decoder-ready VAE latent with a LUA model.\n"
    "\n"
    "  --model FILE    LUA weights (.safetensors, optionally gzip-compressed)\n"
    "  --scale S       2 or 4 (a head the model has)\n"
    "  --in FILE       .npy float32 or float16, [C,H,W] or [B,C,H,W]\n"
    "  --out FILE      .npy float32, [C,S*H,S*W] or [B,C,S*H,S*W]; written atomically\n"
    "  --threads N     threads for OpenMP and OpenBLAS (default: all cores)\n"
    "  --dump DIR      write every intermediate tensor as DIR/NAME.npy (batch element k > 0:\n"
    "                  NAME.bK.npy); names as in docs/architecture.md\n"
    "  --verbose       print the memory plan and per-stage timings to stderr\n"
    "  --quiet         print nothing but errors\n"
    "  -h, --help      this text\n";

static const char *USAGE_INFO =
    "usage: latup info FILE\n"
    "\n"
    "Prints the tensor count, parameter count and inferred LUA config of a model file.\n";

static int fail(latup_status st) {
    fprintf(stderr, "latup: %s\n", latup_last_error());
    return (int)st;
}

static int usage_error(const char *cmd, const char *fmt, const char *arg) {
    fprintf(stderr, "latup%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    fprintf(stderr, fmt, arg);
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

/* ---- --dump: every intermediate tensor as an .npy file ---------------------------------------- */
typedef struct {
    const char *dir;
    latup_status st;
} dump_ctx;

static void dump_npy(void *user, const char *name, const latup_tensor *t, int batch) {
    dump_ctx *d = user;
    if (d->st != LATUP_OK) return;
    char path[4096];
    if (batch == 0)
        snprintf(path, sizeof path, "%s/%s.npy", d->dir, name);
    else
        snprintf(path, sizeof path, "%s/%s.b%d.npy", d->dir, name, batch);
    d->st = latup_npy_write(path, t);
}

static int cmd_upscale(int argc, char **argv) {
    const char *model_path = NULL, *in_path = NULL, *out_path = NULL, *dump_dir = NULL;
    int scale = 0, threads = 0, verbose = 0, quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(USAGE_UPSCALE, stdout);
            return 0;
        } else if (!strcmp(a, "--verbose")) {
            verbose = 1;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--model") || !strcmp(a, "--in") || !strcmp(a, "--out") ||
                   !strcmp(a, "--scale") || !strcmp(a, "--threads") || !strcmp(a, "--dump")) {
            if (!has_val) return usage_error("upscale", "option %s needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--model")) model_path = v;
            else if (!strcmp(a, "--in")) in_path = v;
            else if (!strcmp(a, "--out")) out_path = v;
            else if (!strcmp(a, "--dump")) dump_dir = v;
            else if (!strcmp(a, "--scale")) {
                if (!parse_int(v, 1, 64, &scale)) return usage_error("upscale", "--scale takes 2 or 4, got '%s'", v);
            } else if (!parse_int(v, 1, 4096, &threads)) {
                return usage_error("upscale", "--threads takes a positive integer, got '%s'", v);
            }
        } else {
            return usage_error("upscale", "unknown argument '%s'", a);
        }
    }
    if (!model_path) return usage_error("upscale", "%s", "missing --model");
    if (!in_path) return usage_error("upscale", "%s", "missing --in");
    if (!out_path) return usage_error("upscale", "%s", "missing --out");
    if (!scale) return usage_error("upscale", "%s", "missing --scale");
    if (dump_dir) {
        struct stat sb;
        if (stat(dump_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "latup: --dump %s: not a directory\n", dump_dir);
            return LATUP_E_IO;
        }
    }
    latup_set_threads(threads);

    latup_lua *m = NULL;
    latup_tensor x = {0}, y = {0};
    latup_status st = latup_lua_load(model_path, &m);
    if (st == LATUP_OK) st = latup_npy_read(in_path, &x);
    if (st == LATUP_OK) {
        dump_ctx dc = {dump_dir, LATUP_OK};
        latup_run_opts opts = {dump_dir ? dump_npy : NULL, &dc, verbose && !quiet};
        st = latup_lua_upscale(m, &x, scale, &y, &opts);
        if (st == LATUP_OK && dc.st != LATUP_OK) st = dc.st;
    }
    if (st == LATUP_OK) st = latup_npy_write(out_path, &y);
    if (st == LATUP_OK && !quiet) {
        char si[96], so[96];
        fprintf(stderr, "latup: %s %s -> x%d -> %s %s\n", in_path,
                latup_shape_str(si, sizeof si, x.ndim, x.shape), scale, out_path,
                latup_shape_str(so, sizeof so, y.ndim, y.shape));
    }
    latup_tensor_free(&x);
    latup_tensor_free(&y);
    latup_lua_free(m);
    return st == LATUP_OK ? 0 : fail(st);
}

static int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(USAGE_INFO, stdout);
            return 0;
        }
        if (path) return usage_error("info", "unexpected argument '%s'", argv[i]);
        path = argv[i];
    }
    if (!path) return usage_error("info", "%s", "missing FILE");
    latup_lua *m = NULL;
    latup_status st = latup_lua_load(path, &m);
    if (st != LATUP_OK) return fail(st);
    const latup_lua_config *c = latup_lua_get_config(m);
    printf("file:        %s\n", path);
    printf("model:       LUA (SwinIR trunk + pixel-shuffle heads)\n");
    printf("parameters:  %lld\n", (long long)c->n_params);
    printf("channels:    in %d, out %d\n", c->in_chans, c->out_chans);
    printf("embed dim:   %d\n", c->embed_dim);
    printf("depths:      [");
    for (int i = 0; i < c->num_layers; i++) printf(i ? ", %d" : "%d", c->depths[i]);
    printf("]\nheads:       [");
    for (int i = 0; i < c->num_layers; i++) printf(i ? ", %d" : "%d", c->num_heads[i]);
    printf("]\nwindow:      %d (shift %d)\n", c->window_size, c->window_size / 2);
    printf("mlp hidden:  %d\n", c->mlp_hidden);
    printf("head width:  %d\n", c->head_feat);
    printf("scales:      ");
    for (int s = 0; s < c->n_scales; s++) printf(s ? ", x%d" : "x%d", c->scales[s]);
    printf("\n");
    latup_lua_free(m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(USAGE_MAIN, stderr);
        return LATUP_E_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(USAGE_MAIN, stdout);
        return 0;
    }
    if (!strcmp(cmd, "upscale")) return cmd_upscale(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    return usage_error(NULL, "unknown command '%s'", cmd);
}
