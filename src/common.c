/* common.c — error messages, checked allocation, tensors, clock. No BLAS or OpenMP here, so the
 * file readers built on it can be compiled alone (fuzzing). */
#define _POSIX_C_SOURCE 200809L
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static _Thread_local char g_err[LATUP_ERR_MAX];

const char *latup_last_error(void) { return g_err[0] ? g_err : "no error"; }

const char *latup_status_name(latup_status st) {
    switch (st) {
    case LATUP_OK: return "ok";
    case LATUP_E_USAGE: return "usage error";
    case LATUP_E_INPUT: return "bad input";
    case LATUP_E_NOMEM: return "out of memory";
    case LATUP_E_IO: return "i/o error";
    case LATUP_E_INTERNAL: return "internal error";
    case LATUP_E_DEVICE: return "device unavailable";
    case LATUP_E_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

/* ---- progress ---------------------------------------------------------------------------------- */

static latup_status report_progress(latup_progress *p) {
    if (p->fn(p->user, p->done, p->total))
        return latup_fail(LATUP_E_CANCELLED, "cancelled by the progress callback");
    return LATUP_OK;
}

latup_status latup_progress_step(latup_progress *p) {
    if (!p || !p->fn || p->done >= p->end) return LATUP_OK;
    p->done++;
    return report_progress(p);
}

latup_status latup_progress_finish(latup_progress *p) {
    if (!p || !p->fn || p->done >= p->end) return LATUP_OK;
    p->done = p->end;
    return report_progress(p);
}

/* ---- the message formatter ---------------------------------------------------------------------
 * printf's conversions, except that string and character arguments are shown safely (common.h):
 * the format text is ours, the arguments may come from a hostile file. */

typedef struct {
    char *buf;
    size_t size, len; /* len < size always: the buffer stays NUL-terminated */
} outbuf;

static void out(outbuf *o, const char *s, size_t n) {
    size_t room = o->size - 1 - o->len;
    if (n > room) n = room;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static size_t shown_width(unsigned char c) { return c >= 0x20 && c < 0x7F ? 1 : 4; }

static void put_escaped(outbuf *o, const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (shown_width(s[i]) == 1) {
            out(o, (const char *)s + i, 1);
        } else {
            char e[5];
            snprintf(e, sizeof e, "\\x%02x", s[i]);
            out(o, e, 4);
        }
    }
}

/* s[0..n) escaped; if that is longer than LATUP_SHOWN_MAX, its head and tail around "...". */
static void put_shown(outbuf *o, const unsigned char *s, size_t n) {
    size_t w = 0;
    for (size_t i = 0; i < n && w <= LATUP_SHOWN_MAX; i++) w += shown_width(s[i]);
    if (w <= LATUP_SHOWN_MAX) {
        put_escaped(o, s, n);
        return;
    }
    const size_t head_max = (LATUP_SHOWN_MAX - 3) * 2 / 3, tail_max = LATUP_SHOWN_MAX - 3 - head_max;
    size_t h = 0, hw = 0, t = n, tw = 0;
    while (h < n && hw + shown_width(s[h]) <= head_max) hw += shown_width(s[h++]);
    while (t > h && tw + shown_width(s[t - 1]) <= tail_max) tw += shown_width(s[--t]);
    put_escaped(o, s, h);
    out(o, "...", 3);
    put_escaped(o, s + t, n - t);
}

/* A shown string padded to `width` (printf's %-Ns / %Ns). */
static void put_padded(outbuf *o, const unsigned char *s, size_t n, int width, bool left) {
    char tmp[4 * LATUP_SHOWN_MAX + 8];
    outbuf t = {tmp, sizeof tmp, 0};
    tmp[0] = '\0';
    put_shown(&t, s, n);
    size_t pad = width > 0 && (size_t)width > t.len ? (size_t)width - t.len : 0;
    for (size_t k = 0; !left && k < pad; k++) out(o, " ", 1);
    out(o, tmp, t.len);
    for (size_t k = 0; left && k < pad; k++) out(o, " ", 1);
}

void latup_vformat(char *buf, size_t size, const char *fmt, va_list ap_in) {
    if (!buf || size == 0) return;
    va_list ap;
    va_copy(ap, ap_in);
    outbuf o = {buf, size, 0};
    buf[0] = '\0';
    const char *p = fmt;
    while (*p) {
        if (*p != '%') {
            const char *q = strchr(p, '%');
            size_t n = q ? (size_t)(q - p) : strlen(p);
            out(&o, p, n);
            p += n;
            continue;
        }
        const char *spec_start = p++;
        if (*p == '%') {
            out(&o, "%", 1);
            p++;
            continue;
        }
        char flags[8];
        size_t nf = 0;
        while (*p && strchr("-+ #0", *p)) {
            if (nf < sizeof flags - 1) flags[nf++] = *p;
            p++;
        }
        bool left = memchr(flags, '-', nf) != NULL;
        int width = -1, prec = -1;
        bool prec_star = false;
        if (*p == '*') {
            width = va_arg(ap, int);
            if (width < 0) left = true, width = -width;
            p++;
        } else {
            for (width = 0; *p >= '0' && *p <= '9'; p++) width = width * 10 + (*p - '0');
        }
        if (*p == '.') {
            p++;
            if (*p == '*') {
                prec = va_arg(ap, int);
                prec_star = true;
                p++;
            } else {
                for (prec = 0; *p >= '0' && *p <= '9'; p++) prec = prec * 10 + (*p - '0');
            }
        }
        char len[3] = "";
        if (*p == 'h' || *p == 'l') {
            len[0] = *p++;
            if (*p == len[0]) len[1] = *p++;
        } else if (*p && strchr("jztL", *p)) {
            len[0] = *p++;
        }
        const char conv = *p ? *p++ : '\0';
        if (left && nf < sizeof flags - 1 && !memchr(flags, '-', nf)) flags[nf++] = '-';
        flags[nf] = '\0';
        char tmp[160];
        tmp[0] = '\0';
        /* Numbers: printf itself, with the width and precision written out and the argument read
         * at its promoted type. */
        char spec[48];
        int sn = snprintf(spec, sizeof spec, "%%%s", flags);
        if (width > 0) sn += snprintf(spec + sn, sizeof spec - (size_t)sn, "%d", width);
        if (prec >= 0) sn += snprintf(spec + sn, sizeof spec - (size_t)sn, ".%d", prec);
        switch (conv) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            size_t n;
            if (!s)
                s = "(null)", n = 6;
            else if (prec < 0)
                n = strlen(s);
            else
                n = prec_star ? (size_t)prec : strnlen(s, (size_t)prec); /* %.*s: exact length */
            put_padded(&o, (const unsigned char *)s, n, width, left);
            continue;
        }
        case 'c': {
            unsigned char c = (unsigned char)va_arg(ap, int);
            put_padded(&o, &c, 1, width, left);
            continue;
        }
        case 'd':
        case 'i': {
            intmax_t v;
            if (!strcmp(len, "l")) v = va_arg(ap, long);
            else if (!strcmp(len, "ll")) v = va_arg(ap, long long);
            else if (!strcmp(len, "j")) v = va_arg(ap, intmax_t);
            else if (!strcmp(len, "z")) v = (intmax_t)va_arg(ap, size_t);
            else if (!strcmp(len, "t")) v = va_arg(ap, ptrdiff_t);
            else v = va_arg(ap, int);
            if (!strcmp(len, "hh")) v = (signed char)v;
            else if (!strcmp(len, "h")) v = (short)v;
            snprintf(spec + sn, sizeof spec - (size_t)sn, "j%c", conv);
            snprintf(tmp, sizeof tmp, spec, v);
            break;
        }
        case 'u':
        case 'o':
        case 'x':
        case 'X': {
            uintmax_t v;
            if (!strcmp(len, "l")) v = va_arg(ap, unsigned long);
            else if (!strcmp(len, "ll")) v = va_arg(ap, unsigned long long);
            else if (!strcmp(len, "j")) v = va_arg(ap, uintmax_t);
            else if (!strcmp(len, "z")) v = va_arg(ap, size_t);
            else if (!strcmp(len, "t")) v = (uintmax_t)va_arg(ap, ptrdiff_t);
            else v = va_arg(ap, unsigned);
            if (!strcmp(len, "hh")) v = (unsigned char)v;
            else if (!strcmp(len, "h")) v = (unsigned short)v;
            snprintf(spec + sn, sizeof spec - (size_t)sn, "j%c", conv);
            snprintf(tmp, sizeof tmp, spec, v);
            break;
        }
        case 'e': case 'E': case 'f': case 'F': case 'g': case 'G': case 'a': case 'A':
            if (!strcmp(len, "L")) {
                long double v = va_arg(ap, long double);
                snprintf(spec + sn, sizeof spec - (size_t)sn, "L%c", conv);
                snprintf(tmp, sizeof tmp, spec, v);
            } else {
                double v = va_arg(ap, double);
                snprintf(spec + sn, sizeof spec - (size_t)sn, "%c", conv);
                snprintf(tmp, sizeof tmp, spec, v);
            }
            break;
        case 'p': {
            void *v = va_arg(ap, void *);
            snprintf(tmp, sizeof tmp, "%p", v);
            break;
        }
        default: /* not a conversion latup uses: the text as written, no argument read */
            out(&o, spec_start, (size_t)(p - spec_start));
            continue;
        }
        out(&o, tmp, strlen(tmp));
    }
    va_end(ap);
}

const char *latup_format(char *buf, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    latup_vformat(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

latup_status latup_vfail(latup_status st, const char *prefix, const char *fmt, va_list ap) {
    size_t n = 0;
    if (prefix) {
        n = strlen(prefix);
        if (n > sizeof g_err / 2) n = sizeof g_err / 2;
        memcpy(g_err, prefix, n);
    }
    latup_vformat(g_err + n, sizeof g_err - n, fmt, ap);
    /* keep it one line (arguments are escaped already; this covers the format text) */
    for (char *p = g_err; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return st;
}

latup_status latup_fail(latup_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    latup_vfail(st, NULL, fmt, ap);
    va_end(ap);
    return st;
}

void latup_error_prefix(const char *prefix) {
    if (!prefix) return;
    char tmp[LATUP_ERR_MAX];
    latup_format(tmp, sizeof tmp / 2, "%s: ", prefix);
    size_t n = strlen(tmp), rest = strlen(g_err);
    if (rest > sizeof tmp - n - 1) rest = sizeof tmp - n - 1;
    memcpy(tmp + n, g_err, rest);
    tmp[n + rest] = '\0';
    memcpy(g_err, tmp, sizeof g_err);
}

void *latup_malloc(size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) latup_fail(LATUP_E_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *latup_calloc(size_t n, size_t size, const char *what) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) latup_fail(LATUP_E_NOMEM, "out of memory allocating %zu x %zu bytes for %s", n, size, what);
    return p;
}

float *latup_alloc_floats(size_t n, const char *what) {
    size_t bytes;
    if (!latup_mul_ok(n, sizeof(float), &bytes) || bytes > SIZE_MAX - 64) {
        latup_fail(LATUP_E_NOMEM, "size overflow allocating %zu floats for %s", n, what);
        return NULL;
    }
    bytes = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, bytes ? bytes : 64);
    if (!p) latup_fail(LATUP_E_NOMEM, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

double latup_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

latup_size_text latup_size_str(size_t bytes) {
    latup_size_text t;
    const double b = (double)bytes;
    if (b >= 1073741824.0) snprintf(t.s, sizeof t.s, "%.2f GiB", b / 1073741824.0);
    else if (b >= 1048576.0) snprintf(t.s, sizeof t.s, "%.1f MiB", b / 1048576.0);
    else if (b >= 1024.0) snprintf(t.s, sizeof t.s, "%.1f KiB", b / 1024.0);
    else snprintf(t.s, sizeof t.s, "%zu bytes", bytes);
    return t;
}

/* ---- tensors ---- */
latup_status latup_null_arg(const char *func, const char *arg) {
    return latup_fail(LATUP_E_USAGE, "%s: argument '%s' is NULL", func, arg);
}

latup_status latup_check_enum(int v, int lo, int hi, const char *func, const char *arg) {
    if (v < lo || v > hi) return latup_fail(LATUP_E_USAGE, "%s: %s is %d, expected %d to %d", func, arg, v, lo, hi);
    return LATUP_OK;
}

/* The element count of a valid shape, or -1: a rank outside 1..LATUP_MAX_DIMS, a negative
 * dimension, or a count whose fp32 bytes overflow int64_t or size_t. */
static int64_t shape_numel(int ndim, const int64_t *shape) {
    if (ndim < 1 || ndim > LATUP_MAX_DIMS) return -1;
    const int64_t lim = (int64_t)((uint64_t)INT64_MAX < (uint64_t)SIZE_MAX ? (uint64_t)INT64_MAX : (uint64_t)SIZE_MAX) /
                        (int64_t)sizeof(float);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > lim / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

int64_t latup_tensor_numel(const latup_tensor *t) {
    return t ? shape_numel(t->ndim, t->shape) : -1;
}

latup_status latup_tensor_check(const latup_tensor *t, const char *func, const char *arg, int need_data) {
    if (!t) return latup_null_arg(func, arg);
    if (t->ndim < 1 || t->ndim > LATUP_MAX_DIMS)
        return latup_fail(LATUP_E_USAGE, "%s: tensor '%s' has rank %d, expected 1 to %d", func, arg, t->ndim,
                          LATUP_MAX_DIMS);
    char s[96];
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0)
            return latup_fail(LATUP_E_USAGE, "%s: tensor '%s' has shape %s: dimension %d is negative", func, arg,
                              latup_shape_str(s, sizeof s, t->ndim, t->shape), i);
    const int64_t n = shape_numel(t->ndim, t->shape);
    if (n < 0)
        return latup_fail(LATUP_E_USAGE, "%s: tensor '%s' has shape %s: its size overflows", func, arg,
                          latup_shape_str(s, sizeof s, t->ndim, t->shape));
    if (need_data && n > 0 && !t->data)
        return latup_fail(LATUP_E_USAGE, "%s: tensor '%s' has shape %s but its data is NULL", func, arg,
                          latup_shape_str(s, sizeof s, t->ndim, t->shape));
    if ((uintptr_t)t->data % _Alignof(float))
        return latup_fail(LATUP_E_USAGE, "%s: tensor '%s' has data at %p, not aligned for float (%zu bytes)", func, arg,
                          (void *)t->data, _Alignof(float));
    return LATUP_OK;
}

latup_status latup_tensor_alloc(latup_tensor *t, int ndim, const int64_t *shape) {
    LATUP_NEED(t);
    memset(t, 0, sizeof *t);
    LATUP_NEED(shape);
    char s[96];
    if (ndim < 1 || ndim > LATUP_MAX_DIMS)
        return latup_fail(LATUP_E_USAGE, "latup_tensor_alloc: rank %d, expected 1 to %d", ndim, LATUP_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return latup_fail(LATUP_E_USAGE, "latup_tensor_alloc: shape %s: dimension %d is negative",
                              latup_shape_str(s, sizeof s, ndim, shape), i);
    const int64_t n = shape_numel(ndim, shape);
    if (n < 0)
        return latup_fail(LATUP_E_NOMEM, "latup_tensor_alloc: shape %s: its size overflows",
                          latup_shape_str(s, sizeof s, ndim, shape));
    t->data = latup_alloc_floats((size_t)n, "tensor");
    if (!t->data) return LATUP_E_NOMEM;
    memset(t->data, 0, (size_t)n * sizeof(float));
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    return LATUP_OK;
}

void latup_tensor_free(latup_tensor *t) {
    if (!t) return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

/* Never reads past shape[LATUP_MAX_DIMS - 1]: a rank outside 1..LATUP_MAX_DIMS prints as
 * "[rank 7]" (its dimensions are not there to read). */
const char *latup_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    if (!buf || n == 0) return "";
    if (ndim < 0 || ndim > LATUP_MAX_DIMS || (!shape && ndim > 0)) {
        snprintf(buf, n, "[rank %d]", ndim);
        return buf;
    }
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n > k ? n - k : 0, "[");
    for (int i = 0; i < ndim; i++)
        k += (size_t)snprintf(buf + k, n > k ? n - k : 0, i ? ",%lld" : "%lld", (long long)shape[i]);
    snprintf(buf + k, n > k ? n - k : 0, "]");
    return buf;
}

/* The first non-finite value's index, or -1. */
static int64_t first_nonfinite(const latup_tensor *x) {
    const int64_t n = latup_tensor_numel(x);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x->data[i])) return i;
    return -1;
}

latup_status latup_check_finite_input(const latup_tensor *x, const char *what) {
    const int64_t i = first_nonfinite(x);
    if (i >= 0)
        return latup_fail(LATUP_E_INPUT, "%s contains %s at flat index %lld", what,
                          isnan(x->data[i]) ? "NaN" : "Inf", (long long)i);
    return LATUP_OK;
}

latup_status latup_check_finite(const latup_tensor *x) { return latup_check_finite_input(x, "input latent"); }

latup_status latup_check_finite_output(const latup_tensor *x, const char *what) {
    const int64_t i = first_nonfinite(x);
    if (i >= 0)
        return latup_fail(LATUP_E_INPUT, "%s came out non-finite (%s at flat index %lld): the weights or the input "
                          "overflow fp32; nothing written", what, isnan(x->data[i]) ? "NaN" : "Inf", (long long)i);
    return LATUP_OK;
}
