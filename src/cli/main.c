/* main.c — the latup command line: dispatch to the commands (pipeline.c: upscale, decode, run;
 * info.c; compare.c), help and version. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static int version(void) {
    printf("latup %s (library %s)\n", LATUP_VERSION_STRING, latup_version());
    return 0;
}

int main(int argc, char **argv) {
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
        if (argc > 2) return cli_usage(NULL, "%s takes no arguments", cmd);
        return version();
    }
    if (!strcmp(cmd, "help")) {
        const cli_command *c = cli_find_command(argv[2]);
        if (!c || argc > 3) return cli_usage(NULL, "help takes one command name (upscale, decode, run, info, compare)");
        cli_print_usage(c, stdout);
        return 0;
    }
    if (!strcmp(cmd, "upscale")) return cli_upscale(argc - 1, argv + 1);
    if (!strcmp(cmd, "decode")) return cli_decode(argc - 1, argv + 1);
    if (!strcmp(cmd, "run")) return cli_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cli_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "compare")) return cli_compare(argc - 1, argv + 1);
    return cli_usage(NULL, "unknown command '%s'", cmd);
}
