/* test_npy.c — .npy reading and writing: round trips (byte-identical to numpy.save where a numpy
 * file is committed), '<f2' input, v2/v3 headers, and every rejection: Fortran order, big-endian,
 * other dtypes, rank 0 and 5, shape overflow, truncated or trailing data, bad magic/version, and a
 * header prefix sweep. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "common.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>




static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
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

/* magic, version major.0, header length (u16 for v1, u32 after), the dict as given, the data. */
static uint8_t *build(int major, const char *dict, const void *data, size_t dlen, size_t *len) {
    size_t hl = strlen(dict), pre = major == 1 ? 10 : 12;
    *len = pre + hl + dlen;
    uint8_t *b = calloc(1, *len);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    for (size_t k = 0; k < pre - 8; k++) b[8 + k] = (uint8_t)(hl >> (8 * k));
    memcpy(b + pre, dict, hl);
    if (data) memcpy(b + pre + hl, data, dlen);
    return b;
}

static const char *put(const char *name, int major, const char *dict, const void *data, size_t dlen) {
    size_t len;
    uint8_t *b = build(major, dict, data, dlen, &len);
    const char *p = tmp_path(name);
    write_bytes(p, b, len);
    free(b);
    return p;
}

static void expect_reject(const char *path, const char *word) {
    latup_tensor t;
    latup_status st = latup_npy_read(path, &t);
    const char *msg = latup_last_error();
    if (st != LATUP_E_INPUT || !strstr(msg, word) || strncmp(msg, path, strlen(path)) != 0) {
        print_error("status %d, message \"%s\"; wanted \"%s\"\n", st, msg, word);
        if (!st) latup_tensor_free(&t);
        fail();
    }
    assert_null(t.data);
    assert_int_equal(t.ndim, 0);
}

static void read_ok(const char *path, latup_tensor *t) {
    latup_status st = latup_npy_read(path, t);
    if (st) print_error("%s\n", latup_last_error());
    assert_int_equal(st, LATUP_OK);
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- round trips ------------------------------------------------------------------------------ */

static void roundtrip(int ndim, const int64_t *shape) {
    latup_tensor t, u;
    assert_int_equal(latup_tensor_alloc(&t, ndim, shape), LATUP_OK);
    int64_t n = latup_tensor_numel(&t);
    for (int64_t i = 0; i < n; i++) t.data[i] = (float)i * 0.37f - 5.0f;
    if (n > 2) {
        /* the writer stores values as they are; NaN policy belongs to the CLI */
        t.data[1] = NAN;
        t.data[2] = -INFINITY;
    }
    const char *p = tmp_path("rt.npy");
    assert_int_equal(latup_npy_write(p, &t), LATUP_OK);

    size_t len;
    uint8_t *b = slurp(p, &len);
    assert_memory_equal(b, "\x93NUMPY\x01\x00", 8);
    size_t hl = (size_t)b[8] | (size_t)b[9] << 8;
    assert_int_equal((10 + hl) % 64, 0);
    assert_int_equal(b[10 + hl - 1], '\n');
    const char *lead = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
    assert_memory_equal(b + 10, lead, strlen(lead));
    assert_int_equal(len, 10 + hl + (size_t)n * 4);
    free(b);

    read_ok(p, &u);
    assert_int_equal(u.ndim, ndim);
    for (int d = 0; d < ndim; d++) assert_int_equal(u.shape[d], shape[d]);
    for (int64_t i = 0; i < n; i++) assert_int_equal(fbits(u.data[i]), fbits(t.data[i]));
    latup_tensor_free(&t);
    latup_tensor_free(&u);
}

static void test_roundtrip(void **state) {
    (void)state;
    int64_t s4[4] = {2, 3, 4, 5}, s3[3] = {16, 24, 40}, s1[1] = {5}, s2[2] = {1, 1}, sz[3] = {4, 0, 3};
    roundtrip(4, s4);
    roundtrip(3, s3);
    roundtrip(1, s1);
    roundtrip(2, s2);
    roundtrip(3, sz);
    /* numpy's spelling of a 1-tuple */
    latup_tensor t;
    assert_int_equal(latup_tensor_alloc(&t, 1, s1), LATUP_OK);
    assert_int_equal(latup_npy_write(tmp_path("one.npy"), &t), LATUP_OK);
    size_t len;
    uint8_t *b = slurp(tmp_path("one.npy"), &len);
    assert_non_null(strstr((const char *)b + 10, "'shape': (5,), }"));
    free(b);
    latup_tensor_free(&t);
}

/* ref_data/demo/latent.npy was written by numpy.save: our writer must reproduce it byte for byte. */
static void test_numpy_identical(void **state) {
    (void)state;
    const char *ref = "ref_data/demo/latent.npy";
    assert_int_equal(access(ref, R_OK), 0); /* committed: its absence is a failure */
    latup_tensor t;
    read_ok(ref, &t);
    assert_int_equal(latup_npy_write(tmp_path("same.npy"), &t), LATUP_OK);
    size_t la, lb;
    uint8_t *a = slurp(ref, &la), *b = slurp(tmp_path("same.npy"), &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    latup_tensor_free(&t);
}

static void test_f2(void **state) {
    (void)state;
    const uint16_t h[6] = {0x3C00, 0x8000, 0x0001, 0x7BFF, 0xFC00, 0x7E00};
    const uint32_t want[6] = {0x3F800000, 0x80000000, 0x33800000, 0x477FE000, 0xFF800000, 0x7FC00000};
    const char *p =
        put("f2.npy", 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }   \n", h, sizeof h);
    latup_tensor t;
    read_ok(p, &t);
    assert_int_equal(t.ndim, 2);
    assert_int_equal(t.shape[0], 2);
    assert_int_equal(t.shape[1], 3);
    for (int i = 0; i < 6; i++) assert_int_equal(fbits(t.data[i]), want[i]);
    latup_tensor_free(&t);
}

/* float64 and bfloat16 as numpy (with ml_dtypes) writes them: tests/data/npy/make_fixtures.py.
 * The expected bits are numpy's own astype(float32) of the same arrays. */
static void test_f8_bf16_from_numpy(void **state) {
    (void)state;
    static const struct {
        const char *file;
        uint32_t want[8];
    } cases[] = {
        {"tests/data/npy/f8_numpy.npy",
         {1065353216u, 3223322624u, 1036831949u, 2139095039u, 1u, 2147483648u, 1199562752u, 981668463u}},
        {"tests/data/npy/bf16_ml_dtypes.npy",
         {1065353216u, 3223322624u, 1036845056u, 2139095040u, 0u, 2147483648u, 1199570944u, 981663744u}},
    };
    for (int k = 0; k < 2; k++) {
        latup_tensor t;
        read_ok(cases[k].file, &t);
        assert_int_equal(t.ndim, 2);
        assert_int_equal(t.shape[0], 2);
        assert_int_equal(t.shape[1], 4);
        int bad = 0;
        for (int i = 0; i < 8; i++) bad += fbits(t.data[i]) != cases[k].want[i];
        printf("%-36s 8 values, %d differ from numpy's float32 conversion %s\n", cases[k].file, bad, bad ? "NOT OK" : "OK");
        assert_int_equal(bad, 0);
        latup_tensor_free(&t);
    }
    /* the spelled-out bfloat16 dtype names read the same bytes */
    const uint16_t bf[2] = {0x3F80, 0xC020};
    latup_tensor t;
    read_ok(put("bf.npy", 1, "{'descr': 'bfloat16', 'fortran_order': False, 'shape': (2,), }\n", bf, sizeof bf), &t);
    assert_true(t.data[0] == 1.0f && t.data[1] == -2.5f);
    latup_tensor_free(&t);
}

static void test_versions_and_dialects(void **state) {
    (void)state;
    float d[6] = {1, 2, 3, 4, 5, 6};
    static const struct {
        int major;
        const char *dict;
    } ok[] = {
        {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n"},
        {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n"},
        {1, "{\"shape\": (2,3,), \"fortran_order\": False, \"descr\": \"<f4\"}"},
        {1, "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 2 , 3 ) }"},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)}\n"},
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        latup_tensor t;
        read_ok(put("v.npy", ok[k].major, ok[k].dict, d, sizeof d), &t);
        assert_int_equal(latup_tensor_numel(&t), 6);
        assert_true(t.data[5] == 6.0f);
        latup_tensor_free(&t);
    }
}

/* ---- rejections ------------------------------------------------------------------------------- */

static void test_reject_layout(void **state) {
    (void)state;
    float d[6] = {0};
    expect_reject(
        put("fo.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", d, sizeof d),
        "Fortran order not supported");
    expect_reject(
        put("be.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }\n", d, sizeof d),
        "big-endian .npy data ('>f4')");
    expect_reject(put("i8.npy", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }\n", d, 24),
                  "dtype '<i8' is not supported");
    expect_reject(put("v4.npy", 1, "{'descr': '|V4', 'fortran_order': False, 'shape': (1,), }\n", d, 4),
                  "dtype '|V4'");
    /* a float64 beyond float32's range is refused by name, not turned into Inf */
    const double big[2] = {1.0, 1e300};
    expect_reject(put("f8big.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n", big, sizeof big),
                  "value 1e+300 at flat index 1 is out of float32 range");
    expect_reject(put("u1.npy", 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }\n", d, 4),
                  "dtype '|u1'");
    expect_reject(
        put("st.npy", 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }\n", d, 4),
        "structured");
}

static void test_reject_rank(void **state) {
    (void)state;
    float d[1] = {0};
    expect_reject(put("r0.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", d, 4),
                  "rank 0");
    expect_reject(
        put("r5.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }\n", d, 4),
        "more than 4 dimensions");
}

static void test_reject_size(void **state) {
    (void)state;
    float d[8] = {0};
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
    expect_reject(put("tr.npy", 1, dict, d, 20),
                  "truncated data: 20 bytes, expected 24 for shape [2,3] of '<f4'");
    expect_reject(put("tl.npy", 1, dict, d, 28), "trailing bytes after the data: 28 bytes, expected 24");
    expect_reject(put("e0.npy", 1, dict, NULL, 0), "0 bytes, expected 24");
    expect_reject(put("h2.npy", 1, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }\n", d, 5),
                  "expected 6");
    expect_reject(
        put("ov.npy", 1,
            "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }\n", d,
            4),
        "too large");
    expect_reject(put("ov2.npy", 1,
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }\n", d, 4),
                  "byte size overflows");
    expect_reject(put("ov3.npy", 1,
                      "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }\n", d, 4),
                  "dimension too large");
}

static void test_reject_container(void **state) {
    (void)state;
    float d[1] = {0};
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n";
    write_bytes(tmp_path("magic.npy"), "\x93NUMPX\x01\x00\x00\x00", 10);
    expect_reject(tmp_path("magic.npy"), "magic");
    write_bytes(tmp_path("short.npy"), "\x93NUM", 4);
    expect_reject(tmp_path("short.npy"), "magic");
    write_bytes(tmp_path("empty.npy"), "", 0);
    expect_reject(tmp_path("empty.npy"), "magic");
    size_t len;
    uint8_t *b = build(1, dict, d, 4, &len);
    b[6] = 4;
    write_bytes(tmp_path("v4.npy"), b, len);
    expect_reject(tmp_path("v4.npy"), "version 4.0");
    b[6] = 1;
    b[7] = 1;
    write_bytes(tmp_path("v11.npy"), b, len);
    expect_reject(tmp_path("v11.npy"), "version 1.1");
    b[7] = 0;
    b[9] = 0x10; /* header length 4096 + ...: past the end */
    write_bytes(tmp_path("hl.npy"), b, len);
    expect_reject(tmp_path("hl.npy"), "truncated .npy header");
    free(b);
    b = build(2, dict, d, 4, &len);
    b[11] = 0x80; /* a 2 GiB v2 header */
    write_bytes(tmp_path("hl2.npy"), b, len);
    expect_reject(tmp_path("hl2.npy"), "truncated .npy header");
    free(b);
}

static void test_reject_header_dict(void **state) {
    (void)state;
    float d[2] = {0};
    static const struct {
        const char *dict;
        const char *word;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False}\n", "lacks 'shape'"},
        {"{'descr': '<f4', 'shape': (2,)}\n", "lacks 'fortran_order'"},
        {"{'fortran_order': False, 'shape': (2,)}\n", "lacks 'descr'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}\n",
         "unexpected or repeated key 'extra'"},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", "repeated key 'descr'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2)}\n", "not a tuple"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2]}\n", "expected '('"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}\n", "negative dimension"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 2)}\n", "expected ',' or ')'"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,,)}\n", "expected an integer"},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}\n", "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x\n", "after the header dict"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,)\n", "expected ',' or '}'"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}\n", "expected ',' or '}'"},
        {"{'descr: '<f4', 'fortran_order': False, 'shape': (2,)}\n", "expected ':'"},
        {"{'descr': '<f\\4', 'fortran_order': False, 'shape': (2,)}\n", "unsupported character"},
        {"('descr', '<f4')\n", "expected '{'"},
        {"", "expected '{'"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        expect_reject(put("d.npy", 1, cases[k].dict, d, sizeof d), cases[k].word);
}

/* Every strict prefix of a valid file fails cleanly (the sizes are exact: ASan sees overreads). */
static void test_prefix_sweep(void **state) {
    (void)state;
    int64_t shape[2] = {3, 2};
    latup_tensor t;
    assert_int_equal(latup_tensor_alloc(&t, 2, shape), LATUP_OK);
    assert_int_equal(latup_npy_write(tmp_path("full.npy"), &t), LATUP_OK);
    latup_tensor_free(&t);
    size_t len;
    uint8_t *b = slurp(tmp_path("full.npy"), &len);
    for (size_t n = 0; n < len; n++) {
        write_bytes(tmp_path("pre.npy"), b, n);
        latup_status st = latup_npy_read(tmp_path("pre.npy"), &t);
        if (st != LATUP_E_INPUT) {
            print_error("prefix of %zu bytes: status %d (%s)\n", n, st, latup_last_error());
            fail();
        }
    }
    free(b);
}

static void test_io_errors(void **state) {
    (void)state;
    latup_tensor t;
    assert_int_equal(latup_npy_read(tmp_path("absent.npy"), &t), LATUP_E_IO);
    assert_non_null(strstr(latup_last_error(), "absent.npy: cannot open: No such file or directory"));
    int64_t shape[1] = {4};
    assert_int_equal(latup_tensor_alloc(&t, 1, shape), LATUP_OK);
    assert_int_equal(latup_npy_write("/nonexistent-dir-latup/out.npy", &t), LATUP_E_IO);
    assert_non_null(strstr(latup_last_error(), "/nonexistent-dir-latup/out.npy"));
    /* a rank the format cannot hold here is the caller's mistake, and nothing is created */
    t.ndim = 0;
    assert_int_equal(latup_npy_write(tmp_path("rank0-out.npy"), &t), LATUP_E_USAGE);
    assert_int_equal(access(tmp_path("rank0-out.npy"), F_OK), -1);
    t.ndim = 1;
    latup_tensor_free(&t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_numpy_identical),
        cmocka_unit_test(test_f2),
        cmocka_unit_test(test_f8_bf16_from_numpy),
        cmocka_unit_test(test_versions_and_dialects),
        cmocka_unit_test(test_reject_layout),
        cmocka_unit_test(test_reject_rank),
        cmocka_unit_test(test_reject_size),
        cmocka_unit_test(test_reject_container),
        cmocka_unit_test(test_reject_header_dict),
        cmocka_unit_test(test_prefix_sweep),
        cmocka_unit_test(test_io_errors),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
