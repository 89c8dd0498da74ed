/* test_png.c — the PNG reader and writer: write -> read round trips (exact after quantisation, one
 * and several IDAT chunks, 8 and 16 bits), the float -> byte mappings, reference files made by
 * other tools (tests/data/png/, tools/golden/make_png_fixtures.py; 8- and 16-bit), every color type
 * from PNGs built here with every filter type, text chunks parsed back, one malformed file per
 * rejection rule (status and a key word of the message), a truncation sweep over every prefix,
 * and atomic write failures (nothing left behind). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tmpdir.h"

#include "io/png.h"
#include "test_util.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define PATH "case.png"





static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
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

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* ---- building PNGs by hand --------------------------------------------------------------------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void b_put(bytes *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void b_be32(bytes *b, uint32_t v) {
    uint8_t q[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    b_put(b, q, 4);
}

static void b_sig(bytes *b) { b_put(b, "\x89PNG\r\n\x1a\n", 8); }

static void b_chunk(bytes *b, const char *type, const void *data, size_t n) {
    b_be32(b, (uint32_t)n);
    b_put(b, type, 4);
    b_put(b, data, n);
    uLong crc = crc32(0L, (const Bytef *)type, 4);
    if (n) crc = crc32(crc, data, (uInt)n);
    b_be32(b, (uint32_t)crc);
}

static void b_ihdr(bytes *b, uint32_t W, uint32_t H, int depth, int color, int comp, int filter,
                   int interlace) {
    uint8_t d[13] = {(uint8_t)(W >> 24), (uint8_t)(W >> 16), (uint8_t)(W >> 8), (uint8_t)W,
                     (uint8_t)(H >> 24), (uint8_t)(H >> 16), (uint8_t)(H >> 8), (uint8_t)H,
                     (uint8_t)depth,     (uint8_t)color,     (uint8_t)comp,      (uint8_t)filter,
                     (uint8_t)interlace};
    b_chunk(b, "IHDR", d, 13);
}

static void b_iend(bytes *b) { b_chunk(b, "IEND", NULL, 0); }

/* signature and the IHDR of an 8x6, 8-bit image of the given color type */
static void b_head(bytes *b, int color) {
    b_sig(b);
    b_ihdr(b, 8, 6, 8, color, 0, 0, 0);
}

static int bpp_of(int color) { return color == 2 ? 3 : color == 4 ? 2 : color == 6 ? 4 : 1; }

/* The encoder side of the five filters, written from the spec (ISO 15948, 9.2) independently of
 * the decoder under test: row r uses ftype[r]. */
static int ref_paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

static uint8_t *filter_rows(const uint8_t *pix, int W, int H, int bpp, const int *ftype, size_t *len) {
    size_t n = (size_t)W * (size_t)bpp, stride = n + 1;
    *len = stride * (size_t)H;
    uint8_t *raw = malloc(*len ? *len : 1);
    assert_non_null(raw);
    for (int y = 0; y < H; y++) {
        const uint8_t *x = pix + (size_t)y * n, *up = y ? x - n : NULL;
        uint8_t *o = raw + (size_t)y * stride;
        o[0] = (uint8_t)ftype[y];
        for (size_t i = 0; i < n; i++) {
            int a = i >= (size_t)bpp ? x[i - (size_t)bpp] : 0;
            int b = up ? up[i] : 0;
            int c = up && i >= (size_t)bpp ? up[i - (size_t)bpp] : 0;
            int pred = 0;
            switch (ftype[y]) {
            case 1: pred = a; break;
            case 2: pred = b; break;
            case 3: pred = (a + b) / 2; break;
            case 4: pred = ref_paeth(a, b, c); break;
            default: pred = 0; /* 0, and deliberately invalid types */
            }
            o[1 + i] = (uint8_t)(x[i] - pred);
        }
    }
    return raw;
}

static uint8_t *zcompress(const uint8_t *d, size_t n, size_t *out_len) {
    uLongf cap = compressBound((uLong)n);
    uint8_t *z = malloc(cap);
    assert_non_null(z);
    assert_int_equal(compress2(z, &cap, d, (uLong)n, 9), Z_OK);
    *out_len = cap;
    return z;
}

/* IDAT chunks carrying z[0..n), split into `pieces` consecutive chunks (the last takes the rest). */
static void b_idats(bytes *b, const uint8_t *z, size_t n, int pieces) {
    size_t step = pieces > 1 ? n / (size_t)pieces : n, at = 0;
    for (int k = 0; k < pieces; k++) {
        size_t m = k == pieces - 1 ? n - at : step;
        b_chunk(b, "IDAT", z + at, m);
        at += m;
    }
}

typedef struct {
    int W, H, color;
    const uint8_t *pix;    /* H x W x bpp samples */
    const int *ftype;      /* per row; NULL: row % 5 */
    const uint8_t *plte;   /* 3 x n_plte bytes, for color type 3 */
    int n_plte;
    int pieces;            /* IDAT chunks; 0 means 1 */
} spec;

/* A valid PNG per `s`, with ancillary chunks sprinkled in that the reader must skip. */
static uint8_t *make_png(const spec *s, size_t *len) {
    int bpp = bpp_of(s->color);
    int *ft = malloc(sizeof(int) * (size_t)s->H);
    assert_non_null(ft);
    for (int y = 0; y < s->H; y++) ft[y] = s->ftype ? s->ftype[y] : y % 5;
    size_t rl, zl;
    uint8_t *raw = filter_rows(s->pix, s->W, s->H, bpp, ft, &rl);
    uint8_t *z = zcompress(raw, rl, &zl);
    bytes b = {0};
    b_sig(&b);
    b_ihdr(&b, (uint32_t)s->W, (uint32_t)s->H, 8, s->color, 0, 0, 0);
    b_chunk(&b, "gAMA", "\x00\x00\xb1\x8f", 4);
    if (s->plte) {
        b_chunk(&b, "PLTE", s->plte, 3 * (size_t)s->n_plte);
        b_chunk(&b, "tRNS", "\x00\x80", 2); /* ignored: alpha is dropped */
    }
    b_idats(&b, z, zl, s->pieces ? s->pieces : 1);
    b_chunk(&b, "tEXt", "Comment\0after", 13);
    b_iend(&b);
    free(ft);
    free(raw);
    free(z);
    *len = b.n;
    return b.p;
}

/* Parses a heap copy of exactly n bytes, so ASan sees any read past the end. */
static latup_status parse_exact(const uint8_t *buf, size_t n, latup_tensor *t) {
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n) memcpy(copy, buf, n);
    latup_status st = latup_png_parse(copy, n, PATH, t);
    free(copy);
    return st;
}

static void expect_reject_buf(const uint8_t *buf, size_t n, const char *word) {
    latup_tensor t;
    latup_status st = parse_exact(buf, n, &t);
    const char *msg = latup_last_error();
    bool ok = st == LATUP_E_INPUT && strstr(msg, word) && strncmp(msg, PATH ": ", strlen(PATH) + 2) == 0;
    printf("reject %-40s %s  (%s)\n", word, ok ? "OK" : "NOT OK", msg);
    if (!ok) {
        print_error("status %d, message \"%s\"; wanted \"%s\"\n", st, msg, word);
        if (!st) latup_tensor_free(&t);
        fail();
    }
    assert_null(t.data);
    assert_int_equal(t.ndim, 0);
}

static void expect_reject(bytes *b, const char *word) {
    expect_reject_buf(b->p, b->n, word);
    free(b->p);
    memset(b, 0, sizeof *b);
}

static uint8_t *random_pixels(tu_rng *r, size_t n) {
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)tu_next_u64(r);
    return p;
}

/* Expected tensor of a hand-made image, from the pixel samples directly. */
static void expect_pixels(const char *what, const latup_tensor *t, const spec *s) {
    assert_int_equal(t->ndim, 3);
    assert_int_equal(t->shape[0], 3);
    assert_int_equal(t->shape[1], s->H);
    assert_int_equal(t->shape[2], s->W);
    size_t HW = (size_t)s->W * (size_t)s->H;
    int bpp = bpp_of(s->color);
    float *want = malloc(3 * HW * sizeof(float));
    assert_non_null(want);
    for (size_t i = 0; i < HW; i++)
        for (int c = 0; c < 3; c++) {
            const uint8_t *px = s->pix + i * (size_t)bpp;
            int v = s->color == 3 ? s->plte[3 * px[0] + c] : (s->color == 0 || s->color == 4) ? px[0] : px[c];
            want[(size_t)c * HW + i] = (float)v / 255.0f;
        }
    char shape[64];
    snprintf(shape, sizeof shape, "color %d, %dx%d", s->color, s->W, s->H);
    assert_true(tu_check_exact(what, shape, t->data, want, 3 * HW));
    free(want);
}

/* ---- round trips ------------------------------------------------------------------------------ */

static float quant_unit(float x) {
    float y = x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x;
    return (float)lroundf(y * 255.0f) / 255.0f;
}

static void roundtrip(tu_rng *r, int ndim, int H, int W, bool noise) {
    int64_t shape[4] = {1, 3, H, W};
    latup_tensor t, u;
    assert_int_equal(latup_tensor_alloc(&t, ndim, ndim == 4 ? shape : shape + 1), LATUP_OK);
    size_t n = (size_t)latup_tensor_numel(&t), HW = (size_t)H * (size_t)W;
    for (size_t i = 0; i < n; i++) {
        size_t c = i / HW, p = i % HW, y = p / (size_t)W, x = p % (size_t)W;
        /* smooth content (where filters matter) or noise (incompressible: several IDATs) */
        t.data[i] = noise ? tu_uniform(r, -0.2f, 1.2f)
                          : (float)((x * 3 + y * 5 + c * 40) % 256) / 255.0f + tu_uniform(r, -0.01f, 0.01f);
    }
    t.data[0] = -3.0f;
    t.data[n - 1] = 7.0f; /* clamps to 1 */
    const char *p = tmp_path("rt.png");
    assert_int_equal(latup_png_write(p, &t, LATUP_PIXELS_UNIT, 8), LATUP_OK);
    latup_status st = latup_png_read(p, &u);
    if (st) print_error("%s\n", latup_last_error());
    assert_int_equal(st, LATUP_OK);
    assert_int_equal(u.ndim, 3);
    assert_int_equal(u.shape[0], 3);
    assert_int_equal(u.shape[1], H);
    assert_int_equal(u.shape[2], W);
    float *want = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) want[i] = quant_unit(t.data[i]);
    char shape_s[96];
    size_t flen;
    uint8_t *f = slurp(p, &flen);
    int idats = 0;
    for (size_t pos = 8; pos + 8 <= flen;) {
        uint32_t cl =
            (uint32_t)f[pos] << 24 | (uint32_t)f[pos + 1] << 16 | (uint32_t)f[pos + 2] << 8 | f[pos + 3];
        idats += memcmp(f + pos + 4, "IDAT", 4) == 0;
        pos += 12 + cl;
    }
    free(f);
    snprintf(shape_s, sizeof shape_s, "[%s3,%d,%d] %s, %zu bytes, %d IDAT", ndim == 4 ? "1," : "", H, W,
             noise ? "noise" : "smooth", flen, idats);
    assert_true(tu_check_exact("png write->read", shape_s, u.data, want, n));
    if (noise && HW * 3 > ((size_t)3 << 20)) assert_true(idats >= 2); /* split at 1 MiB */
    free(want);
    latup_tensor_free(&t);
    latup_tensor_free(&u);
}

static void test_roundtrip(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(1);
    roundtrip(&r, 3, 1, 1, false);
    roundtrip(&r, 3, 1, 17, false);
    roundtrip(&r, 3, 19, 1, true);
    roundtrip(&r, 4, 23, 37, false);
    roundtrip(&r, 3, 64, 48, true);
    roundtrip(&r, 3, 1100, 1000, true); /* ~3.3 MB of noise: several IDAT chunks */
}

/* write_rgb8 keeps bytes exactly; every byte value appears. */
static void test_rgb8_exact(void **state) {
    (void)state;
    const int H = 16, W = 48;
    uint8_t rgb[16 * 48 * 3];
    for (int i = 0; i < H * W * 3; i++) rgb[i] = (uint8_t)(i * 7 + i / 97);
    assert_int_equal(latup_png_write_rgb8(tmp_path("b.png"), rgb, H, W), LATUP_OK);
    latup_tensor u;
    assert_int_equal(latup_png_read(tmp_path("b.png"), &u), LATUP_OK);
    float want[16 * 48 * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) want[(c * H + y) * W + x] = (float)rgb[(y * W + x) * 3 + c] / 255.0f;
    assert_true(tu_check_exact("png rgb8 write->read", "[16,48] all byte values", u.data, want, 3 * 16 * 48));
    latup_tensor_free(&u);
}

/* A file that ends inside the 12 bytes of a chunk's frame (length, type, CRC) is refused as a
 * truncated chunk, naming the byte where it starts and how many bytes are left. */
static void test_truncated_chunk_frame(void **state) {
    (void)state;
    size_t n;
    uint8_t *f = slurp("tests/data/png/rgb_pil.png", &n);
    for (size_t cut = 1; cut <= 11; cut++) { /* IEND is the last 12 bytes: keep 12 - cut of it */
        latup_tensor t;
        latup_status st = latup_png_parse(f, n - cut, "t.png", &t);
        char want[96];
        snprintf(want, sizeof want, "truncated chunk at byte %zu: %zu bytes left", n - 12, 12 - cut);
        printf("  cut %2zu: %s\n", cut, st ? latup_last_error() : "parsed");
        assert_int_equal(st, LATUP_E_INPUT);
        assert_non_null(strstr(latup_last_error(), want));
    }
    free(f);
}

/* A 16-bit RGB PNG, decoded here independently of src/io/png.c: chunks, zlib, the five filters
 * with 6 bytes per pixel. Returns the samples [H,W,3]. */
static uint16_t *decode_rgb16(const char *path, int *H, int *W) {
    size_t n;
    uint8_t *f = slurp(path, &n);
    assert_memory_equal(f, "\x89PNG\r\n\x1a\n", 8);
    uint8_t *z = malloc(n);
    size_t zn = 0;
    for (size_t pos = 8; pos + 12 <= n;) {
        uint32_t len = (uint32_t)f[pos] << 24 | (uint32_t)f[pos + 1] << 16 | (uint32_t)f[pos + 2] << 8 | f[pos + 3];
        const uint8_t *type = f + pos + 4, *d = f + pos + 8;
        assert_int_equal((uint32_t)crc32(0, type, 4 + len),
                         (uint32_t)d[len] << 24 | (uint32_t)d[len + 1] << 16 | (uint32_t)d[len + 2] << 8 | d[len + 3]);
        if (!memcmp(type, "IHDR", 4)) {
            *W = (int)((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]);
            *H = (int)((uint32_t)d[4] << 24 | (uint32_t)d[5] << 16 | (uint32_t)d[6] << 8 | d[7]);
            assert_int_equal(d[8], 16); /* bit depth */
            assert_int_equal(d[9], 2);  /* RGB */
            assert_int_equal(d[12], 0); /* not interlaced */
        }
        if (!memcmp(type, "IDAT", 4)) memcpy(z + zn, d, len), zn += len;
        pos += 12 + len;
    }
    const size_t stride = (size_t)*W * 6, raw_n = (stride + 1) * (size_t)*H;
    uint8_t *raw = malloc(raw_n), *img = calloc(stride * (size_t)*H, 1);
    uLongf got = (uLongf)raw_n;
    assert_int_equal(uncompress(raw, &got, z, (uLong)zn), Z_OK);
    assert_int_equal(got, raw_n);
    for (int y = 0; y < *H; y++) {
        const uint8_t *in = raw + (size_t)y * (stride + 1) + 1;
        uint8_t *o = img + (size_t)y * stride, *up = y ? o - stride : NULL;
        int ft = in[-1];
        for (size_t i = 0; i < stride; i++) {
            int a = i >= 6 ? o[i - 6] : 0, b = up ? up[i] : 0, c = up && i >= 6 ? up[i - 6] : 0;
            int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
            int paeth = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
            int pred = ft == 0 ? 0 : ft == 1 ? a : ft == 2 ? b : ft == 3 ? (a + b) / 2 : paeth;
            assert_true(ft >= 0 && ft <= 4);
            o[i] = (uint8_t)(in[i] + pred);
        }
    }
    uint16_t *px = malloc((size_t)*H * (size_t)*W * 3 * sizeof *px);
    for (size_t i = 0; i < (size_t)*H * (size_t)*W * 3; i++) px[i] = (uint16_t)(img[2 * i] << 8 | img[2 * i + 1]);
    free(f), free(z), free(raw), free(img);
    return px;
}

/* --png-bits 16: every sample is round(clamp(.) * 65535), big-endian, in both ranges; and latup's
 * reader gives back exactly sample / 65535 for each. */
static void test_write_16bit(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(16);
    const int H = 37, W = 53;
    int64_t shape[3] = {3, H, W};
    latup_tensor t;
    assert_int_equal(latup_tensor_alloc(&t, 3, shape), LATUP_OK);
    for (int64_t i = 0; i < latup_tensor_numel(&t); i++) t.data[i] = tu_uniform(&r, -1.3f, 1.3f);
    t.data[0] = 0.0f; /* exactly mid-grey in the signed range: 32767.5 rounds to even */
    for (int range = 0; range < 2; range++) {
        const char *p = tmp_path("w16.png");
        assert_int_equal(latup_png_write(p, &t, (latup_pixel_range)range, 16), LATUP_OK);
        int h = 0, w = 0;
        uint16_t *px = decode_rgb16(p, &h, &w);
        assert_int_equal(h, H);
        assert_int_equal(w, W);
        int bad = 0;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < H * W; i++) {
                float x = t.data[(size_t)c * H * W + (size_t)i];
                float y = range ? x * 0.5f : x;
                y = range ? y + 0.5f : y;
                y = y < 0 ? 0 : y > 1 ? 1 : y;
                double v = (double)(y * 65535.0f), want = range ? nearbyint(v) : floor(v + 0.5);
                bad += px[(size_t)i * 3 + (size_t)c] != (uint16_t)want;
            }
        if (range) assert_int_equal(px[0], 32768); /* 32767.5 to even */
        printf("png 16-bit %s range: %d of %d samples differ from round(clamp(x) * 65535)\n",
               range ? "signed" : "unit", bad, 3 * H * W);
        assert_int_equal(bad, 0);
        latup_tensor back;
        latup_status st = latup_png_read(p, &back);
        if (st) print_error("%s\n", latup_last_error());
        assert_int_equal(st, LATUP_OK);
        assert_int_equal(back.ndim, 3);
        assert_int_equal(back.shape[0], 3);
        assert_int_equal(back.shape[1], H);
        assert_int_equal(back.shape[2], W);
        int off = 0;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < H * W; i++)
                off += back.data[(size_t)c * H * W + (size_t)i] != (float)px[(size_t)i * 3 + (size_t)c] / 65535.0f;
        printf("png 16-bit %s range read back: %d of %d values differ from sample / 65535\n",
               range ? "signed" : "unit", off, 3 * H * W);
        assert_int_equal(off, 0);
        latup_tensor_free(&back);
        free(px);
    }
    latup_tensor_free(&t);
}

/* ---- text chunks -------------------------------------------------------------------------------- */

typedef struct {
    char type[5];
    char key[80];
    char *text;
    int before_idat;
} text_chunk;

/* The tEXt and iTXt chunks of a PNG file, walked here chunk by chunk (lengths, CRCs, the iTXt
 * header), not through src/io/png.c. Returns how many, at most max. */
static int read_texts(const char *path, text_chunk *out, int max) {
    size_t n;
    uint8_t *f = slurp(path, &n);
    assert_memory_equal(f, "\x89PNG\r\n\x1a\n", 8);
    int k = 0, seen_idat = 0;
    for (size_t pos = 8; pos + 12 <= n;) {
        uint32_t len = (uint32_t)f[pos] << 24 | (uint32_t)f[pos + 1] << 16 | (uint32_t)f[pos + 2] << 8 | f[pos + 3];
        assert_true(pos + 12 + len <= n);
        const uint8_t *type = f + pos + 4, *d = f + pos + 8;
        assert_int_equal((uint32_t)crc32(0, type, 4 + len),
                         (uint32_t)d[len] << 24 | (uint32_t)d[len + 1] << 16 | (uint32_t)d[len + 2] << 8 | d[len + 3]);
        if (!memcmp(type, "IDAT", 4)) seen_idat = 1;
        const int itxt = !memcmp(type, "iTXt", 4);
        if ((itxt || !memcmp(type, "tEXt", 4)) && k < max) {
            const uint8_t *nul = memchr(d, 0, len);
            assert_non_null(nul);
            size_t kl = (size_t)(nul - d), at = kl + 1;
            assert_true(kl >= 1 && kl <= 79);
            if (itxt) { /* flag, method, language NUL, translated keyword NUL */
                assert_true(at + 2 <= len);
                assert_int_equal(d[at], 0); /* uncompressed */
                assert_int_equal(d[at + 1], 0);
                at += 2;
                for (int z = 0; z < 2; z++) {
                    const uint8_t *e = memchr(d + at, 0, len - at);
                    assert_non_null(e);
                    at = (size_t)(e - d) + 1;
                }
            }
            text_chunk *t = &out[k++];
            memcpy(t->type, type, 4), t->type[4] = '\0';
            memcpy(t->key, d, kl), t->key[kl] = '\0';
            t->text = malloc(len - at + 1);
            memcpy(t->text, d + at, len - at), t->text[len - at] = '\0';
            assert_null(memchr(t->text, 0, len - at)); /* no NUL inside a text */
            t->before_idat = !seen_idat;
        }
        pos += 12 + len;
    }
    free(f);
    return k;
}

/* latup_png_write_text and latup_outputs_add_png_text: ASCII as tEXt, UTF-8 as iTXt, both before
 * the image data, the image unchanged; keys and texts PNG cannot hold are usage errors that write
 * nothing. */
static void test_text_chunks(void **state) {
    (void)state;
    int64_t shape[3] = {3, 5, 4};
    latup_tensor img;
    assert_int_equal(latup_tensor_alloc(&img, 3, shape), LATUP_OK);
    for (int i = 0; i < 60; i++) img.data[i] = (float)(i % 17) / 16.0f;
    const char *cmd = "latup decode --vae 'my vae/' -o $'caf\\xc3\\xa9.png'";
    const latup_png_text text[3] = {{"Software", "latup 0.1.0"}, {"parameters", cmd}, {"Title", "caf\xc3\xa9 \xe2\x80\x94 x2"}};
    for (int bits = 8; bits <= 16; bits += 8)
        for (int via_set = 0; via_set < 2; via_set++) {
            const char *p = tmp_path(via_set ? "text_set.png" : "text.png");
            if (via_set) {
                latup_outputs *o;
                assert_int_equal(latup_outputs_new(&o), LATUP_OK);
                assert_int_equal(latup_outputs_add_png_text(o, p, &img, LATUP_PIXELS_UNIT, bits, text, 3), LATUP_OK);
                assert_int_equal(latup_outputs_commit(o), LATUP_OK);
                latup_outputs_free(o);
            } else {
                assert_int_equal(latup_png_write_text(p, &img, LATUP_PIXELS_UNIT, bits, text, 3), LATUP_OK);
            }
            text_chunk got[8];
            int n = read_texts(p, got, 8);
            printf("png text, %d-bit%s: %d chunks:", bits, via_set ? ", output set" : "", n);
            for (int k = 0; k < n; k++) printf(" %s '%s'", got[k].type, got[k].key);
            printf("\n");
            assert_int_equal(n, 3);
            for (int k = 0; k < 3; k++) {
                assert_string_equal(got[k].key, text[k].key);
                assert_string_equal(got[k].text, text[k].text);
                assert_string_equal(got[k].type, k == 2 ? "iTXt" : "tEXt"); /* UTF-8 needs iTXt */
                assert_true(got[k].before_idat);
                free(got[k].text);
            }
            latup_tensor back, plain;
            assert_int_equal(latup_png_read(p, &back), LATUP_OK);
            const char *q = tmp_path("plain.png");
            assert_int_equal(latup_png_write(q, &img, LATUP_PIXELS_UNIT, bits), LATUP_OK);
            assert_int_equal(latup_png_read(q, &plain), LATUP_OK);
            assert_memory_equal(back.data, plain.data, 60 * sizeof(float));
            latup_tensor_free(&back), latup_tensor_free(&plain);
        }

    struct {
        latup_png_text t;
        const char *word;
    } bad[] = {
        {{"", "x"}, "1 to 79 printable ASCII"},
        {{" lead", "x"}, "without leading"},
        {{"trail ", "x"}, "trailing"},
        {{"two  spaces", "x"}, "double spaces"},
        {{"caf\xc3\xa9", "x"}, "printable ASCII"},
        {{"tab\tkey", "x"}, "printable ASCII"},
        {{"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "x"}, "1 to 79"},
        {{"Comment", "\xff\xfe not UTF-8"}, "neither ASCII nor UTF-8"},
        {{NULL, "x"}, "text[0].key is NULL"},
        {{"Comment", NULL}, "text[0].text is NULL"},
    };
    const char *p = tmp_path("bad_text.png");
    const int entries = count_entries(g_dir);
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        assert_int_equal(latup_png_write_text(p, &img, LATUP_PIXELS_UNIT, 8, &bad[k].t, 1), LATUP_E_USAGE);
        printf("png text refused: %s\n", latup_last_error());
        assert_non_null(strstr(latup_last_error(), bad[k].word));
        assert_int_not_equal(access(p, F_OK), 0);
        latup_outputs *o;
        assert_int_equal(latup_outputs_new(&o), LATUP_OK);
        assert_int_equal(latup_outputs_add_png_text(o, p, &img, LATUP_PIXELS_UNIT, 8, &bad[k].t, 1), LATUP_E_USAGE);
        assert_non_null(strstr(latup_last_error(), bad[k].word));
        latup_outputs_free(o);
        assert_int_equal(count_entries(g_dir), entries); /* no temporary left behind */
    }
    assert_int_equal(latup_png_write_text(p, &img, LATUP_PIXELS_UNIT, 8, NULL, 1), LATUP_E_USAGE);
    assert_non_null(strstr(latup_last_error(), "text"));
    assert_int_equal(latup_png_write_text(p, &img, LATUP_PIXELS_UNIT, 8, text, 65), LATUP_E_USAGE);
    assert_int_equal(latup_png_write_text(p, &img, LATUP_PIXELS_UNIT, 8, text, -1), LATUP_E_USAGE);
    assert_int_equal(latup_png_write_text(p, &img, LATUP_PIXELS_UNIT, 8, NULL, 0), LATUP_OK); /* no text at all */
    text_chunk none[1];
    assert_int_equal(read_texts(p, none, 1), 0);
    latup_tensor_free(&img);
}

/* The float -> byte mappings: clamping, NaN, and the two rounding rules on exact halves. */
static void test_quantize(void **state) {
    (void)state;
    const float xs[6] = {-0.5f, 0.0f, 0.5f, 1.0f, 7.0f, NAN};
    const uint8_t unit[6] = {0, 0, 128, 255, 255, 0};
    /* diffusers: (x/2 + 0.5) clamped: -0.5 -> 0.25 -> 63.75 -> 64; 0 -> 127.5 -> 128 (even) */
    const uint8_t diff[6] = {64, 128, 191, 255, 255, 0};
    float chw[3 * 6];
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 6; i++) chw[c * 6 + i] = xs[i];
    uint8_t rgb[18];
    assert_int_equal(latup_png_quantize(rgb, chw, 1, 6, LATUP_PNG_MAP_UNIT), 3);
    for (int i = 0; i < 6; i++)
        for (int c = 0; c < 3; c++) assert_int_equal(rgb[3 * i + c], unit[i]);
    assert_int_equal(latup_png_quantize(rgb, chw, 2, 3, LATUP_PNG_MAP_DIFFUSERS), 3);
    for (int i = 0; i < 6; i++)
        for (int c = 0; c < 3; c++) assert_int_equal(rgb[3 * i + c], diff[i]);

    /* exact halves k + 0.5 = y * 255 in float: away from zero gives k + 1, to even gives the even one */
    int odd = 0, even = 0;
    for (int k = 0; k < 255; k++) {
        float y = ((float)k + 0.5f) / 255.0f;
        if (y * 255.0f != (float)k + 0.5f) continue;
        float one[3] = {y, y, y};
        uint8_t away[3], to_even[3];
        latup_png_map half_even = {1.0f, 0.0f, 1};
        latup_png_quantize(away, one, 1, 1, LATUP_PNG_MAP_UNIT);
        latup_png_quantize(to_even, one, 1, 1, half_even);
        assert_int_equal(away[0], k + 1);
        assert_int_equal(to_even[0], k % 2 ? k + 1 : k);
        if (k % 2) odd++;
        else even++;
    }
    printf("quantize: exact halves checked: %d with k odd, %d with k even\n", odd, even);
    assert_true(odd > 0 && even > 0);
}

/* ---- files made by other tools ------------------------------------------------------------------ */

static void test_reference_files(void **state) {
    (void)state;
    const char *names[] = {"rgb_pil",     "rgba_pil",    "gray_pil",          "palette_pil", "filters_zlib",
                           "rgb16_zlib",  "rgba16_zlib", "gray_alpha16_zlib", "gray16_pil"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char png[128], npy[128];
        snprintf(png, sizeof png, "tests/data/png/%s.png", names[k]);
        snprintf(npy, sizeof npy, "tests/data/png/%s.npy", names[k]);
        assert_int_equal(access(png, R_OK), 0); /* committed: absence is a failure */
        latup_tensor got, want;
        latup_status st = latup_png_read(png, &got);
        if (st) print_error("%s\n", latup_last_error());
        assert_int_equal(st, LATUP_OK);
        assert_int_equal(latup_npy_read(npy, &want), LATUP_OK);
        assert_int_equal(got.ndim, want.ndim);
        for (int d = 0; d < got.ndim; d++) assert_int_equal(got.shape[d], want.shape[d]);
        char sb[64];
        latup_shape_str(sb, sizeof sb, got.ndim, got.shape);
        assert_true(tu_check_exact(png, sb, got.data, want.data, (size_t)latup_tensor_numel(&got)));
        latup_tensor_free(&got);
        latup_tensor_free(&want);
    }
}

/* ---- every color type, every filter, built here ------------------------------------------------- */

static void test_color_types(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(7);
    const int colors[5] = {0, 2, 3, 4, 6};
    uint8_t plte[3 * 200];
    for (int i = 0; i < 3 * 200; i++) plte[i] = (uint8_t)tu_next_u64(&r);
    for (int k = 0; k < 5; k++) {
        for (int pieces = 1; pieces <= 3; pieces += 2) {
            spec s = {.W = 13, .H = 11, .color = colors[k], .pieces = pieces};
            size_t n = (size_t)s.W * (size_t)s.H * (size_t)bpp_of(s.color);
            uint8_t *pix = random_pixels(&r, n);
            if (s.color == 3) {
                for (size_t i = 0; i < n; i++) pix[i] = (uint8_t)(pix[i] % 200);
                pix[0] = 199; /* the last entry is in range */
                s.plte = plte;
                s.n_plte = 200;
            }
            s.pix = pix;
            size_t len;
            uint8_t *png = make_png(&s, &len); /* rows cycle through filters 0..4 */
            latup_tensor t;
            latup_status st = parse_exact(png, len, &t);
            if (st) print_error("%s\n", latup_last_error());
            assert_int_equal(st, LATUP_OK);
            expect_pixels(pieces == 1 ? "png filters 0-4" : "png filters 0-4, 3 IDAT", &t, &s);
            latup_tensor_free(&t);
            free(png);
            free(pix);
        }
    }
    /* Each filter type alone, over a whole image (Average and Paeth see their edge cases on every row). */
    for (int f = 0; f < 5; f++) {
        int ft[9];
        for (int y = 0; y < 9; y++) ft[y] = f;
        uint8_t *pix = random_pixels(&r, 9 * 5 * 4);
        spec s = {.W = 5, .H = 9, .color = 6, .pix = pix, .ftype = ft};
        size_t len;
        uint8_t *png = make_png(&s, &len);
        latup_tensor t;
        assert_int_equal(parse_exact(png, len, &t), LATUP_OK);
        char what[32];
        snprintf(what, sizeof what, "png filter %d only", f);
        expect_pixels(what, &t, &s);
        latup_tensor_free(&t);
        free(png);
        free(pix);
    }
}

/* ---- rejections ----------------------------------------------------------------------------------- */

/* A valid 8x6 RGB image's compressed stream, for building broken files around it. */
static uint8_t *g_pix;
static uint8_t *good_stream(int W, int H, int color, size_t *zl) {
    size_t n = (size_t)W * (size_t)H * (size_t)bpp_of(color), rl;
    tu_rng r = tu_rng_seed(99);
    free(g_pix);
    g_pix = random_pixels(&r, n);
    if (color == 3)
        for (size_t i = 0; i < n; i++) g_pix[i] %= 4;
    int ft[64];
    for (int y = 0; y < H; y++) ft[y] = y % 5;
    uint8_t *raw = filter_rows(g_pix, W, H, bpp_of(color), ft, &rl);
    uint8_t *z = zcompress(raw, rl, zl);
    free(raw);
    return z;
}

static void test_reject_container(void **state) {
    (void)state;
    size_t zl;
    uint8_t *z = good_stream(8, 6, 2, &zl);
    bytes b = {0};

    /* sanity: the unbroken file parses */
    b_head(&b, 2), b_idats(&b, z, zl, 1), b_iend(&b);
    latup_tensor t;
    assert_int_equal(parse_exact(b.p, b.n, &t), LATUP_OK);
    latup_tensor_free(&t);
    free(b.p), memset(&b, 0, sizeof b);

    expect_reject_buf((const uint8_t *)"", 0, "bad signature");
    expect_reject_buf((const uint8_t *)"\x89PNG\r\n\x1a", 7, "bad signature");
    expect_reject_buf((const uint8_t *)"\x89PNG\n\r\x1a\n", 8, "bad signature");
    expect_reject_buf((const uint8_t *)"\x1f\x8b\x08\x00", 4, "bad signature");

    b_head(&b, 2), b_idats(&b, z, zl, 1), b_iend(&b);
    b.p[8 + 8 + 3] ^= 1; /* width's low byte, CRC left as it was */
    expect_reject(&b, "CRC mismatch");

    b_head(&b, 2), b_idats(&b, z, zl, 1), b_iend(&b);
    b.p[b.n - 1] ^= 0x80; /* IEND's CRC */
    expect_reject(&b, "CRC mismatch");

    b_head(&b, 2), b_idats(&b, z, zl, 1), b_iend(&b);
    b.p[8 + 33 + 8 + 5] ^= 0x10; /* inside IDAT data */
    expect_reject(&b, "CRC mismatch");

    b_sig(&b), b_chunk(&b, "tEXt", "a\0b", 3), b_ihdr(&b, 8, 6, 8, 2, 0, 0, 0);
    b_idats(&b, z, zl, 1), b_iend(&b);
    expect_reject(&b, "first chunk is 'tEXt', expected 'IHDR'");

    b_sig(&b), b_idats(&b, z, zl, 1), b_iend(&b);
    expect_reject(&b, "first chunk is 'IDAT'");

    {
        uint8_t d14[14] = {0, 0, 0, 8, 0, 0, 0, 6, 8, 2, 0, 0, 0, 0};
        b_sig(&b), b_chunk(&b, "IHDR", d14, 14), b_idats(&b, z, zl, 1), b_iend(&b);
        expect_reject(&b, "IHDR chunk has 14 bytes, expected 13");
        b_sig(&b), b_chunk(&b, "IHDR", d14, 12), b_idats(&b, z, zl, 1), b_iend(&b);
        expect_reject(&b, "IHDR chunk has 12 bytes, expected 13");
    }

    b_head(&b, 2), b_ihdr(&b, 8, 6, 8, 2, 0, 0, 0);
    b_idats(&b, z, zl, 1), b_iend(&b);
    expect_reject(&b, "second IHDR");

    b_head(&b, 2), b_idats(&b, z, zl, 1);
    expect_reject(&b, "missing IEND");

    b_head(&b, 2), b_idats(&b, z, zl, 1), b_chunk(&b, "IEND", "x", 1);
    expect_reject(&b, "IEND chunk has 1 data bytes, expected 0");

    b_head(&b, 2), b_idats(&b, z, zl, 1), b_iend(&b), b_put(&b, "junk", 4);
    expect_reject(&b, "4 bytes of trailing data after IEND");

    b_head(&b, 2), b_iend(&b);
    expect_reject(&b, "no IDAT chunk");

    b_head(&b, 2), b_chunk(&b, "ABCD", "x", 1), b_idats(&b, z, zl, 1), b_iend(&b);
    expect_reject(&b, "unknown critical chunk 'ABCD'");

    /* ancillary (lowercase first letter) unknown chunks are skipped, anywhere after IHDR */
    b_head(&b, 2), b_chunk(&b, "abCD", "x", 1), b_idats(&b, z, zl, 1);
    b_chunk(&b, "zzZz", NULL, 0), b_iend(&b);
    assert_int_equal(parse_exact(b.p, b.n, &t), LATUP_OK);
    latup_tensor_free(&t);
    free(b.p), memset(&b, 0, sizeof b);

    b_head(&b, 2), b_chunk(&b, "ab1D", "x", 1), b_idats(&b, z, zl, 1), b_iend(&b);
    expect_reject(&b, "invalid chunk type");

    /* a length field beyond 2^31-1, and one running past the end of the file */
    b_head(&b, 2), b_be32(&b, 0x80000000u), b_put(&b, "IDAT", 4), b_put(&b, z, zl);
    expect_reject(&b, "exceeds 2^31-1");
    b_head(&b, 2), b_be32(&b, (uint32_t)zl + 17), b_put(&b, "IDAT", 4), b_put(&b, z, zl);
    b_be32(&b, 0), b_iend(&b);
    expect_reject(&b, "runs past the end of the file");

    /* IDAT chunks must be consecutive */
    b_head(&b, 2), b_chunk(&b, "IDAT", z, 10), b_chunk(&b, "tEXt", "a\0b", 3);
    b_chunk(&b, "IDAT", z + 10, zl - 10), b_iend(&b);
    expect_reject(&b, "IDAT chunks are not consecutive");
    free(z);
}

static void test_reject_header(void **state) {
    (void)state;
    size_t zl;
    uint8_t *z = good_stream(8, 6, 2, &zl);
    bytes b = {0};
    struct {
        uint32_t W, H;
        int depth, color, comp, filter, interlace;
        const char *word;
    } cases[] = {
        {0, 6, 8, 2, 0, 0, 0, "image size 0x6"},
        {8, 0, 8, 2, 0, 0, 0, "image size 8x0"},
        {65536, 6, 8, 2, 0, 0, 0, "outside 1 to 65535"},
        {8, 0x80000000u, 8, 2, 0, 0, 0, "outside 1 to 65535"},
        {0xFFFFFFFFu, 0xFFFFFFFFu, 8, 2, 0, 0, 0, "outside 1 to 65535"},
        {40000, 40000, 8, 2, 0, 0, 0, "1600000000 pixels, more than the limit of 268435456"},
        {8, 6, 8, 2, 0, 0, 1, "interlaced (Adam7) PNG not supported"},
        {8, 6, 16, 6, 0, 0, 1, "interlaced (Adam7) PNG not supported"},
        {8, 6, 4, 0, 0, 0, 0, "bit depth 4 not supported (latup reads 8- and 16-bit PNGs)"},
        {8, 6, 1, 0, 0, 0, 0, "bit depth 1 not supported"},
        {8, 6, 2, 3, 0, 0, 0, "bit depth 2 not supported"},
        {8, 6, 4, 2, 0, 0, 0, "invalid bit depth 4 for color type 2"},
        {8, 6, 16, 3, 0, 0, 0, "invalid bit depth 16 for color type 3"},
        {8, 6, 7, 0, 0, 0, 0, "invalid bit depth 7 for color type 0"},
        {8, 6, 8, 5, 0, 0, 0, "invalid color type 5"},
        {8, 6, 8, 7, 0, 0, 0, "invalid color type 7"},
        {8, 6, 8, 2, 1, 0, 0, "unknown compression method 1"},
        {8, 6, 8, 2, 0, 64, 0, "unknown filter method 64"},
        {8, 6, 8, 2, 0, 0, 2, "unknown interlace method 2"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        b_sig(&b);
        b_ihdr(&b, cases[k].W, cases[k].H, cases[k].depth, cases[k].color, cases[k].comp, cases[k].filter,
               cases[k].interlace);
        b_idats(&b, z, zl, 1), b_iend(&b);
        expect_reject(&b, cases[k].word);
    }
    free(z);
}

static void test_reject_palette(void **state) {
    (void)state;
    size_t zl;
    uint8_t *z = good_stream(8, 6, 3, &zl); /* indices 0..3 */
    const uint8_t pal[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    bytes b = {0};
    latup_tensor t;

    b_head(&b, 3), b_chunk(&b, "PLTE", pal, 12), b_idats(&b, z, zl, 2), b_iend(&b);
    assert_int_equal(parse_exact(b.p, b.n, &t), LATUP_OK);
    spec s = {.W = 8, .H = 6, .color = 3, .pix = g_pix, .plte = pal, .n_plte = 4};
    expect_pixels("png palette, 4 entries", &t, &s);
    latup_tensor_free(&t);
    free(b.p), memset(&b, 0, sizeof b);

    b_head(&b, 3), b_chunk(&b, "PLTE", pal, 9), b_idats(&b, z, zl, 1), b_iend(&b);
    expect_reject(&b, "palette index 3 out of range at row");

    b_head(&b, 3), b_idats(&b, z, zl, 1), b_iend(&b);
    expect_reject(&b, "missing PLTE chunk");

    b_head(&b, 3), b_idats(&b, z, zl, 1), b_chunk(&b, "PLTE", pal, 12), b_iend(&b);
    expect_reject(&b, "missing PLTE chunk");

    b_head(&b, 3), b_chunk(&b, "PLTE", pal, 12), b_chunk(&b, "PLTE", pal, 12);
    b_idats(&b, z, zl, 1), b_iend(&b);
    expect_reject(&b, "second PLTE");

    b_head(&b, 3), b_chunk(&b, "PLTE", pal, 11), b_idats(&b, z, zl, 1), b_iend(&b);
    expect_reject(&b, "PLTE chunk has 11 bytes");

    b_head(&b, 3), b_chunk(&b, "PLTE", NULL, 0), b_idats(&b, z, zl, 1), b_iend(&b);
    expect_reject(&b, "PLTE chunk has 0 bytes");
    {
        uint8_t big[771] = {0};
        b_head(&b, 3), b_chunk(&b, "PLTE", big, 771), b_idats(&b, z, zl, 1), b_iend(&b);
        expect_reject(&b, "PLTE chunk has 771 bytes");
    }
    free(z);

    /* PLTE is forbidden in gray images; in RGB it is a suggestion, but must precede IDAT */
    z = good_stream(8, 6, 0, &zl);
    b_head(&b, 0), b_chunk(&b, "PLTE", pal, 12), b_idats(&b, z, zl, 1), b_iend(&b);
    expect_reject(&b, "PLTE chunk in a grayscale image");
    free(z);
    z = good_stream(8, 6, 2, &zl);
    b_head(&b, 2), b_chunk(&b, "PLTE", pal, 12), b_idats(&b, z, zl, 1), b_iend(&b);
    assert_int_equal(parse_exact(b.p, b.n, &t), LATUP_OK);
    latup_tensor_free(&t);
    free(b.p), memset(&b, 0, sizeof b);
    b_head(&b, 2), b_idats(&b, z, zl, 1), b_chunk(&b, "PLTE", pal, 12), b_iend(&b);
    expect_reject(&b, "comes after the image data");
    free(z);
}

/* A file around an arbitrary zlib stream for an 8x6 RGB image. */
static void b_rgb_file(bytes *b, const uint8_t *z, size_t zl, int pieces) {
    b_sig(b), b_ihdr(b, 8, 6, 8, 2, 0, 0, 0), b_idats(b, z, zl, pieces), b_iend(b);
}

static void test_reject_image_data(void **state) {
    (void)state;
    const int W = 8, H = 6;
    size_t n = (size_t)W * H * 3, rl, zl;
    tu_rng r = tu_rng_seed(5);
    uint8_t *pix = random_pixels(&r, n + (size_t)W * 3); /* one spare row */
    int ft[8] = {0, 1, 2, 3, 4, 0, 1, 2};
    bytes b = {0};

    /* a bad filter byte, named with its row */
    ft[2] = 5;
    uint8_t *raw = filter_rows(pix, W, H, 3, ft, &rl);
    uint8_t *z = zcompress(raw, rl, &zl);
    b_rgb_file(&b, z, zl, 1);
    expect_reject(&b, "unknown filter type 5 on row 2");
    free(z);
    raw[2 * (1 + W * 3)] = 255;
    z = zcompress(raw, rl, &zl);
    b_rgb_file(&b, z, zl, 1);
    expect_reject(&b, "unknown filter type 255 on row 2");
    free(z);
    free(raw);
    ft[2] = 2;

    /* one row too few: the zlib stream ends early */
    raw = filter_rows(pix, W, H - 1, 3, ft, &rl);
    z = zcompress(raw, rl, &zl);
    b_rgb_file(&b, z, zl, 1);
    expect_reject(&b, "truncated image data: 125 of the 150 bytes");
    free(z);
    free(raw);
    /* one row too many, and one byte too many */
    raw = filter_rows(pix, W, H + 1, 3, ft, &rl);
    z = zcompress(raw, rl, &zl);
    b_rgb_file(&b, z, zl, 1);
    expect_reject(&b, "inflates to more than the 150 bytes");
    free(z);
    z = zcompress(raw, 151, &zl);
    b_rgb_file(&b, z, zl, 3);
    expect_reject(&b, "inflates to more than the 150 bytes");
    free(z);
    free(raw);

    /* the exact stream, then garbage after its end: in the same IDAT, and in a later one */
    raw = filter_rows(pix, W, H, 3, ft, &rl);
    z = zcompress(raw, rl, &zl);
    uint8_t *zx = malloc(zl + 3);
    memcpy(zx, z, zl);
    memcpy(zx + zl, "\x01\x02\x03", 3);
    b_rgb_file(&b, zx, zl + 3, 1);
    expect_reject(&b, "3 bytes of extra data in IDAT after the end of the zlib stream");
    b_head(&b, 2), b_chunk(&b, "IDAT", z, zl), b_chunk(&b, "IDAT", NULL, 0);
    b_chunk(&b, "IDAT", "\x01\x02", 2), b_iend(&b);
    expect_reject(&b, "2 bytes of extra data in IDAT");
    free(zx);

    /* checksum and header damage inside the zlib stream (the chunk CRCs are correct) */
    uint8_t *zc = malloc(zl);
    memcpy(zc, z, zl);
    zc[zl - 1] ^= 1; /* Adler-32 */
    b_rgb_file(&b, zc, zl, 1);
    expect_reject(&b, "corrupt image data (zlib: incorrect data check)");
    memcpy(zc, z, zl);
    zc[0] = 0x79; /* not deflate */
    b_rgb_file(&b, zc, zl, 1);
    expect_reject(&b, "corrupt image data (zlib:");
    free(zc);
    /* a stream whose last 4 bytes (the checksum) are missing: all the data, no end */
    b_rgb_file(&b, z, zl - 4, 1);
    expect_reject(&b, "the zlib stream is incomplete");

    /* the stream cut at every length, in one IDAT and spread over several */
    int cut = 0;
    for (size_t k = 0; k < zl; k++)
        for (int pieces = 1; pieces <= 2; pieces++) {
            b_rgb_file(&b, z, k, k >= 2 ? pieces : 1);
            latup_tensor t;
            latup_status st = parse_exact(b.p, b.n, &t);
            const char *m = latup_last_error();
            bool ok = st == LATUP_E_INPUT && (strstr(m, "truncated image data") || strstr(m, "incomplete") ||
                                              strstr(m, "corrupt image data"));
            if (!ok) {
                print_error("IDAT cut at %zu of %zu: status %d (%s)\n", k, zl, st, m);
                fail();
            }
            cut++;
            free(b.p), memset(&b, 0, sizeof b);
        }
    printf("reject truncated zlib stream at %d lengths OK\n", cut);
    free(z);
    free(raw);

    /* a preset dictionary (legal zlib, not allowed in PNG) */
    {
        raw = filter_rows(pix, W, H, 3, ft, &rl);
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        assert_int_equal(deflateInit(&zs, 6), Z_OK);
        assert_int_equal(deflateSetDictionary(&zs, (const Bytef *)"dictionary", 10), Z_OK);
        uint8_t out[1024];
        zs.next_in = raw;
        zs.avail_in = (uInt)rl;
        zs.next_out = out;
        zs.avail_out = sizeof out;
        assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
        b_rgb_file(&b, out, sizeof out - zs.avail_out, 1);
        deflateEnd(&zs);
        expect_reject(&b, "preset dictionary");
        free(raw);
    }

    /* a zlib bomb: 64 MiB of zeros (~64 KB compressed) for a 16x16 image; refused at byte 785 */
    {
        size_t big = (size_t)64 << 20;
        uint8_t *zeros = calloc(big, 1);
        assert_non_null(zeros);
        z = zcompress(zeros, big, &zl);
        free(zeros);
        b_sig(&b), b_ihdr(&b, 16, 16, 8, 2, 0, 0, 0), b_idats(&b, z, zl, 4), b_iend(&b);
        double t0 = latup_now();
        expect_reject(&b, "inflates to more than the 784 bytes expected for 16x16 pixels");
        printf("zlib bomb: %zu compressed bytes refused in %.3f ms\n", zl, 1e3 * (latup_now() - t0));
        free(z);
    }
    free(pix);
}

/* Every strict prefix of valid files fails cleanly, as does every single-byte change to the
 * header chunk (it is CRC-protected). */
static void test_truncation_sweep(void **state) {
    (void)state;
    tu_rng r = tu_rng_seed(11);
    uint8_t *pix = random_pixels(&r, 9 * 7 * 3);
    uint8_t plte[30];
    for (int i = 0; i < 30; i++) plte[i] = (uint8_t)i;
    uint8_t *idx = random_pixels(&r, 9 * 7);
    for (int i = 0; i < 63; i++) idx[i] %= 10;
    spec specs[2] = {{.W = 9, .H = 7, .color = 2, .pix = pix, .pieces = 3},
                     {.W = 9, .H = 7, .color = 3, .pix = idx, .plte = plte, .n_plte = 10}};
    size_t total = 0;
    for (int k = 0; k < 2; k++) {
        size_t len;
        uint8_t *png = make_png(&specs[k], &len);
        latup_tensor t;
        assert_int_equal(parse_exact(png, len, &t), LATUP_OK);
        latup_tensor_free(&t);
        for (size_t n = 0; n < len; n++) {
            latup_status st = parse_exact(png, n, &t);
            if (st != LATUP_E_INPUT || t.data) {
                print_error("prefix of %zu of %zu bytes: status %d (%s)\n", n, len, st, latup_last_error());
                fail();
            }
        }
        total += len;
        free(png);
    }
    /* through files too, a few lengths (latup_read_file's path) */
    size_t len;
    uint8_t *png = make_png(&specs[0], &len);
    for (size_t n = 0; n < len; n += 17) {
        write_bytes(tmp_path("pre.png"), png, n);
        latup_tensor t;
        assert_int_equal(latup_png_read(tmp_path("pre.png"), &t), LATUP_E_INPUT);
        assert_non_null(strstr(latup_last_error(), tmp_path("pre.png")));
    }
    free(png);
    printf("truncation sweep: every prefix of 2 files (%zu lengths) rejected OK\n", total);
    free(pix);
    free(idx);
}

/* ---- writing failures ---------------------------------------------------------------------------- */

static void test_write_failures(void **state) {
    (void)state;
    int64_t shape[3] = {3, 4, 5};
    latup_tensor t;
    assert_int_equal(latup_tensor_alloc(&t, 3, shape), LATUP_OK);

    /* a directory that does not exist, and a regular file used as a directory (fails as root too) */
    assert_int_equal(latup_png_write("/nonexistent-dir-latup/out.png", &t, LATUP_PIXELS_UNIT, 8), LATUP_E_IO);
    assert_non_null(strstr(latup_last_error(), "/nonexistent-dir-latup/out.png"));
    char sub[256];
    snprintf(sub, sizeof sub, "%s/w", g_dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    char notdir[300], inside[320];
    snprintf(notdir, sizeof notdir, "%s/file", sub);
    write_bytes(notdir, "x", 1);
    snprintf(inside, sizeof inside, "%s/out.png", notdir);
    assert_int_equal(latup_png_write(inside, &t, LATUP_PIXELS_UNIT, 8), LATUP_E_IO);
    assert_int_equal(count_entries(sub), 1); /* only "file": nothing was created */

    /* an unwritable directory (root ignores permissions, so only as another user) */
    if (geteuid() != 0) {
        char ro[300], p[320];
        snprintf(ro, sizeof ro, "%s/ro", sub);
        assert_int_equal(mkdir(ro, 0555), 0);
        snprintf(p, sizeof p, "%s/out.png", ro);
        assert_int_equal(latup_png_write(p, &t, LATUP_PIXELS_UNIT, 8), LATUP_E_IO);
        assert_non_null(strstr(latup_last_error(), p));
        assert_int_equal(count_entries(ro), 0);
        chmod(ro, 0755);
    } else {
        printf("write failures: running as root, the read-only directory case is skipped\n");
    }

    /* a refused image (NaN) neither creates the file nor touches an existing one */
    char out[300];
    snprintf(out, sizeof out, "%s/keep.png", sub);
    write_bytes(out, "old", 3);
    t.data[7] = NAN;
    assert_int_equal(latup_png_write(out, &t, LATUP_PIXELS_UNIT, 8), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "1 NaN or Inf values"));
    size_t n;
    uint8_t *old = slurp(out, &n);
    assert_int_equal(n, 3);
    assert_memory_equal(old, "old", 3);
    free(old);
    assert_int_equal(count_entries(sub), 2);

    /* so is one holding Inf (a clamp would hide it as white) */
    t.data[7] = -INFINITY;
    assert_int_equal(latup_png_write(out, &t, LATUP_PIXELS_SIGNED, 16), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "1 NaN or Inf values"));
    assert_int_equal(count_entries(sub), 2);

    /* shapes and sizes the writer refuses */
    t.data[7] = 0.5f;
    int64_t s4[4] = {2, 3, 4, 5};
    latup_tensor bad = t;
    bad.ndim = 4;
    memcpy(bad.shape, s4, sizeof s4);
    assert_int_equal(latup_png_write(out, &bad, LATUP_PIXELS_UNIT, 8), LATUP_E_USAGE);
    assert_non_null(strstr(latup_last_error(), "[2,3,4,5]"));
    bad.ndim = 0;
    assert_int_equal(latup_png_write(out, &bad, LATUP_PIXELS_UNIT, 8), LATUP_E_USAGE);
    bad.ndim = 7;
    assert_int_equal(latup_png_write(out, &bad, LATUP_PIXELS_UNIT, 8), LATUP_E_USAGE);
    bad.ndim = 3;
    bad.shape[0] = 4;
    assert_int_equal(latup_png_write(out, &bad, LATUP_PIXELS_UNIT, 8), LATUP_E_USAGE);
    bad.shape[0] = 3;
    bad.shape[1] = 0;
    assert_int_equal(latup_png_write(out, &bad, LATUP_PIXELS_UNIT, 8), LATUP_E_USAGE);
    uint8_t px[3] = {0};
    assert_int_equal(latup_png_write_rgb8(out, px, 1, 65536), LATUP_E_USAGE);
    assert_int_equal(latup_png_write_rgb8(out, px, 0, 1), LATUP_E_USAGE);
    /* the size is refused before the file system is touched: a usage error, not an i/o one */
    assert_int_equal(latup_png_write_rgb8("/nonexistent-latup-dir/x.png", px, 0, 1), LATUP_E_USAGE);
    assert_int_equal(latup_png_write(out, &t, LATUP_PIXELS_UNIT, 12), LATUP_E_USAGE);
    assert_int_equal(count_entries(sub), 2);

    /* a successful write replaces the old file */
    assert_int_equal(latup_png_write(out, &t, LATUP_PIXELS_UNIT, 8), LATUP_OK);
    assert_int_equal(count_entries(sub), 2);
    latup_tensor u;
    assert_int_equal(latup_png_read(out, &u), LATUP_OK);
    latup_tensor_free(&u);
    latup_tensor_free(&t);

    assert_int_equal(latup_png_read(tmp_path("absent.png"), &u), LATUP_E_IO);
    assert_null(u.data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_truncated_chunk_frame),
        cmocka_unit_test(test_rgb8_exact),
        cmocka_unit_test(test_quantize),
        cmocka_unit_test(test_write_16bit),
        cmocka_unit_test(test_text_chunks),
        cmocka_unit_test(test_reference_files),
        cmocka_unit_test(test_color_types),
        cmocka_unit_test(test_reject_container),
        cmocka_unit_test(test_reject_header),
        cmocka_unit_test(test_reject_palette),
        cmocka_unit_test(test_reject_image_data),
        cmocka_unit_test(test_truncation_sweep),
        cmocka_unit_test(test_write_failures),
    };
    int rc = cmocka_run_group_tests(tests, setup_dir, remove_dir);
    free(g_pix);
    return rc;
}
