/* common.h — internal helpers shared by every translation unit: error reporting (a thread-local
 * message plus a status), checked allocation, and small integer-overflow guards. */
#ifndef LATUP_COMMON_H
#define LATUP_COMMON_H

#include "latup.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define LATUP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LATUP_PRINTF(a, b)
#endif

/* Returns the status of x from the enclosing function unless it is LATUP_OK. */
#define TRY(x)                                                                                     \
    do {                                                                                           \
        latup_status st_ = (x);                                                                    \
        if (st_ != LATUP_OK) return st_;                                                           \
    } while (0)

/* ---- the argument contract at the API boundary (latup.h, "Arguments") ----
 * LATUP_NEED(p): a NULL pointer argument is LATUP_E_USAGE naming the function and the argument. */
latup_status latup_null_arg(const char *func, const char *arg);
#define LATUP_NEED(p)                                                                              \
    do {                                                                                           \
        if (!(p)) return latup_null_arg(__func__, #p);                                             \
    } while (0)

/* A caller's tensor before anything indexes or formats it: t not NULL, ndim 1..LATUP_MAX_DIMS,
 * no negative dimension, the element count and its bytes within int64_t and size_t, data aligned
 * for float, and data not NULL when it holds elements (need_data; a plan takes a shape alone). LATUP_E_USAGE naming
 * `func` and `arg`. */
latup_status latup_tensor_check(const latup_tensor *t, const char *func, const char *arg, int need_data);
#define LATUP_NEED_TENSOR(t) TRY(latup_tensor_check((t), __func__, #t, 1))

/* An enum argument or field: v in lo..hi, else LATUP_E_USAGE "func: arg is v, expected lo to hi". */
latup_status latup_check_enum(int v, int lo, int hi, const char *func, const char *arg);

/* LATUP_E_INPUT naming the first NaN or Inf in an input latent (garbage in must not become
 * silent garbage out). */
latup_status latup_check_finite(const latup_tensor *x);
/* The same for an input called `what` ("input image"). */
latup_status latup_check_finite_input(const latup_tensor *x, const char *what);
/* LATUP_E_INPUT when a computed output (`what`, e.g. "the decoded image") holds a NaN or Inf:
 * finite weights and input can still overflow, and garbage must not become a file. */
latup_status latup_check_finite_output(const latup_tensor *x, const char *what);

/* Error messages come from hostile files: tensor names, zip entry names, pickle globals and paths
 * may hold control bytes (ANSI escapes), NULs, or thousands of bytes. The formatter behind
 * latup_fail and latup_format therefore treats every %s (and %c) argument as untrusted: each byte
 * outside printable ASCII is shown as \xNN, and a string whose shown form is longer than
 * LATUP_SHOWN_MAX bytes keeps its head and tail around "...", so the reason after it always fits
 * in the message. "%.*s" takes a byte string with its exact length (it may contain NULs, which are
 * shown, never cut at); "%.Ns" with a literal N stops at a NUL as in printf. */
#define LATUP_SHOWN_MAX 200
#define LATUP_ERR_MAX 2048 /* bytes in one message, NUL included */

/* Records a one-line message for latup_last_error() and returns st, so error paths read
 * `return latup_fail(LATUP_E_INPUT, "%s: ...", path);`. */
latup_status latup_fail(latup_status st, const char *fmt, ...) LATUP_PRINTF(2, 3);
/* The same with a va_list, after `prefix` (already formatted, e.g. by latup_format; NULL: none):
 * for readers whose messages share a prefix such as "<file>: offset N: ". */
latup_status latup_vfail(latup_status st, const char *prefix, const char *fmt, va_list ap);

/* snprintf with latup_fail's treatment of %s and %c arguments; returns buf. */
const char *latup_format(char *buf, size_t size, const char *fmt, ...) LATUP_PRINTF(3, 4);
void latup_vformat(char *buf, size_t size, const char *fmt, va_list ap);

/* Prefixes the current message with "prefix: " (used to add a file name on the way out); the
 * prefix is shown as a %s argument would be. */
void latup_error_prefix(const char *prefix);

/* malloc/calloc that record a LATUP_E_NOMEM message naming what was being allocated.
 * latup_alloc_floats returns 64-byte aligned memory, release with free(). */
void *latup_malloc(size_t bytes, const char *what);
void *latup_calloc(size_t n, size_t size, const char *what);
float *latup_alloc_floats(size_t n, const char *what);

/* a*b into *out; false on overflow. */
static inline bool latup_add_ok(size_t a, size_t b, size_t *out) {
    if (a > SIZE_MAX - b) return false;
    *out = a + b;
    return true;
}
static inline bool latup_mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}

/* ---- progress (latup_progress_fn) ----
 * One call's count of steps, across its stages: the call (src/api/call.c) sets total from the
 * counting passes before the first stage and `end` to the last step of each stage as it begins;
 * the passes (CPU and GPU) report each step with latup_progress_step. done never passes end, and
 * the call reports `end` itself when a stage finishes short of it, so a caller always sees done
 * rise to total, one step at a time or in a jump, and never go back. */
typedef struct {
    latup_progress_fn fn; /* NULL: nobody listens (steps cost nothing) */
    void *user;
    int64_t done, end, total;
} latup_progress;

/* One step done: tells the callback. LATUP_E_CANCELLED, with its message, when it asks to stop;
 * LATUP_OK otherwise (and for a NULL p). */
latup_status latup_progress_step(latup_progress *p);
/* The stage ends: reports `end` if the steps fell short of it (same return as a step). */
latup_status latup_progress_finish(latup_progress *p);

/* Wall clock in seconds (monotonic). */
double latup_now(void);

/* A size in the unit that fits it, for messages: "3.02 GiB", "716.4 MiB", "12.0 KiB", "512 bytes". */
typedef struct {
    char s[24];
} latup_size_text;
latup_size_text latup_size_str(size_t bytes);

#endif
