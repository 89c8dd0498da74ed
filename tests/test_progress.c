/* test_progress.c — the progress callback (latup.h, latup_progress_fn) and the CLI's progress line
 * (src/cli/progress.c, built into this test).
 *
 * The callback: for an upscale, an exact decode, a tiled decode and an execute of both stages
 * (batches of 2), every call sees the same total, done rises by one from 1 to total, and the total
 * is the steps the header names, counted here from the models' configs: an RSTB or a stage of the
 * LUA (embed, each RSTB, body, head, crop), a decoder stage (mid, each level, out) of each image
 * or tile, and each tile. A callback that returns non-zero at step k is called k times, the call
 * returns LATUP_E_CANCELLED with its message and leaves every output tensor empty, and the same
 * prepared call then runs again to the end, with the same result as a call never stopped. The
 * `progress` field that used to print counters is inert: nothing reaches stderr. The call's
 * counter (src/common.h) keeps done within each stage's steps whatever a pass reports.
 *
 * The CLI's line: its text (percentage rounded down, time left rounded up, minutes and hours),
 * and when it is written (not before a second, at most every CLI_PROGRESS_EVERY seconds, padded
 * over a longer line, cleared at the end, never without a terminal), parsed from what it wrote;
 * then `latup decode` itself with stderr on a pseudo-terminal. */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, unlockpt, ptsname */
#define _DEFAULT_SOURCE   /* cfmakeraw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/progress.c"
#include "cli_util.h"
#include "tmpdir.h"

#include "common.h"
#include "latup.h"
#include "model/tiling.h"
#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define LUA_PATH "ref_data/small/model.safetensors.gz"        /* 16 channels, heads x2 and x4 */
#define VAE_PATH "ref_data/vae/flux_small.ldm.safetensors.gz" /* 16 channels */

static latup_lua *g_lua;
static latup_vae *g_vae;

static int setup(void **state) {
    if (setup_dir(state)) return -1;
    latup_set_threads(2);
    if (latup_lua_load(LUA_PATH, &g_lua) != LATUP_OK || latup_vae_load(VAE_PATH, &g_vae) != LATUP_OK) {
        fprintf(stderr, "test_progress: %s\n", latup_last_error());
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    latup_lua_free(g_lua);
    latup_vae_free(g_vae);
    return remove_dir(state);
}

static latup_tensor latent(int64_t B, int h, int w, uint64_t seed) {
    latup_tensor z;
    const int64_t s[4] = {B, 16, h, w};
    assert_int_equal(latup_tensor_alloc(&z, 4, s), LATUP_OK);
    tu_rng r = tu_rng_seed(seed);
    for (int64_t i = 0; i < latup_tensor_numel(&z); i++) z.data[i] = tu_normal(&r);
    return z;
}

/* ---- a recording callback ------------------------------------------------------------------------ */
typedef struct {
    int64_t calls, last, total;
    int64_t stop_at;   /* return non-zero when done reaches it (0: never) */
    int bad;           /* a call broke the rules: total changed, done not last + 1, done past total */
} rec;

static int record(void *user, int64_t done, int64_t total) {
    rec *r = user;
    if (r->calls == 0) r->total = total;
    if (total != r->total || done != r->last + 1 || done > total || done < 1) {
        if (!r->bad) printf("    callback %lld: done %lld of %lld after %lld of %lld\n", (long long)r->calls + 1,
                            (long long)done, (long long)total, (long long)r->last, (long long)r->total);
        r->bad = 1;
    }
    r->calls++;
    r->last = done;
    return r->stop_at > 0 && done >= r->stop_at;
}

/* every callback in order, to total */
static void check_complete(const char *what, const rec *r, int64_t want_total) {
    printf("  %-40s %lld calls, done %lld of %lld (expected total %lld): %s\n", what, (long long)r->calls,
           (long long)r->last, (long long)r->total, (long long)want_total,
           !r->bad && r->total == want_total && r->last == want_total && r->calls == want_total ? "OK" : "NOT OK");
    assert_false(r->bad);
    assert_int_equal(r->total, want_total);
    assert_int_equal(r->calls, want_total);
    assert_int_equal(r->last, want_total);
}

static void check_cancelled(const char *what, latup_status st, const rec *r, int64_t k, const latup_tensor *out) {
    const int empty = out->data == NULL && out->ndim == 0;
    printf("  %-40s stopped at %lld: %s (%s), %lld calls, output %s\n", what, (long long)k, latup_status_name(st),
           latup_last_error(), (long long)r->calls, empty ? "empty" : "NOT EMPTY");
    assert_int_equal(st, LATUP_E_CANCELLED);
    assert_non_null(strstr(latup_last_error(), "cancelled by the progress callback"));
    assert_false(r->bad);
    assert_int_equal(r->calls, k); /* not called again once it said stop */
    assert_true(empty);
}

static void assert_same(const latup_tensor *a, const latup_tensor *b) {
    assert_int_equal(a->ndim, b->ndim);
    assert_memory_equal(a->shape, b->shape, sizeof a->shape);
    assert_memory_equal(a->data, b->data, (size_t)latup_tensor_numel(a) * sizeof(float));
}

/* The steps the header promises, from the configs. */
static int64_t lua_steps(void) { return latup_lua_get_config(g_lua)->num_layers + 4; }
static int64_t vae_steps(void) { return latup_vae_get_config(g_vae)->n_levels + 2; }
static int64_t tiled_steps(int h, int w, int T, int ov) {
    return (int64_t)latup_tile_count(h, T, ov) * latup_tile_count(w, T, ov) * (vae_steps() + 1);
}

/* ---- the library's callback ------------------------------------------------------------------------ */

static void test_upscale(void **state) {
    (void)state;
    latup_tensor x = latent(2, 16, 16, 1), y, y0;
    rec r = {0};
    latup_run_opts o = {.on_progress = record, .progress_user = &r};
    assert_int_equal(latup_lua_upscale(g_lua, &x, 2, &y0, &o), LATUP_OK);
    check_complete("upscale x2, batch 2", &r, 2 * lua_steps());
    for (int64_t k = 1; k <= r.total; k += r.total - 1) { /* the first step and the last */
        rec c = {.stop_at = k};
        o.progress_user = &c;
        check_cancelled("upscale x2, batch 2", latup_lua_upscale(g_lua, &x, 2, &y, &o), &c, k, &y);
    }
    o.on_progress = NULL; /* none: the same result */
    assert_int_equal(latup_lua_upscale(g_lua, &x, 2, &y, &o), LATUP_OK);
    assert_same(&y, &y0);
    latup_tensor_free(&y);
    latup_tensor_free(&y0);
    latup_tensor_free(&x);
}

static void test_decode(void **state) {
    (void)state;
    latup_tensor z = latent(2, 8, 12, 2), img, img0;
    rec r = {0};
    latup_decode_opts o = {.on_progress = record, .progress_user = &r};
    assert_int_equal(latup_vae_decode(g_vae, &z, &img0, &o), LATUP_OK);
    check_complete("exact decode, batch 2", &r, 2 * vae_steps());
    rec c = {.stop_at = vae_steps() + 1}; /* the first step of the second image */
    o.progress_user = &c;
    check_cancelled("exact decode, batch 2", latup_vae_decode(g_vae, &z, &img, &o), &c, c.stop_at, &img);
    o.on_progress = NULL;
    assert_int_equal(latup_vae_decode(g_vae, &z, &img, &o), LATUP_OK);
    assert_same(&img, &img0);
    latup_tensor_free(&img);
    latup_tensor_free(&img0);
    latup_tensor_free(&z);
}

static void test_tiled_decode(void **state) {
    (void)state;
    const int h = 20, w = 13, T = 8, ov = 2;
    latup_tensor z = latent(2, h, w, 3), img, img0;
    rec r = {0};
    latup_decode_opts o = {.tile = T, .overlap = ov, .on_progress = record, .progress_user = &r};
    latup_decode_plan dp;
    assert_int_equal(latup_vae_plan_decode(g_vae, h, w, &o, &dp), LATUP_OK);
    assert_true(dp.tiled);
    assert_int_equal(latup_vae_decode(g_vae, &z, &img0, &o), LATUP_OK);
    check_complete("tiled decode (8, overlap 2), batch 2", &r, 2 * tiled_steps(h, w, T, ov));
    assert_true(r.total > 2 * (vae_steps() + 1)); /* several tiles */
    /* inside a tile (its mid block), and at a tile's end */
    const int64_t at[2] = {vae_steps() + 2, 2 * (vae_steps() + 1)};
    for (int i = 0; i < 2; i++) {
        rec c = {.stop_at = at[i]};
        o.progress_user = &c;
        check_cancelled("tiled decode (8, overlap 2), batch 2", latup_vae_decode(g_vae, &z, &img, &o), &c, at[i],
                        &img);
    }
    o.on_progress = NULL;
    assert_int_equal(latup_vae_decode(g_vae, &z, &img, &o), LATUP_OK);
    assert_same(&img, &img0);
    latup_tensor_free(&img);
    latup_tensor_free(&img0);
    latup_tensor_free(&z);
}

/* One done/total across the upscale and the decode of an execute; a prepared call stopped in
 * either stage runs again to the end, as if never stopped. */
static void test_execute(void **state) {
    (void)state;
    latup_tensor x = latent(2, 16, 16, 4), up0, img0, up, img;
    rec r = {0};
    latup_call_opts o = {.lua = g_lua, .scale = 2, .vae = g_vae, .on_progress = record, .progress_user = &r};
    latup_call *c;
    assert_int_equal(latup_prepare(&o, &x, &c), LATUP_OK);
    assert_int_equal(latup_execute(c, &x, &up0, &img0), LATUP_OK);
    check_complete("execute: upscale x2 + decode, batch 2", &r, 2 * lua_steps() + 2 * vae_steps());
    latup_call_free(c);
    /* in the upscale, at its last step, and in the decode */
    const int64_t at[3] = {3, 2 * lua_steps(), 2 * lua_steps() + 2};
    for (int i = 0; i < 3; i++) {
        rec s = {.stop_at = at[i]};
        o.progress_user = &s;
        assert_int_equal(latup_prepare(&o, &x, &c), LATUP_OK);
        const latup_status st = latup_execute(c, &x, &up, &img);
        check_cancelled("execute: upscale x2 + decode, batch 2", st, &s, at[i], &img);
        assert_null(up.data);
        assert_int_equal(up.ndim, 0);
        s.stop_at = 0, s.calls = 0, s.last = 0; /* the call keeps the options it was prepared with */
        assert_int_equal(latup_execute(c, &x, &up, &img), LATUP_OK);
        assert_int_equal(s.calls, 2 * lua_steps() + 2 * vae_steps());
        assert_false(s.bad);
        assert_same(&up, &up0);
        assert_same(&img, &img0);
        latup_tensor_free(&up);
        latup_tensor_free(&img);
        latup_call_free(c);
    }
    latup_tensor_free(&up0);
    latup_tensor_free(&img0);
    latup_tensor_free(&x);
}

/* The old `progress` field asked the library to print counters; it prints nothing now. */
static void test_progress_field_prints_nothing(void **state) {
    (void)state;
    char path[] = "/tmp/latup_progress_stderr_XXXXXX";
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    const int saved = dup(2);
    dup2(fd, 2);
    latup_tensor x = latent(1, 16, 16, 5), y, img;
    latup_run_opts ro = {.progress = 1};
    latup_decode_opts dop = {.progress = 1, .tile = 8};
    const latup_status s1 = latup_lua_upscale(g_lua, &x, 2, &y, &ro);
    const latup_status s2 = latup_vae_decode(g_vae, &y, &img, &dop);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    const off_t n = lseek(fd, 0, SEEK_END);
    close(fd);
    unlink(path);
    printf("  progress = 1: upscale %s, tiled decode %s, %lld bytes on stderr\n", latup_status_name(s1),
           latup_status_name(s2), (long long)n);
    assert_int_equal(s1, LATUP_OK);
    assert_int_equal(s2, LATUP_OK);
    assert_int_equal(n, 0);
    latup_tensor_free(&x);
    latup_tensor_free(&y);
    latup_tensor_free(&img);
}

/* The call's counter (src/common.h) by itself: a stage whose pass reports fewer steps than were
 * counted (a GPU pass out of step with the CPU's count) still ends at its `end`, in one jump, and
 * one that reports more never passes it. */
static void test_counter(void **state) {
    (void)state;
    rec r = {0};
    latup_progress p = {record, &r, 0, 4, 10};
    assert_int_equal(latup_progress_step(&p), LATUP_OK);
    assert_int_equal(latup_progress_step(&p), LATUP_OK);
    assert_int_equal(latup_progress_finish(&p), LATUP_OK); /* 2 -> 4 */
    assert_int_equal(r.calls, 3);
    assert_int_equal(r.last, 4);
    r.bad = 0; /* the jump was the point */
    p.end = 10;
    for (int i = 0; i < 8; i++) assert_int_equal(latup_progress_step(&p), LATUP_OK); /* 6 reported, 2 more ignored */
    assert_int_equal(latup_progress_finish(&p), LATUP_OK);                         /* already at end: silent */
    assert_int_equal(r.calls, 9);
    assert_int_equal(r.last, 10);
    assert_false(r.bad);
    latup_progress q = {record, &(rec){.stop_at = 1}, 0, 3, 3};
    assert_int_equal(latup_progress_step(&q), LATUP_E_CANCELLED);
    assert_non_null(strstr(latup_last_error(), "cancelled by the progress callback"));
    latup_progress none = {NULL, NULL, 0, 3, 3}; /* nobody listens */
    assert_int_equal(latup_progress_step(&none), LATUP_OK);
    assert_int_equal(latup_progress_finish(&none), LATUP_OK);
    assert_int_equal(latup_progress_step(NULL), LATUP_OK);
    printf("  the counter: steps up to end, a short stage finished in one jump, a long one capped: OK\n");
}

/* ---- the CLI's line ------------------------------------------------------------------------------- */

static void expect_line(const char *label, int64_t done, int64_t total, double elapsed, const char *want) {
    char buf[128];
    const size_t n = cli_progress_format(buf, sizeof buf, label, done, total, elapsed);
    const int ok = !strcmp(buf, want) && n == strlen(want);
    printf("  %lld/%lld after %.2f s: '%s' %s\n", (long long)done, (long long)total, elapsed, buf,
           ok ? "OK" : "NOT OK");
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

static void test_format(void **state) {
    (void)state;
    expect_line("", 5, 10, 10.0, "latup: 50%, about 10 s left");
    expect_line("", 1, 3, 1.0, "latup: 33%, about 2 s left");
    expect_line("", 2, 3, 1.0, "latup: 66%, about 1 s left");        /* 66.7% rounds down */
    expect_line("", 999, 1000, 5.0, "latup: 99%, about 1 s left");   /* 0.005 s rounds up */
    expect_line("", 10, 10, 7.0, "latup: 100%");                     /* done: no estimate */
    expect_line("", 1, 2, 65.0, "latup: 50%, about 1 min 05 s left");
    expect_line("", 1, 2, 59.2, "latup: 50%, about 1 min 00 s left"); /* 59.2 rounds up to a minute */
    expect_line("", 1, 100, 65.0, "latup: 1%, about 1 h 47 min left"); /* 6435 s */
    expect_line("", 1, 1000000, 10.0, "latup: 0%, more than 100 h left");
    expect_line("[2/3] ", 3, 4, 9.0, "latup: [2/3] 75%, about 3 s left");
    expect_line("", 0, 10, 3.0, "latup: 0%");                        /* nothing done: no rate yet */
    expect_line("", 12, 10, 3.0, "latup: 100%");                     /* clamped */
    expect_line("", 3, 0, 3.0, "latup: 0%");
    expect_line(NULL, 1, 4, 0.0, "latup: 25%");                      /* no time elapsed: no rate */
    /* a short buffer: cut, terminated, the length what it holds */
    char small[10];
    assert_int_equal(cli_progress_format(small, sizeof small, "", 5, 10, 10.0), 9);
    assert_string_equal(small, "latup: 50");
    assert_int_equal(cli_progress_format(NULL, 0, "", 5, 10, 10.0), 0);
}

/* What the line wrote into a memory stream, each write split at its '\r'. */
static void test_line_on_a_clock(void **state) {
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    cli_progress p;
    cli_progress_begin(&p, f, "", 100.0);
    cli_progress_at(&p, 1, 10, 100.9); /* under a second: nothing */
    fflush(f);
    assert_int_equal(len, 0);
    cli_progress_at(&p, 2, 10, 101.2); /* 20% after 1.2 s: 4.8 s left */
    fflush(f);
    assert_string_equal(text, "\rlatup: 20%, about 5 s left");
    cli_progress_at(&p, 3, 10, 101.3); /* too soon after the last write */
    fflush(f);
    assert_string_equal(text, "\rlatup: 20%, about 5 s left");
    cli_progress_at(&p, 9, 10, 109.0); /* shorter: padded over the old line */
    fflush(f);
    assert_string_equal(text, "\rlatup: 20%, about 5 s left\rlatup: 90%, about 1 s left");
    cli_progress_at(&p, 10, 10, 110.0);
    fflush(f);
    assert_string_equal(text, "\rlatup: 20%, about 5 s left\rlatup: 90%, about 1 s left\rlatup: 100%"
                              "               ");
    const size_t before_end = len;
    cli_progress_end(&p); /* spaces over the widest line, the cursor back at column 0 */
    fflush(f);
    const char *end = text + before_end;
    assert_int_equal(strlen(end), strlen("latup: 20%, about 5 s left") + 2);
    assert_int_equal(end[0], '\r');
    assert_int_equal(end[strlen(end) - 1], '\r');
    for (size_t i = 1; i + 1 < strlen(end); i++) assert_int_equal(end[i], ' ');
    /* a second call: starts again from its own clock, nothing to clear when nothing was shown */
    const size_t before = len;
    cli_progress_begin(&p, f, "[1/2] ", 200.0);
    cli_progress_at(&p, 5, 10, 200.5);
    cli_progress_end(&p);
    fflush(f);
    assert_int_equal(len, before);
    printf("  the line: nothing before 1 s, rewritten in place, padded, cleared at the end: OK\n");
    fclose(f);
    free(text);
}

/* Not a terminal (or --quiet): the CLI begins the line on NULL, and nothing is written. */
static void test_no_terminal(void **state) {
    (void)state;
    cli_progress p;
    cli_progress_begin(&p, NULL, "", 0.0);
    for (int i = 1; i <= 10; i++) cli_progress_at(&p, i, 10, 10.0 * i);
    assert_int_equal(cli_progress_cb(&p, 10, 10), 0);
    cli_progress_end(&p);
    assert_int_equal(p.width, 0);
}

/* ---- the CLI on a terminal ------------------------------------------------------------------------------ */

/* Runs latup with stderr on a pseudo-terminal (raw: no newline translation) and stdout on
 * /dev/null; returns its exit status and what it wrote to the terminal. */
static int run_on_pty(const char *const *args, char *out, size_t cap) {
    const int master = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    const char *slave_name = ptsname(master);
    assert_non_null(slave_name);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const int slave = open(slave_name, O_RDWR | O_NOCTTY);
        struct termios t;
        if (slave < 0 || tcgetattr(slave, &t) != 0) _exit(120);
        cfmakeraw(&t);
        tcsetattr(slave, TCSANOW, &t);
        const int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(slave, 2);
        close(master);
        execv(LATUP_BIN, (char *const *)args);
        _exit(121);
    }
    size_t n = 0;
    for (;;) { /* until the terminal's other side is closed (EIO) */
        const ssize_t r = read(master, out + n, cap - 1 - n);
        if (r > 0) n += (size_t)r;
        else if (r < 0 && errno == EINTR) continue;
        else break;
        if (n == cap - 1) break;
    }
    out[n] = '\0';
    close(master);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* A decode that takes seconds on one thread: the line appears after a second, each write
 * "\rlatup: N%, about T left" (padded) with N not going back, then spaces and "\r" clear it before
 * the summary line, which starts at column 0. A fast machine may finish before a line is due;
 * the summary's seconds say whether one had to appear. */
static void test_cli_on_a_terminal(void **state) {
    (void)state;
    latup_tensor z = latent(2, 128, 128, 6);
    const char *in = tmp_path("big.npy"), *out = tmp_path("big_out.npy");
    assert_int_equal(latup_npy_write(in, &z), LATUP_OK);
    latup_tensor_free(&z);
    const char *args[] = {LATUP_BIN, "decode", "--vae", VAE_PATH, "-i", in, "-o", out, "-t", "1", NULL};
    static char text[65536];
    const int rc = run_on_pty(args, text, sizeof text);
    assert_int_equal(rc, 0);
    char *summary = strstr(text, "latup: ");
    while (summary && strstr(summary + 1, "latup: ")) summary = strstr(summary + 1, "latup: ");
    assert_non_null(summary); /* the last "latup: " is the summary */
    double secs = 0;
    const char *paren = strstr(summary, "(");
    assert_non_null(paren);
    assert_int_equal(sscanf(paren, "(%lf s", &secs), 1);
    assert_non_null(strstr(summary, "-> decode ->"));
    assert_int_equal(summary[strlen(summary) - 1], '\n');
    /* before the summary: nothing, or progress writes then the clearing one */
    const size_t head = (size_t)(summary - text);
    int lines = 0, last_pct = -1;
    if (head > 0) {
        assert_int_equal(text[0], '\r');
        assert_int_equal(text[head - 1], '\r');
        size_t width = 0;
        char *seg = text + 1;
        for (;;) {
            char *end = strchr(seg, '\r');
            assert_non_null(end);
            if (end == summary - 1) { /* the clearing write: spaces over the widest line */
                for (char *c = seg; c < end; c++) assert_int_equal(*c, ' ');
                assert_int_equal((size_t)(end - seg), width);
                break;
            }
            int pct = -1, used = 0;
            assert_int_equal(sscanf(seg, "latup: %d%%%n", &pct, &used), 1);
            assert_true(pct >= last_pct && pct <= 100);
            const char *rest = seg + used;
            assert_true(!strncmp(rest, ", about ", 8) || !strncmp(rest, ", more than", 11) || *rest == ' ' ||
                        rest == end);
            if ((size_t)(end - seg) > width) width = (size_t)(end - seg);
            last_pct = pct, lines++;
            seg = end + 1;
        }
    }
    printf("  decode of [2,16,128,128] on a terminal, 1 thread: %.2f s, %d progress writes (last %d%%), "
           "cleared before the summary\n", secs, lines, last_pct);
    if (secs > 2.0) assert_true(lines > 0);
    if (secs < 1.0) assert_int_equal(lines, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upscale),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_tiled_decode),
        cmocka_unit_test(test_execute),
        cmocka_unit_test(test_progress_field_prints_nothing),
        cmocka_unit_test(test_counter),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_line_on_a_clock),
        cmocka_unit_test(test_no_terminal),
        cmocka_unit_test(test_cli_on_a_terminal),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
