/* main.c — the latup command line: dispatch to the commands (pipeline.c: upscale, decode, run;
 * encode.c; eval.c; info.c; compare.c), help and version, and what SIGINT, SIGTERM and SIGHUP do to a command that
 * is writing. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* Interrupted, a command removes its temporaries (and any output of a set not yet all in place),
 * then dies of the signal itself, so its parent sees the signal (a shell: 128 + N), not an exit
 * code that could be mistaken for one of latup's. Async-signal-safe throughout. */
static void on_signal(int sig) {
    latup_remove_temporaries();
    signal(sig, SIG_DFL);
    raise(sig); /* delivered once this handler returns (the signal is blocked while it runs) */
}

/* A signal ignored when latup started (nohup, a background job's SIGINT) stays ignored. */
static void catch_signals(void) {
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa;
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigfillset(&sa.sa_mask); /* no second signal interleaves with the removal */
        sigaction(sigs[i], &sa, NULL);
    }
}

/* --verbose adds the numeric environment: a slow run is most often the wrong OpenBLAS kernels, and
 * this is where a user (or a bug report) can see which ones run. */
static int version(int verbose) {
    printf("latup %s (library %s)\n", LATUP_VERSION_STRING, latup_version());
    if (!verbose) return 0;
    latup_set_threads(latup_default_threads()); /* what a command without --threads runs on */
    latup_system_info s;
    latup_status st = latup_system_info_get(&s);
    if (st) return cli_fail(st);
    printf("OpenBLAS: %s kernels (%s); %s\n", s.blas_core, s.blas_isa, s.blas_config);
    printf("CPU:      %s (%s)\n", s.cpu_name, s.cpu_isa);
    printf("threads:  %d (OpenMP; a command's --threads, or OMP_NUM_THREADS, sets it)\n", s.threads);
    if (s.blas_narrower) printf("warning:  %s\n", s.note);
    return 0;
}

int main(int argc, char **argv) {
    catch_signals();
    if (argc < 2) {
        cli_print_main_usage(stderr);
        return LATUP_E_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || (!strcmp(cmd, "help") && argc == 2)) {
        cli_print_main_usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V") || !strcmp(cmd, "version")) {
        const int verbose = argc == 3 && (!strcmp(argv[2], "--verbose") || !strcmp(argv[2], "-v"));
        if (argc > 2 && !verbose) return cli_usage(NULL, "%s takes no arguments but --verbose (-v)", cmd);
        return version(verbose);
    }
    if (!strcmp(cmd, "help")) {
        const cli_command *c = cli_find_command(argv[2]);
        if (!c || argc > 3) return cli_usage(NULL, "help takes one command name (upscale, decode, run, encode, eval, info, compare)");
        cli_print_usage(c, stdout);
        return 0;
    }
    if (!strcmp(cmd, "upscale")) return cli_upscale(argc - 1, argv + 1);
    if (!strcmp(cmd, "decode")) return cli_decode(argc - 1, argv + 1);
    if (!strcmp(cmd, "run")) return cli_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "encode")) return cli_encode(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cli_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cli_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "compare")) return cli_compare(argc - 1, argv + 1);
    const char *near = cli_suggest_command(cmd);
    if (near) return cli_usage(NULL, "unknown command '%s'; did you mean '%s'?", cmd, near);
    return cli_usage(NULL, "unknown command '%s'", cmd);
}
