/* test_jsonw.c — the CLI's JSON writer (src/cli/jsonw.c, built into this test): exact text for
 * nesting, commas, empty containers, numbers and escapes; every document read back by latup's own
 * strict parser (src/io/json.h); bytes that are not UTF-8 written as \udcXX exactly as Python's
 * surrogateescape decodes them, and read back as those bytes; and every misuse detected, with
 * nothing written after it. One report line per case. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/jsonw.c"
#include "io/json.h"

/* A writer into memory: start, the calls, then text() returns what was written. */
typedef struct {
    char *buf;
    size_t len;
    FILE *f;
    cli_json w;
} sink;

static void sink_open(sink *s) {
    memset(s, 0, sizeof *s);
    s->f = open_memstream(&s->buf, &s->len);
    assert_non_null(s->f);
    cli_json_start(&s->w, s->f);
}

/* Finishes the writer: its verdict in *err, the text returned (freed by the caller). */
static char *sink_close(sink *s, const char **err) {
    *err = cli_json_finish(&s->w);
    assert_int_equal(fclose(s->f), 0);
    return s->buf;
}

static void expect_text(const char *label, sink *s, const char *want) {
    const char *err;
    char *got = sink_close(s, &err);
    const int ok = !err && !strcmp(got, want);
    printf("jsonw %-34s %s\n", label, ok ? "OK" : "NOT OK");
    if (!ok) printf("  got  %s  want %s  error %s\n", got, want, err ? err : "none");
    assert_null(err);
    assert_string_equal(got, want);
    latup_json_doc doc; /* and it is JSON: strict when it is UTF-8 */
    latup_status st = strstr(got, "\\udc") ? latup_json_parse_bytes(got, strlen(got), 0, &doc)
                                           : latup_json_parse(got, strlen(got), 0, &doc);
    if (st) printf("  parse: %s\n", latup_last_error());
    assert_int_equal(st, LATUP_OK);
    latup_json_free(&doc);
    free(got);
}

static void test_nesting_and_commas(void **state) {
    (void)state;
    sink s;
    sink_open(&s);
    cli_json *w = &s.w;
    cli_json_object(w, NULL);
    cli_json_str(w, "command", "run");
    cli_json_int(w, "threads", 2);
    cli_json_object(w, "empty");
    cli_json_end(w);
    cli_json_array(w, "none");
    cli_json_end(w);
    cli_json_array(w, "items");
    cli_json_object(w, NULL);
    cli_json_array(w, "shape");
    cli_json_int(w, NULL, 16);
    cli_json_int(w, NULL, -3);
    cli_json_end(w);
    cli_json_bool(w, "tiled", false);
    cli_json_bool(w, "exact", true);
    cli_json_end(w);
    cli_json_array(w, NULL);
    cli_json_array(w, NULL);
    cli_json_end(w);
    cli_json_uint(w, NULL, 7);
    cli_json_end(w);
    cli_json_end(w);
    cli_json_object(w, "plan");
    cli_json_object(w, "takes");
    cli_json_uint(w, "a", 1);
    cli_json_end(w);
    cli_json_end(w);
    cli_json_end(w);
    expect_text("nested objects and arrays", &s,
                "{\"command\": \"run\", \"threads\": 2, \"empty\": {}, \"none\": [], \"items\": [{\"shape\": [16, -3], "
                "\"tiled\": false, \"exact\": true}, [[], 7]], \"plan\": {\"takes\": {\"a\": 1}}}\n");
    /* a top-level value of each kind */
    sink_open(&s);
    cli_json_array(&s.w, NULL);
    cli_json_end(&s.w);
    expect_text("top-level empty array", &s, "[]\n");
    sink_open(&s);
    cli_json_str(&s.w, NULL, "alone");
    expect_text("top-level string", &s, "\"alone\"\n");
    /* the deepest nesting allowed */
    sink_open(&s);
    for (int d = 0; d < CLI_JSON_MAX_DEPTH; d++) cli_json_array(&s.w, NULL);
    for (int d = 0; d < CLI_JSON_MAX_DEPTH; d++) cli_json_end(&s.w);
    expect_text("16 levels", &s, "[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]\n");
}

static void test_numbers(void **state) {
    (void)state;
    sink s;
    sink_open(&s);
    cli_json_array(&s.w, NULL);
    cli_json_int(&s.w, NULL, LLONG_MIN);
    cli_json_int(&s.w, NULL, LLONG_MAX);
    cli_json_uint(&s.w, NULL, (unsigned long long)SIZE_MAX >> 1);
    cli_json_end(&s.w);
    expect_text("integer extremes", &s, "[-9223372036854775808, 9223372036854775807, 9223372036854775807]\n");
    sink_open(&s); /* past int64: still a JSON number (latup's parser refuses it, Python does not) */
    cli_json_uint(&s.w, NULL, ULLONG_MAX);
    const char *err;
    char *t = sink_close(&s, &err);
    assert_null(err);
    assert_string_equal(t, "18446744073709551615\n");
    free(t);

    /* reals: the shortest text that reads back, whole numbers marked as reals */
    const double v[] = {0.1, 1.0, -0.0, 2.5, 1e300, 5e-324, DBL_MAX, 123456789012345678.0, 1.0 / 3.0, -7e-5};
    const int n = (int)(sizeof v / sizeof v[0]);
    sink_open(&s);
    cli_json_array(&s.w, NULL);
    for (int i = 0; i < n; i++) cli_json_real(&s.w, NULL, v[i]);
    cli_json_end(&s.w);
    t = sink_close(&s, &err);
    assert_null(err);
    const char *want = "[0.1, 1.0, -0.0, 2.5, 1e+300, 5e-324, 1.7976931348623157e+308, 1.2345678901234568e+17, "
                       "0.3333333333333333, -7e-05]\n";
    printf("jsonw %-34s %s: %s", "reals", strcmp(t, want) ? "NOT OK" : "OK", t);
    assert_string_equal(t, want);
    latup_json_doc doc;
    assert_int_equal(latup_json_parse(t, strlen(t), 0, &doc), LATUP_OK);
    int i = 0;
    for (const latup_json *e = doc.root->u.kids.first; e; e = e->next, i++) {
        assert_int_equal(e->type, LATUP_JSON_REAL);
        assert_true(e->u.d == v[i] && signbit(e->u.d) == signbit(v[i])); /* every bit back */
    }
    assert_int_equal(i, n);
    latup_json_free(&doc);
    free(t);
}

static void test_escapes(void **state) {
    (void)state;
    sink s;
    sink_open(&s);
    cli_json_object(&s.w, NULL);
    cli_json_str(&s.w, "q\"b\\k", "a\"b\\c/d");
    cli_json_str(&s.w, "ctl", "\n\t\r\x01\x1f\x7f");
    cli_json_str(&s.w, "utf8", "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    cli_json_str(&s.w, "", "");
    cli_json_end(&s.w);
    expect_text("quotes, backslashes, controls", &s,
                "{\"q\\\"b\\\\k\": \"a\\\"b\\\\c/d\", \"ctl\": \"\\u000a\\u0009\\u000d\\u0001\\u001f\\u007f\", "
                "\"utf8\": \"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\", \"\": \"\"}\n");
}

/* Each byte of an ill-formed sequence as \udcXX: the strings Python's
 * bytes.decode("utf-8", "surrogateescape") gives (json.dumps of it, checked with Python 3.11), and
 * the bytes back through latup_json_parse_bytes. */
static void test_invalid_utf8(void **state) {
    (void)state;
    static const struct {
        const char *what, *bytes, *json;
    } cases[] = {
        {"the issue's file name", "x\xff\xfe.npy", "x\\udcff\\udcfe.npy"},
        {"lone continuation", "\x80", "\\udc80"},
        {"truncated, then ASCII", "\xe2\x82" "A", "\\udce2\\udc82A"},
        {"truncated at the end", "\xf0\x9f\x98", "\\udcf0\\udc9f\\udc98"},
        {"overlong, 2 bytes", "\xc0\xaf", "\\udcc0\\udcaf"},
        {"overlong, 3 bytes", "\xe0\x80\xaf", "\\udce0\\udc80\\udcaf"},
        {"overlong, 4 bytes", "\xf0\x80\x80\xaf", "\\udcf0\\udc80\\udc80\\udcaf"},
        {"encoded surrogate", "\xed\xa0\x80", "\\udced\\udca0\\udc80"},
        {"encoded surrogate, the last", "\xed\xbf\xbf", "\\udced\\udcbf\\udcbf"},
        {"past U+10FFFF", "\xf4\x90\x80\x80", "\\udcf4\\udc90\\udc80\\udc80"},
        {"lead byte 0xF5", "\xf5\x80\x80\x80", "\\udcf5\\udc80\\udc80\\udc80"},
        {"5-byte form", "\xf8\x88\x80\x80\x80", "\\udcf8\\udc88\\udc80\\udc80\\udc80"},
        {"bad continuation", "a\xc3(b", "a\\udcc3(b"},
        {"a quote after a bad byte", "\xc3\"", "\\udcc3\\\""},
        /* the edges of well-formed UTF-8: written as they are */
        {"U+0080 U+0800 U+D7FF U+E000", "\xc2\x80\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80",
         "\xc2\x80\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"},
        {"U+FFFF U+10000 U+10FFFF", "\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
         "\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sink s;
        sink_open(&s);
        cli_json_object(&s.w, NULL);
        cli_json_str(&s.w, "input", cases[k].bytes);
        cli_json_end(&s.w);
        char want[256];
        snprintf(want, sizeof want, "{\"input\": \"%s\"}\n", cases[k].json);
        expect_text(cases[k].what, &s, want);
        /* the text is UTF-8 itself, and reads back as the bytes */
        sink_open(&s);
        cli_json_str(&s.w, NULL, cases[k].bytes);
        const char *err;
        char *t = sink_close(&s, &err);
        assert_true(latup_utf8_valid(t, strlen(t)));
        latup_json_doc doc;
        assert_int_equal(latup_json_parse_bytes(t, strlen(t), 0, &doc), LATUP_OK);
        assert_string_equal(doc.root->u.str.s, cases[k].bytes);
        latup_json_free(&doc);
        free(t);
    }
}

/* latup_utf8_valid looks at exactly len bytes: a valid string followed in memory by a byte that
 * starts no sequence (0xff, 0x80) or by a lead byte whose sequence would run past len is valid; a
 * sequence cut by len is not. Each string sits in a heap block of exactly its bytes and the one
 * after, so ASan also sees a read past that. */
static void test_utf8_length_is_the_end(void **state) {
    (void)state;
    const struct {
        const char *bytes;
        size_t len, total;
        int valid;
    } cases[] = {{"abc\xff", 3, 4, 1},        {"abc\x80", 3, 4, 1},         {"ab\xc3\xa9\xff", 4, 5, 1},
                 {"ab\xc3\xa9", 3, 4, 0},     {"\xe2\x82\xac\xe2", 3, 4, 1}, {"\xe2\x82\xac", 2, 3, 0},
                 {"\xf0\x9f\x98\x80\xc3", 4, 5, 1}, {"", 0, 1, 1}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *b = malloc(cases[k].total);
        memcpy(b, cases[k].bytes, cases[k].total);
        const int v = latup_utf8_valid(b, cases[k].len);
        printf("utf8 case %zu: %zu of %zu bytes: %s (want %s) %s\n", k, cases[k].len, cases[k].total, v ? "valid" : "invalid",
               cases[k].valid ? "valid" : "invalid", v == cases[k].valid ? "OK" : "NOT OK");
        assert_int_equal(v, cases[k].valid);
        free(b);
    }
}

/* A misuse is reported by finish, and nothing is written from that call on (no newline either). */
static void expect_misuse(const char *label, sink *s, const char *printed, const char *word) {
    const char *err;
    char *got = sink_close(s, &err);
    const int ok = err && strstr(err, word) && !strcmp(got, printed);
    printf("jsonw misuse: %-27s \"%s\" %s\n", label, err ? err : "(not detected)", ok ? "OK" : "NOT OK");
    if (!ok) printf("  printed '%s', want '%s'\n", got, printed);
    assert_true(ok);
    free(got);
}

static void test_misuse(void **state) {
    (void)state;
    sink s;
    sink_open(&s);
    cli_json_end(&s.w);
    expect_misuse("end with nothing open", &s, "", "end()");
    sink_open(&s);
    cli_json_object(&s.w, NULL);
    cli_json_end(&s.w);
    cli_json_end(&s.w);
    expect_misuse("one end too many", &s, "{}", "end()");
    sink_open(&s);
    cli_json_array(&s.w, NULL);
    cli_json_int(&s.w, "k", 1);
    cli_json_end(&s.w);
    expect_misuse("a key in an array", &s, "[", "key inside an array");
    sink_open(&s);
    cli_json_object(&s.w, NULL);
    cli_json_int(&s.w, "a", 1);
    cli_json_str(&s.w, NULL, "x");
    cli_json_end(&s.w);
    expect_misuse("a member without a key", &s, "{\"a\": 1", "without a key");
    sink_open(&s);
    cli_json_object(&s.w, "top");
    expect_misuse("a key at the top", &s, "", "outside any object");
    sink_open(&s);
    cli_json_int(&s.w, NULL, 1);
    cli_json_int(&s.w, NULL, 2);
    expect_misuse("two top-level values", &s, "1", "second value");
    sink_open(&s);
    cli_json_object(&s.w, NULL);
    cli_json_array(&s.w, "items");
    cli_json_end(&s.w);
    expect_misuse("an object left open", &s, "{\"items\": []", "left open");
    sink_open(&s);
    expect_misuse("nothing written", &s, "", "no value");
    sink_open(&s);
    for (int d = 0; d <= CLI_JSON_MAX_DEPTH; d++) cli_json_array(&s.w, NULL);
    expect_misuse("17 levels", &s, "[[[[[[[[[[[[[[[[", "deeper");
    sink_open(&s);
    cli_json_object(&s.w, NULL);
    cli_json_str(&s.w, "s", NULL);
    cli_json_end(&s.w);
    expect_misuse("a NULL string", &s, "{", "NULL");
    sink_open(&s);
    cli_json_array(&s.w, NULL);
    cli_json_real(&s.w, NULL, 1.5);
    cli_json_real(&s.w, NULL, NAN);
    cli_json_real(&s.w, NULL, 2.5);
    cli_json_end(&s.w);
    expect_misuse("NaN", &s, "[1.5", "not finite");
    sink_open(&s);
    cli_json_real(&s.w, NULL, -INFINITY);
    expect_misuse("-Inf", &s, "", "not finite");
    /* the first misuse is the one named */
    sink_open(&s);
    cli_json_array(&s.w, NULL);
    cli_json_bool(&s.w, "k", true);
    cli_json_end(&s.w);
    cli_json_end(&s.w);
    expect_misuse("the first of two", &s, "[", "key inside an array");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nesting_and_commas), cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_escapes), cmocka_unit_test(test_invalid_utf8), cmocka_unit_test(test_utf8_length_is_the_end),
        cmocka_unit_test(test_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
