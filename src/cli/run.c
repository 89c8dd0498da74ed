/* run.c — `latup run`: LUA upscale then VAE decode in one process, each model loaded once;
 * the upscaled latent stays in memory unless --save-latent asks for it. */
#include "cli/cli.h"
#include "common.h"

#include <stdio.h>
#include <string.h>

static const char *USAGE =
    "usage: latup run --model LUA --scale 2|4 --vae VAE --in LATENT --out IMAGE [options]\n"
    "\n"
    "Upscales a VAE latent with LUA and decodes the result: a 2K/4K image from one decode.\n"
    "\n"
    "  --model FILE              LUA weights (safetensors or .pth, gzip ok)\n"
    "  --scale S                 2 or 4\n"
    "  --vae FILE                the VAE decoder (ldm or diffusers names, flat or prefixed)\n"
    "  --in FILE                 .npy [C,h,w] or [B,C,h,w], decoder-ready (see --diffusion-latent)\n"
    "  --out FILE                .png (one image, diffusers' mapping) or .npy (raw decoder output)\n"
    "  --save-latent FILE        also write the upscaled latent as .npy\n"
    "  --diffusion-latent FAMILY the input is a diffusion pipeline's latent: z / scaling + shift\n"
    "                            (sd, sdxl, sd3, flux); the LUA output needs no rescaling\n"
    "  --flux-packed HxW         the input is FLUX's packed tokens [B, (H/2)*(W/2), 64], HxW the\n"
    "                            latent size\n"
    "  --tile T, --overlap O, --max-memory SIZE   tiled decoding, as in 'latup decode --help'\n"
    "  --threads N               threads (default: all cores)\n"
    "  --verbose                 memory plans and per-stage timings on stderr\n"
    "  --quiet                   print nothing but errors\n"
    "  -h, --help                this text\n"
    "\n"
    "exit codes: 0 ok, 1 usage, 2 bad input file or data, 3 out of memory, 4 i/o error.\n";

int cli_run(int argc, char **argv) {
    const char *model_path = NULL, *vae_path = NULL, *in_path = NULL, *out_path = NULL, *save = NULL;
    const char *max_mem = NULL;
    cli_latent_opts lo = {0};
    int scale = 0, tile = 0, overlap = 0, threads = 0, verbose = 0, quiet = 0;
    const cli_opt opts[] = {
        {"--model", OPT_STR, &model_path, 0, 0},      {"--vae", OPT_STR, &vae_path, 0, 0},
        {"--in", OPT_STR, &in_path, 0, 0},            {"--out", OPT_STR, &out_path, 0, 0},
        {"--save-latent", OPT_STR, &save, 0, 0},      {"--scale", OPT_INT, &scale, 2, 8},
        {"--tile", OPT_INT, &tile, 4, 8192},          {"--overlap", OPT_INT, &overlap, 1, 8191},
        {"--max-memory", OPT_STR, &max_mem, 0, 0},    {"--threads", OPT_INT, &threads, 1, 4096},
        {"--verbose", OPT_FLAG, &verbose, 0, 0},      {"--quiet", OPT_FLAG, &quiet, 0, 0},
        {"--diffusion-latent", OPT_STR, &lo.family_name, 0, 0}, {"--flux-packed", OPT_STR, &lo.packed, 0, 0},
    };
    int rc = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), "run", USAGE);
    if (rc >= 0) return rc;
    if (!model_path) return cli_usage("run", "missing --model");
    if (!vae_path) return cli_usage("run", "missing --vae");
    if (!in_path) return cli_usage("run", "missing --in");
    if (!out_path) return cli_usage("run", "missing --out");
    if (!scale) return cli_usage("run", "missing --scale");
    if (!cli_is_npy_path(out_path) && !cli_is_png_path(out_path))
        return cli_usage("run", "--out %s: the output must end in .npy or .png", out_path);
    if (save && !cli_is_npy_path(save)) return cli_usage("run", "--save-latent %s: must end in .npy", save);
    if ((rc = cli_latent_opts_check(&lo, "run")) >= 0) return rc;
    latup_decode_opts dopt;
    if ((rc = cli_decode_opts(tile, overlap, max_mem, verbose, quiet, &dopt, "run")) >= 0) return rc;
    latup_status st = cli_check_writable(out_path);
    if (st == LATUP_OK && save) st = cli_check_writable(save);
    if (st != LATUP_OK) return cli_fail(st);
    latup_set_threads(threads);

    latup_lua *m = NULL;
    latup_vae *v = NULL;
    latup_tensor x = {0}, up = {0}, img = {0};
    int is_png = 0;
    double t0 = latup_now(), t_up = 0, t_dec = 0;
    st = latup_lua_load(model_path, &m);
    if (st == LATUP_OK) st = latup_vae_load(vae_path, &v);
    if (st == LATUP_OK && latup_lua_get_config(m)->out_chans != latup_vae_get_config(v)->z_channels)
        st = latup_fail(LATUP_E_INPUT, "%s makes %d-channel latents, %s decodes %d-channel ones", model_path,
                        latup_lua_get_config(m)->out_chans, vae_path, latup_vae_get_config(v)->z_channels);
    double t_load = latup_now() - t0;
    if (st == LATUP_OK) st = cli_read_latent(in_path, &lo, &x, &is_png);
    if (st == LATUP_OK) {
        double t1 = latup_now();
        latup_run_opts ro = {.verbose = dopt.verbose, .progress = dopt.progress};
        st = latup_lua_upscale(m, &x, scale, &up, &ro);
        if (st == LATUP_E_INPUT) latup_error_prefix(in_path); /* name the file the data came from */
        t_up = latup_now() - t1;
    }
    if (st == LATUP_OK && save) st = latup_npy_write(save, &up);
    if (st == LATUP_OK) {
        double t1 = latup_now();
        st = latup_vae_decode(v, &up, &img, &dopt);
        t_dec = latup_now() - t1;
    }
    if (st == LATUP_OK) st = cli_write_decoded(out_path, &img);
    if (st == LATUP_OK && !quiet) {
        char si[96], su[96], so[96];
        fprintf(stderr, "latup: %s %s -> x%d %s -> %s %s\n", in_path, latup_shape_str(si, sizeof si, x.ndim, x.shape),
                scale, latup_shape_str(su, sizeof su, up.ndim, up.shape), out_path,
                latup_shape_str(so, sizeof so, img.ndim, img.shape));
        fprintf(stderr, "latup: load %.2f s, upscale %.2f s, decode %.2f s, total %.2f s (%d threads)\n", t_load, t_up,
                t_dec, latup_now() - t0, latup_get_threads());
    }
    latup_tensor_free(&x);
    latup_tensor_free(&up);
    latup_tensor_free(&img);
    latup_lua_free(m);
    latup_vae_free(v);
    return st == LATUP_OK ? 0 : cli_fail(st);
}
