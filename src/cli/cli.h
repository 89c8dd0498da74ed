/* cli.h — shared pieces of the latup command line: a table-driven option parser, error
 * reporting (one line on stderr, the status as exit code), and reading/writing the tensors a
 * command takes and makes (.npy or PNG, chosen by content on input and by extension on output). */
#ifndef LATUP_CLI_H
#define LATUP_CLI_H

#include "latup.h"

typedef enum { OPT_FLAG, OPT_STR, OPT_INT } cli_opt_kind;

typedef struct {
    const char *name;  /* "--model" */
    cli_opt_kind kind;
    void *dst;         /* int* for FLAG/INT, const char** for STR */
    int lo, hi;        /* OPT_INT range */
} cli_opt;

/* Parses argv[1..]; returns -1 to go on, else an exit code (0 after --help). */
int cli_parse(int argc, char **argv, const cli_opt *opts, int n_opts, const char *cmd, const char *usage);

int cli_fail(latup_status st);                               /* prints latup_last_error() */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checks, before any work, that `path` can be created (makes and removes the temporary). */
latup_status cli_check_writable(const char *path);

/* .npy (float32/float16) or PNG (8-bit, -> [3,H,W] in [0,1]), told apart by content. */
latup_status cli_read_input(const char *path, latup_tensor *t, int *is_png);
/* ".png": one [3,H,W] (or [1,3,H,W]) image in [0,1]; ".npy": float32. Atomic. */
latup_status cli_write_output(const char *path, const latup_tensor *t);
int cli_is_png_path(const char *path);
int cli_is_npy_path(const char *path);

/* --diffusion-latent FAMILY and --flux-packed HxW, shared by upscale, decode and run. */
typedef struct {
    const char *family_name, *packed; /* as given */
    const latup_latent_family *family;
    int ph, pw;
} cli_latent_opts;
/* Validates the two options; returns -1 to go on, else the usage exit code. */
int cli_latent_opts_check(cli_latent_opts *lo, const char *cmd);
/* Reads the input (npy or PNG), unpacks FLUX tokens and converts to VAE space as asked. */
latup_status cli_read_latent(const char *path, const cli_latent_opts *lo, latup_tensor *x, int *is_png);

/* A decoder's output as PNG (diffusers: clamp((x+1)/2, 0, 1) x 255, rounded) or raw .npy. */
latup_status cli_write_decoded(const char *path, const latup_tensor *img);

/* "4G", "512M", "1500000000": bytes; 0 on error. Default budget: 3/4 of physical memory. */
size_t cli_parse_size(const char *s);
size_t cli_default_max_memory(void);
int cli_stderr_is_tty(void);

/* --tile/--overlap/--max-memory/--verbose/--quiet into decoder options; -1 to go on, else the
 * usage exit code. */
int cli_decode_opts(int tile, int overlap, const char *max_memory, int verbose, int quiet,
                    latup_decode_opts *o, const char *cmd);

/* --dump DIR: every intermediate tensor as DIR/NAME.npy (batch element k > 0: NAME.bK.npy). */
typedef struct {
    const char *dir;
    latup_status st; /* the first write error */
} cli_dump_ctx;
void cli_dump_npy(void *user, const char *name, const latup_tensor *t, int batch);
latup_status cli_check_dump_dir(const char *dir);

int cli_upscale(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_decode(int argc, char **argv);
int cli_run(int argc, char **argv);

#endif
