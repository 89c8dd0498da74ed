/* test_cli.c — build/latup end to end: `latup upscale` on every committed golden case must
 * reproduce the PyTorch outputs within tolerance (one report line per output), and every error
 * path must give one line on stderr, the documented exit code, and no output file. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "golden.h"
#include "cli_util.h"
#include "latup.h"
#include "io/png.h"


static char g_tmp[256];     /* per-run scratch directory */
static char g_stderr[4096]; /* what the last command printed on stderr */

static int run_latup(const char *const *args) { return run_cli(g_tmp, args, g_stderr, sizeof g_stderr); }

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* No file named <base> or <base>.tmp.* is left in g_tmp. */
static int leftovers(const char *base) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s 2>/dev/null | grep -q '^%s'", g_tmp, base);
    return system(cmd) == 0;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int setup(void **state) {
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/latup_cli_XXXXXX");
    assert_non_null(mkdtemp(g_tmp));
    assert_true(exists(LATUP_BIN));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- outputs match the reference ------------------------------------------------------------- */
static void test_upscale_golden(void **state) {
    (void)state;
    int bad = 0, lines = 0;
    for (int i = 0; i < N_GOLDEN_CASES; i++) {
        const golden_case *gc = &GOLDEN_CASES[i];
        latup_weights g = {0};
        assert_int_equal(latup_safetensors_load(gc->golden, &g), LATUP_OK);
        const latup_wtensor *in = latup_weights_find(&g, "input");
        assert_non_null(in);
        latup_tensor x = {.data = in->f32, .ndim = 4};
        memcpy(x.shape, in->shape, sizeof x.shape);
        char inpath[300], outpath[300];
        snprintf(inpath, sizeof inpath, "%s/in.npy", g_tmp);
        snprintf(outpath, sizeof outpath, "%s/out.npy", g_tmp);
        assert_int_equal(latup_npy_write(inpath, &x), LATUP_OK);
        for (int s = 2; s <= 4; s *= 2) {
            char oname[16], sc[4];
            snprintf(oname, sizeof oname, "out.x%d", s);
            snprintf(sc, sizeof sc, "%d", s);
            const latup_wtensor *ref = latup_weights_find(&g, oname);
            if (!ref) continue;
            const char *args[] = {"upscale", "--model", gc->model, "--scale", sc, "--in", inpath,
                                  "--out", outpath, "--threads", "2", "--quiet", NULL};
            int rc = run_latup(args);
            if (rc != 0) printf("latup failed (%d): %s", rc, g_stderr);
            assert_int_equal(rc, 0);
            assert_string_equal(g_stderr, ""); /* --quiet */
            latup_tensor y;
            assert_int_equal(latup_npy_read(outpath, &y), LATUP_OK);
            assert_int_equal(y.ndim, ref->ndim);
            for (int d = 0; d < y.ndim; d++) assert_int_equal(y.shape[d], ref->shape[d]);
            golden_stats st = {0};
            golden_stats_add(&st, y.data, ref->f32, (size_t)ref->numel);
            char label[64];
            snprintf(label, sizeof label, "cli %s", oname);
            bad += !golden_report(gc->name, label, &st, golden_tol_for(oname)->tol);
            lines++;
            latup_tensor_free(&y);
            unlink(outpath);
        }
        latup_weights_free(&g);
    }
    assert_true(lines >= 6);
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
    snprintf(out, sizeof out, "%s/sw.npy", g_tmp);
    snprintf(outpng, sizeof outpng, "%s/sw.png", g_tmp);
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
    snprintf(in, sizeof in, "%s/z.npy", g_tmp);
    snprintf(out, sizeof out, "%s/img.npy", g_tmp);
    snprintf(png, sizeof png, "%s/img.png", g_tmp);
    snprintf(packed, sizeof packed, "%s/packed.npy", g_tmp);
    snprintf(lat, sizeof lat, "%s/up.npy", g_tmp);
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
    snprintf(good, sizeof good, "%s/good.npy", g_tmp);
    snprintf(c4, sizeof c4, "%s/c4.npy", g_tmp);
    snprintf(nan, sizeof nan, "%s/nan.npy", g_tmp);
    snprintf(out, sizeof out, "%s/result.npy", g_tmp);
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.safetensors", g_tmp);
    snprintf(noout, sizeof noout, "%s/no/such/dir/result.npy", g_tmp);
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
    /* a successful run without --quiet says what it did, in one line */
    char good[300], out[300];
    snprintf(good, sizeof good, "%s/ok.npy", g_tmp);
    snprintf(out, sizeof out, "%s/ok_out.npy", g_tmp);
    write_latent(good, 16, 13, 11, 0.5f);
    const char *a[] = {"upscale", "--model", GOLDEN_CASES[0].model, "--scale", "4", "--in", good, "--out", out, NULL};
    assert_int_equal(run_latup(a), 0);
    assert_int_equal(count_lines(g_stderr), 1);
    assert_true(exists(out));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upscale_golden),
        cmocka_unit_test(test_swinir_png_and_npy),
        cmocka_unit_test(test_decode_and_run),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_help_and_info),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
