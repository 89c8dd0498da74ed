/* json.h — a small strict JSON reader (RFC 8259) building a read-only tree, and the few writer
 * helpers the safetensors writer needs. Strict means: UTF-8 is validated, lone surrogates,
 * duplicate object keys, trailing commas, leading zeros and out-of-range integers are errors, and
 * every error names the byte offset. The whole tree lives in one arena freed by latup_json_free. */
#ifndef LATUP_JSON_H
#define LATUP_JSON_H

#include "common.h"

typedef enum {
    LATUP_JSON_NULL,
    LATUP_JSON_FALSE,
    LATUP_JSON_TRUE,
    LATUP_JSON_INT,  /* a number without fraction or exponent that fits int64 */
    LATUP_JSON_REAL, /* any other number */
    LATUP_JSON_STRING,
    LATUP_JSON_ARRAY,
    LATUP_JSON_OBJECT,
} latup_json_type;

typedef struct latup_json latup_json;
struct latup_json {
    latup_json_type type;
    size_t offset;    /* byte offset of the value in the parsed text, for messages */
    const char *key;  /* member name when this value sits in an object, else NULL */
    latup_json *next; /* next sibling in the parent array or object (source order) */
    union {
        int64_t i; /* INT */
        double d;  /* REAL (strtod, C locale) */
        struct {
            const char *s;
            size_t len;
        } str; /* STRING: decoded UTF-8, NUL-terminated */
        struct {
            latup_json *first;
            size_t n;
        } kids; /* ARRAY, OBJECT: children */
    } u;
};

typedef struct latup_json_chunk latup_json_chunk;
typedef struct {
    latup_json *root;
    latup_json_chunk *arena; /* every node and string of the tree */
} latup_json_doc;

#define LATUP_JSON_MAX_DEPTH 64

/* Parses exactly one JSON value surrounded by optional whitespace. max_values caps the number of
 * values in the tree (0: no cap), so a small file cannot demand a huge tree. On error returns
 * LATUP_E_INPUT ("invalid JSON at byte N: ...") or LATUP_E_NOMEM, and *doc is empty.
 * Strings containing \u0000 are rejected: keys and values are handed out as C strings. */
latup_status latup_json_parse(const char *text, size_t len, size_t max_values, latup_json_doc *doc);
/* latup_json_parse, except that a lone \udc80..\udcff in a string is the byte 0x80..0xff
 * (Python's surrogateescape, which the CLI's JSON uses for file names that are not UTF-8): its
 * strings are then bytes, not always UTF-8. For reading the CLI's output; headers stay strict. */
latup_status latup_json_parse_bytes(const char *text, size_t len, size_t max_values, latup_json_doc *doc);
void latup_json_free(latup_json_doc *doc);

/* Member `key` of an object, NULL if absent or obj is not an object. */
const latup_json *latup_json_get(const latup_json *obj, const char *key);
const char *latup_json_type_name(latup_json_type t); /* "a string", "an object", ... for messages */

/* True if s[0..len) is well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF). */
bool latup_utf8_valid(const char *s, size_t len);

/* ---- writing ---------------------------------------------------------------------------------- */
typedef struct {
    char *data; /* NUL-terminated while len < cap */
    size_t len, cap;
} latup_json_buf;

latup_status latup_json_buf_add(latup_json_buf *b, const char *s, size_t n);
latup_status latup_json_buf_addf(latup_json_buf *b, const char *fmt, ...) LATUP_PRINTF(2, 3);
/* Appends s as a quoted JSON string; LATUP_E_INPUT if s is not valid UTF-8. */
latup_status latup_json_buf_add_string(latup_json_buf *b, const char *s);
void latup_json_buf_free(latup_json_buf *b);

#endif
