/* pickle.c — the restricted unpickler behind the .pth reader: a stack machine over protocol 2-5
 * data opcodes, with globals resolved against a fixed whitelist and REDUCE interpreted in C for
 * those few callables only. It never recurses (values are freed from one list), so nesting in the
 * file cannot exhaust the C stack; sizes and counts are capped in pickle.h. */
#include "io/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The only globals a state-dict pickle needs. Anything else, os.system as much as numpy scalars,
 * is refused when the GLOBAL opcode names it, before it could be used. */
static const latup_pk_global k_globals[] = {
    {"collections", "OrderedDict", LATUP_PKG_ORDERED_DICT, -1, 0},
    {"torch._utils", "_rebuild_tensor_v2", LATUP_PKG_REBUILD_TENSOR, -1, 0},
    {"torch._utils", "_rebuild_tensor", LATUP_PKG_REBUILD_TENSOR, -1, 0},
    {"torch._utils", "_rebuild_parameter", LATUP_PKG_REBUILD_PARAMETER, -1, 0},
    {"torch._utils", "_rebuild_parameter_with_state", LATUP_PKG_REBUILD_PARAMETER, -1, 0},
    {"torch", "FloatStorage", LATUP_PKG_STORAGE_TYPE, LATUP_DT_F32, 4},
    {"torch", "HalfStorage", LATUP_PKG_STORAGE_TYPE, LATUP_DT_F16, 2},
    {"torch", "BFloat16Storage", LATUP_PKG_STORAGE_TYPE, LATUP_DT_BF16, 2},
    {"torch", "LongStorage", LATUP_PKG_STORAGE_TYPE, LATUP_DT_I64, 8},
    /* Known storage classes of dtypes latup does not read: accepted here so that a tensor using
     * one fails with "unsupported dtype" naming it, rather than as a refused global. */
    {"torch", "DoubleStorage", LATUP_PKG_STORAGE_TYPE, -1, 8},
    {"torch", "IntStorage", LATUP_PKG_STORAGE_TYPE, -1, 4},
    {"torch", "ShortStorage", LATUP_PKG_STORAGE_TYPE, -1, 2},
    {"torch", "CharStorage", LATUP_PKG_STORAGE_TYPE, -1, 1},
    {"torch", "ByteStorage", LATUP_PKG_STORAGE_TYPE, -1, 1},
    {"torch", "BoolStorage", LATUP_PKG_STORAGE_TYPE, -1, 1},
    /* Protocol 2 has no bytes opcode: a bytes value b"..." is written as
     * _codecs.encode("...", "latin1"). Pure data, interpreted here as an opaque bytes leaf. */
    {"_codecs", "encode", LATUP_PKG_CODECS_ENCODE, -1, 0},
};

/* Opcodes, named as in CPython's pickle.py. */
/* clang-format off */
enum {
    OP_MARK = '(', OP_STOP = '.', OP_POP = '0', OP_POP_MARK = '1', OP_DUP = '2', OP_BINFLOAT = 'G',
    OP_BININT = 'J', OP_BININT1 = 'K', OP_BININT2 = 'M', OP_NONE = 'N', OP_BINPERSID = 'Q',
    OP_REDUCE = 'R', OP_BINUNICODE = 'X', OP_BINBYTES = 'B', OP_SHORT_BINBYTES = 'C', OP_APPEND = 'a',
    OP_BUILD = 'b', OP_GLOBAL = 'c', OP_APPENDS = 'e', OP_BINGET = 'h', OP_LONG_BINGET = 'j',
    OP_EMPTY_LIST = ']', OP_BINPUT = 'q', OP_LONG_BINPUT = 'r', OP_SETITEM = 's', OP_TUPLE = 't',
    OP_EMPTY_TUPLE = ')', OP_SETITEMS = 'u', OP_EMPTY_DICT = '}', OP_PROTO = 0x80, OP_TUPLE1 = 0x85,
    OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87, OP_NEWTRUE = 0x88, OP_NEWFALSE = 0x89, OP_LONG1 = 0x8a,
    OP_LONG4 = 0x8b, OP_SHORT_BINUNICODE = 0x8c, OP_BINUNICODE8 = 0x8d, OP_BINBYTES8 = 0x8e,
    OP_STACK_GLOBAL = 0x93, OP_MEMOIZE = 0x94, OP_FRAME = 0x95,
};
/* clang-format on */

#define MAX_GLOBAL_LINE 256 /* module or name of a GLOBAL: real ones are ~30 bytes */

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    size_t op_pos; /* offset of the opcode being run, for messages */
    const char *what;
    latup_pickle *doc;
    latup_pk **stack;
    size_t sp, stack_cap;
    size_t marks[LATUP_PK_MAX_MARKS];
    int n_marks;
    latup_pk **memo; /* sparse: NULL where nothing was stored */
    size_t memo_cap, memo_count;
    size_t n_items;
    size_t budget; /* bytes the machine may allocate in all */
} vm;

/* Every message names the stream (`what`, shown-safe already) and, through vfail, the offset of
 * the opcode that failed. */
static latup_status wfail(const vm *m, const char *fmt, ...) LATUP_PRINTF(2, 3);
static latup_status wfail(const vm *m, const char *fmt, ...) {
    char pre[LATUP_ERR_MAX / 2];
    snprintf(pre, sizeof pre, "%s: ", m->what);
    va_list ap;
    va_start(ap, fmt);
    latup_status st = latup_vfail(LATUP_E_INPUT, pre, fmt, ap);
    va_end(ap);
    return st;
}

static latup_status vfail(const vm *m, const char *fmt, ...) LATUP_PRINTF(2, 3);
static latup_status vfail(const vm *m, const char *fmt, ...) {
    char pre[LATUP_ERR_MAX / 2];
    snprintf(pre, sizeof pre, "%s: offset %zu: ", m->what, m->op_pos);
    va_list ap;
    va_start(ap, fmt);
    latup_status st = latup_vfail(LATUP_E_INPUT, pre, fmt, ap);
    va_end(ap);
    return st;
}

/* Every allocation the machine makes is charged here first, so that no mix of opcodes (a string
 * copied hundreds of times through the memo, containers grown to their caps) can make a small
 * file claim gigabytes. */
static latup_status charge(vm *m, size_t bytes) {
    if (bytes > m->budget - m->doc->bytes)
        return vfail(m, "the pickle needs more than %zu bytes of memory, the budget that keeps a small file from "
                        "claiming gigabytes (a state dict's pickle needs a few MB)",
                     m->budget);
    m->doc->bytes += bytes;
    return LATUP_OK;
}

const char *latup_pk_kind_name(latup_pk_kind k) {
    switch (k) {
    case LATUP_PK_NONE: return "None";
    case LATUP_PK_BOOL: return "a bool";
    case LATUP_PK_INT: return "an int";
    case LATUP_PK_BIGINT: return "a big int";
    case LATUP_PK_FLOAT: return "a float";
    case LATUP_PK_STR: return "a str";
    case LATUP_PK_BYTES: return "bytes";
    case LATUP_PK_TUPLE: return "a tuple";
    case LATUP_PK_LIST: return "a list";
    case LATUP_PK_DICT: return "a dict";
    case LATUP_PK_GLOBAL: return "a global";
    case LATUP_PK_STORAGE: return "a storage";
    case LATUP_PK_TENSOR: return "a tensor";
    }
    return "?";
}

/* ---- values ------------------------------------------------------------------------------------ */

static latup_status new_value(vm *m, latup_pk_kind kind, latup_pk **out) {
    if (m->doc->n_values >= LATUP_PK_MAX_VALUES)
        return vfail(m, "more than %zu objects in the pickle, the cap on what one state dict may build",
                     LATUP_PK_MAX_VALUES);
    TRY(charge(m, sizeof(latup_pk)));
    latup_pk *v = latup_calloc(1, sizeof *v, "a pickle value");
    if (!v) return LATUP_E_NOMEM;
    v->kind = kind;
    v->next_alloc = m->doc->all;
    m->doc->all = v;
    m->doc->n_values++;
    *out = v;
    return LATUP_OK;
}

static void free_value(latup_pk *v) {
    switch (v->kind) {
    case LATUP_PK_STR:
    case LATUP_PK_BYTES: free(v->u.str.s); break;
    case LATUP_PK_TUPLE:
    case LATUP_PK_LIST: free(v->u.seq.v); break;
    case LATUP_PK_DICT:
        free(v->u.dict.k);
        free(v->u.dict.v);
        break;
    case LATUP_PK_STORAGE: free(v->u.storage.key); break;
    case LATUP_PK_TENSOR: free(v->u.tensor); break;
    default: break;
    }
    free(v);
}

void latup_pickle_free(latup_pickle *doc) {
    if (!doc) return;
    for (latup_pk *v = doc->all, *next; v; v = next) {
        next = v->next_alloc;
        free_value(v);
    }
    memset(doc, 0, sizeof *doc);
}

const latup_pk *latup_pk_dict_get(const latup_pk *dict, const char *key) {
    if (!dict || dict->kind != LATUP_PK_DICT) return NULL;
    size_t len = strlen(key);
    for (size_t i = 0; i < dict->u.dict.n; i++) {
        const latup_pk *k = dict->u.dict.k[i];
        if (k->kind == LATUP_PK_STR && k->u.str.len == len && memcmp(k->u.str.s, key, len) == 0)
            return dict->u.dict.v[i];
    }
    return NULL;
}

/* Makes room for `add` more elements in an array of `elsize`-byte slots (amortised doubling),
 * counting them against the global item cap. */
static latup_status reserve(vm *m, void **arr, size_t *cap, size_t n, size_t add, size_t elsize) {
    if (add > LATUP_PK_MAX_ITEMS - m->n_items)
        return vfail(m, "more than %zu container elements in the pickle, the cap on what one state dict may hold",
                     LATUP_PK_MAX_ITEMS);
    m->n_items += add;
    if (n + add <= *cap) return LATUP_OK;
    size_t want = *cap ? *cap * 2 : 8;
    if (want < n + add) want = n + add;
    TRY(charge(m, (want - *cap) * elsize));
    void *p = realloc(*arr, want * elsize); /* want <= 2 * MAX_ITEMS: no overflow */
    if (!p) return latup_fail(LATUP_E_NOMEM, "out of memory growing a pickle container");
    *arr = p;
    *cap = want;
    return LATUP_OK;
}

static latup_status dict_set(vm *m, latup_pk *d, latup_pk *k, latup_pk *v) {
    /* Two arrays grow together; the item cap is counted once per pair. */
    size_t cap_k = d->u.dict.cap, cap_v = d->u.dict.cap;
    latup_status st = reserve(m, (void **)&d->u.dict.k, &cap_k, d->u.dict.n, 1, sizeof *d->u.dict.k);
    if (st) return st;
    m->n_items--;
    if ((st = reserve(m, (void **)&d->u.dict.v, &cap_v, d->u.dict.n, 1, sizeof *d->u.dict.v))) return st;
    d->u.dict.cap = cap_k < cap_v ? cap_k : cap_v;
    /* Keys of a pickled dict are unique, so no replacement search (it would make a crafted stream of
     * SETITEMs quadratic); a repeated tensor name is caught after flattening. */
    d->u.dict.k[d->u.dict.n] = k;
    d->u.dict.v[d->u.dict.n] = v;
    d->u.dict.n++;
    return LATUP_OK;
}

/* ---- the stack --------------------------------------------------------------------------------- */

static latup_status push(vm *m, latup_pk *v) {
    if (m->sp == m->stack_cap) {
        if (m->sp >= LATUP_PK_MAX_STACK)
            return vfail(m, "stack deeper than %zu values, the cap that bounds the unpickler's stack (a state dict "
                            "needs a few dozen)",
                         LATUP_PK_MAX_STACK);
        size_t want = m->stack_cap ? m->stack_cap * 2 : 64;
        if (want > LATUP_PK_MAX_STACK) want = LATUP_PK_MAX_STACK;
        TRY(charge(m, (want - m->stack_cap) * sizeof(latup_pk *)));
        latup_pk **p = realloc(m->stack, want * sizeof *p);
        if (!p) return latup_fail(LATUP_E_NOMEM, "out of memory growing the pickle stack");
        m->stack = p;
        m->stack_cap = want;
    }
    m->stack[m->sp++] = v;
    return LATUP_OK;
}

/* Values pushed since the last MARK are the only ones an opcode may take (CPython keeps them on a
 * separate list, so reaching below a mark is an underflow there too). */
static size_t mark_base(const vm *m) { return m->n_marks ? m->marks[m->n_marks - 1] : 0; }

static latup_status pop(vm *m, latup_pk **out) {
    if (m->sp <= mark_base(m)) return vfail(m, "pickle stack underflow");
    *out = m->stack[--m->sp];
    return LATUP_OK;
}

static latup_status top(vm *m, latup_pk **out) {
    if (m->sp <= mark_base(m)) return vfail(m, "pickle stack underflow");
    *out = m->stack[m->sp - 1];
    return LATUP_OK;
}

/* Removes the innermost MARK; the values above it are stack[*first .. sp). */
static latup_status pop_mark(vm *m, size_t *first) {
    if (m->n_marks == 0) return vfail(m, "no MARK on the pickle stack");
    *first = m->marks[--m->n_marks];
    return LATUP_OK;
}

/* ---- reading arguments ------------------------------------------------------------------------- */

static latup_status need(vm *m, size_t n) {
    if (m->len - m->pos < n)
        return vfail(m, "opcode 0x%02x needs %zu bytes of argument, %zu left", m->buf[m->op_pos], n,
                     m->len - m->pos);
    return LATUP_OK;
}

static uint64_t le(const uint8_t *p, int n) {
    uint64_t x = 0;
    for (int k = n - 1; k >= 0; k--) x = (x << 8) | p[k];
    return x;
}

static latup_status read_uint(vm *m, int n, uint64_t *out) {
    latup_status st = need(m, (size_t)n);
    if (st) return st;
    *out = le(m->buf + m->pos, n);
    m->pos += (size_t)n;
    return LATUP_OK;
}

static latup_status push_int(vm *m, int64_t i) {
    latup_pk *v = NULL;
    latup_status st = new_value(m, LATUP_PK_INT, &v);
    if (st) return st;
    v->u.i = i;
    return push(m, v);
}

/* LONG1/LONG4: little-endian two's complement of n bytes. */
static latup_status push_long(vm *m, uint64_t n) {
    if (n > m->len - m->pos)
        return vfail(m, "integer of %llu bytes runs past the end of the pickle", (unsigned long long)n);
    const uint8_t *p = m->buf + m->pos;
    m->pos += (size_t)n;
    latup_pk *v = NULL;
    if (n > 8) {
        latup_status st = new_value(m, LATUP_PK_BIGINT, &v);
        return st ? st : push(m, v);
    }
    uint64_t x = n ? le(p, (int)n) : 0;
    if (n > 0 && n < 8 && (p[n - 1] & 0x80)) x |= ~(uint64_t)0 << (8 * n); /* sign-extend */
    return push_int(m, (int64_t)x);
}

/* Strings (and bytes) of a length read from the stream; checked against what is left before any
 * allocation. */
static latup_status push_str(vm *m, latup_pk_kind kind, uint64_t n) {
    if (n > m->len - m->pos)
        return vfail(m, "string of %llu bytes runs past the end of the pickle (%zu bytes left)",
                     (unsigned long long)n, m->len - m->pos);
    if (n > LATUP_PK_MAX_STR)
        return vfail(m, "string of %llu bytes exceeds the limit of %zu bytes on one string (a state dict holds "
                        "tensor names)",
                     (unsigned long long)n, LATUP_PK_MAX_STR);
    latup_pk *v = NULL;
    latup_status st = new_value(m, kind, &v);
    if (!st) st = charge(m, (size_t)n + 1);
    if (st) return st;
    if (!(v->u.str.s = latup_malloc((size_t)n + 1, "a pickle string"))) return LATUP_E_NOMEM;
    memcpy(v->u.str.s, m->buf + m->pos, (size_t)n);
    v->u.str.s[n] = '\0';
    v->u.str.len = (size_t)n;
    m->pos += (size_t)n;
    return push(m, v);
}

/* ---- memo -------------------------------------------------------------------------------------- */

static latup_status memo_put(vm *m, uint64_t idx) {
    latup_pk *v = NULL;
    latup_status st = top(m, &v);
    if (st) return st;
    if (idx >= LATUP_PK_MAX_MEMO)
        return vfail(m, "memo index %llu exceeds the limit of %zu, the cap that bounds the memo table",
                     (unsigned long long)idx, LATUP_PK_MAX_MEMO);
    if (idx >= m->memo_cap) {
        size_t want = m->memo_cap ? m->memo_cap * 2 : 64;
        while (want <= idx) want *= 2;
        if (want > LATUP_PK_MAX_MEMO) want = LATUP_PK_MAX_MEMO;
        TRY(charge(m, (want - m->memo_cap) * sizeof(latup_pk *)));
        latup_pk **p = realloc(m->memo, want * sizeof *p);
        if (!p) return latup_fail(LATUP_E_NOMEM, "out of memory growing the pickle memo");
        memset(p + m->memo_cap, 0, (want - m->memo_cap) * sizeof *p);
        m->memo = p;
        m->memo_cap = want;
    }
    if (!m->memo[idx]) m->memo_count++;
    m->memo[idx] = v;
    return LATUP_OK;
}

static latup_status memo_get(vm *m, uint64_t idx) {
    if (idx >= m->memo_cap || !m->memo[idx])
        return vfail(m, "memo key %llu was never stored (memo holds %zu entries)", (unsigned long long)idx,
                     m->memo_count);
    return push(m, m->memo[idx]);
}

/* ---- globals and the callables ----------------------------------------------------------------- */

static latup_status push_global(vm *m, const char *mod, size_t mod_len, const char *name, size_t name_len) {
    for (size_t k = 0; k < sizeof k_globals / sizeof k_globals[0]; k++) {
        const latup_pk_global *g = &k_globals[k];
        if (strlen(g->module) == mod_len && memcmp(g->module, mod, mod_len) == 0 &&
            strlen(g->name) == name_len && memcmp(g->name, name, name_len) == 0) {
            latup_pk *v;
            latup_status st = new_value(m, LATUP_PK_GLOBAL, &v);
            if (st) return st;
            v->u.global = g;
            return push(m, v);
        }
    }
    /* A pickled nn.Module (torch.save(model)) lands here: say what to do instead. */
    bool module_hint = (mod_len >= 8 && memcmp(mod, "torch.nn", 8) == 0) ||
                       (mod_len == 8 && memcmp(mod, "__main__", 8) == 0);
    return vfail(m, "refusing pickle global '%.*s.%.*s' (not a tensor/state-dict type)%s", (int)mod_len, mod,
                 (int)name_len, name,
                 module_hint ? "; save model.state_dict() instead of the module" : "");
}

/* GLOBAL's argument: "module\nname\n". */
static latup_status read_line(vm *m, const char **s, size_t *n) {
    size_t left = m->len - m->pos, lim = left < MAX_GLOBAL_LINE + 1 ? left : MAX_GLOBAL_LINE + 1;
    const uint8_t *nl = memchr(m->buf + m->pos, '\n', lim);
    if (!nl)
        return vfail(m, "GLOBAL argument is not a newline-terminated name of at most %d bytes",
                     MAX_GLOBAL_LINE);
    *s = (const char *)m->buf + m->pos;
    *n = (size_t)(nl - (m->buf + m->pos));
    m->pos += *n + 1;
    return LATUP_OK;
}

static bool is_int(const latup_pk *v) { return v->kind == LATUP_PK_INT; }

/* A tuple of at most LATUP_WMAX_DIMS ints into dims[]. */
static latup_status int_tuple(vm *m, const latup_pk *t, const char *what, int64_t *dims, int *n) {
    if (t->kind != LATUP_PK_TUPLE)
        return vfail(m, "tensor %s is %s, expected a tuple", what, latup_pk_kind_name(t->kind));
    if (t->u.seq.n > LATUP_WMAX_DIMS)
        return vfail(m, "tensor rank %zu exceeds the maximum of %d", t->u.seq.n, LATUP_WMAX_DIMS);
    for (size_t d = 0; d < t->u.seq.n; d++) {
        if (!is_int(t->u.seq.v[d])) return vfail(m, "tensor %s entry %zu is not an int", what, d);
        dims[d] = t->u.seq.v[d]->u.i;
    }
    *n = (int)t->u.seq.n;
    return LATUP_OK;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
 * or _rebuild_tensor(storage, storage_offset, size, stride). Only the layout is kept: requires_grad,
 * hooks and metadata do not change the data. Values are range-checked by the caller, which knows the
 * tensor's name. */
static latup_status rebuild_tensor(vm *m, const latup_pk *args, latup_pk **out) {
    size_t n = args->u.seq.n;
    if (n < 4 || n > 7) return vfail(m, "_rebuild_tensor called with %zu arguments, expected 4 to 7", n);
    latup_pk **a = args->u.seq.v;
    if (a[0]->kind != LATUP_PK_STORAGE)
        return vfail(m, "_rebuild_tensor: argument 1 is %s, expected a storage",
                     latup_pk_kind_name(a[0]->kind));
    if (!is_int(a[1]))
        return vfail(m, "_rebuild_tensor: storage offset is %s, expected an int",
                     latup_pk_kind_name(a[1]->kind));
    latup_pk_tensor t = {.storage = a[0], .offset = a[1]->u.i};
    int nstride = 0;
    latup_status st = int_tuple(m, a[2], "size", t.size, &t.ndim);
    if (!st) st = int_tuple(m, a[3], "stride", t.stride, &nstride);
    if (st) return st;
    if (nstride != t.ndim) return vfail(m, "tensor has %d sizes but %d strides", t.ndim, nstride);
    latup_pk *v = NULL;
    if ((st = new_value(m, LATUP_PK_TENSOR, &v)) || (st = charge(m, sizeof t))) return st;
    if (!(v->u.tensor = latup_malloc(sizeof t, "a tensor"))) return LATUP_E_NOMEM;
    *v->u.tensor = t;
    *out = v;
    return LATUP_OK;
}

static latup_status reduce(vm *m) {
    latup_pk *args = NULL, *fn = NULL, *res = NULL;
    latup_status st = pop(m, &args);
    if (!st) st = pop(m, &fn);
    if (st) return st;
    if (fn->kind != LATUP_PK_GLOBAL)
        return vfail(m, "REDUCE on %s, which is not a whitelisted callable", latup_pk_kind_name(fn->kind));
    const latup_pk_global *g = fn->u.global;
    if (args->kind != LATUP_PK_TUPLE)
        return vfail(m, "REDUCE arguments for '%s.%s' are %s, expected a tuple", g->module, g->name,
                     latup_pk_kind_name(args->kind));
    switch (g->kind) {
    case LATUP_PKG_ORDERED_DICT:
        if (args->u.seq.n != 0)
            return vfail(m, "OrderedDict called with arguments: only OrderedDict() is supported");
        if ((st = new_value(m, LATUP_PK_DICT, &res))) return st;
        break;
    case LATUP_PKG_REBUILD_TENSOR:
        if ((st = rebuild_tensor(m, args, &res))) return st;
        break;
    case LATUP_PKG_REBUILD_PARAMETER:
        /* _rebuild_parameter(data, requires_grad, backward_hooks[, state]): a Parameter is its data */
        if (args->u.seq.n < 3 || args->u.seq.n > 4 || args->u.seq.v[0]->kind != LATUP_PK_TENSOR)
            return vfail(m, "'%s.%s' expects (tensor, requires_grad, hooks[, state])", g->module, g->name);
        res = args->u.seq.v[0];
        break;
    case LATUP_PKG_STORAGE_TYPE:
        return vfail(m, "REDUCE on '%s.%s': storages are only valid in a persistent id", g->module, g->name);
    case LATUP_PKG_CODECS_ENCODE: {
        /* The text is kept as it is (UTF-8 of the latin-1 code points): the value is a leaf that
         * nothing reads, only its type matters. */
        latup_pk **a = args->u.seq.v;
        if (args->u.seq.n != 2 || a[0]->kind != LATUP_PK_STR || a[1]->kind != LATUP_PK_STR ||
            (strcmp(a[1]->u.str.s, "latin1") != 0 && strcmp(a[1]->u.str.s, "latin-1") != 0))
            return vfail(m, "_codecs.encode is only supported as encode(str, 'latin1')");
        if ((st = new_value(m, LATUP_PK_BYTES, &res)) || (st = charge(m, a[0]->u.str.len + 1))) return st;
        if (!(res->u.str.s = latup_malloc(a[0]->u.str.len + 1, "a pickle string"))) return LATUP_E_NOMEM;
        memcpy(res->u.str.s, a[0]->u.str.s, a[0]->u.str.len + 1);
        res->u.str.len = a[0]->u.str.len;
        break;
    }
    }
    return push(m, res);
}

/* BINPERSID: torch's ('storage', storage_type, key, location, numel). The storage itself lives in
 * the archive's data/<key> entry; the caller resolves it. */
static latup_status persistent_load(vm *m) {
    latup_pk *pid = NULL;
    latup_status st = pop(m, &pid);
    if (st) return st;
    if (pid->kind != LATUP_PK_TUPLE || pid->u.seq.n != 5)
        return vfail(m, "persistent id is not a 5-tuple ('storage', type, key, location, numel)");
    latup_pk **a = pid->u.seq.v;
    if (a[0]->kind != LATUP_PK_STR || strcmp(a[0]->u.str.s, "storage") != 0)
        return vfail(m, "persistent id does not start with 'storage'");
    if (a[1]->kind != LATUP_PK_GLOBAL || a[1]->u.global->kind != LATUP_PKG_STORAGE_TYPE)
        return vfail(m, "persistent id: storage type is not a torch storage class");
    if (a[2]->kind != LATUP_PK_STR) return vfail(m, "persistent id: storage key is not a string");
    if (a[3]->kind != LATUP_PK_STR) return vfail(m, "persistent id: storage location is not a string");
    if (!is_int(a[4]) || a[4]->u.i < 0)
        return vfail(m, "persistent id: storage size is not a non-negative int");
    latup_pk *v = NULL;
    if ((st = new_value(m, LATUP_PK_STORAGE, &v)) || (st = charge(m, a[2]->u.str.len + 1))) return st;
    v->u.storage.type = a[1]->u.global;
    v->u.storage.numel = a[4]->u.i;
    v->u.storage.key_len = a[2]->u.str.len;
    if (!(v->u.storage.key = latup_malloc(a[2]->u.str.len + 1, "a storage key"))) return LATUP_E_NOMEM;
    memcpy(v->u.storage.key, a[2]->u.str.s, a[2]->u.str.len + 1);
    return push(m, v);
}

/* A tuple (or list, for APPENDS) made from the values stack[first..sp). */
static latup_status make_seq(vm *m, latup_pk_kind kind, size_t first, latup_pk **out) {
    size_t n = m->sp - first;
    latup_pk *v = NULL;
    latup_status st = new_value(m, kind, &v);
    if (!st) st = reserve(m, (void **)&v->u.seq.v, &v->u.seq.cap, 0, n, sizeof *v->u.seq.v);
    if (st) return st;
    if (n) memcpy(v->u.seq.v, m->stack + first, n * sizeof *v->u.seq.v);
    v->u.seq.n = n;
    m->sp = first;
    *out = v;
    return LATUP_OK;
}

static latup_status tuple_n(vm *m, size_t n) {
    if (m->sp - mark_base(m) < n) return vfail(m, "pickle stack underflow (TUPLE%zu)", n);
    latup_pk *v = NULL;
    latup_status st = make_seq(m, LATUP_PK_TUPLE, m->sp - n, &v);
    return st ? st : push(m, v);
}

static latup_status append_items(vm *m, size_t first) {
    size_t n = m->sp - first;
    /* the list sits just below the values, and must itself be above the (outer) mark */
    if (first == 0 || first - 1 < mark_base(m)) return vfail(m, "pickle stack underflow (APPENDS)");
    latup_pk *list = m->stack[first - 1];
    if (list->kind != LATUP_PK_LIST)
        return vfail(m, "APPEND to %s, expected a list", latup_pk_kind_name(list->kind));
    latup_status st =
        reserve(m, (void **)&list->u.seq.v, &list->u.seq.cap, list->u.seq.n, n, sizeof *list->u.seq.v);
    if (st) return st;
    if (n) memcpy(list->u.seq.v + list->u.seq.n, m->stack + first, n * sizeof *list->u.seq.v);
    list->u.seq.n += n;
    m->sp = first;
    return LATUP_OK;
}

static latup_status set_items(vm *m, size_t first) {
    if ((m->sp - first) % 2) return vfail(m, "SETITEMS with an odd number of values");
    if (first == 0 || first - 1 < mark_base(m)) return vfail(m, "pickle stack underflow (SETITEM)");
    latup_pk *d = m->stack[first - 1];
    if (d->kind != LATUP_PK_DICT)
        return vfail(m, "SETITEM on %s, expected a dict", latup_pk_kind_name(d->kind));
    for (size_t i = first; i < m->sp; i += 2) {
        latup_status st = dict_set(m, d, m->stack[i], m->stack[i + 1]);
        if (st) return st;
    }
    m->sp = first;
    return LATUP_OK;
}

/* ---- the machine ------------------------------------------------------------------------------- */

/* A new value of `kind` pushed on the stack (*out set for the caller to fill in). */
static latup_status push_new(vm *m, latup_pk_kind kind, latup_pk **out) {
    latup_pk *v = NULL;
    latup_status st = new_value(m, kind, &v);
    if (st) return st;
    if (out) *out = v;
    return push(m, v);
}

static latup_status step(vm *m, bool *stop) {
    m->op_pos = m->pos;
    uint8_t op = m->buf[m->pos++];
    uint64_t n = 0;
    size_t first = 0;
    latup_pk *v = NULL, *k = NULL, *d = NULL;
    latup_status st;
    switch (op) {
    case OP_PROTO:
        if ((st = read_uint(m, 1, &n))) return st;
        if (n < 2 || n > 5)
            return vfail(m, "unsupported pickle protocol %llu (expected 2 to 5)", (unsigned long long)n);
        return LATUP_OK;
    case OP_FRAME: /* a framing hint for streaming readers; the whole pickle is in memory */
        return read_uint(m, 8, &n);
    case OP_STOP:
        if ((st = pop(m, &v))) return st;
        m->doc->root = v;
        *stop = true;
        return LATUP_OK;

    /* scalars */
    case OP_NONE: return push_new(m, LATUP_PK_NONE, NULL);
    case OP_NEWTRUE:
    case OP_NEWFALSE:
        if ((st = push_new(m, LATUP_PK_BOOL, &v))) return st;
        v->u.b = op == OP_NEWTRUE;
        return LATUP_OK;
    case OP_BININT: /* 4-byte signed */
        if ((st = read_uint(m, 4, &n))) return st;
        return push_int(m, (int32_t)(uint32_t)n);
    case OP_BININT1:
        if ((st = read_uint(m, 1, &n))) return st;
        return push_int(m, (int64_t)n);
    case OP_BININT2:
        if ((st = read_uint(m, 2, &n))) return st;
        return push_int(m, (int64_t)n);
    case OP_LONG1:
        if ((st = read_uint(m, 1, &n))) return st;
        return push_long(m, n);
    case OP_LONG4:
        if ((st = read_uint(m, 4, &n))) return st;
        if (n & 0x80000000u) return vfail(m, "LONG4 with a negative length");
        return push_long(m, n);
    case OP_BINFLOAT: { /* 8-byte big-endian IEEE double */
        if ((st = need(m, 8))) return st;
        uint64_t bits = 0;
        for (int b = 0; b < 8; b++) bits = (bits << 8) | m->buf[m->pos + (size_t)b];
        m->pos += 8;
        if ((st = push_new(m, LATUP_PK_FLOAT, &v))) return st;
        memcpy(&v->u.f, &bits, sizeof v->u.f);
        return LATUP_OK;
    }

    /* strings and bytes: 1-, 4- or 8-byte length, then the bytes */
    case OP_SHORT_BINUNICODE:
    case OP_SHORT_BINBYTES:
        if ((st = read_uint(m, 1, &n))) return st;
        return push_str(m, op == OP_SHORT_BINBYTES ? LATUP_PK_BYTES : LATUP_PK_STR, n);
    case OP_BINUNICODE:
    case OP_BINBYTES:
        if ((st = read_uint(m, 4, &n))) return st;
        return push_str(m, op == OP_BINBYTES ? LATUP_PK_BYTES : LATUP_PK_STR, n);
    case OP_BINUNICODE8:
    case OP_BINBYTES8:
        if ((st = read_uint(m, 8, &n))) return st;
        return push_str(m, op == OP_BINBYTES8 ? LATUP_PK_BYTES : LATUP_PK_STR, n);

    /* containers */
    case OP_EMPTY_TUPLE: return push_new(m, LATUP_PK_TUPLE, NULL);
    case OP_EMPTY_LIST: return push_new(m, LATUP_PK_LIST, NULL);
    case OP_EMPTY_DICT: return push_new(m, LATUP_PK_DICT, NULL);
    case OP_MARK:
        if (m->n_marks == LATUP_PK_MAX_MARKS)
            return vfail(m, "pickle nests deeper than %d MARKs, the limit on nesting (a state dict needs 2 or 3)",
                         LATUP_PK_MAX_MARKS);
        m->marks[m->n_marks++] = m->sp;
        return LATUP_OK;
    case OP_TUPLE:
        if ((st = pop_mark(m, &first))) return st;
        if ((st = make_seq(m, LATUP_PK_TUPLE, first, &v))) return st;
        return push(m, v);
    case OP_TUPLE1: return tuple_n(m, 1);
    case OP_TUPLE2: return tuple_n(m, 2);
    case OP_TUPLE3: return tuple_n(m, 3);
    case OP_APPEND:
        if ((st = pop(m, &v))) return st;
        if ((st = push(m, v))) return st; /* back on the stack: append_items takes it from there */
        return append_items(m, m->sp - 1);
    case OP_APPENDS:
        if ((st = pop_mark(m, &first))) return st;
        return append_items(m, first);
    case OP_SETITEM:
        if ((st = pop(m, &v)) || (st = pop(m, &k)) || (st = top(m, &d))) return st;
        if (d->kind != LATUP_PK_DICT)
            return vfail(m, "SETITEM on %s, expected a dict", latup_pk_kind_name(d->kind));
        return dict_set(m, d, k, v);
    case OP_SETITEMS:
        if ((st = pop_mark(m, &first))) return st;
        return set_items(m, first);
    case OP_POP: /* CPython: an empty (post-MARK) stack pops the mark instead */
        if (m->sp > mark_base(m)) {
            m->sp--;
            return LATUP_OK;
        }
        if (m->n_marks == 0) return vfail(m, "pickle stack underflow (POP)");
        return pop_mark(m, &first);
    case OP_POP_MARK:
        if ((st = pop_mark(m, &first))) return st;
        m->sp = first;
        return LATUP_OK;
    case OP_DUP:
        if ((st = top(m, &v))) return st;
        return push(m, v);

    /* memo */
    case OP_BINPUT:
        if ((st = read_uint(m, 1, &n))) return st;
        return memo_put(m, n);
    case OP_LONG_BINPUT:
        if ((st = read_uint(m, 4, &n))) return st;
        return memo_put(m, n);
    case OP_MEMOIZE: return memo_put(m, m->memo_count);
    case OP_BINGET:
        if ((st = read_uint(m, 1, &n))) return st;
        return memo_get(m, n);
    case OP_LONG_BINGET:
        if ((st = read_uint(m, 4, &n))) return st;
        return memo_get(m, n);

    /* globals, calls, persistent ids */
    case OP_GLOBAL: {
        const char *mod, *name;
        size_t ml, nl;
        if ((st = read_line(m, &mod, &ml)) || (st = read_line(m, &name, &nl))) return st;
        return push_global(m, mod, ml, name, nl);
    }
    case OP_STACK_GLOBAL:
        if ((st = pop(m, &v)) || (st = pop(m, &k))) return st;
        if (k->kind != LATUP_PK_STR || v->kind != LATUP_PK_STR)
            return vfail(m, "STACK_GLOBAL needs two strings, got %s and %s", latup_pk_kind_name(k->kind),
                         latup_pk_kind_name(v->kind));
        return push_global(m, k->u.str.s, k->u.str.len, v->u.str.s, v->u.str.len);
    case OP_REDUCE: return reduce(m);
    case OP_BINPERSID: return persistent_load(m);
    case OP_BUILD:
        /* OrderedDict carries _metadata as instance state, tensors may carry python attributes:
         * neither changes the data, so the state is dropped. */
        if ((st = pop(m, &v)) || (st = top(m, &d))) return st;
        if (d->kind != LATUP_PK_DICT && d->kind != LATUP_PK_TENSOR)
            return vfail(m, "BUILD on %s is not supported", latup_pk_kind_name(d->kind));
        return LATUP_OK;
    default: break;
    }
    return wfail(m, "unknown/unsupported pickle opcode 0x%02x at offset %zu", op, m->op_pos);
}

latup_status latup_pickle_load(const uint8_t *buf, size_t len, const char *what, latup_pickle *doc) {
    return latup_pickle_load_budget(buf, len, what, LATUP_PK_MAX_BYTES, doc);
}

latup_status latup_pickle_load_budget(const uint8_t *buf, size_t len, const char *what, size_t budget,
                                      latup_pickle *doc) {
    memset(doc, 0, sizeof *doc);
    vm m;
    memset(&m, 0, sizeof m);
    m.budget = budget;
    m.buf = buf;
    m.len = len;
    m.what = what ? what : "pickle";
    m.doc = doc;
    bool stop = false;
    latup_status st = LATUP_OK;
    while (!st && !stop) {
        if (m.pos >= m.len) {
            st = wfail(&m, "pickle ends at offset %zu without STOP", m.len);
            break;
        }
        st = step(&m, &stop);
    }
    free(m.stack);
    free(m.memo);
    if (st) latup_pickle_free(doc);
    return st;
}
