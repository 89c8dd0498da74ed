/* layers.h — parameter structs for the layer kinds every model here is built from (conv,
 * linear, norm), each holding its dims and pointers into the weight table, plus binding from
 * checkpoint names with shape checks. Binding fetches a tensor (the table is lazy) and checks
 * that its values are finite, once, at load. A loader marks every tensor it binds, so tensors
 * nobody asked for can be reported. */
#ifndef LATUP_LAYERS_H
#define LATUP_LAYERS_H

#include "io/weights.h"

typedef struct {
    const float *w; /* "<name>.weight" [cout, cin, k, k] */
    const float *b; /* "<name>.bias"   [cout] */
    int cin, cout, k;
} latup_conv;

typedef struct {
    const float *w; /* "<name>.weight" [out, in] */
    const float *b; /* "<name>.bias"   [out] */
    int in, out;
} latup_linear;

typedef struct {
    const float *w; /* "<name>.weight" [dim] */
    const float *b; /* "<name>.bias"   [dim] */
    int dim;
    float eps;
} latup_norm;

/* A weight table plus one "used" flag per tensor. */
typedef struct {
    latup_weights *w;
    unsigned char *used;
} latup_binder;

latup_status latup_binder_init(latup_binder *bd, latup_weights *w);
void latup_binder_free(latup_binder *bd);
/* Float tensor with this exact shape, fetched, every value finite (a NaN or Inf weight is
 * LATUP_E_INPUT naming the tensor and the flat index); marks it used. printf-style name. */
latup_status latup_bind(latup_binder *bd, const float **out, int ndim, const int64_t *shape,
                        const char *fmt, ...) LATUP_PRINTF(5, 6);
/* A tensor that may be absent (buffers checked elsewhere or deliberately ignored): *out is NULL,
 * or the tensor, marked used; with fetch, its data is loaded too. */
latup_status latup_bind_optional(latup_binder *bd, const latup_wtensor **out, int fetch, const char *fmt, ...)
    LATUP_PRINTF(4, 5);
/* LATUP_E_INPUT naming the first tensor nobody bound, and how many there are. */
latup_status latup_binder_check_all_used(const latup_binder *bd, const char *model_kind);

/* The largest integer N such that some tensor name starts with prefix + "N." (e.g. the number
 * of RSTBs from "layers."), or -1: how models count their repeated modules. */
int latup_weights_max_index(const latup_weights *w, const char *prefix);

/* For config inference (shapes only, no data read): float tensor `name` of rank ndim, else
 * LATUP_E_INPUT naming it ("missing tensor 'X' (needed to infer the <model> config)" or its
 * shape). */
latup_status latup_weights_require(const latup_weights *w, const char *name, int ndim, const char *model,
                                   const latup_wtensor **out);

/* Config inference: `value`, read off tensor `name` as `what` ("embed dim"), must lie in lo..hi, the
 * range a real model has (so a crafted file can neither run with a zero width nor size tables
 * past memory); else LATUP_E_INPUT naming the tensor and the range. */
latup_status latup_config_dim(const latup_weights *w, const char *name, const char *what, int64_t value,
                              int64_t lo, int64_t hi);

latup_status latup_bind_conv(latup_binder *bd, latup_conv *c, int cin, int cout, int k,
                             const char *name);
latup_status latup_bind_linear(latup_binder *bd, latup_linear *l, int in, int out,
                               const char *name);
latup_status latup_bind_norm(latup_binder *bd, latup_norm *n, int dim, float eps,
                             const char *name);

#endif
