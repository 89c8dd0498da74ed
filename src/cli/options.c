/* options.c — every command's options as data, the strict parser that reads them, the value
 * parsers, and the usage text printed from the same tables (so --help cannot drift from what
 * is parsed). libc only: fuzz/fuzz_cli_opts.c builds this file alone. */
#include "options.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define USAGE_ERROR 1
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

/* ---- value parsers ------------------------------------------------------------------------------ */

/* Decimal digits into *v (no sign, no spaces), refusing values above hi; returns the end. */
static const char *digits(const char *s, long long hi, long long *v, int *ok) {
    *v = 0;
    *ok = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (*v > (hi - (*p - '0')) / 10) return p; /* past hi: not ok */
        *v = *v * 10 + (*p - '0');
    }
    *ok = p > s;
    return p;
}

int cli_parse_int(const char *s, long long lo, long long hi, long long *out) {
    int neg = *s == '-', ok;
    long long v;
    long long cap = neg ? -lo : hi; /* lo <= 0 when negatives are allowed */
    if (neg && lo >= 0) return 0;
    const char *end = digits(s + neg, cap < 0 ? 0 : cap, &v, &ok);
    if (!ok || *end) return 0;
    if (neg) v = -v;
    if (v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

/* "4G", "4GB", "4GiB", "512m", "1.5G", "1000000": bytes, K/M/G/T powers of 1024; at most 9
 * fraction digits; the result is rounded down to a whole byte. No signs, spaces, exponents, hex,
 * nan or inf: the text is read digit by digit, never through floating point. */
int cli_parse_size(const char *s, long long lo, long long hi, long long *out) {
    const long long HUGE_BYTES = (long long)1 << 60;
    long long whole, frac = 0, frac_scale = 1;
    int ok;
    const char *p = digits(s, HUGE_BYTES, &whole, &ok);
    if (!ok) return 0;
    if (*p == '.') {
        const char *q = ++p;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (p - q >= 9) return 0;
            frac = frac * 10 + (*p - '0');
            frac_scale *= 10;
        }
        if (p == q) return 0;
    }
    int shift = 0;
    switch (*p) {
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    case 't': case 'T': shift = 40; break;
    default: break;
    }
    if (shift) {
        p++;
        if (*p == 'i') p++;
    }
    if (*p == 'B' || *p == 'b') p++;
    if (*p) return 0;
    if (!shift && frac) return 0; /* a fraction of a byte */
    if (whole > (HUGE_BYTES >> shift)) return 0;
    long long v = (whole << shift) + (long long)((__int128)frac * ((long long)1 << shift) / frac_scale);
    if (v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int cli_parse_real(const char *s, double lo, double hi, double *out) {
    /* only [0-9.eE+-]: no "nan", "inf", hex floats or spaces reach strtod */
    if (!*s || strspn(s, "0123456789.eE+-") != strlen(s)) return 0;
    char *end;
    double v = strtod(s, &end);
    if (*end || !isfinite(v) || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int cli_parse_hw(const char *s, long long lo, long long hi, long long *h, long long *w) {
    int ok;
    const char *p = digits(s, hi, h, &ok);
    if (!ok || (*p != 'x' && *p != 'X')) return 0;
    p = digits(p + 1, hi, w, &ok);
    if (!ok || *p || *h < lo || *w < lo) return 0;
    return 1;
}

int cli_pattern_kind(const char *s) {
    int n_conv = 0;
    for (const char *p = s; *p; p++) {
        if (*p != '%') continue;
        if (p[1] == '%') {
            p++;
            continue;
        }
        const char *q = p + 1;
        if (*q == '0') q++;
        if (*q >= '1' && *q <= '9') q++;
        if (*q != 'd') return -1;
        n_conv++;
        p = q;
    }
    return n_conv == 0 ? 0 : n_conv == 1 ? 1 : -1;
}

int cli_pattern_format(char *buf, size_t n, const char *pattern, long long k) {
    size_t o = 0;
    for (const char *p = pattern; *p; p++) {
        char piece[32];
        size_t len;
        if (*p == '%' && p[1] == '%') {
            piece[0] = '%', len = 1, p++;
        } else if (*p == '%') {
            int zero = 0, width = 0;
            const char *q = p + 1;
            if (*q == '0') zero = 1, q++;
            if (*q >= '1' && *q <= '9') width = *q - '0', q++;
            if (*q != 'd') return 0;
            len = (size_t)snprintf(piece, sizeof piece, zero ? "%0*lld" : "%*lld", width, k);
            p = q;
        } else {
            piece[0] = *p, len = 1;
        }
        if (o + len >= n) return 0;
        memcpy(buf + o, piece, len);
        o += len;
    }
    buf[o] = '\0';
    return 1;
}

/* ---- the commands' options ------------------------------------------------------------------------- */

#define O_IN {"--in", 'i', OPT_LIST, "FILE", 0, 0, 0, 0, NULL, \
    "an input, told apart by content: .npy ([C,H,W] or [B,C,H,W]; float32, float16, float64 or\n" \
    "bfloat16), a safetensors file (a ComfyUI .latent, or any with --in-key), or a PNG (8- or\n" \
    "16-bit); '-' is standard input. Several inputs: -i again for each (-i a.npy -i b.npy). Every\n" \
    "input is read and checked before any compute"}
#define O_IN_KEY {"--in-key", 0, OPT_STR, "NAME", 0, 0, 0, 0, NULL, \
    "the tensor to read from a safetensors input (default: 'latent_tensor', or the only one)"}
#define O_OUT {"--out", 'o', OPT_STR, "FILE", 0, 0, 0, 0, NULL, \
    "the output, by extension: .npy (float32) or .png; a batch of several images needs a\n" \
    "pattern such as out_%03d.png (one file per batch element); '-' is standard output\n" \
    "(format from --format). Checked before any work, written atomically at the end. A PNG\n" \
    "names its maker in text chunks: Software, and parameters (this command, shell-quoted)"}
#define O_OUT_DIR {"--out-dir", 0, OPT_STR, "DIR", 0, 0, 0, 0, NULL, \
    "one output per input, DIR/NAME.EXT (NAME: the input's file name without extension,\n" \
    "EXT from --format; a batch of images: NAME_000.png, ...). DIR is created"}
#define O_FORMAT(dflt) {"--format", 0, OPT_CHOICE, "npy|png", 0, 0, 0, 0, "npy|png", \
    "the output format for --out-dir and '-' (default: " dflt ")"}
#define O_PNG_BITS {"--png-bits", 0, OPT_CHOICE, "8|16", 0, 0, 0, 0, "8|16", \
    "bits per PNG sample (default 8)"}
#define O_LATENT {"--diffusion-latent", 0, OPT_CHOICE, "FAMILY", 0, 0, 0, 0, "sd|sdxl|sd3|flux|vae", \
    "the input is a diffusion pipeline's latent: convert it to VAE space first, z / scaling +\n" \
    "shift (sd 0.18215/0, sdxl 0.13025/0, sd3 1.5305/0.0609, flux 0.3611/0.1159; vae: the\n" \
    "scaling_factor/shift_factor of the --vae folder's config.json, which also wins over a\n" \
    "family named with such a folder)"}
#define O_PACKED {"--flux-packed", 0, OPT_HW, "HxW", 2, 16384, 0, 0, NULL, \
    "the input is FLUX's packed token layout [B, (H/2)*(W/2), 64] (a diffusers FluxPipeline\n" \
    "latent, output_type=\"latent\"); HxW is the latent size (image size / 8). Such a latent also\n" \
    "needs --diffusion-latent flux: without it latup warns (the colours come out wrong)"}
#define O_THREADS {"--threads", 't', OPT_INT, "N", 1, 4096, 0, 0, NULL, \
    "threads for OpenMP and OpenBLAS (default: OMP_NUM_THREADS if set, else every CPU this\n" \
    "process may run on, as taskset, cgroups or Slurm grant them). More than those runs slower,\n" \
    "and latup warns; the results are the same at any count"}
#define O_DUMP(what) {"--dump", 0, OPT_STR, "DIR", 0, 0, 0, 0, NULL, \
    "write every intermediate tensor as DIR/NAME.npy (batch element k > 0: NAME.bK.npy), in\n" \
    "the order of DIR/dump_order.txt; " what ". DIR is created. Compare two\n" \
    "dumps with 'latup compare'"}
#define O_DRY {"--dry-run", 0, OPT_FLAG, NULL, 0, 0, 0, 0, NULL, \
    "read the inputs and models, print the memory plan, compute nothing, write nothing"}
#define O_JSON {"--json", 0, OPT_FLAG, NULL, 0, 0, 0, 0, NULL, \
    "with --dry-run: the plan as one JSON object on stdout (for schedulers)"}
#define O_DEVICE {"--device", 0, OPT_CHOICE, "cpu|cuda", 0, 0, 0, 0, "cpu|cuda", \
    "where to compute (default cpu); exit 6 when the library cannot use the device"}
#define O_VERBOSE {"--verbose", 'v', OPT_FLAG, NULL, 0, 0, 0, 0, NULL, \
    "print the models, the OpenBLAS kernels (and a warning when they are narrower than the\n" \
    "CPU allows), memory plans and per-stage timings on stderr"}
#define O_EXACT {"--exact-math", 0, OPT_FLAG, NULL, 0, 0, 0, 0, NULL, \
    "the plain reference arithmetic: libm exp and erf, direct 3x3 convolutions (slower; the\n" \
    "default fast paths have measured error bounds: docs/testing.md, Approximations)"}
#define O_QUIET {"--quiet", 'q', OPT_FLAG, NULL, 0, 0, 0, 0, NULL, "print nothing but errors (no progress line either)"}
#define O_MODEL {"--model", 'm', OPT_STR, "FILE", 0, 0, 0, 0, NULL, \
    "LUA (or SwinIR) weights: safetensors or PyTorch .pth (torch.save zip; {'params_ema': ...},\n" \
    "{'params': ...}, {'state_dict': ...} or a bare state dict), optionally gzip-compressed"}
#define O_SCALE {"--scale", 's', OPT_INT, "S", 2, 8, 0, 0, NULL, \
    "a scale the model has (LUA: 2 or 4; SwinIR: its own)"}
#define O_VAE {"--vae", 0, OPT_STR, "FILE|DIR", 0, 0, 0, 0, NULL, \
    "the VAE (or a whole checkpoint holding one; decode and run load its decoder, encode its\n" \
    "encoder, eval both): safetensors or .pth, ldm or diffusers\n" \
    "names, flat or under first_stage_model./vae.; gzip ok. Or a diffusers folder, as\n" \
    "from_pretrained takes it: config.json + diffusion_pytorch_model.safetensors (or a\n" \
    "pipeline's folder holding vae/)"}
#define O_TILE {"--tile", 0, OPT_INT, "T", 4, 8192, 0, 0, NULL, \
    "decode (encode) in tiles of T x T latent pixels (approximate: docs/vae.md)"}
#define O_VAE_TILING {"--vae-tiling", 0, OPT_FLAG, NULL, 0, 0, 0, 0, NULL, \
    "decode (encode) in tiles of 64 x 64 latent pixels, as stable-diffusion.cpp's --vae-tiling (--tile\n" \
    "or --vae-tile-size set another size)"}
#define O_VAE_TILE_SIZE {"--vae-tile-size", 0, OPT_HW, "TxT", 4, 8192, 0, 0, NULL, \
    "--tile T as stable-diffusion.cpp writes it. Tiles are square: the library plans one tile\n" \
    "size for both sides (on the CPU and the GPU alike), so both sides must be equal"}
#define O_OVERLAP {"--overlap", 0, OPT_INT_FRAC, "O", 1, 8191, 0, 0, NULL, \
    "overlap between tiles: latent pixels, smaller than the tile, or a fraction of the tile\n" \
    "such as 0.25 (default T/4). Without a tile size, latent pixels, used by the tiles chosen\n" \
    "over --max-memory (T/4 where the tile chosen is not larger); an exact decode has none"}
#define O_MAXMEM {"--max-memory", 0, OPT_SIZE, "SIZE", 1, (long long)1 << 60, 0, 0, NULL, \
    "memory budget, e.g. 4G, 512M: a decode (encode) over it is tiled, and one that cannot fit is an\n" \
    "error naming the smallest budget that works (default: 3/4 of physical memory or of the\n" \
    "cgroup limit, whichever is smaller)"}
#define O_MAXMEM_UPSCALE {"--max-memory", 0, OPT_SIZE, "SIZE", 1, (long long)1 << 60, 0, 0, NULL, \
    "memory budget, e.g. 4G, 512M, as for decode and run: an upscale does not tile, so one that\n" \
    "cannot fit is refused before any compute (exit 3), naming what it needs (default: 3/4 of\n" \
    "physical memory or of the cgroup limit, whichever is smaller)"}

static const cli_opt UPSCALE_OPTS[] = {
    O_MODEL, O_SCALE, O_IN, O_IN_KEY, O_OUT, O_OUT_DIR, O_FORMAT("npy"), O_PNG_BITS,
    O_LATENT, O_PACKED, O_MAXMEM_UPSCALE, O_THREADS, O_DEVICE, O_EXACT,
    O_DUMP("names as in docs/architecture.md and the golden files"), O_DRY, O_JSON, O_VERBOSE, O_QUIET,
};
static const cli_opt DECODE_OPTS[] = {
    O_VAE, O_IN, O_IN_KEY, O_OUT, O_OUT_DIR, O_FORMAT("png"), O_PNG_BITS, O_LATENT, O_PACKED, O_TILE, O_OVERLAP,
    O_VAE_TILING, O_VAE_TILE_SIZE, O_MAXMEM, O_THREADS, O_DEVICE, O_EXACT, O_DUMP("names as in docs/architecture.md and the golden files"), O_DRY, O_JSON, O_VERBOSE,
    O_QUIET,
};
static const cli_opt RUN_OPTS[] = {
    O_MODEL, O_SCALE, O_VAE, O_IN, O_IN_KEY, O_OUT, O_OUT_DIR, O_FORMAT("png"), O_PNG_BITS,
    {"--save-latent", 0, OPT_STR, "FILE", 0, 0, 0, 0, NULL,
     "also write the upscaled latent (.npy), committed with the image (one input only)"},
    O_LATENT, O_PACKED, O_TILE, O_OVERLAP, O_VAE_TILING, O_VAE_TILE_SIZE, O_MAXMEM, O_THREADS, O_DEVICE, O_EXACT,
    O_DUMP("DIR/lua/ for the upscale, DIR/vae/ for the decode"), O_DRY, O_JSON, O_VERBOSE, O_QUIET,
};
static const cli_opt ENCODE_OPTS[] = {
    O_VAE, O_IN, O_IN_KEY,
    {"--out", 'o', OPT_STR, "FILE", 0, 0, 0, 0, NULL,
     "the latent, .npy (float32 [zc,h,w], or [B,zc,h,w] for a batch); '-' is standard output.\n"
     "Checked before any work, written atomically at the end"},
    {"--out-dir", 0, OPT_STR, "DIR", 0, 0, 0, 0, NULL, "one latent per input, DIR/NAME.npy (NAME: the input's file name without extension). DIR is created"},
    {"--range", 0, OPT_CHOICE, "signed|unit", 0, 0, 0, 0, "signed|unit",
     "the pixel range of .npy (and safetensors) inputs, required for them: signed [-1,1] (the VAE's\n"
     "own) or unit [0,1] (mapped to 2x - 1). A PNG is always unit. Values beyond the range (by\n"
     "more than 1e-3 of rounding) are an error naming the file and the min and max found"},
    {"--diffusion-latent", 0, OPT_CHOICE, "FAMILY", 0, 0, 0, 0, "sd|sdxl|sd3|flux|vae",
     "write the diffusion model's latent instead of the VAE's: (z - shift) * scaling (sd\n"
     "0.18215/0, sdxl 0.13025/0, sd3 1.5305/0.0609, flux 0.3611/0.1159; vae: the\n"
     "scaling_factor/shift_factor of the --vae folder's config.json, which also wins over a\n"
     "family named with such a folder)"},
    {"--sample", 0, OPT_FLAG, NULL, 0, 0, 0, 0, NULL,
     "a draw from the posterior, mean + exp(logvar / 2) * eps (default: the mean), eps from\n"
     "latup's seeded generator (not torch's)"},
    {"--seed", 0, OPT_INT, "N", 0, 9223372036854775807LL, 0, 0, NULL, "the seed of --sample's draw (default 0)"},
    O_TILE, O_OVERLAP, O_VAE_TILING, O_VAE_TILE_SIZE, O_MAXMEM, O_THREADS, O_EXACT,
    O_DUMP("ldm names as in docs/vae.md"), O_DRY, O_JSON, O_VERBOSE, O_QUIET,
};
static const cli_opt EVAL_OPTS[] = {
    {"--vae", 0, OPT_STR, "FILE|DIR", 0, 0, 0, 0, NULL,
     "the VAE, encoder and decoder (a file or a diffusers folder, as for decode)"},
    O_MODEL, {"--scale", 's', OPT_INT, "S", 2, 8, 0, 0, NULL, "the scale, one of the LUA's heads (default 2)"},
    {"--pixel-model", 0, OPT_STR, "FILE", 0, 0, 0, 0, NULL,
     "a pixel-space SwinIR of the same scale: adds the pixel path (decode, 8-bit, SwinIR)"},
    {"--save", 0, OPT_STR, "DIR", 0, 0, 0, 0, NULL,
     "write DIR/NAME_gt.png (the cropped ground truth) and NAME_{vae,bicubic,lua,pixel}.png, the\n"
     "images scored, all committed at the end or none. DIR is created"},
    {"--json", 0, OPT_STR, "FILE", 0, 0, 0, 0, NULL,
     "also write the numbers as one JSON object to FILE ('-': standard output, instead of the table)"},
    {"--max-memory", 0, OPT_SIZE, "SIZE", 1, (long long)1 << 60, 0, 0, NULL,
     "memory budget, e.g. 4G: every encode, upscale and decode is planned under it (an encode or\n"
     "decode over it is tiled, an approximation the table then marks; default: 3/4 of physical\n"
     "memory or of the cgroup limit)"},
    O_THREADS, O_EXACT, O_VERBOSE, O_QUIET,
};
static const cli_opt INFO_OPTS[] = {
    {"--json", 0, OPT_FLAG, NULL, 0, 0, 0, 0, NULL, "print the summary as one JSON object"},
};
static const cli_opt COMPARE_OPTS[] = {
    {"--tol", 0, OPT_REAL, "T", 0, 0, 0, 1e30, NULL,
     "relative tolerance: max |a - b| / max(|a|, |b|) over the tensor (default 1e-4)"},
    {"--atol", 0, OPT_REAL, "A", 0, 0, 0, 1e30, NULL, "also pass a tensor whose max |a - b| is at most A (default 0)"},
    O_QUIET,
};

#define N(a) (int)(sizeof a / sizeof a[0])

/* The common slip, `-i in.npy out.npy`, ends here: say where inputs and outputs go. */
#define PIPELINE_POS_HINT "every input follows its own -i (--in); the output follows -o (--out), or --out-dir"

const cli_command CLI_CMD_UPSCALE = {
    "upscale", "-m MODEL -s S -i INPUT [-i ...] (-o OUTPUT | --out-dir DIR) [options]",
    "Upscales decoder-ready VAE latents with a LUA model (or RGB images with a SwinIR model). The\n"
    "model is loaded once for all the inputs; the time per input is reported.",
    UPSCALE_OPTS, N(UPSCALE_OPTS), "--verbose --quiet,--out --out-dir", 0, 0, "", PIPELINE_POS_HINT,
};
const cli_command CLI_CMD_DECODE = {
    "decode", "--vae VAE -i LATENT [-i ...] (-o IMAGE | --out-dir DIR) [options]",
    "Decodes VAE latents with the AutoencoderKL decoder of SD 1.x/2.x, SDXL, SD3 or FLUX.1. PNG\n"
    "output uses diffusers' mapping, clamp((x + 1) / 2, 0, 1); .npy holds the raw decoder output\n"
    "[B,3,8h,8w]. When the decode is tiled, one line on stderr says so and why.",
    DECODE_OPTS, N(DECODE_OPTS), "--verbose --quiet,--out --out-dir,--tile --vae-tile-size", 0, 0, "",
    PIPELINE_POS_HINT,
};
const cli_command CLI_CMD_RUN = {
    "run", "-m LUA -s 2|4 --vae VAE -i LATENT [-i ...] (-o IMAGE | --out-dir DIR) [options]",
    "Upscales VAE latents with LUA and decodes the result: a 2K/4K image from one decode. Both\n"
    "models are loaded once; their channels are checked against each other before any compute.",
    RUN_OPTS, N(RUN_OPTS), "--verbose --quiet,--out --out-dir,--save-latent --out-dir,--tile --vae-tile-size", 0, 0,
    "", PIPELINE_POS_HINT,
};
const cli_command CLI_CMD_ENCODE = {
    "encode", "--vae VAE -i IMAGE [-i ...] (-o LATENT | --out-dir DIR) [options]",
    "Encodes images into VAE latents with the encoder of the same AutoencoderKL files decode reads\n"
    "(SD 1.x/2.x, SDXL, SD3, FLUX.1, latup's demo VAE): the posterior's mean, or a draw with\n"
    "--sample. Inputs: PNG (8- or 16-bit, [0,1] taken as 2x - 1) or .npy [3,H,W] / [B,3,H,W] with\n"
    "--range. A side that is not a multiple of the encoder's factor (8) is encoded as the model\n"
    "does, the last rows and columns dropped (floor): a warning says which pixels the latent covers.",
    ENCODE_OPTS, N(ENCODE_OPTS), "--verbose --quiet,--out --out-dir,--tile --vae-tile-size", 0, 0, "",
    PIPELINE_POS_HINT,
};
const cli_command CLI_CMD_EVAL = {
    "eval", "--vae VAE -m LUA [-s 2|4] [--pixel-model SWINIR] [options] IMAGE|DIR ...",
    "The paper's comparison on your photos: each PNG (a DIR: its *.png, by name), cropped to a\n"
    "multiple of 8 x scale from the top left, is the ground truth; its antialiased bicubic\n"
    "downscale (torch's, a = -0.5, as the training scripts) is the input. Paths: vae (encode the\n"
    "photo, decode: the ceiling), bicubic (encode the input, decode, 8-bit, bicubic x scale), lua\n"
    "(encode, LUA x scale, decode), pixel (encode, decode, 8-bit, SwinIR; with --pixel-model).\n"
    "Prints PSNR and SSIM per image and path, their mean and median, and each path's seconds (the\n"
    "input's encode, shared, counted in each path).",
    EVAL_OPTS, N(EVAL_OPTS), "--verbose --quiet", 1, CLI_MAX_POS, "IMAGE|DIR",
    "eval takes images and folders of images (IMAGE|DIR ...)",
};
const cli_command CLI_CMD_INFO = {
    "info", "FILE",
    "Prints the format, tensor count, dtypes and parameter count of a checkpoint (safetensors or\n"
    "PyTorch .pth, optionally gzip-compressed) and the model latup infers from it: LUA, SwinIR\n"
    "(pixelshuffle or pixelshuffledirect tail) or a VAE decoder (each naming, standalone or inside\n"
    "a whole checkpoint); or the shape of a latent (.npy, ComfyUI .latent). Exit 0 also for a valid\n"
    "file that is not a model latup runs.",
    INFO_OPTS, N(INFO_OPTS), "", 1, 1, "FILE", "info reads one file",
};
const cli_command CLI_CMD_COMPARE = {
    "compare", "DIR_A DIR_B [--tol T] [--atol A]",
    "Compares two folders of .npy tensors (two --dump outputs, or a PyTorch reference dumped with\n"
    "forward hooks and a port): for each tensor present in both, the max abs and max relative\n"
    "error, in forward order (DIR_A/dump_order.txt, else modification time); then the tensors\n"
    "found in one folder only. Exit 10 when any tensor is over the tolerance (the first one is\n"
    "named), 0 otherwise.",
    COMPARE_OPTS, N(COMPARE_OPTS), "", 2, 2, "DIR_A DIR_B", "compare takes two folders",
};

static const cli_command *const COMMANDS[] = {&CLI_CMD_UPSCALE, &CLI_CMD_DECODE, &CLI_CMD_RUN, &CLI_CMD_ENCODE,
                                              &CLI_CMD_EVAL,    &CLI_CMD_INFO,   &CLI_CMD_COMPARE};

const cli_command *cli_find_command(const char *name) {
    for (int i = 0; i < N(COMMANDS); i++)
        if (!strcmp(COMMANDS[i]->name, name)) return COMMANDS[i];
    return NULL;
}

/* ---- usage text ------------------------------------------------------------------------------ */

static const char *EXIT_CODES =
    "exit codes: 0 ok, 1 usage, 2 bad input file or data, 3 out of memory (or a --max-memory that\n"
    "cannot be met), 4 i/o error, 5 internal error, 6 device unavailable, 10 compare: over tolerance\n"
    "(7, cancelled, is the library's status for a call its caller's progress callback stopped: SIGINT\n"
    "stops a command, 130)\n";

/* Prints text word-wrapped to WIDTH columns, continuation lines indented by `indent` (the caller
 * has printed the first line's indent); a '\n' in the text is a space. */
#define WIDTH 100
static void print_lines(FILE *f, const char *text, int indent) {
    int col = indent;
    for (const char *p = text; *p;) {
        while (*p == ' ' || *p == '\n') p++;
        size_t n = strcspn(p, " \n");
        if (!n) break;
        if (col > indent && col + 1 + (int)n > WIDTH) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        }
        if (col > indent) fputc(' ', f), col++;
        fprintf(f, "%.*s", (int)n, p);
        col += (int)n;
        p += n;
    }
    fputc('\n', f);
}

void cli_print_usage(const cli_command *cmd, FILE *f) {
    fprintf(f, "usage: latup %s %s\n\n", cmd->name, cmd->synopsis);
    print_lines(f, cmd->about, 0);
    fprintf(f, "\noptions:\n");
    for (int i = 0; i < cmd->n_opts; i++) {
        const cli_opt *o = &cmd->opts[i];
        char head[64];
        int n = snprintf(head, sizeof head, "  %c%c%s%s %s", o->short_name ? '-' : ' ', o->short_name ? o->short_name : ' ',
                         o->short_name ? ", " : "  ", o->name, o->metavar ? o->metavar : "");
        fprintf(f, "%-29s", head);
        if (n > 28) fprintf(f, "\n%29s", "");
        print_lines(f, o->help, 29);
    }
    fprintf(f, "  -h, --help                 this text\n\n%s", EXIT_CODES);
}

void cli_print_main_usage(FILE *f) {
    fputs("usage: latup COMMAND [options]\n"
          "\n"
          "latup — CPU reference implementation of LUA, the Latent Upscaler Adapter.\n"
          "\n"
          "commands:\n"
          "  upscale   upscale VAE latents x2 or x4 with a LUA model (or images with SwinIR)\n"
          "  decode    decode VAE latents to images (SD 1.x/2.x, SDXL, SD3, FLUX.1 decoders)\n"
          "  run       upscale with LUA, then decode: latents in, 2K/4K images out\n"
          "  encode    encode images to VAE latents (the posterior mean, or a seeded draw)\n"
          "  eval      the paper's comparison on photos: VAE ceiling, bicubic, LUA, pixel SwinIR\n"
          "  info      print what a checkpoint (or latent) holds and the model inferred from it\n"
          "  compare   compare two folders of dumped tensors, layer by layer\n"
          "  help CMD  the options of a command (also: latup CMD --help)\n"
          "  version   the version (also: latup --version); with -v (--verbose) also the OpenBLAS\n"
          "            kernels, the CPU and its ISA, the threads, and a warning when the kernels are\n"
          "            narrower than the CPU allows (docs/performance.md, Which kernels run)\n"
          "\n",
          f);
    fputs(EXIT_CODES, f);
}

/* ---- did you mean --------------------------------------------------------------------------------- */

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

int cli_edit_distance(const char *a, size_t na, const char *b, size_t nb) {
    enum { MAX = 64, CAP = 99 };
    if (na >= MAX || nb >= MAX) return CAP; /* nobody mistypes a 64-letter name into a known one */
    int d[MAX + 1][MAX + 1];
    for (size_t i = 0; i <= na; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= nb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++) {
            const int same = lower(a[i - 1]) == lower(b[j - 1]);
            int v = d[i - 1][j - 1] + !same;
            if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) && lower(a[i - 2]) == lower(b[j - 1]) &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[na][nb] < CAP ? d[na][nb] : CAP;
}

/* The best of n names (each read through name_at) for the typed word; see options.h. */
static const char *suggest(const char *typed, size_t len, int n, const char *(*name_at)(const void *, int),
                           const void *ctx) {
    const char *best = NULL, *prefix_of = NULL;
    int best_d = 99, n_prefix = 0;
    for (int k = 0; k < n; k++) {
        const char *name = name_at(ctx, k);
        const size_t nl = strlen(name);
        const int d = cli_edit_distance(typed, len, name, nl);
        int allowed = (int)nl / 3;
        allowed = allowed < 1 ? 1 : allowed > 3 ? 3 : allowed;
        if (d <= allowed && d < best_d) best = name, best_d = d;
        if (len >= 3 && len < nl && !strncmp(name, typed, len)) prefix_of = name, n_prefix++;
    }
    return best ? best : n_prefix == 1 ? prefix_of : NULL;
}

static const char *opt_name_at(const void *cmd, int k) { return ((const cli_command *)cmd)->opts[k].name + 2; }

const char *cli_suggest_option(const cli_command *cmd, const char *name, size_t len) {
    while (len > 0 && *name == '-') name++, len--;
    const char *s = suggest(name, len, cmd->n_opts, opt_name_at, cmd);
    return s ? s - 2 : NULL; /* with its dashes again */
}

static const char *cmd_name_at(const void *ctx, int k) {
    (void)ctx;
    return COMMANDS[k]->name;
}

const char *cli_suggest_command(const char *name) { return suggest(name, strlen(name), N(COMMANDS), cmd_name_at, NULL); }

/* ---- the parser ------------------------------------------------------------------------------------ */

static int usage_error(FILE *err, const cli_command *cmd, const char *fmt, const char *a, const char *b) {
    if (err) {
        fprintf(err, "latup %s: ", cmd->name);
        fprintf(err, fmt, a, b);
        fprintf(err, " (see 'latup help %s')\n", cmd->name);
    }
    return USAGE_ERROR;
}

/* "-x..." or "--x..." (but not "-" alone, nor a negative number): an option, not a value. */
static int looks_like_option(const char *s) {
    return s[0] == '-' && ((s[1] >= 'a' && s[1] <= 'z') || (s[1] >= 'A' && s[1] <= 'Z') || s[1] == '-');
}

static int find_opt(const cli_command *cmd, const char *arg, size_t name_len, char short_name) {
    for (int k = 0; k < cmd->n_opts; k++) {
        const cli_opt *o = &cmd->opts[k];
        if (short_name ? o->short_name == short_name
                       : strlen(o->name) == name_len && !strncmp(o->name, arg, name_len))
            return k;
    }
    return -1;
}

/* Reads one value into v; 1 if valid. */
static int take_value(const cli_opt *o, const char *s, cli_value *v) {
    v->text = s;
    switch (o->kind) {
    case OPT_STR:
        return *s != '\0';
    case OPT_INT:
        return cli_parse_int(s, o->lo, o->hi, &v->num);
    case OPT_SIZE:
        return cli_parse_size(s, o->lo, o->hi, &v->num);
    case OPT_REAL:
        return cli_parse_real(s, o->rlo, o->rhi, &v->real);
    case OPT_HW:
        return cli_parse_hw(s, o->lo, o->hi, &v->num, &v->num2);
    case OPT_INT_FRAC:
        v->num = 0, v->real = 0;
        if (!strchr(s, '.')) return cli_parse_int(s, o->lo, o->hi, &v->num);
        /* digits and one point only: no exponent, sign, nan or inf reaches strtod */
        return strspn(s, "0123456789.") == strlen(s) && cli_parse_real(s, 0, 1, &v->real) && v->real > 0 &&
               v->real < 1;
    case OPT_CHOICE: {
        size_t n = strlen(s);
        for (const char *c = o->choices; *c;) {
            size_t k = strcspn(c, "|");
            if (k == n && n && !strncmp(c, s, n)) return 1;
            c += k + (c[k] == '|');
        }
        return 0;
    }
    default:
        return 0;
    }
}

static int bad_value(FILE *err, const cli_command *cmd, const cli_opt *o, const char *s) {
    if (!err) return USAGE_ERROR;
    fprintf(err, "latup %s: %s ", cmd->name, o->name);
    switch (o->kind) {
    case OPT_INT: fprintf(err, "takes an integer from %lld to %lld", o->lo, o->hi); break;
    case OPT_SIZE: fprintf(err, "takes a size from %lld bytes, like 4G, 512M or 1.5G", o->lo); break;
    case OPT_REAL: fprintf(err, "takes a number from %g to %g, like 1e-4", o->rlo, o->rhi); break;
    case OPT_HW: fprintf(err, "takes HxW, each side %lld to %lld, like 128x128", o->lo, o->hi); break;
    case OPT_INT_FRAC:
        fprintf(err, "takes latent pixels from %lld to %lld, or a fraction of the tile like 0.25", o->lo, o->hi);
        break;
    case OPT_CHOICE: fprintf(err, "takes one of %s", o->choices); break;
    default: fprintf(err, "takes a non-empty value"); break;
    }
    fprintf(err, ", got '%s' (see 'latup help %s')\n", s, cmd->name);
    return USAGE_ERROR;
}

/* "unknown option": with the option of this command it most likely meant, or else the commands that
 * do take it (`upscale --tile`). */
static int unknown_option(FILE *err, const cli_command *cmd, const char *arg) {
    if (!err) return USAGE_ERROR;
    const size_t len = strcspn(arg, "=");
    const char *near = arg[1] == '-' ? cli_suggest_option(cmd, arg, len) : NULL;
    if (near) {
        fprintf(err, "latup %s: unknown option '%.*s'; did you mean %s? (see 'latup help %s')\n", cmd->name, (int)len,
                arg, near, cmd->name);
        return USAGE_ERROR;
    }
    char others[64] = "";
    for (int c = 0; c < N(COMMANDS); c++) {
        if (COMMANDS[c] == cmd || arg[1] != '-' || find_opt(COMMANDS[c], arg, len, 0) < 0) continue;
        const size_t o = strlen(others);
        snprintf(others + o, sizeof others - o, "%s%s", o ? ", " : "", COMMANDS[c]->name);
    }
    fprintf(err, "latup %s: unknown option '%.*s'", cmd->name, (int)len, arg);
    if (*others) fprintf(err, " (an option of %s, not of %s)", others, cmd->name);
    fprintf(err, " (see 'latup help %s')\n", cmd->name);
    return USAGE_ERROR;
}

static int check_conflicts(const cli_command *cmd, const cli_args *a, FILE *err) {
    for (const char *c = cmd->conflicts; *c;) {
        char pair[64] = "", x[32] = "", y[32] = "";
        size_t n = strcspn(c, ",");
        snprintf(pair, sizeof pair, "%.*s", (int)n, c);
        if (sscanf(pair, "%31s %31s", x, y) == 2 && cli_given(a, x) && cli_given(a, y))
            return usage_error(err, cmd, "%s and %s exclude each other", x, y);
        c += n + (c[n] == ',');
    }
    return -1;
}

/* An argument that is no option's value and not wanted as a positional one. Right after a list
 * value (`-i in.npy out.npy`) it is most likely an output or a second input. */
static int stray(FILE *err, const cli_command *cmd, const char *arg, const cli_opt *list, const char *after_list) {
    if (!err) return USAGE_ERROR;
    char name[48];
    if (after_list && list->short_name) snprintf(name, sizeof name, "-%c (%s)", list->short_name, list->name);
    else if (after_list) snprintf(name, sizeof name, "%s", list->name);
    if (after_list)
        fprintf(err, "latup %s: unexpected argument '%s' after the input '%s': %s takes one file; %s", cmd->name, arg,
                after_list, name, cmd->pos_hint ? cmd->pos_hint : "");
    else
        fprintf(err, "latup %s: unexpected argument '%s'%s%s%s", cmd->name, arg, cmd->pos_hint ? " (" : "",
                cmd->pos_hint ? cmd->pos_hint : "", cmd->pos_hint ? ")" : "");
    fprintf(err, " (see 'latup help %s')\n", cmd->name);
    return USAGE_ERROR;
}

int cli_parse(const cli_command *cmd, int argc, char *const *argv, cli_args *a, FILE *out, FILE *err) {
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    int only_pos = 0;
    const char *list_value = NULL; /* the previous argument, when it was a list option's value */
    const cli_opt *list_opt = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *after_list = list_value;
        list_value = NULL;
        if (only_pos || !looks_like_option(arg)) {
            if (a->n_pos >= cmd->max_pos || a->n_pos >= CLI_MAX_POS) return stray(err, cmd, arg, list_opt, after_list);
            a->pos[a->n_pos++] = arg;
            continue;
        }
        if (!strcmp(arg, "--")) {
            only_pos = 1;
            continue;
        }
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            if (out) cli_print_usage(cmd, out);
            return 0;
        }
        /* --name, --name=value, -x, -xVALUE */
        const char *inline_val = NULL;
        int k;
        if (arg[1] == '-') {
            const char *eq = strchr(arg, '=');
            k = find_opt(cmd, arg, eq ? (size_t)(eq - arg) : strlen(arg), 0);
            if (eq) inline_val = eq + 1;
        } else {
            k = find_opt(cmd, arg, 0, arg[1]);
            if (arg[2]) inline_val = arg + 2;
        }
        if (k < 0) return unknown_option(err, cmd, arg);
        const cli_opt *o = &cmd->opts[k];
        cli_value *v = &a->v[k];
        if (v->given && o->kind != OPT_LIST) return usage_error(err, cmd, "%s given twice%s", o->name, "");
        v->given = 1;
        if (o->kind == OPT_FLAG) {
            if (inline_val) return usage_error(err, cmd, "%s takes no value, got '%s'", o->name, inline_val);
            continue;
        }
        if (!inline_val && (i + 1 >= argc || looks_like_option(argv[i + 1])))
            return usage_error(err, cmd, "%s needs a value (%s)", o->name, o->metavar ? o->metavar : "");
        const char *val = inline_val ? inline_val : argv[++i];
        if (o->kind == OPT_LIST) { /* one value each time: a second file needs its own -i */
            if (!*val) return bad_value(err, cmd, o, val);
            if (v->n_list >= CLI_MAX_LIST)
                return usage_error(err, cmd, "more than %s values of %s: split them over several commands",
                                   STRINGIFY(CLI_MAX_LIST), o->name);
            a->list_pool[v->n_list++] = val;
            v->list = a->list_pool;
            list_value = val, list_opt = o;
            continue;
        }
        if (!take_value(o, val, v)) return bad_value(err, cmd, o, val);
    }
    if (a->n_pos < cmd->min_pos)
        return usage_error(err, cmd, "missing %s%s", cmd->pos_names, "");
    return check_conflicts(cmd, a, err);
}

/* ---- lookups ----------------------------------------------------------------------------------- */

const cli_value *cli_get(const cli_args *a, const char *name) {
    static const cli_value none;
    for (int k = 0; k < a->cmd->n_opts; k++)
        if (!strcmp(a->cmd->opts[k].name, name)) return &a->v[k];
    return &none; /* not an option of this command: never given */
}

int cli_given(const cli_args *a, const char *name) { return cli_get(a, name)->given; }

const char *cli_str(const cli_args *a, const char *name) {
    const cli_value *v = cli_get(a, name);
    return v->given ? v->text : NULL;
}

long long cli_num(const cli_args *a, const char *name, long long dflt) {
    const cli_value *v = cli_get(a, name);
    return v->given ? v->num : dflt;
}
