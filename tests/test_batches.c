/* test_batches.c — batches whose elements differ, and output sets of three whose commit fails at
 * each position (issue 24: the mutation sample found batches tested as one image, and all-or-none
 * output sets tested with one output).
 *
 * Batches: a batch of 2 and of 3 with different content in every element, through every path:
 * the LUA upscale (heads x2 and x4), the VAE decode exact and tiled, the encoder exact and tiled
 * (the posterior's mean), and run (upscale then decode, exact and tiled decode; latup_prepare +
 * latup_execute, the API the CLI uses, both of its outputs), then the CLI's `run` of a batch of 3
 * into a pattern (and --save-latent): each element of the batch's result must equal the same
 * element run alone (batch 1), bit for bit. The library runs the elements one after another
 * through the same code (src/model/lua.c, vae.c latup_*_exec_run), so nothing but a wrong element
 * offset, or an arena value one element leaves behind for the next, can make them differ. Each
 * batch's outputs are also checked to differ between elements (a result that repeated element 0
 * would otherwise pass). One line per compared tensor.
 *
 * Output sets: `latup decode` of a batch of 3 into out_%03d.png, and of three inputs with
 * --out-dir, with the commit made to fail at output 1, then 2, then 3: through
 * tests/support/fault_inject.so (FAULT_RENAME_FAIL_AT=k: the k-th rename fails with EIO; its log
 * shows which file the k-th rename was for), and for real with a directory standing where output
 * k must go (out_%03d.png: the first name is checked before any work, the others fail at their
 * rename; --out-dir: every name is checked before any work). Each time: exit 4 naming that
 * output, none of the three files there afterwards, no temporary left, and the files in the
 * directory that were not the command's (one matching the pattern past the batch among them)
 * untouched. And over three files that already exist, failing at each rename: all three keep
 * their old content (those already replaced are put back), nothing of latup's is left. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli_util.h"
#include "test_util.h"
#include "tmpdir.h"
#include "latup.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LUA_PATH "ref_data/small/model.safetensors.gz"        /* 16 channels, heads x2 and x4, window 8 */
#define VAE_PATH "ref_data/vae/flux_small.ldm.safetensors.gz" /* 16 channels, factor 2, decoder and encoder */

static latup_lua *g_lua;
static latup_vae *g_vae;

static int setup(void **state) {
    if (setup_dir(state)) return -1;
    latup_set_threads(2);
    if (latup_lua_load(LUA_PATH, &g_lua) != LATUP_OK || latup_vae_load(VAE_PATH, &g_vae) != LATUP_OK) {
        fprintf(stderr, "test_batches: %s\n", latup_last_error());
        return -1;
    }
    if (latup_vae_get_config(g_vae)->encoder == LATUP_VAE_ENCODER_NONE) {
        fprintf(stderr, "test_batches: %s holds no encoder\n", VAE_PATH);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    latup_lua_free(g_lua);
    latup_vae_free(g_vae);
    return remove_dir(state);
}

/* ---- comparing one element ------------------------------------------------------------------------ */

/* Counts one check (test_util.h's counters); a test asserts at its end that none failed, so every
 * line is printed first. */
static void tally(int ok) {
    tu_n_checks++;
    tu_n_failed += !ok;
}

/* "upscale x2 batch 3 element 2 vs alone: max|diff| = 0 OK": bit for bit. */
static int report_same(const char *what, int64_t B, int64_t b, const float *got, const float *alone, size_t n) {
    size_t bad = 0, first = 0;
    double m = 0;
    for (size_t i = 0; i < n; i++)
        if (tu_float_bits(got[i]) != tu_float_bits(alone[i])) {
            if (!bad) first = i;
            bad++;
            const double d = fabs((double)got[i] - (double)alone[i]);
            m = isnan(d) ? INFINITY : fmax(m, d);
        }
    printf("%-38s batch %lld element %lld vs alone: max|diff| = %.3g (%zu of %zu values differ) %s\n", what,
           (long long)B, (long long)b, m, bad, n, bad ? "NOT OK" : "OK");
    if (bad)
        printf("    first at index %zu: batch %.9g, alone %.9g\n", first, (double)got[first], (double)alone[first]);
    tally(bad == 0);
    return bad == 0;
}

/* The elements of one result differ from element 0 (inputs differ, so must outputs). */
static void report_distinct(const char *what, const latup_tensor *y) {
    const int64_t B = y->shape[0];
    const size_t per = (size_t)(latup_tensor_numel(y) / B);
    int ok = 1;
    for (int64_t b = 1; b < B; b++) ok &= memcmp(y->data, y->data + b * per, per * sizeof(float)) != 0;
    printf("%-38s batch %lld: every element differs from element 0 %s\n", what, (long long)B, ok ? "OK" : "NOT OK");
    tally(ok);
}

/* ---- one path, batches of 2 and 3 ------------------------------------------------------------------ */

/* A forward path: x -> out[0..n_out-1], each allocated by the path. */
typedef latup_status (*path_fn)(const void *ctx, const latup_tensor *x, latup_tensor *out);

typedef struct {
    const char *what[2]; /* one name per output */
    int n_out;
    path_fn f;
    const void *ctx;
    int image;           /* the input is an image in [-1, 1] (else a latent, about N(0, 1)) */
} path_case;

/* Element b of a batch of B: its own seed, scale and offset, so no two elements are alike. */
static void fill_element(float *x, size_t n, int64_t B, int64_t b, int image) {
    tu_rng r = tu_rng_seed(1000u * (uint64_t)B + 17u * (uint64_t)b + 5u);
    if (image)
        tu_fill_uniform(&r, x, n, -1.0f + 0.1f * (float)b, 1.0f - 0.2f * (float)b);
    else
        tu_fill_normal(&r, x, n, 0.1f * (float)b, 1.0f + 0.25f * (float)b);
}

static void check_path(const path_case *pc, int64_t C, int64_t H, int64_t W) {
    const int bad0 = tu_n_failed;
    for (int64_t B = 2; B <= 3; B++) {
        latup_tensor x, y[2] = {{0}};
        const int64_t xs[4] = {B, C, H, W}, x1s[4] = {1, C, H, W};
        assert_int_equal(latup_tensor_alloc(&x, 4, xs), LATUP_OK);
        const size_t xper = (size_t)(C * H * W);
        for (int64_t b = 0; b < B; b++) fill_element(x.data + b * xper, xper, B, b, pc->image);
        latup_status st = pc->f(pc->ctx, &x, y);
        if (st != LATUP_OK) printf("%s batch %lld: %s\n", pc->what[0], (long long)B, latup_last_error());
        assert_int_equal(st, LATUP_OK);
        for (int k = 0; k < pc->n_out; k++) {
            assert_int_equal(y[k].ndim, 4);
            assert_int_equal(y[k].shape[0], B);
        }
        for (int64_t b = 0; b < B; b++) {
            latup_tensor x1, y1[2] = {{0}};
            assert_int_equal(latup_tensor_alloc(&x1, 4, x1s), LATUP_OK); /* its own buffer, not a view */
            memcpy(x1.data, x.data + b * xper, xper * sizeof(float));
            st = pc->f(pc->ctx, &x1, y1);
            if (st != LATUP_OK) printf("%s alone: %s\n", pc->what[0], latup_last_error());
            assert_int_equal(st, LATUP_OK);
            for (int k = 0; k < pc->n_out; k++) {
                const size_t per = (size_t)(latup_tensor_numel(&y[k]) / B);
                assert_int_equal(y1[k].ndim, 4);
                assert_int_equal(y1[k].shape[0], 1);
                assert_memory_equal(y1[k].shape + 1, y[k].shape + 1, 3 * sizeof y[k].shape[0]);
                report_same(pc->what[k], B, b, y[k].data + b * per, y1[k].data, per);
                latup_tensor_free(&y1[k]);
            }
            latup_tensor_free(&x1);
        }
        for (int k = 0; k < pc->n_out; k++) {
            report_distinct(pc->what[k], &y[k]);
            latup_tensor_free(&y[k]);
        }
        latup_tensor_free(&x);
    }
    assert_int_equal(tu_n_failed, bad0);
}

/* ---- the paths ------------------------------------------------------------------------------------------ */

static latup_status f_upscale(const void *ctx, const latup_tensor *x, latup_tensor *out) {
    return latup_lua_upscale(g_lua, x, *(const int *)ctx, &out[0], NULL);
}

static latup_status f_decode(const void *ctx, const latup_tensor *x, latup_tensor *out) {
    return latup_vae_decode(g_vae, x, &out[0], ctx);
}

static latup_status f_encode(const void *ctx, const latup_tensor *x, latup_tensor *out) {
    return latup_vae_encode(g_vae, x, &out[0], ctx);
}

/* run: upscale then decode in one prepared call; out[0] the upscaled latent, out[1] the image */
static latup_status f_run(const void *ctx, const latup_tensor *x, latup_tensor *out) {
    latup_call *c;
    latup_status st = latup_prepare(ctx, x, &c);
    if (st) return st;
    st = latup_execute(c, x, &out[0], &out[1]);
    latup_call_free(c);
    return st;
}

/* 12x10 latents: padded to the window (8) in both dimensions, and not square. */
static void test_upscale(void **state) {
    (void)state;
    static const int x2 = 2, x4 = 4;
    const path_case a = {{"upscale x2 12x10"}, 1, f_upscale, &x2, 0};
    const path_case b = {{"upscale x4 12x10"}, 1, f_upscale, &x4, 0};
    const path_case c = {{"upscale x2 16x16"}, 1, f_upscale, &x2, 0};
    check_path(&a, 16, 12, 10);
    check_path(&b, 16, 12, 10);
    /* 16x16: no padding */
    check_path(&c, 16, 16, 16);
}

/* 10x14 latents; the tiled decode in tiles of 6 with overlap 2 (several along each side) */
static void test_decode(void **state) {
    (void)state;
    static const latup_decode_opts exact = {0}, tiled = {.tile = 6, .overlap = 2};
    latup_decode_plan p;
    assert_int_equal(latup_vae_plan_decode(g_vae, 10, 14, &tiled, &p), LATUP_OK);
    assert_true(p.tiled);
    const path_case a = {{"decode exact"}, 1, f_decode, &exact, 0};
    const path_case b = {{"decode tiled (6, overlap 2)"}, 1, f_decode, &tiled, 0};
    check_path(&a, 16, 10, 14);
    check_path(&b, 16, 10, 14);
}

/* 20x28 images (latents 10x14); the posterior's mean. A sample (opts.sample) draws element b's noise
 * at its own flat positions in the batch (latup.h, vae_enc.c): by design not the draw of the element
 * alone, so not compared here (test_vae_encoder checks its element 0). */
static void test_encode(void **state) {
    (void)state;
    static const latup_encode_opts exact = {0}, tiled = {.tile = 4, .overlap = 1};
    latup_decode_plan p;
    assert_int_equal(latup_vae_plan_encode(g_vae, 20, 28, &tiled, &p), LATUP_OK);
    assert_true(p.tiled);
    const path_case a = {{"encode exact"}, 1, f_encode, &exact, 1};
    const path_case b = {{"encode tiled (4, overlap 1)"}, 1, f_encode, &tiled, 1};
    check_path(&a, 3, 20, 28);
    check_path(&b, 3, 20, 28);
}

/* 10x12 latents, x2 then decode: exact, and tiled (tiles of 8, overlap 2, on the 20x24 upscale) */
static void test_run(void **state) {
    (void)state;
    latup_call_opts exact = {.lua = g_lua, .scale = 2, .vae = g_vae};
    latup_call_opts tiled = exact;
    tiled.tile = 8, tiled.overlap = 2;
    latup_call_opts x4 = exact;
    x4.scale = 4;
    const path_case a = {{"run x2: upscaled", "run x2: image"}, 2, f_run, &exact, 0};
    const path_case b = {{"run x2 tiled (8, 2): upscaled", "run x2 tiled (8, 2): image"}, 2, f_run, &tiled, 0};
    const path_case c = {{"run x4: upscaled", "run x4: image"}, 2, f_run, &x4, 0};
    check_path(&a, 16, 10, 12);
    check_path(&b, 16, 10, 12);
    check_path(&c, 16, 10, 12);
}

/* ---- the CLI ------------------------------------------------------------------------------------------------ */

static char g_err[8192];

static int run(const char *const *args) { return run_cli(g_dir, args, g_err, sizeof g_err); }

/* With the fault shim preloaded and `extra` settings (NULL-terminated), as test_cli_contract. */
static int run_faulty(const char *const *args, const char *const *extra) {
    return run_cli_faulty(g_dir, args, extra, g_err, sizeof g_err);
}

static int exists(const char *p) { return path_exists(p); }

static int is_dir(const char *p) {
    struct stat sb;
    return lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Entries of dir whose names start with prefix ("" counts every entry but . and ..). */
static int count_prefix_in(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && !strncmp(e->d_name, prefix, strlen(prefix))) n++;
    closedir(d);
    return n;
}

static void write_text(const char *path, const char *text) { assert_int_equal(write_text_file(path, text), 0); }

static char *read_text(const char *path) { return read_text_file(path); }

static int has_text(const char *path, const char *text) {
    char *t = read_text(path);
    const int ok = t && !strcmp(t, text);
    free(t);
    return ok;
}

/* A latent [16,H,W] (B 0) or [B,16,H,W] with element b as fill_element makes it. */
static void write_latent(const char *path, int64_t B, int64_t H, int64_t W, uint64_t salt) {
    latup_tensor x;
    const int64_t s[4] = {B ? B : 1, 16, H, W};
    assert_int_equal(latup_tensor_alloc(&x, B ? 4 : 3, B ? s : s + 1), LATUP_OK);
    const size_t per = (size_t)(16 * H * W);
    for (int64_t b = 0; b < (B ? B : 1); b++) fill_element(x.data + b * per, per, (B ? B : 1) + (int64_t)salt, b, 0);
    assert_int_equal(latup_npy_write(path, &x), LATUP_OK);
    latup_tensor_free(&x);
}

/* `latup run` of a batch of 3 into run_%03d.npy, with --save-latent: each file (and each element of
 * the saved latent) against the element run alone through the library. */
static void test_cli_run_batch(void **state) {
    (void)state;
    const int bad0 = tu_n_failed;
    const int64_t B = 3, H = 10, W = 12;
    write_latent(tmp_path("rb.npy"), B, H, W, 40);
    mkdir(tmp_path("rb"), 0755);
    const char *a[] = {"run", "-m", LUA_PATH, "-s", "2", "--vae", VAE_PATH, "-i", tmp_path("rb.npy"), "-o",
                       tmp_path("rb/run_%03d.npy"), "--save-latent", tmp_path("rb/up.npy"), "-t", "2", "-q", NULL};
    const int rc = run(a);
    if (rc) printf("latup run: exit %d: %s", rc, g_err);
    assert_int_equal(rc, 0);
    assert_false(exists(tmp_path("rb/run_003.npy")));
    latup_tensor x, up;
    assert_int_equal(latup_npy_read(tmp_path("rb.npy"), &x), LATUP_OK);
    assert_int_equal(latup_npy_read(tmp_path("rb/up.npy"), &up), LATUP_OK);
    assert_int_equal(up.ndim, 4);
    assert_int_equal(up.shape[0], B);
    const size_t xper = (size_t)(16 * H * W), uper = (size_t)(latup_tensor_numel(&up) / B);
    const latup_call_opts o = {.lua = g_lua, .scale = 2, .vae = g_vae};
    for (int64_t b = 0; b < B; b++) {
        latup_tensor x1, y1[2] = {{0}}, img;
        const int64_t s1[4] = {1, 16, H, W};
        assert_int_equal(latup_tensor_alloc(&x1, 4, s1), LATUP_OK);
        memcpy(x1.data, x.data + b * xper, xper * sizeof(float));
        assert_int_equal(f_run(&o, &x1, y1), LATUP_OK);
        char name[64], what[96];
        snprintf(name, sizeof name, "rb/run_%03lld.npy", (long long)b);
        assert_int_equal(latup_npy_read(tmp_path(name), &img), LATUP_OK);
        assert_int_equal(latup_tensor_numel(&img), latup_tensor_numel(&y1[1]));
        snprintf(what, sizeof what, "cli run x2 --save-latent");
        report_same(what, B, b, up.data + b * uper, y1[0].data, uper);
        snprintf(what, sizeof what, "cli run x2 %s", name + 3);
        report_same(what, B, b, img.data, y1[1].data, (size_t)latup_tensor_numel(&img));
        latup_tensor_free(&img);
        latup_tensor_free(&y1[0]);
        latup_tensor_free(&y1[1]);
        latup_tensor_free(&x1);
    }
    report_distinct("cli run x2 --save-latent", &up);
    latup_tensor_free(&up);
    latup_tensor_free(&x);
    assert_int_equal(tu_n_failed, bad0);
}

/* ---- output sets of three, failing at each position -------------------------------------------------------- */

/* The files in dir that are not the command's: made before it runs, checked after. */
typedef struct {
    const char *name, *text;
} foreign_file;

static void make_foreign(const char *dir, const foreign_file *ff, int n) {
    char p[1024];
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, ff[i].name);
        write_text(p, ff[i].text);
    }
}

static int foreign_intact(const char *dir, const foreign_file *ff, int n) {
    char p[1024];
    int ok = 1;
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, ff[i].name);
        ok &= has_text(p, ff[i].text);
    }
    return ok;
}

/* After a command that failed at output k (1-based) of outs[3] in dir: exit 4 naming outs[k-1]
 * with `says`, none of the outputs there (but `kept`, a path standing where one must go, still
 * there), no temporary, the foreign files intact and nothing else in dir. */
static void check_failed_set(const char *label, int k, int rc, const char *says, const char *dir,
                             const char *const outs[3], const char *kept, const foreign_file *ff, int n_ff) {
    const char *base = strrchr(outs[k - 1], '/') + 1;
    int left = 0;
    for (int i = 0; i < 3; i++) left += outs[i] != kept && exists(outs[i]);
    const int temps = count_prefix_in(dir, "latup-");
    const int intact = foreign_intact(dir, ff, n_ff);
    const int others = count_prefix_in(dir, "") - n_ff - (kept != NULL);
    const int named = strstr(g_err, base) != NULL && strstr(g_err, says) != NULL;
    const int ok = rc == 4 && named && left == 0 && temps == 0 && intact && others == 0 && (!kept || exists(kept));
    printf("%s, output %d of 3 fails: exit %d (want 4), error names %s and \"%s\": %s, outputs left %d of 3, "
           "temporaries %d, other files intact %s, nothing else %s %s\n",
           label, k, rc, base, says, named ? "yes" : "NO", left, temps, intact ? "yes" : "NO",
           others ? "NO" : "yes", ok ? "OK" : "NOT OK");
    if (!named || rc != 4) printf("    stderr: %s", g_err);
    tally(ok);
}

/* The k-th rename of a temporary (fault_inject's log) went to outs[k-1]: the failure was there. */
static int kth_rename_was(const char *log_path, int k, const char *out) {
    char *text = read_text(log_path);
    if (!text) return 0;
    int n = 0, ok = 0;
    for (char *line = strstr(text, "rename "); line; line = strstr(line + 1, "rename ")) {
        char from[1024], to[1024];
        if (sscanf(line, "rename %1023s %1023s", from, to) != 2) break;
        if (++n == k) ok = !strcmp(to, out);
    }
    free(text);
    return ok && n == k; /* and no rename after the failed one */
}

/* The 3 outputs of `args` in dir made to fail at their commit, one position at a time, with the
 * fault shim; then the command unfaulted writes all three and still leaves the foreign files. */
static void fail_each_rename(const char *label, const char *const *args, const char *dir, const char *const outs[3],
                             const foreign_file *ff, int n_ff) {
    for (int k = 1; k <= 3; k++) {
        char fail_at[64], logenv[700];
        const char *log_path = tmp_path("rename.log");
        unlink(log_path);
        snprintf(fail_at, sizeof fail_at, "FAULT_RENAME_FAIL_AT=%d", k);
        snprintf(logenv, sizeof logenv, "FAULT_LOG=%s", log_path);
        const char *extra[] = {fail_at, logenv, NULL};
        const int rc = run_faulty(args, extra);
        const int there = kth_rename_was(log_path, k, outs[k - 1]);
        printf("%s, rename %d fails: the log's rename %d is the one onto %s and the last: %s\n", label, k, k,
               strrchr(outs[k - 1], '/') + 1, there ? "yes OK" : "NO NOT OK");
        tally(there);
        check_failed_set(label, k, rc, "cannot rename", dir, outs, NULL, ff, n_ff);
    }
    const int rc = run_faulty(args, NULL);
    int all = 1;
    for (int i = 0; i < 3; i++) all &= exists(outs[i]);
    const int ok = rc == 0 && all && foreign_intact(dir, ff, n_ff) && count_prefix_in(dir, "latup-") == 0;
    printf("%s, nothing fails: exit %d, all 3 outputs written, other files intact: %s\n", label, rc, ok ? "OK" : "NOT OK");
    if (rc) printf("    stderr: %s", g_err);
    tally(ok);
}

static void test_set_fails_at_each_rename(void **state) {
    (void)state;
    const int bad0 = tu_n_failed;
    /* a batch of 3 into a pattern */
    write_latent(tmp_path("sb.npy"), 3, 8, 8, 50);
    mkdir(tmp_path("sp"), 0755);
    const foreign_file ffp[] = {{"notes.txt", "not latup's"}, {"out_003.png", "the pattern's next name, not ours"}};
    make_foreign(tmp_path("sp"), ffp, 2);
    const char *outp[3] = {tmp_path("sp/out_000.png"), tmp_path("sp/out_001.png"), tmp_path("sp/out_002.png")};
    const char *a[] = {"decode", "--vae", VAE_PATH, "-i", tmp_path("sb.npy"), "-o", tmp_path("sp/out_%03d.png"), "-q", NULL};
    fail_each_rename("batch of 3 into out_%03d.png", a, tmp_path("sp"), outp, ffp, 2);
    /* three inputs into --out-dir */
    write_latent(tmp_path("za.npy"), 0, 8, 8, 61);
    write_latent(tmp_path("zb.npy"), 0, 8, 8, 62);
    write_latent(tmp_path("zc.npy"), 0, 8, 8, 63);
    mkdir(tmp_path("sd"), 0755);
    const foreign_file ffd[] = {{"notes.txt", "not latup's"}, {"zd.png", "another input's, not ours"}};
    make_foreign(tmp_path("sd"), ffd, 2);
    const char *outd[3] = {tmp_path("sd/za.png"), tmp_path("sd/zb.png"), tmp_path("sd/zc.png")};
    const char *b[] = {"decode", "--vae", VAE_PATH, "-i", tmp_path("za.npy"), "-i", tmp_path("zb.npy"), "-i",
                       tmp_path("zc.npy"), "--out-dir", tmp_path("sd"), "-q", NULL};
    fail_each_rename("three inputs into --out-dir", b, tmp_path("sd"), outd, ffd, 2);
    assert_int_equal(tu_n_failed, bad0);
}

/* Outputs that already exist, a commit failing at output k: every one keeps its old content (the
 * files renamed before the failure are put back), and no temporary or second name is left; then
 * with no failure all three are replaced by the new images. */
static void test_set_keeps_replaced_files(void **state) {
    (void)state;
    const int bad0 = tu_n_failed;
    write_latent(tmp_path("kb.npy"), 3, 8, 8, 80);
    mkdir(tmp_path("kp"), 0755);
    const foreign_file ff[] = {{"notes.txt", "not latup's"}};
    make_foreign(tmp_path("kp"), ff, 1);
    const foreign_file old[3] = {{"out_000.png", "an older out_000"}, {"out_001.png", "an older out_001"},
                                 {"out_002.png", "an older out_002"}};
    const char *a[] = {"decode", "--vae", VAE_PATH, "-i", tmp_path("kb.npy"), "-o", tmp_path("kp/out_%03d.png"), "-q", NULL};
    for (int k = 1; k <= 3; k++) {
        make_foreign(tmp_path("kp"), old, 3);
        char fail_at[64];
        snprintf(fail_at, sizeof fail_at, "FAULT_RENAME_FAIL_AT=%d", k);
        const char *extra[] = {fail_at, NULL};
        const int rc = run_faulty(a, extra);
        const int kept = foreign_intact(tmp_path("kp"), old, 3), rest = foreign_intact(tmp_path("kp"), ff, 1);
        const int temps = count_prefix_in(tmp_path("kp"), "latup-"), all = count_prefix_in(tmp_path("kp"), "");
        const int ok = rc == 4 && kept && rest && temps == 0 && all == 4;
        printf("existing out_000..002.png, rename %d of 3 fails: exit %d (want 4), all 3 keep their old content %s, "
               "temporaries and second names left %d, other files intact %s, entries %d (want 4): %s\n",
               k, rc, kept ? "yes" : "NO", temps, rest ? "yes" : "NO", all, ok ? "OK" : "NOT OK");
        if (rc != 4) printf("    stderr: %s", g_err);
        tally(ok);
    }
    const int rc = run_faulty(a, NULL);
    int replaced = 0;
    for (int i = 0; i < 3; i++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", tmp_path("kp"), old[i].name);
        replaced += exists(p) && !has_text(p, old[i].text);
    }
    const int ok = rc == 0 && replaced == 3 && count_prefix_in(tmp_path("kp"), "latup-") == 0 &&
                   foreign_intact(tmp_path("kp"), ff, 1);
    printf("existing out_000..002.png, nothing fails: exit %d, replaced %d of 3, nothing of latup's left: %s\n", rc,
           replaced, ok ? "OK" : "NOT OK");
    tally(ok);
    assert_int_equal(tu_n_failed, bad0);
}

/* No shim: a directory (holding a file of its own) where output k must go. */
static void test_set_directory_in_the_way(void **state) {
    (void)state;
    const int bad0 = tu_n_failed;
    write_latent(tmp_path("db.npy"), 3, 8, 8, 70);
    write_latent(tmp_path("ya.npy"), 0, 8, 8, 71);
    write_latent(tmp_path("yb.npy"), 0, 8, 8, 72);
    write_latent(tmp_path("yc.npy"), 0, 8, 8, 73);
    for (int k = 1; k <= 3; k++) {
        char dir[32], inner[2048];
        /* a batch of 3 into a pattern: out_000.png is checked before any work, out_001.png and
         * out_002.png are found at their rename, after the first outputs were renamed */
        snprintf(dir, sizeof dir, "dp%d", k);
        mkdir(tmp_path(dir), 0755);
        const foreign_file ff[] = {{"notes.txt", "not latup's"}, {"out_003.png", "the pattern's next name, not ours"}};
        make_foreign(tmp_path(dir), ff, 2);
        char o[3][600], pat[600];
        for (int i = 0; i < 3; i++) snprintf(o[i], sizeof o[i], "%s/out_%03d.png", tmp_path(dir), i);
        const char *outs[3] = {o[0], o[1], o[2]};
        const char *in_way = o[k - 1];
        snprintf(inner, sizeof inner, "%s/inside.txt", in_way);
        assert_int_equal(mkdir(in_way, 0755), 0);
        write_text(inner, "inside the directory in the way");
        snprintf(pat, sizeof pat, "%s/out_%%03d.png", tmp_path(dir));
        const char *a[] = {"decode", "--vae", VAE_PATH, "-i", tmp_path("db.npy"), "-o", pat, "-q", NULL};
        int rc = run(a);
        char label[96];
        snprintf(label, sizeof label, "batch of 3 into out_%%03d.png, a directory at output %d", k);
        check_failed_set(label, k, rc, k == 1 ? "is a directory" : "cannot rename the temporary file onto it",
                         tmp_path(dir), outs, outs[k - 1], ff, 2);
        const int kept = is_dir(in_way) && has_text(inner, "inside the directory in the way");
        printf("    the directory in the way and its file untouched: %s\n", kept ? "OK" : "NOT OK");
        tally(kept);

        /* three inputs into --out-dir: every name is checked before any work */
        snprintf(dir, sizeof dir, "dd%d", k);
        mkdir(tmp_path(dir), 0755);
        const foreign_file ffd[] = {{"notes.txt", "not latup's"}};
        make_foreign(tmp_path(dir), ffd, 1);
        for (int i = 0; i < 3; i++) snprintf(o[i], sizeof o[i], "%s/y%c.png", tmp_path(dir), 'a' + i);
        snprintf(inner, sizeof inner, "%s/inside.txt", in_way); /* in_way: o[k - 1], now the --out-dir name */
        assert_int_equal(mkdir(in_way, 0755), 0);
        write_text(inner, "inside the directory in the way");
        const char *b[] = {"decode", "--vae", VAE_PATH, "-i", tmp_path("ya.npy"), "-i", tmp_path("yb.npy"), "-i",
                           tmp_path("yc.npy"), "--out-dir", tmp_path(dir), "-q", NULL};
        rc = run(b);
        snprintf(label, sizeof label, "three inputs into --out-dir, a directory at output %d", k);
        check_failed_set(label, k, rc, "is a directory", tmp_path(dir), outs, outs[k - 1], ffd, 1);
        const int kept2 = is_dir(in_way) && has_text(inner, "inside the directory in the way");
        printf("    the directory in the way and its file untouched: %s\n", kept2 ? "OK" : "NOT OK");
        tally(kept2);
    }
    assert_int_equal(tu_n_failed, bad0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upscale),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_run),
        cmocka_unit_test(test_cli_run_batch),
        cmocka_unit_test(test_set_fails_at_each_rename),
        cmocka_unit_test(test_set_directory_in_the_way),
        cmocka_unit_test(test_set_keeps_replaced_files),
    };
    const int rc = cmocka_run_group_tests(tests, setup, teardown);
    printf("test_batches: %d checks, %d failed\n", tu_n_checks, tu_n_failed);
    return rc;
}
