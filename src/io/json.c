/* json.c — strict recursive-descent JSON parser into an arena-backed tree, plus a growable text
 * buffer with a JSON string escaper. Used for safetensors headers, which may come from anywhere:
 * every malformed input is an error with a byte offset, never a guess. */
#include "io/json.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------------------------------
 * Nodes and strings are bump-allocated from a list of chunks, so freeing a tree (on success or on
 * any error path) is one walk over the chunk list. */
struct latup_json_chunk {
    latup_json_chunk *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
};

#define CHUNK_MIN ((size_t)64 << 10)
#define CHUNK_MAX ((size_t)16 << 20)

static void *arena_alloc(latup_json_chunk **arena, size_t n) {
    const size_t align = alignof(max_align_t);
    if (n > SIZE_MAX - align) return NULL;
    n = (n + align - 1) & ~(align - 1);
    latup_json_chunk *head = *arena;
    if (head && head->cap - head->used >= n) {
        void *p = (char *)head->data + head->used;
        head->used += n;
        return p;
    }
    /* Chunks double up to CHUNK_MAX so a big header needs few mallocs. */
    size_t cap = head ? (head->cap < CHUNK_MAX ? head->cap * 2 : CHUNK_MAX) : CHUNK_MIN;
    bool oversized = n > cap;
    if (oversized) cap = n;
    if (cap > SIZE_MAX - sizeof(latup_json_chunk)) return NULL;
    latup_json_chunk *c = malloc(sizeof *c + cap);
    if (!c) return NULL;
    c->cap = cap;
    c->used = n;
    if (oversized && head) {
        /* A one-off big string gets its own chunk behind the head, which keeps its free space. */
        c->next = head->next;
        head->next = c;
    } else {
        c->next = head;
        *arena = c;
    }
    return c->data;
}

void latup_json_free(latup_json_doc *doc) {
    if (!doc) return;
    latup_json_chunk *c = doc->arena;
    while (c) {
        latup_json_chunk *next = c->next;
        free(c);
        c = next;
    }
    doc->arena = NULL;
    doc->root = NULL;
}

/* ---- UTF-8 ------------------------------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at p (at most avail bytes), 0 if ill-formed. The
 * second-byte ranges exclude overlong forms, UTF-16 surrogates and code points past U+10FFFF
 * (Unicode Table 3-7), which is what Rust's str::from_utf8 enforces in the reference reader. */
static size_t utf8_seq(const unsigned char *p, size_t avail) {
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    else if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (avail < n) return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if (p[k] < 0x80 || p[k] > 0xBF) return 0;
    return n;
}

bool latup_utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_seq(p + i, len - i);
        if (!n) return false;
        i += n;
    }
    return true;
}

static size_t utf8_put(char *out, uint32_t cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- parser ----------------------------------------------------------------------------------- */
typedef struct {
    const char *s;
    size_t len, pos;
    latup_json_chunk **arena;
    size_t n_values, max_values;
    bool bytes; /* latup_json_parse_bytes: \udc80..\udcff are the bytes 0x80..0xff */
} parser;

static latup_status perr(const parser *p, size_t at, const char *fmt, ...) LATUP_PRINTF(3, 4);
static latup_status perr(const parser *p, size_t at, const char *fmt, ...) {
    (void)p;
    char pre[48];
    snprintf(pre, sizeof pre, "invalid JSON at byte %zu: ", at);
    va_list ap;
    va_start(ap, fmt);
    latup_status st = latup_vfail(LATUP_E_INPUT, pre, fmt, ap);
    va_end(ap);
    return st;
}

/* Describes the byte at `at` for "unexpected ..." messages. */
static latup_status unexpected(const parser *p, size_t at, const char *wanted) {
    if (at >= p->len) return perr(p, at, "unexpected end of input, expected %s", wanted);
    unsigned char c = (unsigned char)p->s[at];
    if (c >= 0x21 && c < 0x7F) return perr(p, at, "unexpected '%c', expected %s", c, wanted);
    return perr(p, at, "unexpected byte 0x%02X, expected %s", c, wanted);
}

static void skip_ws(parser *p) {
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static latup_status new_node(parser *p, latup_json_type type, latup_json **out) {
    if (p->max_values && p->n_values >= p->max_values)
        return perr(p, p->pos, "more than %zu values, the cap that bounds the parse tree (limit)", p->max_values);
    latup_json *v = arena_alloc(p->arena, sizeof *v);
    if (!v) return latup_fail(LATUP_E_NOMEM, "out of memory parsing JSON");
    memset(v, 0, sizeof *v);
    v->type = type;
    v->offset = p->pos;
    p->n_values++;
    *out = v;
    return LATUP_OK;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Four hex digits at s[at..at+4), all before `end`; -1 if not. */
static long hex4(const parser *p, size_t at, size_t end) {
    if (at + 4 > end) return -1;
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h = hexval(p->s[at + k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* p->pos is at the opening quote. Decodes into arena memory; the decoded text is never longer
 * than the raw text (every escape shrinks or keeps its length), so one allocation suffices. */
static latup_status parse_string(parser *p, const char **out, size_t *out_len) {
    size_t start = p->pos;
    size_t end = start + 1;
    while (end < p->len && p->s[end] != '"') end += (p->s[end] == '\\') ? 2 : 1;
    if (end >= p->len) return perr(p, start, "unterminated string");

    char *buf = arena_alloc(p->arena, end - start);
    if (!buf) return latup_fail(LATUP_E_NOMEM, "out of memory parsing JSON");
    size_t n = 0;
    size_t j = start + 1;
    while (j < end) {
        unsigned char c = (unsigned char)p->s[j];
        if (c < 0x20) return perr(p, j, "control character 0x%02X in a string (must be escaped)", c);
        if (c >= 0x80) {
            size_t k = utf8_seq((const unsigned char *)p->s + j, end - j);
            if (!k) return perr(p, j, "invalid UTF-8 in a string");
            memcpy(buf + n, p->s + j, k);
            n += k;
            j += k;
            continue;
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            j++;
            continue;
        }
        char e = p->s[j + 1]; /* j + 1 < end: the scan above skipped escaped characters */
        switch (e) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            long cp = hex4(p, j + 2, end);
            if (cp < 0) return perr(p, j, "\\u must be followed by four hex digits");
            size_t adv = 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* UTF-16 surrogate pair: the low half must follow immediately */
                long lo =
                    (j + 7 < end && p->s[j + 6] == '\\' && p->s[j + 7] == 'u') ? hex4(p, j + 8, end) : -1;
                if (lo < 0xDC00 || lo > 0xDFFF)
                    return perr(p, j, "high surrogate \\u%04lX not followed by a low surrogate", cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                adv = 12;
            } else if (cp >= 0xDC80 && cp <= 0xDCFF && p->bytes) {
                buf[n++] = (char)(cp - 0xDC00);
                j += adv;
                continue;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return perr(p, j, "lone low surrogate \\u%04lX", cp);
            } else if (cp == 0) {
                return perr(p, j, "\\u0000 in a string is not supported");
            }
            n += utf8_put(buf + n, (uint32_t)cp);
            j += adv;
            continue;
        }
        default:
            if ((unsigned char)e >= 0x21 && (unsigned char)e < 0x7F)
                return perr(p, j, "invalid escape '\\%c'", e);
            return perr(p, j, "invalid escape (byte 0x%02X)", (unsigned char)e);
        }
        j += 2;
    }
    buf[n] = '\0';
    p->pos = end + 1;
    *out = buf;
    *out_len = n;
    return LATUP_OK;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static latup_status parse_number(parser *p, latup_json *v) {
    size_t start = p->pos, i = p->pos;
    bool neg = false;
    if (i < p->len && p->s[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= p->len || !is_digit(p->s[i])) return perr(p, start, "invalid number");
    if (p->s[i] == '0' && i + 1 < p->len && is_digit(p->s[i + 1]))
        return perr(p, start, "leading zeros are not allowed in numbers");
    /* Accumulate the magnitude; int64 allows one more on the negative side. */
    uint64_t mag = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    bool overflow = false;
    while (i < p->len && is_digit(p->s[i])) {
        uint64_t d = (uint64_t)(p->s[i] - '0');
        if (mag > (limit - d) / 10)
            overflow = true;
        else
            mag = mag * 10 + d;
        i++;
    }
    bool real = false;
    if (i < p->len && p->s[i] == '.') {
        i++;
        if (i >= p->len || !is_digit(p->s[i])) return perr(p, start, "invalid number: no digits after '.'");
        while (i < p->len && is_digit(p->s[i])) i++;
        real = true;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->len || !is_digit(p->s[i]))
            return perr(p, start, "invalid number: no digits in the exponent");
        while (i < p->len && is_digit(p->s[i])) i++;
        real = true;
    }
    if (real) {
        /* strtod needs a terminated copy; the CLI never calls setlocale, so '.' is the radix. */
        char *tmp = latup_malloc(i - start + 1, "a JSON number");
        if (!tmp) return LATUP_E_NOMEM;
        memcpy(tmp, p->s + start, i - start);
        tmp[i - start] = '\0';
        v->type = LATUP_JSON_REAL;
        v->u.d = strtod(tmp, NULL);
        free(tmp);
    } else {
        if (overflow) return perr(p, start, "integer out of the int64 range");
        v->type = LATUP_JSON_INT;
        /* -2^63 has no positive counterpart, so negate in unsigned arithmetic */
        v->u.i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    }
    p->pos = i;
    return LATUP_OK;
}

static int cmp_keys(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Duplicate keys make "which value wins" ambiguous (the safetensors spec rejects duplicate tensor
 * names), so any object with a repeated key is an error. Sorting keeps big headers O(n log n). */
static latup_status check_duplicates(parser *p, const latup_json *obj) {
    size_t n = obj->u.kids.n;
    if (n < 2) return LATUP_OK;
    if (n <= 8) {
        for (const latup_json *a = obj->u.kids.first; a; a = a->next)
            for (const latup_json *b = a->next; b; b = b->next)
                if (strcmp(a->key, b->key) == 0)
                    return perr(p, b->offset, "duplicate key '%s' in the object at byte %zu", b->key,
                                obj->offset);
        return LATUP_OK;
    }
    const char **keys = latup_malloc(n * sizeof *keys, "JSON key check");
    if (!keys) return LATUP_E_NOMEM;
    size_t k = 0;
    for (const latup_json *a = obj->u.kids.first; a; a = a->next) keys[k++] = a->key;
    qsort(keys, n, sizeof *keys, cmp_keys);
    latup_status st = LATUP_OK;
    for (k = 1; k < n; k++)
        if (strcmp(keys[k - 1], keys[k]) == 0) {
            st = perr(p, obj->offset, "duplicate key '%s' in the object at byte %zu", keys[k], obj->offset);
            break;
        }
    free(keys);
    return st;
}

static latup_status parse_value(parser *p, int depth, latup_json **out);

/* Arrays and objects share one loop; p->pos is at '[' or '{'. */
static latup_status parse_container(parser *p, int depth, latup_json *v) {
    bool is_obj = v->type == LATUP_JSON_OBJECT;
    char close = is_obj ? '}' : ']';
    if (depth >= LATUP_JSON_MAX_DEPTH)
        return perr(p, p->pos, "nesting deeper than %d levels, the limit that bounds the parser's recursion",
                    LATUP_JSON_MAX_DEPTH);
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        return LATUP_OK;
    }
    latup_json **tail = &v->u.kids.first;
    for (;;) {
        skip_ws(p);
        const char *key = NULL;
        if (is_obj) {
            size_t key_len;
            if (p->pos >= p->len || p->s[p->pos] != '"') return unexpected(p, p->pos, "a string key");
            latup_status st = parse_string(p, &key, &key_len);
            if (st) return st;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') return unexpected(p, p->pos, "':'");
            p->pos++;
        }
        latup_json *kid = NULL;
        latup_status st = parse_value(p, depth + 1, &kid);
        if (st) return st;
        kid->key = key;
        *tail = kid;
        tail = &kid->next;
        v->u.kids.n++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            break;
        }
        return unexpected(p, p->pos, is_obj ? "',' or '}'" : "',' or ']'");
    }
    return is_obj ? check_duplicates(p, v) : LATUP_OK;
}

static bool match_word(const parser *p, const char *w) {
    size_t n = strlen(w);
    return p->len - p->pos >= n && memcmp(p->s + p->pos, w, n) == 0;
}

static latup_status parse_value(parser *p, int depth, latup_json **out) {
    skip_ws(p);
    if (p->pos >= p->len) return unexpected(p, p->pos, "a value");
    char c = p->s[p->pos];
    latup_json *v = NULL;
    latup_status st = new_node(p, LATUP_JSON_NULL, &v);
    if (st) return st;
    *out = v;
    if (c == '{' || c == '[') {
        v->type = c == '{' ? LATUP_JSON_OBJECT : LATUP_JSON_ARRAY;
        return parse_container(p, depth, v);
    }
    if (c == '"') {
        v->type = LATUP_JSON_STRING;
        return parse_string(p, &v->u.str.s, &v->u.str.len);
    }
    if (c == '-' || is_digit(c)) return parse_number(p, v);
    static const struct {
        const char *word;
        latup_json_type type;
    } lits[] = {{"true", LATUP_JSON_TRUE}, {"false", LATUP_JSON_FALSE}, {"null", LATUP_JSON_NULL}};
    for (size_t k = 0; k < sizeof lits / sizeof lits[0]; k++)
        if (match_word(p, lits[k].word)) {
            v->type = lits[k].type;
            p->pos += strlen(lits[k].word);
            return LATUP_OK;
        }
    return unexpected(p, p->pos, "a value");
}

static latup_status parse_doc(const char *text, size_t len, size_t max_values, bool bytes, latup_json_doc *doc) {
    memset(doc, 0, sizeof *doc);
    parser p = {.s = text, .len = len, .arena = &doc->arena, .max_values = max_values, .bytes = bytes};
    latup_json *root = NULL;
    latup_status st = parse_value(&p, 0, &root);
    if (!st) {
        skip_ws(&p);
        if (p.pos != len) st = unexpected(&p, p.pos, "the end of the input after the value");
    }
    if (st) {
        latup_json_free(doc);
        return st;
    }
    doc->root = root;
    return LATUP_OK;
}

latup_status latup_json_parse(const char *text, size_t len, size_t max_values, latup_json_doc *doc) {
    return parse_doc(text, len, max_values, false, doc);
}

latup_status latup_json_parse_bytes(const char *text, size_t len, size_t max_values, latup_json_doc *doc) {
    return parse_doc(text, len, max_values, true, doc);
}

const latup_json *latup_json_get(const latup_json *obj, const char *key) {
    if (!obj || obj->type != LATUP_JSON_OBJECT) return NULL;
    for (const latup_json *v = obj->u.kids.first; v; v = v->next)
        if (strcmp(v->key, key) == 0) return v;
    return NULL;
}

const char *latup_json_type_name(latup_json_type t) {
    switch (t) {
    case LATUP_JSON_NULL: return "null";
    case LATUP_JSON_FALSE:
    case LATUP_JSON_TRUE: return "a boolean";
    case LATUP_JSON_INT: return "an integer";
    case LATUP_JSON_REAL: return "a non-integer number";
    case LATUP_JSON_STRING: return "a string";
    case LATUP_JSON_ARRAY: return "an array";
    case LATUP_JSON_OBJECT: return "an object";
    }
    return "?";
}

/* ---- writing ---------------------------------------------------------------------------------- */

static latup_status buf_reserve(latup_json_buf *b, size_t extra) {
    if (extra > SIZE_MAX - b->len - 1) return latup_fail(LATUP_E_NOMEM, "JSON text too large");
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return LATUP_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *d = realloc(b->data, cap);
    if (!d) return latup_fail(LATUP_E_NOMEM, "out of memory growing JSON text to %zu bytes", cap);
    b->data = d;
    b->cap = cap;
    return LATUP_OK;
}

latup_status latup_json_buf_add(latup_json_buf *b, const char *s, size_t n) {
    latup_status st = buf_reserve(b, n);
    if (st) return st;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return LATUP_OK;
}

latup_status latup_json_buf_addf(latup_json_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return latup_fail(LATUP_E_INTERNAL, "bad format '%s'", fmt);
    latup_status st = buf_reserve(b, (size_t)n);
    if (st) return st;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return LATUP_OK;
}

latup_status latup_json_buf_add_string(latup_json_buf *b, const char *s) {
    size_t n = strlen(s);
    if (!latup_utf8_valid(s, n)) return latup_fail(LATUP_E_INPUT, "string '%s' is not valid UTF-8", s);
    latup_status st = latup_json_buf_add(b, "\"", 1);
    for (size_t i = 0; i < n && !st; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            st = latup_json_buf_add(b, "\\\"", 2);
        else if (c == '\\')
            st = latup_json_buf_add(b, "\\\\", 2);
        else if (c == '\n')
            st = latup_json_buf_add(b, "\\n", 2);
        else if (c == '\t')
            st = latup_json_buf_add(b, "\\t", 2);
        else if (c == '\r')
            st = latup_json_buf_add(b, "\\r", 2);
        else if (c == '\b')
            st = latup_json_buf_add(b, "\\b", 2);
        else if (c == '\f')
            st = latup_json_buf_add(b, "\\f", 2);
        else if (c < 0x20)
            st = latup_json_buf_addf(b, "\\u%04x", c);
        else
            st = latup_json_buf_add(b, s + i, 1);
    }
    if (!st) st = latup_json_buf_add(b, "\"", 1);
    return st;
}

void latup_json_buf_free(latup_json_buf *b) {
    if (!b) return;
    free(b->data);
    memset(b, 0, sizeof *b);
}
