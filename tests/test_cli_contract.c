/* test_cli_contract.c — what the README and docs/errors.md promise about build/latup, one test
 * per promise, each failing when the promise breaks: output paths checked before any work;
 * atomic outputs (killed mid-write or at the rename, fsync and rename failing: the destination is
 * never partial; O_EXCL temporaries fsync'd before the rename, through tests/fault_inject.so;
 * 255-byte output names; SIGINT, SIGTERM or SIGHUP mid-write or mid-commit: latup dies of the
 * signal and leaves no temporary and no output; a symlink at DIR/dump_order.txt is not followed);
 * all outputs of a command or none; exit codes per class; data errors naming the input; run's
 * LUA/VAE channel check before the upscale; options refused up front; OMP_NUM_THREADS; info
 * recognising every model kind; tiled decodes announcing themselves. */
#define _XOPEN_SOURCE 700
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli_util.h"
#include "tmpdir.h"
#include "io/json.h"
#include "io/weights.h"
#include "latup.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LUA16 "ref_data/small/model.safetensors.gz"
#define LUA4 "ref_data/sdxl/model.safetensors.gz"
#define VAE16 "ref_data/vae/flux_small.ldm.safetensors.gz"
#define VAE4 "ref_data/vae/sd_small.ldm.safetensors.gz"

static char g_err[8192];

static int run(const char *const *args) { return run_cli(g_dir, args, g_err, sizeof g_err); }

/* With the fault shim preloaded and `extra` settings (NULL-terminated). */
static int run_faulty(const char *const *args, const char *const *extra) {
    return run_cli_faulty(g_dir, args, extra, g_err, sizeof g_err);
}

static int exists(const char *p) { return path_exists(p); }

/* Files in g_dir whose names start with prefix (temporaries included). */
static int count_prefix(const char *prefix) {
    DIR *d = opendir(g_dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
    closedir(d);
    return n;
}

static int count_npy_below(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) n += count_npy_below(p);
        else n += strstr(e->d_name, ".npy") != NULL;
    }
    closedir(d);
    return n;
}

static void write_text(const char *path, const char *text) { assert_int_equal(write_text_file(path, text), 0); }

static char *read_text(const char *path) { return read_text_file(path); }

static void write_latent(const char *path, int B, int C, int H, int W, float poison) {
    latup_tensor x;
    int64_t s[4] = {B, C, H, W};
    assert_int_equal(latup_tensor_alloc(&x, B ? 4 : 3, B ? s : s + 1), LATUP_OK);
    for (int64_t i = 0; i < latup_tensor_numel(&x); i++) x.data[i] = 0.02f * (float)(i % 53) - 0.5f;
    if (poison != 0) x.data[11] = poison;
    assert_int_equal(latup_npy_write(path, &x), LATUP_OK);
    latup_tensor_free(&x);
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void expect(int rc, int want, const char *text) {
    printf("  exit %d (want %d): %s", rc, want, g_err);
    assert_int_equal(rc, want);
    if (text) assert_non_null(strstr(g_err, text));
}

/* ---- the output path is checked before any work ------------------------------------------------- */

/* A bad output together with a model that does not exist: the error must be about the output,
 * so the check ran before the model was even opened (let alone the compute). */
static void test_outputs_checked_first(void **state) {
    (void)state;
    write_latent(tmp_path("z.npy"), 0, 16, 16, 16, 0);
    const char *bad = tmp_path("no/such/dir/out.npy");
    mkdir(tmp_path("isdir.npy"), 0755);
    const char *cases[][16] = {
        {"upscale", "-m", "/nonexistent/m.pth", "-s", "2", "-i", tmp_path("z.npy"), "-o", bad, NULL},
        {"decode", "--vae", "/nonexistent/v.pth", "-i", tmp_path("z.npy"), "-o", bad, NULL},
        {"run", "-m", "/nonexistent/m.pth", "-s", "2", "--vae", "/nonexistent/v.pth", "-i", tmp_path("z.npy"), "-o", bad, NULL},
        {"run", "-m", "/nonexistent/m.pth", "-s", "2", "--vae", "/nonexistent/v.pth", "-i", tmp_path("z.npy"), "-o",
         tmp_path("fine.png"), "--save-latent", bad, NULL},
        {"decode", "--vae", "/nonexistent/v.pth", "-i", "/nonexistent/z.npy", "-o", tmp_path("isdir.npy"), NULL},
    };
    for (int k = 0; k < 5; k++) {
        int rc = run(cases[k]);
        printf("%s, output %s:\n", cases[k][0], k == 4 ? "an existing directory" : "in a missing directory");
        expect(rc, 4, k == 4 ? "isdir.npy: is a directory" : "no/such/dir/out.npy");
        assert_null(strstr(g_err, "/nonexistent/"));
        assert_int_equal(lines(g_err), 1);
    }
    assert_false(exists(tmp_path("fine.png")));
    /* and with real models: the compute never runs (no tensor dumped) */
    const char *a[] = {"upscale", "-m", LUA16, "-s", "2", "-i", tmp_path("z.npy"), "-o", bad, "--dump", tmp_path("dumps"), NULL};
    expect(run(a), 4, "no/such/dir");
    assert_int_equal(count_npy_below(tmp_path("dumps")), 0);
}

/* ---- atomic outputs ----------------------------------------------------------------------------------- */

static void test_killed_mid_write(void **state) {
    (void)state;
    write_latent(tmp_path("k.npy"), 0, 16, 16, 16, 0);
    const char *out = tmp_path("killed.npy");
    const char *a[] = {"upscale", "-m", LUA16, "-s", "2", "-i", tmp_path("k.npy"), "-o", out, "-q", NULL};
    /* nothing there before: nothing there after */
    const char *kill_write[] = {"FAULT_KILL_AFTER_BYTES=3000", NULL};
    const int temps = count_prefix("latup-");
    int rc = run_faulty(a, kill_write);
    printf("killed after 3000 bytes written: exit %d\n", rc);
    assert_int_equal(rc, 128 + 9);
    assert_false(exists(out));
    assert_int_equal(count_prefix("latup-"), temps + 1); /* the partial temporary, never renamed */
    /* an existing output keeps its old content, whether killed mid-write or at the rename */
    write_text(out, "old content");
    assert_int_equal(run_faulty(a, kill_write), 128 + 9);
    char *t = read_text(out);
    assert_string_equal(t, "old content");
    free(t);
    const char *kill_rename[] = {"FAULT_KILL_AT_RENAME=1", NULL};
    assert_int_equal(run_faulty(a, kill_rename), 128 + 9);
    t = read_text(out);
    assert_string_equal(t, "old content");
    free(t);
    /* unkilled, the same command replaces it */
    assert_int_equal(run_faulty(a, NULL), 0);
    latup_tensor y;
    assert_int_equal(latup_npy_read(out, &y), LATUP_OK);
    assert_int_equal(y.shape[2], 32);
    latup_tensor_free(&y);
}

/* The order of the calls: each temporary is created with O_CREAT|O_EXCL|O_NOFOLLOW (never
 * opening an existing file, never following a symlink), fsync'd, and only then renamed. */
static void test_write_order(void **state) {
    (void)state;
    write_latent(tmp_path("o.npy"), 0, 16, 16, 16, 0);
    char logenv[600];
    snprintf(logenv, sizeof logenv, "FAULT_LOG=%s", tmp_path("calls.log"));
    unlink(tmp_path("calls.log"));
    const char *extra[] = {logenv, NULL};
    const char *a[] = {"run", "-m", LUA16, "-s", "2", "--vae", VAE16, "-i", tmp_path("o.npy"), "-o", tmp_path("o.png"),
                       "--save-latent", tmp_path("o_up.npy"), "-q", NULL};
    assert_int_equal(run_faulty(a, extra), 0);
    char *log = read_text(tmp_path("calls.log"));
    assert_non_null(log);
    printf("%s", log ? log : "");
    int renames = 0;
    for (char *line = strstr(log, "rename "); line; line = strstr(line + 1, "rename ")) {
        char from[600], to[600];
        assert_int_equal(sscanf(line, "rename %599s %599s", from, to), 2);
        /* its open: CREAT|EXCL|NOFOLLOW, no TRUNC */
        char want_open[700];
        snprintf(want_open, sizeof want_open, "open %s CREAT|EXCL|NOFOLLOW ", from);
        char *op = strstr(log, want_open);
        assert_non_null(op);
        assert_true(op < line);
        int fd = atoi(op + strlen(want_open));
        assert_true(fd > 2);
        /* an fsync of that descriptor between the open and the rename */
        char want_sync[32];
        snprintf(want_sync, sizeof want_sync, "fsync %d\n", fd);
        char *sy = strstr(op, want_sync);
        assert_non_null(sy);
        assert_true(sy < line);
        renames++;
    }
    assert_int_equal(renames, 2); /* the image and the saved latent */
    free(log);
}

static void test_fsync_and_rename_failures(void **state) {
    (void)state;
    write_latent(tmp_path("f.npy"), 0, 16, 16, 16, 0);
    const char *a[] = {"run", "-m", LUA16, "-s", "2", "--vae", VAE16, "-i", tmp_path("f.npy"), "-o", tmp_path("fo.png"),
                       "--save-latent", tmp_path("fo_up.npy"), "-q", NULL};
    const char *fsync_fail[] = {"FAULT_FSYNC_FAIL=1", NULL};
    const int temps = count_prefix("latup-"); /* those test_killed_mid_write left */
    printf("fsync fails:\n");
    expect(run_faulty(a, fsync_fail), 4, "fsync failed");
    assert_int_equal(count_prefix("fo"), 0); /* no output, no temporary */
    assert_int_equal(count_prefix("latup-"), temps);
    /* the second rename fails: the first output is taken back (all or none) */
    const char *rename_fail[] = {"FAULT_RENAME_FAIL_AT=2", NULL};
    printf("the second rename fails:\n");
    expect(run_faulty(a, rename_fail), 4, "cannot rename");
    assert_int_equal(count_prefix("fo"), 0);
    assert_int_equal(count_prefix("latup-"), temps);
    assert_int_equal(run_faulty(a, NULL), 0);
    assert_int_equal(count_prefix("fo"), 2);
}

/* --out naming a symlink: the link is replaced by the new file; what it pointed to is untouched. */
static void test_symlink_not_followed(void **state) {
    (void)state;
    write_latent(tmp_path("s.npy"), 0, 16, 16, 16, 0);
    write_text(tmp_path("victim.txt"), "precious");
    unlink(tmp_path("link.npy"));
    assert_int_equal(symlink(tmp_path("victim.txt"), tmp_path("link.npy")), 0);
    const char *a[] = {"upscale", "-m", LUA16, "-s", "2", "-i", tmp_path("s.npy"), "-o", tmp_path("link.npy"), "-q", NULL};
    assert_int_equal(run(a), 0);
    char *t = read_text(tmp_path("victim.txt"));
    assert_string_equal(t, "precious");
    free(t);
    struct stat sb;
    assert_int_equal(lstat(tmp_path("link.npy"), &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
}

/* Entries in dir, "." and ".." aside (temporaries included). */
static int count_in(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* An output name of 250 and of 255 bytes (NAME_MAX): the temporary beside it has a short name of
 * its own, so both are written. */
static void test_long_output_names(void **state) {
    (void)state;
    write_latent(tmp_path("ln.npy"), 0, 16, 16, 16, 0);
    mkdir(tmp_path("long"), 0755);
    for (int len = 250; len <= 255; len += 5) {
        char name[256], out[700];
        memset(name, 'n', (size_t)len);
        memcpy(name + len - 4, ".npy", 4);
        name[len] = '\0';
        snprintf(out, sizeof out, "%s/%s", tmp_path("long"), name);
        const char *a[] = {"upscale", "-m", LUA16, "-s", "2", "-i", tmp_path("ln.npy"), "-o", out, "-q", NULL};
        const char *r[] = {"run", "-m", LUA16, "-s", "2", "--vae", VAE16, "-i", tmp_path("ln.npy"), "-o", tmp_path("long/x.png"),
                           "--save-latent", out, "-q", NULL};
        int rc = run(a);
        printf("-o a %d-byte name: exit %d %s\n", len, rc, g_err);
        assert_int_equal(rc, 0);
        assert_true(exists(out));
        assert_int_equal(count_in(tmp_path("long")), 1);
        rc = run(r);
        printf("--save-latent a %d-byte name, over the last: exit %d %s\n", len, rc, g_err);
        assert_int_equal(rc, 0);
        assert_int_equal(count_in(tmp_path("long")), 2);
        unlink(out);
        unlink(tmp_path("long/x.png"));
    }
}

/* fork/exec latup with the fault shim and `extra`, the three signals at their default action (a
 * test run in the background inherits SIGINT ignored, and latup keeps an ignored signal
 * ignored). Returns the raw wait status. */
static int run_signalled(const char *const *args, const char *const *extra) {
    char preload[600], cwd[400], errpath[600];
    snprintf(preload, sizeof preload, "%s/%s", getcwd(cwd, sizeof cwd), LATUP_FAULT_SHIM);
    snprintf(errpath, sizeof errpath, "%s/stderr.txt", g_dir);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *argv[48] = {LATUP_BIN};
        int n = 1;
        for (; args[n - 1] && n < 47; n++) argv[n] = args[n - 1];
        argv[n] = NULL;
        setenv("LD_PRELOAD", preload, 1);
        setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 1);
        for (int k = 0; extra[k]; k++) {
            char kv[256];
            snprintf(kv, sizeof kv, "%s", extra[k]);
            char *eq = strchr(kv, '=');
            if (eq) *eq = '\0', setenv(kv, eq + 1, 1);
        }
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (!freopen(errpath, "w", stderr) || !freopen("/dev/null", "w", stdout)) _exit(127);
        execv(LATUP_BIN, (char *const *)argv);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    FILE *f = fopen(errpath, "r");
    size_t n = f ? fread(g_err, 1, sizeof g_err - 1, f) : 0;
    g_err[n] = '\0';
    if (f) fclose(f);
    return status;
}

static void expect_signalled(int status, int sig, const char *what) {
    printf("%s: %s %d%s%s", what, WIFSIGNALED(status) ? "killed by signal" : "exit",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), g_err[0] ? ", stderr: " : "\n", g_err);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), sig);
}

/* SIGTERM, SIGINT or SIGHUP while an output is half written, or while a set is half renamed:
 * latup removes its temporaries (and the outputs of the set already renamed), then dies of that
 * signal, as its parent expects of a killed process; nothing of the command is left. An output
 * that existed keeps its old content when the signal comes mid-write. Under SIGKILL, which
 * cannot be caught, the temporary stays (test_killed_mid_write): the contrast that shows the
 * handler at work. */
static void test_signals_leave_nothing(void **state) {
    (void)state;
    write_latent(tmp_path("sg.npy"), 0, 16, 16, 16, 0);
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    static const char *names[] = {"SIGTERM", "SIGINT", "SIGHUP"};
    for (int k = 0; k < 3; k++) {
        char dir[600], out[700], png[700], sigenv[32], what[128];
        snprintf(dir, sizeof dir, "%s/sig%d", g_dir, sigs[k]);
        mkdir(dir, 0755);
        snprintf(out, sizeof out, "%s/up.npy", dir);
        snprintf(png, sizeof png, "%s/img.png", dir);
        snprintf(sigenv, sizeof sigenv, "FAULT_SIGNAL=%d", sigs[k]);
        /* mid-write of one output */
        const char *a[] = {"upscale", "-m", LUA16, "-s", "2", "-i", tmp_path("sg.npy"), "-o", out, "-q", NULL};
        const char *mid[] = {sigenv, "FAULT_SIGNAL_AFTER_BYTES=3000", NULL};
        snprintf(what, sizeof what, "%s after 3000 bytes written", names[k]);
        expect_signalled(run_signalled(a, mid), sigs[k], what);
        printf("  left in the output directory: %d entries\n", count_in(dir));
        assert_int_equal(count_in(dir), 0);
        /* the same over an existing output: it keeps its content */
        write_text(out, "old content");
        snprintf(what, sizeof what, "%s mid-write over an existing output", names[k]);
        expect_signalled(run_signalled(a, mid), sigs[k], what);
        char *t = read_text(out);
        assert_string_equal(t, "old content");
        free(t);
        assert_int_equal(count_in(dir), 1);
        unlink(out);
        /* mid-commit: at the second rename of a run's two outputs, the first already in place */
        const char *r[] = {"run", "-m", LUA16, "-s", "2", "--vae", VAE16, "-i", tmp_path("sg.npy"), "-o", png,
                           "--save-latent", out, "-q", NULL};
        const char *at_rename[] = {sigenv, "FAULT_SIGNAL_AT_RENAME=2", NULL};
        snprintf(what, sizeof what, "%s at the second rename of a set", names[k]);
        expect_signalled(run_signalled(r, at_rename), sigs[k], what);
        printf("  left in the output directory: %d entries\n", count_in(dir));
        assert_int_equal(count_in(dir), 0);
        /* the same over two existing outputs: the one already replaced is put back, both keep
         * their content, and no second name is left */
        write_text(out, "old latent");
        write_text(png, "old image");
        snprintf(what, sizeof what, "%s at the second rename of a set over existing outputs", names[k]);
        expect_signalled(run_signalled(r, at_rename), sigs[k], what);
        char *tl = read_text(out), *ti = read_text(png);
        printf("  existing outputs after it: %s, %s; entries %d\n", tl ? tl : "(none)", ti ? ti : "(none)",
               count_in(dir));
        assert_string_equal(tl, "old latent");
        assert_string_equal(ti, "old image");
        free(tl);
        free(ti);
        assert_int_equal(count_in(dir), 2);
        unlink(out);
        unlink(png);
        /* and with no signal, the same commands write their outputs */
        const char *none[] = {NULL};
        const int st = run_signalled(r, none);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        assert_int_equal(count_in(dir), 2);
        unlink(out);
        unlink(png);
    }
}

/* --dump DIR with a symlink planted at DIR/dump_order.txt: the link is replaced by latup's own
 * list, and what it pointed to is neither written nor created; a second dump into the same DIR
 * replaces the list (one line per tensor, not two). */
static void test_dump_order_symlink(void **state) {
    (void)state;
    write_latent(tmp_path("dm.npy"), 0, 16, 16, 16, 0);
    write_text(tmp_path("dump_victim.txt"), "precious");
    mkdir(tmp_path("dl"), 0755);
    mkdir(tmp_path("dl2"), 0755);
    assert_int_equal(symlink(tmp_path("dump_victim.txt"), tmp_path("dl/dump_order.txt")), 0);
    assert_int_equal(symlink(tmp_path("dump_created.txt"), tmp_path("dl2/dump_order.txt")), 0); /* dangling */
    const char *a[] = {"upscale", "-m", LUA16, "-s", "2", "-i", tmp_path("dm.npy"), "-o", tmp_path("dm_out.npy"), "--dump",
                       tmp_path("dl"), "-q", NULL};
    const char *b[] = {"upscale", "-m", LUA16, "-s", "2", "-i", tmp_path("dm.npy"), "-o", tmp_path("dm_out.npy"), "--dump",
                       tmp_path("dl2"), "-q", NULL};
    int rc = run(a);
    printf("--dump DIR, DIR/dump_order.txt a symlink to a file: exit %d %s\n", rc, g_err);
    assert_int_equal(rc, 0);
    char *t = read_text(tmp_path("dump_victim.txt"));
    assert_string_equal(t, "precious");
    free(t);
    struct stat sb;
    assert_int_equal(lstat(tmp_path("dl/dump_order.txt"), &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    char *list = read_text(tmp_path("dl/dump_order.txt"));
    const int n = lines(list);
    printf("  the link replaced by a list of %d tensors; its target unchanged\n", n);
    assert_true(n > 20);
    assert_int_equal(n, count_npy_below(tmp_path("dl")));
    free(list);
    rc = run(b);
    printf("--dump DIR, DIR/dump_order.txt a dangling symlink: exit %d %s\n", rc, g_err);
    assert_int_equal(rc, 0);
    assert_false(exists(tmp_path("dump_created.txt")));
    assert_int_equal(lstat(tmp_path("dl2/dump_order.txt"), &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    /* again into the same DIR: the list is replaced, not appended to */
    assert_int_equal(run(a), 0);
    list = read_text(tmp_path("dl/dump_order.txt"));
    printf("  a second dump into the same DIR: %d lines\n", lines(list));
    assert_int_equal(lines(list), n);
    free(list);
    /* DIR/dump_order.txt a directory: one line naming it, exit 4 */
    mkdir(tmp_path("dl3"), 0755);
    mkdir(tmp_path("dl3/dump_order.txt"), 0755);
    const char *c[] = {"upscale", "-m", LUA16, "-s", "2", "-i", tmp_path("dm.npy"), "-o", tmp_path("dm_out3.npy"), "--dump",
                       tmp_path("dl3"), "-q", NULL};
    expect(run(c), 4, "dl3/dump_order.txt: cannot replace it");
    assert_int_equal(lines(g_err), 1);
    assert_false(exists(tmp_path("dm_out3.npy")));
}

/* ---- all outputs or none, decided before the compute where it can be ------------------------------------- */

static void test_all_or_none(void **state) {
    (void)state;
    write_latent(tmp_path("b2.npy"), 2, 16, 16, 16, 0);
    write_latent(tmp_path("b1.npy"), 0, 16, 16, 16, 0);
    /* a batch of 2 into one PNG: refused before any compute, neither file written */
    const char *a[] = {"run", "-m", LUA16, "-s", "2", "--vae", VAE16, "-i", tmp_path("b2.npy"), "-o", tmp_path("ab.png"),
                       "--save-latent", tmp_path("ab_up.npy"), "--dump", tmp_path("ab_dump"), NULL};
    printf("batch of 2 into one PNG:\n");
    expect(run(a), 1, "a batch of 2 images");
    assert_int_equal(count_prefix("ab"), 0);
    /* the decode fails after the upscale succeeded: the saved latent is not left behind, and the
     * error names the VAE (the culprit), not the input alone */
    /* a VAE whose conv_out overflows: every decode comes out Inf */
    assert_true(checkpoint_edit(VAE16, tmp_path("hot_vae.safetensors"), "decoder.conv_out.weight", 0.0f, 3e38f));
    const char *b[] = {"run", "-m", LUA16, "-s", "2", "--vae", tmp_path("hot_vae.safetensors"), "-i", tmp_path("b1.npy"),
                       "-o", tmp_path("ab.npy"), "--save-latent", tmp_path("ab_up.npy"), NULL};
    printf("decode fails in run:\n");
    int rc = run(b);
    printf("  exit %d: %s", rc, g_err);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(g_err, "hot_vae.safetensors"));
    assert_int_equal(lines(g_err), 1);
    assert_int_equal(count_prefix("ab"), 0);
    /* two inputs that would write one file */
    mkdir(tmp_path("x"), 0755);
    write_latent(tmp_path("x/b1.npy"), 0, 16, 16, 16, 0);
    const char *c[] = {"decode", "--vae", VAE16, "-i", tmp_path("b1.npy"), "-i", tmp_path("x/b1.npy"), "--out-dir", tmp_path("abdir"), NULL};
    expect(run(c), 1, "would both write");
}

/* ---- exit codes per class ---------------------------------------------------------------------------- */

static void test_exit_codes(void **state) {
    (void)state;
    write_latent(tmp_path("e.npy"), 0, 16, 16, 16, 0);
    write_latent(tmp_path("e4.npy"), 0, 4, 16, 16, 0);
    struct {
        int code;
        const char *what, *says;
        const char *args[16];
    } cases[] = {
        {1, "usage: an unknown option", "--frobnicate", {"decode", "--frobnicate", NULL}},
        {1, "usage: a scale the model lacks", "x2, x4", {"upscale", "-m", LUA16, "-s", "3", "-i", tmp_path("e.npy"), "-o", tmp_path("eo.npy"), NULL}},
        {2, "bad input: channels", "e4.npy", {"upscale", "-m", LUA16, "-s", "2", "-i", tmp_path("e4.npy"), "-o", tmp_path("eo.npy"), NULL}},
        {2, "bad input: a model that is not one", "e.npy", {"decode", "--vae", tmp_path("e.npy"), "-i", tmp_path("e.npy"), "-o", tmp_path("eo.npy"), NULL}},
        {3, "out of memory: a budget no tile meets", "cannot be met", {"decode", "--vae", VAE16, "-i", tmp_path("e.npy"), "-o", tmp_path("eo.npy"), "--max-memory", "1K", NULL}},
        {4, "i/o: a missing --in", "cannot open", {"upscale", "-m", LUA16, "-s", "2", "-i", tmp_path("missing.npy"), "-o", tmp_path("eo.npy"), NULL}},
        {4, "i/o: a missing model", "/nonexistent/m.pth", {"upscale", "-m", "/nonexistent/m.pth", "-s", "2", "-i", tmp_path("e.npy"), "-o", tmp_path("eo.npy"), NULL}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        printf("%s:\n", cases[k].what);
        expect(run(cases[k].args), cases[k].code, cases[k].says);
        assert_int_equal(lines(g_err), 1);
        assert_int_equal(count_prefix("eo"), 0);
    }
    /* 6: a device the library cannot use, refused before any work; where it can (a CUDA build
     * on a GPU machine), the same command must succeed instead */
    const char *dev[] = {"decode", "--vae", VAE16, "-i", tmp_path("e.npy"), "-o", tmp_path("eo.npy"), "--device", "cuda", NULL};
    const int have_cuda = latup_device_check(LATUP_DEVICE_CUDA) == LATUP_OK;
    printf("device: --device cuda %s:\n", have_cuda ? "with a usable GPU" : "where it cannot run");
    expect(run(dev), have_cuda ? 0 : 6, have_cuda ? NULL : "--device cuda: ");
    assert_int_equal(lines(g_err), 1);
    assert_int_equal(count_prefix("eo"), have_cuda);
}

/* ---- data errors name the input; run checks LUA against VAE first ----------------------------------------- */

static void test_data_errors_name_input(void **state) {
    (void)state;
    write_latent(tmp_path("nan_in.npy"), 0, 16, 16, 16, NAN);
    write_latent(tmp_path("c4_in.npy"), 0, 4, 16, 16, 0);
    write_text(tmp_path("junk_in.npy"), "not a tensor at all");
    const char *inputs[] = {tmp_path("nan_in.npy"), tmp_path("c4_in.npy"), tmp_path("junk_in.npy")};
    for (int i = 0; i < 3; i++) {
        char want[600];
        snprintf(want, sizeof want, "latup: %s: ", inputs[i]);
        const char *u[] = {"upscale", "-m", LUA16, "-s", "2", "-i", inputs[i], "-o", tmp_path("dn.npy"), NULL};
        const char *d[] = {"decode", "--vae", VAE16, "-i", inputs[i], "-o", tmp_path("dn.npy"), NULL};
        const char *r[] = {"run", "-m", LUA16, "-s", "2", "--vae", VAE16, "-i", inputs[i], "-o", tmp_path("dn.png"), NULL};
        const char *const *all[3] = {u, d, r};
        for (int c = 0; c < 3; c++) {
            printf("%s %s:\n", all[c][0], inputs[i]);
            expect(run(all[c]), 2, want);
            assert_true(strncmp(g_err, want, strlen(want)) == 0);
        }
    }
    assert_int_equal(count_prefix("dn"), 0);
}

static void test_run_channel_mismatch_first(void **state) {
    (void)state;
    write_latent(tmp_path("m4.npy"), 0, 4, 16, 16, 0);
    const char *a[] = {"run", "-m", LUA4, "-s", "2", "--vae", VAE16, "-i", tmp_path("m4.npy"), "-o", tmp_path("mm.png"),
                       "--dump", tmp_path("mm_dump"), NULL};
    printf("4-channel LUA, 16-channel VAE:\n");
    expect(run(a), 2, "4-channel latents");
    assert_non_null(strstr(g_err, LUA4));
    assert_non_null(strstr(g_err, VAE16));
    assert_int_equal(count_npy_below(tmp_path("mm_dump")), 0); /* nothing was upscaled */
    assert_int_equal(count_prefix("mm.png"), 0);
    /* matching models run */
    const char *b[] = {"run", "-m", LUA4, "-s", "2", "--vae", VAE4, "-i", tmp_path("m4.npy"), "-o", tmp_path("mm.png"), "-q", NULL};
    assert_int_equal(run(b), 0);
}

/* ---- options refused up front ---------------------------------------------------------------------------- */

static void test_options_up_front(void **state) {
    (void)state;
    write_latent(tmp_path("u.npy"), 0, 16, 16, 16, 0);
    /* with a VAE that does not exist: a usage error, so nothing was opened */
    const char *cases[][16] = {
        {"decode", "--vae", "/nonexistent/v", "-i", tmp_path("u.npy"), "-o", tmp_path("uo.png"), "--tile", "8", "--overlap", "8", NULL},
        {"decode", "--vae", "/nonexistent/v", "-i", tmp_path("u.npy"), "-o", tmp_path("uo.png"), "--max-memory", "nan", NULL},
        {"decode", "--vae", "/nonexistent/v", "-i", tmp_path("u.npy"), "-o", tmp_path("uo.png"), "--tile", "3", NULL},
        {"decode", "--vae", "/nonexistent/v", "-i", tmp_path("u.npy"), "-o", tmp_path("uo.png"), "--threads", "4097", NULL},
        {"run", "-m", "/nonexistent/m", "-s", "2", "-s", "4", "--vae", "/nonexistent/v", "-i", tmp_path("u.npy"), "-o", tmp_path("uo.png"), NULL},
        {"decode", "--vae", "/nonexistent/v", "-i", tmp_path("u.npy"), "-o", tmp_path("uo.png"), "-v", "-q", NULL},
        {"upscale", "-m", "/nonexistent/m", "-s", "2", "-i", tmp_path("u.npy"), "-o", tmp_path("uo.npy"), "--dump", NULL},
        {"decode", "--vae", "/nonexistent/v", "-i", tmp_path("u.npy"), "-o", tmp_path("uo.npy"), "--png-bits", "16", NULL},
        {"decode", "--vae", "/nonexistent/v", "-i", tmp_path("u.npy"), "-o", tmp_path("uo.png"), "--json", NULL},
        {"decode", "--vae", "/nonexistent/v", "-i", tmp_path("u.npy"), "-o", tmp_path("uo_%s.png"), NULL},
        {"decode", "--vae", "/nonexistent/v", "-i", "-", "-i", "-", "--out-dir", tmp_path("uo_dir"), NULL},
    };
    const char *says[] = {"overlap 8 must be smaller than tile 8", "--max-memory takes a size", "--tile takes an integer from 4",
                          "--threads takes an integer from 1 to 4096", "--scale given twice", "exclude each other",
                          "--dump needs a value", "--png-bits applies to PNG", "--json goes with --dry-run",
                          "a pattern takes one %d", "standard input ('-') can be read once"};
    for (size_t k = 0; k < sizeof says / sizeof says[0]; k++) {
        printf("%s:\n", says[k]);
        expect(run(cases[k]), 1, says[k]);
        assert_int_equal(lines(g_err), 1);
    }
    assert_int_equal(count_prefix("uo"), 0);
}

/* ---- threads ---------------------------------------------------------------------------------------------- */

static void test_omp_num_threads(void **state) {
    (void)state;
    write_latent(tmp_path("t.npy"), 0, 16, 16, 16, 0);
    const char *a[] = {"upscale", "-m", LUA16, "-s", "2", "-i", tmp_path("t.npy"), "-o", tmp_path("to.npy"), NULL};
    const char *one[] = {"OMP_NUM_THREADS=1", NULL}, *three[] = {"OMP_NUM_THREADS=3", NULL};
    assert_int_equal(run_cli_io(g_dir, a, one, NULL, NULL, g_err, sizeof g_err), 0);
    printf("OMP_NUM_THREADS=1: %s", g_err);
    assert_non_null(strstr(g_err, ", 1 thread)"));
    assert_int_equal(run_cli_io(g_dir, a, three, NULL, NULL, g_err, sizeof g_err), 0);
    printf("OMP_NUM_THREADS=3: %s", g_err);
    assert_non_null(strstr(g_err, ", 3 threads)"));
    const char *b[] = {"upscale", "-m", LUA16, "-s", "2", "-i", tmp_path("t.npy"), "-o", tmp_path("to.npy"), "-t", "2", NULL};
    assert_int_equal(run_cli_io(g_dir, b, one, NULL, NULL, g_err, sizeof g_err), 0);
    printf("OMP_NUM_THREADS=1 --threads 2: %s", g_err);
    assert_non_null(strstr(g_err, ", 2 threads)"));
}

/* ---- info ------------------------------------------------------------------------------------------------- */

static void test_info_every_kind(void **state) {
    (void)state;
    static const struct {
        const char *file;
        const char *says[3];
        const char *kind; /* --json's "kind" */
    } kinds[] = {
        {"ref_data/small/model.safetensors.gz", {"model:        LUA", "scales:       [x2, x4]", "format:       safetensors"}, "lua"},
        {"ref_data/tiny/model.pth", {"model:        LUA", "format:       pytorch zip", "in 16, out 16"}, "lua"},
        {"ref_data/sdxl/model.pth", {"model:        LUA", "in 4, out 4", NULL}, "lua"},
        {"ref_data/swinir/classic_x2.pth", {"model:        SwinIR", "tail:         pixelshuffle,", "[x2]"}, "swinir"},
        {"ref_data/swinir/direct_x2.pth", {"model:        SwinIR", "tail:         pixelshuffledirect", NULL}, "swinir"},
        {"ref_data/vae/flux_small.ldm.safetensors.gz", {"model:        VAE decoder", "SD3 or FLUX.1", "naming:       ldm"}, "vae"},
        {"ref_data/vae/flux_small.diffusers.safetensors.gz", {"model:        VAE decoder", "naming:       diffusers", NULL}, "vae"},
        {"ref_data/vae/sd_small.diffusers_old.safetensors.gz", {"model:        VAE decoder", "old attention names", "SD 1.x"}, "vae"},
        {"ref_data/vae/sd_small.ldm_prefixed.safetensors.gz", {"model:        VAE decoder", "under first_stage_model.", NULL}, "vae"},
        {"ref_data/vae/sd_small.ldm.pth.gz", {"model:        VAE decoder", "format:       pytorch zip", NULL}, "vae"},
        {"tests/data/latent/comfyui_flux_b2.latent", {"a latent (ComfyUI .latent", "[2,16,12,10]", NULL}, "latent"},
        {"ref_data/demo/latent.npy", {"format:       .npy", "[16,24,40]", NULL}, "tensor"},
        {"ref_data/swinir/image_21x19.png", {"format:       PNG", "[3,21,19]", NULL}, "tensor"},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        const char *a[] = {"info", kinds[k].file, NULL};
        char out[600];
        snprintf(out, sizeof out, "%s/info.txt", g_dir);
        int rc = run_cli_io(g_dir, a, NULL, NULL, out, g_err, sizeof g_err);
        char *text = read_text(out);
        int ok = rc == 0;
        for (int i = 0; i < 3 && kinds[k].says[i]; i++) ok &= strstr(text, kinds[k].says[i]) != NULL;
        printf("info %-52s %s\n", kinds[k].file, ok ? "OK" : "NOT OK");
        if (!ok) printf("%s%s", text, g_err);
        assert_true(ok);
        free(text);
        /* --json: one JSON object naming the kind and the file (test_cli checks every member) */
        const char *j[] = {"info", "--json", kinds[k].file, NULL};
        assert_int_equal(run_cli_io(g_dir, j, NULL, NULL, out, g_err, sizeof g_err), 0);
        text = read_text(out);
        latup_json_doc doc;
        assert_int_equal(latup_json_parse(text, strlen(text), 0, &doc), LATUP_OK);
        const latup_json *kind = latup_json_get(doc.root, "kind"), *file = latup_json_get(doc.root, "file");
        assert_true(kind && kind->type == LATUP_JSON_STRING && !strcmp(kind->u.str.s, kinds[k].kind));
        assert_true(file && file->type == LATUP_JSON_STRING && !strcmp(file->u.str.s, kinds[k].file));
        latup_json_free(&doc);
        free(text);
    }
}

/* ---- tiling says so ------------------------------------------------------------------------------------------- */

static void test_tiling_announced(void **state) {
    (void)state;
    write_latent(tmp_path("big.npy"), 0, 16, 40, 40, 0);
    const char *exact[] = {"decode", "--vae", VAE16, "-i", tmp_path("big.npy"), "-o", tmp_path("ti.npy"), NULL};
    assert_int_equal(run(exact), 0);
    printf("exact: %s", g_err);
    assert_null(strstr(g_err, "tile"));
    assert_int_equal(lines(g_err), 1);
    const char *tiled[] = {"decode", "--vae", VAE16, "-i", tmp_path("big.npy"), "-o", tmp_path("ti.npy"), "--tile", "16", NULL};
    assert_int_equal(run(tiled), 0);
    printf("--tile 16: %s", g_err);
    assert_non_null(strstr(g_err, "decoding in tiles of 16 latent pixels, overlap 4"));
    assert_non_null(strstr(g_err, "approximation"));
    assert_non_null(strstr(g_err, "(tiled: approximate)"));
    assert_int_equal(lines(g_err), 2);
    /* a budget the exact decode exceeds: tiled, and the line says why */
    const char *dry[] = {"decode", "--vae", VAE16, "-i", tmp_path("big.npy"), "-o", tmp_path("ti.npy"), "--dry-run", "--json", NULL};
    char out[600];
    snprintf(out, sizeof out, "%s/plan.json", g_dir);
    assert_int_equal(run_cli_io(g_dir, dry, NULL, NULL, out, g_err, sizeof g_err), 0);
    char *plan = read_text(out);
    char *pk = strstr(plan, "\"decode\": {");
    assert_non_null(pk);
    pk = strstr(pk, "\"peak\": ");
    long long exact_peak = atoll(pk + 8);
    free(plan);
    char budget[32];
    snprintf(budget, sizeof budget, "%lld", exact_peak - 1);
    const char *auto_[] = {"decode", "--vae", VAE16, "-i", tmp_path("big.npy"), "-o", tmp_path("ti.npy"), "--max-memory", budget, NULL};
    assert_int_equal(run(auto_), 0);
    printf("--max-memory %s: %s", budget, g_err);
    assert_non_null(strstr(g_err, "decoding in tiles of"));
    assert_non_null(strstr(g_err, "over the"));
    /* --quiet: nothing at all */
    const char *q[] = {"decode", "--vae", VAE16, "-i", tmp_path("big.npy"), "-o", tmp_path("ti.npy"), "--tile", "16", "-q", NULL};
    assert_int_equal(run(q), 0);
    assert_string_equal(g_err, "");
}

static int setup(void **state) {
    assert_true(exists(LATUP_BIN));
    assert_true(exists(LATUP_FAULT_SHIM));
    return setup_dir(state);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outputs_checked_first),
        cmocka_unit_test(test_killed_mid_write),
        cmocka_unit_test(test_write_order),
        cmocka_unit_test(test_fsync_and_rename_failures),
        cmocka_unit_test(test_symlink_not_followed),
        cmocka_unit_test(test_long_output_names),
        cmocka_unit_test(test_signals_leave_nothing),
        cmocka_unit_test(test_dump_order_symlink),
        cmocka_unit_test(test_all_or_none),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_data_errors_name_input),
        cmocka_unit_test(test_run_channel_mismatch_first),
        cmocka_unit_test(test_options_up_front),
        cmocka_unit_test(test_omp_num_threads),
        cmocka_unit_test(test_info_every_kind),
        cmocka_unit_test(test_tiling_announced),
    };
    return cmocka_run_group_tests(tests, setup, remove_dir);
}
