/* png.c — PNG reader (8-bit, non-interlaced, all five color types; 16-bit gray, gray+alpha, RGB,
 * RGBA) and 8- or 16-bit RGB writer with optional text chunks, on zlib alone. The reader walks the chunks once, checking every CRC, and inflates the IDAT stream into
 * a buffer that grows only as data actually arrives and is capped at the exact size the header
 * implies, so neither a lying header nor a zlib bomb can make it allocate more than the file
 * really holds. */
#define _POSIX_C_SOURCE 200809L
#include "io/png.h"

#include "io/fileio.h"
#include "io/json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PNG_MAX_FILE ((uint64_t)2 << 30)
#define PNG_MAX_CHUNK 0x7FFFFFFFu           /* the spec's limit on a chunk length */
#define PNG_IDAT_MAX ((size_t)1 << 20)      /* the writer splits IDAT at 1 MiB */
#define PNG_ZLIB_STEP ((size_t)1 << 30)     /* zlib counts in uInt: at most 1 GiB per call */

static const uint8_t k_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The PNG spec's Paeth predictor (ISO 15948, 9.4), ties broken in the order a, b, c. */
static uint8_t paeth(int a, int b, int c) {
    int p = a + b - c;
    int pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc) return (uint8_t)a;
    if (pb <= pc) return (uint8_t)b;
    return (uint8_t)c;
}

/* ---- reading ---------------------------------------------------------------------------------- */

typedef struct {
    const char *path;
    uint32_t W, H;
    int color;            /* IHDR color type: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA */
    int depth;            /* bits per sample: 8, or 16 (big-endian pairs) */
    int bpp;              /* bytes per pixel: samples per pixel x depth / 8 */
    size_t stride;        /* 1 filter byte + W * bpp */
    size_t expected;      /* stride * H: the exact inflated size */
    int n_palette;
    uint8_t palette[256 * 3];
    z_stream zs;
    bool z_init, z_end;
    uint8_t *raw;         /* inflated scanlines, grown as data arrives, never past expected + 1 */
    size_t raw_len, raw_cap;
} png_dec;

/* Every reader error: LATUP_E_INPUT, "<path>: <what>". */
static latup_status bad(const png_dec *d, const char *fmt, ...) LATUP_PRINTF(2, 3);
static latup_status bad(const png_dec *d, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return latup_fail(LATUP_E_INPUT, "%s: %s", d->path, msg);
}

/* The chunk type for messages: the four bytes if they are letters, else hex. */
static const char *type_str(const uint8_t *t, char out[16]) {
    bool letters = true;
    for (int k = 0; k < 4; k++)
        if (!((t[k] >= 'A' && t[k] <= 'Z') || (t[k] >= 'a' && t[k] <= 'z'))) letters = false;
    if (letters)
        snprintf(out, 16, "'%c%c%c%c'", t[0], t[1], t[2], t[3]);
    else
        snprintf(out, 16, "%02x %02x %02x %02x", t[0], t[1], t[2], t[3]);
    return out;
}

static latup_status parse_ihdr(png_dec *d, const uint8_t *p, uint32_t len) {
    if (len != 13) return bad(d, "IHDR chunk has %u bytes, expected 13", len);
    d->W = be32(p);
    d->H = be32(p + 4);
    int depth = p[8], color = p[9], comp = p[10], filter = p[11], interlace = p[12];
    if (d->W == 0 || d->H == 0 || d->W > LATUP_PNG_MAX_SIDE || d->H > LATUP_PNG_MAX_SIDE)
        return bad(d, "image size %ux%u (width x height) outside 1 to %d per side", d->W, d->H,
                   LATUP_PNG_MAX_SIDE);
    if ((uint64_t)d->W * d->H > (uint64_t)LATUP_PNG_MAX_PIXELS)
        return bad(d, "image size %ux%u is %llu pixels, more than the limit of %lld", d->W, d->H,
                   (unsigned long long)d->W * d->H, (long long)LATUP_PNG_MAX_PIXELS);
    /* Which bit depths the spec allows for each color type (ISO 15948, table 11.1). */
    switch (color) {
    case 0: d->bpp = 1; break;
    case 2: d->bpp = 3; break;
    case 3: d->bpp = 1; break;
    case 4: d->bpp = 2; break;
    case 6: d->bpp = 4; break;
    default: return bad(d, "invalid color type %d (PNG defines 0, 2, 3, 4, 6)", color);
    }
    bool depth_ok = color == 0   ? (depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16)
                    : color == 3 ? (depth == 1 || depth == 2 || depth == 4 || depth == 8)
                                 : (depth == 8 || depth == 16);
    if (!depth_ok) return bad(d, "invalid bit depth %d for color type %d", depth, color);
    if (comp != 0) return bad(d, "unknown compression method %d (expected 0)", comp);
    if (filter != 0) return bad(d, "unknown filter method %d (expected 0)", filter);
    if (interlace > 1) return bad(d, "unknown interlace method %d (expected 0 or 1)", interlace);
    /* 16 bits is what --png-bits 16 writes; 1, 2 and 4 bits nothing latup makes */
    if (depth != 8 && depth != 16)
        return bad(d, "bit depth %d not supported (latup reads 8- and 16-bit PNGs)", depth);
    if (interlace == 1) return bad(d, "interlaced (Adam7) PNG not supported");
    d->color = color;
    d->depth = depth;
    d->bpp *= depth / 8; /* the filters work on bytes, bpp bytes to the left */
    /* W * H <= 2^28 and bpp <= 4: no overflow on any host with a 64-bit size_t; checked anyway. */
    size_t row;
    if (!latup_mul_ok((size_t)d->W, (size_t)d->bpp, &row) || row == SIZE_MAX ||
        !latup_mul_ok(row + 1, (size_t)d->H, &d->expected) || d->expected == SIZE_MAX)
        return bad(d, "image size %ux%u is too large for this host", d->W, d->H);
    d->stride = row + 1;
    return LATUP_OK;
}

static latup_status parse_plte(png_dec *d, const uint8_t *p, uint32_t len) {
    if (d->color == 0 || d->color == 4)
        return bad(d, "PLTE chunk in a grayscale image (color type %d)", d->color);
    if (len == 0 || len % 3 != 0 || len > 256 * 3)
        return bad(d, "PLTE chunk has %u bytes, expected a multiple of 3 from 3 to 768", len);
    d->n_palette = (int)(len / 3);
    memcpy(d->palette, p, len);
    return LATUP_OK;
}

/* Feeds one IDAT chunk's bytes to inflate. The output buffer grows geometrically up to
 * expected + 1 bytes: reaching the extra byte proves the stream is longer than the image. */
static latup_status feed_idat(png_dec *d, const uint8_t *p, uint32_t len) {
    if (!d->z_init) {
        if (inflateInit(&d->zs) != Z_OK)
            return latup_fail(LATUP_E_NOMEM, "%s: cannot initialise zlib", d->path);
        d->z_init = true;
    }
    if (d->z_end) {
        if (len == 0) return LATUP_OK;
        return bad(d, "%u bytes of extra data in IDAT after the end of the zlib stream", len);
    }
    const size_t limit = d->expected + 1;
    d->zs.next_in = (Bytef *)(uintptr_t)p; /* zlib's API is not const-correct; it only reads */
    d->zs.avail_in = len;
    while (d->zs.avail_in > 0) {
        if (d->raw_len == d->raw_cap) {
            size_t ncap = d->raw_cap < ((size_t)64 << 10) ? ((size_t)64 << 10) : d->raw_cap;
            ncap = ncap > limit / 2 ? limit : ncap * 2;
            uint8_t *nb = realloc(d->raw, ncap);
            if (!nb)
                return latup_fail(LATUP_E_NOMEM, "%s: out of memory for %zu bytes of image data", d->path,
                                  ncap);
            d->raw = nb;
            d->raw_cap = ncap;
        }
        size_t room = d->raw_cap - d->raw_len;
        if (room > PNG_ZLIB_STEP) room = PNG_ZLIB_STEP;
        d->zs.next_out = d->raw + d->raw_len;
        d->zs.avail_out = (uInt)room;
        int ret = inflate(&d->zs, Z_NO_FLUSH);
        d->raw_len += room - d->zs.avail_out;
        if (d->raw_len > d->expected)
            return bad(d, "image data inflates to more than the %zu bytes expected for %ux%u pixels "
                          "((1 + width x %d) x height)",
                       d->expected, d->W, d->H, d->bpp);
        if (ret == Z_STREAM_END) {
            d->z_end = true;
            if (d->zs.avail_in > 0)
                return bad(d, "%u bytes of extra data in IDAT after the end of the zlib stream",
                           d->zs.avail_in);
            break;
        }
        if (ret == Z_NEED_DICT) return bad(d, "image data: zlib stream needs a preset dictionary");
        if (ret == Z_MEM_ERROR) return latup_fail(LATUP_E_NOMEM, "%s: out of memory in zlib", d->path);
        if (ret == Z_DATA_ERROR || ret == Z_STREAM_ERROR)
            return bad(d, "corrupt image data (zlib: %s)", d->zs.msg ? d->zs.msg : "data error");
        /* Z_OK, or Z_BUF_ERROR with the output full: the loop grows the buffer */
        if (ret == Z_BUF_ERROR && d->zs.avail_out != 0)
            return latup_fail(LATUP_E_INTERNAL, "%s: inflate made no progress", d->path);
    }
    return LATUP_OK;
}

/* Undoes the row filters in place (ISO 15948, 9.2): each row's first byte is its filter type,
 * x is the byte being reconstructed, a the byte bpp to its left, b the one above, c above-left. */
static latup_status unfilter(png_dec *d, const uint8_t *zero_row) {
    const size_t n = d->stride - 1;
    const size_t bpp = (size_t)d->bpp;
    for (uint32_t y = 0; y < d->H; y++) {
        uint8_t *row = d->raw + (size_t)y * d->stride;
        uint8_t *x = row + 1;
        const uint8_t *b = y ? row + 1 - d->stride : zero_row;
        switch (row[0]) {
        case 0: break;
        case 1:
            for (size_t i = bpp; i < n; i++) x[i] = (uint8_t)(x[i] + x[i - bpp]);
            break;
        case 2:
            for (size_t i = 0; i < n; i++) x[i] = (uint8_t)(x[i] + b[i]);
            break;
        case 3:
            for (size_t i = 0; i < bpp; i++) x[i] = (uint8_t)(x[i] + (b[i] >> 1));
            for (size_t i = bpp; i < n; i++) x[i] = (uint8_t)(x[i] + ((x[i - bpp] + b[i]) >> 1));
            break;
        case 4:
            for (size_t i = 0; i < bpp; i++) x[i] = (uint8_t)(x[i] + b[i]); /* paeth(0, b, 0) = b */
            for (size_t i = bpp; i < n; i++) x[i] = (uint8_t)(x[i] + paeth(x[i - bpp], b[i], b[i - bpp]));
            break;
        default: return bad(d, "unknown filter type %d on row %u (expected 0 to 4)", row[0], y);
        }
    }
    return LATUP_OK;
}

/* 16-bit scanlines -> float [3,H,W], v / 65535 (as numpy's float32 division). Alpha ignored. */
static void to_tensor16(const png_dec *d, float *r, float *g, float *bl) {
    const size_t W = d->W, spp = (size_t)d->bpp / 2;
    for (uint32_t y = 0; y < d->H; y++) {
        const uint8_t *s = d->raw + (size_t)y * d->stride + 1;
        size_t o = (size_t)y * W;
        for (size_t x = 0; x < W; x++, o++) {
            const uint8_t *px = s + x * 2 * spp;
            float v[3];
            for (size_t k = 0; k < 3; k++) {
                const size_t c = d->color == 0 || d->color == 4 ? 0 : k; /* gray: one sample for all three */
                v[k] = (float)((unsigned)px[2 * c] << 8 | px[2 * c + 1]) / 65535.0f;
            }
            r[o] = v[0], g[o] = v[1], bl[o] = v[2];
        }
    }
}

/* Scanlines -> float [3,H,W]. Alpha (color types 4, 6) is ignored: the color samples are kept as
 * they are, composited onto nothing. */
static latup_status to_tensor(png_dec *d, latup_tensor *img) {
    const size_t W = d->W, HW = (size_t)d->W * d->H;
    int64_t shape[3] = {3, d->H, d->W};
    latup_status st = latup_tensor_alloc(img, 3, shape);
    if (st) {
        memset(img, 0, sizeof *img);
        latup_error_prefix(d->path);
        return st;
    }
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = (float)v / 255.0f;
    float *r = img->data, *g = r + HW, *bl = g + HW;
    if (d->depth == 16) {
        to_tensor16(d, r, g, bl);
        return LATUP_OK;
    }
    for (uint32_t y = 0; y < d->H; y++) {
        const uint8_t *s = d->raw + (size_t)y * d->stride + 1;
        size_t o = (size_t)y * W;
        for (size_t x = 0; x < W; x++, o++) {
            const uint8_t *px = s + x * (size_t)d->bpp;
            switch (d->color) {
            case 0:
            case 4: r[o] = g[o] = bl[o] = lut[px[0]]; break;
            case 2:
            case 6:
                r[o] = lut[px[0]];
                g[o] = lut[px[1]];
                bl[o] = lut[px[2]];
                break;
            case 3: {
                int k = px[0];
                if (k >= d->n_palette) {
                    latup_tensor_free(img);
                    return bad(d, "palette index %d out of range at row %u, column %zu (PLTE has %d entries)",
                               k, y, x, d->n_palette);
                }
                r[o] = lut[d->palette[3 * k]];
                g[o] = lut[d->palette[3 * k + 1]];
                bl[o] = lut[d->palette[3 * k + 2]];
                break;
            }
            }
        }
    }
    return LATUP_OK;
}

/* The chunk walk. Returns with d->raw holding exactly d->expected filtered bytes on success. */
static latup_status walk_chunks(png_dec *d, const uint8_t *buf, size_t len) {
    if (len < 8 || memcmp(buf, k_sig, 8) != 0) return bad(d, "not a PNG file (bad signature)");
    size_t pos = 8;
    bool seen_ihdr = false, seen_plte = false;
    int idat = 0; /* 0: none yet, 1: in the run of IDAT chunks, 2: the run has ended */
    char ts[16];
    latup_status st;
    for (;;) {
        if (pos == len) return bad(d, "missing IEND chunk (the file ends after %zu bytes)", len);
        if (len - pos < 12)
            return bad(d, "truncated chunk at byte %zu: %zu bytes left, a chunk needs at least 12", pos,
                       len - pos);
        const uint8_t *c = buf + pos;
        uint32_t clen = be32(c);
        const uint8_t *type = c + 4, *data = c + 8;
        type_str(type, ts);
        if (clen > PNG_MAX_CHUNK)
            return bad(d, "chunk %s at byte %zu: length %u exceeds 2^31-1", ts, pos, clen);
        if (clen > len - pos - 12)
            return bad(d, "chunk %s at byte %zu: length %u runs past the end of the file (%zu bytes left)",
                       ts, pos, clen, len - pos - 12);
        for (int k = 0; k < 4; k++)
            if (!((type[k] >= 'A' && type[k] <= 'Z') || (type[k] >= 'a' && type[k] <= 'z')))
                return bad(d, "chunk at byte %zu: invalid chunk type (%s)", pos, ts);
        uint32_t stored = be32(data + clen);
        uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), type, clen + 4);
        if (stored != crc)
            return bad(d, "chunk %s at byte %zu: CRC mismatch (stored %08x, computed %08x)", ts, pos, stored,
                       crc);
        bool is_idat = memcmp(type, "IDAT", 4) == 0;
        if (idat == 1 && !is_idat) idat = 2;

        if (!seen_ihdr && memcmp(type, "IHDR", 4) != 0)
            return bad(d, "first chunk is %s, expected 'IHDR'", ts);
        if (memcmp(type, "IHDR", 4) == 0) {
            if (seen_ihdr) return bad(d, "second IHDR chunk at byte %zu", pos);
            if ((st = parse_ihdr(d, data, clen))) return st;
            seen_ihdr = true;
        } else if (memcmp(type, "PLTE", 4) == 0) {
            if (seen_plte) return bad(d, "second PLTE chunk at byte %zu", pos);
            if (idat) return bad(d, "PLTE chunk at byte %zu comes after the image data", pos);
            if ((st = parse_plte(d, data, clen))) return st;
            seen_plte = true;
        } else if (is_idat) {
            if (idat == 2) return bad(d, "IDAT chunk at byte %zu: IDAT chunks are not consecutive", pos);
            if (d->color == 3 && !seen_plte)
                return bad(d, "missing PLTE chunk before the image data of a palette (color type 3) image");
            idat = 1;
            if ((st = feed_idat(d, data, clen))) return st;
        } else if (memcmp(type, "IEND", 4) == 0) {
            if (clen != 0) return bad(d, "IEND chunk has %u data bytes, expected 0", clen);
            pos += 12;
            break;
        } else if (type[0] >= 'A' && type[0] <= 'Z') {
            return bad(d, "unknown critical chunk %s at byte %zu", ts, pos);
        } /* else: an ancillary chunk (tRNS, gAMA, tEXt, ...), safe to ignore */
        pos += 12 + (size_t)clen;
    }
    if (pos != len) return bad(d, "%zu bytes of trailing data after IEND", len - pos);
    if (!idat) return bad(d, "no IDAT chunk (the file has no image data)");
    if (d->raw_len < d->expected)
        return bad(d, "truncated image data: %zu of the %zu bytes expected for %ux%u pixels", d->raw_len,
                   d->expected, d->W, d->H);
    if (!d->z_end) return bad(d, "image data: the zlib stream is incomplete (no end or checksum)");
    return LATUP_OK;
}

latup_status latup_png_parse(const uint8_t *buf, size_t len, const char *path, latup_tensor *img) {
    memset(img, 0, sizeof *img);
    png_dec d;
    memset(&d, 0, sizeof d);
    d.path = path ? path : "<buffer>";
    latup_status st = walk_chunks(&d, buf, len);
    if (d.z_init) inflateEnd(&d.zs);
    uint8_t *zero_row = NULL;
    if (!st && !(zero_row = latup_calloc(d.stride, 1, "a PNG row"))) st = LATUP_E_NOMEM;
    if (!st) st = unfilter(&d, zero_row);
    if (!st) st = to_tensor(&d, img);
    free(zero_row);
    free(d.raw);
    return st;
}

/* The format for latup_input_open: the signature, then chunks up to IEND, so a stream is read
 * as far as its last chunk and no further. */
static int png_sniff(const uint8_t *h, size_t n) { return n >= 8 && memcmp(h, k_sig, 8) == 0; }

static latup_status png_size(const uint8_t *h, size_t n, int at_eof, const char *path, latup_size *s) {
    (void)at_eof, (void)path;
    uint64_t p = s->state ? s->state : 8;
    for (;;) {
        if (n < 8 || p > n - 8) {
            s->state = p;
            s->need = p + 8;
            return LATUP_OK;
        }
        const uint64_t clen = be32(h + p);
        if (memcmp(h + p + 4, "IEND", 4) == 0) {
            s->known = 1;
            s->total = p + 12 + clen;
            return LATUP_OK;
        }
        p += 12 + clen;
    }
}

static latup_status png_refuse(const uint8_t *h, size_t n, const char *path) {
    (void)h, (void)n;
    return latup_fail(LATUP_E_INPUT, "%s: not a PNG file (bad signature)", path);
}

const latup_file_format latup_png_format = {"a PNG (\\x89PNG)", 8, png_sniff, png_size, PNG_MAX_FILE, png_refuse};

latup_status latup_png_read(const char *path, latup_tensor *img) {
    LATUP_NEED(img);
    memset(img, 0, sizeof *img);
    LATUP_NEED(path);
    const latup_file_format *const fmts[] = {&latup_png_format};
    latup_input in;
    latup_status st = latup_input_open(&in, path, fmts, 1, "a PNG image", 0);
    if (st) return st;
    st = latup_png_parse(in.data, in.len, in.name, img);
    latup_input_close(&in);
    return st;
}

/* ---- writing ---------------------------------------------------------------------------------- */

/* One sample: clamp(x * scale + offset, 0, 1) * maxv, rounded; non-finite inputs map to 0 and
 * are counted. */
static unsigned quantize1(float x, latup_png_map m, float maxv, size_t *n_bad) {
    if (!isfinite(x)) {
        (*n_bad)++;
        return 0;
    }
    float y = x * m.scale; /* two statements: never contracted into an fma */
    y = y + m.offset;
    y = y < 0.0f ? 0.0f : y > 1.0f ? 1.0f : y;
    float v = y * maxv;
    if (!m.half_even) return (unsigned)lroundf(v);
    float f = floorf(v), frac = v - f; /* exact for v in [0, 65535] */
    if (frac > 0.5f || (frac == 0.5f && fmodf(f, 2.0f) != 0.0f)) f += 1.0f;
    return (unsigned)f;
}

/* Planar [3,H,W] floats -> interleaved [H,W,3] samples: bytes, or big-endian 16-bit pairs. */
static size_t quantize(uint8_t *out, const float *chw, int H, int W, latup_png_map map, int bits) {
    size_t HW = (size_t)H * (size_t)W, n_bad = 0;
    const float maxv = bits == 16 ? 65535.0f : 255.0f;
    for (size_t i = 0; i < HW; i++)
        for (int c = 0; c < 3; c++) {
            unsigned v = quantize1(chw[(size_t)c * HW + i], map, maxv, &n_bad);
            if (bits == 16) {
                out[6 * i + 2 * (size_t)c] = (uint8_t)(v >> 8);
                out[6 * i + 2 * (size_t)c + 1] = (uint8_t)v;
            } else {
                out[3 * i + (size_t)c] = (uint8_t)v;
            }
        }
    return n_bad;
}

size_t latup_png_quantize(uint8_t *rgb, const float *chw, int H, int W, latup_png_map map) {
    return quantize(rgb, chw, H, W, map, 8);
}

typedef struct {
    FILE *f;
    const char *path;
} png_out;

static latup_status put(png_out *o, const void *data, size_t n) {
    if (n && fwrite(data, 1, n, o->f) != n)
        return latup_fail(LATUP_E_IO, "%s: write failed: %s", o->path, strerror(errno));
    return LATUP_OK;
}

static latup_status write_chunk(png_out *o, const char *type, const uint8_t *data, size_t n) {
    uint8_t head[8], tail[4];
    put_be32(head, (uint32_t)n);
    memcpy(head + 4, type, 4);
    uLong crc = crc32(crc32(0L, Z_NULL, 0), (const Bytef *)type, 4);
    if (n) crc = crc32(crc, data, (uInt)n);
    put_be32(tail, (uint32_t)crc);
    latup_status st = put(o, head, 8);
    if (!st) st = put(o, data, n);
    if (!st) st = put(o, tail, 4);
    return st;
}

/* Filters one row of n bytes (bpp bytes per pixel) with each of the five filters and returns the
 * one with the smallest sum of |byte| taken as signed (libpng's heuristic); cand[f] holds filter
 * byte + row. */
static int choose_filter(const uint8_t *x, const uint8_t *b, size_t n, size_t bpp, uint8_t *cand[5]) {
    uint64_t best_sum = UINT64_MAX;
    int best = 0;
    for (int f = 0; f < 5; f++) {
        uint8_t *o = cand[f] + 1;
        cand[f][0] = (uint8_t)f;
        for (size_t i = 0; i < n; i++) {
            int a = i >= bpp ? x[i - bpp] : 0, c = i >= bpp ? b[i - bpp] : 0;
            int pred = f == 0 ? 0 : f == 1 ? a : f == 2 ? b[i] : f == 3 ? (a + b[i]) >> 1 : paeth(a, b[i], c);
            o[i] = (uint8_t)(x[i] - pred);
        }
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) sum += (uint64_t)abs((int)(int8_t)o[i]);
        if (sum < best_sum) {
            best_sum = sum;
            best = f;
        }
    }
    return best;
}

/* Deflates rows of n bytes into IDAT chunks of at most PNG_IDAT_MAX bytes. */
static latup_status write_image(png_out *o, const uint8_t *px, int H, size_t n, size_t bpp) {
    uint8_t *mem = latup_calloc(6 * (n + 1) + PNG_IDAT_MAX, 1, "PNG rows");
    if (!mem) return LATUP_E_NOMEM;
    uint8_t *zero = mem, *cand[5], *out = mem + 6 * (n + 1);
    for (int f = 0; f < 5; f++) cand[f] = mem + (size_t)(f + 1) * (n + 1);

    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit(&zs, 6) != Z_OK) {
        free(mem);
        return latup_fail(LATUP_E_NOMEM, "%s: cannot initialise zlib", o->path);
    }
    latup_status st = LATUP_OK;
    zs.next_out = out;
    zs.avail_out = (uInt)PNG_IDAT_MAX;
    for (int y = 0; y < H && !st; y++) {
        const uint8_t *x = px + (size_t)y * n, *above = y ? x - n : zero;
        int f = choose_filter(x, above, n, bpp, cand);
        zs.next_in = cand[f];
        zs.avail_in = (uInt)(n + 1);
        int flush = y == H - 1 ? Z_FINISH : Z_NO_FLUSH;
        for (;;) {
            int ret = deflate(&zs, flush);
            if (ret == Z_STREAM_ERROR) {
                st = latup_fail(LATUP_E_INTERNAL, "%s: deflate failed", o->path);
                break;
            }
            bool done = flush == Z_FINISH ? ret == Z_STREAM_END : zs.avail_in == 0;
            if (ret == Z_BUF_ERROR && zs.avail_out != 0 && !done) {
                st = latup_fail(LATUP_E_INTERNAL, "%s: deflate made no progress", o->path);
                break;
            }
            if (zs.avail_out == 0 || (done && flush == Z_FINISH)) {
                size_t have = PNG_IDAT_MAX - zs.avail_out;
                if (have && (st = write_chunk(o, "IDAT", out, have))) break;
                zs.next_out = out;
                zs.avail_out = (uInt)PNG_IDAT_MAX;
            }
            if (done) break;
        }
    }
    deflateEnd(&zs);
    free(mem);
    return st;
}

static latup_status check_size(const char *path, int H, int W) {
    if (H < 1 || W < 1 || H > LATUP_PNG_MAX_SIDE || W > LATUP_PNG_MAX_SIDE ||
        (int64_t)H * W > LATUP_PNG_MAX_PIXELS)
        return latup_fail(LATUP_E_USAGE,
                          "%s: cannot write a %dx%d (width x height) PNG: each side must be 1 to %d and the "
                          "image at most %lld pixels",
                          path, W, H, LATUP_PNG_MAX_SIDE, (long long)LATUP_PNG_MAX_PIXELS);
    return LATUP_OK;
}

/* ---- text chunks --------------------------------------------------------------------------------- */

#define PNG_TEXT_MAX ((size_t)1 << 20)
#define PNG_TEXT_CHUNKS_MAX 64

static bool is_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return false;
    return true;
}

latup_status latup_png_text_check(const latup_png_text *text, int n_text, const char *func) {
    if (n_text < 0 || n_text > PNG_TEXT_CHUNKS_MAX)
        return latup_fail(LATUP_E_USAGE, "%s: n_text %d: a PNG takes 0 to %d text chunks from latup", func, n_text,
                          PNG_TEXT_CHUNKS_MAX);
    if (n_text > 0 && !text) return latup_null_arg(func, "text");
    for (int i = 0; i < n_text; i++) {
        const char *k = text[i].key, *t = text[i].text;
        if (!k || !t) return latup_fail(LATUP_E_USAGE, "%s: text[%d].%s is NULL", func, i, k ? "text" : "key");
        const size_t n = strlen(k);
        bool ok = n >= 1 && n <= 79 && k[0] != ' ' && k[n - 1] != ' ' && !strstr(k, "  ");
        for (size_t c = 0; c < n && ok; c++) ok = k[c] >= 0x20 && k[c] < 0x7F;
        if (!ok)
            return latup_fail(LATUP_E_USAGE, "%s: text[%d].key '%s': a PNG keyword is 1 to 79 printable ASCII "
                              "characters without leading, trailing or double spaces", func, i, k);
        const size_t tn = strlen(t);
        if (tn > PNG_TEXT_MAX)
            return latup_fail(LATUP_E_USAGE, "%s: text[%d] ('%s') has %zu bytes, more than the %zu latup writes", func,
                              i, k, tn, PNG_TEXT_MAX);
        if (!is_ascii(t) && !latup_utf8_valid(t, tn))
            return latup_fail(LATUP_E_USAGE, "%s: text[%d] ('%s') is neither ASCII nor UTF-8", func, i, k);
    }
    return LATUP_OK;
}

/* One chunk per entry: tEXt (Latin-1, here ASCII) when it can hold the text, else an
 * uncompressed iTXt (UTF-8, no language tag). */
static latup_status write_texts(png_out *o, const latup_png_text *text, int n_text) {
    for (int i = 0; i < n_text; i++) {
        const size_t kn = strlen(text[i].key), tn = strlen(text[i].text);
        const bool plain = is_ascii(text[i].text);
        const size_t head = kn + (plain ? 1 : 5); /* key NUL [flag method lang-NUL translated-NUL] */
        uint8_t *c = latup_malloc(head + tn + 1, "a PNG text chunk");
        if (!c) return LATUP_E_NOMEM;
        memcpy(c, text[i].key, kn + 1);
        if (!plain) memset(c + kn + 1, 0, 4); /* uncompressed, method 0, "" language, "" translation */
        memcpy(c + head, text[i].text, tn);
        latup_status st = write_chunk(o, plain ? "tEXt" : "iTXt", c, head + tn);
        free(c);
        if (st) return st;
    }
    return LATUP_OK;
}

/* px: interleaved RGB samples [H,W,3], bytes (bits 8) or big-endian pairs (bits 16). */
static latup_status encode(FILE *f, const char *path, const uint8_t *px, int H, int W, int bits,
                           const latup_png_text *text, int n_text) {
    TRY(check_size(path, H, W));
    uint8_t ihdr[13];
    put_be32(ihdr, (uint32_t)W);
    put_be32(ihdr + 4, (uint32_t)H);
    ihdr[8] = (uint8_t)bits; /* bit depth */
    ihdr[9] = 2;             /* RGB */
    ihdr[10] = 0;            /* deflate */
    ihdr[11] = 0;            /* adaptive filtering, five filter types */
    ihdr[12] = 0;            /* not interlaced */
    png_out o = {f, path};
    const size_t bpp = bits == 16 ? 6 : 3;
    latup_status st = put(&o, k_sig, sizeof k_sig);
    if (!st) st = write_chunk(&o, "IHDR", ihdr, sizeof ihdr);
    if (!st) st = write_texts(&o, text, n_text);
    if (!st) st = write_image(&o, px, H, (size_t)W * bpp, bpp);
    if (!st) st = write_chunk(&o, "IEND", NULL, 0);
    return st;
}

/* Runs `enc` on a temporary file next to path and renames it into place on success. */
static latup_status write_atomic(const char *path, latup_status (*enc)(FILE *, const char *, const void *),
                                 const void *arg) {
    latup_atomic_file af;
    TRY(latup_atomic_open(&af, path));
    latup_status st = enc(af.f, path, arg);
    if (!st) return latup_atomic_commit(&af);
    latup_atomic_abort(&af);
    return st;
}

typedef struct {
    const uint8_t *rgb;
    int H, W;
} rgb8_arg;

static latup_status enc_rgb8(FILE *f, const char *path, const void *arg) {
    const rgb8_arg *a = arg;
    return encode(f, path, a->rgb, a->H, a->W, 8, NULL, 0);
}

latup_status latup_png_write_rgb8(const char *path, const uint8_t *rgb, int H, int W) {
    TRY(check_size(path, H, W));
    rgb8_arg a = {rgb, H, W};
    return write_atomic(path, enc_rgb8, &a);
}

latup_status latup_png_encode(FILE *f, const char *path, const latup_tensor *img, latup_png_map map, int bits,
                              const latup_png_text *text, int n_text) {
    char sb[96];
    if (bits != 8 && bits != 16)
        return latup_fail(LATUP_E_USAGE, "%s: PNG bit depth %d: latup writes 8 or 16", path, bits);
    if (img->ndim < 1 || img->ndim > LATUP_MAX_DIMS)
        return latup_fail(LATUP_E_USAGE,
                          "%s: cannot write a rank-%d tensor as a PNG (expected [3,H,W] or [1,3,H,W])", path,
                          img->ndim);
    const int64_t *s = img->ndim == 4 ? img->shape + 1 : img->shape;
    bool shape_ok = (img->ndim == 3 || (img->ndim == 4 && img->shape[0] == 1)) && s[0] == 3;
    if (!shape_ok || !img->data)
        return latup_fail(LATUP_E_USAGE,
                          "%s: cannot write a %s tensor as a PNG (expected [3,H,W] or [1,3,H,W])", path,
                          latup_shape_str(sb, sizeof sb, img->ndim, img->shape));
    if (s[1] < 1 || s[2] < 1 || s[1] > LATUP_PNG_MAX_SIDE || s[2] > LATUP_PNG_MAX_SIDE ||
        s[1] * s[2] > LATUP_PNG_MAX_PIXELS)
        return latup_fail(LATUP_E_USAGE,
                          "%s: cannot write a %s image as a PNG: each side must be 1 to %d and the image at "
                          "most %lld pixels",
                          path, latup_shape_str(sb, sizeof sb, img->ndim, img->shape), LATUP_PNG_MAX_SIDE,
                          (long long)LATUP_PNG_MAX_PIXELS);
    int H = (int)s[1], W = (int)s[2];
    uint8_t *px = latup_malloc((size_t)H * (size_t)W * (size_t)(bits / 8) * 3, "PNG pixels");
    if (!px) return LATUP_E_NOMEM;
    size_t n_bad = quantize(px, img->data, H, W, map, bits);
    latup_status st;
    if (n_bad)
        st = latup_fail(LATUP_E_INPUT, "%s: the image holds %zu NaN or Inf values; not writing it", path, n_bad);
    else
        st = encode(f, path, px, H, W, bits, text, n_text);
    free(px);
    return st;
}

typedef struct {
    const latup_tensor *img;
    latup_png_map map;
    int bits;
    const latup_png_text *text;
    int n_text;
} mapped_arg;

static latup_status enc_mapped(FILE *f, const char *path, const void *arg) {
    const mapped_arg *a = arg;
    return latup_png_encode(f, path, a->img, a->map, a->bits, a->text, a->n_text);
}

latup_status latup_png_write_mapped(const char *path, const latup_tensor *img, latup_png_map map, int bits) {
    mapped_arg a = {img, map, bits, NULL, 0};
    return write_atomic(path, enc_mapped, &a);
}

latup_png_map latup_png_map_for(latup_pixel_range range) {
    return range == LATUP_PIXELS_SIGNED ? LATUP_PNG_MAP_DIFFUSERS : LATUP_PNG_MAP_UNIT;
}

latup_status latup_png_write(const char *path, const latup_tensor *img, latup_pixel_range range, int bits) {
    LATUP_NEED(path);
    TRY(latup_tensor_check(img, __func__, "img", 1));
    TRY(latup_check_enum((int)range, LATUP_PIXELS_UNIT, LATUP_PIXELS_SIGNED, __func__, "range"));
    return latup_png_write_mapped(path, img, latup_png_map_for(range), bits);
}

latup_status latup_image_to_rgb8(const latup_tensor *img, latup_pixel_range range, uint8_t *rgb) {
    char sb[96];
    TRY(latup_tensor_check(img, __func__, "img", 1));
    TRY(latup_check_enum((int)range, LATUP_PIXELS_UNIT, LATUP_PIXELS_SIGNED, __func__, "range"));
    LATUP_NEED(rgb);
    const int64_t *s = img->ndim == 4 ? img->shape + 1 : img->shape;
    if (!((img->ndim == 3 || (img->ndim == 4 && img->shape[0] == 1)) && s[0] == 3) || s[1] < 1 || s[2] < 1 ||
        s[1] > INT_MAX || s[2] > INT_MAX) /* the tensor check keeps 3*H*W within size_t */
        return latup_fail(LATUP_E_INPUT, "%s: img is %s, expected an image [3,H,W] or [1,3,H,W]", __func__,
                          latup_shape_str(sb, sizeof sb, img->ndim, img->shape));
    const size_t n_bad = quantize(rgb, img->data, (int)s[1], (int)s[2], latup_png_map_for(range), 8);
    if (n_bad) return latup_fail(LATUP_E_INPUT, "%s: the image holds %zu NaN or Inf values", __func__, n_bad);
    return LATUP_OK;
}

latup_status latup_png_write_text(const char *path, const latup_tensor *img, latup_pixel_range range, int bits,
                                  const latup_png_text *text, int n_text) {
    LATUP_NEED(path);
    TRY(latup_tensor_check(img, __func__, "img", 1));
    TRY(latup_check_enum((int)range, LATUP_PIXELS_UNIT, LATUP_PIXELS_SIGNED, __func__, "range"));
    TRY(latup_png_text_check(text, n_text, __func__));
    mapped_arg a = {img, latup_png_map_for(range), bits, text, n_text};
    return write_atomic(path, enc_mapped, &a);
}
