/* test_options.c — the command line's grammar, in-process (src/cli/options.c built into this
 * test): every integer option at its documented bounds and one past them, an option given last
 * with no value (argv not NULL-terminated, so ASan sees any read past it), repeated and
 * conflicting options, --opt=value and short forms, and the strict value parsers (sizes without
 * floating point, no NaN, no overflow; reals; HxW; output patterns); and every file of the fuzz
 * corpus (fuzz/corpus/fuzz_cli_opts) through the fuzz target's checks. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* the fuzz target, which brings src/cli/options.c with it: its corpus replays here */
#include "../fuzz/fuzz_cli_opts.c"

#include <dirent.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static FILE *g_null;

/* Parses the tokens (after the command name) from an argv of exactly n + 1 pointers, no NULL
 * after them. Returns cli_parse's result. The values point into argv, which stays until the next
 * call. */
static char **g_argv;
static int parse(const cli_command *cmd, cli_args *a, int n, const char *const *tok) {
    free(g_argv);
    g_argv = malloc((size_t)(n + 1) * sizeof *g_argv);
    g_argv[0] = (char *)cmd->name;
    for (int i = 0; i < n; i++) g_argv[i + 1] = (char *)tok[i];
    return cli_parse(cmd, n + 1, g_argv, a, g_null, g_null);
}

/* The documented bounds (latup help CMD, README, docs/latup.1), not read from the table. */
static const struct {
    const cli_command *cmd;
    const char *opt;
    long long lo, hi;
} BOUNDS[] = {
    {&CLI_CMD_UPSCALE, "--scale", 2, 8},     {&CLI_CMD_UPSCALE, "--threads", 1, 4096},
    {&CLI_CMD_DECODE, "--tile", 4, 8192},    {&CLI_CMD_DECODE, "--overlap", 1, 8191},
    {&CLI_CMD_DECODE, "--threads", 1, 4096}, {&CLI_CMD_RUN, "--scale", 2, 8},
    {&CLI_CMD_RUN, "--tile", 4, 8192},       {&CLI_CMD_RUN, "--overlap", 1, 8191},
    {&CLI_CMD_RUN, "--threads", 1, 4096},    {&CLI_CMD_ENCODE, "--tile", 4, 8192},
    {&CLI_CMD_ENCODE, "--overlap", 1, 8191}, {&CLI_CMD_ENCODE, "--threads", 1, 4096},
};

static void test_integer_bounds(void **state) {
    (void)state;
    int checked = 0;
    for (size_t k = 0; k < sizeof BOUNDS / sizeof BOUNDS[0]; k++) {
        const long long vals[4] = {BOUNDS[k].lo - 1, BOUNDS[k].lo, BOUNDS[k].hi, BOUNDS[k].hi + 1};
        for (int v = 0; v < 4; v++) {
            char num[32];
            snprintf(num, sizeof num, "%lld", vals[v]);
            const char *tok[2] = {BOUNDS[k].opt, num};
            cli_args a;
            int rc = parse(BOUNDS[k].cmd, &a, 2, tok);
            const int want = v == 1 || v == 2 ? -1 : 1;
            if (rc != want) printf("latup %s %s %s: parse gives %d, want %d\n", BOUNDS[k].cmd->name, BOUNDS[k].opt, num, rc, want);
            assert_int_equal(rc, want);
            if (rc < 0) assert_int_equal(cli_num(&a, BOUNDS[k].opt, -99), vals[v]);
            checked++;
        }
    }
    /* every integer option of every command is bounded, and listed above */
    const cli_command *cmds[] = {&CLI_CMD_UPSCALE, &CLI_CMD_DECODE, &CLI_CMD_RUN, &CLI_CMD_INFO, &CLI_CMD_COMPARE};
    for (int c = 0; c < 5; c++)
        for (int i = 0; i < cmds[c]->n_opts; i++) {
            const cli_opt *o = &cmds[c]->opts[i];
            if (o->kind != OPT_INT && o->kind != OPT_INT_FRAC) continue;
            int listed = 0;
            for (size_t k = 0; k < sizeof BOUNDS / sizeof BOUNDS[0]; k++)
                listed |= BOUNDS[k].cmd == cmds[c] && !strcmp(BOUNDS[k].opt, o->name);
            if (!listed) printf("latup %s %s: an integer option without a tested bound\n", cmds[c]->name, o->name);
            assert_true(listed);
        }
    printf("integer options: %d values at and past the documented bounds OK\n", checked);
}

/* Every valued option, last on the line: a usage error, and nothing read past argv's end. */
static void test_missing_value_last(void **state) {
    (void)state;
    const cli_command *cmds[] = {&CLI_CMD_UPSCALE, &CLI_CMD_DECODE, &CLI_CMD_RUN, &CLI_CMD_INFO, &CLI_CMD_COMPARE};
    int n = 0;
    for (int c = 0; c < 5; c++)
        for (int i = 0; i < cmds[c]->n_opts; i++) {
            const cli_opt *o = &cmds[c]->opts[i];
            if (o->kind == OPT_FLAG) continue;
            const char *tok[3] = {"x", o->name};
            cli_args a;
            assert_int_equal(parse(cmds[c], &a, 1, tok + 1), 1);
            if (o->short_name) {
                char sh[3] = {'-', o->short_name, 0};
                const char *t2[1] = {sh};
                assert_int_equal(parse(cmds[c], &a, 1, t2), 1);
            }
            /* followed by another option instead of a value */
            const char *t3[2] = {o->name, "--quiet"};
            if (cmds[c] != &CLI_CMD_INFO) assert_int_equal(parse(cmds[c], &a, 2, t3), 1);
            n++;
        }
    printf("options given last with no value: %d refused\n", n);
    assert_true(n >= 40);
}

static void test_repeats_conflicts_forms(void **state) {
    (void)state;
    cli_args a;
    const char *rep[] = {"--scale", "2", "--scale", "4"};
    assert_int_equal(parse(&CLI_CMD_UPSCALE, &a, 4, rep), 1);
    const char *rep2[] = {"-s", "2", "--scale=2"};
    assert_int_equal(parse(&CLI_CMD_UPSCALE, &a, 3, rep2), 1);
    const char *rep3[] = {"--verbose", "-v"};
    assert_int_equal(parse(&CLI_CMD_UPSCALE, &a, 2, rep3), 1);
    const char *rep4[] = {"--in", "a.npy", "--in", "b.npy", "-i", "c.npy", "--in=d.npy"}; /* one input each */
    assert_int_equal(parse(&CLI_CMD_UPSCALE, &a, 7, rep4), -1);
    assert_int_equal(cli_get(&a, "--in")->n_list, 4);
    assert_string_equal(cli_get(&a, "--in")->list[3], "d.npy");
    const char *conf[] = {"--verbose", "--quiet"};
    assert_int_equal(parse(&CLI_CMD_DECODE, &a, 2, conf), 1);
    const char *conf2[] = {"--out", "a.png", "--out-dir", "d"};
    assert_int_equal(parse(&CLI_CMD_RUN, &a, 4, conf2), 1);
    const char *conf3[] = {"--save-latent", "a.npy", "--out-dir", "d"};
    assert_int_equal(parse(&CLI_CMD_RUN, &a, 4, conf3), 1);
    const char *flagval[] = {"--quiet=1"};
    assert_int_equal(parse(&CLI_CMD_RUN, &a, 1, flagval), 1);
    const char *unknown[] = {"--frobnicate"};
    assert_int_equal(parse(&CLI_CMD_RUN, &a, 1, unknown), 1);
    const char *stray[] = {"stray.npy"};
    assert_int_equal(parse(&CLI_CMD_RUN, &a, 1, stray), 1);

    /* the forms of one value */
    const char *forms[] = {"-m", "m.pth", "--scale=4", "-t3", "--in", "a.npy", "-i", "-", "-ib.npy", "-o", "-", "--max-memory", "1.5G"};
    assert_int_equal(parse(&CLI_CMD_RUN, &a, 13, forms), -1);
    assert_string_equal(cli_str(&a, "--model"), "m.pth");
    assert_int_equal(cli_num(&a, "--scale", 0), 4);
    assert_int_equal(cli_num(&a, "--threads", 0), 3);
    assert_int_equal(cli_get(&a, "--in")->n_list, 3);
    assert_string_equal(cli_get(&a, "--in")->list[1], "-");
    assert_string_equal(cli_get(&a, "--in")->list[2], "b.npy");
    assert_string_equal(cli_str(&a, "--out"), "-");
    assert_int_equal(cli_num(&a, "--max-memory", 0), (long long)3 << 29);
    const char *eq[] = {"--in=x.npy", "--flux-packed=128x96", "--diffusion-latent=flux", "--device=cpu"};
    assert_int_equal(parse(&CLI_CMD_DECODE, &a, 4, eq), -1);
    assert_int_equal(cli_get(&a, "--in")->n_list, 1);
    assert_string_equal(cli_get(&a, "--in")->list[0], "x.npy");
    assert_int_equal(cli_get(&a, "--flux-packed")->num, 128);
    assert_int_equal(cli_get(&a, "--flux-packed")->num2, 96);
    const char *badchoice[] = {"--device", "tpu"};
    assert_int_equal(parse(&CLI_CMD_DECODE, &a, 2, badchoice), 1);
    const char *prefix[] = {"--diffusion-latent", "sd3x"};
    assert_int_equal(parse(&CLI_CMD_DECODE, &a, 2, prefix), 1);
    const char *empty[] = {"--model="};
    assert_int_equal(parse(&CLI_CMD_RUN, &a, 1, empty), 1);
    const char *pos[] = {"a", "b"};
    assert_int_equal(parse(&CLI_CMD_COMPARE, &a, 2, pos), -1);
    assert_int_equal(parse(&CLI_CMD_COMPARE, &a, 1, pos), 1);
    const char *pos3[] = {"a", "b", "c"};
    assert_int_equal(parse(&CLI_CMD_COMPARE, &a, 3, pos3), 1);
    const char *dashdash[] = {"--", "-odd-name"};
    assert_int_equal(parse(&CLI_CMD_INFO, &a, 2, dashdash), -1);
    assert_string_equal(a.pos[0], "-odd-name");
    const char *help[] = {"--scale", "2", "--help"};
    assert_int_equal(parse(&CLI_CMD_UPSCALE, &a, 3, help), 0);
}

/* Parses like parse(), and keeps what the parser printed on err (one line for a usage error). */
static char g_err[1024];
static int parse_err(const cli_command *cmd, cli_args *a, int n, const char *const *tok) {
    memset(g_err, 0, sizeof g_err);
    FILE *f = fmemopen(g_err, sizeof g_err - 1, "w");
    free(g_argv);
    g_argv = malloc((size_t)(n + 1) * sizeof *g_argv);
    g_argv[0] = (char *)cmd->name;
    for (int i = 0; i < n; i++) g_argv[i + 1] = (char *)tok[i];
    const int rc = cli_parse(cmd, n + 1, g_argv, a, g_null, f);
    fclose(f);
    printf("  latup %s ... %-16s -> %d%s%s", cmd->name, tok[n - 1], rc, rc == 1 ? ": " : "\n", rc == 1 ? g_err : "");
    return rc;
}

static int one_line(const char *s) {
    const char *nl = strchr(s, '\n');
    return nl && nl[1] == '\0';
}

/* `-i in.npy out.npy`: -i takes one file, and the stray argument says where outputs go. */
static void test_one_value_per_in(void **state) {
    (void)state;
    cli_args a;
    const char *slip[] = {"-m", "m.pth", "-s", "2", "--vae", "v.st", "-i", "in.npy", "out.npy"};
    assert_int_equal(parse_err(&CLI_CMD_RUN, &a, 9, slip), 1);
    assert_true(one_line(g_err));
    assert_non_null(strstr(g_err, "'out.npy' after the input 'in.npy'"));
    assert_non_null(strstr(g_err, "-i (--in) takes one file"));
    assert_non_null(strstr(g_err, "-o (--out)"));
    const char *elsewhere[] = {"-i", "in.npy", "-o", "x.npy", "stray"};
    assert_int_equal(parse_err(&CLI_CMD_UPSCALE, &a, 5, elsewhere), 1);
    assert_null(strstr(g_err, "after the input"));
    assert_non_null(strstr(g_err, "unexpected argument 'stray' (every input follows its own -i"));
    const char *info2[] = {"a.pth", "b.pth"};
    assert_int_equal(parse_err(&CLI_CMD_INFO, &a, 2, info2), 1);
    assert_non_null(strstr(g_err, "info reads one file"));
    /* a command has one list option at most: the pool of values is shared */
    const cli_command *cmds[] = {&CLI_CMD_UPSCALE, &CLI_CMD_DECODE, &CLI_CMD_RUN, &CLI_CMD_INFO, &CLI_CMD_COMPARE};
    for (int c = 0; c < 5; c++) {
        int lists = 0;
        for (int i = 0; i < cmds[c]->n_opts; i++) lists += cmds[c]->opts[i].kind == OPT_LIST;
        assert_true(lists <= 1);
    }
    /* as many inputs as the pool holds, and one more is refused, not overrun */
    const int n = 2 * CLI_MAX_LIST + 2;
    const char **many = malloc((size_t)n * sizeof *many);
    for (int i = 0; i < n; i += 2) many[i] = "-i", many[i + 1] = "x.npy";
    assert_int_equal(parse(&CLI_CMD_DECODE, &a, n - 2, many), -1);
    assert_int_equal(cli_get(&a, "--in")->n_list, CLI_MAX_LIST);
    assert_int_equal(parse_err(&CLI_CMD_DECODE, &a, n, many), 1);
    assert_non_null(strstr(g_err, "more than 16384 values of --in"));
    free(many);
}

/* An unknown option names the nearest of the command's, only when it is close. */
static void test_did_you_mean(void **state) {
    (void)state;
    assert_int_equal(cli_edit_distance("treads", 6, "threads", 7), 1);
    assert_int_equal(cli_edit_distance("thraeds", 7, "threads", 7), 1); /* a swap is one edit */
    assert_int_equal(cli_edit_distance("TILE", 4, "tile", 4), 0);
    assert_int_equal(cli_edit_distance("", 0, "out", 3), 3);
    assert_int_equal(cli_edit_distance("kitten", 6, "sitting", 7), 3);
    static const struct {
        const cli_command *cmd;
        const char *typed, *want; /* NULL: no suggestion */
    } cases[] = {
        {&CLI_CMD_RUN, "--treads", "--threads"},     {&CLI_CMD_RUN, "--thread", "--threads"},
        {&CLI_CMD_DECODE, "--ovelrap", "--overlap"}, {&CLI_CMD_DECODE, "--max-mem", "--max-memory"},
        {&CLI_CMD_RUN, "--diffusion", "--diffusion-latent"}, {&CLI_CMD_UPSCALE, "--modle", "--model"},
        {&CLI_CMD_UPSCALE, "--verbsoe", "--verbose"}, {&CLI_CMD_RUN, "--outdir", "--out-dir"},
        {&CLI_CMD_RUN, "--frobnicate", NULL},        {&CLI_CMD_RUN, "--x", NULL},
        {&CLI_CMD_RUN, "--fl", NULL},                {&CLI_CMD_COMPARE, "--tolerance", NULL},
        {&CLI_CMD_RUN, "--vae-tile", "--vae-tiling"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *got = cli_suggest_option(cases[k].cmd, cases[k].typed, strlen(cases[k].typed));
        if (!got != !cases[k].want || (got && strcmp(got, cases[k].want)))
            printf("latup %s %s: suggests %s, want %s\n", cases[k].cmd->name, cases[k].typed, got ? got : "nothing",
                   cases[k].want ? cases[k].want : "nothing");
        assert_true(!got == !cases[k].want && (!got || !strcmp(got, cases[k].want)));
    }
    cli_args a;
    const char *treads[] = {"--treads", "2"};
    assert_int_equal(parse_err(&CLI_CMD_RUN, &a, 2, treads), 1);
    assert_true(one_line(g_err));
    assert_non_null(strstr(g_err, "unknown option '--treads'; did you mean --threads?"));
    const char *eq[] = {"--treads=2"};
    assert_int_equal(parse_err(&CLI_CMD_RUN, &a, 1, eq), 1);
    assert_non_null(strstr(g_err, "unknown option '--treads'; did you mean --threads?"));
    const char *far[] = {"--frobnicate"};
    assert_int_equal(parse_err(&CLI_CMD_RUN, &a, 1, far), 1);
    assert_null(strstr(g_err, "did you mean"));
    const char *other[] = {"--tile", "8"}; /* not upscale's, but decode's and run's */
    assert_int_equal(parse_err(&CLI_CMD_UPSCALE, &a, 2, other), 1);
    assert_non_null(strstr(g_err, "unknown option '--tile' (an option of decode, run, encode, not of upscale)"));
    assert_string_equal(cli_suggest_command("updcale"), "upscale");
    assert_string_equal(cli_suggest_command("decod"), "decode");
    assert_string_equal(cli_suggest_command("comapre"), "compare");
    assert_null(cli_suggest_command("frobnicate"));
}

/* --overlap: latent pixels, or a fraction of the tile written with a point; the sd.cpp spellings of
 * the tile; --max-memory for upscale too. */
static void test_overlap_tiles_budget(void **state) {
    (void)state;
    cli_args a;
    static const struct {
        const char *s;
        long long num;
        double real; /* -1: refused */
    } ov[] = {
        {"4", 4, 0}, {"8191", 8191, 0}, {"0.25", 0, 0.25}, {".5", 0, 0.5}, {"0.999", 0, 0.999},
        {"0", 0, -1}, {"8192", 0, -1}, {"1.0", 0, -1}, {"0.0", 0, -1}, {"0.", 0, -1}, {"1e-1", 0, -1},
        {"-0.25", 0, -1}, {"0.2.5", 0, -1}, {".", 0, -1}, {"nan", 0, -1}, {"2.5", 0, -1},
    };
    for (size_t k = 0; k < sizeof ov / sizeof ov[0]; k++) {
        const char *tok[] = {"--overlap", ov[k].s};
        const int rc = parse(&CLI_CMD_DECODE, &a, 2, tok);
        if (rc != (ov[k].real < 0 ? 1 : -1)) printf("--overlap %s: parse gives %d\n", ov[k].s, rc);
        assert_int_equal(rc, ov[k].real < 0 ? 1 : -1);
        if (rc < 0) {
            assert_int_equal(cli_get(&a, "--overlap")->num, ov[k].num);
            assert_true(cli_get(&a, "--overlap")->real == ov[k].real);
        }
    }
    const char *sd[] = {"--vae-tiling", "--vae-tile-size", "32x32", "--overlap", "0.5"};
    assert_int_equal(parse(&CLI_CMD_RUN, &a, 5, sd), -1);
    assert_true(cli_given(&a, "--vae-tiling"));
    assert_int_equal(cli_get(&a, "--vae-tile-size")->num, 32);
    const char *both[] = {"--tile", "32", "--vae-tile-size", "32x32"};
    assert_int_equal(parse_err(&CLI_CMD_DECODE, &a, 4, both), 1);
    assert_non_null(strstr(g_err, "--tile and --vae-tile-size exclude each other"));
    const char *small[] = {"--vae-tile-size", "2x2"};
    assert_int_equal(parse(&CLI_CMD_DECODE, &a, 2, small), 1);
    const char *mm[] = {"--max-memory", "2G"};
    assert_int_equal(parse(&CLI_CMD_UPSCALE, &a, 2, mm), -1);
    assert_int_equal(cli_num(&a, "--max-memory", 0), 2LL << 30);
}

static void test_sizes(void **state) {
    (void)state;
    const long long G = (long long)1 << 30;
    static const struct {
        const char *s;
        long long want; /* -1: refused */
    } cases[] = {
        {"4G", 4 * ((long long)1 << 30)}, {"4GB", 4 * ((long long)1 << 30)}, {"4GiB", 4 * ((long long)1 << 30)},
        {"512m", 512LL << 20}, {"1.5G", 3LL << 29}, {"1000000", 1000000}, {"1K", 1024}, {"2T", 2LL << 40},
        {"0.5K", 512}, {"1", 1},
        {"nan", -1}, {"NaN", -1}, {"inf", -1}, {"-1G", -1}, {"+1G", -1}, {" 1G", -1}, {"1G ", -1}, {"0x10", -1},
        {"1e9", -1}, {"", -1}, {"G", -1}, {".5G", -1}, {"1.G", -1}, {"1.5", -1}, {"0", -1}, {"1Q", -1},
        {"99999999999999999999", -1}, {"2000000T", -1}, {"1.0000000001G", -1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        long long v = -7;
        int ok = cli_parse_size(cases[k].s, 1, (long long)1 << 60, &v);
        if (ok != (cases[k].want >= 0) || (ok && v != cases[k].want))
            printf("size '%s': ok %d value %lld, want %lld\n", cases[k].s, ok, v, cases[k].want);
        assert_int_equal(ok, cases[k].want >= 0);
        if (ok) assert_int_equal(v, cases[k].want);
    }
    (void)G;
}

static void test_reals_hw_patterns(void **state) {
    (void)state;
    double r;
    assert_true(cli_parse_real("1e-4", 0, 1e30, &r) && r == 1e-4);
    assert_true(cli_parse_real("0.25", 0, 1e30, &r) && r == 0.25);
    const char *bad[] = {"nan", "inf", "-1", "1e400", "0x1p3", " 1", "1 ", "", "1e", "--1"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) assert_false(cli_parse_real(bad[k], 0, 1e30, &r));

    long long h, w;
    assert_true(cli_parse_hw("128x96", 2, 16384, &h, &w) && h == 128 && w == 96);
    const char *badhw[] = {"128", "128x", "x96", "1x96", "128x96x2", "-2x4", "16385x2", "2 x2", "99999999999999999999x2"};
    for (size_t k = 0; k < sizeof badhw / sizeof badhw[0]; k++) assert_false(cli_parse_hw(badhw[k], 2, 16384, &h, &w));

    long long v;
    const char *badint[] = {"", "+2", " 2", "2 ", "0x2", "2.0", "1e1", "9223372036854775808", "-9223372036854775809"};
    for (size_t k = 0; k < sizeof badint / sizeof badint[0]; k++) assert_false(cli_parse_int(badint[k], 1, 100, &v));

    assert_int_equal(cli_pattern_kind("out.png"), 0);
    assert_int_equal(cli_pattern_kind("out_%03d.png"), 1);
    assert_int_equal(cli_pattern_kind("out_%d.png"), 1);
    assert_int_equal(cli_pattern_kind("100%%_%d.png"), 1);
    assert_int_equal(cli_pattern_kind("100%%.png"), 0);
    assert_int_equal(cli_pattern_kind("out_%s.png"), -1);
    assert_int_equal(cli_pattern_kind("out_%d_%d.png"), -1);
    assert_int_equal(cli_pattern_kind("out_%.png"), -1);
    assert_int_equal(cli_pattern_kind("out_%n.png"), -1);
    assert_int_equal(cli_pattern_kind("out_%"), -1);
    assert_int_equal(cli_pattern_kind("out_%10d"), -1);
    char buf[64];
    assert_true(cli_pattern_format(buf, sizeof buf, "d/out_%03d.png", 7));
    assert_string_equal(buf, "d/out_007.png");
    assert_true(cli_pattern_format(buf, sizeof buf, "100%%_%d.png", 12));
    assert_string_equal(buf, "100%_12.png");
    assert_false(cli_pattern_format(buf, 8, "longer_than_eight_%d", 1));
    /* the width digit at its ends, 1 and 9, and the bytes one past them ('0' - 1 = '/', '9' + 1 = ':') */
    const struct {
        const char *pattern, *want; /* want NULL: refused */
    } widths[] = {{"o_%1d", "o_7"}, {"o_%9d", "o_        7"}, {"o_%01d", "o_7"}, {"o_%09d", "o_000000007"},
                  {"o_%0d", "o_7"}, {"o_%/d", NULL}, {"o_%:d", NULL}, {"o_%0/d", NULL}, {"o_%0:d", NULL}};
    for (size_t k = 0; k < sizeof widths / sizeof widths[0]; k++) {
        const int kind = cli_pattern_kind(widths[k].pattern), fmt = cli_pattern_format(buf, sizeof buf, widths[k].pattern, 7);
        const int ok = widths[k].want ? kind == 1 && fmt && !strcmp(buf, widths[k].want) : kind == -1 && !fmt;
        printf("pattern %s: kind %d, formats 7 as '%s' (want %s) %s\n", widths[k].pattern, kind, fmt ? buf : "(refused)",
               widths[k].want ? widths[k].want : "refused", ok ? "OK" : "NOT OK");
        assert_true(ok);
    }
}

/* The usage text comes from the same table: every option and short form appears in it. */
static void test_usage_lists_every_option(void **state) {
    (void)state;
    const cli_command *cmds[] = {&CLI_CMD_UPSCALE, &CLI_CMD_DECODE, &CLI_CMD_RUN, &CLI_CMD_INFO, &CLI_CMD_COMPARE};
    for (int c = 0; c < 5; c++) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        cli_print_usage(cmds[c], f);
        fclose(f);
        assert_non_null(strstr(text, cmds[c]->name));
        for (int i = 0; i < cmds[c]->n_opts; i++) {
            assert_non_null(strstr(text, cmds[c]->opts[i].name));
            if (cmds[c]->opts[i].short_name) {
                char sh[8];
                snprintf(sh, sizeof sh, "-%c, ", cmds[c]->opts[i].short_name);
                assert_non_null(strstr(text, sh));
            }
        }
        /* no line wider than the wrap width */
        for (char *p = text; *p;) {
            size_t n = strcspn(p, "\n");
            if (n > 100) printf("latup help %s: a line of %zu columns: %.*s\n", cmds[c]->name, n, (int)n, p);
            assert_true(n <= 100);
            p += n + (p[n] == '\n');
        }
        free(text);
    }
}

/* Every committed fuzz input: parsed, and whatever is accepted holds the parser's promises (the
 * target traps otherwise). */
static void test_fuzz_corpus(void **state) {
    (void)state;
    DIR *d = opendir("fuzz/corpus/fuzz_cli_opts");
    assert_non_null(d);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[512];
        snprintf(p, sizeof p, "fuzz/corpus/fuzz_cli_opts/%s", e->d_name);
        FILE *f = fopen(p, "rb");
        assert_non_null(f);
        uint8_t buf[4096];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        uint8_t *exact = malloc(len ? len : 1); /* exactly sized: ASan sees any overread */
        memcpy(exact, buf, len);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
        n++;
    }
    closedir(d);
    printf("fuzz corpus: %d command lines replayed, every promise held\n", n);
    assert_true(n >= 10);
}

static int setup(void **state) {
    (void)state;
    g_null = fopen("/dev/null", "w");
    return g_null ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    free(g_argv);
    fclose(g_null);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integer_bounds),        cmocka_unit_test(test_missing_value_last),
        cmocka_unit_test(test_repeats_conflicts_forms), cmocka_unit_test(test_one_value_per_in),
        cmocka_unit_test(test_did_you_mean),          cmocka_unit_test(test_overlap_tiles_budget),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_reals_hw_patterns),     cmocka_unit_test(test_usage_lists_every_option),
        cmocka_unit_test(test_fuzz_corpus),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
