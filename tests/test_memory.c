/* test_memory — --max-memory is the process's budget (docs/memory.md). Each case runs build/latup
 * twice: with --dry-run --json for the plan's peak (the library's latup_call_memory, parsed), then
 * for real, its peak RSS (VmHWM) read from wait4's rusage. Two checks per case, one line each:
 *   rss <= budget + LATUP_MEMORY_SLACK  (the budget holds for the whole process)
 *   |plan - rss| <= 10% of rss          (the dry run tells a scheduler the truth)
 * By default the committed models (make test). With --released DIR, the released widths: DIR holds
 * lua_released.safetensors (LUA, E 360) and vae_flux_widths.safetensors (FLUX VAE), as
 * `make bench-peers` writes them into build/peers/; minutes, a benchmark rather than a test.
 * Not built into the sanitizer suite: ASan's shadow memory is not the process's memory. */
#define _DEFAULT_SOURCE
#include "latup.h"
#include "cli_util.h"
#include "io/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* What the measured peak may pass the budget by: the plan's process overhead is an estimate
 * (docs/memory.md: measured 6.3 to 11.4 MiB against 7.5 to 12 MiB planned, 1 to 4 threads). */
#define LATUP_MEMORY_SLACK ((size_t)4 << 20)
#define MiB (1024.0 * 1024.0)

static char g_dir[256];
static int g_fail, g_checks;

static void tmp(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", g_dir, name); }

/* Runs latup with args (NULL-terminated); stdout into out_path (or /dev/null). Returns the exit
 * status; *rss_kib the child's peak RSS (VmHWM), *secs its wall time. */
static int run(const char *const *args, const char *out_path, long *rss_kib, double *secs) {
    char err[512];
    struct rusage ru = {0};
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    const int rc = run_cli_ru(g_dir, args, NULL, NULL, out_path, err, sizeof err, &ru);
    gettimeofday(&t1, NULL);
    *rss_kib = ru.ru_maxrss;
    *secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_usec - t0.tv_usec) / 1e6;
    if (rc) printf("  latup exited %d: %s", rc, err);
    return rc;
}

/* The plan's peak and the first item's decode (tiled or not) from --dry-run --json. */
static int plan_of(const char *const *args, size_t *peak, int *tiled) {
    const char *a[40];
    int n = 0;
    for (; args[n] && n < 36; n++) a[n] = args[n];
    a[n++] = "--dry-run", a[n++] = "--json", a[n] = NULL;
    char json[512];
    tmp(json, sizeof json, "plan.json");
    long rss;
    double s;
    if (run(a, json, &rss, &s)) return -1;
    FILE *f = fopen(json, "rb");
    if (!f) return -1;
    char buf[1 << 16];
    const size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    latup_json_doc doc;
    if (latup_json_parse_bytes(buf, len, 100000, &doc) != LATUP_OK) {
        printf("  --dry-run --json: %s\n", latup_last_error());
        return -1;
    }
    const latup_json *p = latup_json_get(doc.root, "peak"), *items = latup_json_get(doc.root, "items");
    int ok = p && p->type == LATUP_JSON_INT && items && items->type == LATUP_JSON_ARRAY && items->u.kids.first;
    if (ok) {
        *peak = (size_t)p->u.i;
        const latup_json *d = latup_json_get(items->u.kids.first, "decode");
        const latup_json *t = d ? latup_json_get(d, "tiled") : NULL;
        *tiled = t && t->type == LATUP_JSON_TRUE;
    }
    latup_json_free(&doc);
    return ok ? 0 : -1;
}

static void check(int ok, const char *label, const char *fmt, double a, double b) {
    g_checks++;
    g_fail += !ok;
    printf("%-6s %-52s ", ok ? "OK" : "NOT OK", label);
    printf(fmt, a, b);
    printf("\n");
}

/* One command: its plan, then its run; budget 0: none given (the plan is still checked). */
static void measure(const char *label, const char *const *args, size_t budget, int want_tiled) {
    const char *a[40];
    int n = 0;
    for (; args[n] && n < 36; n++) a[n] = args[n];
    char b[32];
    if (budget) snprintf(b, sizeof b, "%zu", budget), a[n++] = "--max-memory", a[n++] = b;
    a[n] = NULL;
    size_t plan = 0;
    int tiled = 0;
    long kib = 0;
    double secs = 0;
    if (plan_of(a, &plan, &tiled) || run(a, NULL, &kib, &secs)) {
        check(0, label, "(%g %g) the command failed", 0, 0);
        return;
    }
    const double rss = kib * 1024.0;
    char l[160];
    printf("%s: plan %.1f MiB, peak RSS %.1f MiB%s%s, %.1f s\n", label, plan / MiB, rss / MiB,
           budget ? ", budget " : "", budget ? b : "", secs);
    if (want_tiled >= 0) {
        snprintf(l, sizeof l, "%s: decode %s", label, want_tiled ? "tiled" : "exact");
        check(tiled == want_tiled, l, "(%.0f, want %.0f)", tiled, want_tiled);
    }
    if (budget) {
        snprintf(l, sizeof l, "%s: rss <= budget + slack", label);
        check(rss <= (double)(budget + LATUP_MEMORY_SLACK), l, "rss %.1f MiB, budget %.1f MiB", rss / MiB, budget / MiB);
    }
    snprintf(l, sizeof l, "%s: plan within 10%% of rss", label);
    check(fabs((double)plan - rss) <= 0.10 * rss, l, "plan %.1f MiB, rss %.1f MiB", plan / MiB, rss / MiB);
}

/* A smooth latent [B,C,H,W] (B 0: [C,H,W]) as .npy. */
static void latent(const char *name, int B, int C, int H, int W) {
    latup_tensor t;
    const int64_t shape[4] = {B, C, H, W};
    if (latup_tensor_alloc(&t, B ? 4 : 3, B ? shape : shape + 1) != LATUP_OK) exit(1);
    for (int64_t i = 0; i < latup_tensor_numel(&t); i++) t.data[i] = 0.8f * sinf(0.37f * (float)i);
    char p[512];
    tmp(p, sizeof p, name);
    if (latup_npy_write(p, &t) != LATUP_OK) exit(1);
    latup_tensor_free(&t);
}

/* The exact plan's peak of a command, for budgets below it. */
static size_t exact_peak(const char *const *args) {
    size_t p = 0;
    int t;
    return plan_of(args, &p, &t) ? 0 : p;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void committed(void) {
    const char *lua = "ref_data/small/model.safetensors.gz", *wide = "ref_data/wide/model.safetensors.gz";
    const char *vae = "ref_data/vae/flux_small.ldm.safetensors.gz";
    char z[512], zd[512], zb[512], z2[512], out[512], dir[512];
    /* sizes whose tensors and arenas (40 to 110 MiB) outweigh the process's own few MiB */
    latent("z.npy", 0, 16, 72, 96), tmp(z, sizeof z, "z.npy");
    latent("zd.npy", 0, 16, 112, 144), tmp(zd, sizeof zd, "zd.npy");
    latent("zb.npy", 2, 16, 64, 64), tmp(zb, sizeof zb, "zb.npy");
    latent("z2.npy", 0, 16, 56, 72), tmp(z2, sizeof z2, "z2.npy");
    tmp(out, sizeof out, "out.npy"), tmp(dir, sizeof dir, "outs");
    measure("upscale x2 (small)", ARGS("upscale", "-m", lua, "-s", "2", "-i", z, "-o", out, "-t", "2"), 0, -1);
    measure("upscale x2 (wide)", ARGS("upscale", "-m", wide, "-s", "2", "-i", z, "-o", out, "-t", "2"), 0, -1);
    const char *const *dec = ARGS("decode", "--vae", vae, "-i", zd, "-o", out, "-t", "2", "--max-memory", "8G");
    const size_t exact = exact_peak(dec);
    measure("decode exact", ARGS("decode", "--vae", vae, "-i", zd, "-o", out, "-t", "2"), exact, 0);
    measure("decode tiled (budget 4/5 of exact)", ARGS("decode", "--vae", vae, "-i", zd, "-o", out, "-t", "2"),
            exact / 5 * 4, 1);
    const char *const *r = ARGS("run", "-m", lua, "-s", "2", "--vae", vae, "-i", z, "-o", out, "-t", "2",
                                "--max-memory", "8G");
    const size_t run_exact = exact_peak(r);
    measure("run exact", ARGS("run", "-m", lua, "-s", "2", "--vae", vae, "-i", z, "-o", out, "-t", "2"), run_exact, 0);
    measure("run tiled (budget 4/5 of exact)",
            ARGS("run", "-m", lua, "-s", "2", "--vae", vae, "-i", z, "-o", out, "-t", "2"), run_exact / 5 * 4, 1);
    measure("run, a batch of 2", ARGS("run", "-m", lua, "-s", "2", "--vae", vae, "-i", zb, "-o", out, "-t", "2"), 0,
            0);
    measure("run, 3 inputs", ARGS("run", "-m", lua, "-s", "2", "--vae", vae, "-i", z, "-i", zb, "-i", z2, "--out-dir", dir, "-t",
                                  "2", "--format", "npy"), 0, 0);
}

static void released(const char *d) {
    char lua[512], vae[512], z32[512], z64[512], z128[512], z32b[512], out[512], dir[512];
    snprintf(lua, sizeof lua, "%s/lua_released.safetensors", d);
    snprintf(vae, sizeof vae, "%s/vae_flux_widths.safetensors", d);
    latent("z32.npy", 0, 16, 32, 32), tmp(z32, sizeof z32, "z32.npy");
    latent("z32b.npy", 0, 16, 32, 32), tmp(z32b, sizeof z32b, "z32b.npy");
    latent("z64.npy", 0, 16, 64, 64), tmp(z64, sizeof z64, "z64.npy");
    latent("z128.npy", 0, 16, 128, 128), tmp(z128, sizeof z128, "z128.npy");
    tmp(out, sizeof out, "out.npy"), tmp(dir, sizeof dir, "outs");
    measure("LUA 64x64 x2", ARGS("upscale", "-m", lua, "-s", "2", "-i", z64, "-o", out, "-t", "2"), 0, -1);
    measure("LUA 64x64 x4", ARGS("upscale", "-m", lua, "-s", "4", "-i", z64, "-o", out, "-t", "2"), 0, -1);
    measure("VAE 64x64 exact", ARGS("decode", "--vae", vae, "-i", z64, "-o", out, "-t", "2"), 0, 0);
    const size_t ex = exact_peak(ARGS("decode", "--vae", vae, "-i", z128, "-o", out, "-t", "2", "--max-memory", "64G"));
    measure("VAE 128x128 exact", ARGS("decode", "--vae", vae, "-i", z128, "-o", out, "-t", "2"), ex, 0);
    measure("VAE 128x128 tiled (budget 1/2 of exact)", ARGS("decode", "--vae", vae, "-i", z128, "-o", out, "-t", "2"),
            ex / 2, 1);
    measure("run 32x32 x2, budget 800M", ARGS("run", "-m", lua, "-s", "2", "--vae", vae, "-i", z32, "-o", out, "-t", "2"),
            (size_t)800 << 20, 1);
    measure("run 2 inputs 32x32 x2, budget 800M",
            ARGS("run", "-m", lua, "-s", "2", "--vae", vae, "-i", z32, "-i", z32b, "--out-dir", dir, "-t", "2",
                 "--format", "npy"),
            (size_t)800 << 20, 1);
}

int main(int argc, char **argv) {
    snprintf(g_dir, sizeof g_dir, "/tmp/latup_mem_XXXXXX");
    if (!mkdtemp(g_dir)) return 1;
    if (argc == 3 && !strcmp(argv[1], "--released")) released(argv[2]);
    else committed();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", g_dir);
    printf("memory: %d checks, %d NOT OK\n", g_checks, g_fail);
    return g_fail ? 1 : 0;
}
