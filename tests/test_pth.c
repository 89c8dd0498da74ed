/* test_pth.c — the .pth reader: fixtures written by torch (tools/golden/make_pth_fixtures.py) checked
 * value by value against expected.txt (made by the same script from the torch tensors), the zip
 * and pickle layers directly, and hostile archives and pickles built here byte by byte: each must
 * fail with LATUP_E_INPUT and a message naming the file and the problem. A truncation sweep and a
 * byte-flip sweep must fail cleanly (run under ASan/UBSan with make test SANITIZE=1). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "io/fileio.h"
#include "io/pickle.h"
#include "io/weights.h"
#include "io/zip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define DATA_DIR "tests/data/pth/"
#define PATH "t.pth"

/* ---- small helpers ---------------------------------------------------------------------------- */

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open %s (run the tests from the repository root)\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

typedef struct {
    uint8_t *b;
    size_t n, cap;
} bbuf;

static void bb_add(bbuf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->b = realloc(b->b, b->cap);
    }
    if (n) memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void bb_fill(bbuf *b, int byte, size_t n) {
    bb_add(b, "", 0);
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->b = realloc(b->b, b->cap);
    }
    memset(b->b + b->n, byte, n);
    b->n += n;
}
static void bb_u8(bbuf *b, unsigned v) {
    uint8_t x = (uint8_t)v;
    bb_add(b, &x, 1);
}
static void bb_le(bbuf *b, uint64_t v, int n) {
    for (int k = 0; k < n; k++) bb_u8(b, (unsigned)(v >> (8 * k)) & 0xFF);
}
static void wr_le(uint8_t *p, uint64_t v, int n) {
    for (int k = 0; k < n; k++) p[k] = (uint8_t)(v >> (8 * k));
}

/* Parses and expects LATUP_E_INPUT with a message starting with the file name and containing
 * `phrase`; the table must come back empty. */
#define expect_fail(buf, len, phrase) expect_fail_(buf, len, phrase, __FILE__, __LINE__)
static void expect_fail_(const uint8_t *buf, size_t len, const char *phrase, const char *file, int line) {
    latup_weights w;
    latup_status st = latup_pth_parse(buf, len, PATH, &w);
    const char *msg = latup_last_error();
    bool ok = st == LATUP_E_INPUT && strstr(msg, phrase) && strncmp(msg, PATH ": ", strlen(PATH) + 2) == 0 &&
              !w.t && !w.blob && !w.path && w.n == 0;
    printf("  %-8s %s\n", ok ? "rejected" : "NOT OK", msg);
    if (!ok) {
        print_error("%s:%d: expected LATUP_E_INPUT with '%s', got %s: %s\n", file, line, phrase,
                    latup_status_name(st), msg);
        if (st == LATUP_OK) latup_weights_free(&w);
        _fail(file, line);
    }
}

/* ---- building zips ----------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const void *data;
    size_t len;
    int method; /* 0 stored, 8 deflate */
} zent;

typedef struct {
    uint8_t *buf;
    size_t len;
    size_t local[8], central[8], cd_off, eocd;
} zipimg;

static void raw_deflate(const void *src, size_t n, bbuf *out) {
    z_stream s;
    memset(&s, 0, sizeof s);
    assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&s, (uLong)n);
    uint8_t *tmp = malloc(cap);
    s.next_in = (Bytef *)(uintptr_t)src;
    s.avail_in = (uInt)n;
    s.next_out = tmp;
    s.avail_out = (uInt)cap;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    bb_add(out, tmp, s.total_out);
    deflateEnd(&s);
    free(tmp);
}

/* A plain (non-ZIP64) archive with the entries in order; offsets recorded for later patching. */
static zipimg make_zip(const zent *e, int n) {
    zipimg z;
    memset(&z, 0, sizeof z);
    bbuf b = {0}, cd = {0};
    uint32_t csize[8];
    for (int i = 0; i < n; i++) {
        bbuf data = {0};
        if (e[i].method == 8)
            raw_deflate(e[i].data, e[i].len, &data);
        else
            bb_add(&data, e[i].data, e[i].len);
        uint32_t crc = (uint32_t)crc32(0, e[i].data, (uInt)e[i].len);
        size_t nl = strlen(e[i].name);
        csize[i] = (uint32_t)data.n;
        z.local[i] = b.n;
        bb_le(&b, 0x04034b50, 4);
        bb_le(&b, 20, 2);
        bb_le(&b, 0, 2);
        bb_le(&b, (uint64_t)e[i].method, 2);
        bb_le(&b, 0, 4); /* time, date */
        bb_le(&b, crc, 4);
        bb_le(&b, csize[i], 4);
        bb_le(&b, e[i].len, 4);
        bb_le(&b, nl, 2);
        bb_le(&b, 0, 2);
        bb_add(&b, e[i].name, nl);
        bb_add(&b, data.b, data.n);
        free(data.b);

        z.central[i] = cd.n;
        bb_le(&cd, 0x02014b50, 4);
        bb_le(&cd, 20, 2);
        bb_le(&cd, 20, 2);
        bb_le(&cd, 0, 2);
        bb_le(&cd, (uint64_t)e[i].method, 2);
        bb_le(&cd, 0, 4);
        bb_le(&cd, crc, 4);
        bb_le(&cd, csize[i], 4);
        bb_le(&cd, e[i].len, 4);
        bb_le(&cd, nl, 2);
        bb_le(&cd, 0, 2); /* extra */
        bb_le(&cd, 0, 2); /* comment */
        bb_le(&cd, 0, 2); /* disk */
        bb_le(&cd, 0, 2); /* internal attributes */
        bb_le(&cd, 0, 4); /* external attributes */
        bb_le(&cd, z.local[i], 4);
        bb_add(&cd, e[i].name, nl);
    }
    z.cd_off = b.n;
    for (int i = 0; i < n; i++) z.central[i] += z.cd_off;
    bb_add(&b, cd.b, cd.n);
    z.eocd = b.n;
    bb_le(&b, 0x06054b50, 4);
    bb_le(&b, 0, 4);
    bb_le(&b, (uint64_t)n, 2);
    bb_le(&b, (uint64_t)n, 2);
    bb_le(&b, cd.n, 4);
    bb_le(&b, z.cd_off, 4);
    bb_le(&b, 0, 2);
    free(cd.b);
    z.buf = b.b;
    z.len = b.n;
    return z;
}

/* A torch-like archive: arch/data.pkl, arch/byteorder, arch/data/0 (if data). */
static zipimg make_pth(const bbuf *pkl, const void *data, size_t dlen, int method) {
    zent e[3] = {{"arch/data.pkl", pkl->b, pkl->n, method},
                 {"arch/byteorder", "little", 6, 0},
                 {"arch/data/0", data, dlen, method}};
    return make_zip(e, data ? 3 : 2);
}

/* ---- building pickles -------------------------------------------------------------------------- */

static void pk_op(bbuf *b, unsigned op) { bb_u8(b, op); }
static void pk_str(bbuf *b, const char *s) {
    pk_op(b, 'X');
    bb_le(b, strlen(s), 4);
    bb_add(b, s, strlen(s));
}
static void pk_int(bbuf *b, int64_t v) {
    if (v >= 0 && v < 256) {
        pk_op(b, 'K');
        bb_u8(b, (unsigned)v);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        pk_op(b, 'J');
        bb_le(b, (uint64_t)v, 4);
    } else {
        pk_op(b, 0x8a);
        bb_u8(b, 8);
        bb_le(b, (uint64_t)v, 8);
    }
}
static void pk_global(bbuf *b, const char *mod, const char *name) {
    pk_op(b, 'c');
    bb_add(b, mod, strlen(mod));
    bb_u8(b, '\n');
    bb_add(b, name, strlen(name));
    bb_u8(b, '\n');
}

/* _rebuild_tensor_v2(('storage', torch.<stype>, key, 'cpu', snumel), off, size, stride, False,
 * OrderedDict()) as torch 1.13 writes it. */
static void pk_tensor_n(bbuf *b, const char *stype, const char *key, int64_t snumel, int64_t off, int ndim,
                        const int64_t *size, int nstride, const int64_t *stride) {
    pk_global(b, "torch._utils", "_rebuild_tensor_v2");
    pk_op(b, '(');
    pk_op(b, '(');
    pk_str(b, "storage");
    pk_global(b, "torch", stype);
    pk_str(b, key);
    pk_str(b, "cpu");
    pk_int(b, snumel);
    pk_op(b, 't');
    pk_op(b, 'Q');
    pk_int(b, off);
    pk_op(b, '(');
    for (int d = 0; d < ndim; d++) pk_int(b, size[d]);
    pk_op(b, 't');
    pk_op(b, '(');
    for (int d = 0; d < nstride; d++) pk_int(b, stride[d]);
    pk_op(b, 't');
    pk_op(b, 0x89);
    pk_global(b, "collections", "OrderedDict");
    pk_op(b, ')');
    pk_op(b, 'R');
    pk_op(b, 't');
    pk_op(b, 'R');
}

static void pk_tensor(bbuf *b, const char *stype, const char *key, int64_t snumel, int64_t off, int ndim,
                      const int64_t *size, const int64_t *stride) {
    pk_tensor_n(b, stype, key, snumel, off, ndim, size, ndim, stride);
}

/* A contiguous float tensor of `shape` over storage key "0". */
static void pk_ftensor(bbuf *b, int64_t snumel, int64_t off, int ndim, const int64_t *shape) {
    int64_t stride[LATUP_WMAX_DIMS], s = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        stride[d] = s;
        s *= shape[d];
    }
    pk_tensor(b, "FloatStorage", "0", snumel, off, ndim, shape, stride);
}

static void pk_dict_begin(bbuf *b) {
    pk_op(b, 0x80);
    pk_op(b, 2);
    pk_op(b, '}');
    pk_op(b, '(');
}
static void pk_dict_end(bbuf *b) {
    pk_op(b, 'u');
    pk_op(b, '.');
}

static const float k_four[4] = {1, 2, 3, 4};

/* {"w": 2x2 float tensor} over 4 floats: the valid baseline the hostile variants start from. */
static bbuf pk_baseline(void) {
    bbuf b = {0};
    pk_dict_begin(&b);
    pk_str(&b, "w");
    pk_ftensor(&b, 4, 0, 2, (int64_t[]){2, 2});
    pk_dict_end(&b);
    return b;
}

/* Wraps a pickle in an archive with 4 floats as storage "0" and expects the phrase. */
#define expect_pkl_fail(pkl, phrase) expect_pkl_fail_(pkl, phrase, __FILE__, __LINE__)
static void expect_pkl_fail_(bbuf *pkl, const char *phrase, const char *file, int line) {
    zipimg z = make_pth(pkl, k_four, sizeof k_four, 0);
    expect_fail_(z.buf, z.len, phrase, file, line);
    free(z.buf);
    free(pkl->b);
    memset(pkl, 0, sizeof *pkl);
}

/* A raw pickle written as a string literal (its length from sizeof, so embedded NULs count). */
#define RAW(lit, phrase) expect_raw_pkl_fail_(lit, sizeof(lit) - 1, phrase, __FILE__, __LINE__)
static void expect_raw_pkl_fail_(const char *bytes, size_t n, const char *phrase, const char *file,
                                 int line) {
    bbuf b = {0};
    bb_add(&b, bytes, n);
    expect_pkl_fail_(&b, phrase, file, line);
}

/* ---- the fixtures written by torch ---------------------------------------------------------- */

static int g_checks, g_failed;

static void report(bool ok, const char *fmt, ...) LATUP_PRINTF(2, 3);
static void report(bool ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("  %-6s ", ok ? "OK" : "NOT OK");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    g_checks++;
    if (!ok) g_failed++;
}

static bool same_value(double got, double want) {
    if (isnan(want)) return isnan(got);
    return got == want && signbit(got) == signbit(want);
}

/* One "tensor ..." line of expected.txt against the loaded table. */
static void check_tensor_line(const latup_weights *w, int idx, char *line, const char *file) {
    char *save = NULL;
    strtok_r(line, " ", &save); /* "tensor" */
    const char *name = strtok_r(NULL, " ", &save), *dt = strtok_r(NULL, " ", &save);
    int ndim = atoi(strtok_r(NULL, " ", &save));
    int64_t shape[LATUP_WMAX_DIMS] = {0};
    for (int d = 0; d < ndim; d++) shape[d] = atoll(strtok_r(NULL, " ", &save));
    int64_t numel = atoll(strtok_r(NULL, " ", &save));
    const char *sum_s = strtok_r(NULL, " ", &save), *wsum_s = strtok_r(NULL, " ", &save);
    int k = atoi(strtok_r(NULL, " ", &save));
    if (idx >= w->n) {
        report(false, "%s: tensor %d '%s' missing (file has %d)", file, idx, name, w->n);
        return;
    }
    const latup_wtensor *t = &w->t[idx];
    bool ok = strcmp(t->name, name) == 0 && strcmp(latup_dtype_name(t->dtype), dt) == 0 && t->ndim == ndim &&
              t->numel == numel;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    if (!ok) {
        char sb[128];
        report(false, "%s: tensor %d is '%s' %s %s, expected '%s' %s", file, idx, t->name,
               latup_dtype_name(t->dtype), latup_shape_str(sb, sizeof sb, t->ndim, t->shape), name, dt);
        return;
    }
    bool first_ok = true;
    if (t->dtype == LATUP_DT_I64) {
        int64_t s = 0, ws = 0;
        for (int64_t i = 0; i < numel; i++) {
            s += t->i64[i];
            ws += t->i64[i] * (i % 7 + 1);
        }
        for (int i = 0; i < k; i++) first_ok &= t->i64[i] == atoll(strtok_r(NULL, " ", &save));
        report(s == atoll(sum_s) && ws == atoll(wsum_s) && first_ok,
               "%-14s %-28s I64  sum %lld (want %s) wsum %lld", file, name, (long long)s, sum_s,
               (long long)ws);
        return;
    }
    double s = 0, ws = 0, sa = 0;
    for (int64_t i = 0; i < numel; i++) {
        s += t->f32[i];
        ws += (double)t->f32[i] * (double)(i % 7 + 1);
        sa += fabs((double)t->f32[i]) * 7;
    }
    for (int i = 0; i < k; i++) first_ok &= same_value(t->f32[i], strtod(strtok_r(NULL, " ", &save), NULL));
    double want_s = strtod(sum_s, NULL), want_ws = strtod(wsum_s, NULL);
    /* The reference sums exactly (math.fsum); a naive double sum of n fp32 values is within n*eps. */
    double tol = 1e-13 * (sa + 1);
    bool sums_ok = (isinf(want_s) ? s == want_s : fabs(s - want_s) <= tol) &&
                   (isinf(want_ws) ? ws == want_ws : fabs(ws - want_ws) <= tol);
    report(sums_ok && first_ok, "%-14s %-28s %-4s sum %.17g (want %s) first %d values %s", file, name, dt, s,
           sum_s, k, first_ok ? "exact" : "DIFFER");
}

static void test_fixtures(void **state) {
    (void)state;
    size_t elen;
    char *exp = (char *)read_all(DATA_DIR "expected.txt", &elen);
    assert_non_null(exp);
    exp = realloc(exp, elen + 1);
    exp[elen] = '\0';
    latup_weights w = {0};
    bool loaded = false;
    int idx = 0, n_files = 0, n_fail = 0;
    char file[128] = "";
    char *save = NULL;
    for (char *line = strtok_r(exp, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        if (strncmp(line, "file ", 5) == 0 || strncmp(line, "fail ", 5) == 0) {
            if (loaded) {
                report(idx == w.n, "%s: %d tensors (want %d)", file, w.n, idx);
                latup_weights_free(&w);
                loaded = false;
            }
            char wrapper[64], path[256];
            int n = 0;
            if (line[1] == 'i') {
                assert_int_equal(sscanf(line, "file %127s %63s %d", file, wrapper, &n), 3);
                snprintf(path, sizeof path, DATA_DIR "%s", file);
                size_t len;
                uint8_t *buf = read_all(path, &len);
                assert_non_null(buf);
                latup_status st = latup_pth_parse(buf, len, path, &w);
                free(buf);
                if (st) {
                    report(false, "%s: %s", file, latup_last_error());
                    continue;
                }
                loaded = true;
                idx = 0;
                n_files++;
                bool wr_ok = strcmp(wrapper, "-") == 0 ? w.wrapper == NULL
                                                       : (w.wrapper && !strcmp(w.wrapper, wrapper));
                report(wr_ok && !strcmp(w.format, "pytorch zip") && !strcmp(w.path, path),
                       "%s: wrapper %s (want %s)", file, w.wrapper ? w.wrapper : "-", wrapper);
            } else {
                char phrase[256];
                assert_int_equal(sscanf(line, "fail %127s %255[^\n]", file, phrase), 2);
                snprintf(path, sizeof path, DATA_DIR "%s", file);
                size_t len;
                uint8_t *buf = read_all(path, &len);
                assert_non_null(buf);
                latup_status st = latup_pth_parse(buf, len, path, &w);
                free(buf);
                const char *msg = latup_last_error();
                report(st == LATUP_E_INPUT && strstr(msg, phrase) && strstr(msg, path), "%s rejected: %s",
                       file, msg);
                if (st == LATUP_OK) latup_weights_free(&w);
                n_fail++;
            }
        } else if (strncmp(line, "tensor ", 7) == 0 && loaded) {
            check_tensor_line(&w, idx++, line, file);
        }
    }
    if (loaded) {
        report(idx == w.n, "%s: %d tensors (want %d)", file, w.n, idx);
        latup_weights_free(&w);
    }
    free(exp);
    printf("  fixtures: %d files loaded, %d rejected as expected, %d checks, %d NOT OK\n", n_files, n_fail,
           g_checks, g_failed);
    assert_true(n_files >= 10);
    assert_int_equal(g_failed, 0);
}

/* Views of one storage point into one converted copy; tied names share the pointer. */
static void test_shared_storage(void **state) {
    (void)state;
    size_t len;
    uint8_t *buf = read_all(DATA_DIR "shared.pth", &len);
    assert_non_null(buf);
    latup_weights w;
    assert_int_equal(latup_pth_parse(buf, len, "shared.pth", &w), LATUP_OK);
    const latup_wtensor *a = latup_weights_find(&w, "w"), *b = latup_weights_find(&w, "b"),
                        *c = latup_weights_find(&w, "c"), *tied = latup_weights_find(&w, "tied"),
                        *other = latup_weights_find(&w, "other");
    assert_non_null(a);
    assert_non_null(other);
    assert_ptr_equal(b->f32, a->f32 + 6);
    assert_ptr_equal(c->f32, a->f32 + 10);
    assert_ptr_equal(tied->f32, a->f32);
    assert_true(other->f32 < a->f32 || other->f32 >= a->f32 + 20);
    for (int i = 0; i < 20; i++) assert_true(a->f32[i] == (float)(i * 0.5 - 3.0));
    const float *p;
    assert_int_equal(latup_weights_get(&w, "c", 2, (int64_t[]){5, 2}, &p), LATUP_OK);
    latup_weights_free(&w);
    free(buf);
}

/* The zip layer on its own: the deflated re-zip extracts to the same bytes as torch's stored file. */
static void test_zip_api(void **state) {
    (void)state;
    size_t l1, l2;
    uint8_t *stored = read_all(DATA_DIR "ema_f32.pth", &l1),
            *deflated = read_all(DATA_DIR "deflate.pth", &l2);
    latup_zip z1, z2;
    assert_int_equal(latup_zip_open(&z1, stored, l1, "ema_f32.pth"), LATUP_OK);
    assert_int_equal(latup_zip_open(&z2, deflated, l2, "deflate.pth"), LATUP_OK);
    assert_int_equal(z1.n, z2.n);
    for (size_t i = 0; i < z1.n; i++) {
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)z1.e[i].name_len, z1.e[i].name);
        const latup_zip_entry *e1 = latup_zip_find(&z1, name), *e2 = latup_zip_find(&z2, name);
        assert_non_null(e1);
        assert_non_null(e2);
        assert_int_equal(e1->method, 0);
        assert_int_equal(e2->method, 8);
        const uint8_t *d1, *d2;
        size_t n1, n2;
        uint8_t *o1, *o2;
        assert_int_equal(latup_zip_extract(&z1, e1, UINT64_MAX, &d1, &n1, &o1), LATUP_OK);
        assert_int_equal(latup_zip_extract(&z2, e2, UINT64_MAX, &d2, &n2, &o2), LATUP_OK);
        assert_null(o1); /* stored: no copy */
        assert_true(d1 >= stored && d1 + n1 <= stored + l1);
        assert_int_equal(n1, n2);
        assert_memory_equal(d1, d2, n1);
        free(o2);
        /* the size cap is checked before anything is allocated */
        if (n1 > 1) {
            assert_int_equal(latup_zip_extract(&z2, e2, n1 - 1, &d2, &n2, &o2), LATUP_E_INPUT);
            assert_non_null(strstr(latup_last_error(), "over the limit"));
        }
    }
    assert_null(latup_zip_find(&z1, "nope"));
    latup_zip_close(&z1);
    latup_zip_close(&z2);
    free(stored);
    free(deflated);
}

/* The pickle machine on its own: the scalar opcodes decode to the right values. */
static void test_pickle_values(void **state) {
    (void)state;
    bbuf b = {0};
    pk_op(&b, 0x80);
    pk_op(&b, 2);
    pk_op(&b, '(');
    pk_int(&b, -1);                                 /* BININT */
    pk_int(&b, (int64_t)1 << 40);                   /* LONG1, 8 bytes */
    bb_add(&b, "\x8a\x02\x00\x80", 4);              /* LONG1 -32768 */
    bb_add(&b, "\x8a\x00", 2);                      /* LONG1 0 */
    bb_add(&b, "G\x3f\xf8\0\0\0\0\0\0", 9);         /* BINFLOAT 1.5 */
    bb_add(&b, "\x8a\x09\0\0\0\0\0\0\0\0\x01", 11); /* 2^64: a big int */
    bb_add(&b, "\x8c\x02hi", 4);                    /* SHORT_BINUNICODE */
    bb_add(&b, "C\x01z", 3);                        /* SHORT_BINBYTES */
    bb_add(&b, "M\xff\xff", 3);                     /* BININT2 */
    bb_add(&b, "\x88\x89N", 3);                     /* True False None */
    pk_op(&b, 't');
    pk_op(&b, '.');
    latup_pickle doc;
    assert_int_equal(latup_pickle_load(b.b, b.n, "p", &doc), LATUP_OK);
    const latup_pk *t = doc.root;
    assert_int_equal(t->kind, LATUP_PK_TUPLE);
    assert_int_equal(t->u.seq.n, 12);
    latup_pk **v = t->u.seq.v;
    assert_int_equal(v[0]->u.i, -1);
    assert_int_equal(v[1]->u.i, (int64_t)1 << 40);
    assert_int_equal(v[2]->u.i, -32768);
    assert_int_equal(v[3]->u.i, 0);
    assert_true(v[4]->kind == LATUP_PK_FLOAT && v[4]->u.f == 1.5);
    assert_int_equal(v[5]->kind, LATUP_PK_BIGINT);
    assert_string_equal(v[6]->u.str.s, "hi");
    assert_int_equal(v[7]->kind, LATUP_PK_BYTES);
    assert_int_equal(v[8]->u.i, 65535);
    assert_true(v[9]->kind == LATUP_PK_BOOL && v[9]->u.b);
    assert_true(v[10]->kind == LATUP_PK_BOOL && !v[10]->u.b);
    assert_int_equal(v[11]->kind, LATUP_PK_NONE);
    latup_pickle_free(&doc);
    free(b.b);
}

/* ---- hostile archives -------------------------------------------------------------------------- */

static void test_crafted_baseline(void **state) {
    (void)state;
    for (int method = 0; method <= 8; method += 8) {
        bbuf pkl = pk_baseline();
        zipimg z = make_pth(&pkl, k_four, sizeof k_four, method);
        latup_weights w;
        assert_int_equal(latup_pth_parse(z.buf, z.len, PATH, &w), LATUP_OK);
        assert_int_equal(w.n, 1);
        assert_null(w.wrapper);
        assert_memory_equal(w.t[0].f32, k_four, sizeof k_four);
        latup_weights_free(&w);
        free(z.buf);
        free(pkl.b);
    }
}

static void test_zip_structure(void **state) {
    (void)state;
    bbuf pkl = pk_baseline();
    zipimg z = make_pth(&pkl, k_four, sizeof k_four, 0);
    uint8_t *b = malloc(z.len + 64);
#define FRESH() memcpy(b, z.buf, z.len)

    expect_fail(b, 0, "too short");
    FRESH();
    b[z.eocd] = 'X'; /* EOCD signature */
    expect_fail(b, z.len, "no end-of-central-directory");
    FRESH();
    wr_le(b + z.eocd + 20, 5, 2); /* comment length past the end */
    expect_fail(b, z.len, "no end-of-central-directory");
    FRESH();
    wr_le(b + z.eocd + 16, z.len + 100, 4); /* central directory offset past the end */
    expect_fail(b, z.len, "central directory (offset");
    FRESH();
    wr_le(b + z.eocd + 12, 0x7FFFFFFF, 4); /* central directory size past the end */
    expect_fail(b, z.len, "lies outside the archive");
    FRESH();
    wr_le(b + z.eocd + 8, 200, 2), wr_le(b + z.eocd + 10, 200, 2); /* more entries than fit */
    expect_fail(b, z.len, "claims 200 entries");
    FRESH();
    wr_le(b + z.eocd + 8, 2, 2); /* entries on this disk != total */
    expect_fail(b, z.len, "multi-disk");
    FRESH();
    wr_le(b + z.eocd + 4, 1, 2); /* disk number */
    expect_fail(b, z.len, "multi-disk");
    FRESH();
    wr_le(b + z.eocd + 16, 0xFFFFFFFF, 4); /* ZIP64 value without a locator */
    expect_fail(b, z.len, "no ZIP64 locator");
    FRESH();
    b[z.central[1]] = 'Y'; /* central header signature */
    expect_fail(b, z.len, "bad central directory signature for entry 1");
    FRESH();
    b[z.local[2]] = 'Z'; /* local header signature */
    expect_fail(b, z.len, "'arch/data/0': bad local header signature");
    FRESH();
    wr_le(b + z.central[2] + 42, z.len - 10, 4); /* local header offset near the end */
    expect_fail(b, z.len, "local header offset");
    FRESH();
    b[z.local[2] + 30 + 5] = 'D'; /* local name differs: arch/Data/0 */
    expect_fail(b, z.len, "local header names a different file");
    FRESH();
    wr_le(b + z.local[2] + 26, 0xFFFF, 2); /* local name length past the end */
    expect_fail(b, z.len, "local header runs past the end");
    FRESH();
    wr_le(b + z.local[2] + 28, 0xFFFF, 2); /* local extra length past the end */
    expect_fail(b, z.len, "local header runs past the end");
    FRESH();
    wr_le(b + z.central[2] + 20, 1000000, 4), wr_le(b + z.central[2] + 24, 1000000, 4); /* sizes past end */
    expect_fail(b, z.len, "run past the end of the archive");
    FRESH();
    wr_le(b + z.central[2] + 20, 12, 4); /* stored with csize != usize */
    expect_fail(b, z.len, "sizes differ");
    FRESH();
    b[z.local[2] + 30 + 11] ^= 1; /* a data byte: CRC */
    expect_fail(b, z.len, "'arch/data/0': CRC-32 mismatch");
    FRESH();
    wr_le(b + z.central[0] + 16, 0, 4); /* data.pkl CRC */
    expect_fail(b, z.len, "'arch/data.pkl': CRC-32 mismatch");
    FRESH();
    wr_le(b + z.central[2] + 10, 12, 2), wr_le(b + z.local[2] + 8, 12, 2); /* bzip2 */
    expect_fail(b, z.len, "compression method 12");
    FRESH();
    wr_le(b + z.central[2] + 10, 8, 2); /* method in the directory differs from the local header */
    expect_fail(b, z.len, "differs from the directory");
    FRESH();
    wr_le(b + z.central[2] + 8, 1, 2); /* encrypted */
    expect_fail(b, z.len, "is encrypted");
    FRESH();
    wr_le(b + z.central[2] + 34, 3, 2); /* starts on another disk */
    expect_fail(b, z.len, "multi-disk");
    FRESH();
    wr_le(b + z.central[2] + 20, 0xFFFFFFFF, 4); /* ZIP64 size without the extra field */
    expect_fail(b, z.len, "without a ZIP64 extra field");
    /* a zip comment after the EOCD is fine */
    FRESH();
    wr_le(b + z.eocd + 20, 5, 2);
    memcpy(b + z.len, "hello", 5);
    latup_weights w;
    assert_int_equal(latup_pth_parse(b, z.len + 5, PATH, &w), LATUP_OK);
    latup_weights_free(&w);
    free(b);
    free(z.buf);
    free(pkl.b);
#undef FRESH
}

static void test_zip_entries(void **state) {
    (void)state;
    bbuf pkl = pk_baseline();
    /* duplicate names */
    zent dup[3] = {
        {"arch/data.pkl", pkl.b, pkl.n, 0}, {"arch/data/0", k_four, 16, 0}, {"arch/data/0", k_four, 16, 0}};
    zipimg z = make_zip(dup, 3);
    expect_fail(z.buf, z.len, "duplicate zip entry 'arch/data/0'");
    free(z.buf);
    /* no data.pkl */
    zent nopkl[1] = {{"arch/data/0", k_four, 16, 0}};
    z = make_zip(nopkl, 1);
    expect_fail(z.buf, z.len, "without a <root>/data.pkl entry");
    free(z.buf);
    /* two roots */
    zent two[3] = {
        {"a/data.pkl", pkl.b, pkl.n, 0}, {"b/data.pkl", pkl.b, pkl.n, 0}, {"a/data/0", k_four, 16, 0}};
    z = make_zip(two, 3);
    expect_fail(z.buf, z.len, "several data.pkl entries");
    free(z.buf);
    /* missing storage */
    z = make_pth(&pkl, NULL, 0, 0);
    expect_fail(z.buf, z.len, "storage '0' (arch/data/0) is missing from the archive");
    free(z.buf);
    /* big-endian */
    zent big[3] = {
        {"arch/data.pkl", pkl.b, pkl.n, 0}, {"arch/byteorder", "big", 3, 0}, {"arch/data/0", k_four, 16, 0}};
    z = make_zip(big, 3);
    expect_fail(z.buf, z.len, "byte order is 'big'");
    free(z.buf);
    /* TorchScript */
    zent jit[3] = {{"arch/data.pkl", pkl.b, pkl.n, 0},
                   {"arch/constants.pkl", "x", 1, 0},
                   {"arch/data/0", k_four, 16, 0}};
    z = make_zip(jit, 3);
    expect_fail(z.buf, z.len, "TorchScript");
    free(z.buf);
    /* an empty archive */
    z = make_zip(NULL, 0);
    expect_fail(z.buf, z.len, "without a <root>/data.pkl");
    free(z.buf);
    /* not a zip at all, a bare pickle, the legacy magic */
    static const char text[] = "hello, this is not a zip archive at all";
    expect_fail((const uint8_t *)text, sizeof text - 1, "not a zip archive");
    expect_fail(pkl.b, pkl.n, "bare pickle");
    static const uint8_t legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                     0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, '.'};
    expect_fail(legacy, sizeof legacy, "legacy PyTorch (<1.6) format");
    free(pkl.b);
}

static void test_zip_deflate(void **state) {
    (void)state;
    bbuf pkl = pk_baseline();
    zipimg z = make_pth(&pkl, k_four, sizeof k_four, 8);
    uint8_t *b = malloc(z.len);
#define FRESH() memcpy(b, z.buf, z.len)
    char phrase[128];
    FRESH();
    wr_le(b + z.central[0] + 24, pkl.n + 1, 4); /* declares one byte more */
    snprintf(phrase, sizeof phrase, "'arch/data.pkl' inflates to %zu bytes, its header says %zu", pkl.n,
             pkl.n + 1);
    expect_fail(b, z.len, phrase);
    FRESH();
    wr_le(b + z.central[0] + 24, pkl.n - 1, 4); /* declares one byte less */
    expect_fail(b, z.len, "'arch/data.pkl' inflates");
    FRESH();
    wr_le(b + z.central[0] + 24, 10000000, 4); /* more than deflate can produce from a few bytes */
    expect_fail(b, z.len, "more than deflate can produce");
    FRESH();
    uint32_t csize = (uint32_t)(b[z.central[0] + 20] | b[z.central[0] + 21] << 8);
    wr_le(b + z.central[0] + 20, csize - 2, 4); /* stream cut short */
    expect_fail(b, z.len, "'arch/data.pkl': deflate stream is truncated");
    FRESH();
    memset(b + z.local[0] + 30 + 13, 0xFF, 3); /* garbage stream */
    expect_fail(b, z.len, "'arch/data.pkl': corrupt deflate data");
    FRESH();
    b[z.local[2] + 30 + 11 + 1] ^= 0x10; /* a flipped bit inside the storage's stream */
    expect_fail(b, z.len, "'arch/data/0'");
    free(b);
    free(z.buf);
    free(pkl.b);
#undef FRESH
}

/* Entries whose data ranges overlap (entry "0" contains the whole of entry "abcd"): each is valid on
 * its own, but together they claim more bytes than the file has, which would let a small file
 * make us allocate many times its size. */
static void test_zip_overlap(void **state) {
    (void)state;
    enum { N = 4000 }; /* bytes of "abcd"; "0" = its 44-byte local header + those bytes */
    uint8_t *inner = calloc(1, 44 + N);
    const char *iname = "arch/data/abcd";
    wr_le(inner, 0x04034b50, 4);
    wr_le(inner + 4, 20, 2);
    wr_le(inner + 14, (uint32_t)crc32(0, inner + 44, N), 4);
    wr_le(inner + 18, N, 4);
    wr_le(inner + 22, N, 4);
    wr_le(inner + 26, strlen(iname), 2);
    memcpy(inner + 30, iname, strlen(iname));
    bbuf pkl = {0};
    pk_dict_begin(&pkl);
    pk_str(&pkl, "a");
    pk_tensor(&pkl, "FloatStorage", "0", (44 + N) / 4, 0, 1, (int64_t[]){(44 + N) / 4}, (int64_t[]){1});
    pk_str(&pkl, "b");
    pk_tensor(&pkl, "FloatStorage", "abcd", N / 4, 0, 1, (int64_t[]){N / 4}, (int64_t[]){1});
    pk_dict_end(&pkl);
    zent e[3] = {{"arch/data.pkl", pkl.b, pkl.n, 0},
                 {"arch/byteorder", "little", 6, 0},
                 {"arch/data/0", inner, 44 + N, 0}};
    zipimg z = make_zip(e, 3);
    /* a fourth directory entry, for "abcd", pointing inside the data of "0" */
    size_t inner_at = z.local[2] + 30 + strlen("arch/data/0");
    bbuf b = {0};
    bb_add(&b, z.buf, z.eocd);
    bb_le(&b, 0x02014b50, 4);
    bb_le(&b, 20, 2), bb_le(&b, 20, 2), bb_le(&b, 0, 2), bb_le(&b, 0, 2), bb_le(&b, 0, 4);
    bb_le(&b, (uint32_t)crc32(0, inner + 44, N), 4), bb_le(&b, N, 4), bb_le(&b, N, 4);
    bb_le(&b, strlen(iname), 2), bb_le(&b, 0, 2), bb_le(&b, 0, 2), bb_le(&b, 0, 2), bb_le(&b, 0, 2),
        bb_le(&b, 0, 4);
    bb_le(&b, inner_at, 4);
    bb_add(&b, iname, strlen(iname));
    bb_add(&b, z.buf + z.eocd, 22);
    uint8_t *eocd = b.b + b.n - 22;
    wr_le(eocd + 8, 4, 2), wr_le(eocd + 10, 4, 2), wr_le(eocd + 12, b.n - 22 - z.cd_off, 4);
    expect_fail(b.b, b.n, "storage entries overlap");
    free(b.b);
    free(z.buf);
    free(pkl.b);
    free(inner);
}

/* ZIP64: a locator pointing outside, and a bad record signature. */
static void test_zip64_hostile(void **state) {
    (void)state;
    size_t len;
    uint8_t *orig = read_all(DATA_DIR "zip64_central.pth", &len);
    assert_non_null(orig);
    uint8_t *b = malloc(len);
    size_t eocd = len - 22, loc = eocd - 20;
    assert_int_equal(orig[loc], 'P');
    assert_int_equal(orig[loc + 2], 6);
    memcpy(b, orig, len);
    wr_le(b + loc + 8, len, 8);
    expect_fail(b, len, "ZIP64 end-of-central-directory offset");
    memcpy(b, orig, len);
    size_t rec = (size_t)(orig[loc + 8] | orig[loc + 9] << 8 | orig[loc + 10] << 16);
    b[rec] = 'Q';
    expect_fail(b, len, "bad ZIP64 end-of-central-directory signature");
    memcpy(b, orig, len);
    wr_le(b + rec + 4, 1000, 8); /* record size */
    expect_fail(b, len, "record size");
    memcpy(b, orig, len);
    wr_le(b + rec + 48, len, 8); /* directory offset */
    expect_fail(b, len, "central directory (offset");
    memcpy(b, orig, len);
    wr_le(b + loc + 16, 2, 4); /* two disks */
    expect_fail(b, len, "multi-disk");
    free(b);
    free(orig);
}

/* ---- hostile pickles --------------------------------------------------------------------------- */

static void test_pickle_globals(void **state) {
    (void)state;
    bbuf b = {0};
    RAW("\x80\x02"
        "cos\nsystem\nX\x02\0\0\0lsR.",
        "refusing pickle global 'os.system' (not a tensor/state-dict type)");
    /* protocol 4 style: STACK_GLOBAL from two strings */
    RAW("\x80\x04\x8c\x08"
        "builtins\x8c\x04"
        "eval\x93\x8c\x01xR.",
        "refusing pickle global 'builtins.eval'");
    RAW("\x80\x02"
        "c__builtin__\ngetattr\n.",
        "'__builtin__.getattr'");
    RAW("\x80\x02"
        "cnumpy.core.multiarray\n_reconstruct\n.",
        "'numpy.core.multiarray._reconstruct'");
    RAW("\x80\x02"
        "c__main__\nNet\n.",
        "save model.state_dict()");
    RAW("\x80\x02"
        "ctorch\nFloatStorage",
        "newline-terminated");
    /* REDUCE on things that are not whitelisted callables */
    RAW("\x80\x02X\x01\0\0\0f)R.", "REDUCE on a str, which is not a whitelisted callable");
    RAW("\x80\x02"
        "ctorch\nFloatStorage\n)R.",
        "storages are only valid in a persistent id");
    RAW("\x80\x02"
        "ccollections\nOrderedDict\nK\x01\x85R.",
        "only OrderedDict() is supported");
    RAW("\x80\x02"
        "ccollections\nOrderedDict\nK\x01R.",
        "expected a tuple");
    RAW("\x80\x02"
        "ctorch._utils\n_rebuild_tensor_v2\n)R.",
        "_rebuild_tensor called with 0 arguments");
    RAW("\x80\x02"
        "ctorch._utils\n_rebuild_parameter\nK\x01\x85R.",
        "expects (tensor");
    /* persistent ids */
    RAW("\x80\x02K\x01Q.", "persistent id is not a 5-tuple");
    RAW("\x80\x02(X\x01\0\0\0sK\x01K\x01K\x01K\x01tQ.", "does not start with 'storage'");
    pk_op(&b, 0x80), pk_op(&b, 2), pk_op(&b, '(');
    pk_str(&b, "storage");
    pk_global(&b, "collections", "OrderedDict");
    pk_str(&b, "0"), pk_str(&b, "cpu"), pk_int(&b, 4), pk_op(&b, 't'), pk_op(&b, 'Q'), pk_op(&b, '.');
    expect_pkl_fail(&b, "storage type is not a torch storage class");
}

static void test_pickle_machine(void **state) {
    (void)state;
    RAW("\x80\x02I1\n.", "unknown/unsupported pickle opcode 0x49 at offset 2");
    RAW("\x80\x01}.", "unsupported pickle protocol 1");
    RAW("\x80\x02}", "without STOP");
    RAW("\x80\x02.", "stack underflow");
    RAW("\x80\x02s.", "stack underflow");
    RAW("\x80\x02}(K\x01s.", "stack underflow");        /* SETITEM below a MARK */
    RAW("\x80\x02K\x01(K\x02\x86.", "stack underflow"); /* TUPLE2 across a MARK */
    RAW("\x80\x02t.", "no MARK");
    RAW("\x80\x02](u.", "SETITEM on a list");
    RAW("\x80\x02}K\x01"
        "a.",
        "APPEND to a dict");
    RAW("\x80\x02}K\x01K\x02K\x03u.", "no MARK");
    RAW("\x80\x02}(K\x01u.", "odd number");
    RAW("\x80\x02K\x01N\x62.", "BUILD on an int");
    RAW("\x80\x02h\x05.", "memo key 5 was never stored");
    RAW("\x80\x02}q\x00j\xff\xff\xff\xff.", "memo key 4294967295");
    RAW("\x80\x02}r\xff\xff\xff\xff.", "memo index 4294967295 exceeds");
    RAW("\x80\x02q\x00.", "stack underflow"); /* BINPUT on an empty stack */
    RAW("\x80\x02X\xf0\xff\xff\xff"
        "abc.",
        "string of 4294967280 bytes runs past the end");
    RAW("\x80\x04\x8d\0\0\0\0\0\0\0\x40"
        "abc.",
        "runs past the end");
    RAW("\x80\x02X\x05\0\0", "needs 4 bytes of argument");
    RAW("\x80\x02\x8b\xff\xff\xff\x7f.", "integer of 2147483647 bytes runs past the end");
    RAW("\x80\x02\x8b\xff\xff\xff\xff.", "negative length");
    RAW("\x80\x02\x8c\x03"
        "ab",
        "runs past the end");
    RAW("\x80\x02]]K\x01\x93.", "STACK_GLOBAL needs two strings");
    /* a pickle whose result is not a dict */
    RAW("\x80\x02].", "holds a list, expected a dict");
}

static void test_pickle_limits(void **state) {
    (void)state;
    enum { N = 100000 };
    bbuf b = {0};
    /* deep list nesting: built iteratively, freed from one list, no recursion anywhere */
    pk_op(&b, 0x80), pk_op(&b, 2);
    for (int i = 0; i < N; i++) pk_op(&b, ']');
    for (int i = 0; i < N - 1; i++) pk_op(&b, 'a');
    pk_op(&b, '.');
    expect_pkl_fail(&b, "holds a list");
    /* MARK nesting */
    pk_op(&b, 0x80), pk_op(&b, 2);
    for (int i = 0; i < N; i++) pk_op(&b, '(');
    pk_op(&b, '.');
    expect_pkl_fail(&b, "deeper than 64 MARKs");
    /* deep dict nesting reaches the flattener: bounded depth, not the C stack */
    pk_op(&b, 0x80), pk_op(&b, 2), pk_op(&b, '}');
    for (int i = 0; i < N; i++) pk_str(&b, "k"), pk_op(&b, '}');
    for (int i = 0; i < N; i++) pk_op(&b, 's');
    pk_op(&b, '.');
    expect_pkl_fail(&b, "nests deeper than 64 dicts");
    /* a dict referencing itself */
    bb_add(&b, "\x80\x02}q\x00X\x01\0\0\0ah\x00s.", 15);
    expect_pkl_fail(&b, "nests deeper");
    /* one dict reused at every level through the memo: 2^40 paths, bounded work */
    pk_op(&b, 0x80), pk_op(&b, 2), pk_op(&b, '}'), pk_op(&b, 'q'), pk_op(&b, 0);
    pk_str(&b, "t");
    pk_ftensor(&b, 4, 0, 1, (int64_t[]){4});
    pk_op(&b, 's');
    for (int i = 1; i <= 40; i++) {
        pk_op(&b, '}'), pk_op(&b, '(');
        pk_str(&b, "a"), pk_op(&b, 'h'), pk_op(&b, (unsigned)i - 1);
        pk_str(&b, "b"), pk_op(&b, 'h'), pk_op(&b, (unsigned)i - 1);
        pk_op(&b, 'u'), pk_op(&b, 'q'), pk_op(&b, (unsigned)i);
    }
    pk_op(&b, '.');
    expect_pkl_fail(&b, "more than 1048576 entries");
    /* object count cap: 3M empty tuples */
    pk_op(&b, 0x80), pk_op(&b, 2), pk_op(&b, ']');
    for (int i = 0; i < 3000000; i++) pk_op(&b, ')'), pk_op(&b, 'a');
    pk_op(&b, '.');
    expect_pkl_fail(&b, "objects in the pickle");
    /* stack cap */
    pk_op(&b, 0x80), pk_op(&b, 2), pk_op(&b, 'N');
    for (int i = 0; i < 1100000; i++) pk_op(&b, '2'); /* DUP */
    pk_op(&b, '.');
    expect_pkl_fail(&b, "stack deeper than");
    /* container element cap: one list holding the same value 5M times */
    pk_op(&b, 0x80), pk_op(&b, 2), pk_op(&b, ']'), pk_op(&b, 'N'), pk_op(&b, 'q'), pk_op(&b, 0);
    for (int i = 0; i < 5000000; i++) pk_op(&b, 'a'), pk_op(&b, 'h'), pk_op(&b, 0);
    expect_pkl_fail(&b, "container elements");
}

/* ---- hostile tensors --------------------------------------------------------------------------- */

/* {"w": tensor(stype, key "0", snumel, off, size, stride)} over `data`. */
static void expect_tensor_fail(const char *stype, int64_t snumel, int64_t off, int ndim, const int64_t *size,
                               const int64_t *stride, const void *data, size_t dlen, const char *phrase) {
    bbuf b = {0};
    pk_dict_begin(&b);
    pk_str(&b, "w");
    pk_tensor(&b, stype, "0", snumel, off, ndim, size, stride);
    pk_dict_end(&b);
    zipimg z = make_pth(&b, data, dlen, 0);
    expect_fail(z.buf, z.len, phrase);
    free(z.buf);
    free(b.b);
}

static void test_tensor_checks(void **state) {
    (void)state;
    const float d[12] = {0};
    expect_tensor_fail("FloatStorage", 3, 0, 1, (int64_t[]){3}, (int64_t[]){1}, d, 16,
                       "storage '0' declares 3 elements of torch.FloatStorage (4 bytes each) but its archive "
                       "entry holds 16 bytes");
    expect_tensor_fail("HalfStorage", 4, 0, 1, (int64_t[]){4}, (int64_t[]){1}, d, 16,
                       "declares 4 elements of torch.HalfStorage");
    expect_tensor_fail("FloatStorage", 4, 2, 1, (int64_t[]){3}, (int64_t[]){1}, d, 16,
                       "tensor 'w': 3 elements at offset 2 lie outside its storage '0' of 4 elements");
    expect_tensor_fail("FloatStorage", 4, 100, 1, (int64_t[]){1}, (int64_t[]){1}, d, 16,
                       "lie outside its storage");
    expect_tensor_fail("FloatStorage", 4, -1, 1, (int64_t[]){1}, (int64_t[]){1}, d, 16,
                       "lie outside its storage");
    expect_tensor_fail("FloatStorage", 4, INT64_MAX, 1, (int64_t[]){4}, (int64_t[]){1}, d, 16,
                       "lie outside its storage");
    expect_tensor_fail("FloatStorage", 4, 0, 2, (int64_t[]){2, -2}, (int64_t[]){2, 1}, d, 16,
                       "tensor 'w' has a negative size -2 in dimension 1");
    expect_tensor_fail("FloatStorage", 4, 0, 2, (int64_t[]){(int64_t)1 << 40, (int64_t)1 << 40},
                       (int64_t[]){1, 1}, d, 16,
                       "element count of shape [1099511627776,1099511627776] overflows");
    expect_tensor_fail("FloatStorage", 4, 0, 3, (int64_t[]){INT64_MAX, 2, 1}, (int64_t[]){1, 1, 1}, d, 16,
                       "overflows");
    expect_tensor_fail(
        "FloatStorage", 4, 0, 2, (int64_t[]){2, 2}, (int64_t[]){1, 2}, d, 16,
        "tensor 'w' is a non-contiguous view (shape [2,2], strides [1,2]): re-save it with .contiguous()");
    expect_tensor_fail("FloatStorage", 4, 0, 2, (int64_t[]){4, 2}, (int64_t[]){1, 0}, d, 16,
                       "non-contiguous"); /* expand */
    expect_tensor_fail("FloatStorage", 4, 0, 1, (int64_t[]){4}, (int64_t[]){-1}, d, 16, "non-contiguous");
    expect_tensor_fail("DoubleStorage", 2, 0, 1, (int64_t[]){2}, (int64_t[]){1}, d, 16,
                       "tensor 'w' has unsupported dtype (torch.DoubleStorage)");
    expect_tensor_fail("IntStorage", 4, 0, 1, (int64_t[]){4}, (int64_t[]){1}, d, 16,
                       "unsupported dtype (torch.IntStorage)");
    expect_tensor_fail("FloatStorage", 4, 0, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 4},
                       (int64_t[]){4, 4, 4, 4, 4, 4, 4, 4, 1}, d, 16,
                       "tensor rank 9 exceeds the maximum of 8");

    /* a size that is not an int, a storage that is not a storage */
    RAW("\x80\x02}(X\x01\0\0\0wctorch._utils\n_rebuild_tensor_v2\n(K\x00K\x00))tRu.",
        "argument 1 is an int, expected a storage");

    /* as many strides as sizes */
    bbuf b = {0};
    pk_dict_begin(&b);
    pk_str(&b, "w");
    pk_tensor_n(&b, "FloatStorage", "0", 4, 0, 2, (int64_t[]){2, 2}, 1, (int64_t[]){1});
    pk_dict_end(&b);
    expect_pkl_fail(&b, "tensor has 2 sizes but 1 strides");

    /* the same storage key declared with two sizes */
    pk_dict_begin(&b);
    pk_str(&b, "a");
    pk_ftensor(&b, 4, 0, 1, (int64_t[]){4});
    pk_str(&b, "b");
    pk_ftensor(&b, 3, 0, 1, (int64_t[]){3});
    pk_dict_end(&b);
    expect_pkl_fail(&b, "declared again with a different type or size");

    /* empty tensors carry no bytes: any offset is fine */
    pk_dict_begin(&b);
    pk_str(&b, "e");
    pk_tensor(&b, "FloatStorage", "0", 4, 1000, 2, (int64_t[]){0, 3}, (int64_t[]){7, 9});
    pk_dict_end(&b);
    zipimg z = make_pth(&b, k_four, 16, 0);
    latup_weights w;
    assert_int_equal(latup_pth_parse(z.buf, z.len, PATH, &w), LATUP_OK);
    assert_int_equal(w.t[0].numel, 0);
    latup_weights_free(&w);
    free(z.buf);
    free(b.b);
}

static void test_state_dict_names(void **state) {
    (void)state;
    bbuf b = {0};
    /* {"a.b": t, "a": {"b": t}} */
    pk_dict_begin(&b);
    pk_str(&b, "a.b");
    pk_ftensor(&b, 4, 0, 1, (int64_t[]){4});
    pk_str(&b, "a");
    pk_op(&b, '}');
    pk_str(&b, "b");
    pk_ftensor(&b, 4, 0, 1, (int64_t[]){4});
    pk_op(&b, 's');
    pk_dict_end(&b);
    expect_pkl_fail(&b, "duplicate tensor name 'a.b' after flattening");
    /* {1: t} */
    pk_dict_begin(&b);
    pk_int(&b, 1);
    pk_ftensor(&b, 4, 0, 1, (int64_t[]){4});
    pk_dict_end(&b);
    expect_pkl_fail(&b, "state dict key 0 under '<top>' is an int, expected a string");
    /* a key with a NUL */
    pk_dict_begin(&b);
    bb_add(&b, "X\x03\0\0\0a\0b", 8);
    pk_ftensor(&b, 4, 0, 1, (int64_t[]){4});
    pk_dict_end(&b);
    expect_pkl_fail(&b, "a str with a NUL byte");
    /* a name longer than 4096 bytes */
    char *longkey = malloc(5000);
    memset(longkey, 'k', 4999);
    longkey[4999] = '\0';
    pk_dict_begin(&b);
    pk_str(&b, longkey);
    pk_ftensor(&b, 4, 0, 1, (int64_t[]){4});
    pk_dict_end(&b);
    expect_pkl_fail(&b, "longer than 4096 bytes");
    free(longkey);
    /* wrappers: params_ema that is not a dict is not a wrapper */
    pk_dict_begin(&b);
    pk_str(&b, "params_ema");
    pk_op(&b, 'N');
    pk_str(&b, "params");
    pk_op(&b, '}');
    pk_str(&b, "x");
    pk_ftensor(&b, 4, 0, 1, (int64_t[]){4});
    pk_op(&b, 's');
    pk_dict_end(&b);
    zipimg z = make_pth(&b, k_four, 16, 0);
    latup_weights w;
    assert_int_equal(latup_pth_parse(z.buf, z.len, PATH, &w), LATUP_OK);
    assert_string_equal(w.wrapper, "params");
    assert_string_equal(w.t[0].name, "x");
    latup_weights_free(&w);
    free(z.buf);
    free(b.b);
}

/* ---- behaviours pinned at their edges (issue 9) ------------------------------------------------ */

/* The pickle machine alone on b, with `budget` (0: the default); the message must hold `phrase`
 * (NULL: must succeed). */
#define pk_expect(b, budget, phrase) pk_expect_(b, budget, phrase, __FILE__, __LINE__)
static size_t pk_expect_(bbuf *b, size_t budget, const char *phrase, const char *file, int line) {
    latup_pickle doc;
    latup_status st = budget ? latup_pickle_load_budget(b->b, b->n, "p", budget, &doc)
                             : latup_pickle_load(b->b, b->n, "p", &doc);
    const char *msg = st ? latup_last_error() : "loaded";
    bool ok = phrase ? st == LATUP_E_INPUT && strstr(msg, phrase) : st == LATUP_OK;
    printf("  %-8s %.160s\n", ok ? "as meant" : "NOT OK", msg);
    size_t bytes = st ? 0 : doc.bytes;
    if (!st) latup_pickle_free(&doc);
    free(b->b);
    memset(b, 0, sizeof *b);
    if (!ok) {
        print_error("%s:%d: wanted %s, got %s: %s\n", file, line, phrase ? phrase : "success",
                    latup_status_name(st), msg);
        _fail(file, line);
    }
    return bytes;
}

static void pk_begin(bbuf *b) { pk_op(b, 0x80), pk_op(b, 2); }
static void pk_repeat(bbuf *b, const char *ops, size_t n_ops, size_t times) {
    for (size_t i = 0; i < times; i++) bb_add(b, ops, n_ops);
}

/* The whitelist matches module and name together. */
static void test_whitelist_module(void **state) {
    (void)state;
    static const char *const refused[][2] = {
        {"evil", "OrderedDict"},        {"collections", "OrderedDictX"},       {"collections", "evil"},
        {"torch", "_rebuild_tensor_v2"}, {"torch._utils", "FloatStorage"},     {"torch", "OrderedDict"},
        {"collections.evil", "OrderedDict"}, {"_codecs", "decode"},            {"torch", "Storage"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "refusing pickle global '%s.%s'", refused[i][0], refused[i][1]);
        bbuf b = {0};
        pk_begin(&b), pk_global(&b, refused[i][0], refused[i][1]), pk_op(&b, '.');
        pk_expect(&b, 0, want);
        pk_begin(&b), pk_str(&b, refused[i][0]), pk_str(&b, refused[i][1]), pk_op(&b, 0x93), pk_op(&b, '.');
        pk_expect(&b, 0, want); /* STACK_GLOBAL: the same check */
    }
    bbuf b = {0};
    pk_begin(&b), pk_global(&b, "collections", "OrderedDict"), pk_op(&b, ')'), pk_op(&b, 'R'), pk_op(&b, '.');
    pk_expect(&b, 0, NULL);
    pk_begin(&b), pk_str(&b, "collections"), pk_str(&b, "OrderedDict"), pk_op(&b, 0x93), pk_op(&b, ')');
    pk_op(&b, 'R'), pk_op(&b, '.');
    pk_expect(&b, 0, NULL);
}

/* No opcode takes a value from below the innermost MARK. */
static void test_mark_floor(void **state) {
    (void)state;
    static const struct {
        const char *ops; /* after PROTO 2 */
        size_t n;
        const char *phrase;
    } cases[] = {
#define C(lit, phrase) {lit, sizeof(lit) - 1, phrase}
        C("N(2.", "underflow"),                            /* DUP */
        C("}K\x01K\x02(s.", "underflow"),                  /* SETITEM */
        C("}K\x01(K\x02s.", "underflow"),                  /* SETITEM, key below */
        C("]K\x01(a.", "underflow"),                       /* APPEND */
        C("}}(b.", "underflow"),                           /* BUILD */
        C("ccollections\nOrderedDict\n)(R.", "underflow"), /* REDUCE */
        C("ccollections\nOrderedDict\n()R.", "underflow"), /* REDUCE, callable below */
        C("X\x0b\0\0\0collectionsX\x0b\0\0\0OrderedDict(\x93.", "underflow"), /* STACK_GLOBAL */
        C("K\x01(\x85.", "underflow"),                     /* TUPLE1 */
        C("K\x01(K\x02\x86.", "underflow"),                /* TUPLE2 */
        C("K\x01K\x02(K\x03\x87.", "underflow"),           /* TUPLE3 */
        C("N(q\x00.", "underflow"),                        /* BINPUT */
        C("N(\x94.", "underflow"),                         /* MEMOIZE */
        C("N(Q.", "underflow"),                            /* BINPERSID */
        C("N(.", "underflow"),                             /* STOP */
        C("]((K\x01" "e.", "underflow"),                    /* APPENDS: the list below the outer MARK */
        C("}((K\x01K\x02u.", "underflow"),                 /* SETITEMS: the dict below the outer MARK */
        C("N(0t.", "no MARK"),                             /* POP on an empty frame takes the MARK */
#undef C
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bbuf b = {0};
        pk_begin(&b), bb_add(&b, cases[i].ops, cases[i].n);
        pk_expect(&b, 0, cases[i].phrase);
    }
    /* the same values above the MARK are fine */
    bbuf b = {0};
    pk_begin(&b), bb_add(&b, "(N2t.", 5);
    pk_expect(&b, 0, NULL);
    pk_begin(&b), bb_add(&b, "(}K\x01K\x02st.", 10);
    pk_expect(&b, 0, NULL);
    pk_begin(&b), bb_add(&b, "N(0.", 4); /* POP takes the MARK, not the None below it */
    pk_expect(&b, 0, NULL);
}

/* Every limit of the pickle machine at its documented value (accepted) and one past it (refused,
 * with a message that says what the limit is for). */
static void test_pickle_limits_at_edges(void **state) {
    (void)state;
    bbuf b = {0};
    /* the stack: N then DUPs, LATUP_PK_MAX_STACK values in all */
    pk_begin(&b), pk_op(&b, 'N'), pk_repeat(&b, "2", 1, LATUP_PK_MAX_STACK - 1), pk_op(&b, '.');
    pk_expect(&b, 0, NULL);
    pk_begin(&b), pk_op(&b, 'N'), pk_repeat(&b, "2", 1, LATUP_PK_MAX_STACK), pk_op(&b, '.');
    pk_expect(&b, 0, "stack deeper than 1048576 values, the cap that bounds the unpickler's stack");
    /* open MARKs */
    pk_begin(&b), pk_repeat(&b, "(", 1, LATUP_PK_MAX_MARKS), pk_op(&b, 'N'), pk_op(&b, '.');
    pk_expect(&b, 0, NULL);
    pk_begin(&b), pk_repeat(&b, "(", 1, LATUP_PK_MAX_MARKS + 1), pk_op(&b, 'N'), pk_op(&b, '.');
    pk_expect(&b, 0, "nests deeper than 64 MARKs, the limit on nesting");
    /* the memo index */
    pk_begin(&b), pk_op(&b, 'N'), pk_op(&b, 'r'), bb_le(&b, LATUP_PK_MAX_MEMO - 1, 4), pk_op(&b, '.');
    pk_expect(&b, 0, NULL);
    pk_begin(&b), pk_op(&b, 'N'), pk_op(&b, 'r'), bb_le(&b, LATUP_PK_MAX_MEMO, 4), pk_op(&b, '.');
    pk_expect(&b, 0, "memo index 1048576 exceeds the limit of 1048576, the cap that bounds the memo table");
    /* objects made: each N is one */
    pk_begin(&b), pk_repeat(&b, "N0", 2, LATUP_PK_MAX_VALUES - 1), pk_op(&b, 'N'), pk_op(&b, '.');
    pk_expect(&b, 0, NULL);
    pk_begin(&b), pk_repeat(&b, "N0", 2, LATUP_PK_MAX_VALUES), pk_op(&b, 'N'), pk_op(&b, '.');
    pk_expect(&b, 0, "more than 2097152 objects in the pickle, the cap on what one state dict may build");
    /* container elements: one None appended again and again through the memo */
    pk_begin(&b), bb_add(&b, "]Nq\x00" "0", 5), pk_repeat(&b, "h\x00" "a", 3, LATUP_PK_MAX_ITEMS), pk_op(&b, '.');
    pk_expect(&b, 0, NULL);
    pk_begin(&b), bb_add(&b, "]Nq\x00" "0", 5), pk_repeat(&b, "h\x00" "a", 3, LATUP_PK_MAX_ITEMS + 1), pk_op(&b, '.');
    pk_expect(&b, 0, "more than 4194304 container elements in the pickle, the cap on what one state dict may hold");
    /* one string */
    for (size_t extra = 0; extra < 2; extra++) {
        const size_t n = LATUP_PK_MAX_STR + extra;
        pk_begin(&b), pk_op(&b, 'X'), bb_le(&b, n, 4), bb_fill(&b, 'a', n), pk_op(&b, '.');
        pk_expect(&b, 0, extra ? "string of 16777217 bytes exceeds the limit of 16777216 bytes on one string" : NULL);
    }
}

/* A 16 MiB string, memoised, copied `copies` times by _codecs.encode, then a string of `pad`
 * bytes: memory grows with each copy, charged to the budget. */
static void pk_copies(bbuf *b, int copies, size_t pad) {
    pk_begin(b), pk_op(b, 'X'), bb_le(b, LATUP_PK_MAX_STR, 4), bb_fill(b, 'a', LATUP_PK_MAX_STR);
    pk_op(b, 0x94), pk_op(b, '0');
    for (int i = 0; i < copies; i++) {
        pk_global(b, "_codecs", "encode"), pk_op(b, 'h'), pk_op(b, 0), pk_str(b, "latin1");
        pk_op(b, 0x86), pk_op(b, 'R'), pk_op(b, '0');
    }
    pk_op(b, 'X'), bb_le(b, pad, 4), bb_fill(b, 'p', pad);
    pk_op(b, '0'), pk_op(b, '}'), pk_op(b, '.');
}

/* The byte budget at LATUP_PK_MAX_BYTES: a pickle that needs exactly that much loads, one byte
 * more is refused. Strings are charged their length + 1, so the pad string sets the total. */
static void test_pickle_budget(void **state) {
    (void)state;
    bbuf b = {0};
    pk_copies(&b, 14, 1);
    const size_t with_pad_1 = pk_expect(&b, SIZE_MAX, NULL);
    const size_t pad = LATUP_PK_MAX_BYTES - with_pad_1 + 1;
    assert_true(pad >= 1 && pad <= LATUP_PK_MAX_STR);
    pk_copies(&b, 14, pad);
    assert_int_equal(pk_expect(&b, 0, NULL), LATUP_PK_MAX_BYTES);
    pk_copies(&b, 14, pad + 1);
    pk_expect(&b, 0, "needs more than 268435456 bytes of memory, the budget that keeps a small file from claiming gigabytes");
    /* the 6.6 GB bomb of issue 8 stops at the budget */
    pk_copies(&b, 400, 1);
    pk_expect(&b, 0, "the budget");
    /* any budget: a pickle loads with exactly what it needs, not one byte less */
    pk_begin(&b), pk_str(&b, "abc"), pk_op(&b, '0'), pk_op(&b, '}'), pk_op(&b, '.');
    bbuf c = {0};
    bb_add(&c, b.b, b.n);
    const size_t need = pk_expect(&b, SIZE_MAX, NULL);
    bb_add(&b, c.b, c.n);
    pk_expect(&b, need, NULL);
    pk_expect(&c, need - 1, "the budget");
    /* every value the machine makes is charged: one more int (pushed, then popped) costs one value */
    pk_begin(&b), pk_op(&b, '}'), pk_op(&b, '.');
    const size_t base = pk_expect(&b, SIZE_MAX, NULL);
    pk_begin(&b), pk_op(&b, '}'), pk_op(&b, 'K'), pk_op(&b, 5), pk_op(&b, '0'), pk_op(&b, '.');
    assert_int_equal(pk_expect(&b, SIZE_MAX, NULL), base + sizeof(latup_pk));
}

/* The stream sizer (how far a pipe or gzip stream is read): a ZIP64 local header whose extra
 * field holds exactly the two 8-byte sizes is walked to the end record; a ZIP64 end record whose
 * size wraps the offset around is not followed (only the cap bounds that stream). */
static void test_stream_sizer_edges(void **state) {
    (void)state;
    bbuf b = {0};
    bb_le(&b, 0x04034b50u, 4), bb_le(&b, 45, 2), bb_le(&b, 0, 2), bb_le(&b, 0, 2), bb_le(&b, 0, 4);
    bb_le(&b, 0, 4), bb_le(&b, 0xFFFFFFFFu, 4), bb_le(&b, 0xFFFFFFFFu, 4), bb_le(&b, 1, 2), bb_le(&b, 20, 2);
    bb_add(&b, "w", 1);
    bb_le(&b, 1, 2), bb_le(&b, 16, 2), bb_le(&b, 5, 8), bb_le(&b, 5, 8); /* ZIP64 extra: usize, csize */
    bb_add(&b, "abcde", 5);
    bb_le(&b, 0x06054b50u, 4), bb_le(&b, 0, 2), bb_le(&b, 0, 2), bb_le(&b, 0, 2), bb_le(&b, 0, 2);
    bb_le(&b, 0, 4), bb_le(&b, 0, 4), bb_le(&b, 0, 2);
    latup_size sz = {0};
    latup_zip_stream_size(b.b, b.n, &sz);
    printf("  ZIP64 local header, 16-byte extra: known %d total %llu (file %zu bytes)\n", sz.known,
           (unsigned long long)sz.total, b.n);
    assert_int_equal(sz.known, 1);
    assert_int_equal(sz.total, b.n);
    free(b.b);
    memset(&b, 0, sizeof b);
    /* a locator, then a ZIP64 end record whose size brings the walk back to byte 0 */
    bb_le(&b, 0x07064b50u, 4), bb_add(&b, "0123456789abcdef", 16);
    bb_le(&b, 0x06064b50u, 4), bb_le(&b, (uint64_t)0 - 32, 8), bb_add(&b, "0123456789abcdefghij", 20);
    memset(&sz, 0, sizeof sz);
    latup_zip_stream_size(b.b, b.n, &sz);
    printf("  ZIP64 end record sized to wrap: known %d need %llu\n", sz.known, (unsigned long long)sz.need);
    assert_int_equal(sz.known, 0);
    assert_true(sz.need == UINT64_MAX);
    free(b.b);
}

/* A .pth whose pickle is b (no storage): must load, or fail with phrase. */
#define pth_expect(b, phrase) pth_expect_(b, phrase, __FILE__, __LINE__)
static void pth_expect_(bbuf *b, const char *phrase, const char *file, int line) {
    zipimg z = make_pth(b, k_four, sizeof k_four, 8);
    if (phrase) {
        expect_fail_(z.buf, z.len, phrase, file, line);
    } else {
        latup_weights w;
        latup_status st = latup_pth_parse(z.buf, z.len, PATH, &w);
        printf("  %-8s %.160s\n", st ? "NOT OK" : "loaded", st ? latup_last_error() : "");
        if (st) _fail(file, line);
        latup_weights_free(&w);
    }
    free(z.buf);
    free(b->b);
    memset(b, 0, sizeof *b);
}

/* `depth` dicts, each the only value of the one above, the innermost holding tensor "w". */
static void pk_nested(bbuf *b, int depth) {
    pk_begin(b), pk_op(b, '}');
    for (int i = 1; i < depth; i++) pk_str(b, "k"), pk_op(b, '}');
    pk_str(b, "w"), pk_ftensor(b, 4, 0, 1, (int64_t[]){4});
    for (int i = 0; i < depth; i++) pk_op(b, 's');
    pk_op(b, '.');
}

/* {"k": None} entries, `n` of them (one memoised key and value). */
static void pk_many_entries(bbuf *b, size_t n) {
    pk_begin(b), pk_op(b, '}'), pk_str(b, "k"), bb_add(b, "q\x01" "0Nq\x02" "0", 7);
    pk_repeat(b, "h\x01h\x02s", 5, n);
    pk_op(b, '.');
}

/* 128 x 128 tensor names "<p_i>.<s_j>" of 4095 bytes each (4096 with the NUL: 64 MiB in all),
 * made from 256 keys through one memoised inner dict; with `one_more`, one inner key is a byte
 * longer, through a second inner dict under the first prefix. */
static void pk_name_table(bbuf *b, int one_more) {
    char key[2049];
    pk_begin(b);
    pk_ftensor(b, 4, 0, 1, (int64_t[]){4}), pk_op(b, 'r'), bb_le(b, 1, 4), pk_op(b, '0'); /* memo 1 */
    for (int d = 0; d < 1 + one_more; d++) { /* inner dicts: memo 2 (and 3) */
        pk_op(b, '}');
        for (int j = 0; j < 128; j++) {
            int len = 2047 + (d == 1 && j == 0);
            memset(key, 'a' + j % 26, (size_t)len), key[len] = '\0';
            key[0] = (char)('A' + j % 26), key[1] = (char)('A' + j / 26);
            pk_str(b, key), pk_op(b, 'j'), bb_le(b, 1, 4), pk_op(b, 's');
        }
        pk_op(b, 'r'), bb_le(b, 2 + (uint64_t)d, 4), pk_op(b, '0');
    }
    pk_op(b, '}');
    for (int i = 0; i < 128; i++) {
        memset(key, 'p', 2047), key[2047] = '\0';
        key[0] = (char)('A' + i % 26), key[1] = (char)('A' + i / 26);
        pk_str(b, key), pk_op(b, 'j'), bb_le(b, (one_more && i == 0) ? 3 : 2, 4), pk_op(b, 's');
    }
    pk_op(b, '.');
}

/* The .pth reader's own limits at their values and one past. */
static void test_pth_limits_at_edges(void **state) {
    (void)state;
    bbuf b = {0};
    pk_nested(&b, 64);
    pth_expect(&b, NULL);
    pk_nested(&b, 65);
    pth_expect(&b, "state dict nests deeper than 64 dicts, the limit on nesting");
    /* one name of 4096 bytes, then 4097 */
    for (int extra = 0; extra < 2; extra++) {
        char name[4098];
        memset(name, 'n', sizeof name);
        name[4096 + extra] = '\0';
        pk_dict_begin(&b), pk_str(&b, name), pk_ftensor(&b, 4, 0, 1, (int64_t[]){4}), pk_dict_end(&b);
        pth_expect(&b, extra ? "is longer than 4096 bytes, the most a tensor name may have" : NULL);
    }
    /* entries visited while flattening */
    pk_many_entries(&b, (size_t)1 << 20);
    pth_expect(&b, NULL);
    pk_many_entries(&b, ((size_t)1 << 20) + 1);
    pth_expect(&b, "state dict has more than 1048576 entries, the cap on the work of flattening it");
    /* all names together: 64 MiB, then 64 MiB + 1 */
    pk_name_table(&b, 0);
    pth_expect(&b, NULL);
    pk_name_table(&b, 1);
    pth_expect(&b, "tensor names exceed 67108864 bytes in all, the cap on the name table");
    /* data.pkl of 64 MiB (FRAME opcodes, deflated), then one byte more */
    for (int extra = 0; extra < 2; extra++) {
        const size_t total = ((size_t)64 << 20) + (size_t)extra;
        pk_begin(&b);
        size_t body = total - 2 - 2; /* PROTO 2 ... "}." */
        size_t frames = (body - 9) / 9, pad = body - 9 * frames; /* 9..17 bytes of "N0" and "K\x00" "0" */
        for (size_t i = 0; i < frames; i++) pk_op(&b, 0x95), bb_le(&b, 0, 8);
        if (pad % 2) bb_add(&b, "K\x00" "0", 3), pad -= 3;
        pk_repeat(&b, "N0", 2, pad / 2);
        pk_op(&b, '}'), pk_op(&b, '.');
        assert_int_equal(b.n, total);
        pth_expect(&b, extra ? "data.pkl is 67108865 bytes, over the 67108864-byte limit on the pickle" : NULL);
    }
}

/* The declared size of a deflated entry against what deflate can make of its compressed bytes:
 * 1032 to 1 at most, checked when the archive is opened. */
static void test_zip_ratio_at_edge(void **state) {
    (void)state;
    static const uint8_t zeros[4096];
    bbuf d = {0};
    raw_deflate(zeros, sizeof zeros, &d);
    for (int extra = 0; extra < 2; extra++) {
        zent e[1] = {{"x", zeros, sizeof zeros, 8}};
        zipimg z = make_zip(e, 1);
        const uint64_t csize = d.n, usize = csize * 1032 + (uint64_t)extra;
        wr_le(z.buf + z.central[0] + 24, usize, 4);
        latup_zip zip;
        latup_status st = latup_zip_open(&zip, z.buf, z.len, "z.zip");
        printf("  usize %llu from %llu: %s\n", (unsigned long long)usize, (unsigned long long)csize,
               st ? latup_last_error() : "opened");
        if (extra) {
            assert_int_equal(st, LATUP_E_INPUT);
            assert_non_null(strstr(latup_last_error(), "more than deflate can produce"));
        } else {
            assert_int_equal(st, LATUP_OK);
            latup_zip_close(&zip);
        }
        free(z.buf);
    }
    free(d.b);
}

/* ZIP_MAX_ENTRIES (2^20) entries open; one more is refused before the table is allocated. */
static void test_zip_entries_at_edge(void **state) {
    (void)state;
    for (int extra = 0; extra < 2; extra++) {
        const size_t n = ((size_t)1 << 20) + (size_t)extra;
        bbuf b = {0}, cd = {0};
        for (size_t i = 0; i < n; i++) {
            uint8_t name[3] = {(uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
            size_t local = b.n;
            bb_le(&b, 0x04034b50, 4), bb_le(&b, 20, 2), bb_le(&b, 0, 2), bb_le(&b, 0, 2), bb_le(&b, 0, 4);
            bb_le(&b, 0, 4), bb_le(&b, 0, 4), bb_le(&b, 0, 4), bb_le(&b, 3, 2), bb_le(&b, 0, 2), bb_add(&b, name, 3);
            bb_le(&cd, 0x02014b50, 4), bb_le(&cd, 20, 2), bb_le(&cd, 20, 2), bb_le(&cd, 0, 2), bb_le(&cd, 0, 2);
            bb_le(&cd, 0, 4), bb_le(&cd, 0, 4), bb_le(&cd, 0, 4), bb_le(&cd, 0, 4), bb_le(&cd, 3, 2);
            bb_le(&cd, 0, 2), bb_le(&cd, 0, 2), bb_le(&cd, 0, 2), bb_le(&cd, 0, 2), bb_le(&cd, 0, 4);
            bb_le(&cd, local, 4), bb_add(&cd, name, 3);
        }
        const size_t cd_off = b.n;
        bb_add(&b, cd.b, cd.n);
        const size_t z64 = b.n; /* ZIP64 record and locator: the count does not fit 16 bits */
        bb_le(&b, 0x06064b50, 4), bb_le(&b, 44, 8), bb_le(&b, 45, 2), bb_le(&b, 45, 2), bb_le(&b, 0, 4);
        bb_le(&b, 0, 4), bb_le(&b, n, 8), bb_le(&b, n, 8), bb_le(&b, cd.n, 8), bb_le(&b, cd_off, 8);
        bb_le(&b, 0x07064b50, 4), bb_le(&b, 0, 4), bb_le(&b, z64, 8), bb_le(&b, 1, 4);
        bb_le(&b, 0x06054b50, 4), bb_le(&b, 0, 4), bb_le(&b, 0xFFFF, 2), bb_le(&b, 0xFFFF, 2);
        bb_le(&b, 0xFFFFFFFF, 4), bb_le(&b, 0xFFFFFFFF, 4), bb_le(&b, 0, 2);
        latup_zip zip;
        latup_status st = latup_zip_open(&zip, b.b, b.n, "z.zip");
        printf("  %zu entries: %s\n", n, st ? latup_last_error() : "opened");
        if (extra) {
            assert_int_equal(st, LATUP_E_INPUT);
            assert_non_null(strstr(latup_last_error(), "1048577 zip entries exceed the limit of 1048576, the cap on the directory table"));
        } else {
            assert_int_equal(st, LATUP_OK);
            assert_int_equal(zip.n, n);
            latup_zip_close(&zip);
        }
        free(b.b), free(cd.b);
    }
}

/* ---- sweeps ------------------------------------------------------------------------------------ */

static void test_truncation_sweep(void **state) {
    (void)state;
    const char *files[] = {"ema_f32.pth", "deflate.pth", "zip64_central.pth", "zip64_local.pth",
                           "proto4.pth"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[256];
        snprintf(path, sizeof path, DATA_DIR "%s", files[f]);
        size_t len;
        uint8_t *full = read_all(path, &len);
        assert_non_null(full);
        size_t bad = 0;
        for (size_t n = 0; n < len; n++) {
            uint8_t *b = malloc(n ? n : 1); /* exact size, so ASan sees any read past the end */
            memcpy(b, full, n);
            latup_weights w;
            latup_status st = latup_pth_parse(b, n, PATH, &w);
            if (st != LATUP_E_INPUT || strncmp(latup_last_error(), PATH ": ", strlen(PATH) + 2) != 0) {
                if (!bad)
                    print_error("%s cut to %zu bytes: %s: %s\n", files[f], n, latup_status_name(st),
                                latup_last_error());
                bad++;
                if (st == LATUP_OK) latup_weights_free(&w);
            }
            free(b);
        }
        printf("  %-18s every truncation 0..%zu rejected: %s\n", files[f], len - 1, bad ? "NOT OK" : "OK");
        assert_int_equal(bad, 0);
        free(full);
    }
}

/* Every byte flipped in turn: any outcome but a crash, leak or a status other than OK/INPUT. */
static void test_byte_flip_sweep(void **state) {
    (void)state;
    const char *files[] = {"shared.pth", "deflate.pth", "nested.pth", "proto4.pth"};
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        char path[256];
        snprintf(path, sizeof path, DATA_DIR "%s", files[f]);
        size_t len;
        uint8_t *b = read_all(path, &len);
        assert_non_null(b);
        size_t n_ok = 0, n_bad = 0;
        for (size_t i = 0; i < len; i++)
            for (int m = 0; m < 3; m++) {
                static const uint8_t masks[3] = {0x01, 0x80, 0xFF};
                b[i] ^= masks[m];
                latup_weights w;
                latup_status st = latup_pth_parse(b, len, PATH, &w);
                if (st == LATUP_OK) {
                    n_ok++;
                    latup_weights_free(&w);
                } else if (st != LATUP_E_INPUT) {
                    print_error("%s byte %zu ^ %02x: %s: %s\n", files[f], i, masks[m], latup_status_name(st),
                                latup_last_error());
                    n_bad++;
                }
                b[i] ^= masks[m];
            }
        printf("  %-12s %zu flips: %zu still load, %zu rejected, %zu wrong status\n", files[f], 3 * len, n_ok,
               3 * len - n_ok - n_bad, n_bad);
        assert_int_equal(n_bad, 0);
        free(b);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),         cmocka_unit_test(test_shared_storage),
        cmocka_unit_test(test_zip_api),          cmocka_unit_test(test_pickle_values),
        cmocka_unit_test(test_crafted_baseline), cmocka_unit_test(test_zip_structure),
        cmocka_unit_test(test_zip_entries),      cmocka_unit_test(test_zip_deflate),
        cmocka_unit_test(test_zip_overlap),      cmocka_unit_test(test_zip64_hostile),
        cmocka_unit_test(test_pickle_globals),   cmocka_unit_test(test_pickle_machine),
        cmocka_unit_test(test_pickle_limits),    cmocka_unit_test(test_tensor_checks),
        cmocka_unit_test(test_state_dict_names), cmocka_unit_test(test_truncation_sweep),
        cmocka_unit_test(test_byte_flip_sweep),  cmocka_unit_test(test_whitelist_module),
        cmocka_unit_test(test_mark_floor),       cmocka_unit_test(test_pickle_limits_at_edges),
        cmocka_unit_test(test_pickle_budget),    cmocka_unit_test(test_pth_limits_at_edges),
        cmocka_unit_test(test_zip_ratio_at_edge), cmocka_unit_test(test_zip_entries_at_edge), cmocka_unit_test(test_stream_sizer_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
