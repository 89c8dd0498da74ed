/* npy.c — .npy reader ('<f4', '<f2', '<f8' and bfloat16, C order, 1 to 4 dims) and '<f4'
 * writer. The header is a Python dict literal; we parse exactly the subset numpy.save writes
 * rather than evaluate it, and insist that the data is exactly shape x itemsize bytes. */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include "io/fileio.h"
#include "io/half.h"
#include "io/npy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "latup reads and writes little-endian .npy data and needs a little-endian host"
#endif

#define NPY_MAX_FILE ((uint64_t)64 << 30)
static const char k_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* ---- header dict ------------------------------------------------------------------------------ */
typedef struct {
    const char *s;
    size_t len, pos;
    const char *path;
} hdr_cursor;

static void hskip(hdr_cursor *c) {
    while (c->pos < c->len &&
           (c->s[c->pos] == ' ' || c->s[c->pos] == '\t' || c->s[c->pos] == '\n' || c->s[c->pos] == '\r'))
        c->pos++;
}

static bool hpeek(hdr_cursor *c, char ch) {
    hskip(c);
    return c->pos < c->len && c->s[c->pos] == ch;
}

static latup_status hbad(const hdr_cursor *c, const char *what) {
    return latup_fail(LATUP_E_INPUT, "%s: malformed .npy header at character %zu: %s", c->path, c->pos, what);
}

static latup_status hexpect(hdr_cursor *c, char ch) {
    if (!hpeek(c, ch)) {
        char msg[32];
        snprintf(msg, sizeof msg, "expected '%c'", ch);
        return hbad(c, msg);
    }
    c->pos++;
    return LATUP_OK;
}

/* A quoted Python string without escapes (numpy never writes any in these fields). */
static latup_status hstring(hdr_cursor *c, char *out, size_t cap) {
    hskip(c);
    if (c->pos >= c->len || (c->s[c->pos] != '\'' && c->s[c->pos] != '"'))
        return hbad(c, "expected a string");
    char q = c->s[c->pos++];
    size_t n = 0;
    while (c->pos < c->len && c->s[c->pos] != q) {
        if (c->s[c->pos] == '\\' || (unsigned char)c->s[c->pos] < 0x20)
            return hbad(c, "unsupported character in a string");
        if (n + 1 >= cap) return hbad(c, "string too long");
        out[n++] = c->s[c->pos++];
    }
    if (c->pos >= c->len) return hbad(c, "unterminated string");
    c->pos++;
    out[n] = '\0';
    return LATUP_OK;
}

static bool hword(hdr_cursor *c, const char *w) {
    hskip(c);
    size_t n = strlen(w);
    if (c->len - c->pos < n || memcmp(c->s + c->pos, w, n) != 0) return false;
    c->pos += n;
    return true;
}

/* shape: a tuple of non-negative integers, "()" or "(5,)" or "(2, 3)" (trailing comma optional
 * past one element, required for one, as in Python). */
static latup_status hshape(hdr_cursor *c, int *ndim, int64_t *shape) {
    latup_status st = hexpect(c, '(');
    if (st) return st;
    int n = 0;
    bool comma = false;
    while (!hpeek(c, ')')) {
        if (n > 0 && !comma) return hbad(c, "expected ',' or ')' in shape");
        hskip(c);
        if (c->pos < c->len && c->s[c->pos] == '-')
            return latup_fail(LATUP_E_INPUT, "%s: .npy shape has a negative dimension", c->path);
        if (c->pos >= c->len || c->s[c->pos] < '0' || c->s[c->pos] > '9')
            return hbad(c, "expected an integer in shape");
        int64_t v = 0;
        while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') {
            int dgt = c->s[c->pos++] - '0';
            if (v > (INT64_MAX - dgt) / 10)
                return latup_fail(LATUP_E_INPUT, "%s: .npy shape dimension too large", c->path);
            v = v * 10 + dgt;
        }
        if (n >= LATUP_MAX_DIMS)
            return latup_fail(LATUP_E_INPUT,
                              "%s: .npy array has more than %d dimensions (latup reads 1 to %d)", c->path,
                              LATUP_MAX_DIMS, LATUP_MAX_DIMS);
        shape[n++] = v;
        comma = hpeek(c, ',');
        if (comma) c->pos++;
    }
    c->pos++;
    if (n == 1 && !comma) return hbad(c, "shape (n) is not a tuple; numpy writes (n,)");
    *ndim = n;
    return LATUP_OK;
}

typedef struct {
    char descr[16];
    int fortran; /* -1: absent */
    int ndim;    /* -1: absent */
    int64_t shape[LATUP_MAX_DIMS];
} npy_header;

static latup_status parse_header(const char *s, size_t len, const char *path, npy_header *h) {
    hdr_cursor c = {.s = s, .len = len, .path = path};
    h->descr[0] = '\0';
    h->fortran = -1;
    h->ndim = -1;
    latup_status st = hexpect(&c, '{');
    if (st) return st;
    while (!hpeek(&c, '}')) {
        char key[32];
        if ((st = hstring(&c, key, sizeof key))) return st;
        if ((st = hexpect(&c, ':'))) return st;
        if (strcmp(key, "descr") == 0 && !h->descr[0]) {
            if (hpeek(&c, '[')) /* a structured dtype */
                return latup_fail(
                    LATUP_E_INPUT,
                    "%s: structured .npy dtypes are not supported (latup reads '<f4' and '<f2')", path);
            if ((st = hstring(&c, h->descr, sizeof h->descr))) return st;
            if (!h->descr[0]) return hbad(&c, "empty descr");
        } else if (strcmp(key, "fortran_order") == 0 && h->fortran < 0) {
            if (hword(&c, "True"))
                h->fortran = 1;
            else if (hword(&c, "False"))
                h->fortran = 0;
            else
                return hbad(&c, "fortran_order must be True or False");
        } else if (strcmp(key, "shape") == 0 && h->ndim < 0) {
            if ((st = hshape(&c, &h->ndim, h->shape))) return st;
        } else {
            return latup_fail(LATUP_E_INPUT, "%s: .npy header has an unexpected or repeated key '%s'", path,
                              key);
        }
        if (hpeek(&c, ','))
            c.pos++;
        else if (!hpeek(&c, '}'))
            return hbad(&c, "expected ',' or '}'");
    }
    c.pos++;
    hskip(&c);
    if (c.pos != len) return hbad(&c, "unexpected text after the header dict");
    if (!h->descr[0] || h->fortran < 0 || h->ndim < 0)
        return latup_fail(LATUP_E_INPUT, "%s: .npy header lacks '%s'", path,
                          !h->descr[0]     ? "descr"
                          : h->fortran < 0 ? "fortran_order"
                                           : "shape");
    return LATUP_OK;
}

/* ---- reading ---------------------------------------------------------------------------------- */

/* Magic, version and header length: where the header dict lies, [*hstart, *hstart + *hlen). */
static latup_status header_bounds(const uint8_t *buf, size_t len, const char *path, size_t *hstart,
                                  size_t *hlen) {
    if (len < 10 || memcmp(buf, k_magic, 6) != 0)
        return latup_fail(LATUP_E_INPUT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
    int major = buf[6], minor = buf[7];
    if (major == 1 && minor == 0) {
        *hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        *hstart = 10;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (len < 12) return latup_fail(LATUP_E_INPUT, "%s: truncated .npy header", path);
        *hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        *hstart = 12;
    } else {
        return latup_fail(LATUP_E_INPUT, "%s: unsupported .npy version %d.%d (latup reads 1.0, 2.0, 3.0)",
                          path, major, minor);
    }
    if (*hlen > len - *hstart)
        return latup_fail(LATUP_E_INPUT, "%s: truncated .npy header (%zu bytes declared, %zu present)", path,
                          *hlen, len - *hstart);
    return LATUP_OK;
}

latup_status latup_npy_parse(const uint8_t *buf, size_t len, const char *path, latup_tensor *t) {
    memset(t, 0, sizeof *t);
    if (!path) path = "<buffer>";
    size_t hlen, hstart;
    latup_status st = header_bounds(buf, len, path, &hstart, &hlen);
    if (st) return st;
    npy_header h;
    if ((st = parse_header((const char *)buf + hstart, hlen, path, &h))) return st;

    /* numpy writes ml_dtypes.bfloat16 arrays as the 2-byte void '<V2' (it has no bfloat16 of its
     * own); some writers spell it out */
    enum { F32, F16, F64, BF16 } kind;
    size_t itemsize;
    if (strcmp(h.descr, "<f4") == 0)
        kind = F32, itemsize = 4;
    else if (strcmp(h.descr, "<f2") == 0)
        kind = F16, itemsize = 2;
    else if (strcmp(h.descr, "<f8") == 0)
        kind = F64, itemsize = 8;
    else if (!strcmp(h.descr, "<V2") || !strcmp(h.descr, "|V2") || !strcmp(h.descr, "bfloat16") ||
             !strcmp(h.descr, "<bf16"))
        kind = BF16, itemsize = 2;
    else if (h.descr[0] == '>')
        return latup_fail(LATUP_E_INPUT, "%s: big-endian .npy data ('%s') is not supported; save it as '<f4'",
                          path, h.descr);
    else
        return latup_fail(LATUP_E_INPUT,
                          "%s: .npy dtype '%s' is not supported (latup reads '<f4', '<f2', '<f8' and "
                          "bfloat16)",
                          path, h.descr);
    if (h.fortran)
        return latup_fail(LATUP_E_INPUT, "%s: Fortran order not supported (save a C-contiguous array)", path);
    if (h.ndim < 1)
        return latup_fail(LATUP_E_INPUT,
                          "%s: .npy array is a scalar (rank 0); latup reads 1 to %d dimensions", path,
                          LATUP_MAX_DIMS);

    char sb[128];
    latup_shape_str(sb, sizeof sb, h.ndim, h.shape);
    size_t numel = 1, nbytes, f32_bytes; /* f2 data doubles in size once converted */
    for (int d = 0; d < h.ndim; d++)
        if (!latup_mul_ok(numel, (size_t)h.shape[d], &numel))
            return latup_fail(LATUP_E_INPUT, "%s: .npy shape %s is too large (element count overflows)", path,
                              sb);
    if (!latup_mul_ok(numel, itemsize, &nbytes) || !latup_mul_ok(numel, sizeof(float), &f32_bytes))
        return latup_fail(LATUP_E_INPUT, "%s: .npy shape %s is too large (byte size overflows)", path, sb);
    size_t have = len - hstart - hlen;
    if (have != nbytes)
        return latup_fail(LATUP_E_INPUT, "%s: %s data: %zu bytes, expected %zu for shape %s of '%s'", path,
                          have < nbytes ? "truncated" : "trailing bytes after the", have, nbytes, sb,
                          h.descr);

    if ((st = latup_tensor_alloc(t, h.ndim, h.shape))) { /* which left t empty */
        latup_error_prefix(path);
        return st;
    }
    const uint8_t *src = buf + hstart + hlen; /* any alignment: copy bytes, never cast */
    if (kind == F32) {
        memcpy(t->data, src, nbytes);
    } else if (kind == F16) {
        for (size_t i = 0; i < numel; i++)
            t->data[i] = latup_half_to_float((uint16_t)(src[2 * i] | (src[2 * i + 1] << 8)));
    } else if (kind == BF16) {
        for (size_t i = 0; i < numel; i++) {
            uint32_t bits = (uint32_t)(src[2 * i] | (src[2 * i + 1] << 8)) << 16;
            memcpy(&t->data[i], &bits, 4);
        }
    } else {
        for (size_t i = 0; i < numel; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            float f = (float)d; /* round to nearest */
            if (isfinite(d) && !isfinite(f)) {
                latup_tensor_free(t);
                memset(t, 0, sizeof *t);
                return latup_fail(LATUP_E_INPUT, "%s: float64 value %g at flat index %zu is out of float32 range",
                                  path, d, i);
            }
            t->data[i] = f;
        }
    }
    return LATUP_OK;
}

/* The format for latup_input_open: the magic, then the header, whose shape and dtype say how many
 * data bytes follow, so a stream (gzip, pipe) is read that far and no further. */
static int npy_sniff(const uint8_t *h, size_t n) { return n >= 6 && memcmp(h, k_magic, 6) == 0; }

static latup_status npy_size(const uint8_t *b, size_t n, int at_eof, const char *path, latup_size *s) {
    size_t hstart = 0, hlen = 0;
    if (n < 12 && !at_eof) { /* the longest fixed part (versions 2 and 3) */
        s->need = 12;
        return LATUP_OK;
    }
    if (n >= 10 && b[6] == 1 && n < 10 + ((size_t)b[8] | (size_t)b[9] << 8) && !at_eof) {
        s->need = 10 + ((size_t)b[8] | (size_t)b[9] << 8);
        return LATUP_OK;
    }
    if (n >= 12 && b[6] != 1 && !at_eof) {
        uint64_t hl = (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 | (uint64_t)b[11] << 24;
        if (n - 12 < hl) {
            s->need = 12 + hl;
            return LATUP_OK;
        }
    }
    TRY(header_bounds(b, n, path, &hstart, &hlen));
    npy_header h;
    TRY(parse_header((const char *)b + hstart, hlen, path, &h));
    /* numpy's typestr is byte order, kind, then the item size in bytes ('<f4', '|u1', '<V2') */
    size_t k = strlen(h.descr), itemsize = 0;
    while (k > 0 && h.descr[k - 1] >= '0' && h.descr[k - 1] <= '9') k--;
    itemsize = (size_t)strtoul(h.descr + k, NULL, 10);
    uint64_t bytes = itemsize ? itemsize : 1;
    for (int d = 0; d < h.ndim; d++) {
        if (h.shape[d] != 0 && bytes > UINT64_MAX / (uint64_t)h.shape[d]) {
            bytes = UINT64_MAX - hstart - hlen; /* the parser names the overflow */
            break;
        }
        bytes *= (uint64_t)h.shape[d];
    }
    s->known = 1;
    s->total = hstart + hlen + bytes;
    return LATUP_OK;
}

static latup_status npy_refuse(const uint8_t *b, size_t n, const char *path) {
    size_t hstart, hlen;
    return header_bounds(b, n, path, &hstart, &hlen);
}

const latup_file_format latup_npy_format = {"a .npy array (\\x93NUMPY)", 6, npy_sniff, npy_size, NPY_MAX_FILE,
                                            npy_refuse};

latup_status latup_npy_read(const char *path, latup_tensor *t) {
    LATUP_NEED(t);
    memset(t, 0, sizeof *t);
    LATUP_NEED(path);
    const latup_file_format *const fmts[] = {&latup_npy_format};
    latup_input in;
    latup_status st = latup_input_open(&in, path, fmts, 1, "a .npy array", 0);
    if (st) return st;
    st = latup_npy_parse(in.data, in.len, in.name, t);
    latup_input_close(&in);
    return st;
}

/* ---- writing ---------------------------------------------------------------------------------- */

latup_status latup_npy_encode(FILE *f, const char *path, const latup_tensor *t) {
    TRY(latup_tensor_check(t, path, "t", 1)); /* a caller's tensor (latup_npy_write, an output set's) */
    const size_t nbytes = (size_t)latup_tensor_numel(t) * sizeof(float);

    /* The dict exactly as numpy >= 1.24 formats it, spare spaces for in-place growth included, so
     * our files are byte-identical to numpy.save's. */
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int d = 0; d < t->ndim; d++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, d ? ", %lld" : "%lld", (long long)t->shape[d]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, t->ndim == 1 ? ",), }" : "), }");
    int lead_digits = snprintf(NULL, 0, "%lld", (long long)t->shape[0]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%*s", 21 - lead_digits, "");
    /* numpy's _wrap_header: magic(6) + version(2) + u16 length, then the dict, spaces and '\n'
     * so that the data starts at a multiple of 64. */
    size_t hlen = (size_t)n + 1;
    size_t pad = 64 - (10 + hlen) % 64;
    uint8_t head[10 + 256 + 64];
    memcpy(head, k_magic, 6);
    head[6] = 1;
    head[7] = 0;
    head[8] = (uint8_t)((hlen + pad) & 0xFF);
    head[9] = (uint8_t)((hlen + pad) >> 8);
    memcpy(head + 10, dict, (size_t)n);
    memset(head + 10 + n, ' ', pad);
    head[10 + n + pad] = '\n';
    size_t head_len = 10 + hlen + pad;
    if (fwrite(head, 1, head_len, f) != head_len || (nbytes && fwrite(t->data, 1, nbytes, f) != nbytes))
        return latup_fail(LATUP_E_IO, "%s: write failed: %s", path, strerror(errno));
    return LATUP_OK;
}

latup_status latup_npy_write(const char *path, const latup_tensor *t) {
    LATUP_NEED(path);
    TRY(latup_tensor_check(t, __func__, "t", 1)); /* before a temporary is made */
    latup_atomic_file af;
    latup_status st = latup_atomic_open(&af, path);
    if (st) return st;
    st = latup_npy_encode(af.f, path, t);
    if (!st) return latup_atomic_commit(&af);
    latup_atomic_abort(&af);
    return st;
}
