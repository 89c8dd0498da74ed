/* test_cli.c — build/latup end to end: `latup upscale` on every committed golden case must
 * reproduce the PyTorch outputs within tolerance (one report line per output), and every error
 * path must give one line on stderr, the documented exit code, and no output file. Then the
 * features around the models: stdin/stdout/FIFO inputs and outputs, ComfyUI .latent files,
 * batches through patterns and several inputs with the model loaded once, 16-bit PNG, --dump in
 * every command, `latup compare` finding an injected one-layer difference, every JSON the CLI
 * prints (info --json of each kind of file, --dry-run --json of each command, batches, names that
 * need escapes or are not UTF-8) read back by latup's own parser, field by field, --version and
 * help. (The promises of docs/errors.md and the README: test_cli_contract.c.) */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "golden.h"
#include "cli_util.h"
#include "tmpdir.h"
#include "latup.h"
#include "io/json.h"
#include "io/png.h"
#include "cli/image_metrics.h"


static char g_stderr[4096]; /* what the last command printed on stderr */

static int same_file(const char *a, const char *b);
static int run_latup(const char *const *args) { return run_cli(g_dir, args, g_stderr, sizeof g_stderr); }

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* No file named <base>* and no temporary (latup-XXXXXX.tmp) is left in g_dir. */
static int leftovers(const char *base) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s 2>/dev/null | grep -q -e '^%s' -e '^latup-.*\\.tmp$'", g_dir, base);
    return system(cmd) == 0;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int setup(void **state) {
    assert_true(exists(LATUP_BIN));
    return setup_dir(state);
}

/* ---- outputs match the reference ------------------------------------------------------------- */
static void test_upscale_golden(void **state) {
    (void)state;
    int bad = 0, lines = 0, exact_differs = 0;
    for (int i = 0; i < N_GOLDEN_CASES; i++) {
        const golden_case *gc = &GOLDEN_CASES[i];
        latup_weights g = {0};
        assert_int_equal(latup_safetensors_load(gc->golden, &g), LATUP_OK);
        const latup_wtensor *in = latup_weights_find(&g, "input");
        assert_non_null(in);
        latup_tensor x = {.data = in->f32, .ndim = 4};
        memcpy(x.shape, in->shape, sizeof x.shape);
        char inpath[300], outpath[300];
        snprintf(inpath, sizeof inpath, "%s/in.npy", g_dir);
        snprintf(outpath, sizeof outpath, "%s/out.npy", g_dir);
        assert_int_equal(latup_npy_write(inpath, &x), LATUP_OK);
        for (int s = 2; s <= 4; s *= 2) {
            char oname[16], sc[4];
            snprintf(oname, sizeof oname, "out.x%d", s);
            snprintf(sc, sizeof sc, "%d", s);
            const latup_wtensor *ref = latup_weights_find(&g, oname);
            if (!ref) continue;
            /* the default (fast paths) and --exact-math (libm exp/erf, direct convs): both within the
             * golden tolerance, and not the same bytes (the switch reaches the kernels) */
            char exact_path[300];
            snprintf(exact_path, sizeof exact_path, "%s/out_exact.npy", g_dir);
            for (int ex = 0; ex < 2; ex++) {
                const char *args[] = {"upscale", "--model", gc->model, "--scale", sc, "--in", inpath,
                                      "--out", ex ? exact_path : outpath, "--threads", "2", "--quiet",
                                      ex ? "--exact-math" : NULL, NULL};
                int rc = run_latup(args);
                if (rc != 0) printf("latup failed (%d): %s", rc, g_stderr);
                assert_int_equal(rc, 0);
                assert_string_equal(g_stderr, ""); /* --quiet */
                latup_tensor y;
                assert_int_equal(latup_npy_read(ex ? exact_path : outpath, &y), LATUP_OK);
                assert_int_equal(y.ndim, ref->ndim);
                for (int d = 0; d < y.ndim; d++) assert_int_equal(y.shape[d], ref->shape[d]);
                golden_stats st = {0};
                golden_stats_add(&st, y.data, ref->f32, (size_t)ref->numel);
                char label[64];
                snprintf(label, sizeof label, "cli %s%s", oname, ex ? " --exact-math" : "");
                bad += !golden_report(gc->name, label, &st, golden_tol_for(oname)->tol);
                lines++;
                latup_tensor_free(&y);
            }
            exact_differs += !same_file(outpath, exact_path);
            unlink(exact_path);
            unlink(outpath);
        }
        latup_weights_free(&g);
    }
    assert_true(lines >= 12);
    printf("--exact-math changed the output bytes in %d upscales (must be > 0)\n", exact_differs);
    assert_true(exact_differs > 0);
    assert_int_equal(bad, 0);
}

/* ---- SwinIR in pixel space: PNG and .npy in, .npy and PNG out --------------------------------- */
static void compare_npy_to_golden(const char *label, const char *npy, const latup_wtensor *ref, int *bad) {
    latup_tensor y;
    assert_int_equal(latup_npy_read(npy, &y), LATUP_OK);
    assert_int_equal(latup_tensor_numel(&y), ref->numel);
    golden_stats st = {0};
    golden_stats_add(&st, y.data, ref->f32, (size_t)ref->numel);
    *bad += !golden_report("cli", label, &st, golden_tol_for("out")->tol);
    latup_tensor_free(&y);
}

/* A PNG written from `ref` values (mapped x*a+b into [0,1]) must hold round(clamp(.)*255) within
 * one step (the two roundings may differ at exact halves). */
static void compare_png_to_golden(const char *label, const char *png, const latup_wtensor *ref, float a, float b) {
    latup_tensor img;
    assert_int_equal(latup_png_read(png, &img), LATUP_OK);
    assert_int_equal(latup_tensor_numel(&img), ref->numel);
    double worst = 0;
    for (int64_t i = 0; i < ref->numel; i++) {
        double v = ref->f32[i] * a + b;
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        worst = fmax(worst, fabs(img.data[i] * 255.0 - v * 255.0));
    }
    printf("%-12s %-40s max |png - ref| %.3f of 255 levels (<= 1)  %s\n", "cli", label, worst, worst <= 1.0 ? "OK" : "NOT OK");
    assert_true(worst <= 1.0);
    latup_tensor_free(&img);
}

static void test_swinir_png_and_npy(void **state) {
    (void)state;
    latup_weights g = {0};
    assert_int_equal(latup_safetensors_load("ref_data/swinir/golden_classic_x2.safetensors", &g), LATUP_OK);
    const latup_wtensor *ref = latup_weights_find(&g, "out.x2");
    char out[300], outpng[300];
    snprintf(out, sizeof out, "%s/sw.npy", g_dir);
    snprintf(outpng, sizeof outpng, "%s/sw.png", g_dir);
    int bad = 0;
    const char *inputs[] = {"ref_data/swinir/image_21x19.png", "ref_data/swinir/image_21x19.npy"};
    for (int i = 0; i < 2; i++) {
        const char *a[] = {"upscale", "--model", "ref_data/swinir/classic_x2.pth", "--scale", "2", "--in", inputs[i],
                           "--out", out, "--quiet", NULL};
        assert_int_equal(run_latup(a), 0);
        char label[96];
        snprintf(label, sizeof label, "swinir x2 from %s", i ? ".npy" : "PNG");
        compare_npy_to_golden(label, out, ref, &bad);
    }
    const char *a[] = {"upscale", "--model", "ref_data/swinir/classic_x2.pth", "--scale", "2", "--in", inputs[0],
                       "--out", outpng, "--quiet", NULL};
    assert_int_equal(run_latup(a), 0);
    compare_png_to_golden("swinir x2 PNG out", outpng, ref, 1.0f, 0.0f);
    latup_weights_free(&g);
    assert_int_equal(bad, 0);
}

/* ---- decode and run ------------------------------------------------------------------------------ */
/* FLUX packing, the inverse of latup_flux_unpack: [C,h,w] -> [(h/2)*(w/2), 4C] */
static void write_packed(const char *path, const float *z, int C, int h, int w, float scale, float shift) {
    latup_tensor p;
    int64_t shape[3] = {1, (int64_t)(h / 2) * (w / 2), 4 * C};
    assert_int_equal(latup_tensor_alloc(&p, 3, shape), LATUP_OK);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                p.data[((size_t)(y / 2) * (w / 2) + x / 2) * 4 * C + 4 * c + 2 * (y % 2) + x % 2] =
                    (z[((size_t)c * h + y) * w + x] - shift) * scale;
    assert_int_equal(latup_npy_write(path, &p), LATUP_OK);
    latup_tensor_free(&p);
}

static void test_decode_and_run(void **state) {
    (void)state;
    char in[300], out[300], png[300], packed[300], lat[300];
    snprintf(in, sizeof in, "%s/z.npy", g_dir);
    snprintf(out, sizeof out, "%s/img.npy", g_dir);
    snprintf(png, sizeof png, "%s/img.png", g_dir);
    snprintf(packed, sizeof packed, "%s/packed.npy", g_dir);
    snprintf(lat, sizeof lat, "%s/up.npy", g_dir);
    int bad = 0;
    /* decode, .npy and PNG out, plain and from a packed FLUX pipeline latent */
    latup_weights g = {0};
    assert_int_equal(latup_safetensors_load("ref_data/vae/golden_flux_small.safetensors", &g), LATUP_OK);
    const latup_wtensor *zin = latup_weights_find(&g, "input"), *ref = latup_weights_find(&g, "out");
    latup_tensor z = {.data = zin->f32, .ndim = 4};
    memcpy(z.shape, zin->shape, sizeof z.shape);
    assert_int_equal(latup_npy_write(in, &z), LATUP_OK);
    const char *vae = "ref_data/vae/flux_small.diffusers.safetensors.gz";
    {
        const char *a[] = {"decode", "--vae", vae, "--in", in, "--out", out, "--quiet", NULL};
        assert_int_equal(run_latup(a), 0);
        compare_npy_to_golden("decode flux_small", out, ref, &bad);
        const char *b[] = {"decode", "--vae", vae, "--in", in, "--out", png, "--quiet", NULL};
        assert_int_equal(run_latup(b), 0);
        compare_png_to_golden("decode PNG (diffusers mapping)", png, ref, 0.5f, 0.5f);
    }
    {
        write_packed(packed, z.data, 16, (int)z.shape[2], (int)z.shape[3], 0.3611f, 0.1159f);
        char hw[32];
        snprintf(hw, sizeof hw, "%lldx%lld", (long long)z.shape[2], (long long)z.shape[3]);
        const char *a[] = {"decode", "--vae", vae, "--in", packed, "--flux-packed", hw, "--diffusion-latent", "flux",
                           "--out", out, "--quiet", NULL};
        assert_int_equal(run_latup(a), 0);
        compare_npy_to_golden("decode packed FLUX latent", out, ref, &bad);
    }
    latup_weights_free(&g);
    /* run = upscale + decode, against the composition of the two PyTorch references */
    assert_int_equal(latup_safetensors_load("ref_data/run/golden_small_flux.safetensors", &g), LATUP_OK);
    zin = latup_weights_find(&g, "input");
    memcpy(z.shape, zin->shape, sizeof z.shape);
    z.data = zin->f32;
    assert_int_equal(latup_npy_write(in, &z), LATUP_OK);
    {
        const char *a[] = {"run", "--model", "ref_data/small/model.safetensors.gz", "--scale", "2", "--vae",
                           "ref_data/vae/flux_small.ldm.safetensors.gz", "--in", in, "--out", out,
                           "--save-latent", lat, "--quiet", NULL};
        assert_int_equal(run_latup(a), 0);
        compare_npy_to_golden("run: saved x2 latent", lat, latup_weights_find(&g, "out.x2"), &bad);
        compare_npy_to_golden("run: image", out, latup_weights_find(&g, "out"), &bad);
    }
    latup_weights_free(&g);
    assert_int_equal(bad, 0);
}

/* ---- errors ------------------------------------------------------------------------------------- */
typedef struct {
    const char *what;
    int want_rc;
    const char *want_text; /* must appear in the one stderr line */
} expect;

static void check_error(const char *const *args, expect e, const char *outname) {
    int rc = run_latup(args);
    printf("%-44s exit %d: %s", e.what, rc, g_stderr);
    assert_int_equal(rc, e.want_rc);
    assert_int_equal(count_lines(g_stderr), 1);
    assert_non_null(strstr(g_stderr, e.want_text));
    if (outname) assert_false(leftovers(outname));
}

static void write_latent(const char *path, int C, int H, int W, float fill) {
    latup_tensor x;
    int64_t shape[3] = {C, H, W};
    assert_int_equal(latup_tensor_alloc(&x, 3, shape), LATUP_OK);
    for (int64_t i = 0; i < latup_tensor_numel(&x); i++) x.data[i] = 0.01f * (float)(i % 97);
    x.data[5] = fill;
    assert_int_equal(latup_npy_write(path, &x), LATUP_OK);
    latup_tensor_free(&x);
}

static void test_errors(void **state) {
    (void)state;
    const char *model = GOLDEN_CASES[0].model;
    char good[300], c4[300], nan[300], out[300], corrupt[300], noout[300];
    snprintf(good, sizeof good, "%s/good.npy", g_dir);
    snprintf(c4, sizeof c4, "%s/c4.npy", g_dir);
    snprintf(nan, sizeof nan, "%s/nan.npy", g_dir);
    snprintf(out, sizeof out, "%s/result.npy", g_dir);
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.safetensors", g_dir);
    snprintf(noout, sizeof noout, "%s/no/such/dir/result.npy", g_dir);
    write_latent(good, 16, 16, 16, 0.5f);
    write_latent(c4, 4, 16, 16, 0.5f);
    write_latent(nan, 16, 16, 16, NAN);
    FILE *f = fopen(corrupt, "wb");
    fputs("this is not a safetensors file at all", f);
    fclose(f);

    {
        const char *a[] = {"upscale", "--scale", "2", "--in", good, "--out", out, NULL};
        check_error(a, (expect){"missing --model", 1, "missing --model"}, "result.npy");
    }
    {
        const char *a[] = {"upscale", "--model", model, "--scale", "two", "--in", good, "--out", out, NULL};
        check_error(a, (expect){"bad --scale", 1, "--scale"}, "result.npy");
    }
    {
        const char *a[] = {"upscale", "--model", model, "--scale", "3", "--in", good, "--out", out, NULL};
        check_error(a, (expect){"scale without a head", 1, "x2, x4"}, "result.npy");
    }
    {
        const char *a[] = {"frobnicate", NULL};
        check_error(a, (expect){"unknown command", 1, "frobnicate"}, NULL);
    }
    {
        const char *a[] = {"upscale", "--model", "/no/such/model.safetensors", "--scale", "2", "--in", good, "--out", out, NULL};
        check_error(a, (expect){"model file missing", 4, "/no/such/model.safetensors"}, "result.npy");
    }
    {
        const char *a[] = {"upscale", "--model", corrupt, "--scale", "2", "--in", good, "--out", out, NULL};
        check_error(a, (expect){"corrupt model", 2, "corrupt.safetensors"}, "result.npy");
    }
    {
        const char *a[] = {"upscale", "--model", model, "--scale", "2", "--in", c4, "--out", out, NULL};
        check_error(a, (expect){"4-channel latent, 16-channel model", 2, "channels"}, "result.npy");
    }
    {
        const char *a[] = {"upscale", "--model", model, "--scale", "2", "--in", nan, "--out", out, NULL};
        check_error(a, (expect){"NaN in the latent", 2, "NaN"}, "result.npy");
    }
    {
        const char *a[] = {"upscale", "--model", model, "--scale", "2", "--in", corrupt, "--out", out, NULL};
        check_error(a, (expect){"input is not .npy", 2, "corrupt.safetensors"}, "result.npy");
    }
    {
        const char *a[] = {"upscale", "--model", model, "--scale", "2", "--in", good, "--out", noout, NULL};
        check_error(a, (expect){"unwritable output", 4, "no/such/dir"}, NULL);
    }
    {
        const char *a[] = {"info", corrupt, NULL};
        check_error(a, (expect){"info on a corrupt file", 2, "corrupt.safetensors"}, NULL);
    }
}

static void test_help_and_info(void **state) {
    (void)state;
    const char *h[] = {"--help", NULL};
    assert_int_equal(run_latup(h), 0);
    const char *uh[] = {"upscale", "--help", NULL};
    assert_int_equal(run_latup(uh), 0);
    const char *none[] = {NULL};
    assert_int_equal(run_latup(none), 1);
    const char *info[] = {"info", GOLDEN_CASES[0].model, NULL};
    assert_int_equal(run_latup(info), 0);
    /* the tensor count by dtype of checkpoints holding two and three dtypes, as the library counts */
    const char *mixed[] = {"ref_data/small/model.safetensors.gz", "ref_data/tiny/model.pth"};
    for (int k = 0; k < 2; k++) {
        char out_txt[600];
        snprintf(out_txt, sizeof out_txt, "%s/info.txt", g_dir);
        const char *ia[] = {"info", mixed[k], NULL};
        assert_int_equal(run_cli_io(g_dir, ia, NULL, NULL, out_txt, g_stderr, sizeof g_stderr), 0);
        latup_checkpoint_info ci;
        assert_int_equal(latup_checkpoint_info_read(mixed[k], &ci), LATUP_OK);
        char want[160] = "", *w = want;
        const struct { int n; const char *dt; } by[] = {{ci.n_f32, "F32"}, {ci.n_f16, "F16"}, {ci.n_bf16, "BF16"}, {ci.n_i64, "I64"}};
        for (int d = 0; d < 4; d++)
            if (by[d].n) w += snprintf(w, sizeof want - (size_t)(w - want), "%s%d %s", w == want ? "" : ", ", by[d].n, by[d].dt);
        FILE *f = fopen(out_txt, "r");
        char line[512], got[160] = "";
        int n_tensors = -1;
        while (f && fgets(line, sizeof line, f))
            if (sscanf(line, "tensors: %d (%159[^)])", &n_tensors, got) == 2) break;
        if (f) fclose(f);
        const int ok = n_tensors == ci.n_tensors && !strcmp(got, want);
        printf("info %s: tensors %d (%s), the library counts %d (%s) %s\n", mixed[k], n_tensors, got, ci.n_tensors, want,
               ok ? "OK" : "NOT OK");
        assert_true(ok);
    }
    /* a successful run without --quiet says what it did, in one line */
    char good[300], out[300];
    snprintf(good, sizeof good, "%s/ok.npy", g_dir);
    snprintf(out, sizeof out, "%s/ok_out.npy", g_dir);
    write_latent(good, 16, 13, 11, 0.5f);
    const char *a[] = {"upscale", "--model", GOLDEN_CASES[0].model, "--scale", "4", "--in", good, "--out", out, NULL};
    assert_int_equal(run_latup(a), 0);
    assert_int_equal(count_lines(g_stderr), 1);
    assert_true(exists(out));
}

/* ---- inputs that are not regular files; stdout ------------------------------------------------------ */

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n + 1);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    uint8_t *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

/* Two PNGs with the same pixels: their bytes differ where their text chunks name different commands. */
static int same_pixels(const char *a, const char *b) {
    latup_tensor x, y;
    if (latup_png_read(a, &x)) return 0;
    if (latup_png_read(b, &y)) {
        latup_tensor_free(&x);
        return 0;
    }
    int same = latup_tensor_numel(&x) == latup_tensor_numel(&y) && !memcmp(x.shape, y.shape, sizeof x.shape) &&
               !memcmp(x.data, y.data, (size_t)latup_tensor_numel(&x) * sizeof(float));
    latup_tensor_free(&x);
    latup_tensor_free(&y);
    return same;
}

/* A writer for a FIFO: writes src once; if a reader opens the FIFO a second time (the bug of
 * opening an input twice), it gets EOF at once rather than hanging the test. */
static pid_t fifo_writer(const char *fifo, const char *src) {
    pid_t pid = fork();
    if (pid == 0) {
        size_t n;
        uint8_t *b = slurp(src, &n);
        FILE *f = fopen(fifo, "wb");
        if (f) fwrite(b, 1, n, f), fclose(f);
        nanosleep(&(struct timespec){0, 300000000L}, NULL);
        int fd = open(fifo, O_WRONLY | O_NONBLOCK);
        if (fd >= 0) close(fd);
        _exit(0);
    }
    return pid;
}

static void test_pipes_stdin_stdout(void **state) {
    (void)state;
    const char *vae = "ref_data/vae/flux_small.ldm.safetensors.gz";
    const char *in = "tests/data/latent/comfyui_flux_b2.npy";
    const char *ref[] = {"decode", "--vae", vae, "-i", in, "-o", tmp_path("ref.npy"), "-q", NULL};
    assert_int_equal(run_latup(ref), 0);
    /* --in FIFO: opened once */
    unlink(tmp_path("fifo"));
    assert_int_equal(mkfifo(tmp_path("fifo"), 0600), 0);
    pid_t w = fifo_writer(tmp_path("fifo"), in);
    const char *a[] = {"decode", "--vae", vae, "-i", tmp_path("fifo"), "-o", tmp_path("fifo_out.npy"), "-q", NULL};
    int rc = run_latup(a);
    waitpid(w, NULL, 0);
    printf("--in FIFO: exit %d %s\n", rc, g_stderr);
    assert_int_equal(rc, 0);
    assert_true(same_file(tmp_path("ref.npy"), tmp_path("fifo_out.npy")));
    /* --in - and --in /dev/stdin, stdin a file and a pipe's worth of data; --out - to stdout */
    const char *b[] = {"decode", "--vae", vae, "-i", "-", "-o", tmp_path("stdin_out.npy"), "-q", NULL};
    assert_int_equal(run_cli_io(g_dir, b, NULL, in, NULL, g_stderr, sizeof g_stderr), 0);
    assert_true(same_file(tmp_path("ref.npy"), tmp_path("stdin_out.npy")));
    const char *c[] = {"decode", "--vae", vae, "-i", "/dev/stdin", "-o", tmp_path("devstdin_out.npy"), "-q", NULL};
    assert_int_equal(run_cli_io(g_dir, c, NULL, in, NULL, g_stderr, sizeof g_stderr), 0);
    assert_true(same_file(tmp_path("ref.npy"), tmp_path("devstdin_out.npy")));
    const char *d[] = {"decode", "--vae", vae, "-i", in, "-o", "-", "--format", "npy", "-q", NULL};
    assert_int_equal(run_cli_io(g_dir, d, NULL, NULL, tmp_path("stdout.npy"), g_stderr, sizeof g_stderr), 0);
    assert_true(same_file(tmp_path("ref.npy"), tmp_path("stdout.npy")));
    /* a failed command writes nothing to stdout */
    const char *f[] = {"decode", "--vae", vae, "-i", "tests/data/latent/comfyui_old_sd_loaded.npy", "-o", "-", NULL};
    assert_int_equal(run_cli_io(g_dir, f, NULL, NULL, tmp_path("x.png"), g_stderr, sizeof g_stderr), 2); /* 4 channels */
    struct stat sb;
    assert_int_equal(stat(tmp_path("x.png"), &sb), 0);
    assert_int_equal(sb.st_size, 0);
    printf("pipes: FIFO, '-', /dev/stdin in, '-' out: same bytes as from and to files\n");
}

/* ---- ComfyUI latents, batches, several inputs --------------------------------------------------------- */

static void test_comfyui_latent_bit_identical(void **state) {
    (void)state;
    const char *vae = "ref_data/vae/flux_small.ldm.safetensors.gz";
    const char *a[] = {"decode", "--vae", vae, "-i", "tests/data/latent/comfyui_flux_b2.latent", "-o", tmp_path("from_latent.npy"), "-q", NULL};
    const char *b[] = {"decode", "--vae", vae, "-i", "tests/data/latent/comfyui_flux_b2.npy", "-o", tmp_path("from_npy.npy"), "-q", NULL};
    assert_int_equal(run_latup(a), 0);
    assert_int_equal(run_latup(b), 0);
    int same = same_file(tmp_path("from_latent.npy"), tmp_path("from_npy.npy"));
    printf("ComfyUI .latent and the same latent as .npy decode to identical bytes: %s\n", same ? "OK" : "NOT OK");
    assert_true(same);
    /* --in-key reads any safetensors tensor */
    const char *c[] = {"decode", "--vae", vae, "-i", "tests/data/latent/comfyui_flux_b2.latent", "--in-key", "latent_tensor",
                       "-o", tmp_path("from_key.npy"), "-q", NULL};
    assert_int_equal(run_latup(c), 0);
    assert_true(same_file(tmp_path("from_key.npy"), tmp_path("from_npy.npy")));
}

static void test_batches_and_inputs(void **state) {
    (void)state;
    const char *vae = "ref_data/vae/flux_small.ldm.safetensors.gz";
    const char *in = "tests/data/latent/comfyui_flux_b2.npy"; /* a batch of 2 */
    /* a batch into a pattern: one PNG per element, each the element decoded alone */
    const char *a[] = {"decode", "--vae", vae, "-i", in, "-o", tmp_path("img_%03d.png"), "-q", NULL};
    assert_int_equal(run_latup(a), 0);
    assert_true(exists(tmp_path("img_000.png")) && exists(tmp_path("img_001.png")) && !exists(tmp_path("img_002.png")));
    latup_tensor all, one;
    assert_int_equal(latup_npy_read(in, &all), LATUP_OK);
    one = all;
    one.ndim = 3;
    memmove(one.shape, one.shape + 1, 3 * sizeof one.shape[0]);
    one.data = all.data + latup_tensor_numel(&all) / 2;
    assert_int_equal(latup_npy_write(tmp_path("second.npy"), &one), LATUP_OK);
    latup_tensor_free(&all);
    const char *b[] = {"decode", "--vae", vae, "-i", tmp_path("second.npy"), "-o", tmp_path("second.png"), "-q", NULL};
    assert_int_equal(run_latup(b), 0);
    assert_true(same_pixels(tmp_path("second.png"), tmp_path("img_001.png")));
    /* several inputs, one model load, one output each, time per item */
    const char *c[] = {"decode", "--vae", vae, "-i", in, "-i", tmp_path("second.npy"), "--out-dir", tmp_path("outs/png"), NULL};
    assert_int_equal(run_latup(c), 0);
    printf("%s", g_stderr);
    assert_true(exists(tmp_path("outs/png/comfyui_flux_b2_000.png")) && exists(tmp_path("outs/png/comfyui_flux_b2_001.png")));
    assert_true(same_pixels(tmp_path("second.png"), tmp_path("outs/png/second.png")));
    assert_non_null(strstr(g_stderr, "[1/2] tests/data/latent/comfyui_flux_b2.npy"));
    assert_non_null(strstr(g_stderr, "[2/2] "));
    assert_non_null(strstr(g_stderr, "2 inputs in"));
    assert_non_null(strstr(g_stderr, "models loaded once"));
    assert_int_equal(count_lines(g_stderr), 3);
    /* run over several inputs, .npy out */
    const char *d[] = {"run", "-m", "ref_data/small/model.safetensors.gz", "-s", "2", "--vae", vae, "-i", in,
                       "-i", tmp_path("second.npy"), "--out-dir", tmp_path("outs/npy"), "--format", "npy", "-q", NULL};
    assert_int_equal(run_latup(d), 0);
    latup_tensor y;
    assert_int_equal(latup_npy_read(tmp_path("outs/npy/comfyui_flux_b2.npy"), &y), LATUP_OK);
    assert_int_equal(y.shape[0], 2);
    assert_int_equal(y.shape[1], 3);
    latup_tensor_free(&y);
    /* several inputs need --out-dir */
    const char *e[] = {"decode", "--vae", vae, "-i", in, "-i", tmp_path("second.npy"), "-o", tmp_path("x.png"), NULL};
    assert_int_equal(run_latup(e), 1);
    assert_non_null(strstr(g_stderr, "need --out-dir"));
}

/* --png-bits 16 writes a 16-bit RGB PNG (test_png.c checks every sample). */
static void test_png16(void **state) {
    (void)state;
    const char *a[] = {"run", "-m", "ref_data/small/model.safetensors.gz", "-s", "2", "--vae",
                       "ref_data/vae/flux_small.ldm.safetensors.gz", "-i", "ref_data/demo/latent.npy", "-o",
                       tmp_path("deep.png"), "--png-bits", "16", "-q", NULL};
    assert_int_equal(run_latup(a), 0);
    size_t n;
    uint8_t *b = slurp(tmp_path("deep.png"), &n);
    assert_true(n > 33);
    assert_memory_equal(b + 12, "IHDR", 4);
    assert_int_equal(b[24], 16); /* bit depth */
    assert_int_equal(b[25], 2);  /* RGB */
    free(b);
}

/* ---- porters: --dump and compare ------------------------------------------------------------------------ */

static int count_files(const char *dir, const char *suffix) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strstr(e->d_name, suffix) != NULL;
    closedir(d);
    return n;
}

static void test_dump_and_compare(void **state) {
    (void)state;
    const char *lua = "ref_data/small/model.safetensors.gz";
    const char *in = "ref_data/demo/latent.npy";
    /* --dump makes its (nested) directory, in upscale and in run */
    const char *a[] = {"upscale", "-m", lua, "-s", "2", "-i", in, "-o", tmp_path("c_ref.npy"), "--dump", tmp_path("dumps/ref"), "-q", NULL};
    assert_int_equal(run_latup(a), 0);
    const int n_ref = count_files(tmp_path("dumps/ref"), ".npy");
    assert_true(n_ref > 20);
    assert_true(exists(tmp_path("dumps/ref/dump_order.txt")));
    const char *r[] = {"run", "-m", lua, "-s", "2", "--vae", "ref_data/vae/flux_small.ldm.safetensors.gz", "-i", in,
                       "-o", tmp_path("c_run.png"), "--dump", tmp_path("dumps/run"), "-q", NULL};
    assert_int_equal(run_latup(r), 0);
    assert_int_equal(count_files(tmp_path("dumps/run/lua"), ".npy"), n_ref);
    assert_true(count_files(tmp_path("dumps/run/vae"), ".npy") > 5);

    /* the same model again: every tensor agrees, exit 0 */
    const char *a2[] = {"upscale", "-m", lua, "-s", "2", "-i", in, "-o", tmp_path("c_same.npy"), "--dump", tmp_path("dumps/same"), "-q", NULL};
    assert_int_equal(run_latup(a2), 0);
    char out[600];
    snprintf(out, sizeof out, "%s/compare.txt", g_dir);
    const char *c0[] = {"compare", tmp_path("dumps/ref"), tmp_path("dumps/same"), NULL};
    int rc = run_cli_io(g_dir, c0, NULL, NULL, out, g_stderr, sizeof g_stderr);
    assert_int_equal(rc, 0);

    /* one layer changed: compare exits 10 and names that layer as the first over tolerance, in
     * forward order (every earlier tensor agrees) */
    assert_true(checkpoint_edit(lua, tmp_path("changed.safetensors"), "layers.1.residual_group.blocks.0.mlp.fc2.bias", 1.0f,
                                0.05f));
    const char *b[] = {"upscale", "-m", tmp_path("changed.safetensors"), "-s", "2", "-i", in, "-o", tmp_path("c_port.npy"),
                       "--dump", tmp_path("dumps/port"), "-q", NULL};
    assert_int_equal(run_latup(b), 0);
    unlink(tmp_path("dumps/port/pad.npy")); /* and one tensor only in the reference */
    const char *c[] = {"compare", tmp_path("dumps/ref"), tmp_path("dumps/port"), "--tol", "1e-5", NULL};
    rc = run_cli_io(g_dir, c, NULL, NULL, out, g_stderr, sizeof g_stderr);
    size_t n;
    char *text = (char *)slurp(out, &n);
    text[n] = '\0';
    printf("latup compare output (its NOT OK lines are the injected difference, expected):\n");
    for (char *p = text; *p;) {
        size_t k = strcspn(p, "\n");
        printf("  | %.*s\n", (int)k, p);
        p += k + (p[k] == '\n');
    }
    assert_int_equal(rc, 10);
    char *summary = strstr(text, "compare: ");
    assert_non_null(summary);
    char *first = strstr(summary, "first: ");
    assert_non_null(first);
    assert_true(strstr(first, "layers.1.") == first + 7);
    assert_non_null(strstr(first, "mlp.fc2"));
    /* the first NOT OK line is that layer; every line before it is OK */
    char *not_ok = strstr(text, "NOT OK");
    assert_non_null(not_ok);
    assert_true(strstr(not_ok, "layers.1.") && strstr(not_ok, "mlp.fc2") < strchr(not_ok, '\n'));
    assert_non_null(strstr(text, "only in "));
    assert_non_null(strstr(text, ": pad\n"));
    free(text);
    /* nothing in common is an error, not a pass */
    mkdir(tmp_path("empty"), 0755);
    const char *e[] = {"compare", tmp_path("dumps/ref"), tmp_path("empty"), NULL};
    assert_int_equal(run_latup(e), 2);
    /* a second directory that is not there: an i/o error naming it (and, under SANITIZE=1, the
     * first one's listing freed: LeakSanitizer fails the run otherwise) */
    const char *m[] = {"compare", tmp_path("dumps/ref"), tmp_path("not_there"), NULL};
    assert_int_equal(run_latup(m), 4);
    assert_non_null(strstr(g_stderr, "not_there"));
}

/* compare's forward order: dump_order.txt where there is one, else modification time. */
static void test_compare_order(void **state) {
    (void)state;
    mkdir(tmp_path("ord_a"), 0755);
    mkdir(tmp_path("ord_b"), 0755);
    latup_tensor t;
    int64_t shape[1] = {4};
    assert_int_equal(latup_tensor_alloc(&t, 1, shape), LATUP_OK);
    const char *names[3] = {"x", "y", "z"}; /* written x, y, z: mtimes in that order */
    for (int i = 0; i < 3; i++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "ord_a/%s.npy", names[i]);
        snprintf(b, sizeof b, "ord_b/%s.npy", names[i]);
        t.data[0] = 1.0f;
        assert_int_equal(latup_npy_write(tmp_path(a), &t), LATUP_OK);
        t.data[0] = i ? 2.0f : 1.0f; /* y and z differ */
        assert_int_equal(latup_npy_write(tmp_path(b), &t), LATUP_OK);
        nanosleep(&(struct timespec){0, 20000000L}, NULL);
    }
    latup_tensor_free(&t);
    char out[600];
    snprintf(out, sizeof out, "%s/order.txt", g_dir);
    const char *c[] = {"compare", tmp_path("ord_a"), tmp_path("ord_b"), NULL};
    assert_int_equal(run_cli_io(g_dir, c, NULL, NULL, out, g_stderr, sizeof g_stderr), 10);
    size_t n;
    char *text = (char *)slurp(out, &n);
    text[n] = '\0';
    assert_non_null(strstr(text, "first: y;")); /* modification time */
    free(text);
    FILE *f = fopen(tmp_path("ord_a/dump_order.txt"), "w");
    fputs("z\ny\nx\n", f);
    fclose(f);
    assert_int_equal(run_cli_io(g_dir, c, NULL, NULL, out, g_stderr, sizeof g_stderr), 10);
    text = (char *)slurp(out, &n);
    text[n] = '\0';
    assert_non_null(strstr(text, "first: z;")); /* the order file */
    free(text);
    /* modification time, not the name: c, b, a written in that order, b and a differ */
    mkdir(tmp_path("ord_c"), 0755);
    mkdir(tmp_path("ord_d"), 0755);
    assert_int_equal(latup_tensor_alloc(&t, 1, shape), LATUP_OK);
    const char *rev[3] = {"c", "b", "a"};
    for (int i = 0; i < 3; i++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "ord_c/%s.npy", rev[i]);
        snprintf(b, sizeof b, "ord_d/%s.npy", rev[i]);
        t.data[0] = 1.0f;
        assert_int_equal(latup_npy_write(tmp_path(a), &t), LATUP_OK);
        t.data[0] = i ? 2.0f : 1.0f;
        assert_int_equal(latup_npy_write(tmp_path(b), &t), LATUP_OK);
        const struct timespec when[2] = {{1000000 + i, 0}, {1000000 + i, 0}};
        assert_int_equal(utimensat(AT_FDCWD, tmp_path(a), when, 0), 0);
    }
    latup_tensor_free(&t);
    const char *c2[] = {"compare", tmp_path("ord_c"), tmp_path("ord_d"), NULL};
    assert_int_equal(run_cli_io(g_dir, c2, NULL, NULL, out, g_stderr, sizeof g_stderr), 10);
    text = (char *)slurp(out, &n);
    text[n] = '\0';
    assert_non_null(strstr(text, "first: b;")); /* c, b, a by time; a first by name */
    free(text);
}

/* NaN and Inf against finite values, at the first, a middle and the last element, on either side:
 * each a mismatch; the same NaN on both sides agrees. One line per tensor, parsed. */
static void test_compare_nonfinite(void **state) {
    (void)state;
    mkdir(tmp_path("nf_a"), 0755);
    mkdir(tmp_path("nf_b"), 0755);
    const float nan = NAN, inf = INFINITY;
    const struct {
        const char *name;
        float a[4], b[4];
        int ok;
    } cases[] = {{"nan_first", {nan, 2, 3, 4}, {1, 2, 3, 4}, 0}, {"nan_mid", {1, nan, 3, 4}, {1, 2, 3, 4}, 0},
                 {"nan_last", {1, 2, 3, nan}, {1, 2, 3, 4}, 0},  {"inf_b_last", {1, 2, 3, 4}, {1, 2, 3, inf}, 0},
                 {"inf_both_signs", {1, inf, 3, 4}, {1, -inf, 3, 4}, 0}, {"nan_both", {1, nan, 3, nan}, {1, nan, 3, nan}, 1},
                 {"inf_both", {inf, 2, 3, 4}, {inf, 2, 3, 4}, 1}};
    const int n_cases = (int)(sizeof cases / sizeof cases[0]);
    latup_tensor t;
    const int64_t shape[1] = {4};
    assert_int_equal(latup_tensor_alloc(&t, 1, shape), LATUP_OK);
    for (int i = 0; i < n_cases; i++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "nf_a/%s.npy", cases[i].name);
        snprintf(b, sizeof b, "nf_b/%s.npy", cases[i].name);
        memcpy(t.data, cases[i].a, sizeof cases[i].a);
        assert_int_equal(latup_npy_write(tmp_path(a), &t), LATUP_OK);
        memcpy(t.data, cases[i].b, sizeof cases[i].b);
        assert_int_equal(latup_npy_write(tmp_path(b), &t), LATUP_OK);
    }
    latup_tensor_free(&t);
    char out[600];
    snprintf(out, sizeof out, "%s/nonfinite.txt", g_dir);
    const char *c[] = {"compare", tmp_path("nf_a"), tmp_path("nf_b"), NULL};
    const int rc = run_cli_io(g_dir, c, NULL, NULL, out, g_stderr, sizeof g_stderr);
    size_t n;
    char *text = (char *)slurp(out, &n);
    text[n] = '\0';
    int bad = 0;
    for (int i = 0; i < n_cases; i++) { /* the line whose second field is the name: its verdict */
        int verdict = -1;
        for (char *line = text; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] == '\n')) {
            char v1[8], v2[8], name[64];
            if (sscanf(line, "%7s %7s %63s", v1, v2, name) == 3 && !strcmp(v1, "NOT") && !strcmp(v2, "OK") &&
                !strcmp(name, cases[i].name))
                verdict = 0;
            else if (sscanf(line, "%7s %63s", v1, name) == 2 && !strcmp(v1, "OK") && !strcmp(name, cases[i].name))
                verdict = 1;
        }
        const int ok = verdict == cases[i].ok;
        printf("compare %s: %s (want %s) %s\n", cases[i].name, verdict < 0 ? "no line" : verdict ? "OK" : "NOT OK",
               cases[i].ok ? "OK" : "NOT OK", ok ? "OK" : "NOT OK");
        bad += !ok;
    }
    free(text);
    printf("compare of NaN/Inf: exit %d (want 10)\n", rc);
    assert_int_equal(rc, 10);
    assert_int_equal(bad, 0);
}

/* Many tensors (past the listing's first 64 slots), a first one only on one side and one only on
 * the other: every shared tensor compared, the counts exact. */
static void test_compare_many(void **state) {
    (void)state;
    mkdir(tmp_path("many_a"), 0755);
    mkdir(tmp_path("many_b"), 0755);
    latup_tensor t;
    int64_t shape[1] = {3};
    assert_int_equal(latup_tensor_alloc(&t, 1, shape), LATUP_OK);
    for (int i = 0; i < 150; i++) {
        char a[64], b[64];
        snprintf(a, sizeof a, "many_a/t%03d.npy", i);
        snprintf(b, sizeof b, "many_b/t%03d.npy", i + 1);
        t.data[0] = (float)i, t.data[1] = t.data[2] = 0.5f;
        assert_int_equal(latup_npy_write(tmp_path(a), &t), LATUP_OK); /* a: t000..t149 */
        t.data[0] = (float)(i + 1) + (i + 1 == 140 ? 0.5f : 0.0f);
        assert_int_equal(latup_npy_write(tmp_path(b), &t), LATUP_OK); /* b: t001..t150, t140 differs */
    }
    FILE *f = fopen(tmp_path("many_a/dump_order.txt"), "w");
    for (int i = 0; i < 150; i++) fprintf(f, "t%03d\n", i);
    fclose(f);
    latup_tensor_free(&t);
    char out[600];
    snprintf(out, sizeof out, "%s/many.txt", g_dir);
    const char *c[] = {"compare", tmp_path("many_a"), tmp_path("many_b"), "--quiet", NULL};
    assert_int_equal(run_cli_io(g_dir, c, NULL, NULL, out, g_stderr, sizeof g_stderr), 10);
    size_t n;
    char *text = (char *)slurp(out, &n);
    text[n] = '\0';
    printf("%s", text);
    assert_non_null(strstr(text, "compare: 149 tensors in both, 1 over the tolerance"));
    assert_non_null(strstr(text, "first: t140;"));
    assert_non_null(strstr(text, "; 1 only in "));
    assert_non_null(strstr(text, "many_a: t000\n"));
    assert_non_null(strstr(text, "many_b: t150\n"));
    free(text);
}

/* ---- every JSON the CLI prints, read by latup's own parser ------------------------------------------ */

static char *g_json;  /* the text of the last document */
static int g_checked; /* the members checked in it */

/* Runs latup with stdout into a file: the output must be one line of JSON, itself UTF-8, nothing
 * on stderr. Read with surrogateescape (latup_json_parse_bytes), so names that are not UTF-8 come
 * back as their bytes. Returns the root object; the caller frees *doc. */
static const latup_json *json_of(const char *const *args, latup_json_doc *doc) {
    const char *out = tmp_path("out.json");
    int rc = run_cli_io(g_dir, args, NULL, NULL, out, g_stderr, sizeof g_stderr);
    if (rc) printf("latup failed (%d): %s", rc, g_stderr);
    assert_int_equal(rc, 0);
    assert_string_equal(g_stderr, "");
    size_t n;
    free(g_json);
    g_json = (char *)slurp(out, &n);
    g_json[n] = '\0';
    assert_true(n > 2 && g_json[n - 1] == '\n' && !memchr(g_json, '\n', n - 1));
    assert_true(latup_utf8_valid(g_json, n));
    latup_status st = latup_json_parse_bytes(g_json, n, 0, doc);
    if (st) printf("not JSON: %s\n%s", latup_last_error(), g_json);
    assert_int_equal(st, LATUP_OK);
    assert_int_equal(doc->root->type, LATUP_JSON_OBJECT);
    g_checked = 0;
    return doc->root;
}

/* Member key of o, of this type (LATUP_JSON_FALSE: either boolean). */
static const latup_json *jget(const latup_json *o, const char *key, latup_json_type type) {
    const latup_json *v = latup_json_get(o, key);
    if (!v) printf("no member \"%s\" in %s", key, g_json);
    assert_non_null(v);
    const int ok = v->type == type || (type == LATUP_JSON_FALSE && v->type == LATUP_JSON_TRUE);
    if (!ok) printf("\"%s\" is %s, not %s\n", key, latup_json_type_name(v->type), latup_json_type_name(type));
    assert_true(ok);
    g_checked++;
    return v;
}
static int64_t jint(const latup_json *o, const char *key) { return jget(o, key, LATUP_JSON_INT)->u.i; }
static const char *jstr(const latup_json *o, const char *key) { return jget(o, key, LATUP_JSON_STRING)->u.str.s; }
static int jbool(const latup_json *o, const char *key) { return jget(o, key, LATUP_JSON_FALSE)->type == LATUP_JSON_TRUE; }

/* The object's members are exactly `keys` (comma-separated), in that order. */
static void keys_are(const latup_json *o, const char *keys) {
    char got[1024];
    size_t n = 0;
    got[0] = '\0';
    for (const latup_json *v = o->u.kids.first; v && n < sizeof got; v = v->next)
        n += (size_t)snprintf(got + n, sizeof got - n, "%s%s", n ? "," : "", v->key);
    if (strcmp(got, keys)) printf("members %s\n   want %s\n", got, keys);
    assert_string_equal(got, keys);
}

/* Member key is an array of exactly these integers. */
static void ints_are(const latup_json *o, const char *key, int n, const int64_t *want) {
    const latup_json *a = jget(o, key, LATUP_JSON_ARRAY);
    assert_int_equal(a->u.kids.n, n);
    int i = 0;
    for (const latup_json *e = a->u.kids.first; e; e = e->next, i++) {
        assert_int_equal(e->type, LATUP_JSON_INT);
        assert_int_equal(e->u.i, want[i]);
    }
}

static void json_report(const char *label, latup_json_doc *doc) {
    printf("json %-52s %3d members checked  OK\n", label, g_checked);
    latup_json_free(doc);
}

/* ---- latup info --json --------------------------------------------------------------------------------- */

#define CKPT_KEYS "file,format,state dict,tensors,dtypes,elements,kind,model"

/* What every checkpoint's summary has: the file, and dtype counts that add up to the tensors. */
static void check_checkpoint(const latup_json *r, const char *path) {
    assert_string_equal(jstr(r, "file"), path);
    assert_true(*jstr(r, "format"));
    jstr(r, "state dict");
    const int64_t n = jint(r, "tensors");
    const latup_json *dt = jget(r, "dtypes", LATUP_JSON_OBJECT);
    keys_are(dt, "F32,F16,BF16,I64");
    int64_t sum = 0;
    for (const latup_json *v = dt->u.kids.first; v; v = v->next) sum += jint(dt, v->key);
    assert_true(n > 0 && sum == n);
    assert_true(jint(r, "elements") >= n);
    assert_true(*jstr(r, "model"));
}

/* `latup info --json` of a checkpoint: the members CKPT_KEYS then `more`, the common ones checked,
 * and its kind. */
static const latup_json *info_json(const char *path, const char *kind, const char *more, latup_json_doc *doc) {
    const char *a[] = {"info", path, "--json", NULL};
    const latup_json *r = json_of(a, doc);
    char keys[512];
    snprintf(keys, sizeof keys, "%s%s", CKPT_KEYS, more);
    keys_are(r, keys);
    check_checkpoint(r, path);
    assert_string_equal(jstr(r, "kind"), kind);
    return r;
}

static void info_report(const char *path, const char *kind, latup_json_doc *doc) {
    char label[300];
    snprintf(label, sizeof label, "info %s (%s)", path, kind);
    json_report(label, doc);
}

static void check_lua_info(const char *path, const char *kind, const int64_t *chans, int n_scales,
                           const int64_t *scales) {
    latup_json_doc doc;
    const latup_json *r =
        info_json(path, kind, ",parameters,channels,embed dim,depths,heads,window,mlp hidden,tail,scales", &doc);
    const int64_t params = jint(r, "parameters");
    assert_true(params > 0 && params <= jint(r, "elements"));
    ints_are(r, "channels", 2, chans);
    assert_true(jint(r, "embed dim") > 0 && jint(r, "window") > 0 && jint(r, "mlp hidden") > 0);
    const latup_json *d = jget(r, "depths", LATUP_JSON_ARRAY), *h = jget(r, "heads", LATUP_JSON_ARRAY);
    assert_true(d->u.kids.n >= 1 && d->u.kids.n == h->u.kids.n);
    assert_string_equal(jstr(r, "tail"), !strcmp(kind, "lua") ? "lua-heads" : "pixelshuffle");
    ints_are(r, "scales", n_scales, scales);
    info_report(path, kind, &doc);
}

static void check_vae_info(const char *path, const char *prefix, const int64_t *chans, int post_quant_conv,
                           const char *encoder) {
    latup_json_doc doc;
    const latup_json *r = info_json(
        path, "vae", ",family,naming,prefix,parameters,channels,post_quant_conv,levels,resnets,upsampling,encoder", &doc);
    const latup_json *e = jget(r, "encoder", LATUP_JSON_OBJECT);
    assert_string_equal(jstr(e, "kind"), encoder);
    if (!strcmp(encoder, "patch")) { /* the trained demo VAE: one 8x8 stride-8 conv to 2 x 16 channels */
        keys_are(e, "kind,patch,downsampling,quant_conv,parameters");
        assert_int_equal(jint(e, "patch"), 8);
        assert_int_equal(jint(e, "downsampling"), 8);
        assert_int_equal(jbool(e, "quant_conv"), 0);
        assert_int_equal(jint(e, "parameters"), 32 * 3 * 8 * 8 + 32);
    } else if (!strcmp(encoder, "ldm")) {
        keys_are(e, "kind,levels,resnets,downsampling,quant_conv,parameters");
        assert_true(jint(e, "parameters") > 0 && jint(e, "resnets") >= 1);
    } else {
        keys_are(e, "kind");
    }
    assert_true(*jstr(r, "family") && *jstr(r, "naming"));
    assert_string_equal(jstr(r, "prefix"), prefix);
    assert_true(jint(r, "parameters") > 0 && jint(r, "parameters") <= jint(r, "elements"));
    ints_are(r, "channels", 2, chans);
    assert_int_equal(jbool(r, "post_quant_conv"), post_quant_conv);
    const latup_json *lv = jget(r, "levels", LATUP_JSON_ARRAY);
    assert_true(lv->u.kids.n >= 1 && jint(r, "resnets") >= 1);
    assert_int_equal(jint(r, "upsampling"), 1 << (lv->u.kids.n - 1));
    info_report(path, "vae", &doc);
}

/* A tensor file (.npy, PNG): its shape as the reader sees it. */
static void check_tensor_info(const char *path, const char *format, const char *label) {
    const char *a[] = {"info", path, "--json", NULL};
    latup_json_doc doc;
    const latup_json *r = json_of(a, &doc);
    keys_are(r, "file,format,kind,tensor");
    assert_string_equal(jstr(r, "file"), path);
    assert_string_equal(jstr(r, "format"), format);
    assert_string_equal(jstr(r, "kind"), "tensor");
    latup_tensor t;
    assert_int_equal(latup_tensor_read(path, NULL, &t, NULL), LATUP_OK);
    ints_are(r, "tensor", t.ndim, t.shape);
    latup_tensor_free(&t);
    json_report(label, &doc);
}

static void test_info_json(void **state) {
    (void)state;
    check_lua_info("ref_data/small/model.safetensors.gz", "lua", (const int64_t[]){16, 16}, 2, (const int64_t[]){2, 4});
    check_lua_info("ref_data/swinir/classic_x2.pth", "swinir", (const int64_t[]){3, 3}, 1, (const int64_t[]){2});
    check_vae_info("ref_data/vae/flux_small.ldm.safetensors.gz", "", (const int64_t[]){16, 3}, 0, "ldm");
    check_vae_info("ref_data/vae/sd_small.ldm_prefixed.safetensors.gz", "first_stage_model.", (const int64_t[]){4, 3}, 1,
                   "ldm");
    check_vae_info("ref_data/trained/vae.ldm.safetensors.gz", "", (const int64_t[]){16, 3}, 0, "patch");
    check_tensor_info("ref_data/demo/latent.npy", ".npy", "info ref_data/demo/latent.npy (tensor)");
    check_tensor_info("ref_data/swinir/image_21x19.png", "PNG", "info ref_data/swinir/image_21x19.png (tensor)");
    { /* a ComfyUI .latent: a checkpoint holding a latent */
        const char *path = "tests/data/latent/comfyui_flux_b2.latent";
        latup_json_doc doc;
        const latup_json *r = info_json(path, "latent", ",latent", &doc);
        ints_are(r, "latent", 4, (const int64_t[]){2, 16, 12, 10});
        info_report(path, "latent", &doc);
    }
    { /* a checkpoint that is no model: why, in "model" */
        const char *path = "ref_data/small/golden_pad.safetensors";
        latup_json_doc doc;
        const latup_json *r = info_json(path, "none", "", &doc);
        assert_true(!strncmp(jstr(r, "model"), "not a model latup runs", 22));
        info_report(path, "none", &doc);
    }
}

/* ---- --dry-run --json ----------------------------------------------------------------------------------- */

/* A memory plan: sizes in bytes, every take named and within the arena, the first one the
 * stage's first (the LUA's padded input; the VAE's first activation buffer, the slots coming
 * first). Returns its output size. */
static int64_t check_plan(const latup_json *stage, const char *first) {
    const latup_json *p = jget(stage, "plan", LATUP_JSON_OBJECT);
    keys_are(p, "arena,weights,output,takes");
    const int64_t arena = jint(p, "arena");
    assert_true(arena > 0 && jint(p, "weights") > 0 && jint(p, "output") > 0);
    const latup_json *takes = jget(p, "takes", LATUP_JSON_OBJECT);
    assert_true(takes->u.kids.n > 0);
    assert_string_equal(takes->u.kids.first->key, first);
    for (const latup_json *t = takes->u.kids.first; t; t = t->next) {
        const int64_t b = jint(takes, t->key);
        assert_true(t->key[0] != '\0' && b > 0 && b <= arena);
    }
    return jint(p, "output");
}

/* One item of a plan: the input as given, its shape as read, the memory of the whole call (the
 * process, both models, every tensor of the batch, the larger stage's arena: the library's
 * latup_call_memory) and its stages, whose numbers it adds up. */
static void check_item(const latup_json *it, const char *path, int upscale, int decode, int scale) {
    keys_are(it, upscale && decode ? "input,shape,peak,memory,output_shape,upscale,decode"
                 : upscale         ? "input,shape,peak,memory,output_shape,upscale"
                                   : "input,shape,peak,memory,output_shape,decode");
    assert_string_equal(jstr(it, "input"), path);
    latup_tensor x;
    assert_int_equal(latup_tensor_read(path, NULL, &x, NULL), LATUP_OK);
    ints_are(it, "shape", x.ndim, x.shape);
    const int64_t B = x.ndim == 4 ? x.shape[0] : 1, in = latup_tensor_numel(&x) * 4;
    const int64_t h = x.shape[x.ndim - 2], w = x.shape[x.ndim - 1];
    latup_tensor_free(&x);
    const int64_t peak = jint(it, "peak");
    const latup_json *m = jget(it, "memory", LATUP_JSON_OBJECT);
    keys_are(m, "process,weights,held,input,upscaled,image,upscale_arena,decode_arena,peak");
    assert_int_equal(jint(m, "peak"), peak);
    assert_int_equal(jint(m, "input"), in);
    const int64_t base = jint(m, "process") + jint(m, "weights") + jint(m, "held") + in, up = jint(m, "upscaled");
    assert_true(jint(m, "process") > 0);
    int64_t weights = 0, s1 = 0, s2 = 0;
    if (upscale) {
        const latup_json *u = jget(it, "upscale", LATUP_JSON_OBJECT);
        keys_are(u, "scale,plan");
        assert_int_equal(jint(u, "scale"), scale);
        const int64_t one = check_plan(u, "pad [C,Hp,Wp]");
        const latup_json *p = latup_json_get(u, "plan");
        assert_int_equal(up, B * one);
        assert_int_equal(jint(m, "upscale_arena"), jint(p, "arena"));
        weights += jint(p, "weights");
        s1 = base + up + jint(p, "arena");
    } else {
        assert_int_equal(up, 0);
    }
    if (decode) {
        const latup_json *d = jget(it, "decode", LATUP_JSON_OBJECT);
        keys_are(d, "h,w,tiled,tile,overlap,reason,peak,plan");
        const int f = upscale ? scale : 1;
        assert_int_equal(jint(d, "h"), h * f);
        assert_int_equal(jint(d, "w"), w * f);
        const int tiled = jbool(d, "tiled");
        assert_true(tiled ? jint(d, "tile") > 0 && jint(d, "overlap") > 0 && *jstr(d, "reason")
                          : jint(d, "tile") == 0 && jint(d, "overlap") == 0 && !*jstr(d, "reason"));
        const int64_t out = check_plan(d, "activation buffer 0");
        const latup_json *p = latup_json_get(d, "plan");
        if (!tiled) assert_int_equal(jint(m, "image"), B * out); /* a tile's output is one tile's */
        assert_int_equal(jint(m, "decode_arena"), jint(p, "arena"));
        weights += jint(p, "weights");
        s2 = base + up + jint(m, "image") + jint(p, "arena");
        assert_int_equal(jint(d, "peak"), s2);
    }
    printf("  item peak %lld = max(upscale stage %lld, decode stage %lld); weights %lld\n", (long long)peak,
           (long long)s1, (long long)s2, (long long)weights);
    assert_int_equal(jint(m, "weights"), weights);
    assert_int_equal(peak, s1 > s2 ? s1 : s2);
}

/* A dry run's whole plan: the command, its threads and budget, one item per input, and the top
 * peak the largest item's. */
static void check_dry_run(const char *label, const char *const *args, const char *cmd, int n, const char *const *inputs,
                          int scale) {
    latup_json_doc doc;
    const latup_json *r = json_of(args, &doc);
    keys_are(r, "command,threads,max_memory,peak,items");
    assert_string_equal(jstr(r, "command"), cmd);
    assert_int_equal(jint(r, "threads"), 2);
    assert_true(jint(r, "max_memory") > 0);
    const int64_t peak = jint(r, "peak");
    assert_true(peak > 1000000 && peak < ((int64_t)1 << 40)); /* no wrapped subtraction in it */
    const latup_json *items = jget(r, "items", LATUP_JSON_ARRAY);
    assert_int_equal(items->u.kids.n, n);
    int64_t top = 0;
    int i = 0;
    for (const latup_json *it = items->u.kids.first; it; it = it->next, i++) {
        assert_int_equal(it->type, LATUP_JSON_OBJECT);
        check_item(it, inputs[i], strcmp(cmd, "decode") != 0, strcmp(cmd, "upscale") != 0, scale);
        const int64_t p = jint(it, "peak");
        assert_true(p <= peak);
        if (p > top) top = p;
    }
    assert_int_equal(top, peak);
    json_report(label, &doc);
}

static void test_dry_run_json(void **state) {
    (void)state;
    const char *lua = "ref_data/small/model.safetensors.gz", *vae = "ref_data/vae/flux_small.ldm.safetensors.gz";
    const char *demo = "ref_data/demo/latent.npy", *b2 = "tests/data/latent/comfyui_flux_b2.latent";
    {
        const char *a[] = {"upscale", "-m", lua, "-s", "2", "-i", demo, "-o", tmp_path("never.npy"), "-t", "2",
                           "--dry-run", "--json", NULL};
        check_dry_run("upscale --dry-run --json", a, "upscale", 1, (const char *const[]){demo}, 2);
    }
    {
        const char *a[] = {"decode", "--vae", vae, "-i", demo, "-o", tmp_path("never.png"), "-t", "2", "--dry-run",
                           "--json", NULL};
        check_dry_run("decode --dry-run --json", a, "decode", 1, (const char *const[]){demo}, 1);
        const char *t[] = {"decode", "--vae", vae, "-i", demo, "-o", tmp_path("never.png"), "-t", "2", "--tile", "8",
                           "--dry-run", "--json", NULL};
        check_dry_run("decode --tile 8 --dry-run --json (tiled)", t, "decode", 1, (const char *const[]){demo}, 1);
        assert_non_null(strstr(g_json, "\"tiled\": true, \"tile\": 8, \"overlap\": 2"));
    }
    {
        const char *a[] = {"run", "-m", lua, "-s", "2", "--vae", vae, "-i", demo, "-o", tmp_path("never.png"), "-t", "2",
                           "--dry-run", "--json", NULL};
        check_dry_run("run --dry-run --json", a, "run", 1, (const char *const[]){demo}, 2);
    }
    { /* a batch: two inputs, one a batch of two itself */
        const char *a[] = {"run", "-m", lua, "-s", "2", "--vae", vae, "-i", demo, "-i", b2, "--out-dir", tmp_path("never"),
                           "-t", "2", "--dry-run", "--json", NULL};
        check_dry_run("run --dry-run --json, 2 inputs", a, "run", 2, (const char *const[]){demo, b2}, 2);
        const char *u[] = {"upscale", "-m", lua, "-s", "4", "-i", b2, "-i", demo, "--out-dir", tmp_path("never"), "-t", "2",
                           "--dry-run", "--json", NULL};
        check_dry_run("upscale --dry-run --json, 2 inputs", u, "upscale", 2, (const char *const[]){b2, demo}, 4);
    }
    assert_false(exists(tmp_path("never"))); /* nothing written, no directory made */
}

/* Names that JSON must escape: a quote, a backslash and a newline; bytes that are not UTF-8 (the
 * \udcXX of surrogateescape). Each comes back byte for byte, from the plan and from info. */
static void test_json_names(void **state) {
    (void)state;
    const char *names[] = {"x\xff\xfe.npy", "q\"b\\s\nl.npy", "a\xc3(\xe2\x82 \xed\xa0\x80 \xc3\xa9.npy"};
    char buf[3][512];
    const char *paths[3];
    size_t n;
    uint8_t *latent = slurp("ref_data/demo/latent.npy", &n);
    for (int i = 0; i < 3; i++) {
        snprintf(buf[i], sizeof buf[i], "%s/%s", g_dir, names[i]);
        paths[i] = buf[i];
        FILE *f = fopen(paths[i], "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(latent, 1, n, f), n);
        fclose(f);
    }
    free(latent);
    const char *vae = "ref_data/vae/flux_small.ldm.safetensors.gz";
    for (int i = 0; i < 3; i++) {
        const char *a[] = {"upscale", "-m", "ref_data/small/model.safetensors.gz", "-s", "2", "-i", paths[i], "-o",
                           tmp_path("never.npy"), "-t", "2", "--dry-run", "--json", NULL};
        char label[64];
        snprintf(label, sizeof label, "upscale --dry-run --json, odd name %d", i + 1);
        check_dry_run(label, a, "upscale", 1, &paths[i], 2);
        if (i == 0) assert_non_null(strstr(g_json, "x\\udcff\\udcfe.npy\""));
        if (i == 1) assert_non_null(strstr(g_json, "q\\\"b\\\\s\\u000al.npy\""));
        snprintf(label, sizeof label, "info --json, odd name %d", i + 1);
        check_tensor_info(paths[i], ".npy", label);
    }
    const char *d[] = {"decode", "--vae", vae, "-i", paths[0], "-i", paths[1], "-i", paths[2], "--out-dir", tmp_path("never"), "-t",
                       "2", "--dry-run", "--json", NULL};
    check_dry_run("decode --dry-run --json, 3 odd names", d, "decode", 3, paths, 1);
    free(g_json);
    g_json = NULL;
}

/* ---- option rules: slips named, sd.cpp's tiling options, warnings, a terminal on stdout --------------- */

/* The decode stage of a dry run's first item, as --json gives it. */
static const latup_json *dry_decode(const char *const *args, latup_json_doc *doc) {
    const latup_json *r = json_of(args, doc);
    const latup_json *items = jget(r, "items", LATUP_JSON_ARRAY);
    assert_true(items->u.kids.n >= 1);
    return jget(items->u.kids.first, "decode", LATUP_JSON_OBJECT);
}

static void expect_tiles(const char *label, const char *const *args, int tiled, int tile, int overlap) {
    latup_json_doc doc;
    const latup_json *d = dry_decode(args, &doc);
    const int got_tiled = jbool(d, "tiled");
    const int64_t t = jint(d, "tile"), o = jint(d, "overlap");
    printf("%-58s tiled %d, tile %lld, overlap %lld\n", label, got_tiled, (long long)t, (long long)o);
    assert_int_equal(got_tiled, tiled);
    if (tile >= 0) assert_int_equal(t, tile);
    if (overlap >= 0) assert_int_equal(o, overlap);
    latup_json_free(&doc);
}

static void test_option_rules(void **state) {
    (void)state;
    const char *lua = "ref_data/small/model.safetensors.gz", *vae = "ref_data/vae/flux_small.ldm.safetensors.gz";
    const char *demo = "ref_data/demo/latent.npy";
    char big[512], packed[512]; /* tmp_path's buffers rotate */
    snprintf(big, sizeof big, "%s", tmp_path("big72.npy"));
    snprintf(packed, sizeof packed, "%s", tmp_path("packed32.npy"));
    write_latent(big, 16, 72, 72, 0.5f); /* larger than --vae-tiling's 64 */
    { /* `-i in.npy out.png`: a usage error saying where the output goes */
        const char *a[] = {"run", "-m", lua, "-s", "2", "--vae", vae, "-i", demo, tmp_path("slip.png"), NULL};
        check_error(a, (expect){"-i IN OUT", 1, "-i (--in) takes one file"}, "slip.png");
        assert_non_null(strstr(g_stderr, "the output follows -o (--out)"));
    }
    {
        const char *a[] = {"decode", "--vae", vae, "-i", demo, "-o", tmp_path("t.png"), "--treads", "2", NULL};
        check_error(a, (expect){"--treads", 1, "unknown option '--treads'; did you mean --threads?"}, "t.png");
        const char *c[] = {"updcale", "-i", demo, NULL};
        check_error(c, (expect){"updcale", 1, "unknown command 'updcale'; did you mean 'upscale'?"}, NULL);
    }
    { /* upscale --max-memory: the budget of decode and run; an upscale does not tile */
        const char *a[] = {"upscale", "-m", lua, "-s", "2", "-i", demo, "-o", tmp_path("u.npy"), "--max-memory", "1K", NULL};
        check_error(a, (expect){"upscale --max-memory 1K", 3, "does not tile"}, "u.npy");
        const char *d[] = {"upscale", "-m", lua, "-s", "2", "-i", demo, "-o", tmp_path("u.npy"), "--max-memory", "3G",
                           "--dry-run", "--json", NULL};
        latup_json_doc doc;
        assert_int_equal(jint(json_of(d, &doc), "max_memory"), 3LL << 30);
        latup_json_free(&doc);
    }
    { /* stable-diffusion.cpp's tiling options, and overlaps as fractions */
        const char *t[] = {"decode", "--vae", vae, "-i", big, "-o", tmp_path("t.png"), "--vae-tiling", "--dry-run",
                           "--json", NULL};
        expect_tiles("--vae-tiling (72x72 latent)", t, 1, 64, 16);
        const char *f[] = {"decode", "--vae", vae, "-i", big, "-o", tmp_path("t.png"), "--vae-tiling", "--overlap", "0.5",
                           "--dry-run", "--json", NULL};
        expect_tiles("--vae-tiling --overlap 0.5", f, 1, 64, 32);
        const char *s[] = {"run", "-m", lua, "-s", "2", "--vae", vae, "-i", demo, "-o", tmp_path("t.png"),
                           "--vae-tile-size", "16x16", "--overlap", ".25", "--dry-run", "--json", NULL};
        expect_tiles("run --vae-tile-size 16x16 --overlap .25", s, 1, 16, 4);
        const char *r[] = {"decode", "--vae", vae, "-i", big, "-o", tmp_path("t.png"), "--vae-tile-size", "16x8", NULL};
        check_error(r, (expect){"--vae-tile-size 16x8", 1, "tiles are square"}, "t.png");
        const char *o[] = {"decode", "--vae", vae, "-i", big, "-o", tmp_path("t.png"), "--vae-tile-size", "16x16",
                           "--overlap", "16", NULL};
        check_error(o, (expect){"--vae-tile-size 16x16 --overlap 16", 1, "must be smaller than the tile, 16"}, "t.png");
        const char *n[] = {"decode", "--vae", vae, "-i", big, "-o", tmp_path("t.png"), "--overlap", "0.25", NULL};
        check_error(n, (expect){"--overlap 0.25 without a tile", 1, "needs a tile size"}, "t.png");
    }
    { /* --overlap without a tile size: the tiles chosen over --max-memory use it */
        const char *e[] = {"decode", "--vae", vae, "-i", big, "-o", tmp_path("t.png"), "--overlap", "4", "--dry-run",
                           "--json", NULL};
        latup_json_doc doc;
        const latup_json *d = dry_decode(e, &doc);
        assert_false(jbool(d, "tiled")); /* it fits: exact, nothing to overlap */
        char budget[32];
        snprintf(budget, sizeof budget, "%lld", (long long)jint(d, "peak") - 1);
        latup_json_free(&doc);
        const char *a[] = {"decode", "--vae", vae, "-i", big, "-o", tmp_path("t.png"), "--overlap", "4", "--max-memory",
                           budget, "--dry-run", "--json", NULL};
        expect_tiles("--overlap 4 --max-memory (exact - 1): automatic tiles", a, 1, -1, 4);
        const char *b[] = {"decode", "--vae", vae, "-i", big, "-o", tmp_path("t.png"), "--max-memory", budget, "--dry-run",
                           "--json", NULL};
        expect_tiles("--max-memory (exact - 1), no --overlap: T/4", b, 1, -1, -1);
        assert_int_not_equal(jint(dry_decode(b, &doc), "overlap"), 4);
        latup_json_free(&doc);
    }
    { /* --flux-packed without --diffusion-latent: it runs, and one warning says the colours will be wrong */
        latup_tensor z;
        assert_int_equal(latup_tensor_read(demo, NULL, &z, NULL), LATUP_OK);
        write_packed(packed, z.data, 16, (int)z.shape[z.ndim - 2], (int)z.shape[z.ndim - 1], 1.0f, 0.0f);
        char hw[32];
        snprintf(hw, sizeof hw, "%lldx%lld", (long long)z.shape[z.ndim - 2], (long long)z.shape[z.ndim - 1]);
        latup_tensor_free(&z);
        const char *a[] = {"decode", "--vae", vae, "-i", packed, "--flux-packed", hw, "-o", tmp_path("p.png"), "--dry-run", NULL};
        assert_int_equal(run_latup(a), 0);
        printf("--flux-packed alone: %s", g_stderr);
        assert_int_equal(count_lines(g_stderr), 1);
        assert_non_null(strstr(g_stderr, "warning: --flux-packed without --diffusion-latent"));
        const char *b[] = {"decode", "--vae", vae, "-i", packed, "--flux-packed", hw, "--diffusion-latent", "flux", "-o",
                           tmp_path("p.png"), "--dry-run", NULL};
        assert_int_equal(run_latup(b), 0);
        assert_string_equal(g_stderr, "");
        const char *q[] = {"decode", "--vae", vae, "-i", packed, "--flux-packed", hw, "-o", tmp_path("p.png"), "--dry-run", "-q", NULL};
        assert_int_equal(run_latup(q), 0);
        assert_string_equal(g_stderr, "");
        /* a failing command prints its error alone */
        const char *f[] = {"decode", "--vae", vae, "-i", tmp_path("none.npy"), "--flux-packed", hw, "-o", tmp_path("p.png"), NULL};
        check_error(f, (expect){"--flux-packed, missing input", 4, "none.npy"}, "p.png");
    }
    { /* more threads than CPUs: a warning; as many: none */
        char many[32];
        snprintf(many, sizeof many, "%ld", sysconf(_SC_NPROCESSORS_ONLN) + 1);
        const char *a[] = {"upscale", "-m", lua, "-s", "2", "-i", demo, "-o", tmp_path("u.npy"), "-t", many, "--dry-run", NULL};
        assert_int_equal(run_latup(a), 0);
        printf("-t %s: %s", many, g_stderr);
        assert_int_equal(count_lines(g_stderr), 1);
        assert_non_null(strstr(g_stderr, "warning: --threads"));
        assert_non_null(strstr(g_stderr, "slower, not faster"));
        const char *b[] = {"upscale", "-m", lua, "-s", "2", "-i", demo, "-o", tmp_path("u.npy"), "-t", "1", "--dry-run", NULL};
        assert_int_equal(run_latup(b), 0);
        assert_string_equal(g_stderr, "");
    }
    { /* `-o -` on a terminal: refused before anything is read; redirected, it works (test_pipes_stdin_stdout) */
        const int m = posix_openpt(O_RDWR | O_NOCTTY);
        if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0 || !ptsname(m)) {
            printf("no pseudo-terminal here (%s): `-o -` on a terminal not checked\n", strerror(errno));
        } else {
            char tty[128];
            snprintf(tty, sizeof tty, "%s", ptsname(m));
            const char *a[] = {"decode", "--vae", vae, "-i", demo, "-o", "-", NULL};
            const int rc = run_cli_io(g_dir, a, NULL, NULL, tty, g_stderr, sizeof g_stderr);
            printf("decode -o - on %s: exit %d: %s", tty, rc, g_stderr);
            assert_int_equal(rc, 1);
            assert_int_equal(count_lines(g_stderr), 1);
            assert_non_null(strstr(g_stderr, "standard output is a terminal"));
            const char *u[] = {"upscale", "-m", lua, "-s", "2", "-i", demo, "-o", "-", NULL};
            assert_int_equal(run_cli_io(g_dir, u, NULL, NULL, tty, g_stderr, sizeof g_stderr), 1);
            assert_non_null(strstr(g_stderr, "standard output is a terminal"));
        }
        if (m >= 0) close(m);
    }
}

static void test_version_and_help(void **state) {
    (void)state;
    char out[600];
    snprintf(out, sizeof out, "%s/v.txt", g_dir);
    const char *v[] = {"--version", NULL};
    assert_int_equal(run_cli_io(g_dir, v, NULL, NULL, out, g_stderr, sizeof g_stderr), 0);
    size_t n;
    char *t = (char *)slurp(out, &n);
    t[n] = '\0';
    char want[64];
    snprintf(want, sizeof want, "latup %s (library %s)\n", LATUP_VERSION_STRING, latup_version());
    assert_string_equal(t, want);
    free(t);
    const char *cmds[] = {"upscale", "decode", "run", "info", "compare"};
    for (int i = 0; i < 5; i++) {
        const char *h[] = {"help", cmds[i], NULL};
        assert_int_equal(run_cli_io(g_dir, h, NULL, NULL, out, g_stderr, sizeof g_stderr), 0);
        t = (char *)slurp(out, &n);
        t[n] = '\0';
        char usage[64];
        snprintf(usage, sizeof usage, "usage: latup %s ", cmds[i]);
        assert_true(strncmp(t, usage, strlen(usage)) == 0);
        free(t);
    }
    const char *bad[] = {"help", "frobnicate", NULL};
    assert_int_equal(run_latup(bad), 1);
}

/* ---- latup encode and latup eval (issue 22) -------------------------------------------------------------- */
#define T_VAE "ref_data/trained/vae.ldm.safetensors.gz"
#define T_LUA "ref_data/trained/lua_x2x4.safetensors.gz"
#define T_SWINIR "ref_data/trained/swinir_x2.safetensors.gz"

/* The [3,h,w] window at (y, x) of the demo photo ([0,1], k/255 as read). */
static void photo_crop(latup_tensor *t, int y, int x, int h, int w) {
    latup_tensor gt;
    assert_int_equal(latup_png_read("ref_data/trained/demo_gt.png", &gt), LATUP_OK);
    const int64_t s[3] = {3, h, w};
    assert_int_equal(latup_tensor_alloc(t, 3, s), LATUP_OK);
    const int H = (int)gt.shape[1], W = (int)gt.shape[2];
    assert_true(y + h <= H && x + w <= W);
    for (int c = 0; c < 3; c++)
        for (int r = 0; r < h; r++)
            memcpy(t->data + ((size_t)c * h + r) * w, gt.data + ((size_t)c * H + y + r) * W + x, sizeof(float) * (size_t)w);
    latup_tensor_free(&gt);
}

/* A [3,8,8] image with one value at 1.5: out of either range. */
static void write_hot_image(const char *path) {
    latup_tensor t;
    const int64_t s[3] = {3, 8, 8};
    assert_int_equal(latup_tensor_alloc(&t, 3, s), LATUP_OK);
    t.data[5] = 1.5f;
    assert_int_equal(latup_npy_write(path, &t), LATUP_OK);
    latup_tensor_free(&t);
}

static int same_npy(const char *path, const latup_tensor *want) {
    latup_tensor t;
    assert_int_equal(latup_npy_read(path, &t), LATUP_OK);
    const int same = t.ndim == want->ndim && !memcmp(t.shape, want->shape, sizeof t.shape) &&
                     !memcmp(t.data, want->data, sizeof(float) * (size_t)latup_tensor_numel(want));
    latup_tensor_free(&t);
    return same;
}

static void test_encode(void **state) {
    (void)state;
    char png[300], npy_u[300], npy_s[300], hot[300], z[300], dir[300];
    snprintf(png, sizeof png, "%s", tmp_path("crop.png"));
    snprintf(npy_u, sizeof npy_u, "%s", tmp_path("crop_u.npy"));
    snprintf(npy_s, sizeof npy_s, "%s", tmp_path("crop_s.npy"));
    snprintf(hot, sizeof hot, "%s", tmp_path("hot.npy"));
    snprintf(z, sizeof z, "%s", tmp_path("z.npy"));
    snprintf(dir, sizeof dir, "%s", tmp_path("zdir"));
    /* a 45x37 window of the photo: neither side a multiple of 8 */
    latup_tensor img = {0}, x = {0}, ref = {0}, fam = {0};
    photo_crop(&img, 200, 180, 37, 45);
    assert_int_equal(latup_png_write(png, &img, LATUP_PIXELS_UNIT, 8), LATUP_OK);
    assert_int_equal(latup_npy_write(npy_u, &img), LATUP_OK);
    assert_int_equal(latup_tensor_alloc(&x, 3, img.shape), LATUP_OK);
    for (int64_t i = 0; i < latup_tensor_numel(&x); i++) x.data[i] = 2.0f * img.data[i] - 1.0f;
    assert_int_equal(latup_npy_write(npy_s, &x), LATUP_OK);
    latup_vae *v = NULL;
    assert_int_equal(latup_vae_load_parts(T_VAE, LATUP_VAE_ENCODER, &v), LATUP_OK);
    assert_int_equal(latup_vae_encode(v, &x, &ref, NULL), LATUP_OK);
    assert_int_equal(ref.ndim, 3);
    assert_true(ref.shape[0] == 16 && ref.shape[1] == 4 && ref.shape[2] == 5); /* floor(37/8) x floor(45/8) */
    /* a PNG, a unit .npy and a signed .npy of the same pixels: the library's latent, bit for bit */
    const char *a1[] = {"encode", "--vae", T_VAE, "-i", png, "-o", z, NULL};
    assert_int_equal(run_latup(a1), 0);
    printf("encode: %s", g_stderr);
    assert_non_null(strstr(g_stderr, "crop.png: 45x37 is not a multiple of 8: the 5x4 latent covers the top-left 40x32 pixels"));
    assert_true(same_npy(z, &ref));
    const char *a2[] = {"encode", "--vae", T_VAE, "-i", npy_u, "--range", "unit", "-o", z, "-q", NULL};
    assert_int_equal(run_latup(a2), 0);
    assert_string_equal(g_stderr, "");
    assert_true(same_npy(z, &ref));
    const char *a3[] = {"encode", "--vae", T_VAE, "-i", npy_s, "--range", "signed", "-o", z, "-q", NULL};
    assert_int_equal(run_latup(a3), 0);
    assert_true(same_npy(z, &ref));
    /* the diffusion model's space: (z - shift) * scaling */
    assert_int_equal(latup_tensor_alloc(&fam, 3, ref.shape), LATUP_OK);
    memcpy(fam.data, ref.data, sizeof(float) * (size_t)latup_tensor_numel(&ref));
    latup_latent_from_vae(&fam, latup_latent_family_find("flux"));
    const char *a4[] = {"encode", "--vae", T_VAE, "-i", png, "--diffusion-latent", "flux", "-o", z, "-q", NULL};
    assert_int_equal(run_latup(a4), 0);
    assert_true(same_npy(z, &fam));
    /* a posterior draw: seeded (the same twice), not the mean, another seed another draw */
    const char *a5[] = {"encode", "--vae", T_VAE, "-i", png, "--sample", "--seed", "7", "-o", z, "-q", NULL};
    assert_int_equal(run_latup(a5), 0);
    latup_tensor d7;
    assert_int_equal(latup_npy_read(z, &d7), LATUP_OK);
    assert_int_equal(run_latup(a5), 0);
    assert_true(same_npy(z, &d7));
    assert_false(same_npy(z, &ref));
    const char *a6[] = {"encode", "--vae", T_VAE, "-i", png, "--sample", "--seed", "8", "-o", z, "-q", NULL};
    assert_int_equal(run_latup(a6), 0);
    assert_false(same_npy(z, &d7));
    latup_tensor_free(&d7);
    /* tiles of 4 latent pixels over a 64x72 image: announced; the patch code sees no neighbours, so
     * the blend gives the exact latent back up to rounding */
    latup_tensor big = {0}, zb = {0}, zt = {0};
    photo_crop(&big, 100, 100, 64, 72);
    assert_int_equal(latup_png_write(png, &big, LATUP_PIXELS_UNIT, 8), LATUP_OK);
    for (int64_t i = 0; i < latup_tensor_numel(&big); i++) big.data[i] = 2.0f * big.data[i] - 1.0f;
    assert_int_equal(latup_vae_encode(v, &big, &zb, NULL), LATUP_OK);
    const char *a7[] = {"encode", "--vae", T_VAE, "-i", png, "--tile", "4", "-o", z, NULL};
    assert_int_equal(run_latup(a7), 0);
    assert_non_null(strstr(g_stderr, "encoding in tiles of 4 latent pixels"));
    assert_int_equal(latup_npy_read(z, &zt), LATUP_OK);
    double m = 0;
    for (int64_t i = 0; i < latup_tensor_numel(&zb); i++) m = fmax(m, fabs((double)zt.data[i] - zb.data[i]));
    printf("encode --tile 4 (64x72, patch code): max |tiled - exact| = %.3e (tol 1e-5)\n", m);
    assert_true(m <= 1e-5);
    /* all or none: a second input out of its range leaves no first latent behind */
    write_hot_image(hot);
    const char *a8[] = {"encode", "--vae", T_VAE, "-i", png, "-i", hot, "--range", "unit", "--out-dir", dir, NULL};
    assert_int_equal(run_latup(a8), LATUP_E_INPUT);
    assert_false(exists(tmp_path("zdir/crop.npy")));
    /* --dry-run --json: the plan, read back */
    const char *a9[] = {"encode", "--vae", T_VAE, "-i", png, "-o", z, "--dry-run", "--json", "--max-memory", "1G", NULL};
    latup_json_doc doc;
    const latup_json *r = json_of(a9, &doc);
    keys_are(r, "command,threads,max_memory,peak,items");
    assert_string_equal(jstr(r, "command"), "encode");
    assert_int_equal(jint(r, "max_memory"), 1 << 30);
    const latup_json *it = jget(r, "items", LATUP_JSON_ARRAY)->u.kids.first;
    keys_are(it, "input,shape,tiled,tile,overlap,reason,arena,weights,peak");
    ints_are(it, "shape", 3, (const int64_t[]){3, 64, 72});
    assert_int_equal(jbool(it, "tiled"), 0);
    assert_true(jint(it, "peak") > 0 && jint(it, "peak") <= jint(r, "peak"));
    json_report("encode --dry-run --json", &doc);
    latup_tensor *ts[] = {&img, &x, &ref, &fam, &big, &zb, &zt};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) latup_tensor_free(ts[i]);
    latup_vae_free(v);
}

/* The 8-bit RGB of a PNG, as eval scores it. */
static uint8_t *png_bytes(const char *path, int *H, int *W) {
    latup_tensor t;
    assert_int_equal(latup_png_read(path, &t), LATUP_OK);
    *H = (int)t.shape[1], *W = (int)t.shape[2];
    uint8_t *b = malloc((size_t)3 * *H * *W);
    assert_int_equal(latup_image_to_rgb8(&t, LATUP_PIXELS_UNIT, b), LATUP_OK);
    latup_tensor_free(&t);
    return b;
}

/* eval on a folder of two photo windows: the JSON read back by
 * latup's parser, each number recomputed from the --save images (so the saved set is what was
 * scored; a 96x96 window and a 100x90 one cropped to 96x80: latents of 6x6 and 6x5 at x2, the
 * LUA's least is 5x5), mean and median from the rows, the ground truth the top-left crop, the vae path the
 * library's encode + decode; the table's rows. */
static void test_eval(void **state) {
    (void)state;
    char dir[300], save[300], p[400];
    snprintf(dir, sizeof dir, "%s", tmp_path("photos"));
    snprintf(save, sizeof save, "%s", tmp_path("saved"));
    assert_int_equal(mkdir(dir, 0755), 0);
    latup_tensor a = {0}, b = {0};
    photo_crop(&a, 240, 200, 96, 96);
    photo_crop(&b, 100, 300, 90, 100);
    snprintf(p, sizeof p, "%s/b.png", dir);
    assert_int_equal(latup_png_write(p, &b, LATUP_PIXELS_UNIT, 8), LATUP_OK);
    snprintf(p, sizeof p, "%s/a.png", dir);
    assert_int_equal(latup_png_write(p, &a, LATUP_PIXELS_UNIT, 8), LATUP_OK);
    snprintf(p, sizeof p, "%s/notes.txt", dir); /* not a PNG: not read */
    FILE *f = fopen(p, "w");
    fputs("x", f), fclose(f);
    const char *args[] = {"eval", "--vae", T_VAE, "-m", T_LUA, "--pixel-model", T_SWINIR, "--save", save, "--json", "-",
                          "--quiet", dir, NULL};
    latup_json_doc doc;
    const latup_json *r = json_of(args, &doc);
    keys_are(r, "command,scale,vae,model,pixel_model,threads,paths,images,mean,median");
    assert_int_equal(jint(r, "scale"), 2);
    const char *paths[4] = {"vae", "bicubic", "lua", "pixel"};
    const latup_json *imgs = jget(r, "images", LATUP_JSON_ARRAY);
    assert_int_equal(imgs->u.kids.n, 2);
    double sum[4][2] = {{0}}, vals[4][2][2];
    int k = 0, checked = 0;
    for (const latup_json *e = imgs->u.kids.first; e; e = e->next, k++) {
        keys_are(e, "image,name,size,tiled,encode_seconds,vae,bicubic,lua,pixel");
        const char *name = jstr(e, "name");
        assert_string_equal(name, k ? "b" : "a"); /* a folder's PNGs by name */
        ints_are(e, "size", 2, k ? (const int64_t[]){96, 80} : (const int64_t[]){96, 96});
        int H, W, h, w;
        snprintf(p, sizeof p, "%s/%s_gt.png", save, name);
        uint8_t *gt = png_bytes(p, &H, &W);
        assert_true(H == (k ? 80 : 96) && W == 96);
        for (int y = 0; y < H; y++) /* the top-left crop of the photo window */
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) {
                    const latup_tensor *src = k ? &b : &a;
                    const float v = src->data[((size_t)c * src->shape[1] + y) * src->shape[2] + x];
                    checked += gt[((size_t)y * W + x) * 3 + c] == (uint8_t)(v * 255.0f + 0.5f);
                }
        for (int q = 0; q < 4; q++) {
            const latup_json *o = jget(e, paths[q], LATUP_JSON_OBJECT);
            keys_are(o, "psnr,ssim,seconds");
            snprintf(p, sizeof p, "%s/%s_%s.png", save, name, paths[q]);
            uint8_t *img = png_bytes(p, &h, &w);
            assert_true(h == H && w == W);
            const double ps = jget(o, "psnr", LATUP_JSON_REAL)->u.d, ss = jget(o, "ssim", LATUP_JSON_REAL)->u.d;
            assert_true(ps == im_psnr(img, gt, H, W) && ss == im_ssim(img, gt, H, W));
            assert_true(jget(o, "seconds", LATUP_JSON_REAL)->u.d >= 0);
            sum[q][0] += ps, sum[q][1] += ss, vals[q][k][0] = ps, vals[q][k][1] = ss;
            free(img);
        }
        free(gt);
    }
    assert_int_equal(checked, 3 * 96 * 96 + 3 * 80 * 96);
    const latup_json *mean = jget(r, "mean", LATUP_JSON_OBJECT), *median = jget(r, "median", LATUP_JSON_OBJECT);
    keys_are(mean, "vae,bicubic,lua,pixel");
    for (int q = 0; q < 4; q++) {
        const latup_json *m = jget(mean, paths[q], LATUP_JSON_OBJECT), *d = jget(median, paths[q], LATUP_JSON_OBJECT);
        assert_true(fabs(jget(m, "psnr", LATUP_JSON_REAL)->u.d - sum[q][0] / 2) < 1e-12);
        assert_true(fabs(jget(m, "ssim", LATUP_JSON_REAL)->u.d - sum[q][1] / 2) < 1e-12);
        assert_true(fabs(jget(d, "psnr", LATUP_JSON_REAL)->u.d - (vals[q][0][0] + vals[q][1][0]) / 2) < 1e-12);
    }
    printf("eval: a.png lua %.2f dB vs bicubic %.2f dB, vae ceiling %.2f dB\n", vals[2][0][0], vals[1][0][0],
           vals[0][0][0]);
    json_report("eval --json -", &doc);
    /* the vae path is the library's encode and decode of the ground truth (2x - 1) */
    {
        latup_vae *v = NULL;
        latup_tensor x = {0}, z = {0}, y = {0};
        assert_int_equal(latup_vae_load(T_VAE, &v), LATUP_OK);
        assert_int_equal(latup_tensor_alloc(&x, 3, a.shape), LATUP_OK);
        for (int64_t i = 0; i < latup_tensor_numel(&a); i++) x.data[i] = 2.0f * a.data[i] - 1.0f;
        assert_int_equal(latup_vae_encode(v, &x, &z, NULL), LATUP_OK);
        assert_int_equal(latup_vae_decode(v, &z, &y, NULL), LATUP_OK);
        uint8_t *mine = malloc(3 * 96 * 96);
        assert_int_equal(latup_image_to_rgb8(&y, LATUP_PIXELS_SIGNED, mine), LATUP_OK);
        int H, W;
        snprintf(p, sizeof p, "%s/a_vae.png", save);
        uint8_t *saved = png_bytes(p, &H, &W);
        assert_memory_equal(mine, saved, 3 * 96 * 96);
        free(mine), free(saved);
        latup_tensor_free(&x), latup_tensor_free(&z), latup_tensor_free(&y);
        latup_vae_free(v);
    }
    /* the table: a header, the two images, mean, median, seconds, the note */
    const char *t[] = {"eval", "--vae", T_VAE, "-m", T_LUA, dir, NULL};
    assert_int_equal(run_cli_io(g_dir, t, NULL, NULL, tmp_path("table.txt"), g_stderr, sizeof g_stderr), 0);
    size_t n;
    char *text = (char *)slurp(tmp_path("table.txt"), &n);
    text[n] = '\0';
    printf("%s", text);
    assert_int_equal(count_lines(text), 8);
    assert_non_null(strstr(text, "\nmean "));
    assert_non_null(strstr(text, "\nmedian "));
    assert_null(strstr(text, "pixel")); /* no --pixel-model, no pixel path */
    free(text);
    latup_tensor_free(&a), latup_tensor_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upscale_golden),
        cmocka_unit_test(test_swinir_png_and_npy),
        cmocka_unit_test(test_decode_and_run),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_help_and_info),
        cmocka_unit_test(test_pipes_stdin_stdout),
        cmocka_unit_test(test_comfyui_latent_bit_identical),
        cmocka_unit_test(test_batches_and_inputs),
        cmocka_unit_test(test_png16),
        cmocka_unit_test(test_dump_and_compare),
        cmocka_unit_test(test_compare_order), cmocka_unit_test(test_compare_many), cmocka_unit_test(test_compare_nonfinite),
        cmocka_unit_test(test_info_json),
        cmocka_unit_test(test_dry_run_json),
        cmocka_unit_test(test_json_names),
        cmocka_unit_test(test_version_and_help),
        cmocka_unit_test(test_option_rules),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_eval),
    };
    return cmocka_run_group_tests(tests, setup, remove_dir);
}
