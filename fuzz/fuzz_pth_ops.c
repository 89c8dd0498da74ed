/* fuzz_pth_ops.c — libFuzzer target for latup_weights_load on .pth files whose pickle is made of
 * valid opcodes: the input is read as a program, each byte choosing an opcode and the next bytes
 * its arguments (lengths fitted to what follows, globals drawn from the whitelist and a few that
 * are refused, strings from the words a state dict uses), so mutations change what the machine
 * does rather than failing the parse at the first byte. The input is also used as data.pkl as it
 * is (fuzz/fuzz_pth_ops.dict holds the opcodes with their arguments for that). Each pickle goes
 * into a torch-style archive (stored, deflated and corrupt storages), through the lazy loader on
 * an in-memory file, then every tensor is fetched and read. Outcomes: LATUP_OK or LATUP_E_INPUT.
 * Seeds: fuzz/corpus/fuzz_pth_ops/. */
#define _GNU_SOURCE /* memfd_create */
#include "io/weights.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

typedef struct {
    uint8_t *b;
    size_t n, cap;
} buf;

static void put(buf *o, const void *p, size_t n) {
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2 + 256;
        o->b = realloc(o->b, o->cap);
        if (!o->b) abort();
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void put8(buf *o, unsigned v) {
    uint8_t x = (uint8_t)v;
    put(o, &x, 1);
}
static void putle(buf *o, uint64_t v, int n) {
    for (int k = 0; k < n; k++) put8(o, (unsigned)(v >> (8 * k)) & 0xFF);
}

typedef struct {
    const uint8_t *p;
    size_t n;
} prog_cursor;
static unsigned next_byte(prog_cursor *c) {
    if (!c->n) return 0;
    c->n--;
    return *c->p++;
}

/* ---- the program: bytes -> a valid opcode stream ------------------------------------------------ */

static const char *const k_words[] = {"storage", "cpu", "0", "1", "2", "3", "4", "5", "w", "b", "layers.0.w",
                                      "params_ema", "params", "state_dict", "latin1", "_metadata", "", "x\x00y"};
static const char *const k_globals[][2] = {
    {"collections", "OrderedDict"},        {"torch._utils", "_rebuild_tensor_v2"},
    {"torch._utils", "_rebuild_parameter"}, {"torch", "FloatStorage"},
    {"torch", "HalfStorage"},              {"torch", "BFloat16Storage"},
    {"torch", "LongStorage"},              {"torch", "DoubleStorage"},
    {"_codecs", "encode"},                 {"torch._utils", "_rebuild_tensor"},
    {"evil", "OrderedDict"},               {"os", "system"},
};
#define N_WORDS (sizeof k_words / sizeof k_words[0])
#define N_GLOBALS (sizeof k_globals / sizeof k_globals[0])

/* Opcodes with argument-free forms, in one table so any byte selects one. */
static const uint8_t k_plain[] = {'(', '.', '0', '1', '2', 'N', 'Q', 'R', 'a', 'b', 'e', ']', 's', 't', ')', 'u', '}',
                                  0x85, 0x86, 0x87, 0x88, 0x89, 0x93, 0x94};

static void word(buf *o, prog_cursor *c, int op) {
    const char *w = k_words[next_byte(c) % N_WORDS];
    size_t n = strlen(w) + (w[0] == 'x' ? 2 : 0); /* "x\0y" keeps its NUL */
    if (op == 0x8c || op == 'C') {
        put8(o, (unsigned)op), put8(o, (unsigned)n);
    } else {
        put8(o, (unsigned)op), putle(o, n, op == 0x8d || op == 0x8e ? 8 : 4);
    }
    put(o, w, n);
}

static void program(buf *o, prog_cursor *c) {
    put8(o, 0x80), put8(o, 2 + next_byte(c) % 4);
    while (c->n) {
        const unsigned sel = next_byte(c);
        switch (sel % 16) {
        case 0: case 1: case 2: case 3: case 4: case 5: case 6:
            put8(o, k_plain[(sel >> 4) % sizeof k_plain]);
            break;
        case 7: { /* an int, in each width */
            static const uint8_t ops[] = {'K', 'M', 'J', 0x8a};
            const uint8_t op = ops[(sel >> 4) % 4];
            put8(o, op);
            if (op == 'K') put8(o, next_byte(c) % 8);
            else if (op == 'M') putle(o, next_byte(c) | next_byte(c) << 8, 2);
            else if (op == 'J') putle(o, (uint32_t)(next_byte(c) | next_byte(c) << 8 | next_byte(c) << 16 | next_byte(c) << 24), 4);
            else {
                unsigned n = next_byte(c) % 10;
                put8(o, n);
                for (unsigned k = 0; k < n; k++) put8(o, next_byte(c));
            }
            break;
        }
        case 8: case 9: { /* a string or bytes */
            static const uint8_t ops[] = {'X', 0x8c, 0x8d, 'B', 'C', 0x8e};
            word(o, c, ops[(sel >> 4) % 6]);
            break;
        }
        case 10: { /* a global, by GLOBAL or STACK_GLOBAL */
            const char *const *g = k_globals[next_byte(c) % N_GLOBALS];
            if (sel & 0x10) {
                put8(o, 'c'), put(o, g[0], strlen(g[0])), put8(o, '\n'), put(o, g[1], strlen(g[1])), put8(o, '\n');
            } else {
                put8(o, 0x8c), put8(o, (unsigned)strlen(g[0])), put(o, g[0], strlen(g[0]));
                put8(o, 0x8c), put8(o, (unsigned)strlen(g[1])), put(o, g[1], strlen(g[1]));
                put8(o, 0x93);
            }
            break;
        }
        case 11: /* memo */
            if (sel & 0x10) put8(o, sel & 0x20 ? 'h' : 'q'), put8(o, next_byte(c) % 8);
            else put8(o, sel & 0x20 ? 'j' : 'r'), putle(o, next_byte(c) % 16, 4);
            break;
        case 12: { /* a whole storage persistent id, the common case made likely */
            static const char *const types[] = {"FloatStorage", "HalfStorage", "LongStorage", "BFloat16Storage"};
            put8(o, '('), put8(o, 'X'), putle(o, 7, 4), put(o, "storage", 7);
            const char *t = types[next_byte(c) % 4];
            put8(o, 'c'), put(o, "torch\n", 6), put(o, t, strlen(t)), put8(o, '\n');
            char key[2] = {(char)('0' + next_byte(c) % 7), 0};
            put8(o, 'X'), putle(o, 1, 4), put(o, key, 1);
            put8(o, 'X'), putle(o, 3, 4), put(o, "cpu", 3);
            put8(o, 'K'), put8(o, next_byte(c) % 20);
            put8(o, 't'), put8(o, 'Q');
            break;
        }
        case 13: /* a size or stride tuple */
            put8(o, '(');
            for (unsigned d = 0, nd = next_byte(c) % 4; d < nd; d++) put8(o, 'K'), put8(o, next_byte(c) % 6);
            put8(o, 't');
            break;
        case 14: /* float */
            put8(o, 'G');
            for (int k = 0; k < 8; k++) put8(o, next_byte(c));
            break;
        default: /* FRAME, PROTO, and a byte as it is */
            if (sel & 0x10) put8(o, 0x95), putle(o, next_byte(c), 8);
            else put8(o, next_byte(c));
            break;
        }
    }
    put8(o, '.');
}

/* ---- the archive -------------------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const uint8_t *data;
    size_t n;
    int deflate, bad_crc;
} entry;

static void archive(buf *o, const uint8_t *pkl, size_t pn) {
    static uint8_t st[64], z[128];
    static size_t zn;
    if (!zn) {
        for (int i = 0; i < 64; i++) st[i] = (uint8_t)(i * 37 + 11);
        z_stream s;
        memset(&s, 0, sizeof s);
        deflateInit2(&s, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
        s.next_in = st, s.avail_in = 32, s.next_out = z, s.avail_out = sizeof z;
        deflate(&s, Z_FINISH);
        zn = s.total_out;
        deflateEnd(&s);
    }
    const entry e[] = {{"archive/data.pkl", pkl, pn, 0, 0}, {"archive/byteorder", (const uint8_t *)"little", 6, 0, 0},
                       {"archive/data/0", st, 64, 0, 0},   {"archive/data/1", st, 16, 0, 0},
                       {"archive/data/2", st, 8, 0, 0},    {"archive/data/3", st, 0, 0, 0},
                       {"archive/data/4", z, zn, 1, 0},    {"archive/data/5", st, 32, 0, 1}};
    enum { N = sizeof e / sizeof e[0] };
    size_t off[N];
    uint32_t crc[N];
    o->n = 0;
    for (int i = 0; i < N; i++) {
        const size_t nl = strlen(e[i].name), usize = e[i].deflate ? 32 : e[i].n;
        off[i] = o->n;
        crc[i] = (uint32_t)crc32(0, e[i].deflate ? st : e[i].data, (uInt)usize) ^ (uint32_t)e[i].bad_crc;
        putle(o, 0x04034b50, 4), putle(o, 20, 2), putle(o, 0, 2), putle(o, e[i].deflate ? 8 : 0, 2), putle(o, 0, 4);
        putle(o, crc[i], 4), putle(o, e[i].n, 4), putle(o, usize, 4), putle(o, nl, 2), putle(o, 0, 2);
        put(o, e[i].name, nl);
        if (e[i].n) put(o, e[i].data, e[i].n);
    }
    const size_t cd = o->n;
    for (int i = 0; i < N; i++) {
        const size_t nl = strlen(e[i].name), usize = e[i].deflate ? 32 : e[i].n;
        putle(o, 0x02014b50, 4), putle(o, 20, 2), putle(o, 20, 2), putle(o, 0, 2), putle(o, e[i].deflate ? 8 : 0, 2);
        putle(o, 0, 4), putle(o, crc[i], 4), putle(o, e[i].n, 4), putle(o, usize, 4), putle(o, nl, 2);
        putle(o, 0, 2), putle(o, 0, 2), putle(o, 0, 2), putle(o, 0, 2), putle(o, 0, 4), putle(o, off[i], 4);
        put(o, e[i].name, nl);
    }
    const size_t cd_size = o->n - cd;
    putle(o, 0x06054b50, 4), putle(o, 0, 4), putle(o, N, 2), putle(o, N, 2), putle(o, cd_size, 4), putle(o, cd, 4);
    putle(o, 0, 2);
}

static int g_pfd = -1;
static char g_ppath[64];

static void check_status(latup_status st) {
    if (st != LATUP_OK && st != LATUP_E_INPUT) {
        fprintf(stderr, "status %d: %s\n", (int)st, latup_last_error());
        abort();
    }
}

static void load(const uint8_t *pkl, size_t pn) {
    static buf zip;
    archive(&zip, pkl, pn);
    if (ftruncate(g_pfd, 0) != 0 || pwrite(g_pfd, zip.b, zip.n, 0) != (ssize_t)zip.n) abort();
    latup_weights w;
    latup_status st = latup_weights_load(g_ppath, &w);
    check_status(st);
    if (st) return;
    volatile float sink = 0;
    for (int i = 0; i < w.n; i++) {
        latup_wtensor *t = &w.t[i];
        st = latup_weights_fetch(&w, t);
        check_status(st);
        if (st) continue;
        for (int64_t e = 0; e < t->numel; e++) sink += t->f32 ? t->f32[e] : (float)t->i64[e];
    }
    (void)sink;
    latup_weights_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g_pfd < 0) {
        g_pfd = memfd_create("latup-fuzz-pth", 0);
        if (g_pfd < 0) abort();
        snprintf(g_ppath, sizeof g_ppath, "/proc/self/fd/%d", g_pfd);
    }
    if (size > ((size_t)1 << 20)) return 0;
    load(data, size); /* as it is */
    buf prog = {0};
    prog_cursor c = {data, size};
    program(&prog, &c);
    load(prog.b, prog.n);
    free(prog.b);
    return 0;
}
