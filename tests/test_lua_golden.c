/* test_lua_golden.c — the LUA forward pass against the PyTorch reference, layer by layer: every
 * tensor in every committed golden file is compared with the tensor latup dumps under the same
 * name (one report line each), for both heads, padded and unpadded inputs, C=16 and C=4, batch 2.
 * Also: a negative control (a perturbed weight must be caught) and the loader's errors. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <unistd.h>

#include "golden.h"
#include "io/json.h"
#include "latup.h"
#include "weightgen.h"

/* ---- the released config, rebuilt from the generator (tests/support/weightgen.h) ----------------------- */
/* Golden files at the released widths (E 360, 6x6 blocks, ws 16, F 256, C 16, both heads) and
 * full depth: the 220 MB model is generated once per run from the first file's metadata into a
 * temporary file (every tensor's checksum verified), never committed. */
static const golden_case RELEASED_CASES[] = {
    {"rel/64x64", NULL, "ref_data/released/golden_64x64.safetensors"},
    {"rel/33x47", NULL, "ref_data/released/golden_33x47.safetensors"},
};
#define N_RELEASED_CASES (int)(sizeof RELEASED_CASES / sizeof RELEASED_CASES[0])

static char g_released_path[512];

static const char *released_model(void) {
    if (g_released_path[0]) return g_released_path;
    if (wg_generate_tmp(RELEASED_CASES[0].golden, g_released_path, sizeof g_released_path) < 0) g_released_path[0] = 0;
    assert_true(g_released_path[0]);
    return g_released_path;
}

static int teardown_released(void **state) {
    (void)state;
    if (g_released_path[0]) unlink(g_released_path);
    return 0;
}

/* ---- comparing one case ------------------------------------------------------------------------ */
/* Runs every head the golden file has outputs for; returns the number of NOT OK lines.
 * band_rows > 0 caps every conv's im2col band (latup_run_opts.conv_band_rows), so each conv of
 * the case runs as several bands through the same code. */
static int run_case(const golden_case *gc, int band_rows, int *n_lines) {
    latup_lua *m = NULL;
    latup_weights g = {0};
    assert_int_equal(latup_lua_load(gc->model ? gc->model : released_model(), &m), LATUP_OK);
    assert_int_equal(latup_safetensors_load(gc->golden, &g), LATUP_OK);
    const latup_wtensor *in = latup_weights_find(&g, "input");
    assert_non_null(in);
    assert_int_equal(in->ndim, 4);
    latup_tensor x = {.data = in->f32, .ndim = 4};
    memcpy(x.shape, in->shape, sizeof x.shape);

    golden_cmp c;
    golden_cmp_init(&c, &g, (int)in->shape[0]);
    const latup_lua_config *cfg = latup_lua_get_config(m);
    int heads_run = 0;
    for (int s = 0; s < cfg->n_scales; s++) {
        char oname[16];
        snprintf(oname, sizeof oname, "out.x%d", cfg->scales[s]);
        if (!latup_weights_find(&g, oname)) continue;
        latup_tensor y;
        latup_run_opts opts = {.dump = golden_compare_dump, .dump_user = &c, .conv_band_rows = band_rows};
        assert_int_equal(latup_lua_upscale(m, &x, cfg->scales[s], &y, &opts), LATUP_OK);
        latup_tensor_free(&y);
        heads_run++;
    }
    assert_true(heads_run > 0);
    char name[48];
    snprintf(name, sizeof name, band_rows ? "%s/b%d" : "%s", gc->name, band_rows);
    int bad = golden_cmp_report(&c, name, golden_tol_for, n_lines);
    golden_cmp_free(&c);
    latup_weights_free(&g);
    latup_lua_free(m);
    return bad;
}

static void test_golden_all_cases(void **state) {
    (void)state;
    int bad = 0, lines = 0;
    latup_set_threads(2);
    for (int i = 0; i < N_GOLDEN_CASES; i++) bad += run_case(&GOLDEN_CASES[i], 0, &lines);
    printf("golden: %d tensors compared, %d NOT OK\n", lines, bad);
    assert_true(lines >= 100); /* 89 LUA + SwinIR golden tensors in the committed files */
    assert_int_equal(bad, 0);
}

/* The released widths at full depth, at the sizes people run: an aligned 64x64 latent and an
 * unaligned 33x47 one, both heads, outputs in full and most intermediates sampled. */
static void test_golden_released(void **state) {
    (void)state;
    int bad = 0, lines = 0;
    latup_set_threads(2);
    for (int i = 0; i < N_RELEASED_CASES; i++) bad += run_case(&RELEASED_CASES[i], 0, &lines);
    printf("golden, released widths: %d tensors compared, %d NOT OK\n", lines, bad);
    assert_true(lines >= 40);
    assert_int_equal(bad, 0);
}

/* Every case again with bands of 2 rows: every conv of every case splits into at least 3 bands
 * (the smallest map any of them convolves is 8 rows high), with a short last band where the
 * height is odd; the tolerances stay the same. */
static void test_golden_band_split(void **state) {
    (void)state;
    int bad = 0, lines = 0;
    latup_set_threads(2);
    for (int i = 0; i < N_GOLDEN_CASES; i++) bad += run_case(&GOLDEN_CASES[i], 2, &lines);
    for (int i = 0; i < N_RELEASED_CASES; i++) bad += run_case(&RELEASED_CASES[i], 3, &lines);
    printf("golden, bands of 2-3 rows: %d tensors compared, %d NOT OK\n", lines, bad);
    assert_int_equal(bad, 0);
}

/* The shapes that overran the im2col arena before the plan became a counting pass (the released
 * config at 40x72, ref_data/wide at 56..128, ref_data/small at 64..128), each against 4096
 * sampled output values of the PyTorch reference (ref_data/sizes/golden_sizes.safetensors). */
static void test_golden_sizes(void **state) {
    (void)state;
    latup_weights g = {0};
    assert_int_equal(latup_safetensors_load("ref_data/sizes/golden_sizes.safetensors", &g), LATUP_OK);
    const char *cases = latup_weights_meta(&g, "cases");
    assert_non_null(cases);
    latup_json_doc doc;
    assert_int_equal(latup_json_parse(cases, strlen(cases), 1u << 20, &doc), LATUP_OK);
    const uint64_t seed = strtoull(latup_weights_meta(&g, "input_seed"), NULL, 10);
    int bad = 0, lines = 0;
    latup_set_threads(2);
    for (const latup_json *cs = doc.root->u.kids.first; cs; cs = cs->next) {
        const char *name = NULL, *model = NULL;
        const latup_json *shape = NULL, *scales = NULL, *ck = NULL;
        for (const latup_json *f = cs->u.kids.first; f; f = f->next) {
            if (!strcmp(f->key, "case")) name = f->u.str.s;
            if (!strcmp(f->key, "model")) model = f->u.str.s;
            if (!strcmp(f->key, "shape")) shape = f;
            if (!strcmp(f->key, "scales")) scales = f;
            if (!strcmp(f->key, "input_checksum")) ck = f;
        }
        assert_true(name && model && shape && scales && ck);
        latup_tensor x;
        int64_t xs[4];
        int nd = 0;
        for (const latup_json *d = shape->u.kids.first; d; d = d->next) xs[nd++] = d->u.i;
        assert_int_equal(latup_tensor_alloc(&x, nd, xs), LATUP_OK);
        char iname[96];
        snprintf(iname, sizeof iname, "input:%s", name);
        wg_input(x.data, latup_tensor_numel(&x), iname, seed);
        assert_true(wg_checksum_ok(x.data, latup_tensor_numel(&x), ck, iname));
        latup_lua *m = NULL;
        assert_int_equal(latup_lua_load(strcmp(model, "released") ? model : released_model(), &m), LATUP_OK);
        for (const latup_json *sc = scales->u.kids.first; sc; sc = sc->next) {
            latup_tensor y;
            assert_int_equal(latup_lua_upscale(m, &x, (int)sc->u.i, &y, NULL), LATUP_OK);
            char tname[128];
            snprintf(tname, sizeof tname, "%s/out.x%d", name, (int)sc->u.i);
            golden_stats st = {0};
            const latup_wtensor *val = NULL;
            assert_int_equal(golden_sample_add(&g, tname, y.data, (size_t)latup_tensor_numel(&y), &st, &val), 1);
            snprintf(tname, sizeof tname, "out.x%d (%lld samples)", (int)sc->u.i, (long long)val->numel);
            bad += !golden_report(name, tname, &st, golden_tol_for("out.x2")->tol);
            lines++;
            latup_tensor_free(&y);
        }
        latup_lua_free(m);
        latup_tensor_free(&x);
    }
    printf("golden sizes: %d outputs compared, %d NOT OK\n", lines, bad);
    assert_true(lines >= 10);
    latup_json_free(&doc);
    latup_weights_free(&g);
    assert_int_equal(bad, 0);
}

/* Thread count must not change results beyond rounding: 1 thread vs 2 on the padded case. */
static void test_golden_one_thread(void **state) {
    (void)state;
    int lines = 0;
    latup_set_threads(1);
    int bad = run_case(&GOLDEN_CASES[0], 0, &lines);
    latup_set_threads(2);
    assert_int_equal(bad, 0);
}

/* ---- .pth vs safetensors: the same weights must give the same output, bit for bit ------------ */
static void upscale_file(const char *model, const latup_tensor *x, int scale, latup_tensor *y) {
    latup_lua *m = NULL;
    assert_int_equal(latup_lua_load(model, &m), LATUP_OK);
    assert_int_equal(latup_lua_upscale(m, x, scale, y, NULL), LATUP_OK);
    latup_lua_free(m);
}

static void test_pth_twins_bit_identical(void **state) {
    (void)state;
    static const char *twins[][3] = {
        {"ref_data/sdxl/model.safetensors.gz", "ref_data/sdxl/model.pth", "ref_data/sdxl/golden_pad.safetensors"},
        {"ref_data/tiny/model.safetensors.gz", "ref_data/tiny/model.pth", "ref_data/tiny/golden_pad.safetensors"},
    };
    for (size_t i = 0; i < sizeof twins / sizeof twins[0]; i++) {
        latup_weights g = {0};
        assert_int_equal(latup_safetensors_load(twins[i][2], &g), LATUP_OK);
        const latup_wtensor *in = latup_weights_find(&g, "input");
        latup_tensor x = {.data = in->f32, .ndim = 4}, a, b;
        memcpy(x.shape, in->shape, sizeof x.shape);
        upscale_file(twins[i][0], &x, 2, &a);
        upscale_file(twins[i][1], &x, 2, &b);
        const int64_t n = latup_tensor_numel(&a);
        assert_int_equal(n, latup_tensor_numel(&b));
        int same = memcmp(a.data, b.data, (size_t)n * sizeof(float)) == 0;
        printf("%-40s vs %-28s %lld output values: %s\n", twins[i][1], twins[i][0], (long long)n,
               same ? "bit-identical OK" : "DIFFERENT NOT OK");
        assert_true(same);
        latup_tensor_free(&a);
        latup_tensor_free(&b);
        latup_weights_free(&g);
    }
}

/* ---- negative control: a small change to one weight must fail the comparison ------------------- */
static double perturbed_error(const char *tensor, int64_t elem, float delta, const char *check) {
    const golden_case *gc = &GOLDEN_CASES[0];
    latup_weights w = {0}, g = {0};
    assert_int_equal(latup_safetensors_load(gc->model, &w), LATUP_OK);
    assert_int_equal(latup_safetensors_load(gc->golden, &g), LATUP_OK);
    latup_wtensor *t = (latup_wtensor *)latup_weights_find(&w, tensor);
    assert_non_null(t);
    assert_true(elem < t->numel);
    t->f32[elem] += delta;
    char path[] = "/tmp/latup_perturbed_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(latup_safetensors_write(path, &w), LATUP_OK);
    latup_lua *m = NULL;
    assert_int_equal(latup_lua_load(path, &m), LATUP_OK);
    unlink(path);

    const latup_wtensor *in = latup_weights_find(&g, "input");
    latup_tensor x = {.data = in->f32, .ndim = 4}, y;
    memcpy(x.shape, in->shape, sizeof x.shape);
    golden_cmp c;
    golden_cmp_init(&c, &g, (int)in->shape[0]);
    latup_run_opts opts = {.dump = golden_compare_dump, .dump_user = &c};
    assert_int_equal(latup_lua_upscale(m, &x, 2, &y, &opts), LATUP_OK);
    const latup_wtensor *gt = latup_weights_find(&g, check);
    assert_non_null(gt);
    golden_stats *s = &c.stats[gt - g.t];
    double scaled = s->max_abs / s->max_ref;
    printf("negative control: %s[%lld] += %g -> %s abs/max|ref| %.3e vs tol %.1e (must exceed)\n",
           tensor, (long long)elem, delta, check, scaled, golden_tol_for(check)->tol);
    golden_cmp_free(&c);
    latup_tensor_free(&y);
    latup_lua_free(m);
    latup_weights_free(&g);
    latup_weights_free(&w);
    return scaled / golden_tol_for(check)->tol;
}

static void test_negative_control(void **state) {
    (void)state;
    /* one element of a deep weight, changed by about 1% of its magnitude */
    assert_true(perturbed_error("layers.1.residual_group.blocks.1.mlp.fc2.weight", 7, 1e-3f, "out.x2") > 1.0);
    /* one entry of a relative-position bias table */
    assert_true(perturbed_error("layers.0.residual_group.blocks.0.attn.relative_position_bias_table", 3,
                                1e-2f, "layers.0.blocks.0.attn.out") > 1.0);
    /* the head's last bias */
    assert_true(perturbed_error("heads.x2.conv_last.bias", 0, 1e-3f, "out.x2") > 1.0);
}

/* ---- loader errors ------------------------------------------------------------------------------ */
/* Writes a copy of the small model with `edit` applied; returns the load status and message. */
typedef void (*edit_fn)(latup_weights *w);

static latup_status load_edited(edit_fn edit, char *msg, size_t msg_n) {
    latup_weights w = {0};
    assert_int_equal(latup_safetensors_load(GOLDEN_CASES[0].model, &w), LATUP_OK);
    edit(&w);
    char path[] = "/tmp/latup_edited_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(latup_safetensors_write(path, &w), LATUP_OK);
    latup_weights_free(&w);
    latup_lua *m = NULL;
    latup_status st = latup_lua_load(path, &m);
    snprintf(msg, msg_n, "%s", latup_last_error());
    printf("load error: %s -> status %d: %s\n", path, (int)st, msg);
    unlink(path);
    latup_lua_free(m);
    return st;
}

static int find_idx(const latup_weights *w, const char *name) {
    const latup_wtensor *t = latup_weights_find(w, name);
    assert_non_null(t);
    return (int)(t - w->t);
}

static void drop_fc2_bias(latup_weights *w) {
    int i = find_idx(w, "layers.1.residual_group.blocks.0.mlp.fc2.bias");
    free(w->t[i].name);
    memmove(&w->t[i], &w->t[i + 1], (size_t)(w->n - i - 1) * sizeof w->t[0]);
    w->n--;
}

static void shrink_norm_weight(latup_weights *w) {
    latup_wtensor *t = &w->t[find_idx(w, "norm.weight")];
    t->shape[0] -= 1;
    t->numel -= 1;
}

static void add_stray_tensor(latup_weights *w) {
    /* rename an optional buffer (the stored shift mask) to something no LUA model has */
    latup_wtensor *t = &w->t[find_idx(w, "layers.0.residual_group.blocks.1.attn_mask")];
    memcpy(t->name, "extra", 5);
}

/* the stored relative_position_index, a buffer computed from the window alone, with its last
 * entry one more than it must be */
static void bump_rel_index(latup_weights *w) {
    latup_wtensor *t = &w->t[find_idx(w, "layers.0.residual_group.blocks.1.attn.relative_position_index")];
    assert_non_null(t->i64);
    t->i64[t->numel - 1] += 1;
}

static void test_load_bad_relative_index(void **state) {
    (void)state;
    char msg[1024];
    assert_int_equal(load_edited(bump_rel_index, msg, sizeof msg), LATUP_E_INPUT);
    printf("relative_position_index off by one at its last entry: %s\n", msg);
    assert_non_null(strstr(msg, "layers.0.residual_group.blocks.1.attn.relative_position_index'["));
    assert_non_null(strstr(msg, "expected"));
}

static void test_load_missing_tensor(void **state) {
    (void)state;
    char msg[1024];
    assert_int_equal(load_edited(drop_fc2_bias, msg, sizeof msg), LATUP_E_INPUT);
    assert_non_null(strstr(msg, "layers.1.residual_group.blocks.0.mlp.fc2.bias"));
    assert_non_null(strstr(msg, "missing"));
    assert_non_null(strstr(msg, "[60]"));
}

static void test_load_wrong_shape(void **state) {
    (void)state;
    char msg[1024];
    assert_int_equal(load_edited(shrink_norm_weight, msg, sizeof msg), LATUP_E_INPUT);
    assert_non_null(strstr(msg, "norm.weight"));
    assert_non_null(strstr(msg, "[59]"));
    assert_non_null(strstr(msg, "[60]"));
}

static void test_load_unexpected_tensor(void **state) {
    (void)state;
    char msg[1024];
    assert_int_equal(load_edited(add_stray_tensor, msg, sizeof msg), LATUP_E_INPUT);
    assert_non_null(strstr(msg, "unexpected tensor 'extra"));
}

static void test_load_corrupt_header(void **state) {
    (void)state;
    /* the first 8 bytes claim a header longer than the file */
    char path[] = "/tmp/latup_corrupt_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const unsigned char bytes[16] = {0xff, 0xff, 0xff, 0x00, 0, 0, 0, 0, '{', '}'};
    assert_int_equal(write(fd, bytes, sizeof bytes), (ssize_t)sizeof bytes);
    close(fd);
    latup_lua *m = NULL;
    assert_int_equal(latup_lua_load(path, &m), LATUP_E_INPUT);
    printf("load error: %s\n", latup_last_error());
    assert_non_null(strstr(latup_last_error(), path));
    unlink(path);
    assert_int_equal(latup_lua_load("/nonexistent/model.safetensors", &m), LATUP_E_IO);
    assert_null(m);
}

/* ---- input errors -------------------------------------------------------------------------------- */
static void test_bad_inputs(void **state) {
    (void)state;
    latup_lua *m = NULL;
    assert_int_equal(latup_lua_load(GOLDEN_CASES[0].model, &m), LATUP_OK);
    latup_tensor x, y;
    /* window 8: a 4-row latent would need padding 4, not < 4 */
    int64_t small[3] = {16, 4, 12};
    assert_int_equal(latup_tensor_alloc(&x, 3, small), LATUP_OK);
    assert_int_equal(latup_lua_upscale(m, &x, 2, &y, NULL), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "too small"));
    latup_tensor_free(&x);
    /* wrong channel count */
    int64_t c4[3] = {4, 16, 16};
    assert_int_equal(latup_tensor_alloc(&x, 3, c4), LATUP_OK);
    assert_int_equal(latup_lua_upscale(m, &x, 2, &y, NULL), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "channels"));
    latup_tensor_free(&x);
    /* a scale the model has no head for, and NaN in the input */
    int64_t ok[3] = {16, 16, 16};
    assert_int_equal(latup_tensor_alloc(&x, 3, ok), LATUP_OK);
    assert_int_equal(latup_lua_upscale(m, &x, 3, &y, NULL), LATUP_E_USAGE);
    assert_non_null(strstr(latup_last_error(), "x2, x4"));
    x.data[100] = NAN;
    assert_int_equal(latup_lua_upscale(m, &x, 2, &y, NULL), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "NaN"));
    latup_tensor_free(&x);
    latup_lua_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_all_cases),   cmocka_unit_test(test_golden_one_thread),
        cmocka_unit_test(test_golden_released),    cmocka_unit_test(test_golden_band_split),
        cmocka_unit_test(test_golden_sizes),
        cmocka_unit_test(test_pth_twins_bit_identical),
        cmocka_unit_test(test_negative_control),   cmocka_unit_test(test_load_missing_tensor),
        cmocka_unit_test(test_load_wrong_shape),   cmocka_unit_test(test_load_unexpected_tensor),
        cmocka_unit_test(test_load_bad_relative_index),
        cmocka_unit_test(test_load_corrupt_header), cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, teardown_released);
}
