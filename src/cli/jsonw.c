/* jsonw.c — the CLI's JSON writer (jsonw.h): nesting kept on a small stack so commas and closing
 * brackets cannot go wrong, strings escaped (bytes that are not UTF-8 as \udcXX), misuse recorded
 * rather than printed. */
#include "jsonw.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void cli_json_start(cli_json *w, FILE *f) {
    memset(w, 0, sizeof *w);
    w->f = f;
}

static bool misuse(cli_json *w, const char *what) {
    if (!w->error) w->error = what;
    return false;
}

/* Length of the well-formed UTF-8 sequence at s (NUL-terminated), 0 if there is none: decoded,
 * then checked against the shortest form of its length, the surrogates and U+10FFFF. A truncated
 * sequence stops at the first byte that is not a continuation (the NUL at the latest). */
static int utf8_len(const unsigned char *s) {
    static const unsigned long shortest[5] = {0, 0, 0x80, 0x800, 0x10000};
    unsigned long cp;
    int n;
    if (s[0] < 0x80) return 1;
    if ((s[0] & 0xE0) == 0xC0) n = 2, cp = s[0] & 0x1Fu;
    else if ((s[0] & 0xF0) == 0xE0) n = 3, cp = s[0] & 0x0Fu;
    else if ((s[0] & 0xF8) == 0xF0) n = 4, cp = s[0] & 0x07u;
    else return 0; /* a continuation byte, or 0xF8..0xFF */
    for (int k = 1; k < n; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3Fu);
    }
    if (cp < shortest[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    return n;
}

static void put_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        int n = utf8_len(p);
        if (n == 0) fprintf(f, "\\udc%02x", *p++); /* surrogateescape: one byte, one escape */
        else if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p++);
        else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p++);
        else fwrite(p, 1, (size_t)n, f), p += n;
    }
    fputc('"', f);
}

/* Before a value: whether it may stand here (a key in an object, none elsewhere, one top-level
 * value); then its comma and key. */
static bool member(cli_json *w, const char *key) {
    if (w->error) return false;
    if (w->depth == 0) {
        if (w->done) return misuse(w, "a second value after the top-level one");
        if (key) return misuse(w, "a key outside any object");
        return true;
    }
    const int d = w->depth - 1;
    if (w->open[d] == '{' && !key) return misuse(w, "an object member without a key");
    if (w->open[d] == '[' && key) return misuse(w, "a key inside an array");
    if (w->any[d]) fputs(", ", w->f);
    w->any[d] = true;
    if (key) {
        put_string(w->f, key);
        fputs(": ", w->f);
    }
    return true;
}

/* After a value: at the top, the document is complete. */
static void value_written(cli_json *w) {
    if (w->depth == 0) w->done = true;
}

static void open_level(cli_json *w, const char *key, char bracket) {
    if (w->depth == CLI_JSON_MAX_DEPTH && !w->error) misuse(w, "nesting deeper than CLI_JSON_MAX_DEPTH");
    if (!member(w, key)) return;
    fputc(bracket, w->f);
    w->open[w->depth] = bracket;
    w->any[w->depth] = false;
    w->depth++;
}

void cli_json_object(cli_json *w, const char *key) { open_level(w, key, '{'); }
void cli_json_array(cli_json *w, const char *key) { open_level(w, key, '['); }

void cli_json_end(cli_json *w) {
    if (w->error) return;
    if (w->depth == 0) {
        misuse(w, "end() with no object or array open");
        return;
    }
    w->depth--;
    fputc(w->open[w->depth] == '{' ? '}' : ']', w->f);
    value_written(w);
}

void cli_json_str(cli_json *w, const char *key, const char *s) {
    if (!s && !w->error) misuse(w, "a NULL string");
    if (!member(w, key)) return;
    put_string(w->f, s);
    value_written(w);
}

void cli_json_int(cli_json *w, const char *key, long long v) {
    if (!member(w, key)) return;
    fprintf(w->f, "%lld", v);
    value_written(w);
}

void cli_json_uint(cli_json *w, const char *key, unsigned long long v) {
    if (!member(w, key)) return;
    fprintf(w->f, "%llu", v);
    value_written(w);
}

void cli_json_bool(cli_json *w, const char *key, bool v) {
    if (!member(w, key)) return;
    fputs(v ? "true" : "false", w->f);
    value_written(w);
}

void cli_json_real(cli_json *w, const char *key, double v) {
    if (!isfinite(v) && !w->error) misuse(w, "a number that is not finite");
    if (!member(w, key)) return;
    char b[40];
    for (int digits = 1; digits <= 17; digits++) /* 17 always reads back */
        if (snprintf(b, sizeof b, "%.*g", digits, v), strtod(b, NULL) == v) break;
    if (strspn(b, "-0123456789") == strlen(b)) strcat(b, ".0");
    fputs(b, w->f);
    value_written(w);
}

const char *cli_json_finish(cli_json *w) {
    if (w->depth && !w->error) misuse(w, "an object or array left open");
    if (!w->done && !w->error) misuse(w, "no value written");
    if (!w->error) fputc('\n', w->f);
    return w->error;
}
