/* test_system.c — which OpenBLAS kernels run and whether latup says so (issue 17):
 * latup_system_info_get against OpenBLAS's own answers, the core-name -> ISA table against the
 * kernel files of OpenBLAS 0.3.21, the verdict and note for CPUs and environments this machine
 * lacks, and build/latup under a forced OPENBLAS_CORETYPE (a subprocess: OpenBLAS reads it when it
 * loads): the warning in `--version --verbose` and `upscale --verbose` exactly when the kernels
 * are narrower than the CPU. One report line per check. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli_util.h"
#include "test_util.h"
#include "tmpdir.h"

#include "api/system.h"
#include "latup.h"

#include <cblas.h>
#include <ctype.h>

static char g_stderr[1 << 16];

#define CHECK(name, what, cond) tu_check_true(name, what, (cond))

/* ---- the API, in this process -------------------------------------------------------------------- */

static void test_info_get(void **state) {
    (void)state;
    const int failed_before = tu_n_failed;
    latup_system_info s;
    memset(&s, 0x55, sizeof s); /* every field must be written */
    assert_int_equal(latup_system_info_get(&s), LATUP_OK);
    printf("here: %s kernels (%s), CPU %s (%s), %d threads; %s\n", s.blas_core, s.blas_isa, s.cpu_name, s.cpu_isa,
           s.threads, s.blas_config);
    const char *fields[][2] = {{"blas_core", s.blas_core}, {"blas_config", s.blas_config}, {"blas_isa", s.blas_isa},
                               {"cpu_isa", s.cpu_isa},     {"cpu_name", s.cpu_name}};
    const size_t sizes[] = {sizeof s.blas_core, sizeof s.blas_config, sizeof s.blas_isa, sizeof s.cpu_isa,
                            sizeof s.cpu_name};
    for (int i = 0; i < 5; i++) {
        char what[96];
        snprintf(what, sizeof what, "%s non-empty, NUL-terminated", fields[i][0]);
        CHECK("system_info_get", what, fields[i][1][0] && memchr(fields[i][1], '\0', sizes[i]));
    }
    CHECK("system_info_get", "blas_core == openblas_get_corename()", !strcmp(s.blas_core, openblas_get_corename()));
    CHECK("system_info_get", "blas_config == openblas_get_config()", !strcmp(s.blas_config, openblas_get_config()));
    CHECK("system_info_get", "blas_isa == the table's for blas_core", !strcmp(s.blas_isa, latup_blas_core_isa(s.blas_core)));
    CHECK("system_info_get", "threads >= 1", s.threads >= 1);
    CHECK("system_info_get", "blas_narrower is 0 or 1", s.blas_narrower == 0 || s.blas_narrower == 1);
    CHECK("system_info_get", "note non-empty exactly when narrower", !s.note[0] == !s.blas_narrower);
#if defined(__x86_64__)
    CHECK("system_info_get", "cpu_isa on x86-64 is at least SSE2", strcmp(s.cpu_isa, LATUP_ISA_UNKNOWN) != 0);
    { /* the widest ISA from Linux's own list of what the CPU has and the kernel enables */
        FILE *f = fopen("/proc/cpuinfo", "r");
        char line[8192], want[16] = "";
        while (f && !want[0] && fgets(line, sizeof line, f)) {
            if (strncmp(line, "flags", 5)) continue;
            char words[sizeof line + 8];
            snprintf(words, sizeof words, " %s ", strchr(line, ':') ? strchr(line, ':') + 1 : line);
            for (char *q = words; *q; q++)
                if (*q == '\n' || *q == '\t') *q = ' ';
#define HAS(x) (strstr(words, " " x " ") != NULL)
            snprintf(want, sizeof want, "%s",
                     HAS("avx512f") && HAS("avx512bw") && HAS("avx512dq") && HAS("avx512vl") ? LATUP_ISA_AVX512
                     : HAS("avx2") && HAS("fma")                                             ? LATUP_ISA_AVX2
                     : HAS("avx")                                                            ? LATUP_ISA_AVX
                                                                                             : LATUP_ISA_SSE2);
#undef HAS
        }
        if (f) fclose(f);
        char what[96];
        snprintf(what, sizeof what, "cpu_isa %s is /proc/cpuinfo's widest, %s", s.cpu_isa, want[0] ? want : "(no flags)");
        CHECK("system_info_get", what, !want[0] || !strcmp(s.cpu_isa, want));
    }
#endif
    CHECK("system_info_get", "NULL -> LATUP_E_USAGE naming the call",
          latup_system_info_get(NULL) == LATUP_E_USAGE && strstr(latup_last_error(), "latup_system_info_get"));

    /* the printed form: the kernel line, and the warning line only when narrower */
    latup_system_info p = {.blas_core = "Haswell", .blas_isa = "AVX2", .cpu_isa = "AVX-512", .threads = 1,
                           .blas_narrower = 1, .note = "the note"};
    char buf[512] = "";
    FILE *f = fopen(tmp_path("print.txt"), "w+");
    assert_non_null(f);
    latup_system_info_print(&p, f, "latup: ");
    p.blas_narrower = 0, p.threads = 3;
    latup_system_info_print(&p, f, NULL);
    latup_system_info_print(NULL, f, "x");
    rewind(f);
    buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
    fclose(f);
    CHECK("system_info_print", "kernel line, warning line, no warning when not narrower",
          !strcmp(buf, "latup: OpenBLAS Haswell kernels (AVX2), CPU AVX-512, 1 thread\n"
                       "latup: warning: the note\n"
                       "OpenBLAS Haswell kernels (AVX2), CPU AVX-512, 3 threads\n"));
    assert_int_equal(tu_n_failed - failed_before, 0);
}

/* ---- the table ---------------------------------------------------------------------------------------
 * Written from OpenBLAS 0.3.21's driver/others/dynamic.c (corename[]) and kernel/x86_64/KERNEL.*
 * (the sgemm kernel of each), not from src/api/system.c: Zen runs sgemm_kernel_8x4_haswell_2.c,
 * Steamroller and Excavator the Piledriver FMA kernel, Cooperlake includes KERNEL.SKYLAKEX;
 * SapphireRapids is 0.3.22's. */
static const struct {
    const char *core, *isa;
} OPENBLAS_CORES[] = {
    {"SkylakeX", "AVX-512"}, {"Cooperlake", "AVX-512"}, {"SapphireRapids", "AVX-512"},
    {"Haswell", "AVX2"},     {"Zen", "AVX2"},
    {"Sandybridge", "AVX"},  {"Bulldozer", "AVX"},      {"Piledriver", "AVX"},
    {"Steamroller", "AVX"},  {"Excavator", "AVX"},
    {"Nehalem", "SSE2"},     {"Prescott", "SSE2"},      {"Core2", "SSE2"},
    {"Penryn", "SSE2"},      {"Dunnington", "SSE2"},    {"Atom", "SSE2"},
    {"Nano", "SSE2"},        {"Northwood", "SSE2"},     {"Banias", "SSE2"},
    {"Opteron", "SSE2"},     {"Opteron_SSE3", "SSE2"},  {"Barcelona", "SSE2"},
    {"Bobcat", "SSE2"},      {"Katmai", "SSE"},         {"Coppermine", "SSE"},
    {"Athlon", "SSE"},
};

static void test_core_table(void **state) {
    (void)state;
    const int failed_before = tu_n_failed;
    for (size_t i = 0; i < sizeof OPENBLAS_CORES / sizeof OPENBLAS_CORES[0]; i++) {
        /* a TARGET= (non-dynamic) build names its core in capitals */
        char what[96], upper[32];
        size_t k = 0;
        for (; OPENBLAS_CORES[i].core[k] && k + 1 < sizeof upper; k++)
            upper[k] = (char)toupper((unsigned char)OPENBLAS_CORES[i].core[k]);
        upper[k] = '\0';
        snprintf(what, sizeof what, "%s, %s -> %s", OPENBLAS_CORES[i].core, upper, OPENBLAS_CORES[i].isa);
        CHECK("blas_core_isa", what,
              !strcmp(latup_blas_core_isa(OPENBLAS_CORES[i].core), OPENBLAS_CORES[i].isa) &&
                  !strcmp(latup_blas_core_isa(upper), OPENBLAS_CORES[i].isa));
    }
    const char *unknown[] = {"Unknown", "ARMV8", "NEOVERSEN1", "POWER9", "Haswel", "HaswellX", "", NULL};
    for (int i = 0; i < 8; i++) {
        char what[96];
        snprintf(what, sizeof what, "%s%s%s -> unknown", unknown[i] ? "\"" : "", unknown[i] ? unknown[i] : "NULL",
                 unknown[i] ? "\"" : "");
        CHECK("blas_core_isa", what, !strcmp(latup_blas_core_isa(unknown[i]), "unknown"));
    }
    /* the core a note suggests runs kernels of the ISA asked for */
    const char *isas[] = {"AVX-512", "AVX2", "AVX", "SSE2"}, *want[] = {"SkylakeX", "Haswell", "Sandybridge", "Nehalem"};
    for (int i = 0; i < 4; i++) {
        char what[96];
        snprintf(what, sizeof what, "core for %s: %s", isas[i], want[i]);
        const char *c = latup_blas_core_for_isa(isas[i]);
        CHECK("blas_core_for_isa", what, c && !strcmp(c, want[i]) && !strcmp(latup_blas_core_isa(c), isas[i]));
    }
    CHECK("blas_core_for_isa", "unknown -> NULL", latup_blas_core_for_isa("unknown") == NULL);
    assert_int_equal(tu_n_failed - failed_before, 0);
}

/* ---- the verdict and the note, for machines this is not ------------------------------------------- */

static latup_system_info explained(const char *core, const char *cpu, const char *coretype) {
    latup_system_info s = {.blas_config = "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY USE_OPENMP Zen MAX_THREADS=64"};
    snprintf(s.blas_core, sizeof s.blas_core, "%s", core);
    snprintf(s.cpu_isa, sizeof s.cpu_isa, "%s", cpu);
    snprintf(s.note, sizeof s.note, "stale"); /* explain must clear it */
    latup_system_explain(&s, coretype);
    return s;
}

static void test_verdict_and_note(void **state) {
    (void)state;
    const int failed_before = tu_n_failed;
    static const struct {
        const char *blas, *cpu;
        int narrower;
    } pairs[] = {
        {"AVX2", "AVX-512", 1}, {"AVX", "AVX2", 1},      {"SSE2", "AVX", 1},     {"SSE", "SSE2", 1},
        {"AVX-512", "AVX-512", 0}, {"AVX2", "AVX2", 0}, {"AVX-512", "AVX2", 0}, {"unknown", "AVX-512", 0},
        {"AVX2", "unknown", 0}, {"unknown", "unknown", 0},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char what[96];
        snprintf(what, sizeof what, "kernels %s on CPU %s: %s", pairs[i].blas, pairs[i].cpu,
                 pairs[i].narrower ? "narrower" : "not narrower");
        CHECK("isa_narrower", what, latup_isa_narrower(pairs[i].blas, pairs[i].cpu) == pairs[i].narrower);
    }

    /* issue 17's site: OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU */
    latup_system_info s = explained("Haswell", "AVX-512", "Haswell");
    printf("    note: %s\n", s.note);
    CHECK("system_explain", "forced Haswell on AVX-512: narrower, names the variable and SkylakeX",
          s.blas_narrower && !strcmp(s.blas_isa, "AVX2") && strstr(s.note, "OPENBLAS_CORETYPE=Haswell is set") &&
              strstr(s.note, "Haswell kernels (AVX2) on a CPU with AVX-512") &&
              strstr(s.note, "OPENBLAS_CORETYPE=SkylakeX"));
    /* an OpenBLAS older than the CPU: 0.3.21 runs its Zen (AVX2) kernels on an AVX-512 Zen 4 */
    s = explained("Zen", "AVX-512", NULL);
    printf("    note: %s\n", s.note);
    CHECK("system_explain", "unforced Zen on AVX-512: narrower, names the OpenBLAS version",
          s.blas_narrower && strstr(s.note, "OpenBLAS 0.3.21 does not recognise this CPU") &&
              strstr(s.note, "Zen kernels (AVX2) on a CPU with AVX-512") && !strstr(s.note, "is set"));
    s = explained("SkylakeX", "AVX-512", "SkylakeX");
    CHECK("system_explain", "forced SkylakeX on AVX-512: not narrower, no note", !s.blas_narrower && !s.note[0]);
    s = explained("Haswell", "AVX2", NULL);
    CHECK("system_explain", "Haswell on AVX2: not narrower, no note", !s.blas_narrower && !s.note[0]);
    s = explained("NEOVERSEN1", "unknown", NULL);
    CHECK("system_explain", "another architecture: unknown, not narrower, no note",
          !strcmp(s.blas_isa, "unknown") && !s.blas_narrower && !s.note[0]);
    /* the variable's bytes are the user's: shown escaped, never sent raw to a terminal */
    s = explained("Haswell", "AVX-512", "\x1b[2Jhaswell");
    CHECK("system_explain", "an escape byte in OPENBLAS_CORETYPE is shown as \\x1b",
          strstr(s.note, "OPENBLAS_CORETYPE=\\x1b[2Jhaswell") && !strchr(s.note, '\x1b'));
    assert_int_equal(tu_n_failed - failed_before, 0);
}

/* ---- build/latup under a forced OPENBLAS_CORETYPE ------------------------------------------------------ */

/* build/latup args with OPENBLAS_CORETYPE=core and one thread; stdout into *out (malloc'd),
 * stderr into g_stderr. Returns the exit status. */
static int run_with_core(const char *core, const char *const *args, char **out) {
    char env_core[64];
    snprintf(env_core, sizeof env_core, "OPENBLAS_CORETYPE=%s", core);
    const char *env[] = {env_core, "OMP_NUM_THREADS=1", NULL};
    const char *path = tmp_path("stdout.txt");
    const int rc = run_cli_io(g_dir, args, env, NULL, path, g_stderr, sizeof g_stderr);
    FILE *f = fopen(path, "r");
    *out = calloc(1 << 16, 1);
    assert_non_null(*out);
    if (f) {
        (*out)[fread(*out, 1, (1 << 16) - 1, f)] = '\0';
        fclose(f);
    }
    return rc;
}

static void test_cli_version_verbose(void **state) {
    (void)state;
    const int failed_before = tu_n_failed;
    latup_system_info here;
    assert_int_equal(latup_system_info_get(&here), LATUP_OK);
    const int avx512 = !strcmp(here.cpu_isa, "AVX-512"), avx2 = avx512 || !strcmp(here.cpu_isa, "AVX2");
    if (!avx2) {
        printf("this CPU has %s: no kernel set can be forced safely here (Haswell's need AVX2); skipped\n",
               here.cpu_isa);
        return;
    }
    if (!avx512) printf("this CPU has %s, not AVX-512: checking only that Haswell kernels bring no warning\n", here.cpu_isa);
    const char *forms[][3] = {{"--version", "--verbose", NULL}, {"-V", "-v", NULL}, {"version", "--verbose", NULL}};
    for (int i = 0; i < 3; i++) {
        char *out, what[96];
        const int rc = run_with_core("Haswell", forms[i], &out);
        snprintf(what, sizeof what, "Haswell: latup %s %s: exit 0, kernels, CPU, threads", forms[i][0], forms[i][1]);
        CHECK("cli_version", what,
              rc == 0 && strstr(out, "\nOpenBLAS: Haswell kernels (AVX2); OpenBLAS ") && strstr(out, "\nCPU:      ") &&
                  strstr(out, "\nthreads:  1 "));
        snprintf(what, sizeof what, "Haswell on %s: latup %s %s: %s", here.cpu_isa, forms[i][0], forms[i][1],
                 avx512 ? "warning line" : "no warning");
        const char *w = strstr(out, "\nwarning:  OPENBLAS_CORETYPE=Haswell is set: OpenBLAS runs its Haswell kernels "
                                    "(AVX2) on a CPU with AVX-512");
        CHECK("cli_version", what, avx512 ? w != NULL : strstr(out, "warning") == NULL);
        if (i == 0) printf("%s", out);
        free(out);
    }
    if (avx512) {
        char *out;
        const char *a[] = {"--version", "--verbose", NULL};
        const int rc = run_with_core("SkylakeX", a, &out);
        CHECK("cli_version", "SkylakeX on AVX-512: SkylakeX kernels, no warning",
              rc == 0 && strstr(out, "OpenBLAS: SkylakeX kernels (AVX-512)") && !strstr(out, "warning"));
        free(out);
    }
    /* anything but -v / --verbose stays a usage error */
    const char *bad[][4] = {{"--version", "--frob", NULL}, {"-V", "-v", "-v", NULL}, {"version", "-q", NULL}};
    for (int i = 0; i < 3; i++) {
        char *out, what[96];
        const int rc = run_with_core("Haswell", bad[i], &out);
        snprintf(what, sizeof what, "latup %s %s%s%s: usage error (exit 1), nothing on stdout", bad[i][0], bad[i][1],
                 bad[i][2] ? " " : "", bad[i][2] ? bad[i][2] : "");
        CHECK("cli_version", what, rc == 1 && !out[0] && strstr(g_stderr, "takes no arguments"));
        free(out);
    }
    assert_int_equal(tu_n_failed - failed_before, 0);
}

static void test_cli_upscale_verbose(void **state) {
    (void)state;
    const int failed_before = tu_n_failed;
    latup_system_info here;
    assert_int_equal(latup_system_info_get(&here), LATUP_OK);
    const int avx512 = !strcmp(here.cpu_isa, "AVX-512");
    if (!avx512 && strcmp(here.cpu_isa, "AVX2")) {
        printf("this CPU has %s: Haswell kernels cannot run here; skipped\n", here.cpu_isa);
        return;
    }
    const char *z = tmp_path("z2.npy");
    const char *a[] = {"upscale", "-m", "ref_data/small/model.safetensors.gz", "-s", "2", "-i", "ref_data/demo/latent.npy",
                       "-o", z, "--verbose", NULL};
    char *out;
    int rc = run_with_core("Haswell", a, &out);
    free(out);
    char want[160];
    snprintf(want, sizeof want, "\nlatup: OpenBLAS Haswell kernels (AVX2), CPU %s, 1 thread\n", here.cpu_isa);
    CHECK("cli_upscale", "Haswell: upscale --verbose exits 0 and prints the kernel line", rc == 0 && strstr(g_stderr, want));
    const char *w = strstr(g_stderr, want);
    const char *warn = "latup: warning: OPENBLAS_CORETYPE=Haswell is set: OpenBLAS runs its Haswell kernels (AVX2) "
                       "on a CPU with AVX-512;";
    CHECK("cli_upscale", avx512 ? "Haswell on AVX-512: the warning, right after the kernel line"
                                : "Haswell on AVX2: no warning",
          avx512 ? w && !strncmp(w + strlen(want), warn, strlen(warn)) : strstr(g_stderr, "warning") == NULL);
    if (w) printf("%.*s\n", (int)(strlen(want) - 1 + strcspn(w + strlen(want), "\n")), w + 1);
    /* without --verbose: not a word of it */
    a[9] = "-q";
    rc = run_with_core("Haswell", a, &out);
    free(out);
    CHECK("cli_upscale", "Haswell: upscale -q prints nothing", rc == 0 && !g_stderr[0]);
    assert_int_equal(tu_n_failed - failed_before, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info_get),           cmocka_unit_test(test_core_table),
        cmocka_unit_test(test_verdict_and_note),   cmocka_unit_test(test_cli_version_verbose),
        cmocka_unit_test(test_cli_upscale_verbose),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
