/* pickle.h — a restricted unpickler for the data.pkl of a PyTorch checkpoint: protocol 2-5 data
 * opcodes only, a fixed whitelist of globals (OrderedDict, the torch tensor/parameter rebuild
 * functions, the typed storage classes) interpreted in C. Nothing from the file is ever executed;
 * every count, length and depth is bounded so a hostile pickle cannot exhaust memory or stack. */
#ifndef LATUP_PICKLE_H
#define LATUP_PICKLE_H

#include "common.h"
#include "io/weights.h"

/* Limits (a real state-dict pickle uses a tiny fraction of each). */
#define LATUP_PK_MAX_STACK ((size_t)1 << 20)  /* values on the stack */
#define LATUP_PK_MAX_MARKS 64                 /* open MARKs: the nesting depth of tuples/SETITEMS */
#define LATUP_PK_MAX_MEMO ((size_t)1 << 20)   /* memo index bound (BINPUT/LONG_BINPUT/MEMOIZE) */
#define LATUP_PK_MAX_VALUES ((size_t)1 << 21) /* objects created */
#define LATUP_PK_MAX_ITEMS ((size_t)1 << 22)  /* elements across all tuples, lists and dicts */
#define LATUP_PK_MAX_STR ((size_t)16 << 20)   /* bytes in one string */
#define LATUP_PK_MAX_BYTES ((size_t)256 << 20) /* everything the machine allocates, together */

typedef enum {
    LATUP_PK_NONE,
    LATUP_PK_BOOL,
    LATUP_PK_INT,
    LATUP_PK_BIGINT, /* an integer wider than 64 bits: kept as an opaque leaf */
    LATUP_PK_FLOAT,
    LATUP_PK_STR,
    LATUP_PK_BYTES,
    LATUP_PK_TUPLE,
    LATUP_PK_LIST,
    LATUP_PK_DICT, /* dict or collections.OrderedDict; keys kept in insertion order */
    LATUP_PK_GLOBAL,
    LATUP_PK_STORAGE,
    LATUP_PK_TENSOR,
} latup_pk_kind;

/* What a whitelisted global is. */
typedef enum {
    LATUP_PKG_ORDERED_DICT,
    LATUP_PKG_REBUILD_TENSOR,    /* torch._utils._rebuild_tensor(_v2) */
    LATUP_PKG_REBUILD_PARAMETER, /* torch._utils._rebuild_parameter(_with_state): the tensor itself */
    LATUP_PKG_STORAGE_TYPE,      /* torch.FloatStorage etc., only valid in a persistent id */
    LATUP_PKG_CODECS_ENCODE,     /* _codecs.encode(str, 'latin1'): how protocol 2 writes bytes */
} latup_pk_global_kind;

typedef struct {
    const char *module, *name;
    latup_pk_global_kind kind;
    int dtype;     /* storage types: a latup_dtype, or -1 for a dtype latup does not read */
    size_t elsize; /* storage types: bytes per element */
} latup_pk_global;

typedef struct latup_pk latup_pk;

typedef struct {
    const latup_pk *storage; /* a LATUP_PK_STORAGE */
    int64_t offset;          /* in elements */
    int ndim;
    int64_t size[LATUP_WMAX_DIMS], stride[LATUP_WMAX_DIMS]; /* unvalidated: may be negative */
} latup_pk_tensor;

struct latup_pk {
    latup_pk_kind kind;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            char *s; /* NUL-terminated copy; may also contain NULs (len is the truth) */
            size_t len;
        } str; /* STR and BYTES */
        struct {
            latup_pk **v;
            size_t n, cap;
        } seq; /* TUPLE and LIST */
        struct {
            latup_pk **k, **v;
            size_t n, cap;
        } dict;
        const latup_pk_global *global;
        struct {
            const latup_pk_global *type; /* the storage class */
            char *key;                   /* the archive's data/<key> */
            size_t key_len;
            int64_t numel;
        } storage;
        latup_pk_tensor *tensor;
    } u;
    latup_pk *next_alloc; /* every value made, in one list, so freeing needs no recursion */
};

typedef struct {
    latup_pk *root;
    latup_pk *all;
    size_t n_values;
    size_t bytes; /* charged against the budget: values, strings, containers, stack and memo */
} latup_pickle;

/* Runs the restricted machine over buf. `what` names the stream in messages ("m.pth: a/data.pkl"),
 * as it is: build it with latup_format when it holds names from a file.
 * On failure doc is already freed and the message reads "<what>: offset N: <problem>". */
latup_status latup_pickle_load(const uint8_t *buf, size_t len, const char *what, latup_pickle *doc);
/* The same with a budget other than LATUP_PK_MAX_BYTES (tests). */
latup_status latup_pickle_load_budget(const uint8_t *buf, size_t len, const char *what, size_t budget,
                                      latup_pickle *doc);
void latup_pickle_free(latup_pickle *doc);

const char *latup_pk_kind_name(latup_pk_kind k);
/* The value under string key `key` in a dict (first match), or NULL. */
const latup_pk *latup_pk_dict_get(const latup_pk *dict, const char *key);

#endif
