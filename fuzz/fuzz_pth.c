/* fuzz_pth.c — libFuzzer target for the .pth reader (zip + restricted pickle + tensor table):
 * any input must either load or fail with a status, never crash, leak or read out of bounds.
 * An input that starts like a pickle (0x80) is also wrapped, as data.pkl, in a valid torch-style
 * archive with correct CRCs, so mutations reach the pickle machine and the state-dict logic
 * instead of dying at the CRC check. Seeds: fuzz/corpus/fuzz_pth/ (torch fixtures, their raw
 * data.pkl, hostile inputs, past crashes). */
#include "io/weights.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void run(const uint8_t *data, size_t size) {
    latup_weights w;
    if (latup_pth_parse(data, size, "fuzz.pth", &w) != LATUP_OK) return;
    /* touch every element so ASan checks the tensor pointers lie inside the blob */
    volatile float sink = 0;
    for (int i = 0; i < w.n; i++)
        for (int64_t e = 0; e < w.t[i].numel; e++) sink += w.t[i].f32 ? w.t[i].f32[e] : (float)w.t[i].i64[e];
    (void)sink;
    latup_weights_free(&w);
}

static uint8_t *put(uint8_t *p, uint64_t v, int n) {
    for (int k = 0; k < n; k++) *p++ = (uint8_t)(v >> (8 * k));
    return p;
}

/* archive/data.pkl = the input; storages archive/data/0..3 of 64, 16, 8 and 0 bytes. */
static void run_as_pickle(const uint8_t *pkl, size_t size) {
    static uint8_t storage[64];
    for (int i = 0; i < 64; i++) storage[i] = (uint8_t)(i * 37 + 11);
    struct {
        const char *name;
        const uint8_t *d;
        size_t n;
    } e[] = {{"archive/data.pkl", pkl, size}, {"archive/byteorder", (const uint8_t *)"little", 6},
             {"archive/data/0", storage, 64}, {"archive/data/1", storage, 16},
             {"archive/data/2", storage, 8},  {"archive/data/3", storage, 0}};
    enum { N = sizeof e / sizeof e[0] };
    size_t cap = size + 64 + 16 + 8 + 6 + N * (30 + 46 + 2 * 20) + 22;
    uint8_t *buf = malloc(cap), *p = buf;
    size_t off[N];
    uint32_t crc[N];
    for (int i = 0; i < N; i++) {
        size_t nl = strlen(e[i].name);
        off[i] = (size_t)(p - buf);
        crc[i] = (uint32_t)crc32(0, e[i].d, (uInt)e[i].n);
        p = put(p, 0x04034b50, 4), p = put(p, 20, 2), p = put(p, 0, 2), p = put(p, 0, 2), p = put(p, 0, 4);
        p = put(p, crc[i], 4), p = put(p, e[i].n, 4), p = put(p, e[i].n, 4), p = put(p, nl, 2),
        p = put(p, 0, 2);
        memcpy(p, e[i].name, nl), p += nl;
        if (e[i].n) memcpy(p, e[i].d, e[i].n), p += e[i].n;
    }
    size_t cd = (size_t)(p - buf);
    for (int i = 0; i < N; i++) {
        size_t nl = strlen(e[i].name);
        p = put(p, 0x02014b50, 4), p = put(p, 20, 2), p = put(p, 20, 2), p = put(p, 0, 2), p = put(p, 0, 2);
        p = put(p, 0, 4), p = put(p, crc[i], 4), p = put(p, e[i].n, 4), p = put(p, e[i].n, 4),
        p = put(p, nl, 2);
        p = put(p, 0, 2), p = put(p, 0, 2), p = put(p, 0, 2), p = put(p, 0, 2), p = put(p, 0, 4);
        p = put(p, off[i], 4);
        memcpy(p, e[i].name, nl), p += nl;
    }
    size_t cd_size = (size_t)(p - buf) - cd;
    p = put(p, 0x06054b50, 4), p = put(p, 0, 4), p = put(p, N, 2), p = put(p, N, 2);
    p = put(p, cd_size, 4), p = put(p, cd, 4), p = put(p, 0, 2);
    run(buf, (size_t)(p - buf));
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    run(data, size);
    if (size >= 2 && data[0] == 0x80 && size < ((size_t)1 << 30)) run_as_pickle(data, size);
    return 0;
}
