/* weights.c — one entry point for every checkpoint format, chosen by the file's first bytes
 * (never by its extension): safetensors, PyTorch .pth (zip), either one gzip-compressed; and the
 * lazy half of the table: tensors fetched (converted to fp32, CRC-checked) on first use. */
#define _DEFAULT_SOURCE /* madvise(MADV_DONTNEED) */
#define _POSIX_C_SOURCE 200809L
#include "io/weights.h"

#include "io/half.h"
#include "io/zip.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

latup_status latup_weights_parse(const uint8_t *buf, size_t len, const char *path, latup_weights *w) {
    memset(w, 0, sizeof *w);
    if (len >= 4 && buf[0] == 'P' && buf[1] == 'K' && buf[2] == 3 && buf[3] == 4)
        return latup_pth_parse(buf, len, path, w);
    if (len >= 2 && buf[0] == 0x80 && buf[1] <= 5) /* a bare pickle: torch.save before 1.6 */
        return latup_pth_parse(buf, len, path, w);  /* names the legacy format */
    /* safetensors: u64 header length, then the JSON header's '{' */
    if (len >= 9 && buf[8] == '{') return latup_safetensors_parse(buf, len, path, w);
    if (len < 9)
        return latup_fail(LATUP_E_INPUT, "%s: %zu bytes is too short for a checkpoint (safetensors or .pth)", path, len);
    return latup_fail(LATUP_E_INPUT,
                      "%s: not a checkpoint: expected safetensors (8-byte length, then '{') or a PyTorch zip "
                      "('PK'), found bytes %02x %02x %02x %02x ... %02x",
                      path, buf[0], buf[1], buf[2], buf[3], buf[8]);
}

static latup_status open_table(const char *path, const latup_file_format *const *formats, int n, latup_weights *w) {
    memset(w, 0, sizeof *w);
    latup_input *in = latup_calloc(1, sizeof *in, "an input file");
    if (!in) return LATUP_E_NOMEM;
    latup_status st = latup_input_open(in, path, formats, n, "a checkpoint", LATUP_INPUT_MAP);
    if (st) {
        free(in);
        return st;
    }
    st = in->format == &latup_pth_format ? latup_pth_table(in->data, in->len, in->name, w)
                                         : latup_safetensors_table(in->data, in->len, in->name, w);
    if (st) {
        latup_input_close(in);
        free(in);
        return st;
    }
    w->src = in;
    return LATUP_OK;
}

latup_status latup_weights_load(const char *path, latup_weights *w) {
    const latup_file_format *const fmts[] = {&latup_safetensors_format, &latup_pth_format};
    return open_table(path, fmts, 2, w);
}

latup_status latup_safetensors_load(const char *path, latup_weights *w) {
    const latup_file_format *const fmts[] = {&latup_safetensors_format};
    latup_status st = open_table(path, fmts, 1, w);
    if (!st) st = latup_weights_fetch_all(w);
    if (st) latup_weights_free(w);
    return st;
}

/* ---- fetching ------------------------------------------------------------------------------------ */

static _Alignas(64) const uint64_t k_empty[8]; /* where empty tensors point: never read */

/* Converts storage s into fp32 / int64. With allow_view, an aligned F32 or I64 storage of a mapped
 * file is used where it lies (read-only) instead of being copied. */
static latup_status fetch_storage(latup_weights *w, latup_wstorage *s, const char *tensor, int allow_view) {
    if (s->data) return LATUP_OK;
    if (s->numel == 0) {
        s->data = (void *)(uintptr_t)k_empty;
        return LATUP_OK;
    }
    const size_t in_size = latup_dtype_size(s->dtype), out_size = s->dtype == LATUP_DT_I64 ? 8 : 4;
    const size_t numel = (size_t)s->numel;
    const uint8_t *src = s->bytes;
    uint8_t *inflated = NULL;
    if (s->zip_entry) {
        size_t n;
        latup_status st = latup_zip_extract(w->zip, s->zip_entry, (uint64_t)numel * in_size, &src, &n, &inflated);
        if (st) return st;
    }
    if (!src)
        return latup_fail(LATUP_E_INTERNAL, "%s: tensor '%s' was not loaded before its file was released", w->path,
                          tensor);
    const int mapped = w->src && w->src->mapped && !inflated;
    if (allow_view && mapped && in_size == out_size && (uintptr_t)src % out_size == 0) {
        s->data = (void *)(uintptr_t)src;
        return LATUP_OK;
    }
    void *out = latup_alloc_floats(numel * (out_size / 4), tensor);
    if (!out) {
        free(inflated);
        return LATUP_E_NOMEM;
    }
    /* The file gives no alignment guarantee: bytes are moved with memcpy, never read through a
     * cast pointer. */
    if (s->dtype == LATUP_DT_F16 || s->dtype == LATUP_DT_BF16) {
        float *f = out;
        for (size_t e = 0; e < numel; e++) {
            uint16_t h = (uint16_t)(src[2 * e] | (src[2 * e + 1] << 8));
            f[e] = s->dtype == LATUP_DT_F16 ? latup_half_to_float(h) : latup_bf16_to_float(h);
        }
    } else {
        memcpy(out, src, numel * out_size);
    }
    if (mapped) { /* the copy is what stays: let the kernel drop the file's pages again */
        const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t a = ((uintptr_t)src + page - 1) & ~(page - 1), b = ((uintptr_t)src + numel * in_size) & ~(page - 1);
        if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
    }
    free(inflated);
    s->data = out;
    s->owned = 1;
    return LATUP_OK;
}

static latup_status fetch(latup_weights *w, latup_wtensor *t, int allow_view) {
    if (t->f32 || t->i64) return LATUP_OK;
    if (t->storage < 0 || t->storage >= w->n_storage)
        return latup_fail(LATUP_E_INTERNAL, "%s: tensor '%s' has no data", w->path, t->name);
    latup_wstorage *s = &w->storage[t->storage];
    latup_status st = fetch_storage(w, s, t->name, allow_view);
    if (st) return st;
    const size_t off = t->numel ? (size_t)t->offset : 0;
    if (t->dtype == LATUP_DT_I64)
        t->i64 = (int64_t *)s->data + off;
    else
        t->f32 = (float *)s->data + off;
    return LATUP_OK;
}

latup_status latup_weights_fetch(latup_weights *w, latup_wtensor *t) { return fetch(w, t, 1); }

latup_status latup_weights_fetch_all(latup_weights *w) {
    for (int i = 0; i < w->n; i++) TRY(fetch(w, &w->t[i], 0));
    return LATUP_OK;
}

static void drop_source(latup_weights *w) {
    for (int i = 0; i < w->n_storage; i++) w->storage[i].bytes = NULL, w->storage[i].zip_entry = NULL;
    if (w->zip) {
        latup_zip_close(w->zip);
        free(w->zip);
        w->zip = NULL;
    }
    if (w->src) {
        latup_input_close(w->src);
        free(w->src);
        w->src = NULL;
    }
}

size_t latup_weights_resident_bytes(const latup_weights *w) {
    size_t n = 0;
    for (int i = 0; i < w->n_storage; i++) {
        const latup_wstorage *s = &w->storage[i];
        if (s->data && s->numel > 0) n += (size_t)s->numel * (s->dtype == LATUP_DT_I64 ? 8 : 4);
    }
    return n;
}

void latup_weights_release_source(latup_weights *w) {
    for (int i = 0; i < w->n_storage; i++)
        if (w->storage[i].data && !w->storage[i].owned && w->storage[i].numel) return; /* a view into the map */
    drop_source(w);
}

void latup_weights_free(latup_weights *w) {
    if (!w) return;
    if (w->t)
        for (int i = 0; i < w->n; i++) free(w->t[i].name);
    for (int i = 0; i < w->n_meta; i++) {
        if (w->meta_key) free(w->meta_key[i]);
        if (w->meta_val) free(w->meta_val[i]);
    }
    for (int i = 0; i < w->n_storage; i++)
        if (w->storage[i].owned) free(w->storage[i].data);
    drop_source(w);
    free(w->storage);
    free(w->t);
    free(w->meta_key);
    free(w->meta_val);
    free(w->blob);
    free(w->path);
    free(w->wrapper);
    memset(w, 0, sizeof *w);
}
