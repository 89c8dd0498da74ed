/* jsonw.h — the JSON the CLI prints (`--dry-run --json`, `latup info --json`): a writer over a
 * FILE * that keeps the nesting, so every comma and closing bracket is where it belongs, escapes
 * every string, and records a misuse instead of printing it. It needs the C library only, so a
 * test can compile it in. */
#ifndef LATUP_CLI_JSONW_H
#define LATUP_CLI_JSONW_H

#include <stdbool.h>
#include <stdio.h>

#define CLI_JSON_MAX_DEPTH 16

/* One JSON value on one line: {"key": value, ...} with ", " and ": " between the parts.
 *
 * Every value call takes a key: the member's name inside an object, NULL inside an array and for
 * the top-level value. A call that does not fit where the writer stands (a key inside an array,
 * a member without one, end() with nothing open, a second top-level value, nesting past
 * CLI_JSON_MAX_DEPTH, a NULL string, a number that is not finite) writes nothing, and neither
 * does any later call; cli_json_finish names the first such misuse.
 *
 * Strings: '"' and '\' escaped, control characters (and DEL) as \u00XX, well-formed UTF-8 as it
 * is. Each byte of a sequence that is not well-formed UTF-8 (a stray continuation byte, a
 * truncated sequence, an overlong form, a UTF-16 surrogate, a code point past U+10FFFF) is written
 * as the lone surrogate \udcXX, XX the byte: Python's surrogateescape, so a file name that is not
 * UTF-8 still gives valid JSON, and os.fsencode(json.loads(text)["input"]) is the name's bytes. */
typedef struct {
    FILE *f;
    int depth;                          /* objects and arrays open */
    char open[CLI_JSON_MAX_DEPTH];      /* '{' or '[', outermost first */
    bool any[CLI_JSON_MAX_DEPTH];       /* that level holds a value: the next one needs a comma */
    bool done;                          /* the top-level value is complete */
    const char *error;                  /* the first misuse, NULL while there is none */
} cli_json;

void cli_json_start(cli_json *w, FILE *f);

void cli_json_object(cli_json *w, const char *key); /* opens {, closed by cli_json_end */
void cli_json_array(cli_json *w, const char *key);  /* opens [, closed by cli_json_end */
void cli_json_end(cli_json *w);

void cli_json_str(cli_json *w, const char *key, const char *s);
void cli_json_int(cli_json *w, const char *key, long long v);
void cli_json_uint(cli_json *w, const char *key, unsigned long long v); /* sizes (size_t) */
void cli_json_bool(cli_json *w, const char *key, bool v);
/* The shortest "%.Ng" that reads back as v, with ".0" added to a whole number so that it parses
 * as a real; not finite is a misuse (JSON has no NaN or Inf). */
void cli_json_real(cli_json *w, const char *key, double v);

/* Ends the line. NULL when exactly one value was written, every object and array closed and no
 * call misused; else what went wrong (nothing more is written then). Write errors are the FILE's
 * (ferror, fflush). */
const char *cli_json_finish(cli_json *w);

#endif
