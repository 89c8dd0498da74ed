/* safetensors.c — strict safetensors reader and F32/I64 writer, filling the name -> tensor table
 * (latup_weights, io/weights.h) that models load from. Validation follows docs/spec/formats.md
 * rule by rule, so a file we accept is one the reference (Rust) reader accepts too; all checks run
 * before any tensor data is touched. */
#define _POSIX_C_SOURCE 200809L
#include "io/checkpoint.h"

#include "io/fileio.h"
#include "io/half.h"
#include "io/json.h"
#include "io/weights.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Tensor bytes are copied from the file as they are, which is only right on a little-endian host. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "latup reads little-endian tensor data and needs a little-endian host"
#endif

#define ST_MAX_HEADER 100000000u           /* the reference reader's limit on N */
#define ST_MAX_FILE   ((uint64_t)64 << 30) /* refuse files (or gzip) inflating past 64 GiB */
/* A real header has about one JSON value per 15 bytes; this cap keeps a crafted 100 MB header of
 * "[0,0,0,..." from building a multi-GB tree (~48 bytes per value). */
#define ST_MAX_JSON_VALUES ((size_t)16 << 20)

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = latup_malloc(n, "a tensor name");
    if (d) memcpy(d, s, n);
    return d;
}

/* ---- parsing ---------------------------------------------------------------------------------- */

/* Where one tensor's bytes sit in the data section, from its data_offsets. */
typedef struct {
    int64_t begin, end;
    int idx; /* into w->t */
} span;

static int cmp_span(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->idx - y->idx;
}

static latup_status parse_metadata(const latup_json *m, const char *path, latup_weights *w) {
    if (m->type == LATUP_JSON_NULL) return LATUP_OK; /* the reference reader takes null as "none" */
    if (m->type != LATUP_JSON_OBJECT)
        return latup_fail(LATUP_E_INPUT, "%s: __metadata__ is %s, expected an object of strings", path,
                          latup_json_type_name(m->type));
    if (m->u.kids.n > (size_t)INT_MAX)
        return latup_fail(LATUP_E_INPUT, "%s: too many metadata entries", path);
    w->meta_key = latup_calloc(m->u.kids.n, sizeof(char *), "metadata");
    w->meta_val = latup_calloc(m->u.kids.n, sizeof(char *), "metadata");
    if (!w->meta_key || !w->meta_val) return LATUP_E_NOMEM;
    for (const latup_json *v = m->u.kids.first; v; v = v->next) {
        if (v->type != LATUP_JSON_STRING)
            return latup_fail(LATUP_E_INPUT, "%s: __metadata__ value '%s' is %s, must be a string", path,
                              v->key, latup_json_type_name(v->type));
        int i = w->n_meta++; /* counted first so latup_weights_free releases a half-copied pair */
        w->meta_key[i] = dup_str(v->key);
        w->meta_val[i] = dup_str(v->u.str.s);
        if (!w->meta_key[i] || !w->meta_val[i]) return LATUP_E_NOMEM;
    }
    return LATUP_OK;
}

/* One header entry {"dtype": .., "shape": [..], "data_offsets": [begin, end]} into *t and *sp. */
static latup_status parse_entry(const latup_json *e, const char *path, latup_wtensor *t, span *sp) {
    const char *name = t->name;
    if (e->type != LATUP_JSON_OBJECT)
        return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': entry is %s, expected an object", path, name,
                          latup_json_type_name(e->type));
    const latup_json *dt = NULL, *shape = NULL, *offs = NULL;
    for (const latup_json *f = e->u.kids.first; f; f = f->next) {
        if (strcmp(f->key, "dtype") == 0)
            dt = f;
        else if (strcmp(f->key, "shape") == 0)
            shape = f;
        else if (strcmp(f->key, "data_offsets") == 0)
            offs = f;
        else
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': unknown field '%s'", path, name, f->key);
    }
    if (!dt || !shape || !offs)
        return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': missing field '%s'", path, name,
                          !dt      ? "dtype"
                          : !shape ? "shape"
                                   : "data_offsets");

    /* dtype */
    if (dt->type != LATUP_JSON_STRING)
        return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': dtype is %s, expected a string", path, name,
                          latup_json_type_name(dt->type));
    if (!latup_dtype_from_name(dt->u.str.s, &t->dtype))
        return latup_fail(LATUP_E_INPUT,
                          "%s: tensor '%s': unknown dtype '%s' (latup reads F32, F16, BF16, I64)", path, name,
                          dt->u.str.s);

    /* shape: at most 8 non-negative integers, with an element count that fits */
    if (shape->type != LATUP_JSON_ARRAY)
        return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': shape is %s, expected an array", path, name,
                          latup_json_type_name(shape->type));
    if (shape->u.kids.n > LATUP_WMAX_DIMS)
        return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': rank %zu exceeds the maximum of %d", path, name,
                          shape->u.kids.n, LATUP_WMAX_DIMS);
    t->ndim = (int)shape->u.kids.n;
    int d = 0;
    for (const latup_json *s = shape->u.kids.first; s; s = s->next, d++) {
        if (s->type != LATUP_JSON_INT || s->u.i < 0)
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': shape entry %d is not a non-negative integer",
                              path, name, d);
        t->shape[d] = s->u.i;
    }
    /* As in the reference reader, a zero dimension makes the count 0 whatever follows. */
    size_t numel = 1, nbytes;
    for (d = 0; d < t->ndim; d++)
        if (!latup_mul_ok(numel, (size_t)t->shape[d], &numel) || numel > (size_t)INT64_MAX) {
            char sb[256];
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': element count of shape %s overflows", path,
                              name, latup_shape_str(sb, sizeof sb, t->ndim, t->shape));
        }
    if (!latup_mul_ok(numel, latup_dtype_size(t->dtype), &nbytes) || nbytes > (size_t)INT64_MAX) {
        char sb[256];
        return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': byte size of shape %s overflows", path, name,
                          latup_shape_str(sb, sizeof sb, t->ndim, t->shape));
    }
    t->numel = (int64_t)numel;

    /* data_offsets: [begin, end], begin <= end, spanning exactly the tensor's bytes */
    if (offs->type != LATUP_JSON_ARRAY || offs->u.kids.n != 2 || offs->u.kids.first->type != LATUP_JSON_INT ||
        offs->u.kids.first->next->type != LATUP_JSON_INT || offs->u.kids.first->u.i < 0 ||
        offs->u.kids.first->next->u.i < 0)
        return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': data_offsets must be two non-negative integers",
                          path, name);
    sp->begin = offs->u.kids.first->u.i;
    sp->end = offs->u.kids.first->next->u.i;
    if (sp->begin > sp->end)
        return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': data_offsets begin %lld is after end %lld", path,
                          name, (long long)sp->begin, (long long)sp->end);
    if ((uint64_t)(sp->end - sp->begin) != (uint64_t)nbytes) {
        char sb[256];
        return latup_fail(LATUP_E_INPUT,
                          "%s: tensor '%s': data_offsets span %lld bytes, expected %zu for shape %s of %s",
                          path, name, (long long)(sp->end - sp->begin), nbytes,
                          latup_shape_str(sb, sizeof sb, t->ndim, t->shape), latup_dtype_name(t->dtype));
    }
    return LATUP_OK;
}

/* Tensors sorted by begin must tile the data section exactly: from 0, no hole, no overlap, and
 * ending at the end of the file. */
static latup_status check_layout(span *sp, int n, const latup_weights *w, uint64_t data_len,
                                 const char *path) {
    qsort(sp, (size_t)n, sizeof *sp, cmp_span);
    int64_t at = 0;
    for (int k = 0; k < n; k++) {
        const char *name = w->t[sp[k].idx].name;
        if (sp[k].begin > at)
            return latup_fail(
                LATUP_E_INPUT,
                "%s: hole in the data section: bytes [%lld,%lld) belong to no tensor (next is '%s')", path,
                (long long)at, (long long)sp[k].begin, name);
        if (sp[k].begin < at)
            return latup_fail(LATUP_E_INPUT,
                              "%s: tensor '%s' (bytes [%lld,%lld)) overlaps tensor '%s' (ending at %lld)",
                              path, name, (long long)sp[k].begin, (long long)sp[k].end,
                              w->t[sp[k - 1].idx].name, (long long)at);
        at = sp[k].end;
    }
    if ((uint64_t)at > data_len)
        return latup_fail(LATUP_E_INPUT, "%s: truncated: tensors need %lld data bytes, the file has %llu",
                          path, (long long)at, (unsigned long long)data_len);
    if ((uint64_t)at < data_len)
        return latup_fail(LATUP_E_INPUT, "%s: %llu trailing bytes after the last tensor's data", path,
                          (unsigned long long)(data_len - (uint64_t)at));
    return LATUP_OK;
}

/* Each tensor is a storage of its own, its bytes where they lie in the file: nothing is copied
 * until the tensor is fetched. */
static latup_status point_storages(latup_weights *w, const span *by_idx, const uint8_t *data) {
    if (!(w->storage = latup_calloc((size_t)w->n, sizeof *w->storage, "the tensor table"))) return LATUP_E_NOMEM;
    w->n_storage = w->n;
    for (int i = 0; i < w->n; i++) {
        latup_wstorage *s = &w->storage[i];
        s->dtype = w->t[i].dtype;
        s->numel = w->t[i].numel;
        s->bytes = data + by_idx[i].begin;
        w->t[i].storage = i;
    }
    return LATUP_OK;
}

/* The header: length, JSON, every entry checked; spans[i] are tensor i's data_offsets. */
static latup_status parse_header(const uint8_t *buf, size_t len, const char *path, latup_weights *w,
                                 latup_json_doc *doc, span **spans, uint64_t *hlen_out) {
    if (len < 8)
        return latup_fail(LATUP_E_INPUT, "%s: file is %zu bytes, too short for a safetensors header", path,
                          len);
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | buf[k];
    if (hlen > ST_MAX_HEADER)
        return latup_fail(LATUP_E_INPUT,
                          "%s: header length %llu exceeds the limit of %u bytes that bounds the header's parse "
                          "tree (not a safetensors file?)",
                          path, (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen > len - 8)
        return latup_fail(LATUP_E_INPUT, "%s: header length %llu runs past the end of the file (%zu bytes)",
                          path, (unsigned long long)hlen, len);
    *hlen_out = hlen;
    const char *hdr = (const char *)buf + 8;
    if (hlen == 0 || hdr[0] != '{')
        return latup_fail(LATUP_E_INPUT, "%s: header does not start with '{' (not a safetensors file?)",
                          path);

    latup_status st = latup_json_parse(hdr, (size_t)hlen, ST_MAX_JSON_VALUES, doc);
    if (st) {
        latup_error_prefix("header");
        latup_error_prefix(path);
        return st;
    }
    const latup_json *root = doc->root; /* an object: it starts with '{' and parsed */
    const latup_json *meta = latup_json_get(root, "__metadata__");
    size_t n = root->u.kids.n - (meta ? 1 : 0);
    if (n > (size_t)INT_MAX) return latup_fail(LATUP_E_INPUT, "%s: too many tensors", path);

    w->t = latup_calloc(n, sizeof *w->t, "the tensor table");
    *spans = latup_calloc(n, sizeof **spans, "the tensor table");
    if (!w->t || !*spans) return LATUP_E_NOMEM;
    if (meta && (st = parse_metadata(meta, path, w))) return st;
    for (const latup_json *e = root->u.kids.first; e; e = e->next) {
        if (e == meta) continue;
        latup_wtensor *t = &w->t[w->n];
        (*spans)[w->n].idx = w->n;
        w->n++; /* before anything can fail, so latup_weights_free sees the name */
        if (!(t->name = dup_str(e->key))) return LATUP_E_NOMEM;
        if ((st = parse_entry(e, path, t, &(*spans)[w->n - 1]))) return st;
    }
    return LATUP_OK;
}

static latup_status parse_into(const uint8_t *buf, size_t len, const char *path, latup_weights *w,
                               latup_json_doc *doc, span **spans) {
    uint64_t hlen = 0;
    latup_status st = parse_header(buf, len, path, w, doc, spans, &hlen);
    if (st) return st;
    /* by_idx keeps each tensor's offsets in header order; the sorted copy checks the layout */
    size_t n = (size_t)w->n;
    span *sorted = latup_malloc((n ? n : 1) * sizeof *sorted, "the tensor table");
    if (!sorted) return LATUP_E_NOMEM;
    if (n) memcpy(sorted, *spans, n * sizeof *sorted);
    st = check_layout(sorted, w->n, w, len - 8 - hlen, path);
    free(sorted);
    if (st) return st;
    return point_storages(w, *spans, buf + 8 + hlen);
}

latup_status latup_safetensors_table(const uint8_t *buf, size_t len, const char *path, latup_weights *w) {
    memset(w, 0, sizeof *w);
    if (!path) path = "<buffer>";
    latup_json_doc doc = {0};
    span *spans = NULL;
    latup_status st = LATUP_OK;
    if (!(w->path = dup_str(path))) st = LATUP_E_NOMEM;
    if (!st) st = parse_into(buf, len, path, w, &doc, &spans);
    latup_json_free(&doc);
    free(spans);
    if (st) latup_weights_free(w);
    else w->format = "safetensors";
    return st;
}

latup_status latup_safetensors_parse(const uint8_t *buf, size_t len, const char *path, latup_weights *w) {
    latup_status st = latup_safetensors_table(buf, len, path, w);
    if (!st) st = latup_weights_fetch_all(w);
    if (st) latup_weights_free(w);
    return st;
}

/* ---- the format, for latup_input_open ------------------------------------------------------ */

static int st_sniff(const uint8_t *h, size_t n) { return n >= 9 && h[8] == '{'; }

/* The whole file is the header plus the data up to the last tensor's end: a stream (gzip, pipe)
 * is read that far and no further. The header gets the parser's own checks. */
static latup_status st_size(const uint8_t *h, size_t n, int at_eof, const char *path, latup_size *s) {
    (void)at_eof;
    if (n < 8) {
        s->need = 8;
        return LATUP_OK;
    }
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | h[k];
    if (hlen <= ST_MAX_HEADER && n - 8 < hlen) {
        s->need = 8 + hlen;
        return LATUP_OK;
    }
    latup_weights w;
    memset(&w, 0, sizeof w);
    latup_json_doc doc = {0};
    span *spans = NULL;
    latup_status st = parse_header(h, n, path, &w, &doc, &spans, &hlen);
    if (!st) {
        uint64_t end = 0;
        for (int i = 0; i < w.n; i++)
            if ((uint64_t)spans[i].end > end) end = (uint64_t)spans[i].end;
        s->known = 1;
        s->total = 8 + hlen + end;
    }
    latup_json_free(&doc);
    free(spans);
    latup_weights_free(&w);
    return st;
}

/* Content that does not sniff as safetensors gets the parser's message for its first bytes. */
static latup_status st_refuse(const uint8_t *h, size_t n, const char *path) {
    latup_weights w;
    memset(&w, 0, sizeof w);
    latup_json_doc doc = {0};
    span *spans = NULL;
    uint64_t hlen;
    latup_status st = parse_header(h, n, path, &w, &doc, &spans, &hlen);
    latup_json_free(&doc);
    free(spans);
    latup_weights_free(&w);
    return st;
}

const latup_file_format latup_safetensors_format = {"safetensors (8-byte length, then '{')", 9, st_sniff, st_size,
                                                    ST_MAX_FILE, st_refuse};

/* ---- writing ---------------------------------------------------------------------------------- */

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted copy of the names, so duplicates are adjacent; returns the first repeated name or NULL. */
static latup_status find_duplicate(char *const *names, int n, const char **dup) {
    *dup = NULL;
    if (n < 2) return LATUP_OK;
    const char **s = latup_malloc((size_t)n * sizeof *s, "a name check");
    if (!s) return LATUP_E_NOMEM;
    memcpy(s, names, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_str_ptr);
    for (int i = 1; i < n && !*dup; i++)
        if (strcmp(s[i - 1], s[i]) == 0) *dup = s[i];
    free(s);
    return LATUP_OK;
}

/* A table the reader would reject is a caller bug: refuse to write it. */
static latup_status check_writable(const latup_weights *w, const char *path) {
    for (int i = 0; i < w->n; i++) {
        const latup_wtensor *t = &w->t[i];
        if (!t->name || strcmp(t->name, "__metadata__") == 0)
            return latup_fail(LATUP_E_INTERNAL, "%s: tensor %d has no usable name", path, i);
        if (t->ndim < 0 || t->ndim > LATUP_WMAX_DIMS)
            return latup_fail(LATUP_E_INTERNAL, "%s: tensor '%s': rank %d out of range", path, t->name,
                              t->ndim);
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0 || !latup_mul_ok(numel, (size_t)t->shape[d], &numel) ||
                numel > (size_t)INT64_MAX / 8)
                return latup_fail(LATUP_E_INTERNAL, "%s: tensor '%s': bad shape", path, t->name);
        bool is_i64 = t->dtype == LATUP_DT_I64;
        if (numel > 0 && (is_i64 ? !t->i64 : !t->f32))
            return latup_fail(LATUP_E_INTERNAL, "%s: tensor '%s': no %s data", path, t->name,
                              is_i64 ? "i64" : "f32");
    }
    for (int i = 0; i < w->n_meta; i++)
        if (!w->meta_key[i] || !w->meta_val[i])
            return latup_fail(LATUP_E_INTERNAL, "%s: metadata entry %d is NULL", path, i);

    char **names = latup_malloc((size_t)(w->n > 0 ? w->n : 1) * sizeof *names, "a name check");
    if (!names) return LATUP_E_NOMEM;
    for (int i = 0; i < w->n; i++) names[i] = w->t[i].name;
    const char *dup = NULL, *dup_meta = NULL;
    latup_status st = find_duplicate(names, w->n, &dup);
    free(names);
    if (!st) st = find_duplicate(w->meta_key, w->n_meta, &dup_meta);
    if (st) return st;
    if (dup) return latup_fail(LATUP_E_INTERNAL, "%s: duplicate tensor name '%s'", path, dup);
    if (dup_meta) return latup_fail(LATUP_E_INTERNAL, "%s: duplicate metadata key '%s'", path, dup_meta);
    return LATUP_OK;
}

static size_t tensor_file_bytes(const latup_wtensor *t) {
    size_t numel = 1;
    for (int d = 0; d < t->ndim; d++) numel *= (size_t)t->shape[d];
    return numel * (t->dtype == LATUP_DT_I64 ? 8 : 4);
}

static latup_status build_header(const latup_weights *w, latup_json_buf *b) {
    latup_status st = latup_json_buf_add(b, "{", 1);
    bool first = true;
    if (!st && w->n_meta > 0) {
        st = latup_json_buf_add_string(b, "__metadata__");
        if (!st) st = latup_json_buf_add(b, ":{", 2);
        for (int i = 0; i < w->n_meta && !st; i++) {
            if (i) st = latup_json_buf_add(b, ",", 1);
            if (!st) st = latup_json_buf_add_string(b, w->meta_key[i]);
            if (!st) st = latup_json_buf_add(b, ":", 1);
            if (!st) st = latup_json_buf_add_string(b, w->meta_val[i]);
        }
        if (!st) st = latup_json_buf_add(b, "}", 1);
        first = false;
    }
    size_t at = 0;
    for (int i = 0; i < w->n && !st; i++) {
        const latup_wtensor *t = &w->t[i];
        size_t bytes = tensor_file_bytes(t);
        if (!first) st = latup_json_buf_add(b, ",", 1);
        first = false;
        if (!st) st = latup_json_buf_add_string(b, t->name);
        if (!st)
            st = latup_json_buf_addf(b, ":{\"dtype\":\"%s\",\"shape\":[",
                                     t->dtype == LATUP_DT_I64 ? "I64" : "F32");
        for (int d = 0; d < t->ndim && !st; d++)
            st = latup_json_buf_addf(b, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        if (!st) st = latup_json_buf_addf(b, "],\"data_offsets\":[%zu,%zu]}", at, at + bytes);
        at += bytes;
    }
    if (!st) st = latup_json_buf_add(b, "}", 1);
    /* Pad with spaces so the data section starts 8-byte aligned, as the reference writer does. */
    while (!st && b->len % 8 != 0) st = latup_json_buf_add(b, " ", 1);
    return st;
}

latup_status latup_safetensors_write(const char *path, const latup_weights *w) {
    latup_status st = check_writable(w, path);
    if (st) return st;
    latup_json_buf hdr = {0};
    if ((st = build_header(w, &hdr))) {
        latup_error_prefix(path);
        latup_json_buf_free(&hdr);
        return st;
    }
    uint8_t len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (uint8_t)((uint64_t)hdr.len >> (8 * k));
    latup_atomic_file af;
    if ((st = latup_atomic_open(&af, path))) {
        latup_json_buf_free(&hdr);
        return st;
    }
    st = latup_atomic_write(&af, len8, 8);
    if (!st) st = latup_atomic_write(&af, hdr.data, hdr.len);
    for (int i = 0; i < w->n && !st; i++) {
        const latup_wtensor *t = &w->t[i];
        size_t bytes = tensor_file_bytes(t);
        if (bytes)
            st = latup_atomic_write(
                &af, t->dtype == LATUP_DT_I64 ? (const void *)t->i64 : (const void *)t->f32, bytes);
    }
    latup_json_buf_free(&hdr);
    if (!st) return latup_atomic_commit(&af);
    latup_atomic_abort(&af);
    return st;
}
