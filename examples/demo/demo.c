/* demo.c — build/latup_demo, the picture half of `make demo`: `latup eval --save DIR` on the photo
 * writes the ground truth and the three paths' images (bicubic, lua, pixel); latup_demo scores
 * them again (PSNR, SSIM) and shows them side by side in one labelled PNG, compare.png. Given
 * --latent, it instead runs the paper's three ways from that latent itself on the trained models,
 * each timed: with `--runs N` the benchmark behind docs/results.md (tools/train/results.sh; median
 * of N runs per step). */
#define _POSIX_C_SOURCE 200809L
#include "common.h"
#include "cli/image_metrics.h"
#include "io/png.h"
#include "latup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "usage: build/latup_demo [options]   (run from the repository root)\n"
    "\n"
    "Without --latent: composes DIR/compare.png (--out) from the images `latup eval --save DIR`\n"
    "wrote for the photo --gt: DIR/STEM_gt.png, STEM_bicubic.png, STEM_lua.png, STEM_pixel.png\n"
    "(STEM: --gt's file name without .png), each scored against STEM_gt.png.\n"
    "\n"
    "With --latent, from a VAE latent of a photo's half-size version, makes the full-size image three\n"
    "ways and scores each against the photo (PSNR over RGB, SSIM: Gaussian 11x11, mean over R, G, B):\n"
    "  bicubic  decode at 1x, then bicubic x2 (PyTorch's, A = -0.75)\n"
    "  lua      LUA x2 on the latent, then decode at 2x   (the paper's path)\n"
    "  pixel    decode at 1x, then SwinIR x2 on the 8-bit image (the paper's baseline)\n"
    "\n"
    "  --latent FILE   .npy [16,h,w]: run the paths from this latent (e.g. ref_data/trained/demo_latent.npy)\n"
    "  --gt FILE       .png 16h x 16w       (default ref_data/trained/demo_gt.png)\n"
    "  --lua FILE      LUA weights          (default ref_data/trained/lua_x2x4.safetensors.gz)\n"
    "  --vae FILE      VAE decoder          (default ref_data/trained/vae.ldm.safetensors.gz)\n"
    "  --swinir FILE   pixel SwinIR x2      (default ref_data/trained/swinir_x2.safetensors.gz)\n"
    "  --out DIR       writes compare.png (with --latent also bicubic.png, lua.png, pixel.png; default build/demo)\n"
    "  --check PNG     with --latent: must equal the lua path's image byte for byte (e.g. latup run's output)\n"
    "  --runs N        with --latent: time each step N times, report the median (default 1)\n"
    "  --threads N     threads (default: all cores)\n"
    "\n"
    "exit codes: 0 ok, 1 usage, 2 bad input, 3 out of memory, 4 i/o, 5 internal, 7 --check differs.\n";

/* ---- a 5x7 bitmap font for the labels (upper case, digits, a few signs) ------------------------ */
static const char FONT_CHARS[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+-/:()| ";
static const uint8_t FONT[][7] = {
    {14, 17, 17, 31, 17, 17, 17}, {30, 17, 17, 30, 17, 17, 30}, {14, 17, 16, 16, 16, 17, 14},
    {28, 18, 17, 17, 17, 18, 28}, {31, 16, 16, 30, 16, 16, 31}, {31, 16, 16, 30, 16, 16, 16},
    {14, 17, 16, 23, 17, 17, 15}, {17, 17, 17, 31, 17, 17, 17}, {14, 4, 4, 4, 4, 4, 14},
    {7, 2, 2, 2, 2, 18, 12},      {17, 18, 20, 24, 20, 18, 17}, {16, 16, 16, 16, 16, 16, 31},
    {17, 27, 21, 21, 17, 17, 17}, {17, 17, 25, 21, 19, 17, 17}, {14, 17, 17, 17, 17, 17, 14},
    {30, 17, 17, 30, 16, 16, 16}, {14, 17, 17, 17, 21, 18, 13}, {30, 17, 17, 30, 20, 18, 17},
    {15, 16, 16, 14, 1, 1, 30},   {31, 4, 4, 4, 4, 4, 4},       {17, 17, 17, 17, 17, 17, 14},
    {17, 17, 17, 17, 17, 10, 4},  {17, 17, 17, 21, 21, 21, 10}, {17, 17, 10, 4, 10, 17, 17},
    {17, 17, 17, 10, 4, 4, 4},    {31, 1, 2, 4, 8, 16, 31},     {14, 17, 19, 21, 25, 17, 14},
    {4, 12, 4, 4, 4, 4, 14},      {14, 17, 1, 2, 4, 8, 31},     {31, 2, 4, 2, 1, 17, 14},
    {2, 6, 10, 18, 31, 2, 2},     {31, 16, 30, 1, 1, 17, 14},   {6, 8, 16, 30, 17, 17, 14},
    {31, 1, 2, 4, 8, 8, 8},       {14, 17, 17, 14, 17, 17, 14}, {14, 17, 17, 15, 1, 2, 12},
    {0, 0, 0, 0, 0, 12, 12},      {0, 4, 4, 31, 4, 4, 0},       {0, 0, 0, 31, 0, 0, 0},
    {0, 1, 2, 4, 8, 16, 0},       {0, 12, 12, 0, 12, 12, 0},    {2, 4, 8, 8, 8, 4, 2},
    {8, 4, 2, 2, 2, 4, 8},        {4, 4, 4, 4, 4, 4, 4},        {0, 0, 0, 0, 0, 0, 0},
};

/* Draws text (lower case shown as upper case) in black at (x, y), each font pixel s x s, clipped to
 * the canvas [H,W,3] and to max_w pixels of width. */
static void draw_text(uint8_t *rgb, int H, int W, int x, int y, int s, int max_w, const char *text) {
    for (int i = 0; text[i] && (i + 1) * 6 * s <= max_w; i++) {
        char ch = text[i] >= 'a' && text[i] <= 'z' ? (char)(text[i] - 32) : text[i];
        const char *p = strchr(FONT_CHARS, ch);
        const uint8_t *g = FONT[p && *p ? p - FONT_CHARS : (int)sizeof FONT_CHARS - 2];
        for (int r = 0; r < 7 * s; r++)
            for (int c = 0; c < 5 * s; c++) {
                const int X = x + i * 6 * s + c, Y = y + r;
                if (X < 0 || Y < 0 || X >= W || Y >= H || !(g[r / s] >> (4 - c / s) & 1)) continue;
                memset(rgb + ((size_t)Y * W + X) * 3, 0, 3);
            }
    }
}

/* ---- timing: each step run `runs` times, the median kept --------------------------------------- */
static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

typedef enum { STEP_DECODE, STEP_UPSCALE } step_kind;

/* Runs one library step `runs` times (the last result kept in *out); *secs = the median time. */
static latup_status timed(step_kind k, const void *model, const latup_tensor *in, int scale,
                          latup_tensor *out, int runs, double *secs) {
    double t[64];
    if (runs > 64) runs = 64;
    latup_status st = LATUP_OK;
    for (int r = 0; r < runs && st == LATUP_OK; r++) {
        latup_tensor_free(out);
        const double t0 = latup_now();
        st = k == STEP_DECODE ? latup_vae_decode(model, in, out, NULL)
                              : latup_lua_upscale(model, in, scale, out, NULL);
        t[r] = latup_now() - t0;
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_double);
    *secs = t[runs / 2];
    return st;
}

/* ---- the demo ------------------------------------------------------------------------------------ */
typedef struct {
    const char *name, *label; /* file stem, panel label */
    uint8_t *rgb;             /* [H,W,3] at the ground truth's size */
    double secs, psnr, ssim;
    const char *how;
} path_result;

/* [3,H,W] floats -> interleaved bytes (freshly allocated) with the PNG writer's mapping. */
static uint8_t *to_bytes(const latup_tensor *t, latup_png_map map) {
    const int H = (int)t->shape[t->ndim - 2], W = (int)t->shape[t->ndim - 1];
    uint8_t *rgb = malloc((size_t)H * W * 3);
    if (rgb) latup_png_quantize(rgb, t->data, H, W, map);
    return rgb;
}

/* 8-bit interleaved -> float [3,H,W] k/255, as latup reads a PNG (the pixel path's input). */
static latup_status from_bytes(const uint8_t *rgb, int H, int W, latup_tensor *t) {
    const int64_t s[3] = {3, H, W};
    latup_status st = latup_tensor_alloc(t, 3, s);
    if (st != LATUP_OK) return st;
    im_planar_from_bytes(t->data, rgb, H, W);
    return LATUP_OK;
}

/* The crop the zoom row shows: the cs x cs window (on a grid of cs/4) where the three paths differ
 * most from each other (sum of |LUA - bicubic| + |LUA - SwinIR| + |bicubic - SwinIR|). */
static void busiest_window(const path_result *p, int H, int W, int cs, int *wy, int *wx) {
    double best = -1;
    const int step = cs / 4 > 0 ? cs / 4 : 1;
    for (int y0 = 0; y0 + cs <= H; y0 += step)
        for (int x0 = 0; x0 + cs <= W; x0 += step) {
            double d = 0;
            for (int y = y0; y < y0 + cs; y++)
                for (int x = x0; x < x0 + cs; x++)
                    for (int c = 0; c < 3; c++) {
                        const size_t i = ((size_t)y * W + x) * 3 + c;
                        const int a = p[0].rgb[i], b = p[1].rgb[i], e = p[2].rgb[i];
                        d += abs(b - a) + abs(b - e) + abs(a - e);
                    }
            if (d > best) best = d, *wy = y0, *wx = x0;
        }
}

/* A frame of width 2 in red around the window, on the panel at (px, py) of the canvas. */
static void draw_frame(uint8_t *c, int CW, int px, int py, int wx, int wy, int cs) {
    for (int y = wy; y < wy + cs; y++)
        for (int x = wx; x < wx + cs; x++) {
            if (y - wy >= 2 && y - wy < cs - 2 && x - wx >= 2 && x - wx < cs - 2) continue;
            uint8_t *q = c + ((size_t)(py + y) * CW + px + x) * 3;
            q[0] = 230, q[1] = 0, q[2] = 0;
        }
}

/* compare.png: the photo and the three paths side by side, each labelled (its PSNR and SSIM
 * against the photo); below, the window where the paths differ most, at 4x (nearest neighbour, so
 * each output pixel shows as a 4x4 block), framed in red in the row above. */
static latup_status write_compare(const char *path, const uint8_t *gt, const path_result *p, int np, int H, int W) {
    const int gap = 6, n = np + 1, zoom = 4;
    const int s = W >= 2 * 6 * 24 ? 2 : 1; /* font scale: 24 characters must fit a panel */
    const int label_h = 2 * 9 * s + 3 * 4, zlabel_h = 9 * s + 2 * 4;
    const int cs = (H < W ? H : W) / zoom; /* the window's side: zoomed, it fills at most a panel */
    int wy = 0, wx = 0;
    busiest_window(p, H, W, cs, &wy, &wx);
    const int row2 = label_h + H + gap, CW = n * W + (n - 1) * gap, CH = row2 + zlabel_h + cs * zoom;
    uint8_t *c = malloc((size_t)CW * CH * 3);
    if (!c) return latup_fail(LATUP_E_NOMEM, "compare.png: %dx%d canvas", CW, CH);
    memset(c, 255, (size_t)CW * CH * 3);
    for (int k = 0; k < n; k++) {
        const uint8_t *img = k == 0 ? gt : p[k - 1].rgb;
        const int x0 = k * (W + gap);
        for (int y = 0; y < H; y++) memcpy(c + ((size_t)(label_h + y) * CW + x0) * 3, img + (size_t)y * W * 3, (size_t)W * 3);
        char l2[64];
        if (k == 0) snprintf(l2, sizeof l2, "%dX%d PHOTO", W, H);
        else snprintf(l2, sizeof l2, "PSNR %.2f DB  SSIM %.3f", p[k - 1].psnr, p[k - 1].ssim);
        draw_text(c, CH, CW, x0 + 4, 4, s, W - 8, k == 0 ? "GROUND TRUTH" : p[k - 1].label);
        draw_text(c, CH, CW, x0 + 4, 4 + 9 * s + 4, s, W - 8, l2);
        /* the zoom row */
        for (int y = 0; y < cs * zoom; y++)
            for (int x = 0; x < cs * zoom; x++)
                memcpy(c + ((size_t)(row2 + zlabel_h + y) * CW + x0 + x) * 3,
                       img + ((size_t)(wy + y / zoom) * W + wx + x / zoom) * 3, 3);
        char l3[64];
        snprintf(l3, sizeof l3, "%dX ZOOM: X %d-%d  Y %d-%d", zoom, wx, wx + cs - 1, wy, wy + cs - 1);
        draw_text(c, CH, CW, x0 + 4, row2 + 4, s, W - 8, l3);
        draw_frame(c, CW, x0, label_h, wx, wy, cs);
    }
    latup_status st = latup_png_write_rgb8(path, c, CH, CW);
    free(c);
    return st;
}

/* compare.png from the images `latup eval --save out_dir` wrote for gt_path. */
static int compose(const char *gt_path, const char *out_dir) {
    char stem[256], path[4400];
    const char *base = strrchr(gt_path, '/');
    snprintf(stem, sizeof stem, "%s", base ? base + 1 : gt_path);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem) *dot = '\0';
    path_result p[3] = {
        {"bicubic", "DECODE 1X + BICUBIC", NULL, 0, 0, 0, "decode at 1x, bicubic x2"},
        {"lua", "LUA X2 + DECODE", NULL, 0, 0, 0, "LUA x2, decode at 2x"},
        {"pixel", "DECODE 1X + SWINIR X2", NULL, 0, 0, 0, "decode at 1x, SwinIR x2"},
    };
    uint8_t *gt8 = NULL;
    int H = 0, W = 0;
    latup_status st = LATUP_OK;
    for (int k = -1; k < 3 && !st; k++) {
        latup_tensor t = {0};
        snprintf(path, sizeof path, "%s/%s_%s.png", out_dir, stem, k < 0 ? "gt" : p[k].name);
        if ((st = latup_png_read(path, &t))) break;
        if (k >= 0 && (t.shape[1] != H || t.shape[2] != W))
            st = latup_fail(LATUP_E_INPUT, "%s: %lldx%lld, the ground truth is %dx%d", path, (long long)t.shape[2],
                            (long long)t.shape[1], W, H);
        H = (int)t.shape[1], W = (int)t.shape[2];
        uint8_t *b = st ? NULL : to_bytes(&t, LATUP_PNG_MAP_UNIT);
        if (!st && !b) st = latup_fail(LATUP_E_NOMEM, "latup_demo: out of memory");
        if (k < 0) gt8 = b;
        else p[k].rgb = b;
        latup_tensor_free(&t);
    }
    if (!st) {
        printf("latup_demo: %s/%s_*.png (latup eval --save), %dx%d\n", out_dir, stem, W, H);
        for (int k = 0; k < 3; k++) {
            p[k].psnr = im_psnr(p[k].rgb, gt8, H, W);
            p[k].ssim = im_ssim(p[k].rgb, gt8, H, W);
            printf("  %-8s %-28s %8.2f dB %7.4f\n", p[k].name, p[k].how, p[k].psnr, p[k].ssim);
        }
        snprintf(path, sizeof path, "%s/compare.png", out_dir);
        st = write_compare(path, gt8, p, 3, H, W);
        if (!st)
            printf("latup_demo: wrote %s (ground truth | bicubic | LUA | SwinIR; below, the window where they differ "
                   "most at 4x)\n", path);
    }
    if (st) fprintf(stderr, "latup_demo: %s\n", latup_last_error());
    for (int k = 0; k < 3; k++) free(p[k].rgb);
    free(gt8);
    return (int)st;
}

int main(int argc, char **argv) {
    const char *latent_path = NULL, *gt_path = "ref_data/trained/demo_gt.png";
    const char *lua_path = "ref_data/trained/lua_x2x4.safetensors.gz";
    const char *vae_path = "ref_data/trained/vae.ldm.safetensors.gz";
    const char *swinir_path = "ref_data/trained/swinir_x2.safetensors.gz";
    const char *out_dir = "build/demo", *check = NULL;
    int runs = 1, threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return fputs(USAGE, stdout), 0;
        if (!v) return fprintf(stderr, "latup_demo: %s needs a value or is unknown\n%s", a, USAGE), 1;
        i++;
        if (!strcmp(a, "--latent")) latent_path = v;
        else if (!strcmp(a, "--gt")) gt_path = v;
        else if (!strcmp(a, "--lua")) lua_path = v;
        else if (!strcmp(a, "--vae")) vae_path = v;
        else if (!strcmp(a, "--swinir")) swinir_path = v;
        else if (!strcmp(a, "--out")) out_dir = v;
        else if (!strcmp(a, "--check")) check = v;
        else if (!strcmp(a, "--runs")) runs = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else return fprintf(stderr, "latup_demo: unknown option %s\n%s", a, USAGE), 1;
    }
    if (runs < 1 || runs > 64) return fprintf(stderr, "latup_demo: --runs must be 1..64\n"), 1;
    if (!latent_path) {
        if (check || runs != 1) return fprintf(stderr, "latup_demo: --check and --runs go with --latent\n%s", USAGE), 1;
        return compose(gt_path, out_dir);
    }
    latup_set_threads(threads);

    latup_lua *lua = NULL, *swinir = NULL;
    latup_vae *vae = NULL;
    latup_tensor z = {0}, gt = {0}, dec1 = {0}, up = {0}, dec2 = {0}, lr = {0}, sr = {0}, bic = {0}, ref = {0};
    path_result p[3] = {
        {"bicubic", "DECODE 1X + BICUBIC", NULL, 0, 0, 0, "decode at 1x, bicubic x2"},
        {"lua", "LUA X2 + DECODE", NULL, 0, 0, 0, "LUA x2, decode at 2x"},
        {"pixel", "DECODE 1X + SWINIR X2", NULL, 0, 0, 0, "decode at 1x, SwinIR x2"},
    };
    uint8_t *gt8 = NULL, *dec8 = NULL;
    double t_dec1 = 0, t_up = 0, t_dec2 = 0, t_sr = 0, t_bic = 0;
    int rc = 0;
    latup_status st = latup_npy_read(latent_path, &z);
    if (st == LATUP_OK) st = latup_png_read(gt_path, &gt);
    if (st == LATUP_OK) st = latup_lua_load(lua_path, &lua);
    if (st == LATUP_OK) st = latup_lua_load(swinir_path, &swinir);
    if (st == LATUP_OK) st = latup_vae_load(vae_path, &vae);
    if (st != LATUP_OK) goto done;
    const int H = (int)gt.shape[1], W = (int)gt.shape[2];
    if (z.shape[z.ndim - 2] * 16 != H || z.shape[z.ndim - 1] * 16 != W) {
        st = latup_fail(LATUP_E_INPUT, "%s: latent %lldx%lld needs a %lldx%lld ground truth, %s is %dx%d", latent_path,
                        (long long)z.shape[z.ndim - 2], (long long)z.shape[z.ndim - 1],
                        (long long)z.shape[z.ndim - 2] * 16, (long long)z.shape[z.ndim - 1] * 16, gt_path, H, W);
        goto done;
    }
    printf("latup_demo: latent %s [%lld,%lld,%lld] -> %dx%d, against %s; %d thread(s), median of %d run(s)\n",
           latent_path, (long long)z.shape[0], (long long)z.shape[1], (long long)z.shape[2], W, H, gt_path,
           latup_get_threads(), runs);

    /* the 1x decode, shared by the bicubic and pixel paths (and timed for both) */
    if ((st = timed(STEP_DECODE, vae, &z, 0, &dec1, runs, &t_dec1)) != LATUP_OK) goto done;
    if (!(dec8 = to_bytes(&dec1, LATUP_PNG_MAP_DIFFUSERS))) goto nomem;
    if ((st = from_bytes(dec8, H / 2, W / 2, &lr)) != LATUP_OK) goto done;
    /* bicubic: on the 8-bit decode, as a user would upscale the 1x PNG */
    {
        const int64_t s[3] = {3, H, W};
        if ((st = latup_tensor_alloc(&bic, 3, s)) != LATUP_OK) goto done;
        double t[64];
        for (int r = 0; r < runs; r++) {
            const double t0 = latup_now();
            im_bicubic_up(bic.data, lr.data, H / 2, W / 2, 2);
            t[r] = latup_now() - t0;
        }
        qsort(t, (size_t)runs, sizeof t[0], cmp_double);
        t_bic = t[runs / 2];
    }
    /* LUA: upscale the latent, decode at 2x */
    if ((st = timed(STEP_UPSCALE, lua, &z, 2, &up, runs, &t_up)) != LATUP_OK) goto done;
    if ((st = timed(STEP_DECODE, vae, &up, 0, &dec2, runs, &t_dec2)) != LATUP_OK) goto done;
    /* pixel: SwinIR x2 on the 8-bit 1x decode */
    if ((st = timed(STEP_UPSCALE, swinir, &lr, 2, &sr, runs, &t_sr)) != LATUP_OK) goto done;

    p[0].rgb = to_bytes(&bic, LATUP_PNG_MAP_UNIT), p[0].secs = t_dec1 + t_bic;
    p[1].rgb = to_bytes(&dec2, LATUP_PNG_MAP_DIFFUSERS), p[1].secs = t_up + t_dec2;
    p[2].rgb = to_bytes(&sr, LATUP_PNG_MAP_UNIT), p[2].secs = t_dec1 + t_sr;
    if (!(gt8 = to_bytes(&gt, LATUP_PNG_MAP_UNIT)) || !p[0].rgb || !p[1].rgb || !p[2].rgb) goto nomem;

    char path[4096];
    printf("  %-8s %-28s %8s %7s %9s   %s\n", "path", "steps", "PSNR dB", "SSIM", "time s", "file");
    for (int k = 0; k < 3; k++) {
        p[k].psnr = im_psnr(p[k].rgb, gt8, H, W);
        p[k].ssim = im_ssim(p[k].rgb, gt8, H, W);
        snprintf(path, sizeof path, "%s/%s.png", out_dir, p[k].name);
        if ((st = latup_png_write_rgb8(path, p[k].rgb, H, W)) != LATUP_OK) goto done;
        printf("  %-8s %-28s %8.2f %7.4f %9.3f   %s\n", p[k].name, p[k].how, p[k].psnr, p[k].ssim, p[k].secs, path);
    }
    printf("  steps: decode 1x %.3f s, bicubic %.3f s, LUA x2 %.3f s, decode 2x %.3f s, SwinIR x2 %.3f s\n", t_dec1,
           t_bic, t_up, t_dec2, t_sr);
    printf("  LUA path / pixel path time: %.2f (the paper, GPU: 0.42 s / 1.87 s = 0.22)\n", p[1].secs / p[2].secs);
    snprintf(path, sizeof path, "%s/compare.png", out_dir);
    if ((st = write_compare(path, gt8, p, 3, H, W)) != LATUP_OK) goto done;
    printf("latup_demo: wrote %s (ground truth | bicubic | LUA | SwinIR; below, the window where they differ most "
           "at 4x)\n", path);
    if (check) {
        if ((st = latup_png_read(check, &ref)) != LATUP_OK) goto done;
        uint8_t *r8 = ref.shape[1] == H && ref.shape[2] == W ? to_bytes(&ref, LATUP_PNG_MAP_UNIT) : NULL;
        const int same = r8 && memcmp(r8, p[1].rgb, (size_t)H * W * 3) == 0;
        free(r8);
        printf("latup_demo: %s %s the LUA path's image\n", check, same ? "is byte-identical to" : "DIFFERS from");
        if (!same) rc = 7;
    }
    goto done;
nomem:
    st = latup_fail(LATUP_E_NOMEM, "latup_demo: out of memory");
done:
    if (st != LATUP_OK) {
        fprintf(stderr, "latup_demo: %s\n", latup_last_error());
        rc = (int)st;
    }
    for (int k = 0; k < 3; k++) free(p[k].rgb);
    free(gt8), free(dec8);
    latup_tensor *ts[] = {&z, &gt, &dec1, &up, &dec2, &lr, &sr, &bic, &ref};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) latup_tensor_free(ts[i]);
    latup_lua_free(lua), latup_lua_free(swinir), latup_vae_free(vae);
    return rc;
}
