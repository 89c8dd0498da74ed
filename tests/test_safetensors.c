/* test_safetensors.c — the JSON parser, and the safetensors reader/writer: one hand-built malformed
 * file per rejection rule of docs/spec/formats.md (status and a key word of the message are
 * checked), valid files in every dtype, F16/BF16 special values, write -> load and gzip round trips,
 * and a truncation sweep plus byte-flip fuzz that must fail cleanly (run under ASan too). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "io/fileio.h"
#include "io/half.h"
#include "io/json.h"
#include "io/weights.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define PATH "t.safetensors"




/* ---- building files by hand ------------------------------------------------------------------ */

/* Headers are written with ' for " to stay readable; this swaps them back. */
static char *dq(const char *s) {
    char *d = strdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'') *p = '"';
    return d;
}

/* [u64 LE header length][header][data]; the header is taken as is (after ' -> "). */
static uint8_t *build(const char *header_sq, const void *data, size_t dlen, size_t *len) {
    char *h = dq(header_sq);
    size_t hl = strlen(h);
    *len = 8 + hl + dlen;
    uint8_t *b = malloc(*len);
    for (int k = 0; k < 8; k++) b[k] = (uint8_t)((uint64_t)hl >> (8 * k));
    memcpy(b + 8, h, hl);
    if (dlen) {
        if (data)
            memcpy(b + 8 + hl, data, dlen);
        else
            memset(b + 8 + hl, 0, dlen);
    }
    free(h);
    return b;
}

/* Must fail with LATUP_E_INPUT, a message "t.safetensors: ..." containing `word`, and an empty w. */
static void expect_reject_buf(const uint8_t *b, size_t len, const char *word) {
    latup_weights w;
    latup_status st = latup_safetensors_parse(b, len, PATH, &w);
    const char *msg = latup_last_error();
    if (st != LATUP_E_INPUT || !strstr(msg, word) || strncmp(msg, PATH ": ", strlen(PATH) + 2) != 0) {
        print_error("status %d, message \"%s\"; wanted status %d and \"%s\"\n", st, msg, LATUP_E_INPUT, word);
        if (!st) latup_weights_free(&w);
        fail();
    }
    assert_int_equal(w.n, 0);
    assert_null(w.t);
    assert_null(w.blob);
    assert_null(w.path);
}

static void expect_reject(const char *header_sq, size_t dlen, const char *word) {
    size_t len;
    uint8_t *b = build(header_sq, NULL, dlen, &len);
    expect_reject_buf(b, len, word);
    free(b);
}

static void parse_ok(const uint8_t *b, size_t len, latup_weights *w) {
    latup_status st = latup_safetensors_parse(b, len, PATH, w);
    if (st) print_error("unexpected failure: %s\n", latup_last_error());
    assert_int_equal(st, LATUP_OK);
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- JSON ------------------------------------------------------------------------------------- */

static void json_ok(const char *text, latup_json_doc *doc) {
    latup_status st = latup_json_parse(text, strlen(text), 0, doc);
    if (st) print_error("'%s': %s\n", text, latup_last_error());
    assert_int_equal(st, LATUP_OK);
}

static void json_bad(const char *text, size_t len, const char *word) {
    latup_json_doc doc;
    latup_status st = latup_json_parse(text, len, 0, &doc);
    if (st != LATUP_E_INPUT || !strstr(latup_last_error(), word)) {
        print_error("'%.*s': status %d, message \"%s\", wanted \"%s\"\n", (int)len, text, st,
                    latup_last_error(), word);
        fail();
    }
    assert_null(doc.root);
    assert_null(doc.arena);
}

static void test_json_values(void **state) {
    (void)state;
    latup_json_doc doc;
    json_ok(" {\"a\": [1, -2, 0, 9223372036854775807, -9223372036854775808], \"b\": {\"c\": null},"
            " \"s\": \"x\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\\u20AC\", \"r\": -1.5e3, \"t\": true,"
            " \"f\": false, \"e\": [], \"o\": {}, \"u\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\"} \n",
            &doc);
    const latup_json *r = doc.root;
    assert_int_equal(r->type, LATUP_JSON_OBJECT);
    assert_int_equal(r->u.kids.n, 9);
    const latup_json *a = latup_json_get(r, "a");
    assert_int_equal(a->type, LATUP_JSON_ARRAY);
    assert_int_equal(a->u.kids.n, 5);
    const latup_json *v = a->u.kids.first;
    assert_int_equal(v->u.i, 1);
    assert_int_equal(v->next->u.i, -2);
    assert_int_equal(v->next->next->next->u.i, INT64_MAX);
    assert_true(v->next->next->next->next->u.i == INT64_MIN);
    assert_int_equal(latup_json_get(latup_json_get(r, "b"), "c")->type, LATUP_JSON_NULL);
    const latup_json *s = latup_json_get(r, "s");
    const char want[] = "x\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\xe2\x82\xac";
    assert_int_equal(s->u.str.len, sizeof want - 1);
    assert_memory_equal(s->u.str.s, want, sizeof want);
    assert_int_equal(latup_json_get(r, "r")->type, LATUP_JSON_REAL);
    assert_true(latup_json_get(r, "r")->u.d == -1500.0);
    assert_int_equal(latup_json_get(r, "t")->type, LATUP_JSON_TRUE);
    assert_int_equal(latup_json_get(r, "f")->type, LATUP_JSON_FALSE);
    assert_int_equal(latup_json_get(r, "e")->u.kids.n, 0);
    assert_string_equal(latup_json_get(r, "u")->u.str.s, "caf\xc3\xa9 \xf0\x9f\x98\x80");
    assert_null(latup_json_get(r, "missing"));
    latup_json_free(&doc);

    json_ok("7", &doc); /* any value at the top level */
    assert_int_equal(doc.root->u.i, 7);
    latup_json_free(&doc);

    /* 64 nested arrays is the limit, 65 is an error */
    char deep[200];
    memset(deep, '[', 64);
    memset(deep + 64, ']', 64);
    deep[128] = 0;
    json_ok(deep, &doc);
    latup_json_free(&doc);
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    json_bad(deep, 130, "nesting");
}

static void test_json_errors(void **state) {
    (void)state;
    static const struct {
        const char *text;
        const char *word;
    } cases[] = {
        {"", "end of input"},
        {"   ", "end of input"},
        {"{", "end of input"},
        {"{\"a\"}", "':'"},
        {"{\"a\":}", "a value"},
        {"{\"a\":1,}", "string key"},
        {"[1,]", "a value"},
        {"[1 2]", "',' or ']'"},
        {"{'a':1}", "string key"},
        {"{\"a\":1} x", "end of the input"},
        {"{\"a\":1}{}", "end of the input"},
        {"\"abc", "unterminated"},
        {"\"abc\\\"", "unterminated"},
        {"\"a\tb\"", "control character"},
        {"\"\\x\"", "invalid escape"},
        {"\"\\u12\"", "four hex digits"},
        {"\"\\u12G4\"", "four hex digits"},
        {"\"\\ud800\"", "surrogate"},
        {"\"\\ud800\\u0041\"", "surrogate"},
        {"\"\\udc00\"", "lone low surrogate"},
        {"\"\\u0000\"", "\\u0000"},
        {"01", "leading zeros"},
        {"-", "invalid number"},
        {"-a", "invalid number"},
        {"1.", "after '.'"},
        {".5", "a value"},
        {"1e", "exponent"},
        {"1e+", "exponent"},
        {"+1", "a value"},
        {"9223372036854775808", "int64"},
        {"-9223372036854775809", "int64"},
        {"99999999999999999999999", "int64"},
        {"tru", "a value"},
        {"nul", "a value"},
        {"True", "a value"},
        {"{\"a\":1,\"a\":2}", "duplicate key 'a'"},
        {"{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"c\":10}",
         "duplicate key 'c'"},
        {"\"\xc3\x28\"", "UTF-8"},         /* bad continuation */
        {"\"\xc0\xaf\"", "UTF-8"},         /* overlong '/' */
        {"\"\xe0\x80\xaf\"", "UTF-8"},     /* overlong, 3 bytes */
        {"\"\xed\xa0\x80\"", "UTF-8"},     /* encoded surrogate */
        {"\"\xf4\x90\x80\x80\"", "UTF-8"}, /* past U+10FFFF */
        {"\"\xf5\x80\x80\x80\"", "UTF-8"},
        {"\"\xe2\x82\"", "UTF-8"},       /* truncated sequence */
        {"\"\x80\"", "UTF-8"},           /* lone continuation */
        {"\xef\xbb\xbf{}", "byte 0xEF"}, /* BOM */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        json_bad(cases[k].text, strlen(cases[k].text), cases[k].word);
    /* NUL bytes are never whitespace */
    json_bad("{}\0", 3, "end of the input");
    /* the message carries the byte offset */
    json_bad("[1, 2, x]", 9, "at byte 7");
}

static void test_json_max_values(void **state) {
    (void)state;
    latup_json_doc doc;
    const char *t = "[1,2,3,4]";
    assert_int_equal(latup_json_parse(t, strlen(t), 5, &doc), LATUP_OK);
    latup_json_free(&doc);
    assert_int_equal(latup_json_parse(t, strlen(t), 4, &doc), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "limit"));
    assert_null(doc.arena);
}

/* latup_json_parse_bytes: a lone \udc80..\udcff is its byte (surrogateescape, what the CLI writes
 * for names that are not UTF-8); every other lone surrogate is still an error, and the strict
 * parser still refuses them all. */
static void test_json_surrogateescape(void **state) {
    (void)state;
    const char *t = "[\"x\\udcff\\uDCFE.npy\", \"\\udc80\\u00e9\"]";
    latup_json_doc doc;
    assert_int_equal(latup_json_parse_bytes(t, strlen(t), 0, &doc), LATUP_OK);
    const latup_json *a = doc.root->u.kids.first, *b = a->next;
    assert_int_equal(a->u.str.len, 7);
    assert_memory_equal(a->u.str.s, "x\xff\xfe.npy", 8);
    assert_int_equal(b->u.str.len, 3);
    assert_memory_equal(b->u.str.s, "\x80\xc3\xa9", 4);
    latup_json_free(&doc);
    json_bad(t, strlen(t), "lone low surrogate");
    const char *bad[] = {"\"\\udc7f\"", "\"\\udd00\"", "\"\\udfff\"", "\"\\ud800\"", "\"\\udc00\""};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        assert_int_equal(latup_json_parse_bytes(bad[k], strlen(bad[k]), 0, &doc), LATUP_E_INPUT);
        assert_non_null(strstr(latup_last_error(), "surrogate"));
    }
    const char *pair = "\"\\ud83d\\ude00\""; /* a pair is still one code point */
    assert_int_equal(latup_json_parse_bytes(pair, strlen(pair), 0, &doc), LATUP_OK);
    assert_string_equal(doc.root->u.str.s, "\xf0\x9f\x98\x80");
    latup_json_free(&doc);
}

/* Large input: many chunks and a string bigger than a chunk. */
static void test_json_big(void **state) {
    (void)state;
    size_t n = 200000, cap = n * 12 + (1 << 20);
    char *t = malloc(cap);
    size_t k = 0;
    t[k++] = '[';
    for (size_t i = 0; i < n; i++) k += (size_t)sprintf(t + k, "%zu,", i);
    t[k++] = '"';
    for (int i = 0; i < (1 << 19); i++) t[k++] = 'a' + i % 26;
    t[k++] = '"';
    t[k++] = ']';
    latup_json_doc doc;
    assert_int_equal(latup_json_parse(t, k, 0, &doc), LATUP_OK);
    assert_int_equal(doc.root->u.kids.n, n + 1);
    size_t i = 0;
    const latup_json *v = doc.root->u.kids.first;
    for (; i < n; i++, v = v->next) assert_int_equal(v->u.i, (int64_t)i);
    assert_int_equal(v->u.str.len, 1 << 19);
    latup_json_free(&doc);
    free(t);
}

static void test_json_writer(void **state) {
    (void)state;
    latup_json_buf b = {0};
    const char *s = "q\"b\\n\n\x01\b\f\t\r\x1f caf\xc3\xa9";
    assert_int_equal(latup_json_buf_add_string(&b, s), LATUP_OK);
    /* the escapes Python's json.dumps(ensure_ascii=False) writes, so headers match tools/reference/st_io.py */
    assert_string_equal(b.data, "\"q\\\"b\\\\n\\n\\u0001\\b\\f\\t\\r\\u001f caf\xc3\xa9\"");
    latup_json_doc doc;
    assert_int_equal(latup_json_parse(b.data, b.len, 0, &doc), LATUP_OK);
    assert_string_equal(doc.root->u.str.s, s);
    latup_json_free(&doc);
    assert_int_equal(latup_json_buf_add_string(&b, "bad \xff"), LATUP_E_INPUT);
    latup_json_buf_free(&b);
}

/* ---- safetensors: one test per rejection rule -------------------------------------------------- */

static const char *k_one = "{'w':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}";

static void test_reject_too_short(void **state) {
    (void)state;
    uint8_t b[8] = {2, 0, 0, 0, 0, 0, 0, 0};
    for (size_t len = 0; len < 8; len++) expect_reject_buf(len ? b : NULL, len, "too short");
}

static void test_reject_header_limit(void **state) {
    (void)state;
    uint8_t b[16] = {0};
    uint64_t n = 100000001;
    for (int k = 0; k < 8; k++) b[k] = (uint8_t)(n >> (8 * k));
    expect_reject_buf(b, sizeof b, "exceeds the limit");
    /* exactly the limit is allowed by that rule, then fails on the file size */
    n = 100000000;
    for (int k = 0; k < 8; k++) b[k] = (uint8_t)(n >> (8 * k));
    expect_reject_buf(b, sizeof b, "past the end");
    memset(b, 0xFF, 8); /* 2^64 - 1: no wrap-around in 8 + N */
    expect_reject_buf(b, sizeof b, "exceeds the limit");
}

static void test_reject_header_past_end(void **state) {
    (void)state;
    size_t len;
    uint8_t *b = build(k_one, NULL, 8, &len);
    b[0] = (uint8_t)(len - 8 + 1); /* one byte more than the file holds */
    expect_reject_buf(b, len, "past the end");
    free(b);
}

static void test_reject_not_brace(void **state) {
    (void)state;
    expect_reject(" {}", 0, "start with '{'");
    expect_reject("[]", 0, "start with '{'");
    expect_reject("\n{}", 0, "start with '{'");
    uint8_t b[8] = {0}; /* N = 0 */
    expect_reject_buf(b, 8, "start with '{'");
}

static void test_reject_json(void **state) {
    (void)state;
    expect_reject("{", 0, "invalid JSON");
    expect_reject("{'w':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},}", 8, "invalid JSON");
    expect_reject("{'w':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}} x", 8, "invalid JSON");
    expect_reject("{'w':{'dtype':'F32','shape':[02],'data_offsets':[0,8]}}", 8, "leading zeros");
    expect_reject("{'w':{'dtype':'F32','shape':[2],'data_offsets':[0,99999999999999999999]}}", 8, "int64");
    expect_reject("{} \x01", 0, "invalid JSON");
    /* the message says where: "t.safetensors: header: invalid JSON at byte N" */
    expect_reject("{'w' 1}", 0, "header: invalid JSON at byte 5");
}

static void test_reject_utf8(void **state) {
    (void)state;
    expect_reject("{'w\xc3\x28':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}", 8, "UTF-8");
    expect_reject("{'w\xed\xa0\x80':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}", 8, "UTF-8");
    expect_reject("{'__metadata__':{'k':'\xc0\xaf'}}", 0, "UTF-8");
    expect_reject("{} \xa0", 0, "invalid JSON"); /* non-ASCII outside strings */
}

static void test_reject_unknown_dtype(void **state) {
    (void)state;
    expect_reject("{'conv_first.weight':{'dtype':'F8_E4M3','shape':[2],'data_offsets':[0,2]}}", 2,
                  "tensor 'conv_first.weight': unknown dtype 'F8_E4M3'");
    expect_reject("{'w':{'dtype':'F64','shape':[1],'data_offsets':[0,8]}}", 8, "unknown dtype 'F64'");
    expect_reject("{'w':{'dtype':'f32','shape':[2],'data_offsets':[0,8]}}", 8, "unknown dtype 'f32'");
    expect_reject("{'w':{'dtype':4,'shape':[2],'data_offsets':[0,8]}}", 8, "dtype is an integer");
}

static void test_reject_metadata(void **state) {
    (void)state;
    expect_reject("{'__metadata__':{'a':'x','b':1}}", 0,
                  "__metadata__ value 'b' is an integer, must be a string");
    expect_reject("{'__metadata__':{'a':{'b':'c'}}}", 0, "must be a string");
    expect_reject("{'__metadata__':{'a':null}}", 0, "must be a string");
    expect_reject("{'__metadata__':['a']}", 0, "__metadata__ is an array");
    expect_reject("{'__metadata__':{},'__metadata__':{}}", 0, "duplicate");
}

static void test_reject_duplicate(void **state) {
    (void)state;
    expect_reject("{'w':{'dtype':'F32','shape':[1],'data_offsets':[0,4]},"
                  "'w':{'dtype':'F32','shape':[1],'data_offsets':[4,8]}}",
                  8, "duplicate key 'w'");
    /* many tensors: the sorted duplicate check */
    char h[4096] = "{";
    for (int i = 0; i < 20; i++)
        sprintf(h + strlen(h), "%s't%d':{'dtype':'F32','shape':[1],'data_offsets':[%d,%d]}", i ? "," : "",
                i == 17 ? 3 : i, 4 * i, 4 * i + 4);
    strcat(h, "}");
    expect_reject(h, 80, "duplicate key 't3'");
    /* a duplicate field inside an entry */
    expect_reject("{'w':{'dtype':'F32','dtype':'F32','shape':[1],'data_offsets':[0,4]}}", 4,
                  "duplicate key 'dtype'");
}

static void test_reject_hole(void **state) {
    (void)state;
    expect_reject("{'a':{'dtype':'F32','shape':[1],'data_offsets':[0,4]},"
                  "'b':{'dtype':'F32','shape':[1],'data_offsets':[8,12]}}",
                  12, "hole in the data section: bytes [4,8)");
    expect_reject("{'a':{'dtype':'F32','shape':[1],'data_offsets':[4,8]}}", 8,
                  "hole in the data section: bytes [0,4)");
}

static void test_reject_overlap(void **state) {
    (void)state;
    expect_reject("{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
                  "'b':{'dtype':'F32','shape':[2],'data_offsets':[4,12]}}",
                  12, "tensor 'b' (bytes [4,12)) overlaps tensor 'a'");
    /* two tensors on the same bytes */
    expect_reject("{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
                  "'b':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}",
                  8, "overlaps");
    /* a zero-size tensor inside another one */
    expect_reject("{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
                  "'z':{'dtype':'F32','shape':[0],'data_offsets':[4,4]}}",
                  8, "overlaps");
}

static void test_reject_numel_overflow(void **state) {
    (void)state;
    expect_reject("{'w':{'dtype':'F32','shape':[4294967296,4294967296,4],'data_offsets':[0,8]}}", 8,
                  "element count of shape [4294967296,4294967296,4] overflows");
    /* the element count fits int64 but the byte count does not */
    expect_reject("{'w':{'dtype':'I64','shape':[2305843009213693952],'data_offsets':[0,8]}}", 8, "byte size");
    /* but a zero dimension makes any shape empty, as in the reference reader */
    size_t len;
    uint8_t *b =
        build("{'w':{'dtype':'F32','shape':[0,4294967296,4294967296,4294967296],'data_offsets':[0,0]}}", NULL,
              0, &len);
    latup_weights w;
    assert_int_equal(latup_safetensors_parse(b, len, PATH, &w), LATUP_OK);
    assert_int_equal(w.t[0].numel, 0);
    latup_weights_free(&w);
    free(b);
}

static void test_reject_size_mismatch(void **state) {
    (void)state;
    expect_reject("{'w':{'dtype':'F32','shape':[3],'data_offsets':[0,8]}}", 8,
                  "data_offsets span 8 bytes, expected 12 for shape [3] of F32");
    expect_reject("{'w':{'dtype':'F16','shape':[2,2],'data_offsets':[0,16]}}", 16, "expected 8");
}

static void test_reject_end_of_file(void **state) {
    (void)state;
    expect_reject(k_one, 9, "1 trailing bytes");
    expect_reject(k_one, 7, "truncated: tensors need 8 data bytes, the file has 7");
    expect_reject(k_one, 0, "truncated");
    expect_reject("{}", 1, "trailing");
}

static void test_reject_shape(void **state) {
    (void)state;
    expect_reject("{'w':{'dtype':'F32','shape':[-1],'data_offsets':[0,0]}}", 0, "shape entry 0");
    expect_reject("{'w':{'dtype':'F32','shape':[2,1.0],'data_offsets':[0,8]}}", 8, "shape entry 1");
    expect_reject("{'w':{'dtype':'F32','shape':['2'],'data_offsets':[0,8]}}", 8, "shape entry 0");
    expect_reject("{'w':{'dtype':'F32','shape':[[2]],'data_offsets':[0,8]}}", 8, "shape entry 0");
    expect_reject("{'w':{'dtype':'F32','shape':2,'data_offsets':[0,8]}}", 8, "shape is an integer");
    expect_reject("{'w':{'dtype':'F32','shape':[1,1,1,1,1,1,1,1,1],'data_offsets':[0,4]}}", 4,
                  "rank 9 exceeds the maximum of 8");
}

static void test_reject_offsets(void **state) {
    (void)state;
    expect_reject("{'w':{'dtype':'F32','shape':[2],'data_offsets':[8]}}", 8, "data_offsets must be");
    expect_reject("{'w':{'dtype':'F32','shape':[2],'data_offsets':[0,8,8]}}", 8, "data_offsets must be");
    expect_reject("{'w':{'dtype':'F32','shape':[2],'data_offsets':[-8,0]}}", 8, "data_offsets must be");
    expect_reject("{'w':{'dtype':'F32','shape':[2],'data_offsets':[0,8.0]}}", 8, "data_offsets must be");
    expect_reject("{'w':{'dtype':'F32','shape':[2],'data_offsets':'0,8'}}", 8, "data_offsets must be");
    expect_reject("{'w':{'dtype':'F32','shape':[0],'data_offsets':[8,0]}}", 8, "begin 8 is after end 0");
}

static void test_reject_entry(void **state) {
    (void)state;
    expect_reject("{'w':[1]}", 0, "tensor 'w': entry is an array");
    expect_reject("{'w':{'shape':[2],'data_offsets':[0,8]}}", 8, "missing field 'dtype'");
    expect_reject("{'w':{'dtype':'F32','data_offsets':[0,8]}}", 8, "missing field 'shape'");
    expect_reject("{'w':{'dtype':'F32','shape':[2]}}", 8, "missing field 'data_offsets'");
    expect_reject("{'w':{'dtype':'F32','shape':[2],'data_offsets':[0,8],'x':1}}", 8, "unknown field 'x'");
}

/* ---- safetensors: valid files ----------------------------------------------------------------- */

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void test_all_dtypes(void **state) {
    (void)state;
    /* Offsets deliberately unaligned: f16 (3 x 2 bytes) first puts f32 at 6 and i64 at 14. */
    const char *h = "{'__metadata__':{'format':'pt','seed':'42'},"
                    "'h':{'dtype':'F16','shape':[3],'data_offsets':[0,6]},"
                    "'f':{'dtype':'F32','shape':[2,1],'data_offsets':[6,14]},"
                    "'i':{'dtype':'I64','shape':[2],'data_offsets':[14,30]},"
                    "'b':{'dtype':'BF16','shape':[2],'data_offsets':[30,34]}}";
    uint8_t data[34];
    put16(data + 0, 0x3C00); /* 1 */
    put16(data + 2, 0xC000); /* -2 */
    put16(data + 4, 0x3555); /* 0.33325195 */
    float f[2] = {1.25f, -3e-20f};
    memcpy(data + 6, f, 8);
    int64_t iv[2] = {-1, INT64_MAX};
    memcpy(data + 14, iv, 16);
    put16(data + 30, 0x3F80); /* 1 */
    put16(data + 32, 0xC049); /* -3.140625 */
    size_t len;
    uint8_t *b = build(h, data, sizeof data, &len);
    latup_weights w;
    parse_ok(b, len, &w);
    free(b);
    assert_string_equal(w.path, PATH);
    assert_int_equal(w.n, 4);
    /* header order */
    assert_string_equal(w.t[0].name, "h");
    assert_string_equal(w.t[1].name, "f");
    assert_string_equal(w.t[2].name, "i");
    assert_string_equal(w.t[3].name, "b");
    for (int i = 0; i < 4; i++) {
        const void *p = w.t[i].dtype == LATUP_DT_I64 ? (const void *)w.t[i].i64 : (const void *)w.t[i].f32;
        assert_int_equal((uintptr_t)p % 64, 0);
        assert_true(w.t[i].dtype == LATUP_DT_I64 ? w.t[i].f32 == NULL : w.t[i].i64 == NULL);
    }
    const latup_wtensor *t = latup_weights_find(&w, "h");
    assert_int_equal(t->dtype, LATUP_DT_F16);
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->numel, 3);
    assert_true(t->f32[0] == 1.0f && t->f32[1] == -2.0f && t->f32[2] == 0.333251953125f);
    t = latup_weights_find(&w, "f");
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 1);
    assert_true(t->f32[0] == 1.25f && t->f32[1] == -3e-20f);
    t = latup_weights_find(&w, "i");
    assert_true(t->i64[0] == -1 && t->i64[1] == INT64_MAX);
    t = latup_weights_find(&w, "b");
    assert_int_equal(t->dtype, LATUP_DT_BF16);
    assert_true(t->f32[0] == 1.0f && t->f32[1] == -3.140625f);
    assert_null(latup_weights_find(&w, "nope"));
    assert_int_equal(w.n_meta, 2);
    assert_string_equal(latup_weights_meta(&w, "format"), "pt");
    assert_string_equal(latup_weights_meta(&w, "seed"), "42");
    assert_null(latup_weights_meta(&w, "x"));
    assert_string_equal(latup_dtype_name(LATUP_DT_BF16), "BF16");
    latup_weights_free(&w);
    assert_null(w.t);
    latup_weights_free(&w); /* twice is harmless */
}

static void test_f16_specials(void **state) {
    (void)state;
    static const struct {
        uint16_t h;
        uint32_t f;
    } cases[] = {
        {0x0000, 0x00000000},                       /* +0 */
        {0x8000, 0x80000000},                       /* -0 */
        {0x0001, 0x33800000},                       /* smallest subnormal 2^-24 */
        {0x8001, 0xB3800000}, {0x03FF, 0x387FC000}, /* largest subnormal 1023 * 2^-24 */
        {0x0200, 0x38000000},                       /* 2^-15 */
        {0x0400, 0x38800000},                       /* smallest normal 2^-14 */
        {0x3C00, 0x3F800000},                       /* 1 */
        {0x3C01, 0x3F802000},                       /* 1 + 2^-10 */
        {0x7BFF, 0x477FE000},                       /* 65504, the largest */
        {0x7C00, 0x7F800000},                       /* +inf */
        {0xFC00, 0xFF800000},                       /* -inf */
        {0x7E00, 0x7FC00000},                       /* quiet NaN */
        {0x7C01, 0x7F802000},                       /* signalling NaN payload kept */
        {0xFE00, 0xFFC00000},                       /* negative NaN */
    };
    enum { N = sizeof cases / sizeof cases[0] };
    uint8_t data[2 * N];
    for (int i = 0; i < N; i++) put16(data + 2 * i, cases[i].h);
    char h[128];
    snprintf(h, sizeof h, "{'x':{'dtype':'F16','shape':[%d],'data_offsets':[0,%d]}}", N, 2 * N);
    size_t len;
    uint8_t *b = build(h, data, sizeof data, &len);
    latup_weights w;
    parse_ok(b, len, &w);
    for (int i = 0; i < N; i++) {
        if (fbits(w.t[0].f32[i]) != cases[i].f)
            print_error("half 0x%04X -> 0x%08X, want 0x%08X\n", cases[i].h, fbits(w.t[0].f32[i]), cases[i].f);
        assert_int_equal(fbits(w.t[0].f32[i]), cases[i].f);
    }
    assert_true(isnan(w.t[0].f32[12]) && isinf(w.t[0].f32[10]) && signbit(w.t[0].f32[1]));
    latup_weights_free(&w);
    free(b);

    /* all 63488 finite halves agree with the double arithmetic definition */
    for (uint32_t u = 0; u < 0x10000; u++) {
        uint16_t v = (uint16_t)u;
        int e = (v >> 10) & 31, m = v & 1023;
        if (e == 31) continue;
        double want = e ? ldexp(1.0 + m / 1024.0, e - 15) : ldexp(m, -24);
        if (v & 0x8000) want = -want;
        float got = latup_half_to_float(v);
        if ((double)got != want || !signbit(got) != !(v & 0x8000)) {
            print_error("half 0x%04X -> %g, want %g\n", v, (double)got, want);
            fail();
        }
    }
}

static void test_bf16(void **state) {
    (void)state;
    static const uint16_t in[] = {0x0000, 0x8000, 0x3F80, 0x0001, 0x7F80, 0xFF80, 0x7FC0, 0x4049};
    enum { N = sizeof in / sizeof in[0] };
    uint8_t data[2 * N];
    for (int i = 0; i < N; i++) put16(data + 2 * i, in[i]);
    char h[128];
    snprintf(h, sizeof h, "{'x':{'dtype':'BF16','shape':[2,%d],'data_offsets':[0,%d]}}", N / 2, 2 * N);
    size_t len;
    uint8_t *b = build(h, data, sizeof data, &len);
    latup_weights w;
    parse_ok(b, len, &w);
    for (int i = 0; i < N; i++) assert_int_equal(fbits(w.t[0].f32[i]), (uint32_t)in[i] << 16);
    latup_weights_free(&w);
    free(b);
}

static void test_padding_and_empty(void **state) {
    (void)state;
    latup_weights w;
    size_t len;
    /* trailing spaces (the writers' 8-byte padding) and other JSON whitespace */
    uint8_t *b = build("{'w':{'dtype':'F32','shape':[2],'data_offsets':[0,8]}}       ", NULL, 8, &len);
    parse_ok(b, len, &w);
    assert_int_equal(w.n, 1);
    latup_weights_free(&w);
    free(b);
    b = build("{ 'w' : { 'dtype' : 'F32' , 'shape' : [ 2 ] , 'data_offsets' : [ 0 , 8 ] } }\n\t\r ", NULL, 8,
              &len);
    parse_ok(b, len, &w);
    latup_weights_free(&w);
    free(b);
    /* no tensors at all, with and without metadata */
    b = build("{}", NULL, 0, &len);
    parse_ok(b, len, &w);
    assert_int_equal(w.n, 0);
    assert_int_equal(w.n_storage, 0);
    latup_weights_free(&w);
    free(b);
    b = build("{'__metadata__':{}}", NULL, 0, &len);
    parse_ok(b, len, &w);
    assert_int_equal(w.n, 0);
    assert_int_equal(w.n_meta, 0);
    latup_weights_free(&w);
    free(b);
    b = build("{'__metadata__':null}", NULL, 0, &len);
    parse_ok(b, len, &w);
    assert_int_equal(w.n_meta, 0);
    latup_weights_free(&w);
    free(b);
}

static void test_zero_size_and_scalar(void **state) {
    (void)state;
    const char *h = "{'e1':{'dtype':'F32','shape':[0,3],'data_offsets':[0,0]},"
                    "'s':{'dtype':'F32','shape':[],'data_offsets':[0,4]},"
                    "'e2':{'dtype':'I64','shape':[5,0],'data_offsets':[4,4]},"
                    "'e3':{'dtype':'F16','shape':[0],'data_offsets':[4,4]},"
                    "'v':{'dtype':'F16','shape':[1],'data_offsets':[4,6]}}";
    uint8_t data[6];
    float s = 7.5f;
    memcpy(data, &s, 4);
    put16(data + 4, 0x3C00);
    size_t len;
    uint8_t *b = build(h, data, sizeof data, &len);
    latup_weights w;
    parse_ok(b, len, &w);
    assert_int_equal(w.n, 5);
    const latup_wtensor *t = latup_weights_find(&w, "s");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    assert_true(t->f32[0] == 7.5f);
    assert_int_equal(latup_weights_find(&w, "e1")->numel, 0);
    assert_int_equal(latup_weights_find(&w, "e2")->numel, 0);
    assert_true(latup_weights_find(&w, "v")->f32[0] == 1.0f);
    latup_weights_free(&w);
    free(b);
}

static void test_weights_get(void **state) {
    (void)state;
    const char *h = "{'conv.weight':{'dtype':'F32','shape':[2,1,1,1],'data_offsets':[0,8]},"
                    "'idx':{'dtype':'I64','shape':[1],'data_offsets':[8,16]}}";
    size_t len;
    uint8_t *b = build(h, NULL, 16, &len);
    latup_weights w;
    parse_ok(b, len, &w);
    free(b);
    const float *p;
    int64_t good[4] = {2, 1, 1, 1}, bad[4] = {360, 16, 3, 3};
    assert_int_equal(latup_weights_get(&w, "conv.weight", 4, good, &p), LATUP_OK);
    assert_ptr_equal(p, w.t[0].f32);
    assert_int_equal(latup_weights_get(&w, "conv.weight", 4, bad, &p), LATUP_E_INPUT);
    assert_null(p);
    assert_string_equal(latup_last_error(),
                        PATH ": tensor 'conv.weight' has shape [2,1,1,1], expected [360,16,3,3]");
    assert_int_equal(latup_weights_get(&w, "conv.weight", 3, good, &p), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "expected [2,1,1]"));
    assert_int_equal(latup_weights_get(&w, "conv_first.weight", 4, bad, &p), LATUP_E_INPUT);
    assert_string_equal(latup_last_error(),
                        PATH ": missing tensor 'conv_first.weight' (expected [360,16,3,3])");
    assert_int_equal(latup_weights_get(&w, "idx", 1, good, &p), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "tensor 'idx' is I64, expected a float tensor"));
    latup_weights_free(&w);
}

/* ---- write, load, gzip ------------------------------------------------------------------------ */

/* A small table with every case the writer handles: F32, I64, an F16-sourced tensor (written as
 * F32), a scalar, an empty tensor, a name that needs escaping, and metadata. */
typedef struct {
    float a[6], h[2], s[1];
    int64_t i[3];
    latup_wtensor t[5];
    char *mk[2], *mv[2];
    latup_weights w;
} sample;

static void make_sample(sample *x) {
    memset(x, 0, sizeof *x);
    for (int k = 0; k < 6; k++) x->a[k] = (float)k * 0.5f - 1.0f;
    x->h[0] = 65504.0f;
    x->h[1] = -0.0f;
    x->s[0] = 3.0f;
    x->i[0] = -5;
    x->i[1] = 0;
    x->i[2] = INT64_MIN;
    x->t[0] =
        (latup_wtensor){.name = "layers.0.w", .dtype = LATUP_DT_F32, .ndim = 2, .shape = {2, 3}, .f32 = x->a};
    x->t[1] = (latup_wtensor){
        .name = "rel \"idx\"\\\n\xc3\xa9", .dtype = LATUP_DT_I64, .ndim = 1, .shape = {3}, .i64 = x->i};
    x->t[2] = (latup_wtensor){.name = "half", .dtype = LATUP_DT_F16, .ndim = 1, .shape = {2}, .f32 = x->h};
    x->t[3] = (latup_wtensor){.name = "scalar", .dtype = LATUP_DT_F32, .ndim = 0, .f32 = x->s};
    x->t[4] = (latup_wtensor){.name = "empty", .dtype = LATUP_DT_F32, .ndim = 3, .shape = {4, 0, 2}};
    x->mk[0] = "config";
    x->mv[0] = "{\"embed_dim\": 16}";
    x->mk[1] = "tool";
    x->mv[1] = "latup test";
    x->w = (latup_weights){.n = 5, .t = x->t, .n_meta = 2, .meta_key = x->mk, .meta_val = x->mv};
}

static void check_sample(const latup_weights *w) {
    assert_int_equal(w->n, 5);
    assert_string_equal(w->t[1].name, "rel \"idx\"\\\n\xc3\xa9");
    const latup_wtensor *t = latup_weights_find(w, "layers.0.w");
    assert_int_equal(t->dtype, LATUP_DT_F32);
    assert_int_equal(t->ndim, 2);
    for (int k = 0; k < 6; k++) assert_true(t->f32[k] == (float)k * 0.5f - 1.0f);
    t = &w->t[1];
    assert_int_equal(t->dtype, LATUP_DT_I64);
    assert_true(t->i64[0] == -5 && t->i64[1] == 0 && t->i64[2] == INT64_MIN);
    t = latup_weights_find(w, "half");
    assert_int_equal(t->dtype, LATUP_DT_F32);
    assert_true(t->f32[0] == 65504.0f && fbits(t->f32[1]) == 0x80000000u);
    t = latup_weights_find(w, "scalar");
    assert_int_equal(t->ndim, 0);
    assert_true(t->f32[0] == 3.0f);
    t = latup_weights_find(w, "empty");
    assert_int_equal(t->ndim, 3);
    assert_int_equal(t->numel, 0);
    assert_string_equal(latup_weights_meta(w, "config"), "{\"embed_dim\": 16}");
    assert_string_equal(latup_weights_meta(w, "tool"), "latup test");
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len ? *len : 1);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void test_write_roundtrip(void **state) {
    (void)state;
    sample x;
    make_sample(&x);
    const char *p = tmp_path("rt.safetensors");
    assert_int_equal(latup_safetensors_write(p, &x.w), LATUP_OK);
    size_t len;
    uint8_t *b = slurp(p, &len);
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--) n = n << 8 | b[k];
    assert_int_equal(n % 8, 0);
    assert_int_equal(b[8], '{');
    /* data: 24 + 24 + 8 + 4 + 0 bytes */
    assert_int_equal(len, 8 + n + 60);
    free(b);
    latup_weights w;
    assert_int_equal(latup_safetensors_load(p, &w), LATUP_OK);
    check_sample(&w);
    assert_string_equal(w.path, p);
    latup_weights_free(&w);

    /* writing over an existing file replaces it */
    x.a[0] = 42.0f;
    assert_int_equal(latup_safetensors_write(p, &x.w), LATUP_OK);
    assert_int_equal(latup_safetensors_load(p, &w), LATUP_OK);
    assert_true(w.t[0].f32[0] == 42.0f);
    latup_weights_free(&w);
}

static void test_write_rejects(void **state) {
    (void)state;
    sample x;
    make_sample(&x);
    x.t[2].name = "layers.0.w";
    assert_int_equal(latup_safetensors_write(tmp_path("dup.safetensors"), &x.w), LATUP_E_INTERNAL);
    assert_non_null(strstr(latup_last_error(), "duplicate tensor name 'layers.0.w'"));
    assert_int_equal(access(tmp_path("dup.safetensors"), F_OK), -1);
    make_sample(&x);
    x.t[0].f32 = NULL;
    assert_int_equal(latup_safetensors_write(tmp_path("null.safetensors"), &x.w), LATUP_E_INTERNAL);
    make_sample(&x);
    x.t[0].name = "bad \xff utf8";
    assert_int_equal(latup_safetensors_write(tmp_path("utf.safetensors"), &x.w), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "UTF-8"));
    assert_int_equal(access(tmp_path("utf.safetensors"), F_OK), -1);
    make_sample(&x);
    assert_int_equal(latup_safetensors_write("/nonexistent-dir-latup/x.safetensors", &x.w), LATUP_E_IO);
    assert_non_null(strstr(latup_last_error(), "/nonexistent-dir-latup/x.safetensors"));
}

static void gzip_file(const char *src, const char *dst, size_t keep) {
    size_t len;
    uint8_t *b = slurp(src, &len);
    gzFile g = gzopen(dst, "wb9");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, b, (unsigned)len), (int)len);
    assert_int_equal(gzclose(g), Z_OK);
    free(b);
    if (keep) assert_int_equal(truncate(dst, (off_t)keep), 0);
}

static void test_gzip(void **state) {
    (void)state;
    sample x;
    make_sample(&x);
    const char *p = tmp_path("gz.safetensors");
    char raw[256], gz[300];
    snprintf(raw, sizeof raw, "%s", p);
    snprintf(gz, sizeof gz, "%s.gz", raw);
    assert_int_equal(latup_safetensors_write(raw, &x.w), LATUP_OK);
    gzip_file(raw, gz, 0);
    latup_weights w;
    assert_int_equal(latup_safetensors_load(gz, &w), LATUP_OK);
    check_sample(&w);
    latup_weights_free(&w);
    /* a cut gzip stream is an error, not a short file */
    size_t len;
    free(slurp(gz, &len));
    gzip_file(raw, gz, len - 10);
    assert_int_equal(latup_safetensors_load(gz, &w), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "gzip"));
    assert_int_equal(latup_safetensors_load(tmp_path("missing.safetensors"), &w), LATUP_E_IO);
    assert_non_null(strstr(latup_last_error(), "missing.safetensors: cannot open: No such file"));
}

/* Committed files written by tools/reference/st_io.py (F32/I64): load -> write must give the same bytes,
 * which pins down the header layout (key order, compact JSON, escapes, padding). */
static void test_reference_files(void **state) {
    (void)state;
    static const char *files[] = {"ref_data/small/golden_pad.safetensors",
                                  "ref_data/wide/golden_pad.safetensors"};
    int found = 0;
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        assert_int_equal(access(files[k], R_OK), 0); /* committed: absence is a failure */
        found++;
        latup_weights w;
        latup_status st = latup_safetensors_load(files[k], &w);
        if (st) print_error("%s\n", latup_last_error());
        assert_int_equal(st, LATUP_OK);
        bool narrow = false; /* F16/BF16 would be written back as F32 */
        for (int i = 0; i < w.n; i++) narrow |= w.t[i].dtype == LATUP_DT_F16 || w.t[i].dtype == LATUP_DT_BF16;
        const char *out = tmp_path("ref.safetensors");
        assert_int_equal(latup_safetensors_write(out, &w), LATUP_OK);
        latup_weights_free(&w);
        if (narrow) continue;
        size_t la, lb;
        uint8_t *a = slurp(files[k], &la), *b = slurp(out, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la);
        free(a);
        free(b);
    }
    assert_int_equal(found, 2);
}

/* Every strict prefix of a valid file must be rejected cleanly; the copies are exactly sized so
 * ASan catches any read past the end. */
static void test_truncation_sweep(void **state) {
    (void)state;
    sample x;
    make_sample(&x);
    const char *p = tmp_path("sweep.safetensors");
    assert_int_equal(latup_safetensors_write(p, &x.w), LATUP_OK);
    size_t len;
    uint8_t *full = slurp(p, &len);
    for (size_t n = 0; n < len; n++) {
        uint8_t *b = malloc(n ? n : 1);
        memcpy(b, full, n);
        latup_weights w;
        latup_status st = latup_safetensors_parse(n ? b : NULL, n, PATH, &w);
        if (st != LATUP_E_INPUT) {
            print_error("prefix of %zu bytes: status %d (%s)\n", n, st, latup_last_error());
            fail();
        }
        assert_null(w.t);
        free(b);
    }
    latup_weights w;
    parse_ok(full, len, &w);
    check_sample(&w);
    latup_weights_free(&w);
    free(full);
}

/* Each byte replaced by a few troublesome values: any outcome but a crash or leak is fine. */
static void test_byte_flip_fuzz(void **state) {
    (void)state;
    sample x;
    make_sample(&x);
    const char *p = tmp_path("fuzz.safetensors");
    assert_int_equal(latup_safetensors_write(p, &x.w), LATUP_OK);
    size_t len;
    uint8_t *full = slurp(p, &len);
    static const uint8_t vals[] = {0x00, 0xFF, '"', '{', '[', '9', '-', ',', '\\', 0x80};
    int ok = 0;
    for (size_t i = 0; i < len; i++)
        for (size_t v = 0; v < sizeof vals; v++) {
            uint8_t *b = malloc(len);
            memcpy(b, full, len);
            b[i] = vals[v];
            latup_weights w;
            latup_status st = latup_safetensors_parse(b, len, PATH, &w);
            assert_true(st == LATUP_OK || st == LATUP_E_INPUT);
            if (st == LATUP_OK) {
                ok++;
                latup_weights_free(&w);
            }
            free(b);
        }
    assert_true(ok > 0); /* data-section flips still parse */
    free(full);
}

/* ---- behaviours pinned at their edges (issue 9) ------------------------------------------------ */

/* Duplicate keys are refused in objects of every size, wherever the pair sits (small objects are
 * checked pair by pair, bigger ones by sorting: both paths). */
static void test_json_duplicates_every_size(void **state) {
    (void)state;
    int checked = 0;
    for (int n = 2; n <= 40; n++)
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) {
                if (n > 12 && !(i == 0 || j == n - 1 || j == i + 1)) continue; /* edges and neighbours */
                char text[1024];
                size_t k = 0;
                k += (size_t)snprintf(text + k, sizeof text - k, "{");
                for (int m = 0; m < n; m++)
                    k += (size_t)snprintf(text + k, sizeof text - k, "%s\"k%d\":%d", m ? "," : "", m == j ? i : m, m);
                k += (size_t)snprintf(text + k, sizeof text - k, "}");
                char want[32];
                snprintf(want, sizeof want, "duplicate key 'k%d'", i);
                json_bad(text, k, want);
                /* the same object nested inside another */
                char nested[1100];
                int nk = snprintf(nested, sizeof nested, "{\"outer\":[%s]}", text);
                json_bad(nested, (size_t)nk, want);
                checked++;
            }
    /* and without the duplicate, every size parses */
    for (int n = 1; n <= 40; n++) {
        char text[1024];
        size_t k = (size_t)snprintf(text, sizeof text, "{");
        for (int m = 0; m < n; m++) k += (size_t)snprintf(text + k, sizeof text - k, "%s\"k%d\":%d", m ? "," : "", m, m);
        snprintf(text + k, sizeof text - k, "}");
        latup_json_doc doc;
        json_ok(text, &doc);
        latup_json_free(&doc);
    }
    printf("  %d objects with one duplicate key (2 to 40 keys), each refused\n", checked);
}

/* The stream sizer asks for the whole header before it parses it: for every prefix shorter than
 * 8 + header length, "call again at 8 + header length". */
static void test_sizer_waits_for_header(void **state) {
    (void)state;
    const char *hdr = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    const size_t hl = strlen(hdr);
    uint8_t f[256] = {0};
    for (int k = 0; k < 8; k++) f[k] = (uint8_t)(hl >> (8 * k));
    memcpy(f + 8, hdr, hl);
    for (size_t n = 8; n < 8 + hl; n++) {
        latup_size sz = {0};
        assert_int_equal(latup_safetensors_format.size(f, n, 0, "s", &sz), LATUP_OK);
        if (sz.known || sz.need != 8 + hl) printf("  prefix %zu: known %d need %llu\n", n, sz.known, (unsigned long long)sz.need);
        assert_int_equal(sz.known, 0);
        assert_int_equal(sz.need, 8 + hl);
    }
    latup_size sz = {0};
    assert_int_equal(latup_safetensors_format.size(f, 8 + hl, 0, "s", &sz), LATUP_OK);
    assert_int_equal(sz.known, 1);
    assert_int_equal(sz.total, 8 + hl + 4);
}

/* Real numbers read exactly as written, a short one after a long one too (each is parsed from its
 * own terminated copy). */
static void test_json_reals(void **state) {
    (void)state;
    const char *text = "{\"a\": 1.2345678901, \"b\": 2.5, \"c\": [-0.125e1, 7.75, 3e2, 1.2345678901e-3, 0.5]}";
    const double want[] = {1.2345678901, 2.5, -1.25, 7.75, 300.0, 1.2345678901e-3, 0.5};
    latup_json_doc doc;
    assert_int_equal(latup_json_parse(text, strlen(text), 0, &doc), LATUP_OK);
    int k = 0;
    for (const latup_json *v = doc.root->u.kids.first; v; v = v->next) {
        const latup_json *e = v->type == LATUP_JSON_ARRAY ? v->u.kids.first : v;
        for (; e; e = v->type == LATUP_JSON_ARRAY ? e->next : NULL) {
            assert_int_equal(e->type, LATUP_JSON_REAL);
            printf("  %s: %.12g (want %.12g)\n", v->key, e->u.d, want[k]);
            assert_true(e->u.d == want[k]);
            k++;
        }
    }
    assert_int_equal(k, 7);
    latup_json_free(&doc);
}

/* LATUP_JSON_MAX_DEPTH nested containers parse, one more is refused; the value cap likewise. */
static void test_json_limits_at_edges(void **state) {
    (void)state;
    char text[300];
    for (int extra = 0; extra < 2; extra++) {
        const int depth = LATUP_JSON_MAX_DEPTH + extra; /* [[[...[1]...]]] */
        int k = 0;
        for (int i = 0; i < depth; i++) text[k++] = '[';
        text[k++] = '1';
        for (int i = 0; i < depth; i++) text[k++] = ']';
        latup_json_doc doc;
        latup_status st = latup_json_parse(text, (size_t)k, 0, &doc);
        printf("  depth %d: %s\n", depth, st ? latup_last_error() : "parsed");
        if (extra) {
            assert_int_equal(st, LATUP_E_INPUT);
            assert_non_null(strstr(latup_last_error(), "nesting deeper than 64 levels, the limit that bounds"));
        } else {
            assert_int_equal(st, LATUP_OK);
            latup_json_free(&doc);
        }
    }
    /* the value cap at N and N + 1 (the header's cap, ST_MAX_JSON_VALUES, uses the same check) */
    for (size_t n = 998; n <= 1001; n++) {
        char *t = malloc(4 * n + 8);
        size_t k = 0;
        t[k++] = '[';
        for (size_t i = 0; i + 1 < n; i++) k += (size_t)sprintf(t + k, i ? ",0" : "0");
        t[k++] = ']';
        latup_json_doc doc;
        latup_status st = latup_json_parse(t, k, 1000, &doc);
        assert_int_equal(st, n <= 1000 ? LATUP_OK : LATUP_E_INPUT);
        if (st) assert_non_null(strstr(latup_last_error(), "more than 1000 values, the cap that bounds the parse tree"));
        else latup_json_free(&doc);
        free(t);
    }
}

/* The header length at ST_MAX_HEADER (10^8 bytes: "{}" and spaces) loads; one more is refused
 * before anything is read. */
static void test_header_limit_at_edge(void **state) {
    (void)state;
    const size_t n = 100000000;
    uint8_t *b = malloc(8 + n + 1);
    for (int extra = 0; extra < 2; extra++) {
        const uint64_t hl = n + (uint64_t)extra;
        for (int k = 0; k < 8; k++) b[k] = (uint8_t)(hl >> (8 * k));
        memset(b + 8, ' ', hl);
        b[8] = '{', b[9] = '}';
        latup_weights w;
        latup_status st = latup_safetensors_parse(b, 8 + hl, PATH, &w);
        printf("  header of %llu bytes: %s\n", (unsigned long long)hl, st ? latup_last_error() : "loaded");
        if (extra) {
            assert_int_equal(st, LATUP_E_INPUT);
            assert_non_null(strstr(latup_last_error(), "exceeds the limit of 100000000 bytes that bounds the header"));
        } else {
            assert_int_equal(st, LATUP_OK);
            assert_int_equal(w.n, 0);
            latup_weights_free(&w);
        }
    }
    free(b);
}

/* Lazy loading: the table is complete at load, each tensor's data arrives when fetched. A mapped
 * file's aligned F32 data is used in place; F16 is converted into memory of its own. */
static void test_lazy_load(void **state) {
    (void)state;
    const char *h = "{'f':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},"
                    "'h':{'dtype':'F16','shape':[2],'data_offsets':[8,12]},"
                    "'i':{'dtype':'I64','shape':[1],'data_offsets':[16,24]},"
                    "'p':{'dtype':'F32','shape':[],'data_offsets':[12,16]}}";
    uint8_t data[24] = {0};
    const float f[2] = {1.5f, -2.0f}, pf = 3.0f;
    const int64_t iv = -7;
    memcpy(data, f, 8), put16(data + 8, 0x3C00), put16(data + 10, 0xC000), memcpy(data + 12, &pf, 4);
    memcpy(data + 16, &iv, 8);
    size_t len;
    uint8_t *b = build(h, data, sizeof data, &len);
    /* pad the header so the data starts 8-byte aligned, as writers do */
    size_t hl = len - 8 - sizeof data, pad = (8 - (8 + hl) % 8) % 8;
    uint8_t *b2 = malloc(len + pad);
    memcpy(b2, b, 8 + hl), memset(b2 + 8 + hl, ' ', pad), memcpy(b2 + 8 + hl + pad, data, sizeof data);
    for (int k = 0; k < 8; k++) b2[k] = (uint8_t)((uint64_t)(hl + pad) >> (8 * k));
    const char *p = tmp_path("lazy.safetensors");
    FILE *fp = fopen(p, "wb");
    assert_int_equal(fwrite(b2, 1, len + pad, fp), len + pad);
    fclose(fp);
    free(b), free(b2);

    latup_weights w;
    assert_int_equal(latup_weights_load(p, &w), LATUP_OK);
    assert_int_equal(w.n, 4);
    for (int i = 0; i < w.n; i++) assert_true(w.t[i].f32 == NULL && w.t[i].i64 == NULL);
    assert_non_null(w.src);
    assert_true(w.src->mapped);
    latup_wtensor *tf = (latup_wtensor *)latup_weights_find(&w, "f"), *th = (latup_wtensor *)latup_weights_find(&w, "h");
    latup_wtensor *ti = (latup_wtensor *)latup_weights_find(&w, "i");
    assert_int_equal(latup_weights_fetch(&w, tf), LATUP_OK);
    assert_true(tf->f32[0] == 1.5f && tf->f32[1] == -2.0f);
    const uint8_t *m0 = w.src->data, *m1 = m0 + w.src->len;
    assert_true((const uint8_t *)tf->f32 >= m0 && (const uint8_t *)tf->f32 < m1); /* in place */
    assert_null(th->f32);                                                       /* not touched yet */
    assert_int_equal(latup_weights_fetch(&w, th), LATUP_OK);
    assert_true(th->f32[0] == 1.0f && th->f32[1] == -2.0f);
    assert_true((const uint8_t *)th->f32 < m0 || (const uint8_t *)th->f32 >= m1); /* a converted copy */
    assert_int_equal(latup_weights_fetch(&w, ti), LATUP_OK);
    assert_true(ti->i64[0] == -7);
    latup_weights_release_source(&w); /* views point into the mapping: it stays */
    assert_non_null(w.src);
    assert_true(tf->f32[1] == -2.0f);
    latup_weights_free(&w);

    /* gzip'd: read into memory; after release, fetched copies stay and the rest cannot be fetched */
    char gz[300];
    snprintf(gz, sizeof gz, "%s.gz", p);
    gzip_file(p, gz, 0);
    assert_int_equal(latup_weights_load(gz, &w), LATUP_OK);
    assert_false(w.src->mapped);
    tf = (latup_wtensor *)latup_weights_find(&w, "f"), th = (latup_wtensor *)latup_weights_find(&w, "h");
    assert_int_equal(latup_weights_fetch(&w, tf), LATUP_OK);
    latup_weights_release_source(&w);
    assert_null(w.src);
    assert_true(tf->f32[0] == 1.5f);
    assert_int_equal(latup_weights_fetch(&w, th), LATUP_E_INTERNAL);
    assert_non_null(strstr(latup_last_error(), "tensor 'h' was not loaded before its file was released"));
    latup_weights_free(&w);
}

/* A stream (gzip here) is read exactly as far as its header says: one byte more is an error
 * before anything past it is inflated; one byte less is a truncated file. */
static void test_stream_sized_by_header(void **state) {
    (void)state;
    sample x;
    make_sample(&x);
    const char *raw = tmp_path("s.safetensors");
    assert_int_equal(latup_safetensors_write(raw, &x.w), LATUP_OK);
    size_t len;
    uint8_t *b = slurp(raw, &len);
    for (int extra = -1; extra <= 1; extra++) {
        char gz[300];
        snprintf(gz, sizeof gz, "%s.%d.gz", raw, extra + 1);
        gzFile g = gzopen(gz, "wb6");
        gzwrite(g, b, (unsigned)(len + (extra < 0 ? -1 : 0)));
        if (extra > 0) gzwrite(g, "x", 1);
        gzclose(g);
        latup_weights w;
        latup_status st = latup_weights_load(gz, &w);
        printf("  %+d byte: %s\n", extra, st ? latup_last_error() : "loaded");
        if (extra == 0) {
            assert_int_equal(st, LATUP_OK);
            latup_weights_free(&w);
        } else {
            assert_int_equal(st, LATUP_E_INPUT);
            char want[96];
            snprintf(want, sizeof want, extra > 0 ? "inflates past the %zu bytes its header describes" : "truncated", len);
            assert_non_null(strstr(latup_last_error(), want));
        }
    }
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_values),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_json_max_values),
        cmocka_unit_test(test_json_surrogateescape),
        cmocka_unit_test(test_json_big),
        cmocka_unit_test(test_json_writer),
        cmocka_unit_test(test_reject_too_short),
        cmocka_unit_test(test_reject_header_limit),
        cmocka_unit_test(test_reject_header_past_end),
        cmocka_unit_test(test_reject_not_brace),
        cmocka_unit_test(test_reject_json),
        cmocka_unit_test(test_reject_utf8),
        cmocka_unit_test(test_reject_unknown_dtype),
        cmocka_unit_test(test_reject_metadata),
        cmocka_unit_test(test_reject_duplicate),
        cmocka_unit_test(test_reject_hole),
        cmocka_unit_test(test_reject_overlap),
        cmocka_unit_test(test_reject_numel_overflow),
        cmocka_unit_test(test_reject_size_mismatch),
        cmocka_unit_test(test_reject_end_of_file),
        cmocka_unit_test(test_reject_shape),
        cmocka_unit_test(test_reject_offsets),
        cmocka_unit_test(test_reject_entry),
        cmocka_unit_test(test_all_dtypes),
        cmocka_unit_test(test_f16_specials),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_padding_and_empty),
        cmocka_unit_test(test_zero_size_and_scalar),
        cmocka_unit_test(test_weights_get),
        cmocka_unit_test(test_write_roundtrip),
        cmocka_unit_test(test_write_rejects),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_reference_files),
        cmocka_unit_test(test_truncation_sweep),
        cmocka_unit_test(test_byte_flip_fuzz),
        cmocka_unit_test(test_json_duplicates_every_size),
        cmocka_unit_test(test_json_limits_at_edges), cmocka_unit_test(test_json_reals), cmocka_unit_test(test_sizer_waits_for_header),
        cmocka_unit_test(test_header_limit_at_edge),
        cmocka_unit_test(test_lazy_load),
        cmocka_unit_test(test_stream_sized_by_header),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
