/* test_io_cli.c — what the files latup writes and reads say, end to end (issue 21): a PNG from the
 * CLI names its maker in text chunks (Software, and the command in "parameters", which bash gives
 * back as the very argv it ran); a 16-bit PNG latup wrote is read back by latup, value for value;
 * and a latent of the wrong shape is refused with a hint when the shape gives away what it is (an
 * RGB image, FLUX's packed tokens), from the library itself, so every front end shows it. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli_util.h"
#include "tmpdir.h"

#include "latup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define VAE "ref_data/vae/flux_small.ldm.safetensors.gz"
#define LUA "ref_data/small/model.safetensors.gz"
#define LATENT "ref_data/demo/latent.npy"

static char g_err[4096];

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len + 1);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    b[*len] = 0;
    return b;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The text of the tEXt chunk `key` (malloc'd), walking the PNG's chunks and checking their CRCs
 * here; NULL when there is none. */
static char *png_text(const char *path, const char *key) {
    size_t n;
    uint8_t *f = slurp(path, &n);
    assert_memory_equal(f, "\x89PNG\r\n\x1a\n", 8);
    char *out = NULL;
    for (size_t pos = 8; pos + 12 <= n;) {
        const uint32_t len = be32(f + pos);
        assert_true(pos + 12 + len <= n);
        const uint8_t *type = f + pos + 4, *d = f + pos + 8;
        assert_int_equal((uint32_t)crc32(0, type, 4 + len), be32(d + len));
        const size_t kl = strlen(key);
        if (!memcmp(type, "tEXt", 4) && len > kl && !memcmp(d, key, kl) && d[kl] == 0) {
            out = malloc(len - kl);
            memcpy(out, d + kl + 1, len - kl - 1);
            out[len - kl - 1] = '\0';
        }
        pos += 12 + len;
    }
    free(f);
    return out;
}

/* The "parameters" text run by bash with `latup` a function printing its arguments: the argv the
 * text stands for, NUL-separated, in *n bytes. */
static char *args_of(const char *command, size_t *n) {
    const char *script = tmp_path("cmd.sh"), *out = tmp_path("args.bin");
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    fprintf(f, "latup() { printf '%%s\\0' \"$@\"; }\n%s\n", command);
    fclose(f);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "bash '%s' > '%s'", script, out);
    assert_int_equal(system(cmd), 0);
    return (char *)slurp(out, n);
}

/* Software and parameters, in 8- and 16-bit PNGs, one per image of a pattern; an argument needing
 * quotes (spaces, a quote, UTF-8, a tab) comes back exact. */
static void test_png_names_its_command(void **state) {
    (void)state;
    char out[600];
    snprintf(out, sizeof out, "%s/it's caf\xc3\xa9\tx2.png", g_dir);
    const char *args[] = {"run", "-m", LUA, "-s", "2", "--vae", VAE, "-i", LATENT, "-o", out, "--png-bits", "16", "-q", NULL};
    int rc = run_cli(g_dir, args, g_err, sizeof g_err);
    if (rc) print_error("%s", g_err);
    assert_int_equal(rc, 0);
    char *sw = png_text(out, "Software"), *params = png_text(out, "parameters");
    assert_non_null(sw);
    assert_non_null(params);
    printf("Software: %s\nparameters: %s\n", sw, params);
    char want[64];
    snprintf(want, sizeof want, "latup %s", latup_version());
    assert_string_equal(sw, want);
    for (const char *p = params; *p; p++) assert_true(*p >= 0x20 && *p < 0x7F); /* ASCII: a tEXt chunk */
    size_t n;
    char *argv = args_of(params, &n);
    size_t at = 0;
    for (int i = 0; args[i]; i++) {
        assert_true(at < n);
        assert_string_equal(argv + at, args[i]);
        at += strlen(argv + at) + 1;
    }
    assert_int_equal(at, n);
    printf("bash gives back the %zu bytes of argv\n", n);
    free(sw), free(params), free(argv);

    /* a batch through a pattern: every image says so */
    const char *pat = tmp_path("b_%d.png");
    const char *a2[] = {"decode", "--vae", VAE, "-i", "tests/data/latent/comfyui_flux_b2.latent", "-o", pat, "-q", NULL};
    assert_int_equal(run_cli(g_dir, a2, g_err, sizeof g_err), 0);
    for (int b = 0; b < 2; b++) {
        char p[600];
        snprintf(p, sizeof p, "%s/b_%d.png", g_dir, b);
        char *t = png_text(p, "parameters");
        assert_non_null(t);
        assert_non_null(strstr(t, "latup decode --vae " VAE " -i tests/data/latent/comfyui_flux_b2.latent -o "));
        free(t);
    }
}

/* --png-bits 16 read back by latup: each value is the written sample / 65535, and SwinIR takes it. */
static void test_png16_read_back(void **state) {
    (void)state;
    const char *png = tmp_path("d16.png"), *npy = tmp_path("d16.npy");
    const char *a1[] = {"decode", "--vae", VAE, "-i", LATENT, "-o", png, "--png-bits", "16", "-q", NULL};
    const char *a2[] = {"decode", "--vae", VAE, "-i", LATENT, "-o", npy, "-q", NULL};
    assert_int_equal(run_cli(g_dir, a1, g_err, sizeof g_err), 0);
    assert_int_equal(run_cli(g_dir, a2, g_err, sizeof g_err), 0);
    latup_tensor img, raw;
    latup_status st = latup_png_read(png, &img);
    if (st) print_error("%s\n", latup_last_error());
    assert_int_equal(st, LATUP_OK);
    assert_int_equal(latup_npy_read(npy, &raw), LATUP_OK);
    assert_int_equal(latup_tensor_numel(&img), latup_tensor_numel(&raw));
    int64_t off = 0;
    for (int64_t i = 0; i < latup_tensor_numel(&raw); i++) {
        float y = raw.data[i] * 0.5f; /* the signed range's mapping, numpy's rounding (half to even) */
        y = y + 0.5f;
        y = y < 0 ? 0 : y > 1 ? 1 : y;
        const float want = (float)nearbyint((double)(y * 65535.0f)) / 65535.0f;
        off += img.data[i] != want;
    }
    printf("16-bit PNG read back: %lld of %lld values differ from round(x) / 65535\n", (long long)off,
           (long long)latup_tensor_numel(&raw));
    assert_int_equal(off, 0);
    latup_tensor_free(&img), latup_tensor_free(&raw);
    const char *a3[] = {"upscale", "-m", "ref_data/swinir/classic_x2.pth", "-s", "2", "-i", png, "-o", tmp_path("up.png"),
                        "-q", NULL};
    int rc = run_cli(g_dir, a3, g_err, sizeof g_err);
    if (rc) print_error("%s", g_err);
    assert_int_equal(rc, 0);
}

/* The message of a prepare on this shape (no data: a plan is enough to be refused). */
static const char *refused(const latup_lua *lua, const latup_vae *vae, int ndim, int64_t a, int64_t b, int64_t c,
                           int64_t d) {
    latup_call_opts o = {.lua = lua, .scale = 2, .vae = vae};
    latup_tensor x = {.data = NULL, .ndim = ndim, .shape = {a, b, c, d}};
    latup_call *call = NULL;
    assert_int_equal(latup_prepare(&o, &x, &call), LATUP_E_INPUT);
    assert_null(call);
    printf("%s\n", latup_last_error());
    return latup_last_error();
}

static void test_shape_hints(void **state) {
    (void)state;
    latup_lua *lua;
    latup_vae *vae;
    assert_int_equal(latup_lua_load(LUA, &lua), LATUP_OK);
    assert_int_equal(latup_vae_load(VAE, &vae), LATUP_OK);
    /* FLUX tokens as a diffusers pipeline returns them, and without the batch */
    assert_non_null(strstr(refused(lua, NULL, 3, 1, 4096, 64, 0), "latent has shape [1,4096,64]: 1 channels, the "
                           "model expects 16 (FLUX's packed tokens? 4096 tokens of 64 = 4 x 16 channels: unpack them "
                           "first, --flux-packed 128x128 on the command line"));
    assert_non_null(strstr(refused(lua, NULL, 2, 4096, 64, 0, 0), "latent has shape [4096,64], expected [C,H,W] or "
                           "[B,C,H,W] (FLUX's packed tokens? 4096 tokens of 64"));
    assert_non_null(strstr(refused(NULL, vae, 3, 2, 3072, 64, 0), "--flux-packed HxW with (H/2)*(W/2) = 3072"));
    /* an image, to LUA and to the VAE */
    assert_non_null(strstr(refused(lua, NULL, 4, 1, 3, 64, 48), "latent has shape [1,3,64,48]: 3 channels, the model "
                           "expects 16 (3 channels is an RGB image: LUA upscales 16-channel latents, which 'latup "
                           "decode' then turns into the image"));
    assert_non_null(strstr(refused(NULL, vae, 3, 3, 64, 48, 0), "3 channels, the VAE expects 16 (3 channels is an RGB "
                           "image: a VAE decodes 16-channel latents into images; give the latent the diffusion model "
                           "made, not the image)"));
    /* a latent of another family: no guess */
    assert_string_equal(refused(lua, NULL, 3, 4, 16, 16, 0), "latent has shape [4,16,16]: 4 channels, the model expects 16");
    assert_string_equal(refused(lua, NULL, 1, 64, 0, 0, 0), "latent has shape [64], expected [C,H,W] or [B,C,H,W]");
    latup_lua_free(lua);
    latup_vae_free(vae);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_names_its_command),
        cmocka_unit_test(test_png16_read_back),
        cmocka_unit_test(test_shape_hints),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
