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


#define ERRBUF 1024
static _Thread_local char g_err[ERRBUF];

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
    }
    return "unknown status";
}

latup_status latup_fail(latup_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    /* keep it one line */
    for (char *p = g_err; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return st;
}

void latup_error_prefix(const char *prefix) {
    char tmp[ERRBUF];
    size_t n = strlen(prefix);
    if (n > ERRBUF / 2) n = ERRBUF / 2;
    memcpy(tmp, prefix, n);
    tmp[n] = ':';
    tmp[n + 1] = ' ';
    size_t rest = strlen(g_err);
    if (rest > ERRBUF - n - 3) rest = ERRBUF - n - 3;
    memcpy(tmp + n + 2, g_err, rest);
    tmp[n + 2 + rest] = '\0';
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

/* ---- tensors ---- */
int64_t latup_tensor_numel(const latup_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

latup_status latup_tensor_alloc(latup_tensor *t, int ndim, const int64_t *shape) {
    memset(t, 0, sizeof *t);
    if (ndim < 1 || ndim > LATUP_MAX_DIMS)
        return latup_fail(LATUP_E_INTERNAL, "tensor rank %d out of range", ndim);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !latup_mul_ok(n, (size_t)shape[i], &n))
            return latup_fail(LATUP_E_NOMEM, "tensor size overflow");
        t->shape[i] = shape[i];
    }
    t->ndim = ndim;
    t->data = latup_alloc_floats(n, "tensor");
    if (!t->data) return LATUP_E_NOMEM;
    memset(t->data, 0, n * sizeof(float));
    return LATUP_OK;
}

void latup_tensor_free(latup_tensor *t) {
    if (!t) return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

const char *latup_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
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

latup_status latup_check_finite(const latup_tensor *x) {
    const int64_t i = first_nonfinite(x);
    if (i >= 0)
        return latup_fail(LATUP_E_INPUT, "input latent contains %s at flat index %lld",
                          isnan(x->data[i]) ? "NaN" : "Inf", (long long)i);
    return LATUP_OK;
}

latup_status latup_check_finite_output(const latup_tensor *x, const char *what) {
    const int64_t i = first_nonfinite(x);
    if (i >= 0)
        return latup_fail(LATUP_E_INPUT, "%s came out non-finite (%s at flat index %lld): the weights or the input "
                          "overflow fp32; nothing written", what, isnan(x->data[i]) ? "NaN" : "Inf", (long long)i);
    return LATUP_OK;
}
