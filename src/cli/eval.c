/* eval.c — `latup eval`: the paper's comparison on a set of photos (issue 22; docs/results.md's
 * held-out table, tools/train/evaluate.py in PyTorch). For each PNG: the ground truth is the image
 * cropped top-left to a multiple of f x scale (f: the encoder's factor, 8), the input its
 * antialiased bicubic downscale (src/cli/image_metrics.h, torch's, clamped to [-1, 1]); then
 *   vae      encode the ground truth, decode                       (the VAE's ceiling)
 *   bicubic  encode the input, decode, 8-bit, bicubic x scale      (PyTorch's, A = -0.75)
 *   lua      encode the input, LUA x scale, decode                 (the paper's path)
 *   pixel    encode the input, decode, 8-bit, pixel SwinIR         (with --pixel-model)
 * each scored by PSNR and SSIM on the 8-bit images (the bytes a PNG of it holds:
 * latup_image_to_rgb8), and timed (the input's encode, run once, counted in each low path).
 * Everything is checked before any compute (options, outputs, models, every image's size), and
 * the --save images and the --json file are written only when every image has succeeded. */
#define _DEFAULT_SOURCE /* mkstemps */
#include "cli.h"
#include "image_metrics.h"
#include "jsonw.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { P_VAE, P_BICUBIC, P_LUA, P_PIXEL, N_PATHS };
static const char *const PATH_NAME[N_PATHS] = {"vae", "bicubic", "lua", "pixel"};

typedef struct {
    char *path;                /* as found (a DIR's files joined to it) */
    char stem[256];
    int H0, W0, H, W;          /* the file's size and the ground truth's (cropped) */
    double psnr[N_PATHS], ssim[N_PATHS], secs[N_PATHS];
    double t_encode;           /* the input's encode, shared by the low paths */
    int tiled;                 /* some call of this image ran in tiles (an approximation) */
} ev_image;

typedef struct {
    cli_args a;
    const char *vae_path, *lua_path, *pixel_path, *save, *json;
    int scale, f, verbose, quiet, threads, n_paths;
    size_t max_memory;
    ev_image *img;
    int n, cap;
    latup_vae *vae;
    latup_lua *lua, *pixel;
} ev_job;

/* ---- 1. the images: files, and folders' *.png by name ----------------------------------------------- */

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static latup_status add_image(ev_job *j, const char *dir, const char *name) {
    if (j->n == j->cap) {
        const int cap = j->cap ? 2 * j->cap : 16;
        ev_image *m = realloc(j->img, (size_t)cap * sizeof *m);
        if (!m) return latup_set_error(LATUP_E_NOMEM, "out of memory");
        j->img = m, j->cap = cap;
    }
    ev_image *e = &j->img[j->n];
    memset(e, 0, sizeof *e);
    const size_t len = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    if (!(e->path = malloc(len))) return latup_set_error(LATUP_E_NOMEM, "out of memory");
    snprintf(e->path, len, "%s%s%s", dir ? dir : "", dir ? "/" : "", name);
    cli_stem(e->stem, sizeof e->stem, e->path);
    j->n++;
    return LATUP_OK;
}

static latup_status add_folder(ev_job *j, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return latup_set_error(LATUP_E_IO, "%s: cannot read the folder: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    latup_status st = LATUP_OK;
    for (struct dirent *e; !st && (e = readdir(d));) {
        if (e->d_name[0] == '.' || !cli_ends_with(e->d_name, ".png")) continue;
        if (n == cap) {
            char **m = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *m);
            if (!m) st = latup_set_error(LATUP_E_NOMEM, "out of memory");
            else names = m;
        }
        if (!st && !(names[n++] = strdup(e->d_name))) st = latup_set_error(LATUP_E_NOMEM, "out of memory");
    }
    closedir(d);
    if (!st && n == 0) st = latup_set_error(LATUP_E_INPUT, "%s: no *.png files in the folder (eval reads PNG images)", dir);
    if (!st) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        if (!st && names[i]) st = add_image(j, dir, names[i]);
        free(names[i]);
    }
    free(names);
    return st;
}

static int list_images(ev_job *j) {
    for (int i = 0; i < j->a.n_pos; i++) {
        const char *p = j->a.pos[i];
        if (!strcmp(p, "-"))
            return cli_usage("eval", "'-': eval reads each image twice (checked, then computed): give a file");
        struct stat sb;
        latup_status st = stat(p, &sb) == 0 && S_ISDIR(sb.st_mode) ? add_folder(j, p) : add_image(j, NULL, p);
        if (st) return cli_fail(st);
    }
    if (j->save) /* one set of names per image */
        for (int i = 0; i < j->n; i++)
            for (int k = 0; k < i; k++)
                if (!strcmp(j->img[i].stem, j->img[k].stem))
                    return cli_usage("eval", "%s and %s would both write %s/%s_gt.png (--save): give images of "
                                     "different names", j->img[k].path, j->img[i].path, j->save, j->img[i].stem);
    return -1;
}

/* ---- 2. options, outputs and models, before any image is computed ---------------------------------- */

static int read_options(ev_job *j) {
    const cli_args *a = &j->a;
    j->vae_path = cli_str(a, "--vae");
    j->lua_path = cli_str(a, "--model");
    j->pixel_path = cli_str(a, "--pixel-model");
    j->save = cli_str(a, "--save");
    j->json = cli_str(a, "--json");
    j->scale = (int)cli_num(a, "--scale", 2);
    j->verbose = cli_given(a, "--verbose");
    j->quiet = cli_given(a, "--quiet");
    j->n_paths = j->pixel_path ? N_PATHS : P_PIXEL;
    latup_set_exact_math(cli_given(a, "--exact-math"));
    if (!j->vae_path) return cli_usage("eval", "missing --vae");
    if (!j->lua_path) return cli_usage("eval", "missing --model (the LUA)");
    j->max_memory = cli_given(a, "--max-memory") ? (size_t)cli_num(a, "--max-memory", 0) : latup_default_max_memory();
    return -1;
}

static int check_outputs(ev_job *j) {
    latup_status st = LATUP_OK;
    if (j->save && !(st = cli_mkdirs(j->save))) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s_gt.png", j->save, j->img[0].stem);
        st = latup_output_check(p);
    }
    if (!st && j->json) st = latup_output_check(j->json);
    return st ? cli_fail(st) : -1;
}

static int load_models(ev_job *j) {
    const double t0 = cli_now();
    latup_status st = latup_vae_load_parts(j->vae_path, LATUP_VAE_DECODER | LATUP_VAE_ENCODER, &j->vae);
    if (!st) st = latup_lua_load(j->lua_path, &j->lua);
    if (!st && j->pixel_path) st = latup_lua_load(j->pixel_path, &j->pixel);
    if (st) return cli_fail(st);
    const latup_vae_config *v = latup_vae_get_config(j->vae);
    const latup_lua_config *l = latup_lua_get_config(j->lua);
    j->f = v->encoder == LATUP_VAE_ENCODER_PATCH ? v->enc_patch : 1 << (v->enc_n_levels - 1);
    if (l->tail != LATUP_TAIL_LUA_HEADS)
        return cli_usage("eval", "--model %s is a pixel-space SwinIR, not a LUA: give it as --pixel-model", j->lua_path);
    if (l->in_chans != v->z_channels)
        return cli_fail(latup_set_error(LATUP_E_INPUT, "--model %s takes %d-channel latents, but the VAE %s makes %d",
                                        j->lua_path, l->in_chans, j->vae_path, v->z_channels));
    int has = 0;
    char scales[64] = "";
    for (int k = 0; k < l->n_scales; k++) {
        has |= l->scales[k] == j->scale;
        snprintf(scales + strlen(scales), sizeof scales - strlen(scales), "%sx%d", k ? ", " : "", l->scales[k]);
    }
    if (!has)
        return cli_usage("eval", "--model %s has no x%d head (its heads: %s): -s must be one of them", j->lua_path,
                         j->scale, scales);
    if (j->pixel) {
        const latup_lua_config *p = latup_lua_get_config(j->pixel);
        if (p->tail == LATUP_TAIL_LUA_HEADS || p->in_chans != 3)
            return cli_usage("eval", "--pixel-model %s is not a pixel-space (RGB) SwinIR", j->pixel_path);
        if (p->scales[0] != j->scale)
            return cli_usage("eval", "--pixel-model %s is a x%d SwinIR, and eval runs x%d (-s)", j->pixel_path,
                             p->scales[0], j->scale);
    }
    if (j->verbose) {
        fprintf(stderr, "latup: %s: VAE, %s encoder, %lld + %lld parameters; %s: LUA x%d; models loaded in %.2f s\n",
                j->vae_path, latup_vae_encoder_name(v->encoder), (long long)v->enc_params, (long long)v->n_params,
                j->lua_path, j->scale, cli_now() - t0);
        latup_system_info si;
        if (latup_system_info_get(&si) == LATUP_OK) latup_system_info_print(&si, stderr, "latup: ");
    }
    return -1;
}

/* Every image read once before any compute: a PNG, large enough; the ground truth's crop. */
static int check_images(ev_job *j) {
    const int m = j->f * j->scale;
    for (int i = 0; i < j->n; i++) {
        ev_image *e = &j->img[i];
        latup_tensor t = {0};
        latup_file_kind kind;
        latup_status st = latup_tensor_read(e->path, NULL, &t, &kind);
        if (!st && kind != LATUP_FILE_PNG)
            st = latup_set_error(LATUP_E_INPUT, "%s: not a PNG (eval's ground truths are PNG images)", e->path);
        if (st) {
            latup_tensor_free(&t);
            return cli_fail(st);
        }
        e->H0 = (int)t.shape[1], e->W0 = (int)t.shape[2];
        latup_tensor_free(&t);
        if (e->H0 < m || e->W0 < m)
            return cli_fail(latup_set_error(LATUP_E_INPUT, "%s: %dx%d is smaller than the %dx%d that eval x%d needs "
                                            "(%d x the scale in each side)", e->path, e->W0, e->H0, m, m, j->scale, j->f));
        e->H = e->H0 / m * m, e->W = e->W0 / m * m;
        /* the models' own limits (the LUA's window padding, the pixel model's), planned on shapes */
        const int h = e->H / j->scale, w = e->W / j->scale, zc = latup_vae_get_config(j->vae)->z_channels;
        latup_tensor zs = {.ndim = 3, .shape = {zc, h / j->f, w / j->f}}, ls = {.ndim = 3, .shape = {3, h, w}};
        latup_call_opts o = {.lua = j->lua, .scale = j->scale, .vae = j->vae, .max_memory = j->max_memory};
        latup_call *c = NULL;
        st = latup_prepare(&o, &zs, &c);
        latup_call_free(c), c = NULL;
        if (!st && j->pixel) {
            latup_call_opts po = {.lua = j->pixel, .scale = j->scale, .max_memory = j->max_memory};
            st = latup_prepare(&po, &ls, &c);
            latup_call_free(c);
        }
        if (st) {
            char what[4400];
            snprintf(what, sizeof what, "%s: eval x%d makes a %dx%d input of it, and its %dx%d latent", e->path,
                     j->scale, w, h, w / j->f, h / j->f);
            latup_error_prefix(what);
            return cli_fail(st);
        }
    }
    return -1;
}

/* ---- 3. one image's paths ------------------------------------------------------------------------- */

static double secs_since(double t0) { return cli_now() - t0; }

/* An upscale and/or decode as one prepared call under the budget; *tiled when the decode tiles. */
static latup_status run_call(const ev_job *j, const latup_lua *lua, const latup_vae *vae, const latup_tensor *x,
                             size_t held, latup_tensor *y, double *secs, int *tiled) {
    latup_call_opts o = {.lua = lua, .scale = lua ? j->scale : 0, .vae = vae, .max_memory = j->max_memory,
                         .held = held, .verbose = j->verbose};
    latup_call *c = NULL;
    latup_status st = latup_prepare(&o, x, &c);
    if (!st) {
        if (vae && latup_call_plan(c)->decode.tiled) *tiled = 1;
        const double t0 = cli_now();
        st = latup_execute(c, x, NULL, y);
        *secs = secs_since(t0);
    }
    latup_call_free(c);
    return st;
}

static latup_status encode(const ev_job *j, const latup_tensor *x, size_t held, latup_tensor *z, double *secs,
                           int *tiled) {
    latup_encode_opts o = {.max_memory = j->max_memory, .held = held, .verbose = j->verbose};
    latup_decode_plan p;
    latup_status st = latup_vae_plan_encode(j->vae, (int)x->shape[1], (int)x->shape[2], &o, &p);
    if (st) return st;
    if (p.tiled) *tiled = 1;
    const double t0 = cli_now();
    st = latup_vae_encode(j->vae, x, z, &o);
    *secs = secs_since(t0);
    return st;
}

/* The path's image scored against the ground truth's bytes, and added to the --save set. */
static latup_status score(const ev_job *j, ev_image *e, int path, const latup_tensor *img, latup_pixel_range range,
                          const uint8_t *gt8, uint8_t *buf, latup_outputs *outs) {
    latup_status st = latup_image_to_rgb8(img, range, buf);
    if (st) return st;
    e->psnr[path] = im_psnr(buf, gt8, e->H, e->W);
    e->ssim[path] = im_ssim(buf, gt8, e->H, e->W);
    if (!j->save) return LATUP_OK;
    char p[4400];
    snprintf(p, sizeof p, "%s/%s_%s.png", j->save, e->stem, PATH_NAME[path]);
    return latup_outputs_add_png(outs, p, img, range, 8);
}

/* [3,h,w] floats of bytes k/255 (how latup reads a PNG), from interleaved 8-bit. */
static latup_status planar(const uint8_t *rgb, int h, int w, latup_tensor *t) {
    const int64_t s[3] = {3, h, w};
    latup_status st = latup_tensor_alloc(t, 3, s);
    if (!st) im_planar_from_bytes(t->data, rgb, h, w);
    return st;
}

static latup_status eval_image(const ev_job *j, ev_image *e, latup_outputs *outs) {
    const int H = e->H, W = e->W, s = j->scale, h = H / s, w = W / s;
    const size_t full = (size_t)3 * H * W * sizeof(float);
    latup_tensor file = {0}, gt = {0}, x = {0}, lo = {0}, z = {0}, zf = {0}, y = {0}, dec = {0}, t = {0};
    uint8_t *gt8 = malloc((size_t)3 * H * W), *buf = malloc((size_t)3 * H * W), *dec8 = malloc((size_t)3 * h * w);
    latup_status st = gt8 && buf && dec8 ? LATUP_OK : latup_set_error(LATUP_E_NOMEM, "out of memory");
    const int64_t gs[3] = {3, H, W}, ls[3] = {3, h, w};
    if (!st) st = latup_png_read(e->path, &file);
    if (!st) st = latup_tensor_alloc(&gt, 3, gs);
    if (!st) st = latup_tensor_alloc(&x, 3, gs);
    if (!st) st = latup_tensor_alloc(&lo, 3, ls);
    if (st) goto done;
    /* the ground truth: the top-left crop; the VAE's input 2x - 1; the low image */
    for (int c = 0; c < 3; c++)
        for (int r = 0; r < H; r++)
            memcpy(gt.data + ((size_t)c * H + r) * W, file.data + ((size_t)c * e->H0 + r) * e->W0, (size_t)W * sizeof(float));
    latup_tensor_free(&file);
    for (int64_t i = 0; i < 3 * (int64_t)H * W; i++) x.data[i] = 2.0f * gt.data[i] - 1.0f;
    if ((st = latup_image_to_rgb8(&gt, LATUP_PIXELS_UNIT, gt8))) goto done;
    if (im_downscale_aa(lo.data, x.data, H, W, s)) {
        st = latup_set_error(LATUP_E_NOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < 3 * (int64_t)h * w; i++) lo.data[i] = lo.data[i] < -1 ? -1 : lo.data[i] > 1 ? 1 : lo.data[i];
    if (j->save) {
        char p[4400];
        snprintf(p, sizeof p, "%s/%s_gt.png", j->save, e->stem);
        if ((st = latup_outputs_add_png(outs, p, &gt, LATUP_PIXELS_UNIT, 8))) goto done;
    }
    double t_a = 0, t_b = 0;
    /* vae: the ceiling */
    if ((st = encode(j, &x, 2 * full, &zf, &t_a, &e->tiled))) goto done;
    if ((st = run_call(j, NULL, j->vae, &zf, 2 * full, &y, &t_b, &e->tiled))) goto done;
    e->secs[P_VAE] = t_a + t_b;
    if ((st = score(j, e, P_VAE, &y, LATUP_PIXELS_SIGNED, gt8, buf, outs))) goto done;
    latup_tensor_free(&y), latup_tensor_free(&zf);
    /* the input's encode, shared; its 1x decode, shared by bicubic and pixel */
    if ((st = encode(j, &lo, 2 * full, &z, &e->t_encode, &e->tiled))) goto done;
    double t_dec = 0;
    if ((st = run_call(j, NULL, j->vae, &z, 2 * full, &dec, &t_dec, &e->tiled))) goto done;
    if ((st = latup_image_to_rgb8(&dec, LATUP_PIXELS_SIGNED, dec8))) goto done;
    latup_tensor_free(&dec);
    /* bicubic: the 8-bit decode, bicubic x s */
    if ((st = planar(dec8, h, w, &t)) || (st = latup_tensor_alloc(&y, 3, gs))) goto done;
    t_a = cli_now();
    im_bicubic_up(y.data, t.data, h, w, s);
    e->secs[P_BICUBIC] = e->t_encode + t_dec + secs_since(t_a);
    if ((st = score(j, e, P_BICUBIC, &y, LATUP_PIXELS_UNIT, gt8, buf, outs))) goto done;
    latup_tensor_free(&y);
    /* lua: LUA x s, then decode, one call */
    if ((st = run_call(j, j->lua, j->vae, &z, 2 * full, &y, &t_b, &e->tiled))) goto done;
    e->secs[P_LUA] = e->t_encode + t_b;
    if ((st = score(j, e, P_LUA, &y, LATUP_PIXELS_SIGNED, gt8, buf, outs))) goto done;
    latup_tensor_free(&y);
    /* pixel: SwinIR x s on the 8-bit decode */
    if (j->pixel) {
        if ((st = run_call(j, j->pixel, NULL, &t, 2 * full, &y, &t_b, &e->tiled))) goto done;
        e->secs[P_PIXEL] = e->t_encode + t_dec + t_b;
        if ((st = score(j, e, P_PIXEL, &y, LATUP_PIXELS_UNIT, gt8, buf, outs))) goto done;
    }
done:
    if (st && st != LATUP_E_NOMEM) latup_error_prefix(e->path);
    latup_tensor *ts[] = {&file, &gt, &x, &lo, &z, &zf, &y, &dec, &t};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) latup_tensor_free(ts[i]);
    free(gt8), free(buf), free(dec8);
    return st;
}

/* ---- 4. the table and the JSON ---------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* mean (k 0) or median (k 1) of a field over the images */
static double stat_of(const ev_job *j, int k, int path, int field) {
    double *v = malloc(sizeof(double) * (size_t)j->n), sum = 0, r;
    if (!v) return NAN;
    for (int i = 0; i < j->n; i++) {
        const ev_image *e = &j->img[i];
        v[i] = field == 0 ? e->psnr[path] : field == 1 ? e->ssim[path] : e->secs[path];
        sum += v[i];
    }
    qsort(v, (size_t)j->n, sizeof *v, cmp_double);
    r = k == 0 ? sum / j->n : j->n % 2 ? v[j->n / 2] : (v[j->n / 2 - 1] + v[j->n / 2]) / 2;
    free(v);
    return r;
}

/* One table line: printf into a buffer, printed without its trailing spaces. */
typedef struct {
    char s[512];
    size_t n;
} line_buf;

static void put(line_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(line_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (b->n < sizeof b->s) {
        const int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
        b->n = k < 0 ? b->n : b->n + (size_t)k < sizeof b->s ? b->n + (size_t)k : sizeof b->s - 1;
    }
    va_end(ap);
}

static void flush_line(line_buf *b, FILE *f) {
    while (b->n > 0 && b->s[b->n - 1] == ' ') b->n--;
    fprintf(f, "%.*s\n", (int)b->n, b->s);
    b->n = 0;
}

static void print_table(const ev_job *j, FILE *f) {
    line_buf b = {.n = 0};
    fprintf(f, "latup eval x%d: %d image%s; PSNR dB / SSIM against the ground truth; seconds per path\n", j->scale, j->n,
            j->n == 1 ? "" : "s");
    put(&b, "%-24s %9s", "image", "size");
    for (int p = 0; p < j->n_paths; p++) put(&b, "  %-16s", PATH_NAME[p]);
    flush_line(&b, f);
    for (int i = 0; i < j->n; i++) {
        const ev_image *e = &j->img[i];
        char size[32];
        snprintf(size, sizeof size, "%dx%d", e->W, e->H);
        put(&b, "%-24.24s %9s", e->stem, size);
        for (int p = 0; p < j->n_paths; p++) put(&b, "  %6.2f / %-7.4f", e->psnr[p], e->ssim[p]);
        put(&b, "%s", e->tiled ? "  (tiled: approximate)" : "");
        flush_line(&b, f);
    }
    for (int k = 0; k < 2; k++) {
        put(&b, "%-24s %9s", k ? "median" : "mean", "");
        for (int p = 0; p < j->n_paths; p++) put(&b, "  %6.2f / %-7.4f", stat_of(j, k, p, 0), stat_of(j, k, p, 1));
        flush_line(&b, f);
    }
    put(&b, "%-24s %9s", "seconds (mean)", "");
    for (int p = 0; p < j->n_paths; p++) put(&b, "  %-16.3f", stat_of(j, 0, p, 2));
    flush_line(&b, f);
    double enc = 0;
    for (int i = 0; i < j->n; i++) enc += j->img[i].t_encode;
    fprintf(f, "(the input's encode, %.3f s per image on average, is counted in every path but vae; %d threads)\n",
            enc / j->n, j->threads);
}

static void json_path_stats(cli_json *w, const char *key, const ev_job *j, int k) {
    cli_json_object(w, key);
    for (int p = 0; p < j->n_paths; p++) {
        cli_json_object(w, PATH_NAME[p]);
        cli_json_real(w, "psnr", stat_of(j, k, p, 0));
        cli_json_real(w, "ssim", stat_of(j, k, p, 1));
        cli_json_real(w, "seconds", stat_of(j, k, p, 2));
        cli_json_end(w);
    }
    cli_json_end(w);
}

/* The numbers of the table, at full precision; README.md ("Evaluate") names the members. */
static const char *write_json(const ev_job *j, FILE *f) {
    cli_json w;
    cli_json_start(&w, f);
    cli_json_object(&w, NULL);
    cli_json_str(&w, "command", "eval");
    cli_json_int(&w, "scale", j->scale);
    cli_json_str(&w, "vae", j->vae_path);
    cli_json_str(&w, "model", j->lua_path);
    if (j->pixel_path) cli_json_str(&w, "pixel_model", j->pixel_path);
    cli_json_int(&w, "threads", j->threads);
    cli_json_array(&w, "paths");
    for (int p = 0; p < j->n_paths; p++) cli_json_str(&w, NULL, PATH_NAME[p]);
    cli_json_end(&w);
    cli_json_array(&w, "images");
    for (int i = 0; i < j->n; i++) {
        const ev_image *e = &j->img[i];
        cli_json_object(&w, NULL);
        cli_json_str(&w, "image", e->path);
        cli_json_str(&w, "name", e->stem);
        cli_json_array(&w, "size");
        cli_json_int(&w, NULL, e->W);
        cli_json_int(&w, NULL, e->H);
        cli_json_end(&w);
        cli_json_bool(&w, "tiled", e->tiled);
        cli_json_real(&w, "encode_seconds", e->t_encode);
        for (int p = 0; p < j->n_paths; p++) {
            cli_json_object(&w, PATH_NAME[p]);
            cli_json_real(&w, "psnr", e->psnr[p]);
            cli_json_real(&w, "ssim", e->ssim[p]);
            cli_json_real(&w, "seconds", e->secs[p]);
            cli_json_end(&w);
        }
        cli_json_end(&w);
    }
    cli_json_end(&w);
    json_path_stats(&w, "mean", j, 0);
    json_path_stats(&w, "median", j, 1);
    cli_json_end(&w);
    return cli_json_finish(&w);
}

/* --json FILE: into a temporary beside it, renamed into place once the --save set is in place. */
static latup_status json_temp(const ev_job *j, char *tmp, size_t n) {
    const char *slash = strrchr(j->json, '/');
    snprintf(tmp, n, "%.*s%slatup-XXXXXX.tmp", slash ? (int)(slash - j->json) : 0, j->json, slash ? "/" : "");
    const int fd = mkstemps(tmp, 4);
    if (fd < 0) return latup_set_error(LATUP_E_IO, "%s: cannot create a temporary beside it: %s", j->json, strerror(errno));
    FILE *f = fdopen(fd, "w");
    const char *bad = f ? write_json(j, f) : "fdopen failed";
    const int io = !f || fflush(f) != 0 || fsync(fileno(f)) != 0;
    if (f) fclose(f);
    else close(fd);
    if (bad || io) {
        unlink(tmp);
        return bad && !io ? latup_set_error(LATUP_E_INTERNAL, "--json: %s (a bug in latup)", bad)
                          : latup_set_error(LATUP_E_IO, "%s: write failed", j->json);
    }
    return LATUP_OK;
}

int cli_eval(int argc, char **argv) {
    ev_job j;
    memset(&j, 0, sizeof j);
    int rc = cli_parse(&CLI_CMD_EVAL, argc, argv, &j.a, stdout, stderr);
    if (rc >= 0) return rc;
    latup_outputs *outs = NULL;
    char tmp[4200] = "";
    if ((rc = read_options(&j)) >= 0) goto out;
    if ((rc = list_images(&j)) >= 0) goto out;
    if ((rc = check_outputs(&j)) >= 0) goto out;
    j.threads = cli_setup_threads(&j.a);
    if ((rc = load_models(&j)) >= 0) goto out;
    if ((rc = check_images(&j)) >= 0) goto out;
    cli_warn_pipeline(&j.a);
    latup_status st = latup_outputs_new(&outs);
    for (int i = 0; i < j.n && !st; i++) {
        const double t0 = cli_now();
        st = eval_image(&j, &j.img[i], outs);
        if (!st && !j.quiet) {
            fprintf(stderr, "latup: [%d/%d] %s %dx%d:", i + 1, j.n, j.img[i].path, j.img[i].W, j.img[i].H);
            for (int p = 0; p < j.n_paths; p++) fprintf(stderr, " %s %.2f", PATH_NAME[p], j.img[i].psnr[p]);
            fprintf(stderr, " dB (%.2f s)\n", cli_now() - t0);
        }
    }
    const int json_stdout = j.json && !strcmp(j.json, "-");
    if (!st && j.json && !json_stdout) st = json_temp(&j, tmp, sizeof tmp);
    if (!st) st = latup_outputs_commit(outs);
    if (!st && *tmp && rename(tmp, j.json) != 0)
        st = latup_set_error(LATUP_E_IO, "%s: cannot rename the temporary into place: %s", j.json, strerror(errno));
    if (st) {
        if (*tmp) unlink(tmp);
        rc = cli_fail(st);
        goto out;
    }
    if (json_stdout) {
        const char *bad = write_json(&j, stdout);
        if (bad) {
            rc = cli_fail(latup_set_error(LATUP_E_INTERNAL, "--json: %s (a bug in latup)", bad));
            goto out;
        }
    } else if (!j.quiet || !j.json) {
        print_table(&j, stdout);
    }
    rc = fflush(stdout) == 0 ? 0 : cli_fail(latup_set_error(LATUP_E_IO, "<stdout>: write failed"));
out:
    latup_outputs_free(outs);
    for (int i = 0; i < j.n; i++) free(j.img[i].path);
    free(j.img);
    latup_vae_free(j.vae);
    latup_lua_free(j.lua);
    latup_lua_free(j.pixel);
    return rc;
}
