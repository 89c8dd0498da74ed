/* fuzz_png.c — libFuzzer target for latup_png_parse: any input must give LATUP_OK with a sane
 * [3,H,W] tensor in [0,1], or a clean error; ASan/UBSan catch the rest. Seeds: corpus/fuzz_png/.
 *
 * Checksums stop most mutations at the door (chunk CRCs, then zlib's Adler-32 after all the
 * data), so each input is parsed three ways: as it is; with every chunk CRC recomputed; and with
 * the IDAT payloads taken as raw scanlines and deflated here (CRCs fixed too), which lets the
 * mutator steer filter bytes, palette indices and data lengths directly. The parser itself has no
 * fuzzing-only code. A crash in the second or third form is reproduced by the file this target
 * writes with LATUP_FUZZ_DUMP=<path> set. */
#include "io/png.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void parse_one(const uint8_t *data, size_t size) {
    const char *dump = getenv("LATUP_FUZZ_DUMP");
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (f) fwrite(data, 1, size, f), fclose(f);
    }
    uint8_t *copy = malloc(size ? size : 1); /* exactly size bytes: ASan sees overreads */
    if (!copy) return;
    if (size) memcpy(copy, data, size);
    latup_tensor t;
    latup_status st = latup_png_parse(copy, size, "fuzz.png", &t);
    free(copy);
    if (st == LATUP_OK) {
        if (t.ndim != 3 || t.shape[0] != 3 || t.shape[1] < 1 || t.shape[2] < 1 || !t.data) abort();
        int64_t n = latup_tensor_numel(&t);
        for (int64_t i = 0; i < n; i++)
            if (!(t.data[i] >= 0.0f && t.data[i] <= 1.0f)) abort();
        latup_tensor_free(&t);
    } else if (st != LATUP_E_INPUT && st != LATUP_E_NOMEM) {
        abort(); /* an internal error, or a wrong status for bad input */
    } else if (t.data || t.ndim) {
        abort(); /* a failure must leave the tensor empty */
    }
}

/* Appends one chunk with a correct CRC. */
static size_t put_chunk(uint8_t *o, const uint8_t *type, const uint8_t *d, uint32_t n) {
    put_be32(o, n);
    memcpy(o + 4, type, 4);
    if (n) memcpy(o + 8, d, n);
    put_be32(o + 8 + n, (uint32_t)crc32(0L, o + 4, n + 4));
    return 12 + (size_t)n;
}

/* Rebuilds the chunk sequence with correct CRCs; with `deflate_idat`, the IDAT payloads are joined
 * as raw scanlines and replaced by one IDAT holding their zlib compression. Bytes after the last
 * whole chunk are kept as they are. */
static uint8_t *rebuild(const uint8_t *d, size_t n, int deflate_idat, size_t *out_n) {
    uint8_t *raw = malloc(n + 1), *z = NULL;
    uLongf zl = 0;
    size_t rl = 0, pos = 8;
    if (!raw) return NULL;
    if (deflate_idat) {
        for (pos = 8; n - pos >= 12; pos += 12 + (size_t)be32(d + pos)) {
            uint32_t cl = be32(d + pos);
            if (cl > n - pos - 12) break;
            if (memcmp(d + pos + 4, "IDAT", 4) == 0) memcpy(raw + rl, d + pos + 8, cl), rl += cl;
        }
        zl = compressBound((uLong)rl);
        z = malloc(zl + 1);
        if (!z || compress2(z, &zl, raw, (uLong)rl, 1) != Z_OK) {
            free(raw), free(z);
            return NULL;
        }
    }
    uint8_t *o = malloc(n + 64 + (size_t)zl);
    if (!o) {
        free(raw), free(z);
        return NULL;
    }
    memcpy(o, d, 8);
    size_t on = 8;
    int idat_done = 0;
    for (pos = 8; n - pos >= 12; pos += 12 + (size_t)be32(d + pos)) {
        uint32_t cl = be32(d + pos);
        if (cl > n - pos - 12) break;
        const uint8_t *type = d + pos + 4;
        if (deflate_idat && memcmp(type, "IDAT", 4) == 0) {
            if (!idat_done) on += put_chunk(o + on, type, z, (uint32_t)zl);
            idat_done = 1;
        } else {
            on += put_chunk(o + on, type, d + pos + 8, cl);
        }
    }
    memcpy(o + on, d + pos, n - pos);
    on += n - pos;
    free(raw), free(z);
    *out_n = on;
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    parse_one(data, size);
    if (size < 8 || memcmp(data, "\x89PNG\r\n\x1a\n", 8) != 0) return 0;
    for (int mode = 0; mode < 2; mode++) {
        size_t n;
        uint8_t *b = rebuild(data, size, mode, &n);
        if (!b) continue;
        if (mode == 1 || n != size || memcmp(b, data, n) != 0) parse_one(b, n);
        free(b);
    }
    return 0;
}
