/* upscale.c — `latup upscale`: load a LUA (or SwinIR) model, read a latent (or image),
 * upscale it, write the result atomically. */
#include "cli/cli.h"
#include "common.h"

#include <stdio.h>
#include <string.h>

static const char *USAGE =
    "usage: latup upscale --model MODEL --scale S --in INPUT --out OUTPUT [options]\n"
    "\n"
    "Upscales a decoder-ready VAE latent with a LUA model (or an RGB image with a SwinIR model).\n"
    "\n"
    "  --model FILE              LUA or SwinIR weights: safetensors or PyTorch .pth (torch.save\n"
    "                            zip; {'params_ema': ...}, {'params': ...}, {'state_dict': ...} or\n"
    "                            a bare state dict), optionally gzip-compressed; told apart by content\n"
    "  --scale S                 a scale the model has (LUA: 2 or 4; SwinIR: its own, e.g. 2, 3, 4, 8)\n"
    "  --in FILE                 .npy float32/float16 [C,H,W] or [B,C,H,W]; or a PNG (8-bit RGB, gray\n"
    "                            and RGBA converted) read as [3,H,W] in [0,1] for SwinIR models\n"
    "  --out FILE                .npy (float32 [B,C,S*H,S*W]) or .png (one RGB image: clamp to [0,1],\n"
    "                            x255, round), by extension; written to a temporary file and renamed\n"
    "  --diffusion-latent FAMILY the input is a diffusion pipeline's latent: convert it to VAE space\n"
    "                            first, z / scaling + shift (sd 0.18215/0, sdxl 0.13025/0,\n"
    "                            sd3 1.5305/0.0609, flux 0.3611/0.1159)\n"
    "  --flux-packed HxW         the input is FLUX's packed token layout [B, (H/2)*(W/2), 64], e.g. a\n"
    "                            diffusers FluxPipeline latent (output_type=\"latent\"); HxW is the\n"
    "                            latent size (image size / 8); unpacked to [B, 16, H, W] first\n"
    "  --threads N               threads for OpenMP and OpenBLAS (default: all cores)\n"
    "  --dump DIR                write every intermediate tensor as DIR/NAME.npy (batch element k > 0:\n"
    "                            NAME.bK.npy); names as in docs/architecture.md\n"
    "  --verbose                 print the memory plan and per-stage timings to stderr\n"
    "  --quiet                   print nothing but errors\n"
    "  -h, --help                this text\n"
    "\n"
    "exit codes: 0 ok, 1 usage, 2 bad input file or data, 3 out of memory, 4 i/o error.\n";

int cli_upscale(int argc, char **argv) {
    const char *model_path = NULL, *in_path = NULL, *out_path = NULL, *dump_dir = NULL;
    cli_latent_opts lo = {0};
    int scale = 0, threads = 0, verbose = 0, quiet = 0;
    const cli_opt opts[] = {
        {"--model", OPT_STR, &model_path, 0, 0},      {"--in", OPT_STR, &in_path, 0, 0},
        {"--out", OPT_STR, &out_path, 0, 0},          {"--dump", OPT_STR, &dump_dir, 0, 0},
        {"--scale", OPT_INT, &scale, 2, 8},           {"--threads", OPT_INT, &threads, 1, 4096},
        {"--verbose", OPT_FLAG, &verbose, 0, 0},      {"--quiet", OPT_FLAG, &quiet, 0, 0},
        {"--diffusion-latent", OPT_STR, &lo.family_name, 0, 0}, {"--flux-packed", OPT_STR, &lo.packed, 0, 0},
    };
    int rc = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), "upscale", USAGE);
    if (rc >= 0) return rc;
    if (!model_path) return cli_usage("upscale", "missing --model");
    if (!in_path) return cli_usage("upscale", "missing --in");
    if (!out_path) return cli_usage("upscale", "missing --out");
    if (!scale) return cli_usage("upscale", "missing --scale");
    if (!cli_is_npy_path(out_path) && !cli_is_png_path(out_path))
        return cli_usage("upscale", "--out %s: the output must end in .npy or .png", out_path);
    if ((rc = cli_latent_opts_check(&lo, "upscale")) >= 0) return rc;
    latup_status st = dump_dir ? cli_check_dump_dir(dump_dir) : LATUP_OK;
    if (st == LATUP_OK) st = cli_check_writable(out_path); /* fail now, not after the compute */
    if (st != LATUP_OK) return cli_fail(st);
    latup_set_threads(threads);

    latup_lua *m = NULL;
    latup_tensor x = {0}, y = {0};
    int is_png = 0;
    double t0 = latup_now();
    st = latup_lua_load(model_path, &m);
    double t_load = latup_now() - t0;
    if (st == LATUP_OK) st = cli_read_latent(in_path, &lo, &x, &is_png);
    if (st == LATUP_OK && verbose && !quiet) {
        const latup_lua_config *c = latup_lua_get_config(m);
        fprintf(stderr, "latup: %s: %s model, E %d, %d RSTBs, window %d, %d -> %d channels, %lld parameters, loaded in %.2f s\n",
                model_path, c->tail == LATUP_TAIL_LUA_HEADS ? "LUA" : "SwinIR", c->embed_dim, c->num_layers,
                c->window_size, c->in_chans, c->out_chans, (long long)c->n_params, t_load);
    }
    if (st == LATUP_OK) {
        cli_dump_ctx dc = {dump_dir, LATUP_OK};
        latup_run_opts ro = {.dump = dump_dir ? cli_dump_npy : NULL, .dump_user = &dc, .verbose = verbose && !quiet,
                             .progress = !quiet && cli_stderr_is_tty()};
        st = latup_lua_upscale(m, &x, scale, &y, &ro);
        if (st == LATUP_E_INPUT) latup_error_prefix(in_path); /* name the file the data came from */
        if (st == LATUP_OK && dc.st != LATUP_OK) st = dc.st;
    }
    if (st == LATUP_OK) st = cli_write_output(out_path, &y);
    if (st == LATUP_OK && !quiet) {
        char si[96], so[96];
        fprintf(stderr, "latup: %s %s -> x%d -> %s %s (%.2f s)\n", in_path,
                latup_shape_str(si, sizeof si, x.ndim, x.shape), scale, out_path,
                latup_shape_str(so, sizeof so, y.ndim, y.shape), latup_now() - t0);
    }
    latup_tensor_free(&x);
    latup_tensor_free(&y);
    latup_lua_free(m);
    return st == LATUP_OK ? 0 : cli_fail(st);
}
