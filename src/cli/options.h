/* options.h — the command line's grammar: every command's options (names, short forms, kinds,
 * ranges, help text) as data, one strict parser over it, and the value parsers (integers, sizes,
 * reals, HxW, output patterns). Depends on libc only, so the fuzzer can build it alone. */
#ifndef LATUP_CLI_OPTIONS_H
#define LATUP_CLI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    OPT_FLAG,   /* --verbose */
    OPT_STR,    /* --model FILE */
    OPT_LIST,   /* --in FILE: one value each time, repeatable (-i a -i b); at most one per command */
    OPT_INT,    /* strict decimal in [lo, hi] */
    OPT_SIZE,   /* bytes: 4G, 512M, 1.5G, 1000000 in [lo, hi] */
    OPT_REAL,   /* strict decimal or exponent form, finite, in [rlo, rhi] */
    OPT_CHOICE, /* one of choices, "|"-separated */
    OPT_HW,     /* HxW, each side in [lo, hi] */
    OPT_INT_FRAC, /* strict decimal in [lo, hi] (num), or a fraction in (0, 1) written with a
                   * decimal point, "0.25" or ".25" (real; num 0) */
} cli_kind;

typedef struct {
    const char *name;    /* "--model" */
    char short_name;     /* 'm', or 0 */
    cli_kind kind;
    const char *metavar; /* "FILE" */
    long long lo, hi;    /* OPT_INT, OPT_SIZE, OPT_HW */
    double rlo, rhi;     /* OPT_REAL */
    const char *choices; /* OPT_CHOICE: "cpu|cuda" */
    const char *help;    /* lines separated by '\n' */
} cli_opt;

#define CLI_MAX_OPTS 40
#define CLI_MAX_POS 1024 /* eval: images and folders */
#define CLI_MAX_LIST 16384 /* values of the list option (inputs): a pool inside cli_args, so nothing
                            * parsed needs freeing; more inputs than this go in several commands */

typedef struct {
    const char *name;      /* "upscale" */
    const char *synopsis;  /* what follows "latup upscale" in the usage line */
    const char *about;     /* a paragraph; lines separated by '\n' */
    const cli_opt *opts;
    int n_opts;
    const char *conflicts; /* pairs that exclude each other: "--verbose --quiet,--out --out-dir" */
    int min_pos, max_pos;  /* positional arguments */
    const char *pos_names; /* "DIR_A DIR_B" (for messages) */
    const char *pos_hint;  /* said of an argument that is neither an option nor a positional one */
} cli_command;

typedef struct {
    int given;
    const char *text; /* the value as written (NULL for flags and lists) */
    long long num;    /* OPT_INT, OPT_SIZE; OPT_HW: h */
    long long num2;   /* OPT_HW: w */
    double real;      /* OPT_REAL; OPT_INT_FRAC: the fraction (0 for an integer) */
    const char *const *list; /* OPT_LIST: n_list values */
    int n_list;
} cli_value;

typedef struct {
    const cli_command *cmd;
    cli_value v[CLI_MAX_OPTS];
    const char *pos[CLI_MAX_POS];
    int n_pos;
    const char *list_pool[CLI_MAX_LIST]; /* the list option's values, in order */
} cli_args;

/* Parses argv[1..argc) (argv[0] is the command's name) into a. Returns -1 to go on, 0 when
 * --help was printed to out, or 1 (usage error) with one line on err: an unknown option names
 * the nearest one of the command when one is close (cli_suggest_option). Never reads argv[argc]
 * or beyond. Values point into argv. */
int cli_parse(const cli_command *cmd, int argc, char *const *argv, cli_args *a, FILE *out, FILE *err);

/* The value of an option of a->cmd by its long name (which must be in the table). */
const cli_value *cli_get(const cli_args *a, const char *name);
int cli_given(const cli_args *a, const char *name);
const char *cli_str(const cli_args *a, const char *name); /* NULL if not given */
long long cli_num(const cli_args *a, const char *name, long long dflt);

/* Strict value parsers, shared with the fuzzer: 1 if s is valid and in range, else 0. */
int cli_parse_int(const char *s, long long lo, long long hi, long long *out);
int cli_parse_size(const char *s, long long lo, long long hi, long long *out);
int cli_parse_real(const char *s, double lo, double hi, double *out);
int cli_parse_hw(const char *s, long long lo, long long hi, long long *h, long long *w);

/* An output name pattern: exactly one %d conversion (optionally %0Nd, N <= 9), any number of
 * "%%". Returns 1 for a pattern, 0 for a plain name, -1 for a malformed one (a lone %, %s, two
 * conversions). */
int cli_pattern_kind(const char *s);
/* The pattern with index k into buf; 0 if it does not fit. */
int cli_pattern_format(char *buf, size_t n, const char *pattern, long long k);

/* Edit distance between a[0..na) and b[0..nb), a swap of two neighbours counting as one edit
 * (optimal string alignment), letters compared case-insensitively; capped at 99. */
int cli_edit_distance(const char *a, size_t na, const char *b, size_t nb);
/* What a mistyped name most likely meant, or NULL when nothing is close: the known name within an
 * edit distance of a third of its length (at least 1, at most 3), the nearest first, or else the
 * only known name the typed one begins (at least 3 letters). For an option, name is what was typed
 * up to any '=' ("--treads"), compared without the dashes. */
const char *cli_suggest_option(const cli_command *cmd, const char *name, size_t len);
const char *cli_suggest_command(const char *name);

/* The commands' grammars, and usage text printed from them. */
extern const cli_command CLI_CMD_UPSCALE, CLI_CMD_DECODE, CLI_CMD_RUN, CLI_CMD_ENCODE, CLI_CMD_EVAL, CLI_CMD_INFO,
    CLI_CMD_COMPARE;
const cli_command *cli_find_command(const char *name);
/* The tile size --vae-tiling picks (latent pixels): docs/vae.md measures the error per tile size. */
#define CLI_VAE_TILING_TILE 64
void cli_print_usage(const cli_command *cmd, FILE *f);
void cli_print_main_usage(FILE *f);

/* Exit codes beyond latup_status (LATUP_E_*): compare found tensors over the tolerance. */
#define CLI_EXIT_DIFFERS 10

#endif
