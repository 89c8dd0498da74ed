/* test_vae_folder.c — `--vae DIR` and latup_vae_load on diffusers folders, as
 * AutoencoderKL.from_pretrained takes them: a VAE folder (config.json + safetensors) and a
 * pipeline's root holding vae/ (config.json + a torch.save .bin), built here from the committed
 * small VAEs and the config.json files tools/golden/make_diffusers_folders.py wrote from the
 * reference's config (tests/data/diffusers/). Checked: the decoder equals the same weights loaded
 * as a file, bit for bit; config.json's scaling_factor/shift_factor are the latent space; which
 * weights file wins; every refusal names the folder and what is missing or wrong; and the CLI's
 * --diffusion-latent vae, a named family against the folder's config (the config wins, with a
 * warning) and what --verbose prints. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli_util.h"
#include "tmpdir.h"

#include "io/fileio.h"
#include "latup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FLUX_FILE "ref_data/vae/flux_small.diffusers.safetensors.gz"
#define SD_PTH "ref_data/vae/sd_small.ldm.pth.gz" /* a torch.save zip: what a diffusers .bin is */

static char g_err[4096];

static void write_file(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* dst = src's content (a gzip'd source inflated: the folder holds the plain file, as diffusers writes it) */
static void copy_file(const char *src, const char *dst) {
    uint8_t *b;
    size_t n;
    assert_int_equal(latup_read_file(src, (size_t)1 << 30, &b, &n), LATUP_OK);
    write_file(dst, b, n);
    free(b);
}

static const char *in_dir(const char *dir, const char *name) {
    static char buf[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* tmp/flux: config.json (committed) + diffusion_pytorch_model.safetensors */
static const char *flux_folder(void) {
    const char *d = tmp_path("flux");
    mkdir(d, 0755);
    copy_file("tests/data/diffusers/flux_small/config.json", in_dir(d, "config.json"));
    copy_file(FLUX_FILE, in_dir(d, "diffusion_pytorch_model.safetensors"));
    return d;
}

/* tmp/pipe: model_index.json + vae/config.json + vae/diffusion_pytorch_model.bin */
static const char *sd_pipeline(void) {
    const char *d = tmp_path("pipe");
    mkdir(d, 0755);
    mkdir(in_dir(d, "vae"), 0755);
    copy_file("tests/data/diffusers/sd_small_pipeline/model_index.json", in_dir(d, "model_index.json"));
    copy_file("tests/data/diffusers/sd_small_pipeline/vae/config.json", in_dir(d, "vae/config.json"));
    copy_file(SD_PTH, in_dir(d, "vae/diffusion_pytorch_model.bin"));
    return d;
}

static void expect_same_decode(const latup_vae *a, const latup_vae *b, int zc) {
    int64_t shape[3] = {zc, 6, 5};
    latup_tensor z, ia, ib;
    assert_int_equal(latup_tensor_alloc(&z, 3, shape), LATUP_OK);
    for (int64_t i = 0; i < latup_tensor_numel(&z); i++) z.data[i] = sinf(0.37f * (float)i);
    assert_int_equal(latup_vae_decode(a, &z, &ia, NULL), LATUP_OK);
    assert_int_equal(latup_vae_decode(b, &z, &ib, NULL), LATUP_OK);
    assert_int_equal(latup_tensor_numel(&ia), latup_tensor_numel(&ib));
    assert_memory_equal(ia.data, ib.data, (size_t)latup_tensor_numel(&ia) * sizeof(float));
    printf("folder and file decode [%d,6,5] -> [3,%lld,%lld] bit for bit\n", zc, (long long)ia.shape[1],
           (long long)ia.shape[2]);
    latup_tensor_free(&z), latup_tensor_free(&ia), latup_tensor_free(&ib);
}

/* A VAE folder: the same decoder as the file, and config.json's latent space. */
static void test_vae_folder(void **state) {
    (void)state;
    const char *d = flux_folder();
    latup_vae *v, *f;
    latup_status st = latup_vae_load(d, &v);
    if (st) print_error("%s\n", latup_last_error());
    assert_int_equal(st, LATUP_OK);
    assert_int_equal(latup_vae_load(FLUX_FILE, &f), LATUP_OK);
    const latup_vae_config *c = latup_vae_get_config(v);
    assert_int_equal(c->z_channels, 16);
    assert_int_equal(c->naming, LATUP_VAE_NAMES_DIFFUSERS);
    assert_int_equal(c->n_params, latup_vae_get_config(f)->n_params);
    const latup_latent_family *fam = latup_vae_latent_family(v);
    assert_non_null(fam);
    printf("%s: z / %g + %g, %d channels\n", fam->name, fam->scaling, fam->shift, fam->channels);
    assert_true(fam->scaling == 0.3611f && fam->shift == 0.1159f && fam->channels == 16);
    assert_string_equal(fam->name, in_dir(d, "config.json"));
    assert_null(latup_vae_latent_family(f)); /* a file has no config.json */
    assert_null(latup_vae_latent_family(NULL));
    expect_same_decode(v, f, 16);
    latup_vae_free(v);

    char slash[600]; /* "vae/", as a user types it */
    snprintf(slash, sizeof slash, "%s//", d);
    assert_int_equal(latup_vae_load(slash, &v), LATUP_OK);
    assert_string_equal(latup_vae_latent_family(v)->name, in_dir(d, "config.json"));
    latup_vae_free(v);

    /* .safetensors before .bin: a .bin beside it is not read (here it is not even a checkpoint) */
    write_file(in_dir(d, "diffusion_pytorch_model.bin"), "not a checkpoint", 16);
    assert_int_equal(latup_vae_load(d, &v), LATUP_OK);
    latup_vae_free(v);
    /* the fp16 variant, alone */
    assert_int_equal(rename(in_dir(d, "diffusion_pytorch_model.safetensors"),
                            in_dir(d, "diffusion_pytorch_model.fp16.safetensors")), 0);
    unlink(in_dir(d, "diffusion_pytorch_model.bin"));
    assert_int_equal(latup_vae_load(d, &v), LATUP_OK);
    latup_vae_free(v);
    latup_vae_free(f);
}

/* A pipeline's root: vae/ is read; its weights a torch.save .bin; shift_factor null is 0. */
static void test_pipeline_root(void **state) {
    (void)state;
    const char *d = sd_pipeline();
    latup_vae *v, *f;
    latup_status st = latup_vae_load(d, &v);
    if (st) print_error("%s\n", latup_last_error());
    assert_int_equal(st, LATUP_OK);
    assert_int_equal(latup_vae_load(SD_PTH, &f), LATUP_OK);
    assert_int_equal(latup_vae_get_config(v)->z_channels, 4);
    assert_true(latup_vae_get_config(v)->has_post_quant_conv);
    const latup_latent_family *fam = latup_vae_latent_family(v);
    assert_non_null(fam);
    printf("%s: z / %g + %g\n", fam->name, fam->scaling, fam->shift);
    assert_true(fam->scaling == 0.18215f && fam->shift == 0.0f && fam->channels == 4);
    assert_string_equal(fam->name, in_dir(d, "vae/config.json"));
    expect_same_decode(v, f, 4);
    latup_vae_free(v), latup_vae_free(f);
}

/* Each refusal: LATUP_E_INPUT, the folder or its config.json named with what is wrong. */
static void test_folder_errors(void **state) {
    (void)state;
    const char *d = flux_folder();
    const char *cfg = in_dir(d, "config.json");
    struct {
        const char *config; /* NULL: none */
        const char *word;
    } cases[] = {
        {"{\"scaling_factor\": 0.3611,}", "config.json: invalid JSON at byte"},
        {"[1, 2]", "config.json: an array, expected a JSON object"},
        {"{\"scaling_factor\": \"0.3611\"}", "config.json: scaling_factor is a string, expected a number"},
        {"{\"scaling_factor\": 0}", "config.json: scaling_factor 0: a latent is divided by it"},
        {"{\"scaling_factor\": -1.5}", "scaling_factor -1.5"},
        {"{\"scaling_factor\": 1e300}", "scaling_factor 1e+300"},
        {"{\"scaling_factor\": 1, \"shift_factor\": true}", "config.json: shift_factor is a boolean, expected a number"},
        {"{\"scaling_factor\": 1, \"shift_factor\": -1e39}", "config.json: shift_factor -1e+39 is not a finite float"},
        {"{\"scaling_factor\": 1e-50}", "scaling_factor 1e-50"},
        {"{\"latent_channels\": 2.5}", "config.json: latent_channels 2.5: a VAE has 1 to 256"},
        {"{\"latent_channels\": 4}", "config.json says latent_channels 4, the decoder in"},
        {"{\"_class_name\": \"UNet2DConditionModel\"}", "config.json: _class_name is 'UNet2DConditionModel', not an AutoencoderKL"},
        {"{\"_class_name\": 7}", "config.json: _class_name is an integer, expected a string"},
        {NULL, "a folder without config.json or vae/"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        unlink(cfg);
        if (cases[k].config) write_file(cfg, cases[k].config, strlen(cases[k].config));
        latup_vae *v = (latup_vae *)1;
        latup_status st = latup_vae_load(d, &v);
        printf("%s -> %s\n", cases[k].config ? cases[k].config : "(no config.json)", latup_last_error());
        assert_int_equal(st, LATUP_E_INPUT);
        assert_null(v);
        assert_non_null(strstr(latup_last_error(), cases[k].word));
        assert_non_null(strstr(latup_last_error(), d));
    }
    /* without scaling_factor the folder loads, and has no latent space */
    write_file(cfg, "{}", 2);
    latup_vae *v;
    assert_int_equal(latup_vae_load(d, &v), LATUP_OK);
    assert_null(latup_vae_latent_family(v));
    latup_vae_free(v);
    /* a config.json and no weights */
    unlink(in_dir(d, "diffusion_pytorch_model.safetensors"));
    unlink(in_dir(d, "diffusion_pytorch_model.fp16.safetensors")); /* test_vae_folder's */
    assert_int_equal(latup_vae_load(d, &v), LATUP_E_INPUT);
    printf("%s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "no diffusion_pytorch_model.safetensors (nor .bin"));
    /* a pipeline root whose vae/ has no config.json */
    const char *p = sd_pipeline();
    unlink(in_dir(p, "vae/config.json"));
    assert_int_equal(latup_vae_load(p, &v), LATUP_E_INPUT);
    printf("%s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), "no config.json in the pipeline's vae/ folder"));
}

/* The decoder output of `decode` as .npy, read back. */
static latup_tensor decode_npy(const char *const *args, const char *out) {
    int rc = run_cli(g_dir, args, g_err, sizeof g_err);
    if (rc) print_error("%s", g_err);
    assert_int_equal(rc, 0);
    latup_tensor t;
    assert_int_equal(latup_npy_read(out, &t), LATUP_OK);
    return t;
}

/* --diffusion-latent vae converts with config.json's numbers; a named family that disagrees with
 * the folder's config loses to it, with a warning; --verbose says which numbers were used. */
static void test_cli_latent_space(void **state) {
    (void)state;
    const char *d = flux_folder();
    /* config.json with numbers of its own, so that the family's and the config's differ */
    const char *cfg = "{\"_class_name\": \"AutoencoderKL\", \"latent_channels\": 16, \"scaling_factor\": 0.5, "
                      "\"shift_factor\": -0.25}";
    write_file(in_dir(d, "config.json"), cfg, strlen(cfg));
    int64_t shape[3] = {16, 5, 6};
    latup_tensor z, zv;
    assert_int_equal(latup_tensor_alloc(&z, 3, shape), LATUP_OK);
    assert_int_equal(latup_tensor_alloc(&zv, 3, shape), LATUP_OK);
    for (int64_t i = 0; i < latup_tensor_numel(&z); i++) {
        z.data[i] = cosf(0.11f * (float)i);
        zv.data[i] = z.data[i] / 0.5f + -0.25f; /* the decoder-ready latent, made here */
    }
    const char *zp = tmp_path("z.npy"), *zvp = tmp_path("zv.npy");
    assert_int_equal(latup_npy_write(zp, &z), LATUP_OK);
    assert_int_equal(latup_npy_write(zvp, &zv), LATUP_OK);

    const char *ref_out = tmp_path("ref.npy");
    const char *a0[] = {"decode", "--vae", d, "-i", zvp, "-o", ref_out, "-q", NULL};
    latup_tensor ref = decode_npy(a0, ref_out);

    const char *o1 = tmp_path("vae.npy");
    const char *a1[] = {"decode", "--vae", d, "--diffusion-latent", "vae", "-i", zp, "-o", o1, "--verbose", NULL};
    latup_tensor y1 = decode_npy(a1, o1);
    assert_memory_equal(y1.data, ref.data, (size_t)latup_tensor_numel(&ref) * sizeof(float));
    char want[800];
    snprintf(want, sizeof want, "latup: latent to VAE space: z / 0.5 + -0.25 (scaling_factor and shift_factor of %s)\n",
             in_dir(d, "config.json"));
    printf("--verbose: %s", strstr(g_err, "latup: latent to VAE space") ? strstr(g_err, "latup: latent to VAE space") : g_err);
    assert_non_null(strstr(g_err, want));
    assert_null(strstr(g_err, "warning"));

    const char *o2 = tmp_path("flux.npy");
    const char *a2[] = {"decode", "--vae", d, "--diffusion-latent", "flux", "-i", zp, "-o", o2, NULL};
    latup_tensor y2 = decode_npy(a2, o2);
    assert_memory_equal(y2.data, ref.data, (size_t)latup_tensor_numel(&ref) * sizeof(float));
    printf("named family against the folder: %s", g_err);
    snprintf(want, sizeof want, "latup: warning: --diffusion-latent flux means z / 0.3611 + 0.1159, but %s gives "
             "scaling_factor 0.5, shift_factor -0.25: using %s's\n", in_dir(d, "config.json"), in_dir(d, "config.json"));
    assert_non_null(strstr(g_err, want));

    /* --quiet: the same numbers, no warning */
    const char *a3[] = {"decode", "--vae", d, "--diffusion-latent", "flux", "-i", zp, "-o", o2, "-q", NULL};
    latup_tensor y3 = decode_npy(a3, o2);
    assert_memory_equal(y3.data, ref.data, (size_t)latup_tensor_numel(&ref) * sizeof(float));
    assert_string_equal(g_err, "");

    /* a family with a VAE file: the family's numbers, as before */
    const char *o4 = tmp_path("file.npy"), *o5 = tmp_path("file_ref.npy");
    for (int64_t i = 0; i < latup_tensor_numel(&z); i++) zv.data[i] = z.data[i] / 0.3611f + 0.1159f;
    assert_int_equal(latup_npy_write(zvp, &zv), LATUP_OK);
    const char *a4[] = {"decode", "--vae", FLUX_FILE, "--diffusion-latent", "flux", "-i", zp, "-o", o4, "-v", NULL};
    latup_tensor y4 = decode_npy(a4, o4);
    assert_non_null(strstr(g_err, "latup: latent to VAE space: z / 0.3611 + 0.1159 (--diffusion-latent flux)\n"));
    const char *a5[] = {"decode", "--vae", FLUX_FILE, "-i", zvp, "-o", o5, "-q", NULL};
    latup_tensor y5 = decode_npy(a5, o5);
    assert_memory_equal(y4.data, y5.data, (size_t)latup_tensor_numel(&y5) * sizeof(float));

    /* upscale has no --vae to take a config from */
    const char *a6[] = {"upscale", "-m", "ref_data/small/model.safetensors.gz", "-s", "2", "--diffusion-latent", "vae",
                        "-i", zp, "-o", tmp_path("up.npy"), NULL};
    assert_int_equal(run_cli(g_dir, a6, g_err, sizeof g_err), 1);
    printf("%s", g_err);
    assert_non_null(strstr(g_err, "--diffusion-latent vae takes the scaling from the config.json of --vae's folder"));

    latup_tensor *all[] = {&z, &zv, &ref, &y1, &y2, &y3, &y4, &y5};
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) latup_tensor_free(all[k]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vae_folder),
        cmocka_unit_test(test_pipeline_root),
        cmocka_unit_test(test_folder_errors),
        cmocka_unit_test(test_cli_latent_space),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
