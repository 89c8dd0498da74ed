/* test_api_contract.c — the argument contract of latup.h ("arguments") under hostile use, every
 * public function at once: the cases are generated from the header (tools/ci/gen_api_cases.awk:
 * build/gen/api_cases.h), so a function added to latup.h is covered, or this file stops
 * compiling until it says what a valid value of its new argument is.
 *
 * Each case runs in its own child process (a crash, an ASan or UBSan report or a hang is that
 * case's failure, and the next case still runs) and prints one line:
 *   - NULL in each pointer position: LATUP_E_USAGE naming the argument, or, where the header says
 *     the pointer may be NULL, the call's ordinary result; functions without a status must not
 *     crash;
 *   - a malformed tensor in each tensor position (no data, rank 0, 5, -1 or 1000, a negative
 *     dimension, a 2^61 batch, misaligned data), each tensor struct at the very end of its heap block so ASan sees
 *     a read past its shape[]: LATUP_E_USAGE;
 *   - an out-of-range value in each enum position: LATUP_E_USAGE, or "unknown" from a _name
 *     function.
 * No case may answer LATUP_E_INTERNAL (a caller's mistake is never "a bug in latup"). Then the
 * edges by hand: latup_shape_str, latup_tensor_numel and latup_tensor_alloc at every rank and
 * size, enum fields inside option structs, aliased output tensors, and a FLUX unpack of a size
 * whose token count passes int. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "latup.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define LUA_PATH "ref_data/small/model.safetensors.gz" /* 16 channels in and out, heads x2 and x4 */
#define VAE_PATH "ref_data/vae/flux_small.ldm.safetensors.gz" /* 16 channels */
#define ENC_PATH "ref_data/trained/vae.ldm.safetensors.gz"      /* 16 channels, an 8x8 patch encoder */

/* ---- what every case's other arguments are: one valid call ---- */
static struct {
    latup_lua *lua;
    latup_vae *vae, *venc;
    latup_tensor x, xcopy, z, packed, img, scratch;
    int64_t shape[4];
    char buf[96];
    FILE *devnull;
    latup_call *call;
    latup_call_opts copts;
    latup_run_opts ropts;
    latup_decode_opts dopts;
    latup_encode_opts eopts;
    latup_lua_plan lplan;
    latup_vae_plan vplan;
    latup_decode_plan dplan;
    latup_system_info si;
    latup_checkpoint_info ci;
    latup_file_kind kind;
    latup_outputs *outs;
    latup_lua *lua_out;
    latup_vae *vae_out;
    latup_call *call_out;
    latup_outputs *outs_out;
    char npy_in[512], png_in[512], w_npy[512], w_png[512], c_npy[512], o_npy[512], o_png[512];
} fx;

/* defaults by type */
#define T_FILE_p fx.devnull
#define T_char_p fx.buf
#define T_const_int64_t_p fx.shape
#define T_latup_tensor_p (&fx.scratch)
#define T_const_latup_lua_p fx.lua
#define T_const_latup_vae_p fx.vae
#define T_latup_lua_p fx.lua
#define T_latup_vae_p fx.vae
#define T_latup_lua_p_p (&fx.lua_out)
#define T_latup_vae_p_p (&fx.vae_out)
#define T_latup_call_p_p (&fx.call_out)
#define T_latup_call_p fx.call
#define T_const_latup_call_p fx.call
#define T_latup_outputs_p fx.outs
#define T_latup_outputs_p_p (&fx.outs_out)
#define T_const_latup_call_opts_p (&fx.copts)
#define T_const_latup_run_opts_p (&fx.ropts)
#define T_const_latup_decode_opts_p (&fx.dopts)
#define T_const_latup_encode_opts_p (&fx.eopts)
#define T_latup_lua_plan_p (&fx.lplan)
#define T_const_latup_lua_plan_p (&fx.lplan)
#define T_latup_vae_plan_p (&fx.vplan)
#define T_const_latup_vae_plan_p (&fx.vplan)
#define T_latup_decode_plan_p (&fx.dplan)
#define T_const_latup_plan_p latup_call_plan(fx.call)
#define T_const_latup_latent_family_p latup_latent_family_find("flux")
#define T_const_latup_vae_config_p latup_vae_get_config(fx.vae)
#define T_latup_system_info_p (&fx.si)
#define T_const_latup_system_info_p (&fx.si)
#define T_latup_checkpoint_info_p (&fx.ci)
#define T_latup_file_kind_p (&fx.kind)
#define T_latup_status LATUP_E_INPUT
#define T_latup_tail LATUP_TAIL_LUA_HEADS
#define T_latup_vae_naming LATUP_VAE_NAMES_LDM
#define T_latup_vae_encoder_kind LATUP_VAE_ENCODER_LDM
#define T_latup_device LATUP_DEVICE_CPU
#define T_latup_pixel_range LATUP_PIXELS_SIGNED
/* no default for strings, ints, sizes and input tensors: each function says what it reads */
#define ARG_latup_tensor_numel_t (&fx.x)
#define ARG_latup_tensor_alloc_ndim 3
#define ARG_latup_shape_str_n sizeof fx.buf
#define ARG_latup_shape_str_ndim 3
#define ARG_latup_npy_read_path fx.npy_in
#define ARG_latup_npy_write_path fx.w_npy
#define ARG_latup_npy_write_t (&fx.x)
#define ARG_latup_latent_family_find_name "flux"
#define ARG_latup_latent_to_vae_x (&fx.xcopy)
#define TENSOR_IN_latup_latent_to_vae_x 1
#define ARG_latup_flux_unpack_packed (&fx.packed)
#define ARG_latup_flux_unpack_h 8
#define ARG_latup_flux_unpack_w 8
#define ARG_latup_lua_load_path LUA_PATH
#define ARG_latup_lua_plan_memory_H 8
#define ARG_latup_lua_plan_memory_W 8
#define ARG_latup_lua_plan_memory_scale 2
#define ARG_latup_lua_upscale_x (&fx.x)
#define ARG_latup_lua_upscale_scale 2
#define ARG_latup_vae_load_path VAE_PATH
#define ARG_latup_vae_plan_memory_h 4
#define ARG_latup_vae_plan_memory_w 4
#define ARG_latup_vae_plan_decode_h 4
#define ARG_latup_vae_plan_decode_w 4
#define ARG_latup_vae_decode_z (&fx.z)
#define ARG_latup_vae_load_parts_path VAE_PATH
#define ARG_latup_vae_load_parts_parts LATUP_VAE_DECODER
#define ARG_latup_vae_plan_encode_v fx.venc
#define ARG_latup_vae_plan_encode_H 16
#define ARG_latup_vae_plan_encode_W 16
#define ARG_latup_vae_encode_v fx.venc
#define ARG_latup_vae_encode_img (&fx.img)
#define ARG_latup_latent_from_vae_x (&fx.xcopy)
#define TENSOR_IN_latup_latent_from_vae_x 1
#define ARG_latup_prepare_x (&fx.x)
#define ARG_latup_execute_x (&fx.x)
#define ARG_latup_set_error_fmt "a caller's message"
#define ARG_latup_error_prefix_prefix "prefix"
#define ARG_latup_tensor_read_path fx.npy_in
#define ARG_latup_tensor_read_key NULL
#define ARG_latup_png_write_path fx.w_png
#define ARG_latup_png_write_img (&fx.img)
#define ARG_latup_png_write_bits 8
#define ARG_latup_png_read_path fx.png_in
#define ARG_latup_output_check_path fx.c_npy
#define ARG_latup_outputs_add_npy_path fx.o_npy
#define ARG_latup_outputs_add_npy_t (&fx.x)
#define ARG_latup_outputs_add_png_path fx.o_png
#define ARG_latup_outputs_add_png_img (&fx.img)
#define ARG_latup_outputs_add_png_bits 8
#define ARG_latup_outputs_add_png_text_path fx.o_png
#define ARG_latup_outputs_add_png_text_img (&fx.img)
#define ARG_latup_outputs_add_png_text_bits 8
#define ARG_latup_outputs_add_png_text_text G_TEXT
#define ARG_latup_outputs_add_png_text_n_text 1
#define ARG_latup_png_write_text_path fx.w_png
#define ARG_latup_png_write_text_img (&fx.img)
#define ARG_latup_png_write_text_bits 8
#define ARG_latup_png_write_text_text G_TEXT
#define ARG_latup_png_write_text_n_text 1
static const latup_png_text G_TEXT[1] = {{"Software", "test_api_contract"}};
static uint8_t G_RGB[3 * 256]; /* fx.img's bytes */
#define ARG_latup_image_to_rgb8_img (&fx.img)
#define ARG_latup_image_to_rgb8_rgb G_RGB
#define ARG_latup_checkpoint_info_read_path LUA_PATH
#define ARG_latup_system_info_print_prefix ""

/* the pointers latup.h says may be NULL: the call then does its ordinary work */
static const char *const NULLABLE[] = {
    "latup_lua_plan_memory.opts", "latup_lua_upscale.opts", "latup_vae_plan_decode.opts",
    "latup_vae_decode.opts",      "latup_vae_plan_encode.opts", "latup_vae_encode.opts", "latup_execute.upscaled", "latup_tensor_read.key",
    "latup_tensor_read.kind",     "latup_tensor_free.t",    "latup_system_info_print.prefix",
};
/* the one tensor argument that may come without data: a plan of a shape */
static const char *const SHAPE_ONLY[] = {"latup_prepare.x"};

enum { CASE_NULL, CASE_TENSOR, CASE_ENUM };
enum { K_STATUS, K_VOID, K_POINTER, K_NUMBER };
typedef struct {
    const char *fn, *arg;
    int pos, cls, kind;
    long (*run)(const void *bad);
} api_case;

#include "api_cases.h"

static int listed(const char *const *list, size_t n, const char *fn, const char *arg) {
    char k[128];
    snprintf(k, sizeof k, "%s.%s", fn, arg);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], k)) return 1;
    return 0;
}

/* ---- malformed tensors, each the last bytes of its own heap block ---- */
#define N_BAD 8
static const char *const BAD_NAMES[N_BAD] = {"data NULL", "rank 0",  "rank 5", "rank -1", "rank 1000",
                                             "a negative dimension", "a 2^61 batch", "misaligned data"};
static float g_buf[1024];
static latup_tensor *bad_tensor(int v) {
    latup_tensor *t = malloc(sizeof *t);
    *t = (latup_tensor){.data = g_buf, .ndim = 3, .shape = {16, 8, 8}};
    switch (v) {
    case 0: t->data = NULL; break;
    case 1: t->ndim = 0; break;
    case 2: t->ndim = 5; break;
    case 3: t->ndim = -1; break;
    case 4: t->ndim = 1000; break;
    case 5: t->shape[1] = -8; break;
    case 6: *t = (latup_tensor){.data = g_buf, .ndim = 4, .shape = {(int64_t)1 << 61, 16, 8, 8}}; break;
    case 7: t->data = (float *)(void *)((char *)g_buf + 1); break; /* UBSan: a misaligned load if read */
    }
    return t;
}
/* 8: one past the last value of the longest enum (latup_status: LATUP_E_CANCELLED = 7) */
static const int BAD_ENUMS[] = {-1, 8, INT_MAX, INT_MIN};
#define N_ENUMS ((int)(sizeof BAD_ENUMS / sizeof BAD_ENUMS[0]))

/* One case in a child: its result and message come back through a pipe; a crash, a sanitizer
 * report (exit 1) or a hang (60 s) is reported as such. */
typedef struct {
    int ok;
    long result;
    char msg[512];
    char how[128];
} outcome;

static outcome run_child(const api_case *c, int variant) {
    outcome o = {0};
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(o.how, sizeof o.how, "pipe failed");
        return o;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        /* cmocka's handlers would catch a crash and go on running tests in this child */
        const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGALRM};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
        alarm(60);
        const void *bad = NULL;
        if (c->cls == CASE_TENSOR) bad = bad_tensor(variant);
        if (c->cls == CASE_ENUM) bad = &BAD_ENUMS[variant];
        long r = c->run(bad);
        char line[sizeof o.msg + 32];
        int n = snprintf(line, sizeof line, "%ld %s", r, latup_last_error());
        if (write(fd[1], line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1)) < 0) _exit(3);
        _exit(0); /* no exit handlers: LeakSanitizer is not the question here */
    }
    close(fd[1]);
    char line[sizeof o.msg + 32] = {0};
    size_t got = 0;
    ssize_t k;
    while (got < sizeof line - 1 && (k = read(fd[0], line + got, sizeof line - 1 - got)) > 0) got += (size_t)k;
    close(fd[0]);
    int ws;
    waitpid(pid, &ws, 0);
    if (WIFSIGNALED(ws)) snprintf(o.how, sizeof o.how, "killed by signal %d (%s)", WTERMSIG(ws), strsignal(WTERMSIG(ws)));
    else if (WEXITSTATUS(ws) != 0) snprintf(o.how, sizeof o.how, "exited %d (a sanitizer report above?)", WEXITSTATUS(ws));
    else if (got == 0) snprintf(o.how, sizeof o.how, "no result");
    else {
        char *sp = strchr(line, ' ');
        o.result = strtol(line, NULL, 10);
        snprintf(o.msg, sizeof o.msg, "%s", sp ? sp + 1 : "");
        o.ok = 1;
    }
    return o;
}

static int g_failed, g_cases;

static void report(int pass, const api_case *c, const char *what, const outcome *o, const char *expect) {
    g_cases++;
    if (!pass) g_failed++;
    char got[700];
    if (!o->ok) snprintf(got, sizeof got, "%s", o->how);
    else if (c->kind == K_STATUS)
        snprintf(got, sizeof got, "%s: %s", latup_status_name((latup_status)o->result), o->msg);
    else snprintf(got, sizeof got, "returned %ld", o->result);
    printf("%s %s(%s = %s): %s%s%s\n", pass ? "ok  " : "FAIL", c->fn, c->arg, what, got, pass ? "" : "; expected ",
           pass ? "" : expect);
}

static void run_cases(int cls) {
    for (size_t i = 0; i < sizeof API_CASES / sizeof API_CASES[0]; i++) {
        const api_case *c = &API_CASES[i];
        if (c->cls != cls) continue;
        const int nvar = cls == CASE_TENSOR ? N_BAD : cls == CASE_ENUM ? N_ENUMS : 1;
        for (int v = 0; v < nvar; v++) {
            const outcome o = run_child(c, v);
            char what[64];
            if (cls == CASE_NULL) snprintf(what, sizeof what, "NULL");
            else if (cls == CASE_TENSOR) snprintf(what, sizeof what, "%s", BAD_NAMES[v]);
            else snprintf(what, sizeof what, "%d", BAD_ENUMS[v]);
            int pass = o.ok;
            const char *expect = "no crash";
            if (pass && c->kind == K_STATUS) {
                if (o.result == LATUP_E_INTERNAL) pass = 0, expect = "a caller's error, not LATUP_E_INTERNAL";
                else if (cls == CASE_NULL && listed(NULLABLE, sizeof NULLABLE / sizeof *NULLABLE, c->fn, c->arg))
                    pass = o.result == LATUP_OK, expect = "ok (the header says it may be NULL)";
                else if (cls == CASE_TENSOR && v == 0 &&
                         listed(SHAPE_ONLY, sizeof SHAPE_ONLY / sizeof *SHAPE_ONLY, c->fn, c->arg))
                    pass = o.result == LATUP_OK, expect = "ok (a shape alone is a plan)";
                else {
                    pass = o.result == LATUP_E_USAGE && strstr(o.msg, c->arg) != NULL;
                    expect = "usage error naming the argument";
                }
            }
            if (pass && cls == CASE_ENUM && c->kind == K_POINTER) pass = o.result == 1, expect = "a name (\"unknown\")";
            if (pass && cls == CASE_TENSOR && c->kind == K_NUMBER)
                pass = v == 0 || v == 7 ? o.result == 1024 : o.result == -1, expect = "-1 (1024 for a shape that holds)";
            report(pass, c, what, &o, expect);
        }
    }
}

static void test_null_pointers(void **state) {
    (void)state;
    g_failed = g_cases = 0;
    run_cases(CASE_NULL);
    printf("NULL arguments: %d cases, %d failed\n", g_cases, g_failed);
    assert_int_equal(g_failed, 0);
}

static void test_malformed_tensors(void **state) {
    (void)state;
    g_failed = g_cases = 0;
    run_cases(CASE_TENSOR);
    printf("malformed tensors: %d cases, %d failed\n", g_cases, g_failed);
    assert_int_equal(g_failed, 0);
}

static void test_enum_arguments(void **state) {
    (void)state;
    g_failed = g_cases = 0;
    run_cases(CASE_ENUM);
    printf("enum arguments: %d cases, %d failed\n", g_cases, g_failed);
    assert_int_equal(g_failed, 0);
}

/* Every function of latup.h is in the table; those without a pointer, tensor or enum argument
 * are named, so the count is visible. */
static void test_coverage(void **state) {
    (void)state;
    const size_t nf = sizeof API_FUNCTIONS / sizeof API_FUNCTIONS[0];
    size_t covered = 0;
    for (size_t f = 0; f < nf; f++) {
        int n = 0;
        for (size_t i = 0; i < sizeof API_CASES / sizeof API_CASES[0]; i++) n += !strcmp(API_CASES[i].fn, API_FUNCTIONS[f]);
        if (n) covered++;
        else printf("     %s: no pointer, tensor or enum argument (nothing hostile to pass)\n", API_FUNCTIONS[f]);
    }
    printf("latup.h: %zu functions, %zu with hostile-argument cases, %zu cases\n", nf, covered,
           sizeof API_CASES / sizeof API_CASES[0]);
    assert_true(nf >= 50);
    assert_true(covered >= 45);
}

/* ---- by hand ---- */

static void test_shape_str_edges(void **state) {
    (void)state;
    char b[64];
    int64_t *sh = malloc(4 * sizeof *sh); /* exactly LATUP_MAX_DIMS: ASan sees any read past it */
    for (int i = 0; i < 4; i++) sh[i] = i + 1;
    assert_string_equal(latup_shape_str(b, sizeof b, 4, sh), "[1,2,3,4]");
    assert_string_equal(latup_shape_str(b, sizeof b, 0, sh), "[]");
    assert_string_equal(latup_shape_str(b, sizeof b, 5, sh), "[rank 5]");
    assert_string_equal(latup_shape_str(b, sizeof b, -1, sh), "[rank -1]");
    assert_string_equal(latup_shape_str(b, sizeof b, INT_MAX, sh), "[rank 2147483647]");
    assert_string_equal(latup_shape_str(b, 4, 4, sh), "[1,");
    assert_string_equal(latup_shape_str(b, 0, 4, sh), "");
    assert_string_equal(latup_shape_str(NULL, 10, 4, sh), "");
    assert_string_equal(latup_shape_str(b, sizeof b, 2, NULL), "[rank 2]");
    sh[0] = INT64_MIN;
    assert_string_equal(latup_shape_str(b, sizeof b, 1, sh), "[-9223372036854775808]");
    free(sh);
    printf("ok   latup_shape_str: ranks 0, 4, 5, -1, INT_MAX; n 0 and 4; NULL buf and shape\n");
}

static void test_numel_and_alloc_edges(void **state) {
    (void)state;
    latup_tensor t = {.ndim = 4, .shape = {(int64_t)1 << 61, 16, 8, 8}};
    assert_int_equal(latup_tensor_numel(&t), -1);
    t = (latup_tensor){.ndim = 4, .shape = {INT64_MAX, 1, 1, 1}};
    assert_int_equal(latup_tensor_numel(&t), -1); /* its bytes overflow */
    t = (latup_tensor){.ndim = 2, .shape = {0, INT64_MAX}};
    assert_int_equal(latup_tensor_numel(&t), 0);
    t = (latup_tensor){.ndim = 1, .shape = {(int64_t)1 << 40}};
    assert_int_equal(latup_tensor_numel(&t), (int64_t)1 << 40);
    assert_int_equal(latup_tensor_numel(NULL), -1);

    latup_tensor a;
    const int64_t sh[4] = {2, 3, 4, 5};
    assert_int_equal(latup_tensor_alloc(&a, 0, sh), LATUP_E_USAGE);
    assert_null(a.data);
    assert_int_equal(latup_tensor_alloc(&a, 5, sh), LATUP_E_USAGE);
    const int64_t neg[2] = {2, -1};
    assert_int_equal(latup_tensor_alloc(&a, 2, neg), LATUP_E_USAGE);
    assert_non_null(strstr(latup_last_error(), "negative"));
    const int64_t huge[4] = {(int64_t)1 << 61, 16, 8, 8};
    assert_int_equal(latup_tensor_alloc(&a, 4, huge), LATUP_E_NOMEM);
    assert_int_equal(a.ndim, 0);
    assert_int_equal(latup_tensor_alloc(&a, 4, sh), LATUP_OK);
    assert_int_equal(latup_tensor_numel(&a), 120);
    latup_tensor_free(&a);
    printf("ok   latup_tensor_numel and latup_tensor_alloc: ranks 0 and 5, negative, 2^61 and INT64_MAX sizes\n");
}

/* An enum field of an options struct is an argument too. */
static void test_enum_fields(void **state) {
    (void)state;
    const int bad[] = {-1, 2, 7, INT_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        latup_call_opts co = {.lua = fx.lua, .scale = 2, .device = (latup_device)bad[i]};
        assert_int_equal(latup_call_opts_check(&co), LATUP_E_USAGE);
        latup_call *c = NULL;
        assert_int_equal(latup_prepare(&co, &fx.x, &c), LATUP_E_USAGE);
        assert_null(c);
        latup_run_opts ro = {.device = (latup_device)bad[i]};
        latup_tensor y;
        assert_int_equal(latup_lua_upscale(fx.lua, &fx.x, 2, &y, &ro), LATUP_E_USAGE);
        assert_null(y.data);
        latup_lua_plan lp;
        assert_int_equal(latup_lua_plan_memory(fx.lua, 8, 8, 2, &ro, &lp), LATUP_E_USAGE);
        latup_decode_opts d = {.device = (latup_device)bad[i]};
        assert_int_equal(latup_vae_decode(fx.vae, &fx.z, &y, &d), LATUP_E_USAGE);
        latup_decode_plan dp;
        assert_int_equal(latup_vae_plan_decode(fx.vae, 4, 4, &d, &dp), LATUP_E_USAGE);
        latup_encode_opts eo = {.device = (latup_device)bad[i]};
        assert_int_equal(latup_vae_encode(fx.venc, &fx.img, &y, &eo), LATUP_E_USAGE);
        assert_null(y.data);
        assert_int_equal(latup_vae_plan_encode(fx.venc, 16, 16, &eo, &dp), LATUP_E_USAGE);
        assert_int_equal(latup_device_check((latup_device)bad[i]), LATUP_E_USAGE);
        assert_int_equal(latup_png_write(fx.w_png, &fx.img, (latup_pixel_range)bad[i], 8), LATUP_E_USAGE);
    }
    latup_call_opts co = {.lua = fx.lua, .scale = 2, .conv_band_rows = -1};
    assert_int_equal(latup_call_opts_check(&co), LATUP_E_USAGE);
    latup_tensor y;
    for (int s = -3; s <= 9; s++)
        if (s != 2 && s != 4) assert_int_equal(latup_lua_upscale(fx.lua, &fx.x, s, &y, NULL), LATUP_E_USAGE);
    assert_int_equal(latup_lua_upscale(fx.lua, &fx.x, INT_MAX, &y, NULL), LATUP_E_USAGE);
    assert_int_equal(latup_lua_upscale(fx.lua, &fx.x, INT_MIN, &y, NULL), LATUP_E_USAGE);
    assert_int_equal(latup_png_write(fx.w_png, &fx.img, LATUP_PIXELS_SIGNED, 7), LATUP_E_USAGE);
    latup_vae *pv = NULL;
    for (int parts = -1; parts <= 4; parts += 5) {
        assert_int_equal(latup_vae_load_parts(ENC_PATH, parts, &pv), LATUP_E_USAGE);
        assert_null(pv);
    }
    printf("ok   enum fields: device -1, 2, 7, INT_MAX in call, run, decode and encode options; parts -1, 4; pixel ranges; scales -3..9, "
           "INT_MAX, INT_MIN; PNG bits 7\n");
}

/* An output tensor that is also the input, or both outputs in one struct, is refused before
 * either is cleared. */
static void test_aliased_tensors(void **state) {
    (void)state;
    latup_tensor x = fx.x;
    assert_int_equal(latup_lua_upscale(fx.lua, &x, 2, &x, NULL), LATUP_E_USAGE);
    assert_ptr_equal(x.data, fx.x.data);
    assert_int_equal(latup_vae_decode(fx.vae, &fx.z, (latup_tensor *)&fx.z, NULL), LATUP_E_USAGE);
    assert_non_null(fx.z.data);
    latup_tensor t = {0};
    assert_int_equal(latup_execute(fx.call, &fx.x, &t, &t), LATUP_E_USAGE);
    assert_int_equal(latup_execute(fx.call, &x, NULL, &x), LATUP_E_USAGE);
    assert_int_equal(latup_execute(fx.call, &x, &x, &t), LATUP_E_USAGE);
    assert_ptr_equal(x.data, fx.x.data);
    assert_int_equal(latup_flux_unpack(&fx.packed, 8, 8, (latup_tensor *)&fx.packed), LATUP_E_USAGE);
    assert_non_null(fx.packed.data);
    assert_int_equal(latup_vae_encode(fx.venc, &fx.img, (latup_tensor *)&fx.img, NULL), LATUP_E_USAGE);
    assert_non_null(fx.img.data);
    printf("ok   aliased tensors: y = x, img = z, upscaled = out, out = x, upscaled = x, out = packed, z = img\n");
}

/* The sizes in messages are computed in 64 bits: 131072 x 131072 packs into 2^32 tokens. */
static void test_flux_unpack_sizes(void **state) {
    (void)state;
    latup_tensor out;
    assert_int_equal(latup_flux_unpack(&fx.packed, 131072, 131072, &out), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "4294967296"));
    assert_int_equal(latup_flux_unpack(&fx.packed, INT_MAX - 1, INT_MAX - 1, &out), LATUP_E_INPUT);
    assert_int_equal(latup_flux_unpack(&fx.packed, 7, 8, &out), LATUP_E_USAGE);
    assert_int_equal(latup_flux_unpack(&fx.packed, 8, 8, &out), LATUP_OK);
    latup_tensor_free(&out);
    printf("ok   latup_flux_unpack: 131072 x 131072 (2^32 tokens), (INT_MAX-1)^2, odd sides\n");
}

/* A handle of the other type (what a binding's mix-up passes) is refused, not read as its own. */
static void test_handle_types(void **state) {
    (void)state;
    const latup_lua *vae_as_lua = (const latup_lua *)(const void *)fx.vae;
    const latup_vae *lua_as_vae = (const latup_vae *)(const void *)fx.lua;
    latup_tensor y;
    assert_int_equal(latup_lua_upscale(vae_as_lua, &fx.x, 2, &y, NULL), LATUP_E_USAGE);
    assert_non_null(strstr(latup_last_error(), "not a LUA model"));
    latup_lua_plan lp;
    assert_int_equal(latup_lua_plan_memory(vae_as_lua, 8, 8, 2, NULL, &lp), LATUP_E_USAGE);
    assert_null(latup_lua_get_config(vae_as_lua));
    assert_int_equal(latup_vae_decode(lua_as_vae, &fx.z, &y, NULL), LATUP_E_USAGE);
    assert_non_null(strstr(latup_last_error(), "not a VAE"));
    latup_vae_plan vp;
    assert_int_equal(latup_vae_plan_memory(lua_as_vae, 4, 4, &vp), LATUP_E_USAGE);
    latup_decode_plan dp;
    assert_int_equal(latup_vae_plan_decode(lua_as_vae, 4, 4, NULL, &dp), LATUP_E_USAGE);
    assert_null(latup_vae_get_config(lua_as_vae));
    assert_int_equal(latup_vae_encode(lua_as_vae, &fx.img, &y, NULL), LATUP_E_USAGE);
    assert_non_null(strstr(latup_last_error(), "not a VAE"));
    assert_int_equal(latup_vae_plan_encode(lua_as_vae, 16, 16, NULL, &dp), LATUP_E_USAGE);
    assert_non_null(strstr(latup_last_error(), "not a VAE"));
    latup_call_opts co = {.lua = vae_as_lua, .scale = 2};
    latup_call *c = NULL;
    assert_int_equal(latup_prepare(&co, &fx.x, &c), LATUP_E_USAGE);
    co = (latup_call_opts){.lua = fx.lua, .scale = 2, .vae = lua_as_vae};
    assert_int_equal(latup_prepare(&co, &fx.x, &c), LATUP_E_USAGE);
    assert_non_null(strstr(latup_last_error(), "opts->vae"));
    latup_lua_free((latup_lua *)vae_as_lua); /* refused silently: the VAE stays usable */
    latup_vae_free((latup_vae *)lua_as_vae);
    assert_non_null(latup_vae_get_config(fx.vae));
    assert_non_null(latup_lua_get_config(fx.lua));
    printf("ok   handles: a VAE as a LUA and a LUA as a VAE refused by every function that takes one, "
           "and not freed\n");
}

/* Sizes at the edges of int and int64_t: refused with a status, never wrapped. */
static void test_size_edges(void **state) {
    (void)state;
    const int sides[] = {0, -1, -8, INT_MAX, INT_MIN, 16385};
    latup_lua_plan lp;
    latup_vae_plan vp;
    latup_decode_plan dp;
    for (size_t i = 0; i < sizeof sides / sizeof sides[0]; i++) {
        assert_int_equal(latup_lua_plan_memory(fx.lua, sides[i], 8, 2, NULL, &lp), LATUP_E_INPUT);
        assert_int_equal(latup_lua_plan_memory(fx.lua, 8, sides[i], 4, NULL, &lp), LATUP_E_INPUT);
        assert_int_equal(latup_vae_plan_memory(fx.vae, sides[i], 4, &vp), LATUP_E_INPUT);
        assert_int_equal(latup_vae_plan_decode(fx.vae, 4, sides[i], NULL, &dp), LATUP_E_INPUT);
    }
    const int image_sides[] = {0, -1, 7, INT_MAX, INT_MIN, 65537}; /* 7: under the encoder's 8 pixels */
    for (size_t i = 0; i < sizeof image_sides / sizeof image_sides[0]; i++) {
        assert_int_equal(latup_vae_plan_encode(fx.venc, image_sides[i], 16, NULL, &dp), LATUP_E_INPUT);
        assert_int_equal(latup_vae_plan_encode(fx.venc, 16, image_sides[i], NULL, &dp), LATUP_E_INPUT);
    }
    /* a plan of a huge batch (shape only): counted in size_t, refused where it overflows */
    latup_call_opts co = {.lua = fx.lua, .scale = 4, .vae = fx.vae};
    latup_tensor x = {.ndim = 4, .shape = {(int64_t)1 << 40, 16, 8, 8}};
    latup_call *c = NULL;
    assert_int_equal(latup_prepare(&co, &x, &c), LATUP_OK);
    assert_true(latup_call_plan(c)->mem.peak > ((size_t)1 << 52));
    latup_call_free(c);
    co.max_memory = (size_t)1 << 30;
    assert_int_equal(latup_prepare(&co, &x, &c), LATUP_E_NOMEM);
    co.max_memory = 0;
    x.shape[0] = (int64_t)1 << 48; /* [2^48,16,8,8]: 2^60 bytes in, 2^64 upscaled x4 */
    assert_int_equal(latup_prepare(&co, &x, &c), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "too large"));
    x = (latup_tensor){.ndim = 4, .shape = {0, 16, 8, 8}};
    assert_int_equal(latup_prepare(&co, &x, &c), LATUP_E_INPUT);
    assert_null(c);
    printf("ok   sizes: sides 0, -1, -8, INT_MAX, INT_MIN, 16385 in every plan (image sides 0, -1, 7, INT_MAX, INT_MIN, 65537 in the encode's); batches 2^40 (planned), 2^48 "
           "(too large), 0 (empty)\n");
}

static int setup(void **state) {
    (void)state;
    if (setup_dir(state)) return -1;
    latup_set_threads(1); /* no OpenMP pool before the fork()s */
    if (latup_lua_load(LUA_PATH, &fx.lua) || latup_vae_load(VAE_PATH, &fx.vae) || latup_vae_load(ENC_PATH, &fx.venc)) {
        fprintf(stderr, "setup: %s\n", latup_last_error());
        return -1;
    }
    const int64_t xs[3] = {16, 8, 8}, zs[3] = {16, 4, 4}, ps[2] = {16, 64}, is[3] = {3, 16, 16};
    if (latup_tensor_alloc(&fx.x, 3, xs) || latup_tensor_alloc(&fx.xcopy, 3, xs) || latup_tensor_alloc(&fx.z, 3, zs) ||
        latup_tensor_alloc(&fx.packed, 2, ps) || latup_tensor_alloc(&fx.img, 3, is))
        return -1;
    for (int i = 0; i < 16 * 64; i++) fx.x.data[i] = fx.xcopy.data[i] = fx.packed.data[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < 16 * 16; i++) fx.z.data[i] = (float)((i * 13) % 7) / 7.0f - 0.5f;
    for (int i = 0; i < 3 * 256; i++) fx.img.data[i] = (float)((i * 29) % 17) / 8.0f - 1.0f;
    fx.shape[0] = 16, fx.shape[1] = 8, fx.shape[2] = 8, fx.shape[3] = 1;
    fx.devnull = fopen("/dev/null", "w");
    snprintf(fx.npy_in, sizeof fx.npy_in, "%s", tmp_path("in.npy"));
    snprintf(fx.png_in, sizeof fx.png_in, "%s", tmp_path("in.png"));
    snprintf(fx.w_npy, sizeof fx.w_npy, "%s", tmp_path("w.npy"));
    snprintf(fx.w_png, sizeof fx.w_png, "%s", tmp_path("w.png"));
    snprintf(fx.c_npy, sizeof fx.c_npy, "%s", tmp_path("c.npy"));
    snprintf(fx.o_npy, sizeof fx.o_npy, "%s", tmp_path("o.npy"));
    snprintf(fx.o_png, sizeof fx.o_png, "%s", tmp_path("o.png"));
    if (latup_npy_write(fx.npy_in, &fx.x) || latup_png_write(fx.png_in, &fx.img, LATUP_PIXELS_SIGNED, 8)) return -1;
    fx.copts = (latup_call_opts){.lua = fx.lua, .scale = 2, .vae = fx.vae};
    if (latup_prepare(&fx.copts, &fx.x, &fx.call)) {
        fprintf(stderr, "setup: %s\n", latup_last_error());
        return -1;
    }
    if (latup_lua_plan_memory(fx.lua, 8, 8, 2, NULL, &fx.lplan) || latup_vae_plan_memory(fx.vae, 4, 4, &fx.vplan) ||
        latup_system_info_get(&fx.si) || latup_outputs_new(&fx.outs))
        return -1;
    return 0;
}

static int teardown(void **state) {
    latup_outputs_free(fx.outs);
    latup_call_free(fx.call);
    latup_lua_free(fx.lua);
    latup_vae_free(fx.vae);
    latup_vae_free(fx.venc);
    latup_tensor_free(&fx.x);
    latup_tensor_free(&fx.xcopy);
    latup_tensor_free(&fx.z);
    latup_tensor_free(&fx.packed);
    latup_tensor_free(&fx.img);
    if (fx.devnull) fclose(fx.devnull);
    return remove_dir(state);
}

/* Every output a call fills is cleared as soon as its pointer is checked: after a failure (a
 * handle of the other type, a size out of range, a missing file, a scale the model lacks) it holds
 * zeros, never what was there before. Each output starts as 0xa5 bytes. */
static int zeroed(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

static void expect_cleared(const char *what, latup_status st, latup_status want, const void *out, size_t n) {
    const int ok = st == want && zeroed(out, n);
    printf("%-62s status %d (want %d), output cleared %s %s\n", what, (int)st, (int)want, zeroed(out, n) ? "yes" : "NO",
           ok ? "OK" : "NOT OK");
    assert_true(ok);
}

static void test_outputs_cleared_on_failure(void **state) {
    (void)state;
    const latup_lua *vae_as_lua = (const latup_lua *)(const void *)fx.vae;
    const latup_vae *lua_as_vae = (const latup_vae *)(const void *)fx.lua;
    latup_lua_plan lp;
    latup_vae_plan vp;
    latup_decode_plan dp;
    latup_checkpoint_info ci;
    latup_tensor t;
#define FILL(x) memset(&(x), 0xa5, sizeof(x))
    FILL(lp);
    expect_cleared("latup_lua_plan_memory, a VAE handle", latup_lua_plan_memory(vae_as_lua, 8, 8, 2, NULL, &lp),
                   LATUP_E_USAGE, &lp, sizeof lp);
    FILL(lp);
    expect_cleared("latup_lua_plan_memory, a 0x8 latent", latup_lua_plan_memory(fx.lua, 0, 8, 2, NULL, &lp),
                   LATUP_E_INPUT, &lp, sizeof lp);
    FILL(vp);
    expect_cleared("latup_vae_plan_memory, a LUA handle", latup_vae_plan_memory(lua_as_vae, 4, 4, &vp), LATUP_E_USAGE,
                   &vp, sizeof vp);
    FILL(vp);
    expect_cleared("latup_vae_plan_memory, a 0x4 latent", latup_vae_plan_memory(fx.vae, 0, 4, &vp), LATUP_E_INPUT, &vp,
                   sizeof vp);
    FILL(dp);
    expect_cleared("latup_vae_plan_decode, a 4x8193 latent", latup_vae_plan_decode(fx.vae, 4, 8193, NULL, &dp),
                   LATUP_E_INPUT, &dp, sizeof dp);
    FILL(dp);
    expect_cleared("latup_vae_plan_encode, a LUA handle", latup_vae_plan_encode(lua_as_vae, 16, 16, NULL, &dp),
                   LATUP_E_USAGE, &dp, sizeof dp);
    FILL(ci);
    expect_cleared("latup_checkpoint_info_read, no such file", latup_checkpoint_info_read("/nonexistent/x.safetensors", &ci),
                   LATUP_E_IO, &ci, sizeof ci);
    FILL(t);
    expect_cleared("latup_lua_upscale, scale 3", latup_lua_upscale(fx.lua, &fx.x, 3, &t, NULL), LATUP_E_USAGE, &t,
                   sizeof t);
    FILL(t);
    expect_cleared("latup_vae_decode, a LUA handle", latup_vae_decode(lua_as_vae, &fx.z, &t, NULL), LATUP_E_USAGE, &t,
                   sizeof t);
    FILL(t);
    expect_cleared("latup_tensor_read, no such file", latup_tensor_read("/nonexistent/x.npy", NULL, &t, NULL), LATUP_E_IO,
                   &t, sizeof t);
#undef FILL
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coverage),        cmocka_unit_test(test_null_pointers),
        cmocka_unit_test(test_malformed_tensors), cmocka_unit_test(test_enum_arguments),
        cmocka_unit_test(test_shape_str_edges),   cmocka_unit_test(test_numel_and_alloc_edges),
        cmocka_unit_test(test_enum_fields),       cmocka_unit_test(test_aliased_tensors),
        cmocka_unit_test(test_flux_unpack_sizes), cmocka_unit_test(test_size_edges),
        cmocka_unit_test(test_handle_types),      cmocka_unit_test(test_outputs_cleared_on_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
