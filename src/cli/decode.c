/* decode.c — `latup decode`: a VAE latent to an image with the AutoencoderKL decoder. */
#include "cli/cli.h"
#include "common.h"

#include <stdio.h>
#include <string.h>

static const char *USAGE =
    "usage: latup decode --vae VAE --in LATENT --out IMAGE [options]\n"
    "\n"
    "Decodes a VAE latent with the AutoencoderKL decoder of SD 1.x/2.x, SDXL, SD3 or FLUX.1.\n"
    "\n"
    "  --vae FILE                the VAE (or a whole model holding one): safetensors or .pth, ldm or\n"
    "                            diffusers names, flat or under first_stage_model./vae.; gzip ok\n"
    "  --in FILE                 .npy float32/float16 [C,h,w] or [B,C,h,w], decoder-ready\n"
    "  --out FILE                .png (one image; diffusers' mapping: clamp((x+1)/2, 0, 1) x 255,\n"
    "                            rounded) or .npy (raw float output [B,3,8h,8w]); written atomically\n"
    "  --diffusion-latent FAMILY the input is a diffusion pipeline's latent: z / scaling + shift\n"
    "                            (sd 0.18215/0, sdxl 0.13025/0, sd3 1.5305/0.0609, flux 0.3611/0.1159)\n"
    "  --flux-packed HxW         the input is FLUX's packed tokens [B, (H/2)*(W/2), 64]; HxW is the\n"
    "                            latent size (image size / 8)\n"
    "  --tile T                  decode in tiles of T x T latent pixels (approximate: see docs/vae.md)\n"
    "  --overlap O               latent overlap between tiles (default T/4)\n"
    "  --max-memory SIZE         tile automatically when the exact decode would need more (default:\n"
    "                            3/4 of physical memory), e.g. 4G, 512M\n"
    "  --threads N               threads (default: all cores)\n"
    "  --dump DIR                every intermediate tensor of an exact decode as DIR/NAME.npy\n"
    "  --verbose                 memory plan and per-stage timings on stderr\n"
    "  --quiet                   print nothing but errors\n"
    "  -h, --help                this text\n"
    "\n"
    "exit codes: 0 ok, 1 usage, 2 bad input file or data, 3 out of memory, 4 i/o error.\n";

int cli_decode(int argc, char **argv) {
    const char *vae_path = NULL, *in_path = NULL, *out_path = NULL, *dump_dir = NULL, *max_mem = NULL;
    cli_latent_opts lo = {0};
    int tile = 0, overlap = 0, threads = 0, verbose = 0, quiet = 0;
    const cli_opt opts[] = {
        {"--vae", OPT_STR, &vae_path, 0, 0},          {"--in", OPT_STR, &in_path, 0, 0},
        {"--out", OPT_STR, &out_path, 0, 0},          {"--dump", OPT_STR, &dump_dir, 0, 0},
        {"--tile", OPT_INT, &tile, 4, 8192},          {"--overlap", OPT_INT, &overlap, 1, 8191},
        {"--max-memory", OPT_STR, &max_mem, 0, 0},    {"--threads", OPT_INT, &threads, 1, 4096},
        {"--verbose", OPT_FLAG, &verbose, 0, 0},      {"--quiet", OPT_FLAG, &quiet, 0, 0},
        {"--diffusion-latent", OPT_STR, &lo.family_name, 0, 0}, {"--flux-packed", OPT_STR, &lo.packed, 0, 0},
    };
    int rc = cli_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), "decode", USAGE);
    if (rc >= 0) return rc;
    if (!vae_path) return cli_usage("decode", "missing --vae");
    if (!in_path) return cli_usage("decode", "missing --in");
    if (!out_path) return cli_usage("decode", "missing --out");
    if (!cli_is_npy_path(out_path) && !cli_is_png_path(out_path))
        return cli_usage("decode", "--out %s: the output must end in .npy or .png", out_path);
    if ((rc = cli_latent_opts_check(&lo, "decode")) >= 0) return rc;
    latup_decode_opts dopt;
    if ((rc = cli_decode_opts(tile, overlap, max_mem, verbose, quiet, &dopt, "decode")) >= 0) return rc;
    latup_status st = dump_dir ? cli_check_dump_dir(dump_dir) : LATUP_OK;
    if (st == LATUP_OK) st = cli_check_writable(out_path);
    if (st != LATUP_OK) return cli_fail(st);
    latup_set_threads(threads);

    latup_vae *v = NULL;
    latup_tensor z = {0}, img = {0};
    int is_png = 0;
    cli_dump_ctx dc = {dump_dir, LATUP_OK};
    if (dump_dir) dopt.dump = cli_dump_npy, dopt.dump_user = &dc;
    double t0 = latup_now();
    st = latup_vae_load(vae_path, &v);
    if (st == LATUP_OK && dopt.verbose) {
        const latup_vae_config *c = latup_vae_get_config(v);
        fprintf(stderr, "latup: %s: VAE decoder, %s, %s names, %lld parameters, loaded in %.2f s\n", vae_path,
                latup_vae_family_guess(c), latup_vae_naming_name(c->naming), (long long)c->n_params, latup_now() - t0);
    }
    if (st == LATUP_OK) st = cli_read_latent(in_path, &lo, &z, &is_png);
    if (st == LATUP_OK) {
        st = latup_vae_decode(v, &z, &img, &dopt);
        if (st == LATUP_E_INPUT) latup_error_prefix(in_path); /* name the file the data came from */
    }
    if (st == LATUP_OK && dc.st != LATUP_OK) st = dc.st;
    if (st == LATUP_OK) st = cli_write_decoded(out_path, &img);
    if (st == LATUP_OK && !quiet) {
        char si[96], so[96];
        fprintf(stderr, "latup: %s %s -> decode -> %s %s (%.2f s)\n", in_path,
                latup_shape_str(si, sizeof si, z.ndim, z.shape), out_path,
                latup_shape_str(so, sizeof so, img.ndim, img.shape), latup_now() - t0);
    }
    latup_tensor_free(&z);
    latup_tensor_free(&img);
    latup_vae_free(v);
    return st == LATUP_OK ? 0 : cli_fail(st);
}
