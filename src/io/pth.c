/* pth.c — PyTorch .pth checkpoints (torch.save zip format) into the latup_weights table: finds
 * <root>/data.pkl, runs the restricted unpickler on it, picks the state dict out of its wrapper,
 * flattens nested dicts to "a.b.c" names, and copies each tensor's bytes from <root>/data/<key>
 * (widening F16/BF16 to fp32). Storages shared by several tensors are converted once. */
#define _POSIX_C_SOURCE 200809L
#include "io/checkpoint.h"

#include "io/pickle.h"
#include "io/weights.h"
#include "io/zip.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "latup reads little-endian tensor data and needs a little-endian host"
#endif

#define PTH_MAX_PICKLE ((uint64_t)64 << 20) /* data.pkl: real ones are ~100 bytes per tensor */
#define PTH_MAX_DATA ((uint64_t)64 << 30)   /* all storages together, as stored (as for safetensors) */
#define PTH_MAX_FILE ((uint64_t)65 << 30)   /* the whole archive: the storages and some room */
#define PTH_MAX_DEPTH 64                    /* nested dicts inside the state dict */
#define PTH_MAX_NAME 4096                   /* bytes in a flattened tensor name */
/* Dict entries visited while flattening: bounds the work a pickle that reuses one dict many times
 * through the memo (a DAG that unfolds exponentially) can cause. */
#define PTH_MAX_VISITS ((size_t)1 << 20)
#define PTH_MAX_NAME_BYTES ((size_t)64 << 20) /* all flattened tensor names together */

/* torch.save(..., _use_new_zipfile_serialization=False) starts with PROTO 2 and LONG1 of the
 * magic number 0x1950a86a20f9469cfc6c. */
static const uint8_t k_legacy_magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c,
                                         0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

/* Wrapper keys, in order of preference: BasicSR/SwinIR keep the EMA weights under params_ema. */
static const char *const k_wrappers[] = {"params_ema", "params", "state_dict"};

typedef struct {
    char *name;
    const latup_pk_tensor *t;
    size_t storage; /* index into ctx.storages, set once storages are grouped */
} found_tensor;

typedef struct {
    const latup_pk *pk; /* one of the storage values with this key */
    const latup_zip_entry *entry;
} pth_storage;

typedef struct {
    const char *path;
    const latup_zip *zip;
    char *root; /* the archive's top folder, NUL-terminated copy */
    found_tensor *tensors;
    size_t n_tensors, cap_tensors;
    pth_storage *storages;
    size_t n_storages;
    size_t visits, name_bytes;
    char name[PTH_MAX_NAME + 1]; /* the flattened name being built */
} pth_ctx;

/* ---- locating data.pkl ------------------------------------------------------------------------- */

static bool ends_with(const latup_zip_entry *e, const char *suffix) {
    size_t n = strlen(suffix);
    return e->name_len >= n && memcmp(e->name + e->name_len - n, suffix, n) == 0;
}

/* The single entry named "<root>/data.pkl" (root without '/'); *root gets a copy of <root>. */
static latup_status find_data_pkl(const latup_zip *z, const char *path, const latup_zip_entry **pkl,
                                  char **root) {
    *pkl = NULL;
    for (size_t i = 0; i < z->n; i++) {
        const latup_zip_entry *e = &z->e[i];
        if (!ends_with(e, "/data.pkl")) continue;
        size_t rl = e->name_len - 9;
        if (rl == 0 || memchr(e->name, '/', rl) || memchr(e->name, '\0', rl)) continue;
        if (*pkl)
            return latup_fail(LATUP_E_INPUT,
                              "%s: several data.pkl entries ('%.*s', '%.*s'): ambiguous checkpoint", path,
                              (int)(*pkl)->name_len, (*pkl)->name, (int)e->name_len, e->name);
        *pkl = e;
    }
    if (!*pkl)
        return latup_fail(LATUP_E_INPUT,
                          "%s: zip archive without a <root>/data.pkl entry: not a PyTorch checkpoint", path);
    size_t rl = (*pkl)->name_len - 9;
    if (!(*root = latup_malloc(rl + 1, "the archive root name"))) return LATUP_E_NOMEM;
    memcpy(*root, (*pkl)->name, rl);
    (*root)[rl] = '\0';
    return LATUP_OK;
}

/* "<root>/<rest>" looked up in the archive. */
static const latup_zip_entry *find_in_root(const pth_ctx *c, const char *rest, size_t rest_len) {
    size_t rl = strlen(c->root);
    char stack_buf[512];
    char *name = rl + 1 + rest_len < sizeof stack_buf ? stack_buf : malloc(rl + rest_len + 2);
    if (!name) return NULL;
    memcpy(name, c->root, rl);
    name[rl] = '/';
    memcpy(name + rl + 1, rest, rest_len);
    name[rl + 1 + rest_len] = '\0';
    const latup_zip_entry *e = latup_zip_find(c->zip, name);
    if (name != stack_buf) free(name);
    return e;
}

/* <root>/byteorder, written by torch >= 1.10, must say "little" when present. */
static latup_status check_byteorder(const pth_ctx *c) {
    const latup_zip_entry *e = find_in_root(c, "byteorder", 9);
    if (!e) return LATUP_OK;
    const uint8_t *d;
    size_t n;
    uint8_t *owned;
    latup_status st = latup_zip_extract(c->zip, e, 64, &d, &n, &owned);
    if (st) return st;
    bool little = n == 6 && memcmp(d, "little", 6) == 0;
    if (!little) {
        char shown[65];
        size_t k = 0;
        for (; k < n && k < 64; k++) shown[k] = (d[k] >= 32 && d[k] < 127) ? (char)d[k] : '?';
        shown[k] = '\0';
        st = latup_fail(LATUP_E_INPUT,
                        "%s: checkpoint byte order is '%s': only little-endian ('little') is supported",
                        c->path, shown);
    }
    free(owned);
    return st;
}

/* ---- flattening the state dict ---------------------------------------------------------------- */

static latup_status add_tensor(pth_ctx *c, const latup_pk_tensor *t) {
    if (c->n_tensors == c->cap_tensors) {
        size_t want = c->cap_tensors ? c->cap_tensors * 2 : 64;
        found_tensor *p = realloc(c->tensors, want * sizeof *p);
        if (!p) return latup_fail(LATUP_E_NOMEM, "%s: out of memory listing tensors", c->path);
        c->tensors = p;
        c->cap_tensors = want;
    }
    size_t n = strlen(c->name) + 1;
    if ((c->name_bytes += n) > PTH_MAX_NAME_BYTES)
        return latup_fail(LATUP_E_INPUT,
                          "%s: tensor names exceed %zu bytes in all, the cap on the name table (shared dicts?)",
                          c->path, PTH_MAX_NAME_BYTES);
    char *name = latup_malloc(n, "a tensor name");
    if (!name) return LATUP_E_NOMEM;
    memcpy(name, c->name, n);
    c->tensors[c->n_tensors++] = (found_tensor){name, t, 0};
    return LATUP_OK;
}

/* Walks dict `d` whose flattened name so far is c->name[0..plen). Nested dicts become "a.b";
 * tensors are collected; other leaves (step counts, strings, None, lists) are skipped. */
static latup_status flatten(pth_ctx *c, const latup_pk *d, size_t plen, int depth) {
    if (depth > PTH_MAX_DEPTH)
        return latup_fail(LATUP_E_INPUT, "%s: state dict nests deeper than %d dicts, the limit on nesting (at '%s')",
                          c->path, PTH_MAX_DEPTH, c->name);
    for (size_t i = 0; i < d->u.dict.n; i++) {
        const latup_pk *k = d->u.dict.k[i], *v = d->u.dict.v[i];
        c->name[plen] = '\0';
        if (++c->visits > PTH_MAX_VISITS)
            return latup_fail(LATUP_E_INPUT,
                              "%s: state dict has more than %zu entries, the cap on the work of flattening it "
                              "(shared dicts?)",
                              c->path, PTH_MAX_VISITS);
        if (k->kind != LATUP_PK_STR || strlen(k->u.str.s) != k->u.str.len)
            return latup_fail(LATUP_E_INPUT, "%s: state dict key %zu under '%s' is %s, expected a string",
                              c->path, i, plen ? c->name : "<top>",
                              k->kind == LATUP_PK_STR ? "a str with a NUL byte"
                                                      : latup_pk_kind_name(k->kind));
        if (v->kind != LATUP_PK_DICT && v->kind != LATUP_PK_TENSOR) continue;
        size_t need = plen + (plen ? 1 : 0) + k->u.str.len;
        if (need > PTH_MAX_NAME)
            return latup_fail(LATUP_E_INPUT, "%s: tensor name '%s%s%s' is longer than %d bytes, the most a tensor name may have",
                              c->path, c->name, plen ? "." : "", k->u.str.s, PTH_MAX_NAME);
        size_t at = plen;
        if (plen) c->name[at++] = '.';
        memcpy(c->name + at, k->u.str.s, k->u.str.len);
        c->name[need] = '\0';
        latup_status st =
            v->kind == LATUP_PK_DICT ? flatten(c, v, need, depth + 1) : add_tensor(c, v->u.tensor);
        if (st) return st;
    }
    c->name[plen] = '\0';
    return LATUP_OK;
}

/* The state dict inside the top-level object, and the wrapper key it was found under. */
static latup_status select_state_dict(const latup_pk *root, const char *path, const latup_pk **sd,
                                      const char **wrapper) {
    *sd = NULL;
    *wrapper = NULL;
    if (root->kind != LATUP_PK_DICT)
        return latup_fail(LATUP_E_INPUT, "%s: the checkpoint holds %s, expected a dict (a state dict)", path,
                          latup_pk_kind_name(root->kind));
    for (size_t k = 0; k < sizeof k_wrappers / sizeof k_wrappers[0]; k++) {
        const latup_pk *v = latup_pk_dict_get(root, k_wrappers[k]);
        if (v && v->kind == LATUP_PK_DICT) {
            *sd = v;
            *wrapper = k_wrappers[k];
            return LATUP_OK;
        }
    }
    *sd = root;
    return LATUP_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static latup_status check_duplicates(const pth_ctx *c) {
    if (c->n_tensors < 2) return LATUP_OK;
    const char **s = latup_malloc(c->n_tensors * sizeof *s, "a name check");
    if (!s) return LATUP_E_NOMEM;
    for (size_t i = 0; i < c->n_tensors; i++) s[i] = c->tensors[i].name;
    qsort(s, c->n_tensors, sizeof *s, cmp_str);
    latup_status st = LATUP_OK;
    for (size_t i = 1; i < c->n_tensors && !st; i++)
        if (strcmp(s[i - 1], s[i]) == 0)
            st = latup_fail(LATUP_E_INPUT, "%s: duplicate tensor name '%s' after flattening nested dicts",
                            c->path, s[i]);
    free(s);
    return st;
}

/* ---- storages ---------------------------------------------------------------------------------- */

static const latup_pk *storage_of(const found_tensor *f) { return f->t->storage; }

static int cmp_key(const latup_pk *a, const latup_pk *b) {
    size_t n = a->u.storage.key_len < b->u.storage.key_len ? a->u.storage.key_len : b->u.storage.key_len;
    int r = memcmp(a->u.storage.key, b->u.storage.key, n);
    if (r) return r;
    return a->u.storage.key_len < b->u.storage.key_len ? -1 : a->u.storage.key_len > b->u.storage.key_len;
}

static int cmp_found_by_key(const void *x, const void *y) {
    const found_tensor *a = *(const found_tensor *const *)x, *b = *(const found_tensor *const *)y;
    int r = cmp_key(storage_of(a), storage_of(b));
    if (r) return r;
    return a < b ? -1 : a > b; /* stable: first tensor of a group reports errors */
}

/* One storage, first met through tensor f: its archive entry exists and holds exactly numel
 * elements of its type. */
static latup_status resolve_storage(pth_ctx *c, const found_tensor *f, pth_storage *s) {
    const latup_pk *pk = storage_of(f);
    const latup_pk_global *type = pk->u.storage.type;
    const char *key = pk->u.storage.key;
    if (type->dtype < 0)
        return latup_fail(LATUP_E_INPUT,
                          "%s: tensor '%s' has unsupported dtype (torch.%s): latup reads float32, "
                          "float16, bfloat16 and int64",
                          c->path, f->name, type->name);
    if (strlen(key) != pk->u.storage.key_len)
        return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': storage key contains a NUL byte", c->path,
                          f->name);
    size_t kl = pk->u.storage.key_len;
    char *rest = latup_malloc(kl + 6, "a storage name");
    if (!rest) return LATUP_E_NOMEM;
    memcpy(rest, "data/", 5);
    memcpy(rest + 5, key, kl + 1);
    s->entry = find_in_root(c, rest, kl + 5);
    free(rest);
    if (!s->entry)
        return latup_fail(
            LATUP_E_INPUT,
            "%s: tensor '%s': storage '%s' (%s/data/%s) is missing from the archive", c->path,
            f->name, key, c->root, key);
    s->pk = pk;
    size_t numel = (size_t)pk->u.storage.numel, bytes;
    if (!latup_mul_ok(numel, type->elsize, &bytes) || bytes != s->entry->usize)
        return latup_fail(LATUP_E_INPUT,
                          "%s: tensor '%s': storage '%s' declares %lld elements of torch.%s (%zu "
                          "bytes each) but its archive entry holds %llu bytes",
                          c->path, f->name, key, (long long)pk->u.storage.numel, type->name, type->elsize,
                          (unsigned long long)s->entry->usize);
    return LATUP_OK;
}

/* Groups tensors by storage key (several tensors may be views of one storage) and resolves each
 * storage once. */
static latup_status group_storages(pth_ctx *c) {
    if (c->n_tensors == 0) return LATUP_OK;
    found_tensor **by_key = latup_malloc(c->n_tensors * sizeof *by_key, "the storage table");
    c->storages = latup_calloc(c->n_tensors, sizeof *c->storages, "the storage table");
    if (!by_key || !c->storages) {
        free(by_key);
        return LATUP_E_NOMEM;
    }
    for (size_t i = 0; i < c->n_tensors; i++) by_key[i] = &c->tensors[i];
    qsort(by_key, c->n_tensors, sizeof *by_key, cmp_found_by_key);
    latup_status st = LATUP_OK;
    uint64_t total_stored = 0, total_usize = 0;
    for (size_t i = 0; i < c->n_tensors && !st; i++) {
        const latup_pk *pk = storage_of(by_key[i]);
        if (i > 0 && cmp_key(storage_of(by_key[i - 1]), pk) == 0) {
            const pth_storage *s = &c->storages[c->n_storages - 1];
            if (pk->u.storage.type != s->pk->u.storage.type || pk->u.storage.numel != s->pk->u.storage.numel)
                st = latup_fail(
                    LATUP_E_INPUT,
                    "%s: tensor '%s': storage '%s' is declared again with a different type or size",
                    c->path, by_key[i]->name, pk->u.storage.key);
            by_key[i]->storage = c->n_storages - 1;
            continue;
        }
        pth_storage *s = &c->storages[c->n_storages];
        if ((st = resolve_storage(c, by_key[i], s))) break;
        by_key[i]->storage = c->n_storages++;
        /* Entries of a genuine archive are disjoint, so their compressed sizes add up to less than
         * the file; crafted overlapping entries would multiply the memory we allocate. */
        total_stored += s->entry->csize;
        total_usize += s->entry->usize;
        if (total_stored > c->zip->len)
            st = latup_fail(LATUP_E_INPUT,
                            "%s: storage entries overlap (together %llu bytes in a %zu-byte file)", c->path,
                            (unsigned long long)total_stored, c->zip->len);
        else if (total_usize > PTH_MAX_DATA)
            st = latup_fail(LATUP_E_INPUT, "%s: tensor data exceeds the limit of %llu bytes", c->path,
                            (unsigned long long)PTH_MAX_DATA);
    }
    free(by_key);
    return st;
}

/* ---- tensors ----------------------------------------------------------------------------------- */

/* Shape, element count, contiguity and extent of one tensor against its storage, into *t. */
static latup_status check_tensor(const pth_ctx *c, const found_tensor *f, latup_wtensor *t) {
    const latup_pk_tensor *pt = f->t;
    const latup_pk *spk = c->storages[f->storage].pk;
    char sb[256], tb[256];
    t->dtype = (latup_dtype)spk->u.storage.type->dtype;
    t->ndim = pt->ndim;
    size_t numel = 1;
    for (int d = 0; d < pt->ndim; d++) {
        t->shape[d] = pt->size[d];
        if (pt->size[d] < 0)
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s' has a negative size %lld in dimension %d",
                              c->path, f->name, (long long)pt->size[d], d);
    }
    /* As torch (and the safetensors reader): a zero dimension makes the count 0 whatever follows. */
    bool empty = false;
    for (int d = 0; d < pt->ndim; d++) empty |= pt->size[d] == 0;
    for (int d = 0; d < pt->ndim && !empty; d++)
        if (!latup_mul_ok(numel, (size_t)pt->size[d], &numel) || numel > (size_t)INT64_MAX / 8)
            return latup_fail(LATUP_E_INPUT, "%s: tensor '%s': element count of shape %s overflows",
                              c->path, f->name, latup_shape_str(sb, sizeof sb, pt->ndim, pt->size));
    if (empty) numel = 0;
    t->numel = (int64_t)numel;
    if (numel == 0) return LATUP_OK; /* no bytes: any offset and strides describe it */

    /* Row-major contiguity; a size-1 dimension's stride is never used, torch may leave any value. */
    int64_t expect = 1;
    for (int d = pt->ndim - 1; d >= 0; d--) {
        if (pt->size[d] != 1 && pt->stride[d] != expect)
            return latup_fail(LATUP_E_INPUT,
                              "%s: tensor '%s' is a non-contiguous view (shape %s, strides %s): re-save "
                              "it with .contiguous()",
                              c->path, f->name, latup_shape_str(sb, sizeof sb, pt->ndim, pt->size),
                              latup_shape_str(tb, sizeof tb, pt->ndim, pt->stride));
        expect *= pt->size[d];
    }
    int64_t snumel = spk->u.storage.numel;
    if (pt->offset < 0 || pt->offset > snumel || (int64_t)numel > snumel - pt->offset)
        return latup_fail(LATUP_E_INPUT,
                          "%s: tensor '%s': %zu elements at offset %lld lie outside its storage '%s' "
                          "of %lld elements",
                          c->path, f->name, numel, (long long)pt->offset, spk->u.storage.key,
                          (long long)snumel);
    return LATUP_OK;
}

/* The table: every tensor checked against its storage; the storages point at their archive
 * entries, which are read (CRC-checked, inflated) only when a tensor is fetched. */
static latup_status build_table(pth_ctx *c, latup_weights *w) {
    if (c->n_tensors > (size_t)INT_MAX) return latup_fail(LATUP_E_INPUT, "%s: too many tensors", c->path);
    w->t = latup_calloc(c->n_tensors, sizeof *w->t, "the tensor table");
    w->storage = latup_calloc(c->n_storages, sizeof *w->storage, "the tensor table");
    if (!w->t || !w->storage) return LATUP_E_NOMEM;
    w->n_storage = (int)c->n_storages;
    for (size_t i = 0; i < c->n_storages; i++) {
        const latup_pk *pk = c->storages[i].pk;
        w->storage[i].dtype = (latup_dtype)pk->u.storage.type->dtype;
        w->storage[i].numel = pk->u.storage.numel;
        w->storage[i].zip_entry = c->storages[i].entry;
    }
    latup_status st;
    for (size_t i = 0; i < c->n_tensors; i++) {
        latup_wtensor *t = &w->t[w->n++];
        if ((st = check_tensor(c, &c->tensors[i], t))) return st;
        t->name = c->tensors[i].name; /* ownership moves to w */
        c->tensors[i].name = NULL;
        t->storage = (int)c->tensors[i].storage;
        t->offset = t->numel ? c->tensors[i].t->offset : 0;
    }
    return LATUP_OK;
}

/* ---- entry point ------------------------------------------------------------------------------- */

/* A legacy (pre-1.6) or bare pickle stream, named as such; LATUP_OK for anything else. */
static latup_status check_not_pickle(const uint8_t *buf, size_t len, const char *path) {
    if (len >= sizeof k_legacy_magic && memcmp(buf, k_legacy_magic, sizeof k_legacy_magic) == 0)
        return latup_fail(LATUP_E_INPUT,
                          "%s: legacy PyTorch (<1.6) format: re-save with torch.save(..., "
                          "_use_new_zipfile_serialization=True)",
                          path);
    if (len >= 1 && buf[0] == 0x80)
        return latup_fail(LATUP_E_INPUT, "%s: a bare pickle stream, not a PyTorch zip checkpoint", path);
    return LATUP_OK;
}

static latup_status parse_into(const uint8_t *buf, size_t len, const char *path, latup_weights *w, pth_ctx *c,
                               latup_zip *z, latup_pickle *doc) {
    latup_status st = check_not_pickle(buf, len, path);
    if (st) return st;
    if ((st = latup_zip_open(z, buf, len, path))) return st;
    c->zip = z;
    const latup_zip_entry *pkl;
    char *root = NULL;
    if ((st = find_data_pkl(z, path, &pkl, &root))) return st;
    c->root = root;
    if (find_in_root(c, "constants.pkl", 13))
        return latup_fail(LATUP_E_INPUT, "%s: a TorchScript archive (torch.jit.save), not a state dict",
                          path);
    if ((st = check_byteorder(c))) return st;

    const uint8_t *pdata;
    size_t plen;
    uint8_t *powned;
    if (pkl->usize > PTH_MAX_PICKLE)
        return latup_fail(LATUP_E_INPUT,
                          "%s: data.pkl is %llu bytes, over the %llu-byte limit on the pickle a state dict is "
                          "rebuilt from (about 100 bytes per tensor)",
                          path, (unsigned long long)pkl->usize, (unsigned long long)PTH_MAX_PICKLE);
    if ((st = latup_zip_extract(z, pkl, PTH_MAX_PICKLE, &pdata, &plen, &powned))) return st;
    char what[512];
    latup_format(what, sizeof what, "%s: %s/data.pkl", path, root);
    st = latup_pickle_load(pdata, plen, what, doc);
    free(powned);
    if (st) return st;

    const latup_pk *sd;
    const char *wrapper;
    if ((st = select_state_dict(doc->root, path, &sd, &wrapper))) return st;
    if (wrapper) {
        size_t n = strlen(wrapper) + 1;
        if (!(w->wrapper = latup_malloc(n, "the wrapper name"))) return LATUP_E_NOMEM;
        memcpy(w->wrapper, wrapper, n);
    }
    c->name[0] = '\0';
    if ((st = flatten(c, sd, 0, 1))) return st;
    if ((st = check_duplicates(c))) return st;
    if ((st = group_storages(c))) return st;
    return build_table(c, w);
}

latup_status latup_pth_table(const uint8_t *buf, size_t len, const char *path, latup_weights *w) {
    memset(w, 0, sizeof *w);
    if (!path) path = "<buffer>";
    latup_status st = LATUP_OK;
    size_t pl = strlen(path) + 1;
    if (!(w->path = latup_malloc(pl, "the file name"))) return LATUP_E_NOMEM;
    memcpy(w->path, path, pl);
    w->format = "pytorch zip";

    pth_ctx *c = latup_calloc(1, sizeof *c, "the .pth reader"); /* ~4 KB name buffer: off the stack */
    latup_zip *z = latup_calloc(1, sizeof *z, "the .pth reader");
    if (!c || !z) st = LATUP_E_NOMEM;
    latup_pickle doc = {0};
    if (!st) {
        c->path = path;
        st = parse_into(buf, len, path, w, c, z, &doc);
        for (size_t i = 0; i < c->n_tensors; i++) free(c->tensors[i].name);
        free(c->tensors);
        free(c->storages);
        free(c->root);
    }
    free(c);
    latup_pickle_free(&doc);
    w->zip = z; /* the storages' entries live in it; freed with w */
    if (st) latup_weights_free(w);
    return st;
}

latup_status latup_pth_parse(const uint8_t *buf, size_t len, const char *path, latup_weights *w) {
    latup_status st = latup_pth_table(buf, len, path, w);
    if (!st) st = latup_weights_fetch_all(w);
    if (st)
        latup_weights_free(w);
    else
        latup_weights_release_source(w); /* nothing may point into the caller's buffer */
    return st;
}

/* ---- the format, for latup_input_open ------------------------------------------------------ */

/* A zip, or a pickle stream (refused by the sizer with the parser's message). */
static int pth_sniff(const uint8_t *h, size_t n) {
    return (n >= 4 && h[0] == 'P' && h[1] == 'K' && h[2] == 3 && h[3] == 4) || (n >= 2 && h[0] == 0x80 && h[1] <= 5);
}

static latup_status pth_size(const uint8_t *h, size_t n, int at_eof, const char *path, latup_size *s) {
    (void)at_eof;
    latup_status st = check_not_pickle(h, n, path);
    if (st) return st;
    latup_zip_stream_size(h, n, s);
    return LATUP_OK;
}

const latup_file_format latup_pth_format = {"a PyTorch zip ('PK')", 4, pth_sniff, pth_size, PTH_MAX_FILE, NULL};
