/* main.c — the latup command line: dispatch to one function per command (src/cli_*.c). */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const char *USAGE =
    "usage: latup COMMAND [options]\n"
    "\n"
    "latup — CPU reference implementation of LUA, the Latent Upscaler Adapter.\n"
    "\n"
    "commands:\n"
    "  upscale   upscale a VAE latent x2 or x4 with a LUA model (or an image with SwinIR)\n"
    "  decode    decode a VAE latent to an image (SD 1.x/2.x, SDXL, SD3, FLUX.1 decoders)\n"
    "  run       upscale with LUA, then decode: latent in, 2K/4K image out\n"
    "  info      print what a checkpoint holds and the model inferred from it\n"
    "\n"
    "Run 'latup COMMAND --help' for the options of a command.\n"
    "\n"
    "exit codes:\n"
    "  0 ok   1 usage error   2 bad input file or data   3 out of memory\n"
    "  4 i/o error (cannot read/write a file)   5 internal error\n";

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(USAGE, stderr);
        return LATUP_E_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (!strcmp(cmd, "upscale")) return cli_upscale(argc - 1, argv + 1);
    if (!strcmp(cmd, "info")) return cli_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "decode")) return cli_decode(argc - 1, argv + 1);
    if (!strcmp(cmd, "run")) return cli_run(argc - 1, argv + 1);
    return cli_usage(NULL, "unknown command '%s'", cmd);
}
