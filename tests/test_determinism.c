/* test_determinism.c — the same bytes for any thread count. Every product is cut into tiles whose
 * shape depends on the problem only, each computed by one single-threaded sgemm, and every
 * reduction has a fixed order (docs/testing.md, "Determinism"), so upscale (both heads, the small
 * model and the released widths), decode (untiled and tiled, fast and exact math) and run
 * (upscale, then decode) must give bit-identical outputs on 1, 2, 3 and 4 threads, even with more
 * threads than cores; so must the products themselves, called from serial code, from a region of
 * one worker or of several, and the blocked attention wherever its scratch starts. `make test`
 * runs this file under every OpenBLAS kernel set the CPU runs (tests/support/kernel_sets.sh): OpenBLAS's
 * Haswell kernels give other bits when a product is split over threads, so a product that escapes
 * to several threads fails here under them. One line per comparison, naming the kernel set; the
 * first differing value is printed when one fails. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <unistd.h>

#include <cblas.h>
#include <omp.h>

#include "golden.h"
#include "latup.h"
#include "ops/kernels.h"
#include "weightgen.h"

static int g_bad;
static const char *g_core; /* OpenBLAS's kernel set in this process */

/* Compares ys[1..3] with ys[0] bit for bit; one line. */
/* Compares runs ys[1..k-1] with ys[0] bit for bit (run t: `label` t+1); one line. */
static int same_floats(const char *what, const float *const *ys, const size_t *ns, int k, const char *label) {
    int ok = 1;
    for (int t = 1; t < k && ok; t++) {
        if (ns[t] != ns[0]) {
            printf("  %s: %zu values with %s %d, %zu with %s 1\n", what, ns[t], label, t + 1, ns[0], label);
            ok = 0;
            break;
        }
        for (size_t i = 0; i < ns[0]; i++)
            if (memcmp(&ys[0][i], &ys[t][i], sizeof(float)) != 0) {
                printf("  %s: value %zu differs with %s %d: %.9g vs %.9g with %s 1\n", what, i, label, t + 1,
                       ys[t][i], ys[0][i], label);
                ok = 0;
                break;
            }
    }
    printf("determinism %-52s %zu values, %s 1-%d, %s kernels: %s\n", what, ns[0], label, k, g_core,
           ok ? "identical OK" : "NOT OK");
    g_bad += !ok;
    return ok;
}

static void same_bits(const char *what, latup_tensor *ys) {
    const float *d[4];
    size_t n[4];
    for (int t = 0; t < 4; t++) d[t] = ys[t].data, n[t] = (size_t)latup_tensor_numel(&ys[t]);
    same_floats(what, d, n, 4, "threads");
}

static latup_tensor latent(int C, int h, int w, const char *name) {
    latup_tensor x;
    const int64_t s[4] = {1, C, h, w};
    assert_int_equal(latup_tensor_alloc(&x, 4, s), LATUP_OK);
    wg_input(x.data, latup_tensor_numel(&x), name, 11);
    return x;
}

static void upscale_threads(const char *what, const latup_lua *m, const latup_tensor *x, int scale) {
    latup_tensor ys[4];
    for (int t = 0; t < 4; t++) {
        latup_set_threads(t + 1);
        assert_int_equal(latup_lua_upscale(m, x, scale, &ys[t], NULL), LATUP_OK);
    }
    same_bits(what, ys);
    for (int t = 0; t < 4; t++) latup_tensor_free(&ys[t]);
}

static void decode_threads(const char *what, const latup_vae *v, const latup_tensor *z, int tile, int overlap) {
    latup_tensor ys[4];
    latup_decode_opts o = {.tile = tile, .overlap = overlap};
    for (int t = 0; t < 4; t++) {
        latup_set_threads(t + 1);
        assert_int_equal(latup_vae_decode(v, z, &ys[t], &o), LATUP_OK);
    }
    same_bits(what, ys);
    for (int t = 0; t < 4; t++) latup_tensor_free(&ys[t]);
}

static void test_lua_threads(void **state) {
    (void)state;
    g_bad = 0;
    latup_lua *m = NULL;
    assert_int_equal(latup_lua_load("ref_data/small/model.safetensors.gz", &m), LATUP_OK);
    latup_tensor x = latent(16, 37, 29, "det small");
    upscale_threads("upscale small 37x29 x2", m, &x, 2);
    upscale_threads("upscale small 37x29 x4", m, &x, 4);
    latup_tensor_free(&x);
    latup_lua_free(m);
    /* the released widths (E 360, 12 heads, window 16, F 256), one RSTB of two blocks */
    assert_int_equal(latup_lua_load("ref_data/wide/model.safetensors.gz", &m), LATUP_OK);
    x = latent(16, 33, 47, "det wide");
    upscale_threads("upscale wide (E 360) 33x47 x2", m, &x, 2);
    latup_set_exact_math(1);
    upscale_threads("upscale wide (E 360) 33x47 x2, exact math", m, &x, 2);
    latup_set_exact_math(0);
    latup_tensor_free(&x);
    latup_lua_free(m);
    latup_set_threads(2);
    assert_int_equal(g_bad, 0);
}

static void test_vae_threads(void **state) {
    (void)state;
    g_bad = 0;
    latup_vae *v = NULL;
    assert_int_equal(latup_vae_load("ref_data/vae/flux_small.ldm.safetensors.gz", &v), LATUP_OK);
    latup_tensor z = latent(16, 23, 19, "det vae");
    decode_threads("decode flux_small 23x19 exact", v, &z, 0, 0);
    decode_threads("decode flux_small 23x19 tiles 8 overlap 3", v, &z, 8, 3);
    latup_tensor_free(&z);
    latup_vae_free(v);
    /* the real widths (128/256/512/512) from the generator */
    char path[512];
    assert_true(wg_generate_tmp("ref_data/vae/golden_real_widths.safetensors", path, sizeof path) > 0);
    assert_int_equal(latup_vae_load(path, &v), LATUP_OK);
    unlink(path);
    z = latent(16, 13, 11, "det vae real");
    decode_threads("decode real widths 13x11 exact", v, &z, 0, 0);
    decode_threads("decode real widths 13x11 tiles 8 overlap 2", v, &z, 8, 2);
    /* exact math: direct convs (im2col, no Winograd), expf */
    latup_set_exact_math(1);
    decode_threads("decode real widths 13x11 exact, exact math", v, &z, 0, 0);
    decode_threads("decode real widths 13x11 tiles 8/2, exact math", v, &z, 8, 2);
    latup_set_exact_math(0);
    latup_tensor_free(&z);
    latup_vae_free(v);
    latup_set_threads(2);
    assert_int_equal(g_bad, 0);
}

/* run = upscale then decode, as `latup run` does */
static void test_run_threads(void **state) {
    (void)state;
    g_bad = 0;
    latup_lua *m = NULL;
    latup_vae *v = NULL;
    assert_int_equal(latup_lua_load("ref_data/small/model.safetensors.gz", &m), LATUP_OK);
    assert_int_equal(latup_vae_load("ref_data/vae/flux_small.ldm.safetensors.gz", &v), LATUP_OK);
    latup_tensor x = latent(16, 12, 10, "det run"), ys[4];
    for (int t = 0; t < 4; t++) {
        latup_set_threads(t + 1);
        latup_tensor up;
        assert_int_equal(latup_lua_upscale(m, &x, 2, &up, NULL), LATUP_OK);
        assert_int_equal(latup_vae_decode(v, &up, &ys[t], NULL), LATUP_OK);
        latup_tensor_free(&up);
    }
    same_bits("run small x2 + flux_small, 12x10", ys);
    for (int t = 0; t < 4; t++) latup_tensor_free(&ys[t]);
    latup_tensor_free(&x);
    latup_lua_free(m);
    latup_vae_free(v);
    latup_set_threads(2);
    assert_int_equal(g_bad, 0);
}

static void fill(float *x, size_t n, const char *name) { wg_input(x, (int64_t)n, name, 5); }

/* One product where a split changes OpenBLAS's Haswell bits (M = N = 143, the mid attention's
 * token count on a 13x11 latent): called from serial code, from a region of one worker (one band,
 * one query block), and from a region of several, with OpenMP set to 1..4 threads. The product
 * must run on one thread in every case, and the caller's thread count must come back unchanged. */
static void test_sgemm_one_thread(void **state) {
    (void)state;
    g_bad = 0;
    enum { M = 143, N = 512, K = 143 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    assert_non_null(a);
    assert_non_null(b);
    fill(a, (size_t)M * K, "det sgemm a");
    fill(b, (size_t)K * N, "det sgemm b");
    static const char *where[3] = {"sgemm 143x512x143 from serial code", "sgemm 143x512x143 in a 1-worker region",
                                   "sgemm 143x512x143 in a 2-worker region"};
    for (int w = 0; w < 3; w++) {
        float *ys[4];
        size_t ns[4];
        int kept = 1;
        for (int t = 0; t < 4; t++) {
            ys[t] = malloc(sizeof(float) * M * N * 2);
            assert_non_null(ys[t]);
            ns[t] = (size_t)M * N;
            latup_set_threads(t + 1);
            if (w == 0) {
                latup_sgemm1(0, M, N, K, 1.0f, a, K, b, N, 0.0f, ys[t], N);
            } else {
                /* in the 2-worker region each worker computes the whole product into its own half */
#pragma omp parallel num_threads(w)
                latup_sgemm1(0, M, N, K, 1.0f, a, K, b, N, 0.0f, ys[t] + (size_t)omp_get_thread_num() * M * N, N);
            }
            kept &= omp_get_max_threads() == t + 1;
        }
        same_floats(where[w], (const float *const *)ys, ns, 4, "threads");
        if (!kept) printf("  %s: the caller's OpenMP thread count was not restored: NOT OK\n", where[w]), g_bad++;
        for (int t = 0; t < 4; t++) free(ys[t]);
    }
    free(a);
    free(b);
    latup_set_threads(2);
    assert_int_equal(g_bad, 0);
}

/* The blocked attention (the VAE's mid block) with its scratch starting at 0..16 floats past a
 * 64-byte boundary, on 1 and 2 threads (a worker's slice then starts at another alignment): the
 * same bits, fast and exact math. N = 143 is one query block, N = 600 three. */
static void test_attention_scratch_alignment(void **state) {
    (void)state;
    g_bad = 0;
    const int C = 64;
    for (int exact = 0; exact < 2; exact++)
        for (int N = 143; N <= 600; N += 457) {
            const size_t NC = (size_t)N * C;
            float *q = malloc(sizeof(float) * NC), *k = malloc(sizeof(float) * NC), *v = malloc(sizeof(float) * NC);
            assert_true(q && k && v);
            fill(q, NC, "det attn q");
            fill(k, NC, "det attn k");
            fill(v, NC, "det attn v");
            for (size_t i = 0; i < NC; i++) q[i] *= 8.0f; /* scores of a few units: exp does work */
            const size_t ns = latup_attention_blocked_scratch_floats(N, C, 256, 256, 2);
            float *scratch = aligned_alloc(64, (ns + 64 + 15) / 16 * 16 * sizeof(float)); /* a multiple of 64 bytes */
            assert_non_null(scratch);
            enum { RUNS = 34 };
            float *ys[RUNS];
            size_t n[RUNS];
            latup_set_exact_math(exact);
            for (int r = 0; r < RUNS; r++) {
                ys[r] = malloc(sizeof(float) * NC);
                assert_non_null(ys[r]);
                n[r] = NC;
                const int threads = 1 + r / 17, off = r % 17;
                assert_int_equal(latup_attention_blocked_forward(ys[r], q, k, v, N, C, 0.125f, 256, 256,
                                                                 scratch + off, ns, threads),
                                 LATUP_OK);
            }
            latup_set_exact_math(0);
            char what[96];
            snprintf(what, sizeof what, "attention N %d, scratch +0..16, threads 1-2%s", N, exact ? ", exact" : "");
            same_floats(what, (const float *const *)ys, n, RUNS, "runs");
            for (int r = 0; r < RUNS; r++) free(ys[r]);
            free(scratch);
            free(q);
            free(k);
            free(v);
        }
    assert_int_equal(g_bad, 0);
}

int main(void) {
    g_core = openblas_get_corename();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm_one_thread),
        cmocka_unit_test(test_attention_scratch_alignment),
        cmocka_unit_test(test_lua_threads),
        cmocka_unit_test(test_vae_threads),
        cmocka_unit_test(test_run_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
