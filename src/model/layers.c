/* layers.c — binding checkpoint tensors to layer structs, with shape checks and bookkeeping of
 * which tensors a model used. */
#include "model/layers.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

latup_status latup_binder_init(latup_binder *bd, latup_weights *w) {
    bd->w = w;
    bd->used = latup_calloc((size_t)(w->n > 0 ? w->n : 1), 1, "tensor bookkeeping");
    return bd->used ? LATUP_OK : LATUP_E_NOMEM;
}

void latup_binder_free(latup_binder *bd) {
    free(bd->used);
    bd->used = NULL;
}

static void mark(latup_binder *bd, const latup_wtensor *t) {
    if (t) bd->used[t - bd->w->t] = 1;
}

/* Garbage in must not become silent garbage out: one pass over each weight as it is bound. */
static latup_status check_finite(const latup_weights *w, const latup_wtensor *t) {
    for (int64_t i = 0; i < t->numel; i++)
        if (!isfinite(t->f32[i]))
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s' holds %s at flat index %lld (a weight must be finite)",
                              w->path, t->name, isnan(t->f32[i]) ? "NaN" : "Inf", (long long)i);
    return LATUP_OK;
}

latup_status latup_bind(latup_binder *bd, const float **out, int ndim, const int64_t *shape,
                        const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    TRY(latup_weights_get(bd->w, name, ndim, shape, out));
    const latup_wtensor *t = latup_weights_find(bd->w, name);
    if (!bd->used[t - bd->w->t]) TRY(check_finite(bd->w, t));
    mark(bd, t);
    return LATUP_OK;
}

latup_status latup_bind_optional(latup_binder *bd, const latup_wtensor **out, int fetch, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    latup_wtensor *t = (latup_wtensor *)latup_weights_find(bd->w, name);
    *out = t;
    if (!t) return LATUP_OK;
    mark(bd, t);
    return fetch ? latup_weights_fetch(bd->w, t) : LATUP_OK;
}

latup_status latup_binder_check_all_used(const latup_binder *bd, const char *model_kind) {
    int unused = 0, first = -1;
    for (int i = 0; i < bd->w->n; i++)
        if (!bd->used[i]) {
            if (first < 0) first = i;
            unused++;
        }
    if (unused == 0) return LATUP_OK;
    return latup_fail(LATUP_E_INPUT,
                      "%s: unexpected tensor '%s' (%d of %d tensors are not part of a %s model)",
                      bd->w->path, bd->w->t[first].name, unused, bd->w->n, model_kind);
}

latup_status latup_bind_conv(latup_binder *bd, latup_conv *c, int cin, int cout, int k,
                             const char *name) {
    const int64_t ws[4] = {cout, cin, k, k}, bs[1] = {cout};
    c->cin = cin, c->cout = cout, c->k = k;
    latup_status st = latup_bind(bd, &c->w, 4, ws, "%s.weight", name);
    if (st == LATUP_OK) st = latup_bind(bd, &c->b, 1, bs, "%s.bias", name);
    return st;
}

latup_status latup_bind_linear(latup_binder *bd, latup_linear *l, int in, int out,
                               const char *name) {
    const int64_t ws[2] = {out, in}, bs[1] = {out};
    l->in = in, l->out = out;
    latup_status st = latup_bind(bd, &l->w, 2, ws, "%s.weight", name);
    if (st == LATUP_OK) st = latup_bind(bd, &l->b, 1, bs, "%s.bias", name);
    return st;
}

latup_status latup_bind_norm(latup_binder *bd, latup_norm *n, int dim, float eps,
                             const char *name) {
    const int64_t s[1] = {dim};
    n->dim = dim, n->eps = eps;
    latup_status st = latup_bind(bd, &n->w, 1, s, "%s.weight", name);
    if (st == LATUP_OK) st = latup_bind(bd, &n->b, 1, s, "%s.bias", name);
    return st;
}

int latup_weights_max_index(const latup_weights *w, const char *prefix) {
    const size_t n = strlen(prefix);
    int best = -1;
    for (int i = 0; i < w->n; i++) {
        const char *s = w->t[i].name;
        if (strncmp(s, prefix, n) != 0) continue;
        char *end;
        const long v = strtol(s + n, &end, 10);
        if (end != s + n && *end == '.' && v >= 0 && v < 100000 && v > best) best = (int)v;
    }
    return best;
}

latup_status latup_weights_require(const latup_weights *w, const char *name, int ndim, const char *model,
                                   const latup_wtensor **out) {
    const latup_wtensor *t = latup_weights_find(w, name);
    if (!t)
        return latup_fail(LATUP_E_INPUT, "%s: missing tensor '%s' (needed to infer the %s config)", w->path, name,
                          model);
    if (t->ndim != ndim || t->dtype == LATUP_DT_I64) {
        char s[96];
        return latup_fail(LATUP_E_INPUT, "%s: tensor '%s' has shape %s, expected a %d-d float tensor", w->path, name,
                          latup_shape_str(s, sizeof s, t->ndim, t->shape), ndim);
    }
    *out = t;
    return LATUP_OK;
}

latup_status latup_config_dim(const latup_weights *w, const char *name, const char *what, int64_t value,
                              int64_t lo, int64_t hi) {
    if (value >= lo && value <= hi) return LATUP_OK;
    const latup_wtensor *t = latup_weights_find(w, name);
    char s[96] = "";
    if (t) latup_shape_str(s, sizeof s, t->ndim, t->shape);
    return latup_fail(LATUP_E_INPUT, "%s: tensor '%s'%s%s gives %s %lld; a model has %lld to %lld", w->path, name,
                      t ? " of shape " : "", s, what, (long long)value, (long long)lo, (long long)hi);
}
