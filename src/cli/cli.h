/* cli.h — what the latup commands share: error lines and exit codes, directories and output
 * names, reading and checking inputs, --dump, and the commands themselves (JSON: jsonw.h). The CLI
 * sees only the public API (include/latup.h) and its own headers. */
#ifndef LATUP_CLI_H
#define LATUP_CLI_H

#include "latup.h"
#include "options.h"

/* Prints "latup: <latup_last_error()>" and returns st as the exit code. */
int cli_fail(latup_status st);
/* One usage line for cmd ("latup decode: ... (see 'latup help decode')"); returns LATUP_E_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

double cli_now(void);
int cli_stderr_is_tty(void);

/* mkdir -p; LATUP_E_IO naming the path when it cannot be made or is not a directory. */
latup_status cli_mkdirs(const char *dir);

/* "dir/a.b.npy" -> "a.b"; "-" -> "stdin". */
void cli_stem(char *buf, size_t n, const char *path);
int cli_ends_with(const char *s, const char *suffix); /* case-insensitive */
/* Input `path`'s stem (cli_stem), and its output: --out as given, or --out-dir's DIR/STEM.EXT.
 * Returns 1 when the name came from --out-dir (two inputs may then collide: the caller checks). */
int cli_output_name(const cli_args *a, const char *path, const char *ext, char *stem, size_t ns, char *out, size_t no);

/* --dump DIR: every tensor the library hands over as DIR/NAME.npy (batch element k > 0:
 * NAME.bK.npy), and its name appended to DIR/dump_order.txt, so `latup compare` can walk them in
 * forward order. */
typedef struct {
    char dir[4096];
    void *order; /* FILE *: dump_order.txt */
    latup_status st; /* the first write error */
} cli_dump_ctx;
latup_status cli_dump_open(cli_dump_ctx *d, const char *dir);
void cli_dump_npy(void *user, const char *name, const latup_tensor *t, int batch);
latup_status cli_dump_close(cli_dump_ctx *d);

/* The options of upscale, decode and run that the parser cannot judge alone: the tile and overlap
 * (latent pixels; 0: automatic) from --tile, --vae-tile-size, --vae-tiling and --overlap (pixels
 * or a fraction of the tile), and `--out -` refused on a terminal. Returns -1 to go on, else the
 * exit code of the usage error it printed. */
int cli_check_pipeline(const cli_args *a, int *tile, int *overlap);
/* Once every check has passed (so that a failing command prints its one error line alone): a
 * warning line each, none with --quiet, for what runs but most likely not as meant: --flux-packed
 * without --diffusion-latent, more threads than CPUs. */
void cli_warn_pipeline(const cli_args *a);

/* --diffusion-latent's latent space, once the VAE is loaded (v may be NULL): *f NULL when the
 * option is not given; else the family named, except that a VAE folder's config.json (scaling_factor,
 * shift_factor) wins over it: it holds the numbers the pipeline used, the family only the usual
 * ones (a named family that disagrees gets a warning, none with --quiet). 'vae' without such a
 * folder is a usage error. Returns -1 to go on, else the exit code of the error it printed. */
int cli_latent_space(const cli_args *a, const latup_vae *v, const char *vae_path, const latup_latent_family **f);

/* Threads: --threads N when given, else latup_default_threads(); set for OpenMP and OpenBLAS. */
int cli_setup_threads(const cli_args *a);

int cli_upscale(int argc, char **argv);
int cli_decode(int argc, char **argv);
int cli_run(int argc, char **argv);
int cli_encode(int argc, char **argv);
int cli_eval(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_compare(int argc, char **argv);

#endif
