/* fuzz_cli_opts.c — libFuzzer target for the command line's option parsing (src/cli/options.c,
 * built into this file: it needs libc only). The first byte picks a command; the rest, split at
 * NUL bytes, is its argv, handed over without a terminating NULL so that any read past argc is a
 * heap overflow. Whatever the parser accepts must hold its promises (ranges, no repeats, no
 * conflicts, lists non-empty); each token also goes through the value parsers. */
#include "cli/options.c"

#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) __builtin_trap();                                                                \
    } while (0)

static void check_accepted(const cli_command *cmd, const cli_args *a) {
    CHECK(a->n_pos >= cmd->min_pos && a->n_pos <= cmd->max_pos);
    for (int k = 0; k < cmd->n_opts; k++) {
        const cli_opt *o = &cmd->opts[k];
        const cli_value *v = &a->v[k];
        if (!v->given) continue;
        switch (o->kind) {
        case OPT_INT:
        case OPT_SIZE: CHECK(v->num >= o->lo && v->num <= o->hi); break;
        case OPT_HW: CHECK(v->num >= o->lo && v->num <= o->hi && v->num2 >= o->lo && v->num2 <= o->hi); break;
        case OPT_REAL: CHECK(v->real >= o->rlo && v->real <= o->rhi && v->real == v->real); break;
        case OPT_INT_FRAC: /* latent pixels in range, or a fraction strictly between 0 and 1 */
            CHECK(v->real == 0 ? v->num >= o->lo && v->num <= o->hi : v->num == 0 && v->real > 0 && v->real < 1);
            break;
        case OPT_LIST:
            CHECK(v->n_list >= 1 && v->n_list <= CLI_MAX_LIST);
            for (int i = 0; i < v->n_list; i++) CHECK(v->list[i][0] != '\0');
            break;
        case OPT_STR:
        case OPT_CHOICE: CHECK(v->text && v->text[0]); break;
        case OPT_FLAG: break;
        }
    }
    for (const char *c = cmd->conflicts; *c;) {
        char pair[64] = "", x[32] = "", y[32] = "";
        size_t n = strcspn(c, ",");
        snprintf(pair, sizeof pair, "%.*s", (int)n, c);
        if (sscanf(pair, "%31s %31s", x, y) == 2) CHECK(!(cli_given(a, x) && cli_given(a, y)));
        c += n + (c[n] == ',');
    }
}

static void check_values(const char *s) {
    long long v, h, w;
    double r;
    if (cli_parse_size(s, 1, (long long)1 << 60, &v)) CHECK(v >= 1 && v <= (long long)1 << 60);
    if (cli_parse_int(s, -5, 4096, &v)) CHECK(v >= -5 && v <= 4096);
    if (cli_parse_real(s, 0, 1e30, &r)) CHECK(r >= 0 && r <= 1e30);
    if (cli_parse_hw(s, 2, 16384, &h, &w)) CHECK(h >= 2 && w >= 2 && h <= 16384 && w <= 16384);
    int kind = cli_pattern_kind(s);
    char buf[256];
    if (kind == 1 && cli_pattern_format(buf, sizeof buf, s, 123456789)) CHECK(strstr(buf, "123456789"));
    if (kind == 0 && cli_pattern_format(buf, sizeof buf, s, 7)) CHECK(strlen(buf) <= strlen(s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static FILE *null_out;
    if (!null_out) null_out = fopen("/dev/null", "w");
    static const cli_command *const cmds[] = {&CLI_CMD_UPSCALE, &CLI_CMD_DECODE, &CLI_CMD_RUN, &CLI_CMD_INFO,
                                              &CLI_CMD_COMPARE, &CLI_CMD_ENCODE, &CLI_CMD_EVAL};
    if (size < 1 || size > 4096) return 0;
    const cli_command *cmd = cmds[data[0] % (sizeof cmds / sizeof cmds[0])];
    char *text = malloc(size); /* data[1..] plus a final NUL */
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    int n = 1;
    for (size_t i = 0; i + 1 < size; i++) n += text[i] == '\0';
    char **argv = malloc((size_t)(n + 1) * sizeof *argv); /* argv[0..n]: no NULL after */
    argv[0] = (char *)cmd->name;
    char *p = text;
    for (int i = 1; i <= n; i++) {
        argv[i] = p;
        check_values(p);
        p += strlen(p) + 1;
    }
    cli_args a;
    int rc = cli_parse(cmd, n + 1, argv, &a, null_out, null_out);
    CHECK(rc == -1 || rc == 0 || rc == 1);
    if (rc == -1) check_accepted(cmd, &a);
    free(argv);
    free(text);
    return 0;
}
