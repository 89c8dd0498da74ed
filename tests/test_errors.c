/* test_errors.c — every row of docs/errors.md, run: a hostile or broken input handed to
 * build/latup must give one line on stderr naming the problem, the documented exit code, no
 * crash and no output file. The truncation rows also sweep every prefix length in-process. The
 * test fails if docs/errors.md and the table here list different rows. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "common.h"
#include "io/fileio.h"
#include "cli_util.h"
#include "latup.h"
#include "io/npy.h"
#include "io/png.h"
#include "io/weights.h"
#include "gen_models.h"


static char g_tmp[256];
static char g_err[4096];

static const char *tmp(const char *name) {
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, name);
    return buf[k];
}

static int run_latup(const char *const *args) { return run_cli(g_tmp, args, g_err, sizeof g_err); }

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static uint8_t *slurp(const char *path, size_t *n) {
    uint8_t *b;
    assert_int_equal(latup_read_file(path, (size_t)1 << 30, &b, n), LATUP_OK); /* inflates gzip */
    return b;
}

/* ---- builders --------------------------------------------------------------------------------- */
static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }

/* One archive entry for write_zip: `data` stored or deflated (`raw` bytes before deflation, whose
 * CRC and size go into the headers); usize_claim, if set, replaces the declared size (ZIP64). */
typedef struct {
    const char *name;
    const uint8_t *data;
    size_t n;
    int deflated;
    uint32_t crc;
    uint64_t usize;
} zent;

static void write_zip(const char *path, const zent *e, int ne) {
    size_t cap = 1024;
    for (int i = 0; i < ne; i++) cap += e[i].n + 2 * (30 + 46 + 20 + strlen(e[i].name));
    uint8_t *out = calloc(cap, 1);
    size_t off = 0, local[8];
    for (int i = 0; i < ne; i++) {
        local[i] = off;
        uint8_t *h = out + off;
        put32(h, 0x04034b50), put16(h + 4, 45), put16(h + 8, e[i].deflated ? 8 : 0);
        put32(h + 14, e[i].crc), put32(h + 18, (uint32_t)e[i].n), put32(h + 22, (uint32_t)(e[i].usize > 0xFFFFFFFFu ? 0xFFFFFFFFu : e[i].usize));
        put16(h + 26, (uint16_t)strlen(e[i].name));
        memcpy(h + 30, e[i].name, strlen(e[i].name));
        off += 30 + strlen(e[i].name);
        memcpy(out + off, e[i].data, e[i].n);
        off += e[i].n;
    }
    size_t cd = off;
    for (int i = 0; i < ne; i++) {
        uint8_t *h = out + off;
        const int z64 = e[i].usize > 0xFFFFFFFFu;
        put32(h, 0x02014b50), put16(h + 4, 45), put16(h + 6, 45), put16(h + 10, e[i].deflated ? 8 : 0);
        put32(h + 16, e[i].crc), put32(h + 20, (uint32_t)e[i].n);
        put32(h + 24, z64 ? 0xFFFFFFFFu : (uint32_t)e[i].usize);
        put16(h + 28, (uint16_t)strlen(e[i].name)), put16(h + 30, z64 ? 12 : 0);
        put32(h + 42, (uint32_t)local[i]);
        memcpy(h + 46, e[i].name, strlen(e[i].name));
        off += 46 + strlen(e[i].name);
        if (z64) { /* ZIP64 extra: the uncompressed size */
            put16(out + off, 1), put16(out + off + 2, 8);
            for (int k = 0; k < 8; k++) out[off + 4 + k] = (uint8_t)(e[i].usize >> (8 * k));
            off += 12;
        }
    }
    uint8_t *h = out + off;
    put32(h, 0x06054b50), put16(h + 8, (uint16_t)ne), put16(h + 10, (uint16_t)ne);
    put32(h + 12, (uint32_t)(off - cd)), put32(h + 16, (uint32_t)cd);
    write_bytes(path, out, off + 22);
    free(out);
}

static zent zstored(const char *name, const void *data, size_t n) {
    return (zent){name, data, n, 0, (uint32_t)crc32(0, data, (uInt)n), n};
}

/* A stored zip with archive/data.pkl = pkl and archive/version: what torch.save writes, with any
 * pickle inside. */
static void write_pth(const char *path, const uint8_t *pkl, size_t pn) {
    const zent e[2] = {zstored("archive/data.pkl", pkl, pn), zstored("archive/version", "3\n", 2)};
    write_zip(path, e, 2);
}

/* A safetensors file from a header JSON and `data` bytes of zeros. */
static void write_st(const char *path, const char *json, size_t data) {
    size_t hn = strlen(json);
    uint8_t *b = calloc(8 + hn + data + 1, 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(b + 8, json, hn);
    write_bytes(path, b, 8 + hn + data);
    free(b);
}

static void write_npy_header(const char *path, const char *dict, size_t data) {
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr, "%s", dict);
    int total = ((10 + n + 1 + 63) / 64) * 64;
    uint8_t *b = calloc((size_t)total + data, 1);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    put16(b + 8, (uint16_t)(total - 10));
    memset(b + 10, ' ', (size_t)(total - 10));
    memcpy(b + 10, hdr, (size_t)n);
    b[total - 1] = '\n';
    write_bytes(path, b, (size_t)total + data);
    free(b);
}

/* A PNG with the given IHDR fields and one (possibly empty) IDAT. */
static void write_png(const char *path, int W, int H, int depth, int ctype, int interlace, int bad_crc) {
    uint8_t buf[512];
    size_t n = 0;
    memcpy(buf, "\x89PNG\r\n\x1a\n", 8);
    n = 8;
    uint8_t ihdr[13] = {0};
    for (int i = 0; i < 4; i++) ihdr[i] = (uint8_t)(W >> (24 - 8 * i)), ihdr[4 + i] = (uint8_t)(H >> (24 - 8 * i));
    ihdr[8] = (uint8_t)depth, ihdr[9] = (uint8_t)ctype, ihdr[12] = (uint8_t)interlace;
    uint8_t raw[256] = {0}, z[320]; /* up to 4x4 pixels of 16-bit RGB: (1 + 4*6) * 4 = 100 bytes */
    assert_true((size_t)(1 + W * 3 * (depth / 8)) * H <= sizeof raw); /* 8x8 of 8-bit RGB at most */
    uLongf zn = sizeof z;
    compress(z, &zn, raw, (uLong)((size_t)(1 + W * 3 * (depth / 8)) * H));
    struct { const char *type; const uint8_t *d; size_t n; } ch[3] = {{"IHDR", ihdr, 13}, {"IDAT", z, zn}, {"IEND", NULL, 0}};
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < 4; i++) buf[n + i] = (uint8_t)(ch[c].n >> (24 - 8 * i));
        memcpy(buf + n + 4, ch[c].type, 4);
        if (ch[c].n) memcpy(buf + n + 8, ch[c].d, ch[c].n);
        uint32_t crc = (uint32_t)crc32(0, buf + n + 4, (uInt)(4 + ch[c].n));
        if (bad_crc && c == 0) crc ^= 1;
        for (int i = 0; i < 4; i++) buf[n + 8 + ch[c].n + i] = (uint8_t)(crc >> (24 - 8 * i));
        n += 12 + ch[c].n;
    }
    write_bytes(path, buf, n);
}

static void write_latent(const char *path, int C, int H, int W, float poison) {
    latup_tensor x;
    int64_t s[3] = {C, H, W};
    assert_int_equal(latup_tensor_alloc(&x, 3, s), LATUP_OK);
    for (int64_t i = 0; i < latup_tensor_numel(&x); i++) x.data[i] = 0.01f * (float)(i % 89);
    if (poison != 0) x.data[7] = poison;
    assert_int_equal(latup_npy_write(path, &x), LATUP_OK);
    latup_tensor_free(&x);
}

/* ---- prefix sweeps ------------------------------------------------------------------------------- */
typedef latup_status (*parse_fn)(const uint8_t *, size_t, const char *);

static latup_status parse_weights(const uint8_t *b, size_t n, const char *p) {
    latup_weights w;
    latup_status st = latup_weights_parse(b, n, p, &w);
    if (st == LATUP_OK) latup_weights_free(&w);
    return st;
}
static latup_status parse_npy(const uint8_t *b, size_t n, const char *p) {
    latup_tensor t;
    latup_status st = latup_npy_parse(b, n, p, &t);
    if (st == LATUP_OK) latup_tensor_free(&t);
    return st;
}
static latup_status parse_png(const uint8_t *b, size_t n, const char *p) {
    latup_tensor t;
    latup_status st = latup_png_parse(b, n, p, &t);
    if (st == LATUP_OK) latup_tensor_free(&t);
    return st;
}

/* Every prefix (every length up to 8 KiB, then a few hundred spread over the rest) must be
 * refused as bad input, and the whole file read; each copy is exactly sized so ASan sees any read
 * past its end. */
static void sweep(const char *src, parse_fn parse, const char *what) {
    size_t n;
    uint8_t *full = slurp(src, &n);
    size_t tried = 0;
    for (size_t len = 0; len < n; len += len < 8192 ? 1 : (n - 8192) / 300 + 1) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, full, len);
        latup_status st = parse(cut, len, "cut");
        if (st != LATUP_E_INPUT) printf("%s truncated to %zu of %zu bytes: status %d\n", what, len, n, (int)st);
        assert_int_equal(st, LATUP_E_INPUT);
        free(cut);
        tried++;
    }
    printf("  %s: %zu prefixes of %zu bytes, all refused\n", what, tried, n);
    /* and the whole file, exactly sized, is read: the refusals are the cut's, not the format's */
    uint8_t *whole = malloc(n);
    memcpy(whole, full, n);
    const latup_status st = parse(whole, n, "whole");
    printf("  %s: the whole file (%zu bytes) is read: %s\n", what, n, st == LATUP_OK ? "OK" : "NOT OK");
    assert_int_equal(st, LATUP_OK);
    free(whole);
    free(full);
}

static void cut_file(const char *src, const char *dst, double frac, int gz_raw) {
    size_t n;
    uint8_t *b;
    if (gz_raw) { /* the compressed bytes themselves */
        FILE *f = fopen(src, "rb");
        fseek(f, 0, SEEK_END);
        n = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        b = malloc(n);
        assert_int_equal(fread(b, 1, n, f), n);
        fclose(f);
    } else {
        b = slurp(src, &n);
    }
    write_bytes(dst, b, (size_t)(n * frac));
    free(b);
}

/* ---- the rows --------------------------------------------------------------------------------- */
#define MODEL "ref_data/small/model.safetensors.gz"
#define OUT tmp("out.npy")

/* The non-regular-file rows: the setup writes tmp("m.src"), which reaches latup through a FIFO
 * ("@fifo": a FIFO at tmp("m")) or a pipe on standard input ("@stdin:-", "@stdin:/dev/stdin"). */
enum { FEED_FILE, FEED_FIFO, FEED_STDIN };

typedef struct {
    const char *id;
    void (*setup)(void);
    const char *args[16]; /* "@in" and "@m" are replaced by tmp("in.npy") and tmp("m") */
    int exit_code;
    const char *says; /* must appear in the one stderr line */
} row;

static void s_trunc_st(void) {
    sweep(MODEL, parse_weights, "safetensors");
    cut_file(MODEL, tmp("m"), 0.5, 0);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_trunc_pth(void) {
    sweep("ref_data/tiny/model.pth", parse_weights, ".pth");
    cut_file("ref_data/tiny/model.pth", tmp("m"), 0.7, 0);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_trunc_npy(void) {
    sweep("ref_data/swinir/image_21x19.npy", parse_npy, ".npy");
    cut_file("ref_data/swinir/image_21x19.npy", tmp("in.npy"), 0.6, 0);
}
static void s_trunc_png(void) {
    sweep("ref_data/swinir/image_21x19.png", parse_png, "PNG");
    cut_file("ref_data/swinir/image_21x19.png", tmp("in.npy"), 0.6, 0);
}
static void s_trunc_gz(void) {
    cut_file(MODEL, tmp("m"), 0.5, 1);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_st_header_len(void) {
    uint8_t b[16] = {0xff, 0xff, 0x00, 0x00, 0, 0, 0, 0, '{', '}'};
    write_bytes(tmp("m"), b, sizeof b);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_st_offsets(void) {
    write_st(tmp("m"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,1600]}}", 16);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_st_overflow(void) {
    write_st(tmp("m"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}", 16);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_st_terabytes(void) {
    write_st(tmp("m"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[1000000,1000000],\"data_offsets\":[0,4000000000000]}}", 16);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_npy_terabytes(void) { write_npy_header(tmp("in.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }", 16); }
static void s_st_dup(void) {
    write_st(tmp("m"), "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_st_dtype(void) {
    write_st(tmp("m"), "{\"conv_first.weight\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_pkl_opcode(void) {
    const uint8_t p[] = {0x80, 0x02, 0xff, '.'};
    write_pth(tmp("m"), p, sizeof p);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_pkl_global(void) {
    const char p[] = "\x80\x02" "cos\nsystem\n" "X\x02\x00\x00\x00ls" "\x85" "R.";
    write_pth(tmp("m"), (const uint8_t *)p, sizeof p - 1);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_pkl_deep(void) {
    size_t n = 2 + 200000 + 1;
    uint8_t *p = malloc(n);
    p[0] = 0x80, p[1] = 0x02;
    memset(p + 2, '(', 200000); /* MARK x 200000 */
    p[n - 1] = '.';
    write_pth(tmp("m"), p, n);
    free(p);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_pkl_memo(void) {
    const uint8_t p[] = {0x80, 0x02, 'h', 0x05, '.'}; /* BINGET 5 on an empty memo */
    write_pth(tmp("m"), p, sizeof p);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_zip_offsets(void) {
    size_t n;
    uint8_t *b = slurp("ref_data/tiny/model.pth", &n);
    /* the ZIP64 locator/record would override the EOCD: corrupt the central directory offset in
     * every place it is stored by pointing the EOCD's at the end and dropping the ZIP64 locator */
    uint8_t *eocd = b + n - 22;
    assert_int_equal(eocd[0], 0x50);
    put32(eocd + 16, (uint32_t)(n + 1000));
    if (n > 42 && b[n - 42] == 0x50 && b[n - 41] == 0x4b && b[n - 40] == 6 && b[n - 39] == 7) memset(b + n - 42, 0, 20);
    write_bytes(tmp("m"), b, n);
    free(b);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_legacy(void) {
    size_t n;
    uint8_t *b = slurp("tests/data/pth/legacy.pth", &n);
    write_bytes(tmp("m"), b, n);
    free(b);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_noncontig(void) {
    size_t n;
    uint8_t *b = slurp("tests/data/pth/noncontig.pth", &n);
    write_bytes(tmp("m"), b, n);
    free(b);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_fortran(void) { write_npy_header(tmp("in.npy"), "{'descr': '<f4', 'fortran_order': True, 'shape': (16, 16, 16), }", 16 * 16 * 16 * 4); }
static void s_i8(void) { write_npy_header(tmp("in.npy"), "{'descr': '<i8', 'fortran_order': False, 'shape': (16, 16, 16), }", 16 * 16 * 16 * 8); }
static void s_rank5(void) { write_npy_header(tmp("in.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 16, 4, 4), }", 256 * 4); }
static void s_channels(void) { write_latent(tmp("in.npy"), 4, 16, 16, 0); }
static void s_nan(void) { write_latent(tmp("in.npy"), 16, 16, 16, NAN); }
static void s_inf(void) { write_latent(tmp("in.npy"), 16, 16, 16, INFINITY); }
static void s_good(void) { write_latent(tmp("in.npy"), 16, 16, 16, 0); }
static void s_small(void) { write_latent(tmp("in.npy"), 16, 4, 12, 0); }
static void s_thin_vae(void) { write_latent(tmp("in.npy"), 16, 5, 30, 0); }
static void edit_model(const char *drop, const char *shrink) {
    latup_weights w;
    assert_int_equal(latup_safetensors_load(MODEL, &w), LATUP_OK);
    for (int i = 0; i < w.n; i++) {
        if (drop && !strcmp(w.t[i].name, drop)) {
            free(w.t[i].name);
            memmove(&w.t[i], &w.t[i + 1], (size_t)(w.n - i - 1) * sizeof w.t[0]);
            w.n--;
            break;
        }
        if (shrink && !strcmp(w.t[i].name, shrink)) w.t[i].shape[0]--, w.t[i].numel--;
    }
    assert_int_equal(latup_safetensors_write(tmp("m"), &w), LATUP_OK);
    latup_weights_free(&w);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_missing(void) { edit_model("layers.0.conv.bias", NULL); }
static void s_shape(void) { edit_model(NULL, "conv_after_body.bias"); }
static void s_stray(void) {
    latup_weights w;
    assert_int_equal(latup_safetensors_load(MODEL, &w), LATUP_OK);
    for (int i = 0; i < w.n; i++)
        if (!strcmp(w.t[i].name, "layers.0.residual_group.blocks.1.attn_mask")) memcpy(w.t[i].name, "stray", 5);
    assert_int_equal(latup_safetensors_write(tmp("m"), &w), LATUP_OK);
    latup_weights_free(&w);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_png4(void) { write_png(tmp("in.npy"), 4, 4, 4, 0, 0, 0); } /* 4-bit gray */
static void s_pngi(void) { write_png(tmp("in.npy"), 4, 4, 8, 2, 1, 0); }
static void s_pngcrc(void) { write_png(tmp("in.npy"), 4, 4, 8, 2, 0, 1); }
static void s_pngbomb(void) {
    /* IHDR says 2x2, the IDAT inflates to 1 MiB */
    uint8_t *raw = calloc(1 << 20, 1), *z = malloc(1 << 16), buf[1 << 16];
    uLongf zn = 1 << 16;
    compress2(z, &zn, raw, 1 << 20, 9);
    size_t n = 8;
    memcpy(buf, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13] = {0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0};
    struct { const char *t; const uint8_t *d; size_t n; } ch[3] = {{"IHDR", ihdr, 13}, {"IDAT", z, zn}, {"IEND", NULL, 0}};
    for (int c = 0; c < 3; c++) {
        for (int i = 0; i < 4; i++) buf[n + i] = (uint8_t)(ch[c].n >> (24 - 8 * i));
        memcpy(buf + n + 4, ch[c].t, 4);
        if (ch[c].n) memcpy(buf + n + 8, ch[c].d, ch[c].n);
        uint32_t crc = (uint32_t)crc32(0, buf + n + 4, (uInt)(4 + ch[c].n));
        for (int i = 0; i < 4; i++) buf[n + 8 + ch[c].n + i] = (uint8_t)(crc >> (24 - 8 * i));
        n += 12 + ch[c].n;
    }
    write_bytes(tmp("in.npy"), buf, n);
    free(raw);
    free(z);
}
static void s_random(void) {
    uint8_t b[256];
    for (int i = 0; i < 256; i++) b[i] = (uint8_t)(i * 37 + 11);
    write_bytes(tmp("m"), b, sizeof b);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_packed(void) { write_latent(tmp("in.npy"), 1, 10, 64, 0); }
static void s_vae_missing(void) {
    latup_weights w;
    assert_int_equal(latup_safetensors_load("ref_data/vae/flux_small.ldm.safetensors.gz", &w), LATUP_OK);
    for (int i = 0; i < w.n; i++)
        if (!strcmp(w.t[i].name, "decoder.up.0.block.1.conv2.weight")) {
            free(w.t[i].name);
            memmove(&w.t[i], &w.t[i + 1], (size_t)(w.n - i - 1) * sizeof w.t[0]);
            w.n--;
            break;
        }
    assert_int_equal(latup_safetensors_write(tmp("m"), &w), LATUP_OK);
    latup_weights_free(&w);
    write_latent(tmp("in.npy"), 16, 8, 8, 0);
}
static void s_vae_channels(void) { write_latent(tmp("in.npy"), 4, 8, 8, 0); }

/* ---- the CLI's rows (issue 8: classes 3, 4 and 5) ---------------------------------------------------------- */
#define VAE "ref_data/vae/flux_small.ldm.safetensors.gz"
static void s_batch2(void) {
    latup_tensor x;
    int64_t s[4] = {2, 16, 16, 16};
    assert_int_equal(latup_tensor_alloc(&x, 4, s), LATUP_OK);
    assert_int_equal(latup_npy_write(tmp("in.npy"), &x), LATUP_OK);
    latup_tensor_free(&x);
}
/* A VAE whose conv_out overflows: the decode comes out Inf after a good upscale. */
static void s_hot_vae(void) {
    assert_true(checkpoint_edit(VAE, tmp("m"), "decoder.conv_out.weight", 0.0f, 3e38f));
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
static void s_dir_out(void) {
    s_good();
    mkdir(tmp("dir.npy"), 0755);
}
static void s_same_stem(void) {
    s_good();
    mkdir(tmp("sub"), 0755);
    write_latent(tmp("sub/in.npy"), 16, 16, 16, 0);
}
/* A FIFO fed by a child; a second open by latup would get EOF at once instead of hanging. */
static void s_fifo(void) {
    s_good();
    unlink(tmp("fifo"));
    assert_int_equal(mkfifo(tmp("fifo"), 0600), 0);
    if (fork() == 0) {
        size_t n;
        uint8_t *b = slurp(tmp("in.npy"), &n);
        FILE *f = fopen(tmp("fifo"), "wb");
        if (f) fwrite(b, 1, n, f), fclose(f);
        nanosleep(&(struct timespec){0, 300000000L}, NULL);
        int fd = open(tmp("fifo"), O_WRONLY | O_NONBLOCK);
        if (fd >= 0) close(fd);
        _exit(0);
    }
}
/* Standard input is the latent (the child latup inherits it). */
static void s_stdin(void) {
    s_good();
    int fd = open(tmp("in.npy"), O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(dup2(fd, 0), 0);
    close(fd);
}

/* ---- hostile-input rows of issue 8: unbounded work (class 1), degenerate models (class 2),
 * non-regular inputs (class 4), error lines (class 7) ------------------------------------------- */

/* The small model (or VAE) with one change applied by `edit`, written to `dst`. */
static void edit_weights(const char *src, const char *dst, void (*edit)(latup_weights *w)) {
    latup_weights w;
    assert_int_equal(latup_safetensors_load(src, &w), LATUP_OK);
    edit(&w);
    assert_int_equal(latup_safetensors_write(dst, &w), LATUP_OK);
    latup_weights_free(&w);
}

static latup_wtensor *wfind(latup_weights *w, const char *name) {
    latup_wtensor *t = (latup_wtensor *)latup_weights_find(w, name);
    assert_non_null(t);
    return t;
}

/* A dimension set to zero: the tensor holds no data then (safetensors allows empty tensors). */
static void zero_dim(latup_weights *w, const char *name, int d) {
    latup_wtensor *t = wfind(w, name);
    t->shape[d] = 0;
    t->numel = 0;
}

#define VAE_SMALL "ref_data/vae/flux_small.ldm.safetensors.gz"

static void e_embed0(latup_weights *w) { zero_dim(w, "conv_first.weight", 0); }
static void e_chans0(latup_weights *w) { zero_dim(w, "conv_first.weight", 1); }
static void e_vae_in0(latup_weights *w) { zero_dim(w, "decoder.conv_in.weight", 1); }
static void e_nan(latup_weights *w) { wfind(w, "layers.0.residual_group.blocks.0.attn.qkv.weight")->f32[5] = NAN; }
static void e_inf(latup_weights *w) { wfind(w, "decoder.up.1.block.0.conv1.weight")->f32[11] = -INFINITY; }
static void s_embed0(void) { edit_weights(MODEL, tmp("m"), e_embed0), write_latent(tmp("in.npy"), 16, 16, 16, 0); }
static void s_chans0(void) { edit_weights(MODEL, tmp("m"), e_chans0), write_latent(tmp("in.npy"), 16, 16, 16, 0); }
static void s_vae_in0(void) { edit_weights(VAE_SMALL, tmp("m"), e_vae_in0), write_latent(tmp("in.npy"), 16, 8, 8, 0); }
static void s_nan_weight(void) { edit_weights(MODEL, tmp("m"), e_nan), write_latent(tmp("in.npy"), 16, 16, 16, 0); }
static void s_inf_weight(void) { edit_weights(VAE_SMALL, tmp("m"), e_inf), write_latent(tmp("in.npy"), 16, 8, 8, 0); }

/* A relative-position table of (2*100-1)^2 rows: a window of 100, attention tables of 100^4 floats
 * per head per block if the loader believed it. */
static float g_big_table[39601 * 6];
static void e_window(latup_weights *w) {
    latup_wtensor *t = wfind(w, "layers.0.residual_group.blocks.0.attn.relative_position_bias_table");
    t->shape[0] = 39601;
    t->numel = 39601 * 6;
    t->f32 = g_big_table;
}
static void s_window(void) { edit_weights(MODEL, tmp("m"), e_window), write_latent(tmp("in.npy"), 16, 16, 16, 0); }

/* Raw deflate of `in` (what a zip entry holds). */
static uint8_t *deflate_raw(const uint8_t *in, size_t n, size_t *out_n) {
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)n) + 16;
    uint8_t *out = malloc(cap);
    z.next_in = (Bytef *)(uintptr_t)in, z.avail_in = (uInt)n, z.next_out = out, z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_n = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

/* {"w": FloatStorage tensor of `numel` elements in archive/data/0} as a pickle. */
static size_t tensor_pickle(uint8_t *p, uint64_t numel) {
    size_t n = 0;
#define PUT(lit) (memcpy(p + n, lit, sizeof(lit) - 1), n += sizeof(lit) - 1)
    PUT("\x80\x02}X\x01\0\0\0w" "ctorch._utils\n_rebuild_tensor_v2\n(" "(X\x07\0\0\0storage" "ctorch\nFloatStorage\n"
        "X\x01\0\0\0" "0" "X\x03\0\0\0cpu" "\x8a\x08");
    for (int k = 0; k < 8; k++) p[n++] = (uint8_t)(numel >> (8 * k));
    PUT("tQ" "K\x00" "\x8a\x08");
    for (int k = 0; k < 8; k++) p[n++] = (uint8_t)(numel >> (8 * k));
    PUT("\x85" "K\x01\x85" "\x89" "}" "tRs.");
#undef PUT
    return n;
}

/* archive/data/0 declares 10 GB, deflated into 1 KiB: refused when the archive is opened, as bad
 * input, before anything is sized by the declared size. */
static void s_zip_10g(void) {
    uint8_t pkl[256];
    size_t pn = tensor_pickle(pkl, 2500000000ull);
    uint8_t zeros[1024] = {0};
    zent e[3] = {zstored("archive/data.pkl", pkl, pn), zstored("archive/version", "3\n", 2),
                 {"archive/data/0", zeros, sizeof zeros, 1, 0, 10000000000ull}};
    write_zip(tmp("m"), e, 3);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}

/* A 16 MiB string, memoised, then _codecs.encode(it, 'latin1') 400 times: 6.6 GB if every copy
 * were made. data.pkl is deflated, so the file is about 17 KB. */
static void s_pickle_bomb(void) {
    const size_t S = (size_t)16 << 20;
    size_t cap = S + 64 + 400 * 64, n = 0;
    uint8_t *p = malloc(cap);
    memcpy(p, "\x80\x02X", 3), n = 3;
    put32(p + n, (uint32_t)S), n += 4;
    memset(p + n, 'a', S), n += S;
    p[n++] = 0x94; /* MEMOIZE: memo 0 */
    p[n++] = '0';
    for (int i = 0; i < 400; i++) {
        static const char call[] = "c_codecs\nencode\nh\x00X\x06\0\0\0latin1\x86R0";
        memcpy(p + n, call, sizeof call - 1), n += sizeof call - 1;
    }
    memcpy(p + n, "}.", 2), n += 2;
    size_t zn;
    uint8_t *z = deflate_raw(p, n, &zn);
    zent e[2] = {{"archive/data.pkl", z, zn, 1, (uint32_t)crc32(0, p, (uInt)n), n}, zstored("archive/version", "3\n", 2)};
    write_zip(tmp("m"), e, 2);
    free(z);
    free(p);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}

/* gzip of a safetensors header declaring one 16-byte tensor, followed by 256 MiB of zeros: read
 * no further than the header's 16 data bytes (+1). */
static void s_gz_bomb(void) {
    const char *json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}";
    size_t hn = strlen(json);
    uint8_t head[128] = {0};
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(head + 8, json, hn);
    gzFile g = gzopen(tmp("m"), "wb1");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, head, (unsigned)(8 + hn)), (int)(8 + hn));
    uint8_t *zeros = calloc(1, (size_t)1 << 20);
    for (int i = 0; i < 256; i++) assert_int_equal(gzwrite(g, zeros, 1u << 20), 1 << 20);
    free(zeros);
    assert_int_equal(gzclose(g), Z_OK);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}

/* ---- class 4: the model through a FIFO and through a pipe on stdin (read once, never reopened) */
static void copy_file(const char *src, const char *dst) {
    FILE *f = fopen(src, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size_t n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n);
    assert_int_equal(fread(b, 1, n, f), n);
    fclose(f);
    write_bytes(dst, b, n);
    free(b);
}
static void s_fed_model(void) { copy_file(MODEL, tmp("m.src")), write_latent(tmp("in.npy"), 4, 16, 16, 0); }
static void s_fed_vae(void) { copy_file(VAE_SMALL, tmp("m.src")), write_latent(tmp("in.npy"), 4, 8, 8, 0); }
static void s_fed_cut(void) { cut_file(MODEL, tmp("m.src"), 0.5, 1), write_latent(tmp("in.npy"), 16, 16, 16, 0); }
static void s_fed_zero(void) {
    uint8_t z[4096] = {0};
    write_bytes(tmp("m.src"), z, sizeof z);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}

/* ---- class 7: names and paths from hostile files in error lines ----------------------------- */
static char g_long_name[3001];
static void e_ansi(latup_weights *w) {
    latup_wtensor *t = wfind(w, "layers.0.residual_group.blocks.1.attn_mask");
    free(t->name);
    t->name = strdup("\x1b[31mevil\x1b[0m\x07");
}
static void e_long(latup_weights *w) {
    latup_wtensor *t = wfind(w, "layers.0.residual_group.blocks.1.attn_mask");
    memset(g_long_name, 'n', 3000);
    free(t->name);
    t->name = strdup(g_long_name);
}
static void s_ansi_name(void) { edit_weights(MODEL, tmp("m"), e_ansi), write_latent(tmp("in.npy"), 16, 16, 16, 0); }
static void s_long_name(void) { edit_weights(MODEL, tmp("m"), e_long), write_latent(tmp("in.npy"), 16, 16, 16, 0); }
/* "collections\nOrderedDict\0evil\n": shown with its NUL, so the line never names a whitelisted
 * global as the one refused. */
static void s_nul_global(void) {
    static const char p[] = "\x80\x02" "ccollections\nOrderedDict\0evil\n" ")R.";
    write_pth(tmp("m"), (const uint8_t *)p, sizeof p - 1);
    write_latent(tmp("in.npy"), 16, 16, 16, 0);
}
/* ---- planning arithmetic (class 6) and long, thin latents (class 8) ------------------------------ */

/* A valid ldm-named VAE of `levels` up levels (x2^(levels-1)), 32 channels throughout, one
 * ResnetBlock per level, `zc` latent channels, all weights 0.01 (finite output). */
static void add_const(gen_table *g, const char *name, int ndim, int64_t a, int64_t b, int64_t c, int64_t d, float v) {
    const int64_t sh[4] = {a, b, c, d};
    float *x = gen_add(g, name, ndim, sh);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= sh[i];
    for (int64_t i = 0; i < n; i++) x[i] = v;
}
static void add_conv(gen_table *g, const char *mod, int cout, int cin, int k) {
    char n[160];
    snprintf(n, sizeof n, "%s.weight", mod), add_const(g, n, 4, cout, cin, k, k, 0.01f);
    snprintf(n, sizeof n, "%s.bias", mod), add_const(g, n, 1, cout, 0, 0, 0, 0.0f);
}
static void add_norm(gen_table *g, const char *mod, int c) {
    char n[160];
    snprintf(n, sizeof n, "%s.weight", mod), add_const(g, n, 1, c, 0, 0, 0, 1.0f);
    snprintf(n, sizeof n, "%s.bias", mod), add_const(g, n, 1, c, 0, 0, 0, 0.0f);
}
static void add_resnet(gen_table *g, const char *mod) {
    char n[160];
    snprintf(n, sizeof n, "%s.norm1", mod), add_norm(g, n, 32);
    snprintf(n, sizeof n, "%s.conv1", mod), add_conv(g, n, 32, 32, 3);
    snprintf(n, sizeof n, "%s.norm2", mod), add_norm(g, n, 32);
    snprintf(n, sizeof n, "%s.conv2", mod), add_conv(g, n, 32, 32, 3);
}
static void write_deep_vae(const char *path, int levels, int zc) {
    gen_table g;
    memset(&g, 0, sizeof g);
    char n[160];
    add_conv(&g, "decoder.conv_in", 32, zc, 3);
    add_resnet(&g, "decoder.mid.block_1");
    add_norm(&g, "decoder.mid.attn_1.norm", 32);
    static const char *const qkvo[4] = {"q", "k", "v", "proj_out"};
    for (int k = 0; k < 4; k++) snprintf(n, sizeof n, "decoder.mid.attn_1.%s", qkvo[k]), add_conv(&g, n, 32, 32, 1);
    add_resnet(&g, "decoder.mid.block_2");
    for (int L = levels - 1; L >= 0; L--) {
        snprintf(n, sizeof n, "decoder.up.%d.block.0", L), add_resnet(&g, n);
        if (L) snprintf(n, sizeof n, "decoder.up.%d.upsample.conv", L), add_conv(&g, n, 32, 32, 3);
    }
    add_norm(&g, "decoder.norm_out", 32);
    add_conv(&g, "decoder.conv_out", 3, 32, 3);
    gen_finish(&g);
    assert_int_equal(latup_safetensors_write(path, &g.w), LATUP_OK);
    latup_weights_free(&g.w);
}
/* 6 levels (x32), 1 channel: 8192x256 decodes to 262144x8192 = 2^31 pixels, one past int. */
static void s_deep_tall(void) { write_deep_vae(tmp("m"), 6, 1), write_latent(tmp("in.npy"), 1, 8192, 256, 0); }
static void s_deep_wide(void) { write_deep_vae(tmp("m"), 6, 1), write_latent(tmp("in.npy"), 1, 256, 8192, 0); }
/* The same VAE on a latent its int indexing can hold: decoded, finite (4x4 -> 128x128). */
static void s_deep_ok(void) { write_deep_vae(tmp("m"), 6, 1), write_latent(tmp("in.npy"), 1, 4, 4, 0); }
static void s_lua_huge(void) { write_latent(tmp("in.npy"), 16, 16385, 1, 0); }
static void s_vae_huge(void) { write_latent(tmp("in.npy"), 16, 8193, 1, 0); }
static void s_thin_wide(void) { write_latent(tmp("in.npy"), 16, 9, 225, 0); }
static void s_thin_tall(void) { write_latent(tmp("in.npy"), 16, 225, 9, 0); }
static void s_thin_rgb(void) { write_latent(tmp("in.npy"), 3, 9, 200, 0); }

/* A 3000-byte path (components of 100 bytes) that does not exist. */
static char g_long_path[3200];
static const char *long_path(void) {
    size_t n = 0;
    while (n < 3000) n += (size_t)snprintf(g_long_path + n, sizeof g_long_path - n, "/%099d", (int)n);
    return g_long_path;
}

/* Wrong inputs whose shape says what they are (issue 21): an image, FLUX's packed tokens. */
static void s_rgb_png(void) { write_png(tmp("in.npy"), 4, 4, 8, 2, 0, 0); }
static void s_packed_square(void) { write_latent(tmp("in.npy"), 1, 64, 64, 0); } /* [1,64,64]: 64 tokens of 64 */

/* diffusers VAE folders (tmp/vae/): config.json and weights as the row needs them. */
static void vae_folder(const char *config, int weights) {
    mkdir(tmp("vae"), 0755);
    char p[600], target[600], cwd[400];
    snprintf(p, sizeof p, "%s/config.json", tmp("vae"));
    unlink(p);
    if (config) write_bytes(p, config, strlen(config));
    snprintf(p, sizeof p, "%s/diffusion_pytorch_model.safetensors", tmp("vae"));
    unlink(p);
    assert_non_null(getcwd(cwd, sizeof cwd)); /* the tests run from the repository's root */
    snprintf(target, sizeof target, "%s/ref_data/vae/flux_small.diffusers.safetensors.gz", cwd);
    if (weights) assert_int_equal(symlink(target, p), 0); /* gzip'd content: read by content */
    write_latent(tmp("in.npy"), 16, 8, 8, 0);
}
static void s_folder_no_weights(void) { vae_folder("{\"_class_name\": \"AutoencoderKL\"}", 0); }
static void s_folder_no_config(void) { vae_folder(NULL, 1); }
static void s_folder_channels(void) { vae_folder("{\"_class_name\": \"AutoencoderKL\", \"latent_channels\": 4}", 1); }
static void s_folder_class(void) { vae_folder("{\"_class_name\": \"FluxTransformer2DModel\"}", 1); }

/* issue 22: encode and eval (the trained demo VAE holds the patch encoder) */
#define TV "ref_data/trained/vae.ldm.safetensors.gz"
#define TL "ref_data/trained/lua_x2x4.safetensors.gz"
#define TS "ref_data/trained/swinir_x2.safetensors.gz"
static void s_image_npy(void) { write_latent(tmp("in.npy"), 3, 16, 16, 0); }
static void s_image_hot(void) { write_latent(tmp("in.npy"), 3, 16, 16, 1.5f); }
static void s_png8(void) { write_png(tmp("in.npy"), 8, 8, 8, 2, 0, 0); }
static void s_png_pair(void) { /* two 16x16 images of one name in two folders */
    mkdir(tmp("pngs"), 0755);
    mkdir(tmp("pngs2"), 0755);
    latup_tensor t;
    const int64_t s[3] = {3, 16, 16};
    assert_int_equal(latup_tensor_alloc(&t, 3, s), LATUP_OK);
    assert_int_equal(latup_png_write(tmp("pngs/a.png"), &t, LATUP_PIXELS_UNIT, 8), LATUP_OK);
    assert_int_equal(latup_png_write(tmp("pngs2/a.png"), &t, LATUP_PIXELS_UNIT, 8), LATUP_OK);
    latup_tensor_free(&t);
}
static void s_png64_dir(void) { /* 64x64: a 4x4 latent at x2, under the LUA's 5x5 */
    mkdir(tmp("pngs"), 0755);
    latup_tensor t;
    const int64_t s[3] = {3, 64, 64};
    assert_int_equal(latup_tensor_alloc(&t, 3, s), LATUP_OK);
    assert_int_equal(latup_png_write(tmp("pngs/a.png"), &t, LATUP_PIXELS_UNIT, 8), LATUP_OK);
    latup_tensor_free(&t);
}
static void s_png_dir(void) { mkdir(tmp("pngs"), 0755), write_png(tmp("pngs/a.png"), 4, 4, 8, 2, 0, 0); }
static void s_no_png_dir(void) { mkdir(tmp("empty"), 0755), write_latent(tmp("empty/a.npy"), 3, 16, 16, 0); }
#define ENC(...) {"encode", "--vae", TV, "-i", "@in", "-o", "@out", __VA_ARGS__, NULL}
#define EVAL(...) {"eval", "--vae", TV, "-m", TL, "--json", "@out.json", __VA_ARGS__, NULL}
/* The SD-style test VAE (decoder and encoder) without the tensors whose names start with drop, as
 * tmp("m"); an 8x8 RGB PNG as the image to encode. */
static void enc_vae_without(const char *drop) {
    latup_weights w = {0};
    assert_int_equal(latup_weights_load("ref_data/vae/sd_small.ldm.safetensors.gz", &w), LATUP_OK);
    assert_int_equal(latup_weights_fetch_all(&w), LATUP_OK);
    int k = 0;
    for (int i = 0; i < w.n; i++) {
        if (!strncmp(w.t[i].name, drop, strlen(drop))) continue;
        const latup_wtensor t = w.t[k];
        w.t[k++] = w.t[i];
        w.t[i] = t;
    }
    const int n_all = w.n;
    w.n = k;
    assert_int_equal(latup_safetensors_write(tmp("m"), &w), LATUP_OK);
    w.n = n_all;
    latup_weights_free(&w);
    write_png(tmp("in.npy"), 8, 8, 8, 2, 0, 0);
}
static void s_enc_none(void) { enc_vae_without("encoder."); }
static void s_enc_missing(void) { enc_vae_without("encoder.mid.attn_1.k."); }
static void s_enc_small(void) { write_png(tmp("in.npy"), 5, 4, 8, 2, 0, 0); }

#define UP(model) {"upscale", "--model", model, "--scale", "2", "--in", "@in", "--out", "@out", NULL}
#define UP_IN(in) {"upscale", "-m", MODEL, "-s", "2", "-i", in, "-o", "@out", NULL}
#define DEC(...) {"decode", "--vae", VAE, "-i", "@in", "-o", "@out.png", __VA_ARGS__, NULL}
#define ENC_VAE(vae) {"encode", "--vae", vae, "-i", "@in", "-o", "@out", NULL}

static const row ROWS[] = {
    {"E01", s_trunc_st, UP("@m"), 2, "m: "},
    {"E02", s_trunc_pth, UP("@m"), 2, "m: "},
    {"E03", s_trunc_npy, UP(MODEL), 2, "in.npy: "},
    {"E04", s_trunc_png, UP("ref_data/swinir/classic_x2.pth"), 2, "in.npy: "},
    {"E05", s_trunc_gz, UP("@m"), 2, "gzip"},
    {"E06", s_st_header_len, UP("@m"), 2, "header length"},
    {"E07", s_st_offsets, UP("@m"), 2, "m: "},
    {"E08", s_st_overflow, UP("@m"), 2, "overflow"},
    {"E09", s_st_terabytes, UP("@m"), 2, "m: "},
    {"E10", s_npy_terabytes, UP(MODEL), 2, "bytes"},
    {"E11", s_st_dup, UP("@m"), 2, "duplicate"},
    {"E12", s_st_dtype, UP("@m"), 2, "F8_E4M3"},
    {"E13", s_pkl_opcode, UP("@m"), 2, "opcode"},
    {"E14", s_pkl_global, UP("@m"), 2, "os.system"},
    {"E15", s_pkl_deep, UP("@m"), 2, "m: "},
    {"E16", s_pkl_memo, UP("@m"), 2, "memo"},
    {"E17", s_zip_offsets, UP("@m"), 2, "m: "},
    {"E18", s_legacy, UP("@m"), 2, "legacy"},
    {"E19", s_noncontig, UP("@m"), 2, "non-contiguous"},
    {"E20", s_fortran, UP(MODEL), 2, "ortran"},
    {"E21", s_i8, UP(MODEL), 2, "<i8"},
    {"E22", s_rank5, UP(MODEL), 2, "in.npy: "},
    {"E23", s_channels, UP(MODEL), 2, "channels"},
    {"E24", s_nan, UP(MODEL), 2, "NaN"},
    {"E25", s_inf, UP(MODEL), 2, "Inf"},
    {"E26", s_good, {"upscale", "--model", MODEL, "--scale", "2", "--in", "@in", "--out", "/nonexistent-dir/up.npy", NULL}, 4, "/nonexistent-dir/up.npy"},
    {"E27", s_missing, UP("@m"), 2, "layers.0.conv.bias"},
    {"E28", s_shape, UP("@m"), 2, "conv_after_body.bias"},
    {"E29", s_stray, UP("@m"), 2, "unexpected tensor"},
    {"E30", s_small, UP(MODEL), 2, "too small"},
    {"E31", s_good, {"upscale", "--model", MODEL, "--scale", "3", "--in", "@in", "--out", "@out", NULL}, 1, "x2, x4"},
    {"E32", s_png4, UP("ref_data/swinir/classic_x2.pth"), 2, "bit depth 4"},
    {"E33", s_pngi, UP("ref_data/swinir/classic_x2.pth"), 2, "interlaced"},
    {"E34", s_pngcrc, UP("ref_data/swinir/classic_x2.pth"), 2, "CRC"},
    {"E35", s_pngbomb, UP("ref_data/swinir/classic_x2.pth"), 2, "in.npy: "},
    {"E36", s_random, UP("@m"), 2, "not a checkpoint"},
    {"E37", s_good, UP("/nonexistent/model.safetensors"), 4, "/nonexistent/model.safetensors"},
    {"E38", s_packed, {"upscale", "--model", MODEL, "--scale", "2", "--in", "@in", "--flux-packed", "8x8", "--out", "@out", NULL}, 2, "tokens"},
    {"E39", s_good, {"upscale", "--model", MODEL, "--scale", "2", "--in", "@in", "--out", "@out.tiff", NULL}, 1, ".npy or .png"},
    {"E40", s_good, {"upscale", "--model", MODEL, "--scale", "2", "--in", "@in", "--out", "@out.png", NULL}, 1, "PNG holds one RGB image"},
    {"E41", s_vae_missing, {"decode", "--vae", "@m", "--in", "@in", "--out", "@out", NULL}, 2, "decoder.up.0.block.1.conv2.weight"},
    {"E42", s_vae_channels, {"decode", "--vae", "ref_data/vae/flux_small.ldm.safetensors.gz", "--in", "@in", "--out", "@out", NULL}, 2, "channels"},
    {"E43", s_good, {"upscale", "--model", MODEL, "--scale", "2", "--in", "@in", "--out", "@out", "--threads", "0", NULL}, 1, "--threads"},
    {"EC01", s_batch2, {"run", "-m", MODEL, "-s", "2", "--vae", VAE, "-i", "@in", "-o", "@out.png", "--save-latent", "@out_up.npy", NULL}, 1, "a batch of 2 images"},
    {"EC02", s_hot_vae, {"run", "-m", MODEL, "-s", "2", "--vae", "@m", "-i", "@in", "-o", "@out.png", "--save-latent", "@out_up.npy", NULL}, 2, "/m (decoding the x2 upscale of"},
    {"EC03", s_dir_out, {"upscale", "-m", "/nonexistent/model.pth", "-s", "2", "-i", "@in", "-o", "@tmp/dir.npy", NULL}, 4, "dir.npy: is a directory"},
    {"EC04", s_fifo, UP_IN("@tmp/fifo"), 0, "fifo [16,16,16] -> x2 -> "},
    {"EC05", s_stdin, UP_IN("-"), 0, "- [16,16,16] -> x2 -> "},
    {"EC06", s_stdin, UP_IN("/dev/stdin"), 0, "/dev/stdin [16,16,16] -> x2 -> "},
    {"EC07", s_good, DEC("--max-memory", "nan"), 1, "--max-memory takes a size"},
    {"EC08", s_good, DEC("--threads", "99999999999999999999"), 1, "--threads takes an integer from 1 to 4096"},
    {"EC09", s_good, DEC("--tile", "8", "--overlap", "8"), 1, "--tile 8 --overlap 8: overlap 8 must be smaller than tile 8"},
    {"EC10", s_good, DEC("--max-memory", "1K"), 3, "1.0 KiB cannot be met: the smallest tiles (8x8 latent pixels) need"},
    {"EC11", s_good, DEC("--tile", "0x10"), 1, "--tile takes an integer"},
    {"EC12", s_good, {"upscale", "-m", MODEL, "-s", "2", "-s", "4", "-i", "@in", "-o", "@out", NULL}, 1, "--scale given twice"},
    {"EC13", s_same_stem, {"decode", "--vae", VAE, "-i", "@in", "-i", "@tmp/sub/in.npy", "--out-dir", "@tmp/outdir", NULL}, 1, "would both write"},
    {"EC14", s_thin_vae, DEC("--max-memory", "1K"), 3, "the smallest tiles (5x8 latent pixels) need"},
    {"EC15", s_good, {"decode", "--vae", VAE, "-i", "@in", "@out.png", NULL}, 1, "-i (--in) takes one file; every input follows its own -i"},
    {"EC16", s_good, DEC("--treads", "2"), 1, "unknown option '--treads'; did you mean --threads?"},
    {"EC17", s_good, DEC("--vae-tile-size", "32x16"), 1, "--vae-tile-size 32x16: tiles are square"},
    {"EC18", s_good, DEC("--overlap", "0.25"), 1, "--overlap 0.25: a fraction of the tile needs a tile size"},
    {"EC19", s_good, {"upscale", "-m", MODEL, "-s", "2", "-i", "@in", "-o", "@out", "--max-memory", "1K", NULL}, 3, "cannot be met: the upscale needs"},
    {"EC20", s_image_npy, ENC("--threads", "1"), 1, "in.npy: a .npy image needs --range signed ([-1,1]) or unit ([0,1])"},
    {"EC21", s_image_hot, ENC("--range", "unit"), 2, "in.npy: values from 0 to 1.5, outside the declared range unit [0, 1] (--range)"},
    {"EC22", s_image_npy, {"encode", "--vae", TV, "-i", "@in", "-i", "@in", "-o", "@out", NULL}, 1, "2 inputs need --out-dir DIR (one latent each), not --out"},
    {"EC23", s_good, ENC("--range", "signed"), 2, "in.npy: an image to encode is [3,H,W] or [B,3,H,W], found [16,16,16]"},
    {"EC24", s_image_npy, {"encode", "--vae", TV, "-i", "@in", "-o", "@out.png", "--range", "unit", NULL}, 1, "out.png: a latent is written as .npy"},
    {"EC25", s_image_npy, ENC("--range", "unit", "--seed", "3"), 1, "--seed goes with --sample"},
    {"EC26", s_png8, EVAL("@in"), 2, "in.npy: 8x8 is smaller than the 16x16 that eval x2 needs (8 x the scale in each side)"},
    {"EC27", s_no_png_dir, EVAL("@tmp/empty"), 2, "empty: no *.png files in the folder"},
    {"EC28", s_png_dir, {"eval", "--vae", TV, "-m", "ref_data/tiny/model.safetensors.gz", "-s", "4", "--json", "@out.json", "@tmp/pngs", NULL}, 1, "has no x4 head (its heads: x2): -s must be one of them"},
    {"EC29", s_enc_none, {"eval", "--vae", "@m", "-m", TL, "--json", "@out.json", "@in", NULL}, 2, "no VAE encoder"},
    {"EC30", s_png_dir, EVAL("-s", "4", "--pixel-model", TS, "@tmp/pngs"), 1, "is a x2 SwinIR, and eval runs x4 (-s)"},
    {"EC31", s_png_dir, EVAL("@tmp/pngs"), 2, "a.png: 4x4 is smaller than the 16x16 that eval x2 needs"},
    {"EC32", s_png64_dir, EVAL("@tmp/pngs"), 2, "a.png: eval x2 makes a 32x32 input of it, and its 4x4 latent: latent 4x4 is too small"},
    /* issue 24: every refusal the CLI's option checks make (src/cli/pipeline.c, encode.c, eval.c,
     * cli.c, main.c), each with its own row, so a check that is dropped fails one */
    {"EC33", s_good, {"upscale", "-m", MODEL, "-i", "@in", "-o", "@out", NULL}, 1, "upscale: missing --scale"},
    {"EC34", s_good, {"upscale", "-s", "2", "-i", "@in", "-o", "@out", NULL}, 1, "upscale: missing --model"},
    {"EC35", s_good, {"run", "-m", MODEL, "-s", "2", "-i", "@in", "-o", "@out.png", NULL}, 1, "run: missing --vae"},
    {"EC36", s_good, {"decode", "--vae", VAE, "-o", "@out.png", NULL}, 1, "decode: missing --in"},
    {"EC37", s_good, {"decode", "--vae", VAE, "-i", "@in", NULL}, 1, "decode: missing --out (or --out-dir)"},
    {"EC38", s_good, {"decode", "--vae", VAE, "-i", "@in", "-i", "@in", "-o", "@out.png", NULL}, 1, "2 inputs need --out-dir DIR (one output each), not --out"},
    {"EC39", s_good, {"decode", "--vae", VAE, "-i", "-", "-i", "-", "--out-dir", "@tmp/od", NULL}, 1, "decode: standard input ('-') can be read once"},
    {"EC40", s_good, DEC("--json"), 1, "decode: --json goes with --dry-run"},
    {"EC41", s_good, DEC("--format", "npy"), 1, "--format npy, but --out"},
    {"EC42", s_good, {"decode", "--vae", VAE, "-i", "@in", "-o", "@out", "--png-bits", "16", NULL}, 1, "--png-bits applies to PNG output"},
    {"EC43", s_good, {"run", "-m", MODEL, "-s", "2", "--vae", VAE, "-i", "@in", "-o", "@out.png", "--save-latent", "@tmp/up.png", NULL}, 1, "up.png: must end in .npy"},
    {"EC44", s_good, {"run", "-m", MODEL, "-s", "2", "--vae", VAE, "-i", "@in", "-o", "@out", "--save-latent", "@out", NULL}, 1, "--save-latent and --out name the same file"},
    {"EC45", s_good, {"upscale", "-m", MODEL, "-s", "2", "-i", "@in", "-o", "@out", "--diffusion-latent", "vae", NULL}, 1, "and upscale has no --vae"},
    {"EC46", s_good, DEC("--flux-packed", "9x8"), 1, "--flux-packed 9x8: the latent size must be even in both dimensions"},
    {"EC47", s_good, DEC("--vae-tile-size", "16x16", "--overlap", "16"), 1, "--overlap 16 must be smaller than the tile, 16"},
    {"EC48", s_good, {"decode", "--vae", VAE, "-i", "@in", "-o", "@tmp/o_%d_%d.png", NULL}, 1, "a pattern takes one %d"},
    {"EC49", s_image_npy, {"encode", "-i", "@in", "-o", "@out", "--range", "unit", NULL}, 1, "encode: missing --vae"},
    {"EC50", s_image_npy, {"encode", "--vae", TV, "-o", "@out", "--range", "unit", NULL}, 1, "encode: missing --in"},
    {"EC51", s_image_npy, {"encode", "--vae", TV, "-i", "@in", "--range", "unit", NULL}, 1, "encode: missing --out (or --out-dir)"},
    {"EC52", s_image_npy, {"encode", "--vae", TV, "-i", "-", "-i", "-", "--out-dir", "@tmp/od", "--range", "unit", NULL}, 1, "encode: standard input ('-') can be read once"},
    {"EC53", s_image_npy, ENC("--range", "unit", "--json"), 1, "encode: --json goes with --dry-run"},
    {"EC54", s_same_stem, {"encode", "--vae", TV, "-i", "@in", "-i", "@tmp/sub/in.npy", "--out-dir", "@tmp/outdir", "--range", "unit", NULL}, 1, "would both write"},
    {"EC55", s_png8, {"eval", "-m", TL, "--json", "@out.json", "@in", NULL}, 1, "eval: missing --vae"},
    {"EC56", s_png8, {"eval", "--vae", TV, "--json", "@out.json", "@in", NULL}, 1, "eval: missing --model (the LUA)"},
    {"EC57", s_png8, EVAL("-"), 1, "'-': eval reads each image twice"},
    {"EC58", s_png_pair, EVAL("--save", "@tmp/sv", "@tmp/pngs/a.png", "@tmp/pngs2/a.png"), 1, "would both write"},
    {"EC59", s_png8, {"eval", "--vae", TV, "-m", TS, "--json", "@out.json", "@in", NULL}, 1, "is a pixel-space SwinIR, not a LUA: give it as --pixel-model"},
    {"EC60", s_png8, EVAL("--pixel-model", TL, "@in"), 1, "is not a pixel-space (RGB) SwinIR"},
    {"EC61", s_good, {"help", "upscale", "decode", NULL}, 1, "help takes one command name"},
    {"EC62", s_good, {"--version", "--json", NULL}, 1, "--version takes no arguments but --verbose (-v)"},
    {"EC63", s_good, {"upscal", NULL}, 1, "unknown command 'upscal'; did you mean 'upscale'?"},
    {"EC64", s_good, {"frobnicate", NULL}, 1, "unknown command 'frobnicate'"},
    /* issue 8: rows E100.. (class 1: unbounded work; 2: degenerate models; 4: non-regular inputs;
     * 7: error lines) */
    {"E100", s_pickle_bomb, UP("@m"), 2, "budget that keeps a small file from claiming gigabytes"},
    {"E101", s_window, UP("@m"), 2, "(2*window-1)^2 rows 39601; a model has 1 to 3969"},
    {"E102", s_good, UP("/dev/zero"), 2, "/dev/zero: not a checkpoint"},
    {"E103", s_good, {"upscale", "--model", MODEL, "--scale", "2", "--in", "/dev/zero", "--out", "@out", NULL}, 2, "/dev/zero: not a .npy"},
    {"E104", s_gz_bomb, UP("@m"), 2, "inflates past the 79 bytes its header describes"},
    {"E105", s_zip_10g, UP("@m"), 2, "claims 10000000000 bytes from 1024 compressed"},
    {"E106", s_embed0, UP("@m"), 2, "'conv_first.weight' of shape [0,16,3,3] gives embed dim 0"},
    {"E107", s_chans0, UP("@m"), 2, "'conv_first.weight' of shape [60,0,3,3] gives input channels 0"},
    {"E108", s_vae_in0, {"decode", "--vae", "@m", "--in", "@in", "--out", "@out", NULL}, 2, "'decoder.conv_in.weight' of shape [64,0,3,3] gives latent channels 0"},
    {"E109", s_nan_weight, UP("@m"), 2, "'layers.0.residual_group.blocks.0.attn.qkv.weight' holds NaN at flat index 5"},
    {"E110", s_inf_weight, {"decode", "--vae", "@m", "--in", "@in", "--out", "@out", NULL}, 2, "'decoder.up.1.block.0.conv1.weight' holds Inf at flat index 11"},
    {"E111", s_fed_model, UP("@fifo"), 2, "4 channels, the model expects 16"},
    {"E112", s_fed_model, UP("@stdin:-"), 2, "4 channels, the model expects 16"},
    {"E113", s_fed_vae, {"decode", "--vae", "@stdin:/dev/stdin", "--in", "@in", "--out", "@out", NULL}, 2, "4 channels, the VAE expects 16"},
    {"E114", s_fed_cut, UP("@fifo"), 2, "m: truncated gzip data"},
    {"E115", s_fed_zero, UP("@stdin:-"), 2, "<stdin>: not a checkpoint"},
    {"E116", s_ansi_name, UP("@m"), 2, "unexpected tensor '\\x1b[31mevil\\x1b[0m\\x07'"},
    {"E117", s_long_name, UP("@m"), 2, "' (1 of 84 tensors are not part of a LUA model)"},
    {"E118", s_nul_global, UP("@m"), 2, "refusing pickle global 'collections.OrderedDict\\x00evil'"},
    {"E119", s_good, UP("@longpath"), 4, "0: cannot open: No such file or directory"},
    /* class 6: planning arithmetic (sizes in 64 bits, int indexing bounded up front) */
    {"E120", s_deep_tall, {"decode", "--vae", "@m", "--in", "@in", "--out", "@out", NULL}, 2, "latent 8192x256 decodes to 262144x8192, over 2^31 pixels"},
    {"E121", s_deep_wide, {"decode", "--vae", "@m", "--in", "@in", "--out", "@out", NULL}, 2, "latent 256x8192 decodes to 8192x262144, over 2^31 pixels"},
    {"E122", s_deep_ok, {"decode", "--vae", "@m", "--in", "@in", "--out", "@out", NULL}, 0, "[1,4,4] -> "},
    {"E123", s_lua_huge, UP(MODEL), 2, "latent 16385x1 is out of range: sides must be 1..16384"},
    {"E124", s_vae_huge, {"decode", "--vae", VAE_SMALL, "--in", "@in", "--out", "@out", NULL}, 2, "latent 8193x1 is out of range: sides must be 1..8192"},
    /* class 8: long, thin latents (several bands per conv, windows padded on one side only) */
    {"E125", s_thin_wide, UP(MODEL), 0, "[16,9,225] -> x2 -> "},
    {"E126", s_thin_tall, {"upscale", "--model", MODEL, "--scale", "4", "--in", "@in", "--out", "@out", NULL}, 0, "[16,225,9] -> x4 -> "},
    {"E127", s_thin_rgb, UP("ref_data/swinir/classic_x2.pth"), 0, "[3,9,200] -> x2 -> "},
    /* issue 21: what the input's shape or the VAE folder gives away */
    {"E128", s_rgb_png, UP(MODEL), 2, "3 channels is an RGB image: LUA upscales 16-channel latents"},
    {"E129", s_packed_square, UP(MODEL), 2, "FLUX's packed tokens? 64 tokens of 64 = 4 x 16 channels: unpack them first, --flux-packed 16x16"},
    {"E130", s_folder_no_weights, {"decode", "--vae", "@tmp/vae", "--in", "@in", "--out", "@out", NULL}, 2, "vae: no diffusion_pytorch_model.safetensors"},
    {"E131", s_folder_no_config, {"decode", "--vae", "@tmp/vae", "--in", "@in", "--out", "@out", NULL}, 2, "vae: a folder without config.json or vae/"},
    {"E132", s_folder_channels, {"decode", "--vae", "@tmp/vae", "--in", "@in", "--out", "@out", NULL}, 2, "config.json says latent_channels 4, the decoder in"},
    {"E133", s_folder_class, {"decode", "--vae", "@tmp/vae", "--in", "@in", "--out", "@out", NULL}, 2, "config.json: _class_name is 'FluxTransformer2DModel', not an AutoencoderKL"},
    {"E134", s_vae_channels, {"decode", "--vae", VAE, "--diffusion-latent", "vae", "--in", "@in", "--out", "@out", NULL}, 1, "--diffusion-latent vae: ref_data/vae/flux_small.ldm.safetensors.gz has no config.json"},
    {"E135", s_enc_none, ENC_VAE("@m"), 2, "no VAE encoder ('encoder.conv_out.weight'"},
    {"E136", s_enc_missing, ENC_VAE("@m"), 2, "missing tensor 'encoder.mid.attn_1.k.weight' (expected [64,64,1,1])"},
    {"E137", s_enc_small, ENC_VAE("ref_data/trained/vae.ldm.safetensors.gz"), 2, "image 5x4 is smaller than the encoder's 8 pixels"},
};
#define N_ROWS (int)(sizeof ROWS / sizeof ROWS[0])

static int setup(void **state) {
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/latup_err_XXXXXX");
    assert_non_null(mkdtemp(g_tmp));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static int out_exists(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s 2>/dev/null | grep -q '^out'", g_tmp);
    return system(cmd) == 0;
}

/* Feeds tmp("m.src") into fd (a FIFO it opens, or a pipe's write end), then exits. As a watchdog
 * it also unblocks a reader that opened the FIFO a second time (after 20 s), so such a bug fails
 * the row instead of hanging the test. */
static pid_t start_feeder(int fd_or_fifo) {
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid > 0) return pid;
    signal(SIGPIPE, SIG_IGN);
    int fd = fd_or_fifo >= 0 ? fd_or_fifo : open(tmp("m"), O_WRONLY);
    FILE *f = fopen(tmp("m.src"), "rb");
    uint8_t b[65536];
    size_t n;
    while (f && fd >= 0 && (n = fread(b, 1, sizeof b, f)) > 0)
        if (write(fd, b, n) != (ssize_t)n) break;
    if (fd >= 0) close(fd);
    if (fd_or_fifo < 0) {
        sleep(20);
        int again = open(tmp("m"), O_WRONLY | O_NONBLOCK);
        if (again >= 0) close(again);
    }
    _exit(0);
}

/* ---- the message docs/errors.md promises --------------------------------------------------------
 * Each row's "latup says" column holds one or more `examples`; the stderr line must begin with one
 * of them (what follows the example, the docs may leave out), with: M the model the row reads
 * (tmp("m") when it is the row's "@m", else --model's, else --vae's), IN its first --in, OUT its
 * --out (each exactly that path); DIR, TS, TV, TL a path (a run of non-blank bytes); "..."
 * anything. The line may begin with "latup: " or "latup CMD: ", which the docs leave out. So a
 * message that stops naming the model, the input or the file it is about fails its row. */

static char *g_doc; /* docs/errors.md */

static void load_doc(void) {
    if (g_doc) return;
    size_t n;
    uint8_t *doc = slurp("docs/errors.md", &n);
    g_doc = malloc(n + 1);
    memcpy(g_doc, doc, n);
    g_doc[n] = '\0';
    free(doc);
}

/* The row's "latup says" column (between its second and third " | "), or NULL. */
static char *doc_says(const char *id) {
    load_doc();
    char key[16];
    snprintf(key, sizeof key, "\n| %s |", id);
    const char *p = strstr(g_doc, key);
    if (!p) return NULL;
    const char *eol = strchr(p + 1, '\n');
    p = strstr(p + strlen(key), " | ");
    if (!p || (eol && p > eol)) return NULL;
    const char *q = p + 3;
    /* the column ends at the row's last " | " (the exit code's) */
    const char *last = NULL;
    for (const char *r = q; (r = strstr(r, " | ")) && (!eol || r < eol); r++) last = r;
    if (!last) return NULL;
    return strndup(q, (size_t)(last - q));
}

typedef struct {
    const char *m, *in, *out;
} roles;

static int is_word(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

/* The placeholder at p (a whole word), its length in *n; its value in *lit, or NULL for "a path". */
static int placeholder(const char *pat, const char *p, const roles *r, size_t *n, const char **lit) {
    static const char *const words[] = {"M", "IN", "OUT", "DIR", "TS", "TV", "TL"};
    if (p > pat && is_word(p[-1])) return 0;
    for (size_t k = 0; k < sizeof words / sizeof *words; k++) {
        size_t L = strlen(words[k]);
        if (strncmp(p, words[k], L) || is_word(p[L])) continue;
        const char *v = k == 0 ? r->m : k == 1 ? r->in : k == 2 ? r->out : NULL;
        if (k < 3 && !v) return 0; /* no such role in this row: the word is text */
        *n = L, *lit = v;
        return 1;
    }
    return 0;
}

/* pat[p..pe) against the head of s (backtracking on "..." and on paths). */
static int glob(const char *pat, const char *p, const char *pe, const char *s, const roles *r) {
    while (p < pe) {
        size_t n;
        const char *lit;
        if (pe - p >= 3 && !strncmp(p, "...", 3)) {
            for (const char *t = s;; t++) {
                if (glob(pat, p + 3, pe, t, r)) return 1;
                if (!*t) return 0;
            }
        }
        if (placeholder(pat, p, r, &n, &lit)) {
            if (lit) {
                size_t L = strlen(lit);
                if (strncmp(s, lit, L)) return 0;
                s += L, p += n;
                continue;
            }
            for (const char *t = s; *t && *t != ' ' && *t != '\n'; t++)
                if (glob(pat, p + n, pe, t + 1, r)) return 1;
            return 0;
        }
        if (*s != *p) return 0;
        s++, p++;
    }
    return 1;
}

/* The stderr line (without its '\n') against one example. */
static int says_as_documented(const char *ex, size_t exn, const char *err, const roles *r) {
    char line[4096];
    snprintf(line, sizeof line, "%s", err);
    line[strcspn(line, "\n")] = '\0';
    const char *starts[2] = {line, NULL};
    if (!strncmp(line, "latup: ", 7)) starts[1] = line + 7;
    else if (!strncmp(line, "latup ", 6)) { /* "latup CMD: " */
        const char *cmd = line + 6, *colon = strstr(cmd, ": ");
        if (colon && colon > cmd && !memchr(cmd, ' ', (size_t)(colon - cmd))) starts[1] = colon + 2;
    }
    for (int k = 0; k < 2; k++)
        if (starts[k] && glob(ex, ex, ex + exn, starts[k], r)) return 1;
    return 0;
}

/* 1 when err matches one of the row's `examples`; the column in *col (malloc'd) for the report. */
static int promised(const char *id, const char *err, const roles *r, char **col) {
    *col = doc_says(id);
    if (!*col) return 0;
    for (const char *p = *col; (p = strchr(p, '`'));) {
        const char *q = strchr(p + 1, '`');
        if (!q) break;
        if (says_as_documented(p + 1, (size_t)(q - p - 1), err, r)) return 1;
        p = q + 1;
    }
    return 0;
}

/* The row's roles from its (substituted) arguments. */
static roles roles_of(const row *w, const char *const *args) {
    roles r = {0};
    const char *model = NULL, *vae = NULL;
    for (int i = 0; args[i] && args[i + 1]; i++) {
        const char *o = args[i], *v = args[i + 1];
        if (!strcmp(o, "--model") || !strcmp(o, "-m")) model = v;
        else if (!strcmp(o, "--vae")) vae = v;
        else if ((!strcmp(o, "--in") || !strcmp(o, "-i")) && !r.in) r.in = !strcmp(v, "-") ? "<stdin>" : v;
        else if (!strcmp(o, "--out") || !strcmp(o, "-o")) r.out = v;
    }
    for (int i = 0; w->args[i]; i++)
        if (!strcmp(w->args[i], "@m") || !strcmp(w->args[i], "@fifo")) r.m = args[i];
        else if (!strcmp(w->args[i], "@in") && !r.in) r.in = args[i]; /* a positional input (eval) */
    if (!r.m) r.m = model ? model : vae;
    return r;
}

static void test_rows(void **state) {
    (void)state;
    int bad = 0;
    for (int r = 0; r < N_ROWS; r++) {
        const row *w = &ROWS[r];
        while (waitpid(-1, NULL, WNOHANG) > 0) {} /* a setup's helper process, done */
        w->setup();
        const char *args[16];
        char subst[16][600];
        int feed = FEED_FILE;
        for (int i = 0; i < 16; i++) {
            args[i] = w->args[i];
            if (!args[i]) break;
            if (!strcmp(args[i], "@in")) args[i] = tmp("in.npy");
            else if (!strcmp(args[i], "@m")) args[i] = tmp("m");
            else if (!strcmp(args[i], "@longpath")) args[i] = long_path();
            else if (!strcmp(args[i], "@fifo")) args[i] = tmp("m"), feed = FEED_FIFO;
            else if (!strncmp(args[i], "@stdin:", 7)) args[i] += 7, feed = FEED_STDIN;
            else if (!strncmp(args[i], "@out", 4)) {
                snprintf(subst[i], sizeof subst[i], "%s/out%s", g_tmp, args[i][4] ? args[i] + 4 : ".npy");
                args[i] = subst[i];
            } else if (!strncmp(args[i], "@tmp/", 5)) {
                snprintf(subst[i], sizeof subst[i], "%s/%s", g_tmp, args[i] + 5);
                args[i] = subst[i];
            }
        }
        pid_t feeder = -1;
        int saved_stdin = -1;
        if (feed == FEED_FIFO) {
            unlink(tmp("m"));
            assert_int_equal(mkfifo(tmp("m"), 0600), 0);
            feeder = start_feeder(-1);
        } else if (feed == FEED_STDIN) {
            int fds[2];
            assert_int_equal(pipe(fds), 0);
            feeder = start_feeder(fds[1]);
            close(fds[1]);
            saved_stdin = dup(STDIN_FILENO);
            dup2(fds[0], STDIN_FILENO);
            close(fds[0]);
        }
        int rc = run_latup(args);
        if (saved_stdin >= 0) dup2(saved_stdin, STDIN_FILENO), close(saved_stdin);
        if (feeder > 0) kill(feeder, SIGKILL), waitpid(feeder, NULL, 0);
        if (feed == FEED_FIFO) unlink(tmp("m"));
        /* an error: one line of printable text, no output; a row that must succeed (exit 0): its
         * one summary line and its output */
        int lines = 0, controls = 0;
        for (const char *p = g_err; *p; p++) lines += *p == '\n', controls += (unsigned char)*p < 0x20 && *p != '\n';
        const roles rl = roles_of(w, args);
        char *col;
        const int as_doc = promised(w->id, g_err, &rl, &col);
        const int ok = rc == w->exit_code && lines == 1 && !controls && strstr(g_err, w->says) &&
                       out_exists() == (w->exit_code == 0) && as_doc;
        printf("%s exit %d (want %d), the message docs/errors.md gives: %s; %s: %s", w->id, rc, w->exit_code,
               as_doc ? "yes" : "NO", ok ? "OK" : "NOT OK", g_err);
        if (!as_doc) printf("    docs/errors.md: %s\n", col ? col : "(no row)");
        free(col);
        if (lines != 1) printf("    (%d lines on stderr)\n", lines);
        if (controls) printf("    (%d control bytes on stderr)\n", controls);
        bad += !ok;
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf %s/out*", g_tmp);
        assert_int_equal(system(cmd), 0);
    }
    while (wait(NULL) > 0) {}
    printf("errors: %d rows, %d NOT OK\n", N_ROWS, bad);
    assert_int_equal(bad, 0);
}

/* docs/errors.md lists exactly these rows ("| E01 |" ...). */
static void test_doc_matches(void **state) {
    (void)state;
    size_t n;
    uint8_t *doc = slurp("docs/errors.md", &n);
    char *text = malloc(n + 1);
    memcpy(text, doc, n);
    text[n] = '\0';
    int in_doc = 0, missing = 0;
    for (char *p = text; (p = strstr(p, "\n| E")); p++) {
        char id[8] = {0};
        if (sscanf(p, "\n| %7s |", id) != 1) continue;
        in_doc++;
        int found = 0;
        for (int r = 0; r < N_ROWS; r++) found |= !strcmp(ROWS[r].id, id);
        if (!found) printf("docs/errors.md row %s has no test\n", id), missing++;
    }
    for (int r = 0; r < N_ROWS; r++) {
        char key[16];
        snprintf(key, sizeof key, "\n| %s |", ROWS[r].id);
        if (!strstr(text, key)) printf("test row %s is not in docs/errors.md\n", ROWS[r].id), missing++;
    }
    printf("docs/errors.md: %d rows, %d tests, %d mismatches\n", in_doc, N_ROWS, missing);
    assert_int_equal(missing, 0);
    assert_int_equal(in_doc, N_ROWS);
    free(text);
    free(doc);
}


/* ---- config inference bounds at their values and one past ------------------------------------- */

/* A safetensors file of zero-valued F32 tensors: "name:d0,d1,..." entries. */
static void write_spec(const char *path, const char *const *spec, int n) {
    latup_weights w;
    memset(&w, 0, sizeof w);
    w.t = calloc((size_t)n, sizeof *w.t);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        latup_wtensor *t = &w.t[i];
        const char *colon = strchr(spec[i], ':');
        t->name = strndup(spec[i], (size_t)(colon - spec[i]));
        t->numel = 1;
        for (const char *p = colon + 1; *p;) {
            char *end;
            t->shape[t->ndim++] = strtoll(p, &end, 10);
            t->numel *= t->shape[t->ndim - 1];
            p = *end ? end + 1 : end;
        }
        total += (size_t)t->numel;
    }
    float *blob = calloc(total ? total : 1, sizeof(float));
    w.blob = blob;
    w.n = n;
    for (int i = 0; i < n; i++) w.t[i].f32 = blob, blob += w.t[i].numel;
    assert_int_equal(latup_safetensors_write(path, &w), LATUP_OK);
    latup_weights_free(&w);
}

/* Loads `path` as LUA (vae = 0) or VAE and expects LATUP_E_INPUT whose message holds `phrase`
 * (the bound, at limit + 1) or lacks `bound` (at the limit: some later check fails instead). */
static void expect_load(const char *path, int vae, const char *phrase, const char *bound) {
    latup_lua *m = NULL;
    latup_vae *v = NULL;
    latup_status st = vae ? latup_vae_load(path, &v) : latup_lua_load(path, &m);
    const char *msg = st ? latup_last_error() : "loaded";
    int ok = phrase ? st == LATUP_E_INPUT && strstr(msg, phrase) != NULL : !strstr(msg, bound);
    printf("  %-6s %s\n", ok ? "OK" : "NOT OK", msg);
    latup_lua_free(m);
    latup_vae_free(v);
    assert_true(ok);
}

static void test_config_bounds_at_edges(void **state) {
    (void)state;
    const char *p = tmp("bounds.safetensors");
    char a[160], b[160], c[160], d[160], e[160];
    static const struct {
        const char *what; /* the bound as the message says it */
        int limit;
    } lua[] = {{"embed dim", 4096}, {"input channels", 1024}, {"heads", 64}, {"head width (embed dim / heads)", 512},
               {"MLP width", 65536}, {"head width", 4096}, {"output channels", 1024}};
    for (size_t k = 0; k < sizeof lua / sizeof lua[0]; k++)
        for (int extra = 0; extra < 2; extra++) {
            const int v = lua[k].limit + extra;
            int E = 1, C = 1, nH = 1, hid = 1, F = 1, Co = 1;
            switch (k) {
            case 0: E = v; break;
            case 1: C = v; break;
            case 2: E = v, nH = v; break; /* heads of width 1 */
            case 3: E = v; break;
            case 4: hid = v; break;
            case 5: F = v; break;
            case 6: Co = v; break;
            }
            if (k == 3) nH = 1;
            snprintf(a, sizeof a, "conv_first.weight:%d,%d,3,3", E, C);
            snprintf(b, sizeof b, "layers.0.residual_group.blocks.0.attn.relative_position_bias_table:1,%d", nH);
            snprintf(c, sizeof c, "layers.0.residual_group.blocks.0.mlp.fc1.weight:%d,%d", hid, E);
            snprintf(d, sizeof d, "heads.x2.conv_before.0.weight:%d,%d,3,3", F, E);
            snprintf(e, sizeof e, "heads.x2.conv_last.weight:%d,%d,3,3", Co, F);
            const char *spec[] = {a, "layers.0.residual_group.blocks.0.norm1.weight:1", b, c, d, e};
            write_spec(p, spec, 6);
            char phrase[160];
            snprintf(phrase, sizeof phrase, "gives %s %d; a model has 1 to %d", lua[k].what, v, lua[k].limit);
            char bound[96];
            snprintf(bound, sizeof bound, "gives %s ", lua[k].what);
            expect_load(p, 0, extra ? phrase : NULL, bound);
        }
    /* Swin blocks per RSTB: 64, then 65 (only the names count) */
    for (int extra = 0; extra < 2; extra++) {
        snprintf(a, sizeof a, "layers.0.residual_group.blocks.%d.norm1.weight:1", 63 + extra);
        const char *spec[] = {"conv_first.weight:1,1,3,3", a};
        write_spec(p, spec, 2);
        expect_load(p, 0, extra ? "give 65 Swin blocks; a model has 1 to 64" : NULL, "Swin blocks;");
    }
    /* the window: (2*32-1)^2 = 3969 rows, then 3970 */
    for (int extra = 0; extra < 2; extra++) {
        snprintf(b, sizeof b, "layers.0.residual_group.blocks.0.attn.relative_position_bias_table:%d,1", 3969 + extra);
        const char *spec[] = {"conv_first.weight:1,1,3,3", "layers.0.residual_group.blocks.0.norm1.weight:1", b};
        write_spec(p, spec, 3);
        expect_load(p, 0, extra ? "gives (2*window-1)^2 rows 3970; a model has 1 to 3969" : NULL, "(2*window-1)^2 rows");
    }
    /* attention tables: window 32, 64 blocks, 4 heads = 2^28 floats (1 GiB); 5 heads is the next step */
    for (int extra = 0; extra < 2; extra++) {
        const int nH = 4 + extra;
        snprintf(a, sizeof a, "conv_first.weight:%d,1,3,3", 20 * nH);
        snprintf(b, sizeof b, "layers.0.residual_group.blocks.0.attn.relative_position_bias_table:3969,%d", nH);
        const char *spec[] = {a, "layers.0.residual_group.blocks.63.norm1.weight:1", b};
        write_spec(p, spec, 3);
        expect_load(p, 0, extra ? "needs 1280 MiB of relative-position tables, more than the 1024 MiB" : NULL,
                    "relative-position tables");
    }
    /* VAE: latent channels (conv_in's input), an up level's width, image channels */
    static const struct {
        const char *what;
        int limit;
    } vae[] = {{"latent channels", 256}, {"channels", 4096}, {"image channels", 64}};
    for (size_t k = 0; k < sizeof vae / sizeof vae[0]; k++)
        for (int extra = 0; extra < 2; extra++) {
            const int v = vae[k].limit + extra;
            snprintf(a, sizeof a, "decoder.conv_in.weight:32,%d,3,3", k == 0 ? v : 1);
            snprintf(b, sizeof b, "decoder.up.0.block.0.conv1.weight:%d,1,3,3", k == 1 ? v : 32);
            snprintf(c, sizeof c, "decoder.conv_out.weight:%d,32,3,3", k == 2 ? v : 3);
            const char *spec[] = {a, "decoder.mid.block_1.conv1.weight:1,1,3,3", b, c};
            write_spec(p, spec, 4);
            char phrase[160], bound[96];
            snprintf(phrase, sizeof phrase, "gives %s %d; a model has 1 to %d", vae[k].what, v, vae[k].limit);
            snprintf(bound, sizeof bound, "gives %s ", vae[k].what);
            expect_load(p, 1, extra ? phrase : NULL, bound);
        }
}

/* latup_weights_parse picks the reader by the first bytes: a zip, a bare pickle (torch < 1.6,
 * refused by name), safetensors; 8 bytes are too short to tell, and from 9 the safetensors reader
 * answers. */
static void test_weights_parse_picks(void **state) {
    (void)state;
    const struct {
        const char *path, *says; /* says NULL: read */
    } files[] = {{"ref_data/tiny/model.pth", NULL},
                 {MODEL, NULL},
                 {"tests/data/pth/legacy.pth", "legacy PyTorch (<1.6) format"}};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        size_t n;
        uint8_t *b = slurp(files[k].path, &n);
        const latup_status st = parse_weights(b, n, files[k].path);
        const int ok = files[k].says ? st == LATUP_E_INPUT && strstr(latup_last_error(), files[k].says) : st == LATUP_OK;
        printf("latup_weights_parse %s: %s %s\n", files[k].path, st ? latup_last_error() : "read", ok ? "OK" : "NOT OK");
        assert_true(ok);
        free(b);
    }
    const uint8_t eight[9] = {2, 0, 0, 0, 0, 0, 0, 0, '{'};
    assert_int_equal(parse_weights(eight, 8, "eight"), LATUP_E_INPUT);
    assert_non_null(strstr(latup_last_error(), "too short for a checkpoint"));
    assert_int_equal(parse_weights(eight, 9, "nine"), LATUP_E_INPUT);
    printf("8 bytes: too short; 9 bytes ending in '{': %s\n", latup_last_error());
    assert_null(strstr(latup_last_error(), "too short for a checkpoint"));
}

/* ---- names in messages at the length where they are shortened ------------------------------------
 * A %s argument whose shown form (a byte outside printable ASCII shown as \xNN, 4 wide) is
 * LATUP_SHOWN_MAX bytes appears whole; one byte more and it keeps its head and tail around "...",
 * LATUP_SHOWN_MAX bytes in all. */
static void check_shown(const char *what, const char *arg, int want_whole) {
    char msg[LATUP_ERR_MAX];
    latup_format(msg, sizeof msg, "[%s]", arg);
    size_t w = 0;
    for (const char *p = arg; *p; p++) w += (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f ? 1 : 4;
    const size_t shown = strlen(msg) - 2;
    const int is_whole = shown == w && strstr(msg, "...") == NULL;
    const int ok = want_whole ? is_whole : !is_whole && shown == LATUP_SHOWN_MAX && strstr(msg, "...") != NULL &&
                                              msg[1] == arg[0] && msg[strlen(msg) - 2] == arg[strlen(arg) - 1];
    printf("%s: shown width %zu, the message shows %zu bytes, %s (want %s) %s\n", what, w, shown,
           is_whole ? "whole" : "shortened", want_whole ? "whole" : "shortened to its head ... tail", ok ? "OK" : "NOT OK");
    assert_true(ok);
}

static void test_shown_at_the_limit(void **state) {
    (void)state;
    char s[LATUP_SHOWN_MAX + 8];
    memset(s, 'n', LATUP_SHOWN_MAX), s[LATUP_SHOWN_MAX] = '\0', s[LATUP_SHOWN_MAX - 1] = 'z';
    check_shown("a name of LATUP_SHOWN_MAX printable bytes", s, 1);
    memset(s, 'n', LATUP_SHOWN_MAX + 1), s[LATUP_SHOWN_MAX + 1] = '\0', s[LATUP_SHOWN_MAX] = 'z';
    check_shown("a name of LATUP_SHOWN_MAX + 1 printable bytes", s, 0);
    memset(s, 'n', LATUP_SHOWN_MAX - 4), s[LATUP_SHOWN_MAX - 4] = '\x1b', s[LATUP_SHOWN_MAX - 3] = '\0';
    check_shown("LATUP_SHOWN_MAX - 4 bytes and an escape (shown \\x1b)", s, 1);
    memset(s, 'n', LATUP_SHOWN_MAX - 4), s[LATUP_SHOWN_MAX - 4] = '\x1b', s[LATUP_SHOWN_MAX - 3] = 'z',
        s[LATUP_SHOWN_MAX - 2] = '\0';
    check_shown("LATUP_SHOWN_MAX - 4 bytes, an escape and one more", s, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_rows), cmocka_unit_test(test_doc_matches),
                                       cmocka_unit_test(test_config_bounds_at_edges),
                                       cmocka_unit_test(test_shown_at_the_limit),
                                       cmocka_unit_test(test_weights_parse_picks)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
